//! Shared test helpers: test configurations for every `SESSION_TYPE`, the
//! app on a local port, temporary directories, and a tiny browser with a
//! cookie jar that shows every `Set-Cookie` it gets.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use tessera::store::flask_format::SerializationFormat;
use tessera::{SessionConfig, SessionType};

pub(crate) const TEST_KEY: &str = "tessera-demo-test-key-0123456789abcdef0123456789";

/// Session settings the tests' environment might carry, removed from a demo
/// process's environment so that only what a test sets applies.
pub(crate) const SESSION_VARS: &[&str] = &[
    "SECRET_KEY",
    "SECRET_KEY_FALLBACKS",
    "SESSION_TYPE",
    "SESSION_STORE_URL",
    "SESSION_PERMANENT",
    "SESSION_USE_SIGNER",
    "SESSION_COOKIE_NAME",
    "SESSION_KEY_PREFIX",
    "PERMANENT_SESSION_LIFETIME",
    "TESSERA_SESSION_ABSOLUTE_LIFETIME",
];

/// Cookie sessions (the library's default, as in Flask).
pub(crate) fn test_config() -> SessionConfig {
    SessionConfig::builder()
        .secret_key(TEST_KEY)
        .build()
        .expect("a valid test configuration")
}

/// Where sessions live in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Cookie,
    Memory,
    Sqlite,
    /// The server `scripts/services.sh` starts (`TESSERA_TEST_POSTGRES_URL`).
    Postgres,
    /// The server `scripts/services.sh` starts (`TESSERA_TEST_REDIS_URL`).
    Redis,
    /// The same Redis in Flask-Session's layout (msgpack), under a prefix of
    /// its own: the two layouts never share one.
    FlaskSessionRedis,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Cookie => "cookie",
            Mode::Memory => "memory",
            Mode::Sqlite => "sqlite",
            Mode::Postgres => "postgres",
            Mode::Redis => "redis",
            // Its SESSION_TYPE: the layout is a setting of the Redis store.
            Mode::FlaskSessionRedis => "redis",
        }
    }
}

/// The demo served in one mode; an SQLite file lives in `dir`, removed on drop.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) base: String,
    pub(crate) dir: Option<TempDir>,
}

/// The test configuration for `mode`; SQLite in `sessions.db` under `dir`.
pub(crate) fn config_for(mode: Mode, dir: Option<&Path>) -> SessionConfig {
    let builder = SessionConfig::builder().secret_key(TEST_KEY);
    let builder = match mode {
        Mode::Cookie => builder.session_type(SessionType::Cookie),
        Mode::Memory => builder.session_type(SessionType::Memory),
        Mode::Sqlite => {
            let file = dir.expect("a directory for SQLite").join("sessions.db");
            builder
                .session_type(SessionType::Sqlite)
                .store_url(sqlite_url(&file))
        }
        Mode::Postgres => builder
            .session_type(SessionType::Postgres)
            .store_url(server_url("TESSERA_TEST_POSTGRES_URL")),
        Mode::Redis => builder
            .session_type(SessionType::Redis)
            .store_url(server_url("TESSERA_TEST_REDIS_URL")),
        Mode::FlaskSessionRedis => builder
            .session_type(SessionType::Redis)
            .store_url(server_url("TESSERA_TEST_REDIS_URL"))
            .key_prefix("flask-session:")
            .serialization_format(Some(SerializationFormat::Msgpack)),
    };
    builder.build().expect("a valid test configuration")
}

/// A test server's URL from the environment; without it the test fails.
pub(crate) fn server_url(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
    })
}

/// `SESSION_STORE_URL` for an absolute path.
pub(crate) fn sqlite_url(file: &Path) -> String {
    let file = file.to_str().expect("a UTF-8 temp path");
    format!("sqlite://{file}")
}

/// Serves the demo in `mode` (SQLite in a fresh temp dir).
pub(crate) async fn serve_mode(mode: Mode, name: &str) -> Served {
    let dir = (mode == Mode::Sqlite).then(|| TempDir::new(name));
    let config = config_for(mode, dir.as_ref().map(|dir| dir.0.as_path()));
    Served {
        base: serve(config).await,
        dir,
    }
}

/// A fresh, empty directory under the system's temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "tessera-demo-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("a temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serves `tessera_demo::build_app(config)` on 127.0.0.1 and returns its base URL.
pub(crate) async fn serve(config: SessionConfig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("bound");
    let app = tessera_demo::build_app(config);
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the server runs");
    });
    format!("http://{address}")
}

/// One response, read completely.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    /// The `Set-Cookie` headers.
    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| value.to_str().expect("ASCII Set-Cookie").to_owned())
            .collect()
    }

    /// The single session `Set-Cookie`, panicking if there is none or several.
    pub(crate) fn session_cookie(&self) -> String {
        let cookies = self.set_cookies();
        assert_eq!(cookies.len(), 1, "expected one Set-Cookie: {cookies:?}");
        cookies[0].clone()
    }

    /// The body parsed as JSON, after checking the content type says so.
    pub(crate) fn json(&self) -> serde_json::Value {
        let content_type = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        assert_eq!(content_type, "application/json", "{}", self.body);
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub(crate) fn location(&self) -> Option<&str> {
        self.headers
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
    }

    /// Asserts a Flask-style `302 Found` redirect to `/`.
    pub(crate) fn assert_redirect_home(&self) {
        assert_eq!(self.status, StatusCode::FOUND, "{}", self.body);
        assert_eq!(self.location(), Some("/"));
    }
}

/// A browser that does not follow redirects and keeps cookies by name.
#[derive(Debug)]
pub(crate) struct Browser {
    pub(crate) client: reqwest::Client,
    /// Where requests go, e.g. `http://127.0.0.1:5000`; cookies do not care
    /// about the port, so this may change between requests.
    pub(crate) base: String,
    pub(crate) cookies: BTreeMap<String, String>,
}

impl Browser {
    pub(crate) fn new(base: impl Into<String>) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        Self {
            client,
            base: base.into(),
            cookies: BTreeMap::new(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Reply {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub(crate) async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    pub(crate) async fn post(&mut self, path: &str) -> Reply {
        let request = self.client.post(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub(crate) async fn put_json(&mut self, path: &str, json: &str) -> Reply {
        let request = self
            .client
            .put(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/json")
            .body(json.to_owned());
        self.send(request).await
    }

    pub(crate) async fn delete(&mut self, path: &str) -> Reply {
        let request = self.client.delete(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// The session cookie's value, if the browser holds one.
    pub(crate) fn session(&self) -> Option<&str> {
        self.cookies.get("session").map(String::as_str)
    }

    /// Another browser holding a copy of this one's cookies.
    pub(crate) fn copy(&self) -> Self {
        let mut copy = Self::new(self.base.clone());
        copy.cookies = self.cookies.clone();
        copy
    }

    pub(crate) async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Reply {
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(COOKIE, header);
        }
        let response = request.send().await.expect("the request is answered");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("a text body");
        let reply = Reply {
            status,
            headers,
            body,
        };
        for cookie in reply.set_cookies() {
            self.store(&cookie);
        }
        reply
    }

    /// Keeps or deletes a cookie as a browser would (enough for these tests).
    fn store(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let deleted = value.is_empty()
            || parts.any(|attribute| {
                attribute.eq_ignore_ascii_case("Max-Age=0") || attribute.contains("1970")
            });
        if deleted {
            self.cookies.remove(name);
        } else {
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
    }
}

/// Whether a `Set-Cookie` has an `Expires` attribute (a permanent session).
pub(crate) fn has_expires(set_cookie: &str) -> bool {
    set_cookie.split(';').any(|attribute| {
        attribute
            .trim()
            .to_ascii_lowercase()
            .starts_with("expires=")
    })
}
