//! The `hybrid_server` example driven through its whole API against the emulator, in-process
//! through the router and over loopback HTTP/1.1: sign-up and the session cookie, link and
//! exchange into the vault, the JSON dashboard and the HTML page (escaped, with its SVG chart),
//! webhooks the emulator signs and delivers (cache invalidation, Item health), captured
//! deliveries replayed and forged (missing, garbage, bad signature, changed body: 401; the
//! original: processed once, then a duplicate), missing, tampered and expired sessions,
//! logout, `delete-me` twice, and a leak scan of every response and log line.
//!
//! The `SQLite` variant always runs. The Redis variant (transaction metadata and vault
//! ciphertext cached, own key prefix) runs when `TOKENWARD_TEST_REDIS_URL` is set, the
//! Postgres one (vault and users tables in a schema of the run's own, dropped at the end) when
//! `TOKENWARD_TEST_POSTGRES_URL` is set; otherwise they skip and say so, and fail under
//! `CI=true`. The users tables hold a session's SHA-256, never its id, and `delete-me` leaves
//! no row naming the user.
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

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::Router;
use hybrid_server::{CACHED_FIELDS, Config, SESSION_COOKIE, TxCache, Users};
use serde_json::Value;
use support::{CLIENT_ID, Logs, SECRET, Transcript, assert_refused, call, capture_logs, http};
use tokenward_envelope::{Cipher, Keyring};
use tokenward_plaid::PlaidApi;
use tokenward_plaid::webhooks::{PlaidKeySource, WebhookVerifier};
use tokenward_redact::AccessToken;
use tokenward_sandbox::Sandbox;
use tokenward_testkit::corpus::hex;
use tokenward_testkit::webhook::Hook;
use tokenward_vault::{CacheConfig, CachedVault, ItemId, ReadError, SqlVault, Vault};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// The fixture.

/// Which services a run uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    SqliteWithRedis,
    Postgres,
}

fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set, and under CI=true a missing service is a failure"
            );
            eprintln!("skipped: {var} is not set (run scripts/services to start the services)");
            None
        }
    }
}

struct Fixture {
    sandbox: Sandbox,
    plaid: Arc<dyn PlaidApi>,
    vault: Arc<dyn Vault>,
    cache: Option<TxCache>,
    redis: Option<redis::aio::MultiplexedConnection>,
    verifier: Arc<WebhookVerifier>,
    users: Users,
    now: Arc<AtomicI64>,
    /// The Postgres URL and this run's schema, dropped by [`Fixture::finish`].
    postgres: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(backend: Backend, redis_url: Option<&str>, postgres_url: Option<&str>) -> Self {
        // No seed: Item ids are random, so runs sharing a Postgres schema never collide.
        let sandbox = support::emulator(None).await;
        let plaid: Arc<dyn PlaidApi> = Arc::new(support::plaid_client(&sandbox));
        let cipher = Cipher::new(Arc::new(Keyring::generate().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let (store, users, postgres) = match backend {
            Backend::Sqlite | Backend::SqliteWithRedis => {
                // The users tables in the vault's file, as the example does by default.
                let path = dir.path().join("vault.db");
                let store = SqlVault::sqlite_file(&path, cipher).await.unwrap();
                let url = format!("sqlite://{}?mode=rwc", path.to_str().unwrap());
                (store, Users::connect(&url).await.unwrap(), None)
            }
            Backend::Postgres => {
                // A schema of this run's own for the vault and the users tables, dropped at
                // the end: parallel runs never collide and nothing accumulates.
                let url = postgres_url.unwrap();
                let schema = format!("tw_example_hybrid_{}", &random_hex()[..16]);
                let store = SqlVault::postgres_in_schema(url, Some(&schema), cipher)
                    .await
                    .unwrap();
                let separator = if url.contains('?') { '&' } else { '?' };
                let users_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
                let users = Users::connect(&users_url).await.unwrap();
                (store, users, Some((url.to_owned(), schema)))
            }
        };
        let (vault, cache, redis): (Arc<dyn Vault>, _, _) = match redis_url {
            Some(url) => {
                // Our own prefix, so parallel runs and other tests never share keys.
                let prefix = format!("tokenward:test:hybrid:{}:", &random_hex()[..16]);
                let vault = CachedVault::new(
                    store,
                    CacheConfig::new(url).prefix(format!("{prefix}vault:")),
                )
                .unwrap();
                let cache = TxCache::connect(url, &prefix, Duration::from_secs(300))
                    .await
                    .unwrap();
                let connection = redis::Client::open(url)
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                (Arc::new(vault), Some(cache), Some(connection))
            }
            None => (Arc::new(store), None, None),
        };
        let verifier = Arc::new(WebhookVerifier::new(PlaidKeySource::new(Arc::clone(
            &plaid,
        ))));
        let now = chrono::Utc::now().timestamp();
        Fixture {
            sandbox,
            plaid,
            vault,
            cache,
            redis,
            verifier,
            users,
            now: Arc::new(AtomicI64::new(now)),
            postgres,
            dir,
        }
    }

    /// A server configuration over the shared state, sending Plaid's webhooks to `webhook_url`.
    fn config(&self, webhook_url: &str) -> Config {
        let mut config = Config::new(
            Arc::clone(&self.plaid),
            Arc::clone(&self.vault),
            self.users.clone(),
        );
        config.cache.clone_from(&self.cache);
        config.verifier = Arc::clone(&self.verifier);
        config.webhook_url = Some(webhook_url.to_owned());
        let now = Arc::clone(&self.now);
        config.clock = Arc::new(move || now.load(Ordering::SeqCst));
        config
    }

    async fn token(&self, item_id: &str) -> AccessToken {
        self.vault
            .get(&ItemId::new(item_id).unwrap())
            .await
            .unwrap()
            .token
    }

    /// Waits until the emulator has an answer from the receiver of a `code` webhook about
    /// `item_id` (after `seen` such answers), and returns its HTTP status.
    async fn delivered(&self, item_id: &str, code: &str, seen: usize) -> u16 {
        for _ in 0..1000 {
            let answered: Vec<u16> = self
                .sandbox
                .emulator()
                .webhook_deliveries()
                .into_iter()
                .filter(|d| d.item_id == item_id && d.webhook_code == code)
                .filter_map(|d| {
                    assert_eq!(d.error, None, "delivery failed");
                    d.status
                })
                .collect();
            if answered.len() > seen {
                return answered[seen];
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the {code} webhook was never answered");
    }

    /// Stops the emulator and drops this run's Postgres schema.
    async fn finish(self) {
        self.sandbox.shutdown().await;
        self.users.close().await;
        if let Some((url, schema)) = &self.postgres {
            let pool = sqlx::AnyPool::connect(url).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(&pool)
                .await
                .unwrap();
            let left = sqlx::query("SELECT 1 FROM pg_namespace WHERE nspname = $1")
                .bind(schema.as_str())
                .fetch_optional(&pool)
                .await
                .unwrap();
            assert!(left.is_none(), "the schema is still there");
            pool.close().await;
        }
    }

    /// Every byte of the `SQLite` files (the vault's and the users tables, WAL included).
    fn sqlite_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        bytes
    }

    async fn redis_exists(&self, key: &str) -> bool {
        let mut connection = self.redis.clone().unwrap();
        let n: i64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        n == 1
    }
}

/// 64 random hex digits, from the same source the examples use for session ids.
fn random_hex() -> String {
    let bytes: [u8; 32] = ring::rand::generate(&ring::rand::SystemRandom::new())
        .unwrap()
        .expose();
    hex(&bytes)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Signs up through `router`, links a sandbox Item, and returns (session id, item id).
async fn sign_up_and_link(router: &Router, transcript: &mut Transcript) -> (String, String) {
    let reply = call(router, "POST", "/api/link/token", None, &[], b"").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let session = reply.session_cookie().unwrap();
    transcript.secret(&session);
    let link_token = reply.json()["link_token"].as_str().unwrap().to_owned();
    transcript.secret(&link_token);
    transcript.record("link token", &reply, Some(&link_token));
    let reply = call(router, "POST", "/api/sandbox/public_token", None, &[], b"").await;
    let public_token = reply.json()["public_token"].as_str().unwrap().to_owned();
    transcript.secret(&public_token);
    transcript.record("public token", &reply, Some(&public_token));
    let body = serde_json::json!({ "public_token": public_token }).to_string();
    let reply = call(
        router,
        "POST",
        "/api/link/exchange",
        Some(&session),
        &[],
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    transcript.record("exchange", &reply, None);
    (
        session,
        reply.json()["item_id"].as_str().unwrap().to_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// The scenario.

async fn scenario(backend: Backend, redis_url: Option<&str>, postgres_url: Option<&str>) {
    let logs = Logs::default();
    let _guard = capture_logs(&logs);
    let fixture = Fixture::new(backend, redis_url, postgres_url).await;
    let cached = fixture.cache.is_some();
    let mut transcript = Transcript::default();
    transcript.secret(SECRET);
    transcript.secret(CLIENT_ID);

    // The server on loopback; the emulator delivers webhooks to it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let own_hook = format!("http://{addr}/webhooks/plaid");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hybrid_server::serve(
        listener,
        fixture.config(&own_hook),
        async move {
            let _ = stopped.await;
        },
    ));
    // The same server in-process (shared vault, users, verifier).
    let router = hybrid_server::app(fixture.config(&own_hook));

    // --- Sign-up, link and exchange over loopback HTTP.
    let reply = http(addr, "POST", "/api/link/token", None, "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    support::assert_cookie_attributes(&reply, 86_400);
    let session = reply.session_cookie().unwrap();
    // The session id is a bearer credential: only its own Set-Cookie may carry it.
    transcript.secret(&session);
    assert_eq!(session.len(), 64);
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    let link_token = reply.json()["link_token"].as_str().unwrap().to_owned();
    transcript.secret(&link_token);
    transcript.record("link token", &reply, Some(&link_token));
    assert_eq!(fixture.users.user_count().await.unwrap(), 1);

    // Asking again with the session keeps the user.
    let reply = http(addr, "POST", "/api/link/token", Some(&session), "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("set-cookie"), None);
    let again = reply.json()["link_token"].as_str().unwrap().to_owned();
    transcript.secret(&again);
    transcript.record("link token again", &reply, Some(&again));
    assert_eq!(fixture.users.user_count().await.unwrap(), 1);

    let reply = http(addr, "POST", "/api/sandbox/public_token", None, "").await;
    let public_token = reply.json()["public_token"].as_str().unwrap().to_owned();
    transcript.secret(&public_token);
    transcript.record("public token", &reply, Some(&public_token));

    let body = serde_json::json!({ "public_token": public_token }).to_string();
    let reply = http(addr, "POST", "/api/link/exchange", None, &body).await;
    assert_refused(&reply, "exchange without a session");
    transcript.record("exchange without session", &reply, None);
    let reply = http(addr, "POST", "/api/link/exchange", Some(&session), "{").await;
    assert_eq!(reply.status, 400);
    transcript.record("exchange bad body", &reply, None);
    let reply = http(addr, "POST", "/api/link/exchange", Some(&session), &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    transcript.record("exchange", &reply, None);
    let item_id = reply.json()["item_id"].as_str().unwrap().to_owned();
    let token = fixture.token(&item_id).await;
    transcript.secret(token.expose_secret());
    let reply = http(addr, "POST", "/api/link/exchange", Some(&session), &body).await;
    assert_eq!(reply.status, 400, "a used public token: {}", reply.body);
    transcript.record("exchange again", &reply, None);

    // --- The dashboard (JSON): live accounts, metadata-only transactions.
    let reply = call(&router, "GET", "/api/dashboard", Some(&session), &[], b"").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    transcript.record("dashboard", &reply, None);
    let dashboard = reply.json();
    let user_id = dashboard["user_id"].as_str().unwrap().to_owned();
    // The users tables: the user, their Item, one session (the second request reused it).
    assert_eq!(fixture.users.rows_of(&user_id).await.unwrap(), 3);
    if backend != Backend::Postgres {
        // The sessions table holds a SHA-256 of the session id, never the id.
        let bytes = fixture.sqlite_bytes();
        let hash = ring::digest::digest(&ring::digest::SHA256, session.as_bytes());
        let hash = hex(hash.as_ref());
        let holds = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(holds(&hash), "no session hash in the database");
        assert!(!holds(&session), "a session id is in the database");
    }
    assert_eq!(dashboard["cache"], if cached { "miss" } else { "off" });
    let item = &dashboard["items"][0];
    assert_eq!(item["item_id"], item_id.as_str());
    assert_eq!(item["health"], "healthy");
    assert_eq!(item["accounts"].as_array().unwrap().len(), 3);
    assert!(!dashboard["spending"].as_array().unwrap().is_empty());
    let transactions = dashboard["transactions"].as_array().unwrap();
    assert!(!transactions.is_empty() && transactions.len() <= 25);
    let fields: BTreeSet<&str> = CACHED_FIELDS.into_iter().collect();
    for t in transactions {
        let keys: BTreeSet<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, fields);
    }

    if cached {
        // Redis holds exactly the allow-listed fields, with a TTL.
        let key = fixture.cache.as_ref().unwrap().key(&item_id);
        let mut connection = fixture.redis.clone().unwrap();
        let raw: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(!raw.contains("[REDACTED"), "{raw}");
        let entries: Vec<Value> = serde_json::from_str(&raw).unwrap();
        assert!(!entries.is_empty());
        for entry in &entries {
            let keys: BTreeSet<&str> = entry
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, fields);
        }
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(ttl > 0, "no TTL on {key}");
        let reply = call(&router, "GET", "/api/dashboard", Some(&session), &[], b"").await;
        assert_eq!(reply.json()["cache"], "hit");
        transcript.record("dashboard cached", &reply, None);
    }

    // --- The page: server-rendered, escaped, with the SVG chart.
    let reply = call(&router, "GET", "/", Some(&session), &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        reply
            .header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'")
    );
    transcript.record("page", &reply, None);
    let page = &reply.body;
    assert!(page.contains("<svg"), "no chart");
    assert!(!page.contains("<script"));
    for account in item["accounts"].as_array().unwrap() {
        assert!(page.contains(&escape(account["name"].as_str().unwrap())));
    }
    for t in transactions {
        let merchant = t["merchant"].as_str().unwrap();
        assert!(page.contains(&escape(merchant)), "{merchant}");
        if merchant != escape(merchant) {
            assert!(!page.contains(merchant), "unescaped: {merchant}");
        }
    }
    for category in dashboard["spending"].as_array().unwrap() {
        assert!(page.contains(&escape(category["category"].as_str().unwrap())));
    }
    let reply = call(&router, "GET", "/", None, &[], b"").await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains("Not signed in"));
    transcript.record("page signed out", &reply, None);

    // --- Webhooks the emulator signs and delivers to the server.
    let body = br#"{"code":"SYNC_UPDATES_AVAILABLE"}"#;
    let reply = call(
        &router,
        "POST",
        "/api/sandbox/fire_webhook",
        Some(&session),
        &[],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    transcript.record("fire webhook", &reply, None);
    assert_eq!(
        fixture
            .delivered(&item_id, "SYNC_UPDATES_AVAILABLE", 0)
            .await,
        200
    );
    if cached {
        let key = fixture.cache.as_ref().unwrap().key(&item_id);
        assert!(
            !fixture.redis_exists(&key).await,
            "the webhook did not invalidate the cache"
        );
        let reply = call(&router, "GET", "/api/dashboard", Some(&session), &[], b"").await;
        assert_eq!(reply.json()["cache"], "miss");
    }

    // ITEM_LOGIN_REQUIRED: the ERROR webhook moves the Item's health, idempotently.
    for round in 0..2 {
        let reply = call(
            &router,
            "POST",
            "/api/sandbox/reset_login",
            Some(&session),
            &[],
            b"",
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(fixture.delivered(&item_id, "ERROR", round).await, 200);
    }
    let reply = call(&router, "GET", "/api/dashboard", Some(&session), &[], b"").await;
    transcript.record("dashboard needs reauth", &reply, None);
    let item = &reply.json()["items"][0];
    assert_eq!(item["health"], "needs_reauth");
    assert_eq!(item["error"], "item_login_required");
    let audit = fixture
        .vault
        .audit(&ItemId::new(item_id.as_str()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        audit.iter().filter(|r| r.reason == "webhook ERROR").count(),
        1,
        "the second ERROR webhook changed nothing"
    );

    // --- Deliveries captured, then replayed and forged against the server.
    // The listener keeps what it gets and answers 200; `next` waits at most 10 s.
    let mut captured = Hook::start().await;
    let second = hybrid_server::app(fixture.config(&captured.url));
    let (session2, item2) = sign_up_and_link(&second, &mut transcript).await;
    transcript.secret(fixture.token(&item2).await.expose_secret());
    let reply = call(
        &second,
        "POST",
        "/api/sandbox/fire_webhook",
        Some(&session2),
        &[],
        br#"{"code":"DEFAULT_UPDATE"}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let delivery = captured.next().await;
    let jwt = delivery.header.clone().unwrap_or_default();
    assert!(jwt.starts_with("ey"));
    let mut flipped = jwt.clone().into_bytes();
    let at = flipped.len() - 5;
    flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let mut changed_body = delivery.body.to_vec();
    changed_body.extend_from_slice(b" ");
    let forgeries: [(&str, Option<&str>, &[u8]); 5] = [
        ("no header", None, &delivery.body),
        ("garbage header", Some("not.a.jwt"), &delivery.body),
        ("signature changed", Some(&flipped), &delivery.body),
        ("body changed", Some(&jwt), &changed_body),
        ("empty header", Some(""), &delivery.body),
    ];
    for (label, header, body) in forgeries {
        let headers: Vec<(&str, &str)> = header
            .map(|h| vec![("plaid-verification", h)])
            .unwrap_or_default();
        let reply = call(&router, "POST", "/webhooks/plaid", None, &headers, body).await;
        assert_eq!(reply.status, 401, "{label}: {}", reply.body);
        assert_eq!(reply.json()["status"], "unverified", "{label}");
        transcript.record(label, &reply, None);
    }
    let headers = [("plaid-verification", jwt.as_str())];
    // The original: processed once, then a duplicate.
    for (label, status) in [("webhook", "processed"), ("webhook replay", "duplicate")] {
        let reply = call(
            &router,
            "POST",
            "/webhooks/plaid",
            None,
            &headers,
            &delivery.body,
        )
        .await;
        assert_eq!(reply.status, 200, "{label}: {}", reply.body);
        assert_eq!(reply.json()["status"], status, "{label}");
        transcript.record(label, &reply, None);
    }

    // --- Sessions: missing, tampered, expired; logout.
    for (method, path) in [
        ("GET", "/api/dashboard"),
        ("POST", "/api/link/exchange"),
        ("DELETE", "/api/delete-me"),
        ("POST", "/api/logout"),
        ("POST", "/api/sandbox/reset_login"),
    ] {
        let reply = call(&router, method, path, None, &[], b"{}").await;
        assert_refused(&reply, &format!("{method} {path} without a session"));
        transcript.record(path, &reply, None);
    }
    let mut tampered = session.clone().into_bytes();
    tampered[10] = if tampered[10] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (label, value) in [
        ("tampered", tampered.as_str()),
        ("not hex", "zz"),
        ("too long", &format!("{session}00")),
    ] {
        let reply = call(&router, "GET", "/api/dashboard", Some(value), &[], b"").await;
        assert_refused(&reply, label);
        transcript.record(label, &reply, None);
    }

    let reply = call(&router, "POST", "/api/link/token", None, &[], b"").await;
    let session3 = reply.session_cookie().unwrap();
    transcript.secret(&session3);
    let link3 = reply.json()["link_token"].as_str().unwrap().to_owned();
    transcript.secret(&link3);
    transcript.record("link token 3", &reply, Some(&link3));
    let reply = call(&router, "GET", "/api/dashboard", Some(&session3), &[], b"").await;
    assert_eq!(reply.status, 200);
    assert!(reply.json()["items"].as_array().unwrap().is_empty());
    let start = fixture.now.load(Ordering::SeqCst);
    fixture.now.store(
        start + hybrid_server::DEFAULT_SESSION_TTL_SECS - 1,
        Ordering::SeqCst,
    );
    let reply = call(&router, "GET", "/api/dashboard", Some(&session3), &[], b"").await;
    assert_eq!(reply.status, 200, "one second before expiry");
    fixture.now.store(
        start + hybrid_server::DEFAULT_SESSION_TTL_SECS,
        Ordering::SeqCst,
    );
    let reply = call(&router, "GET", "/api/dashboard", Some(&session3), &[], b"").await;
    assert_refused(&reply, "expired");
    transcript.record("expired", &reply, None);
    fixture.now.store(start, Ordering::SeqCst);
    let reply = call(&router, "GET", "/api/dashboard", Some(&session3), &[], b"").await;
    assert_refused(&reply, "an expired session is gone for good");

    let reply = call(&second, "POST", "/api/logout", Some(&session2), &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.session_cookie().as_deref(), Some(""));
    transcript.record("logout", &reply, None);
    let reply = call(&second, "GET", "/api/dashboard", Some(&session2), &[], b"").await;
    assert_refused(&reply, "after logout");

    // --- delete-me: Plaid, vault, cache, user, session; then a clean 401.
    let reply = http(addr, "DELETE", "/api/delete-me", Some(&session), "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["items_removed"], 1);
    assert_eq!(reply.session_cookie().as_deref(), Some(""));
    transcript.record("delete-me", &reply, None);
    assert!(matches!(
        fixture
            .vault
            .item(&ItemId::new(item_id.as_str()).unwrap())
            .await,
        Err(ReadError::NotFound(_))
    ));
    support::assert_token_dead(fixture.plaid.as_ref(), &token).await;
    if cached {
        let key = fixture.cache.as_ref().unwrap().key(&item_id);
        assert!(!fixture.redis_exists(&key).await);
    }
    let reply = http(addr, "DELETE", "/api/delete-me", Some(&session), "").await;
    assert_refused(&reply, "delete-me twice");
    transcript.record("delete-me again", &reply, None);
    let reply = http(addr, "GET", "/api/dashboard", Some(&session), "").await;
    assert_refused(&reply, "dashboard after delete-me");
    transcript.record("dashboard after delete-me", &reply, None);
    // The second user (logged out) and the third (expired) are still there; the first is not,
    // and no row of the users tables names them.
    assert_eq!(fixture.users.user_count().await.unwrap(), 2);
    assert_eq!(fixture.users.rows_of(&user_id).await.unwrap(), 0);
    // Leave the store as found: the second user's Item goes too.
    let owner = fixture
        .vault
        .item(&ItemId::new(item2.as_str()).unwrap())
        .await
        .unwrap()
        .user_id;
    let now = tokenward_vault::Timestamp::from_unix_millis(start * 1000);
    let erased = fixture.vault.erase_user(&owner, "test", now).await.unwrap();
    assert_eq!(erased.items.len(), 1);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let logs = logs.text();
    assert!(logs.contains("webhook verified"), "{logs}");
    assert!(logs.contains("webhook rejected"), "{logs}");
    assert!(logs.contains("user erased"), "{logs}");
    transcript.check(&logs, 30);
    fixture.finish().await;
}

/// The page's forms, as a browser without JavaScript uses them: link (signing up), link a
/// second bank, a stale cookie, delete my data.
#[tokio::test]
async fn page_forms_without_javascript() {
    let logs = Logs::default();
    let _guard = capture_logs(&logs);
    let fixture = Fixture::new(Backend::Sqlite, None, None).await;
    // No webhook fires in this test; the URL only has to be well-formed.
    let router = hybrid_server::app(fixture.config("http://127.0.0.1:9/webhooks/plaid"));
    let mut transcript = Transcript::default();
    transcript.secret(SECRET);

    let reply = call(&router, "POST", "/demo/link", None, &[], b"").await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("location"), Some("/"));
    let session = reply.session_cookie().unwrap();
    transcript.secret(&session);
    transcript.record("demo link", &reply, None);
    let reply = call(&router, "POST", "/demo/link", Some(&session), &[], b"").await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.header("set-cookie"), None, "the session is kept");
    transcript.record("demo link again", &reply, None);
    assert_eq!(fixture.users.user_count().await.unwrap(), 1);

    let reply = call(&router, "GET", "/", Some(&session), &[], b"").await;
    assert_eq!(reply.status, 200);
    transcript.record("page", &reply, None);
    assert_eq!(reply.body.matches("<h2>Item ").count(), 2);
    assert!(reply.body.contains("<svg"));
    assert!(reply.body.contains("Plaid Checking"));
    assert!(reply.body.contains("action=\"/demo/delete-me\""));
    let dashboard = call(&router, "GET", "/api/dashboard", Some(&session), &[], b"").await;
    transcript.record("dashboard", &dashboard, None);
    let item_ids: Vec<String> = dashboard.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(item_ids.len(), 2);
    for item_id in &item_ids {
        transcript.secret(fixture.token(item_id).await.expose_secret());
    }

    let stale = "0".repeat(64);
    let reply = call(&router, "GET", "/", Some(&stale), &[], b"").await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains("Not signed in"));
    assert_eq!(
        reply.session_cookie().as_deref(),
        Some(""),
        "a stale cookie is deleted"
    );
    transcript.record("page with a stale cookie", &reply, None);

    let reply = call(&router, "POST", "/demo/delete-me", Some(&session), &[], b"").await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.session_cookie().as_deref(), Some(""));
    transcript.record("demo delete-me", &reply, None);
    assert_eq!(fixture.users.user_count().await.unwrap(), 0);
    for item_id in &item_ids {
        assert!(matches!(
            fixture
                .vault
                .item(&ItemId::new(item_id.as_str()).unwrap())
                .await,
            Err(ReadError::NotFound(_))
        ));
    }
    let reply = call(&router, "POST", "/demo/delete-me", Some(&session), &[], b"").await;
    assert_refused(&reply, "delete my data twice");
    transcript.record("demo delete-me again", &reply, None);
    let reply = call(&router, "GET", "/", Some(&session), &[], b"").await;
    assert!(reply.body.contains("Not signed in"));
    transcript.record("page after delete-me", &reply, None);

    transcript.check(&logs.text(), 8);
    fixture.finish().await;
}

#[tokio::test]
async fn hybrid_on_sqlite() {
    scenario(Backend::Sqlite, None, None).await;
}

#[tokio::test]
async fn hybrid_with_redis_cache() {
    let Some(url) = service_url("TOKENWARD_TEST_REDIS_URL") else {
        return;
    };
    scenario(Backend::SqliteWithRedis, Some(&url), None).await;
}

#[tokio::test]
async fn hybrid_on_postgres() {
    let Some(url) = service_url("TOKENWARD_TEST_POSTGRES_URL") else {
        return;
    };
    scenario(Backend::Postgres, None, Some(&url)).await;
}
