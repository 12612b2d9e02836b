//! One request through the session layer, in process (no sockets), against
//! the same axum router without it: the route reads a key and increments a
//! counter in a cookie session, the request carrying the cookie of the
//! previous response, as `tessera-bench http`'s route does over HTTP.
//!
//! `cargo bench -p tessera --bench layer`; the ratio of the two is the
//! layer's cost without the network and the load generator around it.

use std::hint::black_box;

use axum::{routing::get, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use tessera::{SessionConfig, SessionType};
use tower::Service as _;

#[path = "../tests/common/counter_route.rs"]
mod counter_route;

use counter_route::request;

async fn bare() -> &'static str {
    "1"
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
    // The cookie a first visit gets, sent back on every measured request.
    let (mut with_sessions, cookie) = counter_route::with_sessions(&runtime, config);
    let mut without = Router::new().route("/", get(bare));

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
