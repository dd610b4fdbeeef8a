//! The verification-key cache: keys by `kid`, one fetch per missing `kid` however many
//! deliveries wait for it, a short memory of unknown ids, a fetch budget, bounded size.
//!
//! Time is the caller's `now` (Unix seconds); nothing here reads a clock.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::OnceCell;

use super::error::{KeyFetchError, VerifyError};
use super::key::{KeySource, PreparedKey};

/// The cache's limits, in seconds and entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachePolicy {
    /// A cached key is fetched again after this long (so a new `expired_at` is seen).
    pub(crate) key_ttl: i64,
    /// An unknown or unusable `kid` is answered from memory for this long.
    pub(crate) unknown_ttl: i64,
    /// Keys kept at most; the least recently fetched goes first.
    pub(crate) max_keys: usize,
    /// Unknown ids remembered at most; the one forgotten soonest goes first.
    pub(crate) max_unknown: usize,
    /// Fetches of ids that are not cached keys, per 60-second window.
    pub(crate) fetches_per_minute: u32,
}

/// What a lookup found. Cloned to every delivery that waited for the same fetch.
#[derive(Clone)]
enum Lookup {
    Found(Arc<PreparedKey>),
    NotFound,
    Unusable(&'static str),
    Unavailable(Arc<dyn StdError + Send + Sync + 'static>),
}

type Flight = Arc<OnceCell<Lookup>>;

pub(crate) struct KeyCache {
    source: Arc<dyn KeySource>,
    policy: CachePolicy,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, KeyEntry>,
    /// `kid` → until when (Unix seconds) it is answered from memory, and the answer.
    unknown: HashMap<String, (i64, Negative)>,
    /// Fetches in progress, one per `kid`.
    inflight: HashMap<String, Flight>,
    window_start: i64,
    window_fetches: u32,
}

struct KeyEntry {
    key: Arc<PreparedKey>,
    fetched_at: i64,
    /// Set when another key id appeared: Plaid may be rotating, so this key's `expired_at`
    /// is checked again on its next use (as Plaid's own example does).
    stale: bool,
}

#[derive(Clone, Copy)]
enum Negative {
    NotFound,
    Unusable(&'static str),
}

impl KeyCache {
    pub(crate) fn new(source: Arc<dyn KeySource>, policy: CachePolicy) -> Self {
        Self {
            source,
            policy,
            state: Mutex::new(State::default()),
        }
    }

    /// The key for `kid` at time `now`, from the cache or (once, for all waiters) from the
    /// source. Expiry is not judged here: the caller checks `expired_at` against `now`.
    pub(crate) async fn get(&self, kid: &str, now: i64) -> Result<Arc<PreparedKey>, VerifyError> {
        let flight = {
            let mut state = self.lock();
            if let Some(entry) = state.keys.get(kid) {
                if !entry.stale && fresh(entry.fetched_at, now, self.policy.key_ttl) {
                    return Ok(Arc::clone(&entry.key));
                }
            } else if let Some(&(until, negative)) = state.unknown.get(kid)
                && now < until
                && until - now <= self.policy.unknown_ttl
            {
                return Err(negative.into_error(kid));
            }
            if let Some(flight) = state.inflight.get(kid) {
                Arc::clone(flight)
            } else {
                // Refreshing a key Plaid gave us is never throttled: only ids that are not
                // cached keys (an attacker can invent any number of those) use the budget.
                if !state.keys.contains_key(kid) && !state.take_budget(now, &self.policy) {
                    return Err(VerifyError::KeyLookupThrottled);
                }
                let flight = Flight::default();
                state.inflight.insert(kid.to_owned(), Arc::clone(&flight));
                flight
            }
        };
        // One fetch per flight: waiters share the initialiser's answer. If the initialising
        // delivery is cancelled mid-fetch, the next waiter fetches instead.
        let lookup = flight
            .get_or_init(|| self.fetch(kid, now, &flight))
            .await
            .clone();
        match lookup {
            Lookup::Found(key) => Ok(key),
            Lookup::NotFound => Err(Negative::NotFound.into_error(kid)),
            Lookup::Unusable(reason) => Err(Negative::Unusable(reason).into_error(kid)),
            Lookup::Unavailable(source) => Err(VerifyError::KeyUnavailable {
                kid: kid.to_owned(),
                source,
            }),
        }
    }

    /// Numbers of cached keys and remembered unknown ids (for tests).
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        let state = self.lock();
        (state.keys.len(), state.unknown.len())
    }

    async fn fetch(&self, kid: &str, now: i64, flight: &Flight) -> Lookup {
        let lookup = match self.source.fetch_key(kid).await {
            Ok(jwk) => match PreparedKey::from_jwk(&jwk, kid) {
                Ok(key) => Lookup::Found(Arc::new(key)),
                Err(reason) => Lookup::Unusable(reason),
            },
            Err(KeyFetchError::NotFound) => Lookup::NotFound,
            Err(KeyFetchError::Unavailable(source)) => Lookup::Unavailable(Arc::from(source)),
        };
        let mut state = self.lock();
        match &lookup {
            Lookup::Found(key) => state.insert_key(kid, Arc::clone(key), now, &self.policy),
            Lookup::NotFound => state.insert_unknown(kid, Negative::NotFound, now, &self.policy),
            Lookup::Unusable(reason) => {
                state.insert_unknown(kid, Negative::Unusable(reason), now, &self.policy);
            }
            // Nothing is remembered about a failed fetch: the next delivery tries again.
            Lookup::Unavailable(_) => {}
        }
        if state
            .inflight
            .get(kid)
            .is_some_and(|current| Arc::ptr_eq(current, flight))
        {
            state.inflight.remove(kid);
        }
        lookup
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; if one ever did, the maps are still
        // consistent (each update is a single insert or remove), so carry on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl State {
    fn take_budget(&mut self, now: i64, policy: &CachePolicy) -> bool {
        // A fixed 60-second window; a clock that went backwards starts a new one.
        if now < self.window_start || now - self.window_start >= 60 {
            self.window_start = now;
            self.window_fetches = 0;
        }
        if self.window_fetches >= policy.fetches_per_minute {
            return false;
        }
        self.window_fetches += 1;
        true
    }

    fn insert_key(&mut self, kid: &str, key: Arc<PreparedKey>, now: i64, policy: &CachePolicy) {
        self.unknown.remove(kid);
        if !self.keys.contains_key(kid) {
            // A key id we have not seen: Plaid may be rotating keys. Check the others'
            // `expired_at` again on their next use.
            for entry in self.keys.values_mut() {
                entry.stale = true;
            }
            while self.keys.len() >= policy.max_keys.max(1) {
                let Some(oldest) = self
                    .keys
                    .iter()
                    .min_by_key(|(_, entry)| entry.fetched_at)
                    .map(|(kid, _)| kid.clone())
                else {
                    break;
                };
                self.keys.remove(&oldest);
            }
        }
        self.keys.insert(
            kid.to_owned(),
            KeyEntry {
                key,
                fetched_at: now,
                stale: false,
            },
        );
    }

    fn insert_unknown(&mut self, kid: &str, negative: Negative, now: i64, policy: &CachePolicy) {
        // A key that Plaid no longer knows is dropped.
        self.keys.remove(kid);
        if policy.max_unknown == 0 || policy.unknown_ttl <= 0 {
            return;
        }
        if !self.unknown.contains_key(kid) && self.unknown.len() >= policy.max_unknown {
            self.unknown.retain(|_, (until, _)| *until > now);
            while self.unknown.len() >= policy.max_unknown {
                let Some(first) = self
                    .unknown
                    .iter()
                    .min_by_key(|(_, (until, _))| *until)
                    .map(|(kid, _)| kid.clone())
                else {
                    break;
                };
                self.unknown.remove(&first);
            }
        }
        self.unknown.insert(
            kid.to_owned(),
            (now.saturating_add(policy.unknown_ttl), negative),
        );
    }
}

impl Negative {
    fn into_error(self, kid: &str) -> VerifyError {
        match self {
            Self::NotFound => VerifyError::UnknownKeyId {
                kid: kid.to_owned(),
            },
            Self::Unusable(reason) => VerifyError::UnusableKey {
                kid: kid.to_owned(),
                reason,
            },
        }
    }
}

/// Whether something fetched at `fetched_at` is still fresh at `now`. A `now` before the
/// fetch (a clock that went backwards) counts as stale, so the key is fetched again.
fn fresh(fetched_at: i64, now: i64, ttl: i64) -> bool {
    now >= fetched_at && now - fetched_at < ttl
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::jwk::JwkPublicKey;

    /// Knows every kid that starts with `k`; counts fetches.
    #[derive(Default)]
    struct Keys(AtomicUsize);

    #[async_trait]
    impl KeySource for Keys {
        async fn fetch_key(&self, kid: &str) -> Result<JwkPublicKey, KeyFetchError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if kid.starts_with('k') {
                let c = URL_SAFE_NO_PAD.encode([1u8; 32]);
                Ok(JwkPublicKey::es256(kid.to_owned(), c.clone(), c, 0))
            } else {
                Err(KeyFetchError::NotFound)
            }
        }
    }

    fn policy() -> CachePolicy {
        CachePolicy {
            key_ttl: 600,
            unknown_ttl: 60,
            max_keys: 3,
            max_unknown: 5,
            fetches_per_minute: u32::MAX,
        }
    }

    #[tokio::test]
    async fn both_maps_are_bounded() {
        let source = Arc::new(Keys::default());
        let cache = KeyCache::new(source.clone(), policy());
        for i in 0..20 {
            cache.get(&format!("k{i}"), 1000 + i).await.unwrap();
            assert!(cache.get(&format!("u{i}"), 1000 + i).await.is_err());
            let (keys, unknown) = cache.sizes();
            assert!(keys <= 3 && unknown <= 5, "{keys} {unknown}");
        }
        // The newest key is still cached, the oldest was evicted.
        let before = source.0.load(Ordering::SeqCst);
        cache.get("k19", 1020).await.unwrap();
        assert_eq!(source.0.load(Ordering::SeqCst), before);
        cache.get("k0", 1020).await.unwrap();
        assert_eq!(source.0.load(Ordering::SeqCst), before + 1);
    }

    #[tokio::test]
    async fn key_ttl_and_rotation_refresh() {
        let source = Arc::new(Keys::default());
        let cache = KeyCache::new(source.clone(), policy());
        let fetches = || source.0.load(Ordering::SeqCst);
        cache.get("k1", 1000).await.unwrap();
        cache.get("k1", 1599).await.unwrap();
        assert_eq!(fetches(), 1);
        // Past the TTL: fetched again.
        cache.get("k1", 1600).await.unwrap();
        assert_eq!(fetches(), 2);
        // A clock that went backwards: fetched again rather than trusted.
        cache.get("k1", 10).await.unwrap();
        assert_eq!(fetches(), 3);
        // A new kid marks the others stale: k1 is fetched again on its next use.
        cache.get("k2", 20).await.unwrap();
        cache.get("k1", 21).await.unwrap();
        assert_eq!(fetches(), 5);
        cache.get("k1", 22).await.unwrap();
        assert_eq!(fetches(), 5);
    }

    #[tokio::test]
    async fn budget_limits_new_ids_not_refreshes() {
        let source = Arc::new(Keys::default());
        let cache = KeyCache::new(
            source.clone(),
            CachePolicy {
                fetches_per_minute: 2,
                key_ttl: 1,
                ..policy()
            },
        );
        cache.get("k1", 1000).await.unwrap();
        assert!(matches!(
            cache.get("u1", 1000).await,
            Err(VerifyError::UnknownKeyId { .. })
        ));
        assert!(matches!(
            cache.get("u2", 1000).await,
            Err(VerifyError::KeyLookupThrottled)
        ));
        // Refreshing k1 (TTL 1 s) is not throttled.
        cache.get("k1", 1005).await.unwrap();
        assert_eq!(source.0.load(Ordering::SeqCst), 3);
        // A new window.
        assert!(matches!(
            cache.get("u2", 1060).await,
            Err(VerifyError::UnknownKeyId { .. })
        ));
    }
}
