//! A driver for the redacting serializer outside criterion: instruction counts under
//! `valgrind --tool=callgrind` (criterion's timing loop would swamp them), and an interleaved
//! timing that holds up on a busy machine.
//!
//! ```text
//! cargo bench -p tokenward-redact --bench serialize_count --no-run
//! valgrind --tool=callgrind <the bench binary> redacted 20
//! valgrind --tool=callgrind <the bench binary> plain 20
//! <the bench binary> interleaved 1000
//! ```
//!
//! Every mode builds the same 100-transaction response and policy as the `structured` bench.
//! `redacted` and `plain` serialize it `n` times (default 20), through `Redacted` or with plain
//! `serde_json::to_vec`; the difference of two runs with different `n`, divided by the
//! difference of `n`, is the cost of one serialization without the setup. `interleaved` runs
//! `n` rounds (default 1000) of 5 plain then 5 redacted serializations and prints, for each, the
//! lowest and the tenth-percentile time of one serialization, and their ratios: on a busy
//! machine the low end of each distribution is what the code costs, the rest is waiting.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    missing_docs,
    reason = "benchmark harness"
)]

#[path = "support/plaid_fixture.rs"]
mod plaid_fixture;

use std::hint::black_box;
use std::time::{Duration, Instant};

use tokenward_redact::{Policy, Redacted};

/// Serializations per half of an `interleaved` round.
const BATCH: u32 = 5;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let policy = Policy::plaid();
    let response = plaid_fixture::transactions_response(100);
    let plain = serde_json::to_vec(&response).unwrap();
    let redacted = || serde_json::to_vec(&Redacted::new(black_box(&response), &policy)).unwrap();
    let baseline = || serde_json::to_vec(black_box(&response)).unwrap();
    assert_eq!(redacted(), plain, "a clean response serializes unchanged");
    match mode.as_str() {
        "redacted" | "plain" => {
            let mut total = 0;
            for _ in 0..if n == 0 { 20 } else { n } {
                total += if mode == "plain" {
                    baseline()
                } else {
                    redacted()
                }
                .len();
            }
            black_box(total);
        }
        "interleaved" => interleaved(if n == 0 { 1000 } else { n }, &redacted, &baseline),
        _ => {
            println!("usage: serialize_count redacted|plain|interleaved [n]");
            std::process::exit(2);
        }
    }
}

/// Prints the `interleaved` figures.
fn interleaved(rounds: usize, redacted: &dyn Fn() -> Vec<u8>, baseline: &dyn Fn() -> Vec<u8>) {
    let time = |f: &dyn Fn() -> Vec<u8>| {
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(f());
        }
        start.elapsed() / BATCH
    };
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        base.push(time(baseline));
        ours.push(time(redacted));
    }
    ours.sort();
    base.sort();
    let p10 = |v: &[Duration]| v[v.len() / 10];
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "redacted: lowest {:?} p10 {:?}; plain: lowest {:?} p10 {:?}; ratio of lowest {:.3}, of p10 {:.3}",
        ours[0],
        p10(&ours),
        base[0],
        p10(&base),
        ratio(ours[0], base[0]),
        ratio(p10(&ours), p10(&base)),
    );
}
