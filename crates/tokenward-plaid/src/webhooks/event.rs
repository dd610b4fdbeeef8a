//! Typed webhook events: the Item and Transactions webhooks the token lifecycle reacts to
//! (schemas from Plaid's `OpenAPI` spec, 2020-09-14), everything else kept as raw JSON.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::BodyError;
use crate::PlaidError;

/// A Plaid webhook body, parsed by `webhook_type` and `webhook_code`.
///
/// Known webhooks are typed; any other type or code is [`WebhookEvent::Unknown`], which is not
/// an error (Plaid adds webhooks over time). Unknown members of known webhooks are ignored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WebhookEvent {
    /// `ITEM` / `ERROR` (`ItemErrorWebhook`): the Item hit an error the user resolves
    /// through Link's update mode, typically `ITEM_LOGIN_REQUIRED`.
    #[non_exhaustive]
    ItemError {
        /// The Item.
        item: ItemRef,
        /// Plaid's error object (`error_type`, `error_code`, `error_message`, …).
        error: PlaidError,
    },
    /// `ITEM` / `PENDING_EXPIRATION` (`PendingExpirationWebhook`): the user's consent
    /// expires soon (Europe and UK: in 7 days).
    #[non_exhaustive]
    ItemPendingExpiration {
        /// The Item.
        item: ItemRef,
        /// When consent expires.
        consent_expiration_time: DateTime<Utc>,
    },
    /// `ITEM` / `PENDING_DISCONNECT` (`PendingDisconnectWebhook`): the Item will be
    /// disconnected (US and Canada: in 7 days).
    #[non_exhaustive]
    ItemPendingDisconnect {
        /// The Item.
        item: ItemRef,
        /// Why.
        reason: PendingDisconnectReason,
        /// When the Item will be disconnected, if given.
        disconnect_time: Option<DateTime<Utc>>,
    },
    /// `ITEM` / `USER_PERMISSION_REVOKED` (`UserPermissionRevokedWebhook`): the user
    /// revoked the permission they granted.
    #[non_exhaustive]
    ItemUserPermissionRevoked {
        /// The Item.
        item: ItemRef,
        /// Plaid's error object, if given.
        error: Option<PlaidError>,
    },
    /// `ITEM` / `USER_ACCOUNT_REVOKED` (`UserAccountRevokedWebhook`): the user revoked
    /// access to one account.
    #[non_exhaustive]
    ItemUserAccountRevoked {
        /// The Item.
        item: ItemRef,
        /// The revoked account.
        account_id: String,
    },
    /// `ITEM` / `LOGIN_REPAIRED` (`ItemLoginRepairedWebhook`): the Item left
    /// `ITEM_LOGIN_REQUIRED` without the user going through update mode in your app.
    #[non_exhaustive]
    ItemLoginRepaired {
        /// The Item.
        item: ItemRef,
    },
    /// `ITEM` / `NEW_ACCOUNTS_AVAILABLE` (`NewAccountsAvailableWebhook`): Plaid found new
    /// accounts on the Item.
    #[non_exhaustive]
    ItemNewAccountsAvailable {
        /// The Item.
        item: ItemRef,
        /// Plaid's error object, if given.
        error: Option<PlaidError>,
    },
    /// `ITEM` / `WEBHOOK_UPDATE_ACKNOWLEDGED` (`WebhookUpdateAcknowledgedWebhook`): the
    /// Item's webhook URL changed; sent to the new URL.
    #[non_exhaustive]
    ItemWebhookUpdateAcknowledged {
        /// The Item.
        item: ItemRef,
        /// The new webhook URL.
        new_webhook_url: String,
        /// Plaid's error object, if given.
        error: Option<PlaidError>,
    },
    /// `TRANSACTIONS` / `SYNC_UPDATES_AVAILABLE` (`SyncUpdatesAvailableWebhook`): new
    /// changes for `/transactions/sync`.
    #[non_exhaustive]
    TransactionsSyncUpdatesAvailable {
        /// The Item.
        item: ItemRef,
        /// Whether the initial (30-day) update is complete.
        initial_update_complete: bool,
        /// Whether the historical update is complete.
        historical_update_complete: bool,
    },
    /// `TRANSACTIONS` / `INITIAL_UPDATE` (`InitialUpdateWebhook`, for `/transactions/get`):
    /// the initial pull is complete.
    #[non_exhaustive]
    TransactionsInitialUpdate {
        /// The Item.
        item: ItemRef,
        /// The number of new transactions.
        new_transactions: u64,
        /// Plaid's error object, if given (the spec types this one as a string; one that is
        /// not an error object is dropped).
        error: Option<PlaidError>,
    },
    /// `TRANSACTIONS` / `HISTORICAL_UPDATE` (`HistoricalUpdateWebhook`, for
    /// `/transactions/get`): the historical pull is complete.
    #[non_exhaustive]
    TransactionsHistoricalUpdate {
        /// The Item.
        item: ItemRef,
        /// The number of new transactions.
        new_transactions: u64,
        /// Plaid's error object, if given.
        error: Option<PlaidError>,
    },
    /// `TRANSACTIONS` / `DEFAULT_UPDATE` (`DefaultUpdateWebhook`, for `/transactions/get`):
    /// new transactions are available.
    #[non_exhaustive]
    TransactionsDefaultUpdate {
        /// The Item.
        item: ItemRef,
        /// The number of new transactions.
        new_transactions: u64,
        /// Plaid's error object, if given.
        error: Option<PlaidError>,
    },
    /// `TRANSACTIONS` / `TRANSACTIONS_REMOVED` (`TransactionsRemovedWebhook`, for
    /// `/transactions/get`): transactions were deleted.
    #[non_exhaustive]
    TransactionsRemoved {
        /// The Item.
        item: ItemRef,
        /// The ids of the removed transactions.
        removed_transactions: Vec<String>,
        /// Plaid's error object, if given.
        error: Option<PlaidError>,
    },
    /// Any other webhook: kept whole.
    #[non_exhaustive]
    Unknown {
        /// The `webhook_type`.
        webhook_type: String,
        /// The `webhook_code`.
        webhook_code: String,
        /// The whole body. Its `Debug` is scrubbed: unknown webhooks can carry credentials
        /// (Link's `SESSION_FINISHED` carries public tokens).
        raw: RawWebhook,
    },
}

/// The body of a webhook we do not type, as JSON.
///
/// Read it through [`as_value`](Self::as_value), `Deref`, or [`into_value`](Self::into_value).
/// `Debug` prints the body scrubbed by [`Policy::plaid`](tokenward_redact::Policy::plaid), so
/// logging an unknown event never shows a token that a future webhook type might carry:
///
/// ```
/// use tokenward_plaid::webhooks::{WebhookEvent, parse_webhook_body};
///
/// let body = br#"{"webhook_type":"LINK","webhook_code":"SESSION_FINISHED","item_id":"i",
///     "public_tokens":["public-sandbox-5c224a01-8314-4491-a06f-39e193d5cddc"]}"#;
/// let event = parse_webhook_body(body)?;
/// let WebhookEvent::Unknown { raw, .. } = &event else { unreachable!() };
/// assert_eq!(raw["public_tokens"][0], "public-sandbox-5c224a01-8314-4491-a06f-39e193d5cddc");
/// assert!(!format!("{event:?}").contains("public-sandbox-"));
/// # Ok::<(), tokenward_plaid::webhooks::BodyError>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct RawWebhook(serde_json::Value);

impl RawWebhook {
    /// The body as a JSON value.
    #[must_use]
    pub fn as_value(&self) -> &serde_json::Value {
        &self.0
    }

    /// The body as a JSON value, owned.
    #[must_use]
    pub fn into_value(self) -> serde_json::Value {
        self.0
    }
}

impl std::ops::Deref for RawWebhook {
    type Target = serde_json::Value;

    fn deref(&self) -> &serde_json::Value {
        &self.0
    }
}

impl PartialEq<serde_json::Value> for RawWebhook {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for RawWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = tokenward_redact::Policy::plaid();
        match tokenward_redact::to_json_vec(&self.0, &policy) {
            Ok(json) => f.write_str(&String::from_utf8_lossy(&json)),
            Err(_) => f.write_str("RawWebhook(..)"),
        }
    }
}

/// The Item a webhook is about: the members every Item and Transactions webhook carries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ItemRef {
    /// The Item's id. Webhooks never carry the access token: look it up by this id.
    pub item_id: String,
    /// The environment the webhook was sent from.
    pub environment: WebhookEnvironment,
    /// The Plaid `user_id` of the Item's user, if given.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// The Plaid environment a webhook was sent from (`environment`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WebhookEnvironment {
    /// `sandbox`.
    Sandbox,
    /// `production`.
    Production,
    /// Any other value.
    Other(String),
}

impl WebhookEnvironment {
    /// The wire value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Production => "production",
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for WebhookEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookEnvironment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(match &*value {
            "sandbox" => Self::Sandbox,
            "production" => Self::Production,
            _ => Self::Other(value.into_owned()),
        })
    }
}

/// Why an Item will be disconnected (`PendingDisconnectWebhookReason`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PendingDisconnectReason {
    /// `INSTITUTION_MIGRATION`: the institution moves to another integration.
    InstitutionMigration,
    /// `INSTITUTION_TOKEN_EXPIRATION`: consent with a US or Canadian institution expires.
    InstitutionTokenExpiration,
    /// Any other value.
    Other(String),
}

impl PendingDisconnectReason {
    /// The wire value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::InstitutionMigration => "INSTITUTION_MIGRATION",
            Self::InstitutionTokenExpiration => "INSTITUTION_TOKEN_EXPIRATION",
            Self::Other(other) => other,
        }
    }
}

impl<'de> Deserialize<'de> for PendingDisconnectReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(match &*value {
            "INSTITUTION_MIGRATION" => Self::InstitutionMigration,
            "INSTITUTION_TOKEN_EXPIRATION" => Self::InstitutionTokenExpiration,
            _ => Self::Other(value.into_owned()),
        })
    }
}

impl WebhookEvent {
    /// The `webhook_type` (`ITEM`, `TRANSACTIONS`, …).
    #[must_use]
    pub fn webhook_type(&self) -> &str {
        match self {
            Self::ItemError { .. }
            | Self::ItemPendingExpiration { .. }
            | Self::ItemPendingDisconnect { .. }
            | Self::ItemUserPermissionRevoked { .. }
            | Self::ItemUserAccountRevoked { .. }
            | Self::ItemLoginRepaired { .. }
            | Self::ItemNewAccountsAvailable { .. }
            | Self::ItemWebhookUpdateAcknowledged { .. } => "ITEM",
            Self::TransactionsSyncUpdatesAvailable { .. }
            | Self::TransactionsInitialUpdate { .. }
            | Self::TransactionsHistoricalUpdate { .. }
            | Self::TransactionsDefaultUpdate { .. }
            | Self::TransactionsRemoved { .. } => "TRANSACTIONS",
            Self::Unknown { webhook_type, .. } => webhook_type,
        }
    }

    /// The `webhook_code` (`ERROR`, `SYNC_UPDATES_AVAILABLE`, …).
    #[must_use]
    pub fn webhook_code(&self) -> &str {
        match self {
            Self::ItemError { .. } => "ERROR",
            Self::ItemPendingExpiration { .. } => "PENDING_EXPIRATION",
            Self::ItemPendingDisconnect { .. } => "PENDING_DISCONNECT",
            Self::ItemUserPermissionRevoked { .. } => "USER_PERMISSION_REVOKED",
            Self::ItemUserAccountRevoked { .. } => "USER_ACCOUNT_REVOKED",
            Self::ItemLoginRepaired { .. } => "LOGIN_REPAIRED",
            Self::ItemNewAccountsAvailable { .. } => "NEW_ACCOUNTS_AVAILABLE",
            Self::ItemWebhookUpdateAcknowledged { .. } => "WEBHOOK_UPDATE_ACKNOWLEDGED",
            Self::TransactionsSyncUpdatesAvailable { .. } => "SYNC_UPDATES_AVAILABLE",
            Self::TransactionsInitialUpdate { .. } => "INITIAL_UPDATE",
            Self::TransactionsHistoricalUpdate { .. } => "HISTORICAL_UPDATE",
            Self::TransactionsDefaultUpdate { .. } => "DEFAULT_UPDATE",
            Self::TransactionsRemoved { .. } => "TRANSACTIONS_REMOVED",
            Self::Unknown { webhook_code, .. } => webhook_code,
        }
    }

    /// The Item of a known webhook; `None` for [`WebhookEvent::Unknown`] (read `raw`).
    #[must_use]
    pub fn item(&self) -> Option<&ItemRef> {
        match self {
            Self::ItemError { item, .. }
            | Self::ItemPendingExpiration { item, .. }
            | Self::ItemPendingDisconnect { item, .. }
            | Self::ItemUserPermissionRevoked { item, .. }
            | Self::ItemUserAccountRevoked { item, .. }
            | Self::ItemLoginRepaired { item }
            | Self::ItemNewAccountsAvailable { item, .. }
            | Self::ItemWebhookUpdateAcknowledged { item, .. }
            | Self::TransactionsSyncUpdatesAvailable { item, .. }
            | Self::TransactionsInitialUpdate { item, .. }
            | Self::TransactionsHistoricalUpdate { item, .. }
            | Self::TransactionsDefaultUpdate { item, .. }
            | Self::TransactionsRemoved { item, .. } => Some(item),
            Self::Unknown { .. } => None,
        }
    }
}

/// Parses a webhook body into a [`WebhookEvent`] **without verifying anything**.
///
/// # Security
///
/// This trusts the bytes. Production code must use
/// [`WebhookVerifier::verify`](crate::webhooks::WebhookVerifier::verify), which calls this
/// only after the signature, freshness and body hash check out. This function exists for
/// tests, fuzzing and tools that inspect stored, already-verified bodies.
///
/// # Errors
///
/// [`BodyError::Json`] for bytes that are not JSON, [`BodyError::NotAWebhook`] for JSON
/// without string `webhook_type` and `webhook_code`, [`BodyError::Schema`] for a known
/// webhook that lacks a required member. An unknown type or code is not an error.
pub fn parse_webhook_body(body: &[u8]) -> Result<WebhookEvent, BodyError> {
    let head: Head<'_> = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => BodyError::NotAWebhook,
        _ => BodyError::Json {
            line: e.line(),
            column: e.column(),
        },
    })?;
    let event = match &*head.webhook_type {
        "ITEM" => item_event(&head.webhook_code, body)?,
        "TRANSACTIONS" => transactions_event(&head.webhook_code, body)?,
        _ => None,
    };
    match event {
        Some(event) => Ok(event),
        None => Ok(WebhookEvent::Unknown {
            webhook_type: head.webhook_type.into_owned(),
            webhook_code: head.webhook_code.into_owned(),
            // The body parsed once already, so this cannot fail on syntax.
            raw: RawWebhook(serde_json::from_slice(body).map_err(|_| BodyError::NotAWebhook)?),
        }),
    }
}

/// An `ITEM` webhook by code; `None` for a code we do not type.
fn item_event(code: &str, body: &[u8]) -> Result<Option<WebhookEvent>, BodyError> {
    let event = match code {
        "ERROR" => {
            let b: ErrorBody = schema(body, "ITEM", "ERROR")?;
            WebhookEvent::ItemError {
                item: item(body, "ITEM", "ERROR")?,
                error: b.error,
            }
        }
        "PENDING_EXPIRATION" => {
            let b: PendingExpirationBody = schema(body, "ITEM", "PENDING_EXPIRATION")?;
            WebhookEvent::ItemPendingExpiration {
                item: item(body, "ITEM", "PENDING_EXPIRATION")?,
                consent_expiration_time: b.consent_expiration_time,
            }
        }
        "PENDING_DISCONNECT" => {
            let b: PendingDisconnectBody = schema(body, "ITEM", "PENDING_DISCONNECT")?;
            WebhookEvent::ItemPendingDisconnect {
                item: item(body, "ITEM", "PENDING_DISCONNECT")?,
                reason: b.reason,
                disconnect_time: b.disconnect_time,
            }
        }
        "USER_PERMISSION_REVOKED" => {
            let b: OptionalErrorBody = schema(body, "ITEM", "USER_PERMISSION_REVOKED")?;
            WebhookEvent::ItemUserPermissionRevoked {
                item: item(body, "ITEM", "USER_PERMISSION_REVOKED")?,
                error: b.error,
            }
        }
        "USER_ACCOUNT_REVOKED" => {
            let b: AccountRevokedBody = schema(body, "ITEM", "USER_ACCOUNT_REVOKED")?;
            WebhookEvent::ItemUserAccountRevoked {
                item: item(body, "ITEM", "USER_ACCOUNT_REVOKED")?,
                account_id: b.account_id,
            }
        }
        "LOGIN_REPAIRED" => WebhookEvent::ItemLoginRepaired {
            item: item(body, "ITEM", "LOGIN_REPAIRED")?,
        },
        "NEW_ACCOUNTS_AVAILABLE" => {
            let b: OptionalErrorBody = schema(body, "ITEM", "NEW_ACCOUNTS_AVAILABLE")?;
            WebhookEvent::ItemNewAccountsAvailable {
                item: item(body, "ITEM", "NEW_ACCOUNTS_AVAILABLE")?,
                error: b.error,
            }
        }
        "WEBHOOK_UPDATE_ACKNOWLEDGED" => {
            let b: WebhookUpdateBody = schema(body, "ITEM", "WEBHOOK_UPDATE_ACKNOWLEDGED")?;
            WebhookEvent::ItemWebhookUpdateAcknowledged {
                item: item(body, "ITEM", "WEBHOOK_UPDATE_ACKNOWLEDGED")?,
                new_webhook_url: b.new_webhook_url,
                error: b.error,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

/// A `TRANSACTIONS` webhook by code; `None` for a code we do not type.
fn transactions_event(code: &str, body: &[u8]) -> Result<Option<WebhookEvent>, BodyError> {
    let event = match code {
        "SYNC_UPDATES_AVAILABLE" => {
            let b: SyncBody = schema(body, "TRANSACTIONS", "SYNC_UPDATES_AVAILABLE")?;
            WebhookEvent::TransactionsSyncUpdatesAvailable {
                item: item(body, "TRANSACTIONS", "SYNC_UPDATES_AVAILABLE")?,
                initial_update_complete: b.initial_update_complete,
                historical_update_complete: b.historical_update_complete,
            }
        }
        "INITIAL_UPDATE" => {
            let b: CountBody = schema(body, "TRANSACTIONS", "INITIAL_UPDATE")?;
            WebhookEvent::TransactionsInitialUpdate {
                item: item(body, "TRANSACTIONS", "INITIAL_UPDATE")?,
                new_transactions: b.new_transactions,
                error: b.error,
            }
        }
        "HISTORICAL_UPDATE" => {
            let b: CountBody = schema(body, "TRANSACTIONS", "HISTORICAL_UPDATE")?;
            WebhookEvent::TransactionsHistoricalUpdate {
                item: item(body, "TRANSACTIONS", "HISTORICAL_UPDATE")?,
                new_transactions: b.new_transactions,
                error: b.error,
            }
        }
        "DEFAULT_UPDATE" => {
            let b: CountBody = schema(body, "TRANSACTIONS", "DEFAULT_UPDATE")?;
            WebhookEvent::TransactionsDefaultUpdate {
                item: item(body, "TRANSACTIONS", "DEFAULT_UPDATE")?,
                new_transactions: b.new_transactions,
                error: b.error,
            }
        }
        "TRANSACTIONS_REMOVED" => {
            let b: RemovedBody = schema(body, "TRANSACTIONS", "TRANSACTIONS_REMOVED")?;
            WebhookEvent::TransactionsRemoved {
                item: item(body, "TRANSACTIONS", "TRANSACTIONS_REMOVED")?,
                removed_transactions: b.removed_transactions,
                error: b.error,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    webhook_type: Cow<'a, str>,
    #[serde(borrow)]
    webhook_code: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: PlaidError,
}

#[derive(Deserialize)]
struct OptionalErrorBody {
    #[serde(default, deserialize_with = "optional_error")]
    error: Option<PlaidError>,
}

#[derive(Deserialize)]
struct PendingExpirationBody {
    consent_expiration_time: DateTime<Utc>,
}

#[derive(Deserialize)]
struct PendingDisconnectBody {
    reason: PendingDisconnectReason,
    #[serde(default)]
    disconnect_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct AccountRevokedBody {
    account_id: String,
}

#[derive(Deserialize)]
struct WebhookUpdateBody {
    new_webhook_url: String,
    #[serde(default, deserialize_with = "optional_error")]
    error: Option<PlaidError>,
}

#[derive(Deserialize)]
struct SyncBody {
    initial_update_complete: bool,
    historical_update_complete: bool,
}

#[derive(Deserialize)]
struct CountBody {
    new_transactions: u64,
    #[serde(default, deserialize_with = "optional_error")]
    error: Option<PlaidError>,
}

#[derive(Deserialize)]
struct RemovedBody {
    removed_transactions: Vec<String>,
    #[serde(default, deserialize_with = "optional_error")]
    error: Option<PlaidError>,
}

fn item(
    body: &[u8],
    webhook_type: &'static str,
    webhook_code: &'static str,
) -> Result<ItemRef, BodyError> {
    schema(body, webhook_type, webhook_code)
}

/// An optional `error` member: `null`, absent, or anything that is not a Plaid error object
/// (`INITIAL_UPDATE` is specified with a string) is `None`; an object is read as a
/// [`PlaidError`] (free text scrubbed), and one that does not read as such is `None` too.
fn optional_error<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<PlaidError>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(value @ serde_json::Value::Object(_)) => serde_json::from_value(value).ok(),
        _ => None,
    })
}

fn schema<T: DeserializeOwned>(
    body: &[u8],
    webhook_type: &'static str,
    webhook_code: &'static str,
) -> Result<T, BodyError> {
    // serde's messages quote the offending value: keep only the position.
    serde_json::from_slice(body).map_err(|e| BodyError::Schema {
        webhook_type,
        webhook_code,
        line: e.line(),
        column: e.column(),
    })
}
