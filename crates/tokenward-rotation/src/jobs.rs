//! The KEK side: the rewrap job runner, the KEK lifecycle over the vault's keyring, and the
//! incident entry points (token leaked, KEK compromised).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};

use tokenward_envelope::{KeyState, KeyVersion};
use tokenward_plaid::models::ItemGetRequest;
use tokenward_vault::{ItemId, RewrapCursor, Vault};

use crate::batch::{BatchReport, BatchRotator, RateLimiter};
use crate::driver::{Clock, DriverError, RotationReport, Rotator, SystemClock};
use crate::job_store::{JobStore, JobStoreError};
use crate::kek::{KekCommand, KekInput, KekRing, KekState, Usage};
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
/// The keyring knows staged / primary / decrypt-only / disabled; the compromised flag and the
/// disable times live here (the vault has no table for them yet), in memory.
pub struct KekManager<'a> {
    vault: &'a dyn Vault,
    ring: Mutex<KekRing>,
    compromised: Mutex<BTreeSet<KeyVersion>>,
    clock: Arc<dyn Clock>,
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
    /// A manager of `vault`'s keyring, its states read from the keyring now.
    #[must_use]
    pub fn new(vault: &'a dyn Vault) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let now = clock.now();
        let ring = KekRing::from_states(vault.cipher().keyring().keys().into_iter().map(|info| {
            let state = match info.state {
                KeyState::Staged => KekState::Staged,
                KeyState::Primary => KekState::Primary,
                KeyState::DecryptOnly => KekState::DecryptOnly,
                _ => KekState::Disabled { since: now },
            };
            (info.version, state)
        }));
        KekManager {
            vault,
            ring: Mutex::new(ring),
            compromised: Mutex::new(BTreeSet::new()),
            clock,
        }
    }

    /// The lifecycle state of every version.
    #[must_use]
    pub fn ring(&self) -> KekRing {
        self.ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
        let transition = crate::kek::step(&ring, input, self.clock.now())?;
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

    /// Generates a staged version and promotes it (this process is the only instance: the
    /// "loaded everywhere" guard holds). Returns the new primary.
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

    /// Marks `version` compromised (it must not be the primary: promote first).
    ///
    /// # Errors
    ///
    /// The machine refused.
    pub fn mark_compromised(&self, version: KeyVersion) -> Result<(), KekError> {
        let commands = self.apply(KekInput::MarkCompromised { version })?;
        self.keyring_apply(&commands)
    }

    /// Disables `version`, refusing while any envelope (current or stashed) is under it.
    ///
    /// # Errors
    ///
    /// [`KekError::Refused`] naming the count of envelopes left.
    pub async fn disable(&self, version: KeyVersion) -> Result<(), KekError> {
        let usage = self.usage(version).await?;
        let commands = self.apply(KekInput::Disable { version, usage })?;
        self.keyring_apply(&commands)
    }
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
/// (rotation.md §8.5).
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
    let kek = KekManager::new(vault);
    if vault.cipher().keyring().primary_version() == Some(version) {
        kek.rotate_primary()?;
    }
    kek.mark_compromised(version)?;

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
