//! [`PlaidKeySource`] over a [`PlaidApi`] fake (`Arc<dyn PlaidApi>`): a found key verifies, an
//! unknown `key_id` answer is "unknown kid" (and remembered), a configuration error or an
//! outage is "unavailable" with the client's error as its source.
#![cfg(feature = "webhooks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use tokenward_plaid::jwk::JwkPublicKey;
use tokenward_plaid::models::{
    AccountsBalanceGetRequest, AccountsBalanceGetResponse, AccountsGetRequest, AccountsGetResponse,
    ItemAccessTokenInvalidateRequest, ItemAccessTokenInvalidateResponse, ItemGetRequest,
    ItemGetResponse, ItemPublicTokenExchangeRequest, ItemPublicTokenExchangeResponse,
    ItemRemoveRequest, ItemRemoveResponse, ItemWebhookUpdateRequest, ItemWebhookUpdateResponse,
    LinkTokenCreateRequest, LinkTokenCreateResponse, SandboxItemFireWebhookRequest,
    SandboxItemFireWebhookResponse, SandboxItemResetLoginRequest, SandboxItemResetLoginResponse,
    SandboxPublicTokenCreateRequest, SandboxPublicTokenCreateResponse, TransactionsGetRequest,
    TransactionsGetResponse, TransactionsSyncRequest, TransactionsSyncResponse,
    WebhookVerificationKeyGetRequest, WebhookVerificationKeyGetResponse,
};
use tokenward_plaid::webhooks::{PlaidKeySource, VerifyError, WebhookVerifier};
use tokenward_plaid::{Endpoint, Error, ErrorCode, ErrorType, PlaidApi, PlaidError};

const NOW: u64 = 1_700_000_000;

type Answer = Box<dyn Fn(&str) -> Result<JwkPublicKey, Error> + Send>;

/// Answers `/webhook_verification_key/get` from `answer`; every other endpoint is unused.
struct FakePlaid {
    answer: Mutex<Answer>,
    calls: AtomicUsize,
}

fn unused<T>() -> Result<T, Error> {
    Err(Error::config("fake", "endpoint not used by this test"))
}

#[async_trait]
impl PlaidApi for FakePlaid {
    async fn link_token_create(
        &self,
        _: &LinkTokenCreateRequest,
    ) -> Result<LinkTokenCreateResponse, Error> {
        unused()
    }
    async fn item_public_token_exchange(
        &self,
        _: &ItemPublicTokenExchangeRequest,
    ) -> Result<ItemPublicTokenExchangeResponse, Error> {
        unused()
    }
    async fn sandbox_public_token_create(
        &self,
        _: &SandboxPublicTokenCreateRequest,
    ) -> Result<SandboxPublicTokenCreateResponse, Error> {
        unused()
    }
    async fn accounts_get(&self, _: &AccountsGetRequest) -> Result<AccountsGetResponse, Error> {
        unused()
    }
    async fn accounts_balance_get(
        &self,
        _: &AccountsBalanceGetRequest,
    ) -> Result<AccountsBalanceGetResponse, Error> {
        unused()
    }
    async fn transactions_get(
        &self,
        _: &TransactionsGetRequest,
    ) -> Result<TransactionsGetResponse, Error> {
        unused()
    }
    async fn transactions_sync(
        &self,
        _: &TransactionsSyncRequest,
    ) -> Result<TransactionsSyncResponse, Error> {
        unused()
    }
    async fn item_get(&self, _: &ItemGetRequest) -> Result<ItemGetResponse, Error> {
        unused()
    }
    async fn item_remove(&self, _: &ItemRemoveRequest) -> Result<ItemRemoveResponse, Error> {
        unused()
    }
    async fn item_access_token_invalidate(
        &self,
        _: &ItemAccessTokenInvalidateRequest,
    ) -> Result<ItemAccessTokenInvalidateResponse, Error> {
        unused()
    }
    async fn item_webhook_update(
        &self,
        _: &ItemWebhookUpdateRequest,
    ) -> Result<ItemWebhookUpdateResponse, Error> {
        unused()
    }
    async fn webhook_verification_key_get(
        &self,
        request: &WebhookVerificationKeyGetRequest,
    ) -> Result<WebhookVerificationKeyGetResponse, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let key = (self.answer.lock().unwrap())(&request.key_id)?;
        Ok(WebhookVerificationKeyGetResponse::new(key, "req-1"))
    }
    async fn sandbox_item_fire_webhook(
        &self,
        _: &SandboxItemFireWebhookRequest,
    ) -> Result<SandboxItemFireWebhookResponse, Error> {
        unused()
    }
    async fn sandbox_item_reset_login(
        &self,
        _: &SandboxItemResetLoginRequest,
    ) -> Result<SandboxItemResetLoginResponse, Error> {
        unused()
    }
}

fn b64(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// A key pair, its JWK under `kid`, and a signed delivery of `body`.
fn signed(kid: &str, body: &[u8]) -> (JwkPublicKey, String) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = JwkPublicKey::es256(kid.to_owned(), b64(&point[1..33]), b64(&point[33..]), 0);
    let hash: String = digest(&SHA256, body)
        .as_ref()
        .iter()
        .fold(String::new(), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
    let input = format!(
        "{}.{}",
        b64(format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"JWT"}}"#)),
        b64(format!(r#"{{"iat":{NOW},"request_body_sha256":"{hash}"}}"#))
    );
    let signature = pair.sign(&rng, input.as_bytes()).unwrap();
    (jwk, format!("{input}.{}", b64(signature.as_ref())))
}

const BODY: &[u8] = br#"{"webhook_type":"ITEM","webhook_code":"LOGIN_REPAIRED","item_id":"wz666","environment":"sandbox"}"#;

fn fake(answer: impl Fn(&str) -> Result<JwkPublicKey, Error> + Send + 'static) -> Arc<FakePlaid> {
    Arc::new(FakePlaid {
        answer: Mutex::new(Box::new(answer)),
        calls: AtomicUsize::new(0),
    })
}

fn plaid_error(error_type: ErrorType, code: ErrorCode, status: u16) -> Error {
    Error::plaid(
        Endpoint::WebhookVerificationKeyGet,
        status,
        PlaidError::new(error_type, code, "message"),
    )
}

#[tokio::test]
async fn a_key_from_plaid_verifies() {
    let (jwk, header) = signed("plaid-kid", BODY);
    let api = fake(move |kid| {
        assert_eq!(kid, "plaid-kid");
        Ok(jwk.clone())
    });
    let as_dyn: Arc<dyn PlaidApi> = api.clone();
    let verifier = WebhookVerifier::new(PlaidKeySource::new(as_dyn));
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let accepted = verifier.verify(Some(&header), BODY, now).await.unwrap();
    assert_eq!(accepted.key_id, "plaid-kid");
    assert_eq!(api.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unknown_key_id_is_not_found_and_remembered() {
    let (_, header) = signed("forged-kid", BODY);
    let api = fake(|_| {
        Err(plaid_error(
            ErrorType::InvalidInput,
            ErrorCode::InvalidWebhookVerificationKeyId,
            400,
        ))
    });
    let verifier = WebhookVerifier::new(PlaidKeySource::new(api.clone()));
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    for _ in 0..3 {
        assert!(matches!(
            verifier.verify(Some(&header), BODY, now).await,
            Err(VerifyError::UnknownKeyId { .. })
        ));
    }
    assert_eq!(api.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn wrong_credentials_and_outages_are_unavailable() {
    let (_, header) = signed("some-kid", BODY);
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let errors: Vec<fn() -> Error> = vec![
        || plaid_error(ErrorType::InvalidInput, ErrorCode::InvalidApiKeys, 400),
        || plaid_error(ErrorType::RateLimitExceeded, ErrorCode::RateLimit, 429),
        || plaid_error(ErrorType::ApiError, ErrorCode::InternalServerError, 500),
    ];
    for make in errors {
        let api = fake(move |_| Err(make()));
        let verifier = WebhookVerifier::new(PlaidKeySource::new(api.clone()));
        for _ in 0..2 {
            let err = verifier.verify(Some(&header), BODY, now).await.unwrap_err();
            assert!(matches!(err, VerifyError::KeyUnavailable { .. }), "{err:?}");
            // The client's error is the source, for the operator.
            let source = std::error::Error::source(&err).unwrap();
            assert!(source.to_string().contains("plaid error"), "{source}");
        }
        // Not remembered: each delivery asks again.
        assert_eq!(api.calls.load(Ordering::SeqCst), 2);
    }
}
