//! `/item/public_token/exchange`, `/item/get`, `/item/remove`, `/item/access_token/invalidate`
//! and `/item/webhook/update`.

use serde::{Deserialize, Serialize};
use tokenward_redact::{AccessToken, PublicToken};
use zeroize::Zeroizing;

use super::common::{Item, ItemStatus, ItemWithConsentFields};
use super::enums::ItemRemoveReasonCode;

/// The body of `/item/public_token/exchange` (spec `ItemPublicTokenExchangeRequest`).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemPublicTokenExchangeRequest {
    /// The public token from Link's `onSuccess` or `/sandbox/public_token/create`.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub public_token: PublicToken,
}

impl ItemPublicTokenExchangeRequest {
    /// Exchanges `public_token`.
    #[must_use]
    pub fn new(public_token: PublicToken) -> Self {
        ItemPublicTokenExchangeRequest { public_token }
    }
}

/// The answer of `/item/public_token/exchange` (spec `ItemPublicTokenExchangeResponse`).
///
/// `Debug` and `Serialize` show the access token as its placeholder; the emulator writes the
/// real value with [`to_wire_json`](Self::to_wire_json).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemPublicTokenExchangeResponse {
    /// The Item's access token: store it encrypted.
    pub access_token: AccessToken,
    /// The Item's id; store it with the token (webhooks name the Item by it).
    pub item_id: String,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl ItemPublicTokenExchangeResponse {
    /// A response.
    #[must_use]
    pub fn new(
        access_token: AccessToken,
        item_id: impl Into<String>,
        request_id: impl Into<String>,
    ) -> Self {
        ItemPublicTokenExchangeResponse {
            access_token,
            item_id: item_id.into(),
            request_id: request_id.into(),
        }
    }

    /// The response as Plaid sends it, with the raw access token.
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
            access_token: &'a AccessToken,
            item_id: &'a str,
            request_id: &'a str,
        }
        super::wire_json(&Wire {
            access_token: &self.access_token,
            item_id: &self.item_id,
            request_id: &self.request_id,
        })
    }
}

/// The body of `/item/get` (spec `ItemGetRequest`).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemGetRequest {
    /// The Item's access token.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
}

impl ItemGetRequest {
    /// Gets the Item of `access_token`.
    #[must_use]
    pub fn new(access_token: AccessToken) -> Self {
        ItemGetRequest { access_token }
    }
}

/// The answer of `/item/get` (spec `ItemGetResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemGetResponse {
    /// The Item, with its consent fields.
    pub item: ItemWithConsentFields,
    /// The Item's update status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl ItemGetResponse {
    /// A response without status.
    #[must_use]
    pub fn new(item: ItemWithConsentFields, request_id: impl Into<String>) -> Self {
        ItemGetResponse {
            item,
            status: None,
            request_id: request_id.into(),
        }
    }
}

/// The body of `/item/remove` (spec `ItemRemoveRequest`).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemRemoveRequest {
    /// The Item's access token; it stops working once the Item is removed.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
    /// Why the Item is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<ItemRemoveReasonCode>,
    /// More context; no personal data (at most 512 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_note: Option<String>,
}

impl ItemRemoveRequest {
    /// Removes the Item of `access_token`.
    #[must_use]
    pub fn new(access_token: AccessToken) -> Self {
        ItemRemoveRequest {
            access_token,
            reason_code: None,
            reason_note: None,
        }
    }

    /// Sets the reason code.
    #[must_use]
    pub fn with_reason_code(mut self, reason_code: ItemRemoveReasonCode) -> Self {
        self.reason_code = Some(reason_code);
        self
    }

    /// Sets the reason note.
    #[must_use]
    pub fn with_reason_note(mut self, note: impl Into<String>) -> Self {
        self.reason_note = Some(note.into());
        self
    }
}

/// The answer of `/item/remove` (spec `ItemRemoveResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemRemoveResponse {
    /// Plaid's id of the request.
    pub request_id: String,
}

impl ItemRemoveResponse {
    /// A response.
    #[must_use]
    pub fn new(request_id: impl Into<String>) -> Self {
        ItemRemoveResponse {
            request_id: request_id.into(),
        }
    }
}

/// The body of `/item/access_token/invalidate` (spec `ItemAccessTokenInvalidateRequest`).
///
/// # Security
///
/// Plaid invalidates the old token at once and there is no idempotency key: a lost answer is a
/// lost token. The HTTP client never retries this call; an answer it did not get is reported
/// as [`Outcome::Ambiguous`](crate::Outcome::Ambiguous).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemAccessTokenInvalidateRequest {
    /// The token to rotate.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
}

impl ItemAccessTokenInvalidateRequest {
    /// Rotates `access_token`.
    #[must_use]
    pub fn new(access_token: AccessToken) -> Self {
        ItemAccessTokenInvalidateRequest { access_token }
    }
}

/// The answer of `/item/access_token/invalidate` (spec `ItemAccessTokenInvalidateResponse`).
///
/// `Debug` and `Serialize` show the token as its placeholder; the emulator writes the real
/// value with [`to_wire_json`](Self::to_wire_json).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemAccessTokenInvalidateResponse {
    /// The Item's new access token; the old one no longer works.
    pub new_access_token: AccessToken,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl ItemAccessTokenInvalidateResponse {
    /// A response.
    #[must_use]
    pub fn new(new_access_token: AccessToken, request_id: impl Into<String>) -> Self {
        ItemAccessTokenInvalidateResponse {
            new_access_token,
            request_id: request_id.into(),
        }
    }

    /// The response as Plaid sends it, with the raw new access token.
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
            new_access_token: &'a AccessToken,
            request_id: &'a str,
        }
        super::wire_json(&Wire {
            new_access_token: &self.new_access_token,
            request_id: &self.request_id,
        })
    }
}

/// The body of `/item/webhook/update` (spec `ItemWebhookUpdateRequest`).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemWebhookUpdateRequest {
    /// The Item's access token.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
    /// The new webhook URL; `None` (sent as `null`) removes the webhook.
    #[serde(default)]
    pub webhook: Option<String>,
}

impl ItemWebhookUpdateRequest {
    /// Sets the Item's webhook to `webhook`, or removes it with `None`.
    #[must_use]
    pub fn new(access_token: AccessToken, webhook: Option<String>) -> Self {
        ItemWebhookUpdateRequest {
            access_token,
            webhook,
        }
    }
}

/// The answer of `/item/webhook/update` (spec `ItemWebhookUpdateResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemWebhookUpdateResponse {
    /// The updated Item.
    pub item: Item,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl ItemWebhookUpdateResponse {
    /// A response.
    #[must_use]
    pub fn new(item: Item, request_id: impl Into<String>) -> Self {
        ItemWebhookUpdateResponse {
            item,
            request_id: request_id.into(),
        }
    }
}
