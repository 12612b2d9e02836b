//! The real `tessera-demo` binary: key file, sessions file, restarts,
//! graceful shutdown.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Browser, TempDir, SESSION_VARS};
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera-demo");
const LISTENING: &str = "tessera-demo listening on ";
const STARTUP: Duration = Duration::from_secs(30);
const SESSIONS_FILE: &str = "tessera-demo-sessions.db";

/// A running demo, killed if the test fails before stopping it.
struct Demo {
    child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
    url: String,
    /// Lines printed before the listening line.
    preamble: Vec<String>,
}

async fn start(dir: &Path, secret_key: Option<&str>) -> Demo {
    let env: Vec<(&str, &str)> = secret_key
        .map(|key| ("SECRET_KEY", key))
        .into_iter()
        .collect();
    start_with(dir, &[], &env).await
}

/// Starts the demo in `dir` with extra arguments and environment variables.
async fn start_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Demo {
    listening(
        demo_command(dir, args, env)
            .spawn()
            .expect("the demo starts"),
    )
    .await
}

/// The command [`start_with`] runs: stderr discarded, stdout read for the
/// listening line.
fn demo_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(["--port", "0"])
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for name in SESSION_VARS {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command
}

/// The demo `child` once it says it listens.
async fn listening(mut child: Child) -> Demo {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut preamble = Vec::new();
    let url = tokio::time::timeout(STARTUP, async {
        loop {
            let line = lines
                .next_line()
                .await
                .expect("readable stdout")
                .unwrap_or_else(|| panic!("the demo exited early after {preamble:?}"));
            if let Some(url) = line.strip_prefix(LISTENING) {
                return url.to_owned();
            }
            preamble.push(line);
        }
    })
    .await
    .expect("the demo prints its URL in time");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    Demo {
        child,
        _stdout: lines,
        url,
        preamble,
    }
}

impl Demo {
    /// Sends SIGTERM.
    fn signal(&self) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// SIGTERM, then expect a clean exit.
    async fn stop(mut self) {
        self.signal();
        let exit = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("the demo stops on SIGTERM")
            .expect("an exit status");
        assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    }
}

/// A supervisor may stop the demo as soon as it says it listens: the
/// signal must already be caught then, so the store is closed and the exit
/// is clean rather than a kill by SIGTERM's default action.
#[tokio::test]
async fn a_signal_as_soon_as_the_demo_listens_stops_it_cleanly() {
    let dir = TempDir::new("early-signal");
    for session_type in ["sqlite", "cookie", "sqlite", "memory", "sqlite", "sqlite"] {
        let demo = start_with(
            &dir.0,
            &[],
            &[
                ("SECRET_KEY", "a-key-for-the-early-signal-test"),
                ("SESSION_TYPE", session_type),
            ],
        )
        .await;
        demo.stop().await;
    }
}

/// A blank SECRET_KEY counts as unset, as in the library, and the notice
/// says it was blank rather than not set.
#[tokio::test]
async fn a_blank_key_is_said_to_count_as_unset() {
    let dir = TempDir::new("blank-key");
    let demo = start(&dir.0, Some(" \t")).await;
    let notice = demo.preamble.join("\n");
    assert!(
        notice.contains("SECRET_KEY is blank, which counts as unset"),
        "{notice}"
    );
    assert!(notice.contains("generated"), "{notice}");
    demo.stop().await;
}

#[tokio::test]
async fn generated_key_is_kept_and_sessions_survive_a_restart() {
    let dir = TempDir::new("restart");
    let key_file = dir.0.join("tessera-demo.key");

    let demo = start(&dir.0, None).await;
    let notice = demo.preamble.join("\n");
    assert!(notice.contains("generated"), "{notice}");
    assert!(notice.contains("SECRET_KEY is not set"), "{notice}");
    assert!(notice.contains("tessera-demo.key"), "{notice}");
    // Sessions are server-side by default, in SQLite beside the key file.
    assert!(notice.contains("SESSION_TYPE=sqlite"), "{notice}");
    assert!(notice.contains(SESSIONS_FILE), "{notice}");

    let key = std::fs::read_to_string(&key_file).expect("the key file exists");
    let key = key.trim();
    assert_eq!(key.len(), 64, "a 32-byte hex key");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }

    let mut browser = Browser::new(demo.url.clone());
    browser
        .post_form("/login", &[("username", "alice")])
        .await
        .assert_redirect_home();
    let page = browser.get("/").await;
    assert!(page.body.contains("Logged in as alice"));
    assert!(page
        .body
        .contains("<dt>SESSION_TYPE</dt><dd><code>sqlite</code></dd>"));
    let id = browser.session().expect("a session cookie").to_owned();
    assert_eq!(id.len(), 43, "the cookie holds only an id: {id}");
    assert!(!id.contains('.'), "not a signed cookie: {id}");
    assert!(
        dir.0.join(SESSIONS_FILE).is_file(),
        "the sessions file is beside the key file"
    );
    demo.stop().await;

    let demo = start(&dir.0, None).await;
    let notice = demo.preamble.join("\n");
    assert!(notice.contains("using the secret key saved in"), "{notice}");
    assert_eq!(
        std::fs::read_to_string(&key_file)
            .expect("still there")
            .trim(),
        key,
        "the key file is reused, not replaced"
    );
    browser.base = demo.url.clone();
    let page = browser.get("/").await;
    assert!(
        page.body.contains("Logged in as alice"),
        "the session survived the restart: {}",
        page.body
    );
    assert_eq!(browser.get("/get_session").await.body, "Welcome, alice!");
    // Still the same stored session, listed for its user.
    let sessions = browser.get("/sessions").await;
    assert!(sessions.body.contains("this device"), "{}", sessions.body);
    assert_eq!(browser.session(), Some(id.as_str()));
    demo.stop().await;
}

#[tokio::test]
async fn the_sessions_file_goes_beside_the_key_file() {
    let dir = TempDir::new("beside-key");
    let keys = dir.0.join("keys");
    std::fs::create_dir_all(&keys).expect("a key directory");
    let demo = start_with(&dir.0, &["--key-file", "keys/demo.key"], &[]).await;
    let notice = demo.preamble.join("\n");
    let shown = std::path::absolute(keys.join(SESSIONS_FILE)).expect("absolute");
    assert!(
        notice.contains(&shown.display().to_string()),
        "the notice names the file: {notice}"
    );
    let mut browser = Browser::new(demo.url.clone());
    assert_eq!(browser.post("/visits").await.body, "1");
    assert_eq!(browser.post("/visits").await.body, "2");
    assert!(keys.join("demo.key").is_file());
    assert!(keys.join(SESSIONS_FILE).is_file());
    assert!(
        !dir.0.join(SESSIONS_FILE).exists(),
        "not in the working directory"
    );
    assert!(keys.join(format!("{SESSIONS_FILE}-wal")).is_file());
    demo.stop().await;
    // Closed at shutdown: the log went back into the database file.
    for log in ["-wal", "-shm"] {
        let log = keys.join(format!("{SESSIONS_FILE}{log}"));
        assert!(!log.exists(), "{} left behind", log.display());
    }

    // SESSION_STORE_URL wins.
    let elsewhere = dir.0.join("elsewhere.db");
    let url = common::sqlite_url(&elsewhere);
    let demo = start_with(
        &dir.0,
        &["--key-file", "keys/demo.key"],
        &[("SESSION_STORE_URL", url.as_str())],
    )
    .await;
    let mut browser = Browser::new(demo.url.clone());
    assert_eq!(browser.post("/visits").await.body, "1");
    assert!(elsewhere.is_file());
    demo.stop().await;
}

#[tokio::test]
async fn cookie_and_memory_modes_still_work_and_write_no_sessions_file() {
    for (mode, survives) in [("cookie", true), ("memory", false)] {
        let dir = TempDir::new(&format!("mode-{mode}"));
        let demo = start_with(&dir.0, &[], &[("SESSION_TYPE", mode)]).await;
        let notice = demo.preamble.join("\n");
        assert!(notice.contains(&format!("SESSION_TYPE={mode}")), "{notice}");
        // The generated key's notice promises what the mode keeps.
        assert!(notice.contains("generated"), "{notice}");
        assert_eq!(
            notice.contains("survive restarts"),
            survives,
            "{mode}: {notice}"
        );
        let mut browser = Browser::new(demo.url.clone());
        browser
            .post_form("/login", &[("username", "alice")])
            .await
            .assert_redirect_home();
        let page = browser.get("/").await;
        assert!(page.body.contains("Logged in as alice"), "{mode}");
        assert!(page.body.contains(&format!(
            "<dt>SESSION_TYPE</dt><dd><code>{mode}</code></dd>"
        )));
        let cart = browser.post_form("/cart", &[("item", "apple")]).await;
        assert_eq!(cart.status, StatusCode::OK, "{mode}: {}", cart.body);
        assert_eq!(cart.json(), serde_json::json!(["apple"]));
        demo.stop().await;
        assert!(!dir.0.join(SESSIONS_FILE).exists(), "{mode}");

        // A cookie session survives a restart (same key file); a memory one does not.
        let demo = start_with(&dir.0, &[], &[("SESSION_TYPE", mode)]).await;
        browser.base = demo.url.clone();
        let page = browser.get("/").await;
        assert_eq!(
            page.body.contains("Logged in as alice"),
            survives,
            "{mode}: {}",
            page.body
        );
        demo.stop().await;
    }
}

#[tokio::test]
async fn secret_key_from_the_environment_needs_no_key_file() {
    let dir = TempDir::new("env-key");
    let demo = start(&dir.0, Some("an-environment-secret-key-0123456789abcdef")).await;
    // Nothing to say about keys: only where sessions are kept.
    assert_eq!(demo.preamble.len(), 1, "{:?}", demo.preamble);
    assert!(
        demo.preamble[0].contains("SESSION_TYPE=sqlite"),
        "{:?}",
        demo.preamble
    );
    assert!(!dir.0.join("tessera-demo.key").exists());
    let mut browser = Browser::new(demo.url.clone());
    assert_eq!(browser.get("/set_session").await.body, "Session data set.");
    assert_eq!(
        browser.get("/get_session").await.body,
        "Welcome, your_username!"
    );
    demo.stop().await;
}

/// A log that cannot be written (stderr a pipe whose reader is gone, as
/// with a log shipper that died, or a full disk) costs the log lines, not
/// the answers: the demo exited at start, and once running dropped every
/// request unanswered.
#[tokio::test]
async fn requests_are_answered_when_the_log_cannot_be_written() {
    let dir = TempDir::new("log-gone");
    let mut command = demo_command(
        &dir.0,
        &[],
        &[
            ("SECRET_KEY", "a-secret-key-for-the-log-test-0123456789"),
            ("RUST_LOG", "debug"),
        ],
    );
    command.stderr(Stdio::piped());
    let mut child = command.spawn().expect("the demo starts");
    drop(child.stderr.take());
    let demo = listening(child).await;
    let mut browser = Browser::new(demo.url.clone());
    for _ in 0..3 {
        assert_eq!(browser.get("/set_session").await.body, "Session data set.");
        assert_eq!(
            browser.get("/get_session").await.body,
            "Welcome, your_username!"
        );
    }
    demo.stop().await;
}

#[tokio::test]
async fn help_explains_the_environment() {
    let output = Command::new(BINARY)
        .arg("--help")
        .output()
        .await
        .expect("--help runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for word in [
        "--host",
        "--port",
        "--key-file",
        "SECRET_KEY",
        "PERMANENT_SESSION_LIFETIME",
        "SESSION_COOKIE_SAMESITE",
        "SESSION_TYPE",
        "SESSION_STORE_URL",
        "tessera-demo-sessions.db",
        "RUST_LOG",
    ] {
        assert!(help.contains(word), "{word} in {help}");
    }
}

/// A client that never finishes sending its request does not keep the demo
/// from stopping: requests in flight get `--shutdown-timeout` seconds, and
/// a second signal stops it at once.
#[tokio::test]
async fn shutdown_does_not_wait_for_a_request_that_never_arrives() {
    use tokio::io::AsyncWriteExt as _;

    async fn half_sent_request(demo: &Demo) -> tokio::net::TcpStream {
        let address = demo.url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connects");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("sends half a request");
        // Accepted before the signal, which stops accepting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream
    }
    let key = ("SECRET_KEY", "an-environment-secret-key-0123456789abcdef");

    let dir = TempDir::new("shutdown-deadline");
    let mut demo = start_with(&dir.0, &["--shutdown-timeout", "1"], &[key]).await;
    let _stalled = half_sent_request(&demo).await;
    let started = std::time::Instant::now();
    demo.signal();
    let exit = tokio::time::timeout(Duration::from_secs(10), demo.child.wait())
        .await
        .expect("stops after its shutdown timeout")
        .expect("an exit status");
    assert!(exit.success(), "{exit:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for the request first"
    );

    // The default timeout is longer; a second signal cuts it short.
    let mut demo = start_with(&dir.0, &[], &[key]).await;
    let _stalled = half_sent_request(&demo).await;
    demo.signal();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        demo.child.try_wait().expect("a status").is_none(),
        "still draining"
    );
    demo.signal();
    let exit = tokio::time::timeout(Duration::from_secs(5), demo.child.wait())
        .await
        .expect("stops at the second signal")
        .expect("an exit status");
    assert!(exit.success(), "{exit:?}");
}

/// A raw connection to `demo`, for clients that misbehave.
async fn connect_to(demo: &Demo) -> tokio::net::TcpStream {
    let address = demo.url.trim_start_matches("http://").trim_end_matches('/');
    tokio::net::TcpStream::connect(address)
        .await
        .expect("connects")
}

/// Sends `bytes` a byte every 200 ms, until they are sent or the demo
/// closes the connection.
async fn trickle_in(stream: &mut tokio::net::TcpStream, bytes: &[u8]) {
    use tokio::io::AsyncWriteExt as _;
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Everything the demo sends on `stream` until it closes it, if it does
/// within `within` (a reset counts as closed).
async fn answer_then_close(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt as _;
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .ok()
        .map(|_| String::from_utf8_lossy(&answer).into_owned())
}

/// Clients that connect and send nothing, half a request, or a byte at a
/// time, or that keep a connection open without a next request, are cut
/// off after `--header-timeout` (slowloris), rather than hold a socket and
/// a task for as long as they like; a request sent in time is answered.
#[tokio::test]
async fn slow_and_idle_connections_are_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Whether the demo closes `stream` within `within`.
    async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
        answer_then_close(stream, within).await.is_some()
    }
    let key = ("SECRET_KEY", "an-environment-secret-key-0123456789abcdef");
    let dir = TempDir::new("header-timeout");
    let demo = start_with(&dir.0, &["--header-timeout", "1"], &[key]).await;
    let connect = || connect_to(&demo);

    let mut silent = connect().await;
    let mut half = connect().await;
    half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("sends half a request");
    let mut trickle = connect().await;
    let mut idle = connect().await;
    idle.write_all(b"GET /get_session HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("sends a request");
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).await.expect("an answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    let started = std::time::Instant::now();
    // A byte every 200 ms: the timeout is on the whole header, not between bytes.
    let trickling = async {
        trickle_in(
            &mut trickle,
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa",
        )
        .await;
        closed_within(&mut trickle, Duration::from_secs(10)).await
    };
    let (silent_closed, half_closed, idle_closed, trickle_closed) = tokio::join!(
        closed_within(&mut silent, Duration::from_secs(10)),
        closed_within(&mut half, Duration::from_secs(10)),
        closed_within(&mut idle, Duration::from_secs(10)),
        trickling,
    );
    assert!(silent_closed, "a connection that sends nothing is closed");
    assert!(half_closed, "half a request is cut off");
    assert!(idle_closed, "an idle kept-alive connection is closed");
    assert!(trickle_closed, "a request trickling in is cut off");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut off after about a second, not the trickle's 9 s: {:?}",
        started.elapsed()
    );
    // Meanwhile and after, requests sent in time are answered.
    let mut prompt = connect().await;
    prompt
        .write_all(b"GET /get_session HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("sends a request");
    let mut response = Vec::new();
    prompt.read_to_end(&mut response).await.expect("an answer");
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    demo.stop().await;
}

/// A request whose body comes slowly, or stops halfway, is answered 408
/// after `--request-timeout` and its connection closed, however patient the
/// header timeout; a body sent in time is read as usual.
#[tokio::test]
async fn a_slow_or_stalled_request_body_is_cut_off_after_the_request_timeout() {
    use tokio::io::AsyncWriteExt as _;

    let key = ("SECRET_KEY", "an-environment-secret-key-0123456789abcdef");
    let dir = TempDir::new("request-timeout");
    let demo = start_with(
        &dir.0,
        &["--request-timeout", "1", "--header-timeout", "60"],
        &[key],
    )
    .await;
    let login = |length: usize| {
        format!(
            "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {length}\r\n\r\n"
        )
    };
    let connect = || connect_to(&demo);

    let mut stalled = connect().await;
    stalled
        .write_all(format!("{}username=al", login(100)).as_bytes())
        .await
        .expect("sends half a request");
    let mut trickle = connect().await;
    trickle
        .write_all(login(40).as_bytes())
        .await
        .expect("sends the headers");
    let started = std::time::Instant::now();
    // A byte every 200 ms: 8 s for the whole body.
    let trickling = async {
        trickle_in(&mut trickle, b"username=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").await;
        answer_then_close(&mut trickle, Duration::from_secs(10)).await
    };
    let (stalled_answer, trickle_answer) = tokio::join!(
        answer_then_close(&mut stalled, Duration::from_secs(10)),
        trickling
    );
    for (what, answer) in [("stalled", stalled_answer), ("trickling", trickle_answer)] {
        let answer = answer.unwrap_or_else(|| panic!("the {what} request's connection stays open"));
        assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer:?}");
        // Said in words, as every other error, and kept out of caches.
        assert!(
            answer.contains("Request Timeout: the request took longer than 1 s")
                && answer.contains("cache-control: no-store")
                && answer.contains("x-content-type-options: nosniff")
                && answer.contains("connection: close"),
            "{what}: {answer:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "cut off after about a second, not the trickle's 8 s: {:?}",
        started.elapsed()
    );
    // A body sent in time: the login is read and answered.
    let mut prompt = connect().await;
    let body = "username=alice";
    prompt
        .write_all(
            format!("{}{body}", login(body.len()))
                .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("sends a request");
    let answer = answer_then_close(&mut prompt, Duration::from_secs(10))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 302"), "{answer:?}");
    demo.stop().await;
}

/// Starts the demo with `env` and returns the first line it logs that
/// holds `needle`, while it keeps running.
#[cfg(unix)]
async fn logged_at_start(env: &[(&str, &str)], needle: &str) -> String {
    let dir = TempDir::new("logged-at-start");
    let mut child = Command::new(BINARY)
        .args(["--port", "0"])
        .current_dir(&dir.0)
        .env("RUST_LOG", "warn")
        .env("SECRET_KEY", "an-environment-secret-key-0123456789abcdef")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the demo starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
    let line = tokio::time::timeout(STARTUP, async {
        loop {
            let line = stderr
                .next_line()
                .await
                .expect("readable")
                .expect("the demo reports before it exits");
            if line.contains(needle) {
                return line;
            }
        }
    })
    .await
    .expect("reported in time");
    assert!(
        child.try_wait().expect("a status").is_none(),
        "still serving"
    );
    line
}

/// A store that cannot be used is reported when the demo starts, not only
/// at the first visitor's 503; the demo serves all the same (the store may
/// come up later).
#[cfg(unix)]
#[tokio::test]
async fn a_store_that_cannot_be_used_is_reported_at_start() {
    let env = [
        ("SESSION_TYPE", "redis"),
        // Port 9 (discard) on loopback: nothing listens, connects are refused.
        ("SESSION_STORE_URL", "redis://127.0.0.1:9/0"),
    ];
    let line = logged_at_start(&env, "session store cannot be used").await;
    assert!(line.contains("ERROR"), "{line}");
}

/// Session tables changed by hand so that the store's writes of values
/// fail (a check its keys do not pass) are reported at start as a store
/// unusable as configured, though a session without values would be
/// written and read without fault.
#[cfg(unix)]
#[tokio::test]
async fn session_tables_changed_by_hand_are_reported_at_start() {
    use sqlx::Connection as _;
    let server = common::server_url("TESSERA_TEST_POSTGRES_URL");
    let schema = format!("demo_probe_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect");
    for statement in [
        format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        format!("CREATE SCHEMA {schema}"),
    ] {
        sqlx::raw_sql(&statement)
            .execute(&mut admin)
            .await
            .expect("schema");
    }
    let separator = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{separator}options=-csearch_path%3D{schema}");
    let store = tessera::store::PostgresStore::new(&url).expect("a store URL");
    store.connect().await.expect("the store makes its tables");
    store.close().await;
    sqlx::raw_sql(&format!(
        "ALTER TABLE {schema}.tessera_session_values \
         ADD CONSTRAINT long_keys CHECK (length(key) > 20)"
    ))
    .execute(&mut admin)
    .await
    .expect("the change by hand");

    let env = [
        ("SESSION_TYPE", "postgres"),
        ("SESSION_STORE_URL", url.as_str()),
    ];
    let line = logged_at_start(&env, "session store").await;
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .expect("drop");
    assert!(
        line.contains("ERROR") && line.contains("cannot be used as configured"),
        "{line}"
    );
}

/// sqlx's own warnings (a statement slowed by a lock held elsewhere, a
/// pooled connection's error after an outage) are left out unless
/// `RUST_LOG` asks for them: during a lock or an outage they came once per
/// waiting request, burying the store's own once-a-second lines.
#[cfg(unix)]
#[tokio::test]
async fn sqlx_warnings_are_left_out_by_default() {
    use sqlx::{Connection as _, Executor as _};
    let dir = TempDir::new("sqlx-quiet");
    let mut command = Command::new(BINARY);
    for name in SESSION_VARS {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG");
    let (mut child, base) = start_logging(&dir, command).await;

    let mut browser = Browser::new(base);
    assert_eq!(browser.post("/visits").await.status, StatusCode::OK);
    let mut lock = sqlx::SqliteConnection::connect(&common::sqlite_url(&dir.0.join(SESSIONS_FILE)))
        .await
        .expect("the sessions file opens");
    lock.execute("BEGIN EXCLUSIVE").await.expect("locked");
    let visit = tokio::spawn(async move { browser.post("/visits").await.status });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    lock.execute("COMMIT").await.expect("unlocked");
    assert_eq!(visit.await.expect("answered"), StatusCode::OK);

    child.kill().await.expect("killed");
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().expect("piped"), &mut log)
        .await
        .expect("readable");
    assert!(log.contains("INFO"), "the log was read: {log}");
    assert!(!log.contains("slow statement"), "{log}");
}

/// A user of the test Redis server without the scripting every write of
/// the store is: the demo may read but not write.
struct ReadOnlyRedisUser {
    name: String,
    url: String,
    admin: redis::aio::MultiplexedConnection,
}

impl ReadOnlyRedisUser {
    async fn new(label: &str) -> Self {
        let server = common::server_url("TESSERA_TEST_REDIS_URL");
        let address = server.strip_prefix("redis://").expect("a redis:// URL");
        let name = format!("{label}-{}", std::process::id());
        let mut admin = redis::Client::open(server.as_str())
            .expect("a redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&name)
            .arg("on")
            .arg(">read-only-password")
            .arg("~*")
            .arg("+@all")
            .arg("-@scripting")
            .query_async(&mut admin)
            .await
            .expect("ACL SETUSER");
        let url = format!("redis://{name}:read-only-password@{address}");
        Self { name, url, admin }
    }

    async fn remove(mut self) {
        let _: i64 = redis::cmd("ACL")
            .arg("DELUSER")
            .arg(&self.name)
            .query_async(&mut self.admin)
            .await
            .expect("ACL DELUSER");
    }
}

/// A store the demo may read but not write (a Redis user without the
/// scripting every write is) is reported at start as well: the check only
/// read, and said "the session store answers".
#[cfg(unix)]
#[tokio::test]
async fn a_store_that_refuses_writes_is_reported_at_start() {
    let read_only = ReadOnlyRedisUser::new("demo-read-only").await;
    let env = [
        ("SESSION_TYPE", "redis"),
        ("SESSION_STORE_URL", &read_only.url),
    ];
    let line = logged_at_start(&env, "session store cannot be used").await;
    read_only.remove().await;
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("NOPERM") || line.contains("permission"),
        "{line}"
    );
}

/// A cookie path that does not cover the demo's pages (at /) is warned
/// about: the browser would never send the session back.
#[cfg(unix)]
#[tokio::test]
async fn a_cookie_path_that_misses_the_pages_is_warned_about() {
    let env = [("SESSION_TYPE", "cookie"), ("APPLICATION_ROOT", "/app")];
    let line = logged_at_start(&env, "does not cover the demo's pages").await;
    assert!(line.contains("WARN") && line.contains("/app"), "{line}");
}

#[tokio::test]
async fn a_bad_setting_is_a_clear_error() {
    let dir = TempDir::new("bad-setting");
    let output = Command::new(BINARY)
        .args(["--port", "0"])
        .current_dir(&dir.0)
        .env("SECRET_KEY", "an-environment-secret-key-0123456789abcdef")
        .env("SESSION_COOKIE_SAMESITE", "sometimes")
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SESSION_COOKIE_SAMESITE"), "{stderr}");
}

/// Two demo processes sharing one Redis, and separately one PostgreSQL: a
/// login on one is seen by the other, and "log out everywhere" on one is
/// enforced by the other at once.
#[tokio::test]
async fn two_instances_share_sessions_through_redis_and_postgres() {
    for (session_type, variable) in [
        ("redis", "TESSERA_TEST_REDIS_URL"),
        ("postgres", "TESSERA_TEST_POSTGRES_URL"),
    ] {
        let url = common::server_url(variable);
        let dirs = [TempDir::new("instance-a"), TempDir::new("instance-b")];
        let env = [
            ("SECRET_KEY", "two-instances-secret-key-0123456789abcdef"),
            ("SESSION_TYPE", session_type),
            ("SESSION_STORE_URL", url.as_str()),
        ];
        let a = start_with(&dirs[0].0, &[], &env).await;
        let b = start_with(&dirs[1].0, &[], &env).await;
        let user = format!("user-{}-{}", session_type, std::process::id());

        let mut laptop = Browser::new(a.url.clone());
        let login = laptop.post_form("/login", &[("username", &user)]).await;
        assert_eq!(login.status, StatusCode::FOUND, "{session_type}");
        laptop.base = b.url.clone();
        let page = laptop.get("/").await;
        assert!(
            page.body.contains(&format!("Logged in as {user}")),
            "{session_type}: B sees A's login"
        );

        let mut phone = Browser::new(b.url.clone());
        phone.post_form("/login", &[("username", &user)]).await;
        phone.base = a.url.clone();
        let ended = phone.post("/sessions/logout-everywhere").await;
        assert_eq!(ended.status, StatusCode::FOUND, "{session_type}");

        // The laptop talks to B, which never saw the logout: logged out all the same.
        let page = laptop.get("/").await;
        assert!(
            page.body.contains("You are not logged in"),
            "{session_type}: revoked at once on B"
        );
        a.stop().await;
        b.stop().await;
    }
}

/// Starts `command` (the demo, perhaps under another program) on a free
/// port in `dir`, its log piped: the process, its stderr still to read, and
/// its URL.
async fn start_logging(dir: &TempDir, mut command: Command) -> (Child, String) {
    // `warn`, unless the command says otherwise (or removes it).
    if !command
        .as_std()
        .get_envs()
        .any(|(name, _)| name == "RUST_LOG")
    {
        command.env("RUST_LOG", "warn");
    }
    let mut child = command
        .args(["--port", "0"])
        .current_dir(&dir.0)
        .env("SECRET_KEY", "an-environment-secret-key-0123456789abcdef")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the demo starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    let base = tokio::time::timeout(STARTUP, async {
        loop {
            let line = stdout
                .next_line()
                .await
                .expect("readable")
                .expect("the demo prints its URL before it exits");
            if let Some(url) = line.strip_prefix(LISTENING) {
                return url.to_owned();
            }
        }
    })
    .await
    .expect("listening in time");
    // Read on, so that what it prints later finds its stdout open.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    (child, base)
}

/// While the store refuses its work, every request that needs it is
/// answered 503, but the demo logs at most about a line a second, counting
/// the failures it did not log: a line per request would be thousands a
/// second in an outage and drown what else the log says.
#[cfg(unix)]
#[tokio::test]
async fn a_failing_store_is_logged_at_most_once_a_second() {
    let no_writes = ReadOnlyRedisUser::new("demo-no-writes").await;
    let dir = TempDir::new("failing-store-log");
    let mut command = Command::new(BINARY);
    command
        .env("SESSION_TYPE", "redis")
        .env("SESSION_STORE_URL", &no_writes.url);
    let (mut child, base) = start_logging(&dir, command).await;

    let client = reqwest::Client::new();
    let visit = || async {
        client
            .post(format!("{base}/visits"))
            .send()
            .await
            .expect("an answer")
    };
    const REQUESTS: usize = 40;
    for _ in 0..REQUESTS {
        let response = visit().await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
    }
    // One more once a second has passed, then time for the lines that
    // count what was not logged.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(visit().await.status(), StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    child.kill().await.expect("killed");
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().expect("piped"), &mut log)
        .await
        .expect("readable");
    no_writes.remove().await;
    let not_logged = |line: &str| -> usize {
        line.split("not_logged=")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("a count in {line:?}"))
    };
    // A failure logged, with those held back since the last line; or a
    // line of its own for those held back when no failure came after.
    let logged: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("answering 503"))
        .collect();
    let summaries: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("more such failures"))
        .collect();
    let counted: usize = logged
        .iter()
        .map(|line| 1 + not_logged(line))
        .sum::<usize>()
        + summaries.iter().map(|line| not_logged(line)).sum::<usize>();
    assert_eq!(counted, REQUESTS + 1, "every failure counted:\n{log}");
    assert!(
        logged.len() + summaries.len() <= 5,
        "{} failed requests logged in {} lines:\n{log}",
        REQUESTS + 1,
        logged.len() + summaries.len()
    );
    assert!(
        logged
            .iter()
            .all(|line| line.to_ascii_lowercase().contains("noperm")),
        "each line says why:\n{log}"
    );
}

/// Out of file descriptors (a low `ulimit -n`, a leak), the demo cannot
/// accept connections: each new one hangs until one is closed. That is
/// logged (at most once a second, as the server retries each second),
/// where nothing at all was, even at `RUST_LOG=debug`.
#[cfg(unix)]
#[tokio::test]
async fn running_out_of_file_descriptors_is_logged() {
    let dir = TempDir::new("out-of-descriptors");
    // prlimit (util-linux) runs the demo with few descriptors.
    let mut command = Command::new("prlimit");
    command
        .args(["--nofile=48:48", "--", BINARY])
        .env("SESSION_TYPE", "cookie");
    let (mut child, base) = start_logging(&dir, command).await;
    let address = base
        .strip_prefix("http://")
        .expect("an http URL")
        .to_owned();
    // More idle connections than the demo has descriptors left.
    let mut held = Vec::new();
    for _ in 0..64 {
        match tokio::net::TcpStream::connect(&address).await {
            Ok(stream) => held.push(stream),
            Err(error) => panic!("connect: {error}"),
        }
    }
    let mut stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
    let logged = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let line = stderr
                .next_line()
                .await
                .expect("readable")
                .expect("the demo keeps running");
            if line.contains("accept error") {
                return line;
            }
        }
    })
    .await
    .expect("the failure to accept is logged");
    assert!(logged.contains("ERROR"), "{logged}");
    assert!(
        logged.contains("Too many open files") || logged.contains("os error 24"),
        "{logged}"
    );
    drop(held);
    child.kill().await.expect("killed");
}
