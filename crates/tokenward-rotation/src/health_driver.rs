//! The health driver: applies verified webhooks and API errors to an Item's stored health.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokenward_vault::{AuditNote, HealthUpdate, HealthWrite, ItemId, ItemRecord, Vault};

use crate::driver::{Clock, DriverError, SystemClock, chrono_of, vault_now};
use crate::health::{self, HealthCommand, HealthEvent, HealthInput, HealthState, ItemHealth};

/// What applying one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthReport {
    /// The Item.
    pub item_id: ItemId,
    /// The health after, with its real times (`since`, the `ExpiringSoon` deadline) as stored.
    pub state: HealthState,
    /// What the app should do (ask for update mode, delete an account's data).
    pub actions: Vec<HealthCommand>,
    /// The event time of the newest health change stored (the out-of-order guard).
    pub as_of: Option<DateTime<Utc>>,
    /// The event was older than the stored health and was ignored (and journalled as such).
    pub stale: bool,
}

/// Applies health events to the vault's health state (compare-and-swap, audited).
///
/// The vault keeps each Item's health with the time of the event that set it (`as_of`) and
/// the `ExpiringSoon` deadline ([`Vault::record_health`]), so events are applied by their own
/// time across restarts and processes: a delivery older than the stored `as_of` changes
/// nothing and is journalled as `health_ignored`; a deadline that passes is applied by
/// [`HealthDriver::tick`].
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

    /// The Item's stored health, with its times.
    ///
    /// # Errors
    ///
    /// Store failures.
    pub async fn health(&self, item_id: &ItemId) -> Result<ItemHealth, DriverError> {
        Ok(stored_health(&self.vault.item(item_id).await?))
    }

    /// Applies `event`, which happened at `at`, to the Item.
    ///
    /// # Errors
    ///
    /// Store failures (a concurrent change of the Item's health is
    /// [`WriteError::StateConflict`](tokenward_vault::WriteError::StateConflict): apply the
    /// event again); a refused transition.
    pub async fn apply(
        &self,
        item_id: &ItemId,
        event: HealthEvent,
        at: DateTime<Utc>,
    ) -> Result<HealthReport, DriverError> {
        let name = event.name();
        self.step(item_id, HealthInput::Event { event, at }, Some((name, at)))
            .await
    }

    /// Applies the passing of time: an `ExpiringSoon` Item whose stored deadline is past
    /// becomes `NeedsReauth` (as of the deadline). Nothing happens otherwise.
    ///
    /// # Errors
    ///
    /// As [`HealthDriver::apply`].
    pub async fn tick(&self, item_id: &ItemId) -> Result<HealthReport, DriverError> {
        self.step(item_id, HealthInput::Tick, None).await
    }

    async fn step(
        &self,
        item_id: &ItemId,
        input: HealthInput,
        event: Option<(&'static str, DateTime<Utc>)>,
    ) -> Result<HealthReport, DriverError> {
        let record = self.vault.item(item_id).await?;
        let current = stored_health(&record);
        let now = self.clock.now();
        // An account-level event is acted on whenever it happened (the machine never treats it
        // as stale): a late revocation still deletes the account's data.
        let account_level = matches!(
            &input,
            HealthInput::Event {
                event: HealthEvent::AccountRevoked { .. },
                ..
            }
        );
        let transition = health::step(&current, input, now)?;
        let from = record.health_state;
        let actions: Vec<HealthCommand> = transition
            .commands
            .iter()
            .filter(|c| !c.is_write())
            .cloned()
            .collect();
        let report = |state: HealthState, as_of, stale| HealthReport {
            item_id: item_id.clone(),
            state,
            actions: if stale { Vec::new() } else { actions.clone() },
            as_of,
            stale,
        };
        let stale_event = event
            .filter(|_| !account_level)
            .filter(|(_, at)| current.as_of.is_some_and(|as_of| *at < as_of));
        if let Some((name, at)) = stale_event {
            // The machine ignored it; the vault journals it (and re-checks the order under
            // its own lock).
            let note = self.note(&format!("health: {name} (older than the stored health)"))?;
            self.vault
                .record_health(
                    HealthUpdate {
                        item_id,
                        from,
                        to: from,
                        as_of: vault_now(at),
                        deadline: record.health_deadline,
                        note: &note,
                    },
                    vault_now(now),
                )
                .await?;
            return Ok(report(current.state, current.as_of, true));
        }
        if transition.state == current || !transition.commands.iter().any(HealthCommand::is_write) {
            return Ok(report(current.state, current.as_of, false));
        }
        let next = &transition.state;
        let as_of = next.as_of.or(event.map(|(_, at)| at)).unwrap_or(now);
        let reason = match (&transition.audit, event) {
            (Some(audit), _) => format!("health: {}", audit.event),
            (None, Some((name, _))) => format!("health: {name}"),
            (None, None) => "health: tick".to_owned(),
        };
        let note = self.note(&reason)?;
        let written = self
            .vault
            .record_health(
                HealthUpdate {
                    item_id,
                    from,
                    to: vault_health(&next.state),
                    as_of: vault_now(as_of),
                    deadline: match next.state {
                        HealthState::ExpiringSoon { deadline } => deadline.map(vault_now),
                        _ => None,
                    },
                    note: &note,
                },
                vault_now(now),
            )
            .await?;
        Ok(match written {
            HealthWrite::Applied(record) => {
                let stored = stored_health(&record);
                report(stored.state, stored.as_of, false)
            }
            HealthWrite::Stale(record) => {
                // A newer change landed between our read and our write.
                let stored = stored_health(&record);
                report(stored.state, stored.as_of, true)
            }
            _ => return Err(DriverError::Inconsistent("unknown health write outcome")),
        })
    }

    fn note(&self, reason: &str) -> Result<AuditNote, DriverError> {
        AuditNote::new(self.actor.clone(), reason)
            .map_err(|_| DriverError::Inconsistent("audit note refused by the vault"))
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

/// The health the vault stores for an Item, with its times: `since` is the time of the event
/// that set the state (`as_of`), the epoch when the store does not know it.
pub(crate) fn stored_health(record: &ItemRecord) -> ItemHealth {
    use tokenward_vault::HealthState as V;
    let as_of = record.health_as_of.map(chrono_of);
    let since = as_of.unwrap_or(DateTime::UNIX_EPOCH);
    let state = match record.health_state {
        V::Healthy => HealthState::Healthy,
        V::ExpiringSoon => HealthState::ExpiringSoon {
            deadline: record.health_deadline.map(chrono_of),
        },
        V::NeedsReauth => HealthState::NeedsReauth { since },
        V::PermissionRevoked => HealthState::PermissionRevoked { since },
        _ => HealthState::Removed { since },
    };
    ItemHealth { state, as_of }
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
