//! The KEK rewrap job: planned → running ⇄ paused → verifying → completed, cursor-based and
//! resumable from any crash.

use tokenward_envelope::KeyVersion;

use crate::types::{AuditEvent, Machine, Timestamp, Transition, TransitionError};

/// The default number of envelopes per batch.
pub const DEFAULT_BATCH_SIZE: u32 = 500;

/// An opaque position in the store's envelope order (the last key of the previous batch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// A cursor from the store's key.
    #[must_use]
    pub fn new(key: impl Into<String>) -> Self {
        Cursor(key.into())
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Counters of a job, reported through the progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Envelopes under older versions when the job was planned.
    pub planned: u64,
    /// Envelopes rewrapped by this job.
    pub rewrapped: u64,
    /// Envelopes seen already under the target (skipped: a rerun after a crash).
    pub skipped: u64,
    /// Envelopes that failed (left as they were; the next round retries them).
    pub failed: u64,
    /// Batches done.
    pub batches: u64,
    /// Verification rounds that found envelopes left and went back to running.
    pub rounds: u32,
}

/// Why a job is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseReason {
    /// An operator paused it.
    Operator,
    /// A batch failed too often (circuit breaker).
    ErrorRate,
    /// The key provider rate-limited us.
    RateLimited,
    /// The verification sample did not decrypt.
    VerifyFailed,
}

impl PauseReason {
    /// Every reason, for parsing a stored name.
    pub const ALL: [PauseReason; 4] = [
        PauseReason::Operator,
        PauseReason::ErrorRate,
        PauseReason::RateLimited,
        PauseReason::VerifyFailed,
    ];

    /// The stable snake-case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            PauseReason::Operator => "operator",
            PauseReason::ErrorRate => "error_rate",
            PauseReason::RateLimited => "rate_limited",
            PauseReason::VerifyFailed => "verify_failed",
        }
    }
}

/// The state of a rewrap job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RewrapState {
    /// Planned (dry-run output): the counts, nothing written.
    Planned {
        /// The target version (must be primary to start).
        target: KeyVersion,
        /// The counters (`planned` set).
        progress: Progress,
    },
    /// Rewrapping batches after `cursor`.
    Running {
        /// The target version.
        target: KeyVersion,
        /// The last key done; `None` at the start.
        cursor: Option<Cursor>,
        /// The counters.
        progress: Progress,
    },
    /// Paused at `cursor`.
    Paused {
        /// The target version.
        target: KeyVersion,
        /// The last key done.
        cursor: Option<Cursor>,
        /// The counters.
        progress: Progress,
        /// Why.
        reason: PauseReason,
    },
    /// The cursor is exhausted: counting what is left and opening a sample.
    Verifying {
        /// The target version.
        target: KeyVersion,
        /// The counters.
        progress: Progress,
    },
    /// Nothing is left under older versions. Terminal.
    Completed {
        /// The target version.
        target: KeyVersion,
        /// The counters.
        progress: Progress,
        /// When.
        at: Timestamp,
    },
}

impl RewrapState {
    /// The stable snake-case name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            RewrapState::Planned { .. } => "planned",
            RewrapState::Running { .. } => "running",
            RewrapState::Paused { .. } => "paused",
            RewrapState::Verifying { .. } => "verifying",
            RewrapState::Completed { .. } => "completed",
        }
    }

    /// A planned job.
    #[must_use]
    pub fn plan(target: KeyVersion, envelopes_under_older: u64) -> Self {
        RewrapState::Planned {
            target,
            progress: Progress {
                planned: envelopes_under_older,
                ..Progress::default()
            },
        }
    }

    /// The target version.
    #[must_use]
    pub fn target(&self) -> KeyVersion {
        match self {
            RewrapState::Planned { target, .. }
            | RewrapState::Running { target, .. }
            | RewrapState::Paused { target, .. }
            | RewrapState::Verifying { target, .. }
            | RewrapState::Completed { target, .. } => *target,
        }
    }

    /// The counters.
    #[must_use]
    pub fn progress(&self) -> Progress {
        match self {
            RewrapState::Planned { progress, .. }
            | RewrapState::Running { progress, .. }
            | RewrapState::Paused { progress, .. }
            | RewrapState::Verifying { progress, .. }
            | RewrapState::Completed { progress, .. } => *progress,
        }
    }
}

/// An input of the rewrap machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RewrapInput {
    /// Start a planned job.
    Start {
        /// Whether the target is the keyring's primary.
        target_is_primary: bool,
    },
    /// A batch finished.
    BatchDone {
        /// The last key of the batch; `None` when the store had nothing after the cursor.
        last: Option<Cursor>,
        /// Rewrapped by this batch.
        rewrapped: u64,
        /// Already under the target.
        skipped: u64,
        /// Failed.
        failed: u64,
    },
    /// The key provider rate-limited the batch (nothing written).
    RateLimited,
    /// An operator pauses the job.
    Pause,
    /// An operator resumes it.
    Resume,
    /// [`RewrapCommand::Verify`] answered.
    Verified {
        /// Envelopes still under older versions.
        remaining: u64,
        /// Whether the sample opened.
        sample_ok: bool,
    },
    /// The process restarted with this state read from the store.
    Recover,
}

impl RewrapInput {
    /// The stable snake-case name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            RewrapInput::Start { .. } => "start",
            RewrapInput::BatchDone { .. } => "batch_done",
            RewrapInput::RateLimited => "rate_limited",
            RewrapInput::Pause => "pause",
            RewrapInput::Resume => "resume",
            RewrapInput::Verified { .. } => "verified",
            RewrapInput::Recover => "recover",
        }
    }
}

/// A command of the rewrap machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RewrapCommand {
    /// Write: persist the job (cursor and counters), with the audit record if any.
    SaveJob,
    /// Rewrap up to `limit` envelopes after `after` (each a CAS on its old KEK version) and
    /// answer with [`RewrapInput::BatchDone`]. The driver waits for its rate limit first.
    RewrapBatch {
        /// The target version.
        target: KeyVersion,
        /// The cursor.
        after: Option<Cursor>,
        /// The batch size.
        limit: u32,
    },
    /// Count the envelopes under versions older than `target` and open a sample; answer with
    /// [`RewrapInput::Verified`].
    Verify {
        /// The target version.
        target: KeyVersion,
    },
    /// Report the counters to the progress callback.
    ReportProgress(Progress),
}

impl RewrapCommand {
    /// Whether the command writes to the store.
    #[must_use]
    pub const fn is_write(&self) -> bool {
        matches!(self, RewrapCommand::SaveJob)
    }
}

/// The rewrap machine's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewrapPolicy {
    /// Envelopes per batch.
    pub batch_size: u32,
    /// Pause when more than this share of a batch fails, in percent.
    pub max_failure_percent: u8,
}

impl Default for RewrapPolicy {
    fn default() -> Self {
        RewrapPolicy {
            batch_size: DEFAULT_BATCH_SIZE,
            max_failure_percent: 10,
        }
    }
}

/// One step of the rewrap machine under the default policy; see [`RewrapPolicy::step`].
///
/// # Errors
///
/// As [`RewrapPolicy::step`].
pub fn step(
    job: &RewrapState,
    input: RewrapInput,
    now: Timestamp,
) -> Result<Transition<RewrapState, RewrapCommand>, TransitionError> {
    RewrapPolicy::default().step(job, input, now)
}

impl RewrapPolicy {
    /// One step. Pure.
    ///
    /// # Errors
    ///
    /// [`TransitionError::Illegal`] for an input the state does not accept;
    /// [`TransitionError::Refused`] to start towards a target that is not primary.
    #[allow(clippy::too_many_lines)] // the transition table reads best whole
    pub fn step(
        &self,
        job: &RewrapState,
        input: RewrapInput,
        now: Timestamp,
    ) -> Result<Transition<RewrapState, RewrapCommand>, TransitionError> {
        use RewrapCommand as C;
        use RewrapInput as I;
        use RewrapState as S;

        let name = input.name();
        let target = job.target();
        let batch = |after: Option<Cursor>| C::RewrapBatch {
            target,
            after,
            limit: self.batch_size,
        };
        let go = |to: S, commands: Vec<C>| {
            let audit = (job.name() != to.name()).then(|| {
                let mut audit = AuditEvent::new(Machine::Rewrap, name, job.name(), to.name(), now);
                audit.key_version = Some(target.get());
                audit
            });
            Ok(Transition {
                state: to,
                commands,
                audit,
            })
        };

        match (job, input) {
            (S::Planned { progress, .. }, I::Start { target_is_primary }) => {
                if !target_is_primary {
                    return Err(TransitionError::Refused {
                        machine: Machine::Rewrap,
                        state: job.name(),
                        input: name,
                        guard: "the target version is not primary".into(),
                    });
                }
                go(
                    S::Running {
                        target,
                        cursor: None,
                        progress: *progress,
                    },
                    vec![C::SaveJob, batch(None)],
                )
            }
            (
                S::Running {
                    cursor, progress, ..
                },
                I::BatchDone {
                    last,
                    rewrapped,
                    skipped,
                    failed,
                },
            ) => {
                let mut progress = *progress;
                progress.rewrapped = progress.rewrapped.saturating_add(rewrapped);
                progress.skipped = progress.skipped.saturating_add(skipped);
                progress.failed = progress.failed.saturating_add(failed);
                progress.batches = progress.batches.saturating_add(1);
                let seen = rewrapped.saturating_add(skipped).saturating_add(failed);
                let tripped = failed > 0
                    && u128::from(failed) * 100
                        > u128::from(seen) * u128::from(self.max_failure_percent);
                match last {
                    None => go(
                        S::Verifying { target, progress },
                        vec![
                            C::SaveJob,
                            C::ReportProgress(progress),
                            C::Verify { target },
                        ],
                    ),
                    Some(last) if tripped => go(
                        S::Paused {
                            target,
                            cursor: Some(last),
                            progress,
                            reason: PauseReason::ErrorRate,
                        },
                        vec![C::SaveJob, C::ReportProgress(progress)],
                    ),
                    Some(last) => {
                        if cursor.as_ref() == Some(&last) {
                            // A cursor that does not move would loop for ever.
                            return Err(TransitionError::Refused {
                                machine: Machine::Rewrap,
                                state: job.name(),
                                input: name,
                                guard: "the batch cursor did not advance".into(),
                            });
                        }
                        Ok(Transition {
                            state: S::Running {
                                target,
                                cursor: Some(last.clone()),
                                progress,
                            },
                            commands: vec![
                                C::SaveJob,
                                C::ReportProgress(progress),
                                batch(Some(last)),
                            ],
                            audit: None,
                        })
                    }
                }
            }
            (
                S::Running {
                    cursor, progress, ..
                },
                I::RateLimited,
            ) => go(
                S::Paused {
                    target,
                    cursor: cursor.clone(),
                    progress: *progress,
                    reason: PauseReason::RateLimited,
                },
                vec![C::SaveJob],
            ),
            (
                S::Running {
                    cursor, progress, ..
                },
                I::Pause,
            ) => go(
                S::Paused {
                    target,
                    cursor: cursor.clone(),
                    progress: *progress,
                    reason: PauseReason::Operator,
                },
                vec![C::SaveJob],
            ),
            (S::Paused { .. }, I::Pause) => Ok(Transition {
                state: job.clone(),
                commands: Vec::new(),
                audit: None,
            }),
            (
                S::Paused {
                    cursor, progress, ..
                },
                I::Resume,
            ) => go(
                S::Running {
                    target,
                    cursor: cursor.clone(),
                    progress: *progress,
                },
                vec![C::SaveJob, batch(cursor.clone())],
            ),
            (
                S::Verifying { progress, .. },
                I::Verified {
                    remaining,
                    sample_ok,
                },
            ) => {
                if !sample_ok {
                    go(
                        S::Paused {
                            target,
                            cursor: None,
                            progress: *progress,
                            reason: PauseReason::VerifyFailed,
                        },
                        vec![C::SaveJob],
                    )
                } else if remaining > 0 {
                    // Rows written by old binaries, or failures: another round from the start.
                    let mut progress = *progress;
                    progress.rounds = progress.rounds.saturating_add(1);
                    go(
                        S::Running {
                            target,
                            cursor: None,
                            progress,
                        },
                        vec![C::SaveJob, batch(None)],
                    )
                } else {
                    go(
                        S::Completed {
                            target,
                            progress: *progress,
                            at: now,
                        },
                        vec![C::SaveJob, C::ReportProgress(*progress)],
                    )
                }
            }
            // Recovery: resume from the durable cursor. A batch redone after a crash skips
            // the envelopes already under the target (each write is a CAS).
            (S::Running { cursor, .. }, I::Recover) => Ok(Transition {
                state: job.clone(),
                commands: vec![batch(cursor.clone())],
                audit: None,
            }),
            (S::Verifying { .. }, I::Recover) => Ok(Transition {
                state: job.clone(),
                commands: vec![C::Verify { target }],
                audit: None,
            }),
            (S::Planned { .. } | S::Paused { .. } | S::Completed { .. }, I::Recover) => {
                Ok(Transition {
                    state: job.clone(),
                    commands: Vec::new(),
                    audit: None,
                })
            }
            (job, input) => Err(TransitionError::Illegal {
                machine: Machine::Rewrap,
                state: job.name(),
                input: input.name(),
            }),
        }
    }
}
