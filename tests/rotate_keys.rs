//! The `rotate_keys` example, run with a small count: every envelope moves to the new KEK,
//! the progress callback drives the bar to the end, the old KEK ends disabled, and the options
//! parse strictly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs,
    reason = "test code: failures should be loud"
)]

#[allow(
    dead_code,
    unreachable_pub,
    reason = "the example's `main` and its binary-only functions are not called here"
)]
#[path = "../examples/rotate_keys.rs"]
mod rotate_keys;

use std::collections::HashMap;
use std::sync::Arc;

use rotate_keys::{DEFAULT_BATCH, DEFAULT_ITEMS, Options};
use tokenward_envelope::{Cipher, KeyState, KeyVersion, Keyring};
use tokenward_vault::{AuditEvent, AuditNote, SqlVault, Timestamp, Vault};

const ITEMS: u64 = 300;
const BATCH: u32 = 64;

#[tokio::test]
async fn a_small_vault_is_rewrapped_and_the_old_kek_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.sqlite3");
    let keyring = Arc::new(Keyring::generate().unwrap());
    let options = Options {
        items: ITEMS,
        batch: BATCH,
        vault: Some(path.clone()),
        progress_bars: false,
    };
    let mut out = Vec::new();
    let summary = rotate_keys::run(&mut out, &options, &path, Arc::clone(&keyring))
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();

    // What the run says it did.
    assert_eq!(summary.items, ITEMS);
    assert!(summary.new_kek > summary.old_kek, "{summary:?}");
    assert_eq!(summary.progress.rewrapped, ITEMS, "{summary:?}");
    assert_eq!(summary.progress.failed, 0);
    let min_batches = ITEMS.div_ceil(u64::from(BATCH));
    assert!(summary.progress.batches >= min_batches, "{summary:?}");
    assert!(
        summary.progress_reports >= min_batches,
        "the callback ran once per batch at least: {summary:?}"
    );
    assert_eq!(summary.bar_position, ITEMS, "the bar reached the end");

    // What the store and the keyring say, read independently.
    let vault = SqlVault::sqlite_file(&path, Cipher::new(Arc::clone(&keyring)))
        .await
        .unwrap();
    assert_eq!(vault.envelopes_under(summary.old_kek).await.unwrap(), 0);
    assert_eq!(vault.envelopes_under(summary.new_kek).await.unwrap(), ITEMS);
    assert_eq!(
        vault.count_by_kek_version().await.unwrap(),
        vec![(summary.new_kek, ITEMS)]
    );
    let states: HashMap<_, _> = keyring
        .keys()
        .into_iter()
        .map(|k| (k.version, k.state))
        .collect();
    assert_eq!(states.get(&summary.old_kek), Some(&KeyState::Disabled));
    assert_eq!(states.get(&summary.new_kek), Some(&KeyState::Primary));
    assert_eq!(keyring.primary_version(), Some(summary.new_kek));
    // Every Item opens under the new version (the old one is disabled, so nothing else could).
    let mut after = None;
    let mut opened = 0;
    loop {
        let page = vault
            .list_by_kek_version(summary.new_kek, after.as_ref(), 100)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.item_id.clone());
        for record in &page {
            let stored = vault.get(&record.item_id).await.unwrap();
            assert!(stored.token.expose_secret().starts_with("access-sandbox-"));
            opened += 1;
        }
    }
    assert_eq!(opened, ITEMS);
    assert_kek_records_in_order(&vault, summary.old_kek, summary.new_kek).await;
    vault.close().await;

    // The log: five numbered steps and a summary; counts, never a token.
    for step in [
        "1. seeded 300 Items",
        "2. KEK",
        "3. rewrap job completed: 300 rewrapped",
        "4. verified",
        "5. KEK",
    ] {
        assert!(text.contains(step), "missing `{step}` in:\n{text}");
    }
    assert!(text.contains("summary: 300 Items"), "{text}");
    for shape in [
        "access-sandbox-",
        "access-production-",
        "[REDACTED",
        "\"material\"",
    ] {
        assert!(!text.contains(shape), "`{shape}` in the output:\n{text}");
    }
}

/// The KEK records in the order they happened: the first key as found, the new one staged
/// then promoted (the old one decrypt-only), and the old one disabled last.
async fn assert_kek_records_in_order(vault: &SqlVault, old: KeyVersion, new: KeyVersion) {
    let (old, new) = (old.get(), new.get());
    let kek_records: Vec<(String, String, String)> = vault
        .audit_since(Timestamp::EPOCH, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.event == AuditEvent::KekState)
        .map(|r| {
            (
                r.reason.split(':').next().unwrap_or_default().to_owned(),
                r.from_state.unwrap_or_default(),
                r.to_state.unwrap_or_default(),
            )
        })
        .collect();
    let expected = [
        (format!("kek {old}"), "absent", "primary"),
        (format!("kek {new}"), "absent", "staged"),
        (format!("kek {old}"), "primary", "decrypt_only"),
        (format!("kek {new}"), "staged", "primary"),
        (format!("kek {old}"), "decrypt_only", "disabled"),
    ]
    .map(|(v, from, to)| (v, from.to_owned(), to.to_owned()));
    assert_eq!(kek_records, expected);
}

/// A run cut short (100 of 150 Items seeded, the new KEK promoted, one rewrap batch done)
/// is resumed from the vault and the keyring file beside it: only the missing Items are
/// seeded, the promotion is not repeated, only what is left is rewrapped. A further run
/// finds nothing to do.
#[tokio::test]
async fn an_interrupted_run_resumes_from_the_vault_and_its_keyring_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.sqlite3");
    let keyring_file = rotate_keys::keyring_path(&path);

    // The interrupted run.
    let keyring = Arc::new(Keyring::generate().unwrap());
    let old = keyring.primary_version().unwrap();
    let vault = SqlVault::sqlite_file(&path, Cipher::new(Arc::clone(&keyring)))
        .await
        .unwrap();
    let note = AuditNote::new("test", "seeded").unwrap();
    for n in 0..100 {
        let token = rotate_keys::demo_token(n).unwrap();
        let (item, user) = (
            rotate_keys::item_id(n).unwrap(),
            rotate_keys::user_id(n).unwrap(),
        );
        vault
            .insert_item(&item, &user, &token, &note, Timestamp::from_unix_millis(1))
            .await
            .unwrap();
    }
    let new = keyring.add_staged().unwrap();
    keyring.promote(new).unwrap();
    let batch = vault
        .rewrap_batch(None, 40, Timestamp::from_unix_millis(2))
        .await
        .unwrap();
    assert_eq!(batch.rewrapped, 40);
    keyring.save_file(&keyring_file).unwrap();
    vault.close().await;
    drop(vault);

    // The resumed run, from the files alone.
    let options = Options {
        items: 150,
        batch: 16,
        vault: Some(path.clone()),
        progress_bars: false,
    };
    let loaded = Arc::new(Keyring::load_file(&keyring_file).unwrap());
    let mut out = Vec::new();
    let summary = rotate_keys::run(&mut out, &options, &path, Arc::clone(&loaded))
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("1. seeded 50 Items"), "{text}");
    assert!(text.contains("(100 already there)"), "{text}");
    assert!(text.contains("promoted by an earlier run"), "{text}");
    assert_eq!((summary.old_kek, summary.new_kek), (old, new));
    assert_eq!(summary.items, 150);
    assert_eq!(
        summary.progress.rewrapped, 60,
        "only the 60 left under the old KEK: {summary:?}"
    );
    assert_eq!(loaded.keys().len(), 2, "no third version");

    // The keyring file was kept up to date: the old version is disabled in it.
    let saved = Keyring::load_file(&keyring_file).unwrap();
    let states: HashMap<_, _> = saved
        .keys()
        .into_iter()
        .map(|k| (k.version, k.state))
        .collect();
    assert_eq!(states.get(&old), Some(&KeyState::Disabled));
    assert_eq!(states.get(&new), Some(&KeyState::Primary));
    let vault = SqlVault::sqlite_file(&path, Cipher::new(Arc::new(saved)))
        .await
        .unwrap();
    assert_eq!(vault.envelopes_under(new).await.unwrap(), 150);
    assert_eq!(vault.envelopes_under(old).await.unwrap(), 0);
    vault.close().await;
    drop(vault);

    // Once more: nothing to seed, nothing to rewrap, still verified.
    let mut out = Vec::new();
    let again = rotate_keys::run(
        &mut out,
        &options,
        &path,
        Arc::new(Keyring::load_file(&keyring_file).unwrap()),
    )
    .await
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(again.progress.rewrapped, 0, "{again:?}");
    assert!(text.contains("1. seeded 0 Items"), "{text}");
    assert!(text.contains("4. verified"), "{text}");
}

#[test]
fn options_come_from_flags_then_the_environment_then_defaults() {
    let none = |_: &str| None;
    let defaults = Options::parse(Vec::new(), none).unwrap();
    assert_eq!(
        defaults,
        Options {
            items: DEFAULT_ITEMS,
            batch: DEFAULT_BATCH,
            vault: None,
            progress_bars: true,
        }
    );

    let env = |name: &str| match name {
        "TOKENWARD_ROTATE_KEYS_ITEMS" => Some("50".to_owned()),
        "TOKENWARD_ROTATE_KEYS_VAULT" => Some("demo/vault.sqlite3".to_owned()),
        _ => None,
    };
    let from_env = Options::parse(Vec::new(), env).unwrap();
    assert_eq!(from_env.items, 50);
    assert_eq!(from_env.batch, DEFAULT_BATCH);
    assert_eq!(
        from_env.vault.as_deref(),
        Some(std::path::Path::new("demo/vault.sqlite3"))
    );

    let args = ["--items", "7", "--batch", "3"].map(str::to_owned);
    let from_flags = Options::parse(args, env).unwrap();
    assert_eq!((from_flags.items, from_flags.batch), (7, 3), "flags win");
}

#[test]
fn bad_options_get_clear_errors() {
    let none = |_: &str| None;
    let cases: [(&[&str], &str); 6] = [
        (
            &["--items", "0"],
            "item count must be a positive whole number, not `0`",
        ),
        (&["--items", "-5"], "not `-5`"),
        (
            &["--batch", "lots"],
            "batch size must be a positive whole number",
        ),
        (&["--batch", "99999999999"], "batch size"),
        (&["--items"], "--items needs a value"),
        (&["--rows", "5"], "unknown argument `--rows`"),
    ];
    for (args, expected) in cases {
        let args = args.iter().map(|a| (*a).to_owned());
        let error = Options::parse(args, none).unwrap_err().to_string();
        assert!(error.contains(expected), "{error:?} lacks {expected:?}");
    }
    let env = |name: &str| (name == "TOKENWARD_ROTATE_KEYS_ITEMS").then(|| "many".to_owned());
    let error = Options::parse(Vec::new(), env).unwrap_err().to_string();
    assert!(error.contains("not `many`"), "{error}");
}
