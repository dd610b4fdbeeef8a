//! Error paths: malformed requests, credentials, unknown and dead tokens, limits and caps,
//! and the leak canaries over all of them.
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

use common::{CLIENT_ID, Client, SECRET, assert_error, assert_no_leaks};
use serde_json::json;
use tokenward_redact::{ClientId, ClientSecret};
use tokenward_sandbox::{Limits, Sandbox};
use tokenward_testkit::canary;

#[tokio::test]
async fn malformed_requests() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    let creds = [("PLAID-CLIENT-ID", CLIENT_ID), ("PLAID-SECRET", SECRET)];

    // Not JSON, not an object. The body holds a token: the error must not echo it.
    let garbage = format!("{{\"access_token\": \"{}\"", canary::ACCESS_SANDBOX);
    let result = client
        .post_raw("/item/get", &creds, garbage.into_bytes())
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_BODY");
    let result = client
        .post_raw("/item/get", &creds, b"[1,2]".to_vec())
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_BODY");

    // Missing fields, listed by name.
    let result = client.post("/item/get", &json!({})).await;
    assert_error(&result, 400, "INVALID_REQUEST", "MISSING_FIELDS");
    assert!(
        result.1["error_message"]
            .as_str()
            .unwrap()
            .contains("access_token")
    );
    let result = client
        .post(
            "/transactions/get",
            &json!({"access_token": canary::ACCESS_SANDBOX}),
        )
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "MISSING_FIELDS");
    let message = result.1["error_message"].as_str().unwrap();
    assert!(
        message.contains("start_date") && message.contains("end_date"),
        "{message}"
    );
    let result = client
        .post("/link/token/create", &json!({"client_name": "x"}))
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "MISSING_FIELDS");

    // Wrong types and values: errors name the field, never the value.
    let result = client.post("/item/get", &json!({"access_token": 7})).await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_FIELD");
    let (token, _) = client.link_item(None).await;
    let result = client
        .post(
            "/transactions/get",
            &json!({"access_token": token, "start_date": canary::ACCESS_SANDBOX, "end_date": "2024-01-01"}),
        )
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_FIELD");
    assert!(!result.1.to_string().contains(canary::ACCESS_SANDBOX));
    let result = client
        .post(
            "/transactions/get",
            &json!({"access_token": token, "start_date": "2024-02-01", "end_date": "2024-01-01"}),
        )
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_FIELD");
    let result = client
        .post(
            "/transactions/get",
            &json!({"access_token": token, "start_date": "2024-01-01", "end_date": "2024-02-01",
                    "options": {"count": 501}}),
        )
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_FIELD");
    let result = client
        .post(
            "/transactions/sync",
            &json!({"access_token": token, "count": canary::PLAID_SECRET}),
        )
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_FIELD");
    let result = client
        .post(
            "/accounts/get",
            &json!({"access_token": token, "options": {"account_ids": ["nope"]}}),
        )
        .await;
    assert_error(&result, 400, "INVALID_INPUT", "INVALID_ACCOUNT_ID");
    let result = client
        .post(
            "/sandbox/public_token/create",
            &json!({"institution_id": "not-an-institution", "initial_products": ["transactions"]}),
        )
        .await;
    assert_error(&result, 400, "INVALID_INPUT", "INVALID_INSTITUTION");
    let result = client
        .post(
            "/sandbox/public_token/create",
            &json!({"institution_id": "ins_109508", "initial_products": ["teleportation"]}),
        )
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_FIELD");
    let result = client
        .post(
            "/item/webhook/update",
            &json!({"access_token": token, "webhook": "not a url"}),
        )
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_FIELD");

    // Cursors are validated: tampered, foreign or made up.
    let (_, page) = client
        .post(
            "/transactions/sync",
            &json!({"access_token": token, "count": 10}),
        )
        .await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (other_token, _) = client.link_item(None).await;
    for (t, c) in [
        (&token, tampered.as_str()),
        (&other_token, cursor.as_str()),
        (&token, "garbage"),
    ] {
        let result = client
            .post(
                "/transactions/sync",
                &json!({"access_token": t, "cursor": c}),
            )
            .await;
        assert_error(&result, 400, "INVALID_REQUEST", "INVALID_FIELD");
    }

    // Unknown routes and methods.
    let result = client.post("/nope", &json!({})).await;
    assert_error(&result, 404, "INVALID_REQUEST", "NOT_FOUND");
    let response = client
        .http
        .get(format!("{}/item/get", client.base))
        .send()
        .await
        .unwrap();
    let result = client.record("/item/get", response).await;
    assert_error(&result, 405, "INVALID_REQUEST", "INVALID_HTTP_METHOD");

    assert_no_leaks(
        &client.seen(),
        SECRET,
        &[&token, &other_token, canary::ACCESS_SANDBOX],
    );
}

#[tokio::test]
async fn unknown_and_dead_tokens() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    for path in [
        "/accounts/get",
        "/accounts/balance/get",
        "/transactions/sync",
        "/item/get",
        "/item/remove",
        "/item/access_token/invalidate",
        "/item/webhook/update",
        "/sandbox/item/reset_login",
    ] {
        let result = client
            .post(path, &json!({"access_token": canary::ACCESS_SANDBOX}))
            .await;
        assert_error(&result, 400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN");
    }
    let result = client
        .post(
            "/sandbox/item/fire_webhook",
            &json!({"access_token": canary::ACCESS_SANDBOX, "webhook_code": "DEFAULT_UPDATE"}),
        )
        .await;
    assert_error(&result, 400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN");
    let result = client
        .post(
            "/item/public_token/exchange",
            &json!({"public_token": canary::PUBLIC_SANDBOX}),
        )
        .await;
    assert_error(&result, 400, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN");

    // A public token works once.
    let (_, created) = client
        .post(
            "/sandbox/public_token/create",
            &json!({"institution_id": "ins_109508", "initial_products": ["transactions"]}),
        )
        .await;
    let public_token = created["public_token"].as_str().unwrap().to_owned();
    let (status, first) = client
        .post(
            "/item/public_token/exchange",
            &json!({"public_token": public_token}),
        )
        .await;
    assert_eq!(status, 200);
    let result = client
        .post(
            "/item/public_token/exchange",
            &json!({"public_token": public_token}),
        )
        .await;
    assert_error(&result, 400, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN");
    assert!(!result.1.to_string().contains(&public_token));

    // Unknown webhook key id.
    let result = client
        .post("/webhook_verification_key/get", &json!({"key_id": "nope"}))
        .await;
    assert_error(
        &result,
        400,
        "INVALID_INPUT",
        "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
    );

    // Firing a webhook needs a webhook URL on the Item.
    let token = first["access_token"].as_str().unwrap().to_owned();
    let result = client
        .post(
            "/sandbox/item/fire_webhook",
            &json!({"access_token": token, "webhook_code": "DEFAULT_UPDATE"}),
        )
        .await;
    assert_error(&result, 400, "SANDBOX_ERROR", "SANDBOX_WEBHOOK_INVALID");
    let result = client
        .post(
            "/sandbox/item/fire_webhook",
            &json!({"access_token": token, "webhook_code": "NOT_A_CODE"}),
        )
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "INVALID_FIELD");

    assert_no_leaks(&client.seen(), SECRET, &[&token, canary::ACCESS_SANDBOX]);
}

#[tokio::test]
async fn credentials() {
    let client_id = ClientId::new(CLIENT_ID).unwrap();
    let secret = ClientSecret::new(SECRET).unwrap();
    let sandbox = Sandbox::builder()
        .credentials(&client_id, &secret)
        .start()
        .await
        .unwrap();
    let mut client = Client::new(&sandbox);

    // The right pair works, in headers or the body.
    let (status, _) = client
        .post("/webhook_verification_key/get", &json!({"key_id": "x"}))
        .await;
    assert_eq!(status, 400, "reaches the endpoint");
    let body = json!({"client_id": CLIENT_ID, "secret": SECRET, "key_id": sandbox.emulator().webhook_key_id()});
    let (status, _) = client
        .post_raw(
            "/webhook_verification_key/get",
            &[],
            serde_json::to_vec(&body).unwrap(),
        )
        .await;
    assert_eq!(status, 200);

    // Missing credentials.
    let result = client.post_raw("/item/get", &[], b"{}".to_vec()).await;
    assert_error(&result, 400, "INVALID_REQUEST", "MISSING_FIELDS");
    let message = result.1["error_message"].as_str().unwrap();
    assert!(
        message.contains("client_id") && message.contains("secret"),
        "{message}"
    );
    let result = client
        .post_raw(
            "/item/get",
            &[("PLAID-CLIENT-ID", CLIENT_ID)],
            b"{}".to_vec(),
        )
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "MISSING_FIELDS");

    // A wrong secret, a wrong client id, a secret of another length.
    let wrong_secret = "q8w7e6r5t4y3u2i1o0p9a8s7d6f5g5";
    for (id, secret) in [
        (CLIENT_ID, wrong_secret),
        ("5f1c2b3a4d5e6f7a8b9c0d1f", SECRET),
        (CLIENT_ID, "short"),
    ] {
        client.client_id = id.to_owned();
        client.secret = secret.to_owned();
        let result = client
            .post(
                "/item/get",
                &json!({"access_token": canary::ACCESS_SANDBOX}),
            )
            .await;
        assert_error(&result, 400, "INVALID_INPUT", "INVALID_API_KEYS");
    }
    // Body credentials are checked as strictly.
    let body = json!({"client_id": CLIENT_ID, "secret": wrong_secret, "access_token": canary::ACCESS_SANDBOX});
    let result = client
        .post_raw("/item/get", &[], serde_json::to_vec(&body).unwrap())
        .await;
    assert_error(&result, 400, "INVALID_INPUT", "INVALID_API_KEYS");

    let seen = client.seen();
    assert_no_leaks(&seen, SECRET, &[canary::ACCESS_SANDBOX]);
    assert!(seen.iter().all(|s| !s.body.contains(wrong_secret)));
}

#[tokio::test]
async fn any_credentials_without_a_fixed_pair() {
    let sandbox = Sandbox::start().await.unwrap();
    let mut client = Client::new(&sandbox);
    client.client_id = "anything".to_owned();
    client.secret = "at-all".to_owned();
    let kid = sandbox.emulator().webhook_key_id();
    let (status, _) = client
        .post("/webhook_verification_key/get", &json!({"key_id": kid}))
        .await;
    assert_eq!(status, 200);
    client.secret = String::new();
    let result = client
        .post("/webhook_verification_key/get", &json!({"key_id": kid}))
        .await;
    assert_error(&result, 400, "INVALID_REQUEST", "MISSING_FIELDS");
}

#[tokio::test]
async fn body_limit_and_caps() {
    let mut limits = Limits::default();
    limits.max_body_bytes = 1024;
    limits.max_items = 2;
    limits.max_link_tokens = 2;
    limits.max_public_tokens = 3;
    let sandbox = Sandbox::builder().limits(limits).start().await.unwrap();
    let client = Client::new(&sandbox);

    let big = json!({"key_id": "x".repeat(2000)});
    let result = client.post("/webhook_verification_key/get", &big).await;
    assert_error(&result, 413, "INVALID_REQUEST", "INVALID_BODY");

    let link = json!({"client_name": "x", "language": "en", "country_codes": ["US"], "user": {"client_user_id": "u"}});
    for _ in 0..2 {
        let (status, _) = client.post("/link/token/create", &link).await;
        assert_eq!(status, 200);
    }
    let result = client.post("/link/token/create", &link).await;
    assert_error(&result, 429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT");

    let (a, _) = client.link_item(None).await;
    let (_b, _) = client.link_item(None).await;
    // The third public token fits, its exchange does not: two Items at most.
    let (status, created) = client
        .post(
            "/sandbox/public_token/create",
            &json!({"institution_id": "ins_109508", "initial_products": ["transactions"]}),
        )
        .await;
    assert_eq!(status, 200);
    let public_token = created["public_token"].as_str().unwrap().to_owned();
    let result = client
        .post(
            "/item/public_token/exchange",
            &json!({"public_token": public_token}),
        )
        .await;
    assert_error(&result, 429, "RATE_LIMIT_EXCEEDED", "ADDITION_LIMIT");
    let result = client
        .post(
            "/sandbox/public_token/create",
            &json!({"institution_id": "ins_109508", "initial_products": ["transactions"]}),
        )
        .await;
    assert_error(&result, 429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT");

    // Removing an Item makes room; the unexchanged public token still works.
    let (status, _) = client
        .post("/item/remove", &json!({"access_token": a}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = client
        .post(
            "/item/public_token/exchange",
            &json!({"public_token": public_token}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn expired_tokens_are_pruned() {
    use chrono::{TimeZone as _, Utc};
    let clock =
        tokenward_sandbox::ManualClock::new(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
    let mut limits = Limits::default();
    limits.max_public_tokens = 1;
    limits.max_link_tokens = 1;
    let sandbox = Sandbox::builder()
        .limits(limits)
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    let client = Client::new(&sandbox);
    let create = json!({"institution_id": "ins_109508", "initial_products": ["transactions"]});
    let link = json!({"client_name": "x", "language": "en", "country_codes": ["US"], "user": {"client_user_id": "u"}});
    assert_eq!(
        client.post("/sandbox/public_token/create", &create).await.0,
        200
    );
    assert_eq!(client.post("/link/token/create", &link).await.0, 200);
    assert_eq!(
        client.post("/sandbox/public_token/create", &create).await.0,
        429
    );
    assert_eq!(client.post("/link/token/create", &link).await.0, 429);
    clock.advance(std::time::Duration::from_secs(4 * 3600 + 1));
    assert_eq!(
        client.post("/sandbox/public_token/create", &create).await.0,
        200
    );
    assert_eq!(client.post("/link/token/create", &link).await.0, 200);
}
