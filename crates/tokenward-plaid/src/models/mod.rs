//! Typed requests and responses of the Plaid endpoints this crate covers.
//!
//! Field names, types and optionality follow Plaid's official API spec (version `2020-09-14`).
//! Conventions:
//!
//! - **Secrets are secret types.** Access, public and Link tokens are
//!   [`tokenward_redact`]'s [`AccessToken`](tokenward_redact::AccessToken),
//!   [`PublicToken`](tokenward_redact::PublicToken) and
//!   [`LinkToken`](tokenward_redact::LinkToken): not `Clone`, and `Debug`, `Display` and
//!   `Serialize` print a placeholder. `Debug` of any model never shows a token.
//! - **Requests** serialize to the wire body, with raw tokens (through
//!   [`tokenward_redact::wire`]), and deserialize from it (for the emulator). Required fields
//!   go to `new`; optional ones are set with `with_*` methods or through the public fields.
//!   `client_id` and `secret` are never fields: the client sends them as headers.
//! - **Responses** deserialize tolerantly (unknown fields are ignored; `Option`s and `Vec`s may
//!   be absent) and serialize for the emulator. A token in a response serializes as its
//!   placeholder; the four token-bearing responses have `to_wire_json()` for the raw form.
//! - **Enums are open**: `#[non_exhaustive]` with an `Unknown(String)` case that round-trips.
//! - **Types are `#[non_exhaustive]`**: build them with `new` and set optional fields
//!   afterwards, so that new spec fields are not breaking changes. The two webhook-key types
//!   are the exception (see their docs).
//! - Dates are [`chrono::NaiveDate`] (`YYYY-MM-DD`), timestamps `DateTime<Utc>` (RFC 3339),
//!   money `f64` as Plaid sends it.

mod accounts;
mod common;
mod enums;
mod item;
mod link;
pub(crate) mod open_enum;
mod sandbox;
mod transactions;
mod webhook_key;

use serde::Serialize;
use zeroize::Zeroizing;

pub use accounts::{
    AccountsBalanceGetRequest, AccountsBalanceGetRequestOptions, AccountsBalanceGetResponse,
    AccountsGetRequest, AccountsGetRequestOptions, AccountsGetResponse,
};
pub use common::{
    AccountBalance, AccountBase, Counterparty, Item, ItemStatus, ItemStatusLastWebhook,
    ItemStatusUpdates, ItemWithConsentFields, Location, PaymentMeta, PersonalFinanceCategory,
    RemovedTransaction, Transaction,
};
pub use enums::{
    AccountHolderCategory, AccountSubtype, AccountType, ConsentedDataScope, CounterpartyType,
    CountryCode, ItemAuthMethod, ItemRemoveReasonCode, ItemUpdateType, PaymentChannel,
    PersonalFinanceCategoryVersion, Product, SandboxWebhookCode, TransactionCode, TransactionType,
    TransactionsUpdateStatus, VerificationStatus, WebhookType,
};
pub use item::{
    ItemAccessTokenInvalidateRequest, ItemAccessTokenInvalidateResponse, ItemGetRequest,
    ItemGetResponse, ItemPublicTokenExchangeRequest, ItemPublicTokenExchangeResponse,
    ItemRemoveRequest, ItemRemoveResponse, ItemWebhookUpdateRequest, ItemWebhookUpdateResponse,
};
pub use link::{
    LinkTokenCreateRequest, LinkTokenCreateResponse, LinkTokenCreateUpdate, LinkTokenCreateUser,
    LinkTokenTransactions,
};
pub use sandbox::{
    SandboxItemFireWebhookRequest, SandboxItemFireWebhookResponse, SandboxItemResetLoginRequest,
    SandboxItemResetLoginResponse, SandboxPublicTokenCreateOptions,
    SandboxPublicTokenCreateRequest, SandboxPublicTokenCreateResponse, SandboxTransactionsOptions,
};
pub use transactions::{
    TransactionsGetRequest, TransactionsGetRequestOptions, TransactionsGetResponse,
    TransactionsSyncRequest, TransactionsSyncRequestOptions, TransactionsSyncResponse,
};
pub use webhook_key::{WebhookVerificationKeyGetRequest, WebhookVerificationKeyGetResponse};

/// Room for a token-bearing body, so that the buffer does not grow: growing would free a copy
/// of the token without wiping it.
pub(crate) const WIRE_BUFFER_CAPACITY: usize = 1024;

/// Serializes `value` into a buffer that is wiped on drop.
pub(crate) fn wire_json<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
    let mut buf = Zeroizing::new(Vec::with_capacity(WIRE_BUFFER_CAPACITY));
    serde_json::to_writer(&mut *buf, value)?;
    Ok(buf)
}
