//! A stateful, Plaid-compatible emulator for tests and demos.
//!
//! (Crate docs are written below.)

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod config;
mod cursor;
mod data;
mod emulator;
mod error;
mod faults;
mod fields;
mod ids;
mod server;
mod store;
mod webhook;

pub use config::{Clock, Limits, ManualClock, SystemClock};
pub use error::SandboxError;
pub use faults::{ENDPOINTS, FaultPlan, Faults, UnknownEndpoint};
pub use server::{ADMIN_PREFIX, Emulator, Sandbox, SandboxBuilder};
pub use webhook::WebhookDelivery;

/// Equality that visits every byte (XOR-fold, no early exit); lengths are not hidden.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0_u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    diff == 0
}
