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

use http::header::{Entry, COOKIE, RETRY_AFTER, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::config::SessionConfig;
use crate::core::{vary_with_cookie, Failure, Finish, SessionCore};
use crate::session::Session;
use crate::store::SessionStore;

/// Adds a [`Session`] to every request's extensions and saves it afterwards.
///
/// A request that already carries a [`Session`] (a `SessionLayer` further
/// out, say around a router another one is nested in) passes through this
/// layer untouched: the outer layer's session is the one the handlers see
/// and the one saved, once. Two layers saving one request would send two
/// `Set-Cookie` headers, and the browser would keep whichever came last.
///
/// The response body must implement `Default` (axum's `Body`, `String`,
/// `Full` do; hyper's `Incoming`, a proxied body, does not): the layer
/// answers a failed save with an empty body of that type.
///
/// An error the inner service returns (its `Service::Error`, not an error
/// response) is no response: the session is not saved, and the error goes
/// out as it came. Answer errors as responses inside this layer to have
/// the session saved with them.
///
/// When saving fails, the response is replaced by a 409 (the session ended
/// or moved while the request wrote to it), 500 or 503 with an empty body:
/// the layer cannot make a body of the application's type. A middleware
/// outside this layer can fill them in (`axum::middleware::from_fn` or
/// `map_response`), as the README's demo does.
#[derive(Debug, Clone)]
pub struct SessionLayer {
    core: Arc<SessionCore>,
}

impl SessionLayer {
    /// A layer for this configuration: signed cookies for `SESSION_TYPE=cookie`,
    /// encrypted ones for `encrypted`, otherwise server-side sessions in the
    /// store it names. Stores are opened lazily, so this never fails: a store
    /// that cannot be reached makes requests that use the session answer 503
    /// until it can.
    ///
    /// Each call opens a store of its own (and starts its own sweeper): build
    /// the layer once and clone it into every router that uses sessions.
    /// Two layers built from one configuration do not share a memory
    /// store's sessions, and on one SQLite file they are two writers taking
    /// turns.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            core: Arc::new(SessionCore::new(config)),
        }
    }

    /// Server-side sessions in `store`, whatever `SESSION_TYPE` says.
    pub fn with_store(config: SessionConfig, store: Arc<dyn SessionStore>) -> Self {
        Self {
            core: Arc::new(SessionCore::with_store(config, store)),
        }
    }

    /// The configuration this layer uses.
    pub fn config(&self) -> &SessionConfig {
        self.core.config()
    }

    /// The server-side store, if sessions are server-side.
    pub fn store(&self) -> Option<Arc<dyn SessionStore>> {
        self.core.store()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            core: self.core.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    core: Arc<SessionCore>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if let Some(outer) = request.extensions().get::<Session>() {
            self.core.note_passed_through(outer.layer_mark());
            return ResponseFuture {
                inner: self.inner.call(request),
                session: None,
                core: self.core.clone(),
                saving: None,
            };
        }
        let cookies = request.headers().get_all(COOKIE).iter();
        let session = self
            .core
            .open(cookies.map(HeaderValue::as_bytes), SystemTime::now());
        request.extensions_mut().insert(session.clone());
        ResponseFuture {
            inner: self.inner.call(request),
            session: Some(session),
            core: self.core.clone(),
            saving: None,
        }
    }
}

/// A server-side save in progress.
type Saving<B> = Pin<Box<dyn Future<Output = Response<B>> + Send>>;

pin_project! {
    /// Saves the session once the inner service has produced its response,
    /// so writes made anywhere inside the layer are kept.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        session: Option<Session>,
        core: Arc<SessionCore>,
        saving: Option<Saving<B>>,
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(saving) = this.saving.as_mut() {
            let response = ready!(saving.as_mut().poll(cx));
            *this.saving = None;
            return Poll::Ready(Ok(response));
        }
        let response = ready!(this.inner.poll(cx))?;
        let Some(session) = this.session.take() else {
            return Poll::Ready(Ok(response));
        };
        if !this.core.is_server_side() {
            let finish = this.core.finish_cookie(&session, SystemTime::now());
            return Poll::Ready(Ok(apply(finish, response)));
        }
        let core = this.core.clone();
        let mut saving: Saving<B> = Box::pin(async move {
            let finish = core.finish_server(&session).await;
            apply(finish, response)
        });
        match saving.as_mut().poll(cx) {
            Poll::Ready(response) => Poll::Ready(Ok(response)),
            Poll::Pending => {
                *this.saving = Some(saving);
                Poll::Pending
            }
        }
    }
}

/// Puts what the core decided into the response.
fn apply<B: Default>(finish: Finish, mut response: Response<B>) -> Response<B> {
    match finish {
        Finish::Respond {
            set_cookie,
            vary_cookie,
        } => {
            add_session_headers(response.headers_mut(), set_cookie, vary_cookie);
            response
        }
        Finish::Fail {
            failure,
            set_cookie,
        } => {
            let mut response = failure_response(failure);
            // The session was used: what the answer says depends on the cookie.
            add_session_headers(response.headers_mut(), set_cookie, true);
            response
        }
    }
}

/// Appends the session's `Set-Cookie`, if any, and `Cookie` to `Vary` if asked.
fn add_session_headers(headers: &mut HeaderMap, set_cookie: Option<String>, vary_cookie: bool) {
    if let Some(cookie) = set_cookie {
        // From the String itself: no copy.
        match HeaderValue::try_from(cookie) {
            Ok(value) => {
                headers.append(SET_COOKIE, value);
            }
            Err(_) => tracing::error!("session cookie is not a valid header value; not sent"),
        }
    }
    if vary_cookie {
        add_vary_cookie(headers);
    }
}

fn failure_response<B: Default>(failure: Failure) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() =
        StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(retry_after) = failure.retry_after() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static(retry_after));
    }
    response
}

/// Adds `Cookie` to `Vary` once, merging into whatever `Vary` already says.
fn add_vary_cookie(headers: &mut HeaderMap) {
    // One lookup for the usual response, which has no `Vary` yet.
    if let Entry::Vacant(vacant) = headers.entry(VARY) {
        vacant.insert(HeaderValue::from_static("Cookie"));
        return;
    }
    let existing = headers.get_all(VARY).iter().map(HeaderValue::as_bytes);
    if let Some(merged) = vary_with_cookie(existing) {
        if let Ok(value) = HeaderValue::try_from(merged) {
            headers.insert(VARY, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_is_merged_into_the_header_map_once() {
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
}
