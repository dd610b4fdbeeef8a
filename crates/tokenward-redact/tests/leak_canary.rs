//! The leak canary: secrets of every kind, planted at any depth of nested maps, sequences and
//! values, in keys and in values, go through every layer of the crate: the redacting
//! serializer, the JSON scrubber, the text scrubber, tracing (fmt and JSON), log and the panic
//! hook. None may survive.
#![cfg(all(feature = "tracing", feature = "log"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use proptest::prelude::*;
use serde_json::{Map, Value};
use tokenward_redact::integrations::{
    RedactingFields, RedactingFormat, RedactingLogger, redacting_fmt_layer,
};
use tokenward_redact::{Policy, Redacted, scrub_json_to_vec};
use tracing_subscriber::layer::SubscriberExt as _;

/// A secret planted in the input, and whether only its field name gives it away.
#[derive(Debug, Clone)]
struct Canary {
    /// The text that must not appear in any output.
    needle: String,
    /// What is planted (may carry a prefix such as `Bearer `).
    planted: String,
    /// Found only by its field name, so text-only layers cannot be asked to find it.
    by_name_only: bool,
}

fn uuid() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}"
}

/// A secret that identifies itself by its shape.
fn shaped() -> impl Strategy<Value = Canary> {
    let token = (
        prop::sample::select(vec!["access", "public", "link", "processor"]),
        prop::sample::select(vec!["sandbox", "development", "production"]),
        uuid(),
    )
        .prop_map(|(kind, env, id)| Canary {
            planted: format!("{kind}-{env}-{id}"),
            needle: id,
            by_name_only: false,
        });
    let bearer = "[A-Za-z]{6}[0-9]{4}[A-Za-z0-9]{10}".prop_map(|t| Canary {
        planted: format!("Bearer {t}"),
        needle: t,
        by_name_only: false,
    });
    let secret_header = "[a-z0-9]{30}".prop_map(|s| Canary {
        planted: format!("PLAID-SECRET: {s}"),
        needle: s,
        by_name_only: false,
    });
    let routing = prop::sample::select(vec!["021000021", "011401533", "091000019", "011000015"])
        .prop_map(|r| Canary {
            planted: format!("wire via {r} today"),
            needle: r.to_owned(),
            by_name_only: false,
        });
    let jwt = ("[A-Za-z0-9_-]{12}", "[A-Za-z0-9_-]{16}").prop_map(|(h, p)| Canary {
        planted: format!("eyJ{h}.eyJ{p}.c2lnbmF0dXJl"),
        needle: format!("eyJ{h}.eyJ{p}"),
        by_name_only: false,
    });
    prop_oneof![token, bearer, secret_header, routing, jwt]
}

/// A value that only its field name marks as secret.
fn named() -> impl Strategy<Value = (String, Canary)> {
    (
        prop::sample::select(vec![
            "password",
            "api_key",
            "account",
            "accountNumber",
            "client_secret",
            "PLAID-SECRET",
            "access_token",
        ]),
        "zq[a-z]{6}[0-9]{4}",
    )
        .prop_map(|(key, value)| {
            (
                key.to_owned(),
                Canary {
                    needle: value.clone(),
                    planted: value,
                    by_name_only: true,
                },
            )
        })
}

/// A JSON tree holding ordinary Plaid-like data with canaries planted anywhere.
fn tree() -> impl Strategy<Value = (Value, Vec<Canary>)> {
    let ordinary = prop_oneof![
        Just(Value::from(12.5)),
        Just(Value::from("2024-03-01")),
        Just(Value::from("Uber 063015 SF**POOL**")),
        Just(Value::Null),
        Just(Value::from(true)),
    ]
    .prop_map(|v| (v, Vec::new()));
    let planted_value =
        shaped().prop_map(|c| (Value::from(format!("note: {} end", c.planted)), vec![c]));
    let leaf = prop_oneof![3 => ordinary, 2 => planted_value];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let seq = prop::collection::vec(inner.clone(), 0..5).prop_map(|items| {
            let (values, canaries): (Vec<Value>, Vec<Vec<Canary>>) = items.into_iter().unzip();
            (Value::Array(values), canaries.concat())
        });
        let key = prop_oneof![
            3 => prop::sample::select(vec!["amount", "date", "merchant_name", "item_id", "notes"])
                .prop_map(|k| (k.to_owned(), Vec::new())),
            1 => shaped().prop_map(|c| (c.planted.clone(), vec![c])),
        ];
        let map = prop::collection::vec((key, inner), 0..5).prop_flat_map(|entries| {
            named().prop_map(move |(named_key, named_canary)| {
                let mut map = Map::new();
                let mut canaries = vec![named_canary.clone()];
                for ((k, key_canaries), (v, value_canaries)) in entries.clone() {
                    canaries.extend(key_canaries);
                    canaries.extend(value_canaries);
                    map.insert(k, v);
                }
                map.insert(named_key, Value::from(named_canary.planted.clone()));
                (Value::Object(map), canaries)
            })
        });
        prop_oneof![seq, map]
    })
}

#[track_caller]
fn assert_no_canary(layer: &str, output: &str, canaries: &[Canary], structured: bool) {
    for c in canaries {
        if c.by_name_only && !structured {
            continue;
        }
        assert!(
            !output.contains(&c.needle),
            "{layer}: `{}` survived in:\n{output}",
            c.needle
        );
    }
}

/// A shared buffer that several global sinks write into.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Sink {
    type Writer = Sink;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

struct CaptureLog(Sink);

impl log::Log for CaptureLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let _ = writeln!(self.0.clone(), "{}", record.args());
    }

    fn flush(&self) {}
}

/// The process-wide sinks: the logger and the panic hook can be installed once only.
fn global_sinks() -> &'static (Sink, Sink) {
    static SINKS: OnceLock<(Sink, Sink)> = OnceLock::new();
    SINKS.get_or_init(|| {
        let (log_sink, panic_sink) = (Sink::default(), Sink::default());
        let logger = RedactingLogger::new(CaptureLog(log_sink.clone()), Policy::plaid());
        log::set_boxed_logger(Box::new(logger)).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
        tokenward_redact::report::install_panic_hook_to(
            Policy::plaid(),
            Box::new(panic_sink.clone()),
        );
        (log_sink, panic_sink)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_planted_secret_survives_any_layer((value, canaries) in tree()) {
        let policy = Policy::plaid();
        let plain = serde_json::to_string(&value).unwrap();

        // Structured layers know field names: every canary must go.
        let serialized = serde_json::to_string(&Redacted::new(&value, &policy)).unwrap();
        assert_no_canary("serde adapter", &serialized, &canaries, true);
        let scrubbed = String::from_utf8(scrub_json_to_vec(&policy, plain.as_bytes()).unwrap()).unwrap();
        assert_no_canary("JSON scrubber", &scrubbed, &canaries, true);
        prop_assert!(serde_json::from_str::<Value>(&scrubbed).is_ok());
        prop_assert_eq!(&String::from_utf8(scrub_json_to_vec(&policy, scrubbed.as_bytes()).unwrap()).unwrap(), &scrubbed);

        // Text layers: every secret that shows its shape must go.
        let text = policy.scrub_text(&plain);
        assert_no_canary("text scrubber", &text, &canaries, false);
        prop_assert_eq!(policy.scrub_text(&text), text.clone(), "idempotent");

        for json in [false, true] {
            let sink = Sink::default();
            let dispatch = if json {
                let layer = tracing_subscriber::fmt::layer()
                    .json()
                    .fmt_fields(RedactingFields::json(policy.clone()))
                    .map_event_format(|f| RedactingFormat::new(f, policy.clone()))
                    .with_writer(sink.clone());
                tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
            } else {
                let layer = redacting_fmt_layer(policy.clone()).with_writer(sink.clone());
                tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
            };
            tracing::dispatcher::with_default(&dispatch, || {
                let span = tracing::info_span!("request", body = %plain);
                let _entered = span.enter();
                tracing::info!(payload = %plain, debug = ?value, "received {plain}");
            });
            assert_no_canary(if json { "tracing json" } else { "tracing fmt" }, &sink.take(), &canaries, false);
        }

        let (log_sink, panic_sink) = global_sinks();
        log::info!("received {plain}");
        assert_no_canary("log", &log_sink.take(), &canaries, false);
        let _ = std::panic::catch_unwind(|| panic!("failed on {plain}"));
        assert_no_canary("panic hook", &panic_sink.take(), &canaries, false);
    }
}
