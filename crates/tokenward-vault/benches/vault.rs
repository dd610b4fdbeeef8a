//! Vault benchmarks (filled in below).
#![allow(missing_docs, reason = "bench code")]

fn main() {}
