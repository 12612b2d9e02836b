//! The demo in a real browser: headless Chromium driven over WebDriver (by
//! chromedriver), used as a person would use it. Each scenario starts the
//! real `tessera-demo` binary (sessions in its default SQLite store, in a
//! temporary directory) and a chromedriver of its own, asserts what the page
//! shows at every step and the cookies the browser actually keeps, and saves
//! a screenshot of every step in `target/test-artifacts/browser/` (with the
//! demo's and chromedriver's logs).
//!
//! Needs Debian's `chromium` and `chromium-driver`, which `scripts/test.sh`
//! installs; without them the tests fail and say so.

#![cfg(unix)]

mod common;

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::TempDir;
use fantoccini::cookies::Cookie;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tessera::SessionConfig;

/// Debian's `chromium` and `chromium-driver`.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const DEMO: &str = env!("CARGO_BIN_EXE_tessera-demo");
const DEMO_LISTENING: &str = "tessera-demo listening on ";
const DRIVER_LISTENING: &str = "ChromeDriver was started successfully on port ";
/// How long the demo and chromedriver may take to start.
const STARTUP: Duration = Duration::from_secs(60);
/// How long a page may take to show what a step expects.
const PAGE_WAIT: Duration = Duration::from_secs(30);
/// A bound on a whole scenario, so a stuck browser fails the test.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

/// Fails the test, saying how to install them, if the browser or the driver
/// is missing: a browser test that skips itself would pass without testing.
fn require_browser() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "the browser tests need Debian's chromium and chromium-driver, and {missing:?} is \
         missing: run scripts/test.sh, which installs them (or apt-get install chromium \
         chromium-driver as root)"
    );
}

/// Where screenshots and logs go: `test-artifacts/browser` in the target
/// directory (`CARGO_TARGET_DIR`, relative to the workspace root if it is
/// relative, or the workspace's `target`).
fn artifacts_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is inside the workspace");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    };
    let dir = target.join("test-artifacts").join("browser");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
    dir
}

/// A child process in a process group of its own. Dropping the guard (at
/// the end of a test, or when it fails) kills the whole group, so
/// chromedriver's browsers go with it, and reaps the child.
#[derive(Debug)]
struct ProcessGuard {
    child: Child,
}

impl ProcessGuard {
    fn spawn(command: &mut Command, what: &str) -> Self {
        let child = command
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
        Self { child }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        // The group's id is the child's pid (`process_group(0)`), reserved
        // until the child is reaped below.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `output` line by line on a thread of its own (to the end, so the
/// child never blocks on a full pipe) and returns what follows `prefix` on
/// the first line that starts with it.
fn wait_for_line(output: impl Read + Send + 'static, prefix: &str, what: &str) -> String {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            // The receiver is gone once the line was found: keep draining.
            let _ = sender.send(line);
        }
    });
    let deadline = Instant::now() + STARTUP;
    let mut seen = Vec::new();
    loop {
        match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => match line.strip_prefix(prefix) {
                Some(rest) => return rest.to_owned(),
                None => seen.push(line),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{what} did not print {prefix:?} within {STARTUP:?}; it printed {seen:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("{what} exited before printing {prefix:?}; it printed {seen:?}")
            }
        }
    }
}

/// The real demo binary, as `cargo run -p tessera-demo` starts it, in a
/// temporary directory (its key file and SQLite sessions file go there).
struct Demo {
    // Fields drop in order: the process stops before its directory goes.
    _process: ProcessGuard,
    _dir: TempDir,
    base: String,
    /// The configuration the demo runs with, computed by the demo's own
    /// code from the same environment and key file.
    config: SessionConfig,
}

impl Demo {
    /// Starts the demo with only `vars` in its environment (besides
    /// `RUST_LOG`), so the defaults apply to everything else.
    fn start(name: &str, vars: &[(&str, &str)], artifacts: &Path) -> Self {
        let dir = TempDir::new(&format!("browser-{name}"));
        let key_file = dir.0.join("tessera-demo.key");
        let log_path = artifacts.join(format!("{name}-demo.log"));
        let log = File::create(&log_path)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", log_path.display()));
        let mut command = Command::new(DEMO);
        command
            .args(["--host", "127.0.0.1", "--port", "0", "--key-file"])
            .arg(&key_file)
            .current_dir(&dir.0)
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut process = ProcessGuard::spawn(&mut command, "the tessera-demo binary");
        let stdout = process.child.stdout.take().expect("piped stdout");
        let base = wait_for_line(stdout, DEMO_LISTENING, "tessera-demo");
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let vars = vars
            .iter()
            .map(|(name, value)| (OsString::from(name), OsString::from(value)));
        let (config, _) = tessera_demo::secret::config_from_vars(vars, &key_file)
            .expect("the demo's configuration");
        Self {
            _process: process,
            _dir: dir,
            base,
            config,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// chromedriver on a free loopback port, and the browser profiles it uses.
struct Driver {
    // Fields drop in order: the browsers are killed before their profiles go.
    _process: ProcessGuard,
    url: String,
    profiles: Vec<TempDir>,
}

impl Driver {
    fn start(name: &str, artifacts: &Path) -> Self {
        let log = artifacts.join(format!("{name}-chromedriver.log"));
        let mut command = Command::new(CHROMEDRIVER);
        command
            // Port 0: chromedriver picks a free port and prints it.
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut process = ProcessGuard::spawn(&mut command, CHROMEDRIVER);
        let stdout = process.child.stdout.take().expect("piped stdout");
        let port = wait_for_line(stdout, DRIVER_LISTENING, "chromedriver");
        let port: u16 = port
            .trim_end_matches('.')
            .parse()
            .unwrap_or_else(|err| panic!("chromedriver's port {port:?}: {err}"));
        Self {
            _process: process,
            url: format!("http://127.0.0.1:{port}"),
            profiles: Vec::new(),
        }
    }

    /// A new browser window with a fresh profile of its own (its own cookies).
    async fn open_browser(&mut self, name: &str) -> Client {
        let profile = TempDir::new(&format!("browser-profile-{name}"));
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,2000".to_owned(),
            format!("--user-data-dir={}", profile.0.display()),
        ];
        self.profiles.push(profile);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|err| panic!("chromedriver could not start {CHROMIUM}: {err}"))
    }
}

/// Saves a PNG of what the browser shows.
async fn screenshot(client: &Client, artifacts: &Path, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    let path = artifacts.join(format!("{name}.png"));
    std::fs::write(&path, png)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
}

/// The visible text of every element matching `css`, in page order.
async fn try_texts(client: &Client, css: &str) -> Result<Vec<String>, fantoccini::error::CmdError> {
    let mut texts = Vec::new();
    for element in client.find_all(Locator::Css(css)).await? {
        texts.push(element.text().await?);
    }
    Ok(texts)
}

async fn texts(client: &Client, css: &str) -> Vec<String> {
    try_texts(client, css)
        .await
        .unwrap_or_else(|err| panic!("reading {css:?}: {err}"))
}

/// The page's status lines (`p.status`): login, pet, visits, cart.
async fn statuses(client: &Client) -> Vec<String> {
    texts(client, "p.status").await
}

/// The flash messages the page shows.
async fn flashes(client: &Client) -> Vec<String> {
    texts(client, ".flashes li").await
}

/// The "This session" panel of `/`: its rows, name and value.
async fn panel(client: &Client) -> Vec<(String, String)> {
    let names = texts(client, "dl dt").await;
    let values = texts(client, "dl dd").await;
    assert_eq!(names.len(), values.len(), "{names:?} {values:?}");
    names.into_iter().zip(values).collect()
}

fn row<'a>(panel: &'a [(String, String)], name: &str) -> &'a str {
    panel
        .iter()
        .find(|(row, _)| row == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("no {name:?} row in the session panel: {panel:?}"))
}

/// Waits until the page (after a click that navigates) shows `status`.
async fn wait_for_status(client: &Client, status: &str) {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        // A page being replaced may fail a read: try again.
        let shown = try_texts(client, "p.status").await.unwrap_or_default();
        if shown.iter().any(|shown| shown == status) {
            return;
        }
        if Instant::now() > deadline {
            let url = client.current_url().await.map(|url| url.to_string());
            let body = texts(client, "body").await;
            panic!("the page never showed {status:?} ({url:?} shows {shown:?}): {body:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the browser is at `url`, after a click that navigates.
async fn wait_for_url(client: &Client, url: &str) {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let current = client.current_url().await.map(|url| url.to_string());
        if current.as_deref().ok() == Some(url) {
            return;
        }
        assert!(
            Instant::now() <= deadline,
            "the browser never went to {url}: it is at {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The JSON document the browser shows (Chromium's viewer adds a
/// "Pretty-print" line above it), once it has loaded.
async fn shown_json(client: &Client) -> serde_json::Value {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let shown = try_texts(client, "body")
            .await
            .unwrap_or_default()
            .join("\n");
        let json = shown
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok());
        if let Some(json) = json {
            return json;
        }
        assert!(
            Instant::now() <= deadline,
            "the browser never showed a JSON document: {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("no {css:?} on the page: {err}"))
}

async fn type_into(client: &Client, css: &str, text: &str) {
    find(client, css)
        .await
        .send_keys(text)
        .await
        .unwrap_or_else(|err| panic!("typing into {css:?}: {err}"));
}

/// Marks the document the browser shows, then does `action` (which loads a
/// page) and waits until the browser shows a new document, fully loaded: a
/// WebDriver command may return before a navigation it starts is done (say,
/// to the URL already shown), and reading the old page then would be wrong.
async fn load_page<F>(client: &Client, what: &str, action: F)
where
    F: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
{
    client
        .execute("window.tesseraOldPage = true;", Vec::new())
        .await
        .unwrap_or_else(|err| panic!("marking the page before {what}: {err}"));
    action.await.unwrap_or_else(|err| panic!("{what}: {err}"));
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        // While the page is replaced, the script may fail: try again.
        let loaded = client
            .execute(
                "return document.readyState === 'complete' && !window.tesseraOldPage;",
                Vec::new(),
            )
            .await;
        if matches!(loaded, Ok(serde_json::Value::Bool(true))) {
            return;
        }
        assert!(
            Instant::now() <= deadline,
            "{what}: no new page loaded within {PAGE_WAIT:?} ({loaded:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Goes to `url`, as typing it in the address bar.
async fn open(client: &Client, url: &str) {
    load_page(client, &format!("going to {url}"), client.goto(url)).await;
}

/// Reloads the page.
async fn reload(client: &Client) {
    load_page(client, "reloading", client.refresh()).await;
}

/// Clicks a link or a submit button and waits for the page it loads.
async fn follow(client: &Client, css: &str) {
    let element = find(client, css).await;
    load_page(client, &format!("clicking {css:?}"), element.click()).await;
}

async fn click(client: &Client, css: &str) {
    find(client, css)
        .await
        .click()
        .await
        .unwrap_or_else(|err| panic!("clicking {css:?}: {err}"));
}

/// The session cookie the browser holds, if any.
async fn session_cookie(client: &Client, config: &SessionConfig) -> Option<Cookie<'static>> {
    let cookies = client
        .get_all_cookies()
        .await
        .expect("the browser's cookies");
    let mut named = cookies
        .into_iter()
        .filter(|cookie| cookie.name() == config.cookie_name());
    let cookie = named.next();
    assert!(named.next().is_none(), "one session cookie at most");
    cookie
}

fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    i64::try_from(secs).expect("a plausible time")
}

/// What the browser reports as the cookie's `SameSite` for the demo's
/// `SESSION_COOKIE_SAMESITE`: the configured value, or, when it is unset (the
/// `Set-Cookie` has no `SameSite`), `Lax`, Chromium's default for such a
/// cookie.
fn browser_same_site(config: &SessionConfig) -> &'static str {
    match config.cookie_same_site() {
        Some(tessera::SameSite::Strict) => "Strict",
        Some(tessera::SameSite::Lax) | None => "Lax",
        Some(tessera::SameSite::None) => "None",
    }
}

/// Asserts the cookie's attributes as the demo's configuration sets them.
///
/// `written` is the span of Unix seconds in which the session was last
/// written: a permanent session's cookie expires `PERMANENT_SESSION_LIFETIME`
/// after that (server-side, the expiry moves with the record's, so a
/// read-only request need not move it), and a non-permanent one has no
/// expiry: it lasts until the browser closes.
fn assert_cookie(
    cookie: &Cookie<'_>,
    config: &SessionConfig,
    permanent: bool,
    written: (i64, i64),
    step: &str,
) {
    assert_eq!(cookie.name(), config.cookie_name(), "{step}");
    assert!(!cookie.value().is_empty(), "{step}: {cookie}");
    assert_eq!(
        cookie.path(),
        Some(config.cookie_path()),
        "{step}: {cookie}"
    );
    assert_eq!(
        cookie.http_only(),
        Some(config.cookie_http_only()),
        "{step}: {cookie}"
    );
    assert_eq!(
        cookie.secure(),
        Some(config.cookie_secure()),
        "{step}: {cookie}"
    );
    // Without SESSION_COOKIE_DOMAIN, a host-only cookie for the demo's host.
    let domain = config.cookie_domain().unwrap_or("127.0.0.1");
    assert_eq!(cookie.domain(), Some(domain), "{step}: {cookie}");
    assert_eq!(
        cookie.same_site().map(|same_site| same_site.to_string()),
        Some(browser_same_site(config).to_owned()),
        "{step}: {cookie}"
    );
    let expires = cookie.expires_datetime().map(|at| at.unix_timestamp());
    if permanent {
        let lifetime = i64::try_from(config.permanent_session_lifetime().as_secs())
            .expect("a plausible lifetime");
        let expires = expires.unwrap_or_else(|| {
            panic!("{step}: a permanent session's cookie has an expiry: {cookie}")
        });
        let (from, to) = written;
        assert!(
            (from + lifetime - 1..=to + lifetime + 1).contains(&expires),
            "{step}: a permanent session's cookie expires PERMANENT_SESSION_LIFETIME \
             ({lifetime} s) after the session was written (between {from} and {to}), but it \
             expires at {expires}: {cookie}"
        );
    } else {
        assert_eq!(
            expires, None,
            "{step}: a non-permanent session's cookie lasts until the browser closes: {cookie}"
        );
    }
}

/// Scenario 1: one person logs in, has their pet name remembered (the
/// session becomes permanent), fills a cart and logs out. The demo runs with
/// `SESSION_PERMANENT=false` (Flask's behaviour, where only "remember" makes
/// a session permanent), so the cookie goes from a browser-session cookie to
/// one with an expiry, and with `SESSION_COOKIE_SAMESITE=Strict`, so the
/// attribute the browser keeps is the configured one, not its default.
#[tokio::test]
async fn login_remember_cart_and_logout_in_a_browser() {
    require_browser();
    let artifacts = artifacts_dir();
    let demo = Demo::start(
        "remember",
        &[
            ("SESSION_PERMANENT", "false"),
            ("SESSION_COOKIE_SAMESITE", "Strict"),
        ],
        &artifacts,
    );
    let mut driver = Driver::start("remember", &artifacts);
    let browser = driver.open_browser("remember").await;
    tokio::time::timeout(
        SCENARIO_TIMEOUT,
        remember_scenario(&demo, &browser, &artifacts),
    )
    .await
    .expect("the scenario finishes in time");
    browser.close().await.expect("the browser closes");
}

async fn remember_scenario(demo: &Demo, browser: &Client, artifacts: &Path) {
    let config = &demo.config;
    assert!(
        !config.session_permanent(),
        "this scenario starts non-permanent"
    );
    assert_eq!(config.cookie_same_site(), Some(tessera::SameSite::Strict));
    let shot = |name: &str| format!("remember-{name}");

    // A first visit: nothing known, nothing stored, no cookie.
    open(browser, &demo.url("/")).await;
    assert_eq!(browser.title().await.expect("a title"), "tessera demo");
    assert_eq!(
        statuses(browser).await,
        [
            "You are not logged in",
            "I do not know your pet's name.",
            "Visits counted: 0",
            "Your cart is empty."
        ]
    );
    assert!(flashes(browser).await.is_empty());
    let info = panel(browser).await;
    assert_eq!(row(&info, "SESSION_TYPE"), "sqlite");
    assert_eq!(row(&info, "Cookie"), config.cookie_name());
    assert_eq!(row(&info, "Permanent"), "no");
    assert_eq!(
        row(&info, "Session id"),
        "none yet: nothing is stored for this browser"
    );
    assert!(
        row(&info, "PERMANENT_SESSION_LIFETIME").starts_with(&format!(
            "{} s",
            config.permanent_session_lifetime().as_secs()
        )),
        "{info:?}"
    );
    assert_eq!(session_cookie(browser, config).await, None);
    screenshot(browser, artifacts, &shot("1-first-visit")).await;

    // Log in through the form.
    type_into(
        browser,
        "form[action='/login'] input[name='username']",
        "alice",
    )
    .await;
    let before = unix_now();
    follow(browser, "form[action='/login'] button[type='submit']").await;
    wait_for_status(browser, "Logged in as alice").await;
    let after = unix_now();
    assert_eq!(flashes(browser).await, ["Logged in as alice"]);
    assert_eq!(
        statuses(browser).await,
        [
            "Logged in as alice",
            "I do not know your pet's name.",
            "Visits counted: 0",
            "Your cart is empty."
        ]
    );
    let info = panel(browser).await;
    assert_eq!(row(&info, "User"), "alice");
    assert_eq!(row(&info, "Permanent"), "no");
    assert!(
        row(&info, "Expires").starts_with("when the browser closes"),
        "{info:?}"
    );
    let login_cookie = browser
        .get_named_cookie(config.cookie_name())
        .await
        .expect("a session cookie after logging in");
    assert_cookie(&login_cookie, config, false, (before, after), "after login");
    screenshot(browser, artifacts, &shot("2-logged-in")).await;

    // The tutorial's own pet name form, with "remember me" checked.
    follow(browser, "a[href='/petname']").await;
    wait_for_url(browser, &demo.url("/petname")).await;
    type_into(browser, "form[action='/petname'] input[name='pet']", "Rex").await;
    click(browser, "form[action='/petname'] input[name='remember']").await;
    assert!(
        find(browser, "input[name='remember']")
            .await
            .is_selected()
            .await
            .expect("the checkbox's state"),
        "remember me is checked"
    );
    screenshot(browser, artifacts, &shot("3-petname-form")).await;
    let remembered_at = unix_now();
    follow(browser, "form[action='/petname'] input[type='submit']").await;
    wait_for_status(browser, "Your pet's name is Rex.").await;
    let after = unix_now();
    assert_eq!(
        flashes(browser).await,
        [
            "Pet name saved",
            "Remembered: this session is now permanent"
        ]
    );
    let info = panel(browser).await;
    assert_eq!(row(&info, "User"), "alice");
    assert_eq!(row(&info, "Permanent"), "yes");
    let expires = row(&info, "Expires");
    assert!(
        expires.ends_with("after it was last used") && !expires.contains("browser closes"),
        "{info:?}"
    );
    let remembered = browser
        .get_named_cookie(config.cookie_name())
        .await
        .expect("a session cookie after remember");
    assert_cookie(
        &remembered,
        config,
        true,
        (remembered_at, after),
        "after remember",
    );
    assert_eq!(
        remembered.value(),
        login_cookie.value(),
        "the same session, now permanent"
    );
    screenshot(browser, artifacts, &shot("4-remembered")).await;

    // Two items in the cart: the form answers the cart as JSON.
    for (item, cart) in [
        ("apple", json!(["apple"])),
        ("banana", json!(["apple", "banana"])),
    ] {
        open(browser, &demo.url("/")).await;
        type_into(browser, "form[action='/cart'] input[name='item']", item).await;
        follow(browser, "form[action='/cart'] button[type='submit']").await;
        wait_for_url(browser, &demo.url("/cart")).await;
        assert_eq!(shown_json(browser).await, cart);
        screenshot(browser, artifacts, &shot(&format!("5-cart-{item}"))).await;
    }
    open(browser, &demo.url("/")).await;
    let after = unix_now();
    assert!(flashes(browser).await.is_empty());
    assert_eq!(
        statuses(browser).await,
        [
            "Logged in as alice",
            "Your pet's name is Rex.",
            "Visits counted: 0",
            "Your cart:"
        ]
    );
    assert_eq!(texts(browser, "ul.cart li").await, ["apple", "banana"]);
    let cookie = session_cookie(browser, config)
        .await
        .expect("the session cookie");
    // Last written when it was remembered, or since (the cart).
    assert_cookie(&cookie, config, true, (remembered_at, after), "with a cart");
    assert_eq!(cookie.value(), login_cookie.value());
    screenshot(browser, artifacts, &shot("6-cart")).await;

    // Log out: everything is forgotten, and the session cookie with it.
    follow(browser, "a[href='/logout']").await;
    wait_for_status(browser, "You are not logged in").await;
    assert_eq!(flashes(browser).await, ["Logged out"]);
    assert_eq!(
        statuses(browser).await,
        [
            "You are not logged in",
            "I do not know your pet's name.",
            "Visits counted: 0",
            "Your cart is empty."
        ]
    );
    let info = panel(browser).await;
    assert!(row(&info, "User").starts_with("none"), "{info:?}");
    // The session ended; the flash's fresh one emptied as the page showed it.
    assert_eq!(session_cookie(browser, config).await, None);
    screenshot(browser, artifacts, &shot("7-logged-out")).await;

    reload(browser).await;
    wait_for_status(browser, "You are not logged in").await;
    assert!(
        flashes(browser).await.is_empty(),
        "the flash was shown once"
    );
    assert_eq!(texts(browser, "ul.cart li").await, Vec::<String>::new());
    assert_eq!(session_cookie(browser, config).await, None);
    screenshot(browser, artifacts, &shot("8-reloaded")).await;
}

/// Scenario 2: the same user in two browsers (two profiles, two WebDriver
/// sessions); "log out everywhere" in one logs the other out, as its next
/// page load shows. The demo runs with its defaults.
#[tokio::test]
async fn log_out_everywhere_logs_out_the_other_browser() {
    require_browser();
    let artifacts = artifacts_dir();
    let demo = Demo::start("everywhere", &[], &artifacts);
    let mut driver = Driver::start("everywhere", &artifacts);
    let laptop = driver.open_browser("everywhere-laptop").await;
    let phone = driver.open_browser("everywhere-phone").await;
    tokio::time::timeout(
        SCENARIO_TIMEOUT,
        everywhere_scenario(&demo, &laptop, &phone, &artifacts),
    )
    .await
    .expect("the scenario finishes in time");
    laptop.close().await.expect("the laptop's browser closes");
    phone.close().await.expect("the phone's browser closes");
}

async fn everywhere_scenario(demo: &Demo, laptop: &Client, phone: &Client, artifacts: &Path) {
    let config = &demo.config;
    // The demo's default: server-side sessions are permanent.
    assert!(config.session_permanent());
    let user = "bob";
    let mut cookies = Vec::new();
    let mut fingerprints = Vec::new();
    for (name, browser) in [("laptop", laptop), ("phone", phone)] {
        open(browser, &demo.url("/")).await;
        assert_eq!(statuses(browser).await[0], "You are not logged in");
        type_into(
            browser,
            "form[action='/login'] input[name='username']",
            user,
        )
        .await;
        let before = unix_now();
        follow(browser, "form[action='/login'] button[type='submit']").await;
        wait_for_status(browser, &format!("Logged in as {user}")).await;
        let after = unix_now();
        assert_eq!(flashes(browser).await, [format!("Logged in as {user}")]);
        let info = panel(browser).await;
        assert_eq!(row(&info, "User"), user);
        assert_eq!(row(&info, "Permanent"), "yes");
        let fingerprint = row(&info, "Session id")
            .split_once(' ')
            .map(|(fingerprint, _)| fingerprint.to_owned())
            .unwrap_or_default();
        assert!(fingerprint.starts_with('#'), "{info:?}");
        fingerprints.push(fingerprint);
        let cookie = browser
            .get_named_cookie(config.cookie_name())
            .await
            .expect("a session cookie after logging in");
        assert_cookie(&cookie, config, true, (before, after), name);
        cookies.push(cookie.value().to_owned());
        screenshot(
            browser,
            artifacts,
            &format!("everywhere-1-{name}-logged-in"),
        )
        .await;
    }
    assert_ne!(cookies[0], cookies[1], "a session for each browser");
    assert_ne!(fingerprints[0], fingerprints[1]);

    // The laptop lists both sessions, then logs out everywhere.
    follow(laptop, "a[href='/sessions']").await;
    wait_for_status(
        laptop,
        &format!("{user} has 2 live sessions: one for each browser or device logged in."),
    )
    .await;
    // One row for each browser's session; the laptop's is "this device".
    let rows = texts(laptop, "tbody tr").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for fingerprint in &fingerprints {
        assert_eq!(
            rows.iter()
                .filter(|row| row.contains(fingerprint.as_str()))
                .count(),
            1,
            "{fingerprint} in {rows:?}"
        );
    }
    let this_device: Vec<&String> = rows
        .iter()
        .filter(|row| row.contains("this device"))
        .collect();
    assert_eq!(this_device.len(), 1, "{rows:?}");
    assert!(
        this_device[0].contains(fingerprints[0].as_str()),
        "{rows:?}"
    );
    screenshot(laptop, artifacts, "everywhere-2-laptop-sessions").await;
    follow(
        laptop,
        "form[action='/sessions/logout-everywhere'] button[type='submit']",
    )
    .await;
    wait_for_status(laptop, "You are not logged in").await;
    assert_eq!(
        flashes(laptop).await,
        ["Logged out everywhere: 2 sessions ended"]
    );
    assert_eq!(session_cookie(laptop, config).await, None);
    screenshot(laptop, artifacts, "everywhere-3-laptop-logged-out").await;

    // The phone still shows the page it loaded while logged in...
    assert_eq!(statuses(phone).await[0], format!("Logged in as {user}"));
    // ...and is logged out as soon as it reloads.
    reload(phone).await;
    wait_for_status(phone, "You are not logged in").await;
    assert!(
        flashes(phone).await.is_empty(),
        "{:?}",
        flashes(phone).await
    );
    let info = panel(phone).await;
    assert!(row(&info, "User").starts_with("none"), "{info:?}");
    screenshot(phone, artifacts, "everywhere-4-phone-reloaded").await;
    assert_eq!(statuses(phone).await[3], "Your cart is empty.");

    open(phone, &demo.url("/sessions")).await;
    wait_for_status(phone, "You are not logged in.").await;
    screenshot(phone, artifacts, "everywhere-5-phone-sessions").await;
}
