//! Randomness for nonces and DEKs: a fast, fork-safe, thread-local CSPRNG seeded by the OS.
//!
//! A `getrandom` syscall costs more than sealing a 50-byte token, so nonces and DEKs come from
//! a per-thread generator built on ring's AES-256-GCM keystream ("fast key erasure", after
//! Bernstein, *Fast-key-erasure random-number generators*, 2017):
//!
//! - the generator is seeded with 32 bytes from the OS CSPRNG (ring's `SystemRandom`);
//! - each refill encrypts a zero buffer under the current key; the first 32 bytes of that
//!   keystream become the next key and are wiped, the rest is handed out. A key is used for
//!   one refill only, so a nonce never repeats under it, and a captured state reveals nothing
//!   already handed out (handed-out bytes are wiped from the buffer as they leave it);
//! - it reseeds from the OS every 1 MiB of output.
//!
//! **Thread safety.** The state is thread-local: two threads never share buffered bytes.
//!
//! **Fork safety.** The state remembers the process id it was seeded in and every draw
//! compares it with the current one; a forked child sees a different id and reseeds from the OS
//! before it hands out a single byte, so parent and child never produce the same nonce or DEK.
//! (The residual case is a pid reused by a grandchild after the original process exited,
//! with no draw in between; at most one buffer could then repeat. Reseeding every 1 MiB bounds
//! how long a state lives.)

use std::cell::RefCell;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroize;

const BUF_LEN: usize = 4096;
const KEY_LEN: usize = 32;
const RESEED_AFTER_BYTES: u64 = 1 << 20;

/// The OS random number generator failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RngFailure;

struct Drbg {
    key: LessSafeKey,
    buf: Box<[u8; BUF_LEN]>,
    pos: usize,
    pid: u32,
    since_seed: u64,
}

thread_local! {
    static RNG: RefCell<Option<Drbg>> = const { RefCell::new(None) };
}

/// Fills `out` with random bytes.
pub(crate) fn fill(out: &mut [u8]) -> Result<(), RngFailure> {
    match RNG.try_with(|cell| {
        let mut slot = cell.borrow_mut();
        let pid = std::process::id();
        let stale = slot
            .as_ref()
            .is_none_or(|d| d.pid != pid || d.since_seed > RESEED_AFTER_BYTES);
        if stale {
            *slot = Some(Drbg::seeded(pid)?);
        }
        match slot.as_mut() {
            Some(drbg) => drbg.fill(out),
            None => Err(RngFailure),
        }
    }) {
        Ok(result) => result,
        // The thread-local is gone (thread teardown): use the OS directly.
        Err(_) => SystemRandom::new().fill(out).map_err(|_| RngFailure),
    }
}

/// Random bytes straight from the OS, for long-lived keys (KEKs).
pub(crate) fn os_fill(out: &mut [u8]) -> Result<(), RngFailure> {
    SystemRandom::new().fill(out).map_err(|_| RngFailure)
}

impl Drbg {
    fn seeded(pid: u32) -> Result<Self, RngFailure> {
        let mut seed = [0u8; KEY_LEN];
        os_fill(&mut seed)?;
        let key = aes_key(&seed);
        seed.zeroize();
        let mut drbg = Drbg {
            key: key?,
            buf: Box::new([0u8; BUF_LEN]),
            pos: BUF_LEN,
            pid,
            since_seed: 0,
        };
        drbg.refill()?;
        Ok(drbg)
    }

    fn refill(&mut self) -> Result<(), RngFailure> {
        self.buf.zeroize();
        // A fresh key per refill, so the fixed nonce never repeats under one key.
        self.key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0u8; 12]),
                Aad::empty(),
                &mut self.buf[..],
            )
            // The tag is not output: only the keystream is.
            .map(drop)
            .map_err(|_| RngFailure)?;
        let (next, _) = self
            .buf
            .split_first_chunk_mut::<KEY_LEN>()
            .ok_or(RngFailure)?;
        let key = aes_key(next);
        next.zeroize();
        self.key = key?;
        self.pos = KEY_LEN;
        Ok(())
    }

    fn fill(&mut self, mut out: &mut [u8]) -> Result<(), RngFailure> {
        while !out.is_empty() {
            if self.pos >= BUF_LEN {
                self.refill()?;
            }
            let avail = self.buf.get_mut(self.pos..).ok_or(RngFailure)?;
            let n = avail.len().min(out.len());
            let (src, _) = avail.split_at_mut(n);
            let (dst, rest) = out.split_at_mut(n);
            dst.copy_from_slice(src);
            src.zeroize();
            self.pos += n;
            self.since_seed += n as u64;
            out = rest;
        }
        Ok(())
    }
}

fn aes_key(bytes: &[u8]) -> Result<LessSafeKey, RngFailure> {
    UnboundKey::new(&AES_256_GCM, bytes)
        .map(LessSafeKey::new)
        .map_err(|_| RngFailure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn outputs_do_not_repeat_across_refills_and_threads() {
        let mut seen = HashSet::new();
        let draw = || {
            let mut v = Vec::new();
            for _ in 0..2000 {
                let mut n = [0u8; 12];
                fill(&mut n).unwrap();
                v.push(n);
            }
            v
        };
        let other = std::thread::spawn(draw).join().unwrap();
        for n in draw().into_iter().chain(other) {
            assert!(seen.insert(n), "repeated output");
        }
    }

    #[test]
    fn large_fills_span_buffers() {
        let mut big = vec![0u8; 3 * BUF_LEN + 17];
        fill(&mut big).unwrap();
        // A wrong offset would leave zero runs; 64 zero bytes in a row is vanishingly unlikely.
        assert!(!big.windows(64).any(|w| w.iter().all(|&b| b == 0)));
    }
}
