//! One request through the session layer, in process (no sockets), against
//! the same axum router without it:
//!
//! - `tessera_cookie_increment`: the route reads a key and increments a
//!   counter in a cookie session, the request carrying the cookie of the
//!   previous response, as `tessera-bench http`'s route does over HTTP;
//! - `tessera_cookie_refresh/SIZE`: the route only reads a key of a
//!   permanent session of about 100 B or 1 KiB, which the response still
//!   sends again with a new timestamp (Flask's `SESSION_REFRESH_EACH_REQUEST`,
//!   on by default): the common request of a logged-in visitor.
//!
//! `cargo bench -p tessera --bench layer`; the ratio to `axum_bare` is the
//! layer's cost without the network and the load generator around it.

use std::hint::black_box;
use std::time::SystemTime;

use axum::{routing::get, Router};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tessera::{
    CookieCodec, Map, SecretKey, Session, SessionConfig, SessionLayer, SessionType, Value,
};
use tower::Service as _;

#[path = "../tests/common/counter_route.rs"]
mod counter_route;

use counter_route::request;

const KEY: &str = "bench-secret-key-for-the-layer-benchmark";

async fn bare() -> &'static str {
    "1"
}

async fn read_user(session: Session) -> &'static str {
    if session.get_value("_user_id").is_some() {
        "1"
    } else {
        "0"
    }
}

/// A logged-in visitor's permanent session: about 100 B of JSON, or about
/// 1 KiB with a cart (compressed in the cookie, as Flask would).
fn permanent_session(with_cart: bool) -> Map {
    let mut data = Map::from([
        ("_permanent", Value::from(true)),
        ("_fresh", Value::from(true)),
        ("_user_id", Value::from("10457")),
        (
            "csrf_token",
            Value::from("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"),
        ),
    ]);
    if with_cart {
        let items = (0..11)
            .map(|i| {
                Value::Dict(Map::from([
                    ("sku", Value::from(format!("SKU-{:04}", 37 * i))),
                    (
                        "title",
                        Value::from(format!("Catalogue item number {i}, blue")),
                    ),
                    ("qty", Value::from(1 + i % 3)),
                    ("price", Value::from(4.5 + f64::from(i))),
                ]))
            })
            .collect();
        data.insert("cart".to_owned(), Value::List(items));
    }
    data
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let config = SessionConfig::builder()
        .secret_key(KEY)
        .session_type(SessionType::Cookie)
        .build()
        .expect("a configuration");
    // The cookie a first visit gets, sent back on every measured request.
    let (mut with_sessions, cookie) = counter_route::with_sessions(&runtime, config.clone());
    let mut without = Router::new().route("/", get(bare));

    let mut group = c.benchmark_group("request");
    group.bench_function("axum_bare", |b| {
        b.iter(|| black_box(runtime.block_on(without.call(request(None)))))
    });
    group.bench_function("tessera_cookie_increment", |b| {
        b.iter(|| black_box(runtime.block_on(with_sessions.call(request(Some(&cookie))))))
    });
    let codec = CookieCodec::new(&SecretKey::from(KEY), &[]);
    let mut reader = Router::new()
        .route("/", get(read_user))
        .layer(SessionLayer::new(config));
    for (label, with_cart) in [("100B", false), ("1KiB", true)] {
        let cookie = format!(
            "session={}",
            codec.encode(&permanent_session(with_cart), SystemTime::now())
        );
        group.bench_with_input(
            BenchmarkId::new("tessera_cookie_refresh", label),
            &cookie,
            |b, cookie| {
                b.iter(|| {
                    let response = runtime
                        .block_on(reader.call(request(Some(cookie))))
                        .expect("a response");
                    assert!(response.headers().contains_key(http::header::SET_COOKIE));
                    black_box(response)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
