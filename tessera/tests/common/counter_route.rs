//! The route `tessera-bench http` serves (read one key, increment another),
//! in process behind the session layer, with the session cookie its first
//! response sets. Shared by `tests/allocations.rs` and `benches/layer.rs`,
//! so that both count and time the same request.

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{header, Request};
use tessera::{Session, SessionConfig, SessionLayer};
use tokio::runtime::Runtime;
use tower::Service as _;

pub(crate) async fn counter(session: Session) -> String {
    let _user: Option<String> = session.get("user").ok().flatten();
    let counter: u64 = session.get("counter").ok().flatten().unwrap_or(0) + 1;
    session.insert("counter", counter).ok();
    counter.to_string()
}

/// `GET /`, with `cookie` (`name=value`) if given.
pub(crate) fn request(cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).expect("a request")
}

/// The router with `counter` behind the session layer, and the cookie
/// (`name=value`) its first response sets, to send back on every request.
pub(crate) fn with_sessions(runtime: &Runtime, config: SessionConfig) -> (Router, String) {
    let mut router = Router::new()
        .route("/", get(counter))
        .layer(SessionLayer::new(config));
    let cookie = first_cookie(runtime, &mut router);
    (router, cookie)
}

/// The session cookie (`name=value`) that `router`'s answer to a first
/// request without one sets.
pub(crate) fn first_cookie(runtime: &Runtime, router: &mut Router) -> String {
    let first = runtime
        .block_on(router.call(request(None)))
        .expect("a response");
    first
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned()
}
