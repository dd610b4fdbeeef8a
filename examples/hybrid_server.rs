//! The "hybrid" architecture: the browser's cookie holds only a session id; access tokens live
//! encrypted in the vault; transaction *metadata* is cached in Redis with a TTL; verified
//! webhooks keep it fresh; `DELETE /api/delete-me` erases everything.
//!
//! Run with `cargo run --example hybrid_server` and open <http://127.0.0.1:3000/> (press
//! "Link a sandbox bank"), or use curl:
//!
//! ```text
//! curl -s -c jar -X POST localhost:3000/api/link/token            # session cookie + link token
//! curl -s -b jar -X POST localhost:3000/api/sandbox/public_token  # stands in for Link (sandbox)
//! curl -s -b jar -X POST localhost:3000/api/link/exchange -d '{"public_token":"public-…"}'
//! curl -s -b jar localhost:3000/api/dashboard
//! curl -s -b jar -X DELETE localhost:3000/api/delete-me
//! ```
//!
//! - **Listen address**: `--listen ADDR` or `LISTEN` (default `127.0.0.1:3000`).
//! - **Plaid**: the `tokenward-sandbox` emulator in-process by default; with `PLAID_CLIENT_ID`
//!   and `PLAID_SECRET` (and `PLAID_ENV=sandbox`, the default) Plaid's own sandbox.
//! - **Vault** (and the users tables): `SQLite` in a temporary directory by default
//!   (`VAULT_SQLITE=path` keeps a file); Postgres when `DATABASE_URL` is set. Keys from
//!   `TOKENWARD_KEYRING` / `TOKENWARD_KEYRING_FILE`, or a keyring generated in memory.
//! - **Cache**: with `REDIS_URL`, transaction metadata (`transaction_id`, `date`, `amount`,
//!   `category`, `merchant`; nothing else passes the allow-list policy) for 5 minutes under
//!   `tokenward:hybrid:tx:<item_id>`, and the vault's ciphertext cache in front of the store.
//! - **Webhooks**: `WEBHOOK_URL` (the public URL of `/webhooks/plaid`); by default the server's
//!   own `http://ADDR/webhooks/plaid`, which the in-process emulator can reach.
//!
//! # The session cookie
//!
//! `__Host-tw_sid`, `HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=86400`: a random
//! 256-bit session id and nothing else. Script cannot read it, other sites cannot make the
//! browser send it (which is also the CSRF defence of the state-changing routes), and it is
//! worthless after logout, expiry or `delete-me`. An unknown or expired session is a 401 that
//! deletes the cookie.
//!
//! # Storage
//!
//! - The **vault** (`tokenward-vault`) holds each Item's access token sealed under a per-record
//!   DEK, bound to the Item and user; only the vault opens it, per request, and the token goes
//!   nowhere but to Plaid.
//! - A minimal **users table** (user id, creation time), the user's Item ids and the sessions
//!   live in SQL beside the vault ([`Users`]): the same `SQLite` file, or the same Postgres
//!   database. A session row holds a SHA-256 of the session id, never the id.
//! - **Redis** (optional) holds transaction metadata with a TTL, written through
//!   `tokenward-redact`'s allow-list policy, so a field added later fails closed.
//!
//! # Routes
//!
//! | route | in | out |
//! |---|---|---|
//! | `GET /` | cookie? | the page: accounts, balances, spending by category (SVG) |
//! | `POST /api/link/token` | cookie? | a session (a new user if none), `{"link_token", …}` |
//! | `POST /api/sandbox/public_token` | — | `{"public_token"}` (emulator, sandbox) |
//! | `POST /api/link/exchange` | cookie, `{"public_token"}` | `{"linked", "item_id"}` |
//! | `GET /api/dashboard` | cookie | accounts, spending, recent transactions (JSON) |
//! | `POST /api/logout` | cookie | the session ended |
//! | `DELETE /api/delete-me` | cookie | Items removed at Plaid; vault, cache, user rows erased |
//! | `POST /webhooks/plaid` | `Plaid-Verification`, body | verified (else 401), idempotent |
//! | `POST /api/sandbox/fire_webhook` | cookie, `{"code"}` | a sandbox webhook per Item |
//! | `POST /api/sandbox/reset_login` | cookie | `ITEM_LOGIN_REQUIRED` per Item |
//! | `POST /demo/link`, `/demo/delete-me` | cookie | the page's forms (no JavaScript) |
#![allow(
    clippy::print_stdout,
    reason = "the example prints the address it listens on"
)]

#[path = "server_support/mod.rs"]
mod server_support;

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Duration as ChronoDuration};
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use sqlx::Row as _;
use sqlx::any::AnyPoolOptions;
use tokenward_envelope::Cipher;
use tokenward_plaid::PlaidApi;
use tokenward_plaid::models::{
    AccountsGetRequest, CountryCode, ItemPublicTokenExchangeRequest, ItemRemoveRequest,
    LinkTokenCreateRequest, LinkTokenCreateUser, Product, SandboxItemFireWebhookRequest,
    SandboxItemResetLoginRequest, SandboxPublicTokenCreateRequest, SandboxWebhookCode, Transaction,
    TransactionsGetRequest,
};
use tokenward_plaid::webhooks::{PlaidKeySource, VerifyError, WebhookEvent, WebhookVerifier};
use tokenward_redact::{AccessToken, Policy, PublicToken};
use tokenward_vault::{
    AuditNote, CacheConfig, CachedVault, HealthState, ItemId, ReadError, SqlVault, Timestamp,
    UserId, Vault, WriteError,
};
use tokio::net::TcpListener;

use server_support::{AccountView, ApiError, Clock, html_escape as esc};

/// The session cookie: a random session id, nothing else.
pub const SESSION_COOKIE: &str = "__Host-tw_sid";

/// How long a session lasts unless configured otherwise: one day.
pub const DEFAULT_SESSION_TTL_SECS: i64 = 86_400;

/// How long transaction metadata stays in Redis unless configured otherwise: five minutes.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// The only fields of a transaction the cache may hold.
pub const CACHED_FIELDS: [&str; 5] = ["transaction_id", "date", "amount", "category", "merchant"];

/// Who the vault's audit journal names as the actor.
const ACTOR: &str = "hybrid_server";

// ---------------------------------------------------------------------------------------------
// Configuration and state.

/// What the server needs.
pub struct Config {
    /// Plaid (or the emulator).
    pub plaid: Arc<dyn PlaidApi>,
    /// The token vault.
    pub vault: Arc<dyn Vault>,
    /// The transaction-metadata cache (Redis), if any.
    pub cache: Option<TxCache>,
    /// Verifies `POST /webhooks/plaid`.
    pub verifier: Arc<WebhookVerifier>,
    /// The URL Plaid sends this server's webhooks to.
    pub webhook_url: Option<String>,
    /// Users and sessions.
    pub users: Users,
    /// Session lifetime in seconds.
    pub session_ttl_secs: i64,
    /// The current time (Unix seconds), for sessions and the vault's journal. Webhook
    /// freshness is checked against the system clock.
    pub clock: Clock,
    /// Serve the sandbox helper routes (only against the emulator or Plaid's sandbox).
    pub sandbox_helpers: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("cache", &self.cache)
            .field("webhook_url", &self.webhook_url)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("sandbox_helpers", &self.sandbox_helpers)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration with no cache, no webhook URL, a webhook verifier that fetches keys
    /// through `plaid`, one-day sessions, the system clock and the sandbox helpers on.
    pub fn new(plaid: Arc<dyn PlaidApi>, vault: Arc<dyn Vault>, users: Users) -> Self {
        let verifier = WebhookVerifier::new(PlaidKeySource::new(Arc::clone(&plaid)));
        Config {
            plaid,
            vault,
            cache: None,
            verifier: Arc::new(verifier),
            webhook_url: None,
            users,
            session_ttl_secs: DEFAULT_SESSION_TTL_SECS,
            clock: server_support::system_clock(),
            sandbox_helpers: true,
        }
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    fn timestamp(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.now().saturating_mul(1000))
    }
}

/// The minimal users table and the sessions, in SQL beside the vault (the same `SQLite` file,
/// or the same Postgres database and schema). Tables are created on start if missing:
///
/// - `tw_example_users(user_id, created_at)`: one row per user;
/// - `tw_example_user_items(user_id, item_id, linked_at)`: the Items a user linked (their
///   tokens are in the vault, never here);
/// - `tw_example_sessions(session_id_hash, user_id, expires_at)`: a SHA-256 of each session id,
///   never the id itself, so a copy of the table signs nobody in.
#[derive(Debug, Clone)]
pub struct Users {
    pool: AnyPool,
}

/// The tables, in SQL that `SQLite` and Postgres both accept.
const USERS_SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS tw_example_users (
        user_id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tw_example_user_items (
        user_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        linked_at BIGINT NOT NULL,
        PRIMARY KEY (user_id, item_id))",
    "CREATE TABLE IF NOT EXISTS tw_example_sessions (
        session_id_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS tw_example_sessions_user ON tw_example_sessions (user_id)",
];

/// The SHA-256 of a session id, in hex: what the sessions table stores.
fn session_hash(session_id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, session_id.as_bytes());
    server_support::hex(digest.as_ref())
}

/// Logs a database failure (sqlx errors carry no bound values) and answers 500.
fn db_error(e: &sqlx::Error) -> ApiError {
    tracing::error!(error = %e, "users database");
    ApiError::internal()
}

impl Users {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://…`, with the vault's
    /// `search_path` if it has a schema) and creates the tables if missing.
    ///
    /// # Errors
    ///
    /// Connection and DDL errors.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        // The vault installs the same drivers; whichever comes first wins, and an error
        // here only says they are installed already.
        let _ =
            sqlx::any::install_drivers(&[sqlx::postgres::any::DRIVER, sqlx::sqlite::any::DRIVER]);
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await?;
        for statement in USERS_SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Users { pool })
    }

    /// A new user and a session for them: (user id, session id).
    async fn sign_up(&self, now: i64, ttl: i64) -> Result<(String, String), ApiError> {
        let user_id = format!("user-{}", random()?.get(..24).unwrap_or_default());
        let session_id = random()?;
        let mut tx = self.pool.begin().await.map_err(|e| db_error(&e))?;
        sqlx::query("INSERT INTO tw_example_users (user_id, created_at) VALUES ($1, $2)")
            .bind(&user_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(&e))?;
        sqlx::query(
            "INSERT INTO tw_example_sessions (session_id_hash, user_id, expires_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(session_hash(&session_id))
        .bind(&user_id)
        .bind(now.saturating_add(ttl))
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(&e))?;
        tx.commit().await.map_err(|e| db_error(&e))?;
        Ok((user_id, session_id))
    }

    /// The user of a live session; an expired one is deleted.
    async fn session_user(&self, session_id: &str, now: i64) -> Result<Option<String>, ApiError> {
        let hash = session_hash(session_id);
        let row = sqlx::query(
            "SELECT s.user_id, s.expires_at FROM tw_example_sessions s \
             JOIN tw_example_users u ON u.user_id = s.user_id WHERE s.session_id_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| db_error(&e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user_id: String = row.try_get("user_id").map_err(|e| db_error(&e))?;
        let expires_at: i64 = row.try_get("expires_at").map_err(|e| db_error(&e))?;
        if expires_at <= now {
            self.end_session(session_id).await?;
            return Ok(None);
        }
        Ok(Some(user_id))
    }

    async fn end_session(&self, session_id: &str) -> Result<(), ApiError> {
        sqlx::query("DELETE FROM tw_example_sessions WHERE session_id_hash = $1")
            .bind(session_hash(session_id))
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(&e))?;
        Ok(())
    }

    async fn add_item(&self, user_id: &str, item_id: &str, now: i64) -> Result<(), ApiError> {
        sqlx::query(
            "INSERT INTO tw_example_user_items (user_id, item_id, linked_at) VALUES ($1, $2, $3)",
        )
        .bind(user_id)
        .bind(item_id)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(&e))?;
        Ok(())
    }

    /// The user's Item ids, oldest link first.
    async fn items(&self, user_id: &str) -> Result<Vec<String>, ApiError> {
        let rows = sqlx::query(
            "SELECT item_id FROM tw_example_user_items WHERE user_id = $1 \
             ORDER BY linked_at, item_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| db_error(&e))?;
        rows.iter()
            .map(|row| row.try_get("item_id").map_err(|e| db_error(&e)))
            .collect()
    }

    /// Deletes the user, their Item rows and every session of theirs, in one transaction.
    async fn delete(&self, user_id: &str) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await.map_err(|e| db_error(&e))?;
        for table in [
            "tw_example_sessions",
            "tw_example_user_items",
            "tw_example_users",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error(&e))?;
        }
        tx.commit().await.map_err(|e| db_error(&e))
    }

    async fn count(&self, sql: &str, user_id: Option<&str>) -> Result<i64, sqlx::Error> {
        let mut query = sqlx::query(sql);
        if let Some(user_id) = user_id {
            query = query.bind(user_id.to_owned());
        }
        query.fetch_one(&self.pool).await?.try_get(0)
    }

    /// How many users there are.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn user_count(&self) -> Result<i64, sqlx::Error> {
        self.count("SELECT COUNT(*) FROM tw_example_users", None)
            .await
    }

    /// How many sessions there are (live or not yet noticed to be expired).
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn session_count(&self) -> Result<i64, sqlx::Error> {
        self.count("SELECT COUNT(*) FROM tw_example_sessions", None)
            .await
    }

    /// How many rows of any of the tables name `user_id` (0 once they are deleted).
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn rows_of(&self, user_id: &str) -> Result<i64, sqlx::Error> {
        let mut total = 0;
        for table in [
            "tw_example_sessions",
            "tw_example_user_items",
            "tw_example_users",
        ] {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1");
            total += self.count(&sql, Some(user_id)).await?;
        }
        Ok(total)
    }

    /// When `user_id` signed up, if they exist.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn created_at(&self, user_id: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query("SELECT created_at FROM tw_example_users WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.try_get(0))
            .transpose()
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn random() -> Result<String, ApiError> {
    server_support::random_hex().map_err(|e| {
        tracing::error!(error = %e, "random id");
        ApiError::internal()
    })
}

/// Transaction metadata in Redis, with a TTL.
#[derive(Clone)]
pub struct TxCache {
    connection: redis::aio::MultiplexedConnection,
    prefix: String,
    ttl: Duration,
    policy: Arc<Policy>,
}

impl std::fmt::Debug for TxCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxCache")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// One cached transaction: exactly [`CACHED_FIELDS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxMeta {
    /// Plaid's transaction id.
    pub transaction_id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Positive for money out.
    pub amount: f64,
    /// Plaid's personal finance category (primary), or `OTHER`.
    pub category: String,
    /// The merchant, or the transaction name.
    pub merchant: String,
}

impl TxMeta {
    fn from_plaid(t: &Transaction) -> Self {
        TxMeta {
            transaction_id: t.transaction_id.clone(),
            date: t.date.to_string(),
            amount: t.amount,
            category: t
                .personal_finance_category
                .as_ref()
                .map_or_else(|| "OTHER".to_owned(), |c| c.primary.clone()),
            merchant: t.merchant_name.clone().unwrap_or_else(|| t.name.clone()),
        }
    }
}

impl TxCache {
    /// Connects to Redis at `url`; keys are `<prefix>tx:<item_id>`.
    ///
    /// # Errors
    ///
    /// Redis connection errors, and a policy that does not compile (it always does).
    pub async fn connect(
        url: &str,
        prefix: &str,
        ttl: Duration,
    ) -> Result<Self, Box<dyn Error + Send + Sync>> {
        let client = redis::Client::open(url)?;
        let connection = client.get_multiplexed_async_connection().await?;
        let policy = Policy::builder().allow_only(CACHED_FIELDS).build()?;
        Ok(TxCache {
            connection,
            prefix: prefix.to_owned(),
            ttl,
            policy: Arc::new(policy),
        })
    }

    /// The Redis key of an Item's transactions.
    #[must_use]
    pub fn key(&self, item_id: &str) -> String {
        format!("{}tx:{item_id}", self.prefix)
    }

    /// The cached transactions of an Item; `None` on a miss or any Redis failure.
    async fn get(&self, item_id: &str) -> Option<Vec<TxMeta>> {
        let mut connection = self.connection.clone();
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(item_id))
            .query_async(&mut connection)
            .await
            .map_err(|e| tracing::warn!(error = %e, "cache read failed"))
            .ok()?;
        serde_json::from_slice(&value?).ok()
    }

    /// Caches an Item's transactions through the allow-list policy.
    async fn put(&self, item_id: &str, transactions: &[TxMeta]) {
        let Ok(json) = tokenward_redact::to_json_vec(transactions, &self.policy) else {
            return;
        };
        let mut connection = self.connection.clone();
        let result: Result<(), _> = redis::cmd("SET")
            .arg(self.key(item_id))
            .arg(json)
            .arg("PX")
            .arg(
                u64::try_from(self.ttl.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            )
            .query_async(&mut connection)
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cache write failed");
        }
    }

    /// Drops an Item's cached transactions.
    async fn invalidate(&self, item_id: &str) {
        let mut connection = self.connection.clone();
        let result: Result<(), _> = redis::cmd("DEL")
            .arg(self.key(item_id))
            .query_async(&mut connection)
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cache invalidation failed");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The router and main.

/// The router: every route of the table in the module documentation.
pub fn app(config: Config) -> Router {
    let mut router = Router::new()
        .route("/", get(page))
        .route("/api/link/token", post(link_token))
        .route("/api/link/exchange", post(exchange))
        .route("/api/dashboard", get(dashboard))
        .route("/api/logout", post(logout))
        .route("/api/delete-me", delete(delete_me))
        .route("/webhooks/plaid", post(webhook))
        .route("/demo/delete-me", post(demo_delete_me));
    if config.sandbox_helpers {
        router = router
            .route("/api/sandbox/public_token", post(sandbox_public_token))
            .route("/api/sandbox/fire_webhook", post(sandbox_fire_webhook))
            .route("/api/sandbox/reset_login", post(sandbox_reset_login))
            .route("/demo/link", post(demo_link));
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
    let cipher = Cipher::new(Arc::new(server_support::keyring_from_env()?));

    // The vault: Postgres, an SQLite file, or SQLite in a temporary directory. The users and
    // sessions tables live beside it: the same database, or the same file.
    let scratch = tempfile::tempdir()?;
    let (store, users) = if let Ok(url) = std::env::var("DATABASE_URL") {
        tracing::info!("vault and users: Postgres");
        (
            SqlVault::postgres(&url, cipher).await?,
            Users::connect(&url).await?,
        )
    } else {
        let path = std::env::var_os("VAULT_SQLITE")
            .map_or_else(|| scratch.path().join("vault.db"), Into::into);
        tracing::info!(path = %path.display(), "vault and users: SQLite");
        let store = SqlVault::sqlite_file(&path, cipher).await?;
        (store, Users::connect(&sqlite_url(&path)?).await?)
    };
    let redis_url = std::env::var("REDIS_URL").ok();
    let vault: Arc<dyn Vault> = match &redis_url {
        Some(url) => Arc::new(CachedVault::new(
            store,
            CacheConfig::new(url.clone()).prefix("tokenward:hybrid:vault:"),
        )?),
        None => Arc::new(store),
    };

    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let mut config = Config::new(setup.api, vault, users);
    if let Some(url) = &redis_url {
        config.cache = Some(TxCache::connect(url, "tokenward:hybrid:", DEFAULT_CACHE_TTL).await?);
        tracing::info!("transaction metadata cache: Redis");
    }
    config.webhook_url = Some(
        std::env::var("WEBHOOK_URL").unwrap_or_else(|_| format!("http://{local}/webhooks/plaid")),
    );
    config.sandbox_helpers = setup.sandbox.is_some() || server_support::plaid_env_is_sandbox();
    println!("listening on http://{local}");
    serve(listener, config, server_support::ctrl_c()).await?;
    if let Some(sandbox) = setup.sandbox {
        sandbox.shutdown().await;
    }
    Ok(())
}

/// An sqlx URL for the `SQLite` file at `path` (created if missing).
fn sqlite_url(path: &std::path::Path) -> Result<String, &'static str> {
    let path = path.to_str().ok_or("the SQLite path must be UTF-8")?;
    let escaped = path
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    Ok(format!("sqlite://{escaped}?mode=rwc"))
}

type AppState = State<Arc<Config>>;

// ---------------------------------------------------------------------------------------------
// Sessions.

/// The signed-in user and their session id.
struct SignedIn {
    user_id: String,
    session_id: String,
}

async fn signed_in(config: &Config, headers: &HeaderMap) -> Result<SignedIn, ApiError> {
    let unauthorized = || ApiError::unauthorized().clearing(SESSION_COOKIE);
    let session_id =
        server_support::read_cookie(headers, SESSION_COOKIE).ok_or_else(unauthorized)?;
    if !server_support::is_session_id(&session_id) {
        tracing::info!("session refused: malformed id");
        return Err(unauthorized());
    }
    let Some(user_id) = config.users.session_user(&session_id, config.now()).await? else {
        tracing::info!("session refused: unknown or expired");
        return Err(unauthorized());
    };
    Ok(SignedIn {
        user_id,
        session_id,
    })
}

/// The signed-in user, or a new user with a new session: (user id, the new session's id).
async fn user_or_sign_up(
    config: &Config,
    headers: &HeaderMap,
) -> Result<(String, Option<String>), ApiError> {
    match signed_in(config, headers).await {
        Ok(user) => return Ok((user.user_id, None)),
        Err(e) if e.status() != StatusCode::UNAUTHORIZED => return Err(e),
        Err(_) => {}
    }
    let (user_id, session_id) = config
        .users
        .sign_up(config.now(), config.session_ttl_secs)
        .await?;
    tracing::info!(user_id = %user_id, "user signed up");
    Ok((user_id, Some(session_id)))
}

fn session_cookie(config: &Config, session_id: &str) -> HeaderValue {
    server_support::set_cookie(SESSION_COOKIE, session_id, config.session_ttl_secs)
}

// ---------------------------------------------------------------------------------------------
// Link.

#[derive(Serialize)]
struct LinkTokenView {
    link_token: String,
    expiration: String,
}

async fn link_token(State(config): AppState, headers: HeaderMap) -> Result<Response, ApiError> {
    // Signed in, or a new user with a new session.
    let (user_id, new_session) = user_or_sign_up(&config, &headers).await?;
    let mut request = LinkTokenCreateRequest::new(
        "tokenward hybrid server",
        "en",
        vec![CountryCode::Us],
        LinkTokenCreateUser::new(user_id),
    )
    .with_products(vec![Product::Transactions]);
    if let Some(url) = &config.webhook_url {
        request = request.with_webhook(url.clone());
    }
    let response = config
        .plaid
        .link_token_create(&request)
        .await
        .map_err(|e| ApiError::plaid("link token", &e))?;
    tracing::info!(request_id = %response.request_id, "link token created");
    let mut reply = server_support::json_response(&LinkTokenView {
        link_token: response.link_token.expose_secret().to_owned(),
        expiration: response.expiration.to_rfc3339(),
    });
    if let Some(session_id) = new_session {
        reply
            .headers_mut()
            .append(header::SET_COOKIE, session_cookie(&config, &session_id));
    }
    Ok(reply)
}

/// A sandbox public token (what Link hands the browser), with this server's webhook.
async fn create_sandbox_public_token(config: &Config) -> Result<PublicToken, ApiError> {
    let mut request =
        SandboxPublicTokenCreateRequest::new("ins_109508", vec![Product::Transactions]);
    if let Some(url) = &config.webhook_url {
        request = request.with_webhook(url.clone());
    }
    let response = config
        .plaid
        .sandbox_public_token_create(&request)
        .await
        .map_err(|e| ApiError::plaid("sandbox public token", &e))?;
    Ok(response.public_token)
}

async fn sandbox_public_token(State(config): AppState) -> Result<Response, ApiError> {
    let token = create_sandbox_public_token(&config).await?;
    Ok(server_support::json_response(
        &serde_json::json!({ "public_token": token.expose_secret() }),
    ))
}

#[derive(Deserialize)]
struct ExchangeBody {
    public_token: String,
}

/// Exchanges a public token and stores the access token in the vault: the Item id.
async fn link_item(
    config: &Config,
    user_id: &str,
    public_token: PublicToken,
) -> Result<String, ApiError> {
    let response = config
        .plaid
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest::new(public_token))
        .await
        .map_err(|e| ApiError::plaid("exchange", &e))?;
    let item_id = ItemId::new(response.item_id.clone()).map_err(|_| ApiError::internal())?;
    let user = UserId::new(user_id).map_err(|_| ApiError::internal())?;
    let note = AuditNote::new(ACTOR, "public token exchanged")
        .and_then(|n| n.with_request_id(response.request_id.clone()))
        .map_err(|_| ApiError::internal())?;
    config
        .vault
        .insert_item(
            &item_id,
            &user,
            &response.access_token,
            &note,
            config.timestamp(),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "vault insert failed");
            ApiError::internal()
        })?;
    config
        .users
        .add_item(user_id, item_id.as_str(), config.now())
        .await?;
    tracing::info!(
        item_id = %item_id.as_str(),
        request_id = %response.request_id,
        "item linked; token sealed in the vault"
    );
    Ok(response.item_id)
}

async fn exchange(
    State(config): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = signed_in(&config, &headers).await?;
    let body: ExchangeBody = server_support::parse_body(&body)?;
    let public_token = PublicToken::new(body.public_token)
        .map_err(|_| ApiError::bad_request("invalid_public_token"))?;
    let item_id = link_item(&config, &user.user_id, public_token).await?;
    Ok(server_support::json_response(
        &serde_json::json!({ "linked": true, "item_id": item_id }),
    ))
}

// ---------------------------------------------------------------------------------------------
// The dashboard.

#[derive(Debug, Serialize)]
struct ItemView {
    item_id: String,
    health: &'static str,
    /// Set when Plaid could not serve the Item (e.g. `item_login_required`).
    error: Option<&'static str>,
    accounts: Vec<AccountView>,
}

#[derive(Debug, Serialize)]
struct CategoryTotal {
    category: String,
    total: f64,
}

#[derive(Debug, Serialize)]
struct Dashboard {
    user_id: String,
    items: Vec<ItemView>,
    /// Money out per category over the last 30 days, largest first.
    spending: Vec<CategoryTotal>,
    /// The most recent transactions (metadata only), newest first.
    transactions: Vec<TxMeta>,
    /// How the transactions were read: `off` (no cache), `hit`, `miss` or `mixed`.
    cache: &'static str,
}

/// Reads one Item: its health from the vault, accounts live from Plaid, transactions from the
/// cache or Plaid.
async fn load_item(
    config: &Config,
    item_id: &str,
    transactions: &mut Vec<TxMeta>,
    cache_hits: &mut (u32, u32),
) -> Result<ItemView, ApiError> {
    let id = ItemId::new(item_id).map_err(|_| ApiError::internal())?;
    let record = config.vault.item(&id).await.map_err(|e| {
        tracing::error!(error = %e, "vault read failed");
        ApiError::internal()
    })?;
    let mut view = ItemView {
        item_id: item_id.to_owned(),
        health: record.health_state.as_str(),
        error: None,
        accounts: Vec::new(),
    };
    let token = token_of(config, item_id).await?;
    // A second handle for the transactions call (the secret type is deliberately not Clone);
    // it is zeroized on drop like the first.
    let second = AccessToken::new(token.expose_secret()).map_err(|_| ApiError::internal())?;
    match config
        .plaid
        .accounts_get(&AccountsGetRequest::new(token))
        .await
    {
        Ok(response) => view.accounts = response.accounts.iter().map(AccountView::from).collect(),
        Err(e) => {
            // One Item needing the user's attention must not take the dashboard down.
            view.error = Some(ApiError::plaid("accounts", &e).code());
            return Ok(view);
        }
    }
    if let Some(cached) = match &config.cache {
        Some(cache) => cache.get(item_id).await,
        None => None,
    } {
        cache_hits.0 += 1;
        transactions.extend(cached);
        return Ok(view);
    }
    cache_hits.1 += 1;
    let today = DateTime::from_timestamp(config.now(), 0)
        .ok_or_else(ApiError::internal)?
        .date_naive();
    let request = TransactionsGetRequest::new(second, today - ChronoDuration::days(30), today)
        .with_page(250, 0);
    match config.plaid.transactions_get(&request).await {
        Ok(response) => {
            let metadata: Vec<TxMeta> = response
                .transactions
                .iter()
                .map(TxMeta::from_plaid)
                .collect();
            if let Some(cache) = &config.cache {
                cache.put(item_id, &metadata).await;
            }
            transactions.extend(metadata);
        }
        Err(e) => view.error = Some(ApiError::plaid("transactions", &e).code()),
    }
    Ok(view)
}

async fn load_dashboard(config: &Config, user_id: &str) -> Result<Dashboard, ApiError> {
    let mut transactions = Vec::new();
    let mut hits = (0, 0);
    let mut items = Vec::new();
    for item_id in config.users.items(user_id).await? {
        items.push(load_item(config, &item_id, &mut transactions, &mut hits).await?);
    }
    let mut totals: BTreeMap<String, f64> = BTreeMap::new();
    for t in &transactions {
        if t.amount > 0.0 {
            *totals.entry(t.category.clone()).or_default() += t.amount;
        }
    }
    let mut spending: Vec<CategoryTotal> = totals
        .into_iter()
        .map(|(category, total)| CategoryTotal {
            category,
            total: (total * 100.0).round() / 100.0,
        })
        .collect();
    spending.sort_by(|a, b| b.total.total_cmp(&a.total));
    transactions.sort_by(|a, b| b.date.cmp(&a.date));
    transactions.truncate(25);
    let cache = match (&config.cache, hits) {
        (None, _) => "off",
        (Some(_), (_, 0)) => "hit",
        (Some(_), (0, _)) => "miss",
        (Some(_), _) => "mixed",
    };
    Ok(Dashboard {
        user_id: user_id.to_owned(),
        items,
        spending,
        transactions,
        cache,
    })
}

async fn dashboard(State(config): AppState, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = signed_in(&config, &headers).await?;
    let dashboard = load_dashboard(&config, &user.user_id).await?;
    tracing::info!(
        items = dashboard.items.len(),
        cache = dashboard.cache,
        "dashboard served"
    );
    Ok(server_support::json_response(&dashboard))
}

// ---------------------------------------------------------------------------------------------
// The page.

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn money(amount: Option<f64>, currency: Option<&str>) -> String {
    match amount {
        Some(a) => format!("{a:.2} {}", esc(currency.unwrap_or(""))),
        None => "–".to_owned(),
    }
}

/// Spending by category as a horizontal bar chart in inline SVG.
fn spending_svg(spending: &[CategoryTotal]) -> String {
    const ROW: usize = 26;
    const LABEL: f64 = 190.0;
    const BARS: f64 = 300.0;
    let max = spending.iter().map(|c| c.total).fold(0.0_f64, f64::max);
    let height = spending.len().max(1) * ROW + 8;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"{height}\" \
         role=\"img\" aria-label=\"Spending by category, last 30 days\">"
    );
    for (i, c) in spending.iter().enumerate() {
        let y = i * ROW + 4;
        let width = if max > 0.0 { c.total / max * BARS } else { 0.0 };
        let _ = write!(
            svg,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" font-size=\"13\">{label}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{width:.1}\" height=\"18\" fill=\"#3b6ea5\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\" font-size=\"13\">{total:.2}</text>",
            lx = LABEL - 8.0,
            ty = y + 14,
            label = esc(&c.category),
            vx = LABEL + width + 6.0,
            total = c.total,
        );
    }
    svg.push_str("</svg>");
    svg
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{padding:.25rem .75rem;\
border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right}\
.warn{color:#a33}form{display:inline-block;margin-right:1rem}";

fn page_html(dashboard: Option<&Dashboard>, sandbox_helpers: bool) -> String {
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tokenward hybrid \
         server</title><style>{STYLE}</style></head><body><h1>Your accounts</h1>"
    );
    let link_form = if sandbox_helpers {
        "<form method=\"post\" action=\"/demo/link\"><button>Link a sandbox bank</button></form>"
    } else {
        ""
    };
    let Some(d) = dashboard else {
        let _ = write!(out, "<p>Not signed in.</p>{link_form}</body></html>");
        return out;
    };
    if d.items.is_empty() {
        out.push_str("<p>No bank linked yet.</p>");
    }
    for item in &d.items {
        let _ = write!(out, "<h2>Item {}</h2>", esc(&item.item_id));
        if item.health != "healthy" {
            let _ = write!(out, "<p class=\"warn\">Health: {}</p>", esc(item.health));
        }
        if let Some(error) = item.error {
            let _ = write!(out, "<p class=\"warn\">Plaid: {}</p>", esc(error));
        }
        out.push_str(
            "<table><tr><th>Account</th><th>Type</th><th>Current</th><th>Available</th></tr>",
        );
        for a in &item.accounts {
            let _ = write!(
                out,
                "<tr><td>{} {}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&a.name),
                a.mask
                    .as_deref()
                    .map(|m| format!("••{}", esc(m)))
                    .unwrap_or_default(),
                esc(a.subtype.as_deref().unwrap_or(&a.account_type)),
                money(a.current, a.currency.as_deref()),
                money(a.available, a.currency.as_deref()),
            );
        }
        out.push_str("</table>");
    }
    if !d.spending.is_empty() {
        out.push_str("<h2>Spending by category, last 30 days</h2>");
        out.push_str(&spending_svg(&d.spending));
        out.push_str(
            "<h2>Recent transactions</h2><table><tr><th>Date</th><th>Merchant</th>\
             <th>Category</th><th>Amount</th></tr>",
        );
        for t in &d.transactions {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{:.2}</td></tr>",
                esc(&t.date),
                esc(&t.merchant),
                esc(&t.category),
                t.amount
            );
        }
        out.push_str("</table>");
    }
    let _ = write!(
        out,
        "{link_form}<form method=\"post\" action=\"/demo/delete-me\">\
         <button>Delete my data</button></form></body></html>"
    );
    out
}

async fn page(State(config): AppState, headers: HeaderMap) -> Result<Response, ApiError> {
    match signed_in(&config, &headers).await {
        Ok(user) => {
            let dashboard = load_dashboard(&config, &user.user_id).await?;
            return Ok(html(
                StatusCode::OK,
                page_html(Some(&dashboard), config.sandbox_helpers),
            ));
        }
        // The database failed: a 500, not a signed-out page.
        Err(e) if e.status() != StatusCode::UNAUTHORIZED => return Err(e),
        Err(_) => {}
    }
    let mut page = html(StatusCode::OK, page_html(None, config.sandbox_helpers));
    if server_support::read_cookie(&headers, SESSION_COOKIE).is_some() {
        // A stale cookie: delete it.
        page.headers_mut().append(
            header::SET_COOKIE,
            server_support::clear_cookie(SESSION_COOKIE),
        );
    }
    Ok(page)
}

fn see_other(cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/"));
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The page's "Link a sandbox bank": sign up if needed, then what Link and the exchange do.
async fn demo_link(State(config): AppState, headers: HeaderMap) -> Result<Response, ApiError> {
    let (user_id, session_id) = user_or_sign_up(&config, &headers).await?;
    let cookie = session_id.map(|id| session_cookie(&config, &id));
    let public_token = create_sandbox_public_token(&config).await?;
    link_item(&config, &user_id, public_token).await?;
    Ok(see_other(cookie))
}

async fn demo_delete_me(State(config): AppState, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = signed_in(&config, &headers).await?;
    erase(&config, &user).await?;
    Ok(see_other(Some(server_support::clear_cookie(
        SESSION_COOKIE,
    ))))
}

// ---------------------------------------------------------------------------------------------
// Logout and deletion.

async fn logout(State(config): AppState, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = signed_in(&config, &headers).await?;
    config.users.end_session(&user.session_id).await?;
    let mut reply = server_support::json_response(&serde_json::json!({ "logged_out": true }));
    reply.headers_mut().append(
        header::SET_COOKIE,
        server_support::clear_cookie(SESSION_COOKIE),
    );
    Ok(reply)
}

/// Removes the user's Items at Plaid, then erases them from the vault and the cache, then the
/// user and their sessions. A Plaid failure other than "already gone" stops before anything
/// local is erased, so a retry can still remove the Item (erasing first would orphan it at
/// Plaid with no token left to remove it).
async fn erase(config: &Config, user: &SignedIn) -> Result<usize, ApiError> {
    let items = config.users.items(&user.user_id).await?;
    let mut removed = 0;
    for item_id in &items {
        let id = ItemId::new(item_id.as_str()).map_err(|_| ApiError::internal())?;
        let stored = match config.vault.get(&id).await {
            Ok(stored) => stored,
            Err(ReadError::NotFound(_)) => continue,
            Err(e) => {
                tracing::error!(error = %e, "vault open failed");
                return Err(ApiError::internal());
            }
        };
        match config
            .plaid
            .item_remove(&ItemRemoveRequest::new(stored.token))
            .await
        {
            Ok(response) => {
                removed += 1;
                tracing::info!(
                    item_id = %item_id,
                    request_id = %response.request_id,
                    "item removed at Plaid"
                );
            }
            Err(e) => {
                let mapped = ApiError::plaid("item remove", &e);
                if mapped.status() != StatusCode::UNAUTHORIZED {
                    return Err(mapped);
                }
            }
        }
    }
    let user_id = UserId::new(user.user_id.as_str()).map_err(|_| ApiError::internal())?;
    let erasure = config
        .vault
        .erase_user(&user_id, ACTOR, config.timestamp())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "vault erasure failed");
            ApiError::internal()
        })?;
    if let Some(cache) = &config.cache {
        for item_id in &items {
            cache.invalidate(item_id).await;
        }
    }
    config.users.delete(&user.user_id).await?;
    tracing::info!(items = erasure.items.len(), removed, "user erased");
    Ok(removed)
}

async fn delete_me(State(config): AppState, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = signed_in(&config, &headers).await?;
    let removed = erase(&config, &user).await?;
    let mut reply = server_support::json_response(
        &serde_json::json!({ "deleted": true, "items_removed": removed }),
    );
    reply.headers_mut().append(
        header::SET_COOKIE,
        server_support::clear_cookie(SESSION_COOKIE),
    );
    Ok(reply)
}

// ---------------------------------------------------------------------------------------------
// Webhooks.

fn webhook_reply(status: StatusCode, outcome: &'static str) -> Response {
    let mut reply = server_support::json_response(&serde_json::json!({ "status": outcome }));
    *reply.status_mut() = status;
    reply
}

async fn webhook(State(config): AppState, headers: HeaderMap, body: Bytes) -> Response {
    let header = headers
        .get("plaid-verification")
        .and_then(|v| v.to_str().ok());
    let verified = match config.verifier.verify_now(header, &body).await {
        Ok(verified) => verified,
        Err(e) if e.is_replay() => {
            tracing::info!("webhook replay acknowledged, not processed again");
            return webhook_reply(StatusCode::OK, "duplicate");
        }
        Err(VerifyError::MalformedBody(e)) => {
            // Authentic but unreadable: acknowledge, or Plaid retries it forever.
            tracing::warn!(error = %e, "verified webhook with an unreadable body");
            return webhook_reply(StatusCode::OK, "ignored");
        }
        Err(e) => {
            tracing::warn!(error = %e, "webhook rejected");
            return webhook_reply(StatusCode::UNAUTHORIZED, "unverified");
        }
    };
    let event = &verified.event;
    let Some(item) = event.item() else {
        return webhook_reply(StatusCode::OK, "ignored");
    };
    tracing::info!(
        webhook_type = event.webhook_type(),
        webhook_code = event.webhook_code(),
        item_id = %item.item_id,
        delivery = %verified.delivery_id_hex(),
        "webhook verified"
    );
    match handle_event(&config, event, &item.item_id).await {
        Ok(outcome) => webhook_reply(StatusCode::OK, outcome),
        // Our failure: a 5xx makes Plaid retry, and every handler is idempotent.
        Err(()) => webhook_reply(StatusCode::INTERNAL_SERVER_ERROR, "retry"),
    }
}

/// Applies one verified event. Every effect is idempotent (a cache delete, a compare-and-swap
/// of the health state), so Plaid's retries and duplicate events change nothing twice.
async fn handle_event(
    config: &Config,
    event: &WebhookEvent,
    item_id: &str,
) -> Result<&'static str, ()> {
    let Ok(id) = ItemId::new(item_id) else {
        return Ok("ignored");
    };
    let record = match config.vault.item(&id).await {
        Ok(record) => record,
        // An Item we do not hold (erased, or never ours).
        Err(ReadError::NotFound(_)) => return Ok("ignored"),
        Err(e) => {
            tracing::error!(error = %e, "vault read failed");
            return Err(());
        }
    };
    let health = match event {
        WebhookEvent::TransactionsSyncUpdatesAvailable { .. }
        | WebhookEvent::TransactionsDefaultUpdate { .. }
        | WebhookEvent::TransactionsInitialUpdate { .. }
        | WebhookEvent::TransactionsHistoricalUpdate { .. }
        | WebhookEvent::TransactionsRemoved { .. } => {
            if let Some(cache) = &config.cache {
                cache.invalidate(item_id).await;
            }
            return Ok("processed");
        }
        WebhookEvent::ItemError { error, .. } if error.is_login_required() => {
            HealthState::NeedsReauth
        }
        WebhookEvent::ItemPendingExpiration { .. } | WebhookEvent::ItemPendingDisconnect { .. } => {
            HealthState::ExpiringSoon
        }
        WebhookEvent::ItemUserPermissionRevoked { .. } => HealthState::PermissionRevoked,
        WebhookEvent::ItemLoginRepaired { .. } => HealthState::Healthy,
        _ => return Ok("ignored"),
    };
    if record.health_state == health {
        return Ok("processed");
    }
    let Ok(note) = AuditNote::new(ACTOR, format!("webhook {}", event.webhook_code())) else {
        return Err(());
    };
    match config
        .vault
        .set_health_state(&id, record.health_state, health, &note, config.timestamp())
        .await
    {
        // Another delivery moved it first: that is the idempotent outcome.
        Ok(_) | Err(WriteError::StateConflict { .. } | WriteError::NotFound(_)) => Ok("processed"),
        Err(e) => {
            tracing::error!(error = %e, "vault health update failed");
            Err(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sandbox helpers.

#[derive(Deserialize)]
struct FireBody {
    code: String,
}

/// Fires a sandbox webhook for each of the user's Items (`SYNC_UPDATES_AVAILABLE`,
/// `DEFAULT_UPDATE`, `LOGIN_REPAIRED`, `NEW_ACCOUNTS_AVAILABLE`).
async fn sandbox_fire_webhook(
    State(config): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = signed_in(&config, &headers).await?;
    let body: FireBody = server_support::parse_body(&body)?;
    let code = match body.code.as_str() {
        "SYNC_UPDATES_AVAILABLE" => SandboxWebhookCode::SyncUpdatesAvailable,
        "DEFAULT_UPDATE" => SandboxWebhookCode::DefaultUpdate,
        "LOGIN_REPAIRED" => SandboxWebhookCode::LoginRepaired,
        "NEW_ACCOUNTS_AVAILABLE" => SandboxWebhookCode::NewAccountsAvailable,
        _ => return Err(ApiError::bad_request("unsupported_code")),
    };
    let mut fired = 0;
    for item_id in config.users.items(&user.user_id).await? {
        let stored = token_of(&config, &item_id).await?;
        let request = SandboxItemFireWebhookRequest::new(stored, code.clone());
        config
            .plaid
            .sandbox_item_fire_webhook(&request)
            .await
            .map_err(|e| ApiError::plaid("fire webhook", &e))?;
        fired += 1;
    }
    Ok(server_support::json_response(
        &serde_json::json!({ "fired": fired }),
    ))
}

/// Puts each of the user's Items into `ITEM_LOGIN_REQUIRED` (Plaid then sends an `ERROR`
/// webhook).
async fn sandbox_reset_login(
    State(config): AppState,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = signed_in(&config, &headers).await?;
    let mut reset = 0;
    for item_id in config.users.items(&user.user_id).await? {
        let stored = token_of(&config, &item_id).await?;
        config
            .plaid
            .sandbox_item_reset_login(&SandboxItemResetLoginRequest::new(stored))
            .await
            .map_err(|e| ApiError::plaid("reset login", &e))?;
        reset += 1;
    }
    Ok(server_support::json_response(
        &serde_json::json!({ "reset": reset }),
    ))
}

/// The access token of `item_id`, opened from the vault (a failure is logged, the reply a 500).
async fn token_of(config: &Config, item_id: &str) -> Result<AccessToken, ApiError> {
    let id = ItemId::new(item_id).map_err(|_| ApiError::internal())?;
    let stored = config.vault.get(&id).await.map_err(|e| {
        tracing::error!(error = %e, "vault open failed");
        ApiError::internal()
    })?;
    Ok(stored.token)
}
