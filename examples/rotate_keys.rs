//! Rotate the key-encryption key of a vault with many envelopes, with a progress bar.
//!
//! ```text
//! cargo run --release --example rotate_keys                       # 20,000 Items, temp dir
//! cargo run --release --example rotate_keys -- --items 100000 --batch 1000
//! cargo run --release --example rotate_keys -- --vault ./demo.sqlite3
//! ```
//!
//! The run:
//! 1. seeds an `SQLite` vault with `--items` Items (default 20,000), each holding a made-up
//!    sandbox access token sealed under KEK version 1;
//! 2. stages KEK version 2 and promotes it (new seals use it at once; old envelopes still
//!    open under version 1, which is now decrypt-only);
//! 3. runs the rewrap job (`tokenward_rotation::RewrapRunner`): batches of `--batch`
//!    envelopes (default 500) get their DEK re-wrapped under version 2, the token
//!    ciphertext untouched; the job's progress callback drives the progress bar, and its
//!    state is saved in the vault after every batch, so an interrupted job resumes;
//! 4. verifies: no envelope is left under version 1, all are under version 2, and a sample
//!    of Items opens to the token that was sealed;
//! 5. disables version 1 (refused while any envelope still needs it) and prints a summary.
//!
//! Options (flags win over the environment):
//!
//! | flag | environment | default |
//! |---|---|---|
//! | `--items N` | `TOKENWARD_ROTATE_KEYS_ITEMS` | 20000 |
//! | `--batch N` | `TOKENWARD_ROTATE_KEYS_BATCH` | 500 |
//! | `--vault PATH` | `TOKENWARD_ROTATE_KEYS_VAULT` | a file in a temporary directory |
//!
//! With `--vault PATH` the vault is kept, and its keyring beside it as `PATH.keyring.json`
//! (readable by its owner only), saved before every step that changes it. Run the same
//! command again after an interruption (Ctrl-C, a crash) and it resumes from those two files:
//! only the missing Items are seeded, the promotion is not repeated, and the rewrap job goes
//! on from its saved cursor. Nothing secret is printed: the output names versions and counts,
//! never a token or a key.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example talks to its user on stdout and reports failure on stderr"
)]

use std::error::Error;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokenward_envelope::{Cipher, KeyState, KeyVersion, Keyring};
use tokenward_redact::{AccessToken, Policy};
use tokenward_rotation::rewrap::{Progress, RewrapPolicy, RewrapState};
use tokenward_rotation::{KekManager, RewrapRunner, VaultJobStore};
use tokenward_vault::{AuditNote, ItemId, JobId, SqlVault, Timestamp, UserId, Vault};

/// Errors of the run: every library error here is secret-free by design.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Items seeded when no count is given.
pub const DEFAULT_ITEMS: u64 = 20_000;
/// Envelopes per rewrap batch when no size is given.
pub const DEFAULT_BATCH: u32 = 500;

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How many Items to seed.
    pub items: u64,
    /// Envelopes per rewrap batch.
    pub batch: u32,
    /// The vault file to create; `None` for one in a temporary directory.
    pub vault: Option<PathBuf>,
    /// Draw progress bars (on stderr); off in tests.
    pub progress_bars: bool,
}

/// What the run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Items seeded.
    pub items: u64,
    /// The KEK version the Items were sealed under (disabled at the end).
    pub old_kek: KeyVersion,
    /// The KEK version every envelope is under at the end.
    pub new_kek: KeyVersion,
    /// The job's counters.
    pub progress: Progress,
    /// How many times the job reported progress (each moved the bar).
    pub progress_reports: u64,
    /// Where the bar stood at the end.
    pub bar_position: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match Options::parse(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("rotate_keys: {error}");
            eprintln!("usage: rotate_keys [--items N] [--batch N] [--vault PATH]");
            return std::process::ExitCode::from(2);
        }
    };
    match start(&options).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let scrubber = Policy::plaid();
            eprintln!(
                "rotate_keys failed: {}",
                scrubber.scrub_text(&error.to_string())
            );
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start(options: &Options) -> Result<(), BoxError> {
    let mut stdout = io::stdout().lock();
    let Some(path) = &options.vault else {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("vault.sqlite3");
        run(&mut stdout, options, &path, Arc::new(Keyring::generate()?)).await?;
        return Ok(());
    };
    // A vault and its keyring from an earlier, interrupted run: resume it.
    let keyring_path = keyring_path(path);
    let keyring = match (path.exists(), keyring_path.exists()) {
        (false, false) => Keyring::generate()?,
        (true, true) => Keyring::load_file(&keyring_path)?,
        (true, false) => {
            return Err(format!(
                "{} exists without its keyring {}; give a new vault path",
                path.display(),
                keyring_path.display()
            )
            .into());
        }
        (false, true) => {
            return Err(format!(
                "{} exists without its vault; give a new vault path",
                keyring_path.display()
            )
            .into());
        }
    };
    run(&mut stdout, options, path, Arc::new(keyring)).await?;
    writeln!(
        stdout,
        "vault kept at {}; its keyring at {} (owner-only)",
        path.display(),
        keyring_path.display()
    )?;
    Ok(())
}

impl Options {
    /// Options from command-line arguments (without the program name), then `env` for what
    /// the flags leave out.
    ///
    /// # Errors
    ///
    /// An unknown flag, a missing value, or a count that is not a positive number.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Options, BoxError> {
        let (mut items, mut batch, mut vault) = (None, None, None);
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--items" => items = Some(value()?),
                "--batch" => batch = Some(value()?),
                "--vault" => vault = Some(value()?),
                other => return Err(format!("unknown argument `{other}`").into()),
            }
        }
        let items = items.or_else(|| env("TOKENWARD_ROTATE_KEYS_ITEMS"));
        let batch = batch.or_else(|| env("TOKENWARD_ROTATE_KEYS_BATCH"));
        let vault = vault.or_else(|| env("TOKENWARD_ROTATE_KEYS_VAULT"));
        Ok(Options {
            items: positive("item count", items.as_deref(), DEFAULT_ITEMS)?,
            batch: positive("batch size", batch.as_deref(), DEFAULT_BATCH)?,
            vault: vault.filter(|v| !v.is_empty()).map(PathBuf::from),
            progress_bars: true,
        })
    }
}

/// Seeds, rotates, rewraps, verifies and disables, writing a short log to `out`.
///
/// # Errors
///
/// The first step that fails, or a verification that does not hold.
pub async fn run(
    out: &mut dyn Write,
    options: &Options,
    vault_path: &Path,
    keyring: Arc<Keyring>,
) -> Result<Summary, BoxError> {
    // With a vault path the keyring is kept beside it, saved before every step that changes
    // it, so that an interrupted run can be resumed.
    let keyring_file = options.vault.as_ref().map(|_| keyring_path(vault_path));
    let save_keyring = || save(&keyring, keyring_file.as_deref());
    save_keyring()?;
    let vault = SqlVault::sqlite_file(vault_path, Cipher::new(Arc::clone(&keyring))).await?;
    let old = keyring
        .keys()
        .iter()
        .map(|k| k.version)
        .min()
        .ok_or("the keyring has no key")?;
    writeln!(
        out,
        "vault: SQLite at {}; keyring: {}",
        vault_path.display(),
        describe(&keyring)
    )?;

    // 1. Seed (Items are numbered: a resumed run adds only the missing ones).
    let started = Instant::now();
    let present: u64 = vault
        .count_by_kek_version()
        .await?
        .iter()
        .map(|c| c.1)
        .sum();
    seed(&vault, options, present).await?;
    writeln!(
        out,
        "1. seeded {} Items under KEK {} in {:.1} s ({present} already there)",
        options.items.saturating_sub(present),
        keyring.primary_version().ok_or("no primary KEK")?,
        started.elapsed().as_secs_f64()
    )?;
    let items = present.max(options.items);

    // 2. Stage and promote the new version (once: a resumed run finds it promoted).
    let kek = KekManager::load(&vault).await?;
    let (new, when) = if keyring.keys().len() == 1 {
        // Saved in the vault phase by phase (staged, then promoted), as it happens.
        let new = kek.promote_new_primary().await?;
        save_keyring()?;
        (new, "now")
    } else {
        let new = keyring.primary_version().ok_or("no primary KEK")?;
        (new, "by an earlier run")
    };
    writeln!(
        out,
        "2. KEK {new} staged and promoted {when}; {old} is {} and protects {} envelope(s)",
        state_of(&keyring, old).map_or_else(|| "gone".to_owned(), |state| state.to_string()),
        vault.envelopes_under(old).await?
    )?;

    // 3. Rewrap, the job's progress driving the bar.
    let started = Instant::now();
    let (done, progress_reports, bar_position) = rewrap(&vault, options, new).await?;
    let progress = done.progress();
    let RewrapState::Completed { .. } = done else {
        return Err(format!("the rewrap job ended {}, not completed", done.name()).into());
    };
    let seconds = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "3. rewrap job completed: {} rewrapped, {} skipped, {} failed, {} batch(es) of up to \
         {}, in {seconds:.1} s",
        progress.rewrapped, progress.skipped, progress.failed, progress.batches, options.batch
    )?;

    // 4. Verify.
    let sampled = verify(&vault, old, new, items).await?;
    writeln!(
        out,
        "4. verified: 0 envelopes under {old}, {items} under {new}; {sampled} sampled Items \
         open to their tokens"
    )?;

    // 5. Retire the old version.
    if state_of(&keyring, old) != Some(KeyState::Disabled) {
        kek.disable(old).await?;
        save_keyring()?;
    }
    if state_of(&keyring, old) != Some(KeyState::Disabled) {
        return Err(format!("{old} is not disabled after disable").into());
    }
    writeln!(
        out,
        "5. KEK {old} disabled; {new} is the only version in use"
    )?;
    writeln!(
        out,
        "summary: {items} Items, KEK {old} -> {new}, {} envelopes rewrapped in {} batch(es) ({:.0} \
         envelopes/s)",
        progress.rewrapped,
        progress.batches,
        per_second(progress.rewrapped, seconds)
    )?;
    vault.close().await;
    Ok(Summary {
        items,
        old_kek: old,
        new_kek: new,
        progress,
        progress_reports,
        bar_position,
    })
}

/// Seeds Items `present..options.items`, each with its own made-up token, with a progress bar.
async fn seed(vault: &SqlVault, options: &Options, present: u64) -> Result<(), BoxError> {
    let bar = new_bar(options, options.items, "seeding ")?;
    bar.set_position(present);
    let note = AuditNote::new("rotate_keys", "seeded")?;
    let now = Timestamp::from_system_time(SystemTime::now()).ok_or("the clock is before 1970")?;
    for n in present..options.items {
        let token = demo_token(n)?;
        vault
            .insert_item(&item_id(n)?, &user_id(n)?, &token, &note, now)
            .await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Runs the rewrap job to its end, its progress callback driving a bar; the final state, how
/// many progress reports came, and where the bar stood.
async fn rewrap(
    vault: &SqlVault,
    options: &Options,
    target: KeyVersion,
) -> Result<(RewrapState, u64, u64), BoxError> {
    let bar = Arc::new(new_bar(options, 0, "rewrapping ")?);
    let reports = Arc::new(AtomicU64::new(0));
    let (progress_bar, progress_reports) = (Arc::clone(&bar), Arc::clone(&reports));
    // The job's state is saved in the vault after every batch, under this id: a run cut
    // short resumes where it stopped.
    let store = VaultJobStore::new(vault, JobId::new(format!("rotate-keys-{target}"))?);
    let runner = RewrapRunner::new(vault, &store)
        .with_policy(RewrapPolicy {
            batch_size: options.batch,
            ..RewrapPolicy::default()
        })
        .with_progress(Arc::new(move |p: &Progress| {
            progress_bar.set_length(p.planned);
            progress_bar.set_position(p.rewrapped + p.skipped + p.failed);
            progress_reports.fetch_add(1, Ordering::Relaxed);
        }));
    let done = runner.run().await?;
    let position = bar.position();
    bar.finish_and_clear();
    Ok((done, reports.load(Ordering::Relaxed), position))
}

/// No envelope left under `old`, all `items` under `new`, and a sample opens to the tokens
/// that were sealed; how many were sampled.
async fn verify(
    vault: &SqlVault,
    old: KeyVersion,
    new: KeyVersion,
    items: u64,
) -> Result<usize, BoxError> {
    let left = vault.envelopes_under(old).await?;
    let moved = vault.envelopes_under(new).await?;
    if left != 0 || moved != items {
        return Err(format!(
            "verification failed: {left} envelope(s) left under {old}, {moved} under {new}"
        )
        .into());
    }
    let sample = sample(items);
    for &n in &sample {
        let stored = vault.get(&item_id(n)?).await?;
        if stored.token != demo_token(n)? {
            return Err(format!("verification failed: Item {} opened wrong", item_id(n)?).into());
        }
    }
    Ok(sample.len())
}

/// Saves the keyring to `file`, if there is one.
fn save(keyring: &Keyring, file: Option<&Path>) -> Result<(), BoxError> {
    if let Some(file) = file {
        keyring.save_file(file)?;
    }
    Ok(())
}

fn state_of(keyring: &Keyring, version: KeyVersion) -> Option<KeyState> {
    keyring
        .keys()
        .into_iter()
        .find(|k| k.version == version)
        .map(|k| k.state)
}

/// The versions and their states, e.g. `v1 decrypt-only, v2 primary`.
fn describe(keyring: &Keyring) -> String {
    keyring
        .keys()
        .iter()
        .map(|k| format!("KEK {} {}", k.version, k.state))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keyring file kept beside a vault given by path: `PATH.keyring.json`.
#[must_use]
pub fn keyring_path(vault: &Path) -> PathBuf {
    let mut name = vault.as_os_str().to_owned();
    name.push(".keyring.json");
    PathBuf::from(name)
}

/// A progress bar on stderr, or a hidden one that still counts.
fn new_bar(options: &Options, length: u64, prefix: &'static str) -> Result<ProgressBar, BoxError> {
    let bar = ProgressBar::with_draw_target(
        Some(length),
        if options.progress_bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(ProgressStyle::with_template(
        "{prefix}[{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
    )?);
    bar.set_prefix(prefix);
    Ok(bar)
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    what: &str,
    value: Option<&str>,
    default: T,
) -> Result<T, BoxError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(format!("the {what} must be a positive whole number, not `{value}`").into()),
    }
}

/// The first, middle and last Items, and a few between.
fn sample(items: u64) -> Vec<u64> {
    let mut sample: Vec<u64> = (0..=8).map(|i| items.saturating_sub(1) * i / 8).collect();
    sample.dedup();
    sample
}

/// The id of Item number `n`.
///
/// # Errors
///
/// Never for these ids; the type checks every id.
pub fn item_id(n: u64) -> Result<ItemId, BoxError> {
    Ok(ItemId::new(format!("item-{n:08}"))?)
}

/// The user of Item number `n` (ten thousand users).
///
/// # Errors
///
/// Never for these ids; the type checks every id.
pub fn user_id(n: u64) -> Result<UserId, BoxError> {
    Ok(UserId::new(format!("user-{:05}", n % 10_000))?)
}

/// A made-up sandbox access token, unique per Item and shaped like Plaid's.
///
/// # Errors
///
/// Never for these tokens; the type checks every token.
pub fn demo_token(n: u64) -> Result<AccessToken, BoxError> {
    Ok(AccessToken::new(format!(
        "access-sandbox-{:08x}-0000-4000-8000-{:012x}",
        n >> 32,
        n & 0xffff_ffff_ffff
    ))?)
}

#[allow(
    clippy::cast_precision_loss,
    reason = "a rate for display; envelope counts are far below 2^52"
)]
fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}
