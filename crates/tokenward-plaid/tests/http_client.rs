//! `HttpPlaidClient` against a scripted HTTP/1.1 server on 127.0.0.1: retries on reads only,
//! outcomes of lost answers, headers, error decoding, and no secret in any error.
#![cfg(feature = "http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::format_push_string,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokenward_plaid::models::{
    ItemAccessTokenInvalidateRequest, ItemGetRequest, ItemPublicTokenExchangeRequest,
    ItemRemoveRequest, TransactionsSyncRequest,
};
use tokenward_plaid::{
    DecodeReason, Environment, Error, ErrorCode, HttpPlaidClient, Outcome, PlaidApi, RetryPolicy,
    TransportKind,
};
use tokenward_redact::{AccessToken, ClientId, ClientSecret, PublicToken};
use tokenward_testkit::canary;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A made-up client id (24 lowercase alphanumerics, like Plaid's).
const CLIENT_ID: &str = "5f1c2b3a4d5e6f7a8b9c0d1e";

/// What the server does with one request.
#[derive(Clone)]
enum Step {
    /// Answers with a status, extra headers and a body.
    Respond(u16, Vec<(&'static str, String)>, String),
    /// Reads the request, then closes the connection without answering.
    Drop,
    /// Reads the request and never answers.
    Hang,
}

fn respond(status: u16, body: &str) -> Step {
    Step::Respond(status, Vec::new(), body.to_owned())
}

#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Server {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// Serves `steps` in order, one per request; after the last, repeats it.
async fn serve(steps: Vec<Step>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&requests);
    tokio::spawn(async move {
        let mut index = 0;
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let step = steps[index.min(steps.len() - 1)].clone();
            index += 1;
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move { handle(stream, step, recorded).await });
        }
    });
    Server { base, requests }
}

async fn handle(mut stream: TcpStream, step: Step, recorded: Arc<Mutex<Vec<Recorded>>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    recorded.lock().unwrap().push(request);
    match step {
        Step::Respond(status, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Step::Drop => drop(stream),
        Step::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[header_end..header_end + length]).into_owned();
    Some(Recorded {
        path,
        headers,
        body,
    })
}

fn make_client(base: &str, retry: RetryPolicy) -> HttpPlaidClient {
    HttpPlaidClient::builder()
        .environment(Environment::Custom(base.to_owned()))
        .credentials(
            ClientId::new(CLIENT_ID).unwrap(),
            ClientSecret::new(canary::PLAID_SECRET).unwrap(),
        )
        .timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .retry_policy(retry)
        .build()
        .unwrap()
}

fn fast_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(
        attempts,
        Duration::from_millis(1),
        Duration::from_millis(5),
        Duration::from_secs(5),
    )
}

fn access() -> AccessToken {
    AccessToken::new(canary::ACCESS_SANDBOX).unwrap()
}

const ITEM_GET_OK: &str = r#"{"item":{"item_id":"DWVAAPWq4RHGlEaNyGKRTAnPLaEmo8Cvq7na6",
    "webhook":null,"error":null,"available_products":[],"billed_products":["transactions"],
    "consent_expiration_time":null,"update_type":"background"},"request_id":"m8MDnv9okwxFNBV"}"#;

const API_ERROR: &str = r#"{"error_type":"API_ERROR","error_code":"INTERNAL_SERVER_ERROR",
    "error_message":"an unexpected error occurred","display_message":null,"request_id":"r500"}"#;

const RATE_LIMITED: &str = r#"{"error_type":"RATE_LIMIT_EXCEEDED","error_code":"ITEM_GET_LIMIT",
    "error_message":"rate limit exceeded for attempts to access this item. please try again later",
    "display_message":null,"request_id":"r429"}"#;

/// Asserts that no secret reaches the error's `Display`, `Debug` or source chain.
fn assert_secret_free(err: &Error) {
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for text in texts {
        for secret in [
            canary::ACCESS_SANDBOX,
            canary::PUBLIC_SANDBOX,
            canary::PLAID_SECRET,
            CLIENT_ID,
        ] {
            assert!(!text.contains(secret), "secret in error text: {text}");
        }
    }
}

#[tokio::test]
async fn reads_are_retried_on_429_500_503_then_succeed() {
    let server = serve(vec![
        respond(429, RATE_LIMITED),
        respond(500, API_ERROR),
        respond(503, "service unavailable"),
        respond(200, ITEM_GET_OK),
    ])
    .await;
    let client = make_client(&server.base, fast_retries(4));
    let item = client
        .item_get(&ItemGetRequest::new(access()))
        .await
        .unwrap();
    assert_eq!(
        item.item.item.item_id,
        "DWVAAPWq4RHGlEaNyGKRTAnPLaEmo8Cvq7na6"
    );
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn read_retries_are_bounded() {
    let server = serve(vec![respond(500, API_ERROR)]).await;
    let client = make_client(&server.base, fast_retries(3));
    let err = client
        .transactions_sync(&TransactionsSyncRequest::new(access()))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 3);
    assert_eq!(err.http_status(), Some(500));
    assert!(err.is_retryable());
    assert_eq!(err.request_id(), Some("r500"));
    assert_eq!(
        err.plaid_error().unwrap().error_code(),
        &ErrorCode::InternalServerError
    );
    assert_secret_free(&err);
}

#[tokio::test]
async fn retry_after_longer_than_the_budget_ends_retries() {
    let server = serve(vec![Step::Respond(
        429,
        vec![("retry-after", "3600".to_owned())],
        RATE_LIMITED.to_owned(),
    )])
    .await;
    let client = make_client(&server.base, fast_retries(5));
    let err = client
        .item_get(&ItemGetRequest::new(access()))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(err.is_rate_limited());
    assert_eq!(err.outcome(), Outcome::Known);
}

#[tokio::test]
async fn retry_after_zero_retries_at_once() {
    let server = serve(vec![
        Step::Respond(
            429,
            vec![("retry-after", "0".to_owned())],
            RATE_LIMITED.to_owned(),
        ),
        respond(200, ITEM_GET_OK),
    ])
    .await;
    let client = make_client(&server.base, fast_retries(2));
    client
        .item_get(&ItemGetRequest::new(access()))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn invalidate_is_never_retried_and_a_500_is_ambiguous() {
    let server = serve(vec![respond(500, API_ERROR), respond(200, "{}")]).await;
    let client = make_client(&server.base, fast_retries(5));
    let err = client
        .item_access_token_invalidate(&ItemAccessTokenInvalidateRequest::new(access()))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(err.outcome(), Outcome::Ambiguous);
    assert!(matches!(err, Error::Plaid { status: 500, .. }));
    assert_secret_free(&err);
}

#[tokio::test]
async fn invalidate_with_a_dropped_connection_is_ambiguous() {
    let server = serve(vec![Step::Drop]).await;
    let client = make_client(&server.base, fast_retries(5));
    let err = client
        .item_access_token_invalidate(&ItemAccessTokenInvalidateRequest::new(access()))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(err.outcome(), Outcome::Ambiguous);
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Connection | TransportKind::Body | TransportKind::Other,
                ..
            }
        ),
        "{err:?}"
    );
    assert_secret_free(&err);
}

#[tokio::test]
async fn exchange_timeout_after_sending_is_ambiguous_and_not_retried() {
    let server = serve(vec![Step::Hang]).await;
    let client = make_client(&server.base, fast_retries(5));
    let public = PublicToken::new(canary::PUBLIC_SANDBOX).unwrap();
    let err = client
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest::new(public))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(
        matches!(
            err,
            Error::Timeout {
                outcome: Outcome::Ambiguous,
                ..
            }
        ),
        "{err:?}"
    );
    assert_secret_free(&err);
}

#[tokio::test]
async fn remove_is_not_retried_on_503() {
    let server = serve(vec![respond(503, API_ERROR)]).await;
    let client = make_client(&server.base, fast_retries(5));
    let err = client
        .item_remove(&ItemRemoveRequest::new(access()))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(err.outcome(), Outcome::Ambiguous);
}

#[tokio::test]
async fn connection_refused_is_not_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = make_client(&base, fast_retries(2));
    let err = client
        .item_access_token_invalidate(&ItemAccessTokenInvalidateRequest::new(access()))
        .await
        .unwrap_err();
    assert_eq!(err.outcome(), Outcome::NotSent, "{err:?}");
    assert!(matches!(
        err,
        Error::Transport {
            kind: TransportKind::Connect,
            ..
        }
    ));
    assert_secret_free(&err);
    // Reads retry, and end not sent too.
    let err = client
        .item_get(&ItemGetRequest::new(access()))
        .await
        .unwrap_err();
    assert_eq!(err.outcome(), Outcome::NotSent);
}

#[tokio::test]
async fn headers_carry_the_credentials_and_the_body_does_not() {
    let server = serve(vec![respond(200, ITEM_GET_OK)]).await;
    let client = make_client(&server.base, fast_retries(1));
    client
        .item_get(&ItemGetRequest::new(access()))
        .await
        .unwrap();
    let request = &server.requests()[0];
    assert_eq!(request.path, "/item/get");
    assert_eq!(request.header("plaid-client-id"), Some(CLIENT_ID));
    assert_eq!(request.header("plaid-secret"), Some(canary::PLAID_SECRET));
    assert_eq!(request.header("plaid-version"), Some("2020-09-14"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"access_token": canary::ACCESS_SANDBOX})
    );
    assert!(!request.body.contains(canary::PLAID_SECRET));
    assert!(!request.body.contains(CLIENT_ID));
}

#[tokio::test]
async fn a_base_path_is_kept() {
    let server = serve(vec![respond(200, ITEM_GET_OK)]).await;
    let client = make_client(&format!("{}/plaid/", server.base), fast_retries(1));
    client
        .item_get(&ItemGetRequest::new(access()))
        .await
        .unwrap();
    assert_eq!(server.requests()[0].path, "/plaid/item/get");
}

#[tokio::test]
async fn a_400_plaid_error_is_decoded_and_not_retried() {
    let body = format!(
        r#"{{"error_type":"INVALID_INPUT","error_code":"INVALID_ACCESS_TOKEN",
        "error_message":"could not find matching access token {}","display_message":null,
        "request_id":"r400","documentation_url":"https://plaid.com/docs/errors/invalid-input/",
        "suggested_action":null,"new_field":[1]}}"#,
        canary::ACCESS_SANDBOX
    );
    let server = serve(vec![respond(400, &body)]).await;
    let client = make_client(&server.base, fast_retries(5));
    let err = client
        .item_get(&ItemGetRequest::new(access()))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert!(err.is_invalid_access_token());
    assert!(!err.is_retryable());
    assert_eq!(err.outcome(), Outcome::Known);
    assert_eq!(err.http_status(), Some(400));
    assert_eq!(err.request_id(), Some("r400"));
    let plaid = err.plaid_error().unwrap();
    assert!(
        plaid
            .error_message()
            .starts_with("could not find matching access token")
    );
    assert!(
        plaid
            .error_message()
            .contains("[REDACTED:plaid.access_token]")
    );
    assert_secret_free(&err);
    assert!(
        err.to_string()
            .starts_with("/item/get: plaid error (http 400): INVALID_INPUT/INVALID_ACCESS_TOKEN")
    );
}

#[tokio::test]
async fn undecodable_bodies_never_reach_the_error() {
    // A 200 whose body is not the expected shape, holding a token.
    let garbage = format!(r#"{{"item": "{}"}}"#, canary::ACCESS_SANDBOX);
    let server = serve(vec![respond(200, &garbage)]).await;
    let client = make_client(&server.base, fast_retries(3));
    let err = client
        .item_get(&ItemGetRequest::new(access()))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Decode {
            reason: DecodeReason::Shape { .. },
            status: 200,
            ..
        }
    ));
    // Not retried: the same answer would come back.
    assert_eq!(server.requests().len(), 1);
    assert_secret_free(&err);

    // An invalidate whose 200 cannot be read: applied, answer lost.
    let server = serve(vec![respond(
        200,
        "{\"new_access_token\": \"access-sandbox-de3c",
    )])
    .await;
    let client = make_client(&server.base, fast_retries(3));
    let err = client
        .item_access_token_invalidate(&ItemAccessTokenInvalidateRequest::new(access()))
        .await
        .unwrap_err();
    assert_eq!(err.outcome(), Outcome::Ambiguous);
    assert!(matches!(
        err,
        Error::Decode {
            reason: DecodeReason::Syntax { .. },
            ..
        }
    ));

    // An error status without a Plaid error object (a proxy's page).
    let server = serve(vec![respond(403, "<html>forbidden</html>")]).await;
    let client = make_client(&server.base, fast_retries(3));
    let err = client
        .item_get(&ItemGetRequest::new(access()))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Decode {
            reason: DecodeReason::NotAPlaidError,
            status: 403,
            ..
        }
    ));
    assert_eq!(err.outcome(), Outcome::Known);
    assert!(!err.to_string().contains("forbidden"));
}

#[tokio::test]
async fn a_successful_exchange_decodes_the_raw_token() {
    let body = format!(
        r#"{{"access_token":"{}","item_id":"M5eVJqLnv3tbzdngLDp9FL5OlDNxlNhlE55op","request_id":"Aim3b"}}"#,
        canary::ACCESS_SANDBOX
    );
    let server = serve(vec![respond(200, &body)]).await;
    let client = make_client(&server.base, fast_retries(1));
    let public = PublicToken::new(canary::PUBLIC_SANDBOX).unwrap();
    let response = client
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest::new(public))
        .await
        .unwrap();
    assert_eq!(
        response.access_token.expose_secret(),
        canary::ACCESS_SANDBOX
    );
    assert!(!format!("{response:?}").contains(canary::ACCESS_SANDBOX));
    let request = &server.requests()[0];
    assert!(request.body.contains(canary::PUBLIC_SANDBOX));
}

#[tokio::test]
async fn the_client_debug_shows_no_secret() {
    let client = make_client("http://127.0.0.1:9", fast_retries(1));
    let debug = format!("{client:?}");
    assert!(debug.contains("Custom(http://127.0.0.1:9)"), "{debug}");
    assert!(!debug.contains(canary::PLAID_SECRET));
    assert!(!debug.contains(CLIENT_ID));
}

#[tokio::test]
async fn the_trait_is_object_safe_over_http() {
    let server = serve(vec![respond(200, ITEM_GET_OK)]).await;
    let api: Arc<dyn PlaidApi> = Arc::new(make_client(&server.base, fast_retries(1)));
    api.item_get(&ItemGetRequest::new(access())).await.unwrap();
}
