//! The credential driver: runs the [`token`](crate::token) machine's commands against
//! [`PlaidApi`] and a [`Vault`], one Item at a time, under the Item's lease.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokenward_plaid::PlaidApi;
use tokenward_plaid::models::{
    ItemAccessTokenInvalidateRequest, ItemGetRequest, ItemRemoveReasonCode, ItemRemoveRequest,
};
use tokenward_redact::AccessToken;
use tokenward_vault::{
    AttemptRecord, AttemptStatus, AuditNote, BeginAttempt, FinishAttempt, ItemId, Lease,
    LeaseError, LeaseOwner, Promote, ReadError, StateChange, StateFilter, Vault, WriteError,
};

use crate::token::{
    Alert, Attempt, CallFailure, CredentialCommand, CredentialInput, CredentialPolicy,
    CredentialState, RemoveReason, UnknownSince,
};
use crate::types::{Actor, AttemptId, AuditEvent, RotationReason, TokenVersion, TransitionError};

/// Where the drivers read the time. Only drivers read a clock; the machines take `now`.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// An alert raised by a driver: an Item that needs an operator. Ids only, never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEvent {
    /// The Item.
    pub item_id: ItemId,
    /// What happened.
    pub alert: Alert,
}

/// Receives alerts (page an operator, open a ticket). Called inline; keep it quick.
pub type AlertSink = Arc<dyn Fn(&AlertEvent) + Send + Sync>;

/// Settings of a [`Rotator`].
#[derive(Debug, Clone, Copy)]
pub struct RotatorConfig {
    /// How long a lease lasts; every rotation step fits in it comfortably.
    pub lease_ttl: Duration,
    /// Probes of the old token one run makes before it leaves the Item `Unknown`.
    pub max_probes: u32,
    /// The wait before the first probe of the old token (doubled before each next one).
    /// Make it longer than Plaid could take to apply a request our client gave up on.
    pub probe_backoff: Duration,
    /// Tries of the (idempotent, unconditional) stash of a new token before giving up.
    pub stash_tries: u32,
    /// The machine's policy.
    pub policy: CredentialPolicy,
}

impl Default for RotatorConfig {
    fn default() -> Self {
        RotatorConfig {
            lease_ttl: Duration::from_secs(120),
            max_probes: 5,
            probe_backoff: Duration::from_secs(2),
            stash_tries: 5,
            policy: CredentialPolicy::default(),
        }
    }
}

/// What one run of the driver did to an Item.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationReport {
    /// The Item.
    pub item_id: ItemId,
    /// The attempt started or resumed, if any.
    pub attempt: Option<AttemptId>,
    /// The credential state at the end of the run (as stored).
    pub state: CredentialState,
    /// Alerts raised.
    pub alerts: Vec<Alert>,
}

/// Why a driver run stopped. Holds ids and states, never a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Another worker holds the Item's lease (or ours was fenced).
    #[error("lease: {0}")]
    Lease(#[from] LeaseError),
    /// A vault read failed.
    #[error("vault read: {0}")]
    Read(#[from] ReadError),
    /// A vault write failed (handled as a crash: recovery resumes from the store).
    #[error("vault write: {0}")]
    Write(#[from] WriteError),
    /// The machine refused an input (a driver bug or a concurrent change).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The Item is not `Active`: recover it first, or an operator must act.
    #[error("item is {state}, not active")]
    NotActive {
        /// The stored state.
        state: &'static str,
    },
    /// The Item's health does not allow this rotation (permission revoked, removed).
    #[error("item health {health} does not allow a {reason} rotation")]
    HealthRefused {
        /// The health state.
        health: &'static str,
        /// The reason asked.
        reason: RotationReason,
    },
    /// The store holds something the machine cannot represent.
    #[error("inconsistent store: {0}")]
    Inconsistent(&'static str),
    /// [`Rotator::resolve`] on an Item that does not need an operator: only `orphaned`,
    /// `dead` and `quarantined` Items can be resolved (and `retired` ones, as a no-op).
    #[error(
        "item is {state}: only an orphaned, dead or quarantined item can be resolved by an operator"
    )]
    NotResolvable {
        /// The stored state.
        state: &'static str,
    },
    /// The actor or the reason of an operator's change cannot go into the audit journal
    /// (empty, too long, control characters, or shaped like a Plaid token). The message names
    /// the field, never its text.
    #[error("audit note: {0}")]
    Note(#[source] tokenward_vault::InvalidInput),
}

/// Rotates Items' access tokens, one at a time, crash-safely.
///
/// Per Item: acquire the lease → journal the intent → write the sent marker → call
/// invalidate once → stash the new token (unconditionally) → promote it (CAS) → verify it with
/// `/item/get`. An ambiguous outcome leaves the Item `Unknown`, settled only by probing the old
/// token. [`Rotator::recover`] resumes every open attempt from the store.
pub struct Rotator<'a> {
    plaid: &'a dyn PlaidApi,
    vault: &'a dyn Vault,
    owner: LeaseOwner,
    config: RotatorConfig,
    clock: Arc<dyn Clock>,
    alerts: Option<AlertSink>,
}

impl fmt::Debug for Rotator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotator")
            .field("owner", &self.owner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a run keeps besides the machine state.
struct Run {
    item: ItemId,
    lease: Lease,
    /// The credential state as the vault has it.
    stored: tokenward_vault::CredentialState,
    /// The token version as the vault has it.
    version: u64,
    /// The new token between Plaid's answer and its stash (the window that cannot close).
    held: Option<AccessToken>,
    request_id: Option<String>,
    alerts: Vec<Alert>,
    released: bool,
}

impl<'a> Rotator<'a> {
    /// A rotator over `plaid` and `vault`, taking leases as `owner`.
    #[must_use]
    pub fn new(plaid: &'a dyn PlaidApi, vault: &'a dyn Vault, owner: LeaseOwner) -> Self {
        Rotator {
            plaid,
            vault,
            owner,
            config: RotatorConfig::default(),
            clock: Arc::new(SystemClock),
            alerts: None,
        }
    }

    /// Sets the configuration.
    #[must_use]
    pub fn with_config(mut self, config: RotatorConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets where alerts go (they are also in every [`RotationReport`]).
    #[must_use]
    pub fn with_alerts(mut self, sink: AlertSink) -> Self {
        self.alerts = Some(sink);
        self
    }

    /// Rotates one Item's token.
    ///
    /// # Errors
    ///
    /// [`DriverError::Lease`] when another worker holds the Item; [`DriverError::NotActive`]
    /// when the Item is not `Active`; [`DriverError::HealthRefused`] per
    /// [`rotation_allowed`](crate::health::rotation_allowed); vault failures (the attempt is
    /// then resumed by [`Rotator::recover`]). A rotation that ends `Unknown`, `Orphaned` or
    /// `Quarantined` is not an error: read [`RotationReport::state`].
    pub async fn rotate(
        &self,
        item_id: &ItemId,
        reason: RotationReason,
        actor: &Actor,
    ) -> Result<RotationReport, DriverError> {
        let record = self.vault.item(item_id).await?;
        if record.credential_state != tokenward_vault::CredentialState::Active {
            return Err(DriverError::NotActive {
                state: record.credential_state.as_str(),
            });
        }
        let health = crate::health_driver::stored_health(&record).state;
        if !crate::health::rotation_allowed(&health, reason) {
            return Err(DriverError::HealthRefused {
                health: health.name(),
                reason,
            });
        }
        let mut run = self.start_run(item_id).await?;
        if run.stored != tokenward_vault::CredentialState::Active {
            self.release(&mut run).await;
            return Err(DriverError::NotActive {
                state: run.stored.as_str(),
            });
        }
        let attempt = new_attempt_id(self.clock.now());
        let state = CredentialState::Active {
            version: TokenVersion::new(run.version),
        };
        let input = CredentialInput::Start {
            attempt,
            reason,
            actor: actor.clone(),
        };
        let result = self.drive(&mut run, state, input).await;
        self.finish(run, Some(attempt), result).await
    }

    /// Removes one Item at Plaid (`/item/remove`, safe to re-drive).
    ///
    /// # Errors
    ///
    /// As [`Rotator::rotate`].
    pub async fn remove(
        &self,
        item_id: &ItemId,
        reason: RemoveReason,
        actor: &Actor,
    ) -> Result<RotationReport, DriverError> {
        let mut run = self.start_run(item_id).await?;
        if run.stored != tokenward_vault::CredentialState::Active {
            self.release(&mut run).await;
            return Err(DriverError::NotActive {
                state: run.stored.as_str(),
            });
        }
        let state = CredentialState::Active {
            version: TokenVersion::new(run.version),
        };
        let input = CredentialInput::RemoveRequested {
            reason,
            actor: actor.clone(),
        };
        let result = self.drive(&mut run, state, input).await;
        self.finish(run, None, result).await
    }

    /// App traffic got `INVALID_ACCESS_TOKEN` with `version` and a re-read gave the same
    /// version: reconcile the Item (adopt a newer version, or end it `Dead`).
    ///
    /// # Errors
    ///
    /// As [`Rotator::rotate`].
    pub async fn token_rejected(
        &self,
        item_id: &ItemId,
        version: u64,
    ) -> Result<RotationReport, DriverError> {
        let mut run = self.start_run(item_id).await?;
        let state = match self.machine_state(&run).await {
            Ok((state, _)) => state,
            Err(err) => {
                self.release(&mut run).await;
                return Err(err);
            }
        };
        let input = CredentialInput::TokenRejected {
            version: TokenVersion::new(version),
        };
        let result = self.drive(&mut run, state, input).await;
        self.finish(run, None, result).await
    }

    /// An operator closes an Item that no rotation can bring back: `Orphaned` (Plaid rotated
    /// the token but its answer was lost), `Dead` or `Quarantined`, after acting outside
    /// tokenward (relinking the user, removing the Item at Plaid, a ticket). The Item ends
    /// `Retired`, out of traffic for good.
    ///
    /// Takes the Item's lease, steps the machine with
    /// [`OperatorResolved`](crate::token::CredentialInput::OperatorResolved) and writes the new
    /// state with its audit record (`actor`, and `operator_resolved: <reason>` as the reason)
    /// in one compare-and-swap write, then releases the lease; for an `Orphaned` Item the
    /// record and [`RotationReport::attempt`] name the attempt whose token was lost (found
    /// through the journal's record of the orphaning). Plaid is not called. Resolving
    /// an Item already `Retired` changes nothing and writes nothing. An attempt that still
    /// holds a stashed token (a `Quarantined` Item) keeps it: the vault never drops a live
    /// token.
    ///
    /// # Errors
    ///
    /// [`DriverError::Note`] when `actor` or `reason` cannot be journalled (checked before
    /// anything is touched); [`DriverError::NotResolvable`] when the Item is in any other
    /// state; [`DriverError::Lease`] when another worker holds the Item; vault failures
    /// (`Read(ItemNotFound)` for an unknown Item; `Write` when the state moved under a
    /// concurrent change: nothing was written, read it again).
    pub async fn resolve(
        &self,
        item_id: &ItemId,
        actor: &Actor,
        reason: &str,
    ) -> Result<RotationReport, DriverError> {
        // The note the write will carry, checked up front: a refused text is the caller's
        // mistake, named precisely, not a store inconsistency found half way.
        AuditNote::new(actor.as_str(), format!("operator_resolved: {reason}"))
            .map_err(DriverError::Note)?;
        let mut run = self.start_run(item_id).await?;
        match run.stored {
            tokenward_vault::CredentialState::Orphaned
            | tokenward_vault::CredentialState::Dead
            | tokenward_vault::CredentialState::Quarantined => {}
            tokenward_vault::CredentialState::Retired => {
                self.release(&mut run).await;
                return Ok(RotationReport {
                    item_id: run.item,
                    attempt: None,
                    state: CredentialState::Retired {
                        since: self.clock.now(),
                    },
                    alerts: Vec::new(),
                });
            }
            other => {
                self.release(&mut run).await;
                return Err(DriverError::NotResolvable {
                    state: other.as_str(),
                });
            }
        }
        let state = match self.resolvable_state(&run).await {
            Ok(state) => state,
            Err(err) => {
                self.release(&mut run).await;
                return Err(err);
            }
        };
        let attempt = state.attempt().map(|a| a.id).filter(|id| id.get() != 0);
        let input = CredentialInput::OperatorResolved {
            actor: actor.clone(),
            reason: reason.to_owned(),
        };
        let result = self.drive(&mut run, state, input).await;
        self.finish(run, attempt, result).await
    }

    /// The machine state of an Item an operator resolves. An `Orphaned` Item's attempt was
    /// closed (`abandoned`) when it was orphaned; the journal's record of that change names
    /// it, so the retirement is linked to the attempt whose token was lost.
    async fn resolvable_state(&self, run: &Run) -> Result<CredentialState, DriverError> {
        let (state, _) = self.machine_state(run).await?;
        let CredentialState::Orphaned { attempt, since } = &state else {
            return Ok(state);
        };
        if attempt.id.get() != 0 {
            return Ok(state);
        }
        let journal = self.vault.audit(&run.item).await?;
        let Some(id) = journal
            .iter()
            .rev()
            .find(|r| r.to_state.as_deref() == Some("orphaned"))
            .and_then(|r| r.attempt_id.clone())
        else {
            return Ok(state);
        };
        match self.vault.attempt(&id).await {
            Ok(record) => Ok(CredentialState::Orphaned {
                attempt: attempt_of(&record)?,
                since: *since,
            }),
            Err(ReadError::AttemptNotFound(_)) => Ok(state),
            Err(err) => Err(err.into()),
        }
    }

    /// Resumes one Item from what the store says (after a crash or a lost lease).
    ///
    /// # Errors
    ///
    /// As [`Rotator::rotate`].
    pub async fn recover_item(&self, item_id: &ItemId) -> Result<RotationReport, DriverError> {
        let mut run = self.start_run(item_id).await?;
        let (state, stashed) = match self.machine_state(&run).await {
            Ok(found) => found,
            Err(err) => {
                self.release(&mut run).await;
                return Err(err);
            }
        };
        let attempt = state.attempt().map(|a| a.id);
        let result = self
            .drive(&mut run, state, CredentialInput::Recover { stashed })
            .await;
        self.finish(run, attempt, result).await
    }

    /// Resumes every Item with an open attempt or in an unfinished state, one by one.
    /// Items whose lease another worker holds are skipped (that worker is on them).
    ///
    /// # Errors
    ///
    /// Only if the store cannot be listed; per-Item failures are in the results.
    pub async fn recover(
        &self,
    ) -> Result<Vec<(ItemId, Result<RotationReport, DriverError>)>, DriverError> {
        let mut items: Vec<ItemId> = self
            .vault
            .open_attempts()
            .await?
            .into_iter()
            .map(|a| a.item_id)
            .collect();
        for state in [
            tokenward_vault::CredentialState::Intent,
            tokenward_vault::CredentialState::InFlight,
            tokenward_vault::CredentialState::Verifying,
            tokenward_vault::CredentialState::Unknown,
            tokenward_vault::CredentialState::Probing,
            tokenward_vault::CredentialState::Reconcile,
            tokenward_vault::CredentialState::Removing,
        ] {
            let mut after: Option<ItemId> = None;
            loop {
                let page = self
                    .vault
                    .list_by_state(StateFilter::Credential(state), after.as_ref(), 500)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.item_id.clone());
                items.extend(page.into_iter().map(|r| r.item_id));
            }
        }
        items.sort();
        items.dedup();
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let result = self.recover_item(&item).await;
            if matches!(result, Err(DriverError::Lease(LeaseError::Held { .. }))) {
                continue;
            }
            results.push((item, result));
        }
        Ok(results)
    }

    async fn start_run(&self, item_id: &ItemId) -> Result<Run, DriverError> {
        let now = vault_now(self.clock.now());
        let lease = self
            .vault
            .acquire_lease(item_id, &self.owner, self.config.lease_ttl, now)
            .await?;
        // Read after taking the lease: what we read cannot move under us.
        let record = match self.vault.item(item_id).await {
            Ok(record) => record,
            Err(err) => {
                let _ = self.vault.release_lease(&lease).await;
                return Err(err.into());
            }
        };
        Ok(Run {
            item: item_id.clone(),
            lease,
            stored: record.credential_state,
            version: record.token_version,
            held: None,
            request_id: None,
            alerts: Vec::new(),
            released: false,
        })
    }

    async fn release(&self, run: &mut Run) {
        if !run.released {
            // Best effort: an unreleased lease lapses at its expiry.
            let _ = self.vault.release_lease(&run.lease).await;
            run.released = true;
        }
    }

    async fn finish(
        &self,
        mut run: Run,
        attempt: Option<AttemptId>,
        result: Result<CredentialState, DriverError>,
    ) -> Result<RotationReport, DriverError> {
        self.release(&mut run).await;
        let state = result?;
        if let CredentialState::Removed { .. } = state {
            self.health_follows_removal(&run.item).await?;
        }
        Ok(RotationReport {
            item_id: run.item,
            attempt,
            state,
            alerts: run.alerts,
        })
    }

    /// A removed Item's health dimension ends too (rotation.md §8.2).
    async fn health_follows_removal(&self, item_id: &ItemId) -> Result<(), DriverError> {
        let record = self.vault.item(item_id).await?;
        if record.health_state != tokenward_vault::HealthState::Removed {
            let note = AuditNote::new(self.owner.as_str().to_owned(), "health: item_removed")
                .map_err(|_| DriverError::Inconsistent("audit note refused by the vault"))?;
            self.vault
                .set_health_state(
                    item_id,
                    record.health_state,
                    tokenward_vault::HealthState::Removed,
                    &note,
                    vault_now(self.clock.now()),
                )
                .await?;
        }
        Ok(())
    }

    /// The machine state for the stored Item, and whether a stashed token waits.
    async fn machine_state(&self, run: &Run) -> Result<(CredentialState, bool), DriverError> {
        use tokenward_vault::CredentialState as V;
        let open: Option<AttemptRecord> = self
            .vault
            .open_attempts()
            .await?
            .into_iter()
            .rfind(|a| a.item_id == run.item);
        let stashed = open
            .as_ref()
            .is_some_and(|a| a.status == AttemptStatus::Stashed);
        let version = TokenVersion::new(run.version);
        let attempt = open.as_ref().map(attempt_of).transpose()?;
        let need = |a: Option<Attempt>| a.ok_or(DriverError::Inconsistent("no open attempt"));
        let unknown = |a: &Option<AttemptRecord>| UnknownSince {
            since: a
                .as_ref()
                .and_then(|a| a.sent_at)
                .map_or_else(|| self.clock.now(), chrono_of),
            failed_probes: 0,
            needs_operator: false,
        };
        let now = self.clock.now();
        // The attempt whose token was last promoted: kept by the vault after the promote
        // closed it, so a recovered `Verifying` (or `Quarantined`) Item names its real attempt.
        let last = match run.stored {
            V::Verifying | V::Quarantined | V::Orphaned => self.last_attempt(&run.item).await?,
            _ => None,
        };
        let state = match run.stored {
            V::Active => CredentialState::Active { version },
            V::Intent => CredentialState::Intent {
                attempt: need(attempt)?,
            },
            V::InFlight => CredentialState::InFlight {
                attempt: need(attempt)?,
            },
            V::Verifying => CredentialState::Verifying {
                // The attempt was closed by the promote; the vault kept its id. A store that
                // predates that gets a placeholder (only the versions matter now).
                attempt: last.unwrap_or_else(|| Attempt {
                    id: AttemptId::new(0),
                    from: TokenVersion::new(run.version.saturating_sub(1)),
                    reason: RotationReason::Manual,
                    actor: Actor::new("recovery"),
                    started_at: now,
                }),
            },
            V::Unknown => CredentialState::Unknown {
                unknown: unknown(&open),
                attempt: need(attempt)?,
            },
            V::Probing => CredentialState::Probing {
                unknown: unknown(&open),
                attempt: need(attempt)?,
            },
            V::Reconcile => CredentialState::Reconcile {
                version,
                // The vault's flag: set by the sent marker, cleared when a definite answer
                // ("already dead") closed the attempt as `Failed` on the way in.
                maybe_applied: open.as_ref().is_some_and(|a| a.maybe_applied),
                attempt,
            },
            V::Removing => CredentialState::Removing {
                version,
                reason: RemoveReason::NoLongerNeeded,
                tries: 0,
            },
            V::Orphaned => CredentialState::Orphaned {
                attempt: attempt
                    .or(last)
                    .unwrap_or_else(|| placeholder_attempt(version, now)),
                since: now,
            },
            V::Dead => CredentialState::Dead {
                version,
                since: now,
            },
            V::Quarantined => CredentialState::Quarantined {
                // A lost promote keeps its attempt open (stashed); a failed verification
                // follows a promote, whose attempt the Item names.
                attempt: attempt
                    .or(last)
                    .unwrap_or_else(|| placeholder_attempt(version, now)),
                since: now,
            },
            V::Removed => CredentialState::Removed { since: now },
            _ => CredentialState::Retired { since: now },
        };
        Ok((state, stashed))
    }

    /// The attempt whose token was last promoted on the Item, if the vault names one.
    async fn last_attempt(&self, item_id: &ItemId) -> Result<Option<Attempt>, DriverError> {
        let Some(id) = self.vault.item(item_id).await?.last_attempt_id else {
            return Ok(None);
        };
        match self.vault.attempt(&id).await {
            Ok(record) => Ok(Some(attempt_of(&record)?)),
            Err(ReadError::AttemptNotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn drive(
        &self,
        run: &mut Run,
        mut state: CredentialState,
        first: CredentialInput,
    ) -> Result<CredentialState, DriverError> {
        let mut pending = VecDeque::from([first]);
        let mut probes = 0u32;
        loop {
            let input = match pending.pop_front() {
                Some(input) => input,
                None if matches!(state, CredentialState::Unknown { .. })
                    && probes < self.config.max_probes =>
                {
                    // Wait before every probe, the first too: a request Plaid queued may still
                    // be applied after our client gave up on it.
                    let factor = 1u32 << probes.min(6);
                    tokio::time::sleep(self.config.probe_backoff * factor).await;
                    probes += 1;
                    CredentialInput::ProbeDue
                }
                None => return Ok(state),
            };
            let transition = self.config.policy.step(&state, input, self.clock.now())?;
            let previous = std::mem::replace(&mut state, transition.state);
            let mut audit = transition.audit;
            for command in transition.commands {
                let audit = if command.is_write() {
                    audit.take()
                } else {
                    None
                };
                if let Some(next) = self
                    .execute(run, &previous, &state, audit.as_ref(), command)
                    .await?
                {
                    pending.push_back(next);
                }
            }
        }
    }

    #[allow(clippy::too_many_lines)] // one arm per command
    async fn execute(
        &self,
        run: &mut Run,
        previous: &CredentialState,
        state: &CredentialState,
        audit: Option<&AuditEvent>,
        command: CredentialCommand,
    ) -> Result<Option<CredentialInput>, DriverError> {
        use CredentialCommand as C;
        use CredentialInput as I;
        let now = vault_now(self.clock.now());
        match command {
            C::RecordIntent { attempt } => {
                let id = vault_attempt_id(attempt.id)?;
                let note = note(audit, &self.owner)?;
                self.vault
                    .begin_attempt(
                        BeginAttempt {
                            attempt_id: &id,
                            lease: &run.lease,
                            expected_version: attempt.from.get(),
                            note: &note,
                        },
                        now,
                    )
                    .await?;
                run.stored = tokenward_vault::CredentialState::Intent;
                Ok(Some(I::IntentRecorded))
            }
            C::MarkSent { attempt } => {
                let id = vault_attempt_id(attempt)?;
                self.vault.mark_sent(&id, &run.lease, now).await?;
                run.stored = tokenward_vault::CredentialState::InFlight;
                Ok(Some(I::SentMarked))
            }
            C::CallInvalidate { version, .. } => {
                self.keep_lease(run).await?;
                let old = self.vault.get(&run.item).await?;
                if old.version != version.get() {
                    return Err(DriverError::Inconsistent("the stored version moved"));
                }
                let request = ItemAccessTokenInvalidateRequest::new(old.token);
                // Sent once; the HTTP client never retries this endpoint.
                match self.plaid.item_access_token_invalidate(&request).await {
                    Ok(response) => {
                        run.held = Some(response.new_access_token);
                        run.request_id = Some(response.request_id.clone());
                        Ok(Some(I::InvalidateOk {
                            request_id: response.request_id,
                        }))
                    }
                    Err(error) => Ok(Some(I::InvalidateFailed(CallFailure::from_error(&error)))),
                }
            }
            C::StashNewToken { attempt } => {
                let id = vault_attempt_id(attempt)?;
                let token = run
                    .held
                    .as_ref()
                    .ok_or(DriverError::Inconsistent("no new token to stash"))?;
                // Unconditional and idempotent: retry before giving the token up.
                let mut tries = 0;
                loop {
                    tries += 1;
                    match self
                        .vault
                        .stash_new_token(&id, token, run.request_id.as_deref(), now)
                        .await
                    {
                        Ok(_) => break,
                        Err(err) if tries >= self.config.stash_tries => return Err(err.into()),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                run.held = None;
                Ok(Some(I::NewTokenStashed))
            }
            C::PromoteStashed {
                attempt, expected, ..
            } => {
                let id = vault_attempt_id(attempt)?;
                let note = note(audit, &self.owner)?;
                let promoted = self
                    .vault
                    .promote_stashed(
                        Promote {
                            attempt_id: &id,
                            expected_version: expected.get(),
                            to: tokenward_vault::CredentialState::Verifying,
                            lease: Some(&run.lease),
                            note: &note,
                        },
                        now,
                    )
                    .await;
                match promoted {
                    Ok(record) => {
                        run.stored = record.credential_state;
                        run.version = record.token_version;
                        Ok(Some(I::Promoted))
                    }
                    Err(WriteError::VersionConflict { .. }) => {
                        let record = self.vault.item(&run.item).await?;
                        Ok(Some(I::PromoteConflict {
                            current: TokenVersion::new(record.token_version),
                        }))
                    }
                    Err(err) => Err(err.into()),
                }
            }
            C::VerifyNewToken { .. } => {
                let current = self.vault.get(&run.item).await?;
                match self
                    .plaid
                    .item_get(&ItemGetRequest::new(current.token))
                    .await
                {
                    Ok(_) => Ok(Some(I::Verified)),
                    Err(error) if error.is_item_error() => Ok(Some(I::Verified)),
                    Err(error) => Ok(Some(I::VerifyFailed(CallFailure::from_error(&error)))),
                }
            }
            C::ProbeOldToken { version, .. } => {
                self.keep_lease(run).await?;
                let old = self.vault.get(&run.item).await?;
                if old.version != version.get() {
                    return Err(DriverError::Inconsistent("the stored version moved"));
                }
                match self.plaid.item_get(&ItemGetRequest::new(old.token)).await {
                    // An Item error (login required) still proves the token is alive.
                    Ok(_) => Ok(Some(I::ProbeOldTokenWorks)),
                    Err(error) if error.is_item_error() => Ok(Some(I::ProbeOldTokenWorks)),
                    Err(error) if error.is_invalid_access_token() => {
                        Ok(Some(I::ProbeOldTokenInvalid))
                    }
                    Err(_) => Ok(Some(I::ProbeFailed)),
                }
            }
            C::CheckStore { attempt, version } => {
                let record = self.vault.item(&run.item).await?;
                if record.token_version > version.get() {
                    return Ok(Some(I::NewerVersionFound {
                        version: TokenVersion::new(record.token_version),
                    }));
                }
                if let Some(attempt) = attempt {
                    let id = vault_attempt_id(attempt)?;
                    match self.vault.attempt(&id).await {
                        Ok(a) if a.status == AttemptStatus::Stashed => {
                            return Ok(Some(I::StashFound));
                        }
                        Ok(_) | Err(ReadError::AttemptNotFound(_)) => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                Ok(Some(I::NoNewerVersion))
            }
            C::CallItemRemove { reason, .. } => {
                let current = self.vault.get(&run.item).await?;
                let request =
                    ItemRemoveRequest::new(current.token).with_reason_code(remove_code(reason));
                match self.plaid.item_remove(&request).await {
                    Ok(response) => Ok(Some(I::RemoveOk {
                        request_id: response.request_id,
                    })),
                    Err(error) => Ok(Some(I::RemoveFailed(CallFailure::from_error(&error)))),
                }
            }
            C::SaveState => {
                self.save_state(run, previous, state, audit, now).await?;
                Ok(None)
            }
            C::RaiseAlert(alert) => {
                if let Some(sink) = &self.alerts {
                    sink(&AlertEvent {
                        item_id: run.item.clone(),
                        alert: alert.clone(),
                    });
                }
                run.alerts.push(alert);
                Ok(None)
            }
            C::ReleaseLease => {
                self.release(run).await;
                Ok(None)
            }
        }
    }

    /// Renews the lease when half of it is gone, so that a run with slow calls and probe
    /// backoff keeps it. A fenced lease (another worker took over) stops the run.
    async fn keep_lease(&self, run: &mut Run) -> Result<(), DriverError> {
        if run.released {
            return Ok(());
        }
        let now = vault_now(self.clock.now());
        let half = self.config.lease_ttl / 2;
        let renew_at = tokenward_vault::Timestamp::from_unix_millis(
            run.lease
                .expires_at
                .unix_millis()
                .saturating_sub(i64::try_from(half.as_millis()).unwrap_or(i64::MAX)),
        );
        if now >= renew_at {
            run.lease = self
                .vault
                .renew_lease(&run.lease, self.config.lease_ttl, now)
                .await?;
        }
        Ok(())
    }

    async fn save_state(
        &self,
        run: &mut Run,
        previous: &CredentialState,
        state: &CredentialState,
        audit: Option<&AuditEvent>,
        now: tokenward_vault::Timestamp,
    ) -> Result<(), DriverError> {
        let to = vault_state(state);
        if to == run.stored {
            return Ok(());
        }
        let note = note(audit, &self.owner)?;
        let lease = (!run.released).then_some(&run.lease);
        if let (Some(status), Some(attempt)) = (closing_status(previous, state), previous.attempt())
        {
            let id = vault_attempt_id(attempt.id)?;
            self.vault
                .finish_attempt(
                    FinishAttempt {
                        attempt_id: &id,
                        status,
                        expected_version: run.version,
                        from: run.stored,
                        to,
                        lease,
                        note: &note,
                    },
                    now,
                )
                .await?;
        } else {
            let record = self
                .vault
                .set_credential_state(
                    StateChange {
                        item_id: &run.item,
                        expected_version: run.version,
                        from: run.stored,
                        to,
                        lease,
                        note: &note,
                    },
                    now,
                )
                .await?;
            run.version = record.token_version;
        }
        run.stored = to;
        if let CredentialState::Active { version } = state {
            // Adopting a newer version (reconcile) moves our idea of the stored version.
            run.version = run.version.max(version.get());
        }
        Ok(())
    }
}

/// The vault's attempt status that closes an attempt on this transition, if it does.
fn closing_status(previous: &CredentialState, next: &CredentialState) -> Option<AttemptStatus> {
    use CredentialState as S;
    match (previous, next) {
        (S::Intent { .. }, S::Active { .. }) => Some(AttemptStatus::NotSent),
        (S::InFlight { .. }, S::Active { .. })
        | (
            S::InFlight { .. },
            S::Reconcile {
                maybe_applied: false,
                ..
            },
        ) => Some(AttemptStatus::Failed),
        (S::Probing { .. }, S::Active { .. }) => Some(AttemptStatus::NotApplied),
        (
            S::Reconcile {
                attempt: Some(_),
                maybe_applied: true,
                ..
            },
            S::Active { .. } | S::Orphaned { .. },
        ) => Some(AttemptStatus::Abandoned),
        _ => None,
    }
}

/// The vault's name for a machine state (`Committing` is `InFlight` with a stashed token).
fn vault_state(state: &CredentialState) -> tokenward_vault::CredentialState {
    use CredentialState as S;
    use tokenward_vault::CredentialState as V;
    match state {
        S::Active { .. } => V::Active,
        S::Intent { .. } => V::Intent,
        S::InFlight { .. } | S::Committing { .. } => V::InFlight,
        S::Verifying { .. } => V::Verifying,
        S::Unknown { .. } => V::Unknown,
        S::Probing { .. } => V::Probing,
        S::Reconcile { .. } => V::Reconcile,
        S::Orphaned { .. } => V::Orphaned,
        S::Dead { .. } => V::Dead,
        S::Quarantined { .. } => V::Quarantined,
        S::Removing { .. } => V::Removing,
        S::Removed { .. } => V::Removed,
        S::Retired { .. } => V::Retired,
    }
}

/// The audit note of a transition: who, and "event: reason". Texts are ids and fixed names.
fn note(audit: Option<&AuditEvent>, owner: &LeaseOwner) -> Result<AuditNote, DriverError> {
    let (actor, reason) = match audit {
        Some(audit) => (
            audit
                .actor
                .as_ref()
                .map_or_else(|| owner.as_str().to_owned(), |a| a.as_str().to_owned()),
            match &audit.reason {
                Some(reason) => format!("{}: {}", audit.event, reason),
                None => audit.event.to_owned(),
            },
        ),
        None => (owner.as_str().to_owned(), "rotation".to_owned()),
    };
    let actor = if actor.is_empty() {
        owner.as_str().to_owned()
    } else {
        actor
    };
    let mut note = AuditNote::new(actor, reason)
        .map_err(|_| DriverError::Inconsistent("audit note refused by the vault"))?;
    if let Some(audit) = audit {
        if let Some(request_id) = &audit.request_id {
            note = note
                .with_request_id(request_id.clone())
                .map_err(|_| DriverError::Inconsistent("request id refused by the vault"))?;
        }
        // Id 0 is the placeholder of an attempt recovered after it was closed.
        if let Some(attempt) = audit.attempt.filter(|a| a.get() != 0) {
            note = note.with_attempt(vault_attempt_id(attempt)?);
        }
    }
    Ok(note)
}

fn remove_code(reason: RemoveReason) -> ItemRemoveReasonCode {
    match reason {
        RemoveReason::NonFunctional => ItemRemoveReasonCode::ConnectionIsNonFunctional,
        RemoveReason::Fraud => ItemRemoveReasonCode::FraudOther,
        _ => ItemRemoveReasonCode::Other,
    }
}

fn placeholder_attempt(version: TokenVersion, now: DateTime<Utc>) -> Attempt {
    Attempt {
        id: AttemptId::new(0),
        from: version,
        reason: RotationReason::Manual,
        actor: Actor::new("recovery"),
        started_at: now,
    }
}

/// An attempt id: a `UUIDv7` (48-bit Unix milliseconds, version and variant bits, 74 random
/// bits from the OS CSPRNG).
pub(crate) fn new_attempt_id(now: DateTime<Utc>) -> AttemptId {
    use ring::rand::SecureRandom as _;
    let mut random = [0u8; 10];
    // An attempt id needs uniqueness, not secrecy; should the OS RNG fail, the nanoseconds
    // and a process-wide counter still keep ids apart.
    if ring::rand::SystemRandom::new().fill(&mut random).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = u64::from(now.timestamp_subsec_nanos());
        random[..8].copy_from_slice(&(n ^ nanos.rotate_left(32)).to_be_bytes());
    }
    let millis = u128::from(u64::try_from(now.timestamp_millis()).unwrap_or(0)) & ((1 << 48) - 1);
    let mut rand = 0u128;
    for byte in random {
        rand = (rand << 8) | u128::from(byte);
    }
    let rand_a = (rand >> 68) & 0xfff; // 12 bits
    let rand_b = rand & ((1 << 62) - 1); // 62 bits
    AttemptId::new((millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b)
}

/// The vault's id of an attempt: the UUID text form.
pub(crate) fn vault_attempt_id(id: AttemptId) -> Result<tokenward_vault::AttemptId, DriverError> {
    let hex = format!("{:032x}", id.get());
    let text = format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    );
    tokenward_vault::AttemptId::new(text).map_err(|_| DriverError::Inconsistent("attempt id"))
}

fn parse_attempt_id(id: &tokenward_vault::AttemptId) -> Option<AttemptId> {
    let hex: String = id.as_str().chars().filter(|c| *c != '-').collect();
    u128::from_str_radix(&hex, 16).ok().map(AttemptId::new)
}

fn attempt_of(record: &AttemptRecord) -> Result<Attempt, DriverError> {
    Ok(Attempt {
        id: parse_attempt_id(&record.attempt_id)
            .ok_or(DriverError::Inconsistent("attempt id is not ours"))?,
        from: TokenVersion::new(record.from_version),
        reason: reason_of(&record.reason),
        actor: Actor::new(&record.actor),
        started_at: chrono_of(record.created_at),
    })
}

fn reason_of(text: &str) -> RotationReason {
    // Our notes read "start: <reason>".
    let reason = text.rsplit(": ").next().unwrap_or(text);
    match reason {
        "scheduled" => RotationReason::Scheduled,
        "compromise" => RotationReason::Compromise,
        "kek_compromise" => RotationReason::KekCompromise,
        _ => RotationReason::Manual,
    }
}

/// The vault's timestamp of a time.
pub(crate) fn vault_now(now: DateTime<Utc>) -> tokenward_vault::Timestamp {
    tokenward_vault::Timestamp::from_unix_millis(now.timestamp_millis())
}

pub(crate) fn chrono_of(at: tokenward_vault::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.unix_millis()).unwrap_or(DateTime::UNIX_EPOCH)
}
