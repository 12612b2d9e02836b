//! What is particular to actix-web: middleware inside tessera's, the
//! extractor without the middleware, and a store that is down. The response
//! rules themselves are in `stacks.rs`, run against every web stack.
#![cfg(feature = "actix")]

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::test::{call_service, init_service, read_body, try_call_service, TestRequest};
use actix_web::{web, App, Error, HttpMessage as _};
use tessera::actix::SessionMiddleware;
use tessera::{Session, SessionConfig};

#[path = "common/counting_store.rs"]
mod counting_store;
#[path = "common/logs.rs"]
mod logs;

const KEY: &str = "actix-test-secret-key-0123456789abcdef";

fn config() -> SessionConfig {
    SessionConfig::builder()
        .secret_key(KEY)
        .build()
        .expect("config")
}

fn run<F: std::future::Future<Output = ()>>(test: F) {
    actix_web::rt::System::new().block_on(test);
}

fn cookie_pair(response: &ServiceResponse<impl MessageBody>) -> String {
    let cookies: Vec<_> = response.headers().get_all(header::SET_COOKIE).collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let cookie = cookies[0].to_str().expect("ascii");
    cookie.split(';').next().expect("pair").to_owned()
}

async fn count_after(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let session = request.extensions().get::<Session>().cloned();
    let response = next.call(request).await?;
    if let Some(session) = session {
        let count: i64 = session.get("after").ok().flatten().unwrap_or(0);
        session.insert("after", count + 1).ok();
    }
    Ok(response)
}

/// test_session_stored_last: writes made after the handler, by middleware
/// inside tessera's, are saved.
#[test]
fn writes_after_the_handler_are_saved() {
    run(async {
        let app = init_service(
            App::new()
                .wrap(from_fn(count_after))
                .wrap(SessionMiddleware::new(config()))
                .route(
                    "/",
                    web::get().to(|s: Session| async move {
                        format!("{:?}", s.get::<i64>("after").ok().flatten())
                    }),
                ),
        )
        .await;
        let first = call_service(&app, TestRequest::get().uri("/").to_request()).await;
        let cookie = cookie_pair(&first);
        assert_eq!(read_body(first).await, "None");
        let second = call_service(
            &app,
            TestRequest::get()
                .uri("/")
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        assert_eq!(read_body(second).await, "Some(1)");
    });
}

/// An inner middleware that writes to the session and then fails (an
/// authentication check that flashes "please log in" before its 401): the
/// error's response carries the session's cookie, and the write is kept,
/// as for an error the handler returns.
#[test]
fn a_failing_inner_middleware_still_saves_the_session() {
    async fn refuse(
        request: ServiceRequest,
        next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, Error> {
        if request.path() == "/plain" {
            return Err(actix_web::error::ErrorForbidden("no"));
        }
        if request.path() == "/read-only" {
            let _ = request
                .extensions()
                .get::<Session>()
                .map(|session| session.contains_key("user"));
            return Err(actix_web::error::ErrorForbidden("no"));
        }
        if request.path() == "/guarded" {
            if let Some(session) = request.extensions().get::<Session>() {
                session.flash("please log in");
            }
            return Err(actix_web::error::ErrorUnauthorized("log in first"));
        }
        next.call(request).await
    }
    run(async {
        let app = init_service(
            App::new()
                .wrap(from_fn(refuse))
                .wrap(SessionMiddleware::new(config()))
                .route("/guarded", web::get().to(|| async { "secret" }))
                .route(
                    "/flashes",
                    web::get().to(|s: Session| async move {
                        let flashes: Vec<String> =
                            s.take_flashes().iter().map(tessera::Flash::text).collect();
                        flashes.join(",")
                    }),
                ),
        )
        .await;
        // An error of a request that leaves the session alone is passed on
        // as it is.
        let Err(error) =
            try_call_service(&app, TestRequest::get().uri("/plain").to_request()).await
        else {
            panic!("the middleware's error is passed on");
        };
        assert!(error
            .as_error::<actix_web::error::InternalError<&str>>()
            .is_some());
        // So is one of a request that only read it (an authentication check
        // whose error an outer middleware turns into a redirect): it would
        // add only `Vary`, not worth hiding the error's type.
        let Err(error) =
            try_call_service(&app, TestRequest::get().uri("/read-only").to_request()).await
        else {
            panic!("the middleware's error is passed on");
        };
        assert!(error
            .as_error::<actix_web::error::InternalError<&str>>()
            .is_some());
        // The error goes on to the server, which answers with its response.
        let Err(error) =
            try_call_service(&app, TestRequest::get().uri("/guarded").to_request()).await
        else {
            panic!("the middleware's error is passed on");
        };
        assert_eq!(
            error.to_string(),
            "log in first",
            "shown as the inner error"
        );
        let refused = error.error_response();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let cookies: Vec<_> = refused.headers().get_all(header::SET_COOKIE).collect();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let cookie = cookies[0]
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();
        assert_eq!(refused.headers().get(header::VARY).expect("Vary"), "Cookie");
        let body = actix_web::body::to_bytes(refused.into_body())
            .await
            .expect("body");
        assert_eq!(body, "log in first");
        let flashes = call_service(
            &app,
            TestRequest::get()
                .uri("/flashes")
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        assert_eq!(read_body(flashes).await, "please log in");
    });
}

/// A handler that panics gets no response from actix-web, and its writes
/// are lost; caught as the README says (the future in `AssertUnwindSafe`,
/// then `catch_unwind`) and turned into an error, it is answered 500 with
/// what it wrote before the panic saved, as Flask saves it.
#[test]
fn a_panic_caught_as_the_readme_says_is_saved_with_its_error() {
    use futures_util::FutureExt as _;
    use std::panic::AssertUnwindSafe;

    async fn panics(session: Session) -> actix_web::Result<String> {
        let caught = AssertUnwindSafe(async move {
            session.insert("before_the_panic", 1).expect("insert");
            if session.contains_key("before_the_panic") {
                panic!("a bug in the handler");
            }
            "unreachable".to_owned()
        })
        .catch_unwind()
        .await;
        caught.map_err(|_| actix_web::error::ErrorInternalServerError("the handler panicked"))
    }
    run(async {
        let app = init_service(
            App::new()
                .wrap(SessionMiddleware::new(config()))
                .route("/panics", web::get().to(panics))
                .route(
                    "/read",
                    web::get().to(|s: Session| async move {
                        s.get::<i64>("before_the_panic")
                            .expect("read")
                            .map_or("none".to_owned(), |v| v.to_string())
                    }),
                ),
        )
        .await;
        let response = call_service(&app, TestRequest::get().uri("/panics").to_request()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cookie = cookie_pair(&response);
        let read = call_service(
            &app,
            TestRequest::get()
                .uri("/read")
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        assert_eq!(read_body(read).await, "1");
    });
}

/// An inner middleware's error when the session cannot be saved either:
/// the store's 503 is the response, and the error says both.
#[cfg(feature = "redis")]
#[test]
fn a_failing_inner_middleware_with_the_store_down_answers_503() {
    use std::sync::Arc;
    use tessera::SessionStore;
    async fn refuse(
        request: ServiceRequest,
        _next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, Error> {
        if let Some(session) = request.extensions().get::<Session>() {
            session.flash("please log in");
        }
        Err::<ServiceResponse<String>, _>(actix_web::error::ErrorUnauthorized("log in first"))
    }
    run(async {
        // Port 9 (discard) on loopback: nothing listens, connects are refused.
        let store: Arc<dyn SessionStore> =
            Arc::new(tessera::store::RedisStore::new("redis://127.0.0.1:9/0").expect("a URL"));
        let app = init_service(
            App::new()
                .wrap(from_fn(refuse))
                .wrap(SessionMiddleware::with_store(config(), store))
                .route("/guarded", web::get().to(|| async { "secret" })),
        )
        .await;
        let Err(error) =
            try_call_service(&app, TestRequest::get().uri("/guarded").to_request()).await
        else {
            panic!("the middleware's error is passed on");
        };
        assert_eq!(
            error.to_string(),
            "the session store is unavailable, after the request failed: log in first"
        );
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .expect("Retry-After"),
            "1"
        );
        assert!(response.headers().get(header::SET_COOKIE).is_none());
    });
}

/// A scope with its own middleware inside the app's: the outer session is
/// used and saved once, so the scope's write is kept.
#[test]
fn nested_middleware_saves_the_session_once() {
    async fn set_inner(s: Session) -> &'static str {
        s.set_permanent(true);
        s.insert("inner", 1).ok();
        "set"
    }
    async fn set_outer(s: Session) -> &'static str {
        s.set_permanent(true);
        s.insert("outer", 1).ok();
        "set"
    }
    run(async {
        let app = init_service(
            App::new()
                .wrap(SessionMiddleware::new(config()))
                .service(
                    web::scope("/nested")
                        .wrap(SessionMiddleware::new(config()))
                        .route("/set", web::post().to(set_inner)),
                )
                .route("/set", web::post().to(set_outer))
                .route(
                    "/get",
                    web::get().to(|s: Session| async move {
                        let outer: Option<i64> = s.get("outer").ok().flatten();
                        let inner: Option<i64> = s.get("inner").ok().flatten();
                        format!("{outer:?} {inner:?}")
                    }),
                ),
        )
        .await;
        let first = call_service(&app, TestRequest::post().uri("/set").to_request()).await;
        let cookie = cookie_pair(&first);
        let nested = call_service(
            &app,
            TestRequest::post()
                .uri("/nested/set")
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        let cookie = cookie_pair(&nested);
        let read = call_service(
            &app,
            TestRequest::get()
                .uri("/get")
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        assert_eq!(read_body(read).await, "Some(1) Some(1)");
    });
}

/// A scope's middleware of another configuration than the app's passes
/// through all the same, and says so once; the same configuration says
/// nothing.
#[test]
fn a_nested_middleware_with_another_configuration_is_reported() {
    let (logs, _guard) = logs::LogBuffer::capture();
    let passed = "passes its requests through";
    let admin = SessionConfig::builder()
        .secret_key(KEY)
        .cookie_name("admin_session")
        .build()
        .expect("config");
    for (inner, reported) in [(config(), false), (admin, true)] {
        run(async {
            let app = init_service(
                App::new().wrap(SessionMiddleware::new(config())).service(
                    web::scope("/admin")
                        .wrap(SessionMiddleware::new(inner))
                        .route(
                            "/set",
                            web::post().to(|s: Session| async move {
                                s.insert("k", 1).ok();
                                "set"
                            }),
                        ),
                ),
            )
            .await;
            let before = logs.contents().matches(passed).count();
            for _ in 0..2 {
                let response =
                    call_service(&app, TestRequest::post().uri("/admin/set").to_request()).await;
                assert!(cookie_pair(&response).starts_with("session="));
            }
            assert_eq!(
                logs.contents().matches(passed).count(),
                before + usize::from(reported),
                "{}",
                logs.contents()
            );
        });
    }
}

/// Handlers returning `actix_web::Result` can use `?` on session operations:
/// a value of the wrong type for an atomic operation answers 409 with the
/// reason, in plain text.
#[test]
fn session_errors_are_responses() {
    async fn set(s: Session) -> actix_web::Result<&'static str> {
        s.insert("n", "text")?;
        Ok("set")
    }
    async fn count(s: Session) -> actix_web::Result<String> {
        Ok(s.increment("n", 1).await?.to_string())
    }
    run(async {
        let config = SessionConfig::builder()
            .secret_key(KEY)
            .session_type(tessera::SessionType::Memory)
            .build()
            .expect("config");
        let app = init_service(
            App::new()
                .wrap(SessionMiddleware::new(config))
                .route("/set", web::post().to(set))
                .route("/count", web::post().to(count)),
        )
        .await;
        let first = call_service(&app, TestRequest::post().uri("/set").to_request()).await;
        let cookie = cookie_pair(&first);
        let response = call_service(
            &app,
            TestRequest::post()
                .uri("/count")
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"text/plain; charset=utf-8"[..])
        );
        let body = read_body(response).await;
        let body = std::str::from_utf8(&body).expect("utf-8");
        assert!(
            body.starts_with("Conflict: session key \"n\" holds a str"),
            "{body}"
        );
    });
}

/// Without the middleware the extractor rejects with a clear 500, not a panic.
#[test]
fn extractor_without_middleware_is_a_clear_error() {
    run(async {
        let app =
            init_service(App::new().route("/", web::get().to(|_s: Session| async { "" }))).await;
        let response = call_service(&app, TestRequest::get().uri("/").to_request()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = read_body(response).await;
        let body = std::str::from_utf8(&body).expect("utf-8");
        assert!(body.contains("SessionMiddleware"), "{body}");
    });
}

/// A store that cannot be reached: 503 with Retry-After when the session is
/// needed, nothing at all when it is not.
#[cfg(feature = "redis")]
#[test]
fn an_unreachable_store_answers_503() {
    use std::sync::Arc;
    use tessera::SessionStore;
    run(async {
        // Port 9 (discard) on loopback: nothing listens, connects are refused.
        let store: Arc<dyn SessionStore> =
            Arc::new(tessera::store::RedisStore::new("redis://127.0.0.1:9/0").expect("a URL"));
        let app = init_service(
            App::new()
                .wrap(SessionMiddleware::with_store(config(), store))
                .route("/untouched", web::get().to(|| async { "fine" }))
                .route(
                    "/counter",
                    web::get().to(|s: Session| async move {
                        s.increment("visits", 1)
                            .await
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    }),
                ),
        )
        .await;
        let response = call_service(&app, TestRequest::get().uri("/untouched").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        // With a session id the extractor must load it: the store is asked.
        let id = tessera::SessionId::generate();
        let response = call_service(
            &app,
            TestRequest::get()
                .uri("/counter")
                .insert_header((header::COOKIE, format!("session={}", id.as_str())))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        // Without the cookie the same route answers 200: a cache must not
        // give one visitor's answer to another.
        assert_eq!(
            response.headers().get(header::VARY).map(|v| v.as_bytes()),
            Some(&b"Cookie"[..])
        );
        assert_eq!(
            read_body(response).await,
            "Service Unavailable: the session store is unavailable; try again shortly.\n"
        );
    });
}

/// A store that answers but cannot be used as configured (here an SQLite
/// URL naming a directory): the extractor fails with 500, without
/// `Retry-After`, since trying again would fail the same way.
#[cfg(feature = "sqlite")]
#[test]
fn a_store_unusable_as_configured_answers_500() {
    use std::sync::Arc;
    use tessera::SessionStore;
    run(async {
        let dir = std::env::temp_dir().join(format!("tessera-actix-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let store: Arc<dyn SessionStore> = Arc::new(tessera::store::SqliteStore::new(&dir));
        let app = init_service(
            App::new()
                .wrap(SessionMiddleware::with_store(config(), store))
                .route(
                    "/read",
                    web::get().to(|s: Session| async move {
                        format!("{:?}", s.get::<u64>("visits").ok().flatten())
                    }),
                ),
        )
        .await;
        let id = tessera::SessionId::generate();
        let response = call_service(
            &app,
            TestRequest::get()
                .uri("/read")
                .insert_header((header::COOKIE, format!("session={}", id.as_str())))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// A login whose save fails after the session moved to its new id (the
/// store went down between the move and the write) answers 503 and still
/// hands over the new id, under which the store keeps the session.
#[test]
fn a_login_whose_save_fails_still_hands_over_the_new_id() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    type Store = counting_store::CountingStore<tessera::MemoryStore>;

    async fn login(s: Session, store: web::Data<Store>) -> &'static str {
        s.cycle_id().await.expect("cycled");
        s.insert("username", "alice").expect("insert");
        store.updates_down.store(true, Ordering::SeqCst);
        "logged in"
    }
    run(async {
        let store = Arc::new(Store::default());
        let app = init_service(
            App::new()
                .wrap(SessionMiddleware::with_store(config(), store.clone()))
                .app_data(web::Data::from(store.clone()))
                .route(
                    "/set",
                    web::post().to(|s: Session| async move {
                        s.insert("cart", "apple").expect("insert");
                        "ok"
                    }),
                )
                .route("/login", web::post().to(login))
                .route(
                    "/get/{key}",
                    web::get().to(|s: Session, key: web::Path<String>| async move {
                        format!("{:?}", s.get::<String>(&key).ok().flatten())
                    }),
                ),
        )
        .await;
        let set = call_service(&app, TestRequest::post().uri("/set").to_request()).await;
        let before = cookie_pair(&set);
        let response = call_service(
            &app,
            TestRequest::post()
                .uri("/login")
                .insert_header((header::COOKIE, before.clone()))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let after = cookie_pair(&response);
        assert_ne!(after, before, "the new id");

        store.updates_down.store(false, Ordering::SeqCst);
        for (cookie, key, expected) in [
            (&after, "cart", "Some(\"apple\")"),
            (&after, "username", "None"),
            (&before, "cart", "None"),
        ] {
            let response = call_service(
                &app,
                TestRequest::get()
                    .uri(&format!("/get/{key}"))
                    .insert_header((header::COOKIE, cookie.clone()))
                    .to_request(),
            )
            .await;
            assert_eq!(read_body(response).await, expected, "{cookie} {key}");
        }
    });
}
