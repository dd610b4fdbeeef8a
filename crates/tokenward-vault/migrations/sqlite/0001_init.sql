-- tokenward-vault schema, version 1 (SQLite).
-- Times are milliseconds since the Unix epoch; states are lower-case text parsed strictly.

CREATE TABLE items (
    item_id          TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL,
    token_version    INTEGER NOT NULL,
    envelope         TEXT NOT NULL,
    kek_version      INTEGER NOT NULL,
    credential_state TEXT NOT NULL,
    health_state     TEXT NOT NULL,
    lease_owner      TEXT,
    lease_epoch      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX items_kek_version ON items (kek_version, item_id);
CREATE INDEX items_user ON items (user_id);
CREATE INDEX items_credential_state ON items (credential_state, item_id);
CREATE INDEX items_health_state ON items (health_state, item_id);

CREATE TABLE attempts (
    attempt_id          TEXT PRIMARY KEY NOT NULL,
    item_id             TEXT NOT NULL,
    from_version        INTEGER NOT NULL,
    status              TEXT NOT NULL,
    reason              TEXT NOT NULL,
    actor               TEXT NOT NULL,
    lease_epoch         INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    sent_at             INTEGER,
    stashed_envelope    TEXT,
    stashed_kek_version INTEGER,
    stashed_at          INTEGER,
    request_id          TEXT,
    finished_at         INTEGER
) WITHOUT ROWID;

CREATE INDEX attempts_item ON attempts (item_id);
CREATE INDEX attempts_open ON attempts (finished_at, attempt_id);
CREATE INDEX attempts_stashed_kek ON attempts (stashed_kek_version, attempt_id);

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id    TEXT,
    event      TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT,
    reason     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    at         INTEGER NOT NULL,
    request_id TEXT,
    attempt_id TEXT
);

CREATE INDEX audit_item ON audit (item_id, id);
CREATE INDEX audit_at ON audit (at, id);
