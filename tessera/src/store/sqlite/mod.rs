//! Sessions in a SQLite database file, through sqlx (feature `sqlite`).
//!
//! One file holds every session: a row per session in `tessera_sessions` and
//! a row per key in `tessera_session_values`, each value as Flask's tagged
//! JSON. Because values are rows, [`update`](SessionStore::update) writes only
//! the keys a request changed, so two requests on one session that write
//! different keys both persist; [`increment`](SessionStore::increment) and
//! [`append`](SessionStore::append) are read-modify-writes under SQLite's
//! write lock, so concurrent ones never lose an update. Writes queue for one
//! writer connection rather than poll SQLite's busy handler, and increments
//! that queue while it is busy run together, one transaction for all of
//! them, so a counter that every request bumps does not leave the writer
//! idle between them. Concurrent increments of one counter go further: while
//! one is on its way the next ones wait in the process, then go together as
//! one increment by their sum, each caller answered the value it would have
//! seen in turn. Concurrent loads of one session go alike, as one read made
//! after they all came, each caller answered with its own copy.
//!
//! [`SqliteStore::new`] is synchronous and touches nothing: the first
//! operation creates the file and its directory, opens a small connection pool
//! and creates or migrates the schema. If that fails (a read-only directory, a
//! locked file) the operation returns [`StoreError::Unavailable`] and the next
//! one tries again, so a store configured before its volume is mounted
//! recovers by itself.
//!
//! ```no_run
//! use tessera::store::{Record, SessionId, SessionStore, SqliteStore};
//!
//! # async fn run() -> Result<(), tessera::store::StoreError> {
//! // Nothing is opened yet; `SqliteStore::open` would open it now.
//! let store = SqliteStore::from_url("sqlite:///var/lib/myapp/sessions.db")?;
//!
//! let id = SessionId::generate();
//! let now = 1_700_000_000;
//! let record = Record {
//!     data: Default::default(),
//!     user_id: Some("alice".to_owned()),
//!     created_at: now,
//!     expires_at: now + 3600,
//!     absolute_expires_at: Some(now + 86_400),
//! };
//! assert!(store.create(&id, &record).await?);
//! assert_eq!(store.increment(&id, "visits", 1, now).await?, Some(1));
//!
//! // A sweeper, from time to time:
//! while store.purge_expired(now, 1000).await? == 1000 {}
//! # Ok(()) }
//! ```
//!
//! The database runs in WAL mode, so readers never wait for the writer and
//! several processes on one machine can share the file (not over a network
//! file system, where SQLite's locking is unreliable). The schema version is
//! kept in `PRAGMA user_version`; newer versions of tessera migrate older
//! files forward and refuse files from a newer version.
//!
//! SQLite integers are signed 64-bit: times beyond `i64::MAX` seconds (some
//! 292 billion years away) are stored as `i64::MAX`.

use super::sql::{
    data_from_rows, parse_id, parse_value, sql_count, sql_time, time_from_sql, to_completion,
    ListingPage,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection as _, Executor as _, Row as _, Sqlite, Transaction};
use tokio::sync::OnceCell;

use self::connections::{Connections, Lease, LeaseError};
use self::increments::{AtOnce, Increment, IncrementQueue, Outcome};
use super::combine::{self, Combiner, Combining};

use super::{
    append_in_map, incremented, Changes, ListEdit, Reason, Record, SessionId, SessionInfo,
    SessionStore, StoreError, UpdateOutcome,
};
use crate::map::Map;
use crate::session::PERMANENT_KEY;
use crate::tagged;
use crate::value::Value;

mod connections;
mod increments;

/// SQLite has one writer at a time, so more connections only help readers;
/// a few keep reads flowing while a write holds the lock.
const MAX_CONNECTIONS: u32 = 4;

/// How long a statement waits for another connection's (or process's) write
/// lock before failing with `SQLITE_BUSY`. Writes here are short, so reaching
/// it means the file is wedged, not merely busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a read waits for a free connection: a little longer than the
/// busy timeout, so that a slow writer is reported as such (reads wait for
/// connections, never for the write lock).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write waits for the write connection: the busy timeout, so
/// that one queued behind a write waiting for a lock held elsewhere fails
/// within 10 s in all (its wait, then its own for the lock). With the
/// readers' timeout, the third write queued took 15 s.
const WRITER_ACQUIRE_TIMEOUT: Duration = BUSY_TIMEOUT;

/// What the `-wal` file is cut back to once a checkpoint has emptied it. A
/// reader holding an old snapshot (a long listing, another process) keeps
/// checkpoints from finishing, and the file grows meanwhile; without a limit
/// SQLite reuses it from the start but never shrinks it.
const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

/// Schema steps, in order: step `n` takes `user_version` from `n` to `n + 1`.
/// Released steps never change; later versions append steps.
const MIGRATIONS: &[&str] = &[
    // 1: sessions, and their values one row per key so writes merge per key.
    "CREATE TABLE tessera_sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        absolute_expires_at INTEGER
    );
    CREATE INDEX tessera_sessions_expires_at ON tessera_sessions (expires_at);
    CREATE INDEX tessera_sessions_absolute_expires_at ON tessera_sessions (absolute_expires_at);
    CREATE INDEX tessera_sessions_user_id ON tessera_sessions (user_id);
    CREATE TABLE tessera_session_values (
        session_id TEXT NOT NULL REFERENCES tessera_sessions (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (session_id, key)
    ) WITHOUT ROWID;",
];

// The queries whose plans matter as the tables grow, named so that the tests
// can check SQLite answers them from an index rather than a scan.

/// A live session and its values, in one statement so in one snapshot.
const LOAD: &str = "
    SELECT s.user_id, s.created_at, s.expires_at, s.absolute_expires_at, v.key, v.value
    FROM tessera_sessions AS s
    LEFT JOIN tessera_session_values AS v ON v.session_id = s.id
    WHERE s.id = ?1
      AND s.expires_at > ?2
      AND (s.absolute_expires_at IS NULL OR s.absolute_expires_at > ?2)";

/// A page of one user's live sessions.
const LIST_BY_USER: &str = "
    SELECT id, user_id, created_at, expires_at, absolute_expires_at
    FROM tessera_sessions
    WHERE user_id = ?1 AND id > ?2
      AND expires_at > ?3
      AND (absolute_expires_at IS NULL OR absolute_expires_at > ?3)
    ORDER BY id LIMIT ?4";

/// A page of all live sessions.
/// The usual increment as one statement, atomic on its own: no value,
/// `null` or a canonical integer under the key of a live session, and no
/// overflow (checked against bounds computed from the step, since SQLite
/// would turn an overflowing sum into a float). Anything else returns no
/// row and the transaction of `read_modify_write` decides, with the rules
/// every store shares.
const INCREMENT_AT_ONCE: &str = "
    INSERT INTO tessera_session_values (session_id, key, value)
    SELECT s.id, ?2, ?3 FROM tessera_sessions AS s
    WHERE s.id = ?1
      AND s.expires_at > ?4
      AND (s.absolute_expires_at IS NULL OR s.absolute_expires_at > ?4)
    ON CONFLICT (session_id, key) DO UPDATE
        SET value = CASE WHEN value = 'null' THEN ?3
                         ELSE CAST(CAST(value AS INTEGER) + ?5 AS TEXT) END
        WHERE value = 'null'
           OR (value = CAST(CAST(value AS INTEGER) AS TEXT)
               AND CAST(value AS INTEGER) BETWEEN ?6 AND ?7)
    RETURNING value";

const LIST_ALL: &str = "
    SELECT id, user_id, created_at, expires_at, absolute_expires_at
    FROM tessera_sessions
    WHERE id > ?1
      AND expires_at > ?2
      AND (absolute_expires_at IS NULL OR absolute_expires_at > ?2)
    ORDER BY id LIMIT ?3";

/// At most a batch of dead sessions; their values go by the cascade. Bounded,
/// so a sweeper never holds the write lock for long; the OR is answered from
/// the two expiry indexes.
const PURGE: &str = "
    DELETE FROM tessera_sessions WHERE id IN (
        SELECT id FROM tessera_sessions
        WHERE expires_at <= ?1 OR absolute_expires_at <= ?1
        LIMIT ?2
    )";

/// A [`SessionStore`] in a SQLite database file.
///
/// Cheap to construct; see the [module documentation](self) for when the
/// file is opened and how the schema is managed.
pub struct SqliteStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .field("connections", &self.shared.connections)
            .field("existing_only", &self.shared.existing_only)
            .finish()
    }
}

/// What a store and the tasks it starts share.
struct Shared {
    path: PathBuf,
    connections: OnceCell<ReadWrite>,
    /// Open only a file that already holds the current schema; never create
    /// or migrate anything (for administration tools).
    existing_only: bool,
    /// Concurrent loads of one session, and increments of one counter,
    /// go as one.
    combiner: Combiner,
}

/// The file the store opened, or its `-wal` or `-shm` file, is no longer at
/// its path: deleted (with its directory, say) or replaced. Writing on would
/// go into a file nobody can open again (or, for the `-wal`, into a log that
/// other processes no longer see, and that overwrites their writes at the
/// next checkpoint; for the `-shm`, the WAL's index, by which every process
/// finds the latest writes, with the same end: another process opening the
/// file makes a new one, and each overwrites the other's writes), so the
/// store stops until the application restarts.
#[derive(Debug, thiserror::Error)]
#[error(
    "the SQLite session store {path} (or its -wal or -shm file) was removed or replaced while \
     in use; restart the application to open it again"
)]
struct FileGone {
    path: String,
}

/// Whether the file is still the one opened could not be told: its
/// directory cannot be searched (a permission changed), say.
#[derive(Debug, thiserror::Error)]
#[error("cannot check the SQLite session store {path}: {source}")]
struct Unchecked {
    path: String,
    #[source]
    source: std::io::Error,
}

/// Opening the database failed; says which file, since sqlx does not.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the SQLite session store {path}: {source}{hint}")]
struct OpenError {
    path: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
    /// What SQLite's words leave out, if anything.
    hint: &'static str,
}

/// `SQLITE_READONLY_DIRECTORY`, which SQLite reports as "attempt to write a
/// readonly database" although the file itself may be writable.
const READONLY_DIRECTORY: i32 = 1544;

/// `SQLITE_IOERR_SHMSIZE`: the `-shm` file could not be given its size,
/// which SQLite reports as a bare "disk I/O error"; a full disk is the
/// usual reason.
const SHM_NOT_SIZED: i32 = 4874;

impl OpenError {
    fn new(path: &Path, source: Box<dyn std::error::Error + Send + Sync>) -> Self {
        let hint = match sqlite_code(&*source) {
            Some(READONLY_DIRECTORY) => {
                " (its directory is not writable: SQLite creates the -wal and -shm files beside \
                 the database, so the directory must be writable too)"
            }
            Some(SHM_NOT_SIZED) => {
                " (the -shm file beside the database could not be made: is the disk full?)"
            }
            _ => "",
        };
        Self {
            path: path.display().to_string(),
            source,
            hint,
        }
    }
}

impl SqliteStore {
    /// The schema version this library creates and expects, as found in the
    /// file's `PRAGMA user_version`.
    pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

    /// A store in the file at `path`, created with its directory if missing.
    /// A relative path is resolved now, so that a later change of directory
    /// does not move it (the file would then look removed). Nothing is
    /// opened until the first operation.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::at(path.into(), false)
    }

    fn at(path: PathBuf, existing_only: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                path: std::path::absolute(&path).unwrap_or(path),
                connections: OnceCell::new(),
                existing_only,
                combiner: Combiner::default(),
            }),
        }
    }

    /// An existing store, opened now: the file must exist and hold this
    /// version's schema. Nothing is created or migrated, so pointing an
    /// administration tool at the wrong file changes nothing.
    pub async fn open_existing(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let store = Self::at(path.into(), true);
        store.connections().await?;
        Ok(store)
    }

    /// A store in the file at `path`, opened and migrated now, so that a bad
    /// path is reported at once rather than by the first request.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let store = Self::new(path);
        store.connections().await?;
        Ok(store)
    }

    /// A store from a URL: `sqlite:///abs/path.db` for an absolute path or
    /// `sqlite://relative/path.db` for one relative to the current directory
    /// (resolved now, so a later change of directory does not move it).
    /// Nothing is opened until the first operation.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let refuse = |why: &str| {
            StoreError::config(format!(
                "{:?} is not a SQLite session store URL: {why}; expected \
                 sqlite:///absolute/path.db or sqlite://relative/path.db",
                crate::config::redact_password(url)
            ))
        };
        let path = crate::config::parse_sqlite_url(url).map_err(refuse)?;
        let path = if path.is_absolute() {
            path
        } else {
            let cwd = std::env::current_dir().map_err(|error| {
                StoreError::config(Reason::caused_by(
                    format!("cannot resolve the relative SQLite path in {url:?}: {error}"),
                    error,
                ))
            })?;
            cwd.join(path)
        };
        crate::config::warn_if_named_undecoded(url);
        Ok(Self::new(path))
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// `changes` applied in one write transaction, and the session deleted
    /// if asked and left with no data and no owner.
    async fn apply(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
        delete_if_empty: bool,
    ) -> Result<UpdateOutcome, StoreError> {
        let mut writer = self.writer().await?;
        let (id, changes) = (id.clone(), changes.clone());
        to_completion(async move {
            let (id, changes) = (&id, &changes);
            let mut tx = begin_write(&mut writer).await?;
            if !is_live(&mut tx, id, now).await? {
                tx.rollback().await.map_err(db)?;
                return Ok(UpdateOutcome::Vanished);
            }
            // The order of `Changes::apply_to`: clear, remove, set, the list
            // edit, then the session's own columns.
            if changes.cleared {
                sqlx::query("DELETE FROM tessera_session_values WHERE session_id = ?1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            } else {
                for key in &changes.removed {
                    remove_value(&mut tx, id, key).await?;
                }
            }
            for (key, value) in &changes.set {
                put_value(&mut tx, id, key, value).await?;
            }
            if let Some(edit) = &changes.list_edit {
                edit_list(&mut tx, id, edit).await?;
            }
            if let Some(expires_at) = changes.expires_at {
                sqlx::query("UPDATE tessera_sessions SET expires_at = ?2 WHERE id = ?1")
                    .bind(id.as_str())
                    .bind(sql_time(expires_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            if let Some(cap) = changes.absolute_expires_at {
                sqlx::query(
                    "UPDATE tessera_sessions \
                     SET absolute_expires_at = MIN(COALESCE(absolute_expires_at, ?2), ?2) \
                     WHERE id = ?1",
                )
                .bind(id.as_str())
                .bind(sql_time(cap))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            if let Some(user_id) = &changes.user_id {
                sqlx::query("UPDATE tessera_sessions SET user_id = ?2 WHERE id = ?1")
                    .bind(id.as_str())
                    .bind(user_id.as_deref())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            if delete_if_empty {
                let data: i64 = sqlx::query_scalar(
                    "SELECT (SELECT count(*) FROM tessera_session_values \
                             WHERE session_id = ?1 AND key <> ?2) \
                          + (SELECT count(*) FROM tessera_sessions \
                             WHERE id = ?1 AND user_id IS NOT NULL)",
                )
                .bind(id.as_str())
                .bind(PERMANENT_KEY)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                if data == 0 {
                    sqlx::query("DELETE FROM tessera_sessions WHERE id = ?1")
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    tx.commit().await.map_err(db)?;
                    return Ok(UpdateOutcome::Deleted);
                }
            }
            tx.commit().await.map_err(db)?;
            Ok(UpdateOutcome::Updated)
        })
        .await
    }

    /// Closes the connections, waiting for them to finish, which checkpoints
    /// the write-ahead log into the database file: for graceful shutdown.
    /// Operations after this fail with [`StoreError::Unavailable`]. Does
    /// nothing if the store was never used.
    ///
    /// A store that found its `-shm` file removed or replaced (which stops
    /// it until a restart) while its `-wal` file was not leaves its
    /// connections open instead, to end with the process: closing the last
    /// one would checkpoint the log with this process's stale index of it,
    /// then delete it, losing what another process (the `tessera` command
    /// revoking a session, say) wrote there since; the next process to open
    /// the file reads the log whole. (A replaced `-wal` is closed as any:
    /// the checkpoint saves this process's writes, which only its own
    /// deleted log holds.)
    pub async fn close(&self) {
        if let Some(opened) = self.shared.connections.get() {
            // The files as they are now, not only as last checked.
            let _ = self.open_file(true).await;
            if opened.index_replaced.load(Ordering::Relaxed) {
                tracing::warn!(
                    path = %self.shared.path.display(),
                    "the SQLite session store's -shm file was removed or replaced while in \
                     use; its connections are left to end with the process, without the \
                     checkpoint that closing them makes, so that the next process to open \
                     the file finds every write other processes made since"
                );
                opened.read.abandon().await;
                opened.write.abandon().await;
                return;
            }
            opened.read.close().await;
            opened.write.close().await;
        }
    }

    /// The connections, opening them first if needed. `get_or_try_init` keeps only
    /// a success, so after a failure the next operation tries again.
    async fn connections(&self) -> Result<&ReadWrite, StoreError> {
        self.shared
            .connections
            // Boxed, being once per store: in place, opening's future would
            // be part of every operation's.
            .get_or_try_init(|| {
                Box::pin(connect_both(&self.shared.path, self.shared.existing_only))
            })
            .await
            .map_err(|error| match error {
                OpenFailure::Config(message) => {
                    StoreError::config(format!("{message} ({})", self.shared.path.display()))
                }
                OpenFailure::Other(source) => {
                    StoreError::Unavailable(Box::new(OpenError::new(&self.shared.path, source)))
                }
            })
    }

    /// A connection for reading; several are lent at once (WAL readers do
    /// not block).
    async fn reader(&self) -> Result<Lease, StoreError> {
        lease(&self.open_file(false).await?.read).await
    }

    /// The one connection this process writes through. SQLite admits one
    /// writer at a time; queueing writers here, fairly and without blocking
    /// a thread, beats having them poll SQLite's busy handler, whose sleeps
    /// made the tail latency of contended writes tens of milliseconds.
    async fn writer(&self) -> Result<Lease, StoreError> {
        lease(&self.open_file(true).await?.write).await
    }

    /// The one-statement increment's answer, through [`IncrementQueue`].
    async fn increment_at_once(&self, increment: Increment) -> Result<AtOnce, StoreError> {
        let connections = self.open_file(true).await?;
        match connections
            .increments
            .run(&connections.write, increment)
            .await
        {
            Outcome::Done(at_once) => Ok(at_once),
            Outcome::RunAlone(increment) => {
                increments::at_once(&mut *self.writer().await?, &increment)
                    .await
                    .map_err(db)
            }
            Outcome::Failed(error) => Err(db(error)),
            Outcome::Locked(error) => Err(StoreError::unavailable(error)),
            Outcome::NoWriter(error) => Err(StoreError::unavailable(error)),
            Outcome::Unanswered(error) => Err(StoreError::unavailable(error)),
        }
    }

    /// The connections, once the file at the path is checked to be the one
    /// they have open (a `stat`, far cheaper than any statement), and the
    /// `-wal` and `-shm` files too: before every write (a write into a
    /// deleted log is lost), and before reads at most every
    /// [`WAL_CHECK_INTERVAL`] (a read
    /// of the session and a write are the usual request, and each check
    /// is a `stat`), so that reads stop soon after too (they would show
    /// sessions that another process has revoked since).
    async fn open_file(&self, before_a_write: bool) -> Result<&ReadWrite, StoreError> {
        let connections = self.connections().await?;
        if connections.file.is_none() {
            return Ok(connections);
        }
        let gone = || {
            StoreError::Unavailable(Box::new(FileGone {
                path: self.shared.path.display().to_string(),
            }))
        };
        if connections.gone.load(Ordering::Relaxed) {
            return Err(gone());
        }
        let unchecked = |source| {
            StoreError::Unavailable(Box::new(Unchecked {
                path: self.shared.path.display().to_string(),
                source,
            }))
        };
        let file = file_id(&self.shared.path).map_err(unchecked)?;
        let now_ms = super::monotonic_millis();
        let wal_due = before_a_write
            || now_ms.saturating_sub(connections.wal_checked_at.load(Ordering::Relaxed))
                >= WAL_CHECK_INTERVAL.as_millis() as u64;
        let moved = |suffix: &str, opened: Option<(u64, u64)>| match opened {
            Some(_) => file_id(&beside(&self.shared.path, suffix))
                .map(|now| now != opened)
                .map_err(unchecked),
            None => Ok(false),
        };
        let (wal_moved, shm_moved) = if wal_due {
            connections.wal_checked_at.store(now_ms, Ordering::Relaxed);
            (
                moved("-wal", connections.wal)?,
                moved("-shm", connections.shm)?,
            )
        } else {
            (false, false)
        };
        if shm_moved && !wal_moved && file == connections.file {
            connections.index_replaced.store(true, Ordering::Relaxed);
        }
        if file != connections.file || wal_moved || shm_moved {
            // For good: neither can come back as the file opened.
            connections.gone.store(true, Ordering::Relaxed);
            return Err(gone());
        }
        Ok(connections)
    }

    /// Runs `change` on the value under `key` of the live record `id` and
    /// stores what it returns, under the write lock throughout.
    async fn read_modify_write<T: Send + 'static>(
        &self,
        id: &SessionId,
        key: &str,
        now: u64,
        change: impl FnOnce(Option<Value>) -> Result<(Value, T), StoreError> + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        let mut writer = self.writer().await?;
        let (id, key) = (id.clone(), key.to_owned());
        to_completion(async move {
            let (id, key) = (&id, key.as_str());
            let mut tx = begin_write(&mut writer).await?;
            if !is_live(&mut tx, id, now).await? {
                tx.rollback().await.map_err(db)?;
                return Ok(None);
            }
            let current = stored_text(&mut tx, id, key).await?;
            let current = current.map(|text| parse_value(key, &text)).transpose()?;
            // An error here drops `tx`, which rolls back: nothing was written.
            let (next, result) = change(current)?;
            put_value(&mut tx, id, key, &next).await?;
            tx.commit().await.map_err(db)?;
            Ok(Some(result))
        })
        .await
    }
}

/// A transaction holding the write lock from its start. A deferred
/// transaction that reads before it writes cannot upgrade once another
/// connection has committed in between (`SQLITE_BUSY_SNAPSHOT`, which the
/// busy timeout does not retry); `BEGIN IMMEDIATE` waits for the lock
/// instead, which is also what serializes read-modify-writes.
async fn begin_write(writer: &mut SqliteConnection) -> Result<Transaction<'_, Sqlite>, StoreError> {
    writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
}

async fn lease(connections: &Arc<Connections>) -> Result<Lease, StoreError> {
    connections.acquire().await.map_err(StoreError::unavailable)
}

/// Why opening failed: configuration problems are reported as such, the rest
/// as unavailability.
enum OpenFailure {
    Config(String),
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for OpenFailure {
    fn from(error: sqlx::Error) -> Self {
        Self::Other(Box::new(error))
    }
}

/// The read connections and the single write connection to one file.
#[derive(Debug)]
struct ReadWrite {
    read: Arc<Connections>,
    write: Arc<Connections>,
    /// Which file they have open, where the system says (Unix).
    file: Option<(u64, u64)>,
    /// Which `-wal` file: SQLite keeps it while any connection is open
    /// (it only truncates it), so one that went away was deleted by hand.
    wal: Option<(u64, u64)>,
    /// Which `-shm` file, kept as the `-wal` is.
    shm: Option<(u64, u64)>,
    /// When a read last checked the `-wal` and `-shm` files, in
    /// [`monotonic_millis`](super::monotonic_millis).
    wal_checked_at: AtomicU64,
    /// The file, its `-wal` or its `-shm` was found removed or replaced.
    gone: AtomicBool,
    /// The `-shm` alone was: see [`SqliteStore::close`].
    index_replaced: AtomicBool,
    /// Increments waiting for `write`, run in batches.
    increments: IncrementQueue,
}

/// How often reads check that the `-wal` and `-shm` files are the ones
/// opened, at most.
const WAL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// The device and inode of the file at `path`; `None` if there is none (or
/// where the system does not say).
fn file_id(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        match std::fs::metadata(path) {
            Ok(metadata) => Ok(Some((metadata.dev(), metadata.ino()))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// The path of one of SQLite's files beside the database (`-wal`, `-shm`):
/// the database's path with `suffix` appended.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens the file, taking turns with other processes opening it too: SQLite
/// does not wait for a lock held by another connection while a new file is
/// switched to WAL, so instances starting together would otherwise fail at
/// once with "database is locked". Waits as long as any statement would.
async fn connect_both(path: &Path, existing_only: bool) -> Result<ReadWrite, OpenFailure> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match connect_both_once(path, existing_only).await {
            Err(failure) if is_busy(&failure) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => {
                // Once the file is known to be a session database (a file
                // this created is private).
                if result.is_ok() {
                    warn_if_exposed(path);
                }
                return result;
            }
        }
    }
}

/// Whether opening failed only on another connection's lock.
fn is_busy(failure: &OpenFailure) -> bool {
    let OpenFailure::Other(error) = failure else {
        return false;
    };
    sqlx_error_of(&**error).is_some_and(is_busy_error)
}

/// Whether `error` is SQLite's `SQLITE_BUSY` (or one of its extended codes):
/// another connection, or process, held the lock for the whole busy timeout.
pub(super) fn is_busy_error(error: &sqlx::Error) -> bool {
    result_code(error).is_some_and(|code| code & 0xff == 5)
}

/// The SQLite result code (extended) of a failure to open, if SQLite's.
fn sqlite_code(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<i32> {
    sqlx_error_of(error).and_then(result_code)
}

/// The sqlx error behind a failure to open, if there is one.
fn sqlx_error_of<'a>(
    error: &'a (dyn std::error::Error + Send + Sync + 'static),
) -> Option<&'a sqlx::Error> {
    let connecting = match error.downcast_ref::<LeaseError>() {
        Some(LeaseError::Connect(error)) => Some(error),
        _ => None,
    };
    error.downcast_ref::<sqlx::Error>().or(connecting)
}

/// A failed statement as the store reports it. SQLite answers a statement
/// of the store's on tables of another shape than it makes ("no such
/// column", a table dropped while the store runs: SQLITE_ERROR; a check,
/// `NOT NULL` or trigger added: SQLITE_CONSTRAINT) as it would every time: a
/// configuration error, a 500, not an outage that clients would retry for
/// ever, as on PostgreSQL.
fn db(error: sqlx::Error) -> StoreError {
    const SQLITE_ERROR: i32 = 1;
    const SQLITE_CONSTRAINT: i32 = 19;
    match result_code(&error).map(|code| code & 0xff) {
        Some(SQLITE_ERROR | SQLITE_CONSTRAINT) => StoreError::config(Reason::caused_by(
            format!(
                "the session tables are not as this version of tessera makes them ({error}): \
                 changed by hand? Give the sessions a file of their own, which the store \
                 creates"
            ),
            error,
        )),
        _ => super::sql::db(error),
    }
}

/// SQLite's result code (extended) in `error`, if SQLite's.
fn result_code(error: &sqlx::Error) -> Option<i32> {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .and_then(|code| code.parse::<i32>().ok())
}

async fn connect_both_once(path: &Path, existing_only: bool) -> Result<ReadWrite, OpenFailure> {
    // SQLite's own word for it is "disk I/O error".
    if std::fs::metadata(path).is_ok_and(|metadata| metadata.is_dir()) {
        return Err(OpenFailure::Config(format!(
            "{} is a directory: the store's URL names the database file (in it, say, \
             sqlite://{}/sessions.db)",
            path.display(),
            path.display()
        )));
    }
    if existing_only {
        ensure_sqlite_file(path)?;
    }
    // Before any connection, the read-only one that checks the file
    // included: reading a WAL database makes its -wal and -shm, with the
    // file's permissions, and a read-only pair would outlast the file's
    // being made writable again.
    if existing_only || path.exists() {
        ensure_writable(path)?;
    }
    // The writer first: it creates, checks or migrates the file.
    refuse_before_writing(path, existing_only).await?;
    let write = connect(path, existing_only, 1, WRITER_ACQUIRE_TIMEOUT).await?;
    match connect(path, true, MAX_CONNECTIONS, ACQUIRE_TIMEOUT).await {
        Ok(read) => Ok(ReadWrite {
            read,
            write,
            file: file_id(path).ok().flatten(),
            wal: file_id(&beside(path, "-wal")).ok().flatten(),
            shm: file_id(&beside(path, "-shm")).ok().flatten(),
            wal_checked_at: AtomicU64::new(0),
            gone: AtomicBool::new(false),
            index_replaced: AtomicBool::new(false),
            increments: IncrementQueue::default(),
        }),
        Err(error) => {
            write.close().await;
            Err(error)
        }
    }
}

async fn connect(
    path: &Path,
    existing_only: bool,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<Arc<Connections>, OpenFailure> {
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !existing_only)
    {
        // Once per store and cheap when the directory exists, so a blocking
        // call is fine here (tessera's tokio is built without `fs`).
        // Directories it creates are the owner's only, whatever the umask:
        // in one others can write, they could swap the database for one
        // holding ids they know. Existing directories are left as they are.
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(|error| {
            // The system's own words ("File exists") do not say which.
            OpenFailure::Other(Box::new(std::io::Error::new(
                error.kind(),
                format!(
                    "cannot create the directory {} for the session database: {error}",
                    parent.display()
                ),
            )))
        })?;
    }
    if !existing_only {
        create_private(path).map_err(|error| OpenFailure::Other(Box::new(error)))?;
        ensure_writable(path)?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(!existing_only)
        // Readers do not block the writer nor it them; with WAL, NORMAL is
        // durable across application crashes and consistent across power
        // loss, which is the right trade for sessions.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
        // Deleting a session deletes its values through the cascade.
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let opened = Connections::new(options, max_connections, acquire_timeout);
    let prepared = match opened.acquire().await {
        Ok(mut conn) if existing_only => check_schema(&mut conn).await,
        Ok(mut conn) => migrate(&mut conn).await,
        Err(error) => Err(OpenFailure::Other(Box::new(error))),
    };
    if let Err(error) = prepared {
        opened.close().await;
        return Err(error);
    }
    Ok(opened)
}

/// Refuses a file that is not this version's session store (with
/// `existing_only`) or that is another program's, before a connection that
/// sets WAL mode and the other settings writes to it: a refused file is
/// left exactly as it was. Reads through a read-only connection that sets
/// nothing; an empty or missing file has nothing to check.
async fn refuse_before_writing(path: &Path, existing_only: bool) -> Result<(), OpenFailure> {
    if std::fs::metadata(path).map_or(true, |metadata| metadata.len() == 0) {
        return Ok(());
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let checked = check_in_one_read(&mut conn, existing_only).await;
    // Nothing was written through it: closing cannot lose anything.
    let _ = conn.close().await;
    checked
}

/// The checks of [`refuse_before_writing`], in one read transaction: its
/// reads see one state of the file. Apart, another process's migration
/// could commit between the version's read (0) and the tables' (there),
/// which looked like a file whose version was lost, answered 500.
async fn check_in_one_read(
    conn: &mut SqliteConnection,
    existing_only: bool,
) -> Result<(), OpenFailure> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let checked = if existing_only {
        check_schema(&mut tx).await
    } else {
        match schema_version(&mut tx).await? {
            0 => check_no_other_tables(&mut tx).await,
            found if found > i64::from(SqliteStore::SCHEMA_VERSION) => {
                Err(newer_schema(&mut tx, found).await)
            }
            _ => check_tables(&mut tx).await,
        }
    };
    // The checks' own failure first: after a read that failed (no room on
    // the disk for the -shm file, say) SQLite may have ended the
    // transaction itself, and the rollback's "no transaction is active"
    // hid why.
    let rolled_back = tx.rollback().await;
    checked?;
    rolled_back?;
    Ok(())
}

/// Creates the database file, if it does not exist yet, readable and
/// writable by its owner only: it holds session ids, which are as good as
/// the visitors' logins. SQLite gives its `-wal` and `-shm` files the same
/// permissions. An existing file keeps the permissions it has.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// An existing database keeps its permissions (an operator may have chosen
/// them), but one that other users can read or change hands them the
/// session ids in it, as good as their owners' logins: said at startup.
fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // The `-wal` file holds the latest writes, ids included.
        for suffix in ["", "-wal", "-shm"] {
            let file = beside(path, suffix);
            let Ok(metadata) = std::fs::metadata(&file) else {
                continue;
            };
            let Some(exposure) = exposure(metadata.permissions().mode()) else {
                continue;
            };
            tracing::warn!(
                path = %file.display(),
                mode = %format_args!("{:o}", metadata.permissions().mode() & 0o777),
                "the session database {exposure}; make it readable and writable by its \
                 owner only (chmod 600)"
            );
            return;
        }
    }
}

/// What the permissions `mode` let users other than the file's owner do
/// with the session database, and what that costs, when it is more than
/// its group reading it (an operator's choice, for backups say); said
/// exactly, so that a read-only file (0444) is not called changeable.
#[cfg_attr(not(unix), allow(dead_code))]
fn exposure(mode: u32) -> Option<String> {
    let others_read = mode & 0o004 != 0;
    let others_write = mode & 0o002 != 0;
    let group_write = mode & 0o020 != 0;
    let can = match (others_read, others_write, group_write) {
        (false, false, false) => return None,
        (true, true, _) => "can be read and changed by other users of this machine",
        (true, false, true) => {
            "can be read by other users of this machine, and changed by its group's members"
        }
        (true, false, false) => "can be read by other users of this machine",
        (false, true, _) => "can be changed by other users of this machine",
        (false, false, true) => "can be changed by its group's members",
    };
    let read = "the session ids in it are as good as the visitors' logins";
    let write = "whoever changes it can write sessions of their own, as any user";
    Some(match (others_read, others_write || group_write) {
        (true, true) => format!("{can}: {read}, and {write}"),
        (true, false) => format!("{can}: {read}"),
        (false, _) => format!("{can}: {write}"),
    })
}

/// Refuses a database that this process may not write. SQLite opens a
/// write-protected file read-only without saying so, and a connection
/// opened that way refuses every write for as long as it lives: the store
/// would answer every write with an error even after the file became
/// writable again. Checked before the write connection is opened, so the
/// store reports the file as not writable, and opens once it is.
fn ensure_writable(path: &Path) -> Result<(), OpenFailure> {
    for file in ["", "-wal", "-shm"].map(|suffix| beside(path, suffix)) {
        match std::fs::OpenOptions::new().write(true).open(&file) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && file != path => {}
            Err(error) => {
                return Err(OpenFailure::Other(Box::new(std::io::Error::new(
                    error.kind(),
                    format!("{} is not writable: {error}", file.display()),
                ))))
            }
        }
    }
    Ok(())
}

/// Refuses, without opening it, a file that is not an SQLite database at all
/// (opening one with sqlx would already write to it: WAL mode is set on
/// connect). Blocking, but one small read once per store.
fn ensure_sqlite_file(path: &Path) -> Result<(), OpenFailure> {
    use std::io::Read as _;
    let mut magic = [0u8; 16];
    let mut file =
        std::fs::File::open(path).map_err(|error| OpenFailure::Other(Box::new(error)))?;
    match file.read_exact(&mut magic) {
        Ok(()) if &magic == b"SQLite format 3\0" => Ok(()),
        // SQLite takes an empty file for an empty database, which an
        // application would give its tables: a file not (yet) the store.
        _ if file.metadata().is_ok_and(|metadata| metadata.len() == 0) => Err(OpenFailure::Config(
            "not a tessera session store (the file is empty: no session tables yet)".to_owned(),
        )),
        _ => Err(OpenFailure::Config(
            "not a tessera session store (the file is not an SQLite database)".to_owned(),
        )),
    }
}

async fn schema_version(conn: &mut SqliteConnection) -> Result<i64, OpenFailure> {
    Ok(sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(conn)
        .await?)
}

/// The tables of the schema, which a file at the current version must hold.
const TABLES: [&str; 2] = ["tessera_sessions", "tessera_session_values"];

/// Refuses a file at the current version that lacks the session tables:
/// another program's, which keeps its own number in `user_version`.
async fn check_tables(conn: &mut SqliteConnection) -> Result<(), OpenFailure> {
    let missing = missing_session_tables(conn).await?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(OpenFailure::Config(format!(
        "not a tessera session store: the file's user_version is {}, as tessera's schema \
         sets it, but it lacks {} (another program's file? give the sessions a file of \
         their own)",
        SqliteStore::SCHEMA_VERSION,
        tables_named(&missing)
    )))
}

/// Refuses to add the session tables to a file that holds other tables:
/// another program's, whose `user_version` the migration would set.
async fn check_no_other_tables(conn: &mut SqliteConnection) -> Result<(), OpenFailure> {
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name LIMIT 5",
    )
    .fetch_all(conn)
    .await?;
    if others.is_empty() {
        return Ok(());
    }
    if others.iter().all(|name| TABLES.contains(&name.as_str())) {
        return Err(OpenFailure::Config(format!(
            "the file holds tessera's session tables but no schema version (its user_version \
             is 0: SQLite's .dump and .recover leave it out); if it was made by this version \
             of tessera, set it with sqlite3 FILE 'PRAGMA user_version = {}'",
            SqliteStore::SCHEMA_VERSION
        )));
    }
    Err(OpenFailure::Config(format!(
        "not a tessera session store: the file holds another program's tables ({}), and \
         tessera would set its user_version; give the sessions a file of their own",
        others.join(", ")
    )))
}

/// Refuses a file that does not hold exactly this version's schema.
async fn check_schema(conn: &mut SqliteConnection) -> Result<(), OpenFailure> {
    let found = schema_version(conn).await?;
    let known = i64::from(SqliteStore::SCHEMA_VERSION);
    if found == known {
        check_tables(conn).await
    } else if found > known {
        Err(newer_schema(conn, found).await)
    } else if found == 0 {
        // SQLite's own default, which no tessera leaves once it has made its
        // tables: another program's file, a dump's copy, or a database
        // without tables yet, each said as such.
        check_no_other_tables(conn).await?;
        Err(OpenFailure::Config(
            "not a tessera session store (the database holds no tables: no session tables yet)"
                .to_owned(),
        ))
    } else {
        Err(OpenFailure::Config(format!(
            "not a tessera session store of schema version {known} (the file has version {found})"
        )))
    }
}

/// A file of a `user_version` above this library's: migrated by a newer
/// tessera if it holds the session tables, another program's otherwise
/// (which keeps its own number there), where upgrading would not help.
async fn newer_schema(conn: &mut SqliteConnection, found: i64) -> OpenFailure {
    match missing_session_tables(conn).await {
        Ok(missing) if missing.is_empty() => OpenFailure::Config(format!(
            "the SQLite session database has schema version {found}, but this version of \
             tessera knows versions up to {}: upgrade tessera or use another file",
            SqliteStore::SCHEMA_VERSION
        )),
        Ok(missing) => OpenFailure::Config(format!(
            "not a tessera session store: the file's user_version is {found} and it lacks {} \
             (another program's file? give the sessions a file of their own)",
            tables_named(&missing)
        )),
        Err(failure) => failure,
    }
}

/// The schema's tables the file lacks.
async fn missing_session_tables(
    conn: &mut SqliteConnection,
) -> Result<Vec<&'static str>, OpenFailure> {
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?1, ?2)",
    )
    .bind(TABLES[0])
    .bind(TABLES[1])
    .fetch_all(conn)
    .await?;
    Ok(TABLES
        .into_iter()
        .filter(|table| !found.iter().any(|name| name == table))
        .collect())
}

/// "the table a" or "the tables a and b".
fn tables_named(tables: &[&str]) -> String {
    match tables {
        [table] => format!("the table {table}"),
        tables => format!("the tables {}", tables.join(" and ")),
    }
}

/// Brings the schema to [`SqliteStore::SCHEMA_VERSION`].
async fn migrate(conn: &mut SqliteConnection) -> Result<(), OpenFailure> {
    // Current already (the usual case): no write lock, so a reader that may
    // not write to the file can still open it.
    if schema_version(conn).await? == i64::from(SqliteStore::SCHEMA_VERSION) {
        return check_tables(conn).await;
    }
    // Under the write lock, so processes starting together take turns and
    // the second finds the schema already there.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let found: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await?;
    let known = i64::from(SqliteStore::SCHEMA_VERSION);
    if !(0..=known).contains(&found) {
        return Err(newer_schema(&mut tx, found).await);
    }
    let done = usize::try_from(found).unwrap_or(MIGRATIONS.len());
    if done == MIGRATIONS.len() {
        tx.rollback().await?;
        return check_tables(conn).await;
    }
    if done == 0 {
        check_no_other_tables(&mut tx).await?;
    }
    for step in &MIGRATIONS[done..] {
        // Through `Executor` (a boxed `Send` future): `RawSql::execute`'s
        // generic future trips rustc's higher-ranked `Send` check.
        (&mut *tx).execute(sqlx::raw_sql(step)).await?;
    }
    // PRAGMA takes no parameters; the value is our own constant.
    let set_version = format!("PRAGMA user_version = {known}");
    (&mut *tx).execute(sqlx::raw_sql(&set_version)).await?;
    tx.commit().await?;
    Ok(())
}

async fn is_live(
    conn: &mut SqliteConnection,
    id: &SessionId,
    now: u64,
) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM tessera_sessions WHERE id = ?1
         AND expires_at > ?2 AND (absolute_expires_at IS NULL OR absolute_expires_at > ?2)",
    )
    .bind(id.as_str())
    .bind(sql_time(now))
    .fetch_optional(conn)
    .await
    .map_err(db)?;
    Ok(found.is_some())
}

/// The stored text of one key.
async fn stored_text(
    conn: &mut SqliteConnection,
    id: &SessionId,
    key: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT value FROM tessera_session_values WHERE session_id = ?1 AND key = ?2",
    )
    .bind(id.as_str())
    .bind(key)
    .fetch_optional(conn)
    .await
    .map_err(db)
}

/// Applies `edit` to the list as stored now (the caller holds the write
/// lock). A value that does not parse counts as no list and is replaced, as
/// in every store.
async fn edit_list(
    conn: &mut SqliteConnection,
    id: &SessionId,
    edit: &ListEdit,
) -> Result<(), StoreError> {
    let current = stored_text(conn, id, &edit.key).await?;
    let current = current.and_then(|text| parse_value(&edit.key, &text).ok());
    match edit.apply(current.as_ref()) {
        Some(list) => put_value(conn, id, &edit.key, &list).await,
        None => remove_value(conn, id, &edit.key).await,
    }
}

async fn remove_value(
    conn: &mut SqliteConnection,
    id: &SessionId,
    key: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM tessera_session_values WHERE session_id = ?1 AND key = ?2")
        .bind(id.as_str())
        .bind(key)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

async fn put_value(
    conn: &mut SqliteConnection,
    id: &SessionId,
    key: &str,
    value: &Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tessera_session_values (session_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(id.as_str())
    .bind(key)
    .bind(tagged::to_string(value))
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(())
}

fn session_info(row: &SqliteRow) -> Result<SessionInfo, StoreError> {
    let id: String = row.try_get("id").map_err(db)?;
    let absolute: Option<i64> = row.try_get("absolute_expires_at").map_err(db)?;
    Ok(SessionInfo {
        id: parse_id(&id)?,
        user_id: row.try_get("user_id").map_err(db)?,
        created_at: time_from_sql(row.try_get("created_at").map_err(db)?, "created_at")?,
        expires_at: time_from_sql(row.try_get("expires_at").map_err(db)?, "expires_at")?,
        absolute_expires_at: absolute
            .map(|at| time_from_sql(at, "absolute_expires_at"))
            .transpose()?,
    })
}

impl Combining for SqliteStore {
    fn combiner(&self) -> &Combiner {
        &self.shared.combiner
    }

    fn handle(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }

    async fn load_alone(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        // One statement reads one snapshot: the values always belong to the
        // session row they come with, even while a writer commits.
        let rows = sqlx::query(LOAD)
            .bind(id.as_str())
            .bind(sql_time(now))
            .fetch_all(&mut *self.reader().await?)
            .await
            .map_err(db)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let absolute: Option<i64> = first.try_get("absolute_expires_at").map_err(db)?;
        let mut record = Record {
            data: Map::new(),
            user_id: first.try_get("user_id").map_err(db)?,
            created_at: time_from_sql(first.try_get("created_at").map_err(db)?, "created_at")?,
            expires_at: time_from_sql(first.try_get("expires_at").map_err(db)?, "expires_at")?,
            absolute_expires_at: absolute
                .map(|at| time_from_sql(at, "absolute_expires_at"))
                .transpose()?,
        };
        record.data = data_from_rows(&rows, db)?;
        Ok(Some(record))
    }

    async fn increment_alone(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError> {
        let increment = Increment {
            id: id.as_str().to_owned(),
            key: key.to_owned(),
            by,
            now: sql_time(now),
        };
        if let Some(text) = self.increment_at_once(increment).await? {
            return text
                .parse()
                .map(Some)
                .map_err(|_| StoreError::corrupt(format!("incrementing {key:?} stored {text:?}")));
        }
        let name = key.to_owned();
        // Boxed, being rare (a value the one statement leaves alone): in
        // place, its future would be part of every increment's.
        Box::pin(self.read_modify_write(id, key, now, move |current| {
            let key = name.as_str();
            let next = incremented(key, current.as_ref(), by)?;
            Ok((Value::from(next), next))
        }))
        .await
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn close(&self) {
        SqliteStore::close(self).await;
    }

    async fn load(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        combine::load(self, id, now).await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<bool, StoreError> {
        let mut writer = self.writer().await?;
        let (id, record) = (id.clone(), record.clone());
        to_completion(async move {
            let (id, record) = (&id, &record);
            let mut tx = begin_write(&mut writer).await?;
            let inserted = sqlx::query(
                "INSERT INTO tessera_sessions
                 (id, user_id, created_at, expires_at, absolute_expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.as_str())
            .bind(record.user_id.as_deref())
            .bind(sql_time(record.created_at))
            .bind(sql_time(record.expires_at))
            .bind(record.absolute_expires_at.map(sql_time))
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if inserted == 0 {
                tx.rollback().await.map_err(db)?;
                return Ok(false);
            }
            for (key, value) in &record.data {
                put_value(&mut tx, id, key, value).await?;
            }
            tx.commit().await.map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn update(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<bool, StoreError> {
        if changes.is_empty() {
            // Nothing to write: answer without taking the write lock.
            return is_live(&mut *self.reader().await?, id, now).await;
        }
        let outcome = self.apply(id, changes, now, false).await?;
        Ok(outcome != UpdateOutcome::Vanished)
    }

    async fn update_or_delete_if_empty(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<UpdateOutcome, StoreError> {
        self.apply(id, changes, now, true).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let deleted = sqlx::query("DELETE FROM tessera_sessions WHERE id = ?1")
            .bind(id.as_str())
            .execute(&mut *self.writer().await?)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn cycle_id(
        &self,
        old: &SessionId,
        new: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut writer = self.writer().await?;
        let (old, new) = (old.clone(), new.clone());
        to_completion(async move {
            let (old, new) = (&old, &new);
            let mut tx = begin_write(&mut writer).await?;
            // Copies the row only if `old` is live, and only if `new` is unused
            // (by any row, expired or not): one statement answers both questions.
            let copied = sqlx::query(
                "INSERT INTO tessera_sessions
                 (id, user_id, created_at, expires_at, absolute_expires_at)
             SELECT ?1, user_id, created_at, expires_at, absolute_expires_at
             FROM tessera_sessions
             WHERE id = ?2
               AND expires_at > ?3
               AND (absolute_expires_at IS NULL OR absolute_expires_at > ?3)
             ON CONFLICT (id) DO NOTHING",
            )
            .bind(new.as_str())
            .bind(old.as_str())
            .bind(sql_time(now))
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
            if copied == 0 {
                tx.rollback().await.map_err(db)?;
                return Ok(false);
            }
            sqlx::query("UPDATE tessera_session_values SET session_id = ?1 WHERE session_id = ?2")
                .bind(new.as_str())
                .bind(old.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("DELETE FROM tessera_sessions WHERE id = ?1")
                .bind(old.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError> {
        combine::increment(self, id, key, by, now).await
    }

    async fn append(
        &self,
        id: &SessionId,
        key: &str,
        value: &Value,
        now: u64,
    ) -> Result<Option<usize>, StoreError> {
        let (name, value) = (key.to_owned(), value.clone());
        self.read_modify_write(id, key, now, move |current| {
            let (key, value) = (name.as_str(), &value);
            // Through the shared helper, so the rules (absent or None start
            // a list, anything but a list is refused) are `MemoryStore`'s.
            let mut data = Map::new();
            if let Some(current) = current {
                data.insert(key.to_owned(), current);
            }
            let len = append_in_map(&mut data, key, value)?;
            let list = data.remove(key).ok_or_else(|| {
                StoreError::corrupt(format!("appending to {key:?} produced no list"))
            })?;
            Ok((list, len))
        })
        .await
    }

    async fn list(
        &self,
        user_id: Option<&str>,
        after: Option<&SessionId>,
        limit: usize,
        now: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        // TEXT compares bytewise, as `SessionId`'s `Ord` does.
        let mut conn = self.reader().await?;
        let mut page = ListingPage::new(after, limit);
        while let Some((after, wanted)) = page.wanted() {
            let rows = match user_id {
                Some(user_id) => {
                    sqlx::query(LIST_BY_USER)
                        .bind(user_id)
                        .bind(after)
                        .bind(sql_time(now))
                        .bind(sql_count(wanted))
                        .fetch_all(&mut *conn)
                        .await
                }
                None => {
                    sqlx::query(LIST_ALL)
                        .bind(after)
                        .bind(sql_time(now))
                        .bind(sql_count(wanted))
                        .fetch_all(&mut *conn)
                        .await
                }
            }
            .map_err(db)?;
            page.take(&rows, wanted, session_info)?;
        }
        Ok(page.finish())
    }

    async fn delete_user(&self, user_id: &str) -> Result<u64, StoreError> {
        // Ended at once, deleted later: the sweeper's bounded batches delete
        // the rows (a record dead since 1970 is the first it takes). Deleting
        // them here, with their values, held the write lock, which every
        // process using the file shares, for seconds for a user of 50,000
        // sessions; this update of one indexed row each takes a fortieth.
        // Those already dead but not yet purged are ended too, uncounted:
        // the user no longer had them.
        let now = sql_time(crate::server::unix_now());
        let mut writer = self.writer().await?;
        let user_id = user_id.to_owned();
        to_completion(async move {
            let mut tx = begin_write(&mut writer).await?;
            // Live as a load reads them: times of another type (written by
            // hand) make a session unreadable, not live, though SQLite
            // orders any text after every number.
            let live: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM tessera_sessions WHERE user_id = ?1
                 AND typeof(expires_at) = 'integer' AND expires_at > ?2
                 AND (absolute_expires_at IS NULL
                      OR (typeof(absolute_expires_at) = 'integer' AND absolute_expires_at > ?2))",
            )
            .bind(&user_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query(
                "UPDATE tessera_sessions SET expires_at = 0, user_id = NULL WHERE user_id = ?1",
            )
            .bind(&user_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(u64::try_from(live).unwrap_or(0))
        })
        .await
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> Result<u64, StoreError> {
        if batch == 0 {
            return Ok(0);
        }
        let purged = sqlx::query(PURGE)
            .bind(sql_time(now))
            .bind(sql_count(batch))
            .execute(&mut *self.writer().await?)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request boxes the future of `load`; over 1,000 bytes, glibc's
    /// `malloc` first consolidates every small free chunk (see the Redis
    /// store's test of the same). It was 1,448 bytes while opening the
    /// file, once per store, was part of it; 696 since, 752 with the
    /// combining's turns (`Batching`).
    #[test]
    fn the_boxed_load_stays_a_small_chunk_for_glibc() {
        let store = SqliteStore::new("never-opened.db");
        let id = SessionId::generate();
        let load = store.load(&id, 1_700_000_000);
        let size = std::mem::size_of_val(&*load);
        assert!(
            size <= crate::store::LARGEST_SMALL_MALLOC_REQUEST,
            "load's future takes {size} bytes"
        );
    }

    #[test]
    fn exposure_says_what_others_can_do() {
        for private in [0o600, 0o640, 0o400, 0o440, 0o100_600] {
            assert_eq!(exposure(private), None, "{private:o}");
        }
        for (mode, can) in [
            (0o444, "can be read by other users of this machine: "),
            (0o644, "can be read by other users of this machine: "),
            (0o604, "can be read by other users of this machine: "),
            (0o660, "can be changed by its group's members: "),
            (0o620, "can be changed by its group's members: "),
            (0o602, "can be changed by other users of this machine: "),
            (
                0o666,
                "can be read and changed by other users of this machine: ",
            ),
            (
                0o606,
                "can be read and changed by other users of this machine: ",
            ),
            (
                0o664,
                "can be read by other users of this machine, and changed by its group's members: ",
            ),
        ] {
            let said = exposure(mode).expect("exposed");
            assert!(said.starts_with(can), "{mode:o}: {said}");
            assert_eq!(
                said.contains("visitors' logins"),
                mode & 0o004 != 0,
                "{mode:o}: {said}"
            );
            assert_eq!(
                said.contains("changes it"),
                mode & 0o022 != 0,
                "{mode:o}: {said}"
            );
        }
    }

    /// The plan SQLite picks for `sql`, one line per step.
    async fn plan(conn: &mut SqliteConnection, sql: &str) -> Vec<String> {
        let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(conn)
            .await
            .expect("explain");
        rows.iter()
            .map(|row| row.try_get::<String, _>("detail").expect("detail"))
            .collect()
    }

    #[tokio::test]
    async fn queries_are_answered_from_indexes() {
        let dir = std::env::temp_dir().join(format!("tessera-sqlite-plans-{}", std::process::id()));
        let store = SqliteStore::open(dir.join("sessions.db"))
            .await
            .expect("open");
        let mut conn = store.reader().await.expect("reader");
        for (sql, wanted) in [
            (
                LOAD,
                &["sqlite_autoindex_tessera_sessions_1", "PRIMARY KEY"][..],
            ),
            (LIST_BY_USER, &["tessera_sessions_user_id"]),
            (LIST_ALL, &["sqlite_autoindex_tessera_sessions_1"]),
            (
                PURGE,
                &[
                    "tessera_sessions_expires_at",
                    "tessera_sessions_absolute_expires_at",
                ],
            ),
        ] {
            let plan = plan(&mut conn, sql).await;
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN ")),
                "a table scan in {sql}: {plan:#?}"
            );
            for index in wanted {
                assert!(
                    plan.iter().any(|step| step.contains(index)),
                    "{index} unused in {sql}: {plan:#?}"
                );
            }
        }
        drop(conn);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A session with one key that lives for ages.
    pub(super) fn live_record() -> Record {
        Record {
            data: Map::from([("k", Value::from(1))]),
            user_id: None,
            created_at: 1,
            expires_at: u64::MAX / 4,
            absolute_expires_at: None,
        }
    }

    /// "Log out everywhere" counts the sessions that were live as a load
    /// reads them: one whose times were written by hand as text, which a
    /// load refuses, goes uncounted (SQLite orders text after every number,
    /// so it was counted), as on the other stores.
    #[tokio::test]
    async fn deleting_a_users_sessions_counts_unreadable_ones_as_not_live() {
        let dir = std::env::temp_dir().join(format!("tessera-sqlite-count-{}", std::process::id()));
        let store = SqliteStore::open(dir.join("sessions.db"))
            .await
            .expect("open");
        let now = crate::server::unix_now();
        let owned = Record {
            user_id: Some("fay".to_owned()),
            expires_at: now + 3600,
            ..live_record()
        };
        let ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
        for id in &ids {
            assert!(store.create(id, &owned).await.expect("create"));
        }
        let mut writer = store.writer().await.expect("writer");
        for (id, column) in ids[1..].iter().zip(["expires_at", "absolute_expires_at"]) {
            sqlx::query(&format!(
                "UPDATE tessera_sessions SET {column} = 'tomorrow' WHERE id = ?1"
            ))
            .bind(id.as_str())
            .execute(&mut *writer)
            .await
            .expect("by hand");
        }
        drop(writer);
        for id in &ids[1..] {
            assert!(store.load(id, now).await.is_err(), "unreadable");
        }
        assert_eq!(store.delete_user("fay").await.expect("deleted"), 1);
        for id in &ids {
            assert_eq!(store.load(id, now).await.expect("load"), None);
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store whose file is deleted (with its directory) or replaced while
    /// in use stops, rather than go on writing into a file nobody can open
    /// again; reopened, it uses the file that is there.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_file_removed_or_replaced_in_use_stops_the_store() {
        let record = live_record();
        for replace in [false, true] {
            let dir = std::env::temp_dir().join(format!(
                "tessera-sqlite-gone-{}-{replace}",
                std::process::id()
            ));
            let path = dir.join("sessions.db");
            let store = SqliteStore::open(&path).await.expect("open");
            let id = SessionId::generate();
            assert!(store.create(&id, &record).await.expect("create"));
            if replace {
                std::fs::rename(&path, dir.join("old.db")).expect("moved away");
                std::fs::write(&path, b"").expect("another file");
            } else {
                std::fs::remove_dir_all(&dir).expect("removed");
            }
            for result in [
                store.load(&id, 2).await.map(|_| ()),
                store
                    .create(&SessionId::generate(), &record)
                    .await
                    .map(|_| ()),
                store.delete(&id).await.map(|_| ()),
            ] {
                match result {
                    Err(StoreError::Unavailable(error)) => {
                        assert!(error.to_string().contains("removed or replaced"), "{error}")
                    }
                    other => panic!("replace={replace}: {other:?}"),
                }
            }
            store.close().await;
            let reopened = SqliteStore::open(&path).await.expect("reopen");
            assert_eq!(reopened.load(&id, 2).await.expect("load"), None);
            assert!(reopened.create(&id, &record).await.expect("create"));
            reopened.close().await;
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// After one of the store's files went: writes stop at once, reads once
    /// they check (every 100 ms at most), and both stay stopped, saying
    /// which file it was.
    async fn stays_stopped_saying(store: &SqliteStore, id: &SessionId, file: &str) {
        tokio::time::sleep(WAL_CHECK_INTERVAL).await;
        for result in [
            store.load(id, 2).await.map(|_| ()),
            store.increment(id, "n", 1, 2).await.map(|_| ()),
            store
                .create(&SessionId::generate(), &live_record())
                .await
                .map(|_| ()),
            store.load(id, 2).await.map(|_| ()),
        ] {
            match result {
                Err(StoreError::Unavailable(error)) => {
                    assert!(error.to_string().contains(file), "{error}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// The `-wal` file deleted while the store runs (taken for a temporary
    /// file): the store stops, as for a deleted database. It wrote on into
    /// the deleted log, which another process no longer saw (a revocation
    /// by `tessera sessions` was lost, the file could be corrupted).
    #[tokio::test]
    async fn a_wal_file_removed_in_use_stops_the_store() {
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-wal-gone-{}", std::process::id()));
        let path = dir.join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let id = SessionId::generate();
        assert!(store.create(&id, &live_record()).await.expect("create"));
        std::fs::remove_file(beside(&path, "-wal")).expect("the -wal file is there");
        let _ = std::fs::remove_file(beside(&path, "-shm"));
        stays_stopped_saying(&store, &id, "-wal").await;
        store.close().await;
        let reopened = SqliteStore::open(&path).await.expect("reopen");
        assert!(reopened
            .create(&SessionId::generate(), &live_record())
            .await
            .expect("create"));
        reopened.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The `-shm` file (the WAL's index) deleted while the store runs: the
    /// store stops, as for a deleted `-wal`. It went on with its own copy,
    /// while the `tessera` command or another instance opening the file made
    /// a new one, and each overwrote the other's writes. (Between two
    /// processes, with the close that must not checkpoint: tessera-cli's
    /// `a_revocation_made_while_the_shm_file_was_gone_stands`; within one,
    /// SQLite shares one index among a file's connections.)
    #[tokio::test]
    async fn a_shm_file_removed_in_use_stops_the_store() {
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-shm-gone-{}", std::process::id()));
        let path = dir.join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let id = SessionId::generate();
        assert!(store.create(&id, &live_record()).await.expect("create"));
        std::fs::remove_file(beside(&path, "-shm")).expect("the -shm file is there");
        stays_stopped_saying(&store, &id, "-shm").await;
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A database path under a regular file says which directory could not
    /// be made (it said only "File exists").
    #[tokio::test]
    async fn a_directory_that_cannot_be_made_is_named() {
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-no-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let file = dir.join("a-file");
        std::fs::write(&file, b"not a directory").expect("a file");
        let store = SqliteStore::new(file.join("sessions.db"));
        match store.load(&SessionId::generate(), 2).await {
            Err(StoreError::Unavailable(error)) => {
                let text = error.to_string();
                assert!(
                    text.contains("cannot create the directory") && text.contains("a-file"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A tessera file that lost its schema version (SQLite's `.dump` and
    /// `.recover`, the way to salvage a damaged file, leave it out) is
    /// said to be one, with how to set the version, not "another
    /// program's", whose advice (a file of its own) threw its sessions
    /// away. A relative path is resolved when the store is made.
    #[tokio::test]
    async fn a_tessera_file_without_its_version_says_how_to_set_it() {
        use sqlx::ConnectOptions as _;
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-dumped-{}", std::process::id()));
        let path = dir.join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let id = SessionId::generate();
        assert!(store.create(&id, &live_record()).await.expect("create"));
        store.close().await;
        let set_version = |version: u32| {
            let path = path.clone();
            async move {
                let mut conn = SqliteConnectOptions::new()
                    .filename(&path)
                    .connect()
                    .await
                    .expect("connect");
                sqlx::raw_sql(&format!("PRAGMA user_version = {version}"))
                    .execute(&mut conn)
                    .await
                    .expect("user_version");
                conn.close().await.expect("close");
            }
        };
        set_version(0).await;
        match SqliteStore::open(&path).await.err() {
            Some(StoreError::Config(message)) => assert!(
                message.text().contains("tessera's session tables")
                    && message.text().contains(&format!(
                        "PRAGMA user_version = {}",
                        SqliteStore::SCHEMA_VERSION
                    )),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        set_version(SqliteStore::SCHEMA_VERSION).await;
        let reopened = SqliteStore::open(&path).await.expect("open");
        assert!(reopened.load(&id, 2).await.expect("load").is_some());
        reopened.close().await;
        let _ = std::fs::remove_dir_all(&dir);

        let relative = SqliteStore::new("relative-sessions.db");
        assert_eq!(
            relative.path(),
            std::env::current_dir()
                .expect("a directory")
                .join("relative-sessions.db")
        );
    }

    /// A URL naming a directory is refused, saying so, for the application
    /// and the CLI alike.
    #[tokio::test]
    async fn a_directory_is_no_database_file() {
        let dir = std::env::temp_dir().join(format!("tessera-sqlite-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        for opened in [
            SqliteStore::open(&dir).await.err(),
            SqliteStore::open_existing(&dir).await.err(),
        ] {
            match opened {
                Some(StoreError::Config(message)) => {
                    assert!(message.text().contains("is a directory"), "{message}")
                }
                other => panic!("{other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file opened as an existing store that is not one: an empty file
    /// (which SQLite would take for an empty database, and an application
    /// would set up) is said to be empty, one of other bytes not to be a
    /// database; neither is written to.
    #[tokio::test]
    async fn an_empty_or_foreign_file_is_no_existing_store() {
        let dir = std::env::temp_dir().join(format!("tessera-sqlite-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        for (name, bytes, said) in [
            ("empty.db", &b""[..], "the file is empty"),
            (
                "text.db",
                &b"not a database, but long enough\n"[..],
                "not an SQLite database",
            ),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, bytes).expect("the file");
            match SqliteStore::open_existing(&path).await {
                Err(StoreError::Config(message)) => {
                    assert!(
                        message.text().contains("not a tessera session store"),
                        "{message}"
                    );
                    assert!(message.text().contains(said), "{name}: {message}");
                }
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "{name}");
        }
        // Opened to be the store, the empty file becomes one.
        let store = SqliteStore::open(&dir.join("empty.db"))
            .await
            .expect("an empty file is set up");
        store.close().await;
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }

    /// Another program's SQLite file is refused, not given the session
    /// tables and a `user_version` of tessera's: one with tables of its
    /// own at version 0, one that lacks the session tables at the version
    /// tessera's schema has (many programs count their own schema from 1),
    /// which answered "no such table" at every request, and one at a later
    /// version, which is no newer tessera's.
    #[tokio::test]
    async fn another_programs_file_is_refused() {
        use sqlx::ConnectOptions as _;
        let dir = std::env::temp_dir().join(format!("tessera-sqlite-other-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        for (name, version) in [("unversioned.db", 0), ("versioned.db", 1), ("later.db", 7)] {
            let path = dir.join(name);
            let mut conn = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .connect()
                .await
                .expect("create the other program's file");
            sqlx::raw_sql(&format!(
                "CREATE TABLE sessions (id TEXT); CREATE TABLE users (name TEXT); \
                 PRAGMA user_version = {version};"
            ))
            .execute(&mut conn)
            .await
            .expect("its tables");
            conn.close().await.expect("close");

            for opened in [
                SqliteStore::open(&path).await.err(),
                SqliteStore::open_existing(&path).await.err(),
            ] {
                match opened {
                    Some(StoreError::Config(message)) => {
                        assert!(
                            message.text().contains("not a tessera session store"),
                            "{message}"
                        );
                        // A newer tessera would not read it either.
                        assert!(!message.text().contains("upgrade tessera"), "{message}");
                        // Named for what it is, not as a tessera schema of
                        // version 0.
                        if version == 0 {
                            assert!(
                                message
                                    .text()
                                    .contains("another program's tables (sessions, users)"),
                                "{message}"
                            );
                        }
                        if version == 1 {
                            assert!(
                                message.text().contains(
                                    "lacks the tables tessera_sessions and tessera_session_values"
                                ),
                                "{message}"
                            );
                        }
                    }
                    other => panic!("{name}: {other:?}"),
                }
            }
            let mut conn = SqliteConnectOptions::new()
                .filename(&path)
                .connect()
                .await
                .expect("reopen");
            let kept: i64 = sqlx::query_scalar("PRAGMA user_version")
                .fetch_one(&mut conn)
                .await
                .expect("user_version");
            assert_eq!(kept, version, "{name}");
            // Refused before anything wrote to it: still in its own
            // journal mode, not switched to WAL.
            let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut conn)
                .await
                .expect("journal_mode");
            assert_eq!(journal, "delete", "{name}");
            let tables: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE 'tessera%'")
                    .fetch_one(&mut conn)
                    .await
                    .expect("tables");
            assert_eq!(tables, 0, "{name}");
            conn.close().await.expect("close");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store's file that lost one of its tables (dropped by hand) is
    /// refused naming that table alone, not both.
    #[tokio::test]
    async fn a_file_missing_one_table_is_refused_naming_it() {
        use sqlx::ConnectOptions as _;
        let dir = std::env::temp_dir().join(format!("tessera-sqlite-one-{}", std::process::id()));
        let path = dir.join("sessions.db");
        SqliteStore::open(&path).await.expect("made").close().await;
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .expect("open by hand");
        sqlx::raw_sql("DROP TABLE tessera_session_values")
            .execute(&mut conn)
            .await
            .expect("drop");
        conn.close().await.expect("close");
        for opened in [
            SqliteStore::open(&path).await.err(),
            SqliteStore::open_existing(&path).await.err(),
        ] {
            match opened {
                Some(StoreError::Config(message)) => assert!(
                    message
                        .text()
                        .contains("lacks the table tessera_session_values ("),
                    "{message}"
                ),
                other => panic!("{other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An increment whose commit fails (here a deferred foreign key that a
    /// trigger breaks, as a full disk would fail it) is an error, not the
    /// value it would have stored; once the commit can succeed again, the
    /// next one counts from the value actually stored.
    #[tokio::test]
    async fn an_increment_whose_commit_fails_is_an_error() {
        let dir = std::env::temp_dir().join(format!(
            "tessera-sqlite-commit-fails-{}",
            std::process::id()
        ));
        let store = SqliteStore::open(dir.join("sessions.db"))
            .await
            .expect("open");
        let id = SessionId::generate();
        assert!(store.create(&id, &live_record()).await.expect("create"));
        assert_eq!(
            store.increment(&id, "n", 3, 2).await.expect("increment"),
            Some(3)
        );
        {
            let mut writer = store.writer().await.expect("writer");
            for statement in [
                "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
                "CREATE TABLE child (parent_id INTEGER \
                 REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
                "CREATE TRIGGER fails_at_commit AFTER UPDATE ON tessera_session_values \
                 BEGIN INSERT INTO child VALUES (42); END",
            ] {
                sqlx::query(statement)
                    .execute(&mut *writer)
                    .await
                    .expect(statement);
            }
        }
        let failed = store.increment(&id, "n", 1, 2).await;
        // The trigger's constraint is tables changed by hand: a
        // configuration error (a full disk would be an outage).
        assert!(matches!(failed, Err(StoreError::Config(_))), "{failed:?}");
        let stored = store.load(&id, 2).await.expect("load").expect("live");
        assert_eq!(stored.data["n"], Value::from(3));

        sqlx::query("DROP TRIGGER fails_at_commit")
            .execute(&mut *store.writer().await.expect("writer"))
            .await
            .expect("drop the trigger");
        assert_eq!(
            store.increment(&id, "n", 1, 2).await.expect("increment"),
            Some(4)
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// More increments at once than one batch takes: every one is answered
    /// and counted once, including a caller whose own increment was still
    /// queued behind the batch it ran for others.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_increments_at_once_than_a_batch_takes_all_count() {
        let dir = std::env::temp_dir().join(format!(
            "tessera-sqlite-many-at-once-{}",
            std::process::id()
        ));
        let store = Arc::new(
            SqliteStore::open(dir.join("sessions.db"))
                .await
                .expect("open"),
        );
        let id = SessionId::generate();
        assert!(store.create(&id, &live_record()).await.expect("create"));
        let mut expected = 0;
        for round in 0..10 {
            let tasks: Vec<_> = (0..300)
                .map(|_| {
                    let (store, id) = (Arc::clone(&store), id.clone());
                    // Past the combining of one counter's increments, which
                    // would hand the writer's queue one at a time.
                    tokio::spawn(async move { store.increment_alone(&id, "n", 1, 2).await })
                })
                .collect();
            let all = async {
                let mut totals = Vec::new();
                for task in tasks {
                    totals.push(task.await.expect("task").expect("increment").expect("live"));
                }
                totals
            };
            let mut totals = tokio::time::timeout(std::time::Duration::from_secs(20), all)
                .await
                .unwrap_or_else(|_| panic!("round {round}: an increment was never answered"));
            totals.sort_unstable();
            assert_eq!(
                totals,
                ((expected + 1)..=(expected + 300)).collect::<Vec<i64>>()
            );
            expected += 300;
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Increments queued while the writer is busy run as one transaction.
    /// When one of them fails there (a trigger refuses one session's
    /// writes, as a constraint or a full disk might), that batch rolls back
    /// and each increment runs alone: the refused session's increments fail
    /// and change nothing, every other one counts exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_failing_increment_fails_no_other_in_its_batch() {
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-batch-fails-{}", std::process::id()));
        let store = Arc::new(
            SqliteStore::open(dir.join("sessions.db"))
                .await
                .expect("open"),
        );
        let refused = SessionId::generate();
        let counted: Vec<SessionId> = (0..4).map(|_| SessionId::generate()).collect();
        for id in counted.iter().chain([&refused]) {
            assert!(store.create(id, &live_record()).await.expect("create"));
        }
        for statement in ["INSERT", "UPDATE"] {
            let trigger = format!(
                "CREATE TRIGGER refuse_{statement} BEFORE {statement} ON tessera_session_values \
                 WHEN NEW.session_id = '{refused}' BEGIN SELECT RAISE(ABORT, 'refused'); END",
                refused = refused.as_str(),
            );
            sqlx::query(&trigger)
                .execute(&mut *store.writer().await.expect("writer"))
                .await
                .expect("create the trigger");
        }
        const ROUNDS: usize = 30;
        const PER_SESSION: usize = 3;
        for _ in 0..ROUNDS {
            let mut tasks = Vec::new();
            for (at, id) in counted.iter().chain([&refused]).enumerate() {
                for _ in 0..PER_SESSION {
                    let (store, id) = (Arc::clone(&store), id.clone());
                    let key = if at % 2 == 0 { "n" } else { "k" };
                    tasks.push((
                        id.clone(),
                        // Past the combining of one counter's increments, so
                        // that each session's three meet in the writer's queue.
                        tokio::spawn(async move { store.increment_alone(&id, key, 1, 2).await }),
                    ));
                }
            }
            for (id, task) in tasks {
                let result = task.await.expect("task");
                if id == refused {
                    // Refused by a trigger: tables changed by hand.
                    assert!(matches!(result, Err(StoreError::Config(_))), "{result:?}");
                } else {
                    assert!(matches!(result, Ok(Some(_))), "{result:?}");
                }
            }
        }
        for (at, id) in counted.iter().enumerate() {
            let data = store.load(id, 2).await.expect("load").expect("live").data;
            // "k" starts at 1 (`live_record`), "n" is new.
            let (key, start) = if at % 2 == 0 { ("n", 0) } else { ("k", 1) };
            let expected = i64::try_from(start + ROUNDS * PER_SESSION).expect("small");
            assert_eq!(data[key], Value::from(expected), "session {at}");
        }
        let untouched = store.load(&refused, 2).await.expect("load").expect("live");
        assert_eq!(untouched.data, live_record().data);
        let failed_batches = store
            .connections()
            .await
            .expect("open")
            .increments
            .failed_batches
            .load(Ordering::Relaxed);
        assert!(failed_batches > 0, "no batch of several ever failed");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A database that cannot be written when the store opens it (made
    /// read-only by an operator, say) makes operations fail, and once it is
    /// writable again the store opens and works, with no restart. Run as an
    /// unprivileged user, since permissions do not bind root: as root, this
    /// test runs itself again through `setpriv` as `nobody`.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_write_protected_file_works_again_once_writable() {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let dir = std::env::temp_dir().join(format!("tessera-sqlite-ro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let root = std::fs::metadata("/proc/self").expect("/proc").uid() == 0;
        if root {
            // A copy of this test binary where `nobody` may run it, wherever
            // the checkout is (a home directory may be closed to others).
            let copy = dir.join("tests");
            std::fs::copy(std::env::current_exe().expect("this test binary"), &copy)
                .expect("a copy of the test binary");
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            let status = std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(&copy)
                .args([
                    "--exact",
                    "store::sqlite::tests::write_protected_scenario",
                    "--ignored",
                    "--nocapture",
                ])
                .env("TESSERA_WRITE_PROTECT_DIR", &dir)
                .status()
                .expect("setpriv (util-linux) runs the scenario as nobody");
            assert!(status.success(), "the scenario as nobody: {status}");
        } else {
            write_protected(&dir).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Run by the test above as an unprivileged user.
    #[cfg(unix)]
    #[tokio::test]
    #[ignore = "run as an unprivileged user by a_write_protected_file_works_again_once_writable"]
    async fn write_protected_scenario() {
        let dir = std::env::var_os("TESSERA_WRITE_PROTECT_DIR").expect("the directory to use");
        write_protected(Path::new(&dir)).await;
    }

    #[cfg(unix)]
    async fn write_protected(parent: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        // A directory of this user's own, whose permissions it may change.
        let dir = &parent.join("store");
        std::fs::create_dir_all(dir).expect("a directory");
        let path = dir.join("sessions.db");
        let record = live_record();
        let store = SqliteStore::open(&path).await.expect("open");
        let id = SessionId::generate();
        assert!(store.create(&id, &record).await.expect("create"));
        // The files as an application that stopped without closing the
        // store leaves them: with its WAL and shared memory, which let
        // SQLite open the database read-only once they are protected.
        let files = ["sessions.db", "sessions.db-wal", "sessions.db-shm"];
        let copies: Vec<Vec<u8>> = files
            .iter()
            .map(|file| std::fs::read(dir.join(file)).expect(file))
            .collect();
        store.close().await;
        for (file, bytes) in files.iter().zip(&copies) {
            std::fs::write(dir.join(file), bytes).expect(file);
        }
        let mode = |mode| std::fs::Permissions::from_mode(mode);
        for file in ["sessions.db", "sessions.db-wal", "sessions.db-shm"] {
            let _ = std::fs::set_permissions(dir.join(file), mode(0o444));
        }
        std::fs::set_permissions(dir, mode(0o555)).expect("chmod");

        // Started while the file is read-only: operations fail, clearly.
        let store = SqliteStore::new(&path);
        match store.create(&SessionId::generate(), &record).await {
            Err(StoreError::Unavailable(error)) => {
                assert!(error.to_string().contains("not writable"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        // Writable again: the same store works, with no restart.
        std::fs::set_permissions(dir, mode(0o755)).expect("chmod");
        for file in ["sessions.db", "sessions.db-wal", "sessions.db-shm"] {
            let _ = std::fs::set_permissions(dir.join(file), mode(0o600));
        }
        assert!(store
            .create(&SessionId::generate(), &record)
            .await
            .expect("writes work again"));
        assert!(store.load(&id, 2).await.expect("load").is_some());

        // A directory that cannot be searched for a while: whether the file
        // is still the one opened cannot be told, which is said as such (it
        // was said removed or replaced, calling for a restart), and the
        // store works again once it can be.
        std::fs::set_permissions(dir, mode(0o000)).expect("chmod");
        match store.load(&id, 2).await {
            Err(StoreError::Unavailable(error)) => {
                let text = error.to_string();
                assert!(
                    text.contains("cannot check") && !text.contains("removed"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        std::fs::set_permissions(dir, mode(0o755)).expect("chmod");
        assert!(store.load(&id, 2).await.expect("load").is_some());
        store.close().await;

        // A writable file in a directory that is not: SQLite's "attempt to
        // write a readonly database" is told apart, and names the directory.
        for file in ["sessions.db-wal", "sessions.db-shm"] {
            let _ = std::fs::remove_file(dir.join(file));
        }
        std::fs::set_permissions(dir, mode(0o555)).expect("chmod");
        let store = SqliteStore::new(&path);
        match store.create(&SessionId::generate(), &record).await {
            Err(StoreError::Unavailable(error)) => {
                assert!(
                    error.to_string().contains("its directory is not writable"),
                    "{error}"
                )
            }
            other => panic!("{other:?}"),
        }
        std::fs::set_permissions(dir, mode(0o755)).expect("chmod");
        assert!(store.load(&id, 2).await.expect("load").is_some());
        store.close().await;

        // A store closed cleanly (no -wal, no -shm) whose file alone is made
        // read-only, in a writable directory: refused without SQLite making
        // a read-only -wal and -shm beside it (which kept it refused after
        // the file was writable again, restart or not).
        for file in ["sessions.db-wal", "sessions.db-shm"] {
            let _ = std::fs::remove_file(dir.join(file));
        }
        std::fs::set_permissions(&path, mode(0o444)).expect("chmod");
        let store = SqliteStore::new(&path);
        match store.create(&SessionId::generate(), &record).await {
            Err(StoreError::Unavailable(error)) => {
                assert!(error.to_string().contains("not writable"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        for file in ["sessions.db-wal", "sessions.db-shm"] {
            assert!(!dir.join(file).exists(), "{file} was made");
        }
        std::fs::set_permissions(&path, mode(0o600)).expect("chmod");
        assert!(store
            .create(&SessionId::generate(), &record)
            .await
            .expect("writes work again"));
        store.close().await;
    }

    /// Writes queued while another process holds the file's write lock
    /// each fail within 10 s: the busy timeout, and at most as long again
    /// waiting for the write connection behind one that waits for the lock
    /// (the third queued took 15 s).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_a_lock_held_elsewhere_fail_within_ten_seconds() {
        use sqlx::Connection as _;
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-queued-{}", std::process::id()));
        let path = dir.join("sessions.db");
        let store = Arc::new(SqliteStore::open(&path).await.expect("open"));
        let id = SessionId::generate();
        assert!(store.create(&id, &live_record()).await.expect("create"));
        let mut holder =
            sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("another program");
        let held = holder
            .begin_with("BEGIN IMMEDIATE")
            .await
            .expect("the write lock");
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..4 {
            let store = Arc::clone(&store);
            let id = id.clone();
            writes.spawn(async move {
                let started = std::time::Instant::now();
                let mut changes = Changes::default();
                changes.set.insert(format!("n{n}"), Value::from(n));
                let result = store.update(&id, &changes, 2).await;
                (result, started.elapsed())
            });
            // In this order, each behind the one before.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for (result, took) in writes.join_all().await {
            assert!(
                matches!(result, Err(StoreError::Unavailable(_))),
                "{result:?}"
            );
            assert!(took < Duration::from_millis(11_000), "{took:?}");
        }
        drop(held);
        drop(holder);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Tables changed by hand while the store runs fail its statements
    /// every time: a configuration error (500), as on PostgreSQL, not an
    /// outage (503) that clients would retry for ever.
    #[tokio::test]
    async fn tables_changed_by_hand_are_a_configuration_error() {
        use sqlx::Connection as _;
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-by-hand-{}", std::process::id()));
        let path = dir.join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let id = SessionId::generate();
        assert!(store.create(&id, &live_record()).await.expect("create"));
        let mut other =
            sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("another program");
        sqlx::query(
            "CREATE TRIGGER refuse_updates BEFORE UPDATE ON tessera_sessions
             BEGIN SELECT RAISE(ABORT, 'read only'); END",
        )
        .execute(&mut other)
        .await
        .expect("a trigger");
        let mut changes = Changes {
            expires_at: Some(u64::MAX / 8),
            ..Changes::default()
        };
        changes.set.insert("n".to_owned(), Value::from(1));
        let refused = store.update(&id, &changes, 2).await;
        assert!(matches!(refused, Err(StoreError::Config(_))), "{refused:?}");
        sqlx::query("ALTER TABLE tessera_session_values RENAME COLUMN value TO v")
            .execute(&mut other)
            .await
            .expect("a column renamed");
        let loaded = store.load(&id, 2).await;
        match loaded {
            Err(error @ StoreError::Config(_)) => {
                let message = error.to_string();
                assert!(message.contains("changed by hand"), "{message}");
                assert!(!message.contains("  "), "{message}");
            }
            other => panic!("{other:?}"),
        }
        other.close().await.expect("closed");
        store.close().await;
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Instances starting together on a file that does not exist yet all
    /// open it (taking turns at the journal-mode switch and the schema),
    /// rather than one failing at once with "database is locked".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_opening_a_new_file_together_all_open_it() {
        let dir =
            std::env::temp_dir().join(format!("tessera-sqlite-together-{}", std::process::id()));
        for round in 0..20 {
            let path = dir.join(format!("sessions-{round}.db"));
            let opens = (0..4).map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteStore::open(&path).await })
            });
            for open in opens.collect::<Vec<_>>() {
                let store = open
                    .await
                    .expect("the task")
                    .unwrap_or_else(|error| panic!("round {round}: {error}"));
                store.close().await;
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A `-wal` file that grew while a reader kept checkpoints from
    /// finishing is cut back once one finishes (it stayed at its largest,
    /// 400 MB in one report, until the application stopped).
    #[tokio::test]
    async fn the_wal_file_shrinks_after_a_reader_held_it_open() {
        use sqlx::Connection as _;
        let dir = std::env::temp_dir().join(format!("tessera-sqlite-wal-{}", std::process::id()));
        let path = dir.join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let mut reader =
            sqlx::sqlite::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("a reader");
        let mut snapshot = reader.begin().await.expect("a read transaction");
        sqlx::query("SELECT count(*) FROM tessera_sessions")
            .execute(&mut *snapshot)
            .await
            .expect("the snapshot is taken");
        let mut record = live_record();
        record
            .data
            .insert("big".to_owned(), Value::from("x".repeat(1024 * 1024)));
        let write = async || {
            store
                .create(&SessionId::generate(), &record)
                .await
                .expect("a write");
        };
        let wal = dir.join("sessions.db-wal");
        let limit = WAL_SIZE_LIMIT;
        while std::fs::metadata(&wal).expect("the WAL").len() < limit + limit / 4 {
            write().await;
        }
        snapshot.rollback().await.expect("the reader lets go");
        reader.close().await.expect("closed");
        // The next writes checkpoint the whole log and start it over.
        for _ in 0..8 {
            write().await;
        }
        let size = std::fs::metadata(&wal).expect("the WAL").len();
        assert!(size <= limit, "the WAL is still {size} bytes");
        store.close().await;
        std::fs::remove_dir_all(&dir).ok();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let base = std::env::temp_dir().join(format!("tessera-sqlite-mode-{}", std::process::id()));
        let dir = base.join("sub");
        let path = dir.join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open");
        // The directories it created are the owner's only.
        for created in [&base, &dir] {
            let mode = std::fs::metadata(created)
                .expect("a directory")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{}: {mode:o}", created.display());
        }
        let record = live_record();
        store
            .create(&SessionId::generate(), &record)
            .await
            .expect("a write, so the WAL exists");
        for file in ["sessions.db", "sessions.db-wal", "sessions.db-shm"] {
            let mode = std::fs::metadata(dir.join(file))
                .expect(file)
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
        }
        store.close().await;
        // A file that exists keeps its permissions.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let store = SqliteStore::open(&path).await.expect("reopen");
        let mode = std::fs::metadata(&path).expect("db").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        store.close().await;
        let _ = std::fs::remove_dir_all(&base);
    }
}
