//! A driver for the redacting serializer outside criterion: instruction counts under
//! `valgrind --tool=callgrind` (criterion's timing loop would swamp them), and an interleaved
//! timing that holds up on a busy machine.
//!
//! ```text
//! cargo bench -p tokenward-redact --bench serialize_count --no-run
//! valgrind --tool=callgrind <the bench binary> redacted 20
//! valgrind --tool=callgrind <the bench binary> plain 20
//! <the bench binary> interleaved 1000
//! <the bench binary> strings 1000
//! ```
//!
//! Every mode builds the same 100-transaction response and policy as the `structured` bench.
//! `redacted` and `plain` serialize it `n` times (default 20), through `Redacted` or with plain
//! `serde_json::to_vec`; the difference of two runs with different `n`, divided by the
//! difference of `n`, is the cost of one serialization without the setup. `interleaved` runs
//! `n` rounds (default 1000) of 5 plain then 5 redacted serializations and prints, for each, the
//! lowest, tenth-percentile and median time of one serialization, and their ratios: on a busy
//! machine the low end of each distribution is what the code costs, the rest is waiting.
//! `strings` times the value rules alone (`Policy::scrub_text`) over the response's strings:
//! all of them, those of 9 bytes or more, and the same packed into one buffer.
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
        "strings" => strings(if n == 0 { 1000 } else { n }, &policy, &plain),
        _ => {
            println!("usage: serialize_count redacted|plain|interleaved|strings [n]");
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
    let p50 = |v: &[Duration]| v[v.len() / 2];
    println!(
        "redacted: lowest {:?} p10 {:?} median {:?}; plain: lowest {:?} p10 {:?} median {:?}; ratio of lowest {:.3}, of p10 {:.3}, of medians {:.3}",
        ours[0],
        p10(&ours),
        p50(&ours),
        base[0],
        p10(&base),
        p50(&base),
        ratio(ours[0], base[0]),
        ratio(p10(&ours), p10(&base)),
        ratio(p50(&ours), p50(&base)),
    );
}

/// Prints the `strings` figures: the lowest time of one pass of `Policy::scrub_text` over every
/// string of the response (the value rules alone, without the serializer around them).
fn strings(rounds: usize, policy: &Policy, json: &[u8]) {
    fn collect(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    collect(&serde_json::from_slice(json).unwrap(), &mut all);
    let lowest = |strings: &[&str]| {
        (0..rounds)
            .map(|_| {
                let start = Instant::now();
                for s in strings {
                    black_box(policy.scrub_text(black_box(s)));
                }
                start.elapsed()
            })
            .min()
            .unwrap_or_default()
    };
    let every: Vec<&str> = all.iter().map(String::as_str).collect();
    println!(
        "{} strings: lowest {:?} a pass",
        every.len(),
        lowest(&every)
    );
    let long: Vec<&str> = every.iter().copied().filter(|s| s.len() >= 9).collect();
    let bytes: usize = long.iter().map(|s| s.len()).sum();
    println!(
        "{} strings of 9 bytes or more ({bytes} bytes): lowest {:?} a pass",
        long.len(),
        lowest(&long)
    );
    let packed: String = long.concat();
    let mut cuts = Vec::new();
    let mut at = 0;
    for s in &long {
        cuts.push(&packed[at..at + s.len()]);
        at += s.len();
    }
    println!(
        "the same, packed in one buffer: lowest {:?} a pass",
        lowest(&cuts)
    );
}
