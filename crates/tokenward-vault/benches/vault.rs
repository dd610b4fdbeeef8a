//! Vault benchmarks, each beside its baseline in the same group:
//!
//! - `get/sqlite_file` and `get/sqlite_memory`: `Vault::get` (read + open) against the bare
//!   `SELECT` on the sqlx pool, the envelope open alone, and (file) the bare `SELECT` on a
//!   `rusqlite` connection, the read path of both stores;
//! - `get/postgres`: the same on Postgres (`TOKENWARD_TEST_POSTGRES_URL`; skipped when unset);
//! - `get/redis`: a cache hit through `CachedVault` (`TOKENWARD_TEST_REDIS_URL`) against the
//!   uncached `SQLite` get;
//! - `rewrap/sqlite`: a full rewrap pass over N envelopes in a `SQLite` file, against
//!   `Cipher::rewrap_batch` over the same N envelopes in memory (the crypto alone);
//! - `rewrap/sqlite_large`: only when `TOKENWARD_BENCH_REWRAP_ROWS` is set (e.g. `1000000`):
//!   one timed rewrap pass over that many envelopes in a `SQLite` file, printed to stderr (one
//!   pass, not criterion samples: a million rows takes tens of seconds).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs,
    reason = "bench code"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use tokenward_envelope::{Cipher, Envelope, Keyring};
use tokenward_redact::AccessToken;
use tokenward_vault::{
    AuditNote, ItemId, SqlVault, Timestamp, UserId, Vault, item_context, open_sealed,
};
use tokio::runtime::Runtime;

const NOW: Timestamp = Timestamp::from_unix_millis(1_767_225_600_000);
/// Items in the table the `get` benches read from (the read hits one of them).
const TABLE_ROWS: u32 = 10_000;
/// Envelopes per rewrap pass.
const REWRAP_ROWS: u32 = 20_000;
/// Rows per rewrap batch (one transaction each).
const REWRAP_BATCH: u32 = 1_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn item(n: u32) -> ItemId {
    ItemId::new(format!("item-{n:08}")).unwrap()
}

fn token(n: u32) -> AccessToken {
    AccessToken::new(format!("access-production-00000000-0000-4000-8000-{n:012}")).unwrap()
}

async fn fill(vault: &dyn Vault, rows: u32) {
    let user = UserId::new("user-1").unwrap();
    let note = AuditNote::new("bench", "fill").unwrap();
    for n in 0..rows {
        vault
            .insert_item(&item(n), &user, &token(n), &note, NOW)
            .await
            .unwrap();
    }
}

/// `get` on a vault beside the bare query it runs and the open alone.
fn bench_get(c: &mut Criterion, name: &str, rt: &Runtime, vault: &SqlVault) {
    let target = item(TABLE_ROWS / 2);
    let mut group = c.benchmark_group(format!("get/{name}"));
    group.bench_function("raw_select", |b| {
        b.to_async(rt).iter(|| async {
            let row = sqlx::query(
                "SELECT user_id, token_version, envelope FROM items WHERE item_id = $1",
            )
            .bind(target.as_str())
            .fetch_one(vault.pool())
            .await
            .unwrap();
            black_box(row);
        });
    });
    let sealed = rt.block_on(vault.get_sealed(&target)).unwrap();
    group.bench_function("open_only", |b| {
        b.iter(|| black_box(open_sealed(vault.cipher(), black_box(&sealed)).unwrap()));
    });
    group.bench_function("vault_get", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(vault.get(&target).await.unwrap()) });
    });
    group.finish();
}

fn get_sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("get.db");
    let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let vault = rt.block_on(SqlVault::sqlite_file(&path, cipher)).unwrap();
    rt.block_on(fill(&vault, TABLE_ROWS));
    bench_get(c, "sqlite_file", &rt, &vault);

    // The bare query of the file store's read path, on its own connection to the same file.
    let target = item(TABLE_ROWS / 2);
    let connection = rusqlite::Connection::open(&path).unwrap();
    let mut group = c.benchmark_group("get/sqlite_file");
    group.bench_function("raw_select_rusqlite", |b| {
        b.iter(|| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT user_id, token_version, envelope FROM items WHERE item_id = ?1",
                )
                .unwrap();
            let row: (String, i64, String) = statement
                .query_row([target.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap();
            black_box(row)
        });
    });
    group.finish();

    let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let memory = rt.block_on(SqlVault::sqlite_memory(cipher)).unwrap();
    rt.block_on(fill(&memory, TABLE_ROWS));
    bench_get(c, "sqlite_memory", &rt, &memory);
}

#[cfg(feature = "postgres")]
fn get_postgres(c: &mut Criterion) {
    let Ok(url) = std::env::var("TOKENWARD_TEST_POSTGRES_URL") else {
        eprintln!("get/postgres skipped: TOKENWARD_TEST_POSTGRES_URL is not set");
        return;
    };
    let rt = runtime();
    let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let schema = format!("tw_vault_bench_{}", std::process::id());
    let vault = rt
        .block_on(SqlVault::postgres_in_schema(&url, Some(&schema), cipher))
        .unwrap();
    rt.block_on(fill(&vault, TABLE_ROWS));
    bench_get(c, "postgres", &rt, &vault);
    rt.block_on(async {
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(vault.pool())
            .await
            .unwrap();
        vault.close().await;
    });
}

#[cfg(not(feature = "postgres"))]
fn get_postgres(_: &mut Criterion) {
    eprintln!("get/postgres skipped: build with --features postgres");
}

#[cfg(feature = "redis")]
fn get_redis(c: &mut Criterion) {
    use tokenward_vault::{CacheConfig, CachedVault};
    let Ok(url) = std::env::var("TOKENWARD_TEST_REDIS_URL") else {
        eprintln!("get/redis skipped: TOKENWARD_TEST_REDIS_URL is not set");
        return;
    };
    let rt = runtime();
    let keyring = Arc::new(Keyring::generate().unwrap());
    let uncached = rt
        .block_on(SqlVault::sqlite_memory(Cipher::new(Arc::clone(&keyring))))
        .unwrap();
    let store = rt
        .block_on(SqlVault::sqlite_memory(Cipher::new(keyring)))
        .unwrap();
    let prefix = format!("tw_vault_bench_{}:", std::process::id());
    let cached = CachedVault::new(store, CacheConfig::new(url).prefix(prefix)).unwrap();
    rt.block_on(fill(&uncached, TABLE_ROWS));
    rt.block_on(fill(&cached, TABLE_ROWS));
    let target = item(TABLE_ROWS / 2);
    rt.block_on(cached.get(&target)).unwrap();
    let mut group = c.benchmark_group("get/redis");
    group.bench_function("sqlite_get_uncached", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(uncached.get(&target).await.unwrap()) });
    });
    group.bench_function("cached_get_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(cached.get(&target).await.unwrap()) });
    });
    group.finish();
    let stats = cached.stats();
    // Every read after the first was a hit (none missed or bypassed Redis).
    assert_eq!(
        (stats.misses, stats.bypassed, stats.errors),
        (1, 0, 0),
        "{stats:?}"
    );
    rt.block_on(cached.purge());
}

#[cfg(not(feature = "redis"))]
fn get_redis(_: &mut Criterion) {
    eprintln!("get/redis skipped: build with --features redis");
}

fn rewrap_sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::generate().unwrap());
    let vault = rt
        .block_on(SqlVault::sqlite_file(
            dir.path().join("rewrap.db"),
            Cipher::new(Arc::clone(&keyring)),
        ))
        .unwrap();
    rt.block_on(fill(&vault, REWRAP_ROWS));
    // The same number of envelopes in memory, for the crypto-only baseline.
    let cipher = Cipher::new(Arc::clone(&keyring));
    let user = UserId::new("user-1").unwrap();
    let envelopes: Vec<Envelope> = (0..REWRAP_ROWS)
        .map(|n| {
            let context = item_context(&item(n), &user, 1).unwrap();
            cipher
                .seal(token(n).expose_secret().as_bytes(), &context)
                .unwrap()
        })
        .collect();

    let mut group = c.benchmark_group("rewrap/sqlite");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(u64::from(REWRAP_ROWS)));
    group.bench_function(BenchmarkId::new("cipher_rewrap_batch", REWRAP_ROWS), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let next = keyring.add_staged().unwrap();
                keyring.promote(next).unwrap();
                let start = Instant::now();
                let out = cipher.rewrap_batch(black_box(&envelopes));
                total += start.elapsed();
                assert!(out.iter().all(Result::is_ok));
            }
            total
        });
    });
    group.bench_function(BenchmarkId::new("vault_rewrap_pass", REWRAP_ROWS), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // A new primary each pass, so every envelope needs a rewrap.
                let next = keyring.add_staged().unwrap();
                keyring.promote(next).unwrap();
                let start = Instant::now();
                let rewrapped = rt.block_on(async {
                    let mut cursor = None;
                    let mut rewrapped = 0;
                    loop {
                        let batch = vault
                            .rewrap_batch(cursor.as_ref(), REWRAP_BATCH, NOW)
                            .await
                            .unwrap();
                        rewrapped += batch.rewrapped;
                        cursor = batch.next_cursor;
                        if cursor.is_none() {
                            break rewrapped;
                        }
                    }
                });
                total += start.elapsed();
                assert_eq!(rewrapped, u64::from(REWRAP_ROWS));
            }
            total
        });
    });
    group.finish();
}

/// One timed rewrap pass over `TOKENWARD_BENCH_REWRAP_ROWS` envelopes in a `SQLite` file.
///
/// The rows are sealed with the real cipher and inserted in one `rusqlite` transaction (the
/// `items` columns `insert_item` writes, without its audit records, which a rewrap never
/// reads); then the KEK is rotated and `rewrap_batch` runs to completion in batches of
/// `REWRAP_BATCH`, as a rewrap job does.
fn rewrap_sqlite_large(_: &mut Criterion) {
    let Ok(rows) = std::env::var("TOKENWARD_BENCH_REWRAP_ROWS") else {
        return;
    };
    let rows: u32 = rows
        .parse()
        .expect("TOKENWARD_BENCH_REWRAP_ROWS: a row count");
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rewrap-large.db");
    let keyring = Arc::new(Keyring::generate().unwrap());
    let cipher = Cipher::new(Arc::clone(&keyring));
    let vault = rt
        .block_on(SqlVault::sqlite_file(
            &path,
            Cipher::new(Arc::clone(&keyring)),
        ))
        .unwrap();

    let start = Instant::now();
    let user = UserId::new("user-1").unwrap();
    let mut connection = rusqlite::Connection::open(&path).unwrap();
    let tx = connection.transaction().unwrap();
    let mut old_kek = None;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO items (item_id, user_id, token_version, envelope, kek_version, \
                 credential_state, health_state, lease_epoch, created_at, updated_at) \
                 VALUES (?1, ?2, 1, ?3, ?4, 'active', 'healthy', 0, ?5, ?5)",
            )
            .unwrap();
        for n in 0..rows {
            let id = item(n);
            let context = item_context(&id, &user, 1).unwrap();
            let envelope = cipher
                .seal(token(n).expose_secret().as_bytes(), &context)
                .unwrap();
            old_kek = Some(envelope.kek_version());
            insert
                .execute(rusqlite::params![
                    id.as_str(),
                    user.as_str(),
                    envelope.to_text(),
                    i64::from(envelope.kek_version().get()),
                    NOW.unix_millis(),
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    drop(connection);
    let old_kek = old_kek.expect("TOKENWARD_BENCH_REWRAP_ROWS: at least one row");
    eprintln!(
        "rewrap/sqlite_large: filled {rows} rows in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let next = keyring.add_staged().unwrap();
    keyring.promote(next).unwrap();
    let start = Instant::now();
    let (rewrapped, batches) = rt.block_on(async {
        let mut cursor = None;
        let (mut rewrapped, mut batches) = (0, 0_u32);
        loop {
            let batch = vault
                .rewrap_batch(cursor.as_ref(), REWRAP_BATCH, NOW)
                .await
                .unwrap();
            assert!(batch.failed.is_empty());
            rewrapped += batch.rewrapped;
            batches += 1;
            cursor = batch.next_cursor;
            if cursor.is_none() {
                break (rewrapped, batches);
            }
        }
    });
    let elapsed = start.elapsed();
    assert_eq!(rewrapped, u64::from(rows));
    assert_eq!(rt.block_on(vault.envelopes_under(old_kek)).unwrap(), 0);
    // A sample of rows still opens under the new primary.
    for n in [0, rows / 2, rows - 1] {
        assert_eq!(rt.block_on(vault.get(&item(n))).unwrap().token, token(n));
    }
    eprintln!(
        "rewrap/sqlite_large: rewrapped {rewrapped} envelopes in {batches} batches of \
         {REWRAP_BATCH} in {:.2} s ({:.0} envelopes/s)",
        elapsed.as_secs_f64(),
        f64::from(rows) / elapsed.as_secs_f64()
    );
}

criterion_group!(
    benches,
    get_sqlite,
    get_postgres,
    get_redis,
    rewrap_sqlite,
    rewrap_sqlite_large
);
criterion_main!(benches);
