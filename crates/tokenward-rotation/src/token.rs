//! The per-Item credential machine: access-token rotation with `/item/access_token/invalidate`,
//! its ambiguous outcomes, reconciliation and removal.
//!
//! See the crate docs for the diagram, the table of transitions and the invariants.

use std::fmt;

use chrono::Duration;
use tokenward_plaid::{Error as PlaidCallError, Outcome};

use crate::types::{
    Actor, AttemptId, AuditEvent, Machine, RotationReason, Timestamp, TokenVersion, Transition,
    TransitionError,
};

/// How long an Item may stay [`Unknown`](CredentialState::Unknown) before it is flagged for an
/// operator (it stays `Unknown`: only a probe leaves it).
pub const DEFAULT_MAX_UNKNOWN_AGE: Duration = Duration::hours(1);

/// One rotation attempt, as journalled before anything is sent to Plaid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The attempt's id: key of the write-ahead record and of the stashed new token.
    pub id: AttemptId,
    /// The version being rotated (the token sent to invalidate).
    pub from: TokenVersion,
    /// Why.
    pub reason: RotationReason,
    /// Who asked.
    pub actor: Actor,
    /// When the intent was recorded.
    pub started_at: Timestamp,
}

impl Attempt {
    /// The version a successful invalidate produces.
    ///
    /// # Errors
    ///
    /// [`TransitionError::VersionOverflow`] after `u64::MAX` rotations.
    pub fn to(&self) -> Result<TokenVersion, TransitionError> {
        self.from.next().ok_or(TransitionError::VersionOverflow)
    }
}

/// How long an ambiguous attempt has waited and how often its probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownSince {
    /// When the outcome became ambiguous.
    pub since: Timestamp,
    /// Probes that failed without an answer (429, 5xx, timeout).
    pub failed_probes: u32,
    /// Set once the Item has been `Unknown` longer than the policy allows: an operator must
    /// look. The Item stays `Unknown`.
    pub needs_operator: bool,
}

/// Why an Item is removed (Plaid's `reason_code` of `/item/remove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoveReason {
    /// The user asked (`delete-me`) or the Item is no longer needed.
    NoLongerNeeded,
    /// An incident: the token leaked and could not be rotated.
    Compromise,
    /// The connection does not work any more.
    NonFunctional,
    /// Fraud.
    Fraud,
}

impl RemoveReason {
    /// A stable lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RemoveReason::NoLongerNeeded => "no_longer_needed",
            RemoveReason::Compromise => "compromise",
            RemoveReason::NonFunctional => "non_functional",
            RemoveReason::Fraud => "fraud",
        }
    }
}

/// The credential state of one Item (what the store persists).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialState {
    /// The stored token `version` is current; no attempt is open.
    Active {
        /// The current version.
        version: TokenVersion,
    },
    /// The attempt is journalled; nothing has been sent to Plaid.
    Intent {
        /// The attempt.
        attempt: Attempt,
    },
    /// The sent marker is durable: invalidate is being (or may have been) sent, exactly once.
    InFlight {
        /// The attempt.
        attempt: Attempt,
    },
    /// Plaid answered 200 with a new token; it is being stashed under the attempt id
    /// (unconditionally: no CAS can lose it).
    Committing {
        /// The attempt.
        attempt: Attempt,
        /// Plaid's id of the invalidate request.
        request_id: String,
    },
    /// The new token is promoted to current; it is being checked with `/item/get`.
    Verifying {
        /// The attempt.
        attempt: Attempt,
    },
    /// The invalidate's outcome is ambiguous (timeout, reset, 5xx, crash after the marker).
    /// Left only by a probe of the *old* token, never by calling invalidate again.
    Unknown {
        /// The attempt.
        attempt: Attempt,
        /// Age and failed probes.
        unknown: UnknownSince,
    },
    /// `/item/get` with the old token is under way.
    Probing {
        /// The attempt.
        attempt: Attempt,
        /// Age and failed probes.
        unknown: UnknownSince,
    },
    /// The token of `version` is dead: look in the store for a newer version (another
    /// worker's) or our own stashed token before concluding.
    Reconcile {
        /// The version found dead.
        version: TokenVersion,
        /// Our attempt, if one is open; `None` when app traffic found the token dead.
        attempt: Option<Attempt>,
        /// Whether our invalidate may have been applied (an ambiguous outcome, then a probe
        /// that found the old token dead). `false` when Plaid told us the token was already
        /// dead, or when no invalidate was sent.
        maybe_applied: bool,
    },
    /// We sent invalidate, the old token is dead and the new one never reached the store: the
    /// Item is alive at Plaid but we hold no working token. Terminal until an operator acts.
    Orphaned {
        /// The attempt whose token was lost.
        attempt: Attempt,
        /// When it was found.
        since: Timestamp,
    },
    /// The token died without any invalidate of ours that could have been applied (removed at
    /// Plaid or by the user).
    Dead {
        /// The dead version.
        version: TokenVersion,
        /// When it was found.
        since: Timestamp,
    },
    /// The promoted new token is rejected by Plaid, or two rotations collided: an operator
    /// must decide. The stashed token is kept.
    Quarantined {
        /// The attempt.
        attempt: Attempt,
        /// When.
        since: Timestamp,
    },
    /// `/item/remove` is being sent (safe to re-drive).
    Removing {
        /// The version used to remove.
        version: TokenVersion,
        /// Why.
        reason: RemoveReason,
        /// Failed tries so far.
        tries: u32,
    },
    /// The Item is removed at Plaid. Terminal.
    Removed {
        /// When.
        since: Timestamp,
    },
    /// An operator closed an `Orphaned`, `Dead` or `Quarantined` Item. Terminal.
    Retired {
        /// When.
        since: Timestamp,
    },
}

impl Default for CredentialState {
    /// `Active` at [`TokenVersion::FIRST`]: an Item just exchanged.
    fn default() -> Self {
        CredentialState::Active {
            version: TokenVersion::FIRST,
        }
    }
}

impl CredentialState {
    /// The stable snake-case name of the state (audit records, metrics, storage).
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            CredentialState::Active { .. } => "active",
            CredentialState::Intent { .. } => "intent",
            CredentialState::InFlight { .. } => "in_flight",
            CredentialState::Committing { .. } => "committing",
            CredentialState::Verifying { .. } => "verifying",
            CredentialState::Unknown { .. } => "unknown",
            CredentialState::Probing { .. } => "probing",
            CredentialState::Reconcile { .. } => "reconcile",
            CredentialState::Orphaned { .. } => "orphaned",
            CredentialState::Dead { .. } => "dead",
            CredentialState::Quarantined { .. } => "quarantined",
            CredentialState::Removing { .. } => "removing",
            CredentialState::Removed { .. } => "removed",
            CredentialState::Retired { .. } => "retired",
        }
    }

    /// The open attempt, if any.
    #[must_use]
    pub fn attempt(&self) -> Option<&Attempt> {
        match self {
            CredentialState::Intent { attempt }
            | CredentialState::InFlight { attempt }
            | CredentialState::Committing { attempt, .. }
            | CredentialState::Verifying { attempt }
            | CredentialState::Unknown { attempt, .. }
            | CredentialState::Probing { attempt, .. }
            | CredentialState::Orphaned { attempt, .. }
            | CredentialState::Quarantined { attempt, .. } => Some(attempt),
            CredentialState::Reconcile { attempt, .. } => attempt.as_ref(),
            CredentialState::Active { .. }
            | CredentialState::Dead { .. }
            | CredentialState::Removing { .. }
            | CredentialState::Removed { .. }
            | CredentialState::Retired { .. } => None,
        }
    }

    /// Whether app traffic may use the stored current token.
    ///
    /// `true` while the stored token may work (`Active`, during a rotation, while `Unknown`);
    /// readers that get `INVALID_ACCESS_TOKEN` re-read the store once. `false` for `Orphaned`,
    /// `Dead`, `Quarantined`, `Reconcile` and removal: those Items stay out of normal traffic.
    #[must_use]
    pub const fn serves_traffic(&self) -> bool {
        matches!(
            self,
            CredentialState::Active { .. }
                | CredentialState::Intent { .. }
                | CredentialState::InFlight { .. }
                | CredentialState::Committing { .. }
                | CredentialState::Verifying { .. }
                | CredentialState::Unknown { .. }
                | CredentialState::Probing { .. }
        )
    }

    /// Whether no automatic step will ever leave this state (only an operator).
    #[must_use]
    pub const fn is_terminal(&self) -> bool {
        matches!(
            self,
            CredentialState::Orphaned { .. }
                | CredentialState::Dead { .. }
                | CredentialState::Quarantined { .. }
                | CredentialState::Removed { .. }
                | CredentialState::Retired { .. }
        )
    }
}

/// How a Plaid call failed, reduced to what the machine needs (no message, no token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// Whether the request may have been applied.
    pub outcome: Outcome,
    /// `INVALID_ACCESS_TOKEN`: the token sent is dead.
    pub invalid_access_token: bool,
    /// HTTP 429 / `RATE_LIMIT_EXCEEDED`.
    pub rate_limited: bool,
    /// An `ITEM_ERROR` (for example `ITEM_LOGIN_REQUIRED`): the token itself still works.
    pub item_error: bool,
    /// Plaid's request id, if it answered.
    pub request_id: Option<String>,
}

impl CallFailure {
    /// Reads a [`tokenward_plaid::Error`].
    #[must_use]
    pub fn from_error(error: &PlaidCallError) -> Self {
        CallFailure {
            outcome: error.outcome(),
            invalid_access_token: error.is_invalid_access_token(),
            rate_limited: error.is_rate_limited(),
            item_error: error.is_item_error(),
            request_id: error.request_id().map(str::to_owned),
        }
    }

    /// A failure with this outcome and no Plaid error object (tests, fakes).
    #[must_use]
    pub fn with_outcome(outcome: Outcome) -> Self {
        CallFailure {
            outcome,
            invalid_access_token: false,
            rate_limited: false,
            item_error: false,
            request_id: None,
        }
    }

    /// Plaid answered `INVALID_ACCESS_TOKEN` (a known outcome).
    #[must_use]
    pub fn invalid_access_token() -> Self {
        CallFailure {
            invalid_access_token: true,
            ..CallFailure::with_outcome(Outcome::Known)
        }
    }

    /// Whether the request may have been applied. Unknown future outcomes count as ambiguous.
    #[must_use]
    pub fn is_ambiguous(&self) -> bool {
        !matches!(self.outcome, Outcome::Known | Outcome::NotSent)
    }
}

/// An input to the credential machine: a request, or the result of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialInput {
    /// Rotate the token (the driver holds the Item's lease).
    Start {
        /// A fresh attempt id.
        attempt: AttemptId,
        /// Why.
        reason: RotationReason,
        /// Who.
        actor: Actor,
    },
    /// [`CredentialCommand::RecordIntent`] is durable.
    IntentRecorded,
    /// [`CredentialCommand::MarkSent`] is durable.
    SentMarked,
    /// Invalidate answered 200. The new token stays with the driver until it is stashed.
    InvalidateOk {
        /// Plaid's request id.
        request_id: String,
    },
    /// Invalidate failed.
    InvalidateFailed(CallFailure),
    /// [`CredentialCommand::StashNewToken`] is durable.
    NewTokenStashed,
    /// [`CredentialCommand::PromoteStashed`] succeeded.
    Promoted,
    /// [`CredentialCommand::PromoteStashed`] lost its compare-and-swap: the store's current
    /// version is not the attempt's `from`.
    PromoteConflict {
        /// The store's current version.
        current: TokenVersion,
    },
    /// `/item/get` with the new token answered (200 or an Item error).
    Verified,
    /// `/item/get` with the new token failed.
    VerifyFailed(CallFailure),
    /// Time to probe an `Unknown` Item (after the driver's backoff).
    ProbeDue,
    /// `/item/get` with the old token answered: invalidate was not applied.
    ProbeOldTokenWorks,
    /// `/item/get` with the old token answered `INVALID_ACCESS_TOKEN`.
    ProbeOldTokenInvalid,
    /// `/item/get` with the old token gave no answer (429, 5xx, timeout).
    ProbeFailed,
    /// [`CredentialCommand::CheckStore`]: the store holds a newer current version (another
    /// worker's rotation).
    NewerVersionFound {
        /// The newer version.
        version: TokenVersion,
    },
    /// [`CredentialCommand::CheckStore`]: our attempt's new token is stashed, not promoted.
    StashFound,
    /// [`CredentialCommand::CheckStore`]: nothing newer.
    NoNewerVersion,
    /// App traffic got `INVALID_ACCESS_TOKEN` with `version` and a re-read of the store gave
    /// the same version.
    TokenRejected {
        /// The version that was rejected.
        version: TokenVersion,
    },
    /// Remove the Item at Plaid.
    RemoveRequested {
        /// Why.
        reason: RemoveReason,
        /// Who.
        actor: Actor,
    },
    /// `/item/remove` answered 200.
    RemoveOk {
        /// Plaid's request id.
        request_id: String,
    },
    /// `/item/remove` failed.
    RemoveFailed(CallFailure),
    /// The process restarted (or a lease expired) and this state was read from the store.
    Recover {
        /// Whether the store holds a stashed token for the open attempt.
        stashed: bool,
    },
    /// An operator closed an `Orphaned`, `Dead` or `Quarantined` Item (relinked, ticket).
    OperatorResolved {
        /// Who.
        actor: Actor,
        /// Why (a ticket, "relinked as item …"): the audit record's reason. Never a token.
        reason: String,
    },
}

impl CredentialInput {
    /// The stable snake-case name of the input.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            CredentialInput::Start { .. } => "start",
            CredentialInput::IntentRecorded => "intent_recorded",
            CredentialInput::SentMarked => "sent_marked",
            CredentialInput::InvalidateOk { .. } => "invalidate_ok",
            CredentialInput::InvalidateFailed(_) => "invalidate_failed",
            CredentialInput::NewTokenStashed => "new_token_stashed",
            CredentialInput::Promoted => "promoted",
            CredentialInput::PromoteConflict { .. } => "promote_conflict",
            CredentialInput::Verified => "verified",
            CredentialInput::VerifyFailed(_) => "verify_failed",
            CredentialInput::ProbeDue => "probe_due",
            CredentialInput::ProbeOldTokenWorks => "probe_old_token_works",
            CredentialInput::ProbeOldTokenInvalid => "probe_old_token_invalid",
            CredentialInput::ProbeFailed => "probe_failed",
            CredentialInput::NewerVersionFound { .. } => "newer_version_found",
            CredentialInput::StashFound => "stash_found",
            CredentialInput::NoNewerVersion => "no_newer_version",
            CredentialInput::TokenRejected { .. } => "token_rejected",
            CredentialInput::RemoveRequested { .. } => "remove_requested",
            CredentialInput::RemoveOk { .. } => "remove_ok",
            CredentialInput::RemoveFailed(_) => "remove_failed",
            CredentialInput::Recover { .. } => "recover",
            CredentialInput::OperatorResolved { .. } => "operator_resolved",
        }
    }
}

/// What an alert is about. Alerts carry ids and versions only.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Alert {
    /// The Item's new token was lost: it is alive at Plaid and unusable here. Runbook: ask the
    /// user to relink (new Item), then `/item/remove` through Plaid support with the attempt's
    /// timestamps and `request_id`s.
    Orphaned {
        /// The attempt.
        attempt: AttemptId,
    },
    /// The token died without our invalidate (removed elsewhere).
    Dead {
        /// The version.
        version: TokenVersion,
    },
    /// The promoted token is rejected, or two rotations collided.
    Quarantined {
        /// The attempt.
        attempt: AttemptId,
    },
    /// The Item has been `Unknown` longer than the policy allows.
    UnknownTooLong {
        /// The attempt.
        attempt: AttemptId,
        /// Since when.
        since: Timestamp,
    },
}

/// A command of the credential machine, for the driver.
///
/// Writes ([`is_write`](Self::is_write)) go to the vault; the first write of a transition
/// carries the transition's audit record in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialCommand {
    /// Write: journal the attempt and set the state to `Intent` (CAS on `Active(from)` and the
    /// lease epoch). Answer with [`CredentialInput::IntentRecorded`].
    RecordIntent {
        /// The attempt.
        attempt: Attempt,
    },
    /// Write: set the attempt's sent marker durably (fsync), and the state to `InFlight`.
    /// Answer with [`CredentialInput::SentMarked`].
    MarkSent {
        /// The attempt.
        attempt: AttemptId,
    },
    /// Remote: `/item/access_token/invalidate` with the token of `version`. Never retried;
    /// emitted once per attempt, only after the sent marker is durable.
    CallInvalidate {
        /// The attempt.
        attempt: AttemptId,
        /// The token to send.
        version: TokenVersion,
    },
    /// Write, unconditional (no CAS): store the new token keyed by the attempt id. Answer with
    /// [`CredentialInput::NewTokenStashed`].
    StashNewToken {
        /// The attempt.
        attempt: AttemptId,
    },
    /// Write, CAS on the current version being `expected`: make the stashed token current as
    /// `version`. Answer with [`CredentialInput::Promoted`] or
    /// [`CredentialInput::PromoteConflict`].
    PromoteStashed {
        /// The attempt.
        attempt: AttemptId,
        /// The version that must be current.
        expected: TokenVersion,
        /// The new version.
        version: TokenVersion,
    },
    /// Remote read: `/item/get` with the token of `version` (the new one).
    VerifyNewToken {
        /// The attempt.
        attempt: AttemptId,
        /// The version to check.
        version: TokenVersion,
    },
    /// Remote read: `/item/get` with the *old* token of `version`.
    ProbeOldToken {
        /// The attempt.
        attempt: AttemptId,
        /// The old version.
        version: TokenVersion,
    },
    /// Local read: is there a current version newer than `version`, or a stashed token of
    /// `attempt`? Answer with `NewerVersionFound`, `StashFound` or `NoNewerVersion`.
    CheckStore {
        /// Our attempt, if any.
        attempt: Option<AttemptId>,
        /// The dead version.
        version: TokenVersion,
    },
    /// Remote: `/item/remove` with the token of `version` (safe to re-drive).
    CallItemRemove {
        /// The version.
        version: TokenVersion,
        /// Why.
        reason: RemoveReason,
    },
    /// Write: persist the transition's state (CAS on the lease epoch).
    SaveState,
    /// Raise an alert event (operators, paging).
    RaiseAlert(Alert),
    /// Release the Item's lease: no automatic step follows.
    ReleaseLease,
}

impl CredentialCommand {
    /// Whether the command writes to the store.
    #[must_use]
    pub const fn is_write(&self) -> bool {
        matches!(
            self,
            CredentialCommand::RecordIntent { .. }
                | CredentialCommand::MarkSent { .. }
                | CredentialCommand::StashNewToken { .. }
                | CredentialCommand::PromoteStashed { .. }
                | CredentialCommand::SaveState
        )
    }
}

/// The credential machine's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialPolicy {
    /// How long an Item may stay `Unknown` before it is flagged for an operator.
    pub max_unknown_age: Duration,
}

impl Default for CredentialPolicy {
    fn default() -> Self {
        CredentialPolicy {
            max_unknown_age: DEFAULT_MAX_UNKNOWN_AGE,
        }
    }
}

/// One step of the credential machine under the default policy; see [`CredentialPolicy::step`].
///
/// # Errors
///
/// [`TransitionError::Illegal`] when `input` is not valid in `state`.
pub fn step(
    state: &CredentialState,
    input: CredentialInput,
    now: Timestamp,
) -> Result<Transition<CredentialState, CredentialCommand>, TransitionError> {
    CredentialPolicy::default().step(state, input, now)
}

type Step = Result<Transition<CredentialState, CredentialCommand>, TransitionError>;

impl CredentialPolicy {
    /// One step: the next state, the commands, the audit record. Pure: no I/O, no clock.
    ///
    /// # Errors
    ///
    /// [`TransitionError::Illegal`] when `input` is not valid in `state` (the caller keeps
    /// `state`); [`TransitionError::VersionOverflow`] at the end of the version space.
    // One match over the transition table, grouped by concern, reads best whole (even where
    // two arms of different groups do the same thing).
    #[allow(clippy::too_many_lines, clippy::match_same_arms)]
    pub fn step(&self, state: &CredentialState, input: CredentialInput, now: Timestamp) -> Step {
        use CredentialCommand as C;
        use CredentialInput as I;
        use CredentialState as S;

        let event = input.name();
        let go = |next: S, commands: Vec<C>| Ok(change(state, next, commands, event, now));
        let stay = |commands: Vec<C>| Ok(same(state, commands));

        match (state, input) {
            // --- Rotation: the happy path -----------------------------------------------
            (
                S::Active { version },
                I::Start {
                    attempt,
                    reason,
                    actor,
                },
            ) => {
                let attempt = Attempt {
                    id: attempt,
                    from: *version,
                    reason,
                    actor,
                    started_at: now,
                };
                attempt.to()?;
                let next = S::Intent {
                    attempt: attempt.clone(),
                };
                go(next, vec![C::RecordIntent { attempt }])
            }
            (S::Intent { attempt }, I::IntentRecorded) => go(
                S::InFlight {
                    attempt: attempt.clone(),
                },
                vec![C::MarkSent {
                    attempt: attempt.id,
                }],
            ),
            (S::InFlight { attempt }, I::SentMarked) => stay(vec![C::CallInvalidate {
                attempt: attempt.id,
                version: attempt.from,
            }]),
            (S::InFlight { attempt }, I::InvalidateOk { request_id }) => go(
                S::Committing {
                    attempt: attempt.clone(),
                    request_id,
                },
                vec![C::StashNewToken {
                    attempt: attempt.id,
                }],
            ),
            (S::Committing { attempt, .. }, I::NewTokenStashed)
            | (
                S::Reconcile {
                    attempt: Some(attempt),
                    ..
                },
                I::StashFound,
            ) => promote(attempt).and_then(|(next, commands)| go(next, commands)),
            (S::Verifying { attempt }, I::Promoted) => stay(vec![C::VerifyNewToken {
                attempt: attempt.id,
                version: attempt.to()?,
            }]),
            (S::Verifying { attempt }, I::PromoteConflict { .. }) => go(
                S::Quarantined {
                    attempt: attempt.clone(),
                    since: now,
                },
                vec![
                    C::SaveState,
                    C::RaiseAlert(Alert::Quarantined {
                        attempt: attempt.id,
                    }),
                    C::ReleaseLease,
                ],
            ),
            (S::Verifying { attempt }, I::Verified) => go(
                S::Active {
                    version: attempt.to()?,
                },
                vec![C::SaveState, C::ReleaseLease],
            ),
            (S::Verifying { attempt }, I::VerifyFailed(failure)) => {
                if failure.invalid_access_token {
                    go(
                        S::Quarantined {
                            attempt: attempt.clone(),
                            since: now,
                        },
                        vec![
                            C::SaveState,
                            C::RaiseAlert(Alert::Quarantined {
                                attempt: attempt.id,
                            }),
                            C::ReleaseLease,
                        ],
                    )
                } else {
                    // Verification is advisory: the token Plaid handed back is stored and
                    // current; a transient failure does not make it wrong.
                    go(
                        S::Active {
                            version: attempt.to()?,
                        },
                        vec![C::SaveState, C::ReleaseLease],
                    )
                }
            }

            // --- Invalidate failed --------------------------------------------------------
            (S::InFlight { attempt }, I::InvalidateFailed(failure)) => {
                if failure.is_ambiguous() {
                    go(
                        S::Unknown {
                            attempt: attempt.clone(),
                            unknown: UnknownSince {
                                since: now,
                                failed_probes: 0,
                                needs_operator: false,
                            },
                        },
                        vec![C::SaveState],
                    )
                } else if failure.invalid_access_token {
                    // The old token was already dead when we sent it.
                    go(
                        S::Reconcile {
                            version: attempt.from,
                            attempt: Some(attempt.clone()),
                            maybe_applied: false,
                        },
                        vec![
                            C::SaveState,
                            C::CheckStore {
                                attempt: Some(attempt.id),
                                version: attempt.from,
                            },
                        ],
                    )
                } else {
                    // A definite reject (429, bad keys, Item error) or never sent.
                    go(
                        S::Active {
                            version: attempt.from,
                        },
                        vec![C::SaveState, C::ReleaseLease],
                    )
                }
            }

            // --- Unknown: probe the old token -----------------------------------------------
            (S::Unknown { attempt, unknown }, I::ProbeDue | I::Recover { stashed: false }) => go(
                S::Probing {
                    attempt: attempt.clone(),
                    unknown: *unknown,
                },
                vec![
                    C::SaveState,
                    C::ProbeOldToken {
                        attempt: attempt.id,
                        version: attempt.from,
                    },
                ],
            ),
            (S::Probing { attempt, .. }, I::Recover { stashed: false } | I::ProbeDue) => {
                stay(vec![C::ProbeOldToken {
                    attempt: attempt.id,
                    version: attempt.from,
                }])
            }
            (S::Probing { attempt, .. }, I::ProbeOldTokenWorks) => go(
                S::Active {
                    version: attempt.from,
                },
                vec![C::SaveState, C::ReleaseLease],
            ),
            (S::Probing { attempt, .. }, I::ProbeOldTokenInvalid) => go(
                S::Reconcile {
                    version: attempt.from,
                    attempt: Some(attempt.clone()),
                    maybe_applied: true,
                },
                vec![
                    C::SaveState,
                    C::CheckStore {
                        attempt: Some(attempt.id),
                        version: attempt.from,
                    },
                ],
            ),
            (S::Probing { attempt, unknown }, I::ProbeFailed) => {
                let overdue = now - unknown.since > self.max_unknown_age;
                let mut commands = vec![C::SaveState];
                if overdue && !unknown.needs_operator {
                    commands.push(C::RaiseAlert(Alert::UnknownTooLong {
                        attempt: attempt.id,
                        since: unknown.since,
                    }));
                }
                go(
                    S::Unknown {
                        attempt: attempt.clone(),
                        unknown: UnknownSince {
                            since: unknown.since,
                            failed_probes: unknown.failed_probes.saturating_add(1),
                            needs_operator: unknown.needs_operator || overdue,
                        },
                    },
                    commands,
                )
            }

            // --- Reconcile ----------------------------------------------------------------
            (S::Reconcile { version, .. }, I::NewerVersionFound { version: newer })
                if newer > *version =>
            {
                go(
                    S::Active { version: newer },
                    vec![C::SaveState, C::ReleaseLease],
                )
            }
            (
                S::Reconcile {
                    attempt,
                    version,
                    maybe_applied,
                },
                I::NoNewerVersion,
            ) => match attempt.as_ref().filter(|_| *maybe_applied) {
                Some(attempt) => go(
                    S::Orphaned {
                        attempt: attempt.clone(),
                        since: now,
                    },
                    vec![
                        C::SaveState,
                        C::RaiseAlert(Alert::Orphaned {
                            attempt: attempt.id,
                        }),
                        C::ReleaseLease,
                    ],
                ),
                None => go(
                    S::Dead {
                        version: *version,
                        since: now,
                    },
                    vec![
                        C::SaveState,
                        C::RaiseAlert(Alert::Dead { version: *version }),
                        C::ReleaseLease,
                    ],
                ),
            },
            (
                S::Reconcile {
                    attempt, version, ..
                },
                I::Recover { .. },
            ) => stay(vec![C::CheckStore {
                attempt: attempt.as_ref().map(|a| a.id),
                version: *version,
            }]),
            (S::Active { version }, I::TokenRejected { version: rejected }) => {
                if rejected == *version {
                    go(
                        S::Reconcile {
                            version: *version,
                            attempt: None,
                            maybe_applied: false,
                        },
                        vec![
                            C::SaveState,
                            C::CheckStore {
                                attempt: None,
                                version: *version,
                            },
                        ],
                    )
                } else {
                    // A stale reader: the store has moved on.
                    stay(Vec::new())
                }
            }

            // --- Recovery from the store ------------------------------------------------------
            (
                S::Active { .. }
                | S::Orphaned { .. }
                | S::Dead { .. }
                | S::Quarantined { .. }
                | S::Removed { .. }
                | S::Retired { .. },
                I::Recover { .. },
            ) => stay(Vec::new()),
            (S::Intent { attempt }, I::Recover { .. }) => go(
                // No sent marker: invalidate was never sent.
                S::Active {
                    version: attempt.from,
                },
                vec![C::SaveState, C::ReleaseLease],
            ),
            (S::InFlight { attempt } | S::Committing { attempt, .. }, I::Recover { stashed }) => {
                if stashed {
                    let (next, commands) = promote(attempt)?;
                    go(next, commands)
                } else {
                    go(
                        S::Unknown {
                            attempt: attempt.clone(),
                            unknown: UnknownSince {
                                since: now,
                                failed_probes: 0,
                                needs_operator: false,
                            },
                        },
                        vec![C::SaveState],
                    )
                }
            }
            (S::Verifying { attempt }, I::Recover { .. }) => stay(vec![C::VerifyNewToken {
                attempt: attempt.id,
                version: attempt.to()?,
            }]),
            (
                S::Unknown { attempt, .. } | S::Probing { attempt, .. },
                I::Recover { stashed: true },
            ) => {
                // Our token reached the store after all (a crash after the stash).
                let (next, commands) = promote(attempt)?;
                go(next, commands)
            }
            (
                S::Removing {
                    version, reason, ..
                },
                I::Recover { .. },
            ) => stay(vec![C::CallItemRemove {
                version: *version,
                reason: *reason,
            }]),

            // --- Removal ------------------------------------------------------------------
            (S::Active { version }, I::RemoveRequested { reason, actor }) => {
                let version = *version;
                let mut t = change(
                    state,
                    S::Removing {
                        version,
                        reason,
                        tries: 0,
                    },
                    vec![C::SaveState, C::CallItemRemove { version, reason }],
                    event,
                    now,
                );
                if let Some(audit) = &mut t.audit {
                    audit.reason = Some(reason.as_str().to_owned());
                    audit.actor = Some(actor);
                }
                Ok(t)
            }
            (S::Removing { .. }, I::RemoveOk { request_id }) => {
                let mut t = change(
                    state,
                    S::Removed { since: now },
                    vec![C::SaveState, C::ReleaseLease],
                    event,
                    now,
                );
                if let Some(audit) = &mut t.audit {
                    audit.request_id = Some(request_id);
                }
                Ok(t)
            }
            (
                S::Removing {
                    version,
                    reason,
                    tries,
                },
                I::RemoveFailed(failure),
            ) => {
                if failure.invalid_access_token {
                    // The desired end state, "token dead", holds.
                    go(
                        S::Removed { since: now },
                        vec![C::SaveState, C::ReleaseLease],
                    )
                } else {
                    // Safe to re-drive; the driver backs off and sends `Recover`.
                    Ok(Transition {
                        state: S::Removing {
                            version: *version,
                            reason: *reason,
                            tries: tries.saturating_add(1),
                        },
                        commands: Vec::new(),
                        audit: None,
                    })
                }
            }

            // --- Operators ----------------------------------------------------------------
            (
                S::Orphaned { .. } | S::Dead { .. } | S::Quarantined { .. },
                I::OperatorResolved { actor, reason },
            ) => {
                let mut t = change(
                    state,
                    S::Retired { since: now },
                    vec![C::SaveState],
                    event,
                    now,
                );
                if let Some(audit) = &mut t.audit {
                    audit.actor = Some(actor);
                    audit.reason = Some(reason);
                }
                Ok(t)
            }

            (state, input) => Err(TransitionError::Illegal {
                machine: Machine::Credential,
                state: state.name(),
                input: input.name(),
            }),
        }
    }
}

/// `Committing` (or a recovered stash) → `Verifying` with the CAS promote.
fn promote(
    attempt: &Attempt,
) -> Result<(CredentialState, Vec<CredentialCommand>), TransitionError> {
    let version = attempt.to()?;
    Ok((
        CredentialState::Verifying {
            attempt: attempt.clone(),
        },
        vec![CredentialCommand::PromoteStashed {
            attempt: attempt.id,
            expected: attempt.from,
            version,
        }],
    ))
}

/// A change of state with its audit record (filled from the attempt in `from` or `to`).
fn change(
    from: &CredentialState,
    to: CredentialState,
    commands: Vec<CredentialCommand>,
    event: &'static str,
    now: Timestamp,
) -> Transition<CredentialState, CredentialCommand> {
    let mut audit = AuditEvent::new(Machine::Credential, event, from.name(), to.name(), now);
    if let Some(attempt) = to.attempt().or_else(|| from.attempt()) {
        audit.attempt = Some(attempt.id);
        audit.reason = Some(attempt.reason.as_str().to_owned());
        audit.actor = Some(attempt.actor.clone());
    }
    if let CredentialState::Committing { request_id, .. } = &to {
        audit.request_id = Some(request_id.clone());
    }
    let audit = (from.name() != to.name()).then_some(audit);
    Transition {
        state: to,
        commands,
        audit,
    }
}

/// The same state with commands and no audit record.
fn same(
    state: &CredentialState,
    commands: Vec<CredentialCommand>,
) -> Transition<CredentialState, CredentialCommand> {
    Transition {
        state: state.clone(),
        commands,
        audit: None,
    }
}

impl fmt::Display for CredentialState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
