//! Loading a keyring from the environment. Its own test binary: it changes the process
//! environment, which must not race with other tests.
#![allow(
    unsafe_code,
    reason = "std::env::set_var is unsafe in edition 2024; this binary has one test"
)]
#![allow(clippy::unwrap_used, missing_docs, reason = "test code")]

use tokenward_envelope::{KEYRING_ENV, KEYRING_FILE_ENV, KeyVersion, Keyring, KeyringError};

#[test]
fn keyring_comes_from_the_variable_or_the_file() {
    // SAFETY (all set_var/remove_var below): this test binary runs a single test thread.
    unsafe {
        std::env::remove_var(KEYRING_ENV);
        std::env::remove_var(KEYRING_FILE_ENV);
    }
    let err = Keyring::from_env().unwrap_err();
    assert!(matches!(err, KeyringError::NotConfigured));
    assert!(err.to_string().contains("TOKENWARD_KEYRING"));

    unsafe { std::env::set_var(KEYRING_ENV, include_str!("vectors/keyring-v1.json")) };
    assert_eq!(
        Keyring::from_env().unwrap().primary_version(),
        KeyVersion::new(2)
    );

    unsafe { std::env::set_var(KEYRING_ENV, "{\"format\":\"tokenward.keyring.v1\"") };
    assert!(matches!(Keyring::from_env(), Err(KeyringError::Invalid(_))));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    Keyring::generate().unwrap().save_file(&path).unwrap();
    unsafe {
        std::env::remove_var(KEYRING_ENV);
        std::env::set_var(KEYRING_FILE_ENV, &path);
    }
    assert_eq!(
        Keyring::from_env().unwrap().primary_version(),
        KeyVersion::new(1)
    );
}
