-- tokenward-vault schema, version 3 (SQLite): what the rotation machines need across restarts,
-- and an audit journal the database itself keeps append-only.
-- Statements are separated by `--- statement ---` lines (trigger bodies hold semicolons).

-- One row per KEK version: its lifecycle state (`staged`, `primary`, `decrypt_only`,
-- `compromised`, `disabled`, `destroyed`), whether it was ever compromised, and when it was
-- promoted, compromised, disabled and destroyed. Writes compare-and-swap on `revision`.
CREATE TABLE kek_versions (
    kek_version    INTEGER PRIMARY KEY NOT NULL,
    revision       INTEGER NOT NULL,
    state          TEXT NOT NULL,
    compromised    INTEGER NOT NULL DEFAULT 0,
    promoted_at    INTEGER,
    compromised_at INTEGER,
    disabled_at    INTEGER,
    destroyed_at   INTEGER,
    updated_at     INTEGER NOT NULL
)
--- statement ---
-- The event time of the newest health change applied (older deliveries are ignored) and the
-- deadline of `expiring_soon` (consent expiry, disconnect time).
ALTER TABLE items ADD COLUMN health_as_of INTEGER
--- statement ---
ALTER TABLE items ADD COLUMN health_deadline INTEGER
--- statement ---
-- The attempt whose token was last promoted (kept after the promote closes it).
ALTER TABLE items ADD COLUMN last_attempt_id TEXT
--- statement ---
-- Whether the attempt's invalidate may have reached Plaid: set by the sent marker, cleared
-- when the attempt closes with a definite "not applied" outcome.
ALTER TABLE attempts ADD COLUMN maybe_applied INTEGER NOT NULL DEFAULT 0
--- statement ---
-- Attempts already past their sent marker when the database was upgraded.
UPDATE attempts SET maybe_applied = 1
WHERE sent_at IS NOT NULL AND status IN ('sent', 'stashed', 'committed', 'abandoned')
--- statement ---
-- The journal is append-only: no row is ever deleted, and the one update allowed is the
-- anonymisation `erase_user` performs (Item id, request id and attempt id cleared, reason
-- replaced by `[erased]`, everything else unchanged).
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit journal is append-only');
END
--- statement ---
CREATE TRIGGER audit_only_anonymise BEFORE UPDATE ON audit
WHEN NOT (
    NEW.id = OLD.id
    AND NEW.event = OLD.event
    AND NEW.from_state IS OLD.from_state
    AND NEW.to_state IS OLD.to_state
    AND NEW.actor = OLD.actor
    AND NEW.at = OLD.at
    AND NEW.item_id IS NULL
    AND NEW.request_id IS NULL
    AND NEW.attempt_id IS NULL
    AND NEW.reason = '[erased]'
)
BEGIN
    SELECT RAISE(ABORT, 'the audit journal is append-only');
END
