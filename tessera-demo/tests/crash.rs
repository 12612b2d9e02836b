//! `kill -9` under load: the real demo binary serves parallel writers, each
//! on its own server-side session (`POST /visits` and `POST /cart`), and is
//! killed with SIGKILL while they write, then restarted on the same store;
//! three times over, for SQLite (a temp file) and for PostgreSQL
//! (`TESSERA_TEST_POSTGRES_URL`, from `scripts/services.sh`).
//!
//! After every kill, before the restart, the store must be intact (SQLite's
//! `PRAGMA integrity_check` and foreign key check; PostgreSQL's tables
//! readable, no value without its session, the indexes verified by
//! `amcheck` where it can be installed) and must hold every acknowledged
//! write: a client's counter is its last acknowledged count, or one more if
//! an increment was in flight; its cart is every acknowledged item in order,
//! plus at most the item in flight. After the restart the demo must answer
//! exactly what the store holds.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{server_url, sqlite_url, TempDir, SESSION_VARS};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use sqlx::{Connection as _, Row as _};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

const BINARY: &str = env!("CARGO_BIN_EXE_tessera-demo");
const LISTENING: &str = "tessera-demo listening on ";
const SECRET_KEY: &str = "crash-test-secret-key-0123456789abcdef0123";

/// Parallel writers, each with a session of its own.
const CLIENTS: usize = 12;
/// Kills per store.
const ROUNDS: usize = 3;
/// Acknowledged writes every client has made in a round before the kill
/// (times the round's number), so that the kill lands while all of them
/// are writing, at a different point in each round.
const WRITES_BEFORE_KILL: usize = 10;
/// Bound on any wait: start-up, a request, the writers' progress.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Store {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Store {
    fn env(&self) -> [(&'static str, String); 2] {
        match self {
            Store::Sqlite(file) => [
                ("SESSION_TYPE", "sqlite".to_owned()),
                ("SESSION_STORE_URL", sqlite_url(file)),
            ],
            Store::Postgres(url) => [
                ("SESSION_TYPE", "postgres".to_owned()),
                ("SESSION_STORE_URL", url.clone()),
            ],
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

/// A running demo process, killed if the test fails while it runs.
struct Demo {
    child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
    url: String,
    log: PathBuf,
}

/// Starts the demo on a free port with sessions in `store`; its stderr goes
/// to `demo-<number>.log` in `dir`.
async fn start(dir: &Path, store: &Store, number: usize) -> Demo {
    let log = dir.join(format!("demo-{number}.log"));
    let stderr = std::fs::File::create(&log).expect("a log file");
    let mut command = Command::new(BINARY);
    command
        .args(["--port", "0"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true);
    for name in SESSION_VARS {
        command.env_remove(name);
    }
    command.env("SECRET_KEY", SECRET_KEY);
    command.envs(store.env());
    let mut child = command.spawn().expect("the demo starts");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let url = tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("readable stdout") {
            if let Some(url) = line.strip_prefix(LISTENING) {
                return url.to_owned();
            }
        }
        panic!("the demo exited early: {}", read_log(&log));
    })
    .await
    .expect("the demo prints its URL in time");
    Demo {
        child,
        _stdout: lines,
        url,
        log,
    }
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

impl Demo {
    /// SIGKILL (tokio's `start_kill`), and check that this is what ended it.
    async fn kill_9(mut self) {
        use std::os::unix::process::ExitStatusExt as _;
        self.child.start_kill().expect("SIGKILL sent");
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("the demo dies")
            .expect("an exit status");
        assert_eq!(
            status.signal(),
            Some(9),
            "the demo was killed by SIGKILL, not ended otherwise: {status:?}"
        );
    }

    /// SIGTERM, and expect a clean exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("still running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("the demo stops on SIGTERM")
            .expect("an exit status");
        assert!(
            status.success(),
            "graceful shutdown exits 0: {status:?}: {}",
            read_log(&self.log)
        );
    }
}

/// A write a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Write {
    Visit,
    Item(String),
}

/// One writer: its session, and what the demo acknowledged to it.
#[derive(Debug)]
struct Client {
    index: usize,
    /// The session id, which is the whole cookie value.
    id: String,
    /// The last acknowledged count.
    visits: u64,
    /// Every acknowledged item, in order.
    cart: Vec<String>,
    /// The write sent but not acknowledged when the demo died, if any.
    in_flight: Option<Write>,
    /// Why the client stopped writing.
    ended: String,
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// A new session for each client: `POST /visits` without a cookie.
async fn new_clients(base: &str) -> Vec<Client> {
    let http = http_client();
    let mut clients = Vec::with_capacity(CLIENTS);
    for index in 0..CLIENTS {
        let response = http
            .post(format!("{base}/visits"))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        let id = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|value| value.strip_prefix("session="))
            .and_then(|rest| rest.split(';').next())
            .expect("a session cookie")
            .to_owned();
        assert_eq!(id.len(), 43, "the cookie holds a session id: {id}");
        assert_eq!(response.text().await.expect("a body"), "1");
        clients.push(Client {
            index,
            id,
            visits: 1,
            cart: Vec::new(),
            in_flight: None,
            ended: String::new(),
        });
    }
    clients
}

/// Writes (a visit, an item, a visit, ...) until the demo stops answering;
/// checks every answer against what was acknowledged before. `Err` is an
/// answer no healthy demo gives.
async fn write_until_gone(
    mut client: Client,
    base: String,
    round: usize,
    progress: Arc<AtomicUsize>,
) -> Result<Client, String> {
    let http = http_client();
    let cookie = format!("session={}", client.id);
    let mut n = 0;
    loop {
        n += 1;
        let write = if n % 2 == 1 {
            Write::Visit
        } else {
            Write::Item(format!("c{}-r{round}-{n}", client.index))
        };
        let request = match &write {
            Write::Visit => http.post(format!("{base}/visits")),
            Write::Item(item) => http
                .post(format!("{base}/cart"))
                .form(&[("item", item.as_str())]),
        };
        client.in_flight = Some(write.clone());
        let response = match request.header(COOKIE, &cookie).send().await {
            Ok(response) => response,
            Err(error) => {
                client.ended = format!("request {n}: {error}");
                return Ok(client);
            }
        };
        let status = response.status();
        for set_cookie in response.headers().get_all(SET_COOKIE) {
            let set_cookie = set_cookie.to_str().unwrap_or_default();
            if !set_cookie.starts_with(&format!("{cookie};")) {
                return Err(format!(
                    "client {}: {write:?} moved the session: {set_cookie}",
                    client.index
                ));
            }
        }
        let body = match response.text().await {
            Ok(body) => body,
            Err(error) => {
                client.ended = format!("response {n}: {error}");
                return Ok(client);
            }
        };
        if status != StatusCode::OK {
            return Err(format!(
                "client {}: {write:?} answered {status}: {body}",
                client.index
            ));
        }
        match write {
            Write::Visit => {
                let count: u64 = body
                    .parse()
                    .map_err(|_| format!("client {}: not a count: {body:?}", client.index))?;
                if count != client.visits + 1 {
                    return Err(format!(
                        "client {}: the count went from {} to {count}",
                        client.index, client.visits
                    ));
                }
                client.visits = count;
            }
            Write::Item(item) => {
                let cart: Vec<String> = serde_json::from_str(&body)
                    .map_err(|_| format!("client {}: not a cart: {body:?}", client.index))?;
                client.cart.push(item);
                if cart != client.cart {
                    return Err(format!(
                        "client {}: the cart is {cart:?}, expected {:?}",
                        client.index, client.cart
                    ));
                }
            }
        }
        client.in_flight = None;
        progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs every client against the demo until each has made `writes`
/// acknowledged writes, then kills the demo with SIGKILL while they write,
/// and returns the clients as they stopped.
async fn load_and_kill(
    demo: Demo,
    clients: Vec<Client>,
    round: usize,
    writes: usize,
) -> Vec<Client> {
    let progress: Vec<Arc<AtomicUsize>> = (0..clients.len())
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    let tasks: Vec<JoinHandle<Result<Client, String>>> = clients
        .into_iter()
        .zip(&progress)
        .map(|(client, progress)| {
            tokio::spawn(write_until_gone(
                client,
                demo.url.clone(),
                round,
                progress.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    loop {
        if progress
            .iter()
            .all(|done| done.load(Ordering::Relaxed) >= writes)
        {
            break;
        }
        if let Some(task) = tasks.iter().position(JoinHandle::is_finished) {
            let log = read_log(&demo.log);
            let outcome = tasks
                .into_iter()
                .nth(task)
                .expect("the task")
                .await
                .expect("the writer does not panic");
            panic!("round {round}: a writer stopped before the kill: {outcome:?}\n{log}");
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "round {round}: the writers did not make {writes} writes each in time: {:?}",
            progress
                .iter()
                .map(|done| done.load(Ordering::Relaxed))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let log = demo.log.clone();
    demo.kill_9().await;
    let mut clients = Vec::with_capacity(tasks.len());
    for task in tasks {
        let client = tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("the writer notices the kill")
            .expect("the writer does not panic")
            .unwrap_or_else(|error| panic!("round {round}: {error}\n{}", read_log(&log)));
        clients.push(client);
    }
    clients
}

/// One session's `visits` and `cart` as the store holds them (tagged JSON
/// per key), by session id.
type Stored = Vec<(String, Option<u64>, Vec<String>)>;

fn parse_stored(rows: Vec<(String, String, String)>, clients: &[Client]) -> Stored {
    clients
        .iter()
        .map(|client| {
            let value = |key: &str| {
                rows.iter()
                    .find(|(id, k, _)| *id == client.id && k == key)
                    .map(|(_, _, value)| value.clone())
            };
            let visits = value("visits").map(|text| {
                text.parse::<u64>()
                    .unwrap_or_else(|_| panic!("client {}: visits {text:?}", client.index))
            });
            let cart = value("cart").map_or_else(Vec::new, |text| {
                serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("client {}: cart {text:?}", client.index))
            });
            (client.id.clone(), visits, cart)
        })
        .collect()
}

/// The SQLite file as the kill left it: intact, and the clients' values.
async fn check_sqlite(file: &Path, clients: &[Client]) -> Stored {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(false);
    let mut db = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("the file opens");
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut db)
        .await
        .expect("integrity_check runs");
    assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");
    let orphans = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut db)
        .await
        .expect("foreign_key_check runs");
    assert!(
        orphans.is_empty(),
        "{} values without their session",
        orphans.len()
    );
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM tessera_sessions")
        .fetch_one(&mut db)
        .await
        .expect("the sessions table is readable");
    assert!(sessions >= CLIENTS as i64, "{sessions} sessions");
    let mut rows = Vec::new();
    for client in clients {
        let values = sqlx::query(
            "SELECT session_id, key, value FROM tessera_session_values WHERE session_id = ?1",
        )
        .bind(&client.id)
        .fetch_all(&mut db)
        .await
        .expect("the values table is readable");
        for row in values {
            rows.push((row.get(0), row.get(1), row.get(2)));
        }
    }
    db.close().await.expect("closed");
    parse_stored(rows, clients)
}

/// The PostgreSQL tables as the kill left them: readable and consistent
/// (no value without its session, every index matching its table), and the
/// clients' values.
async fn check_postgres(url: &str, clients: &[Client]) -> Stored {
    let mut db = sqlx::PgConnection::connect(url)
        .await
        .expect("PostgreSQL answers");
    for table in ["tessera_sessions", "tessera_session_values"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut db)
            .await
            .unwrap_or_else(|error| panic!("{table} is readable: {error}"));
        assert!(rows >= CLIENTS as i64, "{table}: {rows} rows");
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tessera_session_values AS v
         WHERE NOT EXISTS (SELECT 1 FROM tessera_sessions AS s WHERE s.id = v.session_id)",
    )
    .fetch_one(&mut db)
    .await
    .expect("the join runs");
    assert_eq!(orphans, 0, "values without their session");
    // Every index entry points at its row and every row is in each index;
    // amcheck ships with PostgreSQL but needs a role allowed to install it.
    match sqlx::query("CREATE EXTENSION IF NOT EXISTS amcheck")
        .execute(&mut db)
        .await
    {
        Ok(_) => {
            let indexes: Vec<String> = sqlx::query_scalar(
                "SELECT c.relname::text FROM pg_index AS i
                 JOIN pg_class AS c ON c.oid = i.indexrelid
                 JOIN pg_am AS am ON am.oid = c.relam AND am.amname = 'btree'
                 WHERE i.indrelid IN ('tessera_sessions'::regclass,
                                      'tessera_session_values'::regclass)",
            )
            .fetch_all(&mut db)
            .await
            .expect("the catalog is readable");
            for index in ["tessera_sessions_pkey", "tessera_session_values_pkey"] {
                assert!(
                    indexes.iter().any(|name| name == index),
                    "{index} in {indexes:?}"
                );
            }
            for index in &indexes {
                // With `heapallindexed`, also that every row is in the index.
                sqlx::query("SELECT bt_index_check($1::regclass, true)::text")
                    .bind(index)
                    .fetch_one(&mut db)
                    .await
                    .unwrap_or_else(|error| panic!("index {index} is corrupt: {error}"));
            }
        }
        Err(error) => eprintln!("crash: indexes not checked (amcheck: {error})"),
    }
    let ids: Vec<String> = clients.iter().map(|client| client.id.clone()).collect();
    let rows = sqlx::query(
        "SELECT session_id, key, value FROM tessera_session_values WHERE session_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut db)
    .await
    .expect("the values table is readable");
    let rows = rows
        .into_iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    db.close().await.expect("closed");
    parse_stored(rows, clients)
}

/// Every acknowledged write is in `stored`, and nothing else but the write
/// in flight; returns how many writes in flight were applied.
fn check_acknowledged(store: &str, round: usize, clients: &[Client], stored: &Stored) -> usize {
    let mut applied = 0;
    for (client, (_, visits, cart)) in clients.iter().zip(stored) {
        let what = format!(
            "{store}, round {round}, client {} (stopped by: {}; in flight: {:?})",
            client.index, client.ended, client.in_flight
        );
        let visits = visits.unwrap_or_else(|| panic!("{what}: the session has no visits"));
        let visit_applied = client.in_flight == Some(Write::Visit) && visits == client.visits + 1;
        assert!(
            visits == client.visits || visit_applied,
            "{what}: visits is {visits}, acknowledged {}",
            client.visits
        );
        let item_applied = match &client.in_flight {
            Some(Write::Item(item)) => {
                cart.len() == client.cart.len() + 1
                    && cart.starts_with(&client.cart)
                    && cart.last() == Some(item)
            }
            _ => false,
        };
        assert!(
            *cart == client.cart || item_applied,
            "{what}: the cart is {cart:?}, acknowledged {:?}",
            client.cart
        );
        applied += usize::from(visit_applied || item_applied);
    }
    applied
}

/// After a restart the demo answers exactly what the store held; the
/// clients take that as their new starting point.
async fn check_served(base: &str, clients: &mut [Client], stored: &Stored) {
    let http = http_client();
    for (client, (_, visits, cart)) in clients.iter_mut().zip(stored) {
        let response = http
            .get(format!("{base}/api/session"))
            .header(COOKIE, format!("session={}", client.id))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        let session: serde_json::Value =
            serde_json::from_str(&response.text().await.expect("a body")).expect("JSON");
        assert_eq!(
            session["visits"].as_u64(),
            *visits,
            "client {}: {session}",
            client.index
        );
        let served: Vec<String> = match session.get("cart") {
            Some(cart) => serde_json::from_value(cart.clone()).expect("a list of strings"),
            None => Vec::new(),
        };
        assert_eq!(served, *cart, "client {}", client.index);
        client.visits = visits.expect("checked");
        client.cart = served;
        client.in_flight = None;
    }
}

async fn crash_and_restart(store: Store, dir: &Path) {
    let name = store.name();
    let mut demo = start(dir, &store, 0).await;
    let mut clients = new_clients(&demo.url).await;
    for round in 1..=ROUNDS {
        let acknowledged_before: usize = clients.iter().map(|c| c.cart.len()).sum::<usize>()
            + clients.iter().map(|c| c.visits as usize).sum::<usize>();
        clients = load_and_kill(demo, clients, round, WRITES_BEFORE_KILL * round).await;
        let stored = match &store {
            Store::Sqlite(file) => check_sqlite(file, &clients).await,
            Store::Postgres(url) => check_postgres(url, &clients).await,
        };
        let applied = check_acknowledged(name, round, &clients, &stored);
        let acknowledged: usize = clients.iter().map(|c| c.cart.len()).sum::<usize>()
            + clients.iter().map(|c| c.visits as usize).sum::<usize>();
        let in_flight = clients.iter().filter(|c| c.in_flight.is_some()).count();
        println!(
            "crash: {name}, round {round}: SIGKILL after {} acknowledged writes by {CLIENTS} \
             clients, all found after the restart; {in_flight} writes were in flight, \
             {applied} of them applied",
            acknowledged - acknowledged_before
        );
        demo = start(dir, &store, round).await;
        check_served(&demo.url, &mut clients, &stored).await;
    }
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_acknowledged_write_through_kill_9() {
    let dir = TempDir::new("crash-sqlite");
    let store = Store::Sqlite(dir.0.join("sessions.db"));
    crash_and_restart(store, &dir.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_every_acknowledged_write_through_kill_9() {
    let dir = TempDir::new("crash-postgres");
    let store = Store::Postgres(server_url("TESSERA_TEST_POSTGRES_URL"));
    crash_and_restart(store, &dir.0).await;
}
