//! Caches of data keys: unwrapped DEKs for opening, and a reused DEK for sealing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::aead::LessSafeKey;

use crate::KeyVersion;

/// Limits of the cache of unwrapped data keys.
///
/// Opening an envelope unwraps its DEK (a KMS call for remote providers, an AES-GCM open plus
/// a key schedule for the in-process keyring). The cache keeps the expanded key of recently
/// unwrapped DEKs, keyed by the exact wrapped bytes, so opening the same envelope again skips
/// that work. An entry leaves when it is older than `ttl`, has served `max_uses` opens, or is
/// the oldest when the cache is full.
///
/// A hit still checks the key version's state: disabling a version or raising the minimum
/// decryption version takes effect at once, cached or not.
///
/// # Security
///
/// Entries hold ring's expanded AES key only; our copy of the raw DEK is zeroized as soon as
/// the key is expanded. ring does not zeroize its key schedules, so an evicted entry's schedule
/// is freed, not wiped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DekCacheConfig {
    /// Most entries held.
    pub max_entries: usize,
    /// Longest an entry is kept.
    pub ttl: Duration,
    /// Most opens one entry serves.
    pub max_uses: u64,
}

impl Default for DekCacheConfig {
    fn default() -> Self {
        DekCacheConfig {
            max_entries: 4096,
            ttl: Duration::from_secs(300),
            max_uses: 1 << 20,
        }
    }
}

/// How sealing picks a data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DekPolicy {
    /// A fresh DEK for every envelope (the default): no two envelopes share a data key.
    #[default]
    Fresh,
    /// Reuse one DEK (and its wrapped form) for up to `max_uses` envelopes or `max_age`,
    /// whichever comes first, then draw a new one. Saves a KMS call per envelope for remote
    /// providers. `max_uses` is capped at 2^32 (random 96-bit nonces, NIST SP 800-38D).
    Reuse {
        /// Most envelopes sealed under one DEK.
        max_uses: u64,
        /// Longest one DEK is used.
        max_age: Duration,
    },
}

/// The most random-nonce encryptions under one DEK.
pub(crate) const DEK_USE_LIMIT: u64 = 1 << 32;

pub(crate) struct DekCache {
    config: DekCacheConfig,
    /// Keyed by the last 16 bytes of the wrapped DEK (for the in-process keyring, the wrap tag:
    /// a MAC, unique per wrap), which keeps lookups cheap; the entry holds the whole wrapped
    /// DEK and a hit compares every byte. Colliding tails from a hostile store only cause
    /// misses.
    map: Mutex<HashMap<u128, CacheEntry>>,
}

fn slot(wrapped: &[u8]) -> u128 {
    let tail = wrapped
        .get(wrapped.len().saturating_sub(16)..)
        .unwrap_or(wrapped);
    let mut bytes = [0u8; 16];
    bytes
        .get_mut(..tail.len())
        .unwrap_or_default()
        .copy_from_slice(tail);
    u128::from_le_bytes(bytes)
}

struct CacheEntry {
    wrapped: Box<[u8]>,
    version: KeyVersion,
    key: Arc<LessSafeKey>,
    born: Instant,
    uses: u64,
}

impl DekCache {
    pub(crate) fn new(config: DekCacheConfig) -> Self {
        DekCache {
            config,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get(
        &self,
        version: KeyVersion,
        wrapped: &[u8],
        now: Instant,
    ) -> Option<Arc<LessSafeKey>> {
        let mut map = self.map.lock().ok()?;
        let slot = slot(wrapped);
        let entry = map.get_mut(&slot)?;
        let fresh = *entry.wrapped == *wrapped
            && entry.version == version
            && now.saturating_duration_since(entry.born) < self.config.ttl
            && entry.uses < self.config.max_uses;
        if !fresh {
            map.remove(&slot);
            return None;
        }
        entry.uses += 1;
        Some(Arc::clone(&entry.key))
    }

    pub(crate) fn insert(
        &self,
        version: KeyVersion,
        wrapped: &[u8],
        key: Arc<LessSafeKey>,
        now: Instant,
    ) {
        if self.config.max_entries == 0 {
            return;
        }
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() >= self.config.max_entries {
            let ttl = self.config.ttl;
            map.retain(|_, e| now.saturating_duration_since(e.born) < ttl);
        }
        if map.len() >= self.config.max_entries {
            let oldest = map.iter().min_by_key(|(_, e)| e.born).map(|(k, _)| *k);
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(
            slot(wrapped),
            CacheEntry {
                wrapped: wrapped.into(),
                version,
                key,
                born: now,
                uses: 1,
            },
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }
}

/// The DEK being reused for sealing under [`DekPolicy::Reuse`].
#[derive(Clone)]
pub(crate) struct ActiveDek {
    pub(crate) version: KeyVersion,
    pub(crate) wrapped: Arc<[u8]>,
    pub(crate) key: Arc<LessSafeKey>,
    pub(crate) born: Instant,
    pub(crate) uses: u64,
}

pub(crate) struct ActiveSlot(Mutex<Option<ActiveDek>>);

impl ActiveSlot {
    pub(crate) fn new() -> Self {
        ActiveSlot(Mutex::new(None))
    }

    /// Takes one use of the active DEK if it is still within the policy for `version`.
    pub(crate) fn take_use(
        &self,
        policy: DekPolicy,
        version: KeyVersion,
        now: Instant,
    ) -> Option<ActiveDek> {
        let DekPolicy::Reuse { max_uses, max_age } = policy else {
            return None;
        };
        let max_uses = max_uses.min(DEK_USE_LIMIT);
        let mut slot = self.0.lock().ok()?;
        let active = slot.as_mut()?;
        if active.version != version
            || active.uses >= max_uses
            || now.saturating_duration_since(active.born) >= max_age
        {
            *slot = None;
            return None;
        }
        active.uses += 1;
        Some(active.clone())
    }

    pub(crate) fn install(&self, dek: ActiveDek) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(dek);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::aead::{AES_256_GCM, UnboundKey};

    fn key() -> Arc<LessSafeKey> {
        Arc::new(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap(),
        ))
    }

    #[test]
    fn entries_expire_by_age_uses_and_capacity() {
        let v = KeyVersion::FIRST;
        let t0 = Instant::now();
        let cache = DekCache::new(DekCacheConfig {
            max_entries: 2,
            ttl: Duration::from_secs(10),
            max_uses: 3,
        });
        cache.insert(v, b"a", key(), t0);
        assert!(cache.get(v, b"a", t0).is_some()); // use 2
        assert!(cache.get(v, b"a", t0).is_some()); // use 3
        assert!(cache.get(v, b"a", t0).is_none(), "past max_uses");
        cache.insert(v, b"b", key(), t0);
        assert!(
            cache.get(v, b"b", t0 + Duration::from_secs(10)).is_none(),
            "past ttl"
        );
        cache.insert(v, b"c", key(), t0);
        cache.insert(v, b"d", key(), t0 + Duration::from_secs(1));
        cache.insert(v, b"e", key(), t0 + Duration::from_secs(2));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(v, b"c", t0).is_none(), "oldest evicted when full");
        assert!(
            cache.get(KeyVersion::new(2).unwrap(), b"d", t0).is_none(),
            "version must match"
        );
    }

    #[test]
    fn reuse_policy_limits_uses_age_and_version() {
        let v = KeyVersion::FIRST;
        let t0 = Instant::now();
        let policy = DekPolicy::Reuse {
            max_uses: 2,
            max_age: Duration::from_secs(5),
        };
        let slot = ActiveSlot::new();
        assert!(slot.take_use(policy, v, t0).is_none());
        let dek = ActiveDek {
            version: v,
            wrapped: Arc::from(&b"w"[..]),
            key: key(),
            born: t0,
            uses: 1,
        };
        slot.install(dek.clone());
        assert!(slot.take_use(policy, v, t0).is_some());
        assert!(slot.take_use(policy, v, t0).is_none(), "max_uses");
        slot.install(dek.clone());
        assert!(
            slot.take_use(policy, v, t0 + Duration::from_secs(5))
                .is_none(),
            "max_age"
        );
        slot.install(dek);
        assert!(
            slot.take_use(policy, KeyVersion::new(2).unwrap(), t0)
                .is_none(),
            "new primary"
        );
        assert!(slot.take_use(DekPolicy::Fresh, v, t0).is_none());
    }
}
