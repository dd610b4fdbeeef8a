//! The behaviour suite on `SQLite` (in memory and in a file), plus migrations on reopen.
#![cfg(feature = "sqlite")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::too_many_lines,
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

#[tokio::test]
async fn a_store_from_a_newer_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let (keyring, cipher) = keyring_and_cipher();
    let vault = SqlVault::sqlite_file(&path, cipher).await.unwrap();
    sqlx::query(
        "INSERT INTO tokenward_schema_version (version, description) VALUES (99, 'future')",
    )
    .execute(vault.pool())
    .await
    .unwrap();
    vault.close().await;
    drop(vault);
    let reopened = SqlVault::sqlite_file(&path, Cipher::new(keyring)).await;
    assert!(matches!(
        reopened,
        Err(tokenward_vault::OpenError::SchemaTooNew {
            found: 99,
            known: SCHEMA_VERSION
        })
    ));
}

#[tokio::test]
async fn malformed_attempt_rows_are_precise_errors() {
    let (_keyring, cipher) = keyring_and_cipher();
    let vault = SqlVault::sqlite_memory(cipher).await.unwrap();
    let i = support::item(1);
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    let lease = vault
        .acquire_lease(&i, &support::owner("w"), support::TTL, T0)
        .await
        .unwrap();
    let id = tokenward_vault::AttemptId::new("attempt-1").unwrap();
    vault
        .begin_attempt(
            tokenward_vault::BeginAttempt {
                attempt_id: &id,
                lease: &lease,
                expected_version: 1,
                note: &note("scheduled"),
            },
            T0,
        )
        .await
        .unwrap();
    sqlx::query("UPDATE attempts SET status = 'exploded' WHERE attempt_id = $1")
        .bind(id.as_str())
        .execute(vault.pool())
        .await
        .unwrap();
    for result in [
        vault.attempt(&id).await.map(|_| ()),
        vault.open_attempts().await.map(|_| ()),
    ] {
        match result {
            Err(tokenward_vault::ReadError::Malformed(m)) => {
                assert_eq!((m.table, m.column), ("attempts", "status"));
            }
            other => panic!("expected a malformed row, got {other:?}"),
        }
    }
    assert!(matches!(
        vault.mark_sent(&id, &lease, T0).await,
        Err(tokenward_vault::WriteError::Malformed(_))
    ));
}

#[tokio::test]
async fn file_reads_see_every_committed_write() {
    let dir = tempfile::tempdir().unwrap();
    let (_keyring, cipher) = keyring_and_cipher();
    let vault = SqlVault::sqlite_file(dir.path().join("v.db"), cipher)
        .await
        .unwrap();
    reads_see_every_committed_write(&vault).await;
}

#[tokio::test]
async fn memory_reads_see_every_committed_write() {
    let (_keyring, cipher) = keyring_and_cipher();
    let vault = SqlVault::sqlite_memory(cipher).await.unwrap();
    reads_see_every_committed_write(&vault).await;
}

#[tokio::test]
async fn in_memory_vaults_are_separate_databases() {
    let (_keyring, cipher) = keyring_and_cipher();
    let a = SqlVault::sqlite_memory(cipher).await.unwrap();
    let (_keyring, cipher) = keyring_and_cipher();
    let b = SqlVault::sqlite_memory(cipher).await.unwrap();
    let i = support::item(1);
    a.insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    assert!(matches!(
        b.get_sealed(&i).await,
        Err(tokenward_vault::ReadError::NotFound(_))
    ));
    assert_eq!(a.get(&i).await.unwrap().token, token(1));
}

/// A `get` right after each write returns that write (the synchronous reader sees commits).
async fn reads_see_every_committed_write(vault: &SqlVault) {
    let i = support::item(1);
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    for n in 1..40_u32 {
        let version = u64::from(n);
        vault
            .update_token(&i, version, &token(n + 1), &note("manual"), T0)
            .await
            .unwrap();
        let stored = vault.get(&i).await.unwrap();
        assert_eq!((stored.version, stored.token), (version + 1, token(n + 1)));
    }
    let sealed = vault.get_sealed(&i).await.unwrap();
    assert!(!format!("{sealed:?} {vault:?}").contains("twe1:"));
}

/// A version-2 database (as the previous release left it, with an Item and a sent attempt)
/// upgrades in place on open: data kept, new columns filled, the journal append-only.
#[tokio::test]
async fn a_version_2_store_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let (keyring, cipher) = keyring_and_cipher();
    // A store at version 3 made from scratch, for the envelope of a real Item ...
    let scratch = SqlVault::sqlite_memory(cipher).await.unwrap();
    let i = support::item(1);
    scratch
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    let sealed = scratch.get_sealed(&i).await.unwrap();
    // ... copied into a database built with the version 1 and 2 migrations only.
    // (Opening the scratch vault installed sqlx's `Any` drivers.)
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut old = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let mut statements = vec![
        "CREATE TABLE tokenward_schema_version (version BIGINT PRIMARY KEY NOT NULL, \
         description TEXT NOT NULL)"
            .to_owned(),
    ];
    for sql in [
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/sqlite/0002_rewrap_jobs.sql"),
    ] {
        let code: String = sql
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        statements.extend(
            code.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    statements.push(
        "INSERT INTO tokenward_schema_version VALUES (1, 'items, attempts, audit'), \
         (2, 'rewrap jobs')"
            .to_owned(),
    );
    for statement in &statements {
        sqlx::query(statement).execute(&mut old).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO items (item_id, user_id, token_version, envelope, kek_version, \
         credential_state, health_state, lease_epoch, created_at, updated_at) \
         VALUES ($1, 'user-1', 1, $2, $3, 'unknown', 'expiring_soon', 1, 0, 0)",
    )
    .bind(i.as_str())
    .bind(sealed.envelope.to_text())
    .bind(i64::from(sealed.envelope.kek_version().get()))
    .execute(&mut old)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO attempts (attempt_id, item_id, from_version, status, reason, actor, \
         lease_epoch, created_at, sent_at) VALUES ('attempt-1', $1, 1, 'sent', 'start', 'w', 1, \
         0, 5)",
    )
    .bind(i.as_str())
    .execute(&mut old)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO audit (item_id, event, reason, actor, at) \
         VALUES ($1, 'item_inserted', 'exchange', 'w', 0)",
    )
    .bind(i.as_str())
    .execute(&mut old)
    .await
    .unwrap();
    sqlx::Connection::close(old).await.unwrap();

    let vault = SqlVault::sqlite_file(&path, Cipher::new(keyring))
        .await
        .unwrap();
    assert_eq!(vault.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(vault.get(&i).await.unwrap().token, token(1));
    let record = vault.item(&i).await.unwrap();
    assert_eq!(
        record.health_state,
        tokenward_vault::HealthState::ExpiringSoon
    );
    assert_eq!(
        (
            record.health_as_of,
            record.health_deadline,
            record.last_attempt_id
        ),
        (None, None, None)
    );
    let attempt = vault
        .attempt(&tokenward_vault::AttemptId::new("attempt-1").unwrap())
        .await
        .unwrap();
    assert!(
        attempt.maybe_applied,
        "a sent attempt may have been applied"
    );
    assert!(vault.kek_records().await.unwrap().is_empty());
    let refused = sqlx::query("DELETE FROM audit").execute(vault.pool()).await;
    assert!(refused.is_err());
    assert_eq!(vault.audit(&i).await.unwrap().len(), 1);
}
