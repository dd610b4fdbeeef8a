//! A Plaid API client that never leaks a token.
//!
//! (Crate docs are written as the crate fills in.)

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod api;
mod error;
pub mod jwk;
pub mod models;
#[cfg(feature = "webhooks")]
pub mod webhooks;

pub use api::{Endpoint, PlaidApi, PlaidRequest};
pub use error::{
    DecodeReason, Error, ErrorCode, ErrorType, MAX_ERROR_TEXT_LEN, Outcome, PlaidError,
    PlaidErrorCause, TransportKind,
};
