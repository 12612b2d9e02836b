//! actix-web middleware and extractor (feature `actix`): the same sessions,
//! configuration, response rules and stores as the tower layer, from the
//! same core.
//!
//! Wrap the app in [`SessionMiddleware`] and take a [`Session`] in any
//! handler. Server-side, the extractor is where the session is loaded, so a
//! handler that does not take one costs no store call.
//!
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//! use tessera::actix::SessionMiddleware;
//! use tessera::{Session, SessionConfig};
//!
//! async fn counter(session: Session) -> String {
//!     let visits: u64 = session.get("visits").ok().flatten().unwrap_or(0) + 1;
//!     session.insert("visits", visits).ok();
//!     format!("visit number {visits}")
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let sessions = SessionMiddleware::new(SessionConfig::from_env()?);
//!     // Or `#[actix_web::main]` with actix-web's `macros` feature.
//!     actix_web::rt::System::new().block_on(async move {
//!         HttpServer::new(move || {
//!             App::new()
//!                 .wrap(sessions.clone())
//!                 .route("/", web::get().to(counter))
//!         })
//!         .bind(("127.0.0.1", 5000))?
//!         .run()
//!         .await
//!     })?;
//!     Ok(())
//! }
//! ```
//!
//! Build the middleware once, outside `HttpServer::new`'s closure, and clone
//! it into each worker: the clones share one store, one connection pool and
//! one sweeper.

use std::fmt;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{Error, FromRequest, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};

use crate::config::SessionConfig;
use crate::core::{vary_with_cookie, Failure, Finish, SessionCore};
use crate::rejection::{loaded, SessionRejection};
use crate::session::{Session, SessionError};
use crate::store::SessionStore;

/// Opens a [`Session`] for every request and saves it into the response.
///
/// A request that already carries a `Session` (from another
/// `SessionMiddleware` further out, say around a scope that has its own)
/// passes through untouched: the outer middleware's session is the one used
/// and saved, once.
#[derive(Debug, Clone)]
pub struct SessionMiddleware {
    core: Arc<SessionCore>,
}

impl SessionMiddleware {
    /// Middleware for this configuration: signed cookies for
    /// `SESSION_TYPE=cookie`, encrypted ones for `encrypted`, otherwise
    /// server-side sessions in the store it names, opened lazily, exactly as
    /// [`SessionLayer::new`](crate::SessionLayer::new).
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

    /// The configuration this middleware uses.
    pub fn config(&self) -> &SessionConfig {
        self.core.config()
    }

    /// The server-side store, if sessions are server-side.
    pub fn store(&self) -> Option<Arc<dyn SessionStore>> {
        self.core.store()
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SessionMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionMiddlewareService {
            service: Rc::new(service),
            core: self.core.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around the app's.
#[derive(Debug)]
pub struct SessionMiddlewareService<S> {
    service: Rc<S>,
    core: Arc<SessionCore>,
}

/// The response of [`SessionMiddlewareService`], once the session is saved.
pub type SessionResponseFuture<B> =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>>>>;

impl<S, B> Service<ServiceRequest> for SessionMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = SessionResponseFuture<B>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        // An outer middleware's session is the one used and saved (see
        // `SessionMiddleware`): saving it twice would send two cookies.
        let outer = request
            .extensions()
            .get::<Session>()
            .map(|outer| outer.layer_mark().cloned());
        if let Some(outer) = outer {
            self.core.note_passed_through(outer.as_ref());
            let response = self.service.call(request);
            return Box::pin(async move { Ok(response.await?.map_into_left_body()) });
        }
        let cookies = request.headers().get_all(header::COOKIE);
        let session = self
            .core
            .open(cookies.map(HeaderValue::as_bytes), SystemTime::now());
        request.extensions_mut().insert(session.clone());
        let response = self.service.call(request);
        let core = self.core.clone();
        Box::pin(async move {
            let response = response.await;
            let finish = if core.is_server_side() {
                core.finish_server(&session).await
            } else {
                core.finish_cookie(&session, SystemTime::now())
            };
            match response {
                Ok(response) => Ok(apply(finish, response)),
                // An inner middleware's error (a 401 after a "please log
                // in" flash, say): actix makes its response only after every
                // middleware has run, and the request that would make one
                // here is gone. The session is saved all the same, as a
                // Flask app's or an axum middleware's is, and its headers
                // go into that response.
                // Wrapped, the error no longer downcasts to its type in
                // outer middleware (an auth middleware's error turned into a
                // redirect, say), so it is wrapped only for a cookie: a
                // response that sets none (the session only read, or a
                // server-side session saved under the id it had) would add
                // just `Vary`.
                Err(error) => match finish {
                    Finish::Respond {
                        set_cookie: None, ..
                    } => Err(error),
                    finish => Err(SessionSavedWithError { error, finish }.into()),
                },
            }
        })
    }
}

/// Puts what the core decided into the response.
fn apply<B>(finish: Finish, mut response: ServiceResponse<B>) -> ServiceResponse<EitherBody<B>> {
    match finish {
        Finish::Respond {
            set_cookie,
            vary_cookie,
        } => {
            add_session_headers(response.headers_mut(), set_cookie, vary_cookie);
            response.map_into_left_body()
        }
        Finish::Fail {
            failure,
            set_cookie,
        } => {
            let (request, _) = response.into_parts();
            ServiceResponse::new(request, failed_save(failure, set_cookie)).map_into_right_body()
        }
    }
}

/// An inner service's error, whose response gets the session's headers, or
/// the session's own failure response if the save failed. Shows as the
/// inner error does.
struct SessionSavedWithError {
    error: Error,
    finish: Finish,
}

impl fmt::Debug for SessionSavedWithError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

/// The inner error's message; when the save failed too, that failure first,
/// since it is what the response says.
impl fmt::Display for SessionSavedWithError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Finish::Fail { failure, .. } = &self.finish {
            let failure = match failure {
                Failure::StoreUnavailable => "the session store is unavailable",
                Failure::Internal => "the session could not be saved",
                Failure::SessionEnded => "the session ended while the request used it",
            };
            write!(f, "{failure}, after the request failed: ")?;
        }
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for SessionSavedWithError {
    fn status_code(&self) -> StatusCode {
        match &self.finish {
            Finish::Respond { .. } => self.error.as_response_error().status_code(),
            Finish::Fail { failure, .. } => failure_response(*failure).status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match &self.finish {
            Finish::Respond {
                set_cookie,
                vary_cookie,
            } => {
                let mut response = self.error.error_response();
                add_session_headers(response.headers_mut(), set_cookie.clone(), *vary_cookie);
                response
            }
            Finish::Fail {
                failure,
                set_cookie,
            } => failed_save(*failure, set_cookie.clone()),
        }
    }
}

/// The response that replaces the application's when the save failed, with
/// the cookie of what the store holds already, if any.
fn failed_save(failure: Failure, set_cookie: Option<String>) -> HttpResponse {
    let mut failed = failure_response(failure);
    // The session was used: what the answer says depends on the cookie.
    add_session_headers(failed.headers_mut(), set_cookie, true);
    failed
}

/// Appends the session's `Set-Cookie`, if any, and `Cookie` to `Vary` if asked.
fn add_session_headers(headers: &mut HeaderMap, set_cookie: Option<String>, vary_cookie: bool) {
    if let Some(cookie) = set_cookie {
        match HeaderValue::try_from(cookie) {
            Ok(value) => headers.append(header::SET_COOKIE, value),
            Err(_) => tracing::error!("session cookie is not a valid header value; not sent"),
        }
    }
    if vary_cookie {
        add_vary_cookie(headers);
    }
}

fn failure_response(failure: Failure) -> HttpResponse {
    let status =
        StatusCode::from_u16(failure.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = match failure {
        Failure::StoreUnavailable => crate::rejection::STORE_UNAVAILABLE_BODY,
        Failure::Internal => "Internal Server Error: the session could not be saved.\n",
        Failure::SessionEnded => crate::rejection::SESSION_ENDED_BODY,
    };
    text_response(status, failure.retry_after(), text.to_owned())
}

fn add_vary_cookie(headers: &mut HeaderMap) {
    let existing = headers.get_all(header::VARY).map(HeaderValue::as_bytes);
    if let Some(merged) = vary_with_cookie(existing) {
        if let Ok(value) = HeaderValue::try_from(merged) {
            headers.insert(header::VARY, value);
        }
    }
}

impl ResponseError for SessionRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let mut response = text_response(
            self.status_code(),
            self.retry_after(),
            self.client_message(),
        );
        if self.varies_with_cookie() {
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Cookie"));
        }
        response
    }
}

/// Lets handlers use `?` on session operations in functions returning
/// `actix_web::Result`: see [`SessionError::status`] for the status each
/// answers.
impl ResponseError for SessionError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        text_response(
            self.status_code(),
            self.retry_after(),
            self.client_message(),
        )
    }
}

/// A plain-text response, with `Retry-After` if given.
fn text_response(
    status: StatusCode,
    retry_after: Option<&'static str>,
    body: String,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if let Some(retry_after) = retry_after {
        response.insert_header((header::RETRY_AFTER, retry_after));
    }
    response
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

/// The session of the request, loaded from the store if it is server-side.
/// Rejects with a 500 when the app is not wrapped in [`SessionMiddleware`],
/// and a 503 with `Retry-After` when the store cannot load it.
impl FromRequest for Session {
    type Error = SessionRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let session = request.extensions().get::<Session>().cloned();
        // actix-web's own `Option<Session>` turns the rejection into `None`
        // without asking this extractor, so the log cannot say 503.
        Box::pin(loaded(session, crate::store::Outcome::ExtractorRejected))
    }
}
