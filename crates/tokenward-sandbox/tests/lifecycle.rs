//! Every endpoint's happy path and the whole token lifecycle, over loopback HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::too_many_lines,
    clippy::struct_field_names,
    missing_docs,
    reason = "test code"
)]

mod common;

use std::collections::{HashMap, HashSet};

use chrono::{TimeZone as _, Utc};
use common::{Client, assert_error, assert_no_leaks};
use serde_json::{Value, json};
use tokenward_sandbox::{ManualClock, Sandbox};

async fn sandbox_at_fixed_time() -> (Sandbox, ManualClock) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2024, 6, 30, 12, 0, 0).unwrap());
    let sandbox = Sandbox::builder()
        .clock(clock.clone())
        .seed(42)
        .start()
        .await
        .unwrap();
    (sandbox, clock)
}

#[tokio::test]
async fn full_lifecycle() {
    let (sandbox, _clock) = sandbox_at_fixed_time().await;
    let client = Client::new(&sandbox);

    // Link token.
    let (status, link) = client
        .post(
            "/link/token/create",
            &json!({
                "client_name": "Tokenward Test",
                "language": "en",
                "country_codes": ["US"],
                "user": {"client_user_id": "user-1"},
                "products": ["transactions"],
            }),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let link_token = link["link_token"].as_str().unwrap();
    assert!(link_token.starts_with("link-sandbox-"));
    assert_eq!(link["expiration"], "2024-06-30T16:00:00Z");

    // Public token → access token.
    let (access_token, item_id) = client.link_item(None).await;
    assert!(access_token.starts_with("access-sandbox-"));
    assert_eq!(access_token.len(), "access-sandbox-".len() + 36);
    assert_eq!(item_id.len(), 37);

    // Accounts and balances.
    let (status, accounts) = client
        .post("/accounts/get", &json!({"access_token": access_token}))
        .await;
    assert_eq!(status, 200, "{accounts}");
    let list = accounts["accounts"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["subtype"], "checking");
    assert_eq!(list[1]["subtype"], "savings");
    assert_eq!(list[2]["type"], "credit");
    assert_eq!(list[0]["mask"].as_str().unwrap().len(), 4);
    assert!(list[0]["balances"]["current"].is_number());
    assert!(list[0]["balances"]["last_updated_datetime"].is_null());
    assert_eq!(accounts["item"]["item_id"], item_id.as_str());
    assert_eq!(accounts["item"]["institution_id"], "ins_109508");
    let checking = list[0]["account_id"].as_str().unwrap().to_owned();

    let (status, balance) = client
        .post(
            "/accounts/balance/get",
            &json!({"access_token": access_token, "options": {"account_ids": [checking]}}),
        )
        .await;
    assert_eq!(status, 200, "{balance}");
    assert_eq!(balance["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(
        balance["accounts"][0]["balances"]["last_updated_datetime"],
        "2024-06-30T12:00:00Z"
    );

    // Transactions: the same on every call, paginated by count/offset.
    let range =
        json!({"access_token": access_token, "start_date": "2022-07-01", "end_date": "2024-06-30"});
    let (status, first) = client.post("/transactions/get", &range).await;
    assert_eq!(status, 200, "{first}");
    let total = first["total_transactions"].as_u64().unwrap();
    assert!(total > 300, "{total}");
    assert_eq!(first["transactions"].as_array().unwrap().len(), 100);
    let mut all: Vec<Value> = Vec::new();
    let mut offset = 0;
    while offset < total {
        let mut body = range.clone();
        body["options"] = json!({"count": 250, "offset": offset});
        let (status, page) = client.post("/transactions/get", &body).await;
        assert_eq!(status, 200);
        assert_eq!(page["total_transactions"], total);
        let txns = page["transactions"].as_array().unwrap();
        assert!(!txns.is_empty());
        offset += txns.len() as u64;
        all.extend(txns.iter().cloned());
    }
    assert_eq!(all.len() as u64, total);
    let dates: Vec<&str> = all.iter().map(|t| t["date"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let ids: HashSet<&str> = all
        .iter()
        .map(|t| t["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), all.len());
    let txn = &all[0];
    for field in [
        "account_id",
        "amount",
        "iso_currency_code",
        "name",
        "pending",
        "payment_channel",
        "personal_finance_category",
        "location",
        "payment_meta",
        "authorized_date",
        "transaction_type",
    ] {
        assert!(txn.get(field).is_some(), "missing {field}");
    }
    // A narrower date range has fewer.
    let (_, june) = client
        .post(
            "/transactions/get",
            &json!({"access_token": access_token, "start_date": "2024-06-01", "end_date": "2024-06-30"}),
        )
        .await;
    let june_total = june["total_transactions"].as_u64().unwrap();
    assert!(june_total > 5 && june_total < 100, "{june_total}");
    assert!(
        june["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["date"].as_str().unwrap() >= "2024-06-01")
    );

    // Sync from the start, in pages.
    let mut cursor = String::new();
    let mut synced: HashMap<String, Value> = HashMap::new();
    let mut pages = 0;
    loop {
        let (status, page) = client
            .post(
                "/transactions/sync",
                &json!({"access_token": access_token, "cursor": cursor, "count": 200}),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for t in page["added"].as_array().unwrap() {
            synced.insert(t["transaction_id"].as_str().unwrap().to_owned(), t.clone());
        }
        assert!(page["modified"].as_array().unwrap().is_empty());
        assert!(page["removed"].as_array().unwrap().is_empty());
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert!(pages >= 2);
    // Sync covers the whole history, of which /transactions/get saw the last two years.
    assert!(synced.len() as u64 >= total);
    for t in &all {
        assert!(synced.contains_key(t["transaction_id"].as_str().unwrap()));
    }
    // Caught up: an empty page with the same position.
    let (_, empty) = client
        .post(
            "/transactions/sync",
            &json!({"access_token": access_token, "cursor": cursor}),
        )
        .await;
    assert!(empty["added"].as_array().unwrap().is_empty());
    assert_eq!(empty["has_more"], false);

    // New activity: added, modified, removed after the cursor.
    let added = sandbox
        .emulator()
        .simulate_transactions_update(&item_id)
        .unwrap();
    assert!(added >= 2);
    let (_, update) = client
        .post(
            "/transactions/sync",
            &json!({"access_token": access_token, "cursor": cursor}),
        )
        .await;
    assert_eq!(update["added"].as_array().unwrap().len(), added);
    assert_eq!(update["modified"].as_array().unwrap().len(), 1);
    let removed = update["removed"].as_array().unwrap();
    assert!(!removed.is_empty());
    for r in removed {
        let id = r["transaction_id"].as_str().unwrap();
        assert!(
            synced[id]["pending"].as_bool().unwrap(),
            "only pending ones are removed"
        );
        assert!(
            update["added"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["pending_transaction_id"] == id)
        );
    }

    // /item/get.
    let (status, item) = client
        .post("/item/get", &json!({"access_token": access_token}))
        .await;
    assert_eq!(status, 200, "{item}");
    assert_eq!(item["item"]["item_id"], item_id.as_str());
    assert!(item["item"]["error"].is_null());
    assert_eq!(item["item"]["created_at"], "2024-06-30T12:00:00Z");

    // Rotation: the old token is rejected from then on, the new one works.
    let (status, rotated) = client
        .post(
            "/item/access_token/invalidate",
            &json!({"access_token": access_token}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_token = rotated["new_access_token"].as_str().unwrap().to_owned();
    assert!(new_token.starts_with("access-sandbox-"));
    assert_ne!(new_token, access_token);
    for path in [
        "/item/get",
        "/accounts/get",
        "/item/access_token/invalidate",
        "/item/remove",
    ] {
        let result = client
            .post(path, &json!({"access_token": access_token}))
            .await;
        assert_error(&result, 400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN");
    }
    let (status, item_again) = client
        .post("/item/get", &json!({"access_token": new_token}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(item_again["item"]["item_id"], item_id.as_str());
    // The cursor is bound to the Item, not the token: it still works after rotation.
    let (status, _) = client
        .post(
            "/transactions/sync",
            &json!({"access_token": new_token, "cursor": cursor}),
        )
        .await;
    assert_eq!(status, 200);

    // Removal.
    let (status, removed) = client
        .post("/item/remove", &json!({"access_token": new_token}))
        .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(sandbox.emulator().item_count(), 0);
    let result = client
        .post("/item/get", &json!({"access_token": new_token}))
        .await;
    assert_error(&result, 400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN");

    assert_no_leaks(&client.seen(), common::SECRET, &[&access_token, &new_token]);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn data_is_deterministic_for_a_seed_and_clock() {
    let (a, _) = sandbox_at_fixed_time().await;
    let (b, _) = sandbox_at_fixed_time().await;
    let (ca, cb) = (Client::new(&a), Client::new(&b));
    let (ta, ia) = ca.link_item(None).await;
    let (tb, ib) = cb.link_item(None).await;
    assert_eq!(ia, ib, "item ids come from the seed");
    assert_ne!(ta, tb, "tokens are random");
    let body =
        |t: &str| json!({"access_token": t, "start_date": "2024-01-01", "end_date": "2024-06-30"});
    let (_, xa) = ca.post("/transactions/get", &body(&ta)).await;
    let (_, xb) = cb.post("/transactions/get", &body(&tb)).await;
    assert_eq!(xa["transactions"], xb["transactions"]);
    assert_eq!(xa["accounts"], xb["accounts"]);
}

#[tokio::test]
async fn credentials_in_the_body_work_too() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    let body = json!({
        "client_id": common::CLIENT_ID,
        "secret": common::SECRET,
        "institution_id": "ins_109508",
        "initial_products": ["auth", "transactions"],
    });
    let (status, value) = client
        .post_raw(
            "/sandbox/public_token/create",
            &[],
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{value}");
    assert!(
        value["public_token"]
            .as_str()
            .unwrap()
            .starts_with("public-sandbox-")
    );
    assert_no_leaks(&client.seen(), common::SECRET, &[]);
}

#[tokio::test]
async fn webhook_key_and_sandbox_helpers() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    let kid = sandbox.emulator().webhook_key_id();
    let (status, key) = client
        .post("/webhook_verification_key/get", &json!({"key_id": kid}))
        .await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(key["key"]["kid"], kid.as_str());
    assert_eq!(key["key"]["alg"], "ES256");
    assert_eq!(key["key"]["crv"], "P-256");
    assert_eq!(key["key"]["kty"], "EC");
    assert_eq!(key["key"]["use"], "sig");
    assert!(key["key"]["expired_at"].is_null());
    assert!(key["key"]["created_at"].is_i64());

    let (token, _) = client.link_item(None).await;
    let (status, reset) = client
        .post("/sandbox/item/reset_login", &json!({"access_token": token}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(reset["reset_login"], true);
    for path in [
        "/accounts/get",
        "/accounts/balance/get",
        "/transactions/sync",
    ] {
        let result = client.post(path, &json!({"access_token": token})).await;
        assert_error(&result, 400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED");
        assert!(result.1["display_message"].is_string());
    }
    let result = client
        .post(
            "/transactions/get",
            &json!({"access_token": token, "start_date": "2024-01-01", "end_date": "2024-01-31"}),
        )
        .await;
    assert_error(&result, 400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED");
    // /item/get still works and reports the error on the Item.
    let (status, item) = client
        .post("/item/get", &json!({"access_token": token}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(item["item"]["error"]["error_code"], "ITEM_LOGIN_REQUIRED");
    assert_eq!(item["item"]["error"]["error_type"], "ITEM_ERROR");
    // Invalidate and webhook update still work while a login is required.
    let (status, _) = client
        .post(
            "/item/webhook/update",
            &json!({"access_token": token, "webhook": null}),
        )
        .await;
    assert_eq!(status, 200);
    // Repair.
    let item_id = item["item"]["item_id"].as_str().unwrap();
    sandbox.emulator().repair_login(item_id).unwrap();
    let (status, _) = client
        .post("/accounts/get", &json!({"access_token": token}))
        .await;
    assert_eq!(status, 200);
    assert_no_leaks(&client.seen(), common::SECRET, &[&token]);
}

#[tokio::test]
async fn expired_tokens_and_link_update_mode() {
    let (sandbox, clock) = sandbox_at_fixed_time().await;
    let client = Client::new(&sandbox);
    let (token, _) = client.link_item(None).await;
    // Update mode: a link token for an existing Item.
    let body = json!({
        "client_name": "x", "language": "en", "country_codes": ["US"],
        "user": {"client_user_id": "u"}, "access_token": token,
    });
    let (status, _) = client.post("/link/token/create", &body).await;
    assert_eq!(status, 200);

    let (_, created) = client
        .post(
            "/sandbox/public_token/create",
            &json!({"institution_id": "ins_109509", "initial_products": ["transactions"]}),
        )
        .await;
    let public_token = created["public_token"].as_str().unwrap().to_owned();
    clock.advance(std::time::Duration::from_secs(30 * 60 + 1));
    let result = client
        .post(
            "/item/public_token/exchange",
            &json!({"public_token": public_token}),
        )
        .await;
    assert_error(&result, 400, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN");
    assert!(!result.1.to_string().contains(&public_token));
}
