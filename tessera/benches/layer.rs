//! One request through the session layer, in process (no sockets), against
//! the same axum router without it: the route reads a key and increments a
//! counter in a cookie session, the request carrying the cookie of the
//! previous response, as `tessera-bench http`'s route does over HTTP.
//!
//! `cargo bench -p tessera --bench layer`; the ratio of the two is the
//! layer's cost without the network and the load generator around it.

use std::hint::black_box;

use axum::body::Body;
use axum::{routing::get, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use tessera::{Session, SessionConfig, SessionLayer, SessionType};
use tower::Service as _;

async fn counter(session: Session) -> String {
    let _user: Option<String> = session.get("user").ok().flatten();
    let counter: u64 = session.get("counter").ok().flatten().unwrap_or(0) + 1;
    session.insert("counter", counter).ok();
    counter.to_string()
}

async fn bare() -> &'static str {
    "1"
}

fn request(cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::builder().uri("/");
    if let Some(cookie) = cookie {
        request = request.header(http::header::COOKIE, cookie);
    }
    request.body(Body::empty()).expect("a request")
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let config = SessionConfig::builder()
        .secret_key("bench-secret-key-for-the-layer-benchmark")
        .session_type(SessionType::Cookie)
        .build()
        .expect("a configuration");
    let mut with_sessions = Router::new()
        .route("/", get(counter))
        .layer(SessionLayer::new(config));
    let mut without = Router::new().route("/", get(bare));

    // The cookie a first visit gets, sent back on every measured request.
    let first = runtime
        .block_on(with_sessions.call(request(None)))
        .expect("a response");
    let cookie = first
        .headers()
        .get(http::header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned();

    let mut group = c.benchmark_group("request");
    group.bench_function("axum_bare", |b| {
        b.iter(|| black_box(runtime.block_on(without.call(request(None)))))
    });
    group.bench_function("tessera_cookie_increment", |b| {
        b.iter(|| black_box(runtime.block_on(with_sessions.call(request(Some(&cookie))))))
    });
    group.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
