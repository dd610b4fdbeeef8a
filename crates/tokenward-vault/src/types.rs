//! The vault's value types: identifiers, persisted states, records and the inputs of writes.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokenward_envelope::{EnvelopeError, KeyVersion};

use crate::error::InvalidInput;

/// The longest identifier, owner, actor or request id the vault stores, in bytes.
pub const MAX_ID_LEN: usize = 255;

/// The longest audit reason the vault stores, in bytes.
pub const MAX_REASON_LEN: usize = 1024;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Checks and wraps ", $what, ": 1 to [`MAX_ID_LEN`] bytes of printable")]
            /// ASCII without spaces.
            ///
            /// # Errors
            ///
            /// [`InvalidInput`] for an empty, too long or non-printable value.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidInput> {
                let value = value.into();
                check_id(&value, $what)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidInput;

            fn from_str(value: &str) -> Result<Self, InvalidInput> {
                Self::new(value)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A Plaid Item id: the primary key of a stored access token.
    ItemId,
    "an item id"
);
id_type!(
    /// Your application's id for the user who owns Items (the key of [`erase_user`]).
    ///
    /// [`erase_user`]: crate::Vault::erase_user
    UserId,
    "a user id"
);
id_type!(
    /// The id of one rotation attempt (the rotation crate uses a `UUIDv7`), the key of its
    /// write-ahead record and of the token stashed for it.
    AttemptId,
    "an attempt id"
);
id_type!(
    /// Who holds a lease: a worker or process name.
    LeaseOwner,
    "a lease owner"
);
id_type!(
    /// The id of a KEK rewrap job: the key of its saved state
    /// ([`save_rewrap_job`](crate::Vault::save_rewrap_job)).
    JobId,
    "a job id"
);

/// A point in time, in milliseconds since the Unix epoch.
///
/// The vault never reads the clock for decisions: every call whose result depends on time
/// takes `now`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the Unix epoch.
    #[must_use]
    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// A timestamp from a [`SystemTime`] (truncated to milliseconds); `None` before the epoch
    /// or beyond `i64` milliseconds.
    #[must_use]
    pub fn from_system_time(time: SystemTime) -> Option<Self> {
        let millis = time.duration_since(UNIX_EPOCH).ok()?.as_millis();
        i64::try_from(millis).ok().map(Timestamp)
    }

    /// This time plus `duration`, or `None` on overflow.
    #[must_use]
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        let millis = i64::try_from(duration.as_millis()).ok()?;
        self.0.checked_add(millis).map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = InvalidInput;

            /// Parses the stored text exactly (lower-case snake case); anything else is an error.
            fn from_str(value: &str) -> Result<Self, InvalidInput> {
                match value {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(InvalidInput::UnknownValue { kind: $kind }),
                }
            }
        }
    };
}

text_enum! {
    /// The credential dimension of an Item: where its access token is in a rotation
    /// (`reference/rotation.md` §8.1). The rotation crate's machine maps onto these.
    CredentialState, "credential state" {
        /// The current token is in use; no rotation is running.
        Active => "active",
        /// A rotation is journalled (write-ahead) but the Plaid call has not been sent.
        Intent => "intent",
        /// The sent marker is durable; the invalidate call may have reached Plaid.
        InFlight => "in_flight",
        /// A new token is current and is being checked with a probe (advisory).
        Verifying => "verifying",
        /// The outcome of the invalidate call is not known (timeout, reset, 5xx, crash).
        Unknown => "unknown",
        /// The old token is being probed to resolve `Unknown`.
        Probing => "probing",
        /// The old token is dead; looking for a newer stored version.
        Reconcile => "reconcile",
        /// The old token is dead and the new one was lost: an operator must act.
        Orphaned => "orphaned",
        /// The token is dead and no invalidate was sent (removed elsewhere).
        Dead => "dead",
        /// The new token failed its verification probe: an operator must act.
        Quarantined => "quarantined",
        /// `/item/remove` is being driven.
        Removing => "removing",
        /// The Item was removed at Plaid.
        Removed => "removed",
        /// An operator resolved an `Orphaned` or `Dead` Item.
        Retired => "retired",
    }
}

text_enum! {
    /// The health dimension of an Item, driven by webhooks and API errors
    /// (`reference/rotation.md` §8.2).
    HealthState, "health state" {
        /// Working.
        Healthy => "healthy",
        /// Consent or access expires soon (`PENDING_EXPIRATION`, `PENDING_DISCONNECT`).
        ExpiringSoon => "expiring_soon",
        /// The user must go through Link update mode (`ITEM_LOGIN_REQUIRED`).
        NeedsReauth => "needs_reauth",
        /// The user revoked access (`USER_PERMISSION_REVOKED`).
        PermissionRevoked => "permission_revoked",
        /// The Item was removed.
        Removed => "removed",
    }
}

text_enum! {
    /// Where one rotation attempt is (its write-ahead record, `reference/rotation.md` §6).
    AttemptStatus, "attempt status" {
        /// Journalled; the Plaid call has not been sent.
        Intent => "intent",
        /// The sent marker is durable.
        Sent => "sent",
        /// Plaid's new token is stored, sealed, keyed by the attempt; not yet current.
        Stashed => "stashed",
        /// The stashed token became current (closed).
        Committed => "committed",
        /// Recovered before the call was sent (closed).
        NotSent => "not_sent",
        /// Plaid definitely rejected the call (closed).
        Failed => "failed",
        /// A probe showed the old token still works: the rotation did not happen (closed).
        NotApplied => "not_applied",
        /// Closed by an operator or by reconciliation without a token (closed).
        Abandoned => "abandoned",
    }
}

impl AttemptStatus {
    /// Whether the attempt is finished; open attempts are what crash recovery looks at.
    #[must_use]
    pub const fn is_closed(self) -> bool {
        matches!(
            self,
            AttemptStatus::Committed
                | AttemptStatus::NotSent
                | AttemptStatus::Failed
                | AttemptStatus::NotApplied
                | AttemptStatus::Abandoned
        )
    }
}

/// A per-Item lease: who may drive the Item's rotation, fenced by a monotonic epoch.
///
/// The epoch grows by one on every acquisition; writes that present a lease whose epoch is no
/// longer current fail with a `Fenced` error.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Lease {
    /// The Item leased.
    pub item_id: ItemId,
    /// Who holds it.
    pub owner: LeaseOwner,
    /// The fencing token.
    pub epoch: u64,
    /// When it lapses unless renewed.
    pub expires_at: Timestamp,
}

/// An Item's metadata: everything the vault keeps about it except the token.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct ItemRecord {
    /// The Item.
    pub item_id: ItemId,
    /// Its owner.
    pub user_id: UserId,
    /// The version of the current token: 1 at insertion, one more on every token write.
    pub token_version: u64,
    /// The KEK version the current envelope is wrapped under.
    pub kek_version: KeyVersion,
    /// The credential dimension.
    pub credential_state: CredentialState,
    /// The health dimension.
    pub health_state: HealthState,
    /// The lease, when one was taken and not released (it may have expired: compare
    /// `expires_at` with your `now`).
    pub lease: Option<Lease>,
    /// The epoch of the latest lease, held or not (0 before the first).
    pub lease_epoch: u64,
    /// When the Item was inserted.
    pub created_at: Timestamp,
    /// When its row last changed.
    pub updated_at: Timestamp,
    /// The event time of the newest health change applied ([`Vault::record_health`]): a
    /// delivery older than this is ignored. `None` before the first.
    ///
    /// [`Vault::record_health`]: crate::Vault::record_health
    pub health_as_of: Option<Timestamp>,
    /// When an `expiring_soon` Item stops working (consent expiry, disconnect time), if known.
    pub health_deadline: Option<Timestamp>,
    /// The attempt whose token was last promoted (kept after the promote closes it).
    pub last_attempt_id: Option<AttemptId>,
}

/// A rotation attempt's write-ahead record.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct AttemptRecord {
    /// The attempt.
    pub attempt_id: AttemptId,
    /// The Item it rotates.
    pub item_id: ItemId,
    /// The token version it started from.
    pub from_version: u64,
    /// Where it is.
    pub status: AttemptStatus,
    /// Why it was started.
    pub reason: String,
    /// Who started it.
    pub actor: String,
    /// The lease epoch it was begun under.
    pub lease_epoch: u64,
    /// When it was journalled.
    pub created_at: Timestamp,
    /// When the sent marker was written.
    pub sent_at: Option<Timestamp>,
    /// When Plaid's new token was stashed (the token itself is never in this record).
    pub stashed_at: Option<Timestamp>,
    /// The KEK version of the stashed token's envelope.
    pub stashed_kek_version: Option<KeyVersion>,
    /// Plaid's `request_id` of the invalidate call, when known.
    pub request_id: Option<String>,
    /// When it was closed.
    pub finished_at: Option<Timestamp>,
    /// Whether the invalidate call may have reached Plaid: set by the sent marker, cleared
    /// when the attempt closes as `not_sent`, `failed` or `not_applied` (a definite answer).
    pub maybe_applied: bool,
}

/// One entry of the append-only audit journal. It never holds a token or an envelope.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct AuditRecord {
    /// Position in the journal (grows monotonically).
    pub id: u64,
    /// The Item; `None` after its user was erased, and for store-wide events.
    pub item_id: Option<ItemId>,
    /// What happened.
    pub event: AuditEvent,
    /// The state before, as stored text (credential or health state).
    pub from_state: Option<String>,
    /// The state after.
    pub to_state: Option<String>,
    /// Why.
    pub reason: String,
    /// Who.
    pub actor: String,
    /// When.
    pub at: Timestamp,
    /// Plaid's `request_id`, when the change came from a Plaid response.
    pub request_id: Option<String>,
    /// The rotation attempt, when the change belongs to one.
    pub attempt_id: Option<AttemptId>,
}

text_enum! {
    /// The kind of an audit record.
    AuditEvent, "audit event" {
        /// An Item and its first token were stored.
        ItemInserted => "item_inserted",
        /// The token was replaced by a compare-and-swap write.
        TokenUpdated => "token_updated",
        /// The credential state changed.
        CredentialState => "credential_state",
        /// The health state changed.
        HealthState => "health_state",
        /// A rotation attempt was journalled.
        AttemptBegun => "attempt_begun",
        /// The sent marker of an attempt was written.
        AttemptSent => "attempt_sent",
        /// Plaid's new token was stashed for an attempt.
        TokenStashed => "token_stashed",
        /// A stashed token became current.
        TokenPromoted => "token_promoted",
        /// An attempt was closed.
        AttemptClosed => "attempt_closed",
        /// Envelopes were rewrapped under the primary KEK (store-wide, one per batch).
        Rewrapped => "rewrapped",
        /// A user's Items were erased (no personal data is kept).
        UserErased => "user_erased",
        /// A KEK version's lifecycle record changed (store-wide; the reason names the version).
        KekState => "kek_state",
        /// A health change older than the stored one arrived and was ignored.
        HealthIgnored => "health_ignored",
    }
}

text_enum! {
    /// The lifecycle state of a KEK version as the vault stores it
    /// (`reference/rotation.md` §8.3; the rotation crate's KEK machine maps onto these).
    KekStatus, "KEK state" {
        /// Loaded everywhere, opens, does not seal yet.
        Staged => "staged",
        /// Seals new envelopes.
        Primary => "primary",
        /// A former primary: opens, never seals.
        DecryptOnly => "decrypt_only",
        /// May have leaked: opens (to rotate and rewrap away from it), never seals.
        Compromised => "compromised",
        /// Neither opens nor seals; reversible.
        Disabled => "disabled",
        /// Key material erased. Terminal.
        Destroyed => "destroyed",
    }
}

/// Who made a change and why, for the audit journal.
///
/// # Security
///
/// The texts are stored in clear: never put a token in them. Values that look like a Plaid
/// token (`access-…`, `public-…`, `link-…`, `processor-…`) are refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AuditNote {
    pub(crate) actor: String,
    pub(crate) reason: String,
    pub(crate) request_id: Option<String>,
    pub(crate) attempt_id: Option<AttemptId>,
}

impl AuditNote {
    /// A note with an actor (a user, operator or worker name) and a reason.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] when a text is empty, too long, has control characters or looks like a
    /// Plaid token.
    pub fn new(actor: impl Into<String>, reason: impl Into<String>) -> Result<Self, InvalidInput> {
        let actor = actor.into();
        let reason = reason.into();
        check_text(&actor, "actor", MAX_ID_LEN)?;
        check_text(&reason, "reason", MAX_REASON_LEN)?;
        Ok(AuditNote {
            actor,
            reason,
            request_id: None,
            attempt_id: None,
        })
    }

    /// Adds Plaid's `request_id` of the response that caused the change.
    ///
    /// # Errors
    ///
    /// As [`AuditNote::new`].
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Result<Self, InvalidInput> {
        let request_id = request_id.into();
        check_text(&request_id, "request id", MAX_ID_LEN)?;
        self.request_id = Some(request_id);
        Ok(self)
    }

    /// Adds the rotation attempt the change belongs to.
    #[must_use]
    pub fn with_attempt(mut self, attempt_id: AttemptId) -> Self {
        self.attempt_id = Some(attempt_id);
        self
    }

    /// The actor.
    #[must_use]
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The reason.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Plaid's `request_id`, if any.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The attempt, if any.
    #[must_use]
    pub fn attempt_id(&self) -> Option<&AttemptId> {
        self.attempt_id.as_ref()
    }
}

/// A compare-and-swap change of an Item's credential state, with its audit record.
#[derive(Clone, Debug)]
pub struct StateChange<'a> {
    /// The Item.
    pub item_id: &'a ItemId,
    /// The token version the caller saw; the write fails if it moved.
    pub expected_version: u64,
    /// The state the caller saw; the write fails if it moved.
    pub from: CredentialState,
    /// The new state.
    pub to: CredentialState,
    /// The rotation lease, when the change belongs to a rotation: checked (owner, epoch,
    /// expiry). Without one, the change fails while another worker holds a live lease.
    pub lease: Option<&'a Lease>,
    /// Who and why.
    pub note: &'a AuditNote,
}

/// The start of a rotation attempt: journalled before anything is sent to Plaid.
#[derive(Clone, Debug)]
pub struct BeginAttempt<'a> {
    /// The new attempt's id.
    pub attempt_id: &'a AttemptId,
    /// The lease (must be live and current); the Item must be `Active` at `expected_version`.
    pub lease: &'a Lease,
    /// The token version the rotation starts from.
    pub expected_version: u64,
    /// Who and why.
    pub note: &'a AuditNote,
}

/// Makes an attempt's stashed token current.
#[derive(Clone, Debug)]
pub struct Promote<'a> {
    /// The attempt whose stashed token becomes current.
    pub attempt_id: &'a AttemptId,
    /// The token version the caller saw (the attempt's `from_version`); the write fails if
    /// the Item moved.
    pub expected_version: u64,
    /// The credential state afterwards (usually `Active`, or `Verifying` to probe first).
    pub to: CredentialState,
    /// The lease, when the caller holds one (checked); reconciliation may promote without.
    pub lease: Option<&'a Lease>,
    /// Who and why.
    pub note: &'a AuditNote,
}

/// Closes an attempt without promoting a token, and moves the Item's credential state, in one
/// transaction.
#[derive(Clone, Debug)]
pub struct FinishAttempt<'a> {
    /// The attempt.
    pub attempt_id: &'a AttemptId,
    /// Its closing status (`NotSent`, `Failed`, `NotApplied` or `Abandoned`).
    pub status: AttemptStatus,
    /// The token version the caller saw.
    pub expected_version: u64,
    /// The credential state the caller saw.
    pub from: CredentialState,
    /// The credential state afterwards.
    pub to: CredentialState,
    /// The lease, when the caller holds one (checked).
    pub lease: Option<&'a Lease>,
    /// Who and why.
    pub note: &'a AuditNote,
}

/// A filter for [`Vault::list_by_state`](crate::Vault::list_by_state).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StateFilter {
    /// Items in this credential state.
    Credential(CredentialState),
    /// Items in this health state.
    Health(HealthState),
}

/// What [`Vault::erase_user`](crate::Vault::erase_user) did.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Erasure {
    /// The Items erased (empty when there was nothing left: erasure is idempotent).
    pub items: Vec<ItemId>,
    /// Rotation attempts erased with them.
    pub attempts: u64,
}

/// Where a rewrap job resumes: persist [`as_str`](Self::as_str) and parse it back.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RewrapCursor {
    pub(crate) phase: RewrapPhase,
    pub(crate) after: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum RewrapPhase {
    Items,
    Attempts,
}

impl RewrapCursor {
    /// The cursor as text: `items:<item id>` or `attempts:<attempt id>`.
    #[must_use]
    pub fn as_str(&self) -> String {
        match self.phase {
            RewrapPhase::Items => format!("items:{}", self.after),
            RewrapPhase::Attempts => format!("attempts:{}", self.after),
        }
    }
}

impl fmt::Display for RewrapCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl FromStr for RewrapCursor {
    type Err = InvalidInput;

    fn from_str(value: &str) -> Result<Self, InvalidInput> {
        let (phase, after) = if let Some(after) = value.strip_prefix("items:") {
            (RewrapPhase::Items, after)
        } else if let Some(after) = value.strip_prefix("attempts:") {
            (RewrapPhase::Attempts, after)
        } else {
            return Err(InvalidInput::UnknownValue {
                kind: "rewrap cursor",
            });
        };
        if !after.is_empty() {
            check_id(after, "rewrap cursor")?;
        }
        Ok(RewrapCursor {
            phase,
            after: after.to_owned(),
        })
    }
}

/// A row a rewrap could not move.
#[derive(Debug)]
#[non_exhaustive]
pub enum RewrapRow {
    /// An Item's current envelope.
    Item(ItemId),
    /// A token stashed for a rotation attempt.
    Attempt(AttemptId),
}

/// One row that failed to rewrap, and why (a disabled or unknown KEK, a malformed envelope).
#[derive(Debug)]
#[non_exhaustive]
pub struct RewrapFailure {
    /// The row.
    pub row: RewrapRow,
    /// Why.
    pub error: EnvelopeError,
}

/// The outcome of one [`rewrap_batch`](crate::Vault::rewrap_batch).
#[derive(Debug)]
#[non_exhaustive]
pub struct RewrapBatch {
    /// Envelopes moved to the primary KEK.
    pub rewrapped: u64,
    /// Envelopes a concurrent write changed first (their new envelope is under the primary).
    pub skipped: u64,
    /// Envelopes that could not be rewrapped; the job goes on past them.
    pub failed: Vec<RewrapFailure>,
    /// Items whose current envelope changed (caches drop them).
    pub changed_items: Vec<ItemId>,
    /// Where the next batch starts; `None` when the pass is complete.
    pub next_cursor: Option<RewrapCursor>,
}

/// A KEK rewrap job's saved state, as plain fields: the caller (the rotation crate's job
/// machine) maps its state to and from them; the vault stores them and compare-and-swaps on
/// `revision` ([`save_rewrap_job`](crate::Vault::save_rewrap_job)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapJobRecord {
    /// The job.
    pub job_id: JobId,
    /// The revision the caller read (0 for a job not yet saved); a save stores `revision + 1`.
    pub revision: u64,
    /// The job machine's state name (1 to [`MAX_ID_LEN`] bytes of printable ASCII).
    pub state: String,
    /// Why the job is in that state (a pause reason), same rules as `state`.
    pub reason: Option<String>,
    /// The last key done (a [`RewrapCursor`] in text form); `None` at the start of a pass.
    pub cursor: Option<String>,
    /// The KEK version the job moves envelopes to (every other version is a source).
    pub target_kek_version: KeyVersion,
    /// Envelopes under other versions when the job was planned.
    pub planned: u64,
    /// Envelopes rewrapped so far.
    pub rewrapped: u64,
    /// Envelopes skipped (already moved).
    pub skipped: u64,
    /// Envelopes that failed.
    pub failed: u64,
    /// Batches done.
    pub batches: u64,
    /// Verification rounds that went back to running.
    pub rounds: u64,
    /// When the job finished; `None` while it is unfinished
    /// ([`unfinished_rewrap_jobs`](crate::Vault::unfinished_rewrap_jobs)).
    pub finished_at: Option<Timestamp>,
    /// When it was last saved (set by the vault from `now`).
    pub updated_at: Timestamp,
}

impl RewrapJobRecord {
    /// A record of a job not yet saved (revision 0), in `state`, with zero counters.
    #[must_use]
    pub fn new(job_id: JobId, state: impl Into<String>, target_kek_version: KeyVersion) -> Self {
        RewrapJobRecord {
            job_id,
            revision: 0,
            state: state.into(),
            reason: None,
            cursor: None,
            target_kek_version,
            planned: 0,
            rewrapped: 0,
            skipped: 0,
            failed: 0,
            batches: 0,
            rounds: 0,
            finished_at: None,
            updated_at: Timestamp::from_unix_millis(0),
        }
    }

    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        allow(dead_code, reason = "the SQL stores are behind features")
    )]
    pub(crate) fn check(&self) -> Result<(), InvalidInput> {
        check_id(&self.state, "a rewrap job state")?;
        if let Some(reason) = &self.reason {
            check_id(reason, "a rewrap job reason")?;
        }
        if let Some(cursor) = &self.cursor {
            cursor.parse::<RewrapCursor>()?;
        }
        Ok(())
    }
}

/// A KEK version's lifecycle record ([`save_kek_record`](crate::Vault::save_kek_record)):
/// its state, whether it was ever compromised, and when it changed, compare-and-swapped on
/// `revision`. Key material is never here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KekRecord {
    /// The KEK version.
    pub version: KeyVersion,
    /// The revision the caller read (0 for a version not yet recorded); a save stores
    /// `revision + 1`.
    pub revision: u64,
    /// Its lifecycle state.
    pub state: KekStatus,
    /// Whether it was ever marked compromised (kept once it is disabled or destroyed).
    pub compromised: bool,
    /// When it became primary.
    pub promoted_at: Option<Timestamp>,
    /// When it was marked compromised.
    pub compromised_at: Option<Timestamp>,
    /// When it was (last) disabled: the destroy grace period runs from here.
    pub disabled_at: Option<Timestamp>,
    /// When it was destroyed.
    pub destroyed_at: Option<Timestamp>,
    /// When it was last saved (set by the vault from `now`).
    pub updated_at: Timestamp,
}

impl KekRecord {
    /// A record of a version not yet saved (revision 0), in `state`, with no times.
    #[must_use]
    pub fn new(version: KeyVersion, state: KekStatus) -> Self {
        KekRecord {
            version,
            revision: 0,
            state,
            compromised: false,
            promoted_at: None,
            compromised_at: None,
            disabled_at: None,
            destroyed_at: None,
            updated_at: Timestamp::EPOCH,
        }
    }
}

/// A health change of one Item, keyed on the time of the event that caused it
/// ([`Vault::record_health`](crate::Vault::record_health)).
#[derive(Clone, Debug)]
pub struct HealthUpdate<'a> {
    /// The Item.
    pub item_id: &'a ItemId,
    /// The health state the caller saw; the write fails if it moved.
    pub from: HealthState,
    /// The new health state (may equal `from` to refresh the deadline).
    pub to: HealthState,
    /// The time of the event (a webhook's `iat`, an API call's time). An update older than
    /// the stored `health_as_of` is ignored and audited as `health_ignored`.
    pub as_of: Timestamp,
    /// The deadline of `expiring_soon` (ignored for other states, where it is cleared).
    pub deadline: Option<Timestamp>,
    /// Who and why.
    pub note: &'a AuditNote,
}

/// What [`Vault::record_health`](crate::Vault::record_health) did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthWrite {
    /// The change was stored (with its audit record); the Item as it is now.
    Applied(ItemRecord),
    /// The update was older than the stored `health_as_of`: nothing changed but the audit
    /// record of the ignored delivery; the Item as it is.
    Stale(ItemRecord),
}

fn check_id(value: &str, what: &'static str) -> Result<(), InvalidInput> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(InvalidInput::Length {
            what,
            max: MAX_ID_LEN,
        });
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InvalidInput::Characters { what });
    }
    Ok(())
}

fn check_text(value: &str, what: &'static str, max: usize) -> Result<(), InvalidInput> {
    if value.is_empty() || value.len() > max {
        return Err(InvalidInput::Length { what, max });
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidInput::Characters { what });
    }
    if looks_like_token(value) {
        return Err(InvalidInput::LooksLikeSecret { what });
    }
    Ok(())
}

/// Whether `text` holds something shaped like a Plaid token: `<kind>-<environment>-`.
pub(crate) fn looks_like_token(text: &str) -> bool {
    const KINDS: [&str; 4] = ["access-", "public-", "link-", "processor-"];
    const ENVIRONMENTS: [&str; 3] = ["sandbox-", "development-", "production-"];
    let lower = text.to_ascii_lowercase();
    KINDS.iter().any(|kind| {
        lower.match_indices(kind).any(|(at, _)| {
            let rest = lower.get(at + kind.len()..).unwrap_or("");
            ENVIRONMENTS.iter().any(|env| rest.starts_with(env))
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn states_round_trip_and_parse_strictly() {
        for state in CredentialState::ALL {
            assert_eq!(state.as_str().parse::<CredentialState>().unwrap(), *state);
        }
        for state in HealthState::ALL {
            assert_eq!(state.as_str().parse::<HealthState>().unwrap(), *state);
        }
        for status in AttemptStatus::ALL {
            assert_eq!(status.as_str().parse::<AttemptStatus>().unwrap(), *status);
        }
        for state in KekStatus::ALL {
            assert_eq!(state.as_str().parse::<KekStatus>().unwrap(), *state);
        }
        for event in AuditEvent::ALL {
            assert_eq!(event.as_str().parse::<AuditEvent>().unwrap(), *event);
        }
        for bad in ["Active", "ACTIVE", " active", "active ", "", "in-flight"] {
            assert!(bad.parse::<CredentialState>().is_err(), "{bad:?}");
        }
        assert!(AttemptStatus::Committed.is_closed());
        assert!(!AttemptStatus::Stashed.is_closed());
    }

    #[test]
    fn ids_are_checked() {
        assert!(ItemId::new("item-1").is_ok());
        assert!(ItemId::new("").is_err());
        assert!(ItemId::new("has space").is_err());
        assert!(ItemId::new("tab\t").is_err());
        assert!(ItemId::new("é").is_err());
        assert!(ItemId::new("x".repeat(MAX_ID_LEN)).is_ok());
        assert!(ItemId::new("x".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn token_shaped_audit_text_is_refused() {
        for text in [
            "access-sandbox-8ab976e6",
            "rotating ACCESS-PRODUCTION-x",
            "x public-development-1",
            "processor-sandbox-",
            "link-production-abc",
        ] {
            assert!(looks_like_token(text), "{text}");
            assert!(AuditNote::new("w", text).is_err(), "{text}");
        }
        for text in [
            "link-worker-1",
            "access token rotated",
            "scheduled",
            "public key",
        ] {
            assert!(!looks_like_token(text), "{text}");
        }
        assert!(AuditNote::new("w", "line\nbreak").is_err());
        assert!(AuditNote::new("", "x").is_err());
    }

    #[test]
    fn cursors_and_timestamps() {
        for text in ["items:", "items:item-1", "attempts:", "attempts:a-1"] {
            assert_eq!(text.parse::<RewrapCursor>().unwrap().as_str(), text);
        }
        for bad in ["", "item:x", "items:has space", "attempts"] {
            assert!(bad.parse::<RewrapCursor>().is_err(), "{bad:?}");
        }
        let t = Timestamp::from_unix_millis(1_000);
        assert_eq!(
            t.checked_add(Duration::from_secs(1)).unwrap().unix_millis(),
            2_000
        );
        assert!(
            Timestamp::from_unix_millis(i64::MAX)
                .checked_add(Duration::from_millis(1))
                .is_none()
        );
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH),
            Some(Timestamp::EPOCH)
        );
    }
}
