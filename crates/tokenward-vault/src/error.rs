//! Errors, one type per kind of operation.
//!
//! Conflicts (a moved version, state or lease epoch) are precise variants with the values the
//! caller needs to decide, never a generic failure. No message contains a token, an envelope
//! or a context value; identifiers (item, attempt, owner) are not secret and are named.

use tokenward_envelope::EnvelopeError;

use crate::types::{AttemptId, ItemId, LeaseOwner, Timestamp};

/// A value given to the vault that breaks its rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// Empty or longer than the limit.
    #[error("{what} must be 1 to {max} bytes")]
    Length {
        /// What was checked.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// Characters outside what is allowed (printable ASCII for ids, no control characters).
    #[error("{what} has characters that are not allowed")]
    Characters {
        /// What was checked.
        what: &'static str,
    },
    /// Audit text shaped like a Plaid token: the journal never holds one.
    #[error("{what} looks like a Plaid token; the audit journal never stores one")]
    LooksLikeSecret {
        /// What was checked.
        what: &'static str,
    },
    /// Text that is not one of the known values of an enumeration.
    #[error("unknown {kind}")]
    UnknownValue {
        /// The enumeration.
        kind: &'static str,
    },
    /// A numeric argument out of range (a limit of 0, a lease TTL that overflows).
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
}

/// A stored row that the vault cannot read: a column out of range or with an unknown value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed row in {table}: column {column} {problem}")]
#[non_exhaustive]
pub struct MalformedRow {
    /// The table.
    pub table: &'static str,
    /// The column.
    pub column: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl MalformedRow {
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        allow(dead_code, reason = "the SQL stores are behind features")
    )]
    pub(crate) fn new(table: &'static str, column: &'static str, problem: &'static str) -> Self {
        MalformedRow {
            table,
            column,
            problem,
        }
    }
}

/// The database or the connection failed (the source says how).
#[derive(Debug, thiserror::Error)]
#[error("store failure: {0}")]
pub struct BackendError(#[source] pub(crate) Box<dyn std::error::Error + Send + Sync + 'static>);

impl From<sqlx::Error> for BackendError {
    fn from(error: sqlx::Error) -> Self {
        BackendError(Box::new(error))
    }
}

/// A failure to open a store (connect and migrate).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Connecting failed.
    #[error("could not connect: {0}")]
    Connect(#[source] BackendError),
    /// A migration failed; nothing of it was applied (each runs in a transaction).
    #[error("migration {version} failed: {source}")]
    Migration {
        /// The migration.
        version: i64,
        /// Why.
        #[source]
        source: BackendError,
    },
    /// The store was migrated by a newer version of this library.
    #[error("store schema version {found} is newer than this library's {known}")]
    SchemaTooNew {
        /// The version found.
        found: i64,
        /// The newest this library knows.
        known: i64,
    },
    /// A bad option (a schema name, a pool size).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
}

/// A failure to read from the vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No Item with this id.
    #[error("item {0} not found")]
    NotFound(ItemId),
    /// No attempt with this id.
    #[error("attempt {0} not found")]
    AttemptNotFound(AttemptId),
    /// The stored envelope did not open: a wrong key or context or tampered bytes (one opaque
    /// variant), or a precise reason such as a disabled or unknown KEK version.
    #[error("stored envelope did not open: {0}")]
    Open(#[source] EnvelopeError),
    /// The envelope opened but does not hold an access token.
    #[error("stored envelope does not hold an access token")]
    NotAnAccessToken,
    /// A stored row is malformed.
    #[error(transparent)]
    Malformed(#[from] MalformedRow),
    /// A bad argument.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// The store failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// This store does not keep what was asked (a `Vault` implementation that predates it).
    #[error("this store does not support {0}")]
    Unsupported(&'static str),
}

/// A failure to write to the vault. Nothing of a failed write is stored (one transaction).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// No Item with this id.
    #[error("item {0} not found")]
    NotFound(ItemId),
    /// No attempt with this id.
    #[error("attempt {0} not found")]
    AttemptNotFound(AttemptId),
    /// An Item with this id already exists.
    #[error("item {0} already exists")]
    AlreadyExists(ItemId),
    /// An attempt with this id already exists.
    #[error("attempt {0} already exists")]
    AttemptExists(AttemptId),
    /// Compare-and-swap lost: the token version moved.
    #[error("version conflict: expected version {expected}, found {actual}")]
    VersionConflict {
        /// The version the caller expected.
        expected: u64,
        /// The version stored.
        actual: u64,
    },
    /// Compare-and-swap lost: the state moved (or the change is not allowed from it).
    #[error("state conflict: expected {expected}, found {actual}")]
    StateConflict {
        /// The state the caller expected (stored text).
        expected: &'static str,
        /// The state stored.
        actual: &'static str,
    },
    /// The attempt is not in a status that allows this step.
    #[error("attempt {attempt_id} is {actual}; this step needs it {expected}")]
    AttemptConflict {
        /// The attempt.
        attempt_id: AttemptId,
        /// What the step needs.
        expected: &'static str,
        /// Its status.
        actual: &'static str,
    },
    /// Another worker holds a live lease on the Item.
    #[error("item is leased by {owner} until {expires_at}")]
    LeaseHeld {
        /// The holder.
        owner: LeaseOwner,
        /// Until when.
        expires_at: Timestamp,
    },
    /// The lease presented is stale: another acquisition (or a release) happened since.
    #[error("fenced: lease epoch {presented} is stale (current epoch {current})")]
    Fenced {
        /// The epoch presented.
        presented: u64,
        /// The epoch stored.
        current: u64,
    },
    /// The lease presented has expired.
    #[error("lease expired at {expired_at}")]
    LeaseExpired {
        /// When it expired.
        expired_at: Timestamp,
    },
    /// The attempt has no stashed token to promote.
    #[error("attempt {0} has no stashed token")]
    NothingStashed(AttemptId),
    /// A different token is already stashed for the attempt (a stash is written once).
    #[error("a different token is already stashed for attempt {0}")]
    StashConflict(AttemptId),
    /// Sealing the token failed (no primary key, a key usage limit…).
    #[error("could not seal: {0}")]
    Seal(#[source] EnvelopeError),
    /// A stored envelope that the write has to open did not open.
    #[error("stored envelope did not open: {0}")]
    Open(#[source] EnvelopeError),
    /// An opened stash does not hold an access token.
    #[error("stored envelope does not hold an access token")]
    NotAnAccessToken,
    /// A stored row is malformed.
    #[error(transparent)]
    Malformed(#[from] MalformedRow),
    /// A bad argument.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// The store failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// This store does not keep what was asked (a `Vault` implementation that predates it).
    #[error("this store does not support {0}")]
    Unsupported(&'static str),
}

/// A failure to acquire, renew or release a lease.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// No Item with this id.
    #[error("item {0} not found")]
    NotFound(ItemId),
    /// Another worker holds a live lease.
    #[error("item is leased by {owner} until {expires_at}")]
    Held {
        /// The holder.
        owner: LeaseOwner,
        /// Until when.
        expires_at: Timestamp,
    },
    /// The lease presented is stale (renew, release).
    #[error("fenced: lease epoch {presented} is stale (current epoch {current})")]
    Fenced {
        /// The epoch presented.
        presented: u64,
        /// The epoch stored.
        current: u64,
    },
    /// A stored row is malformed.
    #[error(transparent)]
    Malformed(#[from] MalformedRow),
    /// A bad argument.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// The store failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A failure of a rewrap batch as a whole (single rows that fail are reported in
/// [`RewrapBatch::failed`](crate::RewrapBatch::failed)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewrapError {
    /// The keyring has no primary key to rewrap under.
    #[error("the keyring has no primary key")]
    NoPrimaryKey,
    /// A stored row is malformed.
    #[error(transparent)]
    Malformed(#[from] MalformedRow),
    /// A bad argument.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
    /// The store failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

macro_rules! from_sqlx {
    ($($t:ty),*) => {$(
        impl From<sqlx::Error> for $t {
            fn from(error: sqlx::Error) -> Self {
                BackendError::from(error).into()
            }
        }
    )*};
}
from_sqlx!(ReadError, WriteError, LeaseError, RewrapError);

impl From<ReadError> for WriteError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::NotFound(id) => WriteError::NotFound(id),
            ReadError::AttemptNotFound(id) => WriteError::AttemptNotFound(id),
            ReadError::Open(e) => WriteError::Open(e),
            ReadError::NotAnAccessToken => WriteError::NotAnAccessToken,
            ReadError::Malformed(e) => WriteError::Malformed(e),
            ReadError::InvalidInput(e) => WriteError::InvalidInput(e),
            ReadError::Backend(e) => WriteError::Backend(e),
            ReadError::Unsupported(what) => WriteError::Unsupported(what),
        }
    }
}

impl From<ReadError> for LeaseError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::NotFound(id) => LeaseError::NotFound(id),
            ReadError::Malformed(e) => LeaseError::Malformed(e),
            ReadError::InvalidInput(e) => LeaseError::InvalidInput(e),
            ReadError::Backend(e) => LeaseError::Backend(e),
            // A lease operation opens no envelope; keep the failure as a backend failure.
            other => LeaseError::Backend(BackendError(Box::new(other))),
        }
    }
}

impl From<ReadError> for RewrapError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Malformed(e) => RewrapError::Malformed(e),
            ReadError::InvalidInput(e) => RewrapError::InvalidInput(e),
            ReadError::Backend(e) => RewrapError::Backend(e),
            other => RewrapError::Backend(BackendError(Box::new(other))),
        }
    }
}
