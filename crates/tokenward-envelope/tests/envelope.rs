//! Integration tests of the envelope crate through its public API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code: failures should be loud"
)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use secrecy::ExposeSecret as _;
use tokenward_envelope::{
    AsyncCipher, Cipher, Context, ContextError, DataKey, DekCacheConfig, DekPolicy, Envelope,
    EnvelopeError, FormatError, KeyProvider, KeyState, KeyVersion, Keyring, KeyringError,
    MAX_PLAINTEXT_LEN, peek_kek_version,
};

const TOKEN: &str = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";
const VECTOR_KEYRING: &str = include_str!("vectors/keyring-v1.json");
const VECTORS: &str = include_str!("vectors/envelopes.txt");

fn v(n: u32) -> KeyVersion {
    KeyVersion::new(n).unwrap()
}

fn ctx() -> Context {
    Context::new()
        .with("item_id", "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6")
        .unwrap()
        .with("user_id", "user-42")
        .unwrap()
        .with("purpose", "plaid.access_token")
        .unwrap()
}

fn vector(name: &str) -> String {
    VECTORS
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

fn new_cipher() -> Cipher {
    Cipher::new(Arc::new(Keyring::generate().unwrap()))
}

fn rotate(keyring: &Keyring) -> KeyVersion {
    let next = keyring.add_staged().unwrap();
    keyring.promote(next).unwrap();
    next
}

// --- fixed vectors -------------------------------------------------------------------------

#[test]
fn fixed_vectors_still_open() {
    let cipher = Cipher::new(Arc::new(Keyring::import(VECTOR_KEYRING).unwrap()));
    let v1 = Envelope::from_text(&vector("V1")).unwrap();
    let v2 = Envelope::from_text(&vector("V2")).unwrap();
    assert_eq!(&v1.as_bytes()[..8], &[1, 1, 0, 0, 0, 1, 0, 60]);
    assert_eq!(&v2.as_bytes()[..8], &[1, 1, 0, 0, 0, 2, 0, 60]);
    assert_eq!(v1.as_bytes().len(), 147);
    assert_eq!(vector("V1").len(), 201);
    assert_eq!(
        v1.sealed_data(),
        v2.sealed_data(),
        "rewrap must not touch the data"
    );
    for e in [&v1, &v2] {
        assert_eq!(cipher.open_str(e, &ctx()).unwrap().expose_secret(), TOKEN);
    }
    assert!(cipher.needs_rewrap(&v1));
    assert!(!cipher.needs_rewrap(&v2));
    assert_eq!(peek_kek_version(&vector("V1")).unwrap(), v(1));
}

/// Decodes a fixed vector with ring alone, following the format documentation, so the docs and
/// the code cannot drift apart.
#[test]
fn fixed_vector_decodes_from_the_documented_layout() {
    let bytes = URL_SAFE_NO_PAD
        .decode(vector("V1").strip_prefix("twe1:").unwrap())
        .unwrap();
    let kek: Vec<u8> = (0..32).collect();
    let (header, rest) = bytes.split_at(8);
    let wrapped_len = usize::from(u16::from_be_bytes([header[6], header[7]]));
    let (wrapped, data) = rest.split_at(wrapped_len);

    let mut wrap_aad = b"tokenward.dek.v1".to_vec();
    wrap_aad.extend_from_slice(&header[..6]);
    let kek = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &kek).unwrap());
    let mut dek = wrapped[12..].to_vec();
    let dek = kek
        .open_in_place(
            Nonce::try_assume_unique_for_key(&wrapped[..12]).unwrap(),
            Aad::from(&wrap_aad),
            &mut dek,
        )
        .unwrap()
        .to_vec();

    let mut data_aad = vec![1u8, 1];
    data_aad.push(3);
    for (k, val) in [
        ("item_id", "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6"),
        ("purpose", "plaid.access_token"),
        ("user_id", "user-42"),
    ] {
        data_aad.push(u8::try_from(k.len()).unwrap());
        data_aad.extend_from_slice(k.as_bytes());
        data_aad.extend_from_slice(&u16::try_from(val.len()).unwrap().to_be_bytes());
        data_aad.extend_from_slice(val.as_bytes());
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &dek).unwrap());
    let mut body = data[12..].to_vec();
    let plain = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(&data[..12]).unwrap(),
            Aad::from(&data_aad),
            &mut body,
        )
        .unwrap();
    assert_eq!(plain, TOKEN.as_bytes());
}

// --- rewrap -------------------------------------------------------------------------------

#[test]
fn rewrap_changes_only_the_wrapped_key() {
    let cipher = new_cipher();
    let sealed = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    let v2 = rotate(cipher.keyring());
    assert!(cipher.needs_rewrap(&sealed));
    let rewrapped = cipher.rewrap(&sealed).unwrap();
    assert_eq!(rewrapped.kek_version(), v2);
    assert_eq!(rewrapped.sealed_data(), sealed.sealed_data());
    assert_ne!(rewrapped.as_bytes(), sealed.as_bytes());
    assert!(!cipher.needs_rewrap(&rewrapped));
    assert_eq!(
        cipher.open_str(&rewrapped, &ctx()).unwrap().expose_secret(),
        TOKEN
    );
    // A retried rewrap is a no-op.
    assert_eq!(cipher.rewrap(&rewrapped).unwrap(), rewrapped);
    // After the old version is retired, only the rewrapped envelope opens.
    cipher.keyring().disable(v(1)).unwrap();
    assert!(
        matches!(cipher.open(&sealed, &ctx()), Err(EnvelopeError::KeyDisabled(x)) if x == v(1))
    );
    assert!(cipher.open(&rewrapped, &ctx()).is_ok());
}

// --- tampering and wrong inputs ------------------------------------------------------------

#[test]
fn flipping_any_bit_fails_to_open() {
    let cipher = new_cipher();
    let sealed = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    let bytes = sealed.as_bytes();
    for bit in 0..bytes.len() * 8 {
        let mut t = bytes.to_vec();
        t[bit / 8] ^= 1 << (bit % 8);
        if let Ok(env) = Envelope::from_bytes(&t) {
            assert!(
                cipher.open(&env, &ctx()).is_err(),
                "bit {bit} flipped still opened"
            );
        }
    }
}

#[test]
fn changing_any_text_character_fails_to_open() {
    let cipher = new_cipher();
    let text = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap().to_text();
    for i in 0..text.len() {
        let mut t = text.clone().into_bytes();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).unwrap();
        if let Ok(env) = Envelope::from_text(&t) {
            assert!(
                cipher.open(&env, &ctx()).is_err(),
                "char {i} changed still opened"
            );
        }
    }
}

#[test]
fn wrong_context_fails_with_the_opaque_error() {
    let cipher = new_cipher();
    let sealed = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    let others = [
        ctx().with("extra", "x").unwrap(),
        Context::new()
            .with("item_id", "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6")
            .unwrap(),
        Context::from_pairs([
            ("item_id", "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6"),
            ("user_id", "user-43"),
            ("purpose", "plaid.access_token"),
        ])
        .unwrap(),
    ];
    for other in &others {
        assert!(matches!(
            cipher.open(&sealed, other),
            Err(EnvelopeError::Authentication)
        ));
    }
}

#[test]
fn wrong_key_fails_and_unknown_versions_are_named() {
    let a = new_cipher();
    let b = new_cipher();
    let sealed = a.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    assert!(matches!(
        b.open(&sealed, &ctx()),
        Err(EnvelopeError::Authentication)
    ));
    rotate(a.keyring());
    let sealed_v2 = a.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    assert!(
        matches!(b.open(&sealed_v2, &ctx()), Err(EnvelopeError::UnknownKeyVersion(x)) if x == v(2))
    );
}

#[test]
fn retired_versions_are_refused_precisely() {
    let cipher = new_cipher();
    let keyring = cipher.keyring();
    let sealed = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    rotate(keyring);
    assert!(
        cipher.open(&sealed, &ctx()).is_ok(),
        "decrypt-only still opens"
    );
    keyring.disable(v(1)).unwrap();
    assert!(matches!(
        cipher.open(&sealed, &ctx()),
        Err(EnvelopeError::KeyDisabled(_))
    ));
    assert!(matches!(
        cipher.rewrap(&sealed),
        Err(EnvelopeError::KeyDisabled(_))
    ));
    keyring.enable(v(1)).unwrap();
    keyring.set_min_decrypt_version(v(2)).unwrap();
    let err = cipher.open(&sealed, &ctx()).unwrap_err();
    assert!(
        matches!(err, EnvelopeError::BelowMinimumVersion { version, minimum } if version == v(1) && minimum == v(2))
    );
    assert_eq!(
        err.to_string(),
        "key version v1 is below the minimum decryption version v2"
    );
}

#[test]
fn empty_context_is_misuse_not_a_crypto_failure() {
    let cipher = new_cipher();
    let err = cipher.seal(TOKEN.as_bytes(), &Context::new()).unwrap_err();
    assert!(matches!(err, EnvelopeError::Context(ContextError::Empty)));
    let sealed = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    assert!(matches!(
        cipher.open(&sealed, &Context::new()),
        Err(EnvelopeError::Context(ContextError::Empty))
    ));
}

#[test]
fn truncated_and_oversized_inputs_fail_cleanly() {
    let cipher = new_cipher();
    let sealed = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    let bytes = sealed.as_bytes();
    for len in 0..bytes.len() {
        if let Ok(env) = Envelope::from_bytes(&bytes[..len]) {
            assert!(
                cipher.open(&env, &ctx()).is_err(),
                "truncated to {len} still opened"
            );
        }
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(
        cipher
            .open(&Envelope::from_vec(longer).unwrap(), &ctx())
            .is_err()
    );
    let text = sealed.to_text();
    for len in 0..text.len() {
        if let Ok(env) = Envelope::from_text(&text[..len]) {
            assert!(cipher.open(&env, &ctx()).is_err());
        }
    }
    assert!(matches!(
        Envelope::from_text("plaintext-token"),
        Err(FormatError::MissingPrefix { .. })
    ));
    assert!(matches!(
        Envelope::from_text("twe1:***"),
        Err(FormatError::Base64)
    ));

    let big = vec![7u8; MAX_PLAINTEXT_LEN + 1];
    assert!(matches!(
        cipher.seal(&big, &ctx()),
        Err(EnvelopeError::PlaintextTooLarge { len, max }) if len == MAX_PLAINTEXT_LEN + 1 && max == MAX_PLAINTEXT_LEN
    ));
    let max = vec![7u8; MAX_PLAINTEXT_LEN];
    let sealed = cipher.seal(&max, &ctx()).unwrap();
    let reparsed = Envelope::from_text(&sealed.to_text()).unwrap();
    assert_eq!(
        cipher.open(&reparsed, &ctx()).unwrap().expose_secret(),
        &max[..]
    );
    let empty = cipher.seal(b"", &ctx()).unwrap();
    assert!(
        cipher
            .open(&empty, &ctx())
            .unwrap()
            .expose_secret()
            .is_empty()
    );
}

// --- keyring -----------------------------------------------------------------------------

#[test]
fn keyring_transitions_follow_the_state_machine() {
    let keyring = Keyring::generate().unwrap();
    assert_eq!(keyring.primary_version(), Some(v(1)));
    let v2 = keyring.add_staged().unwrap();
    assert_eq!(
        keyring.primary_version(),
        Some(v(1)),
        "staging does not promote"
    );
    let states = |k: &Keyring| k.keys().iter().map(|i| i.state).collect::<Vec<_>>();
    assert_eq!(states(&keyring), [KeyState::Primary, KeyState::Staged]);
    assert!(matches!(
        keyring.disable(v(1)),
        Err(KeyringError::InvalidTransition {
            action: "disable",
            ..
        })
    ));
    keyring.promote(v2).unwrap();
    assert_eq!(states(&keyring), [KeyState::DecryptOnly, KeyState::Primary]);
    keyring.promote(v2).unwrap(); // no-op
    keyring.disable(v(1)).unwrap();
    assert!(matches!(
        keyring.promote(v(1)),
        Err(KeyringError::InvalidTransition {
            action: "promote",
            ..
        })
    ));
    assert!(matches!(
        keyring.promote(v(9)),
        Err(KeyringError::UnknownKeyVersion(_))
    ));
    assert!(matches!(
        keyring.set_min_decrypt_version(v(3)),
        Err(KeyringError::MinimumAbovePrimary { .. })
    ));
    keyring.set_min_decrypt_version(v2).unwrap();
    keyring.enable(v(1)).unwrap();
    assert!(
        keyring.promote(v(1)).is_err(),
        "a version below the minimum cannot become primary"
    );
    keyring.disable(v(1)).unwrap();
    keyring.destroy(v(1)).unwrap();
    assert_eq!(keyring.keys().len(), 1);
    assert!(matches!(
        keyring.destroy(v2),
        Err(KeyringError::InvalidTransition {
            action: "destroy",
            ..
        })
    ));
}

#[test]
fn keyring_export_round_trips_and_bad_exports_are_refused() {
    let keyring = Keyring::generate().unwrap();
    rotate(&keyring);
    let cipher = Cipher::new(Arc::new(keyring));
    let sealed = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    let exported = cipher.keyring().export();
    let again = Cipher::new(Arc::new(Keyring::import(exported.expose_secret()).unwrap()));
    assert_eq!(
        again.open_str(&sealed, &ctx()).unwrap().expose_secret(),
        TOKEN
    );

    let bad = [
        "not json",
        r#"{"format":"other","keys":[]}"#,
        r#"{"format":"tokenward.keyring.v1","keys":[{"version":0,"state":"primary","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
        r#"{"format":"tokenward.keyring.v1","keys":[{"version":1,"state":"primary","material":"AAAA"}]}"#,
        r#"{"format":"tokenward.keyring.v1","keys":[{"version":1,"state":"primary","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},{"version":2,"state":"primary","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
        r#"{"format":"tokenward.keyring.v1","keys":[{"version":1,"state":"primary","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},{"version":1,"state":"staged","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
        r#"{"format":"tokenward.keyring.v1","keys":[{"version":1,"state":"primary","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","extra":1}]}"#,
        r#"{"format":"tokenward.keyring.v1","min_decrypt_version":2,"keys":[{"version":1,"state":"primary","material":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
    ];
    for text in bad {
        assert!(Keyring::import(text).is_err(), "accepted: {text}");
    }
}

#[test]
fn key_material_never_shows_in_debug_or_errors() {
    let keyring = Keyring::import(VECTOR_KEYRING).unwrap();
    let material: Vec<String> = [0u8, 32]
        .iter()
        .map(|&start| URL_SAFE_NO_PAD.encode((start..start + 32).collect::<Vec<u8>>()))
        .collect();
    let cipher = Cipher::new(Arc::new(keyring)).with_dek_cache(DekCacheConfig::default());
    let sealed = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    let opened = cipher.open(&sealed, &ctx()).unwrap();
    // A bad variant name in an import must not be echoed back (it could be key material).
    let canary_state = format!(
        r#"{{"format":"tokenward.keyring.v1","keys":[{{"version":1,"state":"{}","material":"x"}}]}}"#,
        material[0]
    );
    let import_err = Keyring::import(&canary_state).unwrap_err();
    let shown = [
        format!("{cipher:?}"),
        format!("{:?}", cipher.keyring()),
        format!("{opened:?}"),
        format!("{sealed:?}"),
        format!("{:?}", ctx()),
        format!("{import_err} {import_err:?}"),
        format!(
            "{:?}",
            cipher.open(&sealed, &Context::new().with("a", "b").unwrap())
        ),
        format!(
            "{:?}",
            DataKey::from_bytes(&zeroize::Zeroizing::new([0x41; 32]))
        ),
    ]
    .join("\n");
    for m in &material {
        assert!(!shown.contains(m.as_str()), "key material leaked: {shown}");
    }
    assert!(!shown.contains(TOKEN) && !shown.contains("user-42") && !shown.contains("AAAA"));
}

#[cfg(unix)]
#[test]
fn keyring_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let keyring = Keyring::generate().unwrap();
    keyring.save_file(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let loaded = Keyring::load_file(&path).unwrap();
    assert_eq!(loaded.primary_version(), Some(v(1)));
    // Saving again replaces the file atomically and keeps the mode.
    rotate(&keyring);
    keyring.save_file(&path).unwrap();
    assert_eq!(
        Keyring::load_file(&path).unwrap().primary_version(),
        Some(v(2))
    );
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = Keyring::load_file(&path).unwrap_err();
        assert!(matches!(err, KeyringError::InsecurePermissions { mode: m, .. } if m == mode));
        assert!(err.to_string().contains("chmod 600"));
    }
    assert!(matches!(
        Keyring::load_file(dir.path().join("missing.json")),
        Err(KeyringError::Io { .. })
    ));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );
}

// --- batches, policies and caches -----------------------------------------------------------

#[test]
fn batch_apis_work_item_by_item() {
    let cipher = new_cipher();
    let contexts: Vec<Context> = (0..50)
        .map(|i| {
            Context::new()
                .with("item_id", &format!("item-{i}"))
                .unwrap()
        })
        .collect();
    let items: Vec<(&[u8], &Context)> = contexts.iter().map(|c| (TOKEN.as_bytes(), c)).collect();
    let sealed = cipher.seal_batch(&items).unwrap();
    let wrapped: HashSet<_> = sealed
        .iter()
        .map(|e| e.as_bytes()[8..68].to_vec())
        .collect();
    assert_eq!(wrapped.len(), 50, "every envelope has its own DEK");

    let mut pairs: Vec<(&Envelope, &Context)> = sealed.iter().zip(&contexts).collect();
    // Two envelopes now meet the wrong context.
    pairs[0].1 = &contexts[1];
    pairs[1].1 = &contexts[0];
    let opened = cipher.open_batch(&pairs);
    assert!(matches!(opened[0], Err(EnvelopeError::Authentication)));
    assert!(matches!(opened[1], Err(EnvelopeError::Authentication)));
    assert!(opened[2..].iter().all(Result::is_ok));

    let v2 = rotate(cipher.keyring());
    let rewrapped = cipher.rewrap_batch(&sealed);
    for (old, new) in sealed.iter().zip(&rewrapped) {
        let new = new.as_ref().unwrap();
        assert_eq!(new.kek_version(), v2);
        assert_eq!(new.sealed_data(), old.sealed_data());
    }
    let bad_ctx = Context::new().with("item_id", "x").unwrap();
    assert!(matches!(
        cipher.seal_batch(&[
            (b"a".as_slice(), &bad_ctx),
            (b"b".as_slice(), &Context::new())
        ]),
        Err(EnvelopeError::Context(ContextError::Empty))
    ));
}

#[test]
fn dek_reuse_policy_is_bounded() {
    let cipher = new_cipher().with_dek_policy(DekPolicy::Reuse {
        max_uses: 3,
        max_age: Duration::from_secs(60),
    });
    let wrapped = |e: &Envelope| e.as_bytes()[8..68].to_vec();
    let sealed: Vec<Envelope> = (0..7)
        .map(|_| cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap())
        .collect();
    let keys: Vec<_> = sealed.iter().map(wrapped).collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[1], keys[2]);
    assert_ne!(keys[2], keys[3], "a new DEK after max_uses");
    let nonces: HashSet<_> = sealed
        .iter()
        .map(|e| e.sealed_data()[..12].to_vec())
        .collect();
    assert_eq!(nonces.len(), 7, "nonces never repeat under a shared DEK");
    rotate(cipher.keyring());
    let after = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    assert_eq!(
        after.kek_version(),
        v(2),
        "a new primary retires the reused DEK"
    );
    for e in sealed.iter().chain([&after]) {
        assert_eq!(cipher.open_str(e, &ctx()).unwrap().expose_secret(), TOKEN);
    }
}

#[test]
fn cached_keys_still_obey_key_states() {
    let cipher = new_cipher().with_dek_cache(DekCacheConfig::default());
    let sealed = cipher.seal(TOKEN.as_bytes(), &ctx()).unwrap();
    assert!(cipher.open(&sealed, &ctx()).is_ok());
    assert!(
        cipher.open(&sealed, &ctx()).is_ok(),
        "second open is a cache hit"
    );
    rotate(cipher.keyring());
    cipher.keyring().disable(v(1)).unwrap();
    assert!(matches!(
        cipher.open(&sealed, &ctx()),
        Err(EnvelopeError::KeyDisabled(_))
    ));
    let other = Context::new().with("item_id", "other").unwrap();
    cipher.keyring().enable(v(1)).unwrap();
    assert!(matches!(
        cipher.open(&sealed, &other),
        Err(EnvelopeError::Authentication)
    ));
}

// --- concurrency ---------------------------------------------------------------------------

#[test]
fn many_threads_seal_and_open_while_keys_rotate() {
    let cipher = Arc::new(new_cipher().with_dek_cache(DekCacheConfig::default()));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let cipher = Arc::clone(&cipher);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let ctx = Context::new()
                    .with("item_id", &format!("item-{t}"))
                    .unwrap();
                let mut sealed = Vec::new();
                for i in 0..400 {
                    let plain = format!("{TOKEN}-{t}-{i}");
                    let env = cipher.seal(plain.as_bytes(), &ctx).unwrap();
                    assert_eq!(
                        cipher.open(&env, &ctx).unwrap().expose_secret(),
                        plain.as_bytes()
                    );
                    sealed.push((plain, env));
                }
                done.fetch_add(1, Ordering::SeqCst);
                (ctx, sealed)
            })
        })
        .collect();
    let mut rotations = 0;
    while done.load(Ordering::SeqCst) < 4 {
        rotate(cipher.keyring());
        rotations += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut versions = HashSet::new();
    let mut nonces = HashSet::new();
    for w in workers {
        let (ctx, sealed) = w.join().unwrap();
        for (plain, env) in sealed {
            versions.insert(env.kek_version());
            assert!(
                nonces.insert(env.sealed_data()[..12].to_vec()),
                "nonce repeated"
            );
            let rewrapped = cipher.rewrap(&env).unwrap();
            assert_eq!(
                cipher.open(&rewrapped, &ctx).unwrap().expose_secret(),
                plain.as_bytes()
            );
        }
    }
    assert!(rotations > 0 && !versions.is_empty());
}

// --- async providers -----------------------------------------------------------------------

/// A stand-in for a remote KMS: an in-process keyring that counts calls.
#[derive(Debug)]
struct CountingKms {
    inner: Keyring,
    wraps: AtomicUsize,
    unwraps: AtomicUsize,
}

#[async_trait::async_trait]
impl KeyProvider for CountingKms {
    fn primary_version(&self) -> Result<KeyVersion, EnvelopeError> {
        KeyProvider::primary_version(&self.inner)
    }

    fn check_decrypt(&self, version: KeyVersion) -> Result<(), EnvelopeError> {
        KeyProvider::check_decrypt(&self.inner, version)
    }

    async fn wrap_key(
        &self,
        version: KeyVersion,
        dek: &DataKey,
        aad: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        self.wraps.fetch_add(1, Ordering::SeqCst);
        self.inner.wrap_key(version, dek, aad).await
    }

    async fn unwrap_key(
        &self,
        version: KeyVersion,
        wrapped: &[u8],
        aad: &[u8],
    ) -> Result<DataKey, EnvelopeError> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        self.inner.unwrap_key(version, wrapped, aad).await
    }
}

#[tokio::test]
async fn async_providers_use_the_cache_and_reuse_policy() {
    let kms = Arc::new(CountingKms {
        inner: Keyring::import(VECTOR_KEYRING).unwrap(),
        wraps: AtomicUsize::new(0),
        unwraps: AtomicUsize::new(0),
    });
    let cipher = AsyncCipher::new(Arc::clone(&kms) as Arc<dyn KeyProvider>).with_dek_policy(
        DekPolicy::Reuse {
            max_uses: 10,
            max_age: Duration::from_secs(60),
        },
    );
    let mut sealed = Vec::new();
    for _ in 0..20 {
        sealed.push(cipher.seal(TOKEN.as_bytes(), &ctx()).await.unwrap());
    }
    assert_eq!(
        kms.wraps.load(Ordering::SeqCst),
        2,
        "one wrap per 10 envelopes"
    );
    for e in &sealed {
        assert_eq!(
            cipher.open_str(e, &ctx()).await.unwrap().expose_secret(),
            TOKEN
        );
    }
    assert_eq!(
        kms.unwraps.load(Ordering::SeqCst),
        2,
        "one unwrap per distinct DEK"
    );
    cipher.clear_cache();
    cipher.open(&sealed[0], &ctx()).await.unwrap();
    assert_eq!(kms.unwraps.load(Ordering::SeqCst), 3);

    // The fixed vectors and the sync cipher interoperate with the async one.
    let v1 = Envelope::from_text(&vector("V1")).unwrap();
    assert_eq!(
        cipher.open_str(&v1, &ctx()).await.unwrap().expose_secret(),
        TOKEN
    );
    assert!(cipher.needs_rewrap(&v1));
    let v2 = cipher.rewrap(&v1).await.unwrap();
    assert_eq!(v2.sealed_data(), v1.sealed_data());
    let sync = Cipher::new(Arc::new(Keyring::import(VECTOR_KEYRING).unwrap()));
    assert_eq!(sync.open_str(&v2, &ctx()).unwrap().expose_secret(), TOKEN);
    assert_eq!(
        sync.open_str(&sealed[5], &ctx()).unwrap().expose_secret(),
        TOKEN
    );
    kms.inner.disable(v(1)).unwrap();
    assert!(matches!(
        cipher.open(&v1, &ctx()).await,
        Err(EnvelopeError::KeyDisabled(_))
    ));
}

// --- properties ----------------------------------------------------------------------------

fn contexts() -> impl Strategy<Value = Context> {
    proptest::collection::btree_map("[a-z0-9_.-]{1,12}", ".{0,40}", 1..6)
        .prop_map(|m| Context::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seal_text_parse_open_round_trips(
        plaintext in proptest::collection::vec(any::<u8>(), 0..600),
        context in contexts(),
        other in contexts(),
    ) {
        static CIPHER: std::sync::OnceLock<Cipher> = std::sync::OnceLock::new();
        let cipher = CIPHER.get_or_init(new_cipher);
        let text = cipher.seal(&plaintext, &context).unwrap().to_text();
        let env = Envelope::from_text(&text).unwrap();
        let opened = cipher.open(&env, &context).unwrap();
        prop_assert_eq!(opened.expose_secret(), &plaintext[..]);
        if other != context {
            prop_assert!(matches!(cipher.open(&env, &other), Err(EnvelopeError::Authentication)));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        tokenward_envelope::fuzzing::parse_and_open_bytes(&data);
        tokenward_envelope::fuzzing::parse_and_open_text(&data);
    }
}
