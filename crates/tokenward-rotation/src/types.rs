//! Small value types shared by the machines: ids, versions, reasons, actors, audit records.
//!
//! None of them holds a secret: a token is named by its [`TokenVersion`] and by the
//! [`AttemptId`] that produced it, never by its value.

use std::fmt;

use chrono::{DateTime, Utc};

/// A point in time. Every transition takes it as an argument; the machines never read a clock.
pub type Timestamp = DateTime<Utc>;

/// The longest [`Actor`] kept, in bytes; longer names are cut (on a character boundary).
pub const MAX_ACTOR_LEN: usize = 128;

/// The id of one rotation attempt: the key of the write-ahead record, of the stashed new token
/// and of every audit record of the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttemptId(u128);

impl AttemptId {
    /// An attempt id from its number (for example a `UUIDv7` as `u128`, or a store's sequence).
    #[must_use]
    pub const fn new(id: u128) -> Self {
        AttemptId(id)
    }

    /// The number.
    #[must_use]
    pub const fn get(self) -> u128 {
        self.0
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt-{:032x}", self.0)
    }
}

/// The version of an Item's access token: 1 at exchange, +1 per rotation Plaid applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenVersion(u64);

impl TokenVersion {
    /// The version of the token handed out by `/item/public_token/exchange`.
    pub const FIRST: TokenVersion = TokenVersion(1);

    /// A version from its number.
    #[must_use]
    pub const fn new(version: u64) -> Self {
        TokenVersion(version)
    }

    /// The number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version a successful rotation of this one produces; `None` on overflow.
    #[must_use]
    pub const fn next(self) -> Option<Self> {
        match self.0.checked_add(1) {
            Some(next) => Some(TokenVersion(next)),
            None => None,
        }
    }
}

impl fmt::Display for TokenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Why a token is rotated. Recorded with the attempt and in every audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RotationReason {
    /// The periodic rotation policy (for example every six months).
    Scheduled,
    /// An operator asked for it.
    Manual,
    /// The token may have leaked: the incident lane, ahead of every other rotation.
    Compromise,
    /// The KEK that protects the token may have leaked: the token is rotated (and so sealed
    /// under the current primary) before the KEK is disabled.
    KekCompromise,
}

impl RotationReason {
    /// Whether the rotation goes in the incident (priority) lane.
    #[must_use]
    pub const fn is_incident(self) -> bool {
        matches!(
            self,
            RotationReason::Compromise | RotationReason::KekCompromise
        )
    }

    /// A stable lowercase name, for audit records and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RotationReason::Scheduled => "scheduled",
            RotationReason::Manual => "manual",
            RotationReason::Compromise => "compromise",
            RotationReason::KekCompromise => "kek_compromise",
        }
    }
}

impl fmt::Display for RotationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asked for a change: an operator id, a service name, `scheduler`. Never a secret; cut to
/// [`MAX_ACTOR_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor(String);

impl Actor {
    /// An actor; names longer than [`MAX_ACTOR_LEN`] bytes are cut.
    #[must_use]
    pub fn new(name: &str) -> Self {
        let mut end = name.len().min(MAX_ACTOR_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        Actor(name.get(..end).unwrap_or_default().to_owned())
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which machine an [`AuditEvent`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Machine {
    /// The per-Item credential (access-token rotation) machine.
    Credential,
    /// The per-Item health machine.
    Health,
    /// The KEK lifecycle.
    Kek,
    /// A rewrap job.
    Rewrap,
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Machine::Credential => "credential",
            Machine::Health => "health",
            Machine::Kek => "kek",
            Machine::Rewrap => "rewrap",
        })
    }
}

/// One audit record a transition asks the driver to write, in the same transaction as the
/// transition's first (write) command.
///
/// It names states and inputs by their stable names and carries ids, versions, the reason,
/// the actor and Plaid's `request_id`: never a token, a key or personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// The machine.
    pub machine: Machine,
    /// The input that caused the transition (stable snake-case name).
    pub event: &'static str,
    /// The state before (stable snake-case name).
    pub from: &'static str,
    /// The state after.
    pub to: &'static str,
    /// The attempt, for the credential machine.
    pub attempt: Option<AttemptId>,
    /// The KEK version, for the KEK machine and rewrap jobs.
    pub key_version: Option<u32>,
    /// Why, when the input says (rotation reason, health cause, KEK incident).
    pub reason: Option<String>,
    /// Who, when the input says.
    pub actor: Option<Actor>,
    /// Plaid's `request_id` of the call that decided the transition, if any.
    pub request_id: Option<String>,
    /// When (the `now` of the transition).
    pub at: Timestamp,
}

impl AuditEvent {
    pub(crate) fn new(
        machine: Machine,
        event: &'static str,
        from: &'static str,
        to: &'static str,
        at: Timestamp,
    ) -> Self {
        AuditEvent {
            machine,
            event,
            from,
            to,
            attempt: None,
            key_version: None,
            reason: None,
            actor: None,
            request_id: None,
            at,
        }
    }
}

/// The result of one step of a machine: the next state, the commands for the driver, in
/// order, and the audit record of the change.
///
/// The driver runs the commands in order and stops at the first that fails (a failed write is
/// handled like a crash: drop the in-memory state and recover from the store). `audit` is
/// `Some` exactly when the state's kind changed, and then the first command is a write (see
/// each machine's `Command::is_write`) that carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition<S, C> {
    /// The state after the step.
    pub state: S,
    /// What the driver must do, in order.
    pub commands: Vec<C>,
    /// The audit record of the change, if the state's kind changed.
    pub audit: Option<AuditEvent>,
}

/// An input the current state does not accept, or an arithmetic limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The input is not valid in this state; the state is unchanged.
    #[error("{machine}: input {input} is not valid in state {state}")]
    Illegal {
        /// The machine.
        machine: Machine,
        /// The state's name.
        state: &'static str,
        /// The input's name.
        input: &'static str,
    },
    /// A version or counter would overflow.
    #[error("version overflow")]
    VersionOverflow,
    /// A guard of the transition does not hold (the message names it; no secret).
    #[error("{machine}: {input} refused in state {state}: {guard}")]
    Refused {
        /// The machine.
        machine: Machine,
        /// The state's name.
        state: &'static str,
        /// The input's name.
        input: &'static str,
        /// Which guard failed.
        guard: String,
    },
}
