//! What the `stateless_cookie` and `hybrid_server` examples share: the Plaid connection (the
//! in-process emulator or Plaid's sandbox), the listen address, redacted tracing, random ids,
//! cookies, JSON errors that never echo input, the account view, security headers and HTML
//! escaping.
#![allow(
    dead_code,
    reason = "shared by two examples, each of which uses a part"
)]

use std::error::Error;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokenward_envelope::Keyring;
use tokenward_plaid::models::AccountBase;
use tokenward_plaid::{Environment, ErrorCode, HttpPlaidClient, PlaidApi};
use tokenward_redact::{ClientId, ClientSecret, Policy};
use tokenward_sandbox::Sandbox;

/// The address the examples listen on unless `--listen` or `LISTEN` says otherwise.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

/// The current time in Unix seconds. Handlers read time only through this, so tests can move it.
pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock.
pub(crate) fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    })
}

/// Where Plaid calls go, and the emulator when it runs in-process.
pub(crate) struct PlaidSetup {
    /// The client every handler uses.
    pub(crate) api: Arc<dyn PlaidApi>,
    /// The in-process emulator, kept alive for as long as the server runs.
    pub(crate) sandbox: Option<Sandbox>,
}

/// Plaid's sandbox when `PLAID_CLIENT_ID` is set (with `PLAID_SECRET`, and `PLAID_ENV`
/// `sandbox` by default), otherwise the `tokenward-sandbox` emulator started on loopback.
pub(crate) async fn plaid_from_env() -> Result<PlaidSetup, Box<dyn Error + Send + Sync>> {
    if std::env::var_os("PLAID_CLIENT_ID").is_some() {
        let api = HttpPlaidClient::from_env()?;
        tracing::info!(environment = ?api.environment(), "calling Plaid");
        return Ok(PlaidSetup {
            api: Arc::new(api),
            sandbox: None,
        });
    }
    let sandbox = Sandbox::builder().start().await?;
    let api = emulator_client(&sandbox)?;
    tracing::info!(base_url = %sandbox.base_url(), "calling the in-process Plaid emulator");
    Ok(PlaidSetup {
        api: Arc::new(api),
        sandbox: Some(sandbox),
    })
}

/// Whether `PLAID_ENV` names Plaid's sandbox (it does when unset): the sandbox helper routes
/// are served only then or against the emulator.
pub(crate) fn plaid_env_is_sandbox() -> bool {
    std::env::var("PLAID_ENV").map_or(true, |e| e.trim().eq_ignore_ascii_case("sandbox"))
}

/// A client of the emulator. The emulator takes any credentials unless it was given fixed
/// ones; these are random per process, so even a demo secret is never a constant in git.
pub(crate) fn emulator_client(
    sandbox: &Sandbox,
) -> Result<HttpPlaidClient, Box<dyn Error + Send + Sync>> {
    let id = random_hex()?;
    let secret = random_hex()?;
    let client = HttpPlaidClient::builder()
        .environment(Environment::Custom(sandbox.base_url()))
        .credentials(
            ClientId::new(id.get(..24).unwrap_or(&id))?,
            ClientSecret::new(secret.get(..30).unwrap_or(&secret))?,
        )
        .timeout(Duration::from_secs(10))
        .build()?;
    Ok(client)
}

/// The listen address: `--listen ADDR`, else `LISTEN`, else [`DEFAULT_LISTEN`].
pub(crate) fn listen_addr() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut value = None;
    while let Some(arg) = args.next() {
        if let Some(v) = arg.strip_prefix("--listen=") {
            value = Some(v.to_owned());
        } else if arg == "--listen" {
            value = Some(args.next().ok_or("--listen needs an address")?);
        } else {
            return Err("usage: [--listen ADDR] (or LISTEN=ADDR)".to_owned());
        }
    }
    let value = value
        .or_else(|| std::env::var("LISTEN").ok())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    value
        .parse()
        .map_err(|_| "the listen address must be IP:PORT, e.g. 127.0.0.1:3000".to_owned())
}

/// Installs a `tracing` subscriber whose formatter redacts every field and scrubs every line
/// (tokens, secrets, cookies), writing to stderr at INFO and above.
pub(crate) fn init_tracing() -> Result<(), Box<dyn Error + Send + Sync>> {
    use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
    let layer = tokenward_redact::integrations::redacting_fmt_layer(Policy::plaid())
        .with_writer(std::io::stderr)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;
    Ok(())
}

/// The keyring from `TOKENWARD_KEYRING` / `TOKENWARD_KEYRING_FILE`, or a new one in memory
/// (then nothing sealed survives a restart, which for a demo is what you want).
pub(crate) fn keyring_from_env() -> Result<Keyring, Box<dyn Error + Send + Sync>> {
    match Keyring::from_env() {
        Ok(keyring) => Ok(keyring),
        Err(tokenward_envelope::KeyringError::NotConfigured) => {
            tracing::warn!("no TOKENWARD_KEYRING: using a keyring generated in memory");
            Ok(Keyring::generate()?)
        }
        Err(e) => Err(e.into()),
    }
}

/// 32 bytes from the operating system's CSPRNG (ring's `SystemRandom`) as 64 lowercase hex
/// digits: session ids and other unguessable ids.
pub(crate) fn random_hex() -> Result<String, ring::error::Unspecified> {
    let bytes: [u8; 32] = ring::rand::generate(&ring::rand::SystemRandom::new())?.expose();
    Ok(hex(&bytes))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether `value` looks like one of our session ids (64 lowercase hex digits).
pub(crate) fn is_session_id(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The value of the cookie `name` in the request, if any.
pub(crate) fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: httpOnly (no script reads it), Secure (HTTPS only; browsers treat
/// `localhost` as secure), SameSite=Strict (never sent on cross-site requests, which is the CSRF
/// defence of the state-changing POSTs), Path=/, `max_age` seconds. Names start with `__Host-`,
/// so browsers also refuse it unless it is Secure, host-only and Path=/.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    let cookie = Cookie::build((name.to_owned(), value.to_owned()))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    HeaderValue::from_str(&cookie.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("__invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that deletes the cookie `name`.
pub(crate) fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", 0)
}

/// A JSON error: a status and a fixed, lowercase code. It never carries request data.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    clear: Option<&'static str>,
}

impl ApiError {
    /// An error with `status` and `code`.
    pub(crate) fn new(status: StatusCode, code: &'static str) -> Self {
        ApiError {
            status,
            code,
            clear: None,
        }
    }

    /// 401: no valid session.
    pub(crate) fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized")
    }

    /// 400 with `code`.
    pub(crate) fn bad_request(code: &'static str) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code)
    }

    /// 500: something on our side; the details are in the (redacted) log.
    pub(crate) fn internal() -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
    }

    /// Also deletes the cookie `name` in the response.
    pub(crate) fn clearing(mut self, name: &'static str) -> Self {
        self.clear = Some(name);
        self
    }

    /// The code.
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    /// The status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// Maps a Plaid error: a dead token is 401 (the user links again), an Item needing the
    /// user's login is 409, everything else a 502. The error is logged (it is secret-free and
    /// the formatter scrubs it again).
    pub(crate) fn plaid(what: &'static str, error: &tokenward_plaid::Error) -> Self {
        tracing::warn!(error = %error, "plaid call failed: {what}");
        let Some(plaid) = error.plaid_error() else {
            return ApiError::new(StatusCode::BAD_GATEWAY, "plaid_unavailable");
        };
        match plaid.error_code() {
            ErrorCode::InvalidAccessToken | ErrorCode::ItemNotFound => {
                ApiError::new(StatusCode::UNAUTHORIZED, "item_gone")
            }
            ErrorCode::ItemLoginRequired => {
                ApiError::new(StatusCode::CONFLICT, "item_login_required")
            }
            ErrorCode::InvalidPublicToken => ApiError::bad_request("invalid_public_token"),
            _ => ApiError::new(StatusCode::BAD_GATEWAY, "plaid_unavailable"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code }).to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(name) = self.clear {
            headers.append(header::SET_COOKIE, clear_cookie(name));
        }
        response
    }
}

/// Parses a JSON request body. Rejections say only `invalid_body`: serde's messages can quote
/// the input, and the input may be a token.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|_| ApiError::bad_request("invalid_body"))
}

/// A JSON response of `value` (our own view types: no secret fields by construction).
pub(crate) fn json_response<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(_) => ApiError::internal().into_response(),
    }
}

/// An account as the browser sees it: names, type and balances, never a token.
#[derive(Debug, Serialize)]
pub(crate) struct AccountView {
    pub(crate) account_id: String,
    pub(crate) name: String,
    pub(crate) mask: Option<String>,
    #[serde(rename = "type")]
    pub(crate) account_type: String,
    pub(crate) subtype: Option<String>,
    pub(crate) current: Option<f64>,
    pub(crate) available: Option<f64>,
    pub(crate) currency: Option<String>,
}

impl From<&AccountBase> for AccountView {
    fn from(a: &AccountBase) -> Self {
        AccountView {
            account_id: a.account_id.clone(),
            name: a.name.clone(),
            mask: a.mask.clone(),
            account_type: a.account_type.as_str().to_owned(),
            subtype: a.subtype.as_ref().map(|s| s.as_str().to_owned()),
            current: a.balances.current,
            available: a.balances.available,
            currency: a.balances.iso_currency_code.clone(),
        }
    }
}

/// Headers every response gets: no caching anywhere of data or cookies, no MIME sniffing, no
/// referrer, no framing, and a CSP that allows nothing but our inline styles.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Escapes `text` for HTML text and attribute values.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Resolves on Ctrl-C (or never, if the signal cannot be installed).
pub(crate) async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
