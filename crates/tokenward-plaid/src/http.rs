//! [`HttpPlaidClient`]: the [`PlaidApi`] over HTTPS, with reqwest and rustls on ring.
//!
//! - **Credentials in headers.** `PLAID-CLIENT-ID` and `PLAID-SECRET` (both marked sensitive,
//!   so HTTP/2 never indexes them), `Plaid-Version: 2020-09-14`; request bodies never hold the
//!   secret.
//! - **One connection pool.** One reqwest `Client` per `HttpPlaidClient`; clone the
//!   `HttpPlaidClient` (cheap) rather than building a second one.
//! - **Retries for reads only.** 429, 5xx and connection failures are retried with exponential
//!   backoff and full jitter on [read-only endpoints](Endpoint::is_read_only). State-changing
//!   calls (`/item/access_token/invalidate`, `/item/public_token/exchange`, `/item/remove`,
//!   `/link/token/create`, `/item/webhook/update`, `/sandbox/*`) are sent once; if the answer
//!   is lost the error's [`Outcome`] is [`Ambiguous`](Outcome::Ambiguous).
//! - **Nothing secret in errors.** Errors carry no body, no header and no URL userinfo.
//!
//! # Security
//!
//! The request body holds the access token while it is sent: it is built in a buffer that is
//! wiped on drop, but reqwest and hyper copy it into buffers of their own that are freed
//! without wiping, and the secret header value lives unwiped in the header map for the
//! client's lifetime. Response bodies are decoded straight from the received bytes and dropped;
//! they are never logged or put in an error.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use ring::rand::{SecureRandom as _, SystemRandom};
use rustls_platform_verifier::BuilderVerifierExt as _;
use tokenward_redact::{ClientId, ClientSecret, SecretError};

use crate::api::{Endpoint, PlaidApi, PlaidRequest};
use crate::error::{DecodeReason, Error, Outcome, PlaidError, TransportKind};
use crate::models::{
    AccountsBalanceGetRequest, AccountsBalanceGetResponse, AccountsGetRequest, AccountsGetResponse,
    ItemAccessTokenInvalidateRequest, ItemAccessTokenInvalidateResponse, ItemGetRequest,
    ItemGetResponse, ItemPublicTokenExchangeRequest, ItemPublicTokenExchangeResponse,
    ItemRemoveRequest, ItemRemoveResponse, ItemWebhookUpdateRequest, ItemWebhookUpdateResponse,
    LinkTokenCreateRequest, LinkTokenCreateResponse, SandboxItemFireWebhookRequest,
    SandboxItemFireWebhookResponse, SandboxItemResetLoginRequest, SandboxItemResetLoginResponse,
    SandboxPublicTokenCreateRequest, SandboxPublicTokenCreateResponse, TransactionsGetRequest,
    TransactionsGetResponse, TransactionsSyncRequest, TransactionsSyncResponse,
    WebhookVerificationKeyGetRequest, WebhookVerificationKeyGetResponse, wire_json,
};

/// The API version this crate speaks, sent as `Plaid-Version`.
pub const PLAID_VERSION: &str = "2020-09-14";

/// The Sandbox base URL.
pub const SANDBOX_URL: &str = "https://sandbox.plaid.com";

/// The Production base URL.
pub const PRODUCTION_URL: &str = "https://production.plaid.com";

/// The largest response body accepted, in bytes. A `/transactions/sync` page of 500
/// transactions is well under 2 MiB.
pub const MAX_RESPONSE_LEN: usize = 16 * 1024 * 1024;

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default request timeout, from connecting to the end of the body. Plaid says
/// `/accounts/balance/get` can take 30 seconds or more.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Which Plaid environment to call.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Environment {
    /// `https://sandbox.plaid.com`.
    Sandbox,
    /// `https://production.plaid.com`.
    Production,
    /// Another base URL, e.g. the `tokenward-sandbox` emulator. `https`, or `http` to a
    /// loopback address; no user name, password, query or fragment.
    Custom(String),
}

impl Environment {
    /// Parses `sandbox`, `production` or a base URL, as in `PLAID_ENV`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `setting` (never echoing the value) when the value is none of
    /// these; `development` gets its own message, since Plaid removed that environment.
    pub fn parse(value: &str, setting: &'static str) -> Result<Environment, Error> {
        let trimmed = value.trim();
        match trimmed.to_ascii_lowercase().as_str() {
            "" => Err(Error::config(setting, "is empty")),
            "sandbox" => Ok(Environment::Sandbox),
            "production" => Ok(Environment::Production),
            "development" => Err(Error::config(
                setting,
                "names the development environment, which Plaid removed; use sandbox or production",
            )),
            _ if trimmed.contains("://") => {
                let environment = Environment::Custom(trimmed.to_owned());
                environment.base_url(setting)?;
                Ok(environment)
            }
            _ => Err(Error::config(
                setting,
                "must be sandbox, production or an http(s) base URL",
            )),
        }
    }

    /// The base URL, validated.
    fn base_url(&self, setting: &'static str) -> Result<Url, Error> {
        let text = match self {
            Environment::Sandbox => SANDBOX_URL,
            Environment::Production => PRODUCTION_URL,
            Environment::Custom(url) => url.as_str(),
        };
        let url = Url::parse(text).map_err(|_| Error::config(setting, "is not a valid URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::config(
                setting,
                "must not hold a user name or password",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::config(setting, "must not have a query or fragment"));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(Error::config(
                    setting,
                    "uses http to a host that is not loopback; use https",
                ));
            }
            _ => return Err(Error::config(setting, "must be an http(s) URL")),
        }
        if url.host_str().is_none() {
            return Err(Error::config(setting, "has no host"));
        }
        Ok(url)
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Environment::Sandbox => f.write_str("Sandbox"),
            Environment::Production => f.write_str("Production"),
            // Only scheme, host and port: whatever else the string holds stays out of logs.
            Environment::Custom(url) => match Url::parse(url) {
                Ok(url) => write!(
                    f,
                    "Custom({}://{}{})",
                    url.scheme(),
                    url.host_str().unwrap_or(""),
                    url.port().map(|p| format!(":{p}")).unwrap_or_default()
                ),
                Err(_) => f.write_str("Custom(<invalid>)"),
            },
        }
    }
}

/// When and how often the client retries a read-only call.
///
/// Retried: HTTP 429, 5xx, connection failures and timeouts, on
/// [read-only endpoints](Endpoint::is_read_only) only. The delay before retry `n` (1-based) is
/// drawn uniformly from `0..=min(max_delay, base_delay * 2^(n-1))` ("full jitter"), or is the
/// server's `Retry-After` (in seconds) when it sends one. No retry starts once `max_total` would
/// be exceeded, so a `Retry-After` longer than the budget ends the retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// The backoff base.
    pub base_delay: Duration,
    /// The longest single delay.
    pub max_delay: Duration,
    /// The longest time from the first attempt to the start of the last.
    pub max_total: Duration,
}

impl RetryPolicy {
    /// A policy.
    #[must_use]
    pub fn new(
        max_attempts: u32,
        base_delay: Duration,
        max_delay: Duration,
        max_total: Duration,
    ) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base_delay,
            max_delay,
            max_total,
        }
    }

    /// No retries.
    #[must_use]
    pub fn none() -> Self {
        RetryPolicy::new(1, Duration::ZERO, Duration::ZERO, Duration::ZERO)
    }

    /// The longest delay before retry `retry` (1-based), before jitter.
    #[must_use]
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1_u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    /// 4 attempts, 250 ms base, 8 s cap, 30 s in all.
    fn default() -> Self {
        RetryPolicy::new(
            4,
            Duration::from_millis(250),
            Duration::from_secs(8),
            Duration::from_secs(30),
        )
    }
}

/// A Plaid client over HTTPS. Cheap to clone: clones share the connection pool.
///
/// ```no_run
/// # async fn run() -> Result<(), tokenward_plaid::Error> {
/// use tokenward_plaid::models::ItemGetRequest;
/// use tokenward_plaid::{HttpPlaidClient, PlaidApi};
/// use tokenward_redact::AccessToken;
///
/// // PLAID_CLIENT_ID, PLAID_SECRET, and PLAID_ENV (sandbox by default).
/// let client = HttpPlaidClient::from_env()?;
/// # let token = AccessToken::new("access-sandbox-8ab976e6-64bc-4b38-98f7-731e7a349970").unwrap();
/// let item = client.item_get(&ItemGetRequest::new(token)).await?;
/// println!("{}", item.item.item.item_id);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HttpPlaidClient {
    inner: Arc<Inner>,
}

struct Inner {
    environment: Environment,
    http: reqwest::Client,
    /// One URL per endpoint, joined once.
    urls: HashMap<Endpoint, Url>,
    headers: HeaderMap,
    timeout: Duration,
    connect_timeout: Duration,
    endpoint_timeouts: HashMap<Endpoint, Duration>,
    retry: RetryPolicy,
    rng: SystemRandom,
}

impl HttpPlaidClient {
    /// A builder.
    #[must_use]
    pub fn builder() -> HttpPlaidClientBuilder {
        HttpPlaidClientBuilder::default()
    }

    /// A client configured from `PLAID_CLIENT_ID`, `PLAID_SECRET` and `PLAID_ENV` (`sandbox`,
    /// `production` or a base URL; `sandbox` when unset), with default timeouts and retries.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable that is missing or invalid (never its value).
    pub fn from_env() -> Result<Self, Error> {
        HttpPlaidClientBuilder::from_env()?.build()
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup` (for tests and
    /// secret managers).
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        HttpPlaidClientBuilder::from_lookup(lookup)?.build()
    }

    /// The environment called.
    #[must_use]
    pub fn environment(&self) -> &Environment {
        &self.inner.environment
    }

    /// The retry policy of read-only calls.
    #[must_use]
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// Calls the endpoint of `request`: the generic form of the [`PlaidApi`] methods.
    ///
    /// # Errors
    ///
    /// [`Error`], with the [`Outcome`] of the last attempt.
    pub async fn call<R: PlaidRequest>(&self, request: &R) -> Result<R::Response, Error> {
        let endpoint = R::ENDPOINT;
        let body = wire_json(request).map_err(|_| Error::Encode { endpoint })?;
        let inner = &*self.inner;
        let policy = if endpoint.is_read_only() {
            inner.retry
        } else {
            RetryPolicy::none()
        };
        let started = Instant::now();
        let mut attempt = 1_u32;
        loop {
            let failure = match inner.send_once::<R::Response>(endpoint, &body).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            if !failure.retryable || attempt >= policy.max_attempts {
                return Err(failure.error);
            }
            // The server's Retry-After is honoured as given; past the budget, no retry.
            let delay = match failure.retry_after {
                Some(after) => after,
                None => inner.jitter(policy.backoff_cap(attempt)),
            };
            if started.elapsed().saturating_add(delay) > policy.max_total {
                return Err(failure.error);
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

impl fmt::Debug for HttpPlaidClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("HttpPlaidClient")
            .field("environment", &inner.environment)
            .field("timeout", &inner.timeout)
            .field("connect_timeout", &inner.connect_timeout)
            .field("retry", &inner.retry)
            .finish_non_exhaustive()
    }
}

/// Builds an [`HttpPlaidClient`].
///
/// ```
/// use std::time::Duration;
/// use tokenward_plaid::{Environment, HttpPlaidClient, RetryPolicy};
/// use tokenward_redact::{ClientId, ClientSecret};
///
/// let client = HttpPlaidClient::builder()
///     .environment(Environment::Sandbox)
///     .credentials(
///         ClientId::new("5f1c2b3a4d5e6f7a8b9c0d1e")?,
///         ClientSecret::new("0123456789abcdef0123456789abcd")?,
///     )
///     .timeout(Duration::from_secs(30))
///     .retry_policy(RetryPolicy::default())
///     .build()?;
/// assert!(!format!("{client:?}").contains("0123456789abcdef"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct HttpPlaidClientBuilder {
    environment: Option<Environment>,
    credentials: Option<(ClientId, ClientSecret)>,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    endpoint_timeouts: HashMap<Endpoint, Duration>,
    retry: Option<RetryPolicy>,
}

impl HttpPlaidClientBuilder {
    /// A builder with settings from `PLAID_CLIENT_ID`, `PLAID_SECRET` and `PLAID_ENV`.
    ///
    /// # Errors
    ///
    /// As [`HttpPlaidClient::from_env`].
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| match std::env::var(name) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            // Not UTF-8: let validation call it invalid rather than missing.
            Err(std::env::VarError::NotUnicode(_)) => Some("\u{fffd}".to_owned()),
        })
    }

    /// A builder with settings read through `lookup`, by the names of
    /// [`from_env`](Self::from_env).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable that is missing or invalid (never its value).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let client_id = required(&lookup, "PLAID_CLIENT_ID", ClientId::new)?;
        let secret = required(&lookup, "PLAID_SECRET", ClientSecret::new)?;
        let environment = match lookup("PLAID_ENV") {
            None => Environment::Sandbox,
            Some(value) => Environment::parse(&value, "PLAID_ENV")?,
        };
        Ok(HttpPlaidClientBuilder::default()
            .environment(environment)
            .credentials(client_id, secret))
    }

    /// The environment (required).
    #[must_use]
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// The client id and secret (required).
    #[must_use]
    pub fn credentials(mut self, client_id: ClientId, secret: ClientSecret) -> Self {
        self.credentials = Some((client_id, secret));
        self
    }

    /// The request timeout, from connecting to the end of the body (default 60 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The timeout of one endpoint, instead of [`timeout`](Self::timeout): e.g. longer for
    /// `/accounts/balance/get`, or for `/item/access_token/invalidate` so that a slow answer is
    /// less likely to be lost.
    #[must_use]
    pub fn endpoint_timeout(mut self, endpoint: Endpoint, timeout: Duration) -> Self {
        self.endpoint_timeouts.insert(endpoint, timeout);
        self
    }

    /// The connect timeout (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The retry policy of read-only calls (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Builds the client: validates the settings, builds the TLS configuration (rustls on
    /// ring, the platform's trust store) and the connection pool.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the environment or credentials are missing or invalid, or the
    /// TLS configuration cannot be built.
    pub fn build(self) -> Result<HttpPlaidClient, Error> {
        let environment = self
            .environment
            .ok_or_else(|| Error::config("environment", "is not set"))?;
        let (client_id, secret) = self
            .credentials
            .ok_or_else(|| Error::config("credentials", "are not set"))?;
        let base = environment.base_url("environment")?;
        let base_path = base.path().trim_end_matches('/').to_owned();
        let urls = Endpoint::ALL
            .into_iter()
            .map(|endpoint| {
                // Keeps a base path (`https://proxy.internal/plaid`) in front of the endpoint's.
                let mut url = base.clone();
                url.set_path(&format!("{base_path}{}", endpoint.path()));
                (endpoint, url)
            })
            .collect();
        let headers = headers(&client_id, &secret)?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let connect_timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("tokenward-plaid/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| Error::config("http client", "could not be built"))?;
        Ok(HttpPlaidClient {
            inner: Arc::new(Inner {
                environment,
                http,
                urls,
                headers,
                timeout,
                connect_timeout,
                endpoint_timeouts: self.endpoint_timeouts,
                retry: self.retry.unwrap_or_default(),
                rng: SystemRandom::new(),
            }),
        })
    }
}

impl fmt::Debug for HttpPlaidClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpPlaidClientBuilder")
            .field("environment", &self.environment)
            .field("credentials", &self.credentials.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

macro_rules! http_plaid_api {
    ($($method:ident($request:ty) -> $response:ty;)*) => {
        #[async_trait]
        impl PlaidApi for HttpPlaidClient {
            $(
                async fn $method(&self, request: &$request) -> Result<$response, Error> {
                    self.call(request).await
                }
            )*
        }
    };
}

crate::api::for_each_plaid_method!(http_plaid_api!());

// ---------------------------------------------------------------------------------------------
// Helpers.

/// One failed attempt: the error, and whether and when to retry (for read-only endpoints).
struct Failure {
    error: Error,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(error: Error, endpoint: Endpoint) -> Self {
        // Only reads are retried; `is_retryable` says whether retrying could help.
        let retryable = endpoint.is_read_only()
            && match &error {
                Error::Plaid { status, .. } | Error::Decode { status, .. } => {
                    *status == 429 || *status >= 500
                }
                Error::Transport { .. } | Error::Timeout { .. } => true,
                _ => false,
            };
        Failure {
            error,
            retryable,
            retry_after: None,
        }
    }
}

impl Inner {
    async fn send_once<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        body: &[u8],
    ) -> Result<T, Failure> {
        let url = self
            .urls
            .get(&endpoint)
            .cloned()
            .ok_or_else(|| Failure::new(Error::Encode { endpoint }, endpoint))?;
        let timeout = self
            .endpoint_timeouts
            .get(&endpoint)
            .copied()
            .unwrap_or(self.timeout);
        let response = self
            .http
            .post(url)
            .headers(self.headers.clone())
            .timeout(timeout)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|err| Failure::new(transport_error(endpoint, err), endpoint))?;

        let status = response.status();
        let retry_after = retry_after(response.headers());
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_LEN as u64)
        {
            let error = Error::Decode {
                endpoint,
                status: status.as_u16(),
                reason: DecodeReason::TooLarge,
                outcome: unusable_answer(status),
            };
            return Err(Failure::new(error, endpoint));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|err| Failure::new(transport_error(endpoint, err), endpoint))?;
        if bytes.len() > MAX_RESPONSE_LEN {
            let error = Error::Decode {
                endpoint,
                status: status.as_u16(),
                reason: DecodeReason::TooLarge,
                outcome: unusable_answer(status),
            };
            return Err(Failure::new(error, endpoint));
        }
        let result = decode::<T>(endpoint, status, &bytes);
        // The body may hold a token: drop it now rather than at the end of the call.
        drop(bytes);
        result.map_err(|error| {
            let mut failure = Failure::new(error, endpoint);
            failure.retry_after = retry_after;
            failure
        })
    }

    /// A uniformly random duration in `0..=cap`, from the OS CSPRNG. If the RNG fails (it does
    /// not on supported platforms), half the cap.
    fn jitter(&self, cap: Duration) -> Duration {
        let mut bytes = [0_u8; 8];
        if self.rng.fill(&mut bytes).is_err() {
            return cap / 2;
        }
        let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        let nanos = u64::from_le_bytes(bytes) % cap_nanos.saturating_add(1);
        Duration::from_nanos(nanos)
    }
}

/// The outcome of an answer with `status` that could not be used: a 2xx means Plaid applied
/// the request and the answer is lost.
fn unusable_answer(status: StatusCode) -> Outcome {
    if status.is_success() {
        Outcome::Ambiguous
    } else {
        Outcome::for_status(status.as_u16())
    }
}

/// Decodes a response body: `T` for a 2xx status, Plaid's error object otherwise.
fn decode<T: serde::de::DeserializeOwned>(
    endpoint: Endpoint,
    status: StatusCode,
    bytes: &[u8],
) -> Result<T, Error> {
    let code = status.as_u16();
    if status.is_success() {
        return serde_json::from_slice::<T>(bytes).map_err(|err| Error::Decode {
            endpoint,
            status: code,
            reason: DecodeReason::from_json(&err),
            // Plaid applied the request; we cannot tell what it answered.
            outcome: Outcome::Ambiguous,
        });
    }
    match serde_json::from_slice::<PlaidError>(bytes) {
        Ok(error) if !error.error_code().as_str().is_empty() => {
            Err(Error::plaid(endpoint, code, error))
        }
        _ => Err(Error::Decode {
            endpoint,
            status: code,
            reason: DecodeReason::NotAPlaidError,
            outcome: Outcome::for_status(code),
        }),
    }
}

/// Classifies a reqwest error by whether the request can have reached Plaid. The source is
/// kept without its URL.
fn transport_error(endpoint: Endpoint, err: reqwest::Error) -> Error {
    if err.is_connect() {
        // Nothing was written to a connection that never opened.
        if err.is_timeout() {
            return Error::Timeout {
                endpoint,
                outcome: Outcome::NotSent,
            };
        }
        return Error::Transport {
            endpoint,
            kind: TransportKind::Connect,
            outcome: Outcome::NotSent,
            source: Some(Box::new(err.without_url())),
        };
    }
    if err.is_timeout() {
        return Error::Timeout {
            endpoint,
            outcome: Outcome::Ambiguous,
        };
    }
    let kind = if err.is_body() || err.is_decode() {
        TransportKind::Body
    } else if err.is_request() {
        TransportKind::Connection
    } else {
        TransportKind::Other
    };
    Error::Transport {
        endpoint,
        kind,
        outcome: Outcome::Ambiguous,
        source: Some(Box::new(err.without_url())),
    }
}

/// `Retry-After` in delta-seconds (Plaid does not document it; honoured when present). HTTP
/// dates are ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The default headers: credentials (sensitive), API version, JSON content type.
fn headers(client_id: &ClientId, secret: &ClientSecret) -> Result<HeaderMap, Error> {
    let mut headers = HeaderMap::new();
    let mut id = HeaderValue::from_str(client_id.expose_secret())
        .map_err(|_| Error::config("client id", "is not a valid header value"))?;
    id.set_sensitive(true);
    let mut secret = HeaderValue::from_str(secret.expose_secret())
        .map_err(|_| Error::config("secret", "is not a valid header value"))?;
    secret.set_sensitive(true);
    headers.insert(HeaderName::from_static("plaid-client-id"), id);
    headers.insert(HeaderName::from_static("plaid-secret"), secret);
    headers.insert(
        HeaderName::from_static("plaid-version"),
        HeaderValue::from_static(PLAID_VERSION),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    Ok(headers)
}

/// rustls on ring with the platform's trust store; HTTP/2 and HTTP/1.1 by ALPN.
fn tls_config() -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::config("tls", "has no usable protocol version"))?
        .with_platform_verifier()
        .map_err(|_| Error::config("tls", "could not load the platform trust store"))?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Whether the URL's host is a loopback address or `localhost`.
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    // IPv6 hosts come bracketed: `[::1]`.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Reads a required variable and validates it; errors name the variable only.
fn required<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    parse: impl FnOnce(String) -> Result<T, SecretError>,
) -> Result<T, Error> {
    let value = lookup(name).ok_or_else(|| Error::config(name, "is not set"))?;
    if value.trim().is_empty() {
        return Err(Error::config(name, "is empty"));
    }
    parse(value).map_err(|err| {
        // SecretError's message names the expected shape, never the value.
        Error::config(name, format!("is invalid: {err}"))
    })
}
