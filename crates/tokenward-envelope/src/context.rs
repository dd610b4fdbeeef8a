//! The context an envelope is bound to.

use std::fmt;

use crate::ContextError;

/// Longest context key, in bytes.
pub const MAX_CONTEXT_KEY_LEN: usize = 64;
/// Longest context value, in bytes.
pub const MAX_CONTEXT_VALUE_LEN: usize = 1024;
/// Most entries in one context.
pub const MAX_CONTEXT_ENTRIES: usize = 16;

/// Bytes before the canonical encoding in `Context::encoded`: the format version and
/// algorithm id that start the data seal's associated data, so sealing needs no copy.
const AAD_PREFIX: [u8; 2] = [crate::format::FORMAT_V1, crate::format::ALG_AES256GCM];

/// What an envelope is for: a small set of `key = value` pairs, bound to the ciphertext as
/// associated data and checked on open.
///
/// Bind what identifies the row and its purpose, for example `item_id`, `user_id` and
/// `purpose = plaid.access_token`. An envelope copied to another row, user or purpose then
/// fails to open with [`EnvelopeError::Authentication`](crate::EnvelopeError::Authentication).
///
/// The context is not stored in the envelope: the caller supplies it again to open.
///
/// # Canonical encoding
///
/// Entries are kept sorted by key, keys are unique, and the encoding is length-prefixed, so two
/// different contexts never encode to the same bytes (no `a=b,c` versus `a=b` + `c` ambiguity):
///
/// ```text
/// count: u8 ‖ for each entry in key order:
///     key length: u8 ‖ key bytes ‖ value length: u16 big-endian ‖ value bytes
/// ```
///
/// Keys are 1 to 64 characters of `a-z 0-9 _ . -`; values are any UTF-8 up to 1024 bytes; at
/// most 16 entries; at least one entry is required to seal or open.
///
/// # Example
///
/// ```
/// use tokenward_envelope::Context;
///
/// let ctx = Context::new()
///     .with("item_id", "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6")?
///     .with("user_id", "user-42")?
///     .with("purpose", "plaid.access_token")?;
/// assert_eq!(ctx.len(), 3);
/// # Ok::<(), tokenward_envelope::ContextError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Context {
    entries: Vec<(String, String)>,
    encoded: Vec<u8>,
}

impl Context {
    /// An empty context. Add at least one entry before sealing.
    #[must_use]
    pub fn new() -> Self {
        Context::default()
    }

    /// Adds an entry and returns the context, for chaining.
    ///
    /// # Errors
    ///
    /// [`ContextError`] for a duplicate or invalid key, a value over the limit, or too many
    /// entries.
    pub fn with(mut self, key: &str, value: &str) -> Result<Self, ContextError> {
        self.insert(key, value)?;
        Ok(self)
    }

    /// Adds an entry.
    ///
    /// # Errors
    ///
    /// As [`Context::with`].
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), ContextError> {
        if key.is_empty()
            || key.len() > MAX_CONTEXT_KEY_LEN
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        {
            return Err(ContextError::InvalidKey {
                max: MAX_CONTEXT_KEY_LEN,
            });
        }
        if value.len() > MAX_CONTEXT_VALUE_LEN {
            return Err(ContextError::ValueTooLong {
                key: key.to_owned(),
                len: value.len(),
                max: MAX_CONTEXT_VALUE_LEN,
            });
        }
        if self.entries.len() >= MAX_CONTEXT_ENTRIES {
            return Err(ContextError::TooManyEntries {
                max: MAX_CONTEXT_ENTRIES,
            });
        }
        match self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(_) => Err(ContextError::DuplicateKey(key.to_owned())),
            Err(at) => {
                self.entries.insert(at, (key.to_owned(), value.to_owned()));
                self.encode();
                Ok(())
            }
        }
    }

    /// Builds a context from pairs.
    ///
    /// # Errors
    ///
    /// As [`Context::with`].
    pub fn from_pairs<'a, I>(pairs: I) -> Result<Self, ContextError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut ctx = Context::new();
        for (k, v) in pairs {
            ctx.insert(k, v)?;
        }
        Ok(ctx)
    }

    /// The value for `key`, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v.as_str())
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the context has no entries (such a context cannot seal or open).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The canonical encoding (see the type docs).
    ///
    /// # Errors
    ///
    /// [`ContextError::Empty`] when there are no entries.
    pub fn canonical_bytes(&self) -> Result<&[u8], ContextError> {
        self.data_aad()
            .map(|aad| aad.get(AAD_PREFIX.len()..).unwrap_or_default())
    }

    /// The data seal's associated data: format ‖ algorithm ‖ canonical encoding.
    pub(crate) fn data_aad(&self) -> Result<&[u8], ContextError> {
        if self.entries.is_empty() {
            Err(ContextError::Empty)
        } else {
            Ok(&self.encoded)
        }
    }

    fn encode(&mut self) {
        let mut out = Vec::with_capacity(
            AAD_PREFIX.len()
                + 1
                + self
                    .entries
                    .iter()
                    .map(|(k, v)| 3 + k.len() + v.len())
                    .sum::<usize>(),
        );
        out.extend_from_slice(&AAD_PREFIX);
        // The limits checked in `insert` make these conversions lossless: at most 16 entries,
        // keys of at most 64 bytes and values of at most 1024 bytes.
        out.push(u8::try_from(self.entries.len()).unwrap_or(u8::MAX));
        for (k, v) in &self.entries {
            out.push(u8::try_from(k.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&u16::try_from(v.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        self.encoded = out;
    }
}

#[allow(
    clippy::missing_fields_in_debug,
    reason = "values and the encoding are left out on purpose"
)]
impl fmt::Debug for Context {
    /// Prints the keys only: values (user ids, item ids) are identifiers that logs of a
    /// security library should not repeat.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field(
                "keys",
                &self
                    .entries
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sorted_and_unique() {
        let ctx = Context::new()
            .with("b", "2")
            .unwrap()
            .with("a", "1")
            .unwrap();
        assert_eq!(ctx.iter().collect::<Vec<_>>(), vec![("a", "1"), ("b", "2")]);
        assert_eq!(
            Context::new()
                .with("a", "1")
                .unwrap()
                .with("a", "2")
                .unwrap_err(),
            ContextError::DuplicateKey("a".into())
        );
    }

    #[test]
    fn order_of_insertion_does_not_change_the_encoding() {
        let x = Context::from_pairs([("item_id", "i"), ("user_id", "u")]).unwrap();
        let y = Context::from_pairs([("user_id", "u"), ("item_id", "i")]).unwrap();
        assert_eq!(x.canonical_bytes().unwrap(), y.canonical_bytes().unwrap());
    }

    #[test]
    fn encoding_is_unambiguous() {
        let x = Context::from_pairs([("a", "b.c")]).unwrap();
        let y = Context::from_pairs([("a", "b"), ("c", "")]).unwrap();
        assert_ne!(x.canonical_bytes().unwrap(), y.canonical_bytes().unwrap());
        let x = Context::from_pairs([("a", "")]).unwrap();
        let y = Context::from_pairs([("a", "\0")]).unwrap();
        assert_ne!(x.canonical_bytes().unwrap(), y.canonical_bytes().unwrap());
    }

    #[test]
    fn misuse_is_rejected() {
        assert_eq!(
            Context::new().canonical_bytes().unwrap_err(),
            ContextError::Empty
        );
        for bad in ["", "Item", "item id", "ключ", &"k".repeat(65)] {
            assert!(matches!(
                Context::new().with(bad, "v").unwrap_err(),
                ContextError::InvalidKey { .. }
            ));
        }
        let long = "v".repeat(MAX_CONTEXT_VALUE_LEN + 1);
        assert!(matches!(
            Context::new().with("k", &long).unwrap_err(),
            ContextError::ValueTooLong { .. }
        ));
        let mut ctx = Context::new();
        for i in 0..MAX_CONTEXT_ENTRIES {
            ctx.insert(&format!("k{i}"), "v").unwrap();
        }
        assert!(matches!(
            ctx.insert("one-more", "v").unwrap_err(),
            ContextError::TooManyEntries { .. }
        ));
    }

    #[test]
    fn debug_hides_values() {
        let ctx = Context::new().with("user_id", "canary-user-123").unwrap();
        let shown = format!("{ctx:?}");
        assert!(shown.contains("user_id"));
        assert!(!shown.contains("canary-user-123"));
    }
}
