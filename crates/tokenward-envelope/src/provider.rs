//! Key providers: where KEKs live and how DEKs are wrapped.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};
use zeroize::Zeroizing;

use crate::keyring::LOCAL_WRAPPED_LEN;
use crate::{EnvelopeError, KeyVersion, Keyring};

/// A 256-bit data-encryption key, zeroized on drop and never printed.
///
/// Key providers receive one to wrap and return one from an unwrap; reading the bytes takes an
/// explicit [`ExposeSecret::expose_secret`].
pub struct DataKey(SecretBox<[u8; 32]>);

impl DataKey {
    /// Takes ownership of key bytes (for example the plaintext a KMS returned from a decrypt).
    #[must_use]
    pub fn from_bytes(bytes: &Zeroizing<[u8; 32]>) -> Self {
        DataKey(SecretBox::new(Box::new(**bytes)))
    }
}

impl ExposeSecret<[u8; 32]> for DataKey {
    fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

/// Holds key-encryption keys (KEKs) and wraps and unwraps data keys with them.
///
/// [`Keyring`] is the in-process provider. A remote KMS provider (AWS KMS, Google Cloud KMS,
/// Vault Transit) implements the same trait: `wrap_key` and `unwrap_key` are async so they can
/// call out, and [`AsyncCipher`](crate::AsyncCipher) puts a [data-key
/// cache](crate::DekCacheConfig) and a [DEK reuse policy](crate::DekPolicy) in front so that not
/// every envelope costs a KMS round-trip.
///
/// The trait is object-safe (`Arc<dyn KeyProvider>`). New methods will only ever be added with
/// default bodies.
///
/// # Contract
///
/// - `wrap_key` must authenticate `aad` and the version; `unwrap_key` must fail with
///   [`EnvelopeError::Authentication`] for any wrapped key or `aad` it did not produce.
/// - The wrapped key is stored in the envelope header: at most
///   [`MAX_WRAPPED_KEY_LEN`](crate::MAX_WRAPPED_KEY_LEN) bytes, never empty.
/// - Errors of the provider's own (network, permissions) go in [`EnvelopeError::Provider`] and
///   must not carry key material.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The version new envelopes are wrapped under.
    ///
    /// # Errors
    ///
    /// [`EnvelopeError::NoPrimaryKey`] when there is none.
    fn primary_version(&self) -> Result<KeyVersion, EnvelopeError>;

    /// Whether envelopes under `version` may be opened now.
    ///
    /// # Errors
    ///
    /// Unknown, disabled, or below-minimum versions.
    fn check_decrypt(&self, version: KeyVersion) -> Result<(), EnvelopeError>;

    /// Wraps `dek` under `version`, binding `aad`.
    async fn wrap_key(
        &self,
        version: KeyVersion,
        dek: &DataKey,
        aad: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError>;

    /// Unwraps a key that [`KeyProvider::wrap_key`] produced under `version` with `aad`.
    async fn unwrap_key(
        &self,
        version: KeyVersion,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<DataKey, EnvelopeError>;
}

#[async_trait::async_trait]
impl KeyProvider for Keyring {
    fn primary_version(&self) -> Result<KeyVersion, EnvelopeError> {
        Keyring::primary_version(self).ok_or(EnvelopeError::NoPrimaryKey)
    }

    fn check_decrypt(&self, version: KeyVersion) -> Result<(), EnvelopeError> {
        Keyring::check_decrypt(self, version)
    }

    async fn wrap_key(
        &self,
        version: KeyVersion,
        dek: &DataKey,
        aad: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        if aad != crate::format::wrap_aad(version) {
            // The keyring binds its own header AAD; anything else is a caller bug.
            return Err(EnvelopeError::Authentication);
        }
        let mut nonce = [0u8; 12];
        crate::rng::fill(&mut nonce).map_err(|_| EnvelopeError::Randomness)?;
        let mut out = [0u8; LOCAL_WRAPPED_LEN];
        self.wrap(Some(version), dek.expose_secret(), nonce, &mut out)?;
        Ok(out.to_vec())
    }

    async fn unwrap_key(
        &self,
        version: KeyVersion,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<DataKey, EnvelopeError> {
        self.unwrap(version, wrapped, aad)
            .map(|k| DataKey::from_bytes(&k))
    }
}
