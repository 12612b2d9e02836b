//! Runs the real `tessera sessions …` against real SQLite files, filled
//! through the library's `SqliteStore`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::Run;
use tessera::store::{Record, SessionId, SessionStore as _, SqliteStore};
use tessera::{tagged, Map, Value};

impl Run {
    /// Checks success with a clean stderr; returns stdout's lines.
    fn lines(&self) -> Vec<&str> {
        assert_eq!(self.status, Some(0), "stderr: {:?}", self.stderr);
        assert!(self.stderr.is_empty(), "stderr: {:?}", self.stderr);
        self.stdout.lines().collect()
    }

    /// The single stdout line of a success.
    fn line(&self) -> &str {
        let lines = self.lines();
        assert_eq!(lines.len(), 1, "expected one line: {:?}", self.stdout);
        lines[0]
    }

    /// Stdout of a success, as JSON.
    fn json(&self) -> serde_json::Value {
        self.lines();
        serde_json::from_str(&self.stdout).expect("stdout is JSON")
    }
}

/// Runs `tessera args…` in `dir` without SESSION_STORE_URL unless in `env`.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("SESSION_STORE_URL")
        .env_remove("SESSION_KEY_PREFIX")
        .env_remove("SESSION_SERIALIZATION_FORMAT")
        .env_remove("SESSION_COOKIE_NAME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    Run::from(command.output().expect("the tessera binary runs"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn rfc3339(seconds: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).expect("in range"))
        .expect("in range")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats")
}

/// A PostgreSQL database of the test's own on the tests' server, dropped
/// when the test is done.
struct ScratchDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    fn create(label: &str) -> Self {
        use sqlx::{Connection as _, Executor as _};
        let server_url = std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!("TESSERA_TEST_POSTGRES_URL is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
        });
        let name = format!("{label}_{}", std::process::id());
        let (base, _) = server_url.rsplit_once('/').expect("a database in the URL");
        let url = format!("{base}/{name}");
        runtime().block_on(async {
            let mut admin = sqlx::PgConnection::connect(&server_url)
                .await
                .expect("connect");
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create the database");
            admin.close().await.expect("close");
        });
        Self {
            server_url,
            name,
            url,
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        use sqlx::{Connection as _, Executor as _};
        runtime().block_on(async {
            let mut admin = sqlx::PgConnection::connect(&self.server_url)
                .await
                .expect("connect");
            admin
                .execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str())
                .await
                .expect("drop the database");
            admin.close().await.expect("close");
        });
    }
}

/// A runtime for one test. A store's connections belong to the runtime that
/// made them, so a test that uses one store twice keeps one runtime.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A fresh directory for one test, removed when the test passes.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sessions-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A SQLite store filled through the library.
struct Store {
    dir: TempDir,
    /// `sqlite:///…/sessions.db`.
    url: String,
    sessions: Vec<(SessionId, Record)>,
}

impl Store {
    fn new(name: &str, sessions: Vec<(SessionId, Record)>) -> Self {
        let dir = TempDir::new(name);
        let path = dir.0.join("sessions.db");
        runtime().block_on(async {
            let store = SqliteStore::open(&path).await.expect("the store opens");
            for (id, record) in &sessions {
                assert!(store.create(id, record).await.expect("create"));
            }
            store.close().await;
        });
        let url = format!("sqlite://{}", path.display());
        assert!(url.starts_with("sqlite:///"), "{url}");
        Self { dir, url, sessions }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--store", &self.url]);
        run_in(&self.dir.0, &all, &[])
    }

    /// The live sessions, in id order, of `user` if given.
    fn live(&self, user: Option<&str>) -> Vec<&(SessionId, Record)> {
        let now = now();
        let mut live: Vec<_> = self
            .sessions
            .iter()
            .filter(|(_, record)| record.is_live(now))
            .filter(|(_, record)| user.is_none() || record.user_id.as_deref() == user)
            .collect();
        live.sort_by(|a, b| a.0.cmp(&b.0));
        live
    }

    fn find(&self, pick: impl Fn(&Record) -> bool) -> &(SessionId, Record) {
        self.sessions
            .iter()
            .find(|(_, record)| pick(record))
            .expect("such a session")
    }
}

fn record(user: Option<&str>, created_at: u64, expires_at: u64, absolute: Option<u64>) -> Record {
    Record {
        data: Map::new(),
        user_id: user.map(str::to_owned),
        created_at,
        expires_at,
        absolute_expires_at: absolute,
    }
}

/// Alice: three live sessions (one with data, one with an absolute expiry)
/// and two dead ones (idle and absolute expiry); Bob: one live, one expired;
/// one live anonymous session.
fn two_users(name: &str) -> Store {
    let now = now();
    let mut data = Map::new();
    data.insert("user_id".into(), Value::from(42));
    data.insert("name".into(), Value::from("Zoë"));
    data.insert(
        "_flashes".into(),
        Value::List(vec![Value::tuple([
            Value::from("message"),
            Value::from("Hi"),
        ])]),
    );
    data.insert("raw".into(), Value::bytes(b"\x00\xff".to_vec()));
    let mut with_data = record(Some("alice"), now - 100, now + 3600, None);
    with_data.data = data;
    let sessions = [
        with_data,
        record(Some("alice"), now - 50, now + 7200, Some(now + 1800)),
        record(Some("alice"), now, now + 60, None),
        record(Some("alice"), now - 7200, now - 60, None),
        record(Some("alice"), now - 7200, now + 3600, Some(now - 1)),
        record(Some("bob"), now - 10, now + 3600, Some(now + 86_400)),
        record(Some("bob"), now - 7200, now - 1, None),
        record(None, now - 5, now + 600, None),
    ];
    Store::new(
        name,
        sessions
            .into_iter()
            .map(|record| (SessionId::generate(), record))
            .collect(),
    )
}

/// A generated id begins with '-' one time in 64: the commands take such a
/// value as the id, not as an unknown option. A user id may begin with '-'
/// too, and follows `--`: without it, it is a usage error, as a mistyped
/// option is (rather than a user of that name, whose sessions would be
/// revoked).
#[test]
fn ids_and_users_that_begin_with_a_hyphen() {
    let now = now();
    let ids = [
        "-dyHMCTGrZxkuCGcyazd2tNBuH3evj2QAMIK7UT8",
        "--json-looking-but-an-id-0123456789",
        "-h-a-session-id-not-the-help-flag",
    ]
    .map(|text| SessionId::parse(text).expect("a valid session id"));
    let store = Store::new(
        "hyphen",
        ids.iter()
            .map(|id| (id.clone(), record(Some("-dash"), now, now + 3600, None)))
            .collect(),
    );
    for id in &ids {
        let out = store.run(&["sessions", "show", id.as_str()]);
        assert_eq!(
            out.lines()[0].split_whitespace().collect::<Vec<_>>(),
            ["id:", id.as_str()]
        );
        assert!(out.stdout.contains("-dash"), "{}", out.stdout);
    }
    assert_eq!(
        store.run(&["sessions", "revoke", ids[0].as_str()]).line(),
        "revoked"
    );
    for mistyped in ["-dash", "--jsno", "--all"] {
        let out = store.run(&["sessions", "revoke-user", mistyped]);
        assert_eq!(out.status, Some(2), "{mistyped}: {}", out.stdout);
        assert!(
            out.stderr
                .contains(&format!("unexpected argument '{}", &mistyped[..2])),
            "{mistyped}: {}",
            out.stderr
        );
    }
    assert_eq!(
        run_in(
            &store.dir.0,
            &[
                "sessions",
                "revoke-user",
                "--store",
                &store.url,
                "--",
                "-dash"
            ],
            &[]
        )
        .line(),
        "2"
    );
    let listed = store.run(&["sessions", "list"]);
    assert!(listed.stdout.trim().is_empty(), "{}", listed.stdout);
}

/// A user named `-` is not taken for no user in plain output: `-` is no
/// user, a user id that could pass for it is quoted.
#[test]
fn a_user_named_dash_is_not_no_user() {
    let now = now();
    let store = Store::new(
        "user-dash",
        [None, Some("-"), Some("\"-\"")]
            .into_iter()
            .map(|user| (SessionId::generate(), record(user, now, now + 3600, None)))
            .collect(),
    );
    let mut users: Vec<String> = store
        .run(&["sessions", "list"])
        .lines()
        .into_iter()
        .map(|line| line.split('\t').nth(1).expect("a user column").to_owned())
        .collect();
    users.sort();
    assert_eq!(users, ["\"-\"", "\"\\\"-\\\"\"", "-"]);
    for (user, shown) in [(None, "-"), (Some("-"), "\"-\"")] {
        let (id, _) = store.find(|record| record.user_id.as_deref() == user);
        let out = store.run(&["sessions", "show", id.as_str()]);
        assert!(
            out.lines()
                .contains(&format!("user:             {shown}").as_str()),
            "{}",
            out.stdout
        );
    }
    // JSON needs no such care: null or the string.
    let listed = store.run(&["sessions", "list", "--json"]).json();
    let mut users: Vec<serde_json::Value> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|session| session["user_id"].clone())
        .collect();
    users.sort_by_key(ToString::to_string);
    assert_eq!(
        users,
        [
            serde_json::json!("-"),
            serde_json::json!("\"-\""),
            serde_json::Value::Null
        ]
    );
}

#[test]
fn list_prints_live_sessions_in_id_order() {
    let store = two_users("list-plain");
    let out = store.run(&["sessions", "list"]);
    let lines = out.lines();
    let live = store.live(None);
    assert_eq!(live.len(), 5);
    assert_eq!(lines.len(), 5, "{lines:?}");
    for (line, (id, record)) in lines.iter().zip(&live) {
        let fields: Vec<&str> = line.split('\t').collect();
        let expires = record
            .absolute_expires_at
            .map_or(record.expires_at, |at| at.min(record.expires_at));
        assert_eq!(
            fields,
            [
                id.as_str(),
                record.user_id.as_deref().unwrap_or("-"),
                &rfc3339(record.created_at),
                &rfc3339(expires),
            ]
        );
    }
    for (id, record) in &store.sessions {
        let listed = out.stdout.contains(id.as_str());
        assert_eq!(listed, record.is_live(now()), "{record:?}");
    }
}

#[test]
fn list_filters_by_user() {
    let store = two_users("list-user");
    for user in ["alice", "bob"] {
        let out = store.run(&["sessions", "list", "--user", user]);
        let ids: Vec<&str> = out
            .lines()
            .iter()
            .map(|line| line.split('\t').next().expect("an id"))
            .collect();
        let expected: Vec<&str> = store
            .live(Some(user))
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(ids, expected, "{user}");
        assert!(out.lines().iter().all(|line| line.contains(user)));
    }
    let out = store.run(&["sessions", "list", "--user", "nobody"]);
    assert!(out.lines().is_empty());
    let out = store.run(&["sessions", "list", "--user", "nobody", "--json"]);
    assert_eq!(out.json(), serde_json::json!([]));
}

#[test]
fn list_json_is_an_array_of_sessions() {
    let store = two_users("list-json");
    let out = store.run(&["sessions", "list", "--json"]);
    let expected: Vec<serde_json::Value> = store
        .live(None)
        .iter()
        .map(|(id, record)| {
            serde_json::json!({
                "id": id.as_str(),
                "user_id": record.user_id,
                "created_at": record.created_at,
                "expires_at": record.expires_at,
                "absolute_expires_at": record.absolute_expires_at,
            })
        })
        .collect();
    assert_eq!(out.json(), serde_json::Value::Array(expected));
    // The id comes first in each object.
    assert!(out
        .stdout
        .lines()
        .nth(1)
        .expect("a session")
        .starts_with("{\"id\":"));

    let out = store.run(&["sessions", "list", "--json", "--user", "bob"]);
    let json = out.json();
    let sessions = json.as_array().expect("an array");
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["user_id"], "bob");
}

#[test]
fn show_prints_the_record_and_its_tagged_data() {
    let store = two_users("show");
    let (id, record) = store.find(|record| !record.data.is_empty());
    let out = store.run(&["sessions", "show", id.as_str()]);
    let fields: Vec<(&str, &str)> = out
        .lines()
        .into_iter()
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("name: value");
            (name, value.trim_start())
        })
        .collect();
    let data = tagged::map_to_string(&record.data);
    assert!(data.contains(r#"{" t":["message","Hi"]}"#), "{data}");
    assert!(data.contains(r#""Zo\u00eb""#), "{data}");
    assert_eq!(
        fields,
        [
            ("id", id.as_str()),
            ("user", "alice"),
            ("created", &rfc3339(record.created_at)),
            ("expires", &rfc3339(record.expires_at)),
            ("absolute expiry", "none"),
            ("data", &data),
        ]
    );
    // `inspect`, as the top-level help words it, is the same command.
    assert_eq!(
        store.run(&["sessions", "inspect", id.as_str()]).stdout,
        out.stdout
    );

    let out = store.run(&["sessions", "show", "--json", id.as_str()]);
    assert_eq!(
        out.json(),
        serde_json::json!({
            "id": id.as_str(),
            "user_id": "alice",
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "absolute_expires_at": null,
            "data": serde_json::from_str::<serde_json::Value>(&data).expect("JSON"),
        })
    );
    // The tagged JSON exactly as Flask writes it, ASCII escapes included.
    assert!(out.stdout.contains(&format!("\"data\":{data}}}")));

    let (id, record) = store.find(|record| {
        record.absolute_expires_at.is_some()
            && record.is_live(now())
            && record.user_id.as_deref() == Some("alice")
    });
    let out = store.run(&["sessions", "show", id.as_str()]);
    let absolute = rfc3339(record.absolute_expires_at.expect("set"));
    assert!(out
        .lines()
        .contains(&format!("absolute expiry:  {absolute}").as_str()));
    assert!(
        out.stdout.ends_with("data:             {}\n"),
        "{:?}",
        out.stdout
    );
}

#[test]
fn show_refuses_unknown_expired_and_malformed_ids() {
    let store = two_users("show-unknown");
    let unknown = SessionId::generate();
    let (expired, _) = store.find(|record| !record.is_live(now()));
    for id in [unknown.as_str(), expired.as_str()] {
        for json in [false, true] {
            let mut args = vec!["sessions", "show", id];
            if json {
                args.push("--json");
            }
            assert_eq!(
                store.run(&args).refusal(),
                "error: no live session with that id"
            );
        }
    }
    let reason = store
        .run(&["sessions", "show", "not an id"])
        .refusal()
        .to_owned();
    assert!(reason.starts_with("error: not a session id"), "{reason}");
    // A signed id is looked up by its id: an unknown one is still unknown.
    let signed = format!("{}.c2lnbmF0dXJl", unknown.as_str());
    assert_eq!(
        store.run(&["sessions", "show", &signed]).refusal(),
        "error: no live session with that id"
    );
}

/// An empty user is refused by `list --user` as by `revoke-user`, rather
/// than listing nothing and exiting 0.
#[test]
fn an_empty_user_is_refused() {
    let store = two_users("empty-user");
    for command in [
        &["sessions", "list", "--user", ""][..],
        &["sessions", "revoke-user", ""],
    ] {
        let reason = store.run(command).refusal().to_owned();
        assert!(
            reason.contains("the user is empty"),
            "{command:?}: {reason}"
        );
    }
}

/// What users paste for an id: the cookie as a pair, a header, or signed
/// as with SESSION_USE_SIGNER (the signature unchecked: the id is looked
/// up, nothing more). A cookie holding the session itself, several ids or
/// none are refused with a reason.
#[test]
fn show_and_revoke_take_a_pasted_cookie() {
    let store = two_users("show-pasted");
    let (id, _) = store.find(|record| !record.data.is_empty());
    let id = id.as_str();
    let expected = store.run(&["sessions", "show", "--json", id]).json();
    for pasted in [
        format!("session={id}"),
        format!("  session={id}\n"),
        format!("Cookie: theme=dark; session={id}; lang=fr"),
        format!(
            "Set-Cookie: session={id}; Expires=Tue, 14 Nov 2023 22:13:20 GMT; HttpOnly; Path=/"
        ),
        format!("{id}.c2lnbmF0dXJl"),
        format!("session={id}.Zm9v-_bar"),
        format!("Cookie: session={id}.c2ln; session={id}"),
        format!("> Cookie: session={id}\n< HTTP/1.1 200 OK"),
    ] {
        let out = store.run(&["sessions", "show", "--json", &pasted]);
        assert_eq!(out.json(), expected, "{pasted:?}");
    }
    // Another cookie name, from --cookie-name or the application's variable.
    let pasted = format!("Cookie: session=junk; sid={id}");
    let out = store.run(&[
        "sessions",
        "show",
        "--json",
        "--cookie-name",
        "sid",
        &pasted,
    ]);
    assert_eq!(out.json(), expected);
    let args = ["sessions", "show", "--json", &pasted, "--store", &store.url];
    let out = run_in(&store.dir.0, &args, &[("SESSION_COOKIE_NAME", "sid")]);
    assert_eq!(out.json(), expected);
    // An empty or blank variable counts as unset, as in the application; a
    // name the application refuses is refused naming the variable.
    let pasted = format!("Cookie: a=1; session={id}");
    let args = ["sessions", "show", "--json", &pasted, "--store", &store.url];
    for unset in ["", "  "] {
        let out = run_in(&store.dir.0, &args, &[("SESSION_COOKIE_NAME", unset)]);
        assert_eq!(out.json(), expected, "{unset:?}");
    }
    let out = run_in(&store.dir.0, &args, &[("SESSION_COOKIE_NAME", "session ")]);
    let reason = out.refusal();
    assert!(
        reason.contains(r#"invalid SESSION_COOKIE_NAME="session ""#),
        "{reason}"
    );

    let other = SessionId::generate();
    for (pasted, says) in [
        (
            "eyJhIjoxfQ.aw80hg.c2lnbmF0dXJlYWJjZGVm".to_owned(),
            "cookie that holds the session itself",
        ),
        (
            format!("session={id}; session={}", other.as_str()),
            "2 different session ids",
        ),
        (
            "Cookie: theme=dark".to_owned(),
            "no cookie named \"session\"",
        ),
        ("session=not an id".to_owned(), "not a session id"),
        ("".to_owned(), "not a session id"),
        // One run too long for an id: what an encrypted cookie is.
        (
            "x".repeat(300),
            "300 characters, where a session id has at most 256",
        ),
    ] {
        let reason = store
            .run(&["sessions", "show", &pasted])
            .refusal()
            .to_owned();
        assert!(reason.contains(says), "{pasted:?}: {reason}");
    }

    // revoke reads the id the same way.
    let (id, _) = store.find(|record| record.user_id.as_deref() == Some("bob"));
    let pasted = format!("Set-Cookie: session={}.c2ln; HttpOnly", id.as_str());
    assert_eq!(
        store.run(&["sessions", "revoke", &pasted]).line(),
        "revoked"
    );
    assert_eq!(
        store.run(&["sessions", "show", id.as_str()]).refusal(),
        "error: no live session with that id"
    );
}

#[test]
fn revoke_deletes_one_session() {
    let store = two_users("revoke");
    let live = store.live(Some("alice"));
    let (id, _) = live[0];
    assert_eq!(
        store.run(&["sessions", "revoke", id.as_str()]).line(),
        "revoked"
    );
    assert_eq!(
        store.run(&["sessions", "show", id.as_str()]).refusal(),
        "error: no live session with that id"
    );
    let reason = store
        .run(&["sessions", "revoke", id.as_str()])
        .refusal()
        .to_owned();
    assert_eq!(reason, "error: no live session with that id");
    let out = store.run(&["sessions", "list"]);
    assert_eq!(out.lines().len(), 4);
    assert!(!out.stdout.contains(id.as_str()));

    let (other, _) = live[1];
    let out = store.run(&["sessions", "revoke", "--json", other.as_str()]);
    assert_eq!(out.json(), serde_json::json!({"revoked": 1}));
    let reason = store
        .run(&["sessions", "revoke", SessionId::generate().as_str()])
        .refusal()
        .to_owned();
    assert_eq!(reason, "error: no live session with that id");
}

/// The `-shm` file (the WAL's index) deleted while an application's store
/// has the file open, and `tessera sessions revoke` run meanwhile: it makes
/// a new index of its own. The application's store stops (it would
/// overwrite the command's writes with its stale index) and, closed at
/// shutdown, leaves the log for the next process to read whole rather than
/// checkpointing it with its stale index and deleting it, which lost the
/// revocation. Its other session stays, as written before.
#[test]
fn a_revocation_made_while_the_shm_file_was_gone_stands() {
    let dir = TempDir::new("shm-gone");
    let path = dir.0.join("sessions.db");
    let url = format!("sqlite://{}", path.display());
    let now = now();
    let (revoked, kept) = (SessionId::generate(), SessionId::generate());
    let runtime = runtime();
    let store = runtime.block_on(async {
        let store = SqliteStore::open(&path).await.expect("the store opens");
        for id in [&revoked, &kept] {
            let record = record(Some("alice"), now, now + 3600, None);
            assert!(store.create(id, &record).await.expect("create"));
        }
        store
    });
    let shm = dir.0.join("sessions.db-shm");
    std::fs::remove_file(&shm).expect("the -shm file is there");
    let out = run_in(
        &dir.0,
        &["sessions", "revoke", revoked.as_str(), "--store", &url],
        &[],
    );
    assert_eq!(out.line(), "revoked");
    // Reads check the files at most every 100 ms.
    std::thread::sleep(std::time::Duration::from_millis(150));
    runtime.block_on(async {
        let refused = store.load(&kept, now).await;
        assert!(
            matches!(refused, Err(tessera::store::StoreError::Unavailable(_))),
            "{refused:?}"
        );
        store.close().await;
    });
    drop(store);
    // Another process, as the application restarted: in this one the
    // connections left open keep the stale index, which SQLite shares
    // among a process's connections to one file.
    let show = |id: &SessionId| {
        run_in(
            &dir.0,
            &["sessions", "show", id.as_str(), "--store", &url],
            &[],
        )
    };
    assert_eq!(
        show(&revoked).refusal(),
        "error: no live session with that id",
        "the revocation stands"
    );
    let out = show(&kept);
    assert!(out.stdout.contains(kept.as_str()), "{}", out.stderr);
}

/// An expired session kept until the sweep is over already: revoking it
/// answers as `show` does (and as Redis, which drops it at expiry), and the
/// record goes.
#[test]
fn revoke_of_an_expired_session_finds_no_live_one_and_removes_it() {
    let store = two_users("revoke-expired");
    let (expired, _) = store.find(|record| !record.is_live(now()));
    let reason = store
        .run(&["sessions", "revoke", expired.as_str()])
        .refusal()
        .to_owned();
    assert_eq!(reason, "error: no live session with that id");
    // Three dead sessions before, two now: the revoked one was removed.
    let out = store.run(&["sessions", "purge-expired", "--json"]);
    assert_eq!(out.json(), serde_json::json!({"purged": 2}));
}

#[test]
fn revoke_user_deletes_all_of_one_users_sessions() {
    let store = two_users("revoke-user");
    let bob_before = store.run(&["sessions", "list", "--user", "bob"]).stdout;
    // Three live sessions, counted, and two expired ones, revoked as well.
    assert_eq!(store.run(&["sessions", "revoke-user", "alice"]).line(), "3");
    assert!(store
        .run(&["sessions", "list", "--user", "alice"])
        .lines()
        .is_empty());
    assert_eq!(
        store.run(&["sessions", "list", "--user", "bob"]).stdout,
        bob_before
    );
    assert_eq!(store.run(&["sessions", "list"]).lines().len(), 2);
    let out = store.run(&["sessions", "revoke-user", "alice", "--json"]);
    assert_eq!(out.json(), serde_json::json!({"revoked": 0}));
    let out = store.run(&["sessions", "revoke-user", "bob", "--json"]);
    assert_eq!(out.json(), serde_json::json!({"revoked": 1}));
}

#[test]
fn purge_expired_deletes_only_dead_sessions() {
    let store = two_users("purge");
    let before = store.run(&["sessions", "list", "--json"]).stdout;
    // Three dead sessions, two at a time.
    let out = store.run(&["sessions", "purge-expired", "--batch", "2"]);
    assert_eq!(out.line(), "3");
    assert_eq!(store.run(&["sessions", "list", "--json"]).stdout, before);
    let out = store.run(&["sessions", "purge-expired", "--json"]);
    assert_eq!(out.json(), serde_json::json!({"purged": 0}));
    // The dead ones are gone, not just hidden: revoking one finds nothing.
    let (expired, _) = store.find(|record| !record.is_live(now()));
    store
        .run(&["sessions", "revoke", expired.as_str()])
        .refusal();
}

#[test]
fn purge_expired_json() {
    let store = two_users("purge-json");
    let out = store.run(&["sessions", "purge-expired", "--json", "--batch", "1"]);
    assert_eq!(out.json(), serde_json::json!({"purged": 3}));
}

#[test]
fn many_sessions_are_paged_through() {
    let now = now();
    let users = ["alice", "bob", "carol"];
    let sessions: Vec<(SessionId, Record)> = (0..4500u64)
        .map(|i| {
            let user = users[(i % 3) as usize];
            // A thousand of Alice's sessions are expired.
            let expires_at = if i % 3 == 0 && i % 9 != 0 {
                now - 1
            } else {
                now + 3600
            };
            let record = record(Some(user), now - i, expires_at, None);
            (SessionId::generate(), record)
        })
        .collect();
    let store = Store::new("many", sessions);
    let expected: Vec<String> = store
        .live(None)
        .iter()
        .map(|(id, _)| id.as_str().to_owned())
        .collect();
    assert_eq!(expected.len(), 3500);

    for batch in ["1000", "7", "3500"] {
        let out = store.run(&["sessions", "list", "--batch", batch]);
        let ids: Vec<&str> = out
            .lines()
            .iter()
            .map(|line| line.split('\t').next().expect("an id"))
            .collect();
        assert_eq!(ids, expected, "batch {batch}");
    }
    let json = store.run(&["sessions", "list", "--json"]).json();
    let ids: Vec<&str> = json
        .as_array()
        .expect("an array")
        .iter()
        .map(|session| session["id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids, expected);
    let out = store.run(&["sessions", "list", "--user", "alice"]);
    assert_eq!(out.lines().len(), store.live(Some("alice")).len());

    let out = store.run(&["sessions", "purge-expired"]);
    assert_eq!(out.line(), "1000");
    let out = store.run(&["sessions", "list"]);
    assert_eq!(out.lines().len(), 3500);
}

#[test]
fn a_missing_database_is_not_created() {
    let dir = TempDir::new("missing");
    let path = dir.0.join("absent").join("sessions.db");
    let url = format!("sqlite://{}", path.display());
    for command in ["list", "purge-expired"] {
        let out = run_in(&dir.0, &["sessions", command, "--store", &url], &[]);
        let reason = out.refusal();
        assert!(
            reason.starts_with("error: no session store at "),
            "{reason}"
        );
        assert!(reason.contains("sessions.db"), "{reason}");
    }
    // Relative to the current directory.
    let out = run_in(
        &dir.0,
        &["sessions", "list", "--store", "sqlite://x.db"],
        &[],
    );
    assert!(out.refusal().contains("no session store at"));
    assert!(!path.exists());
    assert!(!dir.0.join("absent").exists());
    assert!(!dir.0.join("x.db").exists());
    // A directory is no database either.
    let url = format!("sqlite://{}", dir.0.display());
    let out = run_in(&dir.0, &["sessions", "list", "--store", &url], &[]);
    assert!(out.refusal().contains("no session store at"));
}

#[test]
fn bad_urls_are_refused_with_the_supported_ones() {
    let dir = TempDir::new("bad-url");
    for (url, says) in [
        (
            "mysql://db/sessions",
            "unsupported session store URL scheme mysql://",
        ),
        ("sessions.db", "must be given as a URL"),
        ("sqlite://", "names no file"),
        ("sqlite:///", "names no file"),
    ] {
        let out = run_in(&dir.0, &["sessions", "list", "--store", url], &[]);
        let reason = out.refusal();
        assert!(reason.contains(says), "{url}: {reason}");
        assert!(reason.contains("sqlite://"), "{url}: {reason}");
        assert!(!reason.contains("hunter2"), "{reason}");
    }
    // Supported stores that cannot be reached: one line, exit 1, and the
    // password in the URL is never shown.
    for url in [
        "redis://:hunter2@127.0.0.1:1/0",
        "postgres://app:hunter2@127.0.0.1:1/app",
    ] {
        let out = run_in(&dir.0, &["sessions", "list", "--store", url], &[]);
        let reason = out.refusal();
        assert!(reason.contains("unavailable"), "{url}: {reason}");
        assert!(!reason.contains("hunter2"), "{reason}");
    }
    let out = run_in(
        &dir.0,
        &["sessions", "list", "--store", "sqlite://s.db?mode=ro"],
        &[],
    );
    out.refusal();
    // A file that is no SQLite database: one line, exit 1.
    std::fs::write(
        dir.0.join("junk.db"),
        "this is not a database, it is text".repeat(200),
    )
    .expect("written");
    let out = run_in(
        &dir.0,
        &["sessions", "list", "--store", "sqlite://junk.db"],
        &[],
    );
    let reason = out.refusal();
    assert!(reason.contains("junk.db"), "{reason}");
    // No --store and no SESSION_STORE_URL, or either given blank: a usage
    // error naming both.
    for (args, env) in [
        (&["sessions", "list"][..], &[][..]),
        (&["sessions", "list", "--store", " "], &[]),
        (&["sessions", "list", "--store", ""], &[]),
        (&["sessions", "list"], &[("SESSION_STORE_URL", "")]),
    ] {
        let out = run_in(&dir.0, args, env);
        assert_eq!(out.status, Some(2), "{args:?} {env:?}: {:?}", out.stderr);
        assert!(out.stderr.contains("--store"), "{:?}", out.stderr);
        assert!(out.stderr.contains("SESSION_STORE_URL"), "{:?}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{:?}", out.stderr);
    }
}

/// A PostgreSQL URL that sqlx refuses: its reason once, without the "error
/// with configuration: " that sqlx writes once for each layer wrapping it.
#[test]
fn a_bad_postgres_url_parameter_is_named_once() {
    let dir = TempDir::new("bad-postgres-parameter");
    for (query, says) in [
        ("sslmode=bogus", r#"unknown value "bogus" for `ssl_mode`"#),
        ("port=abc", "its port parameter is not a whole number"),
    ] {
        let url = format!("postgres://app:hunter2@127.0.0.1:1/app?{query}");
        let out = run_in(&dir.0, &["sessions", "list", "--store", &url], &[]);
        let reason = out.refusal();
        assert!(reason.contains(says), "{query}: {reason}");
        assert!(
            reason.contains("not a PostgreSQL session store URL"),
            "{query}: {reason}"
        );
        assert!(
            !reason.contains("error with configuration"),
            "{query}: {reason}"
        );
        assert!(!reason.contains("hunter2"), "{reason}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = TempDir::new("usage");
    let env = [("SESSION_STORE_URL", "sqlite://absent.db")];
    for args in [
        &["sessions"][..],
        &["sessions", "frobnicate"],
        &["sessions", "show"],
        &["sessions", "revoke"],
        &["sessions", "revoke-user"],
        &["sessions", "list", "--batch", "0"],
        &["sessions", "purge-expired", "--batch", "0"],
        &["sessions", "purge-expired", "--batch", "many"],
    ] {
        let out = run_in(&dir.0, args, &env);
        assert_eq!(out.status, Some(2), "{args:?}: {:?}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
    }
    assert!(!dir.0.join("absent.db").exists());
}

#[test]
fn the_store_comes_from_session_store_url() {
    let store = two_users("env");
    let expected = store.run(&["sessions", "list"]).stdout;
    let env = [("SESSION_STORE_URL", store.url.as_str())];
    let out = run_in(&store.dir.0, &["sessions", "list"], &env);
    assert_eq!(out.lines().len(), 5);
    assert_eq!(out.stdout, expected);
    // Relative to the current directory.
    let out = run_in(
        &store.dir.0,
        &["sessions", "list"],
        &[("SESSION_STORE_URL", "sqlite://sessions.db")],
    );
    assert_eq!(out.stdout, expected);
    // --store wins.
    let out = run_in(
        &store.dir.0,
        &["sessions", "list", "--store", "sqlite://elsewhere.db"],
        &env,
    );
    assert!(out.refusal().contains("elsewhere.db"));
    // The variable is used as it is, as the application uses it, which
    // refuses a SQLite URL with a blank before it; blanks around the
    // option's value are dropped.
    let padded = format!(" {} ", store.url);
    let out = run_in(
        &store.dir.0,
        &["sessions", "list"],
        &[("SESSION_STORE_URL", padded.as_str())],
    );
    let reason = out.refusal();
    assert!(
        reason.contains("is not a SQLite session store URL: it does not start with sqlite://"),
        "{reason}"
    );
    let out = run_in(&store.dir.0, &["sessions", "list", "--store", &padded], &[]);
    assert_eq!(out.stdout, expected);
}

/// SESSION_SERIALIZATION_FORMAT only means something for Redis: with a
/// SQLite store the command works and says it ignored it; a value the
/// application would refuse is still refused.
#[test]
fn a_serialization_format_is_ignored_with_a_word_for_sqlite() {
    let store = two_users("format");
    let expected = store.run(&["sessions", "list"]).stdout;
    let list_with = |format: &str| {
        run_in(
            &store.dir.0,
            &["sessions", "list", "--store", &store.url],
            &[("SESSION_SERIALIZATION_FORMAT", format)],
        )
    };
    let out = list_with("msgpack");
    assert_eq!(out.status, Some(0), "{:?}", out.stderr);
    assert_eq!(out.stdout, expected);
    assert!(
        out.stderr.contains(
            "warning: SESSION_SERIALIZATION_FORMAT=msgpack is ignored: only a Redis store"
        ) && out.stderr.contains("SESSION_TYPE=sqlite"),
        "{:?}",
        out.stderr
    );
    // Blank counts as unset, as in the application: no word.
    let out = list_with(" ");
    assert_eq!(out.stdout, expected);
    assert!(
        !out.stderr.contains("SESSION_SERIALIZATION_FORMAT"),
        "{:?}",
        out.stderr
    );
    let out = list_with("yaml");
    assert!(
        out.refusal()
            .contains(r#"invalid SESSION_SERIALIZATION_FORMAT="yaml""#),
        "{:?}",
        out.stderr
    );
}

#[test]
fn help_has_examples() {
    let dir = TempDir::new("help");
    for args in [
        &["sessions", "--help"][..],
        &["sessions", "list", "--help"],
        &["sessions", "show", "--help"],
        &["sessions", "revoke", "--help"],
        &["sessions", "revoke-user", "--help"],
        &["sessions", "purge-expired", "--help"],
    ] {
        let out = run_in(
            &dir.0,
            args,
            &[("SESSION_STORE_URL", "redis://:hunter2@h/0")],
        );
        assert_eq!(out.status, Some(0), "{args:?}");
        assert!(out.stdout.contains("Example"), "{args:?}");
        assert!(out.stdout.contains("sqlite://"), "{args:?}");
        assert!(!out.stdout.contains("hunter2"), "{args:?}");
    }
    let out = run_in(&dir.0, &["--help"], &[]);
    assert!(out.stdout.contains("sessions"));
}

/// The CLI takes every URL the application takes for Redis: `valkey://`
/// here (and `unix://`, `valkey+unix://`, per the unit test of schemes).
/// It refused `valkey://` and `unix://` as unsupported schemes.
#[test]
fn valkey_urls_reach_redis() {
    use tessera::store::{RedisStore, SessionId, SessionStore};
    let url = std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TESSERA_TEST_REDIS_URL is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
    });
    let valkey = url.replacen("redis://", "valkey://", 1);
    assert_ne!(valkey, url);
    let prefix = format!("cli-valkey-{}:", std::process::id());
    let store = RedisStore::new(&url)
        .expect("a redis URL")
        .with_prefix(&prefix);
    let id = SessionId::generate();
    let now = now();
    let runtime = runtime();
    runtime.block_on(async {
        assert!(store
            .create(&id, &record(Some("vera"), now, now + 3600, None))
            .await
            .expect("create"));
    });
    let listed = run_in(
        &std::env::temp_dir(),
        &["sessions", "list", "--store", &valkey],
        &[("SESSION_KEY_PREFIX", &prefix)],
    );
    assert!(
        listed.line().starts_with(id.as_str()),
        "{:?}",
        listed.stdout
    );
    runtime.block_on(async {
        assert!(store.delete(&id).await.expect("delete"));
    });
}

/// A session only Flask-Session has written has no creation time in its
/// layout: `show` says it is unknown (JSON null) instead of giving the
/// moment of the query; one tessera wrote, even this very second, keeps
/// its own.
#[test]
fn show_says_a_flask_session_only_creation_time_is_unknown() {
    use tessera::store::flask_format::SerializationFormat;
    use tessera::store::FlaskSessionRedisStore;
    let url = std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TESSERA_TEST_REDIS_URL is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
    });
    let dir = TempDir::new("flask-session-created");
    let prefix = format!("cli-fs-created-{}:", SessionId::generate().fingerprint());
    let theirs = SessionId::generate();
    let ours = SessionId::generate();
    let older = SessionId::generate();
    let created = now();
    runtime().block_on(async {
        let store = FlaskSessionRedisStore::new(&url, SerializationFormat::Msgpack)
            .expect("a redis URL")
            .with_prefix(prefix.clone());
        let mut data = Map::new();
        data.insert("username".into(), Value::from("bob"));
        let record = Record {
            data,
            ..record(Some("bob"), created, created + 600, None)
        };
        assert!(store.create(&ours, &record).await.expect("create"));
        let earlier = Record {
            created_at: created - 100,
            ..record.clone()
        };
        assert!(store.create(&older, &earlier).await.expect("create"));
        let mut conn = ::redis::Client::open(url.as_str())
            .expect("a client")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection");
        // What Flask-Session writes: the msgpack value alone.
        let _: () = ::redis::cmd("SET")
            .arg(format!("{prefix}{}", theirs.as_str()))
            .arg(&b"\x81\xa8username\xa3bob"[..])
            .arg("EX")
            .arg(600)
            .query_async(&mut conn)
            .await
            .expect("a Flask-Session value");
    });
    let env = [
        ("SESSION_KEY_PREFIX", prefix.as_str()),
        ("SESSION_SERIALIZATION_FORMAT", "msgpack"),
    ];
    let show = |id: &SessionId, json: bool| {
        let mut args = vec!["sessions", "show", id.as_str(), "--store", &url];
        if json {
            args.push("--json");
        }
        run_in(&dir.0, &args, &env)
    };
    let json = show(&theirs, true).json();
    assert_eq!(json["created_at"], serde_json::Value::Null, "{json}");
    assert_eq!(json["data"], serde_json::json!({"username": "bob"}));
    let plain = show(&theirs, false);
    assert!(
        plain
            .lines()
            .iter()
            .any(|line| line.starts_with("created:          unknown")),
        "{}",
        plain.stdout
    );
    let json = show(&ours, true).json();
    assert_eq!(json["created_at"], serde_json::json!(created), "{json}");
    assert!(show(&ours, false)
        .lines()
        .contains(&format!("created:          {}", rfc3339(created)).as_str()));
    // The listing says so too, as JSON null.
    let listed = run_in(
        &dir.0,
        &["sessions", "list", "--json", "--store", &url],
        &env,
    )
    .json();
    let created_of = |id: &SessionId| {
        listed
            .as_array()
            .expect("an array")
            .iter()
            .find(|session| session["id"] == id.as_str())
            .map(|session| session["created_at"].clone())
            .expect("listed")
    };
    assert_eq!(created_of(&theirs), serde_json::Value::Null, "{listed}");
    assert_eq!(
        created_of(&older),
        serde_json::json!(created - 100),
        "{listed}"
    );
    for id in [&theirs, &ours, &older] {
        let out = run_in(
            &dir.0,
            &["sessions", "revoke", id.as_str(), "--store", &url],
            &env,
        );
        assert_eq!(out.line(), "revoked");
    }
}

/// A value under Flask-Session's layout that neither format reads (garbage,
/// or pickled by a Flask-Session before 0.7) is listed, since the listing
/// reads no values; `show` refuses it as unreadable rather than calling it
/// absent, and `revoke` deletes it with a warning and succeeds, as for any
/// other store's unreadable session. `revoke` deleted it and exited 1.
#[test]
fn an_unreadable_flask_session_value_is_shown_as_such_and_revoked() {
    let url = std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TESSERA_TEST_REDIS_URL is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
    });
    let dir = TempDir::new("flask-session-unreadable");
    let prefix = format!("cli-fs-unreadable-{}:", SessionId::generate().fingerprint());
    let env = [
        ("SESSION_KEY_PREFIX", prefix.as_str()),
        ("SESSION_SERIALIZATION_FORMAT", "msgpack"),
    ];
    let run = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--store", &url]);
        run_in(&dir.0, &args, &env)
    };
    for (value, reason) in [
        (&b"not msgpack {"[..], "neither msgpack nor JSON"),
        (&b"\x80\x04\x95\x10\x00\x00\x00"[..], "pickled"),
    ] {
        let id = SessionId::generate();
        let key = format!("{prefix}{}", id.as_str());
        let redis = |command: &mut ::redis::Cmd| -> ::redis::Value {
            runtime().block_on(async {
                let mut conn = ::redis::Client::open(url.as_str())
                    .expect("a client")
                    .get_multiplexed_async_connection()
                    .await
                    .expect("a connection");
                command.query_async(&mut conn).await.expect("an answer")
            })
        };
        let stored = |key: String| redis(::redis::cmd("EXISTS").arg(key)) == ::redis::Value::Int(1);
        redis(::redis::cmd("SET").arg(&key).arg(value).arg("EX").arg(600));
        let listed = run(&["sessions", "list"]);
        assert!(listed.stdout.contains(id.as_str()), "{:?}", listed.stdout);
        let shown = run(&["sessions", "show", id.as_str()]);
        assert_eq!(shown.status, Some(1), "{:?}", shown.stdout);
        assert!(
            shown
                .refusal()
                .starts_with("error: stored session data is corrupt")
                && shown.stderr.contains(reason),
            "{:?}",
            shown.stderr
        );
        assert!(stored(key.clone()), "show leaves it");
        let revoked = run(&["sessions", "revoke", id.as_str()]);
        assert_eq!(revoked.status, Some(0), "{:?}", revoked.stderr);
        assert_eq!(revoked.stdout.trim(), "revoked");
        assert!(
            revoked
                .stderr
                .starts_with("warning: the session's data cannot be read")
                && revoked.stderr.contains(reason)
                && revoked.stderr.lines().count() == 1,
            "{:?}",
            revoked.stderr
        );
        assert!(!stored(key), "revoked");
        // (With a word that the prefix holds no session now.)
        let gone = run(&["sessions", "show", id.as_str()]);
        assert_eq!(gone.status, Some(1));
        assert!(
            gone.stderr
                .ends_with("error: no live session with that id\n"),
            "{:?}",
            gone.stderr
        );
    }
}

/// The same commands on Redis (in tessera's layout and in Flask-Session's,
/// chosen by the application's own SESSION_SERIALIZATION_FORMAT) and
/// PostgreSQL, in plain text and over TLS (the servers
/// `scripts/services.sh` starts; the test fails without them).
#[test]
fn list_show_and_revoke_on_redis_and_postgres() {
    use tessera::store::flask_format::SerializationFormat;
    use tessera::store::{
        FlaskSessionRedisStore, PostgresStore, RedisStore, SessionId, SessionStore,
    };
    let flask_prefix = format!("cli-fs-{}:", std::process::id());
    let runtime = runtime();
    for (variable, format) in [
        ("TESSERA_TEST_REDIS_URL", None),
        ("TESSERA_TEST_REDIS_URL", Some("msgpack")),
        ("TESSERA_TEST_POSTGRES_URL", None),
        // The same servers over TLS (rediss://, sslmode=verify-full).
        ("TESSERA_TEST_REDIS_TLS_URL", None),
        ("TESSERA_TEST_REDIS_TLS_URL", Some("msgpack")),
        ("TESSERA_TEST_POSTGRES_TLS_URL", None),
    ] {
        let url = std::env::var(variable).unwrap_or_else(|_| {
            panic!("{variable} is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
        });
        let store: Box<dyn SessionStore> = match (variable.contains("REDIS"), format) {
            (true, None) => Box::new(RedisStore::new(&url).expect("a redis URL")),
            (true, Some(_)) => Box::new(
                FlaskSessionRedisStore::new(&url, SerializationFormat::Msgpack)
                    .expect("a redis URL")
                    .with_prefix(&flask_prefix),
            ),
            (false, _) => Box::new(PostgresStore::new(&url).expect("a postgres URL")),
        };
        let env: Vec<(&str, &str)> = match format {
            Some(format) => vec![
                ("SESSION_SERIALIZATION_FORMAT", format),
                ("SESSION_KEY_PREFIX", &flask_prefix),
            ],
            None => Vec::new(),
        };
        let variable = format!("{variable} {format:?}");
        let user = format!("cli-user-{}-{}", std::process::id(), variable.len());
        let other = format!("{user}-other");
        let now = now();
        let mut ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
        ids.sort();
        let other_id = SessionId::generate();
        runtime.block_on(async {
            for id in &ids {
                assert!(store
                    .create(id, &record(Some(&user), now, now + 3600, None))
                    .await
                    .expect("create"));
            }
            assert!(store
                .create(&other_id, &record(Some(&other), now, now + 3600, None))
                .await
                .expect("create"));
        });
        let dir = std::env::temp_dir();
        let listed = run_in(
            &dir,
            &["sessions", "list", "--user", &user, "--store", &url],
            &env,
        );
        let listed: Vec<&str> = listed
            .lines()
            .iter()
            .map(|line| line.split('\t').next().unwrap_or_default())
            .collect();
        assert_eq!(
            listed,
            ids.iter().map(SessionId::as_str).collect::<Vec<_>>(),
            "{variable}"
        );

        let shown = run_in(
            &dir,
            &["sessions", "show", ids[0].as_str(), "--store", &url],
            &env,
        );
        assert!(shown.stdout.contains(&user), "{variable}: {}", shown.stdout);
        assert_eq!(
            run_in(
                &dir,
                &["sessions", "revoke", ids[0].as_str(), "--store", &url],
                &env
            )
            .line(),
            "revoked"
        );
        let gone = run_in(
            &dir,
            &["sessions", "show", ids[0].as_str(), "--store", &url],
            &env,
        );
        assert_eq!(gone.status, Some(1), "{variable}");
        assert_eq!(
            run_in(
                &dir,
                &["sessions", "revoke-user", &user, "--store", &url],
                &env
            )
            .line(),
            "2"
        );
        runtime.block_on(async {
            assert!(store.load(&ids[1], now).await.expect("load").is_none());
            assert!(
                store.load(&other_id, now).await.expect("load").is_some(),
                "{variable}: another user's session is untouched"
            );
            store.delete(&other_id).await.expect("clean up");
        });
    }
}

/// Pointed at a PostgreSQL database without tessera's tables (a wrong
/// database name), every command refuses and creates nothing, as with a
/// SQLite file that is not a store.
#[test]
fn a_postgres_database_without_the_tables_is_refused_and_left_alone() {
    use sqlx::Connection as _;
    let other = ScratchDatabase::create("cli_other_app");
    let other_url = other.url.clone();
    let runtime = runtime();
    let tables_in_other = || {
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&other_url)
                .await
                .expect("connect");
            let count: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'tessera%'",
            )
            .fetch_one(&mut conn)
            .await
            .expect("count");
            conn.close().await.expect("close");
            count
        })
    };
    let dir = std::env::temp_dir();
    for args in [
        &["sessions", "list"][..],
        &["sessions", "purge-expired"],
        &["sessions", "revoke-user", "alice"],
    ] {
        let args = [args, &["--store", &other_url]].concat();
        let out = run_in(&dir, &args, &[]);
        let reason = out.refusal();
        assert!(
            reason.contains("no tessera session tables"),
            "{args:?}: {reason}"
        );
        assert_eq!(tables_in_other(), 0, "{args:?} created tables");
    }
}

/// A command whose statement waits on a lock held elsewhere fails after the
/// store's operation timeout (10 s) and exits then, rather than waiting,
/// while closing its connections, for as long as the lock is held.
#[test]
fn a_postgres_command_stalled_on_a_lock_exits_after_its_timeout() {
    use sqlx::Connection as _;
    use tessera::store::PostgresStore;
    let locked = ScratchDatabase::create("cli_locked");
    let locked_url = locked.url.clone();
    let runtime = runtime();
    let mut holder = runtime.block_on(async {
        let store = PostgresStore::new(&locked_url).expect("a URL");
        let expired = now() - 10;
        assert!(store
            .create(
                &SessionId::generate(),
                &record(None, expired - 100, expired, None)
            )
            .await
            .expect("create"));
        store.close().await;
        let mut holder = sqlx::PgConnection::connect(&locked_url)
            .await
            .expect("connect");
        sqlx::raw_sql("BEGIN; LOCK TABLE tessera_sessions IN ACCESS EXCLUSIVE MODE")
            .execute(&mut holder)
            .await
            .expect("lock");
        holder
    });
    let (done, finished) = std::sync::mpsc::channel();
    let command_url = locked_url.clone();
    let started = std::time::Instant::now();
    let command = std::thread::spawn(move || {
        let out = run_in(
            &std::env::temp_dir(),
            &["sessions", "purge-expired", "--store", &command_url],
            &[],
        );
        done.send(started.elapsed()).expect("the test waits");
        out
    });
    let took = finished.recv_timeout(std::time::Duration::from_secs(25));
    runtime.block_on(async {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut holder)
            .await
            .expect("release");
        holder.close().await.expect("close");
    });
    let out = command.join().expect("the command ran");
    let took = took.expect("the command exits while the lock is still held");
    assert!(took < std::time::Duration::from_secs(16), "{took:?}");
    assert!(
        out.refusal()
            .contains("did not complete the operation within 10s"),
        "{:?}",
        out.stderr
    );
}

/// On Redis, a key prefix under which no session is (SESSION_KEY_PREFIX
/// unset or mistyped) is warned about: "log out everywhere" ending nothing
/// would otherwise look like success. The application's prefix is not.
#[test]
fn a_redis_prefix_without_sessions_is_warned_about() {
    use tessera::store::{RedisStore, SessionId, SessionStore};
    let url = std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TESSERA_TEST_REDIS_URL is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
    });
    let prefix = format!("cli-prefix-{}:", SessionId::generate().fingerprint());
    let now = now();
    let mut data = Map::new();
    data.insert("username".to_owned(), Value::from("mallory"));
    let id = SessionId::generate();
    runtime().block_on(async {
        let store = RedisStore::new(&url)
            .expect("a redis URL")
            .with_prefix(&prefix);
        let record = Record {
            data,
            ..record(Some("mallory"), now, now + 3600, None)
        };
        assert!(store.create(&id, &record).await.expect("create"));
    });
    let dir = std::env::temp_dir();
    // The prefix without its colon. (Unset, the prefix would be
    // "session:", under which other tests may have left sessions.)
    let mistyped = prefix.trim_end_matches(':');
    let out = run_in(
        &dir,
        &["sessions", "revoke-user", "mallory", "--store", &url],
        &[("SESSION_KEY_PREFIX", mistyped)],
    );
    assert_eq!(out.status, Some(0), "{:?}", out.stderr);
    assert_eq!(out.stdout.trim(), "0");
    assert!(
        out.stderr
            .contains(&format!("no sessions under the key prefix {mistyped:?}")),
        "{:?}",
        out.stderr
    );
    assert!(!out.stderr.contains("Flask app"), "{:?}", out.stderr);
    // In Flask-Session's layout, sessions only a Flask app wrote are in no
    // index, so the warning cannot name their prefix, and says so.
    let out = run_in(
        &dir,
        &["sessions", "list", "--store", &url],
        &[
            ("SESSION_KEY_PREFIX", mistyped),
            ("SESSION_SERIALIZATION_FORMAT", "msgpack"),
        ],
    );
    assert_eq!(out.status, Some(0), "{:?}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("no sessions under the key prefix {mistyped:?}"))
            && out.stderr.contains("only a Flask app has written"),
        "{:?}",
        out.stderr
    );
    let out = run_in(
        &dir,
        &["sessions", "revoke-user", "mallory", "--store", &url],
        &[("SESSION_KEY_PREFIX", &prefix)],
    );
    assert_eq!(out.line(), "1");
}

/// On Redis the layout comes from the application's settings; pointed at a
/// prefix whose sessions are in the other layout, every command refuses,
/// rather than list sessions without their data or "revoke" one whose data
/// lives on.
#[test]
fn redis_commands_refuse_the_other_layout() {
    use tessera::store::flask_format::SerializationFormat;
    use tessera::store::{FlaskSessionRedisStore, RedisStore, SessionId, SessionStore};
    let url = std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TESSERA_TEST_REDIS_URL is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
    });
    let tessera_prefix = format!("cli-layout-t-{}:", SessionId::generate().fingerprint());
    let flask_prefix = format!("cli-layout-f-{}:", SessionId::generate().fingerprint());
    let now = now();
    let mut data = Map::new();
    data.insert("username".to_owned(), tessera::Value::from("alice"));
    let record = Record {
        data,
        ..record(Some("alice"), now, now + 3600, None)
    };
    let tessera_id = SessionId::generate();
    let flask_id = SessionId::generate();
    let ours_at = |prefix: &str| {
        RedisStore::new(&url)
            .expect("a redis URL")
            .with_prefix(prefix)
    };
    let theirs_at = |prefix: &str| {
        FlaskSessionRedisStore::new(&url, SerializationFormat::Msgpack)
            .expect("a redis URL")
            .with_prefix(prefix)
    };
    runtime().block_on(async {
        let ours = ours_at(&tessera_prefix);
        assert!(ours.create(&tessera_id, &record).await.expect("create"));
        let theirs = theirs_at(&flask_prefix);
        assert!(theirs.create(&flask_id, &record).await.expect("create"));
    });
    let dir = std::env::temp_dir();
    for (prefix, id, format, found) in [
        (&flask_prefix, &flask_id, None, "Flask-Session's layout"),
        (
            &tessera_prefix,
            &tessera_id,
            Some("msgpack"),
            "tessera's own layout",
        ),
    ] {
        let mut env = vec![("SESSION_KEY_PREFIX", prefix.as_str())];
        if let Some(format) = format {
            env.push(("SESSION_SERIALIZATION_FORMAT", format));
        }
        for args in [
            &["sessions", "list", "--store", &url][..],
            &["sessions", "show", id.as_str(), "--store", &url][..],
            &["sessions", "revoke", id.as_str(), "--store", &url][..],
        ] {
            let out = run_in(&dir, args, &env);
            assert_eq!(out.status, Some(1), "{args:?}: {:?}", out.stdout);
            assert!(out.stdout.is_empty(), "{args:?}: {:?}", out.stdout);
            assert!(out.stderr.contains(found), "{args:?}: {:?}", out.stderr);
        }
        // With the application's settings, the session is there; as in the
        // application, an empty or blank SESSION_SERIALIZATION_FORMAT counts
        // as unset, and blanks around a format's name are dropped.
        let settings: &[&str] = if format.is_some() {
            &["", " "]
        } else {
            &["msgpack", " msgpack\t"]
        };
        for setting in settings {
            let env = [
                ("SESSION_KEY_PREFIX", prefix.as_str()),
                ("SESSION_SERIALIZATION_FORMAT", setting),
            ];
            let out = run_in(
                &dir,
                &["sessions", "show", id.as_str(), "--store", &url],
                &env,
            );
            assert_eq!(out.status, Some(0), "{setting:?}: {:?}", out.stderr);
            assert!(out.stdout.contains("alice"), "{:?}", out.stdout);
        }
    }

    // A format the application refuses is refused naming the variable.
    let out = run_in(
        &dir,
        &["sessions", "list", "--store", &url],
        &[("SESSION_SERIALIZATION_FORMAT", "yaml")],
    );
    let reason = out.refusal();
    assert!(
        reason.contains(r#"invalid SESSION_SERIALIZATION_FORMAT="yaml""#),
        "{reason}"
    );

    // Two applications of different layouts on one prefix: refused in
    // either layout (tessera's listed both, and revoking a user deleted
    // the other layout's metadata but left its session live).
    let mixed_prefix = format!("cli-layout-m-{}:", SessionId::generate().fingerprint());
    runtime().block_on(async {
        let ours = ours_at(&mixed_prefix);
        assert!(ours
            .create(&SessionId::generate(), &record)
            .await
            .expect("create"));
        let theirs = theirs_at(&mixed_prefix);
        assert!(theirs
            .create(&SessionId::generate(), &record)
            .await
            .expect("create"));
    });
    // The other layout's sessions past the first 16 of the index (they
    // expire later), or written by Flask-Session itself, which keeps no
    // index: seen too.
    let later_prefix = format!("cli-layout-l-{}:", SessionId::generate().fingerprint());
    let unindexed_prefix = format!("cli-layout-u-{}:", SessionId::generate().fingerprint());
    runtime().block_on(async {
        let ours = ours_at(&later_prefix);
        for _ in 0..20 {
            assert!(ours
                .create(&SessionId::generate(), &record)
                .await
                .expect("create"));
        }
        let theirs = theirs_at(&later_prefix);
        let later = Record {
            expires_at: now + 7200,
            ..record.clone()
        };
        assert!(theirs
            .create(&SessionId::generate(), &later)
            .await
            .expect("create"));
        let ours = ours_at(&unindexed_prefix);
        assert!(ours
            .create(&SessionId::generate(), &record)
            .await
            .expect("create"));
        let mut conn = ::redis::Client::open(url.as_str())
            .expect("a client")
            .get_multiplexed_async_connection()
            .await
            .expect("a connection");
        // What Flask-Session writes: the msgpack value alone.
        let _: () = ::redis::cmd("SET")
            .arg(format!(
                "{unindexed_prefix}{}",
                SessionId::generate().as_str()
            ))
            .arg(&b"\x81\xa8username\xa3bob"[..])
            .arg("EX")
            .arg(600)
            .query_async(&mut conn)
            .await
            .expect("a Flask-Session value");
    });
    for (prefix, format) in [
        (&mixed_prefix, None),
        (&mixed_prefix, Some("msgpack")),
        (&later_prefix, None),
        (&later_prefix, Some("msgpack")),
        (&unindexed_prefix, None),
        (&unindexed_prefix, Some("msgpack")),
    ] {
        let mut env = vec![("SESSION_KEY_PREFIX", prefix.as_str())];
        if let Some(format) = format {
            env.push(("SESSION_SERIALIZATION_FORMAT", format));
        }
        let out = run_in(
            &dir,
            &["sessions", "revoke-user", "alice", "--store", &url],
            &env,
        );
        assert_eq!(out.status, Some(1), "{prefix} {format:?}: {:?}", out.stdout);
        assert!(
            out.stderr.contains("both layouts"),
            "{prefix} {format:?}: {:?}",
            out.stderr
        );
    }

    // A prefix with no sessions yet, whose text starts another
    // application's (Flask-Session's `session:` beside `sess`): nothing of
    // the other's is taken for its own (it was refused as Flask-Session's).
    let empty_prefix = format!("cli-layout-e-{}", SessionId::generate().fingerprint());
    runtime().block_on(async {
        let theirs = FlaskSessionRedisStore::new(&url, SerializationFormat::Msgpack)
            .expect("a redis URL")
            .with_prefix(format!("{empty_prefix}ion:"));
        assert!(theirs
            .create(&SessionId::generate(), &record)
            .await
            .expect("create"));
    });
    let out = run_in(
        &dir,
        &["sessions", "list", "--store", &url],
        &[("SESSION_KEY_PREFIX", empty_prefix.as_str())],
    );
    assert_eq!(out.status, Some(0), "{:?}", out.stderr);
    assert!(!out.stdout.contains("alice"), "{:?}", out.stdout);
}

/// A record the store cannot read (written by hand here) is left out of a
/// listing, and the operator is told on stderr, not left with a listing that
/// looks whole.
#[test]
fn list_reports_what_it_leaves_out() {
    let store = two_users("list-unreadable");
    // Last in id order: the listing's final, empty page reads it again.
    let hand_written = SessionId::parse(&"z".repeat(43)).expect("an id");
    runtime().block_on(async {
        let path = store.dir.0.join("sessions.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
        let mut connection = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
            .await
            .expect("the file opens");
        sqlx::query(
            "INSERT INTO tessera_sessions (id, user_id, created_at, expires_at) \
             VALUES (?, 'carol', 'not a number', ?)",
        )
        .bind(hand_written.as_str())
        .bind(i64::try_from(now() + 3600).expect("a time"))
        .execute(&mut connection)
        .await
        .expect("the row is written");
        sqlx::Connection::close(connection).await.expect("closed");
    });
    let out = store.run(&["sessions", "list"]);
    assert_eq!(out.status, Some(0), "{:?}", out.stderr);
    assert_eq!(out.stdout.lines().count(), store.live(None).len());
    assert!(
        !out.stdout.contains(hand_written.as_str()),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("cannot be read") && out.stderr.contains("left out"),
        "{:?}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("left out").count(),
        1,
        "{:?}",
        out.stderr
    );
    // The library's log lines read as the command's own warnings, not as a
    // log (`ERROR …`, ` WARN …`): the command succeeded.
    assert!(
        out.stderr.lines().all(|line| line.starts_with("warning: ")),
        "{:?}",
        out.stderr
    );
    // Asked for by id, it is refused, not shown as absent.
    let out = store.run(&["sessions", "show", hand_written.as_str()]);
    assert_eq!(out.status, Some(1), "{:?}", out.stdout);
    assert!(out.stderr.contains("corrupt"), "{:?}", out.stderr);
    // Said in SQL's types, which the operator can check, not in Rust's.
    assert!(
        out.stderr.contains(
            r#"column "created_at" holds a value of type TEXT where the store keeps INTEGER"#
        ) && !out.stderr.contains("Rust type"),
        "{:?}",
        out.stderr
    );
    // Revoked by id, it goes: unreadable is no reason to keep it.
    let out = store.run(&["sessions", "revoke", hand_written.as_str()]);
    assert_eq!(out.status, Some(0), "{:?}", out.stderr);
    assert_eq!(out.stdout.trim(), "revoked");
    assert!(out.stderr.contains("cannot be read"), "{:?}", out.stderr);
    assert_eq!(
        store
            .run(&["sessions", "show", hand_written.as_str()])
            .refusal(),
        "error: no live session with that id"
    );
}

/// `SESSION_KEY_PREFIX=""` is no prefix, as Flask-Session takes it, not the
/// default: the CLI finds the sessions the application keeps there.
#[test]
fn an_empty_key_prefix_is_no_prefix() {
    use tessera::store::flask_format::SerializationFormat;
    use tessera::store::FlaskSessionRedisStore;
    let url = std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TESSERA_TEST_REDIS_URL is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
    });
    let store = FlaskSessionRedisStore::new(&url, SerializationFormat::Json)
        .expect("a redis URL")
        .with_prefix("");
    let id = SessionId::generate();
    let user = format!("cli-empty-prefix-{}", std::process::id());
    let now = now();
    runtime().block_on(async {
        assert!(store
            .create(&id, &record(Some(&user), now, now + 3600, None))
            .await
            .expect("create"));
    });
    let dir = std::env::temp_dir();
    let show = |prefix: Option<&str>| {
        let mut env = vec![("SESSION_SERIALIZATION_FORMAT", "json")];
        env.extend(prefix.map(|prefix| ("SESSION_KEY_PREFIX", prefix)));
        run_in(
            &dir,
            &["sessions", "show", id.as_str(), "--store", &url],
            &env,
        )
    };
    let shown = show(Some(""));
    assert_eq!(shown.status, Some(0), "{:?}", shown.stderr);
    assert!(shown.stdout.contains(&user), "{}", shown.stdout);
    // Unset, the default prefix `session:` is another place.
    assert_eq!(show(None).status, Some(1));
    runtime().block_on(async {
        store.delete(&id).await.expect("clean up");
    });
}

/// Redis, both layouts: a session whose metadata cannot be read is left out
/// of a listing and reported once, also when it is the last in id order,
/// which the final, empty page reads again.
#[test]
fn a_redis_listing_reports_what_it_leaves_out_once() {
    use tessera::store::flask_format::SerializationFormat;
    use tessera::store::{FlaskSessionRedisStore, RedisStore, SessionStore};
    let url = std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TESSERA_TEST_REDIS_URL is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
    });
    let runtime = runtime();
    for format in [None, Some("json")] {
        let prefix = format!("cli-left-out-{}-{}:", std::process::id(), format.is_some());
        let store: Box<dyn SessionStore> = match format {
            None => Box::new(RedisStore::new(&url).expect("a URL").with_prefix(&prefix)),
            Some(_) => Box::new(
                FlaskSessionRedisStore::new(&url, SerializationFormat::Json)
                    .expect("a URL")
                    .with_prefix(&prefix),
            ),
        };
        let now = now();
        let good = SessionId::generate();
        let last = SessionId::parse(&"z".repeat(43)).expect("an id");
        runtime.block_on(async {
            for id in [&good, &last] {
                assert!(store
                    .create(id, &record(Some("ann"), now, now + 3600, None))
                    .await
                    .expect("create"));
            }
            let mut conn = redis::Client::open(url.as_str())
                .expect("a client")
                .get_multiplexed_async_connection()
                .await
                .expect("a connection");
            let _: i64 = redis::cmd("HSET")
                .arg(format!("{prefix}{{{}}}", last.as_str()))
                .arg("\0created")
                .arg("not a time")
                .query_async(&mut conn)
                .await
                .expect("corrupted");
        });
        let mut env = vec![("SESSION_KEY_PREFIX", prefix.as_str())];
        env.extend(format.map(|format| ("SESSION_SERIALIZATION_FORMAT", format)));
        let out = run_in(
            &std::env::temp_dir(),
            &["sessions", "list", "--store", &url],
            &env,
        );
        assert_eq!(out.status, Some(0), "{format:?}: {:?}", out.stderr);
        assert!(out.stdout.contains(good.as_str()), "{}", out.stdout);
        assert!(!out.stdout.contains(last.as_str()), "{}", out.stdout);
        assert_eq!(
            out.stderr.matches("left out").count(),
            1,
            "{format:?}: {:?}",
            out.stderr
        );
        runtime.block_on(async {
            store.delete_user("ann").await.expect("cleaned up");
        });
    }
}

/// Revoking a session that has expired answers alike on every store: Redis
/// drops the key at expiry, PostgreSQL keeps the row until a sweep.
#[test]
fn revoke_of_an_expired_session_answers_alike_on_redis_and_postgres() {
    use tessera::store::{PostgresStore, RedisStore, SessionId, SessionStore};
    let runtime = runtime();
    let mut expiring = Vec::new();
    for variable in ["TESSERA_TEST_REDIS_URL", "TESSERA_TEST_POSTGRES_URL"] {
        let url = std::env::var(variable).unwrap_or_else(|_| {
            panic!("{variable} is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
        });
        let store: Box<dyn SessionStore> = if variable.contains("REDIS") {
            Box::new(RedisStore::new(&url).expect("a redis URL"))
        } else {
            Box::new(PostgresStore::new(&url).expect("a postgres URL"))
        };
        let id = SessionId::generate();
        let now = now();
        runtime.block_on(async {
            assert!(store
                .create(&id, &record(Some("expiring"), now, now + 1, None))
                .await
                .expect("create"));
        });
        expiring.push((url, store, id));
    }
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let dir = std::env::temp_dir();
    for (url, store, id) in &expiring {
        let out = run_in(
            &dir,
            &["sessions", "revoke", id.as_str(), "--store", url],
            &[],
        );
        assert_eq!(out.status, Some(1), "{url}: {}", out.stdout);
        assert_eq!(
            out.stderr.trim(),
            "error: no live session with that id",
            "{url}"
        );
        // The expired row is gone too, not left for the sweep.
        let left = runtime.block_on(store.delete(id)).expect("delete");
        assert!(!left, "{url}: the expired record was left behind");
    }
}

/// A PostgreSQL URL that verifies the server's certificate against the
/// roots `SSL_CERT_FILE` names, a file that cannot be read: refused when the
/// store is made, naming the file (every connection failed with a bare
/// "UnknownIssuer" instead); without verification, or with the URL's own
/// root certificate, it is not read.
#[test]
fn an_unreadable_ssl_cert_file_is_named_for_a_verifying_postgres_url() {
    let dir = TempDir::new("ssl-cert-file");
    let missing = dir.0.join("no-such-bundle.pem");
    let missing = missing.to_str().expect("a UTF-8 path");
    let env = [("SSL_CERT_FILE", missing)];
    for mode in ["verify-full", "verify-ca"] {
        let url = format!("postgres://app:hunter2@127.0.0.1:1/app?sslmode={mode}");
        let out = run_in(&dir.0, &["sessions", "list", "--store", &url], &env);
        let reason = out.refusal();
        assert!(
            reason.contains(&format!("the SSL_CERT_FILE file {missing} cannot be read")),
            "{mode}: {reason}"
        );
        assert!(!reason.contains("hunter2"), "{reason}");
    }
    // Not read without verification: the store is made, and only the
    // unreachable server fails.
    let url = "postgres://app@127.0.0.1:1/app?sslmode=require";
    let out = run_in(&dir.0, &["sessions", "list", "--store", url], &env);
    let reason = out.refusal();
    assert!(reason.contains("unavailable"), "{url}: {reason}");
}
