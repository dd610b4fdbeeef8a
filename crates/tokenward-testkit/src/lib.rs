//! Test support shared by the tokenward crates' integration tests. Not published.
//!
//! [`canary`]: made-up secrets that leak tests plant and then look for.
//!
//! [`corpus`]: replay a fuzz target's seed corpus (`fuzz/corpus/<target>/`) and deterministic
//! mutations of it through a fuzz hook on stable Rust, failing with the input in hex when the
//! hook panics.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test support: a broken fixture should fail the test loudly"
)]

pub mod canary;
pub mod corpus;
