//! Sealing, opening and rewrapping envelopes.

use std::sync::Arc;
use std::time::Instant;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use zeroize::{Zeroize as _, Zeroizing};

use crate::cache::{ActiveDek, ActiveSlot, DekCache};
use crate::format::{self, NONCE_LEN};
use crate::keyring::LOCAL_WRAPPED_LEN;
use crate::{
    Context, DataKey, DekCacheConfig, DekPolicy, Envelope, EnvelopeError, KeyProvider, KeyVersion,
    Keyring, MAX_PLAINTEXT_LEN,
};

const DEK_LEN: usize = 32;
/// Random bytes one fresh-DEK seal draws: DEK ‖ wrap nonce ‖ data nonce.
const SEAL_RANDOM_LEN: usize = DEK_LEN + NONCE_LEN + NONCE_LEN;

/// Seals, opens and rewraps envelopes with an in-process [`Keyring`], synchronously.
///
/// Cheap to share: wrap it in an `Arc` and use it from any number of threads. The keyring can
/// be rotated while the cipher is in use.
///
/// ```
/// use std::sync::Arc;
/// use secrecy::ExposeSecret;
/// use tokenward_envelope::{Cipher, Context, Envelope, Keyring};
///
/// let cipher = Cipher::new(Arc::new(Keyring::generate()?));
/// let ctx = Context::new().with("item_id", "item-1")?.with("user_id", "user-1")?;
///
/// let column = cipher.seal(b"access-sandbox-0b6a6a1a-2d5c-4a7e-9a40-1f1d0f6c9e2b", &ctx)?.to_text();
/// let token = cipher.open(&Envelope::from_text(&column)?, &ctx)?;
/// assert!(token.expose_secret().starts_with(b"access-sandbox-"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cipher {
    keyring: Arc<Keyring>,
    cache: Option<DekCache>,
    policy: DekPolicy,
    active: ActiveSlot,
}

impl Cipher {
    /// A cipher over `keyring` with a fresh DEK per envelope and no data-key cache.
    #[must_use]
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Cipher {
            keyring,
            cache: None,
            policy: DekPolicy::Fresh,
            active: ActiveSlot::new(),
        }
    }

    /// Adds a cache of unwrapped data keys, so that opening an envelope again is cheaper.
    #[must_use]
    pub fn with_dek_cache(mut self, config: DekCacheConfig) -> Self {
        self.cache = Some(DekCache::new(config));
        self
    }

    /// Sets how seals pick a data key.
    #[must_use]
    pub fn with_dek_policy(mut self, policy: DekPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The keyring, for rotation.
    #[must_use]
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// Seals `plaintext` bound to `context` under the primary key.
    ///
    /// # Errors
    ///
    /// An empty context, a plaintext over [`MAX_PLAINTEXT_LEN`], no primary key, a key at its
    /// usage limit, or a failing OS random number generator.
    pub fn seal(&self, plaintext: &[u8], context: &Context) -> Result<Envelope, EnvelopeError> {
        let aad = context.data_aad()?;
        check_plaintext(plaintext)?;
        if let Some(active) = self
            .reusable_primary()
            .and_then(|primary| self.active.take_use(self.policy, primary, Instant::now()))
        {
            let mut nonce = [0u8; NONCE_LEN];
            crate::rng::fill(&mut nonce).map_err(|_| EnvelopeError::Randomness)?;
            return seal_data(
                &active.key,
                active.version,
                &active.wrapped,
                nonce,
                plaintext,
                aad,
            );
        }
        let mut random = Zeroizing::new([0u8; SEAL_RANDOM_LEN]);
        crate::rng::fill(&mut random[..]).map_err(|_| EnvelopeError::Randomness)?;
        self.seal_fresh(&random, plaintext, aad)
    }

    /// Opens `envelope` if it was sealed with `context` under a key this keyring may open with.
    ///
    /// # Errors
    ///
    /// [`EnvelopeError::Authentication`] for a wrong key, context or tampered bytes; precise
    /// errors for an empty context and an unknown, disabled or below-minimum key version.
    pub fn open(
        &self,
        envelope: &Envelope,
        context: &Context,
    ) -> Result<SecretSlice<u8>, EnvelopeError> {
        let aad = context.data_aad()?;
        if let Some(key) = self.cached_data_key(envelope)? {
            return open_data(&key, envelope, aad);
        }
        let version = envelope.kek_version();
        let dek =
            self.keyring
                .unwrap(version, envelope.wrapped_key(), &format::wrap_aad(version))?;
        open_data(&expand(&dek)?, envelope, aad)
    }

    /// As [`Cipher::open`], for UTF-8 plaintexts such as access tokens.
    ///
    /// # Errors
    ///
    /// As [`Cipher::open`], and [`EnvelopeError::NotUtf8`].
    pub fn open_str(
        &self,
        envelope: &Envelope,
        context: &Context,
    ) -> Result<SecretString, EnvelopeError> {
        into_secret_string(&self.open(envelope, context)?)
    }

    /// Whether `envelope` is wrapped under a version other than the current primary.
    #[must_use]
    pub fn needs_rewrap(&self, envelope: &Envelope) -> bool {
        self.keyring
            .primary_version()
            .is_some_and(|p| p != envelope.kek_version())
    }

    /// Rewraps `envelope`'s DEK under the primary key. The data nonce, ciphertext and tag are
    /// copied unchanged; only the header and the wrapped DEK change, so no context is needed.
    /// An envelope already under the primary is returned as it is (a retried rewrap is a
    /// no-op).
    ///
    /// # Errors
    ///
    /// No primary key; an unknown, disabled or below-minimum version; a wrapped DEK that does
    /// not authenticate.
    pub fn rewrap(&self, envelope: &Envelope) -> Result<Envelope, EnvelopeError> {
        let primary = self
            .keyring
            .primary_version()
            .ok_or(EnvelopeError::NoPrimaryKey)?;
        if envelope.kek_version() == primary {
            return Ok(envelope.clone());
        }
        let mut nonce = [0u8; NONCE_LEN];
        crate::rng::fill(&mut nonce).map_err(|_| EnvelopeError::Randomness)?;
        self.rewrap_with_nonce(envelope, nonce)
    }

    /// Seals many plaintexts, each with its own context and DEK, drawing randomness once.
    ///
    /// # Errors
    ///
    /// The first error of any item; nothing is returned unless all are sealed.
    pub fn seal_batch(&self, items: &[(&[u8], &Context)]) -> Result<Vec<Envelope>, EnvelopeError> {
        let mut random = Zeroizing::new(vec![0u8; SEAL_RANDOM_LEN * items.len()]);
        crate::rng::fill(&mut random).map_err(|_| EnvelopeError::Randomness)?;
        items
            .iter()
            .zip(random.chunks_exact(SEAL_RANDOM_LEN))
            .map(|((plaintext, context), r)| {
                check_plaintext(plaintext)?;
                let aad = context.data_aad()?;
                let r: &[u8; SEAL_RANDOM_LEN] =
                    r.try_into().map_err(|_| EnvelopeError::Randomness)?;
                self.seal_fresh(r, plaintext, aad)
            })
            .collect()
    }

    /// Opens many envelopes; each gets its own result, so one bad row does not hide the rest.
    #[must_use]
    pub fn open_batch(
        &self,
        items: &[(&Envelope, &Context)],
    ) -> Vec<Result<SecretSlice<u8>, EnvelopeError>> {
        items.iter().map(|(e, c)| self.open(e, c)).collect()
    }

    /// Rewraps many envelopes, drawing randomness once; each gets its own result.
    #[must_use]
    pub fn rewrap_batch(&self, envelopes: &[Envelope]) -> Vec<Result<Envelope, EnvelopeError>> {
        let Some(primary) = self.keyring.primary_version() else {
            return envelopes
                .iter()
                .map(|_| Err(EnvelopeError::NoPrimaryKey))
                .collect();
        };
        let mut nonces = vec![0u8; NONCE_LEN * envelopes.len()];
        if crate::rng::fill(&mut nonces).is_err() {
            return envelopes
                .iter()
                .map(|_| Err(EnvelopeError::Randomness))
                .collect();
        }
        envelopes
            .iter()
            .zip(nonces.chunks_exact(NONCE_LEN))
            .map(|(e, n)| {
                if e.kek_version() == primary {
                    return Ok(e.clone());
                }
                let n: [u8; NONCE_LEN] = n.try_into().map_err(|_| EnvelopeError::Randomness)?;
                self.rewrap_with_nonce(e, n)
            })
            .collect()
    }

    fn reusable_primary(&self) -> Option<KeyVersion> {
        match self.policy {
            DekPolicy::Fresh => None,
            DekPolicy::Reuse { .. } => self.keyring.primary_version(),
        }
    }

    fn seal_fresh(
        &self,
        random: &[u8; SEAL_RANDOM_LEN],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Envelope, EnvelopeError> {
        let (dek, nonces) = random
            .split_first_chunk::<DEK_LEN>()
            .ok_or(EnvelopeError::Randomness)?;
        let (wrap_nonce, data_nonce) = nonces
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(EnvelopeError::Randomness)?;
        let data_nonce: [u8; NONCE_LEN] = data_nonce
            .try_into()
            .map_err(|_| EnvelopeError::Randomness)?;
        let mut wrapped = [0u8; LOCAL_WRAPPED_LEN];
        let version = self.keyring.wrap(None, dek, *wrap_nonce, &mut wrapped)?;
        let key = expand(dek)?;
        if matches!(self.policy, DekPolicy::Reuse { .. }) {
            let key = Arc::new(key);
            self.active.install(ActiveDek {
                version,
                wrapped: Arc::from(&wrapped[..]),
                key: Arc::clone(&key),
                born: Instant::now(),
                uses: 1,
            });
            return seal_data(&key, version, &wrapped, data_nonce, plaintext, aad);
        }
        seal_data(&key, version, &wrapped, data_nonce, plaintext, aad)
    }

    /// The envelope's data key through the cache, or `None` when there is no cache (the caller
    /// then expands the key on the stack: no allocation for a key used once).
    fn cached_data_key(
        &self,
        envelope: &Envelope,
    ) -> Result<Option<Arc<LessSafeKey>>, EnvelopeError> {
        let Some(cache) = &self.cache else {
            return Ok(None);
        };
        let version = envelope.kek_version();
        let wrapped = envelope.wrapped_key();
        let aad = format::wrap_aad(version);
        self.keyring.check_decrypt(version)?;
        let now = Instant::now();
        if let Some(key) = cache.get(version, wrapped, now) {
            return Ok(Some(key));
        }
        let dek = self.keyring.unwrap(version, wrapped, &aad)?;
        let key = Arc::new(expand(&dek)?);
        cache.insert(version, wrapped, Arc::clone(&key), now);
        Ok(Some(key))
    }

    fn rewrap_with_nonce(
        &self,
        envelope: &Envelope,
        nonce: [u8; NONCE_LEN],
    ) -> Result<Envelope, EnvelopeError> {
        let version = envelope.kek_version();
        let dek =
            self.keyring
                .unwrap(version, envelope.wrapped_key(), &format::wrap_aad(version))?;
        let mut wrapped = [0u8; LOCAL_WRAPPED_LEN];
        let new_version = self.keyring.wrap(None, &dek, nonce, &mut wrapped)?;
        let (data_nonce, sealed) = envelope.data_parts();
        let data_nonce: &[u8; NONCE_LEN] = data_nonce
            .try_into()
            .map_err(|_| EnvelopeError::Authentication)?;
        Ok(Envelope::assemble(
            new_version,
            &wrapped,
            data_nonce,
            sealed,
        )?)
    }
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("keyring", &self.keyring)
            .field("policy", &self.policy)
            .field("dek_cache", &self.cache.as_ref().map(DekCache::len))
            .finish_non_exhaustive()
    }
}

/// Seals, opens and rewraps envelopes with any [`KeyProvider`], for example a remote KMS.
///
/// Unwrapped DEKs are cached ([`DekCacheConfig`], on by default here because every unwrap may
/// be a network call), and [`DekPolicy::Reuse`] saves a wrap call per seal.
pub struct AsyncCipher {
    provider: Arc<dyn KeyProvider>,
    cache: DekCache,
    policy: DekPolicy,
    active: ActiveSlot,
}

impl AsyncCipher {
    /// A cipher over `provider` with a fresh DEK per envelope and the default data-key cache.
    #[must_use]
    pub fn new(provider: Arc<dyn KeyProvider>) -> Self {
        AsyncCipher {
            provider,
            cache: DekCache::new(DekCacheConfig::default()),
            policy: DekPolicy::Fresh,
            active: ActiveSlot::new(),
        }
    }

    /// Sets the data-key cache limits (`max_entries: 0` turns the cache off).
    #[must_use]
    pub fn with_dek_cache(mut self, config: DekCacheConfig) -> Self {
        self.cache = DekCache::new(config);
        self
    }

    /// Sets how seals pick a data key.
    #[must_use]
    pub fn with_dek_policy(mut self, policy: DekPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Drops every cached data key (for example after a key compromise).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// As [`Cipher::seal`].
    ///
    /// # Errors
    ///
    /// As [`Cipher::seal`], and [`EnvelopeError::Provider`].
    pub async fn seal(
        &self,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Envelope, EnvelopeError> {
        let aad = context.data_aad()?;
        check_plaintext(plaintext)?;
        let version = self.provider.primary_version()?;
        let mut nonce = [0u8; NONCE_LEN];
        crate::rng::fill(&mut nonce).map_err(|_| EnvelopeError::Randomness)?;
        if let Some(active) = self.active.take_use(self.policy, version, Instant::now()) {
            return seal_data(
                &active.key,
                active.version,
                &active.wrapped,
                nonce,
                plaintext,
                aad,
            );
        }
        let mut dek = Zeroizing::new([0u8; DEK_LEN]);
        crate::rng::fill(&mut dek[..]).map_err(|_| EnvelopeError::Randomness)?;
        let key = Arc::new(expand(&dek)?);
        let wrapped = self
            .provider
            .wrap_key(
                version,
                &DataKey::from_bytes(&dek),
                &format::wrap_aad(version),
            )
            .await?;
        if matches!(self.policy, DekPolicy::Reuse { .. }) {
            self.active.install(ActiveDek {
                version,
                wrapped: Arc::from(&wrapped[..]),
                key: Arc::clone(&key),
                born: Instant::now(),
                uses: 1,
            });
        }
        seal_data(&key, version, &wrapped, nonce, plaintext, aad)
    }

    /// As [`Cipher::open`].
    ///
    /// # Errors
    ///
    /// As [`Cipher::open`], and [`EnvelopeError::Provider`].
    pub async fn open(
        &self,
        envelope: &Envelope,
        context: &Context,
    ) -> Result<SecretSlice<u8>, EnvelopeError> {
        let aad = context.data_aad()?;
        let version = envelope.kek_version();
        self.provider.check_decrypt(version)?;
        let wrapped = envelope.wrapped_key();
        let key = if let Some(key) = self.cache.get(version, wrapped, Instant::now()) {
            key
        } else {
            let dek = self
                .provider
                .unwrap_key(version, wrapped, &format::wrap_aad(version))
                .await?;
            let key = Arc::new(expand(dek.expose_secret())?);
            self.cache
                .insert(version, wrapped, Arc::clone(&key), Instant::now());
            key
        };
        open_data(&key, envelope, aad)
    }

    /// As [`Cipher::open_str`].
    ///
    /// # Errors
    ///
    /// As [`AsyncCipher::open`], and [`EnvelopeError::NotUtf8`].
    pub async fn open_str(
        &self,
        envelope: &Envelope,
        context: &Context,
    ) -> Result<SecretString, EnvelopeError> {
        into_secret_string(&self.open(envelope, context).await?)
    }

    /// As [`Cipher::needs_rewrap`].
    #[must_use]
    pub fn needs_rewrap(&self, envelope: &Envelope) -> bool {
        self.provider
            .primary_version()
            .is_ok_and(|p| p != envelope.kek_version())
    }

    /// As [`Cipher::rewrap`].
    ///
    /// # Errors
    ///
    /// As [`Cipher::rewrap`], and [`EnvelopeError::Provider`].
    pub async fn rewrap(&self, envelope: &Envelope) -> Result<Envelope, EnvelopeError> {
        let primary = self.provider.primary_version()?;
        let version = envelope.kek_version();
        if version == primary {
            return Ok(envelope.clone());
        }
        self.provider.check_decrypt(version)?;
        let dek = self
            .provider
            .unwrap_key(version, envelope.wrapped_key(), &format::wrap_aad(version))
            .await?;
        let wrapped = self
            .provider
            .wrap_key(primary, &dek, &format::wrap_aad(primary))
            .await?;
        let (data_nonce, sealed) = envelope.data_parts();
        let data_nonce: &[u8; NONCE_LEN] = data_nonce
            .try_into()
            .map_err(|_| EnvelopeError::Authentication)?;
        Ok(Envelope::assemble(primary, &wrapped, data_nonce, sealed)?)
    }
}

impl std::fmt::Debug for AsyncCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncCipher")
            .field("provider", &self.provider)
            .field("policy", &self.policy)
            .field("dek_cache", &self.cache.len())
            .finish_non_exhaustive()
    }
}

fn check_plaintext(plaintext: &[u8]) -> Result<(), EnvelopeError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(EnvelopeError::PlaintextTooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT_LEN,
        });
    }
    Ok(())
}

fn expand(dek: &[u8; DEK_LEN]) -> Result<LessSafeKey, EnvelopeError> {
    UnboundKey::new(&AES_256_GCM, dek)
        .map(LessSafeKey::new)
        .map_err(|_| EnvelopeError::Authentication)
}

/// Writes header ‖ wrapped ‖ nonce ‖ ciphertext ‖ tag in one buffer, sealing in place.
fn seal_data(
    key: &LessSafeKey,
    version: KeyVersion,
    wrapped: &[u8],
    nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Envelope, EnvelopeError> {
    let mut bytes = Envelope::begin(version, wrapped, &nonce, plaintext.len())?;
    let start = bytes.len();
    bytes.extend_from_slice(plaintext);
    let body = bytes
        .get_mut(start..)
        .ok_or(EnvelopeError::Authentication)?;
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
        .map_err(|_| EnvelopeError::Authentication)?;
    bytes.extend_from_slice(tag.as_ref());
    Ok(Envelope::finish(bytes, version, wrapped.len()))
}

fn open_data(
    key: &LessSafeKey,
    envelope: &Envelope,
    aad: &[u8],
) -> Result<SecretSlice<u8>, EnvelopeError> {
    let (nonce, sealed) = envelope.data_parts();
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| EnvelopeError::Authentication)?;
    let (ciphertext, tag) = sealed
        .split_at_checked(sealed.len().saturating_sub(format::TAG_LEN))
        .ok_or(EnvelopeError::Authentication)?;
    let tag = Tag::try_from(tag).map_err(|_| EnvelopeError::Authentication)?;
    // Decrypt into a buffer of exactly the plaintext's size, so it becomes the secret's box
    // without a reallocation or a stray copy.
    let mut buf: Box<[u8]> = ciphertext.into();
    let opened = key.open_in_place_separate_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        tag,
        &mut buf,
        0..,
    );
    if opened.is_err() {
        // With the right key but a wrong context the buffer may hold the real plaintext,
        // decrypted before the tag check failed: wipe it before it is freed.
        buf.zeroize();
        return Err(EnvelopeError::Authentication);
    }
    Ok(SecretSlice::from(buf))
}

fn into_secret_string(bytes: &SecretSlice<u8>) -> Result<SecretString, EnvelopeError> {
    let s = std::str::from_utf8(bytes.expose_secret()).map_err(|_| EnvelopeError::NotUtf8)?;
    Ok(SecretString::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AES-256-GCM known answers through our in-place seal and open paths.
    ///
    /// Source: McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)", the revised
    /// specification submitted to NIST (2005), Appendix B, test cases 13 to 16 (the 256-bit-key
    /// cases with 96-bit IVs).
    #[allow(clippy::doc_markdown, reason = "an author's name, not code")]
    struct Kat {
        key: &'static str,
        iv: &'static str,
        aad: &'static str,
        plaintext: &'static str,
        ciphertext: &'static str,
        tag: &'static str,
    }

    const P64: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                       1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    const C64: &str = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
                       8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
    const K: &str = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";

    const KATS: [Kat; 4] = [
        Kat {
            key: "0000000000000000000000000000000000000000000000000000000000000000",
            iv: "000000000000000000000000",
            aad: "",
            plaintext: "",
            ciphertext: "",
            tag: "530f8afbc74536b9a963b4f1c4cb738b",
        },
        Kat {
            key: "0000000000000000000000000000000000000000000000000000000000000000",
            iv: "000000000000000000000000",
            aad: "",
            plaintext: "00000000000000000000000000000000",
            ciphertext: "cea7403d4d606b6e074ec5d3baf39d18",
            tag: "d0d1c8a799996bf0265b98b5d48ab919",
        },
        Kat {
            key: K,
            iv: "cafebabefacedbaddecaf888",
            aad: "",
            plaintext: P64,
            ciphertext: C64,
            tag: "b094dac5d93471bdec1a502270e3cc6c",
        },
        Kat {
            key: K,
            iv: "cafebabefacedbaddecaf888",
            aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            // Test case 16 drops the last 4 bytes of the 64-byte plaintext.
            plaintext: P64.split_at(120).0,
            ciphertext: C64.split_at(120).0,
            tag: "76fc6ece0f4e1768cddf8853bb2d551b",
        },
    ];

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn aes_256_gcm_known_answers() {
        for (n, kat) in KATS.iter().enumerate() {
            let key = expand(&hex(kat.key).try_into().unwrap()).unwrap();
            let iv: [u8; NONCE_LEN] = hex(kat.iv).try_into().unwrap();
            let (plaintext, aad) = (hex(kat.plaintext), hex(kat.aad));
            let env = seal_data(&key, KeyVersion::FIRST, &[0xaa], iv, &plaintext, &aad).unwrap();
            let mut expected = iv.to_vec();
            expected.extend(hex(kat.ciphertext));
            expected.extend(hex(kat.tag));
            assert_eq!(env.sealed_data(), &expected[..], "test case {}", n + 13);
            assert_eq!(
                open_data(&key, &env, &aad).unwrap().expose_secret(),
                &plaintext[..]
            );
            let mut wrong_aad = aad.clone();
            wrong_aad.push(0);
            assert!(open_data(&key, &env, &wrong_aad).is_err());
        }
    }
}
