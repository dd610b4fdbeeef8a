//! The `stateless_cookie` example driven through its whole API: in-process through the router
//! and over loopback HTTP/1.1, against the emulator. The cookie carries the sealed token (the
//! test opens it with the server's cipher to prove it), tampered, re-dated, foreign, expired
//! and missing cookies get 401 and a deleting `Set-Cookie`, logout kills the token at Plaid,
//! and no response (headers except the sealed cookie, bodies) or log line holds the access
//! token, the client secret, or a link or public token outside the response that hands it out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    missing_docs,
    reason = "test code"
)]

#[allow(
    dead_code,
    unreachable_pub,
    unused_qualifications,
    reason = "the example's main is not called here"
)]
#[path = "../examples/stateless_cookie.rs"]
mod stateless_cookie;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::http::StatusCode;
use secrecy::ExposeSecret as _;
use stateless_cookie::{COOKIE_PURPOSE, Config, SESSION_COOKIE};
use support::{Logs, Reply, SECRET, Transcript, assert_refused, capture_logs, http};
use tokenward_envelope::{Cipher, Context, Envelope, Keyring};
use tokenward_plaid::models::AccountsGetRequest;
use tokenward_plaid::{HttpPlaidClient, PlaidApi};
use tokenward_redact::AccessToken;
use tokenward_sandbox::Sandbox;
use tokio::net::TcpListener;

/// The server's clock starts here (2026-01-01T00:00:00Z); the test moves it.
const START: i64 = 1_767_225_600;

struct Fixture {
    sandbox: Sandbox,
    plaid: Arc<HttpPlaidClient>,
    cipher: Arc<Cipher>,
    now: Arc<AtomicI64>,
}

impl Fixture {
    async fn new() -> Self {
        let sandbox = support::emulator(Some(7)).await;
        let plaid = support::plaid_client(&sandbox);
        Fixture {
            sandbox,
            plaid: Arc::new(plaid),
            cipher: Arc::new(Cipher::new(Arc::new(Keyring::generate().unwrap()))),
            now: Arc::new(AtomicI64::new(START)),
        }
    }

    fn config(&self) -> Config {
        let now = Arc::clone(&self.now);
        let mut config = Config::new(
            Arc::clone(&self.plaid) as Arc<dyn PlaidApi>,
            Arc::clone(&self.cipher),
        );
        config.clock = Arc::new(move || now.load(Ordering::SeqCst));
        config
    }

    /// Opens a cookie value the way the server does: proof of what it seals.
    fn open(&self, cookie: &str) -> AccessToken {
        let parts: Vec<&str> = cookie.splitn(4, '.').collect();
        assert_eq!(parts.len(), 4, "{cookie}");
        assert_eq!(parts[0], "v1");
        let context = Context::new()
            .with("purpose", COOKIE_PURPOSE)
            .unwrap()
            .with("session_id", parts[1])
            .unwrap()
            .with("expires", parts[2])
            .unwrap();
        let secret = self
            .cipher
            .open_str(&Envelope::from_text(parts[3]).unwrap(), &context)
            .unwrap();
        AccessToken::new(secret.expose_secret()).unwrap()
    }
}

/// One request through the router, without a socket.
async fn call(
    router: &Router,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> Reply {
    support::call(router, method, path, cookie, &[], body).await
}

/// Asserts the cookie attributes the example promises.
fn assert_cookie_attributes(reply: &Reply) {
    support::assert_cookie_attributes(reply, 3600);
    let set = reply.header("set-cookie").unwrap();
    assert!(!set.contains("Domain"), "a __Host- cookie has no Domain");
}

/// Link an Item through the router: link token, sandbox public token, exchange.
async fn link(router: &Router, transcript: &mut Transcript) -> String {
    let reply = call(router, "POST", "/api/link/token", None, "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let link_token = reply.json()["link_token"].as_str().unwrap().to_owned();
    assert!(link_token.starts_with("link-sandbox-"));
    transcript.secret(&link_token);
    transcript.record("link token", &reply, Some(&link_token));

    let reply = call(router, "POST", "/api/sandbox/public_token", None, "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let public_token = reply.json()["public_token"].as_str().unwrap().to_owned();
    assert!(public_token.starts_with("public-sandbox-"));
    transcript.secret(&public_token);
    transcript.record("public token", &reply, Some(&public_token));

    let body = serde_json::json!({ "public_token": public_token }).to_string();
    let reply = call(router, "POST", "/api/link/exchange", None, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), serde_json::json!({ "linked": true }));
    assert_cookie_attributes(&reply);
    transcript.record("exchange", &reply, None);

    // The public token is single use: a second exchange is a clean 400.
    let again = call(router, "POST", "/api/link/exchange", None, &body).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.session_cookie(), None);
    transcript.record("exchange again", &again, None);

    reply.session_cookie().unwrap()
}

#[tokio::test]
async fn whole_api_in_process_with_every_bad_cookie() {
    let logs = Logs::default();
    let _guard = capture_logs(&logs);
    let fixture = Fixture::new().await;
    let router = stateless_cookie::app(fixture.config());
    let mut transcript = Transcript::default();
    transcript.secret(SECRET);

    let cookie = link(&router, &mut transcript).await;
    assert!(!cookie.contains("access-"));
    // The sealed cookie is a bearer credential too: only its own Set-Cookie may carry it.
    transcript.secret(&cookie);
    // The cookie seals the real access token: it works at Plaid.
    let token = fixture.open(&cookie);
    transcript.secret(token.expose_secret());
    assert!(token.expose_secret().starts_with("access-sandbox-"));
    let direct = fixture
        .plaid
        .accounts_get(&AccountsGetRequest::new(
            AccessToken::new(token.expose_secret()).unwrap(),
        ))
        .await
        .unwrap();

    // Live data per request.
    let reply = call(&router, "GET", "/api/accounts", Some(&cookie), "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let accounts = reply.json()["accounts"].as_array().unwrap().clone();
    assert_eq!(accounts.len(), direct.accounts.len());
    assert_eq!(accounts[0]["account_id"], direct.accounts[0].account_id);
    assert!(accounts[0]["current"].is_number());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    transcript.record("accounts", &reply, None);

    let reply = call(
        &router,
        "GET",
        "/api/transactions?days=90",
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let transactions = reply.json()["transactions"].as_array().unwrap().clone();
    assert!(!transactions.is_empty());
    for t in &transactions {
        for field in ["transaction_id", "date", "amount", "merchant"] {
            assert!(!t[field].is_null(), "{field} in {t}");
        }
    }
    transcript.record("transactions", &reply, None);

    for bad in ["days=0", "days=731", "days=abc"] {
        let path = format!("/api/transactions?{bad}");
        let reply = call(&router, "GET", &path, Some(&cookie), "").await;
        assert_eq!(reply.status, 400, "{bad}");
        transcript.record(bad, &reply, None);
    }

    // Bad exchange bodies: clean 400s that echo nothing.
    for (label, body) in [
        ("not json", "public_token=x".to_owned()),
        ("wrong type", r#"{"public_token": 5}"#.to_owned()),
        (
            "placeholder",
            r#"{"public_token":"[REDACTED:plaid.public_token]"}"#.to_owned(),
        ),
        (
            "unknown token",
            serde_json::json!({ "public_token": tokenward_testkit::canary::PUBLIC_SANDBOX })
                .to_string(),
        ),
    ] {
        let reply = call(&router, "POST", "/api/link/exchange", None, &body).await;
        assert_eq!(reply.status, 400, "{label}: {}", reply.body);
        let code = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(
            ["invalid_body", "invalid_public_token"].contains(&code.as_str()),
            "{label}: {}",
            reply.body
        );
        assert_eq!(reply.session_cookie(), None, "{label}");
        transcript.record(label, &reply, None);
    }

    // Every bad cookie is a 401 that deletes it; none is a 500.
    let parts: Vec<String> = cookie.splitn(4, '.').map(str::to_owned).collect();
    let mut bad: Vec<(String, String)> = Vec::new();
    // One character of the envelope changed, at several places.
    for at in [6, parts[3].len() / 2, parts[3].len() - 1] {
        let mut envelope = parts[3].clone().into_bytes();
        envelope[at] = if envelope[at] == b'A' { b'B' } else { b'A' };
        let envelope = String::from_utf8(envelope).unwrap();
        bad.push((
            format!("envelope byte {at}"),
            format!("v1.{}.{}.{envelope}", parts[1], parts[2]),
        ));
    }
    let later: i64 = parts[2].parse::<i64>().unwrap() + 86_400;
    bad.push((
        "expiry moved later".into(),
        format!("v1.{}.{later}.{}", parts[1], parts[3]),
    ));
    let other_sid = "0".repeat(64);
    bad.push((
        "another session id".into(),
        format!("v1.{other_sid}.{}.{}", parts[2], parts[3]),
    ));
    bad.push((
        "version".into(),
        format!("v2.{}.{}.{}", parts[1], parts[2], parts[3]),
    ));
    bad.push(("garbage".into(), "garbage".into()));
    bad.push(("empty".into(), String::new()));
    bad.push(("truncated".into(), cookie[..cookie.len() - 10].to_owned()));
    bad.push((
        "envelope text mangled".into(),
        format!("v1.{}.{}.twe1:***", parts[1], parts[2]),
    ));
    // The same token sealed under another keyring.
    let foreign = {
        let other = Fixture::new().await;
        let router = stateless_cookie::app(other.config());
        let mut scratch = Transcript::default();
        link(&router, &mut scratch).await
    };
    bad.push(("another keyring".into(), foreign));
    for (label, value) in &bad {
        let reply = call(&router, "GET", "/api/accounts", Some(value), "").await;
        assert_refused(&reply, label);
        transcript.record(label, &reply, None);
    }
    let reply = call(&router, "GET", "/api/accounts", None, "").await;
    assert_refused(&reply, "missing cookie");
    transcript.record("missing", &reply, None);

    // Expiry: one second before it the cookie works, at it the cookie is refused.
    let expires: i64 = parts[2].parse().unwrap();
    assert_eq!(expires, START + 3600);
    fixture.now.store(expires - 1, Ordering::SeqCst);
    let reply = call(&router, "GET", "/api/accounts", Some(&cookie), "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    fixture.now.store(expires, Ordering::SeqCst);
    let reply = call(&router, "GET", "/api/accounts", Some(&cookie), "").await;
    assert_refused(&reply, "expired");
    transcript.record("expired", &reply, None);
    let reply = call(&router, "POST", "/api/logout", Some(&cookie), "").await;
    assert_refused(&reply, "logout with an expired cookie");
    fixture.now.store(START, Ordering::SeqCst);

    // Logout removes the Item: the token is dead at Plaid, and the old cookie with it.
    let reply = call(&router, "POST", "/api/logout", Some(&cookie), "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["item_removed"], true);
    assert_eq!(reply.session_cookie().as_deref(), Some(""));
    transcript.record("logout", &reply, None);
    support::assert_token_dead(fixture.plaid.as_ref(), &token).await;
    let reply = call(&router, "GET", "/api/accounts", Some(&cookie), "").await;
    assert_refused(&reply, "after logout");
    assert_eq!(reply.json()["error"], "item_gone");
    transcript.record("after logout", &reply, None);
    let reply = call(&router, "POST", "/api/logout", Some(&cookie), "").await;
    assert_eq!(reply.status, 200, "a second logout is a clean no-op");
    assert_eq!(reply.json()["item_removed"], false);
    transcript.record("logout again", &reply, None);

    let logs = logs.text();
    assert!(logs.contains("item linked"), "{logs}");
    assert!(logs.contains("session cookie refused: expired"), "{logs}");
    transcript.check(&logs, 25);
    fixture.sandbox.shutdown().await;
}

#[tokio::test]
async fn cookie_flow_over_loopback_http() {
    let logs = Logs::default();
    let _guard = capture_logs(&logs);
    let fixture = Fixture::new().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(stateless_cookie::serve(
        listener,
        fixture.config(),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut transcript = Transcript::default();
    transcript.secret(SECRET);

    let reply = http(addr, "POST", "/api/link/token", None, "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let link_token = reply.json()["link_token"].as_str().unwrap().to_owned();
    transcript.secret(&link_token);
    transcript.record("link token", &reply, Some(&link_token));

    let reply = http(addr, "POST", "/api/sandbox/public_token", None, "").await;
    let public_token = reply.json()["public_token"].as_str().unwrap().to_owned();
    transcript.secret(&public_token);
    transcript.record("public token", &reply, Some(&public_token));

    let body = serde_json::json!({ "public_token": public_token }).to_string();
    let reply = http(addr, "POST", "/api/link/exchange", None, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_cookie_attributes(&reply);
    let cookie = reply.session_cookie().unwrap();
    transcript.secret(&cookie);
    transcript.secret(fixture.open(&cookie).expose_secret());
    transcript.record("exchange", &reply, None);

    let reply = http(addr, "GET", "/api/accounts", Some(&cookie), "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["accounts"].as_array().unwrap().len(), 3);
    transcript.record("accounts", &reply, None);

    let reply = http(addr, "GET", "/api/transactions", Some(&cookie), "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    transcript.record("transactions", &reply, None);

    let mut tampered = cookie.clone().into_bytes();
    let middle = cookie.len() - 40;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let reply = http(addr, "GET", "/api/accounts", Some(&tampered), "").await;
    assert_refused(&reply, "tampered over http");
    transcript.record("tampered", &reply, None);

    let reply = http(addr, "GET", "/api/accounts", None, "").await;
    assert_refused(&reply, "missing over http");
    transcript.record("missing", &reply, None);

    fixture.now.store(
        START + stateless_cookie::DEFAULT_SESSION_TTL_SECS,
        Ordering::SeqCst,
    );
    let reply = http(addr, "GET", "/api/accounts", Some(&cookie), "").await;
    assert_refused(&reply, "expired over http");
    transcript.record("expired", &reply, None);
    fixture.now.store(START, Ordering::SeqCst);

    let reply = http(addr, "POST", "/api/logout", Some(&cookie), "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    transcript.record("logout", &reply, None);
    let reply = http(addr, "GET", "/api/accounts", Some(&cookie), "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED.as_u16());
    transcript.record("after logout", &reply, None);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    transcript.check(&logs.text(), 10);
    fixture.sandbox.shutdown().await;
}
