//! Versioned AES-256-GCM envelope encryption for Plaid access tokens.
//!
//! `tokenward-envelope` seals a secret (an `access-production-…` token, say) so that it can be
//! stored in a database column or a cookie, and opens it again only with the right key *and*
//! the right context.
//!
//! - **Envelope encryption.** Every envelope has its own 256-bit data key (DEK); the DEK is
//!   wrapped by a versioned key-encryption key (KEK) held by a [`KeyProvider`]: the in-process
//!   [`Keyring`], or a remote KMS through [`AsyncCipher`].
//! - **Versioned keys.** KEK versions are [staged, primary, decrypt-only or
//!   disabled](KeyState), promoted in two phases, with a minimum decryption version. The KEK
//!   version is in clear in every envelope ([`Envelope::kek_version`], [`peek_kek_version`]) so
//!   stores can index it; [`Cipher::needs_rewrap`] and [`Cipher::rewrap`] move envelopes to the
//!   new primary without touching the data ciphertext.
//! - **Context binding.** Every seal and open takes a [`Context`] (`item_id`, `user_id`,
//!   purpose…), canonically encoded and bound as associated data: an envelope copied to another
//!   row does not open.
//! - **One vague failure.** A wrong key, a wrong context and tampered bytes all give
//!   [`EnvelopeError::Authentication`]; malformed input, unknown or disabled versions and
//!   context misuse get precise errors. No input panics.
//! - **Secret hygiene.** Plaintexts come back as `secrecy` types; key material is zeroized,
//!   never printed and has no getter. Keyring files are written `0600` and refused when others
//!   can read them.
//!
//! The byte layout is documented in [`format`](crate#format) below and in the source of
//! `format.rs`.
//!
//! # Quick start
//!
//! ```
//! use std::sync::Arc;
//! use secrecy::ExposeSecret;
//! use tokenward_envelope::{Cipher, Context, Envelope, EnvelopeError, Keyring};
//!
//! let keyring = Arc::new(Keyring::generate()?);
//! let cipher = Cipher::new(Arc::clone(&keyring));
//! let ctx = Context::new().with("item_id", "item-1")?.with("user_id", "user-1")?;
//!
//! // Seal for a column.
//! let column = cipher.seal(b"access-sandbox-0b6a6a1a-2d5c-4a7e-9a40-1f1d0f6c9e2b", &ctx)?.to_text();
//! assert!(column.starts_with("twe1:"));
//!
//! // Open with the same context.
//! let envelope = Envelope::from_text(&column)?;
//! assert_eq!(cipher.open(&envelope, &ctx)?.expose_secret().len(), 51);
//!
//! // Another row's context does not open it.
//! let other = Context::new().with("item_id", "item-2")?.with("user_id", "user-1")?;
//! assert!(matches!(cipher.open(&envelope, &other), Err(EnvelopeError::Authentication)));
//!
//! // Rotate the KEK in two phases, then rewrap: the data ciphertext is untouched.
//! let v2 = keyring.add_staged()?;
//! keyring.promote(v2)?;
//! assert!(cipher.needs_rewrap(&envelope));
//! let rewrapped = cipher.rewrap(&envelope)?;
//! assert_eq!(rewrapped.kek_version(), v2);
//! assert_eq!(cipher.open(&rewrapped, &ctx)?.expose_secret().len(), 51);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Format
//!
//! Version 1, big-endian integers:
//!
//! ```text
//! format (1) = 0x01 ‖ algorithm (1) = 0x01 ‖ KEK version (4) ‖ wrapped-DEK length L (2)
//!   ‖ wrapped DEK (L; keyring: wrap nonce 12 ‖ encrypted DEK 32 ‖ wrap tag 16)
//!   ‖ data nonce (12) ‖ ciphertext (n) ‖ tag (16)
//! text form: "twe1:" ‖ base64url-without-padding(binary)
//! ```
//!
//! Algorithm ids: `0x00` invalid, `0x01` AES-256-GCM, `0x02` reserved for a derived-key,
//! key-committing suite, `0x03` reserved for AES-256-GCM-SIV, the rest reserved. The data seal
//! authenticates `format ‖ algorithm ‖ canonical context` ([`Context`]); the wrap seal authenticates
//! `"tokenward.dek.v1" ‖ format ‖ algorithm ‖ KEK version`. A 51-byte token seals to 147 bytes
//! (201 characters of text).
//!
//! # Randomness
//!
//! DEKs and nonces come from a per-thread AES-256-CTR fast-key-erasure generator seeded from
//! the OS CSPRNG, reseeded every MiB and in every child after a `fork` (a `pthread_atfork`
//! handler bumps a generation that every draw checks), so threads and forked processes never
//! share random bytes. That handler is the crate's only `unsafe` code.
//!
//! # Limits
//!
//! At most [`MAX_PLAINTEXT_LEN`] bytes of plaintext; a KEK version wraps at most
//! [`KEK_WRAP_LIMIT`] DEKs per process, and a reused DEK seals at most 2^32 envelopes
//! (NIST SP 800-38D §8.3).
//!
//! # Features
//!
//! None yet: the crate is small by default and has no optional parts.

// One exception, in `rng`: registering a `pthread_atfork` handler so that forked children
// reseed their random number generator (see the module docs). Nothing else may use `unsafe`.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod cache;
mod cipher;
mod context;
mod error;
mod format;
mod keyring;
mod provider;
mod rng;
mod version;

#[doc(hidden)]
pub mod fuzzing;

pub use cache::{DekCacheConfig, DekPolicy};
pub use cipher::{AsyncCipher, Cipher};
pub use context::{Context, MAX_CONTEXT_ENTRIES, MAX_CONTEXT_KEY_LEN, MAX_CONTEXT_VALUE_LEN};
pub use error::{ContextError, EnvelopeError, FormatError, KeyringError};
pub use format::{
    ALG_AES256GCM, Envelope, FORMAT_V1, MAX_ENVELOPE_LEN, MAX_PLAINTEXT_LEN, MAX_WRAPPED_KEY_LEN,
    TEXT_PREFIX, peek_kek_version,
};
pub use keyring::{KEK_WRAP_LIMIT, KEYRING_ENV, KEYRING_FILE_ENV, KeyInfo, KeyState, Keyring};
pub use provider::{DataKey, KeyProvider};
pub use version::KeyVersion;
