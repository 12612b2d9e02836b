//! The example's server over real HTTP, in cookie and memory mode.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE, VARY};
use reqwest::StatusCode;
use tessera::{
    Changes, Record, SessionConfig, SessionId, SessionInfo, SessionLayer, SessionStore,
    SessionType, StoreError, UpdateOutcome, Value,
};
use tokio::net::TcpListener;

const TEST_KEY: &str = "tessera-example-hyper-tower-test-key-0123456789abcdef";

fn config(session_type: SessionType) -> SessionConfig {
    SessionConfig::builder()
        .secret_key(TEST_KEY)
        .session_type(session_type)
        .build()
        .expect("a valid test configuration")
}

/// Serves the example on a free port and returns its base URL.
async fn start(config: SessionConfig) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound");
    tokio::spawn(tessera_example_hyper_tower::serve(listener, config));
    format!("http://{address}")
}

/// A store that is down: every call fails.
#[derive(Debug)]
struct DownStore;

fn down() -> StoreError {
    StoreError::unavailable(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "the test store is down",
    ))
}

#[async_trait::async_trait]
impl SessionStore for DownStore {
    async fn load(&self, _: &SessionId, _: u64) -> Result<Option<Record>, StoreError> {
        Err(down())
    }
    async fn create(&self, _: &SessionId, _: &Record) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn update(&self, _: &SessionId, _: &Changes, _: u64) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn update_or_delete_if_empty(
        &self,
        _: &SessionId,
        _: &Changes,
        _: u64,
    ) -> Result<UpdateOutcome, StoreError> {
        Err(down())
    }
    async fn delete(&self, _: &SessionId) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn cycle_id(&self, _: &SessionId, _: &SessionId, _: u64) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn increment(
        &self,
        _: &SessionId,
        _: &str,
        _: i64,
        _: u64,
    ) -> Result<Option<i64>, StoreError> {
        Err(down())
    }
    async fn append(
        &self,
        _: &SessionId,
        _: &str,
        _: &Value,
        _: u64,
    ) -> Result<Option<usize>, StoreError> {
        Err(down())
    }
    async fn list(
        &self,
        _: Option<&str>,
        _: Option<&SessionId>,
        _: usize,
        _: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        Err(down())
    }
    async fn delete_user(&self, _: &str) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn purge_expired(&self, _: u64, _: usize) -> Result<u64, StoreError> {
        Err(down())
    }
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    set_cookies: Vec<String>,
    retry_after: Option<String>,
    vary: Option<String>,
    body: String,
}

impl Reply {
    /// `name=value` of the single `Set-Cookie`, as a browser sends it back.
    fn cookie(&self) -> String {
        assert_eq!(self.set_cookies.len(), 1, "{:?}", self.set_cookies);
        let pair = self.set_cookies[0].split(';').next().expect("a pair");
        pair.to_owned()
    }
}

async fn get(base: &str, path: &str, cookie: Option<&str>) -> Reply {
    request(reqwest::Method::GET, base, path, cookie).await
}

async fn request(method: reqwest::Method, base: &str, path: &str, cookie: Option<&str>) -> Reply {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers();
    let set_cookies = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .collect();
    let retry_after = headers
        .get(RETRY_AFTER)
        .map(|value| value.to_str().expect("ASCII").to_owned());
    let vary = headers
        .get(VARY)
        .map(|value| value.to_str().expect("ASCII").to_owned());
    let body = response.text().await.expect("a text body");
    Reply {
        status,
        set_cookies,
        retry_after,
        vary,
        body,
    }
}

/// The cookie with its value's first character changed.
fn tampered(cookie: &str) -> String {
    let (name, value) = cookie.split_once('=').expect("name=value");
    let mut chars = value.chars();
    let first = chars.next().expect("a value");
    let replacement = if first == 'a' { 'b' } else { 'a' };
    format!("{name}={replacement}{}", chars.as_str())
}

/// Visits three times with the cookie and returns it.
async fn count_to_three(base: &str) -> String {
    let first = get(base, "/", None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, "visit number 1");
    let mut cookie = first.cookie();
    assert!(cookie.starts_with("session="), "{cookie}");
    for expected in ["visit number 2", "visit number 3"] {
        let reply = get(base, "/", Some(&cookie)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, expected);
        if !reply.set_cookies.is_empty() {
            cookie = reply.cookie();
        }
    }
    cookie
}

#[tokio::test]
async fn the_counter_goes_up_with_the_cookie() {
    for session_type in [SessionType::Cookie, SessionType::Memory] {
        let base = start(config(session_type)).await;
        count_to_three(&base).await;
        // No cookie, no history.
        assert_eq!(get(&base, "/", None).await.body, "visit number 1");
    }
}

#[tokio::test]
async fn a_tampered_cookie_starts_at_one() {
    for session_type in [SessionType::Cookie, SessionType::Memory] {
        let base = start(config(session_type)).await;
        let cookie = count_to_three(&base).await;
        let reply = get(&base, "/", Some(&tampered(&cookie))).await;
        assert_eq!(reply.status, StatusCode::OK, "{session_type:?}");
        assert_eq!(reply.body, "visit number 1", "{session_type:?}");
        // The genuine cookie still counts on.
        assert_eq!(
            get(&base, "/", Some(&cookie)).await.body,
            "visit number 4",
            "{session_type:?}"
        );
    }
}

#[tokio::test]
async fn logout_removes_the_cookie() {
    for session_type in [SessionType::Cookie, SessionType::Memory] {
        let base = start(config(session_type)).await;
        let cookie = count_to_three(&base).await;
        let reply = get(&base, "/logout", Some(&cookie)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "session cleared");
        let removal = &reply.set_cookies;
        assert_eq!(removal.len(), 1, "{removal:?}");
        assert!(removal[0].starts_with("session=;"), "{removal:?}");
        assert!(removal[0].contains("Max-Age=0"), "{removal:?}");
        // The browser drops the cookie and starts over.
        assert_eq!(get(&base, "/", None).await.body, "visit number 1");
        if session_type == SessionType::Memory {
            // Server-side, clearing deleted the record: a kept copy is dead.
            assert_eq!(get(&base, "/", Some(&cookie)).await.body, "visit number 1");
        }
    }
}

#[tokio::test]
async fn other_paths_and_methods_are_refused() {
    let base = start(config(SessionType::Cookie)).await;
    let reply = get(&base, "/nowhere", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.set_cookies.is_empty());
    let reply = request(reqwest::Method::POST, &base, "/", None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.set_cookies.is_empty());
    // HEAD is GET without the body.
    let reply = request(reqwest::Method::HEAD, &base, "/", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.set_cookies.len(), 1);
    assert_eq!(reply.body, "");
}

#[tokio::test]
async fn a_failing_store_answers_503_with_retry_after() {
    // A well-formed id to send: a memory-mode server mints the same kind.
    let memory = start(config(SessionType::Memory)).await;
    let cookie = get(&memory, "/", None).await.cookie();

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    let layer = SessionLayer::with_store(config(SessionType::Memory), Arc::new(DownStore));
    tokio::spawn(tessera_example_hyper_tower::serve_with(listener, layer));

    // With a cookie, loading fails; without one, creating the record does.
    // Either way the answer depends on the cookie, as caches must know.
    for cookie in [Some(cookie.as_str()), None] {
        let reply = get(&base, "/", cookie).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{cookie:?}");
        assert_eq!(reply.retry_after.as_deref(), Some("1"), "{cookie:?}");
        assert_eq!(reply.vary.as_deref(), Some("Cookie"), "{cookie:?}");
        assert!(
            reply.set_cookies.is_empty(),
            "{cookie:?}: {:?}",
            reply.set_cookies
        );
    }
    // Routes that need no session still answer.
    assert_eq!(
        get(&base, "/nowhere", None).await.status,
        StatusCode::NOT_FOUND
    );
}

/// Clients that send nothing, or half a request, and connections left idle
/// after a request, are closed after the header timeout (slowloris), while
/// requests sent in time are answered.
#[tokio::test]
async fn slow_and_idle_connections_are_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut buffer = [0u8; 4096];
        tokio::time::timeout(within, async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().expect("bound");
    let layer = SessionLayer::new(config(SessionType::Cookie));
    tokio::spawn(tessera_example_hyper_tower::serve_with_header_timeout(
        listener,
        layer,
        Duration::from_secs(1),
    ));
    let connect = || async {
        tokio::net::TcpStream::connect(address)
            .await
            .expect("connects")
    };
    let mut silent = connect().await;
    let mut half = connect().await;
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("sends half a request");
    let mut idle = connect().await;
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("sends a request");
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).await.expect("an answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    let (silent_closed, half_closed, idle_closed) = tokio::join!(
        closed_within(&mut silent, Duration::from_secs(10)),
        closed_within(&mut half, Duration::from_secs(10)),
        closed_within(&mut idle, Duration::from_secs(10)),
    );
    assert!(silent_closed, "a connection that sends nothing is closed");
    assert!(half_closed, "half a request is cut off");
    assert!(idle_closed, "an idle kept-alive connection is closed");
    let reply = get(&format!("http://{address}"), "/", None).await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// The binary takes no arguments: `--help` says how to run it, and any
/// other argument is refused instead of the server starting regardless.
#[test]
fn the_binary_answers_help_and_refuses_other_arguments() {
    let run = |argument: &str| {
        let mut child =
            std::process::Command::new(env!("CARGO_BIN_EXE_tessera-example-hyper-tower"))
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
        usage.starts_with("Usage: tessera-example-hyper-tower"),
        "{usage}"
    );
    assert!(usage.contains("SECRET_KEY"), "{usage}");
    let refused = run("--port");
    assert_eq!(refused.status.code(), Some(2));
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("unexpected argument \"--port\""), "{error}");
}
