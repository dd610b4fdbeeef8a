//! Configuration: credentials, limits, the clock and the seed.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The source of "now" for token expiry, Item creation dates and webhook `iat`s.
///
/// Inject a [`ManualClock`] to make transaction dates and expiry deterministic in tests.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, optionally shifted by a fixed offset.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock {
    offset: chrono::Duration,
}

impl SystemClock {
    /// The system clock shifted by `offset` (negative: in the past).
    #[must_use]
    pub fn with_offset(offset: chrono::Duration) -> Self {
        SystemClock { offset }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    #[must_use]
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.checked_add_signed(by).unwrap_or(*now);
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Bounds on what the emulator holds and accepts.
///
/// Past a cap, creating another link token, public token or Item fails with a Plaid
/// `RATE_LIMIT_EXCEEDED` error (`RATE_LIMIT`, or `ADDITION_LIMIT` for Items) until expired
/// tokens are pruned or Items are removed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest request body accepted, in bytes; larger bodies get HTTP 413 with an
    /// `INVALID_REQUEST` error. Default 64 KiB.
    pub max_body_bytes: usize,
    /// The most Items held at once. Default 1,000.
    pub max_items: usize,
    /// The most unexpired link tokens held at once. Default 10,000.
    pub max_link_tokens: usize,
    /// The most unexpired public tokens held at once. Default 10,000.
    pub max_public_tokens: usize,
    /// How long a link token lives. Default 4 hours, as Plaid's.
    pub link_token_ttl: Duration,
    /// How long a public token lives. Default 30 minutes, as Plaid's.
    pub public_token_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_items: 1_000,
            max_link_tokens: 10_000,
            max_public_tokens: 10_000,
            link_token_ttl: Duration::from_secs(4 * 60 * 60),
            public_token_ttl: Duration::from_secs(30 * 60),
        }
    }
}

/// The settings the emulator runs with; built by [`SandboxBuilder`](crate::SandboxBuilder).
pub(crate) struct Config {
    /// SHA-256 of the fixed client id and secret, when the emulator accepts only one pair.
    pub(crate) credentials: Option<([u8; 32], [u8; 32])>,
    pub(crate) limits: Limits,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) seed: Option<u64>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("fixed_credentials", &self.credentials.is_some())
            .field("limits", &self.limits)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}
