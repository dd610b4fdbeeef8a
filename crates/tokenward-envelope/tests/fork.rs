//! A forked child and its parent never produce the same nonce or DEK.
//!
//! Its own test binary with a single test, so no other test thread exists when it forks.
#![cfg(unix)]
#![allow(
    unsafe_code,
    reason = "fork(2) and _exit(2) are the point of this test; the child only seals and writes"
)]
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "test code"
)]

use std::collections::HashSet;
use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use tokenward_envelope::{Cipher, Context, Envelope, Keyring};

const N: usize = 300;

fn seal_many(cipher: &Cipher, ctx: &Context) -> Vec<String> {
    (0..N)
        .map(|_| cipher.seal(b"access-sandbox-token", ctx).unwrap().to_text())
        .collect()
}

/// (wrap nonce, data nonce, DEK) of an envelope under the vector keyring's v2 KEK.
fn randomness(text: &str) -> ([u8; 12], [u8; 12], Vec<u8>) {
    let env = Envelope::from_text(text).unwrap();
    let b = env.as_bytes();
    let kek: Vec<u8> = (32..64).collect();
    let kek = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &kek).unwrap());
    let mut aad = b"tokenward.dek.v1".to_vec();
    aad.extend_from_slice(&b[..6]);
    let wrap_nonce: [u8; 12] = b[8..20].try_into().unwrap();
    let mut dek = b[20..68].to_vec();
    let dek = kek
        .open_in_place(
            Nonce::assume_unique_for_key(wrap_nonce),
            Aad::from(&aad),
            &mut dek,
        )
        .unwrap()
        .to_vec();
    (wrap_nonce, b[68..80].try_into().unwrap(), dek)
}

#[test]
fn forked_child_and_parent_never_share_nonces_or_deks() {
    let keyring = Keyring::import(include_str!("vectors/keyring-v1.json")).unwrap();
    let cipher = Cipher::new(Arc::new(keyring));
    let ctx = Context::new().with("item_id", "fork").unwrap();
    // Draw once so the parent's generator holds buffered bytes when it forks.
    cipher.seal(b"warm-up", &ctx).unwrap();

    let (mut from_child, mut to_parent) = UnixStream::pair().unwrap();
    // SAFETY: the child touches only this thread's state, then leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let out = seal_many(&cipher, &ctx).join("\n");
            to_parent.write_all(out.as_bytes()).unwrap();
        }))
        .is_ok();
        // SAFETY: ends the child without running the parent's destructors or test harness.
        unsafe { libc::_exit(i32::from(!ok)) };
    }
    drop(to_parent);
    let parent = seal_many(&cipher, &ctx);
    let mut child = String::new();
    from_child.read_to_string(&mut child).unwrap();
    let mut status = 0;
    // SAFETY: waits for the child we forked.
    assert_eq!(unsafe { libc::waitpid(pid, &raw mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed"
    );

    let child: Vec<&str> = child.lines().collect();
    assert_eq!(child.len(), N);
    let mut nonces = HashSet::new();
    let mut deks = HashSet::new();
    for text in parent.iter().map(String::as_str).chain(child) {
        let (wrap_nonce, data_nonce, dek) = randomness(text);
        assert!(
            nonces.insert(wrap_nonce),
            "wrap nonce repeated across parent and child"
        );
        assert!(
            nonces.insert(data_nonce),
            "data nonce repeated across parent and child"
        );
        assert!(deks.insert(dek), "DEK repeated across parent and child");
    }
    assert_eq!(deks.len(), 2 * N);
}
