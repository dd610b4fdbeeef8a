//! Entry points for fuzzers and for the seed-corpus tests: each takes arbitrary bytes and must
//! never panic. The `fuzz/` targets are three-line shims over these. A panic here *is* the
//! finding, so these hooks panic where a library function would return an error.
#![allow(
    clippy::panic,
    reason = "a fuzz hook reports a broken invariant by panicking"
)]

use std::sync::{Arc, OnceLock};

use secrecy::ExposeSecret as _;

use crate::{Cipher, Context, Envelope, Keyring};

/// A fixed keyring for fuzzing (built once; its keys are random, which is fine: the fuzzer
/// looks for panics, not for keys).
fn cipher() -> &'static Cipher {
    static CIPHER: OnceLock<Cipher> = OnceLock::new();
    CIPHER.get_or_init(|| {
        let keyring = Keyring::generate().unwrap_or_else(|e| panic!("keyring: {e}"));
        Cipher::new(Arc::new(keyring))
    })
}

/// Parses arbitrary bytes as a binary envelope and tries to open it.
pub fn parse_and_open_bytes(data: &[u8]) {
    if let Ok(env) = Envelope::from_bytes(data) {
        let _ = env.to_text();
        if let Ok(ctx) = Context::new().with("item_id", "fuzz") {
            let _ = cipher().open(&env, &ctx);
            let _ = cipher().rewrap(&env);
        }
    }
}

/// Parses arbitrary text as a text envelope (and peeks its version) and tries to open it.
pub fn parse_and_open_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::peek_kek_version(text);
    if let (Ok(env), Ok(ctx)) = (
        Envelope::from_text(text),
        Context::new().with("item_id", "fuzz"),
    ) {
        let _ = cipher().open(&env, &ctx);
    }
}

/// Seals arbitrary bytes under a context built from the input, goes through the text form and
/// back, and checks that the plaintext comes back.
pub fn round_trip(data: &[u8]) {
    let (head, plaintext) = data.split_at(data.len().min(8));
    let value = String::from_utf8_lossy(head);
    let Ok(ctx) = Context::new().with("item_id", &value) else {
        return;
    };
    let Ok(env) = cipher().seal(plaintext, &ctx) else {
        return;
    };
    let parsed = Envelope::from_text(&env.to_text()).unwrap_or_else(|e| panic!("reparse: {e}"));
    let opened = cipher()
        .open(&parsed, &ctx)
        .unwrap_or_else(|e| panic!("reopen: {e}"));
    assert_eq!(
        opened.expose_secret(),
        plaintext,
        "round trip changed the plaintext"
    );
}
