//! Every seed route, walked through in-process with a cookie jar.

mod common;

use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::{has_expires, serve, test_config, Browser, TEST_KEY};
use http_body_util::BodyExt as _;
use tessera::{CookieCodec, Map, SecretKey, SessionConfig, Value};
use tower::ServiceExt as _;

/// One request straight into the router, no sockets.
async fn oneshot(request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = tessera_demo::build_app(test_config())
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let body = String::from_utf8(bytes.to_vec()).expect("UTF-8 body");
    (status, headers, body)
}

fn get_with_cookie(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("a request")
}

/// A cookie signed with the test key, as Flask would write it.
fn signed_cookie(data: &[(&str, Value)]) -> String {
    let map: Map = data
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect();
    CookieCodec::new(&SecretKey::from(TEST_KEY), &[]).encode(&map, SystemTime::now())
}

#[tokio::test]
async fn seed_000_set_get_delete() {
    let mut browser = Browser::new(serve(test_config()).await);

    let reply = browser.get("/get_session").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "No session data found.");
    assert!(reply.set_cookies().is_empty());

    let reply = browser.get("/set_session").await;
    assert_eq!(reply.body, "Session data set.");
    let cookie = reply.session_cookie();
    assert!(cookie.starts_with("session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!has_expires(&cookie), "a browser session: {cookie}");

    let reply = browser.get("/get_session").await;
    assert_eq!(reply.body, "Welcome, your_username!");
    assert!(reply.set_cookies().is_empty(), "reading does not re-send");

    let reply = browser.get("/delete_session").await;
    assert_eq!(reply.body, "Session data deleted.");
    let removal = reply.session_cookie();
    assert!(removal.starts_with("session=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    assert!(browser.cookies.is_empty());

    assert_eq!(
        browser.get("/get_session").await.body,
        "No session data found."
    );
    let reply = browser.get("/delete_session").await;
    assert_eq!(reply.body, "Session data deleted.");
    assert!(reply.set_cookies().is_empty(), "nothing to delete");
}

#[tokio::test]
async fn seed_001_setsession_getsession_popsession() {
    let mut browser = Browser::new(serve(test_config()).await);

    assert_eq!(browser.get("/getsession").await.body, "Welcome Anonymous");
    let reply = browser.get("/setsession").await;
    assert_eq!(reply.body, "The session has been Set");
    assert!(!has_expires(&reply.session_cookie()));
    assert_eq!(browser.get("/getsession").await.body, "Welcome Admin");
    // seed 000 and seed 001 use different keys ("username" / "Username").
    assert_eq!(
        browser.get("/get_session").await.body,
        "No session data found."
    );
    let reply = browser.get("/popsession").await;
    assert_eq!(reply.body, "Session Deleted");
    assert!(reply.session_cookie().contains("Max-Age=0"));
    assert_eq!(browser.get("/getsession").await.body, "Welcome Anonymous");
}

#[tokio::test]
async fn seed_002_login_and_logout() {
    let mut browser = Browser::new(serve(test_config()).await);

    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You are not logged in"));
    assert!(page.set_cookies().is_empty());

    let reply = browser.post_form("/login", &[("username", "alice")]).await;
    reply.assert_redirect_home();
    assert!(!has_expires(&reply.session_cookie()));

    let page = browser.get("/").await;
    assert!(page
        .body
        .contains("<p class=\"status\">Logged in as alice</p>"));
    assert!(page
        .body
        .contains("class=\"flash-message\">Logged in as alice</li>"));
    // The flash was shown once; the login stays.
    let page = browser.get("/").await;
    assert_eq!(page.body.matches("Logged in as alice").count(), 1);
    assert!(!page.body.contains("flash-message"));

    let reply = browser.get("/logout").await;
    reply.assert_redirect_home();
    let page = browser.get("/").await;
    assert!(page.body.contains("You are not logged in"));
    assert!(page.body.contains(">Logged out</li>"));
}

/// A form's media type is read as Werkzeug reads it: in any case, with
/// parameters or none; other media types carry no form fields.
#[tokio::test]
async fn a_form_is_read_whatever_the_case_of_its_media_type() {
    let base = serve(test_config()).await;
    // A fresh browser logging in as alice with a body of that media type.
    let log_in = |content_type: &'static str| {
        let base = base.clone();
        async move {
            let mut browser = Browser::new(base.clone());
            let request = browser
                .client
                .post(format!("{base}/login"))
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body("username=alice");
            let reply = browser.send(request).await;
            (browser, reply)
        }
    };
    for content_type in [
        "application/x-www-form-urlencoded",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        "Application/X-Www-Form-Urlencoded; charset=UTF-8",
        " application/x-www-form-urlencoded ;charset=utf-8",
    ] {
        let (mut browser, reply) = log_in(content_type).await;
        reply.assert_redirect_home();
        let page = browser.get("/").await;
        assert!(
            page.body.contains("Logged in as alice"),
            "{content_type}: {}",
            page.body
        );
    }
    for content_type in ["text/plain", "application/x-www-form-urlencodedx"] {
        let (_, reply) = log_in(content_type).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{content_type}");
    }
}

#[tokio::test]
async fn login_without_a_username_is_a_bad_request() {
    let base = serve(test_config()).await;
    let mut browser = Browser::new(base.clone());
    for form in [
        &[][..],
        &[("username", "")][..],
        &[("username", "   ")][..],
        &[("user", "alice")][..],
        &[("username", ""), ("username", "bob")][..],
    ] {
        let reply = browser.post_form("/login", form).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{form:?}");
        assert!(reply.body.contains("username"), "{form:?}: {}", reply.body);
        assert!(reply.set_cookies().is_empty(), "{form:?}");
    }
    let too_long = "x".repeat(10_000);
    let reply = browser
        .post_form("/login", &[("username", too_long.as_str())])
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // Not a form at all.
    let client = reqwest::Client::new();
    let reply = client
        .post(format!("{base}/login"))
        .header("content-type", "application/json")
        .body(r#"{"username":"alice"}"#)
        .send()
        .await
        .expect("answered");
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    let reply = client
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'u', b'=', 0xff, 0xfe])
        .send()
        .await
        .expect("answered");
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    // A body larger than the server reads.
    let reply = client
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={}", "x".repeat(3 << 20)))
        .send()
        .await
        .expect("answered");
    assert_eq!(reply.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(browser.get("/").await.status, StatusCode::OK);
}

/// As Flask's `request.form["username"]`: the first of repeated fields.
#[tokio::test]
async fn the_first_of_repeated_form_fields_counts() {
    let mut browser = Browser::new(serve(test_config()).await);
    let reply = browser
        .post_form("/login", &[("username", "alice"), ("username", "bob")])
        .await;
    reply.assert_redirect_home();
    let page = browser.get("/").await;
    assert!(
        page.body
            .contains("<p class=\"status\">Logged in as alice</p>"),
        "{}",
        page.body
    );
}

/// Flask's `request.form` reads multipart forms too (`curl -F`, a form
/// with `enctype="multipart/form-data"`), without their file parts; a body
/// that is no form has no fields.
#[tokio::test]
async fn multipart_forms_count_and_other_bodies_have_no_fields() {
    let base = serve(test_config()).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let multipart = |parts: &[(&str, Option<&str>, &str)]| {
        let mut body = String::new();
        for (name, file_name, value) in parts {
            body.push_str("--XyZ\r\n");
            match file_name {
                Some(file) => body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: text/plain\r\n\r\n"
                )),
                None => body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                )),
            }
            body.push_str(value);
            body.push_str("\r\n");
        }
        body.push_str("--XyZ--\r\n");
        body
    };
    let post = |path: &str, content_type: &str, body: String| {
        client
            .post(format!("{base}{path}"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form_type = "multipart/form-data; boundary=XyZ";
    let reply = post(
        "/login",
        form_type,
        multipart(&[("username", None, "alice")]),
    )
    .await
    .expect("answered");
    assert_eq!(reply.status(), StatusCode::FOUND);
    let cookie = reply
        .headers()
        .get(header::SET_COOKIE)
        .expect("a session")
        .to_str()
        .expect("text")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let page = client
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("a page");
    assert!(page.contains("Logged in as alice"), "{page}");
    // A file is not a field (Flask's request.files).
    let reply = post(
        "/login",
        form_type,
        multipart(&[("username", Some("name.txt"), "mallory")]),
    )
    .await
    .expect("answered");
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    // A multipart body that cannot be read has no fields, as Werkzeug reads
    // none from it: the login misses its field, the pet's name is None.
    let reply = post("/login", form_type, "--XyZ\r\nbroken".to_owned())
        .await
        .expect("answered");
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    let reply = post("/petname", form_type, "--XyZ\r\nbroken".to_owned())
        .await
        .expect("answered");
    assert_eq!(reply.status(), StatusCode::FOUND);
    // No form: Flask's request.form.get("pet") is None, which the pet form
    // stores (and says so).
    let reply = post(
        "/petname",
        "application/json",
        r#"{"pet": "Rex"}"#.to_owned(),
    )
    .await
    .expect("answered");
    assert_eq!(reply.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn seed_003_pet_name_form() {
    let mut browser = Browser::new(serve(test_config()).await);

    let form = browser.get("/petname").await;
    assert_eq!(form.status, StatusCode::OK);
    let content_type = form.headers.get(header::CONTENT_TYPE).expect("typed");
    assert!(content_type
        .to_str()
        .expect("ASCII")
        .starts_with("text/html"));
    assert!(form.body.contains("<form method=\"POST\""), "{}", form.body);
    assert!(form.body.contains("type=\"text\" name=\"pet\""));
    assert!(form.body.contains("type=\"checkbox\" name=\"remember\""));
    assert!(form.set_cookies().is_empty(), "GET /petname sets no cookie");
    assert!(
        form.headers.get(header::VARY).is_none(),
        "GET /petname does not even read the session"
    );

    let page = browser.get("/").await;
    assert!(page.body.contains("I do not know your pet's name."));

    let reply = browser.post_form("/petname", &[("pet", "Rex")]).await;
    reply.assert_redirect_home();
    let cookie = reply.session_cookie();
    assert!(!has_expires(&cookie), "no remember, no Expires: {cookie}");

    // With a (non-permanent) session, the form still leaves it alone.
    let form = browser.get("/petname").await;
    assert!(form.set_cookies().is_empty());

    let page = browser.get("/").await;
    assert!(page.body.contains("Your pet's name is Rex."));
    assert!(page.body.contains(">Pet name saved</li>"));
    assert!(page.body.contains("when the browser closes"));
    // The server's own limit on a non-permanent cookie's age, too.
    assert!(
        page.body.contains("31 days after it was last sent"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn remember_makes_the_session_permanent() {
    let mut browser = Browser::new(serve(test_config()).await);

    let reply = browser
        .post_form("/petname", &[("pet", "Rex"), ("remember", "on")])
        .await;
    reply.assert_redirect_home();
    let cookie = reply.session_cookie();
    assert!(has_expires(&cookie), "remember gives Expires: {cookie}");

    let page = browser.get("/").await;
    assert!(page.body.contains("Your pet's name is Rex."));
    assert!(page.body.contains("<dt>Permanent</dt><dd>yes</dd>"));
    assert!(!page.body.contains("when the browser closes"));
    assert!(
        has_expires(&page.session_cookie()),
        "refreshed each request"
    );
    assert!(page.body.contains("&quot;_permanent&quot;:true"));

    // Flask's `request.form.get('pet')`: an empty name is stored and means "unknown".
    let reply = browser.post_form("/petname", &[("pet", "")]).await;
    reply.assert_redirect_home();
    let page = browser.get("/").await;
    assert!(page.body.contains("I do not know your pet's name."));
}

#[tokio::test]
async fn user_strings_are_escaped() {
    let mut browser = Browser::new(serve(test_config()).await);
    let evil = "<script>alert(\"x\")</script>";
    browser
        .post_form("/login", &[("username", evil)])
        .await
        .assert_redirect_home();
    browser
        .post_form("/petname", &[("pet", "<b>Rex</b> & 'Co'")])
        .await
        .assert_redirect_home();

    let page = browser.get("/").await;
    assert!(!page.body.contains("<script"), "{}", page.body);
    assert!(!page.body.contains("<b>"));
    assert!(page
        .body
        .contains("Logged in as &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(page
        .body
        .contains("Your pet's name is &lt;b&gt;Rex&lt;/b&gt; &amp; &#39;Co&#39;."));
    let csp = page
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .expect("a CSP");
    assert!(csp.to_str().expect("ASCII").contains("default-src 'none'"));
    // Pages, text and JSON that show the session are neither kept (a shared
    // computer's history would show them after logout) nor sniffed as HTML.
    for path in ["/", "/get_session", "/api/session", "/no-such-page"] {
        let response = browser.get(path).await;
        assert_eq!(
            response.headers[header::CACHE_CONTROL],
            "no-store",
            "{path}"
        );
        assert_eq!(
            response.headers[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{path}"
        );
    }
}

#[tokio::test]
async fn page_shows_the_session() {
    let mut browser = Browser::new(serve(test_config()).await);

    let page = browser.get("/").await;
    assert!(page
        .body
        .contains("<dt>SESSION_TYPE</dt><dd><code>cookie</code></dd>"));
    assert!(page.body.contains("<dt>New</dt><dd>yes</dd>"));
    assert!(page.body.contains("The session is empty."));
    assert!(page.body.contains("no valid session cookie"));
    for path in [
        "/set_session",
        "/get_session",
        "/delete_session",
        "/setsession",
        "/getsession",
        "/popsession",
        "/logout",
        "/petname",
    ] {
        assert!(page.body.contains(&format!("href=\"{path}\"")), "{path}");
    }
    assert!(page.body.contains("action=\"/login\""));
    assert!(page.body.contains("action=\"/petname\""));

    browser.get("/set_session").await;
    let page = browser.get("/").await;
    assert!(page.body.contains("<dt>New</dt><dd>no</dd>"));
    assert!(page.body.contains("<dt>Permanent</dt><dd>no</dd>"));
    assert!(page
        .body
        .contains("<pre>{&quot;username&quot;:&quot;your_username&quot;}</pre>"));
    assert!(page
        .body
        .contains("<td><code>username</code></td><td><code>&quot;your_username&quot;</code></td>"));
    assert!(page.body.contains("UTC"), "signed at");
    assert!(page.body.contains("when the browser closes"));
    assert!(page.body.contains("Logged in as your_username"));
}

#[tokio::test]
async fn bad_cookies_give_an_empty_session_never_an_error() {
    let valid = signed_cookie(&[("username", Value::from("alice"))]);
    let (status, _, body) = oneshot(get_with_cookie("/", &format!("session={valid}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("Logged in as alice"),
        "the valid cookie works"
    );

    let mut tampered = valid.clone().into_bytes();
    tampered[3] ^= 1;
    let tampered = String::from_utf8(tampered).expect("ASCII");
    let other_key = CookieCodec::new(&SecretKey::from("some-other-key-0123456789abcdef-xyz"), &[])
        .encode(
            &Map::from([("username".to_owned(), Value::from("mallory"))]),
            SystemTime::now(),
        );
    let (payload, signature) = valid.rsplit_once('.').expect("signed");
    let cookies = [
        "session=garbage".to_owned(),
        "session=".to_owned(),
        "session=...".to_owned(),
        format!("session={tampered}"),
        format!("session={other_key}"),
        format!("session={payload}"),
        format!("session={payload}.{}", signature.to_uppercase()),
        "session=.eJzLSM3JyVcozy_KSQEAGgQEXQ.ZVPxAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        format!("session=\"{}\"", "A".repeat(5000)),
        "session=%ff%fe; other=1".to_owned(),
    ];
    for cookie in &cookies {
        for (path, expected) in [
            ("/", "You are not logged in"),
            ("/get_session", "No session data found."),
            ("/getsession", "Welcome Anonymous"),
        ] {
            let (status, headers, body) = oneshot(get_with_cookie(path, cookie)).await;
            assert_eq!(status, StatusCode::OK, "{path} with {cookie}");
            assert!(body.contains(expected), "{path} with {cookie}: {body}");
            assert!(
                headers.get(header::SET_COOKIE).is_none(),
                "{path} with {cookie}"
            );
        }
    }
}

#[tokio::test]
async fn values_written_by_other_apps_are_shown() {
    // A Flask app sharing the key may store any type under these keys.
    let cookie = signed_cookie(&[
        ("username", Value::from(42.0)),
        (
            "Username",
            Value::tuple([Value::from("a"), Value::from(true)]),
        ),
        ("pet_name", Value::Null),
    ]);
    let cookie = format!("session={cookie}");
    let (status, _, body) = oneshot(get_with_cookie("/", &cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Logged in as 42.0"), "{body}");
    assert!(body.contains("I do not know your pet's name."));
    assert!(
        body.contains("{&quot; t&quot;:[&quot;a&quot;,true]}"),
        "{body}"
    );
    let (_, _, body) = oneshot(get_with_cookie("/get_session", &cookie)).await;
    assert_eq!(body, "Welcome, 42.0!");
    let (_, _, body) = oneshot(get_with_cookie("/getsession", &cookie)).await;
    assert_eq!(body, r#"Welcome {" t":["a",true]}"#);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let (status, _, _) = oneshot(
        Request::get("/nowhere")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (method, path, allowed) in [
        ("GET", "/login", "POST,OPTIONS"),
        ("POST", "/logout", "GET,HEAD,OPTIONS"),
        ("GET", "/cart", "POST,OPTIONS"),
        ("POST", "/api/session", "GET,HEAD,OPTIONS"),
        ("PATCH", "/api/session/theme", "PUT,DELETE,OPTIONS"),
    ] {
        let (status, headers, body) = oneshot(
            Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        // A text a browser shows, not an empty page, and the Allow header.
        assert!(
            body.starts_with(&format!(
                "Method Not Allowed: {path} does not take {method}"
            )),
            "{method} {path}: {body:?}"
        );
        let allow = headers
            .get(header::ALLOW)
            .and_then(|allow| allow.to_str().ok())
            .unwrap_or_default()
            .replace(' ', "");
        assert_eq!(allow, allowed, "{method} {path}");
    }
}

/// As Flask (werkzeug) routes paths: escaped letters, digits and `-._~`
/// are those characters; repeated slashes are redirected to single ones
/// (`308`, the query kept, never to another host); other escapes are left
/// for the route, which decodes a key once.
#[tokio::test]
async fn paths_are_routed_as_flask_routes_them() {
    for path in ["/get%5Fsession", "/get%5fsession", "/%67et_session"] {
        let (status, _, body) =
            oneshot(Request::get(path).body(Body::empty()).expect("a request")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, "No session data found.", "{path}");
    }
    for (path, location) in [
        ("//get_session", "/get_session"),
        ("/api//session/a%20b?x=1", "/api/session/a%20b?x=1"),
        ("//evil.example/get_session", "/evil.example/get_session"),
        ("///", "/"),
    ] {
        let (status, headers, _) =
            oneshot(Request::get(path).body(Body::empty()).expect("a request")).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(
            headers
                .get(header::LOCATION)
                .and_then(|value| value.to_str().ok()),
            Some(location),
            "{path}"
        );
        assert_eq!(
            headers
                .get(header::CACHE_CONTROL)
                .and_then(|value| value.to_str().ok()),
            Some("no-store"),
            "{path}"
        );
    }
    // An escaped slash is no separator, and a key's escapes are decoded once.
    let (status, _, _) = oneshot(
        Request::get("/get%2Fsession")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut browser = Browser::new(serve(test_config()).await);
    let reply = browser.put_json("/api/session/a%2525b%5F", "1").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = browser.get("/api/session").await;
    assert!(reply.body.contains(r#""a%25b_":1"#), "{}", reply.body);
}

/// As Flask: `OPTIONS` on a route is a `200` with no body, its methods in
/// `Allow`, and no session; on no route, a `404`.
#[tokio::test]
async fn options_are_answered_as_flask_answers_them() {
    for (path, allowed) in [
        ("/", "GET,HEAD,OPTIONS"),
        ("/login", "POST,OPTIONS"),
        ("/petname", "GET,HEAD,POST,OPTIONS"),
        ("/api/session/theme", "PUT,DELETE,OPTIONS"),
    ] {
        let (status, headers, body) = oneshot(
            Request::builder()
                .method("OPTIONS")
                .uri(path)
                .body(Body::empty())
                .expect("a request"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body, "", "{path}");
        let allow = headers
            .get(header::ALLOW)
            .and_then(|allow| allow.to_str().ok())
            .unwrap_or_default()
            .replace(' ', "");
        assert_eq!(allow, allowed, "{path}");
        assert!(headers.get(header::SET_COOKIE).is_none(), "{path}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
    }
    let (status, _, _) = oneshot(
        Request::builder()
            .method("OPTIONS")
            .uri("/nowhere")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A permanent session is re-signed on every response, as in Flask
    // (SESSION_REFRESH_EACH_REQUEST): this one's too.
    let cookie = signed_cookie(&[("_permanent", Value::Bool(true)), ("user", "alice".into())]);
    let (status, headers, _) = oneshot(
        Request::builder()
            .method("OPTIONS")
            .uri("/")
            .header(header::COOKIE, format!("session={cookie}"))
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let set_cookie = headers
        .get(header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    assert!(
        set_cookie.starts_with("session=") && set_cookie.contains("Expires="),
        "{headers:?}"
    );
}

/// Server-side, the page's expiry names the absolute lifetime when one is set.
#[tokio::test]
async fn the_page_names_the_absolute_lifetime() {
    let config = |absolute| {
        SessionConfig::builder()
            .secret_key(TEST_KEY)
            .session_type(tessera::SessionType::Memory)
            .absolute_lifetime(absolute)
            .build()
            .expect("a valid configuration")
    };
    let mut browser = Browser::new(serve(config(Some(std::time::Duration::from_secs(7200)))).await);
    browser.get("/set_session").await;
    let page = browser.get("/").await;
    assert!(
        page.body.contains(
            "and at the latest 2 hours after it was created (TESSERA_SESSION_ABSOLUTE_LIFETIME)"
        ),
        "{}",
        page.body
    );
    let mut browser = Browser::new(serve(config(None)).await);
    browser.get("/set_session").await;
    let page = browser.get("/").await;
    // A read moves the stored expiry once it has fallen behind by a tenth
    // of the lifetime, at most a day: the page said a whole lifetime.
    assert!(
        page.body
            .contains("30 days to 31 days after it was last used"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("at the latest"));
}

/// Without the refresh on each request, a read does not extend a
/// server-side session, and the page says so rather than "last used".
#[tokio::test]
async fn the_page_says_reads_do_not_extend_a_session_without_the_refresh() {
    let config = SessionConfig::builder()
        .secret_key(TEST_KEY)
        .session_type(tessera::SessionType::Memory)
        .refresh_each_request(false)
        .build()
        .expect("a valid configuration");
    let mut browser = Browser::new(serve(config).await);
    browser.get("/set_session").await;
    let page = browser.get("/").await;
    assert!(
        page.body.contains(
            "after it was last changed (SESSION_REFRESH_EACH_REQUEST=false: reading it does \
             not extend it)"
        ),
        "{}",
        page.body
    );
    assert!(!page.body.contains("last used"), "{}", page.body);
}
