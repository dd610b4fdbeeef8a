//! A driver for instruction counts of the redacting serializer, for `valgrind --tool=callgrind`
//! (criterion's timing loop would swamp the counts):
//!
//! ```text
//! cargo bench -p tokenward-redact --bench serialize_count --no-run
//! valgrind --tool=callgrind <the bench binary> redacted 20
//! valgrind --tool=callgrind <the bench binary> plain 20
//! ```
//!
//! Both modes build the same 100-transaction response and policy as the `structured` bench and
//! serialize it `n` times (default 20): `redacted` through `Redacted`, `plain` with
//! `serde_json::to_vec`. The difference of two runs with different `n`, divided by the
//! difference of `n`, is the cost of one serialization without the setup.
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

use tokenward_redact::{Policy, Redacted};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let policy = Policy::plaid();
    let response = plaid_fixture::transactions_response(100);
    let plain = serde_json::to_vec(&response).unwrap();
    let mut total = 0;
    for _ in 0..n {
        let out = match mode.as_str() {
            "redacted" => serde_json::to_vec(&Redacted::new(black_box(&response), &policy)),
            "plain" => serde_json::to_vec(black_box(&response)),
            _ => {
                std::process::exit(2);
            }
        }
        .unwrap();
        total += out.len();
    }
    assert_eq!(total, n * plain.len());
}
