//! The `Vault` trait, what it reads, and the contexts bound into every envelope.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokenward_envelope::{Cipher, Context, Envelope, KeyVersion};
use tokenward_redact::AccessToken;

use crate::error::{LeaseError, ReadError, RewrapError, WriteError};
use crate::types::{
    AttemptId, AttemptRecord, AuditNote, AuditRecord, BeginAttempt, Erasure, FinishAttempt,
    HealthUpdate, HealthWrite, ItemId, ItemRecord, JobId, KekRecord, Lease, LeaseOwner, Promote,
    RewrapBatch, RewrapCursor, RewrapJobRecord, StateChange, StateFilter, Timestamp, UserId,
};

/// The context purpose of an Item's current token.
pub const ITEM_PURPOSE: &str = "tokenward.vault.item.v1";
/// The context purpose of a token stashed for a rotation attempt.
pub const ATTEMPT_PURPOSE: &str = "tokenward.vault.attempt.v1";

/// An Item's current token as stored: the envelope and what its context binds. What a cache
/// holds (ciphertext only).
///
/// `Debug` shows the ids and version, never the envelope.
#[derive(Clone)]
pub struct SealedItem {
    /// The Item.
    pub item_id: ItemId,
    /// Its owner (bound into the context).
    pub user_id: UserId,
    /// The token version (bound into the context).
    pub token_version: u64,
    /// The sealed token.
    pub envelope: Envelope,
}

impl fmt::Debug for SealedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedItem")
            .field("item_id", &self.item_id)
            .field("user_id", &self.user_id)
            .field("token_version", &self.token_version)
            .field("kek_version", &self.envelope.kek_version())
            .finish_non_exhaustive()
    }
}

/// An opened token and its version. `Debug` is redacted (the token prints a placeholder).
#[derive(Debug)]
#[non_exhaustive]
pub struct StoredToken {
    /// The access token.
    pub token: AccessToken,
    /// Its version: pass it back as `expected_version` to compare-and-swap.
    pub version: u64,
}

/// The context an Item's current envelope is sealed with: purpose, item id, user id and token
/// version. An envelope copied to another row (another Item, user or version) does not open.
///
/// # Errors
///
/// Never for ids the vault accepted (their lengths are within the context limits).
pub fn item_context(
    item_id: &ItemId,
    user_id: &UserId,
    version: u64,
) -> Result<Context, tokenward_envelope::ContextError> {
    Context::new()
        .with("purpose", ITEM_PURPOSE)?
        .with("item_id", item_id.as_str())?
        .with("user_id", user_id.as_str())?
        .with("token_version", &version.to_string())
}

/// The context a stashed attempt token is sealed with: purpose, item id, user id, attempt id.
///
/// # Errors
///
/// Never for ids the vault accepted.
pub fn attempt_context(
    item_id: &ItemId,
    user_id: &UserId,
    attempt_id: &AttemptId,
) -> Result<Context, tokenward_envelope::ContextError> {
    Context::new()
        .with("purpose", ATTEMPT_PURPOSE)?
        .with("item_id", item_id.as_str())?
        .with("user_id", user_id.as_str())?
        .with("attempt_id", attempt_id.as_str())
}

/// Opens a sealed Item with `cipher`.
///
/// # Errors
///
/// [`ReadError::Open`] when the envelope does not open (precise for a disabled or unknown
/// key), [`ReadError::NotAnAccessToken`] when it holds something else.
pub fn open_sealed(cipher: &Cipher, sealed: &SealedItem) -> Result<StoredToken, ReadError> {
    let context = item_context(&sealed.item_id, &sealed.user_id, sealed.token_version)
        .map_err(|e| ReadError::Open(e.into()))?;
    let plaintext = cipher
        .open_str(&sealed.envelope, &context)
        .map_err(ReadError::Open)?;
    let token = AccessToken::new(secrecy::ExposeSecret::expose_secret(&plaintext).to_owned())
        .map_err(|_| ReadError::NotAnAccessToken)?;
    Ok(StoredToken {
        token,
        version: sealed.token_version,
    })
}

/// The encrypted token store: one trait, backends behind features.
///
/// Every write is one transaction and, where it changes a state, writes its audit record in
/// the same transaction. Writes that compete are compare-and-swap on the token version (and
/// the state), and those that belong to a rotation are fenced by the lease epoch.
#[async_trait]
pub trait Vault: Send + Sync {
    /// The cipher that seals and opens this vault's envelopes.
    fn cipher(&self) -> &Cipher;

    /// Stores a new Item and its first token (version 1), `Active` and `Healthy`.
    ///
    /// # Errors
    ///
    /// [`WriteError::AlreadyExists`], [`WriteError::Seal`], store failures.
    async fn insert_item(
        &self,
        item_id: &ItemId,
        user_id: &UserId,
        token: &AccessToken,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError>;

    /// The current envelope and what its context binds, without opening it.
    async fn get_sealed(&self, item_id: &ItemId) -> Result<SealedItem, ReadError>;

    /// The current token, opened inside the vault.
    ///
    /// # Errors
    ///
    /// [`ReadError::NotFound`]; [`ReadError::Open`] with a precise reason for a disabled or
    /// unknown KEK; [`ReadError::Malformed`] for a bad row.
    async fn get(&self, item_id: &ItemId) -> Result<StoredToken, ReadError> {
        let sealed = self.get_sealed(item_id).await?;
        open_sealed(self.cipher(), &sealed)
    }

    /// The Item's metadata (no token).
    async fn item(&self, item_id: &ItemId) -> Result<ItemRecord, ReadError>;

    /// Replaces the token outside a rotation (compare-and-swap on the version): the new
    /// version is `expected_version + 1`.
    async fn update_token(
        &self,
        item_id: &ItemId,
        expected_version: u64,
        token: &AccessToken,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError>;

    /// Moves the credential state (compare-and-swap on version and state) and writes the
    /// audit record, in one transaction.
    async fn set_credential_state(
        &self,
        change: StateChange<'_>,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError>;

    /// Moves the health state (compare-and-swap on the health state) with its audit record.
    async fn set_health_state(
        &self,
        item_id: &ItemId,
        from: crate::HealthState,
        to: crate::HealthState,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError>;

    /// Applies a health change keyed on the time of the event that caused it, with its audit
    /// record, in one transaction. Out-of-order deliveries never regress health: an update
    /// whose `as_of` is older than the stored `health_as_of` changes nothing, writes a
    /// `health_ignored` audit record and returns [`HealthWrite::Stale`]. Otherwise the state
    /// is compare-and-swapped on `from`, `health_as_of` becomes `as_of` and the deadline is
    /// stored (`expiring_soon` only; cleared otherwise).
    ///
    /// The default implementation returns [`WriteError::Unsupported`].
    ///
    /// # Errors
    ///
    /// [`WriteError::StateConflict`] when the health moved; [`WriteError::NotFound`]; store
    /// failures.
    async fn record_health(
        &self,
        update: HealthUpdate<'_>,
        now: Timestamp,
    ) -> Result<HealthWrite, WriteError> {
        let _ = (update, now);
        Err(WriteError::Unsupported("health records"))
    }

    /// Saves a KEK version's lifecycle record, compare-and-swapped on `record.revision` (0
    /// creates it), with a `kek_state` audit record naming the version and the state before
    /// and after, in one transaction. Returns it as stored (revision + 1, `updated_at = now`).
    ///
    /// The default implementation returns [`WriteError::Unsupported`].
    ///
    /// # Errors
    ///
    /// [`WriteError::VersionConflict`] with the stored revision (0 when none) when it is not
    /// `record.revision`; store failures.
    async fn save_kek_record(
        &self,
        record: &KekRecord,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<KekRecord, WriteError> {
        let _ = (record, note, now);
        Err(WriteError::Unsupported("KEK records"))
    }

    /// Every KEK version's lifecycle record, oldest version first.
    ///
    /// The default implementation returns [`ReadError::Unsupported`].
    ///
    /// # Errors
    ///
    /// Store failures; a malformed row.
    async fn kek_records(&self) -> Result<Vec<KekRecord>, ReadError> {
        Err(ReadError::Unsupported("KEK records"))
    }

    /// Takes the Item's lease for `ttl`: free, released or expired leases can be taken, and
    /// every acquisition gets the next epoch.
    ///
    /// # Errors
    ///
    /// [`LeaseError::Held`] while another live lease exists (the holder's own live lease too:
    /// renew it instead).
    async fn acquire_lease(
        &self,
        item_id: &ItemId,
        owner: &LeaseOwner,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, LeaseError>;

    /// Extends a lease to `now + ttl`, keeping its epoch. A lease that expired but was not
    /// taken over can still be renewed (no one else could have written under it).
    ///
    /// # Errors
    ///
    /// [`LeaseError::Fenced`] when the epoch moved or the lease was released.
    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, LeaseError>;

    /// Releases a lease (idempotent for the same epoch); the next acquisition gets the next
    /// epoch.
    async fn release_lease(&self, lease: &Lease) -> Result<(), LeaseError>;

    /// Journals the intent of a rotation (write-ahead): the attempt row, the Item moved
    /// `Active → Intent`, the audit record, in one transaction, fenced by the lease.
    async fn begin_attempt(
        &self,
        begin: BeginAttempt<'_>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError>;

    /// Writes the durable sent marker (`Intent → InFlight`) before the driver calls Plaid's
    /// invalidate; fenced by the lease.
    async fn mark_sent(
        &self,
        attempt_id: &AttemptId,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError>;

    /// Persists the new token Plaid returned, sealed, keyed by the attempt: unconditionally
    /// (no lease, no version check), so a worker that lost its lease mid-call still records
    /// the token. Writing the same token again is a no-op; a different one is refused.
    async fn stash_new_token(
        &self,
        attempt_id: &AttemptId,
        token: &AccessToken,
        request_id: Option<&str>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError>;

    /// Makes the stashed token current (compare-and-swap: version + 1), closes the attempt as
    /// `Committed`, drops the stash and moves the credential state, with its audit record.
    async fn promote_stashed(
        &self,
        promote: Promote<'_>,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError>;

    /// Closes an attempt without a new token and moves the credential state, in one
    /// transaction.
    async fn finish_attempt(
        &self,
        finish: FinishAttempt<'_>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError>;

    /// One attempt's record.
    async fn attempt(&self, attempt_id: &AttemptId) -> Result<AttemptRecord, ReadError>;

    /// Every attempt not closed, oldest first: what crash recovery looks at.
    async fn open_attempts(&self) -> Result<Vec<AttemptRecord>, ReadError>;

    /// Items whose current envelope is under `version`, ordered by id, after `after`.
    async fn list_by_kek_version(
        &self,
        version: KeyVersion,
        after: Option<&ItemId>,
        limit: u32,
    ) -> Result<Vec<ItemRecord>, ReadError>;

    /// How many Items' current envelopes are under each KEK version, ascending.
    async fn count_by_kek_version(&self) -> Result<Vec<(KeyVersion, u64)>, ReadError>;

    /// How many envelopes (current and stashed) are under `version`: the KEK lifecycle
    /// refuses to disable a version while this is not 0.
    async fn envelopes_under(&self, version: KeyVersion) -> Result<u64, ReadError>;

    /// Items in a credential or health state, ordered by id, after `after`.
    async fn list_by_state(
        &self,
        filter: StateFilter,
        after: Option<&ItemId>,
        limit: u32,
    ) -> Result<Vec<ItemRecord>, ReadError>;

    /// Rewraps up to `limit` envelopes not under the primary KEK (Items' current envelopes,
    /// then stashed attempt tokens) with [`Cipher::rewrap`]: the data ciphertext is unchanged.
    /// Each row is compare-and-swapped, so a concurrent token write wins; the pass resumes
    /// from `after`; a rerun over moved rows is a no-op.
    async fn rewrap_batch(
        &self,
        after: Option<&RewrapCursor>,
        limit: u32,
        now: Timestamp,
    ) -> Result<RewrapBatch, RewrapError>;

    /// Saves a KEK rewrap job's state, compare-and-swapped on `job.revision` (the revision
    /// the caller read; 0 creates the job), and returns it as stored: revision + 1,
    /// `updated_at = now`. Two runners that loaded the same revision cannot both advance the
    /// job: the second save fails.
    ///
    /// # Errors
    ///
    /// [`WriteError::VersionConflict`] with the stored revision (0 when the job does not
    /// exist) when it is not `job.revision`; [`WriteError::InvalidInput`] for a bad state,
    /// reason or cursor, or a counter over `i64::MAX`; store failures.
    async fn save_rewrap_job(
        &self,
        job: &RewrapJobRecord,
        now: Timestamp,
    ) -> Result<RewrapJobRecord, WriteError>;

    /// A rewrap job's saved state, or `None` if it was never saved.
    async fn rewrap_job(&self, job_id: &JobId) -> Result<Option<RewrapJobRecord>, ReadError>;

    /// Every rewrap job without `finished_at`, least recently saved first: what a restarted
    /// process resumes.
    async fn unfinished_rewrap_jobs(&self) -> Result<Vec<RewrapJobRecord>, ReadError>;

    /// The Item's audit journal, oldest first.
    async fn audit(&self, item_id: &ItemId) -> Result<Vec<AuditRecord>, ReadError>;

    /// Audit records at or after `since`, oldest first, at most `limit`.
    async fn audit_since(
        &self,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ReadError>;

    /// Erases a user (GDPR): their Items' envelopes, metadata and attempts are deleted, their
    /// audit records lose the Item id, reason and request id, and one `user_erased` record
    /// without personal data is written. Idempotent: a second call erases nothing and writes
    /// nothing.
    async fn erase_user(
        &self,
        user_id: &UserId,
        actor: &str,
        now: Timestamp,
    ) -> Result<Erasure, WriteError>;
}
