//! A stateful, Plaid-compatible emulator for tests and demos.
//!
//! `tokenward-sandbox` answers the Plaid endpoints of the token lifecycle the way Plaid's
//! sandbox does, with state, over real HTTP: point Plaid's official client libraries or
//! `tokenward-plaid`'s client at [`Sandbox::base_url`] and they work unchanged. It is in the
//! spirit of stripe-mock, but stateful: a public token is single-use and expires, an
//! invalidated access token is rejected from then on, a removed Item is gone.
//!
//! - **Endpoints** (all `POST`, JSON; see [`ENDPOINTS`]): `/link/token/create`,
//!   `/sandbox/public_token/create`, `/item/public_token/exchange`, `/accounts/get`,
//!   `/accounts/balance/get`, `/transactions/get`, `/transactions/sync`, `/item/get`,
//!   `/item/remove`, `/item/access_token/invalidate`, `/item/webhook/update`,
//!   `/webhook_verification_key/get`, `/sandbox/item/fire_webhook`,
//!   `/sandbox/item/reset_login`.
//! - **Credentials** from the `PLAID-CLIENT-ID` / `PLAID-SECRET` headers (what the SDKs send)
//!   or the `client_id` / `secret` body fields. Without [fixed
//!   credentials](SandboxBuilder::credentials) any non-empty pair is accepted; with them any
//!   other pair gets `INVALID_INPUT` / `INVALID_API_KEYS`. Missing ones get
//!   `INVALID_REQUEST` / `MISSING_FIELDS`.
//! - **Tokens and ids** in Plaid's formats: `link-sandbox-<uuid>` (4 h), `public-sandbox-<uuid>`
//!   (30 min, single use), `access-sandbox-<uuid v4>` (from the OS CSPRNG), 37-character
//!   base62 `item_id`s. The emulator indexes tokens by their SHA-256 and never stores one in
//!   clear.
//! - **Data**: three accounts per Item (checking, savings, credit card) and about two years of
//!   transactions with realistic merchants, categories and amounts, derived from the `item_id`,
//!   the [seed](SandboxBuilder::seed) and the Item's creation date on the [clock](Clock):
//!   the same on every call. `/transactions/get` pages with `count`/`offset`;
//!   `/transactions/sync` pages with `count`/`has_more` and opaque, tamper-evident cursors
//!   (HMAC-bound to the Item) and reports `added`, `modified` and `removed` after
//!   [`Emulator::simulate_transactions_update`] or a fired `DEFAULT_UPDATE` /
//!   `SYNC_UPDATES_AVAILABLE`.
//! - **Item health**: `/sandbox/item/reset_login` puts the Item in `ITEM_LOGIN_REQUIRED`
//!   (`ITEM_ERROR`, HTTP 400) for `/accounts/*` and `/transactions/*`; `/item/get` still works
//!   and shows the error on the Item. Firing `LOGIN_REPAIRED` or
//!   [`Emulator::repair_login`] ends it.
//! - **Signed webhooks** exactly as Plaid signs them: an ES256 JWT in `Plaid-Verification`
//!   with header `{"alg":"ES256","kid":…,"typ":"JWT"}` and payload
//!   `{"iat":…,"request_body_sha256":…}` over the exact body bytes, sent by HTTP POST (plain
//!   `http://` URLs only) to the Item's webhook. The P-256 keys are served as JWKs by
//!   `/webhook_verification_key/get`; [`Emulator::rotate_webhook_key`] expires the current
//!   key (still fetchable, `expired_at` set) and signs with a new one.
//! - **Errors** always in Plaid's error object (`error_type`, `error_code`, `error_message`,
//!   `display_message`, `request_id`, …) with Plaid's status codes; every response has a
//!   `request_id`. No error repeats a value from the request, so no token or secret ever comes
//!   back in one.
//! - **Faults** ([`Faults`], [`FaultPlan`]): per endpoint or for all, added latency, N× HTTP
//!   429 `RATE_LIMIT_EXCEEDED`, N× HTTP 500 `API_ERROR`, and N× "commit the change, then drop
//!   the connection without a response" — the ambiguous outcome rotation code must survive.
//! - **Bounded memory** ([`Limits`]): a request body limit (HTTP 413), caps on Items, link
//!   tokens and public tokens (HTTP 429 past them), expired tokens pruned.
//!
//! # Quick start
//!
//! ```
//! use tokenward_sandbox::{FaultPlan, Sandbox};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A server on 127.0.0.1 with a free port; give `base_url()` to the client under test.
//! let sandbox = Sandbox::builder().seed(7).start().await?;
//! let base_url = sandbox.base_url();
//! assert!(base_url.starts_with("http://127.0.0.1:"));
//!
//! // The next invalidate is carried out, then its connection dropped without an answer.
//! sandbox
//!     .faults()
//!     .set("/item/access_token/invalidate", FaultPlan::new().drop_after_commit(1))?;
//!
//! // Webhooks are signed with this key until the next rotation.
//! let old_kid = sandbox.emulator().webhook_key_id();
//! assert_ne!(sandbox.rotate_webhook_key()?, old_kid);
//!
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! In process, without a socket, the same routes are an axum [`Router`](axum::Router):
//!
//! ```
//! use axum::body::Body;
//! use axum::http::Request;
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let emulator = tokenward_sandbox::Sandbox::builder().build()?;
//! let request = Request::post("/sandbox/public_token/create")
//!     .header("PLAID-CLIENT-ID", "client")
//!     .header("PLAID-SECRET", "secret")
//!     .body(Body::from(r#"{"institution_id":"ins_109508","initial_products":["transactions"]}"#))?;
//! let response = emulator.router().oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! # Admin routes
//!
//! Under [`ADMIN_PREFIX`] (`/__tokenward/`), on the emulator only, never a Plaid path. They
//! take no credentials: bind the emulator to loopback.
//!
//! | route | body | effect |
//! |---|---|---|
//! | `POST /__tokenward/faults` | `{"endpoint": "/item/get" \| "*" \| absent, "latency_ms": 0, "rate_limit": 0, "server_error": 0, "error_after_commit": 0, "drop_after_commit": 0, "clear": false}` | `clear` first removes every plan; then, if any of the five numbers is given, sets the plan for `endpoint` (absent or `"*"`: all endpoints). Answers with the table. |
//! | `GET /__tokenward/faults` | — | the table: `{"all": {…}, "endpoints": [{"endpoint", "latency_ms", "rate_limit", "server_error", "error_after_commit", "drop_after_commit"}], "request_id"}` |
//! | `POST /__tokenward/webhook_key/rotate` | — | rotates the webhook key; answers `{"key_id"}` |
//! | `POST /__tokenward/items/transactions_update` | `{"item_id"}` | new activity for the Item; answers `{"added"}` |
//!
//! # The binary
//!
//! `tokenward-sandbox --listen 127.0.0.1:8080 [--client-id ID (--secret S | --secret-env VAR)]
//! [--seed N] [--max-body-bytes N] [--max-items N]` prints exactly `listening on http://ADDR`
//! once it accepts connections and stops cleanly on Ctrl-C or SIGTERM. It logs nothing else.
//!
//! # Security
//!
//! The emulator is test infrastructure: it has no TLS, its admin routes are open, and its
//! tokens, although random, are sandbox tokens. Fixed credentials are kept as SHA-256
//! digests and compared in constant time. No response, error or `Debug` output contains the
//! secret, and access tokens appear only in the responses that hand them out
//! (`/item/public_token/exchange`, `/item/access_token/invalidate`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod config;
mod cursor;
mod data;
mod emulator;
mod error;
mod faults;
mod fields;
mod ids;
mod server;
mod store;
mod webhook;

pub use config::{Clock, Limits, ManualClock, SystemClock};
pub use error::SandboxError;
pub use faults::{ENDPOINTS, FaultPlan, Faults, UnknownEndpoint};
pub use server::{ADMIN_PREFIX, Emulator, Sandbox, SandboxBuilder};
pub use webhook::WebhookDelivery;
