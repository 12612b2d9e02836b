//! Server-side session storage: the one seam every backend implements.
//!
//! In server-side mode the cookie holds only a [`SessionId`]; the data lives
//! in a [`SessionStore`]. Stores merge changes **key by key**, so two requests
//! on one session that write different keys both persist, and offer atomic
//! [`increment`](SessionStore::increment) and [`append`](SessionStore::append)
//! for read-modify-write of one key (a counter, a cart).
//!
//! Times are Unix seconds. A record is live while `now < expires_at` (the
//! sliding idle expiry) and, if set, `now < absolute_expires_at` (counted from
//! creation, never extended). Stores never return a record that is not live.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use rand::RngCore as _;

use crate::map::Map;
use crate::value::Value;

mod background;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "redis", test))]
mod combine;
pub mod flask_format;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use redis::{FlaskSessionRedisStore, RedisStore};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// A session id: 32 bytes from the OS CSPRNG in URL-safe base64 without
/// padding (43 characters), the same form as Flask-Session's
/// `secrets.token_urlsafe(32)`.
///
/// Cloning one is cheap (the text is shared): a request passes its id to
/// the store, the operations queued behind another and the response.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

/// The shortest id looked up: 128 bits of URL-safe base64.
const MIN_ID_LEN: usize = 22;
/// The longest: what `secrets.token_urlsafe(192)` gives.
const MAX_ID_LEN: usize = 256;

impl SessionId {
    /// A fresh id with 256 bits of entropy.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(bytes)
                .into(),
        )
    }

    /// An id as presented by a client: URL-safe base64 carrying at least 128
    /// bits (22 to 256 characters: Flask-Session's `SESSION_ID_LENGTH` of 16
    /// to 192 bytes). Anything else is not an id.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = (MIN_ID_LEN..=MAX_ID_LEN).contains(&text.len()) && is_url_safe_token(text);
        valid.then(|| Self(Arc::from(text)))
    }

    /// Whether `text` has an id's characters but a length outside what
    /// [`parse`](Self::parse) takes: what a Flask-Session application with
    /// a `SESSION_ID_LENGTH` outside 16 to 192 hands out.
    pub(crate) fn has_unaccepted_length(text: &str) -> bool {
        !(MIN_ID_LEN..=MAX_ID_LEN).contains(&text.len())
            && !text.is_empty()
            && is_url_safe_token(text)
    }

    /// The id's text, as it appears in the cookie and the store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, non-secret label for logs and "your devices" pages: the first
    /// characters of the id's SHA-1, which do not reveal the id itself.
    pub fn fingerprint(&self) -> String {
        use sha1::Digest as _;
        let digest = sha1::Sha1::digest(self.0.as_bytes());
        crate::key::hex(&digest[..6])
    }
}

/// Whether `text` holds only URL-safe base64's characters, as ids do.
fn is_url_safe_token(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Ids are credentials: `Debug` shows only the fingerprint.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId(#{})", self.fingerprint())
    }
}

/// One stored session. `Debug` shows its keys, not their values, nor the
/// user (as [`Session`](crate::Session)'s does), so that logging a record
/// logs no one's data.
#[derive(Clone, PartialEq)]
pub struct Record {
    /// The session's contents.
    pub data: Map,
    /// The user the session belongs to, for listing and "log out everywhere".
    pub user_id: Option<String>,
    /// When the session was created.
    pub created_at: u64,
    /// When it expires unless used again (sliding): the time it was last
    /// used plus the lifetime plus one second, as the layer writes it.
    pub expires_at: u64,
    /// When it expires whatever happens: its creation plus the absolute
    /// lifetime plus one second, as the layer writes it.
    pub absolute_expires_at: Option<u64>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("has_user", &self.user_id.is_some())
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("absolute_expires_at", &self.absolute_expires_at)
            .finish()
    }
}

impl Record {
    /// Whether the record may still be used at `now`.
    pub fn is_live(&self, now: u64) -> bool {
        now < self.deadline()
    }

    /// When the record stops being live: the earlier of its two expiries.
    pub(crate) fn deadline(&self) -> u64 {
        deadline(self.expires_at, self.absolute_expires_at)
    }
}

/// When a session with these expiries stops being live: the earlier one.
pub(crate) fn deadline(expires_at: u64, absolute_expires_at: Option<u64>) -> u64 {
    absolute_expires_at.map_or(expires_at, |absolute| absolute.min(expires_at))
}

/// What a request changed, applied to the stored record key by key.
/// `Debug` shows the keys, not the values or the user, as [`Record`]'s does.
#[derive(Clone, Default, PartialEq)]
pub struct Changes {
    /// Every key was removed first (`session.clear()`).
    pub cleared: bool,
    /// Keys written, with their new values.
    pub set: Map,
    /// Keys removed.
    pub removed: Vec<String>,
    /// A new idle expiry.
    pub expires_at: Option<u64>,
    /// An absolute expiry, kept if sooner than the stored one: an absolute
    /// expiry never moves later. (Set for sessions stored before an
    /// absolute lifetime applied to them: by another writer such as
    /// Flask-Session, or under an earlier configuration.)
    pub absolute_expires_at: Option<u64>,
    /// A new owner (`Some(None)` removes it).
    pub user_id: Option<Option<String>>,
    /// An edit of the list under one key (never a key of `set` or
    /// `removed`), applied after them to the list as stored then: how a
    /// session's flash messages are saved.
    pub list_edit: Option<ListEdit>,
}

/// A change to the list under one key, applied to the list as it is stored
/// when the change is saved rather than to the list as the request read it:
/// the items the request took leave the front of the list (those still
/// there: another request may have taken some first), then the new items are
/// appended. A session's flash messages are saved this way, so that a
/// message flashed by a concurrent request is neither overwritten nor taken
/// unseen. `Debug` shows the key and the counts, not the items.
#[derive(Clone, Default, PartialEq)]
pub struct ListEdit {
    /// The key whose list is edited.
    pub key: String,
    /// The items the request took from the front of the list, in order.
    pub taken: Vec<Value>,
    /// The items to append.
    pub added: Vec<Value>,
}

impl fmt::Debug for ListEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListEdit")
            .field("key", &self.key)
            .field("taken", &self.taken.len())
            .field("added", &self.added.len())
            .finish()
    }
}

impl ListEdit {
    /// How many of the stored list's first items the request took: the
    /// longest run at its front that ends the taken items. (The list only
    /// ever loses items at its front and gains them at its end, so what is
    /// left of the taken items is a run at the front, after whatever
    /// another request took first.)
    pub fn taken_from(&self, stored: &[Value]) -> usize {
        let most = self.taken.len().min(stored.len());
        (1..=most)
            .rev()
            .find(|&count| stored[..count] == self.taken[self.taken.len() - count..])
            .unwrap_or(0)
    }

    /// The value under the key after the edit, from the one stored; `None`
    /// when no item is left (the key is removed). A value that is not a
    /// list (nor null) counts as an empty list and is replaced.
    pub fn apply(&self, stored: Option<&Value>) -> Option<Value> {
        let mut items = match stored {
            Some(Value::List(items)) => {
                let taken = self.taken_from(items);
                items[taken..].to_vec()
            }
            _ => Vec::new(),
        };
        items.extend(self.added.iter().cloned());
        (!items.is_empty()).then_some(Value::List(items))
    }
}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes")
            .field("cleared", &self.cleared)
            .field("set", &self.set.keys().collect::<Vec<_>>())
            .field("removed", &self.removed)
            .field("expires_at", &self.expires_at)
            .field("absolute_expires_at", &self.absolute_expires_at)
            .field("user_changed", &self.user_id.is_some())
            .field("list_edit", &self.list_edit)
            .finish()
    }
}

impl fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionInfo")
            .field("id", &self.id)
            .field("has_user", &self.user_id.is_some())
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("absolute_expires_at", &self.absolute_expires_at)
            .finish()
    }
}

impl Changes {
    /// Whether applying these changes would change nothing.
    pub fn is_empty(&self) -> bool {
        !self.changes_data()
            && self.expires_at.is_none()
            && self.absolute_expires_at.is_none()
            && self.user_id.is_none()
    }

    /// Whether the session's keys change (not only its expiry or owner).
    pub(crate) fn changes_data(&self) -> bool {
        self.cleared || !self.set.is_empty() || !self.removed.is_empty() || self.list_edit.is_some()
    }

    /// Applies the changes to a record in memory (the reference semantics
    /// every store reproduces).
    pub fn apply_to(&self, record: &mut Record) {
        if self.cleared {
            record.data.clear();
        }
        for key in &self.removed {
            record.data.remove(key);
        }
        record.data.extend(
            self.set
                .iter()
                .map(|(key, value)| (key.to_owned(), value.clone())),
        );
        if let Some(edit) = &self.list_edit {
            match edit.apply(record.data.get(&edit.key)) {
                Some(list) => record.data.insert(edit.key.clone(), list),
                None => record.data.remove(&edit.key),
            };
        }
        if let Some(expires_at) = self.expires_at {
            record.expires_at = expires_at;
        }
        if let Some(cap) = self.absolute_expires_at {
            record.absolute_expires_at =
                Some(record.absolute_expires_at.map_or(cap, |at| at.min(cap)));
        }
        if let Some(user_id) = &self.user_id {
            record.user_id.clone_from(user_id);
        }
    }
}

/// What [`SessionStore::update_or_delete_if_empty`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// There was no live record: nothing was applied.
    Vanished,
    /// Applied; the session still holds data or belongs to a user.
    Updated,
    /// Applied, and the session, left with no data and no owner, was
    /// deleted.
    Deleted,
}

/// Whether a session's data holds anything but `_permanent`.
pub(crate) fn holds_data(data: &Map) -> bool {
    data.keys().any(|key| key != crate::session::PERMANENT_KEY)
}

/// Whether a session is worth keeping: it holds data or belongs to a user.
pub(crate) fn worth_keeping(data: &Map, user_id: Option<&str>) -> bool {
    holds_data(data) || user_id.is_some()
}

/// A stored session as listed: everything but the data. `Debug` shows
/// whether it has an owner, not who, as [`Record`]'s does.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's id.
    pub id: SessionId,
    /// Its owner.
    pub user_id: Option<String>,
    /// When it was created.
    pub created_at: u64,
    /// When it expires unless used.
    pub expires_at: u64,
    /// When it expires whatever happens.
    pub absolute_expires_at: Option<u64>,
}

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or failed; the request should be
    /// answered with 503 and retried later.
    #[error("session store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An atomic operation found a value of the wrong type under its key.
    #[error("session key {key:?} holds {found}, not {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What the operation needs.
        expected: &'static str,
        /// What the key holds.
        found: &'static str,
    },
    /// Stored data could not be read back.
    #[error("stored session data is corrupt: {0}")]
    Corrupt(#[source] Reason),
    /// A value cannot be written in the store's format (for example an
    /// integer beyond 64 bits in Flask-Session's msgpack).
    #[error("session data cannot be stored in this format: {0}")]
    Unrepresentable(#[source] Reason),
    /// The store's location is not usable (bad URL, missing feature).
    #[error("invalid session store configuration: {0}")]
    Config(#[source] Reason),
}

/// Why a [`StoreError`] other than an outage happened: a message and, when
/// another library's error found the problem, that error as its
/// [`source`](std::error::Error::source), for a caller to inspect or
/// downcast. The message already says what the source says, as
/// [`StoreError::Unavailable`]'s does.
#[derive(Debug, Clone)]
pub struct Reason {
    text: String,
    // Shared rather than boxed: the stores hand one failure to every
    // request waiting on the same operation.
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Reason {
    /// A reason without an underlying error.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            source: None,
        }
    }

    /// A reason found by `source`; `text` should say what it says.
    pub fn caused_by(
        text: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            text: text.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// The message.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for Reason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl From<String> for Reason {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Reason {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl StoreError {
    /// [`StoreError::Corrupt`] for `reason` (a message, or a [`Reason`]
    /// that keeps the error that found it).
    pub fn corrupt(reason: impl Into<Reason>) -> Self {
        Self::Corrupt(reason.into())
    }

    /// [`StoreError::Unrepresentable`] for `reason`.
    pub fn unrepresentable(reason: impl Into<Reason>) -> Self {
        Self::Unrepresentable(reason.into())
    }

    /// [`StoreError::Config`] for `reason`.
    pub fn config(reason: impl Into<Reason>) -> Self {
        Self::Config(reason.into())
    }

    /// Wraps a backend error as [`StoreError::Unavailable`].
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(error))
    }

    /// Whether the store is out of reach for now, so the same request may
    /// succeed later: answered 503 with `Retry-After`. Every other error
    /// (data the store cannot read or write, a store unusable as
    /// configured) fails the same way on every retry, so it is a 500 that
    /// clients do not retry forever.
    pub fn is_outage(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Where server-side sessions live. Implemented by [`MemoryStore`] and, with
/// their features, `SqliteStore`, `RedisStore`, `FlaskSessionRedisStore`
/// and `PostgresStore`; the project's shared conformance suite
/// (`tests/store_conformance.rs` in its repository) runs every one of them
/// against the rules below. To run it against a store of your own, copy
/// that file into your crate's `tests/` and add one line,
/// `conformance!(mine, || async { Fixture::new(MyStore::new()) });`. It
/// needs `tessera` and `tokio` (features `macros` and `rt-multi-thread`) as
/// dependencies; its parts under `#[cfg(feature = "…")]` test this
/// repository's stores and compile away in your crate (declare `sqlite`,
/// `redis`, `postgres` and `tls` as empty features of it to silence the
/// `unexpected_cfgs` warnings).
///
/// The methods are async through the [`async-trait`](https://docs.rs/async-trait)
/// crate (hence the boxed futures in their signatures here): an
/// implementation puts `#[async_trait::async_trait]` on its `impl` block,
/// with `async-trait` among its own dependencies.
///
/// Times are whole seconds since the Unix epoch; a record is live while
/// `now` is before both its expiries. The layer sets a new record's
/// expiries to its creation plus the lifetime plus one second (times are
/// truncated, so that every session lasts at least its whole lifetime).
/// Every operation that changes something is atomic: concurrent calls,
/// from other processes too, never lose one another's effect.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// The live record under `id`, or `None` if absent or expired.
    async fn load(&self, id: &SessionId, now: u64) -> Result<Option<Record>, StoreError>;

    /// Inserts a new record. Returns `false`, changing nothing, if `id` is
    /// already taken, live or expired, so ids are never reused.
    async fn create(&self, id: &SessionId, record: &Record) -> Result<bool, StoreError>;

    /// Applies `changes` to the live record key by key, atomically, as
    /// [`Changes::apply_to`] does (a [`ListEdit`] reads the list as stored
    /// at that moment). Returns `false` if there is no live record
    /// (revoked, expired).
    async fn update(&self, id: &SessionId, changes: &Changes, now: u64)
        -> Result<bool, StoreError>;

    /// Applies `changes` as [`update`](Self::update) does, then deletes the
    /// record if it holds no key but `_permanent`
    /// ([`PERMANENT_KEY`](crate::PERMANENT_KEY)) and belongs to no user:
    /// how a request that
    /// empties its session (pops its last key, shows its last flash
    /// messages) ends it without deleting what concurrent requests wrote
    /// meanwhile. The layer calls it for every write that removes a key, a
    /// flash message or the user, since concurrent removals may together
    /// empty a session none of them saw emptied. (The Flask-Session layout
    /// of the Redis store deletes an emptied session even if it has an
    /// owner, as Flask-Session counts it as none.) It must be one atomic
    /// step: an update, a load and a delete in turn would delete a write
    /// landing between the last two with the record (the conformance
    /// suite's `emptying_never_deletes_acknowledged_writes` catches that).
    async fn update_or_delete_if_empty(
        &self,
        id: &SessionId,
        changes: &Changes,
        now: u64,
    ) -> Result<UpdateOutcome, StoreError>;

    /// Deletes the record. Returns whether there was one.
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError>;

    /// Moves the live record to the unused id `new` and deletes `old`, as one
    /// atomic step. Returns `false` if `old` is not live or `new` is taken
    /// (as it is when `new` is `old`).
    async fn cycle_id(
        &self,
        old: &SessionId,
        new: &SessionId,
        now: u64,
    ) -> Result<bool, StoreError>;

    /// Atomically adds `by` to the integer under `key` (absent or null counts
    /// as 0) and returns the new value; `None` if there is no live record.
    /// [`StoreError::WrongType`] for any other value (a float, a bool, a
    /// string, an integer beyond `i64`) or a result beyond `i64`, changing
    /// nothing.
    async fn increment(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        now: u64,
    ) -> Result<Option<i64>, StoreError>;

    /// Atomically appends `value` to the list under `key` (absent or null
    /// counts as empty) and returns the new length; `None` if there is no
    /// live record. [`StoreError::WrongType`] for any other value than a
    /// list, changing nothing.
    async fn append(
        &self,
        id: &SessionId,
        key: &str,
        value: &Value,
        now: u64,
    ) -> Result<Option<usize>, StoreError>;

    /// Live sessions, in id order, after `after`, at most `limit`; only those
    /// of `user_id` if given. Sessions whose record cannot be read may be
    /// left out (logged), so a page shorter than `limit` is not necessarily
    /// the last: the listing ends with an empty page.
    async fn list(
        &self,
        user_id: Option<&str>,
        after: Option<&SessionId>,
        limit: usize,
        now: u64,
    ) -> Result<Vec<SessionInfo>, StoreError>;

    /// Deletes every session of `user_id` ("log out everywhere"); returns how
    /// many of them were live, by the clock: those already past an expiry
    /// but not yet purged go too, uncounted, as the user no longer had them
    /// (Redis drops them by itself). A store may instead end them at once,
    /// as no longer live and no longer the user's, and leave their records
    /// to [`purge_expired`](Self::purge_expired) (the SQLite store does).
    async fn delete_user(&self, user_id: &str) -> Result<u64, StoreError>;

    /// Deletes at most `batch` records that are no longer live; returns how
    /// many. Sweepers call it until it returns less than `batch`.
    async fn purge_expired(&self, now: u64, batch: usize) -> Result<u64, StoreError>;

    /// What is wrong with the store as the application found it, that
    /// requests would not show: the layer logs each as a warning before its
    /// first expiry sweep. The Redis stores report sessions of the other
    /// layout under their prefix (a prefix another application uses, or one
    /// this application used with the other `SESSION_SERIALIZATION_FORMAT`
    /// setting), which they read wrongly, as empty or absent sessions. None
    /// by default.
    async fn setup_warnings(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Closes the store's connections for a graceful shutdown, once the
    /// server has stopped taking requests: waits for operations in flight,
    /// then closes (SQLite writes its log back into the database file, so
    /// no `-wal` file is left beside it). Call it last: operations after
    /// this fail with [`StoreError::Unavailable`] (on a store never used,
    /// which this leaves alone, they open it as usual). Does nothing by
    /// default.
    async fn close(&self) {}
}

/// Milliseconds on a monotonic clock that starts at the first call, for
/// keeping when something last happened in an atomic.
pub(crate) fn monotonic_millis() -> u64 {
    static START: std::sync::LazyLock<std::time::Instant> =
        std::sync::LazyLock::new(std::time::Instant::now);
    u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A store that is down fails every request that needs a session, each of
/// which would log the same error (thousands of lines a second): the first
/// is logged, then at most one a second, each saying how many were not.
/// (Other events that come with every request while a condition lasts are
/// logged through one too, with [`due`](Self::due).)
#[derive(Debug)]
pub(crate) struct OutageLog {
    /// What the failures it counts are, for the line that counts those not
    /// logged (which may be loads, saves and other operations alike).
    kind: &'static str,
    /// What that line calls them: "failures", logged as errors, or events
    /// that are no failure ("evictions"), logged as warnings.
    events: &'static str,
    /// When a line was last let through, in [`monotonic_millis`] plus one;
    /// 0 for never.
    logged_at: std::sync::atomic::AtomicU64,
    not_logged: std::sync::atomic::AtomicU64,
    /// Whether a failure was logged or counted since the store last
    /// answered.
    failing: std::sync::atomic::AtomicBool,
    /// Whether a task will log the failures not logged once a second has
    /// passed, in case none comes after them: a burst shorter than a
    /// second showed as the one failure logged.
    summary_due: std::sync::atomic::AtomicBool,
    /// When the store was last said to answer again, as `logged_at`.
    answered_at: std::sync::atomic::AtomicU64,
}

/// What became of the request a store failure was logged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// tessera answers it with 503.
    Answered503,
    /// tessera answers it with 500: trying again would not help.
    Answered500,
    /// The extractor failed with a 503 rejection, which actix-web's
    /// `Option<Session>` turns into `None`, so the handler may answer
    /// anything.
    #[cfg_attr(not(feature = "actix"), allow(dead_code))]
    ExtractorRejected,
    /// The request is answered all the same (only the session's refresh
    /// was lost).
    AnsweredWithout,
}

impl Outcome {
    /// The outcome of a failure that is no outage: a 500 where tessera
    /// answers, the extractor's rejection as before where the application
    /// chooses.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) fn failing(self) -> Self {
        match self {
            Outcome::Answered503 => Outcome::Answered500,
            other => other,
        }
    }
}

/// The log of failures to reach a session store, for the whole process.
pub(crate) static STORE_OUTAGES: OutageLog = OutageLog::new("session store unavailable");

/// Says once, after failures were logged, that the store answers again:
/// without it the errors simply stop, and whoever watches the log cannot
/// tell a recovery from a quiet moment. Called on every load the store
/// answers, so it costs a relaxed load when there was no failure.
pub(crate) fn note_store_answered() {
    STORE_OUTAGES.note_answered();
    STORE_FAULTS.note_answered();
}

/// The log of a store's other failures (unusable as configured, data it
/// cannot read or write), answered 500: limited apart from outages, so
/// that one during an outage is logged with its cause, not counted among
/// the outage's failures.
pub(crate) static STORE_FAULTS: OutageLog =
    OutageLog::new("session store failing other than by an outage");

impl OutageLog {
    const INTERVAL_MS: u64 = 1000;
    const FAILURES: &'static str = "failures";

    pub(crate) const fn new(kind: &'static str) -> Self {
        Self::of_events(kind, Self::FAILURES)
    }

    /// A log of events that are no failure, `events` naming them.
    pub(crate) const fn of_events(kind: &'static str, events: &'static str) -> Self {
        Self {
            kind,
            events,
            failing: std::sync::atomic::AtomicBool::new(false),
            logged_at: std::sync::atomic::AtomicU64::new(0),
            not_logged: std::sync::atomic::AtomicU64::new(0),
            summary_due: std::sync::atomic::AtomicBool::new(false),
            answered_at: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Logs a failure, `what` saying what failed, unless one was logged
    /// less than a second ago; those not logged are counted on the next
    /// line, or on a line of their own a second later. The line says the
    /// request is answered 503, which is true wherever tessera answers it.
    pub(crate) fn log(&'static self, error: &dyn std::fmt::Display, what: &'static str) {
        self.log_with_outcome(error, what, Outcome::Answered503);
    }

    /// As [`log`](Self::log), for a failure whose answer is the
    /// application's to choose.
    pub(crate) fn log_with_outcome(
        &'static self,
        error: &dyn std::fmt::Display,
        what: &'static str,
        outcome: Outcome,
    ) {
        self.failing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if !self.log_at(monotonic_millis(), error, what, outcome) {
            self.summarize_later();
        }
    }

    /// Logs that the store answers again, if failures were logged since it
    /// last did.
    pub(crate) fn note_answered(&self) {
        self.note_answered_at(monotonic_millis());
    }

    /// [`note_answered`](Self::note_answered) at `now_ms`. At most once a
    /// second: a store that answers loads but fails every write (a
    /// database made read-only, a grant revoked) alternates between the
    /// two on every request, and logged the line a hundred times a second.
    fn note_answered_at(&self, now_ms: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.failing.load(Relaxed)
            && Self::claim_turn(&self.answered_at, now_ms)
            && self.failing.swap(false, Relaxed)
        {
            tracing::info!("{}: over, the store answers again", self.kind);
        }
    }

    /// Has the failures not logged counted a second from now, unless a
    /// line has counted them by then: on a runtime that keeps running, since
    /// a summary due but never made (its single-threaded runtime dropped
    /// meanwhile) would keep the next ones from being scheduled.
    fn summarize_later(&'static self) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.summary_due.swap(true, Relaxed) {
            return;
        }
        background::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(Self::INTERVAL_MS)).await;
            self.summary_due.store(false, Relaxed);
            self.summarize_at(monotonic_millis());
        });
    }

    /// Logs how many failures were not logged, if any and a line is due.
    fn summarize_at(&self, now_ms: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.not_logged.load(Relaxed) == 0 {
            return;
        }
        if let Some(not_logged) = self.take_turn_at(now_ms).filter(|n| *n > 0) {
            if self.events == Self::FAILURES {
                tracing::error!(
                    not_logged,
                    "{}: {not_logged} more such failures since the last line",
                    self.kind
                );
            } else {
                tracing::warn!(
                    not_logged,
                    "{}: {not_logged} more {} since the last line",
                    self.kind,
                    self.events
                );
            }
        }
    }

    /// Whether a line is due now (none was let through in the last
    /// second), and if so how many were held back since the last.
    pub(crate) fn due(&self) -> Option<u64> {
        self.due_at(monotonic_millis())
    }

    /// As [`due`](Self::due), and when no line is due, has those held back
    /// counted on a line of their own a second later, unless a line has
    /// counted them by then: the last of a burst are not left uncounted
    /// until the next event, which may never come.
    pub(crate) fn due_or_counted_later(&'static self) -> Option<u64> {
        let due = self.due();
        if due.is_none() {
            self.summarize_later();
        }
        due
    }

    /// Whether the failure was logged (else it was counted).
    fn log_at(
        &self,
        now_ms: u64,
        error: &dyn std::fmt::Display,
        what: &str,
        outcome: Outcome,
    ) -> bool {
        let Some(not_logged) = self.due_at(now_ms) else {
            return false;
        };
        let outcome = match outcome {
            Outcome::Answered503 => "answering 503",
            Outcome::Answered500 => "answering 500",
            Outcome::AnsweredWithout => "answering the request without it",
            Outcome::ExtractorRejected => {
                "the Session extractor fails (with 503, or 500 where trying again would not \
                 help; a handler taking actix-web's Option<Session> gets None instead)"
            }
        };
        tracing::error!(
            %error,
            not_logged,
            "{what}; {outcome} (at most one such line a second: not_logged counts the \
             failures since the last)"
        );
        true
    }

    fn due_at(&self, now_ms: u64) -> Option<u64> {
        let turn = self.take_turn_at(now_ms);
        if turn.is_none() {
            self.not_logged
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        turn
    }

    /// The count of events not logged, reset, if a line is due at `now_ms`
    /// and this caller is the one to write it.
    fn take_turn_at(&self, now_ms: u64) -> Option<u64> {
        // One of the requests failing together logs; the others count.
        Self::claim_turn(&self.logged_at, now_ms).then(|| {
            self.not_logged
                .swap(0, std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// Whether a line stamped in `last_at` (in [`monotonic_millis`] plus
    /// one, 0 for never) may be logged at `now_ms`: none was in the last
    /// second. If so, the stamp is now, so that of callers at once only
    /// one is told yes.
    fn claim_turn(last_at: &std::sync::atomic::AtomicU64, now_ms: u64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let stamp = now_ms.saturating_add(1);
        let last = last_at.load(Relaxed);
        let due = last == 0 || stamp.saturating_sub(last) >= Self::INTERVAL_MS;
        due && last_at
            .compare_exchange(last, stamp, Relaxed, Relaxed)
            .is_ok()
    }
}

/// The integer an atomic increment starts from, or why it cannot.
pub(crate) fn integer_for_increment(key: &str, current: Option<&Value>) -> Result<i64, StoreError> {
    match current {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value.as_i64().ok_or_else(|| StoreError::WrongType {
            key: key.to_owned(),
            expected: "an integer within the signed 64-bit range",
            found: match value {
                Value::Number(n) if n.is_integer() => "an int outside the signed 64-bit range",
                other => other.type_name(),
            },
        }),
    }
}

/// The integer under `key` (absent counts as 0) plus `by`: what every
/// store's `increment` stores, refusing a non-integer or an overflow.
pub(crate) fn incremented(key: &str, current: Option<&Value>, by: i64) -> Result<i64, StoreError> {
    integer_for_increment(key, current)?
        .checked_add(by)
        .ok_or_else(|| increment_overflow(key))
}

/// The error for an increment past the range of a 64-bit integer.
pub(crate) fn increment_overflow(key: &str) -> StoreError {
    StoreError::WrongType {
        key: key.to_owned(),
        expected: "an integer the increment keeps within the signed 64-bit range",
        found: "an int too close to the end of the signed 64-bit range",
    }
}

/// Appends to the list under `key` in `data`, as every store's `append` does.
pub(crate) fn append_in_map(data: &mut Map, key: &str, value: &Value) -> Result<usize, StoreError> {
    match data.get_mut(key) {
        None | Some(Value::Null) => {
            data.insert(key.to_owned(), Value::List(vec![value.clone()]));
            Ok(1)
        }
        Some(Value::List(items)) => {
            items.push(value.clone());
            Ok(items.len())
        }
        Some(other) => Err(StoreError::WrongType {
            key: key.to_owned(),
            expected: "a list",
            found: other.type_name(),
        }),
    }
}

/// The largest request glibc's `malloc` serves from its small bins: its
/// chunk, with 8 bytes of header and rounded up to 16, is 1,008 bytes, the
/// largest small chunk (a request of 1,001 to 1,008 bytes gets a chunk of
/// 1,024, a large one). A request boxes its store operations' futures, and
/// a larger box makes `malloc` consolidate every small free chunk first
/// when its per-thread cache holds none of that size; the stores' tests
/// keep the futures a request makes at most this size.
#[cfg(all(test, any(feature = "redis", feature = "sqlite")))]
pub(crate) const LARGEST_SMALL_MALLOC_REQUEST: usize = 1000;

/// A port on 127.0.0.1 where something that is not the store listens: it
/// reads what a client sends first, then writes `answer` and hangs up, for
/// the stores' tests of what their errors say.
#[cfg(all(test, any(feature = "redis", feature = "postgres")))]
pub(crate) fn foreign_server(answer: &'static [u8]) -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 512];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(answer);
        }
    });
    port
}

// The integration tests' log capture.
#[cfg(test)]
#[path = "../../tests/common/logs.rs"]
pub(crate) mod test_logs;

#[cfg(test)]
mod tests {
    use super::test_logs;

    #[test]
    fn store_outages_are_logged_once_a_second_with_a_count() {
        let log = super::OutageLog::new("session store unavailable");
        assert_eq!(log.due_at(0), Some(0), "the first is logged");
        assert_eq!(log.due_at(10), None);
        assert_eq!(log.due_at(998), None);
        assert_eq!(log.due_at(1000), Some(2), "a second later, with the count");
        assert_eq!(log.due_at(1500), None);
        assert_eq!(log.due_at(60_000), Some(1));
        assert_eq!(log.due_at(60_001), None);
    }

    #[test]
    fn an_outage_logs_what_failed_why_and_how_many_were_not_logged() {
        let (logs, _guard) = test_logs::LogBuffer::capture();
        let log = super::OutageLog::new("session store unavailable");
        let error = super::StoreError::Unavailable("connection refused".into());
        for now_ms in [0, 400, 900, 1200] {
            log.log_at(
                now_ms,
                &error,
                "could not load the session",
                super::Outcome::Answered503,
            );
        }
        let text = logs.contents();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in &lines {
            assert!(line.contains("ERROR"), "{line}");
            assert!(
                line.contains("could not load the session; answering 503"),
                "{line}"
            );
            assert!(line.contains("connection refused"), "{line}");
        }
        assert!(lines[0].contains("not_logged=0"), "{text}");
        assert!(lines[1].contains("not_logged=2"), "{text}");
    }

    /// Failures held back on a single-threaded runtime that is dropped
    /// before their summary is due (a test's, a thread's `block_on` that
    /// returned) are still counted a second later, on the subscriber the
    /// runtime's thread had; before, the summary went with the runtime and
    /// none was scheduled again.
    #[test]
    fn failures_held_back_are_counted_after_their_runtime_is_gone() {
        static LOG: super::OutageLog = super::OutageLog::new("a store of a runtime gone");
        let (logs, _guard) = test_logs::LogBuffer::capture();
        let down = super::StoreError::Unavailable("refused".into());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            for _ in 0..3 {
                LOG.log(&down, "could not load the session");
            }
        });
        drop(runtime);
        let summary = "a store of a runtime gone: 2 more such failures since the last line";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !logs.contents().contains(summary) {
            assert!(
                std::time::Instant::now() < deadline,
                "no summary: {}",
                logs.contents()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A store that answers loads but fails every write alternates between
    /// the two on every request: "answers again" is said at most once a
    /// second, not after every failure (a hundred lines a second).
    #[test]
    fn answering_again_is_logged_at_most_once_a_second() {
        let (logs, _guard) = test_logs::LogBuffer::capture();
        let log = super::OutageLog::new("session store unavailable");
        let down = super::StoreError::Unavailable("read-only".into());
        for step in 0..100 {
            let now_ms = 10_000 + step * 5;
            log.failing
                .store(true, std::sync::atomic::Ordering::Relaxed);
            log.log_at(
                now_ms,
                &down,
                "could not save the session",
                super::Outcome::Answered503,
            );
            log.note_answered_at(now_ms + 1);
        }
        let said = |logs: &test_logs::LogBuffer| logs.contents().matches("answers again").count();
        assert_eq!(said(&logs), 1, "{}", logs.contents());
        // A second later, once more.
        log.failing
            .store(true, std::sync::atomic::Ordering::Relaxed);
        log.note_answered_at(10_000 + 100 * 5 + 1_000);
        assert_eq!(said(&logs), 2, "{}", logs.contents());
    }

    /// An error other than an outage keeps the error that found it, when
    /// there is one, and a copy for a waiting request keeps it too.
    #[test]
    fn reasons_keep_their_source() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no access");
        let error = super::StoreError::config(super::Reason::caused_by(
            format!("the file cannot be read: {io}"),
            io,
        ));
        assert_eq!(
            error.to_string(),
            "invalid session store configuration: the file cannot be read: no access"
        );
        for error in [&error, &super::combine::copy_of(&error)] {
            let found = error
                .source()
                .and_then(|reason| reason.source())
                .and_then(|cause| cause.downcast_ref::<std::io::Error>())
                .expect("the io error");
            assert_eq!(found.kind(), std::io::ErrorKind::PermissionDenied);
        }
        let plain = super::StoreError::corrupt("no such thing");
        assert!(plain.source().and_then(|reason| reason.source()).is_none());
    }

    /// A store failing as configured while another failure is an outage
    /// (a 500 beside 503s) is logged with its cause within the second, not
    /// counted among the outage's failures; and the line that counts those
    /// held back names their kind, not the operation of one of them.
    #[test]
    fn faults_are_logged_apart_from_outages() {
        let (logs, _guard) = test_logs::LogBuffer::capture();
        let outages = super::OutageLog::new("session store unavailable");
        let faults = super::OutageLog::new("session store failing other than by an outage");
        let down = super::StoreError::Unavailable("connection refused".into());
        let misshapen = super::StoreError::config("tables changed by hand");
        outages.log_at(
            0,
            &down,
            "could not save the session",
            super::Outcome::Answered503,
        );
        outages.log_at(
            10,
            &down,
            "could not load the session",
            super::Outcome::Answered503,
        );
        faults.log_at(
            20,
            &misshapen,
            "could not load the session",
            super::Outcome::Answered500,
        );
        outages.summarize_at(1000);
        let text = logs.contents();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].contains("tables changed by hand"), "{text}");
        assert!(lines[1].contains("answering 500"), "{text}");
        assert!(
            lines[2].contains("session store unavailable: 1 more such failures"),
            "{text}"
        );
    }

    /// Failures held back and followed by none are counted on a line of
    /// their own once the second has passed: a burst shorter than a second
    /// showed as the one failure logged.
    #[test]
    fn a_burst_shorter_than_a_second_is_counted_all_the_same() {
        let (logs, _guard) = test_logs::LogBuffer::capture();
        let log = super::OutageLog::new("session store unavailable");
        let error = super::StoreError::Unavailable("connection refused".into());
        for now_ms in [0, 10, 20, 30] {
            log.log_at(
                now_ms,
                &error,
                "could not load the session",
                super::Outcome::Answered503,
            );
        }
        log.summarize_at(500);
        assert_eq!(logs.contents().lines().count(), 1, "not yet due");
        log.summarize_at(1000);
        let text = logs.contents();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[1].contains("not_logged=3"), "{text}");
        assert!(lines[1].contains("3 more such failures"), "{text}");
        log.summarize_at(5000);
        assert_eq!(logs.contents().lines().count(), 2, "nothing more to count");
        // The next failure is logged, counting none.
        log.log_at(
            5001,
            &error,
            "could not load the session",
            super::Outcome::Answered503,
        );
        let text = logs.contents();
        assert!(
            text.lines()
                .nth(2)
                .is_some_and(|line| line.contains("not_logged=0")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn debug_shows_keys_not_values_or_users() {
        use super::SessionStore as _;
        let record = super::Record {
            data: crate::Map::from([("card".to_owned(), crate::Value::from("4111 secret"))]),
            user_id: Some("alice".to_owned()),
            created_at: 1,
            expires_at: 2,
            absolute_expires_at: None,
        };
        let changes = super::Changes {
            set: record.data.clone(),
            user_id: Some(Some("alice".to_owned())),
            list_edit: Some(super::ListEdit {
                key: "_flashes".to_owned(),
                taken: vec![crate::Value::from("secret taken")],
                added: vec![crate::Value::from("secret added")],
            }),
            ..super::Changes::default()
        };
        let store = super::MemoryStore::default();
        let id = super::SessionId::generate();
        assert!(store.create(&id, &record).await.expect("created"));
        let listed = store
            .list(Some("alice"), None, 10, 0)
            .await
            .expect("listed");
        assert_eq!(listed.len(), 1);
        for shown in [
            format!("{record:?}"),
            format!("{changes:?}"),
            format!("{store:?}"),
            format!("{listed:?}"),
        ] {
            assert!(
                !shown.contains("secret") && !shown.contains("alice"),
                "{shown}"
            );
        }
        assert!(format!("{record:?}").contains("card"));
    }

    use super::*;

    fn list(items: &[i64]) -> Value {
        Value::List(items.iter().map(|&item| Value::from(item)).collect())
    }

    fn edit(taken: &[i64], added: &[i64]) -> ListEdit {
        ListEdit {
            key: "k".to_owned(),
            taken: taken.iter().map(|&item| Value::from(item)).collect(),
            added: added.iter().map(|&item| Value::from(item)).collect(),
        }
    }

    #[test]
    fn a_list_edit_takes_what_is_left_of_its_items_and_keeps_the_others() {
        // Taken, added, stored, then what the edit leaves.
        type Case<'a> = (&'a [i64], &'a [i64], Option<&'a [i64]>, Option<&'a [i64]>);
        let cases: &[Case<'_>] = &[
            // Nothing happened meanwhile.
            (&[1, 2], &[], Some(&[1, 2]), None),
            (&[1, 2], &[9], Some(&[1, 2]), Some(&[9])),
            // Another request flashed meanwhile: its item stays.
            (&[1, 2], &[], Some(&[1, 2, 3]), Some(&[3])),
            (&[1, 2], &[9], Some(&[1, 2, 3]), Some(&[3, 9])),
            // Another request took the first item first, then one was flashed.
            (&[1, 2], &[], Some(&[2, 3]), Some(&[3])),
            // Another request took them all first.
            (&[1, 2], &[], None, None),
            (&[1, 2], &[9], Some(&[3]), Some(&[3, 9])),
            // Nothing taken: only an append.
            (&[], &[9], Some(&[1]), Some(&[1, 9])),
            (&[], &[9], None, Some(&[9])),
            // Equal items: the run at the front that ends the taken ones.
            (&[5, 5], &[], Some(&[5, 5, 5]), Some(&[5])),
            (&[5], &[], Some(&[5, 5]), Some(&[5])),
        ];
        for &(taken, added, stored, expected) in cases {
            let stored = stored.map(list);
            assert_eq!(
                edit(taken, added).apply(stored.as_ref()),
                expected.map(list),
                "taken {taken:?}, added {added:?}, stored {stored:?}"
            );
        }
        // What is not a list is replaced.
        for stored in [Value::Null, Value::from("junk"), Value::tuple([1.into()])] {
            assert_eq!(edit(&[1], &[9]).apply(Some(&stored)), Some(list(&[9])));
            assert_eq!(edit(&[1], &[]).apply(Some(&stored)), None);
        }
    }

    #[test]
    fn ids_are_long_random_and_validated() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert_eq!(SessionId::parse(a.as_str()), Some(a.clone()));
        // Flask-Session's ids of SESSION_ID_LENGTH 16 to 192.
        for len in [22, 134, 256] {
            let id = "x".repeat(len);
            assert_eq!(
                SessionId::parse(&id).as_ref().map(SessionId::as_str),
                Some(id.as_str())
            );
        }
        for bad in [
            "",
            "short",
            "has space in it and is long enough",
            "a.b.c.d.e.f.g.h.i.j.k.l.m",
            &"x".repeat(21),
            &"x".repeat(257),
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad}");
        }
        assert!(!format!("{a:?}").contains(a.as_str()));
        assert_eq!(a.fingerprint().len(), 12);
    }
}

/// Stands in for a store whose configuration was refused: every operation
/// fails with that reason, so requests that need the session answer 500 and
/// say why in the log, instead of sessions silently going elsewhere.
#[cfg(any(feature = "redis", feature = "postgres"))]
#[derive(Debug)]
pub(crate) struct UnusableStore(pub(crate) String);

#[cfg(any(feature = "redis", feature = "postgres"))]
impl UnusableStore {
    fn refuse<T>(&self) -> Result<T, StoreError> {
        Err(StoreError::config(self.0.clone()))
    }
}

#[cfg(any(feature = "redis", feature = "postgres"))]
#[async_trait::async_trait]
impl SessionStore for UnusableStore {
    async fn load(&self, _: &SessionId, _: u64) -> Result<Option<Record>, StoreError> {
        self.refuse()
    }
    async fn create(&self, _: &SessionId, _: &Record) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn update(&self, _: &SessionId, _: &Changes, _: u64) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn update_or_delete_if_empty(
        &self,
        _: &SessionId,
        _: &Changes,
        _: u64,
    ) -> Result<UpdateOutcome, StoreError> {
        self.refuse()
    }
    async fn delete(&self, _: &SessionId) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn cycle_id(&self, _: &SessionId, _: &SessionId, _: u64) -> Result<bool, StoreError> {
        self.refuse()
    }
    async fn increment(
        &self,
        _: &SessionId,
        _: &str,
        _: i64,
        _: u64,
    ) -> Result<Option<i64>, StoreError> {
        self.refuse()
    }
    async fn append(
        &self,
        _: &SessionId,
        _: &str,
        _: &Value,
        _: u64,
    ) -> Result<Option<usize>, StoreError> {
        self.refuse()
    }
    async fn list(
        &self,
        _: Option<&str>,
        _: Option<&SessionId>,
        _: usize,
        _: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        self.refuse()
    }
    async fn delete_user(&self, _: &str) -> Result<u64, StoreError> {
        self.refuse()
    }
    async fn purge_expired(&self, _: u64, _: usize) -> Result<u64, StoreError> {
        self.refuse()
    }
}
