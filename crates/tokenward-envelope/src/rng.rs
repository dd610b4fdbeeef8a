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
//! **Fork safety.** A `pthread_atfork` child handler (registered once) bumps a process-wide
//! fork generation; every draw compares the state's generation with it (one atomic load), so a
//! forked child reseeds from the OS before it hands out a single byte and parent and child
//! never produce the same nonce or DEK. Reading the process id on every draw would do the same
//! but costs a system call on every draw, more than the seal itself here. As defence in depth the
//! process id is also compared at every refill, which bounds what a child created by a raw
//! `clone` system call (bypassing `fork` and its handlers) could share to one buffer. If the
//! handler cannot be registered, every draw compares the process id instead.

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
    fork_generation: u64,
    since_seed: u64,
}

thread_local! {
    static RNG: RefCell<Option<Drbg>> = const { RefCell::new(None) };
}

/// Fills `out` with random bytes.
pub(crate) fn fill(out: &mut [u8]) -> Result<(), RngFailure> {
    match RNG.try_with(|cell| {
        let mut slot = cell.borrow_mut();
        let generation = fork::generation();
        let stale = slot.as_ref().is_none_or(|d| {
            d.fork_generation != generation
                || d.since_seed > RESEED_AFTER_BYTES
                || (generation == fork::UNTRACKED && d.pid != std::process::id())
        });
        if stale {
            *slot = Some(Drbg::seeded(generation)?);
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
    fn seeded(fork_generation: u64) -> Result<Self, RngFailure> {
        let mut seed = [0u8; KEY_LEN];
        os_fill(&mut seed)?;
        let key = aes_key(&seed);
        seed.zeroize();
        let mut drbg = Drbg {
            key: key?,
            buf: Box::new([0u8; BUF_LEN]),
            pos: BUF_LEN,
            pid: std::process::id(),
            fork_generation,
            since_seed: 0,
        };
        drbg.refill()?;
        Ok(drbg)
    }

    fn refill(&mut self) -> Result<(), RngFailure> {
        if self.pid != std::process::id() {
            // A child that bypassed fork handlers: start over from the OS.
            *self = Drbg::seeded(self.fork_generation)?;
            return Ok(());
        }
        // Every byte was wiped as it was handed out, so this only guards the invariant that
        // the keystream is generated over zeros; a plain memset is enough.
        self.buf.fill(0);
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
            // Wipe what leaves the buffer. A plain fill is enough here (no volatile writes
            // needed): the next refill encrypts these very bytes, so the stores cannot be
            // optimised away.
            src.fill(0);
            self.pos += n;
            self.since_seed += n as u64;
            out = rest;
        }
        Ok(())
    }
}

/// The fork generation: bumped in every child `fork` creates.
#[allow(
    unsafe_code,
    reason = "the one FFI call of this crate: registering a fork handler"
)]
mod fork {
    use std::sync::Once;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Returned when the handler could not be registered: callers compare process ids instead.
    pub(super) const UNTRACKED: u64 = u64::MAX;

    static GENERATION: AtomicU64 = AtomicU64::new(0);
    static REGISTER: Once = Once::new();

    extern "C" fn in_child() {
        // Async-signal-safe: a single atomic add, no allocation, no locks.
        GENERATION.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn generation() -> u64 {
        REGISTER.call_once(|| {
            #[cfg(unix)]
            {
                // SAFETY: `pthread_atfork` only records the function pointers; `in_child` is
                // an `extern "C" fn` with no arguments that touches nothing but an atomic.
                let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
                if rc != 0 {
                    GENERATION.store(UNTRACKED, Ordering::SeqCst);
                }
            }
            #[cfg(not(unix))]
            GENERATION.store(UNTRACKED, Ordering::SeqCst);
        });
        GENERATION.load(Ordering::Relaxed)
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
