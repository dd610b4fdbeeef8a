//! The KEK side: the rewrap job runner, the KEK lifecycle over the vault's keyring, and the
//! incident entry points (token leaked, KEK compromised).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};

use tokenward_envelope::{KeyState, KeyVersion};
use tokenward_plaid::models::ItemGetRequest;
use tokenward_vault::{AuditNote, ItemId, KekRecord, KekStatus, RewrapCursor, Vault};

use crate::batch::{BatchReport, BatchRotator, RateLimiter};
use crate::driver::{Clock, DriverError, RotationReport, Rotator, SystemClock};
use crate::job_store::{JobStore, JobStoreError};
use crate::kek::{KekCommand, KekInput, KekPolicy, KekRing, KekState, Usage};
use crate::rewrap::{Cursor, Progress, RewrapCommand, RewrapInput, RewrapPolicy, RewrapState};
use crate::types::{Actor, RotationReason, TransitionError};

/// Why a KEK operation stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KekError {
    /// The machine refused (for example: envelopes still under the version).
    #[error(transparent)]
    Refused(#[from] TransitionError),
    /// A vault read failed.
    #[error("vault read: {0}")]
    Read(#[from] tokenward_vault::ReadError),
    /// A rewrap batch failed.
    #[error("rewrap: {0}")]
    Rewrap(#[from] tokenward_vault::RewrapError),
    /// The keyring refused.
    #[error("keyring: {0}")]
    Keyring(#[from] tokenward_envelope::KeyringError),
    /// The keyring has no primary version.
    #[error("the keyring has no primary version")]
    NoPrimary,
    /// A token rotation failed.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The saved job cannot be resumed (another target, a bad cursor).
    #[error("rewrap job: {0}")]
    Job(&'static str),
    /// The job store failed, or another runner advanced the job.
    #[error("job store: {0}")]
    Store(#[from] JobStoreError),
    /// A vault write failed (a lifecycle record; another process changed it first).
    #[error("vault write: {0}")]
    Write(#[from] tokenward_vault::WriteError),
}

/// Receives progress of a rewrap job.
pub type ProgressCallback = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Runs the rewrap job against the vault: batched, rate-limited, resumable, verified at the
/// end.
pub struct RewrapRunner<'a> {
    vault: &'a dyn Vault,
    store: &'a dyn JobStore,
    limiter: Option<&'a RateLimiter>,
    policy: RewrapPolicy,
    progress: Option<ProgressCallback>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RewrapRunner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RewrapRunner")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<'a> RewrapRunner<'a> {
    /// A runner over `vault`, saving its state in `store`.
    #[must_use]
    pub fn new(vault: &'a dyn Vault, store: &'a dyn JobStore) -> Self {
        RewrapRunner {
            vault,
            store,
            limiter: None,
            policy: RewrapPolicy::default(),
            progress: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// One batch per token of `limiter` (the key provider's quota).
    #[must_use]
    pub fn with_limiter(mut self, limiter: &'a RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Sets the batch size and circuit breaker.
    #[must_use]
    pub fn with_policy(mut self, policy: RewrapPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Calls `progress` after every batch and at the end.
    #[must_use]
    pub fn with_progress(mut self, progress: ProgressCallback) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Sets the clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The dry run: how many envelopes are under each version other than the primary.
    ///
    /// # Errors
    ///
    /// A store failure, or no primary version.
    pub async fn plan(&self) -> Result<RewrapState, KekError> {
        let target = self
            .vault
            .cipher()
            .keyring()
            .primary_version()
            .ok_or(KekError::NoPrimary)?;
        let below = self.remaining(target).await?;
        Ok(RewrapState::plan(target, below))
    }

    /// Runs (or resumes) the job until it completes or pauses; returns its state.
    ///
    /// A saved `Running` or `Verifying` job resumes from its cursor; a saved `Paused` job is
    /// resumed; a `Completed` job (or none) starts a new one towards the current primary,
    /// which over a store with nothing to do writes nothing.
    ///
    /// # Errors
    ///
    /// Store failures (the job is saved up to the last batch and resumes), a refused
    /// transition, [`JobStoreError::Conflict`] (as [`KekError::Store`]) when another runner
    /// advanced the job first.
    pub async fn run(&self) -> Result<RewrapState, KekError> {
        let primary = self.vault.cipher().keyring().primary_version();
        let (mut state, first) = match self.store.load().await? {
            Some(job @ (RewrapState::Running { .. } | RewrapState::Verifying { .. })) => {
                (job, RewrapInput::Recover)
            }
            Some(job @ RewrapState::Paused { .. }) => (job, RewrapInput::Resume),
            _ => {
                let plan = self.plan().await?;
                (
                    plan,
                    RewrapInput::Start {
                        target_is_primary: true,
                    },
                )
            }
        };
        if primary != Some(state.target()) {
            return Err(KekError::Job("the job's target is no longer the primary"));
        }
        let mut pending = vec![first];
        while let Some(input) = pending.pop() {
            let transition = self.policy.step(&state, input, self.clock.now())?;
            state = transition.state;
            for command in transition.commands {
                match command {
                    RewrapCommand::SaveJob => self.store.save(&state, self.clock.now()).await?,
                    RewrapCommand::ReportProgress(progress) => {
                        if let Some(callback) = &self.progress {
                            callback(&progress);
                        }
                    }
                    RewrapCommand::RewrapBatch { after, limit, .. } => {
                        if let Some(limiter) = self.limiter {
                            limiter.acquire().await;
                        }
                        let cursor = after
                            .as_ref()
                            .map(|c| RewrapCursor::from_str(c.as_str()))
                            .transpose()
                            .map_err(|_| KekError::Job("bad cursor"))?;
                        let now = crate::driver::vault_now(self.clock.now());
                        let batch = self.vault.rewrap_batch(cursor.as_ref(), limit, now).await?;
                        let failed = u64::try_from(batch.failed.len()).unwrap_or(u64::MAX);
                        pending.push(RewrapInput::BatchDone {
                            last: batch.next_cursor.map(|c| Cursor::new(c.as_str())),
                            rewrapped: batch.rewrapped,
                            skipped: batch.skipped,
                            failed,
                        });
                    }
                    RewrapCommand::Verify { target } => {
                        let remaining = self.remaining(target).await?;
                        let sample_ok = self.sample_opens(target).await;
                        pending.push(RewrapInput::Verified {
                            remaining,
                            sample_ok,
                        });
                    }
                }
            }
        }
        Ok(state)
    }

    /// Envelopes (current and stashed) under any version but `target`.
    async fn remaining(&self, target: KeyVersion) -> Result<u64, KekError> {
        let mut total = 0u64;
        for info in self.vault.cipher().keyring().keys() {
            if info.version != target {
                total = total.saturating_add(self.vault.envelopes_under(info.version).await?);
            }
        }
        Ok(total)
    }

    /// Opens a few Items under `target`: the rewrapped envelopes still hold tokens.
    async fn sample_opens(&self, target: KeyVersion) -> bool {
        match self.vault.list_by_kek_version(target, None, 8).await {
            Ok(sample) => {
                for record in sample {
                    if self.vault.get(&record.item_id).await.is_err() {
                        return false;
                    }
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// The KEK lifecycle over the vault's keyring, with the guards of the [`kek`](crate::kek)
/// machine (counts read from the vault just before).
///
/// The keyring knows staged / primary / decrypt-only / disabled and holds the key material;
/// the lifecycle records (the compromised flag, promoted / compromised / disabled / destroyed
/// times) live in the vault ([`Vault::save_kek_record`]), one `kek_state` audit record per
/// change. [`KekManager::load`] reads them back, so a restarted process continues a
/// compromise playbook where it stopped and measures the destroy grace period from the real
/// disable time. The async steps ([`disable`](Self::disable), [`destroy`](Self::destroy),
/// [`promote_new_primary`](Self::promote_new_primary), [`compromise`](Self::compromise))
/// save the records; the synchronous ones ([`rotate_primary`](Self::rotate_primary),
/// [`mark_compromised`](Self::mark_compromised)) change the keyring and the manager at once
/// and are saved by the next [`save`](Self::save) or async step.
pub struct KekManager<'a> {
    vault: &'a dyn Vault,
    ring: Mutex<KekRing>,
    compromised: Mutex<BTreeSet<KeyVersion>>,
    /// The records as last read or saved (their revisions are the compare-and-swap base), and
    /// the input that changed each version since.
    records: Mutex<Records>,
    policy: KekPolicy,
    clock: Arc<dyn Clock>,
    /// Who the lifecycle records' audit entries name.
    actor: Actor,
}

#[derive(Default)]
struct Records {
    stored: BTreeMap<KeyVersion, KekRecord>,
    pending: BTreeMap<KeyVersion, &'static str>,
    /// Each version's state when the manager was made, for the versions the vault has no
    /// record of yet (a keyring older than the records, or a fresh vault's first key): saved
    /// as it was before the first change is, so the journal reads `absent -> primary`, then
    /// `primary -> decrypt_only`, not `absent -> decrypt_only`.
    baseline: BTreeMap<KeyVersion, KekState>,
}

impl fmt::Debug for KekManager<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KekManager")
            .field(
                "ring",
                &*self.ring.lock().unwrap_or_else(PoisonError::into_inner),
            )
            .finish_non_exhaustive()
    }
}

impl<'a> KekManager<'a> {
    /// A manager of `vault`'s keyring, its states read from the keyring now (no lifecycle
    /// records are read: a disabled version counts as disabled since now). Prefer
    /// [`KekManager::load`].
    #[must_use]
    pub fn new(vault: &'a dyn Vault) -> Self {
        Self::new_with_clock(vault, Arc::new(SystemClock))
    }

    /// [`KekManager::new`] reading the time from `clock`.
    fn new_with_clock(vault: &'a dyn Vault, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now();
        let ring = KekRing::from_states(
            vault
                .cipher()
                .keyring()
                .keys()
                .into_iter()
                .map(|info| (info.version, keyring_state(info.state, now))),
        );
        let records = Records {
            baseline: ring.iter().collect(),
            ..Records::default()
        };
        KekManager {
            vault,
            ring: Mutex::new(ring),
            compromised: Mutex::new(BTreeSet::new()),
            records: Mutex::new(records),
            policy: KekPolicy::default(),
            clock,
            actor: Actor::new("tokenward-rotation"),
        }
    }

    /// A manager of `vault`'s keyring with the lifecycle records the vault keeps: each
    /// version's state is the record's when it agrees with the keyring (a compromised
    /// version is decrypt-only in the keyring), the keyring's otherwise; destroyed versions
    /// are known from their records; the compromised flags and times come back.
    ///
    /// What the keyring says and the records do not (a version with no record yet, one
    /// disabled or changed outside the manager) is saved at once, with its time, so a restart
    /// finds the same times: a version disabled in the keyring alone starts its destroy grace
    /// period at the first load that sees it, not again at every load.
    ///
    /// # Errors
    ///
    /// A vault read failure (including a store without lifecycle records); a vault write
    /// failure saving what the keyring says.
    pub async fn load(vault: &'a dyn Vault) -> Result<Self, KekError> {
        Self::load_with_clock(vault, Arc::new(SystemClock)).await
    }

    /// [`KekManager::load`] reading the time from `clock` (also for what it saves).
    ///
    /// # Errors
    ///
    /// As [`KekManager::load`].
    pub async fn load_with_clock(
        vault: &'a dyn Vault,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KekError> {
        match Self::load_once(vault, Arc::clone(&clock)).await {
            // Another process saved the same versions first: its records now stand.
            Err(KekError::Write(tokenward_vault::WriteError::VersionConflict { .. })) => {
                Self::load_once(vault, clock).await
            }
            loaded => loaded,
        }
    }

    async fn load_once(vault: &'a dyn Vault, clock: Arc<dyn Clock>) -> Result<Self, KekError> {
        let manager = KekManager::new_with_clock(vault, clock);
        let stored = vault.kek_records().await?;
        let now = manager.clock.now();
        {
            let mut ring = manager.ring.lock().unwrap_or_else(PoisonError::into_inner);
            let keyring: BTreeMap<KeyVersion, KeyState> = vault
                .cipher()
                .keyring()
                .keys()
                .into_iter()
                .map(|info| (info.version, info.state))
                .collect();
            let mut states: Vec<(KeyVersion, KekState)> = ring.iter().collect();
            for record in &stored {
                let from_record = record_state(record, now);
                match keyring.get(&record.version) {
                    Some(held) if agrees(*held, from_record) => {
                        if let Some(entry) = states.iter_mut().find(|(v, _)| *v == record.version) {
                            entry.1 = from_record;
                        }
                    }
                    None if matches!(from_record, KekState::Destroyed { .. }) => {
                        states.push((record.version, from_record));
                    }
                    // The keyring disagrees (changed outside the manager): it holds the key
                    // material, so its state stands, and the next save records it. A version
                    // neither held nor destroyed is not this keyring's.
                    _ => {}
                }
            }
            *ring = KekRing::from_states(states);
        }
        *manager
            .compromised
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = stored
            .iter()
            .filter(|r| r.compromised)
            .map(|r| r.version)
            .collect();
        {
            let ring = manager.ring();
            let mut records = manager
                .records
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            records.stored = stored.into_iter().map(|r| (r.version, r)).collect();
            records.baseline = ring.iter().collect();
        }
        manager.save().await?;
        Ok(manager)
    }

    /// Sets the policy (the destroy grace period).
    #[must_use]
    pub fn with_policy(mut self, policy: KekPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets who the lifecycle records' audit entries name (by default `tokenward-rotation`).
    #[must_use]
    pub fn with_actor(mut self, actor: &Actor) -> Self {
        self.actor = actor.clone();
        self
    }

    /// The lifecycle state of every version.
    #[must_use]
    pub fn ring(&self) -> KekRing {
        self.ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `version` was ever marked compromised (kept once it is disabled or destroyed).
    #[must_use]
    pub fn is_compromised(&self, version: KeyVersion) -> bool {
        self.compromised
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&version)
    }

    async fn usage(&self, version: KeyVersion) -> Result<Usage, KekError> {
        let envelopes = self.vault.envelopes_under(version).await?;
        // Tokens under a compromised version are rotated (re-sealed under the primary) or
        // rewrapped; either way none is left under it once `envelopes` is 0.
        Ok(Usage {
            envelopes,
            unrotated_tokens: envelopes,
        })
    }

    fn apply(&self, input: KekInput) -> Result<Vec<KekCommand>, KekError> {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let transition = self.policy.step(&ring, input, self.clock.now())?;
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        for (version, state) in transition.state.iter() {
            if ring.state(version) != Some(state) {
                records.pending.insert(version, input.name());
            }
        }
        *ring = transition.state;
        Ok(transition.commands)
    }

    fn keyring_apply(&self, commands: &[KekCommand]) -> Result<(), KekError> {
        let keyring = self.vault.cipher().keyring();
        for command in commands {
            match command {
                KekCommand::KeyringPromote(v) => keyring.promote(*v)?,
                KekCommand::KeyringDisable(v) => keyring.disable(*v)?,
                KekCommand::KeyringEnable(v) => keyring.enable(*v)?,
                KekCommand::KeyringDestroy(v) => keyring.destroy(*v)?,
                KekCommand::RaiseAlert(v) => {
                    self.compromised
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(*v);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Saves the lifecycle record of every version changed since the last save
    /// (compare-and-swapped on its revision, one audit record each). A version the vault has
    /// no record of yet (a fresh vault's first key, a keyring older than the records) is first
    /// recorded as the manager found it (`recorded from the keyring`), so its change reads
    /// `primary -> decrypt_only`, not `absent -> decrypt_only`.
    ///
    /// # Errors
    ///
    /// A vault write failure, or [`WriteError::VersionConflict`](tokenward_vault::WriteError)
    /// (as [`KekError::Write`]) when another process changed a record first: load again.
    pub async fn save(&self) -> Result<(), KekError> {
        let now = self.clock.now();
        let (ring, compromised) = (self.ring(), self.compromised_set());
        // First, each version the vault has no record of, as the manager found it: a change
        // since then is then journalled from that state.
        let baselines: Vec<KekRecord> = {
            let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
            ring.iter()
                .filter(|(version, _)| !records.stored.contains_key(version))
                .filter_map(|(version, _)| {
                    let found = *records.baseline.get(&version)?;
                    Some(next_record(None, version, found, false, now))
                })
                .collect()
        };
        for record in baselines {
            self.save_record(&record, "recorded from the keyring", now)
                .await?;
        }
        let work: Vec<(KekRecord, &'static str)> = {
            let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
            ring.iter()
                .filter_map(|(version, state)| {
                    let stored = records.stored.get(&version);
                    let next =
                        next_record(stored, version, state, compromised.contains(&version), now);
                    (stored != Some(&next)).then(|| {
                        let why = records
                            .pending
                            .get(&version)
                            .copied()
                            .unwrap_or("lifecycle");
                        (next, why)
                    })
                })
                .collect()
        };
        for (record, why) in work {
            self.save_record(&record, why, now).await?;
            self.records
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pending
                .remove(&record.version);
        }
        Ok(())
    }

    /// Saves one record (compare-and-swapped, with its audit record) and keeps it as stored.
    async fn save_record(
        &self,
        record: &KekRecord,
        why: &str,
        now: crate::types::Timestamp,
    ) -> Result<(), KekError> {
        let note = AuditNote::new(self.actor.as_str(), why)
            .map_err(|_| KekError::Job("audit note refused by the vault"))?;
        let saved = self
            .vault
            .save_kek_record(record, &note, crate::driver::vault_now(now))
            .await?;
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stored
            .insert(saved.version, saved);
        Ok(())
    }

    fn compromised_set(&self) -> BTreeSet<KeyVersion> {
        self.compromised
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Generates a staged version and promotes it (this process is the only instance: the
    /// "loaded everywhere" guard holds). Returns the new primary. Not saved until the next
    /// [`save`](Self::save) or async step: prefer
    /// [`promote_new_primary`](Self::promote_new_primary).
    ///
    /// # Errors
    ///
    /// The keyring or the machine refused.
    pub fn rotate_primary(&self) -> Result<KeyVersion, KekError> {
        let version = self.vault.cipher().keyring().add_staged()?;
        let _ = self.apply(KekInput::Stage { version })?;
        let commands = self.apply(KekInput::Promote {
            version,
            loaded_everywhere: true,
        })?;
        self.keyring_apply(&commands)?;
        Ok(version)
    }

    /// [`rotate_primary`](Self::rotate_primary), saving the lifecycle records after each
    /// phase: the new version `absent -> staged`, then `staged -> primary` with the old
    /// primary's `primary -> decrypt_only` (each with its `kek_state` audit record).
    ///
    /// # Errors
    ///
    /// As [`rotate_primary`](Self::rotate_primary) and [`save`](Self::save).
    pub async fn promote_new_primary(&self) -> Result<KeyVersion, KekError> {
        // Two saves, as the two phases: the journal shows the new version staged, then
        // promoted with the old primary made decrypt-only.
        let version = self.vault.cipher().keyring().add_staged()?;
        let _ = self.apply(KekInput::Stage { version })?;
        self.save().await?;
        let commands = self.apply(KekInput::Promote {
            version,
            loaded_everywhere: true,
        })?;
        self.keyring_apply(&commands)?;
        self.save().await?;
        Ok(version)
    }

    /// Marks `version` compromised (it must not be the primary: promote first). Not saved
    /// until the next [`save`](Self::save) or async step: prefer [`compromise`](Self::compromise).
    ///
    /// # Errors
    ///
    /// The machine refused.
    pub fn mark_compromised(&self, version: KeyVersion) -> Result<(), KekError> {
        let commands = self.apply(KekInput::MarkCompromised { version })?;
        self.keyring_apply(&commands)
    }

    /// [`mark_compromised`](Self::mark_compromised), then saves the lifecycle records.
    ///
    /// # Errors
    ///
    /// As [`mark_compromised`](Self::mark_compromised) and [`save`](Self::save).
    pub async fn compromise(&self, version: KeyVersion) -> Result<(), KekError> {
        self.mark_compromised(version)?;
        self.save().await
    }

    /// Disables `version`, refusing while any envelope (current or stashed) is under it, and
    /// saves the lifecycle records.
    ///
    /// # Errors
    ///
    /// [`KekError::Refused`] naming the count of envelopes left; as [`save`](Self::save).
    pub async fn disable(&self, version: KeyVersion) -> Result<(), KekError> {
        let usage = self.usage(version).await?;
        let commands = self.apply(KekInput::Disable { version, usage })?;
        self.keyring_apply(&commands)?;
        self.save().await
    }

    /// Destroys a disabled `version` (its key material leaves the keyring for good),
    /// refusing while any envelope is under it or before the policy's grace period has run
    /// since it was disabled, and saves the lifecycle records (`destroyed`, with its time).
    /// Persist the keyring afterwards (for example [`Keyring::save_file`]) so the key is gone
    /// from storage too.
    ///
    /// [`Keyring::save_file`]: tokenward_envelope::Keyring::save_file
    ///
    /// # Errors
    ///
    /// [`KekError::Refused`] naming the guard (envelopes left, grace period); as
    /// [`save`](Self::save).
    pub async fn destroy(&self, version: KeyVersion) -> Result<(), KekError> {
        let usage = self.usage(version).await?;
        let commands = self.apply(KekInput::Destroy { version, usage })?;
        self.keyring_apply(&commands)?;
        self.save().await
    }
}

/// The machine state a keyring state stands for, when no record says more.
fn keyring_state(state: KeyState, now: crate::types::Timestamp) -> KekState {
    match state {
        KeyState::Staged => KekState::Staged,
        KeyState::Primary => KekState::Primary,
        KeyState::DecryptOnly => KekState::DecryptOnly,
        _ => KekState::Disabled { since: now },
    }
}

/// The machine state a lifecycle record stands for.
fn record_state(record: &KekRecord, now: crate::types::Timestamp) -> KekState {
    let at = |t: Option<tokenward_vault::Timestamp>| t.map_or(now, crate::driver::chrono_of);
    match record.state {
        KekStatus::Staged => KekState::Staged,
        KekStatus::Primary => KekState::Primary,
        KekStatus::Compromised => KekState::Compromised {
            since: at(record.compromised_at),
        },
        KekStatus::Disabled => KekState::Disabled {
            since: at(record.disabled_at),
        },
        KekStatus::Destroyed => KekState::Destroyed {
            since: at(record.destroyed_at),
        },
        _ => KekState::DecryptOnly,
    }
}

/// Whether the keyring's state of a version agrees with a record's.
fn agrees(held: KeyState, recorded: KekState) -> bool {
    matches!(
        (held, recorded),
        (KeyState::Staged, KekState::Staged)
            | (KeyState::Primary, KekState::Primary)
            | (
                KeyState::DecryptOnly,
                KekState::DecryptOnly | KekState::Compromised { .. }
            )
            | (KeyState::Disabled, KekState::Disabled { .. })
    )
}

/// The record of `version` in `state`, carrying over the times `stored` knows.
fn next_record(
    stored: Option<&KekRecord>,
    version: KeyVersion,
    state: KekState,
    compromised: bool,
    now: crate::types::Timestamp,
) -> KekRecord {
    let vault_time = crate::driver::vault_now;
    let mut record = stored
        .cloned()
        .unwrap_or_else(|| KekRecord::new(version, KekStatus::Staged));
    record.compromised = record.compromised || compromised;
    record.state = match state {
        KekState::Staged => KekStatus::Staged,
        KekState::Primary => {
            record.promoted_at = record.promoted_at.or(Some(vault_time(now)));
            KekStatus::Primary
        }
        KekState::DecryptOnly => KekStatus::DecryptOnly,
        KekState::Compromised { since } => {
            record.compromised = true;
            record.compromised_at = Some(vault_time(since));
            KekStatus::Compromised
        }
        KekState::Disabled { since } => {
            record.disabled_at = Some(vault_time(since));
            KekStatus::Disabled
        }
        KekState::Destroyed { since } => {
            record.destroyed_at = Some(vault_time(since));
            KekStatus::Destroyed
        }
    };
    if stored.is_none() && record.state == KekStatus::Primary {
        // First seen as primary (a keyring generated before records were kept).
        record.promoted_at = record.promoted_at.or(Some(vault_time(now)));
    }
    // `updated_at` is the vault's; compare the rest.
    record.updated_at = stored.map_or(record.updated_at, |s| s.updated_at);
    record
}

/// What an incident entry point did.
#[derive(Debug)]
#[non_exhaustive]
pub struct IncidentReport {
    /// The token rotations (incident lane).
    pub rotations: Option<BatchReport>,
    /// The single rotation, for a leaked token.
    pub rotation: Option<RotationReport>,
    /// Whether the old token was confirmed dead at Plaid after the rotation (evidence).
    pub old_token_revoked: Option<bool>,
    /// The rewrap job's end state, for a KEK incident.
    pub rewrap: Option<RewrapState>,
    /// The version disabled, for a KEK incident.
    pub disabled: Option<KeyVersion>,
}

/// A token leaked: rotate the Item with `reason = compromise` and confirm the old token is
/// dead by probing it (rotation.md §8.5). An Item that ends `Unknown` or `Orphaned` has raised
/// an alert; the runbook then removes it.
///
/// # Errors
///
/// As [`Rotator::rotate`].
pub async fn token_leaked(
    rotator: &Rotator<'_>,
    plaid: &dyn tokenward_plaid::PlaidApi,
    vault: &dyn Vault,
    item_id: &ItemId,
    actor: &Actor,
) -> Result<IncidentReport, DriverError> {
    let old = vault.get(item_id).await?;
    let rotation = rotator
        .rotate(item_id, RotationReason::Compromise, actor)
        .await?;
    let revoked = match plaid.item_get(&ItemGetRequest::new(old.token)).await {
        Ok(_) => Some(false),
        Err(err) if err.is_invalid_access_token() => Some(true),
        Err(_) => None,
    };
    Ok(IncidentReport {
        rotations: None,
        rotation: Some(rotation),
        old_token_revoked: revoked,
        rewrap: None,
        disabled: None,
    })
}

/// A KEK version may have leaked: promote a new primary if it was the primary, mark it
/// compromised, rotate every token sealed under it (incident lane, rate-limited), rewrap what
/// remains, and disable it, which is refused while any envelope is still under it
/// (rotation.md §8.5). Every lifecycle change is saved in the vault as it happens
/// ([`KekManager::load`]), so a run interrupted at any step is finished by running it again;
/// a version already disabled after a compromise is reported as done.
///
/// # Errors
///
/// Any step's failure; the steps are safe to run again.
pub async fn kek_compromised(
    rotator: &Rotator<'_>,
    vault: &dyn Vault,
    limiter: &RateLimiter,
    jobs: &dyn JobStore,
    version: KeyVersion,
    actor: &Actor,
) -> Result<IncidentReport, KekError> {
    // The lifecycle records say how far an earlier run got: each step below is skipped or
    // repeated safely.
    let kek = KekManager::load(vault).await?.with_actor(actor);
    if kek.is_compromised(version)
        && matches!(
            kek.ring().state(version),
            Some(KekState::Disabled { .. } | KekState::Destroyed { .. })
        )
    {
        return Ok(IncidentReport {
            rotations: None,
            rotation: None,
            old_token_revoked: None,
            rewrap: None,
            disabled: Some(version),
        });
    }
    if vault.cipher().keyring().primary_version() == Some(version) {
        kek.promote_new_primary().await?;
    }
    kek.compromise(version).await?;

    // Every Item whose current token is sealed under the version.
    let mut items = Vec::new();
    let mut after: Option<ItemId> = None;
    loop {
        let page = vault
            .list_by_kek_version(version, after.as_ref(), 500)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.item_id.clone());
        items.extend(
            page.into_iter()
                .map(|r| (r.item_id, RotationReason::KekCompromise)),
        );
    }
    let batch = BatchRotator::new(rotator, vault, limiter)
        .run(&items, actor, false)
        .await?;

    let rewrap = RewrapRunner::new(vault, jobs)
        .with_limiter(limiter)
        .run()
        .await?;
    kek.disable(version).await?;
    Ok(IncidentReport {
        rotations: Some(batch),
        rotation: None,
        old_token_revoked: None,
        rewrap: Some(rewrap),
        disabled: Some(version),
    })
}
