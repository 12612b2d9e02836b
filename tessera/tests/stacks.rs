//! The shared behaviour tests: Flask's response rules (ported from Flask's
//! `tests/test_basic.py`), hostile input, interop with real Flask and the
//! server-side stores' HTTP cases, each run over real HTTP against both
//! integrations (axum's `SessionLayer` and actix-web's `SessionMiddleware`)
//! in every session type: signed and encrypted cookies, and the memory,
//! SQLite, Redis and PostgreSQL stores.
#![cfg(all(feature = "axum", feature = "actix"))]

use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method, StatusCode};
use tessera::{
    tagged, CookieCodec, Map, SameSite, SecretKey, Session, SessionConfig, SessionConfigBuilder,
    Value,
};
use time::OffsetDateTime;

#[path = "common/incompressible.rs"]
mod incompressible;
#[path = "common/stack.rs"]
mod stack;
#[path = "../../interop/support.rs"]
mod support;

use incompressible::incompressible;

use stack::{serve, Answer, Mode, Reply, Route, Server, Stack};

const KEY: &str = "stack-test-secret-key-0123456789abcdef";

fn config() -> SessionConfigBuilder {
    SessionConfig::builder().secret_key(KEY)
}

fn debug_string(value: Option<String>) -> String {
    format!("{value:?}")
}

/// Routes mirroring the ones Flask's tests define.
fn routes() -> Vec<Route> {
    vec![
        Route::plain("/nothing", ""),
        Route::get("/nothing_with_session", |_| Reply::text("")),
        Route::get("/get", |s| {
            Reply::text(debug_string(s.get::<String>("value").ok().flatten()))
        }),
        Route::get("/contains", |s| {
            Reply::text(s.contains_key("value").to_string())
        }),
        Route::get("/len", |s| Reply::text(s.len().to_string())),
        Route::get("/keys", |s| Reply::text(s.keys().join(","))),
        Route::get("/permanent", |s| Reply::text(s.permanent().to_string())),
        Route::get("/setdefault", |s| {
            Reply::text(s.setdefault("value", "default").to_string())
        }),
        Route::new(
            Method::POST,
            "/set",
            |s: Session, body: String| async move {
                s.insert("value", body).ok();
                Reply::text("value set")
            },
        ),
        Route::get("/set_permanent", |s| {
            s.insert("value", "x").ok();
            s.set_permanent(true);
            Reply::text("")
        }),
        Route::get("/set_not_permanent", |s| {
            s.set_permanent(false);
            Reply::text("")
        }),
        Route::get("/pop", |s| {
            Reply::text(format!("{:?}", s.remove("value").map(|v| v.to_string())))
        }),
        Route::get("/pop_missing", |s| {
            Reply::text(format!("{:?}", s.remove("missing")))
        }),
        Route::get("/clear", |s| {
            s.clear();
            Reply::text("")
        }),
        Route::get("/vary_accept", |s| {
            s.get_value("value");
            Reply::text("").header("vary", "Accept-Encoding")
        }),
        Route::get("/vary_cookie_already", |s| {
            s.get_value("value");
            Reply::text("").header("vary", "Accept-Encoding, Cookie")
        }),
        Route::get("/flash", |s| {
            s.flash("Zap");
            s.flash_with_category("error", "Zip");
            s.flash_with_category("warning", Value::markup("<em>Zop</em>"));
            Reply::text("")
        }),
        Route::get("/flashes", |s| {
            let all: Vec<String> = s
                .take_flashes()
                .iter()
                .map(|f| format!("{}:{}", f.category, f.text()))
                .collect();
            let errors = s.take_flashes_in(&["error"]).len();
            Reply::text(format!("{} | errors={errors}", all.join(",")))
        }),
        Route::get("/dump", |s| Reply::text(tagged::map_to_string(&s.to_map()))),
        Route::get("/theme", |s| {
            s.insert("a", 1).ok();
            Reply::text("").header("set-cookie", "theme=dark; Path=/")
        }),
        Route::new(
            Method::POST,
            "/incr",
            |s: Session, _body: String| async move {
                match s.increment("visits", 1).await {
                    Ok(n) => Reply::text(n.to_string()),
                    Err(e) => Reply::status(409, e.to_string()),
                }
            },
        ),
    ]
}

async fn app(stack: Stack, mode: Mode, builder: SessionConfigBuilder) -> Server {
    serve(stack, mode, builder, routes()).await
}

fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
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

fn is_removal(set_cookie: &str) -> bool {
    set_cookie.starts_with("session=;")
        && attributes(set_cookie).contains(&"max-age=0".to_owned())
        && expires(set_cookie) == Some(OffsetDateTime::UNIX_EPOCH)
}

/// test_session_accessed + test_session_vary_cookie: reads add `Vary: Cookie`,
/// untouched sessions do not.
async fn vary_cookie_follows_access(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config()).await;
    let with_value = app.post("/set", None, "42").await.cookie_pair();
    let response = app.get("/nothing", Some(&with_value)).await;
    assert!(response.vary().is_empty());
    assert!(response.set_cookies().is_empty());
    if !mode.is_server_side() {
        // Server-side, taking the session loads it from the store: it is
        // not a read of the data, but the session was used.
        let response = app.get("/nothing_with_session", Some(&with_value)).await;
        assert!(response.vary().is_empty());
        assert!(response.set_cookies().is_empty());
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
            let response = app.get(route, cookie).await;
            assert_eq!(response.vary(), ["Cookie"], "{route} with {cookie:?}");
        }
    }
    let response = app.get("/vary_accept", Some(&with_value)).await;
    assert_eq!(response.vary(), ["Accept-Encoding, Cookie"]);
    let response = app.get("/vary_cookie_already", Some(&with_value)).await;
    assert_eq!(response.vary(), ["Accept-Encoding, Cookie"]);
}

/// Flask's rule 4: which operations count as modifications.
async fn only_writes_send_a_cookie(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config()).await;
    let mut cookie = app.post("/set", None, "v").await.cookie_pair();
    for route in [
        "/get",
        "/contains",
        "/len",
        "/keys",
        "/permanent",
        "/pop_missing",
        "/set",
    ] {
        let response = if route == "/set" {
            app.post(route, Some(&cookie), "changed").await
        } else {
            app.get(route, Some(&cookie)).await
        };
        assert_eq!(
            !response.set_cookies().is_empty(),
            route == "/set",
            "{route}: {:?}",
            response.set_cookies()
        );
        if route == "/set" {
            cookie = response.cookie_pair();
        }
    }
    // setdefault of an existing key does not modify; of a missing key it does.
    let response = app.get("/setdefault", Some(&cookie)).await;
    assert!(response.set_cookies().is_empty());
    assert_eq!(response.body, "\"changed\"");
    let response = app.get("/setdefault", None).await;
    assert_eq!(response.set_cookies().len(), 1);
    // A pop of the last key empties the session: the cookie is deleted.
    let response = app.get("/pop", Some(&cookie)).await;
    let deleted = response.set_cookies();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(is_removal(&deleted[0]), "{deleted:?}");
    if mode.is_server_side() {
        // ... and the session is gone for whoever still holds the cookie.
        assert_eq!(app.get("/get", Some(&cookie)).await.body, "None");
    }
}

/// test_session_path: the cookie's path follows SESSION_COOKIE_PATH.
async fn cookie_path_setting(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config().cookie_path("/foo")).await;
    let response = app.post("/set", None, "x").await;
    let cookie = &response.set_cookies()[0];
    assert!(
        attributes(cookie).contains(&"path=/foo".to_owned()),
        "{cookie}"
    );
}

/// test_session_using_session_settings: every attribute on the cookie and on
/// its deletion.
async fn cookie_attributes_follow_settings(stack: Stack, mode: Mode) {
    let app = app(
        stack,
        mode,
        config()
            .cookie_domain("example.com")
            .cookie_secure(true)
            .cookie_http_only(false)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/")
            .cookie_partitioned(true),
    )
    .await;
    let response = app.get("/set_permanent", None).await;
    let cookie = &response.set_cookies()[0];
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
    let response = app.get("/clear", Some(&pair)).await;
    let deletion = &response.set_cookies()[0];
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

/// The default cookie is exactly what Flask sends: HttpOnly, Path=/, nothing
/// else (server-side sessions are permanent by default, as in
/// Flask-Session, so theirs also expires).
async fn default_cookie_attributes_match_flask(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config()).await;
    let response = app.post("/set", None, "value").await;
    let cookie = &response.set_cookies()[0];
    let mut attrs: Vec<String> = attributes(cookie)
        .into_iter()
        .filter(|a| !(mode.is_server_side() && a.starts_with("expires=")))
        .collect();
    attrs.sort();
    assert_eq!(attrs, ["httponly", "path=/"], "{cookie}");
    assert_eq!(expires(cookie).is_some(), mode.is_server_side(), "{cookie}");
}

/// test_session_using_samesite_attribute.
async fn samesite_values(stack: Stack, mode: Mode) {
    for (same_site, expected) in [
        (SameSite::None, "none"),
        (SameSite::Strict, "strict"),
        (SameSite::Lax, "lax"),
    ] {
        let app = app(stack, mode, config().cookie_same_site(same_site)).await;
        let response = app.post("/set", None, "x").await;
        let cookie = &response.set_cookies()[0];
        assert!(
            attributes(cookie).contains(&format!("samesite={expected}")),
            "{cookie}"
        );
    }
}

/// test_session_secret_key_fallbacks: old cookies still load after rotation;
/// new cookies are written with the new key.
async fn secret_key_fallbacks(stack: Stack, mode: Mode) {
    let old_key = "old-key-0123456789abcdef0123456789";
    let new_key = "new-key-0123456789abcdef0123456789";
    let old = app(stack, mode, SessionConfig::builder().secret_key(old_key)).await;
    let cookie = old.post("/set", None, "from-old").await.cookie_pair();

    let rotated = app(
        stack,
        mode,
        SessionConfig::builder()
            .secret_key(new_key)
            .secret_key_fallbacks(["older-key", old_key]),
    )
    .await;
    assert_eq!(
        rotated.get("/get", Some(&cookie)).await.body,
        "Some(\"from-old\")"
    );
    let rewritten = rotated
        .post("/set", Some(&cookie), "from-new")
        .await
        .cookie_pair();

    let fresh = app(stack, mode, SessionConfig::builder().secret_key(new_key)).await;
    assert_eq!(
        fresh.get("/get", Some(&rewritten)).await.body,
        "Some(\"from-new\")"
    );
    assert_eq!(fresh.get("/get", Some(&cookie)).await.body, "None");
}

/// test_session_expiration: permanent cookies expire after the lifetime;
/// non-permanent ones are browser-session cookies.
async fn permanent_expiration(stack: Stack, mode: Mode) {
    let lifetime = Duration::from_secs(3600);
    let app = app(stack, mode, config().permanent_session_lifetime(lifetime)).await;
    let before = OffsetDateTime::now_utc();
    let response = app.get("/set_permanent", None).await;
    let cookie = response.set_cookies().remove(0);
    let expiry = expires(&cookie).expect("permanent cookies expire");
    let expected = before + lifetime;
    assert!(
        (expiry - expected).whole_seconds().abs() <= 2,
        "{expiry} vs {expected}"
    );

    let pair = cookie.split(';').next().expect("pair").to_owned();
    assert_eq!(app.get("/permanent", Some(&pair)).await.body, "true");

    let response = app.get("/set_not_permanent", Some(&pair)).await;
    let cookie = response.set_cookies().remove(0);
    assert_eq!(expires(&cookie), None, "{cookie}");
    assert!(!attributes(&cookie).iter().any(|a| a.starts_with("max-age")));
    let pair = cookie.split(';').next().expect("pair").to_owned();
    assert_eq!(app.get("/permanent", Some(&pair)).await.body, "false");
    assert_eq!(app.get("/get", Some(&pair)).await.body, "Some(\"x\")");
}

/// A cookie older than PERMANENT_SESSION_LIFETIME is refused even if the
/// session is not permanent, and so is one from the future.
async fn old_and_future_cookies_are_refused(stack: Stack, mode: Mode) {
    let lifetime = Duration::from_secs(60);
    let app = app(stack, mode, config().permanent_session_lifetime(lifetime)).await;
    let codec = cookie_codec(mode).max_age(lifetime);
    let data = Map::from([("value".to_owned(), Value::from("stale"))]);
    let now = SystemTime::now();
    for (when, expected) in [
        (now - Duration::from_secs(30), "Some(\"stale\")"),
        (now - Duration::from_secs(120), "None"),
        (now + Duration::from_secs(120), "None"),
    ] {
        let cookie = format!("session={}", codec.encode(&data, when));
        let response = app.get("/get", Some(&cookie)).await;
        assert_eq!(response.status, StatusCode::OK);
        assert!(response.set_cookies().is_empty());
        assert_eq!(response.body, expected);
    }
}

/// The codec the server of a cookie `mode` uses with `config()`.
fn cookie_codec(mode: Mode) -> CookieCodec {
    let key = SecretKey::from(KEY);
    match mode {
        Mode::Encrypted => CookieCodec::encrypted(&key, &[], "session"),
        _ => CookieCodec::new(&key, &[]),
    }
}

/// test_session_cookie_setting: SESSION_REFRESH_EACH_REQUEST with permanent
/// and non-permanent sessions, on requests that only read.
async fn refresh_each_request(stack: Stack, mode: Mode) {
    for (refresh, permanent, expect_cookie_on_read) in [
        (true, true, true),
        (true, false, false),
        (false, true, false),
        (false, false, false),
    ] {
        let app = app(stack, mode, config().refresh_each_request(refresh)).await;
        let mut cookie = app.get("/set_permanent", None).await.cookie_pair();
        if !permanent {
            cookie = app
                .get("/set_not_permanent", Some(&cookie))
                .await
                .cookie_pair();
        }
        for read in ["/get", "/nothing", "/nothing_with_session"] {
            let response = app.get(read, Some(&cookie)).await;
            let got = response.set_cookies();
            assert_eq!(
                !got.is_empty(),
                expect_cookie_on_read,
                "refresh={refresh} permanent={permanent} {read}: {got:?}"
            );
            if expect_cookie_on_read {
                // test_session_refresh_vary: a refreshed cookie varies by cookie.
                assert_eq!(response.vary(), ["Cookie"]);
                assert!(expires(&got[0]).is_some());
            }
        }
    }
}

/// The payload of a signed cookie value: what comes before its timestamp
/// and signature.
fn payload_of(value: &str) -> &str {
    value
        .rsplitn(3, '.')
        .nth(2)
        .expect("payload.timestamp.signature")
}

/// A permanent session that a request only reads is sent again with a new
/// timestamp, and with the same data; a signed cookie keeps the very payload
/// it came with (re-signed rather than encoded again). A change is encoded
/// anew.
async fn refreshed_sessions_keep_their_payload(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config()).await;
    let codec = cookie_codec(mode);
    let small = Map::from([
        ("_permanent", Value::from(true)),
        ("user", Value::from("alice")),
    ]);
    let mut large = small.clone();
    // Compressible, so the payload is zlib's ('.' first).
    large.insert("notes".to_owned(), Value::from("lorem ipsum ".repeat(60)));
    for data in [small, large] {
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let sent = codec.encode(&data, hour_ago);
        let response = app.get("/get", Some(&format!("session={sent}"))).await;
        assert_eq!(response.body, "None");
        let refreshed = response.cookie_pair();
        let refreshed = refreshed.trim_start_matches("session=");
        let decoded = codec
            .decode(refreshed, SystemTime::now())
            .expect("the refreshed cookie verifies");
        assert_eq!(decoded.data, data);
        let signed_at = decoded.signed_at.expect("signed");
        let minute_ago = SystemTime::now() - Duration::from_secs(60);
        assert!(
            signed_at
                >= minute_ago
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_secs()
        );
        if mode == Mode::Signed {
            assert_eq!(payload_of(refreshed), payload_of(&sent));
            assert_eq!(
                payload_of(&sent).starts_with('.'),
                data.contains_key("notes"),
                "the large session's payload is compressed, the small one's is not"
            );
        }

        let response = app
            .post("/set", Some(&format!("session={refreshed}")), "changed")
            .await;
        let written = response.cookie_pair();
        let written = written.trim_start_matches("session=");
        let mut expected = data.clone();
        expected.insert("value".to_owned(), Value::from("changed"));
        let decoded = codec
            .decode(written, SystemTime::now())
            .expect("the changed cookie verifies");
        assert_eq!(decoded.data, expected);
    }
}

/// test_session_special_types: tagged values survive the round trip.
async fn special_types_round_trip(stack: Stack, mode: Mode) {
    let now = OffsetDateTime::from_unix_timestamp(1_704_164_645).expect("time");
    let id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    let mut routes = routes();
    routes.push(Route::get("/special", move |s| {
        s.insert_value("t", Value::tuple([1.into(), 2.into(), 3.into()]));
        s.insert_value("b", Value::bytes(b"\xff\x00".to_vec()));
        s.insert_value("m", Value::markup("<html>"));
        s.insert_value("u", id);
        s.insert_value("d", now);
        s.insert_value(" t", Value::from("tag-like key"));
        s.insert("nested", serde_json::json!({"x": {" t": [1, 2]}}))
            .ok();
        Reply::text("")
    }));
    let app = serve(stack, mode, config(), routes).await;
    let cookie = app.get("/special", None).await.cookie_pair();
    let body = app.get("/dump", Some(&cookie)).await.body;
    let body = body.replace(r#""_permanent":true,"#, "");
    assert_eq!(
        body,
        r#"{" t":"tag-like key","b":{" b":"/wA="},"d":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"},"m":{" m":"<html>"},"nested":{"x":{" di":{" t__":[1,2]}}},"t":{" t":[1,2,3]},"u":{" u":"123456789abcdef0123456789abcdef0"}}"#
    );
}

/// test_flashes: stored as Flask stores them, taken once.
async fn flashes(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config()).await;
    let cookie = app.get("/flash", None).await.cookie_pair();
    let response = app.get("/flashes", Some(&cookie)).await;
    // Taking the only content deletes the cookie.
    let deleted = response.set_cookies();
    assert!(is_removal(&deleted[0]), "{deleted:?}");
    assert_eq!(
        response.body,
        "message:Zap,error:Zip,warning:<em>Zop</em> | errors=1"
    );
    assert_eq!(app.get("/flashes", None).await.body, " | errors=0");
    if mode.is_server_side() {
        assert_eq!(
            app.get("/flashes", Some(&cookie)).await.body,
            " | errors=0",
            "taken flashes are gone, even for a replayed cookie"
        );
    }
}

/// test_max_cookie_size: an oversized cookie is still sent (and logged), or
/// refused with a 500 when configured; MAX_COOKIE_SIZE=0 disables the check.
async fn oversized_cookie_is_sent_or_refused(stack: Stack, mode: Mode) {
    let big = incompressible(6000);
    let lenient = app(stack, mode, config()).await;
    let response = lenient.post("/set", None, &big).await;
    assert_eq!(response.status, StatusCode::OK);
    let cookies = response.set_cookies();
    assert_eq!(cookies.len(), 1, "an oversized cookie is still sent");
    assert!(cookies[0].len() > 4093);

    let strict = app(stack, mode, config().refuse_oversized_cookies(true)).await;
    let response = strict.post("/set", None, &big).await;
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.set_cookies().is_empty());
    let response = strict.post("/set", None, "small").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.set_cookies().len(), 1);

    let unchecked = app(
        stack,
        mode,
        config().max_cookie_size(0).refuse_oversized_cookies(true),
    )
    .await;
    let response = unchecked.post("/set", None, &big).await;
    assert_eq!(response.status, StatusCode::OK);
}

/// Server-side the cookie is an id whatever the session holds.
async fn large_sessions_stay_in_the_store(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config().refuse_oversized_cookies(true)).await;
    let big = incompressible(20_000);
    let response = app.post("/set", None, &big).await;
    assert_eq!(response.status, StatusCode::OK);
    let cookie = response.cookie_pair();
    assert!(cookie.len() < 100, "{cookie}");
    let body = app.get("/get", Some(&cookie)).await.body;
    assert_eq!(body, format!("{:?}", Some(big)));
}

/// Hostile cookies never fail a request: they give an empty session and no
/// Set-Cookie.
async fn hostile_cookies_give_an_empty_session(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config()).await;
    let good = app.post("/set", None, "secret").await.cookie_pair();
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
        format!("session={value}x"),
        format!("session=.{value}"),
        format!("session={}", "A".repeat(8_000)),
        "session=\u{7f}".to_owned(),
        "session".to_owned(),
        ";;;=;session==".to_owned(),
    ];
    for cookie in &cases {
        let Ok(header) = HeaderValue::from_str(cookie) else {
            continue;
        };
        let response = app.send_raw("GET", "/get", Some(header), "").await;
        assert_ok_and_empty(&response, cookie);
    }
    let header = HeaderValue::from_bytes(b"session=\xff\xfe").expect("opaque bytes");
    let response = app.send_raw("GET", "/get", Some(header), "").await;
    assert_ok_and_empty(&response, "non-UTF-8 bytes");
}

fn assert_ok_and_empty(response: &Answer, cookie: &str) {
    assert_eq!(response.status, StatusCode::OK, "{cookie:.60}");
    assert!(response.set_cookies().is_empty(), "{cookie:.60}");
    assert_eq!(response.body, "None", "{cookie:.60}");
}

/// A tossed cookie (same name, bad value) before the real one does not log the
/// visitor out: the first cookie that verifies wins.
async fn a_bad_duplicate_cookie_does_not_hide_the_good_one(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config()).await;
    let good = app.post("/set", None, "mine").await.cookie_pair();
    let header = format!("session=forged.value.sig; {good}");
    assert_eq!(app.get("/get", Some(&header)).await.body, "Some(\"mine\")");
}

/// Other cookies and other Set-Cookie headers from the app are left alone.
async fn other_cookies_are_untouched(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config().cookie_name("sid")).await;
    let response = app
        .get("/theme", Some("session=whatever; theme=light"))
        .await;
    let cookies = response.set_cookies();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("theme=dark"), "{cookies:?}");
    assert!(cookies[1].starts_with("sid="), "{cookies:?}");
}

/// Cookies real Flask signed are read to the same data by the server, and
/// the cookie the server writes back is loaded by Flask to the same data.
async fn flask_cookies_over_http(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config()).await;
    let cases = flask::tool(&["cases", "--secret-key", KEY], None);
    assert!(cases.len() >= 30, "the full case list: {}", cases.len());
    for case in &cases {
        let name = flask::field(case, "name");
        let expected = flask::field(case, "tagged_json");
        if expected == "{}" {
            continue;
        }
        let cookie = format!("session={}", flask::field(case, "cookie"));
        let response = app.get("/dump", Some(&cookie)).await;
        assert_eq!(
            response.body, expected,
            "{name}: the server read something else"
        );
        if expected.contains(r#""_permanent":true"#) {
            // Refreshed unchanged: Flask's own payload, signed again, which
            // Flask reads as before.
            let refreshed = response.cookie_pair();
            let refreshed = refreshed.trim_start_matches("session=");
            assert_eq!(
                payload_of(refreshed),
                payload_of(flask::field(case, "cookie")),
                "{name}"
            );
            let (loaded, permanent) = flask::load(KEY, refreshed);
            assert_eq!((loaded.as_str(), permanent), (expected, true), "{name}");
        }

        // A write keeps every other key exactly as Flask wrote it.
        let response = app.get("/setdefault", Some(&cookie)).await;
        if response.set_cookies().is_empty() {
            continue;
        }
        let written = response.cookie_pair();
        let (loaded, _permanent) = flask::load(KEY, written.trim_start_matches("session="));
        let reread = app.get("/dump", Some(&written)).await.body;
        assert_eq!(
            loaded, reread,
            "{name}: Flask read the server's cookie differently"
        );
    }
}

/// Parallel increments of one session's counter over HTTP all count.
async fn concurrent_increments_over_http_all_count(stack: Stack, mode: Mode) {
    let app = std::sync::Arc::new(app(stack, mode, config()).await);
    let cookie = app.post("/set", None, "v").await.cookie_pair();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let app = app.clone();
            let cookie = cookie.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    let response = app.post("/incr", Some(&cookie), "").await;
                    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no panic");
    }
    let last = app.post("/incr", Some(&cookie), "").await;
    assert_eq!(last.body, "81");
}

/// Clearing the session deletes the record: a copy of the cookie is dead.
async fn clear_revokes_copied_cookies(stack: Stack, mode: Mode) {
    let app = app(stack, mode, config()).await;
    let cookie = app.post("/set", None, "secret").await.cookie_pair();
    assert_eq!(
        app.get("/get", Some(&cookie)).await.body,
        "Some(\"secret\")"
    );
    let response = app.get("/clear", Some(&cookie)).await;
    assert!(is_removal(&response.set_cookies()[0]));
    assert_eq!(app.get("/get", Some(&cookie)).await.body, "None");
}

/// Real Flask through `interop/flask_tool.py` (the Python of `.venv`).
mod flask {
    use serde_json::Value as Json;

    pub(super) fn tool(args: &[&str], stdin: Option<&str>) -> Vec<Json> {
        super::support::flask_tool(args, stdin)
    }

    pub(super) fn field<'a>(json: &'a Json, name: &str) -> &'a str {
        json[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {json}"))
    }

    /// Flask loads `cookie`: its tagged JSON and whether it is permanent.
    pub(super) fn load(key: &str, cookie: &str) -> (String, bool) {
        let result = tool(&["load", "--secret-key", key, cookie], None).remove(0);
        assert_eq!(
            result["ok"],
            Json::Bool(true),
            "Flask refused {cookie}: {result}"
        );
        (
            field(&result, "tagged_json").to_owned(),
            result["permanent"].as_bool().expect("permanent"),
        )
    }
}

/// Every case in `$tests` for one stack and session type.
macro_rules! cases {
    ($module:ident, $stack:expr, $mode:expr; $($test:ident),* $(,)?) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($stack, $mode).await
                }
            )*
        }
    };
}

/// The cases every session type must pass.
macro_rules! every_session_type {
    ($module:ident, $stack:expr, $mode:expr; $($extra:ident),* $(,)?) => {
        cases!($module, $stack, $mode;
            vary_cookie_follows_access,
            only_writes_send_a_cookie,
            cookie_path_setting,
            cookie_attributes_follow_settings,
            default_cookie_attributes_match_flask,
            samesite_values,
            special_types_round_trip,
            flashes,
            hostile_cookies_give_an_empty_session,
            a_bad_duplicate_cookie_does_not_hide_the_good_one,
            other_cookies_are_untouched,
            $($extra),*
        );
    };
}

/// Sessions in the cookie: its key, age and size rules.
macro_rules! cookie_sessions {
    ($module:ident, $stack:expr, $mode:expr; $($extra:ident),* $(,)?) => {
        every_session_type!($module, $stack, $mode;
            secret_key_fallbacks,
            permanent_expiration,
            old_and_future_cookies_are_refused,
            refresh_each_request,
            refreshed_sessions_keep_their_payload,
            oversized_cookie_is_sent_or_refused,
            $($extra),*
        );
    };
}

/// Sessions in a store: what only a store can do.
macro_rules! server_sessions {
    ($module:ident, $stack:expr, $mode:expr) => {
        every_session_type!($module, $stack, $mode;
            large_sessions_stay_in_the_store,
            concurrent_increments_over_http_all_count,
            clear_revokes_copied_cookies,
        );
    };
}

cookie_sessions!(axum_signed, Stack::Axum, Mode::Signed; flask_cookies_over_http);
cookie_sessions!(actix_signed, Stack::Actix, Mode::Signed; flask_cookies_over_http);
cookie_sessions!(axum_encrypted, Stack::Axum, Mode::Encrypted;);
cookie_sessions!(actix_encrypted, Stack::Actix, Mode::Encrypted;);
server_sessions!(axum_memory, Stack::Axum, Mode::Memory);
server_sessions!(actix_memory, Stack::Actix, Mode::Memory);
#[cfg(feature = "sqlite")]
server_sessions!(axum_sqlite, Stack::Axum, Mode::Sqlite);
#[cfg(feature = "sqlite")]
server_sessions!(actix_sqlite, Stack::Actix, Mode::Sqlite);
#[cfg(feature = "redis")]
server_sessions!(axum_redis, Stack::Axum, Mode::Redis);
#[cfg(feature = "redis")]
server_sessions!(actix_redis, Stack::Actix, Mode::Redis);
#[cfg(feature = "postgres")]
server_sessions!(axum_postgres, Stack::Axum, Mode::Postgres);
#[cfg(feature = "postgres")]
server_sessions!(actix_postgres, Stack::Actix, Mode::Postgres);
