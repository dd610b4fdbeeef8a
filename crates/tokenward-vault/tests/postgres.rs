//! The behaviour suite on a real Postgres (`TOKENWARD_TEST_POSTGRES_URL`), each test in its own
//! schema so tests run in parallel. Skips with a message when the variable is unset; fails under
//! `CI=true` when it is unset or the server is unreachable.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

mod support;

use std::sync::Arc;

use support::{T0, keyring_and_cipher, note, token, unique_name, user};
use tokenward_envelope::Cipher;
use tokenward_vault::{Backend, SCHEMA_VERSION, SqlVault, Vault, WriteError};

const VAR: &str = "TOKENWARD_TEST_POSTGRES_URL";

/// Opens a vault in a fresh schema; `None` when the test should skip.
async fn open(cipher: Cipher) -> Option<(SqlVault, String)> {
    let url = support::service_url(VAR)?;
    let schema = unique_name("tw_vault");
    let vault = SqlVault::postgres_in_schema(&url, Some(&schema), cipher)
        .await
        .unwrap_or_else(|e| {
            panic!("{VAR} is set but the vault did not open (is Postgres up?): {e}")
        });
    Some((vault, schema))
}

async fn drop_schema(vault: &SqlVault, schema: &str) {
    sqlx::raw_sql(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(vault.pool())
        .await
        .unwrap();
    vault.close().await;
}

#[tokio::test]
async fn suite() {
    let (keyring, cipher) = keyring_and_cipher();
    let Some((vault, schema)) = open(cipher).await else {
        return;
    };
    assert_eq!(vault.backend(), Backend::Postgres);
    support::suite(&vault, &keyring).await;
    drop_schema(&vault, &schema).await;
}

#[tokio::test]
async fn instances_opening_at_once_migrate_once() {
    let Some(url) = support::service_url(VAR) else {
        return;
    };
    let schema = unique_name("tw_vault");
    let (keyring, _) = keyring_and_cipher();
    let opens = (0..4).map(|_| {
        let (url, schema, keyring) = (url.clone(), schema.clone(), Arc::clone(&keyring));
        tokio::spawn(async move {
            SqlVault::postgres_in_schema(&url, Some(&schema), Cipher::new(keyring)).await
        })
    });
    let mut vaults = Vec::new();
    for open in opens {
        vaults.push(open.await.unwrap().unwrap());
    }
    for vault in &vaults {
        assert_eq!(vault.schema_version().await.unwrap(), SCHEMA_VERSION);
    }
    // One instance writes, another reads it.
    let i = support::item(1);
    vaults[0]
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    assert_eq!(vaults[3].get(&i).await.unwrap().token, token(1));
    drop_schema(&vaults[0], &schema).await;
}

#[tokio::test]
async fn concurrent_writers_conflict_cleanly() {
    let (_keyring, cipher) = keyring_and_cipher();
    let Some((vault, schema)) = open(cipher).await else {
        return;
    };
    let vault = Arc::new(vault);
    let i = support::item(1);
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let (vault, i) = (Arc::clone(&vault), i.clone());
            tokio::spawn(async move {
                vault
                    .update_token(&i, 1, &token(100 + n), &note("race"), T0)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(WriteError::VersionConflict {
                expected: 1,
                actual: 2,
            }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(vault.get(&i).await.unwrap().version, 2);
    assert_eq!(vault.audit(&i).await.unwrap().len(), 2);
    drop_schema(&vault, &schema).await;
}

#[tokio::test]
async fn bad_schema_names_are_refused() {
    let (_keyring, cipher) = keyring_and_cipher();
    let result =
        SqlVault::postgres_in_schema("postgres://nobody@127.0.0.1:1/x", Some("bad\"name"), cipher)
            .await;
    assert!(matches!(result, Err(tokenward_vault::OpenError::Config(_))));
}

#[tokio::test]
async fn concurrent_lease_acquisitions_have_one_winner() {
    let (_keyring, cipher) = keyring_and_cipher();
    let Some((vault, schema)) = open(cipher).await else {
        return;
    };
    let vault = Arc::new(vault);
    let i = support::item(1);
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let (vault, i) = (Arc::clone(&vault), i.clone());
            tokio::spawn(async move {
                vault
                    .acquire_lease(
                        &i,
                        &support::owner(&format!("worker-{n}")),
                        support::TTL,
                        T0,
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(lease) => winners.push(lease),
            Err(tokenward_vault::LeaseError::Held { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].epoch, 1);
    assert_eq!(
        vault.item(&i).await.unwrap().lease.as_ref(),
        Some(&winners[0])
    );
    drop_schema(&vault, &schema).await;
}
