//! A Plaid API client that never leaks a token.
//!
//! (Crate docs are written as the crate fills in.)

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod api;
mod error;
#[cfg(feature = "http")]
mod http;
pub mod jwk;
pub mod models;
#[cfg(feature = "webhooks")]
pub mod webhooks;

pub use api::{Endpoint, PlaidApi, PlaidRequest};
pub use error::{
    DecodeReason, Error, ErrorCode, ErrorType, MAX_ERROR_TEXT_LEN, Outcome, PlaidError,
    PlaidErrorCause, TransportKind,
};
#[cfg(feature = "http")]
pub use http::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Environment, HttpPlaidClient, HttpPlaidClientBuilder,
    MAX_RESPONSE_LEN, PLAID_VERSION, PRODUCTION_URL, RetryPolicy, SANDBOX_URL,
};
