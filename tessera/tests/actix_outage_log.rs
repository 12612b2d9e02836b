//! A store outage that actix-web's `Option<Session>` hides from the client,
//! in a test binary of its own: outages are logged at most once a second
//! for the whole process, so another test's outage would hold this one's
//! line back.
#![cfg(feature = "actix")]

use actix_web::http::{header, StatusCode};
use actix_web::test::{call_service, init_service, read_body, TestRequest};
use actix_web::{web, App};
use tessera::actix::SessionMiddleware;
use tessera::{Session, SessionConfig};

#[path = "common/counting_store.rs"]
mod counting_store;
#[path = "common/logs.rs"]
mod logs;

/// actix-web's `Option<Session>` turns the extractor's 503 into `None`, and
/// the handler answers as it likes: the outage is logged all the same, and
/// the line does not claim a 503 the client never got.
#[test]
fn an_outage_swallowed_by_option_session_is_logged_without_claiming_503() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    type Store = counting_store::CountingStore<tessera::MemoryStore>;
    let (logs, _guard) = logs::LogBuffer::capture();
    actix_web::rt::System::new().block_on(async {
        let store = Arc::new(Store::default());
        let app = init_service(
            App::new()
                .wrap(SessionMiddleware::with_store(
                    SessionConfig::builder()
                        .secret_key("actix-test-secret-key-0123456789abcdef")
                        .build()
                        .expect("config"),
                    store.clone(),
                ))
                .route(
                    "/",
                    web::get().to(|s: Option<Session>| async move {
                        if s.is_some() {
                            "with a session"
                        } else {
                            "without a session"
                        }
                    }),
                ),
        )
        .await;
        store.down.store(true, Ordering::SeqCst);
        let cookie = format!("session={}", tessera::SessionId::generate().as_str());
        let response = call_service(
            &app,
            TestRequest::get()
                .uri("/")
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(read_body(response).await, "without a session");
    });
    let text = logs.contents();
    let line = text
        .lines()
        .find(|line| line.contains("could not load the session;"))
        .unwrap_or_else(|| panic!("the outage is logged: {text}"));
    assert!(line.contains("store is down"), "{line}");
    assert!(!line.contains("answering 503"), "{line}");
    assert!(line.contains("Option<Session> gets None"), "{line}");
}
