#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]
//! Replays the fuzz seed corpora (`fuzz/corpus/<target>/`) through the fuzz hooks on stable,
//! then feeds deterministic mutations of the seeds (bit flips, byte overwrites, truncations,
//! extensions, header edits) through the same hooks. A hook panics on a broken invariant, so a
//! panic here is a finding: the failure message names the input and prints it in hex, ready to
//! be saved into the corpus as a regression seed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenward_envelope::fuzzing;
use tokenward_testkit::corpus::{Hook, Rng, run, seeds};

/// Mutated inputs per target; three targets make about 2000 in all.
const MUTATIONS_PER_TARGET: usize = 700;

/// Bytes that make parsers take unusual branches.
const INTERESTING: [u8; 8] = [0x00, 0x01, 0x02, 0x03, 0x3c, 0x7f, 0x80, 0xff];

/// One random structural mutation of `data`.
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
        // Extend with random bytes.
        3 => out.extend((0..=rng.below(64)).map(|_| rng.byte())),
        // Rewrite a header field of the binary form: version, algorithm, KEK version, length.
        4 if out.len() >= 8 => match rng.below(4) {
            0 => out[0] = INTERESTING[rng.below(INTERESTING.len())],
            1 => out[1] = INTERESTING[rng.below(INTERESTING.len())],
            2 => {
                let version = [0, 1, 2, u32::MAX][rng.below(4)];
                out[2..6].copy_from_slice(&version.to_be_bytes());
            }
            _ => {
                let len = [0, 1, 59, 60, 61, 1024, 1025, u16::MAX][rng.below(8)];
                out[6..8].copy_from_slice(&len.to_be_bytes());
            }
        },
        // Remove a slice from the middle.
        5 if out.len() >= 2 => {
            let start = rng.below(out.len());
            let end = start + rng.below(out.len() - start + 1);
            out.drain(start..end);
        }
        // Duplicate a slice (grows declared-length mismatches).
        _ if !out.is_empty() => {
            let start = rng.below(out.len());
            let end = start + rng.below(out.len() - start + 1);
            let copy = out[start..end].to_vec();
            let at = rng.below(out.len() + 1);
            out.splice(at..at, copy);
        }
        _ => out.push(rng.byte()),
    }
    out
}

fn replay(target: &str, hook: Hook) {
    for (name, data) in seeds(env!("CARGO_MANIFEST_DIR"), target) {
        run(target, hook, &name, &data);
    }
}

fn mutate_and_run(target: &str, hook: Hook, seed: u64, text_form: bool) {
    let seeds = seeds(env!("CARGO_MANIFEST_DIR"), target);
    // For the text target: the seeds whose text decodes, as binary envelopes.
    let binaries: Vec<(&str, Vec<u8>)> = seeds
        .iter()
        .filter_map(|(name, data)| {
            let body = data.strip_prefix(b"twe1:")?;
            Some((name.as_str(), URL_SAFE_NO_PAD.decode(body).ok()?))
        })
        .collect();
    assert!(
        !text_form || !binaries.is_empty(),
        "{target}: no seed decodes"
    );
    let mut rng = Rng::new(seed);
    for i in 0..MUTATIONS_PER_TARGET {
        // For the text target, half the inputs mutate a decoded envelope and re-encode it, so
        // they get past base64 and reach the envelope parser and the cipher.
        let (name, input) = if text_form && rng.below(2) == 0 {
            let (name, binary) = &binaries[rng.below(binaries.len())];
            let mut text = b"twe1:".to_vec();
            text.extend_from_slice(URL_SAFE_NO_PAD.encode(mutate(&mut rng, binary)).as_bytes());
            (*name, text)
        } else {
            let (name, data) = &seeds[rng.below(seeds.len())];
            (name.as_str(), mutate(&mut rng, data))
        };
        let input = if rng.below(4) == 0 {
            mutate(&mut rng, &input)
        } else {
            input
        };
        run(target, hook, &format!("mutation {i} of {name}"), &input);
    }
}

#[test]
fn envelope_bytes_corpus() {
    replay("envelope_bytes", fuzzing::parse_and_open_bytes);
}

#[test]
fn envelope_text_corpus() {
    replay("envelope_text", fuzzing::parse_and_open_text);
}

#[test]
fn round_trip_corpus() {
    replay("round_trip", fuzzing::round_trip);
}

#[test]
fn envelope_bytes_mutations() {
    mutate_and_run(
        "envelope_bytes",
        fuzzing::parse_and_open_bytes,
        0x7477_0001,
        false,
    );
}

#[test]
fn envelope_text_mutations() {
    mutate_and_run(
        "envelope_text",
        fuzzing::parse_and_open_text,
        0x7477_0002,
        true,
    );
}

#[test]
fn round_trip_mutations() {
    mutate_and_run("round_trip", fuzzing::round_trip, 0x7477_0003, false);
}
