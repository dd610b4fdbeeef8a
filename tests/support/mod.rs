//! What the example servers' tests share: the emulator and a Plaid client for it, the reply a
//! test keeps, an in-process and a loopback HTTP/1.1 client, the transcript of replies with its
//! leak scan, and the captured log of the redacting formatter.
//!
//! A test includes it with `mod support;` and brings its example's `SESSION_COOKIE` into scope
//! at its root (`use example::SESSION_COOKIE;`): the cookie helpers read that name.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test uses a part of the shared support, from its crate root"
)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use tokenward_plaid::models::AccountsGetRequest;
use tokenward_plaid::{Environment, HttpPlaidClient, PlaidApi};
use tokenward_redact::{AccessToken, ClientId, ClientSecret};
use tokenward_sandbox::Sandbox;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tower::ServiceExt as _;

use super::SESSION_COOKIE;

/// The client id the emulator and the tests' Plaid clients share.
pub const CLIENT_ID: &str = "5f1c2b3a4d5e6f7a8b9c0d1e";
/// The Plaid secret, a canary: it must never appear in a reply or a log line.
pub const SECRET: &str = tokenward_testkit::canary::PLAID_SECRET;

// ---------------------------------------------------------------------------------------------
// The emulator and a client for it.

/// The emulator on loopback, accepting only [`CLIENT_ID`] and [`SECRET`]; seeded when `seed` is
/// given (without one, Item ids are random, so runs sharing a database never collide).
pub async fn emulator(seed: Option<u64>) -> Sandbox {
    let mut builder = Sandbox::builder().credentials(
        &ClientId::new(CLIENT_ID).unwrap(),
        &ClientSecret::new(SECRET).unwrap(),
    );
    if let Some(seed) = seed {
        builder = builder.seed(seed);
    }
    builder.start().await.unwrap()
}

/// A Plaid client for `sandbox`, with the test credentials.
pub fn plaid_client(sandbox: &Sandbox) -> HttpPlaidClient {
    HttpPlaidClient::builder()
        .environment(Environment::Custom(sandbox.base_url()))
        .credentials(
            ClientId::new(CLIENT_ID).unwrap(),
            ClientSecret::new(SECRET).unwrap(),
        )
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Replies, the transcript and the captured log.

/// An HTTP response as the test keeps it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the session cookie this reply sets, if any (empty when it deletes it).
    pub fn session_cookie(&self) -> Option<String> {
        let set = self.header("set-cookie")?;
        let value = set.strip_prefix(&format!("{SESSION_COOKIE}="))?;
        Some(value.split(';').next().unwrap_or_default().to_owned())
    }

    /// Status, headers (the session cookie this reply sets blanked: its own `Set-Cookie` may
    /// carry it) and body: what a leak scan reads.
    pub fn scan_text(&self) -> String {
        let mut text = format!("{}\n", self.status);
        for (name, value) in &self.headers {
            let value = match self.session_cookie() {
                Some(cookie) if !cookie.is_empty() && name.eq_ignore_ascii_case("set-cookie") => {
                    value.replace(&cookie, "<cookie>")
                }
                _ => value.clone(),
            };
            let _ = writeln!(text, "{name}: {value}");
        }
        text + &self.body
    }
}

/// Asserts a 401 that also deletes the session cookie.
pub fn assert_refused(reply: &Reply, label: &str) {
    assert_eq!(reply.status, 401, "{label}: {}", reply.body);
    assert_eq!(reply.session_cookie().as_deref(), Some(""), "{label}");
    assert!(
        reply.header("set-cookie").unwrap().contains("Max-Age=0"),
        "{label}"
    );
}

/// Asserts that `reply` sets the session cookie with the attributes both examples promise:
/// `HttpOnly`, `Secure`, `SameSite=Strict`, `Path=/` and `Max-Age={max_age}`.
pub fn assert_cookie_attributes(reply: &Reply, max_age: u32) {
    let set = reply.header("set-cookie").unwrap();
    let max_age = format!("Max-Age={max_age}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", &max_age] {
        assert!(
            set.split("; ").any(|a| a == attribute),
            "missing {attribute}: {set}"
        );
    }
}

/// Asserts that Plaid refuses `token` as an invalid access token (the Item was removed).
pub async fn assert_token_dead(plaid: &dyn PlaidApi, token: &AccessToken) {
    let dead = plaid
        .accounts_get(&AccountsGetRequest::new(
            AccessToken::new(token.expose_secret()).unwrap(),
        ))
        .await
        .unwrap_err();
    assert!(dead.plaid_error().unwrap().is_invalid_access_token());
}

/// Everything the server said, and the secrets to look for in it.
#[derive(Default)]
pub struct Transcript {
    /// (label, reply, the one secret this reply may legitimately carry).
    replies: Vec<(String, Reply, Option<String>)>,
    secrets: Vec<String>,
}

impl Transcript {
    pub fn record(&mut self, label: &str, reply: &Reply, allowed: Option<&str>) {
        self.replies
            .push((label.to_owned(), reply.clone(), allowed.map(str::to_owned)));
    }

    pub fn secret(&mut self, value: &str) {
        assert!(value.len() > 20, "{value}");
        self.secrets.push(value.to_owned());
    }

    /// Asserts that at least `min_replies` were recorded, that no secret stands in a reply
    /// (other than the one it may carry) or in `logs`, and that no reply recorded without an
    /// allowance, and no log line, holds anything shaped like a sandbox token (tokens the test
    /// never planted are caught too).
    pub fn check(&self, logs: &str, min_replies: usize) {
        assert!(
            self.replies.len() >= min_replies,
            "too few replies recorded"
        );
        for (label, reply, allowed) in &self.replies {
            let text = reply.scan_text();
            for secret in &self.secrets {
                if allowed.as_deref() == Some(secret.as_str()) {
                    continue;
                }
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret leaked in the reply to {label}"
                );
            }
            // The planted secrets were looked for above (with a message that does not quote
            // them); this adds the token shapes.
            if allowed.is_none() {
                tokenward_testkit::leaks::assert_clean_text(
                    &format!("the reply to {label}"),
                    &text,
                    &self.secrets,
                );
            }
        }
        for secret in &self.secrets {
            assert!(
                !logs.contains(secret.as_str()),
                "a secret leaked in the log"
            );
        }
        tokenward_testkit::leaks::assert_clean_text("the log", logs, &self.secrets);
    }
}

/// Captured log output of the redacting formatter.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the redacting formatter the examples use, writing into `logs`, for this thread
/// (the tests run on a current-thread runtime, so the server's and the emulator's tasks log
/// here too).
pub fn capture_logs(logs: &Logs) -> tracing::subscriber::DefaultGuard {
    use tracing_subscriber::layer::SubscriberExt as _;
    let writer = logs.clone();
    let layer =
        tokenward_redact::integrations::redacting_fmt_layer(tokenward_redact::Policy::plaid())
            .with_writer(move || writer.clone());
    tracing::subscriber::set_default(tracing_subscriber::registry().with(layer))
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// One request through the router, without a socket; `cookie` is the session cookie's value.
pub async fn call(
    router: &Router,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("{SESSION_COOKIE}={cookie}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.as_ref().to_vec())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let body = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// One request over loopback with the session cookie's value, if any: see [`request`].
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> Reply {
    let cookie = cookie.map(|value| format!("{SESSION_COOKIE}={value}"));
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
    request(addr, method, path, &headers, body).await
}

/// A minimal HTTP/1.1 client: one request per connection (`Connection: close`), the response
/// read until it is whole (some servers keep the connection open despite `Connection: close`:
/// what the head announces is read, not to EOF), a chunked body decoded, a `Content-Length`
/// checked.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = vec![0_u8; 16 * 1024];
    while !complete(&raw) {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    parse_reply(&raw)
}

/// Whether `raw` holds a whole response: the head and the body its head announces.
pub fn complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    for line in head.split("\r\n") {
        if let Some(length) = line.strip_prefix("content-length:") {
            return body.len() >= length.trim().parse::<usize>().unwrap();
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return body.ends_with(b"0\r\n\r\n");
        }
    }
    false
}

fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (n, v) = line.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let length = headers.iter().find(|(n, _)| n == "content-length");
    if chunked {
        body = dechunk(&body);
    } else if let Some((_, length)) = length {
        let length: usize = length.parse().unwrap();
        assert_eq!(body.len(), length, "body length");
    }
    Reply {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
