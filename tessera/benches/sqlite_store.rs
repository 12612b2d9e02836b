//! SQLite store latency at 10k and 1M stored sessions, and the cost of
//! sweeping 1M expired records (with request latency measured meanwhile).
//!
//! Run with `cargo bench -p tessera --features sqlite --bench sqlite_store`;
//! `scripts/bench-store.sh` runs it and writes the results into
//! BENCHMARKS.md. Prints one JSON object on stdout; progress on stderr.
//!
//! Sessions are bulk-inserted with plain SQL in large transactions (the
//! store's own `create` commits each one, which would make filling 1M rows
//! take minutes); every measured operation goes through `SqliteStore`.
//!
//! The two sizes are two database files side by side, measured alternately
//! in `ROUNDS` rounds (10k then 1M, then 1M then 10k, ...), so a change in
//! the machine's load during the run falls on both sizes alike.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use tessera::store::{Changes, SessionId, SessionStore, SqliteStore};
use tessera::{Map, Value};

/// Loads, and then saves, per size and round.
const SAMPLES_PER_ROUND: usize = 4_000;
/// Rounds of measurement per size, alternating between the sizes.
const ROUNDS: usize = 5;
/// The background sweeper's batch and shortest pause (`SWEEP_BATCH`,
/// `SWEEP_PAUSE` in `tessera/src/core.rs`).
const SWEEP_BATCH: usize = 64;
const SWEEP_PAUSE: Duration = Duration::from_millis(2);
const NOW: u64 = 2_000_000_000;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

/// Mirrors `sweep_pause` in `tessera/src/core.rs` (private there): after each
/// batch the sweeper pauses as long as the batch took, at least `SWEEP_PAUSE`,
/// so the sweep measured here leaves requests the same room as the real one.
fn sweep_pause(took: Duration) -> Duration {
    took.max(SWEEP_PAUSE)
}

fn summary(mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    serde_json::json!({
        "samples": samples.len(),
        "p50_us": percentile(&samples, 0.50),
        "p99_us": percentile(&samples, 0.99),
        "max_us": percentile(&samples, 1.0),
    })
}

/// A session id derived from a number, so the bench can pick random live ones.
fn id(n: usize) -> SessionId {
    SessionId::parse(&format!("bench{n:0>38}")).expect("a valid id")
}

/// Inserts `count` sessions numbered from `first`, each with three keys,
/// expiring at `expires_at`: multi-row statements in large transactions.
async fn bulk_insert(path: &Path, first: usize, count: usize, expires_at: u64) {
    const PER_STATEMENT: usize = 100;
    let options = SqliteConnectOptions::new().filename(path);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .expect("connect");
    let ids: Vec<usize> = (first..first + count).collect();
    for transaction in ids.chunks(20_000) {
        let mut tx = conn.begin().await.expect("begin");
        for chunk in transaction.chunks(PER_STATEMENT) {
            let sessions = vec!["(?, ?, ?, ?, NULL)"; chunk.len()].join(", ");
            let sessions_sql = format!(
                "INSERT INTO tessera_sessions (id, user_id, created_at, expires_at, absolute_expires_at) VALUES {sessions}"
            );
            let mut insert = sqlx::query(&sessions_sql);
            let sql_values = vec!["(?, ?, ?)"; chunk.len() * 3].join(", ");
            let values_sql = format!(
                "INSERT INTO tessera_session_values (session_id, key, value) VALUES {sql_values}"
            );
            let mut values = sqlx::query(&values_sql);
            for &n in chunk {
                let sid = id(n);
                insert = insert
                    .bind(sid.as_str().to_owned())
                    .bind(format!("user{}", n % 1000))
                    .bind((NOW - 100) as i64)
                    .bind(expires_at as i64);
                for (key, value) in [
                    ("_permanent", "true".to_owned()),
                    ("user_id", n.to_string()),
                    ("theme", "\"dark\"".to_owned()),
                ] {
                    values = values.bind(sid.as_str().to_owned()).bind(key).bind(value);
                }
            }
            insert.execute(&mut *tx).await.expect("insert sessions");
            values.execute(&mut *tx).await.expect("insert values");
        }
        tx.commit().await.expect("commit");
    }
}

/// A cheap deterministic pseudo-random sequence (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One size's database under measurement: its store, the random sequence
/// that picks among its sessions (kept from round to round) and every
/// sample so far.
struct Sized {
    path: PathBuf,
    store: SqliteStore,
    stored: usize,
    rng: Rng,
    loads: Vec<Duration>,
    saves: Vec<Duration>,
    rounds: Vec<serde_json::Value>,
}

impl Sized {
    async fn new(dir: &Path, stored: usize) -> Self {
        let path = dir.join(format!("latency-{stored}.db"));
        let store = SqliteStore::open(&path).await.expect("open");
        eprintln!("bench-store: inserting {stored} sessions");
        let started = Instant::now();
        bulk_insert(&path, 0, stored, NOW + 3600).await;
        eprintln!(
            "bench-store: inserted in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // Warm the page cache the way a running server's would be.
        for _ in 0..2000 {
            let _ = store.load(&id(rng.below(stored)), NOW).await;
        }
        Self {
            path,
            store,
            stored,
            rng,
            loads: Vec::new(),
            saves: Vec::new(),
            rounds: Vec::new(),
        }
    }

    /// One round: random loads, then random saves of one key with the
    /// expiry moved, one at a time.
    async fn round(&mut self) {
        let mut loads = Vec::with_capacity(SAMPLES_PER_ROUND);
        for _ in 0..SAMPLES_PER_ROUND {
            let sid = id(self.rng.below(self.stored));
            let t = Instant::now();
            let record = self.store.load(&sid, NOW).await.expect("load");
            loads.push(t.elapsed());
            assert!(record.is_some());
        }
        let mut saves = Vec::with_capacity(SAMPLES_PER_ROUND);
        for i in 0..SAMPLES_PER_ROUND {
            let sid = id(self.rng.below(self.stored));
            let changes = Changes {
                set: Map::from([("visits".to_owned(), Value::from(i))]),
                expires_at: Some(NOW + 7200),
                ..Changes::default()
            };
            let t = Instant::now();
            let applied = self
                .store
                .update(&sid, &changes, NOW)
                .await
                .expect("update");
            saves.push(t.elapsed());
            assert!(applied);
        }
        self.loads.extend_from_slice(&loads);
        self.saves.extend_from_slice(&saves);
        self.rounds
            .push(serde_json::json!({ "load": summary(loads), "save": summary(saves) }));
    }

    async fn results(self) -> serde_json::Value {
        self.store.close().await;
        let bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(self.path.with_extension("db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        let _ = std::fs::remove_file(&self.path);
        serde_json::json!({
            "stored": self.stored,
            "load": summary(self.loads),
            "save": summary(self.saves),
            "rounds": self.rounds,
            "file_bytes_per_session": bytes as f64 / self.stored as f64,
        })
    }
}

/// Both sizes in `ROUNDS` rounds, alternating which goes first.
async fn latency(dir: &Path, small: usize, large: usize) -> Vec<serde_json::Value> {
    let mut small = Sized::new(dir, small).await;
    let mut large = Sized::new(dir, large).await;
    eprintln!("bench-store: {ROUNDS} rounds at each size");
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            small.round().await;
            large.round().await;
        } else {
            large.round().await;
            small.round().await;
        }
    }
    vec![small.results().await, large.results().await]
}

async fn sweep(dir: &Path, expired: usize, live: usize) -> serde_json::Value {
    let path = dir.join("sweep.db");
    let store = Arc::new(SqliteStore::open(&path).await.expect("open"));
    eprintln!("bench-store: inserting {expired} expired and {live} live sessions");
    bulk_insert(&path, 0, live, NOW + 3600).await;
    bulk_insert(&path, live, expired, NOW - 10).await;

    // Request latency with no sweep, then during the sweep.
    let baseline = load_for(&store, live, Duration::from_secs(3), None).await;
    let running = Arc::new(AtomicBool::new(true));
    let loader = {
        let (store, running) = (store.clone(), running.clone());
        tokio::spawn(async move {
            load_for(&store, live, Duration::from_secs(3600), Some(running)).await
        })
    };
    let started = Instant::now();
    let mut purged = 0;
    let mut paused = Duration::ZERO;
    loop {
        let batch = Instant::now();
        let count = store.purge_expired(NOW, SWEEP_BATCH).await.expect("purge");
        purged += count;
        if count < SWEEP_BATCH as u64 {
            break;
        }
        let pause = Instant::now();
        tokio::time::sleep(sweep_pause(batch.elapsed())).await;
        paused += pause.elapsed();
    }
    let sweep_secs = started.elapsed().as_secs_f64();
    running.store(false, Ordering::SeqCst);
    let during = loader.await.expect("loader");
    assert_eq!(purged as usize, expired);
    store.close().await;
    let _ = std::fs::remove_file(&path);
    serde_json::json!({
        "expired": expired,
        "live": live,
        "sweep_seconds": sweep_secs,
        "batch": SWEEP_BATCH,
        "min_pause_ms": SWEEP_PAUSE.as_millis() as u64,
        "paused_seconds": paused.as_secs_f64(),
        "load_without_sweep": baseline,
        "load_during_sweep": during,
    })
}

/// Loads and saves random live sessions until `deadline` passes or
/// `running` is cleared; returns the latencies of each.
async fn load_for(
    store: &SqliteStore,
    live: usize,
    deadline: Duration,
    running: Option<Arc<AtomicBool>>,
) -> serde_json::Value {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut loads, mut saves) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed() < deadline && running.as_ref().is_none_or(|r| r.load(Ordering::SeqCst))
    {
        let sid = id(rng.below(live));
        let t = Instant::now();
        let record = store.load(&sid, NOW).await.expect("load");
        loads.push(t.elapsed());
        assert!(record.is_some());
        let changes = Changes {
            set: Map::from([("seen".to_owned(), Value::from(loads.len()))]),
            ..Changes::default()
        };
        let t = Instant::now();
        assert!(store.update(&sid, &changes, NOW).await.expect("update"));
        saves.push(t.elapsed());
        tokio::task::yield_now().await;
    }
    serde_json::json!({ "load": summary(loads), "save": summary(saves) })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo bench -- --list` from other tooling
    }
    let large: usize = std::env::var("TESSERA_BENCH_LARGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("tessera-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let latency = latency(&dir, 10_000, large).await;
    let sweep = sweep(&dir, large, 10_000).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{}",
        serde_json::json!({ "rounds": ROUNDS, "latency": latency, "sweep": sweep })
    );
}
