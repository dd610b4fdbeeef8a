//! The HTTP side: the router, the admin routes, connection-level serving, and the public
//! handles [`Emulator`], [`Sandbox`] and [`SandboxBuilder`].

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use tokenward_redact::{ClientId, ClientSecret};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt as _;

use crate::config::{Clock, Config, Limits, SystemClock};
use crate::emulator::{Shared, credential_digests};
use crate::error::{ApiError, SandboxError};
use crate::faults::{ENDPOINTS, Faults, Outcome};
use crate::ids;
use crate::webhook::WebhookDelivery;

/// The prefix of the emulator's own routes, kept apart from Plaid's paths.
pub const ADMIN_PREFIX: &str = "/__tokenward/";

/// Marks a response whose connection must be dropped instead of answered.
#[derive(Debug, Clone, Copy)]
struct DropConnection;

/// The error a connection's service returns to make hyper close it without a response.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// Configures an emulator; see [`Sandbox::builder`].
pub struct SandboxBuilder {
    listen: SocketAddr,
    credentials: Option<([u8; 32], [u8; 32])>,
    limits: Limits,
    clock: Arc<dyn Clock>,
    seed: Option<u64>,
}

impl std::fmt::Debug for SandboxBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxBuilder")
            .field("listen", &self.listen)
            .field("fixed_credentials", &self.credentials.is_some())
            .field("limits", &self.limits)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        SandboxBuilder {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            credentials: None,
            limits: Limits::default(),
            clock: Arc::new(SystemClock::default()),
            seed: None,
        }
    }
}

impl SandboxBuilder {
    /// Where [`start`](Self::start) listens; default `127.0.0.1:0` (a free port).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Accepts only this client id and secret; without it any non-empty pair is accepted.
    ///
    /// Only SHA-256 digests of the two are kept; requests are compared in constant time.
    #[must_use]
    pub fn credentials(mut self, client_id: &ClientId, secret: &ClientSecret) -> Self {
        self.credentials = Some(credential_digests(
            client_id.expose_secret(),
            secret.expose_secret(),
        ));
        self
    }

    /// Caps and lifetimes; see [`Limits`].
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The clock for expiry, Item creation dates and webhook `iat`s; default the system clock.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Makes `item_id`s and all account and transaction data depend on `seed` alone (with
    /// the clock), so that two runs return the same data. Tokens stay random.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// An emulator for in-process use ([`Emulator::router`]), without a listening socket.
    pub fn build(self) -> Result<Emulator, SandboxError> {
        if self.limits.max_body_bytes == 0 {
            return Err(SandboxError::Config("max_body_bytes must be positive"));
        }
        let config = Config {
            credentials: self.credentials,
            limits: self.limits,
            clock: self.clock,
            seed: self.seed,
        };
        Ok(Emulator {
            shared: Arc::new(Shared::new(config)?),
        })
    }

    /// Builds the emulator and serves it on the configured address.
    pub async fn start(self) -> Result<Sandbox, SandboxError> {
        let listen = self.listen;
        let emulator = self.build()?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: listen,
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(
            listener,
            emulator.router(),
            stopped,
            Arc::clone(&accepted),
        ));
        Ok(Sandbox {
            emulator,
            addr,
            stop,
            accepted,
            task: Some(task),
        })
    }
}

/// The emulator's state and Rust API, without a socket; clones share the state.
#[derive(Debug, Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
}

impl Emulator {
    /// The routes (Plaid's endpoints and the admin routes) as an axum [`Router`], for
    /// in-process tests (`tower::ServiceExt::oneshot`) or to mount in another app.
    ///
    /// A commit-then-drop fault cannot drop a connection here: the response then has status
    /// 500, an empty body and the header `x-tokenward-fault: dropped`. [`Sandbox`] turns it
    /// into a dropped connection.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(dispatch)
            .with_state(Arc::clone(&self.shared))
    }

    /// The fault table.
    #[must_use]
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Expires the current webhook signing key (it stays fetchable, with `expired_at` set)
    /// and signs from now on with a new one; returns the new key id.
    pub fn rotate_webhook_key(&self) -> Result<String, SandboxError> {
        self.shared.rotate_webhook_key()
    }

    /// The id (`kid`) of the key webhooks are signed with now.
    #[must_use]
    pub fn webhook_key_id(&self) -> String {
        self.shared.current_webhook_key_id()
    }

    /// What happened to the latest webhooks (up to 256), oldest first.
    #[must_use]
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.webhook_deliveries()
    }

    /// How many Items exist.
    #[must_use]
    pub fn item_count(&self) -> usize {
        self.shared.item_count()
    }

    /// New activity at the institution for an Item: its pending transactions post, the latest
    /// posted one is modified, two purchases arrive. `/transactions/sync` then reports the
    /// changes. Returns how many transactions were added. Firing `DEFAULT_UPDATE` or
    /// `SYNC_UPDATES_AVAILABLE` does the same.
    pub fn simulate_transactions_update(&self, item_id: &str) -> Result<usize, SandboxError> {
        self.shared.simulate_transactions_update(item_id)
    }

    /// Takes an Item out of `ITEM_LOGIN_REQUIRED`, as the user going through Link's update
    /// mode would (firing `LOGIN_REPAIRED` does the same).
    pub fn repair_login(&self, item_id: &str) -> Result<(), SandboxError> {
        self.shared.set_login_required(item_id, false)
    }
}

/// A running emulator serving HTTP/1.1 on a local address.
///
/// Dropping it stops the server too; [`shutdown`](Self::shutdown) also waits for it.
#[derive(Debug)]
pub struct Sandbox {
    emulator: Emulator,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accepted: Arc<AtomicU64>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// A builder with the defaults: `127.0.0.1:0`, any credentials, [`Limits::default`], the
    /// system clock, a random seed.
    #[must_use]
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Starts an emulator with the defaults.
    pub async fn start() -> Result<Sandbox, SandboxError> {
        Self::builder().start().await
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many TCP connections the server has accepted so far: lets a test check that a
    /// client reuses its connections.
    #[must_use]
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// `http://<addr>`, to use as a Plaid client's base URL.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The emulator's state and Rust API.
    #[must_use]
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// The fault table (shortcut for `emulator().faults()`).
    #[must_use]
    pub fn faults(&self) -> &Faults {
        self.emulator.faults()
    }

    /// Rotates the webhook signing key (shortcut for `emulator().rotate_webhook_key()`).
    pub fn rotate_webhook_key(&self) -> Result<String, SandboxError> {
        self.emulator.rotate_webhook_key()
    }

    /// Stops accepting connections, closes the open ones and waits for the server to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections until told to stop, serving each with hyper so that a fault can end
/// one without a response.
async fn serve(
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
    accepted_count: Arc<AtomicU64>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                accepted_count.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request: axum::http::Request<Incoming>| {
                        let router = router.clone();
                        async move {
                            let response = match router.oneshot(request.map(Body::new)).await {
                                Ok(response) => response,
                                Err(never) => match never {},
                            };
                            if response.extensions().get::<DropConnection>().is_some() {
                                Err(Dropped)
                            } else {
                                Ok(response)
                            }
                        }
                    });
                    // Errors end only this connection (a dropped fault, a client gone away).
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Every request: admin routes, then Plaid's endpoints with faults, limits and credentials.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let request_id = ids::request_id(&shared.rng);
    let path = request.uri().path().to_owned();
    if path.starts_with(ADMIN_PREFIX) {
        return admin(&shared, &path, request, &request_id).await;
    }
    let Some(endpoint) = ENDPOINTS.iter().copied().find(|e| *e == path) else {
        return error_response(&ApiError::not_found(), &request_id);
    };
    if request.method() != Method::POST {
        return error_response(&ApiError::method_not_allowed(), &request_id);
    }
    let decision = shared.faults.decide(endpoint);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    match decision.outcome {
        Outcome::RateLimit => return error_response(&ApiError::rate_limited(), &request_id),
        Outcome::ServerError => return error_response(&ApiError::internal(), &request_id),
        Outcome::Normal | Outcome::ErrorAfterCommit | Outcome::DropAfterCommit => {}
    }
    let limit = shared.config.limits.max_body_bytes;
    let (parts, body) = request.into_parts();
    let response = match read_body(body, limit).await {
        Err(error) => error_response(&error, &request_id),
        Ok(bytes) => match shared.call(endpoint, &parts.headers, &bytes) {
            Ok(map) => json_response(StatusCode::OK, map, &request_id),
            Err(error) => error_response(&error, &request_id),
        },
    };
    match decision.outcome {
        Outcome::DropAfterCommit => dropped(),
        Outcome::ErrorAfterCommit => error_response(&ApiError::internal(), &request_id),
        _ => response,
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::body_too_large(limit))
}

/// The admin routes, under [`ADMIN_PREFIX`].
async fn admin(shared: &Shared, path: &str, request: Request, request_id: &str) -> Response {
    let method = request.method().clone();
    let route = path.get(ADMIN_PREFIX.len()..).unwrap_or_default();
    match (method, route) {
        (Method::GET, "faults") => admin_json(&shared.faults.view(), request_id),
        (Method::POST, "faults") => {
            let limit = shared.config.limits.max_body_bytes;
            let bytes = match read_body(request.into_body(), limit).await {
                Ok(bytes) => bytes,
                Err(error) => return error_response(&error, request_id),
            };
            let Ok(admin_request) = serde_json::from_slice::<crate::faults::AdminFaults>(&bytes)
            else {
                return error_response(
                    &ApiError::invalid_field(
                        "expected {\"endpoint\", \"latency_ms\", \"rate_limit\", \
                         \"server_error\", \"error_after_commit\", \"drop_after_commit\", \
                         \"clear\"}",
                    ),
                    request_id,
                );
            };
            match shared.faults.apply_admin(&admin_request) {
                Ok(view) => admin_json(&view, request_id),
                Err(why) => error_response(&ApiError::invalid_field(why), request_id),
            }
        }
        (Method::POST, "webhook_key/rotate") => match shared.rotate_webhook_key() {
            Ok(kid) => admin_json(&serde_json::json!({ "key_id": kid }), request_id),
            Err(_) => error_response(&ApiError::internal(), request_id),
        },
        (Method::POST, "items/transactions_update") => {
            let limit = shared.config.limits.max_body_bytes;
            let Ok(bytes) = read_body(request.into_body(), limit).await else {
                return error_response(&ApiError::body_too_large(limit), request_id);
            };
            let item_id = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("item_id").and_then(Value::as_str).map(str::to_owned));
            let Some(item_id) = item_id else {
                return error_response(&ApiError::missing_fields(&["item_id"]), request_id);
            };
            match shared.simulate_transactions_update(&item_id) {
                Ok(added) => admin_json(&serde_json::json!({ "added": added }), request_id),
                Err(_) => error_response(
                    &ApiError::invalid_field("item_id does not name an Item with room for updates"),
                    request_id,
                ),
            }
        }
        (_, "faults" | "webhook_key/rotate" | "items/transactions_update") => {
            error_response(&ApiError::method_not_allowed(), request_id)
        }
        _ => error_response(&ApiError::not_found(), request_id),
    }
}

fn admin_json(value: &impl serde::Serialize, request_id: &str) -> Response {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => json_response(StatusCode::OK, map, request_id),
        _ => error_response(&ApiError::internal(), request_id),
    }
}

fn json_response(status: StatusCode, mut map: Map<String, Value>, request_id: &str) -> Response {
    map.insert(
        "request_id".to_owned(),
        Value::String(request_id.to_owned()),
    );
    let body = serde_json::to_vec(&map).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn error_response(error: &ApiError, request_id: &str) -> Response {
    let body = serde_json::to_vec(&error.body(request_id)).unwrap_or_default();
    let mut response = (error.status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn dropped() -> Response {
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response
        .headers_mut()
        .insert("x-tokenward-fault", HeaderValue::from_static("dropped"));
    response.extensions_mut().insert(DropConnection);
    response
}
