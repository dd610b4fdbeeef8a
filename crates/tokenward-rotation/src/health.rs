//! The per-Item health machine, driven by verified webhooks and API errors (orthogonal to the
//! credential machine).

use tokenward_plaid::{ErrorCode, PlaidError};

use crate::types::{AuditEvent, Machine, RotationReason, Timestamp, Transition, TransitionError};

/// The health of one Item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HealthState {
    /// The Item works.
    #[default]
    Healthy,
    /// Consent expires or the Item will be disconnected: send the user through Link's update
    /// mode before `deadline`.
    ExpiringSoon {
        /// When the Item stops working, if Plaid said.
        deadline: Option<Timestamp>,
    },
    /// The user must log in again (Link update mode; the token does not change).
    NeedsReauth {
        /// Since when.
        since: Timestamp,
    },
    /// The user revoked the Item's permission.
    PermissionRevoked {
        /// Since when.
        since: Timestamp,
    },
    /// The Item is removed. Terminal: later webhooks are ignored.
    Removed {
        /// Since when.
        since: Timestamp,
    },
}

impl HealthState {
    /// The stable snake-case name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::ExpiringSoon { .. } => "expiring_soon",
            HealthState::NeedsReauth { .. } => "needs_reauth",
            HealthState::PermissionRevoked { .. } => "permission_revoked",
            HealthState::Removed { .. } => "removed",
        }
    }
}

/// The persisted health record: the state and the time of the newest event applied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemHealth {
    /// The state.
    pub state: HealthState,
    /// The event time of the newest input applied; older inputs are ignored (webhooks arrive
    /// out of order).
    pub as_of: Option<Timestamp>,
}

/// What happened to an Item, from a verified webhook or an API error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthEvent {
    /// `ITEM_LOGIN_REQUIRED` (or another error the user fixes in update mode).
    LoginRequired,
    /// `PENDING_EXPIRATION` or `PENDING_DISCONNECT`.
    PendingExpiration {
        /// When, if given.
        deadline: Option<Timestamp>,
    },
    /// `LOGIN_REPAIRED`: fixed without update mode in our app.
    LoginRepaired,
    /// The user finished Link's update mode in our app.
    UpdateModeCompleted,
    /// `USER_PERMISSION_REVOKED`.
    PermissionRevoked,
    /// `USER_ACCOUNT_REVOKED`: one account only; the Item's state does not change.
    AccountRevoked {
        /// The account.
        account_id: String,
    },
    /// `NEW_ACCOUNTS_AVAILABLE`.
    NewAccountsAvailable,
    /// The Item was removed (our `/item/remove`, or the credential machine reached `Removed`).
    ItemRemoved,
}

impl HealthEvent {
    /// The stable snake-case name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            HealthEvent::LoginRequired => "login_required",
            HealthEvent::PendingExpiration { .. } => "pending_expiration",
            HealthEvent::LoginRepaired => "login_repaired",
            HealthEvent::UpdateModeCompleted => "update_mode_completed",
            HealthEvent::PermissionRevoked => "permission_revoked",
            HealthEvent::AccountRevoked { .. } => "account_revoked",
            HealthEvent::NewAccountsAvailable => "new_accounts_available",
            HealthEvent::ItemRemoved => "item_removed",
        }
    }

    /// The health event of a Plaid error object (from an API call or an `ITEM: ERROR`
    /// webhook), if it says something about the Item's health.
    #[must_use]
    pub fn from_plaid_error(error: &PlaidError) -> Option<HealthEvent> {
        if *error.error_code() == ErrorCode::UserPermissionRevoked {
            Some(HealthEvent::PermissionRevoked)
        } else if error.requires_user_action() {
            Some(HealthEvent::LoginRequired)
        } else {
            None
        }
    }

    /// The health event of a failed API call, if any.
    #[must_use]
    pub fn from_api_error(error: &tokenward_plaid::Error) -> Option<HealthEvent> {
        error.plaid_error().and_then(HealthEvent::from_plaid_error)
    }

    /// The health event of a *verified* webhook, with the Item id it is about.
    #[cfg(feature = "webhooks")]
    #[must_use]
    pub fn from_webhook(
        event: &tokenward_plaid::webhooks::WebhookEvent,
    ) -> Option<(String, HealthEvent)> {
        use tokenward_plaid::webhooks::WebhookEvent as W;
        let item_id = event.item()?.item_id.clone();
        let health = match event {
            W::ItemError { error, .. } => HealthEvent::from_plaid_error(error)?,
            W::ItemPendingExpiration {
                consent_expiration_time,
                ..
            } => HealthEvent::PendingExpiration {
                deadline: Some(*consent_expiration_time),
            },
            W::ItemPendingDisconnect {
                disconnect_time, ..
            } => HealthEvent::PendingExpiration {
                deadline: *disconnect_time,
            },
            W::ItemUserPermissionRevoked { .. } => HealthEvent::PermissionRevoked,
            W::ItemUserAccountRevoked { account_id, .. } => HealthEvent::AccountRevoked {
                account_id: account_id.clone(),
            },
            W::ItemLoginRepaired { .. } => HealthEvent::LoginRepaired,
            W::ItemNewAccountsAvailable { .. } => HealthEvent::NewAccountsAvailable,
            _ => return None,
        };
        Some((item_id, health))
    }
}

/// An input of the health machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthInput {
    /// An event, with its own time (the webhook's `iat`, the API call's time).
    Event {
        /// What happened.
        event: HealthEvent,
        /// When it happened.
        at: Timestamp,
    },
    /// Time passed: an `ExpiringSoon` Item whose deadline is past needs reauth.
    Tick,
}

/// A command of the health machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthCommand {
    /// Write: persist the [`ItemHealth`] (and the audit record, if any).
    SaveHealth,
    /// Ask the user to go through Link's update mode (notification, banner).
    RequestUpdateMode,
    /// Delete the data of one account and stop using its tokenized account number.
    DeleteAccountData {
        /// The account.
        account_id: String,
    },
}

impl HealthCommand {
    /// Whether the command writes to the store.
    #[must_use]
    pub const fn is_write(&self) -> bool {
        matches!(self, HealthCommand::SaveHealth)
    }
}

/// Whether a rotation with `reason` may start in this health state: yes while the token is
/// valid (`Healthy`, `ExpiringSoon`, `NeedsReauth`); in `PermissionRevoked` only for an
/// incident; never once removed.
#[must_use]
pub fn rotation_allowed(health: &HealthState, reason: RotationReason) -> bool {
    match health {
        HealthState::Healthy
        | HealthState::ExpiringSoon { .. }
        | HealthState::NeedsReauth { .. } => true,
        HealthState::PermissionRevoked { .. } => reason.is_incident(),
        HealthState::Removed { .. } => false,
    }
}

/// One step of the health machine. Pure; idempotent (a duplicate event changes nothing) and
/// tolerant of reordering (an event older than `as_of` is ignored).
///
/// # Errors
///
/// [`TransitionError::Illegal`] for `UpdateModeCompleted` on a removed Item (an app bug: a
/// webhook after removal is ignored instead).
pub fn step(
    health: &ItemHealth,
    input: HealthInput,
    now: Timestamp,
) -> Result<Transition<ItemHealth, HealthCommand>, TransitionError> {
    use HealthCommand as C;
    use HealthEvent as E;
    use HealthState as S;

    let (event, at) = match input {
        HealthInput::Tick => {
            return Ok(match &health.state {
                S::ExpiringSoon {
                    deadline: Some(deadline),
                } if *deadline <= now => change(
                    health,
                    S::NeedsReauth { since: *deadline },
                    *deadline,
                    vec![C::SaveHealth, C::RequestUpdateMode],
                    "deadline_passed",
                    now,
                ),
                _ => unchanged(health),
            });
        }
        HealthInput::Event { event, at } => (event, at),
    };

    if let E::AccountRevoked { account_id } = &event {
        // Account-level: acted on in every state, idempotent, never stale.
        return Ok(match health.state {
            S::Removed { .. } => unchanged(health),
            _ => Transition {
                state: health.clone(),
                commands: vec![C::DeleteAccountData {
                    account_id: account_id.clone(),
                }],
                audit: None,
            },
        });
    }
    if let S::Removed { .. } = health.state {
        return match event {
            E::UpdateModeCompleted => Err(TransitionError::Illegal {
                machine: Machine::Health,
                state: health.state.name(),
                input: event.name(),
            }),
            _ => Ok(unchanged(health)),
        };
    }
    if health.as_of.is_some_and(|as_of| at < as_of) {
        return Ok(unchanged(health));
    }
    let name = event.name();
    let next = match (&health.state, event) {
        (_, E::ItemRemoved) => Some((S::Removed { since: at }, vec![C::SaveHealth])),
        (S::Healthy | S::ExpiringSoon { .. }, E::LoginRequired) => Some((
            S::NeedsReauth { since: at },
            vec![C::SaveHealth, C::RequestUpdateMode],
        )),
        (S::Healthy, E::PendingExpiration { deadline }) => Some((
            S::ExpiringSoon { deadline },
            vec![C::SaveHealth, C::RequestUpdateMode],
        )),
        (S::ExpiringSoon { deadline: old }, E::PendingExpiration { deadline }) => {
            // Keep the earliest known deadline.
            let deadline = match (*old, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Some((S::ExpiringSoon { deadline }, vec![C::SaveHealth]))
        }
        (S::NeedsReauth { .. }, E::LoginRepaired | E::UpdateModeCompleted)
        | (S::ExpiringSoon { .. } | S::PermissionRevoked { .. }, E::UpdateModeCompleted) => {
            Some((S::Healthy, vec![C::SaveHealth]))
        }
        (S::Healthy | S::ExpiringSoon { .. } | S::NeedsReauth { .. }, E::PermissionRevoked) => {
            Some((S::PermissionRevoked { since: at }, vec![C::SaveHealth]))
        }
        (S::Healthy | S::ExpiringSoon { .. } | S::NeedsReauth { .. }, E::NewAccountsAvailable) => {
            return Ok(Transition {
                state: health.clone(),
                commands: vec![C::RequestUpdateMode],
                audit: None,
            });
        }
        _ => None,
    };
    Ok(match next {
        Some((state, commands)) => change(health, state, at, commands, name, now),
        // Duplicates and events that do not apply in this state: nothing to do.
        None => unchanged(health),
    })
}

fn change(
    from: &ItemHealth,
    to: HealthState,
    at: Timestamp,
    commands: Vec<HealthCommand>,
    event: &'static str,
    now: Timestamp,
) -> Transition<ItemHealth, HealthCommand> {
    let changed = from.state.name() != to.name();
    // Only a change of kind moves `as_of`: a no-op or a refined deadline says nothing about
    // the order of later events.
    let as_of = if changed { Some(at) } else { from.as_of };
    let audit = changed.then(|| {
        let mut audit = AuditEvent::new(Machine::Health, event, from.state.name(), to.name(), now);
        audit.reason = Some(event.to_owned());
        audit
    });
    Transition {
        state: ItemHealth { state: to, as_of },
        commands,
        audit,
    }
}

fn unchanged(health: &ItemHealth) -> Transition<ItemHealth, HealthCommand> {
    Transition {
        state: health.clone(),
        commands: Vec::new(),
        audit: None,
    }
}
