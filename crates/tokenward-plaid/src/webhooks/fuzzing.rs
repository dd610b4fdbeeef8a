//! Entry points for fuzzers and for the seed-corpus tests: each takes arbitrary bytes and must
//! never panic. The `fuzz/` targets are three-line shims over these. A panic here *is* the
//! finding, so these hooks assert invariants where library code would return an error.
//!
//! The `webhook_jwt` input is `Plaid-Verification value ‖ "\n" ‖ body`, verified at
//! [`FUZZ_NOW`] against an in-memory key source that knows [`FUZZ_KID`] (a P-256 key whose
//! private half is derived in `fuzz/make-seeds.py`, for seeds that verify), an expired key,
//! an unusable (RSA) key and an unreachable one.
#![allow(
    clippy::panic,
    reason = "a fuzz hook reports a broken invariant by panicking"
)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ring::digest::{SHA256, digest};

use super::error::{KeyFetchError, VerifyError};
use super::event::parse_webhook_body;
use super::jwt;
use super::key::KeySource;
use super::replay::ReplayGuard;
use super::verifier::{VerifiedWebhook, VerifierConfig, WebhookVerifier};
use crate::jwk::JwkPublicKey;

/// The time every fuzz input is verified at (Unix seconds).
pub const FUZZ_NOW: u64 = 1_700_000_000;
/// The key id of the fuzz key.
pub const FUZZ_KID: &str = "fuzz-key-1";
/// The same key, expired 100 s before [`FUZZ_NOW`].
pub const EXPIRED_KID: &str = "fuzz-key-expired";
/// A key id the source answers with an RSA key.
pub const UNUSABLE_KID: &str = "fuzz-key-rsa";
/// A key id the source cannot reach.
pub const UNAVAILABLE_KID: &str = "fuzz-key-down";
/// The fuzz key's x coordinate (base64url); see `fuzz/make-seeds.py`.
pub const FUZZ_X: &str = "nDPzcXBTHG7L4nJaIKAeEqv6ee4GMAhYEMKdFrjwOQs";
/// The fuzz key's y coordinate (base64url).
pub const FUZZ_Y: &str = "Zq6B8gPZD_ICS-QhoJV4-Q2KCPDBV7DsCK7mMN6lwJ8";

/// The longest error message any input may produce.
const MAX_ERROR_LEN: usize = 512;

/// Verifies `header ‖ "\n" ‖ body` with a fresh verifier and checks the invariants.
pub fn verify_jwt(data: &[u8]) {
    let (header, body) = split(data);
    match verify_jwt_result(data) {
        Ok(verified) => {
            let hash = digest(&SHA256, body);
            assert_eq!(verified.body_sha256.as_slice(), hash.as_ref(), "body hash");
            assert_eq!(verified.key_id, FUZZ_KID, "only the live key verifies");
            let age = i128::from(FUZZ_NOW) - i128::from(verified.issued_at);
            assert!((-60..=300).contains(&age), "iat outside the window: {age}");
            let reparsed = parse_webhook_body(body).unwrap_or_else(|e| panic!("reparse: {e}"));
            assert_eq!(reparsed, verified.event, "event");
            // A fresh guard accepts the delivery once.
            let guard = ReplayGuard::new(Duration::from_secs(360), 4);
            assert!(guard.check_and_record(&verified.delivery_id, now()));
            assert!(!guard.check_and_record(&verified.delivery_id, now()));
        }
        Err(error) => check_error_text(&error.to_string()),
    }
    // The stages on their own, whatever the signature: the claims parser must also never
    // panic on what a valid signature could one day cover.
    if let Ok(jwt) = jwt::parse(header.trim())
        && let Err(e) = jwt::claims(jwt.payload)
    {
        check_error_text(&e.to_string());
    }
}

/// [`verify_jwt`]'s verification alone: the outcome, for tests that expect a seed to verify.
///
/// # Errors
///
/// As [`WebhookVerifier::verify`].
pub fn verify_jwt_result(data: &[u8]) -> Result<VerifiedWebhook, VerifyError> {
    let (header, body) = split(data);
    let config = VerifierConfig::default().with_replay_capacity(0);
    let verifier = WebhookVerifier::with_config(FuzzKeys, config);
    block_on(verifier.verify(Some(&header), body, now()))
}

/// Parses arbitrary bytes as a webhook body and checks the invariants.
pub fn parse_body(data: &[u8]) {
    match parse_webhook_body(data) {
        Ok(event) => {
            assert!(!event.webhook_type().is_empty() || event.item().is_none());
            let _ = event.webhook_code();
            let again = parse_webhook_body(data).unwrap_or_else(|e| panic!("reparse: {e}"));
            assert_eq!(again, event, "parsing is deterministic");
        }
        Err(error) => check_error_text(&error.to_string()),
    }
}

/// Split at the first newline: the header value (lossy UTF-8, as an HTTP layer might hand it
/// over) and the body.
fn split(data: &[u8]) -> (String, &[u8]) {
    let at = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (header, rest) = data.split_at(at);
    let body = rest.get(1..).unwrap_or_default();
    (String::from_utf8_lossy(header).into_owned(), body)
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(FUZZ_NOW)
}

/// Errors are bounded and contain no control characters (safe to log as they are).
fn check_error_text(text: &str) {
    assert!(
        text.len() <= MAX_ERROR_LEN,
        "error text too long: {}",
        text.len()
    );
    assert!(
        !text.chars().any(char::is_control),
        "error text has a control character"
    );
}

struct FuzzKeys;

#[async_trait]
impl KeySource for FuzzKeys {
    async fn fetch_key(&self, kid: &str) -> Result<JwkPublicKey, KeyFetchError> {
        let created = i64::try_from(FUZZ_NOW).unwrap_or(0) - 86_400;
        let mut key = JwkPublicKey::es256(
            kid.to_owned(),
            FUZZ_X.to_owned(),
            FUZZ_Y.to_owned(),
            created,
        );
        match kid {
            FUZZ_KID => Ok(key),
            EXPIRED_KID => {
                key.expired_at = Some(created + 86_300);
                Ok(key)
            }
            UNUSABLE_KID => {
                "RSA".clone_into(&mut key.kty);
                Ok(key)
            }
            UNAVAILABLE_KID => Err(KeyFetchError::unavailable("fuzz source is down")),
            _ => Err(KeyFetchError::NotFound),
        }
    }
}

/// Runs a future that never waits (the key source above answers at once) to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..16 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("verification waited on an in-memory key source")
}
