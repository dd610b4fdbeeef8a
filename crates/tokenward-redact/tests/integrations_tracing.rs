#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]
#![cfg(feature = "tracing")]
//! The tracing integration with real subscribers: canaries of every kind, planted in messages,
//! in fields of every type, in span fields and in `#[instrument]` arguments, must not survive
//! any formatter; ordinary fields must.

use std::error::Error;
use std::fmt;
use std::io::{self, Write as _};
use std::sync::{Arc, Mutex};

use tokenward_redact::Policy;
use tokenward_redact::integrations::{
    RedactingFields, RedactingFormat, RedactingMakeWriter, TRACING_JSON_KEYS, TRUNCATION_MARKER,
    redacting_fmt_layer,
};
use tokenward_testkit::canary::{
    ACCESS_PRODUCTION, ACCESS_SANDBOX, BEARER, JWT, LINK_PRODUCTION, LINK_SANDBOX, PLAID_SECRET,
    PROCESSOR_PRODUCTION, PROCESSOR_SANDBOX, PUBLIC_PRODUCTION, PUBLIC_SANDBOX, ROUTING,
};
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

// ---------------------------------------------------------------------------------------------
// Canaries.

/// A routing number (valid checksum, Federal Reserve prefix) without a leading zero, so it can
/// be logged as an integer.
const ROUTING_NUMBER: u64 = 121_000_358;

/// Secrets only their field name gives away: no value rule knows their shape.
const PASSWORD: &str = "hunter2-correct-horse";
const ACCOUNT_NUMBER: u64 = 1_111_222_233_330_000;
const API_KEY: &str = "k-live-zz9-plural-alpha";
const SPAN_PASSWORD: &str = "span-only-pass-phrase";
const INSTRUMENT_ACCESS: &str = "instrument-arg-not-token-shaped";

const ITEM_ID: &str = "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6";
const REQUEST_ID: &str = "m8MDnv9okwxFNBV";

/// Substrings that must not appear in any output.
fn value_canaries() -> Vec<String> {
    let tokens = [
        ACCESS_SANDBOX,
        ACCESS_PRODUCTION,
        PUBLIC_SANDBOX,
        PUBLIC_PRODUCTION,
        LINK_SANDBOX,
        LINK_PRODUCTION,
        PROCESSOR_SANDBOX,
        PROCESSOR_PRODUCTION,
    ];
    let mut out: Vec<String> = tokens
        .iter()
        // The id part: `<type>-<env>-` alone is not a secret.
        .map(|t| t.splitn(3, '-').nth(2).unwrap().to_owned())
        .collect();
    out.extend([PLAID_SECRET, BEARER, ROUTING].map(str::to_owned));
    out.extend(JWT.split('.').map(str::to_owned));
    out.push(ROUTING_NUMBER.to_string());
    out
}

fn name_canaries() -> Vec<String> {
    vec![
        PASSWORD.to_owned(),
        ACCOUNT_NUMBER.to_string(),
        API_KEY.to_owned(),
        SPAN_PASSWORD.to_owned(),
        INSTRUMENT_ACCESS.to_owned(),
    ]
}

#[track_caller]
fn assert_clean(output: &str, canaries: &[String]) {
    assert!(!output.is_empty(), "nothing was written");
    for canary in canaries {
        assert!(
            !output.contains(canary.as_str()),
            "`{canary}` survived in:\n{output}"
        );
    }
}

#[track_caller]
fn assert_kept(output: &str) {
    for kept in ["12.5", ITEM_ID, REQUEST_ID, "ordinary event"] {
        assert!(output.contains(kept), "`{kept}` was lost from:\n{output}");
    }
    for placeholder in [
        "[REDACTED:plaid.access_token]",
        "[REDACTED:plaid.public_token]",
        "[REDACTED:plaid.link_token]",
        "[REDACTED:plaid.processor_token]",
        "[REDACTED:plaid.client_secret]",
        "[REDACTED:http.bearer]",
        "[REDACTED:jwt]",
        "[REDACTED:bank.routing_number]",
    ] {
        assert!(
            output.contains(placeholder),
            "no `{placeholder}` in:\n{output}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Capturing writer.

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> CaptureWriter {
        CaptureWriter(Arc::clone(&self.0))
    }
}

// ---------------------------------------------------------------------------------------------
// What the service logs.

#[derive(Debug)]
struct ExchangeRequest {
    #[allow(dead_code, reason = "printed through Debug")]
    public_token: String,
    #[allow(dead_code, reason = "printed through Debug")]
    note: String,
}

#[derive(Debug)]
struct PlaidError {
    body: String,
}

impl fmt::Display for PlaidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plaid answered 400: {}", self.body)
    }
}

impl Error for PlaidError {}

#[derive(Debug)]
struct ExchangeError {
    source: PlaidError,
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("token exchange failed")
    }
}

impl Error for ExchangeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

#[tracing::instrument(fields(request_id = REQUEST_ID))]
fn exchange(public_token: &str, access_token: &str, amount: f64) -> String {
    tracing::info!("inside instrumented exchange");
    format!("issued {ACCESS_SANDBOX}")
}

#[tracing::instrument(ret, err)]
fn exchange_checked(link_token: &str) -> Result<String, PlaidError> {
    if link_token.is_empty() {
        Ok(String::new())
    } else {
        Err(PlaidError {
            body: format!("{{\"error\":\"bad link_token {LINK_PRODUCTION}\"}}"),
        })
    }
}

#[tracing::instrument(ret)]
fn issue() -> String {
    format!("new token {PROCESSOR_SANDBOX}")
}

/// Logs every canary in every position.
fn emit_everything() {
    let err = ExchangeError {
        source: PlaidError {
            body: format!("access_token {ACCESS_PRODUCTION} is invalid"),
        },
    };
    let request = ExchangeRequest {
        public_token: PUBLIC_PRODUCTION.to_owned(),
        note: format!("Authorization: Bearer {BEARER}"),
    };
    let span = tracing::info_span!(
        "plaid_call",
        processor = %PROCESSOR_PRODUCTION,
        password = SPAN_PASSWORD,
        item_id = ITEM_ID,
        link = tracing::field::Empty,
    );
    let _entered = span.enter();
    span.record("link", LINK_SANDBOX);

    tracing::info!(
        amount = 12.5,
        item_id = ITEM_ID,
        request_id = REQUEST_ID,
        "ordinary event"
    );
    tracing::warn!(
        "exchanging {} with PLAID-SECRET: {} and jwt {} to routing {} (Authorization: Bearer {})",
        PUBLIC_SANDBOX,
        PLAID_SECRET,
        JWT,
        ROUTING,
        BEARER
    );
    tracing::error!(
        error = &err as &(dyn Error + 'static),
        request = ?request,
        header = %format_args!("PLAID-SECRET: {PLAID_SECRET}"),
        token = ACCESS_SANDBOX,
        body = JWT.as_bytes(),
        wire = ROUTING_NUMBER,
        password = PASSWORD,
        account_number = ACCOUNT_NUMBER,
        api_key = ?API_KEY,
        user.password = PASSWORD,
        r#secret = PASSWORD,
        count = 3_i64,
        big = 12_345_u128,
        signed_big = -7_i128,
        flag = true,
        amount = 12.5,
        "failed to exchange {}", LINK_PRODUCTION
    );
    let _ = exchange(PUBLIC_SANDBOX, INSTRUMENT_ACCESS, 12.5);
    let _ = exchange_checked(LINK_SANDBOX);
    let _ = issue();
}

fn run<S>(subscriber: S)
where
    S: Subscriber + Send + Sync + 'static,
{
    tracing::subscriber::with_default(subscriber, emit_everything);
}

fn all_canaries() -> Vec<String> {
    let mut all = value_canaries();
    all.extend(name_canaries());
    all
}

// ---------------------------------------------------------------------------------------------
// Text formatters.

#[test]
fn full_format_one_liner() {
    let capture = Capture::default();
    let layer = redacting_fmt_layer(Policy::plaid()).with_writer(capture.clone());
    run(tracing_subscriber::registry().with(layer));
    let out = capture.text();
    assert_clean(&out, &all_canaries());
    assert_kept(&out);
    for field in [
        "password=[REDACTED:credential]",
        "account_number=[REDACTED:bank.account_number]",
        "api_key=[REDACTED:credential]",
        "user.password=[REDACTED:credential]",
        "secret=[REDACTED:plaid.client_secret]",
        "access_token=[REDACTED:plaid.access_token]",
        "count=3",
        "big=12345",
        "signed_big=-7",
        "flag=true",
        "body=b\"[REDACTED:jwt]\"",
    ] {
        assert!(out.contains(field), "no `{field}` in:\n{out}");
    }
    // The error chain is there, scrubbed.
    assert!(
        out.contains("token exchange failed: plaid answered 400: access_token [REDACTED:plaid.access_token] is invalid"),
        "{out}"
    );
}

#[test]
fn compact_format() {
    // (`Pretty` needs tracing-subscriber's `ansi` feature, which this workspace leaves off.)
    let policy = Policy::plaid();
    let capture = Capture::default();
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(RedactingFields::new(policy.clone()))
        .event_format(RedactingFormat::new(
            tracing_subscriber::fmt::format().compact(),
            policy.clone(),
        ))
        .with_writer(capture.clone());
    run(tracing_subscriber::registry().with(layer));
    let out = capture.text();
    assert_clean(&out, &all_canaries());
    assert_kept(&out);
}

#[test]
fn fmt_subscriber_builder() {
    let policy = Policy::plaid();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .fmt_fields(RedactingFields::new(policy.clone()))
        .map_event_format(|f| RedactingFormat::new(f, policy.clone()))
        .with_writer(capture.clone())
        .finish();
    run(subscriber);
    let out = capture.text();
    assert_clean(&out, &all_canaries());
    assert_kept(&out);
}

// ---------------------------------------------------------------------------------------------
// JSON.

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn json_format() {
    let policy = Policy::plaid();
    for flatten in [false, true] {
        let capture = Capture::default();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(flatten)
            .fmt_fields(RedactingFields::json(policy.clone()))
            .map_event_format(|f| RedactingFormat::new(f, policy.clone()))
            .with_writer(capture.clone());
        run(tracing_subscriber::registry().with(layer));
        let out = capture.text();
        assert_clean(&out, &all_canaries());
        assert_kept(&out);

        let lines = json_lines(&out);
        let fields = |line: &serde_json::Value| {
            if flatten {
                line.clone()
            } else {
                line["fields"].clone()
            }
        };
        let failure = lines
            .iter()
            .map(fields)
            .find(|f| f.get("wire").is_some())
            .expect("the error event");
        assert_eq!(failure["password"], "[REDACTED:credential]");
        assert_eq!(failure["account_number"], "[REDACTED:bank.account_number]");
        assert_eq!(failure["wire"], "[REDACTED:bank.routing_number]");
        assert_eq!(failure["amount"], 12.5, "numbers stay numbers");
        assert_eq!(failure["count"], 3);
        assert_eq!(failure["flag"], true);
        let span = &lines[0]["span"];
        assert_eq!(span["password"], "[REDACTED:credential]");
        assert_eq!(span["item_id"], ITEM_ID);
        assert_eq!(span["link"], "[REDACTED:plaid.link_token]");
    }
}

#[test]
fn json_format_with_plain_span_fields() {
    // With tracing-subscriber's own JSON field formatter, span fields are not redacted by name
    // when formatted; the JSON pass over each line does it.
    let policy = Policy::plaid();
    let capture = Capture::default();
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .map_event_format(|f| RedactingFormat::new(f, policy.clone()))
        .with_writer(capture.clone());
    run(tracing_subscriber::registry().with(layer));
    let out = capture.text();

    assert_clean(&out, &all_canaries());
    assert_kept(&out);
    let lines = json_lines(&out);
    assert_eq!(lines[0]["span"]["password"], "[REDACTED:credential]");
}

#[test]
fn json_allow_list_with_envelope_keys() {
    let policy = Policy::builder()
        .allow_only(
            ["amount", "item_id", "request_id", "public_token"]
                .iter()
                .chain(TRACING_JSON_KEYS),
        )
        .build()
        .unwrap();
    let capture = Capture::default();
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .fmt_fields(RedactingFields::json(policy.clone()))
        .map_event_format(|f| RedactingFormat::new(f, policy.clone()))
        .with_writer(capture.clone());
    run(tracing_subscriber::registry().with(layer));
    let out = capture.text();
    assert_clean(&out, &all_canaries());
    let lines = json_lines(&out);
    assert_eq!(lines[0]["fields"]["message"], "ordinary event");
    assert_eq!(lines[0]["fields"]["amount"], 12.5);
    assert_eq!(lines[0]["span"]["processor"], "[REDACTED:not_allowed]");
    assert!(lines.iter().all(|l| l["level"].is_string()));
}

#[test]
fn text_allow_list_keeps_the_message() {
    let policy = Policy::builder()
        .allow_only(["amount", "item_id", "request_id"])
        .build()
        .unwrap();
    let capture = Capture::default();
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(RedactingFields::new(policy.clone()))
        .map_event_format(|f| RedactingFormat::new(f, policy.clone()))
        .with_writer(capture.clone());
    run(tracing_subscriber::registry().with(layer));
    let out = capture.text();
    assert_clean(&out, &all_canaries());
    assert!(
        out.contains("integrations_tracing: ordinary event amount=12.5"),
        "{out}"
    );
    assert!(
        out.contains("failed to exchange [REDACTED:plaid.link_token]"),
        "{out}"
    );
    assert!(out.contains("flag=[REDACTED:not_allowed]"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// The writer alone: value rules on text, field rules on JSON lines.

#[test]
fn writer_alone_scrubs_text_output_by_value() {
    let capture = Capture::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(RedactingMakeWriter::new(capture.clone(), Policy::plaid()));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(
            amount = 12.5,
            item_id = ITEM_ID,
            request_id = REQUEST_ID,
            "ordinary event"
        );
        tracing::warn!(
            token = ACCESS_SANDBOX,
            request = ?PUBLIC_PRODUCTION,
            header = %format_args!("Authorization: Bearer {BEARER}"),
            "jwt {JWT} PLAID-SECRET: {PLAID_SECRET} routing {ROUTING} link {LINK_PRODUCTION}"
        );
        let span = tracing::info_span!("call", processor = %PROCESSOR_SANDBOX);
        let _entered = span.enter();
        tracing::info!(
            error = &PlaidError {
                body: ACCESS_PRODUCTION.to_owned()
            } as &(dyn Error + 'static),
            "in span"
        );
    });
    let out = capture.text();
    assert_clean(&out, &value_canaries());
    assert!(out.contains("12.5") && out.contains(ITEM_ID), "{out}");
}

#[test]
fn writer_alone_applies_field_rules_to_json_lines() {
    let capture = Capture::default();
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(RedactingMakeWriter::new(capture.clone(), Policy::plaid()));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing::info_span!("call", password = SPAN_PASSWORD);
        let _entered = span.enter();
        tracing::info!(
            password = PASSWORD,
            account_number = ACCOUNT_NUMBER,
            token = ACCESS_SANDBOX,
            amount = 12.5,
            "PLAID-SECRET: {PLAID_SECRET}"
        );
    });
    let out = capture.text();
    assert_clean(
        &out,
        &[
            PASSWORD.to_owned(),
            SPAN_PASSWORD.to_owned(),
            ACCOUNT_NUMBER.to_string(),
            PLAID_SECRET.to_owned(),
            "de3ce8ef".to_owned(),
        ],
    );
    let line = &json_lines(&out)[0];
    assert_eq!(line["fields"]["amount"], 12.5);
    assert_eq!(line["span"]["password"], "[REDACTED:credential]");
}

// ---------------------------------------------------------------------------------------------
// The writer's buffering rules, driven directly.

fn write_through(
    policy: &Policy,
    limit: usize,
    chunks: &[&[u8]],
    flush_after: Option<usize>,
) -> String {
    let capture = Capture::default();
    let make = RedactingMakeWriter::new(capture.clone(), policy.clone()).with_line_limit(limit);
    {
        let mut w = make.make_writer();
        for (i, chunk) in chunks.iter().enumerate() {
            w.write_all(chunk).unwrap();
            if flush_after == Some(i) {
                w.flush().unwrap();
                // A partial line is held through a flush.
                assert!(
                    !capture.text().contains("PLAID-SECRET"),
                    "{}",
                    capture.text()
                );
            }
        }
    }
    String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned()
}

#[test]
fn writer_finds_secrets_split_across_writes() {
    let p = Policy::plaid();
    let out = write_through(
        &p,
        64 * 1024,
        &[
            b"token=access-sand",
            b"box-de3ce8ef-33f8-452c-a685",
            b"-8671031fc0f6 ok\nPLAID-SECRET: ",
            PLAID_SECRET.as_bytes(),
            b"\n",
        ],
        Some(2),
    );
    assert_eq!(
        out,
        "token=[REDACTED:plaid.access_token] ok\nPLAID-SECRET: [REDACTED:plaid.client_secret]\n"
    );
}

#[test]
fn writer_scrubs_the_tail_on_drop_and_survives_bad_utf8() {
    let p = Policy::plaid();
    let out = write_through(
        &p,
        64 * 1024,
        &[b"\xff\xfe raw ", b"Bearer ", BEARER.as_bytes()],
        None,
    );
    assert_eq!(out, "\u{fffd}\u{fffd} raw Bearer [REDACTED:http.bearer]");
}

#[test]
fn writer_truncates_an_over_long_line_without_cutting_a_secret() {
    let p = Policy::plaid();
    let limit = 1024;
    // The token straddles the limit: its head lies before byte 1024, its tail after.
    let mut line = "x".repeat(1000);
    line.push(' ');
    line.push_str(ACCESS_SANDBOX);
    line.push_str(" and more PLAID-SECRET: ");
    line.push_str(PLAID_SECRET);
    line.push('\n');
    let out = write_through(
        &p,
        limit,
        &[
            line.as_bytes(),
            b"next line ",
            LINK_SANDBOX.as_bytes(),
            b"\n",
        ],
        None,
    );
    assert_clean(&out, &value_canaries());
    assert!(
        out.contains(TRUNCATION_MARKER) || out.contains("[REDACTED"),
        "{out}"
    );

    // Written in small pieces, the line is held until the limit and then truncated.
    let pieces: Vec<&[u8]> = line.as_bytes().chunks(100).collect();
    let mut chunks = pieces.clone();
    chunks.push(b"next line ok\n");
    let out = write_through(&p, limit, &chunks, None);
    assert_clean(&out, &value_canaries());
    assert!(!out.contains("access-sandbox"), "no half token: {out}");
    let mut lines = out.lines();
    let first = lines.next().unwrap();
    assert_eq!(first, format!("{} {TRUNCATION_MARKER}", "x".repeat(1000)));
    assert_eq!(lines.next(), Some("next line ok"));
}

#[test]
fn writer_truncates_a_line_with_no_safe_cut_to_the_marker() {
    let p = Policy::plaid();
    let blob = "A".repeat(5000);
    let pieces: Vec<&[u8]> = blob.as_bytes().chunks(512).collect();
    let out = write_through(&p, 1024, &pieces, None);
    assert_eq!(out, TRUNCATION_MARKER);
}

#[test]
fn writer_drops_the_head_of_a_truncated_json_line() {
    let p = Policy::plaid();
    let mut line = String::from(r#"{"fields":{"password":"hunter2-correct-horse","pad":""#);
    line.push_str(&"y ".repeat(1000));
    let pieces: Vec<&[u8]> = line.as_bytes().chunks(256).collect();
    let mut chunks = pieces.clone();
    chunks.push(b"\"}}\n{\"password\":\"whole-line-secret\"}\n");
    let out = write_through(&p, 1024, &chunks, None);
    assert_eq!(
        out,
        format!("{TRUNCATION_MARKER}\n{{\"password\":\"[REDACTED:credential]\"}}\n")
    );
}
