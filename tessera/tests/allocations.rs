//! Heap allocations on the cookie path, counted rather than timed: a count
//! does not depend on the machine, so it can guard what the benchmarks
//! measured. The counts are the calling thread's own: the test harness's
//! other threads allocate at any time, and a process-wide count once took
//! one of their allocations for the code's.
#![cfg(feature = "axum")]

use std::time::SystemTime;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use tessera::{
    CookieCodec, Map, SecretKey, Session, SessionConfig, SessionLayer, SessionType, Value,
};
use tower::Service as _;

#[path = "common/counter_route.rs"]
mod counter_route;

use counter_route::request;

/// Requests or operations per measurement; the counts are averaged over them.
const RUNS: usize = 200;

/// The same answer as `counter_route::counter`'s, without a session.
async fn bare() -> String {
    "1".to_owned()
}

/// Allocations per call of `run`, after a few calls to warm up (lazily built
/// statics, per-thread buffers).
fn allocations_per_call(mut run: impl FnMut()) -> f64 {
    for _ in 0..10 {
        run();
    }
    let counted = allocation_counter::measure(|| {
        for _ in 0..RUNS {
            run();
        }
    });
    counted.count_total as f64 / RUNS as f64
}

fn session_100b() -> Map {
    Map::from([
        ("_fresh".to_owned(), Value::from(true)),
        ("_user_id".to_owned(), Value::from("42")),
        (
            "csrf_token".to_owned(),
            Value::from("Jq3vX9kTz0bWmR7cLs2YhN5uFe8GdPa1oKiE4wVxBtQ"),
        ),
        ("theme".to_owned(), Value::from("dark")),
    ])
}

#[test]
fn encoding_allocates_only_the_cookie() {
    // Encoding allocates the cookie it returns and nothing else: the JSON,
    // its zlib form (tried for this session, and not used) and the base64
    // are written in per-thread buffers. It was four.
    let codec = CookieCodec::new(&SecretKey::from("allocation-test-secret-key"), &[]);
    let session = session_100b();
    let encode = allocations_per_call(|| {
        std::hint::black_box(codec.encode(&session, SystemTime::now()));
    });
    assert_eq!(encode, 1.0, "allocations per encode");
}

#[test]
fn decoding_allocates_what_the_session_holds() {
    // Decoding allocates what the session holds: its map's entries and
    // three strings (`true` needs none; the four keys are short enough to
    // live in the entries), four in all. Eight while each key had its own
    // allocation; before the per-thread buffers, the stack-decoded
    // timestamp and the parser inserting into the map directly, eleven.
    let codec = CookieCodec::new(&SecretKey::from("allocation-test-secret-key"), &[]);
    let cookie = codec.encode(&session_100b(), SystemTime::now());
    let decode = allocations_per_call(|| {
        let decoded = codec.decode(&cookie, SystemTime::now()).expect("decodes");
        assert_eq!(decoded.data.len(), 4);
    });
    assert_eq!(decode, 4.0, "allocations per decode");
}

/// Allocations per request of `with_sessions` given `cookie`, and of the
/// same route's answer without a session layer. Every answer of
/// `with_sessions` must succeed, and set the cookie if `sets_cookie`.
fn per_request_with_and_without(
    runtime: &tokio::runtime::Runtime,
    with_sessions: &mut Router,
    cookie: &str,
    sets_cookie: bool,
) -> (f64, f64) {
    let mut without = Router::new().route("/", get(bare));
    // The requests are built before counting: only serving them counts.
    let mut requests: Vec<_> = (0..RUNS + 10).map(|_| request(None)).collect();
    let bare = allocations_per_call(|| {
        let request = requests.pop().expect("a request");
        let response = runtime.block_on(without.call(request));
        assert!(response.is_ok());
    });
    let mut requests: Vec<_> = (0..RUNS + 10).map(|_| request(Some(cookie))).collect();
    let sessions = allocations_per_call(|| {
        let request = requests.pop().expect("a request");
        let response = runtime
            .block_on(with_sessions.call(request))
            .expect("a response");
        assert!(response.status().is_success());
        assert_eq!(
            response.headers().contains_key(header::SET_COOKIE),
            sets_cookie
        );
    });
    (sessions, bare)
}

#[test]
fn the_layer_adds_few_allocations_per_request() {
    // A whole request through the layer, against the same router without
    // it. Eight: the session's state, its place in the request's
    // extensions, the entries of the map read from the cookie (its one key
    // lives in them), the `Set-Cookie` value; the response's header map
    // growing for `Set-Cookie` and `Vary`; and the two boxes axum makes for
    // any layer on a route. Nine while `insert` took its key as a `String`,
    // ten while map keys had allocations of their own, twenty-two before the
    // cookie path's buffers were reused; a little room is left for
    // dependency updates.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let config = SessionConfig::builder()
        .secret_key("allocation-test-secret-key")
        .build()
        .expect("a configuration");
    let (mut with_sessions, cookie) = counter_route::with_sessions(&runtime, config);
    // A cookie session sends its cookie again with every change.
    let (sessions, bare) =
        per_request_with_and_without(&runtime, &mut with_sessions, &cookie, true);
    let added = sessions - bare;
    assert!(
        added <= 10.0,
        "the session layer adds {added} allocations per request ({sessions} against {bare})"
    );
}

/// The HTTP benchmark's server-side route: read `user`, increment `counter`
/// in the store.
async fn server_side_counter(session: Session) -> String {
    let _user: Option<String> = session.get("user").ok().flatten();
    let counter = session.increment("counter", 1).await.expect("an increment");
    counter.to_string()
}

#[test]
fn a_server_side_request_allocates_little() {
    // The same request on the memory store, where the store's own work is
    // a lookup each for the load and the increment: what is counted is
    // what the layer, the session and the store's interface allocate
    // around them, the same on every store. Thirteen, among them the id
    // read from the cookie and the list of ids presented, the session's
    // state and its place in the request's extensions, the store's boxed
    // futures and the record the load answers, the `Set-Cookie` value.
    // Eighteen while each copy of an id had an allocation of its own (the
    // load copied the list of ids, `Session::id` the id) and the store and
    // the session copied the key of each increment to insert its result;
    // a little room is left for dependency updates.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let config = SessionConfig::builder()
        .secret_key("allocation-test-secret-key")
        .session_type(SessionType::Memory)
        .build()
        .expect("a configuration");
    let mut with_sessions = Router::new()
        .route("/", get(server_side_counter))
        .layer(SessionLayer::new(config));
    let cookie = counter_route::first_cookie(&runtime, &mut with_sessions);
    // Only the id is in the cookie, and it stays.
    let (sessions, bare) =
        per_request_with_and_without(&runtime, &mut with_sessions, &cookie, false);
    let added = sessions - bare;
    assert!(
        added <= 15.0,
        "the session layer adds {added} allocations per request ({sessions} against {bare})"
    );
}
