//! The session engine every web stack shares: Flask's `open_session` and
//! `save_session` rules, the choice of store, the cookie's attributes and the
//! background sweeper.
//!
//! It knows nothing of a framework's request and response types: it reads
//! the raw `Cookie` header values and answers with a [`Finish`] that says
//! what the response must carry. The tower layer and the actix-web
//! middleware only translate headers, so both behave alike by construction.

use std::borrow::Cow;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

use crate::codec::CookieCodec;
use crate::config::{SameSite, SessionConfig, SessionType};
use crate::cookie_header;
use crate::map::Map;
use crate::scratch;
use crate::server::{CookieAction, ServerSettings, ServerState};
use crate::session::{Session, PERMANENT_KEY};
use crate::signing::Signer;
use crate::store::{MemoryStore, SessionId, SessionStore};
use crate::tagged::{self, http_date};
use crate::value::Value;

/// Flask-Session's salt for signed session ids.
const ID_SALT: &str = "flask-session";
/// How many ids of one request are looked up at most. A browser sends
/// several cookies of one name when they differ in path or domain, for
/// example one planted by a sibling subdomain (cookie tossing) before the
/// user's own: the first that names a live session is used, so a made-up or
/// dead id does not hide the user's session. The bound keeps a request full
/// of made-up ids from costing more than a few store calls.
const MAX_PRESENTED_IDS: usize = 4;

/// How many cookies of the session's name are checked with the keys, at
/// most: each costs a MAC (or a decryption) per key, and a request could
/// carry thousands. (Flask reads only the first; the ones after it are
/// tried in case it is junk.) Values refused before any key is used do not
/// count.
const MAX_KEY_CHECKED_COOKIES: usize = 16;
/// Expired records deleted per sweep statement: small enough that a write
/// queued behind one batch waits a few milliseconds at most.
const SWEEP_BATCH: usize = 64;
/// The shortest pause between sweep batches, in which queued writes get the
/// store's write lock: sweeping is background work and may take its time.
const SWEEP_PAUSE: Duration = Duration::from_millis(2);

/// The pause after a sweep batch that took `took`: at least as long, so that
/// a sweeper holds the store's write lock at most half the time. (Other
/// processes on one SQLite file wait for the lock in sleeps of up to 100 ms,
/// and rarely found it free in a 2 ms gap after each batch of a backlog.)
fn sweep_pause(took: Duration) -> Duration {
    took.max(SWEEP_PAUSE)
}

/// The warnings about cookies dated in the future, for the whole process.
static FUTURE_COOKIES: crate::store::OutageLog =
    crate::store::OutageLog::new("cookies signed in the future");

/// What a response must carry once the session is saved.
#[derive(Debug)]
pub(crate) enum Finish {
    /// Keep the application's response, adding these headers.
    Respond {
        /// A `Set-Cookie` value to append.
        set_cookie: Option<String>,
        /// Whether `Cookie` must be added to `Vary`.
        vary_cookie: bool,
    },
    /// Replace the application's response: the session could not be saved,
    /// and a write that was not kept is never acknowledged.
    Fail {
        failure: Failure,
        /// A `Set-Cookie` value for what the store holds already: the new id
        /// of a `cycle_id` (a login) done before the save failed, without
        /// which the visitor would lose the session it moved, or the removal
        /// of a session ended before it.
        set_cookie: Option<String>,
    },
}

/// Why the application's response was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The cookie is over `MAX_COOKIE_SIZE` and oversized cookies are refused,
    /// or the store cannot represent what the application put in the
    /// session, or is misconfigured: retrying cannot help, so this is the
    /// application's 500.
    Internal,
    /// The store failed: 503 with `Retry-After`.
    StoreUnavailable,
    /// The session ended (logged out, revoked, expired) or moved to a new
    /// id (a concurrent login) while the request was using it, so what the
    /// request wrote to it was not saved: 409, as the atomic operations
    /// answer the same race.
    SessionEnded,
}

impl Failure {
    /// The status code to answer with.
    pub(crate) fn status(self) -> u16 {
        match self {
            Failure::Internal => 500,
            Failure::StoreUnavailable => 503,
            Failure::SessionEnded => 409,
        }
    }

    /// The `Retry-After` value to send, if any.
    pub(crate) fn retry_after(self) -> Option<&'static str> {
        match self {
            Failure::Internal | Failure::SessionEnded => None,
            Failure::StoreUnavailable => Some("1"),
        }
    }
}

/// A `Set-Cookie` larger than `MAX_COOKIE_SIZE`, with refusal configured.
#[derive(Debug, thiserror::Error)]
#[error("the {name:?} cookie is too large: {size} bytes, over MAX_COOKIE_SIZE of {limit} bytes")]
struct OversizedCookie {
    name: String,
    size: usize,
    limit: usize,
}

/// What the response does to a cookie session's cookie.
enum CookieWrite {
    Remove,
    /// The whole `Set-Cookie` value, and the length of the cookie's value.
    Set(String, usize),
    /// Would not read back (nested too deep, a datetime out of range): not
    /// sent.
    Unwritable(tagged::Unwritable),
    /// Larger than a cookie read accepts (`TESSERA_MAX_PAYLOAD_SIZE`) once
    /// inflated: not sent.
    TooLarge,
}

/// Where sessions live.
#[derive(Debug)]
enum Backend {
    /// Signed (or encrypted) cookies holding the data.
    Cookie(CookieCodec),
    /// Cookies holding an id (signed with Flask-Session's scheme if
    /// `SESSION_USE_SIGNER`), data in a store.
    Server {
        settings: Arc<ServerSettings>,
        id_signer: Option<Signer>,
    },
}

/// One configuration's sessions: shared by every request of an application.
#[derive(Debug)]
pub(crate) struct SessionCore {
    config: SessionConfig,
    backend: Backend,
    /// Whether this layer's sweeper is running (or cannot be started: no
    /// runtime). Cleared when the task ends, as when the runtime it was
    /// spawned on shuts down: the next request starts another.
    sweeper_running: Arc<std::sync::atomic::AtomicBool>,
    /// The attributes around the expiry in every `Set-Cookie`: fixed by the
    /// configuration.
    cookie_attributes: CookieAttributes,
    /// Marks a request whose session this core's layer saves, so that a
    /// layer inside it that passes the request through can tell whether its
    /// own configuration is the one that applies.
    mark: LayerMark,
    /// A differing outer layer was reported (once per layer).
    reported_outer: std::sync::atomic::AtomicBool,
    /// An id of a length tessera does not take was reported (once per layer).
    reported_id_length: std::sync::atomic::AtomicBool,
    /// The lines about cookies over `MAX_COOKIE_SIZE`, one log for each of
    /// the cases (`Oversized`): a visitor whose session is that large gets
    /// one on every response, which for a permanent session refreshed on
    /// every request would be a line per request.
    oversized_logs: [crate::store::OutageLog; Oversized::CASES],
}

/// What became of a cookie over `MAX_COOKIE_SIZE` (see
/// `SessionCore::oversized_logs`).
#[derive(Clone, Copy)]
enum Oversized {
    NotRefreshed,
    SentThoughRefused,
    Refused,
    NoLarger,
    RefreshGrown,
    ChangeMayBeLost,
}

impl Oversized {
    const CASES: usize = Oversized::ChangeMayBeLost as usize + 1;

    /// Logs the line for `oversized` (an error where the response fails or
    /// a change may be lost), unless one of this case was logged by this
    /// layer less than a second ago; the next one counts those held back.
    fn log(self, core: &SessionCore, oversized: &OversizedCookie) {
        let Some(not_logged) = core.oversized_logs[self as usize].due() else {
            return;
        };
        let event = match self {
            Oversized::NotRefreshed => {
                "not refreshed, because oversized cookies are refused: the browser keeps the \
                 cookie it has"
            }
            Oversized::SentThoughRefused => {
                "sent, because it is no larger than the cookie the browser has, although \
                 oversized cookies are refused"
            }
            Oversized::Refused => "answering 500 because oversized cookies are refused",
            Oversized::NoLarger => "no larger than the cookie the browser has",
            Oversized::RefreshGrown => {
                "a refresh of the cookie the browser has, which browsers may silently ignore: \
                 the session then ends when that cookie expires"
            }
            Oversized::ChangeMayBeLost => {
                "browsers may silently ignore it, keeping the cookie they have: this change to \
                 the session would be lost"
            }
        };
        let limited = "at most one such line a second: not_logged counts the others since the last";
        if matches!(self, Oversized::Refused | Oversized::ChangeMayBeLost) {
            tracing::error!(not_logged, "{oversized}; {event} ({limited})");
        } else {
            tracing::warn!(not_logged, "{oversized}; {event} ({limited})");
        }
    }
}

/// On a [`Session`]: what tells apart the layer that opened it and saves
/// it, for a layer inside it to say whether its own configuration differs.
#[derive(Clone)]
pub(crate) struct LayerMark(Arc<LayerIdentity>);

/// A layer's configuration as its `Debug` shows it (secrets redacted), the
/// keys it redacts, and the store the application gave it, if it did (by
/// address: a store's `Debug` shows its state, which changes): an inner
/// layer that differs only by its `SECRET_KEY`, or by the store it was
/// given, differs too.
#[derive(PartialEq, Eq)]
struct LayerIdentity {
    shown: String,
    given_store: Option<usize>,
    secret_key: crate::SecretKey,
    secret_key_fallbacks: Vec<crate::SecretKey>,
}

/// The keys stay out of it.
impl std::fmt::Debug for LayerMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.shown)
    }
}

impl SessionCore {
    /// Signed cookies for `SESSION_TYPE=cookie`, encrypted ones for
    /// `encrypted`, otherwise server-side sessions in the store it names.
    /// Stores are opened lazily, so this never fails: a store that cannot be
    /// reached makes requests that use the session answer 503 until it can.
    pub(crate) fn new(config: SessionConfig) -> Self {
        match store_for(&config) {
            Some(store) => Self::with_store_as(config, store, None),
            None => Self::from_backend(config, None, None),
        }
    }

    /// Server-side sessions in `store`, whatever `SESSION_TYPE` says.
    pub(crate) fn with_store(config: SessionConfig, store: Arc<dyn SessionStore>) -> Self {
        let given = Some(Arc::as_ptr(&store).cast::<()>() as usize);
        Self::with_store_as(config, store, given)
    }

    /// [`with_store`](Self::with_store); `given`, the address of a store
    /// the application gave, tells layers apart by it (one built from the
    /// configuration is told by the configuration).
    fn with_store_as(
        config: SessionConfig,
        store: Arc<dyn SessionStore>,
        given: Option<usize>,
    ) -> Self {
        let settings = ServerSettings {
            store,
            idle_secs: config.permanent_session_lifetime.as_secs(),
            absolute_secs: config.absolute_lifetime.map(|lifetime| lifetime.as_secs()),
            refresh_each_request: config.refresh_each_request,
            session_permanent: config.session_permanent,
        };
        Self::from_backend(config, Some(Arc::new(settings)), given)
    }

    fn from_backend(
        config: SessionConfig,
        server: Option<Arc<ServerSettings>>,
        given_store: Option<usize>,
    ) -> Self {
        let encrypted_cookies =
            server.is_none() && config.session_type == SessionType::EncryptedCookie;
        if config.encrypted_compression && !encrypted_cookies {
            // Asked for, and a risk the operator weighed: not ignored silently.
            tracing::warn!(
                session_type = %config.session_type,
                "TESSERA_ENCRYPTED_COMPRESSION=true is ignored: it compresses encrypted cookies \
                 (SESSION_TYPE=encrypted); signed cookies are compressed when that makes them \
                 shorter, as Flask's are, and server-side sessions are not"
            );
        }
        let backend = match server {
            None => {
                if let Some(lifetime) = config.absolute_lifetime {
                    // A bound the operator counts on: not ignored silently.
                    tracing::warn!(
                        seconds = lifetime.as_secs(),
                        session_type = %config.session_type,
                        "TESSERA_SESSION_ABSOLUTE_LIFETIME is ignored: a session in a cookie \
                         cannot be ended by the server; only server-side sessions have an \
                         absolute lifetime"
                    );
                }
                // Here, not when the configuration is built: a layer given a
                // store (`with_store`) applies both, whatever SESSION_TYPE says.
                if config.session_permanent_given {
                    // As Flask-Session's setting, which Flask's own cookies
                    // ignore; someone porting a server-side "remember me"
                    // expects it to act.
                    tracing::warn!(
                        session_type = %config.session_type,
                        "SESSION_PERMANENT=true is ignored: it makes new server-side sessions \
                         permanent, as in Flask-Session; a session in a cookie is permanent when \
                         a handler calls session.set_permanent(true), as in Flask"
                    );
                }
                if config.use_signer {
                    tracing::warn!(
                        session_type = %config.session_type,
                        "SESSION_USE_SIGNER=true is ignored: it signs the id in a server-side \
                         session's cookie, as in Flask-Session; a session in a cookie is signed \
                         (or sealed) whatever it says"
                    );
                }
                Backend::Cookie(config.cookie_codec())
            }
            Some(settings) => Backend::Server {
                id_signer: config.use_signer.then(|| {
                    Signer::new(
                        &config.secret_key,
                        &config.secret_key_fallbacks,
                        ID_SALT.as_bytes(),
                    )
                }),
                settings,
            },
        };
        Self {
            cookie_attributes: CookieAttributes::new(&config),
            mark: LayerMark(Arc::new(LayerIdentity {
                shown: format!("{config:?}"),
                given_store,
                secret_key: config.secret_key.clone(),
                secret_key_fallbacks: config.secret_key_fallbacks.clone(),
            })),
            reported_outer: std::sync::atomic::AtomicBool::new(false),
            reported_id_length: std::sync::atomic::AtomicBool::new(false),
            oversized_logs: std::array::from_fn(|_| {
                crate::store::OutageLog::of_events(
                    "session cookies over MAX_COOKIE_SIZE",
                    "cookies",
                )
            }),
            config,
            backend,
            sweeper_running: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// For a request whose session an outer layer saves (marked `outer`):
    /// this layer passes it through, so its configuration does not apply
    /// (two cookies would be sent otherwise). Said once when the outer
    /// layer's configuration differs, where this one was likely meant to
    /// apply (an admin area's stricter cookie, say).
    pub(crate) fn note_passed_through(&self, outer: Option<&LayerMark>) {
        let differs = outer
            .is_some_and(|outer| !Arc::ptr_eq(&outer.0, &self.mark.0) && *outer.0 != *self.mark.0);
        if differs
            && !self
                .reported_outer
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                cookie_name = %self.config.cookie_name,
                "a session layer inside another one with a different configuration passes \
                 its requests through: the outer layer's session, cookie and settings apply \
                 to them, not this layer's; give the routes of each configuration their own \
                 layer, not nested"
            );
        }
    }

    /// An id of a length tessera does not look up: the visitor starts a new
    /// session (and a Flask application sharing them loses its login), so
    /// said once, where it is most likely a Flask-Session setting. Once per
    /// layer: anyone can send such a cookie.
    fn note_unaccepted_id(&self, id: &str) {
        if SessionId::has_unaccepted_length(id)
            && !self
                .reported_id_length
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                cookie_name = %self.config.cookie_name,
                length = id.len(),
                "a session cookie held an id of {} characters, outside the 22 to 256 tessera \
                 looks up (at least 128 bits): it was taken for no session. A Flask-Session \
                 application sharing these sessions must keep SESSION_ID_LENGTH between 16 \
                 and 192 (its default, 32, gives 43 characters); said once",
                id.len()
            );
        }
    }

    pub(crate) fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub(crate) fn store(&self) -> Option<Arc<dyn SessionStore>> {
        match &self.backend {
            Backend::Cookie(_) => None,
            Backend::Server { settings, .. } => Some(settings.store.clone()),
        }
    }

    /// Whether saving needs the store, and so must be awaited.
    pub(crate) fn is_server_side(&self) -> bool {
        matches!(self.backend, Backend::Server { .. })
    }

    /// Flask's `open_session`, from the raw values of every `Cookie` header
    /// in order: the first cookie of our name that verifies, else a new empty
    /// session. Server-side, the store is not asked yet: the well-formed
    /// (and, with a signer, correctly signed) ids are kept in order, and the
    /// first one naming a live session will be used when the session is
    /// loaded.
    pub(crate) fn open<'h>(
        &self,
        cookie_headers: impl Iterator<Item = &'h [u8]>,
        now: SystemTime,
    ) -> Session {
        self.open_session(cookie_headers, now)
            .saved_by(self.mark.clone())
    }

    fn open_session<'h>(
        &self,
        cookie_headers: impl Iterator<Item = &'h [u8]>,
        now: SystemTime,
    ) -> Session {
        self.start_sweeper();
        let mut key_checked = 0;
        let values =
            cookie_values(cookie_headers, &self.config.cookie_name).take_while(move |value| {
                key_checked += usize::from(self.checks_keys_for(value));
                key_checked <= MAX_KEY_CHECKED_COOKIES
            });
        let codec = match &self.backend {
            Backend::Cookie(codec) => codec,
            Backend::Server {
                settings,
                id_signer,
            } => {
                let mut had_cookie = false;
                let mut presented: Vec<SessionId> = Vec::new();
                let mut signed_with_old_key = Vec::new();
                for value in values {
                    had_cookie = true;
                    let (id, current_key) = match id_signer {
                        Some(signer) => match signer.verify_untimed(&value) {
                            Some((id, current_key)) => (id, current_key),
                            None => continue,
                        },
                        None => (&*value, true),
                    };
                    let Some(id) = SessionId::parse(id) else {
                        self.note_unaccepted_id(id);
                        continue;
                    };
                    if !current_key {
                        signed_with_old_key.push(id.clone());
                    }
                    if !presented.contains(&id) {
                        presented.push(id);
                    }
                    if presented.len() == MAX_PRESENTED_IDS {
                        break;
                    }
                }
                return Session::server_side(
                    ServerState::new(settings.clone(), presented, had_cookie)
                        .signed_with_old_key(signed_with_old_key),
                );
            }
        };
        for value in values {
            match codec.decode_keeping_payload(&value, now) {
                Ok((decoded, payload)) => {
                    // Only a session the response signs again even when
                    // unchanged needs its payload kept.
                    let payload = payload
                        .filter(|_| self.config.refresh_each_request && is_permanent(&decoded.data))
                        .map(Box::from);
                    return Session::loaded(decoded.data, decoded.signed_at, payload, value.len());
                }
                // Only a holder of the key can sign or seal a timestamp, so
                // a future one is a clock, not an attack, and worth a warning:
                // servers sharing a login whose clocks differ by a fraction
                // of a second refuse some of each other's fresh cookies.
                // At most a line a second: while the clocks differ, every
                // request of every visitor whose cookie the other server
                // signed would log one.
                Err(crate::DecodeError::Signature(crate::SignatureError::FutureTimestamp(
                    ahead,
                ))) => {
                    if let Some(not_logged) = FUTURE_COOKIES.due() {
                        let made = if self.config.session_type == SessionType::EncryptedCookie {
                            "sealed"
                        } else {
                            "signed"
                        };
                        // No clock is a year off: the app that made it wrote
                        // its time wrongly (milliseconds for seconds, say).
                        let cause = if ahead > 365 * 24 * 3600 {
                            "more than a year ahead, which no clock is: the app that made it \
                             wrote a wrong time into it (milliseconds for seconds?)"
                        } else {
                            "the clock of the server that made it is ahead of this one's; keep \
                             the clocks of servers sharing a login in sync (NTP)"
                        };
                        tracing::warn!(
                            seconds_ahead = ahead,
                            not_logged,
                            "a session cookie {made} by a holder of the key is dated in the \
                             future, so it is refused, as Flask refuses it: {cause} (at most \
                             one such line a second: not_logged counts the others since the \
                             last)"
                        );
                    }
                }
                Err(reason) => {
                    tracing::debug!(%reason, "session cookie refused; starting an empty session")
                }
            }
        }
        Session::loaded(Default::default(), None, None, 0)
    }

    /// Whether reading a cookie value costs a MAC or a decryption per key.
    /// Unsigned session ids cost none: the number of those looked up is
    /// bounded by [`MAX_PRESENTED_IDS`] instead.
    fn checks_keys_for(&self, value: &str) -> bool {
        match &self.backend {
            Backend::Cookie(codec) => codec.checks_keys_for(value),
            Backend::Server { id_signer, .. } => id_signer.is_some() && value.contains('.'),
        }
    }

    /// Flask's `save_session` for sessions in the cookie. Server-side
    /// sessions go through [`finish_server`](Self::finish_server).
    pub(crate) fn finish_cookie(&self, session: &Session, now: SystemTime) -> Finish {
        let config = &self.config;
        let (accessed, modified, write) =
            session.with_save_state(|data, modified, accessed, payload| {
                let write = if data.is_empty() {
                    modified.then_some(CookieWrite::Remove)
                } else {
                    let permanent = is_permanent(data);
                    // A session the reader refuses would be sent, then
                    // dropped on the next request: the whole session lost,
                    // login included. Refused here instead.
                    let unwritable = modified.then(|| tagged::map_unwritable(data)).flatten();
                    match (&self.backend, unwritable) {
                        (Backend::Cookie(_), Some(problem)) => {
                            Some(CookieWrite::Unwritable(problem))
                        }
                        (Backend::Cookie(codec), None)
                            if modified || (permanent && config.refresh_each_request) =>
                        {
                            let expires = permanent.then(|| {
                                let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                                cookie_expiry(
                                    now.saturating_add(config.permanent_session_lifetime)
                                        .as_secs(),
                                )
                            });
                            let mut readable = true;
                            let mut value_len = 0;
                            let header = self.set_cookie(expires, |out| {
                                let start = out.len();
                                let unchanged = payload.filter(|_| !modified);
                                if !unchanged
                                    .is_some_and(|payload| codec.resign_into(payload, now, out))
                                {
                                    readable = codec.encode_into(data, now, out);
                                }
                                value_len = out.len() - start;
                            });
                            Some(if readable {
                                CookieWrite::Set(header, value_len)
                            } else {
                                CookieWrite::TooLarge
                            })
                        }
                        _ => None,
                    }
                };
                (accessed, modified, write)
            });
        let (header, value_len) = match write {
            None => {
                return Finish::Respond {
                    set_cookie: None,
                    vary_cookie: accessed,
                }
            }
            Some(CookieWrite::Remove) => {
                return Finish::Respond {
                    set_cookie: Some(self.removal_cookie()),
                    vary_cookie: true,
                }
            }
            Some(CookieWrite::Unwritable(problem)) => {
                tracing::error!(
                    "the session cannot be sent: {problem}; answering 500 and keeping the cookie \
                     the browser has"
                );
                return Finish::Fail {
                    failure: Failure::Internal,
                    set_cookie: None,
                };
            }
            Some(CookieWrite::TooLarge) => {
                tracing::error!(
                    "the session is larger than the {} bytes of JSON a cookie read accepts \
                     (TESSERA_MAX_PAYLOAD_SIZE); answering 500 and keeping the cookie the \
                     browser has",
                    config.max_payload_size
                );
                return Finish::Fail {
                    failure: Failure::Internal,
                    set_cookie: None,
                };
            }
            Some(CookieWrite::Set(header, value_len)) => (header, value_len),
        };
        if config.max_cookie_size > 0 && header.len() > config.max_cookie_size {
            let oversized = OversizedCookie {
                name: config.cookie_name.clone(),
                size: header.len(),
                limit: config.max_cookie_size,
            };
            if config.refuse_oversized_cookies && !modified {
                // Only a refresh of the cookie the browser holds, which
                // stays valid until it expires: refusing would fail every
                // request of this visitor, whatever the route, until then.
                Oversized::NotRefreshed.log(self, &oversized);
                return Finish::Respond {
                    set_cookie: None,
                    vary_cookie: accessed,
                };
            }
            if config.refuse_oversized_cookies && value_len <= session.received_cookie_len() {
                // No larger than the cookie the browser holds, which it kept
                // (a flash taken from a cookie a Flask app made too large):
                // refusing would keep the visitor on 500 until it expired.
                Oversized::SentThoughRefused.log(self, &oversized);
            } else if config.refuse_oversized_cookies {
                Oversized::Refused.log(self, &oversized);
                return Finish::Fail {
                    failure: Failure::Internal,
                    set_cookie: None,
                };
            } else if value_len <= session.received_cookie_len() {
                // The browser kept one as large, so nothing says it drops
                // this one (a change undone, a flash taken out of a cookie
                // a Flask app made too large).
                Oversized::NoLarger.log(self, &oversized);
            } else if !modified {
                // Larger than what the browser holds only because it is
                // sealed otherwise now (compression turned off): ignored,
                // it costs the refresh, not a change.
                Oversized::RefreshGrown.log(self, &oversized);
            } else {
                Oversized::ChangeMayBeLost.log(self, &oversized);
            }
        }
        Finish::Respond {
            set_cookie: Some(header),
            vary_cookie: true,
        }
    }

    /// Saves a server-side session (a session never loaded costs nothing)
    /// and says what the response must carry.
    pub(crate) async fn finish_server(&self, session: &Session) -> Finish {
        // The save marks the response saved once its turn comes (see
        // `server::save`).
        let saved = crate::server::save(session).await;
        match saved {
            Ok(saved) if saved.writes_lost => {
                tracing::info!(
                    "the session ended while a request wrote to it; answering 409, \
                     its writes were not saved"
                );
                Finish::Fail {
                    failure: Failure::SessionEnded,
                    set_cookie: self.id_cookie(saved.cookie),
                }
            }
            Ok(crate::server::Saved {
                cookie: action,
                accessed,
                ..
            }) => match self.id_cookie(action) {
                None => Finish::Respond {
                    set_cookie: None,
                    vary_cookie: accessed,
                },
                set_cookie => Finish::Respond {
                    set_cookie,
                    vary_cookie: true,
                },
            },
            Err(error) if session.failed_earlier() => {
                // Told to the handler when it happened; not a second failure.
                tracing::debug!(%error, "the session was not saved");
                Finish::Fail {
                    failure: if error.is_outage() {
                        Failure::StoreUnavailable
                    } else {
                        Failure::Internal
                    },
                    set_cookie: self.id_cookie(crate::server::committed_cookie_action(session)),
                }
            }
            Err(error) => {
                // Only an outage is worth trying again: a value the store
                // cannot represent, or a store misconfigured, is a 500.
                let failure = if error.is_outage() {
                    crate::store::STORE_OUTAGES.log(&error, "could not save the session");
                    Failure::StoreUnavailable
                } else {
                    crate::store::STORE_FAULTS.log_with_outcome(
                        &error,
                        "could not save the session",
                        crate::store::Outcome::Answered500,
                    );
                    Failure::Internal
                };
                Finish::Fail {
                    failure,
                    set_cookie: self.id_cookie(crate::server::committed_cookie_action(session)),
                }
            }
        }
    }

    /// The `Set-Cookie` value `action` asks for, if any.
    fn id_cookie(&self, action: CookieAction) -> Option<String> {
        match action {
            CookieAction::Keep => None,
            CookieAction::Set { id, expires_at } => {
                let value = self.id_cookie_value(&id);
                let expires = expires_at.map(cookie_expiry);
                Some(self.set_cookie(expires, |out| out.push_str(&value)))
            }
            CookieAction::Delete => Some(self.removal_cookie()),
        }
    }

    fn start_sweeper(&self) {
        let Backend::Server { settings, .. } = &self.backend else {
            return;
        };
        use std::sync::atomic::Ordering;
        if self.sweeper_running.load(Ordering::Relaxed)
            || self.sweeper_running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // A layer may outlive the runtime of its first request (one
                // built once for many tests, each with a runtime of its
                // own): its sweeper then ends with that runtime, and the
                // next request starts another on its own runtime.
                let running = SweeperRunning(self.sweeper_running.clone());
                let store = Arc::downgrade(&settings.store);
                let interval = self.config.sweep_interval;
                runtime.spawn(async move {
                    let _running = running;
                    sweep(store, interval).await;
                });
            }
            Err(_) => tracing::warn!("no tokio runtime: expired sessions are not swept"),
        }
    }

    fn id_cookie_value(&self, id: &SessionId) -> String {
        match &self.backend {
            Backend::Server {
                id_signer: Some(signer),
                ..
            } => signer.sign_untimed(id.as_str()),
            _ => id.as_str().to_owned(),
        }
    }

    /// Flask's `delete_cookie`: an empty value, expired at the epoch.
    fn removal_cookie(&self) -> String {
        let attributes = &self.cookie_attributes;
        format!(
            "{}={}; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0{}",
            self.config.cookie_name, attributes.before_expiry, attributes.after_expiry
        )
    }

    /// The `Set-Cookie` value for the session cookie whose value
    /// `write_value` writes, byte for byte as Flask (Werkzeug's
    /// `dump_cookie`) writes it: built in a per-thread buffer and copied out
    /// once, at its exact size (so the header takes the string without
    /// another allocation).
    fn set_cookie(
        &self,
        expires: Option<OffsetDateTime>,
        write_value: impl FnOnce(&mut String),
    ) -> String {
        scratch::with(&scratch::HEADER, |header| {
            header.push_str(&self.config.cookie_name);
            header.push('=');
            write_value(header);
            header.push_str(&self.cookie_attributes.before_expiry);
            if let Some(expires) = expires {
                header.push_str("; Expires=");
                header.push_str(&http_date(expires));
            }
            header.push_str(&self.cookie_attributes.after_expiry);
            header.as_str().to_owned()
        })
    }
}

/// A cookie's `Expires` for a Unix time, or the last second the date can
/// show (9999-12-31 23:59:59 GMT) for a later one: only a clock within a
/// lifetime of year 10000 gets there (where Flask raises `OverflowError`).
fn cookie_expiry(unix_seconds: u64) -> OffsetDateTime {
    /// 9999-12-31 23:59:59 UTC.
    const LAST: i64 = 253_402_300_799;
    let seconds = i64::try_from(unix_seconds).map_or(LAST, |seconds| seconds.min(LAST));
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Whether `data` asks to outlive the browser session (Flask's
/// `session.permanent`).
fn is_permanent(data: &Map) -> bool {
    data.get(PERMANENT_KEY).is_some_and(Value::is_truthy)
}

/// The attributes of the session cookie in the order Werkzeug's
/// `dump_cookie` writes them: `Domain`, then `Expires` and `Max-Age` (which
/// vary per response), then `Secure`, `HttpOnly`, `Path`, `SameSite` and
/// `Partitioned`.
#[derive(Debug)]
struct CookieAttributes {
    /// `; Domain=…`, or nothing.
    before_expiry: String,
    /// `; Secure; HttpOnly; Path=…; SameSite=…; Partitioned`, as configured.
    after_expiry: String,
}

/// `; Expires=` and an HTTP date: what a permanent session's cookie adds.
const EXPIRES_LEN: usize = "; Expires=Tue, 14 Nov 2023 22:13:20 GMT".len();

/// The length of the `Set-Cookie` value [`SessionCore::set_cookie`] writes
/// for a value of `value_len` bytes.
pub(crate) fn set_cookie_len(config: &SessionConfig, value_len: usize, permanent: bool) -> usize {
    let attributes = CookieAttributes::new(config);
    config.cookie_name.len()
        + 1
        + value_len
        + attributes.before_expiry.len()
        + if permanent { EXPIRES_LEN } else { 0 }
        + attributes.after_expiry.len()
}

impl CookieAttributes {
    fn new(config: &SessionConfig) -> Self {
        let mut before_expiry = String::new();
        if let Some(domain) = &config.cookie_domain {
            // Werkzeug drops a port and leading dots.
            let host = domain.split(':').next().unwrap_or_default();
            let host = host.trim_start_matches('.');
            if !host.is_empty() {
                before_expiry.push_str("; Domain=");
                before_expiry.push_str(host);
            }
        }
        let mut after_expiry = String::new();
        if config.cookie_secure() {
            after_expiry.push_str("; Secure");
        }
        if config.cookie_http_only {
            after_expiry.push_str("; HttpOnly");
        }
        after_expiry.push_str("; Path=");
        after_expiry.push_str(&quote_path(&config.cookie_path));
        if let Some(same_site) = config.cookie_same_site {
            after_expiry.push_str(match same_site {
                SameSite::Strict => "; SameSite=Strict",
                SameSite::Lax => "; SameSite=Lax",
                SameSite::None => "; SameSite=None",
            });
        }
        if config.cookie_partitioned {
            after_expiry.push_str("; Partitioned");
        }
        Self {
            before_expiry,
            after_expiry,
        }
    }
}

/// Werkzeug's quoting of the cookie path: Python's `urllib.parse.quote` with
/// `%!$&'()*+,/:=@` kept as they are.
fn quote_path(path: &str) -> String {
    use std::fmt::Write as _;
    let mut quoted = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~%!$&'()*+,/:=@".contains(&byte) {
            quoted.push(char::from(byte));
        } else {
            let _ = write!(quoted, "%{byte:02X}");
        }
    }
    quoted
}

/// The store `SESSION_TYPE` names, or `None` for sessions in the cookie.
fn store_for(config: &SessionConfig) -> Option<Arc<dyn SessionStore>> {
    match config.session_type {
        SessionType::Cookie | SessionType::EncryptedCookie => None,
        SessionType::Memory => Some(Arc::new(
            MemoryStore::new(config.memory_max_sessions).with_max_bytes(config.memory_max_bytes),
        )),
        #[cfg(feature = "sqlite")]
        SessionType::Sqlite => Some(Arc::new(crate::store::SqliteStore::new(
            config.sqlite_path(),
        ))),
        #[cfg(feature = "redis")]
        SessionType::Redis => Some(match config.serialization_format {
            None => network_store(
                crate::store::RedisStore::new(&config.network_store_url())
                    .map(|store| store.with_prefix(config.key_prefix.as_str())),
            ),
            Some(format) => network_store(
                crate::store::FlaskSessionRedisStore::new(&config.network_store_url(), format)
                    .map(|store| store.with_prefix(config.key_prefix.as_str())),
            ),
        }),
        #[cfg(feature = "postgres")]
        SessionType::Postgres => Some(network_store(crate::store::PostgresStore::new(
            &config.network_store_url(),
        ))),
        #[cfg(not(all(feature = "redis", feature = "postgres")))]
        #[allow(unreachable_patterns)]
        SessionType::Redis | SessionType::Postgres => {
            tracing::error!(
                "SESSION_TYPE={} needs tessera's feature of that name; using the memory store",
                config.session_type
            );
            Some(Arc::new(
                MemoryStore::new(config.memory_max_sessions)
                    .with_max_bytes(config.memory_max_bytes),
            ))
        }
        #[cfg(not(feature = "sqlite"))]
        SessionType::Sqlite => {
            // SessionConfigBuilder::build refuses this; a config built
            // otherwise falls back to memory rather than failing requests.
            tracing::error!(
                "SESSION_TYPE=sqlite needs tessera's `sqlite` feature; using the memory store"
            );
            Some(Arc::new(
                MemoryStore::new(config.memory_max_sessions)
                    .with_max_bytes(config.memory_max_bytes),
            ))
        }
    }
}

/// A network store from its URL. `SessionConfigBuilder::build` has checked
/// the URL; should it still be refused, every request that needs the session
/// answers 503 and the reason is logged, rather than sessions silently going
/// elsewhere.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn network_store<S: SessionStore>(
    store: Result<S, crate::store::StoreError>,
) -> Arc<dyn SessionStore> {
    match store {
        Ok(store) => Arc::new(store),
        Err(error) => {
            tracing::error!(%error, "the session store cannot be used");
            Arc::new(crate::store::UnusableStore(error.to_string()))
        }
    }
}

/// Held by a sweeper's task: says, when the task ends or is dropped with
/// its runtime, that the layer has no sweeper running.
struct SweeperRunning(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SweeperRunning {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Logs what is wrong with the store as found ([`SessionStore::setup_warnings`]),
/// then deletes expired records in bounded batches, forever, until the store is
/// dropped. Each batch is a short statement, so requests are never stalled.
async fn sweep(store: Weak<dyn SessionStore>, interval: Duration) {
    if let Some(store) = store.upgrade() {
        match store.setup_warnings().await {
            Ok(warnings) => {
                for warning in warnings {
                    tracing::warn!("{warning}");
                }
            }
            Err(error) => tracing::debug!(%error, "the session store could not be checked"),
        }
    }
    loop {
        tokio::time::sleep(interval).await;
        let Some(store) = store.upgrade() else { return };
        let mut purged = 0u64;
        loop {
            let now = crate::server::unix_now();
            let started = std::time::Instant::now();
            match store.purge_expired(now, SWEEP_BATCH).await {
                Ok(count) => {
                    purged += count;
                    if count < SWEEP_BATCH as u64 {
                        break;
                    }
                    tokio::time::sleep(sweep_pause(started.elapsed())).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "sweeping expired sessions failed; will retry");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::debug!(purged, "swept expired sessions");
        }
    }
}

/// Values of every cookie named `name`, across the raw values of every
/// `Cookie` header, in order, as Flask (werkzeug) reads them.
fn cookie_values<'h, 'n, I>(
    headers: I,
    name: &'n str,
) -> impl Iterator<Item = Cow<'h, str>> + use<'h, 'n, I>
where
    I: Iterator<Item = &'h [u8]>,
{
    headers.flat_map(move |header| cookie_header::cookie_values(header, name))
}

/// The `Vary` value that adds `Cookie` to the raw values of the response's
/// `Vary` headers, or `None` if they already cover it (`Cookie` or `*`).
/// Bytes, not text: a value that is not UTF-8 is kept as it came.
pub(crate) fn vary_with_cookie<'h>(existing: impl Iterator<Item = &'h [u8]>) -> Option<Vec<u8>> {
    let mut merged: Vec<u8> = Vec::new();
    for token in existing
        .flat_map(|value| value.split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
    {
        if token == b"*" || token.eq_ignore_ascii_case(b"cookie") {
            return None;
        }
        merged.extend_from_slice(token);
        merged.extend_from_slice(b", ");
    }
    merged.extend_from_slice(b"Cookie");
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweeper leaves the store's write lock free at least as long as it
    /// held it, and a little after the quickest batch.
    #[test]
    fn a_sweeper_pauses_as_long_as_its_batch_took() {
        assert_eq!(sweep_pause(Duration::ZERO), SWEEP_PAUSE);
        assert_eq!(sweep_pause(Duration::from_millis(1)), SWEEP_PAUSE);
        assert_eq!(
            sweep_pause(Duration::from_millis(40)),
            Duration::from_millis(40)
        );
    }

    /// Each configuration's cookie, expiring cookie and removal, as
    /// Werkzeug 3.1's `dump_cookie` writes them (the strings are its output).
    #[test]
    fn set_cookie_is_what_werkzeug_writes() {
        use crate::config::SessionConfigBuilder;
        type Configure = fn(SessionConfigBuilder) -> SessionConfigBuilder;
        let value = "eyJhIjoxfQ.aw0vLA.UEGSX2KK3Xex0gQ6_CaRw7Tcpww";
        let expires = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cases: [(Configure, [&str; 3]); 8] = [
            (|builder| builder, [
                "session=V; HttpOnly; Path=/",
                "session=V; Expires=Tue, 14 Nov 2023 22:13:20 GMT; HttpOnly; Path=/",
                "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/",
            ]),
            (|builder| builder.cookie_name("sid").cookie_path("/app"), [
                "sid=V; HttpOnly; Path=/app",
                "sid=V; Expires=Tue, 14 Nov 2023 22:13:20 GMT; HttpOnly; Path=/app",
                "sid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/app",
            ]),
            (|builder| builder.cookie_domain("example.com").cookie_secure(true), [
                "session=V; Domain=example.com; Secure; HttpOnly; Path=/",
                "session=V; Domain=example.com; Expires=Tue, 14 Nov 2023 22:13:20 GMT; Secure; HttpOnly; Path=/",
                "session=; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; HttpOnly; Path=/",
            ]),
            (|builder| builder.cookie_same_site(SameSite::None), [
                "session=V; HttpOnly; Path=/; SameSite=None",
                "session=V; Expires=Tue, 14 Nov 2023 22:13:20 GMT; HttpOnly; Path=/; SameSite=None",
                "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/; SameSite=None",
            ]),
            (|builder| builder.cookie_same_site(SameSite::Strict).cookie_http_only(false), [
                "session=V; Path=/; SameSite=Strict",
                "session=V; Expires=Tue, 14 Nov 2023 22:13:20 GMT; Path=/; SameSite=Strict",
                "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Strict",
            ]),
            (|builder| builder.cookie_partitioned(true), [
                "session=V; Secure; HttpOnly; Path=/; Partitioned",
                "session=V; Expires=Tue, 14 Nov 2023 22:13:20 GMT; Secure; HttpOnly; Path=/; Partitioned",
                "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; HttpOnly; Path=/; Partitioned",
            ]),
            (
                |builder| {
                    builder
                        .cookie_same_site(SameSite::Lax)
                        .cookie_secure(true)
                        .cookie_partitioned(true)
                        .cookie_domain(".shop.example")
                },
                [
                    "session=V; Domain=shop.example; Secure; HttpOnly; Path=/; SameSite=Lax; Partitioned",
                    "session=V; Domain=shop.example; Expires=Tue, 14 Nov 2023 22:13:20 GMT; Secure; HttpOnly; Path=/; SameSite=Lax; Partitioned",
                    "session=; Domain=shop.example; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; HttpOnly; Path=/; SameSite=Lax; Partitioned",
                ],
            ),
            (|builder| builder.cookie_domain("example.com:8080").cookie_path("/a b/\u{fc}~;x"), [
                "session=V; Domain=example.com; HttpOnly; Path=/a%20b/%C3%BC~%3Bx",
                "session=V; Domain=example.com; Expires=Tue, 14 Nov 2023 22:13:20 GMT; HttpOnly; Path=/a%20b/%C3%BC~%3Bx",
                "session=; Domain=example.com; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/a%20b/%C3%BC~%3Bx",
            ]),
        ];
        for (configure, [plain, expiring, removal]) in cases {
            let config = configure(SessionConfig::builder().secret_key("k".repeat(32)))
                .build()
                .expect("a configuration");
            let core = SessionCore::new(config);
            let written = core.set_cookie(None, |out| out.push_str(value));
            assert_eq!(written, plain.replace('V', value));
            assert_eq!(written.capacity(), written.len(), "exact size");
            assert_eq!(
                set_cookie_len(core.config(), value.len(), false),
                plain.replace('V', value).len()
            );
            let written = core.set_cookie(Some(expires), |out| out.push_str(value));
            assert_eq!(written, expiring.replace('V', value));
            assert_eq!(
                set_cookie_len(core.config(), value.len(), true),
                written.len()
            );
            assert_eq!(core.removal_cookie(), removal);
        }
    }

    /// The `Set-Cookie` value `finish_cookie` answers for `session`.
    fn set_cookie_value(core: &SessionCore, session: &Session, now: SystemTime) -> String {
        let Finish::Respond {
            set_cookie: Some(header),
            ..
        } = core.finish_cookie(session, now)
        else {
            panic!("a cookie is set");
        };
        let value = header.strip_prefix("session=").expect("the session cookie");
        value.split(';').next().expect("a value").to_owned()
    }

    #[test]
    fn an_unchanged_permanent_session_is_signed_again_not_encoded() {
        // A payload tessera would not write (spaces, keys out of order) but
        // any holder of a key may have, signed with the old key of a
        // rotation an hour ago.
        let config = SessionConfig::builder()
            .secret_key("new-key")
            .secret_key_fallbacks(["old-key"])
            .build()
            .expect("a configuration");
        let core = SessionCore::new(config);
        let mut payload = String::new();
        crate::signing::encode_base64(br#"{"user": "alice", "_permanent": true}"#, &mut payload);
        let old = Signer::new(
            &"old-key".into(),
            &[],
            crate::codec::DEFAULT_SALT.as_bytes(),
        );
        let cookie = format!(
            "session={}",
            old.sign(&payload, SystemTime::now() - Duration::from_secs(3600))
        );
        let now = SystemTime::now();
        let session = core.open([cookie.as_bytes()].into_iter(), now);
        assert_eq!(session.get_value("user"), Some(Value::from("alice")));

        // Kept byte for byte, signed with the current key at `now`.
        let refreshed = set_cookie_value(&core, &session, now);
        assert!(refreshed.starts_with(&format!("{payload}.")), "{refreshed}");
        let current = CookieCodec::new(&"new-key".into(), &[]);
        let decoded = current
            .decode(&refreshed, now)
            .expect("signed with the current key");
        assert_eq!(decoded.signed_at, Some(crate::signing::unix_seconds(now)));
        assert_eq!(decoded.data, session.to_map());

        // Once changed, the session is encoded as tessera writes it.
        session.mark_modified();
        let written = set_cookie_value(&core, &session, now);
        assert!(!written.starts_with(&format!("{payload}.")), "{written}");
        assert_eq!(
            current.decode(&written, now).expect("valid").data,
            session.to_map()
        );
    }

    /// A clock within a lifetime of year 10000 panicked adding the lifetime
    /// to it; the cookie says the last date it can instead.
    #[test]
    fn an_expiry_past_year_9999_is_the_last_date_a_cookie_can_say() {
        let config = SessionConfig::builder()
            .secret_key("key")
            .permanent_session_lifetime(Duration::from_secs(crate::config::MAX_LIFETIME_SECS))
            .build()
            .expect("a configuration");
        let core = SessionCore::new(config);
        // 9950-01-01 00:00:00 UTC.
        let now = UNIX_EPOCH + Duration::from_secs(251_824_464_000);
        let session = core.open(std::iter::empty(), now);
        session.set_permanent(true);
        session.insert("a", 1).expect("inserted");
        let Finish::Respond {
            set_cookie: Some(header),
            ..
        } = core.finish_cookie(&session, now)
        else {
            panic!("a cookie is set");
        };
        assert!(
            header.contains("; Expires=Fri, 31 Dec 9999 23:59:59 GMT;"),
            "{header}"
        );
        assert_eq!(cookie_expiry(u64::MAX), cookie_expiry(253_402_300_799));
        assert_eq!(
            http_date(cookie_expiry(1_700_000_000)),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
    }

    #[test]
    fn vary_is_merged_once() {
        let merged = |values: &[&[u8]]| vary_with_cookie(values.iter().copied());
        assert_eq!(merged(&[]).as_deref(), Some(&b"Cookie"[..]));
        assert_eq!(merged(&[b"Cookie"]), None);
        assert_eq!(
            merged(&[b"Accept-Encoding", b"Origin"]).as_deref(),
            Some(&b"Accept-Encoding, Origin, Cookie"[..])
        );
        assert_eq!(merged(&[b"accept, COOKIE"]), None);
        assert_eq!(merged(&[b"*"]), None);
        // Not UTF-8: kept, not dropped.
        assert_eq!(
            merged(&[b"Origin", b"X-\xe9t\xe9 ,"]).as_deref(),
            Some(&b"Origin, X-\xe9t\xe9, Cookie"[..])
        );
    }
}
