//! tokenward quick start: seal a Plaid access token, open it, rotate the key and rewrap.
//!
//! Run with `cargo run --example quickstart`. Needs no configuration: it generates a keyring in
//! memory. Every line it prints is safe to log: tokens appear only as redacted placeholders.
#![allow(
    clippy::print_stdout,
    reason = "an example talks to its user on stdout"
)]

use std::error::Error;
use std::sync::Arc;

use secrecy::ExposeSecret as _;
use tokenward::envelope::{Cipher, Context, Envelope, EnvelopeError, Keyring, peek_kek_version};

fn main() -> Result<(), Box<dyn Error>> {
    // A sandbox access token as Plaid shapes them: access-<env>-<uuid>, 51 bytes.
    let token = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";

    step("generate a keyring (KEK version 1, held in memory)");
    let keyring = Arc::new(Keyring::generate()?);
    let cipher = Cipher::new(Arc::clone(&keyring));
    println!("    {keyring:?}");

    step("seal the token, bound to the Item and user it belongs to");
    let ctx = Context::new()
        .with("item_id", "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6")?
        .with("user_id", "user-42")?
        .with("purpose", "plaid.access_token")?;
    let column = cipher.seal(token.as_bytes(), &ctx)?.to_text();
    println!(
        "    stored column ({} chars): {}…",
        column.len(),
        column.get(..40).unwrap_or(&column)
    );
    println!(
        "    KEK version, read without decrypting: {}",
        peek_kek_version(&column)?
    );

    step("open it with the same context");
    let envelope = Envelope::from_text(&column)?;
    let opened = cipher.open_str(&envelope, &ctx)?;
    assert_eq!(opened.expose_secret(), token);
    println!(
        "    opened {opened:?}: {} bytes, matches the original",
        opened.expose_secret().len()
    );

    step("a wrong context fails: the envelope copied to another user's row");
    let other = Context::new()
        .with("item_id", "eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6")?
        .with("user_id", "user-43")?
        .with("purpose", "plaid.access_token")?;
    report(cipher.open(&envelope, &other).map(drop));

    step("a tampered envelope fails: one bit flipped in the ciphertext");
    let mut bytes = envelope.as_bytes().to_vec();
    if let Some(b) = bytes.last_mut() {
        *b ^= 0x01;
    }
    report(cipher.open(&Envelope::from_bytes(&bytes)?, &ctx).map(drop));

    step("rotate the KEK in two phases: stage version 2 everywhere, then promote it");
    let v2 = keyring.add_staged()?;
    keyring.promote(v2)?;
    println!("    {keyring:?}");
    println!("    needs rewrap: {}", cipher.needs_rewrap(&envelope));

    step("rewrap: only the wrapped DEK changes, the data ciphertext is the same bytes");
    let rewrapped = cipher.rewrap(&envelope)?;
    let (old_data, new_data) = (envelope.sealed_data(), rewrapped.sealed_data());
    assert_eq!(old_data, new_data);
    println!(
        "    KEK {} -> {}; data ciphertext unchanged ({} bytes)",
        envelope.kek_version(),
        rewrapped.kek_version(),
        new_data.len()
    );
    assert_eq!(cipher.open_str(&rewrapped, &ctx)?.expose_secret(), token);
    println!(
        "    the rewrapped envelope opens; needs rewrap: {}",
        cipher.needs_rewrap(&rewrapped)
    );

    step("retire version 1: the old envelope no longer opens");
    keyring.disable(envelope.kek_version())?;
    report(cipher.open(&envelope, &ctx).map(drop));

    println!("\nquick start finished: every step behaved as expected");
    Ok(())
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn report(result: Result<(), EnvelopeError>) {
    match result {
        Ok(()) => println!("    unexpectedly opened!"),
        Err(e) => println!("    refused, as it should be: {e}"),
    }
}
