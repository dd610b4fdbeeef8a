//! Plaid webhook verification (feature `webhooks`): the `Plaid-Verification` ES256 JWT, a
//! key cache, replay detection and typed webhook events.
//!
//! Plaid signs each webhook delivery with a JWT in the `Plaid-Verification` header. Its
//! header names the signing key (`kid`); its payload carries the issue time (`iat`) and the
//! SHA-256 of the body. [`WebhookVerifier::verify`] checks all of it, in the order Plaid
//! documents (the steps are listed on [`WebhookVerifier`]), and only then parses the body
//! into a [`WebhookEvent`].
//!
//! - **Keys** come from a [`KeySource`] by `kid`, never from the JWT (`jku`, `jwk`, `x5u`,
//!   `x5c` are refused). The verifier caches them, fetches a missing one once however many
//!   deliveries wait for it, remembers unknown ids briefly and limits lookups of new ids.
//!   Expired keys verify nothing (the reasoning is on [`WebhookVerifier`]).
//! - **Time** is an argument: `verify(header, body, now)`; only
//!   [`verify_now`](WebhookVerifier::verify_now) reads the clock.
//! - **Replays** of an accepted delivery give [`VerifyError::Replay`] (answer 200, do not
//!   process); [`VerifiedWebhook::body_sha256`] is the idempotency key for Plaid's retries.
//! - **Errors** never contain the JWT, the body or key material; attacker-chosen text that
//!   they do name (a rejected `alg`, a `kid`) is bounded and escaped.
//!
//! # Example
//!
//! ```
//! use tokenward_plaid::jwk::JwkPublicKey;
//! use tokenward_plaid::webhooks::{KeyFetchError, KeySource, VerifyError, WebhookVerifier};
//!
//! // In production, the key source calls `/webhook_verification_key/get`.
//! struct NoKeys;
//!
//! #[async_trait::async_trait]
//! impl KeySource for NoKeys {
//!     async fn fetch_key(&self, _kid: &str) -> Result<JwkPublicKey, KeyFetchError> {
//!         Err(KeyFetchError::NotFound)
//!     }
//! }
//!
//! /// What a webhook handler answers Plaid.
//! async fn handle(verifier: &WebhookVerifier, header: Option<&str>, body: &[u8]) -> u16 {
//!     match verifier.verify_now(header, body).await {
//!         Ok(verified) => {
//!             // Process `verified.event` idempotently (key: `verified.body_sha256_hex()`).
//!             200
//!         }
//!         // Authentic, already accepted: acknowledge without processing it again.
//!         Err(e) if e.is_replay() => 200,
//!         // Not proven to be from Plaid: reject. `e` is safe to log.
//!         Err(_) => 401,
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let verifier = WebhookVerifier::new(NoKeys);
//! let body = br#"{"webhook_type":"ITEM","webhook_code":"LOGIN_REPAIRED","item_id":"wz666","environment":"sandbox"}"#;
//! assert_eq!(handle(&verifier, None, body).await, 401);
//! assert!(matches!(
//!     verifier.verify_now(Some("not.a.jwt"), body).await,
//!     Err(VerifyError::MalformedJwt(_))
//! ));
//! # });
//! # Ok::<(), std::io::Error>(())
//! ```

mod cache;
mod error;
mod event;
mod jwt;
mod key;
mod replay;
mod verifier;

#[doc(hidden)]
pub mod fuzzing;

pub use error::{BodyError, KeyFetchError, MalformedJwt, VerifyError};
pub use event::{
    ItemRef, PendingDisconnectReason, RawWebhook, WebhookEnvironment, WebhookEvent,
    parse_webhook_body,
};
pub use key::{KeySource, PlaidKeySource};
pub use replay::ReplayGuard;
pub use verifier::{VerifiedWebhook, VerifierConfig, WebhookVerifier};
