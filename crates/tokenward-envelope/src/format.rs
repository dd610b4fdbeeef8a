//! The envelope format, byte by byte, and its text form.
//!
//! # Binary layout, format version 1
//!
//! All integers are big-endian.
//!
//! | offset    | size | field                                                          |
//! |-----------|------|----------------------------------------------------------------|
//! | 0         | 1    | format version: `0x01`                                         |
//! | 1         | 1    | algorithm id (see below)                                       |
//! | 2         | 4    | KEK version, u32, never 0                                      |
//! | 6         | 2    | wrapped-DEK length `L`, u16, 1 to 1024                         |
//! | 8         | L    | wrapped DEK, as the key provider wrote it                      |
//! | 8 + L     | 12   | data nonce (random)                                            |
//! | 20 + L    | n    | data ciphertext, AES-256-GCM under the DEK                     |
//! | 20 + L + n| 16   | data tag                                                       |
//!
//! The in-process [`Keyring`](crate::Keyring) writes `L = 60`: wrap nonce (12, random) ‖
//! wrapped DEK (32) ‖ wrap tag (16), AES-256-GCM under the KEK. A 51-byte access token
//! therefore seals to 147 bytes, 201 characters of text.
//!
//! # Algorithm ids
//!
//! | id     | meaning                                                                     |
//! |--------|-----------------------------------------------------------------------------|
//! | `0x00` | invalid                                                                     |
//! | `0x01` | AES-256-GCM, 256-bit DEK, 96-bit random nonce                               |
//! | `0x02` | reserved: derived-key AES-256-GCM with key commitment (XAES/DNDK style)     |
//! | `0x03` | reserved: AES-256-GCM-SIV                                                   |
//! | others | reserved                                                                    |
//!
//! # What is authenticated
//!
//! Every header byte is authenticated by one of the two AES-GCM seals:
//! - the **data seal** has associated data `format ‖ algorithm ‖ canonical context` (the
//!   context encoding is described on [`Context`](crate::Context));
//! - the **wrap seal** has associated data `"tokenward.dek.v1" ‖ format ‖ algorithm ‖ KEK
//!   version`; the wrapped DEK and its nonce are that seal's own ciphertext and nonce.
//!
//! The KEK version, wrapped-DEK length and wrapped DEK are deliberately *not* in the data
//! seal's associated data: a rewrap changes them and must leave the data ciphertext
//! untouched. Changing any of them makes the wrap seal fail (or names a key that is not
//! there), and a DEK swapped in from another envelope does not open this data.
//!
//! # Text form
//!
//! `twe1:` followed by the binary form in base64url without padding. The prefix names the
//! format version, so a column can be told apart from plaintext or other schemes at a glance.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{FormatError, KeyVersion};

/// The format version this library writes.
pub const FORMAT_V1: u8 = 0x01;
/// Algorithm id: AES-256-GCM with a 256-bit DEK and a 96-bit random nonce.
pub const ALG_AES256GCM: u8 = 0x01;
/// The prefix of the text form of format version 1.
pub const TEXT_PREFIX: &str = "twe1:";
/// Largest plaintext one envelope holds. Access tokens are about 50 bytes; the limit keeps
/// hostile input from forcing large allocations.
pub const MAX_PLAINTEXT_LEN: usize = 64 * 1024;
/// Largest wrapped DEK a key provider may produce.
pub const MAX_WRAPPED_KEY_LEN: usize = 1024;

pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const HEADER_LEN: usize = 8;
/// Largest binary envelope.
pub const MAX_ENVELOPE_LEN: usize =
    HEADER_LEN + MAX_WRAPPED_KEY_LEN + NONCE_LEN + MAX_PLAINTEXT_LEN + TAG_LEN;
const MAX_TEXT_LEN: usize = TEXT_PREFIX.len() + MAX_ENVELOPE_LEN.div_ceil(3) * 4;

/// A sealed envelope: ciphertext, safe to store and to log the length or key version of.
///
/// Parsing checks the structure only; whether it opens is checked by
/// [`Cipher::open`](crate::Cipher::open).
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    bytes: Vec<u8>,
    kek_version: KeyVersion,
    wrapped_len: usize,
}

impl Envelope {
    /// Parses the binary form.
    ///
    /// # Errors
    ///
    /// [`FormatError`] for anything that is not a well-formed version-1 envelope.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        Self::from_vec(bytes.to_vec())
    }

    /// Parses the binary form, taking ownership of the buffer.
    ///
    /// # Errors
    ///
    /// As [`Envelope::from_bytes`].
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self, FormatError> {
        let (kek_version, wrapped_len) = parse_header(&bytes)?;
        if bytes.len() < HEADER_LEN + wrapped_len + NONCE_LEN + TAG_LEN {
            return Err(FormatError::Truncated { len: bytes.len() });
        }
        let max = HEADER_LEN + wrapped_len + NONCE_LEN + MAX_PLAINTEXT_LEN + TAG_LEN;
        if bytes.len() > max {
            return Err(FormatError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        Ok(Envelope {
            bytes,
            kek_version,
            wrapped_len,
        })
    }

    /// Parses the text form (`twe1:` + base64url without padding).
    ///
    /// # Errors
    ///
    /// [`FormatError`] for a missing prefix, bad base64url or a malformed envelope.
    pub fn from_text(text: &str) -> Result<Self, FormatError> {
        let body = text
            .strip_prefix(TEXT_PREFIX)
            .ok_or(FormatError::MissingPrefix {
                expected: TEXT_PREFIX,
            })?;
        if text.len() > MAX_TEXT_LEN {
            return Err(FormatError::TooLarge {
                len: text.len(),
                max: MAX_TEXT_LEN,
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| FormatError::Base64)?;
        Self::from_vec(bytes)
    }

    /// The text form: `twe1:` + base64url without padding.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(TEXT_PREFIX.len() + self.bytes.len().div_ceil(3) * 4);
        out.push_str(TEXT_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&self.bytes, &mut out);
        out
    }

    /// The binary form.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The binary form, by value.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The version of the KEK that wraps this envelope's DEK. Read from the header; nothing is
    /// decrypted.
    #[must_use]
    pub fn kek_version(&self) -> KeyVersion {
        self.kek_version
    }

    /// The format version (1).
    #[must_use]
    pub fn format_version(&self) -> u8 {
        FORMAT_V1
    }

    /// The algorithm id.
    #[must_use]
    pub fn algorithm(&self) -> u8 {
        ALG_AES256GCM
    }

    /// Length of the sealed plaintext (the plaintext is not revealed by anything else here).
    #[must_use]
    pub fn plaintext_len(&self) -> usize {
        self.bytes.len() - HEADER_LEN - self.wrapped_len - NONCE_LEN - TAG_LEN
    }

    /// The sealed data: data nonce ‖ ciphertext ‖ tag, everything after the wrapped DEK.
    /// [`Cipher::rewrap`](crate::Cipher::rewrap) never changes these bytes.
    #[must_use]
    pub fn sealed_data(&self) -> &[u8] {
        self.bytes
            .get(HEADER_LEN + self.wrapped_len..)
            .unwrap_or_default()
    }

    /// The wrapped DEK as the key provider wrote it.
    pub(crate) fn wrapped_key(&self) -> &[u8] {
        self.bytes
            .get(HEADER_LEN..HEADER_LEN + self.wrapped_len)
            .unwrap_or_default()
    }

    /// Data nonce, then ciphertext ‖ tag.
    pub(crate) fn data_parts(&self) -> (&[u8], &[u8]) {
        self.sealed_data()
            .split_at_checked(NONCE_LEN)
            .unwrap_or_default()
    }

    /// Builds an envelope from its parts (the parts are trusted: they come from our seal).
    pub(crate) fn assemble(
        kek_version: KeyVersion,
        wrapped: &[u8],
        nonce: &[u8; NONCE_LEN],
        ciphertext_and_tag: &[u8],
    ) -> Result<Self, FormatError> {
        let mut bytes = Envelope::begin(
            kek_version,
            wrapped,
            nonce,
            ciphertext_and_tag.len().saturating_sub(TAG_LEN),
        )?;
        bytes.extend_from_slice(ciphertext_and_tag);
        Ok(Envelope::finish(bytes, kek_version, wrapped.len()))
    }

    /// Starts an envelope buffer: header ‖ wrapped ‖ nonce, with room for the rest.
    pub(crate) fn begin(
        kek_version: KeyVersion,
        wrapped: &[u8],
        nonce: &[u8; NONCE_LEN],
        plaintext_len: usize,
    ) -> Result<Vec<u8>, FormatError> {
        let wrapped_len = u16::try_from(wrapped.len())
            .ok()
            .filter(|&l| l > 0 && usize::from(l) <= MAX_WRAPPED_KEY_LEN)
            .ok_or(FormatError::WrappedKeyLength(wrapped.len()))?;
        let mut bytes =
            Vec::with_capacity(HEADER_LEN + wrapped.len() + NONCE_LEN + plaintext_len + TAG_LEN);
        bytes.extend_from_slice(&header(kek_version, wrapped_len));
        bytes.extend_from_slice(wrapped);
        bytes.extend_from_slice(nonce);
        Ok(bytes)
    }

    /// Completes an envelope started with [`Envelope::begin`].
    pub(crate) fn finish(bytes: Vec<u8>, kek_version: KeyVersion, wrapped_len: usize) -> Self {
        Envelope {
            bytes,
            kek_version,
            wrapped_len,
        }
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("format", &FORMAT_V1)
            .field("algorithm", &ALG_AES256GCM)
            .field("kek_version", &self.kek_version)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// Reads the KEK version from the text form without decoding the rest or decrypting anything:
/// for stores that index envelopes by key version.
///
/// # Errors
///
/// [`FormatError`] when the prefix, the first bytes or the header are malformed.
pub fn peek_kek_version(text: &str) -> Result<KeyVersion, FormatError> {
    let body = text
        .strip_prefix(TEXT_PREFIX)
        .ok_or(FormatError::MissingPrefix {
            expected: TEXT_PREFIX,
        })?;
    // 12 base64 characters decode to exactly the 9 bytes we need to check (header + 1).
    let head = body.get(..12).ok_or(FormatError::Truncated {
        len: body.len() * 3 / 4,
    })?;
    let bytes = URL_SAFE_NO_PAD
        .decode(head)
        .map_err(|_| FormatError::Base64)?;
    let (version, _) = parse_header(&bytes)?;
    Ok(version)
}

/// The associated data of the wrap seal.
pub(crate) fn wrap_aad(kek_version: KeyVersion) -> [u8; 22] {
    let mut aad = [0u8; 22];
    let (tag, rest) = aad.split_at_mut(16);
    tag.copy_from_slice(b"tokenward.dek.v1");
    let (fmt, rest) = rest.split_at_mut(2);
    fmt.copy_from_slice(&[FORMAT_V1, ALG_AES256GCM]);
    rest.copy_from_slice(&kek_version.get().to_be_bytes());
    aad
}

fn header(kek_version: KeyVersion, wrapped_len: u16) -> [u8; HEADER_LEN] {
    let v = kek_version.get().to_be_bytes();
    let l = wrapped_len.to_be_bytes();
    [FORMAT_V1, ALG_AES256GCM, v[0], v[1], v[2], v[3], l[0], l[1]]
}

fn parse_header(bytes: &[u8]) -> Result<(KeyVersion, usize), FormatError> {
    let truncated = FormatError::Truncated { len: bytes.len() };
    let (&format, rest) = bytes.split_first().ok_or(truncated.clone())?;
    if format != FORMAT_V1 {
        return Err(FormatError::UnsupportedFormat(format));
    }
    let (&alg, rest) = rest.split_first().ok_or(truncated.clone())?;
    if alg != ALG_AES256GCM {
        return Err(FormatError::UnsupportedAlgorithm(alg));
    }
    let (version, rest) = rest.split_first_chunk::<4>().ok_or(truncated.clone())?;
    let version =
        KeyVersion::new(u32::from_be_bytes(*version)).ok_or(FormatError::ZeroKeyVersion)?;
    let (len, _) = rest.split_first_chunk::<2>().ok_or(truncated)?;
    let wrapped_len = usize::from(u16::from_be_bytes(*len));
    if wrapped_len == 0 || wrapped_len > MAX_WRAPPED_KEY_LEN {
        return Err(FormatError::WrappedKeyLength(wrapped_len));
    }
    Ok((version, wrapped_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::assemble(KeyVersion::new(7).unwrap(), &[9; 60], &[1; 12], &[2; 40]).unwrap()
    }

    #[test]
    fn layout_matches_the_docs() {
        let e = sample();
        let b = e.as_bytes();
        assert_eq!(&b[..8], &[1, 1, 0, 0, 0, 7, 0, 60]);
        assert_eq!(&b[8..68], &[9; 60][..]);
        assert_eq!(&b[68..80], &[1; 12][..]);
        assert_eq!(e.plaintext_len(), 24);
        assert_eq!(Envelope::from_bytes(b).unwrap(), e);
    }

    #[test]
    fn text_round_trip_and_peek() {
        let e = sample();
        let t = e.to_text();
        assert!(t.starts_with("twe1:"));
        assert_eq!(Envelope::from_text(&t).unwrap(), e);
        assert_eq!(peek_kek_version(&t).unwrap().get(), 7);
    }

    #[test]
    fn malformed_headers_are_named() {
        assert_eq!(
            Envelope::from_bytes(&[]).unwrap_err(),
            FormatError::Truncated { len: 0 }
        );
        assert_eq!(
            Envelope::from_bytes(&[2]).unwrap_err(),
            FormatError::UnsupportedFormat(2)
        );
        assert_eq!(
            Envelope::from_bytes(&[1, 2]).unwrap_err(),
            FormatError::UnsupportedAlgorithm(2)
        );
        assert_eq!(
            Envelope::from_bytes(&[1, 1, 0, 0, 0, 0, 0, 60, 0]).unwrap_err(),
            FormatError::ZeroKeyVersion
        );
        assert_eq!(
            Envelope::from_bytes(&[1, 1, 0, 0, 0, 1, 0, 0, 0]).unwrap_err(),
            FormatError::WrappedKeyLength(0)
        );
        assert_eq!(
            Envelope::from_bytes(&[1, 1, 0, 0, 0, 1, 4, 1, 0]).unwrap_err(),
            FormatError::WrappedKeyLength(1025)
        );
        assert!(matches!(
            Envelope::from_text("twe2:AQ").unwrap_err(),
            FormatError::MissingPrefix { .. }
        ));
        assert_eq!(
            Envelope::from_text("twe1:A=").unwrap_err(),
            FormatError::Base64
        );
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let huge = format!("twe1:{}", "A".repeat(MAX_TEXT_LEN));
        assert!(matches!(
            Envelope::from_text(&huge).unwrap_err(),
            FormatError::TooLarge { .. }
        ));
        let mut b = sample().into_bytes();
        b.resize(
            HEADER_LEN + 60 + NONCE_LEN + MAX_PLAINTEXT_LEN + TAG_LEN + 1,
            0,
        );
        assert!(matches!(
            Envelope::from_vec(b).unwrap_err(),
            FormatError::TooLarge { .. }
        ));
    }
}
