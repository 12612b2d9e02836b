//! The demo and a real Flask app with the same routes and `SECRET_KEY`
//! accept each other's cookies over HTTP, in both directions.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, RequestBuilder, StatusCode};
use tessera::{tagged, Value};

#[path = "../../interop/support.rs"]
mod support;

const KEY: &str = "shared-login-secret-key-0123456789abcdef";

/// A server process, killed when dropped (and its working directory, if it
/// was given one, removed).
struct Server {
    child: Child,
    url: String,
    scratch_dir: Option<PathBuf>,
}

impl Server {
    /// Starts `command` and waits for the line that announces its URL.
    fn start(mut command: Command) -> Self {
        command
            .env("SECRET_KEY", KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("server starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line
                    .split_whitespace()
                    .find(|word| word.starts_with("http://"))
                {
                    let _ = tx.send(url.trim_end_matches('/').to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server announces its URL within a minute");
        Self {
            child,
            url,
            scratch_dir: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.scratch_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `interop/flask_app.py` with `env` added to its environment.
fn flask(env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(support::python());
    command
        .arg(support::repo_root().join("interop/flask_app.py"))
        .args(["--host", "127.0.0.1", "--port", "0"])
        .envs(env.iter().copied());
    Server::start(command)
}

/// The demo binary in a scratch directory of its own, configured by `env`.
fn demo(env: &[(&str, &str)]) -> Server {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "tessera-flask-http-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera-demo"));
    command
        .args(["--host", "127.0.0.1", "--port", "0"])
        .envs(env.iter().copied())
        .current_dir(&dir);
    let mut server = Server::start(command);
    server.scratch_dir = Some(dir);
    server
}

/// A one-cookie browser: sends the session cookie, follows Set-Cookie.
struct Browser {
    client: Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            client: Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            cookie: None,
        }
    }

    async fn send(&mut self, request: RequestBuilder) -> (StatusCode, String) {
        let request = match &self.cookie {
            Some(cookie) => request.header(COOKIE, format!("session={cookie}")),
            None => request,
        };
        let response = request.send().await.expect("request succeeds");
        for set_cookie in response.headers().get_all(SET_COOKIE) {
            let pair = set_cookie
                .to_str()
                .expect("ascii")
                .split(';')
                .next()
                .unwrap_or_default();
            if let Some(value) = pair.strip_prefix("session=") {
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    async fn get(&mut self, url: String) -> String {
        let (status, body) = self.send(self.client.get(url.as_str())).await;
        assert!(
            status.is_success() || status.is_redirection(),
            "GET {url}: {status}"
        );
        body
    }

    async fn post_form(&mut self, url: String, form: &[(&str, &str)]) -> StatusCode {
        let request = self.client.post(url.as_str()).form(form);
        self.send(request).await.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_and_flask_share_sessions_over_http() {
    let flask = flask(&[]);
    let demo = demo(&[("SESSION_TYPE", "cookie")]);
    logins_seed_routes_and_flashes_cross_over(&flask, &demo).await;

    // A Flask session holding every tagged type keeps every key exactly as
    // Flask wrote it when the demo changes one key.
    let original = concat!(
        r#"{"big":18446744073709551621,"bytes":{" b":"/wA="},"float":1e+16,"#,
        r#""markup":{" m":"<b>hi</b>"},"nested":{"x":{" di":{" t__":[1,2]}}},"#,
        r#""tuple":{" t":[1,"two",3.5]},"unicode":"caf\u00e9 \ud83c\udfaf","#,
        r#""uuid":{" u":"12345678123456781234567812345678"},"#,
        r#""when":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}}"#
    );
    let mut browser = Browser::new();
    let before = flask_session_after_posting(&mut browser, &flask, original).await;
    assert_eq!(before, original);
    demo_changes_one_key_and_flask_sees_the_rest_unchanged(&mut browser, &flask, &demo, &before)
        .await;

    // A cookie signed with another key is ignored by both.
    let mut browser = Browser::new();
    browser.cookie = Some("eyJ1c2VybmFtZSI6ImV2ZSJ9.ZVPxAA.oBF4FsEPGc1aqRIni6RktBSluqI".to_owned());
    assert!(browser
        .get(demo.url("/"))
        .await
        .contains("You are not logged in"));
    assert!(browser
        .get(flask.url("/"))
        .await
        .contains("You are not logged in"));
}

/// A form's fields read as Werkzeug reads them, bytes that are not UTF-8
/// included: in an urlencoded body (none at all, or left percent-escaped)
/// and in a multipart one (the part's charset only if Werkzeug trusts it, a
/// byte order mark kept as a character). Each body logs in on both servers,
/// and Flask must read the same user from either session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_with_bytes_that_are_not_utf8_are_read_as_flask_reads_them() {
    let flask = flask(&[]);
    let demo = demo(&[("SESSION_TYPE", "cookie")]);
    const URLENCODED: &str = "application/x-www-form-urlencoded";
    const MULTIPART: &str = "multipart/form-data; boundary=XyZ";
    let part = |content_type: Option<&str>, value: &[u8]| {
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n".to_vec();
        if let Some(content_type) = content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        body
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (URLENCODED, b"username=%FF%FEbob".to_vec()),
        (URLENCODED, b"username=caf%C3%A9+%e2%82&username=x".to_vec()),
        (URLENCODED, b"username=%e2%82%ac%80%zz%4".to_vec()),
        (URLENCODED, b"a&=c&&username=1=2".to_vec()),
        (URLENCODED, "username=\u{e9}%80".as_bytes().to_vec()),
        (URLENCODED, b"username=\xff\xfebob".to_vec()),
        (MULTIPART, part(None, b"\xff\xfebob")),
        (MULTIPART, part(None, b"\xef\xbb\xbfbob")),
        (MULTIPART, part(None, b"\xfe\xffbob")),
        (
            MULTIPART,
            part(Some("text/plain; charset=shift_jis"), b"\x82\xa0bob"),
        ),
        (
            MULTIPART,
            part(Some("text/plain; charset=ISO-8859-1"), b"caf\xe9 \x80\x9f"),
        ),
        (
            MULTIPART,
            part(Some("text/plain; charset=\"us-ascii\""), b"caf\xc3\xa9"),
        ),
        (
            MULTIPART,
            part(Some("text/plain; charset=utf-8"), b"caf\xc3\xa9 \xc3"),
        ),
        // Headers Werkzeug reads its charset from where a strict parser
        // finds none: another parameter after it, a blank after it, two.
        (
            MULTIPART,
            part(Some("text/plain; charset=iso-8859-1; format"), b"caf\xe9"),
        ),
        (
            MULTIPART,
            part(Some("text/plain; charset=iso-8859-1 "), b"caf\xe9"),
        ),
        (
            MULTIPART,
            part(
                Some("text/plain; charset=utf-8; charset=iso-8859-1"),
                b"caf\xe9",
            ),
        ),
        (
            MULTIPART,
            part(Some("text/plain; charset = iso-8859-1"), b"caf\xe9"),
        ),
    ];
    let mut logged_in = 0;
    for (content_type, body) in cases {
        let mut answers = Vec::new();
        for server in [&flask, &demo] {
            let mut browser = Browser::new();
            let request = browser
                .client
                .post(server.url("/login"))
                .header(CONTENT_TYPE, content_type)
                .body(body.clone());
            let (status, _) = browser.send(request).await;
            // Flask's page says who is logged in, as Flask reads the session.
            let page = browser.get(flask.url("/")).await;
            answers.push((status, page));
        }
        let shown = String::from_utf8_lossy(&body);
        assert_eq!(
            answers[0], answers[1],
            "Flask, then the demo, for {shown:?}"
        );
        if answers[0].0 == StatusCode::FOUND {
            assert!(answers[0].1.contains("Logged in as "), "{}", answers[0].1);
            logged_in += 1;
        }
    }
    assert_eq!(
        logged_in, 16,
        "every body but the one that is not UTF-8 logs in"
    );
}

/// Posts `tagged_json` to Flask's `/api/session` and returns the session as
/// Flask then sees it, in tagged JSON.
async fn flask_session_after_posting(
    browser: &mut Browser,
    flask: &Server,
    tagged_json: &str,
) -> String {
    let request = browser
        .client
        .post(flask.url("/api/session"))
        .header(CONTENT_TYPE, "application/json")
        .body(tagged_json.to_owned());
    let (status, _) = browser.send(request).await;
    assert!(status.is_success(), "{status}");
    browser.get(flask.url("/api/session")).await
}

/// The demo sets one key; Flask sees it and every other key as it was.
async fn demo_changes_one_key_and_flask_sees_the_rest_unchanged(
    browser: &mut Browser,
    flask: &Server,
    demo: &Server,
    before: &str,
) {
    assert_eq!(
        browser.get(demo.url("/setsession")).await,
        "The session has been Set"
    );
    let mut expected = match tagged::from_str(before).expect("parses") {
        Value::Dict(map) => map,
        other => panic!("not a dict: {other:?}"),
    };
    expected.insert("Username".to_owned(), "Admin".into());
    assert_eq!(
        browser.get(flask.url("/api/session")).await,
        tagged::map_to_string(&expected)
    );
}

/// Logins in both directions, the tutorials' routes, "remember me" and a
/// flash message, each crossing between Flask and the demo.
async fn logins_seed_routes_and_flashes_cross_over(flask: &Server, demo: &Server) {
    // A login on Flask is a login on the demo.
    let mut browser = Browser::new();
    assert_eq!(
        browser
            .post_form(flask.url("/login"), &[("username", "alice")])
            .await,
        StatusCode::FOUND
    );
    assert!(browser
        .get(demo.url("/"))
        .await
        .contains("Logged in as alice"));
    assert_eq!(
        browser.get(demo.url("/get_session")).await,
        "Welcome, alice!"
    );

    // A login on the demo is a login on Flask; logging out on Flask ends it on the demo.
    let mut browser = Browser::new();
    assert_eq!(
        browser
            .post_form(demo.url("/login"), &[("username", "bob")])
            .await,
        StatusCode::FOUND
    );
    assert!(browser
        .get(flask.url("/"))
        .await
        .contains("Logged in as bob"));
    browser.get(flask.url("/logout")).await;
    assert!(browser
        .get(demo.url("/"))
        .await
        .contains("You are not logged in"));

    // The tutorials' routes, crossing over at every step.
    let mut browser = Browser::new();
    assert_eq!(
        browser.get(flask.url("/set_session")).await,
        "Session data set."
    );
    assert_eq!(
        browser.get(demo.url("/setsession")).await,
        "The session has been Set"
    );
    assert_eq!(browser.get(flask.url("/getsession")).await, "Welcome Admin");
    assert_eq!(
        browser.get(demo.url("/get_session")).await,
        "Welcome, your_username!"
    );
    assert_eq!(
        browser.get(demo.url("/delete_session")).await,
        "Session data deleted."
    );
    assert_eq!(
        browser.get(flask.url("/get_session")).await,
        "No session data found."
    );
    assert_eq!(
        browser.get(flask.url("/popsession")).await,
        "Session Deleted"
    );
    assert_eq!(
        browser.get(demo.url("/getsession")).await,
        "Welcome Anonymous"
    );

    // "Remember me" on the demo makes a permanent session Flask honours.
    let mut browser = Browser::new();
    let status = browser
        .post_form(demo.url("/petname"), &[("pet", "Rex"), ("remember", "on")])
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(browser
        .get(flask.url("/"))
        .await
        .contains("Your pet's name is Rex."));
    let flask_view = browser.get(flask.url("/api/session")).await;
    assert!(flask_view.contains(r#""_permanent":true"#), "{flask_view}");

    // A flash message set by Flask is shown, once, by the demo.
    let mut browser = Browser::new();
    let status = browser
        .post_form(
            flask.url("/flash"),
            &[("message", "Hello from Flask"), ("category", "message")],
        )
        .await;
    assert!(status.is_success() || status.is_redirection(), "{status}");
    assert!(browser
        .get(demo.url("/"))
        .await
        .contains("Hello from Flask"));
    assert!(!browser
        .get(demo.url("/"))
        .await
        .contains("Hello from Flask"));
    assert_eq!(browser.get(flask.url("/flashes")).await.trim(), "[]");

    // Flask takes any category: one flashed with None is shown too (it was
    // dropped, and lost with the rest of the list), rendered as Flask's
    // template renders it.
    let mut browser = Browser::new();
    for form in [
        &[("message", "Saved, no level")][..],
        &[("message", "Saved, with one"), ("category", "message")][..],
    ] {
        let status = browser.post_form(flask.url("/flash"), form).await;
        assert!(status.is_success() || status.is_redirection(), "{status}");
    }
    let page = browser.get(demo.url("/")).await;
    assert!(
        page.contains(r#"<li class="flash-None">Saved, no level</li>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<li class="flash-message">Saved, with one</li>"#),
        "{page}"
    );
    assert_eq!(browser.get(flask.url("/flashes")).await.trim(), "[]");
}

/// The Redis server `scripts/services.sh` starts; fails, rather than skips,
/// when none was started.
fn redis_url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "TESSERA_TEST_REDIS_URL is not set: start the servers with \
             `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh"
        )
    })
}

/// The Flask app and the demo sharing server-side sessions in the test
/// Redis, under a fresh key prefix (`label` in it): Flask-Session in
/// `format`, the demo in its Flask-Session layout, each also given its
/// `extra` settings (the Flask app's `FLASK_`-prefixed); and the prefix.
fn sharing_redis(
    label: &str,
    format: &str,
    flask_extra: &[(&str, &str)],
    demo_extra: &[(&str, &str)],
) -> (Server, Server, String) {
    let redis_url = redis_url();
    let prefix = format!(
        "fs-{label}-{}-{}:",
        std::process::id(),
        tessera::store::SessionId::generate().fingerprint()
    );
    let mut flask_env = vec![
        ("FLASK_SESSION_TYPE", "redis"),
        ("SESSION_REDIS_URL", redis_url.as_str()),
        ("FLASK_SESSION_KEY_PREFIX", prefix.as_str()),
        ("FLASK_SESSION_SERIALIZATION_FORMAT", format),
    ];
    flask_env.extend_from_slice(flask_extra);
    let mut demo_env = vec![
        ("SESSION_TYPE", "redis"),
        ("SESSION_STORE_URL", redis_url.as_str()),
        ("SESSION_KEY_PREFIX", prefix.as_str()),
        ("SESSION_SERIALIZATION_FORMAT", format),
    ];
    demo_env.extend_from_slice(demo_extra);
    (flask(&flask_env), demo(&demo_env), prefix)
}

/// A session created on either side lives as long in Redis and in the
/// browser: the value's TTL is the lifetime, and the cookie's `Expires` the
/// lifetime after the response's `Date`, as Flask-Session sets them. (The
/// demo's were a second longer: it counts expiries in whole seconds and
/// rounds up, so that no session lasts less than its lifetime.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_either_side_creates_expire_alike_in_redis_and_the_browser() {
    const LIFETIME: i64 = 100;
    let lifetime = LIFETIME.to_string();
    let redis_url = redis_url();
    let env = [("PERMANENT_SESSION_LIFETIME", lifetime.as_str())];
    let (flask, demo, prefix) = sharing_redis("expires", "msgpack", &env, &env);
    let mut redis = ::redis::Client::open(redis_url.as_str())
        .and_then(|client| client.get_connection())
        .expect("connect to Redis");
    let client = Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    for (side, server) in [("flask", &flask), ("demo", &demo)] {
        let response = client
            .get(server.url("/set_session"))
            .send()
            .await
            .expect("request succeeds");
        assert!(
            response.status().is_success(),
            "{side}: {}",
            response.status()
        );
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_else(|| panic!("{side}: a {name} header"))
                .to_owned()
        };
        let date = http_date_seconds(&header("date"));
        let set_cookie = header("set-cookie");
        let expires = set_cookie
            .split(';')
            .find_map(|attribute| attribute.trim().strip_prefix("Expires="))
            .map(http_date_seconds)
            .unwrap_or_else(|| panic!("{side}: a permanent cookie: {set_cookie}"));
        // Date and Expires are read a moment apart, maybe either side of a
        // second's end.
        assert!(
            (LIFETIME - 1..=LIFETIME).contains(&(expires - date)),
            "{side}: Expires {} s after Date: {set_cookie}",
            expires - date
        );
        let sid = set_cookie
            .strip_prefix("session=")
            .and_then(|rest| rest.split(';').next())
            .expect("the session cookie");
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(format!("{prefix}{sid}"))
            .query(&mut redis)
            .expect("PTTL");
        assert!(
            ((LIFETIME - 2) * 1000..=LIFETIME * 1000).contains(&ttl),
            "{side}: {ttl} ms"
        );
    }
}

/// Seconds since 1970 of an HTTP date (`Sun, 06 Dec 2026 08:40:00 GMT`),
/// read as tessera reads the dates in Flask's tagged JSON.
fn http_date_seconds(text: &str) -> i64 {
    tagged::from_str_strict(&format!(r#"{{" d": "{text}"}}"#))
        .ok()
        .and_then(|value| value.as_datetime())
        .unwrap_or_else(|| panic!("an HTTP date: {text:?}"))
        .unix_timestamp()
}

/// A session Flask-Session created, then written by the demo under an
/// absolute lifetime, ends at that lifetime for Flask too: the demo stores
/// the absolute expiry with its first write, the value's TTL reaches no
/// further, and once Flask-Session has written it again (a permanent
/// session's refresh, which sets the TTL to the whole lifetime), the
/// demo's expiry sweep ends it. (Before, the demo kept the absolute expiry
/// to itself, and Flask served the session for its whole idle lifetime.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_absolute_lifetime_of_a_session_flask_session_created_holds_for_flask_too() {
    let redis_url = redis_url();
    let (flask, demo, prefix) = sharing_redis(
        "absolute",
        "json",
        &[],
        &[
            ("TESSERA_SESSION_ABSOLUTE_LIFETIME", "3"),
            ("TESSERA_SWEEP_INTERVAL", "1"),
        ],
    );
    let mut browser = Browser::new();
    assert_eq!(
        browser
            .post_form(flask.url("/login"), &[("username", "dave")])
            .await,
        StatusCode::FOUND
    );
    assert_eq!(
        browser.get(demo.url("/setsession")).await,
        "The session has been Set"
    );
    let sid = browser.cookie.clone().expect("a session cookie");
    let mut redis = ::redis::Client::open(redis_url.as_str())
        .and_then(|client| client.get_connection())
        .expect("connect to Redis");
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(format!("{prefix}{sid}"))
        .query(&mut redis)
        .expect("PTTL");
    assert!((1..=4_000).contains(&ttl), "{ttl} ms");
    assert!(browser
        .get(flask.url("/"))
        .await
        .contains("Logged in as dave"));
    let ttl: i64 = ::redis::cmd("TTL")
        .arg(format!("{prefix}{sid}"))
        .query(&mut redis)
        .expect("TTL");
    assert!(ttl > 3_600, "Flask-Session refreshed it: {ttl} s");
    // Due at the whole second after 3 s, then found by a sweep that runs
    // every second: polled for, as a loaded machine may run the sweep late,
    // and far short of the hour Flask-Session's TTL would allow.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let page = browser.get(flask.url("/")).await;
        if page.contains("You are not logged in") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Flask still serves the session 10 s on: {page}"
        );
    }
}

/// A logout in the Flask app that clears the session and flashes a message
/// keeps Flask-Session's id; once the demo has shown the message, that
/// session is ended with the demo's owner link, so the next login through
/// the Flask app in that browser starts a session of its own instead of
/// landing in the previous user's, with their device list and their "log
/// out everywhere".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flask_logout_with_a_message_ends_the_demos_owner_link() {
    let (flask, demo, _) = sharing_redis("logout", "msgpack", &[], &[]);
    let (mut shared, mut other) = (Browser::new(), Browser::new());
    for browser in [&mut shared, &mut other] {
        assert_eq!(
            browser
                .post_form(demo.url("/login"), &[("username", "bob")])
                .await,
            StatusCode::FOUND
        );
    }
    assert!(shared
        .get(demo.url("/sessions"))
        .await
        .contains("bob has 2 live sessions"));
    shared.get(flask.url("/logout_with_message")).await;
    let page = shared.get(demo.url("/")).await;
    assert!(page.contains("You are logged out"), "{page}");
    assert_eq!(
        shared
            .post_form(flask.url("/login"), &[("username", "alice")])
            .await,
        StatusCode::FOUND
    );
    assert!(shared
        .get(demo.url("/"))
        .await
        .contains("Logged in as alice"));
    // Alice's own session, not bob's: "your sessions" ties it to her.
    shared.get(demo.url("/sessions")).await;
    let page = shared.get(demo.url("/sessions?tied")).await;
    assert!(page.contains("alice has 1 live session"), "{page}");
    assert!(other
        .get(demo.url("/sessions"))
        .await
        .contains("bob has 1 live session"));
}

/// "Log out everywhere" pressed in a session logged in through the Flask
/// app (which sets `username` but ties the session to no user) ends that
/// user's other sessions too, as the page's "Logged in as" leads one to
/// expect, and says how many it ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_out_everywhere_from_a_flask_login_reaches_the_users_other_sessions() {
    let (flask, demo, _) = sharing_redis("everywhere", "msgpack", &[], &[]);
    let (mut through_flask, mut through_demo, mut stranger) =
        (Browser::new(), Browser::new(), Browser::new());
    for (browser, server, user) in [
        (&mut through_flask, &flask, "olga"),
        (&mut through_demo, &demo, "olga"),
        (&mut stranger, &demo, "pat"),
    ] {
        assert_eq!(
            browser
                .post_form(server.url("/login"), &[("username", user)])
                .await,
            StatusCode::FOUND
        );
    }
    assert!(through_flask
        .get(demo.url("/"))
        .await
        .contains("Logged in as olga"));
    // "Your sessions" agrees with the page: the session is tied to olga
    // (stored with a redirect back), then listed with her other one, and
    // the page offers to log out everywhere.
    let (status, _) = through_flask
        .send(through_flask.client.get(demo.url("/sessions")))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = through_flask.get(demo.url("/sessions?tied")).await;
    assert!(page.contains("olga has 2 live sessions"), "{page}");
    assert!(page.contains("<strong>this device</strong>"), "{page}");
    assert!(page.contains("Log out everywhere</button>"), "{page}");
    assert_eq!(
        through_flask
            .post_form(demo.url("/sessions/logout-everywhere"), &[])
            .await,
        StatusCode::FOUND
    );
    let page = through_flask.get(demo.url("/")).await;
    assert!(
        page.contains("Logged out everywhere: 2 sessions ended"),
        "{page}"
    );
    assert!(page.contains("You are not logged in"), "{page}");
    for server in [&demo, &flask] {
        let page = through_demo.get(server.url("/")).await;
        assert!(page.contains("You are not logged in"), "{page}");
        let page = stranger.get(server.url("/")).await;
        assert!(page.contains("Logged in as pat"), "{page}");
    }
}

/// "Your sessions" and "log out everywhere" follow who the page says is
/// logged in when the Flask app logs in as someone else or logs out, which
/// leaves the demo's tie to the earlier user in place: they showed, and
/// ended, that user's sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn your_sessions_follow_a_flask_login_as_another_user_and_a_flask_logout() {
    let (flask, demo, _) = sharing_redis("retie", "msgpack", &[], &[]);
    let (mut shared, mut alices_other) = (Browser::new(), Browser::new());
    for (browser, user) in [(&mut shared, "alice"), (&mut alices_other, "alice")] {
        let status = browser
            .post_form(demo.url("/login"), &[("username", user)])
            .await;
        assert_eq!(status, StatusCode::FOUND);
    }
    // The shared browser logs in as bob through Flask: its session is his now.
    let status = shared
        .post_form(flask.url("/login"), &[("username", "bob")])
        .await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(shared.get(demo.url("/")).await.contains("Logged in as bob"));
    let (status, _) = shared.send(shared.client.get(demo.url("/sessions"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = shared.get(demo.url("/sessions?tied")).await;
    assert!(page.contains("bob has 1 live session"), "{page}");
    // Logged out through Flask: no one's sessions to show or end but its own.
    shared.get(flask.url("/logout")).await;
    let page = shared.get(demo.url("/sessions")).await;
    assert!(page.contains("You are not logged in"), "{page}");
    // Logged in as bob again, then out, then "log out everywhere": only
    // this session ends, and alice's other browser stays logged in.
    let status = shared
        .post_form(flask.url("/login"), &[("username", "bob")])
        .await;
    assert_eq!(status, StatusCode::FOUND);
    shared.get(demo.url("/sessions")).await;
    shared.get(flask.url("/logout")).await;
    assert_eq!(
        shared
            .post_form(demo.url("/sessions/logout-everywhere"), &[])
            .await,
        StatusCode::FOUND
    );
    let page = alices_other.get(demo.url("/sessions")).await;
    assert!(page.contains("alice has 1 live session"), "{page}");
    assert!(alices_other
        .get(flask.url("/"))
        .await
        .contains("Logged in as alice"));
}

/// A real Flask app using Flask-Session 0.8 and the demo share server-side
/// sessions in one Redis, in both of Flask-Session's formats, with the id
/// cookie signed and unsigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_and_flask_session_share_sessions_in_redis() {
    let redis_url = redis_url();
    for (format, signed) in [
        ("msgpack", "false"),
        ("msgpack", "true"),
        ("json", "false"),
        ("json", "true"),
    ] {
        let (flask, demo, prefix) = sharing_redis(
            &format!("{format}-{signed}"),
            format,
            &[("FLASK_SESSION_USE_SIGNER", signed)],
            &[("SESSION_USE_SIGNER", signed)],
        );
        logins_seed_routes_and_flashes_cross_over(&flask, &demo).await;

        // What Flask-Session keeps of Python's types (tuples become lists,
        // UUIDs strings; in JSON, bytes and datetimes strings too) is kept by
        // the demo when it changes another key.
        let mut browser = Browser::new();
        let before = flask_session_after_posting(
            &mut browser,
            &flask,
            concat!(
                r#"{"bytes":{" b":"/wA="},"float":0.1,"n":18446744073709551615,"#,
                r#""nested":{"a":[1,{"b":null}],"t":{" t":[1,"two"]}},"#,
                r#""unicode":"caf\u00e9 \ud83c\udfaf","#,
                r#""uuid":{" u":"12345678123456781234567812345678"},"#,
                r#""when":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}}"#
            ),
        )
        .await;
        assert!(before.contains(r#""n":18446744073709551615"#), "{before}");
        demo_changes_one_key_and_flask_sees_the_rest_unchanged(
            &mut browser,
            &flask,
            &demo,
            &before,
        )
        .await;

        // Dict keys msgpack holds and JSON cannot (int, bool, None, float,
        // bytes, tuples): the demo reads them as JSON would write them (bytes
        // as the base64 Flask-Session's JSON format writes), and writes them
        // back exactly as they were when it changes another key.
        if format == "msgpack" {
            let request = browser.client.post(flask.url("/api/session/literal")).body(
                "{'intkey': {1: 'a', -5: 'b'}, 'flags': {True: 1, None: 2, 1.5: 3, b'k': 4}, \
                 'tuplekey': {(1, 2): 'a', ('x', (True, None)): 'b'}}",
            );
            let (status, body) = browser.send(request).await;
            assert!(status.is_success(), "{status}: {body}");
            let seen = browser.get(demo.url("/api/session")).await;
            let seen: serde_json::Value = serde_json::from_str(&seen).expect("JSON");
            assert_eq!(
                seen["intkey"],
                serde_json::json!({"1": "a", "-5": "b"}),
                "{seen}"
            );
            assert_eq!(
                seen["flags"],
                serde_json::json!({"true": 1, "null": 2, "1.5": 3, "aw==": 4}),
                "{seen}"
            );
            assert_eq!(
                seen["tuplekey"],
                serde_json::json!({"[1,2]": "a", "[\"x\",[true,null]]": "b"}),
                "{seen}"
            );
            assert_eq!(
                browser.get(demo.url("/setsession")).await,
                "The session has been Set"
            );
            assert_eq!(
                browser.get(flask.url("/api/session/repr/intkey")).await,
                "{1: 'a', -5: 'b'}"
            );
            assert_eq!(
                browser.get(flask.url("/api/session/repr/flags")).await,
                "{True: 1, None: 2, 1.5: 3, b'k': 4}"
            );
            assert_eq!(
                browser.get(flask.url("/api/session/repr/tuplekey")).await,
                "{(1, 2): 'a', ('x', (True, None)): 'b'}"
            );
            assert_eq!(
                browser.get(flask.url("/api/session/repr/Username")).await,
                "'Admin'"
            );
        }

        // The cookie is Flask-Session's: the bare 43-character id, or the id
        // and its signature; the value lives under the shared prefix, with
        // the lifetime as its TTL.
        let cookie = browser.cookie.clone().expect("a session cookie");
        let sid = match signed {
            "true" => cookie.split_once('.').expect("a signed id").0,
            _ => cookie.as_str(),
        };
        assert_eq!(sid.len(), 43, "{cookie}");
        let mut redis = ::redis::Client::open(redis_url.as_str())
            .and_then(|client| client.get_connection())
            .expect("connect to Redis");
        let ttl: i64 = ::redis::cmd("TTL")
            .arg(format!("{prefix}{sid}"))
            .query(&mut redis)
            .expect("TTL");
        assert!(
            (31 * 24 * 3600 - 60..=31 * 24 * 3600).contains(&ttl),
            "{ttl}"
        );

        // Logging in on the demo moves the session to a new id: the old
        // cookie is dead on Flask too, the new one logged in on both.
        let old_cookie = cookie.clone();
        assert_eq!(
            browser
                .post_form(demo.url("/login"), &[("username", "carol")])
                .await,
            StatusCode::FOUND
        );
        assert_ne!(browser.cookie.as_deref(), Some(old_cookie.as_str()));
        assert!(browser
            .get(flask.url("/"))
            .await
            .contains("Logged in as carol"));
        let mut stale = Browser::new();
        stale.cookie = Some(old_cookie);
        assert!(stale
            .get(flask.url("/"))
            .await
            .contains("You are not logged in"));
        assert!(stale
            .get(demo.url("/"))
            .await
            .contains("You are not logged in"));

        // A forged id (signed mode) or an unknown one is a fresh session on both.
        let mut forged = Browser::new();
        forged.cookie = Some(format!("{sid}.AAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        for server in [&demo, &flask] {
            assert!(forged
                .get(server.url("/"))
                .await
                .contains("You are not logged in"));
        }

        // Logging out on Flask ends the session on the demo.
        browser.get(flask.url("/logout")).await;
        assert!(browser
            .get(demo.url("/"))
            .await
            .contains("You are not logged in"));

        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query(&mut redis)
            .expect("KEYS");
        if !keys.is_empty() {
            let _: () = ::redis::cmd("DEL")
                .arg(keys)
                .query(&mut redis)
                .expect("DEL");
        }
    }
}
