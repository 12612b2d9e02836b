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

mod support;
use support::{alternate, summary, sweep, Rng, StoreAtSize};

/// Loads, and then saves, per size and round.
const SAMPLES_PER_ROUND: usize = 4_000;
/// Rounds of measurement per size, alternating between the sizes.
const ROUNDS: usize = 6;
const NOW: u64 = 2_000_000_000;
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

/// A database file of `stored` live sessions, inserted in bulk, and the
/// store on it, warmed up.
async fn store_at_size(dir: &Path, stored: usize) -> (StoreAtSize, Arc<SqliteStore>, PathBuf) {
    let path = dir.join(format!("latency-{stored}.db"));
    let store = Arc::new(SqliteStore::open(&path).await.expect("open"));
    eprintln!("bench-store: inserting {stored} sessions");
    let started = Instant::now();
    bulk_insert(&path, 0, stored, NOW + 3600).await;
    eprintln!(
        "bench-store: inserted in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let measured = StoreAtSize::new(store.clone(), id, stored, NOW, 2000).await;
    (measured, store, path)
}

/// Both sizes in `ROUNDS` alternating rounds, then each file's size.
async fn latency(dir: &Path, small: usize, large: usize) -> Vec<serde_json::Value> {
    let mut small = store_at_size(dir, small).await;
    let mut large = store_at_size(dir, large).await;
    eprintln!("bench-store: {ROUNDS} rounds at each size");
    alternate(&mut small.0, &mut large.0, ROUNDS, SAMPLES_PER_ROUND).await;
    let mut results = Vec::new();
    for (sized, store, path) in [small, large] {
        store.close().await;
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(path.with_extension("db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        let _ = std::fs::remove_file(&path);
        let mut result = sized.results();
        result["file_bytes_per_session"] =
            (bytes as f64 / result["stored"].as_f64().unwrap_or(1.0)).into();
        results.push(result);
    }
    results
}

async fn sweep_beside_live(dir: &Path, expired: usize, live: usize) -> serde_json::Value {
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
    let swept = sweep(&*store, NOW).await;
    running.store(false, Ordering::SeqCst);
    let during = loader.await.expect("loader");
    assert_eq!(swept.purged as usize, expired);
    store.close().await;
    let _ = std::fs::remove_file(&path);
    let mut result = swept.to_json();
    result["expired"] = expired.into();
    result["live"] = live.into();
    result["load_without_sweep"] = baseline;
    result["load_during_sweep"] = during;
    result
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
    let sweep = sweep_beside_live(&dir, large, 10_000).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{}",
        serde_json::json!({ "rounds": ROUNDS, "latency": latency, "sweep": sweep })
    );
}
