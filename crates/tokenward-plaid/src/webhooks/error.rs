//! Errors, one type per operation: verifying a delivery ([`VerifyError`]), fetching a key
//! ([`KeyFetchError`]) and parsing a body ([`BodyError`]).
//!
//! No message contains the JWT, the body or key material. Text that an attacker controls and
//! that helps an operator (the `alg` of a rejected JWT, a key id) is bounded and escaped
//! before it is stored, so that it can be logged as it is.

use std::error::Error as StdError;
use std::sync::Arc;

/// A failure to verify a Plaid webhook delivery.
///
/// Answer any of these with a 4xx (Plaid retries), except [`VerifyError::Replay`]: that
/// delivery was already accepted once, so answer 200 and do not process it again. The
/// [`is_replay`](Self::is_replay) helper says which.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The request has no `Plaid-Verification` header, or its value is empty.
    #[error("missing Plaid-Verification header")]
    MissingHeader,
    /// The header value is not a well-formed compact JWS, or (after the signature checked
    /// out) its payload is not the claims Plaid sends.
    #[error("malformed Plaid-Verification jwt: {0}")]
    MalformedJwt(#[from] MalformedJwt),
    /// The JWT header has no `alg`.
    #[error("jwt header has no alg; only ES256 is accepted")]
    MissingAlgorithm,
    /// The JWT header names an algorithm other than exactly `ES256` (`none`, `HS256`,
    /// `RS256`, `es256`, …).
    #[error("unsupported jwt algorithm \"{alg}\"; only ES256 is accepted")]
    UnsupportedAlgorithm {
        /// The `alg` given: at most 16 characters, ASCII-escaped, `…` when cut.
        alg: String,
    },
    /// The JWT header carries a parameter we refuse to honour: `crit` (we implement no
    /// extensions), or a key reference (`jku`, `jwk`, `x5u`, `x5c`) that asks us to trust a
    /// key the sender chose. Keys come only from the key source, by `kid`.
    #[error("jwt header parameter `{name}` is not accepted")]
    ForbiddenHeaderParameter {
        /// The parameter's name.
        name: &'static str,
    },
    /// The JWT header has no `kid`, or an empty one.
    #[error("jwt header has no kid")]
    MissingKeyId,
    /// The key source does not know the `kid` (Plaid answered the key lookup with an error).
    /// The answer is remembered for a short while; see
    /// [`VerifierConfig::unknown_key_ttl`](crate::webhooks::VerifierConfig::unknown_key_ttl).
    #[error("unknown webhook verification key id `{kid}`")]
    UnknownKeyId {
        /// The key id (checked: at most 128 characters of `A-Z a-z 0-9 - _ .`).
        kid: String,
    },
    /// The key source returned a key that cannot verify ES256: not EC P-256, another `alg`
    /// or `use`, another `kid`, or coordinates that are not 32 bytes of base64url.
    #[error("webhook verification key `{kid}` is unusable: {reason}")]
    UnusableKey {
        /// The key id.
        kid: String,
        /// What is wrong with the key.
        reason: &'static str,
    },
    /// The key source failed (transport error, 5xx, timeout). Nothing is cached; the next
    /// delivery tries again.
    #[error("webhook verification key `{kid}` could not be fetched")]
    KeyUnavailable {
        /// The key id.
        kid: String,
        /// Why the fetch failed. It never contains key material.
        #[source]
        source: Arc<dyn StdError + Send + Sync + 'static>,
    },
    /// Too many lookups of key ids that are not cached in the last minute; see
    /// [`VerifierConfig::max_key_fetches_per_minute`](crate::webhooks::VerifierConfig::max_key_fetches_per_minute).
    /// Cached keys keep working.
    #[error("too many webhook verification key lookups; try again later")]
    KeyLookupThrottled,
    /// The key's `expired_at` is at or before `now`. Plaid retries with a current key.
    #[error("webhook verification key `{kid}` expired at {expired_at} (unix seconds)")]
    KeyExpired {
        /// The key id.
        kid: String,
        /// When the key expired, in Unix seconds.
        expired_at: i64,
    },
    /// The ES256 signature does not verify under the key named by `kid`.
    #[error("webhook signature does not verify")]
    BadSignature,
    /// The JWT was issued (`iat`) longer ago than the maximum age.
    #[error("webhook is stale: issued {age_secs} s ago; the limit is {max_age_secs} s")]
    Stale {
        /// Seconds between `iat` and `now`.
        age_secs: u64,
        /// The configured maximum age in seconds.
        max_age_secs: u64,
    },
    /// The JWT was issued (`iat`) further in the future than the clock-skew allowance.
    #[error("webhook is issued {ahead_secs} s in the future; the allowance is {skew_secs} s")]
    FromTheFuture {
        /// Seconds between `now` and `iat`.
        ahead_secs: u64,
        /// The configured clock-skew allowance in seconds.
        skew_secs: u64,
    },
    /// The SHA-256 of the raw body bytes is not the signed `request_body_sha256`: the body
    /// was changed (even by whitespace) or belongs to another delivery.
    #[error("webhook body does not match the signed request_body_sha256")]
    BodyHashMismatch,
    /// The delivery verified, but its body is not a Plaid webhook (or a known webhook does
    /// not match its schema).
    #[error("verified webhook body is malformed: {0}")]
    MalformedBody(#[source] BodyError),
    /// This exact signed delivery was already accepted within the replay window. It is
    /// authentic: answer 200 and do not process it again.
    #[error("webhook delivery already accepted (replay)")]
    Replay,
}

impl VerifyError {
    /// Whether this is [`VerifyError::Replay`]: an authentic delivery that was already
    /// accepted, to be acknowledged (200) without processing.
    #[must_use]
    pub fn is_replay(&self) -> bool {
        matches!(self, Self::Replay)
    }
}

/// Why a `Plaid-Verification` value is not a well-formed JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedJwt {
    /// The value is longer than Plaid's JWTs ever are.
    #[error("longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The value is not three `.`-separated segments, or the header or payload is empty.
    #[error("not three dot-separated segments")]
    Segments,
    /// The header segment is not unpadded base64url.
    #[error("header is not unpadded base64url")]
    HeaderEncoding,
    /// The header is not a JSON object whose `alg`, `kid` and `typ` are strings (or it
    /// repeats a member).
    #[error("header is not a JSON object with string members")]
    HeaderJson,
    /// The `kid` is too long or has characters outside `A-Z a-z 0-9 - _ .`.
    #[error("kid is longer than {max} characters or has characters outside A-Z, a-z, 0-9, -, _, .")]
    KeyId {
        /// The length limit.
        max: usize,
    },
    /// The signature segment is not 64 bytes (`r ‖ s`) of unpadded base64url.
    #[error("signature is not 64 bytes of unpadded base64url")]
    Signature,
    /// The payload segment is not unpadded base64url (checked after the signature).
    #[error("payload is not unpadded base64url")]
    PayloadEncoding,
    /// The payload is not a JSON object with an integer `iat` and a 64-hex-digit
    /// `request_body_sha256` (checked after the signature).
    #[error("payload claims are not an integer iat and a 64-hex-digit request_body_sha256")]
    Claims,
}

/// A failure of a [`KeySource`](crate::webhooks::KeySource) to produce a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFetchError {
    /// No key has this id. Plaid answers `/webhook_verification_key/get` for an unknown
    /// `key_id` with an error object (an `INVALID_INPUT`-type error): map such answers here.
    #[error("no webhook verification key has this id")]
    NotFound,
    /// The source could not answer (transport error, timeout, 5xx, rate limit).
    #[error("webhook verification key source unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync + 'static>),
}

impl KeyFetchError {
    /// A [`KeyFetchError::Unavailable`] with `source` as its cause. The cause must not
    /// contain credentials.
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self::Unavailable(source.into())
    }
}

/// Why a webhook body could not be parsed into a [`WebhookEvent`](crate::webhooks::WebhookEvent).
///
/// Positions are given, never the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is not JSON.
    #[error("not JSON (line {line}, column {column})")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The body is JSON but not an object with string `webhook_type` and `webhook_code`.
    #[error("not a JSON object with string webhook_type and webhook_code")]
    NotAWebhook,
    /// A webhook of a known type and code does not match its schema (a required field is
    /// missing or has the wrong type).
    #[error(
        "{webhook_type} {webhook_code} webhook does not match its schema (line {line}, column {column})"
    )]
    Schema {
        /// The webhook type.
        webhook_type: &'static str,
        /// The webhook code.
        webhook_code: &'static str,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
    },
}

/// At most `max` characters of attacker-controlled text, ASCII-escaped (quotes, backslashes,
/// controls and non-ASCII become escapes), with `…` when cut.
pub(crate) fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 3);
    let mut chars = text.chars();
    for c in chars.by_ref().take(max) {
        out.extend(c.escape_default());
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use super::*;

    #[test]
    fn sanitize_bounds_and_escapes() {
        assert_eq!(sanitize("none", 16), "none");
        assert_eq!(sanitize("a\"b\nc\u{1b}", 16), "a\\\"b\\nc\\u{1b}");
        assert_eq!(
            sanitize(&"x".repeat(100), 16),
            format!("{}…", "x".repeat(16))
        );
        assert!(sanitize("é", 16).is_ascii());
    }

    #[test]
    fn displays_are_lowercase_first() {
        let errors = [
            VerifyError::MissingHeader.to_string(),
            VerifyError::BadSignature.to_string(),
            VerifyError::Replay.to_string(),
            VerifyError::MalformedJwt(MalformedJwt::Segments).to_string(),
        ];
        for e in errors {
            assert!(e.chars().next().unwrap().is_lowercase(), "{e}");
        }
    }
}
