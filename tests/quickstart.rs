//! The quick start, end to end against the in-process emulator: every numbered step appears,
//! the flow's facts hold in the vault and the keyring it leaves behind, and its whole output
//! is free of tokens (every Plaid token shape of every environment, and each token the
//! emulator actually issued), of the client secret and of key material.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    missing_docs,
    reason = "test code: failures should be loud"
)]

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` and its real-sandbox path are not called here"
)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use quickstart::{EMULATOR_SECRET, Flow, STEPS};
use secrecy::ExposeSecret as _;
use tokenward_envelope::{Cipher, KeyState, Keyring};
use tokenward_plaid::models as m;
use tokenward_plaid::{HttpPlaidClient, PlaidApi};
use tokenward_redact::AccessToken;
use tokenward_vault::{AuditEvent, SqlVault, Timestamp, Vault};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_walks_the_whole_flow_and_leaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vault_path = dir.path().join("vault.sqlite3");
    let keyring = Arc::new(Keyring::generate().unwrap());
    let (sandbox, client) = quickstart::start_emulator().await.unwrap();
    let recorder = Arc::new(Recorder {
        inner: client,
        issued: Mutex::new(Vec::new()),
    });
    let flow = Flow {
        api: Arc::clone(&recorder) as Arc<dyn PlaidApi>,
        target: format!("in-process emulator at {}", sandbox.base_url()),
        webhooks: true,
        keyring: Arc::clone(&keyring),
        vault_path: vault_path.clone(),
    };
    let mut out = Vec::new();
    let outcome = quickstart::run(&mut out, flow).await;
    let text = String::from_utf8(out).unwrap();
    let outcome = outcome.unwrap_or_else(|e| panic!("the flow failed: {e}\n{text}"));

    // Every numbered step, in order, with what it is about.
    let titles = [
        "Link token",
        "public token",
        "exchange the public token",
        "seal the access token",
        "accounts and transactions",
        "signed webhook",
        "rotate the access token",
        "rotate the KEK",
        "audit report",
    ];
    assert_eq!(titles.len(), STEPS);
    let mut from = 0;
    for (n, title) in titles.iter().enumerate() {
        let marker = format!("[{}/{STEPS}] ", n + 1);
        let at = text[from..]
            .find(&marker)
            .unwrap_or_else(|| panic!("step {marker}missing or out of order:\n{text}"));
        let line = text[from + at..].lines().next().unwrap();
        assert!(
            line.contains(title),
            "step {marker}is `{line}`, not about {title}"
        );
        from += at + marker.len();
    }

    // What each step reports.
    for fact in [
        "spending by category:",
        "verified: TRANSACTIONS / SYNC_UPDATES_AVAILABLE",
        "recognised as a replay",
        "token v1 -> v2",
        "the old token is now refused by Plaid (INVALID_ACCESS_TOKEN)",
        "disabling v1 now is refused",
        "rewrap job completed: 1 rewrapped, 0 failed",
        "KEK v1 disabled: 0 envelope(s) under it, 1 under v2",
        "token_promoted",
        "Items by credential state: active 1; by health: healthy 1",
        "KEK versions: v1 disabled (0 envelope(s)), v2 primary (1 envelope(s))",
    ] {
        assert!(text.contains(fact), "missing `{fact}` in:\n{text}");
    }

    assert_no_leaks(&text, &recorder, &keyring);

    // The facts, from the vault and keyring the flow left behind, not from its log.
    assert!(outcome.new_kek > outcome.old_kek, "{outcome:?}");
    let vault = SqlVault::sqlite_file(&vault_path, Cipher::new(Arc::clone(&keyring)))
        .await
        .unwrap();
    let record = vault.item(&outcome.item_id).await.unwrap();
    assert_eq!(record.token_version, 2, "the token was rotated once");
    assert_eq!(record.kek_version, outcome.new_kek);
    assert_eq!(record.credential_state.as_str(), "active");
    let items: u64 = vault
        .count_by_kek_version()
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(items, 1);
    assert_eq!(
        vault.envelopes_under(outcome.new_kek).await.unwrap(),
        items,
        "every Item's envelope is under the new KEK"
    );
    assert_eq!(vault.envelopes_under(outcome.old_kek).await.unwrap(), 0);
    let states: Vec<_> = keyring
        .keys()
        .iter()
        .map(|k| (k.version, k.state))
        .collect();
    assert!(
        states.contains(&(outcome.old_kek, KeyState::Disabled)),
        "{states:?}"
    );
    assert!(
        states.contains(&(outcome.new_kek, KeyState::Primary)),
        "{states:?}"
    );

    let journal = vault.audit_since(Timestamp::EPOCH, 1_000).await.unwrap();
    let events: Vec<_> = journal.iter().map(|r| r.event).collect();
    for event in [
        AuditEvent::ItemInserted,
        AuditEvent::AttemptBegun,
        AuditEvent::AttemptSent,
        AuditEvent::TokenStashed,
        AuditEvent::TokenPromoted,
        AuditEvent::Rewrapped,
    ] {
        assert!(events.contains(&event), "no {event:?} in {events:?}");
    }
    assert!(
        journal
            .iter()
            .any(|r| r.event == AuditEvent::CredentialState
                && r.from_state.as_deref() == Some("verifying")
                && r.to_state.as_deref() == Some("active")),
        "the rotation ends verified and active: {journal:?}"
    );

    // The KEK records, in the order they happened: the first key as found, the new one staged,
    // the promotion (old one decrypt-only, new one primary), and the old one disabled only
    // after the rewrap.
    let (old, new) = (outcome.old_kek.get(), outcome.new_kek.get());
    let kek_records: Vec<(String, String, String)> = journal
        .iter()
        .filter(|r| r.event == AuditEvent::KekState)
        .map(|r| {
            let version = r.reason.split(':').next().unwrap_or_default().to_owned();
            (
                version,
                r.from_state.clone().unwrap_or_default(),
                r.to_state.clone().unwrap_or_default(),
            )
        })
        .collect();
    let expected = [
        (format!("kek {old}"), "absent", "primary"),
        (format!("kek {new}"), "absent", "staged"),
        (format!("kek {old}"), "primary", "decrypt_only"),
        (format!("kek {new}"), "staged", "primary"),
        (format!("kek {old}"), "decrypt_only", "disabled"),
    ]
    .map(|(v, from, to)| (v, from.to_owned(), to.to_owned()));
    assert_eq!(kek_records, expected, "{text}");
    let position = |event: AuditEvent| journal.iter().position(|r| r.event == event);
    let last_rewrap = journal
        .iter()
        .rposition(|r| r.event == AuditEvent::Rewrapped)
        .unwrap();
    let disabled = journal
        .iter()
        .position(|r| r.event == AuditEvent::KekState && r.to_state.as_deref() == Some("disabled"))
        .unwrap();
    let promoted = journal
        .iter()
        .position(|r| {
            r.event == AuditEvent::KekState
                && r.to_state.as_deref() == Some("primary")
                && r.reason.starts_with(&format!("kek {new}:"))
        })
        .unwrap();
    assert!(
        promoted < position(AuditEvent::Rewrapped).unwrap() && last_rewrap < disabled,
        "promotion, then the rewrap, then the disable: {journal:?}"
    );

    // The token in the vault is the one Plaid accepts; the first one Plaid issued is dead.
    let stored = vault.get(&outcome.item_id).await.unwrap();
    assert!(works(&*recorder, &stored.token).await);
    let first = recorder.first_access_token();
    assert_ne!(first.expose_secret(), stored.token.expose_secret());
    assert!(!works(&*recorder, &first).await);
    vault.close().await;
    sandbox.shutdown().await;
}

/// Where Plaid cannot reach a listener of ours (its real sandbox), the webhook step is one
/// line saying why, and every other step still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_reachable_listener_the_webhook_step_is_skipped_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (sandbox, client) = quickstart::start_emulator().await.unwrap();
    let flow = Flow {
        api: Arc::new(client),
        target: "Plaid sandbox".to_owned(),
        webhooks: false,
        keyring: Arc::new(Keyring::generate().unwrap()),
        vault_path: dir.path().join("vault.sqlite3"),
    };
    let mut out = Vec::new();
    let outcome = quickstart::run(&mut out, flow).await;
    let text = String::from_utf8(out).unwrap();
    outcome.unwrap_or_else(|e| panic!("the flow failed: {e}\n{text}"));
    let step = text
        .lines()
        .skip_while(|l| !l.starts_with("[6/9] "))
        .take(2)
        .collect::<Vec<_>>();
    assert_eq!(step.len(), 2, "{text}");
    assert!(
        step[1].contains("skipped: Plaid's sandbox needs a public URL"),
        "{text}"
    );
    assert!(!text.contains("verified: TRANSACTIONS"), "{text}");
    for later in ["[7/9] ", "[8/9] ", "[9/9] "] {
        assert!(text.contains(later), "{later} missing:\n{text}");
    }
    assert_eq!(
        sandbox.emulator().webhook_deliveries().len(),
        0,
        "no webhook was fired"
    );
    sandbox.shutdown().await;
}

#[test]
fn the_real_sandbox_needs_both_keys() {
    assert!(!quickstart::use_plaid_sandbox(false, false).unwrap());
    assert!(quickstart::use_plaid_sandbox(true, true).unwrap());
    let error = quickstart::use_plaid_sandbox(true, false).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("PLAID_CLIENT_ID is set but PLAID_SECRET is not")
    );
    let error = quickstart::use_plaid_sandbox(false, true).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("PLAID_SECRET is set but PLAID_CLIENT_ID is not")
    );
}

#[test]
fn production_and_unknown_environments_are_refused() {
    quickstart::check_plaid_env(None).unwrap();
    quickstart::check_plaid_env(Some("sandbox")).unwrap();
    let refused = quickstart::check_plaid_env(Some("production")).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("PLAID_ENV=production is refused"),
        "{refused}"
    );
    for other in [
        "development",
        "https://production.plaid.com",
        "Production",
        "",
    ] {
        let error = quickstart::check_plaid_env(Some(other)).unwrap_err();
        assert!(
            error.to_string().contains("must be `sandbox`"),
            "{other}: {error}"
        );
    }
}

/// Fails when `text` holds anything secret.
fn assert_no_leaks(text: &str, recorder: &Recorder, keyring: &Keyring) {
    // The example never formats a secret: the scrubber it writes through never fired.
    assert!(
        !text.contains("[REDACTED"),
        "a secret reached the scrubber:\n{text}"
    );

    // Every Plaid token shape of every environment, and JWTs.
    for (n, line) in text.lines().enumerate() {
        let found = secret_shapes(line);
        // Names the shape and the line, not the line: it may hold a live token.
        assert!(found.is_empty(), "{found:?} on output line {}", n + 1);
    }

    // Each token the emulator issued, whole or by its random part; the client secret.
    let issued = recorder.issued.lock().unwrap();
    assert!(
        issued.len() >= 4,
        "the scan needs the link, public and both access tokens: {}",
        issued.len()
    );
    for token in issued.iter() {
        let random = token
            .rsplit_once("-sandbox-")
            .map_or(token.as_str(), |(_, r)| r);
        assert!(
            !text.contains(token.as_str()) && !text.contains(random),
            "an issued token leaks"
        );
    }
    assert!(!text.contains(EMULATOR_SECRET), "the client secret leaks");

    // Key material, from the keyring's own export, whole or its first 16 characters.
    let export: serde_json::Value = serde_json::from_str(keyring.export().expose_secret()).unwrap();
    let keys = export["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "both KEK versions are in the export");
    for key in keys {
        let material = key["material"].as_str().unwrap();
        assert!(material.len() >= 40);
        assert!(
            !text.contains(material) && !text.contains(&material[..16]),
            "key material leaks"
        );
    }
}

/// The secret shapes in `text`: `<type>-<environment>-` (Plaid's access, public, link,
/// processor and other tokens, in sandbox, development or production) and JWT headers.
fn secret_shapes(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for env in ["sandbox", "development", "production"] {
        let needle = format!("-{env}-");
        for (at, _) in text.match_indices(&needle) {
            let start = text[..at]
                .rfind(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .map_or(0, |i| i + 1);
            found.push(format!("{}{needle}", &text[start..at]));
        }
    }
    if text.contains("eyJ") {
        found.push("eyJ (a JWT)".to_owned());
    }
    found
}

/// The shape scan is not vacuous: it finds every canary the redaction tests plant.
#[test]
fn the_shape_scan_finds_every_canary() {
    use tokenward_testkit::canary;
    for canary in [
        canary::ACCESS_SANDBOX,
        canary::ACCESS_PRODUCTION,
        canary::PUBLIC_SANDBOX,
        canary::PUBLIC_PRODUCTION,
        canary::LINK_SANDBOX,
        canary::LINK_PRODUCTION,
        canary::PROCESSOR_SANDBOX,
        canary::PROCESSOR_PRODUCTION,
        canary::JWT,
        "access-development-1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
    ] {
        let line = format!("      exchanged: {canary}; ok");
        assert!(!secret_shapes(&line).is_empty(), "{canary} not found");
    }
    let clean = "[7/9] rotate the access token (/item/access_token/invalidate via the Rotator)";
    assert!(secret_shapes(clean).is_empty());
}

async fn works(api: &dyn PlaidApi, token: &AccessToken) -> bool {
    let probe = AccessToken::new(token.expose_secret()).unwrap();
    match api.item_get(&m::ItemGetRequest::new(probe)).await {
        Ok(_) => true,
        Err(error) if error.is_invalid_access_token() => false,
        Err(error) => panic!("probe failed: {error}"),
    }
}

/// The emulator's client, keeping every token Plaid hands back, so the test can look for
/// each of them in the output.
struct Recorder {
    inner: HttpPlaidClient,
    issued: Mutex<Vec<String>>,
}

impl Recorder {
    fn keep(&self, token: &str) {
        self.issued.lock().unwrap().push(token.to_owned());
    }

    fn first_access_token(&self) -> AccessToken {
        let issued = self.issued.lock().unwrap();
        let first = issued.iter().find(|t| t.starts_with("access-")).unwrap();
        AccessToken::new(first.as_str()).unwrap()
    }
}

type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, tokenward_plaid::Error>> + Send + 'a>>;

/// `PlaidApi` is an `async_trait`; this is its expansion, forwarding every call and keeping
/// the tokens of the answers that carry one.
macro_rules! recording {
    ($($method:ident($request:ty) -> $response:ty $(, keep $field:ident)?;)*) => {
        impl PlaidApi for Recorder {
            $(
                fn $method<'life0, 'life1, 'async_trait>(
                    &'life0 self,
                    request: &'life1 $request,
                ) -> Answer<'async_trait, $response>
                where
                    'life0: 'async_trait,
                    'life1: 'async_trait,
                    Self: 'async_trait,
                {
                    Box::pin(async move {
                        let response = self.inner.$method(request).await?;
                        $(self.keep(response.$field.expose_secret());)?
                        Ok(response)
                    })
                }
            )*
        }
    };
}

recording! {
    link_token_create(m::LinkTokenCreateRequest) -> m::LinkTokenCreateResponse, keep link_token;
    item_public_token_exchange(m::ItemPublicTokenExchangeRequest)
        -> m::ItemPublicTokenExchangeResponse, keep access_token;
    sandbox_public_token_create(m::SandboxPublicTokenCreateRequest)
        -> m::SandboxPublicTokenCreateResponse, keep public_token;
    accounts_get(m::AccountsGetRequest) -> m::AccountsGetResponse;
    accounts_balance_get(m::AccountsBalanceGetRequest) -> m::AccountsBalanceGetResponse;
    transactions_get(m::TransactionsGetRequest) -> m::TransactionsGetResponse;
    transactions_sync(m::TransactionsSyncRequest) -> m::TransactionsSyncResponse;
    item_get(m::ItemGetRequest) -> m::ItemGetResponse;
    item_remove(m::ItemRemoveRequest) -> m::ItemRemoveResponse;
    item_access_token_invalidate(m::ItemAccessTokenInvalidateRequest)
        -> m::ItemAccessTokenInvalidateResponse, keep new_access_token;
    item_webhook_update(m::ItemWebhookUpdateRequest) -> m::ItemWebhookUpdateResponse;
    webhook_verification_key_get(m::WebhookVerificationKeyGetRequest)
        -> m::WebhookVerificationKeyGetResponse;
    sandbox_item_fire_webhook(m::SandboxItemFireWebhookRequest)
        -> m::SandboxItemFireWebhookResponse;
    sandbox_item_reset_login(m::SandboxItemResetLoginRequest)
        -> m::SandboxItemResetLoginResponse;
}
