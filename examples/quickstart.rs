//! tokenward quick start: the whole life of a Plaid access token, end to end, in one run.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With no configuration it starts the Plaid emulator (`tokenward-sandbox`) in this process,
//! generates a keyring (KEK version 1, in memory), opens an `SQLite` vault in a temporary
//! directory and walks the clean flow, one numbered step per line:
//!
//! 1. create a Link token (what the browser gets to open Plaid Link);
//! 2. get a public token (in sandbox, `/sandbox/public_token/create` plays the user in Link);
//! 3. exchange it, server side, for the long-lived access token;
//! 4. seal the access token (AES-256-GCM envelope, bound to the Item and user) into the vault;
//! 5. read it back from the vault to fetch accounts and transactions, and print spending by
//!    category for the last 30 days;
//! 6. receive a webhook the emulator signs (ES256) on a loopback listener and verify it with
//!    `WebhookVerifier` (signature, body hash, freshness, replay);
//! 7. rotate the access token with the crash-safe `Rotator` (`/item/access_token/invalidate`);
//! 8. rotate the key-encryption key: stage and promote version 2, rewrap every envelope with
//!    `RewrapRunner`, then disable version 1;
//! 9. print the audit report: the vault's journal, Items by state, KEK versions with their
//!    envelope counts.
//!
//! No token, secret or key is ever printed: the code never formats one, and every line goes
//! through `tokenward-redact`'s text scrubber on its way out as a second line of defence.
//!
//! Against Plaid's real sandbox, set your sandbox keys (the webhook step needs a public URL,
//! so it is skipped there):
//!
//! ```text
//! PLAID_CLIENT_ID=… PLAID_SECRET=… PLAID_ENV=sandbox cargo run --example quickstart
//! ```
//!
//! `PLAID_ENV=production` is refused: a quick start has no business with real bank data.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example talks to its user on stdout and reports failure on stderr"
)]

use std::collections::BTreeMap;
use std::error::Error;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::HeaderMap;
use tokenward_envelope::{Cipher, KeyVersion, Keyring};
use tokenward_plaid::models::{
    AccountsGetRequest, CountryCode, ItemGetRequest, ItemPublicTokenExchangeRequest,
    LinkTokenCreateRequest, LinkTokenCreateUser, Product, SandboxItemFireWebhookRequest,
    SandboxPublicTokenCreateRequest, SandboxWebhookCode, TransactionsGetRequest,
};
use tokenward_plaid::webhooks::{PlaidKeySource, WebhookVerifier};
use tokenward_plaid::{Environment, HttpPlaidClient, PlaidApi};
use tokenward_redact::integrations::redacting_fmt_layer;
use tokenward_redact::{AccessToken, ClientId, ClientSecret, Policy};
use tokenward_rotation::{Actor, KekManager, RewrapRunner, RotationReason, Rotator, VaultJobStore};
use tokenward_sandbox::Sandbox;
use tokenward_vault::{
    AuditNote, CredentialState, HealthState, ItemId, JobId, LeaseOwner, SqlVault, StateFilter,
    Timestamp, UserId, Vault,
};
use tokio::sync::mpsc;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;

/// Errors of the flow: every library error here is secret-free by design.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// The emulator's client id (made up: the emulator checks it like Plaid would).
pub const EMULATOR_CLIENT_ID: &str = "6a1f0c2b3d4e5f60718293a4";
/// The emulator's client secret (made up, shaped like a Plaid secret).
pub const EMULATOR_SECRET: &str = "quickst4rtem0lat0rs3cr3tk3y0000";

/// How many numbered steps the flow prints.
pub const STEPS: usize = 9;

const INSTITUTION: &str = "ins_109508";
const USER: &str = "user-quickstart";
const ACTOR: &str = "quickstart";

/// What the flow needs: a Plaid client, a keyring and a place for the vault.
pub struct Flow {
    /// The Plaid API: the emulator or Plaid's sandbox.
    pub api: Arc<dyn PlaidApi>,
    /// Where the calls go, for the log (`emulator at http://…` or `Plaid sandbox`).
    pub target: String,
    /// Whether the webhook step can run (it needs Plaid to reach a listener of ours).
    pub webhooks: bool,
    /// The key-encryption keys; the flow adds and promotes a version.
    pub keyring: Arc<Keyring>,
    /// The `SQLite` file of the vault (created).
    pub vault_path: PathBuf,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("target", &self.target)
            .field("webhooks", &self.webhooks)
            .field("keyring", &self.keyring)
            .field("vault_path", &self.vault_path)
            .finish_non_exhaustive()
    }
}

/// The flow's result: the Item it linked and the KEK versions before and after.
#[derive(Debug)]
pub struct Outcome {
    /// The linked Item.
    pub item_id: ItemId,
    /// The KEK version that sealed the token first.
    pub old_kek: KeyVersion,
    /// The KEK version every envelope is under at the end.
    pub new_kek: KeyVersion,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let scrubber = Policy::plaid();
    // The same scrubber behind everything else that could print: panic messages, and the
    // warnings and errors of dependencies that log through `tracing` (on stderr).
    tokenward_redact::report::install_panic_hook(scrubber.clone());
    let subscriber = tracing_subscriber::registry().with(
        redacting_fmt_layer(scrubber.clone())
            .with_writer(io::stderr)
            .with_filter(LevelFilter::WARN),
    );
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!("quickstart: a tracing subscriber was already installed; keeping it");
    }
    match start_and_run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let mut current: Option<&(dyn Error + 'static)> = Some(&*error);
            let mut prefix = "quickstart failed";
            while let Some(error) = current {
                eprintln!("{prefix}: {}", scrubber.scrub_text(&error.to_string()));
                prefix = "  caused by";
                current = error.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start_and_run() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let keyring = Arc::new(Keyring::generate()?);
    let vault_path = dir.path().join("vault.sqlite3");
    let mut stdout = io::stdout().lock();

    // Plaid's real sandbox when its keys are set, the in-process emulator otherwise.
    let real = use_plaid_sandbox(
        std::env::var_os("PLAID_CLIENT_ID").is_some(),
        std::env::var_os("PLAID_SECRET").is_some(),
    )?;
    let outcome = if real {
        let api = plaid_sandbox_from_env()?;
        let flow = Flow {
            api: Arc::new(api),
            target: "Plaid sandbox (PLAID_CLIENT_ID / PLAID_SECRET)".to_owned(),
            webhooks: false,
            keyring,
            vault_path,
        };
        run(&mut stdout, flow).await?
    } else {
        let (sandbox, api) = start_emulator().await?;
        let flow = Flow {
            api: Arc::new(api),
            target: format!("in-process emulator at {}", sandbox.base_url()),
            webhooks: true,
            keyring,
            vault_path,
        };
        let outcome = run(&mut stdout, flow).await;
        sandbox.shutdown().await;
        outcome?
    };
    writeln!(
        stdout,
        "\ndone: Item {} is on a fresh token under KEK {} ({} is disabled)",
        outcome.item_id, outcome.new_kek, outcome.old_kek
    )?;
    Ok(())
}

/// Starts the emulator on a free loopback port, with fixed credentials, and a client for it.
///
/// # Errors
///
/// The emulator did not start or the client could not be built.
pub async fn start_emulator() -> Result<(Sandbox, HttpPlaidClient), BoxError> {
    let client_id = ClientId::new(EMULATOR_CLIENT_ID)?;
    let secret = ClientSecret::new(EMULATOR_SECRET)?;
    let sandbox = Sandbox::builder()
        .credentials(&client_id, &secret)
        .start()
        .await?;
    let api = HttpPlaidClient::builder()
        .environment(Environment::Custom(sandbox.base_url()))
        .credentials(client_id, secret)
        .timeout(Duration::from_secs(30))
        .build()?;
    Ok((sandbox, api))
}

/// Whether to run against Plaid's sandbox: both keys set. One without the other is a
/// mistake worth a clear message rather than a silent run against the emulator.
///
/// # Errors
///
/// Exactly one of the two variables is set.
pub fn use_plaid_sandbox(client_id_set: bool, secret_set: bool) -> Result<bool, BoxError> {
    match (client_id_set, secret_set) {
        (true, true) => Ok(true),
        (false, false) => Ok(false),
        (true, false) => Err(
            "PLAID_CLIENT_ID is set but PLAID_SECRET is not: set both to \
                              run against Plaid's sandbox, or neither for the emulator"
                .into(),
        ),
        (false, true) => Err(
            "PLAID_SECRET is set but PLAID_CLIENT_ID is not: set both to \
                              run against Plaid's sandbox, or neither for the emulator"
                .into(),
        ),
    }
}

/// A client for Plaid's sandbox from `PLAID_CLIENT_ID`, `PLAID_SECRET` and `PLAID_ENV`.
///
/// # Errors
///
/// `PLAID_ENV` names production or anything but the sandbox, or a variable is invalid.
pub fn plaid_sandbox_from_env() -> Result<HttpPlaidClient, BoxError> {
    check_plaid_env(std::env::var("PLAID_ENV").ok().as_deref())?;
    Ok(HttpPlaidClient::from_env()?)
}

/// Accepts `PLAID_ENV` unset or `sandbox`; refuses production, and anything else.
///
/// # Errors
///
/// A message saying why and what to set instead.
pub fn check_plaid_env(value: Option<&str>) -> Result<(), BoxError> {
    match value.map(str::trim) {
        None | Some("sandbox") => Ok(()),
        Some("production") => Err("PLAID_ENV=production is refused: the quick start runs \
                                   against the sandbox only (set PLAID_ENV=sandbox and sandbox \
                                   keys)"
            .into()),
        Some(_) => Err("PLAID_ENV must be `sandbox` (or unset) for the quick start".into()),
    }
}

/// Runs the whole flow, writing a numbered, redacted log to `out`.
///
/// # Errors
///
/// The first step that fails, with the reason (never a token or secret).
pub async fn run(out: &mut dyn Write, flow: Flow) -> Result<Outcome, BoxError> {
    let mut log = Log::new(out);
    log.line(format_args!(
        "tokenward quick start: Plaid via {}",
        flow.target
    ))?;
    let vault =
        SqlVault::sqlite_file(&flow.vault_path, Cipher::new(Arc::clone(&flow.keyring))).await?;
    log.line(format_args!(
        "keyring: generated in memory, KEK {} primary; vault: SQLite at {}",
        version_label(flow.keyring.primary_version()),
        flow.vault_path.display()
    ))?;
    let api = &*flow.api;

    // The listener Plaid posts webhooks to (the emulator's Items are linked with its URL).
    let hook = if flow.webhooks {
        Some(Hook::start().await?)
    } else {
        None
    };
    let webhook_url = hook.as_ref().map(|h| h.url.clone());

    // 1-3: Link, the public token and the exchange.
    link_token(&mut log, api, webhook_url.as_deref()).await?;
    let public_token = public_token(&mut log, api, webhook_url.as_deref()).await?;
    log.step("exchange the public token for an access token (server side, never sent on)")?;
    let exchanged = api
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest::new(public_token))
        .await?;
    let item = ItemId::new(exchanged.item_id)?;
    log.detail(format_args!(
        "item_id {item}; access token received (request_id {})",
        exchanged.request_id
    ))?;
    let first_token = exchanged.access_token;

    // 4: the token goes into the vault and is only ever read back from it.
    store(&mut log, &vault, &item, &first_token, &exchanged.request_id).await?;

    // 5: data calls read the token from the vault.
    spending(&mut log, api, &vault, &item).await?;

    // 6: a signed webhook.
    if let Some(mut hook) = hook {
        verify_webhook(&mut log, &flow.api, &vault, &item, &mut hook).await?;
    } else {
        log.step("receive and verify a signed webhook")?;
        log.detail(
            "skipped: Plaid's sandbox needs a public URL to post to; unset PLAID_CLIENT_ID and \
             PLAID_SECRET to see this step against the emulator",
        )?;
    }

    // 7: rotate the access token.
    rotate_token(&mut log, api, &vault, &item, &first_token).await?;
    drop(first_token);

    // 8: rotate the KEK and rewrap.
    let (old_kek, new_kek) = rotate_kek(&mut log, &vault).await?;

    // 9: the audit report.
    audit_report(&mut log, &vault).await?;
    vault.close().await;
    Ok(Outcome {
        item_id: item,
        old_kek,
        new_kek,
    })
}

/// Step 1: a Link token for the front end.
async fn link_token(
    log: &mut Log<'_>,
    api: &dyn PlaidApi,
    webhook: Option<&str>,
) -> Result<(), BoxError> {
    log.step("create a Link token for the browser (/link/token/create)")?;
    let mut request = LinkTokenCreateRequest::new(
        "tokenward quick start",
        "en",
        vec![CountryCode::Us],
        LinkTokenCreateUser::new(USER),
    )
    .with_products(vec![Product::Transactions]);
    if let Some(url) = webhook {
        request = request.with_webhook(url);
    }
    let created = api.link_token_create(&request).await?;
    log.detail(format_args!(
        "Link token issued for {USER}, expires {} (request_id {}); it goes to the browser, \
         which opens Plaid Link with it",
        created.expiration.format("%Y-%m-%d %H:%M UTC"),
        created.request_id
    ))
}

/// Step 2: the public token Link would hand back; in sandbox, Plaid makes one for us.
async fn public_token(
    log: &mut Log<'_>,
    api: &dyn PlaidApi,
    webhook: Option<&str>,
) -> Result<tokenward_redact::PublicToken, BoxError> {
    log.step("get a public token as Link returns it (/sandbox/public_token/create)")?;
    let mut request =
        SandboxPublicTokenCreateRequest::new(INSTITUTION, vec![Product::Transactions]);
    if let Some(url) = webhook {
        request = request.with_webhook(url);
    }
    let created = api.sandbox_public_token_create(&request).await?;
    log.detail(format_args!(
        "public token for {INSTITUTION} received (single use, short-lived; request_id {})",
        created.request_id
    ))?;
    Ok(created.public_token)
}

/// Step 4: seal and store.
async fn store(
    log: &mut Log<'_>,
    vault: &SqlVault,
    item: &ItemId,
    token: &AccessToken,
    request_id: &str,
) -> Result<(), BoxError> {
    log.step("seal the access token and store it in the vault")?;
    let note = AuditNote::new(ACTOR, "public token exchanged")?.with_request_id(request_id)?;
    vault
        .insert_item(item, &UserId::new(USER)?, token, &note, now()?)
        .await?;
    let sealed = vault.get_sealed(item).await?;
    let column = sealed.envelope.to_text();
    let record = vault.item(item).await?;
    log.detail(format_args!(
        "stored as a {}-character `{}…` envelope: a fresh DEK seals the token, KEK {} wraps \
         the DEK; the context binds item, user and token version",
        column.len(),
        column.get(..5).unwrap_or_default(),
        sealed.envelope.kek_version()
    ))?;
    log.detail(format_args!(
        "Item row: token v{}, KEK {}, credential {}, health {}",
        record.token_version,
        record.kek_version,
        record.credential_state.as_str(),
        record.health_state.as_str()
    ))
}

/// Step 5: accounts and 30 days of spending by category, with the token read from the vault.
async fn spending(
    log: &mut Log<'_>,
    api: &dyn PlaidApi,
    vault: &SqlVault,
    item: &ItemId,
) -> Result<(), BoxError> {
    log.step("fetch accounts and transactions with the token read from the vault")?;
    let accounts = api
        .accounts_get(&AccountsGetRequest::new(vault.get(item).await?.token))
        .await?;
    for account in &accounts.accounts {
        log.detail(format_args!(
            "account {:<22} ••{:<4}  balance {:>10.2} {}",
            account.name,
            account.mask.as_deref().unwrap_or("----"),
            account.balances.current.unwrap_or_default(),
            account.balances.iso_currency_code.as_deref().unwrap_or("")
        ))?;
    }

    let end = chrono::Utc::now().date_naive();
    let start = end - chrono::Days::new(30);
    // Plaid's sandbox prepares transactions just after the Item is created.
    let mut tries = 0;
    let page = loop {
        let token = vault.get(item).await?.token;
        let request = TransactionsGetRequest::new(token, start, end).with_page(500, 0);
        match api.transactions_get(&request).await {
            Ok(page) => break page,
            Err(error)
                if tries < 15
                    && error
                        .plaid_error()
                        .is_some_and(tokenward_plaid::PlaidError::is_transient) =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(error) => return Err(error.into()),
        }
    };

    let mut by_category: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for transaction in page.transactions.iter().filter(|t| t.amount > 0.0) {
        let category = transaction
            .personal_finance_category
            .as_ref()
            .map(|c| c.primary.clone())
            .or_else(|| {
                transaction
                    .category
                    .as_ref()
                    .and_then(|c| c.first().cloned())
            })
            .unwrap_or_else(|| "OTHER".to_owned());
        let entry = by_category.entry(category).or_default();
        entry.0 += transaction.amount;
        entry.1 += 1;
    }
    let mut rows: Vec<_> = by_category.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    log.detail(format_args!(
        "{} transactions from {start} to {end}; spending by category:",
        page.transactions.len()
    ))?;
    log.detail(format_args!(
        "  {:<28} {:>5} {:>11}",
        "category", "count", "spent"
    ))?;
    for (category, (total, count)) in rows.iter().take(8) {
        log.detail(format_args!("  {category:<28} {count:>5} {total:>11.2}"))?;
    }
    Ok(())
}

/// Step 6: the emulator signs a webhook; we verify it as Plaid's would be verified.
async fn verify_webhook(
    log: &mut Log<'_>,
    api: &Arc<dyn PlaidApi>,
    vault: &SqlVault,
    item: &ItemId,
    hook: &mut Hook,
) -> Result<(), BoxError> {
    log.step("receive and verify a signed webhook (ES256 JWT, body hash, freshness)")?;
    let token = vault.get(item).await?.token;
    let fired = api
        .sandbox_item_fire_webhook(&SandboxItemFireWebhookRequest::new(
            token,
            SandboxWebhookCode::SyncUpdatesAvailable,
        ))
        .await?;
    if !fired.webhook_fired {
        return Err("the emulator did not fire the webhook".into());
    }
    let delivery = tokio::time::timeout(Duration::from_secs(10), hook.rx.recv())
        .await
        .map_err(|_| "no webhook arrived within 10 s")?
        .ok_or("the webhook listener stopped")?;
    log.detail(format_args!(
        "POST {} received: {} body bytes, Plaid-Verification header {}",
        hook.url,
        delivery.body.len(),
        if delivery.header.is_some() {
            "present"
        } else {
            "missing"
        }
    ))?;

    let verifier = WebhookVerifier::new(PlaidKeySource::new(Arc::clone(api)));
    let webhook = verifier
        .verify(
            delivery.header.as_deref(),
            &delivery.body,
            SystemTime::now(),
        )
        .await?;
    log.detail(format_args!(
        "verified: {} / {} for Item {}, signed by key {}, body sha256 {}…",
        webhook.event.webhook_type(),
        webhook.event.webhook_code(),
        webhook.event.item().map_or("-", |i| i.item_id.as_str()),
        webhook.key_id,
        webhook.body_sha256_hex().get(..16).unwrap_or_default()
    ))?;

    // Plaid may deliver a webhook twice; the replay guard says so, and the handler answers 200
    // without acting twice.
    let again = verifier
        .verify(
            delivery.header.as_deref(),
            &delivery.body,
            SystemTime::now(),
        )
        .await;
    match again {
        Err(error) if error.is_replay() => log
            .detail("the same delivery again is recognised as a replay: handled once (idempotent)"),
        Err(error) => Err(error.into()),
        Ok(_) => Err("a replayed webhook was accepted twice".into()),
    }
}

/// Step 7: rotate the access token through the crash-safe rotation driver.
async fn rotate_token(
    log: &mut Log<'_>,
    api: &dyn PlaidApi,
    vault: &SqlVault,
    item: &ItemId,
    old_token: &AccessToken,
) -> Result<(), BoxError> {
    log.step("rotate the access token (/item/access_token/invalidate via the Rotator)")?;
    let before = vault.item(item).await?.token_version;
    let report = Rotator::new(api, vault, LeaseOwner::new(ACTOR)?)
        .rotate(item, RotationReason::Scheduled, &Actor::new(ACTOR))
        .await?;
    let after = vault.item(item).await?;
    if !report.alerts.is_empty() {
        return Err(format!("the rotation raised {} alert(s)", report.alerts.len()).into());
    }
    log.detail(format_args!(
        "token v{before} -> v{}: intent journalled, sent marker durable, new token stashed, \
         promoted and verified with /item/get; state {}",
        after.token_version, report.state
    ))?;
    // The probe needs its own copy: request types own their token.
    let probe = AccessToken::new(old_token.expose_secret())?;
    match api.item_get(&ItemGetRequest::new(probe)).await {
        Err(error) if error.is_invalid_access_token() => {
            log.detail("the old token is now refused by Plaid (INVALID_ACCESS_TOKEN)")
        }
        Err(error) => Err(error.into()),
        Ok(_) => Err("the old token still works after the rotation".into()),
    }
}

/// Step 8: a new KEK, a rewrap of every envelope under it, the old version disabled.
async fn rotate_kek(
    log: &mut Log<'_>,
    vault: &SqlVault,
) -> Result<(KeyVersion, KeyVersion), BoxError> {
    log.step("rotate the KEK: stage and promote a new version, rewrap, disable the old one")?;
    let keyring = vault.cipher().keyring();
    let old = keyring
        .primary_version()
        .ok_or("the keyring has no primary")?;
    let kek = KekManager::load(vault).await?;
    // The async path saves each phase: the journal shows the new version staged, then
    // promoted with the old primary made decrypt-only, as it happens.
    let new = kek.promote_new_primary().await?;
    log.detail(format_args!(
        "KEK {new} staged and promoted; {old} is decrypt-only and still protects {} \
         envelope(s)",
        vault.envelopes_under(old).await?
    ))?;
    // Disabling a version that still protects an envelope is refused.
    if let Err(refused) = kek.disable(old).await {
        log.detail(format_args!("disabling {old} now is refused: {refused}"))?;
    } else {
        return Err("a KEK still in use was disabled".into());
    }

    let store = VaultJobStore::new(vault, JobId::new(format!("kek-{new}"))?);
    let done = RewrapRunner::new(vault, &store).run().await?;
    let progress = done.progress();
    log.detail(format_args!(
        "rewrap job {}: {} rewrapped, {} failed, in {} batch(es); only the wrapped DEKs \
         changed, the token ciphertexts are untouched",
        done.name(),
        progress.rewrapped,
        progress.failed,
        progress.batches
    ))?;
    kek.disable(old).await?;
    log.detail(format_args!(
        "KEK {old} disabled: {} envelope(s) under it, {} under {new}",
        vault.envelopes_under(old).await?,
        vault.envelopes_under(new).await?
    ))?;
    Ok((old, new))
}

/// Step 9: what an auditor asks for.
async fn audit_report(log: &mut Log<'_>, vault: &SqlVault) -> Result<(), BoxError> {
    log.step("audit report: journal, Items by state, KEK versions")?;
    log.detail("journal (no token is ever written to it):")?;
    for record in vault.audit_since(Timestamp::EPOCH, 1_000).await? {
        let time = chrono::DateTime::from_timestamp_millis(record.at.unix_millis())
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_default();
        let change = match (&record.from_state, &record.to_state) {
            (Some(from), Some(to)) => format!("{from} -> {to}"),
            (None, Some(to)) => format!("-> {to}"),
            _ => String::new(),
        };
        let request_id = record
            .request_id
            .as_deref()
            .map(|id| format!("; request_id {id}"))
            .unwrap_or_default();
        log.detail(format_args!(
            "  #{:<3} {time} {:<17} {change:<24} {} (by {}{request_id})",
            record.id,
            record.event.as_str(),
            record.reason,
            record.actor,
        ))?;
    }

    let mut credential = Vec::new();
    for state in CredentialState::ALL {
        let items = vault
            .list_by_state(StateFilter::Credential(*state), None, 10_000)
            .await?;
        if !items.is_empty() {
            credential.push(format!("{} {}", state.as_str(), items.len()));
        }
    }
    let mut health = Vec::new();
    for state in HealthState::ALL {
        let items = vault
            .list_by_state(StateFilter::Health(*state), None, 10_000)
            .await?;
        if !items.is_empty() {
            health.push(format!("{} {}", state.as_str(), items.len()));
        }
    }
    log.detail(format_args!(
        "Items by credential state: {}; by health: {}",
        credential.join(", "),
        health.join(", ")
    ))?;

    let mut keks = Vec::new();
    for key in vault.cipher().keyring().keys() {
        keks.push(format!(
            "{} {} ({} envelope(s))",
            key.version,
            key.state,
            vault.envelopes_under(key.version).await?
        ));
    }
    log.detail(format_args!("KEK versions: {}", keks.join(", ")))
}

/// The numbered, redacted log: every line is scrubbed for secrets on its way out.
struct Log<'a> {
    out: &'a mut dyn Write,
    scrubber: Policy,
    step: usize,
}

impl<'a> Log<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        Log {
            out,
            scrubber: Policy::plaid(),
            step: 0,
        }
    }

    /// The next numbered step.
    fn step(&mut self, title: &str) -> Result<(), BoxError> {
        self.step += 1;
        let line = format!("[{}/{STEPS}] {title}", self.step);
        self.write(&line)
    }

    /// A detail line under the current step.
    fn detail(&mut self, text: impl std::fmt::Display) -> Result<(), BoxError> {
        self.write(&format!("      {text}"))
    }

    /// An unnumbered line.
    fn line(&mut self, text: impl std::fmt::Display) -> Result<(), BoxError> {
        self.write(&text.to_string())
    }

    fn write(&mut self, line: &str) -> Result<(), BoxError> {
        writeln!(self.out, "{}", self.scrubber.scrub_text(line))?;
        Ok(())
    }
}

/// One webhook as the listener received it.
struct Delivery {
    header: Option<String>,
    body: Bytes,
}

/// A loopback listener standing in for your webhook endpoint.
struct Hook {
    url: String,
    rx: mpsc::UnboundedReceiver<Delivery>,
    server: tokio::task::JoinHandle<()>,
}

impl Hook {
    async fn start() -> io::Result<Hook> {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/plaid/webhook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let tx = tx.clone();
                async move {
                    // Keep the raw bytes: the signature covers them exactly.
                    let header = headers
                        .get("plaid-verification")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    // A closed channel means the flow is over; Plaid only needs a 200.
                    let _ = tx.send(Delivery { header, body });
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/plaid/webhook", listener.local_addr()?);
        let server = tokio::spawn(async move {
            // Runs until the `Hook` is dropped; a serve error only ends this demo listener.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Hook { url, rx, server })
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        // The listener ends with the flow, on success or error.
        self.server.abort();
    }
}

fn now() -> Result<Timestamp, BoxError> {
    Timestamp::from_system_time(SystemTime::now()).ok_or_else(|| "the clock is before 1970".into())
}

fn version_label(version: Option<KeyVersion>) -> String {
    version.map_or_else(|| "?".to_owned(), |v| v.to_string())
}
