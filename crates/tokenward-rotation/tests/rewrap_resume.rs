//! The rewrap job kept in the vault: a runner over a `SQLite` file "crashes" after some
//! batches, and a new runner on a fresh vault handle over the same file resumes it from the
//! stored cursor, completes it, and a rerun is a no-op.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokenward_envelope::{Cipher, Keyring};
use tokenward_redact::AccessToken;
use tokenward_rotation::rewrap::{Progress, RewrapPolicy, RewrapState};
use tokenward_rotation::{
    JobStore, JobStoreError, KekError, KekManager, RewrapRunner, Timestamp, VaultJobStore,
};
use tokenward_vault::{AuditNote, ItemId, JobId, SqlVault, UserId, Vault};

const ITEMS: u32 = 20;
const BATCH: u32 = 3;
/// Saves that land before the crash: the start, then batches 1 to 3. The fourth batch is
/// written to the store but its save never happens (the crash).
const SAVES_BEFORE_CRASH: u32 = 4;

/// A job store that hangs for ever on save number `SAVES_BEFORE_CRASH + 1`, after telling the
/// test: the process dies between a batch and its save.
struct CrashBeforeSave<'a> {
    inner: VaultJobStore<'a>,
    saves: AtomicU32,
    crashed: tokio::sync::Notify,
}

#[async_trait]
impl JobStore for CrashBeforeSave<'_> {
    async fn load(&self) -> Result<Option<RewrapState>, JobStoreError> {
        self.inner.load().await
    }

    async fn save(&self, job: &RewrapState, now: Timestamp) -> Result<(), JobStoreError> {
        if self.saves.fetch_add(1, Ordering::SeqCst) == SAVES_BEFORE_CRASH {
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.save(job, now).await
    }
}

fn job_id() -> JobId {
    JobId::new("kek-rewrap").unwrap()
}

fn policy() -> RewrapPolicy {
    RewrapPolicy {
        batch_size: BATCH,
        max_failure_percent: 10,
    }
}

#[tokio::test]
async fn a_crashed_job_resumes_from_the_vault_and_a_rerun_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let keyring = Arc::new(Keyring::generate().unwrap());
    let open = || SqlVault::sqlite_file(&path, Cipher::new(Arc::clone(&keyring)));

    // Items sealed under v1, then a new primary v2.
    let vault = open().await.unwrap();
    let now = tokenward_vault::Timestamp::from_unix_millis(1_767_225_600_000);
    let note = AuditNote::new("test", "linked").unwrap();
    for n in 0..ITEMS {
        let token =
            AccessToken::new(format!("access-sandbox-00000000-0000-4000-8000-{n:012}")).unwrap();
        let (item, user) = (
            ItemId::new(format!("item-{n:03}")).unwrap(),
            UserId::new("u").unwrap(),
        );
        vault
            .insert_item(&item, &user, &token, &note, now)
            .await
            .unwrap();
    }
    let v1 = keyring.primary_version().unwrap();
    let v2 = KekManager::new(&vault).rotate_primary().unwrap();
    assert_eq!(vault.envelopes_under(v1).await.unwrap(), u64::from(ITEMS));

    // First run: crashes (the runner is dropped) before saving batch 4.
    let store = CrashBeforeSave {
        inner: VaultJobStore::new(&vault, job_id()),
        saves: AtomicU32::new(0),
        crashed: tokio::sync::Notify::new(),
    };
    {
        let runner = RewrapRunner::new(&vault, &store).with_policy(policy());
        tokio::select! {
            biased;
            () = store.crashed.notified() => {}
            end = runner.run() => panic!("the job ended before the crash: {end:?}"),
        }
    }
    drop(store);
    vault.close().await;
    drop(vault);

    // A new process: a fresh vault over the same file finds the job unfinished, at batch 3.
    let vault = open().await.unwrap();
    let unfinished = vault.unfinished_rewrap_jobs().await.unwrap();
    assert_eq!(unfinished.len(), 1);
    assert_eq!(unfinished[0].job_id, job_id());
    let saved = VaultJobStore::new(&vault, job_id()).load().await.unwrap();
    let Some(RewrapState::Running {
        target,
        cursor: Some(cursor),
        progress: before,
    }) = saved
    else {
        panic!("{saved:?}")
    };
    assert_eq!(target, v2);
    assert_eq!(
        (before.batches, before.rewrapped),
        (3, u64::from(3 * BATCH))
    );
    assert!(cursor.as_str().ends_with("item-008"), "{cursor:?}");
    // Batch 4 reached the store before the crash; its save did not.
    let left = vault.envelopes_under(v1).await.unwrap();
    assert_eq!(left, u64::from(ITEMS - 4 * BATCH));

    let store = VaultJobStore::new(&vault, job_id());
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = Arc::clone(&seen);
    let runner = RewrapRunner::new(&vault, &store)
        .with_policy(policy())
        .with_progress(Arc::new(move |p: &Progress| sink.lock().unwrap().push(*p)));
    let done = runner.run().await.unwrap();
    let RewrapState::Completed { progress, .. } = done else {
        panic!("{done:?}")
    };
    // Resumed, not restarted: the counters carry on from the saved job, the first batch is
    // batch 4, and this run rewrote only what was left.
    let first = seen.lock().unwrap()[0];
    assert_eq!(first.batches, before.batches + 1);
    let rewritten_now = progress.rewrapped - before.rewrapped;
    assert_eq!(rewritten_now, left);
    assert!(rewritten_now < u64::from(ITEMS));
    assert_eq!(vault.envelopes_under(v1).await.unwrap(), 0);
    assert_eq!(vault.envelopes_under(v2).await.unwrap(), u64::from(ITEMS));
    assert!(vault.unfinished_rewrap_jobs().await.unwrap().is_empty());
    let stored = vault.rewrap_job(&job_id()).await.unwrap().unwrap();
    assert_eq!(stored.state, "completed");
    assert!(stored.finished_at.is_some());

    // A rerun is a no-op: a new pass that rewrites nothing.
    let again = RewrapRunner::new(&vault, &store)
        .with_policy(policy())
        .run()
        .await
        .unwrap();
    assert_eq!(again.name(), "completed");
    assert_eq!(again.progress().rewrapped, 0);
    assert_eq!(vault.envelopes_under(v2).await.unwrap(), u64::from(ITEMS));
    for n in 0..ITEMS {
        let item = ItemId::new(format!("item-{n:03}")).unwrap();
        assert_eq!(vault.item(&item).await.unwrap().kek_version, v2);
        vault.get(&item).await.unwrap();
    }
}

#[tokio::test]
async fn two_runners_cannot_both_advance_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let keyring = Arc::new(Keyring::generate().unwrap());
    let vault = SqlVault::sqlite_file(&path, Cipher::new(Arc::clone(&keyring)))
        .await
        .unwrap();
    let v1 = keyring.primary_version().unwrap();
    let job = RewrapState::plan(v1, 0);
    let now = chrono::Utc::now();

    // Both load the same (missing) job; the first save creates it, the second is refused.
    let a = VaultJobStore::new(&vault, job_id());
    let b = VaultJobStore::new(&vault, job_id());
    assert_eq!(a.load().await.unwrap(), None);
    assert_eq!(b.load().await.unwrap(), None);
    a.save(&job, now).await.unwrap();
    assert!(matches!(
        b.save(&job, now).await,
        Err(JobStoreError::Conflict)
    ));
    // After a reload, b holds the latest revision; now a is stale.
    b.load().await.unwrap();
    b.save(&job, now).await.unwrap();
    assert!(matches!(
        a.save(&job, now).await,
        Err(JobStoreError::Conflict)
    ));

    // A runner whose store is stale stops with the conflict instead of advancing the job.
    let err = RewrapRunner::new(&vault, &StaleStore(&a))
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(err, KekError::Store(JobStoreError::Conflict)),
        "{err}"
    );
}

/// Loads without refreshing the revision: models a runner that loaded before another runner
/// saved.
struct StaleStore<'a>(&'a VaultJobStore<'a>);

#[async_trait]
impl JobStore for StaleStore<'_> {
    async fn load(&self) -> Result<Option<RewrapState>, JobStoreError> {
        Ok(None)
    }

    async fn save(&self, job: &RewrapState, now: Timestamp) -> Result<(), JobStoreError> {
        self.0.save(job, now).await
    }
}
