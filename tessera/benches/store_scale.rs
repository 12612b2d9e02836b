//! Every store at scale, through the `SessionStore` API: load and save
//! latency with 10k and with 1M stored sessions, the memory each session
//! costs, and the cost of sweeping expired sessions (with load latency
//! measured meanwhile). SQLite has its own, longer benchmark
//! (`sqlite_store`); this one covers the memory store, Redis (both layouts)
//! and PostgreSQL.
//!
//! The two sizes live side by side in two stores of the same kind (two
//! memory stores; Redis databases 0 and 1; PostgreSQL's default schema and
//! one of the bench's own) and are measured alternately, in `ROUNDS`
//! rounds (10k then 1M, then 1M then 10k, ...), so a change in the
//! machine's load during the run falls on both sizes alike.
//!
//! ```text
//! eval "$(scripts/services.sh start)"
//! cargo bench -p tessera --all-features --bench store_scale
//! ```
//!
//! Redis and PostgreSQL come from `TESSERA_TEST_REDIS_URL` and
//! `TESSERA_TEST_POSTGRES_URL` (a store whose variable is unset is skipped);
//! `TESSERA_BENCH_LARGE` (default 1,000,000) and `TESSERA_BENCH_EXPIRED`
//! (default 100,000) set the sizes. Prints one JSON object on stdout;
//! progress on stderr. The bench's keys are removed afterwards.
//!
//! Sessions are created through `create` by 32 concurrent tasks, each
//! holding `{"_permanent": true, "user": "user-N", "visits": N}`. Times are
//! a logical clock (`NOW`), so "expired" sessions are expired for the store
//! without waiting: Redis counts TTLs from the caller's clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tessera::store::flask_format::SerializationFormat;
use tessera::store::{
    Changes, FlaskSessionRedisStore, MemoryStore, PostgresStore, Record, RedisStore, SessionId,
    SessionStore,
};
use tessera::{Map, Value};

mod support;
use support::{alternate, summary, sweep, Rng, StoreAtSize};

/// Loads, and then saves, per size and round.
const SAMPLES_PER_ROUND: usize = 2_000;
/// Rounds of measurement per size, alternating between the sizes.
const ROUNDS: usize = 6;
const SMALL: usize = 10_000;
const TASKS: usize = 32;
const NOW: u64 = 1_900_000_000;
const HOUR: u64 = 3600;
/// Created a minute before `NOW`, live for an hour after it.
const LIVE: (u64, u64) = (NOW - 60, NOW + HOUR);

/// A session id from a run tag and a number, so the bench can pick live ones.
fn id(tag: &str, n: usize) -> SessionId {
    SessionId::parse(&format!("bench{tag}{n:0>30}")).expect("a valid id")
}

fn record(n: usize, created_at: u64, expires_at: u64) -> Record {
    Record {
        data: Map::from([
            ("_permanent".to_owned(), Value::Bool(true)),
            ("user".to_owned(), Value::from(format!("user-{n}"))),
            ("visits".to_owned(), Value::from(n)),
        ]),
        user_id: None,
        created_at,
        expires_at,
        absolute_expires_at: None,
    }
}

/// Creates sessions `first..first + count` through the store, concurrently.
async fn fill(
    store: &Arc<dyn SessionStore>,
    tag: &str,
    first: usize,
    count: usize,
    (created_at, expires_at): (u64, u64),
) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (store, tag) = (store.clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut n = first + task;
            while n < first + count {
                let record = record(n, created_at, expires_at);
                assert!(store.create(&id(&tag, n), &record).await.expect("create"));
                n += TASKS;
            }
        }));
    }
    for task in tasks {
        task.await.expect("fill task");
    }
    eprintln!(
        "store-scale: created {count} sessions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Loads and saves random live sessions until `running` is cleared.
async fn load_while(
    store: Arc<dyn SessionStore>,
    tag: String,
    live: usize,
    running: Arc<AtomicBool>,
) -> serde_json::Value {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut loads, mut saves) = (Vec::new(), Vec::new());
    while running.load(Ordering::SeqCst) {
        let sid = id(&tag, rng.below(live));
        let t = Instant::now();
        assert!(store.load(&sid, NOW).await.expect("load").is_some());
        loads.push(t.elapsed());
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

/// How a store's footprint is measured: bytes in use now.
type Footprint = Box<dyn Fn() -> u64>;

/// Which of the two stores of a kind: the one that holds 10k sessions or
/// the one that grows to the large size.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Size {
    Small,
    Large,
}

async fn run(
    name: &str,
    make: impl Fn(Size) -> Arc<dyn SessionStore>,
    footprint: Footprint,
    large: usize,
    expired: usize,
) -> serde_json::Value {
    let tag = format!("{:0>4}", std::process::id() % 10_000);
    eprintln!("store-scale: {name}");
    let (small_store, store) = (make(Size::Small), make(Size::Large));
    // Connections and schema first, so they are not counted as sessions.
    for store in [&small_store, &store] {
        store
            .load(&id(&tag, usize::MAX / 2), NOW)
            .await
            .expect("first use");
    }
    fill(&small_store, &tag, 0, SMALL, LIVE).await;
    // The small store is whole before this, so only the large one's
    // sessions count in the growth.
    let before = footprint();
    fill(&store, &tag, 0, large, LIVE).await;
    let after = footprint();
    let ids = |tag: String| move |n| id(&tag, n);
    let mut small = StoreAtSize::new(small_store, ids(tag.clone()), SMALL, NOW, 1000).await;
    let mut big = StoreAtSize::new(store.clone(), ids(tag.clone()), large, NOW, 1000).await;
    eprintln!("store-scale: {name}: {ROUNDS} rounds at {SMALL} and at {large} sessions");
    alternate(&mut small, &mut big, ROUNDS, SAMPLES_PER_ROUND).await;

    // The sweep: `expired` sessions past their expiry beside the live ones,
    // with one task loading and saving live sessions meanwhile. They lived
    // two hours, so a Redis TTL keeps them stored until the sweep.
    let sweep_tag = format!("{tag}x");
    fill(&store, &sweep_tag, 0, expired, (NOW - 2 * HOUR, NOW - 10)).await;
    let running = Arc::new(AtomicBool::new(true));
    let loader = tokio::spawn(load_while(
        store.clone(),
        tag.clone(),
        large,
        running.clone(),
    ));
    let swept = sweep(&*store, NOW).await;
    running.store(false, Ordering::SeqCst);
    let during = loader.await.expect("loader");
    assert_eq!(
        swept.purged as usize, expired,
        "{name}: the sweep removes exactly the expired"
    );
    eprintln!(
        "store-scale: {name}: swept {} in {:.1} s",
        swept.purged, swept.seconds
    );
    let mut sweep = swept.to_json();
    sweep["during"] = during;
    serde_json::json!({
        "store": name,
        "rounds": ROUNDS,
        "latency": [small.results(), big.results()],
        "bytes_per_session": after.saturating_sub(before) as f64 / large as f64,
        "sweep": sweep,
    })
}

/// Resident memory of this process, for the memory store.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn redis_used_memory(url: &str) -> u64 {
    let info: String = ::redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .and_then(|mut conn| ::redis::cmd("INFO").arg("memory").query(&mut conn))
        .expect("INFO memory");
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

fn postgres_bytes(url: &str) -> u64 {
    let url = url.to_owned();
    // A runtime of its own: this is called from inside the bench's runtime.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
                let bytes: i64 = sqlx::query_scalar(
                    "SELECT pg_total_relation_size('tessera_sessions')
                          + pg_total_relation_size('tessera_session_values')",
                )
                .fetch_one(&mut conn)
                .await
                .expect("relation sizes");
                u64::try_from(bytes).unwrap_or(0)
            })
    })
    .join()
    .expect("size thread")
}

/// Where the PostgreSQL store of 10k sessions keeps its tables.
const POSTGRES_SMALL_SCHEMA: &str = "tessera_bench_scale_small";

/// The URL of Redis database `database` on the server of `url`.
fn redis_url_of_database(url: &str, database: u8) -> String {
    let server = match url.rsplit_once('/') {
        Some((server, last)) if last.bytes().all(|b| b.is_ascii_digit()) => server,
        _ => url.trim_end_matches('/'),
    };
    format!("{server}/{database}")
}

/// Removes the bench's PostgreSQL sessions (their values go with them) and
/// the small store's schema.
fn postgres_clean(url: &str) {
    let url = url.to_owned();
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::query("DELETE FROM tessera_sessions WHERE id LIKE 'bench%'")
                        .execute(&mut conn)
                        .await;
                    let _ = sqlx::query(&format!(
                        "DROP SCHEMA IF EXISTS {POSTGRES_SMALL_SCHEMA} CASCADE"
                    ))
                    .execute(&mut conn)
                    .await;
                }
            });
    })
    .join();
}

/// Removes the bench's Redis keys (its prefixes only).
fn redis_clean(url: &str, prefix: &str) {
    let Ok(mut conn) = ::redis::Client::open(url).and_then(|client| client.get_connection()) else {
        return;
    };
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, keys)): Result<(u64, Vec<String>), _> = ::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(10_000)
            .query(&mut conn)
        else {
            return;
        };
        if !keys.is_empty() {
            let _: Result<(), _> = ::redis::cmd("UNLINK").arg(keys).query(&mut conn);
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo bench -- --list` from other tooling
    }
    let size = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let large = size("TESSERA_BENCH_LARGE", 1_000_000).max(SMALL);
    let expired = size("TESSERA_BENCH_EXPIRED", 100_000);
    let mut results = Vec::new();

    results.push(
        run(
            "memory",
            // A million sessions of the benchmark's shape are beyond the
            // default byte bound (about 380 bytes each as the store counts
            // them): unbounded, so that every one stays.
            |_| Arc::new(MemoryStore::new(4_000_000).with_max_bytes(usize::MAX)),
            Box::new(resident_bytes),
            large,
            expired,
        )
        .await,
    );
    if let Ok(url) = std::env::var("TESSERA_TEST_REDIS_URL") {
        let small_url = redis_url_of_database(&url, 1);
        for (name, prefix) in [("redis", "scale:"), ("redis-flask-session", "scale-fs:")] {
            let (large_url, small_store_url, used_url) =
                (url.clone(), small_url.clone(), url.clone());
            let make = move |size: Size| -> Arc<dyn SessionStore> {
                let store_url = if size == Size::Small {
                    &small_store_url
                } else {
                    &large_url
                };
                if name == "redis" {
                    Arc::new(RedisStore::new(store_url).expect("URL").with_prefix(prefix))
                } else {
                    Arc::new(
                        FlaskSessionRedisStore::new(store_url, SerializationFormat::Msgpack)
                            .expect("URL")
                            .with_prefix(prefix),
                    )
                }
            };
            results.push(
                run(
                    name,
                    make,
                    Box::new(move || redis_used_memory(&used_url)),
                    large,
                    expired,
                )
                .await,
            );
            redis_clean(&url, prefix);
            redis_clean(&small_url, prefix);
        }
    } else {
        eprintln!("store-scale: TESSERA_TEST_REDIS_URL is not set; Redis skipped");
    }
    if let Ok(url) = std::env::var("TESSERA_TEST_POSTGRES_URL") {
        let (store_url, size_url) = (url.clone(), url.clone());
        results.push(
            run(
                "postgres",
                move |size| {
                    let store = PostgresStore::new(&store_url).expect("URL");
                    Arc::new(match size {
                        Size::Small => store
                            .with_schema(POSTGRES_SMALL_SCHEMA)
                            .expect("a schema name"),
                        Size::Large => store,
                    })
                },
                Box::new(move || postgres_bytes(&size_url)),
                large,
                expired,
            )
            .await,
        );
        postgres_clean(&url);
    } else {
        eprintln!("store-scale: TESSERA_TEST_POSTGRES_URL is not set; PostgreSQL skipped");
    }
    println!("{}", serde_json::json!({ "stores": results }));
}
