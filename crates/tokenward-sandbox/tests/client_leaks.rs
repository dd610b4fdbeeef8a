//! The leak canary over everything `HttpPlaidClient` and `WebhookVerifier` produce against the
//! emulator: every `tracing` event (hyper-util and h2 emit them) and every `log` record
//! (reqwest, rustls-platform-verifier) at TRACE, captured process-wide, plus `Debug` of the
//! client, its builder, its settings, the verifier and its parts, and of every request,
//! response and error (with its `source()` chain) of a run that touches every endpoint, every
//! error path, every fault and every verifier outcome. No text may hold an access, public or
//! link token, the client id or the secret.
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

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::NaiveDate;
use e2e_support::{
    CLIENT_ID, Canary, Hook, SECRET, WRONG_SECRET, assert_clean_text, client, client_with, dup,
    fast_retries, link_item, sandbox, system_time,
};
use tokenward_plaid::models::{
    AccountsBalanceGetRequest, AccountsGetRequest, CountryCode, ItemAccessTokenInvalidateRequest,
    ItemGetRequest, ItemPublicTokenExchangeRequest, ItemRemoveRequest, ItemWebhookUpdateRequest,
    LinkTokenCreateRequest, LinkTokenCreateUser, SandboxItemFireWebhookRequest,
    SandboxItemResetLoginRequest, SandboxWebhookCode, TransactionsGetRequest,
    TransactionsSyncRequest, WebhookVerificationKeyGetRequest,
};
use tokenward_plaid::webhooks::{PlaidKeySource, ReplayGuard, WebhookVerifier};
use tokenward_plaid::{Endpoint, Environment, HttpPlaidClient, PlaidApi, RetryPolicy};
use tokenward_redact::{AccessToken, ClientId, ClientSecret, PublicToken};
use tokenward_sandbox::{Clock as _, FaultPlan};
use tokenward_testkit::canary;

/// Everything logged in this process.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `log` logger that writes every record, at every level, into the capture buffer.
struct LogCapture;

impl log::Log for LogCapture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!(
            "LOG {} {}: {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        captured()
            .lock()
            .unwrap()
            .extend_from_slice(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the process-wide `tracing` subscriber and `log` logger, both at TRACE.
fn install_capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let buffer = Arc::clone(captured());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_target(true)
            .with_writer(move || Capture(Arc::clone(&buffer)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log::set_logger(&LogCapture).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn the_canary_catches_a_planted_token() {
    let secrets = vec![SECRET.to_owned()];
    let planted = format!("request body {{\"secret\":\"{SECRET}\"}}");
    assert!(std::panic::catch_unwind(|| assert_clean_text("planted", &planted, &secrets)).is_err());
    let token = format!("token={}", canary::ACCESS_SANDBOX);
    assert!(std::panic::catch_unwind(|| assert_clean_text("planted", &token, &[])).is_err());
    assert_clean_text(
        "clean",
        "AccessToken([REDACTED:plaid.access_token])",
        &secrets,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_the_client_logs_or_prints_holds_a_secret() {
    install_capture();
    let (sandbox, clock) = sandbox().await;
    let canary = Canary::new();
    canary.secret(canary::ACCESS_SANDBOX);
    canary.secret(canary::PUBLIC_SANDBOX);
    let mut hook = Hook::start().await;

    // The client, its builder and its settings.
    let builder = HttpPlaidClient::builder()
        .environment(Environment::Custom(sandbox.base_url()))
        .credentials(
            ClientId::new(CLIENT_ID).unwrap(),
            ClientSecret::new(SECRET).unwrap(),
        )
        .timeout(Duration::from_secs(10))
        .endpoint_timeout(Endpoint::AccountsBalanceGet, Duration::from_secs(20))
        .retry_policy(fast_retries(3));
    canary.debug("builder", &builder);
    let http = builder.build().unwrap();
    canary.debug("client", &http);
    canary.debug("environment", http.environment());
    canary.debug("retry policy", &http.retry_policy());
    canary.debug("default policy", &RetryPolicy::default());
    let api: Arc<dyn PlaidApi> = Arc::new(http.clone());

    // Every endpoint.
    let request = LinkTokenCreateRequest::new(
        "Leak Test",
        "en",
        vec![CountryCode::Us],
        LinkTokenCreateUser::new("user-1")
            .with_legal_name("Alex Doe")
            .with_phone_number("+14155550123"),
    )
    .with_webhook(hook.url.clone());
    let link = canary
        .call("link", &request, api.link_token_create(&request).await)
        .unwrap();
    canary.secret(link.link_token.expose_secret());
    let (token, item_id) = link_item(&*api, &canary, Some(&hook.url)).await;
    let request = AccountsGetRequest::new(dup(&token));
    canary
        .call("accounts", &request, api.accounts_get(&request).await)
        .unwrap();
    let request = AccountsBalanceGetRequest::new(dup(&token));
    canary
        .call(
            "balance",
            &request,
            api.accounts_balance_get(&request).await,
        )
        .unwrap();
    let request = TransactionsGetRequest::new(dup(&token), date(2024, 1, 1), date(2024, 6, 30))
        .with_page(5, 3);
    canary
        .call(
            "transactions",
            &request,
            api.transactions_get(&request).await,
        )
        .unwrap();
    let request = TransactionsSyncRequest::new(dup(&token)).with_count(5);
    let page = canary
        .call("sync", &request, api.transactions_sync(&request).await)
        .unwrap();
    sandbox
        .emulator()
        .simulate_transactions_update(&item_id)
        .unwrap();
    let request = TransactionsSyncRequest::new(dup(&token)).with_cursor(page.next_cursor);
    canary
        .call("sync more", &request, api.transactions_sync(&request).await)
        .unwrap();
    let request = ItemGetRequest::new(dup(&token));
    canary
        .call("item", &request, api.item_get(&request).await)
        .unwrap();
    let request = ItemWebhookUpdateRequest::new(dup(&token), Some(hook.url.clone()));
    canary
        .call(
            "webhook update",
            &request,
            api.item_webhook_update(&request).await,
        )
        .unwrap();
    let acknowledged = hook.next().await;
    let kid = sandbox.emulator().webhook_key_id();
    let request = WebhookVerificationKeyGetRequest::new(kid.clone());
    canary
        .call(
            "key",
            &request,
            api.webhook_verification_key_get(&request).await,
        )
        .unwrap();
    let request =
        SandboxItemFireWebhookRequest::new(dup(&token), SandboxWebhookCode::DefaultUpdate);
    canary
        .call(
            "fire",
            &request,
            api.sandbox_item_fire_webhook(&request).await,
        )
        .unwrap();
    let fired = hook.next().await;
    let request = SandboxItemResetLoginRequest::new(dup(&token));
    canary
        .call(
            "reset",
            &request,
            api.sandbox_item_reset_login(&request).await,
        )
        .unwrap();
    let login_error = hook.next().await;
    let request = AccountsGetRequest::new(dup(&token));
    canary
        .call("login required", &request, api.accounts_get(&request).await)
        .unwrap_err();

    // Webhook verification through the client: accepted, replayed, forged, stale.
    let guard = Arc::new(ReplayGuard::new(Duration::from_secs(360), 64));
    let source = PlaidKeySource::new(Arc::clone(&api));
    canary.debug("key source", &source);
    let verifier = WebhookVerifier::new(source).with_replay_guard(Some(Arc::clone(&guard)));
    let now = system_time(clock.now());
    for delivery in [&acknowledged, &fired, &login_error] {
        let accepted = verifier
            .verify(delivery.header.as_deref(), &delivery.body, now)
            .await
            .unwrap();
        canary.debug("accepted", &accepted);
        let replay = verifier
            .verify(delivery.header.as_deref(), &delivery.body, now)
            .await
            .unwrap_err();
        canary.error("replay", &replay);
    }
    let mut changed = fired.body.to_vec();
    changed.push(b' ');
    let error = verifier
        .verify(fired.header.as_deref(), &changed, now)
        .await
        .unwrap_err();
    canary.error("changed body", &error);
    let error = verifier
        .verify(
            fired.header.as_deref(),
            &fired.body,
            now + Duration::from_secs(3600),
        )
        .await
        .unwrap_err();
    canary.error("stale", &error);
    let error = verifier
        .verify(Some(canary::JWT), &fired.body, now)
        .await
        .unwrap_err();
    canary.error("not ours", &error);
    canary.debug("verifier", &verifier);
    canary.debug("guard", &*guard);
    // A verifier whose key source has the wrong secret.
    let wrong: Arc<dyn PlaidApi> = Arc::new(client_with(
        &sandbox.base_url(),
        WRONG_SECRET,
        fast_retries(1),
    ));
    let misconfigured = WebhookVerifier::new(PlaidKeySource::new(Arc::clone(&wrong)));
    let error = misconfigured
        .verify(fired.header.as_deref(), &fired.body, now)
        .await
        .unwrap_err();
    canary.error("key source wrong secret", &error);

    // Error paths: wrong credentials, unknown, used and expired tokens.
    let request = ItemGetRequest::new(dup(&token));
    canary
        .call("wrong secret", &request, wrong.item_get(&request).await)
        .unwrap_err();
    let request = ItemGetRequest::new(AccessToken::new(canary::ACCESS_SANDBOX).unwrap());
    canary
        .call("unknown token", &request, api.item_get(&request).await)
        .unwrap_err();
    let request =
        ItemPublicTokenExchangeRequest::new(PublicToken::new(canary::PUBLIC_SANDBOX).unwrap());
    canary
        .call(
            "unknown public",
            &request,
            api.item_public_token_exchange(&request).await,
        )
        .unwrap_err();

    // Faults: retried reads, a 500 and a dropped answer on invalidate, a timeout, a refusal.
    let faults = sandbox.faults();
    faults
        .set("/item/get", FaultPlan::new().rate_limit(1).server_error(1))
        .unwrap();
    let request = ItemGetRequest::new(dup(&token));
    canary
        .call("item retried", &request, api.item_get(&request).await)
        .unwrap();
    faults
        .set("/item/get", FaultPlan::new().rate_limit(9))
        .unwrap();
    canary
        .call("item rate limited", &request, api.item_get(&request).await)
        .unwrap_err();
    faults
        .set(
            "/item/access_token/invalidate",
            FaultPlan::new().server_error(1).drop_after_commit(1),
        )
        .unwrap();
    let request = ItemAccessTokenInvalidateRequest::new(dup(&token));
    canary
        .call(
            "invalidate 500",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap_err();
    canary
        .call(
            "invalidate dropped",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap_err();
    faults.clear();
    let request = ItemGetRequest::new(dup(&token));
    canary
        .call("probe", &request, api.item_get(&request).await)
        .unwrap_err();
    let (token, _) = link_item(&*api, &canary, None).await;
    faults.set_all(FaultPlan::new().latency(Duration::from_secs(2)));
    let impatient = HttpPlaidClient::builder()
        .environment(Environment::Custom(sandbox.base_url()))
        .credentials(
            ClientId::new(CLIENT_ID).unwrap(),
            ClientSecret::new(SECRET).unwrap(),
        )
        .timeout(Duration::from_millis(200))
        .retry_policy(fast_retries(2))
        .build()
        .unwrap();
    let request = ItemRemoveRequest::new(dup(&token));
    canary
        .call(
            "remove timeout",
            &request,
            impatient.item_remove(&request).await,
        )
        .unwrap_err();
    faults.clear();
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = format!("http://{}", socket.local_addr().unwrap());
    drop(socket);
    let refused = client_with(&closed, SECRET, fast_retries(2));
    let request = ItemGetRequest::new(dup(&token));
    canary
        .call("refused", &request, refused.item_get(&request).await)
        .unwrap_err();
    // Configuration errors name the setting, never the value.
    let error = HttpPlaidClient::builder()
        .environment(Environment::Custom(format!(
            "http://user:{SECRET}@example.com/"
        )))
        .credentials(
            ClientId::new(CLIENT_ID).unwrap(),
            ClientSecret::new(SECRET).unwrap(),
        )
        .build()
        .unwrap_err();
    canary.error("config", &error);

    // Invalidate and remove, for their responses.
    let request = ItemAccessTokenInvalidateRequest::new(dup(&token));
    let rotated = canary
        .call(
            "invalidate",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap();
    canary.secret(rotated.new_access_token.expose_secret());
    let request = ItemRemoveRequest::new(rotated.new_access_token);
    canary
        .call(
            "remove",
            &request,
            client(&sandbox).item_remove(&request).await,
        )
        .unwrap();

    // Let the background tasks (webhook deliveries, pooled connections) finish logging.
    tokio::time::sleep(Duration::from_millis(200)).await;
    canary.assert_clean();
    let logged = String::from_utf8(captured().lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("hyper_util") || logged.contains("reqwest"),
        "the HTTP stack's events were not captured:\n{logged}"
    );
    let secrets = canary.secrets();
    for (n, line) in logged.lines().enumerate() {
        assert_clean_text(&format!("log line {n}"), line, &secrets);
    }
    assert_clean_text("log", &logged, &secrets);
}
