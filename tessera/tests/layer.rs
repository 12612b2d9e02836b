//! Flask's own session tests (`tests/test_basic.py`), ported to the layer.
#![cfg(feature = "axum")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tessera::{
    ConfigError, CookieCodec, Map, SameSite, SecretKey, Session, SessionConfig,
    SessionConfigBuilder, SessionLayer, Value,
};
use time::OffsetDateTime;
use tower::ServiceExt;

mod common;

use common::{cookie_pair, set_cookies, text};

const KEY: &str = "layer-test-secret-key-0123456789abcdef";

fn config() -> SessionConfigBuilder {
    SessionConfig::builder().secret_key(KEY)
}

/// Routes mirroring the ones Flask's tests define.
fn app(config: SessionConfig) -> Router {
    Router::new()
        .route("/nothing", get(|| async { "" }))
        .route("/nothing_with_session", get(|_session: Session| async { "" }))
        .route(
            "/get",
            get(|s: Session| async move { format!("{:?}", s.get::<String>("value").ok().flatten()) }),
        )
        .route("/contains", get(|s: Session| async move { s.contains_key("value").to_string() }))
        .route("/len", get(|s: Session| async move { s.len().to_string() }))
        .route("/keys", get(|s: Session| async move { s.keys().join(",") }))
        .route("/permanent", get(|s: Session| async move { s.permanent().to_string() }))
        .route(
            "/setdefault",
            get(|s: Session| async move { s.setdefault("value", "default").to_string() }),
        )
        .route(
            "/set",
            post(|s: Session, body: String| async move {
                s.insert("value", body).ok();
                "value set"
            }),
        )
        .route(
            "/set_permanent",
            get(|s: Session| async move {
                s.insert("value", "x").ok();
                s.set_permanent(true);
                ""
            }),
        )
        .route(
            "/set_not_permanent",
            get(|s: Session| async move {
                s.set_permanent(false);
                ""
            }),
        )
        .route(
            "/pop",
            get(|s: Session| async move { format!("{:?}", s.remove("value").map(|v| v.to_string())) }),
        )
        .route(
            "/pop_missing",
            get(|s: Session| async move { format!("{:?}", s.remove("missing")) }),
        )
        .route("/clear", get(|s: Session| async move { s.clear() }))
        .route(
            "/vary_accept",
            get(|s: Session| async move {
                s.get_value("value");
                ([(header::VARY, "Accept-Encoding")], "")
            }),
        )
        .route(
            "/vary_cookie_already",
            get(|s: Session| async move {
                s.get_value("value");
                ([(header::VARY, "Accept-Encoding, Cookie")], "")
            }),
        )
        .route(
            "/flash",
            get(|s: Session| async move {
                s.flash("Zap");
                s.flash_with_category("error", "Zip");
                s.flash_with_category("warning", Value::markup("<em>Zop</em>"));
                ""
            }),
        )
        .route(
            "/flashes",
            get(|s: Session| async move {
                let all: Vec<String> = s
                    .take_flashes()
                    .iter()
                    .map(|f| format!("{}:{}", f.category, f.text()))
                    .collect();
                let errors = s.take_flashes_in(&["error"]).len();
                format!("{} | errors={errors}", all.join(","))
            }),
        )
        .layer(SessionLayer::new(config))
}

async fn send(app: &Router, method: &str, uri: &str, cookie: Option<&str>) -> Response {
    common::request(app, method, uri, cookie, "").await
}

async fn post_body(app: &Router, uri: &str, cookie: Option<&str>, body: &str) -> Response {
    common::request(app, "POST", uri, cookie, body).await
}

fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

fn vary(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::VARY)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

fn expires(set_cookie: &str) -> Option<OffsetDateTime> {
    let value = set_cookie
        .split(';')
        .map(str::trim)
        .find_map(|a| a.strip_prefix("Expires="))?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    Some(
        time::PrimitiveDateTime::parse(value, format)
            .expect("http date")
            .assume_utc(),
    )
}

/// test_session_accessed + test_session_vary_cookie: reads add `Vary: Cookie`,
/// untouched sessions do not.
#[tokio::test]
async fn vary_cookie_follows_access() {
    let app = app(config().build().expect("config"));
    let with_value = cookie_pair(&post_body(&app, "/set", None, "42").await);
    for route in ["/nothing", "/nothing_with_session"] {
        let response = send(&app, "GET", route, Some(&with_value)).await;
        assert!(vary(response.headers()).is_empty(), "{route}");
        assert!(set_cookies(response.headers()).is_empty(), "{route}");
    }
    for route in [
        "/get",
        "/contains",
        "/len",
        "/keys",
        "/permanent",
        "/setdefault",
        "/pop",
    ] {
        for cookie in [None, Some(with_value.as_str())] {
            let response = send(&app, "GET", route, cookie).await;
            assert_eq!(
                vary(response.headers()),
                ["Cookie"],
                "{route} with {cookie:?}"
            );
        }
    }
    let response = send(&app, "GET", "/vary_accept", Some(&with_value)).await;
    assert_eq!(vary(response.headers()), ["Accept-Encoding, Cookie"]);
    let response = send(&app, "GET", "/vary_cookie_already", Some(&with_value)).await;
    assert_eq!(vary(response.headers()), ["Accept-Encoding, Cookie"]);
}

/// Flask's rule 4: which operations count as modifications.
#[tokio::test]
async fn only_writes_send_a_cookie() {
    let app = app(config().build().expect("config"));
    let cookie = cookie_pair(&post_body(&app, "/set", None, "v").await);
    for route in [
        "/get",
        "/contains",
        "/len",
        "/keys",
        "/permanent",
        "/pop_missing",
    ] {
        let response = send(&app, "GET", route, Some(&cookie)).await;
        assert!(
            set_cookies(response.headers()).is_empty(),
            "{route} must not set a cookie"
        );
    }
    // setdefault of an existing key does not modify; of a missing key it does.
    let response = send(&app, "GET", "/setdefault", Some(&cookie)).await;
    assert!(set_cookies(response.headers()).is_empty());
    assert_eq!(text(response).await, "\"v\"");
    let response = send(&app, "GET", "/setdefault", None).await;
    assert_eq!(set_cookies(response.headers()).len(), 1);
    // A pop of the last key empties the session: the cookie is deleted.
    let response = send(&app, "GET", "/pop", Some(&cookie)).await;
    let deleted = set_cookies(response.headers());
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].starts_with("session=;"), "{deleted:?}");
    assert!(attributes(&deleted[0]).contains(&"max-age=0".to_owned()));
    assert_eq!(expires(&deleted[0]), Some(OffsetDateTime::UNIX_EPOCH));
}

/// test_missing_session: no secret key is a startup error, not a request error.
#[test]
fn missing_secret_key_fails_at_startup() {
    let err = SessionConfig::builder().build().expect_err("must fail");
    assert!(matches!(err, ConfigError::MissingSecretKey));
    assert!(err.to_string().contains("SECRET_KEY"));
}

/// test_session_path: the cookie's path follows SESSION_COOKIE_PATH.
#[tokio::test]
async fn cookie_path_setting() {
    let app = app(config().cookie_path("/foo").build().expect("config"));
    let response = post_body(&app, "/set", None, "x").await;
    let cookie = &set_cookies(response.headers())[0];
    assert!(
        attributes(cookie).contains(&"path=/foo".to_owned()),
        "{cookie}"
    );
}

/// test_session_using_session_settings: every attribute on the cookie and on
/// its deletion.
#[tokio::test]
async fn cookie_attributes_follow_settings() {
    let app = app(config()
        .cookie_domain("example.com")
        .cookie_secure(true)
        .cookie_http_only(false)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/")
        .cookie_partitioned(true)
        .build()
        .expect("config"));
    let response = send(&app, "GET", "/set_permanent", None).await;
    let cookie = &set_cookies(response.headers())[0];
    let attrs = attributes(cookie);
    for expected in [
        "domain=example.com",
        "path=/",
        "secure",
        "samesite=lax",
        "partitioned",
    ] {
        assert!(
            attrs.contains(&expected.to_owned()),
            "{expected} missing in {cookie}"
        );
    }
    assert!(!attrs.contains(&"httponly".to_owned()), "{cookie}");
    assert!(expires(cookie).is_some());

    let pair = cookie.split(';').next().expect("pair").to_owned();
    let response = send(&app, "GET", "/clear", Some(&pair)).await;
    let deletion = &set_cookies(response.headers())[0];
    let attrs = attributes(deletion);
    for expected in [
        "domain=example.com",
        "path=/",
        "secure",
        "samesite=lax",
        "partitioned",
        "max-age=0",
    ] {
        assert!(
            attrs.contains(&expected.to_owned()),
            "{expected} missing in {deletion}"
        );
    }
    assert!(!attrs.contains(&"httponly".to_owned()), "{deletion}");
}

/// The default cookie is exactly what Flask sends: HttpOnly, Path=/, nothing else.
#[tokio::test]
async fn default_cookie_attributes_match_flask() {
    let app = app(config().build().expect("config"));
    let response = post_body(&app, "/set", None, "value").await;
    let cookie = &set_cookies(response.headers())[0];
    let mut attrs = attributes(cookie);
    attrs.sort();
    assert_eq!(attrs, ["httponly", "path=/"], "{cookie}");
}

/// test_session_using_samesite_attribute.
#[tokio::test]
async fn samesite_values() {
    for (same_site, expected) in [
        (SameSite::None, "none"),
        (SameSite::Strict, "strict"),
        (SameSite::Lax, "lax"),
    ] {
        let app = app(config()
            .cookie_same_site(same_site)
            .build()
            .expect("config"));
        let response = post_body(&app, "/set", None, "x").await;
        let cookie = &set_cookies(response.headers())[0];
        assert!(
            attributes(cookie).contains(&format!("samesite={expected}")),
            "{cookie}"
        );
    }
    let err = SessionConfigBuilder::default()
        .with_vars([("SESSION_COOKIE_SAMESITE", "invalid")])
        .expect_err("invalid SameSite");
    assert!(err.to_string().contains("SESSION_COOKIE_SAMESITE"), "{err}");
}

/// test_session_secret_key_fallbacks: old cookies still load after rotation;
/// new cookies are signed with the new key.
#[tokio::test]
async fn secret_key_fallbacks() {
    let old = app(SessionConfig::builder()
        .secret_key("old-key-0123456789abcdef0123456789")
        .build()
        .expect("config"));
    let cookie = cookie_pair(&post_body(&old, "/set", None, "from-old").await);

    let rotated = app(SessionConfig::builder()
        .secret_key("new-key-0123456789abcdef0123456789")
        .secret_key_fallbacks(["older-key", "old-key-0123456789abcdef0123456789"])
        .build()
        .expect("config"));
    let response = send(&rotated, "GET", "/get", Some(&cookie)).await;
    assert_eq!(text(response).await, "Some(\"from-old\")");

    let resigned = cookie_pair(&post_body(&rotated, "/set", Some(&cookie), "from-new").await);
    let fresh = app(SessionConfig::builder()
        .secret_key("new-key-0123456789abcdef0123456789")
        .build()
        .expect("config"));
    assert_eq!(
        text(send(&fresh, "GET", "/get", Some(&resigned)).await).await,
        "Some(\"from-new\")"
    );

    let no_fallback = app(SessionConfig::builder()
        .secret_key("new-key-0123456789abcdef0123456789")
        .build()
        .expect("config"));
    assert_eq!(
        text(send(&no_fallback, "GET", "/get", Some(&cookie)).await).await,
        "None"
    );
}

/// test_session_expiration: permanent cookies expire after the lifetime;
/// non-permanent ones are browser-session cookies.
#[tokio::test]
async fn permanent_expiration() {
    let lifetime = Duration::from_secs(3600);
    let app = app(config()
        .permanent_session_lifetime(lifetime)
        .build()
        .expect("config"));
    let before = OffsetDateTime::now_utc();
    let response = send(&app, "GET", "/set_permanent", None).await;
    let cookie = set_cookies(response.headers()).remove(0);
    let expiry = expires(&cookie).expect("permanent cookies expire");
    let expected = before + lifetime;
    assert!(
        (expiry - expected).whole_seconds().abs() <= 2,
        "{expiry} vs {expected}"
    );

    let pair = cookie.split(';').next().expect("pair").to_owned();
    assert_eq!(
        text(send(&app, "GET", "/permanent", Some(&pair)).await).await,
        "true"
    );

    let response = send(&app, "GET", "/set_not_permanent", Some(&pair)).await;
    let cookie = set_cookies(response.headers()).remove(0);
    assert_eq!(expires(&cookie), None, "{cookie}");
    assert!(!attributes(&cookie).iter().any(|a| a.starts_with("max-age")));
}

/// A cookie older than PERMANENT_SESSION_LIFETIME is refused even if the
/// session is not permanent, and so is one from the future.
#[tokio::test]
async fn old_and_future_cookies_are_refused() {
    let lifetime = Duration::from_secs(60);
    let app = app(config()
        .permanent_session_lifetime(lifetime)
        .build()
        .expect("config"));
    let codec = CookieCodec::new(&SecretKey::from(KEY), &[]).max_age(lifetime);
    let data = Map::from([("value".to_owned(), Value::from("stale"))]);
    let now = SystemTime::now();
    for (when, expected) in [
        (now - Duration::from_secs(30), "Some(\"stale\")"),
        (now - Duration::from_secs(120), "None"),
        (now + Duration::from_secs(120), "None"),
    ] {
        let cookie = format!("session={}", codec.encode(&data, when));
        let response = send(&app, "GET", "/get", Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(set_cookies(response.headers()).is_empty());
        assert_eq!(text(response).await, expected);
    }
}

/// test_session_cookie_setting: SESSION_REFRESH_EACH_REQUEST with permanent
/// and non-permanent sessions, on requests that only read.
#[tokio::test]
async fn refresh_each_request() {
    for (refresh, permanent, expect_cookie_on_read) in [
        (true, true, true),
        (true, false, false),
        (false, true, false),
        (false, false, false),
    ] {
        let app = app(config()
            .refresh_each_request(refresh)
            .build()
            .expect("config"));
        let route = if permanent {
            "/set_permanent"
        } else {
            "/set_not_permanent"
        };
        let setup = send(&app, "GET", "/set_permanent", None).await;
        let mut cookie = cookie_pair(&setup);
        if !permanent {
            cookie = cookie_pair(&send(&app, "GET", route, Some(&cookie)).await);
        }
        for read in ["/get", "/nothing", "/nothing_with_session"] {
            let response = send(&app, "GET", read, Some(&cookie)).await;
            let got = set_cookies(response.headers());
            assert_eq!(
                !got.is_empty(),
                expect_cookie_on_read,
                "refresh={refresh} permanent={permanent} {read}: {got:?}"
            );
            if expect_cookie_on_read {
                // test_session_refresh_vary: a refreshed cookie varies by cookie.
                assert_eq!(vary(response.headers()), ["Cookie"]);
                assert!(expires(&got[0]).is_some());
            }
        }
    }
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

/// test_session_special_types: tagged values survive the cookie.
#[tokio::test]
async fn special_types_round_trip() {
    let now = OffsetDateTime::from_unix_timestamp(1_704_164_645).expect("time");
    let id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    let app = Router::new()
        .route(
            "/set",
            get(move |s: Session| async move {
                s.insert_value("t", Value::tuple([1.into(), 2.into(), 3.into()]));
                s.insert_value("b", Value::bytes(b"\xff\x00".to_vec()));
                s.insert_value("m", Value::markup("<html>"));
                s.insert_value("u", id);
                s.insert_value("d", now);
                s.insert_value(" t", Value::from("tag-like key"));
                s.insert("nested", serde_json::json!({"x": {" t": [1, 2]}}))
                    .ok();
            }),
        )
        .route(
            "/get",
            get(|s: Session| async move { tessera::tagged::map_to_string(&s.to_map()) }),
        )
        .layer(SessionLayer::new(config().build().expect("config")));
    let cookie = cookie_pair(&send(&app, "GET", "/set", None).await);
    let body = text(send(&app, "GET", "/get", Some(&cookie)).await).await;
    assert_eq!(
        body,
        r#"{" t":"tag-like key","b":{" b":"/wA="},"d":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"},"m":{" m":"<html>"},"nested":{"x":{" di":{" t__":[1,2]}}},"t":{" t":[1,2,3]},"u":{" u":"123456789abcdef0123456789abcdef0"}}"#
    );
}

/// test_flashes: stored as Flask stores them, taken once.
#[tokio::test]
async fn flashes() {
    let app = app(config().build().expect("config"));
    let cookie = cookie_pair(&send(&app, "GET", "/flash", None).await);
    let response = send(&app, "GET", "/flashes", Some(&cookie)).await;
    // Taking the only content deletes the cookie.
    let deleted = set_cookies(response.headers());
    assert!(deleted[0].starts_with("session=;"), "{deleted:?}");
    assert_eq!(
        text(response).await,
        "message:Zap,error:Zip,warning:<em>Zop</em> | errors=1"
    );
    let empty = text(send(&app, "GET", "/flashes", None).await).await;
    assert_eq!(empty, " | errors=0");
}

/// Collects log lines for assertions about what was logged.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// test_max_cookie_size: an oversized cookie is logged as an error naming its
/// size (and still sent), or refused with a 500 when configured.
#[tokio::test(flavor = "current_thread")]
async fn oversized_cookie_is_logged_or_refused() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Random-looking data does not compress below the limit.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let big: String = (0..6000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'#' + (state % 90) as u8)
        })
        .collect();
    let lenient = app(config().build().expect("config"));
    let response = post_body(&lenient, "/set", None, &big).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 1, "an oversized cookie is still sent");
    let size = cookies[0].len();
    assert!(size > 4093);
    let logged = String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8");
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

/// A tossed cookie (same name, bad value) before the real one does not log the
/// visitor out: the first cookie that verifies wins.
#[tokio::test]
async fn a_bad_duplicate_cookie_does_not_hide_the_good_one() {
    let app = app(config().build().expect("config"));
    let good = cookie_pair(&post_body(&app, "/set", None, "mine").await);
    let header = format!("session=forged.value.sig; {good}");
    assert_eq!(
        text(send(&app, "GET", "/get", Some(&header)).await).await,
        "Some(\"mine\")"
    );
}

/// Other cookies and other Set-Cookie headers from the app are left alone.
#[tokio::test]
async fn other_cookies_are_untouched() {
    let app = Router::new()
        .route(
            "/",
            get(|s: Session| async move {
                s.insert("a", 1).ok();
                ([(header::SET_COOKIE, "theme=dark; Path=/")], "").into_response()
            }),
        )
        .layer(SessionLayer::new(
            config().cookie_name("sid").build().expect("config"),
        ));
    let response = send(&app, "GET", "/", Some("session=whatever; theme=light")).await;
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("theme=dark"));
    assert!(cookies[1].starts_with("sid="));
}

/// Without the layer the extractor rejects with a clear 500, not a panic.
#[tokio::test]
async fn extractor_without_layer_is_a_clear_error() {
    let app: Router = Router::new().route("/", get(|_s: Session| async { "" }));
    let response = send(&app, "GET", "/", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text(response).await.contains("SessionLayer"));
}

/// A weak SECRET_KEY logs a warning at startup; a strong one does not.
#[test]
fn weak_secret_key_logs_a_warning() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let logged = || String::from_utf8(logs.0.lock().expect("lock").clone()).expect("utf-8");

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
