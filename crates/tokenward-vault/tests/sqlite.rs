//! The behaviour suite on `SQLite` (in memory and in a file), plus migrations on reopen.
#![cfg(feature = "sqlite")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

mod support;

use support::{T0, keyring_and_cipher, note, token, user};
use tokenward_envelope::Cipher;
use tokenward_vault::{Backend, SCHEMA_VERSION, SqlVault, Vault};

#[tokio::test]
async fn suite_in_memory() {
    let (keyring, cipher) = keyring_and_cipher();
    let vault = SqlVault::sqlite_memory(cipher).await.unwrap();
    assert_eq!(vault.backend(), Backend::Sqlite);
    support::suite(&vault, &keyring).await;
}

#[tokio::test]
async fn suite_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (keyring, cipher) = keyring_and_cipher();
    let vault = SqlVault::sqlite_file(dir.path().join("vault?#%.db"), cipher)
        .await
        .unwrap();
    support::suite(&vault, &keyring).await;
}

#[tokio::test]
async fn reopening_a_file_keeps_data_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let (keyring, cipher) = keyring_and_cipher();
    let vault = SqlVault::sqlite_file(&path, cipher).await.unwrap();
    let i = support::item(1);
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    vault.close().await;
    drop(vault);
    let vault = SqlVault::sqlite_file(&path, Cipher::new(keyring))
        .await
        .unwrap();
    assert_eq!(vault.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(vault.get(&i).await.unwrap().token, token(1));
}

#[tokio::test]
async fn concurrent_writers_on_a_file_conflict_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (_keyring, cipher) = keyring_and_cipher();
    let vault = std::sync::Arc::new(
        SqlVault::sqlite_file(dir.path().join("v.db"), cipher)
            .await
            .unwrap(),
    );
    let i = support::item(1);
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let vault = std::sync::Arc::clone(&vault);
        let i = i.clone();
        tasks.push(tokio::spawn(async move {
            vault
                .update_token(&i, 1, &token(100 + n), &note("race"), T0)
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(tokenward_vault::WriteError::VersionConflict {
                expected: 1,
                actual: 2,
            }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(vault.get(&i).await.unwrap().version, 2);
}
