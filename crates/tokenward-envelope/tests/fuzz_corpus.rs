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

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokenward_envelope::fuzzing;

/// Mutated inputs per target; three targets make about 2000 in all.
const MUTATIONS_PER_TARGET: usize = 700;

type Hook = fn(&[u8]);

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// The seed files of one target, sorted by name. Fails if the directory is missing or empty,
/// so a moved or deleted corpus cannot turn this test into a silent pass.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    assert!(
        dir.is_dir(),
        "seed corpus {} is missing (run fuzz/make-seeds.py)",
        dir.display()
    );
    let mut seeds: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .expect("read corpus directory")
        .map(|entry| entry.expect("read corpus entry"))
        .filter(|entry| entry.file_type().expect("file type").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        // Hidden files are libFuzzer's or an editor's, never seeds.
        .filter(|name| !name.starts_with('.'))
        .map(|name| {
            let data = fs::read(dir.join(&name)).expect("read seed");
            (name, data)
        })
        .collect();
    assert!(!seeds.is_empty(), "seed corpus {} is empty", dir.display());
    seeds.sort();
    seeds
}

fn hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    data.iter()
        .fold(String::with_capacity(data.len() * 2), |mut out, byte| {
            write!(out, "{byte:02x}").unwrap();
            out
        })
}

/// Runs one input through a hook; on a panic, fails with the input attached.
fn run(target: &str, hook: Hook, label: &str, data: &[u8]) {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| hook(data)));
    assert!(
        outcome.is_ok(),
        "{target}: input {label} ({} bytes) panicked; hex: {}",
        data.len(),
        hex(data)
    );
}

/// `SplitMix64`: a small, fixed pseudo-random sequence, so every run tests the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n`; `n` must be non-zero.
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

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
    for (name, data) in seeds(target) {
        run(target, hook, &name, &data);
    }
}

fn mutate_and_run(target: &str, hook: Hook, seed: u64, text_form: bool) {
    let seeds = seeds(target);
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
    let mut rng = Rng(seed);
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
