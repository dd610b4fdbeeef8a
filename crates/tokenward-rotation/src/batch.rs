//! Batch rotation: a dry-run plan, a per-client token bucket, and a priority lane for
//! incidents (`reason = compromise`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokenward_vault::{ItemId, ReadError, Vault};

use crate::driver::{DriverError, RotationReport, Rotator};
use crate::health::rotation_allowed;
use crate::health_driver::stored_health;
use crate::types::{Actor, RotationReason};

/// A token bucket: `burst` calls at once, then `per_second` calls a second.
///
/// Pure arithmetic over the instants it is given ([`TokenBucket::try_take`]); the async
/// [`RateLimiter`] reads the clock and sleeps.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    last: Option<tokio::time::Instant>,
}

impl TokenBucket {
    /// A full bucket. `per_second` is clamped to at least one call an hour; `burst` to at
    /// least 1.
    #[must_use]
    pub fn new(per_second: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            burst,
            per_second: if per_second.is_finite() {
                per_second.max(1.0 / 3600.0)
            } else {
                1.0 / 3600.0
            },
            tokens: burst,
            last: None,
        }
    }

    /// Takes one token at `now`, or says how long to wait for the next one.
    ///
    /// # Errors
    ///
    /// The wait, when the bucket is empty.
    pub fn try_take(&mut self, now: tokio::time::Instant) -> Result<(), Duration> {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

/// A shared, async token bucket: one per Plaid client (its limits are per client).
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Mutex<TokenBucket>,
}

impl RateLimiter {
    /// A limiter of `per_second` calls with bursts of `burst`.
    #[must_use]
    pub fn new(per_second: f64, burst: u32) -> Self {
        RateLimiter {
            bucket: Mutex::new(TokenBucket::new(per_second, burst)),
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                // A poisoned lock only means another task panicked mid-update of two floats.
                let mut bucket = self
                    .bucket
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match bucket.try_take(tokio::time::Instant::now()) {
                    Ok(()) => return,
                    Err(wait) => wait,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Which lane a rotation goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// Incidents (`Compromise`, `KekCompromise`): first, before any scheduled work.
    Incident,
    /// Everything else.
    Normal,
}

/// One line of a batch plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanEntry {
    /// The Item.
    pub item_id: ItemId,
    /// Why it is rotated.
    pub reason: RotationReason,
    /// Its lane.
    pub lane: Lane,
    /// The stored token version (0 when the Item was not found).
    pub version: u64,
    /// `None` when the Item will be rotated; otherwise why it is skipped.
    pub skip: Option<String>,
}

/// What a batch did.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchReport {
    /// The plan, in execution order: incident entries submitted to the [`IncidentLane`] while
    /// the batch ran stand where they were taken.
    pub plan: Vec<PlanEntry>,
    /// Per Item rotated (empty for a dry run), in execution order.
    pub results: Vec<(ItemId, Result<RotationReport, DriverError>)>,
    /// Set when the circuit breaker paused the batch.
    pub breaker: Option<BreakerTrip>,
    /// Planned Items not rotated because the breaker paused the batch, in plan order
    /// (incidents still waiting in the lane stay there for the next run).
    pub not_run: Vec<ItemId>,
}

/// When the circuit breaker pauses a batch (`reference/rotation.md` §8.5, "batch job
/// misbehaving"): after `max_consecutive_failures` failures in a row, or once at least
/// `min_samples` Items ran and more than `max_failure_ratio` of them failed. A failure is a
/// rotation that returned an error or did not end `Active` (`Unknown`, `Orphaned`, `Dead`,
/// `Quarantined`, …).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Consecutive failures that pause the batch (0: never on this count).
    pub max_consecutive_failures: u32,
    /// The failure ratio above which the batch pauses (1.0 or more: never on the ratio).
    pub max_failure_ratio: f64,
    /// Items that must have run before the ratio is checked.
    pub min_samples: u32,
}

impl Default for BreakerPolicy {
    /// 5 in a row, or more than half of at least 10.
    fn default() -> Self {
        BreakerPolicy {
            max_consecutive_failures: 5,
            max_failure_ratio: 0.5,
            min_samples: 10,
        }
    }
}

/// Why the breaker paused a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerTrip {
    /// Failures in a row when it tripped.
    pub consecutive_failures: u32,
    /// Failures in the batch so far.
    pub failures: u32,
    /// Items rotated in the batch so far.
    pub attempted: u32,
    /// Which threshold tripped: `"consecutive failures"` or `"failure ratio"`.
    pub threshold: &'static str,
}

/// Settings of a [`BatchRotator`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchConfig {
    /// The most a random pause after each rate-limiter token lasts (uniform in `0..=jitter`),
    /// so workers started together do not call Plaid in lockstep. 100 ms by default.
    pub jitter: Duration,
    /// The circuit breaker.
    pub breaker: BreakerPolicy,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            jitter: Duration::from_millis(100),
            breaker: BreakerPolicy::default(),
        }
    }
}

/// The incident lane of a running batch: rotations submitted here (a leaked token, a KEK
/// incident) are taken before the batch's remaining normal Items. Cloning gives another
/// handle to the same lane.
#[derive(Debug, Clone, Default)]
pub struct IncidentLane {
    queue: Arc<Mutex<VecDeque<(ItemId, RotationReason)>>>,
}

impl IncidentLane {
    /// An empty lane.
    #[must_use]
    pub fn new() -> Self {
        IncidentLane::default()
    }

    /// Queues an Item; it goes in the incident lane whatever its reason.
    pub fn submit(&self, item_id: ItemId, reason: RotationReason) {
        self.lock().push_back((item_id, reason));
    }

    /// Items waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no Item waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn take(&self) -> Option<(ItemId, RotationReason)> {
        self.lock().pop_front()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(ItemId, RotationReason)>> {
        // A poisoned lock only means another task panicked while pushing or popping.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Called after each Item of a batch is rotated (progress bars, tests).
pub type BatchCallback = Arc<dyn Fn(&ItemId, &Result<RotationReport, DriverError>) + Send + Sync>;

/// Rotates many Items through one [`Rotator`], rate-limited and jittered, incidents first,
/// behind a circuit breaker.
pub struct BatchRotator<'r, 'a> {
    rotator: &'r Rotator<'a>,
    limiter: &'r RateLimiter,
    vault: &'a dyn Vault,
    config: BatchConfig,
    lane: IncidentLane,
    on_item: Option<BatchCallback>,
}

impl std::fmt::Debug for BatchRotator<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchRotator")
            .field("rotator", self.rotator)
            .field("limiter", self.limiter)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'r, 'a> BatchRotator<'r, 'a> {
    /// A batch over `rotator`, sharing `limiter` (one per Plaid client) and reading `vault`,
    /// with the default [`BatchConfig`] and its own incident lane.
    #[must_use]
    pub fn new(rotator: &'r Rotator<'a>, vault: &'a dyn Vault, limiter: &'r RateLimiter) -> Self {
        BatchRotator {
            rotator,
            limiter,
            vault,
            config: BatchConfig::default(),
            lane: IncidentLane::new(),
            on_item: None,
        }
    }

    /// Sets the jitter and the circuit breaker.
    #[must_use]
    pub fn with_config(mut self, config: BatchConfig) -> Self {
        self.config = config;
        self
    }

    /// Takes incidents from `lane` (shared with whoever submits them).
    #[must_use]
    pub fn with_incident_lane(mut self, lane: IncidentLane) -> Self {
        self.lane = lane;
        self
    }

    /// Calls `callback` after each Item is rotated.
    #[must_use]
    pub fn with_callback(mut self, callback: BatchCallback) -> Self {
        self.on_item = Some(callback);
        self
    }

    /// A handle to this batch's incident lane: submit to it while [`run`](Self::run) runs.
    #[must_use]
    pub fn incident_lane(&self) -> IncidentLane {
        self.lane.clone()
    }

    /// The plan (the dry run): which Items would be rotated, in which order, and why others
    /// are skipped (not `Active`, health, not found). Reads only.
    ///
    /// # Errors
    ///
    /// A store failure other than a missing Item.
    pub async fn plan(
        &self,
        requests: &[(ItemId, RotationReason)],
    ) -> Result<Vec<PlanEntry>, DriverError> {
        let mut plan = Vec::with_capacity(requests.len());
        for (item_id, reason) in requests {
            let lane = if reason.is_incident() {
                Lane::Incident
            } else {
                Lane::Normal
            };
            plan.push(self.plan_one(item_id, *reason, lane).await?);
        }
        // Incidents first; within a lane, the order given. (A stable sort.)
        plan.sort_by_key(|entry| entry.lane);
        Ok(plan)
    }

    async fn plan_one(
        &self,
        item_id: &ItemId,
        reason: RotationReason,
        lane: Lane,
    ) -> Result<PlanEntry, DriverError> {
        let entry = |version, skip| PlanEntry {
            item_id: item_id.clone(),
            reason,
            lane,
            version,
            skip,
        };
        match self.vault.item(item_id).await {
            Ok(record) => {
                let health = stored_health(&record).state;
                let skip = if record.credential_state != tokenward_vault::CredentialState::Active {
                    Some(format!("credential state {}", record.credential_state))
                } else if !rotation_allowed(&health, reason) {
                    Some(format!("health {}", health.name()))
                } else {
                    None
                };
                Ok(entry(record.token_version, skip))
            }
            Err(ReadError::NotFound(_)) => Ok(entry(0, Some("not found".into()))),
            Err(err) => Err(err.into()),
        }
    }

    /// Plans, then (unless `dry_run`) rotates every planned Item in order, one token of the
    /// rate limiter and a jittered pause per Item. Before each Item, incidents submitted to
    /// the [`IncidentLane`] meanwhile are taken first. The circuit breaker stops the batch
    /// ([`BatchReport::breaker`], [`BatchReport::not_run`]).
    ///
    /// # Errors
    ///
    /// Only if planning fails; per-Item failures are in the report.
    pub async fn run(
        &self,
        requests: &[(ItemId, RotationReason)],
        actor: &Actor,
        dry_run: bool,
    ) -> Result<BatchReport, DriverError> {
        let planned = self.plan(requests).await?;
        if dry_run {
            return Ok(BatchReport {
                plan: planned,
                results: Vec::new(),
                breaker: None,
                not_run: Vec::new(),
            });
        }
        let mut queue: VecDeque<PlanEntry> = planned.into();
        let mut plan = Vec::with_capacity(queue.len());
        let mut results = Vec::new();
        let mut breaker = Breaker::new(self.config.breaker);
        let mut trip = None;
        loop {
            // Incidents submitted while the batch runs pre-empt the remaining normal Items.
            let entry = match self.lane.take() {
                Some((item_id, reason)) => self.plan_one(&item_id, reason, Lane::Incident).await?,
                None => match queue.pop_front() {
                    Some(entry) => entry,
                    None => break,
                },
            };
            if entry.skip.is_some() {
                plan.push(entry);
                continue;
            }
            self.limiter.acquire().await;
            let pause = jitter(self.config.jitter, random_u64());
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let result = self
                .rotator
                .rotate(&entry.item_id, entry.reason, actor)
                .await;
            if let Some(callback) = &self.on_item {
                callback(&entry.item_id, &result);
            }
            let failed = !matches!(
                &result,
                Ok(report) if matches!(report.state, crate::token::CredentialState::Active { .. })
            );
            results.push((entry.item_id.clone(), result));
            plan.push(entry);
            if let Some(tripped) = breaker.record(failed) {
                trip = Some(tripped);
                break;
            }
        }
        let not_run: Vec<ItemId> = queue
            .iter()
            .filter(|e| e.skip.is_none())
            .map(|e| e.item_id.clone())
            .collect();
        plan.extend(queue);
        Ok(BatchReport {
            plan,
            results,
            breaker: trip,
            not_run,
        })
    }
}

/// The circuit breaker's counts.
#[derive(Debug)]
struct Breaker {
    policy: BreakerPolicy,
    consecutive: u32,
    failures: u32,
    attempted: u32,
}

impl Breaker {
    fn new(policy: BreakerPolicy) -> Self {
        Breaker {
            policy,
            consecutive: 0,
            failures: 0,
            attempted: 0,
        }
    }

    /// Counts one rotation; the trip, when this one trips the breaker.
    fn record(&mut self, failed: bool) -> Option<BreakerTrip> {
        self.attempted = self.attempted.saturating_add(1);
        if failed {
            self.failures = self.failures.saturating_add(1);
            self.consecutive = self.consecutive.saturating_add(1);
        } else {
            self.consecutive = 0;
        }
        let trip = |threshold| BreakerTrip {
            consecutive_failures: self.consecutive,
            failures: self.failures,
            attempted: self.attempted,
            threshold,
        };
        let max = self.policy.max_consecutive_failures;
        if max > 0 && self.consecutive >= max {
            return Some(trip("consecutive failures"));
        }
        let ratio = f64::from(self.failures) / f64::from(self.attempted);
        if self.attempted >= self.policy.min_samples.max(1) && ratio > self.policy.max_failure_ratio
        {
            return Some(trip("failure ratio"));
        }
        None
    }
}

/// A pause uniform in `0..=max` from a random word.
fn jitter(max: Duration, random: u64) -> Duration {
    let max_nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if max_nanos == 0 {
        return Duration::ZERO;
    }
    // Modulo bias is at most max/2^64: irrelevant for a pause.
    Duration::from_nanos(random % max_nanos.saturating_add(1))
}

fn random_u64() -> u64 {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 8];
    // Jitter needs spread, not secrecy: should the OS RNG fail, no pause is as good as any.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        return 0;
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_trips_on_consecutive_failures_and_on_the_ratio() {
        let mut breaker = Breaker::new(BreakerPolicy {
            max_consecutive_failures: 3,
            max_failure_ratio: 1.0,
            min_samples: 1,
        });
        assert_eq!(breaker.record(true), None);
        assert_eq!(breaker.record(true), None);
        assert_eq!(breaker.record(false), None, "a success resets the run");
        assert_eq!(breaker.record(true), None);
        assert_eq!(breaker.record(true), None);
        let trip = breaker.record(true);
        assert_eq!(
            trip,
            Some(BreakerTrip {
                consecutive_failures: 3,
                failures: 5,
                attempted: 6,
                threshold: "consecutive failures",
            })
        );

        let mut breaker = Breaker::new(BreakerPolicy {
            max_consecutive_failures: 0,
            max_failure_ratio: 0.5,
            min_samples: 4,
        });
        // Half failing is not more than half; the ratio waits for 4 samples.
        for (n, failed) in [true, true, false].into_iter().enumerate() {
            assert_eq!(breaker.record(failed), None, "{n}");
        }
        assert_eq!(breaker.record(false), None, "2 of 4");
        let trip = breaker
            .record(true)
            .map(|t| (t.threshold, t.failures, t.attempted));
        assert_eq!(trip, Some(("failure ratio", 3, 5)));
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        let max = Duration::from_millis(100);
        assert_eq!(jitter(Duration::ZERO, u64::MAX), Duration::ZERO);
        assert_eq!(jitter(max, 0), Duration::ZERO);
        assert_eq!(jitter(max, 100_000_000), max);
        assert_eq!(jitter(max, 100_000_001), Duration::ZERO);
        for random in [1, 12_345, u64::MAX, u64::MAX / 3, random_u64()] {
            assert!(jitter(max, random) <= max);
        }
        // Different words give different pauses: the pacing is spread.
        let pauses: std::collections::BTreeSet<_> =
            (0..8u64).map(|n| jitter(max, n * 7_777_777)).collect();
        assert_eq!(pauses.len(), 8);
    }
}
