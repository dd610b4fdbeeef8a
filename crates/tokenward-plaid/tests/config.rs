//! `HttpPlaidClient::from_lookup` (what `from_env` calls): each variable missing or invalid
//! gives an `Error::Config` that names it and never shows its value.
#![cfg(feature = "http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::collections::HashMap;

use tokenward_plaid::{Environment, Error, HttpPlaidClient, HttpPlaidClientBuilder};
use tokenward_redact::{ClientId, ClientSecret};
use tokenward_testkit::canary;

const CLIENT_ID: &str = "5f1c2b3a4d5e6f7a8b9c0d1e";

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn config_error(vars: &[(&str, &str)]) -> (String, String) {
    match HttpPlaidClient::from_lookup(lookup(vars)) {
        Err(Error::Config { name, reason }) => {
            let err = Error::Config {
                name: name.clone(),
                reason: reason.clone(),
            };
            let text = format!("{err} {err:?}");
            for (_, value) in vars {
                // `development` is named by the message itself, as a fixed word.
                if value.len() > 3 && *value != "development" {
                    assert!(!text.contains(value), "value leaked: {text}");
                }
            }
            (name.into_owned(), reason.into_owned())
        }
        Err(other) => panic!("not a config error: {other}"),
        Ok(client) => panic!("built: {client:?}"),
    }
}

#[test]
fn a_complete_environment_builds_a_sandbox_client() {
    let client = HttpPlaidClient::from_lookup(lookup(&[
        ("PLAID_CLIENT_ID", CLIENT_ID),
        ("PLAID_SECRET", canary::PLAID_SECRET),
    ]))
    .unwrap();
    // PLAID_ENV unset: sandbox.
    assert_eq!(client.environment(), &Environment::Sandbox);
    let debug = format!("{client:?}");
    assert!(!debug.contains(canary::PLAID_SECRET) && !debug.contains(CLIENT_ID));

    for (value, expected) in [
        ("production", Environment::Production),
        ("Sandbox", Environment::Sandbox),
        (
            "http://127.0.0.1:4010",
            Environment::Custom("http://127.0.0.1:4010".into()),
        ),
        (
            "https://plaid-proxy.internal.example",
            Environment::Custom("https://plaid-proxy.internal.example".into()),
        ),
    ] {
        let client = HttpPlaidClient::from_lookup(lookup(&[
            ("PLAID_CLIENT_ID", CLIENT_ID),
            ("PLAID_SECRET", canary::PLAID_SECRET),
            ("PLAID_ENV", value),
        ]))
        .unwrap();
        assert_eq!(client.environment(), &expected);
    }
}

#[test]
fn each_missing_variable_is_named() {
    assert_eq!(
        config_error(&[("PLAID_SECRET", canary::PLAID_SECRET)]),
        ("PLAID_CLIENT_ID".into(), "is not set".into())
    );
    assert_eq!(
        config_error(&[("PLAID_CLIENT_ID", CLIENT_ID)]),
        ("PLAID_SECRET".into(), "is not set".into())
    );
    assert_eq!(
        config_error(&[
            ("PLAID_CLIENT_ID", " "),
            ("PLAID_SECRET", canary::PLAID_SECRET)
        ]),
        ("PLAID_CLIENT_ID".into(), "is empty".into())
    );
    assert_eq!(
        config_error(&[("PLAID_CLIENT_ID", CLIENT_ID), ("PLAID_SECRET", "")]),
        ("PLAID_SECRET".into(), "is empty".into())
    );
}

#[test]
fn each_invalid_variable_is_named_without_its_value() {
    let (name, reason) = config_error(&[
        ("PLAID_CLIENT_ID", "has a space in it"),
        ("PLAID_SECRET", canary::PLAID_SECRET),
    ]);
    assert_eq!(name, "PLAID_CLIENT_ID");
    assert!(reason.starts_with("is invalid"), "{reason}");

    let (name, _) = config_error(&[
        ("PLAID_CLIENT_ID", CLIENT_ID),
        ("PLAID_SECRET", "q8w7e6r5t4y3 u2i1o0p9a8s7d6f5g4"),
    ]);
    assert_eq!(name, "PLAID_SECRET");

    let (name, _) = config_error(&[
        ("PLAID_CLIENT_ID", CLIENT_ID),
        ("PLAID_SECRET", "[REDACTED:plaid.client_secret]"),
    ]);
    assert_eq!(name, "PLAID_SECRET");

    for bad_env in [
        "staging-with-a-long-name",
        "development",
        "ftp://sandbox.plaid.com",
        "http://sandbox.plaid.com",
        "https://user:hunter2hunter2@plaid.example",
        "https://plaid.example/?token=abcdefgh",
        "https://",
        "",
    ] {
        let (name, reason) = config_error(&[
            ("PLAID_CLIENT_ID", CLIENT_ID),
            ("PLAID_SECRET", canary::PLAID_SECRET),
            ("PLAID_ENV", bad_env),
        ]);
        assert_eq!(name, "PLAID_ENV", "{bad_env}: {reason}");
    }
}

#[test]
fn the_builder_requires_environment_and_credentials() {
    let err = HttpPlaidClient::builder()
        .credentials(
            ClientId::new(CLIENT_ID).unwrap(),
            ClientSecret::new(canary::PLAID_SECRET).unwrap(),
        )
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: environment is not set"
    );
    let err = HttpPlaidClient::builder()
        .environment(Environment::Production)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: credentials are not set"
    );
    let builder = HttpPlaidClientBuilder::from_lookup(lookup(&[
        ("PLAID_CLIENT_ID", CLIENT_ID),
        ("PLAID_SECRET", canary::PLAID_SECRET),
    ]))
    .unwrap();
    let debug = format!("{builder:?}");
    assert!(
        !debug.contains(canary::PLAID_SECRET) && !debug.contains(CLIENT_ID),
        "{debug}"
    );
    assert!(debug.contains("<set>"));
}

#[test]
fn custom_environment_debug_shows_only_scheme_host_and_port() {
    let environment =
        Environment::Custom("https://user:pw12345678@proxy.example:8443/p?q=1".into());
    assert_eq!(
        format!("{environment:?}"),
        "Custom(https://proxy.example:8443)"
    );
}
