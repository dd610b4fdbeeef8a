//! End to end: Item health driven by real webhooks. The emulator (fixed credentials, a stopped
//! clock) signs each webhook and delivers it to a local listener; the listener's
//! `Plaid-Verification` header and raw body go through `WebhookVerifier` (keys through
//! `PlaidKeySource` over `HttpPlaidClient`), and the verified event through
//! `HealthDriver::apply_webhook` into the vault's `SQLite` store. After each delivery the test
//! reads the stored health and the audit journal.
//!
//! | delivery | stored health | audit |
//! |---|---|---|
//! | `reset_login` (`ITEM: ERROR`, `ITEM_LOGIN_REQUIRED`) | `needs_reauth`; a scheduled rotation still runs | one record |
//! | the `ITEM_LOGIN_REQUIRED` a data call returns, through `apply_api_error` | `needs_reauth` (same as the webhook) | none if already there |
//! | the same delivery again | refused as `Replay`, nothing applied | none |
//! | `LOGIN_REPAIRED` with one body byte changed | refused (`BodyHashMismatch`), unchanged | none |
//! | `LOGIN_REPAIRED` | `healthy` | one record |
//! | `PENDING_EXPIRATION`, `PENDING_DISCONNECT` | `expiring_soon` | one record for the first |
//! | `USER_PERMISSION_REVOKED` | `permission_revoked`; a scheduled rotation is refused | one record |
//!
//! The emulator's clock moves a second between deliveries: two identical bodies signed in the
//! same second are one delivery to the replay guard.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone as _, Utc};
use tokenward_envelope::{Cipher, Keyring};
use tokenward_plaid::models::{
    AccountsGetRequest, ItemPublicTokenExchangeRequest, Product, SandboxItemFireWebhookRequest,
    SandboxItemResetLoginRequest, SandboxPublicTokenCreateRequest, SandboxWebhookCode,
};
use tokenward_plaid::webhooks::{PlaidKeySource, VerifiedWebhook, VerifyError, WebhookVerifier};
use tokenward_plaid::{HttpPlaidClient, PlaidApi};
use tokenward_redact::{AccessToken, ClientId, ClientSecret};
use tokenward_rotation::health::{HealthCommand, HealthState, rotation_allowed};
use tokenward_rotation::token::CredentialState;
use tokenward_rotation::{
    Actor, Clock, DriverError, HealthDriver, HealthReport, RotationReason, Rotator, RotatorConfig,
    TokenVersion,
};
use tokenward_sandbox::{Clock as _, ManualClock, Sandbox};
use tokenward_testkit::leaks::LeakCollector;
use tokenward_testkit::webhook::{Bytes, Delivery, Hook};
use tokenward_vault::{AuditNote, AuditRecord, ItemId, LeaseOwner, SqlVault, UserId, Vault};

const CLIENT_ID: &str = "5f1c2b3a4d5e6f7a8b9c0d1e";
const SECRET: &str = "h3alth5ecr3th3alth5ecr3th3alth";

/// The emulator's stopped clock starts here.
fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 30, 12, 0, 0).unwrap()
}

fn system_time(time: DateTime<Utc>) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(time.timestamp()).unwrap())
}

/// The emulator's clock, as the driver's clock: audit times follow the emulator.
struct Shared(ManualClock);

impl Clock for Shared {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

struct Fixture {
    sandbox: Sandbox,
    clock: ManualClock,
    api: Arc<HttpPlaidClient>,
    vault: SqlVault,
    verifier: WebhookVerifier,
    hook: Hook,
    /// Every token the emulator handed out and the client secret, and every text the test
    /// saw come out of the driver, the verifier and the vault.
    leaks: LeakCollector,
}

async fn fixture() -> Fixture {
    let clock = ManualClock::new(start_time());
    let sandbox = Sandbox::builder()
        .credentials(
            &ClientId::new(CLIENT_ID).unwrap(),
            &ClientSecret::new(SECRET).unwrap(),
        )
        .clock(clock.clone())
        .seed(11)
        .start()
        .await
        .unwrap();
    let api = Arc::new(tokenward_testkit::plaid::client(
        &sandbox.base_url(),
        CLIENT_ID,
        SECRET,
    ));
    let api_dyn: Arc<dyn PlaidApi> = api.clone();
    let verifier = WebhookVerifier::new(PlaidKeySource::new(api_dyn));
    let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let vault = SqlVault::sqlite_memory(cipher).await.unwrap();
    Fixture {
        sandbox,
        clock,
        api,
        vault,
        verifier,
        hook: Hook::start().await,
        leaks: {
            let leaks = LeakCollector::new();
            leaks.secret(SECRET);
            leaks
        },
    }
}

impl Fixture {
    fn driver(&self) -> HealthDriver<'_> {
        HealthDriver::new(&self.vault, "webhooks").with_clock(Arc::new(Shared(self.clock.clone())))
    }

    /// Links an Item (its webhook is the listener's, if `webhook`) and stores it.
    async fn link(&self, user: &str, webhook: bool) -> (ItemId, AccessToken) {
        let mut create =
            SandboxPublicTokenCreateRequest::new("ins_109508", vec![Product::Transactions]);
        if webhook {
            create = create.with_webhook(self.hook.url.clone());
        }
        let created = self.api.sandbox_public_token_create(&create).await.unwrap();
        self.secret(created.public_token.expose_secret());
        let exchanged = self
            .api
            .item_public_token_exchange(&ItemPublicTokenExchangeRequest::new(created.public_token))
            .await
            .unwrap();
        self.secret(exchanged.access_token.expose_secret());
        let item = ItemId::new(exchanged.item_id).unwrap();
        self.vault
            .insert_item(
                &item,
                &UserId::new(user).unwrap(),
                &exchanged.access_token,
                &AuditNote::new("test", "linked").unwrap(),
                tokenward_vault::Timestamp::from_system_time(system_time(self.clock.now()))
                    .unwrap(),
            )
            .await
            .unwrap();
        (item, exchanged.access_token)
    }

    fn secret(&self, value: &str) {
        self.leaks.secret(value);
    }

    fn record(&self, text: String) {
        self.leaks.text("output", text);
    }

    fn record_error(&self, error: &(dyn std::error::Error + 'static)) {
        self.leaks.error("error", error);
    }

    /// The token the vault holds now (a rotation changes it).
    async fn token(&self, item: &ItemId) -> AccessToken {
        let stored = self.vault.get(item).await.unwrap();
        self.secret(stored.token.expose_secret());
        stored.token
    }

    /// A second later, fires `code` at `item` and returns what the listener received.
    async fn fire(&mut self, item: &ItemId, code: &str) -> Delivery {
        self.clock.advance(Duration::from_secs(1));
        let token = self.token(item).await;
        let request =
            SandboxItemFireWebhookRequest::new(token, SandboxWebhookCode::from(code.to_owned()));
        let fired = self.api.sandbox_item_fire_webhook(&request).await.unwrap();
        assert!(fired.webhook_fired, "{code}");
        self.hook.next().await
    }

    /// A second later, `/sandbox/item/reset_login` on `item`.
    async fn reset_login(&self, item: &ItemId) {
        self.clock.advance(Duration::from_secs(1));
        let token = self.token(item).await;
        let reset = self
            .api
            .sandbox_item_reset_login(&SandboxItemResetLoginRequest::new(token))
            .await
            .unwrap();
        assert!(reset.reset_login);
    }

    async fn verify(&self, delivery: &Delivery) -> Result<VerifiedWebhook, VerifyError> {
        let result = self
            .verifier
            .verify(
                delivery.header.as_deref(),
                &delivery.body,
                system_time(self.clock.now()),
            )
            .await;
        match &result {
            Ok(verified) => self.record(format!("{verified:?}")),
            Err(error) => self.record_error(error),
        }
        result
    }

    /// Verifies `delivery` and applies it; the report.
    async fn deliver(&self, delivery: &Delivery) -> HealthReport {
        let verified = self.verify(delivery).await.unwrap();
        let report = self
            .driver()
            .apply_webhook(&verified)
            .await
            .unwrap()
            .expect("a webhook about a stored Item");
        self.record(format!("{report:?}"));
        report
    }

    async fn stored(&self, item: &ItemId) -> &'static str {
        self.vault.item(item).await.unwrap().health_state.as_str()
    }

    async fn audit(&self, item: &ItemId) -> Vec<AuditRecord> {
        let records = self.vault.audit(item).await.unwrap();
        for record in &records {
            self.record(format!("{record:?}"));
        }
        records
    }

    /// The health records of the journal, as (from, to, reason, actor).
    async fn health_audit(&self, item: &ItemId) -> Vec<(String, String, String, String)> {
        self.audit(item)
            .await
            .into_iter()
            .filter(|r| r.event == tokenward_vault::AuditEvent::HealthState)
            .map(|r| {
                (
                    r.from_state.unwrap_or_default(),
                    r.to_state.unwrap_or_default(),
                    r.reason,
                    r.actor,
                )
            })
            .collect()
    }

    /// No token, no client secret, nothing shaped like a token in anything recorded.
    fn assert_clean(&self) {
        self.leaks.assert_clean_at_least(4);
    }
}

fn row(from: &str, to: &str, event: &str) -> (String, String, String, String) {
    (
        from.to_owned(),
        to.to_owned(),
        format!("health: {event}"),
        "webhooks".to_owned(),
    )
}

#[tokio::test]
async fn verified_webhooks_drive_item_health() {
    let mut f = fixture().await;
    let (a, _) = f.link("user-a", true).await;
    let (b, _) = f.link("user-b", true).await;
    let mut expected_a = Vec::new();

    // reset_login: Plaid sends ITEM: ERROR (ITEM_LOGIN_REQUIRED).
    f.reset_login(&a).await;
    let login_required = f.hook.next().await;
    let report = f.deliver(&login_required).await;
    assert_eq!(report.item_id, a);
    assert_eq!(
        report.state,
        HealthState::NeedsReauth {
            since: f.clock.now()
        }
    );
    assert_eq!(report.actions, vec![HealthCommand::RequestUpdateMode]);
    assert_eq!(f.stored(&a).await, "needs_reauth");
    expected_a.push(row("healthy", "needs_reauth", "login_required"));
    assert_eq!(f.health_audit(&a).await, expected_a);
    assert_eq!(f.stored(&b).await, "healthy", "the other Item is untouched");

    // The data call after reset_login fails with ITEM_LOGIN_REQUIRED: the same state, and no
    // second record.
    let error = f
        .api
        .accounts_get(&AccountsGetRequest::new(f.token(&a).await))
        .await
        .unwrap_err();
    f.record_error(&error);
    let report = f
        .driver()
        .apply_api_error(&a, &error)
        .await
        .unwrap()
        .unwrap();
    f.record(format!("{report:?}"));
    assert_eq!(report.state.name(), "needs_reauth");
    assert_eq!(f.stored(&a).await, "needs_reauth");
    assert_eq!(f.health_audit(&a).await, expected_a);

    // The same delivery again: a replay, refused before the driver sees it.
    let replay = f.verify(&login_required).await.unwrap_err();
    assert!(replay.is_replay(), "{replay:?}");
    assert!(matches!(replay, VerifyError::Replay));
    assert_eq!(f.stored(&a).await, "needs_reauth");
    assert_eq!(f.health_audit(&a).await, expected_a);

    // NeedsReauth keeps the token valid: a scheduled rotation is allowed, and runs.
    let reason = RotationReason::Scheduled;
    assert!(rotation_allowed(&report.state, reason));
    let rotated = Rotator::new(&*f.api, &f.vault, LeaseOwner::new("worker").unwrap())
        .with_config(RotatorConfig {
            probe_backoff: Duration::from_millis(10),
            ..RotatorConfig::default()
        })
        .rotate(&a, reason, &Actor::new("cron"))
        .await
        .unwrap();
    f.record(format!("{rotated:?}"));
    assert_eq!(
        rotated.state,
        CredentialState::Active {
            version: TokenVersion::new(2)
        }
    );
    assert_eq!(f.stored(&a).await, "needs_reauth", "rotation keeps health");

    // LOGIN_REPAIRED, one body byte changed: not from Plaid, nothing applied.
    let repaired = f.fire(&a, "LOGIN_REPAIRED").await;
    let mut forged = repaired.body.to_vec();
    let middle = forged.len() / 2;
    forged[middle] ^= 0x01;
    let forged = Delivery {
        header: repaired.header.clone(),
        body: Bytes::from(forged),
    };
    let error = f.verify(&forged).await.unwrap_err();
    assert!(matches!(error, VerifyError::BodyHashMismatch), "{error:?}");
    assert_eq!(f.stored(&a).await, "needs_reauth");
    assert_eq!(f.health_audit(&a).await, expected_a);

    // The genuine one (the forgery did not use up its delivery id).
    let report = f.deliver(&repaired).await;
    assert_eq!(report.state, HealthState::Healthy);
    assert!(report.actions.is_empty());
    assert_eq!(f.stored(&a).await, "healthy");
    expected_a.push(row("needs_reauth", "healthy", "login_repaired"));
    assert_eq!(f.health_audit(&a).await, expected_a);
    f.api
        .accounts_get(&AccountsGetRequest::new(f.token(&a).await))
        .await
        .expect("a repaired Item answers data calls");

    // PENDING_EXPIRATION: ExpiringSoon with Plaid's deadline (the emulator says 7 days on).
    let pending = f.fire(&a, "PENDING_EXPIRATION").await;
    let report = f.deliver(&pending).await;
    assert_eq!(
        report.state,
        HealthState::ExpiringSoon {
            deadline: Some(f.clock.now() + chrono::Duration::days(7))
        }
    );
    assert_eq!(report.actions, vec![HealthCommand::RequestUpdateMode]);
    assert_eq!(f.stored(&a).await, "expiring_soon");
    expected_a.push(row("healthy", "expiring_soon", "pending_expiration"));
    assert_eq!(f.health_audit(&a).await, expected_a);
    assert!(rotation_allowed(&report.state, RotationReason::Scheduled));

    // PENDING_DISCONNECT on the other Item: the same mapping; then PENDING_EXPIRATION on it
    // changes nothing more.
    let disconnect = f.fire(&b, "PENDING_DISCONNECT").await;
    let report = f.deliver(&disconnect).await;
    assert_eq!(report.item_id, b);
    assert_eq!(
        report.state,
        HealthState::ExpiringSoon {
            deadline: Some(f.clock.now() + chrono::Duration::days(7))
        }
    );
    assert_eq!(f.stored(&b).await, "expiring_soon");
    let expected_b = vec![row("healthy", "expiring_soon", "pending_expiration")];
    assert_eq!(f.health_audit(&b).await, expected_b);
    let pending_b = f.fire(&b, "PENDING_EXPIRATION").await;
    let report = f.deliver(&pending_b).await;
    assert_eq!(report.state.name(), "expiring_soon");
    assert_eq!(f.health_audit(&b).await, expected_b);
    assert_eq!(f.health_audit(&a).await, expected_a, "A is untouched");

    // USER_PERMISSION_REVOKED: PermissionRevoked; a scheduled rotation is refused, an
    // incident rotation would be allowed.
    let revoked = f.fire(&a, "USER_PERMISSION_REVOKED").await;
    let report = f.deliver(&revoked).await;
    assert_eq!(
        report.state,
        HealthState::PermissionRevoked {
            since: f.clock.now()
        }
    );
    assert_eq!(f.stored(&a).await, "permission_revoked");
    expected_a.push(row(
        "expiring_soon",
        "permission_revoked",
        "permission_revoked",
    ));
    assert_eq!(f.health_audit(&a).await, expected_a);
    assert!(!rotation_allowed(&report.state, RotationReason::Scheduled));
    assert!(rotation_allowed(&report.state, RotationReason::Compromise));
    let refused = Rotator::new(&*f.api, &f.vault, LeaseOwner::new("worker").unwrap())
        .rotate(&a, RotationReason::Scheduled, &Actor::new("cron"))
        .await
        .unwrap_err();
    f.record(format!("{refused} / {refused:?}"));
    assert!(
        matches!(
            refused,
            DriverError::HealthRefused {
                health: "permission_revoked",
                reason: RotationReason::Scheduled,
            }
        ),
        "{refused:?}"
    );
    assert_eq!(
        f.vault.get(&a).await.unwrap().version,
        2,
        "the refused rotation did nothing"
    );

    // A verified duplicate that reached the driver anyway (another instance without a shared
    // replay guard) changes nothing: the driver is idempotent too.
    let duplicate = WebhookVerifier::new(PlaidKeySource::new(f.api.clone() as Arc<dyn PlaidApi>))
        .verify(
            revoked.header.as_deref(),
            &revoked.body,
            system_time(f.clock.now()),
        )
        .await
        .unwrap();
    let report = f.driver().apply_webhook(&duplicate).await.unwrap().unwrap();
    f.record(format!("{report:?}"));
    assert_eq!(report.state.name(), "permission_revoked");
    assert_eq!(f.health_audit(&a).await, expected_a);

    f.record(format!("{:?}", f.verifier));
    f.assert_clean();
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn an_api_error_gives_the_state_the_webhook_gives() {
    let mut f = fixture().await;
    // One Item hears the webhook, the other (no webhook URL) only sees the data call fail.
    let (by_webhook, _) = f.link("user-a", true).await;
    let (by_error, _) = f.link("user-b", false).await;

    f.reset_login(&by_webhook).await;
    let webhook_at = f.clock.now();
    let delivery = f.hook.next().await;
    let from_webhook = f.deliver(&delivery).await;

    f.reset_login(&by_error).await;
    let error_at = f.clock.now();
    let error = f
        .api
        .accounts_get(&AccountsGetRequest::new(f.token(&by_error).await))
        .await
        .unwrap_err();
    f.record_error(&error);
    let from_error = f
        .driver()
        .apply_api_error(&by_error, &error)
        .await
        .unwrap()
        .unwrap();
    f.record(format!("{from_error:?}"));

    // The same state, each since its own event: the webhook's `iat`, the failed call's time.
    assert_eq!(
        from_webhook.state,
        HealthState::NeedsReauth { since: webhook_at }
    );
    assert_eq!(
        from_error.state,
        HealthState::NeedsReauth { since: error_at }
    );
    assert_eq!(from_error.actions, from_webhook.actions);
    assert_eq!(f.stored(&by_error).await, f.stored(&by_webhook).await);
    assert_eq!(f.stored(&by_error).await, "needs_reauth");
    let expected = vec![row("healthy", "needs_reauth", "login_required")];
    assert_eq!(f.health_audit(&by_webhook).await, expected);
    assert_eq!(f.health_audit(&by_error).await, expected);

    // No webhook was sent for the Item without a URL.
    f.clock.advance(Duration::from_secs(1));
    assert!(f.hook.try_next().is_none());

    f.assert_clean();
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn webhooks_about_other_matters_or_unknown_items_change_nothing() {
    let mut f = fixture().await;
    let (stored, _) = f.link("user-a", true).await;

    // A transactions webhook says nothing about health.
    let update = f.fire(&stored, "SYNC_UPDATES_AVAILABLE").await;
    let verified = f.verify(&update).await.unwrap();
    assert!(f.driver().apply_webhook(&verified).await.unwrap().is_none());
    // USER_ACCOUNT_REVOKED is about one account: the Item's health stays, the app is told to
    // delete that account's data.
    let account = f.fire(&stored, "USER_ACCOUNT_REVOKED").await;
    let report = f.deliver(&account).await;
    assert_eq!(report.state, HealthState::Healthy);
    assert!(matches!(
        report.actions.as_slice(),
        [HealthCommand::DeleteAccountData { .. }]
    ));
    assert_eq!(f.stored(&stored).await, "healthy");
    assert!(f.health_audit(&stored).await.is_empty());

    // An Item this vault does not hold (linked at Plaid only): ignored, not an error.
    let create = SandboxPublicTokenCreateRequest::new("ins_109508", vec![Product::Transactions])
        .with_webhook(f.hook.url.clone());
    let created = f.api.sandbox_public_token_create(&create).await.unwrap();
    f.secret(created.public_token.expose_secret());
    let exchanged = f
        .api
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest::new(created.public_token))
        .await
        .unwrap();
    f.secret(exchanged.access_token.expose_secret());
    f.clock.advance(Duration::from_secs(1));
    f.api
        .sandbox_item_reset_login(&SandboxItemResetLoginRequest::new(exchanged.access_token))
        .await
        .unwrap();
    let foreign = f.hook.next().await;
    let verified = f.verify(&foreign).await.unwrap();
    assert!(f.driver().apply_webhook(&verified).await.unwrap().is_none());
    assert_eq!(f.stored(&stored).await, "healthy");
    assert!(f.health_audit(&stored).await.is_empty());

    f.assert_clean();
    f.sandbox.shutdown().await;
}
