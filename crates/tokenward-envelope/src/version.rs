//! Key versions.

use std::fmt;
use std::num::NonZeroU32;

/// The version number of a key-encryption key (KEK) in a keyring.
///
/// Versions start at 1 and grow by one with every key added. The version is stored in clear in
/// every envelope header (and authenticated), so a store can index it and find the envelopes
/// that still need a rewrap without decrypting anything.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyVersion(NonZeroU32);

impl KeyVersion {
    /// The first version of a new keyring.
    pub const FIRST: KeyVersion = KeyVersion(NonZeroU32::MIN);

    /// Makes a version from its number; `None` for 0, which is never a valid version.
    #[must_use]
    pub const fn new(version: u32) -> Option<Self> {
        match NonZeroU32::new(version) {
            Some(v) => Some(KeyVersion(v)),
            None => None,
        }
    }

    /// The version number.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// The version after this one, or `None` when the numbers are used up.
    #[must_use]
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(KeyVersion)
    }
}

impl fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl From<KeyVersion> for u32 {
    fn from(v: KeyVersion) -> u32 {
        v.get()
    }
}

impl TryFrom<u32> for KeyVersion {
    type Error = crate::KeyringError;

    fn try_from(v: u32) -> Result<Self, Self::Error> {
        KeyVersion::new(v).ok_or(crate::KeyringError::InvalidVersion)
    }
}
