#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]
//! Error chains and the panic hook print only scrubbed text.

use std::error::Error;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use tokenward_redact::Policy;
use tokenward_redact::report::{
    ScrubbedError, install_panic_hook, install_panic_hook_to, scrub_error_chain, scrub_panic,
};
use tokenward_testkit::canary::{
    ACCESS_PRODUCTION, BEARER, JWT, LINK_PRODUCTION, PLAID_SECRET, PUBLIC_SANDBOX,
};

const CANARIES: &[&str] = &[
    "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b",
    "0b6a6a1a-2d5c-4a7e-9a40-1f1d0f6c9e2b",
    "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
    PLAID_SECRET,
    BEARER,
    "eyJzdWIiOiJpdGVtLTEyMyIsImlhdCI6MTYwMH0",
    "021000021",
];

#[track_caller]
fn assert_clean(text: &str) {
    assert!(!text.is_empty());
    for canary in CANARIES {
        assert!(!text.contains(canary), "`{canary}` survived in:\n{text}");
    }
}

/// An error with a message and an optional cause.
#[derive(Debug)]
struct Layered {
    message: String,
    source: Option<Box<Layered>>,
}

impl Layered {
    fn chain(levels: &[&str]) -> Layered {
        let mut source = None;
        for message in levels.iter().rev() {
            source = Some(Box::new(Layered {
                message: (*message).to_owned(),
                source,
            }));
        }
        *source.unwrap()
    }
}

impl fmt::Display for Layered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Layered {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

fn plaid_failure() -> Layered {
    Layered::chain(&[
        "token exchange failed",
        &format!("request rejected (Authorization: Bearer {BEARER}, PLAID-SECRET: {PLAID_SECRET})"),
        &format!(
            "{{\"error_code\":\"INVALID_ACCESS_TOKEN\",\"access_token\":\"{ACCESS_PRODUCTION}\"}}"
        ),
        &format!("wire to 021000021 from {PUBLIC_SANDBOX}, jwt {JWT}"),
    ])
}

#[test]
fn error_chain_is_rendered_and_scrubbed_at_every_level() {
    let policy = Policy::plaid();
    let line = scrub_error_chain(&plaid_failure(), &policy);
    assert_clean(&line);
    assert_eq!(
        line,
        "token exchange failed: request rejected (Authorization: Bearer [REDACTED:http.bearer], \
         PLAID-SECRET: [REDACTED:plaid.client_secret]): {\"error_code\":\"INVALID_ACCESS_TOKEN\",\
         \"access_token\":\"[REDACTED:plaid.access_token]\"}: wire to [REDACTED:bank.routing_number] \
         from [REDACTED:plaid.public_token], jwt [REDACTED:jwt]"
    );
    let clean = Layered::chain(&["outer", "inner"]);
    assert_eq!(scrub_error_chain(&clean, &policy), "outer: inner");
}

#[test]
fn a_key_and_its_value_in_neighbouring_levels_are_caught() {
    let split = Layered::chain(&["PLAID-SECRET", PLAID_SECRET]);
    assert_eq!(
        scrub_error_chain(&split, &Policy::plaid()),
        "PLAID-SECRET: [REDACTED:plaid.client_secret]"
    );
}

#[test]
fn deep_chains_are_cut() {
    let levels: Vec<String> = (0..200).map(|i| format!("level {i}")).collect();
    let refs: Vec<&str> = levels.iter().map(String::as_str).collect();
    let err = Layered::chain(&refs);
    let line = scrub_error_chain(&err, &Policy::plaid());
    assert!(line.starts_with("level 0: level 1: "));
    assert!(line.ends_with("level 63: …"), "{line}");
    let scrubbed = ScrubbedError::new(&err, &Policy::plaid());
    assert_eq!(
        format!("{scrubbed:#}"),
        line,
        "the wrapper cuts at the same depth"
    );
}

#[test]
fn scrubbed_error_holds_only_scrubbed_text() {
    let policy = Policy::plaid();
    let original = plaid_failure();
    let err = ScrubbedError::new(&original, &policy);

    assert_eq!(err.to_string(), "token exchange failed");
    assert_eq!(err.message(), "token exchange failed");
    let chain = format!("{err:#}");
    assert_clean(&chain);
    assert_eq!(chain, scrub_error_chain(&original, &policy));

    let debug = format!("{err:?}");
    assert_clean(&debug);
    assert!(debug.starts_with("token exchange failed\n\nCaused by:\n    0: request rejected"));
    assert!(
        debug.contains("\n    2: wire to [REDACTED:bank.routing_number]"),
        "{debug}"
    );

    // Reporters walk `source()`: every level is there, and scrubbed.
    let mut levels = Vec::new();
    let mut level: Option<&(dyn Error + 'static)> = Some(&err);
    while let Some(e) = level {
        levels.push(e.to_string());
        level = e.source();
    }
    assert_eq!(levels.len(), 4);
    for text in &levels {
        assert_clean(text);
    }
    assert!(levels[2].contains("[REDACTED:plaid.access_token]"));

    // It travels as a boxed, thread-safe error.
    let boxed: Box<dyn Error + Send + Sync + 'static> = Box::new(err.clone());
    assert_eq!(boxed.to_string(), "token exchange failed");
    let single = ScrubbedError::new(&io::Error::other(LINK_PRODUCTION), &policy);
    assert_eq!(format!("{single:?}"), "[REDACTED:plaid.link_token]");
    assert!(single.source().is_none());
}

/// A writer into shared memory, for the panic hook.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

impl io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The panic hook is process-wide: every panic case runs in this one test, in order.
#[test]
fn panic_hook_prints_only_scrubbed_reports() {
    let policy = Policy::plaid();
    let out = Shared::default();
    install_panic_hook_to(policy.clone(), Box::new(out.clone()));

    // A formatted message (a `String` payload).
    let result = panic::catch_unwind(|| {
        panic!("exchange failed for {ACCESS_PRODUCTION} with PLAID-SECRET: {PLAID_SECRET}");
    });
    assert!(result.is_err());
    let report = out.take();
    assert_clean(&report);
    let this_file = file!();
    assert!(
        report.contains(&format!("panicked at {this_file}:")),
        "{report}"
    );
    assert!(
        report.contains(
            "exchange failed for [REDACTED:plaid.access_token] with PLAID-SECRET: [REDACTED:plaid.client_secret]\n"
        ),
        "{report}"
    );
    assert!(
        report.contains("stack backtrace:") || report.contains("note: run with `RUST_BACKTRACE=1`"),
        "{report}"
    );
    assert!(
        report.contains("thread 'panic_hook_prints_only_scrubbed_reports"),
        "{report}"
    );

    // A `&str` payload.
    let result = panic::catch_unwind(|| {
        panic::panic_any("Authorization: Bearer sk9Xq2LmN8pR4tV7wY1zB3cD");
    });
    assert!(result.is_err());
    let report = out.take();
    assert_clean(&report);
    assert!(
        report.contains("Authorization: Bearer [REDACTED:http.bearer]"),
        "{report}"
    );

    // Any other payload.
    let result = panic::catch_unwind(|| panic::panic_any(42_u32));
    assert!(result.is_err());
    assert!(out.take().contains("\nBox<dyn Any>\n"));

    // A thread whose name holds a secret.
    let worker = std::thread::Builder::new()
        .name(format!("worker-{PUBLIC_SANDBOX}"))
        .spawn(|| panic!("jwt {JWT}"))
        .unwrap();
    assert!(worker.join().is_err());
    let report = out.take();
    assert_clean(&report);
    assert!(
        report.contains("thread 'worker-[REDACTED:plaid.public_token]' panicked at"),
        "{report}"
    );

    // `scrub_panic` for hooks of one's own.
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&seen);
    let hook_policy = policy.clone();
    panic::set_hook(Box::new(move |info| {
        *sink.lock().unwrap() = scrub_panic(info, &hook_policy);
    }));
    let result = panic::catch_unwind(AssertUnwindSafe(|| panic!("routing 021000021")));
    assert!(result.is_err());
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.starts_with(&format!("panicked at {this_file}:")),
        "{seen}"
    );
    assert!(
        seen.ends_with(":\nrouting [REDACTED:bank.routing_number]"),
        "{seen}"
    );

    // The public installer replaces that hook (it writes to stderr, so it is not exercised).
    install_panic_hook(policy);
    let _ = panic::take_hook();
}
