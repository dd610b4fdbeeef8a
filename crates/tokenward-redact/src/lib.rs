//! Keep Plaid credentials out of logs, errors, dumps and serialized output.
//!
//! Three layers, because each misses what the others catch:
//!
//! 1. **Types.** Credentials are newtypes whose `Debug` and `Display` print a tagged
//!    placeholder and whose only read is `expose_secret()`.
//! 2. **Field names.** A [`Policy`] redacts values by the name of the field that holds them,
//!    matched exactly after normalisation, with an allow-list mode that fails closed.
//! 3. **Values.** The same policy finds secrets by their shape in free text: Plaid tokens,
//!    `Bearer` credentials, JWTs, `PLAID-SECRET` values, routing numbers and custom patterns.
//!
//! Placeholders such as `[REDACTED:plaid.access_token]` say which rule fired, have a width
//! that depends only on the tag, and never match a rule, so scrubbing twice equals scrubbing
//! once. Optional keyed [fingerprints](Fingerprinter) let logs correlate one token without
//! revealing it. There is no switch that turns redaction off.
//!
//! ```
//! use tokenward_redact::Policy;
//!
//! let policy = Policy::plaid();
//! let line = "exchange ok token=access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";
//! assert_eq!(policy.scrub_text(line), "exchange ok token=[REDACTED:plaid.access_token]");
//! ```
//!
//! # Features
//!
//! - `tracing`: a redacting `tracing-subscriber` event formatter and `MakeWriter` wrapper.
//! - `log`: a redacting `log::Log` wrapper.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod fingerprint;
mod json;
mod policy;
mod secret;
mod serialize;
mod tag;
mod text;

#[doc(hidden)]
pub mod fuzzing;
#[cfg(any(feature = "tracing", feature = "log"))]
pub mod integrations;
pub mod report;

pub use fingerprint::{FingerprintKeyError, Fingerprinter, MIN_FINGERPRINT_KEY_LEN};
pub use json::{JsonError, MAX_JSON_DEPTH, scrub_json, scrub_json_to_vec, scrub_json_to_writer};
pub use policy::{
    FieldAction, MAX_CUSTOM_PATTERN_SIZE, PLAID_FIELDS, Policy, PolicyBuilder, PolicyError,
    SAFE_FIELDS, normalize_field_name,
};
pub use secret::{
    AccessToken, AccountNumber, ClientId, ClientSecret, LinkToken, ProcessorToken, PublicToken,
    RoutingNumber, SecretError, constant_time_eq, wire,
};
pub use serialize::{Redacted, to_json_vec};
pub use tag::{PLACEHOLDER_PREFIX, Tag, TagError, is_placeholder};
pub use text::{MIN_SCRUB_LEN, aba_checksum_ok};
