//! Shared helpers of the emulator's integration tests: a client that talks to the emulator
//! over loopback HTTP and remembers every response for the leak canaries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::too_many_lines,
    clippy::struct_field_names,
    dead_code,
    unreachable_pub,
    missing_docs,
    reason = "test code"
)]

use std::sync::Mutex;

use serde_json::{Value, json};
use tokenward_sandbox::Sandbox;

pub const CLIENT_ID: &str = "5f1c2b3a4d5e6f7a8b9c0d1e";
pub const SECRET: &str = tokenward_testkit::canary::PLAID_SECRET;

/// One response as the test saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub status: u16,
    pub body: String,
}

/// A reqwest client bound to one emulator, with the credentials in headers as the SDKs send
/// them.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub seen: Mutex<Vec<Seen>>,
    pub client_id: String,
    pub secret: String,
}

pub fn http_client() -> reqwest::Client {
    // reqwest is built without a default crypto provider; these tests use plain HTTP, but the
    // client still wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

impl Client {
    pub fn new(sandbox: &Sandbox) -> Self {
        Client {
            http: http_client(),
            base: sandbox.base_url(),
            seen: Mutex::new(Vec::new()),
            client_id: CLIENT_ID.to_owned(),
            secret: SECRET.to_owned(),
        }
    }

    /// POSTs `body` to `path` with the credentials in headers; returns status and JSON.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("PLAID-CLIENT-ID", &self.client_id)
            .header("PLAID-SECRET", &self.secret)
            .header("Plaid-Version", "2020-09-14")
            .json(body)
            .send()
            .await
            .unwrap();
        self.record(path, response).await
    }

    /// POSTs raw bytes with custom headers (no credentials unless given).
    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).body(body);
        request = request.header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        self.record(path, response).await
    }

    pub async fn record(&self, path: &str, response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        self.seen.lock().unwrap().push(Seen {
            path: path.to_owned(),
            status,
            body: text.clone(),
        });
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON ({status})"));
        assert!(
            value["request_id"].is_string(),
            "{path}: no request_id in {value}"
        );
        (status, value)
    }

    /// `/sandbox/public_token/create` then `/item/public_token/exchange`.
    pub async fn link_item(&self, webhook: Option<&str>) -> (String, String) {
        let mut body = json!({
            "institution_id": "ins_109508",
            "initial_products": ["transactions"],
        });
        if let Some(url) = webhook {
            body["options"] = json!({ "webhook": url });
        }
        let (status, created) = self.post("/sandbox/public_token/create", &body).await;
        assert_eq!(status, 200, "{created}");
        let public_token = created["public_token"].as_str().unwrap().to_owned();
        let (status, exchanged) = self
            .post(
                "/item/public_token/exchange",
                &json!({ "public_token": public_token }),
            )
            .await;
        assert_eq!(status, 200, "{exchanged}");
        (
            exchanged["access_token"].as_str().unwrap().to_owned(),
            exchanged["item_id"].as_str().unwrap().to_owned(),
        )
    }

    /// Every response body seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Asserts that a Plaid error has the expected type, code and status, and the full shape.
pub fn assert_error(result: &(u16, Value), status: u16, error_type: &str, error_code: &str) {
    let (got_status, body) = result;
    assert_eq!(*got_status, status, "{body}");
    assert_eq!(body["error_type"], error_type, "{body}");
    assert_eq!(body["error_code"], error_code, "{body}");
    assert!(body["error_message"].is_string(), "{body}");
    assert!(body.get("display_message").is_some(), "{body}");
    assert!(body["request_id"].is_string(), "{body}");
}

/// The leak canary: the secret never appears, and an access token only in the responses of
/// the endpoints that hand one out.
pub fn assert_no_leaks(seen: &[Seen], secret: &str, access_tokens: &[&str]) {
    for response in seen {
        assert!(
            !response.body.contains(secret),
            "{} leaked the secret",
            response.path
        );
        let hands_out_tokens = matches!(
            response.path.as_str(),
            "/item/public_token/exchange" | "/item/access_token/invalidate"
        ) && response.status == 200;
        if !hands_out_tokens {
            for token in access_tokens {
                assert!(
                    !response.body.contains(token),
                    "{} leaked an access token",
                    response.path
                );
            }
            assert!(
                !response.body.contains("access-sandbox-"),
                "{} has an access token: {}",
                response.path,
                response.body
            );
        }
    }
}
