//! The real driver, the real `SQLite` vault and the emulator over loopback, with a crash at
//! every vault write: the process "dies" at the N-th write (that write and every later one
//! fail, as if nothing after it ever ran), then a fresh worker runs `recover()`. For every N and
//! every invalidate fault the Item ends where Plaid's truth says:
//! - the old token still works → `Active(v1)` holding it;
//! - the new token reached the store → `Active(v2)` holding it;
//! - Plaid applied the rotation and the token never reached the store (the crash fell between
//!   Plaid's commit and our stash, or the answer was lost) → `Orphaned`, never `Active`.
//!
//! Also after every case: no attempt is left open, the audit journal is a chain that ends at
//! the stored state, and invalidate went out at most once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenward_envelope::{Cipher, KeyVersion, Keyring};
use tokenward_plaid::models as m;
use tokenward_plaid::{HttpPlaidClient, PlaidApi};
use tokenward_redact::AccessToken;
use tokenward_rotation::{Actor, Clock, RotationReason, Rotator, RotatorConfig};
use tokenward_sandbox::{FaultPlan, Sandbox};
use tokenward_vault::{
    AttemptId, AttemptRecord, AuditNote, AuditRecord, BeginAttempt, Erasure, FinishAttempt, ItemId,
    ItemRecord, JobId, Lease, LeaseError, LeaseOwner, Promote, ReadError, RewrapBatch,
    RewrapCursor, RewrapError, RewrapJobRecord, SealedItem, SqlVault, StateChange, StateFilter,
    Timestamp, UserId, Vault, WriteError,
};

/// A vault whose process dies at the `crash_at`-th write.
struct Crashing {
    inner: SqlVault,
    writes: AtomicU64,
    crash_at: AtomicU64,
    dead: AtomicBool,
}

impl Crashing {
    /// Counts a write; `false` when the process is dead from this write on.
    fn alive(&self) -> bool {
        if self.dead.load(Ordering::SeqCst) {
            return false;
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.crash_at.load(Ordering::SeqCst) {
            self.dead.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }

    fn revive(&self) {
        self.crash_at.store(0, Ordering::SeqCst);
        self.dead.store(false, Ordering::SeqCst);
    }
}

#[async_trait]
impl Vault for Crashing {
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
        self.inner
            .insert_item(item_id, user_id, token, note, now)
            .await
    }
    async fn get_sealed(&self, item_id: &ItemId) -> Result<SealedItem, ReadError> {
        self.inner.get_sealed(item_id).await
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
        if !self.alive() {
            return Err(WriteError::NotFound(item_id.clone()));
        }
        self.inner
            .update_token(item_id, expected_version, token, note, now)
            .await
    }
    async fn set_credential_state(
        &self,
        change: StateChange<'_>,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        if !self.alive() {
            return Err(WriteError::NotFound(change.item_id.clone()));
        }
        self.inner.set_credential_state(change, now).await
    }
    async fn set_health_state(
        &self,
        item_id: &ItemId,
        from: tokenward_vault::HealthState,
        to: tokenward_vault::HealthState,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        if !self.alive() {
            return Err(WriteError::NotFound(item_id.clone()));
        }
        self.inner
            .set_health_state(item_id, from, to, note, now)
            .await
    }
    async fn record_health(
        &self,
        update: tokenward_vault::HealthUpdate<'_>,
        now: Timestamp,
    ) -> Result<tokenward_vault::HealthWrite, WriteError> {
        if !self.alive() {
            return Err(WriteError::NotFound(update.item_id.clone()));
        }
        self.inner.record_health(update, now).await
    }
    async fn save_kek_record(
        &self,
        record: &tokenward_vault::KekRecord,
        note: &AuditNote,
        now: Timestamp,
    ) -> Result<tokenward_vault::KekRecord, WriteError> {
        self.inner.save_kek_record(record, note, now).await
    }
    async fn kek_records(&self) -> Result<Vec<tokenward_vault::KekRecord>, ReadError> {
        self.inner.kek_records().await
    }
    async fn acquire_lease(
        &self,
        item_id: &ItemId,
        owner: &LeaseOwner,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, LeaseError> {
        if !self.alive() {
            return Err(LeaseError::NotFound(item_id.clone()));
        }
        self.inner.acquire_lease(item_id, owner, ttl, now).await
    }
    async fn renew_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, LeaseError> {
        if !self.alive() {
            return Err(LeaseError::NotFound(lease.item_id.clone()));
        }
        self.inner.renew_lease(lease, ttl, now).await
    }
    async fn release_lease(&self, lease: &Lease) -> Result<(), LeaseError> {
        if !self.alive() {
            return Err(LeaseError::NotFound(lease.item_id.clone()));
        }
        self.inner.release_lease(lease).await
    }
    async fn begin_attempt(
        &self,
        begin: BeginAttempt<'_>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        if !self.alive() {
            return Err(WriteError::AttemptNotFound(begin.attempt_id.clone()));
        }
        self.inner.begin_attempt(begin, now).await
    }
    async fn mark_sent(
        &self,
        attempt_id: &AttemptId,
        lease: &Lease,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        if !self.alive() {
            return Err(WriteError::AttemptNotFound(attempt_id.clone()));
        }
        self.inner.mark_sent(attempt_id, lease, now).await
    }
    async fn stash_new_token(
        &self,
        attempt_id: &AttemptId,
        token: &AccessToken,
        request_id: Option<&str>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        if !self.alive() {
            return Err(WriteError::AttemptNotFound(attempt_id.clone()));
        }
        self.inner
            .stash_new_token(attempt_id, token, request_id, now)
            .await
    }
    async fn promote_stashed(
        &self,
        promote: Promote<'_>,
        now: Timestamp,
    ) -> Result<ItemRecord, WriteError> {
        if !self.alive() {
            return Err(WriteError::AttemptNotFound(promote.attempt_id.clone()));
        }
        self.inner.promote_stashed(promote, now).await
    }
    async fn finish_attempt(
        &self,
        finish: FinishAttempt<'_>,
        now: Timestamp,
    ) -> Result<AttemptRecord, WriteError> {
        if !self.alive() {
            return Err(WriteError::AttemptNotFound(finish.attempt_id.clone()));
        }
        self.inner.finish_attempt(finish, now).await
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
        self.inner.rewrap_batch(after, limit, now).await
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
        self.inner.erase_user(user_id, actor, now).await
    }
}

/// Counts invalidate calls.
struct Counting<'a> {
    inner: &'a dyn PlaidApi,
    invalidates: AtomicU64,
}

macro_rules! counting_impl {
    ($($method:ident($request:ty) -> $response:ty;)*) => {
        #[async_trait]
        impl PlaidApi for Counting<'_> {
            $(
                async fn $method(
                    &self,
                    request: &$request,
                ) -> Result<$response, tokenward_plaid::Error> {
                    self.inner.$method(request).await
                }
            )*

            async fn item_access_token_invalidate(
                &self,
                request: &m::ItemAccessTokenInvalidateRequest,
            ) -> Result<m::ItemAccessTokenInvalidateResponse, tokenward_plaid::Error> {
                self.invalidates.fetch_add(1, Ordering::SeqCst);
                self.inner.item_access_token_invalidate(request).await
            }
        }
    };
}

counting_impl! {
    link_token_create(m::LinkTokenCreateRequest) -> m::LinkTokenCreateResponse;
    item_public_token_exchange(m::ItemPublicTokenExchangeRequest) -> m::ItemPublicTokenExchangeResponse;
    sandbox_public_token_create(m::SandboxPublicTokenCreateRequest) -> m::SandboxPublicTokenCreateResponse;
    accounts_get(m::AccountsGetRequest) -> m::AccountsGetResponse;
    accounts_balance_get(m::AccountsBalanceGetRequest) -> m::AccountsBalanceGetResponse;
    transactions_get(m::TransactionsGetRequest) -> m::TransactionsGetResponse;
    transactions_sync(m::TransactionsSyncRequest) -> m::TransactionsSyncResponse;
    item_get(m::ItemGetRequest) -> m::ItemGetResponse;
    item_remove(m::ItemRemoveRequest) -> m::ItemRemoveResponse;
    item_webhook_update(m::ItemWebhookUpdateRequest) -> m::ItemWebhookUpdateResponse;
    webhook_verification_key_get(m::WebhookVerificationKeyGetRequest) -> m::WebhookVerificationKeyGetResponse;
    sandbox_item_fire_webhook(m::SandboxItemFireWebhookRequest) -> m::SandboxItemFireWebhookResponse;
    sandbox_item_reset_login(m::SandboxItemResetLoginRequest) -> m::SandboxItemResetLoginResponse;
}

/// The system clock, ten minutes on: past the lease of the worker that died.
struct Later;

impl Clock for Later {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::minutes(10)
    }
}

fn dup(token: &AccessToken) -> AccessToken {
    AccessToken::new(token.expose_secret()).unwrap()
}

async fn works(api: &dyn PlaidApi, token: &AccessToken) -> bool {
    match api.item_get(&m::ItemGetRequest::new(dup(token))).await {
        Ok(_) => true,
        Err(err) if err.is_invalid_access_token() => false,
        Err(err) => panic!("probe failed: {err}"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    RateLimited,
    ServerError,
    CommitThenDrop,
}

/// One case: returns the stored state's name.
async fn case(sandbox: &Sandbox, api: &HttpPlaidClient, fault: Fault, crash_at: u64) -> String {
    let created = api
        .sandbox_public_token_create(&m::SandboxPublicTokenCreateRequest::new(
            "ins_109508",
            vec![m::Product::Transactions],
        ))
        .await
        .unwrap();
    let exchanged = api
        .item_public_token_exchange(&m::ItemPublicTokenExchangeRequest::new(
            created.public_token,
        ))
        .await
        .unwrap();
    let old = exchanged.access_token;
    let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let vault = Crashing {
        inner: SqlVault::sqlite_memory(cipher).await.unwrap(),
        writes: AtomicU64::new(0),
        crash_at: AtomicU64::new(0),
        dead: AtomicBool::new(false),
    };
    let item = ItemId::new(exchanged.item_id).unwrap();
    let now = Timestamp::from_system_time(std::time::SystemTime::now()).unwrap();
    vault
        .insert_item(
            &item,
            &UserId::new("user").unwrap(),
            &old,
            &AuditNote::new("t", "exchanged").unwrap(),
            now,
        )
        .await
        .unwrap();
    let plan = match fault {
        Fault::None => FaultPlan::new(),
        Fault::RateLimited => FaultPlan::new().rate_limit(1),
        Fault::ServerError => FaultPlan::new().server_error(1),
        Fault::CommitThenDrop => FaultPlan::new().drop_after_commit(1),
    };
    sandbox
        .faults()
        .set("/item/access_token/invalidate", plan)
        .unwrap();
    let counting = Counting {
        inner: api,
        invalidates: AtomicU64::new(0),
    };
    let config = RotatorConfig {
        probe_backoff: Duration::from_millis(5),
        stash_tries: 2,
        ..RotatorConfig::default()
    };

    // The worker that dies at the `crash_at`-th write.
    vault.crash_at.store(crash_at, Ordering::SeqCst);
    let dying =
        Rotator::new(&counting, &vault, LeaseOwner::new("dying").unwrap()).with_config(config);
    let first = dying
        .rotate(&item, RotationReason::Scheduled, &Actor::new("t"))
        .await;
    let crashed = vault.dead.load(Ordering::SeqCst);
    assert!(first.is_ok() || crashed, "{fault:?}@{crash_at}: {first:?}");
    sandbox.faults().clear();

    // A fresh worker, later.
    vault.revive();
    let fresh = Rotator::new(&counting, &vault, LeaseOwner::new("fresh").unwrap())
        .with_config(config)
        .with_clock(Arc::new(Later));
    for (_, result) in fresh.recover().await.unwrap() {
        result.unwrap();
    }

    let record = vault.item(&item).await.unwrap();
    let state = record.credential_state.as_str().to_owned();
    let stored = vault.get(&item).await.unwrap();
    let old_works = works(api, &old).await;
    let stored_works = works(api, &stored.token).await;
    let label = format!(
        "{fault:?} crash at write {crash_at} → {state} v{}",
        stored.version
    );
    match state.as_str() {
        "active" => {
            assert!(stored_works, "{label}: Active with a dead token");
            if old_works {
                assert_eq!(stored.version, 1, "{label}");
            } else {
                assert_eq!(stored.version, 2, "{label}");
            }
        }
        "orphaned" => {
            assert!(
                !old_works && !stored_works,
                "{label}: Orphaned but a token works"
            );
        }
        other => panic!("{label}: unexpected state {other}"),
    }
    assert!(
        vault.open_attempts().await.unwrap().is_empty(),
        "{label}: attempt left open"
    );
    assert!(
        counting.invalidates.load(Ordering::SeqCst) <= 1,
        "{label}: invalidate twice"
    );
    // The journal is a chain of credential states ending at the stored one.
    let mut at = "active".to_owned();
    for record in vault.audit(&item).await.unwrap() {
        let (Some(from), Some(to)) = (&record.from_state, &record.to_state) else {
            continue;
        };
        assert_eq!(*from, at, "{label}: audit chain broken at {record:?}");
        at.clone_from(to);
    }
    assert_eq!(
        at, state,
        "{label}: journal does not end at the stored state"
    );
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_every_vault_write_ends_where_plaid_says() {
    let sandbox = Sandbox::builder().seed(17).start().await.unwrap();
    let api = tokenward_testkit::plaid::client(&sandbox.base_url(), "sweep", "sweep-secret");
    let mut orphaned = 0;
    let mut rotated = 0;
    for fault in [
        Fault::None,
        Fault::RateLimited,
        Fault::ServerError,
        Fault::CommitThenDrop,
    ] {
        // 0 never crashes; 1..=10 covers every write of every path (the longest has 8).
        for crash_at in 0..=10 {
            let state = case(&sandbox, &api, fault, crash_at).await;
            if state == "orphaned" {
                orphaned += 1;
            } else {
                rotated += 1;
            }
        }
    }
    // The sweep reaches both ends: lost tokens (only where Plaid committed) and rotations.
    assert!(orphaned > 0 && rotated > 0);
    sandbox.shutdown().await;
}
