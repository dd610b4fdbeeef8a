//! A Plaid API client that never leaks a token.
//!
//! (Crate docs are written as the crate fills in.)

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod jwk;
#[cfg(feature = "webhooks")]
pub mod webhooks;
