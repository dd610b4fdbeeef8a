//! Shared helpers of the end-to-end tests that drive `tokenward-plaid`'s `HttpPlaidClient` and
//! `WebhookVerifier` against the emulator over loopback HTTP: an emulator with fixed
//! credentials and a stopped clock, clients, a webhook listener, and the leak canary that
//! collects every text the client produces.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code,
    unused_imports,
    unreachable_pub,
    missing_docs,
    reason = "test code"
)]

use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone as _, Utc};
use tokenward_plaid::models::{
    ItemPublicTokenExchangeRequest, Product, SandboxPublicTokenCreateRequest,
};
use tokenward_plaid::{Environment, Error, HttpPlaidClient, PlaidApi, RetryPolicy};
use tokenward_redact::{AccessToken, ClientId, ClientSecret, PublicToken};
use tokenward_sandbox::{ManualClock, Sandbox};
pub use tokenward_testkit::leaks::{LeakCollector, assert_clean_text};
pub use tokenward_testkit::webhook::{Delivery, Hook};

/// The client id the emulator accepts (24 lowercase alphanumerics, like Plaid's).
pub const CLIENT_ID: &str = "5f1c2b3a4d5e6f7a8b9c0d1e";
/// The secret the emulator accepts: the shared canary, so that any leak is recognisable.
pub const SECRET: &str = tokenward_testkit::canary::PLAID_SECRET;
/// Another well-formed secret, which the emulator refuses.
pub const WRONG_SECRET: &str = "wr0ngwr0ngwr0ngwr0ngwr0ngwr0ng";

/// Prefixes of every Plaid token the emulator hands out; none may appear in any output.
pub const TOKEN_PREFIXES: [&str; 3] = tokenward_testkit::leaks::SANDBOX_TOKEN_PREFIXES;

/// The emulator's (stopped) clock: 2024-06-30T12:00:00Z.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 30, 12, 0, 0).unwrap()
}

/// `time` as a `SystemTime`, for the verifier's `now`.
pub fn system_time(time: DateTime<Utc>) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(time.timestamp()).unwrap())
}

/// An emulator on 127.0.0.1 that accepts only [`CLIENT_ID`] / [`SECRET`], with a seed and a
/// stopped clock.
pub async fn sandbox() -> (Sandbox, ManualClock) {
    let clock = ManualClock::new(start_time());
    let sandbox = Sandbox::builder()
        .credentials(
            &ClientId::new(CLIENT_ID).unwrap(),
            &ClientSecret::new(SECRET).unwrap(),
        )
        .clock(clock.clone())
        .seed(42)
        .start()
        .await
        .unwrap();
    (sandbox, clock)
}

/// Retries that take milliseconds, not seconds.
pub fn fast_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(
        attempts,
        Duration::from_millis(1),
        Duration::from_millis(5),
        Duration::from_secs(10),
    )
}

/// A client of `base_url` with `secret`, generous timeouts and `retry`.
pub fn client_with(base_url: &str, secret: &str, retry: RetryPolicy) -> HttpPlaidClient {
    HttpPlaidClient::builder()
        .environment(Environment::Custom(base_url.to_owned()))
        .credentials(
            ClientId::new(CLIENT_ID).unwrap(),
            ClientSecret::new(secret).unwrap(),
        )
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .retry_policy(retry)
        .build()
        .unwrap()
}

/// A client of the emulator with the right credentials and fast retries (4 attempts).
pub fn client(sandbox: &Sandbox) -> HttpPlaidClient {
    client_with(&sandbox.base_url(), SECRET, fast_retries(4))
}

/// A second handle on a token (the secret types are deliberately not `Clone`).
pub fn dup(token: &AccessToken) -> AccessToken {
    AccessToken::new(token.expose_secret()).unwrap()
}

/// A second handle on a public token.
pub fn dup_public(token: &PublicToken) -> PublicToken {
    PublicToken::new(token.expose_secret()).unwrap()
}

/// Every text the client produced in a test, and every secret that must not be in any of it:
/// the shared [`LeakCollector`] with the client's credentials planted, and a recorder of calls.
pub struct Canary(LeakCollector);

impl std::ops::Deref for Canary {
    type Target = LeakCollector;

    fn deref(&self) -> &LeakCollector {
        &self.0
    }
}

impl Default for Canary {
    /// A canary with nothing planted.
    fn default() -> Self {
        Canary(LeakCollector::new())
    }
}

impl Canary {
    /// A canary that already knows the client's credentials.
    pub fn new() -> Self {
        let canary = Canary(LeakCollector::new());
        canary.secret(SECRET);
        canary.secret(WRONG_SECRET);
        canary.secret(CLIENT_ID);
        canary
    }

    /// Records the request and the result of one call, and returns the result.
    pub fn call<Q: Debug, T: Debug>(
        &self,
        label: &str,
        request: &Q,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        self.debug(&format!("{label} request"), request);
        match &result {
            Ok(response) => self.debug(&format!("{label} response"), response),
            Err(error) => self.error(&format!("{label} error"), error),
        }
        result
    }
}

/// A new Item through `/sandbox/public_token/create` and `/item/public_token/exchange`; its
/// webhook is `webhook`. Plants both tokens in the canary.
pub async fn link_item(
    api: &dyn PlaidApi,
    canary: &Canary,
    webhook: Option<&str>,
) -> (AccessToken, String) {
    let mut create =
        SandboxPublicTokenCreateRequest::new("ins_109508", vec![Product::Transactions]);
    if let Some(url) = webhook {
        create = create.with_webhook(url);
    }
    let created = canary
        .call(
            "public token",
            &create,
            api.sandbox_public_token_create(&create).await,
        )
        .unwrap();
    canary.secret(created.public_token.expose_secret());
    let exchange = ItemPublicTokenExchangeRequest::new(created.public_token);
    let exchanged = canary
        .call(
            "exchange",
            &exchange,
            api.item_public_token_exchange(&exchange).await,
        )
        .unwrap();
    canary.secret(exchanged.access_token.expose_secret());
    (exchanged.access_token, exchanged.item_id)
}
