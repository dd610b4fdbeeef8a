//! `tokenward resolve` against a `SQLite` vault in a temporary directory, with no Plaid
//! configuration at all (resolving never calls Plaid). Every run goes through the leak scan of
//! `support::Cli`, with the Items' tokens and the keyring planted.
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

use support::{Cli, Setup, now, open_vault, token};
use tokenward_redact::AccessToken;
use tokenward_vault::{
    AuditEvent, AuditNote, CredentialState, ItemId, LeaseOwner, StateChange, UserId, Vault,
};

/// A keyring, a vault with one Item per state given (`item-0`, `item-1`, …), and the binary
/// configured for both and nothing else.
async fn setup(states: &[CredentialState]) -> Setup {
    let mut setup = support::setup();
    let store = open_vault(&setup).await;
    for (n, state) in (0u32..).zip(states) {
        let item = ItemId::new(format!("item-{n}")).unwrap();
        store
            .insert_item(
                &item,
                &UserId::new(format!("user-{n}")).unwrap(),
                &AccessToken::new(token(n)).unwrap(),
                &AuditNote::new("test", "linked").unwrap(),
                now(),
            )
            .await
            .unwrap();
        setup.cli.plant(token(n));
        if *state != CredentialState::Active {
            store
                .set_credential_state(
                    StateChange {
                        item_id: &item,
                        expected_version: 1,
                        from: CredentialState::Active,
                        to: *state,
                        lease: None,
                        note: &AuditNote::new("test", "setup").unwrap(),
                    },
                    now(),
                )
                .await
                .unwrap();
        }
    }
    store.close().await;
    setup
}

async fn stored(setup: &Setup, item: &str) -> CredentialState {
    let store = open_vault(setup).await;
    let state = store
        .item(&ItemId::new(item).unwrap())
        .await
        .unwrap()
        .credential_state;
    store.close().await;
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_item_is_retired_with_the_actor_and_note_in_the_journal() {
    let setup = setup(&[CredentialState::Orphaned, CredentialState::Quarantined]).await;
    let cli = &setup.cli;

    let out = cli
        .run(
            &[
                "resolve",
                "--item",
                "item-0",
                "--actor",
                "alice",
                "--note",
                "INC-1042: user relinked, old Item removed at Plaid",
            ],
            b"",
        )
        .ok();
    assert_eq!(out, "item-0: orphaned -> retired (actor alice)\n");
    assert_eq!(stored(&setup, "item-0").await, CredentialState::Retired);
    let store = open_vault(&setup).await;
    let journal = store.audit(&ItemId::new("item-0").unwrap()).await.unwrap();
    store.close().await;
    let last = journal.last().unwrap();
    assert_eq!(last.event, AuditEvent::CredentialState);
    assert_eq!(last.from_state.as_deref(), Some("orphaned"));
    assert_eq!(last.to_state.as_deref(), Some("retired"));
    assert_eq!(last.actor, "alice");
    assert_eq!(
        last.reason,
        "operator_resolved: INC-1042: user relinked, old Item removed at Plaid"
    );

    // Again: nothing changes, exit 0, and it says so.
    let again = cli
        .run(
            &[
                "resolve", "--item", "item-0", "--actor", "alice", "--note", "again",
            ],
            b"",
        )
        .ok();
    assert_eq!(again, "item-0: already retired; nothing changed\n");
    let store = open_vault(&setup).await;
    let after = store.audit(&ItemId::new("item-0").unwrap()).await.unwrap();
    store.close().await;
    assert_eq!(after.len(), journal.len(), "a second resolve wrote");

    // JSON.
    let json = cli
        .run(
            &[
                "resolve", "--item", "item-1", "--actor", "bob", "--note", "OPS-7", "--format",
                "json",
            ],
            b"",
        )
        .ok();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["item_id"], "item-1");
    assert_eq!(value["from"], "quarantined");
    assert_eq!(value["state"], "retired");
    assert_eq!(value["changed"], true);
    assert_eq!(value["actor"], "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_their_exit_codes_and_change_nothing() {
    let setup = setup(&[CredentialState::Active, CredentialState::Orphaned]).await;
    let cli = &setup.cli;

    // An active Item: refused by a safety rule.
    let run = cli.run(
        &[
            "resolve", "--item", "item-0", "--actor", "alice", "--note", "oops",
        ],
        b"",
    );
    let line = run.fails(4);
    assert!(line.contains("item is active"), "{line}");
    assert_eq!(stored(&setup, "item-0").await, CredentialState::Active);

    // An unknown Item.
    let run = cli.run(
        &[
            "resolve", "--item", "item-9", "--actor", "alice", "--note", "oops",
        ],
        b"",
    );
    assert!(run.fails(5).contains("no such Item"), "{}", run.stderr);

    // A token pasted into the note: refused, not echoed, nothing written.
    let note = format!("old token was {}", token(1));
    let run = cli.run(
        &[
            "resolve", "--item", "item-1", "--actor", "alice", "--note", &note,
        ],
        b"",
    );
    assert!(run.fails(2).contains("Plaid token"), "{}", run.stderr);
    assert_eq!(stored(&setup, "item-1").await, CredentialState::Orphaned);

    // Missing or empty flags.
    cli.run(&["resolve", "--item", "item-1", "--actor", "alice"], b"")
        .fails(2);
    cli.run(
        &["resolve", "--item", "item-1", "--actor", " ", "--note", "x"],
        b"",
    )
    .fails(2);
    cli.run(
        &[
            "resolve", "--item", "item-1", "--actor", "alice", "--note", "",
        ],
        b"",
    )
    .fails(2);
    assert_eq!(stored(&setup, "item-1").await, CredentialState::Orphaned);

    // Another worker holds the Item: incomplete, rerun later.
    let store = open_vault(&setup).await;
    let item = ItemId::new("item-1").unwrap();
    let lease = store
        .acquire_lease(
            &item,
            &LeaseOwner::new("worker-b").unwrap(),
            Duration::from_secs(300),
            now(),
        )
        .await
        .unwrap();
    let run = cli.run(
        &[
            "resolve", "--item", "item-1", "--actor", "alice", "--note", "x",
        ],
        b"",
    );
    assert!(run.fails(9).contains("another worker"), "{}", run.stderr);
    store.release_lease(&lease).await.unwrap();
    store.close().await;
    assert_eq!(stored(&setup, "item-1").await, CredentialState::Orphaned);

    // No vault configured: configuration.
    let mut unconfigured = cli.clone_for_test();
    unconfigured.unset("TOKENWARD_VAULT_URL");
    unconfigured
        .run(
            &[
                "resolve", "--item", "item-1", "--actor", "alice", "--note", "x",
            ],
            b"",
        )
        .fails(3);
}

#[test]
fn help_has_an_example() {
    let help = Cli::new().run(&["resolve", "--help"], b"").ok();
    assert!(
        help.contains("tokenward resolve --item ITEM_ID --actor alice --note"),
        "{help}"
    );
    let top = Cli::new().run(&["--help"], b"").ok();
    assert!(top.contains("resolve"), "{top}");
}
