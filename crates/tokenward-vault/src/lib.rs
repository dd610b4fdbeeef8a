//! An encrypted store for Plaid access tokens.
//!
//! `tokenward-vault` keeps each Item's access token sealed with `tokenward-envelope` (never
//! plaintext), with the metadata a rotation needs: the token version, the KEK version
//! (indexed, for rewraps), the credential and health states, a per-Item lease with a fencing
//! epoch, write-ahead records of rotation attempts, and an append-only audit journal that
//! never holds a token.
//!
//! - **One trait, several stores.** [`Vault`] is implemented by [`SqlVault`] on `SQLite` (the
//!   embedded default: a file or memory) or Postgres (many app instances sharing one store),
//!   and by `CachedVault` (feature `redis`), a read-through Redis cache
//!   of *ciphertext* in front of either. Migrations ship with the crate and run on open.
//! - **Reads open inside the vault** and return a [`StoredToken`] holding the secret
//!   [`AccessToken`](tokenward_redact::AccessToken) type and its version.
//! - **Context binding.** Every envelope is sealed with a context holding a purpose, the item
//!   id, the user id and the token version ([`item_context`]); a stashed attempt token binds
//!   the attempt id instead of the version ([`attempt_context`]). An envelope copied to another
//!   row does not open.
//! - **Compare-and-swap writes.** Token and state writes name the version (and state) the
//!   caller saw; a conflicting writer gets [`WriteError::VersionConflict`] or
//!   [`WriteError::StateConflict`]. Writes that belong to a rotation present a [`Lease`] and
//!   fail with [`WriteError::Fenced`] when its epoch is stale. Every write is one transaction,
//!   and every state change writes its audit record in it.
//! - **Write-ahead rotation** (`reference/rotation.md` §6): [`Vault::begin_attempt`] journals
//!   the intent, [`Vault::mark_sent`] the durable sent marker, [`Vault::stash_new_token`]
//!   stores Plaid's new token *unconditionally*, keyed by attempt, and
//!   [`Vault::promote_stashed`] makes it current (compare-and-swap).
//!   [`Vault::open_attempts`] is what crash recovery reads.
//! - **KEK rewrap** in resumable, compare-and-swapped batches ([`Vault::rewrap_batch`]), and
//!   [`Vault::envelopes_under`] so a KEK version still in use is never disabled.
//! - **Rewrap jobs** survive a crash: [`Vault::save_rewrap_job`] stores a job's state, cursor
//!   and counters as plain fields ([`RewrapJobRecord`]), compare-and-swapped on a revision so
//!   two runners cannot both advance one job; [`Vault::rewrap_job`] loads it and
//!   [`Vault::unfinished_rewrap_jobs`] lists what a restarted process resumes.
//! - **Health with its own time**: [`Vault::record_health`] keys every health change on the
//!   event's time, so an out-of-order webhook never regresses an Item's health (an older
//!   delivery is ignored and journalled as `health_ignored`); the `expiring_soon` deadline is
//!   kept with it ([`ItemRecord::health_as_of`], [`ItemRecord::health_deadline`]).
//! - **KEK lifecycle records** ([`Vault::save_kek_record`], [`Vault::kek_records`]): the state
//!   of every KEK version (with the compromised flag and its times), compare-and-swapped on a
//!   revision, one `kek_state` audit record per change, so a KEK playbook continues after a
//!   restart where it stopped.
//! - **Erasure** of a user (GDPR, [`Vault::erase_user`]), idempotent.
//! - **Time is an argument.** Every call whose outcome depends on time takes `now`.
//!
//! # Quick start
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tokenward_envelope::{Cipher, Keyring};
//! use tokenward_redact::AccessToken;
//! use tokenward_vault::{
//!     AuditNote, CredentialState, ItemId, LeaseOwner, SqlVault, StateChange, Timestamp, UserId,
//!     Vault, WriteError,
//! };
//!
//! let cipher = Cipher::new(Arc::new(Keyring::generate()?));
//! let vault = SqlVault::sqlite_memory(cipher).await?;
//! let now = Timestamp::from_unix_millis(1_767_225_600_000);
//!
//! let item = ItemId::new("item-1")?;
//! let user = UserId::new("user-1")?;
//! let token = AccessToken::new("access-sandbox-8ab976e6-64bc-4b38-98f7-731e7a349970")?;
//! let note = AuditNote::new("onboarding", "public token exchanged")?;
//! vault.insert_item(&item, &user, &token, &note, now).await?;
//!
//! // Reads open inside the vault and hand out the secret type.
//! let stored = vault.get(&item).await?;
//! assert_eq!(stored.token, token);
//! assert_eq!(stored.version, 1);
//!
//! // Writes are compare-and-swap; a stale writer gets a precise conflict.
//! let lease = vault.acquire_lease(&item, &LeaseOwner::new("worker-a")?, Duration::from_secs(30), now).await?;
//! let change = StateChange {
//!     item_id: &item,
//!     expected_version: 1,
//!     from: CredentialState::Active,
//!     to: CredentialState::Removing,
//!     lease: Some(&lease),
//!     note: &AuditNote::new("worker-a", "user asked to unlink")?,
//! };
//! vault.set_credential_state(change.clone(), now).await?;
//! let again = vault.set_credential_state(change, now).await;
//! assert!(matches!(again, Err(WriteError::StateConflict { .. })));
//! assert_eq!(vault.audit(&item).await?.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Schema
//!
//! Five tables (the SQL is in `migrations/{sqlite,postgres}/`): `items` (one row per Item:
//! ids, token version, `twe1:` envelope text, KEK version, states, lease, times; indexed by
//! KEK version, user and each state), `attempts` (rotation write-ahead records and stashed
//! tokens), `audit` (the journal), from schema version 2 `rewrap_jobs` (one row per rewrap
//! job: state, cursor, target KEK version, counters, revision, times) and from version 3
//! `kek_versions` (one row per KEK version: lifecycle state, compromised flag, promoted /
//! compromised / disabled / destroyed times, revision). Version 3 also adds the Item's health
//! `as_of` and deadline and its last promoted attempt, the attempts' `maybe_applied` flag, and
//! makes the journal append-only in the database itself: triggers refuse every `DELETE` (and,
//! on Postgres, `TRUNCATE`) of `audit` and every `UPDATE` except the one [`Vault::erase_user`]
//! performs, which clears the Item id, request id and attempt id and sets the reason to
//! `[erased]` while leaving the event, states, actor and time as they were.
//!
//! Migrations are versioned in `tokenward_schema_version` and run in one transaction on open
//! (on Postgres under an advisory lock, so app instances opening at once are safe); an older
//! database upgrades in place, a newer one is refused ([`OpenError::SchemaTooNew`]). Times are
//! milliseconds since the Unix epoch; states are stored as lower-case text and parsed strictly
//! (an unknown value is a [`MalformedRow`]).
//!
//! # Features
//!
//! - `sqlite` (default): [`SqlVault::sqlite_memory`] and [`SqlVault::sqlite_file`]. Writes
//!   and listings go through sqlx; `get` reads through a synchronous, read-only `rusqlite`
//!   connection to the same file (WAL mode) or the same shared-cache in-memory database,
//!   because sqlx's worker-thread hop costs more than the read itself (figures in the README).
//! - `postgres`: `SqlVault::postgres`, `SqlVault::postgres_in_schema` and
//!   `SqlVault::postgres_with` (`PostgresOptions`: schema and pool size, 8 connections per
//!   instance by default, `DEFAULT_POSTGRES_MAX_CONNECTIONS`).
//! - `redis`: `CachedVault` and `CacheConfig`, a read-through cache of ciphertext with a TTL,
//!   invalidated on every write; when Redis is unreachable, reads go to the store. The client
//!   is the `redis` crate's multiplexed tokio connection, built without TLS (`redis://` only:
//!   keep Redis on a private network or loopback).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

#[cfg(feature = "redis")]
mod cache;
mod error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite_reader;
mod types;
mod vault;

#[cfg(feature = "redis")]
pub use cache::{CacheConfig, CacheStats, CachedVault};
pub use error::{
    BackendError, InvalidInput, LeaseError, MalformedRow, OpenError, ReadError, RewrapError,
    WriteError,
};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::{Backend, SCHEMA_VERSION, SqlVault};
#[cfg(feature = "postgres")]
pub use sql::{DEFAULT_POSTGRES_MAX_CONNECTIONS, PostgresOptions};
pub use types::{
    AttemptId, AttemptRecord, AttemptStatus, AuditEvent, AuditNote, AuditRecord, BeginAttempt,
    CredentialState, Erasure, FinishAttempt, HealthState, HealthUpdate, HealthWrite, ItemId,
    ItemRecord, JobId, KekRecord, KekStatus, Lease, LeaseOwner, MAX_ID_LEN, MAX_REASON_LEN,
    Promote, RewrapBatch, RewrapCursor, RewrapFailure, RewrapJobRecord, RewrapRow, StateChange,
    StateFilter, Timestamp, UserId,
};
pub use vault::{
    ATTEMPT_PURPOSE, ITEM_PURPOSE, SealedItem, StoredToken, Vault, attempt_context, item_context,
    open_sealed,
};
