//! An operator's way out of `Orphaned`, `Dead` and `Quarantined`: `Rotator::resolve` over the
//! vault's `SQLite` store. The `Orphaned` Item is made for real: the emulator commits a
//! rotation and drops the connection before answering, so the new token is lost.
//!
//! | stored state | `resolve` |
//! |---|---|
//! | `orphaned` (lost answer) | `retired`, one `credential_state` record with the actor and the reason |
//! | `dead`, `quarantined` | `retired` |
//! | `retired` | no-op: nothing written |
//! | `active` and the other states | refused (`NotResolvable`), nothing written |
//! | an empty or token-shaped reason | refused (`Note`) before the lease is taken |
//! | a lease held by another worker | refused (`Lease`) |
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "test code: failures should be loud"
)]

mod support;

use std::time::Duration;

use support::now;
use tokenward_plaid::HttpPlaidClient;
use tokenward_redact::AccessToken;
use tokenward_rotation::token::CredentialState;
use tokenward_rotation::{Actor, DriverError, RotationReason, Rotator, RotatorConfig};
use tokenward_sandbox::{FaultPlan, Sandbox};
use tokenward_vault::{
    AuditEvent, AuditNote, AuditRecord, CredentialState as Stored, ItemId, LeaseError, LeaseOwner,
    SqlVault, StateChange, Vault,
};

const INVALIDATE: &str = "/item/access_token/invalidate";

struct Fixture {
    sandbox: Sandbox,
    api: HttpPlaidClient,
    vault: SqlVault,
    item: ItemId,
    token: AccessToken,
}

async fn fixture() -> Fixture {
    let sandbox = Sandbox::builder().seed(11).start().await.unwrap();
    let api = tokenward_testkit::plaid::client(
        &sandbox.base_url(),
        "resolve-tests",
        "resolve-tests-secret",
    );
    let (vault, item, token) = support::linked_item(&api).await;
    Fixture {
        sandbox,
        api,
        vault,
        item,
        token,
    }
}

impl Fixture {
    /// Asserts that no lease is held: another worker takes the Item at once (and lets it go).
    async fn assert_lease_free(&self) {
        let lease = self
            .vault
            .acquire_lease(
                &self.item,
                &LeaseOwner::new("worker-b").unwrap(),
                Duration::from_secs(30),
                now(),
            )
            .await
            .unwrap();
        self.vault.release_lease(&lease).await.unwrap();
    }

    fn rotator(&self) -> Rotator<'_> {
        Rotator::new(&self.api, &self.vault, LeaseOwner::new("worker-a").unwrap()).with_config(
            RotatorConfig {
                probe_backoff: Duration::from_millis(10),
                ..RotatorConfig::default()
            },
        )
    }

    /// Moves the stored credential state directly (what a driver run would have left).
    async fn set_state(&self, to: Stored) {
        let record = self.vault.item(&self.item).await.unwrap();
        self.vault
            .set_credential_state(
                StateChange {
                    item_id: &self.item,
                    expected_version: record.token_version,
                    from: record.credential_state,
                    to,
                    lease: None,
                    note: &AuditNote::new("test", "setup").unwrap(),
                },
                now(),
            )
            .await
            .unwrap();
    }

    async fn stored(&self) -> Stored {
        self.vault.item(&self.item).await.unwrap().credential_state
    }

    async fn journal(&self) -> Vec<AuditRecord> {
        self.vault.audit(&self.item).await.unwrap()
    }

    /// The `credential_state` records that end `retired`.
    async fn retirements(&self) -> Vec<AuditRecord> {
        self.journal()
            .await
            .into_iter()
            .filter(|r| {
                r.event == AuditEvent::CredentialState && r.to_state.as_deref() == Some("retired")
            })
            .collect()
    }

    /// No token in the journal.
    async fn assert_journal_clean(&self) {
        for record in self.journal().await {
            let text = format!("{record:?}");
            assert!(!text.contains(self.token.expose_secret()), "{text}");
            assert!(!text.contains("access-sandbox-"), "{text}");
        }
    }
}

fn operator() -> Actor {
    Actor::new("alice@ops")
}

#[tokio::test]
async fn an_orphaned_item_is_retired_with_who_and_why_in_the_journal() {
    let f = fixture().await;
    f.sandbox
        .faults()
        .set(INVALIDATE, FaultPlan::new().drop_after_commit(1))
        .unwrap();
    let report = f
        .rotator()
        .rotate(&f.item, RotationReason::Scheduled, &Actor::new("scheduler"))
        .await
        .unwrap();
    let CredentialState::Orphaned { attempt, .. } = &report.state else {
        panic!("expected orphaned, got {:?}", report.state);
    };
    let lost_attempt = attempt.id;
    assert_eq!(f.stored().await, Stored::Orphaned);

    let resolved = f
        .rotator()
        .resolve(
            &f.item,
            &operator(),
            "INC-1042: user relinked as a new Item",
        )
        .await
        .unwrap();
    assert!(
        matches!(resolved.state, CredentialState::Retired { .. }),
        "{:?}",
        resolved.state
    );
    assert_eq!(
        resolved.attempt,
        Some(lost_attempt),
        "the lost attempt is named"
    );
    assert!(!resolved.state.serves_traffic());
    assert_eq!(f.stored().await, Stored::Retired);

    let retirements = f.retirements().await;
    assert_eq!(retirements.len(), 1, "{retirements:?}");
    let record = &retirements[0];
    assert_eq!(record.from_state.as_deref(), Some("orphaned"));
    assert_eq!(record.actor, "alice@ops");
    assert_eq!(
        record.reason,
        "operator_resolved: INC-1042: user relinked as a new Item"
    );
    let orphaned_by = f
        .journal()
        .await
        .into_iter()
        .rfind(|r| r.to_state.as_deref() == Some("orphaned"))
        .and_then(|r| r.attempt_id);
    assert!(orphaned_by.is_some());
    assert_eq!(record.attempt_id, orphaned_by, "linked to the lost attempt");

    // The lease was released: another worker can take the Item at once.
    f.assert_lease_free().await;

    // Once retired, a rotation is refused and a second resolve writes nothing.
    let again = f
        .rotator()
        .rotate(&f.item, RotationReason::Manual, &operator())
        .await
        .unwrap_err();
    assert!(
        matches!(again, DriverError::NotActive { state: "retired" }),
        "{again}"
    );
    let before = f.journal().await.len();
    let twice = f
        .rotator()
        .resolve(&f.item, &operator(), "again")
        .await
        .unwrap();
    assert!(matches!(twice.state, CredentialState::Retired { .. }));
    assert_eq!(
        f.journal().await.len(),
        before,
        "an idempotent resolve wrote"
    );
    f.assert_journal_clean().await;
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn dead_and_quarantined_items_are_retired() {
    for from in [Stored::Dead, Stored::Quarantined] {
        let f = fixture().await;
        f.set_state(from).await;
        let report = f
            .rotator()
            .resolve(&f.item, &operator(), "removed at Plaid by the user")
            .await
            .unwrap();
        assert!(
            matches!(report.state, CredentialState::Retired { .. }),
            "{from:?}: {:?}",
            report.state
        );
        assert_eq!(f.stored().await, Stored::Retired);
        let retirements = f.retirements().await;
        assert_eq!(retirements.len(), 1);
        assert_eq!(retirements[0].from_state.as_deref(), Some(from.as_str()));
        assert_eq!(retirements[0].actor, "alice@ops");
        f.sandbox.shutdown().await;
    }
}

#[tokio::test]
async fn an_active_item_is_refused_and_left_as_it_was() {
    let f = fixture().await;
    let before = f.journal().await.len();
    let err = f
        .rotator()
        .resolve(&f.item, &operator(), "by mistake")
        .await
        .unwrap_err();
    assert!(
        matches!(err, DriverError::NotResolvable { state: "active" }),
        "{err:?}"
    );
    assert!(err.to_string().contains("item is active"), "{err}");
    assert_eq!(f.stored().await, Stored::Active);
    assert_eq!(f.journal().await.len(), before);
    // The lease of the refused run was released.
    f.assert_lease_free().await;

    // Every other state that is not the operator's is refused too.
    for state in [Stored::Unknown, Stored::Reconcile, Stored::Removed] {
        f.set_state(state).await;
        let err = f
            .rotator()
            .resolve(&f.item, &operator(), "by mistake")
            .await
            .unwrap_err();
        assert!(
            matches!(err, DriverError::NotResolvable { state: s } if s == state.as_str()),
            "{state:?}: {err:?}"
        );
        assert_eq!(f.stored().await, state);
    }
    f.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_bad_note_or_a_held_lease_is_refused() {
    let f = fixture().await;
    f.set_state(Stored::Orphaned).await;

    // Empty, and shaped like a token: named, never echoed, nothing written.
    let err = f.rotator().resolve(&f.item, &Actor::new(""), "x").await;
    assert!(matches!(err, Err(DriverError::Note(_))), "{err:?}");
    let token = f.token.expose_secret().to_owned();
    let err = f
        .rotator()
        .resolve(&f.item, &operator(), &format!("pasted {token}"))
        .await
        .unwrap_err();
    assert!(matches!(err, DriverError::Note(_)), "{err:?}");
    let printed = format!("{err} {err:?}");
    assert!(!printed.contains(&token), "{printed}");
    assert!(printed.contains("Plaid token"), "{printed}");
    assert_eq!(f.stored().await, Stored::Orphaned);

    // Another worker holds the Item.
    let lease = f
        .vault
        .acquire_lease(
            &f.item,
            &LeaseOwner::new("worker-b").unwrap(),
            Duration::from_secs(60),
            now(),
        )
        .await
        .unwrap();
    let err = f
        .rotator()
        .resolve(&f.item, &operator(), "relinked")
        .await
        .unwrap_err();
    assert!(
        matches!(err, DriverError::Lease(LeaseError::Held { .. })),
        "{err:?}"
    );
    assert_eq!(f.stored().await, Stored::Orphaned);
    f.vault.release_lease(&lease).await.unwrap();

    // And an unknown Item.
    let missing = ItemId::new("no-such-item").unwrap();
    assert!(
        f.rotator()
            .resolve(&missing, &operator(), "relinked")
            .await
            .is_err()
    );
    f.sandbox.shutdown().await;
}
