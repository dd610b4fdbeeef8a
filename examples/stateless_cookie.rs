//! The "session only" architecture: the server keeps nothing. The Plaid access token lives
//! sealed inside the browser's cookie, and every view is fetched live from Plaid, answered and
//! forgotten.
//!
//! Run with `cargo run --example stateless_cookie`, then:
//!
//! ```text
//! curl -s -X POST localhost:3000/api/link/token                  # {"link_token":…} for Link
//! curl -s -X POST localhost:3000/api/sandbox/public_token        # stands in for Link (sandbox)
//! curl -si -c jar -X POST localhost:3000/api/link/exchange -d '{"public_token":"public-…"}'
//! curl -s -b jar localhost:3000/api/accounts
//! curl -s -b jar 'localhost:3000/api/transactions?days=30'
//! curl -s -b jar -c jar -X POST localhost:3000/api/logout        # removes the Item at Plaid
//! ```
//!
//! (curl keeps the `Secure` cookie for `localhost` as browsers do.)
//!
//! - **Listen address**: `--listen ADDR` or `LISTEN` (default `127.0.0.1:3000`).
//! - **Plaid**: the `tokenward-sandbox` emulator in-process by default; with `PLAID_CLIENT_ID`
//!   and `PLAID_SECRET` (and `PLAID_ENV=sandbox`, the default) Plaid's own sandbox.
//! - **Keys**: `TOKENWARD_KEYRING` or `TOKENWARD_KEYRING_FILE` (see `tokenward-envelope`); without
//!   them a keyring generated in memory, so cookies do not survive a restart.
//!
//! # The cookie
//!
//! `__Host-tw_session`, `HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=3600`. Its value is
//! `v1.<session id>.<expiry>.<envelope>`: a random 256-bit session id, the expiry in Unix
//! seconds, and the access token sealed by `tokenward-envelope` (AES-256-GCM under a fresh
//! DEK wrapped by the keyring's KEK). The purpose, the session id and the expiry are the
//! envelope's context (its associated data), so changing any byte of the value, or moving the
//! expiry, makes it fail to open: that is a 401 that also deletes the cookie, never a 500. An
//! expired cookie is refused before any decryption. JavaScript cannot read the cookie, other
//! sites cannot make the browser send it, and the token never appears in a response body, a
//! header other than this cookie, or a log line (the tracing formatter is
//! `tokenward-redact`'s, which scrubs every line as well).
//!
//! Logout removes the Item at Plaid, so a cookie copied before logout is dead too.
//!
//! # Trade-offs
//!
//! This is the one architecture where the token, sealed, does reach the browser: the
//! compliance rule "only `link_token` and `public_token` cross to the client" holds for
//! plaintext only. What that costs: a stolen cookie is a bearer credential until its expiry
//! (keep the lifetime short), there is no server-side list of sessions to revoke one (removing
//! the Item kills every copy of its cookie; retiring the KEK kills every cookie), and the
//! keyring is the whole security of the scheme (load it from a secrets manager through `TOKENWARD_KEYRING`). When any of these
//! matters, use the `hybrid_server` architecture instead.
//!
//! # Endpoints
//!
//! | route | in | out |
//! |---|---|---|
//! | `POST /api/link/token` | — | `{"link_token", "expiration"}` |
//! | `POST /api/sandbox/public_token` | — | `{"public_token"}` (emulator and sandbox only) |
//! | `POST /api/link/exchange` | `{"public_token"}` | `Set-Cookie`, `{"linked": true}` |
//! | `GET /api/accounts` | cookie | accounts with balances |
//! | `GET /api/transactions?days=N` | cookie | the last N (1–730, default 30) days, 100 at most |
//! | `POST /api/logout` | cookie | the Item removed at Plaid, the cookie deleted |
#![allow(
    clippy::print_stdout,
    reason = "the example prints the address it listens on"
)]

#[path = "server_support/mod.rs"]
mod server_support;

use std::error::Error;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration as ChronoDuration};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use tokenward_envelope::{Cipher, Context, Envelope};
use tokenward_plaid::PlaidApi;
use tokenward_plaid::models::{
    AccountsGetRequest, CountryCode, ItemPublicTokenExchangeRequest, ItemRemoveRequest,
    LinkTokenCreateRequest, LinkTokenCreateUser, Product, SandboxPublicTokenCreateRequest,
    TransactionsGetRequest,
};
use tokenward_redact::{AccessToken, PublicToken};
use tokio::net::TcpListener;

use server_support::{AccountView, ApiError, Clock};

/// The cookie that carries the sealed token.
pub const SESSION_COOKIE: &str = "__Host-tw_session";

/// The context purpose of a sealed session cookie: a token sealed for anything else never opens
/// as one.
pub const COOKIE_PURPOSE: &str = "tokenward.example.stateless_cookie.v1";

/// The format tag at the start of the cookie value.
const COOKIE_VERSION: &str = "v1";

/// How long a session lasts unless configured otherwise: one hour.
pub const DEFAULT_SESSION_TTL_SECS: i64 = 3600;

/// What the server needs.
pub struct Config {
    /// Plaid (or the emulator).
    pub plaid: Arc<dyn PlaidApi>,
    /// Seals and opens the cookies.
    pub cipher: Arc<Cipher>,
    /// Session lifetime in seconds.
    pub session_ttl_secs: i64,
    /// The current time (Unix seconds).
    pub clock: Clock,
    /// Serve `POST /api/sandbox/public_token` (only against the emulator or Plaid's sandbox).
    pub sandbox_helpers: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("sandbox_helpers", &self.sandbox_helpers)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration with the system clock, one-hour sessions and the sandbox helper on.
    pub fn new(plaid: Arc<dyn PlaidApi>, cipher: Arc<Cipher>) -> Self {
        Config {
            plaid,
            cipher,
            session_ttl_secs: DEFAULT_SESSION_TTL_SECS,
            clock: server_support::system_clock(),
            sandbox_helpers: true,
        }
    }
}

/// The router: every route of the table in the module documentation.
pub fn app(config: Config) -> Router {
    let mut router = Router::new()
        .route("/api/link/token", post(link_token))
        .route("/api/link/exchange", post(exchange))
        .route("/api/accounts", get(accounts))
        .route("/api/transactions", get(transactions))
        .route("/api/logout", post(logout));
    if config.sandbox_helpers {
        router = router.route("/api/sandbox/public_token", post(sandbox_public_token));
    }
    router
        .layer(axum::middleware::map_response(
            server_support::security_headers,
        ))
        .with_state(Arc::new(config))
}

/// Serves [`app`] on `listener` until `shutdown` resolves.
///
/// # Errors
///
/// I/O errors of the listener.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(config))
        .with_graceful_shutdown(shutdown)
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    server_support::init_tracing()?;
    let addr = server_support::listen_addr()?;
    let setup = server_support::plaid_from_env().await?;
    let cipher = Arc::new(Cipher::new(Arc::new(server_support::keyring_from_env()?)));
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let mut config = Config::new(setup.api, cipher);
    config.sandbox_helpers = setup.sandbox.is_some() || server_support::plaid_env_is_sandbox();
    serve(listener, config, server_support::ctrl_c()).await?;
    if let Some(sandbox) = setup.sandbox {
        sandbox.shutdown().await;
    }
    Ok(())
}

type AppState = State<Arc<Config>>;

/// The envelope context of one session: purpose, session id, expiry.
fn session_context(session_id: &str, expires: i64) -> Result<Context, ApiError> {
    Context::new()
        .with("purpose", COOKIE_PURPOSE)
        .and_then(|c| c.with("session_id", session_id))
        .and_then(|c| c.with("expires", &expires.to_string()))
        .map_err(|_| ApiError::internal())
}

/// Seals `token` into a new cookie value.
fn seal_cookie(config: &Config, token: &AccessToken) -> Result<String, ApiError> {
    let session_id = server_support::random_hex().map_err(|e| {
        tracing::error!(error = %e, "random session id");
        ApiError::internal()
    })?;
    let expires = (config.clock)().saturating_add(config.session_ttl_secs);
    let context = session_context(&session_id, expires)?;
    let envelope = config
        .cipher
        .seal(token.expose_secret().as_bytes(), &context)
        .map_err(|e| {
            tracing::error!(error = %e, "sealing the session cookie");
            ApiError::internal()
        })?;
    Ok(format!(
        "{COOKIE_VERSION}.{session_id}.{expires}.{}",
        envelope.to_text()
    ))
}

/// Opens the request's session cookie. Every failure is a 401 that deletes the cookie.
fn open_cookie(config: &Config, headers: &HeaderMap) -> Result<AccessToken, ApiError> {
    let unauthorized = || ApiError::unauthorized().clearing(SESSION_COOKIE);
    let value = server_support::read_cookie(headers, SESSION_COOKIE).ok_or_else(unauthorized)?;
    let mut parts = value.splitn(4, '.');
    let (Some(COOKIE_VERSION), Some(session_id), Some(expires), Some(text)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        tracing::info!("session cookie refused: malformed");
        return Err(unauthorized());
    };
    let Ok(expires) = expires.parse::<i64>() else {
        tracing::info!("session cookie refused: malformed expiry");
        return Err(unauthorized());
    };
    if !server_support::is_session_id(session_id) {
        tracing::info!("session cookie refused: malformed session id");
        return Err(unauthorized());
    }
    if expires <= (config.clock)() {
        tracing::info!("session cookie refused: expired");
        return Err(unauthorized());
    }
    let envelope = Envelope::from_text(text).map_err(|e| {
        tracing::info!(error = %e, "session cookie refused");
        unauthorized()
    })?;
    let context = session_context(session_id, expires)?;
    let secret = config.cipher.open_str(&envelope, &context).map_err(|e| {
        tracing::info!(error = %e, "session cookie refused");
        unauthorized()
    })?;
    AccessToken::new(secret.expose_secret()).map_err(|e| {
        tracing::info!(error = %e, "session cookie refused: not an access token");
        unauthorized()
    })
}

#[derive(Serialize)]
struct LinkTokenView {
    link_token: String,
    expiration: String,
}

async fn link_token(State(config): AppState) -> Result<Response, ApiError> {
    // No user record: Link still needs a stable-for-the-flow, non-identifying user id.
    let anonymous = server_support::random_hex().map_err(|_| ApiError::internal())?;
    let request = LinkTokenCreateRequest::new(
        "tokenward stateless cookie",
        "en",
        vec![CountryCode::Us],
        LinkTokenCreateUser::new(anonymous),
    )
    .with_products(vec![Product::Transactions]);
    let response = config
        .plaid
        .link_token_create(&request)
        .await
        .map_err(|e| ApiError::plaid("link token", &e))?;
    tracing::info!(request_id = %response.request_id, "link token created");
    // The link token is one of the two Plaid values that may reach the browser.
    Ok(server_support::json_response(&LinkTokenView {
        link_token: response.link_token.expose_secret().to_owned(),
        expiration: response.expiration.to_rfc3339(),
    }))
}

#[derive(Serialize)]
struct PublicTokenView {
    public_token: String,
}

async fn sandbox_public_token(State(config): AppState) -> Result<Response, ApiError> {
    let request = SandboxPublicTokenCreateRequest::new("ins_109508", vec![Product::Transactions]);
    let response = config
        .plaid
        .sandbox_public_token_create(&request)
        .await
        .map_err(|e| ApiError::plaid("sandbox public token", &e))?;
    Ok(server_support::json_response(&PublicTokenView {
        public_token: response.public_token.expose_secret().to_owned(),
    }))
}

#[derive(Deserialize)]
struct ExchangeBody {
    public_token: String,
}

async fn exchange(State(config): AppState, body: Bytes) -> Result<Response, ApiError> {
    let body: ExchangeBody = server_support::parse_body(&body)?;
    let public_token = PublicToken::new(body.public_token)
        .map_err(|_| ApiError::bad_request("invalid_public_token"))?;
    let response = config
        .plaid
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest::new(public_token))
        .await
        .map_err(|e| ApiError::plaid("exchange", &e))?;
    let cookie = seal_cookie(&config, &response.access_token)?;
    tracing::info!(
        item_id = %response.item_id,
        request_id = %response.request_id,
        "item linked; token sealed into the session cookie"
    );
    let mut reply = server_support::json_response(&serde_json::json!({ "linked": true }));
    reply.headers_mut().append(
        header::SET_COOKIE,
        server_support::set_cookie(SESSION_COOKIE, &cookie, config.session_ttl_secs),
    );
    Ok(reply)
}

async fn accounts(State(config): AppState, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = open_cookie(&config, &headers)?;
    let response = config
        .plaid
        .accounts_get(&AccountsGetRequest::new(token))
        .await
        .map_err(|e| ApiError::plaid("accounts", &e).clearing_if_gone())?;
    tracing::info!(
        request_id = %response.request_id,
        accounts = response.accounts.len(),
        "accounts served"
    );
    let accounts: Vec<AccountView> = response.accounts.iter().map(AccountView::from).collect();
    Ok(server_support::json_response(
        &serde_json::json!({ "accounts": accounts }),
    ))
}

#[derive(Deserialize)]
struct TransactionsQuery {
    days: Option<u32>,
}

/// A transaction as the browser sees it.
#[derive(Serialize)]
struct TransactionView {
    transaction_id: String,
    account_id: String,
    date: String,
    amount: f64,
    merchant: String,
    category: Option<String>,
    pending: bool,
}

async fn transactions(
    State(config): AppState,
    headers: HeaderMap,
    query: Result<Query<TransactionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let token = open_cookie(&config, &headers)?;
    let Ok(Query(query)) = query else {
        return Err(ApiError::bad_request("invalid_query"));
    };
    let days = query.days.unwrap_or(30);
    if !(1..=730).contains(&days) {
        return Err(ApiError::bad_request("invalid_days"));
    }
    let today = DateTime::from_timestamp((config.clock)(), 0)
        .ok_or_else(ApiError::internal)?
        .date_naive();
    let start = today - ChronoDuration::days(i64::from(days));
    let request = TransactionsGetRequest::new(token, start, today).with_page(100, 0);
    let response = config
        .plaid
        .transactions_get(&request)
        .await
        .map_err(|e| ApiError::plaid("transactions", &e).clearing_if_gone())?;
    tracing::info!(
        request_id = %response.request_id,
        total = response.total_transactions,
        "transactions served"
    );
    let transactions: Vec<TransactionView> = response
        .transactions
        .iter()
        .map(|t| TransactionView {
            transaction_id: t.transaction_id.clone(),
            account_id: t.account_id.clone(),
            date: t.date.to_string(),
            amount: t.amount,
            merchant: t.merchant_name.clone().unwrap_or_else(|| t.name.clone()),
            category: t
                .personal_finance_category
                .as_ref()
                .map(|c| c.primary.clone()),
            pending: t.pending,
        })
        .collect();
    Ok(server_support::json_response(&serde_json::json!({
        "total": response.total_transactions,
        "transactions": transactions,
    })))
}

async fn logout(State(config): AppState, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = open_cookie(&config, &headers)?;
    // Remove the Item, so that a copy of the cookie taken before logout is dead too. If Plaid
    // says it is already gone, logout still succeeds.
    let removed = match config
        .plaid
        .item_remove(&ItemRemoveRequest::new(token))
        .await
    {
        Ok(response) => {
            tracing::info!(request_id = %response.request_id, "item removed at logout");
            true
        }
        Err(e) => {
            let mapped = ApiError::plaid("item remove", &e);
            if mapped.status() != StatusCode::UNAUTHORIZED {
                return Err(mapped);
            }
            false
        }
    };
    let mut reply = server_support::json_response(
        &serde_json::json!({ "logged_out": true, "item_removed": removed }),
    );
    reply.headers_mut().append(
        header::SET_COOKIE,
        server_support::clear_cookie(SESSION_COOKIE),
    );
    Ok(reply.into_response())
}

trait ClearingIfGone {
    /// Deletes the session cookie too when Plaid says the token is dead.
    fn clearing_if_gone(self) -> Self;
}

impl ClearingIfGone for ApiError {
    fn clearing_if_gone(self) -> Self {
        if self.status() == StatusCode::UNAUTHORIZED {
            self.clearing(SESSION_COOKIE)
        } else {
            self
        }
    }
}
