//! The demo and a real Flask app with the same routes and `SECRET_KEY`
//! accept each other's cookies over HTTP, in both directions.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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

fn flask() -> Server {
    let mut command = Command::new(support::python());
    command
        .arg(support::repo_root().join("interop/flask_app.py"))
        .args(["--host", "127.0.0.1", "--port", "0"]);
    Server::start(command)
}

fn demo() -> Server {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("tessera-flask-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera-demo"));
    command
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env("SESSION_TYPE", "cookie")
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
    let flask = flask();
    let demo = demo();

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
    let request = browser
        .client
        .post(flask.url("/api/session"))
        .header(CONTENT_TYPE, "application/json")
        .body(original);
    let (status, _) = browser.send(request).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(browser.get(flask.url("/api/session")).await, original);
    assert_eq!(
        browser.get(demo.url("/setsession")).await,
        "The session has been Set"
    );
    let mut expected = match tagged::from_str(original).expect("parses") {
        Value::Dict(map) => map,
        other => panic!("not a dict: {other:?}"),
    };
    expected.insert("Username".to_owned(), "Admin".into());
    assert_eq!(
        browser.get(flask.url("/api/session")).await,
        tagged::map_to_string(&expected)
    );

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
