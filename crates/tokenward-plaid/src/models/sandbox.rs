//! The Sandbox helpers: `/sandbox/public_token/create`, `/sandbox/item/fire_webhook` and
//! `/sandbox/item/reset_login`. Plaid serves them in the Sandbox environment only.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tokenward_redact::{AccessToken, PublicToken};
use zeroize::Zeroizing;

use super::enums::{Product, SandboxWebhookCode, WebhookType};

/// The body of `/sandbox/public_token/create` (spec `SandboxPublicTokenCreateRequest`): an Item
/// without Link.
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxPublicTokenCreateRequest {
    /// The institution, e.g. `ins_109508` (First Platypus Bank).
    pub institution_id: String,
    /// The products to pull at once; not empty.
    pub initial_products: Vec<Product>,
    /// Options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<SandboxPublicTokenCreateOptions>,
}

impl SandboxPublicTokenCreateRequest {
    /// An Item at `institution_id` with `initial_products`.
    #[must_use]
    pub fn new(institution_id: impl Into<String>, initial_products: Vec<Product>) -> Self {
        SandboxPublicTokenCreateRequest {
            institution_id: institution_id.into(),
            initial_products,
            options: None,
        }
    }

    fn options(&mut self) -> &mut SandboxPublicTokenCreateOptions {
        self.options
            .get_or_insert_with(SandboxPublicTokenCreateOptions::default)
    }

    /// Sets the Item's webhook URL.
    #[must_use]
    pub fn with_webhook(mut self, webhook: impl Into<String>) -> Self {
        self.options().webhook = Some(webhook.into());
        self
    }

    /// Uses Sandbox test credentials other than `user_good` / `pass_good`.
    #[must_use]
    pub fn with_credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        let options = self.options();
        options.override_username = Some(username.into());
        options.override_password = Some(password.into());
        self
    }

    /// Sets the range of transactions history.
    #[must_use]
    pub fn with_transactions_range(mut self, start_date: NaiveDate, end_date: NaiveDate) -> Self {
        self.options().transactions = Some(SandboxTransactionsOptions {
            start_date: Some(start_date),
            end_date: Some(end_date),
        });
        self
    }
}

/// Options of `/sandbox/public_token/create` (spec `SandboxPublicTokenCreateRequestOptions`).
///
/// `Debug` does not show `override_password`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxPublicTokenCreateOptions {
    /// The Item's webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// The Sandbox test username (default `user_good`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_username: Option<String>,
    /// The Sandbox test password (default `pass_good`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_password: Option<String>,
    /// Transactions history options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<SandboxTransactionsOptions>,
}

impl fmt::Debug for SandboxPublicTokenCreateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = if self.override_password.is_some() {
            "<set>"
        } else {
            "<none>"
        };
        f.debug_struct("SandboxPublicTokenCreateOptions")
            .field("webhook", &self.webhook)
            .field("override_username", &self.override_username)
            .field("override_password", &format_args!("{password}"))
            .field("transactions", &self.transactions)
            .finish_non_exhaustive()
    }
}

/// Transactions options of a Sandbox Item (spec
/// `SandboxPublicTokenCreateRequestOptionsTransactions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxTransactionsOptions {
    /// The earliest date of history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    /// The latest date of history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
}

/// The answer of `/sandbox/public_token/create` (spec `SandboxPublicTokenCreateResponse`).
///
/// `Debug` and `Serialize` show the token as its placeholder; the emulator writes the real
/// value with [`to_wire_json`](Self::to_wire_json).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxPublicTokenCreateResponse {
    /// The public token, to exchange with `/item/public_token/exchange`.
    pub public_token: PublicToken,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl SandboxPublicTokenCreateResponse {
    /// A response.
    #[must_use]
    pub fn new(public_token: PublicToken, request_id: impl Into<String>) -> Self {
        SandboxPublicTokenCreateResponse {
            public_token,
            request_id: request_id.into(),
        }
    }

    /// The response as Plaid sends it, with the raw public token.
    ///
    /// # Errors
    ///
    /// Only if serialization fails, which it does not for this type.
    ///
    /// # Security
    ///
    /// The bytes hold the token in clear: for an HTTP response body (the emulator) only. The
    /// buffer is wiped when dropped.
    pub fn to_wire_json(&self) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(serialize_with = "tokenward_redact::wire::serialize")]
            public_token: &'a PublicToken,
            request_id: &'a str,
        }
        super::wire_json(&Wire {
            public_token: &self.public_token,
            request_id: &self.request_id,
        })
    }
}

/// The body of `/sandbox/item/fire_webhook` (spec `SandboxItemFireWebhookRequest`).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxItemFireWebhookRequest {
    /// The Item's access token.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
    /// The webhook type; Plaid infers it from the code when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_type: Option<WebhookType>,
    /// The webhook code to fire.
    pub webhook_code: SandboxWebhookCode,
}

impl SandboxItemFireWebhookRequest {
    /// Fires `webhook_code` for the Item of `access_token`.
    #[must_use]
    pub fn new(access_token: AccessToken, webhook_code: SandboxWebhookCode) -> Self {
        SandboxItemFireWebhookRequest {
            access_token,
            webhook_type: None,
            webhook_code,
        }
    }

    /// Sets the webhook type.
    #[must_use]
    pub fn with_webhook_type(mut self, webhook_type: WebhookType) -> Self {
        self.webhook_type = Some(webhook_type);
        self
    }
}

/// The answer of `/sandbox/item/fire_webhook` (spec `SandboxItemFireWebhookResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxItemFireWebhookResponse {
    /// Whether the webhook was fired.
    pub webhook_fired: bool,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl SandboxItemFireWebhookResponse {
    /// A response.
    #[must_use]
    pub fn new(webhook_fired: bool, request_id: impl Into<String>) -> Self {
        SandboxItemFireWebhookResponse {
            webhook_fired,
            request_id: request_id.into(),
        }
    }
}

/// The body of `/sandbox/item/reset_login` (spec `SandboxItemResetLoginRequest`): puts the Item
/// in `ITEM_LOGIN_REQUIRED`.
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxItemResetLoginRequest {
    /// The Item's access token.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
}

impl SandboxItemResetLoginRequest {
    /// Resets the login of the Item of `access_token`.
    #[must_use]
    pub fn new(access_token: AccessToken) -> Self {
        SandboxItemResetLoginRequest { access_token }
    }
}

/// The answer of `/sandbox/item/reset_login` (spec `SandboxItemResetLoginResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SandboxItemResetLoginResponse {
    /// Whether the reset succeeded.
    pub reset_login: bool,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl SandboxItemResetLoginResponse {
    /// A response.
    #[must_use]
    pub fn new(reset_login: bool, request_id: impl Into<String>) -> Self {
        SandboxItemResetLoginResponse {
            reset_login,
            request_id: request_id.into(),
        }
    }
}
