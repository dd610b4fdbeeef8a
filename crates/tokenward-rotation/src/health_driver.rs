//! The health driver: applies verified webhooks and API errors to an Item's stored health.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokenward_vault::{AuditNote, ItemId, Vault};

use crate::driver::{Clock, DriverError, SystemClock, health_of, vault_now};
use crate::health::{self, HealthCommand, HealthEvent, HealthInput, HealthState, ItemHealth};

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthReport {
    /// The Item.
    pub item_id: ItemId,
    /// The health after.
    pub state: HealthState,
    /// What the app should do (ask for update mode, delete an account's data).
    pub actions: Vec<HealthCommand>,
}

/// Applies health events to the vault's health state (compare-and-swap, audited).
///
/// The vault stores the health *kind* only, so the deadline of `ExpiringSoon` and the time of
/// the last change (`as_of`, the out-of-order guard) do not survive a restart; within one
/// process they are not kept either. Events are therefore applied in arrival order.
pub struct HealthDriver<'a> {
    vault: &'a dyn Vault,
    actor: String,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for HealthDriver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthDriver")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl<'a> HealthDriver<'a> {
    /// A driver writing as `actor` (for the audit journal).
    #[must_use]
    pub fn new(vault: &'a dyn Vault, actor: &str) -> Self {
        HealthDriver {
            vault,
            actor: actor.to_owned(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets the clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Applies `event`, which happened at `at`, to the Item.
    ///
    /// # Errors
    ///
    /// Store failures; a refused transition.
    pub async fn apply(
        &self,
        item_id: &ItemId,
        event: HealthEvent,
        at: DateTime<Utc>,
    ) -> Result<HealthReport, DriverError> {
        let record = self.vault.item(item_id).await?;
        let current = ItemHealth {
            state: health_of(record.health_state),
            as_of: None,
        };
        let now = self.clock.now();
        let transition = health::step(&current, HealthInput::Event { event, at }, now)?;
        let from = record.health_state;
        let to = vault_health(&transition.state.state);
        if let Some(audit) = transition.audit.as_ref().filter(|_| from != to) {
            let note = AuditNote::new(self.actor.clone(), format!("health: {}", audit.event))
                .map_err(|_| DriverError::Inconsistent("audit note refused by the vault"))?;
            self.vault
                .set_health_state(item_id, from, to, &note, vault_now(now))
                .await?;
        }
        Ok(HealthReport {
            item_id: item_id.clone(),
            state: transition.state.state,
            actions: transition
                .commands
                .into_iter()
                .filter(|c| !c.is_write())
                .collect(),
        })
    }

    /// Applies what a failed API call says about the Item's health, if anything.
    ///
    /// # Errors
    ///
    /// As [`HealthDriver::apply`].
    pub async fn apply_api_error(
        &self,
        item_id: &ItemId,
        error: &tokenward_plaid::Error,
    ) -> Result<Option<HealthReport>, DriverError> {
        match HealthEvent::from_api_error(error) {
            Some(event) => Ok(Some(self.apply(item_id, event, self.clock.now()).await?)),
            None => Ok(None),
        }
    }

    /// Applies a *verified* webhook (its `iat` is the event time). Webhooks about other
    /// matters, or about an Item the vault does not hold, change nothing.
    ///
    /// # Errors
    ///
    /// As [`HealthDriver::apply`], except an unknown Item, which is `Ok(None)`.
    #[cfg(feature = "webhooks")]
    pub async fn apply_webhook(
        &self,
        webhook: &tokenward_plaid::webhooks::VerifiedWebhook,
    ) -> Result<Option<HealthReport>, DriverError> {
        let Some((item_id, event)) = HealthEvent::from_webhook(&webhook.event) else {
            return Ok(None);
        };
        let Ok(item_id) = ItemId::new(item_id) else {
            return Ok(None);
        };
        let at = DateTime::from_timestamp(webhook.issued_at, 0).unwrap_or_else(|| self.clock.now());
        match self.apply(&item_id, event, at).await {
            Ok(report) => Ok(Some(report)),
            Err(DriverError::Read(tokenward_vault::ReadError::NotFound(_))) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

fn vault_health(state: &HealthState) -> tokenward_vault::HealthState {
    use tokenward_vault::HealthState as V;
    match state {
        HealthState::Healthy => V::Healthy,
        HealthState::ExpiringSoon { .. } => V::ExpiringSoon,
        HealthState::NeedsReauth { .. } => V::NeedsReauth,
        HealthState::PermissionRevoked { .. } => V::PermissionRevoked,
        HealthState::Removed { .. } => V::Removed,
    }
}
