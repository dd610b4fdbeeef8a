//! The `hybrid_server` dashboard in a real browser: headless Chromium driven through
//! chromedriver with the W3C `WebDriver` protocol (JSON over a minimal HTTP/1.1 client).
//!
//! The server runs on loopback against the in-process emulator; the test signs up and links an
//! Item through its HTTP API, hands the session cookie to the browser and loads `/`. It checks
//! that the page shows every account with its balances, that the SVG chart has one bar per
//! spending category with the right labels in the right order, that the page requested nothing
//! from outside loopback (resource timing), that script cannot read the session cookie, and that
//! the page source holds no token, secret or session id. A screenshot is written to
//! `target/tmp/dashboard_browser.png` for people to look at, after checking it is a real PNG.
//! Then the page's "Delete my data" button is clicked: the browser is signed out, its cookie
//! deleted, and the user's rows and Item are gone. Last, the page's "Link a sandbox bank" form
//! is clicked: the server's 303 sets the session cookie (`HttpOnly`, `Secure`,
//! `SameSite=Strict`), the page shows the new Item, and script cannot read that cookie.
//!
//! chromedriver comes from `TOKENWARD_TEST_CHROMEDRIVER`, else `PATH` (`eval "$(bash
//! scripts/browser)"` installs and exports it). Without it the test skips and says so, and fails
//! under `CI=true`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    clippy::print_stderr,
    missing_docs,
    reason = "test code"
)]

#[allow(
    dead_code,
    unreachable_pub,
    unused_qualifications,
    reason = "the example's main is not called here"
)]
#[path = "../examples/hybrid_server.rs"]
mod hybrid_server;
mod support;

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokenward_envelope::{Cipher, Keyring};
use tokenward_plaid::PlaidApi;
use tokenward_vault::{ItemId, SqlVault, Vault};
use tokio::net::{TcpListener, TcpStream};

use hybrid_server::{Config, SESSION_COOKIE, Users};
use support::{SECRET, complete, request};

// ---------------------------------------------------------------------------------------------
// chromedriver and a `WebDriver` session.

/// The chromedriver binary: `TOKENWARD_TEST_CHROMEDRIVER`, else `chromedriver` on `PATH`.
fn chromedriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TOKENWARD_TEST_CHROMEDRIVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
}

/// A running chromedriver, killed (and reaped) on drop.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Driver {
    async fn start(binary: &PathBuf) -> Self {
        // A free loopback port: bind, read it, release it for chromedriver.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let driver = Driver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        // Ready when /status says so (polled for up to 20 s).
        for _ in 0..200 {
            if TcpStream::connect(driver.addr).await.is_ok() {
                let reply = request(driver.addr, "GET", "/status", &[], "").await;
                if reply.status == 200 && reply.json()["value"]["ready"] == true {
                    return driver;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `WebDriver` session in headless Chromium; deleted on drop (which closes the browser).
struct Browser {
    driver: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(driver: &Driver) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--window-size=1200,900",
                            format!("--user-data-dir={}", profile.path().display()),
                        ]
                    }
                }
            }
        });
        let reply = request(
            driver.addr,
            "POST",
            "/session",
            &[("Content-Type", "application/json")],
            &capabilities.to_string(),
        )
        .await;
        let value = reply.json();
        assert_eq!(reply.status, 200, "new session: {value}");
        Browser {
            driver: driver.addr,
            session: value["value"]["sessionId"].as_str().unwrap().to_owned(),
            _profile: profile,
        }
    }

    /// One command: its `value`, or a panic naming the `WebDriver` error.
    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if method == "POST" {
            &[("Content-Type", "application/json")]
        } else {
            &[]
        };
        let reply = request(self.driver, method, &path, headers, &body).await;
        let mut value = reply.json();
        assert_eq!(
            reply.status, 200,
            "{method} {path}: {}",
            value["value"]["error"]
        );
        value["value"].take()
    }

    async fn navigate(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The page's visible text.
    async fn text(&self) -> String {
        self.script("return document.body.innerText;")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Clicks the element `selector` finds.
    async fn click(&self, selector: &str) {
        let found = self
            .command(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": selector })),
            )
            .await;
        let element = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Waits (up to 5 s) until the page's visible text satisfies `done`; whether it did.
    async fn wait_for_text(&self, done: impl Fn(&str) -> bool) -> bool {
        for _ in 0..100 {
            let text = self.script("return document.body.innerText;").await;
            if done(text.as_str().unwrap_or_default()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    async fn script(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Synchronous (drop cannot await): ends the session, which closes Chromium.
        let Ok(mut stream) =
            std::net::TcpStream::connect_timeout(&self.driver, Duration::from_secs(5))
        else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Length: 0\r\n\r\n",
            self.session, self.driver
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            // chromedriver answers once the browser is closed.
            let mut raw = Vec::new();
            let mut buf = [0_u8; 4096];
            while !complete(&raw) {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Screenshots.

/// The width and height in a PNG's IHDR, after checking the signature and the chunk layout
/// (every chunk's length in bounds, IHDR first, at least one IDAT, IEND last).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut at = 8;
    let mut chunks = Vec::new();
    while at < png.len() {
        let length = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&png[at + 4..at + 8]).into_owned();
        assert!(
            at + 12 + length <= png.len(),
            "chunk {kind} runs past the end"
        );
        chunks.push((kind, at + 8, length));
        at += 12 + length;
    }
    assert_eq!(chunks.first().map(|c| c.0.as_str()), Some("IHDR"));
    assert_eq!(chunks.last().map(|c| c.0.as_str()), Some("IEND"));
    assert!(chunks.iter().any(|c| c.0 == "IDAT"), "no image data");
    let ihdr = chunks[0].1;
    (
        u32::from_be_bytes(png[ihdr..ihdr + 4].try_into().unwrap()),
        u32::from_be_bytes(png[ihdr + 4..ihdr + 8].try_into().unwrap()),
    )
}

// ---------------------------------------------------------------------------------------------
// The test.

fn money(amount: &Value, currency: &Value) -> String {
    match amount.as_f64() {
        Some(a) => format!("{a:.2} {}", currency.as_str().unwrap_or_default()),
        None => "–".to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let Some(binary) = chromedriver() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromedriver is missing (TOKENWARD_TEST_CHROMEDRIVER unset, none on PATH), and \
             under CI=true that is a failure: run scripts/browser"
        );
        eprintln!(
            "skipped: no chromedriver (set TOKENWARD_TEST_CHROMEDRIVER or run \
             `eval \"$(bash scripts/browser)\"`)"
        );
        return;
    };

    // The server on loopback, against the emulator, over an SQLite vault.
    let sandbox = support::emulator(None).await;
    let plaid: Arc<dyn PlaidApi> = Arc::new(support::plaid_client(&sandbox));
    let dir = tempfile::tempdir().unwrap();
    let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let vault: Arc<dyn Vault> = Arc::new(
        SqlVault::sqlite_file(dir.path().join("vault.db"), cipher)
            .await
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = format!("http://{addr}");
    let users = Users::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("vault.db").to_str().unwrap()
    ))
    .await
    .unwrap();
    let mut config = Config::new(Arc::clone(&plaid), Arc::clone(&vault), users.clone());
    config.webhook_url = Some(format!("{origin}/webhooks/plaid"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hybrid_server::serve(listener, config, async move {
        let _ = stopped.await;
    }));

    // Sign up and link an Item through the HTTP API; keep every secret the test saw.
    let mut secrets = vec![SECRET.to_owned()];
    let reply = request(addr, "POST", "/api/link/token", &[], "").await;
    assert_eq!(reply.status, 200);
    let session = reply.session_cookie().expect("a session cookie");
    let cookie = format!("{SESSION_COOKIE}={session}");
    secrets.push(session.clone());
    secrets.push(reply.json()["link_token"].as_str().unwrap().to_owned());
    let reply = request(addr, "POST", "/api/sandbox/public_token", &[], "").await;
    let public_token = reply.json()["public_token"].as_str().unwrap().to_owned();
    secrets.push(public_token.clone());
    let body = json!({ "public_token": public_token }).to_string();
    let reply = request(
        addr,
        "POST",
        "/api/link/exchange",
        &[("Cookie", &cookie)],
        &body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let item_id = reply.json()["item_id"].as_str().unwrap().to_owned();
    let token = vault
        .get(&ItemId::new(item_id.as_str()).unwrap())
        .await
        .unwrap()
        .token;
    secrets.push(token.expose_secret().to_owned());
    let reply = request(addr, "GET", "/api/dashboard", &[("Cookie", &cookie)], "").await;
    assert_eq!(reply.status, 200);
    let dashboard = reply.json();
    let accounts = dashboard["items"][0]["accounts"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!accounts.is_empty());
    let categories: Vec<String> = dashboard["spending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap().to_owned())
        .collect();
    assert!(!categories.is_empty(), "the emulator's Item has spending");

    // The browser: the origin first (a cookie needs a current page on its host), then `/`.
    let driver = Driver::start(&binary).await;
    let browser = Browser::open(&driver).await;
    browser.navigate(&format!("{origin}/")).await;
    let text = browser.text().await;
    assert!(text.contains("Not signed in"), "{text}");
    browser
        .command(
            "POST",
            "/cookie",
            Some(json!({
                "cookie": {
                    "name": SESSION_COOKIE,
                    "value": session,
                    "path": "/",
                    "secure": true,
                    "httpOnly": true,
                    "sameSite": "Strict",
                }
            })),
        )
        .await;
    browser.navigate(&format!("{origin}/")).await;

    // Accounts and balances, as the page shows them.
    let text = browser.text().await;
    assert!(text.contains("Your accounts"), "{text}");
    assert!(!text.contains("Not signed in"), "the session was not used");
    assert!(text.contains(&format!("Item {item_id}")), "{text}");
    for account in &accounts {
        let name = account["name"].as_str().unwrap();
        let row = text
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}: {text}"));
        for balance in ["current", "available"] {
            let shown = money(&account[balance], &account["currency"]);
            assert!(row.contains(&shown), "{name} {balance} {shown}: {row}");
        }
    }

    // The chart: one bar per category, labelled in order, widths ordered like the totals.
    let chart = browser
        .script(
            "const svg = document.querySelector('svg');
             if (!svg) { return null; }
             return {
               bars: Array.from(svg.querySelectorAll('rect'), r => r.width.baseVal.value),
               labels: Array.from(svg.querySelectorAll('text[text-anchor=end]'),
                                  t => t.textContent),
               height: svg.getBoundingClientRect().height,
             };",
        )
        .await;
    assert!(chart.is_object(), "no SVG chart on the page");
    let labels: Vec<&str> = chart["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(labels, categories);
    let bars: Vec<f64> = chart["bars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .collect();
    assert_eq!(bars.len(), categories.len(), "one bar per category");
    assert!(bars.iter().all(|&w| w > 0.0), "{bars:?}");
    assert!(bars.windows(2).all(|w| w[0] >= w[1]), "{bars:?}");
    assert!(
        chart["height"].as_f64().unwrap() > 0.0,
        "the chart is rendered"
    );

    // Nothing fetched from anywhere but loopback, and script cannot read the session (the
    // cookie the server sets is checked the same way at the end).
    let resources = browser
        .script("return performance.getEntriesByType('resource').map(e => e.name);")
        .await;
    for url in resources.as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with(&format!("{origin}/")),
            "external resource: {url}"
        );
    }
    let readable = browser.script("return document.cookie;").await;
    assert_eq!(readable, "", "the session cookie is httpOnly");

    // The page source holds no token, secret or session id.
    let source = browser.command("GET", "/source", None).await;
    let source = source.as_str().unwrap();
    assert!(source.contains("<svg"));
    tokenward_testkit::leaks::assert_clean_text("the page source", source, &secrets);

    // A screenshot, checked and kept for people to look at.
    let shot = browser.command("GET", "/screenshot", None).await;
    // Standard base64 with padding, as `WebDriver` sends screenshots.
    let png = STANDARD.decode(shot.as_str().unwrap()).unwrap();
    let (width, height) = png_size(&png);
    assert!(width >= 600 && height >= 400, "{width}x{height}");
    assert!(png.len() > 10_000, "a {} byte screenshot", png.len());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard_browser.png");
    std::fs::write(&out, &png).unwrap();
    eprintln!("screenshot: {}", out.display());

    // "Delete my data", clicked: the page's form erases the user and signs the browser out.
    browser.click("form[action='/demo/delete-me'] button").await;
    let signed_out = browser
        .wait_for_text(|text| text.contains("Not signed in"))
        .await;
    assert!(signed_out, "the page did not sign out after Delete my data");
    assert_eq!(users.user_count().await.unwrap(), 0);
    assert_eq!(users.session_count().await.unwrap(), 0);
    assert!(
        vault
            .get(&ItemId::new(item_id.as_str()).unwrap())
            .await
            .is_err()
    );
    let cookies = browser.command("GET", "/cookie", None).await;
    assert_eq!(cookies, json!([]), "the session cookie was deleted");

    // The page's link form, clicked: the server signs the browser up and links an Item, its
    // 303 sets the session cookie, and script still cannot read it (a cookie the server set,
    // not one the test injected).
    browser.click("form[action='/demo/link'] button").await;
    let linked = browser
        .wait_for_text(|text| !text.contains("Not signed in") && text.contains("Item "))
        .await;
    assert!(linked, "the page did not sign in after Link a sandbox bank");
    let cookies = browser.command("GET", "/cookie", None).await;
    let cookies = cookies.as_array().unwrap();
    assert_eq!(cookies.len(), 1, "one cookie, the session");
    let cookie = &cookies[0];
    assert_eq!(cookie["name"], SESSION_COOKIE);
    assert_eq!(cookie["httpOnly"], true, "the server set it httpOnly");
    assert_eq!(cookie["secure"], true);
    assert_eq!(cookie["sameSite"], "Strict");
    let readable = browser.script("return document.cookie;").await;
    assert_eq!(readable, "", "script reads the server's session cookie");
    secrets.push(cookie["value"].as_str().unwrap().to_owned());
    let source = browser.command("GET", "/source", None).await;
    tokenward_testkit::leaks::assert_clean_text(
        "the page source after the link form",
        source.as_str().unwrap(),
        &secrets,
    );
    assert_eq!(users.user_count().await.unwrap(), 1);

    drop(browser);
    drop(driver);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    sandbox.shutdown().await;
}
