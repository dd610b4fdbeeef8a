//! Webhook verification against JWTs signed here exactly as Plaid signs them (ES256 with a
//! fresh ring P-256 key, header `{"alg":"ES256","kid":…,"typ":"JWT"}`, payload
//! `{"iat":…,"request_body_sha256":"<hex>"}`), with an in-memory key source that counts its
//! fetches. No network, no emulator.
#![cfg(feature = "webhooks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use tokenward_plaid::jwk::JwkPublicKey;
use tokenward_plaid::webhooks::{
    BodyError, KeyFetchError, KeySource, MalformedJwt, PendingDisconnectReason, ReplayGuard,
    VerifierConfig, VerifyError, WebhookEnvironment, WebhookEvent, WebhookVerifier,
    parse_webhook_body,
};
use tokenward_testkit::canary;

const NOW: u64 = 1_700_000_000;
const KID: &str = "bfbd5111-8e33-4643-8ced-b2e642a72f3c";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn now() -> SystemTime {
    at(NOW)
}

fn iat(offset: i64) -> i64 {
    i64::try_from(NOW).unwrap() + offset
}

fn b64(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    digest(&SHA256, data)
        .as_ref()
        .iter()
        .fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// A P-256 signing key and its JWK, as Plaid holds them.
struct Signer {
    pair: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
}

impl Signer {
    fn new(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self {
            pair,
            kid: kid.to_owned(),
            rng,
        }
    }

    /// The uncompressed public point `0x04 ‖ x ‖ y`.
    fn point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    fn jwk(&self) -> JwkPublicKey {
        let point = self.point();
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 4);
        JwkPublicKey::es256(
            self.kid.clone(),
            b64(&point[1..33]),
            b64(&point[33..65]),
            iat(-86_400),
        )
    }

    /// `b64(header).b64(payload).b64(ES256 signature)` over the given JSON texts.
    fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let signature = self.pair.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    }

    /// The `Plaid-Verification` value Plaid would send for `body` at `iat`.
    fn plaid_header(&self, body: &[u8], iat: i64) -> String {
        self.sign_raw(
            &format!(r#"{{"alg":"ES256","kid":"{}","typ":"JWT"}}"#, self.kid),
            &format!(
                r#"{{"iat":{iat},"request_body_sha256":"{}"}}"#,
                sha256_hex(body)
            ),
        )
    }
}

/// An in-memory key source that counts fetches (all, and per kid).
#[derive(Default)]
struct Keys {
    by_kid: Mutex<HashMap<String, JwkPublicKey>>,
    fetches: AtomicUsize,
    per_kid: Mutex<HashMap<String, usize>>,
    /// Sleep this long in each fetch (to make concurrent lookups overlap).
    delay: Option<Duration>,
    /// Answer every fetch with a transport error.
    down: bool,
}

impl Keys {
    fn with(keys: &[JwkPublicKey]) -> Arc<Self> {
        let source = Self::default();
        for key in keys {
            source.add(key.clone());
        }
        Arc::new(source)
    }

    fn add(&self, key: JwkPublicKey) {
        self.by_kid.lock().unwrap().insert(key.kid.clone(), key);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn fetches_of(&self, kid: &str) -> usize {
        self.per_kid
            .lock()
            .unwrap()
            .get(kid)
            .copied()
            .unwrap_or_default()
    }
}

#[async_trait]
impl KeySource for Keys {
    async fn fetch_key(&self, kid: &str) -> Result<JwkPublicKey, KeyFetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        *self
            .per_kid
            .lock()
            .unwrap()
            .entry(kid.to_owned())
            .or_default() += 1;
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        if self.down {
            return Err(KeyFetchError::unavailable(std::io::Error::other(
                "connection refused",
            )));
        }
        self.by_kid
            .lock()
            .unwrap()
            .get(kid)
            .cloned()
            .ok_or(KeyFetchError::NotFound)
    }
}

fn item_body(code: &str) -> Vec<u8> {
    format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"{code}","item_id":"wz666MBjYWTp2PDzzggYhM6oWWmBb","environment":"production"}}"#
    )
    .into_bytes()
}

fn error_body() -> Vec<u8> {
    br#"{
  "webhook_type": "ITEM",
  "webhook_code": "ERROR",
  "item_id": "wz666MBjYWTp2PDzzggYhM6oWWmBb",
  "user_id": "usr_9nSp2KuZ2x4JDw",
  "error": {
    "display_message": null,
    "error_code": "ITEM_LOGIN_REQUIRED",
    "error_message": "the login details of this item have changed",
    "error_type": "ITEM_ERROR",
    "status": 400
  },
  "environment": "production"
}"#
    .to_vec()
}

fn setup() -> (Signer, Arc<Keys>, WebhookVerifier) {
    let signer = Signer::new(KID);
    let keys = Keys::with(&[signer.jwk()]);
    let verifier = WebhookVerifier::new(Arc::clone(&keys));
    (signer, keys, verifier)
}

#[tokio::test]
async fn a_plaid_signed_webhook_verifies() {
    let (signer, keys, verifier) = setup();
    let body = error_body();
    let header = signer.plaid_header(&body, iat(-3));
    let accepted = verifier.verify(Some(&header), &body, now()).await.unwrap();
    assert_eq!(accepted.key_id, KID);
    assert_eq!(accepted.issued_at, iat(-3));
    assert_eq!(accepted.body_sha256_hex(), sha256_hex(&body));
    assert_eq!(accepted.delivery_id_hex().len(), 64);
    let WebhookEvent::ItemError { item, error, .. } = &accepted.event else {
        panic!("{:?}", accepted.event)
    };
    assert_eq!(item.item_id, "wz666MBjYWTp2PDzzggYhM6oWWmBb");
    assert_eq!(item.user_id.as_deref(), Some("usr_9nSp2KuZ2x4JDw"));
    assert_eq!(item.environment, WebhookEnvironment::Production);
    assert!(error.is_login_required());
    assert_eq!(error.status(), Some(400));
    assert_eq!(keys.fetches(), 1);

    // A second delivery uses the cached key.
    let body = item_body("LOGIN_REPAIRED");
    let header = signer.plaid_header(&body, iat(0));
    verifier.verify(Some(&header), &body, now()).await.unwrap();
    assert_eq!(keys.fetches(), 1);
}

#[tokio::test]
async fn header_value_is_trimmed_and_required() {
    let (signer, _keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    for missing in [None, Some(""), Some("  \t")] {
        assert!(matches!(
            verifier.verify(missing, &body, now()).await,
            Err(VerifyError::MissingHeader)
        ));
    }
    let header = format!(" {} ", signer.plaid_header(&body, iat(0)));
    verifier.verify(Some(&header), &body, now()).await.unwrap();
}

#[tokio::test]
async fn another_key_under_the_same_kid_fails() {
    let (_signer, _keys, verifier) = setup();
    let impostor = Signer::new(KID);
    let body = item_body("LOGIN_REPAIRED");
    let header = impostor.plaid_header(&body, iat(0));
    assert!(matches!(
        verifier.verify(Some(&header), &body, now()).await,
        Err(VerifyError::BadSignature)
    ));
}

#[tokio::test]
async fn alg_none_is_rejected_with_or_without_a_signature() {
    let (signer, keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    let payload = format!(
        r#"{{"iat":{},"request_body_sha256":"{}"}}"#,
        iat(0),
        sha256_hex(&body)
    );
    let valid = signer.plaid_header(&body, iat(0));
    let real_signature = valid.rsplit('.').next().unwrap();
    for alg in ["none", "None", "NONE", ""] {
        let header = format!(r#"{{"alg":"{alg}","kid":"{KID}","typ":"JWT"}}"#);
        let without_signature = format!("{}.{}.", b64(&header), b64(&payload));
        let with_signature = format!("{}.{}.{real_signature}", b64(&header), b64(&payload));
        for token in [without_signature, with_signature] {
            let err = verifier
                .verify(Some(&token), &body, now())
                .await
                .unwrap_err();
            assert!(
                matches!(err, VerifyError::UnsupportedAlgorithm { .. }),
                "{alg}: {err:?}"
            );
        }
    }
    // No alg at all.
    let token = format!(
        "{}.{}.{real_signature}",
        b64(format!(r#"{{"kid":"{KID}"}}"#)),
        b64(&payload)
    );
    assert!(matches!(
        verifier.verify(Some(&token), &body, now()).await,
        Err(VerifyError::MissingAlgorithm)
    ));
    // The algorithm is judged before any key is fetched.
    assert_eq!(keys.fetches(), 0);
}

#[tokio::test]
async fn hs256_with_the_public_key_as_secret_is_rejected() {
    let (signer, keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    let header = format!(r#"{{"alg":"HS256","kid":"{KID}","typ":"JWT"}}"#);
    let payload = format!(
        r#"{{"iat":{},"request_body_sha256":"{}"}}"#,
        iat(0),
        sha256_hex(&body)
    );
    let input = format!("{}.{}", b64(&header), b64(&payload));
    // The classic algorithm confusion: HMAC keyed with what the verifier holds as the
    // public key (its point bytes, or its JWK text).
    let jwk_text = serde_json::to_string(&signer.jwk()).unwrap();
    for secret in [signer.point(), jwk_text.as_bytes()] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        let token = format!("{input}.{}", b64(tag.as_ref()));
        let err = verifier
            .verify(Some(&token), &body, now())
            .await
            .unwrap_err();
        let VerifyError::UnsupportedAlgorithm { alg } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(alg, "HS256");
    }
    assert_eq!(keys.fetches(), 0);
}

#[tokio::test]
async fn other_algorithms_are_rejected() {
    let (signer, keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    let payload = format!(
        r#"{{"iat":{},"request_body_sha256":"{}"}}"#,
        iat(0),
        sha256_hex(&body)
    );
    for alg in [
        "RS256",
        "PS256",
        "ES384",
        "ES512",
        "ES256K",
        "EdDSA",
        "es256",
        "Es256",
        "ES256 ",
        " ES256",
        "ES256\u{0}",
    ] {
        let header = serde_json::json!({"alg": alg, "kid": KID, "typ": "JWT"}).to_string();
        // Even with a valid ES256 signature over this very header.
        let token = signer.sign_raw(&header, &payload);
        let err = verifier
            .verify(Some(&token), &body, now())
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::UnsupportedAlgorithm { .. }),
            "{alg:?}: {err:?}"
        );
        assert!(!err.to_string().contains('\0'));
    }
    assert_eq!(keys.fetches(), 0);
}

#[tokio::test]
async fn keys_named_by_the_sender_are_refused() {
    let (signer, keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    let payload = format!(
        r#"{{"iat":{},"request_body_sha256":"{}"}}"#,
        iat(0),
        sha256_hex(&body)
    );
    let jwk = serde_json::to_value(signer.jwk()).unwrap();
    for (name, value) in [
        (
            "jku",
            serde_json::json!("https://attacker.example/jwks.json"),
        ),
        ("jwk", jwk),
        (
            "x5u",
            serde_json::json!("https://attacker.example/cert.pem"),
        ),
        ("x5c", serde_json::json!(["MIIB"])),
        ("crit", serde_json::json!(["exp"])),
    ] {
        let mut header = serde_json::json!({"alg": "ES256", "kid": KID, "typ": "JWT"});
        header[name] = value;
        let token = signer.sign_raw(&header.to_string(), &payload);
        let err = verifier
            .verify(Some(&token), &body, now())
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::ForbiddenHeaderParameter { name: n } if n == name),
            "{name}: {err:?}"
        );
    }
    assert_eq!(keys.fetches(), 0);
}

#[tokio::test]
async fn kid_is_required() {
    let (signer, _keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    let payload = format!(
        r#"{{"iat":{},"request_body_sha256":"{}"}}"#,
        iat(0),
        sha256_hex(&body)
    );
    for header in [r#"{"alg":"ES256"}"#, r#"{"alg":"ES256","kid":""}"#] {
        let token = signer.sign_raw(header, &payload);
        assert!(matches!(
            verifier.verify(Some(&token), &body, now()).await,
            Err(VerifyError::MissingKeyId)
        ));
    }
    let token = signer.sign_raw(r#"{"alg":"ES256","kid":"../../etc"}"#, &payload);
    assert!(matches!(
        verifier.verify(Some(&token), &body, now()).await,
        Err(VerifyError::MalformedJwt(MalformedJwt::KeyId { .. }))
    ));
}

#[tokio::test]
async fn freshness_window() {
    let (signer, _keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    // Exactly 5 minutes old and exactly 60 s ahead pass.
    for offset in [-300, 60] {
        let header = signer.plaid_header(&body, iat(offset));
        verifier.verify(Some(&header), &body, now()).await.unwrap();
    }
    let header = signer.plaid_header(&body, iat(-301));
    let err = verifier
        .verify(Some(&header), &body, now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Stale {
                age_secs: 301,
                max_age_secs: 300
            }
        ),
        "{err:?}"
    );
    let header = signer.plaid_header(&body, iat(61));
    let err = verifier
        .verify(Some(&header), &body, now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::FromTheFuture {
                ahead_secs: 61,
                skew_secs: 60
            }
        ),
        "{err:?}"
    );
    // Extreme values do not overflow.
    for extreme in [i64::MIN, i64::MAX] {
        let header = signer.plaid_header(&body, extreme);
        assert!(verifier.verify(Some(&header), &body, now()).await.is_err());
    }
}

#[tokio::test]
async fn max_age_is_configurable() {
    let signer = Signer::new(KID);
    let keys = Keys::with(&[signer.jwk()]);
    let config = VerifierConfig::default().with_max_age(Duration::from_secs(30));
    let verifier = WebhookVerifier::with_config(Arc::clone(&keys), config);
    let body = item_body("LOGIN_REPAIRED");
    let header = signer.plaid_header(&body, iat(-31));
    assert!(matches!(
        verifier.verify(Some(&header), &body, now()).await,
        Err(VerifyError::Stale { .. })
    ));
}

#[tokio::test]
async fn the_signature_is_checked_before_the_claims() {
    let (_signer, _keys, verifier) = setup();
    let impostor = Signer::new(KID);
    let body = item_body("LOGIN_REPAIRED");
    // Stale and signed by the wrong key: the signature failure is what is reported.
    let header = impostor.plaid_header(&body, iat(-10_000));
    assert!(matches!(
        verifier.verify(Some(&header), &body, now()).await,
        Err(VerifyError::BadSignature)
    ));
}

#[tokio::test]
async fn a_changed_body_fails() {
    let (signer, _keys, verifier) = setup();
    let body = error_body();
    let header = signer.plaid_header(&body, iat(0));
    // One byte changed.
    let mut changed = body.clone();
    let at = changed.iter().position(|&b| b == b'4').unwrap();
    changed[at] = b'5';
    assert!(matches!(
        verifier.verify(Some(&header), &changed, now()).await,
        Err(VerifyError::BodyHashMismatch)
    ));
    // Whitespace only: the same JSON value, re-serialised compactly, or with 4-space indent.
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let compact = serde_json::to_vec(&value).unwrap();
    let mut four = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut four, formatter);
    serde::Serialize::serialize(&value, &mut ser).unwrap();
    let trailing_newline = [body.as_slice(), b"\n"].concat();
    for other in [compact, four, trailing_newline] {
        assert_ne!(other, body);
        assert!(matches!(
            verifier.verify(Some(&header), &other, now()).await,
            Err(VerifyError::BodyHashMismatch)
        ));
    }
    // The original still verifies.
    verifier.verify(Some(&header), &body, now()).await.unwrap();
}

#[tokio::test]
async fn unknown_kid_is_remembered_briefly() {
    let (signer, keys, verifier) = setup();
    let stranger = Signer::new("0f0f0f0f-unknown");
    let body = item_body("LOGIN_REPAIRED");
    let header = stranger.plaid_header(&body, iat(0));
    for _ in 0..5 {
        let err = verifier
            .verify(Some(&header), &body, now())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, VerifyError::UnknownKeyId { kid } if kid == "0f0f0f0f-unknown"),
            "{err:?}"
        );
    }
    assert_eq!(keys.fetches_of("0f0f0f0f-unknown"), 1);
    // After the negative TTL (60 s) the source is asked again; now it knows the key.
    keys.add(stranger.jwk());
    let later = at(NOW + 61);
    let header = stranger.plaid_header(&body, iat(61));
    verifier.verify(Some(&header), &body, later).await.unwrap();
    assert_eq!(keys.fetches_of("0f0f0f0f-unknown"), 2);
    // The known key was untouched by all this.
    let header = signer.plaid_header(&body, iat(61));
    verifier.verify(Some(&header), &body, later).await.unwrap();
}

#[tokio::test]
async fn a_flood_of_invented_kids_is_throttled() {
    let (signer, keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    // Warm the real key.
    let header = signer.plaid_header(&body, iat(0));
    verifier.verify(Some(&header), &body, now()).await.unwrap();
    let mut throttled = 0;
    for i in 0..100 {
        let forger = Signer::new(&format!("forged-{i}"));
        let header = forger.plaid_header(&body, iat(0));
        match verifier.verify(Some(&header), &body, now()).await {
            Err(VerifyError::UnknownKeyId { .. }) => {}
            Err(VerifyError::KeyLookupThrottled) => throttled += 1,
            other => panic!("{other:?}"),
        }
    }
    // 30 lookups per minute by default, one of them used by the real key.
    assert_eq!(keys.fetches(), 30);
    assert_eq!(throttled, 71);
    // The cached key still works during the flood.
    let body2 = item_body("NEW_ACCOUNTS_AVAILABLE");
    let header = signer.plaid_header(&body2, iat(1));
    verifier.verify(Some(&header), &body2, now()).await.unwrap();
}

#[tokio::test]
async fn expired_keys_verify_nothing() {
    let signer = Signer::new(KID);
    let mut jwk = signer.jwk();
    let keys = Keys::with(&[]);
    let verifier = WebhookVerifier::new(Arc::clone(&keys));
    let body = item_body("LOGIN_REPAIRED");

    // Expired before the webhook was even signed, at `now`, and one second ago.
    for expired_at in [iat(-3600), iat(0)] {
        jwk.expired_at = Some(expired_at);
        keys.add(jwk.clone());
        let verifier = WebhookVerifier::new(Arc::clone(&keys));
        // Signed before the expiry: still refused (see the verifier docs).
        let header = signer.plaid_header(&body, expired_at - 1);
        let err = verifier
            .verify(Some(&header), &body, now())
            .await
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::KeyExpired { expired_at: e, .. } if e == expired_at),
            "{err:?}"
        );
    }

    // An expiry in the future: the key verifies until then.
    jwk.expired_at = Some(iat(120));
    keys.add(jwk.clone());
    let header = signer.plaid_header(&body, iat(0));
    verifier.verify(Some(&header), &body, now()).await.unwrap();
    // Cached: past its expiry the cached key verifies nothing, without a refetch.
    let fetches = keys.fetches();
    let header = signer.plaid_header(&body, iat(121));
    assert!(matches!(
        verifier.verify(Some(&header), &body, at(NOW + 121)).await,
        Err(VerifyError::KeyExpired { .. })
    ));
    assert_eq!(keys.fetches(), fetches);
}

#[tokio::test]
async fn a_cached_key_is_refetched_and_a_new_expiry_is_seen() {
    let (signer, keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    let header = signer.plaid_header(&body, iat(0));
    verifier.verify(Some(&header), &body, now()).await.unwrap();
    // Plaid expires the key; we learn it at the next refresh (key TTL 10 minutes).
    let mut jwk = signer.jwk();
    jwk.expired_at = Some(iat(300));
    keys.add(jwk);
    let header = signer.plaid_header(&body, iat(400));
    verifier
        .verify(Some(&header), &body, at(NOW + 400))
        .await
        .unwrap();
    let header = signer.plaid_header(&body, iat(601));
    assert!(matches!(
        verifier.verify(Some(&header), &body, at(NOW + 601)).await,
        Err(VerifyError::KeyExpired { .. })
    ));
    assert_eq!(keys.fetches(), 2);
}

#[tokio::test]
async fn a_rotation_rechecks_the_old_key() {
    let (old, keys, verifier) = setup();
    let new = Signer::new("second-key");
    keys.add(new.jwk());
    let body = item_body("LOGIN_REPAIRED");
    verifier
        .verify(Some(&old.plaid_header(&body, iat(0))), &body, now())
        .await
        .unwrap();
    // Plaid rotates: the old key gets an expiry, the new key signs.
    let mut expired = old.jwk();
    expired.expired_at = Some(iat(5));
    keys.add(expired);
    verifier
        .verify(Some(&new.plaid_header(&body, iat(10))), &body, at(NOW + 10))
        .await
        .unwrap();
    // Seeing a new kid made the old key's cache entry stale: its expiry is noticed at
    // once, not after the key TTL.
    let err = verifier
        .verify(Some(&old.plaid_header(&body, iat(11))), &body, at(NOW + 11))
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::KeyExpired { .. }), "{err:?}");
}

#[tokio::test]
async fn unusable_keys_are_refused() {
    let signer = Signer::new(KID);
    let mut jwk = signer.jwk();
    jwk.kty = "RSA".to_owned();
    let keys = Keys::with(&[jwk]);
    let verifier = WebhookVerifier::new(Arc::clone(&keys));
    let body = item_body("LOGIN_REPAIRED");
    let header = signer.plaid_header(&body, iat(0));
    for _ in 0..3 {
        assert!(matches!(
            verifier.verify(Some(&header), &body, now()).await,
            Err(VerifyError::UnusableKey { .. })
        ));
    }
    assert_eq!(keys.fetches(), 1);
}

#[tokio::test]
async fn an_unreachable_source_fails_closed_and_is_not_cached() {
    let signer = Signer::new(KID);
    let keys = Arc::new(Keys {
        down: true,
        ..Keys::default()
    });
    let verifier = WebhookVerifier::new(Arc::clone(&keys));
    let body = item_body("LOGIN_REPAIRED");
    let header = signer.plaid_header(&body, iat(0));
    for _ in 0..3 {
        let err = verifier
            .verify(Some(&header), &body, now())
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::KeyUnavailable { .. }), "{err:?}");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), "connection refused");
    }
    assert_eq!(keys.fetches(), 3);
}

#[tokio::test]
async fn a_replay_is_reported() {
    let (signer, _keys, verifier) = setup();
    let body = error_body();
    let header = signer.plaid_header(&body, iat(0));
    let first = verifier.verify(Some(&header), &body, now()).await.unwrap();
    let err = verifier
        .verify(Some(&header), &body, at(NOW + 30))
        .await
        .unwrap_err();
    assert!(err.is_replay(), "{err:?}");
    // The same body, signed anew (as Plaid's retries are): a new delivery with the same
    // idempotency key.
    let retry = signer.plaid_header(&body, iat(31));
    let second = verifier
        .verify(Some(&retry), &body, at(NOW + 31))
        .await
        .unwrap();
    assert_eq!(second.body_sha256, first.body_sha256);
    assert_ne!(second.delivery_id, first.delivery_id);
}

/// `n − s` for P-256's group order `n`: the other valid signature of the same message.
fn negate_s(signature: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63,
        0x25, 0x51,
    ];
    let s = &signature[32..];
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    [&signature[..32], &out[..]].concat()
}

#[tokio::test]
async fn a_replay_with_the_malleated_signature_is_still_a_replay() {
    let (signer, keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    let header = signer.plaid_header(&body, iat(0));
    let (input, signature) = header.rsplit_once('.').unwrap();
    let malleated = format!(
        "{input}.{}",
        b64(negate_s(&URL_SAFE_NO_PAD.decode(signature).unwrap()))
    );
    assert_ne!(malleated, header);
    // ECDSA accepts (r, n − s) as well: without a guard, both verify.
    let unguarded = WebhookVerifier::new(Arc::clone(&keys)).with_replay_guard(None);
    unguarded.verify(Some(&header), &body, now()).await.unwrap();
    unguarded
        .verify(Some(&malleated), &body, now())
        .await
        .unwrap();
    // The guard keys on `header.payload`, not on the signature text.
    verifier.verify(Some(&header), &body, now()).await.unwrap();
    let err = verifier
        .verify(Some(&malleated), &body, now())
        .await
        .unwrap_err();
    assert!(err.is_replay(), "{err:?}");
}

#[tokio::test]
async fn a_shared_replay_guard_spans_verifiers() {
    let signer = Signer::new(KID);
    let keys = Keys::with(&[signer.jwk()]);
    let guard = Arc::new(ReplayGuard::new(Duration::from_secs(360), 100));
    let a = WebhookVerifier::new(Arc::clone(&keys)).with_replay_guard(Some(Arc::clone(&guard)));
    let b = WebhookVerifier::new(Arc::clone(&keys)).with_replay_guard(Some(Arc::clone(&guard)));
    let body = item_body("LOGIN_REPAIRED");
    let header = signer.plaid_header(&body, iat(0));
    a.verify(Some(&header), &body, now()).await.unwrap();
    assert!(
        b.verify(Some(&header), &body, now())
            .await
            .unwrap_err()
            .is_replay()
    );
    assert_eq!(guard.len(), 1);
    // Without a guard the same delivery verifies again (a shared store decides instead).
    let c = WebhookVerifier::new(Arc::clone(&keys)).with_replay_guard(None);
    c.verify(Some(&header), &body, now()).await.unwrap();
    c.verify(Some(&header), &body, now()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_lookups_of_one_new_kid_fetch_once() {
    let signer = Signer::new(KID);
    let keys = Arc::new(Keys {
        delay: Some(Duration::from_millis(100)),
        ..Keys::default()
    });
    keys.add(signer.jwk());
    let verifier = Arc::new(WebhookVerifier::new(Arc::clone(&keys)));
    let signer = Arc::new(signer);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let verifier = Arc::clone(&verifier);
        let signer = Arc::clone(&signer);
        tasks.spawn(async move {
            let body = format!(
                r#"{{"webhook_type":"TRANSACTIONS","webhook_code":"DEFAULT_UPDATE","item_id":"i{i}","environment":"sandbox","new_transactions":{i}}}"#
            );
            let header = signer.plaid_header(body.as_bytes(), iat(0));
            verifier.verify(Some(&header), body.as_bytes(), now()).await
        });
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, 32);
    assert_eq!(keys.fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_lookups_of_one_unknown_kid_fetch_once() {
    let keys = Arc::new(Keys {
        delay: Some(Duration::from_millis(100)),
        ..Keys::default()
    });
    let verifier = Arc::new(WebhookVerifier::new(Arc::clone(&keys)));
    let forger = Arc::new(Signer::new("never-issued"));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let verifier = Arc::clone(&verifier);
        let forger = Arc::clone(&forger);
        tasks.spawn(async move {
            let body = item_body("LOGIN_REPAIRED");
            let header = forger.plaid_header(&body, iat(0));
            verifier.verify(Some(&header), &body, now()).await
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert!(matches!(
            result.unwrap(),
            Err(VerifyError::UnknownKeyId { .. })
        ));
    }
    assert_eq!(keys.fetches(), 1);
}

#[tokio::test]
async fn a_cancelled_lookup_does_not_wedge_the_kid() {
    let signer = Signer::new(KID);
    let keys = Arc::new(Keys {
        delay: Some(Duration::from_millis(200)),
        ..Keys::default()
    });
    keys.add(signer.jwk());
    let verifier = WebhookVerifier::new(Arc::clone(&keys));
    let body = item_body("LOGIN_REPAIRED");
    let header = signer.plaid_header(&body, iat(0));
    // The first delivery gives up mid-fetch.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(20),
        verifier.verify(Some(&header), &body, now()),
    )
    .await;
    assert!(cancelled.is_err());
    // The next one fetches and succeeds.
    verifier.verify(Some(&header), &body, now()).await.unwrap();
    assert_eq!(keys.fetches(), 2);
}

#[tokio::test]
async fn the_key_cache_is_bounded() {
    let signers: Vec<Signer> = (0..4).map(|i| Signer::new(&format!("key-{i}"))).collect();
    let keys = Keys::with(&signers.iter().map(Signer::jwk).collect::<Vec<_>>());
    let config = VerifierConfig::default().with_max_cached_keys(2);
    let verifier = WebhookVerifier::with_config(Arc::clone(&keys), config);
    let body = item_body("LOGIN_REPAIRED");
    for (i, signer) in signers.iter().enumerate() {
        let t = NOW + u64::try_from(i).unwrap();
        let header = signer.plaid_header(&body, i64::try_from(t).unwrap());
        verifier.verify(Some(&header), &body, at(t)).await.unwrap();
    }
    assert_eq!(keys.fetches(), 4);
    // key-0 was evicted (oldest): fetched again.
    let header = signers[0].plaid_header(&body, iat(10));
    verifier
        .verify(Some(&header), &body, at(NOW + 10))
        .await
        .unwrap();
    assert_eq!(keys.fetches_of("key-0"), 2);
}

#[tokio::test]
async fn malformed_jwts_are_errors() {
    let (signer, keys, verifier) = setup();
    let body = item_body("LOGIN_REPAIRED");
    let valid = signer.plaid_header(&body, iat(0));
    let parts: Vec<&str> = valid.split('.').collect();
    let huge_header = format!(
        "{}.{}.{}",
        b64(format!(
            r#"{{"alg":"ES256","kid":"{KID}","pad":"{}"}}"#,
            "x".repeat(100_000)
        )),
        parts[1],
        parts[2]
    );
    let long_kid = format!(
        "{}.{}.{}",
        b64(format!(r#"{{"alg":"ES256","kid":"{}"}}"#, "k".repeat(129))),
        parts[1],
        parts[2]
    );
    let cases: Vec<(String, &str)> = vec![
        (format!("{}.{}", parts[0], parts[1]), "two segments"),
        (format!("{valid}.{}", parts[2]), "four segments"),
        (format!("{}..{}", parts[0], parts[2]), "empty payload"),
        (
            format!("!!!.{}.{}", parts[1], parts[2]),
            "bad base64 header",
        ),
        (
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            "padded header",
        ),
        (
            format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
            "non-JSON header",
        ),
        (
            format!("{}.{}.{}", b64("{\"alg\":\"ES2"), parts[1], parts[2]),
            "truncated JSON header",
        ),
        (
            format!("{}.{}.{}", b64([0xff, 0xfe, 0x00]), parts[1], parts[2]),
            "binary header",
        ),
        (format!("{}.{}.AAAA", parts[0], parts[1]), "short signature"),
        (
            format!("{}.{}.{}A", parts[0], parts[1], parts[2]),
            "long signature",
        ),
        (
            format!("{}.{}.*{}", parts[0], parts[1], &parts[2][1..]),
            "bad base64 signature",
        ),
        (huge_header, "huge header"),
        (long_kid, "long kid"),
        ("...".to_owned(), "dots only"),
        ("a".repeat(5000), "no dots, long"),
        ("é.é.é".to_owned(), "non-ASCII"),
    ];
    for (token, what) in &cases {
        let err = verifier.verify(Some(token), &body, now()).await;
        assert!(
            matches!(err, Err(VerifyError::MalformedJwt(_))),
            "{what}: {err:?}"
        );
    }
    assert_eq!(keys.fetches(), 0);

    // A payload that is not the claims, under a valid signature.
    for payload in [
        "not json".to_owned(),
        r#"{"iat":"1700000000","request_body_sha256":"00"}"#.to_owned(),
        format!(
            r#"{{"iat":{}.5,"request_body_sha256":"{}"}}"#,
            iat(0),
            sha256_hex(&body)
        ),
        format!(r#"{{"iat":{}}}"#, iat(0)),
        format!(
            r#"{{"iat":{},"request_body_sha256":"{}"}}"#,
            iat(0),
            &sha256_hex(&body)[..63]
        ),
    ] {
        let token = signer.sign_raw(&format!(r#"{{"alg":"ES256","kid":"{KID}"}}"#), &payload);
        let err = verifier.verify(Some(&token), &body, now()).await;
        assert!(
            matches!(err, Err(VerifyError::MalformedJwt(MalformedJwt::Claims))),
            "{payload}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_verified_but_malformed_body_is_reported_after_verification() {
    let (signer, _keys, verifier) = setup();
    for (body, expected) in [
        (b"not json".to_vec(), "json"),
        (br#"{"webhook_type":"ITEM"}"#.to_vec(), "not a webhook"),
        (
            br#"{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"x","environment":"sandbox"}"#
                .to_vec(),
            "schema",
        ),
    ] {
        let header = signer.plaid_header(&body, iat(0));
        let err = verifier.verify(Some(&header), &body, now()).await.unwrap_err();
        let VerifyError::MalformedBody(inner) = &err else {
            panic!("{err:?}")
        };
        match expected {
            "json" => assert!(matches!(inner, BodyError::Json { .. })),
            "not a webhook" => assert!(matches!(inner, BodyError::NotAWebhook)),
            _ => assert!(matches!(
                inner,
                BodyError::Schema {
                    webhook_type: "ITEM",
                    webhook_code: "ERROR",
                    ..
                }
            )),
        }
    }
}

#[tokio::test]
async fn no_error_text_contains_the_jwt_or_the_body() {
    let (signer, _keys, verifier) = setup();
    let impostor = Signer::new(KID);
    let unknown = Signer::new("unknown-kid");
    let canary_body = format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"x","environment":"sandbox","note":"{}","secret":"{}"}}"#,
        canary::ACCESS_SANDBOX,
        canary::PLAID_SECRET
    )
    .into_bytes();
    let payload_with_canary = format!(
        r#"{{"iat":{},"request_body_sha256":"{}","leak":"{}"}}"#,
        iat(0),
        sha256_hex(&canary_body),
        canary::ACCESS_PRODUCTION
    );
    let header = format!(r#"{{"alg":"ES256","kid":"{KID}","typ":"JWT"}}"#);
    let tokens = vec![
        // Verifies, then the body fails its schema (ERROR without `error`).
        signer.sign_raw(&header, &payload_with_canary),
        impostor.sign_raw(&header, &payload_with_canary),
        unknown.plaid_header(&canary_body, iat(0)),
        signer.plaid_header(&canary_body, iat(-1000)),
        signer.plaid_header(&canary_body, iat(1000)),
        signer.plaid_header(b"other body", iat(0)),
        signer.sign_raw(
            &format!(r#"{{"alg":"{}","kid":"{KID}"}}"#, canary::ACCESS_SANDBOX),
            &payload_with_canary,
        ),
        signer.sign_raw(
            &format!(
                r#"{{"alg":"ES256","kid":"{KID}","jku":"{}"}}"#,
                canary::BEARER
            ),
            &payload_with_canary,
        ),
        format!("{}.{}", b64(&header), b64(&payload_with_canary)),
        format!(
            "{}.{}.{}",
            b64(canary::PLAID_SECRET),
            b64(&payload_with_canary),
            "x"
        ),
    ];
    let mut seen = 0;
    for token in &tokens {
        let Err(err) = verifier.verify(Some(token), &canary_body, now()).await else {
            panic!("expected an error")
        };
        seen += 1;
        let mut texts = vec![err.to_string(), format!("{err:?}")];
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            texts.push(s.to_string());
            texts.push(format!("{s:?}"));
            source = s.source();
        }
        let body_text = String::from_utf8_lossy(&canary_body);
        for text in texts {
            for needle in [
                token.as_str(),
                body_text.as_ref(),
                canary::ACCESS_SANDBOX,
                canary::ACCESS_PRODUCTION,
                canary::PLAID_SECRET,
                canary::BEARER,
            ] {
                assert!(!text.contains(needle), "{text} contains {needle}");
            }
            for segment in token.split('.').filter(|s| s.len() > 8) {
                assert!(!text.contains(segment), "{text} contains a JWT segment");
            }
        }
    }
    assert_eq!(seen, tokens.len());
}

fn parse(json: &str) -> WebhookEvent {
    parse_webhook_body(json.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json}"))
}

#[test]
fn every_item_webhook_is_typed() {
    let common = r#""item_id":"wz666MBjYWTp2PDzzggYhM6oWWmBb","user_id":"usr_9nSp2KuZ2x4JDw","environment":"production""#;
    let e = parse(&format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"ERROR",{common},"error":{{"error_type":"ITEM_ERROR","error_code":"ITEM_LOGIN_REQUIRED","error_code_reason":"OAUTH_INVALID_TOKEN","error_message":"m","display_message":null,"status":400}}}}"#
    ));
    let WebhookEvent::ItemError { item, error, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(item.user_id.as_deref(), Some("usr_9nSp2KuZ2x4JDw"));
    assert_eq!(error.error_code_reason(), Some("OAUTH_INVALID_TOKEN"));
    assert_eq!(error.error_code().as_str(), "ITEM_LOGIN_REQUIRED");
    assert_eq!((e.webhook_type(), e.webhook_code()), ("ITEM", "ERROR"));

    let e = parse(&format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"PENDING_EXPIRATION",{common},"consent_expiration_time":"2020-01-15T13:25:17.766Z"}}"#
    ));
    let WebhookEvent::ItemPendingExpiration {
        consent_expiration_time,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(consent_expiration_time.timestamp(), 1_579_094_717);

    let e = parse(&format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"PENDING_DISCONNECT",{common},"reason":"INSTITUTION_MIGRATION","disconnect_time":"2020-01-15T13:25:17.766Z"}}"#
    ));
    let WebhookEvent::ItemPendingDisconnect {
        reason,
        disconnect_time,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(*reason, PendingDisconnectReason::InstitutionMigration);
    assert!(disconnect_time.is_some());
    let e = parse(&format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"PENDING_DISCONNECT",{common},"reason":"SOMETHING_NEW"}}"#
    ));
    assert!(matches!(
        &e,
        WebhookEvent::ItemPendingDisconnect { reason: PendingDisconnectReason::Other(r), disconnect_time: None, .. } if r == "SOMETHING_NEW"
    ));

    let e = parse(&format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"USER_PERMISSION_REVOKED",{common},"error":{{"error_code":"USER_PERMISSION_REVOKED","error_type":"ITEM_ERROR"}}}}"#
    ));
    let WebhookEvent::ItemUserPermissionRevoked {
        error: Some(error), ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(error.error_code().as_str(), "USER_PERMISSION_REVOKED");
    let e = parse(&format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"USER_PERMISSION_REVOKED",{common}}}"#
    ));
    assert!(matches!(
        &e,
        WebhookEvent::ItemUserPermissionRevoked { error: None, .. }
    ));

    let e = parse(&format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"USER_ACCOUNT_REVOKED",{common},"account_id":"BxBXxLj1m4HMXBm9WZJyUg9XLd4rKEhw8Pb1J"}}"#
    ));
    assert!(matches!(
        &e,
        WebhookEvent::ItemUserAccountRevoked { account_id, .. } if account_id == "BxBXxLj1m4HMXBm9WZJyUg9XLd4rKEhw8Pb1J"
    ));

    let e = parse(&format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"LOGIN_REPAIRED",{common}}}"#
    ));
    assert!(matches!(&e, WebhookEvent::ItemLoginRepaired { .. }));
    assert_eq!(e.item().unwrap().item_id, "wz666MBjYWTp2PDzzggYhM6oWWmBb");

    let e = parse(&format!(
        r#"{{"webhook_type":"ITEM","webhook_code":"NEW_ACCOUNTS_AVAILABLE",{common},"error":null}}"#
    ));
    assert!(matches!(
        &e,
        WebhookEvent::ItemNewAccountsAvailable { error: None, .. }
    ));

    let e = parse(
        r#"{"webhook_type":"ITEM","webhook_code":"WEBHOOK_UPDATE_ACKNOWLEDGED","item_id":"wz666MBjYWTp2PDzzggYhM6oWWmBb","error":null,"new_webhook_url":"https://plaid.com/example/webhook","environment":"sandbox"}"#,
    );
    let WebhookEvent::ItemWebhookUpdateAcknowledged {
        item,
        new_webhook_url,
        error,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(new_webhook_url, "https://plaid.com/example/webhook");
    assert_eq!(item.environment, WebhookEnvironment::Sandbox);
    assert_eq!(item.user_id, None);
    assert!(error.is_none());
}

#[test]
fn every_transactions_webhook_is_typed() {
    let e = parse(
        r#"{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE","item_id":"wz666","user_id":"usr_9","initial_update_complete":true,"historical_update_complete":false,"environment":"production"}"#,
    );
    assert!(matches!(
        &e,
        WebhookEvent::TransactionsSyncUpdatesAvailable {
            initial_update_complete: true,
            historical_update_complete: false,
            ..
        }
    ));
    let e = parse(
        r#"{"webhook_type":"TRANSACTIONS","webhook_code":"INITIAL_UPDATE","item_id":"wz666","error":null,"new_transactions":19,"environment":"production"}"#,
    );
    assert!(matches!(
        &e,
        WebhookEvent::TransactionsInitialUpdate {
            new_transactions: 19,
            error: None,
            ..
        }
    ));
    // The spec types INITIAL_UPDATE's error as a string: not an error object, dropped.
    let e = parse(
        r#"{"webhook_type":"TRANSACTIONS","webhook_code":"INITIAL_UPDATE","item_id":"wz666","error":"oops","new_transactions":0,"environment":"production"}"#,
    );
    assert!(matches!(
        &e,
        WebhookEvent::TransactionsInitialUpdate { error: None, .. }
    ));
    // An error object is read, its free text scrubbed.
    let e = parse(&format!(
        r#"{{"webhook_type":"TRANSACTIONS","webhook_code":"DEFAULT_UPDATE","item_id":"wz666","error":{{"error_type":"ITEM_ERROR","error_code":"ITEM_LOGIN_REQUIRED","error_message":"token {} failed"}},"new_transactions":0,"environment":"production"}}"#,
        canary::ACCESS_SANDBOX
    ));
    let WebhookEvent::TransactionsDefaultUpdate {
        error: Some(error), ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert!(error.is_login_required());
    assert!(!error.error_message().contains(canary::ACCESS_SANDBOX));
    assert!(!format!("{e:?}").contains(canary::ACCESS_SANDBOX));
    let e = parse(
        r#"{"webhook_type":"TRANSACTIONS","webhook_code":"HISTORICAL_UPDATE","item_id":"wz666","error":null,"new_transactions":231,"environment":"production"}"#,
    );
    assert!(matches!(
        &e,
        WebhookEvent::TransactionsHistoricalUpdate {
            new_transactions: 231,
            ..
        }
    ));
    let e = parse(
        r#"{"webhook_type":"TRANSACTIONS","webhook_code":"DEFAULT_UPDATE","item_id":"wz666","error":null,"new_transactions":3,"environment":"production"}"#,
    );
    assert!(matches!(
        &e,
        WebhookEvent::TransactionsDefaultUpdate {
            new_transactions: 3,
            ..
        }
    ));
    let e = parse(
        r#"{"webhook_type":"TRANSACTIONS","webhook_code":"TRANSACTIONS_REMOVED","item_id":"wz666","removed_transactions":["yBVBEwrPyJs8GvR77N7QTxnGg6wG74H7dEDN6","kgygNvAVPzSX9KkddNdWHaVGRVex1MHm3k9no"],"error":null,"environment":"production"}"#,
    );
    let WebhookEvent::TransactionsRemoved {
        removed_transactions,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(removed_transactions.len(), 2);
    assert_eq!(
        (e.webhook_type(), e.webhook_code()),
        ("TRANSACTIONS", "TRANSACTIONS_REMOVED")
    );
}

#[test]
fn unknown_webhooks_are_kept_not_rejected() {
    for json in [
        r#"{"webhook_type":"TRANSFER","webhook_code":"TRANSFER_EVENTS_UPDATE","environment":"sandbox"}"#,
        r#"{"webhook_type":"ITEM","webhook_code":"BRAND_NEW_CODE","item_id":"x","environment":"sandbox"}"#,
        r#"{"webhook_type":"TRANSACTIONS","webhook_code":"RECURRING_TRANSACTIONS_UPDATE","item_id":"x","account_ids":["a"],"environment":"production"}"#,
        r#"{"webhook_type":"","webhook_code":""}"#,
    ] {
        let e = parse(json);
        let WebhookEvent::Unknown {
            webhook_type,
            webhook_code,
            raw,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(raw["webhook_type"], webhook_type.as_str());
        assert_eq!(raw["webhook_code"], webhook_code.as_str());
        assert!(e.item().is_none());
    }
    // An unknown environment is kept too.
    let e = parse(
        r#"{"webhook_type":"ITEM","webhook_code":"LOGIN_REPAIRED","item_id":"x","environment":"development"}"#,
    );
    assert_eq!(
        e.item().unwrap().environment,
        WebhookEnvironment::Other("development".to_owned())
    );
}

#[test]
fn bodies_that_are_not_webhooks() {
    assert!(matches!(
        parse_webhook_body(b"{\"webhook_type\":"),
        Err(BodyError::Json { line: 1, .. })
    ));
    for json in [
        &b"[]"[..],
        b"null",
        b"{}",
        br#"{"webhook_type":1,"webhook_code":"X"}"#,
        br#"{"webhook_type":"ITEM","webhook_code":"ERROR","webhook_code":"X"}"#,
    ] {
        assert!(
            matches!(parse_webhook_body(json), Err(BodyError::NotAWebhook)),
            "{}",
            String::from_utf8_lossy(json)
        );
    }
    // A known webhook missing a required member names its type and position, not values.
    let err = parse_webhook_body(
        br#"{"webhook_type":"TRANSACTIONS","webhook_code":"DEFAULT_UPDATE","item_id":"x","environment":"sandbox","new_transactions":"access-sandbox-de3ce8ef"}"#,
    )
    .unwrap_err();
    assert!(matches!(err, BodyError::Schema { .. }));
    assert!(!err.to_string().contains("access-sandbox"));
}
