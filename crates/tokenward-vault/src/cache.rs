//! A read-through Redis cache of ciphertext in front of any [`Vault`].
//!
//! The cache holds what [`Vault::get_sealed`] returns: the envelope text, the user id and the
//! token version, under `<prefix>item:<item id>`, with a TTL. Tokens are opened by the vault
//! in the process, never stored in Redis. Every write through the cache that touches an Item
//! replaces its entry, after the store's write, with a tombstone that lives 2 s; fills are
//! `SET … NX`, so a read that fetched the row before the write cannot put the old envelope back
//! (a plain delete would allow that race). Reads in those 2 s go to the store.
//!
//! # Failure
//!
//! Redis is an optimisation: any Redis failure (refused, reset, timeout, error reply, a
//! malformed value) turns into a read from the store, never into an error. After a failure the
//! cache is skipped for [`CacheConfig::retry_after`] (so a dead Redis does not add a connect
//! timeout to every read). Keys whose invalidation failed while Redis was unreachable are
//! remembered and deleted first when it comes back, before the cache serves anything again.
//!
//! # Security
//!
//! Redis sees item ids, user ids, versions and envelopes: ciphertext bound to its row. A
//! cached envelope moved to another Item's key does not open (the context binds the item id
//! from the key). Someone who can write to Redis can at most serve an older envelope of the
//! same Item (a superseded token, which Plaid rejects; callers re-read with
//! [`CachedVault::get_uncached`]) or make reads fail.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Value, cmd};
use tokenward_envelope::{Cipher, Envelope, KeyVersion};
use tokenward_redact::AccessToken;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{LeaseError, OpenError, ReadError, RewrapError, WriteError};
use crate::types::{
    AttemptId, AttemptRecord, AuditNote, AuditRecord, BeginAttempt, Erasure, FinishAttempt,
    HealthState, ItemId, ItemRecord, JobId, Lease, LeaseOwner, Promote, RewrapBatch, RewrapCursor,
    RewrapJobRecord, StateChange, StateFilter, Timestamp, UserId,
};
use crate::vault::{SealedItem, StoredToken, Vault, open_sealed};

/// How the cache connects and how long it keeps entries.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    url: String,
    prefix: String,
    ttl: Duration,
    connect_timeout: Duration,
    timeout: Duration,
    retry_after: Duration,
}

impl CacheConfig {
    /// A cache at `url` (`redis://[:password@]host:port[/db]`; no TLS), with the key prefix
    /// `tokenward:vault:`, a 5-minute TTL, 250 ms connect and command timeouts, and a 1 s pause
    /// after a failure.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        CacheConfig {
            url: url.into(),
            prefix: "tokenward:vault:".to_owned(),
            ttl: Duration::from_secs(300),
            connect_timeout: Duration::from_millis(250),
            timeout: Duration::from_millis(250),
            retry_after: Duration::from_secs(1),
        }
    }

    /// The key prefix (one per application or environment sharing a Redis).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long an entry lives (at least 1 ms).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// The connect timeout and the timeout of each command.
    #[must_use]
    pub fn timeouts(mut self, connect: Duration, command: Duration) -> Self {
        self.connect_timeout = connect;
        self.timeout = command;
        self
    }

    /// How long the cache is skipped after a Redis failure.
    #[must_use]
    pub fn retry_after(mut self, pause: Duration) -> Self {
        self.retry_after = pause;
        self
    }
}

/// Counters of what the cache did, for metrics and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads served from Redis.
    pub hits: u64,
    /// Reads that went to the store because Redis had no entry.
    pub misses: u64,
    /// Reads that went to the store because Redis failed or was paused.
    pub bypassed: u64,
    /// Redis failures (connect, I/O, timeout, error replies, malformed values).
    pub errors: u64,
    /// Invalidations that could not be sent (remembered and retried on reconnect).
    pub deferred_invalidations: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bypassed: AtomicU64,
    errors: AtomicU64,
    deferred: AtomicU64,
}

struct State {
    connection: Option<MultiplexedConnection>,
    paused_until: Option<Instant>,
    /// Keys whose delete failed: deleted before the cache is used again.
    dirty: HashSet<String>,
}

/// A [`Vault`] with a read-through Redis cache of ciphertext in front (feature `redis`).
///
/// Reads ([`Vault::get`], [`Vault::get_sealed`]) try Redis first; every other call goes to
/// the store, and writes that touch an Item delete its key afterwards.
pub struct CachedVault<V> {
    inner: V,
    client: Client,
    config: CacheConfig,
    state: Arc<Mutex<State>>,
    counters: Counters,
}

impl<V> std::fmt::Debug for CachedVault<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedVault")
            // Not the client: its connection info holds the password.
            .field(
                "address",
                &self.client.get_connection_info().addr.to_string(),
            )
            .field("db", &self.client.get_connection_info().redis.db)
            .field("prefix", &self.config.prefix)
            .field("ttl", &self.config.ttl)
            .finish_non_exhaustive()
    }
}

impl<V: Vault> CachedVault<V> {
    /// Puts a cache in front of `inner`. Does not connect yet (the first read does), so an
    /// unreachable Redis never stops the application from starting.
    ///
    /// # Errors
    ///
    /// [`OpenError::Config`] for a URL that is not `redis://…`.
    pub fn new(inner: V, config: CacheConfig) -> Result<Self, OpenError> {
        // TCP only: the crate also takes `rediss://` (TLS, not built) and Unix sockets.
        if !config.url.starts_with("redis://") {
            return Err(OpenError::Config(
                "must start with redis:// (TLS is not supported)",
            ));
        }
        // The parse error is not passed on: it may quote the URL, password included.
        let client = Client::open(config.url.as_str())
            .map_err(|_| OpenError::Config("invalid redis url"))?;
        Ok(CachedVault {
            inner,
            client,
            config,
            state: Arc::new(Mutex::new(State {
                connection: None,
                paused_until: None,
                dirty: HashSet::new(),
            })),
            counters: Counters::default(),
        })
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &V {
        &self.inner
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            hits: load(&self.counters.hits),
            misses: load(&self.counters.misses),
            bypassed: load(&self.counters.bypassed),
            errors: load(&self.counters.errors),
            deferred_invalidations: load(&self.counters.deferred),
        }
    }

    /// The current token read from the store, skipping the cache (after Plaid rejected a
    /// token read through the cache, for example), and refreshes the cache entry.
    ///
    /// # Errors
    ///
    /// As [`Vault::get`].
    pub async fn get_uncached(&self, item_id: &ItemId) -> Result<StoredToken, ReadError> {
        let sealed = self.inner.get_sealed(item_id).await?;
        // Whatever the cache holds is suspect: tombstone it; reads refill it shortly.
        self.invalidate(item_id).await;
        open_sealed(self.inner.cipher(), &sealed)
    }

    /// What a read does after the lookup: a hit is returned, anything else reads the store
    /// (and a plain miss fills the cache).
    async fn resolve(&self, item_id: &ItemId, lookup: Lookup) -> Result<SealedItem, ReadError> {
        match lookup {
            Lookup::Hit(sealed) => {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                Ok(sealed)
            }
            Lookup::Miss => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                let sealed = self.inner.get_sealed(item_id).await?;
                self.fill(&sealed).await;
                Ok(sealed)
            }
            Lookup::Tombstone => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                self.inner.get_sealed(item_id).await
            }
            Lookup::Bypass => {
                self.counters.bypassed.fetch_add(1, Ordering::Relaxed);
                self.inner.get_sealed(item_id).await
            }
        }
    }

    /// Deletes every key under this cache's prefix (tests and operations). Best effort:
    /// returns how many keys were deleted, or `None` when Redis failed.
    #[doc(hidden)]
    pub async fn purge(&self) -> Option<u64> {
        let pattern = format!("{}*", self.config.prefix);
        let Value::Array(keys) = self.command(cmd("KEYS").arg(pattern)).await? else {
            return None;
        };
        let mut deleted = 0;
        for key in keys {
            if let Value::BulkString(key) = key
                && let Some(Value::Int(n)) = self.command(cmd("DEL").arg(key)).await
            {
                deleted += u64::try_from(n).unwrap_or(0);
            }
        }
        Some(deleted)
    }

    fn key(&self, item_id: &ItemId) -> String {
        format!("{}item:{}", self.config.prefix, item_id.as_str())
    }

    fn failed(&self, state: &mut State) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        state.connection = None;
        state.paused_until = Instant::now().checked_add(self.config.retry_after);
    }

    /// A live connection with every dirty key deleted, or `None` (paused or down).
    async fn ready<'s>(&self, state: &'s mut State) -> Option<&'s mut MultiplexedConnection> {
        if let Some(until) = state.paused_until {
            if Instant::now() < until {
                return None;
            }
            state.paused_until = None;
        }
        if state.connection.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(self.config.connect_timeout)
                .set_response_timeout(self.config.timeout);
            // The handshake (AUTH, SELECT, CLIENT SETINFO) runs after the TCP connect: bound
            // the whole of it, not only the connect.
            let limit = self
                .config
                .connect_timeout
                .saturating_add(self.config.timeout);
            let open = self
                .client
                .get_multiplexed_async_connection_with_config(&config);
            if let Ok(Ok(connection)) = tokio::time::timeout(limit, open).await {
                state.connection = Some(connection);
            } else {
                self.failed(state);
                return None;
            }
        }
        if !state.dirty.is_empty() {
            let mut del = cmd("DEL");
            for key in &state.dirty {
                del.arg(key);
            }
            let connection = state.connection.as_mut()?;
            if let Some(Value::Int(_)) = self.call(connection, &del).await {
                state.dirty.clear();
            } else {
                self.failed(state);
                return None;
            }
        }
        state.connection.as_mut()
    }

    /// Runs one command; `None` on any failure (which pauses the cache).
    async fn command(&self, command: &Cmd) -> Option<Value> {
        let mut state = self.state.lock().await;
        let connection = self.ready(&mut state).await?;
        let reply = self.call(connection, command).await;
        if reply.is_none() {
            self.failed(&mut state);
        }
        reply
    }

    /// Sends one command and waits for its reply within the command timeout; `None` for an
    /// I/O error, a timeout or an error reply.
    async fn call(&self, connection: &mut MultiplexedConnection, command: &Cmd) -> Option<Value> {
        // The connection has its own response timeout; this one also bounds the write.
        let reply = tokio::time::timeout(self.config.timeout, command.query_async(connection));
        match reply.await {
            Ok(Ok(Value::ServerError(_)) | Err(_)) | Err(_) => None,
            Ok(Ok(value)) => Some(value),
        }
    }

    async fn lookup(&self, item_id: &ItemId) -> Lookup {
        let key = self.key(item_id);
        match self.command(cmd("GET").arg(&key)).await {
            None => Lookup::Bypass,
            Some(Value::Nil) => Lookup::Miss,
            Some(Value::BulkString(value)) if value == TOMBSTONE => Lookup::Tombstone,
            Some(Value::BulkString(value)) => {
                if let Some(sealed) = decode(item_id, &value) {
                    Lookup::Hit(sealed)
                } else {
                    // A value we did not write (or from another version): drop it.
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    self.command(cmd("DEL").arg(&key)).await;
                    Lookup::Miss
                }
            }
            Some(_) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                Lookup::Miss
            }
        }
    }

    async fn fill(&self, sealed: &SealedItem) {
        let key = self.key(&sealed.item_id);
        let value = encode(sealed);
        let ttl = u64::try_from(self.config.ttl.as_millis()).unwrap_or(u64::MAX);
        self.command(
            cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(ttl)
                // Never over a tombstone: a read that raced a write must not cache what it read.
                .arg("NX"),
        )
        .await;
    }

    async fn invalidate(&self, item_id: &ItemId) {
        self.invalidate_all(std::slice::from_ref(item_id)).await;
    }

    /// Replaces each Item's entry with a short-lived tombstone. A plain delete would let a
    /// read that fetched the old row before the write fill it back in after the delete; fills
    /// use `NX`, so they do nothing while the tombstone lives.
    async fn invalidate_all(&self, item_ids: &[ItemId]) {
        let ttl = u64::try_from(TOMBSTONE_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut failed = Vec::new();
        for item_id in item_ids {
            let key = self.key(item_id);
            let set = self
                .command(cmd("SET").arg(&key).arg(TOMBSTONE).arg("PX").arg(ttl))
                .await;
            if set.is_none() {
                failed.push(key);
            }
        }
        if !failed.is_empty() {
            let mut state = self.state.lock().await;
            self.counters
                .deferred
                .fetch_add(failed.len() as u64, Ordering::Relaxed);
            state.dirty.extend(failed);
        }
    }
}

enum Lookup {
    Hit(SealedItem),
    Miss,
    /// Written a moment ago: read the store, do not fill.
    Tombstone,
    Bypass,
}

/// The value that marks an entry invalidated a moment ago.
const TOMBSTONE: &[u8] = b"tw-tombstone";

/// How long a tombstone lives: longer than any read's trip from store to fill is expected to
/// take (a fill after it expires can cache a stale envelope until the TTL).
const TOMBSTONE_TTL: Duration = Duration::from_secs(2);

/// `tw1 <version> <user id> <envelope text>`: ids are printable ASCII without spaces.
fn encode(sealed: &SealedItem) -> String {
    format!(
        "tw1 {} {} {}",
        sealed.token_version,
        sealed.user_id.as_str(),
        sealed.envelope.to_text()
    )
}

fn decode(item_id: &ItemId, value: &[u8]) -> Option<SealedItem> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(' ');
    if parts.next()? != "tw1" {
        return None;
    }
    let token_version = parts.next()?.parse().ok()?;
    let user_id = UserId::new(parts.next()?).ok()?;
    let envelope = Envelope::from_text(parts.next()?).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(SealedItem {
        item_id: item_id.clone(),
        user_id,
        token_version,
        envelope,
    })
}

#[async_trait]
impl<V: Vault> Vault for CachedVault<V> {
    fn cipher(&self) -> &Cipher {
        self.inner.cipher()
    }

    async fn insert_item(
        &self,
        item_id: &ItemId,
        user_id: &UserId,
        token: &AccessToken,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        // Nothing to invalidate: a new Item has no entry (an erased one was tombstoned, or is
        // in the dirty set while Redis is away), and a read that found nothing cached nothing.
        self.inner
            .insert_item(item_id, user_id, token, note, now)
            .await
    }

    async fn get_sealed(&self, item_id: &ItemId) -> Result<SealedItem, ReadError> {
        let lookup = self.lookup(item_id).await;
        self.resolve(item_id, lookup).await
    }

    async fn get(&self, item_id: &ItemId) -> Result<StoredToken, ReadError> {
        let lookup = self.lookup(item_id).await;
        if let Lookup::Hit(sealed) = &lookup {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            if let Ok(token) = open_sealed(self.inner.cipher(), sealed) {
                return Ok(token);
            }
            // A cached envelope that does not open (a poisoned entry, or one wrapped under a
            // KEK disabled since): never an error from the cache; ask the store.
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            return self.get_uncached(item_id).await;
        }
        let sealed = self.resolve(item_id, lookup).await?;
        open_sealed(self.inner.cipher(), &sealed)
    }

    async fn item(&self, item_id: &ItemId) -> Result<ItemRecord, ReadError> {
        self.inner.item(item_id).await
    }

    async fn update_token(
        &self,
        item_id: &ItemId,
        expected_version: u64,
        token: &AccessToken,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        let result = self
            .inner
            .update_token(item_id, expected_version, token, note, now)
            .await;
        self.invalidate(item_id).await;
        result
    }

    async fn set_credential_state(
        &self,
        change: StateChange<'_>,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        let item_id = change.item_id.clone();
        let result = self.inner.set_credential_state(change, now).await;
        self.invalidate(&item_id).await;
        result
    }

    async fn set_health_state(
        &self,
        item_id: &ItemId,
        from: HealthState,
        to: HealthState,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        let result = self
            .inner
            .set_health_state(item_id, from, to, note, now)
            .await;
        self.invalidate(item_id).await;
        result
    }

    async fn record_health(
        &self,
        update: crate::HealthUpdate<'_>,
        now: Timestamp,
    ) -> Result<crate::HealthWrite, WriteError> {
        // The cache holds envelopes only; health is not in it.
        self.inner.record_health(update, now).await
    }

    async fn save_kek_record(
        &self,
        record: &crate::KekRecord,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<crate::KekRecord, WriteError> {
        self.inner.save_kek_record(record, note, now).await
    }

    async fn kek_records(&self) -> Result<Vec<crate::KekRecord>, ReadError> {
        self.inner.kek_records().await
    }

    async fn acquire_lease(
        &self,
        item_id: &ItemId,
        owner: &LeaseOwner,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, LeaseError> {
        // Leases do not change what the cache holds.
        self.inner.acquire_lease(item_id, owner, ttl, now).await
    }

    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, LeaseError> {
        self.inner.renew_lease(lease, ttl, now).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), LeaseError> {
        self.inner.release_lease(lease).await
    }

    async fn begin_attempt(
        &self,
        begin: BeginAttempt<'_>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        let item_id = begin.lease.item_id.clone();
        let result = self.inner.begin_attempt(begin, now).await;
        self.invalidate(&item_id).await;
        result
    }

    async fn mark_sent(
        &self,
        attempt_id: &AttemptId,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        let result = self.inner.mark_sent(attempt_id, lease, now).await;
        self.invalidate(&lease.item_id).await;
        result
    }

    async fn stash_new_token(
        &self,
        attempt_id: &AttemptId,
        token: &AccessToken,
        request_id: Option<&str>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        // The stash is not the current token: nothing cached changes.
        self.inner
            .stash_new_token(attempt_id, token, request_id, now)
            .await
    }

    async fn promote_stashed(
        &self,
        promote: Promote<'_>,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        let attempt_id = promote.attempt_id.clone();
        let result = self.inner.promote_stashed(promote, now).await;
        match &result {
            Ok(record) => self.invalidate(&record.item_id).await,
            Err(_) => {
                // Find the Item even when the promotion failed (the commit may have happened).
                if let Ok(attempt) = self.inner.attempt(&attempt_id).await {
                    self.invalidate(&attempt.item_id).await;
                }
            }
        }
        result
    }

    async fn finish_attempt(
        &self,
        finish: FinishAttempt<'_>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        let attempt_id = finish.attempt_id.clone();
        let result = self.inner.finish_attempt(finish, now).await;
        if let Ok(attempt) = self.inner.attempt(&attempt_id).await {
            self.invalidate(&attempt.item_id).await;
        }
        result
    }

    async fn attempt(&self, attempt_id: &AttemptId) -> Result<AttemptRecord, ReadError> {
        self.inner.attempt(attempt_id).await
    }

    async fn open_attempts(&self) -> Result<Vec<AttemptRecord>, ReadError> {
        self.inner.open_attempts().await
    }

    async fn list_by_kek_version(
        &self,
        version: KeyVersion,
        after: Option<&ItemId>,
        limit: u32,
    ) -> Result<Vec<ItemRecord>, ReadError> {
        self.inner.list_by_kek_version(version, after, limit).await
    }

    async fn count_by_kek_version(&self) -> Result<Vec<(KeyVersion, u64)>, ReadError> {
        self.inner.count_by_kek_version().await
    }

    async fn envelopes_under(&self, version: KeyVersion) -> Result<u64, ReadError> {
        self.inner.envelopes_under(version).await
    }

    async fn list_by_state(
        &self,
        filter: StateFilter,
        after: Option<&ItemId>,
        limit: u32,
    ) -> Result<Vec<ItemRecord>, ReadError> {
        self.inner.list_by_state(filter, after, limit).await
    }

    async fn rewrap_batch(
        &self,
        after: Option<&RewrapCursor>,
        limit: u32,
        now: Timestamp,
    ) -> Result<RewrapBatch, RewrapError> {
        let batch = self.inner.rewrap_batch(after, limit, now).await?;
        self.invalidate_all(&batch.changed_items).await;
        Ok(batch)
    }

    async fn audit(&self, item_id: &ItemId) -> Result<Vec<AuditRecord>, ReadError> {
        self.inner.audit(item_id).await
    }

    async fn audit_since(
        &self,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ReadError> {
        self.inner.audit_since(since, limit).await
    }

    async fn save_rewrap_job(
        &self,
        job: &RewrapJobRecord,
        now: Timestamp,
    ) -> Result<RewrapJobRecord, WriteError> {
        self.inner.save_rewrap_job(job, now).await
    }

    async fn rewrap_job(&self, job_id: &JobId) -> Result<Option<RewrapJobRecord>, ReadError> {
        self.inner.rewrap_job(job_id).await
    }

    async fn unfinished_rewrap_jobs(&self) -> Result<Vec<RewrapJobRecord>, ReadError> {
        self.inner.unfinished_rewrap_jobs().await
    }

    async fn erase_user(
        &self,
        user_id: &UserId,
        actor: &str,
        now: Timestamp,
    ) -> Result<Erasure, WriteError> {
        let erasure = self.inner.erase_user(user_id, actor, now).await?;
        self.invalidate_all(&erasure.items).await;
        Ok(erasure)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::{decode, encode};
    use crate::{ItemId, SealedItem, UserId};
    use std::sync::Arc;
    use tokenward_envelope::{Cipher, Context, Keyring};

    #[test]
    fn values_round_trip_and_junk_is_refused() {
        let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
        let context = Context::new().with("k", "v").unwrap();
        let sealed = SealedItem {
            item_id: ItemId::new("item-1").unwrap(),
            user_id: UserId::new("user-1").unwrap(),
            token_version: 7,
            envelope: cipher.seal(b"x", &context).unwrap(),
        };
        let value = encode(&sealed);
        let back = decode(&sealed.item_id, value.as_bytes()).unwrap();
        assert_eq!(back.token_version, 7);
        assert_eq!(back.user_id, sealed.user_id);
        assert_eq!(back.envelope.as_bytes(), sealed.envelope.as_bytes());
        for junk in [
            "",
            "tw1",
            "tw2 7 user-1 x",
            "tw1 -1 user-1 twe1:AA",
            "tw1 7 user-1 twe1:!!",
            "tw1 7  x",
        ] {
            assert!(decode(&sealed.item_id, junk.as_bytes()).is_none(), "{junk}");
        }
        let extra = format!("{value} more");
        assert!(decode(&sealed.item_id, extra.as_bytes()).is_none());
    }
}
