//! The fast read path of a `SQLite` store: one synchronous `rusqlite` connection, opened
//! read-only on the same file (or the same named in-memory database), that serves
//! [`Vault::get_sealed`](crate::Vault::get_sealed).
//!
//! Why: sqlx runs each `SQLite` statement on a worker thread and hands the result back through
//! a channel; that hop costs far more than the indexed read itself (see the crate README for
//! the measured figures). The read here runs on the caller's thread for a few microseconds.
//!
//! Why it is safe: the file is in WAL mode, so this reader never blocks the writer and sees
//! every transaction committed before its statement starts (a `get` after a write that
//! returned sees that write). Both drivers link the same `libsqlite3-sys`, so one `SQLite`
//! library owns the file's locks in this process. The busy timeout is short, and any
//! operational error (busy, I/O, a poisoned lock) gives `None`: the caller falls back to the
//! sqlx path, which is always correct.
//!
//! An in-memory store is a named database in `SQLite`'s shared cache, so this connection and
//! the sqlx pool's share one copy of the pages. Shared-cache connections lock per table and
//! never read uncommitted data (`read_uncommitted` stays off): while a write transaction holds
//! `items`, the read here fails at once with `SQLITE_LOCKED` and falls back to sqlx, which
//! waits for the commit; a write that meets this reader mid-statement waits through
//! `sqlite3_unlock_notify` (sqlx does that for every statement).

use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokenward_envelope::Envelope;

use crate::error::{MalformedRow, ReadError};
use crate::types::{ItemId, UserId};
use crate::vault::SealedItem;

const GET_SEALED: &str = "SELECT user_id, token_version, envelope FROM items WHERE item_id = ?1";

pub(crate) struct Reader {
    connection: Mutex<Connection>,
}

impl Reader {
    /// A reader of the `SQLite` file at `path`.
    pub(crate) fn open_file(path: &str) -> Result<Self, rusqlite::Error> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Self::new(connection)
    }

    /// A reader of the shared-cache in-memory database `uri` (`file:<name>`), the name the
    /// sqlx pool opened with `mode=memory&cache=shared`.
    pub(crate) fn open_memory(uri: &str) -> Result<Self, rusqlite::Error> {
        let connection = Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_MEMORY
                | OpenFlags::SQLITE_OPEN_SHARED_CACHE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // The pages are shared with the pool's read-write connection, so the read-only flag
        // may not hold there; this does, and the reader only ever runs one SELECT anyway.
        connection.pragma_update(None, "query_only", true)?;
        Self::new(connection)
    }

    fn new(connection: Connection) -> Result<Self, rusqlite::Error> {
        connection.busy_timeout(std::time::Duration::from_millis(20))?;
        // Fails now, not on the first read, if the schema is not what we expect.
        connection.prepare_cached(GET_SEALED)?;
        Ok(Reader {
            connection: Mutex::new(connection),
        })
    }

    /// The sealed Item, `Some(Err(NotFound))` when there is none, or `None` when this path
    /// failed for an operational reason (the caller then asks sqlx).
    pub(crate) fn get_sealed(&self, item_id: &ItemId) -> Option<Result<SealedItem, ReadError>> {
        let connection = self.connection.lock().ok()?;
        let mut statement = connection.prepare_cached(GET_SEALED).ok()?;
        let row = statement
            .query_row([item_id.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0),
                    row.get::<_, i64>(1),
                    row.get::<_, String>(2),
                ))
            })
            .optional()
            .ok()?;
        let Some((user_id, version, envelope)) = row else {
            return Some(Err(ReadError::NotFound(item_id.clone())));
        };
        let malformed =
            |column, problem| Some(Err(MalformedRow::new("items", column, problem).into()));
        let Ok(user_id) = user_id
            .map_err(drop)
            .and_then(|u| UserId::new(u).map_err(drop))
        else {
            return malformed("user_id", "has an unknown value");
        };
        let Some(token_version) = version.ok().and_then(|v| u64::try_from(v).ok()) else {
            return malformed("token_version", "is not a non-negative integer");
        };
        let Some(envelope) = envelope.ok().and_then(|e| Envelope::from_text(&e).ok()) else {
            return malformed("envelope", "is not a well-formed envelope");
        };
        Some(Ok(SealedItem {
            item_id: item_id.clone(),
            user_id,
            token_version,
            envelope,
        }))
    }
}
