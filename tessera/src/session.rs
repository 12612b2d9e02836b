//! The per-request session: a dict-like handle with Flask's semantics.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::map::Map;
use crate::server::ServerState;
use crate::store::{ListEdit, StoreError};
use crate::value::Value;

thread_local! {
    /// The state of the session whose `update` closure runs on this thread,
    /// by address; 0 for none.
    static UPDATING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The key Flask keeps `session.permanent` under.
pub const PERMANENT_KEY: &str = "_permanent";
/// The key Flask keeps flash messages under.
pub const FLASHES_KEY: &str = "_flashes";
/// Flask's default flash category.
pub const DEFAULT_FLASH_CATEGORY: &str = "message";

/// A typed read or write of a session value failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The stored value does not have the requested type.
    #[error("session key {key:?} does not hold the requested type")]
    Deserialize {
        /// The key that was read.
        key: String,
        /// Why serde refused it.
        #[source]
        source: serde_json::Error,
    },
    /// The session store failed: 503 (with `Retry-After`) when it is
    /// unavailable, for the client to retry; 500 otherwise (see
    /// [`status`](Self::status)).
    #[error(transparent)]
    Store(StoreError),
    /// An atomic operation found a value of the wrong type under its key: a
    /// problem with the data (answer 409 or 400), not with the store.
    #[error("session key {key:?} holds {found}, not {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What the operation needs.
        expected: &'static str,
        /// What the key holds.
        found: &'static str,
    },
    /// The session was revoked (logged out, possibly from another device),
    /// expired, or moved to a new id by a concurrent login, while this
    /// request was using it. Return it (`?`, a 409). From here on the
    /// request's later `increment`s and `append`s fail so too, and if it
    /// writes on, that is not saved: the response is answered 409 whatever
    /// the handler returns, and leaves the browser's cookie alone (a fresh
    /// session's cookie would replace the one a concurrent login gave the
    /// browser). [`clear`](crate::Session::clear) or `destroy` starts the
    /// session over, on purpose: what follows goes into a fresh one. (Not
    /// for an anonymous session that held only flash messages, which a
    /// concurrent request showing them empties and deletes: the request's
    /// writes go into a fresh session instead.)
    #[error("the session was revoked")]
    Revoked,
    /// The operation needs server-side sessions (`SESSION_TYPE` other than
    /// `cookie` and `encrypted`).
    #[error("{0} needs server-side sessions (SESSION_TYPE memory, sqlite, redis or postgres), not sessions kept in cookies")]
    NotServerSide(&'static str),
    /// The value could not be turned into session data.
    #[error("value for session key {key:?} cannot be stored")]
    Serialize {
        /// The key that was written.
        key: String,
        /// Why serde refused it.
        #[source]
        source: serde_json::Error,
    },
}

impl SessionError {
    /// The status a handler should answer with, which the axum
    /// (`IntoResponse`) and actix-web (`ResponseError`) conversions use:
    /// 503 when the store is unavailable (retrying may help), 409 when the
    /// data or the session's state stands in the way (a value of the wrong
    /// type for an atomic operation, a session revoked meanwhile), and 500
    /// for the rest, which only a change to the application can fix.
    pub fn status(&self) -> http::StatusCode {
        match self {
            SessionError::Store(error) if error.is_outage() => {
                http::StatusCode::SERVICE_UNAVAILABLE
            }
            SessionError::WrongType { .. } | SessionError::Revoked => http::StatusCode::CONFLICT,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `Retry-After` value to send with [`status`](Self::status), if any.
    pub fn retry_after(&self) -> Option<&'static str> {
        matches!(self, SessionError::Store(error) if error.is_outage()).then_some("1")
    }

    /// What the client is told: the message for a 409, which is about its
    /// own session; a generic text otherwise (the error itself, which may
    /// name the store's address, goes to the log).
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) fn client_message(&self) -> String {
        match self.status() {
            http::StatusCode::CONFLICT => format!("Conflict: {self}\n"),
            http::StatusCode::SERVICE_UNAVAILABLE => {
                crate::rejection::STORE_UNAVAILABLE_BODY.to_owned()
            }
            _ => "Internal Server Error\n".to_owned(),
        }
    }

    /// Logs a server-side failure once, as the conversions answer it.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(crate) fn log(&self) {
        if self.status().is_server_error() {
            // With its causes: for a type error, what serde said is the point.
            let mut message = self.to_string();
            let mut source = std::error::Error::source(self);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !message.contains(&cause_text) {
                    message = format!("{message}: {cause_text}");
                }
                source = cause.source();
            }
            let message = without_values(&message);
            if self.status() == http::StatusCode::SERVICE_UNAVAILABLE {
                crate::store::STORE_OUTAGES.log(&message, "session operation failed");
            } else if matches!(self, SessionError::Store(_)) {
                // A store unusable as configured fails every request alike:
                // at most a line a second, as for an outage, but apart.
                crate::store::STORE_FAULTS.log_with_outcome(
                    &message,
                    "session operation failed",
                    crate::store::Outcome::Answered500,
                );
            } else {
                tracing::error!(error = %message, "session operation failed; answering {}", self.status());
            }
        }
    }
}

/// `message` with the values serde quotes in its messages (`invalid type:
/// string "…", expected u64`) cut out, the kinds kept: session data stays
/// out of the log, as it does from `Debug`.
#[cfg(any(feature = "axum", feature = "actix", test))]
fn without_values(message: &str) -> String {
    const QUOTED: [(&str, char); 8] = [
        ("string \"", '"'),
        ("integer `", '`'),
        ("floating point `", '`'),
        ("boolean `", '`'),
        ("character `", '`'),
        ("unknown variant `", '`'),
        // A dict's key, to a struct that denies unknown fields.
        ("unknown field `", '`'),
        // What parsers of strings (UUIDs, say) found in the text.
        ("found `", '`'),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((at, open, close)) = QUOTED
        .iter()
        .filter_map(|&(open, close)| rest.find(open).map(|at| (at, open, close)))
        .min_by_key(|&(at, ..)| at)
    {
        out.push_str(&rest[..at + open.len()]);
        out.push('…');
        let quoted = &rest[at + open.len()..];
        // A field or variant name is quoted as it is, backticks and all:
        // it ends where serde's sentence goes on.
        if open.starts_with("unknown") {
            let end = [
                quoted.rfind("`, expected "),
                quoted.rfind("`, there are no "),
            ]
            .into_iter()
            .flatten()
            .max();
            let Some(end) = end else {
                return out;
            };
            out.push(close);
            rest = &quoted[end + 1..];
            continue;
        }
        // Strings are quoted as `Debug` writes them: `\"` is no end.
        let mut escaped = false;
        let end = quoted.char_indices().find(|&(_, c)| {
            let ends = c == close && !escaped;
            escaped = close == '"' && c == '\\' && !escaped;
            ends
        });
        let Some((end, _)) = end else {
            return out;
        };
        out.push(close);
        rest = &quoted[end + close.len_utf8()..];
    }
    out.push_str(rest);
    out
}

impl From<StoreError> for SessionError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::WrongType {
                key,
                expected,
                found,
            } => SessionError::WrongType {
                key,
                expected,
                found,
            },
            other => SessionError::Store(other),
        }
    }
}

/// A flash message: shown once, on a later request.
#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    /// The category, `"message"` unless another was given. Flask takes any
    /// object as a category (`flash(msg, None)` stores `None`); one that is
    /// not a string is given here as Python's `str()` shows it, as a Flask
    /// template renders it (`"None"`, `"True"`, `"3"`), or else as tagged JSON.
    pub category: String,
    /// The message; a string or `Markup` when written by Flask.
    pub message: Value,
    /// Whether Flask stored the category as a string: as in Flask, only such
    /// a category can match a `category_filter`.
    category_is_str: bool,
}

impl Flash {
    /// The message as text: strings and `Markup` as they are, anything else
    /// as tagged JSON.
    pub fn text(&self) -> String {
        self.message
            .as_str()
            .map_or_else(|| self.message.to_tagged_json(), str::to_owned)
    }
}

/// The current visitor's session.
///
/// A cheap handle (clone it freely) to state shared by everything that handles
/// one request; the [`SessionLayer`](crate::SessionLayer) saves it when the
/// response is ready, before its body is sent (a write after that, from a
/// streaming body or a spawned task, is not saved, and is logged). Its
/// store calls take turns, whichever handle makes them. Reading
/// marks the session *accessed* (the response then varies by cookie);
/// writing marks it *modified* (the cookie is sent again).
///
/// ```
/// # fn demo(session: tessera::Session) -> Result<(), tessera::SessionError> {
/// session.insert("username", "alice")?;
/// let visits: u64 = session.get("visits")?.unwrap_or(0);
/// session.insert("visits", visits + 1)?;
/// session.set_permanent(true);
/// session.flash("Welcome back!");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    state: Arc<Shared>,
    /// The configuration of the layer that opened it and saves it.
    saved_by: Option<crate::core::LayerMark>,
}

/// What every handle of one request's session shares.
struct Shared {
    state: Mutex<State>,
    /// Held by each operation that calls the store (server-side): two at
    /// once, from `join!` or a spawned task, would each create a record, or
    /// one would write under the id the other is moving away from.
    store_turn: tokio::sync::Mutex<()>,
}

impl Shared {
    fn new(state: State) -> Arc<Self> {
        Arc::new(Shared {
            state: Mutex::new(state),
            store_turn: tokio::sync::Mutex::new(()),
        })
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) data: Map,
    pub(crate) new: bool,
    pub(crate) modified: bool,
    pub(crate) accessed: bool,
    pub(crate) signed_at: Option<u64>,
    /// The payload of the signed cookie the session was read from, kept
    /// when the response will sign it again even if nothing changes (a
    /// permanent session refreshed on every request): while the session is
    /// not modified, re-signing it costs a MAC instead of encoding the
    /// session again (JSON, zlib and base64).
    pub(crate) cookie_payload: Option<Box<str>>,
    /// The length of the cookie value the session was read from (0 for
    /// none): the browser kept a cookie that large.
    pub(crate) cookie_len: usize,
    /// Flashes popped by this request, returned again by later calls in it
    /// (as Flask caches them on the request context).
    taken_flashes: Option<Vec<Flash>>,
    /// Keys written or removed since the last save, for server-side
    /// sessions only: their store merges exactly these, so concurrent
    /// requests writing other keys are not overwritten. A cookie is always
    /// written whole.
    pub(crate) touched: BTreeSet<String>,
    /// How this request changed `_flashes` since the last save, while it did
    /// so only by `flash` and `take_flashes` (server-side only): saved as an
    /// edit of the list as stored then, not as this request's copy of it, so
    /// a message flashed by a concurrent request is kept.
    pub(crate) flash_edit: Option<ListEdit>,
    /// Every key was removed (`clear`) since the last save.
    pub(crate) cleared: bool,
    /// Present for server-side sessions.
    pub(crate) server: Option<ServerState>,
    /// The layer has taken what it saves: later writes are not saved.
    pub(crate) response_saved: bool,
    late_write_noted: bool,
}

/// Why a value that would not read back is refused.
pub(crate) fn unwritable(problem: crate::tagged::Unwritable) -> serde_json::Error {
    serde::ser::Error::custom(problem)
}

impl State {
    /// A server-side session not loaded yet, whose client presented an id.
    pub(crate) fn unread(&self) -> bool {
        self.server.as_ref().is_some_and(ServerState::unread)
    }

    /// Marks the session read. A server-side session read before it is
    /// loaded reads as empty: middleware that took it from the request's
    /// extensions and forgot `load()` would see every visitor as anonymous,
    /// so that is logged.
    pub(crate) fn note_read(&mut self) {
        self.accessed = true;
        self.warn_if_not_loaded();
    }

    /// Logs, once, a read of a server-side session not loaded yet.
    fn warn_if_not_loaded(&mut self) {
        if self
            .server
            .as_mut()
            .is_some_and(ServerState::first_read_before_load)
        {
            tracing::warn!(
                "a server-side session was read before it was loaded, so it read as empty; \
                 middleware that takes the Session from the request's extensions must call \
                 `session.load().await` first (the Session extractor does)"
            );
        }
    }

    /// Marks the session modified. A write after the layer saved the
    /// response's session (from a streaming body, a WebSocket or a task the
    /// handler spawned) is saved by nothing, so it is logged once.
    pub(crate) fn note_write(&mut self) {
        self.modified = true;
        self.note_if_late();
    }

    /// Logs, once, a change made after the layer saved the session.
    pub(crate) fn note_if_late(&mut self) {
        if self.response_saved && !self.late_write_noted {
            self.late_write_noted = true;
            tracing::warn!(
                "a session was written to after its response was saved (from a streaming \
                 body, a WebSocket or a spawned task?): that write is not saved with it (of a \
                 server-side session, only what increment, append, destroy and \
                 log_out_everywhere do reaches the store by itself, increment and append \
                 with the writes before them, as user_sessions does after set_user_id); \
                 write to the session before the handler returns its response"
            );
        }
    }

    pub(crate) fn touch(&mut self, key: &str) {
        self.accessed = true;
        self.note_write();
        if key == FLASHES_KEY {
            // Written otherwise than by a flash: saved whole.
            self.flash_edit = None;
        }
        if self.server.is_some() && !self.touched.contains(key) {
            self.touched.insert(key.to_owned());
        }
    }

    /// Marks `_flashes` written by `flash` or `take_flashes`, and returns the
    /// edit that saves it, unless it was written otherwise since the last
    /// save (or the session is a cookie, always written whole).
    fn touch_flashes(&mut self) -> Option<&mut ListEdit> {
        let edit = if self.touched.contains(FLASHES_KEY) {
            self.flash_edit.take()
        } else {
            self.server.is_some().then(|| ListEdit {
                key: FLASHES_KEY.to_owned(),
                ..ListEdit::default()
            })
        };
        self.touch(FLASHES_KEY);
        self.flash_edit = edit;
        self.flash_edit.as_mut()
    }
}

impl Session {
    /// A session holding `data`; `new` is true when the visitor brought no
    /// valid session.
    pub fn new(data: Map, new: bool) -> Self {
        Self {
            saved_by: None,
            state: Shared::new(State {
                data,
                new,
                ..State::default()
            }),
        }
    }

    pub(crate) fn loaded(
        data: Map,
        signed_at: Option<u64>,
        cookie_payload: Option<Box<str>>,
        cookie_len: usize,
    ) -> Self {
        Self {
            saved_by: None,
            state: Shared::new(State {
                data,
                new: signed_at.is_none(),
                signed_at,
                cookie_payload,
                cookie_len,
                ..State::default()
            }),
        }
    }

    /// This session, marked as opened and saved by the layer of `mark`.
    pub(crate) fn saved_by(mut self, mark: crate::core::LayerMark) -> Self {
        self.saved_by = Some(mark);
        self
    }

    /// The mark of the layer that opened this session, if a layer did.
    pub(crate) fn layer_mark(&self) -> Option<&crate::core::LayerMark> {
        self.saved_by.as_ref()
    }

    /// A server-side session not loaded yet: the store is asked only when the
    /// session is first used.
    pub(crate) fn server_side(server: ServerState) -> Self {
        let session = Self::new(Map::new(), true);
        session.lock().server = Some(server);
        session
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is held while `update`'s closure runs, so a call back
        // into the session from there would wait for itself for ever,
        // holding its thread: a runtime worker gone without a trace.
        assert!(
            UPDATING.get() != self.state_address(),
            "a session method was called from inside Session::update's closure on the same \
             session; change the map the closure is given instead"
        );
        // A panic elsewhere while holding the lock leaves the data consistent
        // (every mutation is a single map operation, and `update` puts the
        // map back as it was when its closure panics), so carry on.
        self.state
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the session's store operations before this one to end
    /// (see `Shared::store_turn`); the turn is this one's while the guard
    /// lives.
    pub(crate) async fn store_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.state.store_turn.lock().await
    }

    fn state_address(&self) -> usize {
        Arc::as_ptr(&self.state).addr()
    }

    fn read<R>(&self, f: impl FnOnce(&Map) -> R) -> R {
        let mut state = self.lock();
        state.note_read();
        f(&state.data)
    }

    fn write_key<R>(&self, key: &str, f: impl FnOnce(&mut Map) -> R) -> R {
        let mut state = self.lock();
        state.touch(key);
        f(&mut state.data)
    }

    /// The value under `key`, deserialized into `T`; `Ok(None)` when absent.
    ///
    /// Tagged values are seen as plain data: tuples as sequences, bytes as
    /// sequences of numbers (or bytes, to `serde_bytes`), UUIDs and
    /// datetimes (RFC 3339) as strings. Numbers keep their exact value:
    /// Python's `NaN` and infinities read as `f64`, integers beyond 64 bits
    /// as `u128`/`i128` (or the nearest `f64`). Use
    /// [`get_value`](Self::get_value) to see the tagged value itself.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.read(|data| data.get(key).map(crate::value_serde::from_value::<T>))
            .transpose()
            .map_err(|source| SessionError::Deserialize {
                key: key.to_owned(),
                source,
            })
    }

    /// The value under `key` as Flask stored it.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.read(|data| data.get(key).cloned())
    }

    /// The bytes under `key`, if it holds a `bytes` value.
    pub fn get_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.read(|data| data.get(key).and_then(Value::as_bytes).map(<[u8]>::to_vec))
    }

    /// The UUID under `key`, if it holds a `UUID` value.
    pub fn get_uuid(&self, key: &str) -> Option<uuid::Uuid> {
        self.read(|data| data.get(key).and_then(Value::as_uuid))
    }

    /// The instant under `key`, if it holds a `datetime` value.
    pub fn get_datetime(&self, key: &str) -> Option<time::OffsetDateTime> {
        self.read(|data| data.get(key).and_then(Value::as_datetime))
    }

    /// Stores `value` under `key` through serde, shaped as serde_json
    /// shapes it (structs and maps are dicts, sequences lists, `None`
    /// `None`), with numbers exactly as given: `f64::NAN` is Python's `NaN`,
    /// a `u128` an int. Use [`insert_value`](Self::insert_value) for tuples,
    /// `Markup`, UUIDs and datetimes.
    ///
    /// [`SessionError::Serialize`] when serde refuses the value, or when it
    /// nests deeper than a session is read back with
    /// ([`MAX_DEPTH`](crate::tagged::MAX_DEPTH) levels, the session's own
    /// dict the first); a value set another way that nests that deep makes
    /// the response a 500 instead, and is not saved.
    pub fn insert<T: Serialize>(&self, key: impl AsRef<str>, value: T) -> Result<(), SessionError> {
        let key = key.as_ref();
        let value = crate::value_serde::to_value(&value)
            .and_then(
                |value| match crate::tagged::value_under_unwritable(key, &value) {
                    Some(problem) => Err(unwritable(problem)),
                    None => Ok(value),
                },
            )
            .map_err(|source| SessionError::Serialize {
                key: key.to_owned(),
                source,
            })?;
        self.insert_value(key, value);
        Ok(())
    }

    /// Stores a session value under `key`; returns the previous one.
    pub fn insert_value(&self, key: impl AsRef<str>, value: impl Into<Value>) -> Option<Value> {
        let (key, value) = (key.as_ref(), value.into());
        let mut state = self.lock();
        state.touch(key);
        state.data.insert_borrowed(key, value)
    }

    /// Removes `key` and returns its value (Flask's `session.pop(key, None)`).
    /// Marks the session accessed; only removing a key that exists marks it modified.
    /// Before a server-side session's [`load`](Self::load) it removes the
    /// stored key all the same, and returns only what this request wrote.
    pub fn remove(&self, key: &str) -> Option<Value> {
        let mut state = self.lock();
        // Not a read to warn about before `load`: removing is a write, merged
        // over the stored session, as the docs promise middleware that writes
        // without loading.
        state.accessed = true;
        let removed = state.data.remove(key);
        // Before `load` (middleware that took the session from the
        // request's extensions) the key may be stored all the same: the
        // removal is merged over the stored session, as a write is.
        if removed.is_some() || state.unread() {
            state.touch(key);
        }
        removed
    }

    /// Removes `key` and deserializes its value into `T`. A value that is
    /// not a `T` is an error and stays in the session. Before a server-side
    /// session's [`load`](Self::load), as [`remove`](Self::remove): the
    /// stored key is removed all the same, and only what this request wrote
    /// is returned.
    pub fn pop<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let found = {
            let mut state = self.lock();
            if state.unread() {
                // As `remove` before `load`: a write, not a read to warn
                // about; only what this request wrote can be returned.
                state.accessed = true;
                state.data.get(key).cloned()
            } else {
                drop(state);
                self.get_value(key)
            }
        };
        let Some(found) = found else {
            // Removed all the same before `load`, as `remove` does.
            self.remove(key);
            return Ok(None);
        };
        let typed = crate::value_serde::from_value::<T>(&found).map_err(|source| {
            SessionError::Deserialize {
                key: key.to_owned(),
                source,
            }
        })?;
        self.remove(key);
        Ok(Some(typed))
    }

    /// Returns the value under `key`, first storing `default` if it is absent
    /// (Flask's `setdefault`; only storing marks the session modified). Any
    /// `Serialize` default goes in through [`Value::from_serialize`], and
    /// [`get`](Self::get) reads it back typed.
    pub fn setdefault(&self, key: &str, default: impl Into<Value>) -> Value {
        let mut state = self.lock();
        state.note_read();
        if let Some(existing) = state.data.get(key) {
            return existing.clone();
        }
        if state.unread() {
            // Before `load` the key may be stored: storing the default would
            // overwrite it. The read is warned about (`note_read`).
            return default.into();
        }
        state.touch(key);
        let default = default.into();
        state.data.insert_borrowed(key, default.clone());
        default
    }

    /// Removes everything, and so ends the session: the response deletes the
    /// cookie. Always marks the session modified, even when already empty.
    ///
    /// Server-side, the stored record is deleted when the response is
    /// written, so a copy of the cookie is dead at once; whatever is written
    /// after `clear` in the same request (a "you have been logged out"
    /// flash) goes to a new record under a new id. As with Flask-Session,
    /// the session keeps `_permanent`; it no longer belongs to a user
    /// ([`set_user_id`](Self::set_user_id) again to give it one).
    pub fn clear(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.accessed = true;
        state.note_write();
        state.cleared = true;
        state.touched.clear();
        state.flash_edit = None;
        let permanent = state.data.remove(PERMANENT_KEY);
        state.data.clear();
        if let Some(server) = state.server.as_mut() {
            server.forget_user();
            if let Some(permanent) = permanent {
                state.data.insert(PERMANENT_KEY.to_owned(), permanent);
            }
        }
    }

    /// Changes the data in place; marks the session modified. Use this for
    /// nested changes, which Flask cannot detect by itself.
    ///
    /// The closure must not call methods of the session itself (they would
    /// wait for the closure to end): such a call panics. When the closure
    /// panics, the session is left as it was before.
    pub fn update<R>(&self, f: impl FnOnce(&mut Map) -> R) -> R {
        let mut state = self.lock();
        let before = state.data.clone();
        let outer = UPDATING.replace(self.state_address());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut state.data)));
        UPDATING.set(outer);
        let result = match result {
            Ok(result) => result,
            Err(panic) => {
                state.data = before;
                drop(state);
                std::panic::resume_unwind(panic)
            }
        };
        // Only the keys that changed are saved, so a server-side store keeps
        // what concurrent requests wrote to the others.
        let changed: Vec<String> = before
            .keys()
            .chain(state.data.keys())
            .filter(|key| before.get(key) != state.data.get(key))
            .map(str::to_owned)
            .collect();
        state.note_read();
        state.note_write();
        for key in changed {
            state.touch(&key);
        }
        result
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.read(|data| data.contains_key(key))
    }

    /// The keys, in the order Flask writes them.
    pub fn keys(&self) -> Vec<String> {
        self.read(|data| data.keys().map(str::to_owned).collect())
    }

    /// How many keys the session holds (`_permanent` and `_flashes` included).
    pub fn len(&self) -> usize {
        self.read(Map::len)
    }

    /// Whether the session holds nothing.
    pub fn is_empty(&self) -> bool {
        self.read(Map::is_empty)
    }

    /// A copy of all the data.
    pub fn to_map(&self) -> Map {
        self.read(Map::clone)
    }

    /// Whether the session outlives the browser (`session.permanent`).
    pub fn permanent(&self) -> bool {
        self.read(|data| data.get(PERMANENT_KEY).is_some_and(Value::is_truthy))
    }

    /// Makes the session permanent (it lasts `PERMANENT_SESSION_LIFETIME`) or
    /// a browser session. Marks it modified.
    pub fn set_permanent(&self, permanent: bool) {
        self.write_key(PERMANENT_KEY, |data| {
            data.insert(PERMANENT_KEY.to_owned(), Value::Bool(permanent))
        });
    }

    /// True when the visitor brought no valid session. Server-side, it is
    /// known once the session is loaded (the extractor loads it): before,
    /// it answers true, and that is logged as for any read before the load.
    pub fn is_new(&self) -> bool {
        let mut state = self.lock();
        state.warn_if_not_loaded();
        state.new
    }

    /// True once anything was written (Flask's `session.modified`).
    pub fn is_modified(&self) -> bool {
        self.lock().modified
    }

    /// True once anything was read or written (Flask's `session.accessed`).
    pub fn is_accessed(&self) -> bool {
        self.lock().accessed
    }

    /// Marks the session modified so it is saved (Flask's `session.modified = True`).
    ///
    /// Server-side, every write already saves its key (and [`update`](Self::update)
    /// the keys it changed), so this moves the stored session's expiry and
    /// sends a permanent session's cookie again, without writing the values
    /// back: written back, this request's copies would undo what concurrent
    /// requests wrote meanwhile (an [`increment`](Self::increment), say).
    pub fn mark_modified(&self) {
        let mut state = self.lock();
        state.note_write();
        state.accessed = true;
        if let Some(server) = state.server.as_mut() {
            server.force_refresh();
        }
    }

    /// When the cookie this session came from was signed (Unix seconds).
    /// Counts as a read: a response that shows it depends on the cookie,
    /// so it gets `Vary: Cookie`.
    pub fn signed_at(&self) -> Option<u64> {
        let mut state = self.lock();
        state.accessed = true;
        state.signed_at
    }

    /// Adds a flash message in the default category `"message"`.
    pub fn flash(&self, message: impl Into<Value>) {
        self.flash_with_category(DEFAULT_FLASH_CATEGORY, message);
    }

    /// Adds a flash message in `category`, stored as Flask stores it: a
    /// `(category, message)` tuple appended to `_flashes`. Server-side, the
    /// message is appended to the list as stored when the response is saved,
    /// so messages flashed by concurrent requests are all kept.
    pub fn flash_with_category(&self, category: &str, message: impl Into<Value>) {
        let entry = Value::Tuple(vec![category.into(), message.into()]);
        let mut state = self.lock();
        if let Some(edit) = state.touch_flashes() {
            edit.added.push(entry.clone());
        }
        match state.data.get_mut(FLASHES_KEY) {
            Some(Value::List(items)) => items.push(entry),
            _ => {
                state
                    .data
                    .insert(FLASHES_KEY.to_owned(), Value::List(vec![entry]));
            }
        }
    }

    /// Takes every flash message (Flask's `get_flashed_messages(with_categories=True)`):
    /// they leave the session, and later calls in the same request see them again.
    /// Server-side, only these messages leave the stored list: one flashed by
    /// a concurrent request meanwhile stays for the next request.
    pub fn take_flashes(&self) -> Vec<Flash> {
        let mut state = self.lock();
        state.note_read();
        if let Some(taken) = &state.taken_flashes {
            return taken.clone();
        }
        let taken = match state.data.remove(FLASHES_KEY) {
            Some(value) => {
                let as_list = match &value {
                    Value::List(items) => Some(items.as_slice()),
                    _ => None,
                };
                let saved_whole = match (state.touch_flashes(), as_list) {
                    (Some(edit), Some(items)) => {
                        // The list is what was stored, then what this request
                        // added: only the stored part is taken from the store.
                        let stored = items.len().saturating_sub(edit.added.len());
                        edit.taken.extend_from_slice(&items[..stored]);
                        edit.added.clear();
                        false
                    }
                    (edit, _) => edit.is_some(),
                };
                if saved_whole {
                    state.flash_edit = None;
                }
                parse_flashes(&value)
            }
            None => Vec::new(),
        };
        state.taken_flashes = Some(taken.clone());
        taken
    }

    /// Takes the flash messages and keeps those in `categories`
    /// (Flask's `category_filter`; all are removed from the session). As in
    /// Flask, an empty `categories` filters nothing: every message is kept.
    pub fn take_flashes_in(&self, categories: &[&str]) -> Vec<Flash> {
        let mut flashes = self.take_flashes();
        if !categories.is_empty() {
            flashes.retain(|flash| {
                flash.category_is_str && categories.contains(&flash.category.as_str())
            });
        }
        flashes
    }

    /// Runs the layer's `save` on what it needs (data, `modified`,
    /// `accessed`, the cookie payload kept to sign again), without copying
    /// the data.
    pub(crate) fn with_save_state<R>(
        &self,
        save: impl FnOnce(&Map, bool, bool, Option<&str>) -> R,
    ) -> R {
        let mut state = self.lock();
        state.response_saved = true;
        save(
            &state.data,
            state.modified,
            state.accessed,
            state.cookie_payload.as_deref(),
        )
    }

    /// The length of the cookie value the session was read from (0 for none).
    pub(crate) fn received_cookie_len(&self) -> usize {
        self.lock().cookie_len
    }
}

/// Flask writes tuples; msgpack-backed stores turn them into lists.
fn parse_flashes(value: &Value) -> Vec<Flash> {
    value
        .as_slice()
        .unwrap_or_default()
        .iter()
        .filter_map(|item| match item.as_slice()? {
            [category, message] => Some(Flash {
                category: category_text(category),
                message: message.clone(),
                category_is_str: category.as_str().is_some(),
            }),
            _ => None,
        })
        .collect()
}

/// A category as Python's `str()` writes it, for those Flask apps use.
fn category_text(category: &Value) -> String {
    match category {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(number) => match number.as_str() {
            "NaN" => "nan".to_owned(),
            "Infinity" => "inf".to_owned(),
            "-Infinity" => "-inf".to_owned(),
            text => text.to_owned(),
        },
        other => other
            .as_str()
            .map_or_else(|| other.to_tagged_json(), str::to_owned),
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Session")
            .field("keys", &state.data.keys().collect::<Vec<_>>())
            .field("new", &state.new)
            .field("modified", &state.modified)
            .field("accessed", &state.accessed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Session {
        Session::new(Map::new(), true)
    }

    /// A call back into the session from `update`'s closure waited for the
    /// closure to end, holding its thread for ever; it panics now, and the
    /// session is left as it was, still usable. Run on a thread of its own,
    /// so that a hang fails the test instead of stopping the suite.
    #[test]
    fn a_call_into_the_session_from_update_panics_instead_of_hanging() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let session = Session::new(Map::from([("a".to_owned(), 1.into())]), false);
            let inside = session.clone();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                session.update(|map| {
                    map.insert("b".to_owned(), 2.into());
                    inside.len()
                })
            }));
            let panic = outcome.expect_err("panics");
            let message = panic
                .downcast_ref::<&str>()
                .map(|message| (*message).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            // As before the update, and usable: another session may be used
            // from inside a closure, and the session itself after it.
            let other = fresh();
            let after = session.update(|map| {
                other.insert("c", 3).expect("insert");
                map.keys().map(str::to_owned).collect::<Vec<_>>()
            });
            done.send((message, after, other.len(), session.is_modified()))
                .expect("send");
        });
        let (message, after, other, modified) = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the call panicked rather than waiting for ever");
        assert!(
            message.contains("inside Session::update's closure"),
            "{message}"
        );
        assert_eq!(after, ["a"]);
        assert_eq!(other, 1);
        assert!(modified, "the second update marks it modified");
    }

    /// What serde says of a value read as the wrong type, as logged: the
    /// value's kind, never the value.
    #[test]
    fn logged_type_errors_leave_the_values_out() {
        #[derive(Debug, serde::Deserialize)]
        enum Mode {
            _Light,
        }
        let session = fresh();
        let cases: [(Value, &str, &str); 5] = [
            (
                Value::from("tok\"en`, \\\" secret"),
                "string \"…\"",
                "secret",
            ),
            (Value::from(-1234567), "integer `…`", "1234567"),
            (Value::from(2.5), "floating point `…`", "2.5"),
            (Value::Bool(true), "boolean `…`", "true"),
            (
                Value::from("sekrit-variant"),
                "unknown variant `…`",
                "sekrit",
            ),
        ];
        for (index, (value, kind, secret)) in cases.into_iter().enumerate() {
            let key = format!("k{index}");
            session.insert_value(key.clone(), value);
            let error = if index == 4 {
                session.get::<Mode>(&key).map(drop)
            } else {
                session.get::<u8>(&key).map(drop)
            }
            .expect_err("the wrong type");
            let full = format!(
                "{error}: {}",
                std::error::Error::source(&error).expect("serde's reason")
            );
            assert!(full.contains(secret), "{full}");
            let logged = without_values(&full);
            assert!(logged.contains(kind), "{full} → {logged}");
            assert!(!logged.contains(secret), "{full} → {logged}");
        }
        assert_eq!(
            without_values("invalid type: string \"unterminated"),
            "invalid type: string \"…"
        );
        assert_eq!(without_values("missing field `a`"), "missing field `a`");
        assert_eq!(
            without_values("unknown field `secret`, expected `theme`"),
            "unknown field `…`, expected `theme`"
        );
        assert_eq!(
            without_values("unknown field `x`SECRET`, expected one of `a`, `b`"),
            "unknown field `…`, expected one of `a`, `b`"
        );
        assert_eq!(
            without_values("unknown variant `a`, expected `b`SECRET`, there are no variants"),
            "unknown variant `…`, there are no variants"
        );
        assert_eq!(without_values("unknown field `cut off"), "unknown field `…");
        assert_eq!(
            without_values("invalid character: found `S` at 0"),
            "invalid character: found `…` at 0"
        );
    }

    /// A value under a tag's name sits one level deeper in a cookie when it
    /// is the session's only key (`{" di": {" t": …}}`), so `insert` allows
    /// it one level less.
    #[test]
    fn insert_refuses_what_could_not_be_read_back() {
        let nested =
            |levels: usize| (0..levels).fold(Value::from(1), |value, _| Value::List(vec![value]));
        let session = fresh();
        assert!(session.insert("deep", nested(127)).is_ok());
        let error = session.insert("deeper", nested(128)).expect_err("too deep");
        assert!(matches!(&error, SessionError::Serialize { key, .. } if key == "deeper"));
        assert!(std::error::Error::source(&error)
            .expect("a reason")
            .to_string()
            .contains("would nest deeper than 128 levels"));
        assert!(session.insert(" t", nested(126)).is_ok());
        assert!(session.insert(" t", nested(127)).is_err());
        assert!(!session.contains_key("deeper"));
    }

    /// `append` refuses as `insert` does, one level earlier (the list).
    #[tokio::test]
    async fn append_refuses_what_could_not_be_read_back() {
        let nested =
            |levels: usize| (0..levels).fold(Value::from(1), |value, _| Value::List(vec![value]));
        let session = fresh();
        assert_eq!(session.append("list", nested(126)).await.expect("fits"), 1);
        let error = session
            .append("list", nested(127))
            .await
            .expect_err("too deep");
        assert!(matches!(&error, SessionError::Serialize { key, .. } if key == "list"));
        assert_eq!(session.append(" t", nested(125)).await.expect("fits"), 1);
        assert!(session.append(" t", nested(126)).await.is_err());
    }

    #[test]
    fn reads_mark_accessed_only() {
        for read in [
            (|s: &Session| {
                let _ = s.get_value("a");
            }) as fn(&Session),
            |s| {
                let _ = s.contains_key("a");
            },
            |s| {
                let _ = s.len();
            },
            |s| {
                let _ = s.is_empty();
            },
            |s| {
                let _ = s.keys();
            },
            |s| {
                let _ = s.permanent();
            },
            |s| {
                let _ = s.get::<String>("a");
            },
            |s| {
                let _ = s.signed_at();
            },
        ] {
            let session = fresh();
            read(&session);
            assert!(session.is_accessed());
            assert!(!session.is_modified());
        }
    }

    #[test]
    fn writes_mark_modified() {
        for write in [
            (|s: &Session| {
                let _ = s.insert("a", 1);
            }) as fn(&Session),
            |s| s.clear(),
            |s| s.set_permanent(false),
            |s| {
                let _ = s.setdefault("missing", 1);
            },
            |s| s.flash("hi"),
            |s| s.mark_modified(),
        ] {
            let session = fresh();
            write(&session);
            assert!(session.is_modified() && session.is_accessed());
        }
    }

    #[test]
    fn a_pop_of_the_wrong_type_leaves_the_value() {
        let session = Session::new(Map::from([("n".to_owned(), "five".into())]), false);
        assert!(matches!(
            session.pop::<i64>("n"),
            Err(SessionError::Deserialize { .. })
        ));
        assert_eq!(session.get_value("n"), Some(Value::from("five")));
        assert!(!session.is_modified());
        assert_eq!(
            session.pop::<String>("n").expect("a string"),
            Some("five".to_owned())
        );
        assert_eq!(session.get_value("n"), None);
    }

    #[test]
    fn pop_and_setdefault_only_modify_when_they_change_something() {
        let session = Session::new(Map::from([("a".to_owned(), 1.into())]), false);
        assert_eq!(session.remove("missing"), None);
        assert!(!session.is_modified());
        assert_eq!(session.setdefault("a", 2), Value::from(1));
        assert!(!session.is_modified());
        assert_eq!(session.pop::<i64>("a").expect("an int"), Some(1));
        assert!(session.is_modified());
    }

    #[test]
    fn typed_access() {
        let session = fresh();
        session
            .insert("cart", vec!["apple", "pear"])
            .expect("stores");
        let cart: Vec<String> = session.get("cart").expect("a list").expect("present");
        assert_eq!(cart, ["apple", "pear"]);
        assert!(session.get::<u32>("cart").is_err());
        let id = uuid::Uuid::from_u128(7);
        session.insert_value("id", id);
        assert_eq!(session.get_value("id").and_then(|v| v.as_uuid()), Some(id));
        assert_eq!(session.get_uuid("id"), Some(id));
        assert_eq!(
            session.get::<uuid::Uuid>("id").expect("a uuid string"),
            Some(id)
        );
        session.insert_value("raw", Value::bytes(vec![0xff, 0]));
        assert_eq!(session.get_bytes("raw"), Some(vec![0xff, 0]));
        assert_eq!(
            session.get::<Vec<u8>>("raw").expect("bytes as numbers"),
            Some(vec![0xff, 0])
        );
        let when = time::macros::datetime!(2024-01-02 03:04:05 UTC);
        session.insert_value("when", when);
        assert_eq!(session.get_datetime("when"), Some(when));
        assert_eq!(session.get_bytes("when"), None);
        assert_eq!(
            session.get::<String>("id").expect("a string"),
            Some("00000000-0000-0000-0000-000000000007".to_owned())
        );
    }

    /// A refused `increment` or `append` writes nothing, in a cookie as in a
    /// store: the session is read, not modified, and no cookie is sent.
    #[tokio::test]
    async fn refused_atomic_operations_leave_a_cookie_session_unmodified() {
        let session = Session::new(Map::from([("t".to_owned(), 3.into())]), false);
        assert!(session.append("t", 1).await.is_err());
        assert!(session.increment("t", i64::MAX).await.is_err());
        assert!(!session.is_modified());
        assert!(session.is_accessed());
        assert_eq!(session.get_value("t"), Some(Value::from(3)));
        assert_eq!(session.append("list", 1).await.expect("appended"), 1);
        assert!(session.is_modified());
    }

    #[test]
    fn flashes_follow_flask() {
        let session = fresh();
        session.flash("one");
        session.flash_with_category("error", "two");
        assert_eq!(
            session.get_value(FLASHES_KEY).map(|v| v.to_tagged_json()),
            Some(r#"[{" t":["message","one"]},{" t":["error","two"]}]"#.to_owned())
        );
        let errors = session.take_flashes_in(&["error"]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].text(), "two");
        // Taken once per request: the session no longer holds them, but the
        // request still sees them.
        assert!(!session.contains_key(FLASHES_KEY));
        assert_eq!(session.take_flashes().len(), 2);
        // Flask filters only by a non-empty category_filter.
        let session = fresh();
        session.flash("one");
        session.flash_with_category("error", "two");
        let all = session.take_flashes_in(&[]);
        assert_eq!(
            all.iter().map(Flash::text).collect::<Vec<_>>(),
            ["one", "two"]
        );
        assert!(!session.contains_key(FLASHES_KEY));
    }

    /// Flask takes any object as a category (`flash(msg, None)`, say, from a
    /// form field that was not sent): such a message is shown, its category
    /// written as Flask's template would, and only a string category matches
    /// a filter, as `x[0] in category_filter` does.
    #[test]
    fn flashes_whose_category_is_not_a_string_are_kept() {
        let tagged = r#"[{" t":[null,"no level"]},{" t":[true,"flag"]},{" t":[3,"three"]},{" t":[1.5,"half"]},{" t":[["a"],"list"]},{" t":["None","text"]},{" t":[{" m":"error"},"markup"]}]"#;
        let session = Session::new(
            Map::from([(
                FLASHES_KEY.to_owned(),
                crate::tagged::from_str(tagged).expect("tagged JSON"),
            )]),
            false,
        );
        let taken = session.take_flashes();
        assert_eq!(
            taken
                .iter()
                .map(|flash| (flash.category.as_str(), flash.text()))
                .collect::<Vec<_>>(),
            [
                ("None", "no level".to_owned()),
                ("True", "flag".to_owned()),
                ("3", "three".to_owned()),
                ("1.5", "half".to_owned()),
                (r#"["a"]"#, "list".to_owned()),
                ("None", "text".to_owned()),
                ("error", "markup".to_owned()),
            ]
        );
        assert!(!session.contains_key(FLASHES_KEY));
        let filtered = session.take_flashes_in(&["None", "3", "error"]);
        assert_eq!(
            filtered.iter().map(Flash::text).collect::<Vec<_>>(),
            ["text", "markup"]
        );
    }
}
