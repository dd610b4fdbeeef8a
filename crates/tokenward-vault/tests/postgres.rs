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

#[tokio::test]
async fn pool_size_is_configurable() {
    let Some(url) = support::service_url(VAR) else {
        return;
    };
    let (keyring, cipher) = keyring_and_cipher();
    let refused = SqlVault::postgres_with(
        &url,
        &tokenward_vault::PostgresOptions::new().max_connections(0),
        Cipher::new(Arc::clone(&keyring)),
    )
    .await;
    assert!(matches!(
        refused,
        Err(tokenward_vault::OpenError::Config(_))
    ));
    assert_eq!(
        tokenward_vault::PostgresOptions::new().max_connections,
        tokenward_vault::DEFAULT_POSTGRES_MAX_CONNECTIONS
    );
    let schema = unique_name("tw_vault");
    let options = tokenward_vault::PostgresOptions::new()
        .schema(schema.clone())
        .max_connections(2);
    let vault = SqlVault::postgres_with(&url, &options, cipher)
        .await
        .unwrap();
    assert_eq!(vault.pool().options().get_max_connections(), 2);
    assert_eq!(vault.schema_version().await.unwrap(), SCHEMA_VERSION);
    drop_schema(&vault, &schema).await;
}

/// A version-2 schema (as the previous release left it) upgrades in place on open.
#[cfg(feature = "sqlite")] // a scratch SQLite store seals the Item's envelope
#[tokio::test]
async fn a_version_2_schema_upgrades_in_place() {
    let Some(url) = support::service_url(VAR) else {
        return;
    };
    let (keyring, cipher) = keyring_and_cipher();
    let schema = unique_name("tw_vault");
    // The envelope of a real Item, from a scratch store.
    let scratch = SqlVault::sqlite_memory(cipher).await.unwrap();
    let i = support::item(1);
    scratch
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    let sealed = scratch.get_sealed(&i).await.unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let mut old = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut old)
        .await
        .unwrap();
    sqlx::Connection::close(old).await.unwrap();
    let mut old = <sqlx::AnyConnection as sqlx::Connection>::connect(&scoped)
        .await
        .unwrap();
    let mut script = String::from(
        "CREATE TABLE tokenward_schema_version (version BIGINT PRIMARY KEY NOT NULL, \
         description TEXT NOT NULL);\n",
    );
    script.push_str(include_str!("../migrations/postgres/0001_init.sql"));
    script.push_str(include_str!("../migrations/postgres/0002_rewrap_jobs.sql"));
    script.push_str(
        "\nINSERT INTO tokenward_schema_version VALUES (1, 'items, attempts, audit'), \
         (2, 'rewrap jobs');",
    );
    sqlx::raw_sql(&script).execute(&mut old).await.unwrap();
    sqlx::query(
        "INSERT INTO items (item_id, user_id, token_version, envelope, kek_version, \
         credential_state, health_state, lease_epoch, created_at, updated_at) \
         VALUES ($1, 'user-1', 1, $2, $3, 'active', 'healthy', 0, 0, 0)",
    )
    .bind(i.as_str())
    .bind(sealed.envelope.to_text())
    .bind(i64::from(sealed.envelope.kek_version().get()))
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

    let vault = SqlVault::postgres_in_schema(&url, Some(&schema), Cipher::new(keyring))
        .await
        .unwrap();
    assert_eq!(vault.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(vault.get(&i).await.unwrap().token, token(1));
    assert_eq!(vault.item(&i).await.unwrap().health_as_of, None);
    let refused = sqlx::query("DELETE FROM audit").execute(vault.pool()).await;
    assert!(refused.is_err());
    let refused = sqlx::query("TRUNCATE audit").execute(vault.pool()).await;
    assert!(refused.is_err());
    assert_eq!(vault.audit(&i).await.unwrap().len(), 1);
    drop_schema(&vault, &schema).await;
}
