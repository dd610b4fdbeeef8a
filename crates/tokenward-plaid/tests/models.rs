//! Wire models against JSON shaped like Plaid's spec: round-trips, unknown fields, unknown
//! enum values, raw tokens on the wire and placeholders everywhere else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::float_cmp,
    clippy::too_many_lines,
    clippy::unreadable_literal,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use chrono::{NaiveDate, TimeZone as _, Utc};
use serde_json::{Value, json};
use tokenward_plaid::models::{
    AccountSubtype, AccountType, AccountsBalanceGetRequest, AccountsGetRequest,
    AccountsGetResponse, CountryCode, Item, ItemAccessTokenInvalidateRequest,
    ItemAccessTokenInvalidateResponse, ItemGetRequest, ItemGetResponse,
    ItemPublicTokenExchangeRequest, ItemPublicTokenExchangeResponse, ItemRemoveReasonCode,
    ItemRemoveRequest, ItemRemoveResponse, ItemUpdateType, ItemWebhookUpdateRequest,
    ItemWebhookUpdateResponse, LinkTokenCreateRequest, LinkTokenCreateResponse,
    LinkTokenCreateUser, PaymentChannel, Product, SandboxItemFireWebhookRequest,
    SandboxItemFireWebhookResponse, SandboxItemResetLoginRequest, SandboxItemResetLoginResponse,
    SandboxPublicTokenCreateRequest, SandboxPublicTokenCreateResponse, SandboxWebhookCode,
    TransactionsGetRequest, TransactionsGetResponse, TransactionsSyncRequest,
    TransactionsSyncResponse, TransactionsUpdateStatus, WebhookType,
    WebhookVerificationKeyGetRequest, WebhookVerificationKeyGetResponse,
};
use tokenward_redact::{AccessToken, LinkToken, PublicToken};
use tokenward_testkit::canary;

fn access() -> AccessToken {
    AccessToken::new(canary::ACCESS_SANDBOX).unwrap()
}

fn item_json() -> Value {
    json!({
        "item_id": "DWVAAPWq4RHGlEaNyGKRTAnPLaEmo8Cvq7na6",
        "institution_id": "ins_109508",
        "institution_name": "First Platypus Bank",
        "webhook": "https://www.genericwebhookurl.com/webhook",
        "auth_method": "INSTANT_AUTH",
        "error": null,
        "available_products": ["balance", "identity", "a_product_from_the_future"],
        "billed_products": ["auth", "transactions"],
        "products": ["auth", "transactions"],
        "consented_products": ["auth", "transactions"],
        "consent_expiration_time": null,
        "update_type": "background",
        "a_new_field": {"nested": [1, 2, 3]}
    })
}

fn account_json(id: &str) -> Value {
    json!({
        "account_id": id,
        "balances": {
            "available": 100.0,
            "current": 110.5,
            "iso_currency_code": "USD",
            "limit": null,
            "unofficial_currency_code": null,
            "last_updated_datetime": "2023-04-01T10:20:30Z",
            "future_balance_field": true
        },
        "mask": "0000",
        "name": "Plaid Checking",
        "official_name": "Plaid Gold Standard 0% Interest Checking",
        "persistent_account_id": "8cfb8beb89b774ee43b090625f0d61d0814322b43bff984eaf60386e",
        "subtype": "checking",
        "type": "depository",
        "holder_category": "personal"
    })
}

fn transaction_json(id: &str) -> Value {
    json!({
        "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp",
        "account_owner": null,
        "amount": 72.1,
        "iso_currency_code": "USD",
        "unofficial_currency_code": null,
        "category": ["Shops", "Supermarkets and Groceries"],
        "category_id": "19046000",
        "check_number": null,
        "counterparties": [{
            "name": "Walmart",
            "type": "merchant",
            "logo_url": "https://plaid-merchant-logos.plaid.com/walmart_1100.png",
            "website": "walmart.com",
            "entity_id": "O5W5j4dN9OR3E6ypQmjdkWZZRoXEzVMz2ByWM",
            "confidence_level": "VERY_HIGH"
        }],
        "date": "2023-09-24",
        "datetime": "2023-09-24T11:01:01Z",
        "authorized_date": "2023-09-22",
        "authorized_datetime": "2023-09-22T10:34:50Z",
        "location": {
            "address": "13425 Community Rd",
            "city": "Poway",
            "region": "CA",
            "postal_code": "92064",
            "country": "US",
            "lat": 32.959068,
            "lon": -117.037666,
            "store_number": "1700"
        },
        "name": "PURCHASE WM SUPERCENTER #1700",
        "merchant_name": "Walmart",
        "merchant_entity_id": "O5W5j4dN9OR3E6ypQmjdkWZZRoXEzVMz2ByWM",
        "logo_url": "https://plaid-merchant-logos.plaid.com/walmart_1100.png",
        "website": "walmart.com",
        "payment_meta": {
            "by_order_of": null, "payee": null, "payer": null, "payment_method": null,
            "payment_processor": null, "ppd_id": null, "reason": null, "reference_number": null
        },
        "payment_channel": "in store",
        "pending": false,
        "pending_transaction_id": "no86Eox18VHMvaOVL7gPUM9ap3aR1LsAVZ5nc",
        "personal_finance_category": {
            "primary": "GENERAL_MERCHANDISE",
            "detailed": "GENERAL_MERCHANDISE_SUPERSTORES",
            "confidence_level": "VERY_HIGH",
            "version": "v2"
        },
        "personal_finance_category_icon_url": "https://plaid-category-icons.plaid.com/PFC_GENERAL_MERCHANDISE.png",
        "transaction_id": id,
        "transaction_code": null,
        "transaction_type": "place",
        "some_beta_field": "ignored"
    })
}

#[test]
fn transactions_sync_response_decodes_and_round_trips() {
    let body = json!({
        "accounts": [account_json("BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp")],
        "added": [transaction_json("lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDje")],
        "modified": [transaction_json("yhnUVvtcGGcCKU0bcz8PDQr5ZUxUXebUvbKC0")],
        "removed": [{"transaction_id": "CmdQTNgems8BT1B7ibkoUXVPyAeehT3Tmzk0l", "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp"}],
        "next_cursor": "tVUUL15lYQN5rBnfDIc1I8xudpGdIlw9nsgeXWvhOfkECvUeR663i3Dt1uf/94S8ASkitgLcIiOSqNwzzp+bh89kirazha5vuZHBb2ZA5NtCDkkV",
        "has_more": false,
        "request_id": "Wvhy9PZHQLV8njG",
        "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE"
    });
    let page: TransactionsSyncResponse = serde_json::from_value(body).unwrap();
    assert_eq!(
        page.transactions_update_status,
        TransactionsUpdateStatus::HistoricalUpdateComplete
    );
    assert_eq!(page.added.len(), 1);
    let t = &page.added[0];
    assert_eq!(t.amount, 72.1);
    assert_eq!(t.date, NaiveDate::from_ymd_opt(2023, 9, 24).unwrap());
    assert_eq!(
        t.datetime,
        Some(Utc.with_ymd_and_hms(2023, 9, 24, 11, 1, 1).unwrap())
    );
    assert_eq!(t.payment_channel, PaymentChannel::InStore);
    assert_eq!(t.location.city.as_deref(), Some("Poway"));
    assert_eq!(t.counterparties.as_ref().unwrap()[0].name, "Walmart");
    assert_eq!(
        page.removed[0].transaction_id,
        "CmdQTNgems8BT1B7ibkoUXVPyAeehT3Tmzk0l"
    );
    assert_eq!(page.accounts[0].account_type, AccountType::Depository);
    assert_eq!(page.accounts[0].subtype, Some(AccountSubtype::Checking));

    // Serialize and decode again: the same value.
    let again: TransactionsSyncResponse =
        serde_json::from_slice(&serde_json::to_vec(&page).unwrap()).unwrap();
    assert_eq!(again, page);
}

#[test]
fn unknown_enum_values_round_trip() {
    let mut account = account_json("a1");
    account["type"] = json!("spaceship");
    account["subtype"] = json!("warp drive");
    let mut txn = transaction_json("t1");
    txn["payment_channel"] = json!("telepathy");
    txn["transaction_code"] = json!("quantum");
    let body = json!({
        "accounts": [account],
        "transactions": [txn],
        "total_transactions": 1,
        "item": item_json(),
        "request_id": "45QSn"
    });
    let response: TransactionsGetResponse = serde_json::from_value(body).unwrap();
    assert_eq!(
        response.accounts[0].account_type,
        AccountType::Unknown("spaceship".into())
    );
    assert!(response.accounts[0].subtype.as_ref().unwrap().is_unknown());
    assert_eq!(
        response.transactions[0].payment_channel,
        PaymentChannel::Unknown("telepathy".into())
    );
    assert!(
        response
            .item
            .available_products
            .contains(&Product::Unknown("a_product_from_the_future".into()))
    );
    let out = serde_json::to_value(&response).unwrap();
    assert_eq!(out["accounts"][0]["type"], "spaceship");
    assert_eq!(out["accounts"][0]["subtype"], "warp drive");
    assert_eq!(out["transactions"][0]["payment_channel"], "telepathy");
    assert_eq!(out["transactions"][0]["transaction_code"], "quantum");
    assert_eq!(
        out["item"]["available_products"][2],
        "a_product_from_the_future"
    );
}

#[test]
fn open_enums_parse_known_strings_to_known_variants() {
    assert_eq!(Product::from("transactions"), Product::Transactions);
    assert_eq!(
        Product::from("transactions".to_owned()),
        Product::Transactions
    );
    assert_eq!(CountryCode::from("US"), CountryCode::Us);
    assert_eq!(AccountSubtype::from("401k"), AccountSubtype::Plan401k);
    assert_eq!(AccountSubtype::from("credit card").as_str(), "credit card");
    assert_eq!("ITEM".parse::<WebhookType>().unwrap(), WebhookType::Item);
    assert_eq!(
        SandboxWebhookCode::LoginRepaired.to_string(),
        "LOGIN_REPAIRED"
    );
    for known in Product::KNOWN {
        assert_eq!(&Product::from(known.as_str()), known);
        assert!(!known.is_unknown());
    }
    for known in AccountSubtype::KNOWN {
        assert_eq!(&AccountSubtype::from(known.as_str()), known);
    }
}

#[test]
fn item_get_response_with_consent_fields_and_status() {
    let mut item = item_json();
    item["created_at"] = json!("2019-01-22T04:32:00Z");
    item["consented_data_scopes"] = json!(["account_balance_info", "new_scope"]);
    item["consented_use_cases"] = json!(["Verify your account"]);
    item["error"] = json!({
        "error_type": "ITEM_ERROR",
        "error_code": "ITEM_LOGIN_REQUIRED",
        "error_message": "the login details of this item have changed",
        "display_message": "Please log in again",
        "request_id": null
    });
    let body = json!({
        "item": item,
        "status": {
            "transactions": {
                "last_successful_update": "2019-02-15T15:52:39Z",
                "last_failed_update": "2019-01-22T04:32:00Z"
            },
            "last_webhook": {"sent_at": "2019-02-15T15:53:00Z", "code_sent": "DEFAULT_UPDATE"}
        },
        "request_id": "m8MDnv9okwxFNBV"
    });
    let response: ItemGetResponse = serde_json::from_value(body).unwrap();
    assert_eq!(
        response.item.item.institution_id.as_deref(),
        Some("ins_109508")
    );
    assert_eq!(response.item.item.update_type, ItemUpdateType::Background);
    assert!(response.item.created_at.is_some());
    let error = response.item.item.error.as_ref().unwrap();
    assert!(error.is_login_required());
    let status = response.status.as_ref().unwrap();
    assert_eq!(
        status.last_webhook.as_ref().unwrap().code_sent.as_deref(),
        Some("DEFAULT_UPDATE")
    );
    let again: ItemGetResponse =
        serde_json::from_slice(&serde_json::to_vec(&response).unwrap()).unwrap();
    assert_eq!(again, response);
}

#[test]
fn accounts_get_and_balance_responses() {
    let body = json!({
        "accounts": [account_json("a1"), account_json("a2")],
        "item": item_json(),
        "request_id": "bkVE1BHWMAZ9Rnr"
    });
    let response: AccountsGetResponse = serde_json::from_value(body).unwrap();
    assert_eq!(response.accounts.len(), 2);
    assert_eq!(response.accounts[0].balances.current, Some(110.5));
    assert_eq!(response.accounts[0].balances.limit, None);
    let out = serde_json::to_value(&response).unwrap();
    // Required nullable fields stay present as null.
    assert_eq!(out["accounts"][0]["balances"]["limit"], Value::Null);
    assert_eq!(out["item"]["error"], Value::Null);
}

#[test]
fn every_request_writes_raw_tokens_on_the_wire_and_placeholders_in_debug() {
    let date = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let requests: Vec<(Box<dyn std::fmt::Debug>, Value, &str)> = vec![
        wire(
            LinkTokenCreateRequest::new(
                "Acme",
                "en",
                vec![CountryCode::Us],
                LinkTokenCreateUser::new("user-1").with_email_address("a@example.com"),
            )
            .with_products(vec![Product::Transactions])
            .with_access_token(access()),
            canary::ACCESS_SANDBOX,
        ),
        wire(
            ItemPublicTokenExchangeRequest::new(PublicToken::new(canary::PUBLIC_SANDBOX).unwrap()),
            canary::PUBLIC_SANDBOX,
        ),
        wire(AccountsGetRequest::new(access()), canary::ACCESS_SANDBOX),
        wire(
            AccountsBalanceGetRequest::new(access()),
            canary::ACCESS_SANDBOX,
        ),
        wire(
            TransactionsGetRequest::new(access(), date, date).with_page(100, 0),
            canary::ACCESS_SANDBOX,
        ),
        wire(
            TransactionsSyncRequest::new(access()).with_cursor("c1"),
            canary::ACCESS_SANDBOX,
        ),
        wire(ItemGetRequest::new(access()), canary::ACCESS_SANDBOX),
        wire(
            ItemRemoveRequest::new(access()).with_reason_code(ItemRemoveReasonCode::Other),
            canary::ACCESS_SANDBOX,
        ),
        wire(
            ItemAccessTokenInvalidateRequest::new(access()),
            canary::ACCESS_SANDBOX,
        ),
        wire(
            ItemWebhookUpdateRequest::new(access(), Some("https://example.com/hook".into())),
            canary::ACCESS_SANDBOX,
        ),
        wire(
            SandboxItemFireWebhookRequest::new(access(), SandboxWebhookCode::DefaultUpdate),
            canary::ACCESS_SANDBOX,
        ),
        wire(
            SandboxItemResetLoginRequest::new(access()),
            canary::ACCESS_SANDBOX,
        ),
    ];
    for (debug, body, token) in &requests {
        let text = body.to_string();
        assert!(text.contains(token), "wire body lacks the token: {text}");
        let debug = format!("{debug:?}");
        assert!(!debug.contains(token), "Debug leaks: {debug}");
        assert!(debug.contains("[REDACTED:plaid."), "{debug}");
    }
}

fn wire<T>(request: T, token: &'static str) -> (Box<dyn std::fmt::Debug>, Value, &'static str)
where
    T: serde::Serialize + std::fmt::Debug + 'static,
{
    let body = serde_json::to_value(&request).unwrap();
    (Box::new(request), body, token)
}

#[test]
fn requests_parse_back_from_their_wire_form() {
    let request = ItemWebhookUpdateRequest::new(access(), None);
    let body = serde_json::to_string(&request).unwrap();
    assert_eq!(
        body,
        format!(
            r#"{{"access_token":"{}","webhook":null}}"#,
            canary::ACCESS_SANDBOX
        )
    );
    let back: ItemWebhookUpdateRequest = serde_json::from_str(&body).unwrap();
    assert!(back.access_token == request.access_token);
    assert_eq!(back.webhook, None);

    let sync = TransactionsSyncRequest::new(access())
        .with_count(500)
        .with_account_id("a1");
    let back: TransactionsSyncRequest =
        serde_json::from_slice(&serde_json::to_vec(&sync).unwrap()).unwrap();
    assert_eq!(back.count, Some(500));
    assert_eq!(back.options.unwrap().account_id.as_deref(), Some("a1"));

    let sandbox = SandboxPublicTokenCreateRequest::new("ins_109508", vec![Product::Transactions])
        .with_credentials("user_good", "pass_good");
    let body = serde_json::to_value(&sandbox).unwrap();
    assert_eq!(body["options"]["override_password"], "pass_good");
    assert!(!format!("{sandbox:?}").contains("pass_good"));
    let back: SandboxPublicTokenCreateRequest = serde_json::from_value(body).unwrap();
    assert_eq!(back.initial_products, vec![Product::Transactions]);
}

#[test]
fn a_redacted_request_is_refused_not_sent() {
    // A request body that went through a log carries placeholders; parsing it back fails.
    let logged = serde_json::to_string(&serde_json::json!({
        "access_token": "[REDACTED:plaid.access_token]"
    }))
    .unwrap();
    let err = serde_json::from_str::<ItemGetRequest>(&logged).unwrap_err();
    assert!(err.to_string().contains("placeholder"));
}

#[test]
fn token_bearing_responses_redact_by_default_and_have_a_wire_form() {
    let exchange = ItemPublicTokenExchangeResponse::new(access(), "item-1", "req-1");
    check_token_response(
        &exchange,
        &exchange.to_wire_json().unwrap(),
        canary::ACCESS_SANDBOX,
    );
    let back: ItemPublicTokenExchangeResponse =
        serde_json::from_slice(&exchange.to_wire_json().unwrap()).unwrap();
    assert!(back.access_token == exchange.access_token);
    assert_eq!(back.item_id, "item-1");

    let invalidate = ItemAccessTokenInvalidateResponse::new(
        AccessToken::new(canary::ACCESS_PRODUCTION).unwrap(),
        "req-2",
    );
    check_token_response(
        &invalidate,
        &invalidate.to_wire_json().unwrap(),
        canary::ACCESS_PRODUCTION,
    );

    let sandbox = SandboxPublicTokenCreateResponse::new(
        PublicToken::new(canary::PUBLIC_SANDBOX).unwrap(),
        "req-3",
    );
    check_token_response(
        &sandbox,
        &sandbox.to_wire_json().unwrap(),
        canary::PUBLIC_SANDBOX,
    );

    let expiration = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    let link = LinkTokenCreateResponse::new(
        LinkToken::new(canary::LINK_SANDBOX).unwrap(),
        expiration,
        "req-4",
    );
    let wire = link.to_wire_json().unwrap();
    check_token_response(&link, &wire, canary::LINK_SANDBOX);
    let back: LinkTokenCreateResponse = serde_json::from_slice(&wire).unwrap();
    assert_eq!(back.expiration, expiration);
}

fn check_token_response<T>(response: &T, wire: &[u8], token: &str)
where
    T: serde::Serialize + std::fmt::Debug,
{
    let wire = std::str::from_utf8(wire).unwrap();
    assert!(wire.contains(token), "{wire}");
    let debug = format!("{response:?}");
    assert!(!debug.contains(token), "{debug}");
    let serialized = serde_json::to_string(response).unwrap();
    assert!(!serialized.contains(token), "{serialized}");
    assert!(serialized.contains("[REDACTED:plaid."), "{serialized}");
}

#[test]
fn small_responses() {
    let remove: ItemRemoveResponse =
        serde_json::from_str(r#"{"request_id":"m8MDnv9okwxFNBV","extra":1}"#).unwrap();
    assert_eq!(remove.request_id, "m8MDnv9okwxFNBV");
    let fired: SandboxItemFireWebhookResponse =
        serde_json::from_str(r#"{"webhook_fired":true,"request_id":"1vwmF5TBQwiqfwP"}"#).unwrap();
    assert!(fired.webhook_fired);
    let reset: SandboxItemResetLoginResponse =
        serde_json::from_str(r#"{"reset_login":true,"request_id":"m8MDnv9okwxFNBV"}"#).unwrap();
    assert!(reset.reset_login);
    let update: ItemWebhookUpdateResponse =
        serde_json::from_value(json!({"item": item_json(), "request_id": "vYK11LNTfRoAMbj"}))
            .unwrap();
    assert_eq!(
        update.item.institution_name.as_deref(),
        Some("First Platypus Bank")
    );
    let built = Item::new("item-2", ItemUpdateType::UserPresentRequired);
    let value = serde_json::to_value(&built).unwrap();
    assert_eq!(value["update_type"], "user_present_required");
    assert_eq!(value["webhook"], Value::Null);
}

#[test]
fn webhook_verification_key_models() {
    let request = WebhookVerificationKeyGetRequest::new("bfbd5111-8e33-4643-8ced-b2e642a72f3c");
    assert_eq!(
        serde_json::to_string(&request).unwrap(),
        r#"{"key_id":"bfbd5111-8e33-4643-8ced-b2e642a72f3c"}"#
    );
    // The example from Plaid's webhook verification docs.
    let body = r#"{"key": {"alg": "ES256", "created_at": 1560466150, "crv": "P-256",
        "expired_at": null, "kid": "bfbd5111-8e33-4643-8ced-b2e642a72f3c", "kty": "EC",
        "use": "sig", "x": "hKXLGIjWvCBv-cP5euCTxl8g9GLG9zHo_3pO5NN1DwQ",
        "y": "shhexqPB7YffGn6fR6h2UhTSuCtPmfzQJ6ENVIoO4Ys"}, "request_id": "RZ6Omi1bzzwDaLo"}"#;
    let response: WebhookVerificationKeyGetResponse = serde_json::from_str(body).unwrap();
    assert_eq!(response.key.kid, "bfbd5111-8e33-4643-8ced-b2e642a72f3c");
    assert_eq!(response.key.expired_at, None);
    assert_eq!(response.request_id, "RZ6Omi1bzzwDaLo");
}

#[test]
fn fire_webhook_request_shape() {
    let request = SandboxItemFireWebhookRequest::new(
        access(),
        SandboxWebhookCode::Unknown("NEW_CODE".into()),
    )
    .with_webhook_type(WebhookType::Transactions);
    let body = serde_json::to_value(&request).unwrap();
    assert_eq!(body["webhook_code"], "NEW_CODE");
    assert_eq!(body["webhook_type"], "TRANSACTIONS");
}
