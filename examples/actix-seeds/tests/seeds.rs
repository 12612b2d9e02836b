//! Every seed route through the actix app in-process, with a cookie jar, in
//! cookie mode and server-side (memory); and cookies shared with the axum demo.

use std::collections::BTreeMap;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::App;
use http_body_util::BodyExt as _;
use tessera::actix::SessionMiddleware;
use tessera::{SessionConfig, SessionType};
use tessera_example_actix_seeds::configure;
use tower::ServiceExt as _;

const TEST_KEY: &str = "tessera-example-actix-seeds-test-key-0123456789abcdef";

const MODES: [SessionType; 2] = [SessionType::Cookie, SessionType::Memory];

fn config(session_type: SessionType) -> SessionConfig {
    SessionConfig::builder()
        .secret_key(TEST_KEY)
        .session_type(session_type)
        .build()
        .expect("a valid test configuration")
}

/// The seed routes in the middleware, for sessions of `session_type`.
async fn seeds_app(
    session_type: SessionType,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
    test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(config(session_type)))
            .configure(configure),
    )
    .await
}

/// One response, read completely.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .map(|value| value.to_str().expect("ASCII Set-Cookie").to_owned())
            .collect()
    }

    /// The single session `Set-Cookie`, panicking if there is none or several.
    fn session_cookie(&self) -> String {
        let cookies = self.set_cookies();
        assert_eq!(cookies.len(), 1, "expected one Set-Cookie: {cookies:?}");
        let cookie = cookies[0].clone();
        assert!(cookie.starts_with("session="), "{cookie}");
        cookie
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .expect("ASCII")
    }

    fn assert_text(&self, expected: &str) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.body, expected);
        assert!(
            self.header(header::CONTENT_TYPE).starts_with("text/plain"),
            "{:?}",
            self.headers
        );
    }

    /// Flask's `redirect('/')`.
    fn assert_redirect_home(&self) {
        assert_eq!(self.status, StatusCode::FOUND, "{}", self.body);
        assert_eq!(self.header(header::LOCATION), "/");
    }
}

fn has_expires(set_cookie: &str) -> bool {
    set_cookie.contains("Expires=")
}

/// The cookies a browser would send back.
#[derive(Debug, Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn update(&mut self, set_cookies: &[String]) {
        for set_cookie in set_cookies {
            let pair = set_cookie.split(';').next().expect("a pair");
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || set_cookie.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// Sends `request` with the jar's cookies and keeps what the response sets.
async fn send<S, B>(app: &S, jar: &mut Jar, request: TestRequest) -> Reply
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let request = match jar.header() {
        Some(cookies) => request.insert_header((header::COOKIE, cookies)),
        None => request,
    };
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = test::read_body(response).await;
    let reply = Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
    };
    jar.update(&reply.set_cookies());
    reply
}

fn get(path: &str) -> TestRequest {
    TestRequest::get().uri(path)
}

fn post_form(path: &str, form: &[(&str, &str)]) -> TestRequest {
    let body = form
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    TestRequest::post()
        .uri(path)
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload(body)
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn seed_000_set_get_delete() {
    for mode in MODES {
        let app = seeds_app(mode).await;
        let mut jar = Jar::default();

        let reply = send(&app, &mut jar, get("/get_session")).await;
        reply.assert_text("No session data found.");
        assert!(reply.set_cookies().is_empty(), "{mode:?}");

        let reply = send(&app, &mut jar, get("/set_session")).await;
        reply.assert_text("Session data set.");
        let cookie = reply.session_cookie();
        assert!(cookie.contains("HttpOnly") && cookie.contains("Path=/"));
        // Server-side sessions are permanent by default, as in Flask-Session.
        assert_eq!(
            has_expires(&cookie),
            mode == SessionType::Memory,
            "{cookie}"
        );

        send(&app, &mut jar, get("/get_session"))
            .await
            .assert_text("Welcome, your_username!");

        let reply = send(&app, &mut jar, get("/delete_session")).await;
        reply.assert_text("Session data deleted.");
        let removal = reply.session_cookie();
        assert!(removal.contains("Max-Age=0"), "{mode:?}: {removal}");
        assert!(jar.0.is_empty(), "{mode:?}");

        send(&app, &mut jar, get("/get_session"))
            .await
            .assert_text("No session data found.");
        let reply = send(&app, &mut jar, get("/delete_session")).await;
        reply.assert_text("Session data deleted.");
        assert!(
            reply.set_cookies().is_empty(),
            "{mode:?}: nothing to delete"
        );
    }
}

#[actix_web::test]
async fn seed_001_setsession_getsession_popsession() {
    for mode in MODES {
        let app = seeds_app(mode).await;
        let mut jar = Jar::default();

        send(&app, &mut jar, get("/getsession"))
            .await
            .assert_text("Welcome Anonymous");
        let reply = send(&app, &mut jar, get("/setsession")).await;
        reply.assert_text("The session has been Set");
        reply.session_cookie();
        send(&app, &mut jar, get("/getsession"))
            .await
            .assert_text("Welcome Admin");
        // Seed 000 and seed 001 use different keys ("username" / "Username").
        send(&app, &mut jar, get("/get_session"))
            .await
            .assert_text("No session data found.");
        let reply = send(&app, &mut jar, get("/popsession")).await;
        reply.assert_text("Session Deleted");
        assert!(reply.session_cookie().contains("Max-Age=0"), "{mode:?}");
        send(&app, &mut jar, get("/getsession"))
            .await
            .assert_text("Welcome Anonymous");
    }
}

#[actix_web::test]
async fn seed_002_login_flashes_once_and_logout() {
    for mode in MODES {
        let app = seeds_app(mode).await;
        let mut jar = Jar::default();

        let page = send(&app, &mut jar, get("/")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.header(header::CONTENT_TYPE).starts_with("text/html"));
        assert!(page
            .body
            .contains("<p class=\"status\">You are not logged in</p>"));
        assert!(page.set_cookies().is_empty(), "{mode:?}");

        // A session from before the login, to check what login does to it.
        send(&app, &mut jar, get("/setsession")).await;
        let before_login = jar.clone();

        let reply = send(
            &app,
            &mut jar,
            post_form("/login", &[("username", "alice")]),
        )
        .await;
        reply.assert_redirect_home();
        reply.session_cookie();
        if mode == SessionType::Memory {
            // A fresh id: one planted before login is worthless now.
            assert_ne!(jar.0, before_login.0);
            let mut planted = before_login.clone();
            send(&app, &mut planted, get("/getsession"))
                .await
                .assert_text("Welcome Anonymous");
        }
        send(&app, &mut jar, get("/getsession"))
            .await
            .assert_text("Welcome Admin");

        let page = send(&app, &mut jar, get("/")).await;
        assert!(
            page.body
                .contains("<p class=\"status\">Logged in as alice</p>"),
            "{mode:?}: {}",
            page.body
        );
        assert!(page
            .body
            .contains("<li class=\"flash-message\">Logged in as alice</li>"));
        // The flash is shown once; the login stays.
        let page = send(&app, &mut jar, get("/")).await;
        assert_eq!(page.body.matches("Logged in as alice").count(), 1);
        assert!(!page.body.contains("flash-"), "{}", page.body);
        let logged_in = jar.clone();

        send(&app, &mut jar, get("/logout"))
            .await
            .assert_redirect_home();
        let page = send(&app, &mut jar, get("/")).await;
        assert!(page.body.contains("You are not logged in"));
        assert!(page
            .body
            .contains("<li class=\"flash-message\">Logged out</li>"));

        if mode == SessionType::Memory {
            // Logout ended the session in the store: a copy of the cookie is dead.
            let mut copy = logged_in;
            let page = send(&app, &mut copy, get("/")).await;
            assert!(page.body.contains("You are not logged in"), "{}", page.body);
            send(&app, &mut copy, get("/getsession"))
                .await
                .assert_text("Welcome Anonymous");
        } else {
            // A cookie session keeps its other keys, as in Flask.
            send(&app, &mut jar, get("/getsession"))
                .await
                .assert_text("Welcome Admin");
        }

        send(&app, &mut jar, get("/logout"))
            .await
            .assert_redirect_home();
        let page = send(&app, &mut jar, get("/")).await;
        assert!(page
            .body
            .contains("<li class=\"flash-message\">You were not logged in</li>"));
    }
}

#[actix_web::test]
async fn seed_003_pet_name() {
    for mode in MODES {
        let app = seeds_app(mode).await;
        let mut jar = Jar::default();

        let form = send(&app, &mut jar, get("/petname")).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.header(header::CONTENT_TYPE).starts_with("text/html"));
        assert!(form
            .body
            .contains("<form method=\"post\" action=\"/petname\">"));
        assert!(form.body.contains("type=\"text\" name=\"pet\""));
        assert!(form.body.contains("type=\"checkbox\" name=\"remember\""));
        assert!(form.set_cookies().is_empty(), "GET /petname sets no cookie");
        assert!(
            form.headers.get(header::VARY).is_none(),
            "GET /petname does not even read the session"
        );

        let page = send(&app, &mut jar, get("/")).await;
        assert!(page.body.contains("I do not know your pet's name."));

        let reply = send(&app, &mut jar, post_form("/petname", &[("pet", "Rex")])).await;
        reply.assert_redirect_home();
        reply.session_cookie();
        let page = send(&app, &mut jar, get("/")).await;
        assert!(page.body.contains("Your pet's name is Rex."), "{mode:?}");
        assert!(page
            .body
            .contains("<li class=\"flash-message\">Pet name saved</li>"));

        // Flask's `request.form.get('pet')`: an empty name is stored and means "unknown".
        send(&app, &mut jar, post_form("/petname", &[("pet", "")]))
            .await
            .assert_redirect_home();
        let page = send(&app, &mut jar, get("/")).await;
        assert!(page.body.contains("I do not know your pet's name."));
        assert!(page.body.contains(">Pet name cleared</li>"));
    }
}

#[actix_web::test]
async fn remember_makes_the_session_permanent() {
    let app = seeds_app(SessionType::Cookie).await;
    let mut jar = Jar::default();

    let reply = send(&app, &mut jar, post_form("/petname", &[("pet", "Rex")])).await;
    let cookie = reply.session_cookie();
    assert!(!has_expires(&cookie), "no remember, no Expires: {cookie}");

    let reply = send(
        &app,
        &mut jar,
        post_form("/petname", &[("pet", "Rex"), ("remember", "on")]),
    )
    .await;
    reply.assert_redirect_home();
    let cookie = reply.session_cookie();
    assert!(has_expires(&cookie), "remember gives Expires: {cookie}");

    let page = send(&app, &mut jar, get("/")).await;
    assert!(page.body.contains("Your pet's name is Rex."));
    assert!(page
        .body
        .contains("<li class=\"flash-message\">Remembered: this session is now permanent</li>"));
    assert!(
        has_expires(&page.session_cookie()),
        "a permanent session is refreshed on each request"
    );

    // Remembered again: the flash says it was so already, as the demo's does.
    let page = remember_then_show(&app, &mut jar).await;
    assert!(
        page.body.contains(
            "<li class=\"flash-message\">Remembered: this session was permanent already</li>"
        ),
        "{}",
        page.body
    );
}

/// Saves a pet name with "remember me", then shows the page with its flashes.
async fn remember_then_show<S, B>(app: &S, jar: &mut Jar) -> Reply
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    send(
        app,
        jar,
        post_form("/petname", &[("pet", "Rex"), ("remember", "on")]),
    )
    .await;
    send(app, jar, get("/")).await
}

/// Server-side sessions start permanent (SESSION_PERMANENT=true, as in
/// Flask-Session): "remember me" says so, with the demo's words.
#[actix_web::test]
async fn remember_on_a_server_side_session_says_it_was_permanent_already() {
    let app = seeds_app(SessionType::Memory).await;
    let page = remember_then_show(&app, &mut Jar::default()).await;
    assert!(
        page.body.contains(
            "Remembered: this session was permanent already (SESSION_PERMANENT=true, \
             Flask-Session&#39;s default), so it outlives the browser either way"
        ),
        "{}",
        page.body
    );
}

#[actix_web::test]
async fn bad_form_input_is_a_bad_request() {
    for mode in MODES {
        let app = seeds_app(mode).await;
        let mut jar = Jar::default();

        for form in [
            &[][..],
            &[("username", "")][..],
            &[("username", "   ")][..],
            &[("user", "alice")][..],
        ] {
            let reply = send(&app, &mut jar, post_form("/login", form)).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{form:?}");
            assert!(reply.body.contains("username"), "{form:?}: {}", reply.body);
            assert!(reply.set_cookies().is_empty(), "{form:?}");
        }
        let too_long = "x".repeat(10_000);
        for (path, field) in [("/login", "username"), ("/petname", "pet")] {
            let reply = send(
                &app,
                &mut jar,
                post_form(path, &[(field, too_long.as_str())]),
            )
            .await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(reply.body.contains(field), "{path}: {}", reply.body);
            assert!(reply.set_cookies().is_empty(), "{path}");
        }
        // Not a form at all: no fields, as Flask's `request.form` has none.
        // The login needs its field; the pet's name is then None.
        let json = |path: &str| {
            TestRequest::post()
                .uri(path)
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(r#"{"username":"alice","pet":"Rex"}"#)
        };
        let reply = send(&app, &mut jar, json("/login")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(reply.body.contains("username"), "{}", reply.body);
        assert!(reply.set_cookies().is_empty());
        send(&app, &mut jar, json("/petname"))
            .await
            .assert_redirect_home();
        assert!(send(&app, &mut jar, get("/"))
            .await
            .body
            .contains("Pet name cleared"));
        // A multipart form whose boundary never comes: no fields, as
        // Werkzeug reads none from it.
        let broken = |path: &str| {
            TestRequest::post()
                .uri(path)
                .insert_header((header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ"))
                .set_payload("--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nal")
        };
        let reply = send(&app, &mut jar, broken("/login")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert!(reply.body.contains("username"), "{}", reply.body);
        send(&app, &mut jar, broken("/petname"))
            .await
            .assert_redirect_home();
        assert_eq!(send(&app, &mut jar, get("/")).await.status, StatusCode::OK);
    }
}

/// Forms are read as Flask's `request.form` reads them, as the axum demo
/// reads them: the first of repeated fields counts, multipart forms count
/// (their file parts do not), and a charset in the content type is fine.
#[actix_web::test]
async fn forms_are_read_as_flask_reads_them() {
    for mode in MODES {
        let app = seeds_app(mode).await;
        let mut jar = Jar::default();
        send(
            &app,
            &mut jar,
            post_form("/login", &[("username", "alice"), ("username", "bob")]),
        )
        .await
        .assert_redirect_home();
        let home = send(&app, &mut jar, get("/")).await;
        assert!(home.body.contains("Logged in as alice"), "{}", home.body);

        let multipart = concat!(
            "--XyZ\r\n",
            "Content-Disposition: form-data; name=\"pet\"; filename=\"pet.txt\"\r\n\r\n",
            "a file, not the field\r\n",
            "--XyZ\r\n",
            "Content-Disposition: form-data; name=\"pet\"\r\n\r\n",
            "Rex\r\n",
            "--XyZ\r\n",
            "Content-Disposition: form-data; name=\"remember\"\r\n\r\n",
            "on\r\n",
            "--XyZ\r\n",
            "Content-Disposition: form-data; name=\"remember\"\r\n\r\n",
            "on\r\n",
            "--XyZ--\r\n",
        );
        let request = TestRequest::post()
            .uri("/petname")
            .insert_header((header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ"))
            .set_payload(multipart);
        let reply = send(&app, &mut jar, request).await;
        reply.assert_redirect_home();
        assert!(has_expires(&reply.session_cookie()), "remembered");
        let home = send(&app, &mut jar, get("/")).await;
        assert!(home.body.contains("Rex"), "{}", home.body);

        let request = TestRequest::post()
            .uri("/login")
            .insert_header((
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=UTF-8",
            ))
            .set_payload("username=carol");
        send(&app, &mut jar, request).await.assert_redirect_home();
        let home = send(&app, &mut jar, get("/")).await;
        assert!(home.body.contains("Logged in as carol"), "{}", home.body);
    }
}

#[actix_web::test]
async fn user_strings_are_escaped() {
    let app = seeds_app(SessionType::Cookie).await;
    let mut jar = Jar::default();
    let evil = "<script>alert(\"x\")</script>";
    send(&app, &mut jar, post_form("/login", &[("username", evil)]))
        .await
        .assert_redirect_home();
    send(
        &app,
        &mut jar,
        post_form("/petname", &[("pet", "<b>Rex</b> & 'Co'")]),
    )
    .await
    .assert_redirect_home();

    let page = send(&app, &mut jar, get("/")).await;
    assert!(!page.body.contains("<script"), "{}", page.body);
    assert!(!page.body.contains("<b>"));
    assert!(page
        .body
        .contains("Logged in as &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(page
        .body
        .contains("Your pet's name is &lt;b&gt;Rex&lt;/b&gt; &amp; &#39;Co&#39;."));
    assert!(page
        .header(header::CONTENT_SECURITY_POLICY)
        .contains("default-src 'none'"));
}

#[actix_web::test]
async fn unknown_routes_and_methods() {
    let app = seeds_app(SessionType::Cookie).await;
    let mut jar = Jar::default();
    let reply = send(&app, &mut jar, get("/nowhere")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, "Not Found");
    let reply = send(&app, &mut jar, get("/login")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    // The axum demo's text, and actix-web's Allow kept.
    assert_eq!(
        reply.body,
        "Method Not Allowed: /login does not take GET (the Allow header lists what it takes)\n"
    );
    assert_eq!(reply.header(header::ALLOW), "POST");
    assert!(reply.header(header::CONTENT_TYPE).starts_with("text/plain"));
    assert!(jar.0.is_empty());
    // HEAD is answered wherever GET is, as Flask and the axum demo do.
    for path in ["/", "/get_session", "/petname"] {
        let reply = send(
            &app,
            &mut jar,
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(path),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "HEAD {path}");
    }
}

/// `GET path` on the axum demo with the same configuration, in-process.
async fn axum_demo(path: &str, cookie: Option<&str>) -> (StatusCode, Vec<String>, String) {
    let mut request = http::Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(http::header::COOKIE, cookie);
    }
    let request = request.body(String::new()).expect("a request");
    let response = tessera_demo::build_app(config(SessionType::Cookie))
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("a status");
    let set_cookies = response
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .collect();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (
        status,
        set_cookies,
        String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
    )
}

#[actix_web::test]
async fn cookies_cross_between_actix_and_the_axum_demo() {
    let app = seeds_app(SessionType::Cookie).await;

    // Minted here, read by the demo.
    let mut jar = Jar::default();
    send(&app, &mut jar, get("/set_session")).await;
    let cookie = jar.header().expect("a session cookie");
    let (status, _, body) = axum_demo("/get_session", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "Welcome, your_username!");

    // Minted by the demo, read here.
    let (_, set_cookies, body) = axum_demo("/setsession", None).await;
    assert_eq!(body, "The session has been Set");
    let mut jar = Jar::default();
    jar.update(&set_cookies);
    send(&app, &mut jar, get("/getsession"))
        .await
        .assert_text("Welcome Admin");
}

/// The binary takes no arguments: `--help` says how to run it, and any
/// other argument is refused instead of the server starting regardless.
#[test]
fn the_binary_answers_help_and_refuses_other_arguments() {
    let run = |argument: &str| {
        let mut child =
            std::process::Command::new(env!("CARGO_BIN_EXE_tessera-example-actix-seeds"))
                .arg(argument)
                .env("SECRET_KEY", "a-key-for-the-argument-test-0123456789")
                // Were the server started anyway, on a port of its own.
                .env("PORT", "0")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("the example runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while child.try_wait().expect("waits").is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().expect("kill");
                panic!("{argument}: the server started instead of answering");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.wait_with_output().expect("its output")
    };
    let help = run("--help");
    assert_eq!(help.status.code(), Some(0));
    let usage = String::from_utf8_lossy(&help.stdout);
    assert!(
        usage.starts_with("Usage: tessera-example-actix-seeds"),
        "{usage}"
    );
    assert!(usage.contains("SECRET_KEY"), "{usage}");
    let refused = run("--port");
    assert_eq!(refused.status.code(), Some(2));
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("unexpected argument \"--port\""), "{error}");
}

/// A request whose body never comes is cut off by `time_limited` with a
/// 408 that says so, and its connection is closed; one whose body comes is
/// served as before, through the same app.
#[actix_web::test]
async fn a_request_whose_body_never_comes_is_cut_off() {
    use actix_web::middleware::from_fn;
    use std::time::Duration;
    use tessera_example_actix_seeds::time_limited;
    let app = test::init_service(
        App::new()
            .wrap(SessionMiddleware::new(config(SessionType::Cookie)))
            .wrap(from_fn(|request, next| {
                time_limited(Duration::from_millis(200), request, next)
            }))
            .configure(configure),
    )
    .await;
    // The sender stays, sending nothing: the body neither comes nor ends.
    let (_sender, stalled) = actix_http::h1::Payload::create(false);
    let (request, _) = TestRequest::post()
        .uri("/login")
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header((header::CONTENT_LENGTH, "100"))
        .to_request()
        .replace_payload(actix_http::Payload::from(stalled));
    // The error actix-web answers with its response.
    let response = test::try_call_service(&app, request)
        .await
        .expect_err("cut off")
        .error_response();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(!response.head().keep_alive(), "closed");
    assert_eq!(
        response.headers().get(header::CACHE_CONTROL),
        Some(&header::HeaderValue::from_static("no-store"))
    );
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .expect("a body");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.starts_with("Request Timeout: the request took longer than 0.2 s"),
        "{body}"
    );

    let mut jar = Jar::default();
    send(
        &app,
        &mut jar,
        post_form("/login", &[("username", "alice")]),
    )
    .await
    .assert_redirect_home();
    let page = send(&app, &mut jar, get("/")).await;
    assert!(
        page.body
            .contains("<p class=\"status\">Logged in as alice</p>"),
        "{}",
        page.body
    );
}
