//! Envelope benchmarks: our seal and open beside the baselines, in the same groups.
//!
//! - `naive`: the snippet users write: a ring `LessSafeKey` built once, a fresh OS-random nonce
//!   per seal (`SystemRandom`), base64 of nonce ‖ ciphertext ‖ tag.
//! - `raw`: one AES-256-GCM seal or open of the token with a caller-supplied nonce (the floor).
//!
//! The token is a 51-byte `access-sandbox-<uuid>`; ours go through the text form both ways.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs,
    reason = "benchmark harness: a failure should stop the run loudly"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use tokenward_envelope::{Cipher, Context, DekCacheConfig, DekPolicy, Envelope, Keyring};

const TOKEN: &[u8] = b"access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";

fn context() -> Context {
    Context::new()
        .with("item_id", "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6")
        .unwrap()
        .with("user_id", "user-42")
        .unwrap()
}

struct Naive {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Naive {
    fn new() -> Self {
        Naive {
            key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap()),
            rng: SystemRandom::new(),
        }
    }

    fn seal(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce).unwrap();
        let mut buf = Vec::with_capacity(12 + plaintext.len() + 16);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut buf[12..],
            )
            .unwrap();
        buf.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(buf)
    }

    fn open(&self, text: &str) -> Vec<u8> {
        let mut buf = URL_SAFE_NO_PAD.decode(text).unwrap();
        let nonce: [u8; 12] = buf[..12].try_into().unwrap();
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut buf[12..],
            )
            .unwrap()
            .len();
        buf.drain(..12);
        buf.truncate(len);
        buf
    }
}

fn seal_open(c: &mut Criterion) {
    let ctx = context();
    let fresh = Cipher::new(Arc::new(Keyring::generate().unwrap()));
    let reuse =
        Cipher::new(Arc::new(Keyring::generate().unwrap())).with_dek_policy(DekPolicy::Reuse {
            max_uses: 1 << 20,
            max_age: Duration::from_secs(300),
        });
    let naive = Naive::new();
    let raw = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9; 32]).unwrap());

    let mut g = c.benchmark_group("seal_51B_text");
    g.bench_function("tokenward_fresh_dek", |b| {
        b.iter(|| fresh.seal(black_box(TOKEN), &ctx).unwrap().to_text());
    });
    g.bench_function("tokenward_reused_dek", |b| {
        b.iter(|| reuse.seal(black_box(TOKEN), &ctx).unwrap().to_text());
    });
    g.bench_function("naive_snippet", |b| b.iter(|| naive.seal(black_box(TOKEN))));
    g.bench_function("raw_aes256gcm", |b| {
        b.iter_batched_ref(
            || TOKEN.to_vec(),
            |buf| {
                raw.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([1; 12]),
                    Aad::empty(),
                    buf,
                )
                .unwrap()
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();

    // Cold opens cycle over many distinct envelopes (each its own DEK); cached opens reopen one.
    let cold: Vec<String> = (0..4096)
        .map(|_| fresh.seal(TOKEN, &ctx).unwrap().to_text())
        .collect();
    let cached = Cipher::new(Arc::clone(fresh.keyring())).with_dek_cache(DekCacheConfig::default());
    let one = cold[0].clone();
    let naive_text = naive.seal(TOKEN);
    let mut sealed_raw = TOKEN.to_vec();
    let tag = raw
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([1; 12]),
            Aad::empty(),
            &mut sealed_raw,
        )
        .unwrap();
    sealed_raw.extend_from_slice(tag.as_ref());

    let mut g = c.benchmark_group("open_51B_text");
    let mut i = 0usize;
    g.bench_function("tokenward_cold_dek", |b| {
        b.iter(|| {
            i = (i + 1) % cold.len();
            let env = Envelope::from_text(black_box(&cold[i])).unwrap();
            fresh.open(&env, &ctx).unwrap()
        });
    });
    g.bench_function("tokenward_cached_dek", |b| {
        b.iter(|| {
            let env = Envelope::from_text(black_box(&one)).unwrap();
            cached.open(&env, &ctx).unwrap()
        });
    });
    g.bench_function("naive_snippet", |b| {
        b.iter(|| naive.open(black_box(&naive_text)));
    });
    g.bench_function("raw_aes256gcm", |b| {
        b.iter_batched_ref(
            || sealed_raw.clone(),
            |buf| {
                raw.open_in_place(Nonce::assume_unique_for_key([1; 12]), Aad::empty(), buf)
                    .unwrap()
                    .len()
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn batches(c: &mut Criterion) {
    const N: usize = 1000;
    let ctx = context();
    let keyring = Arc::new(Keyring::generate().unwrap());
    let cipher = Cipher::new(Arc::clone(&keyring));
    let items: Vec<(&[u8], &Context)> = (0..N).map(|_| (TOKEN, &ctx)).collect();
    let envelopes = cipher.seal_batch(&items).unwrap();
    let pairs: Vec<(&Envelope, &Context)> = envelopes.iter().map(|e| (e, &ctx)).collect();
    let naive = Naive::new();

    let mut g = c.benchmark_group("batch_1000");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("tokenward_seal_batch", |b| {
        b.iter(|| cipher.seal_batch(black_box(&items)).unwrap());
    });
    g.bench_function("naive_seal_loop", |b| {
        b.iter(|| {
            (0..N)
                .map(|_| naive.seal(black_box(TOKEN)))
                .collect::<Vec<_>>()
        });
    });
    g.bench_function("tokenward_open_batch", |b| {
        b.iter(|| cipher.open_batch(black_box(&pairs)));
    });
    // Rewrap from v1 to v2: a second keyring state with v2 primary over the same keys.
    let v2 = keyring.add_staged().unwrap();
    keyring.promote(v2).unwrap();
    g.bench_function("tokenward_rewrap_batch", |b| {
        b.iter(|| cipher.rewrap_batch(black_box(&envelopes)));
    });
    g.finish();
}

criterion_group!(benches, seal_open, batches);
criterion_main!(benches);
