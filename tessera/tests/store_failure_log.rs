//! Store failures through the layer are logged at most once a second for
//! the whole process, outages and other failures each on their own: in a
//! test binary of its own, since another test's failures would hold this
//! one's lines back.
#![cfg(feature = "axum")]

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tessera::{MemoryStore, Session, SessionConfig, SessionLayer};

mod common;
#[path = "common/counting_store.rs"]
mod counting_store;
#[path = "common/logs.rs"]
mod logs;

use common::{cookie_pair, request as send, text};

type CountingStore = counting_store::CountingStore<MemoryStore>;

/// A store unusable as configured, failing within the second after an
/// outage was logged, is logged with its cause and as a 500: it was counted
/// among the outage's failures, and the line that counted them named the
/// operation of whichever failed first. Once the store is mended, the
/// first load it answers says so, once for each kind of failure seen.
#[tokio::test]
async fn a_failure_other_than_an_outage_is_logged_apart_from_one() {
    let (logs, _guard) = logs::LogBuffer::capture();
    let store = Arc::new(CountingStore::default());
    let app = Router::new()
        .route(
            "/get",
            get(|s: Session| async move { format!("{:?}", s.get_value("a")) }),
        )
        .route(
            "/set",
            get(|s: Session| async move {
                s.insert_value("a", 1);
                "set"
            }),
        )
        .layer(SessionLayer::with_store(
            SessionConfig::builder()
                .secret_key("store-failure-log-test-key-0123456789")
                .build()
                .expect("config"),
            store.clone(),
        ));
    let response = send(&app, "GET", "/set", None, "").await;
    let cookie = cookie_pair(&response);
    assert_eq!(text(response).await, "set");

    store.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let response = send(&app, "GET", "/get", Some(&cookie), "").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    store.down.store(false, Ordering::SeqCst);
    store.misconfigured.store(true, Ordering::SeqCst);
    let response = send(&app, "GET", "/get", Some(&cookie), "").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    // Mended: the first load the store answers says so, once.
    store.misconfigured.store(false, Ordering::SeqCst);
    for _ in 0..2 {
        let response = send(&app, "GET", "/get", Some(&cookie), "").await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    let text = logs.contents();
    let errors: Vec<&str> = text.lines().filter(|line| line.contains("ERROR")).collect();
    assert_eq!(errors.len(), 2, "{text}");
    assert!(errors[0].contains("answering 503"), "{text}");
    assert!(errors[1].contains("answering 500"), "{text}");
    assert!(errors[1].contains("not as tessera makes them"), "{text}");
    let answered: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("the store answers again"))
        .collect();
    assert_eq!(answered.len(), 2, "one for each kind of failure: {text}");
    assert!(answered.iter().all(|line| line.contains("INFO")), "{text}");
    assert!(errors[1].contains("not_logged=0"), "{text}");
}

/// A full memory store evicts a session for every new one: under a flood
/// of new sessions that was one warning each, a million lines a minute.
/// The first is logged, then at most one a second, counting the others.
#[tokio::test]
async fn evictions_from_a_full_memory_store_are_logged_at_most_once_a_second() {
    use tessera::store::{Record, SessionId, SessionStore as _};
    let (logs, _guard) = logs::LogBuffer::capture();
    let store = MemoryStore::new(2);
    let started = std::time::Instant::now();
    for i in 0..2_000u64 {
        let record = Record {
            data: tessera::Map::new(),
            user_id: None,
            created_at: 1_000,
            expires_at: 10_000 + i,
            absolute_expires_at: None,
        };
        assert!(store
            .create(&SessionId::generate(), &record)
            .await
            .expect("create"));
    }
    let seconds = started.elapsed().as_secs();
    let logged = logs.contents();
    let lines = logged.matches("memory session store is full;").count();
    assert!(lines >= 1, "{logged}");
    assert!(
        u64::try_from(lines).expect("a count") <= seconds + 1,
        "{lines} lines in {seconds} s: {logged}"
    );
    // The last of the burst are counted a second later, on a line of their
    // own, rather than left for an eviction that may never come.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let logged = logs.contents();
    let counted: u64 = logged
        .split("not_logged=")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|digits| digits.parse::<u64>().ok())
                .expect("a count")
        })
        .sum();
    assert_eq!(
        u64::try_from(lines).expect("a count") + counted,
        1_998,
        "{logged}"
    );
}
