//! Tower middleware that opens the session from the request's cookie and
//! saves it into the response, with Flask's `open_session`/`save_session` rules.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tessera::{Session, SessionConfig, SessionLayer};
//!
//! async fn counter(session: Session) -> String {
//!     let visits: u64 = session.get("visits").ok().flatten().unwrap_or(0) + 1;
//!     session.insert("visits", visits).ok();
//!     format!("visit number {visits}")
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SessionConfig::from_env()?; // SECRET_KEY and Flask's other names
//! let app = Router::new()
//!     .route("/", get(counter))
//!     .layer(SessionLayer::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::SystemTime;

use cookie::Cookie;
use http::header::{COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use time::OffsetDateTime;
use tower_layer::Layer;
use tower_service::Service;

use crate::codec::CookieCodec;
use crate::config::{SameSite, SessionConfig};
use crate::session::{Session, PERMANENT_KEY};
use crate::value::Value;

/// Adds a [`Session`] to every request's extensions and saves it afterwards.
#[derive(Debug, Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl SessionLayer {
    /// A layer for this configuration.
    pub fn new(config: SessionConfig) -> Self {
        let codec = config.cookie_codec();
        Self {
            shared: Arc::new(Shared { config, codec }),
        }
    }

    /// The configuration this layer uses.
    pub fn config(&self) -> &SessionConfig {
        &self.shared.config
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let session = self.shared.open(request.headers(), SystemTime::now());
        request.extensions_mut().insert(session.clone());
        ResponseFuture {
            inner: self.inner.call(request),
            session: Some(session),
            shared: self.shared.clone(),
        }
    }
}

pin_project! {
    /// Saves the session once the inner service has produced its response,
    /// so writes made anywhere inside the layer are kept.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        session: Option<Session>,
        shared: Arc<Shared>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(session) = this.session.take() {
            if let Err(oversized) =
                this.shared
                    .save(&session, response.headers_mut(), SystemTime::now())
            {
                tracing::error!("{oversized}; answering 500 because oversized cookies are refused");
                let mut refused = Response::new(B::default());
                *refused.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return Poll::Ready(Ok(refused));
            }
        }
        Poll::Ready(Ok(response))
    }
}

/// A `Set-Cookie` larger than `MAX_COOKIE_SIZE`, with refusal configured.
#[derive(Debug, thiserror::Error)]
#[error("the {name:?} cookie is too large: {size} bytes, over MAX_COOKIE_SIZE of {limit} bytes")]
pub(crate) struct OversizedCookie {
    name: String,
    size: usize,
    limit: usize,
}

#[derive(Debug)]
struct Shared {
    config: SessionConfig,
    codec: CookieCodec,
}

impl Shared {
    /// Flask's `open_session`: the first cookie of our name that verifies,
    /// else a new empty session.
    fn open(&self, headers: &HeaderMap, now: SystemTime) -> Session {
        for value in cookie_values(headers, &self.config.cookie_name) {
            match self.codec.decode(value, now) {
                Ok(decoded) => return Session::loaded(decoded.data, decoded.signed_at),
                Err(reason) => {
                    tracing::debug!(%reason, "session cookie refused; starting an empty session")
                }
            }
        }
        Session::loaded(Default::default(), None)
    }

    /// Flask's `save_session`.
    fn save(
        &self,
        session: &Session,
        headers: &mut HeaderMap,
        now: SystemTime,
    ) -> Result<(), OversizedCookie> {
        let config = &self.config;
        let (data, modified, accessed) = session.save_state();
        if accessed {
            add_vary_cookie(headers);
        }
        if data.is_empty() {
            if modified {
                let removal = self
                    .cookie("", Some(OffsetDateTime::UNIX_EPOCH))
                    .max_age(cookie::time::Duration::ZERO)
                    .build();
                append_set_cookie(headers, &removal.to_string());
                add_vary_cookie(headers);
            }
            return Ok(());
        }
        let permanent = data.get(PERMANENT_KEY).and_then(Value::as_bool) == Some(true);
        if !(modified || (permanent && config.refresh_each_request)) {
            return Ok(());
        }
        let expires =
            permanent.then(|| OffsetDateTime::from(now) + config.permanent_session_lifetime);
        let value = self.codec.encode(&data, now);
        let header = self.cookie(&value, expires).build().to_string();
        if config.max_cookie_size > 0 && header.len() > config.max_cookie_size {
            let oversized = OversizedCookie {
                name: config.cookie_name.clone(),
                size: header.len(),
                limit: config.max_cookie_size,
            };
            if config.refuse_oversized_cookies {
                return Err(oversized);
            }
            tracing::error!("{oversized}; browsers may silently ignore it and lose the session");
        }
        append_set_cookie(headers, &header);
        add_vary_cookie(headers);
        Ok(())
    }

    fn cookie<'c>(
        &'c self,
        value: &'c str,
        expires: Option<OffsetDateTime>,
    ) -> cookie::CookieBuilder<'c> {
        let config = &self.config;
        let mut builder = Cookie::build((config.cookie_name.as_str(), value))
            .path(config.cookie_path.as_str())
            .http_only(config.cookie_http_only)
            .secure(config.cookie_secure());
        if let Some(domain) = &config.cookie_domain {
            builder = builder.domain(domain.as_str());
        }
        if let Some(same_site) = config.cookie_same_site {
            builder = builder.same_site(match same_site {
                SameSite::Strict => cookie::SameSite::Strict,
                SameSite::Lax => cookie::SameSite::Lax,
                SameSite::None => cookie::SameSite::None,
            });
        }
        if config.cookie_partitioned {
            builder = builder.partitioned(true);
        }
        if let Some(expires) = expires {
            builder = builder.expires(expires);
        }
        builder
    }
}

/// Values of every cookie named `name`, across all `Cookie` headers, in order.
fn cookie_values<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| {
                let value = value.trim();
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value)
            })
        })
}

fn append_set_cookie(headers: &mut HeaderMap, cookie: &str) {
    match HeaderValue::from_str(cookie) {
        Ok(value) => {
            headers.append(SET_COOKIE, value);
        }
        Err(_) => tracing::error!("session cookie is not a valid header value; not sent"),
    }
}

/// Adds `Cookie` to `Vary` once, merging into whatever `Vary` already says.
fn add_vary_cookie(headers: &mut HeaderMap) {
    let existing: Vec<String> = headers
        .get_all(VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .collect();
    if existing
        .iter()
        .any(|token| token == "*" || token.eq_ignore_ascii_case("cookie"))
    {
        return;
    }
    let merged = existing
        .into_iter()
        .chain(std::iter::once("Cookie".to_owned()))
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&merged) {
        headers.insert(VARY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_is_merged_once() {
        let mut headers = HeaderMap::new();
        add_vary_cookie(&mut headers);
        add_vary_cookie(&mut headers);
        assert_eq!(headers.get_all(VARY).iter().collect::<Vec<_>>(), ["Cookie"]);

        let mut headers = HeaderMap::new();
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
        headers.append(VARY, HeaderValue::from_static("Origin"));
        add_vary_cookie(&mut headers);
        assert_eq!(
            headers.get_all(VARY).iter().collect::<Vec<_>>(),
            ["Accept-Encoding, Origin, Cookie"]
        );

        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_static("accept, COOKIE"));
        add_vary_cookie(&mut headers);
        assert_eq!(
            headers.get(VARY).map(|v| v.as_bytes()),
            Some(&b"accept, COOKIE"[..])
        );
    }

    #[test]
    fn finds_every_cookie_with_the_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; session=x; sessionx=no"),
        );
        headers.append(COOKIE, HeaderValue::from_static("session=\"y\";b=2"));
        assert_eq!(
            cookie_values(&headers, "session").collect::<Vec<_>>(),
            ["x", "y"]
        );
    }
}
