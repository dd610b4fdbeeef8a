//! Seed corpora and deterministic mutations for the fuzz hooks.

use std::fmt::Write as _;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// A fuzz hook: takes arbitrary bytes, panics only on a broken invariant.
pub type Hook = fn(&[u8]);

/// The seed directory of `target`, given the calling crate's `CARGO_MANIFEST_DIR`
/// (`crates/<name>`).
#[must_use]
pub fn corpus_dir(manifest_dir: &str, target: &str) -> PathBuf {
    Path::new(manifest_dir)
        .join("../../fuzz/corpus")
        .join(target)
}

/// The seed files of one target, sorted by name.
///
/// # Panics
///
/// When the directory is missing or empty, so that a moved or deleted corpus cannot turn a
/// test into a silent pass.
#[must_use]
pub fn seeds(manifest_dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(manifest_dir, target);
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

/// Lowercase hex of `data`, for failure messages that can be pasted into a regression seed.
#[must_use]
pub fn hex(data: &[u8]) -> String {
    data.iter()
        .fold(String::with_capacity(data.len() * 2), |mut out, byte| {
            // Writing to a String cannot fail.
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Runs one input through a hook.
///
/// # Panics
///
/// When the hook panics, with the target, the input's label and the input in hex.
pub fn run(target: &str, hook: Hook, label: &str, data: &[u8]) {
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| hook(data)));
    assert!(
        outcome.is_ok(),
        "{target}: input {label} ({} bytes) panicked; hex: {}",
        data.len(),
        hex(data)
    );
}

/// `SplitMix64`: a small, fixed pseudo-random sequence, so every run tests the same inputs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A sequence starting from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n`; `n` must be non-zero.
    pub fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
        usize::try_from(self.next_u64() % n).unwrap_or(0)
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }
}
