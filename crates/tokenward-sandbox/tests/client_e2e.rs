//! `tokenward-plaid`'s `HttpPlaidClient` against the emulator over loopback HTTP: every
//! endpoint through `Arc<dyn PlaidApi>` (link token, public token, exchange, accounts,
//! balances, transactions get and sync with pagination and updates, Item get, webhook update,
//! webhook key, fire webhook, reset login, invalidate, remove), and every error the emulator
//! can answer arriving as a typed `Error` (bad credentials, unknown, rotated and removed access
//! tokens, used, unknown and expired public tokens, `ITEM_LOGIN_REQUIRED`, unknown key id),
//! with a request id and without a token or the secret in any `Display` or `Debug`; request
//! options (account filters, counts, update mode, webhook removal) and the emulator's request
//! validation errors, typed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    missing_docs,
    reason = "test code"
)]

mod e2e_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use e2e_support::{
    Canary, Hook, WRONG_SECRET, client, client_with, dup, fast_retries, link_item, sandbox,
    start_time,
};
use serde_json::Value;
use tokenward_plaid::models::{
    AccountSubtype, AccountType, AccountsBalanceGetRequest, AccountsGetRequest, CountryCode,
    ItemAccessTokenInvalidateRequest, ItemGetRequest, ItemPublicTokenExchangeRequest,
    ItemRemoveReasonCode, ItemRemoveRequest, ItemWebhookUpdateRequest, LinkTokenCreateRequest,
    LinkTokenCreateUser, Product, SandboxItemFireWebhookRequest, SandboxItemResetLoginRequest,
    SandboxPublicTokenCreateRequest, SandboxWebhookCode, Transaction, TransactionsGetRequest,
    TransactionsSyncRequest, TransactionsSyncResponse, WebhookType,
    WebhookVerificationKeyGetRequest,
};
use tokenward_plaid::{Endpoint, Error, ErrorCode, ErrorType, Outcome, PlaidApi};
use tokenward_redact::{AccessToken, PublicToken};
use tokenward_testkit::canary;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Every page of `/transactions/sync` from `cursor` until `has_more` is false: the pages and
/// the cursor to continue from.
async fn sync_to_end(
    api: &dyn PlaidApi,
    canary: &Canary,
    token: &AccessToken,
    cursor: Option<String>,
) -> (Vec<TransactionsSyncResponse>, String) {
    let mut cursor = cursor;
    let mut pages = Vec::new();
    loop {
        let mut request = TransactionsSyncRequest::new(dup(token)).with_count(100);
        if let Some(cursor) = &cursor {
            request = request.with_cursor(cursor.clone());
        }
        let page = canary
            .call("sync", &request, api.transactions_sync(&request).await)
            .unwrap();
        assert!(page.added.len() + page.modified.len() + page.removed.len() <= 100);
        cursor = Some(page.next_cursor.clone());
        let more = page.has_more;
        pages.push(page);
        if !more {
            break;
        }
        assert!(pages.len() < 100, "sync does not end");
    }
    (pages, cursor.unwrap())
}

/// The `webhook_code` of a delivery's body.
fn code_of(body: &[u8]) -> String {
    let body: Value = serde_json::from_slice(body).unwrap();
    body["webhook_code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_endpoint_through_dyn_plaid_api() {
    let (sandbox, _clock) = sandbox().await;
    let canary = Canary::new();
    let mut hook = Hook::start().await;
    let http = client(&sandbox);
    canary.debug("client", &http);
    assert!(
        format!("{http:?}").contains(&sandbox.base_url()),
        "{http:?}"
    );
    // Object safety: everything below goes through the trait object.
    let api: Arc<dyn PlaidApi> = Arc::new(http);

    // /link/token/create
    let request = LinkTokenCreateRequest::new(
        "Tokenward E2E",
        "en",
        vec![CountryCode::Us],
        LinkTokenCreateUser::new("user-1").with_email_address("user@example.com"),
    )
    .with_products(vec![Product::Transactions])
    .with_webhook(hook.url.clone());
    let link = canary
        .call("link", &request, api.link_token_create(&request).await)
        .unwrap();
    canary.secret(link.link_token.expose_secret());
    assert!(link.link_token.expose_secret().starts_with("link-sandbox-"));
    assert_eq!(link.expiration, start_time() + chrono::Duration::hours(4));
    assert!(!link.request_id.is_empty());

    // /sandbox/public_token/create and /item/public_token/exchange
    let (token, item_id) = link_item(&*api, &canary, Some(&hook.url)).await;
    assert!(token.expose_secret().starts_with("access-sandbox-"));
    assert_eq!(item_id.len(), 37);

    // /accounts/get, all and filtered
    let request = AccountsGetRequest::new(dup(&token));
    let accounts = canary
        .call("accounts", &request, api.accounts_get(&request).await)
        .unwrap();
    assert_eq!(accounts.accounts.len(), 3);
    assert_eq!(accounts.item.item_id, item_id);
    assert_eq!(accounts.item.webhook.as_deref(), Some(hook.url.as_str()));
    assert_eq!(accounts.accounts[0].subtype, Some(AccountSubtype::Checking));
    assert_eq!(accounts.accounts[2].account_type, AccountType::Credit);
    assert!(
        accounts
            .accounts
            .iter()
            .all(|a| a.balances.last_updated_datetime.is_none())
    );
    let checking = accounts.accounts[0].account_id.clone();
    let request = AccountsGetRequest::new(dup(&token)).with_account_ids(vec![checking.clone()]);
    let filtered = canary
        .call(
            "accounts filtered",
            &request,
            api.accounts_get(&request).await,
        )
        .unwrap();
    assert_eq!(filtered.accounts.len(), 1);
    assert_eq!(filtered.accounts[0].account_id, checking);

    // /accounts/balance/get: real-time balances, stamped with the emulator's clock
    let request = AccountsBalanceGetRequest::new(dup(&token));
    let balances = canary
        .call(
            "balance",
            &request,
            api.accounts_balance_get(&request).await,
        )
        .unwrap();
    assert_eq!(balances.accounts.len(), 3);
    for account in &balances.accounts {
        assert_eq!(account.balances.last_updated_datetime, Some(start_time()));
        assert!(account.balances.current.is_some());
    }

    // /transactions/get: a date range, paged by count and offset, with a stable total
    let (start, end) = (date(2022, 7, 1), date(2024, 6, 30));
    let request = TransactionsGetRequest::new(dup(&token), start, end);
    let first = canary
        .call(
            "transactions",
            &request,
            api.transactions_get(&request).await,
        )
        .unwrap();
    let total = first.total_transactions;
    assert!(total > 300, "{total}");
    assert_eq!(first.transactions.len(), 100, "the default count");
    assert_eq!(first.item.item_id, item_id);
    let mut all: Vec<Transaction> = Vec::new();
    while all.len() < total as usize {
        let offset = u32::try_from(all.len()).unwrap();
        let request = TransactionsGetRequest::new(dup(&token), start, end).with_page(250, offset);
        let page = canary
            .call(
                "transactions page",
                &request,
                api.transactions_get(&request).await,
            )
            .unwrap();
        assert_eq!(page.total_transactions, total);
        assert!(!page.transactions.is_empty() && page.transactions.len() <= 250);
        all.extend(page.transactions);
    }
    assert_eq!(all.len(), total as usize);
    assert!(all.iter().all(|t| t.date >= start && t.date <= end));
    assert!(
        all.windows(2).all(|w| w[0].date >= w[1].date),
        "newest first"
    );
    let ids: HashSet<&str> = all.iter().map(|t| t.transaction_id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "no transaction on two pages");
    // Past the end: an empty page, the same total.
    let request = TransactionsGetRequest::new(dup(&token), start, end).with_page(10, total + 5);
    let past = canary
        .call(
            "transactions past",
            &request,
            api.transactions_get(&request).await,
        )
        .unwrap();
    assert!(past.transactions.is_empty());
    assert_eq!(past.total_transactions, total);
    // A narrower range: fewer, all inside it.
    let (may, june) = (date(2024, 5, 1), date(2024, 5, 31));
    let request = TransactionsGetRequest::new(dup(&token), may, june).with_page(500, 0);
    let month = canary
        .call(
            "transactions may",
            &request,
            api.transactions_get(&request).await,
        )
        .unwrap();
    assert!(month.total_transactions > 0 && month.total_transactions < total);
    assert_eq!(month.transactions.len(), month.total_transactions as usize);
    assert!(
        month
            .transactions
            .iter()
            .all(|t| t.date >= may && t.date <= june)
    );
    // All of history, for comparison with sync.
    let request = TransactionsGetRequest::new(dup(&token), date(2000, 1, 1), date(2030, 12, 31))
        .with_page(1, 0);
    let history = canary
        .call(
            "transactions all",
            &request,
            api.transactions_get(&request).await,
        )
        .unwrap()
        .total_transactions;

    // /transactions/sync: paginate to the end; the initial pull is the whole history
    let (pages, cursor) = sync_to_end(&*api, &canary, &token, None).await;
    assert!(pages.len() > 1, "more than one page of 100");
    let added: Vec<&Transaction> = pages.iter().flat_map(|p| &p.added).collect();
    assert_eq!(added.len(), history as usize);
    assert!(
        pages
            .iter()
            .all(|p| p.modified.is_empty() && p.removed.is_empty())
    );
    let synced: HashSet<&str> = added.iter().map(|t| t.transaction_id.as_str()).collect();
    assert_eq!(synced.len(), added.len());
    let pending: HashSet<String> = added
        .iter()
        .filter(|t| t.pending)
        .map(|t| t.transaction_id.clone())
        .collect();
    // Nothing new: one empty page with the same position.
    let request = TransactionsSyncRequest::new(dup(&token)).with_cursor(cursor.clone());
    let idle = canary
        .call("sync idle", &request, api.transactions_sync(&request).await)
        .unwrap();
    assert!(idle.added.is_empty() && idle.modified.is_empty() && idle.removed.is_empty());
    assert!(!idle.has_more);

    // New activity (the emulator's Rust API): pending ones post, one is modified, two arrive.
    let new = sandbox
        .emulator()
        .simulate_transactions_update(&item_id)
        .unwrap();
    let (pages, cursor) = sync_to_end(&*api, &canary, &token, Some(cursor)).await;
    let added: Vec<&Transaction> = pages.iter().flat_map(|p| &p.added).collect();
    let modified: Vec<&Transaction> = pages.iter().flat_map(|p| &p.modified).collect();
    let removed: Vec<&str> = pages
        .iter()
        .flat_map(|p| &p.removed)
        .map(|r| r.transaction_id.as_str())
        .collect();
    assert_eq!(added.len(), new);
    assert!(added.len() >= 2);
    assert_eq!(modified.len(), 1);
    assert!(synced.contains(modified[0].transaction_id.as_str()));
    assert_eq!(removed.len(), pending.len(), "every pending one posts");
    assert!(removed.iter().all(|id| pending.contains(*id)));
    for posted in added.iter().filter(|t| t.pending_transaction_id.is_some()) {
        assert!(!posted.pending);
        assert!(pending.contains(posted.pending_transaction_id.as_deref().unwrap()));
    }

    // /sandbox/item/fire_webhook SYNC_UPDATES_AVAILABLE: another update, and the webhook.
    let request =
        SandboxItemFireWebhookRequest::new(dup(&token), SandboxWebhookCode::SyncUpdatesAvailable)
            .with_webhook_type(WebhookType::Transactions);
    let fired = canary
        .call(
            "fire sync",
            &request,
            api.sandbox_item_fire_webhook(&request).await,
        )
        .unwrap();
    assert!(fired.webhook_fired);
    assert_eq!(code_of(&hook.next().await.body), "SYNC_UPDATES_AVAILABLE");
    let (pages, _) = sync_to_end(&*api, &canary, &token, Some(cursor)).await;
    assert!(pages.iter().map(|p| p.added.len()).sum::<usize>() >= 2);
    assert_eq!(pages.iter().map(|p| p.modified.len()).sum::<usize>(), 1);

    // /item/get
    let request = ItemGetRequest::new(dup(&token));
    let item = canary
        .call("item", &request, api.item_get(&request).await)
        .unwrap();
    assert_eq!(item.item.item.item_id, item_id);
    assert_eq!(item.item.item.webhook.as_deref(), Some(hook.url.as_str()));
    assert_eq!(item.item.created_at, Some(start_time()));
    assert!(item.item.item.error.is_none());
    let status = item.status.as_ref().unwrap();
    assert_eq!(
        status.last_webhook.as_ref().unwrap().code_sent.as_deref(),
        Some("SYNC_UPDATES_AVAILABLE")
    );

    // /item/webhook/update: the new URL gets WEBHOOK_UPDATE_ACKNOWLEDGED
    let new_url = format!("{}?v=2", hook.url);
    let request = ItemWebhookUpdateRequest::new(dup(&token), Some(new_url.clone()));
    let updated = canary
        .call(
            "webhook update",
            &request,
            api.item_webhook_update(&request).await,
        )
        .unwrap();
    assert_eq!(updated.item.webhook.as_deref(), Some(new_url.as_str()));
    let delivery = hook.next().await;
    assert_eq!(code_of(&delivery.body), "WEBHOOK_UPDATE_ACKNOWLEDGED");
    let body: Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(body["new_webhook_url"], new_url.as_str());

    // /webhook_verification_key/get
    let kid = sandbox.emulator().webhook_key_id();
    let request = WebhookVerificationKeyGetRequest::new(kid.clone());
    let key = canary
        .call(
            "key",
            &request,
            api.webhook_verification_key_get(&request).await,
        )
        .unwrap();
    assert_eq!(key.key.kid, kid);
    assert_eq!(
        (
            key.key.alg.as_str(),
            key.key.crv.as_str(),
            key.key.kty.as_str()
        ),
        ("ES256", "P-256", "EC")
    );
    assert_eq!(key.key.use_, "sig");
    assert_eq!(key.key.expired_at, None);
    assert_eq!((key.key.x.len(), key.key.y.len()), (43, 43));

    // /sandbox/item/fire_webhook DEFAULT_UPDATE
    let request =
        SandboxItemFireWebhookRequest::new(dup(&token), SandboxWebhookCode::DefaultUpdate);
    let fired = canary
        .call(
            "fire default",
            &request,
            api.sandbox_item_fire_webhook(&request).await,
        )
        .unwrap();
    assert!(fired.webhook_fired);
    assert_eq!(code_of(&hook.next().await.body), "DEFAULT_UPDATE");

    // /sandbox/item/reset_login: data endpoints refuse, /item/get shows the error
    let request = SandboxItemResetLoginRequest::new(dup(&token));
    let reset = canary
        .call(
            "reset login",
            &request,
            api.sandbox_item_reset_login(&request).await,
        )
        .unwrap();
    assert!(reset.reset_login);
    assert_eq!(code_of(&hook.next().await.body), "ERROR");
    let request = AccountsGetRequest::new(dup(&token));
    let error = canary
        .call(
            "accounts after reset",
            &request,
            api.accounts_get(&request).await,
        )
        .unwrap_err();
    assert!(error.is_login_required(), "{error}");
    let request = ItemGetRequest::new(dup(&token));
    let item = canary
        .call("item after reset", &request, api.item_get(&request).await)
        .unwrap();
    let item_error = item.item.item.error.as_ref().unwrap();
    assert!(item_error.is_login_required() && item_error.is_item_error());
    // LOGIN_REPAIRED ends it.
    let request =
        SandboxItemFireWebhookRequest::new(dup(&token), SandboxWebhookCode::LoginRepaired);
    canary
        .call(
            "repair",
            &request,
            api.sandbox_item_fire_webhook(&request).await,
        )
        .unwrap();
    assert_eq!(code_of(&hook.next().await.body), "LOGIN_REPAIRED");
    let request = AccountsGetRequest::new(dup(&token));
    canary
        .call(
            "accounts repaired",
            &request,
            api.accounts_get(&request).await,
        )
        .unwrap();

    // /item/access_token/invalidate: the old token dies at once, the new one works
    let request = ItemAccessTokenInvalidateRequest::new(dup(&token));
    let rotated = canary
        .call(
            "invalidate",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap();
    let new_token = rotated.new_access_token;
    canary.secret(new_token.expose_secret());
    assert_ne!(new_token.expose_secret(), token.expose_secret());
    let request = ItemGetRequest::new(dup(&token));
    let error = canary
        .call("item old token", &request, api.item_get(&request).await)
        .unwrap_err();
    assert!(error.is_invalid_access_token(), "{error}");
    let request = ItemGetRequest::new(dup(&new_token));
    let item = canary
        .call("item new token", &request, api.item_get(&request).await)
        .unwrap();
    assert_eq!(item.item.item.item_id, item_id, "the same Item");

    // /item/remove: the Item and its token are gone
    let request = ItemRemoveRequest::new(dup(&new_token))
        .with_reason_code(ItemRemoveReasonCode::Other)
        .with_reason_note("end-to-end test");
    let removed = canary
        .call("remove", &request, api.item_remove(&request).await)
        .unwrap();
    assert!(!removed.request_id.is_empty());
    assert_eq!(sandbox.emulator().item_count(), 0);
    let request = ItemGetRequest::new(dup(&new_token));
    let error = canary
        .call("item removed", &request, api.item_get(&request).await)
        .unwrap_err();
    assert!(error.is_invalid_access_token(), "{error}");

    // Every webhook the emulator sent reached the listener.
    let deliveries = sandbox.emulator().webhook_deliveries();
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "{deliveries:?}"
    );
    canary.assert_clean();
}

/// Asserts the shape every Plaid error from the emulator has: the endpoint, the HTTP status,
/// a known outcome (4xx), a request id, and a `Display` that names the endpoint and the
/// request id.
fn assert_plaid_error(
    error: &Error,
    endpoint: Endpoint,
    status: u16,
    error_type: &ErrorType,
    error_code: &ErrorCode,
) {
    let Error::Plaid {
        endpoint: got_endpoint,
        status: got_status,
        error: plaid,
        outcome,
    } = error
    else {
        panic!("not a Plaid error: {error:?}");
    };
    assert_eq!(*got_endpoint, endpoint, "{error}");
    assert_eq!(*got_status, status, "{error}");
    assert_eq!(plaid.error_type(), error_type, "{error}");
    assert_eq!(plaid.error_code(), error_code, "{error}");
    assert_eq!(*outcome, Outcome::Known, "{error}");
    assert_eq!(error.http_status(), Some(status));
    assert_eq!(error.endpoint(), Some(endpoint));
    let request_id = error.request_id().expect("a request id");
    assert!(!request_id.is_empty());
    let display = error.to_string();
    assert!(display.contains(endpoint.path()), "{display}");
    assert!(display.contains(request_id), "{display}");
    assert!(!plaid.error_message().is_empty());
}

#[tokio::test]
async fn every_error_is_typed_and_secret_free() {
    let (sandbox, clock) = sandbox().await;
    let canary = Canary::new();
    canary.secret(canary::ACCESS_SANDBOX);
    canary.secret(canary::PUBLIC_SANDBOX);
    let api = client(&sandbox);
    let (token, _) = link_item(&api, &canary, None).await;

    // Bad credentials: INVALID_INPUT / INVALID_API_KEYS on every endpoint, not retried.
    let wrong = client_with(&sandbox.base_url(), WRONG_SECRET, fast_retries(4));
    canary.debug("wrong client", &wrong);
    let request = ItemGetRequest::new(dup(&token));
    let error = canary
        .call("wrong item", &request, wrong.item_get(&request).await)
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::ItemGet,
        400,
        &ErrorType::InvalidInput,
        &ErrorCode::InvalidApiKeys,
    );
    assert!(error.is_config_error() && !error.is_retryable());
    let request = LinkTokenCreateRequest::new(
        "x",
        "en",
        vec![CountryCode::Us],
        LinkTokenCreateUser::new("u"),
    );
    let error = canary
        .call(
            "wrong link",
            &request,
            wrong.link_token_create(&request).await,
        )
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::LinkTokenCreate,
        400,
        &ErrorType::InvalidInput,
        &ErrorCode::InvalidApiKeys,
    );
    let request = WebhookVerificationKeyGetRequest::new(sandbox.emulator().webhook_key_id());
    let error = canary
        .call(
            "wrong key",
            &request,
            wrong.webhook_verification_key_get(&request).await,
        )
        .unwrap_err();
    assert!(error.is_config_error(), "{error}");
    let request = AccountsGetRequest::new(dup(&token));
    let error = canary
        .call(
            "wrong accounts",
            &request,
            wrong.accounts_get(&request).await,
        )
        .unwrap_err();
    assert!(error.is_config_error(), "{error}");

    // An access token the emulator never issued.
    let unknown = AccessToken::new(canary::ACCESS_SANDBOX).unwrap();
    let request = ItemGetRequest::new(dup(&unknown));
    let error = canary
        .call("unknown token", &request, api.item_get(&request).await)
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::ItemGet,
        400,
        &ErrorType::InvalidInput,
        &ErrorCode::InvalidAccessToken,
    );
    assert!(error.is_invalid_access_token() && !error.is_retryable());

    // A rotated-away token, on every endpoint that takes one.
    let request = ItemAccessTokenInvalidateRequest::new(dup(&token));
    let rotated = canary
        .call(
            "invalidate",
            &request,
            api.item_access_token_invalidate(&request).await,
        )
        .unwrap();
    canary.secret(rotated.new_access_token.expose_secret());
    let dead = token;
    let (start, end) = (date(2024, 1, 1), date(2024, 6, 30));
    let mut dead_errors: Vec<(Endpoint, Error)> = Vec::new();
    let request = AccountsGetRequest::new(dup(&dead));
    dead_errors.push((
        Endpoint::AccountsGet,
        canary
            .call("dead accounts", &request, api.accounts_get(&request).await)
            .unwrap_err(),
    ));
    let request = AccountsBalanceGetRequest::new(dup(&dead));
    dead_errors.push((
        Endpoint::AccountsBalanceGet,
        canary
            .call(
                "dead balance",
                &request,
                api.accounts_balance_get(&request).await,
            )
            .unwrap_err(),
    ));
    let request = TransactionsGetRequest::new(dup(&dead), start, end);
    dead_errors.push((
        Endpoint::TransactionsGet,
        canary
            .call(
                "dead transactions",
                &request,
                api.transactions_get(&request).await,
            )
            .unwrap_err(),
    ));
    let request = TransactionsSyncRequest::new(dup(&dead));
    dead_errors.push((
        Endpoint::TransactionsSync,
        canary
            .call("dead sync", &request, api.transactions_sync(&request).await)
            .unwrap_err(),
    ));
    let request = ItemWebhookUpdateRequest::new(dup(&dead), None);
    dead_errors.push((
        Endpoint::ItemWebhookUpdate,
        canary
            .call(
                "dead webhook",
                &request,
                api.item_webhook_update(&request).await,
            )
            .unwrap_err(),
    ));
    let request = SandboxItemResetLoginRequest::new(dup(&dead));
    dead_errors.push((
        Endpoint::SandboxItemResetLogin,
        canary
            .call(
                "dead reset",
                &request,
                api.sandbox_item_reset_login(&request).await,
            )
            .unwrap_err(),
    ));
    let request = SandboxItemFireWebhookRequest::new(dup(&dead), SandboxWebhookCode::DefaultUpdate);
    dead_errors.push((
        Endpoint::SandboxItemFireWebhook,
        canary
            .call(
                "dead fire",
                &request,
                api.sandbox_item_fire_webhook(&request).await,
            )
            .unwrap_err(),
    ));
    let request = ItemAccessTokenInvalidateRequest::new(dup(&dead));
    dead_errors.push((
        Endpoint::ItemAccessTokenInvalidate,
        canary
            .call(
                "dead invalidate",
                &request,
                api.item_access_token_invalidate(&request).await,
            )
            .unwrap_err(),
    ));
    let request = ItemRemoveRequest::new(dup(&dead));
    dead_errors.push((
        Endpoint::ItemRemove,
        canary
            .call("dead remove", &request, api.item_remove(&request).await)
            .unwrap_err(),
    ));
    let request = LinkTokenCreateRequest::new(
        "x",
        "en",
        vec![CountryCode::Us],
        LinkTokenCreateUser::new("u"),
    )
    .with_access_token(dup(&dead));
    dead_errors.push((
        Endpoint::LinkTokenCreate,
        canary
            .call(
                "dead update mode",
                &request,
                api.link_token_create(&request).await,
            )
            .unwrap_err(),
    ));
    for (endpoint, error) in &dead_errors {
        assert_plaid_error(
            error,
            *endpoint,
            400,
            &ErrorType::InvalidInput,
            &ErrorCode::InvalidAccessToken,
        );
        assert!(error.is_invalid_access_token());
    }
    assert_eq!(sandbox.emulator().item_count(), 1, "the Item lives on");

    // A removed Item's token.
    let live = rotated.new_access_token;
    let request = ItemRemoveRequest::new(dup(&live));
    canary
        .call("remove", &request, api.item_remove(&request).await)
        .unwrap();
    let request = ItemGetRequest::new(dup(&live));
    let error = canary
        .call("removed item", &request, api.item_get(&request).await)
        .unwrap_err();
    assert!(error.is_invalid_access_token(), "{error}");
    let request = ItemRemoveRequest::new(dup(&live));
    let error = canary
        .call("removed remove", &request, api.item_remove(&request).await)
        .unwrap_err();
    assert!(error.is_invalid_access_token(), "{error}");
    assert_eq!(sandbox.emulator().item_count(), 0);

    // Public tokens: used, unknown, expired.
    let create = SandboxPublicTokenCreateRequest::new("ins_109508", vec![Product::Auth]);
    let created = canary
        .call(
            "public",
            &create,
            api.sandbox_public_token_create(&create).await,
        )
        .unwrap();
    canary.secret(created.public_token.expose_secret());
    let public = created.public_token;
    let request = ItemPublicTokenExchangeRequest::new(e2e_support::dup_public(&public));
    let exchanged = canary
        .call(
            "exchange",
            &request,
            api.item_public_token_exchange(&request).await,
        )
        .unwrap();
    canary.secret(exchanged.access_token.expose_secret());
    let request = ItemPublicTokenExchangeRequest::new(e2e_support::dup_public(&public));
    let error = canary
        .call(
            "exchange again",
            &request,
            api.item_public_token_exchange(&request).await,
        )
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::ItemPublicTokenExchange,
        400,
        &ErrorType::InvalidInput,
        &ErrorCode::InvalidPublicToken,
    );
    let request =
        ItemPublicTokenExchangeRequest::new(PublicToken::new(canary::PUBLIC_SANDBOX).unwrap());
    let error = canary
        .call(
            "exchange unknown",
            &request,
            api.item_public_token_exchange(&request).await,
        )
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::ItemPublicTokenExchange,
        400,
        &ErrorType::InvalidInput,
        &ErrorCode::InvalidPublicToken,
    );
    let created = canary
        .call(
            "public 2",
            &create,
            api.sandbox_public_token_create(&create).await,
        )
        .unwrap();
    canary.secret(created.public_token.expose_secret());
    clock.advance(Duration::from_secs(31 * 60));
    let request = ItemPublicTokenExchangeRequest::new(created.public_token);
    let error = canary
        .call(
            "exchange expired",
            &request,
            api.item_public_token_exchange(&request).await,
        )
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::ItemPublicTokenExchange,
        400,
        &ErrorType::InvalidInput,
        &ErrorCode::InvalidPublicToken,
    );

    // ITEM_LOGIN_REQUIRED on every data endpoint after reset_login.
    let (token, _) = link_item(&api, &canary, None).await;
    let request = SandboxItemResetLoginRequest::new(dup(&token));
    canary
        .call(
            "reset",
            &request,
            api.sandbox_item_reset_login(&request).await,
        )
        .unwrap();
    let mut login_errors = Vec::new();
    let request = AccountsGetRequest::new(dup(&token));
    login_errors.push((
        Endpoint::AccountsGet,
        canary
            .call("login accounts", &request, api.accounts_get(&request).await)
            .unwrap_err(),
    ));
    let request = AccountsBalanceGetRequest::new(dup(&token));
    login_errors.push((
        Endpoint::AccountsBalanceGet,
        canary
            .call(
                "login balance",
                &request,
                api.accounts_balance_get(&request).await,
            )
            .unwrap_err(),
    ));
    let request = TransactionsGetRequest::new(dup(&token), start, end);
    login_errors.push((
        Endpoint::TransactionsGet,
        canary
            .call(
                "login transactions",
                &request,
                api.transactions_get(&request).await,
            )
            .unwrap_err(),
    ));
    let request = TransactionsSyncRequest::new(dup(&token));
    login_errors.push((
        Endpoint::TransactionsSync,
        canary
            .call(
                "login sync",
                &request,
                api.transactions_sync(&request).await,
            )
            .unwrap_err(),
    ));
    for (endpoint, error) in &login_errors {
        assert_plaid_error(
            error,
            *endpoint,
            400,
            &ErrorType::ItemError,
            &ErrorCode::ItemLoginRequired,
        );
        assert!(error.is_item_error() && error.is_login_required());
        assert!(error.requires_user_action() && !error.is_retryable());
        assert!(!error.is_invalid_access_token());
        let plaid = error.plaid_error().unwrap();
        assert!(plaid.display_message().is_some(), "{plaid:?}");
        assert_eq!(
            plaid.documentation_url(),
            Some("https://plaid.com/docs/errors/")
        );
    }
    let ids: HashSet<&str> = login_errors
        .iter()
        .map(|(_, e)| e.request_id().unwrap())
        .collect();
    assert_eq!(ids.len(), login_errors.len(), "one request id per request");

    // An unknown webhook key id; a webhook fired at an Item without a URL.
    let request = WebhookVerificationKeyGetRequest::new("6c5516e1-92dc-479e-a8ff-5a51992e0001");
    let error = canary
        .call(
            "unknown key",
            &request,
            api.webhook_verification_key_get(&request).await,
        )
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::WebhookVerificationKeyGet,
        400,
        &ErrorType::InvalidInput,
        &ErrorCode::InvalidWebhookVerificationKeyId,
    );
    let request =
        SandboxItemFireWebhookRequest::new(dup(&token), SandboxWebhookCode::DefaultUpdate);
    let error = canary
        .call(
            "no webhook",
            &request,
            api.sandbox_item_fire_webhook(&request).await,
        )
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::SandboxItemFireWebhook,
        400,
        &ErrorType::SandboxError,
        &ErrorCode::from("SANDBOX_WEBHOOK_INVALID".to_owned()),
    );

    // No error text holds a token or the secret (request Debug is checked with them).
    canary.assert_clean();
}

#[tokio::test]
async fn options_filters_and_request_validation() {
    let (sandbox, _clock) = sandbox().await;
    let canary = Canary::new();
    let mut hook = Hook::start().await;
    let api = client(&sandbox);
    let (token, item_id) = link_item(&api, &canary, Some(&hook.url)).await;
    let (other, _) = link_item(&api, &canary, None).await;

    // Account filters: /transactions/get and /transactions/sync see only that account.
    let request = AccountsGetRequest::new(dup(&token));
    let accounts = canary
        .call("accounts", &request, api.accounts_get(&request).await)
        .unwrap()
        .accounts;
    let savings = accounts[1].account_id.clone();
    let (start, end) = (date(2023, 1, 1), date(2024, 6, 30));
    let request = TransactionsGetRequest::new(dup(&token), start, end)
        .with_account_ids(vec![savings.clone()])
        .with_page(500, 0);
    let page = canary
        .call(
            "get savings",
            &request,
            api.transactions_get(&request).await,
        )
        .unwrap();
    assert_eq!(page.accounts.len(), 1);
    assert!(page.total_transactions > 0);
    assert!(page.transactions.iter().all(|t| t.account_id == savings));
    let request = TransactionsSyncRequest::new(dup(&token))
        .with_account_id(savings.clone())
        .with_count(500);
    let synced = canary
        .call(
            "sync savings",
            &request,
            api.transactions_sync(&request).await,
        )
        .unwrap();
    assert!(!synced.added.is_empty());
    assert!(synced.added.iter().all(|t| t.account_id == savings));
    assert_eq!(synced.accounts.len(), 1);
    let request = AccountsBalanceGetRequest::new(dup(&token))
        .with_account_ids(vec![savings.clone()])
        .with_min_last_updated_datetime(start_time());
    let balances = canary
        .call(
            "balance savings",
            &request,
            api.accounts_balance_get(&request).await,
        )
        .unwrap();
    assert_eq!(balances.accounts.len(), 1);

    // An account of another Item, a cursor of another Item, counts out of range: typed
    // INVALID_INPUT / INVALID_REQUEST errors, not retried.
    let request = AccountsGetRequest::new(dup(&other)).with_account_ids(vec![savings.clone()]);
    let error = canary
        .call(
            "foreign account",
            &request,
            api.accounts_get(&request).await,
        )
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::AccountsGet,
        400,
        &ErrorType::InvalidInput,
        &ErrorCode::from("INVALID_ACCOUNT_ID".to_owned()),
    );
    let request = TransactionsSyncRequest::new(dup(&other)).with_cursor(synced.next_cursor);
    let error = canary
        .call(
            "foreign cursor",
            &request,
            api.transactions_sync(&request).await,
        )
        .unwrap_err();
    assert_plaid_error(
        &error,
        Endpoint::TransactionsSync,
        400,
        &ErrorType::InvalidRequest,
        &ErrorCode::InvalidField,
    );
    for count in [0, 501] {
        let request = TransactionsSyncRequest::new(dup(&token)).with_count(count);
        let error = canary
            .call(
                "sync count",
                &request,
                api.transactions_sync(&request).await,
            )
            .unwrap_err();
        assert_eq!(
            error.plaid_error().map(|e| e.error_code().clone()),
            Some(ErrorCode::InvalidField),
            "{count}: {error}"
        );
        let request = TransactionsGetRequest::new(dup(&token), start, end).with_page(count, 0);
        let error = canary
            .call("get count", &request, api.transactions_get(&request).await)
            .unwrap_err();
        assert_eq!(
            error.plaid_error().map(|e| e.error_code().clone()),
            Some(ErrorCode::InvalidField),
            "{count}: {error}"
        );
        assert!(!error.is_retryable());
    }
    let request = TransactionsGetRequest::new(dup(&token), end, start);
    let error = canary
        .call(
            "reversed dates",
            &request,
            api.transactions_get(&request).await,
        )
        .unwrap_err();
    assert_eq!(
        error.plaid_error().map(|e| e.error_code().clone()),
        Some(ErrorCode::InvalidField)
    );
    let request = SandboxPublicTokenCreateRequest::new("not_an_institution", vec![Product::Auth]);
    let error = canary
        .call(
            "bad institution",
            &request,
            api.sandbox_public_token_create(&request).await,
        )
        .unwrap_err();
    assert_eq!(error.http_status(), Some(400), "{error}");

    // Link update mode: a live access token is accepted, a dead one is not (see above).
    let request = LinkTokenCreateRequest::new(
        "x",
        "en",
        vec![CountryCode::Us],
        LinkTokenCreateUser::new("u"),
    )
    .with_access_token(dup(&token));
    let link = canary
        .call(
            "update mode",
            &request,
            api.link_token_create(&request).await,
        )
        .unwrap();
    canary.secret(link.link_token.expose_secret());

    // Removing the webhook (`"webhook": null`): nothing is sent, and fire_webhook refuses.
    let request = ItemWebhookUpdateRequest::new(dup(&token), None);
    let updated = canary
        .call(
            "remove webhook",
            &request,
            api.item_webhook_update(&request).await,
        )
        .unwrap();
    assert_eq!(updated.item.webhook, None);
    assert_eq!(updated.item.item_id, item_id);
    let request =
        SandboxItemFireWebhookRequest::new(dup(&token), SandboxWebhookCode::DefaultUpdate);
    let error = canary
        .call(
            "fire without webhook",
            &request,
            api.sandbox_item_fire_webhook(&request).await,
        )
        .unwrap_err();
    assert_eq!(
        *error.plaid_error().unwrap().error_type(),
        ErrorType::SandboxError
    );
    // A webhook type that does not match the code.
    let request = ItemWebhookUpdateRequest::new(dup(&token), Some(hook.url.clone()));
    canary
        .call(
            "webhook back",
            &request,
            api.item_webhook_update(&request).await,
        )
        .unwrap();
    assert_eq!(
        code_of(&hook.next().await.body),
        "WEBHOOK_UPDATE_ACKNOWLEDGED"
    );
    let request =
        SandboxItemFireWebhookRequest::new(dup(&token), SandboxWebhookCode::DefaultUpdate)
            .with_webhook_type(WebhookType::Item);
    let error = canary
        .call(
            "mismatched type",
            &request,
            api.sandbox_item_fire_webhook(&request).await,
        )
        .unwrap_err();
    assert_eq!(
        error.plaid_error().map(|e| e.error_code().clone()),
        Some(ErrorCode::InvalidField)
    );
    canary.assert_clean();
}

#[tokio::test]
async fn the_client_reuses_its_connection() {
    let (sandbox, _clock) = sandbox().await;
    let plaid = client(&sandbox);
    let canary = Canary::default();
    let (token, _item_id) = link_item(&plaid, &canary, None).await;
    let before = sandbox.connections_accepted();
    assert!(before >= 1);
    // Clones share one pool, so sequential calls from either ride the same keep-alive
    // connection.
    let clone = plaid.clone();
    for round in 0..10 {
        let api: &dyn PlaidApi = if round % 2 == 0 { &plaid } else { &clone };
        api.item_get(&ItemGetRequest::new(dup(&token)))
            .await
            .unwrap();
        api.accounts_get(&AccountsGetRequest::new(dup(&token)))
            .await
            .unwrap();
    }
    assert_eq!(
        sandbox.connections_accepted(),
        before,
        "20 sequential calls opened new connections"
    );
}
