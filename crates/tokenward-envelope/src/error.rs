//! Errors, one type per kind of operation.
//!
//! Every failure to authenticate is the single opaque [`EnvelopeError::Authentication`]: the
//! caller learns that an envelope did not open, never which byte or key was wrong. Everything
//! that can be told apart without a key (malformed bytes, an unknown or disabled key version,
//! a context that breaks the rules) gets its own precise error. No message contains key
//! material, plaintext or context values.

use crate::KeyVersion;

/// A failure to seal, open or rewrap an envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Could not open: wrong key, wrong context, or tampered data.
    ///
    /// Deliberately vague: telling these apart would help an attacker.
    #[error("could not open: wrong key, wrong context, or tampered data")]
    Authentication,
    /// The envelope bytes or text are not a well-formed envelope.
    #[error("malformed envelope: {0}")]
    Malformed(#[from] FormatError),
    /// The context breaks the rules (see [`Context`](crate::Context)).
    #[error("invalid context: {0}")]
    Context(#[from] ContextError),
    /// The envelope names a key version that the keyring does not hold.
    #[error("unknown key version {0}")]
    UnknownKeyVersion(KeyVersion),
    /// The envelope names a key version that is disabled.
    #[error("key version {0} is disabled")]
    KeyDisabled(KeyVersion),
    /// The envelope's key version is below the keyring's minimum decryption version.
    #[error("key version {version} is below the minimum decryption version {minimum}")]
    BelowMinimumVersion {
        /// The version named by the envelope.
        version: KeyVersion,
        /// The keyring's minimum decryption version.
        minimum: KeyVersion,
    },
    /// The keyring has no primary key, so nothing can be sealed or rewrapped.
    #[error("the keyring has no primary key to seal with")]
    NoPrimaryKey,
    /// A key provider was asked to wrap under a version that is not its primary (the primary
    /// changed while sealing; sealing again uses the new one).
    #[error("key version {0} is not the primary key")]
    NotPrimary(KeyVersion),
    /// The key version has reached its safe limit of random-nonce encryptions; rotate the KEK.
    #[error("key version {0} reached its encryption limit; promote a new key")]
    KeyUsageLimit(KeyVersion),
    /// The plaintext is larger than [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN).
    #[error("plaintext is {len} bytes; the limit is {max}")]
    PlaintextTooLarge {
        /// Length of the plaintext given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The opened plaintext is not UTF-8 (from the `_str` variants of open).
    #[error("opened plaintext is not UTF-8")]
    NotUtf8,
    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed")]
    Randomness,
    /// A key provider failed (for example a KMS call). The source says why; it carries no key
    /// material.
    #[error("key provider failed")]
    Provider(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// A reason why bytes or text are not a well-formed envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input is shorter than the smallest possible envelope or ends inside a field.
    #[error("truncated: {len} bytes")]
    Truncated {
        /// Length of the input.
        len: usize,
    },
    /// The input is larger than the largest envelope this version allows.
    #[error("too large: {len} bytes; the limit is {max}")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The first byte names a format version this library does not know.
    #[error("unsupported format version {0}")]
    UnsupportedFormat(u8),
    /// The algorithm id is reserved or unknown.
    #[error("unsupported algorithm id {0}")]
    UnsupportedAlgorithm(u8),
    /// The key version field is 0.
    #[error("key version 0 is invalid")]
    ZeroKeyVersion,
    /// The wrapped-key length field is 0 or above the limit.
    #[error("wrapped key length {0} is out of range")]
    WrappedKeyLength(usize),
    /// The text form does not start with the expected prefix.
    #[error("text form must start with `{expected}`")]
    MissingPrefix {
        /// The prefix this version writes.
        expected: &'static str,
    },
    /// The text form is not valid unpadded base64url.
    #[error("text form is not valid unpadded base64url")]
    Base64,
}

/// A context that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// A context needs at least one entry; sealing without one would bind nothing.
    #[error("context is empty; bind at least one entry such as item_id")]
    Empty,
    /// The same key was given twice.
    #[error("duplicate context key `{0}`")]
    DuplicateKey(String),
    /// A key is empty, too long or has characters outside `a-z 0-9 _ . -`.
    #[error("context key must be 1 to {max} characters of a-z, 0-9, `_`, `.` or `-`")]
    InvalidKey {
        /// The key length limit.
        max: usize,
    },
    /// A value is longer than the limit.
    #[error("context value for `{key}` is {len} bytes; the limit is {max}")]
    ValueTooLong {
        /// The key whose value is too long.
        key: String,
        /// Length of the value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More entries than the limit.
    #[error("context has more than {max} entries")]
    TooManyEntries {
        /// The limit.
        max: usize,
    },
}

/// A failure to create, change, load or save a keyring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// Version 0 is never a valid key version.
    #[error("key version 0 is invalid")]
    InvalidVersion,
    /// The keyring has no key with this version.
    #[error("unknown key version {0}")]
    UnknownKeyVersion(KeyVersion),
    /// The change is not allowed from the key's current state.
    #[error("cannot {action} key version {version}: it is {state}")]
    InvalidTransition {
        /// What was asked.
        action: &'static str,
        /// The key version.
        version: KeyVersion,
        /// The key's current state.
        state: crate::KeyState,
    },
    /// The minimum decryption version cannot be above the primary key's version.
    #[error("minimum decryption version {minimum} would be above the primary version {primary}")]
    MinimumAbovePrimary {
        /// The minimum asked for.
        minimum: KeyVersion,
        /// The primary key's version.
        primary: KeyVersion,
    },
    /// No more versions can be added (the u32 space is used up).
    #[error("no more key versions can be added")]
    VersionsExhausted,
    /// The exported keyring text is not a valid keyring.
    #[error("invalid keyring: {0}")]
    Invalid(String),
    /// The keyring file can be read or written by users other than its owner.
    #[error(
        "keyring file {path} has mode {mode:o}; it must be readable by its owner only (chmod 600)"
    )]
    InsecurePermissions {
        /// The file's path.
        path: String,
        /// The file's permission bits.
        mode: u32,
    },
    /// Neither `TOKENWARD_KEYRING` nor `TOKENWARD_KEYRING_FILE` is set.
    #[error(
        "no keyring configured: set TOKENWARD_KEYRING (keyring JSON) or TOKENWARD_KEYRING_FILE (a path)"
    )]
    NotConfigured,
    /// Reading or writing the keyring file failed.
    #[error("keyring file {path}: {source}")]
    Io {
        /// The file's path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed")]
    Randomness,
}
