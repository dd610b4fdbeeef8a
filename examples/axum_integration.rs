//! The smallest useful integration: an axum service that exchanges a Link `public_token`,
//! keeps the access token sealed in the vault, and serves account balances without ever
//! letting the token leave the server.
//!
//! The part between the `integration` markers is the README's integration example, word for
//! word (a test checks that they agree).
//!
//! ```sh
//! cargo run --example axum_integration            # against the in-process emulator
//! PLAID_CLIENT_ID=... PLAID_SECRET=... PLAID_ENV=sandbox \
//!     TOKENWARD_KEYRING_FILE=keyring.json cargo run --example axum_integration
//! ```
//!
//! It listens on `127.0.0.1:3000` (or `--listen ADDR`, or `LISTEN`). Try it against the emulator,
//! whose address (`EMULATOR` below) it prints at start:
//!
//! ```sh
//! curl -X POST EMULATOR/sandbox/public_token/create -H 'PLAID-CLIENT-ID: demo' \
//!     -H 'PLAID-SECRET: demo' -H 'content-type: application/json' \
//!     -d '{"institution_id":"ins_109508","initial_products":["transactions"]}'
//! curl -X POST localhost:3000/link -H 'content-type: application/json' \
//!     -d '{"user_id":"user-1","public_token":"public-sandbox-…"}'     # answers the Item id
//! curl localhost:3000/items/ITEM_ID/balances
//! ```
//!
//! The `quickstart` and `hybrid_server` examples show the whole flow, sessions and webhooks.

use std::sync::Arc;
use std::time::SystemTime;

use tokenward_envelope::Cipher;

use axum::extract::{Json, Path, State};
use axum::{Router, http::StatusCode, response::IntoResponse, response::Response, routing};
use tokenward_plaid::PlaidApi;
use tokenward_plaid::models::{AccountsGetRequest, ItemPublicTokenExchangeRequest as Exchange};
use tokenward_redact::PublicToken;
use tokenward_vault::{AuditNote, ItemId, SqlVault, Timestamp, UserId, Vault};

#[path = "server_support/mod.rs"]
mod server_support;

#[derive(Clone)]
struct App {
    plaid: Arc<dyn PlaidApi>,
    vault: Arc<SqlVault>,
}

#[derive(serde::Deserialize)]
struct Link {
    user_id: String,
    public_token: String,
}

// integration:begin
/// The browser sends the short-lived public token; the access token never leaves the server.
async fn link(State(app): State<App>, Json(link): Json<Link>) -> Result<String, Fail> {
    let public_token = PublicToken::new(link.public_token)?;
    let res = app
        .plaid
        .item_public_token_exchange(&Exchange::new(public_token))
        .await?;
    let (item, user) = (ItemId::new(res.item_id)?, UserId::new(link.user_id)?);
    let note = AuditNote::new("api", "linked")?;
    let now = Timestamp::from_system_time(SystemTime::now()).ok_or(Fail)?;
    // Sealed under the primary KEK, bound to this Item and user, audited in one transaction.
    app.vault
        .insert_item(&item, &user, &res.access_token, &note, now)
        .await?;
    Ok(item.as_str().to_owned())
}

/// Balances: the vault opens the token, Plaid answers, nothing is kept.
async fn balances(State(app): State<App>, Path(item): Path<String>) -> Result<String, Fail> {
    let token = app.vault.get(&ItemId::new(item)?).await?.token;
    let res = app
        .plaid
        .accounts_get(&AccountsGetRequest::new(token))
        .await?;
    let balances = res
        .accounts
        .iter()
        .map(|a| (&a.name, a.balances.current.unwrap_or(0.0)));
    let lines = balances.map(|(name, current)| format!("{name}: {current:.2}\n"));
    Ok(lines.collect())
}
// integration:end

fn router(app: App) -> Router {
    let router = Router::new().route("/link", routing::post(link));
    router
        .route("/items/{item}/balances", routing::get(balances))
        // No caching of balances, no sniffing, no framing, no referrer (as the other examples).
        .layer(axum::middleware::map_response(
            server_support::security_headers,
        ))
        .with_state(app)
}

/// Any failure is a bare 502: no error text (so no token or secret) reaches the client.
struct Fail;
impl<E: std::error::Error> From<E> for Fail {
    fn from(_: E) -> Self {
        Fail
    }
}
impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        StatusCode::BAD_GATEWAY.into_response()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    server_support::init_tracing()?;
    // Keys from TOKENWARD_KEYRING / TOKENWARD_KEYRING_FILE when set, else a throwaway keyring;
    // a keyring that is set but broken (malformed, readable by others) stops the server.
    let keyring = server_support::keyring_from_env()?;
    let dir = tempfile::tempdir()?;
    let vault =
        SqlVault::sqlite_file(dir.path().join("vault.db"), Cipher::new(Arc::new(keyring))).await?;

    // Plaid's sandbox when PLAID_CLIENT_ID is set, else the in-process emulator (kept alive in
    // `setup` for as long as the server runs).
    let setup = server_support::plaid_from_env().await?;
    if let Some(sandbox) = &setup.sandbox {
        emulator_notice(&sandbox.base_url());
    }

    let app = App {
        plaid: Arc::clone(&setup.api),
        vault: Arc::new(vault),
    };
    let listener = tokio::net::TcpListener::bind(server_support::listen_addr()?).await?;
    axum::serve(listener, router(app)).await?;
    Ok(())
}

/// Says where the emulator listens, so `curl` can create a public token there.
#[allow(clippy::print_stdout, reason = "an example's console output")]
fn emulator_notice(emulator: &str) {
    println!(
        "emulator at {emulator}: POST {emulator}/sandbox/public_token/create for a public token"
    );
}
