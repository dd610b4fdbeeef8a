//! Fault injection from Rust and over the admin route: latency, 429, 500, and
//! commit-then-drop (the change is made, the response never arrives).
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

use std::time::{Duration, Instant};

use common::{Client, assert_error, assert_no_leaks};
use serde_json::json;
use tokenward_sandbox::{FaultPlan, Sandbox};

#[tokio::test]
async fn latency_429_and_500() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    let (token, _) = client.link_item(None).await;
    let body = json!({"access_token": token});

    sandbox
        .faults()
        .set(
            "/item/get",
            FaultPlan::new()
                .latency(Duration::from_millis(300))
                .rate_limit(2)
                .server_error(1),
        )
        .unwrap();
    let started = Instant::now();
    let result = client.post("/item/get", &body).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_error(&result, 429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT");
    assert_error(
        &client.post("/item/get", &body).await,
        429,
        "RATE_LIMIT_EXCEEDED",
        "RATE_LIMIT",
    );
    assert_error(
        &client.post("/item/get", &body).await,
        500,
        "API_ERROR",
        "INTERNAL_SERVER_ERROR",
    );
    let (status, _) = client.post("/item/get", &body).await;
    assert_eq!(status, 200, "the counts are used up");
    // Other endpoints are untouched.
    let started = Instant::now();
    let (status, _) = client.post("/accounts/get", &body).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_millis(300));

    // A plan for every endpoint.
    sandbox.faults().clear();
    sandbox.faults().set_all(FaultPlan::new().server_error(1));
    assert_error(
        &client.post("/accounts/get", &body).await,
        500,
        "API_ERROR",
        "INTERNAL_SERVER_ERROR",
    );
    let (status, _) = client.post("/accounts/get", &body).await;
    assert_eq!(status, 200);
    assert_no_leaks(&client.seen(), common::SECRET, &[&token]);
}

#[tokio::test]
async fn invalidate_commits_then_drops_the_connection() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    let (token, item_id) = client.link_item(None).await;
    sandbox
        .faults()
        .set(
            "/item/access_token/invalidate",
            FaultPlan::new().drop_after_commit(1),
        )
        .unwrap();

    let outcome = client
        .http
        .post(format!("{}/item/access_token/invalidate", client.base))
        .header("PLAID-CLIENT-ID", common::CLIENT_ID)
        .header("PLAID-SECRET", common::SECRET)
        .json(&json!({"access_token": token}))
        .send()
        .await;
    let error = outcome.expect_err("no response may arrive");
    assert!(!error.is_status() && !error.is_timeout(), "{error}");
    let text = format!("{error:?}");
    assert!(!text.contains(&token) && !text.contains(common::SECRET));

    // The change was committed: the old token is dead, the Item lives on (orphaned).
    let result = client
        .post("/item/get", &json!({"access_token": token}))
        .await;
    assert_error(&result, 400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN");
    assert_eq!(sandbox.emulator().item_count(), 1);
    let _ = item_id;

    // Only one request was affected; the server keeps serving.
    let (other, _) = client.link_item(None).await;
    let (status, _) = client
        .post(
            "/item/access_token/invalidate",
            &json!({"access_token": other}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn admin_route_sets_and_clears_faults() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    let (token, _) = client.link_item(None).await;
    let admin = |body: serde_json::Value| {
        let http = client.http.clone();
        let url = format!("{}/__tokenward/faults", client.base);
        async move {
            let response = http.post(url).json(&body).send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };

    let (status, view) =
        admin(json!({"endpoint": "/item/remove", "rate_limit": 1, "drop_after_commit": 1})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["endpoints"][0]["endpoint"], "/item/remove");
    assert_eq!(view["endpoints"][0]["rate_limit"], 1);
    let result = client
        .post("/item/remove", &json!({"access_token": token}))
        .await;
    assert_error(&result, 429, "RATE_LIMIT_EXCEEDED", "RATE_LIMIT");
    // Then remove is carried out and the connection dropped.
    let outcome = client
        .http
        .post(format!("{}/item/remove", client.base))
        .header("PLAID-CLIENT-ID", common::CLIENT_ID)
        .header("PLAID-SECRET", common::SECRET)
        .json(&json!({"access_token": token}))
        .send()
        .await;
    assert!(outcome.is_err());
    assert_eq!(
        sandbox.emulator().item_count(),
        0,
        "the removal was committed"
    );

    let (status, view) = admin(json!({"latency_ms": 50, "server_error": 1})).await;
    assert_eq!(status, 200);
    assert_eq!(view["all"]["server_error"], 1);
    assert_eq!(view["all"]["latency_ms"], 50);
    let result = client
        .post("/item/get", &json!({"access_token": "x"}))
        .await;
    assert_error(&result, 500, "API_ERROR", "INTERNAL_SERVER_ERROR");

    let (status, view) = admin(json!({"clear": true})).await;
    assert_eq!(status, 200);
    assert_eq!(view["all"]["latency_ms"], 0);
    assert!(view["endpoints"].as_array().unwrap().is_empty());
    let response = client
        .http
        .get(format!("{}/__tokenward/faults", client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Bad admin requests get Plaid-style errors.
    let (status, body) = admin(json!({"endpoint": "/nope", "rate_limit": 1})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = admin(json!({"bogus": 1})).await;
    assert_eq!(status, 400, "{body}");

    // Rotating the webhook key over the admin route.
    let old = sandbox.emulator().webhook_key_id();
    let response = client
        .http
        .post(format!("{}/__tokenward/webhook_key/rotate", client.base))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_ne!(body["key_id"], old.as_str());
    assert_eq!(body["key_id"], sandbox.emulator().webhook_key_id().as_str());
}

#[tokio::test]
async fn in_process_router_marks_dropped_responses() {
    use axum::body::Body;
    use tower::ServiceExt as _;
    let emulator = Sandbox::builder().build().unwrap();
    emulator
        .faults()
        .set_all(FaultPlan::new().drop_after_commit(1));
    let request = axum::http::Request::post("/webhook_verification_key/get")
        .header("PLAID-CLIENT-ID", "id")
        .header("PLAID-SECRET", "secret")
        .body(Body::from(format!(
            "{{\"key_id\":\"{}\"}}",
            emulator.webhook_key_id()
        )))
        .unwrap();
    let response = emulator.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-tokenward-fault"], "dropped");
}
