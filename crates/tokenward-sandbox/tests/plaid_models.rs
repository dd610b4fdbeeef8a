//! Every emulator response parses as the matching `tokenward-plaid` wire model, and every
//! error as `PlaidError`: the emulator and our client agree on the wire.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::too_many_lines,
    missing_docs,
    reason = "test code"
)]

mod common;

use std::time::Duration;

use common::Client;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokenward_plaid::PlaidError;
use tokenward_plaid::models::{
    AccountsBalanceGetResponse, AccountsGetResponse, ItemAccessTokenInvalidateResponse,
    ItemGetResponse, ItemPublicTokenExchangeResponse, ItemRemoveResponse,
    ItemWebhookUpdateResponse, LinkTokenCreateResponse, SandboxItemFireWebhookResponse,
    SandboxItemResetLoginResponse, SandboxPublicTokenCreateResponse, TransactionsGetResponse,
    TransactionsSyncResponse, WebhookVerificationKeyGetResponse,
};
use tokenward_sandbox::Sandbox;

fn parse<T: DeserializeOwned>(what: &str, (status, body): (u16, Value)) -> T {
    assert_eq!(status, 200, "{what}: {body}");
    match serde_json::from_value::<T>(body) {
        Ok(parsed) => parsed,
        Err(error) => panic!("{what} does not parse as the plaid model: {error}"),
    }
}

#[tokio::test]
async fn responses_parse_as_plaid_models() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);

    let _: LinkTokenCreateResponse = parse(
        "link token",
        client
            .post(
                "/link/token/create",
                &json!({"client_name": "x", "language": "en", "country_codes": ["US"],
                        "user": {"client_user_id": "u"}}),
            )
            .await,
    );
    let created: SandboxPublicTokenCreateResponse = parse(
        "public token",
        client
            .post(
                "/sandbox/public_token/create",
                &json!({"institution_id": "ins_109508", "initial_products": ["transactions"],
                        "options": {"webhook": "http://127.0.0.1:9/hook"}}),
            )
            .await,
    );
    let _ = created;
    let (token, _) = client.link_item(None).await;
    let body = json!({"access_token": token});

    let accounts: AccountsGetResponse =
        parse("accounts", client.post("/accounts/get", &body).await);
    let _ = accounts;
    let _: AccountsBalanceGetResponse =
        parse("balance", client.post("/accounts/balance/get", &body).await);
    let _: TransactionsGetResponse = parse(
        "transactions/get",
        client
            .post(
                "/transactions/get",
                &json!({"access_token": token, "start_date": "2020-01-01", "end_date": "2030-01-01",
                        "options": {"count": 500}}),
            )
            .await,
    );
    let _: TransactionsSyncResponse = parse(
        "transactions/sync",
        client
            .post(
                "/transactions/sync",
                &json!({"access_token": token, "count": 500}),
            )
            .await,
    );
    let _: ItemGetResponse = parse("item", client.post("/item/get", &body).await);
    let kid = sandbox.emulator().webhook_key_id();
    let _: WebhookVerificationKeyGetResponse = parse(
        "key",
        client
            .post("/webhook_verification_key/get", &json!({"key_id": kid}))
            .await,
    );
    sandbox.rotate_webhook_key().unwrap();
    let _: WebhookVerificationKeyGetResponse = parse(
        "expired key",
        client
            .post("/webhook_verification_key/get", &json!({"key_id": kid}))
            .await,
    );
    let _: ItemWebhookUpdateResponse = parse(
        "webhook update",
        client
            .post(
                "/item/webhook/update",
                &json!({"access_token": token, "webhook": "http://127.0.0.1:9/h"}),
            )
            .await,
    );
    let _: SandboxItemFireWebhookResponse = parse(
        "fire webhook",
        client
            .post(
                "/sandbox/item/fire_webhook",
                &json!({"access_token": token, "webhook_code": "SYNC_UPDATES_AVAILABLE"}),
            )
            .await,
    );
    // After an update, sync has added, modified and removed entries.
    let _: TransactionsSyncResponse = parse(
        "transactions/sync with changes",
        client
            .post(
                "/transactions/sync",
                &json!({"access_token": token, "count": 500}),
            )
            .await,
    );
    let _: SandboxItemResetLoginResponse = parse(
        "reset login",
        client.post("/sandbox/item/reset_login", &body).await,
    );
    let item: ItemGetResponse = parse("item in error", client.post("/item/get", &body).await);
    let _ = item;
    let error = client.post("/accounts/get", &body).await;
    let parsed: PlaidError = serde_json::from_value(error.1).expect("PlaidError");
    let _ = parsed;
    let rotated: ItemAccessTokenInvalidateResponse = parse(
        "invalidate",
        client.post("/item/access_token/invalidate", &body).await,
    );
    let new_token = rotated.new_access_token.expose_secret().to_owned();
    let _: ItemRemoveResponse = parse(
        "remove",
        client
            .post("/item/remove", &json!({"access_token": new_token}))
            .await,
    );

    // Every error shape parses too.
    for (path, request) in [
        ("/item/get", json!({})),
        ("/item/get", json!({"access_token": token})),
        (
            "/item/public_token/exchange",
            json!({"public_token": "public-sandbox-x"}),
        ),
        ("/webhook_verification_key/get", json!({"key_id": "nope"})),
    ] {
        let (status, body) = client.post(path, &request).await;
        assert_eq!(status, 400);
        serde_json::from_value::<PlaidError>(body).expect("PlaidError");
    }
    let exchanged: ItemPublicTokenExchangeResponse = {
        let (_, created) = client
            .post(
                "/sandbox/public_token/create",
                &json!({"institution_id": "ins_109508", "initial_products": ["auth"]}),
            )
            .await;
        parse(
            "exchange",
            client
                .post(
                    "/item/public_token/exchange",
                    &json!({"public_token": created["public_token"]}),
                )
                .await,
        )
    };
    let _ = exchanged;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
