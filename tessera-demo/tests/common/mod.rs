//! Shared test helpers: a test configuration, the app on a local port, and a
//! tiny browser with a cookie jar that shows every `Set-Cookie` it gets.

#![allow(dead_code)]

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use tessera::SessionConfig;

pub(crate) const TEST_KEY: &str = "tessera-demo-test-key-0123456789abcdef0123456789";

pub(crate) fn test_config() -> SessionConfig {
    SessionConfig::builder()
        .secret_key(TEST_KEY)
        .build()
        .expect("a valid test configuration")
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
    client: reqwest::Client,
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
