//! Keyed fingerprints: correlate log lines about one secret without revealing it.

use std::fmt;
use std::fmt::Write as _;

use ring::hmac;

use crate::Tag;

/// Shortest deployment key accepted, in bytes.
pub const MIN_FINGERPRINT_KEY_LEN: usize = 32;

/// Computes keyed fingerprints: HMAC-SHA256 under a deployment key, truncated to 64 bits and
/// written as `fp1:<16 hex digits>`.
///
/// Two log lines that redact the same token under the same key show the same fingerprint, so
/// an operator can follow one token through the logs without seeing it. Without the key the
/// fingerprint reveals nothing: unkeyed hashes are never offered, because short secrets such as
/// a 9-digit routing number or a 17-digit account number fall to enumeration.
///
/// The `fp1` prefix names the scheme (HMAC-SHA256, 64-bit truncation, input `tag ‖ 0x00 ‖
/// value`), so a later scheme can be told apart. The tag is part of the input, so one value
/// fingerprints differently as an access token and as a client secret.
///
/// ```
/// use tokenward_redact::{Fingerprinter, Tag};
///
/// let fp = Fingerprinter::new(&[7u8; 32])?;
/// let a = fp.fingerprint(&Tag::ACCESS_TOKEN, "access-sandbox-1234");
/// assert!(a.starts_with("fp1:") && a.len() == 20);
/// assert_eq!(a, fp.fingerprint(&Tag::ACCESS_TOKEN, "access-sandbox-1234"));
/// # Ok::<(), tokenward_redact::FingerprintKeyError>(())
/// ```
#[derive(Clone)]
pub struct Fingerprinter {
    key: hmac::Key,
}

impl Fingerprinter {
    /// A fingerprinter under `key` (at least 32 bytes of secret randomness, the same on every
    /// instance whose logs should correlate).
    ///
    /// # Errors
    ///
    /// [`FingerprintKeyError`] when the key is shorter than 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, FingerprintKeyError> {
        if key.len() < MIN_FINGERPRINT_KEY_LEN {
            return Err(FingerprintKeyError);
        }
        Ok(Fingerprinter {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        })
    }

    /// The fingerprint of `value` found as `tag`: `fp1:` and 16 lowercase hex digits.
    #[must_use]
    pub fn fingerprint(&self, tag: &Tag, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(tag.name().as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        let tag = ctx.sign();
        let mut out = String::with_capacity(20);
        out.push_str("fp1:");
        for b in tag.as_ref().iter().take(8) {
            // Writing to a String cannot fail.
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fingerprinter")
            .field("scheme", &"fp1")
            .finish_non_exhaustive()
    }
}

/// The fingerprint key is too short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fingerprint key must be at least 32 bytes")]
pub struct FingerprintKeyError;

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint is HMAC-SHA256 over `tag ‖ 0x00 ‖ value`, checked against ring's HMAC.
    #[test]
    fn fingerprint_is_hmac_of_tag_nul_value() {
        let key = [0x0b_u8; 32];
        let fp = Fingerprinter::new(&key).unwrap();
        let expected = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &key),
            b"plaid.access_token\0access-sandbox-x",
        );
        let hex: String = expected.as_ref()[..8]
            .iter()
            .fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
        assert_eq!(
            fp.fingerprint(&Tag::ACCESS_TOKEN, "access-sandbox-x"),
            format!("fp1:{hex}")
        );
        assert_ne!(
            fp.fingerprint(&Tag::ACCESS_TOKEN, "v"),
            fp.fingerprint(&Tag::CLIENT_SECRET, "v")
        );
        assert_ne!(
            fp.fingerprint(&Tag::ACCESS_TOKEN, "v"),
            Fingerprinter::new(&[1; 32])
                .unwrap()
                .fingerprint(&Tag::ACCESS_TOKEN, "v")
        );
        assert!(Fingerprinter::new(&[0; 31]).is_err());
    }
}
