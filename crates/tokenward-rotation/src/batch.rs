//! Batch rotation: a dry-run plan, a per-client token bucket, and a priority lane for
//! incidents (`reason = compromise`).

use std::sync::Mutex;
use std::time::Duration;

use tokenward_vault::{ItemId, ReadError, Vault};

use crate::driver::{DriverError, RotationReport, Rotator, health_of};
use crate::health::rotation_allowed;
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
    /// The plan, in execution order.
    pub plan: Vec<PlanEntry>,
    /// Per Item rotated (empty for a dry run), in execution order.
    pub results: Vec<(ItemId, Result<RotationReport, DriverError>)>,
}

/// Rotates many Items through one [`Rotator`], rate-limited, incidents first.
pub struct BatchRotator<'r, 'a> {
    rotator: &'r Rotator<'a>,
    limiter: &'r RateLimiter,
    vault: &'a dyn Vault,
}

impl std::fmt::Debug for BatchRotator<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchRotator")
            .field("rotator", self.rotator)
            .field("limiter", self.limiter)
            .finish_non_exhaustive()
    }
}

impl<'r, 'a> BatchRotator<'r, 'a> {
    /// A batch over `rotator`, sharing `limiter` (one per Plaid client) and reading `vault`.
    #[must_use]
    pub fn new(rotator: &'r Rotator<'a>, vault: &'a dyn Vault, limiter: &'r RateLimiter) -> Self {
        BatchRotator {
            rotator,
            limiter,
            vault,
        }
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
            let entry = |version, skip| PlanEntry {
                item_id: item_id.clone(),
                reason: *reason,
                lane,
                version,
                skip,
            };
            match self.vault.item(item_id).await {
                Ok(record) => {
                    let health = health_of(record.health_state);
                    let skip =
                        if record.credential_state != tokenward_vault::CredentialState::Active {
                            Some(format!("credential state {}", record.credential_state))
                        } else if !rotation_allowed(&health, *reason) {
                            Some(format!("health {}", health.name()))
                        } else {
                            None
                        };
                    plan.push(entry(record.token_version, skip));
                }
                Err(ReadError::NotFound(_)) => plan.push(entry(0, Some("not found".into()))),
                Err(err) => return Err(err.into()),
            }
        }
        // Incidents first; within a lane, the order given. (A stable sort.)
        plan.sort_by_key(|entry| entry.lane);
        Ok(plan)
    }

    /// Plans, then (unless `dry_run`) rotates every planned Item in order, one token of the
    /// rate limiter per Item.
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
        let plan = self.plan(requests).await?;
        let mut results = Vec::new();
        if !dry_run {
            for entry in plan.iter().filter(|e| e.skip.is_none()) {
                self.limiter.acquire().await;
                let result = self
                    .rotator
                    .rotate(&entry.item_id, entry.reason, actor)
                    .await;
                results.push((entry.item_id.clone(), result));
            }
        }
        Ok(BatchReport { plan, results })
    }
}
