//! The SQL store: one implementation of [`Vault`] over an `sqlx` `Any` pool, with two
//! dialects (`SQLite` and Postgres) that differ only in connection setup, migrations, how a write
//! transaction starts and row locking.
//!
//! Every write is one transaction that first reads the rows it changes (`FOR UPDATE` on
//! Postgres; `SQLite` write transactions start `IMMEDIATE`, which takes the database's write
//! lock), checks version, state and lease in Rust to report a precise conflict, then writes with
//! the same conditions in the `WHERE` clause.

use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row};
use tokenward_envelope::{Cipher, Envelope, EnvelopeError, KeyVersion};
use tokenward_redact::AccessToken;

use crate::error::{
    InvalidInput, LeaseError, MalformedRow, OpenError, ReadError, RewrapError, WriteError,
};
use crate::types::{
    AttemptId, AttemptRecord, AttemptStatus, AuditEvent, AuditNote, AuditRecord, BeginAttempt,
    CredentialState, Erasure, FinishAttempt, HealthState, HealthUpdate, HealthWrite, ItemId,
    ItemRecord, JobId, KekRecord, Lease, LeaseOwner, Promote, RewrapBatch, RewrapCursor,
    RewrapFailure, RewrapJobRecord, RewrapPhase, RewrapRow, StateChange, StateFilter, Timestamp,
    UserId,
};
use crate::vault::{SealedItem, Vault, attempt_context, item_context};

/// Which database a [`SqlVault`] talks to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Backend {
    /// `SQLite` (embedded: a file or memory).
    Sqlite,
    /// Postgres (shared by many app instances).
    Postgres,
}

/// The SQL vault: `SQLite` (feature `sqlite`) or Postgres (feature `postgres`).
///
/// Migrations run when it opens. Envelopes are stored in their `twe1:` text form with the KEK
/// version in an indexed column.
pub struct SqlVault {
    pool: AnyPool,
    cipher: Cipher,
    backend: Backend,
    /// The synchronous `SQLite` read connection for `get_sealed` (file and in-memory stores).
    #[cfg(feature = "sqlite")]
    reader: Option<crate::sqlite_reader::Reader>,
}

impl std::fmt::Debug for SqlVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlVault")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The schema migrations of one dialect: (version, description, SQL).
type Migrations = &'static [(i64, &'static str, &'static str)];

#[cfg(feature = "sqlite")]
const SQLITE_MIGRATIONS: Migrations = &[
    (
        1,
        "items, attempts, audit",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "rewrap jobs",
        include_str!("../migrations/sqlite/0002_rewrap_jobs.sql"),
    ),
    (
        3,
        "KEK lifecycle records, health times, attempt flags, append-only audit",
        include_str!("../migrations/sqlite/0003_lifecycle.sql"),
    ),
];

#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: Migrations = &[
    (
        1,
        "items, attempts, audit",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "rewrap jobs",
        include_str!("../migrations/postgres/0002_rewrap_jobs.sql"),
    ),
    (
        3,
        "KEK lifecycle records, health times, attempt flags, append-only audit",
        include_str!("../migrations/postgres/0003_lifecycle.sql"),
    ),
];

/// Rows per multi-row rewrap `UPDATE` (5 parameters each: far under both drivers' limits).
const REWRAP_CHUNK: usize = 200;

/// The newest schema version this library knows.
pub const SCHEMA_VERSION: i64 = 3;

/// The most connections a Postgres pool opens unless [`PostgresOptions::max_connections`]
/// says otherwise.
#[cfg(feature = "postgres")]
pub const DEFAULT_POSTGRES_MAX_CONNECTIONS: u32 = 8;

/// How [`SqlVault::postgres_with`] opens a Postgres vault.
#[cfg(feature = "postgres")]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The schema the tables live in (created if missing); `None` for the connection's default.
    pub schema: Option<String>,
    /// The most connections the pool opens ([`DEFAULT_POSTGRES_MAX_CONNECTIONS`] by default).
    /// Every app instance opens its own pool: keep instances × this under the server's
    /// `max_connections`.
    pub max_connections: u32,
}

#[cfg(feature = "postgres")]
impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: None,
            max_connections: DEFAULT_POSTGRES_MAX_CONNECTIONS,
        }
    }
}

#[cfg(feature = "postgres")]
impl PostgresOptions {
    /// The defaults: the connection's schema, [`DEFAULT_POSTGRES_MAX_CONNECTIONS`].
    #[must_use]
    pub fn new() -> Self {
        PostgresOptions::default()
    }

    /// Puts the tables in `schema` (1 to 63 characters of `a-z`, `0-9` and `_`, checked on
    /// open).
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Sets the pool size (at least 1, checked on open).
    #[must_use]
    pub fn max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections;
        self
    }
}

#[cfg(feature = "sqlite")]
/// The most connections a `SQLite` file pool opens (readers run in parallel in WAL mode; writers
/// take the write lock in turn).
const SQLITE_FILE_MAX_CONNECTIONS: u32 = 4;

fn install_drivers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An application that installed its own drivers first keeps them; connecting then
        // fails with a clear "no driver" error if ours are missing.
        let _ = sqlx::any::install_drivers(&[
            #[cfg(feature = "postgres")]
            sqlx::postgres::any::DRIVER,
            #[cfg(feature = "sqlite")]
            sqlx::sqlite::any::DRIVER,
        ]);
    });
}

/// A `file:` URI naming a new in-memory database: unique in this process (a counter), and
/// unlikely to meet a name another library chose (a random part).
#[cfg(feature = "sqlite")]
fn memory_database_uri() -> String {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // RandomState is seeded from the OS once per process and varied per call.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("file:tokenward-{n}-{random:016x}")
}

impl SqlVault {
    /// An in-memory `SQLite` vault (one write connection; the data lives as long as the vault).
    ///
    /// The database is a named one in `SQLite`'s shared cache, unique to this vault, so `get`
    /// reads it through a synchronous connection as a file store does.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when `SQLite` cannot open or migrate.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite_memory(cipher: Cipher) -> Result<Self, OpenError> {
        install_drivers();
        let uri = memory_database_uri();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect(&format!("sqlite:{uri}?mode=memory&cache=shared"))
            .await
            .map_err(|e| OpenError::Connect(e.into()))?;
        let mut vault = Self::finish_open(pool, cipher, Backend::Sqlite).await?;
        // After the migrations, so the reader sees the tables; the pool's connection (never
        // closed while the vault lives) keeps the database alive.
        vault.reader = Some(
            crate::sqlite_reader::Reader::open_memory(&uri)
                .map_err(|e| OpenError::Connect(crate::error::BackendError(Box::new(e))))?,
        );
        Ok(vault)
    }

    /// A `SQLite` vault in the file at `path` (created if missing), in WAL mode.
    ///
    /// One process per file: several app instances should share a Postgres vault instead.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the path is not UTF-8 or `SQLite` cannot open or migrate.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite_file(
        path: impl AsRef<std::path::Path>,
        cipher: Cipher,
    ) -> Result<Self, OpenError> {
        install_drivers();
        let path = path
            .as_ref()
            .to_str()
            .ok_or(OpenError::Config("the SQLite path must be UTF-8"))?;
        let mut escaped = String::with_capacity(path.len());
        for c in path.chars() {
            match c {
                '%' => escaped.push_str("%25"),
                '?' => escaped.push_str("%3F"),
                '#' => escaped.push_str("%23"),
                c => escaped.push(c),
            }
        }
        let url = format!("sqlite://{escaped}?mode=rwc");
        let pool = AnyPoolOptions::new()
            .max_connections(SQLITE_FILE_MAX_CONNECTIONS)
            .connect(&url)
            .await
            .map_err(|e| OpenError::Connect(e.into()))?;
        // WAL mode is a property of the file: readers do not block the writer. Synchronous
        // stays at SQLite's default, FULL, so a commit is durable when it returns.
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await
            .map_err(|e| OpenError::Connect(e.into()))?;
        let mut vault = Self::finish_open(pool, cipher, Backend::Sqlite).await?;
        // After the migrations, so the reader sees the tables.
        vault.reader = Some(
            crate::sqlite_reader::Reader::open_file(path)
                .map_err(|e| OpenError::Connect(crate::error::BackendError(Box::new(e))))?,
        );
        Ok(vault)
    }

    /// A Postgres vault at `url` (`postgres://user@host:port/db`), in the connection's default
    /// schema.
    ///
    /// # Errors
    ///
    /// [`OpenError`] when connecting or migrating fails.
    #[cfg(feature = "postgres")]
    pub async fn postgres(url: &str, cipher: Cipher) -> Result<Self, OpenError> {
        Self::postgres_in_schema(url, None, cipher).await
    }

    /// A Postgres vault whose tables live in `schema` (created if missing): several vaults, or
    /// parallel tests, can share one database. Schema names are 1 to 63 characters of
    /// `a-z`, `0-9` and `_`, starting with a letter or `_`.
    ///
    /// Two app instances opening at once are safe: migrations run under a transaction-scoped
    /// advisory lock.
    ///
    /// # Errors
    ///
    /// [`OpenError::Config`] for a bad schema name; [`OpenError`] when connecting or migrating
    /// fails.
    #[cfg(feature = "postgres")]
    pub async fn postgres_in_schema(
        url: &str,
        schema: Option<&str>,
        cipher: Cipher,
    ) -> Result<Self, OpenError> {
        let mut options = PostgresOptions::new();
        if let Some(schema) = schema {
            options = options.schema(schema);
        }
        Self::postgres_with(url, &options, cipher).await
    }

    /// A Postgres vault at `url` with `options`: the schema (as
    /// [`postgres_in_schema`](Self::postgres_in_schema)) and the pool size.
    ///
    /// # Errors
    ///
    /// [`OpenError::Config`] for a bad schema name or a pool of 0 connections; [`OpenError`]
    /// when connecting or migrating fails.
    #[cfg(feature = "postgres")]
    pub async fn postgres_with(
        url: &str,
        options: &PostgresOptions,
        cipher: Cipher,
    ) -> Result<Self, OpenError> {
        install_drivers();
        if options.max_connections == 0 {
            return Err(OpenError::Config(
                "a Postgres pool needs at least one connection",
            ));
        }
        let schema = options.schema.as_deref();
        if let Some(schema) = schema {
            let ok = !schema.is_empty()
                && schema.len() <= 63
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !schema.as_bytes().first().is_some_and(u8::is_ascii_digit);
            if !ok {
                return Err(OpenError::Config(
                    "schema names are 1 to 63 characters of a-z, 0-9 and _",
                ));
            }
        }
        let schema = schema.map(str::to_owned);
        let url = match &schema {
            // Every connection of the pool starts with this search path (the `options`
            // startup parameter), so unqualified table names resolve in the schema.
            Some(schema) => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}options=-c%20search_path%3D{schema}")
            }
            None => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .connect(&url)
            .await
            .map_err(|e| OpenError::Connect(e.into()))?;
        if let Some(schema) = &schema {
            let mut tx = pool
                .begin()
                .await
                .map_err(|e| OpenError::Connect(e.into()))?;
            pg_lock(&mut tx, schema)
                .await
                .map_err(|e| OpenError::Connect(e.into()))?;
            let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            sqlx::query(&create)
                .execute(&mut *tx)
                .await
                .map_err(|e| OpenError::Connect(e.into()))?;
            tx.commit()
                .await
                .map_err(|e| OpenError::Connect(e.into()))?;
        }
        Self::finish_open(pool, cipher, Backend::Postgres).await
    }

    async fn finish_open(
        pool: AnyPool,
        cipher: Cipher,
        backend: Backend,
    ) -> Result<Self, OpenError> {
        let vault = SqlVault {
            pool,
            cipher,
            backend,
            #[cfg(feature = "sqlite")]
            reader: None,
        };
        vault.migrate().await?;
        Ok(vault)
    }

    /// Which database this vault uses.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The schema version of the store (after the migrations that ran on open).
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn schema_version(&self) -> Result<i64, ReadError> {
        let row = sqlx::query("SELECT MAX(version) AS v FROM tokenward_schema_version")
            .fetch_one(&self.pool)
            .await?;
        Ok(row
            .try_get::<Option<i64>, _>("v")
            .map_err(|_| {
                MalformedRow::new("tokenward_schema_version", "version", "is not an integer")
            })?
            .unwrap_or(0))
    }

    /// Closes the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The raw pool, for benchmarks and tests that compare against a bare query.
    #[doc(hidden)]
    #[must_use]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    fn migrations(&self) -> Migrations {
        match self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => SQLITE_MIGRATIONS,
            #[cfg(feature = "postgres")]
            Backend::Postgres => POSTGRES_MIGRATIONS,
            #[allow(unreachable_patterns, reason = "one arm per enabled feature")]
            _ => &[],
        }
    }

    async fn migrate(&self) -> Result<(), OpenError> {
        let connect = |e: sqlx::Error| OpenError::Connect(e.into());
        let mut tx = self.begin_write().await.map_err(connect)?;
        if self.backend == Backend::Postgres {
            pg_lock(&mut tx, "tokenward_vault_migrations")
                .await
                .map_err(connect)?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS tokenward_schema_version (
                version BIGINT PRIMARY KEY NOT NULL,
                description TEXT NOT NULL
            )",
        )
        .execute(&mut *tx)
        .await
        .map_err(connect)?;
        let current: i64 = sqlx::query("SELECT MAX(version) AS v FROM tokenward_schema_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(connect)?
            .try_get::<Option<i64>, _>("v")
            .map_err(connect)?
            .unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(OpenError::SchemaTooNew {
                found: current,
                known: SCHEMA_VERSION,
            });
        }
        for (version, description, sql) in self.migrations() {
            if *version <= current {
                continue;
            }
            let failed = |e: sqlx::Error| OpenError::Migration {
                version: *version,
                source: e.into(),
            };
            for statement in statements(sql) {
                sqlx::query(&statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
            }
            sqlx::query(
                "INSERT INTO tokenward_schema_version (version, description) VALUES ($1, $2)",
            )
            .bind(*version)
            .bind(*description)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        }
        tx.commit().await.map_err(connect)?;
        Ok(())
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            // IMMEDIATE takes the write lock up front, so a transaction that reads and then
            // writes cannot fail to upgrade (SQLITE_BUSY) halfway; the busy timeout waits.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// The line that separates statements in a migration whose statements hold `;` (trigger and
/// function bodies).
const STATEMENT_BREAK: &str = "--- statement ---";

/// A migration's statements, to run one at a time as prepared statements on both drivers. A
/// file with [`STATEMENT_BREAK`] lines is split at them; any other at `;` (such files hold
/// none in literals). Comment lines are dropped either way.
fn statements(sql: &str) -> Vec<String> {
    let strip = |chunk: &str| -> String {
        chunk
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let chunks: Vec<String> = if sql.lines().any(|line| line.trim() == STATEMENT_BREAK) {
        let mut chunks = vec![String::new()];
        for line in sql.lines() {
            if line.trim() == STATEMENT_BREAK {
                chunks.push(String::new());
            } else if let Some(last) = chunks.last_mut() {
                last.push_str(line);
                last.push('\n');
            }
        }
        chunks.iter().map(|chunk| strip(chunk)).collect()
    } else {
        strip(sql).split(';').map(str::to_owned).collect()
    };
    chunks
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Takes a transaction-scoped advisory lock named by `name` (Postgres).
async fn pg_lock(conn: &mut AnyConnection, name: &str) -> Result<(), sqlx::Error> {
    // Selecting a constant: the lock function returns `void`, which the Any driver cannot
    // decode.
    sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS l")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Row decoding.

const ITEM_COLS: &str = "item_id, user_id, token_version, kek_version, credential_state, \
     health_state, lease_owner, lease_epoch, lease_expires_at, created_at, updated_at, \
     health_as_of, health_deadline, last_attempt_id";

const ATTEMPT_COLS: &str = "attempt_id, item_id, from_version, status, reason, actor, \
     lease_epoch, created_at, sent_at, stashed_kek_version, stashed_at, request_id, finished_at, \
     maybe_applied";

const KEK_COLS: &str = "kek_version, revision, state, compromised, promoted_at, compromised_at, \
     disabled_at, destroyed_at, updated_at";

const JOB_COLS: &str = "job_id, revision, state, reason, cursor, target_kek_version, planned, \
     rewrapped, skipped, failed, batches, rounds, finished_at, updated_at";

const AUDIT_COLS: &str =
    "id, item_id, event, from_state, to_state, reason, actor, at, request_id, attempt_id";

struct Cols<'r> {
    row: &'r AnyRow,
    table: &'static str,
}

impl Cols<'_> {
    fn i64(&self, column: &'static str) -> Result<i64, MalformedRow> {
        self.row
            .try_get::<i64, _>(column)
            .map_err(|_| MalformedRow::new(self.table, column, "is not an integer"))
    }

    fn opt_i64(&self, column: &'static str) -> Result<Option<i64>, MalformedRow> {
        self.row
            .try_get::<Option<i64>, _>(column)
            .map_err(|_| MalformedRow::new(self.table, column, "is not an integer"))
    }

    fn u64(&self, column: &'static str) -> Result<u64, MalformedRow> {
        u64::try_from(self.i64(column)?)
            .map_err(|_| MalformedRow::new(self.table, column, "is negative"))
    }

    fn kek(&self, column: &'static str) -> Result<KeyVersion, MalformedRow> {
        let value = self.i64(column)?;
        u32::try_from(value)
            .ok()
            .and_then(KeyVersion::new)
            .ok_or(MalformedRow::new(
                self.table,
                column,
                "is not a key version",
            ))
    }

    fn opt_kek(&self, column: &'static str) -> Result<Option<KeyVersion>, MalformedRow> {
        match self.opt_i64(column)? {
            None => Ok(None),
            Some(value) => u32::try_from(value)
                .ok()
                .and_then(KeyVersion::new)
                .map(Some)
                .ok_or(MalformedRow::new(
                    self.table,
                    column,
                    "is not a key version",
                )),
        }
    }

    fn flag(&self, column: &'static str) -> Result<bool, MalformedRow> {
        match self.i64(column)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(MalformedRow::new(self.table, column, "is not 0 or 1")),
        }
    }

    fn time(&self, column: &'static str) -> Result<Timestamp, MalformedRow> {
        self.i64(column).map(Timestamp::from_unix_millis)
    }

    fn opt_time(&self, column: &'static str) -> Result<Option<Timestamp>, MalformedRow> {
        Ok(self.opt_i64(column)?.map(Timestamp::from_unix_millis))
    }

    fn string(&self, column: &'static str) -> Result<String, MalformedRow> {
        self.row
            .try_get::<String, _>(column)
            .map_err(|_| MalformedRow::new(self.table, column, "is not text"))
    }

    fn opt_string(&self, column: &'static str) -> Result<Option<String>, MalformedRow> {
        self.row
            .try_get::<Option<String>, _>(column)
            .map_err(|_| MalformedRow::new(self.table, column, "is not text"))
    }

    fn parse<T: std::str::FromStr>(&self, column: &'static str) -> Result<T, MalformedRow> {
        self.string(column)?
            .parse()
            .map_err(|_| MalformedRow::new(self.table, column, "has an unknown value"))
    }

    fn opt_parse<T: std::str::FromStr>(
        &self,
        column: &'static str,
    ) -> Result<Option<T>, MalformedRow> {
        match self.opt_string(column)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| MalformedRow::new(self.table, column, "has an unknown value")),
        }
    }

    fn envelope(&self, column: &'static str) -> Result<Envelope, MalformedRow> {
        Envelope::from_text(&self.string(column)?)
            .map_err(|_| MalformedRow::new(self.table, column, "is not a well-formed envelope"))
    }
}

fn item_from_row(row: &AnyRow) -> Result<ItemRecord, MalformedRow> {
    let c = Cols {
        row,
        table: "items",
    };
    let item_id: ItemId = c.parse("item_id")?;
    let lease_epoch = c.u64("lease_epoch")?;
    let lease = match (
        c.opt_parse::<LeaseOwner>("lease_owner")?,
        c.opt_time("lease_expires_at")?,
    ) {
        (Some(owner), Some(expires_at)) => Some(Lease {
            item_id: item_id.clone(),
            owner,
            epoch: lease_epoch,
            expires_at,
        }),
        (None, None) => None,
        _ => {
            return Err(MalformedRow::new(
                "items",
                "lease_owner",
                "and lease_expires_at disagree",
            ));
        }
    };
    Ok(ItemRecord {
        item_id,
        user_id: c.parse("user_id")?,
        token_version: c.u64("token_version")?,
        kek_version: c.kek("kek_version")?,
        credential_state: c.parse("credential_state")?,
        health_state: c.parse("health_state")?,
        lease,
        lease_epoch,
        created_at: c.time("created_at")?,
        updated_at: c.time("updated_at")?,
        health_as_of: c.opt_time("health_as_of")?,
        health_deadline: c.opt_time("health_deadline")?,
        last_attempt_id: c.opt_parse("last_attempt_id")?,
    })
}

fn attempt_from_row(row: &AnyRow) -> Result<AttemptRecord, MalformedRow> {
    let c = Cols {
        row,
        table: "attempts",
    };
    Ok(AttemptRecord {
        attempt_id: c.parse("attempt_id")?,
        item_id: c.parse("item_id")?,
        from_version: c.u64("from_version")?,
        status: c.parse("status")?,
        reason: c.string("reason")?,
        actor: c.string("actor")?,
        lease_epoch: c.u64("lease_epoch")?,
        created_at: c.time("created_at")?,
        sent_at: c.opt_time("sent_at")?,
        stashed_kek_version: c.opt_kek("stashed_kek_version")?,
        stashed_at: c.opt_time("stashed_at")?,
        request_id: c.opt_string("request_id")?,
        finished_at: c.opt_time("finished_at")?,
        maybe_applied: c.flag("maybe_applied")?,
    })
}

fn kek_from_row(row: &AnyRow) -> Result<KekRecord, MalformedRow> {
    let c = Cols {
        row,
        table: "kek_versions",
    };
    Ok(KekRecord {
        version: c.kek("kek_version")?,
        revision: c.u64("revision")?,
        state: c.parse("state")?,
        compromised: c.flag("compromised")?,
        promoted_at: c.opt_time("promoted_at")?,
        compromised_at: c.opt_time("compromised_at")?,
        disabled_at: c.opt_time("disabled_at")?,
        destroyed_at: c.opt_time("destroyed_at")?,
        updated_at: c.time("updated_at")?,
    })
}

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, MalformedRow> {
    let c = Cols {
        row,
        table: "audit",
    };
    Ok(AuditRecord {
        id: c.u64("id")?,
        item_id: c.opt_parse("item_id")?,
        event: c.parse("event")?,
        from_state: c.opt_string("from_state")?,
        to_state: c.opt_string("to_state")?,
        reason: c.string("reason")?,
        actor: c.string("actor")?,
        at: c.time("at")?,
        request_id: c.opt_string("request_id")?,
        attempt_id: c.opt_parse("attempt_id")?,
    })
}

fn job_from_row(row: &AnyRow) -> Result<RewrapJobRecord, MalformedRow> {
    let c = Cols {
        row,
        table: "rewrap_jobs",
    };
    Ok(RewrapJobRecord {
        job_id: c.parse("job_id")?,
        revision: c.u64("revision")?,
        state: c.string("state")?,
        reason: c.opt_string("reason")?,
        cursor: c.opt_string("cursor")?,
        target_kek_version: c.kek("target_kek_version")?,
        planned: c.u64("planned")?,
        rewrapped: c.u64("rewrapped")?,
        skipped: c.u64("skipped")?,
        failed: c.u64("failed")?,
        batches: c.u64("batches")?,
        rounds: c.u64("rounds")?,
        finished_at: c.opt_time("finished_at")?,
        updated_at: c.time("updated_at")?,
    })
}

/// `reason` cut to [`MAX_REASON_LEN`](crate::MAX_REASON_LEN) bytes at a character boundary.
fn truncate_reason(reason: &str) -> &str {
    let mut end = reason.len().min(crate::MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason.get(..end).unwrap_or_default()
}

fn to_i64(value: u64, what: &'static str) -> Result<i64, InvalidInput> {
    i64::try_from(value).map_err(|_| InvalidInput::OutOfRange(what))
}

fn kek_i64(version: KeyVersion) -> i64 {
    i64::from(version.get())
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the writes.

/// Checks the lease presented (or, without one, that nobody else holds a live lease).
fn check_lease(item: &ItemRecord, lease: Option<&Lease>, now: Timestamp) -> Result<(), WriteError> {
    match lease {
        Some(lease) => {
            let held = item.lease.as_ref();
            if lease.item_id != item.item_id
                || item.lease_epoch != lease.epoch
                || held.map(|h| &h.owner) != Some(&lease.owner)
            {
                return Err(WriteError::Fenced {
                    presented: lease.epoch,
                    current: item.lease_epoch,
                });
            }
            if let Some(held) = held
                && now >= held.expires_at
            {
                return Err(WriteError::LeaseExpired {
                    expired_at: held.expires_at,
                });
            }
            Ok(())
        }
        None => match &item.lease {
            Some(held) if now < held.expires_at => Err(WriteError::LeaseHeld {
                owner: held.owner.clone(),
                expires_at: held.expires_at,
            }),
            _ => Ok(()),
        },
    }
}

fn check_version(item: &ItemRecord, expected: u64) -> Result<(), WriteError> {
    if item.token_version == expected {
        Ok(())
    } else {
        Err(WriteError::VersionConflict {
            expected,
            actual: item.token_version,
        })
    }
}

fn check_state(item: &ItemRecord, expected: CredentialState) -> Result<(), WriteError> {
    if item.credential_state == expected {
        Ok(())
    } else {
        Err(WriteError::StateConflict {
            expected: expected.as_str(),
            actual: item.credential_state.as_str(),
        })
    }
}

/// One audit row to insert.
struct Audit<'a> {
    item_id: Option<&'a str>,
    event: AuditEvent,
    from_state: Option<&'static str>,
    to_state: Option<&'static str>,
    reason: &'a str,
    actor: &'a str,
    at: Timestamp,
    request_id: Option<&'a str>,
    attempt_id: Option<&'a str>,
}

impl<'a> Audit<'a> {
    fn of(item_id: &'a ItemId, event: AuditEvent, note: &'a AuditNote, at: Timestamp) -> Self {
        Audit {
            item_id: Some(item_id.as_str()),
            event,
            from_state: None,
            to_state: None,
            reason: note.reason(),
            actor: note.actor(),
            at,
            request_id: note.request_id(),
            attempt_id: note.attempt_id().map(AttemptId::as_str),
        }
    }

    fn states(mut self, from: CredentialState, to: CredentialState) -> Self {
        self.from_state = Some(from.as_str());
        self.to_state = Some(to.as_str());
        self
    }

    async fn insert(self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO audit (item_id, event, from_state, to_state, reason, actor, at, \
             request_id, attempt_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(self.item_id)
        .bind(self.event.as_str())
        .bind(self.from_state)
        .bind(self.to_state)
        .bind(self.reason)
        .bind(self.actor)
        .bind(self.at.unix_millis())
        .bind(self.request_id)
        .bind(self.attempt_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

impl SqlVault {
    async fn load_item(
        &self,
        conn: &mut AnyConnection,
        item_id: &ItemId,
    ) -> Result<ItemRecord, ReadError> {
        let sql = format!(
            "SELECT {ITEM_COLS} FROM items WHERE item_id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(&sql)
            .bind(item_id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| ReadError::NotFound(item_id.clone()))?;
        Ok(item_from_row(&row)?)
    }

    /// The attempt row with its stashed envelope, if any.
    async fn load_attempt(
        &self,
        conn: &mut AnyConnection,
        attempt_id: &AttemptId,
    ) -> Result<(AttemptRecord, Option<Envelope>), ReadError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLS}, stashed_envelope FROM attempts WHERE attempt_id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(&sql)
            .bind(attempt_id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| ReadError::AttemptNotFound(attempt_id.clone()))?;
        let record = attempt_from_row(&row)?;
        let c = Cols {
            row: &row,
            table: "attempts",
        };
        let stash = match c.opt_string("stashed_envelope")? {
            None => None,
            Some(text) => Some(Envelope::from_text(&text).map_err(|_| {
                MalformedRow::new(
                    "attempts",
                    "stashed_envelope",
                    "is not a well-formed envelope",
                )
            })?),
        };
        if stash.as_ref().map(Envelope::kek_version) != record.stashed_kek_version {
            return Err(MalformedRow::new(
                "attempts",
                "stashed_kek_version",
                "does not match the stashed envelope",
            )
            .into());
        }
        Ok((record, stash))
    }

    fn seal_item(
        &self,
        item_id: &ItemId,
        user_id: &UserId,
        version: u64,
        token: &AccessToken,
    ) -> Result<Envelope, WriteError> {
        let context = item_context(item_id, user_id, version)
            .map_err(|e| WriteError::Seal(EnvelopeError::Context(e)))?;
        self.cipher
            .seal(token.expose_secret().as_bytes(), &context)
            .map_err(WriteError::Seal)
    }

    fn open_stash(
        &self,
        item: &ItemRecord,
        attempt_id: &AttemptId,
        stash: &Envelope,
    ) -> Result<AccessToken, WriteError> {
        let context = attempt_context(&item.item_id, &item.user_id, attempt_id)
            .map_err(|e| WriteError::Open(EnvelopeError::Context(e)))?;
        let plaintext = self
            .cipher
            .open_str(stash, &context)
            .map_err(WriteError::Open)?;
        AccessToken::new(secrecy::ExposeSecret::expose_secret(&plaintext).to_owned())
            .map_err(|_| WriteError::NotAnAccessToken)
    }

    async fn list_items(
        &self,
        condition: &str,
        value: i64,
        text_value: Option<&str>,
        after: Option<&ItemId>,
        limit: u32,
    ) -> Result<Vec<ItemRecord>, ReadError> {
        if limit == 0 {
            return Err(InvalidInput::OutOfRange("limit").into());
        }
        let sql = format!(
            "SELECT {ITEM_COLS} FROM items WHERE {condition} AND item_id > $2 \
             ORDER BY item_id LIMIT $3"
        );
        let query = sqlx::query(&sql);
        let query = match text_value {
            Some(text) => query.bind(text),
            None => query.bind(value),
        };
        let rows = query
            .bind(after.map_or("", ItemId::as_str))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| item_from_row(r).map_err(ReadError::from))
            .collect()
    }

    async fn rewrap_items(
        &self,
        primary: KeyVersion,
        after: &str,
        limit: u32,
        batch: &mut RewrapBatch,
    ) -> Result<bool, RewrapError> {
        let rows = sqlx::query(
            "SELECT item_id, token_version, kek_version, envelope FROM items \
             WHERE item_id > $1 AND kek_version <> $2 ORDER BY item_id LIMIT $3",
        )
        .bind(after)
        .bind(kek_i64(primary))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut updates = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in &rows {
            let c = Cols {
                row,
                table: "items",
            };
            let item_id: ItemId = c.parse("item_id")?;
            last = Some(item_id.clone());
            let version = c.i64("token_version")?;
            let old_kek = c.i64("kek_version")?;
            let rewrapped = Envelope::from_text(&c.string("envelope")?)
                .map_err(EnvelopeError::Malformed)
                .and_then(|e| self.cipher.rewrap(&e));
            match rewrapped {
                Ok(envelope) => updates.push((item_id, version, old_kek, envelope)),
                Err(error) => batch.failed.push(RewrapFailure {
                    row: RewrapRow::Item(item_id),
                    error,
                }),
            }
        }
        if !updates.is_empty() {
            let mut tx = self.begin_write().await?;
            // One multi-row compare-and-swap UPDATE per chunk: the per-statement cost of the
            // driver dominates a single-row update, so batching is what makes a million-row
            // pass fast. RETURNING names the rows that matched; the others lost to a
            // concurrent write and are skipped.
            for chunk in updates.chunks(REWRAP_CHUNK) {
                rewrap_item_chunk(&mut tx, chunk, batch).await?;
            }
            tx.commit().await?;
        }
        let full = rows.len() == usize::try_from(limit).unwrap_or(usize::MAX);
        batch.next_cursor = Some(match (full, last) {
            (true, Some(last)) => RewrapCursor {
                phase: RewrapPhase::Items,
                after: last.as_str().to_owned(),
            },
            _ => RewrapCursor {
                phase: RewrapPhase::Attempts,
                after: String::new(),
            },
        });
        Ok(full)
    }

    async fn rewrap_attempts(
        &self,
        primary: KeyVersion,
        after: &str,
        limit: u32,
        batch: &mut RewrapBatch,
    ) -> Result<(), RewrapError> {
        let rows = sqlx::query(
            "SELECT attempt_id, stashed_kek_version, stashed_envelope FROM attempts \
             WHERE attempt_id > $1 AND stashed_envelope IS NOT NULL \
             AND stashed_kek_version <> $2 ORDER BY attempt_id LIMIT $3",
        )
        .bind(after)
        .bind(kek_i64(primary))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut updates = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in &rows {
            let c = Cols {
                row,
                table: "attempts",
            };
            let attempt_id: AttemptId = c.parse("attempt_id")?;
            last = Some(attempt_id.clone());
            let old_kek = c.i64("stashed_kek_version")?;
            let old_text = c.string("stashed_envelope")?;
            let rewrapped = Envelope::from_text(&old_text)
                .map_err(EnvelopeError::Malformed)
                .and_then(|e| self.cipher.rewrap(&e));
            match rewrapped {
                Ok(envelope) => updates.push((attempt_id, old_kek, old_text, envelope)),
                Err(error) => batch.failed.push(RewrapFailure {
                    row: RewrapRow::Attempt(attempt_id),
                    error,
                }),
            }
        }
        if !updates.is_empty() {
            let mut tx = self.begin_write().await?;
            for (attempt_id, old_kek, old_text, envelope) in updates {
                let done = sqlx::query(
                    "UPDATE attempts SET stashed_envelope = $1, stashed_kek_version = $2 \
                     WHERE attempt_id = $3 AND stashed_kek_version = $4 AND stashed_envelope = $5",
                )
                .bind(envelope.to_text())
                .bind(kek_i64(envelope.kek_version()))
                .bind(attempt_id.as_str())
                .bind(old_kek)
                .bind(old_text)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 1 {
                    batch.rewrapped += 1;
                } else {
                    batch.skipped += 1;
                }
            }
            tx.commit().await?;
        }
        let full = rows.len() == usize::try_from(limit).unwrap_or(usize::MAX);
        batch.next_cursor = match (full, last) {
            (true, Some(last)) => Some(RewrapCursor {
                phase: RewrapPhase::Attempts,
                after: last.as_str().to_owned(),
            }),
            _ => None,
        };
        Ok(())
    }
}

/// One multi-row compare-and-swap `UPDATE` of rewrapped Item envelopes:
/// (item id, token version, old KEK version, new envelope).
async fn rewrap_item_chunk(
    conn: &mut AnyConnection,
    chunk: &[(ItemId, i64, i64, Envelope)],
    batch: &mut RewrapBatch,
) -> Result<(), RewrapError> {
    let mut sql = String::from("WITH v (item_id, version, old_kek, envelope, kek) AS (VALUES ");
    for i in 0..chunk.len() {
        let p = i * 5;
        if i > 0 {
            sql.push_str(", ");
        }
        // Writing to a String cannot fail.
        let _ = write!(
            sql,
            "(${}, ${}, ${}, ${}, ${})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5
        );
    }
    sql.push_str(
        ") UPDATE items SET envelope = v.envelope, kek_version = v.kek FROM v \
             WHERE items.item_id = v.item_id AND items.token_version = v.version \
             AND items.kek_version = v.old_kek RETURNING items.item_id",
    );
    let texts: Vec<String> = chunk.iter().map(|(_, _, _, e)| e.to_text()).collect();
    let mut query = sqlx::query(&sql);
    for ((item_id, version, old_kek, envelope), text) in chunk.iter().zip(&texts) {
        query = query
            .bind(item_id.as_str())
            .bind(*version)
            .bind(*old_kek)
            .bind(text.as_str())
            .bind(kek_i64(envelope.kek_version()));
    }
    let returned = query.fetch_all(&mut *conn).await?;
    let mut moved = std::collections::HashSet::with_capacity(returned.len());
    for row in &returned {
        let c = Cols {
            row,
            table: "items",
        };
        moved.insert(c.string("item_id")?);
    }
    for (item_id, ..) in chunk {
        if moved.contains(item_id.as_str()) {
            batch.rewrapped += 1;
            batch.changed_items.push(item_id.clone());
        } else {
            batch.skipped += 1;
        }
    }
    Ok(())
}

#[async_trait]
impl Vault for SqlVault {
    fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    async fn insert_item(
        &self,
        item_id: &ItemId,
        user_id: &UserId,
        token: &AccessToken,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        let envelope = self.seal_item(item_id, user_id, 1, token)?;
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO items (item_id, user_id, token_version, envelope, kek_version, \
             credential_state, health_state, lease_epoch, created_at, updated_at) \
             VALUES ($1, $2, 1, $3, $4, $5, $6, 0, $7, $7) ON CONFLICT (item_id) DO NOTHING",
        )
        .bind(item_id.as_str())
        .bind(user_id.as_str())
        .bind(envelope.to_text())
        .bind(kek_i64(envelope.kek_version()))
        .bind(CredentialState::Active.as_str())
        .bind(HealthState::Healthy.as_str())
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(WriteError::AlreadyExists(item_id.clone()));
        }
        let mut audit = Audit::of(item_id, AuditEvent::ItemInserted, note, now);
        audit.to_state = Some(CredentialState::Active.as_str());
        audit.insert(&mut tx).await?;
        tx.commit().await?;
        Ok(ItemRecord {
            item_id: item_id.clone(),
            user_id: user_id.clone(),
            token_version: 1,
            kek_version: envelope.kek_version(),
            credential_state: CredentialState::Active,
            health_state: HealthState::Healthy,
            lease: None,
            lease_epoch: 0,
            created_at: now,
            updated_at: now,
            health_as_of: None,
            health_deadline: None,
            last_attempt_id: None,
        })
    }

    async fn get_sealed(&self, item_id: &ItemId) -> Result<SealedItem, ReadError> {
        #[cfg(feature = "sqlite")]
        if let Some(reader) = &self.reader
            && let Some(found) = reader.get_sealed(item_id)
        {
            return found;
        }
        let row =
            sqlx::query("SELECT user_id, token_version, envelope FROM items WHERE item_id = $1")
                .bind(item_id.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| ReadError::NotFound(item_id.clone()))?;
        let c = Cols {
            row: &row,
            table: "items",
        };
        Ok(SealedItem {
            item_id: item_id.clone(),
            user_id: c.parse("user_id")?,
            token_version: c.u64("token_version")?,
            envelope: c.envelope("envelope")?,
        })
    }

    async fn item(&self, item_id: &ItemId) -> Result<ItemRecord, ReadError> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("SELECT {ITEM_COLS} FROM items WHERE item_id = $1");
        let row = sqlx::query(&sql)
            .bind(item_id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| ReadError::NotFound(item_id.clone()))?;
        Ok(item_from_row(&row)?)
    }

    async fn update_token(
        &self,
        item_id: &ItemId,
        expected_version: u64,
        token: &AccessToken,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        let mut tx = self.begin_write().await?;
        let mut item = self.load_item(&mut tx, item_id).await?;
        check_version(&item, expected_version)?;
        check_state(&item, CredentialState::Active)?;
        check_lease(&item, None, now)?;
        let next = expected_version
            .checked_add(1)
            .ok_or(InvalidInput::OutOfRange("token version"))?;
        let envelope = self.seal_item(item_id, &item.user_id, next, token)?;
        sqlx::query(
            "UPDATE items SET envelope = $1, kek_version = $2, token_version = $3, \
             updated_at = $4 WHERE item_id = $5 AND token_version = $6",
        )
        .bind(envelope.to_text())
        .bind(kek_i64(envelope.kek_version()))
        .bind(to_i64(next, "token version")?)
        .bind(now.unix_millis())
        .bind(item_id.as_str())
        .bind(to_i64(expected_version, "token version")?)
        .execute(&mut *tx)
        .await?;
        Audit::of(item_id, AuditEvent::TokenUpdated, note, now)
            .insert(&mut tx)
            .await?;
        tx.commit().await?;
        item.token_version = next;
        item.kek_version = envelope.kek_version();
        item.updated_at = now;
        Ok(item)
    }

    async fn set_credential_state(
        &self,
        change: StateChange<'_>,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        let mut tx = self.begin_write().await?;
        let mut item = self.load_item(&mut tx, change.item_id).await?;
        check_version(&item, change.expected_version)?;
        check_state(&item, change.from)?;
        check_lease(&item, change.lease, now)?;
        sqlx::query(
            "UPDATE items SET credential_state = $1, updated_at = $2 \
             WHERE item_id = $3 AND token_version = $4 AND credential_state = $5",
        )
        .bind(change.to.as_str())
        .bind(now.unix_millis())
        .bind(change.item_id.as_str())
        .bind(to_i64(change.expected_version, "token version")?)
        .bind(change.from.as_str())
        .execute(&mut *tx)
        .await?;
        Audit::of(
            change.item_id,
            AuditEvent::CredentialState,
            change.note,
            now,
        )
        .states(change.from, change.to)
        .insert(&mut tx)
        .await?;
        tx.commit().await?;
        item.credential_state = change.to;
        item.updated_at = now;
        Ok(item)
    }

    async fn set_health_state(
        &self,
        item_id: &ItemId,
        from: HealthState,
        to: HealthState,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        let mut tx = self.begin_write().await?;
        let mut item = self.load_item(&mut tx, item_id).await?;
        if item.health_state != from {
            return Err(WriteError::StateConflict {
                expected: from.as_str(),
                actual: item.health_state.as_str(),
            });
        }
        // A deadline belongs to `expiring_soon` only.
        sqlx::query(
            "UPDATE items SET health_state = $1, updated_at = $2, \
             health_deadline = CASE WHEN $1 = 'expiring_soon' THEN health_deadline END \
             WHERE item_id = $3 AND health_state = $4",
        )
        .bind(to.as_str())
        .bind(now.unix_millis())
        .bind(item_id.as_str())
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        let mut audit = Audit::of(item_id, AuditEvent::HealthState, note, now);
        audit.from_state = Some(from.as_str());
        audit.to_state = Some(to.as_str());
        audit.insert(&mut tx).await?;
        tx.commit().await?;
        item.health_state = to;
        item.updated_at = now;
        if to != HealthState::ExpiringSoon {
            item.health_deadline = None;
        }
        Ok(item)
    }

    async fn record_health(
        &self,
        update: HealthUpdate<'_>,
        now: Timestamp,
    ) -> Result<HealthWrite, WriteError> {
        let mut tx = self.begin_write().await?;
        let mut item = self.load_item(&mut tx, update.item_id).await?;
        if item
            .health_as_of
            .is_some_and(|stored| update.as_of < stored)
        {
            // An older delivery: the stored health stands; the journal says it was ignored.
            let mut audit = Audit::of(update.item_id, AuditEvent::HealthIgnored, update.note, now);
            audit.from_state = Some(item.health_state.as_str());
            audit.to_state = Some(update.to.as_str());
            audit.insert(&mut tx).await?;
            tx.commit().await?;
            return Ok(HealthWrite::Stale(item));
        }
        if item.health_state != update.from {
            return Err(WriteError::StateConflict {
                expected: update.from.as_str(),
                actual: item.health_state.as_str(),
            });
        }
        let deadline = update
            .deadline
            .filter(|_| update.to == HealthState::ExpiringSoon);
        sqlx::query(
            "UPDATE items SET health_state = $1, health_as_of = $2, health_deadline = $3, \
             updated_at = $4 WHERE item_id = $5 AND health_state = $6",
        )
        .bind(update.to.as_str())
        .bind(update.as_of.unix_millis())
        .bind(deadline.map(Timestamp::unix_millis))
        .bind(now.unix_millis())
        .bind(update.item_id.as_str())
        .bind(update.from.as_str())
        .execute(&mut *tx)
        .await?;
        let mut audit = Audit::of(update.item_id, AuditEvent::HealthState, update.note, now);
        audit.from_state = Some(update.from.as_str());
        audit.to_state = Some(update.to.as_str());
        audit.insert(&mut tx).await?;
        tx.commit().await?;
        item.health_state = update.to;
        item.health_as_of = Some(update.as_of);
        item.health_deadline = deadline;
        item.updated_at = now;
        Ok(HealthWrite::Applied(item))
    }

    async fn save_kek_record(
        &self,
        record: &KekRecord,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<KekRecord, WriteError> {
        let next = record
            .revision
            .checked_add(1)
            .ok_or(InvalidInput::OutOfRange("revision"))?;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT {KEK_COLS} FROM kek_versions WHERE kek_version = $1{}",
            self.for_update()
        );
        let stored = sqlx::query(&sql)
            .bind(kek_i64(record.version))
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(kek_from_row)
            .transpose()?;
        let stored_revision = stored.as_ref().map_or(0, |s| s.revision);
        if stored_revision != record.revision {
            return Err(WriteError::VersionConflict {
                expected: record.revision,
                actual: stored_revision,
            });
        }
        let sql = if record.revision == 0 {
            "INSERT INTO kek_versions (revision, state, compromised, promoted_at, \
             compromised_at, disabled_at, destroyed_at, updated_at, kek_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        } else {
            "UPDATE kek_versions SET revision = $1, state = $2, compromised = $3, \
             promoted_at = $4, compromised_at = $5, disabled_at = $6, destroyed_at = $7, \
             updated_at = $8 WHERE kek_version = $9 AND revision = $10"
        };
        let mut query = sqlx::query(sql)
            .bind(to_i64(next, "revision")?)
            .bind(record.state.as_str())
            .bind(i64::from(record.compromised))
            .bind(record.promoted_at.map(Timestamp::unix_millis))
            .bind(record.compromised_at.map(Timestamp::unix_millis))
            .bind(record.disabled_at.map(Timestamp::unix_millis))
            .bind(record.destroyed_at.map(Timestamp::unix_millis))
            .bind(now.unix_millis())
            .bind(kek_i64(record.version));
        if record.revision != 0 {
            query = query.bind(to_i64(record.revision, "revision")?);
        }
        query.execute(&mut *tx).await?;
        let reason = format!("kek {}: {}", record.version.get(), note.reason());
        let reason = truncate_reason(&reason);
        Audit {
            item_id: None,
            event: AuditEvent::KekState,
            from_state: Some(stored.as_ref().map_or("absent", |s| s.state.as_str())),
            to_state: Some(record.state.as_str()),
            reason,
            actor: note.actor(),
            at: now,
            request_id: note.request_id(),
            attempt_id: None,
        }
        .insert(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(KekRecord {
            revision: next,
            updated_at: now,
            ..record.clone()
        })
    }

    async fn kek_records(&self) -> Result<Vec<KekRecord>, ReadError> {
        let sql = format!("SELECT {KEK_COLS} FROM kek_versions ORDER BY kek_version");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| kek_from_row(r).map_err(ReadError::from))
            .collect()
    }

    async fn acquire_lease(
        &self,
        item_id: &ItemId,
        owner: &LeaseOwner,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, LeaseError> {
        if ttl.is_zero() {
            return Err(InvalidInput::OutOfRange("lease ttl").into());
        }
        let expires_at = now
            .checked_add(ttl)
            .ok_or(InvalidInput::OutOfRange("lease ttl"))?;
        let mut tx = self.begin_write().await?;
        let item = self.load_item(&mut tx, item_id).await?;
        if let Some(held) = &item.lease
            && now < held.expires_at
        {
            return Err(LeaseError::Held {
                owner: held.owner.clone(),
                expires_at: held.expires_at,
            });
        }
        let epoch = item
            .lease_epoch
            .checked_add(1)
            .ok_or(InvalidInput::OutOfRange("lease epoch"))?;
        sqlx::query(
            "UPDATE items SET lease_owner = $1, lease_epoch = $2, lease_expires_at = $3 \
             WHERE item_id = $4 AND lease_epoch = $5",
        )
        .bind(owner.as_str())
        .bind(to_i64(epoch, "lease epoch")?)
        .bind(expires_at.unix_millis())
        .bind(item_id.as_str())
        .bind(to_i64(item.lease_epoch, "lease epoch")?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Lease {
            item_id: item_id.clone(),
            owner: owner.clone(),
            epoch,
            expires_at,
        })
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, LeaseError> {
        if ttl.is_zero() {
            return Err(InvalidInput::OutOfRange("lease ttl").into());
        }
        let expires_at = now
            .checked_add(ttl)
            .ok_or(InvalidInput::OutOfRange("lease ttl"))?;
        let mut tx = self.begin_write().await?;
        let item = self.load_item(&mut tx, &lease.item_id).await?;
        let held_by_caller = item.lease.as_ref().is_some_and(|h| h.owner == lease.owner);
        if item.lease_epoch != lease.epoch || !held_by_caller {
            return Err(LeaseError::Fenced {
                presented: lease.epoch,
                current: item.lease_epoch,
            });
        }
        sqlx::query(
            "UPDATE items SET lease_expires_at = $1 WHERE item_id = $2 AND lease_epoch = $3",
        )
        .bind(expires_at.unix_millis())
        .bind(lease.item_id.as_str())
        .bind(to_i64(lease.epoch, "lease epoch")?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Lease {
            expires_at,
            ..lease.clone()
        })
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), LeaseError> {
        let mut tx = self.begin_write().await?;
        let item = self.load_item(&mut tx, &lease.item_id).await?;
        if item.lease_epoch != lease.epoch {
            return Err(LeaseError::Fenced {
                presented: lease.epoch,
                current: item.lease_epoch,
            });
        }
        match &item.lease {
            None => return Ok(()),
            Some(held) if held.owner != lease.owner => {
                return Err(LeaseError::Fenced {
                    presented: lease.epoch,
                    current: item.lease_epoch,
                });
            }
            Some(_) => {}
        }
        sqlx::query(
            "UPDATE items SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE item_id = $1 AND lease_epoch = $2",
        )
        .bind(lease.item_id.as_str())
        .bind(to_i64(lease.epoch, "lease epoch")?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn begin_attempt(
        &self,
        begin: BeginAttempt<'_>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        let item_id = &begin.lease.item_id;
        let mut tx = self.begin_write().await?;
        let item = self.load_item(&mut tx, item_id).await?;
        check_lease(&item, Some(begin.lease), now)?;
        check_version(&item, begin.expected_version)?;
        check_state(&item, CredentialState::Active)?;
        let inserted = sqlx::query(
            "INSERT INTO attempts (attempt_id, item_id, from_version, status, reason, actor, \
             lease_epoch, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (attempt_id) DO NOTHING",
        )
        .bind(begin.attempt_id.as_str())
        .bind(item_id.as_str())
        .bind(to_i64(begin.expected_version, "token version")?)
        .bind(AttemptStatus::Intent.as_str())
        .bind(begin.note.reason())
        .bind(begin.note.actor())
        .bind(to_i64(begin.lease.epoch, "lease epoch")?)
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(WriteError::AttemptExists(begin.attempt_id.clone()));
        }
        sqlx::query("UPDATE items SET credential_state = $1, updated_at = $2 WHERE item_id = $3")
            .bind(CredentialState::Intent.as_str())
            .bind(now.unix_millis())
            .bind(item_id.as_str())
            .execute(&mut *tx)
            .await?;
        let mut audit = Audit::of(item_id, AuditEvent::AttemptBegun, begin.note, now)
            .states(CredentialState::Active, CredentialState::Intent);
        audit.attempt_id = Some(begin.attempt_id.as_str());
        audit.insert(&mut tx).await?;
        tx.commit().await?;
        Ok(AttemptRecord {
            attempt_id: begin.attempt_id.clone(),
            item_id: item_id.clone(),
            from_version: begin.expected_version,
            status: AttemptStatus::Intent,
            reason: begin.note.reason().to_owned(),
            actor: begin.note.actor().to_owned(),
            lease_epoch: begin.lease.epoch,
            created_at: now,
            sent_at: None,
            stashed_at: None,
            stashed_kek_version: None,
            request_id: None,
            finished_at: None,
            maybe_applied: false,
        })
    }

    async fn mark_sent(
        &self,
        attempt_id: &AttemptId,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        let mut tx = self.begin_write().await?;
        let (mut attempt, _) = self.load_attempt(&mut tx, attempt_id).await?;
        if attempt.status != AttemptStatus::Intent {
            return Err(WriteError::AttemptConflict {
                attempt_id: attempt_id.clone(),
                expected: AttemptStatus::Intent.as_str(),
                actual: attempt.status.as_str(),
            });
        }
        let item = self.load_item(&mut tx, &attempt.item_id).await?;
        check_lease(&item, Some(lease), now)?;
        if lease.epoch != attempt.lease_epoch {
            return Err(WriteError::Fenced {
                presented: lease.epoch,
                current: attempt.lease_epoch,
            });
        }
        check_version(&item, attempt.from_version)?;
        check_state(&item, CredentialState::Intent)?;
        sqlx::query(
            "UPDATE attempts SET status = $1, sent_at = $2, maybe_applied = 1 \
             WHERE attempt_id = $3",
        )
        .bind(AttemptStatus::Sent.as_str())
        .bind(now.unix_millis())
        .bind(attempt_id.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE items SET credential_state = $1, updated_at = $2 WHERE item_id = $3")
            .bind(CredentialState::InFlight.as_str())
            .bind(now.unix_millis())
            .bind(item.item_id.as_str())
            .execute(&mut *tx)
            .await?;
        Audit {
            item_id: Some(item.item_id.as_str()),
            event: AuditEvent::AttemptSent,
            from_state: Some(CredentialState::Intent.as_str()),
            to_state: Some(CredentialState::InFlight.as_str()),
            reason: &attempt.reason,
            actor: &attempt.actor,
            at: now,
            request_id: None,
            attempt_id: Some(attempt_id.as_str()),
        }
        .insert(&mut tx)
        .await?;
        tx.commit().await?;
        attempt.status = AttemptStatus::Sent;
        attempt.sent_at = Some(now);
        attempt.maybe_applied = true;
        Ok(attempt)
    }

    async fn stash_new_token(
        &self,
        attempt_id: &AttemptId,
        token: &AccessToken,
        request_id: Option<&str>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        if let Some(request_id) = request_id {
            // Same rules as audit text: the request id is stored in clear.
            AuditNote::new("-", "-")?.with_request_id(request_id)?;
        }
        let mut tx = self.begin_write().await?;
        let (mut attempt, stash) = self.load_attempt(&mut tx, attempt_id).await?;
        if attempt.status == AttemptStatus::Committed {
            return Err(WriteError::AttemptConflict {
                attempt_id: attempt_id.clone(),
                expected: "open",
                actual: attempt.status.as_str(),
            });
        }
        let item = self.load_item(&mut tx, &attempt.item_id).await?;
        if let Some(stash) = stash {
            // A retried stash: the same token is a no-op, a different one is refused.
            let stored = self.open_stash(&item, attempt_id, &stash)?;
            return if stored == *token {
                Ok(attempt)
            } else {
                Err(WriteError::StashConflict(attempt_id.clone()))
            };
        }
        let context = attempt_context(&item.item_id, &item.user_id, attempt_id)
            .map_err(|e| WriteError::Seal(EnvelopeError::Context(e)))?;
        let envelope = self
            .cipher
            .seal(token.expose_secret().as_bytes(), &context)
            .map_err(WriteError::Seal)?;
        // Unconditional: a closed attempt is reopened, since a live token now belongs to it.
        sqlx::query(
            "UPDATE attempts SET stashed_envelope = $1, stashed_kek_version = $2, \
             stashed_at = $3, request_id = COALESCE($4, request_id), status = $5, \
             finished_at = NULL, maybe_applied = 1 WHERE attempt_id = $6",
        )
        .bind(envelope.to_text())
        .bind(kek_i64(envelope.kek_version()))
        .bind(now.unix_millis())
        .bind(request_id)
        .bind(AttemptStatus::Stashed.as_str())
        .bind(attempt_id.as_str())
        .execute(&mut *tx)
        .await?;
        Audit {
            item_id: Some(item.item_id.as_str()),
            event: AuditEvent::TokenStashed,
            from_state: None,
            to_state: None,
            reason: &attempt.reason,
            actor: &attempt.actor,
            at: now,
            request_id,
            attempt_id: Some(attempt_id.as_str()),
        }
        .insert(&mut tx)
        .await?;
        tx.commit().await?;
        attempt.status = AttemptStatus::Stashed;
        attempt.stashed_at = Some(now);
        attempt.stashed_kek_version = Some(envelope.kek_version());
        if let Some(request_id) = request_id {
            attempt.request_id = Some(request_id.to_owned());
        }
        attempt.finished_at = None;
        attempt.maybe_applied = true;
        Ok(attempt)
    }

    async fn promote_stashed(
        &self,
        promote: Promote<'_>,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        let mut tx = self.begin_write().await?;
        let (attempt, stash) = self.load_attempt(&mut tx, promote.attempt_id).await?;
        let Some(stash) = stash else {
            return Err(WriteError::NothingStashed(promote.attempt_id.clone()));
        };
        let mut item = self.load_item(&mut tx, &attempt.item_id).await?;
        check_version(&item, promote.expected_version)?;
        if attempt.from_version != item.token_version {
            return Err(WriteError::VersionConflict {
                expected: attempt.from_version,
                actual: item.token_version,
            });
        }
        check_lease(&item, promote.lease, now)?;
        let token = self.open_stash(&item, promote.attempt_id, &stash)?;
        let next = item
            .token_version
            .checked_add(1)
            .ok_or(InvalidInput::OutOfRange("token version"))?;
        let envelope = self.seal_item(&item.item_id, &item.user_id, next, &token)?;
        drop(token);
        sqlx::query(
            "UPDATE items SET envelope = $1, kek_version = $2, token_version = $3, \
             credential_state = $4, updated_at = $5, last_attempt_id = $8 \
             WHERE item_id = $6 AND token_version = $7",
        )
        .bind(envelope.to_text())
        .bind(kek_i64(envelope.kek_version()))
        .bind(to_i64(next, "token version")?)
        .bind(promote.to.as_str())
        .bind(now.unix_millis())
        .bind(item.item_id.as_str())
        .bind(to_i64(item.token_version, "token version")?)
        .bind(promote.attempt_id.as_str())
        .execute(&mut *tx)
        .await?;
        // The stash is dropped: the token now lives only in the Item's row.
        sqlx::query(
            "UPDATE attempts SET status = $1, finished_at = $2, stashed_envelope = NULL, \
             stashed_kek_version = NULL WHERE attempt_id = $3",
        )
        .bind(AttemptStatus::Committed.as_str())
        .bind(now.unix_millis())
        .bind(promote.attempt_id.as_str())
        .execute(&mut *tx)
        .await?;
        let mut audit = Audit::of(&item.item_id, AuditEvent::TokenPromoted, promote.note, now)
            .states(item.credential_state, promote.to);
        audit.attempt_id = Some(promote.attempt_id.as_str());
        if audit.request_id.is_none() {
            audit.request_id = attempt.request_id.as_deref();
        }
        audit.insert(&mut tx).await?;
        tx.commit().await?;
        item.token_version = next;
        item.kek_version = envelope.kek_version();
        item.credential_state = promote.to;
        item.updated_at = now;
        item.last_attempt_id = Some(promote.attempt_id.clone());
        Ok(item)
    }

    async fn finish_attempt(
        &self,
        finish: FinishAttempt<'_>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        if !finish.status.is_closed() || finish.status == AttemptStatus::Committed {
            return Err(InvalidInput::UnknownValue {
                kind: "closing attempt status (not_sent, failed, not_applied or abandoned)",
            }
            .into());
        }
        let mut tx = self.begin_write().await?;
        let (mut attempt, stash) = self.load_attempt(&mut tx, finish.attempt_id).await?;
        if attempt.status.is_closed() {
            return Err(WriteError::AttemptConflict {
                attempt_id: finish.attempt_id.clone(),
                expected: "open",
                actual: attempt.status.as_str(),
            });
        }
        if stash.is_some() {
            // Closing would drop a live token: promote it instead.
            return Err(WriteError::AttemptConflict {
                attempt_id: finish.attempt_id.clone(),
                expected: "without a stashed token",
                actual: attempt.status.as_str(),
            });
        }
        let item = self.load_item(&mut tx, &attempt.item_id).await?;
        check_version(&item, finish.expected_version)?;
        check_state(&item, finish.from)?;
        check_lease(&item, finish.lease, now)?;
        // A definite "not applied" clears the flag; an abandoned attempt keeps it (its outcome
        // was never learnt).
        let maybe_applied = attempt.maybe_applied && finish.status == AttemptStatus::Abandoned;
        sqlx::query(
            "UPDATE attempts SET status = $1, finished_at = $2, maybe_applied = $3 \
             WHERE attempt_id = $4",
        )
        .bind(finish.status.as_str())
        .bind(now.unix_millis())
        .bind(i64::from(maybe_applied))
        .bind(finish.attempt_id.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE items SET credential_state = $1, updated_at = $2 WHERE item_id = $3")
            .bind(finish.to.as_str())
            .bind(now.unix_millis())
            .bind(item.item_id.as_str())
            .execute(&mut *tx)
            .await?;
        let mut audit = Audit::of(&item.item_id, AuditEvent::AttemptClosed, finish.note, now)
            .states(finish.from, finish.to);
        audit.attempt_id = Some(finish.attempt_id.as_str());
        audit.insert(&mut tx).await?;
        tx.commit().await?;
        attempt.status = finish.status;
        attempt.finished_at = Some(now);
        attempt.maybe_applied = maybe_applied;
        Ok(attempt)
    }

    async fn attempt(&self, attempt_id: &AttemptId) -> Result<AttemptRecord, ReadError> {
        let sql = format!("SELECT {ATTEMPT_COLS} FROM attempts WHERE attempt_id = $1");
        let row = sqlx::query(&sql)
            .bind(attempt_id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ReadError::AttemptNotFound(attempt_id.clone()))?;
        Ok(attempt_from_row(&row)?)
    }

    async fn open_attempts(&self) -> Result<Vec<AttemptRecord>, ReadError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLS} FROM attempts WHERE finished_at IS NULL \
             ORDER BY created_at, attempt_id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| attempt_from_row(r).map_err(ReadError::from))
            .collect()
    }

    async fn list_by_kek_version(
        &self,
        version: KeyVersion,
        after: Option<&ItemId>,
        limit: u32,
    ) -> Result<Vec<ItemRecord>, ReadError> {
        self.list_items("kek_version = $1", kek_i64(version), None, after, limit)
            .await
    }

    async fn count_by_kek_version(&self) -> Result<Vec<(KeyVersion, u64)>, ReadError> {
        let rows = sqlx::query(
            "SELECT kek_version, COUNT(*) AS n FROM items GROUP BY kek_version \
             ORDER BY kek_version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let c = Cols {
                    row,
                    table: "items",
                };
                Ok((c.kek("kek_version")?, c.u64("n")?))
            })
            .collect()
    }

    async fn envelopes_under(&self, version: KeyVersion) -> Result<u64, ReadError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM items WHERE kek_version = $1) AS items, \
             (SELECT COUNT(*) FROM attempts WHERE stashed_kek_version = $1) AS stashes",
        )
        .bind(kek_i64(version))
        .fetch_one(&self.pool)
        .await?;
        let c = Cols {
            row: &row,
            table: "items",
        };
        Ok(c.u64("items")?.saturating_add(c.u64("stashes")?))
    }

    async fn list_by_state(
        &self,
        filter: StateFilter,
        after: Option<&ItemId>,
        limit: u32,
    ) -> Result<Vec<ItemRecord>, ReadError> {
        match filter {
            StateFilter::Credential(state) => {
                self.list_items(
                    "credential_state = $1",
                    0,
                    Some(state.as_str()),
                    after,
                    limit,
                )
                .await
            }
            StateFilter::Health(state) => {
                self.list_items("health_state = $1", 0, Some(state.as_str()), after, limit)
                    .await
            }
        }
    }

    async fn rewrap_batch(
        &self,
        after: Option<&RewrapCursor>,
        limit: u32,
        now: Timestamp,
    ) -> Result<RewrapBatch, RewrapError> {
        if limit == 0 {
            return Err(InvalidInput::OutOfRange("limit").into());
        }
        let primary = self
            .cipher
            .keyring()
            .primary_version()
            .ok_or(RewrapError::NoPrimaryKey)?;
        let mut batch = RewrapBatch {
            rewrapped: 0,
            skipped: 0,
            failed: Vec::new(),
            changed_items: Vec::new(),
            next_cursor: None,
        };
        let (phase, after) = match after {
            None => (RewrapPhase::Items, ""),
            Some(cursor) => (cursor.phase, cursor.after.as_str()),
        };
        match phase {
            RewrapPhase::Items => {
                let full = self.rewrap_items(primary, after, limit, &mut batch).await?;
                if !full {
                    // The Items are done; spend what is left of the batch on the stashes.
                    let used =
                        u32::try_from(batch.rewrapped + batch.skipped + batch.failed.len() as u64)
                            .unwrap_or(limit);
                    let left = limit.saturating_sub(used).max(1);
                    self.rewrap_attempts(primary, "", left, &mut batch).await?;
                }
            }
            RewrapPhase::Attempts => {
                self.rewrap_attempts(primary, after, limit, &mut batch)
                    .await?;
            }
        }
        if batch.rewrapped > 0 {
            let reason = format!("rewrapped {} envelopes to {primary}", batch.rewrapped);
            Audit {
                item_id: None,
                event: AuditEvent::Rewrapped,
                from_state: None,
                to_state: None,
                reason: &reason,
                actor: "tokenward-vault",
                at: now,
                request_id: None,
                attempt_id: None,
            }
            .insert(&mut *self.pool.acquire().await?)
            .await?;
        }
        Ok(batch)
    }

    async fn audit(&self, item_id: &ItemId) -> Result<Vec<AuditRecord>, ReadError> {
        let sql = format!("SELECT {AUDIT_COLS} FROM audit WHERE item_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql)
            .bind(item_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| audit_from_row(r).map_err(ReadError::from))
            .collect()
    }

    async fn audit_since(
        &self,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ReadError> {
        if limit == 0 {
            return Err(InvalidInput::OutOfRange("limit").into());
        }
        let sql = format!("SELECT {AUDIT_COLS} FROM audit WHERE at >= $1 ORDER BY id LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(since.unix_millis())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| audit_from_row(r).map_err(ReadError::from))
            .collect()
    }

    async fn save_rewrap_job(
        &self,
        job: &RewrapJobRecord,
        now: Timestamp,
    ) -> Result<RewrapJobRecord, WriteError> {
        job.check()?;
        let next = job
            .revision
            .checked_add(1)
            .ok_or(InvalidInput::OutOfRange("revision"))?;
        // One statement either way, so the compare-and-swap is atomic on both databases; a
        // new job that lost the race to another runner's insert does nothing and conflicts.
        let sql = if job.revision == 0 {
            "INSERT INTO rewrap_jobs (revision, state, reason, cursor, target_kek_version, \
             planned, rewrapped, skipped, failed, batches, rounds, finished_at, updated_at, \
             job_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (job_id) DO NOTHING"
        } else {
            "UPDATE rewrap_jobs SET revision = $1, state = $2, reason = $3, cursor = $4, \
             target_kek_version = $5, planned = $6, rewrapped = $7, skipped = $8, failed = $9, \
             batches = $10, rounds = $11, finished_at = $12, updated_at = $13 \
             WHERE job_id = $14 AND revision = $15"
        };
        let mut query = sqlx::query(sql)
            .bind(to_i64(next, "revision")?)
            .bind(job.state.as_str())
            .bind(job.reason.clone())
            .bind(job.cursor.clone())
            .bind(kek_i64(job.target_kek_version))
            .bind(to_i64(job.planned, "planned")?)
            .bind(to_i64(job.rewrapped, "rewrapped")?)
            .bind(to_i64(job.skipped, "skipped")?)
            .bind(to_i64(job.failed, "failed")?)
            .bind(to_i64(job.batches, "batches")?)
            .bind(to_i64(job.rounds, "rounds")?)
            .bind(job.finished_at.map(Timestamp::unix_millis))
            .bind(now.unix_millis())
            .bind(job.job_id.as_str());
        if job.revision != 0 {
            query = query.bind(to_i64(job.revision, "revision")?);
        }
        let written = query.execute(&self.pool).await?.rows_affected();
        if written == 0 {
            let actual = self
                .rewrap_job(&job.job_id)
                .await?
                .map_or(0, |stored| stored.revision);
            return Err(WriteError::VersionConflict {
                expected: job.revision,
                actual,
            });
        }
        Ok(RewrapJobRecord {
            revision: next,
            updated_at: now,
            ..job.clone()
        })
    }

    async fn rewrap_job(&self, job_id: &JobId) -> Result<Option<RewrapJobRecord>, ReadError> {
        let sql = format!("SELECT {JOB_COLS} FROM rewrap_jobs WHERE job_id = $1");
        let row = sqlx::query(&sql)
            .bind(job_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(job_from_row).transpose()?)
    }

    async fn unfinished_rewrap_jobs(&self) -> Result<Vec<RewrapJobRecord>, ReadError> {
        let sql = format!(
            "SELECT {JOB_COLS} FROM rewrap_jobs WHERE finished_at IS NULL \
             ORDER BY updated_at, job_id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| job_from_row(r).map_err(ReadError::from))
            .collect()
    }

    async fn erase_user(
        &self,
        user_id: &UserId,
        actor: &str,
        now: Timestamp,
    ) -> Result<Erasure, WriteError> {
        let note = AuditNote::new(actor, "user erased")?;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT item_id FROM items WHERE user_id = $1 ORDER BY item_id{}",
            self.for_update()
        );
        let rows = sqlx::query(&sql)
            .bind(user_id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let items = rows
            .iter()
            .map(|row| {
                Cols {
                    row,
                    table: "items",
                }
                .parse::<ItemId>("item_id")
            })
            .collect::<Result<Vec<_>, _>>()?;
        if items.is_empty() {
            return Ok(Erasure { items, attempts: 0 });
        }
        let mut attempts = 0;
        for item_id in &items {
            attempts += sqlx::query("DELETE FROM attempts WHERE item_id = $1")
                .bind(item_id.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // The journal keeps what happened and when, not to whom.
            sqlx::query(
                "UPDATE audit SET item_id = NULL, reason = '[erased]', request_id = NULL, \
                 attempt_id = NULL WHERE item_id = $1",
            )
            .bind(item_id.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM items WHERE item_id = $1")
                .bind(item_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let reason = format!("erased a user: {} items, {attempts} attempts", items.len());
        Audit {
            item_id: None,
            event: AuditEvent::UserErased,
            from_state: None,
            to_state: None,
            reason: &reason,
            actor: note.actor(),
            at: now,
            request_id: None,
            attempt_id: None,
        }
        .insert(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(Erasure { items, attempts })
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::sync::Arc;

    use tokenward_envelope::{Cipher, Keyring};
    use tokenward_redact::AccessToken;

    use super::SqlVault;
    use crate::{AuditNote, ItemId, ReadError, Timestamp, UserId, Vault};

    /// The in-memory store's reads are served by the synchronous reader, not the sqlx fallback.
    #[tokio::test]
    async fn in_memory_reads_take_the_synchronous_path() {
        let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
        let vault = SqlVault::sqlite_memory(cipher).await.unwrap();
        let reader = vault.reader.as_ref().unwrap();
        let item = ItemId::new("item-1").unwrap();
        assert!(matches!(
            reader.get_sealed(&item),
            Some(Err(ReadError::NotFound(_)))
        ));
        let token = AccessToken::new("access-sandbox-00000000-0000-4000-8000-000000000001");
        vault
            .insert_item(
                &item,
                &UserId::new("user-1").unwrap(),
                &token.unwrap(),
                &AuditNote::new("test", "exchange").unwrap(),
                Timestamp::from_unix_millis(0),
            )
            .await
            .unwrap();
        let sealed = reader.get_sealed(&item).unwrap().unwrap();
        assert_eq!(sealed.token_version, 1);

        // A write not yet committed is never read: the reader gives way (`None`, the caller
        // then waits on the pool), and reads the write once it commits.
        let mut tx = vault.pool().begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("UPDATE items SET token_version = 2 WHERE item_id = $1")
            .bind(item.as_str())
            .execute(&mut *tx)
            .await
            .unwrap();
        assert!(reader.get_sealed(&item).is_none());
        tx.commit().await.unwrap();
        let sealed = reader.get_sealed(&item).unwrap().unwrap();
        assert_eq!(sealed.token_version, 2);
    }
}
