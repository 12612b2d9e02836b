//! Sessions in PostgreSQL, through sqlx (feature `postgres`).
//!
//! A row per session in `tessera_sessions` and a row per key in
//! `tessera_session_values`, each value as Flask's tagged JSON in a `TEXT`
//! column (not `jsonb`, which would reorder keys and normalise numbers: the
//! exact bytes are kept). Because values are rows,
//! [`update`](SessionStore::update) writes only the keys a request changed, in
//! one statement, so two requests on one session that write different keys
//! both persist; [`increment`](SessionStore::increment) and
//! [`append`](SessionStore::append) are read-modify-writes under a lock on the
//! session's row, so concurrent ones never lose an update. Concurrent
//! increments of one counter from one process go as one: those that come
//! in one turn of the scheduler go together by their sum, each caller
//! answered the value it would have seen in turn, so that a hot counter
//! costs the database a statement per turn instead of a queue of
//! transactions on its row lock. Concurrent loads of one session go alike,
//! as one query made after they all came, each caller answered with its
//! own copy of what it read. Those locks can
//! deadlock between a visitor's concurrent requests; PostgreSQL ends one of
//! them after `deadlock_timeout` (a second by default), rolling it back
//! whole, and the store runs that operation again (up to three times)
//! rather than failing the request: such a request is a second late, not
//! answered with 503.
//!
//! [`PostgresStore::new`] only parses the URL. The first operation opens a
//! connection pool and creates or migrates the schema; if that fails (the
//! server is down, a permission is missing) the operation returns
//! [`StoreError::Unavailable`] and the next one tries again, so an application
//! started before its database recovers by itself. Connections the server
//! drops (a restart, `pg_terminate_backend`, a failover) are noticed when
//! they are next taken from the pool after sitting unused for 10 ms and
//! replaced (under load, by the operation that finds one dead, which fails).
//! Connections opened while the database was read-only (a primary demoted
//! to a standby, `default_transaction_read_only`) stay read-only, and those
//! opened while it had a short `statement_timeout` or `lock_timeout` keep
//! it: once a statement is refused for one of these, every connection
//! opened before is replaced (at most once a second), so the store works
//! again within a few seconds of the setting being undone. The row locks are
//! written for `READ COMMITTED`: once a stricter default isolation is seen
//! (when the store opens, or by a serialization failure), connections are
//! set to it when opened.
//!
//! A pooled connection answers only while the runtime that opened it runs.
//! So operations started on a single-threaded runtime (each actix-web
//! worker runs one) run on a thread of their own that tessera starts, where
//! every connection is opened: one worker's pooled connection taken by
//! another would otherwise wait until the first worker's handler yields (a
//! handler that blocks its thread stalled every worker's sessions) and fail
//! once that worker's runtime is gone. On a multi-threaded runtime (axum's)
//! operations run where they are called.
//!
//! ```no_run
//! use tessera::store::{PostgresStore, Record, SessionId, SessionStore};
//!
//! # async fn run() -> Result<(), tessera::store::StoreError> {
//! // Nothing is connected yet; `connect` would connect and migrate now.
//! let store = PostgresStore::new("postgres://app@db.internal/app")?.with_schema("sessions")?;
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
//! // A sweeper, from time to time (any number of instances at once):
//! while store.purge_expired(now, 1000).await? == 1000 {}
//! # Ok(()) }
//! ```
//!
//! # Schema
//!
//! The tables live in the schema given to [`PostgresStore::with_schema`]
//! (created if missing), or else wherever the connection's `search_path`
//! creates tables (usually `public`). The version is kept in
//! `tessera_schema_migrations`, one row per applied step. Steps run in one
//! transaction under an advisory lock, so application instances starting
//! together take turns and the later ones find the work done; newer versions
//! of tessera migrate older schemas forward and refuse newer ones. When the
//! schema is current, opening needs no privilege beyond reading and writing
//! the tables, so the application's role may be one that cannot create
//! anything.
//!
//! Session ids sort bytewise (`COLLATE "C"`), as [`SessionId`]'s `Ord` does,
//! whatever the database's collation, so [`list`](SessionStore::list) pages
//! are stable. Times are `BIGINT` Unix seconds; times beyond `i64::MAX`
//! seconds are stored as `i64::MAX`. PostgreSQL text cannot hold the NUL
//! character, so a session key or user id containing one is refused by the
//! server (values can: they are stored as JSON, which escapes it).

use super::sql::{
    data_from_rows, parse_id, parse_value, sql_count, sql_time, time_from_sql, to_completion,
    ListingPage,
};
use std::fmt;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{Connection as _, Executor as _, Row as _};

use super::background;
use super::combine::{self, Batching, Combiner, Combining};
use super::{
    append_in_map, incremented, Changes, Reason, Record, SessionId, SessionInfo, SessionStore,
    StoreError, UpdateOutcome,
};
use crate::map::Map;
use crate::session::PERMANENT_KEY;
use crate::tagged;
use crate::value::Value;

/// Connections per store. Every operation is one or a few short statements,
/// so a handful serves many concurrent requests; the server's own limit
/// (100 by default) is shared by every instance of the application.
const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// How long a pooled connection may sit unused before it is checked with a
/// ping before use. Under load connections come back within microseconds
/// and are used unchecked; a server restart is noticed by the first use of
/// each connection after it.
const PING_IF_IDLE_FOR: Duration = Duration::from_millis(10);

/// When a statement was last refused for a setting a connection takes when
/// it is opened, in [`monotonic_millis`](super::monotonic_millis) plus one;
/// 0 for never: a write in a read-only transaction (SQLSTATE 25006), a
/// statement cancelled by `statement_timeout` (57014) or a lock wait cut
/// short by `lock_timeout` (55P03).
/// A database set read-only (`default_transaction_read_only`, or a primary
/// demoted to a standby in a failover), or given a short timeout by
/// `ALTER DATABASE … SET` or `ALTER ROLE … SET`, passes the setting to every
/// connection opened meanwhile, for its whole life, long after the setting
/// is undone. So connections opened before such a refusal are closed
/// instead of used again, and their replacements get the setting of now.
static SETTING_REFUSAL_SEEN: AtomicU64 = AtomicU64::new(0);

/// The SQLSTATEs of refusals that come from a connection's settings.
const SETTING_REFUSALS: [&str; 3] = ["25006", "57014", "55P03"];

/// The row locks and the statements read after them are written for READ
/// COMMITTED, each statement seeing what committed before it: under a
/// database's or role's default of REPEATABLE READ or SERIALIZABLE,
/// concurrent requests on one session fail with serialization errors. Set
/// for the process once such a default is seen (when a store opens, or by
/// a serialization failure), after which new connections are set to READ
/// COMMITTED and those opened before are replaced.
static PIN_READ_COMMITTED: AtomicBool = AtomicBool::new(false);

/// What a connection runs when [`PIN_READ_COMMITTED`] is set.
const SET_READ_COMMITTED: &str =
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// PostgreSQL's "could not serialize access".
const SERIALIZATION_FAILURE: &str = "40001";

/// Has new connections set to READ COMMITTED, and those opened before
/// replaced.
fn pin_read_committed() {
    if PIN_READ_COMMITTED.swap(true, Ordering::Relaxed) {
        note_setting_refusal(super::monotonic_millis());
        return;
    }
    // Every connection opened before now goes, whenever the last refusal
    // was noted.
    SETTING_REFUSAL_SEEN.store(super::monotonic_millis() + 1, Ordering::Relaxed);
    tracing::warn!(
        "the PostgreSQL database's default isolation is stricter than READ COMMITTED, which the \
         session store's statements are written for: its connections are set to READ COMMITTED"
    );
}

/// PostgreSQL's "read-only SQL transaction".
const READ_ONLY_TRANSACTION: &str = "25006";

/// The least time between two refusals that have the connections opened
/// before them replaced. While the setting lasts (an application pointed
/// at a standby for hours), the replacements refuse too: were every refusal
/// to replace them, each request would open a connection of its own.
const SETTING_REFUSAL_INTERVAL: Duration = Duration::from_secs(1);

/// Notes a refusal for a connection's settings at `now_ms` (in
/// [`monotonic_millis`](super::monotonic_millis)), unless one was noted
/// less than [`SETTING_REFUSAL_INTERVAL`] before.
fn note_setting_refusal(now_ms: u64) {
    let stamp = now_ms.saturating_add(1);
    let interval = u64::try_from(SETTING_REFUSAL_INTERVAL.as_millis()).unwrap_or(u64::MAX);
    let _ = SETTING_REFUSAL_SEEN.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
        (last == 0 || stamp.saturating_sub(last) >= interval).then_some(stamp)
    });
}

/// How many statements found a table of the store missing (SQLSTATE 42P01,
/// the tables dropped while the application runs): each store looks at its
/// schema again before its next operation, and creates them again.
static MISSING_TABLE_SEEN: AtomicU64 = AtomicU64::new(0);

/// PostgreSQL's "undefined table".
const UNDEFINED_TABLE: &str = "42P01";

/// The SQLSTATE of a server's error.
fn code_of(error: &sqlx::Error) -> Option<std::borrow::Cow<'_, str>> {
    error
        .as_database_error()
        .and_then(|database| database.code())
}

/// Whether a connection `age` old was opened before the last refusal that
/// its settings may have caused.
fn opened_before_setting_refusal(age: Duration) -> bool {
    let seen = SETTING_REFUSAL_SEEN.load(Ordering::Relaxed);
    if seen == 0 {
        return false;
    }
    let age = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
    super::monotonic_millis().saturating_sub(age) < seen
}

/// Where PostgreSQL raises "cached plan must not change result type"
/// (SQLSTATE 0A000, feature not supported, which covers much else): a
/// statement prepared on a connection before the tables were changed by
/// hand no longer fits them. The routine's name, unlike the message, is
/// not translated (`lc_messages`).
const CACHED_PLAN_CHANGED_IN: &str = "RevalidateCachedQuery";

/// Whether `error` is PostgreSQL refusing a statement prepared before the
/// tables changed. Every connection then holds such statements (sqlx keeps
/// them for the connection's life), so each would refuse, for as long as it
/// lived, what a fresh one runs or refuses for the real reason: the
/// connections opened before now are replaced, as for a refused setting
/// but every time (once replaced, they refuse no more).
fn stale_statement(error: &sqlx::Error) -> bool {
    let stale = error.as_database_error().is_some_and(|database| {
        database.code().as_deref() == Some("0A000")
            && database
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some_and(|error| error.routine() == Some(CACHED_PLAN_CHANGED_IN))
    });
    if stale {
        SETTING_REFUSAL_SEEN.store(super::monotonic_millis() + 1, Ordering::Relaxed);
    }
    stale
}

/// Whether `error` says the connection was gone before the statement ran
/// on it: the server closed it (a restart, `pg_terminate_backend`: class
/// 57P), or the socket is dead. A read can then run again on another.
fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        _ => error
            .as_database_error()
            .and_then(|database| database.code())
            .is_some_and(|code| code.starts_with("57P") || code.starts_with("08")),
    }
}

/// A database error as a store error, noting a refusal for a connection's
/// settings.
fn db(error: sqlx::Error) -> StoreError {
    if matches!(error, sqlx::Error::PoolTimedOut) {
        return StoreError::unavailable(NoConnection(error));
    }
    // PostgreSQL's columns are typed: a value of another type than the
    // store reads is the column's, in every row.
    if let sqlx::Error::ColumnDecode { source, .. } = &error {
        if source.to_string().starts_with("mismatched types") {
            return misshapen(&error);
        }
    }
    // Answered as an outage: the replacements run the statement afresh.
    if stale_statement(&error) {
        return StoreError::unavailable(error);
    }
    let code = code_of(&error).map(std::borrow::Cow::into_owned);
    let code = code.as_deref();
    if code.is_some_and(|code| SETTING_REFUSALS.contains(&code)) {
        note_setting_refusal(super::monotonic_millis());
    }
    match code {
        Some(UNDEFINED_TABLE) => {
            MISSING_TABLE_SEEN.fetch_add(1, Ordering::Release);
        }
        Some(SERIALIZATION_FAILURE) => pin_read_committed(),
        Some(READ_ONLY_TRANSACTION) => return StoreError::unavailable(ReadOnly(error)),
        // A value over what PostgreSQL holds where the store puts it (a
        // user id over about 2,700 bytes, in its index): refused every
        // time, so no retry helps.
        Some(PROGRAM_LIMIT_EXCEEDED) => {
            return StoreError::unrepresentable(Reason::caused_by(
                format!("PostgreSQL cannot store this session as it is ({error})"),
                error,
            ))
        }
        Some(code) if MISSHAPEN_TABLE.contains(&code) => return misshapen(&error),
        _ => {}
    }
    super::sql::db(error)
}

/// What PostgreSQL answers to a statement of the store's on tables of
/// another shape than the store made: a column of another type (42804, or
/// 42883 where the store compares it with a number: "operator does not
/// exist: text > bigint"), no primary key for `ON CONFLICT` to use (42P10),
/// a column missing (42703), a column added that must not be null (23502),
/// a check added that the store's rows fail (23514). No retry helps: a
/// configuration error, not an outage (a 500, not a 503 that clients would
/// retry forever).
const MISSHAPEN_TABLE: [&str; 6] = ["42804", "42883", "42P10", "42703", "23502", "23514"];

/// A value over one of PostgreSQL's limits (an index entry over a third of
/// a page, say).
const PROGRAM_LIMIT_EXCEEDED: &str = "54000";

/// A statement failed on tables of another shape than the store makes.
fn misshapen(error: &sqlx::Error) -> StoreError {
    StoreError::config(format!(
        "the session tables are not as this version of tessera makes them ({error}): made or \
         changed by hand? Let the store create its tables, in a schema of their own"
    ))
}

/// PostgreSQL's "deadlock detected".
const DEADLOCK_DETECTED: &str = "40P01";

/// How many times an operation that PostgreSQL ended to break a deadlock
/// runs again before its error is returned.
const DEADLOCK_RETRIES: usize = 3;

/// Whether PostgreSQL ended the operation to break a deadlock.
fn deadlocked(error: &StoreError) -> bool {
    let StoreError::Unavailable(source) = error else {
        return false;
    };
    source
        .downcast_ref::<sqlx::Error>()
        .and_then(code_of)
        .is_some_and(|code| code == DEADLOCK_DETECTED)
}

/// Runs `attempt` again when PostgreSQL ended it to break a deadlock. A
/// visitor's concurrent requests can deadlock on the session's rows (the
/// row lock of an increment or an update follows the new row version of a
/// refreshed expiry, while a read-modify-write holds that version and waits
/// for the older one); PostgreSQL rolls the chosen transaction back whole
/// after `deadlock_timeout`, and the other goes on, so running it again is
/// safe and finds the way free, where returning the error would answer 503.
async fn retrying_deadlocks<T, F>(mut attempt: impl FnMut() -> F) -> Result<T, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut retries = DEADLOCK_RETRIES;
    loop {
        match attempt().await {
            Err(error) if retries > 0 && deadlocked(&error) => {
                retries -= 1;
                tracing::debug!(%error, "a session operation ended by a deadlock runs again");
            }
            outcome => return outcome,
        }
    }
}

/// A write refused because the connection is read-only. PostgreSQL names
/// the statement's first word, which for the store's writes (a `WITH …
/// SELECT`) reads as if reads failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "the PostgreSQL database refuses writes: it is read-only (a hot standby, or \
     default_transaction_read_only is on): {0}"
)]
struct ReadOnly(#[source] sqlx::Error);

/// How long an operation waits for a connection, including connecting while
/// the server refuses connections (sqlx retries until then), before the
/// store is reported unavailable and the request answered with 503.
const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a session operation may take in all, waiting for a connection
/// included, before the request is answered with 503. sqlx has no timeout
/// of its own: a server that stopped answering (a network partition, a
/// frozen host) or a lock held elsewhere would hold requests for as long as
/// it lasted, a partition for the kernel's retransmissions (many minutes).
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// The first half of the advisory lock key that serializes migrations; the
/// second half is a hash of the target schema's name, so stores in different
/// schemas do not wait for each other. Arbitrary, but never to change.
const MIGRATION_LOCK: i32 = 0x7E55_E7A0;

/// Schema steps, in order: step `n` takes the schema from version `n` to
/// `n + 1`. Released steps never change; later versions append steps.
const MIGRATIONS: &[&str] = &[
    // 1: sessions, and their values one row per key so writes merge per key.
    // Ids compare bytewise (`COLLATE "C"`) so that paging by id matches
    // `SessionId`'s order whatever the database's default collation.
    r#"CREATE TABLE tessera_sessions (
        id TEXT COLLATE "C" PRIMARY KEY,
        user_id TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        absolute_expires_at BIGINT
    );
    CREATE INDEX tessera_sessions_expires_at ON tessera_sessions (expires_at);
    CREATE INDEX tessera_sessions_absolute_expires_at
        ON tessera_sessions (absolute_expires_at);
    CREATE INDEX tessera_sessions_user_id ON tessera_sessions (user_id, id);
    CREATE TABLE tessera_session_values (
        session_id TEXT COLLATE "C" NOT NULL
            REFERENCES tessera_sessions (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (session_id, key)
    );"#,
];

/// The version table: one row per applied step.
const CREATE_VERSION_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS tessera_schema_migrations (
        version INTEGER PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )";

// The queries whose plans matter as the tables grow, named so that the tests
// can check PostgreSQL answers them from an index.

/// A live session and its values, in one statement so in one snapshot.
const LOAD: &str = "
    SELECT s.user_id, s.created_at, s.expires_at, s.absolute_expires_at, v.key, v.value
    FROM tessera_sessions AS s
    LEFT JOIN tessera_session_values AS v ON v.session_id = s.id
    WHERE s.id = $1
      AND s.expires_at > $2
      AND (s.absolute_expires_at IS NULL OR s.absolute_expires_at > $2)";

/// Whether a session is live, for an update that changes nothing.
const IS_LIVE: &str = "
    SELECT EXISTS (
        SELECT 1 FROM tessera_sessions
        WHERE id = $1
          AND expires_at > $2
          AND (absolute_expires_at IS NULL OR absolute_expires_at > $2)
    )";

/// A new session and its values in one statement: the values are inserted
/// only if the session was (`ON CONFLICT DO NOTHING` leaves `created` empty
/// when the id is taken, live or expired). The foreign key is checked at the
/// end of the statement, when the session row is visible.
const CREATE: &str = "
    WITH created AS (
        INSERT INTO tessera_sessions (id, user_id, created_at, expires_at, absolute_expires_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ), inserted AS (
        INSERT INTO tessera_session_values (session_id, key, value)
        SELECT created.id, u.key, u.value
        FROM created CROSS JOIN unnest($6::text[], $7::text[]) AS u (key, value)
    )
    SELECT EXISTS (SELECT 1 FROM created)";

/// `Changes` applied in one statement, so atomically and in one round trip.
///
/// `live` finds the session if it is live and locks its row `FOR KEY SHARE`:
/// that keeps a concurrent delete, purge or id change from removing it under
/// us, yet does not make concurrent updates of one session wait for each
/// other (only `touched` does, when a request moves the expiry or the owner).
/// The order of `Changes::apply_to` (clear, remove, then set) is reproduced
/// by never deleting a key that is set: every sub-statement of one statement
/// sees the same snapshot, so the deletes and the upserts must touch disjoint
/// rows. A key written by another request after this statement's snapshot
/// survives a `cleared` here, as if that request had come second.
///
/// Parameters: $1 id, $2 now, $3 new expiry or NULL, $4 whether the owner
/// changes, $5 the new owner, $6 cleared, $7 removed keys, $8 set keys,
/// $9 their tagged JSON. Written twice ([`update_statement!`]): for changes
/// that do not clear the session, the removed keys are looked up in the
/// primary key; one filter for both (`$6 OR key = ANY ($7)`) read every
/// value row of the session under a generic plan, which a prepared
/// statement gets after a few runs (100,000 rows for one removed key).
macro_rules! update_statement {
    ($removed:literal) => {
        concat!(
            "
    WITH live AS (
        SELECT id FROM tessera_sessions
        WHERE id = $1
          AND expires_at > $2
          AND (absolute_expires_at IS NULL OR absolute_expires_at > $2)
        FOR KEY SHARE
    ), touched AS (
        UPDATE tessera_sessions AS s
        SET expires_at = COALESCE($3, s.expires_at),
            user_id = CASE WHEN $4 THEN $5 ELSE s.user_id END,
            absolute_expires_at = LEAST(s.absolute_expires_at, $10::bigint)
        FROM live
        WHERE s.id = live.id AND ($3 IS NOT NULL OR $4 OR $10::bigint IS NOT NULL)
    ), removed AS (
        DELETE FROM tessera_session_values AS v
        USING live
        WHERE v.session_id = live.id
          AND ",
            $removed,
            "
          AND v.key <> ALL ($8::text[])
    ), upserted AS (
        INSERT INTO tessera_session_values (session_id, key, value)
        SELECT live.id, u.key, u.value
        FROM live CROSS JOIN unnest($8::text[], $9::text[]) AS u (key, value)
        ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value
    )
    SELECT EXISTS (SELECT 1 FROM live)"
        )
    };
}

/// [`update_statement!`] for changes that do not clear the session.
const UPDATE: &str = update_statement!("NOT $6 AND v.key = ANY ($7::text[])");

/// [`update_statement!`] for changes that clear the session first.
const UPDATE_CLEARING: &str = update_statement!("$6");

/// The usual increment in one statement and one round trip: no value,
/// `null` or an integer under the key of a live session, and no overflow.
/// Anything else (no live session, another type, an overflow) returns no
/// row, and the transaction of `read_modify_write` decides which, with the
/// same rules as every other store. The session row is share-locked so that
/// a concurrent delete waits, as the value row would otherwise have no
/// session; an update of the value row waits for, then sees, the latest
/// committed value, so concurrent increments never lose one.
///
/// The checks run while the value row is locked, so they are kept cheap: an
/// integer of at most 18 digits fits a `bigint` whatever its digits, and is
/// added as one, with the overflow test written so that it cannot overflow
/// itself (a 19-digit one goes the transaction's way). A bounded `{1,19}`
/// in the pattern and `numeric` arithmetic made these checks cost
/// PostgreSQL about four times as much, under the lock. The nested `CASE` keeps
/// the cast behind the pattern: the conditions of an `AND` may be
/// evaluated in any order.
const INCREMENT_AT_ONCE: &str = r#"
    INSERT INTO tessera_session_values AS v (session_id, key, value)
    SELECT s.id, $2, $3::text FROM tessera_sessions AS s
    WHERE s.id = $1
      AND s.expires_at > $4
      AND (s.absolute_expires_at IS NULL OR s.absolute_expires_at > $4)
    FOR KEY SHARE
    ON CONFLICT (session_id, key) DO UPDATE
        SET value = CASE WHEN v.value = 'null' THEN $3::text
                         ELSE (v.value::bigint + $3::bigint)::text END
        WHERE v.value = 'null'
           OR CASE WHEN v.value ~ '^-?[0-9]+$' AND length(ltrim(v.value, '-')) <= 18
                   THEN CASE WHEN $3::bigint >= 0
                             THEN v.value::bigint <= 9223372036854775807 - $3::bigint
                             ELSE v.value::bigint >= -9223372036854775808 - $3::bigint END
                   ELSE false END
    RETURNING v.value"#;

/// Rounds of `delete_user` before it gives up on a user whose sessions
/// keep being moved (each round waits for the logins moving one).
const DELETE_USER_PASSES: usize = 32;

/// One round of `delete_user`: the user's sessions locked in the order of
/// their ids, so that two of these at once (the same user logged out
/// everywhere from two devices) wait for each other instead of
/// deadlocking, as one `DELETE … WHERE user_id` did, locking the rows in
/// whatever order its plan met them. It answers how many of them were live
/// at `$2`: those already dead but not yet purged go too, uncounted, as the
/// user no longer had them.
const DELETE_USER: &str = "
    WITH gone AS (
        DELETE FROM tessera_sessions WHERE id IN (
            SELECT id FROM tessera_sessions WHERE user_id = $1 ORDER BY id FOR UPDATE
        )
        RETURNING expires_at > $2
            AND (absolute_expires_at IS NULL OR absolute_expires_at > $2) AS live
    )
    SELECT count(*) FILTER (WHERE live) FROM gone";

/// The first step of a read-modify-write or an id change: the live session,
/// locked `FOR UPDATE`, which waits for and then excludes every other writer
/// of the session (updates hold `FOR KEY SHARE`, which this conflicts with).
const LOCK_LIVE: &str = "
    SELECT 1 FROM tessera_sessions
    WHERE id = $1
      AND expires_at > $2
      AND (absolute_expires_at IS NULL OR absolute_expires_at > $2)
    FOR UPDATE";

/// Sets one key, whether or not it exists.
const PUT_VALUE: &str = "
    INSERT INTO tessera_session_values (session_id, key, value) VALUES ($1, $2, $3)
    ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value";

/// A page of one user's live sessions, from the (user_id, id) index.
const LIST_BY_USER: &str = "
    SELECT id, user_id, created_at, expires_at, absolute_expires_at
    FROM tessera_sessions
    WHERE user_id = $1 AND id > $2
      AND expires_at > $3
      AND (absolute_expires_at IS NULL OR absolute_expires_at > $3)
    ORDER BY id LIMIT $4";

/// A page of all live sessions, from the primary key.
const LIST_ALL: &str = "
    SELECT id, user_id, created_at, expires_at, absolute_expires_at
    FROM tessera_sessions
    WHERE id > $1
      AND expires_at > $2
      AND (absolute_expires_at IS NULL OR absolute_expires_at > $2)
    ORDER BY id LIMIT $3";

/// At most a batch of dead sessions; their values go by the cascade. The OR
/// is answered from the two expiry indexes. `SKIP LOCKED` lets sweepers on
/// several instances share the work instead of queueing behind each other,
/// and passes over a session a request holds right now (it is live, or will
/// be swept next time).
const PURGE: &str = "
    DELETE FROM tessera_sessions WHERE id IN (
        SELECT id FROM tessera_sessions
        WHERE expires_at <= $1 OR absolute_expires_at <= $1
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )";

/// A [`SessionStore`] in a PostgreSQL database.
///
/// Cheap to construct; see the [module documentation](self) for when it
/// connects and how the schema is managed.
pub struct PostgresStore {
    shared: Arc<Shared>,
}

/// What a store and the operations it runs on another runtime share.
struct Shared {
    options: PgConnectOptions,
    schema: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
    operation_timeout: Duration,
    /// How long a pooled connection may sit unused before it is pinged
    /// before use ([`PING_IF_IDLE_FOR`]; tests make it longer).
    ping_if_idle_for: Duration,
    /// Refuse a database without this version's schema instead of creating
    /// or migrating it (administration tools).
    existing_only: bool,
    /// Built on first use, then kept: sqlx replaces dead connections itself.
    pool: OnceLock<PgPool>,
    /// Whether the schema was found or made current. Not a `OnceCell` whose
    /// initialisation would queue callers: while the server is down, each
    /// waiting request would then wait for every attempt before its own.
    ready: AtomicBool,
    /// [`MISSING_TABLE_SEEN`] when the schema was last found current: a
    /// newer count has the next operation look again.
    checked_after: AtomicU64,
    /// Concurrent loads of one session, and increments of one counter,
    /// go as one.
    combiner: Combiner,
}

/// The same configuration, with none of the state: no pool, the schema not
/// yet looked at, no loads or increments queued.
impl Clone for Shared {
    fn clone(&self) -> Self {
        Self {
            options: self.options.clone(),
            schema: self.schema.clone(),
            max_connections: self.max_connections,
            acquire_timeout: self.acquire_timeout,
            operation_timeout: self.operation_timeout,
            ping_if_idle_for: self.ping_if_idle_for,
            existing_only: self.existing_only,
            pool: OnceLock::new(),
            ready: AtomicBool::new(false),
            checked_after: AtomicU64::new(0),
            combiner: Combiner::default(),
        }
    }
}

impl From<Shared> for PostgresStore {
    fn from(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }
}

/// Why sqlx refused a URL, without its "error with configuration: ", which
/// it writes once for each layer that wrapped the reason (twice for
/// `sslmode=bogus`) and which the refusal around it already says.
fn url_refusal(error: &sqlx::Error) -> String {
    let mut error: &(dyn std::error::Error + 'static) = error;
    while let Some(sqlx::Error::Configuration(inner)) = error.downcast_ref::<sqlx::Error>() {
        error = inner.as_ref();
    }
    error.to_string()
}

impl PostgresStore {
    /// For the builder methods. A task serving queued loads or increments,
    /// or an operation running on a runtime of its own, may still hold the
    /// state it was given just after its caller was answered; the builder
    /// then configures a copy that shares nothing with it rather than
    /// changing what it runs on.
    fn shared_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.shared)
    }
}

/// By hand: the connection options hold the password.
impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.server())
            .field("schema", &self.shared.schema)
            .field("max_connections", &self.shared.max_connections)
            .field("ready", &self.shared.ready.load(Ordering::Relaxed))
            .finish()
    }
}

/// sqlx's "pool timed out" names neither the cause nor what to check: sqlx
/// keeps trying while the server refuses connections or is starting up, and
/// reports only that the time ran out.
#[derive(Debug, thiserror::Error)]
#[error(
    "no connection within the acquire timeout: the server refused connections \
     (is it running, on this host and port? or were its connection limits reached: \
     max_connections, or the role's or database's CONNECTION LIMIT, with each \
     instance of this store keeping up to its pool's size, 10 by default?), did not answer (a frozen host or a broken network), or \
     was starting up, or every pooled connection stayed busy ({0})"
)]
struct NoConnection(#[source] sqlx::Error);

/// What sqlx makes of a server that does not speak PostgreSQL's protocol
/// (an HTTP server, a port of something else): "unexpected response from
/// SSLRequest: 0x48 (sqlx_postgres::connection::tls:95)", or a message
/// length read from someone else's bytes, neither of which says what is
/// wrong.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server's answer does not follow PostgreSQL's protocol ({text}): is the address \
     a PostgreSQL server's (or a pooler's in front of one)?"
)]
struct NotPostgres {
    text: String,
    #[source]
    source: sqlx::Error,
}

/// sqlx's other protocol errors (an authentication method it lacks, say),
/// without the place in sqlx's source that its messages end with.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
struct ProtocolError {
    text: String,
    #[source]
    source: sqlx::Error,
}

/// A PostgreSQL that cannot start a process for a new connection (out of
/// memory, or of processes) answers its first message with an error before
/// any handshake, which sqlx reads as a TLS answer of `E` or as a message
/// whose length is the text "coul" (of "could not fork new process…").
#[derive(Debug, thiserror::Error)]
#[error(
    "the server answered with an error before the handshake ({text}): PostgreSQL does \
     so when it cannot start a process for the connection (out of memory, or of \
     processes); see its log"
)]
struct RefusedBeforeHandshake {
    text: String,
    #[source]
    source: sqlx::Error,
}

/// `error`, or what it tells of the server: [`NotPostgres`] for answers
/// only something else than PostgreSQL gives (a first byte to the TLS
/// request that is none of PostgreSQL's: not `S`, `N` or `E`, and not the
/// 0x00 of a connection closed unanswered; a message type PostgreSQL does
/// not have; a message length read from text), [`RefusedBeforeHandshake`]
/// for PostgreSQL's answer when it cannot serve the connection, and sqlx's
/// other protocol errors without the places in sqlx's source they name.
fn connect_failure(error: sqlx::Error) -> Box<dyn std::error::Error + Send + Sync> {
    match &error {
        sqlx::Error::Protocol(message) => {
            let text = without_source_places(message);
            match text.strip_prefix("unexpected response from SSLRequest: 0x") {
                Some("45") => Box::new(RefusedBeforeHandshake {
                    text,
                    source: error,
                }),
                Some(byte) if byte != "00" => Box::new(NotPostgres {
                    text,
                    source: error,
                }),
                _ if text.starts_with("unknown message type") => Box::new(NotPostgres {
                    text,
                    source: error,
                }),
                _ => Box::new(ProtocolError {
                    text,
                    source: error,
                }),
            }
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            // sqlx asks for the message's length plus its type byte.
            let length = io
                .to_string()
                .strip_prefix("expected to read ")
                .and_then(|rest| rest.split_once(' '))
                .and_then(|(length, _)| length.parse::<u64>().ok())
                .and_then(|wanted| u32::try_from(wanted.checked_sub(1)?).ok());
            // Four ASCII bytes read as a length are at least 0x20202020;
            // PostgreSQL's handshake messages are small, and a server that
            // went away mid-message leaves a small length unread.
            match length {
                Some(length) if length >= 1 << 24 => {
                    let bytes = length.to_be_bytes();
                    let text = if bytes
                        .iter()
                        .all(|byte| byte.is_ascii_graphic() || *byte == b' ')
                    {
                        format!(
                            "the text {:?} where a message's length belongs",
                            String::from_utf8_lossy(&bytes)
                        )
                    } else {
                        io.to_string()
                    };
                    if &bytes == b"coul" {
                        Box::new(RefusedBeforeHandshake {
                            text,
                            source: error,
                        })
                    } else {
                        Box::new(NotPostgres {
                            text,
                            source: error,
                        })
                    }
                }
                _ => Box::new(error),
            }
        }
        _ => Box::new(error),
    }
}

/// `message` without the " (sqlx_postgres::connection::tls:95)" that sqlx
/// adds to a protocol error at every level that wraps it: where in sqlx,
/// not why.
fn without_source_places(message: &str) -> String {
    let mut text = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" (sqlx_") {
        text.push_str(&rest[..at]);
        let place = &rest[at + 2..];
        match place.find(')') {
            Some(end)
                if place[..end].rsplit_once(':').is_some_and(|(path, line)| {
                    !path.contains(' ') && line.bytes().all(|byte| byte.is_ascii_digit())
                }) =>
            {
                rest = &place[end + 1..];
            }
            _ => {
                text.push_str(" (");
                rest = place;
            }
        }
    }
    text.push_str(rest);
    text
}

/// An operation outlived [`PostgresStore::with_operation_timeout`].
#[derive(Debug, thiserror::Error)]
#[error(
    "PostgreSQL at {server} did not complete the operation within {after:?}: the server \
     or the network stalled, a lock held elsewhere kept it waiting, or a connection pooler \
     in between (PgBouncer) queued it for want of server connections (a change already sent \
     may still be applied)"
)]
struct Stalled {
    server: String,
    after: Duration,
}

/// Connecting or migrating failed; says which server, since sqlx does not
/// (never the URL itself, which may hold a password).
#[derive(Debug, thiserror::Error)]
#[error("cannot open the PostgreSQL session store at {server}: {source}")]
struct OpenError {
    server: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl PostgresStore {
    /// The schema version this library creates and expects.
    pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

    /// A store at `url` (`postgres://user:password@host:port/database`, with
    /// the query parameters libpq knows, such as `sslmode`). Only parses:
    /// nothing is connected until the first operation.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let refuse = |why: &dyn fmt::Display| {
            // The URL is not repeated: it may hold a password.
            StoreError::config(format!(
                "not a PostgreSQL session store URL: {why}; expected \
                 postgres://user:password@host:port/database"
            ))
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(refuse(&"it does not start with postgres://"));
        }
        if let Some(why) = crate::config::store_url_misread(url) {
            return Err(refuse(&why));
        }
        let several_hosts = "it names several hosts (libpq's list to fail over along), which \
             sqlx cannot connect to: give one host, or one name or address that follows the \
             primary (a proxy, a DNS name)";
        let authority = url
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        if authority
            .rsplit_once('@')
            .map_or(authority, |(_, hosts)| hosts)
            .contains(',')
        {
            return Err(refuse(&several_hosts));
        }
        // sqlx logs a parameter it does not know with its value: one that
        // carries a secret (sslpassword, or a mistyped pasword=) would end
        // up in the log. Only those it reads pass.
        if let Some((_, query)) = url.split_once('?') {
            let query = query.split_once('#').map_or(query, |(query, _)| query);
            for parameter in query.split('&').filter(|parameter| !parameter.is_empty()) {
                let raw = parameter
                    .split_once('=')
                    .map_or(parameter, |(name, _)| name);
                let name = crate::config::parameter_name(&raw.replace('+', " ")).into_owned();
                let known = crate::config::POSTGRES_URL_PARAMETERS.contains(&name.as_str())
                    || (name.starts_with("options[") && name.ends_with(']'));
                if !known {
                    // Named only if it is plainly a name: a mistyped one may
                    // hold the secret itself (`password%3D…`).
                    let shown = if crate::config::is_plain_name(&name) {
                        format!("{name:?}")
                    } else {
                        "one".to_owned()
                    };
                    return Err(refuse(&format_args!(
                        "the parameter {shown} is not one it takes ({})",
                        crate::config::POSTGRES_URL_PARAMETERS.join(", ")
                    )));
                }
                let value = parameter.split_once('=').map_or("", |(_, value)| value);
                // sqlx's own refusal is the parse error alone ("invalid digit
                // found in string"), naming neither parameter nor value.
                if (name == "port" && value.parse::<u16>().is_err())
                    || (name == "statement-cache-capacity" && value.parse::<usize>().is_err())
                {
                    let limit = if name == "port" {
                        " from 0 to 65535"
                    } else {
                        ""
                    };
                    return Err(refuse(&format_args!(
                        "its {name} parameter is not a whole number{limit}"
                    )));
                }
                if name == "statement-cache-capacity"
                    && !value.is_empty()
                    && value.trim_start_matches('0').is_empty()
                {
                    // sqlx 0.8 then still names a prepared statement for
                    // each query, and the server keeps its plan for the
                    // connection's life.
                    return Err(refuse(
                        &"statement-cache-capacity=0 is not taken: sqlx would \
                         leave a prepared statement's plan on the server for every query run, \
                         a connection's memory growing for as long as it lives (and it does \
                         not make a transaction-pooling PgBouncer work)",
                    ));
                }
            }
        }
        let mut options = PgConnectOptions::from_str(url).map_err(|error| {
            refuse(&crate::config::without_query_values(
                &url_refusal(&error),
                url,
            ))
        })?;
        if options.get_host().contains(',') {
            return Err(refuse(&several_hosts));
        }
        let ssl_mode = options.get_ssl_mode();
        if !cfg!(feature = "tls")
            && matches!(
                ssl_mode,
                PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
            )
        {
            return Err(StoreError::config(
                "the PostgreSQL URL's sslmode asks for TLS, which needs tessera's `tls` feature"
                    .to_owned(),
            ));
        }
        let files = tls_files(url);
        // Read at every new TLS connection: a file that is not there, or not
        // PEM, would make every request fail later, with a message that does
        // not name it. (Without TLS, as libpq, they are not used at all; nor
        // by `prefer` without the `tls` feature, which then never tries it.)
        if cfg!(feature = "tls") && !matches!(ssl_mode, PgSslMode::Disable | PgSslMode::Allow) {
            for file in &files {
                file.check()?;
            }
        }
        // Without a root certificate, a verifying mode checks against the
        // system's roots, which SSL_CERT_FILE replaces: one that cannot be
        // read leaves none, and every connection failed with a bare
        // "UnknownIssuer" that named no file (the Redis store names it).
        if matches!(ssl_mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull)
            && !files.iter().any(|file| file.parameter == "sslrootcert")
        {
            if let Some(path) = std::env::var("SSL_CERT_FILE")
                .ok()
                .filter(|path| !path.is_empty())
            {
                TlsFile {
                    parameter: "SSL_CERT_FILE",
                    source: "SSL_CERT_FILE".to_owned(),
                    path,
                }
                .check()?;
            }
        }
        // libpq checks the server's certificate against a root certificate
        // given with sslmode=require, as verify-ca does; sqlx would only
        // encrypt, and a URL copied from a libpq setup would verify nothing.
        if matches!(ssl_mode, PgSslMode::Require)
            && files.iter().any(|file| file.parameter == "sslrootcert")
        {
            options = options.ssl_mode(PgSslMode::VerifyCa);
        }
        Ok(Self::from(Shared {
            options,
            schema: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            existing_only: false,
            ping_if_idle_for: PING_IF_IDLE_FOR,
            pool: OnceLock::new(),
            ready: AtomicBool::new(false),
            checked_after: AtomicU64::new(0),
            combiner: Combiner::default(),
        }))
    }

    /// Keeps the tables in the schema `name`, created on first use if
    /// missing, instead of the connection's default. For one database shared
    /// by several applications, or several stores side by side (tests). The
    /// name is an unquoted identifier: lowercase ASCII letters, digits and
    /// `_`, not starting with a digit nor with `pg_` (PostgreSQL keeps those
    /// for itself), at most 63 bytes.
    pub fn with_schema(mut self, name: &str) -> Result<Self, StoreError> {
        let valid = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && !name.starts_with("pg_");
        if !valid {
            return Err(StoreError::config(format!(
                "{name:?} is not a usable PostgreSQL schema name: use lowercase ASCII \
                 letters, digits and _, not starting with a digit nor with pg_, at most 63 \
                 bytes"
            )));
        }
        // Every connection resolves the unqualified table names in the
        // queries to this schema, so the queries stay constants.
        self.shared_mut().options = self.shared.options.clone().options([("search_path", name)]);
        self.shared_mut().schema = Some(name.to_owned());
        Ok(self)
    }

    /// At most `n` connections (at least 1; 10 unless set).
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.shared_mut().max_connections = n.max(1);
        self
    }

    /// How long an operation may wait for a connection, including for an
    /// unreachable server, before failing with [`StoreError::Unavailable`]
    /// (5 seconds unless set).
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.shared_mut().acquire_timeout = timeout;
        self
    }

    /// How long one session operation may take in all, including the wait
    /// for a connection, before failing with [`StoreError::Unavailable`] (10
    /// seconds unless set): a stalled server or network, or a lock held by
    /// another client, then costs a 503 instead of holding the request. A
    /// write cut short this way may still complete on the server, as after
    /// any lost reply; it is never acknowledged. The same bound holds for
    /// each page of a listing, each batch of `purge_expired` (so the CLI's
    /// `--batch` should stay small enough to finish within it) and
    /// creating or migrating the schema.
    ///
    /// Only the request's wait is cut short: the statement goes on waiting
    /// on the server, and keeps its pooled connection until it ends. A row
    /// lock held for long (a transaction left open in `psql`, or by a
    /// client cut off by a network partition, which the server notices only
    /// when TCP keepalive gives up) then takes a connection for every
    /// request of that session, and, once the pool's connections are all
    /// taken, every other session's requests fail too. Set
    /// `idle_in_transaction_session_timeout` on the database or role (a
    /// minute, say) so that the server ends such a transaction and lets its
    /// locks go.
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.shared_mut().operation_timeout = timeout;
        self
    }

    /// The schema given to [`with_schema`](Self::with_schema), if any.
    pub fn schema(&self) -> Option<&str> {
        self.shared.schema.as_deref()
    }

    /// Connects and creates or migrates the schema now, so that a wrong URL,
    /// an unreachable server or a missing privilege is reported at startup
    /// rather than by the first request. Optional: every operation does the
    /// same when needed.
    pub async fn connect(&self) -> Result<(), StoreError> {
        self.run(|here| async move { here.pool().await.map(|_| ()) })
            .await
    }

    /// An existing store, connected now: the database (in the schema of
    /// [`with_schema`](Self::with_schema), if given) must hold this version's
    /// tables. Nothing is created or migrated, so pointing an administration
    /// tool at the wrong database changes nothing.
    pub async fn open_existing(mut self) -> Result<Self, StoreError> {
        self.shared_mut().existing_only = true;
        self.connect().await?;
        Ok(self)
    }

    /// `changes` applied in a transaction holding the session's row lock,
    /// which waits for and then excludes the session's other writers: the
    /// list of a list edit is read and written under it, and the session is
    /// deleted if asked and left with no data and no owner.
    async fn apply_locked(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
        delete_if_empty: bool,
    ) -> Result<UpdateOutcome, StoreError> {
        if let Some(Some(user_id)) = &changes.user_id {
            storable_text(user_id, "the user id")?;
        }
        if let Some(edit) = &changes.list_edit {
            storable_text(&edit.key, "a session key")?;
        }
        let pool = self.pool().await?.clone();
        let id = id.clone();
        let edit = changes.list_edit.clone();
        let changes = Changes {
            list_edit: None,
            ..changes.clone()
        };
        self.bounded(to_completion(async move {
            let (pool, id, changes, edit) = (&pool, &id, &changes, &edit);
            retrying_deadlocks(move || async move {
                let (mut changes, edit) = (changes.clone(), edit.clone());
                let mut tx = pool.begin().await.map_err(db)?;
                if !lock_live(&mut tx, id.as_str(), now).await? {
                    tx.rollback().await.map_err(db)?;
                    return Ok(UpdateOutcome::Vanished);
                }
                if let Some(edit) = edit {
                    // After the lock, in a statement of its own (see
                    // `read_modify_write`). A value that does not parse counts
                    // as no list and is replaced, as in every store.
                    let current = stored_text(&mut tx, id, &edit.key).await?;
                    // Cleared first, the list is edited from nothing.
                    let current = current
                        .filter(|_| !changes.cleared)
                        .and_then(|text| parse_value(&edit.key, &text).ok());
                    match edit.apply(current.as_ref()) {
                        Some(list) => {
                            changes.set.insert(edit.key, list);
                        }
                        None => changes.removed.push(edit.key),
                    }
                }
                apply_changes(&mut *tx, id, &changes, now).await?;
                if delete_if_empty {
                    let holds_data: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM tessera_session_values \
                                    WHERE session_id = $1 AND key <> $2) \
                         OR EXISTS (SELECT 1 FROM tessera_sessions \
                                    WHERE id = $1 AND user_id IS NOT NULL)",
                    )
                    .bind(id.as_str())
                    .bind(PERMANENT_KEY)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
                    if !holds_data {
                        sqlx::query("DELETE FROM tessera_sessions WHERE id = $1")
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
        }))
        .await
    }

    /// Closes the connections, waiting for queries in flight, at most the
    /// operation timeout ([`with_operation_timeout`](Self::with_operation_timeout)):
    /// for graceful shutdown. A query still waiting then (on a lock held
    /// elsewhere, say) is left to the server, which may still apply it.
    /// Operations after this fail with [`StoreError::Unavailable`]. Does
    /// nothing if the store was never used.
    pub async fn close(&self) {
        if let Some(pool) = self.shared.pool.get().cloned() {
            let timeout = self.shared.operation_timeout;
            // Closing waits for connections their runtime must drive.
            self.run(move |_| async move {
                // Waiting longer would hold a shutdown (or a `tessera
                // sessions` command that timed out) for as long as the lock
                // that stalled the query is held.
                let _ = tokio::time::timeout(timeout, pool.close()).await;
            })
            .await;
        }
    }

    /// `host:port/database`, for messages: enough to tell which server,
    /// nothing secret.
    fn server(&self) -> String {
        let options = &self.shared.options;
        let database = options.get_database().unwrap_or(options.get_username());
        let host = options.get_socket().map_or_else(
            || options.get_host().to_owned(),
            |socket| socket.display().to_string(),
        );
        format!("{host}:{}/{database}", options.get_port())
    }

    /// The pool, the schema made current first if it was not yet. After a
    /// failure the next operation tries again; concurrent first operations
    /// each try, which the migration's advisory lock makes safe, so that
    /// none waits for more than its own attempt.
    async fn pool(&self) -> Result<&PgPool, StoreError> {
        // Lazy, so that building the pool needs no server; it must happen
        // inside the runtime (sqlx spawns its maintenance task), hence here
        // and not in `new`. sqlx pings every connection it gets back, so a
        // connection just used is known to be alive; one that sat idle is
        // pinged before it is handed out, which replaces the connections a
        // server restart or `pg_terminate_backend` killed meanwhile. Pinging
        // on every acquire (sqlx's `test_before_acquire`) would cost a
        // round trip per operation under load.
        let ping_if_idle_for = self.shared.ping_if_idle_for;
        let pool = self.shared.pool.get_or_init(|| {
            PgPoolOptions::new()
                .max_connections(self.shared.max_connections)
                .acquire_timeout(self.shared.acquire_timeout)
                .test_before_acquire(false)
                .before_acquire(move |conn, meta| {
                    Box::pin(async move {
                        if opened_before_setting_refusal(meta.age) {
                            return Ok(false);
                        }
                        if meta.idle_for >= ping_if_idle_for {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .after_release(|_, meta| {
                    Box::pin(async move { Ok(!opened_before_setting_refusal(meta.age)) })
                })
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // Only where needed: a statement at connect waits in
                        // a pooler's queue (PgBouncer's), and a connection
                        // not opened in time is given up.
                        if PIN_READ_COMMITTED.load(Ordering::Relaxed) {
                            conn.execute(SET_READ_COMMITTED).await?;
                        }
                        Ok(())
                    })
                })
                .connect_lazy_with(self.shared.options.clone())
        });
        let missing_table_seen = MISSING_TABLE_SEEN.load(Ordering::Acquire);
        if !self.shared.ready.load(Ordering::Acquire)
            || self.shared.checked_after.load(Ordering::Relaxed) != missing_table_seen
        {
            // Bounded as every operation is: a server that stalls once the
            // connection is open (a half-dead host, a lock held on the
            // tables) held `connect` and every command of the CLI for good.
            let migrated = tokio::time::timeout(
                self.shared.operation_timeout,
                migrate(
                    pool,
                    self.shared.schema.as_deref(),
                    self.shared.existing_only,
                ),
            )
            .await
            .map_err(|_| {
                StoreError::Unavailable(Box::new(OpenError {
                    server: self.server(),
                    source: Box::new(Stalled {
                        server: self.server(),
                        after: self.shared.operation_timeout,
                    }),
                }))
            })?;
            migrated.map_err(|error| match error {
                OpenFailure::Config(message) => {
                    StoreError::config(format!("{message} ({})", self.server()))
                }
                OpenFailure::Sql(sqlx::Error::PoolTimedOut) => {
                    StoreError::Unavailable(Box::new(OpenError {
                        server: self.server(),
                        source: Box::new(NoConnection(sqlx::Error::PoolTimedOut)),
                    }))
                }
                OpenFailure::Sql(source) => StoreError::Unavailable(Box::new(OpenError {
                    server: self.server(),
                    source: connect_failure(source),
                })),
            })?;
            self.shared
                .checked_after
                .store(missing_table_seen, Ordering::Relaxed);
            self.shared.ready.store(true, Ordering::Release);
        }
        Ok(pool)
    }

    /// Runs a session operation, failing it as unavailable when it outlives
    /// the operation timeout. Operations that run in a task of their own
    /// (`to_completion`) go on to their end: only the wait is cut short.
    async fn bounded<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.shared.operation_timeout, operation)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::unavailable(Stalled {
                    server: self.server(),
                    after: self.shared.operation_timeout,
                }))
            })
    }

    /// Runs `change` on the value under `key` of the live record `id` and
    /// stores what it returns, holding the session's row lock throughout.
    async fn read_modify_write<T: Send + 'static>(
        &self,
        id: &SessionId,
        key: &str,
        now: u64,
        change: impl Fn(Option<Value>) -> Result<(Value, T), StoreError> + Send + Sync + 'static,
    ) -> Result<Option<T>, StoreError> {
        storable_text(key, "a session key")?;
        let pool = self.pool().await?.clone();
        let (id, key) = (id.clone(), key.to_owned());
        self.bounded(to_completion(async move {
            let (pool, id, key, change) = (&pool, &id, key.as_str(), &change);
            retrying_deadlocks(move || async move {
                let mut tx = pool.begin().await.map_err(db)?;
                if !lock_live(&mut tx, id.as_str(), now).await? {
                    tx.rollback().await.map_err(db)?;
                    return Ok(None);
                }
                // Read after the lock, in a statement of its own: in READ COMMITTED
                // each statement sees what committed before it began, so this sees
                // the previous holder's write. (Joined into the locking query, the
                // value would come from the snapshot taken before the wait.)
                let current = stored_text(&mut tx, id, key).await?;
                let current = current.map(|text| parse_value(key, &text)).transpose()?;
                // An error here drops `tx`, which rolls back: nothing was written.
                let (next, result) = change(current)?;
                sqlx::query(PUT_VALUE)
                    .bind(id.as_str())
                    .bind(key)
                    .bind(tagged::to_string(&next))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(Some(result))
            })
            .await
        }))
        .await
    }
}

/// Why opening failed: configuration problems are reported as such, the rest
/// as unavailability.
enum OpenFailure {
    Config(String),
    Sql(sqlx::Error),
}

impl From<sqlx::Error> for OpenFailure {
    fn from(error: sqlx::Error) -> Self {
        Self::Sql(error)
    }
}

/// The tables every schema version has besides the version table.
const DATA_TABLES: [&str; 2] = ["tessera_sessions", "tessera_session_values"];

/// What a schema holds of the store's.
struct SchemaFound {
    /// The version recorded, 0 if there is no version table yet.
    version: i64,
    /// Those of [`DATA_TABLES`] that are missing.
    missing: Vec<&'static str>,
    /// Whether the connection's isolation is READ COMMITTED (or weaker).
    read_committed: bool,
}

impl SchemaFound {
    /// The data tables are gone while the version table says they were
    /// made (dropped by hand): made again, empty, as on first use.
    fn dropped(&self) -> bool {
        self.version > 0 && self.missing.len() == DATA_TABLES.len()
    }

    /// Some of the tables only: no state this library leaves.
    fn incomplete(&self) -> Option<OpenFailure> {
        if self.version == 0 && self.missing.len() < DATA_TABLES.len() {
            return Some(OpenFailure::Config(
                "the PostgreSQL session schema is incomplete: tessera_schema_migrations is \
                 missing (or empty) while tessera's session tables are there; restore it from \
                 a backup, or drop the tessera_ tables so that the store creates them again, \
                 empty"
                    .to_owned(),
            ));
        }
        (self.version > 0 && !self.missing.is_empty() && !self.dropped()).then(|| {
            OpenFailure::Config(format!(
                "the PostgreSQL session schema is incomplete: {} is missing while the other \
                 tessera tables are there; restore it from a backup, or drop the other \
                 tessera_ tables (tessera_schema_migrations included) so that the store \
                 creates them again, empty",
                self.missing.join(" and ")
            ))
        })
    }
}

/// A schema of the search path that holds the session tables but that the
/// role may not use (quoted as SQL takes it): the tables then look absent.
/// When creating them, only if the search path has no schema the role may
/// use ("no schema has been selected to create in"): with one, they are
/// created there, as before (another application's tables, say, in a
/// schema named first).
async fn unusable_schema_with_tables(
    conn: &mut PgConnection,
    existing_only: bool,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT quote_ident(n.nspname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relname = 'tessera_sessions' \
           AND NOT has_schema_privilege(n.oid, 'USAGE') \
           AND n.nspname = ANY (string_to_array( \
               replace(replace(current_setting('search_path'), ' ', ''), '\"', ''), ',')) \
           AND ($1 OR current_schema() IS NULL) \
         LIMIT 1",
    )
    .bind(existing_only)
    .fetch_optional(conn)
    .await
}

/// The search path, if no schema of it exists that the role may use
/// (PostgreSQL's own word for it comes only when creating a table: "no
/// schema has been selected to create in").
async fn search_path_without_schema(
    conn: &mut PgConnection,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT current_setting('search_path') WHERE current_schema() IS NULL")
        .fetch_optional(conn)
        .await
}

/// The schema version found and the data tables missing.
async fn schema_found(conn: &mut PgConnection) -> Result<SchemaFound, sqlx::Error> {
    // `to_regclass` resolves the names through the search path like the
    // queries do, and answers NULL rather than failing when one is absent.
    let (versioned, sessions, values, read_committed): (bool, bool, bool, bool) = sqlx::query_as(
        "SELECT to_regclass('tessera_schema_migrations') IS NOT NULL, \
                to_regclass('tessera_sessions') IS NOT NULL, \
                to_regclass('tessera_session_values') IS NOT NULL, \
                current_setting('transaction_isolation') IN ('read committed', 'read uncommitted')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let missing = DATA_TABLES
        .into_iter()
        .zip([sessions, values])
        .filter_map(|(table, present)| (!present).then_some(table))
        .collect();
    let version = if versioned {
        sqlx::query_scalar(
            "SELECT COALESCE(max(version), 0)::BIGINT FROM tessera_schema_migrations",
        )
        .fetch_one(conn)
        .await?
    } else {
        0
    };
    Ok(SchemaFound {
        version,
        missing,
        read_committed,
    })
}

/// A certificate or key file a PostgreSQL URL or libpq's environment names.
#[derive(Debug, PartialEq)]
struct TlsFile {
    /// libpq's parameter name.
    parameter: &'static str,
    /// Where it was given: "the PostgreSQL URL's sslkey", "PGSSLKEY".
    source: String,
    path: String,
}

impl TlsFile {
    /// Readable, and PEM (what sqlx reads); the path is named if not.
    fn check(&self) -> Result<(), StoreError> {
        let Self { source, path, .. } = self;
        match std::fs::read(path) {
            Err(error) => Err(StoreError::config(Reason::caused_by(
                format!("the {source} file {path} cannot be read: {error}"),
                error,
            ))),
            Ok(pem) if !pem.windows(10).any(|w| w == b"-----BEGIN") => Err(StoreError::config(
                format!("the {source} file {path} holds no PEM certificate or key"),
            )),
            Ok(_) => Ok(()),
        }
    }
}

/// The certificate and key files a PostgreSQL URL names (as sqlx reads them:
/// `sslrootcert`, `sslcert`, `sslkey` and their aliases, else libpq's
/// `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY`). Inline PEM values are not
/// files (nor ever shown: a key is a secret).
fn tls_files(url: &str) -> Vec<TlsFile> {
    const NAMES: [(&str, &[&str], &str); 3] = [
        (
            "sslrootcert",
            &["sslrootcert", "ssl-root-cert", "ssl-ca"],
            "PGSSLROOTCERT",
        ),
        ("sslcert", &["sslcert", "ssl-cert"], "PGSSLCERT"),
        ("sslkey", &["sslkey", "ssl-key"], "PGSSLKEY"),
    ];
    let query = url
        .split_once('?')
        .map_or("", |(_, query)| query.split('#').next().unwrap_or_default());
    // As sqlx reads it: `url`'s query pairs are this parser's.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    NAMES
        .iter()
        .filter_map(|&(parameter, aliases, variable)| {
            let (source, path) = match pairs
                .iter()
                .rev()
                .find(|(name, _)| aliases.contains(&name.as_str()))
            {
                Some((_, value)) => (format!("PostgreSQL URL's {parameter}"), value.clone()),
                None => (variable.to_owned(), std::env::var(variable).ok()?),
            };
            (!path.contains("-----BEGIN")).then_some(TlsFile {
                parameter,
                source,
                path,
            })
        })
        .collect()
}

fn newer_schema(found: i64) -> OpenFailure {
    OpenFailure::Config(format!(
        "the PostgreSQL session schema has version {found}, but this version of tessera \
         knows versions up to {}: upgrade tessera or use another schema",
        PostgresStore::SCHEMA_VERSION
    ))
}

/// Brings the schema to [`PostgresStore::SCHEMA_VERSION`].
async fn migrate(
    pool: &PgPool,
    schema: Option<&str>,
    existing_only: bool,
) -> Result<(), OpenFailure> {
    let known = i64::from(PostgresStore::SCHEMA_VERSION);
    let mut conn = pool.acquire().await?;
    // Current already (the usual case): no lock and no DDL, so a role that
    // may only read and write the tables can open the store.
    let mut schema_now = schema_found(&mut conn).await?;
    if !schema_now.read_committed {
        pin_read_committed();
        conn.execute(SET_READ_COMMITTED).await?;
    }
    if schema_now.version == known && schema_now.missing.is_empty() {
        return Ok(());
    }
    if schema_now.version == 0 && schema_now.missing.len() == DATA_TABLES.len() {
        if let Some(schema) = unusable_schema_with_tables(&mut conn, existing_only).await? {
            return Err(OpenFailure::Config(format!(
                "the tessera session tables are in schema {schema}, which the search path \
                 names but this role may not use: GRANT USAGE ON SCHEMA {schema} TO the \
                 role (PostgreSQL leaves such a schema out of the search path without \
                 saying so)"
            )));
        }
        if schema.is_none() {
            if let Some(search_path) = search_path_without_schema(&mut conn).await? {
                return Err(OpenFailure::Config(format!(
                    "the connection's search_path ({search_path}) names no schema that exists \
                     and this role may use, so there is nowhere to find or create the session \
                     tables: create the schema first (CREATE SCHEMA), or let the store create \
                     one (PostgresStore::with_schema)"
                )));
            }
        }
    }
    if existing_only {
        // These reads take no lock, and the catalog can change between two
        // of them: an instance's first migration committing meanwhile shows
        // its tables without its version table. Looked at once more before
        // judging; under the migration lock below the schema stands still.
        schema_now = schema_found(&mut conn).await?;
        if schema_now.version == known && schema_now.missing.is_empty() {
            return Ok(());
        }
        if let Some(failure) = schema_now.incomplete() {
            return Err(failure);
        }
    }
    let found = schema_now.version;
    if found > known {
        return Err(newer_schema(found));
    }
    if existing_only {
        let place = schema.map_or(String::new(), |name| format!(" in schema {name}"));
        return Err(OpenFailure::Config(if found == 0 {
            format!("no tessera session tables{place}: not a session store, or the application has not created them yet")
        } else if schema_now.dropped() {
            format!("the tessera session tables{place} are gone (dropped?): tessera_schema_migrations is there, tessera_sessions and tessera_session_values are not; the application creates them again, empty, once a request meets them missing (that request answers 503)")
        } else {
            format!("not a tessera session store of schema version {known} (it has version {found}{place})")
        }));
    }
    // One transaction, holding an advisory lock until it ends: instances
    // starting together take turns, and the later ones find the schema
    // current. PostgreSQL's DDL is transactional, so a failed step leaves
    // the schema as it was.
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(COALESCE($2, current_schema(), '')))")
        .bind(MIGRATION_LOCK)
        .bind(schema)
        .execute(&mut *tx)
        .await?;
    if let Some(schema) = schema {
        // The name was checked to be a plain identifier in `with_schema`;
        // quoted, since it may be a reserved word (`user`, `order`), which
        // the search_path setting takes as it is.
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        (&mut *tx).execute(sqlx::raw_sql(&create)).await?;
    }
    (&mut *tx)
        .execute(sqlx::raw_sql(CREATE_VERSION_TABLE))
        .await?;
    let schema_now = schema_found(&mut tx).await?;
    let mut found = schema_now.version;
    if found > known {
        return Err(newer_schema(found));
    }
    if let Some(failure) = schema_now.incomplete() {
        return Err(failure);
    }
    if schema_now.dropped() {
        tracing::warn!(
            schema = schema.unwrap_or("(the search path's)"),
            "the PostgreSQL session tables were dropped: creating them again, empty"
        );
        (&mut *tx)
            .execute(sqlx::raw_sql("DELETE FROM tessera_schema_migrations"))
            .await?;
        found = 0;
    }
    let done = usize::try_from(found).unwrap_or(MIGRATIONS.len());
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        // Through `Executor` (a boxed `Send` future): `RawSql::execute`'s
        // generic future trips rustc's higher-ranked `Send` check.
        (&mut *tx).execute(sqlx::raw_sql(sql)).await?;
        let version = i32::try_from(step + 1).unwrap_or(i32::MAX);
        sqlx::query("INSERT INTO tessera_schema_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the session is live, locking its row `FOR UPDATE` ([`LOCK_LIVE`])
/// until the transaction ends.
async fn lock_live(conn: &mut PgConnection, id: &str, now: u64) -> Result<bool, StoreError> {
    let live: Option<i32> = sqlx::query_scalar(LOCK_LIVE)
        .bind(id)
        .bind(sql_time(now))
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    Ok(live.is_some())
}

/// The stored text of one key.
async fn stored_text(
    conn: &mut PgConnection,
    id: &SessionId,
    key: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT value FROM tessera_session_values WHERE session_id = $1 AND key = $2",
    )
    .bind(id.as_str())
    .bind(key)
    .fetch_optional(conn)
    .await
    .map_err(db)
}

/// Applies `changes` (without a list edit) in one statement, `UPDATE`.
async fn apply_changes<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    id: &SessionId,
    changes: &Changes,
    now: u64,
) -> Result<bool, StoreError> {
    let (keys, values) = key_value_arrays(&changes.set)?;
    // A key PostgreSQL cannot hold is not there to remove.
    let removed: Vec<&str> = changes
        .removed
        .iter()
        .map(String::as_str)
        .filter(|key| !key.contains('\0'))
        .collect();
    let statement = if changes.cleared {
        UPDATE_CLEARING
    } else {
        UPDATE
    };
    sqlx::query_scalar(statement)
        .bind(id.as_str())
        .bind(sql_time(now))
        .bind(changes.expires_at.map(sql_time))
        .bind(changes.user_id.is_some())
        .bind(changes.user_id.as_ref().and_then(Option::as_deref))
        .bind(changes.cleared)
        .bind(removed)
        .bind(keys)
        .bind(values)
        .bind(changes.absolute_expires_at.map(sql_time))
        .fetch_one(executor)
        .await
        .map_err(db)
}

/// Keys and their tagged JSON, as the two arrays `unnest` pairs up.
fn key_value_arrays(data: &Map) -> Result<(Vec<&str>, Vec<String>), StoreError> {
    for key in data.keys() {
        storable_text(key, "a session key")?;
    }
    Ok(data
        .iter()
        .map(|(key, value)| (key, tagged::to_string(value)))
        .unzip())
}

/// PostgreSQL's text cannot hold U+0000, which a key or a user id may:
/// refused as what this store cannot represent, not sent to be refused as a
/// failed statement, which would read as an outage (a 503 to retry). Values
/// are stored as tagged JSON, which writes it as `\u0000`.
fn storable_text(text: &str, what: &str) -> Result<(), StoreError> {
    if text.contains('\0') {
        return Err(StoreError::unrepresentable(format!(
            "{what} contains a NUL character, which PostgreSQL text cannot hold"
        )));
    }
    Ok(())
}

fn optional_time(seconds: Option<i64>) -> Result<Option<u64>, StoreError> {
    seconds
        .map(|at| time_from_sql(at, "absolute_expires_at"))
        .transpose()
}

fn session_info(row: &PgRow) -> Result<SessionInfo, StoreError> {
    let id: String = row.try_get("id").map_err(db)?;
    Ok(SessionInfo {
        id: parse_id(&id)?,
        user_id: row.try_get("user_id").map_err(db)?,
        created_at: time_from_sql(row.try_get("created_at").map_err(db)?, "created_at")?,
        expires_at: time_from_sql(row.try_get("expires_at").map_err(db)?, "expires_at")?,
        absolute_expires_at: optional_time(row.try_get("absolute_expires_at").map_err(db)?)?,
    })
}

/// Whether to hand an operation to tessera's own runtime ([`on`]), as
/// when the caller's runtime is single-threaded (or there is none), rather
/// than run it where it is called. actix-web runs one runtime per worker,
/// and a pooled connection answers only while the runtime that opened it
/// runs: taken by another worker, it would wait for that worker's handler
/// to yield (a blocking handler stalled every other worker's sessions) and
/// fail once that worker's runtime is gone. Operations started on a
/// single-threaded runtime therefore run on tessera's, and every
/// connection they use is opened there.
fn elsewhere() -> bool {
    background::single_threaded()
}

/// What `operation` answers, run on tessera's own runtime; a panic goes on
/// as a panic.
async fn on<T: Send + 'static>(
    operation: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    match background::spawn(operation).await {
        Ok(answer) => answer,
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // The runtime lives as long as the process.
            Err(error) => unreachable!("an operation on the store was cancelled: {error}"),
        },
    }
}

impl PostgresStore {
    /// The store, for an operation of [`Here`].
    fn here(&self) -> Here {
        Here(Self {
            shared: Arc::clone(&self.shared),
        })
    }

    /// Runs `operation` on the store, on [`background::runtime`] when the
    /// caller's runtime is single-threaded, else where it is.
    async fn run<T, F, Fut>(&self, operation: F) -> T
    where
        F: FnOnce(Here) -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        if elsewhere() {
            on(operation(self.here())).await
        } else {
            operation(self.here()).await
        }
    }
}

// Each operation runs as `Here`'s, where it is called or, from a
// single-threaded runtime, on tessera's own, with its arguments
// copied only then.
#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    async fn close(&self) {
        PostgresStore::close(self).await;
    }

    async fn load(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        if !elsewhere() {
            return self.here().load(id, now).await;
        }
        let (here, id) = (self.here(), id.clone());
        on(async move { here.load(&id, now).await }).await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<bool, StoreError> {
        if !elsewhere() {
            return self.here().create(id, record).await;
        }
        let (here, id, record) = (self.here(), id.clone(), record.clone());
        on(async move { here.create(&id, &record).await }).await
    }

    async fn update(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<bool, StoreError> {
        if !elsewhere() {
            return self.here().update(id, changes, now).await;
        }
        let (here, id, changes) = (self.here(), id.clone(), changes.clone());
        on(async move { here.update(&id, &changes, now).await }).await
    }

    async fn update_or_delete_if_empty(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<UpdateOutcome, StoreError> {
        if !elsewhere() {
            return self
                .here()
                .update_or_delete_if_empty(id, changes, now)
                .await;
        }
        let (here, id, changes) = (self.here(), id.clone(), changes.clone());
        on(async move { here.update_or_delete_if_empty(&id, &changes, now).await }).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        if !elsewhere() {
            return self.here().delete(id).await;
        }
        let (here, id) = (self.here(), id.clone());
        on(async move { here.delete(&id).await }).await
    }

    async fn cycle_id(
        &self,
        old: &SessionId,
        new: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError> {
        if !elsewhere() {
            return self.here().cycle_id(old, new, now).await;
        }
        let (here, old, new) = (self.here(), old.clone(), new.clone());
        on(async move { here.cycle_id(&old, &new, now).await }).await
    }

    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError> {
        if !elsewhere() {
            return self.here().increment(id, key, by, now).await;
        }
        let (here, id, key) = (self.here(), id.clone(), key.to_owned());
        on(async move { here.increment(&id, &key, by, now).await }).await
    }

    async fn append(
        &self,
        id: &SessionId,
        key: &str,
        value: &Value,
        now: u64,
    ) -> Result<Option<usize>, StoreError> {
        if !elsewhere() {
            return self.here().append(id, key, value, now).await;
        }
        let (here, id, key, value) = (self.here(), id.clone(), key.to_owned(), value.clone());
        on(async move { here.append(&id, &key, &value, now).await }).await
    }

    async fn list(
        &self,
        user_id: Option<&str>,
        after: Option<&SessionId>,
        limit: usize,
        now: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        if !elsewhere() {
            return self.here().list(user_id, after, limit, now).await;
        }
        let (here, user_id, after) = (self.here(), user_id.map(str::to_owned), after.cloned());
        on(async move {
            here.list(user_id.as_deref(), after.as_ref(), limit, now)
                .await
        })
        .await
    }

    async fn delete_user(&self, user_id: &str) -> Result<u64, StoreError> {
        if !elsewhere() {
            return self.here().delete_user(user_id).await;
        }
        let (here, user_id) = (self.here(), user_id.to_owned());
        on(async move { here.delete_user(&user_id).await }).await
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> Result<u64, StoreError> {
        self.run(|here| async move { here.purge_expired(now, batch).await })
            .await
    }
}

/// The store's operations, run on the runtime that polls them (see
/// [`PostgresStore::run`]).
#[derive(Debug)]
struct Here(PostgresStore);

impl std::ops::Deref for Here {
    type Target = PostgresStore;

    fn deref(&self) -> &PostgresStore {
        &self.0
    }
}

impl Combining for Here {
    /// Concurrent statements run side by side on the pool's connections.
    const BATCHING: Batching = Batching::PerTurn;

    fn combiner(&self) -> &Combiner {
        &self.shared.combiner
    }

    fn handle(&self) -> Self {
        self.0.here()
    }

    async fn load_alone(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        // One statement reads one snapshot: the values always belong to the
        // session row they come with, even while a writer commits.
        let pool = self.pool().await?;
        let rows = self
            .bounded(async {
                // Connections a restart killed while in use (those idle for
                // a moment are pinged first) fail at once, as do those that
                // prepared the load before the tables were changed: a read
                // goes on to the next, each such one being closed on its way
                // back.
                let mut attempts = self.shared.max_connections;
                loop {
                    let rows = sqlx::query(LOAD)
                        .bind(id.as_str())
                        .bind(sql_time(now))
                        .fetch_all(pool)
                        .await;
                    match rows {
                        Err(error)
                            if attempts > 0
                                && (connection_lost(&error) || stale_statement(&error)) =>
                        {
                            attempts -= 1;
                        }
                        rows => break rows.map_err(db),
                    }
                }
            })
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut record = Record {
            data: Map::new(),
            user_id: first.try_get("user_id").map_err(db)?,
            created_at: time_from_sql(first.try_get("created_at").map_err(db)?, "created_at")?,
            expires_at: time_from_sql(first.try_get("expires_at").map_err(db)?, "expires_at")?,
            absolute_expires_at: optional_time(first.try_get("absolute_expires_at").map_err(db)?)?,
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
        let pool = self.pool().await?;
        let at_once: Option<String> = self
            .bounded(retrying_deadlocks(|| async {
                sqlx::query_scalar(INCREMENT_AT_ONCE)
                    .bind(id.as_str())
                    .bind(key)
                    .bind(by.to_string())
                    .bind(sql_time(now))
                    .fetch_optional(pool)
                    .await
                    .map_err(db)
            }))
            .await?;
        if let Some(text) = at_once {
            return text
                .parse()
                .map(Some)
                .map_err(|_| StoreError::corrupt(format!("incrementing {key:?} stored {text:?}")));
        }
        let name = key.to_owned();
        self.read_modify_write(id, key, now, move |current| {
            let key = name.as_str();
            let next = incremented(key, current.as_ref(), by)?;
            Ok((Value::from(next), next))
        })
        .await
    }
}

#[async_trait::async_trait]
impl SessionStore for Here {
    async fn close(&self) {
        PostgresStore::close(self).await;
    }

    async fn load(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError> {
        combine::load(self, id, now).await
    }

    async fn create(&self, id: &SessionId, record: &Record) -> Result<bool, StoreError> {
        let (keys, values) = key_value_arrays(&record.data)?;
        if let Some(user_id) = &record.user_id {
            storable_text(user_id, "the user id")?;
        }
        let pool = self.pool().await?;
        self.bounded(async {
            sqlx::query_scalar(CREATE)
                .bind(id.as_str())
                .bind(record.user_id.as_deref())
                .bind(sql_time(record.created_at))
                .bind(sql_time(record.expires_at))
                .bind(record.absolute_expires_at.map(sql_time))
                .bind(keys)
                .bind(values)
                .fetch_one(pool)
                .await
                .map_err(db)
        })
        .await
    }

    async fn update(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<bool, StoreError> {
        let pool = self.pool().await?;
        if changes.is_empty() {
            // Nothing to write: no lock either.
            return self
                .bounded(async {
                    sqlx::query_scalar(IS_LIVE)
                        .bind(id.as_str())
                        .bind(sql_time(now))
                        .fetch_one(pool)
                        .await
                        .map_err(db)
                })
                .await;
        }
        if changes.list_edit.is_none() {
            if let Some(Some(user_id)) = &changes.user_id {
                storable_text(user_id, "the user id")?;
            }
            return self
                .bounded(retrying_deadlocks(|| apply_changes(pool, id, changes, now)))
                .await;
        }
        let outcome = self.apply_locked(id, changes, now, false).await?;
        Ok(outcome != UpdateOutcome::Vanished)
    }

    async fn update_or_delete_if_empty(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<UpdateOutcome, StoreError> {
        self.apply_locked(id, changes, now, true).await
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let pool = self.pool().await?;
        let deleted = self
            .bounded(retrying_deadlocks(|| async {
                sqlx::query("DELETE FROM tessera_sessions WHERE id = $1")
                    .bind(id.as_str())
                    .execute(pool)
                    .await
                    .map_err(db)
            }))
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn cycle_id(
        &self,
        old: &SessionId,
        new: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError> {
        if old == new {
            // `new` is taken, by `old` itself.
            return Ok(false);
        }
        let pool = self.pool().await?.clone();
        let (old, new) = (old.clone(), new.clone());
        self.bounded(to_completion(async move {
            let (pool, old, new) = (&pool, &old, &new);
            retrying_deadlocks(move || async move {
                let mut tx = pool.begin().await.map_err(db)?;
                // Locks `old` first, so the writers of the session wait and then
                // find it gone rather than write to a row about to be deleted.
                if !lock_live(&mut tx, old.as_str(), now).await? {
                    tx.rollback().await.map_err(db)?;
                    return Ok(false);
                }
                // Copies the row only if `new` is unused by any row, expired or not;
                // a concurrent insert of `new` makes this wait for it, then skip.
                let copied = sqlx::query(
                    "INSERT INTO tessera_sessions
                 (id, user_id, created_at, expires_at, absolute_expires_at)
             SELECT $1, user_id, created_at, expires_at, absolute_expires_at
             FROM tessera_sessions WHERE id = $2
             ON CONFLICT (id) DO NOTHING",
                )
                .bind(new.as_str())
                .bind(old.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
                if copied == 0 {
                    tx.rollback().await.map_err(db)?;
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE tessera_session_values SET session_id = $1 WHERE session_id = $2",
                )
                .bind(new.as_str())
                .bind(old.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                sqlx::query("DELETE FROM tessera_sessions WHERE id = $1")
                    .bind(old.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                tx.commit().await.map_err(db)?;
                Ok(true)
            })
            .await
        }))
        .await
    }

    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError> {
        storable_text(key, "a session key")?;
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
        if user_id.is_some_and(|user| user.contains('\0')) {
            return Ok(Vec::new());
        }
        // Ids compare bytewise (COLLATE "C"), as `SessionId`'s `Ord` does.
        let pool = self.pool().await?;
        let mut page = ListingPage::new(after, limit);
        while let Some((after, wanted)) = page.wanted() {
            let query = match user_id {
                Some(user_id) => sqlx::query(LIST_BY_USER).bind(user_id),
                None => sqlx::query(LIST_ALL),
            };
            let rows = self
                .bounded(async {
                    query
                        .bind(after)
                        .bind(sql_time(now))
                        .bind(sql_count(wanted))
                        .fetch_all(pool)
                        .await
                        .map_err(db)
                })
                .await?;
            page.take(&rows, wanted, session_info)?;
        }
        Ok(page.finish())
    }

    async fn delete_user(&self, user_id: &str) -> Result<u64, StoreError> {
        if user_id.contains('\0') {
            // No stored session can belong to it.
            return Ok(0);
        }
        let pool = self.pool().await?;
        // Sessions created after this second are logins that came after
        // this call: they stay. One created in this second may be either,
        // and goes: it may be one a login was moving while a round ran,
        // which that round missed, so the rounds go on while one is left
        // (a login in the same second as the call is ended too; by a
        // clock of seconds it cannot be told from one just before). Those
        // live at this second are the ones counted.
        let started = sql_time(crate::server::unix_now());
        self.bounded(async {
            let (mut ended, mut older_left) = (0, false);
            // One DELETE misses a session a login is moving meanwhile: its
            // snapshot holds the old row, which it waits for and then finds
            // gone, and not the new one, still uncommitted when it began.
            // Every snapshot holds one of the two (the move commits both
            // at once), so the user has no such session left once one
            // holds none; a move that begins after that finds nothing to
            // move.
            for _ in 0..DELETE_USER_PASSES {
                let live: i64 = retrying_deadlocks(|| async {
                    sqlx::query_scalar(DELETE_USER)
                        .bind(user_id)
                        .bind(started)
                        .fetch_one(pool)
                        .await
                        .map_err(db)
                })
                .await?;
                ended += u64::try_from(live).unwrap_or(0);
                // Whether one from before this second is left, and one
                // from it: only the first is surely a session the user had
                // (logins that go on in this second keep the rounds going
                // until it ends, and are no cause for the warning below).
                let (older, this_second): (bool, bool) = sqlx::query_as(
                    "SELECT COALESCE(bool_or(created_at < $2), false), \
                            COALESCE(bool_or(created_at = $2), false) \
                     FROM tessera_sessions WHERE user_id = $1 AND created_at <= $2",
                )
                .bind(user_id)
                .bind(started)
                .fetch_one(pool)
                .await
                .map_err(db)?;
                older_left = older;
                if !older && !this_second {
                    return Ok(ended);
                }
            }
            if !older_left {
                return Ok(ended);
            }
            // Not the store failing: no 503 for it.
            tracing::warn!(
                rounds = DELETE_USER_PASSES,
                "logging a user out everywhere: sessions created before it began were still \
                 being moved by logins after every round of deleting them; the last ones may \
                 remain"
            );
            Ok(ended)
        })
        .await
    }

    async fn purge_expired(&self, now: u64, batch: usize) -> Result<u64, StoreError> {
        if batch == 0 {
            return Ok(0);
        }
        let pool = self.pool().await?;
        let purged = self
            .bounded(retrying_deadlocks(|| async {
                sqlx::query(PURGE)
                    .bind(sql_time(now))
                    .bind(sql_count(batch))
                    .execute(pool)
                    .await
                    .map_err(db)
            }))
            .await?
            .rows_affected();
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use super::*;

    const NOW: u64 = 1_000_000;

    fn record(data: Map, user_id: Option<&str>, expires_at: u64) -> Record {
        Record {
            data,
            user_id: user_id.map(str::to_owned),
            created_at: NOW - 60,
            expires_at,
            absolute_expires_at: None,
        }
    }

    /// An idle expiry an hour away by the clock, by which "log out
    /// everywhere" counts the sessions it ends, as well as after [`NOW`].
    fn live_by_the_clock() -> u64 {
        crate::server::unix_now() + 3600
    }

    fn one(key: &str, value: Value) -> Map {
        std::iter::once((key.to_owned(), value)).collect()
    }

    /// The test server's URL; fails, rather than skips, without one.
    fn server_url() -> String {
        std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!(
                "TESSERA_TEST_POSTGRES_URL is not set: start the servers with \
                 `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh"
            )
        })
    }

    /// A schema name no other test uses.
    fn fresh_name(label: &str) -> String {
        format!(
            "tessera_unit_{label}_{}_{}",
            std::process::id(),
            SessionId::generate().fingerprint()
        )
    }

    /// A store on the test server, in `schema`.
    fn store_in(schema: &str) -> PostgresStore {
        PostgresStore::new(&server_url())
            .expect("url")
            .with_schema(schema)
            .expect("schema")
    }

    /// A store in a schema of its own, and the name of that schema.
    fn fresh_store(label: &str) -> (PostgresStore, String) {
        let schema = fresh_name(label);
        (store_in(&schema), schema)
    }

    /// A connection of the test's own, to look at what a store wrote.
    async fn inspect(schema: &str) -> PgConnection {
        let mut conn = PgConnection::connect(&server_url())
            .await
            .expect("connect to inspect");
        sqlx::raw_sql(&format!("SET search_path = \"{schema}\""))
            .execute(&mut conn)
            .await
            .expect("search_path");
        conn
    }

    /// Runs `sql` in `schema` on a connection of the test's own, as an
    /// operator changing the session tables by hand would.
    async fn change_by_hand(schema: &str, sql: &str) {
        let mut conn = inspect(schema).await;
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .expect("the change by hand");
        conn.close().await.expect("close");
    }

    /// Kills the server side of every connection of `application`, as a
    /// restart would; whether each was killed.
    async fn terminate_backends(admin: &mut PgConnection, application: &str) -> Vec<bool> {
        sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(application)
        .fetch_all(admin)
        .await
        .expect("terminate")
    }

    /// A task serving increments queued behind one holds the store's state
    /// until it has sent its answers, so a caller that consumed the store
    /// with a builder right after its concurrent increments were answered
    /// could find the state still shared (the builder then panicked). It
    /// now configures a copy of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_builder_right_after_concurrent_increments_configures_a_copy() {
        let (mut store, schema) = fresh_store("builder_after_increments");
        let id = SessionId::generate();
        let stored = record(Map::new(), None, NOW + 3600);
        assert!(store.create(&id, &stored).await.expect("create"));
        for round in 0..20_i64 {
            combine::three_increments_at_once(&store, &id, "n", NOW, 3 * round).await;
            store = store.with_max_connections(2 + u32::try_from(round % 3).expect("small"));
        }

        let held = Arc::clone(&store.shared);
        let store = store.with_operation_timeout(Duration::from_secs(7));
        assert_eq!(store.shared.operation_timeout, Duration::from_secs(7));
        assert_eq!(held.operation_timeout, DEFAULT_OPERATION_TIMEOUT);
        assert_eq!(store.shared.max_connections, held.max_connections);
        assert_eq!(store.schema(), Some(schema.as_str()));
        let answer = store.increment(&id, "n", 1, NOW).await.expect("increment");
        assert_eq!(answer, Some(61));
        drop(held);
        drop_schema(store, &schema).await;
    }

    /// One round of a login moving a session of alice's, created at
    /// `created_at`, racing "log out everywhere" for her: how many of its
    /// two ids still hold a session after both (deleted then, so that no
    /// round finds another's).
    async fn login_racing_log_out_everywhere(store: &Arc<PostgresStore>, created_at: u64) -> usize {
        let old = SessionId::generate();
        let stored = Record {
            created_at,
            ..record(one("secret", Value::from(1)), Some("alice"), NOW + 3600)
        };
        assert!(store.create(&old, &stored).await.expect("create"));
        let new = SessionId::generate();
        let login = tokio::spawn({
            let (store, old, new) = (store.clone(), old.clone(), new.clone());
            async move { store.cycle_id(&old, &new, NOW).await }
        });
        let everywhere = tokio::spawn({
            let store = store.clone();
            async move { store.delete_user("alice").await }
        });
        login.await.expect("task").expect("cycle");
        everywhere.await.expect("task").expect("delete_user");
        let mut survived = 0;
        for id in [&old, &new] {
            if store.load(id, NOW).await.expect("load").is_some() {
                store.delete(id).await.expect("delete");
                survived += 1;
            }
        }
        survived
    }

    /// "Log out everywhere" racing a login of one of the user's sessions:
    /// whichever comes first, no session of the user is left after both,
    /// its old data least of all. A single DELETE missed the row the login
    /// was moving the session to (its snapshot held only the old row).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_out_everywhere_racing_a_login_leaves_the_user_no_session() {
        let (store, schema) = fresh_store("everywhere_vs_login");
        let store = Arc::new(store);
        let mut survived = 0;
        for _ in 0..100 {
            survived += login_racing_log_out_everywhere(&store, NOW - 60).await;
        }
        assert_eq!(survived, 0, "sessions left after log out everywhere");
        let store = Arc::into_inner(store).expect("the last handle");
        drop_schema(store, &schema).await;
    }

    /// The same race for a session created in the second "log out
    /// everywhere" began: it was counted among the logins after the call
    /// (created from that second on), so a round that missed it because a
    /// login was moving it was the last, and it survived. Only rounds whose
    /// creation and whole race fell within one second of the clock count.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_out_everywhere_racing_a_login_in_its_own_second_leaves_no_session() {
        let (store, schema) = fresh_store("everywhere_same_second");
        let store = Arc::new(store);
        let (mut survived, mut counted) = (0, 0);
        // Bounded, so that a host too slow for a round within a second
        // fails the count below instead of looping for good.
        for _ in 0..1_000 {
            if counted == 100 {
                break;
            }
            let second = crate::server::unix_now();
            let left = login_racing_log_out_everywhere(&store, second).await;
            if crate::server::unix_now() == second {
                survived += left;
                counted += 1;
            }
        }
        assert!(counted >= 50, "only {counted} rounds within one second");
        assert_eq!(survived, 0, "sessions left after log out everywhere");
        let store = Arc::into_inner(store).expect("the last handle");
        drop_schema(store, &schema).await;
    }

    /// A visitor's concurrent requests on one session (increments, writes
    /// that refresh the expiry, read-modify-writes, flash messages) all
    /// succeed: PostgreSQL ends some of them to break deadlocks between
    /// their row locks, and those run again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_visitors_concurrent_operations_all_succeed() {
        let (store, schema) = fresh_store("concurrent_mix");
        let store = Arc::new(store);
        let id = SessionId::generate();
        let stored = record(one("counter", Value::from(0)), None, NOW + 3600);
        assert!(store.create(&id, &stored).await.expect("create"));
        let (tasks, rounds) = (16_u64, 600_u64);
        let mut running = Vec::new();
        for task in 0..tasks {
            let (store, id) = (store.clone(), id.clone());
            running.push(tokio::spawn(async move {
                let mut increments = 0;
                for round in 0..rounds {
                    let expires_at = Some(NOW + 3600 + round);
                    match (task + round) % 5 {
                        0 | 1 => {
                            store.increment(&id, "counter", 1, NOW).await?;
                            increments += 1;
                        }
                        2 => {
                            store.append(&id, "list", &Value::from(round), NOW).await?;
                        }
                        3 => {
                            let changes = Changes {
                                set: one(&format!("k{}", round % 5), Value::from(round)),
                                removed: vec![format!("k{}", (round + 2) % 5)],
                                expires_at,
                                ..Changes::default()
                            };
                            store.update(&id, &changes, NOW).await?;
                        }
                        _ => {
                            let flash = crate::store::ListEdit {
                                key: "_flashes".into(),
                                taken: Vec::new(),
                                added: vec![Value::from(round)],
                            };
                            let changes = Changes {
                                expires_at,
                                list_edit: Some(flash),
                                ..Changes::default()
                            };
                            store.update(&id, &changes, NOW).await?;
                        }
                    }
                }
                Ok::<_, StoreError>(increments)
            }));
        }
        let mut increments = 0;
        for task in running {
            increments += task.await.expect("task").expect("every operation succeeds");
        }
        let loaded = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(loaded.data.get("counter"), Some(&Value::from(increments)));
        let store = Arc::into_inner(store).expect("the last handle");
        drop_schema(store, &schema).await;
    }

    /// Session tables changed by hand into another shape (a value column of
    /// JSONB, no primary key for the values, a time column of 32 bits) make
    /// reads or writes fail with a configuration error saying so, not
    /// "unavailable, try again", nor every session read as unreadable.
    #[tokio::test]
    async fn tables_of_another_shape_are_a_configuration_error() {
        for (label, change) in [
            (
                "jsonb",
                "ALTER TABLE tessera_session_values ALTER COLUMN value TYPE jsonb USING value::jsonb",
            ),
            (
                "nokey",
                "ALTER TABLE tessera_session_values DROP CONSTRAINT tessera_session_values_pkey",
            ),
            (
                "int4",
                "ALTER TABLE tessera_sessions ALTER COLUMN expires_at TYPE integer",
            ),
            (
                "notnull",
                "ALTER TABLE tessera_sessions ADD COLUMN tenant text NOT NULL",
            ),
            (
                "check",
                "ALTER TABLE tessera_session_values ADD CONSTRAINT long_keys \
                 CHECK (length(key) > 5)",
            ),
        ] {
            let (store, schema) = fresh_store(label);
            store.connect().await.expect("the store makes its tables");
            store.close().await;
            change_by_hand(&schema, change).await;
            let store = store_in(&schema);
            let id = SessionId::generate();
            // Reading (what every request does first) or writing.
            let created = store
                .create(&id, &record(one("k", Value::from(1)), None, NOW + 3600))
                .await;
            let written = match created {
                Ok(_) => match store.load(&id, NOW).await {
                    Ok(_) => store.increment(&id, "visits", 1, NOW).await.map(drop),
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            };
            match written {
                Err(StoreError::Config(message)) => {
                    assert!(message.text().contains("made or changed by hand"), "{label}: {message}")
                }
                other => panic!("{label}: {other:?}"),
            }
            drop_schema(store, &schema).await;
        }
    }

    /// Session tables changed by hand while the application runs: the
    /// statements its connections prepared before no longer fit them
    /// ("cached plan must not change result type"), nor would they on any
    /// of its connections, for as long as each lived (every request a 503).
    /// Now a change the store works with (the values as `varchar`) is read
    /// at once, on new connections, and one it cannot work with is the
    /// configuration error it is on a store opened after the change.
    #[tokio::test]
    async fn tables_changed_while_open_are_read_afresh_or_refused() {
        for (label, change, usable) in [
            (
                "varchar",
                "ALTER TABLE tessera_session_values ALTER COLUMN value TYPE varchar",
                true,
            ),
            (
                "jsonb",
                "ALTER TABLE tessera_session_values ALTER COLUMN value TYPE jsonb USING value::jsonb",
                false,
            ),
            (
                "text",
                "ALTER TABLE tessera_sessions ALTER COLUMN expires_at TYPE text",
                false,
            ),
        ] {
            let (store, schema) = fresh_store(&format!("open_{label}"));
            let id = SessionId::generate();
            let stored = record(one("k", Value::from(1)), None, NOW + 3600);
            assert!(store.create(&id, &stored).await.expect("create"), "{label}");
            // Both statements prepared on the store's connections.
            assert!(store.load(&id, NOW).await.expect("load").is_some());
            assert_eq!(store.increment(&id, "n", 1, NOW).await.expect("+1"), Some(1));
            change_by_hand(&schema, change).await;
            let loaded = store.load(&id, NOW).await;
            let incremented = store.increment(&id, "n", 1, NOW).await;
            if usable {
                let loaded = loaded.expect("load").expect("live");
                assert_eq!(loaded.data.get("k"), Some(&Value::from(1)), "{label}");
                assert_eq!(incremented.expect("+1"), Some(2), "{label}");
            } else {
                for result in [loaded.map(drop), incremented.map(drop)] {
                    match result {
                        Err(StoreError::Config(message)) => assert!(
                            message.text().contains("made or changed by hand"),
                            "{label}: {message}"
                        ),
                        other => panic!("{label}: {other:?}"),
                    }
                }
            }
            drop_schema(store, &schema).await;
        }
    }

    /// "Log out everywhere" while the same user keeps logging in (someone
    /// holding a stolen password, say): every session from before the call
    /// goes, the logins made meanwhile may stay, and the call succeeds. (It
    /// answered 503 once logins had kept up for 32 rounds.) Calls for one
    /// user at once all succeed and delete each session once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logging_out_everywhere_outlasts_logins_and_its_own_twins() {
        let (store, schema) = fresh_store("everywhere");
        let store = Arc::new(store);
        let far = crate::server::unix_now() + 3600;
        let mut before = Vec::new();
        for _ in 0..30 {
            let id = SessionId::generate();
            assert!(store
                .create(&id, &record(Map::new(), Some("alice"), far))
                .await
                .expect("create"));
            before.push(id);
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let logins: Vec<_> = (0..4)
            .map(|_| {
                let (store, stop) = (store.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let record = Record {
                            created_at: crate::server::unix_now(),
                            ..record(Map::new(), Some("alice"), far)
                        };
                        store
                            .create(&SessionId::generate(), &record)
                            .await
                            .expect("a login");
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let deleted = store
            .delete_user("alice")
            .await
            .expect("logged out everywhere");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for login in logins {
            login.await.expect("the logins");
        }
        assert!(deleted >= 30, "{deleted}");
        for id in &before {
            assert_eq!(store.load(id, NOW).await.expect("load"), None);
        }

        let mut bob = 0;
        for _ in 0..200 {
            bob += u64::from(
                store
                    .create(
                        &SessionId::generate(),
                        &record(Map::new(), Some("bob"), far),
                    )
                    .await
                    .expect("create"),
            );
        }
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.delete_user("bob").await })
            })
            .collect();
        let mut deleted = 0;
        for call in calls {
            deleted += call.await.expect("task").expect("every call succeeds");
        }
        assert_eq!(deleted, bob);
        let store = Arc::into_inner(store).expect("the last handle");
        drop_schema(store, &schema).await;
    }

    /// PostgreSQL ends one transaction of a deadlock (the first to have
    /// waited a second) and the other goes on: a session operation chosen
    /// so runs again instead of answering 503. Deadlocks happen between a
    /// visitor's own concurrent requests (an increment, whose row lock
    /// follows a refreshed expiry's new row version, against a
    /// read-modify-write's `FOR UPDATE`); here another connection makes one
    /// on purpose, holding a value row and then asking for the session row
    /// the operation holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operation_ended_by_a_deadlock_runs_again() {
        let (store, schema) = fresh_store("deadlock_victim");
        let store = Arc::new(store);
        let mut watch = inspect(&schema).await;
        // PostgreSQL ends the transaction whose deadlock check finds the
        // cycle: the append's, if this test's connection waits within a
        // second of it; on a machine too busy for that, this test's. Tried
        // again then, since only the first case is the one tested.
        let mut victims_here = 0;
        loop {
            let id = SessionId::generate();
            let stored = record(
                one("list", Value::from(vec![Value::from(1)])),
                None,
                NOW + 3600,
            );
            assert!(store.create(&id, &stored).await.expect("create"));
            let mut other = inspect(&schema).await;
            sqlx::raw_sql("BEGIN")
                .execute(&mut other)
                .await
                .expect("begin");
            sqlx::query("UPDATE tessera_session_values SET value = '[1, 2]' WHERE session_id = $1")
                .bind(id.as_str())
                .execute(&mut other)
                .await
                .expect("hold the value row");
            let append = tokio::spawn({
                let (store, id) = (store.clone(), id.clone());
                async move { store.append(&id, "list", &Value::from(3), NOW).await }
            });
            // The append holds the session row and waits for the value row.
            let waiting = async {
                loop {
                    let waiting: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity \
                         WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO tessera_session_values%'",
                    )
                    .fetch_one(&mut watch)
                    .await
                    .expect("pg_stat_activity");
                    if waiting > 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), waiting)
                .await
                .expect("the append waits for the value row");
            // Waits for the append's transaction until PostgreSQL ends one.
            let survived =
                sqlx::query("SELECT 1 FROM tessera_sessions WHERE id = $1 FOR KEY SHARE")
                    .bind(id.as_str())
                    .execute(&mut other)
                    .await;
            if let Err(error) = survived {
                assert_eq!(
                    code_of(&error).as_deref(),
                    Some(DEADLOCK_DETECTED),
                    "{error}"
                );
                victims_here += 1;
                assert!(victims_here < 5, "this test's connection ended every time");
                drop(other);
                let appended = append.await.expect("task").expect("the append goes on");
                assert_eq!(appended, Some(2));
                continue;
            }
            sqlx::raw_sql("COMMIT")
                .execute(&mut other)
                .await
                .expect("commit");
            let appended = tokio::time::timeout(Duration::from_secs(10), append)
                .await
                .expect("the append ends")
                .expect("task");
            assert_eq!(appended.expect("the append runs again"), Some(3));
            let loaded = store.load(&id, NOW).await.expect("load").expect("live");
            assert_eq!(
                loaded.data.get("list"),
                Some(&Value::from(vec![
                    Value::from(1),
                    Value::from(2),
                    Value::from(3)
                ]))
            );
            other.close().await.expect("close");
            break;
        }
        watch.close().await.expect("close");
        let store = Arc::into_inner(store).expect("the last handle");
        drop_schema(store, &schema).await;
    }

    async fn drop_schema(store: PostgresStore, schema: &str) {
        store.close().await;
        let mut conn = inspect(schema).await;
        sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await
            .expect("drop the schema");
        conn.close().await.expect("close");
    }

    /// actix-web's workers each run a single-threaded runtime; one whose
    /// handler blocks its thread must not stall the others' sessions
    /// through a pooled connection its runtime drives.
    #[test]
    fn a_thread_blocked_in_one_single_threaded_runtime_stalls_no_other() {
        let (store, schema) = fresh_store("blocked_thread");
        let store = std::sync::Arc::new(store);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let id = SessionId::generate();
        runtime.block_on(async {
            assert!(store
                .create(&id, &record(one("n", 1.into()), None, NOW + 3600))
                .await
                .expect("create"));
        });
        let connected = std::sync::Arc::new(std::sync::Barrier::new(2));
        let blocked = Duration::from_secs(3);
        let blocker = {
            let (store, connected, id) = (store.clone(), connected.clone(), id.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                // Loads at once, so that the pool holds connections this
                // thread's runtime made.
                let loaded = runtime.block_on(async {
                    let load = || store.load(&id, NOW);
                    tokio::join!(load(), load(), load(), load())
                });
                for loaded in [loaded.0, loaded.1, loaded.2, loaded.3] {
                    assert!(matches!(loaded, Ok(Some(_))), "{loaded:?}");
                }
                connected.wait();
                // A handler that blocks its worker's thread.
                std::thread::sleep(blocked);
            })
        };
        connected.wait();
        let started = std::time::Instant::now();
        let loaded = runtime.block_on(async {
            let load = || store.load(&id, NOW);
            tokio::join!(load(), load(), load(), load())
        });
        let waited = started.elapsed();
        blocker.join().expect("the blocked thread");
        for loaded in [&loaded.0, &loaded.1, &loaded.2, &loaded.3] {
            assert!(matches!(loaded, Ok(Some(_))), "{loaded:?}");
        }
        assert!(
            waited < blocked / 2,
            "waited {waited:?} for a blocked thread"
        );
        let store = std::sync::Arc::into_inner(store).expect("the only handle");
        runtime.block_on(drop_schema(store, &schema));
    }

    /// Certificate files the URL names must be readable when the store is
    /// made; a missing one is named. `sslmode=require` with a root
    /// certificate verifies the server, as libpq does.
    #[test]
    fn tls_files_are_checked_up_front() {
        let dir = std::env::temp_dir().join(format!("tessera-pg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let ca = dir.join("my ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").expect("a file");
        let encoded = ca.display().to_string().replace(' ', "%20");
        let found = tls_files(&format!(
            "postgres://u@h/db?sslmode=require&ssl-root-cert={encoded}&sslkey=-----BEGIN%20KEY"
        ));
        assert_eq!(
            found,
            [TlsFile {
                parameter: "sslrootcert",
                source: "PostgreSQL URL's sslrootcert".to_owned(),
                path: ca.display().to_string(),
            }]
        );
        // An inline key is never taken for a path, and so never shown.
        assert!(tls_files("postgres://u@h/db?sslkey=%0A-----BEGIN%20PRIVATE%20KEY").is_empty());
        if cfg!(feature = "tls") {
            let store = PostgresStore::new(&format!(
                "postgres://u@h/db?sslmode=require&sslrootcert={encoded}"
            ))
            .expect("a readable root certificate");
            assert!(matches!(
                store.shared.options.get_ssl_mode(),
                PgSslMode::VerifyCa
            ));
            let store = PostgresStore::new("postgres://u@h/db?sslmode=require").expect("valid");
            assert!(matches!(
                store.shared.options.get_ssl_mode(),
                PgSslMode::Require
            ));
        }
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello").expect("a file");
        for parameter in ["sslrootcert", "sslcert", "sslkey"] {
            for (bad, says) in [
                (dir.join("missing.pem"), "cannot be read"),
                (dir.clone(), "cannot be read"),
                (not_pem.clone(), "holds no PEM"),
            ] {
                let bad = bad.display().to_string();
                match PostgresStore::new(&format!(
                    "postgres://u:hunter2@h/db?sslmode=prefer&{parameter}={bad}"
                )) {
                    // Without the `tls` feature `prefer` never tries TLS,
                    // so its files are never read.
                    Ok(_) if !cfg!(feature = "tls") => {}
                    Err(StoreError::Config(message)) if cfg!(feature = "tls") => {
                        assert!(message.text().contains(parameter), "{message}");
                        assert!(message.text().contains(&bad), "{message}");
                        assert!(message.text().contains(says), "{message}");
                        assert!(!message.text().contains("hunter2"), "{message}");
                    }
                    other => panic!("{parameter}: {other:?}"),
                }
            }
            // Without TLS, as libpq, the files are not used, nor checked.
            let missing = dir.join("missing.pem").display().to_string();
            PostgresStore::new(&format!(
                "postgres://u@h/db?sslmode=disable&{parameter}={missing}"
            ))
            .expect("not checked without TLS");
        }
        std::fs::remove_dir_all(&dir).ok();
        // Decoded as sqlx decodes a query: `+` a blank, `%XX` a byte, a bad
        // escape as it is.
        let odd = tls_files("postgres://u@h/db?sslcert=a+b%2Fc%zz%4");
        assert_eq!(odd[0].path, "a b/c%zz%4");
    }

    /// An sslmode that insists on TLS needs the `tls` feature; the default
    /// (`prefer`) and `disable` do not.
    #[test]
    fn tls_sslmodes_need_the_tls_feature() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let url = format!("postgres://u:hunter2@db.example/app?sslmode={mode}");
            match (PostgresStore::new(&url), cfg!(feature = "tls")) {
                (Ok(_), true) => {}
                (Err(StoreError::Config(message)), false) => {
                    assert!(message.text().contains("`tls` feature"), "{message}");
                    assert!(!message.text().contains("hunter2"), "{message}");
                }
                (other, _) => panic!("{url}: {other:?}"),
            }
        }
        for url in [
            "postgres://u@db.example/app",
            "postgres://u@db.example/app?sslmode=disable",
            "postgres://u@db.example/app?sslmode=prefer",
        ] {
            assert!(PostgresStore::new(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn urls_and_schema_names_are_checked_and_debug_hides_the_password() {
        for bad in [
            "",
            "localhost/db",
            "redis://localhost",
            "sqlite://s.db",
            "postgres://localhost:notaport/db",
            // sqlx would log an unknown parameter with its value.
            "postgres://u@localhost/db?sslpassword=S3CRET",
            "postgres://u@localhost/db?pwd=S3CRET",
            "postgres://u@localhost/db?sslmode=disable&pasword=S3CRET",
            "postgres://u@localhost/db?password%3DS3CRET",
            "postgres://u@localhost/db?p%61sword=S3CRET",
        ] {
            match PostgresStore::new(bad) {
                Err(StoreError::Config(message)) => {
                    assert!(!message.text().contains("S3CRET"), "{message}")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        PostgresStore::new("postgres://u@localhost/db?password=S3CRET&sslmode=disable")
            .expect("password= is supported");
        for good in [
            "postgres://localhost/db?p%61ssword=S3CRET&application_name=app",
            "postgres://localhost/db?options=-c%20search_path%3Dx&options[statement_timeout]=5s",
            "postgres://localhost/db?sslmode=disable&#fragment",
        ] {
            PostgresStore::new(good).unwrap_or_else(|error| panic!("{good}: {error}"));
        }
        // sqlx alone says "invalid digit found in string" of these.
        for (url, named) in [
            ("postgres://u@localhost/db?port=abc", "its port parameter"),
            ("postgres://u@localhost/db?port=70000", "its port parameter"),
            (
                "postgres://u@localhost/db?statement-cache-capacity=many",
                "its statement-cache-capacity parameter",
            ),
        ] {
            match PostgresStore::new(url) {
                Err(StoreError::Config(message)) => {
                    assert!(message.text().contains(named), "{url}: {message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        PostgresStore::new("postgres://u@localhost/db?port=6543").expect("a port");
        match PostgresStore::new("postgres://u@localhost/db?pwd=S3CRET") {
            Err(StoreError::Config(message)) => {
                assert!(
                    message.text().contains("\"pwd\" is not one it takes"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        let store =
            PostgresStore::new("postgres://app:s3cret@db.example:6543/sessions").expect("a URL");
        assert_eq!(store.schema(), None);
        let shown = format!("{store:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.example:6543/sessions"), "{shown}");
        assert!(PostgresStore::new("postgresql://localhost/db").is_ok());

        for good in ["s", "_x", "tessera_1", &"a".repeat(63)] {
            let store = PostgresStore::new("postgres://localhost/db")
                .expect("url")
                .with_schema(good)
                .expect(good);
            assert_eq!(store.schema(), Some(good));
        }
        for bad in [
            "",
            "1abc",
            "Upper",
            "with space",
            "semi;colon",
            "quote\"",
            "dash-ed",
            "pg_sessions",
            "pg_catalog",
            &"a".repeat(64),
        ] {
            let result = PostgresStore::new("postgres://localhost/db")
                .expect("url")
                .with_schema(bad);
            assert!(matches!(result, Err(StoreError::Config(_))), "{bad:?}");
        }
    }

    /// A user id too long for PostgreSQL's index of them is refused as
    /// unstorable (a 500), not as the store out of reach (a 503 that the
    /// visitor's retries met every time).
    #[tokio::test]
    async fn a_user_id_too_long_for_the_index_is_refused_as_unstorable() {
        let (store, _schema) = fresh_store("long_user");
        // Random, so that PostgreSQL cannot compress it under the limit.
        let long: String = (0..200)
            .map(|_| SessionId::generate().as_str().to_owned())
            .collect();
        let record = record(Map::new(), Some(&long), NOW + 3600);
        let created = store.create(&SessionId::generate(), &record).await;
        assert!(
            matches!(created, Err(StoreError::Unrepresentable(_))),
            "{created:?}"
        );
        store.close().await;
    }

    /// A role that may not use the schema holding the tables (no `USAGE`)
    /// is told so: PostgreSQL leaves the schema out of the search path
    /// silently, and the store said "no tessera session tables" (opening
    /// an existing store) or "no schema has been selected to create in".
    #[tokio::test]
    async fn a_role_without_usage_on_the_schema_is_told_so() {
        let (owner, schema) = fresh_store("usage");
        owner.connect().await.expect("the owner creates the tables");
        let role = fresh_name("role");
        let mut admin = inspect(&schema).await;
        sqlx::raw_sql(&format!("CREATE ROLE {role} LOGIN"))
            .execute(&mut admin)
            .await
            .expect("a role");
        let url = server_url().replacen("://tessera@", &format!("://{role}@"), 1);
        assert_ne!(url, server_url(), "the test URL names the user tessera");
        for existing_only in [false, true] {
            let store = PostgresStore::new(&url)
                .expect("url")
                .with_schema(&schema)
                .expect("schema");
            let failure = if existing_only {
                store.open_existing().await.err()
            } else {
                store.connect().await.err()
            };
            let message = failure.expect("refused").to_string();
            assert!(
                message.contains(&format!("GRANT USAGE ON SCHEMA {schema}")),
                "{message}"
            );
        }

        // A name that needs quoting is quoted, so that the statement works
        // as pasted.
        let mixed = format!("M{}", fresh_name("mixed"));
        sqlx::raw_sql(&format!("CREATE SCHEMA \"{mixed}\""))
            .execute(&mut admin)
            .await
            .expect("a schema");
        let in_mixed = |url: &str| format!("{url}&options=-c%20search_path%3D%22{mixed}%22");
        let mixed_owner = PostgresStore::new(&in_mixed(&server_url())).expect("url");
        mixed_owner
            .connect()
            .await
            .expect("the owner creates the tables");
        mixed_owner.close().await;
        let refused = PostgresStore::new(&in_mixed(&url))
            .expect("url")
            .connect()
            .await
            .expect_err("refused");
        assert!(
            refused
                .to_string()
                .contains(&format!("GRANT USAGE ON SCHEMA \"{mixed}\"")),
            "{refused}"
        );

        // With a schema of its own after that one in the search path, the
        // role's store creates its tables there, as it did before the hint:
        // the tables in the first are another application's, say.
        let own = fresh_name("own");
        sqlx::raw_sql(&format!("CREATE SCHEMA {own} AUTHORIZATION {role}"))
            .execute(&mut admin)
            .await
            .expect("the role's schema");
        let store = PostgresStore::new(&format!(
            "{url}&options=-c%20search_path%3D{schema}%2C{own}"
        ))
        .expect("url");
        store
            .connect()
            .await
            .expect("tables made in its own schema");
        store.close().await;
        let made: bool = sqlx::query_scalar(&format!(
            "SELECT to_regclass('{own}.tessera_sessions') IS NOT NULL"
        ))
        .fetch_one(&mut admin)
        .await
        .expect("to_regclass");
        assert!(made);

        sqlx::raw_sql(&format!(
            "DROP SCHEMA \"{mixed}\" CASCADE; DROP SCHEMA {own} CASCADE; DROP ROLE {role}"
        ))
        .execute(&mut admin)
        .await
        .expect("drop the schemas and the role");
        admin.close().await.expect("close");
        drop_schema(owner, &schema).await;
    }

    /// A search path naming no schema that exists (a typo, or a schema not
    /// created yet) is said as such, by the application and the CLI alike,
    /// rather than as PostgreSQL's "no schema has been selected to create
    /// in" or as an empty store; nothing is created.
    #[tokio::test]
    async fn a_search_path_of_no_schema_is_said_as_such() {
        let missing = fresh_name("missing");
        let url = format!("{}&options=-c%20search_path%3D{missing}", server_url());
        for existing_only in [false, true] {
            let store = PostgresStore::new(&url).expect("url");
            let refused = if existing_only {
                store.open_existing().await.err()
            } else {
                let refused = store.connect().await.err();
                store.close().await;
                refused
            };
            let message = refused.expect("refused").to_string();
            assert!(
                message.contains(&format!("search_path ({missing})"))
                    && message.contains("CREATE SCHEMA"),
                "{message}"
            );
        }
        let mut admin = sqlx::PgConnection::connect(&server_url())
            .await
            .expect("connect");
        let created: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)")
                .bind(&missing)
                .fetch_one(&mut admin)
                .await
                .expect("pg_namespace");
        assert!(!created);
        admin.close().await.expect("close");
    }

    /// URLs the driver would take but cannot serve as asked are refused,
    /// saying why: libpq's list of hosts to fail over along (sqlx looked
    /// the whole list up as one name, and every request failed), and a
    /// statement cache of 0 (a plan left on the server for every query).
    /// A socket directory is named as the server in messages.
    #[test]
    fn urls_the_driver_cannot_serve_are_refused() {
        for (url, why) in [
            ("postgres://u@10.0.0.1,10.0.0.2/db", "several hosts"),
            ("postgres://u@primary:5432,standby:5432/db", "several hosts"),
            (
                "postgres:///db?host=primary,standby&user=u",
                "several hosts",
            ),
            (
                "postgres://u@db/app?statement-cache-capacity=0",
                "statement-cache-capacity=0",
            ),
            (
                "postgres://u@db/app?statement-cache-capacity=00",
                "statement-cache-capacity=0",
            ),
        ] {
            match PostgresStore::new(url) {
                Err(StoreError::Config(message)) => {
                    assert!(message.text().contains(why), "{url}: {message}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        PostgresStore::new("postgres://u@db/app?statement-cache-capacity=10")
            .expect("a cache of 10");
        let store = PostgresStore::new("postgres:///app?host=/run/postgresql&port=5433&user=u")
            .expect("a socket");
        assert!(
            format!("{store:?}").contains("/run/postgresql:5433/app"),
            "{store:?}"
        );
    }

    /// Concurrent writes to one session: 24 tasks, each an increment, an
    /// append and an update; the errors met.
    async fn concurrent_writes(
        store: &std::sync::Arc<PostgresStore>,
        id: &SessionId,
        round: &str,
    ) -> Vec<StoreError> {
        let writes: Vec<_> = (0..24)
            .map(|n| {
                let (store, id) = (std::sync::Arc::clone(store), id.clone());
                let (key, list) = (format!("n {round}"), format!("l {round}"));
                tokio::spawn(async move {
                    let counted = store.increment(&id, &key, 1, NOW).await.map(drop);
                    let appended = store.append(&id, &list, &Value::from(n), NOW).await;
                    let mut changes = Changes::default();
                    changes.set.insert(format!("k{n}"), Value::from(n));
                    let updated = store.update(&id, &changes, NOW).await.map(drop);
                    counted.and(appended.map(drop)).and(updated)
                })
            })
            .collect();
        let mut errors = Vec::new();
        for write in writes {
            if let Err(error) = write.await.expect("task") {
                errors.push(error);
            }
        }
        errors
    }

    /// The store's statements are written for READ COMMITTED: on a
    /// database whose default isolation is SERIALIZABLE (or REPEATABLE
    /// READ), concurrent writes to one session failed with "could not
    /// serialize access due to concurrent update", answered 503. Such a
    /// default is seen when the store opens; set later, at the first
    /// serialization failure. (Only then are connections set, each with a
    /// statement: behind PgBouncer with a small pool, a statement at every
    /// connect waited in its queue until the connection was given up.)
    #[tokio::test]
    async fn a_stricter_default_isolation_does_not_fail_concurrent_writes() {
        let _alone = setting_refusals_alone().await;
        for isolation in ["serializable", "repeatable read"] {
            PIN_READ_COMMITTED.store(false, Ordering::Relaxed);
            let (database, mut admin, store) = own_database("iso").await;
            sqlx::raw_sql(&format!(
                "ALTER DATABASE {database} SET default_transaction_isolation = '{isolation}'"
            ))
            .execute(&mut admin)
            .await
            .expect("isolation");
            let store = std::sync::Arc::new(store.with_max_connections(4));
            let id = SessionId::generate();
            assert!(store
                .create(&id, &record(Map::new(), None, NOW + 3600))
                .await
                .expect("create"));
            let errors = concurrent_writes(&store, &id, isolation).await;
            assert!(errors.is_empty(), "{isolation}: {errors:?}");
            let loaded = store.load(&id, NOW).await.expect("load").expect("live");
            let key = format!("n {isolation}");
            assert_eq!(loaded.data.get(&key), Some(&Value::from(24)), "{isolation}");
            match loaded.data.get(&format!("l {isolation}")) {
                Some(Value::List(items)) => assert_eq!(items.len(), 24, "{isolation}"),
                other => panic!("{isolation}: {other:?}"),
            }
            store.close().await;
            drop_database(admin, &database).await;
        }

        // Made stricter while the store runs: the writes that meet a
        // serialization failure fail; those after it do not.
        PIN_READ_COMMITTED.store(false, Ordering::Relaxed);
        let (database, mut admin, store) = own_database("isolater").await;
        let store = std::sync::Arc::new(store.with_max_connections(4));
        let id = SessionId::generate();
        assert!(store
            .create(&id, &record(Map::new(), None, NOW + 3600))
            .await
            .expect("create"));
        assert!(!PIN_READ_COMMITTED.load(Ordering::Relaxed));
        sqlx::raw_sql(&format!(
            "ALTER DATABASE {database} SET default_transaction_isolation = 'serializable'"
        ))
        .execute(&mut admin)
        .await
        .expect("isolation");
        reconnect_all_but(&mut admin, &database, None).await;
        let mut round = 0;
        while !PIN_READ_COMMITTED.load(Ordering::Relaxed) {
            round += 1;
            assert!(round <= 20, "no serialization failure in 20 rounds");
            let errors = concurrent_writes(&store, &id, &format!("before {round}")).await;
            assert!(
                errors
                    .iter()
                    .all(|error| error.to_string().contains("could not serialize")),
                "{errors:?}"
            );
        }
        tokio::time::sleep(SETTING_REFUSAL_INTERVAL).await;
        let errors = concurrent_writes(&store, &id, "after").await;
        assert!(errors.is_empty(), "{errors:?}");
        store.close().await;
        drop_database(admin, &database).await;
    }

    /// Runs a test that has statements refused for a connection's settings
    /// alone among those that do: such refusals are noted for the whole
    /// process, at most once a second. Starts once a refusal may be noted.
    async fn setting_refusals_alone() -> tokio::sync::MutexGuard<'static, ()> {
        static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let guard = ALONE.lock().await;
        tokio::time::sleep(SETTING_REFUSAL_INTERVAL).await;
        guard
    }

    /// How many connections were ever opened to `database`.
    async fn sessions_opened(admin: &mut PgConnection, database: &str) -> i64 {
        // Backends report when they end: let those just closed end.
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query_scalar("SELECT sessions FROM pg_stat_database WHERE datname = $1")
            .bind(database)
            .fetch_one(admin)
            .await
            .expect("pg_stat_database")
    }

    /// While the database stays read-only (an application pointed at a
    /// standby), refused writes replace the connections at most once a
    /// second: each refusal had every connection replaced, so that each
    /// request opened a connection of its own.
    #[tokio::test]
    async fn a_read_only_database_does_not_have_each_request_reconnect() {
        let _alone = setting_refusals_alone().await;
        let (database, mut admin, store) = own_database("churn").await;
        let fresh = record(Map::new(), None, NOW + 10);
        assert!(store
            .create(&SessionId::generate(), &fresh)
            .await
            .expect("create"));
        sqlx::raw_sql(&format!(
            "ALTER DATABASE {database} SET default_transaction_read_only = on"
        ))
        .execute(&mut admin)
        .await
        .expect("read-only");
        reconnect_all_but(&mut admin, &database, None).await;
        let before = sessions_opened(&mut admin, &database).await;
        const WRITES: i64 = 60;
        let started = std::time::Instant::now();
        for _ in 0..WRITES {
            let refused = store.create(&SessionId::generate(), &fresh).await;
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|error| error.to_string().contains("read-only")),
                "{refused:?}"
            );
        }
        let seconds = i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX);
        store.close().await;
        let opened = sessions_opened(&mut admin, &database).await - before;
        // Two connections at most, replaced at most once a second.
        assert!(
            opened <= 2 * (seconds + 2),
            "{opened} connections opened for {WRITES} refused writes in {seconds} s"
        );
        drop_database(admin, &database).await;
    }

    /// A schema named by a reserved word (`order`, `user`) is created and
    /// used like any other (it was refused by a syntax error, every
    /// request answering 503).
    #[tokio::test]
    async fn a_schema_named_by_a_reserved_word_works() {
        let schema = "order";
        let store = store_in(schema);
        let id = SessionId::generate();
        assert!(store
            .create(&id, &record(Map::new(), Some("alice"), NOW + 10))
            .await
            .expect("create"));
        assert!(store.load(&id, NOW).await.expect("load").is_some());
        let mut conn = inspect(schema).await;
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'order'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("the tables");
        assert_eq!(tables, 3);
        conn.close().await.expect("close");
        drop_schema(store, schema).await;
    }

    #[tokio::test]
    async fn the_schema_is_created_on_first_use_and_versioned() {
        let (store, schema) = fresh_store("create");
        assert!(format!("{store:?}").contains("ready: false"));
        assert_eq!(
            store.load(&SessionId::generate(), NOW).await.expect("load"),
            None
        );
        assert!(format!("{store:?}").contains("ready: true"));

        let mut conn = inspect(&schema).await;
        let versions: Vec<i32> =
            sqlx::query_scalar("SELECT version FROM tessera_schema_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .expect("versions");
        assert_eq!(versions, [1]);
        assert_eq!(PostgresStore::SCHEMA_VERSION, 1);
        let objects: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::TEXT FROM pg_class AS c
             JOIN pg_namespace AS n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 ORDER BY c.relname",
        )
        .bind(&schema)
        .fetch_all(&mut conn)
        .await
        .expect("objects");
        assert_eq!(
            objects,
            [
                "tessera_schema_migrations",
                "tessera_schema_migrations_pkey",
                "tessera_session_values",
                "tessera_session_values_pkey",
                "tessera_sessions",
                "tessera_sessions_absolute_expires_at",
                "tessera_sessions_expires_at",
                "tessera_sessions_pkey",
                "tessera_sessions_user_id",
            ]
        );

        // A second store on the schema (another instance) finds it current
        // and shares the data.
        let id = SessionId::generate();
        assert!(store
            .create(&id, &record(Map::new(), None, NOW + 10))
            .await
            .expect("create"));
        let second = store_in(&schema);
        second.connect().await.expect("connect");
        assert!(second.load(&id, NOW).await.expect("load").is_some());
        second.close().await;

        // A newer schema is refused, and the refusal is not remembered.
        sqlx::query("INSERT INTO tessera_schema_migrations (version) VALUES (99)")
            .execute(&mut conn)
            .await
            .expect("a newer version");
        let third = store_in(&schema);
        let error = third.connect().await.expect_err("refused");
        assert!(
            matches!(&error, StoreError::Config(message) if message.text().contains("99")),
            "{error}"
        );
        // The CLI opens existing stores only: told the same.
        let error = store_in(&schema)
            .open_existing()
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, StoreError::Config(message)
                if message.text().contains("version 99") && message.text().contains("upgrade tessera")),
            "{error}"
        );
        sqlx::query("DELETE FROM tessera_schema_migrations WHERE version = 99")
            .execute(&mut conn)
            .await
            .expect("back to the current version");
        third.connect().await.expect("accepted now");
        third.close().await;
        conn.close().await.expect("close");
        drop_schema(store, &schema).await;
    }

    #[tokio::test]
    async fn tables_dropped_while_running_are_made_again() {
        let (store, schema) = fresh_store("dropped");
        let id = SessionId::generate();
        assert!(store
            .create(
                &id,
                &record(one("n", Value::from(1)), Some("alice"), NOW + 100)
            )
            .await
            .expect("create"));
        let mut conn = inspect(&schema).await;
        sqlx::raw_sql("DROP TABLE tessera_session_values, tessera_sessions")
            .execute(&mut conn)
            .await
            .expect("drop");

        // An administration tool says what happened, and changes nothing.
        let tool = store_in(&schema)
            .open_existing()
            .await
            .expect_err("the tables are gone");
        assert!(matches!(tool, StoreError::Config(_)), "{tool:?}");
        assert!(tool.to_string().contains("are gone"), "{tool}");

        // The first operation to meet the missing table fails; the next ones
        // find the schema made again, empty, as on first use.
        let first = store.load(&id, NOW).await;
        assert!(
            matches!(first, Err(StoreError::Unavailable(_))),
            "{first:?}"
        );
        assert_eq!(store.load(&id, NOW).await.expect("load"), None);
        let again = SessionId::generate();
        assert!(store
            .create(
                &again,
                &record(one("n", Value::from(2)), Some("alice"), NOW + 100)
            )
            .await
            .expect("create"));
        assert_eq!(
            store
                .list(Some("alice"), None, 10, NOW)
                .await
                .expect("list")
                .len(),
            1
        );
        let versions: Vec<i32> =
            sqlx::query_scalar("SELECT version FROM tessera_schema_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .expect("versions");
        assert_eq!(versions, [1]);

        // One table of two is no state this library leaves: said, not guessed at.
        sqlx::raw_sql("DROP TABLE tessera_session_values")
            .execute(&mut conn)
            .await
            .expect("drop");
        let _ = store.load(&again, NOW).await;
        let refused = store.load(&again, NOW).await.expect_err("incomplete");
        assert!(matches!(refused, StoreError::Config(_)), "{refused:?}");
        assert!(
            refused
                .to_string()
                .contains("tessera_session_values is missing"),
            "{refused}"
        );
        // And so is a version table dropped alone.
        sqlx::raw_sql("DROP TABLE tessera_sessions, tessera_schema_migrations")
            .execute(&mut conn)
            .await
            .expect("drop");
        sqlx::raw_sql(MIGRATIONS[0])
            .execute(&mut conn)
            .await
            .expect("tables");
        let refused = store_in(&schema)
            .connect()
            .await
            .expect_err("no version table");
        assert!(
            refused
                .to_string()
                .contains("tessera_schema_migrations is missing"),
            "{refused}"
        );
        conn.close().await.expect("close");
        drop_schema(store, &schema).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn instances_starting_together_migrate_once() {
        let schema = fresh_name("race");
        let stores: Vec<_> = (0..8)
            .map(|_| store_in(&schema).with_max_connections(2))
            .map(std::sync::Arc::new)
            .collect();
        let tasks: Vec<_> = stores
            .iter()
            .map(|store| {
                let store = std::sync::Arc::clone(store);
                tokio::spawn(async move { store.connect().await })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("every instance connects");
        }
        let mut conn = inspect(&schema).await;
        let versions: Vec<i32> =
            sqlx::query_scalar("SELECT version FROM tessera_schema_migrations")
                .fetch_all(&mut conn)
                .await
                .expect("versions");
        assert_eq!(versions, [1]);
        conn.close().await.expect("close");
        for store in &stores {
            store.close().await;
        }
        let store = PostgresStore::new(&server_url()).expect("url");
        drop_schema(store, &schema).await;
    }

    #[tokio::test]
    async fn a_nul_in_a_key_or_user_is_unrepresentable_not_an_outage() {
        let (store, schema) = fresh_store("nul");
        fn unrepresentable<T>(result: Result<T, StoreError>) -> bool {
            matches!(result, Err(StoreError::Unrepresentable(_)))
        }
        let id = SessionId::generate();
        assert!(unrepresentable(
            store
                .create(&id, &record(one("a\0b", Value::from(1)), None, NOW + 100))
                .await
        ));
        assert!(unrepresentable(
            store
                .create(&id, &record(Map::new(), Some("al\0ice"), NOW + 100))
                .await
        ));
        assert!(store
            .create(&id, &record(one("n", Value::from("a\0b")), None, NOW + 100))
            .await
            .expect("a NUL in a value is fine"));
        let set = Changes {
            set: one("a\0b", Value::from(1)),
            ..Changes::default()
        };
        assert!(unrepresentable(store.update(&id, &set, NOW).await));
        let removed = Changes {
            removed: vec!["a\0b".to_owned()],
            ..Changes::default()
        };
        assert!(store
            .update(&id, &removed, NOW)
            .await
            .expect("nothing to remove"));
        assert!(unrepresentable(
            store.increment(&id, "a\0b", 1, NOW).await.map(|_| ())
        ));
        assert!(unrepresentable(
            store
                .append(&id, "a\0b", &Value::from(1), NOW)
                .await
                .map(|_| ())
        ));
        assert!(store
            .list(Some("al\0ice"), None, 10, NOW)
            .await
            .expect("list")
            .is_empty());
        assert_eq!(store.delete_user("al\0ice").await.expect("delete"), 0);
        let loaded = store.load(&id, NOW).await.expect("load").expect("live");
        assert_eq!(loaded.data.get("n"), Some(&Value::from("a\0b")));
        drop_schema(store, &schema).await;
    }

    /// Opening the store (checking, and if need be making, its tables) is
    /// bounded by the operation timeout too: a server that stalls once the
    /// connection is open held `connect` and every CLI command for good.
    /// Here another instance's migration holds the migration lock.
    #[tokio::test]
    async fn opening_the_store_stalled_on_a_lock_fails_within_the_operation_timeout() {
        let (store, schema) = fresh_store("open_stall");
        let store = store.with_operation_timeout(Duration::from_millis(400));
        let mut holder = inspect(&schema).await;
        sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
            .bind(MIGRATION_LOCK)
            .bind(&schema)
            .execute(&mut holder)
            .await
            .expect("the migration lock");
        let started = std::time::Instant::now();
        let opened = tokio::time::timeout(
            Duration::from_secs(10),
            store.load(&SessionId::generate(), NOW),
        )
        .await
        .expect("not held for as long as the lock");
        assert!(
            matches!(&opened, Err(StoreError::Unavailable(_))),
            "{opened:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        drop(holder);
        // Once the lock goes, the store opens.
        assert!(store
            .load(&SessionId::generate(), NOW)
            .await
            .expect("opened")
            .is_none());
        drop_schema(store, &schema).await;
    }

    #[tokio::test]
    async fn a_lock_held_elsewhere_costs_a_503_instead_of_holding_the_request() {
        let (store, schema) = fresh_store("stall");
        let store = store.with_operation_timeout(Duration::from_millis(400));
        let id = SessionId::generate();
        assert!(store
            .create(&id, &record(one("n", Value::from(1)), None, NOW + 100))
            .await
            .expect("create"));
        let mut holder = inspect(&schema).await;
        sqlx::raw_sql("BEGIN; LOCK TABLE tessera_sessions IN ACCESS EXCLUSIVE MODE")
            .execute(&mut holder)
            .await
            .expect("lock");

        let started = std::time::Instant::now();
        let stalled = [
            store.load(&id, NOW).await.map(|_| ()),
            store.increment(&id, "n", 1, NOW).await.map(|_| ()),
            store
                .append(&id, "l", &Value::from(1), NOW)
                .await
                .map(|_| ()),
            // Listings and sweeps too (`tessera sessions` waited for as
            // long as the lock was held).
            store.list(None, None, 10, NOW).await.map(|_| ()),
            store.list(Some("alice"), None, 10, NOW).await.map(|_| ()),
            store.delete_user("alice").await.map(|_| ()),
            store.purge_expired(NOW, 10).await.map(|_| ()),
        ];
        for outcome in stalled {
            let error = outcome.expect_err("the table is locked");
            assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
            assert!(
                error.to_string().contains("did not complete the operation"),
                "{error}"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );

        sqlx::raw_sql("ROLLBACK")
            .execute(&mut holder)
            .await
            .expect("release");
        // Served again at once. The increment cut short was already sent, so
        // it may have landed once the lock was gone, as after a lost reply.
        let counted = store
            .increment(&id, "n", 1, NOW)
            .await
            .expect("increment")
            .expect("live");
        assert!(counted == 2 || counted == 3, "{counted}");
        holder.close().await.expect("close");
        drop_schema(store, &schema).await;
    }

    /// sqlx names the place in its source at every level that wraps a
    /// protocol error; none of them is left, and nothing else is taken.
    #[test]
    fn sqlx_source_places_are_taken_out_of_protocol_errors() {
        assert_eq!(
            without_source_places(
                "Postgres protocol error (reading Authentication): unknown authentication \
                 method: 7 (sqlx_postgres::message::authentication:84) \
                 (sqlx_postgres::message:137)"
            ),
            "Postgres protocol error (reading Authentication): unknown authentication method: 7"
        );
        assert_eq!(
            without_source_places(
                "unexpected response from SSLRequest: 0x48 (sqlx_postgres::connection::tls:95)"
            ),
            "unexpected response from SSLRequest: 0x48"
        );
        for kept in ["a (sqlx_ not a place)", "odd (sqlx_x:1a)", "open (sqlx_x:1"] {
            assert_eq!(without_source_places(kept), kept);
        }
    }

    /// An HTTP server (or anything else) at the URL's address answers
    /// PostgreSQL's first message with bytes sqlx reports as a protocol
    /// error that names a line of its source, or as a message longer than
    /// what came: the error says the answer is not PostgreSQL's instead. A
    /// server that closes the connection unanswered (a proxy whose backend
    /// is down) is not called another protocol.
    #[tokio::test]
    async fn a_server_that_is_not_postgres_is_named_as_such() {
        let serve = crate::store::foreign_server;
        let http = serve(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        let silent = serve(b"");
        // What PostgreSQL's postmaster sends when it cannot fork a backend.
        let forkless =
            serve(b"Ecould not fork new process for connection: Cannot allocate memory\n\0");
        for (port, foreign) in [(http, true), (silent, false), (forkless, false)] {
            for mode in ["prefer", "disable"] {
                let store = PostgresStore::new(&format!(
                    "postgres://tessera@127.0.0.1:{port}/tessera?sslmode={mode}"
                ))
                .expect("url")
                .with_acquire_timeout(Duration::from_secs(5));
                let error = store
                    .load(&SessionId::generate(), NOW)
                    .await
                    .expect_err("no PostgreSQL there");
                assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
                let message = error.to_string();
                assert_eq!(
                    message.contains("does not follow PostgreSQL's protocol"),
                    foreign,
                    "{mode}: {message}"
                );
                assert_eq!(
                    message.contains("cannot start a process for the connection"),
                    port == forkless,
                    "{mode}: {message}"
                );
                assert!(
                    message.contains(&format!("127.0.0.1:{port}/tessera"))
                        && !message.contains("sqlx_postgres::"),
                    "{mode}: {message}"
                );
            }
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_until_it_is_there() {
        // A port nobody listens on: connections are refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let store = PostgresStore::new(&format!("postgres://tessera@127.0.0.1:{port}/tessera"))
            .expect("url")
            .with_acquire_timeout(Duration::from_millis(300));
        let error = store
            .load(&SessionId::generate(), NOW)
            .await
            .expect_err("nobody there");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .contains(&format!("127.0.0.1:{port}/tessera")),
            "the message names the server: {error}"
        );
        assert!(
            error.to_string().contains("refused connections"),
            "the message says what to check, not only that time ran out: {error}"
        );
        // Requests arriving together fail together, after one timeout, not
        // one after the other.
        let store = std::sync::Arc::new(store);
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let store = std::sync::Arc::clone(&store);
                tokio::spawn(async move { store.load(&SessionId::generate(), NOW).await })
            })
            .collect();
        for task in tasks {
            assert!(matches!(
                task.await.expect("task"),
                Err(StoreError::Unavailable(_))
            ));
        }
        assert!(
            started.elapsed() < Duration::from_millis(2000),
            "{:?}",
            started.elapsed()
        );

        // A database that does not exist yet: refused at once, and the store
        // works as soon as it does.
        let database = fresh_name("db");
        let mut admin = PgConnection::connect(&server_url()).await.expect("connect");
        let options = PgConnectOptions::from_str(&server_url())
            .expect("url")
            .database(&database);
        let mut store = PostgresStore::new(&server_url()).expect("url");
        store.shared_mut().options = options;
        let error = store
            .load(&SessionId::generate(), NOW)
            .await
            .expect_err("no such database");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        sqlx::raw_sql(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .expect("create the database");
        let id = SessionId::generate();
        assert!(store
            .create(&id, &record(Map::new(), None, NOW + 10))
            .await
            .expect("the next operation connects"));
        store.close().await;
        drop_database(admin, &database).await;
    }

    /// Drops a database a test made, and closes the test's connection.
    async fn drop_database(mut admin: PgConnection, database: &str) {
        sqlx::raw_sql(&format!("DROP DATABASE {database} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .expect("drop the database");
        admin.close().await.expect("close");
    }

    /// Connections opened while the database was read-only stay read-only;
    /// once a write is refused for it, they are replaced, so the store
    /// writes again as soon as the database does, without a restart.
    #[tokio::test]
    async fn writes_work_again_once_a_read_only_database_is_writable() {
        let _alone = setting_refusals_alone().await;
        let (database, mut admin, store) = own_database("ro").await;
        let fresh = record(Map::new(), None, NOW + 10);
        let create = || {
            let (store, fresh) = (&store, &fresh);
            async move { store.create(&SessionId::generate(), fresh).await }
        };
        assert!(create().await.expect("create"));

        sqlx::raw_sql(&format!(
            "ALTER DATABASE {database} SET default_transaction_read_only = on"
        ))
        .execute(&mut admin)
        .await
        .expect("read-only");
        // The store's connections reconnect, and get the setting.
        reconnect_all_but(&mut admin, &database, None).await;
        let mut refused = None;
        for _ in 0..5 {
            match create().await {
                Err(error) if error.to_string().contains("read-only") => {
                    refused = Some(error);
                    break;
                }
                _ => tokio::time::sleep(PING_IF_IDLE_FOR * 5).await,
            }
        }
        assert!(refused.is_some(), "a write refused while read-only");

        sqlx::raw_sql(&format!(
            "ALTER DATABASE {database} RESET default_transaction_read_only"
        ))
        .execute(&mut admin)
        .await
        .expect("writable");
        for attempt in 0..3 {
            assert!(
                create().await.expect("a write once writable again"),
                "attempt {attempt}"
            );
        }
        store.close().await;
        drop_database(admin, &database).await;
    }

    /// Likewise a short `lock_timeout` (or `statement_timeout`) given to the
    /// database: connections opened meanwhile keep it after it is undone,
    /// until a statement it cut short has them replaced.
    #[tokio::test]
    async fn lock_waits_work_again_once_a_short_lock_timeout_is_undone() {
        let _alone = setting_refusals_alone().await;
        let (database, mut admin, store) = own_database("lt").await;
        let fresh = record(Map::new(), None, NOW + 10);
        let create = || {
            let (store, fresh) = (&store, &fresh);
            async move { store.create(&SessionId::generate(), fresh).await }
        };
        assert!(create().await.expect("create"));
        let mut holder = PgConnection::connect_with(
            &PgConnectOptions::from_str(&server_url())
                .expect("url")
                .database(&database),
        )
        .await
        .expect("connect");
        let lock = "BEGIN; LOCK TABLE tessera_sessions IN SHARE MODE";

        sqlx::raw_sql(&format!(
            "ALTER DATABASE {database} SET lock_timeout = '1ms'"
        ))
        .execute(&mut admin)
        .await
        .expect("lock_timeout");
        let holder_pid = holder_pid(&mut holder).await;
        reconnect_all_but(&mut admin, &database, Some(holder_pid)).await;
        sqlx::raw_sql(lock)
            .execute(&mut holder)
            .await
            .expect("lock");
        let mut refused = None;
        for _ in 0..5 {
            match create().await {
                Err(error) if error.to_string().contains("lock timeout") => {
                    refused = Some(error);
                    break;
                }
                _ => tokio::time::sleep(PING_IF_IDLE_FOR * 5).await,
            }
        }
        assert!(refused.is_some(), "a lock wait cut short");
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut holder)
            .await
            .expect("release");

        sqlx::raw_sql(&format!("ALTER DATABASE {database} RESET lock_timeout"))
            .execute(&mut admin)
            .await
            .expect("reset");
        // Now a write waits out a lock held for a moment, as it should.
        for attempt in 0..3 {
            sqlx::raw_sql(lock)
                .execute(&mut holder)
                .await
                .expect("lock");
            let release = async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                sqlx::raw_sql("ROLLBACK")
                    .execute(&mut holder)
                    .await
                    .expect("release");
            };
            let (created, ()) = tokio::join!(create(), release);
            assert!(
                created.expect("a write once the timeout is undone"),
                "attempt {attempt}"
            );
        }
        holder.close().await.expect("close");
        store.close().await;
        drop_database(admin, &database).await;
    }

    async fn holder_pid(conn: &mut PgConnection) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(conn)
            .await
            .expect("pid")
    }

    /// A database of the test's own, an admin connection, and a store of
    /// two connections in it.
    async fn own_database(label: &str) -> (String, PgConnection, PostgresStore) {
        let database = fresh_name(label);
        let mut admin = PgConnection::connect(&server_url()).await.expect("connect");
        sqlx::raw_sql(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .expect("create the database");
        let mut store = PostgresStore::new(&server_url())
            .expect("url")
            .with_max_connections(2);
        store.shared_mut().options = PgConnectOptions::from_str(&server_url())
            .expect("url")
            .database(&database);
        (database, admin, store)
    }

    /// Ends the connections to `database` (but `spared`'s), so that the
    /// store's reconnect and get the database's settings of now.
    async fn reconnect_all_but(admin: &mut PgConnection, database: &str, spared: Option<i32>) {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid IS DISTINCT FROM $2",
        )
        .bind(database)
        .bind(spared)
        .execute(admin)
        .await
        .expect("terminate");
        tokio::time::sleep(PING_IF_IDLE_FOR * 5).await;
    }

    #[tokio::test]
    async fn connections_the_server_killed_are_replaced() {
        let (store, schema) = fresh_store("terminate");
        let application = fresh_name("app");
        let mut store = store;
        store.shared_mut().options = store.shared.options.clone().application_name(&application);
        let id = SessionId::generate();
        assert!(store
            .create(&id, &record(Map::new(), None, NOW + 10))
            .await
            .expect("create"));
        let mut admin = inspect(&schema).await;
        for round in 1..=3 {
            let killed = terminate_backends(&mut admin, &application).await;
            assert!(
                !killed.is_empty() && killed.iter().all(|ok| *ok),
                "{killed:?}"
            );
            // Give the backends a moment to go, as after a real restart.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(
                store
                    .increment(&id, "n", 1, NOW)
                    .await
                    .expect("the next operation succeeds"),
                Some(round)
            );
        }
        admin.close().await.expect("close");
        drop_schema(store, &schema).await;
    }

    /// Under load, connections are used without a ping (a round trip per
    /// operation otherwise): a restart kills them unnoticed, and the next
    /// read on each fails. Reads try again on another connection.
    #[tokio::test]
    async fn a_read_on_a_connection_killed_in_use_is_tried_again() {
        let (store, schema) = fresh_store("killed_in_use");
        let application = fresh_name("app");
        let mut store = store;
        store.shared_mut().options = store.shared.options.clone().application_name(&application);
        // As if every connection were in constant use: never pinged.
        store.shared_mut().ping_if_idle_for = Duration::from_secs(3600);
        let id = SessionId::generate();
        assert!(store
            .create(&id, &record(one("n", Value::from(1)), None, NOW + 10))
            .await
            .expect("create"));
        let mut admin = inspect(&schema).await;
        for _ in 0..3 {
            let killed = terminate_backends(&mut admin, &application).await;
            assert!(!killed.is_empty(), "a pooled connection to kill");
            tokio::time::sleep(Duration::from_millis(50)).await;
            let loaded = store.load(&id, NOW).await.expect("read again elsewhere");
            assert_eq!(loaded.expect("live").data.get("n"), Some(&Value::from(1)));
        }
        admin.close().await.expect("close");
        drop_schema(store, &schema).await;
    }

    #[tokio::test]
    async fn values_are_tagged_json_one_row_per_key_and_go_with_their_session() {
        let (store, schema) = fresh_store("rows");
        let mut data = one("t", Value::tuple([1.into(), "x".into()]));
        data.insert("n".to_owned(), Value::from(2u128.pow(64) + 5));
        let id = SessionId::generate();
        assert!(store
            .create(&id, &record(data, Some("alice"), live_by_the_clock()))
            .await
            .expect("create"));
        let mut conn = inspect(&schema).await;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, value FROM tessera_session_values WHERE session_id = $1 ORDER BY key",
        )
        .bind(id.as_str())
        .fetch_all(&mut conn)
        .await
        .expect("query");
        assert_eq!(
            rows,
            [
                ("n".to_owned(), "18446744073709551621".to_owned()),
                ("t".to_owned(), r#"{" t":[1,"x"]}"#.to_owned()),
            ]
        );

        let count = |id: SessionId| {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM tessera_session_values WHERE session_id = $1",
            )
            .bind(id.as_str().to_owned())
        };
        let new = SessionId::generate();
        assert!(store.cycle_id(&id, &new, NOW).await.expect("cycle"));
        assert_eq!(
            count(id.clone()).fetch_one(&mut conn).await.expect("count"),
            0
        );
        assert_eq!(
            count(new.clone())
                .fetch_one(&mut conn)
                .await
                .expect("count"),
            2
        );
        assert_eq!(store.delete_user("alice").await.expect("delete_user"), 1);
        assert_eq!(count(new).fetch_one(&mut conn).await.expect("count"), 0);
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tessera_session_values")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(total, 0);
        conn.close().await.expect("close");
        drop_schema(store, &schema).await;
    }

    #[tokio::test]
    async fn unreadable_values_are_reported_as_corrupt() {
        let (store, schema) = fresh_store("corrupt");
        let id = SessionId::generate();
        assert!(store
            .create(&id, &record(one("bad", 1.into()), None, NOW + 10))
            .await
            .expect("create"));
        let mut conn = inspect(&schema).await;
        sqlx::query("UPDATE tessera_session_values SET value = '{not json' WHERE key = 'bad'")
            .execute(&mut conn)
            .await
            .expect("corrupt it");
        conn.close().await.expect("close");

        let loaded = store.load(&id, NOW).await.expect_err("corrupt");
        assert!(matches!(loaded, StoreError::Corrupt(_)), "{loaded:?}");
        // The parser's error is kept, for a caller to inspect.
        let cause = std::error::Error::source(&loaded).and_then(std::error::Error::source);
        assert!(
            cause.is_some_and(|cause| cause.is::<crate::tagged::ParseError>()),
            "{loaded:?}"
        );
        assert!(matches!(
            store.increment(&id, "bad", 1, NOW).await,
            Err(StoreError::Corrupt(_))
        ));
        let repair = Changes {
            set: one("bad", 5.into()),
            ..Changes::default()
        };
        assert!(store.update(&id, &repair, NOW).await.expect("update"));
        assert_eq!(
            store
                .increment(&id, "bad", 1, NOW)
                .await
                .expect("increment"),
            Some(6)
        );
        drop_schema(store, &schema).await;
    }

    /// A session row whose columns cannot be read (a negative time, written
    /// by hand) is reported as corrupt when loaded and left out of
    /// listings, which still show the user's other sessions.
    #[tokio::test]
    async fn an_unreadable_session_row_is_left_out_of_listings() {
        let (store, schema) = fresh_store("corrupt_row");
        let mut ids: Vec<SessionId> = (0..4).map(|_| SessionId::generate()).collect();
        ids.sort();
        for id in &ids {
            assert!(store
                .create(
                    id,
                    &record(one("k", 1.into()), Some("alice"), live_by_the_clock())
                )
                .await
                .expect("create"));
        }
        let mut conn = inspect(&schema).await;
        // The first two in id order: a whole page of them at limit 2.
        for id in &ids[..2] {
            sqlx::query("UPDATE tessera_sessions SET created_at = -5 WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut conn)
                .await
                .expect("corrupt it");
        }
        conn.close().await.expect("close");

        assert!(matches!(
            store.load(&ids[0], NOW).await,
            Err(StoreError::Corrupt(_))
        ));
        for limit in [1, 2, 10] {
            let listed = store
                .list(Some("alice"), None, limit, NOW)
                .await
                .expect("a listing");
            let listed: Vec<&SessionId> = listed.iter().map(|info| &info.id).collect();
            assert_eq!(
                listed,
                ids[2..].iter().take(limit).collect::<Vec<_>>(),
                "limit {limit}"
            );
        }
        assert_eq!(store.delete_user("alice").await.expect("deleted"), 4);
        drop_schema(store, &schema).await;
    }

    #[tokio::test]
    async fn sweepers_skip_rows_another_holds_instead_of_waiting() {
        let (store, schema) = fresh_store("sweep");
        let mut dead = Vec::new();
        for _ in 0..4 {
            let id = SessionId::generate();
            assert!(store
                .create(&id, &record(one("d", 1.into()), None, NOW))
                .await
                .expect("create"));
            dead.push(id);
        }
        // Another instance's sweeper, in the middle of its batch.
        let mut other = inspect(&schema).await;
        let mut tx = other.begin().await.expect("begin");
        sqlx::query("SELECT 1 FROM tessera_sessions WHERE id = ANY ($1) FOR UPDATE")
            .bind(vec![dead[0].as_str(), dead[1].as_str()])
            .execute(&mut *tx)
            .await
            .expect("lock two");
        let purged = tokio::time::timeout(Duration::from_secs(5), store.purge_expired(NOW, 10))
            .await
            .expect("does not wait for the other sweeper")
            .expect("purge");
        assert_eq!(purged, 2);
        tx.rollback().await.expect("rollback");
        assert_eq!(store.purge_expired(NOW, 10).await.expect("purge"), 2);
        other.close().await.expect("close");
        drop_schema(store, &schema).await;
    }

    /// The plan PostgreSQL picks for `sql`, one line per step.
    async fn plan(conn: &mut PgConnection, sql: &str) -> String {
        let rows: Vec<String> = sqlx::raw_sql(&format!("EXPLAIN {sql}"))
            .fetch_all(&mut *conn)
            .await
            .expect("explain")
            .iter()
            .map(|row| row.try_get::<String, _>(0).expect("a plan line"))
            .collect();
        rows.join("\n")
    }

    #[tokio::test]
    async fn queries_are_answered_from_indexes() {
        let (store, schema) = fresh_store("plans");
        store.connect().await.expect("connect");
        let mut conn = inspect(&schema).await;
        // Tables this small are cheaper to scan; with scans off, a plan that
        // still has one has no usable index.
        sqlx::raw_sql("SET enable_seqscan = off")
            .execute(&mut conn)
            .await
            .expect("set");
        // Generic plans, as a prepared statement gets after a few runs.
        sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
            .execute(&mut conn)
            .await
            .expect("set");
        // Each query prepared with the parameter types sqlx sends, and run
        // with some arguments.
        let cases: [(&str, &str, &str, &str, &[&str]); 4] = [
            (
                "load",
                LOAD,
                "(text, bigint)",
                "('x', 1)",
                &["tessera_sessions_pkey", "tessera_session_values_pkey"],
            ),
            (
                "list_by_user",
                LIST_BY_USER,
                "(text, text, bigint, bigint)",
                "('u', '', 1, 10)",
                &["tessera_sessions_user_id"],
            ),
            (
                "list_all",
                LIST_ALL,
                "(text, bigint, bigint)",
                "('', 1, 10)",
                &["tessera_sessions_pkey"],
            ),
            (
                "purge",
                PURGE,
                "(bigint, bigint)",
                "(1, 10)",
                &[
                    "tessera_sessions_expires_at",
                    "tessera_sessions_absolute_expires_at",
                ],
            ),
        ];
        for (name, sql, types, args, wanted) in cases {
            sqlx::raw_sql(&format!("PREPARE {name} {types} AS {sql}"))
                .execute(&mut conn)
                .await
                .expect("prepare");
            let plan = plan(&mut conn, &format!("EXECUTE {name} {args}")).await;
            assert!(
                !plan.contains("Seq Scan"),
                "a table scan in {name}:\n{plan}"
            );
            for index in wanted {
                assert!(plan.contains(index), "{index} unused in {name}:\n{plan}");
            }
            if name != "purge" {
                // Ordered by the index: no sort step for the pages.
                assert!(!plan.contains("Sort"), "a sort in {name}:\n{plan}");
            }
        }
        // An update that removes a key finds it in the primary key, rather
        // than reading every value row of the session.
        sqlx::raw_sql(&format!(
            "PREPARE update_keys (text, bigint, bigint, boolean, text, boolean, text[], text[], \
             text[], bigint) AS {UPDATE}"
        ))
        .execute(&mut conn)
        .await
        .expect("prepare");
        let plan = plan(
            &mut conn,
            "EXECUTE update_keys ('x', 1, NULL, false, NULL, false, '{k}', '{}', '{}', NULL)",
        )
        .await;
        assert!(
            plan.lines()
                .any(|line| line.contains("Index Cond") && line.contains("key = ANY")),
            "the removed keys are not looked up in the index:\n{plan}"
        );
        conn.close().await.expect("close");
        drop_schema(store, &schema).await;
    }
}
