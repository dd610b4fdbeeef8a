//! Test support shared by the tokenward crates' integration tests. Not published.
//!
//! [`canary`]: made-up secrets that leak tests plant and then look for.
//!
//! [`leaks`]: a collector of every text a test saw come out of the code under test (messages,
//! `Debug`, error chains), and the check that none holds a planted secret or a token.
//!
//! `webhook` (feature `webhook`): a local webhook listener on loopback that hands each
//! delivery (the `Plaid-Verification` header and the raw body) to the test.
//!
//! `plaid` (feature `plaid`): Plaid clients for tests, pointed at a local emulator with the
//! test's credentials, a 10-second timeout and short retries.
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
pub mod leaks;
#[cfg(feature = "plaid")]
pub mod plaid;
#[cfg(feature = "webhook")]
pub mod webhook;
