//! The verifier: Plaid's documented steps, in order, then the typed event.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::digest::{SHA256, digest};

use super::cache::{CachePolicy, KeyCache};
use super::error::VerifyError;
use super::event::{WebhookEvent, parse_webhook_body};
use super::jwt;
use super::key::KeySource;
use super::replay::ReplayGuard;

/// Limits of a [`WebhookVerifier`]: start from [`VerifierConfig::default`] and change what
/// you need with the `with_*` methods.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// The oldest `iat` accepted, before `now`. Default 5 minutes, as Plaid documents.
    pub max_age: Duration,
    /// How far after `now` an `iat` may be (the two clocks disagree a little). Default 60 s.
    pub max_future_skew: Duration,
    /// A cached key is fetched again after this long, so that an `expired_at` Plaid set since
    /// is seen. Default 10 minutes.
    pub key_ttl: Duration,
    /// An unknown (or unusable) key id is answered from memory, without a fetch, for this
    /// long. Default 60 s.
    pub unknown_key_ttl: Duration,
    /// Keys cached at most (Plaid has a handful at a time). Default 16.
    pub max_cached_keys: usize,
    /// Unknown key ids remembered at most. Default 1024.
    pub max_unknown_key_ids: usize,
    /// Fetches of key ids that are not cached keys allowed per minute; beyond it,
    /// [`VerifyError::KeyLookupThrottled`]. Forged deliveries can name a new `kid` each, and
    /// the negative cache alone does not stop those from reaching Plaid. Refreshes of cached
    /// keys are not counted. Default 30.
    pub max_key_fetches_per_minute: u32,
    /// Deliveries remembered by the built-in [`ReplayGuard`] (window: `max_age` plus
    /// `max_future_skew`); 0 turns it off. Default 65,536.
    pub replay_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(5 * 60),
            max_future_skew: Duration::from_secs(60),
            key_ttl: Duration::from_secs(10 * 60),
            unknown_key_ttl: Duration::from_secs(60),
            max_cached_keys: 16,
            max_unknown_key_ids: 1024,
            max_key_fetches_per_minute: 30,
            replay_capacity: 65_536,
        }
    }
}

impl VerifierConfig {
    /// This config with [`max_age`](Self::max_age) set.
    #[must_use]
    pub fn with_max_age(mut self, value: Duration) -> Self {
        self.max_age = value;
        self
    }

    /// This config with [`max_future_skew`](Self::max_future_skew) set.
    #[must_use]
    pub fn with_max_future_skew(mut self, value: Duration) -> Self {
        self.max_future_skew = value;
        self
    }

    /// This config with [`key_ttl`](Self::key_ttl) set.
    #[must_use]
    pub fn with_key_ttl(mut self, value: Duration) -> Self {
        self.key_ttl = value;
        self
    }

    /// This config with [`unknown_key_ttl`](Self::unknown_key_ttl) set.
    #[must_use]
    pub fn with_unknown_key_ttl(mut self, value: Duration) -> Self {
        self.unknown_key_ttl = value;
        self
    }

    /// This config with [`max_cached_keys`](Self::max_cached_keys) set.
    #[must_use]
    pub fn with_max_cached_keys(mut self, value: usize) -> Self {
        self.max_cached_keys = value;
        self
    }

    /// This config with [`max_unknown_key_ids`](Self::max_unknown_key_ids) set.
    #[must_use]
    pub fn with_max_unknown_key_ids(mut self, value: usize) -> Self {
        self.max_unknown_key_ids = value;
        self
    }

    /// This config with [`max_key_fetches_per_minute`](Self::max_key_fetches_per_minute) set.
    #[must_use]
    pub fn with_max_key_fetches_per_minute(mut self, value: u32) -> Self {
        self.max_key_fetches_per_minute = value;
        self
    }

    /// This config with [`replay_capacity`](Self::replay_capacity) set.
    #[must_use]
    pub fn with_replay_capacity(mut self, value: usize) -> Self {
        self.replay_capacity = value;
        self
    }
}

/// Verifies `Plaid-Verification` signed webhook deliveries and parses them.
///
/// One verifier serves the whole process: share it (it is `Send + Sync`; wrap it in an
/// `Arc`). Its key cache and replay guard live inside.
///
/// # Steps
///
/// [`verify`](Self::verify) performs Plaid's documented steps, in order, and stops at the
/// first failure:
///
/// 1. read the `Plaid-Verification` value (missing or empty: rejected);
/// 2. decode the JWT header without trusting it: `alg` must be exactly `ES256` (not `none`,
///    `HS256`, `RS256`, `es256`, …); `crit`, `jku`, `jwk`, `x5u` and `x5c` are rejected, so
///    no key is ever taken from the sender; `kid` is required;
/// 3. get the key by `kid` from the cache or the [`KeySource`]; it must be EC P-256 for
///    ES256 and not expired (below);
/// 4. verify the ES256 signature (`r ‖ s`) over `header.payload` as received, with ring;
/// 5. decode the claims: `iat` must be at most [`max_age`](VerifierConfig::max_age) before
///    `now` and at most [`max_future_skew`](VerifierConfig::max_future_skew) after it;
/// 6. compare the SHA-256 of the **raw body bytes** with `request_body_sha256` in constant
///    time (never re-serialise the body: whitespace counts);
/// 7. only then parse the body into a [`WebhookEvent`], and check the replay guard.
///
/// # Expired keys
///
/// A key whose `expired_at` is at or before `now` verifies nothing, even a delivery whose
/// `iat` is before the expiry. The `iat` is only as trustworthy as the key that signed it:
/// a key may be expired *because* it leaked, and whoever holds it can write any `iat`.
/// Rejecting costs little: Plaid retries a rejected delivery, signed anew with its current
/// key. A key with a future `expired_at` still verifies until then. Cached keys are
/// fetched again after [`key_ttl`](VerifierConfig::key_ttl), and at their next use after a
/// new `kid` appears (rotation), so a newly set `expired_at` is noticed.
///
/// # Key cache
///
/// Keys are cached by `kid`. Concurrent deliveries that need the same missing key wait for
/// one fetch. An unknown `kid` is remembered for
/// [`unknown_key_ttl`](VerifierConfig::unknown_key_ttl), and lookups of ids that are not
/// cached keys are limited per minute, so forged `kid`s cannot make us hammer Plaid. A failed
/// fetch (Plaid unreachable) is not remembered, and a cached key past its TTL is not used
/// while its refresh fails: verification fails closed and Plaid retries later. Both maps are
/// bounded; the oldest entries go first.
///
/// # Replays
///
/// An authentic delivery accepted once is refused again as [`VerifyError::Replay`] while
/// the built-in [`ReplayGuard`] remembers it (window `max_age + max_future_skew`, after
/// which it is stale anyway). An error, not a flag, so that a handler that treats every error
/// as "do not process" can never process one delivery twice; answer a `Replay` with 200.
/// See [`ReplayGuard`] for deployments with several instances, and for Plaid's retries.
pub struct WebhookVerifier {
    cache: KeyCache,
    max_age: i64,
    max_future_skew: i64,
    replay: Option<Arc<ReplayGuard>>,
}

/// A delivery that passed every check, with its typed event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VerifiedWebhook {
    /// The parsed body.
    pub event: WebhookEvent,
    /// The `kid` of the key that signed it.
    pub key_id: String,
    /// The signed `iat`, Unix seconds.
    pub issued_at: i64,
    /// SHA-256 of the raw body (equal to the signed `request_body_sha256`). Plaid's retries
    /// of one webhook carry the same body: use this as an idempotency key in your store.
    pub body_sha256: [u8; 32],
    /// SHA-256 of the signed `header.payload`: identifies this delivery (see
    /// [`ReplayGuard`]).
    pub delivery_id: [u8; 32],
}

impl VerifiedWebhook {
    /// [`body_sha256`](Self::body_sha256) as 64 lowercase hex digits.
    #[must_use]
    pub fn body_sha256_hex(&self) -> String {
        hex(&self.body_sha256)
    }

    /// [`delivery_id`](Self::delivery_id) as 64 lowercase hex digits.
    #[must_use]
    pub fn delivery_id_hex(&self) -> String {
        hex(&self.delivery_id)
    }
}

impl WebhookVerifier {
    /// A verifier with the default [`VerifierConfig`].
    pub fn new(source: impl KeySource + 'static) -> Self {
        Self::with_config(source, VerifierConfig::default())
    }

    /// A verifier with `config`.
    pub fn with_config(source: impl KeySource + 'static, config: VerifierConfig) -> Self {
        let policy = CachePolicy {
            key_ttl: duration_secs(config.key_ttl),
            unknown_ttl: duration_secs(config.unknown_key_ttl),
            max_keys: config.max_cached_keys,
            max_unknown: config.max_unknown_key_ids,
            fetches_per_minute: config.max_key_fetches_per_minute,
        };
        let replay = (config.replay_capacity > 0).then(|| {
            Arc::new(ReplayGuard::new(
                config.max_age.saturating_add(config.max_future_skew),
                config.replay_capacity,
            ))
        });
        Self {
            cache: KeyCache::new(Arc::new(source), policy),
            max_age: duration_secs(config.max_age),
            max_future_skew: duration_secs(config.max_future_skew),
            replay,
        }
    }

    /// Replaces the replay guard: a shared one (several verifiers, one memory), or `None` to
    /// turn replay detection off (when a shared store checks
    /// [`VerifiedWebhook::delivery_id`] instead).
    #[must_use]
    pub fn with_replay_guard(mut self, guard: Option<Arc<ReplayGuard>>) -> Self {
        self.replay = guard;
        self
    }

    /// Verifies one delivery: the `Plaid-Verification` header value (`None` when the request
    /// has none), the raw body bytes as received, and the current time.
    ///
    /// # Errors
    ///
    /// Every [`VerifyError`] but the last two means the delivery is not proven to come from
    /// Plaid, unchanged and fresh: reject it (4xx). [`VerifyError::MalformedBody`] means it
    /// is authentic but not a webhook we can read; [`VerifyError::Replay`] means it is
    /// authentic and was already accepted (answer 200).
    pub async fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<VerifiedWebhook, VerifyError> {
        // 1. The header.
        let token = header.map(str::trim).unwrap_or_default();
        if token.is_empty() {
            return Err(VerifyError::MissingHeader);
        }
        // 2. The JWT header, untrusted: alg, forbidden parameters, kid.
        let jwt = jwt::parse(token)?;
        // 3. The key.
        let now_secs = unix_seconds(now);
        let key = self.cache.get(&jwt.kid, now_secs).await?;
        if let Some(expired_at) = key.expired_at
            && expired_at <= now_secs
        {
            return Err(VerifyError::KeyExpired {
                kid: jwt.kid,
                expired_at,
            });
        }
        // 4. The signature, over `header.payload` exactly as received.
        if !key.verify(jwt.signing_input, &jwt.signature) {
            return Err(VerifyError::BadSignature);
        }
        // 5. The claims, now trusted: freshness.
        let claims = jwt::claims(jwt.payload)?;
        self.check_freshness(claims.iat, now_secs)?;
        // 6. The body hash, over the raw bytes, in constant time.
        let body_sha256 = sha256(body);
        if !tokenward_redact::constant_time_eq(&body_sha256, &claims.body_sha256) {
            return Err(VerifyError::BodyHashMismatch);
        }
        // 7. The event, then the replay guard (recorded only once all else succeeded).
        let event = parse_webhook_body(body).map_err(VerifyError::MalformedBody)?;
        let delivery_id = sha256(jwt.signing_input);
        if let Some(guard) = &self.replay
            && !guard.check_and_record(&delivery_id, now)
        {
            return Err(VerifyError::Replay);
        }
        Ok(VerifiedWebhook {
            event,
            key_id: jwt.kid,
            issued_at: claims.iat,
            body_sha256,
            delivery_id,
        })
    }

    /// [`verify`](Self::verify) at the system clock's current time.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub async fn verify_now(
        &self,
        header: Option<&str>,
        body: &[u8],
    ) -> Result<VerifiedWebhook, VerifyError> {
        self.verify(header, body, SystemTime::now()).await
    }

    /// The replay guard in use, if any.
    #[must_use]
    pub fn replay_guard(&self) -> Option<&Arc<ReplayGuard>> {
        self.replay.as_ref()
    }

    fn check_freshness(&self, iat: i64, now: i64) -> Result<(), VerifyError> {
        let age = i128::from(now) - i128::from(iat);
        if age > i128::from(self.max_age) {
            return Err(VerifyError::Stale {
                age_secs: u64::try_from(age).unwrap_or(u64::MAX),
                max_age_secs: self.max_age.unsigned_abs(),
            });
        }
        if -age > i128::from(self.max_future_skew) {
            return Err(VerifyError::FromTheFuture {
                ahead_secs: u64::try_from(-age).unwrap_or(u64::MAX),
                skew_secs: self.max_future_skew.unsigned_abs(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("max_age_secs", &self.max_age)
            .field("max_future_skew_secs", &self.max_future_skew)
            .field("cache", &self.cache)
            .field("replay", &self.replay)
            .finish()
    }
}

/// Seconds since the Unix epoch (negative before it), saturating.
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Whole seconds of `duration`, saturating at `i64::MAX`.
pub(crate) fn duration_secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

fn hex(bytes: &[u8; 32]) -> String {
    let mut out = String::with_capacity(64);
    for byte in bytes {
        // Both nibbles are below 16, so `from_digit` always has an answer.
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use super::*;

    #[test]
    fn unix_seconds_both_sides_of_the_epoch() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(5)), 5);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }

    #[test]
    fn hex_is_lowercase() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x0f;
        let h = hex(&bytes);
        assert!(h.starts_with("ab00"));
        assert!(h.ends_with("0f"));
    }
}
