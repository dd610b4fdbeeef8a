//! A Plaid API client that never leaks a token.
//!
//! - [`PlaidApi`]: an object-safe async trait with one method per endpoint of the token
//!   lifecycle (Link, exchange, accounts, balances, transactions, Item get/remove, token
//!   rotation, webhook key, Sandbox helpers). `HttpPlaidClient` implements it over HTTPS;
//!   the `tokenward-sandbox` emulator and your test fakes implement it too.
//! - [`models`]: typed requests and responses from Plaid's official API spec (`2020-09-14`).
//!   Tokens are `tokenward-redact` secret types: `Debug`, `Display` and `Serialize` print a
//!   placeholder, request bodies carry the raw value. Unknown fields are ignored; enums are open.
//! - [`Error`]: Plaid's error object ([`PlaidError`], scrubbed) kept apart from transport,
//!   timeout, decode and configuration failures. Every error says whether the request may have
//!   been applied ([`Outcome`]): after an [`Ambiguous`](Outcome::Ambiguous) token rotation,
//!   probe with `/item/get` on the old token; never call invalidate again blindly.
//! - [`Endpoint`]: the table of paths, read-only vs state-changing, shared by the retry policy
//!   and the emulator.
//!
//! ```
//! use async_trait::async_trait;
//! use tokenward_plaid::models::{ItemGetRequest, ItemGetResponse, ItemRemoveRequest};
//! use tokenward_plaid::{Endpoint, Error, ErrorCode, ErrorType, PlaidApi, PlaidError};
//! use tokenward_redact::AccessToken;
//!
//! /// Only needs `PlaidApi`: works against Plaid, the emulator, or a fake.
//! async fn token_is_alive(api: &dyn PlaidApi, token: AccessToken) -> Result<bool, Error> {
//!     match api.item_get(&ItemGetRequest::new(token)).await {
//!         Ok(_) => Ok(true),
//!         Err(err) if err.is_invalid_access_token() => Ok(false),
//!         Err(err) => Err(err),
//!     }
//! }
//!
//! /// A fake whose every token is dead. (`tokenward-sandbox` is a full emulator.)
//! struct DeadTokens;
//!
//! # fn dead() -> Error {
//! #     let error = PlaidError::new(
//! #         ErrorType::InvalidInput,
//! #         ErrorCode::InvalidAccessToken,
//! #         "could not find matching access token",
//! #     );
//! #     Error::plaid(Endpoint::ItemGet, 400, error)
//! # }
//! # use tokenward_plaid::models::*;
//! #[async_trait]
//! impl PlaidApi for DeadTokens {
//!     async fn item_get(&self, _: &ItemGetRequest) -> Result<ItemGetResponse, Error> {
//!         let error = PlaidError::new(
//!             ErrorType::InvalidInput,
//!             ErrorCode::InvalidAccessToken,
//!             "could not find matching access token",
//!         );
//!         Err(Error::plaid(Endpoint::ItemGet, 400, error))
//!     }
//!     // ... the other 13 methods.
//! #   async fn link_token_create(&self, _: &LinkTokenCreateRequest) -> Result<LinkTokenCreateResponse, Error> { Err(dead()) }
//! #   async fn item_public_token_exchange(&self, _: &ItemPublicTokenExchangeRequest) -> Result<ItemPublicTokenExchangeResponse, Error> { Err(dead()) }
//! #   async fn sandbox_public_token_create(&self, _: &SandboxPublicTokenCreateRequest) -> Result<SandboxPublicTokenCreateResponse, Error> { Err(dead()) }
//! #   async fn accounts_get(&self, _: &AccountsGetRequest) -> Result<AccountsGetResponse, Error> { Err(dead()) }
//! #   async fn accounts_balance_get(&self, _: &AccountsBalanceGetRequest) -> Result<AccountsBalanceGetResponse, Error> { Err(dead()) }
//! #   async fn transactions_get(&self, _: &TransactionsGetRequest) -> Result<TransactionsGetResponse, Error> { Err(dead()) }
//! #   async fn transactions_sync(&self, _: &TransactionsSyncRequest) -> Result<TransactionsSyncResponse, Error> { Err(dead()) }
//! #   async fn item_remove(&self, _: &ItemRemoveRequest) -> Result<ItemRemoveResponse, Error> { Err(dead()) }
//! #   async fn item_access_token_invalidate(&self, _: &ItemAccessTokenInvalidateRequest) -> Result<ItemAccessTokenInvalidateResponse, Error> { Err(dead()) }
//! #   async fn item_webhook_update(&self, _: &ItemWebhookUpdateRequest) -> Result<ItemWebhookUpdateResponse, Error> { Err(dead()) }
//! #   async fn webhook_verification_key_get(&self, _: &WebhookVerificationKeyGetRequest) -> Result<WebhookVerificationKeyGetResponse, Error> { Err(dead()) }
//! #   async fn sandbox_item_fire_webhook(&self, _: &SandboxItemFireWebhookRequest) -> Result<SandboxItemFireWebhookResponse, Error> { Err(dead()) }
//! #   async fn sandbox_item_reset_login(&self, _: &SandboxItemResetLoginRequest) -> Result<SandboxItemResetLoginResponse, Error> { Err(dead()) }
//! }
//!
//! # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # runtime.block_on(async {
//! let token = AccessToken::new("access-sandbox-8ab976e6-64bc-4b38-98f7-731e7a349970")?;
//! assert_eq!(format!("{token:?}"), "AccessToken([REDACTED:plaid.access_token])");
//! assert!(!token_is_alive(&DeadTokens, token).await?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! With the `http` feature, against Plaid:
//!
//! ```no_run
//! # #[cfg(feature = "http")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tokenward_plaid::models::TransactionsSyncRequest;
//! use tokenward_plaid::{HttpPlaidClient, PlaidApi};
//! use tokenward_redact::AccessToken;
//!
//! let client = HttpPlaidClient::from_env()?; // PLAID_CLIENT_ID, PLAID_SECRET, PLAID_ENV
//! let token = AccessToken::new(std::env::var("ACCESS_TOKEN")?)?;
//! let page = client.transactions_sync(&TransactionsSyncRequest::new(token)).await?;
//! println!("{} new transactions", page.added.len());
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `http`: `HttpPlaidClient`, reqwest with rustls on ring (no other crypto backend),
//!   retries with backoff and full jitter for read-only endpoints only.
//! - `webhooks`: `Plaid-Verification` (ES256 JWT) verification, a key cache, typed webhook
//!   events (module `webhooks`).
//!
//! Without features the crate is the models, errors and trait: what an emulator, a fake or a
//! token-rotation state machine needs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod api;
mod error;
#[cfg(feature = "http")]
mod http;
pub mod jwk;
pub mod models;
#[cfg(feature = "webhooks")]
pub mod webhooks;

pub use api::{Endpoint, PlaidApi, PlaidRequest};
pub use error::{
    DecodeReason, Error, ErrorCode, ErrorType, MAX_ERROR_TEXT_LEN, Outcome, PlaidError,
    PlaidErrorCause, TransportKind,
};
#[cfg(feature = "http")]
pub use http::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Environment, HttpPlaidClient, HttpPlaidClientBuilder,
    MAX_RESPONSE_LEN, PLAID_VERSION, PRODUCTION_URL, RetryPolicy, SANDBOX_URL,
};
