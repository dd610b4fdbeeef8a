//! Replays the webhook fuzz seed corpora (`fuzz/corpus/webhook_jwt/`,
//! `fuzz/corpus/webhook_body/`) through the fuzz hooks on stable, checks that the seeds named
//! `valid-*` verify (so the corpus keeps reaching the code behind the signature check), then
//! feeds deterministic mutations of the seeds through the same hooks. A hook panics on a
//! broken invariant: the failure message names the input and prints it in hex.
#![cfg(feature = "webhooks")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    reason = "test code"
)]

use tokenward_plaid::webhooks::fuzzing;
use tokenward_testkit::corpus::{Hook, Rng, run, seeds};

/// Mutated inputs per target (each `webhook_jwt` input costs an ECDSA verification).
const MUTATIONS_PER_TARGET: usize = 1500;

/// Fragments that matter to a JWT and a webhook body.
const FRAGMENTS: [&[u8]; 14] = [
    b".",
    b"\n",
    b"=",
    b"eyJhbGciOiJub25lIn0",
    b"eyJhbGciOiJFUzI1NiIsImtpZCI6ImZ1enota2V5LTEifQ",
    b"\"webhook_type\":\"ITEM\",",
    b"\"webhook_code\":\"ERROR\",",
    b"\"error\":null,",
    b"\"new_transactions\":-1,",
    b"\\ud800",
    b"1e400",
    b"{\"a\":[",
    b"]}",
    b"\xff",
];

fn mutate(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    match rng.below(6) {
        0 if !out.is_empty() => {
            let at = rng.below(out.len());
            out[at] ^= 1 << rng.below(8);
        }
        1 => out.truncate(rng.below(out.len() + 1)),
        2 => {
            let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
            let at = rng.below(out.len() + 1);
            out.splice(at..at, fragment.iter().copied());
        }
        3 if out.len() >= 2 => {
            let start = rng.below(out.len());
            let end = start + rng.below((out.len() - start + 1).min(16));
            out.drain(start..end);
        }
        4 if !out.is_empty() => {
            let start = rng.below(out.len());
            let end = start + rng.below(out.len() - start + 1).min(64);
            let copy = out[start..end].to_vec();
            let at = rng.below(out.len() + 1);
            out.splice(at..at, copy);
        }
        _ => out.extend((0..=rng.below(16)).map(|_| rng.byte())),
    }
    out
}

fn replay(target: &str, hook: Hook) {
    for (name, data) in seeds(env!("CARGO_MANIFEST_DIR"), target) {
        run(target, hook, &name, &data);
    }
}

fn mutate_and_run(target: &str, hook: Hook, seed: u64) {
    let seeds = seeds(env!("CARGO_MANIFEST_DIR"), target);
    let mut rng = Rng::new(seed);
    for i in 0..MUTATIONS_PER_TARGET {
        let (name, data) = &seeds[rng.below(seeds.len())];
        let mut input = mutate(&mut rng, data);
        for _ in 0..rng.below(3) {
            input = mutate(&mut rng, &input);
        }
        run(target, hook, &format!("mutation {i} of {name}"), &input);
    }
}

#[test]
fn webhook_jwt_corpus() {
    replay("webhook_jwt", fuzzing::verify_jwt);
}

#[test]
fn webhook_body_corpus() {
    replay("webhook_body", fuzzing::parse_body);
}

#[test]
fn valid_jwt_seeds_verify_and_the_others_do_not() {
    let mut valid = 0;
    for (name, data) in seeds(env!("CARGO_MANIFEST_DIR"), "webhook_jwt") {
        let outcome = fuzzing::verify_jwt_result(&data);
        if name.starts_with("valid-but-malformed-body") {
            assert!(
                matches!(
                    outcome,
                    Err(tokenward_plaid::webhooks::VerifyError::MalformedBody(_))
                ),
                "{name}: {outcome:?}"
            );
        } else if name.starts_with("valid-") {
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
            valid += 1;
        } else {
            assert!(outcome.is_err(), "{name} verified");
        }
    }
    assert!(valid >= 5);
}

#[test]
fn webhook_jwt_mutations() {
    mutate_and_run("webhook_jwt", fuzzing::verify_jwt, 0x7477_0201);
}

#[test]
fn webhook_body_mutations() {
    mutate_and_run("webhook_body", fuzzing::parse_body, 0x7477_0202);
}
