//! `tokenward-plaid`'s `WebhookVerifier` against webhooks the emulator signs and delivers to a
//! local listener, with keys fetched through `PlaidKeySource` over `HttpPlaidClient`: every
//! code the sandbox fires verifies into the matching typed event (one key fetch for all);
//! forgeries fail with the right `VerifyError` (another key under the same kid, `alg: none`,
//! HS256 keyed with the public key, a stale or future `iat`, a changed body, a tampered
//! signature, an unknown kid, a sender-chosen key); a replay inside the window is detected,
//! across verifiers sharing a `ReplayGuard` too; after `rotate_webhook_key()` new webhooks
//! verify with the new kid and the old key verifies nothing once `now` reaches its
//! `expired_at`; a key source that cannot answer (wrong credentials, 500s, a closed port) is
//! `KeyUnavailable`, never an unknown kid, and is not remembered; concurrent deliveries wait
//! for a single key fetch.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    missing_docs,
    reason = "test code"
)]

mod e2e_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e_support::{
    Canary, Delivery, Hook, SECRET, WRONG_SECRET, client, client_with, dup, fast_retries,
    link_item, sandbox, start_time, system_time,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};
use tokenward_plaid::jwk::JwkPublicKey;
use tokenward_plaid::models::{
    ItemWebhookUpdateRequest, SandboxItemFireWebhookRequest, SandboxItemResetLoginRequest,
    SandboxWebhookCode, WebhookVerificationKeyGetRequest,
};
use tokenward_plaid::webhooks::{
    KeyFetchError, KeySource, PendingDisconnectReason, PlaidKeySource, ReplayGuard,
    VerifiedWebhook, VerifyError, WebhookEnvironment, WebhookEvent, WebhookVerifier,
};
use tokenward_plaid::{ErrorCode, PlaidApi};
use tokenward_redact::AccessToken;
use tokenward_sandbox::{Clock as _, FaultPlan, ManualClock};

/// Counts the fetches of the key source it wraps.
struct Counting<S> {
    inner: S,
    fetches: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl<S: KeySource> KeySource for Counting<S> {
    async fn fetch_key(&self, kid: &str) -> Result<JwkPublicKey, KeyFetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch_key(kid).await
    }
}

/// A verifier whose keys come from `/webhook_verification_key/get` through `api`, and the
/// counter of its key fetches.
fn key_verifier(api: Arc<dyn PlaidApi>) -> (WebhookVerifier, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let source = Counting {
        inner: PlaidKeySource::new(api),
        fetches: Arc::clone(&fetches),
    };
    (WebhookVerifier::new(source), fetches)
}

/// Fires `code` at the Item of `token` and returns what the listener received.
async fn fire(api: &dyn PlaidApi, hook: &mut Hook, token: &AccessToken, code: &str) -> Delivery {
    let request =
        SandboxItemFireWebhookRequest::new(dup(token), SandboxWebhookCode::from(code.to_owned()));
    let fired = api.sandbox_item_fire_webhook(&request).await.unwrap();
    assert!(fired.webhook_fired, "{code}");
    hook.next().await
}

/// Verifies `delivery` at the emulator's clock.
async fn verify_at(
    verifier: &WebhookVerifier,
    delivery: &Delivery,
    clock: &ManualClock,
) -> Result<VerifiedWebhook, VerifyError> {
    verifier
        .verify(
            delivery.header.as_deref(),
            &delivery.body,
            system_time(clock.now()),
        )
        .await
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// The decoded header and claims of a `Plaid-Verification` JWT.
fn jwt_parts(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    let claims = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&claims).unwrap(),
    )
}

/// An attacker's P-256 key.
fn attacker_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

/// A JWT with `header` and `claims`, signed ES256 with `key`.
fn sign_es256(key: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64_json(header), b64_json(claims));
    let signature = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// Checks that `event` is the typed form of the webhook `code` about `item_id`.
fn assert_event(
    code: &str,
    event: &WebhookEvent,
    item_id: &str,
    body: &Value,
    sent_at: chrono::DateTime<chrono::Utc>,
) {
    assert_eq!(event.webhook_code(), code);
    if code != "RECURRING_TRANSACTIONS_UPDATE" {
        let item = event.item().unwrap();
        assert_eq!(item.item_id, item_id);
        assert_eq!(item.environment, WebhookEnvironment::Sandbox);
    }
    match (code, event) {
        (
            "DEFAULT_UPDATE",
            WebhookEvent::TransactionsDefaultUpdate {
                new_transactions,
                error,
                ..
            },
        ) => {
            assert!(*new_transactions >= 2);
            assert_eq!(Some(*new_transactions), body["new_transactions"].as_u64());
            assert!(error.is_none());
        }
        (
            "SYNC_UPDATES_AVAILABLE",
            WebhookEvent::TransactionsSyncUpdatesAvailable {
                initial_update_complete,
                historical_update_complete,
                ..
            },
        ) => assert!(*initial_update_complete && *historical_update_complete),
        ("NEW_ACCOUNTS_AVAILABLE", WebhookEvent::ItemNewAccountsAvailable { error, .. }) => {
            assert!(error.is_none());
        }
        ("ERROR", WebhookEvent::ItemError { error, .. }) => {
            assert!(error.is_login_required() && error.is_item_error());
            assert_eq!(error.status(), Some(400));
        }
        ("LOGIN_REPAIRED", WebhookEvent::ItemLoginRepaired { .. }) => {}
        ("USER_PERMISSION_REVOKED", WebhookEvent::ItemUserPermissionRevoked { error, .. }) => {
            assert_eq!(
                *error.as_ref().unwrap().error_code(),
                ErrorCode::UserPermissionRevoked
            );
        }
        ("USER_ACCOUNT_REVOKED", WebhookEvent::ItemUserAccountRevoked { account_id, .. }) => {
            assert_eq!(Some(account_id.as_str()), body["account_id"].as_str());
        }
        (
            "PENDING_DISCONNECT",
            WebhookEvent::ItemPendingDisconnect {
                reason,
                disconnect_time,
                ..
            },
        ) => {
            assert_eq!(*reason, PendingDisconnectReason::InstitutionTokenExpiration);
            assert_eq!(*disconnect_time, Some(sent_at + chrono::Duration::days(7)));
        }
        (
            "PENDING_EXPIRATION",
            WebhookEvent::ItemPendingExpiration {
                consent_expiration_time,
                ..
            },
        ) => assert_eq!(
            *consent_expiration_time,
            sent_at + chrono::Duration::days(7)
        ),
        (
            "WEBHOOK_UPDATE_ACKNOWLEDGED",
            WebhookEvent::ItemWebhookUpdateAcknowledged {
                new_webhook_url,
                error,
                ..
            },
        ) => {
            assert_eq!(
                Some(new_webhook_url.as_str()),
                body["new_webhook_url"].as_str()
            );
            assert!(error.is_none());
        }
        (
            "RECURRING_TRANSACTIONS_UPDATE",
            WebhookEvent::Unknown {
                webhook_type, raw, ..
            },
        ) => {
            assert_eq!(webhook_type, "TRANSACTIONS");
            assert_eq!(raw, body);
        }
        _ => panic!("{code} parsed as {event:?}"),
    }
}

#[tokio::test]
async fn every_fired_webhook_verifies_into_its_typed_event() {
    let (sandbox, clock) = sandbox().await;
    let canary = Canary::new();
    let mut hook = Hook::start().await;
    let api: Arc<dyn PlaidApi> = Arc::new(client(&sandbox));
    let (verifier, fetches) = key_verifier(Arc::clone(&api));
    let (token, item_id) = link_item(&*api, &canary, Some(&hook.url)).await;
    let kid = sandbox.emulator().webhook_key_id();

    let mut deliveries = Vec::new();
    for code in [
        "DEFAULT_UPDATE",
        "SYNC_UPDATES_AVAILABLE",
        "NEW_ACCOUNTS_AVAILABLE",
        "ERROR",
        "LOGIN_REPAIRED",
        "USER_PERMISSION_REVOKED",
        "USER_ACCOUNT_REVOKED",
        "PENDING_DISCONNECT",
        "PENDING_EXPIRATION",
        "RECURRING_TRANSACTIONS_UPDATE",
    ] {
        // A second apart, as real deliveries are: two identical bodies signed in the same
        // second (the two ERROR webhooks below) would be one delivery to the replay guard.
        clock.advance(Duration::from_secs(1));
        let delivery = fire(&*api, &mut hook, &token, code).await;
        deliveries.push((code, delivery, clock.now()));
    }
    // Setting the webhook URL, and resetting the login, send one each.
    clock.advance(Duration::from_secs(1));
    let request = ItemWebhookUpdateRequest::new(dup(&token), Some(hook.url.clone()));
    api.item_webhook_update(&request).await.unwrap();
    deliveries.push((
        "WEBHOOK_UPDATE_ACKNOWLEDGED",
        hook.next().await,
        clock.now(),
    ));
    clock.advance(Duration::from_secs(1));
    let request = SandboxItemResetLoginRequest::new(dup(&token));
    api.sandbox_item_reset_login(&request).await.unwrap();
    deliveries.push(("ERROR", hook.next().await, clock.now()));

    let mut ids = std::collections::HashSet::new();
    for (code, delivery, sent_at) in &deliveries {
        let accepted = verify_at(&verifier, delivery, &clock)
            .await
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        canary.debug("accepted", &accepted);
        let body: Value = serde_json::from_slice(&delivery.body).unwrap();
        assert_event(code, &accepted.event, &item_id, &body, *sent_at);
        assert_eq!(accepted.key_id, kid);
        assert_eq!(accepted.issued_at, sent_at.timestamp());
        assert_eq!(accepted.body_sha256_hex(), sha256_hex(&delivery.body));
        assert!(
            ids.insert(accepted.delivery_id),
            "{code}: a new delivery id"
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "one key fetch for all");
    canary.debug("verifier", &verifier);
    canary.assert_clean();
}

#[tokio::test]
async fn forgeries_fail_with_the_right_error() {
    let (sandbox, clock) = sandbox().await;
    let canary = Canary::new();
    let mut hook = Hook::start().await;
    let api: Arc<dyn PlaidApi> = Arc::new(client(&sandbox));
    let (verifier, _) = key_verifier(Arc::clone(&api));
    let (token, _) = link_item(&*api, &canary, Some(&hook.url)).await;
    let genuine = fire(&*api, &mut hook, &token, "SYNC_UPDATES_AVAILABLE").await;
    let jwt = genuine.header.clone().unwrap();
    let (header, claims) = jwt_parts(&jwt);
    let kid = header["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid, sandbox.emulator().webhook_key_id());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(iat, start_time().timestamp());
    let now = system_time(start_time());
    let body = genuine.body.clone();
    let attempt = |header: Option<String>, body: Vec<u8>, at: std::time::SystemTime| {
        let verifier = &verifier;
        let canary = &canary;
        async move {
            let result = verifier.verify(header.as_deref(), &body, at).await;
            if let Err(error) = &result {
                canary.error("verify error", error);
            }
            result
        }
    };
    let good_claims = json!({"iat": iat, "request_body_sha256": sha256_hex(&body)});

    // Another key, under the emulator's kid: the signature does not verify.
    let forged = sign_es256(&attacker_key(), &header, &good_claims);
    let error = attempt(Some(forged), body.to_vec(), now).await.unwrap_err();
    assert!(matches!(error, VerifyError::BadSignature), "{error:?}");

    // alg none, with or without a signature.
    let none_header = json!({"alg": "none", "kid": kid, "typ": "JWT"});
    for signature in ["", "AAAA"] {
        let forged = format!(
            "{}.{}.{signature}",
            b64_json(&none_header),
            b64_json(&good_claims)
        );
        let error = attempt(Some(forged), body.to_vec(), now).await.unwrap_err();
        assert!(
            matches!(&error, VerifyError::UnsupportedAlgorithm { alg } if alg == "none"),
            "{error:?}"
        );
    }

    // HS256 keyed with the public key (the JWK as served, and the raw point).
    let request = WebhookVerificationKeyGetRequest::new(kid.clone());
    let jwk = api
        .webhook_verification_key_get(&request)
        .await
        .unwrap()
        .key;
    let mut point = vec![0x04];
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.x).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(&jwk.y).unwrap());
    let hs_header = json!({"alg": "HS256", "kid": kid, "typ": "JWT"});
    for secret in [serde_json::to_vec(&jwk).unwrap(), point] {
        let input = format!("{}.{}", b64_json(&hs_header), b64_json(&good_claims));
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        );
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        let error = attempt(Some(forged), body.to_vec(), now).await.unwrap_err();
        assert!(
            matches!(&error, VerifyError::UnsupportedAlgorithm { alg } if alg == "HS256"),
            "{error:?}"
        );
    }

    // A key the sender chooses (jku, jwk) is refused before any lookup.
    for (name, value) in [
        ("jku", json!("http://127.0.0.1:9/keys")),
        ("jwk", serde_json::to_value(&jwk).unwrap()),
    ] {
        let mut with_key = header.clone();
        with_key[name] = value;
        let forged = sign_es256(&attacker_key(), &with_key, &good_claims);
        let error = attempt(Some(forged), body.to_vec(), now).await.unwrap_err();
        assert!(
            matches!(error, VerifyError::ForbiddenHeaderParameter { name: n } if n == name),
            "{error:?}"
        );
    }

    // An unknown kid, signed by the attacker: the emulator does not know it.
    let unknown_kid = "6c5516e1-92dc-479e-a8ff-5a51992e0001";
    let forged = sign_es256(
        &attacker_key(),
        &json!({"alg": "ES256", "kid": unknown_kid, "typ": "JWT"}),
        &good_claims,
    );
    let error = attempt(Some(forged.clone()), body.to_vec(), now)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VerifyError::UnknownKeyId { kid } if kid == unknown_kid),
        "{error:?}"
    );

    // No header.
    let error = attempt(None, body.to_vec(), now).await.unwrap_err();
    assert!(matches!(error, VerifyError::MissingHeader), "{error:?}");

    // The genuine JWT over a body changed by one byte, or by trailing whitespace.
    let mut changed = body.to_vec();
    let at = changed.iter().position(|b| *b == b'S').unwrap();
    changed[at] = b'T';
    let error = attempt(Some(jwt.clone()), changed, now).await.unwrap_err();
    assert!(matches!(error, VerifyError::BodyHashMismatch), "{error:?}");
    let mut spaced = body.to_vec();
    spaced.push(b'\n');
    let error = attempt(Some(jwt.clone()), spaced, now).await.unwrap_err();
    assert!(matches!(error, VerifyError::BodyHashMismatch), "{error:?}");

    // The genuine signature with one bit flipped.
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 0x01;
    let flipped = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    let error = attempt(Some(flipped), body.to_vec(), now)
        .await
        .unwrap_err();
    assert!(matches!(error, VerifyError::BadSignature), "{error:?}");

    // Stale and future: the genuine delivery, verified at the wrong time.
    let error = attempt(
        Some(jwt.clone()),
        body.to_vec(),
        now + Duration::from_secs(301),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::Stale {
                age_secs: 301,
                max_age_secs: 300
            }
        ),
        "{error:?}"
    );
    let error = attempt(
        Some(jwt.clone()),
        body.to_vec(),
        now - Duration::from_secs(61),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, VerifyError::FromTheFuture { ahead_secs: 61, .. }),
        "{error:?}"
    );
    // The edges are accepted (by a verifier of its own, so that neither is a replay).
    for at in [
        now + Duration::from_secs(300),
        now - Duration::from_secs(60),
    ] {
        let (edge, _) = key_verifier(Arc::clone(&api));
        edge.verify(Some(&jwt), &body, at).await.unwrap();
    }

    // The genuine delivery verifies once; again inside the window it is a replay.
    let accepted = attempt(Some(jwt.clone()), body.to_vec(), now)
        .await
        .unwrap();
    assert_eq!(accepted.key_id, kid);
    let error = attempt(
        Some(jwt.clone()),
        body.to_vec(),
        now + Duration::from_secs(30),
    )
    .await
    .unwrap_err();
    assert!(error.is_replay(), "{error:?}");
    // The same delivery re-signed as (r, n - s) (ECDSA malleability) is the same delivery.
    let malleated = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(negate_s(&bytes_of(signature)))
    );
    let error = attempt(
        Some(malleated),
        body.to_vec(),
        now + Duration::from_secs(31),
    )
    .await
    .unwrap_err();
    assert!(error.is_replay(), "{error:?}");
    // Plaid's retry of the same webhook is a new delivery (new iat, new signature).
    clock.advance(Duration::from_secs(5));
    let retry = fire(&*api, &mut hook, &token, "LOGIN_REPAIRED").await;
    verify_at(&verifier, &retry, &clock).await.unwrap();

    // Two verifiers sharing one guard: a delivery accepted by one is a replay for the other.
    let guard = Arc::new(ReplayGuard::new(Duration::from_secs(360), 1024));
    let (first, _) = key_verifier(Arc::clone(&api));
    let first = first.with_replay_guard(Some(Arc::clone(&guard)));
    let (second, _) = key_verifier(Arc::clone(&api));
    let second = second.with_replay_guard(Some(guard));
    let shared = fire(&*api, &mut hook, &token, "NEW_ACCOUNTS_AVAILABLE").await;
    verify_at(&first, &shared, &clock).await.unwrap();
    let error = verify_at(&second, &shared, &clock).await.unwrap_err();
    assert!(error.is_replay(), "{error:?}");

    canary.assert_clean();
}

fn bytes_of(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(segment).unwrap()
}

/// `r ‖ s` → `r ‖ (n − s)`, with `n` the order of P-256: the other valid ECDSA signature.
fn negate_s(signature: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let (r, s) = signature.split_at(32);
    let mut out = r.to_vec();
    let mut negated = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        negated[i] = u8::try_from(d).unwrap();
    }
    out.extend_from_slice(&negated);
    out
}

#[tokio::test]
async fn rotation_new_kid_verifies_and_the_old_key_expires() {
    let (sandbox, clock) = sandbox().await;
    let canary = Canary::new();
    let mut hook = Hook::start().await;
    let api: Arc<dyn PlaidApi> = Arc::new(client(&sandbox));
    let (verifier, fetches) = key_verifier(Arc::clone(&api));
    let (token, _) = link_item(&*api, &canary, Some(&hook.url)).await;
    let old_kid = sandbox.emulator().webhook_key_id();

    // Two deliveries signed with the old key at T0; the first one is verified (its key cached).
    let first = fire(&*api, &mut hook, &token, "DEFAULT_UPDATE").await;
    let held_back = fire(&*api, &mut hook, &token, "SYNC_UPDATES_AVAILABLE").await;
    let accepted = verify_at(&verifier, &first, &clock).await.unwrap();
    assert_eq!(accepted.key_id, old_kid);

    // A minute later the emulator rotates: the old key expires now, a new one signs.
    clock.advance(Duration::from_secs(60));
    let new_kid = sandbox.rotate_webhook_key().unwrap();
    assert_ne!(new_kid, old_kid);
    let expired_at = start_time().timestamp() + 60;
    let request = WebhookVerificationKeyGetRequest::new(old_kid.clone());
    let old_key = api
        .webhook_verification_key_get(&request)
        .await
        .unwrap()
        .key;
    assert_eq!(old_key.expired_at, Some(expired_at));

    let after = fire(&*api, &mut hook, &token, "NEW_ACCOUNTS_AVAILABLE").await;
    assert_eq!(
        jwt_parts(after.header.as_deref().unwrap()).0["kid"],
        new_kid.as_str()
    );
    let accepted = verify_at(&verifier, &after, &clock).await.unwrap();
    assert_eq!(accepted.key_id, new_kid);
    assert_eq!(accepted.issued_at, expired_at);

    // The old key's delivery, at `now` = its expired_at: the new kid made the cached old key
    // stale, it is fetched again, and an expired key verifies nothing.
    let error = verify_at(&verifier, &held_back, &clock).await.unwrap_err();
    canary.error("expired", &error);
    assert!(
        matches!(
            &error,
            VerifyError::KeyExpired { kid, expired_at: at } if *kid == old_kid && *at == expired_at
        ),
        "{error:?}"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 3, "old, new, old again");
    // Later still, the same.
    let error = verifier
        .verify(
            held_back.header.as_deref(),
            &held_back.body,
            system_time(start_time()) + Duration::from_secs(200),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, VerifyError::KeyExpired { .. }), "{error:?}");

    // A second before its expired_at, the old key still verifies (a fresh verifier, which
    // fetches the key with its expiry): the documented rule is `expired_at <= now`.
    let (fresh, _) = key_verifier(Arc::clone(&api));
    let accepted = fresh
        .verify(
            held_back.header.as_deref(),
            &held_back.body,
            system_time(start_time()) + Duration::from_secs(59),
        )
        .await
        .unwrap();
    assert_eq!(accepted.key_id, old_kid);

    // Rotating again: the second key expires too, the third signs.
    clock.advance(Duration::from_secs(1));
    let third_kid = sandbox.rotate_webhook_key().unwrap();
    let third = fire(&*api, &mut hook, &token, "LOGIN_REPAIRED").await;
    assert_eq!(
        verify_at(&verifier, &third, &clock).await.unwrap().key_id,
        third_kid
    );
    let error = verify_at(&verifier, &after, &clock).await.unwrap_err();
    assert!(
        matches!(&error, VerifyError::KeyExpired { kid, .. } if *kid == new_kid),
        "{error:?}"
    );
    canary.assert_clean();
}

#[tokio::test]
async fn a_key_source_that_cannot_answer_is_unavailable_not_unknown() {
    let (sandbox, clock) = sandbox().await;
    let canary = Canary::new();
    let mut hook = Hook::start().await;
    let api: Arc<dyn PlaidApi> = Arc::new(client(&sandbox));
    let (token, _) = link_item(&*api, &canary, Some(&hook.url)).await;
    let delivery = fire(&*api, &mut hook, &token, "DEFAULT_UPDATE").await;

    // Wrong credentials: INVALID_API_KEYS is a configuration error, not an unknown kid.
    let wrong: Arc<dyn PlaidApi> = Arc::new(client_with(
        &sandbox.base_url(),
        WRONG_SECRET,
        fast_retries(2),
    ));
    let (misconfigured, _) = key_verifier(wrong);
    let error = verify_at(&misconfigured, &delivery, &clock)
        .await
        .unwrap_err();
    canary.error("wrong credentials", &error);
    let VerifyError::KeyUnavailable { source, .. } = &error else {
        panic!("{error:?}");
    };
    let cause = source
        .downcast_ref::<tokenward_plaid::Error>()
        .expect("the client's error is the cause");
    assert!(cause.is_config_error(), "{cause}");

    // The key endpoint failing (more 500s than the client's attempts): unavailable, and not
    // remembered: once it recovers, the same delivery verifies.
    let (verifier, fetches) = key_verifier(Arc::clone(&api));
    sandbox
        .faults()
        .set(
            "/webhook_verification_key/get",
            FaultPlan::new().server_error(8),
        )
        .unwrap();
    let error = verify_at(&verifier, &delivery, &clock).await.unwrap_err();
    canary.error("key 500", &error);
    assert!(
        matches!(error, VerifyError::KeyUnavailable { .. }),
        "{error:?}"
    );
    assert_eq!(
        sandbox
            .faults()
            .plan("/webhook_verification_key/get")
            .server_error,
        4,
        "the client's 4 attempts"
    );
    sandbox.faults().clear();
    verify_at(&verifier, &delivery, &clock).await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // A closed port.
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", socket.local_addr().unwrap());
    drop(socket);
    let gone: Arc<dyn PlaidApi> = Arc::new(client_with(&base, SECRET, fast_retries(2)));
    let (unreachable, _) = key_verifier(gone);
    let error = verify_at(&unreachable, &delivery, &clock)
        .await
        .unwrap_err();
    canary.error("closed port", &error);
    assert!(
        matches!(error, VerifyError::KeyUnavailable { .. }),
        "{error:?}"
    );
    canary.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_wait_for_one_key_fetch() {
    let (sandbox, clock) = sandbox().await;
    let canary = Canary::new();
    let mut hook = Hook::start().await;
    let api: Arc<dyn PlaidApi> = Arc::new(client(&sandbox));
    let (token, _) = link_item(&*api, &canary, Some(&hook.url)).await;
    let mut deliveries = Vec::new();
    for code in [
        "DEFAULT_UPDATE",
        "SYNC_UPDATES_AVAILABLE",
        "NEW_ACCOUNTS_AVAILABLE",
        "LOGIN_REPAIRED",
        "PENDING_EXPIRATION",
        "PENDING_DISCONNECT",
        "USER_ACCOUNT_REVOKED",
        "DEFAULT_UPDATE",
    ] {
        clock.advance(Duration::from_secs(1));
        deliveries.push(fire(&*api, &mut hook, &token, code).await);
    }
    // A slow key endpoint, so that every delivery asks for the key while it is being fetched.
    sandbox
        .faults()
        .set(
            "/webhook_verification_key/get",
            FaultPlan::new().latency(Duration::from_millis(300)),
        )
        .unwrap();
    let (verifier, fetches) = key_verifier(Arc::clone(&api));
    let verifier = Arc::new(verifier);
    let now = system_time(clock.now());
    let mut tasks = tokio::task::JoinSet::new();
    for delivery in deliveries {
        let verifier = Arc::clone(&verifier);
        tasks.spawn(async move {
            verifier
                .verify(delivery.header.as_deref(), &delivery.body, now)
                .await
        });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(result) = tasks.join_next().await {
        let accepted = result.unwrap().unwrap();
        assert!(ids.insert(accepted.delivery_id));
    }
    assert_eq!(ids.len(), 8);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one fetch for eight deliveries"
    );
    canary.assert_clean();
}
