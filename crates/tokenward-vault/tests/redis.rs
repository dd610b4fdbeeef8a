//! The Redis ciphertext cache against a real Redis (`TOKENWARD_TEST_REDIS_URL`), each test
//! under its own key prefix so tests run in parallel. Skips with a message when the variable is
//! unset; fails under `CI=true` when it is unset or Redis is unreachable. "Redis going away" is
//! a proxy in front of the shared server that the test stops (the server itself keeps running).
#![cfg(all(feature = "redis", feature = "sqlite"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use support::{T0, TTL, at, item, keyring_and_cipher, note, owner, token, unique_name, user};
use tokenward_envelope::Keyring;
use tokenward_testkit::canary;
use tokenward_vault::{
    AttemptId, BeginAttempt, CacheConfig, CachedVault, CredentialState, Promote, ReadError,
    SqlVault, Vault,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const VAR: &str = "TOKENWARD_TEST_REDIS_URL";

fn host_port(url: &str) -> String {
    let rest = url.strip_prefix("redis://").unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap().to_owned()
}

/// A cached in-memory `SQLite` vault under a fresh prefix, talking to `redis_url`.
async fn cached(redis_url: &str) -> (CachedVault<SqlVault>, Arc<Keyring>, String) {
    let (keyring, cipher) = keyring_and_cipher();
    let store = SqlVault::sqlite_memory(cipher).await.unwrap();
    let prefix = format!("{}:", unique_name("tw_vault_test"));
    let config = CacheConfig::new(redis_url)
        .prefix(prefix.clone())
        .ttl(Duration::from_secs(60))
        .retry_after(Duration::ZERO);
    (CachedVault::new(store, config).unwrap(), keyring, prefix)
}

/// GET straight from Redis, to see what the cache stored.
async fn raw_get(redis_url: &str, key: &str) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(host_port(redis_url)).await.unwrap();
    let frame = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    stream.write_all(frame.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    let len: i64 = line.trim_end().strip_prefix('$').unwrap().parse().unwrap();
    if len < 0 {
        return None;
    }
    let mut value = vec![0; usize::try_from(len).unwrap() + 2];
    reader.read_exact(&mut value).await.unwrap();
    value.truncate(value.len() - 2);
    Some(value)
}

/// A TCP proxy to Redis on `addr` (port 0: any); abort the handle to make "Redis" go away.
async fn proxy(upstream: String, addr: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let upstream = upstream.clone();
            connections.spawn(async move {
                let mut server = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (addr, handle)
}

async fn stop(handle: JoinHandle<()>) {
    handle.abort();
    let _ = handle.await;
}

#[tokio::test]
async fn reads_through_and_holds_ciphertext_only() {
    let Some(url) = support::service_url(VAR) else {
        return;
    };
    let (vault, _keyring, prefix) = cached(&url).await;
    let i = item(1);
    let secret = tokenward_redact::AccessToken::new(canary::ACCESS_PRODUCTION).unwrap();
    vault
        .insert_item(&i, &user(1), &secret, &note("exchange"), T0)
        .await
        .unwrap();
    assert_eq!(vault.get(&i).await.unwrap().token, secret);
    assert_eq!(vault.get(&i).await.unwrap().token, secret);
    let stats = vault.stats();
    assert_eq!(
        (stats.misses, stats.hits, stats.errors),
        (1, 1, 0),
        "{stats:?}"
    );

    let value = raw_get(&url, &format!("{prefix}item:{}", i.as_str()))
        .await
        .expect("the cache holds the entry");
    let value = String::from_utf8(value).unwrap();
    assert!(value.starts_with("tw1 1 user-1 twe1:"));
    assert!(!value.contains(canary::ACCESS_PRODUCTION));

    // A poisoned entry (another Item's envelope under this key) does not open.
    let j = item(2);
    vault
        .insert_item(&j, &user(1), &token(2), &note("exchange"), T0)
        .await
        .unwrap();
    vault.get(&j).await.unwrap();
    let other = String::from_utf8(
        raw_get(&url, &format!("{prefix}item:{}", j.as_str()))
            .await
            .unwrap(),
    )
    .unwrap();
    let mut stream = TcpStream::connect(host_port(&url)).await.unwrap();
    let key = format!("{prefix}item:{}", i.as_str());
    let frame = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{other}\r\n",
        key.len(),
        other.len()
    );
    stream.write_all(frame.as_bytes()).await.unwrap();
    let mut ok = [0u8; 5];
    stream.read_exact(&mut ok).await.unwrap();
    // `get_sealed` hands out what the cache holds, and it does not open for this Item.
    let poisoned = vault.get_sealed(&i).await.unwrap();
    assert!(tokenward_vault::open_sealed(vault.cipher(), &poisoned).is_err());
    // `get` does not fail on it: it falls back to the store, and tombstones the entry.
    let errors = vault.stats().errors;
    assert_eq!(vault.get(&i).await.unwrap().token, secret);
    assert_eq!(vault.stats().errors, errors + 1);
    assert_eq!(
        raw_get(&url, &format!("{prefix}item:{}", i.as_str()))
            .await
            .as_deref(),
        Some(b"tw-tombstone".as_slice())
    );
    assert_eq!(vault.get(&i).await.unwrap().token, secret);
    assert_eq!(vault.get_uncached(&i).await.unwrap().token, secret);
    assert!(vault.purge().await.unwrap() >= 2);
}

#[tokio::test]
async fn every_write_invalidates() {
    let Some(url) = support::service_url(VAR) else {
        return;
    };
    let (vault, keyring, _prefix) = cached(&url).await;
    let i = item(1);
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    vault.get(&i).await.unwrap();

    // A token write.
    vault
        .update_token(&i, 1, &token(2), &note("manual"), at(1))
        .await
        .unwrap();
    let stored = vault.get(&i).await.unwrap();
    assert_eq!((stored.token, stored.version), (token(2), 2));

    // A rotation.
    let lease = vault
        .acquire_lease(&i, &owner("rotator"), TTL, at(2))
        .await
        .unwrap();
    let attempt_id = AttemptId::new("attempt-1").unwrap();
    let n = note("scheduled");
    vault
        .begin_attempt(
            BeginAttempt {
                attempt_id: &attempt_id,
                lease: &lease,
                expected_version: 2,
                note: &n,
            },
            at(3),
        )
        .await
        .unwrap();
    vault.mark_sent(&attempt_id, &lease, at(4)).await.unwrap();
    vault
        .stash_new_token(&attempt_id, &token(3), Some("req-1"), at(5))
        .await
        .unwrap();
    vault.get(&i).await.unwrap();
    vault
        .promote_stashed(
            Promote {
                attempt_id: &attempt_id,
                expected_version: 2,
                to: CredentialState::Active,
                lease: Some(&lease),
                note: &n,
            },
            at(6),
        )
        .await
        .unwrap();
    let stored = vault.get(&i).await.unwrap();
    assert_eq!((stored.token, stored.version), (token(3), 3));

    // A rewrap.
    let new = keyring.add_staged().unwrap();
    keyring.promote(new).unwrap();
    vault.get(&i).await.unwrap();
    let batch = vault.rewrap_batch(None, 100, at(7)).await.unwrap();
    assert_eq!(batch.changed_items, std::slice::from_ref(&i));
    assert_eq!(
        vault.get_sealed(&i).await.unwrap().envelope.kek_version(),
        new
    );

    // An erasure.
    vault.get(&i).await.unwrap();
    vault.erase_user(&user(1), "dpo", at(8)).await.unwrap();
    assert!(matches!(vault.get(&i).await, Err(ReadError::NotFound(_))));
    assert_eq!(vault.stats().errors, 0);
    vault.purge().await.unwrap();
}

#[tokio::test]
async fn redis_going_away_degrades_to_the_store() {
    let Some(url) = support::service_url(VAR) else {
        return;
    };
    let (addr, handle) = proxy(host_port(&url), "127.0.0.1:0".parse().unwrap()).await;
    let (vault, _keyring, prefix) = cached(&format!("redis://{addr}")).await;
    let i = item(1);
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    vault.get(&i).await.unwrap();
    vault.get(&i).await.unwrap();
    assert_eq!(vault.stats().hits, 1);

    // Redis goes away mid-test: reads are served by the store, never an error.
    stop(handle).await;
    for _ in 0..3 {
        assert_eq!(vault.get(&i).await.unwrap().token, token(1));
    }
    let stats = vault.stats();
    assert!(stats.errors >= 1 && stats.bypassed >= 3, "{stats:?}");
    // A write while it is away: the invalidation is remembered.
    vault
        .update_token(&i, 1, &token(2), &note("manual"), at(1))
        .await
        .unwrap();
    assert!(vault.stats().deferred_invalidations >= 1);
    assert_eq!(vault.get(&i).await.unwrap().token, token(2));

    // Redis comes back (same address) still holding the old entry: the remembered
    // invalidation runs first, so the stale version is never served.
    assert!(
        raw_get(&url, &format!("{prefix}item:{}", i.as_str()))
            .await
            .is_some()
    );
    let (_, handle) = proxy(host_port(&url), addr).await;
    let stored = vault.get(&i).await.unwrap();
    assert_eq!((stored.token, stored.version), (token(2), 2));
    let stored = vault.get(&i).await.unwrap();
    assert_eq!(stored.version, 2);
    assert!(vault.stats().hits >= 2);
    vault.purge().await.unwrap();
    stop(handle).await;
}

#[tokio::test]
async fn an_unreachable_redis_is_never_an_error() {
    // A closed port: no server needed, so this runs everywhere.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let (vault, _keyring, _prefix) = cached(&format!("redis://{addr}")).await;
    let i = item(1);
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(vault.get(&i).await.unwrap().token, token(1));
    }
    assert!(matches!(
        vault.get(&item(2)).await,
        Err(ReadError::NotFound(_))
    ));
    assert!(vault.stats().errors >= 1);
    let (_, cipher) = keyring_and_cipher();
    let store = SqlVault::sqlite_memory(cipher).await.unwrap();
    assert!(matches!(
        CachedVault::new(store, CacheConfig::new("rediss://x")),
        Err(tokenward_vault::OpenError::Config(_))
    ));
}

#[tokio::test]
async fn a_write_leaves_a_tombstone_that_blocks_stale_fills() {
    let Some(url) = support::service_url(VAR) else {
        return;
    };
    let (vault, _keyring, prefix) = cached(&url).await;
    let i = item(1);
    let key = format!("{prefix}item:{}", i.as_str());
    vault
        .insert_item(&i, &user(1), &token(1), &note("exchange"), T0)
        .await
        .unwrap();
    vault.get(&i).await.unwrap();
    assert!(raw_get(&url, &key).await.unwrap().starts_with(b"tw1 1 "));
    vault
        .update_token(&i, 1, &token(2), &note("manual"), at(1))
        .await
        .unwrap();
    assert_eq!(
        raw_get(&url, &key).await.as_deref(),
        Some(b"tw-tombstone".as_slice())
    );
    // Reads go to the store and do not fill over the tombstone.
    assert_eq!(vault.get(&i).await.unwrap().version, 2);
    assert_eq!(
        raw_get(&url, &key).await.as_deref(),
        Some(b"tw-tombstone".as_slice())
    );

    // An entry cached before its KEK was disabled does not fail a read.
    let (vault2, keyring2, _prefix2) = cached(&url).await;
    let j = item(2);
    vault2
        .insert_item(&j, &user(2), &token(3), &note("exchange"), T0)
        .await
        .unwrap();
    vault2.get(&j).await.unwrap();
    let old = keyring2.primary_version().unwrap();
    let new = keyring2.add_staged().unwrap();
    keyring2.promote(new).unwrap();
    vault2.inner().rewrap_batch(None, 10, at(2)).await.unwrap(); // behind the cache's back
    keyring2.disable(old).unwrap();
    assert_eq!(vault2.get(&j).await.unwrap().token, token(3));
    vault.purge().await.unwrap();
    vault2.purge().await.unwrap();
}

#[tokio::test]
async fn urls_are_checked_and_passwords_are_never_printed() {
    // No server needed: `new` does not connect.
    let (_, cipher) = keyring_and_cipher();
    let store = SqlVault::sqlite_memory(cipher).await.unwrap();
    let vault = CachedVault::new(store, CacheConfig::new("redis://:hunter2@localhost/3")).unwrap();
    let shown = format!("{vault:?}");
    assert!(
        shown.contains("localhost:6379") && shown.contains("db: 3"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    for bad in [
        "rediss://x",
        "unix:///tmp/redis.sock",
        "redis://x/notanumber",
        "redis:///0",
    ] {
        let (_, cipher) = keyring_and_cipher();
        let store = SqlVault::sqlite_memory(cipher).await.unwrap();
        assert!(
            matches!(
                CachedVault::new(store, CacheConfig::new(bad)),
                Err(tokenward_vault::OpenError::Config(_))
            ),
            "{bad}"
        );
    }
}
