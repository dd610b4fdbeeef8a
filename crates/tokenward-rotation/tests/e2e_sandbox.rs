//! End to end: the `Rotator` over `HttpPlaidClient` against the emulator on loopback, and the
//! vault's `SQLite` store, with the emulator's faults on `/item/access_token/invalidate`. Each
//! case ends in the state the diagram says, checked against Plaid's truth (which token works).
//!
//! | fault | outcome | end state |
//! |---|---|---|
//! | none | 200 | `Active(v2)`, old token dead, new token works |
//! | 429 (before commit) | known reject | `Active(v1)`, attempt `failed` |
//! | 500 (the emulator answers it before committing) | ambiguous → probe: old works | `Active(v1)`, attempt `not_applied` |
//! | 500 after committing | ambiguous → probe: old dead | `Orphaned` + alert, out of traffic |
//! | commit, then drop the connection | ambiguous → probe: old dead | `Orphaned` + alert, out of traffic |
//! | latency beyond the client timeout | ambiguous → probe after the backoff | `Active(v1)` if the old token works (the emulator drops a request its client abandoned: this is what happens), else `Orphaned` |
//! | crash after the sent marker (by hand) | `recover()` probes | `Active(v1)` |
//! | crash after the stash (by hand) | `recover()` promotes | `Active(v2)` |
//! | `/item/remove` committed, answer dropped | `Removing`, re-driven by `recover()` | `Removed` (health too) |
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "test code: failures should be loud"
)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use support::now;
use tokenward_plaid::models::{ItemAccessTokenInvalidateRequest, ItemGetRequest};
use tokenward_plaid::{HttpPlaidClient, PlaidApi};
use tokenward_redact::AccessToken;
use tokenward_rotation::token::{Alert, CredentialState};
use tokenward_rotation::{
    Actor, AlertEvent, Clock, RotationReason, Rotator, RotatorConfig, TokenVersion,
};
use tokenward_sandbox::{FaultPlan, Sandbox};
use tokenward_vault::{
    AttemptId, AttemptStatus, AuditNote, BeginAttempt, ItemId, LeaseOwner, SqlVault, Vault,
};

const INVALIDATE: &str = "/item/access_token/invalidate";

struct Fixture {
    sandbox: Sandbox,
    api: HttpPlaidClient,
    vault: SqlVault,
    item: ItemId,
    first_token: AccessToken,
    alerts: Arc<Mutex<Vec<AlertEvent>>>,
}

fn client(base_url: &str, timeout: Duration) -> HttpPlaidClient {
    tokenward_testkit::plaid::builder(base_url, "rotation-tests", "rotation-tests-secret")
        .timeout(timeout)
        .retry_policy(tokenward_testkit::plaid::short_retries(3))
        .build()
        .unwrap()
}

fn dup(token: &AccessToken) -> AccessToken {
    AccessToken::new(token.expose_secret()).unwrap()
}

async fn fixture(timeout: Duration) -> Fixture {
    let sandbox = Sandbox::builder().seed(7).start().await.unwrap();
    let api = client(&sandbox.base_url(), timeout);
    let (vault, item, token) = support::linked_item(&api).await;
    Fixture {
        sandbox,
        api,
        vault,
        item,
        first_token: token,
        alerts: Arc::new(Mutex::new(Vec::new())),
    }
}

impl Fixture {
    fn rotator(&self, probe_backoff: Duration) -> Rotator<'_> {
        let alerts = Arc::clone(&self.alerts);
        Rotator::new(&self.api, &self.vault, LeaseOwner::new("worker-a").unwrap())
            .with_config(RotatorConfig {
                probe_backoff,
                ..RotatorConfig::default()
            })
            .with_alerts(Arc::new(move |event: &AlertEvent| {
                alerts.lock().unwrap().push(event.clone());
            }))
    }

    async fn works(&self, token: &AccessToken) -> bool {
        match self.api.item_get(&ItemGetRequest::new(dup(token))).await {
            Ok(_) => true,
            Err(err) if err.is_invalid_access_token() => false,
            Err(err) => panic!("probe failed: {err}"),
        }
    }

    async fn stored_works(&self) -> bool {
        let stored = self.vault.get(&self.item).await.unwrap();
        self.works(&stored.token).await
    }

    /// No token, old or new, appears in any audit record.
    async fn assert_audit_clean(&self) {
        let stored = self.vault.get(&self.item).await.unwrap();
        let secrets = [
            self.first_token.expose_secret().to_owned(),
            stored.token.expose_secret().to_owned(),
        ];
        for record in self.vault.audit(&self.item).await.unwrap() {
            let text = format!("{record:?}");
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "token in audit: {text}");
            }
            assert!(!text.contains("access-sandbox-"), "token in audit: {text}");
        }
    }
}

/// The system clock, ten minutes on: past any lease a "crashed" worker took.
struct Later;

impl Clock for Later {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::minutes(10)
    }
}

fn actor() -> Actor {
    Actor::new("e2e")
}

#[tokio::test]
async fn a_clean_rotation_ends_active_at_the_next_version() {
    let f = fixture(Duration::from_secs(10)).await;
    let report = f
        .rotator(Duration::from_millis(10))
        .rotate(&f.item, RotationReason::Scheduled, &actor())
        .await
        .unwrap();
    assert_eq!(
        report.state,
        CredentialState::Active {
            version: TokenVersion::new(2)
        }
    );
    assert!(report.alerts.is_empty());
    assert!(
        !format!("{report:?}").contains("access-sandbox-"),
        "token in a report"
    );
    assert!(!f.works(&f.first_token).await, "the old token must be dead");
    assert!(f.stored_works().await, "the stored token must work");
    assert_eq!(f.vault.get(&f.item).await.unwrap().version, 2);
    assert!(f.vault.open_attempts().await.unwrap().is_empty());
    let record = f.vault.item(&f.item).await.unwrap();
    assert_eq!(record.credential_state.as_str(), "active");
    assert!(
        record.lease.is_none() || record.lease.unwrap().expires_at <= now(),
        "lease released"
    );
    f.assert_audit_clean().await;
    // A second rotation works from v2.
    let again = f
        .rotator(Duration::from_millis(10))
        .rotate(&f.item, RotationReason::Manual, &actor())
        .await
        .unwrap();
    assert_eq!(
        again.state,
        CredentialState::Active {
            version: TokenVersion::new(3)
        }
    );
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn rate_limited_before_commit_stays_active() {
    let f = fixture(Duration::from_secs(10)).await;
    f.sandbox
        .faults()
        .set(INVALIDATE, FaultPlan::new().rate_limit(1))
        .unwrap();
    let report = f
        .rotator(Duration::from_millis(10))
        .rotate(&f.item, RotationReason::Scheduled, &actor())
        .await
        .unwrap();
    assert_eq!(
        report.state,
        CredentialState::Active {
            version: TokenVersion::new(1)
        }
    );
    assert!(f.works(&f.first_token).await);
    assert!(f.stored_works().await);
    let attempt = AttemptId::new(tokenward_rotation_attempt(&report)).unwrap();
    assert_eq!(
        f.vault.attempt(&attempt).await.unwrap().status,
        AttemptStatus::Failed
    );
    f.assert_audit_clean().await;
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn server_error_is_ambiguous_and_the_probe_finds_it_not_applied() {
    let f = fixture(Duration::from_secs(10)).await;
    f.sandbox
        .faults()
        .set(INVALIDATE, FaultPlan::new().server_error(1))
        .unwrap();
    let report = f
        .rotator(Duration::from_millis(10))
        .rotate(&f.item, RotationReason::Scheduled, &actor())
        .await
        .unwrap();
    // The emulator answers its 500 before committing: the probe finds the old token alive.
    assert_eq!(
        report.state,
        CredentialState::Active {
            version: TokenVersion::new(1)
        }
    );
    assert!(f.stored_works().await);
    let attempt = AttemptId::new(tokenward_rotation_attempt(&report)).unwrap();
    assert_eq!(
        f.vault.attempt(&attempt).await.unwrap().status,
        AttemptStatus::NotApplied
    );
    let journal = f.vault.audit(&f.item).await.unwrap();
    let states: Vec<_> = journal.iter().filter_map(|r| r.to_state.clone()).collect();
    for expected in ["intent", "in_flight", "unknown", "probing", "active"] {
        assert!(
            states.iter().any(|s| s == expected),
            "{expected} missing from {states:?}"
        );
    }
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn server_error_after_commit_ends_orphaned_with_an_alert() {
    orphaned_after(FaultPlan::new().error_after_commit(1)).await;
}

#[tokio::test]
async fn commit_then_drop_ends_orphaned_with_an_alert() {
    orphaned_after(FaultPlan::new().drop_after_commit(1)).await;
}

/// Plaid commits the rotation but its answer (the new token) never arrives.
async fn orphaned_after(fault: FaultPlan) {
    let f = fixture(Duration::from_secs(10)).await;
    f.sandbox.faults().set(INVALIDATE, fault).unwrap();
    let report = f
        .rotator(Duration::from_millis(10))
        .rotate(&f.item, RotationReason::Scheduled, &actor())
        .await
        .unwrap();
    assert!(
        matches!(report.state, CredentialState::Orphaned { .. }),
        "{:?}",
        report.state
    );
    assert!(!report.state.serves_traffic());
    assert!(
        report
            .alerts
            .iter()
            .any(|a| matches!(a, Alert::Orphaned { .. }))
    );
    assert_eq!(f.alerts.lock().unwrap().len(), 1);
    let printed = format!("{report:?} {:?}", f.alerts.lock().unwrap());
    assert!(
        !printed.contains("access-sandbox-"),
        "token in a report or alert"
    );
    assert!(
        !f.works(&f.first_token).await,
        "Plaid committed the rotation"
    );
    let record = f.vault.item(&f.item).await.unwrap();
    assert_eq!(record.credential_state.as_str(), "orphaned");
    // Never silently Active; and a second rotation is refused.
    let again = f
        .rotator(Duration::from_millis(10))
        .rotate(&f.item, RotationReason::Scheduled, &actor())
        .await;
    let err = again.unwrap_err();
    assert!(err.to_string().contains("orphaned"), "{err}");
    assert!(!format!("{err:?}").contains("access-sandbox-"));
    f.assert_audit_clean().await;
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn latency_past_the_timeout_is_settled_by_the_probe() {
    let f = fixture(Duration::from_millis(300)).await;
    f.sandbox
        .faults()
        .set(
            INVALIDATE,
            FaultPlan::new().latency(Duration::from_millis(800)),
        )
        .unwrap();
    // The first probe waits past the emulator's latency, so whatever the emulator does with
    // the abandoned request has happened by then.
    let report = f
        .rotator(Duration::from_millis(1500))
        .rotate(&f.item, RotationReason::Scheduled, &actor())
        .await
        .unwrap();
    f.sandbox.faults().clear();
    let old_works = f.works(&f.first_token).await;
    match &report.state {
        CredentialState::Active { version } => {
            assert!(old_works, "Active while the old token is dead");
            assert_eq!(*version, TokenVersion::new(1));
        }
        CredentialState::Orphaned { .. } => assert!(!old_works),
        other => panic!("unexpected {other:?}"),
    }
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn recovery_after_a_crash_behind_the_sent_marker_probes_and_stays_active() {
    let f = fixture(Duration::from_secs(10)).await;
    // A worker journals the intent and the sent marker, then dies before calling Plaid.
    let owner = LeaseOwner::new("crashed-worker").unwrap();
    let lease = f
        .vault
        .acquire_lease(&f.item, &owner, Duration::from_secs(60), now())
        .await
        .unwrap();
    let attempt = AttemptId::new("0190f0f0-0000-7000-8000-000000000001").unwrap();
    let note = AuditNote::new("crashed-worker", "start: scheduled").unwrap();
    f.vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &attempt,
                lease: &lease,
                expected_version: 1,
                note: &note,
            },
            now(),
        )
        .await
        .unwrap();
    f.vault.mark_sent(&attempt, &lease, now()).await.unwrap();

    // The recovering worker runs later: the dead worker's lease has lapsed by its clock.
    let results = f
        .rotator(Duration::from_millis(10))
        .with_clock(Arc::new(Later))
        .recover()
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    let report = results[0].1.as_ref().unwrap();
    assert_eq!(
        report.state,
        CredentialState::Active {
            version: TokenVersion::new(1)
        }
    );
    assert_eq!(
        f.vault.attempt(&attempt).await.unwrap().status,
        AttemptStatus::NotApplied
    );
    assert!(f.stored_works().await);
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn recovery_after_a_crash_behind_the_stash_promotes_the_new_token() {
    let f = fixture(Duration::from_secs(10)).await;
    let owner = LeaseOwner::new("crashed-worker").unwrap();
    let lease = f
        .vault
        .acquire_lease(&f.item, &owner, Duration::from_secs(60), now())
        .await
        .unwrap();
    let attempt = AttemptId::new("0190f0f0-0000-7000-8000-000000000002").unwrap();
    let note = AuditNote::new("crashed-worker", "start: scheduled").unwrap();
    f.vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &attempt,
                lease: &lease,
                expected_version: 1,
                note: &note,
            },
            now(),
        )
        .await
        .unwrap();
    f.vault.mark_sent(&attempt, &lease, now()).await.unwrap();
    let answer = f
        .api
        .item_access_token_invalidate(&ItemAccessTokenInvalidateRequest::new(dup(&f.first_token)))
        .await
        .unwrap();
    f.vault
        .stash_new_token(
            &attempt,
            &answer.new_access_token,
            Some(&answer.request_id),
            now(),
        )
        .await
        .unwrap();

    // The recovering worker runs later: the dead worker's lease has lapsed by its clock.
    let results = f
        .rotator(Duration::from_millis(10))
        .with_clock(Arc::new(Later))
        .recover()
        .await
        .unwrap();
    let report = results[0].1.as_ref().unwrap();
    assert_eq!(
        report.state,
        CredentialState::Active {
            version: TokenVersion::new(2)
        }
    );
    let stored = f.vault.get(&f.item).await.unwrap();
    assert_eq!(
        stored.token.expose_secret(),
        answer.new_access_token.expose_secret()
    );
    assert!(f.stored_works().await);
    assert!(f.vault.open_attempts().await.unwrap().is_empty());
    f.sandbox.shutdown().await;
}

/// The vault's text id of the report's attempt.
fn tokenward_rotation_attempt(report: &tokenward_rotation::RotationReport) -> String {
    let id = report.attempt.expect("an attempt").get();
    let hex = format!("{id:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[tokio::test]
async fn remove_is_re_driven_after_a_dropped_answer_and_ends_removed() {
    let f = fixture(Duration::from_secs(10)).await;
    f.sandbox
        .faults()
        .set("/item/remove", FaultPlan::new().drop_after_commit(1))
        .unwrap();
    let rotator = f.rotator(Duration::from_millis(10));
    let report = rotator
        .remove(
            &f.item,
            tokenward_rotation::token::RemoveReason::NoLongerNeeded,
            &actor(),
        )
        .await
        .unwrap();
    // The answer was lost: still removing, safe to re-drive.
    assert!(
        matches!(report.state, CredentialState::Removing { .. }),
        "{:?}",
        report.state
    );
    let results = rotator.recover().await.unwrap();
    let report = results[0].1.as_ref().unwrap();
    assert!(matches!(report.state, CredentialState::Removed { .. }));
    assert!(!f.works(&f.first_token).await);
    let record = f.vault.item(&f.item).await.unwrap();
    assert_eq!(record.credential_state.as_str(), "removed");
    assert_eq!(record.health_state.as_str(), "removed");
    f.sandbox.shutdown().await;
}
