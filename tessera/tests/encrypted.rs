//! `SESSION_TYPE=encrypted` through the layer: the session API works as with
//! signed cookies, while the cookie can be neither read nor changed, is bound
//! to its name and keys, and hostile or oversized cookies are handled as in
//! signed mode.
#![cfg(feature = "axum")]

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use tessera::{
    decode_unverified, CookieCodec, Map, Session, SessionConfig, SessionConfigBuilder,
    SessionLayer, SessionType,
};
use tower::ServiceExt;

mod common;
#[path = "common/logs.rs"]
mod logs;

use common::{cookie_pair, set_cookies, text};
use logs::LogBuffer;

const KEY: &str = "encrypted-layer-test-key-0123456789abcdef";
const OLD_KEY: &str = "encrypted-layer-old-key-0123456789abcdef";

fn encrypted(key: &str) -> SessionConfigBuilder {
    SessionConfig::builder()
        .secret_key(key)
        .session_type(SessionType::EncryptedCookie)
}

fn build(builder: SessionConfigBuilder) -> Router {
    app(builder.build().expect("config"))
}

fn app(config: SessionConfig) -> Router {
    Router::new()
        .route(
            "/login",
            post(|s: Session, user: String| async move {
                s.insert("username", user).ok();
                "welcome"
            }),
        )
        .route(
            "/visit",
            get(|s: Session| async move {
                let visits: u64 = s.get("visits").ok().flatten().unwrap_or(0) + 1;
                s.insert("visits", visits).ok();
                let user: Option<String> = s.get("username").ok().flatten();
                format!("{} {visits}", user.as_deref().unwrap_or("anonymous"))
            }),
        )
        .route(
            "/set",
            post(|s: Session, body: String| async move {
                s.insert("value", body).ok();
                "value set"
            }),
        )
        .route(
            "/get",
            get(|s: Session| async move { format!("{:?}", s.get::<String>("value").ok().flatten()) }),
        )
        .layer(SessionLayer::new(config))
}

async fn send(app: &Router, method: &str, uri: &str, cookie: Option<&str>, body: &str) -> Response {
    common::request(app, method, uri, cookie, body).await
}

/// Logs `user` in and returns the `session=…` pair.
async fn login(app: &Router, user: &str) -> String {
    let response = send(app, "POST", "/login", None, user).await;
    assert_eq!(response.status(), StatusCode::OK);
    cookie_pair(&response)
}

async fn visit(app: &Router, cookie: &str) -> (String, Option<String>) {
    let response = send(app, "GET", "/visit", Some(cookie), "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let next = set_cookies(response.headers())
        .first()
        .map(|c| c.split(';').next().expect("pair").to_owned());
    (text(response).await, next)
}

fn value_of(pair: &str) -> &str {
    pair.split_once('=').expect("name=value").1
}

#[tokio::test]
async fn login_and_visit_counter_round_trip() {
    let app = build(encrypted(KEY));
    let mut cookie = login(&app, "alice").await;
    assert!(value_of(&cookie).starts_with('E'), "{cookie}");
    let mut seen = vec![cookie.clone()];
    for expected in 1..=3 {
        let (body, next) = visit(&app, &cookie).await;
        assert_eq!(body, format!("alice {expected}"));
        cookie = next.expect("the counter changed, so the cookie is re-sealed");
        assert!(!seen.contains(&cookie), "a fresh nonce every time");
        seen.push(cookie.clone());
    }
    // Without the cookie, a new visitor.
    let response = send(&app, "GET", "/visit", None, "").await;
    assert_eq!(text(response).await, "anonymous 1");
}

#[tokio::test]
async fn the_cookie_does_not_show_the_session() {
    let app = build(encrypted(KEY));
    let user = "alice-wonderland-the-unreadable";
    let cookie = login(&app, user).await;
    let response = send(&app, "POST", "/set", Some(&cookie), "top-secret-value").await;
    let cookie = cookie_pair(&response);
    let value = value_of(&cookie);
    let raw = URL_SAFE_NO_PAD.decode(value).expect("URL-safe base64");
    for needle in [user, "top-secret-value", "username", "value"] {
        assert!(!value.contains(needle), "{needle} in {value}");
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} in the decoded cookie"
        );
    }
    assert!(decode_unverified(value, 1 << 20).is_err());
    let response = send(&app, "GET", "/get", Some(&cookie), "").await;
    assert_eq!(text(response).await, "Some(\"top-secret-value\")");
}

#[tokio::test]
async fn signed_and_encrypted_cookies_do_not_cross() {
    let encrypted_app = build(encrypted(KEY));
    let signed_app = build(SessionConfig::builder().secret_key(KEY));
    let signed = login(&signed_app, "alice").await;
    let sealed = login(&encrypted_app, "alice").await;
    for (app, foreign) in [(&encrypted_app, &signed), (&signed_app, &sealed)] {
        let response = send(app, "GET", "/get", Some(foreign), "").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(set_cookies(response.headers()).is_empty());
        assert_eq!(text(response).await, "None");
        let (body, _) = visit(app, foreign).await;
        assert_eq!(body, "anonymous 1");
    }
}

#[tokio::test]
async fn keys_rotate_through_fallbacks() {
    let old_app = build(encrypted(OLD_KEY));
    let rotated = build(encrypted(KEY).secret_key_fallbacks(["oldest-key", OLD_KEY]));
    let new_only = build(encrypted(KEY));
    let old_only = build(encrypted(OLD_KEY));

    let old_cookie = login(&old_app, "alice").await;
    assert_eq!(visit(&new_only, &old_cookie).await.0, "anonymous 1");
    let (body, resealed) = visit(&rotated, &old_cookie).await;
    assert_eq!(body, "alice 1");
    let resealed = resealed.expect("re-sealed");
    // Sealed with the current key only.
    assert_eq!(visit(&new_only, &resealed).await.0, "alice 2");
    assert_eq!(visit(&old_only, &resealed).await.0, "anonymous 1");
}

#[tokio::test]
async fn the_cookie_is_bound_to_its_name() {
    let app = build(encrypted(KEY));
    let renamed_app = build(encrypted(KEY).cookie_name("other"));
    let cookie = login(&app, "alice").await;
    let renamed = format!("other={}", value_of(&cookie));
    assert_eq!(visit(&renamed_app, &renamed).await.0, "anonymous 1");
    let own = login(&renamed_app, "bob").await;
    assert!(own.starts_with("other="));
    assert_eq!(visit(&renamed_app, &own).await.0, "bob 1");
}

#[tokio::test]
async fn expired_and_future_cookies_are_refused() {
    let config = encrypted(KEY)
        .permanent_session_lifetime(Duration::from_secs(600))
        .build()
        .expect("config");
    let codec = config.cookie_codec();
    let app = app(config);
    let data = Map::from([("value".to_owned(), "v".into())]);
    let now = SystemTime::now();
    let fresh = format!(
        "session={}",
        codec.encode(&data, now - Duration::from_secs(5))
    );
    assert_eq!(
        text(send(&app, "GET", "/get", Some(&fresh), "").await).await,
        "Some(\"v\")"
    );
    for when in [
        now - Duration::from_secs(700),
        now + Duration::from_secs(3600),
    ] {
        let cookie = format!("session={}", codec.encode(&data, when));
        let response = send(&app, "GET", "/get", Some(&cookie), "").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(set_cookies(response.headers()).is_empty());
        assert_eq!(text(response).await, "None");
    }
}

/// Hostile cookies never fail a request: they give an empty session and no
/// Set-Cookie.
#[tokio::test]
async fn hostile_cookies_give_an_empty_session() {
    let app = build(encrypted(KEY));
    let good = cookie_pair(&send(&app, "POST", "/set", None, "secret").await);
    let value = value_of(&good);
    let mut raw = URL_SAFE_NO_PAD.decode(value).expect("base64");
    let tampered = |index: usize| {
        let mut bytes = raw.clone();
        bytes[index] ^= 1;
        URL_SAFE_NO_PAD.encode(bytes)
    };
    let flipped_header = tampered(0);
    let flipped_nonce = tampered(5);
    let flipped_body = tampered(30);
    let flipped_tag = tampered(raw.len() - 1);
    raw.truncate(48);
    let short = URL_SAFE_NO_PAD.encode(&raw);
    let cases = [
        "session=".to_owned(),
        "session=garbage".to_owned(),
        "session=a.b.c".to_owned(),
        "session=E".to_owned(),
        format!("session={flipped_header}"),
        format!("session={flipped_nonce}"),
        format!("session={flipped_body}"),
        format!("session={flipped_tag}"),
        format!("session={short}"),
        format!("session={value}A"),
        format!("session={value}="),
        format!("session=.{value}"),
        format!("session={}", &value[..value.len() - 1]),
        format!("session={}", "A".repeat(100_000)),
        format!("session={}", "E".repeat(5000)),
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
    let request = Request::get("/get")
        .header(
            header::COOKIE,
            HeaderValue::from_bytes(b"session=\xff\xfe").expect("opaque bytes"),
        )
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);

    // A junk cookie of the same name before the real one does not hide it.
    let header = format!("session={flipped_body}; {good}");
    let response = send(&app, "GET", "/get", Some(&header), "").await;
    assert_eq!(text(response).await, "Some(\"secret\")");

    // As with signed cookies, at most 16 values that reach the keys are
    // opened (each costs a decryption per key), so a header of thousands
    // costs no more than 16; values too short to be sealed are refused
    // before any key and do not count.
    let get = async |junk: &str, count: usize| {
        let header = format!("{}{good}", format!("session={junk}; ").repeat(count));
        text(send(&app, "GET", "/get", Some(&header), "").await).await
    };
    assert_eq!(get(&flipped_body, 15).await, "Some(\"secret\")");
    assert_eq!(get(&flipped_body, 16).await, "None");
    let shortest_sealed = "E".repeat(66);
    assert_eq!(get(&shortest_sealed, 16).await, "None");
    assert_eq!(get(&shortest_sealed[1..], 1000).await, "Some(\"secret\")");
    assert_eq!(get("garbage", 1000).await, "Some(\"secret\")");
}

/// As in signed mode: an oversized cookie is logged as an error naming its
/// size and still sent, or refused with a 500. Without compression a
/// repetitive session that a signed cookie squeezes into a few bytes takes
/// its full size.
#[tokio::test(flavor = "current_thread")]
async fn oversized_cookie_is_logged_or_refused() {
    let (logs, _guard) = LogBuffer::capture();

    let big = "a".repeat(5000);
    let signed = build(SessionConfig::builder().secret_key(KEY));
    let response = send(&signed, "POST", "/set", None, &big).await;
    let signed_size = set_cookies(response.headers())[0].len();
    assert!(signed_size < 300, "{signed_size}");

    let lenient = build(encrypted(KEY));
    let response = send(&lenient, "POST", "/set", None, &big).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(response.headers());
    assert_eq!(cookies.len(), 1, "an oversized cookie is still sent");
    let size = cookies[0].len();
    assert!(size > 4093 + 1000, "{size}");
    let logged = logs.contents();
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(logged.contains(&format!("{size} bytes")), "{logged}");
    assert!(!logged.contains(&big[..100]), "the session is never logged");

    let strict = build(encrypted(KEY).refuse_oversized_cookies(true));
    let response = send(&strict, "POST", "/set", None, &big).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(response.headers()).is_empty());
    let response = send(&strict, "POST", "/set", None, "small").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(response.headers()).len(), 1);

    // With compression explicitly on, the same session fits.
    let compressing = build(
        encrypted(KEY)
            .refuse_oversized_cookies(true)
            .encrypted_compression(true),
    );
    let response = send(&compressing, "POST", "/set", None, &big).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = cookie_pair(&response);
    assert!(cookie.len() < 300, "{}", cookie.len());
    let response = send(&compressing, "GET", "/get", Some(&cookie), "").await;
    assert_eq!(text(response).await, format!("Some({big:?})"));

    // Incoming cookies past the payload bound (the smallest accepted, below
    // the 5 KB of this session) give an empty session.
    let bounded = build(encrypted(KEY).max_payload_size(4096));
    let pair = cookies[0].split(';').next().expect("pair");
    let response = send(&bounded, "GET", "/get", Some(pair), "").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text(response).await, "None");
}

/// A permanent cookie sealed compressed, read by an app that seals without
/// compression, is refreshed at its full size: that is no change to lose,
/// and the log says so, with a warning rather than the error for a change.
#[tokio::test(flavor = "current_thread")]
async fn an_oversized_refresh_is_not_logged_as_a_lost_change() {
    let (logs, _guard) = LogBuffer::capture();
    let big = "a".repeat(5000);
    let mut data = Map::new();
    data.insert("_permanent".to_owned(), true.into());
    data.insert("value".to_owned(), big.as_str().into());
    let sealed = CookieCodec::encrypted(&KEY.into(), &[], "session")
        .encrypted_compression(true)
        .encode(&data, SystemTime::now());
    assert!(sealed.len() < 300, "{}", sealed.len());

    let uncompressed = build(encrypted(KEY));
    let response = send(
        &uncompressed,
        "GET",
        "/get",
        Some(&format!("session={sealed}")),
        "",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(response.headers()).len(), 1, "refreshed");
    assert_eq!(text(response).await, format!("Some({big:?})"));
    let logged = logs.contents();
    assert!(
        logged.contains("WARN") && logged.contains("a refresh of the cookie"),
        "{logged}"
    );
    assert!(!logged.contains("would be lost"), "{logged}");
}

/// A cookie the library seals is opened by a codec built by hand with the
/// same key and name, which is what the CLI does.
#[tokio::test]
async fn the_codec_opens_what_the_layer_seals() {
    let app = build(encrypted(KEY));
    let cookie = login(&app, "alice").await;
    let codec = CookieCodec::encrypted(&KEY.into(), &[], "session");
    let decoded = codec
        .decode(value_of(&cookie), SystemTime::now())
        .expect("opens");
    assert_eq!(
        decoded.data,
        Map::from([("username".to_owned(), "alice".into())])
    );
    let minted = format!("session={}", codec.encode(&decoded.data, SystemTime::now()));
    assert_eq!(visit(&app, &minted).await.0, "alice 1");
}
