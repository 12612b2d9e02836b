//! `tessera-bench http`: runs every target under wrk, round after round,
//! and writes the Markdown report.
//!
//! For each round and each target (in [`targets::ALL`]'s fixed order, so
//! rounds interleave), it starts the server on a free port, waits until the
//! port accepts connections, creates one session with one request, runs
//! `wrk -t1 -cC -dDs --latency -H "Cookie: <session>"`, asks for the counter
//! once more, and stops the server. Around wrk it reads the CPU time the
//! server's processes (from `/proc`), the Redis server for Redis targets
//! (`INFO cpu`), the PostgreSQL server for PostgreSQL targets (`/proc`) and
//! wrk itself (this program's ended children) spent, for the report's CPU
//! per request.

use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::client;
use crate::report::{self, Check, Measured, Method, Report, Run};
use crate::targets::{self, Launch, Store, Target};
use crate::wrk;

/// `tessera-bench http`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Rounds: every target runs once per round, rounds interleaved. An
    /// even number lets each of two neighbours run first as often as second.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub rounds: u16,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub duration: u32,
    /// wrk's concurrent connections.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// Sessions the requests take turns among. 1 (the default): every
    /// connection sends the cookie of one session, whose concurrent writes
    /// the stores must merge. More: many visitors, each one request at a
    /// time (with at least as many sessions as connections, no two requests
    /// of one session overlap), where tessera's combining of one session's
    /// concurrent operations has nothing to combine. The report then goes
    /// into a section of its own.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub sessions: u32,
    /// Worker threads of every server (tokio, actix workers, gunicorn -w).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
    /// Write the report's section into this Markdown file (replacing the
    /// section between `<!-- http:begin -->` and `<!-- http:end -->`, or
    /// appending it); without it the report goes to stdout.
    #[arg(long, value_name = "OUT.md")]
    pub markdown: Option<PathBuf>,
    /// Redis for the Redis targets (skipped without it), e.g.
    /// redis://127.0.0.1:6379/0. Keys are written under prefixes of the
    /// benchmark's own and deleted after each run.
    #[arg(long, value_name = "URL", value_parser = non_empty_url)]
    pub redis_url: Option<String>,
    /// PostgreSQL for `tessera-postgres` (skipped without it).
    #[arg(long, value_name = "URL", value_parser = non_empty_url)]
    pub postgres_url: Option<String>,
    /// The Python of the venv with Flask and gunicorn (default: .venv/bin/python
    /// of the workspace, as scripts/setup-python.sh makes it).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Run only these targets (comma-separated names).
    #[arg(long, value_name = "NAME,NAME", value_delimiter = ',')]
    pub only: Vec<String>,
}

/// A store URL as given, refused when blank: an unset variable in
/// `--redis-url "$URL"` would otherwise fail every run of those targets.
fn non_empty_url(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        Err("the URL is empty; leave the option out to skip its targets".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

/// Why the benchmark could not run at all.
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

fn fail(message: impl Into<String>) -> BenchError {
    BenchError(message.into())
}

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after creating the session, before wrk: lets gunicorn's workers
/// finish booting and every server settle, the same for all.
const SETTLE: Duration = Duration::from_millis(500);
/// Pause after wrk, before the counter check: requests still in flight when
/// wrk stopped finish meanwhile.
const DRAIN: Duration = Duration::from_millis(300);

/// The workspace: the current directory if it holds `interop/`, else the
/// one this crate was built in.
fn workspace_root() -> PathBuf {
    if let Ok(cwd) = std::env::current_dir() {
        if cwd.join("interop/bench_flask_app.py").is_file() {
            return cwd;
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Everything a run needs besides the target.
#[derive(Debug)]
struct Setup {
    args: HttpArgs,
    bench_server: PathBuf,
    gunicorn: Option<PathBuf>,
    root: PathBuf,
    log_dir: PathBuf,
}

/// Runs the benchmark; the report goes to `--markdown` or stdout.
pub fn run(args: HttpArgs) -> Result<(), BenchError> {
    let root = workspace_root();
    let wrk_version = wrk_version()?;
    let exe = std::env::current_exe()
        .map_err(|error| fail(format!("cannot find this executable: {error}")))?;
    let bench_server = exe.with_file_name(format!("bench-server{}", std::env::consts::EXE_SUFFIX));
    if !bench_server.is_file() {
        return Err(fail(format!(
            "{} is missing: build it with `cargo build --release -p tessera-bench`",
            bench_server.display()
        )));
    }
    let python = args
        .python
        .clone()
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    let gunicorn = python.with_file_name("gunicorn");
    let gunicorn = gunicorn.is_file().then_some(gunicorn);

    let selected: Vec<&'static Target> = if args.only.is_empty() {
        targets::ALL.iter().collect()
    } else {
        let mut selected = Vec::new();
        for name in &args.only {
            let target = targets::find(name.trim()).ok_or_else(|| {
                let names: Vec<&str> = targets::ALL.iter().map(|t| t.name).collect();
                fail(format!(
                    "unknown target {name:?}; the targets are: {}",
                    names.join(", ")
                ))
            })?;
            selected.push(target);
        }
        // Keep the fixed order whatever order --only named them in.
        targets::ALL
            .iter()
            .filter(|target| selected.iter().any(|s| s.name == target.name))
            .collect()
    };

    let mut skipped = Vec::new();
    let mut runnable = Vec::new();
    for target in selected {
        let reason = match (target.store, target.launch) {
            (Store::Redis, _) if args.redis_url.is_none() => {
                Some("no --redis-url given".to_owned())
            }
            (Store::Postgres, _) if args.postgres_url.is_none() => {
                Some("no --postgres-url given".to_owned())
            }
            (_, Launch::FlaskCookie | Launch::FlaskSessionRedis) if gunicorn.is_none() => {
                Some(format!(
                    "no gunicorn beside {} (run scripts/setup-python.sh, or pass --python)",
                    python.display()
                ))
            }
            _ => None,
        };
        match reason {
            Some(reason) => {
                eprintln!("tessera-bench: skipping {}: {reason}", target.name);
                skipped.push((target.name, reason));
            }
            None => runnable.push(target),
        }
    }
    if runnable.is_empty() {
        return Err(fail("nothing to run"));
    }

    let log_dir = std::env::temp_dir().join(format!("tessera-bench-{}", std::process::id()));
    fs::create_dir_all(&log_dir)
        .map_err(|error| fail(format!("cannot create {}: {error}", log_dir.display())))?;
    let load_start = load_average();
    let machine = machine(&args, &wrk_version, gunicorn.as_deref(), &python, &root);
    let setup = Setup {
        args,
        bench_server,
        gunicorn,
        root,
        log_dir,
    };

    let rounds = usize::from(setup.args.rounds);
    let mut runs = Vec::new();
    for round in 1..=rounds {
        for target in round_order(&runnable, round) {
            let load = load_average();
            let outcome = run_one(&setup, target, round);
            match &outcome {
                Ok(measured) => {
                    let check = Check::of(target.merge, measured, setup.args.connections);
                    for error in &measured.check_errors {
                        eprintln!(
                            "[round {round}/{rounds}] {:<20} check request failed: {error}",
                            target.name
                        );
                    }
                    eprintln!(
                        "[round {round}/{rounds}] {:<20} {:>9} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  non-2xx {}  socket errors {}  load {:.2}  {}",
                        target.name,
                        report::thousands(measured.wrk.requests_per_sec.round() as u64),
                        measured.wrk.p50_ms,
                        measured.wrk.p99_ms,
                        measured.wrk.non_2xx,
                        measured.wrk.socket_errors.total(),
                        load.unwrap_or(f64::NAN),
                        check.describe()
                    );
                }
                Err(error) => eprintln!(
                    "[round {round}/{rounds}] {:<20} FAILED: {error}",
                    target.name
                ),
            }
            runs.push(Run {
                target,
                round,
                outcome,
                load,
            });
        }
    }
    let _ = fs::remove_dir_all(&setup.log_dir);
    let mut machine = machine;
    machine.push((
        "Load average (1 min) at start and end".to_owned(),
        format!(
            "{} and {} (the server and wrk alone keep up to 3 threads busy)",
            load_start.map_or_else(|| "?".to_owned(), |load| format!("{load:.2}")),
            load_average().map_or_else(|| "?".to_owned(), |load| format!("{load:.2}"))
        ),
    ));

    let report = Report {
        machine,
        method: Method {
            threads: setup.args.threads,
            connections: setup.args.connections,
            duration_secs: setup.args.duration,
            sessions: setup.args.sessions,
            rounds,
            release: !cfg!(debug_assertions),
        },
        runs,
        skipped,
        date: today(),
    };
    let section = report.render();
    match &setup.args.markdown {
        Some(path) => {
            let existing = match fs::read_to_string(path) {
                Ok(text) => text,
                Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
                Err(error) => return Err(fail(format!("cannot read {}: {error}", path.display()))),
            };
            fs::write(
                path,
                report::replace_section(&existing, &section, setup.args.sessions),
            )
            .map_err(|error| fail(format!("cannot write {}: {error}", path.display())))?;
            eprintln!("tessera-bench: wrote {}", path.display());
        }
        None => print!("{section}"),
    }
    // A report with a target missing is no measure of the targets: written
    // for inspection, but the command fails so that no one takes it for one.
    let unmeasured: Vec<String> = report
        .skipped
        .iter()
        .map(|(name, reason)| format!("{name} ({reason})"))
        .chain(
            runnable
                .iter()
                .filter(|target| !report.measured(target.name))
                .map(|target| format!("{} (every run failed)", target.name)),
        )
        .collect();
    if !unmeasured.is_empty() {
        return Err(fail(format!(
            "not measured: {}; the report says so",
            unmeasured.join(", ")
        )));
    }
    Ok(())
}

/// The targets in the order round `round` (from 1) runs them: odd rounds
/// forwards, even rounds backwards (A B … B A …), so over an even number
/// of rounds each of two neighbours runs first as often as second, and a
/// machine that speeds up or slows down over a round favours neither.
fn round_order<'t>(targets: &[&'t Target], round: usize) -> Vec<&'t Target> {
    if round % 2 == 1 {
        targets.to_vec()
    } else {
        targets.iter().rev().copied().collect()
    }
}

/// wrk's version line, or why wrk cannot be used.
fn wrk_version() -> Result<String, BenchError> {
    match Command::new("wrk").arg("-v").output() {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr);
            let line = text.lines().next().unwrap_or("wrk").to_owned();
            Ok(line
                .split(" Copyright")
                .next()
                .unwrap_or(&line)
                .trim()
                .to_owned())
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(fail(
            "wrk is not installed (it is the load generator): apt-get install wrk",
        )),
        Err(error) => Err(fail(format!("cannot run wrk: {error}"))),
    }
}

/// A port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| format!("cannot find a free port: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| format!("cannot find a free port: {error}"))
}

/// A started server; stopped (and reaped) on drop.
#[derive(Debug)]
struct Server {
    child: Child,
    log: PathBuf,
    /// gunicorn: stop with SIGTERM so the master stops its workers.
    graceful: bool,
    /// Already stopped and reaped (its pid may belong to another process now).
    stopped: bool,
}

impl Server {
    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join(" / ");
        if tail.is_empty() {
            "(no output)".to_owned()
        } else {
            tail
        }
    }

    /// Waits until the port accepts connections, or the process exits.
    fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let started = Instant::now();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited at start ({status}): {}", self.log_tail()));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "not listening on port {port} after {START_TIMEOUT:?}: {}",
                    self.log_tail()
                ));
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        if self.graceful {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A key prefix of this run's own.
fn run_prefix(target: &Target, round: usize) -> String {
    format!(
        "tessera-bench:{}:{}:{round}:",
        std::process::id(),
        target.name
    )
}

fn start(
    setup: &Setup,
    target: &Target,
    port: u16,
    prefix: &str,
    scratch: &Path,
) -> Result<Server, String> {
    let log = setup.log_dir.join(format!("{}.log", target.name));
    let file =
        File::create(&log).map_err(|error| format!("cannot create {}: {error}", log.display()))?;
    let file2 = file
        .try_clone()
        .map_err(|error| format!("cannot open the log: {error}"))?;
    let threads = setup.args.threads.to_string();
    let mut command;
    let graceful;
    match target.launch {
        Launch::Rust(kind) => {
            command = Command::new(&setup.bench_server);
            command.args([
                "--server",
                kind.name(),
                "--port",
                &port.to_string(),
                "--threads",
                &threads,
                "--key-prefix",
                prefix,
            ]);
            let url = match target.store {
                Store::Redis => setup.args.redis_url.clone(),
                Store::Postgres => setup.args.postgres_url.clone(),
                Store::Sqlite => {
                    let file = scratch.join("sessions.db");
                    let path = file
                        .to_str()
                        .ok_or_else(|| format!("{} is not UTF-8", file.display()))?;
                    Some(format!("sqlite://{path}"))
                }
                Store::None | Store::Cookie | Store::Memory => None,
            };
            if let Some(url) = url {
                command.args(["--store-url", &url]);
            }
            graceful = false;
        }
        Launch::FlaskCookie | Launch::FlaskSessionRedis => {
            let gunicorn = setup
                .gunicorn
                .as_ref()
                .ok_or_else(|| "gunicorn is not installed".to_owned())?;
            command = Command::new(gunicorn);
            command
                .current_dir(&setup.root)
                .args(["-w", &threads, "-b", &format!("127.0.0.1:{port}")])
                .args(["--chdir", "interop", "bench_flask_app:app"])
                .env("SECRET_KEY", crate::SECRET_KEY);
            if target.launch == Launch::FlaskSessionRedis {
                let url = setup.args.redis_url.clone().unwrap_or_default();
                command
                    .env("FLASK_SESSION_TYPE", "redis")
                    .env("SESSION_REDIS_URL", url)
                    .env("FLASK_SESSION_KEY_PREFIX", prefix);
            }
            graceful = true;
        }
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(file2))
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", target.name))?;
    Ok(Server {
        child,
        log,
        graceful,
        stopped: false,
    })
}

fn counter_of(response: &client::Response, when: &str) -> Result<u64, String> {
    if response.status != 200 {
        return Err(format!(
            "{when}: status {} ({})",
            response.status,
            response.body.trim()
        ));
    }
    response
        .body
        .trim()
        .parse()
        .map_err(|_| format!("{when}: the body {:?} is not a counter", response.body))
}

fn run_one(setup: &Setup, target: &Target, round: usize) -> Result<Measured, String> {
    let port = free_port()?;
    let prefix = run_prefix(target, round);
    let scratch = setup.log_dir.join(format!("{}-{round}", target.name));
    fs::create_dir_all(&scratch)
        .map_err(|error| format!("cannot create {}: {error}", scratch.display()))?;
    let result = (|| {
        let mut server = start(setup, target, port, &prefix, &scratch)?;
        server.wait_ready(port)?;
        // One request each, one after another.
        let mut cookies = Vec::new();
        let mut first_counter = 0;
        for _ in 0..setup.args.sessions {
            let created =
                client::get(port, "").map_err(|error| format!("creating a session: {error}"))?;
            first_counter += counter_of(&created, "creating a session")?;
            let cookie = created.cookie_header();
            if cookie.is_empty() && target.merge != targets::Merge::None {
                return Err("the first response set no cookie".to_owned());
            }
            cookies.push(cookie);
        }
        sleep(SETTLE);

        let url = format!("http://127.0.0.1:{port}/");
        let server_pid = server.child.id();
        let redis_url = (target.store == Store::Redis)
            .then_some(setup.args.redis_url.as_deref())
            .flatten();
        let postmaster = (target.store == Store::Postgres)
            .then_some(setup.args.postgres_url.as_deref())
            .flatten()
            .and_then(postmaster_pid);
        let server_cpu_before = process_tree_cpu_seconds(server_pid);
        let redis_cpu_before = redis_url.and_then(redis_cpu_seconds);
        let postgres_cpu_before = postmaster.and_then(postgres_cpu_seconds);
        let wrk_cpu_before = ended_cpu_seconds("/proc/self/stat");
        let mut wrk = Command::new("wrk");
        wrk.args([
            "-t1",
            &format!("-c{}", setup.args.connections),
            &format!("-d{}s", setup.args.duration),
            "--latency",
        ]);
        if cookies.len() > 1 {
            let script = scratch.join("visitors.lua");
            fs::write(&script, visitors_script(&cookies))
                .map_err(|error| format!("cannot write {}: {error}", script.display()))?;
            wrk.arg("-s").arg(&script);
        } else if !cookies[0].is_empty() {
            wrk.args(["-H", &format!("Cookie: {}", cookies[0])]);
        }
        let output = wrk
            .arg(&url)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run wrk: {error}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "wrk failed ({}): {} {}",
                output.status,
                text.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let server_cpu_after = process_tree_cpu_seconds(server_pid);
        let redis_cpu_after = redis_url.and_then(redis_cpu_seconds);
        let postgres_cpu_after = postmaster.and_then(postgres_cpu_seconds);
        let wrk_cpu_after = ended_cpu_seconds("/proc/self/stat");
        let wrk = wrk::parse(&text).map_err(|error| format!("{error}: {text}"))?;
        // wrk's requests per second count errors too: a run with any is no
        // measure of the route (a server answering 500s fast, or none).
        if wrk.requests == 0 || wrk.non_2xx > 0 || wrk.socket_errors.total() > 0 {
            return Err(format!(
                "{} requests, {} of them not 2xx, and {} socket errors: a throughput is \
                 measured only on runs without errors",
                wrk.requests,
                wrk.non_2xx,
                wrk.socket_errors.total()
            ));
        }
        let per_request = |before: Option<f64>, after: Option<f64>| {
            let spent = after? - before?;
            (wrk.requests > 0 && spent >= 0.0).then(|| spent * 1e6 / wrk.requests as f64)
        };
        let server_cpu_us = per_request(server_cpu_before, server_cpu_after);
        let redis_cpu_us = per_request(redis_cpu_before, redis_cpu_after);
        let postgres_cpu_us = per_request(postgres_cpu_before, postgres_cpu_after);
        // wrk is the only child of this program that ends between the two.
        let wrk_cpu_us = per_request(wrk_cpu_before, wrk_cpu_after);
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "the server died under load ({status}): {}",
                server.log_tail()
            ));
        }

        sleep(DRAIN);
        // A store left broken by requests cut off at wrk's stop is a finding:
        // record each failure, retry a few times for the counter.
        let mut check_errors = Vec::new();
        // The sum of the sessions' counters, if every session answered.
        let mut final_counter = Some(0);
        for cookie in &cookies {
            let mut counter = None;
            for _ in 0..report::CHECK_ATTEMPTS {
                let answer = client::get(port, cookie)
                    .map_err(|error| format!("reading the counter back: {error}"))
                    .and_then(|last| counter_of(&last, "reading the counter back"));
                match answer {
                    Ok(answered) => {
                        counter = Some(answered);
                        break;
                    }
                    Err(error) => {
                        check_errors.push(error);
                        sleep(Duration::from_millis(200));
                    }
                }
            }
            final_counter = final_counter
                .zip(counter)
                .map(|(sum, counter)| sum + counter);
        }
        server.stop();
        // tower-sessions' Redis store keys are bare session ids.
        let extra_keys: Vec<String> = if target.name == "tower-redis" {
            cookies
                .iter()
                .filter_map(|cookie| cookie.split_once('=').map(|(_, id)| id.to_owned()))
                .collect()
        } else {
            Vec::new()
        };
        Ok((
            Measured {
                wrk,
                first_counter,
                final_counter,
                sessions: cookies.len() as u64,
                check_errors,
                server_cpu_us,
                redis_cpu_us,
                postgres_cpu_us,
                wrk_cpu_us,
            },
            extra_keys,
        ))
    })();
    let extra_keys = result
        .as_ref()
        .map(|(_, keys)| keys.clone())
        .unwrap_or_default();
    if target.store == Store::Redis {
        if let Some(url) = &setup.args.redis_url {
            if let Err(error) = redis_cleanup(url, &prefix, &extra_keys) {
                eprintln!("tessera-bench: could not delete {prefix}* in Redis: {error}");
            }
        }
    }
    let _ = fs::remove_dir_all(&scratch);
    result.map(|(measured, _)| measured)
}

/// The PostgreSQL server's postmaster, from the first line of
/// `postmaster.pid` in its data directory (asked of the server with psql);
/// `None` where psql or the file cannot say (another machine's server).
fn postmaster_pid(url: &str) -> Option<u32> {
    let data_directory = command_line(
        Path::new("psql"),
        &[url, "-tA", "-c", "show data_directory"],
    )?;
    let pid_file = Path::new(data_directory.trim()).join("postmaster.pid");
    fs::read_to_string(pid_file)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The PostgreSQL server's CPU time so far (user and system, seconds): its
/// postmaster and the backends alive, and the backends that ended, which
/// the postmaster has waited for (`cutime`, `cstime` of its `/proc` stat).
fn postgres_cpu_seconds(postmaster: u32) -> Option<f64> {
    let ended = ended_cpu_seconds(&format!("/proc/{postmaster}/stat"))?;
    Some(process_tree_cpu_seconds(postmaster)? + ended)
}

/// CPU time (user and system, seconds) of the ended children, waited for,
/// of the process whose `/proc` stat file is `stat_path`.
fn ended_cpu_seconds(stat_path: &str) -> Option<f64> {
    let stat = fs::read_to_string(stat_path).ok()?;
    Some(stat_field_pair(&stat, CUTIME)? as f64 / *CLOCK_TICKS)
}

/// Where `utime` (then `stime`) and `cutime` (then `cstime`) are among the
/// fields of `/proc/PID/stat` after the command name: fields 14 and 16,
/// counted from 1, of which the name is the second and the state the third.
const UTIME: usize = 11;
const CUTIME: usize = 13;

/// The sum of the `/proc/PID/stat` field at `index` after the command name
/// and the one after it (clock ticks). The name may hold spaces, so fields
/// are counted from its closing ')'.
fn stat_field_pair(stat: &str, index: usize) -> Option<u64> {
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(index);
    let first: u64 = fields.next()?.parse().ok()?;
    let second: u64 = fields.next()?.parse().ok()?;
    Some(first + second)
}

/// CPU time (user and system, seconds) of process `pid` and all of its
/// descendants (gunicorn's workers), from `/proc`; `None` where unreadable.
fn process_tree_cpu_seconds(pid: u32) -> Option<f64> {
    let ticks_per_second = *CLOCK_TICKS;
    let root = pid;
    let mut pending = vec![pid];
    let mut ticks = 0u64;
    while let Some(pid) = pending.pop() {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            // A descendant may have exited since its parent listed it.
            if pid == root {
                return None;
            }
            continue;
        };
        ticks += stat_field_pair(&stat, UTIME)?;
        let tasks = fs::read_dir(format!("/proc/{pid}/task"));
        for task in tasks.into_iter().flatten().flatten() {
            let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
            pending.extend(
                children
                    .split_whitespace()
                    .filter_map(|child| child.parse::<u32>().ok()),
            );
        }
    }
    Some(ticks as f64 / ticks_per_second)
}

/// The kernel's clock ticks per second, in which `/proc/PID/stat` counts CPU
/// time (100 on every common Linux; `getconf` says for sure).
static CLOCK_TICKS: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| {
    command_line(Path::new("getconf"), &["CLK_TCK"])
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
});

/// A connection of the benchmark's own to the Redis under test, for
/// reading its state and cleaning up; not one the servers use.
fn redis_connection(url: &str) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(5))
}

/// The Redis server's CPU time so far (user and system, seconds), from
/// `INFO cpu`.
fn redis_cpu_seconds(url: &str) -> Option<f64> {
    let mut connection = redis_connection(url).ok()?;
    let info: String = redis::cmd("INFO").arg("cpu").query(&mut connection).ok()?;
    let field = |name: &str| -> Option<f64> {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// Deletes the run's keys: everything under `prefix`, and `extra`.
fn redis_cleanup(url: &str, prefix: &str, extra: &[String]) -> redis::RedisResult<()> {
    let mut connection = redis_connection(url)?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query(&mut connection)?;
        if !keys.is_empty() {
            redis::cmd("DEL").arg(&keys).exec(&mut connection)?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for keys in extra.chunks(1000) {
        redis::cmd("DEL").arg(keys).exec(&mut connection)?;
    }
    Ok(())
}

/// A wrk script whose requests take turns among `cookies` (one per
/// session; empty for a server that sets none, which then pays wrk the
/// same per-request script as the others).
fn visitors_script(cookies: &[String]) -> String {
    let mut script = String::from("local cookies = {\n");
    for cookie in cookies {
        let quoted = cookie.replace('\\', "\\\\").replace('"', "\\\"");
        script.push_str(&format!("  \"{quoted}\",\n"));
    }
    script.push_str(
        "}\n\
         local turn = 0\n\
         local none = {}\n\
         request = function()\n\
         \x20 turn = turn % #cookies + 1\n\
         \x20 local cookie = cookies[turn]\n\
         \x20 if cookie == \"\" then\n\
         \x20   return wrk.format(nil, nil, none)\n\
         \x20 end\n\
         \x20 return wrk.format(nil, nil, { [\"Cookie\"] = cookie })\n\
         end\n",
    );
    script
}

/// The 1-minute load average.
fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Today's date, UTC, as `YYYY-MM-DD`.
fn today() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "unknown date".to_owned())
}

fn command_line(program: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// What the report says about the machine and the software, all cheap.
fn machine(
    args: &HttpArgs,
    wrk: &str,
    gunicorn: Option<&Path>,
    python: &Path,
    root: &Path,
) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown", |(_, model)| model.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    lines.push((
        "CPU".to_owned(),
        format!("{model}, {cores} cores available"),
    ));
    if let Some(total) = fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        text.lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
    }) {
        lines.push((
            "Memory".to_owned(),
            format!("{:.1} GiB", total as f64 / 1024.0 / 1024.0),
        ));
    }
    if let Ok(kernel) = fs::read_to_string("/proc/sys/kernel/osrelease") {
        lines.push(("Linux".to_owned(), kernel.trim().to_owned()));
    }
    lines.push(("Load generator".to_owned(), wrk.to_owned()));
    if let Some(rustc) = command_line(Path::new("rustc"), &["--version"]) {
        lines.push(("Rust (rustc on PATH)".to_owned(), rustc));
    }
    let crates = crate_versions(root);
    if !crates.is_empty() {
        lines.push(("Crates (Cargo.lock)".to_owned(), crates));
    }
    if let Some(gunicorn) = gunicorn {
        let mut python_line = String::new();
        if let Some(versions) = command_line(
            python,
            &[
                "-c",
                "import sys, importlib.metadata as m; print('Python', sys.version.split()[0], \
                 '/ Flask', m.version('flask'), '/ Flask-Session', m.version('flask-session'), \
                 '/ gunicorn', m.version('gunicorn'), '/ redis-py', m.version('redis'))",
            ],
        ) {
            python_line = versions;
        } else if let Some(version) = command_line(gunicorn, &["--version"]) {
            python_line = version;
        }
        if !python_line.is_empty() {
            lines.push(("Python side".to_owned(), python_line));
        }
    }
    if let Some(url) = &args.redis_url {
        lines.push(("Redis".to_owned(), redis_info(url)));
    }
    if let Some(url) = &args.postgres_url {
        let info = command_line(
            Path::new("psql"),
            &[
                url,
                "-tA",
                "-c",
                "show server_version",
                "-c",
                "show fsync",
                "-c",
                "show synchronous_commit",
            ],
        )
        .map(|text| {
            let values: Vec<&str> = text.lines().collect();
            match values.as_slice() {
                [version, fsync, commit] => {
                    format!("{version} (fsync={fsync}, synchronous_commit={commit}), same machine")
                }
                _ => text.replace('\n', " "),
            }
        })
        .unwrap_or_else(|| "version unknown (no psql)".to_owned());
        lines.push(("PostgreSQL".to_owned(), info));
    }
    lines
}

fn redis_info(url: &str) -> String {
    let info = || -> redis::RedisResult<String> {
        let mut connection = redis_connection(url)?;
        let server: String = redis::cmd("INFO").arg("server").query(&mut connection)?;
        let version = server
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_owned();
        let config = |name: &str, connection: &mut redis::Connection| {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg(name)
                .query::<Vec<String>>(connection)
                .ok()
                .and_then(|pair| pair.get(1).cloned())
                .unwrap_or_else(|| "?".to_owned())
        };
        let appendonly = config("appendonly", &mut connection);
        let fsync = config("appendfsync", &mut connection);
        Ok(format!(
            "{version} (appendonly={appendonly}, appendfsync={fsync}), same machine"
        ))
    };
    info().unwrap_or_else(|error| format!("unreachable for INFO: {error}"))
}

/// The versions of the benchmarked crates, as Cargo.lock pins them.
fn crate_versions(root: &Path) -> String {
    let Ok(lock) = fs::read_to_string(root.join("Cargo.lock")) else {
        return String::new();
    };
    let wanted = [
        "tessera",
        "axum",
        "tower-sessions",
        "tower-sessions-sqlx-store",
        "tower-sessions-redis-store",
        "actix-web",
        "actix-session",
        "tokio",
        "sqlx",
        "redis",
        "fred",
    ];
    let mut found: Vec<String> = Vec::new();
    let mut name: Option<&str> = None;
    for line in lock.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"'));
        } else if let (Some(current), Some(value)) = (name, line.strip_prefix("version = ")) {
            if wanted.contains(&current) {
                found.push(format!("{current} {}", value.trim_matches('"')));
            }
            name = None;
        }
    }
    found.sort_by_key(|entry| {
        let crate_name = entry.split(' ').next().unwrap_or_default();
        wanted.iter().position(|w| *w == crate_name)
    });
    found.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitors_take_turns_in_the_script() {
        let script = visitors_script(&["s=a\"b\\c".to_owned(), String::new()]);
        assert!(script.contains(r#"  "s=a\"b\\c","#), "{script}");
        assert!(script.contains("  \"\",\n"), "{script}");
        assert!(script.contains("turn = turn % #cookies + 1"), "{script}");
    }

    #[test]
    fn rounds_alternate_direction() {
        let targets: Vec<&Target> = targets::ALL[..3].iter().collect();
        let names = |round| -> Vec<&str> {
            round_order(&targets, round)
                .iter()
                .map(|target| target.name)
                .collect()
        };
        assert_eq!(names(1), ["axum-bare", "axum-headers", "tessera-cookie"]);
        assert_eq!(names(2), ["tessera-cookie", "axum-headers", "axum-bare"]);
        assert_eq!(names(3), names(1));
    }

    #[test]
    fn the_cpu_of_a_process_tree_is_read_from_proc() {
        let before = process_tree_cpu_seconds(std::process::id()).expect("readable");
        // Busy until ten clock ticks of CPU show: on a shared machine a
        // fixed wall-clock spin may get less CPU than that. The bound only
        // keeps a reading that never moves from spinning forever.
        let started = Instant::now();
        let mut spin = 0u64;
        let mut after = before;
        while after - before < 0.1 && started.elapsed() < Duration::from_secs(30) {
            for _ in 0..1_000_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
            after = process_tree_cpu_seconds(std::process::id()).expect("readable");
        }
        assert!(after - before >= 0.1, "{before} → {after}");
        assert_eq!(process_tree_cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn blank_store_urls_are_refused() {
        assert!(non_empty_url("").is_err());
        assert!(non_empty_url("  ").is_err());
        assert_eq!(
            non_empty_url("redis://127.0.0.1:6379/0").as_deref(),
            Ok("redis://127.0.0.1:6379/0")
        );
    }
}
