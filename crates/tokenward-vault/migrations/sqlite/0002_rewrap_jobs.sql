-- tokenward-vault schema, version 2 (SQLite): the state of KEK rewrap jobs, so a job resumes
-- from its cursor after a crash. Writes compare-and-swap on `revision`.

CREATE TABLE rewrap_jobs (
    job_id             TEXT PRIMARY KEY NOT NULL,
    revision           INTEGER NOT NULL,
    state              TEXT NOT NULL,
    reason             TEXT,
    cursor             TEXT,
    target_kek_version INTEGER NOT NULL,
    planned            INTEGER NOT NULL,
    rewrapped          INTEGER NOT NULL,
    skipped            INTEGER NOT NULL,
    failed             INTEGER NOT NULL,
    batches            INTEGER NOT NULL,
    rounds             INTEGER NOT NULL,
    finished_at        INTEGER,
    updated_at         INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX rewrap_jobs_unfinished ON rewrap_jobs (finished_at, updated_at);
