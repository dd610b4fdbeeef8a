//! The compact JWS in `Plaid-Verification`: split, decode the header without trusting it,
//! and (only after the signature checked out) decode the claims.
//!
//! Plaid's JWT is `base64url(header) . base64url(payload) . base64url(r ‖ s)` with header
//! `{"alg":"ES256","kid":"…","typ":"JWT"}` and payload
//! `{"iat":…,"request_body_sha256":"<64 hex>"}` (RFC 7515 §7.1, RFC 7518 §3.4).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::error::{MalformedJwt, VerifyError, sanitize};

/// The longest `Plaid-Verification` value accepted. Plaid's are about 250 bytes; anything
/// near this limit is not from Plaid, and the limit bounds the work done before the key
/// lookup.
pub(crate) const MAX_JWT_LEN: usize = 2048;
/// The longest `kid` accepted (Plaid's are UUIDs, 36 characters).
pub(crate) const MAX_KID_LEN: usize = 128;
/// How much of a rejected `alg` an error keeps.
const MAX_ALG_SHOWN: usize = 16;
/// The length of an ES256 signature: `r ‖ s`, 32 bytes each (RFC 7518 §3.4).
pub(crate) const SIGNATURE_LEN: usize = 64;

/// A JWT whose header has been checked (alg, kid, no forbidden parameters) but whose
/// signature has not.
#[derive(Debug)]
pub(crate) struct UnverifiedJwt<'a> {
    /// The `kid` of the header, checked against [`MAX_KID_LEN`] and the character set.
    pub(crate) kid: String,
    /// `header . payload` exactly as received: the bytes the signature covers.
    pub(crate) signing_input: &'a [u8],
    /// The payload segment (base64url), decoded only after the signature verifies.
    pub(crate) payload: &'a str,
    /// The signature, `r ‖ s`.
    pub(crate) signature: [u8; SIGNATURE_LEN],
}

/// The claims of a verified JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claims {
    /// Issued at, Unix seconds.
    pub(crate) iat: i64,
    /// The signed SHA-256 of the request body.
    pub(crate) body_sha256: [u8; 32],
}

/// Splits `token` and checks its header: `alg` exactly `ES256`, no `crit` or key-reference
/// parameters, a well-formed `kid`, and a 64-byte signature. Nothing here is trusted yet.
pub(crate) fn parse(token: &str) -> Result<UnverifiedJwt<'_>, VerifyError> {
    if token.len() > MAX_JWT_LEN {
        return Err(MalformedJwt::TooLong { max: MAX_JWT_LEN }.into());
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MalformedJwt::Segments.into());
    };
    if header.is_empty() || payload.is_empty() {
        return Err(MalformedJwt::Segments.into());
    }

    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| MalformedJwt::HeaderEncoding)?;
    let header_fields: Header<'_> =
        serde_json::from_slice(&header_json).map_err(|_| MalformedJwt::HeaderJson)?;
    match header_fields.alg.as_deref() {
        Some("ES256") => {}
        None => return Err(VerifyError::MissingAlgorithm),
        Some(other) => {
            return Err(VerifyError::UnsupportedAlgorithm {
                alg: sanitize(other, MAX_ALG_SHOWN),
            });
        }
    }
    if let Some(name) = header_fields.forbidden() {
        return Err(VerifyError::ForbiddenHeaderParameter { name });
    }
    let kid = match header_fields.kid.as_deref() {
        None | Some("") => return Err(VerifyError::MissingKeyId),
        Some(kid) if !valid_kid(kid) => {
            return Err(MalformedJwt::KeyId { max: MAX_KID_LEN }.into());
        }
        Some(kid) => kid.to_owned(),
    };

    let signature = decode_signature(signature).ok_or(MalformedJwt::Signature)?;
    // `header.len()` is a char boundary of `token` (the split was on an ASCII dot), and the
    // signing input ends before the second dot.
    let signing_input = token
        .get(..header.len() + 1 + payload.len())
        .ok_or(MalformedJwt::Segments)?
        .as_bytes();
    Ok(UnverifiedJwt {
        kid,
        signing_input,
        payload,
        signature,
    })
}

/// Decodes the claims of a payload whose signature has verified.
pub(crate) fn claims(payload: &str) -> Result<Claims, MalformedJwt> {
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| MalformedJwt::PayloadEncoding)?;
    let raw: RawClaims<'_> = serde_json::from_slice(&json).map_err(|_| MalformedJwt::Claims)?;
    let body_sha256 = decode_hex_32(&raw.request_body_sha256).ok_or(MalformedJwt::Claims)?;
    Ok(Claims {
        iat: raw.iat,
        body_sha256,
    })
}

/// The JOSE header members we read. Unknown members are ignored; a repeated member is an
/// error (serde's derive rejects duplicate fields), so `{"alg":"ES256","alg":"none"}` cannot
/// mean different things to different parsers.
#[derive(Deserialize)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one flag per JOSE parameter, as serde reads them"
)]
struct Header<'a> {
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    // `typ` is read so that a non-string `typ` is malformed, but its value is not checked:
    // it carries no security meaning here (RFC 7515 §4.1.9).
    #[serde(borrow, default, rename = "typ")]
    _typ: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
}

impl Header<'_> {
    /// The first parameter that asks us to honour an extension or a sender-chosen key.
    fn forbidden(&self) -> Option<&'static str> {
        [
            (self.crit, "crit"),
            (self.jku, "jku"),
            (self.jwk, "jwk"),
            (self.x5u, "x5u"),
            (self.x5c, "x5c"),
        ]
        .into_iter()
        .find_map(|(present, name)| present.then_some(name))
    }
}

/// `true` for a member that is present with any value, `null` included.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

#[derive(Deserialize)]
struct RawClaims<'a> {
    iat: i64,
    #[serde(borrow)]
    request_body_sha256: Cow<'a, str>,
}

fn valid_kid(kid: &str) -> bool {
    kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn decode_signature(segment: &str) -> Option<[u8; SIGNATURE_LEN]> {
    // 64 bytes are 86 unpadded base64url characters; a shorter or longer segment cannot be
    // an ES256 signature (a DER-encoded one, for instance, is longer).
    if segment.len() != 86 {
        return None;
    }
    let mut buf = [0u8; SIGNATURE_LEN + 3];
    let n = URL_SAFE_NO_PAD
        .decode_slice(segment.as_bytes(), &mut buf)
        .ok()?;
    let (signature, _) = buf.split_first_chunk::<SIGNATURE_LEN>()?;
    (n == SIGNATURE_LEN).then_some(*signature)
}

/// Exactly 64 hex digits (either case) as 32 bytes.
pub(crate) fn decode_hex_32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *byte = (hex_digit(*hi)? << 4) | hex_digit(*lo)?;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str) -> String {
        let sig = URL_SAFE_NO_PAD.encode([7u8; 64]);
        format!("{}.{}.{sig}", b64(header), b64(r#"{"iat":1}"#))
    }

    #[test]
    fn accepts_plaid_header() {
        let t =
            token(r#"{"alg":"ES256","kid":"bfbd5111-8e33-4643-8ced-b2e642a72f3c","typ":"JWT"}"#);
        let jwt = parse(&t).unwrap();
        assert_eq!(jwt.kid, "bfbd5111-8e33-4643-8ced-b2e642a72f3c");
        assert_eq!(jwt.signature, [7u8; 64]);
        assert!(t.as_bytes().starts_with(jwt.signing_input));
        assert_eq!(jwt.signing_input.len(), t.rfind('.').unwrap());
    }

    #[test]
    fn header_rules() {
        let cases = [
            (r#"{"kid":"k"}"#, "no alg"),
            (r#"{"alg":"none","kid":"k"}"#, "none"),
            (r#"{"alg":"es256","kid":"k"}"#, "lowercase"),
            (r#"{"alg":"ES256 ","kid":"k"}"#, "trailing space"),
            (r#"{"alg":"ES256","alg":"none","kid":"k"}"#, "duplicate alg"),
            (r#"{"alg":["ES256"],"kid":"k"}"#, "array alg"),
            (r#"{"alg":"ES256"}"#, "no kid"),
            (r#"{"alg":"ES256","kid":""}"#, "empty kid"),
            (r#"{"alg":"ES256","kid":"a/b"}"#, "slash in kid"),
            (r#"{"alg":"ES256","kid":"k","crit":["b64"]}"#, "crit"),
            (r#"{"alg":"ES256","kid":"k","jku":"https://evil"}"#, "jku"),
            (r#"{"alg":"ES256","kid":"k","jwk":{}}"#, "jwk"),
            (r#"{"alg":"ES256","kid":"k","x5u":null}"#, "x5u null"),
            (r#"{"alg":"ES256","kid":"k","x5c":[]}"#, "x5c"),
            (r#"{"alg":"ES256","kid":"k","typ":1}"#, "numeric typ"),
            (r#"["ES256"]"#, "not an object"),
        ];
        for (header, what) in cases {
            assert!(parse(&token(header)).is_err(), "{what}");
        }
    }

    #[test]
    fn unsupported_alg_is_bounded() {
        let long = format!(r#"{{"alg":"{}\n","kid":"k"}}"#, "A".repeat(500));
        let err = parse(&token(&long)).unwrap_err();
        let VerifyError::UnsupportedAlgorithm { alg } = &err else {
            panic!("{err:?}")
        };
        assert!(alg.len() < 40);
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn claims_decode() {
        let hex = "ab".repeat(32);
        let payload = b64(&format!(
            r#"{{"iat":1560211755,"request_body_sha256":"{hex}"}}"#
        ));
        let c = claims(&payload).unwrap();
        assert_eq!(c.iat, 1_560_211_755);
        assert_eq!(c.body_sha256, [0xab; 32]);
        for bad in [
            r#"{"iat":1.5,"request_body_sha256":"00"}"#,
            r#"{"iat":"1","request_body_sha256":"00"}"#,
            r#"{"iat":1}"#,
            r#"{"iat":1,"request_body_sha256":"zz"}"#,
        ] {
            assert!(claims(&b64(bad)).is_err(), "{bad}");
        }
        assert_eq!(claims("!!"), Err(MalformedJwt::PayloadEncoding));
    }

    #[test]
    fn hex() {
        assert_eq!(decode_hex_32(&"0F".repeat(32)), Some([0x0f; 32]));
        assert_eq!(decode_hex_32(&"0".repeat(63)), None);
        assert_eq!(decode_hex_32(&format!("{}g", "0".repeat(63))), None);
    }
}
