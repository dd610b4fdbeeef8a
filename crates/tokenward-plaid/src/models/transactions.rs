//! `/transactions/get` and `/transactions/sync`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tokenward_redact::AccessToken;

use super::common::{AccountBase, Item, RemovedTransaction, Transaction};
use super::enums::{PersonalFinanceCategoryVersion, TransactionsUpdateStatus};

/// The body of `/transactions/get` (spec `TransactionsGetRequest`): the legacy, offset-paginated
/// endpoint. Prefer [`TransactionsSyncRequest`].
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TransactionsGetRequest {
    /// The Item's access token.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
    /// The first day, inclusive (`YYYY-MM-DD`).
    pub start_date: NaiveDate,
    /// The last day, inclusive (`YYYY-MM-DD`).
    pub end_date: NaiveDate,
    /// Pagination and filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<TransactionsGetRequestOptions>,
}

impl TransactionsGetRequest {
    /// Transactions of the Item between two dates, inclusive.
    #[must_use]
    pub fn new(access_token: AccessToken, start_date: NaiveDate, end_date: NaiveDate) -> Self {
        TransactionsGetRequest {
            access_token,
            start_date,
            end_date,
            options: None,
        }
    }

    fn options(&mut self) -> &mut TransactionsGetRequestOptions {
        self.options
            .get_or_insert_with(TransactionsGetRequestOptions::default)
    }

    /// Only these accounts.
    #[must_use]
    pub fn with_account_ids(mut self, account_ids: Vec<String>) -> Self {
        self.options().account_ids = Some(account_ids);
        self
    }

    /// A page: `count` transactions (1 to 500) after skipping `offset`.
    #[must_use]
    pub fn with_page(mut self, count: u32, offset: u32) -> Self {
        let options = self.options();
        options.count = Some(count);
        options.offset = Some(offset);
        self
    }

    /// Asks for the raw descriptions.
    #[must_use]
    pub fn with_original_description(mut self, include: bool) -> Self {
        self.options().include_original_description = Some(include);
        self
    }

    /// Days of history to request when the Item has no Transactions yet.
    #[must_use]
    pub fn with_days_requested(mut self, days: u32) -> Self {
        self.options().days_requested = Some(days);
        self
    }
}

/// Options of `/transactions/get` (spec `TransactionsGetRequestOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TransactionsGetRequestOptions {
    /// Only these accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_ids: Option<Vec<String>>,
    /// How many transactions (1 to 500; Plaid's default is 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// How many to skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    /// Include the raw descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_original_description: Option<bool>,
    /// The personal finance category taxonomy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_finance_category_version: Option<PersonalFinanceCategoryVersion>,
    /// Days of history to request when the Item has no Transactions yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_requested: Option<u32>,
}

/// The answer of `/transactions/get` (spec `TransactionsGetResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TransactionsGetResponse {
    /// The accounts of the transactions.
    #[serde(default)]
    pub accounts: Vec<AccountBase>,
    /// The page of transactions, most recent first.
    #[serde(default)]
    pub transactions: Vec<Transaction>,
    /// How many transactions the date range holds in all.
    pub total_transactions: u32,
    /// The Item.
    pub item: Item,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl TransactionsGetResponse {
    /// A response.
    #[must_use]
    pub fn new(
        accounts: Vec<AccountBase>,
        transactions: Vec<Transaction>,
        total_transactions: u32,
        item: Item,
        request_id: impl Into<String>,
    ) -> Self {
        TransactionsGetResponse {
            accounts,
            transactions,
            total_transactions,
            item,
            request_id: request_id.into(),
        }
    }
}

/// The body of `/transactions/sync` (spec `TransactionsSyncRequest`).
///
/// Call with no cursor first, then with each answer's `next_cursor` while `has_more`. On
/// `TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION`, restart from the cursor of the first page.
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TransactionsSyncRequest {
    /// The Item's access token.
    #[serde(serialize_with = "tokenward_redact::wire::serialize")]
    pub access_token: AccessToken,
    /// Where the last sync stopped; `None` for the whole history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// How many updates per page (1 to 500; Plaid's default is 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<TransactionsSyncRequestOptions>,
}

impl TransactionsSyncRequest {
    /// The first page of the whole history.
    #[must_use]
    pub fn new(access_token: AccessToken) -> Self {
        TransactionsSyncRequest {
            access_token,
            cursor: None,
            count: None,
            options: None,
        }
    }

    /// Continues after `cursor`.
    #[must_use]
    pub fn with_cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// Sets the page size.
    #[must_use]
    pub fn with_count(mut self, count: u32) -> Self {
        self.count = Some(count);
        self
    }

    fn options(&mut self) -> &mut TransactionsSyncRequestOptions {
        self.options
            .get_or_insert_with(TransactionsSyncRequestOptions::default)
    }

    /// Asks for the raw descriptions.
    #[must_use]
    pub fn with_original_description(mut self, include: bool) -> Self {
        self.options().include_original_description = Some(include);
        self
    }

    /// Only this account's transactions (and a cursor for it alone).
    #[must_use]
    pub fn with_account_id(mut self, account_id: impl Into<String>) -> Self {
        self.options().account_id = Some(account_id.into());
        self
    }

    /// Days of history to request when the Item has no Transactions yet.
    #[must_use]
    pub fn with_days_requested(mut self, days: u32) -> Self {
        self.options().days_requested = Some(days);
        self
    }
}

/// Options of `/transactions/sync` (spec `TransactionsSyncRequestOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TransactionsSyncRequestOptions {
    /// Include the raw descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_original_description: Option<bool>,
    /// The personal finance category taxonomy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_finance_category_version: Option<PersonalFinanceCategoryVersion>,
    /// Days of history to request when the Item has no Transactions yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_requested: Option<u32>,
    /// Only this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// The answer of `/transactions/sync` (spec `TransactionsSyncResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TransactionsSyncResponse {
    /// How far Plaid's update of the Item has got.
    pub transactions_update_status: TransactionsUpdateStatus,
    /// The accounts of the changes.
    #[serde(default)]
    pub accounts: Vec<AccountBase>,
    /// New transactions.
    #[serde(default)]
    pub added: Vec<Transaction>,
    /// Changed transactions.
    #[serde(default)]
    pub modified: Vec<Transaction>,
    /// Removed transactions.
    #[serde(default)]
    pub removed: Vec<RemovedTransaction>,
    /// The cursor of the next call; store it once the page is processed.
    pub next_cursor: String,
    /// Whether more updates are waiting.
    pub has_more: bool,
    /// Plaid's id of the request.
    pub request_id: String,
}

impl TransactionsSyncResponse {
    /// An empty page.
    #[must_use]
    pub fn new(
        transactions_update_status: TransactionsUpdateStatus,
        next_cursor: impl Into<String>,
        request_id: impl Into<String>,
    ) -> Self {
        TransactionsSyncResponse {
            transactions_update_status,
            accounts: Vec::new(),
            added: Vec::new(),
            modified: Vec::new(),
            removed: Vec::new(),
            next_cursor: next_cursor.into(),
            has_more: false,
            request_id: request_id.into(),
        }
    }
}
