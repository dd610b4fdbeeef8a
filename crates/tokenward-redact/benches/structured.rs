//! The redacting serializer and the JSON scrubber on a realistic 100-transaction
//! `/transactions/get` response, each beside its baseline in the same group:
//!
//! - `serialize`: `serde_json::to_vec(&Redacted::new(&response, &policy))` against plain
//!   `serde_json::to_vec(&response)`.
//! - `json_scrub`: the streaming scrubber against the usual pipeline, `serde_json::Value` parse
//!   → recursive redact (same policy: field rules and value rules) → `serde_json::to_vec`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark harness"
)]

#[path = "support/plaid_fixture.rs"]
mod plaid_fixture;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use tokenward_redact::{FieldAction, Policy, Redacted, scrub_json};

/// The pipeline teams write by hand: parse to a tree, walk it, serialize.
fn redact_value(value: &mut Value, policy: &Policy) {
    match value {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(scrubbed) = policy.scrub_text(s) {
                *s = scrubbed;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(v, policy)),
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match policy.field(k) {
                    FieldAction::Redact(placeholder) => *v = Value::String(placeholder.to_owned()),
                    FieldAction::Keep => redact_value(v, policy),
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn structured(c: &mut Criterion) {
    let policy = Policy::plaid();
    let response = plaid_fixture::transactions_response(100);
    let plain = serde_json::to_vec(&response).unwrap();
    let redacted = serde_json::to_vec(&Redacted::new(&response, &policy)).unwrap();
    assert_eq!(plain, redacted, "a clean response serializes unchanged");

    let mut g = c.benchmark_group("serialize_100_transactions");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("tokenward_redacted_to_vec", |b| {
        b.iter(|| serde_json::to_vec(&Redacted::new(black_box(&response), &policy)).unwrap());
    });
    g.bench_function("baseline_serde_json_to_vec", |b| {
        b.iter(|| serde_json::to_vec(black_box(&response)).unwrap());
    });
    g.finish();

    let mut out = Vec::with_capacity(plain.len());
    scrub_json(&policy, &plain, &mut out).unwrap();
    let mut g = c.benchmark_group("json_scrub_100_transactions");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("tokenward_scrub_json", |b| {
        b.iter(|| {
            out.clear();
            scrub_json(&policy, black_box(&plain), &mut out).unwrap();
            out.len()
        });
    });
    g.bench_function("baseline_value_parse_redact_serialize", |b| {
        b.iter(|| {
            let mut value: Value = serde_json::from_slice(black_box(&plain)).unwrap();
            redact_value(&mut value, &policy);
            serde_json::to_vec(&value).unwrap()
        });
    });
    g.finish();
}

criterion_group!(benches, structured);
criterion_main!(benches);
