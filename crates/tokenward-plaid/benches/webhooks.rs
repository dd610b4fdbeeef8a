//! Webhook verification benchmark: our whole `verify` with a warm key cache beside the floor,
//! one bare ring ECDSA P-256 verification of the same JWT's signature, in one group.
//!
//! - `tokenward_verify_warm_cache`: [`WebhookVerifier::verify`] of a Plaid-shaped delivery
//!   (`ITEM` / `ERROR`, 2-space-indented body as Plaid sends it): header checks, cached key,
//!   ES256 signature, claims, body SHA-256, typed parse. The replay guard is off (the same
//!   delivery is verified again and again); `webhook_parts` measures it alone, and the
//!   body parse alone.
//! - `ring_ecdsa_p256_verify`: `UnparsedPublicKey::verify` over the same `header.payload`
//!   and signature, the key as uncompressed point bytes.
//!
//! The verify future completes on its first poll when the key is cached, so it is polled
//! directly rather than through a runtime (whose scheduling is not ours to measure).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "benchmark harness: a failure should stop the run loudly"
)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use tokenward_plaid::jwk::JwkPublicKey;
use tokenward_plaid::webhooks::{
    KeyFetchError, KeySource, ReplayGuard, VerifierConfig, WebhookVerifier, parse_webhook_body,
};

const NOW: u64 = 1_700_000_000;
const KID: &str = "bfbd5111-8e33-4643-8ced-b2e642a72f3c";

const BODY: &[u8] = br#"{
  "webhook_type": "ITEM",
  "webhook_code": "ERROR",
  "item_id": "wz666MBjYWTp2PDzzggYhM6oWWmBb",
  "user_id": "usr_9nSp2KuZ2x4JDw",
  "error": {
    "display_message": "The user's OAuth connection to this institution has been invalidated.",
    "error_code": "ITEM_LOGIN_REQUIRED",
    "error_code_reason": "OAUTH_INVALID_TOKEN",
    "error_message": "the login details of this item have changed (credentials, MFA, or required user action) and a user login is required to update this information. use Link's update mode to restore the item to a good state",
    "error_type": "ITEM_ERROR",
    "status": 400
  },
  "environment": "production"
}"#;

struct OneKey(JwkPublicKey);

#[async_trait]
impl KeySource for OneKey {
    async fn fetch_key(&self, kid: &str) -> Result<JwkPublicKey, KeyFetchError> {
        if kid == self.0.kid {
            Ok(self.0.clone())
        } else {
            Err(KeyFetchError::NotFound)
        }
    }
}

fn poll_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("verification waited with a warm cache"),
    }
}

fn b64(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn webhooks(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let jwk = JwkPublicKey::es256(KID.to_owned(), b64(&point[1..33]), b64(&point[33..65]), 0);
    let body_hash: String =
        digest(&SHA256, BODY)
            .as_ref()
            .iter()
            .fold(String::new(), |mut out, b| {
                use std::fmt::Write as _;
                let _ = write!(out, "{b:02x}");
                out
            });
    let signing_input = format!(
        "{}.{}",
        b64(format!(r#"{{"alg":"ES256","kid":"{KID}","typ":"JWT"}}"#)),
        b64(format!(
            r#"{{"iat":{},"request_body_sha256":"{body_hash}"}}"#,
            NOW - 2
        ))
    );
    let signature = pair.sign(&rng, signing_input.as_bytes()).unwrap();
    let header = format!("{signing_input}.{}", b64(signature.as_ref()));
    let now = UNIX_EPOCH + Duration::from_secs(NOW);

    let verifier = WebhookVerifier::with_config(
        OneKey(jwk),
        VerifierConfig::default().with_replay_capacity(0),
    );
    // Warm the cache.
    poll_ready(verifier.verify(Some(&header), BODY, now)).unwrap();

    let mut group = c.benchmark_group("webhook_verify");
    group.bench_function("tokenward_verify_warm_cache", |b| {
        b.iter(|| {
            poll_ready(verifier.verify(
                Some(black_box(header.as_str())),
                black_box(BODY),
                black_box(now),
            ))
            .unwrap()
        });
    });
    group.bench_function("ring_ecdsa_p256_verify", |b| {
        let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.as_slice());
        b.iter(|| {
            key.verify(
                black_box(signing_input.as_bytes()),
                black_box(signature.as_ref()),
            )
            .unwrap();
        });
    });
    group.finish();

    let mut group = c.benchmark_group("webhook_parts");
    group.bench_function("parse_webhook_body", |b| {
        b.iter(|| parse_webhook_body(black_box(BODY)).unwrap());
    });
    group.bench_function("replay_guard_record", |b| {
        let guard = ReplayGuard::new(Duration::from_secs(360), 65_536);
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&n.to_le_bytes());
            let t: SystemTime = now + Duration::from_secs(n / 1_000_000);
            assert!(guard.check_and_record(black_box(&id), t));
        });
    });
    group.finish();
}

criterion_group!(benches, webhooks);
criterion_main!(benches);
