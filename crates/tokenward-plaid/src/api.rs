//! The [`PlaidApi`] trait, the [`Endpoint`] table, and [`PlaidRequest`], which ties each
//! request type to its endpoint and response.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::models::{
    AccountsBalanceGetRequest, AccountsBalanceGetResponse, AccountsGetRequest, AccountsGetResponse,
    ItemAccessTokenInvalidateRequest, ItemAccessTokenInvalidateResponse, ItemGetRequest,
    ItemGetResponse, ItemPublicTokenExchangeRequest, ItemPublicTokenExchangeResponse,
    ItemRemoveRequest, ItemRemoveResponse, ItemWebhookUpdateRequest, ItemWebhookUpdateResponse,
    LinkTokenCreateRequest, LinkTokenCreateResponse, SandboxItemFireWebhookRequest,
    SandboxItemFireWebhookResponse, SandboxItemResetLoginRequest, SandboxItemResetLoginResponse,
    SandboxPublicTokenCreateRequest, SandboxPublicTokenCreateResponse, TransactionsGetRequest,
    TransactionsGetResponse, TransactionsSyncRequest, TransactionsSyncResponse,
    WebhookVerificationKeyGetRequest, WebhookVerificationKeyGetResponse,
};

/// The Plaid endpoints this crate covers: one table for the HTTP client's retry policy, the
/// emulator's router and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Endpoint {
    /// `/link/token/create`.
    LinkTokenCreate,
    /// `/item/public_token/exchange`.
    ItemPublicTokenExchange,
    /// `/sandbox/public_token/create`.
    SandboxPublicTokenCreate,
    /// `/accounts/get`.
    AccountsGet,
    /// `/accounts/balance/get`.
    AccountsBalanceGet,
    /// `/transactions/get`.
    TransactionsGet,
    /// `/transactions/sync`.
    TransactionsSync,
    /// `/item/get`.
    ItemGet,
    /// `/item/remove`.
    ItemRemove,
    /// `/item/access_token/invalidate`.
    ItemAccessTokenInvalidate,
    /// `/item/webhook/update`.
    ItemWebhookUpdate,
    /// `/webhook_verification_key/get`.
    WebhookVerificationKeyGet,
    /// `/sandbox/item/fire_webhook`.
    SandboxItemFireWebhook,
    /// `/sandbox/item/reset_login`.
    SandboxItemResetLogin,
}

impl Endpoint {
    /// Every endpoint, in the order of the design document.
    pub const ALL: [Endpoint; 14] = [
        Endpoint::LinkTokenCreate,
        Endpoint::ItemPublicTokenExchange,
        Endpoint::SandboxPublicTokenCreate,
        Endpoint::AccountsGet,
        Endpoint::AccountsBalanceGet,
        Endpoint::TransactionsGet,
        Endpoint::TransactionsSync,
        Endpoint::ItemGet,
        Endpoint::ItemRemove,
        Endpoint::ItemAccessTokenInvalidate,
        Endpoint::ItemWebhookUpdate,
        Endpoint::WebhookVerificationKeyGet,
        Endpoint::SandboxItemFireWebhook,
        Endpoint::SandboxItemResetLogin,
    ];

    /// The path, e.g. `/item/get`. Every Plaid endpoint is a `POST` with a JSON body.
    #[must_use]
    pub const fn path(self) -> &'static str {
        match self {
            Endpoint::LinkTokenCreate => "/link/token/create",
            Endpoint::ItemPublicTokenExchange => "/item/public_token/exchange",
            Endpoint::SandboxPublicTokenCreate => "/sandbox/public_token/create",
            Endpoint::AccountsGet => "/accounts/get",
            Endpoint::AccountsBalanceGet => "/accounts/balance/get",
            Endpoint::TransactionsGet => "/transactions/get",
            Endpoint::TransactionsSync => "/transactions/sync",
            Endpoint::ItemGet => "/item/get",
            Endpoint::ItemRemove => "/item/remove",
            Endpoint::ItemAccessTokenInvalidate => "/item/access_token/invalidate",
            Endpoint::ItemWebhookUpdate => "/item/webhook/update",
            Endpoint::WebhookVerificationKeyGet => "/webhook_verification_key/get",
            Endpoint::SandboxItemFireWebhook => "/sandbox/item/fire_webhook",
            Endpoint::SandboxItemResetLogin => "/sandbox/item/reset_login",
        }
    }

    /// The spec's operationId, e.g. `itemGet`.
    #[must_use]
    pub const fn operation_id(self) -> &'static str {
        match self {
            Endpoint::LinkTokenCreate => "linkTokenCreate",
            Endpoint::ItemPublicTokenExchange => "itemPublicTokenExchange",
            Endpoint::SandboxPublicTokenCreate => "sandboxPublicTokenCreate",
            Endpoint::AccountsGet => "accountsGet",
            Endpoint::AccountsBalanceGet => "accountsBalanceGet",
            Endpoint::TransactionsGet => "transactionsGet",
            Endpoint::TransactionsSync => "transactionsSync",
            Endpoint::ItemGet => "itemGet",
            Endpoint::ItemRemove => "itemRemove",
            Endpoint::ItemAccessTokenInvalidate => "itemAccessTokenInvalidate",
            Endpoint::ItemWebhookUpdate => "itemWebhookUpdate",
            Endpoint::WebhookVerificationKeyGet => "webhookVerificationKeyGet",
            Endpoint::SandboxItemFireWebhook => "sandboxItemFireWebhook",
            Endpoint::SandboxItemResetLogin => "sandboxItemResetLogin",
        }
    }

    /// The endpoint at `path`, if it is one of these.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    /// Reads only: sending it twice has the same effect as once, so the HTTP client retries it
    /// on 429, 5xx and connection errors.
    ///
    /// `/accounts/balance/get` is billed per call but changes nothing at the Item, so it counts
    /// as a read.
    #[must_use]
    pub const fn is_read_only(self) -> bool {
        matches!(
            self,
            Endpoint::AccountsGet
                | Endpoint::AccountsBalanceGet
                | Endpoint::TransactionsGet
                | Endpoint::TransactionsSync
                | Endpoint::ItemGet
                | Endpoint::WebhookVerificationKeyGet
        )
    }

    /// Changes state at Plaid (creates, exchanges, rotates, removes, updates, fires): never
    /// retried automatically, and an unanswered call is
    /// [`Outcome::Ambiguous`](crate::Outcome::Ambiguous).
    #[must_use]
    pub const fn is_state_changing(self) -> bool {
        !self.is_read_only()
    }

    /// Served by Plaid's Sandbox environment only.
    #[must_use]
    pub const fn is_sandbox_only(self) -> bool {
        matches!(
            self,
            Endpoint::SandboxPublicTokenCreate
                | Endpoint::SandboxItemFireWebhook
                | Endpoint::SandboxItemResetLogin
        )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// A request body of one endpoint: which endpoint, and what it answers.
///
/// Implemented for the 14 request types; lets generic code (an HTTP transport, a recorder, the
/// emulator) handle every endpoint alike.
pub trait PlaidRequest: Serialize + fmt::Debug + Send + Sync {
    /// The answer type.
    type Response: DeserializeOwned + fmt::Debug + Send;
    /// The endpoint.
    const ENDPOINT: Endpoint;
}

macro_rules! plaid_requests {
    ($($request:ty => $response:ty, $endpoint:ident;)*) => {
        $(
            impl PlaidRequest for $request {
                type Response = $response;
                const ENDPOINT: Endpoint = Endpoint::$endpoint;
            }
        )*
    };
}

plaid_requests! {
    LinkTokenCreateRequest => LinkTokenCreateResponse, LinkTokenCreate;
    ItemPublicTokenExchangeRequest => ItemPublicTokenExchangeResponse, ItemPublicTokenExchange;
    SandboxPublicTokenCreateRequest => SandboxPublicTokenCreateResponse, SandboxPublicTokenCreate;
    AccountsGetRequest => AccountsGetResponse, AccountsGet;
    AccountsBalanceGetRequest => AccountsBalanceGetResponse, AccountsBalanceGet;
    TransactionsGetRequest => TransactionsGetResponse, TransactionsGet;
    TransactionsSyncRequest => TransactionsSyncResponse, TransactionsSync;
    ItemGetRequest => ItemGetResponse, ItemGet;
    ItemRemoveRequest => ItemRemoveResponse, ItemRemove;
    ItemAccessTokenInvalidateRequest => ItemAccessTokenInvalidateResponse, ItemAccessTokenInvalidate;
    ItemWebhookUpdateRequest => ItemWebhookUpdateResponse, ItemWebhookUpdate;
    WebhookVerificationKeyGetRequest => WebhookVerificationKeyGetResponse, WebhookVerificationKeyGet;
    SandboxItemFireWebhookRequest => SandboxItemFireWebhookResponse, SandboxItemFireWebhook;
    SandboxItemResetLoginRequest => SandboxItemResetLoginResponse, SandboxItemResetLogin;
}

/// The Plaid API: one method per endpoint, named after the spec's operationId.
///
/// Object-safe (`Arc<dyn PlaidApi>`), `Send + Sync`. [`HttpPlaidClient`] implements it against
/// Plaid (feature `http`); the `tokenward-sandbox` emulator and test fakes implement it too.
/// Implemented for `&T`, `Box<T>` and `Arc<T>` of any implementation.
///
/// Every method fails with [`Error`]; its [`outcome`](Error::outcome) says whether a
/// state-changing call may have been applied.
///
#[cfg_attr(feature = "http", doc = "[`HttpPlaidClient`]: crate::HttpPlaidClient")]
#[cfg_attr(not(feature = "http"), doc = "[`HttpPlaidClient`]: crate#features")]
#[async_trait]
pub trait PlaidApi: Send + Sync {
    /// `/link/token/create`: a Link token for the front end.
    async fn link_token_create(
        &self,
        request: &LinkTokenCreateRequest,
    ) -> Result<LinkTokenCreateResponse, Error>;

    /// `/item/public_token/exchange`: the access token of a new Item. Single-use public token;
    /// never retried.
    async fn item_public_token_exchange(
        &self,
        request: &ItemPublicTokenExchangeRequest,
    ) -> Result<ItemPublicTokenExchangeResponse, Error>;

    /// `/sandbox/public_token/create`: a Sandbox Item without Link.
    async fn sandbox_public_token_create(
        &self,
        request: &SandboxPublicTokenCreateRequest,
    ) -> Result<SandboxPublicTokenCreateResponse, Error>;

    /// `/accounts/get`: the Item's accounts, cached balances.
    async fn accounts_get(
        &self,
        request: &AccountsGetRequest,
    ) -> Result<AccountsGetResponse, Error>;

    /// `/accounts/balance/get`: real-time balances.
    async fn accounts_balance_get(
        &self,
        request: &AccountsBalanceGetRequest,
    ) -> Result<AccountsBalanceGetResponse, Error>;

    /// `/transactions/get`: a page of transactions between two dates.
    async fn transactions_get(
        &self,
        request: &TransactionsGetRequest,
    ) -> Result<TransactionsGetResponse, Error>;

    /// `/transactions/sync`: changes since a cursor.
    async fn transactions_sync(
        &self,
        request: &TransactionsSyncRequest,
    ) -> Result<TransactionsSyncResponse, Error>;

    /// `/item/get`: the Item and its status; the cheap probe of whether a token still works.
    async fn item_get(&self, request: &ItemGetRequest) -> Result<ItemGetResponse, Error>;

    /// `/item/remove`: removes the Item; its tokens stop working.
    async fn item_remove(&self, request: &ItemRemoveRequest) -> Result<ItemRemoveResponse, Error>;

    /// `/item/access_token/invalidate`: rotates the access token. The old one dies at once;
    /// never retried.
    async fn item_access_token_invalidate(
        &self,
        request: &ItemAccessTokenInvalidateRequest,
    ) -> Result<ItemAccessTokenInvalidateResponse, Error>;

    /// `/item/webhook/update`: sets or removes the Item's webhook URL.
    async fn item_webhook_update(
        &self,
        request: &ItemWebhookUpdateRequest,
    ) -> Result<ItemWebhookUpdateResponse, Error>;

    /// `/webhook_verification_key/get`: the public key of a webhook signature.
    async fn webhook_verification_key_get(
        &self,
        request: &WebhookVerificationKeyGetRequest,
    ) -> Result<WebhookVerificationKeyGetResponse, Error>;

    /// `/sandbox/item/fire_webhook`: fires a test webhook.
    async fn sandbox_item_fire_webhook(
        &self,
        request: &SandboxItemFireWebhookRequest,
    ) -> Result<SandboxItemFireWebhookResponse, Error>;

    /// `/sandbox/item/reset_login`: puts the Item in `ITEM_LOGIN_REQUIRED`.
    async fn sandbox_item_reset_login(
        &self,
        request: &SandboxItemResetLoginRequest,
    ) -> Result<SandboxItemResetLoginResponse, Error>;
}

/// Calls `$callback!` with the list of every [`PlaidApi`] method as
/// `method(Request) -> Response;` items, after any leading tokens given. The one list of the
/// endpoints that implementations of the trait expand (the pointer forwards below and the HTTP
/// client), so that adding an endpoint is one line here and one method in the trait.
macro_rules! for_each_plaid_method {
    ($callback:ident!($($prefix:tt)*)) => {
        $callback! { $($prefix)*
            link_token_create(LinkTokenCreateRequest) -> LinkTokenCreateResponse;
            item_public_token_exchange(ItemPublicTokenExchangeRequest)
                -> ItemPublicTokenExchangeResponse;
            sandbox_public_token_create(SandboxPublicTokenCreateRequest)
                -> SandboxPublicTokenCreateResponse;
            accounts_get(AccountsGetRequest) -> AccountsGetResponse;
            accounts_balance_get(AccountsBalanceGetRequest) -> AccountsBalanceGetResponse;
            transactions_get(TransactionsGetRequest) -> TransactionsGetResponse;
            transactions_sync(TransactionsSyncRequest) -> TransactionsSyncResponse;
            item_get(ItemGetRequest) -> ItemGetResponse;
            item_remove(ItemRemoveRequest) -> ItemRemoveResponse;
            item_access_token_invalidate(ItemAccessTokenInvalidateRequest)
                -> ItemAccessTokenInvalidateResponse;
            item_webhook_update(ItemWebhookUpdateRequest) -> ItemWebhookUpdateResponse;
            webhook_verification_key_get(WebhookVerificationKeyGetRequest)
                -> WebhookVerificationKeyGetResponse;
            sandbox_item_fire_webhook(SandboxItemFireWebhookRequest)
                -> SandboxItemFireWebhookResponse;
            sandbox_item_reset_login(SandboxItemResetLoginRequest)
                -> SandboxItemResetLoginResponse;
        }
    };
}
#[cfg(feature = "http")]
pub(crate) use for_each_plaid_method;

/// Implements [`PlaidApi`] for a pointer type by forwarding every method. (`#[async_trait]`
/// must see the expanded methods, hence the callback.)
macro_rules! forward_plaid_api {
    ($pointer:ty; $($method:ident($request:ty) -> $response:ty;)*) => {
        #[async_trait]
        impl<T: PlaidApi + ?Sized> PlaidApi for $pointer {
            $(
                async fn $method(&self, request: &$request) -> Result<$response, Error> {
                    (**self).$method(request).await
                }
            )*
        }
    };
}

for_each_plaid_method!(forward_plaid_api!(&T;));
for_each_plaid_method!(forward_plaid_api!(Box<T>;));
for_each_plaid_method!(forward_plaid_api!(Arc<T>;));
