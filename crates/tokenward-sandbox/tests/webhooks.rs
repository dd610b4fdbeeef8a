//! Webhooks: real deliveries to a local listener, signatures checked independently with
//! ring, key rotation.
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

use std::time::Duration;

use axum::body::Bytes;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Client, assert_no_leaks};
use ring::digest;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::{Value, json};
use tokenward_sandbox::Sandbox;
use tokenward_testkit::webhook::Hook;

/// A received webhook: its `Plaid-Verification` header and the raw body.
struct Received {
    jwt: String,
    body: Bytes,
}

/// A local webhook listener (the shared one); returns its URL and the listener.
async fn listener() -> (String, Hook) {
    let hook = Hook::start().await;
    (hook.url.clone(), hook)
}

fn hex_sha256(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .iter()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

async fn next(hook: &mut Hook) -> Received {
    let delivery = hook.next().await;
    Received {
        jwt: delivery.header.expect("a Plaid-Verification header"),
        body: delivery.body,
    }
}

/// Verifies a webhook as Plaid documents it, using only ring and the JWK from the
/// emulator's `/webhook_verification_key/get`. Returns the body as JSON and the key id.
async fn verify(client: &Client, received: &Received) -> (Value, String) {
    let mut parts = received.jwt.split('.');
    let (h, p, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    assert!(parts.next().is_none());
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    let kid = header["kid"].as_str().unwrap().to_owned();
    // The header is exactly Plaid's three members.
    assert_eq!(header.as_object().unwrap().len(), 3);

    let (status, key) = client
        .post("/webhook_verification_key/get", &json!({"key_id": kid}))
        .await;
    assert_eq!(status, 200);
    let jwk = &key["key"];
    let mut point = vec![0x04];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let signature = URL_SAFE_NO_PAD.decode(s).unwrap();
    assert_eq!(signature.len(), 64);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(format!("{h}.{p}").as_bytes(), &signature)
        .expect("signature verifies");

    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    let iat = claims["iat"].as_i64().unwrap();
    assert!((chrono::Utc::now().timestamp() - iat).abs() < 300);
    let expected = hex_sha256(&received.body);
    assert_eq!(claims["request_body_sha256"], expected.as_str());
    // Pretty-printed with two spaces, as Plaid sends.
    assert!(
        std::str::from_utf8(&received.body)
            .unwrap()
            .contains("\n  \"")
    );
    (serde_json::from_slice(&received.body).unwrap(), kid)
}

#[tokio::test]
async fn webhooks_are_delivered_signed() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    let (url, mut rx) = listener().await;
    let (token, item_id) = client.link_item(None).await;

    // Setting the URL sends WEBHOOK_UPDATE_ACKNOWLEDGED to it.
    let (status, updated) = client
        .post(
            "/item/webhook/update",
            &json!({"access_token": token, "webhook": url}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["item"]["webhook"], url.as_str());
    let (body, kid) = verify(&client, &next(&mut rx).await).await;
    assert_eq!(body["webhook_type"], "ITEM");
    assert_eq!(body["webhook_code"], "WEBHOOK_UPDATE_ACKNOWLEDGED");
    assert_eq!(body["new_webhook_url"], url.as_str());
    assert_eq!(body["item_id"], item_id.as_str());
    assert_eq!(body["environment"], "sandbox");
    assert_eq!(kid, sandbox.emulator().webhook_key_id());

    // Every code the sandbox can fire.
    for (code, webhook_type) in [
        ("DEFAULT_UPDATE", "TRANSACTIONS"),
        ("SYNC_UPDATES_AVAILABLE", "TRANSACTIONS"),
        ("NEW_ACCOUNTS_AVAILABLE", "ITEM"),
        ("ERROR", "ITEM"),
        ("LOGIN_REPAIRED", "ITEM"),
        ("USER_PERMISSION_REVOKED", "ITEM"),
        ("USER_ACCOUNT_REVOKED", "ITEM"),
        ("PENDING_DISCONNECT", "ITEM"),
        ("PENDING_EXPIRATION", "ITEM"),
        ("RECURRING_TRANSACTIONS_UPDATE", "TRANSACTIONS"),
    ] {
        let (status, fired) = client
            .post(
                "/sandbox/item/fire_webhook",
                &json!({"access_token": token, "webhook_code": code}),
            )
            .await;
        assert_eq!(status, 200, "{code}: {fired}");
        assert_eq!(fired["webhook_fired"], true);
        let (body, _) = verify(&client, &next(&mut rx).await).await;
        assert_eq!(body["webhook_code"], code);
        assert_eq!(body["webhook_type"], webhook_type);
        assert_eq!(body["item_id"], item_id.as_str());
        match code {
            "DEFAULT_UPDATE" => assert!(body["new_transactions"].as_u64().unwrap() >= 2),
            "SYNC_UPDATES_AVAILABLE" => assert_eq!(body["historical_update_complete"], true),
            "ERROR" => {
                assert_eq!(body["error"]["error_code"], "ITEM_LOGIN_REQUIRED");
                assert_eq!(body["error"]["status"], 400);
            }
            "USER_ACCOUNT_REVOKED" => assert!(body["account_id"].is_string()),
            "PENDING_DISCONNECT" => assert!(body["disconnect_time"].is_string()),
            _ => {}
        }
    }
    // /item/get reports the last webhook.
    let (_, item) = client
        .post("/item/get", &json!({"access_token": token}))
        .await;
    assert_eq!(
        item["status"]["last_webhook"]["code_sent"],
        "RECURRING_TRANSACTIONS_UPDATE"
    );

    // reset_login tells the webhook too.
    let (status, _) = client
        .post("/sandbox/item/reset_login", &json!({"access_token": token}))
        .await;
    assert_eq!(status, 200);
    let (body, _) = verify(&client, &next(&mut rx).await).await;
    assert_eq!(body["webhook_code"], "ERROR");
    // LOGIN_REPAIRED takes the Item out of ITEM_LOGIN_REQUIRED.
    let (status, _) = client
        .post(
            "/sandbox/item/fire_webhook",
            &json!({"access_token": token, "webhook_code": "LOGIN_REPAIRED"}),
        )
        .await;
    assert_eq!(status, 200);
    let _ = next(&mut rx).await;
    let (status, _) = client
        .post("/accounts/get", &json!({"access_token": token}))
        .await;
    assert_eq!(status, 200);

    // Deliveries are recorded with the receiver's status.
    let mut deliveries = Vec::new();
    for _ in 0..200 {
        deliveries = sandbox.emulator().webhook_deliveries();
        if deliveries.len() >= 13 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(deliveries.len(), 13);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == Some(200) && d.url == url)
    );

    assert_no_leaks(&client.seen(), common::SECRET, &[&token]);
}

#[tokio::test]
async fn key_rotation_keeps_old_keys_fetchable() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    let (url, mut rx) = listener().await;
    let (token, _) = client.link_item(Some(&url)).await;
    let fire = json!({"access_token": token, "webhook_code": "SYNC_UPDATES_AVAILABLE"});

    client.post("/sandbox/item/fire_webhook", &fire).await;
    let (_, old_kid) = verify(&client, &next(&mut rx).await).await;

    let new_kid = sandbox.rotate_webhook_key().unwrap();
    assert_ne!(new_kid, old_kid);
    client.post("/sandbox/item/fire_webhook", &fire).await;
    let (_, kid) = verify(&client, &next(&mut rx).await).await;
    assert_eq!(kid, new_kid);

    let (status, old) = client
        .post("/webhook_verification_key/get", &json!({"key_id": old_kid}))
        .await;
    assert_eq!(status, 200);
    assert!(old["key"]["expired_at"].is_i64());
    let (_, new) = client
        .post("/webhook_verification_key/get", &json!({"key_id": new_kid}))
        .await;
    assert!(new["key"]["expired_at"].is_null());
    assert_ne!(old["key"]["x"], new["key"]["x"]);

    // A tampered body no longer matches the signed hash.
    client.post("/sandbox/item/fire_webhook", &fire).await;
    let received = next(&mut rx).await;
    let mut body = received.body.to_vec();
    body.push(b' ');
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(received.jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let hash = hex_sha256(&body);
    assert_ne!(claims["request_body_sha256"], hash.as_str());
}

#[tokio::test]
async fn undeliverable_webhooks_are_recorded() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = Client::new(&sandbox);
    // A port nobody listens on.
    let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gone", unused.local_addr().unwrap());
    drop(unused);
    let (token, _) = client.link_item(Some(&url)).await;
    let (status, fired) = client
        .post(
            "/sandbox/item/fire_webhook",
            &json!({"access_token": token, "webhook_code": "DEFAULT_UPDATE"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(fired["webhook_fired"], true);
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = sandbox.emulator().webhook_deliveries();
        if !deliveries.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, None);
    assert_eq!(deliveries[0].error.as_deref(), Some("could not connect"));
}
