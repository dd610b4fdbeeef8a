//! What the machines need across restarts, kept by the vault: KEK lifecycle records (a
//! compromise playbook continues where it stopped; a destroy waits for the grace period from
//! the real disable time), Item health with its own time (late deliveries never regress it),
//! and the attempt of the last promote (a recovered `Verifying` or `Quarantined` Item names
//! it). Also the `Quarantined` paths: a promoted token Plaid rejects, and a lost promote.
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
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokenward_envelope::{Cipher, KeyVersion, Keyring};
use tokenward_plaid::HttpPlaidClient;
use tokenward_redact::AccessToken;
use tokenward_rotation::HealthDriver;
use tokenward_rotation::health::{HealthCommand, HealthEvent, HealthState};
use tokenward_rotation::kek::KekState;
use tokenward_rotation::token::{Alert, CredentialState};
use tokenward_rotation::{
    Actor, Clock, KekManager, MemoryJobStore, RateLimiter, Rotator, RotatorConfig, kek_compromised,
};
use tokenward_sandbox::Sandbox;
use tokenward_vault::{
    AttemptId, AttemptStatus, AuditEvent, AuditNote, BeginAttempt, ItemId, KekStatus, Lease,
    LeaseOwner, Promote, SqlVault, Timestamp, UserId, Vault,
};

/// A clock the test sets.
struct Fixed(DateTime<Utc>);

impl Clock for Fixed {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + seconds, 0).unwrap()
}

fn vt(at: DateTime<Utc>) -> Timestamp {
    Timestamp::from_unix_millis(at.timestamp_millis())
}

fn token(n: u32) -> AccessToken {
    AccessToken::new(format!("access-sandbox-00000000-0000-4000-8000-{n:012}")).unwrap()
}

fn note(reason: &str) -> AuditNote {
    AuditNote::new("test", reason).unwrap()
}

fn client(base_url: &str) -> HttpPlaidClient {
    tokenward_testkit::plaid::builder(base_url, "rotation-tests", "rotation-tests-secret")
        .timeout(Duration::from_secs(10))
        .retry_policy(tokenward_testkit::plaid::short_retries(1))
        .build()
        .unwrap()
}

async fn insert(vault: &dyn Vault, n: u32) -> ItemId {
    let item = ItemId::new(format!("item-{n}")).unwrap();
    vault
        .insert_item(
            &item,
            &UserId::new(format!("user-{n}")).unwrap(),
            &token(n),
            &note("exchange"),
            vt(t(0)),
        )
        .await
        .unwrap();
    item
}

/// A rotation of `item` under `owner`'s lease up to the moment a worker crashes: the attempt
/// begun, the request sent, Plaid's answer (`token(n)`, `request_id`) stashed. The lease, still
/// held.
async fn sent_and_stashed(
    vault: &SqlVault,
    item: &ItemId,
    owner: &LeaseOwner,
    attempt: &AttemptId,
    n: u32,
    request_id: &str,
    now: Timestamp,
) -> Lease {
    let lease = vault
        .acquire_lease(item, owner, Duration::from_secs(1), now)
        .await
        .unwrap();
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: attempt,
                lease: &lease,
                expected_version: 1,
                note: &note("start: scheduled"),
            },
            now,
        )
        .await
        .unwrap();
    vault.mark_sent(attempt, &lease, now).await.unwrap();
    vault
        .stash_new_token(attempt, &token(n), Some(request_id), now)
        .await
        .unwrap();
    lease
}

#[tokio::test]
async fn the_kek_lifecycle_survives_restarts_and_destroy_waits_for_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let keyring = Arc::new(Keyring::generate().unwrap());
    let open = || SqlVault::sqlite_file(&path, Cipher::new(Arc::clone(&keyring)));

    // First process: a new primary, the old one marked compromised; then it dies.
    let vault = open().await.unwrap();
    let v1 = keyring.primary_version().unwrap();
    let a = insert(&vault, 1).await;
    insert(&vault, 2).await;
    let kek = KekManager::load(&vault)
        .await
        .unwrap()
        .with_clock(Arc::new(Fixed(t(10))));
    let v2 = kek.promote_new_primary().await.unwrap();
    kek.compromise(v1).await.unwrap();
    drop(kek);
    vault.close().await;
    drop(vault);

    // Second process: the compromise and its time come back from the vault.
    let vault = open().await.unwrap();
    let kek = KekManager::load(&vault)
        .await
        .unwrap()
        .with_clock(Arc::new(Fixed(t(20))));
    assert_eq!(
        kek.ring().state(v1),
        Some(KekState::Compromised { since: t(10) })
    );
    assert_eq!(kek.ring().state(v2), Some(KekState::Primary));
    assert!(kek.is_compromised(v1));
    let err = kek.disable(v1).await.unwrap_err();
    assert!(err.to_string().contains("2 envelope(s)"), "{err}");
    let old_envelope = vault.get_sealed(&a).await.unwrap().envelope;
    let mut cursor = None;
    loop {
        let batch = vault
            .rewrap_batch(cursor.as_ref(), 10, vt(t(21)))
            .await
            .unwrap();
        cursor = batch.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    kek.disable(v1).await.unwrap();
    assert_eq!(
        kek.ring().state(v1),
        Some(KekState::Disabled { since: t(20) })
    );

    // Destroy: refused while an envelope is under the version (planted by hand: the vault
    // itself never leaves one), and before the grace period.
    sqlx::query("UPDATE items SET envelope = $1, kek_version = $2 WHERE item_id = $3")
        .bind(old_envelope.to_text())
        .bind(i64::from(v1.get()))
        .bind(a.as_str())
        .execute(vault.pool())
        .await
        .unwrap();
    let err = kek.destroy(v1).await.unwrap_err();
    assert!(err.to_string().contains("1 envelope(s)"), "{err}");
    let mut cursor = None;
    loop {
        let batch = vault.rewrap_batch(cursor.as_ref(), 10, vt(t(22))).await;
        // The planted envelope's key is disabled: the row fails to rewrap; put it back.
        let batch = batch.unwrap();
        cursor = batch.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    keyring.enable(v1).unwrap();
    vault.rewrap_batch(None, 10, vt(t(22))).await.unwrap();
    keyring.disable(v1).unwrap();
    assert_eq!(vault.envelopes_under(v1).await.unwrap(), 0);
    let err = kek.destroy(v1).await.unwrap_err();
    assert!(err.to_string().contains("grace period"), "{err}");
    drop(kek);
    vault.close().await;
    drop(vault);

    // Third process, 31 days on: the grace period ran from the stored disable time.
    let vault = open().await.unwrap();
    let kek = KekManager::load(&vault)
        .await
        .unwrap()
        .with_clock(Arc::new(Fixed(t(20) + TimeDelta::days(31))));
    assert_eq!(
        kek.ring().state(v1),
        Some(KekState::Disabled { since: t(20) })
    );
    kek.destroy(v1).await.unwrap();
    assert!(keyring.keys().iter().all(|k| k.version != v1));
    let records = vault.kek_records().await.unwrap();
    let r1 = records.iter().find(|r| r.version == v1).unwrap();
    assert_eq!(r1.state, KekStatus::Destroyed);
    assert!(r1.compromised, "the compromised flag outlives the disable");
    assert_eq!(r1.compromised_at, Some(vt(t(10))));
    assert_eq!(r1.disabled_at, Some(vt(t(20))));
    assert_eq!(r1.destroyed_at, Some(vt(t(20) + TimeDelta::days(31))));
    let r2 = records.iter().find(|r| r.version == v2).unwrap();
    assert_eq!(
        (r2.state, r2.promoted_at),
        (KekStatus::Primary, Some(vt(t(10))))
    );

    // Every change has its audit record, in order, for v1.
    let journal = vault.audit_since(Timestamp::EPOCH, 10_000).await.unwrap();
    let v1_changes: Vec<(String, String)> = journal
        .iter()
        .filter(|r| r.event == AuditEvent::KekState)
        .filter(|r| r.reason.starts_with(&format!("kek {}:", v1.get())))
        .map(|r| (r.from_state.clone().unwrap(), r.to_state.clone().unwrap()))
        .collect();
    let expected = [
        ("absent", "primary"),
        ("primary", "decrypt_only"),
        ("decrypt_only", "compromised"),
        ("compromised", "disabled"),
        ("disabled", "destroyed"),
    ];
    assert_eq!(
        v1_changes,
        expected.map(|(a, b)| (a.to_owned(), b.to_owned())),
    );
    // The new version in its two phases, and v1 demoted by the promotion, not before it.
    let kek_changes: Vec<(String, String, String)> = journal
        .iter()
        .filter(|r| r.event == AuditEvent::KekState)
        .map(|r| {
            (
                r.reason.clone(),
                r.from_state.clone().unwrap(),
                r.to_state.clone().unwrap(),
            )
        })
        .collect();
    let position = |version: KeyVersion, from: &str, to: &str| {
        kek_changes
            .iter()
            .position(|(reason, f, t)| {
                reason.starts_with(&format!("kek {}:", version.get())) && f == from && t == to
            })
            .unwrap_or_else(|| panic!("no {version} {from} -> {to} in {kek_changes:?}"))
    };
    let staged = position(v2, "absent", "staged");
    let promoted = position(v2, "staged", "primary");
    let demoted = position(v1, "primary", "decrypt_only");
    assert!(
        position(v1, "absent", "primary") < staged,
        "{kek_changes:?}"
    );
    assert!(staged < demoted && demoted < promoted, "{kek_changes:?}");

    // A fourth process knows the version is gone; the incident entry point reports it done
    // without touching anything (no Plaid call, no rotation).
    let kek = KekManager::load(&vault).await.unwrap();
    assert!(matches!(
        kek.ring().state(v1),
        Some(KekState::Destroyed { .. })
    ));
    let api = client("http://127.0.0.1:9");
    let rotator = Rotator::new(&api, &vault, LeaseOwner::new("secops").unwrap());
    let report = kek_compromised(
        &rotator,
        &vault,
        &RateLimiter::new(100.0, 10),
        &MemoryJobStore::default(),
        v1,
        &Actor::new("secops"),
    )
    .await
    .unwrap();
    assert_eq!(report.disabled, Some(v1));
    assert!(report.rotations.is_none());
}

/// A version disabled in the keyring alone (as `tokenward keys disable` does) gets its disable
/// time at the first load that sees it, saved, so later loads keep it and the grace period
/// ends.
#[tokio::test]
async fn a_keyring_disable_keeps_its_time_across_loads() {
    let keyring = Arc::new(Keyring::generate().unwrap());
    let vault = SqlVault::sqlite_memory(Cipher::new(Arc::clone(&keyring)))
        .await
        .unwrap();
    let v1 = keyring.primary_version().unwrap();
    let kek = KekManager::load_with_clock(&vault, Arc::new(Fixed(t(10))))
        .await
        .unwrap();
    kek.promote_new_primary().await.unwrap();
    drop(kek);
    keyring.disable(v1).unwrap();

    let kek = KekManager::load_with_clock(&vault, Arc::new(Fixed(t(20))))
        .await
        .unwrap();
    assert_eq!(
        kek.ring().state(v1),
        Some(KekState::Disabled { since: t(20) })
    );
    drop(kek);
    let record = vault.kek_records().await.unwrap();
    let r1 = record.iter().find(|r| r.version == v1).unwrap();
    assert_eq!(
        (r1.state, r1.disabled_at),
        (KekStatus::Disabled, Some(vt(t(20))))
    );

    let later = t(20) + TimeDelta::days(31);
    let kek = KekManager::load_with_clock(&vault, Arc::new(Fixed(later)))
        .await
        .unwrap();
    assert_eq!(
        kek.ring().state(v1),
        Some(KekState::Disabled { since: t(20) })
    );
    kek.destroy(v1).await.unwrap();
    assert!(keyring.keys().iter().all(|k| k.version != v1));
}

#[tokio::test]
async fn health_keeps_its_own_time_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let keyring = Arc::new(Keyring::generate().unwrap());
    let open = || SqlVault::sqlite_file(&path, Cipher::new(Arc::clone(&keyring)));
    let vault = open().await.unwrap();
    let item = insert(&vault, 1).await;
    let deadline = t(10_000);
    let driver = HealthDriver::new(&vault, "webhooks").with_clock(Arc::new(Fixed(t(101))));
    let report = driver
        .apply(
            &item,
            HealthEvent::PendingExpiration {
                deadline: Some(deadline),
            },
            t(100),
        )
        .await
        .unwrap();
    assert_eq!(
        report.state,
        HealthState::ExpiringSoon {
            deadline: Some(deadline)
        }
    );
    assert_eq!((report.as_of, report.stale), (Some(t(100)), false));
    vault.close().await;
    drop(vault);

    // Restarted: a login-required webhook issued *before* the expiry notice arrives late.
    let vault = open().await.unwrap();
    let driver = HealthDriver::new(&vault, "webhooks").with_clock(Arc::new(Fixed(t(200))));
    let late = driver
        .apply(&item, HealthEvent::LoginRequired, t(50))
        .await
        .unwrap();
    assert!(late.stale);
    assert!(late.actions.is_empty());
    assert_eq!(
        late.state,
        HealthState::ExpiringSoon {
            deadline: Some(deadline)
        }
    );
    let record = vault.item(&item).await.unwrap();
    assert_eq!(record.health_state.as_str(), "expiring_soon");
    assert_eq!(record.health_deadline, Some(vt(deadline)));
    let last = vault.audit(&item).await.unwrap().pop().unwrap();
    assert_eq!(last.event, AuditEvent::HealthIgnored);
    assert!(last.reason.contains("login_required"), "{}", last.reason);

    // An account revoked before the stored health is still acted on: its data is deleted.
    let revoked = driver
        .apply(
            &item,
            HealthEvent::AccountRevoked {
                account_id: "acc-1".to_owned(),
            },
            t(50),
        )
        .await
        .unwrap();
    assert!(!revoked.stale);
    assert_eq!(
        revoked.actions,
        vec![HealthCommand::DeleteAccountData {
            account_id: "acc-1".to_owned()
        }]
    );
    assert!(matches!(revoked.state, HealthState::ExpiringSoon { .. }));

    // Time passes: before the stored deadline nothing happens, after it the Item needs reauth
    // as of the deadline.
    let early = driver.tick(&item).await.unwrap();
    assert!(matches!(early.state, HealthState::ExpiringSoon { .. }));
    let driver = HealthDriver::new(&vault, "webhooks").with_clock(Arc::new(Fixed(t(10_001))));
    let passed = driver.tick(&item).await.unwrap();
    assert_eq!(passed.state, HealthState::NeedsReauth { since: deadline });
    assert_eq!(passed.as_of, Some(deadline));
    let record = vault.item(&item).await.unwrap();
    assert_eq!(record.health_state.as_str(), "needs_reauth");
    assert_eq!(record.health_as_of, Some(vt(deadline)));
    assert_eq!(record.health_deadline, None);

    // A repair issued after the deadline applies; a duplicate of an old notice does not.
    let repaired = driver
        .apply(&item, HealthEvent::LoginRepaired, t(10_500))
        .await
        .unwrap();
    assert_eq!(repaired.state, HealthState::Healthy);
    let stale = driver
        .apply(
            &item,
            HealthEvent::PendingExpiration {
                deadline: Some(deadline),
            },
            t(100),
        )
        .await
        .unwrap();
    assert!(stale.stale);
    assert_eq!(
        vault.item(&item).await.unwrap().health_state.as_str(),
        "healthy"
    );
}

/// A promoted token Plaid rejects ends `Quarantined` with an alert naming the attempt the
/// vault kept; a promote that loses its compare-and-swap ends `Quarantined` with the stash
/// kept for an operator.
#[tokio::test]
async fn quarantine_paths_name_the_real_attempt() {
    let sandbox = Sandbox::builder().seed(17).start().await.unwrap();
    let api = client(&sandbox.base_url());
    let vault = SqlVault::sqlite_memory(Cipher::new(Arc::new(Keyring::generate().unwrap())))
        .await
        .unwrap();
    let config = RotatorConfig {
        probe_backoff: Duration::from_millis(10),
        ..RotatorConfig::default()
    };
    let rotator =
        Rotator::new(&api, &vault, LeaseOwner::new("recovery").unwrap()).with_config(config);
    let now = vt(Utc::now());
    let owner = LeaseOwner::new("crashed-worker").unwrap();

    // 1. Crashed in `Verifying` after promoting a token Plaid does not know.
    let item = insert(&vault, 1).await;
    let attempt = AttemptId::new("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap();
    let lease = sent_and_stashed(&vault, &item, &owner, &attempt, 99, "req-1", now).await;
    vault
        .promote_stashed(
            Promote {
                attempt_id: &attempt,
                expected_version: 1,
                to: tokenward_vault::CredentialState::Verifying,
                lease: Some(&lease),
                note: &note("promote"),
            },
            now,
        )
        .await
        .unwrap();
    vault.release_lease(&lease).await.unwrap();
    let report = rotator.recover_item(&item).await.unwrap();
    let CredentialState::Quarantined { attempt: held, .. } = &report.state else {
        panic!("not quarantined: {:?}", report.state)
    };
    let expected = u128::from_str_radix(&attempt.as_str().replace('-', ""), 16).unwrap();
    assert_eq!(
        held.id.get(),
        expected,
        "the real attempt, not a placeholder"
    );
    assert!(
        matches!(report.alerts[..], [Alert::Quarantined { attempt }] if attempt.get() == expected)
    );
    let record = vault.item(&item).await.unwrap();
    assert_eq!(record.credential_state.as_str(), "quarantined");
    assert_eq!(record.last_attempt_id, Some(attempt.clone()));
    let journal = vault.audit(&item).await.unwrap();
    let last = journal.last().unwrap();
    assert_eq!(last.to_state.as_deref(), Some("quarantined"));
    assert_eq!(last.attempt_id.as_ref(), Some(&attempt));

    // 2. A stashed token whose promote loses: the Item's version moved under the attempt
    //    (two rotations collided; leases should make this impossible, so it is forced here).
    let item = insert(&vault, 2).await;
    let attempt = AttemptId::new("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c").unwrap();
    let lease = sent_and_stashed(&vault, &item, &owner, &attempt, 98, "req-2", now).await;
    vault.release_lease(&lease).await.unwrap();
    sqlx::query("UPDATE items SET token_version = 2 WHERE item_id = $1")
        .bind(item.as_str())
        .execute(vault.pool())
        .await
        .unwrap();
    let report = rotator.recover_item(&item).await.unwrap();
    assert!(
        matches!(report.state, CredentialState::Quarantined { .. }),
        "{:?}",
        report.state
    );
    assert!(matches!(report.alerts[..], [Alert::Quarantined { .. }]));
    let stash = vault.attempt(&attempt).await.unwrap();
    assert_eq!(stash.status, AttemptStatus::Stashed, "the stash is kept");
    assert!(stash.maybe_applied);
    assert_eq!(
        vault.item(&item).await.unwrap().credential_state.as_str(),
        "quarantined"
    );
    sandbox.shutdown().await;
}
