//! Fault injection: latency, 429s, 500s, and "commit, then drop the connection".
//!
//! Faults are set per endpoint path (e.g. `/item/access_token/invalidate`) or for every
//! endpoint, from Rust through [`Faults`] or over HTTP through the admin route
//! `POST /__tokenward/faults` (see the crate docs). For each request the emulator looks up
//! the endpoint's plan, else the plan for all endpoints, and then, in this order:
//!
//! 1. sleeps for `latency` (every request, until the plan is cleared);
//! 2. answers HTTP 429 `RATE_LIMIT_EXCEEDED` / `RATE_LIMIT` while `rate_limit` is above zero,
//!    counting it down;
//! 3. answers HTTP 500 `API_ERROR` / `INTERNAL_SERVER_ERROR` while `server_error` is above
//!    zero, counting it down;
//! 4. while `error_after_commit` is above zero (counting it down), runs the request to the end
//!    (so its change is committed) and then answers HTTP 500 `INTERNAL_SERVER_ERROR` instead
//!    of the result: Plaid applied the call but the client is told it failed;
//! 5. while `drop_after_commit` is above zero (counting it down), runs the request to the end
//!    (so its change is committed) and then closes the connection without sending the
//!    response: the client sees a reset or an early EOF, the ambiguous outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The endpoint paths the emulator serves (the Plaid API, not the admin routes).
pub const ENDPOINTS: [&str; 14] = [
    "/link/token/create",
    "/item/public_token/exchange",
    "/sandbox/public_token/create",
    "/accounts/get",
    "/accounts/balance/get",
    "/transactions/get",
    "/transactions/sync",
    "/item/get",
    "/item/remove",
    "/item/access_token/invalidate",
    "/item/webhook/update",
    "/webhook_verification_key/get",
    "/sandbox/item/fire_webhook",
    "/sandbox/item/reset_login",
];

/// The faults planned for one endpoint (or for all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultPlan {
    /// Added before every request is handled.
    pub latency: Duration,
    /// How many of the next requests get HTTP 429 `RATE_LIMIT_EXCEEDED`.
    pub rate_limit: u32,
    /// How many of the next requests get HTTP 500 `INTERNAL_SERVER_ERROR`.
    pub server_error: u32,
    /// How many of the next requests are carried out and then get HTTP 500 instead of the
    /// result.
    pub error_after_commit: u32,
    /// How many of the next requests are carried out and then get no response at all.
    pub drop_after_commit: u32,
}

impl FaultPlan {
    /// No faults.
    #[must_use]
    pub fn new() -> Self {
        FaultPlan::default()
    }

    /// Adds `latency` before every request.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Answers the next `n` requests with HTTP 429.
    #[must_use]
    pub fn rate_limit(mut self, n: u32) -> Self {
        self.rate_limit = n;
        self
    }

    /// Answers the next `n` requests with HTTP 500.
    #[must_use]
    pub fn server_error(mut self, n: u32) -> Self {
        self.server_error = n;
        self
    }

    /// Carries out the next `n` requests, then answers them with HTTP 500 instead of the
    /// result.
    #[must_use]
    pub fn error_after_commit(mut self, n: u32) -> Self {
        self.error_after_commit = n;
        self
    }

    /// Carries out the next `n` requests, then drops their connections without a response.
    #[must_use]
    pub fn drop_after_commit(mut self, n: u32) -> Self {
        self.drop_after_commit = n;
        self
    }

    fn is_spent(&self) -> bool {
        self.latency.is_zero()
            && self.rate_limit == 0
            && self.server_error == 0
            && self.error_after_commit == 0
            && self.drop_after_commit == 0
    }
}

/// What one request is to suffer, decided when it arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) latency: Duration,
    pub(crate) outcome: Outcome,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Outcome {
    #[default]
    Normal,
    RateLimit,
    ServerError,
    ErrorAfterCommit,
    DropAfterCommit,
}

/// The fault table of one emulator; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultTable>>,
}

#[derive(Debug, Default)]
struct FaultTable {
    all: FaultPlan,
    by_endpoint: HashMap<String, FaultPlan>,
}

/// A path that is not one of [`ENDPOINTS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an endpoint of the emulator")]
#[non_exhaustive]
pub struct UnknownEndpoint;

impl Faults {
    /// Plans `plan` for `endpoint` (a path from [`ENDPOINTS`]), replacing its previous plan.
    pub fn set(&self, endpoint: &str, plan: FaultPlan) -> Result<(), UnknownEndpoint> {
        if !ENDPOINTS.contains(&endpoint) {
            return Err(UnknownEndpoint);
        }
        let mut table = self.lock();
        if plan.is_spent() {
            table.by_endpoint.remove(endpoint);
        } else {
            table.by_endpoint.insert(endpoint.to_owned(), plan);
        }
        Ok(())
    }

    /// Plans `plan` for every endpoint without a plan of its own.
    pub fn set_all(&self, plan: FaultPlan) {
        self.lock().all = plan;
    }

    /// Removes every plan.
    pub fn clear(&self) {
        let mut table = self.lock();
        table.all = FaultPlan::default();
        table.by_endpoint.clear();
    }

    /// The plan in force for `endpoint` (its own, else the one for all endpoints).
    #[must_use]
    pub fn plan(&self, endpoint: &str) -> FaultPlan {
        let table = self.lock();
        table
            .by_endpoint
            .get(endpoint)
            .copied()
            .unwrap_or(table.all)
    }

    /// Decides the fate of one request to `endpoint`, counting down what it uses.
    pub(crate) fn decide(&self, endpoint: &str) -> Decision {
        let mut table = self.lock();
        let table = &mut *table;
        let plan = match table.by_endpoint.get_mut(endpoint) {
            Some(plan) => plan,
            None => &mut table.all,
        };
        let outcome = if plan.rate_limit > 0 {
            plan.rate_limit -= 1;
            Outcome::RateLimit
        } else if plan.server_error > 0 {
            plan.server_error -= 1;
            Outcome::ServerError
        } else if plan.error_after_commit > 0 {
            plan.error_after_commit -= 1;
            Outcome::ErrorAfterCommit
        } else if plan.drop_after_commit > 0 {
            plan.drop_after_commit -= 1;
            Outcome::DropAfterCommit
        } else {
            Outcome::Normal
        };
        Decision {
            latency: plan.latency,
            outcome,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultTable> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies an admin request; returns the table afterwards.
    pub(crate) fn apply_admin(
        &self,
        request: &AdminFaults,
    ) -> Result<AdminFaultsView, &'static str> {
        if request.clear {
            self.clear();
        }
        if request.latency_ms.is_some()
            || request.rate_limit.is_some()
            || request.server_error.is_some()
            || request.error_after_commit.is_some()
            || request.drop_after_commit.is_some()
        {
            let plan = FaultPlan {
                latency: Duration::from_millis(request.latency_ms.unwrap_or(0)),
                rate_limit: request.rate_limit.unwrap_or(0),
                server_error: request.server_error.unwrap_or(0),
                error_after_commit: request.error_after_commit.unwrap_or(0),
                drop_after_commit: request.drop_after_commit.unwrap_or(0),
            };
            match request.endpoint.as_deref() {
                None | Some("*") => self.set_all(plan),
                Some(endpoint) => self.set(endpoint, plan).map_err(|_| "unknown endpoint")?,
            }
        }
        Ok(self.view())
    }

    pub(crate) fn view(&self) -> AdminFaultsView {
        let table = self.lock();
        let mut endpoints: Vec<AdminPlan> = table
            .by_endpoint
            .iter()
            .map(|(endpoint, plan)| AdminPlan::new(endpoint.clone(), *plan))
            .collect();
        endpoints.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        AdminFaultsView {
            all: AdminPlan::new("*".to_owned(), table.all),
            endpoints,
        }
    }
}

/// The body of `POST /__tokenward/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdminFaults {
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    latency_ms: Option<u64>,
    #[serde(default)]
    rate_limit: Option<u32>,
    #[serde(default)]
    server_error: Option<u32>,
    #[serde(default)]
    error_after_commit: Option<u32>,
    #[serde(default)]
    drop_after_commit: Option<u32>,
    #[serde(default)]
    clear: bool,
}

/// The fault table as the admin route shows it.
#[derive(Debug, Serialize)]
pub(crate) struct AdminFaultsView {
    all: AdminPlan,
    endpoints: Vec<AdminPlan>,
}

#[derive(Debug, Serialize)]
struct AdminPlan {
    endpoint: String,
    latency_ms: u128,
    rate_limit: u32,
    server_error: u32,
    error_after_commit: u32,
    drop_after_commit: u32,
}

impl AdminPlan {
    fn new(endpoint: String, plan: FaultPlan) -> Self {
        AdminPlan {
            endpoint,
            latency_ms: plan.latency.as_millis(),
            rate_limit: plan.rate_limit,
            server_error: plan.server_error,
            error_after_commit: plan.error_after_commit,
            drop_after_commit: plan.drop_after_commit,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn counts_down_in_order() {
        let faults = Faults::default();
        faults
            .set(
                "/item/get",
                FaultPlan::new()
                    .rate_limit(1)
                    .server_error(1)
                    .drop_after_commit(1),
            )
            .unwrap();
        assert_eq!(faults.decide("/item/get").outcome, Outcome::RateLimit);
        assert_eq!(faults.decide("/accounts/get").outcome, Outcome::Normal);
        assert_eq!(faults.decide("/item/get").outcome, Outcome::ServerError);
        assert_eq!(faults.decide("/item/get").outcome, Outcome::DropAfterCommit);
        assert_eq!(faults.decide("/item/get").outcome, Outcome::Normal);
        assert!(faults.set("/nope", FaultPlan::new()).is_err());
        faults.set_all(FaultPlan::new().server_error(1));
        assert_eq!(faults.decide("/accounts/get").outcome, Outcome::ServerError);
    }
}
