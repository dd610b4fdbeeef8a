//! `tokenward rewrap`: the KEK rewrap job, with a progress bar, resumable, verified.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokenward_rotation::rewrap::{Progress, RewrapPolicy, RewrapState};
use tokenward_rotation::{
    JobStore, JobStoreError, KekError, RewrapRunner, Timestamp, VaultJobStore,
};
use tokenward_vault::{JobId, SqlVault, Vault};

use crate::cli::RewrapArgs;
use crate::config::Global;
use crate::failure::{Code, Failure};
use crate::keys::write_stdout;

pub(crate) async fn run(global: &Global, args: RewrapArgs) -> Result<(), Failure> {
    if args.batch_size == 0 {
        return Err(Failure::new(Code::Usage, "--batch-size must be at least 1"));
    }
    if args.max_batches == Some(0) {
        return Err(Failure::new(
            Code::Usage,
            "--max-batches must be at least 1",
        ));
    }
    let job_id = JobId::new(args.job_id.as_str())
        .map_err(|e| Failure::caused(Code::Usage, "--job-id", &e))?;
    let cipher = global.cipher()?;
    let vault = global.open_vault(cipher).await?;
    let result = rewrap(&vault, &args, job_id).await;
    vault.close().await;
    result
}

async fn rewrap(vault: &SqlVault, args: &RewrapArgs, job_id: JobId) -> Result<(), Failure> {
    let keyring = vault.cipher().keyring();
    let Some(primary) = keyring.primary_version() else {
        return Err(Failure::new(Code::Config, "the keyring has no primary key"));
    };
    if args.dry_run {
        // Per version, which the runner's plan (a total) does not give.
        let mut under = Vec::new();
        for info in keyring.keys() {
            if info.version != primary {
                let count = vault
                    .envelopes_under(info.version)
                    .await
                    .map_err(|e| Failure::caused(Code::Vault, "vault", &e))?;
                under.push((info.version, count));
            }
        }
        let total: u64 = under.iter().map(|(_, n)| n).sum();
        let mut text = format!(
            "dry run: {total} envelope(s) would be rewrapped to key {primary}; nothing changed\n"
        );
        for (version, count) in &under {
            let _ = writeln!(text, "  key {version}: {count} envelope(s)");
        }
        return write_stdout(text.as_bytes());
    }

    let saved = vault
        .rewrap_job(&job_id)
        .await
        .map_err(|e| Failure::caused(Code::Vault, "vault", &e))?;
    if let Some(job) = saved.as_ref().filter(|job| job.finished_at.is_none()) {
        write_stdout(
            format!(
                "resuming rewrap job {}: {} after {} batch(es), {} rewrapped so far\n",
                job.job_id, job.state, job.batches, job.rewrapped
            )
            .as_bytes(),
        )?;
    }

    let bar = progress_bar();
    let shown = bar.clone();
    let callback = Arc::new(move |progress: &Progress| {
        shown.set_length(progress.planned.max(1));
        shown.set_position(
            progress
                .rewrapped
                .saturating_add(progress.skipped)
                .saturating_add(progress.failed),
        );
    });
    let store = StopAfter {
        inner: VaultJobStore::new(vault, job_id),
        max_batches: args.max_batches,
        batches: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
    };
    let runner = RewrapRunner::new(vault, &store)
        .with_policy(RewrapPolicy {
            batch_size: args.batch_size,
            ..RewrapPolicy::default()
        })
        .with_progress(callback);
    let outcome = runner.run().await;
    bar.finish_and_clear();
    let state = match outcome {
        Ok(state) => state,
        Err(KekError::Store(JobStoreError::Conflict)) if store.stopped.load(Ordering::SeqCst) => {
            let batches = store.batches.load(Ordering::SeqCst);
            return Err(Failure::new(
                Code::Incomplete,
                format!(
                    "stopped after {batches} batch(es) as asked (--max-batches); the job is saved: rerun tokenward rewrap to resume"
                ),
            ));
        }
        Err(error) => return Err(kek_failure(&error)),
    };
    finish(&state)
}

/// Reports the job's end: completed and verified, paused, or stopped.
fn finish(state: &RewrapState) -> Result<(), Failure> {
    match state {
        // The job completes only once its verification found nothing left under older
        // versions and a sample opened.
        RewrapState::Completed {
            target, progress, ..
        } => write_stdout(
            format!(
                "completed: {} rewrapped, {} skipped, {} failed in {} batch(es) to key {target}\nverified: 0 envelope(s) left under older versions; a sample opened\n",
                progress.rewrapped, progress.skipped, progress.failed, progress.batches
            )
            .as_bytes(),
        ),
        RewrapState::Paused {
            reason, progress, ..
        } => Err(Failure::new(
            Code::Incomplete,
            format!(
                "the rewrap job paused ({}) after {} batch(es), {} rewrapped, {} failed; fix the cause and rerun to resume",
                reason.name(),
                progress.batches,
                progress.rewrapped,
                progress.failed
            ),
        )),
        other => Err(Failure::new(
            Code::Incomplete,
            format!(
                "the rewrap job stopped in state {}; rerun to resume",
                other.name()
            ),
        )),
    }
}

fn kek_failure(error: &KekError) -> Failure {
    match error {
        KekError::Job(why) => Failure::new(
            Code::Refused,
            format!(
                "rewrap: the saved job cannot go on ({why}); start a new one with another --job-id"
            ),
        ),
        KekError::NoPrimary | KekError::Keyring(_) => {
            Failure::caused(Code::Config, "rewrap", error)
        }
        KekError::Refused(_) => Failure::caused(Code::Refused, "rewrap", error),
        _ => Failure::caused(Code::Vault, "rewrap", error),
    }
}

/// A bar on stderr, hidden when stderr is not a terminal.
fn progress_bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(1), target);
    if let Ok(style) =
        ProgressStyle::with_template("rewrap {bar:40} {pos}/{len} envelopes ({per_sec}, eta {eta})")
    {
        bar.set_style(style);
    }
    bar
}

/// The vault's job store, stopping the run after `max_batches` batches of this run: the
/// save after the last batch lands, then the runner is told to stop (as after a crash, the
/// job resumes from that save).
struct StopAfter<'a> {
    inner: VaultJobStore<'a>,
    max_batches: Option<u64>,
    batches: AtomicU64,
    stopped: AtomicBool,
}

#[async_trait]
impl JobStore for StopAfter<'_> {
    async fn load(&self) -> Result<Option<RewrapState>, JobStoreError> {
        self.inner.load().await
    }

    async fn save(&self, job: &RewrapState, now: Timestamp) -> Result<(), JobStoreError> {
        self.inner.save(job, now).await?;
        // A save of `Running` with a cursor follows a batch.
        if let RewrapState::Running {
            cursor: Some(_), ..
        } = job
        {
            let done = self.batches.fetch_add(1, Ordering::SeqCst) + 1;
            if self.max_batches.is_some_and(|max| done >= max) {
                self.stopped.store(true, Ordering::SeqCst);
                return Err(JobStoreError::Conflict);
            }
        }
        Ok(())
    }
}
