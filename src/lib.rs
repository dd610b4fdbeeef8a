//! tokenward: hold Plaid credentials safely.
//!
//! This facade re-exports the tokenward crates behind features, so one dependency brings what
//! a service needs:
//!
//! | feature    | module                 | crate                |
//! |------------|------------------------|----------------------|
//! | `envelope` | [`envelope`] (default) | `tokenward-envelope` |
//! | `redact`   | [`redact`] (default)   | `tokenward-redact`   |
//! | `plaid`    | `plaid`                | `tokenward-plaid` (`http`, `webhooks` add the client and the verifier) |
//! | `sandbox`  | `sandbox`              | `tokenward-sandbox`  |
//! | `vault`    | `vault`                | `tokenward-vault` (SQLite; `postgres`, `redis` add the Postgres store and the Redis cache) |
//! | `rotation` | `rotation`             | `tokenward-rotation` |
//!
//! ```
//! use std::sync::Arc;
//! use tokenward::envelope::{Cipher, Context, Keyring};
//!
//! let cipher = Cipher::new(Arc::new(Keyring::generate()?));
//! let ctx = Context::new().with("item_id", "item-1")?;
//! let column = cipher.seal(b"access-sandbox-token", &ctx)?.to_text();
//! assert!(column.starts_with("twe1:"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

/// Versioned AES-256-GCM envelope encryption (`tokenward-envelope`).
#[cfg(feature = "envelope")]
pub use tokenward_envelope as envelope;

/// Secret types, redaction policies and scrubbers (`tokenward-redact`).
#[cfg(feature = "redact")]
pub use tokenward_redact as redact;

/// The Plaid API trait, models, errors, HTTP client and webhook verification
/// (`tokenward-plaid`).
#[cfg(feature = "plaid")]
pub use tokenward_plaid as plaid;

/// A stateful, Plaid-compatible emulator for tests and demos (`tokenward-sandbox`).
#[cfg(feature = "sandbox")]
pub use tokenward_sandbox as sandbox;

/// The encrypted token vault: an `SQLite` or Postgres store, a Redis ciphertext cache and the
/// audit journal (`tokenward-vault`).
#[cfg(feature = "vault")]
pub use tokenward_vault as vault;

/// Rotation state machines and the drivers that run them (`tokenward-rotation`).
#[cfg(feature = "rotation")]
pub use tokenward_rotation as rotation;
