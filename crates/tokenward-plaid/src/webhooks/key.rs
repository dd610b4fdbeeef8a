//! Where verification keys come from ([`KeySource`]) and the checked form a key is cached in.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

use super::error::KeyFetchError;
use crate::jwk::JwkPublicKey;
use crate::models::WebhookVerificationKeyGetRequest;
use crate::{Error, ErrorCode, ErrorType, PlaidApi, PlaidError};

/// Fetches Plaid's webhook verification key by key id (`kid`).
///
/// The production source calls `/webhook_verification_key/get`; tests use an in-memory
/// double. The [`WebhookVerifier`](crate::webhooks::WebhookVerifier) caches what a source
/// returns, coalesces concurrent lookups of one id into one call, and remembers unknown ids
/// for a while, so a source need not do any of that itself.
///
/// Fetch the key from the same Plaid environment (sandbox or production) that sends the
/// webhooks being verified.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The key with id `kid`.
    ///
    /// # Errors
    ///
    /// [`KeyFetchError::NotFound`] when the source answers that no such key exists (Plaid
    /// answers an unknown `key_id` with an `INVALID_INPUT`-type error);
    /// [`KeyFetchError::Unavailable`] when it cannot answer.
    async fn fetch_key(&self, kid: &str) -> Result<JwkPublicKey, KeyFetchError>;
}

#[async_trait]
impl<T: KeySource + ?Sized> KeySource for Arc<T> {
    async fn fetch_key(&self, kid: &str) -> Result<JwkPublicKey, KeyFetchError> {
        (**self).fetch_key(kid).await
    }
}

/// The production [`KeySource`]: `/webhook_verification_key/get` through any [`PlaidApi`]
/// (the HTTP client, the sandbox emulator, a test double).
///
/// Plaid's answer for a `key_id` it does not know (an `INVALID_WEBHOOK_VERIFICATION_KEY_ID`
/// code, or another `INVALID_INPUT` or `INVALID_REQUEST` error) becomes
/// [`KeyFetchError::NotFound`]. Everything else, including wrong credentials
/// (`INVALID_API_KEYS`, `UNAUTHORIZED_ENVIRONMENT`), rate limits, 5xx and transport failures,
/// is [`KeyFetchError::Unavailable`] with the client's [`Error`] as its source, so that a
/// configuration error is not mistaken for forged key ids.
pub struct PlaidKeySource<P: ?Sized> {
    api: Arc<P>,
}

impl<P: PlaidApi + ?Sized> PlaidKeySource<P> {
    /// A key source over `api`. Use the client of the environment whose webhooks you verify.
    pub fn new(api: Arc<P>) -> Self {
        Self { api }
    }
}

impl<P: ?Sized> Clone for PlaidKeySource<P> {
    fn clone(&self) -> Self {
        Self {
            api: Arc::clone(&self.api),
        }
    }
}

impl<P: ?Sized> std::fmt::Debug for PlaidKeySource<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaidKeySource").finish_non_exhaustive()
    }
}

#[async_trait]
impl<P: PlaidApi + ?Sized> KeySource for PlaidKeySource<P> {
    async fn fetch_key(&self, kid: &str) -> Result<JwkPublicKey, KeyFetchError> {
        let request = WebhookVerificationKeyGetRequest::new(kid);
        match self.api.webhook_verification_key_get(&request).await {
            Ok(response) => Ok(response.key),
            Err(error) => Err(key_fetch_error(error)),
        }
    }
}

/// Sorts a failed key lookup into "no such key" and "could not ask".
fn key_fetch_error(error: Error) -> KeyFetchError {
    if error.plaid_error().is_some_and(is_unknown_key) && !error.is_rate_limited() {
        KeyFetchError::NotFound
    } else {
        KeyFetchError::Unavailable(Box::new(error))
    }
}

fn is_unknown_key(error: &PlaidError) -> bool {
    *error.error_code() == ErrorCode::InvalidWebhookVerificationKeyId
        || (matches!(
            error.error_type(),
            ErrorType::InvalidInput | ErrorType::InvalidRequest
        ) && !error.is_config_error())
}

/// A key checked to be an ES256 (P-256) verification key, in the form ring verifies with.
#[derive(Debug)]
pub(crate) struct PreparedKey {
    /// The uncompressed SEC 1 point: `0x04 ‖ x ‖ y`.
    point: [u8; 65],
    /// When the key expired (Unix seconds), if it has an expiry.
    pub(crate) expired_at: Option<i64>,
}

impl PreparedKey {
    /// Checks `jwk` (fetched for `kid`) and converts it.
    ///
    /// Requires `kty` `EC`, `crv` `P-256`, `alg` `ES256` and `use` `sig` (the last two may be
    /// empty), the same `kid`, and 32-byte base64url coordinates. Whether the point is on the
    /// curve is checked by ring at every verification (an off-curve point verifies nothing).
    pub(crate) fn from_jwk(jwk: &JwkPublicKey, kid: &str) -> Result<Self, &'static str> {
        if jwk.kid != kid {
            return Err("the key source returned a key with another kid");
        }
        if jwk.kty != "EC" {
            return Err("kty is not EC");
        }
        if jwk.crv != "P-256" {
            return Err("crv is not P-256");
        }
        if !(jwk.alg.is_empty() || jwk.alg == "ES256") {
            return Err("alg is not ES256");
        }
        if !(jwk.use_.is_empty() || jwk.use_ == "sig") {
            return Err("use is not sig");
        }
        let mut point = [0u8; 65];
        let (tag, xy) = point.split_at_mut(1);
        let (x, y) = xy.split_at_mut(32);
        tag.fill(0x04);
        decode_coordinate(&jwk.x, x).ok_or("x is not 32 bytes of unpadded base64url")?;
        decode_coordinate(&jwk.y, y).ok_or("y is not 32 bytes of unpadded base64url")?;
        Ok(Self {
            point,
            expired_at: jwk.expired_at,
        })
    }

    /// Whether `signature` (`r ‖ s`) is a valid ES256 signature of `message` under this key.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.point)
            .verify(message, signature)
            .is_ok()
    }
}

fn decode_coordinate(text: &str, out: &mut [u8]) -> Option<()> {
    if text.len() != 43 {
        return None;
    }
    let mut buf = [0u8; 35];
    let n = URL_SAFE_NO_PAD
        .decode_slice(text.as_bytes(), &mut buf)
        .ok()?;
    let decoded = buf.get(..n)?;
    (decoded.len() == out.len()).then(|| out.copy_from_slice(decoded))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use super::*;

    fn jwk() -> JwkPublicKey {
        let c = URL_SAFE_NO_PAD.encode([1u8; 32]);
        JwkPublicKey::es256("k1".to_owned(), c.clone(), c, 0)
    }

    #[test]
    fn plaid_errors_are_sorted() {
        use crate::api::Endpoint;
        let plaid = |t, c| {
            Error::plaid(
                Endpoint::WebhookVerificationKeyGet,
                400,
                PlaidError::new(t, c, "m"),
            )
        };
        let not_found = [
            plaid(
                ErrorType::InvalidInput,
                ErrorCode::InvalidWebhookVerificationKeyId,
            ),
            plaid(ErrorType::InvalidRequest, ErrorCode::InvalidField),
            plaid(
                ErrorType::InvalidInput,
                ErrorCode::from("SOMETHING_NEW".to_owned()),
            ),
        ];
        for e in not_found {
            assert!(matches!(key_fetch_error(e), KeyFetchError::NotFound));
        }
        let unavailable = [
            plaid(ErrorType::InvalidInput, ErrorCode::InvalidApiKeys),
            plaid(ErrorType::InvalidInput, ErrorCode::UnauthorizedEnvironment),
            plaid(ErrorType::RateLimitExceeded, ErrorCode::RateLimit),
            plaid(ErrorType::ApiError, ErrorCode::InternalServerError),
            Error::Timeout {
                endpoint: Endpoint::WebhookVerificationKeyGet,
                outcome: crate::Outcome::Ambiguous,
            },
        ];
        for e in unavailable {
            assert!(matches!(key_fetch_error(e), KeyFetchError::Unavailable(_)));
        }
    }

    #[test]
    fn accepts_es256_jwk() {
        let key = PreparedKey::from_jwk(&jwk(), "k1").unwrap();
        assert_eq!(key.point[0], 4);
        assert_eq!(&key.point[1..33], &[1u8; 32]);
        assert_eq!(key.expired_at, None);
    }

    #[test]
    fn rejects_other_keys() {
        let mut cases: Vec<(JwkPublicKey, &str)> = Vec::new();
        let mut k = jwk();
        k.kty = "RSA".into();
        cases.push((k, "kty"));
        let mut k = jwk();
        k.crv = "P-384".into();
        cases.push((k, "crv"));
        let mut k = jwk();
        k.alg = "HS256".into();
        cases.push((k, "alg"));
        let mut k = jwk();
        k.use_ = "enc".into();
        cases.push((k, "use"));
        let mut k = jwk();
        k.x = URL_SAFE_NO_PAD.encode([1u8; 31]);
        cases.push((k, "short x"));
        let mut k = jwk();
        k.y.push('A');
        cases.push((k, "long y"));
        for (k, what) in cases {
            assert!(PreparedKey::from_jwk(&k, "k1").is_err(), "{what}");
        }
        assert!(PreparedKey::from_jwk(&jwk(), "k2").is_err(), "kid");
    }
}
