//! The text scrubber on clean and token-dense log text, beside a plain scan baseline.
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
use tokenward_redact::Policy;

fn text(c: &mut Criterion) {
    let policy = Policy::plaid();
    let clean = plaid_fixture::log_text(4 << 20, None);
    let dense = plaid_fixture::log_text(4 << 20, Some(10));
    assert!(matches!(
        policy.scrub_text(&clean),
        std::borrow::Cow::Borrowed(_)
    ));
    assert!(!policy.scrub_text(&dense).contains("access-production-"));

    let mut g = c.benchmark_group("text_scrub_4MiB");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.bench_function("tokenward_clean", |b| {
        b.iter(|| policy.scrub_text(black_box(&clean)).len());
    });
    g.bench_function("tokenward_dense_1_in_10_lines", |b| {
        b.iter(|| policy.scrub_text(black_box(&dense)).len());
    });
    // Baseline: the cheapest possible full read of the text (a newline count).
    g.bench_function("baseline_memchr_count_lines", |b| {
        b.iter(|| memchr::memchr_iter(b'\n', black_box(clean.as_bytes())).count());
    });
    g.finish();

    // Per log line, as the tracing integration sees it.
    let lines: Vec<&str> = clean.lines().take(1000).collect();
    let mut g = c.benchmark_group("text_scrub_per_line");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("tokenward_clean_lines", |b| {
        b.iter(|| {
            lines
                .iter()
                .map(|l| policy.scrub_text(black_box(l)).len())
                .sum::<usize>()
        });
    });
    g.finish();
}

criterion_group!(benches, text);
criterion_main!(benches);
