#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]
#![cfg(feature = "log")]
//! The `log` integration with a capturing logger: messages are scrubbed, everything else about
//! a record is passed through, and nothing reaches a logger that does not want it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use log::{Level, LevelFilter, Log, Metadata, Record};
use tokenward_redact::Policy;
use tokenward_redact::integrations::{RedactingLogger, init_redacting_logger};
use tokenward_testkit::canary::{
    ACCESS_SANDBOX, BEARER, JWT, LINK_SANDBOX, PLAID_SECRET, PROCESSOR_PRODUCTION,
    PUBLIC_PRODUCTION, ROUTING,
};

const CANARIES: &[&str] = &[
    "de3ce8ef-33f8-452c-a685-8671031fc0f6",
    "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f",
    "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
    "6e5d4c3b-2a19-4f8e-9d7c-6b5a4f3e2d1c",
    PLAID_SECRET,
    BEARER,
    "eyJzdWIiOiJpdGVtLTEyMyIsImlhdCI6MTYwMH0",
    ROUTING,
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Captured {
    level: Level,
    target: String,
    module_path: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    message: String,
}

/// A logger that keeps what it is given, up to `max`.
#[derive(Clone)]
struct Capture {
    records: Arc<Mutex<Vec<Captured>>>,
    flushes: Arc<AtomicUsize>,
    max: Level,
}

impl Capture {
    fn new(max: Level) -> Self {
        Capture {
            records: Arc::default(),
            flushes: Arc::default(),
            max,
        }
    }

    fn taken(&self) -> Vec<Captured> {
        self.records.lock().unwrap().clone()
    }
}

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.max
    }

    fn log(&self, record: &Record<'_>) {
        self.records.lock().unwrap().push(Captured {
            level: record.level(),
            target: record.target().to_owned(),
            module_path: record.module_path().map(str::to_owned),
            file: record.file().map(str::to_owned),
            line: record.line(),
            message: record.args().to_string(),
        });
    }

    fn flush(&self) {
        self.flushes.fetch_add(1, Ordering::SeqCst);
    }
}

#[track_caller]
fn assert_clean(text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "`{canary}` survived in: {text}");
    }
}

#[test]
fn messages_are_scrubbed_and_the_rest_passes_through() {
    let capture = Capture::new(Level::Info);
    let logger = RedactingLogger::new(capture.clone(), Policy::plaid());
    logger.log(
        &Record::builder()
            .args(format_args!(
                "exchange {PUBLIC_PRODUCTION} -> {ACCESS_SANDBOX} with PLAID-SECRET: {PLAID_SECRET}, \
                 link {LINK_SANDBOX}, processor {PROCESSOR_PRODUCTION}, Authorization: Bearer {BEARER}, \
                 jwt {JWT}, wire to {ROUTING}; amount=12.5 request_id=m8MDnv9okwxFNBV"
            ))
            .level(Level::Warn)
            .target("plaid::client")
            .module_path_static(Some("service::plaid"))
            .file_static(Some("src/plaid.rs"))
            .line(Some(42))
            .build(),
    );
    let got = capture.taken();
    assert_eq!(got.len(), 1);
    let record = &got[0];
    assert_clean(&record.message);
    assert_eq!(
        record.message,
        "exchange [REDACTED:plaid.public_token] -> [REDACTED:plaid.access_token] with \
         PLAID-SECRET: [REDACTED:plaid.client_secret], link [REDACTED:plaid.link_token], \
         processor [REDACTED:plaid.processor_token], Authorization: Bearer [REDACTED:http.bearer], \
         jwt [REDACTED:jwt], wire to [REDACTED:bank.routing_number]; amount=12.5 \
         request_id=m8MDnv9okwxFNBV"
    );
    assert_eq!(record.level, Level::Warn);
    assert_eq!(record.target, "plaid::client");
    assert_eq!(record.module_path.as_deref(), Some("service::plaid"));
    assert_eq!(record.file.as_deref(), Some("src/plaid.rs"));
    assert_eq!(record.line, Some(42));
}

#[test]
fn literal_messages_and_non_static_paths() {
    let capture = Capture::new(Level::Trace);
    let logger = RedactingLogger::new(capture.clone(), Policy::plaid());
    let module = String::from("dynamic::module");
    logger.log(
        &Record::builder()
            .args(format_args!(
                "Authorization: Bearer sk9Xq2LmN8pR4tV7wY1zB3cD and routing 021000021"
            ))
            .level(Level::Info)
            .module_path(Some(&module))
            .build(),
    );
    let got = capture.taken();
    assert_eq!(
        got[0].message,
        "Authorization: Bearer [REDACTED:http.bearer] and routing [REDACTED:bank.routing_number]"
    );
    assert_eq!(got[0].module_path.as_deref(), Some("dynamic::module"));
}

#[test]
fn enabled_and_flush_are_forwarded() {
    let capture = Capture::new(Level::Info);
    let logger = RedactingLogger::new(capture.clone(), Policy::plaid());
    let debug = Metadata::builder().level(Level::Debug).target("x").build();
    let error = Metadata::builder().level(Level::Error).target("x").build();
    assert!(!logger.enabled(&debug));
    assert!(logger.enabled(&error));
    logger.log(
        &Record::builder()
            .args(format_args!("{ACCESS_SANDBOX}"))
            .metadata(debug)
            .build(),
    );
    assert!(
        capture.taken().is_empty(),
        "a disabled record is not passed on"
    );
    logger.flush();
    assert_eq!(capture.flushes.load(Ordering::SeqCst), 1);
}

#[test]
fn global_logger_through_the_macros() {
    let capture = Capture::new(Level::Trace);
    init_redacting_logger(capture.clone(), Policy::plaid(), LevelFilter::Info).unwrap();
    assert!(
        init_redacting_logger(
            Capture::new(Level::Trace),
            Policy::plaid(),
            LevelFilter::Info
        )
        .is_err(),
        "a second logger is refused"
    );

    log::info!(target: "plaid::link", "created {LINK_SANDBOX} for item eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6");
    log::error!("exchange failed: PLAID-SECRET: {PLAID_SECRET} token {ACCESS_SANDBOX}");
    log::debug!("below the maximum level: {PROCESSOR_PRODUCTION}");
    log::logger().flush();

    let got = capture.taken();
    assert_eq!(got.len(), 2, "{got:?}");
    for record in &got {
        assert_clean(&record.message);
    }
    assert_eq!(got[0].target, "plaid::link");
    assert_eq!(
        got[0].message,
        "created [REDACTED:plaid.link_token] for item eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6"
    );
    assert_eq!(got[1].level, Level::Error);
    assert_eq!(got[1].module_path.as_deref(), Some(module_path!()));
    assert_eq!(got[1].file.as_deref(), Some(file!()));
    assert!(got[1].line.is_some());
    assert_eq!(
        got[1].message,
        "exchange failed: PLAID-SECRET: [REDACTED:plaid.client_secret] token [REDACTED:plaid.access_token]"
    );
    assert_eq!(capture.flushes.load(Ordering::SeqCst), 1);
}
