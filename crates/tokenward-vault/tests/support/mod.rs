//! The behaviour suite every SQL backend runs, and shared fixtures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::too_many_lines,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub,
    dead_code,
    reason = "test code: failures should be loud"
)]

use std::sync::Arc;
use std::time::Duration;

use tokenward_envelope::{Cipher, EnvelopeError, Keyring};
use tokenward_redact::AccessToken;
use tokenward_testkit::canary;
use tokenward_vault::{
    AttemptId, AttemptStatus, AuditEvent, AuditNote, BeginAttempt, CredentialState, FinishAttempt,
    HealthState, HealthUpdate, HealthWrite, InvalidInput, ItemId, JobId, KekRecord, KekStatus,
    LeaseError, LeaseOwner, Promote, ReadError, RewrapJobRecord, SqlVault, StateChange,
    StateFilter, Timestamp, UserId, Vault, WriteError,
};

pub const T0: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);
pub const TTL: Duration = Duration::from_secs(30);

pub fn keyring_and_cipher() -> (Arc<Keyring>, Cipher) {
    let keyring = Arc::new(Keyring::generate().unwrap());
    let cipher = Cipher::new(Arc::clone(&keyring));
    (keyring, cipher)
}

pub fn at(seconds: u64) -> Timestamp {
    T0.checked_add(Duration::from_secs(seconds)).unwrap()
}

pub fn item(n: u32) -> ItemId {
    ItemId::new(format!("item-{n:06}")).unwrap()
}

pub fn user(n: u32) -> UserId {
    UserId::new(format!("user-{n}")).unwrap()
}

pub fn token(n: u32) -> AccessToken {
    AccessToken::new(format!("access-sandbox-00000000-0000-4000-8000-{n:012}")).unwrap()
}

pub fn note(reason: &str) -> AuditNote {
    AuditNote::new("test-worker", reason).unwrap()
}

pub fn owner(name: &str) -> LeaseOwner {
    LeaseOwner::new(name).unwrap()
}

/// Runs every behaviour check against `vault`, whose keyring is `keyring`.
pub async fn suite(vault: &SqlVault, keyring: &Keyring) {
    round_trip_and_errors(vault).await;
    compare_and_swap(vault).await;
    context_binding(vault).await;
    malformed_rows(vault).await;
    leases(vault).await;
    rotation_happy_path(vault).await;
    stash_is_unconditional(vault).await;
    recovery_paths(vault).await;
    listing(vault).await;
    no_partial_writes(vault).await;
    erasure(vault).await;
    no_token_in_audit_or_errors(vault).await;
    rewrap_and_disabled_key(vault, keyring).await;
    rewrap_jobs(vault, keyring).await;
    health_records(vault).await;
    kek_records(vault, keyring).await;
    attempt_flags_and_last_promoted(vault).await;
    audit_is_append_only(vault).await;
}

async fn round_trip_and_errors(vault: &SqlVault) {
    let (i, u) = (item(1), user(1));
    let record = vault
        .insert_item(&i, &u, &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    assert_eq!(record.token_version, 1);
    assert_eq!(record.credential_state, CredentialState::Active);
    assert_eq!(record.health_state, HealthState::Healthy);
    assert_eq!(vault.item(&i).await.unwrap(), record);

    let stored = vault.get(&i).await.unwrap();
    assert_eq!(stored.token, token(1));
    assert_eq!(stored.version, 1);

    let again = vault
        .insert_item(&i, &u, &token(2), &note("exchange"), T0)
        .await;
    assert!(matches!(again, Err(WriteError::AlreadyExists(ref id)) if *id == i));
    assert_eq!(vault.get(&i).await.unwrap().token, token(1));

    let missing = item(999_999);
    assert!(matches!(
        vault.get(&missing).await,
        Err(ReadError::NotFound(_))
    ));
    assert!(matches!(
        vault.item(&missing).await,
        Err(ReadError::NotFound(_))
    ));
    assert!(matches!(
        vault.acquire_lease(&missing, &owner("w"), TTL, T0).await,
        Err(LeaseError::NotFound(_))
    ));
    assert!(matches!(
        vault.attempt(&AttemptId::new("nope").unwrap()).await,
        Err(ReadError::AttemptNotFound(_))
    ));
}

async fn compare_and_swap(vault: &SqlVault) {
    let (i, u) = (item(2), user(2));
    vault
        .insert_item(&i, &u, &token(20), &note("exchange"), T0)
        .await
        .unwrap();
    let updated = vault
        .update_token(&i, 1, &token(21), &note("manual"), at(1))
        .await
        .unwrap();
    assert_eq!(updated.token_version, 2);
    let stale = vault
        .update_token(&i, 1, &token(22), &note("manual"), at(2))
        .await;
    assert!(matches!(
        stale,
        Err(WriteError::VersionConflict {
            expected: 1,
            actual: 2
        })
    ));
    assert_eq!(vault.get(&i).await.unwrap().token, token(21));

    let change = StateChange {
        item_id: &i,
        expected_version: 2,
        from: CredentialState::Active,
        to: CredentialState::Removing,
        lease: None,
        note: &note("unlink"),
    };
    vault
        .set_credential_state(change.clone(), at(3))
        .await
        .unwrap();
    let conflict = vault.set_credential_state(change, at(4)).await;
    assert!(matches!(
        conflict,
        Err(WriteError::StateConflict {
            expected: "active",
            actual: "removing"
        })
    ));

    vault
        .set_health_state(
            &i,
            HealthState::Healthy,
            HealthState::NeedsReauth,
            &note("ITEM_LOGIN_REQUIRED"),
            at(5),
        )
        .await
        .unwrap();
    let stale = vault
        .set_health_state(
            &i,
            HealthState::Healthy,
            HealthState::Removed,
            &note("x"),
            at(6),
        )
        .await;
    assert!(matches!(stale, Err(WriteError::StateConflict { .. })));
    let events: Vec<_> = vault
        .audit(&i)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(
        events,
        [
            AuditEvent::ItemInserted,
            AuditEvent::TokenUpdated,
            AuditEvent::CredentialState,
            AuditEvent::HealthState
        ]
    );
}

async fn context_binding(vault: &SqlVault) {
    let (a, b) = (item(3), item(4));
    vault
        .insert_item(&a, &user(3), &token(30), &note("exchange"), T0)
        .await
        .unwrap();
    vault
        .insert_item(&b, &user(3), &token(40), &note("exchange"), T0)
        .await
        .unwrap();
    // Copy a's envelope into b's row: it must not open there.
    sqlx::query("UPDATE items SET envelope = (SELECT envelope FROM items WHERE item_id = $1) WHERE item_id = $2")
        .bind(a.as_str())
        .bind(b.as_str())
        .execute(vault.pool())
        .await
        .unwrap();
    assert!(matches!(
        vault.get(&b).await,
        Err(ReadError::Open(EnvelopeError::Authentication))
    ));
    // Same row, other version number: does not open either (no rollback to a stale version).
    sqlx::query("UPDATE items SET token_version = 2 WHERE item_id = $1")
        .bind(a.as_str())
        .execute(vault.pool())
        .await
        .unwrap();
    assert!(matches!(
        vault.get(&a).await,
        Err(ReadError::Open(EnvelopeError::Authentication))
    ));
}

async fn malformed_rows(vault: &SqlVault) {
    let i = item(5);
    vault
        .insert_item(&i, &user(5), &token(50), &note("exchange"), T0)
        .await
        .unwrap();
    for (column, value) in [
        ("credential_state", "'bogus'"),
        ("health_state", "'HEALTHY'"),
        ("envelope", "'twe1:not-an-envelope'"),
        ("kek_version", "0"),
        ("token_version", "-1"),
        ("lease_owner", "'someone'"),
    ] {
        let original = vault.item(&i).await;
        let sql = format!("UPDATE items SET {column} = {value} WHERE item_id = $1");
        let saved: (String, String, String, i64, i64) = {
            use sqlx::Row;
            let row = sqlx::query("SELECT credential_state, health_state, envelope, kek_version, token_version FROM items WHERE item_id = $1")
                .bind(i.as_str())
                .fetch_one(vault.pool())
                .await
                .unwrap();
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))
        };
        sqlx::query(&sql)
            .bind(i.as_str())
            .execute(vault.pool())
            .await
            .unwrap();
        let read = if column == "envelope" || column == "token_version" {
            vault.get(&i).await.map(|_| ())
        } else {
            vault.item(&i).await.map(|_| ())
        };
        match read {
            Err(ReadError::Malformed(m)) => assert_eq!(m.table, "items"),
            other => panic!("{column}: expected a malformed row, got {other:?}"),
        }
        sqlx::query("UPDATE items SET credential_state = $1, health_state = $2, envelope = $3, kek_version = $4, token_version = $5, lease_owner = NULL WHERE item_id = $6")
            .bind(saved.0)
            .bind(saved.1)
            .bind(saved.2)
            .bind(saved.3)
            .bind(saved.4)
            .bind(i.as_str())
            .execute(vault.pool())
            .await
            .unwrap();
        assert_eq!(vault.item(&i).await.unwrap(), original.unwrap());
    }
    // A write that reads a malformed row fails precisely and writes nothing.
    sqlx::query("UPDATE items SET health_state = 'bogus' WHERE item_id = $1")
        .bind(i.as_str())
        .execute(vault.pool())
        .await
        .unwrap();
    let write = vault
        .update_token(&i, 1, &token(51), &note("manual"), at(1))
        .await;
    assert!(matches!(write, Err(WriteError::Malformed(_))));
    sqlx::query("UPDATE items SET health_state = 'healthy' WHERE item_id = $1")
        .bind(i.as_str())
        .execute(vault.pool())
        .await
        .unwrap();
    assert_eq!(vault.get(&i).await.unwrap().token, token(50));
}

async fn leases(vault: &SqlVault) {
    let i = item(6);
    vault
        .insert_item(&i, &user(6), &token(60), &note("exchange"), T0)
        .await
        .unwrap();
    let a = vault
        .acquire_lease(&i, &owner("worker-a"), TTL, T0)
        .await
        .unwrap();
    assert_eq!(a.epoch, 1);
    assert_eq!(a.expires_at, at(30));
    // Held: neither another worker nor the holder can acquire again while it is live.
    assert!(matches!(
        vault
            .acquire_lease(&i, &owner("worker-b"), TTL, at(10))
            .await,
        Err(LeaseError::Held { .. })
    ));
    // Without a lease, a state change is refused while someone holds a live one.
    let change = StateChange {
        item_id: &i,
        expected_version: 1,
        from: CredentialState::Active,
        to: CredentialState::Removing,
        lease: None,
        note: &note("unlink"),
    };
    assert!(matches!(
        vault.set_credential_state(change.clone(), at(10)).await,
        Err(WriteError::LeaseHeld { .. })
    ));
    let a = vault.renew_lease(&a, TTL, at(20)).await.unwrap();
    assert_eq!((a.epoch, a.expires_at), (1, at(50)));
    // Expired: worker-b takes over with the next epoch, and worker-a is fenced.
    let b = vault
        .acquire_lease(&i, &owner("worker-b"), TTL, at(50))
        .await
        .unwrap();
    assert_eq!(b.epoch, 2);
    let fenced = vault
        .set_credential_state(
            StateChange {
                lease: Some(&a),
                ..change.clone()
            },
            at(51),
        )
        .await;
    assert!(matches!(
        fenced,
        Err(WriteError::Fenced {
            presented: 1,
            current: 2
        })
    ));
    assert!(matches!(
        vault.renew_lease(&a, TTL, at(51)).await,
        Err(LeaseError::Fenced {
            presented: 1,
            current: 2
        })
    ));
    assert!(matches!(
        vault.release_lease(&a).await,
        Err(LeaseError::Fenced { .. })
    ));
    // An expired lease that is presented for a write is refused.
    let expired = vault
        .set_credential_state(
            StateChange {
                lease: Some(&b),
                ..change.clone()
            },
            at(80),
        )
        .await;
    assert!(matches!(expired, Err(WriteError::LeaseExpired { .. })));
    vault.release_lease(&b).await.unwrap();
    vault.release_lease(&b).await.unwrap(); // idempotent
    let c = vault
        .acquire_lease(&i, &owner("worker-a"), TTL, at(81))
        .await
        .unwrap();
    assert_eq!(c.epoch, 3);
    assert!(matches!(
        vault
            .acquire_lease(&i, &owner("w"), Duration::ZERO, at(81))
            .await,
        Err(LeaseError::InvalidInput(InvalidInput::OutOfRange(_)))
    ));
    vault.release_lease(&c).await.unwrap();
    assert_eq!(vault.item(&i).await.unwrap().lease, None);
}

async fn rotation_happy_path(vault: &SqlVault) {
    let i = item(7);
    vault
        .insert_item(&i, &user(7), &token(70), &note("exchange"), T0)
        .await
        .unwrap();
    let lease = vault
        .acquire_lease(&i, &owner("rotator"), TTL, T0)
        .await
        .unwrap();
    let attempt_id = AttemptId::new("attempt-7").unwrap();
    let n = note("scheduled");
    let begun = vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &attempt_id,
                lease: &lease,
                expected_version: 1,
                note: &n,
            },
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(begun.status, AttemptStatus::Intent);
    assert_eq!(
        vault.item(&i).await.unwrap().credential_state,
        CredentialState::Intent
    );
    assert_eq!(
        vault.open_attempts().await.unwrap(),
        std::slice::from_ref(&begun)
    );

    let sent = vault.mark_sent(&attempt_id, &lease, at(2)).await.unwrap();
    assert_eq!(
        (sent.status, sent.sent_at),
        (AttemptStatus::Sent, Some(at(2)))
    );
    assert_eq!(
        vault.item(&i).await.unwrap().credential_state,
        CredentialState::InFlight
    );
    assert!(matches!(
        vault.mark_sent(&attempt_id, &lease, at(2)).await,
        Err(WriteError::AttemptConflict { .. })
    ));

    let stashed = vault
        .stash_new_token(&attempt_id, &token(71), Some("req-abc"), at(3))
        .await
        .unwrap();
    assert_eq!(stashed.status, AttemptStatus::Stashed);
    assert_eq!(stashed.request_id.as_deref(), Some("req-abc"));
    // The old token is still current until the promotion.
    assert_eq!(vault.get(&i).await.unwrap().token, token(70));

    let promoted = vault
        .promote_stashed(
            Promote {
                attempt_id: &attempt_id,
                expected_version: 1,
                to: CredentialState::Active,
                lease: Some(&lease),
                note: &n,
            },
            at(4),
        )
        .await
        .unwrap();
    assert_eq!(
        (promoted.token_version, promoted.credential_state),
        (2, CredentialState::Active)
    );
    let stored = vault.get(&i).await.unwrap();
    assert_eq!((stored.token, stored.version), (token(71), 2));
    let closed = vault.attempt(&attempt_id).await.unwrap();
    assert_eq!(closed.status, AttemptStatus::Committed);
    assert_eq!(closed.stashed_kek_version, None);
    assert!(vault.open_attempts().await.unwrap().is_empty());
    vault.release_lease(&lease).await.unwrap();

    let journal = vault.audit(&i).await.unwrap();
    let events: Vec<_> = journal.iter().map(|r| r.event).collect();
    assert_eq!(
        events,
        [
            AuditEvent::ItemInserted,
            AuditEvent::AttemptBegun,
            AuditEvent::AttemptSent,
            AuditEvent::TokenStashed,
            AuditEvent::TokenPromoted
        ]
    );
    let promoted_record = &journal[4];
    assert_eq!(promoted_record.from_state.as_deref(), Some("in_flight"));
    assert_eq!(promoted_record.to_state.as_deref(), Some("active"));
    assert_eq!(promoted_record.request_id.as_deref(), Some("req-abc"));
    assert_eq!(promoted_record.attempt_id.as_ref(), Some(&attempt_id));
    assert!(
        vault
            .promote_stashed(
                Promote {
                    attempt_id: &attempt_id,
                    expected_version: 2,
                    to: CredentialState::Active,
                    lease: None,
                    note: &n,
                },
                at(5),
            )
            .await
            .is_err()
    );
}

async fn stash_is_unconditional(vault: &SqlVault) {
    let i = item(8);
    vault
        .insert_item(&i, &user(8), &token(80), &note("exchange"), T0)
        .await
        .unwrap();
    let a = vault
        .acquire_lease(&i, &owner("worker-a"), TTL, T0)
        .await
        .unwrap();
    let attempt_id = AttemptId::new("attempt-8").unwrap();
    let n = note("scheduled");
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &attempt_id,
                lease: &a,
                expected_version: 1,
                note: &n,
            },
            at(1),
        )
        .await
        .unwrap();
    vault.mark_sent(&attempt_id, &a, at(2)).await.unwrap();
    // worker-a stalls past its lease; worker-b takes over.
    let b = vault
        .acquire_lease(&i, &owner("worker-b"), TTL, at(100))
        .await
        .unwrap();
    // worker-a's Plaid call returns: the token is stored anyway, keyed by the attempt.
    vault
        .stash_new_token(&attempt_id, &token(81), None, at(101))
        .await
        .unwrap();
    // A retry with the same token is a no-op; a different token is refused.
    vault
        .stash_new_token(&attempt_id, &token(81), None, at(102))
        .await
        .unwrap();
    assert!(matches!(
        vault
            .stash_new_token(&attempt_id, &token(82), None, at(103))
            .await,
        Err(WriteError::StashConflict(_))
    ));
    // worker-a cannot promote with its stale lease; closing the attempt would drop the token.
    let promote = Promote {
        attempt_id: &attempt_id,
        expected_version: 1,
        to: CredentialState::Active,
        lease: Some(&a),
        note: &n,
    };
    assert!(matches!(
        vault.promote_stashed(promote.clone(), at(104)).await,
        Err(WriteError::Fenced { .. })
    ));
    assert!(matches!(
        vault
            .finish_attempt(
                FinishAttempt {
                    attempt_id: &attempt_id,
                    status: AttemptStatus::Abandoned,
                    expected_version: 1,
                    from: CredentialState::InFlight,
                    to: CredentialState::Active,
                    lease: Some(&b),
                    note: &n,
                },
                at(105),
            )
            .await,
        Err(WriteError::AttemptConflict { .. })
    ));
    // worker-b reconciles: the stashed token becomes current.
    vault
        .promote_stashed(
            Promote {
                lease: Some(&b),
                ..promote
            },
            at(106),
        )
        .await
        .unwrap();
    assert_eq!(vault.get(&i).await.unwrap().token, token(81));
}

async fn recovery_paths(vault: &SqlVault) {
    let i = item(9);
    vault
        .insert_item(&i, &user(9), &token(90), &note("exchange"), T0)
        .await
        .unwrap();
    let lease = vault
        .acquire_lease(&i, &owner("rotator"), TTL, T0)
        .await
        .unwrap();
    let n = note("scheduled");
    let first = AttemptId::new("attempt-9a").unwrap();
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &first,
                lease: &lease,
                expected_version: 1,
                note: &n,
            },
            at(1),
        )
        .await
        .unwrap();
    // Crash before the sent marker: recovery closes it NotSent and returns to Active.
    let open = vault.open_attempts().await.unwrap();
    assert!(
        open.iter()
            .any(|a| a.attempt_id == first && a.sent_at.is_none())
    );
    let closed = vault
        .finish_attempt(
            FinishAttempt {
                attempt_id: &first,
                status: AttemptStatus::NotSent,
                expected_version: 1,
                from: CredentialState::Intent,
                to: CredentialState::Active,
                lease: Some(&lease),
                note: &note("recover: no sent marker"),
            },
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(closed.status, AttemptStatus::NotSent);
    assert_eq!(
        vault.item(&i).await.unwrap().credential_state,
        CredentialState::Active
    );
    // An ambiguous outcome: InFlight → Unknown → Probing → Active (not applied).
    let second = AttemptId::new("attempt-9b").unwrap();
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &second,
                lease: &lease,
                expected_version: 1,
                note: &n,
            },
            at(3),
        )
        .await
        .unwrap();
    vault.mark_sent(&second, &lease, at(4)).await.unwrap();
    for (from, to) in [
        (CredentialState::InFlight, CredentialState::Unknown),
        (CredentialState::Unknown, CredentialState::Probing),
    ] {
        vault
            .set_credential_state(
                StateChange {
                    item_id: &i,
                    expected_version: 1,
                    from,
                    to,
                    lease: Some(&lease),
                    note: &note("timeout").with_attempt(second.clone()),
                },
                at(5),
            )
            .await
            .unwrap();
    }
    vault
        .finish_attempt(
            FinishAttempt {
                attempt_id: &second,
                status: AttemptStatus::NotApplied,
                expected_version: 1,
                from: CredentialState::Probing,
                to: CredentialState::Active,
                lease: Some(&lease),
                note: &note("old token works"),
            },
            at(6),
        )
        .await
        .unwrap();
    assert!(matches!(
        vault
            .finish_attempt(
                FinishAttempt {
                    attempt_id: &second,
                    status: AttemptStatus::Committed,
                    expected_version: 1,
                    from: CredentialState::Active,
                    to: CredentialState::Active,
                    lease: None,
                    note: &n,
                },
                at(7),
            )
            .await,
        Err(WriteError::InvalidInput(_))
    ));
    assert!(
        vault
            .open_attempts()
            .await
            .unwrap()
            .iter()
            .all(|a| a.item_id != i)
    );
    assert_eq!(vault.get(&i).await.unwrap().token, token(90));
}

async fn listing(vault: &SqlVault) {
    let removing = vault
        .list_by_state(StateFilter::Credential(CredentialState::Removing), None, 10)
        .await
        .unwrap();
    assert_eq!(
        removing
            .iter()
            .map(|r| r.item_id.clone())
            .collect::<Vec<_>>(),
        [item(2)]
    );
    let reauth = vault
        .list_by_state(StateFilter::Health(HealthState::NeedsReauth), None, 10)
        .await
        .unwrap();
    assert_eq!(reauth.len(), 1);
    let active = vault
        .list_by_state(StateFilter::Credential(CredentialState::Active), None, 2)
        .await
        .unwrap();
    assert_eq!(active.len(), 2);
    let rest = vault
        .list_by_state(
            StateFilter::Credential(CredentialState::Active),
            Some(&active[1].item_id),
            100,
        )
        .await
        .unwrap();
    assert!(rest.iter().all(|r| r.item_id > active[1].item_id));
    assert!(matches!(
        vault
            .list_by_state(StateFilter::Health(HealthState::Healthy), None, 0)
            .await,
        Err(ReadError::InvalidInput(_))
    ));
}

async fn no_partial_writes(vault: &SqlVault) {
    let (x, y) = (item(10), item(11));
    for i in [&x, &y] {
        vault
            .insert_item(i, &user(10), &token(100), &note("exchange"), T0)
            .await
            .unwrap();
    }
    let lx = vault.acquire_lease(&x, &owner("w"), TTL, T0).await.unwrap();
    let ly = vault.acquire_lease(&y, &owner("w"), TTL, T0).await.unwrap();
    let id = AttemptId::new("attempt-10").unwrap();
    let n = note("scheduled");
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &id,
                lease: &lx,
                expected_version: 1,
                note: &n,
            },
            at(1),
        )
        .await
        .unwrap();
    let before = vault.audit(&y).await.unwrap();
    // The same attempt id on another Item: refused, and nothing of it is written.
    assert!(matches!(
        vault
            .begin_attempt(
                BeginAttempt {
                    attempt_id: &id,
                    lease: &ly,
                    expected_version: 1,
                    note: &n,
                },
                at(2),
            )
            .await,
        Err(WriteError::AttemptExists(_))
    ));
    assert_eq!(
        vault.item(&y).await.unwrap().credential_state,
        CredentialState::Active
    );
    assert_eq!(vault.audit(&y).await.unwrap(), before);
}

async fn erasure(vault: &SqlVault) {
    let u = user(42);
    for n in [42, 43] {
        vault
            .insert_item(&item(n), &u, &token(n), &note("exchange"), T0)
            .await
            .unwrap();
    }
    let lease = vault
        .acquire_lease(&item(42), &owner("w"), TTL, T0)
        .await
        .unwrap();
    let id = AttemptId::new("attempt-42").unwrap();
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &id,
                lease: &lease,
                expected_version: 1,
                note: &AuditNote::new("w", "user 42 asked")
                    .unwrap()
                    .with_request_id("req-42")
                    .unwrap(),
            },
            at(1),
        )
        .await
        .unwrap();
    let erased = vault.erase_user(&u, "dpo", at(2)).await.unwrap();
    assert_eq!(erased.items, [item(42), item(43)]);
    assert_eq!(erased.attempts, 1);
    assert!(matches!(
        vault.get(&item(42)).await,
        Err(ReadError::NotFound(_))
    ));
    assert!(matches!(
        vault.attempt(&id).await,
        Err(ReadError::AttemptNotFound(_))
    ));
    assert!(vault.audit(&item(42)).await.unwrap().is_empty());
    let journal = vault.audit_since(T0, 10_000).await.unwrap();
    assert!(journal.iter().all(|r| {
        let text = format!("{r:?}");
        !text.contains("item-000042") && !text.contains("user 42") && !text.contains("req-42")
    }));
    let erasures = journal
        .iter()
        .filter(|r| r.event == AuditEvent::UserErased)
        .count();
    assert_eq!(erasures, 1);
    // Idempotent: nothing left, nothing written.
    let again = vault.erase_user(&u, "dpo", at(3)).await.unwrap();
    assert!(again.items.is_empty());
    let journal = vault.audit_since(T0, 10_000).await.unwrap();
    assert_eq!(
        journal
            .iter()
            .filter(|r| r.event == AuditEvent::UserErased)
            .count(),
        1
    );
}

async fn no_token_in_audit_or_errors(vault: &SqlVault) {
    let i = item(50);
    let secret = AccessToken::new(canary::ACCESS_PRODUCTION).unwrap();
    vault
        .insert_item(&i, &user(50), &secret, &note("exchange"), T0)
        .await
        .unwrap();
    assert!(matches!(
        AuditNote::new("w", format!("rotating {}", canary::ACCESS_SANDBOX)),
        Err(InvalidInput::LooksLikeSecret { .. })
    ));
    assert!(
        AuditNote::new("w", "x")
            .unwrap()
            .with_request_id(canary::ACCESS_PRODUCTION)
            .is_err()
    );
    let stored = vault.get(&i).await.unwrap();
    let sealed = vault.get_sealed(&i).await.unwrap();
    let stale = vault
        .update_token(&i, 7, &secret, &note("x"), T0)
        .await
        .unwrap_err();
    let dup = vault
        .insert_item(&i, &user(50), &secret, &note("x"), T0)
        .await
        .unwrap_err();
    let envelope_text = sealed.envelope.to_text();
    let journal = vault.audit_since(Timestamp::EPOCH, 100_000).await.unwrap();
    let texts = [
        format!("{stored:?}"),
        format!("{sealed:?}"),
        format!("{stale:?} {stale}"),
        format!("{dup:?} {dup}"),
        format!("{journal:?}"),
        format!("{:?}", vault.item(&i).await.unwrap()),
    ];
    for text in &texts {
        assert!(
            !text.contains(canary::ACCESS_PRODUCTION),
            "token leaked: {text}"
        );
        assert!(!text.contains(&envelope_text), "envelope leaked");
    }
}

async fn rewrap_and_disabled_key(vault: &SqlVault, keyring: &Keyring) {
    let old = keyring.primary_version().unwrap();
    for n in 100..130 {
        vault
            .insert_item(&item(n), &user(100), &token(n), &note("exchange"), T0)
            .await
            .unwrap();
    }
    // A stashed token under the old key.
    let i = item(100);
    let lease = vault.acquire_lease(&i, &owner("w"), TTL, T0).await.unwrap();
    let id = AttemptId::new("attempt-100").unwrap();
    let n = note("scheduled");
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &id,
                lease: &lease,
                expected_version: 1,
                note: &n,
            },
            at(1),
        )
        .await
        .unwrap();
    vault.mark_sent(&id, &lease, at(2)).await.unwrap();
    vault
        .stash_new_token(&id, &token(1000), None, at(3))
        .await
        .unwrap();

    let before = vault.envelopes_under(old).await.unwrap();
    assert!(before >= 31);
    let new = keyring.add_staged().unwrap();
    keyring.promote(new).unwrap();
    let mut cursor = None;
    let (mut rewrapped, mut batches) = (0, 0);
    loop {
        let batch = vault
            .rewrap_batch(cursor.as_ref(), 7, at(10))
            .await
            .unwrap();
        assert!(batch.failed.is_empty(), "{:?}", batch.failed);
        rewrapped += batch.rewrapped;
        batches += 1;
        // The cursor round-trips through text, as a job would persist it.
        cursor = batch.next_cursor.map(|c| c.to_string().parse().unwrap());
        if cursor.is_none() {
            break;
        }
    }
    assert!(batches > 1);
    assert_eq!(rewrapped, before);
    assert_eq!(vault.envelopes_under(old).await.unwrap(), 0);
    assert_eq!(vault.count_by_kek_version().await.unwrap().len(), 1);
    assert!(
        vault
            .list_by_kek_version(old, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A rerun is a no-op.
    let rerun = vault.rewrap_batch(None, 1000, at(11)).await.unwrap();
    assert_eq!((rerun.rewrapped, rerun.skipped), (0, 0));
    assert!(rerun.next_cursor.is_none());
    // Everything still opens, the stash too.
    assert_eq!(vault.get(&item(129)).await.unwrap().token, token(129));
    keyring.disable(old).unwrap();
    vault
        .promote_stashed(
            Promote {
                attempt_id: &id,
                expected_version: 1,
                to: CredentialState::Active,
                lease: Some(&lease),
                note: &n,
            },
            at(12),
        )
        .await
        .unwrap();
    assert_eq!(vault.get(&i).await.unwrap().token, token(1000));
    keyring.enable(old).unwrap();

    // An envelope under a disabled key: a precise error on read, and the rewrap reports it.
    let j = item(200);
    let third = keyring.add_staged().unwrap();
    vault
        .insert_item(&j, &user(200), &token(200), &note("exchange"), at(20))
        .await
        .unwrap();
    assert_eq!(vault.item(&j).await.unwrap().kek_version, new);
    keyring.promote(third).unwrap();
    keyring.disable(new).unwrap();
    assert!(matches!(
        vault.get(&j).await,
        Err(ReadError::Open(EnvelopeError::KeyDisabled(v))) if v == new
    ));
    let mut cursor = None;
    let mut failed = Vec::new();
    loop {
        let batch = vault
            .rewrap_batch(cursor.as_ref(), 50, at(21))
            .await
            .unwrap();
        failed.extend(batch.failed);
        cursor = batch.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert!(!failed.is_empty());
    assert!(
        failed
            .iter()
            .all(|f| matches!(f.error, EnvelopeError::KeyDisabled(v) if v == new))
    );
    keyring.enable(new).unwrap();
    while let Some(c) = {
        let batch = vault
            .rewrap_batch(cursor.as_ref(), 50, at(22))
            .await
            .unwrap();
        batch.next_cursor
    } {
        cursor = Some(c);
    }
    assert_eq!(vault.envelopes_under(new).await.unwrap(), 0);
    assert_eq!(vault.get(&j).await.unwrap().token, token(200));
}

/// Rewrap job records: a round trip, compare-and-swap on the revision (two runners that read
/// the same revision: one wins), the unfinished listing, and bad fields refused.
async fn rewrap_jobs(vault: &SqlVault, keyring: &Keyring) {
    let target = keyring.primary_version().unwrap();
    let id = JobId::new("rewrap-1").unwrap();
    assert_eq!(vault.rewrap_job(&id).await.unwrap(), None);

    let mut job = RewrapJobRecord::new(id.clone(), "running", target);
    job.planned = 10;
    let saved = vault.save_rewrap_job(&job, at(30)).await.unwrap();
    assert_eq!((saved.revision, saved.updated_at), (1, at(30)));
    assert_eq!(vault.rewrap_job(&id).await.unwrap(), Some(saved.clone()));
    // A second creation of the same job conflicts.
    assert!(matches!(
        vault.save_rewrap_job(&job, at(30)).await,
        Err(WriteError::VersionConflict {
            expected: 0,
            actual: 1
        })
    ));

    // Two runners loaded revision 1: the first to save advances it, the second is refused.
    let mut first = saved.clone();
    first.cursor = Some("items:item-000005".into());
    first.rewrapped = 5;
    first.batches = 1;
    let first = vault.save_rewrap_job(&first, at(31)).await.unwrap();
    assert_eq!(first.revision, 2);
    let mut second = saved.clone();
    second.cursor = Some("items:item-000003".into());
    assert!(matches!(
        vault.save_rewrap_job(&second, at(31)).await,
        Err(WriteError::VersionConflict {
            expected: 1,
            actual: 2
        })
    ));
    let stored = vault.rewrap_job(&id).await.unwrap().unwrap();
    assert_eq!(stored, first);
    assert_eq!(stored.cursor.as_deref(), Some("items:item-000005"));

    let other = JobId::new("rewrap-2").unwrap();
    let paused = RewrapJobRecord {
        reason: Some("operator".into()),
        ..RewrapJobRecord::new(other.clone(), "paused", target)
    };
    vault.save_rewrap_job(&paused, at(32)).await.unwrap();
    let unfinished: Vec<JobId> = vault
        .unfinished_rewrap_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    assert_eq!(unfinished, [id.clone(), other.clone()]);

    let mut done = stored;
    done.state = "completed".into();
    done.cursor = None;
    done.finished_at = Some(at(33));
    let done = vault.save_rewrap_job(&done, at(33)).await.unwrap();
    assert_eq!(done.finished_at, Some(at(33)));
    let unfinished = vault.unfinished_rewrap_jobs().await.unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].job_id, other);

    // Bad fields are refused before anything is written.
    let mut bad = done.clone();
    bad.state = "has space".into();
    assert!(matches!(
        vault.save_rewrap_job(&bad, at(34)).await,
        Err(WriteError::InvalidInput(_))
    ));
    let mut bad = done.clone();
    bad.cursor = Some("nowhere".into());
    assert!(matches!(
        vault.save_rewrap_job(&bad, at(34)).await,
        Err(WriteError::InvalidInput(_))
    ));
    let mut bad = done.clone();
    bad.rewrapped = u64::MAX;
    assert!(matches!(
        vault.save_rewrap_job(&bad, at(34)).await,
        Err(WriteError::InvalidInput(InvalidInput::OutOfRange(_)))
    ));
    assert_eq!(vault.rewrap_job(&id).await.unwrap(), Some(done));
}

/// The URL of a test service from `var`: `None` (with a message) when unset, so the caller
/// skips; a failure under `CI=true`, where a missing service must not pass silently.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set and CI=true: this test needs the service"
            );
            eprintln!("skipping: {var} is not set (eval \"$(bash scripts/services)\")");
            None
        }
    }
}

/// A name no other test (or test run) uses, for a Postgres schema or a Redis key prefix.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn health_records(vault: &SqlVault) {
    let i = item(300);
    vault
        .insert_item(&i, &user(300), &token(300), &note("exchange"), T0)
        .await
        .unwrap();
    let fresh = vault.item(&i).await.unwrap();
    assert_eq!((fresh.health_as_of, fresh.health_deadline), (None, None));

    // PENDING_EXPIRATION issued at t=100 with its consent expiry.
    let n = note("health: pending_expiration");
    let applied = vault
        .record_health(
            HealthUpdate {
                item_id: &i,
                from: HealthState::Healthy,
                to: HealthState::ExpiringSoon,
                as_of: at(100),
                deadline: Some(at(10_000)),
                note: &n,
            },
            at(101),
        )
        .await
        .unwrap();
    let HealthWrite::Applied(record) = applied else {
        panic!("not applied: {applied:?}")
    };
    assert_eq!(record, vault.item(&i).await.unwrap());
    assert_eq!(record.health_state, HealthState::ExpiringSoon);
    assert_eq!(record.health_as_of, Some(at(100)));
    assert_eq!(record.health_deadline, Some(at(10_000)));

    // An older delivery (LOGIN_REPAIRED issued at t=50) arrives late: ignored and audited.
    let late = note("health: login_repaired");
    let stale = vault
        .record_health(
            HealthUpdate {
                item_id: &i,
                from: HealthState::ExpiringSoon,
                to: HealthState::Healthy,
                as_of: at(50),
                deadline: None,
                note: &late,
            },
            at(102),
        )
        .await
        .unwrap();
    assert!(matches!(&stale, HealthWrite::Stale(r) if r.health_state == HealthState::ExpiringSoon));
    let stored = vault.item(&i).await.unwrap();
    assert_eq!(stored.health_state, HealthState::ExpiringSoon);
    assert_eq!(stored.health_as_of, Some(at(100)));
    let journal = vault.audit(&i).await.unwrap();
    let ignored = journal.last().unwrap();
    assert_eq!(ignored.event, AuditEvent::HealthIgnored);
    assert_eq!(ignored.from_state.as_deref(), Some("expiring_soon"));
    assert_eq!(ignored.to_state.as_deref(), Some("healthy"));

    // A stale `from` is a conflict, not a silent overwrite.
    let conflict = vault
        .record_health(
            HealthUpdate {
                item_id: &i,
                from: HealthState::Healthy,
                to: HealthState::NeedsReauth,
                as_of: at(200),
                deadline: None,
                note: &n,
            },
            at(201),
        )
        .await;
    assert!(matches!(conflict, Err(WriteError::StateConflict { .. })));

    // A newer change applies and drops the deadline (it belongs to `expiring_soon`).
    let newer = vault
        .record_health(
            HealthUpdate {
                item_id: &i,
                from: HealthState::ExpiringSoon,
                to: HealthState::NeedsReauth,
                as_of: at(300),
                deadline: Some(at(1)),
                note: &n,
            },
            at(301),
        )
        .await
        .unwrap();
    assert!(matches!(newer, HealthWrite::Applied(_)));
    let stored = vault.item(&i).await.unwrap();
    assert_eq!(stored.health_state, HealthState::NeedsReauth);
    assert_eq!(
        (stored.health_as_of, stored.health_deadline),
        (Some(at(300)), None)
    );
    assert!(matches!(
        vault
            .record_health(
                HealthUpdate {
                    item_id: &item(399),
                    from: HealthState::Healthy,
                    to: HealthState::Healthy,
                    as_of: at(1),
                    deadline: None,
                    note: &n,
                },
                at(1),
            )
            .await,
        Err(WriteError::NotFound(_))
    ));
}

async fn kek_records(vault: &SqlVault, keyring: &Keyring) {
    let before = vault.audit_since(T0, 100_000).await.unwrap().len();
    let v = keyring.primary_version().unwrap();
    let existing = vault.kek_records().await.unwrap();
    assert!(existing.iter().all(|r| r.version != v), "{existing:?}");

    let mut record = KekRecord::new(v, KekStatus::Primary);
    record.promoted_at = Some(at(1));
    let saved = vault
        .save_kek_record(&record, &note("promote"), at(2))
        .await
        .unwrap();
    assert_eq!((saved.revision, saved.updated_at), (1, at(2)));
    // A second creator loses.
    assert!(matches!(
        vault
            .save_kek_record(&record, &note("promote"), at(2))
            .await,
        Err(WriteError::VersionConflict {
            expected: 0,
            actual: 1
        })
    ));
    let mut compromised = saved.clone();
    compromised.state = KekStatus::Compromised;
    compromised.compromised = true;
    compromised.compromised_at = Some(at(3));
    let saved = vault
        .save_kek_record(&compromised, &note("mark_compromised"), at(3))
        .await
        .unwrap();
    assert_eq!(saved.revision, 2);
    // A stale writer (revision 1) loses.
    assert!(matches!(
        vault
            .save_kek_record(&compromised, &note("again"), at(4))
            .await,
        Err(WriteError::VersionConflict {
            expected: 1,
            actual: 2
        })
    ));
    let stored = vault.kek_records().await.unwrap();
    let found = stored.iter().find(|r| r.version == v).unwrap();
    assert_eq!(*found, saved);
    assert!(found.compromised);

    // One audit record per change, store-wide, naming the version and both states.
    let journal = vault.audit_since(T0, 100_000).await.unwrap();
    let kek: Vec<_> = journal
        .iter()
        .skip(before)
        .filter(|r| r.event == AuditEvent::KekState)
        .collect();
    assert_eq!(kek.len(), 2, "{kek:?}");
    assert_eq!(kek[0].from_state.as_deref(), Some("absent"));
    assert_eq!(kek[0].to_state.as_deref(), Some("primary"));
    assert_eq!(kek[1].from_state.as_deref(), Some("primary"));
    assert_eq!(kek[1].to_state.as_deref(), Some("compromised"));
    assert!(kek[1].reason.contains(&format!("kek {}", v.get())));
    assert!(kek.iter().all(|r| r.item_id.is_none()));
}

async fn attempt_flags_and_last_promoted(vault: &SqlVault) {
    let i = item(310);
    vault
        .insert_item(&i, &user(310), &token(310), &note("exchange"), T0)
        .await
        .unwrap();
    let lease = vault.acquire_lease(&i, &owner("w"), TTL, T0).await.unwrap();

    // Sent, then a definite reject: the flag goes up with the marker and down at the close.
    let failed = AttemptId::new("attempt-310-a").unwrap();
    let begun = vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &failed,
                lease: &lease,
                expected_version: 1,
                note: &note("start: scheduled"),
            },
            at(1),
        )
        .await
        .unwrap();
    assert!(!begun.maybe_applied);
    let sent = vault.mark_sent(&failed, &lease, at(2)).await.unwrap();
    assert!(sent.maybe_applied);
    assert!(vault.attempt(&failed).await.unwrap().maybe_applied);
    let closed = vault
        .finish_attempt(
            FinishAttempt {
                attempt_id: &failed,
                status: AttemptStatus::Failed,
                expected_version: 1,
                from: CredentialState::InFlight,
                to: CredentialState::Active,
                lease: Some(&lease),
                note: &note("rate limited"),
            },
            at(3),
        )
        .await
        .unwrap();
    assert!(!closed.maybe_applied);
    assert!(!vault.attempt(&failed).await.unwrap().maybe_applied);

    // Sent, outcome unknown, abandoned: the flag stays (the answer was never learnt).
    let unknown = AttemptId::new("attempt-310-b").unwrap();
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &unknown,
                lease: &lease,
                expected_version: 1,
                note: &note("start: scheduled"),
            },
            at(4),
        )
        .await
        .unwrap();
    vault.mark_sent(&unknown, &lease, at(5)).await.unwrap();
    vault
        .set_credential_state(
            StateChange {
                item_id: &i,
                expected_version: 1,
                from: CredentialState::InFlight,
                to: CredentialState::Unknown,
                lease: Some(&lease),
                note: &note("timeout"),
            },
            at(6),
        )
        .await
        .unwrap();
    let abandoned = vault
        .finish_attempt(
            FinishAttempt {
                attempt_id: &unknown,
                status: AttemptStatus::Abandoned,
                expected_version: 1,
                from: CredentialState::Unknown,
                to: CredentialState::Active,
                lease: Some(&lease),
                note: &note("operator"),
            },
            at(7),
        )
        .await
        .unwrap();
    assert!(abandoned.maybe_applied);

    // A promoted attempt stays named on the Item after the promote closed it.
    let promoted = AttemptId::new("attempt-310-c").unwrap();
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &promoted,
                lease: &lease,
                expected_version: 1,
                note: &note("start: scheduled"),
            },
            at(8),
        )
        .await
        .unwrap();
    vault.mark_sent(&promoted, &lease, at(9)).await.unwrap();
    vault
        .stash_new_token(&promoted, &token(311), Some("req-310"), at(10))
        .await
        .unwrap();
    assert!(vault.item(&i).await.unwrap().last_attempt_id.is_none());
    let record = vault
        .promote_stashed(
            Promote {
                attempt_id: &promoted,
                expected_version: 1,
                to: CredentialState::Verifying,
                lease: Some(&lease),
                note: &note("promote"),
            },
            at(11),
        )
        .await
        .unwrap();
    assert_eq!(record.last_attempt_id.as_ref(), Some(&promoted));
    let stored = vault.item(&i).await.unwrap();
    assert_eq!(stored.last_attempt_id, Some(promoted.clone()));
    assert_eq!(stored, record);
    let attempt = vault.attempt(&promoted).await.unwrap();
    assert_eq!(attempt.status, AttemptStatus::Committed);
    assert!(attempt.maybe_applied);
}

async fn audit_is_append_only(vault: &SqlVault) {
    let i = item(320);
    vault
        .insert_item(&i, &user(320), &token(320), &note("exchange"), T0)
        .await
        .unwrap();
    let count = |rows: &[tokenward_vault::AuditRecord]| rows.len();
    let before = vault.audit(&i).await.unwrap();
    assert_eq!(count(&before), 1);
    for sql in [
        "DELETE FROM audit WHERE item_id = $1",
        "UPDATE audit SET reason = 'rewritten' WHERE item_id = $1",
        "UPDATE audit SET actor = 'someone else' WHERE item_id = $1",
        // Anonymising while changing anything else is refused too.
        "UPDATE audit SET item_id = NULL, reason = '[erased]', request_id = NULL, \
         attempt_id = NULL, at = 0 WHERE item_id = $1",
    ] {
        let refused = sqlx::query(sql)
            .bind(i.as_str())
            .execute(vault.pool())
            .await;
        let error = refused.expect_err(sql).to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    assert_eq!(vault.audit(&i).await.unwrap(), before);
    // Erasure's anonymisation is the one update allowed (the erasure check covers the rest).
    vault.erase_user(&user(320), "dpo", at(1)).await.unwrap();
    assert!(vault.audit(&i).await.unwrap().is_empty());
    let anonymised = vault
        .audit_since(T0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.id == before[0].id)
        .collect::<Vec<_>>();
    assert_eq!(anonymised.len(), 1);
    assert_eq!(anonymised[0].reason, "[erased]");
    assert_eq!(anonymised[0].at, before[0].at);
    assert_eq!(anonymised[0].event, before[0].event);
}
