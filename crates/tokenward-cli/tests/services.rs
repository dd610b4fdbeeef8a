//! The commands over the vault and Plaid: `audit`, `rewrap`, `rotate`, `verify-webhook` and
//! `sandbox`. `SQLite` vaults live in temporary directories; Plaid is the emulator, started in
//! process. Every run goes through the leak scan of `support::Cli`, with the tokens the
//! emulator issued and the client secret planted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    clippy::print_stderr,
    missing_docs,
    reason = "test code: failures should be loud; each scenario reads top to bottom"
)]

mod support;

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use support::{Cli, Run, Setup, keyring_strings, now, open_vault, token};
use tokenward_envelope::{Cipher, KeyVersion, Keyring};
use tokenward_plaid::models::{
    ItemGetRequest, ItemPublicTokenExchangeRequest, Product, SandboxItemFireWebhookRequest,
    SandboxPublicTokenCreateRequest, SandboxWebhookCode,
};
use tokenward_plaid::{HttpPlaidClient, PlaidApi};
use tokenward_redact::{AccessToken, ClientId, ClientSecret};
use tokenward_sandbox::{ManualClock, Sandbox};
use tokenward_testkit::webhook::Hook;
use tokenward_vault::{AuditNote, ItemId, SqlVault, UserId, Vault};

const CLIENT_ID: &str = "cli-tests";
const SECRET: &str = "cli-tests-secret-0a9b8c7d6e5f";

/// The shared setup, with the client secret planted too.
fn setup() -> Setup {
    let mut setup = support::setup();
    setup.cli.plant(SECRET);
    setup
}

/// `count` Items with made-up tokens (all planted).
async fn insert_items(setup: &mut Setup, count: u32) {
    let vault = open_vault(setup).await;
    let note = AuditNote::new("test", "linked").unwrap();
    for n in 0..count {
        let item = ItemId::new(format!("item-{n:03}")).unwrap();
        let user = UserId::new(format!("user-{n}")).unwrap();
        vault
            .insert_item(
                &item,
                &user,
                &AccessToken::new(token(n)).unwrap(),
                &note,
                now(),
            )
            .await
            .unwrap();
        setup.cli.plant(token(n));
    }
    vault.close().await;
}

/// Runs the binary off the async runtime (the emulator keeps serving meanwhile).
async fn run(cli: &Cli, args: &[&str], stdin: &[u8]) -> Run {
    let env = cli.env.clone();
    let owned: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.to_vec();
    let run = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        support::run_binary(&env, &args, &stdin)
    })
    .await
    .unwrap();
    cli.scan(&run, args);
    run
}

/// A client of the emulator with the default timeout and retry policy.
fn client(base_url: &str) -> HttpPlaidClient {
    tokenward_testkit::plaid::builder(base_url, CLIENT_ID, SECRET)
        .build()
        .unwrap()
}

async fn sandbox(clock: Option<ManualClock>) -> Sandbox {
    let mut builder = Sandbox::builder().seed(11).credentials(
        &ClientId::new(CLIENT_ID).unwrap(),
        &ClientSecret::new(SECRET).unwrap(),
    );
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    builder.start().await.unwrap()
}

/// An Item at the emulator (with `webhook`, if given), stored in the vault; its token is
/// planted.
async fn link_item(
    setup: &mut Setup,
    api: &HttpPlaidClient,
    webhook: Option<&str>,
) -> (ItemId, AccessToken) {
    let mut request =
        SandboxPublicTokenCreateRequest::new("ins_109508", vec![Product::Transactions]);
    if let Some(url) = webhook {
        request = request.with_webhook(url);
    }
    let created = api.sandbox_public_token_create(&request).await.unwrap();
    setup.cli.plant(created.public_token.expose_secret());
    let exchanged = api
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest::new(created.public_token))
        .await
        .unwrap();
    setup.cli.plant(exchanged.access_token.expose_secret());
    let item = ItemId::new(exchanged.item_id.clone()).unwrap();
    let vault = open_vault(setup).await;
    vault
        .insert_item(
            &item,
            &UserId::new("user-1").unwrap(),
            &exchanged.access_token,
            &AuditNote::new("test", "exchanged").unwrap(),
            now(),
        )
        .await
        .unwrap();
    vault.close().await;
    (item, exchanged.access_token)
}

fn with_plaid(cli: &Cli, base_url: &str) -> Cli {
    let mut cli = cli.clone_for_test();
    cli.set("PLAID_CLIENT_ID", CLIENT_ID);
    cli.set("PLAID_SECRET", SECRET);
    cli.set("TOKENWARD_PLAID_URL", base_url);
    cli
}

fn v(n: u32) -> KeyVersion {
    KeyVersion::try_from(n).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reports_in_text_json_and_markdown() {
    let mut setup = setup();
    insert_items(&mut setup, 3).await;
    let cli = &setup.cli;

    let json = run(cli, &["audit", "--format", "json"], b"").await.ok();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["items_total"], 3);
    assert_eq!(report["primary_kek_version"], 1);
    assert_eq!(report["kek_versions"][0]["version"], 1);
    assert_eq!(report["kek_versions"][0]["state"], "primary");
    assert_eq!(report["kek_versions"][0]["envelopes"], 3);
    assert_eq!(report["credential_states"]["active"], 3);
    assert_eq!(report["health_states"]["healthy"], 3);
    assert_eq!(report["items"][0]["item_id"], "item-000");
    assert_eq!(report["items"][0]["last_rotation"], serde_json::Value::Null);
    assert_eq!(report["orphaned_items"].as_array().unwrap().len(), 0);
    assert_eq!(report["redaction_self_test"]["passed"], true);
    let cases = report["redaction_self_test"]["cases"].as_array().unwrap();
    assert!(cases.len() >= 9);
    assert!(
        cases
            .iter()
            .all(|c| c["text_scrubbed"] == true && c["json_scrubbed"] == true)
    );
    // No user id (personal data) in the report.
    assert!(!json.contains("user-0"));

    let text = run(cli, &["audit"], b"").await.ok();
    assert!(text.contains("KEK versions (primary: 1)"), "{text}");
    assert!(text.contains("Redaction self-test: pass"), "{text}");
    assert!(text.contains("Orphaned Items: 0"), "{text}");

    let markdown = run(cli, &["audit", "--format", "markdown"], b"").await.ok();
    assert!(markdown.starts_with("# tokenward audit report\n"));
    assert!(markdown.contains("| 1 | primary | 3 | 3 |"), "{markdown}");
    assert!(markdown.contains("## Redaction self-test: pass"));
    assert!(markdown.contains("| `item-002` |"));

    // Without a vault: configuration; a vault file that does not exist: configuration too.
    let mut no_vault = cli.clone_for_test();
    no_vault.unset("TOKENWARD_VAULT_URL");
    run(&no_vault, &["audit"], b"").await.fails(3);
    no_vault.set("TOKENWARD_VAULT_URL", "sqlite:/nonexistent/dir/vault.db");
    run(&no_vault, &["audit"], b"").await.fails(3);
    no_vault.set("TOKENWARD_VAULT_URL", "mysql://u:hunter2pass@db/x");
    let failed = run(&no_vault, &["audit"], b"").await;
    assert!(!failed.fails(3).contains("hunter2pass"));
    // A Postgres server that is not there: a vault error, without the password.
    no_vault.set(
        "TOKENWARD_VAULT_URL",
        "postgres://u:hunter2pass@127.0.0.1:1/x",
    );
    let failed = run(&no_vault, &["audit"], b"").await;
    assert!(!failed.fails(8).contains("hunter2pass"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrap_dry_run_changes_nothing_then_a_stopped_job_resumes_and_verifies() {
    let mut setup = setup();
    insert_items(&mut setup, 20).await;
    let cli = setup.cli.clone_for_test();

    // Nothing to do yet: completes at once.
    let out = run(&cli, &["rewrap"], b"").await.ok();
    assert!(out.contains("completed: 0 rewrapped"), "{out}");

    run(&cli, &["keys", "add"], b"").await.ok();
    run(&cli, &["keys", "promote", "2"], b"").await.ok();
    let mut cli = cli;
    for secret in keyring_strings(&setup.keyring) {
        cli.plant(secret);
    }
    // Disabling v1 is refused while envelopes are under it.
    let refused = run(&cli, &["keys", "disable", "1"], b"").await;
    assert!(
        refused.fails(4).contains("20 envelope(s)"),
        "{}",
        refused.stderr
    );

    let job_id = tokenward_vault::JobId::new("kek-rewrap").unwrap();
    let vault = open_vault(&setup).await;
    let before = vault.rewrap_job(&job_id).await.unwrap();
    vault.close().await;
    let out = run(&cli, &["rewrap", "--dry-run"], b"").await.ok();
    assert!(out.contains("dry run: 20 envelope(s)"), "{out}");
    let vault = open_vault(&setup).await;
    assert_eq!(vault.envelopes_under(v(1)).await.unwrap(), 20);
    assert_eq!(
        vault.rewrap_job(&job_id).await.unwrap(),
        before,
        "the dry run wrote nothing"
    );
    vault.close().await;

    // Two batches of three, then stop: the job is saved, 14 left.
    let stopped = run(
        &cli,
        &["rewrap", "--batch-size", "3", "--max-batches", "2"],
        b"",
    )
    .await;
    assert!(
        stopped
            .fails(9)
            .contains("rerun tokenward rewrap to resume"),
        "{}",
        stopped.stderr
    );
    let vault = open_vault(&setup).await;
    assert_eq!(vault.envelopes_under(v(1)).await.unwrap(), 14);
    assert_eq!(vault.unfinished_rewrap_jobs().await.unwrap().len(), 1);
    vault.close().await;

    // The rerun resumes at batch 2 (the counters carry on) and verifies.
    let resumed = run(&cli, &["rewrap", "--batch-size", "3"], b"").await;
    // stderr is not a terminal here: no progress bar, nothing on stderr.
    assert_eq!(resumed.stderr, "");
    let out = resumed.ok();
    assert!(
        out.contains("resuming rewrap job kek-rewrap: running after 2 batch(es), 6 rewrapped"),
        "{out}"
    );
    assert!(out.contains("completed: 20 rewrapped"), "{out}");
    assert!(out.contains("verified: 0 envelope(s) left"), "{out}");
    let vault = open_vault(&setup).await;
    assert_eq!(vault.envelopes_under(v(1)).await.unwrap(), 0);
    assert_eq!(vault.envelopes_under(v(2)).await.unwrap(), 20);
    assert!(vault.unfinished_rewrap_jobs().await.unwrap().is_empty());
    for n in 0..20 {
        let item = ItemId::new(format!("item-{n:03}")).unwrap();
        assert_eq!(
            vault.get(&item).await.unwrap().token.expose_secret(),
            token(n)
        );
    }
    vault.close().await;

    // Now v1 may be disabled; the audit shows where every envelope is.
    run(&cli, &["keys", "disable", "1"], b"").await.ok();
    let json = run(&cli, &["audit", "--format", "json"], b"").await.ok();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["kek_versions"][0]["state"], "disabled");
    assert_eq!(report["kek_versions"][0]["envelopes"], 0);
    assert_eq!(report["kek_versions"][1]["envelopes"], 20);
    assert_eq!(report["unfinished_rewrap_jobs"], 0);

    // A job stopped towards v3, then v4 promoted: the saved job cannot go on (refused, with
    // the way out); a new job id moves everything to v4.
    run(&cli, &["keys", "add"], b"").await.ok();
    run(&cli, &["keys", "promote", "3"], b"").await.ok();
    run(
        &cli,
        &["rewrap", "--batch-size", "3", "--max-batches", "1"],
        b"",
    )
    .await
    .fails(9);
    run(&cli, &["keys", "add"], b"").await.ok();
    run(&cli, &["keys", "promote", "4"], b"").await.ok();
    for secret in keyring_strings(&setup.keyring) {
        cli.plant(secret);
    }
    let refused = run(&cli, &["rewrap"], b"").await;
    assert!(refused.fails(4).contains("--job-id"), "{}", refused.stderr);
    let out = run(&cli, &["rewrap", "--job-id", "kek-rewrap-v4"], b"")
        .await
        .ok();
    assert!(out.contains("completed: 20 rewrapped"), "{out}");
    let vault = open_vault(&setup).await;
    assert_eq!(vault.envelopes_under(v(4)).await.unwrap(), 20);
    vault.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_dry_run_changes_nothing_and_a_rotation_kills_the_old_token() {
    let mut setup = setup();
    let sandbox = sandbox(None).await;
    let api = client(&sandbox.base_url());
    let (item, first) = link_item(&mut setup, &api, None).await;
    let (other, _) = link_item(&mut setup, &api, None).await;
    let cli = with_plaid(&setup.cli, &sandbox.base_url());

    // Missing credentials: configuration, before anything else.
    let mut unconfigured = cli.clone_for_test();
    unconfigured.unset("PLAID_SECRET");
    let run_missing = run(
        &unconfigured,
        &["rotate", "--all", "--actor", "ops", "--dry-run"],
        b"",
    )
    .await;
    assert!(run_missing.fails(3).contains("PLAID_SECRET"));

    let plan = run(
        &cli,
        &["rotate", "--all", "--actor", "ops", "--dry-run"],
        b"",
    )
    .await
    .ok();
    assert!(
        plan.contains("dry run: 2 Item(s) planned, nothing changed"),
        "{plan}"
    );
    assert!(plan.contains(item.as_str()) && plan.contains(other.as_str()));
    let json = run(
        &cli,
        &[
            "rotate",
            "--kek-version",
            "1",
            "--actor",
            "ops",
            "--dry-run",
            "--format",
            "json",
        ],
        b"",
    )
    .await
    .ok();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 2);
    let vault = open_vault(&setup).await;
    assert_eq!(vault.item(&item).await.unwrap().token_version, 1);
    assert_eq!(
        vault.audit(&item).await.unwrap().len(),
        1,
        "the dry run wrote nothing"
    );
    vault.close().await;
    api.item_get(&ItemGetRequest::new(dup(&first)))
        .await
        .unwrap();

    let out = run(
        &cli,
        &[
            "rotate",
            "--item",
            item.as_str(),
            "--actor",
            "ops",
            "--reason",
            "compromise",
        ],
        b"",
    )
    .await
    .ok();
    assert!(out.contains("rotated 1 of 1 Item(s)"), "{out}");
    let vault = open_vault(&setup).await;
    let stored = vault.get(&item).await.unwrap();
    assert_eq!(stored.version, 2);
    let journal = vault.audit(&item).await.unwrap();
    assert!(
        journal
            .iter()
            .any(|r| r.actor == "ops" && r.reason.contains("compromise")),
        "{journal:?}"
    );
    vault.close().await;
    // Plaid's truth: the old token is dead, the new one works.
    let dead = api
        .item_get(&ItemGetRequest::new(dup(&first)))
        .await
        .unwrap_err();
    assert!(dead.is_invalid_access_token());
    let mut cli = cli;
    cli.plant(stored.token.expose_secret());
    api.item_get(&ItemGetRequest::new(dup(&stored.token)))
        .await
        .unwrap();

    // The audit shows the rotation; an unknown Item is a skip, and the run is incomplete.
    let json = run(&cli, &["audit", "--format", "json"], b"").await.ok();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["item_id"] == item.as_str())
        .unwrap();
    assert!(row["last_rotation"].is_string(), "{row}");
    // Plaid commits the rotation, then the connection drops: the probe finds the old token
    // dead, the new one was never seen. The Item ends orphaned (never silently active), the
    // run is incomplete, and the audit names it.
    sandbox
        .faults()
        .set(
            "/item/access_token/invalidate",
            tokenward_sandbox::FaultPlan::new().drop_after_commit(1),
        )
        .unwrap();
    let lost = run(
        &cli,
        &["rotate", "--item", other.as_str(), "--actor", "ops"],
        b"",
    )
    .await;
    lost.fails(9);
    assert!(
        lost.stdout_text().contains("orphaned"),
        "{}",
        lost.stdout_text()
    );
    let json = run(&cli, &["audit", "--format", "json"], b"").await.ok();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        report["orphaned_items"],
        serde_json::json!([other.as_str()])
    );
    assert_eq!(report["credential_states"]["orphaned"], 1);
    let text = run(&cli, &["audit"], b"").await.ok();
    assert!(text.contains("Orphaned Items: 1"), "{text}");

    let missing = run(
        &cli,
        &["rotate", "--item", "no-such-item", "--actor", "ops"],
        b"",
    )
    .await;
    missing.fails(9);
    assert!(missing.stdout_text().contains("skip (not found)"));
    sandbox.shutdown().await;
}

fn dup(token: &AccessToken) -> AccessToken {
    AccessToken::new(token.expose_secret()).unwrap()
}

/// One webhook as the listener got it, its `Plaid-Verification` header empty when missing.
struct Delivery {
    header: String,
    body: Bytes,
}

async fn fire(api: &HttpPlaidClient, token: &AccessToken, hook: &mut Hook) -> Delivery {
    while hook.try_next().is_some() {}
    api.sandbox_item_fire_webhook(&SandboxItemFireWebhookRequest::new(
        dup(token),
        SandboxWebhookCode::DefaultUpdate,
    ))
    .await
    .unwrap();
    loop {
        let delivery = hook.next().await;
        if String::from_utf8_lossy(&delivery.body).contains("DEFAULT_UPDATE") {
            return Delivery {
                header: delivery.header.unwrap_or_default(),
                body: delivery.body,
            };
        }
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_webhook_accepts_a_signed_delivery_and_rejects_forged_and_stale_ones() {
    let mut setup = setup();
    let clock = ManualClock::new(chrono::Utc::now());
    let sandbox = sandbox(Some(clock.clone())).await;
    let api = client(&sandbox.base_url());
    let mut hook = Hook::start().await;
    let (item, token) = link_item(&mut setup, &api, Some(&hook.url)).await;
    let cli = with_plaid(&setup.cli, &sandbox.base_url());
    let dir = tempfile::tempdir().unwrap();

    let delivery = fire(&api, &token, &mut hook).await;
    let header = write(dir.path(), "header.txt", delivery.header.as_bytes());
    let body = write(dir.path(), "body.json", &delivery.body);
    let out = run(
        &cli,
        &["verify-webhook", "--header-file", &header, "--body", &body],
        b"",
    )
    .await
    .ok();
    assert!(
        out.starts_with("verified: TRANSACTIONS DEFAULT_UPDATE\n"),
        "{out}"
    );
    assert!(out.contains(&format!("item_id: {}", item.as_str())));
    let json = run(
        &cli,
        &[
            "verify-webhook",
            "--header",
            &delivery.header,
            "--body",
            &body,
            "--format",
            "json",
        ],
        b"",
    )
    .await
    .ok();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["webhook_code"], "DEFAULT_UPDATE");

    // The body changed by one byte: rejected (6).
    let mut changed = delivery.body.to_vec();
    changed.push(b' ');
    let tampered = write(dir.path(), "tampered.json", &changed);
    let run_tampered = run(
        &cli,
        &[
            "verify-webhook",
            "--header-file",
            &header,
            "--body",
            &tampered,
        ],
        b"",
    )
    .await;
    assert!(
        run_tampered.fails(6).contains("request_body_sha256"),
        "{}",
        run_tampered.stderr
    );
    // A forged signature: rejected (6).
    let mut forged = delivery.header.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    run(
        &cli,
        &["verify-webhook", "--header", &forged, "--body", &body],
        b"",
    )
    .await
    .fails(6);
    run(
        &cli,
        &["verify-webhook", "--header", "not-a-jwt", "--body", &body],
        b"",
    )
    .await
    .fails(6);

    // Issued ten minutes ago: stale (6).
    clock.set(chrono::Utc::now() - chrono::Duration::minutes(10));
    let old = fire(&api, &token, &mut hook).await;
    let old_header = write(dir.path(), "old.txt", old.header.as_bytes());
    let old_body = write(dir.path(), "old.json", &old.body);
    let stale = run(
        &cli,
        &[
            "verify-webhook",
            "--header-file",
            &old_header,
            "--body",
            &old_body,
        ],
        b"",
    )
    .await;
    assert!(stale.fails(6).contains("stale"), "{}", stale.stderr);

    // Configuration (3) and network (7) failures are told apart from rejections.
    let mut unconfigured = cli.clone_for_test();
    unconfigured.unset("PLAID_CLIENT_ID");
    run(
        &unconfigured,
        &["verify-webhook", "--header-file", &header, "--body", &body],
        b"",
    )
    .await
    .fails(3);
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut offline = cli.clone_for_test();
    offline.set("TOKENWARD_PLAID_URL", &dead_url);
    run(
        &offline,
        &["verify-webhook", "--header-file", &header, "--body", &body],
        b"",
    )
    .await
    .fails(7);
    run(
        &cli,
        &[
            "verify-webhook",
            "--header-file",
            &header,
            "--body",
            "/nonexistent/body",
        ],
        b"",
    )
    .await
    .fails(5);
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_serves_until_stopped() {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tokenward"))
        .args(["sandbox", "--listen", "127.0.0.1:0", "--fixed-credentials"])
        .env_clear()
        .env("PLAID_CLIENT_ID", CLIENT_ID)
        .env("PLAID_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    })
    .await
    .unwrap();
    let base_url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    assert!(base_url.starts_with("http://127.0.0.1:"), "{line}");
    let api = client(&base_url);
    let created = api
        .sandbox_public_token_create(&SandboxPublicTokenCreateRequest::new(
            "ins_109508",
            vec![Product::Transactions],
        ))
        .await
        .unwrap();
    assert!(
        created
            .public_token
            .expose_secret()
            .starts_with("public-sandbox-")
    );
    // Other credentials are refused.
    let wrong = tokenward_testkit::plaid::builder(&base_url, CLIENT_ID, "another-secret-1234")
        .build()
        .unwrap();
    assert!(
        wrong
            .sandbox_public_token_create(&SandboxPublicTokenCreateRequest::new(
                "ins_109508",
                vec![Product::Transactions]
            ))
            .await
            .is_err()
    );
    // SIGTERM stops it cleanly.
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success(), "{:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(SECRET));
    assert!(!String::from_utf8_lossy(&output.stdout).contains(SECRET));

    // Fixed credentials without a secret: configuration.
    let cli = Cli::new().env("PLAID_CLIENT_ID", CLIENT_ID);
    run(
        &cli,
        &["sandbox", "--listen", "127.0.0.1:0", "--fixed-credentials"],
        b"",
    )
    .await
    .fails(3);
}

/// The vault on Postgres (`TOKENWARD_TEST_POSTGRES_URL`), in a schema of its own chosen with
/// the connection's `search_path`. Skipped when the variable is unset, except under `CI=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_and_rewrap_over_postgres() {
    let Ok(url) = std::env::var("TOKENWARD_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "TOKENWARD_TEST_POSTGRES_URL is not set and CI=true: this test needs Postgres"
        );
        eprintln!("skipped: TOKENWARD_TEST_POSTGRES_URL is not set");
        return;
    };
    let mut setup = setup();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("cli_test_{}_{nanos}", std::process::id());
    let keyring = Keyring::load_file(&setup.keyring).unwrap();
    let vault = SqlVault::postgres_in_schema(&url, Some(&schema), Cipher::new(Arc::new(keyring)))
        .await
        .unwrap();
    let note = AuditNote::new("test", "linked").unwrap();
    for n in 0..4 {
        let item = ItemId::new(format!("item-{n:03}")).unwrap();
        vault
            .insert_item(
                &item,
                &UserId::new("u").unwrap(),
                &AccessToken::new(token(n)).unwrap(),
                &note,
                now(),
            )
            .await
            .unwrap();
        setup.cli.plant(token(n));
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut cli = setup.cli.clone_for_test();
    cli.set(
        "TOKENWARD_VAULT_URL",
        format!("{url}{separator}options=-c%20search_path%3D{schema}"),
    );
    let json = run(&cli, &["audit", "--format", "json"], b"").await.ok();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["vault_backend"], "postgres");
    assert_eq!(report["items_total"], 4);
    run(&cli, &["keys", "add"], b"").await.ok();
    run(&cli, &["keys", "promote", "2"], b"").await.ok();
    for secret in keyring_strings(&setup.keyring) {
        cli.plant(secret);
    }
    let out = run(&cli, &["rewrap"], b"").await.ok();
    assert!(out.contains("completed: 4 rewrapped"), "{out}");
    assert_eq!(vault.envelopes_under(v(1)).await.unwrap(), 0);
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(vault.pool())
        .await
        .unwrap();
    vault.close().await;
}
