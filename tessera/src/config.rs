//! Session configuration with Flask's names and defaults.
//!
//! Build it in code with [`SessionConfig::builder`], or read the same names
//! Flask uses from the environment with [`SessionConfig::from_env`]:
//!
//! ```
//! use std::time::Duration;
//! use tessera::{SameSite, SessionConfig};
//!
//! let config = SessionConfig::builder()
//!     .secret_key("a long random key from `tessera key generate` ........")
//!     .permanent_session_lifetime(Duration::from_secs(3600))
//!     .cookie_same_site(SameSite::Lax)
//!     .build()?;
//! assert_eq!(config.cookie_name(), "session");
//! # Ok::<(), tessera::ConfigError>(())
//! ```
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `SECRET_KEY` | required | signs (or encrypts) cookies |
//! | `SECRET_KEY_FALLBACKS` | none | older keys still accepted (comma-separated, oldest first; blanks around each key dropped; or a JSON list of strings, each kept exactly; a value beginning with `[` must be one) |
//! | `PERMANENT_SESSION_LIFETIME` | 2678400 (31 days) | whole seconds (`60.0` reads as 60, as Flask reads it), at most 3153600000 (36500 days); permanent cookies' lifetime and every cookie's max age |
//! | `SESSION_COOKIE_NAME` | `session` | |
//! | `SESSION_COOKIE_DOMAIN` | none | host-only cookie |
//! | `SESSION_COOKIE_PATH` | `APPLICATION_ROOT` | |
//! | `APPLICATION_ROOT` | `/` | the cookie's path when `SESSION_COOKIE_PATH` is unset, as in Flask |
//! | `SESSION_COOKIE_HTTPONLY` | true | |
//! | `SESSION_COOKIE_SECURE` | false | |
//! | `SESSION_COOKIE_SAMESITE` | none | `Strict`, `Lax` or `None` |
//! | `SESSION_COOKIE_PARTITIONED` | false | implies `Secure` |
//! | `SESSION_REFRESH_EACH_REQUEST` | true | re-send permanent cookies on every request (server-side: when the stored expiry moves) |
//! | `MAX_COOKIE_SIZE` | 4093 | bytes of `Set-Cookie`; 0 disables the check |
//! | `SESSION_TYPE` | `cookie` | `cookie`, `encrypted`, `memory`, `sqlite`, `redis` or `postgres` (each store a cargo feature) |
//! | `SESSION_STORE_URL` | per store | `sqlite:///abs/path.db` or `sqlite://relative.db` (default `sqlite://tessera-sessions.db`), `redis://host:port/db` (default `redis://127.0.0.1:6379/0`; `rediss://` for TLS, feature `tls`), `postgres://user:password@host:port/db` (default `postgres://localhost/tessera`; `sslmode` as libpq, TLS with the `tls` feature) |
//! | `SESSION_KEY_PREFIX` | `session:` | Redis: the prefix of every key (set but empty: none, as in Flask-Session) |
//! | `SESSION_SERIALIZATION_FORMAT` | none | Redis: `msgpack` or `json` stores sessions in Flask-Session 0.8's layout, shared with a Flask app; unset, tessera's own layout (one hash per session, merged key by key in one round trip) |
//! | `SESSION_PERMANENT` | true | server-side: new sessions are permanent |
//! | `SESSION_USE_SIGNER` | false | server-side: sign the id in the cookie (Flask-Session's format) |
//! | `TESSERA_SESSION_ABSOLUTE_LIFETIME` | 0 (none) | server-side: seconds (at most 36500 days) from creation after which a session ends |
//! | `TESSERA_MEMORY_STORE_MAX_SESSIONS` | 100000 | bound on the memory store's sessions |
//! | `TESSERA_MEMORY_STORE_MAX_BYTES` | 268435456 (256 MiB) | bound on the memory store's sessions' estimated size, at least 4096 |
//! | `TESSERA_SWEEP_INTERVAL` | 60 | seconds between sweeps of expired server-side sessions |
//! | `TESSERA_REQUIRE_STRONG_SECRET_KEY` | false | refuse weak keys (the key and every fallback) instead of warning |
//! | `TESSERA_REFUSE_OVERSIZED_COOKIES` | false | answer 500 instead of sending an oversized cookie larger than the request's (an unchanged session's refresh is skipped instead) |
//! | `TESSERA_MAX_PAYLOAD_SIZE` | 1048576 | bound on a decoded (inflated) cookie payload; at least 4096 |
//! | `TESSERA_ENCRYPTED_COMPRESSION` | false | `SESSION_TYPE=encrypted`: compress before sealing; leaks secrets by length beside attacker-influenced data (see [`SessionConfigBuilder::encrypted_compression`]) |

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::codec::{CookieCodec, DEFAULT_MAX_PAYLOAD_SIZE, DEFAULT_SALT};
use crate::key::SecretKey;
use crate::store::flask_format::SerializationFormat;

/// Flask's default `PERMANENT_SESSION_LIFETIME`: 31 days.
pub const DEFAULT_LIFETIME_SECS: u64 = 31 * 24 * 3600;
/// Flask's (Werkzeug's) default `MAX_COOKIE_SIZE`.
pub const DEFAULT_MAX_COOKIE_SIZE: usize = 4093;
/// The smallest `TESSERA_MAX_PAYLOAD_SIZE` accepted: below it, ordinary
/// sessions would be written but refused when read back.
pub const MIN_PAYLOAD_SIZE: usize = 4096;
/// The longest `PERMANENT_SESSION_LIFETIME` (and absolute lifetime) accepted:
/// 36,500 days. Expiry dates stay far inside what cookies, Python's
/// `datetime` and every store can hold, so a long lifetime fails at startup
/// rather than on the first request that saves a session.
pub const MAX_LIFETIME_SECS: u64 = 36_500 * 24 * 3600;

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Sent with same-site requests and top-level navigations.
    Lax,
    /// Sent with every request; browsers require `Secure` with it.
    None,
}

impl SameSite {
    /// The `SESSION_COOKIE_SAMESITE` values (read in any case).
    pub const NAMES: &'static [&'static str] = &["Strict", "Lax", "None"];
}

impl FromStr for SameSite {
    type Err = UnknownName;

    /// Case-insensitive, as Werkzeug title-cases the value.
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s.to_ascii_lowercase().as_str() {
            "strict" => Ok(SameSite::Strict),
            "lax" => Ok(SameSite::Lax),
            "none" => Ok(SameSite::None),
            _ => Err(UnknownName::new("SameSite value", s, SameSite::NAMES)),
        }
    }
}

/// A name that [`SessionType`] or [`SameSite`] does not know.
///
/// ```
/// use tessera::SessionType;
///
/// let error = "mongodb".parse::<SessionType>().unwrap_err();
/// assert_eq!(error.name(), "mongodb");
/// assert!(error.expected().contains(&"redis"));
/// assert_eq!(
///     error.to_string(),
///     "unknown session type \"mongodb\"; expected one of cookie, encrypted, memory, sqlite, redis, postgres",
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}; expected one of {}", expected.join(", "))]
pub struct UnknownName {
    what: &'static str,
    name: String,
    expected: &'static [&'static str],
}

impl UnknownName {
    fn new(what: &'static str, name: &str, expected: &'static [&'static str]) -> Self {
        Self {
            what,
            name: name.to_owned(),
            expected,
        }
    }

    /// The name given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names accepted (aliases aside).
    pub fn expected(&self) -> &'static [&'static str] {
        self.expected
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        })
    }
}

/// Where session data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionType {
    /// In the cookie itself, signed (Flask's default).
    #[default]
    Cookie,
    /// In the cookie itself, encrypted and authenticated (XChaCha20-Poly1305):
    /// the visitor can neither read nor change it. Not readable by Flask.
    EncryptedCookie,
    /// Server-side, in this process's memory (lost on restart).
    Memory,
    /// Server-side, in an SQLite file (needs the `sqlite` feature).
    Sqlite,
    /// Server-side, in Redis (needs the `redis` feature).
    Redis,
    /// Server-side, in PostgreSQL (needs the `postgres` feature).
    Postgres,
}

impl SessionType {
    /// The `SESSION_TYPE` values, one per type (a few aliases are accepted
    /// too: `securecookie`, `encryptedcookie`, `postgresql`).
    pub const NAMES: &'static [&'static str] = &[
        "cookie",
        "encrypted",
        "memory",
        "sqlite",
        "redis",
        "postgres",
    ];

    /// Whether the cookie holds only an id and the data lives in a store.
    pub fn is_server_side(self) -> bool {
        !matches!(self, SessionType::Cookie | SessionType::EncryptedCookie)
    }
}

impl FromStr for SessionType {
    type Err = UnknownName;

    /// Case-insensitive; also takes the aliases listed at [`SessionType::NAMES`].
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s.to_ascii_lowercase().as_str() {
            "cookie" | "securecookie" => Ok(SessionType::Cookie),
            "encrypted" | "encryptedcookie" => Ok(SessionType::EncryptedCookie),
            "memory" => Ok(SessionType::Memory),
            "sqlite" => Ok(SessionType::Sqlite),
            "redis" => Ok(SessionType::Redis),
            "postgres" | "postgresql" => Ok(SessionType::Postgres),
            _ => Err(UnknownName::new("session type", s, SessionType::NAMES)),
        }
    }
}

impl fmt::Display for SessionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionType::Cookie => "cookie",
            SessionType::EncryptedCookie => "encrypted",
            SessionType::Memory => "memory",
            SessionType::Sqlite => "sqlite",
            SessionType::Redis => "redis",
            SessionType::Postgres => "postgres",
        })
    }
}

/// Where the SQLite store keeps its file when `SESSION_STORE_URL` is unset.
pub const DEFAULT_SQLITE_FILE: &str = "tessera-sessions.db";

/// The file named by an SQLite `SESSION_STORE_URL`: `sqlite:///abs/path.db`
/// (absolute) or `sqlite://relative.db` (relative to the working directory).
pub fn sqlite_path_from_url(url: &str) -> Option<PathBuf> {
    parse_sqlite_url(url).ok()
}

/// The one reading of SQLite store URLs, shared by the configuration and
/// `SqliteStore::from_url`: the path, or why the URL names none. The path
/// is percent-decoded, as sqlx decodes it (`%20` a blank, `%3F` a `?`, `%25`
/// a `%`; a `%` that starts no escape stays as it is).
pub(crate) fn parse_sqlite_url(url: &str) -> Result<PathBuf, &'static str> {
    let rest = url
        .strip_prefix("sqlite://")
        .ok_or("it does not start with sqlite://")?;
    if rest.contains(['?', '#']) {
        // sqlx and SQLAlchemy read these as options; taking them as part of
        // the file name would surprise either way.
        return Err("query strings and fragments are not supported");
    }
    if rest.starts_with(":memory:") {
        return Err("in-memory databases are not supported");
    }
    // As sqlx reads it, which refuses a name that is not UTF-8 (SQLite
    // takes file names in UTF-8).
    let decoded = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| "its percent-escapes decode to a name that is not UTF-8")?;
    let path = PathBuf::from(decoded.as_ref());
    if decoded.is_empty() || decoded.ends_with('/') || path.file_name().is_none() {
        return Err("it names no file");
    }
    if decoded.contains('\0') {
        return Err("it holds a NUL character (%00)");
    }
    Ok(path)
}

/// Said when the file an SQLite URL named before its percent-escapes were
/// decoded (earlier builds read `my%20dir` as those six characters) exists
/// and the file it names now does not:
/// an application upgraded, or running beside an older instance, would
/// otherwise start an empty store next to the one its sessions are in.
pub(crate) fn warn_if_named_undecoded(url: &str) {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return;
    };
    let Ok(decoded) = parse_sqlite_url(url) else {
        return;
    };
    let literal = std::path::Path::new(rest);
    if literal != decoded && literal.is_file() && !decoded.exists() {
        tracing::warn!(
            url = %redact_password(url),
            found = %literal.display(),
            now_named = %decoded.display(),
            "the SQLite URL's percent-escapes are decoded (as sqlx decodes them): it names a \
             file that does not exist, and a session database is where versions that took \
             the URL as written put it; move that file (with its -wal and -shm) to the new \
             name, or write each % of the path as %25 to keep it, before instances of both \
             kinds share it"
        );
    }
}

/// A configuration that cannot be used.
///
/// Its `Debug` is its message, so that `main` returning
/// `Result<(), Box<dyn Error>>` shows what to fix, not a struct dump.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No `SECRET_KEY` was given, or an empty one (Flask has no sessions
    /// then; an empty key would let anyone sign cookies).
    #[error("SECRET_KEY is not set or empty: sessions need a secret key to sign cookies (generate one with `tessera key generate`)")]
    MissingSecretKey,
    /// The key is weak and strong keys are required.
    #[error("SECRET_KEY is weak ({reason}) and TESSERA_REQUIRE_STRONG_SECRET_KEY is on (generate one with `tessera key generate`)")]
    WeakSecretKey {
        /// Why the key is weak.
        reason: String,
    },
    /// A key of `SECRET_KEY_FALLBACKS` is weak and strong keys are required:
    /// cookies it signed are still accepted, so guessing it forges sessions.
    #[error("key {position} of SECRET_KEY_FALLBACKS (counting from 1, oldest first) is weak ({reason}) and TESSERA_REQUIRE_STRONG_SECRET_KEY is on: while it is accepted, anyone who guesses it can forge sessions")]
    WeakFallbackKey {
        /// Its place in the list, from 1.
        position: usize,
        /// Why the key is weak.
        reason: String,
    },
    /// A key of `SECRET_KEY_FALLBACKS` is empty: cookies signed with an
    /// empty key would be accepted, and anyone can make those.
    #[error("key {position} of SECRET_KEY_FALLBACKS (counting from 1, oldest first) is empty: anyone can sign cookies with an empty key")]
    EmptyFallbackKey {
        /// Its place in the list, from 1.
        position: usize,
    },
    /// `SECRET_KEY_FALLBACKS` begins with `[` but is not a JSON list of
    /// strings.
    #[error("SECRET_KEY_FALLBACKS begins with '[' but is not a JSON list of strings (it stops making sense at column {column}; a trailing comma or single quotes?): write it as [\"old-key\", \"older-key\"], or comma-separated with no key beginning with '['")]
    MalformedFallbackList {
        /// Where the JSON reader gave up, from 1.
        column: usize,
    },
    /// Settings that do not go together.
    #[error("{0}")]
    Inconsistent(String),
    /// The store's URL (`SESSION_STORE_URL`) is not one its store accepts.
    #[error("invalid SESSION_STORE_URL={value:?}: {reason}")]
    InvalidStoreUrl {
        /// The URL, its password replaced.
        value: String,
        /// What the store said, naming what it expects.
        reason: String,
    },
    /// A setting has a value outside what it accepts.
    #[error("invalid {name}={value:?}: expected {expected}")]
    InvalidValue {
        /// The setting's name, as in Flask.
        name: &'static str,
        /// The value that was given.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Everything the session layer needs to know. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub(crate) secret_key: SecretKey,
    pub(crate) secret_key_fallbacks: Vec<SecretKey>,
    pub(crate) permanent_session_lifetime: Duration,
    pub(crate) cookie_name: String,
    pub(crate) cookie_domain: Option<String>,
    pub(crate) cookie_path: String,
    pub(crate) cookie_http_only: bool,
    pub(crate) cookie_secure: bool,
    pub(crate) cookie_same_site: Option<SameSite>,
    pub(crate) cookie_partitioned: bool,
    pub(crate) refresh_each_request: bool,
    pub(crate) max_cookie_size: usize,
    pub(crate) session_type: SessionType,
    pub(crate) salt: String,
    pub(crate) refuse_oversized_cookies: bool,
    pub(crate) max_payload_size: usize,
    pub(crate) encrypted_compression: bool,
    pub(crate) store_url: Option<StoreUrl>,
    pub(crate) key_prefix: String,
    pub(crate) serialization_format: Option<SerializationFormat>,
    pub(crate) session_permanent: bool,
    /// `SESSION_PERMANENT=true` was given: warned about where it is
    /// ignored (cookie sessions).
    pub(crate) session_permanent_given: bool,
    pub(crate) use_signer: bool,
    pub(crate) absolute_lifetime: Option<Duration>,
    pub(crate) memory_max_sessions: usize,
    pub(crate) memory_max_bytes: usize,
    pub(crate) sweep_interval: Duration,
}

impl SessionConfig {
    /// A builder with Flask's defaults.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder::default()
    }

    /// Reads Flask's names from the process environment and builds.
    pub fn from_env() -> Result<Self, ConfigError> {
        SessionConfigBuilder::from_env()?.build()
    }

    /// The codec this configuration signs and verifies cookies with, or, with
    /// `SESSION_TYPE=encrypted`, seals and opens them with (bound to
    /// `SESSION_COOKIE_NAME`).
    pub fn cookie_codec(&self) -> CookieCodec {
        let codec = match self.session_type {
            SessionType::EncryptedCookie => CookieCodec::encrypted_with_salt(
                &self.secret_key,
                &self.secret_key_fallbacks,
                &self.salt,
                &self.cookie_name,
            )
            .encrypted_compression(self.encrypted_compression),
            _ => CookieCodec::with_salt(&self.secret_key, &self.secret_key_fallbacks, &self.salt),
        };
        codec
            .max_age(self.permanent_session_lifetime)
            .max_payload_size(self.max_payload_size)
    }

    /// `PERMANENT_SESSION_LIFETIME`.
    pub fn permanent_session_lifetime(&self) -> Duration {
        self.permanent_session_lifetime
    }

    /// `SESSION_COOKIE_NAME`.
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// `SESSION_COOKIE_DOMAIN`.
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }

    /// `SESSION_COOKIE_PATH`.
    pub fn cookie_path(&self) -> &str {
        &self.cookie_path
    }

    /// `SESSION_COOKIE_HTTPONLY`.
    pub fn cookie_http_only(&self) -> bool {
        self.cookie_http_only
    }

    /// `SESSION_COOKIE_SECURE`, or `true` when the cookie is partitioned.
    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure || self.cookie_partitioned
    }

    /// `SESSION_COOKIE_SAMESITE`.
    pub fn cookie_same_site(&self) -> Option<SameSite> {
        self.cookie_same_site
    }

    /// `SESSION_COOKIE_PARTITIONED`.
    pub fn cookie_partitioned(&self) -> bool {
        self.cookie_partitioned
    }

    /// `SESSION_REFRESH_EACH_REQUEST`.
    pub fn refresh_each_request(&self) -> bool {
        self.refresh_each_request
    }

    /// `MAX_COOKIE_SIZE` (0: unchecked).
    pub fn max_cookie_size(&self) -> usize {
        self.max_cookie_size
    }

    /// The length of the `Set-Cookie` value the layer sends for a cookie
    /// value of `value_len` bytes, with `Expires` when `permanent`: what
    /// `MAX_COOKIE_SIZE` is checked against, so that an application can
    /// refuse a write before it makes the cookie too large.
    pub fn set_cookie_len(&self, value_len: usize, permanent: bool) -> usize {
        crate::core::set_cookie_len(self, value_len, permanent)
    }

    /// `SESSION_TYPE`.
    pub fn session_type(&self) -> SessionType {
        self.session_type
    }

    /// `TESSERA_ENCRYPTED_COMPRESSION`: encrypted cookies are compressed
    /// before sealing (off by default; see
    /// [`SessionConfigBuilder::encrypted_compression`] for the risk).
    pub fn encrypted_compression(&self) -> bool {
        self.encrypted_compression
    }

    /// `SESSION_STORE_URL`, as given.
    pub fn store_url(&self) -> Option<&str> {
        self.store_url.as_deref()
    }

    /// The SQLite file for `SESSION_TYPE=sqlite`: from `SESSION_STORE_URL`,
    /// or [`DEFAULT_SQLITE_FILE`] in the working directory.
    pub fn sqlite_path(&self) -> PathBuf {
        self.store_url
            .as_deref()
            .and_then(sqlite_path_from_url)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SQLITE_FILE))
    }

    /// The URL of a Redis or PostgreSQL store: `SESSION_STORE_URL`, or
    /// `redis://127.0.0.1:6379/0` (Flask-Session's default) and
    /// `postgres://localhost/tessera`.
    pub fn network_store_url(&self) -> String {
        self.store_url
            .as_deref()
            .map_or_else(|| default_store_url(self.session_type), str::to_owned)
    }

    /// `SESSION_KEY_PREFIX` (Redis).
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// `SESSION_SERIALIZATION_FORMAT` (Redis): `Some` when sessions are
    /// stored in Flask-Session's layout, in that format.
    pub fn serialization_format(&self) -> Option<SerializationFormat> {
        self.serialization_format
    }

    /// `SESSION_PERMANENT` (server-side sessions): new sessions are permanent.
    pub fn session_permanent(&self) -> bool {
        self.session_permanent
    }

    /// `SESSION_USE_SIGNER` (server-side sessions): the id in the cookie is signed.
    pub fn use_signer(&self) -> bool {
        self.use_signer
    }

    /// `TESSERA_SESSION_ABSOLUTE_LIFETIME`: server-side sessions end this
    /// long after creation, however active.
    pub fn absolute_lifetime(&self) -> Option<Duration> {
        self.absolute_lifetime
    }

    /// How often expired server-side sessions are swept.
    pub fn sweep_interval(&self) -> Duration {
        self.sweep_interval
    }
}

/// Builds a [`SessionConfig`]; every method consumes and returns the builder.
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionConfigBuilder {
    secret_key: Option<SecretKey>,
    secret_key_fallbacks: Vec<SecretKey>,
    permanent_session_lifetime: Duration,
    cookie_name: String,
    cookie_domain: Option<String>,
    /// `SESSION_COOKIE_PATH`; unset means `APPLICATION_ROOT`.
    cookie_path: Option<String>,
    application_root: String,
    cookie_http_only: bool,
    cookie_secure: bool,
    cookie_same_site: Option<SameSite>,
    cookie_partitioned: bool,
    refresh_each_request: bool,
    max_cookie_size: usize,
    session_type: SessionType,
    /// Whether `SESSION_TYPE` was given, rather than left at its default.
    session_type_given: bool,
    salt: String,
    require_strong_secret_key: bool,
    refuse_oversized_cookies: bool,
    max_payload_size: usize,
    encrypted_compression: bool,
    store_url: Option<StoreUrl>,
    key_prefix: String,
    serialization_format: Option<SerializationFormat>,
    session_permanent: bool,
    /// Whether `SESSION_PERMANENT` was set true, for the warning that cookie
    /// sessions do not read it.
    session_permanent_given: bool,
    use_signer: bool,
    absolute_lifetime: Option<Duration>,
    memory_max_sessions: usize,
    memory_max_bytes: usize,
    sweep_interval: Duration,
}

impl Default for SessionConfigBuilder {
    fn default() -> Self {
        Self {
            secret_key: None,
            secret_key_fallbacks: Vec::new(),
            permanent_session_lifetime: Duration::from_secs(DEFAULT_LIFETIME_SECS),
            cookie_name: "session".to_owned(),
            cookie_domain: None,
            cookie_path: None,
            application_root: "/".to_owned(),
            cookie_http_only: true,
            cookie_secure: false,
            cookie_same_site: None,
            cookie_partitioned: false,
            refresh_each_request: true,
            max_cookie_size: DEFAULT_MAX_COOKIE_SIZE,
            session_type: SessionType::Cookie,
            session_type_given: false,
            salt: DEFAULT_SALT.to_owned(),
            require_strong_secret_key: false,
            refuse_oversized_cookies: false,
            max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
            encrypted_compression: false,
            store_url: None,
            key_prefix: "session:".to_owned(),
            serialization_format: None,
            session_permanent: true,
            session_permanent_given: false,
            use_signer: false,
            absolute_lifetime: None,
            memory_max_sessions: crate::store::memory::DEFAULT_MAX_SESSIONS,
            memory_max_bytes: crate::store::memory::DEFAULT_MAX_BYTES,
            sweep_interval: Duration::from_secs(60),
        }
    }
}

impl SessionConfigBuilder {
    /// Flask's defaults overridden by the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::default().with_vars_os(std::env::vars_os())
    }

    /// Like [`with_vars`](Self::with_vars) for OS strings, as
    /// `std::env::vars_os` gives them: a variable that is not valid UTF-8 is
    /// an error if it is one of the settings and is skipped otherwise.
    pub fn with_vars_os(
        self,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Self, ConfigError> {
        let mut utf8 = Vec::new();
        for (name, value) in vars {
            let Ok(name) = name.into_string() else {
                continue;
            };
            match value.into_string() {
                Ok(value) => utf8.push((name, value)),
                Err(value) => {
                    if let Some(setting) = SETTINGS.iter().copied().find(|s| *s == name) {
                        // Keys never appear in messages (they end up in logs).
                        let shown = match setting {
                            "SECRET_KEY" | "SECRET_KEY_FALLBACKS" => "<redacted>".to_owned(),
                            "SESSION_STORE_URL" => redact_password(&value.to_string_lossy()),
                            _ => value.to_string_lossy().into_owned(),
                        };
                        return Err(invalid(setting, &shown, "valid UTF-8"));
                    }
                }
            }
        }
        self.with_vars(utf8)
    }

    /// Whether a `SECRET_KEY` has been given.
    pub fn has_secret_key(&self) -> bool {
        self.secret_key
            .as_ref()
            .is_some_and(|key| !key.as_bytes().is_empty())
    }

    /// Flask's names read from `vars` (for example the environment);
    /// unknown names are ignored and empty values count as unset, except
    /// `SESSION_KEY_PREFIX`, where an empty value is the empty prefix, as
    /// Flask-Session takes it (a Flask app sharing the keys uses it so).
    pub fn with_vars<K, V>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError>
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        for (name, value) in vars {
            let value: String = value.into();
            let name = name.as_ref();
            if value.trim().is_empty() && name != "SESSION_KEY_PREFIX" {
                continue;
            }
            self = self.apply_var(name, value)?;
        }
        Ok(self)
    }

    fn apply_var(self, name: &str, value: String) -> Result<Self, ConfigError> {
        Ok(match name {
            "SECRET_KEY" => self.secret_key(value),
            "SECRET_KEY_FALLBACKS" => self.secret_key_fallbacks(parse_fallback_keys(&value)?),
            "PERMANENT_SESSION_LIFETIME" => {
                let seconds =
                    parse_seconds("PERMANENT_SESSION_LIFETIME", &value, LIFETIME_EXPECTED)?;
                self.permanent_session_lifetime(Duration::from_secs(seconds))
            }
            "SESSION_COOKIE_NAME" => self.cookie_name(value),
            "SESSION_COOKIE_DOMAIN" => match value.trim().to_ascii_lowercase().as_str() {
                // Flask's reader of the environment (`from_prefixed_env`)
                // reads JSON, and Flask sends no domain for `false` or
                // `null` (Flask 1.0 to 2.2 documented `False` so); sent as
                // `Domain=false`, the cookie is refused by browsers, and
                // every login is lost.
                "false" | "null" | "none" => Self {
                    cookie_domain: None,
                    ..self
                },
                _ => self.cookie_domain(value),
            },
            "SESSION_COOKIE_PATH" => self.cookie_path(value),
            "APPLICATION_ROOT" => self.application_root(value),
            "SESSION_COOKIE_HTTPONLY" => {
                self.cookie_http_only(parse_bool("SESSION_COOKIE_HTTPONLY", &value)?)
            }
            "SESSION_COOKIE_SECURE" => {
                self.cookie_secure(parse_bool("SESSION_COOKIE_SECURE", &value)?)
            }
            "SESSION_COOKIE_PARTITIONED" => {
                self.cookie_partitioned(parse_bool("SESSION_COOKIE_PARTITIONED", &value)?)
            }
            "SESSION_COOKIE_SAMESITE" => {
                let same_site =
                    parse_var("SESSION_COOKIE_SAMESITE", &value, "Strict, Lax or None")?;
                self.cookie_same_site(same_site)
            }
            "SESSION_REFRESH_EACH_REQUEST" => {
                self.refresh_each_request(parse_bool("SESSION_REFRESH_EACH_REQUEST", &value)?)
            }
            "MAX_COOKIE_SIZE" => {
                self.max_cookie_size(parse_var("MAX_COOKIE_SIZE", &value, "a number of bytes")?)
            }
            "SESSION_TYPE" => {
                let expected = format!("one of {}", SessionType::NAMES.join(", "));
                self.session_type(parse_var("SESSION_TYPE", &value, &expected)?)
            }
            "TESSERA_REQUIRE_STRONG_SECRET_KEY" => self.require_strong_secret_key(parse_bool(
                "TESSERA_REQUIRE_STRONG_SECRET_KEY",
                &value,
            )?),
            "TESSERA_REFUSE_OVERSIZED_COOKIES" => self
                .refuse_oversized_cookies(parse_bool("TESSERA_REFUSE_OVERSIZED_COOKIES", &value)?),
            "SESSION_STORE_URL" => self.store_url(value),
            "SESSION_KEY_PREFIX" => self.key_prefix(value),
            "SESSION_SERIALIZATION_FORMAT" => self.serialization_format(Some(parse_var(
                "SESSION_SERIALIZATION_FORMAT",
                &value,
                "msgpack or json",
            )?)),
            "SESSION_PERMANENT" => self.session_permanent(parse_bool("SESSION_PERMANENT", &value)?),
            "SESSION_USE_SIGNER" => self.use_signer(parse_bool("SESSION_USE_SIGNER", &value)?),
            "TESSERA_SESSION_ABSOLUTE_LIFETIME" => {
                let seconds = parse_seconds(
                    "TESSERA_SESSION_ABSOLUTE_LIFETIME",
                    &value,
                    ABSOLUTE_LIFETIME_EXPECTED,
                )?;
                self.absolute_lifetime((seconds > 0).then(|| Duration::from_secs(seconds)))
            }
            "TESSERA_MEMORY_STORE_MAX_SESSIONS" => {
                let sessions: usize = parse_var(
                    "TESSERA_MEMORY_STORE_MAX_SESSIONS",
                    &value,
                    "a number of sessions, at least 1",
                )?;
                self.memory_max_sessions(sessions)
            }
            "TESSERA_MEMORY_STORE_MAX_BYTES" => {
                let bytes: usize = parse_var(
                    "TESSERA_MEMORY_STORE_MAX_BYTES",
                    &value,
                    MEMORY_MAX_BYTES_EXPECTED,
                )?;
                self.memory_max_bytes(bytes)
            }
            "TESSERA_SWEEP_INTERVAL" => {
                let seconds = parse_seconds(
                    "TESSERA_SWEEP_INTERVAL",
                    &value,
                    "a whole number of seconds",
                )?;
                self.sweep_interval(Duration::from_secs(seconds))
            }
            "TESSERA_MAX_PAYLOAD_SIZE" => self.max_payload_size(parse_var(
                "TESSERA_MAX_PAYLOAD_SIZE",
                &value,
                "a number of bytes",
            )?),
            "TESSERA_ENCRYPTED_COMPRESSION" => {
                self.encrypted_compression(parse_bool("TESSERA_ENCRYPTED_COMPRESSION", &value)?)
            }
            _ => self,
        })
    }

    /// `SECRET_KEY`: signs new cookies. Required.
    pub fn secret_key(mut self, key: impl Into<SecretKey>) -> Self {
        self.secret_key = Some(key.into());
        self
    }

    /// `SECRET_KEY_FALLBACKS`: older keys still accepted, oldest first.
    pub fn secret_key_fallbacks<K: Into<SecretKey>>(
        mut self,
        keys: impl IntoIterator<Item = K>,
    ) -> Self {
        self.secret_key_fallbacks = keys.into_iter().map(Into::into).collect();
        self
    }

    /// `PERMANENT_SESSION_LIFETIME`: how long a permanent cookie lives, and
    /// the max age of every cookie's signature. Whole seconds count, from
    /// one to [`MAX_LIFETIME_SECS`]; [`build`](Self::build) refuses others.
    pub fn permanent_session_lifetime(mut self, lifetime: Duration) -> Self {
        self.permanent_session_lifetime = lifetime;
        self
    }

    /// `SESSION_COOKIE_NAME`.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// `SESSION_COOKIE_DOMAIN`; unset means a host-only cookie.
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie_domain = Some(domain.into());
        self
    }

    /// `SESSION_COOKIE_PATH`. Unset (or empty, as in Flask), the cookie's
    /// path is [`application_root`](Self::application_root).
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.cookie_path = Some(path.into()).filter(|path| !path.is_empty());
        self
    }

    /// `APPLICATION_ROOT` (default `/`): the path the application is mounted
    /// under, which Flask uses as the cookie's path when
    /// `SESSION_COOKIE_PATH` is unset, so that two apps mounted under
    /// different paths of one host keep their sessions apart.
    pub fn application_root(mut self, root: impl Into<String>) -> Self {
        self.application_root = root.into();
        self
    }

    /// `SESSION_COOKIE_HTTPONLY`.
    pub fn cookie_http_only(mut self, http_only: bool) -> Self {
        self.cookie_http_only = http_only;
        self
    }

    /// `SESSION_COOKIE_SECURE`.
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.cookie_secure = secure;
        self
    }

    /// `SESSION_COOKIE_SAMESITE`.
    pub fn cookie_same_site(mut self, same_site: SameSite) -> Self {
        self.cookie_same_site = Some(same_site);
        self
    }

    /// `SESSION_COOKIE_PARTITIONED` (CHIPS); implies `Secure`.
    pub fn cookie_partitioned(mut self, partitioned: bool) -> Self {
        self.cookie_partitioned = partitioned;
        self
    }

    /// `SESSION_REFRESH_EACH_REQUEST`: re-send permanent sessions' cookies on
    /// every request so their expiry slides. A signed cookie whose session
    /// the request did not change is sent back with the payload it came
    /// with and a new timestamp and signature, without encoding the session
    /// again.
    pub fn refresh_each_request(mut self, refresh: bool) -> Self {
        self.refresh_each_request = refresh;
        self
    }

    /// `MAX_COOKIE_SIZE`: a larger `Set-Cookie` is logged as an error, at
    /// most one line a second (or refused, see
    /// [`refuse_oversized_cookies`](Self::refuse_oversized_cookies)). 0
    /// disables the check.
    pub fn max_cookie_size(mut self, bytes: usize) -> Self {
        self.max_cookie_size = bytes;
        self
    }

    /// `SESSION_TYPE`.
    pub fn session_type(mut self, session_type: SessionType) -> Self {
        self.session_type = session_type;
        self.session_type_given = true;
        self
    }

    /// The signing salt; Flask's is `cookie-session`.
    pub fn salt(mut self, salt: impl Into<String>) -> Self {
        self.salt = salt.into();
        self
    }

    /// Refuse to build with a weak secret key instead of logging a warning.
    pub fn require_strong_secret_key(mut self, require: bool) -> Self {
        self.require_strong_secret_key = require;
        self
    }

    /// Answer `500 Internal Server Error` rather than send a cookie over
    /// `MAX_COOKIE_SIZE`, which browsers may drop, that is larger than the
    /// one the request carried; an unchanged session's refresh is skipped
    /// instead (the browser keeps the cookie it has), and a change that
    /// leaves the cookie no larger is sent, each with a warning. Off: log
    /// an error and send it.
    pub fn refuse_oversized_cookies(mut self, refuse: bool) -> Self {
        self.refuse_oversized_cookies = refuse;
        self
    }

    /// The bound on a cookie's decoded payload after inflating (default 1 MiB).
    pub fn max_payload_size(mut self, bytes: usize) -> Self {
        self.max_payload_size = bytes;
        self
    }

    /// `TESSERA_ENCRYPTED_COMPRESSION` (`SESSION_TYPE=encrypted` only):
    /// zlib-compress the session before sealing it when that makes it
    /// smaller. Off by default; compressed cookies are opened either way, so
    /// it can be turned off without logging anyone out.
    ///
    /// **Warning:** encryption hides the content, not the length. With
    /// compression, a secret in the session (a CSRF token, an API key) beside
    /// data an attacker can influence (a search term or form field stored in
    /// the session) can be guessed piece by piece from how the cookie's
    /// length changes, as in the CRIME and BREACH attacks. Enable it only for
    /// sessions that hold no such mix.
    pub fn encrypted_compression(mut self, compress: bool) -> Self {
        self.encrypted_compression = compress;
        self
    }

    /// `SESSION_STORE_URL`: where a server-side store lives, for example
    /// `sqlite:///var/lib/app/sessions.db` or `sqlite://sessions.db`.
    pub fn store_url(mut self, url: impl Into<String>) -> Self {
        self.store_url = Some(StoreUrl(url.into()));
        self
    }

    /// `SESSION_KEY_PREFIX` (Redis): every key starts with it (default
    /// `session:`, as in Flask-Session). On Redis Cluster (through a
    /// cluster-aware proxy: the store talks to one endpoint), put a hash tag
    /// in it, such as `{sessions}:`, so a store's keys share one slot.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// `SESSION_SERIALIZATION_FORMAT` (Redis): store sessions as Flask-Session
    /// 0.8 does, one msgpack or JSON value per session, so that a Flask app
    /// using Flask-Session shares them (see
    /// [`FlaskSessionRedisStore`](crate::store::FlaskSessionRedisStore) for
    /// what that costs). `None`, the default, keeps tessera's own layout.
    pub fn serialization_format(mut self, format: Option<SerializationFormat>) -> Self {
        self.serialization_format = format;
        self
    }

    /// `SESSION_PERMANENT` (server-side sessions, default true as in
    /// Flask-Session): new sessions are permanent.
    pub fn session_permanent(mut self, permanent: bool) -> Self {
        self.session_permanent = permanent;
        self.session_permanent_given = permanent;
        self
    }

    /// `SESSION_USE_SIGNER` (server-side sessions): sign the id in the cookie
    /// as Flask-Session does (`sid.signature`, salt `flask-session`).
    pub fn use_signer(mut self, sign: bool) -> Self {
        self.use_signer = sign;
        self
    }

    /// End server-side sessions this long after creation, however active
    /// (`TESSERA_SESSION_ABSOLUTE_LIFETIME`; `None`, the default: no bound
    /// but the idle lifetime). A session moved to a new id
    /// (`Session::cycle_id`, at login) keeps its creation time. From one
    /// second to [`MAX_LIFETIME_SECS`]; zero means none, as 0 does in the
    /// environment.
    pub fn absolute_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.absolute_lifetime = lifetime.filter(|lifetime| !lifetime.is_zero());
        self
    }

    /// The most sessions the memory store keeps (`TESSERA_MEMORY_STORE_MAX_SESSIONS`, at least
    /// 1).
    pub fn memory_max_sessions(mut self, max: usize) -> Self {
        self.memory_max_sessions = max;
        self
    }

    /// The most memory the memory store's sessions take, as it estimates
    /// it (`TESSERA_MEMORY_STORE_MAX_BYTES`, default 256 MiB, at least
    /// 4096); past it, the sessions closest to expiry are evicted (see
    /// [`MemoryStore::with_max_bytes`](crate::store::MemoryStore::with_max_bytes)).
    pub fn memory_max_bytes(mut self, max: usize) -> Self {
        self.memory_max_bytes = max;
        self
    }

    /// How often expired server-side sessions are swept (`TESSERA_SWEEP_INTERVAL`, default 60 s,
    /// at least 1 s).
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Checks the configuration; logs a warning for a weak key (or refuses
    /// it when strong keys are required).
    pub fn build(self) -> Result<SessionConfig, ConfigError> {
        self.check_network_store()?;
        let secret_key = self
            .secret_key
            .filter(|key| !key.as_bytes().is_empty())
            .ok_or(ConfigError::MissingSecretKey)?;
        if let Some(reason) = secret_key.weakness() {
            if self.require_strong_secret_key {
                return Err(ConfigError::WeakSecretKey { reason });
            }
            tracing::warn!(
                "SECRET_KEY is weak: {reason}; anyone who guesses it can forge sessions"
            );
        }
        if let Some(what) = unsplittable(secret_key.as_bytes()) {
            tracing::warn!(
                "SECRET_KEY {what}: it is used as given, as Flask uses it, but moved into \
                 a comma-separated SECRET_KEY_FALLBACKS for a key rotation it would not be \
                 the same key (blanks around each key are dropped, commas split keys) and \
                 every session would end; write SECRET_KEY_FALLBACKS as a JSON list then \
                 ([\"...\"]), which keeps each key exactly"
            );
        }
        // Fallbacks verify cookies as the key does: a weak one is as weak.
        for (index, key) in self.secret_key_fallbacks.iter().enumerate() {
            let position = index + 1;
            if key.as_bytes().is_empty() {
                return Err(ConfigError::EmptyFallbackKey { position });
            }
            if let Some(reason) = key.weakness() {
                if self.require_strong_secret_key {
                    return Err(ConfigError::WeakFallbackKey { position, reason });
                }
                tracing::warn!(
                    "key {position} of SECRET_KEY_FALLBACKS is weak: {reason}; while it is \
                     accepted, anyone who guesses it can forge sessions"
                );
            }
        }
        validate_cookie_name(&self.cookie_name)?;
        let (path_setting, cookie_path) = match &self.cookie_path {
            Some(path) => ("SESSION_COOKIE_PATH", path.clone()),
            None => ("APPLICATION_ROOT", self.application_root.clone()),
        };
        // Flask sends any path (quoted: a `;` goes as `%3B`), but browsers
        // take one without the leading `/` as no path at all, and scope the
        // cookie to the directory of each page that sets it.
        if !cookie_path.starts_with('/') {
            return Err(invalid(
                path_setting,
                &cookie_path,
                "a path starting with '/'",
            ));
        }
        if let Some(domain) = &self.cookie_domain {
            // Werkzeug sends an internationalised domain in its IDNA form;
            // a header cannot carry the raw characters.
            if !domain.is_ascii() {
                return Err(invalid(
                    "SESSION_COOKIE_DOMAIN",
                    domain,
                    "a domain name in ASCII: write an internationalised one in its IDNA \
                     (punycode) form, e.g. xn--bcher-kva.de for bücher.de, as Flask sends it",
                ));
            }
            // A control character makes every Set-Cookie an invalid header
            // (not sent, so every write lost); a quote, `=` or tab is sent
            // and the browser drops the cookie. A port is allowed: it is
            // dropped, as Werkzeug drops it.
            let domain_character = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
            if !domain.chars().all(domain_character) {
                return Err(invalid(
                    "SESSION_COOKIE_DOMAIN",
                    domain,
                    "a domain name: letters, digits, '-', '_' and '.', and perhaps a port",
                ));
            }
        }
        check_lifetime(
            "PERMANENT_SESSION_LIFETIME",
            self.permanent_session_lifetime,
            LIFETIME_EXPECTED,
        )?;
        if let Some(lifetime) = self.absolute_lifetime {
            check_lifetime(
                "TESSERA_SESSION_ABSOLUTE_LIFETIME",
                lifetime,
                ABSOLUTE_LIFETIME_EXPECTED,
            )?;
        }
        if self.session_type == SessionType::Sqlite {
            if !cfg!(feature = "sqlite") {
                return Err(invalid(
                    "SESSION_TYPE",
                    "sqlite",
                    "a type this build supports: tessera was built without its `sqlite` feature",
                ));
            }
            if let Some(url) = &self.store_url {
                if let Err(reason) = parse_sqlite_url(url) {
                    // A URL for another store usually means SESSION_TYPE was
                    // left at a default (the demo's is sqlite).
                    let scheme = url
                        .split_once("://")
                        .map(|(scheme, _)| scheme.to_ascii_lowercase());
                    let hint = match scheme.as_deref() {
                        Some("redis" | "rediss") => "; for a Redis store, set SESSION_TYPE=redis",
                        Some("postgres" | "postgresql") => {
                            "; for a PostgreSQL store, set SESSION_TYPE=postgres"
                        }
                        _ => "",
                    };
                    return Err(invalid(
                        "SESSION_STORE_URL",
                        &redact_password(url),
                        &format!(
                            "sqlite:///absolute/path.db or sqlite://relative/path.db ({reason}){hint}"
                        ),
                    ));
                }
                warn_if_named_undecoded(url);
            }
        }
        if self.store_url.is_some() {
            if !self.session_type_given {
                // Flask's default, cookies, would silently ignore the store.
                return Err(ConfigError::Inconsistent(
                    "SESSION_STORE_URL is set but SESSION_TYPE is not: set SESSION_TYPE to the \
                     store's type (sqlite, redis or postgres), or to cookie to keep sessions in \
                     cookies and not use the store"
                        .to_owned(),
                ));
            }
            if !matches!(
                self.session_type,
                SessionType::Sqlite | SessionType::Redis | SessionType::Postgres
            ) {
                tracing::warn!(
                    session_type = %self.session_type,
                    "SESSION_STORE_URL is set, but SESSION_TYPE keeps sessions elsewhere: \
                     the URL is not used"
                );
            }
        }
        if let (Some(format), false) = (
            self.serialization_format,
            self.session_type == SessionType::Redis,
        ) {
            return Err(invalid(
                "SESSION_SERIALIZATION_FORMAT",
                format.as_str(),
                "unset: only SESSION_TYPE=redis can store sessions in Flask-Session's format",
            ));
        }
        if self.max_payload_size < MIN_PAYLOAD_SIZE {
            return Err(invalid(
                "TESSERA_MAX_PAYLOAD_SIZE",
                &self.max_payload_size.to_string(),
                "at least 4096 bytes: sessions larger than this would be written but never read back",
            ));
        }
        if self.cookie_same_site == Some(SameSite::None)
            && !self.cookie_secure
            && !self.cookie_partitioned
        {
            tracing::warn!(
                "SESSION_COOKIE_SAMESITE=None without SESSION_COOKIE_SECURE=true: browsers \
                 refuse such cookies, so sessions will not last"
            );
        }
        if self.session_type == SessionType::Redis && self.key_prefix.is_empty() {
            tracing::warn!(
                "SESSION_KEY_PREFIX is empty: besides the sessions, tessera's index keys \
                 `expiry` and `user:<user id>` sit at the top of the Redis database, where \
                 keys of the same names that the application keeps would fail every save \
                 (another kind of value) or be changed (a set); give the sessions a \
                 database of their own"
            );
        }
        // Browsers keep a cookie whose name has one of these prefixes only
        // when it follows the prefix's rules (and match the prefix in any
        // case).
        let name = self.cookie_name.to_ascii_lowercase();
        let host = name.starts_with("__host-");
        if host || name.starts_with("__secure-") {
            let mut broken = Vec::new();
            if !(self.cookie_secure || self.cookie_partitioned) {
                broken.push("without SESSION_COOKIE_SECURE=true".to_owned());
            }
            if host && self.cookie_domain.is_some() {
                broken.push("with a SESSION_COOKIE_DOMAIN".to_owned());
            }
            if host && cookie_path != "/" {
                broken.push(format!(
                    "with the path {cookie_path} ({path_setting}), not /"
                ));
            }
            if !broken.is_empty() {
                tracing::warn!(
                    cookie = %self.cookie_name,
                    "browsers refuse the session cookie: its name's prefix does not allow it {}; \
                     sessions will not last",
                    broken.join(" or ")
                );
            }
        }
        if self.sweep_interval < Duration::from_secs(1) {
            // As set: whole seconds from the variable, any from the builder.
            let shown = if self.sweep_interval.is_zero() {
                "0".to_owned()
            } else {
                format!("{:?}", self.sweep_interval)
            };
            return Err(invalid(
                "TESSERA_SWEEP_INTERVAL",
                &shown,
                "at least one second",
            ));
        }
        if self.memory_max_sessions == 0 {
            return Err(invalid(
                "TESSERA_MEMORY_STORE_MAX_SESSIONS",
                "0",
                "a number of sessions, at least 1",
            ));
        }
        if self.memory_max_bytes < MEMORY_MAX_BYTES_LEAST {
            return Err(invalid(
                "TESSERA_MEMORY_STORE_MAX_BYTES",
                &self.memory_max_bytes.to_string(),
                MEMORY_MAX_BYTES_EXPECTED,
            ));
        }
        Ok(SessionConfig {
            secret_key,
            secret_key_fallbacks: self.secret_key_fallbacks,
            permanent_session_lifetime: Duration::from_secs(
                self.permanent_session_lifetime.as_secs(),
            ),
            cookie_name: self.cookie_name,
            cookie_domain: self.cookie_domain,
            cookie_path,
            cookie_http_only: self.cookie_http_only,
            cookie_secure: self.cookie_secure,
            cookie_same_site: self.cookie_same_site,
            cookie_partitioned: self.cookie_partitioned,
            refresh_each_request: self.refresh_each_request,
            max_cookie_size: self.max_cookie_size,
            session_type: self.session_type,
            salt: self.salt,
            refuse_oversized_cookies: self.refuse_oversized_cookies,
            max_payload_size: self.max_payload_size,
            encrypted_compression: self.encrypted_compression,
            store_url: self.store_url,
            key_prefix: self.key_prefix,
            serialization_format: self.serialization_format,
            session_permanent: self.session_permanent,
            session_permanent_given: self.session_permanent_given,
            use_signer: self.use_signer,
            absolute_lifetime: self.absolute_lifetime,
            memory_max_sessions: self.memory_max_sessions,
            memory_max_bytes: self.memory_max_bytes,
            sweep_interval: self.sweep_interval,
        })
    }
}

/// Every environment variable the configuration reads.
const SETTINGS: &[&str] = &[
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "PERMANENT_SESSION_LIFETIME",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "APPLICATION_ROOT",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_PARTITIONED",
    "SESSION_REFRESH_EACH_REQUEST",
    "MAX_COOKIE_SIZE",
    "SESSION_TYPE",
    "TESSERA_REQUIRE_STRONG_SECRET_KEY",
    "TESSERA_REFUSE_OVERSIZED_COOKIES",
    "TESSERA_MAX_PAYLOAD_SIZE",
    "TESSERA_ENCRYPTED_COMPRESSION",
    "SESSION_STORE_URL",
    "SESSION_KEY_PREFIX",
    "SESSION_SERIALIZATION_FORMAT",
    "SESSION_PERMANENT",
    "SESSION_USE_SIGNER",
    "TESSERA_SESSION_ABSOLUTE_LIFETIME",
    "TESSERA_MEMORY_STORE_MAX_SESSIONS",
    "TESSERA_MEMORY_STORE_MAX_BYTES",
    "TESSERA_SWEEP_INTERVAL",
];

/// The least `TESSERA_MEMORY_STORE_MAX_BYTES`: room for a session or so,
/// as the memory store estimates them; less would evict every other
/// session at each write.
const MEMORY_MAX_BYTES_LEAST: usize = crate::store::memory::MIN_MAX_BYTES;

const MEMORY_MAX_BYTES_EXPECTED: &str = "a number of bytes, at least 4096";

/// `SECRET_KEY_FALLBACKS` as written in the environment: comma-separated,
/// oldest first; whitespace around each key and empty entries are dropped.
/// A JSON list of strings (`["old-one", "old-two"]`, what Flask's
/// `app.config.from_prefixed_env()` reads) is taken as it is, each key
/// exactly as written, blanks and commas included.
///
/// A value that begins with `[` and is not such a list (a trailing comma,
/// Python's quotes) is refused: split on its commas, it would make keys of
/// its brackets and quotes, one of them perhaps a single `]` that anyone
/// can sign with, and the old key it was meant to hold would be lost.
pub fn parse_fallback_keys(value: &str) -> Result<Vec<SecretKey>, ConfigError> {
    if value.trim_start().starts_with('[') {
        return serde_json::from_str::<Vec<String>>(value)
            .map(|keys| keys.into_iter().map(SecretKey::from).collect())
            // The error's position only: its text may quote a key.
            .map_err(|error| ConfigError::MalformedFallbackList {
                column: error.column(),
            });
    }
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(SecretKey::from)
        .collect())
}

/// What keeps `key` from going through a comma-separated
/// `SECRET_KEY_FALLBACKS` unchanged, if anything.
fn unsplittable(key: &[u8]) -> Option<&'static str> {
    if key.first().is_some_and(u8::is_ascii_whitespace)
        || key.last().is_some_and(u8::is_ascii_whitespace)
    {
        Some("begins or ends with a blank or a line end (read from a file?)")
    } else if key.contains(&b',') {
        Some("holds a comma")
    } else {
        None
    }
}

impl SessionConfigBuilder {
    /// Redis and PostgreSQL need their feature and a parsable URL; nothing
    /// connects yet.
    fn check_network_store(&self) -> Result<(), ConfigError> {
        let feature_built = match self.session_type {
            SessionType::Redis => cfg!(feature = "redis"),
            SessionType::Postgres => cfg!(feature = "postgres"),
            _ => return Ok(()),
        };
        if !feature_built {
            let name = self.session_type.to_string();
            return Err(invalid(
                "SESSION_TYPE",
                &name,
                &format!(
                    "a type this build supports: tessera was built without its `{name}` feature"
                ),
            ));
        }
        let url = self.network_store_url();
        let parsed: Result<(), String> = match self.session_type {
            #[cfg(feature = "redis")]
            SessionType::Redis => crate::store::RedisStore::new(&url)
                .map(drop)
                .map_err(store_config_reason),
            #[cfg(feature = "postgres")]
            SessionType::Postgres => crate::store::PostgresStore::new(&url)
                .map(drop)
                .map_err(store_config_reason),
            _ => Ok(()),
        };
        parsed.map_err(|reason| ConfigError::InvalidStoreUrl {
            value: redact_password(&url),
            reason,
        })
    }

    fn network_store_url(&self) -> String {
        self.store_url
            .as_deref()
            .map_or_else(|| default_store_url(self.session_type), str::to_owned)
    }
}

/// `SESSION_STORE_URL`: `Debug` (of the configuration, the builder and the
/// layer) shows it with any password replaced by `***`.
#[derive(Clone)]
pub(crate) struct StoreUrl(String);

impl std::ops::Deref for StoreUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_password(&self.0), f)
    }
}

/// A URL with any password replaced by `***`, for messages and logs.
pub(crate) fn redact_password(url: &str) -> String {
    if !url.contains("://") {
        // PostgreSQL's keyword form: `host=… password=…`; or a URL with a
        // typo in its scheme (`redis:/:pw@host`), whose user information,
        // up to the last `@`, may hold a password.
        let redacted = redact_keyword_secrets(&redact_query_secrets(url));
        return match redacted.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => redacted,
        };
    }
    // Query parameters first, over the whole URL: a `password=` value may
    // hold an `@` too, which the step below would take for the end of the
    // user information.
    let url = redact_query_secrets(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    // The user information ends at the last `@`: a password pasted without
    // percent-encoding may hold `@`, `/`, `?` or `#` (base64 ones hold `/`).
    // An `@` in a path or query makes this hide more than the password,
    // which is harmless; hiding less would not be.
    let (shown, after) = match rest.rsplit_once('@') {
        // A clean user name is shown; anything else before the `@` is not
        // one, and may hold a password's pieces.
        Some((userinfo, after)) if !userinfo.contains(['/', '?', '#']) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let password = if userinfo.contains(':') { ":***" } else { "" };
            (format!("{user}{password}@"), after)
        }
        Some((_, after)) => ("***@".to_owned(), after),
        None => (String::new(), rest),
    };
    // A fragment means nothing to a store; one may be a password's tail.
    let after = match after.split_once('#') {
        Some((before, _)) => format!("{before}#***"),
        None => after.to_owned(),
    };
    format!("{scheme}://{shown}{after}")
}

/// Why URL parsers would misread a store URL, if they would: a `%` that
/// starts no escape, or an `@` after a `/`, `?` or `#` (a user name or
/// password holding one of those without percent-encoding, which parsers
/// split differently: a part of the password taken for the host or a
/// parameter, and shown or logged as one). Checked before any parser sees
/// the URL.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn store_url_misread(url: &str) -> Option<&'static str> {
    let (_, rest) = url.split_once("://")?;
    // A `%` must start an escape: parsers keep a bare one as it is, so a
    // host such as `%%%` was accepted, and failed at the first request.
    let bytes = rest.as_bytes();
    let bad_escape = bytes.iter().enumerate().any(|(at, &byte)| {
        byte == b'%'
            && !(bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit))
    });
    if bad_escape {
        return Some(
            "it has a `%` that starts no `%XX` escape: a `%` in a user name or \
             password must be written `%25`",
        );
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[authority_end..].contains('@').then_some(
        "it has an `@` after a `/`, `?` or `#`: a user name or password holding \
         `/`, `?` or `#` must be percent-encoded (`%2F`, `%3F`, `%23`), and so must \
         an `@` in the path or the query (`%40`)",
    )
}

/// PostgreSQL's keyword form (`host=db password='a b'`) with the values of
/// secret keywords replaced by `***`; a quoted value (libpq's `'…'`, with
/// `\'` and `\\` escapes) is replaced whole.
fn redact_keyword_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let blanks = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..blanks]);
        rest = &rest[blanks..];
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after_name = &rest[name_end..];
        let Some(value) = after_name.trim_start().strip_prefix('=') else {
            out.push_str(name);
            rest = after_name;
            continue;
        };
        let value = value.trim_start();
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut escaped = false;
            quoted
                .char_indices()
                .find(|&(_, c)| {
                    let closes = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    closes
                })
                .map_or(value.len(), |(at, _)| at + 2)
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        let whole = rest.len() - value.len() + value_len;
        if is_secret_name(name) {
            out.push_str(name);
            out.push_str("=***");
        } else {
            out.push_str(&rest[..whole]);
        }
        rest = &rest[whole..];
    }
    out
}

/// `url` with the values of query parameters that carry secrets
/// (`password=`, `pass=`, `secret…`, `…token…`, as PostgreSQL and Redis URLs
/// may) replaced by `***`.
pub(crate) fn redact_query_secrets(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = query
        .split_once('#')
        .map_or((query, None), |(q, f)| (q, Some(f)));
    let parameters: Vec<String> = query
        .split('&')
        .map(|parameter| {
            let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            let decoded = parameter_name(name);
            if decoded.contains('=') {
                // An escaped `=` puts a value in the name (`password%3D…`).
                "***".to_owned()
            } else if is_plain_name(&decoded) && !shows_value(name, value) {
                format!("{name}=***")
            } else {
                // Shown, or no name at all: the user information of a
                // URL whose password holds a `?` (the `@` step hides it).
                parameter.to_owned()
            }
        })
        .collect();
    let mut redacted = format!("{base}?{}", parameters.join("&"));
    if let Some(fragment) = fragment {
        redacted.push('#');
        redacted.push_str(fragment);
    }
    redacted
}

/// The query parameters of a PostgreSQL URL that sqlx reads (besides
/// `options[…]`); it logs any other with its value, so the store refuses
/// them.
pub(crate) const POSTGRES_URL_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// Whether a query parameter of a store URL has its value shown in
/// messages (when plain): one the drivers read that carries no secret (of
/// PostgreSQL's, all but `password`; Redis' `db` and `protocol`; SQLite's
/// `mode`). Any other may be a secret under a name no one expected (`pwd=`,
/// a mistyped `pasword=`), and is hidden.
fn is_shown_parameter(name: &str) -> bool {
    (POSTGRES_URL_PARAMETERS.contains(&name) && name != "password")
        || ["db", "protocol", "mode"].contains(&name)
}

/// Whether a query parameter's value may be shown: a known name, and a
/// value without the separators a pasted parameter would bring along
/// (`sslmode=disable;pwd=…`).
fn shows_value(name: &str, value: &str) -> bool {
    is_shown_parameter(&parameter_name(name))
        && !parameter_name(value).contains([';', '=', '&', '?', '#', '@', ' '])
}

/// A name of letters, digits, `_` and `-` only.
pub(crate) fn is_plain_name(name: &str) -> bool {
    name.bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"_-".contains(&byte))
}

/// `text` (a driver's message about `url`) with the values that
/// [`redact_query_secrets`] hides cut out, raw or decoded.
#[cfg(any(feature = "postgres", test))]
pub(crate) fn without_query_values(text: &str, url: &str) -> String {
    let Some((_, query)) = url.split_once('?') else {
        return text.to_owned();
    };
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    let mut text = text.to_owned();
    for parameter in query.split('&') {
        let (name, value) = parameter.split_once('=').unwrap_or(("", parameter));
        if value.is_empty() || shows_value(name, value) {
            continue;
        }
        for hidden in [value.to_owned(), parameter_name(value).into_owned()] {
            if !hidden.is_empty() {
                text = text.replace(&hidden, "***");
            }
        }
    }
    text
}

/// A URL parameter's name as URL parsers read it, escapes decoded:
/// `p%61ssword` is `password` to them.
pub(crate) fn parameter_name(name: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(name).decode_utf8_lossy()
}

/// Whether a URL parameter of this name (escapes decoded) carries a secret.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("pass") || name.contains("secret") || name.contains("token")
}

/// Flask-Session's default for Redis; PostgreSQL's default local database.
fn default_store_url(session_type: SessionType) -> String {
    match session_type {
        SessionType::Postgres => "postgres://localhost/tessera".to_owned(),
        _ => "redis://127.0.0.1:6379/0".to_owned(),
    }
}

const LIFETIME_EXPECTED: &str = "a whole number of seconds, from 1 to 3153600000 (36500 days)";
const ABSOLUTE_LIFETIME_EXPECTED: &str =
    "0 (none) or a whole number of seconds, at most 3153600000 (36500 days)";

/// At least a second (whole seconds count) and at most [`MAX_LIFETIME_SECS`].
fn check_lifetime(
    name: &'static str,
    lifetime: Duration,
    expected: &str,
) -> Result<(), ConfigError> {
    if (1..=MAX_LIFETIME_SECS).contains(&lifetime.as_secs()) {
        return Ok(());
    }
    let value = if lifetime.subsec_nanos() == 0 {
        lifetime.as_secs().to_string()
    } else {
        format!("{lifetime:?}")
    };
    Err(invalid(name, &value, expected))
}

/// What a store refused in its URL, without the "invalid configuration"
/// wrapper (the message says "expected …" already).
#[cfg(any(feature = "redis", feature = "postgres"))]
fn store_config_reason(error: crate::store::StoreError) -> String {
    match error {
        crate::store::StoreError::Config(reason) => reason.to_string(),
        other => other.to_string(),
    }
}

fn invalid(name: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::InvalidValue {
        name,
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

fn parse_var<T: FromStr>(
    name: &'static str,
    value: &str,
    expected: &str,
) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(name, value, expected))
}

/// A whole number of seconds, also written as a decimal with a zero
/// fraction (`60.0`): Flask's `from_prefixed_env` reads its variables as
/// JSON and takes the float `60.0` as 60 seconds, so that value, written
/// for a Flask app, reads the same here. A fraction that is not zero is
/// refused rather than rounded (and so is an exponent, `6e1`, which Flask
/// would take).
fn parse_seconds(name: &'static str, value: &str, expected: &str) -> Result<u64, ConfigError> {
    let trimmed = value.trim();
    let whole = match trimmed.split_once('.') {
        Some((whole, fraction))
            if !whole.is_empty()
                && whole.bytes().all(|byte| byte.is_ascii_digit())
                && !fraction.is_empty()
                && fraction.bytes().all(|byte| byte == b'0') =>
        {
            whole
        }
        _ => trimmed,
    };
    parse_var(name, whole, expected).map_err(|_| invalid(name, value, expected))
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(invalid(name, value, "true, false, 1 or 0")),
    }
}

/// Whether `name` can be a cookie name: an RFC 6265 token, visible ASCII
/// without separators.
pub fn is_valid_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fn validate_cookie_name(name: &str) -> Result<(), ConfigError> {
    if is_valid_cookie_name(name) {
        Ok(())
    } else {
        Err(invalid(
            "SESSION_COOKIE_NAME",
            name,
            "a cookie name token (letters, digits, - _ . ! etc.)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef-test";

    #[test]
    fn defaults_are_flasks() {
        let config = SessionConfig::builder()
            .secret_key(KEY)
            .build()
            .expect("valid");
        assert_eq!(
            config.permanent_session_lifetime(),
            Duration::from_secs(2_678_400)
        );
        assert_eq!(config.cookie_name(), "session");
        assert_eq!(config.cookie_domain(), None);
        assert_eq!(config.cookie_path(), "/");
        assert!(config.cookie_http_only());
        assert!(!config.cookie_secure());
        assert_eq!(config.cookie_same_site(), None);
        assert!(!config.cookie_partitioned());
        assert!(config.refresh_each_request());
        assert_eq!(config.max_cookie_size(), 4093);
        assert_eq!(config.session_type(), SessionType::Cookie);
    }

    #[test]
    fn reads_flask_names() {
        let vars = [
            ("SECRET_KEY", KEY),
            ("SECRET_KEY_FALLBACKS", "old-one, old-two"),
            ("PERMANENT_SESSION_LIFETIME", "60"),
            ("SESSION_COOKIE_NAME", "sid"),
            ("SESSION_COOKIE_DOMAIN", "example.com"),
            ("SESSION_COOKIE_PATH", "/app"),
            ("SESSION_COOKIE_HTTPONLY", "false"),
            ("SESSION_COOKIE_SECURE", "1"),
            ("SESSION_COOKIE_SAMESITE", "lax"),
            ("SESSION_COOKIE_PARTITIONED", "0"),
            ("SESSION_REFRESH_EACH_REQUEST", "False"),
            ("MAX_COOKIE_SIZE", "1000"),
            ("SESSION_TYPE", "cookie"),
            ("UNRELATED", "whatever"),
        ];
        let config = SessionConfigBuilder::default()
            .with_vars(vars)
            .and_then(SessionConfigBuilder::build)
            .expect("valid");
        assert_eq!(
            config.secret_key_fallbacks,
            vec![SecretKey::from("old-one"), SecretKey::from("old-two")]
        );
        assert_eq!(config.permanent_session_lifetime(), Duration::from_secs(60));
        assert_eq!(config.cookie_name(), "sid");
        assert_eq!(config.cookie_domain(), Some("example.com"));
        assert_eq!(config.cookie_path(), "/app");
        assert!(!config.cookie_http_only());
        assert!(config.cookie_secure());
        assert_eq!(config.cookie_same_site(), Some(SameSite::Lax));
        assert!(!config.refresh_each_request());
        assert_eq!(config.max_cookie_size(), 1000);
    }

    #[test]
    fn invalid_values_name_the_setting() {
        for (name, value) in [
            ("SESSION_COOKIE_SAMESITE", "invalid"),
            ("SESSION_COOKIE_SECURE", "yes please"),
            ("PERMANENT_SESSION_LIFETIME", "31 days"),
            ("MAX_COOKIE_SIZE", "-1"),
            ("SESSION_TYPE", "mongodb"),
        ] {
            let err = SessionConfigBuilder::default()
                .with_vars([(name, value)])
                .expect_err("refused");
            let message = err.to_string();
            assert!(
                message.contains(name) && message.contains(value),
                "{message}"
            );
        }
        let err = SessionConfig::builder().build().expect_err("no key");
        assert!(matches!(err, ConfigError::MissingSecretKey));
        // A URL of another store where SQLite's is expected names the fix.
        #[cfg(feature = "sqlite")]
        {
            let err = SessionConfigBuilder::default()
                .with_vars([
                    ("SECRET_KEY", KEY),
                    ("SESSION_TYPE", "sqlite"),
                    ("SESSION_STORE_URL", "redis://:pw@127.0.0.1:6379/0"),
                ])
                .and_then(SessionConfigBuilder::build)
                .expect_err("not an SQLite URL");
            let message = err.to_string();
            assert!(message.ends_with("set SESSION_TYPE=redis"), "{message}");
            assert!(!message.contains("pw"), "{message}");
        }

        // Empty counts as unset, but for the key prefix, where Flask-Session
        // takes an empty one as no prefix: tessera must find its keys.
        let prefix = |value: &str| {
            SessionConfigBuilder::default()
                .with_vars([
                    ("SECRET_KEY", KEY),
                    ("SESSION_COOKIE_NAME", ""),
                    ("SESSION_KEY_PREFIX", value),
                ])
                .and_then(SessionConfigBuilder::build)
                .expect("valid")
        };
        assert_eq!(prefix("").key_prefix(), "");
        assert_eq!(prefix(" ").key_prefix(), " ");
        assert_eq!(prefix("app:").key_prefix(), "app:");
        assert_eq!(prefix("").cookie_name(), "session");

        // Flask's cookie path: SESSION_COOKIE_PATH, else APPLICATION_ROOT.
        let path = |vars: &[(&str, &str)]| {
            SessionConfigBuilder::default()
                .with_vars([("SECRET_KEY", KEY)].iter().chain(vars).copied())
                .and_then(SessionConfigBuilder::build)
                .map(|config| config.cookie_path().to_owned())
        };
        assert_eq!(path(&[]).expect("valid"), "/");
        assert_eq!(
            path(&[("APPLICATION_ROOT", "/app")]).expect("valid"),
            "/app"
        );
        let both = [("SESSION_COOKIE_PATH", "/"), ("APPLICATION_ROOT", "/app")];
        assert_eq!(path(&both).expect("valid"), "/");
        let both = [("APPLICATION_ROOT", "/app"), ("SESSION_COOKIE_PATH", "/x")];
        assert_eq!(path(&both).expect("valid"), "/x");
        let err = path(&[("APPLICATION_ROOT", "app")]).expect_err("no leading slash");
        assert!(
            err.to_string()
                .starts_with("invalid APPLICATION_ROOT=\"app\""),
            "{err}"
        );
        let config = SessionConfig::builder()
            .secret_key(KEY)
            .application_root("/app")
            .cookie_path("")
            .build()
            .expect("valid");
        assert_eq!(
            config.cookie_path(),
            "/app",
            "an empty path is unset, as in Flask"
        );

        // Flask has no sessions with an empty key; with one anyone could sign.
        assert!(!SessionConfig::builder().secret_key("").has_secret_key());
        assert!(SessionConfig::builder().secret_key(" ").has_secret_key());
        let err = SessionConfig::builder()
            .secret_key("")
            .build()
            .expect_err("empty key");
        assert!(matches!(err, ConfigError::MissingSecretKey));
        let err = SessionConfig::builder()
            .secret_key(KEY)
            .secret_key_fallbacks([KEY, ""])
            .build()
            .expect_err("empty fallback");
        assert!(matches!(err, ConfigError::EmptyFallbackKey { position: 2 }));
        assert!(
            err.to_string().contains("key 2 of SECRET_KEY_FALLBACKS"),
            "{err}"
        );
        let err = SessionConfig::builder()
            .secret_key(KEY)
            .cookie_name("a b")
            .build();
        assert!(err.is_err());
    }

    #[test]
    fn settings_that_cannot_work_are_refused_with_what_to_do() {
        let build = |vars: &[(&str, &str)]| {
            SessionConfigBuilder::default()
                .with_vars(vars.iter().copied().chain([("SECRET_KEY", KEY)]))
                .and_then(SessionConfigBuilder::build)
        };
        // A store, but no type: Flask's default (cookies) would ignore it.
        let error =
            build(&[("SESSION_STORE_URL", "sqlite://sessions.db")]).expect_err("no SESSION_TYPE");
        assert!(matches!(error, ConfigError::Inconsistent(_)), "{error}");
        assert!(error.to_string().contains("SESSION_TYPE"), "{error}");
        let with_type = build(&[
            ("SESSION_STORE_URL", "sqlite://sessions.db"),
            ("SESSION_TYPE", "sqlite"),
        ]);
        if cfg!(feature = "sqlite") {
            assert!(with_type.is_ok(), "{with_type:?}");
        } else {
            let error = with_type.expect_err("built without the sqlite feature");
            assert!(error.to_string().contains("feature"), "{error}");
        }
        assert!(build(&[
            ("SESSION_STORE_URL", "sqlite://sessions.db"),
            ("SESSION_TYPE", "cookie")
        ])
        .is_ok());
        let error = build(&[("TESSERA_MEMORY_STORE_MAX_SESSIONS", "0")]).expect_err("zero");
        assert!(error.to_string().contains("at least 1"), "{error}");
        for bytes in ["0", "4095", "lots", "-1"] {
            let error = build(&[("TESSERA_MEMORY_STORE_MAX_BYTES", bytes)]).expect_err(bytes);
            assert!(
                error.to_string().contains("TESSERA_MEMORY_STORE_MAX_BYTES")
                    && error.to_string().contains("at least 4096"),
                "{bytes}: {error}"
            );
        }
        let config = build(&[("TESSERA_MEMORY_STORE_MAX_BYTES", "4096")]).expect("the least");
        assert_eq!(config.memory_max_bytes, 4096);
        assert_eq!(
            build(&[]).expect("defaults").memory_max_bytes,
            crate::store::memory::DEFAULT_MAX_BYTES
        );
        // The builder's setters are held to the same bounds as the variables.
        let builder = || SessionConfig::builder().secret_key("k".repeat(32));
        let error = builder()
            .memory_max_sessions(0)
            .build()
            .expect_err("no room for a session");
        assert!(error.to_string().contains("at least 1"), "{error}");
        for interval in [Duration::ZERO, Duration::from_millis(999)] {
            let error = builder()
                .sweep_interval(interval)
                .build()
                .expect_err("under a second");
            assert!(error.to_string().contains("at least one second"), "{error}");
        }
        assert!(builder()
            .sweep_interval(Duration::from_secs(1))
            .build()
            .is_ok());
        #[cfg(feature = "postgres")]
        {
            let error = build(&[
                ("SESSION_TYPE", "postgres"),
                ("SESSION_STORE_URL", "http://x"),
            ])
            .expect_err("not a PostgreSQL URL");
            assert_eq!(
                error.to_string(),
                "invalid SESSION_STORE_URL=\"http://x\": not a PostgreSQL session store URL: it \
                 does not start with postgres://; expected postgres://user:password@host:port/database"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_variables() {
        use std::os::unix::ffi::OsStringExt as _;
        let vars = vec![
            (OsString::from("SECRET_KEY"), OsString::from(KEY)),
            (OsString::from("UNRELATED"), OsString::from_vec(vec![0xff])),
        ];
        let builder = SessionConfigBuilder::default()
            .with_vars_os(vars)
            .expect("unrelated is skipped");
        assert!(builder.has_secret_key());
        let vars = vec![(
            OsString::from("SESSION_COOKIE_NAME"),
            OsString::from_vec(vec![0xff]),
        )];
        let err = SessionConfigBuilder::default()
            .with_vars_os(vars)
            .expect_err("a setting");
        assert!(err.to_string().contains("SESSION_COOKIE_NAME"), "{err}");
        // A key is named, never shown, even when it cannot be read.
        for name in ["SECRET_KEY", "SECRET_KEY_FALLBACKS"] {
            let mut value = b"do-not-leak-".to_vec();
            value.push(0xff);
            let err = SessionConfigBuilder::default()
                .with_vars_os([(OsString::from(name), OsString::from_vec(value))])
                .expect_err("not UTF-8");
            let message = err.to_string();
            assert!(message.contains(name), "{message}");
            assert!(!message.contains("do-not-leak"), "{message}");
            assert!(!format!("{err:?}").contains("do-not-leak"), "{err:?}");
        }
    }

    #[test]
    fn cookie_domains_are_ascii_domain_names() {
        let build = |domain: &str| {
            SessionConfigBuilder::default()
                .with_vars([("SECRET_KEY", KEY), ("SESSION_COOKIE_DOMAIN", domain)])
                .and_then(SessionConfigBuilder::build)
        };
        build("xn--bcher-kva.de").expect("the IDNA form");
        // No domain, as Flask reads them: a host-only cookie, not
        // `Domain=false`, which browsers refuse.
        for none in ["false", "null", "None", " FALSE "] {
            assert_eq!(build(none).expect(none).cookie_domain(), None, "{none}");
        }
        let message = build("bücher.de").expect_err("not ASCII").to_string();
        assert!(message.contains("xn--bcher-kva.de"), "{message}");
        for domain in [
            ".shop.example",
            "example.com:8080",
            "a_b.example",
            "127.0.0.1",
        ] {
            build(domain).expect(domain);
        }
        for domain in [
            "a.com\r\nX-Injected: 1",
            "a.com\tb",
            "a.com\u{1}",
            "a.com\u{7f}",
            "a.com\"",
            "a=b.com",
            "a.com;b",
            "a.com b",
            "a.com,b",
            "[::1]",
        ] {
            let message = build(domain).expect_err(domain).to_string();
            assert!(
                message.contains("SESSION_COOKIE_DOMAIN") && message.contains("a domain name"),
                "{message}"
            );
            assert!(!message.contains(['\r', '\n', '\t']), "{message}");
        }
    }

    #[test]
    fn payload_bound_is_at_least_4096() {
        let build = |value: &str| {
            SessionConfigBuilder::default()
                .with_vars([("SECRET_KEY", KEY), ("TESSERA_MAX_PAYLOAD_SIZE", value)])
                .and_then(SessionConfigBuilder::build)
        };
        build("4096").expect("the smallest bound");
        for value in ["0", "100", "4095"] {
            let message = build(value).expect_err(value).to_string();
            assert!(
                message.contains("TESSERA_MAX_PAYLOAD_SIZE") && message.contains("at least 4096"),
                "{message}"
            );
        }
    }

    #[test]
    fn lifetimes_are_bounded_at_startup() {
        let build = |name: &str, value: &str| {
            SessionConfigBuilder::default()
                .with_vars([("SECRET_KEY", KEY), (name, value)])
                .and_then(SessionConfigBuilder::build)
        };
        let longest = MAX_LIFETIME_SECS.to_string();
        for name in [
            "PERMANENT_SESSION_LIFETIME",
            "TESSERA_SESSION_ABSOLUTE_LIFETIME",
        ] {
            build(name, &longest).expect("the longest lifetime");
            for value in [
                (MAX_LIFETIME_SECS + 1).to_string(),
                "252000000000".to_owned(),
                u64::MAX.to_string(),
                "99999999999999999999".to_owned(),
                "-1".to_owned(),
            ] {
                let message = build(name, &value).expect_err(&value).to_string();
                assert!(
                    message.contains(name) && message.contains(&value),
                    "{message}"
                );
                assert!(message.contains("36500 days"), "{message}");
            }
        }
        let message = build("PERMANENT_SESSION_LIFETIME", "0")
            .expect_err("zero")
            .to_string();
        assert!(message.contains("\"0\""), "{message}");
        // Flask reads `FLASK_PERMANENT_SESSION_LIFETIME=60.0` as JSON, the
        // float 60.0, and takes it as 60 seconds; so does tessera. A
        // fraction is refused, not rounded.
        for (value, seconds) in [("60.0", 60), (" 3600.000 ", 3600), ("60", 60)] {
            let config = build("PERMANENT_SESSION_LIFETIME", value).expect(value);
            assert_eq!(
                config.permanent_session_lifetime(),
                Duration::from_secs(seconds)
            );
            let config = build("TESSERA_SESSION_ABSOLUTE_LIFETIME", value).expect(value);
            assert_eq!(
                config.absolute_lifetime(),
                Some(Duration::from_secs(seconds))
            );
        }
        build("PERMANENT_SESSION_LIFETIME", "0.0").expect_err("zero");
        let sweep = build("TESSERA_SWEEP_INTERVAL", "30.0").expect("30.0");
        assert_eq!(sweep.sweep_interval(), Duration::from_secs(30));
        for value in [
            "60.5", ".0", "60.", "1e3", "60.0.0", "-60.0", "60.0s", "60 .0", "+60.0",
        ] {
            let message = build("PERMANENT_SESSION_LIFETIME", value)
                .expect_err(value)
                .to_string();
            assert!(
                message.contains("PERMANENT_SESSION_LIFETIME")
                    && message.contains(&format!("{value:?}")),
                "{message}"
            );
        }
        // The builder's durations are checked the same way.
        for lifetime in [
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_secs(MAX_LIFETIME_SECS + 1),
            Duration::MAX,
        ] {
            SessionConfig::builder()
                .secret_key(KEY)
                .permanent_session_lifetime(lifetime)
                .build()
                .expect_err("out of range");
            if lifetime.is_zero() {
                continue;
            }
            SessionConfig::builder()
                .secret_key(KEY)
                .absolute_lifetime(Some(lifetime))
                .build()
                .expect_err("out of range");
        }
        // Zero is no bound, as 0 is in the environment, not an error.
        let unbounded = SessionConfig::builder()
            .secret_key(KEY)
            .absolute_lifetime(Some(Duration::ZERO))
            .build()
            .expect("zero is none");
        assert_eq!(unbounded.absolute_lifetime(), None);
    }

    #[cfg(any(feature = "redis", feature = "postgres"))]
    #[test]
    fn misread_store_urls_are_found_before_any_parser_sees_them() {
        for url in [
            "redis://:Pa55/wordZ@127.0.0.1:6379/0",
            "redis://:Pa55@w/ord@h/0",
            "redis://u:Pa55@w?ord@h/0",
            "postgres://u:Pg?pass@h:5432/db?application_name=x",
            "postgres://u:Pg#pass@h/db",
            "redis://u:p@h:1/0?x=@",
            "postgres://%%%/db",
            "redis://:50%off@h/0",
            "redis://:p%2@h/0",
        ] {
            assert!(store_url_misread(url).is_some(), "{url}");
        }
        for url in [
            "redis://:Pa55%2FwordZ@127.0.0.1:6379/0",
            "redis://:50%25off@h/0",
            "redis://:p@ss@h/0",
            "postgres://u:p@h:5432/db?sslmode=disable",
            "redis+unix:///tmp/r.sock?db=1",
            "redis://h/0",
            "sqlite:///tmp/x.db",
            "host=db password=x",
        ] {
            assert!(store_url_misread(url).is_none(), "{url}");
        }
    }

    #[test]
    fn passwords_are_redacted_from_messages() {
        assert_eq!(
            redact_password("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact_password("redis://:hunter2@cache/0"),
            "redis://:***@cache/0"
        );
        assert_eq!(
            redact_password("redis://cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(
            redact_password("postgres://app@db/x"),
            "postgres://app@db/x"
        );
        // Passwords in the query string too, as PostgreSQL and redis+unix
        // URLs may carry them.
        assert_eq!(
            redact_password("postgres://u@host/db?sslmode=disable&password=S3CRET"),
            "postgres://u@host/db?sslmode=disable&password=***"
        );
        assert_eq!(
            redact_password("redis+unix:///tmp/r.sock?db=1&pass=S3CRET#x"),
            "redis+unix:///tmp/r.sock?db=1&pass=***#***"
        );
        assert_eq!(
            redact_password("host=db port=5432 user=u password=S3CRET"),
            "host=db port=5432 user=u password=***"
        );
        assert_eq!(
            redact_password("sqlite:///tmp/x.db?password=S3CRET"),
            "sqlite:///tmp/x.db?password=***"
        );
        // A parameter's name escaped, as parsers decode it.
        assert_eq!(
            redact_password("postgres://u@h/db?p%61ssword=S3CRET&sslp%61ssword=S3CRET"),
            "postgres://u@h/db?p%61ssword=***&sslp%61ssword=***"
        );
        // A typo in the scheme: not a URL to parsers, and the user
        // information still holds the password.
        for url in [
            "redis:/:S3CRET@127.0.0.1:6379/0",
            "postgres:/app:S3CRET@db:5432/x",
            "postgres//app:S3CRET@db:5432/x",
            "app:S3CRET@db:5432/x",
            ":S3CRET@127.0.0.1:6379/0",
            "sqlite:/:S3C@RET@x.db",
        ] {
            let redacted = redact_password(url);
            assert!(!redacted.contains("S3C"), "{url}: {redacted}");
            assert!(redacted.starts_with("***@"), "{url}: {redacted}");
        }
        assert_eq!(
            redact_password("host=db user=u password='p@ss word'"),
            "host=db user=u password=***"
        );
        assert_eq!(
            redact_password("redis:/h/0?p%61ssword=S3CRET&db=1"),
            "redis:/h/0?p%61ssword=***&db=1"
        );
        // Parameters the drivers do not read may be secrets under another
        // name; a known one with a pasted parameter in its value too.
        assert_eq!(
            redact_password(
                "postgres://u@h/db?pwd=S3CRET&pasword=S3CRET&password%3DS3CRET&sslmode=disable;pwd=S3CRET&application_name=app"
            ),
            "postgres://u@h/db?pwd=***&pasword=***&***&sslmode=***&application_name=app"
        );
        assert_eq!(
            without_query_values(
                "unknown value \"disable;pwd=S3CRET\" for ssl_mode",
                "postgres://u@h/db?sslmode=disable;pwd=S3CRET&application_name=app"
            ),
            "unknown value \"***\" for ssl_mode"
        );
        // Passwords pasted without percent-encoding (base64 ones hold `/`).
        for (url, redacted) in [
            (
                "redis://:Pa55/wordZ@127.0.0.1:6379/0",
                "redis://***@127.0.0.1:6379/0",
            ),
            ("redis://:Pa55?word@h:1/0", "redis://***@h:1/0"),
            ("redis://:Pa55#word@h:1/0", "redis://***@h:1/0"),
            (
                "postgres://u:Pg/pa@ss@db:5432/x",
                "postgres://***@db:5432/x",
            ),
            // A parameter no driver reads is hidden, an `@` in it too.
            ("redis://u:p@h:1/0?x=@", "redis://u:***@h:1/0?x=***"),
            (
                "redis://:PW@w/Zq@127.0.0.1:6379/0",
                "redis://***@127.0.0.1:6379/0",
            ),
            (
                "postgres://127.0.0.1/db?password=se@cret",
                "postgres://127.0.0.1/db?password=***",
            ),
            (
                "postgres://u:p@h/db?password=se@cret",
                "postgres://u:***@h/db?password=***",
            ),
            (
                "postgres:///db?user=u&password=se@cr/et",
                "postgres:///db?user=u&password=***",
            ),
            (
                "postgres://u:Pg?pa@x/y@db:5432/s?application_name=a",
                "postgres://***@db:5432/s?application_name=a",
            ),
            ("redis://h/0?x=@", "redis://h/0?x=***"),
            // A known parameter whose value holds a separator is hidden too.
            ("redis://u:p@h:1/0?db=@", "redis://u:***@h:1/0?db=***"),
        ] {
            assert_eq!(redact_password(url), redacted, "{url}");
        }
        assert_eq!(
            redact_password(r"host=db password='PW kw \' quoted 12' user=u passfile = /x"),
            "host=db password=*** user=u passfile=***"
        );
    }

    #[test]
    fn network_stores_are_checked_at_startup() {
        for (session_type, feature_built) in [
            ("redis", cfg!(feature = "redis")),
            ("postgres", cfg!(feature = "postgres")),
        ] {
            let err = SessionConfigBuilder::default()
                .with_vars([
                    ("SECRET_KEY", KEY),
                    ("SESSION_TYPE", session_type),
                    ("SESSION_STORE_URL", "mysql://somewhere/else"),
                ])
                .and_then(SessionConfigBuilder::build)
                .expect_err("refused");
            let message = err.to_string();
            if feature_built {
                assert!(message.contains("SESSION_STORE_URL"), "{message}");
            } else {
                assert!(message.contains("feature"), "{message}");
            }
        }
    }

    #[test]
    fn unknown_names_say_what_is_accepted() {
        let error = "LAXX".parse::<SameSite>().expect_err("unknown");
        assert_eq!(error.name(), "LAXX");
        assert_eq!(error.expected(), ["Strict", "Lax", "None"]);
        assert_eq!(
            error.to_string(),
            "unknown SameSite value \"LAXX\"; expected one of Strict, Lax, None"
        );
        for name in SameSite::NAMES {
            let parsed: SameSite = name
                .to_ascii_lowercase()
                .parse()
                .expect("every name parses");
            assert_eq!(parsed.to_string(), *name);
        }

        let error = "postgre".parse::<SessionType>().expect_err("unknown");
        assert_eq!(error.name(), "postgre");
        assert_eq!(error.expected(), SessionType::NAMES);
        let source: &dyn std::error::Error = &error;
        assert!(source.to_string().contains("postgres"));
    }

    #[test]
    fn encrypted_cookies_are_a_session_type() {
        assert_eq!("encrypted".parse(), Ok(SessionType::EncryptedCookie));
        assert_eq!(
            " Encrypted ".trim().parse(),
            Ok(SessionType::EncryptedCookie)
        );
        assert_eq!(SessionType::EncryptedCookie.to_string(), "encrypted");
        assert!(SessionType::NAMES.contains(&"encrypted"));
        assert!(!SessionType::EncryptedCookie.is_server_side());
        assert!(!SessionType::Cookie.is_server_side());
        assert!(SessionType::Memory.is_server_side());
        for name in SessionType::NAMES {
            let parsed: SessionType = name.parse().expect("every name parses");
            assert_eq!(parsed.to_string(), *name);
        }

        let config = SessionConfigBuilder::default()
            .with_vars([
                ("SECRET_KEY", KEY),
                ("SESSION_TYPE", "encrypted"),
                ("SESSION_COOKIE_NAME", "sid"),
            ])
            .and_then(SessionConfigBuilder::build)
            .expect("valid");
        assert_eq!(config.session_type(), SessionType::EncryptedCookie);
        assert!(!config.encrypted_compression());
        let codec = config.cookie_codec();
        assert!(codec.is_encrypted());
        let data = crate::Map::from([("a".to_owned(), "a".repeat(500).into())]);
        let now = std::time::SystemTime::now();
        let cookie = codec.encode(&data, now);
        assert!(cookie.len() > 500, "not compressed: {}", cookie.len());
        assert_eq!(codec.decode(&cookie, now).expect("opens").data, data);
        // Bound to SESSION_COOKIE_NAME.
        let other_name = CookieCodec::encrypted(&KEY.into(), &[], "session");
        assert!(other_name.decode(&cookie, now).is_err());
        assert!(CookieCodec::encrypted(&KEY.into(), &[], "sid")
            .decode(&cookie, now)
            .is_ok());

        let compressing = SessionConfigBuilder::default()
            .with_vars([
                ("SECRET_KEY", KEY),
                ("SESSION_TYPE", "encrypted"),
                ("TESSERA_ENCRYPTED_COMPRESSION", "true"),
            ])
            .and_then(SessionConfigBuilder::build)
            .expect("valid");
        assert!(compressing.encrypted_compression());
        assert!(compressing.cookie_codec().encode(&data, now).len() < 200);
        // The signed codec stays the signed codec.
        let signed = SessionConfig::builder()
            .secret_key(KEY)
            .encrypted_compression(true)
            .build()
            .expect("valid");
        assert!(!signed.cookie_codec().is_encrypted());

        let err = SessionConfigBuilder::default()
            .with_vars([("TESSERA_ENCRYPTED_COMPRESSION", "sometimes")])
            .expect_err("refused");
        assert!(
            err.to_string().contains("TESSERA_ENCRYPTED_COMPRESSION"),
            "{err}"
        );
    }

    #[test]
    fn fallback_keys_are_read_comma_separated_or_as_a_json_list() {
        let keys = |value: &str| -> Vec<Vec<u8>> {
            parse_fallback_keys(value)
                .expect("a list")
                .iter()
                .map(|key| key.as_bytes().to_vec())
                .collect()
        };
        assert_eq!(
            keys(" old-one , old-two,,"),
            [b"old-one".to_vec(), b"old-two".to_vec()]
        );
        assert_eq!(
            keys(r#"["old, one", " old-two\n"]"#),
            [b"old, one".to_vec(), b" old-two\n".to_vec()]
        );
        assert_eq!(keys(r#" ["only"] "#), [b"only".to_vec()]);
        // Beginning as a list and not one: refused, rather than split into
        // keys such as `["old-key"` and `]`.
        for malformed in [
            r#"["Sekrit9",]"#,
            "['Sekrit9']",
            r#"["Sekrit9", 1]"#,
            "[abc",
            "[1,2]",
            r#" ["Sekrit9""#,
        ] {
            let refused = parse_fallback_keys(malformed).expect_err(malformed);
            assert!(
                matches!(refused, ConfigError::MalformedFallbackList { .. }),
                "{malformed}: {refused}"
            );
            assert!(!refused.to_string().contains("Sekrit9"), "{refused}");
        }
        let refused = SessionConfig::builder()
            .with_vars([
                ("SECRET_KEY", "a-long-enough-secret-key-0123456789"),
                ("SECRET_KEY_FALLBACKS", r#"["old-key",]"#),
            ])
            .and_then(SessionConfigBuilder::build)
            .expect_err("refused");
        assert!(
            refused
                .to_string()
                .starts_with("SECRET_KEY_FALLBACKS begins with '['"),
            "{refused}"
        );
    }

    #[test]
    fn keys_a_comma_separated_fallback_list_would_change_are_named() {
        assert_eq!(unsplittable(b"0f3a2f4a"), None);
        for key in [&b"0f3a2f4a\n"[..], b" 0f3a", b"0f3a\t", b"0f3a\r\n"] {
            assert!(
                unsplittable(key).is_some_and(|what| what.contains("blank")),
                "{key:?}"
            );
        }
        assert_eq!(unsplittable(b"a,b"), Some("holds a comma"));
        // Such a key as a JSON-list fallback is the same key.
        let key = "0f3a2f4a5e6d7c8b9a0f3a2f4a5e6d7c\n";
        let json = serde_json::to_string(&[key]).expect("JSON");
        assert_eq!(
            parse_fallback_keys(&json).expect("a list")[0].as_bytes(),
            key.as_bytes()
        );
    }

    #[test]
    fn weak_keys_warn_or_refuse() {
        assert!(SessionConfig::builder()
            .secret_key("supersecretkey")
            .build()
            .is_ok());
        let err = SessionConfig::builder()
            .secret_key("supersecretkey")
            .require_strong_secret_key(true)
            .build()
            .expect_err("refused");
        assert!(err.to_string().contains("well-known"), "{err}");
        assert!(SessionConfig::builder()
            .secret_key(KEY)
            .require_strong_secret_key(true)
            .build()
            .is_ok());
    }
}
