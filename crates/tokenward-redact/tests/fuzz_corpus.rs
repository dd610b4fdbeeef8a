#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]
//! Replays the scrubbers' fuzz seed corpora (`fuzz/corpus/redact_json/`,
//! `fuzz/corpus/redact_text/`) through the fuzz hooks on stable, then feeds deterministic
//! mutations of the seeds (bit flips, byte overwrites, truncations, JSON-shaped splices and
//! token insertions) through the same hooks. A hook panics on a broken invariant, so a panic
//! here is a finding: the failure message names the input and prints it in hex, ready to be
//! saved into the corpus as a regression seed.

use tokenward_redact::fuzzing;
use tokenward_testkit::corpus::{Hook, Rng, run, seeds};

/// Mutated inputs per target.
const MUTATIONS_PER_TARGET: usize = 1500;

/// Bytes that make parsers take unusual branches.
const INTERESTING: [u8; 12] = [
    0x00, 0x1f, b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', 0x80, 0xff,
];

/// Fragments that matter to a JSON scrubber: structure, escapes, surrogates, secrets.
const FRAGMENTS: [&[u8]; 16] = [
    b"\"access_token\":",
    b"{\"secret\":[",
    b"]}",
    b"\\u002d",
    b"\\ud83d\\ude00",
    b"\\ud800",
    b"\\\"",
    b"access-sandbox-8ab976e6-64bc-4b38-98f7-731e7a349970",
    b"\\u0061ccess\\u002dproduction\\u002d0b6a6a1a",
    b" 021000021 ",
    b"[REDACTED:plaid.access_token]",
    b"Bearer abcDEF123456",
    b"1e400",
    b"-0.0e+0",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
];

/// One random mutation of `data`.
fn mutate(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    match rng.below(7) {
        // Flip one to four bits.
        0 if !out.is_empty() => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(out.len());
                out[at] ^= 1 << rng.below(8);
            }
        }
        // Overwrite a byte with an interesting value.
        1 if !out.is_empty() => {
            let at = rng.below(out.len());
            out[at] = INTERESTING[rng.below(INTERESTING.len())];
        }
        // Truncate.
        2 => out.truncate(rng.below(out.len() + 1)),
        // Insert a fragment.
        3 => {
            let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
            let at = rng.below(out.len() + 1);
            out.splice(at..at, fragment.iter().copied());
        }
        // Remove a slice from the middle.
        4 if out.len() >= 2 => {
            let start = rng.below(out.len());
            let end = start + rng.below((out.len() - start + 1).min(16));
            out.drain(start..end);
        }
        // Duplicate a slice elsewhere (nests and repeats structure).
        5 if !out.is_empty() => {
            let start = rng.below(out.len());
            let end = start + rng.below(out.len() - start + 1);
            let copy = out[start..end].to_vec();
            let at = rng.below(out.len() + 1);
            out.splice(at..at, copy);
        }
        // Extend with random bytes.
        _ => out.extend((0..=rng.below(16)).map(|_| rng.byte())),
    }
    out
}

fn replay(target: &str, hook: Hook) {
    for (name, data) in seeds(env!("CARGO_MANIFEST_DIR"), target) {
        run(target, hook, &name, &data);
    }
}

fn mutate_and_run(target: &str, hook: Hook, seed: u64) {
    let seeds = seeds(env!("CARGO_MANIFEST_DIR"), target);
    let mut rng = Rng::new(seed);
    for i in 0..MUTATIONS_PER_TARGET {
        let (name, data) = &seeds[rng.below(seeds.len())];
        let mut input = mutate(&mut rng, data);
        for _ in 0..rng.below(3) {
            input = mutate(&mut rng, &input);
        }
        run(target, hook, &format!("mutation {i} of {name}"), &input);
    }
}

#[test]
fn redact_json_corpus() {
    replay("redact_json", fuzzing::json_scrub);
}

#[test]
fn redact_text_corpus() {
    replay("redact_text", fuzzing::text_scrub);
}

#[test]
fn redact_json_mutations() {
    mutate_and_run("redact_json", fuzzing::json_scrub, 0x7477_0101);
}

#[test]
fn redact_text_mutations() {
    mutate_and_run("redact_text", fuzzing::text_scrub, 0x7477_0102);
}
