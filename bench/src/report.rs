//! The Markdown report of `tessera-bench http`, and replacing its section in
//! an existing document.

use std::fmt::Write as _;

use crate::targets::{self, Family, Merge, Target};
use crate::wrk::WrkResult;

/// How many times the orchestrator sends the check request before giving up.
pub const CHECK_ATTEMPTS: usize = 5;

/// The line that opens the report's section.
pub const BEGIN: &str = "<!-- http:begin -->";
/// The line that closes it.
pub const END: &str = "<!-- http:end -->";
/// The same for the report of a run with many sessions (`--sessions`).
pub const VISITORS_BEGIN: &str = "<!-- http-visitors:begin -->";
/// The line that closes it.
pub const VISITORS_END: &str = "<!-- http-visitors:end -->";

/// The lines around the report's section for a run over `sessions`
/// sessions: one section for the run on one session, one for many.
pub fn markers(sessions: u32) -> (&'static str, &'static str) {
    if sessions > 1 {
        (VISITORS_BEGIN, VISITORS_END)
    } else {
        (BEGIN, END)
    }
}

/// What one run of one target measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// wrk's numbers.
    pub wrk: WrkResult,
    /// The counter the session-creating requests answered (1 each), summed
    /// over the sessions.
    pub first_counter: u64,
    /// The counters the check requests after wrk answered, summed over the
    /// sessions; `None` if every attempt failed for one of them.
    pub final_counter: Option<u64>,
    /// Sessions the requests took turns among (each created by one request,
    /// and read back by one check request).
    pub sessions: u64,
    /// Errors of check requests that failed (each is retried a few times):
    /// a finding of its own, whatever the counter.
    pub check_errors: Vec<String>,
    /// CPU time (user and system) the server's processes spent while wrk
    /// ran, per request wrk completed, in µs; `None` if it could not be read.
    pub server_cpu_us: Option<f64>,
    /// The same for the Redis server (from `INFO cpu`), for Redis targets.
    pub redis_cpu_us: Option<f64>,
    /// The same for the PostgreSQL server (its postmaster, the backends
    /// alive and those that ended, from `/proc`), for PostgreSQL targets.
    pub postgres_cpu_us: Option<f64>,
    /// The same for wrk, the load generator, on the same cores.
    pub wrk_cpu_us: Option<f64>,
}

/// One run of one target: measured, or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// What ran.
    pub target: &'static Target,
    /// The round, from 1.
    pub round: usize,
    /// The numbers, or the error that stopped the run.
    pub outcome: Result<Measured, String>,
    /// The machine's 1-minute load average when the run started: the
    /// benchmark's own processes add about 2-3, more means something else
    /// was running (the machine may be shared).
    pub load: Option<f64>,
}

/// How the runs were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// Worker threads of every server (tokio, actix workers, gunicorn workers).
    pub threads: u16,
    /// wrk's connections.
    pub connections: u32,
    /// Seconds per run.
    pub duration_secs: u32,
    /// Sessions the requests took turns among.
    pub sessions: u32,
    /// Rounds.
    pub rounds: usize,
    /// Whether the binaries were built with optimizations.
    pub release: bool,
}

/// The verdict of a run's counter check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// No session (a bare server).
    NotApplicable,
    /// A cookie session: the counter is where the one cookie sent had it.
    Cookie {
        /// The counter after the run.
        final_counter: u64,
    },
    /// Atomic increments: every acknowledged request counted; `in_flight`
    /// more were served but not counted by wrk when it stopped.
    Exact {
        /// Acknowledged (2xx) requests of the wrk run.
        acknowledged: u64,
        /// Increments the server made beyond those.
        in_flight: u64,
    },
    /// Atomic increments expected, but the counter disagrees.
    Mismatch {
        /// Increments the server counted during the wrk run.
        counted: u64,
        /// Acknowledged (2xx) requests of the wrk run.
        acknowledged: u64,
    },
    /// Every check request failed: no counter to check.
    Unanswered,
    /// Read-modify-write sessions: increments lost to concurrent writers.
    Lost {
        /// Increments the server kept during the wrk run.
        counted: u64,
        /// Acknowledged (2xx) requests of the wrk run.
        acknowledged: u64,
    },
}

impl Check {
    /// Checks `measured` for a target that merges as `merge`, with wrk's
    /// `connections` (the most requests that can be in flight when wrk stops).
    pub fn of(merge: Merge, measured: &Measured, connections: u32) -> Check {
        let Some(final_counter) = measured.final_counter else {
            return match merge {
                Merge::None => Check::NotApplicable,
                _ => Check::Unanswered,
            };
        };
        // The session-creating requests set `first_counter`, the check
        // requests added one per session (failed attempts store nothing):
        // the rest are the wrk run's increments.
        let counted = final_counter
            .saturating_sub(measured.first_counter)
            .saturating_sub(measured.sessions);
        let acknowledged = measured.wrk.acknowledged();
        match merge {
            Merge::None => Check::NotApplicable,
            // Every request started from the cookie sent: a session that
            // counted (or never read its cookie) is no cookie session.
            Merge::Cookie if final_counter != 2 * measured.sessions => Check::Mismatch {
                counted: final_counter.saturating_sub(2 * measured.sessions),
                acknowledged,
            },
            Merge::Cookie => Check::Cookie {
                final_counter: final_counter / measured.sessions.max(1),
            },
            Merge::LastWriteWins => Check::Lost {
                counted,
                acknowledged,
            },
            Merge::Atomic => {
                let slack = u64::from(connections) + measured.wrk.socket_errors.total();
                if counted >= acknowledged && counted - acknowledged <= slack {
                    Check::Exact {
                        acknowledged,
                        in_flight: counted - acknowledged,
                    }
                } else {
                    Check::Mismatch {
                        counted,
                        acknowledged,
                    }
                }
            }
        }
    }

    /// Whether the check passed: atomic stores can miscount, and any
    /// target can fail to answer the check request.
    pub fn passed(&self) -> bool {
        !matches!(self, Check::Mismatch { .. } | Check::Unanswered)
    }

    /// The run's counter in one line.
    pub fn describe(&self) -> String {
        match *self {
            Check::NotApplicable => "no session".to_owned(),
            Check::Cookie { final_counter } => format!(
                "counter {final_counter}: every request started from the same cookie (expected)"
            ),
            Check::Exact {
                acknowledged,
                in_flight,
            } => format!(
                "exact: {} acknowledged + {in_flight} in flight at wrk's stop",
                thousands(acknowledged)
            ),
            Check::Mismatch {
                counted,
                acknowledged,
            } => format!(
                "MISMATCH: {} increments kept, {} acknowledged",
                thousands(counted),
                thousands(acknowledged)
            ),
            Check::Unanswered => "UNANSWERED: every check request failed".to_owned(),
            Check::Lost {
                counted,
                acknowledged,
            } => format!(
                "{} increments kept of {} acknowledged ({} lost)",
                thousands(counted),
                thousands(acknowledged),
                percent(lost_fraction(counted, acknowledged))
            ),
        }
    }
}

fn load(load: Option<f64>) -> String {
    load.map_or_else(String::new, |load| format!(" (load {load:.2})"))
}

fn lost_fraction(counted: u64, acknowledged: u64) -> f64 {
    if acknowledged == 0 {
        return 0.0;
    }
    1.0 - (counted.min(acknowledged) as f64 / acknowledged as f64)
}

/// `1234567` as `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

fn ratio(value: f64) -> String {
    if value >= 0.095 {
        format!("{value:.2}×")
    } else if value > 0.0 {
        format!("{value:.3}× (1/{:.0})", 1.0 / value)
    } else {
        "—".to_owned()
    }
}

/// `value` with `decimals` decimals, or more (up to 4) where fewer would
/// show it on the other side of `threshold` than it is: 0.997 against 1.0
/// is "0.997", never "1.00" beside "missed".
fn against(value: f64, threshold: f64, decimals: usize) -> String {
    shown_on_its_side(value, decimals, |v| v >= threshold)
}

/// As [`against`], for a goal of at most `limit` (a cost): 10.04 against
/// 10 is "10.04", never "10.0" beside "missed".
fn against_at_most(value: f64, limit: f64, decimals: usize) -> String {
    shown_on_its_side(value, decimals, |v| v <= limit)
}

fn shown_on_its_side(value: f64, decimals: usize, meets: impl Fn(f64) -> bool) -> String {
    let mut decimals = decimals;
    loop {
        let shown = format!("{value:.decimals$}");
        let reads_as: f64 = shown.parse().unwrap_or(value);
        if decimals >= 4 || meets(reads_as) == meets(value) {
            return shown;
        }
        decimals += 1;
    }
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    })
}

/// One target's runs, summarised over the rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The target.
    pub target: &'static Target,
    /// Runs that measured something.
    pub measured: Vec<Measured>,
    /// Errors of runs that did not.
    pub failures: Vec<String>,
    /// Median requests per second.
    pub rps: Option<f64>,
    /// Lowest and highest requests per second.
    pub spread: Option<(f64, f64)>,
    /// Median p50 latency, ms.
    pub p50_ms: Option<f64>,
    /// Median p99 latency, ms.
    pub p99_ms: Option<f64>,
    /// Median CPU of the server per request, µs.
    pub server_cpu_us: Option<f64>,
    /// Median CPU of the Redis server per request, µs.
    pub redis_cpu_us: Option<f64>,
    /// Median CPU of the PostgreSQL server per request, µs.
    pub postgres_cpu_us: Option<f64>,
    /// Median CPU of wrk per request, µs.
    pub wrk_cpu_us: Option<f64>,
}

impl Summary {
    fn of(target: &'static Target, runs: &[Run]) -> Summary {
        let mut measured = Vec::new();
        let mut failures = Vec::new();
        for run in runs.iter().filter(|run| run.target.name == target.name) {
            match &run.outcome {
                Ok(m) => measured.push(m.clone()),
                Err(error) => failures.push(format!("round {}: {error}", run.round)),
            }
        }
        let rates: Vec<f64> = measured.iter().map(|m| m.wrk.requests_per_sec).collect();
        let p50: Vec<f64> = measured.iter().map(|m| m.wrk.p50_ms).collect();
        let p99: Vec<f64> = measured.iter().map(|m| m.wrk.p99_ms).collect();
        let spread = median(&rates).map(|_| {
            let low = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let high = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (low, high)
        });
        let server_cpu: Vec<f64> = measured.iter().filter_map(|m| m.server_cpu_us).collect();
        let redis_cpu: Vec<f64> = measured.iter().filter_map(|m| m.redis_cpu_us).collect();
        let postgres_cpu: Vec<f64> = measured.iter().filter_map(|m| m.postgres_cpu_us).collect();
        let wrk_cpu: Vec<f64> = measured.iter().filter_map(|m| m.wrk_cpu_us).collect();
        Summary {
            target,
            rps: median(&rates),
            spread,
            p50_ms: median(&p50),
            p99_ms: median(&p99),
            server_cpu_us: median(&server_cpu),
            redis_cpu_us: median(&redis_cpu),
            postgres_cpu_us: median(&postgres_cpu),
            wrk_cpu_us: median(&wrk_cpu),
            measured,
            failures,
        }
    }
}

/// Everything the report says, computed from the runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `(what, value)` lines about the machine and software.
    pub machine: Vec<(String, String)>,
    /// How the runs were made.
    pub method: Method,
    /// Every run, in the order made.
    pub runs: Vec<Run>,
    /// Targets not run, with why.
    pub skipped: Vec<(&'static str, String)>,
    /// When, as text (UTC).
    pub date: String,
}

impl Report {
    fn summary(&self, name: &str) -> Option<Summary> {
        let target = targets::find(name)?;
        let summary = Summary::of(target, &self.runs);
        (!summary.measured.is_empty() || !summary.failures.is_empty()).then_some(summary)
    }

    /// Whether any run of `name` gave numbers.
    pub fn measured(&self, name: &str) -> bool {
        self.runs
            .iter()
            .any(|run| run.target.name == name && run.outcome.is_ok())
    }

    fn median_rps(&self, name: &str) -> Option<f64> {
        self.summary(name).and_then(|summary| summary.rps)
    }

    /// `a`'s requests per second over `b`'s, round by round (within a round
    /// neighbours run seconds apart): the median, lowest and highest. Steadier
    /// than the ratio of the medians when the machine's speed drifts
    /// between rounds, as a shared machine's does.
    fn per_round_ratio(&self, a: &str, b: &str) -> Option<(f64, f64, f64)> {
        let rate = |name: &str, round: usize| {
            self.runs
                .iter()
                .find(|run| run.target.name == name && run.round == round)
                .and_then(|run| run.outcome.as_ref().ok())
                .map(|measured| measured.wrk.requests_per_sec)
        };
        let ratios: Vec<f64> = (1..=self.method.rounds)
            .filter_map(|round| Some(rate(a, round)? / rate(b, round)?))
            .filter(|ratio| ratio.is_finite())
            .collect();
        let middle = median(&ratios)?;
        let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((middle, low, high))
    }

    /// Whether `ours` against `theirs` meets a goal, by both measures: the
    /// ratio of the median throughputs and, with two rounds or more, the
    /// median of the rounds' ratios. On a shared machine the two can fall on
    /// either side of a goal; a run shows it met only when both meet it.
    /// `words` are what to say when both meet it and when neither does.
    fn judged(
        &self,
        ours: &str,
        theirs: &str,
        of_medians: f64,
        meets: impl Fn(f64) -> bool,
        words: (&'static str, &'static str),
    ) -> String {
        // A round that failed leaves its neighbour's figure unpaired, and a
        // median of the others, from other rounds than the peer's.
        let failed: usize = [ours, theirs]
            .iter()
            .filter_map(|name| self.summary(name))
            .map(|summary| summary.failures.len())
            .sum();
        if failed > 0 {
            return format!(
                "**not shown**: {failed} of the two targets' runs failed (listed under Failures)"
            );
        }
        let per_round = self
            .per_round_ratio(ours, theirs)
            .filter(|_| self.method.rounds > 1)
            .map(|(middle, _, _)| meets(middle));
        match (meets(of_medians), per_round) {
            (true, None | Some(true)) => words.0,
            (false, None | Some(false)) => words.1,
            (true, Some(false)) => {
                "**not shown**: the median throughputs meet it, the median of the rounds' \
                 ratios does not"
            }
            (false, Some(true)) => {
                "**not shown**: the median of the rounds' ratios meets it, the median \
                 throughputs do not"
            }
        }
        .to_owned()
    }

    /// " (per round: …)" for a target line, or nothing with fewer than two
    /// rounds measured; the median shown on the side of `goal` it is on.
    fn per_round_note(&self, a: &str, b: &str, decimals: usize, goal: f64) -> String {
        match self.per_round_ratio(a, b) {
            Some((middle, low, high)) if self.method.rounds > 1 => format!(
                " (per round: median {}×, {}–{}×)",
                against(middle, goal, decimals),
                against(low, goal, decimals),
                against(high, goal, decimals)
            ),
            _ => String::new(),
        }
    }

    /// The Markdown section, from [`BEGIN`] to [`END`].
    pub fn render(&self) -> String {
        let mut out = String::new();
        let method = &self.method;
        let (begin, end) = markers(method.sessions);
        let _ = writeln!(out, "{begin}");
        if method.sessions > 1 {
            let _ = writeln!(
                out,
                "## HTTP, many visitors: tessera against peer session libraries on {} sessions\n",
                thousands(u64::from(method.sessions))
            );
        } else {
            let _ = writeln!(out, "## HTTP: tessera against peer session libraries\n");
        }
        let sessions_option = if method.sessions > 1 {
            format!(" --sessions {}", method.sessions)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "Generated by `tessera-bench http` ({}), {}. Regenerate with \
             `cargo build --release -p tessera-bench && target/release/tessera-bench http \
             --markdown FILE --redis-url URL --postgres-url URL{sessions_option}`.\n",
            self.date,
            if method.release {
                "release build"
            } else {
                "**debug build: these numbers mean nothing, build with --release**"
            }
        );

        let _ = writeln!(out, "### Machine\n");
        for (what, value) in &self.machine {
            let _ = writeln!(out, "- {what}: {value}");
        }

        let _ = writeln!(out, "\n### Method\n");
        let _ = writeln!(
            out,
            "- Every server serves one route, the same everywhere: `GET /` reads the string \
             `user` from the session (absent) and increments the integer `counter` in it, \
             answering the new value as plain text. Bare servers have no session and increment \
             a process-wide atomic counter. `axum-headers` is bare axum carrying a session's \
             bytes without its work: it gets the `Cookie` header and answers with a fixed \
             `Set-Cookie` as long as `tessera-cookie`'s and `Vary: Cookie`, so the cookie \
             target can be split into what the headers cost and what the session work costs. \
             tessera's server-side stores use its atomic \
             `Session::increment`; its cookie modes (signed as Flask's, and encrypted), \
             tower-sessions, actix-session and Flask read `counter` and write it back."
        );
        let _ = writeln!(
            out,
            "- Threads: every server gets {t} worker threads: the tokio runtime's \
             `worker_threads({t})`, actix-web's `workers({t})`, gunicorn's `-w {t}` sync \
             workers (`interop/bench_flask_app.py`). gunicorn's sync workers close the \
             connection after every response, as they are built to behind a proxy, so \
             Flask's figures include a new TCP connection per request; the Rust servers keep \
             connections open. Beyond those: SQLite's connections run on threads of sqlx's own \
             (both libraries'), and on actix-web, whose workers are single-threaded runtimes, \
             tessera runs the store operations queued behind another caller's (combined loads \
             and increments) on one thread of its own (`tessera-stores`), so that a worker that \
             goes idle does not strand them; actix-session has nothing queued to run.",
            t = method.threads
        );
        let _ = writeln!(
            out,
            "- Cookies: tessera's `cookie` targets sign (HMAC-SHA1, Flask's format) and \
             `tessera-encrypted` encrypts (XChaCha20-Poly1305); actix-session is set to \
             `CookieContentSecurity::Signed` (HMAC-SHA256) rather than its default, \
             `Private` (AES-GCM), so the cookie pairs compare signing with signing. Server-side, \
             tessera's and tower-sessions' id cookies carry the random id alone (Flask-Session's \
             default), actix-session's is signed as well (it has no plain mode)."
        );
        if method.sessions > 1 {
            let _ = writeln!(
                out,
                "- Load: `wrk -t1 -c{c} -d{d}s --latency -s visitors.lua`, in its own \
                 process on the same machine (so the server shares the cores with wrk, and \
                 with Redis or PostgreSQL where used). The requests take turns among {n} \
                 sessions, created by one request each just before, one after another: \
                 {c} consecutive sessions are in flight at once, so {overlap}. Many visitors, \
                 each one request at a time: no increment is lost, whatever the library, \
                 and tessera's combining of one session's concurrent loads and increments \
                 has nothing to combine. The script runs for every target, bare servers \
                 included (without a cookie for those that set none), so wrk's work per \
                 request is the same for all.",
                c = method.connections,
                d = method.duration_secs,
                n = thousands(u64::from(method.sessions)),
                overlap = if method.sessions >= method.connections {
                    "no two requests of one session overlap"
                } else {
                    "some requests of one session overlap (fewer sessions than connections)"
                }
            );
        } else {
            let _ = writeln!(
                out,
                "- Load: `wrk -t1 -c{c} -d{d}s --latency -H \"Cookie: <session>\"`, in its own \
                 process on the same machine (so the server shares the cores with wrk, and \
                 with Redis or PostgreSQL where used). All {c} connections send the cookie of \
                 one session, created by one request just before: the worst case for \
                 concurrent writes to one session (increments that read-modify-write \
                 sessions lose), and the best for tessera's stores, which combine one \
                 session's concurrent loads and increments into fewer store calls. The \
                 section \"HTTP, many visitors\" runs the same targets on many sessions, \
                 where there is nothing to combine.",
                c = method.connections,
                d = method.duration_secs
            );
        }
        let _ = writeln!(
            out,
            "- {r} round(s), interleaved: each round starts every target once, odd rounds in \
             the order of the tables and even rounds backwards (A B C … C B A …), so of two \
             neighbours each runs first as often as second; each server is freshly started \
             and stopped after its run. Req/s is the median over rounds with the spread \
             (lowest–highest); p50 and p99 are the medians of wrk's per-run percentiles. \
             Targets compare those medians, and also give the ratio round by round (a \
             same-backend pair runs next to each other, seconds apart; tessera and Flask \
             are further apart), whose median holds better when the machine's speed drifts \
             between rounds.",
            r = method.rounds
        );
        let _ = writeln!(
            out,
            "- Counter check: after wrk stops, one more request with the cookie answers the \
             counter. Servers that merge increments atomically (tessera server-side) must have \
             counted every acknowledged (2xx) request: final = 1 (create) + acknowledged + \
             in flight + 1 (this request), where at most one request per connection (plus any \
             timed out) was served but not acknowledged when wrk stopped. The others are \
             reported, not failed: read-modify-write sessions lose concurrent increments, and \
             cookie sessions always start from the cookie sent.{many}",
            many = if method.sessions > 1 {
                " With many sessions, one request per session reads each counter back, and \
                 the counters are summed: final = the sessions (their creates) + acknowledged + \
                 in flight + the sessions (these requests)."
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "- Isolation: Redis targets use a key prefix of their own per run (tower-sessions' \
             Redis store has none: its session keys are deleted after the run), deleted \
             after the run; SQLite files live in a new temporary directory per run; tessera's \
             PostgreSQL store creates its own tables, tower-sessions' its own schema \
             (`tower_sessions`); both pools have 10 connections."
        );
        let _ = writeln!(
            out,
            "- Durability: both SQLite stores run in WAL mode with synchronous=NORMAL (tessera's \
             setting; tower-sessions' pool is given the same, sqlx's default would be FULL). \
             Redis and PostgreSQL run as given (see Machine). `scripts/bench.sh` runs Redis \
             with its default persistence (snapshots, no append-only file), as most deployments \
             do; with appendfsync=always every write would wait for an fsync, which weighs on \
             every Redis target alike and leaves room for more connections \
             (bench/HISTORY.md measures both, \"fifth session\")."
        );
        let _ = writeln!(
            out,
            "- Noise: the 1-minute load average is recorded at the start of every run (below); \
             the server and wrk alone keep up to 3 threads busy (more with Redis or PostgreSQL), so much more than that means something else was running."
        );

        let _ = writeln!(out, "\n### Results");
        for family in Family::ALL {
            let rows: Vec<Summary> = targets::ALL
                .iter()
                .filter(|target| target.family == family)
                .filter_map(|target| self.summary(target.name))
                .collect();
            if rows.is_empty() {
                continue;
            }
            let baseline = family.baseline();
            let baseline_rps = self.median_rps(baseline);
            let _ = writeln!(
                out,
                "\n#### {}\n\nRatios are to `{baseline}`{}.\n",
                family.title(),
                if baseline_rps.is_none() {
                    " (not measured in this run)"
                } else {
                    ""
                }
            );
            let _ = writeln!(
                out,
                "| target | store | req/s (median) | spread (min–max) | p50 ms | p99 ms | vs `{baseline}` | non-2xx | socket errors | counter check |"
            );
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
            for row in rows {
                out.push_str(&self.row(&row, baseline_rps));
            }
        }

        out.push_str(&self.cpu_section());

        let _ = writeln!(out, "\n### Targets\n");
        if method.rounds > 1 {
            let _ = writeln!(
                out,
                "A target is met when the ratio of the median throughputs and the median of \
                 the rounds' ratios both meet it, and not shown when they disagree.\n"
            );
        }
        for line in self.targets() {
            let _ = writeln!(out, "- {line}");
        }

        let _ = writeln!(out, "\n### Counter checks, per run\n");
        for run in &self.runs {
            let line = match &run.outcome {
                Ok(measured) => {
                    let check = Check::of(run.target.merge, measured, method.connections);
                    let mut line = format!(
                        "round {}, `{}`{}: {} requests, final counter {}; {}",
                        run.round,
                        run.target.name,
                        load(run.load),
                        thousands(measured.wrk.requests),
                        measured
                            .final_counter
                            .map_or_else(|| "none".to_owned(), thousands),
                        check.describe()
                    );
                    if let Some(first) = measured.check_errors.first() {
                        line.push_str(&format!(
                            "; **{} check request(s) failed** (first: {first})",
                            measured.check_errors.len()
                        ));
                    }
                    line
                }
                Err(error) => format!(
                    "round {}, `{}`{}: failed: {error}",
                    run.round,
                    run.target.name,
                    load(run.load)
                ),
            };
            let _ = writeln!(out, "- {line}");
        }

        if !self.skipped.is_empty() {
            let _ = writeln!(out, "\n### Skipped\n");
            for (name, reason) in &self.skipped {
                let _ = writeln!(out, "- `{name}`: {reason}");
            }
        }
        let _ = writeln!(out, "{end}");
        out
    }

    /// CPU per request: where a lower throughput comes from (the server's
    /// own work, or the Redis server's), whatever share wrk took.
    fn cpu_section(&self) -> String {
        let rows: Vec<Summary> = targets::ALL
            .iter()
            .filter_map(|target| self.summary(target.name))
            .filter(|summary| {
                summary.server_cpu_us.is_some()
                    || summary.redis_cpu_us.is_some()
                    || summary.postgres_cpu_us.is_some()
            })
            .collect();
        if rows.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "\n### CPU per request\n\n\
             CPU time (user and system) spent while wrk ran, divided by the requests \
             it completed; the median over rounds. The server's is read from \
             `/proc/PID/stat` of its processes (gunicorn's master and workers \
             together), Redis' from `INFO cpu`, PostgreSQL's from `/proc` too (its \
             postmaster with the backends alive and those that ended), wrk's from \
             this program's ended children (wrk, once it has exited). The kernel's \
             work for each process (its sockets, its system calls) is in that \
             process's system time.\n\n\
             | target | server CPU µs/request | Redis CPU µs/request | PostgreSQL CPU µs/request | wrk CPU µs/request |\n\
             |---|---:|---:|---:|---:|\n",
        );
        let micros =
            |value: Option<f64>| value.map_or_else(|| "—".to_owned(), |us| format!("{us:.1}"));
        for row in rows {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                row.target.name,
                micros(row.server_cpu_us),
                micros(row.redis_cpu_us),
                micros(row.postgres_cpu_us),
                micros(row.wrk_cpu_us)
            );
        }
        out
    }

    fn row(&self, row: &Summary, baseline_rps: Option<f64>) -> String {
        let target = row.target;
        let Some(rps) = row.rps else {
            return format!(
                "| `{}` | {} | failed: {} | | | | | | | |\n",
                target.name,
                target.store.label(),
                row.failures.join("; ").replace('|', "\\|")
            );
        };
        let (low, high) = row.spread.unwrap_or((rps, rps));
        let vs = baseline_rps.map_or_else(|| "—".to_owned(), |base| ratio(rps / base));
        let non_2xx: u64 = row.measured.iter().map(|m| m.wrk.non_2xx).sum();
        let socket: u64 = row
            .measured
            .iter()
            .map(|m| m.wrk.socket_errors.total())
            .sum();
        let checks: Vec<Check> = row
            .measured
            .iter()
            .map(|m| Check::of(target.merge, m, self.method.connections))
            .collect();
        let mut check = match target.merge {
            Merge::None => "—".to_owned(),
            Merge::Cookie => "n/a: cookie (stays at the cookie's value)".to_owned(),
            Merge::Atomic => {
                let total = checks.len();
                let exact = checks
                    .iter()
                    .filter(|check| matches!(check, Check::Exact { .. }))
                    .count();
                let mismatched = checks
                    .iter()
                    .filter(|check| matches!(check, Check::Mismatch { .. }))
                    .count();
                let mut cell = format!("exact in {exact}/{total} runs");
                if mismatched > 0 {
                    cell.push_str(&format!("; **MISMATCH** in {mismatched}/{total}"));
                }
                cell
            }
            Merge::LastWriteWins => {
                let lost: Vec<f64> = checks
                    .iter()
                    .filter_map(|check| match *check {
                        Check::Lost {
                            counted,
                            acknowledged,
                        } => Some(lost_fraction(counted, acknowledged)),
                        _ => None,
                    })
                    .collect();
                match median(&lost) {
                    Some(fraction) => format!("{} of increments lost (median)", percent(fraction)),
                    None => "—".to_owned(),
                }
            }
        };
        let unanswered = checks
            .iter()
            .filter(|check| matches!(check, Check::Unanswered))
            .count();
        if unanswered > 0 {
            check.push_str(&format!(
                "; **no answer to the check** in {unanswered}/{} runs",
                checks.len()
            ));
        }
        let troubled = row
            .measured
            .iter()
            .filter(|m| !m.check_errors.is_empty())
            .count();
        if troubled > 0 {
            check.push_str(&format!(
                "; **check request failed** (then retried) in {troubled}/{} runs, see below",
                checks.len()
            ));
        }
        if !row.failures.is_empty() {
            check.push_str(&format!("; {} run(s) failed", row.failures.len()));
        }
        format!(
            "| `{}` | {} | {} | {}–{} | {} | {} | {} | {} | {} | {} |\n",
            target.name,
            target.store.label(),
            thousands(rps.round() as u64),
            thousands(low.round() as u64),
            thousands(high.round() as u64),
            row.p50_ms.map_or_else(String::new, ms),
            row.p99_ms.map_or_else(String::new, ms),
            vs,
            thousands(non_2xx),
            thousands(socket),
            check
        )
    }

    /// The goals, met or missed: by the ratio of the median throughputs and,
    /// with two rounds or more, by the median of the rounds' ratios too.
    pub fn targets(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let rps = |name: &str| self.median_rps(name);
        let missing = |a: &str, b: &str| {
            let absent: Vec<&str> = [a, b]
                .into_iter()
                .filter(|name| rps(name).is_none())
                .collect();
            format!("not measured (no numbers for `{}`)", absent.join("`, `"))
        };
        let verdict = ("**met**", "**missed**");
        let parity = ("at or above parity", "below parity");
        // A pair that `--only` left out on purpose is no finding; one whose
        // targets were chosen and did not run (or were skipped) is.
        let chosen = |name: &str| {
            self.runs.iter().any(|run| run.target.name == name)
                || self.skipped.iter().any(|(skipped, _)| *skipped == name)
        };
        let left_out = |a: &str, b: &str| !chosen(a) || !chosen(b);

        let (cookie, bare) = ("tessera-cookie", "axum-bare");
        let cookie_and_bare = (rps(cookie), rps(bare));
        lines.push(match cookie_and_bare {
            (Some(c), Some(b)) => {
                let cost = 1.0 - c / b;
                format!(
                    "`{cookie}` vs `{bare}` (target: at most 10% lower throughput): {} vs {} \
                     req/s, {}% {}{}: {}",
                    thousands(c.round() as u64),
                    thousands(b.round() as u64),
                    // On the side of 10% it is on: never "10.0%" beside "missed".
                    against_at_most(cost.abs() * 100.0, 10.0, 1),
                    if cost >= 0.0 { "lower" } else { "higher" },
                    self.per_round_note(cookie, bare, 2, 0.9),
                    self.judged(cookie, bare, c / b, |ratio| 1.0 - ratio <= 0.10, verdict)
                )
            }
            _ if left_out(cookie, bare) => String::new(),
            _ => format!("`{cookie}` vs `{bare}`: {}", missing(cookie, bare)),
        });
        // Not a target of its own: the part of the cookie target that no
        // cookie session can avoid, and the part that is tessera's work.
        let headers = "axum-headers";
        if let ((Some(c), Some(b)), Some(h)) = (cookie_and_bare, rps(headers)) {
            lines.push(format!(
                "split of the cookie target (no target of its own): the headers alone, \
                 `{headers}` vs `{bare}`, {:.2}×{}; the session work alone, `{cookie}` vs \
                 `{headers}`, {:.2}×{}",
                h / b,
                self.per_round_note(headers, bare, 2, 0.9),
                c / h,
                self.per_round_note(cookie, headers, 2, 0.9),
            ));
        }
        // The issue sets parity with tower-sessions as a target; the same
        // stores on actix-web against actix-session are compared the same way
        // but are no target of it, and say so rather than "met" or "missed".
        for (ours, theirs, is_target) in [
            ("tessera-memory", "tower-memory", true),
            ("tessera-sqlite", "tower-sqlite", true),
            ("tessera-redis", "tower-redis", true),
            ("tessera-postgres", "tower-postgres", true),
            ("tessera-actix-cookie", "actix-cookie", false),
            ("tessera-actix-redis", "actix-redis", false),
        ] {
            let (goal, words) = if is_target {
                ("target ≥ 1.0×", verdict)
            } else {
                ("no target; parity is 1.0×", parity)
            };
            lines.push(match (rps(ours), rps(theirs)) {
                (Some(a), Some(b)) => format!(
                    "`{ours}` vs `{theirs}` ({goal}): {} vs {} req/s = {}×{}: {}",
                    thousands(a.round() as u64),
                    thousands(b.round() as u64),
                    against(a / b, 1.0, 2),
                    self.per_round_note(ours, theirs, 2, 1.0),
                    self.judged(ours, theirs, a / b, |ratio| ratio >= 1.0, words)
                ),
                _ if left_out(ours, theirs) => String::new(),
                _ => format!("`{ours}` vs `{theirs}`: {}", missing(ours, theirs)),
            });
        }
        for (ours, theirs) in [
            ("tessera-cookie", "flask-cookie"),
            ("tessera-redis", "flask-session-redis"),
        ] {
            lines.push(match (rps(ours), rps(theirs)) {
                (Some(a), Some(b)) => format!(
                    "`{ours}` vs `{theirs}` (target ≥ 20×): {} vs {} req/s = {}×{}: {}",
                    thousands(a.round() as u64),
                    thousands(b.round() as u64),
                    against(a / b, 20.0, 1),
                    self.per_round_note(ours, theirs, 1, 20.0),
                    self.judged(ours, theirs, a / b, |ratio| ratio >= 20.0, verdict)
                ),
                _ if left_out(ours, theirs) => String::new(),
                _ => format!("`{ours}` vs `{theirs}`: {}", missing(ours, theirs)),
            });
        }
        lines.retain(|line| !line.is_empty());
        let mut atomic_runs = 0;
        let mut mismatches = Vec::new();
        let mut unanswered = Vec::new();
        let mut check_failures = Vec::new();
        for run in &self.runs {
            let Ok(measured) = &run.outcome else {
                continue;
            };
            let at = format!("round {} `{}`", run.round, run.target.name);
            if let Some(first) = measured.check_errors.first() {
                check_failures.push(format!(
                    "{at} ({} failed, first: {first}; {})",
                    measured.check_errors.len(),
                    if measured.final_counter.is_some() {
                        "a retry answered"
                    } else {
                        "no retry answered"
                    }
                ));
            }
            if run.target.merge != Merge::Atomic {
                continue;
            }
            atomic_runs += 1;
            match Check::of(run.target.merge, measured, self.method.connections) {
                Check::Mismatch { .. } => mismatches.push(at),
                Check::Unanswered => unanswered.push(at),
                _ => {}
            }
        }
        lines.push(if atomic_runs == 0 {
            "Atomic counters (tessera server-side): not measured".to_owned()
        } else if mismatches.is_empty() && unanswered.is_empty() {
            format!(
                "Atomic counters (tessera server-side) counted every acknowledged request in all \
                 {atomic_runs} runs: **met**"
            )
        } else {
            let mut line = "Atomic counters (tessera server-side) counted every acknowledged \
                            request: **missed**"
                .to_owned();
            if !mismatches.is_empty() {
                line.push_str(&format!("; miscounted in {}", mismatches.join(", ")));
            }
            if !unanswered.is_empty() {
                line.push_str(&format!("; could not be read in {}", unanswered.join(", ")));
            }
            line
        });
        if !check_failures.is_empty() {
            lines.push(format!(
                "The check request after wrk's stop (up to {} attempts) **failed** in: {}",
                CHECK_ATTEMPTS,
                check_failures.join("; ")
            ));
        }
        lines
    }
}

/// `document` with its `BEGIN`…`END` section replaced by `section` (which
/// should carry the markers itself), or with `section` appended if it has
/// none.
pub fn replace_section(document: &str, section: &str, sessions: u32) -> String {
    let (begin_marker, end_marker) = markers(sessions);
    let section = section.trim_end();
    if let Some(start) = document.find(begin_marker) {
        if let Some(end) = document[start..].find(end_marker) {
            let end = start + end + end_marker.len();
            let mut out = String::with_capacity(document.len() + section.len());
            out.push_str(&document[..start]);
            out.push_str(section);
            out.push_str(&document[end..]);
            if !out.ends_with('\n') {
                out.push('\n');
            }
            return out;
        }
    }
    let mut out = document.trim_end().to_owned();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(section);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wrk::SocketErrors;

    #[test]
    fn a_ratio_never_reads_as_the_other_side_of_its_target() {
        assert_eq!(against(0.997, 1.0, 2), "0.997");
        assert_eq!(against(0.9999, 1.0, 2), "0.9999");
        assert_eq!(against(1.004, 1.0, 2), "1.00");
        assert_eq!(against(0.95, 1.0, 2), "0.95");
        assert_eq!(against(19.97, 20.0, 1), "19.97");
        assert_eq!(against(24.44, 20.0, 1), "24.4");
    }

    #[test]
    fn replaces_an_existing_section_and_keeps_the_rest() {
        let document =
            format!("# Benchmarks\n\nintro\n\n{BEGIN}\nold numbers\n{END}\n\n## Later\ntext\n");
        let section = format!("{BEGIN}\nnew numbers\n{END}\n");
        let replaced = replace_section(&document, &section, 1);
        assert_eq!(
            replaced,
            format!("# Benchmarks\n\nintro\n\n{BEGIN}\nnew numbers\n{END}\n\n## Later\ntext\n")
        );
        // Idempotent.
        assert_eq!(replace_section(&replaced, &section, 1), replaced);
    }

    #[test]
    fn appends_when_there_is_no_section() {
        let section = format!("{BEGIN}\nnumbers\n{END}\n");
        assert_eq!(
            replace_section("# Benchmarks\n\nintro\n\n\n", &section, 1),
            format!("# Benchmarks\n\nintro\n\n{BEGIN}\nnumbers\n{END}\n")
        );
        assert_eq!(replace_section("", &section, 1), section);
        // A begin marker without an end is not a section: append.
        let broken = format!("text\n{BEGIN}\nhalf\n");
        assert!(replace_section(&broken, &section, 1).ends_with(&section));
    }

    fn measured(requests: u64, non_2xx: u64, final_counter: u64) -> Measured {
        Measured {
            wrk: WrkResult {
                requests,
                requests_per_sec: requests as f64 / 2.0,
                p50_ms: 0.2,
                p99_ms: 1.0,
                non_2xx,
                socket_errors: SocketErrors::default(),
            },
            first_counter: 1,
            final_counter: Some(final_counter),
            sessions: 1,
            check_errors: Vec::new(),
            server_cpu_us: Some(requests as f64 / 1000.0),
            redis_cpu_us: None,
            postgres_cpu_us: None,
            wrk_cpu_us: Some(12.5),
        }
    }

    /// A run of `name` in `round` that answered `requests` requests in 2 s.
    fn run(name: &str, round: usize, requests: u64) -> Run {
        Run {
            target: targets::find(name).expect("known target"),
            round,
            outcome: Ok(measured(requests, 0, 2)),
            load: Some(2.5),
        }
    }

    /// A report of `runs` over `rounds` rounds of 2 s.
    fn report_of(rounds: usize, runs: Vec<Run>) -> Report {
        Report {
            machine: Vec::new(),
            method: Method {
                threads: 2,
                connections: 16,
                duration_secs: 2,
                sessions: 1,
                rounds,
                release: true,
            },
            runs,
            skipped: Vec::new(),
            date: "2026-01-01".to_owned(),
        }
    }

    #[test]
    fn counter_checks() {
        // 1000 acknowledged + 3 in flight + create + check.
        let exact = Check::of(Merge::Atomic, &measured(1000, 0, 1005), 16);
        assert_eq!(
            exact,
            Check::Exact {
                acknowledged: 1000,
                in_flight: 3
            }
        );
        assert!(exact.passed());
        let short = Check::of(Merge::Atomic, &measured(1000, 0, 990), 16);
        assert!(!short.passed());
        let too_many = Check::of(Merge::Atomic, &measured(1000, 0, 1100), 16);
        assert!(!too_many.passed());
        // 503s are not acknowledged.
        let with_errors = Check::of(Merge::Atomic, &measured(1000, 10, 992), 16);
        assert!(with_errors.passed());
        let lost = Check::of(Merge::LastWriteWins, &measured(1000, 0, 102), 16);
        assert_eq!(
            lost,
            Check::Lost {
                counted: 100,
                acknowledged: 1000
            }
        );
        assert!(lost.describe().contains("90.0% lost"));
        assert!(Check::of(Merge::Cookie, &measured(1000, 0, 2), 16).passed());
        // A cookie session that counted is no cookie session.
        assert!(!Check::of(Merge::Cookie, &measured(1000, 0, 1002), 16).passed());
    }

    /// Over many sessions the counters are summed: each session's create
    /// and check request count one each.
    #[test]
    fn counter_checks_over_many_sessions() {
        let over = |final_counter: u64| {
            let mut m = measured(1000, 0, final_counter);
            m.sessions = 100;
            m.first_counter = 100;
            m
        };
        // 100 creates + 1000 acknowledged + 2 in flight + 100 checks.
        assert_eq!(
            Check::of(Merge::Atomic, &over(1202), 16),
            Check::Exact {
                acknowledged: 1000,
                in_flight: 2
            }
        );
        assert!(!Check::of(Merge::Atomic, &over(1150), 16).passed());
        assert_eq!(
            Check::of(Merge::Cookie, &over(200), 16),
            Check::Cookie { final_counter: 2 }
        );
        assert!(!Check::of(Merge::Cookie, &over(201), 16).passed());
    }

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(ratio(0.5), "0.50×");
        assert_eq!(ratio(0.02), "0.020× (1/50)");
    }

    #[test]
    fn ratios_are_also_taken_round_by_round() {
        // The machine is twice as fast in round 2: the medians of each
        // target pair different rounds, the per-round ratios do not.
        let report = report_of(
            3,
            vec![
                run("axum-bare", 1, 100_000),
                run("axum-headers", 1, 95_000),
                run("tessera-cookie", 1, 80_000),
                run("axum-bare", 2, 200_000),
                run("axum-headers", 2, 196_000),
                run("tessera-cookie", 2, 180_000),
                run("axum-bare", 3, 110_000),
                run("axum-headers", 3, 105_600),
                run("tessera-cookie", 3, 77_000),
            ],
        );
        let (middle, low, high) = report
            .per_round_ratio("tessera-cookie", "axum-bare")
            .expect("three rounds");
        assert!((middle - 0.8).abs() < 1e-9, "{middle}");
        assert!((low - 0.7).abs() < 1e-9, "{low}");
        assert!((high - 0.9).abs() < 1e-9, "{high}");
        assert!(report
            .targets()
            .iter()
            .any(|line| line.contains("27.3% lower (per round: median 0.80×, 0.70–0.90×)")));
        // Medians 105,600 (headers) and 110,000 (bare): 0.96×; cookie 80,000.
        assert!(report.targets().iter().any(|line| line.contains(
            "the headers alone, `axum-headers` vs `axum-bare`, 0.96× (per round: median 0.96×, \
             0.95–0.98×); the session work alone, `tessera-cookie` vs `axum-headers`, 0.76× \
             (per round: median 0.84×, 0.73–0.92×)"
        )));
        assert_eq!(
            report.per_round_ratio("tessera-cookie", "tower-memory"),
            None
        );
    }

    /// A target is shown met only when the ratio of the median throughputs
    /// and the median of the rounds' ratios both meet it.
    #[test]
    fn a_target_is_met_only_by_both_measures() {
        let report = |cookie: [u64; 3]| {
            report_of(
                3,
                [100_000, 200_000, 120_000]
                    .into_iter()
                    .zip(cookie)
                    .enumerate()
                    .flat_map(|(round, (bare, cookie))| {
                        [
                            run("axum-bare", round + 1, bare),
                            run("tessera-cookie", round + 1, cookie),
                        ]
                    })
                    .collect(),
            )
        };
        let cookie_line = |report: &Report| {
            report
                .targets()
                .into_iter()
                .find(|line| line.starts_with("`tessera-cookie` vs `axum-bare`"))
                .expect("the cookie target's line")
        };
        // Requests in 2 s, so medians of 55,000 against 60,000 req/s (0.92×);
        // rounds 1.10×, 0.75×, 0.71×.
        let split = cookie_line(&report([110_000, 150_000, 85_000]));
        assert!(
            split.contains(
                "(per round: median 0.75×, 0.71–1.10×): **not shown**: the median throughputs \
                 meet it, the median of the rounds' ratios does not"
            ),
            "{split}"
        );
        // Medians 47,500 against 60,000 (0.79×); rounds 0.95×, 0.95×, 0.50×.
        let split = cookie_line(&report([95_000, 190_000, 60_000]));
        assert!(
            split.contains(
                "**not shown**: the median of the rounds' ratios meets it, the median \
                 throughputs do not"
            ),
            "{split}"
        );
        let met = cookie_line(&report([95_000, 190_000, 114_000]));
        assert!(met.ends_with(": **met**"), "{met}");
        let missed = cookie_line(&report([70_000, 150_000, 80_000]));
        assert!(missed.ends_with(": **missed**"), "{missed}");
    }

    /// A round that failed on either side leaves no verdict: the medians
    /// then pair other rounds, and a peer that never answered divided
    /// into tessera's figure made an infinite ratio, "met".
    #[test]
    fn a_target_with_a_failed_run_is_not_judged() {
        let mut runs = Vec::new();
        for round in 1..=2 {
            runs.push(run("tessera-redis", round, 60_000));
            runs.push(run("tower-redis", round, 50_000));
        }
        runs[3].outcome = Err("the server died under load".to_owned());
        let line = report_of(2, runs)
            .targets()
            .into_iter()
            .find(|line| line.starts_with("`tessera-redis` vs `tower-redis`"))
            .expect("the Redis target's line");
        assert!(
            line.ends_with(
                "**not shown**: 1 of the two targets' runs failed (listed under Failures)"
            ),
            "{line}"
        );
    }

    /// A pair that `--only` left out (one of its targets, or both) is not
    /// listed as "not measured"; a chosen one that did not run is.
    #[test]
    fn pairs_left_out_on_purpose_are_not_listed() {
        let mut report = report_of(1, vec![run("tessera-redis", 1, 60_000)]);
        report
            .skipped
            .push(("tower-redis", "no --redis-url given".to_owned()));
        let lines = report.targets();
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with("`tessera-redis` vs `tower-redis`: not measured")),
            "{lines:?}"
        );
        assert!(
            !lines
                .iter()
                .any(|line| line.contains("flask-session-redis")),
            "{lines:?}"
        );
        assert!(
            !lines.iter().any(|line| line.contains("tessera-postgres")),
            "{lines:?}"
        );
    }

    /// Rounded, a per-round median or a cost never reads as the other side
    /// of its goal from the verdict beside it.
    #[test]
    fn figures_beside_a_verdict_are_on_its_side() {
        // Medians 89,960 against 100,000 req/s: 10.04% lower (which one
        // decimal showed as "10.0%"), rounds 0.8996× ("0.90×").
        let runs = vec![
            run("axum-bare", 1, 200_000),
            run("tessera-cookie", 1, 179_920),
            run("axum-bare", 2, 200_000),
            run("tessera-cookie", 2, 179_920),
        ];
        let line = report_of(2, runs)
            .targets()
            .into_iter()
            .find(|line| line.starts_with("`tessera-cookie` vs `axum-bare`"))
            .expect("the cookie target's line");
        assert!(line.contains("10.04% lower"), "{line}");
        assert!(line.contains("median 0.8996×"), "{line}");
        assert!(line.ends_with("**missed**"), "{line}");
    }

    #[test]
    fn renders_a_report_with_targets() {
        let run = |name: &str, round: usize, m: Measured| Run {
            target: targets::find(name).expect("known target"),
            round,
            outcome: Ok(m),
            load: Some(2.5),
        };
        let report = Report {
            machine: vec![("CPU".to_owned(), "test".to_owned())],
            method: Method {
                threads: 2,
                connections: 16,
                duration_secs: 2,
                sessions: 1,
                rounds: 1,
                release: true,
            },
            runs: vec![
                run("axum-bare", 1, measured(200_000, 0, 200_010)),
                run("tessera-cookie", 1, measured(190_000, 0, 2)),
                run("tessera-memory", 1, measured(100_000, 0, 100_004)),
                run("tower-memory", 1, measured(90_000, 0, 500)),
                run("flask-cookie", 1, measured(4_000, 0, 2)),
                run("tessera-actix-cookie", 1, measured(90_000, 0, 2)),
                run("actix-cookie", 1, measured(100_000, 0, 2)),
                Run {
                    target: targets::find("tessera-redis").expect("known"),
                    round: 1,
                    outcome: Err("Redis went away".to_owned()),
                    load: None,
                },
                Run {
                    target: targets::find("tower-sqlite").expect("known"),
                    round: 1,
                    outcome: Err("the server did not start".to_owned()),
                    load: None,
                },
                run(
                    "tessera-sqlite",
                    1,
                    Measured {
                        check_errors: vec!["status 503 (store unavailable)".to_owned()],
                        ..measured(8_000, 0, 8_003)
                    },
                ),
                run(
                    "tessera-postgres",
                    1,
                    Measured {
                        final_counter: None,
                        check_errors: vec!["status 503".to_owned(); CHECK_ATTEMPTS],
                        postgres_cpu_us: Some(61.5),
                        ..measured(8_000, 0, 0)
                    },
                ),
            ],
            skipped: vec![("tower-redis", "no --redis-url given".to_owned())],
            date: "2026-01-01".to_owned(),
        };
        let text = report.render();
        assert!(text.starts_with(BEGIN));
        assert!(text.trim_end().ends_with(END));
        assert!(text.contains("| `tessera-memory` | memory | 50,000 | 50,000–50,000 | 0.20 | 1.00 | 0.50× | 0 | 0 | exact in 1/1 runs |"));
        assert!(text.contains("5.0% lower: **met**"));
        assert!(text.contains("= 1.11×: **met**"));
        assert!(text.contains("= 47.5×: **met**"));
        assert!(text.contains(
            "`tessera-actix-cookie` vs `actix-cookie` (no target; parity is 1.0×): 45,000 vs \
             50,000 req/s = 0.90×: below parity"
        ));
        assert!(text.contains("failed: round 1: Redis went away"));
        assert!(text.contains("`tower-redis`: no --redis-url given"));
        assert!(text.contains(
            "`tessera-sqlite` vs `tower-sqlite`: not measured (no numbers for `tower-sqlite`)"
        ));
        assert!(text.contains("**missed**; could not be read in round 1 `tessera-postgres`"));
        assert!(text.contains(
            "**failed** in: round 1 `tessera-sqlite` (1 failed, first: status 503 (store \
             unavailable); a retry answered); round 1 `tessera-postgres` (5 failed"
        ));
        assert!(text.contains("exact in 0/1 runs; **no answer to the check** in 1/1 runs"));
        // `measured(100_000, ..)` says 100 µs of server CPU per request.
        assert!(
            text.contains("| `tessera-memory` | 100.0 | — | — | 12.5 |"),
            "{text}"
        );
        assert!(
            text.contains("| `tessera-postgres` | 8.0 | — | 61.5 | 12.5 |"),
            "{text}"
        );
        assert!(text.contains("### CPU per request"));
    }
}
