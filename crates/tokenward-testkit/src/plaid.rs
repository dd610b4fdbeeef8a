//! Plaid clients for tests: pointed at a local emulator (or any base URL), with the test's
//! credentials, a 10-second timeout and a retry policy short enough that a test never waits on
//! backoff.

use std::time::Duration;

use tokenward_plaid::{Environment, HttpPlaidClient, HttpPlaidClientBuilder, RetryPolicy};
use tokenward_redact::{ClientId, ClientSecret};

/// A client of `base_url` with `client_id` and `secret`, a 10-second timeout and
/// [`short_retries`]`(3)`.
///
/// # Panics
///
/// When the credentials are not valid Plaid credentials or the client cannot be built.
#[must_use]
pub fn client(base_url: &str, client_id: &str, secret: &str) -> HttpPlaidClient {
    builder(base_url, client_id, secret)
        .timeout(Duration::from_secs(10))
        .retry_policy(short_retries(3))
        .build()
        .expect("a Plaid client for tests")
}

/// A builder set to `base_url` (`Environment::Custom`) with `client_id` and `secret`, and
/// otherwise the defaults: for tests that choose their own timeout and retries.
///
/// # Panics
///
/// When the credentials are not valid Plaid credentials.
#[must_use]
pub fn builder(base_url: &str, client_id: &str, secret: &str) -> HttpPlaidClientBuilder {
    HttpPlaidClient::builder()
        .environment(Environment::Custom(base_url.to_owned()))
        .credentials(
            ClientId::new(client_id).expect("a test client id"),
            ClientSecret::new(secret).expect("a test secret"),
        )
}

/// `max_attempts` attempts, 1 to 5 ms apart, 5 seconds in all.
#[must_use]
pub fn short_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::new(
        max_attempts,
        Duration::from_millis(1),
        Duration::from_millis(5),
        Duration::from_secs(5),
    )
}
