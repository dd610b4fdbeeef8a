//! The in-process keyring: versioned KEKs with states, loaded from the environment or a file.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::format::{NONCE_LEN, TAG_LEN};
use crate::{EnvelopeError, KeyVersion, KeyringError, rng};

/// The environment variable holding a keyring's JSON export.
pub const KEYRING_ENV: &str = "TOKENWARD_KEYRING";
/// The environment variable holding the path of a keyring file.
pub const KEYRING_FILE_ENV: &str = "TOKENWARD_KEYRING_FILE";
/// How many DEKs one KEK version may wrap in this process before it refuses (random 96-bit
/// nonces: NIST SP 800-38D §8.3 caps a key at 2^32 encryptions).
pub const KEK_WRAP_LIMIT: u64 = 1 << 32;

const KEY_LEN: usize = 32;
/// Length of a DEK wrapped by a keyring KEK: nonce ‖ encrypted DEK ‖ tag.
pub(crate) const LOCAL_WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
const EXPORT_FORMAT: &str = "tokenward.keyring.v1";

/// The state of one KEK version.
///
/// ```text
///  add_staged ──▶ Staged ──promote──▶ Primary ──(another is promoted)──▶ DecryptOnly
///                   │                                                    │  ▲
///                   └──────────────disable──────────▶ Disabled ◀─disable─┘  │
///                                                       │ └──enable─────────┘
///                                                    destroy (key material removed)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyState {
    /// Added but not yet used to seal: can open, so every instance can be given the key before
    /// any instance seals with it (the first phase of a two-phase promotion).
    Staged,
    /// Seals new envelopes and rewraps old ones. At most one version is primary.
    Primary,
    /// A former primary: opens, never seals.
    DecryptOnly,
    /// Neither opens nor seals. Reversible with [`Keyring::enable`] until destroyed.
    Disabled,
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyState::Staged => "staged",
            KeyState::Primary => "primary",
            KeyState::DecryptOnly => "decrypt-only",
            KeyState::Disabled => "disabled",
        })
    }
}

/// What the keyring says about one version (no key material).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// The version.
    pub version: KeyVersion,
    /// Its state.
    pub state: KeyState,
    /// How many DEKs this process has wrapped under it.
    pub wraps: u64,
}

/// A set of versioned key-encryption keys, held in memory.
///
/// The keyring wraps and unwraps DEKs with AES-256-GCM. It never hands out key material: keys
/// are generated in place ([`Keyring::generate`], [`Keyring::add_staged`]) or imported from an
/// export ([`Keyring::import`], [`Keyring::load_file`], [`Keyring::from_env`]), and leave only
/// as a whole export ([`Keyring::export`], [`Keyring::save_file`]).
///
/// All methods take `&self`: the keyring can be shared (`Arc<Keyring>`) by a
/// [`Cipher`](crate::Cipher) that seals and opens on many threads while an operator rotates
/// keys. Each operation works on a consistent snapshot.
///
/// # Rotation in two phases
///
/// 1. `add_staged()` and distribute the keyring to every instance (a staged key opens).
/// 2. `promote(v)` everywhere: new envelopes use `v`, the old primary becomes decrypt-only.
/// 3. Rewrap old envelopes ([`Cipher::rewrap`](crate::Cipher::rewrap)), then raise
///    `set_min_decrypt_version` or `disable` the old version.
///
/// # Security
///
/// Our copies of key bytes are zeroized on drop. ring's expanded AES key schedules are not
/// (ring does not implement it); they live as long as the key is in the keyring.
pub struct Keyring {
    state: RwLock<Arc<State>>,
}

#[derive(Clone)]
struct State {
    /// Sorted by version.
    keys: Vec<Entry>,
    min_decrypt: Option<KeyVersion>,
}

#[derive(Clone)]
struct Entry {
    version: KeyVersion,
    state: KeyState,
    kek: Arc<Kek>,
}

struct Kek {
    aead: LessSafeKey,
    material: SecretBox<[u8; KEY_LEN]>,
    wraps: AtomicU64,
}

impl Keyring {
    /// A new keyring with one freshly generated primary key, version 1.
    ///
    /// # Errors
    ///
    /// [`KeyringError::Randomness`] if the OS random number generator fails.
    pub fn generate() -> Result<Self, KeyringError> {
        let entry = Entry {
            version: KeyVersion::FIRST,
            state: KeyState::Primary,
            kek: Arc::new(Kek::generate()?),
        };
        Ok(Keyring::from_state(State {
            keys: vec![entry],
            min_decrypt: None,
        }))
    }

    /// Adds a freshly generated key in the [`KeyState::Staged`] state and returns its version.
    ///
    /// # Errors
    ///
    /// [`KeyringError::VersionsExhausted`] or [`KeyringError::Randomness`].
    pub fn add_staged(&self) -> Result<KeyVersion, KeyringError> {
        let kek = Arc::new(Kek::generate()?);
        self.update(|s| {
            let version = match s.keys.last() {
                Some(last) => last.version.next().ok_or(KeyringError::VersionsExhausted)?,
                None => KeyVersion::FIRST,
            };
            s.keys.push(Entry {
                version,
                state: KeyState::Staged,
                kek,
            });
            Ok(version)
        })
    }

    /// Makes `version` the primary key; the former primary becomes decrypt-only.
    ///
    /// Allowed from [`KeyState::Staged`] (the second phase of a rotation) and from
    /// [`KeyState::DecryptOnly`] (rolling back to an earlier key). Promoting the primary is a
    /// no-op.
    ///
    /// # Errors
    ///
    /// An unknown version, a disabled one, or one below the minimum decryption version.
    pub fn promote(&self, version: KeyVersion) -> Result<(), KeyringError> {
        self.update(|s| {
            let min = s.min_decrypt;
            let target = s.entry_mut(version)?;
            match target.state {
                KeyState::Primary => return Ok(()),
                KeyState::Staged | KeyState::DecryptOnly if min.is_none_or(|m| version >= m) => {}
                state => {
                    return Err(KeyringError::InvalidTransition {
                        action: "promote",
                        version,
                        state,
                    });
                }
            }
            target.state = KeyState::Primary;
            for e in &mut s.keys {
                if e.state == KeyState::Primary && e.version != version {
                    e.state = KeyState::DecryptOnly;
                }
            }
            Ok(())
        })
    }

    /// Disables `version`: it no longer opens anything. The primary cannot be disabled.
    ///
    /// # Errors
    ///
    /// An unknown version or the primary.
    pub fn disable(&self, version: KeyVersion) -> Result<(), KeyringError> {
        self.update(|s| {
            let e = s.entry_mut(version)?;
            if e.state == KeyState::Primary {
                return Err(KeyringError::InvalidTransition {
                    action: "disable",
                    version,
                    state: e.state,
                });
            }
            e.state = KeyState::Disabled;
            Ok(())
        })
    }

    /// Re-enables a disabled version as decrypt-only.
    ///
    /// # Errors
    ///
    /// An unknown version or one that is not disabled.
    pub fn enable(&self, version: KeyVersion) -> Result<(), KeyringError> {
        self.update(|s| {
            let e = s.entry_mut(version)?;
            if e.state != KeyState::Disabled {
                return Err(KeyringError::InvalidTransition {
                    action: "enable",
                    version,
                    state: e.state,
                });
            }
            e.state = KeyState::DecryptOnly;
            Ok(())
        })
    }

    /// Removes a disabled version and its key material from the keyring for good. Envelopes
    /// under it can never be opened again.
    ///
    /// # Errors
    ///
    /// An unknown version or one that is not disabled.
    pub fn destroy(&self, version: KeyVersion) -> Result<(), KeyringError> {
        self.update(|s| {
            let e = s.entry_mut(version)?;
            if e.state != KeyState::Disabled {
                return Err(KeyringError::InvalidTransition {
                    action: "destroy",
                    version,
                    state: e.state,
                });
            }
            s.keys.retain(|e| e.version != version);
            Ok(())
        })
    }

    /// Refuses to open envelopes under any version below `minimum`.
    ///
    /// # Errors
    ///
    /// [`KeyringError::MinimumAbovePrimary`] if `minimum` is above the primary's version.
    pub fn set_min_decrypt_version(&self, minimum: KeyVersion) -> Result<(), KeyringError> {
        self.update(|s| {
            if let Some(primary) = s.primary().filter(|p| minimum > p.version) {
                return Err(KeyringError::MinimumAbovePrimary {
                    minimum,
                    primary: primary.version,
                });
            }
            s.min_decrypt = Some(minimum);
            Ok(())
        })
    }

    /// The primary version, if there is one.
    #[must_use]
    pub fn primary_version(&self) -> Option<KeyVersion> {
        self.snapshot().primary().map(|e| e.version)
    }

    /// The minimum decryption version, if one is set.
    #[must_use]
    pub fn min_decrypt_version(&self) -> Option<KeyVersion> {
        self.snapshot().min_decrypt
    }

    /// Every version with its state, in version order.
    #[must_use]
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.snapshot()
            .keys
            .iter()
            .map(|e| KeyInfo {
                version: e.version,
                state: e.state,
                wraps: e.kek.wraps.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Replaces this keyring's keys and states with `other`'s, for instances that reload a
    /// keyring file during a rotation. Operations in progress finish on the old snapshot.
    pub fn replace_with(&self, other: &Keyring) {
        let next = other.snapshot();
        match self.state.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// Exports the whole keyring, key material included, as JSON.
    ///
    /// # Security
    ///
    /// The result is as secret as the keys. Store it in a secrets manager or a file readable by
    /// its owner only ([`Keyring::save_file`] does that).
    #[must_use]
    pub fn export(&self) -> SecretString {
        let s = self.snapshot();
        let file = ExportFile {
            format: EXPORT_FORMAT.to_owned(),
            min_decrypt_version: s.min_decrypt.map(KeyVersion::get),
            keys: s
                .keys
                .iter()
                .map(|e| ExportKey {
                    version: e.version.get(),
                    state: e.state,
                    material: Zeroizing::new(
                        URL_SAFE_NO_PAD.encode(e.kek.material.expose_secret()),
                    ),
                })
                .collect(),
        };
        // Serializing plain strings and numbers into a String cannot fail.
        SecretString::from(serde_json::to_string_pretty(&file).unwrap_or_default())
    }

    /// Imports a keyring from its JSON export.
    ///
    /// # Errors
    ///
    /// [`KeyringError::Invalid`] for bad JSON, an unknown format, duplicate or zero versions,
    /// more than one primary, key material that is not 32 bytes of base64url, or a minimum
    /// decryption version above the primary.
    pub fn import(json: &str) -> Result<Self, KeyringError> {
        let file: ExportFile = serde_json::from_str(json)
            // serde's message names the field and position, never the value.
            .map_err(|e| {
                KeyringError::Invalid(format!(
                    "not a keyring export ({})",
                    describe_json_error(&e)
                ))
            })?;
        if file.format != EXPORT_FORMAT {
            return Err(KeyringError::Invalid(format!(
                "format must be `{EXPORT_FORMAT}`"
            )));
        }
        let mut keys = Vec::with_capacity(file.keys.len());
        for k in &file.keys {
            let version = KeyVersion::new(k.version)
                .ok_or_else(|| KeyringError::Invalid("key version 0".into()))?;
            let mut raw = Zeroizing::new([0u8; KEY_LEN]);
            match URL_SAFE_NO_PAD.decode_slice(k.material.as_bytes(), &mut raw[..]) {
                Ok(KEY_LEN) => {}
                _ => {
                    return Err(KeyringError::Invalid(format!(
                        "key {version}: material must be 32 bytes of unpadded base64url"
                    )));
                }
            }
            keys.push(Entry {
                version,
                state: k.state,
                kek: Arc::new(Kek::from_bytes(&raw)?),
            });
        }
        keys.sort_by_key(|e| e.version);
        if keys
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.version == b.version))
        {
            return Err(KeyringError::Invalid("duplicate key version".into()));
        }
        if keys.iter().filter(|e| e.state == KeyState::Primary).count() > 1 {
            return Err(KeyringError::Invalid("more than one primary key".into()));
        }
        let min_decrypt = match file.min_decrypt_version {
            None => None,
            Some(v) => Some(
                KeyVersion::new(v)
                    .ok_or_else(|| KeyringError::Invalid("min_decrypt_version 0".into()))?,
            ),
        };
        let state = State { keys, min_decrypt };
        if let (Some(min), Some(p)) = (min_decrypt, state.primary())
            && min > p.version
        {
            return Err(KeyringError::MinimumAbovePrimary {
                minimum: min,
                primary: p.version,
            });
        }
        Ok(Keyring::from_state(state))
    }

    /// Loads a keyring file written by [`Keyring::save_file`] (or the `tokenward keys` CLI).
    ///
    /// # Errors
    ///
    /// [`KeyringError::InsecurePermissions`] when the file is readable or writable by anyone
    /// but its owner (Unix); [`KeyringError::Io`]; and the errors of [`Keyring::import`].
    pub fn load_file(path: impl AsRef<Path>) -> Result<Self, KeyringError> {
        use std::io::Read as _;
        let path = path.as_ref();
        let io = |source| KeyringError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        // Checked on the open file, not the path, so the file cannot be swapped in between.
        check_owner_only(path, &file.metadata().map_err(io)?)?;
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(io)?;
        Keyring::import(&text)
    }

    /// Writes the keyring to `path` with owner-only permissions (0600 on Unix), atomically:
    /// a new file beside it is written, synced and renamed over the old one.
    ///
    /// # Errors
    ///
    /// [`KeyringError::Io`].
    pub fn save_file(&self, path: impl AsRef<Path>) -> Result<(), KeyringError> {
        use std::io::Write as _;
        let path = path.as_ref();
        let io = |source| KeyringError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut tmp_name = path.as_os_str().to_owned();
        let mut suffix = [0u8; 6];
        rng::os_fill(&mut suffix).map_err(|_| KeyringError::Randomness)?;
        tmp_name.push(format!(".tmp-{}", URL_SAFE_NO_PAD.encode(suffix)));
        let tmp = std::path::PathBuf::from(tmp_name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let result = (|| {
            let mut file = options.open(&tmp)?;
            file.write_all(self.export().expose_secret().as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    /// Loads the keyring named by the environment: `TOKENWARD_KEYRING` (the JSON export itself)
    /// or else `TOKENWARD_KEYRING_FILE` (a path for [`Keyring::load_file`]).
    ///
    /// # Errors
    ///
    /// [`KeyringError::NotConfigured`] when neither is set, and the errors of the loader used.
    pub fn from_env() -> Result<Self, KeyringError> {
        if let Ok(json) = std::env::var(KEYRING_ENV) {
            let json = Zeroizing::new(json);
            return Keyring::import(&json);
        }
        match std::env::var_os(KEYRING_FILE_ENV) {
            Some(path) => Keyring::load_file(path),
            None => Err(KeyringError::NotConfigured),
        }
    }

    // --- crate-internal: the fast synchronous path used by `Cipher` ---

    /// Wraps a DEK under the primary key (or under `version`, which must be the primary).
    /// `nonce` must be fresh random bytes.
    pub(crate) fn wrap(
        &self,
        version: Option<KeyVersion>,
        dek: &[u8; KEY_LEN],
        nonce: [u8; NONCE_LEN],
        out: &mut [u8; LOCAL_WRAPPED_LEN],
    ) -> Result<KeyVersion, EnvelopeError> {
        // Held for one AES-GCM seal of 32 bytes; writers (rotations) are rare.
        let guard = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let primary = guard.primary().ok_or(EnvelopeError::NoPrimaryKey)?;
        if let Some(v) = version.filter(|&v| v != primary.version) {
            return Err(EnvelopeError::NotPrimary(v));
        }
        let aad = crate::format::wrap_aad(primary.version);
        wrap_with(primary, dek, nonce, &aad, out)?;
        Ok(primary.version)
    }

    /// Unwraps a DEK after checking that `version` may open.
    pub(crate) fn unwrap(
        &self,
        version: KeyVersion,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_LEN]>, EnvelopeError> {
        let guard = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = guard.decrypting(version)?;
        unwrap_with(entry, wrapped, aad)
    }

    /// Checks that `version` may open envelopes.
    pub(crate) fn check_decrypt(&self, version: KeyVersion) -> Result<(), EnvelopeError> {
        let guard = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.decrypting(version).map(|_| ())
    }

    fn from_state(state: State) -> Self {
        Keyring {
            state: RwLock::new(Arc::new(state)),
        }
    }

    fn snapshot(&self) -> Arc<State> {
        match self.state.read() {
            Ok(guard) => Arc::clone(&guard),
            // A panic elsewhere while holding the lock cannot leave `State` half-written: it is
            // replaced whole.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn update<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, KeyringError>,
    ) -> Result<T, KeyringError> {
        let mut guard = match self.state.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = State::clone(&guard);
        let out = f(&mut next)?;
        *guard = Arc::new(next);
        Ok(out)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.snapshot();
        f.debug_struct("Keyring")
            .field("primary", &s.primary().map(|e| e.version))
            .field("min_decrypt", &s.min_decrypt)
            .field(
                "keys",
                &s.keys
                    .iter()
                    .map(|e| (e.version, e.state))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl State {
    fn primary(&self) -> Option<&Entry> {
        self.keys.iter().find(|e| e.state == KeyState::Primary)
    }

    fn entry_mut(&mut self, version: KeyVersion) -> Result<&mut Entry, KeyringError> {
        self.keys
            .iter_mut()
            .find(|e| e.version == version)
            .ok_or(KeyringError::UnknownKeyVersion(version))
    }

    fn decrypting(&self, version: KeyVersion) -> Result<&Entry, EnvelopeError> {
        let entry = self
            .keys
            .binary_search_by_key(&version, |e| e.version)
            .ok()
            .and_then(|i| self.keys.get(i))
            .ok_or(EnvelopeError::UnknownKeyVersion(version))?;
        if entry.state == KeyState::Disabled {
            return Err(EnvelopeError::KeyDisabled(version));
        }
        if let Some(minimum) = self.min_decrypt.filter(|&m| version < m) {
            return Err(EnvelopeError::BelowMinimumVersion { version, minimum });
        }
        Ok(entry)
    }
}

impl Kek {
    fn generate() -> Result<Self, KeyringError> {
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        rng::os_fill(&mut raw[..]).map_err(|_| KeyringError::Randomness)?;
        Kek::from_bytes(&raw)
    }

    fn from_bytes(raw: &[u8; KEY_LEN]) -> Result<Self, KeyringError> {
        let aead = UnboundKey::new(&AES_256_GCM, raw)
            .map(LessSafeKey::new)
            .map_err(|_| KeyringError::Invalid("key material rejected".into()))?;
        Ok(Kek {
            aead,
            material: SecretBox::new(Box::new(*raw)),
            wraps: AtomicU64::new(0),
        })
    }
}

fn wrap_with(
    entry: &Entry,
    dek: &[u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    out: &mut [u8; LOCAL_WRAPPED_LEN],
) -> Result<(), EnvelopeError> {
    if entry.kek.wraps.fetch_add(1, Ordering::Relaxed) >= KEK_WRAP_LIMIT {
        return Err(EnvelopeError::KeyUsageLimit(entry.version));
    }
    let (n, rest) = out.split_at_mut(NONCE_LEN);
    n.copy_from_slice(&nonce);
    let (body, tag_out) = rest.split_at_mut(KEY_LEN);
    body.copy_from_slice(dek);
    let tag = entry
        .kek
        .aead
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
        .map_err(|_| EnvelopeError::Authentication)?;
    tag_out.copy_from_slice(tag.as_ref());
    Ok(())
}

fn unwrap_with(
    entry: &Entry,
    wrapped: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<[u8; KEY_LEN]>, EnvelopeError> {
    let (nonce, rest) = wrapped
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(EnvelopeError::Authentication)?;
    if rest.len() != KEY_LEN + TAG_LEN {
        return Err(EnvelopeError::Authentication);
    }
    let mut buf = Zeroizing::new([0u8; KEY_LEN + TAG_LEN]);
    buf.copy_from_slice(rest);
    let plain = entry
        .kek
        .aead
        .open_in_place(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad),
            &mut buf[..],
        )
        .map_err(|_| EnvelopeError::Authentication)?;
    let mut dek = Zeroizing::new([0u8; KEY_LEN]);
    dek.copy_from_slice(plain);
    Ok(dek)
}

#[cfg(unix)]
fn check_owner_only(path: &Path, meta: &std::fs::Metadata) -> Result<(), KeyringError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyringError::InsecurePermissions {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_: &Path, _: &std::fs::Metadata) -> Result<(), KeyringError> {
    Ok(())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportFile {
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_decrypt_version: Option<u32>,
    keys: Vec<ExportKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportKey {
    version: u32,
    state: KeyState,
    material: Zeroizing<String>,
}

/// `serde_json`'s messages can quote input (an unknown variant's text), which may be key
/// material; say only what kind of error and where.
fn describe_json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected field or value",
        serde_json::error::Category::Eof => "unexpected end",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}
