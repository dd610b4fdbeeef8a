-- tokenward-vault schema, version 2 (Postgres): the state of KEK rewrap jobs, so a job resumes
-- from its cursor after a crash. Writes compare-and-swap on `revision`.

CREATE TABLE rewrap_jobs (
    job_id             TEXT PRIMARY KEY NOT NULL,
    revision           BIGINT NOT NULL,
    state              TEXT NOT NULL,
    reason             TEXT,
    cursor             TEXT,
    target_kek_version BIGINT NOT NULL,
    planned            BIGINT NOT NULL,
    rewrapped          BIGINT NOT NULL,
    skipped            BIGINT NOT NULL,
    failed             BIGINT NOT NULL,
    batches            BIGINT NOT NULL,
    rounds             BIGINT NOT NULL,
    finished_at        BIGINT,
    updated_at         BIGINT NOT NULL
);

CREATE INDEX rewrap_jobs_unfinished ON rewrap_jobs (finished_at, updated_at);
