//! The real `tessera-demo` binary: key file, restarts, graceful shutdown.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Browser;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_tessera-demo");
const LISTENING: &str = "tessera-demo listening on ";
const STARTUP: Duration = Duration::from_secs(30);

/// A fresh, empty directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "tessera-demo-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("a temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running demo, killed if the test fails before stopping it.
struct Demo {
    child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
    url: String,
    /// Lines printed before the listening line.
    preamble: Vec<String>,
}

async fn start(dir: &Path, secret_key: Option<&str>) -> Demo {
    let mut command = Command::new(BINARY);
    command
        .args(["--port", "0"])
        .current_dir(dir)
        .env_remove("SECRET_KEY")
        .env_remove("SECRET_KEY_FALLBACKS")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(key) = secret_key {
        command.env("SECRET_KEY", key);
    }
    let mut child = command.spawn().expect("the demo starts");
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
    /// SIGTERM, then expect a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("the demo stops on SIGTERM")
            .expect("an exit status");
        assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    }
}

#[tokio::test]
async fn generated_key_is_kept_and_sessions_survive_a_restart() {
    let dir = TempDir::new("restart");
    let key_file = dir.0.join("tessera-demo.key");

    let demo = start(&dir.0, None).await;
    let notice = demo.preamble.join("\n");
    assert!(notice.contains("generated"), "{notice}");
    assert!(notice.contains("tessera-demo.key"), "{notice}");

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
    assert!(browser.get("/").await.body.contains("Logged in as alice"));
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
    demo.stop().await;
}

#[tokio::test]
async fn secret_key_from_the_environment_needs_no_key_file() {
    let dir = TempDir::new("env-key");
    let demo = start(&dir.0, Some("an-environment-secret-key-0123456789abcdef")).await;
    assert!(
        demo.preamble.is_empty(),
        "nothing to say about keys: {:?}",
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
        "RUST_LOG",
    ] {
        assert!(help.contains(word), "{word} in {help}");
    }
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
