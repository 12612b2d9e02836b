//! What is particular to the tower layer and axum: in-process requests
//! beyond what an HTTP server accepts, middleware inside the layer, the
//! extractor without the layer, and what is logged. The response rules
//! themselves are in `stacks.rs`, run against every web stack.
#![cfg(feature = "axum")]

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tessera::{ConfigError, Session, SessionConfig, SessionConfigBuilder, SessionLayer};
use tower::ServiceExt;

mod common;
#[path = "common/incompressible.rs"]
mod incompressible;
#[path = "common/logs.rs"]
mod logs;

use incompressible::incompressible;

use common::{cookie_pair, set_cookies, text};
use logs::LogBuffer;

const KEY: &str = "layer-test-secret-key-0123456789abcdef";

fn config() -> SessionConfigBuilder {
    SessionConfig::builder().secret_key(KEY)
}

/// The routes the tests here need.
fn app(config: SessionConfig) -> Router {
    Router::new()
        .route(
            "/get",
            get(|s: Session| async move { format!("{:?}", s.get::<String>("value").ok().flatten()) }),
        )
        .route(
            "/set",
            post(|s: Session, body: String| async move {
                s.insert("value", body).ok();
                "value set"
            }),
        )
        .layer(SessionLayer::new(config))
}

/// `/set` makes the session permanent and stores the body, `/get` reads
/// it, `/none` does not take the session.
fn permanent_app(config: SessionConfig) -> Router {
    Router::new()
        .route(
            "/set",
            post(|s: Session, body: String| async move {
                s.set_permanent(true);
                s.insert("value", body).ok();
                "value set"
            }),
        )
        .route(
            "/get",
            get(|s: Session| async move { format!("{:?}", s.get::<String>("value").ok().flatten()) }),
        )
        .route("/none", get(|| async { "no session" }))
        .layer(SessionLayer::new(config))
}

async fn send(app: &Router, method: &str, uri: &str, cookie: Option<&str>) -> Response {
    common::request(app, method, uri, cookie, "").await
}

async fn post_body(app: &Router, uri: &str, cookie: Option<&str>, body: &str) -> Response {
    common::request(app, "POST", uri, cookie, body).await
}

/// test_missing_session: no secret key is a startup error, not a request error.
#[test]
fn missing_secret_key_fails_at_startup() {
    let err = SessionConfig::builder().build().expect_err("must fail");
    assert!(matches!(err, ConfigError::MissingSecretKey));
    assert!(err.to_string().contains("SECRET_KEY"));
}

/// An unknown SameSite value is a configuration error, not a silent default.
#[test]
fn invalid_samesite_is_refused() {
    let err = SessionConfigBuilder::default()
        .with_vars([("SESSION_COOKIE_SAMESITE", "invalid")])
        .expect_err("invalid SameSite");
    assert!(err.to_string().contains("SESSION_COOKIE_SAMESITE"), "{err}");
}

/// The longest lifetime the configuration accepts is usable: a permanent
/// session saved with it gets its expiry, in every session type built in
/// (a longer one is refused at startup, see the configuration's tests).
#[tokio::test]
async fn the_longest_lifetime_serves_requests() {
    let longest = std::time::Duration::from_secs(tessera::config::MAX_LIFETIME_SECS);
    for session_type in [
        tessera::SessionType::Cookie,
        tessera::SessionType::EncryptedCookie,
        tessera::SessionType::Memory,
    ] {
        let config = config()
            .session_type(session_type)
            .permanent_session_lifetime(longest)
            .absolute_lifetime(Some(longest))
            .build()
            .expect("the longest lifetime is accepted");
        let app = permanent_app(config);
        let response = post_body(&app, "/set", None, "kept").await;
        assert_eq!(response.status(), StatusCode::OK, "{session_type:?}");
        let headers = set_cookies(response.headers());
        assert_eq!(headers.len(), 1, "{session_type:?}: {headers:?}");
        let expires = headers[0]
            .split("; ")
            .find_map(|attribute| attribute.strip_prefix("Expires="))
            .unwrap_or_else(|| panic!("{session_type:?}: no Expires in {headers:?}"));
        let year: i32 = expires
            .split(' ')
            .nth(3)
            .and_then(|y| y.parse().ok())
            .expect("a year");
        assert!(year >= 2120, "{session_type:?}: {expires}");
        let cookie = cookie_pair(&response);
        let response = send(&app, "GET", "/get", Some(&cookie)).await;
        assert_eq!(text(response).await, "Some(\"kept\")", "{session_type:?}");
    }
}

/// A router nested in another, each with a session layer: the outer one's
/// session is used and saved once, so the inner route's write is kept (two
/// saves would send two cookies, and the stale one would win), and in
/// memory mode the inner layer's own store does not make the session new.
#[tokio::test]
async fn nested_layers_save_the_session_once() {
    for session_type in [tessera::SessionType::Cookie, tessera::SessionType::Memory] {
        let config = config().session_type(session_type).build().expect("config");
        let set = |key: &'static str| {
            post(move |s: Session| async move {
                s.set_permanent(true);
                let n: i64 = s.get(key).ok().flatten().unwrap_or(0);
                s.insert(key, n + 1).ok();
                "set"
            })
        };
        let nested = Router::new()
            .route("/set", set("inner"))
            .layer(SessionLayer::new(config.clone()));
        let app = Router::new()
            .nest("/nested", nested)
            .route("/set", set("outer"))
            .route(
                "/get",
                get(|s: Session| async move {
                    let outer: Option<i64> = s.get("outer").ok().flatten();
                    let inner: Option<i64> = s.get("inner").ok().flatten();
                    format!("{outer:?} {inner:?}")
                }),
            )
            .layer(SessionLayer::new(config));
        let response = send(&app, "POST", "/set", None).await;
        let cookie = cookie_pair(&response);
        let response = send(&app, "POST", "/nested/set", Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookies = set_cookies(response.headers());
        assert!(cookies.len() <= 1, "{session_type:?}: {cookies:?}");
        let cookie = cookies.first().map_or(cookie, |header| {
            header.split(';').next().unwrap_or_default().to_owned()
        });
        let response = send(&app, "GET", "/get", Some(&cookie)).await;
        assert_eq!(text(response).await, "Some(1) Some(1)", "{session_type:?}");
    }
}

/// A nested layer whose configuration differs from the outer one's is
/// passed through all the same (its cookie would be a second one), and
/// that is said once: it was likely meant to apply (an admin area's own
/// cookie, say). The same configuration twice says nothing. One that
/// differs only by its key, which `Debug` redacts, differs too: it passed
/// without a word.
#[tokio::test(flavor = "current_thread")]
async fn a_nested_layer_with_another_configuration_is_reported() {
    let (logs, _guard) = LogBuffer::capture();
    let passed = "passes its requests through";
    let route = || {
        post(|s: Session| async move {
            s.insert("k", 1).ok();
            "set"
        })
    };
    let outer = config().build().expect("config");
    for (inner, reported) in [
        (outer.clone(), false),
        (
            config()
                .cookie_name("admin_session")
                .build()
                .expect("config"),
            true,
        ),
        (
            config()
                .secret_key("the admin area's own, just as long and random key 4f1c9a")
                .build()
                .expect("config"),
            true,
        ),
    ] {
        let app = Router::new()
            .nest(
                "/admin",
                Router::new()
                    .route("/set", route())
                    .layer(SessionLayer::new(inner)),
            )
            .layer(SessionLayer::new(outer.clone()));
        let before = logs.contents().matches(passed).count();
        for _ in 0..2 {
            let response = send(&app, "POST", "/admin/set", None).await;
            assert_eq!(response.status(), StatusCode::OK);
            let cookies = set_cookies(response.headers());
            assert_eq!(cookies.len(), 1, "{cookies:?}");
            assert!(cookies[0].starts_with("session="), "{cookies:?}");
        }
        assert_eq!(
            logs.contents().matches(passed).count(),
            before + usize::from(reported),
            "{}",
            logs.contents()
        );
    }
}

/// Layers given a store (`with_store`) are told apart by that store: the
/// same one (shared, whatever it holds by then) says nothing, another one
/// is reported. The store's `Debug` text, which shows its state, told them
/// apart wrongly both ways.
#[tokio::test(flavor = "current_thread")]
async fn nested_layers_given_stores_are_told_apart_by_the_store() {
    let (logs, _guard) = LogBuffer::capture();
    let passed = "passes its requests through";
    let shared: std::sync::Arc<dyn tessera::SessionStore> =
        std::sync::Arc::new(tessera::MemoryStore::default());
    let layer = |store: &std::sync::Arc<dyn tessera::SessionStore>| {
        SessionLayer::with_store(config().build().expect("config"), store.clone())
    };
    let outer = layer(&shared);
    for (inner_store, reported) in [
        (shared.clone(), false),
        (
            std::sync::Arc::new(tessera::MemoryStore::default())
                as std::sync::Arc<dyn tessera::SessionStore>,
            true,
        ),
    ] {
        let app = Router::new()
            .nest(
                "/admin",
                Router::new()
                    .route(
                        "/set",
                        post(|s: Session| async move {
                            s.insert("k", 1).ok();
                            "set"
                        }),
                    )
                    .layer(layer(&inner_store)),
            )
            .layer(outer.clone());
        let before = logs.contents().matches(passed).count();
        for _ in 0..2 {
            let response = send(&app, "POST", "/admin/set", None).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        assert_eq!(
            logs.contents().matches(passed).count(),
            before + usize::from(reported),
            "{}",
            logs.contents()
        );
    }
}

/// Handlers can return `Result<_, SessionError>` and use `?`: the README's
/// login handler, as written there, and the status each error answers with.
#[tokio::test]
async fn session_errors_are_responses() {
    async fn login(
        session: Session,
        username: String,
    ) -> Result<&'static str, tessera::SessionError> {
        session.cycle_id().await?; // fixation defence
        session.set_user_id(Some(&username)); // for "your devices" and "log out everywhere"
        session.insert("username", username)?;
        Ok("welcome")
    }
    async fn count(session: Session) -> Result<String, tessera::SessionError> {
        Ok(session.increment("n", 1).await?.to_string())
    }
    async fn devices(session: Session) -> Result<String, tessera::SessionError> {
        Ok(session.user_sessions().await?.len().to_string())
    }
    async fn wrong(session: Session) -> Result<String, tessera::SessionError> {
        let n: Option<i64> = session.get("username")?;
        Ok(format!("{n:?}"))
    }
    for session_type in [tessera::SessionType::Memory, tessera::SessionType::Cookie] {
        let app = Router::new()
            .route("/login", post(login))
            .route("/count", post(count))
            .route("/wrong", get(wrong))
            .route("/devices", get(devices))
            .layer(SessionLayer::new(
                config().session_type(session_type).build().expect("config"),
            ));
        let response = post_body(&app, "/login", None, "alice").await;
        assert_eq!(response.status(), StatusCode::OK, "{session_type:?}");
        let cookie = cookie_pair(&response);
        assert_eq!(text(response).await, "welcome");

        // A value of another type than asked: the application's error, 500,
        // with a generic body.
        let response = send(&app, "GET", "/wrong", Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(text(response).await, "Internal Server Error\n");

        let response = send(&app, "POST", "/count", Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(text(response).await, "1");
        let response = send(&app, "GET", "/devices", Some(&cookie)).await;
        match session_type {
            tessera::SessionType::Memory => {
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(text(response).await, "1");
            }
            // Listing sessions needs server-side sessions: the application's
            // mistake, a 500.
            _ => assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
    // An atomic operation on a value of the wrong type: 409, with the reason.
    let app = Router::new()
        .route(
            "/set",
            post(|s: Session| async move {
                s.insert("n", "text").ok();
                "set"
            }),
        )
        .route("/count", post(count))
        .layer(SessionLayer::new(
            config()
                .session_type(tessera::SessionType::Memory)
                .build()
                .expect("config"),
        ));
    let cookie = cookie_pair(&send(&app, "POST", "/set", None).await);
    let response = send(&app, "POST", "/count", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = text(response).await;
    assert!(
        body.starts_with("Conflict: session key \"n\" holds a str"),
        "{body}"
    );
}

/// `POST /login` (stores `user`), `GET /user` (shows it) and `route` at
/// `path`, under a layer configured by `config`.
fn login_user_and(
    path: &str,
    route: axum::routing::MethodRouter,
    config: tessera::SessionConfigBuilder,
) -> Router {
    Router::new()
        .route(
            "/login",
            post(|s: Session| async move {
                s.insert("user", "alice").ok();
                "in"
            }),
        )
        .route(path, route)
        .route(
            "/user",
            get(
                |s: Session| async move { format!("{:?}", s.get::<String>("user").ok().flatten()) },
            ),
        )
        .layer(SessionLayer::new(config.build().expect("config")))
}

/// A session nested deeper than any cookie read accepts is not sent (the
/// next request would have lost the whole session): a 500, and the cookie
/// the browser has still works.
#[tokio::test]
async fn a_session_too_deep_to_read_back_is_not_sent() {
    for session_type in [
        tessera::SessionType::Cookie,
        tessera::SessionType::EncryptedCookie,
    ] {
        let app = login_user_and(
            "/deep/{levels}",
            post(
                |s: Session, axum::extract::Path(levels): axum::extract::Path<usize>| async move {
                    let mut value = tessera::Value::from(1);
                    for _ in 0..levels {
                        value = tessera::Value::List(vec![value]);
                    }
                    s.insert_value("deep", value);
                    "set"
                },
            ),
            config().session_type(session_type),
        );
        // 127 lists inside the session's dict: 128 levels, still readable;
        // one more is not sent.
        assert_read_back_or_refused(&app, "/deep/127", "/deep/128", session_type).await;
    }
}

/// On `app` (from [`login_user_and`]), after a login: the write at
/// `readable` is sent and its cookie still reads the user; the one at
/// `unreadable` answers 500 without a cookie, and the cookie the browser
/// has still works.
async fn assert_read_back_or_refused(
    app: &Router,
    readable: &str,
    unreadable: &str,
    session_type: tessera::SessionType,
) {
    let cookie = cookie_pair(&send(app, "POST", "/login", None).await);
    let response = send(app, "POST", readable, Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK, "{session_type:?}");
    let written = cookie_pair(&response);
    let response = send(app, "GET", "/user", Some(&written)).await;
    assert_eq!(text(response).await, "Some(\"alice\")", "{session_type:?}");
    let response = send(app, "POST", unreadable, Some(&cookie)).await;
    assert_eq!(
        response.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{session_type:?}"
    );
    assert!(set_cookies(response.headers()).is_empty());
    let response = send(app, "GET", "/user", Some(&cookie)).await;
    assert_eq!(text(response).await, "Some(\"alice\")", "{session_type:?}");
}

/// A session whose JSON is larger than a cookie read accepts
/// (`TESSERA_MAX_PAYLOAD_SIZE`, 1 MiB) fits in a cookie once compressed, but
/// would be refused on the next request: a 500, and the cookie the browser
/// has still works.
#[tokio::test]
async fn a_session_too_large_to_read_back_is_not_sent() {
    for session_type in [
        tessera::SessionType::Cookie,
        tessera::SessionType::EncryptedCookie,
    ] {
        let app = login_user_and(
            "/big/{bytes}",
            post(
                |s: Session, axum::extract::Path(bytes): axum::extract::Path<usize>| async move {
                    s.insert("big", "x".repeat(bytes)).ok();
                    "set"
                },
            ),
            config()
                .session_type(session_type)
                .encrypted_compression(true),
        );
        assert_read_back_or_refused(&app, "/big/500000", "/big/2000000", session_type).await;
    }
}

/// A key read from a file with its line end works, as Flask takes it, but
/// cannot go into a comma-separated SECRET_KEY_FALLBACKS at the next
/// rotation: the configuration says so when it is built, and how to write
/// the fallback instead.
#[test]
fn a_key_a_comma_separated_fallback_list_would_change_is_reported() {
    let (logs, _guard) = LogBuffer::capture();
    let build = |key: &str| {
        tessera::SessionConfig::builder()
            .with_vars([("SECRET_KEY", key)])
            .expect("read")
            .build()
            .expect("config")
    };
    build("0f3a9c2e7b1d4f6a8c0e2b4d6f8a0c2e");
    assert!(
        !logs.contents().contains("SECRET_KEY begins"),
        "{}",
        logs.contents()
    );
    build("0f3a9c2e7b1d4f6a8c0e2b4d6f8a0c2e\n");
    let logged = logs.contents();
    assert!(
        logged.contains("SECRET_KEY begins or ends with a blank"),
        "{logged}"
    );
    assert!(logged.contains("JSON list"), "{logged}");
}

/// An absolute lifetime cannot bound a session kept in a cookie: a layer
/// for cookies says so when it is made, rather than ignore it silently.
#[test]
fn an_absolute_lifetime_for_cookie_sessions_is_reported_as_ignored() {
    let (logs, _guard) = LogBuffer::capture();
    let config = |session_type| {
        config()
            .session_type(session_type)
            .absolute_lifetime(Some(std::time::Duration::from_secs(3600)))
            .build()
            .expect("config")
    };
    let ignored = "TESSERA_SESSION_ABSOLUTE_LIFETIME is ignored";
    let _ = SessionLayer::new(config(tessera::SessionType::Memory));
    assert!(!logs.contents().contains(ignored), "{}", logs.contents());
    for session_type in [
        tessera::SessionType::Cookie,
        tessera::SessionType::EncryptedCookie,
    ] {
        let _ = SessionLayer::new(config(session_type));
        let logged = logs.contents();
        assert!(
            logged.contains(ignored) && logged.contains(&format!("session_type={session_type}")),
            "{logged}"
        );
    }
}

/// A typed read of the wrong type answered 500 through `?` logs why serde
/// refused it, not only that it did.
#[tokio::test(flavor = "current_thread")]
async fn a_type_error_is_logged_with_serdes_reason() {
    let (logs, _guard) = LogBuffer::capture();
    let app = Router::new()
        .route(
            "/set",
            post(|s: Session| async move {
                s.insert("n", "five").ok();
                "set"
            }),
        )
        .route(
            "/n",
            get(|s: Session| async move {
                let n: Option<i64> = s.get("n")?;
                Ok::<_, tessera::SessionError>(format!("{n:?}"))
            }),
        )
        .layer(SessionLayer::new(config().build().expect("config")));
    let cookie = cookie_pair(&send(&app, "POST", "/set", None).await);
    let response = send(&app, "GET", "/n", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let logged = logs.contents();
    assert!(
        logged.contains("does not hold the requested type: invalid type: string"),
        "{logged}"
    );
}

/// test_session_stored_last: writes made after the handler, by middleware
/// inside the layer, are saved.
#[tokio::test]
async fn writes_after_the_handler_are_saved() {
    async fn after_request(request: Request<Body>, next: Next) -> Response {
        let session = request.extensions().get::<Session>().cloned();
        let response = next.run(request).await;
        if let Some(session) = session {
            let count: i64 = session.get("after").ok().flatten().unwrap_or(0);
            session.insert("after", count + 1).ok();
        }
        response
    }
    let app = Router::new()
        .route(
            "/",
            get(|s: Session| async move { format!("{:?}", s.get::<i64>("after").ok().flatten()) }),
        )
        .layer(middleware::from_fn(after_request))
        .layer(SessionLayer::new(config().build().expect("config")));
    let first = send(&app, "GET", "/", None).await;
    let cookie = cookie_pair(&first);
    assert_eq!(text(first).await, "None");
    let second = send(&app, "GET", "/", Some(&cookie)).await;
    assert_eq!(text(second).await, "Some(1)");
}

/// A cookie signed in the future by a holder of the key is refused, as
/// Flask refuses it, with a warning about the clocks (servers sharing a
/// login whose clocks differ lose some logins otherwise without a word),
/// at most one a second (while the clocks differ, every request of such a
/// visitor would log one), counting the others; a forged one is refused
/// without.
#[tokio::test(flavor = "current_thread")]
async fn a_cookie_from_the_future_warns_about_the_clocks() {
    let (logs, _guard) = LogBuffer::capture();
    let clocks = "is dated in the future";
    let mut data = tessera::Map::new();
    data.insert("value".into(), tessera::Value::from("from another server"));
    let ahead = std::time::SystemTime::now() + std::time::Duration::from_secs(30);
    for session_type in [
        tessera::SessionType::Cookie,
        tessera::SessionType::EncryptedCookie,
    ] {
        let key = tessera::SecretKey::from(KEY);
        let codec = match session_type {
            tessera::SessionType::Cookie => tessera::CookieCodec::new(&key, &[]),
            _ => tessera::CookieCodec::encrypted(&key, &[], "session"),
        };
        let app = app(config().session_type(session_type).build().expect("config"));
        let future = codec.encode(&data, ahead);
        // A second since any earlier line.
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
        let before = logs.contents().matches(clocks).count();
        for _ in 0..3 {
            let response = send(&app, "GET", "/get", Some(&format!("session={future}"))).await;
            assert_eq!(text(response).await, "None", "{session_type}: refused");
        }
        let logged = logs.contents();
        assert_eq!(
            logged.matches(clocks).count(),
            before + 1,
            "{session_type}: {logged}"
        );
        if session_type == tessera::SessionType::EncryptedCookie {
            // The two held back after the signed cookie's line.
            let last = logged.lines().rfind(|line| line.contains(clocks));
            assert!(
                last.is_some_and(|line| line.contains("not_logged=2")),
                "{logged}"
            );
        }
        let made = match session_type {
            tessera::SessionType::Cookie => "cookie signed by",
            _ => "cookie sealed by",
        };
        let last = logged.lines().rfind(|line| line.contains(clocks));
        assert!(last.is_some_and(|line| line.contains(made)), "{logged}");
        assert!(last.is_some_and(|line| line.contains("NTP")), "{logged}");
        let forged = tessera::CookieCodec::new(&tessera::SecretKey::from("another key"), &[])
            .encode(&data, ahead);
        let response = send(&app, "GET", "/get", Some(&format!("session={forged}"))).await;
        assert_eq!(text(response).await, "None");
        assert_eq!(logs.contents().matches(clocks).count(), before + 1);
    }
    // Years ahead: no clock is that far off.
    let years_ahead =
        std::time::SystemTime::now() + std::time::Duration::from_secs(3 * 365 * 24 * 3600);
    let wrong =
        tessera::CookieCodec::new(&tessera::SecretKey::from(KEY), &[]).encode(&data, years_ahead);
    let app = app(config().build().expect("config"));
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let response = send(&app, "GET", "/get", Some(&format!("session={wrong}"))).await;
    assert_eq!(text(response).await, "None");
    let logged = logs.contents();
    let last = logged.lines().rfind(|line| line.contains(clocks));
    assert!(
        last.is_some_and(|line| line.contains("wrote a wrong time")),
        "{logged}"
    );
}

/// A cookie holding an id of a length tessera does not look up (a
/// Flask-Session application's `SESSION_ID_LENGTH` of 12 or 200) is taken
/// for no session, as it must be, and said once per layer: silence would
/// leave the operator of a shared login guessing why its users are logged
/// out. Cookies that are no id at all are not an id of another length.
#[tokio::test(flavor = "current_thread")]
async fn an_id_of_a_length_not_looked_up_is_warned_about_once() {
    let (logs, _guard) = LogBuffer::capture();
    let warning = "SESSION_ID_LENGTH";
    let app = app(config()
        .session_type(tessera::SessionType::Memory)
        .build()
        .expect("config"));
    for cookie in ["session=a.b.c", "session=%22quoted%22", "session="] {
        let response = send(&app, "GET", "/get", Some(cookie)).await;
        assert_eq!(text(response).await, "None", "{cookie}");
    }
    assert!(!logs.contents().contains(warning), "{}", logs.contents());
    // secrets.token_urlsafe(12) and token_urlsafe(200).
    let short = "Xo3kQ9z_Lm2-Wp7R";
    let long = "A".repeat(267);
    for id in [short, &long, short] {
        let response = send(&app, "GET", "/get", Some(&format!("session={id}"))).await;
        assert_eq!(text(response).await, "None", "{}", id.len());
    }
    let logged = logs.contents();
    assert_eq!(logged.matches(warning).count(), 1, "{logged}");
    assert!(logged.contains("16 characters"), "{logged}");
    assert!(
        !logged.contains(short),
        "the id stays out of the log: {logged}"
    );
}

/// A write made after the layer saved the session (a task the handler
/// spawned, a streaming body) is saved by nothing: logged once per request,
/// for cookie and server-side sessions, and never for writes in time.
#[tokio::test(flavor = "current_thread")]
async fn a_write_after_the_response_is_saved_is_logged() {
    let (logs, _guard) = LogBuffer::capture();
    let late = "written to after its response was saved";
    for session_type in [tessera::SessionType::Cookie, tessera::SessionType::Memory] {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<Session>();
        let receiver = std::sync::Arc::new(tokio::sync::Mutex::new(receiver));
        let app = Router::new()
            .route(
                "/in-time",
                get(|s: Session| async move {
                    s.insert("a", 1).ok();
                    s.set_user_id(Some("alice"));
                    "ok"
                }),
            )
            .route(
                "/late",
                get(move |s: Session| {
                    let sender = sender.clone();
                    async move {
                        s.insert("a", 1).ok();
                        sender.send(s).ok();
                        "ok"
                    }
                }),
            )
            .layer(SessionLayer::new(
                config().session_type(session_type).build().expect("config"),
            ));
        let before = logs.contents().matches(late).count();
        let response = send(&app, "GET", "/in-time", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(logs.contents().matches(late).count(), before);

        let response = send(&app, "GET", "/late", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let session = receiver
            .lock()
            .await
            .recv()
            .await
            .expect("the handler's session");
        assert_eq!(logs.contents().matches(late).count(), before);
        session.insert("b", 2).ok();
        session.remove("a");
        session.set_user_id(Some("bob"));
        assert_eq!(
            logs.contents().matches(late).count(),
            before + 1,
            "{session_type}: once per request: {}",
            logs.contents()
        );
    }
}

/// test_max_cookie_size: an oversized cookie is logged as an error naming its
/// size (and still sent), or refused with a 500 when configured.
#[tokio::test(flavor = "current_thread")]
async fn oversized_cookie_is_logged_or_refused() {
    let (logs, _guard) = LogBuffer::capture();

    // Random-looking data does not compress below the limit.
    let big = incompressible(6000);
    let lenient = app(config().build().expect("config"));
    let response = post_body(&lenient, "/set", None, &big).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 1, "an oversized cookie is still sent");
    let size = cookies[0].len();
    assert!(size > 4093);
    let logged = logs.contents();
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains(&format!("{size} bytes")),
        "log must name the size {size}: {logged}"
    );

    let strict = app_refusing();
    let response = post_body(&strict, "/set", None, &big).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(response.headers()).is_empty());

    // Small sessions are unaffected by the strict setting.
    let response = post_body(&strict, "/set", None, "small").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(response.headers()).len(), 1);

    // MAX_COOKIE_SIZE = 0 disables the check.
    let unchecked = app(config()
        .max_cookie_size(0)
        .refuse_oversized_cookies(true)
        .build()
        .expect("config"));
    let response = post_body(&unchecked, "/set", None, &big).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// A visitor whose session is over `MAX_COOKIE_SIZE` gets the line on
/// every response (a permanent session refreshed on every request, say):
/// at most one a second is logged by a layer, which then counts the others
/// held back, where every response logged one.
#[tokio::test]
async fn oversized_cookie_lines_are_limited_to_one_a_second() {
    let (logs, _guard) = LogBuffer::capture();
    let lenient = app(config().build().expect("config"));
    let big = incompressible(6000);
    for _ in 0..5 {
        let response = post_body(&lenient, "/set", None, &big).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(set_cookies(response.headers()).len(), 1, "still sent");
    }
    let lost = "this change to the session would be lost";
    assert_eq!(
        logs.contents().matches(lost).count(),
        1,
        "{}",
        logs.contents()
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    post_body(&lenient, "/set", None, &big).await;
    let logged = logs.contents();
    assert_eq!(logged.matches(lost).count(), 2, "{logged}");
    assert!(logged.contains("not_logged=4"), "{logged}");
}

/// A permanent session's cookie that grew over `MAX_COOKIE_SIZE` elsewhere
/// (a Flask app sharing the login, which only warns; or attributes added to
/// the configuration since) is not refreshed when oversized cookies are
/// refused: the visitor's requests are served, and the cookie they hold
/// stays valid until it expires. Before, every request answered 500, even
/// on routes without the session, until the cookie expired; and so did
/// every change that kept it as large (taking a flash out of it).
#[tokio::test]
async fn an_oversized_cookie_that_is_only_refreshed_is_not_refused() {
    let (logs, _guard) = LogBuffer::capture();
    for session_type in [
        tessera::SessionType::Cookie,
        tessera::SessionType::EncryptedCookie,
    ] {
        let roomy = permanent_app(
            config()
                .session_type(session_type)
                .max_cookie_size(8000)
                .build()
                .expect("config"),
        );
        let strict = permanent_app(
            config()
                .session_type(session_type)
                .refuse_oversized_cookies(true)
                .build()
                .expect("config"),
        );
        let big = incompressible(3700);
        let response = post_body(&roomy, "/set", None, &big).await;
        let header_size = set_cookies(response.headers())[0].len();
        assert!(header_size > 4093, "{session_type:?}: {header_size}");
        let cookie = cookie_pair(&response);
        for uri in ["/none", "/get"] {
            let response = send(&strict, "GET", uri, Some(&cookie)).await;
            assert_eq!(response.status(), StatusCode::OK, "{session_type:?} {uri}");
            assert!(
                set_cookies(response.headers()).is_empty(),
                "{session_type:?} {uri}: not refreshed"
            );
        }
        let response = send(&strict, "GET", "/get", Some(&cookie)).await;
        assert_eq!(text(response).await, format!("Some({big:?})"));
        // A change that makes the cookie larger is still refused: the
        // browser might drop it. One that keeps it no larger than the one
        // the browser kept (a flash taken out of it, say) is sent.
        let response = post_body(&strict, "/set", Some(&cookie), &format!("{big}!!")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let shorter = &big[..big.len() - 10];
        let response = post_body(&strict, "/set", Some(&cookie), shorter).await;
        assert_eq!(response.status(), StatusCode::OK, "{session_type:?}");
        let smaller = cookie_pair(&response);
        assert!(smaller.len() <= cookie.len(), "{session_type:?}");
        let response = send(&strict, "GET", "/get", Some(&smaller)).await;
        assert_eq!(text(response).await, format!("Some({shorter:?})"));
    }
    let logged = logs.contents();
    assert!(logged.contains("not refreshed"), "{logged}");
    assert!(
        logged.contains("no larger than the cookie the browser"),
        "{logged}"
    );
}

/// Without the refusal (Flask's way), an oversized cookie no larger than
/// the one the browser sent (a change undone, a flash taken out of it) is
/// sent with a warning, not the error that says the change would be lost:
/// the browser kept one as large. A larger one still gets the error.
#[tokio::test]
async fn an_oversized_cookie_no_larger_than_the_one_sent_is_only_warned_about() {
    let (logs, _guard) = LogBuffer::capture();
    let roomy = app(config().max_cookie_size(8000).build().expect("config"));
    let flasklike = app(config().build().expect("config"));
    let big = incompressible(3700);
    let cookie = cookie_pair(&post_body(&roomy, "/set", None, &big).await);
    assert!(cookie.len() > 4093, "{}", cookie.len());

    let shorter = &big[..big.len() - 10];
    let response = post_body(&flasklike, "/set", Some(&cookie), shorter).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(response.headers()).len(), 1);
    let logged = logs.contents();
    assert!(
        logged.contains("WARN") && logged.contains("no larger than the cookie the browser"),
        "{logged}"
    );
    assert!(!logged.contains("would be lost"), "{logged}");

    let response = post_body(&flasklike, "/set", Some(&cookie), &format!("{big}!!")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(response.headers()).len(), 1);
    let logged = logs.contents();
    assert!(
        logged.contains("ERROR") && logged.contains("would be lost"),
        "{logged}"
    );
}

fn app_refusing() -> Router {
    app(config()
        .refuse_oversized_cookies(true)
        .build()
        .expect("config"))
}

/// Hostile cookies never fail a request: they give an empty session and no
/// Set-Cookie.
#[tokio::test]
async fn hostile_cookies_give_an_empty_session() {
    let app = app(config().build().expect("config"));
    let good = cookie_pair(&post_body(&app, "/set", None, "secret").await);
    let value = good.trim_start_matches("session=");
    let mut tampered = value.to_owned().into_bytes();
    tampered[3] ^= 1;
    let tampered = String::from_utf8(tampered).expect("ascii");
    let cases = [
        "session=".to_owned(),
        "session=garbage".to_owned(),
        "session=a.b.c".to_owned(),
        "session=...".to_owned(),
        format!("session={tampered}"),
        format!("session={}x", value),
        format!("session=.{}", value),
        format!("session={}", "A".repeat(100_000)),
        "session=\u{7f}".to_owned(),
        "session".to_owned(),
        ";;;=;session==".to_owned(),
    ];
    for cookie in &cases {
        let Ok(header) = HeaderValue::from_str(cookie) else {
            continue;
        };
        let request = Request::get("/get")
            .header(header::COOKIE, header)
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{cookie:.60}");
        assert!(set_cookies(response.headers()).is_empty(), "{cookie:.60}");
        assert_eq!(text(response).await, "None", "{cookie:.60}");
    }
    // Non-UTF-8 header bytes too.
    let request = Request::get("/get")
        .header(
            header::COOKIE,
            HeaderValue::from_bytes(b"session=\xff\xfe").expect("opaque bytes"),
        )
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
}

/// Without the layer the extractor rejects with a clear 500, not a panic.
#[tokio::test]
async fn extractor_without_layer_is_a_clear_error() {
    let app: Router = Router::new().route("/", get(|_s: Session| async { "" }));
    let response = send(&app, "GET", "/", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text(response).await.contains("SessionLayer"));
}

/// `Option<Session>` is `None` where the layer does not reach, and the
/// loaded session where it does (a route shared by both kinds of router).
#[tokio::test]
async fn an_optional_session_is_none_without_the_layer() {
    async fn visits(session: Option<Session>) -> String {
        match session {
            None => "no sessions here".to_owned(),
            Some(session) => {
                let visits: u64 = session.get("visits").ok().flatten().unwrap_or(0) + 1;
                session.insert("visits", visits).ok();
                visits.to_string()
            }
        }
    }
    let bare: Router = Router::new().route("/", get(visits));
    let response = send(&bare, "GET", "/", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "no sessions here");

    let layered = Router::new()
        .route("/", get(visits))
        .layer(SessionLayer::new(config().build().expect("config")));
    let first = send(&layered, "GET", "/", None).await;
    let cookie = cookie_pair(&first);
    assert_eq!(text(first).await, "1");
    let second = send(&layered, "GET", "/", Some(&cookie)).await;
    assert_eq!(text(second).await, "2");

    // A session that exists but cannot be loaded is not "no session".
    #[cfg(feature = "redis")]
    {
        // Port 9 (discard) on loopback: nothing listens, connects are refused.
        let store = tessera::store::RedisStore::new("redis://127.0.0.1:9/0").expect("a URL");
        let down = Router::new()
            .route("/", get(visits))
            .layer(SessionLayer::with_store(
                config().build().expect("config"),
                std::sync::Arc::new(store),
            ));
        let id = tessera::SessionId::generate();
        let cookie = format!("session={}", id.as_str());
        let response = send(&down, "GET", "/", Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}

/// A `__Host-` or `__Secure-` cookie that breaks its prefix's rules, which
/// browsers then refuse, is warned about at startup.
#[test]
fn a_cookie_prefix_whose_rules_are_broken_is_warned_about() {
    let (logs, _guard) = LogBuffer::capture();
    let warned = |configure: fn(SessionConfigBuilder) -> SessionConfigBuilder| {
        let before = logs
            .contents()
            .matches("browsers refuse the session cookie")
            .count();
        configure(config()).build().expect("config");
        logs.contents()
            .matches("browsers refuse the session cookie")
            .count()
            > before
    };
    assert!(!warned(|b| b.cookie_name("__Host-s").cookie_secure(true)));
    assert!(!warned(|b| b
        .cookie_name("__Secure-s")
        .cookie_secure(true)
        .cookie_path("/x")));
    assert!(!warned(|b| b
        .cookie_name("__Host-s")
        .cookie_partitioned(true)));
    assert!(!warned(|b| b.cookie_name("session")));
    assert!(warned(|b| b.cookie_name("__Host-s")));
    assert!(warned(|b| b.cookie_name("__host-s")));
    assert!(warned(|b| b.cookie_name("__Secure-s")));
    assert!(warned(|b| b
        .cookie_name("__Host-s")
        .cookie_secure(true)
        .cookie_domain("example.com")));
    assert!(warned(|b| b
        .cookie_name("__Host-s")
        .cookie_secure(true)
        .application_root("/app")));
    let logged = logs.contents();
    assert!(
        logged.contains("with the path /app (APPLICATION_ROOT), not /"),
        "{logged}"
    );
    assert!(
        logged.contains("without SESSION_COOKIE_SECURE=true"),
        "{logged}"
    );
}

/// An SQLite URL with a percent-escape names, since escapes are decoded,
/// another file than earlier builds used: when that one exists and the new
/// one does not (an upgrade, or an older instance beside a newer one), the
/// configuration and the CLI's store say so rather than start an empty
/// store beside it. No word when the file under the decoded name exists.
#[cfg(feature = "sqlite")]
#[test]
fn an_sqlite_url_naming_the_undecoded_file_is_warned_about() {
    let (logs, _guard) = LogBuffer::capture();
    let warning = "percent-escapes are decoded";
    let dir = std::env::temp_dir().join(format!("tessera-undecoded-{}", std::process::id()));
    let literal = dir.join("my%20dir");
    std::fs::create_dir_all(&literal).expect("a directory");
    std::fs::write(literal.join("s.db"), b"").expect("the old file");
    let url = format!("sqlite://{}/my%20dir/s.db", dir.display());
    let build = || {
        config()
            .session_type(tessera::SessionType::Sqlite)
            .store_url(url.clone())
            .build()
            .expect("config")
    };
    build();
    assert_eq!(
        logs.contents().matches(warning).count(),
        1,
        "{}",
        logs.contents()
    );
    tessera::store::SqliteStore::from_url(&url).expect("a store");
    assert_eq!(
        logs.contents().matches(warning).count(),
        2,
        "{}",
        logs.contents()
    );
    let decoded = dir.join("my dir");
    std::fs::create_dir_all(&decoded).expect("a directory");
    std::fs::write(decoded.join("s.db"), b"").expect("the new file");
    build();
    assert_eq!(
        logs.contents().matches(warning).count(),
        2,
        "{}",
        logs.contents()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An existing SQLite file that other users can read or change keeps its
/// permissions, with a warning saying which; one readable by its group only
/// does not warn (an operator's choice, for backups say).
#[cfg(all(feature = "sqlite", unix))]
#[tokio::test(flavor = "current_thread")]
async fn an_sqlite_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let (logs, _guard) = LogBuffer::capture();
    let warning = "make it readable and writable by its owner only (chmod 600)";
    let dir = std::env::temp_dir().join(format!("tessera-exposed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let path = dir.join("sessions.db");
    for (mode, says) in [
        (0o600, None),
        (0o640, None),
        (0o644, Some("can be read by other users of this machine: ")),
        (0o660, Some("can be changed by its group's members: ")),
        (
            0o666,
            Some("can be read and changed by other users of this machine: "),
        ),
    ] {
        let warned = says.is_some();
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, b"").expect("an empty file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let before = logs.contents().matches(warning).count();
        let store = tessera::store::SqliteStore::open(&path)
            .await
            .expect("opens");
        store.close().await;
        assert_eq!(
            logs.contents().matches(warning).count(),
            before + usize::from(warned),
            "{mode:o}: {}",
            logs.contents()
        );
        if let Some(says) = says {
            assert_eq!(
                logs.contents().matches(says).count(),
                1,
                "{mode:o}: {}",
                logs.contents()
            );
        }
        let kept = std::fs::metadata(&path).expect("db").permissions().mode() & 0o777;
        assert_eq!(kept, mode, "the file keeps its permissions");
    }
    // A private database whose write-ahead log others can read (the log
    // of an instance running meanwhile).
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let running = tessera::store::SqliteStore::open(&path)
        .await
        .expect("opens");
    let id = tessera::store::SessionId::generate();
    let record = tessera::store::Record {
        data: tessera::Map::new(),
        user_id: None,
        created_at: 0,
        expires_at: u64::from(u32::MAX),
        absolute_expires_at: None,
    };
    tessera::store::SessionStore::create(&running, &id, &record)
        .await
        .expect("a write, so the log exists");
    let wal = dir.join("sessions.db-wal");
    std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let before = logs.contents().matches(warning).count();
    let store = tessera::store::SqliteStore::open(&path)
        .await
        .expect("opens");
    tessera::store::SessionStore::load(&store, &id, 1)
        .await
        .expect("opened");
    store.close().await;
    running.close().await;
    assert_eq!(logs.contents().matches(warning).count(), before + 1);
    assert!(
        logs.contents().contains("sessions.db-wal"),
        "{}",
        logs.contents()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An empty Redis key prefix puts tessera's index keys among the
/// application's: said at startup.
#[cfg(feature = "redis")]
#[test]
fn an_empty_redis_key_prefix_is_warned_about() {
    let (logs, _guard) = LogBuffer::capture();
    let warning = "SESSION_KEY_PREFIX is empty";
    let build = |prefix: &str| {
        config()
            .session_type(tessera::SessionType::Redis)
            .key_prefix(prefix)
            .build()
            .expect("config")
    };
    build("app:");
    assert!(!logs.contents().contains(warning), "{}", logs.contents());
    build("");
    assert!(logs.contents().contains(warning), "{}", logs.contents());
}

/// SESSION_PERMANENT is Flask-Session's, for server-side sessions: set true
/// with cookie sessions (which it does not change) it is warned about. Not
/// for a layer given a store, which applies it whatever SESSION_TYPE says.
#[test]
fn session_permanent_with_cookie_sessions_is_warned_about() {
    let (logs, _guard) = LogBuffer::capture();
    let warning = "SESSION_PERMANENT=true is ignored";
    let config_of = |session_type: tessera::SessionType, permanent: Option<bool>| {
        let builder = config().session_type(session_type);
        match permanent {
            Some(permanent) => builder.session_permanent(permanent),
            None => builder,
        }
        .build()
        .expect("config")
    };
    let build = |session_type, permanent| SessionLayer::new(config_of(session_type, permanent));
    build(tessera::SessionType::Cookie, None);
    build(tessera::SessionType::Cookie, Some(false));
    build(tessera::SessionType::Memory, Some(true));
    SessionLayer::with_store(
        config_of(tessera::SessionType::Cookie, Some(true)),
        std::sync::Arc::new(tessera::MemoryStore::default()),
    );
    assert!(!logs.contents().contains(warning), "{}", logs.contents());
    build(tessera::SessionType::Cookie, Some(true));
    assert_eq!(
        logs.contents().matches(warning).count(),
        1,
        "{}",
        logs.contents()
    );
    build(tessera::SessionType::EncryptedCookie, Some(true));
    assert_eq!(
        logs.contents().matches(warning).count(),
        2,
        "{}",
        logs.contents()
    );
    assert!(
        logs.contents().contains("set_permanent(true)"),
        "{}",
        logs.contents()
    );
}

/// SESSION_USE_SIGNER is Flask-Session's too: set true with cookie sessions
/// (always signed, or sealed) it is warned about; not for a layer given a
/// store, which signs its ids.
#[test]
fn use_signer_with_cookie_sessions_is_warned_about() {
    let (logs, _guard) = LogBuffer::capture();
    let warning = "SESSION_USE_SIGNER=true is ignored";
    let config_of = |session_type: tessera::SessionType, signer: bool| {
        config()
            .session_type(session_type)
            .use_signer(signer)
            .build()
            .expect("config")
    };
    let build = |session_type, signer| SessionLayer::new(config_of(session_type, signer));
    build(tessera::SessionType::Cookie, false);
    build(tessera::SessionType::Memory, true);
    SessionLayer::with_store(
        config_of(tessera::SessionType::Cookie, true),
        std::sync::Arc::new(tessera::MemoryStore::default()),
    );
    assert!(!logs.contents().contains(warning), "{}", logs.contents());
    build(tessera::SessionType::Cookie, true);
    build(tessera::SessionType::EncryptedCookie, true);
    assert_eq!(
        logs.contents().matches(warning).count(),
        2,
        "{}",
        logs.contents()
    );
}

/// TESSERA_ENCRYPTED_COMPRESSION compresses encrypted cookies only: set
/// true with any other session type it is warned about, as the other
/// settings that do not apply are, rather than ignored silently.
#[test]
fn encrypted_compression_without_encrypted_cookies_is_warned_about() {
    let (logs, _guard) = LogBuffer::capture();
    let warning = "TESSERA_ENCRYPTED_COMPRESSION=true is ignored";
    let config_of = |session_type: tessera::SessionType, compress: bool| {
        config()
            .session_type(session_type)
            .encrypted_compression(compress)
            .build()
            .expect("config")
    };
    let build = |session_type, compress| SessionLayer::new(config_of(session_type, compress));
    build(tessera::SessionType::EncryptedCookie, true);
    build(tessera::SessionType::Cookie, false);
    build(tessera::SessionType::Memory, false);
    assert!(!logs.contents().contains(warning), "{}", logs.contents());
    build(tessera::SessionType::Cookie, true);
    build(tessera::SessionType::Memory, true);
    SessionLayer::with_store(
        config_of(tessera::SessionType::EncryptedCookie, true),
        std::sync::Arc::new(tessera::MemoryStore::default()),
    );
    assert_eq!(
        logs.contents().matches(warning).count(),
        3,
        "{}",
        logs.contents()
    );
}

/// A weak SECRET_KEY logs a warning at startup; a strong one does not.
#[test]
fn weak_secret_key_logs_a_warning() {
    let (logs, _guard) = LogBuffer::capture();
    let logged = || logs.contents();

    SessionConfig::builder()
        .secret_key(KEY)
        .build()
        .expect("config");
    assert_eq!(logged(), "", "a strong key logs nothing");

    SessionConfig::builder()
        .secret_key("supersecretkey")
        .build()
        .expect("config");
    let warning = logged();
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("SECRET_KEY is weak") && warning.contains("well-known"),
        "{warning}"
    );
    assert!(
        !warning.contains("supersecretkey"),
        "the key itself is never logged: {warning}"
    );

    SessionConfig::builder()
        .secret_key("short")
        .build()
        .expect("config");
    assert!(logged().contains("5 bytes long"), "{}", logged());
}

/// A fallback key verifies cookies as the key does: a weak one is warned
/// about, or refused when strong keys are required, like a weak key.
#[test]
fn weak_fallback_keys_are_treated_as_weak_keys() {
    let (logs, _guard) = LogBuffer::capture();

    let strong_old = "an-older-but-strong-key-0123456789abcdef";
    SessionConfig::builder()
        .secret_key(KEY)
        .secret_key_fallbacks([strong_old])
        .build()
        .expect("config");
    assert_eq!(logs.contents(), "", "strong fallbacks log nothing");

    SessionConfig::builder()
        .secret_key(KEY)
        .secret_key_fallbacks([strong_old, "supersecretkey"])
        .build()
        .expect("config");
    let warning = logs.contents();
    assert!(
        warning.contains("WARN") && warning.contains("key 2 of SECRET_KEY_FALLBACKS is weak"),
        "{warning}"
    );
    assert!(!warning.contains("supersecretkey"), "{warning}");

    let error = SessionConfigBuilder::default()
        .with_vars([
            ("SECRET_KEY", KEY),
            ("SECRET_KEY_FALLBACKS", "supersecretkey"),
            ("TESSERA_REQUIRE_STRONG_SECRET_KEY", "true"),
        ])
        .and_then(SessionConfigBuilder::build)
        .expect_err("refused");
    assert!(matches!(
        error,
        ConfigError::WeakFallbackKey { position: 1, .. }
    ));
    assert!(!error.to_string().contains("supersecretkey"), "{error}");
}
