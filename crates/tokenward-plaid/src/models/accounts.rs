//! `/accounts/get` and `/accounts/balance/get`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokenward_redact::AccessToken;

use super::common::{AccountBase, Item};

/// The body of `/accounts/get` (spec `AccountsGetRequest`): cached account data, free.
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountsGetRequest {
    /// The Item's access token.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
    /// Filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<AccountsGetRequestOptions>,
}

impl AccountsGetRequest {
    /// All accounts of the Item of `access_token`.
    #[must_use]
    pub fn new(access_token: AccessToken) -> Self {
        AccountsGetRequest {
            access_token,
            options: None,
        }
    }

    /// Only these accounts.
    #[must_use]
    pub fn with_account_ids(mut self, account_ids: Vec<String>) -> Self {
        self.options = Some(AccountsGetRequestOptions {
            account_ids: Some(account_ids),
        });
        self
    }
}

/// Options of `/accounts/get` (spec `AccountsGetRequestOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountsGetRequestOptions {
    /// Only these accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_ids: Option<Vec<String>>,
}

/// The answer of `/accounts/get` and `/accounts/balance/get` (spec `AccountsGetResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountsGetResponse {
    /// The accounts.
    #[serde(default)]
    pub accounts: Vec<AccountBase>,
    /// The Item.
    pub item: Item,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl AccountsGetResponse {
    /// A response.
    #[must_use]
    pub fn new(accounts: Vec<AccountBase>, item: Item, request_id: impl Into<String>) -> Self {
        AccountsGetResponse {
            accounts,
            item,
            request_id: request_id.into(),
        }
    }
}

/// The answer of `/accounts/balance/get`: the spec reuses [`AccountsGetResponse`], with real-time
/// balances.
pub type AccountsBalanceGetResponse = AccountsGetResponse;

/// The body of `/accounts/balance/get` (spec `AccountsBalanceGetRequest`): real-time balances,
/// billed, and slow (Plaid says up to 30 seconds or more).
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountsBalanceGetRequest {
    /// The Item's access token.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
    /// Options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<AccountsBalanceGetRequestOptions>,
}

impl AccountsBalanceGetRequest {
    /// Balances of all accounts of the Item of `access_token`.
    #[must_use]
    pub fn new(access_token: AccessToken) -> Self {
        AccountsBalanceGetRequest {
            access_token,
            options: None,
        }
    }

    /// Only these accounts.
    #[must_use]
    pub fn with_account_ids(mut self, account_ids: Vec<String>) -> Self {
        self.options
            .get_or_insert_with(AccountsBalanceGetRequestOptions::default)
            .account_ids = Some(account_ids);
        self
    }

    /// The oldest balance acceptable (needed by some institutions for non-depository accounts).
    #[must_use]
    pub fn with_min_last_updated_datetime(mut self, at: DateTime<Utc>) -> Self {
        self.options
            .get_or_insert_with(AccountsBalanceGetRequestOptions::default)
            .min_last_updated_datetime = Some(at);
        self
    }
}

/// Options of `/accounts/balance/get` (spec `AccountsBalanceGetRequestOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountsBalanceGetRequestOptions {
    /// Only these accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_ids: Option<Vec<String>>,
    /// The oldest balance acceptable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_last_updated_datetime: Option<DateTime<Utc>>,
}
