//! Where a rewrap job's state is kept between runs: in the vault ([`VaultJobStore`], what a
//! deployment uses) or in memory ([`MemoryJobStore`], for tests and one-shot tools).

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use tokenward_vault::{JobId, RewrapJobRecord, Vault, WriteError};

use crate::driver::{chrono_of, vault_now};
use crate::rewrap::{Cursor, PauseReason, Progress, RewrapState};
use crate::types::Timestamp;

/// Where a rewrap job's state is kept between runs: the runner saves it after every batch and
/// a restarted runner resumes from the last save.
///
/// A job started from nothing is still correct (each row update is a CAS, so a full rescan
/// only skips), just slower; a saved job resumes at its cursor with its counters.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// The saved job, if any.
    ///
    /// # Errors
    ///
    /// [`JobStoreError`] when the store cannot be read or holds a record that is not a job.
    async fn load(&self) -> Result<Option<RewrapState>, JobStoreError>;

    /// Saves the job; `now` is when.
    ///
    /// # Errors
    ///
    /// [`JobStoreError::Conflict`] when another runner saved the job since this store loaded
    /// or saved it; store failures.
    async fn save(&self, job: &RewrapState, now: Timestamp) -> Result<(), JobStoreError>;
}

/// Why a [`JobStore`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobStoreError {
    /// Another runner saved the job since this one loaded it: this runner stops, the other
    /// carries on.
    #[error("another runner advanced the rewrap job")]
    Conflict,
    /// The saved record is not a job this crate can resume.
    #[error("saved rewrap job is malformed: {0}")]
    Malformed(&'static str),
    /// Reading the vault failed.
    #[error("vault read: {0}")]
    Read(#[source] tokenward_vault::ReadError),
    /// Writing the vault failed.
    #[error("vault write: {0}")]
    Write(#[source] WriteError),
}

/// A [`JobStore`] in memory: a job does not survive the process.
#[derive(Debug, Default)]
pub struct MemoryJobStore(Mutex<Option<RewrapState>>);

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn load(&self) -> Result<Option<RewrapState>, JobStoreError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    async fn save(&self, job: &RewrapState, _now: Timestamp) -> Result<(), JobStoreError> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(job.clone());
        Ok(())
    }
}

/// A [`JobStore`] over the vault's `rewrap_jobs` table, one job per [`JobId`]: the job
/// survives a crash of the process, and a new runner on another vault handle over the same
/// store resumes it at its cursor.
///
/// Saves are compare-and-swapped on the record's revision, which this store remembers from
/// its last load or save: of two runners that loaded the same revision, the second to save
/// gets [`JobStoreError::Conflict`] (so two runners never both advance one job). The runner
/// loads before it saves; a store that never loaded can only create a job not yet saved.
/// A restarted process finds jobs to resume with
/// [`Vault::unfinished_rewrap_jobs`](tokenward_vault::Vault::unfinished_rewrap_jobs).
pub struct VaultJobStore<'a> {
    vault: &'a dyn Vault,
    job_id: JobId,
    revision: Mutex<u64>,
}

impl std::fmt::Debug for VaultJobStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultJobStore")
            .field("job_id", &self.job_id)
            .finish_non_exhaustive()
    }
}

impl<'a> VaultJobStore<'a> {
    /// The store of job `job_id` in `vault`.
    #[must_use]
    pub fn new(vault: &'a dyn Vault, job_id: JobId) -> Self {
        VaultJobStore {
            vault,
            job_id,
            revision: Mutex::new(0),
        }
    }

    /// The job's id.
    #[must_use]
    pub fn job_id(&self) -> &JobId {
        &self.job_id
    }

    fn revision(&self) -> std::sync::MutexGuard<'_, u64> {
        self.revision.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl JobStore for VaultJobStore<'_> {
    async fn load(&self) -> Result<Option<RewrapState>, JobStoreError> {
        let record = self
            .vault
            .rewrap_job(&self.job_id)
            .await
            .map_err(JobStoreError::Read)?;
        *self.revision() = record.as_ref().map_or(0, |r| r.revision);
        record.as_ref().map(state_of).transpose()
    }

    async fn save(&self, job: &RewrapState, now: Timestamp) -> Result<(), JobStoreError> {
        let revision = *self.revision();
        let record = record_of(self.job_id.clone(), revision, job);
        match self.vault.save_rewrap_job(&record, vault_now(now)).await {
            Ok(saved) => {
                *self.revision() = saved.revision;
                Ok(())
            }
            Err(WriteError::VersionConflict { .. }) => Err(JobStoreError::Conflict),
            Err(e) => Err(JobStoreError::Write(e)),
        }
    }
}

/// The vault's plain fields for `job`.
fn record_of(job_id: JobId, revision: u64, job: &RewrapState) -> RewrapJobRecord {
    let progress = job.progress();
    let mut record = RewrapJobRecord::new(job_id, job.name(), job.target());
    record.revision = revision;
    record.planned = progress.planned;
    record.rewrapped = progress.rewrapped;
    record.skipped = progress.skipped;
    record.failed = progress.failed;
    record.batches = progress.batches;
    record.rounds = u64::from(progress.rounds);
    match job {
        RewrapState::Running { cursor, .. } => {
            record.cursor = cursor.as_ref().map(|c| c.as_str().to_owned());
        }
        RewrapState::Paused { cursor, reason, .. } => {
            record.cursor = cursor.as_ref().map(|c| c.as_str().to_owned());
            record.reason = Some(reason.name().to_owned());
        }
        RewrapState::Completed { at, .. } => record.finished_at = Some(vault_now(*at)),
        RewrapState::Planned { .. } | RewrapState::Verifying { .. } => {}
    }
    record
}

/// The job a stored record holds.
fn state_of(record: &RewrapJobRecord) -> Result<RewrapState, JobStoreError> {
    let target = record.target_kek_version;
    let progress = Progress {
        planned: record.planned,
        rewrapped: record.rewrapped,
        skipped: record.skipped,
        failed: record.failed,
        batches: record.batches,
        rounds: u32::try_from(record.rounds)
            .map_err(|_| JobStoreError::Malformed("rounds out of range"))?,
    };
    let cursor = record.cursor.as_deref().map(Cursor::new);
    Ok(match record.state.as_str() {
        "planned" => RewrapState::Planned { target, progress },
        "running" => RewrapState::Running {
            target,
            cursor,
            progress,
        },
        "paused" => {
            let reason = record
                .reason
                .as_deref()
                .and_then(|name| PauseReason::ALL.into_iter().find(|r| r.name() == name))
                .ok_or(JobStoreError::Malformed("unknown pause reason"))?;
            RewrapState::Paused {
                target,
                cursor,
                progress,
                reason,
            }
        }
        "verifying" => RewrapState::Verifying { target, progress },
        "completed" => RewrapState::Completed {
            target,
            progress,
            at: chrono_of(
                record
                    .finished_at
                    .ok_or(JobStoreError::Malformed("completed without finished_at"))?,
            ),
        },
        _ => return Err(JobStoreError::Malformed("unknown state")),
    })
}

#[cfg(test)]
mod tests {
    use tokenward_envelope::KeyVersion;

    use super::*;

    #[test]
    fn every_state_round_trips_through_the_record() {
        let target = KeyVersion::new(3).unwrap();
        let progress = Progress {
            planned: 9,
            rewrapped: 4,
            skipped: 1,
            failed: 2,
            batches: 3,
            rounds: 1,
        };
        let cursor = Some(Cursor::new("items:item-4"));
        let at = chrono_of(tokenward_vault::Timestamp::from_unix_millis(
            1_767_225_600_000,
        ));
        let mut states = vec![
            RewrapState::Planned { target, progress },
            RewrapState::Running {
                target,
                cursor: cursor.clone(),
                progress,
            },
            RewrapState::Verifying { target, progress },
            RewrapState::Completed {
                target,
                progress,
                at,
            },
        ];
        states.extend(PauseReason::ALL.map(|reason| RewrapState::Paused {
            target,
            cursor: cursor.clone(),
            progress,
            reason,
        }));
        for state in states {
            let record = record_of(JobId::new("job").unwrap(), 7, &state);
            assert_eq!(record.revision, 7);
            assert_eq!(
                record.finished_at.is_some(),
                matches!(state, RewrapState::Completed { .. })
            );
            assert_eq!(state_of(&record).unwrap(), state);
        }
    }

    #[test]
    fn unknown_values_are_malformed() {
        let target = KeyVersion::new(1).unwrap();
        let job = JobId::new("job").unwrap();
        let bad = RewrapJobRecord::new(job.clone(), "exploded", target);
        assert!(matches!(state_of(&bad), Err(JobStoreError::Malformed(_))));
        let bad = RewrapJobRecord::new(job.clone(), "paused", target);
        assert!(matches!(state_of(&bad), Err(JobStoreError::Malformed(_))));
        let bad = RewrapJobRecord::new(job, "completed", target);
        assert!(matches!(state_of(&bad), Err(JobStoreError::Malformed(_))));
    }
}
