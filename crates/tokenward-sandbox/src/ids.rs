//! Identifiers and tokens in Plaid's formats.
//!
//! Tokens are `<type>-sandbox-<uuid v4>` with the UUID drawn from the OS CSPRNG, because
//! tests may treat them as the secrets they model. `item_id`, `account_id` and
//! `transaction_id` are 37 base62 characters, the length most of Plaid's examples have; an
//! `item_id` is random (or derived from the configured seed), account and transaction ids are
//! derived from the `item_id` so that an Item's data is the same on every call.

use std::fmt::Write as _;

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

/// The length of Plaid's base62 ids in this emulator.
pub(crate) const ID_LEN: usize = 37;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The kinds of token the emulator issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Access,
    Public,
    Link,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "access-sandbox-",
            TokenKind::Public => "public-sandbox-",
            TokenKind::Link => "link-sandbox-",
        }
    }
}

/// The SHA-256 of a token: the key under which the store finds it, so that the store's
/// indexes never hold a token in clear and lookups do not compare secrets byte by byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey([u8; 32]);

impl TokenKey {
    pub(crate) fn of(token: &str) -> Self {
        let digest = digest::digest(&digest::SHA256, token.as_bytes());
        let mut key = [0_u8; 32];
        key.copy_from_slice(digest.as_ref());
        TokenKey(key)
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// Random bytes from the OS CSPRNG.
///
/// # Errors
///
/// `Unspecified` when the OS generator fails, which the callers turn into an `API_ERROR`.
pub(crate) fn random_bytes<const N: usize>(
    rng: &SystemRandom,
) -> Result<[u8; N], ring::error::Unspecified> {
    let mut bytes = [0_u8; N];
    rng.fill(&mut bytes)?;
    Ok(bytes)
}

/// A version-4 UUID in its hyphenated lowercase form.
pub(crate) fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A fresh token of `kind`: `<type>-sandbox-<uuid v4>`.
pub(crate) fn new_token(
    rng: &SystemRandom,
    kind: TokenKind,
) -> Result<String, ring::error::Unspecified> {
    let uuid = uuid_v4(random_bytes::<16>(rng)?);
    Ok(format!("{}{uuid}", kind.prefix()))
}

/// A fresh request id: 15 base62 characters, like Plaid's.
pub(crate) fn request_id(rng: &SystemRandom) -> String {
    // A failing OS RNG must not turn every response into an error; fall back to a counter.
    static FALLBACK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let bytes = random_bytes::<16>(rng).unwrap_or_else(|_| {
        let n = FALLBACK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut b = [0_u8; 16];
        b[..8].copy_from_slice(&n.to_be_bytes());
        b
    });
    base62(&bytes, 15)
}

/// `len` base62 characters from `bytes` (expanded with SHA-256 when more are needed).
pub(crate) fn base62(bytes: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut block = digest::digest(&digest::SHA256, bytes);
    let mut counter: u32 = 0;
    while out.len() < len {
        for &b in block.as_ref() {
            // Rejection sampling: 248 = 4 * 62, so values below it map uniformly.
            if b < 248 {
                if let Some(&c) = BASE62.get(usize::from(b % 62)) {
                    out.push(char::from(c));
                }
                if out.len() == len {
                    return out;
                }
            }
        }
        counter += 1;
        let mut input = Vec::with_capacity(bytes.len() + 4);
        input.extend_from_slice(bytes);
        input.extend_from_slice(&counter.to_be_bytes());
        block = digest::digest(&digest::SHA256, &input);
    }
    out
}

/// An id derived from a parent id, a label and an index: stable for the same inputs.
pub(crate) fn derived_id(parent: &str, label: &str, index: u64) -> String {
    let mut input = Vec::with_capacity(parent.len() + label.len() + 10);
    input.extend_from_slice(parent.as_bytes());
    input.push(0);
    input.extend_from_slice(label.as_bytes());
    input.push(0);
    input.extend_from_slice(&index.to_be_bytes());
    base62(&input, ID_LEN)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use super::*;

    #[test]
    fn tokens_have_plaids_shape() {
        let rng = SystemRandom::new();
        let token = new_token(&rng, TokenKind::Access).unwrap();
        assert!(token.starts_with("access-sandbox-"));
        let uuid = &token["access-sandbox-".len()..];
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(token, new_token(&rng, TokenKind::Access).unwrap());
    }

    #[test]
    fn ids_are_base62_and_stable() {
        let a = derived_id("item", "account", 0);
        assert_eq!(a.len(), ID_LEN);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(a, derived_id("item", "account", 0));
        assert_ne!(a, derived_id("item", "account", 1));
        assert_eq!(request_id(&SystemRandom::new()).len(), 15);
    }

    #[test]
    fn token_key_debug_is_opaque() {
        assert_eq!(
            format!("{:?}", TokenKey::of("access-sandbox-x")),
            "TokenKey(..)"
        );
    }
}
