//! Detecting a verified delivery seen twice.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::verifier::{duration_secs, unix_seconds};

/// Remembers verified deliveries for a window and reports one seen again.
///
/// A delivery is identified by its fingerprint,
/// [`VerifiedWebhook::delivery_id`](crate::webhooks::VerifiedWebhook::delivery_id): the
/// SHA-256 of the signed `header.payload` text. It covers `iat` and `request_body_sha256`, and
/// not the signature: ECDSA signatures are malleable (`(r, s)` and `(r, n − s)` both verify),
/// so a fingerprint over the whole JWT would let an attacker replay a captured delivery with
/// the other signature.
///
/// With a window at least the verifier's maximum age plus its clock-skew allowance (the
/// default), a signed delivery is accepted at most once per guard: by the time the guard
/// forgets it, it is stale. The memory is bounded by `capacity` fingerprints (about 100 bytes
/// each); when full, the oldest is forgotten first, which, under a flood of more than
/// `capacity` distinct authentic deliveries per window, reopens that one to replay.
///
/// One guard protects one process. Several instances behind a load balancer share nothing:
/// record `delivery_id` in a shared store (for example Redis `SET NX` with the same expiry)
/// to cover them all. The same applies to Plaid's own retries, which are new deliveries
/// (new `iat`, new signature) of the same body: deduplicate those by the body, for example by
/// [`VerifiedWebhook::body_sha256`](crate::webhooks::VerifiedWebhook::body_sha256), in your
/// store, for as long as Plaid retries (24 hours).
pub struct ReplayGuard {
    window: i64,
    capacity: usize,
    state: Mutex<ReplayState>,
}

#[derive(Default)]
struct ReplayState {
    /// Fingerprint → when it is forgotten (Unix seconds).
    seen: HashMap<[u8; 32], i64>,
    /// The same fingerprints in the order they were recorded.
    order: VecDeque<([u8; 32], i64)>,
}

impl ReplayGuard {
    /// A guard that remembers up to `capacity` deliveries for `window` each.
    #[must_use]
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window: duration_secs(window),
            capacity: capacity.max(1),
            state: Mutex::new(ReplayState::default()),
        }
    }

    /// Records `delivery_id` at `now`; `true` the first time within the window, `false` when
    /// it was already recorded and not yet forgotten.
    pub fn check_and_record(&self, delivery_id: &[u8; 32], now: SystemTime) -> bool {
        let now = unix_seconds(now);
        let mut state = self.lock();
        state.forget_expired(now);
        if let Some(&until) = state.seen.get(delivery_id)
            && now < until
        {
            return false;
        }
        while state.seen.len() >= self.capacity {
            let Some((oldest, until)) = state.order.pop_front() else {
                break;
            };
            state.remove_if(&oldest, until);
        }
        let until = now.saturating_add(self.window);
        state.seen.insert(*delivery_id, until);
        state.order.push_back((*delivery_id, until));
        true
    }

    /// The window each delivery is remembered for.
    #[must_use]
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window.unsigned_abs())
    }

    /// The number of deliveries remembered now (some may be past their window and not yet
    /// forgotten).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether no delivery is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, ReplayState> {
        // Each update is a single insert or remove: a poisoned lock leaves usable state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReplayState {
    fn forget_expired(&mut self, now: i64) {
        while let Some(&(id, until)) = self.order.front() {
            if until > now {
                break;
            }
            self.order.pop_front();
            self.remove_if(&id, until);
        }
        // `order` can hold a fingerprint that was recorded again after it expired; keep it
        // from growing past the map when `now` jumps around.
        if self.order.len() > 2 * self.seen.len() + 16 {
            let seen = &self.seen;
            self.order.retain(|(id, until)| seen.get(id) == Some(until));
        }
    }

    /// Removes `id` if its entry is the one recorded with `until` (not a newer recording).
    fn remove_if(&mut self, id: &[u8; 32], until: i64) {
        if self.seen.get(id) == Some(&until) {
            self.seen.remove(id);
        }
    }
}

impl fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("window_secs", &self.window)
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use std::time::UNIX_EPOCH;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn second_sighting_within_window_is_a_replay() {
        let guard = ReplayGuard::new(Duration::from_secs(360), 10);
        assert!(guard.check_and_record(&[1; 32], at(1000)));
        assert!(!guard.check_and_record(&[1; 32], at(1001)));
        assert!(!guard.check_and_record(&[1; 32], at(1359)));
        assert!(guard.check_and_record(&[2; 32], at(1359)));
        // Forgotten after the window.
        assert!(guard.check_and_record(&[1; 32], at(1360)));
        assert!(!guard.check_and_record(&[1; 32], at(1361)));
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let guard = ReplayGuard::new(Duration::from_secs(360), 3);
        for i in 0..10u8 {
            assert!(guard.check_and_record(&[i; 32], at(1000)));
            assert!(guard.len() <= 3);
        }
        // The newest are remembered, the oldest forgotten.
        assert!(!guard.check_and_record(&[9; 32], at(1000)));
        assert!(guard.check_and_record(&[0; 32], at(1000)));
    }

    #[test]
    fn clock_jumps_do_not_grow_memory() {
        let guard = ReplayGuard::new(Duration::from_secs(10), 1000);
        for i in 0..500u64 {
            let t = if i % 2 == 0 { 1000 + i * 20 } else { 10 };
            guard.check_and_record(&[u8::try_from(i % 7).unwrap(); 32], at(t));
        }
        assert!(guard.len() <= 7);
        assert!(guard.lock().order.len() <= 2 * 7 + 16 + 1);
    }
}
