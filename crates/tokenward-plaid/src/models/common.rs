//! Schemas shared by several endpoints: Items, accounts, balances, transactions.
//!
//! Field names and optionality follow Plaid's official API spec (2020-09-14). A field the spec
//! marks required is a plain value; one it marks nullable is an `Option` that serializes as
//! `null`; one it marks optional is an `Option` that is left out when `None`. Every `Option`
//! and `Vec` also accepts absence, and unknown fields are ignored, so a response from a newer
//! Plaid still decodes.
//!
//! Money is an `f64`, as Plaid sends it (a JSON number with up to two decimals for most
//! currencies). Convert to a decimal type before doing arithmetic that must be exact.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::enums::{
    AccountHolderCategory, AccountSubtype, AccountType, ConsentedDataScope, CounterpartyType,
    ItemAuthMethod, ItemUpdateType, PaymentChannel, PersonalFinanceCategoryVersion, Product,
    TransactionCode, TransactionType, VerificationStatus,
};
use crate::error::PlaidError;

/// An Item: one user's login at one institution (spec `Item`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Item {
    /// Plaid's id of the Item. Not secret; webhooks name the Item by it.
    pub item_id: String,
    /// The institution's Plaid id, `None` for Items created without an institution.
    #[serde(default)]
    pub institution_id: Option<String>,
    /// The institution's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institution_name: Option<String>,
    /// The URL that receives the Item's webhooks.
    #[serde(default)]
    pub webhook: Option<String>,
    /// How Auth data was populated, for Items with Auth numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<ItemAuthMethod>,
    /// The Item's error, e.g. `ITEM_LOGIN_REQUIRED`; only `/item/get` returns a non-null one.
    #[serde(default)]
    pub error: Option<PlaidError>,
    /// Products available for the Item and not yet used.
    #[serde(default)]
    pub available_products: Vec<Product>,
    /// Products billed for the Item.
    #[serde(default)]
    pub billed_products: Vec<Product>,
    /// Products added to the Item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<Product>>,
    /// Products the user consented to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_products: Option<Vec<Product>>,
    /// When the Item's consent expires (some European institutions), or `None`.
    #[serde(default)]
    pub consent_expiration_time: Option<DateTime<Utc>>,
    /// Whether the Item needs the user present to update.
    pub update_type: ItemUpdateType,
}

impl Item {
    /// An Item with the required fields; the others are empty.
    #[must_use]
    pub fn new(item_id: impl Into<String>, update_type: ItemUpdateType) -> Self {
        Item {
            item_id: item_id.into(),
            institution_id: None,
            institution_name: None,
            webhook: None,
            auth_method: None,
            error: None,
            available_products: Vec::new(),
            billed_products: Vec::new(),
            products: None,
            consented_products: None,
            consent_expiration_time: None,
            update_type,
        }
    }
}

/// An [`Item`] with the consent fields `/item/get` adds (spec `ItemWithConsentFields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemWithConsentFields {
    /// The Item's fields.
    #[serde(flatten)]
    pub item: Item,
    /// When the Item was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Use cases the user consented to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_use_cases: Option<Vec<String>>,
    /// Data scopes the user consented to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_data_scopes: Option<Vec<ConsentedDataScope>>,
}

impl ItemWithConsentFields {
    /// The Item without consent fields.
    #[must_use]
    pub fn new(item: Item) -> Self {
        ItemWithConsentFields {
            item,
            created_at: None,
            consented_use_cases: None,
            consented_data_scopes: None,
        }
    }
}

/// The update status of an Item's products (spec `ItemStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemStatus {
    /// Last investments updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub investments: Option<ItemStatusUpdates>,
    /// Last transactions updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<ItemStatusUpdates>,
    /// The last webhook sent for the Item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_webhook: Option<ItemStatusLastWebhook>,
}

/// The last successful and failed update of one product (spec `ItemStatusTransactions`,
/// `ItemStatusInvestments`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemStatusUpdates {
    /// The last successful update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_update: Option<DateTime<Utc>>,
    /// The last failed update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed_update: Option<DateTime<Utc>>,
}

/// The last webhook sent for an Item (spec `ItemStatusLastWebhook`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemStatusLastWebhook {
    /// When it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Its webhook code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_sent: Option<String>,
}

/// An account at an institution (spec `AccountBase`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountBase {
    /// Plaid's id of the account.
    pub account_id: String,
    /// Its balances.
    pub balances: AccountBalance,
    /// The last 2 to 4 characters of the account number, as the institution shows them.
    #[serde(default)]
    pub mask: Option<String>,
    /// The account's name, from the user or the institution.
    pub name: String,
    /// The institution's official name of the account.
    #[serde(default)]
    pub official_name: Option<String>,
    /// The account type.
    #[serde(rename = "type")]
    pub account_type: AccountType,
    /// The account subtype.
    #[serde(default)]
    pub subtype: Option<AccountSubtype>,
    /// Micro-deposit or database verification status (Auth Items only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<VerificationStatus>,
    /// The holder name used for verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_name: Option<String>,
    /// An id that stays the same across Items for the same account (some institutions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_account_id: Option<String>,
    /// Personal or business (beta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_category: Option<AccountHolderCategory>,
}

impl AccountBase {
    /// An account with the required fields; the nullable ones are `None`.
    #[must_use]
    pub fn new(
        account_id: impl Into<String>,
        name: impl Into<String>,
        account_type: AccountType,
        subtype: Option<AccountSubtype>,
        balances: AccountBalance,
    ) -> Self {
        AccountBase {
            account_id: account_id.into(),
            balances,
            mask: None,
            name: name.into(),
            official_name: None,
            account_type,
            subtype,
            verification_status: None,
            verification_name: None,
            persistent_account_id: None,
            holder_category: None,
        }
    }
}

/// The balances of an account (spec `AccountBalance`). Amounts are `f64` as Plaid sends them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountBalance {
    /// Funds available to withdraw (or credit available, for credit accounts).
    #[serde(default)]
    pub available: Option<f64>,
    /// The total funds in, or owed by, the account.
    #[serde(default)]
    pub current: Option<f64>,
    /// The credit limit, or the overdraft limit of a depository account.
    #[serde(default)]
    pub limit: Option<f64>,
    /// ISO-4217 currency code; `None` when `unofficial_currency_code` is set.
    #[serde(default)]
    pub iso_currency_code: Option<String>,
    /// A currency code outside ISO-4217 (e.g. a cryptocurrency).
    #[serde(default)]
    pub unofficial_currency_code: Option<String>,
    /// When the balance was last updated (some institutions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_datetime: Option<DateTime<Utc>>,
}

impl AccountBalance {
    /// A balance in an ISO currency.
    #[must_use]
    pub fn new(current: Option<f64>, available: Option<f64>, iso_currency_code: &str) -> Self {
        AccountBalance {
            available,
            current,
            iso_currency_code: Some(iso_currency_code.to_owned()),
            ..AccountBalance::default()
        }
    }
}

/// A transaction (spec `Transaction`): the fields teams use, by the spec's names.
///
/// `amount` is positive when money leaves the account (a purchase) and negative when it comes
/// in (a refund, a deposit), as Plaid defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Transaction {
    /// Plaid's id of the transaction.
    pub transaction_id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// The amount, positive for money out (`f64` as Plaid sends it).
    pub amount: f64,
    /// ISO-4217 currency code; `None` when `unofficial_currency_code` is set.
    #[serde(default)]
    pub iso_currency_code: Option<String>,
    /// A currency code outside ISO-4217.
    #[serde(default)]
    pub unofficial_currency_code: Option<String>,
    /// The posted date, or for pending transactions the date it occurred.
    pub date: NaiveDate,
    /// When it was posted, if the institution says.
    #[serde(default)]
    pub datetime: Option<DateTime<Utc>>,
    /// The date it was authorized.
    #[serde(default)]
    pub authorized_date: Option<NaiveDate>,
    /// When it was authorized, if the institution says.
    #[serde(default)]
    pub authorized_datetime: Option<DateTime<Utc>>,
    /// Whether it is pending.
    pub pending: bool,
    /// For a posted transaction, the id of the pending one it replaces.
    #[serde(default)]
    pub pending_transaction_id: Option<String>,
    /// The merchant or transaction name (deprecated in favour of `merchant_name`, but sent).
    #[serde(default)]
    pub name: String,
    /// The merchant name, enriched by Plaid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    /// A stable Plaid id of the merchant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_entity_id: Option<String>,
    /// The raw description from the institution, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_description: Option<String>,
    /// Where it happened.
    #[serde(default)]
    pub location: Location,
    /// Payment details (ACH and similar).
    #[serde(default)]
    pub payment_meta: PaymentMeta,
    /// How it was made.
    pub payment_channel: PaymentChannel,
    /// The account owner, for accounts with several.
    #[serde(default)]
    pub account_owner: Option<String>,
    /// The institution's transaction code (mostly outside the US).
    #[serde(default)]
    pub transaction_code: Option<TransactionCode>,
    /// The deprecated transaction type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<TransactionType>,
    /// The check number, for checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_number: Option<String>,
    /// The legacy category hierarchy (deprecated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Vec<String>>,
    /// The legacy category id (deprecated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<String>,
    /// The personal finance category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_finance_category: Option<PersonalFinanceCategory>,
    /// The icon of the personal finance category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_finance_category_icon_url: Option<String>,
    /// The merchant's logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// The merchant's website.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// The counterparties Plaid extracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparties: Option<Vec<Counterparty>>,
}

impl Transaction {
    /// A posted transaction with the required fields; the others are empty.
    #[must_use]
    pub fn new(
        transaction_id: impl Into<String>,
        account_id: impl Into<String>,
        amount: f64,
        date: NaiveDate,
        name: impl Into<String>,
    ) -> Self {
        Transaction {
            transaction_id: transaction_id.into(),
            account_id: account_id.into(),
            amount,
            iso_currency_code: None,
            unofficial_currency_code: None,
            date,
            datetime: None,
            authorized_date: None,
            authorized_datetime: None,
            pending: false,
            pending_transaction_id: None,
            name: name.into(),
            merchant_name: None,
            merchant_entity_id: None,
            original_description: None,
            location: Location::default(),
            payment_meta: PaymentMeta::default(),
            payment_channel: PaymentChannel::Other,
            account_owner: None,
            transaction_code: None,
            transaction_type: None,
            check_number: None,
            category: None,
            category_id: None,
            personal_finance_category: None,
            personal_finance_category_icon_url: None,
            logo_url: None,
            website: None,
            counterparties: None,
        }
    }
}

/// Where a transaction happened (spec `Location`); every field is nullable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Location {
    /// Street address.
    #[serde(default)]
    pub address: Option<String>,
    /// City.
    #[serde(default)]
    pub city: Option<String>,
    /// Region or state.
    #[serde(default)]
    pub region: Option<String>,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// ISO-3166-1 alpha-2 country code.
    #[serde(default)]
    pub country: Option<String>,
    /// Latitude.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude.
    #[serde(default)]
    pub lon: Option<f64>,
    /// The merchant's store number.
    #[serde(default)]
    pub store_number: Option<String>,
}

/// Payment details of a transaction (spec `PaymentMeta`); every field is nullable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PaymentMeta {
    /// The transaction reference number.
    #[serde(default)]
    pub reference_number: Option<String>,
    /// The ACH PPD id of the payer.
    #[serde(default)]
    pub ppd_id: Option<String>,
    /// The payee.
    #[serde(default)]
    pub payee: Option<String>,
    /// The party that ordered the payment.
    #[serde(default)]
    pub by_order_of: Option<String>,
    /// The payer.
    #[serde(default)]
    pub payer: Option<String>,
    /// The payment method, e.g. `ACH`.
    #[serde(default)]
    pub payment_method: Option<String>,
    /// The payment processor.
    #[serde(default)]
    pub payment_processor: Option<String>,
    /// The payer's stated reason.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A personal finance category (spec `PersonalFinanceCategory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PersonalFinanceCategory {
    /// The primary category, e.g. `FOOD_AND_DRINK`.
    pub primary: String,
    /// The detailed category, e.g. `FOOD_AND_DRINK_COFFEE`.
    pub detailed: String,
    /// Plaid's confidence, e.g. `VERY_HIGH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_level: Option<String>,
    /// The taxonomy version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<PersonalFinanceCategoryVersion>,
}

impl PersonalFinanceCategory {
    /// A category with its primary and detailed names.
    #[must_use]
    pub fn new(primary: impl Into<String>, detailed: impl Into<String>) -> Self {
        PersonalFinanceCategory {
            primary: primary.into(),
            detailed: detailed.into(),
            confidence_level: None,
            version: None,
        }
    }
}

/// A counterparty of a transaction (spec `TransactionCounterparty`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Counterparty {
    /// Its name.
    pub name: String,
    /// Plaid's entity id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// What kind of counterparty it is.
    #[serde(rename = "type")]
    pub counterparty_type: CounterpartyType,
    /// Its website.
    #[serde(default)]
    pub website: Option<String>,
    /// Its logo.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Plaid's confidence, e.g. `HIGH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_level: Option<String>,
}

impl Counterparty {
    /// A counterparty with its name and type.
    #[must_use]
    pub fn new(name: impl Into<String>, counterparty_type: CounterpartyType) -> Self {
        Counterparty {
            name: name.into(),
            entity_id: None,
            counterparty_type,
            website: None,
            logo_url: None,
            confidence_level: None,
        }
    }
}

/// A transaction removed since the last sync (spec `RemovedTransaction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RemovedTransaction {
    /// The removed transaction's id.
    pub transaction_id: String,
    /// Its account's id.
    #[serde(default)]
    pub account_id: String,
}

impl RemovedTransaction {
    /// A removed transaction.
    #[must_use]
    pub fn new(transaction_id: impl Into<String>, account_id: impl Into<String>) -> Self {
        RemovedTransaction {
            transaction_id: transaction_id.into(),
            account_id: account_id.into(),
        }
    }
}
