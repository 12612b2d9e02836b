//! The session configuration from the environment, and the secret key file
//! used when `SECRET_KEY` is not set.
//!
//! Without `SECRET_KEY` the demo generates a strong key once, keeps it in a
//! file only its owner can read (mode `0600`), and reads it back on every
//! later start, so restarts keep everyone's sessions.
//!
//! Unlike Flask, the demo keeps sessions server-side by default: without
//! `SESSION_TYPE` it uses `sqlite`, in [`SESSIONS_FILE`] beside the key file
//! unless `SESSION_STORE_URL` names another file.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use tessera::config::sqlite_path_from_url;
use tessera::{ConfigError, SecretKey, SessionConfig, SessionConfigBuilder, SessionType};

/// The demo's `SESSION_TYPE` when the variable is unset.
pub const DEFAULT_SESSION_TYPE: SessionType = SessionType::Sqlite;

/// The SQLite file the demo keeps sessions in, in the key file's directory,
/// when `SESSION_STORE_URL` is unset.
pub const SESSIONS_FILE: &str = "tessera-demo-sessions.db";

/// Where the secret key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `SECRET_KEY` from the environment.
    Environment,
    /// Freshly generated and saved to this file.
    Generated(PathBuf),
    /// Read from this file, saved by an earlier start.
    Reused(PathBuf),
}

/// Why the demo cannot start with this configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A Flask setting has a bad value.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key file could not be read or written.
    #[error("secret key file {}: {source}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The key file exists but holds no key.
    #[error(
        "secret key file {} is empty or not text; delete it to generate a new key, or set SECRET_KEY",
        .0.display()
    )]
    BadKeyFile(PathBuf),
    /// The default sessions file's path cannot be written as a `SESSION_STORE_URL`.
    #[error(
        "the sessions file {} cannot be named in a SESSION_STORE_URL (its path is not UTF-8 or \
         contains '?' or '#'); set SESSION_STORE_URL=sqlite:///path/to/sessions.db, or \
         SESSION_TYPE=memory or cookie",
        .0.display()
    )]
    SessionsFile(PathBuf),
}

/// Flask's session settings (and tessera's) that the demo reads from the
/// environment, with what they mean; shown by `--help`.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SECRET_KEY",
        "signs (SESSION_TYPE=encrypted: encrypts) session cookies, and signs ids with \
         SESSION_USE_SIGNER; unset: a generated key kept in --key-file",
    ),
    (
        "SECRET_KEY_FALLBACKS",
        "older keys still accepted, comma-separated, oldest first",
    ),
    (
        "PERMANENT_SESSION_LIFETIME",
        "seconds a permanent session lasts (default 2678400, 31 days; at most 36500 days)",
    ),
    ("SESSION_COOKIE_NAME", "the cookie's name (default session)"),
    (
        "SESSION_COOKIE_DOMAIN",
        "the cookie's Domain (default: host-only)",
    ),
    (
        "SESSION_COOKIE_PATH",
        "the cookie's Path (default: APPLICATION_ROOT)",
    ),
    (
        "APPLICATION_ROOT",
        "the cookie's Path when SESSION_COOKIE_PATH is unset (default /)",
    ),
    ("SESSION_COOKIE_HTTPONLY", "true or false (default true)"),
    ("SESSION_COOKIE_SECURE", "true or false (default false)"),
    (
        "SESSION_COOKIE_SAMESITE",
        "Strict, Lax or None (default: unset)",
    ),
    (
        "SESSION_COOKIE_PARTITIONED",
        "true or false (default false; implies Secure)",
    ),
    (
        "SESSION_REFRESH_EACH_REQUEST",
        "slide permanent sessions' expiry as they are used (default true): a signed or \
         encrypted cookie is re-sent on every request; server-side, the cookie is re-sent \
         when the stored expiry moves, once it has fallen behind by a tenth of the lifetime \
         (at most a day)",
    ),
    (
        "MAX_COOKIE_SIZE",
        "warn about Set-Cookie headers over this many bytes (default 4093)",
    ),
    (
        "SESSION_TYPE",
        "where sessions live: cookie, encrypted (cookies only the key opens), memory, \
         sqlite, redis or postgres (default sqlite, unlike Flask's cookie)",
    ),
    (
        "SESSION_STORE_URL",
        "sqlite:///absolute/path.db or sqlite://relative/path.db \
         (default: tessera-demo-sessions.db beside --key-file), \
         redis://host:port/db (default redis://127.0.0.1:6379/0; rediss://… for TLS), \
         postgres://user@host:port/db (default postgres://localhost/tessera; \
         ?sslmode=verify-full for TLS with the certificate checked, &sslrootcert=ca.pem \
         for a private CA); certificates are checked against the system's roots or \
         the bundle SSL_CERT_FILE names",
    ),
    (
        "SESSION_KEY_PREFIX",
        "redis: the prefix of every key (default session:; set but empty, no prefix, \
         as in Flask-Session)",
    ),
    (
        "SESSION_SERIALIZATION_FORMAT",
        "redis: msgpack or json keeps sessions in Flask-Session's layout, shared with a \
         Flask app (default: unset, tessera's own layout)",
    ),
    (
        "SESSION_PERMANENT",
        "server-side: new sessions are permanent (default true)",
    ),
    (
        "SESSION_USE_SIGNER",
        "server-side: sign the session id in the cookie (default false)",
    ),
    (
        "TESSERA_SESSION_ABSOLUTE_LIFETIME",
        "server-side: seconds after which a session ends however active (default 0: none)",
    ),
    (
        "TESSERA_MEMORY_STORE_MAX_SESSIONS",
        "SESSION_TYPE=memory: the most sessions kept; the one closest to expiry is evicted \
         (default 100000)",
    ),
    (
        "TESSERA_MEMORY_STORE_MAX_BYTES",
        "SESSION_TYPE=memory: the most bytes the sessions take, as estimated; those closest \
         to expiry are evicted (default 268435456, 256 MiB)",
    ),
    (
        "TESSERA_SWEEP_INTERVAL",
        "server-side: seconds between sweeps of expired sessions (default 60)",
    ),
    (
        "TESSERA_REQUIRE_STRONG_SECRET_KEY",
        "refuse to start with a weak SECRET_KEY (or SECRET_KEY_FALLBACKS entry) instead of \
         warning",
    ),
    (
        "TESSERA_REFUSE_OVERSIZED_COOKIES",
        "answer 500 instead of sending a cookie over MAX_COOKIE_SIZE larger than the request's \
         (an unchanged session's refresh is skipped instead)",
    ),
    (
        "TESSERA_MAX_PAYLOAD_SIZE",
        "bound on a cookie's inflated payload in bytes (default 1048576, at least 4096)",
    ),
    (
        "TESSERA_ENCRYPTED_COMPRESSION",
        "SESSION_TYPE=encrypted: compress before encrypting (default false: the length of \
         compressed secrets beside attacker-influenced data gives them away)",
    ),
    (
        "RUST_LOG",
        "log filter (default info,sqlx=error: sqlx's warnings come once per waiting \
         request during a lock or an outage): a level (error, warn, info, debug, trace) or \
         target=level pairs such as tessera=debug; any other word is taken for a target \
         and hides everything else",
    ),
];

/// The session configuration from the process environment; without
/// `SECRET_KEY`, the key in `key_file` (created if missing); without
/// `SESSION_TYPE`, SQLite sessions in [`SESSIONS_FILE`] beside `key_file`
/// (unless `SESSION_STORE_URL` is set).
pub fn config_from_env(key_file: &Path) -> Result<(SessionConfig, KeySource), SetupError> {
    config_from_vars(std::env::vars_os(), key_file)
}

/// [`config_from_env`] with the variables given (for example a test's).
///
/// Unlike `std::env::vars`, a variable that is not UTF-8 does not panic: it
/// is an error when it is one of the settings and ignored otherwise.
pub fn config_from_vars(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    key_file: &Path,
) -> Result<(SessionConfig, KeySource), SetupError> {
    let vars: Vec<(OsString, OsString)> = vars.into_iter().collect();
    // As the library does, an empty (or blank) variable counts as unset.
    let value_of = |name: &str| {
        vars.iter()
            .rev()
            .find(|(key, value)| key == name && !value.to_string_lossy().trim().is_empty())
            .map(|(_, value)| value.to_string_lossy().into_owned())
    };
    let session_type = match value_of("SESSION_TYPE") {
        // An invalid value is refused by `with_vars_os` below.
        Some(value) => value.trim().parse().unwrap_or(SessionType::Cookie),
        None => DEFAULT_SESSION_TYPE,
    };
    let sets_store_url = value_of("SESSION_STORE_URL").is_some();
    let mut builder = SessionConfigBuilder::default()
        .session_type(DEFAULT_SESSION_TYPE)
        .with_vars_os(vars)?;
    if session_type == SessionType::Sqlite && !sets_store_url {
        builder = builder.store_url(default_store_url(key_file)?);
    }
    let has_key = builder.has_secret_key();
    let source = if has_key {
        KeySource::Environment
    } else {
        let (key, source) = load_or_create_key(key_file)?;
        builder = builder.secret_key(key);
        source
    };
    Ok((builder.build()?, source))
}

/// The `SESSION_STORE_URL` of [`SESSIONS_FILE`] in `key_file`'s directory.
pub fn default_store_url(key_file: &Path) -> Result<String, SetupError> {
    let key_file = std::path::absolute(key_file).unwrap_or_else(|_| key_file.to_owned());
    let file = key_file.parent().map_or_else(
        || PathBuf::from(SESSIONS_FILE),
        |dir| dir.join(SESSIONS_FILE),
    );
    file.to_str()
        .map(|path| format!("sqlite://{path}"))
        .filter(|url| sqlite_path_from_url(url).as_deref() == Some(file.as_path()))
        .ok_or(SetupError::SessionsFile(file))
}

/// Reads the key saved in `path`, or generates one and saves it there,
/// readable by its owner only.
pub fn load_or_create_key(path: &Path) -> Result<(SecretKey, KeySource), SetupError> {
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let key_file_error = |source| SetupError::KeyFile {
        path: shown.clone(),
        source,
    };
    let key = SecretKey::generate();
    let mut contents = key.as_bytes().to_vec();
    contents.push(b'\n');
    match publish_owner_only(path, &contents) {
        Ok(()) => Ok((key, KeySource::Generated(shown))),
        // Made before, or by an instance starting at the same moment.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let text = fs::read(path).map_err(key_file_error)?;
            let key = std::str::from_utf8(&text)
                .map(str::trim)
                .ok()
                .filter(|key| !key.is_empty())
                .ok_or_else(|| SetupError::BadKeyFile(shown.clone()))?;
            warn_if_readable_by_others(path, &shown);
            Ok((SecretKey::from(key), KeySource::Reused(shown)))
        }
        // "No such file or directory" reads as if the key file had to
        // exist; it is the directory that is missing.
        Err(err)
            if err.kind() == io::ErrorKind::NotFound
                && shown.parent().is_some_and(|dir| !dir.exists()) =>
        {
            Err(key_file_error(io::Error::new(
                err.kind(),
                format!(
                    "its directory {} does not exist (create it, or pass another --key-file)",
                    shown
                        .parent()
                        .map_or_else(String::new, |dir| dir.display().to_string())
                ),
            )))
        }
        Err(err) => Err(key_file_error(err)),
    }
}

/// Creates `path` holding `contents`, readable by its owner only, failing if
/// it exists. The file appears whole or not at all: written and synced
/// under a name of its own first, then linked into place, so that another
/// instance never reads it half written and a failed write (a full disk)
/// leaves nothing behind.
fn publish_owner_only(path: &Path, contents: &[u8]) -> io::Result<()> {
    if path.exists() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    // Unique among this process's threads and other processes.
    static ATTEMPTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}-{attempt}.tmp", std::process::id()));
    let temporary = path.with_file_name(name);
    let published = create_owner_only(&temporary)
        .and_then(|mut file| file.write_all(contents).and_then(|()| file.sync_all()))
        .and_then(|()| fs::hard_link(&temporary, path));
    let _ = fs::remove_file(&temporary);
    published
}

/// Creates `path`, failing if it exists, with mode 0600 on Unix.
fn create_owner_only(path: &Path) -> io::Result<fs::File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let file = options.open(path)?;
        // The umask can only remove bits; make sure it is exactly 0600.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}

fn warn_if_readable_by_others(path: &Path, shown: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(metadata) = fs::metadata(path) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    "secret key file {} has mode {mode:o}: others may read it; run chmod 600 on it",
                    shown.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, shown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tessera-demo-unit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn generates_then_reuses_the_key_file() {
        let dir = temp_dir("reuse");
        let path = dir.join("demo.key");
        let (first, source) = load_or_create_key(&path).expect("created");
        assert!(matches!(source, KeySource::Generated(_)));
        assert!(first.weakness().is_none());
        let (second, source) = load_or_create_key(&path).expect("read back");
        assert!(matches!(source, KeySource::Reused(_)));
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).expect("exists").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = fs::remove_dir_all(&dir);
    }

    /// Instances starting together agree on one key: the file appears
    /// whole or not at all, so none reads it half written (and a write that
    /// fails, on a full disk say, leaves no empty key file behind).
    #[test]
    fn instances_starting_together_agree_on_one_key() {
        for round in 0..20 {
            let dir = temp_dir(&format!("together-{round}"));
            let path = dir.join("demo.key");
            let keys: Vec<String> = std::thread::scope(|scope| {
                let starts: Vec<_> = (0..6)
                    .map(|_| scope.spawn(|| load_or_create_key(&path)))
                    .collect();
                starts
                    .into_iter()
                    .map(|start| {
                        let (key, _) = start
                            .join()
                            .expect("no panic")
                            .unwrap_or_else(|error| panic!("round {round}: {error}"));
                        String::from_utf8(key.as_bytes().to_vec()).expect("text")
                    })
                    .collect()
            });
            assert!(
                keys.iter().all(|key| *key == keys[0]),
                "round {round}: {keys:?}"
            );
            let names: Vec<_> = fs::read_dir(&dir)
                .expect("listed")
                .map(|entry| entry.expect("entry").file_name())
                .collect();
            assert_eq!(names, ["demo.key"], "nothing else is left behind");
            let _ = fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_key_file_in_a_missing_directory_says_so() {
        let dir = temp_dir("missing-dir");
        let path = dir.join("not-there").join("demo.key");
        let error = load_or_create_key(&path)
            .expect_err("no directory")
            .to_string();
        assert!(
            error.contains("not-there does not exist") && error.contains("--key-file"),
            "{error}"
        );
        assert!(!dir.join("not-there").exists(), "nothing is created");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_empty_key_file_is_an_error_not_overwritten() {
        let dir = temp_dir("empty");
        let path = dir.join("demo.key");
        fs::write(&path, "  \n").expect("written");
        assert!(matches!(
            load_or_create_key(&path),
            Err(SetupError::BadKeyFile(_))
        ));
        assert_eq!(fs::read(&path).expect("still there"), b"  \n");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn secret_key_from_the_environment_wins() {
        let dir = temp_dir("env");
        let path = dir.join("demo.key");
        let vars = os(&[
            ("SECRET_KEY", "an-environment-key-that-is-long-enough-0123"),
            ("PERMANENT_SESSION_LIFETIME", "60"),
        ]);
        let (config, source) = config_from_vars(vars, &path).expect("valid");
        assert_eq!(source, KeySource::Environment);
        assert_eq!(config.permanent_session_lifetime().as_secs(), 60);
        assert!(!path.exists(), "no key file without need");

        let (_, source) = config_from_vars(os(&[("SECRET_KEY", " ")]), &path).expect("valid");
        assert!(matches!(source, KeySource::Generated(_)));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn sessions_default_to_sqlite_beside_the_key_file() {
        let dir = temp_dir("default-type");
        let path = dir.join("demo.key");
        let key = ("SECRET_KEY", "an-environment-key-that-is-long-enough-0123");
        let (config, _) = config_from_vars(os(&[key]), &path).expect("valid");
        assert_eq!(config.session_type(), SessionType::Sqlite);
        assert_eq!(config.sqlite_path(), dir.join(SESSIONS_FILE));

        // Blank counts as unset, as for every setting.
        let (config, _) =
            config_from_vars(os(&[key, ("SESSION_TYPE", " ")]), &path).expect("valid");
        assert_eq!(config.session_type(), SessionType::Sqlite);

        let (config, _) =
            config_from_vars(os(&[key, ("SESSION_TYPE", "sqlite")]), &path).expect("valid");
        assert_eq!(config.sqlite_path(), dir.join(SESSIONS_FILE));

        // A relative key file: the sessions file is in the same directory.
        let (config, _) =
            config_from_vars(os(&[key]), Path::new("some-dir/demo.key")).expect("valid");
        let expected = std::path::absolute("some-dir").expect("absolute");
        assert_eq!(config.sqlite_path(), expected.join(SESSIONS_FILE));

        for (value, expected) in [
            ("cookie", SessionType::Cookie),
            ("memory", SessionType::Memory),
            (" Memory ", SessionType::Memory),
        ] {
            let (config, _) =
                config_from_vars(os(&[key, ("SESSION_TYPE", value)]), &path).expect("valid");
            assert_eq!(config.session_type(), expected, "{value:?}");
            assert_eq!(config.store_url(), None, "{value:?}");
        }

        let (config, _) = config_from_vars(
            os(&[
                key,
                ("SESSION_TYPE", "sqlite"),
                ("SESSION_STORE_URL", "sqlite://elsewhere/sessions.db"),
            ]),
            &path,
        )
        .expect("valid");
        assert_eq!(config.sqlite_path(), Path::new("elsewhere/sessions.db"));
        let err =
            config_from_vars(os(&[key, ("SESSION_TYPE", "mongodb")]), &path).expect_err("refused");
        assert!(err.to_string().contains("SESSION_TYPE"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_sessions_path_no_url_can_name_is_a_clear_error() {
        let err = default_store_url(Path::new("odd?dir/demo.key")).expect_err("refused");
        assert!(matches!(err, SetupError::SessionsFile(_)), "{err}");
        assert!(err.to_string().contains("SESSION_STORE_URL"), "{err}");
    }

    #[test]
    fn bad_settings_are_errors() {
        let path = Path::new("never-created.key");
        let err = config_from_vars(
            os(&[
                ("SECRET_KEY", "k"),
                ("SESSION_COOKIE_SAMESITE", "sometimes"),
            ]),
            path,
        )
        .expect_err("refused");
        assert!(err.to_string().contains("SESSION_COOKIE_SAMESITE"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt as _;
            let vars = vec![
                (OsString::from("SECRET_KEY"), OsString::from("k")),
                (OsString::from("UNRELATED"), OsString::from_vec(vec![0xff])),
            ];
            assert!(config_from_vars(vars, path).is_ok());
            let vars = vec![(OsString::from("SECRET_KEY"), OsString::from_vec(vec![0xff]))];
            assert!(matches!(
                config_from_vars(vars, path),
                Err(SetupError::Config(ConfigError::InvalidValue {
                    name: "SECRET_KEY",
                    ..
                }))
            ));
        }
    }
}
