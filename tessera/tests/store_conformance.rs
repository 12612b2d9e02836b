//! The contract every [`SessionStore`] meets, written once and run against
//! each store.
//!
//! The cases are plain async functions taking the store; `conformance!`
//! instantiates every one of them as a test for a store, so adding a store is
//! one line giving its name and an async constructor:
//!
//! ```ignore
//! conformance!(redis, redis_fixture);
//! ```
//!
//! Every case uses fresh random ids and explicit times around [`NOW`], never
//! the clock, so cases are independent of each other and of the machine;
//! but for "log out everywhere", which takes no time and counts the
//! sessions live by the clock (see [`live_by_the_clock`]).

use std::collections::BTreeSet;
use std::sync::Arc;

#[cfg(feature = "redis")]
use tessera::store::flask_format::SerializationFormat;
use tessera::store::{
    Changes, ListEdit, MemoryStore, Record, SessionId, SessionInfo, SessionStore, StoreError,
    UpdateOutcome,
};
use tessera::{tagged, Map, Number, Value};

/// The "current time" of every case, in Unix seconds.
const NOW: u64 = 1_000_000;
const HOUR: u64 = 3600;

/// What a store gives back for a value it was given, or `None` if it cannot
/// hold the value at all.
type Keeps = fn(&Value) -> Option<Value>;

/// Stores that keep Flask's tagged JSON give back every value as it was.
fn keeps_everything(value: &Value) -> Option<Value> {
    Some(value.clone())
}

/// `data` as a store that `keeps` them gives it back, without what it
/// cannot hold.
fn kept(keeps: Keeps, data: &Map) -> Map {
    data.iter()
        .filter_map(|(key, value)| Some((key, keeps(value)?)))
        .collect()
}

/// A store under test, and whatever must outlive it (a temporary directory,
/// a key prefix to drop).
struct Fixture {
    store: Arc<dyn SessionStore>,
    keeps: Keeps,
    _guard: Option<Box<dyn Send>>,
}

impl Fixture {
    fn new(store: impl SessionStore) -> Self {
        Self {
            store: Arc::new(store),
            keeps: keeps_everything,
            _guard: None,
        }
    }

    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    fn with_guard(store: impl SessionStore, guard: impl Send + 'static) -> Self {
        Self {
            store: Arc::new(store),
            keeps: keeps_everything,
            _guard: Some(Box::new(guard)),
        }
    }
}

/// Runs every case against the store made by `$make`, an async constructor
/// returning a [`Fixture`], as tests in a module named `$name`. A store whose
/// format holds fewer value kinds than Flask's tagged JSON names the case
/// that checks what it does hold instead of `round_trip_every_value_kind`,
/// and one that shares its sessions with Flask-Session, which counts a
/// session with no data as none, names the case for that instead of
/// `emptied_but_owned_sessions_stay`.
macro_rules! conformance {
    ($name:ident, $make:expr) => {
        conformance!($name, $make; round_trip_every_value_kind, emptied_but_owned_sessions_stay);
    };
    ($name:ident, $make:expr; $round_trip:ident, $emptied_but_owned:ident) => {
        conformance!(@cases $name, $make;
            $round_trip,
            $emptied_but_owned,
            create_refuses_a_taken_id,
            many_keys_round_trip_in_order,
            update_merges_key_by_key,
            update_applies_cleared_then_removed_then_set,
            concurrent_updates_of_different_keys_all_persist,
            concurrent_increments_lose_nothing,
            concurrent_increments_given_up_midway_count_once_at_most,
            concurrent_increments_of_both_signs_answer_as_if_in_turn,
            concurrent_increments_near_the_end_of_the_range_count_until_it,
            a_load_sees_every_write_answered_before_it_began,
            concurrent_appends_lose_nothing,
            an_increment_and_an_append_racing_on_one_key_take_turns,
            list_edits_apply_to_the_list_as_stored,
            concurrent_list_edits_lose_nothing,
            emptied_sessions_go_unless_written_meanwhile,
            emptying_never_deletes_acknowledged_writes,
            increment_rules,
            increments_near_the_ends_of_the_range,
            append_rules,
            delete_removes_the_record,
            cycle_id_moves_the_record,
            idle_expiry,
            absolute_expiry_is_independent_of_idle_expiry,
            an_absolute_expiry_added_later_only_comes_sooner,
            list_filters_pages_and_skips_expired,
            delete_user_removes_only_that_users_sessions,
            delete_user_removes_hundreds_of_sessions,
            delete_user_counts_only_live_sessions,
            purge_expired_removes_only_dead_records_in_batches,
            expired_records_are_never_returned_before_purge,
            cancelled_operations_leave_the_store_usable,
        );
    };
    (@cases $name:ident, $make:expr; $($case:ident),* $(,)?) => {
        mod $name {
            use super::*;
            $(
                // Several worker threads, so concurrent cases really race.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let fixture: Fixture = ($make)().await;
                    super::$case(Arc::clone(&fixture.store), fixture.keeps).await;
                }
            )*
        }
    };
}

conformance!(memory, || async { Fixture::new(MemoryStore::default()) });

#[cfg(feature = "sqlite")]
conformance!(sqlite, sqlite_fixture);

#[cfg(feature = "sqlite")]
async fn sqlite_fixture() -> Fixture {
    let dir = TempDir::new("conformance");
    let store = tessera::store::SqliteStore::new(dir.path().join("sessions.db"));
    Fixture::with_guard(store, dir)
}

#[cfg(feature = "postgres")]
conformance!(postgres, postgres_fixture);

/// A store in a schema of its own on the server `TESSERA_TEST_POSTGRES_URL`
/// names, so cases running at once see only their own sessions; the schema
/// is dropped afterwards.
#[cfg(feature = "postgres")]
async fn postgres_fixture() -> Fixture {
    postgres_fixture_at("TESSERA_TEST_POSTGRES_URL").await
}

// The same server over TLS, its certificate verified
// (`sslmode=verify-full`).
#[cfg(all(feature = "postgres", feature = "tls"))]
conformance!(postgres_tls, || postgres_fixture_at(
    "TESSERA_TEST_POSTGRES_TLS_URL"
));

/// A store on the server the variable `url_var` names, in a fresh schema.
#[cfg(feature = "postgres")]
async fn postgres_fixture_at(url_var: &str) -> Fixture {
    let (url, schema) = postgres_schema::fresh_schema("conformance");
    let store = tessera::store::PostgresStore::new(&test_server_url(url_var))
        .expect("a PostgreSQL URL")
        .with_schema(&schema)
        .expect("a schema name");
    Fixture::with_guard(store, postgres_schema::DropSchema { url, schema })
}

/// The URL of a test server the variable `name` gives; fails, rather than
/// skips, when no server was started.
#[cfg(any(feature = "postgres", feature = "redis"))]
fn test_server_url(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: start the servers with \
             `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh"
        )
    })
}

#[cfg(feature = "postgres")]
mod postgres_schema {
    use sqlx::Connection as _;

    /// The test server's URL and an unused schema name; fails, rather than
    /// skips, when no server was started.
    pub(crate) fn fresh_schema(label: &str) -> (String, String) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let url = super::test_server_url("TESSERA_TEST_POSTGRES_URL");
        let schema = format!(
            "tessera_{label}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            tessera::store::SessionId::generate().fingerprint()
        );
        (url, schema)
    }

    /// Drops the schema when dropped, from a thread of its own since `Drop`
    /// cannot wait for a future on the test's runtime.
    pub(crate) struct DropSchema {
        pub(crate) url: String,
        pub(crate) schema: String,
    }

    impl Drop for DropSchema {
        fn drop(&mut self) {
            let url = self.url.clone();
            let sql = format!(
                "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {} CASCADE",
                self.schema
            );
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                    let done = sqlx::raw_sql(&sql).execute(&mut conn).await.ok();
                    let _ = conn.close().await;
                    done
                })
            })
            .join();
            // Best effort: a leftover schema on a throwaway server harms
            // nothing, and panicking in `drop` would hide the test's result.
            if !matches!(dropped, Ok(Some(_))) {
                eprintln!("could not drop the test schema {}", self.schema);
            }
        }
    }
}

#[cfg(feature = "redis")]
conformance!(redis, redis_fixture);

/// A store under a key prefix of its own on the server
/// `TESSERA_TEST_REDIS_URL` names, so cases running at once see only their
/// own sessions; its keys are deleted afterwards. Fails, rather than skips,
/// when no server was started.
#[cfg(feature = "redis")]
async fn redis_fixture() -> Fixture {
    redis_fixture_at("TESSERA_TEST_REDIS_URL").await
}

// The same server over TLS (`rediss://`), its certificate verified against
// the roots `SSL_CERT_FILE` names.
#[cfg(all(feature = "redis", feature = "tls"))]
conformance!(redis_tls, || redis_fixture_at("TESSERA_TEST_REDIS_TLS_URL"));

#[cfg(all(feature = "redis", feature = "tls"))]
conformance!(
    flask_session_msgpack_tls,
    || flask_session_fixture_at(SerializationFormat::Msgpack, "TESSERA_TEST_REDIS_TLS_URL");
    round_trip_in_flask_session_msgpack,
    emptied_sessions_go_even_if_owned
);

/// A connection of the test's own to the Redis server at `url`, to look at
/// and write keys as another program would.
#[cfg(feature = "redis")]
async fn raw_redis(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url)
        .expect("a client")
        .get_multiplexed_async_connection()
        .await
        .expect("a connection")
}

/// A store on the server the variable `url_var` names, under a fresh
/// prefix (its keys deleted afterwards through the plain-text port).
#[cfg(feature = "redis")]
async fn redis_fixture_at(url_var: &str) -> Fixture {
    let prefix = format!("test-{}:", SessionId::generate().fingerprint());
    let store = tessera::store::RedisStore::new(&test_server_url(url_var))
        .expect("a Redis URL")
        .with_prefix(&prefix);
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    Fixture::with_guard(store, DropRedisKeys { url, prefix })
}

#[cfg(feature = "redis")]
conformance!(
    flask_session_msgpack,
    || flask_session_fixture(SerializationFormat::Msgpack);
    round_trip_in_flask_session_msgpack,
    emptied_sessions_go_even_if_owned
);

#[cfg(feature = "redis")]
conformance!(
    flask_session_json,
    || flask_session_fixture(SerializationFormat::Json);
    round_trip_in_flask_session_json,
    emptied_sessions_go_even_if_owned
);

/// Like [`redis_fixture`], for the store in Flask-Session's layout.
#[cfg(feature = "redis")]
async fn flask_session_fixture(format: SerializationFormat) -> Fixture {
    flask_session_fixture_at(format, "TESSERA_TEST_REDIS_URL").await
}

#[cfg(feature = "redis")]
async fn flask_session_fixture_at(format: SerializationFormat, url_var: &str) -> Fixture {
    let prefix = format!("test-{}:", SessionId::generate().fingerprint());
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let store = tessera::store::FlaskSessionRedisStore::new(&test_server_url(url_var), format)
        .expect("a Redis URL")
        .with_prefix(&prefix);
    Fixture {
        keeps: match format {
            SerializationFormat::Msgpack => flask_session_msgpack_keeps,
            _ => flask_session_json_keeps,
        },
        ..Fixture::with_guard(store, DropRedisKeys { url, prefix })
    }
}

/// A Redis store under a prefix of its own, in tessera's layout (`None`) or
/// Flask-Session's, its prefix, and the guard that deletes its keys.
#[cfg(feature = "redis")]
fn redis_store_of_layout(
    url: &str,
    flask_format: Option<SerializationFormat>,
) -> (Box<dyn SessionStore>, String, DropRedisKeys) {
    let prefix = format!("test-{}:", SessionId::generate().fingerprint());
    let guard = DropRedisKeys {
        url: url.to_owned(),
        prefix: prefix.clone(),
    };
    let store: Box<dyn SessionStore> = match flask_format {
        None => Box::new(
            tessera::store::RedisStore::new(url)
                .expect("a Redis URL")
                .with_prefix(&prefix),
        ),
        Some(format) => Box::new(
            tessera::store::FlaskSessionRedisStore::new(url, format)
                .expect("a Redis URL")
                .with_prefix(&prefix),
        ),
    };
    (store, prefix, guard)
}

/// Deletes a test's keys when dropped, from a thread of its own with a
/// blocking connection since `Drop` cannot wait for a future.
#[cfg(feature = "redis")]
struct DropRedisKeys {
    url: String,
    prefix: String,
}

#[cfg(feature = "redis")]
impl Drop for DropRedisKeys {
    fn drop(&mut self) {
        let url = self.url.clone();
        let pattern = format!("{}*", self.prefix);
        // `::redis`: the cases' module `redis` shadows the crate here.
        let dropped = std::thread::spawn(move || -> ::redis::RedisResult<()> {
            let mut conn = ::redis::Client::open(url)?.get_connection()?;
            // KEYS is fine on a throwaway test server.
            let keys: Vec<String> = ::redis::cmd("KEYS").arg(&pattern).query(&mut conn)?;
            if !keys.is_empty() {
                ::redis::cmd("DEL").arg(keys).exec(&mut conn)?;
            }
            Ok(())
        })
        .join();
        // Best effort: the keys expire anyway, and panicking in `drop` would
        // hide the test's result.
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not delete the test keys under {}", self.prefix);
        }
    }
}

/// Times written by hand that are not numbers: the session they belong to
/// reads as corrupt (absent to the layer), never as the store unavailable,
/// which would answer 503 to its visitor for as long as the record lived;
/// and the expiry sweep goes on past it (it stopped at the first such
/// record, every time). In the Flask-Session layout, the remembered
/// deadline of the value's TTL counts as none (the TTL as Flask-Session's),
/// and the sweep drops unreadable metadata but leaves the value to
/// Flask-Session.
#[cfg(feature = "redis")]
#[tokio::test]
async fn times_that_are_not_numbers_fail_no_request_and_stop_no_sweep() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let mut conn = raw_redis(&url).await;
    // NaN passed a test for a number, and stopped the sweep all the same.
    let cases = ["abc", "nan", "-inf"].into_iter().flat_map(|garbage| {
        [None, Some(SerializationFormat::Msgpack)].map(|format| (garbage, format))
    });
    for (garbage, flask_format) in cases {
        let (store, prefix, _guard) = redis_store_of_layout(&url, flask_format);
        let with_absolute = Record {
            absolute_expires_at: Some(NOW + 2 * HOUR),
            ..live_record(map([("k", 1.into())]), Some("alice"))
        };
        let bad_expires = create(&*store, &with_absolute).await;
        let bad_absolute = create(&*store, &with_absolute).await;
        let good = create(&*store, &with_absolute).await;
        let mut overwrite = async |id: &SessionId, field: &str| {
            let _: i64 = ::redis::cmd("HSET")
                .arg(format!("{prefix}{{{}}}", id.as_str()))
                .arg(field)
                .arg(garbage)
                .query_async(&mut conn)
                .await
                .expect("overwritten");
        };
        overwrite(&bad_expires, "\0expires").await;
        overwrite(&bad_absolute, "\0absolute").await;
        for id in [&bad_expires, &bad_absolute] {
            let loaded = store.load(id, NOW).await;
            assert!(
                matches!(loaded, Err(StoreError::Corrupt(_))),
                "{garbage} {flask_format:?}: {loaded:?}"
            );
        }
        if flask_format.is_some() {
            let bad_deadline = create(&*store, &with_absolute).await;
            overwrite(&bad_deadline, "\0deadline").await;
            let loaded = store.load(&bad_deadline, NOW).await;
            assert!(
                matches!(&loaded, Ok(Some(record)) if record.data == map([("k", 1.into())])),
                "{loaded:?}"
            );
        }

        // Everything is due: the good ones are purged (the one without a
        // deadline at its absolute expiry), the bad ones only leave the
        // index.
        let purged = store
            .purge_expired(NOW + 3 * HOUR, 100)
            .await
            .expect("the sweep goes on");
        let expected = if flask_format.is_some() { 2 } else { 1 };
        assert_eq!(purged, expected, "{garbage} {flask_format:?}");
        let entries: i64 = ::redis::cmd("ZCARD")
            .arg(format!("{prefix}expiry"))
            .query_async(&mut conn)
            .await
            .expect("ZCARD");
        assert_eq!(entries, 0, "{garbage} {flask_format:?}");
        for id in [&bad_expires, &bad_absolute] {
            // tessera's layout leaves the record to its TTL; the
            // Flask-Session layout leaves the value to Flask-Session.
            let key = match flask_format {
                None => format!("{prefix}{{{}}}", id.as_str()),
                Some(_) => format!("{prefix}{}", id.as_str()),
            };
            let exists: i64 = ::redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("EXISTS");
            assert_eq!(exists, 1, "{garbage} {flask_format:?} {key}");
        }
        assert!(store.load(&good, NOW).await.expect("load").is_none());
    }
}

/// Times written by hand with blanks around the number (`" 4102444800"`,
/// a trailing newline from a shell): Lua reads them as numbers, but the
/// sweep gave Redis' `ZADD` the text, which it refused; the failed script
/// stopped every later sweep on the prefix.
#[cfg(feature = "redis")]
#[tokio::test]
async fn times_with_blanks_around_them_stop_no_sweep() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let mut conn = raw_redis(&url).await;
    for flask_format in [None, Some(SerializationFormat::Msgpack)] {
        let (store, prefix, _guard) = redis_store_of_layout(&url, flask_format);
        let soon = Record {
            expires_at: NOW + 10,
            ..live_record(map([("k", 1.into())]), None)
        };
        let padded = create(&*store, &soon).await;
        let ended = create(&*store, &soon).await;
        let _: i64 = ::redis::cmd("HSET")
            .arg(format!("{prefix}{{{}}}", padded.as_str()))
            .arg("\0expires")
            .arg(format!(" {}\n", NOW + HOUR))
            .query_async(&mut conn)
            .await
            .expect("overwritten");
        let purged = store
            .purge_expired(NOW + 20, 64)
            .await
            .expect("the sweep goes on");
        assert_eq!(purged, 1, "{flask_format:?}: the ended one");
        assert!(store.load(&ended, NOW).await.expect("load").is_none());
        assert_eq!(
            store.purge_expired(NOW + 20, 64).await.expect("swept"),
            0,
            "{flask_format:?}: the padded one is due later"
        );
    }
}

/// A session whose metadata key holds another kind of value (a list,
/// written by hand) stops no sweep either: it sorted first among the due
/// entries, every batch failed on it with WRONGTYPE, and no expired session
/// behind it was ever purged. Its entry goes; the key is left as it is.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_metadata_key_of_another_type_stops_no_sweep() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let mut conn = raw_redis(&url).await;
    for flask_format in [None, Some(SerializationFormat::Msgpack)] {
        let (store, prefix, _guard) = redis_store_of_layout(&url, flask_format);
        let first = Record {
            expires_at: NOW + HOUR - 1,
            ..live_record(map([("k", 1.into())]), Some("alice"))
        };
        let bad = create(&*store, &first).await;
        let good = create(&*store, &live_record(map([("k", 2.into())]), None)).await;
        let meta = format!("{prefix}{{{}}}", bad.as_str());
        let _: () = ::redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&meta)
            .ignore()
            .cmd("RPUSH")
            .arg(&meta)
            .arg("not a hash")
            .ignore()
            .query_async(&mut conn)
            .await
            .expect("replaced by a list");

        let purged = store
            .purge_expired(NOW + 3 * HOUR, 100)
            .await
            .expect("the sweep goes on");
        assert_eq!(purged, 1, "{flask_format:?}: the good one");
        let entries: i64 = ::redis::cmd("ZCARD")
            .arg(format!("{prefix}expiry"))
            .query_async(&mut conn)
            .await
            .expect("ZCARD");
        assert_eq!(entries, 0, "{flask_format:?}");
        let kind: String = ::redis::cmd("TYPE")
            .arg(&meta)
            .query_async(&mut conn)
            .await
            .expect("TYPE");
        assert_eq!(kind, "list", "{flask_format:?}: left as it is");
        assert!(store.load(&good, NOW).await.expect("load").is_none());
    }
}

/// A sweep's batch of due entries that are all of sessions kept alive by
/// another writer (Flask-Session's refresh of the TTL on each request, or
/// times changed by hand) purges none of them, and the sweep goes on to the
/// expired sessions behind them: returning fewer than the batch ended the
/// sweeper's round there, so that expired sessions waited behind a backlog
/// that grew with every session Flask kept alive.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_sweep_goes_past_sessions_kept_alive_elsewhere() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let mut conn = raw_redis(&url).await;
    for flask_format in [None, Some(SerializationFormat::Json)] {
        let (store, prefix, _guard) = redis_store_of_layout(&url, flask_format);
        let soon = Record {
            expires_at: NOW + 10,
            ..live_record(map([("k", 1.into())]), None)
        };
        let mut kept_alive = Vec::new();
        for _ in 0..70 {
            kept_alive.push(create(&*store, &soon).await);
        }
        let ended = Record {
            expires_at: NOW + 20,
            absolute_expires_at: Some(NOW + 30),
            ..live_record(map([("k", 2.into())]), None)
        };
        let ended = create(&*store, &ended).await;
        for id in &kept_alive {
            let refresh = match flask_format {
                // Flask-Session's write on a request: the value's TTL anew.
                Some(_) => ::redis::cmd("EXPIRE")
                    .arg(format!("{prefix}{}", id.as_str()))
                    .arg(HOUR)
                    .clone(),
                None => ::redis::cmd("HSET")
                    .arg(format!("{prefix}{{{}}}", id.as_str()))
                    .arg("\0expires")
                    .arg(NOW + HOUR)
                    .clone(),
            };
            let _: i64 = refresh.query_async(&mut conn).await.expect("kept alive");
        }
        let purged = store
            .purge_expired(NOW + 40, 64)
            .await
            .expect("the sweep goes on");
        assert_eq!(purged, 1, "{flask_format:?}: the ended one");
        assert!(store.load(&ended, NOW).await.expect("load").is_none());
        for id in &kept_alive {
            assert!(
                store.load(id, NOW + 40).await.expect("load").is_some(),
                "{flask_format:?}: kept alive"
            );
        }
        assert_eq!(
            store.purge_expired(NOW + 40, 64).await.expect("swept"),
            0,
            "{flask_format:?}: nothing left due"
        );
    }
}

/// Members of a user's set or of the expiry index that are no session id
/// (bytes that are not UTF-8, written by hand) are left out of listings,
/// which failed whole on them ("your devices" answered 500).
#[cfg(feature = "redis")]
#[tokio::test]
async fn index_members_that_are_no_session_id_are_left_out_of_listings() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let mut conn = raw_redis(&url).await;
    for flask_format in [None, Some(SerializationFormat::Json)] {
        let (store, prefix, _guard) = redis_store_of_layout(&url, flask_format);
        let id = create(&*store, &live_record(map([("k", 1.into())]), Some("alice"))).await;
        let _: () = ::redis::pipe()
            .cmd("SADD")
            .arg(format!("{prefix}user:alice"))
            .arg(&b"\xff\xfe"[..])
            .ignore()
            .cmd("ZADD")
            .arg(format!("{prefix}expiry"))
            .arg(NOW + HOUR)
            .arg(&b"\xff"[..])
            .ignore()
            .query_async(&mut conn)
            .await
            .expect("hand-written members");
        for user in [Some("alice"), None] {
            let listed = store
                .list(user, None, 10, NOW)
                .await
                .expect("the listing goes on");
            let ids: Vec<&SessionId> = listed.iter().map(|info| &info.id).collect();
            assert_eq!(ids, [&id], "{flask_format:?} {user:?}");
        }
    }
}

/// Flask-Session layout: a value the store reads but could not write (a
/// JSON value, read by a msgpack store as Flask-Session reads it, holding an
/// integer beyond msgpack's 64 bits) goes back as it was when only the
/// expiry or the owner changes: a read-only request's refresh answered 500.
#[cfg(feature = "redis")]
#[tokio::test]
async fn flask_session_layout_refreshes_a_value_it_could_not_write() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let (store, prefix, _guard) = redis_store_of_layout(&url, Some(SerializationFormat::Msgpack));
    let id = create(&*store, &live_record(map([("k", 1.into())]), None)).await;
    let json = br#"{"_permanent": true, "n": 18446744073709551616}"#;
    let mut conn = raw_redis(&url).await;
    let _: () = ::redis::cmd("SET")
        .arg(format!("{prefix}{}", id.as_str()))
        .arg(&json[..])
        .arg("KEEPTTL")
        .query_async(&mut conn)
        .await
        .expect("written as Flask-Session with JSON would");
    for changes in [
        Changes {
            expires_at: Some(NOW + 2 * HOUR),
            ..Changes::default()
        },
        Changes {
            user_id: Some(Some("alice".to_owned())),
            ..Changes::default()
        },
    ] {
        assert!(
            store.update(&id, &changes, NOW).await.expect("refreshed"),
            "{changes:?}"
        );
    }
    let stored: Vec<u8> = ::redis::cmd("GET")
        .arg(format!("{prefix}{}", id.as_str()))
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert_eq!(stored, json, "the value is as it was");
    let record = load_live(&*store, &id).await;
    assert_eq!(record.user_id.as_deref(), Some("alice"));
    assert_eq!(record.expires_at, NOW + 2 * HOUR);
    // A change to the data is refused, as before, and leaves it as it was.
    let error = store
        .update(
            &id,
            &Changes {
                set: map([("m", 1.into())]),
                ..Changes::default()
            },
            NOW,
        )
        .await
        .expect_err("msgpack cannot hold the integer");
    assert!(matches!(error, StoreError::Unrepresentable(_)), "{error}");
}

/// Flask-Session layout: a logout in the Flask app by `session.clear()`
/// and a flash message ("you are logged out") keeps the session's id; once
/// tessera shows the message, the session holds nothing but `_permanent`,
/// and it goes with its tessera owner. Kept, Flask-Session would count it
/// as none and the next login through the Flask app would write into it,
/// under the previous user's ownership (their device list, their "log out
/// everywhere").
#[cfg(feature = "redis")]
#[tokio::test]
async fn flask_session_layout_ends_an_owned_session_the_flask_app_logged_out() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let (store, prefix, _guard) = redis_store_of_layout(&url, Some(SerializationFormat::Json));
    let logged_in = live_record(
        map([("_permanent", true.into()), ("user", "bob".into())]),
        Some("bob"),
    );
    let id = create(&*store, &logged_in).await;
    let mut conn = raw_redis(&url).await;
    let _: () = ::redis::cmd("SET")
        .arg(format!("{prefix}{}", id.as_str()))
        .arg(r#"{"_permanent": true, "_flashes": [["message", "You are logged out"]]}"#)
        .arg("KEEPTTL")
        .query_async(&mut conn)
        .await
        .expect("written as Flask-Session with JSON would after clear() and flash()");
    assert_eq!(
        load_live(&*store, &id).await.user_id.as_deref(),
        Some("bob")
    );
    let shown = flash_edit(stored_flashes(&*store, &id).await, Vec::new());
    assert_eq!(
        store
            .update_or_delete_if_empty(&id, &shown, NOW)
            .await
            .expect("update"),
        UpdateOutcome::Deleted
    );
    assert_eq!(load(&*store, &id, NOW).await, None);
    let listed = store.list(Some("bob"), None, 10, NOW).await.expect("list");
    assert!(listed.is_empty(), "{listed:?}");
    let left: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{prefix}*{}*", id.as_str()))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(left.is_empty(), "{left:?}");
}

/// Flask-Session layout: a session past its absolute expiry that the Flask
/// app keeps alive (Flask-Session, which knows nothing of that expiry,
/// writes it back with a whole lifetime's TTL) is ended for both apps,
/// metadata and all, at tessera's next use; and until then the metadata
/// holding the deadline outlives it. Before, a load past it answered none
/// and left the session to the Flask app, and once the metadata ran out
/// (twice the TTL tessera last set), tessera took the session for one
/// Flask-Session made and served it again, with a new absolute lifetime.
#[cfg(feature = "redis")]
#[tokio::test]
async fn flask_session_layout_ends_a_session_the_flask_app_keeps_past_its_absolute_expiry() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let mut conn = raw_redis(&url).await;
    for format in [SerializationFormat::Msgpack, SerializationFormat::Json] {
        let (store, prefix, _guard) = redis_store_of_layout(&url, Some(format));
        let record = Record {
            expires_at: NOW + 10,
            absolute_expires_at: Some(NOW + 100),
            ..live_record(map([("k", 1.into())]), Some("alice"))
        };
        let id = create(&*store, &record).await;
        let value_key = format!("{prefix}{}", id.as_str());
        let metadata_ttl: i64 = ::redis::cmd("PTTL")
            .arg(format!("{prefix}{{{}}}", id.as_str()))
            .query_async(&mut conn)
            .await
            .expect("PTTL");
        assert!(
            metadata_ttl > 86_400_000 + 100_000,
            "{format:?}: the metadata lives {metadata_ttl} ms"
        );

        let value: Vec<u8> = ::redis::cmd("GET")
            .arg(&value_key)
            .query_async(&mut conn)
            .await
            .expect("GET");
        let _: () = ::redis::cmd("SET")
            .arg(&value_key)
            .arg(value)
            .arg("EX")
            .arg(3600)
            .query_async(&mut conn)
            .await
            .expect("written back as Flask-Session's refresh does");
        let loaded = load(&*store, &id, NOW + 99).await.expect("live");
        assert_eq!(loaded.data, record.data, "{format:?}");
        assert_eq!(load(&*store, &id, NOW + 100).await, None, "{format:?}");
        let left: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{prefix}*{}*", id.as_str()))
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        assert!(left.is_empty(), "{format:?}: {left:?}");
        let listed = store
            .list(Some("alice"), None, 10, NOW)
            .await
            .expect("list");
        assert!(listed.is_empty(), "{format:?}: {listed:?}");
    }
}

/// Flask-Session layout: the value's TTL is the idle lifetime from now, as
/// Flask-Session sets it, but reaches the absolute expiry when that comes
/// first. (The TTL ended a second before the absolute expiry, which
/// tessera counts in whole seconds, so a session ended up to a second
/// before its absolute lifetime was over.)
#[cfg(feature = "redis")]
#[tokio::test]
async fn flask_session_layout_keeps_the_value_until_the_absolute_expiry() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let mut conn = raw_redis(&url).await;
    for format in [SerializationFormat::Msgpack, SerializationFormat::Json] {
        let (store, prefix, _guard) = redis_store_of_layout(&url, Some(format));
        for (absolute, expected_ms) in [(NOW + 3, 3_000), (NOW + 100, 9_000)] {
            let record = Record {
                created_at: NOW,
                expires_at: NOW + 10,
                absolute_expires_at: Some(absolute),
                ..live_record(map([("k", 1.into())]), None)
            };
            let id = create(&*store, &record).await;
            let ttl: i64 = ::redis::cmd("PTTL")
                .arg(format!("{prefix}{}", id.as_str()))
                .query_async(&mut conn)
                .await
                .expect("PTTL");
            assert!(
                (expected_ms - 100..=expected_ms).contains(&ttl),
                "{format:?}, absolute expiry in {} s: the value lives {ttl} ms",
                absolute - NOW
            );
        }
    }
}

/// Flask-Session layout: "log out everywhere" ends a session that the Flask
/// app keeps alive past its absolute expiry without counting it as live.
#[cfg(feature = "redis")]
#[tokio::test]
async fn flask_session_layout_log_out_everywhere_does_not_count_a_session_past_its_absolute_expiry()
{
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let mut conn = raw_redis(&url).await;
    for format in [SerializationFormat::Msgpack, SerializationFormat::Json] {
        let (store, prefix, _guard) = redis_store_of_layout(&url, Some(format));
        let now = clock();
        let live = live_by_the_clock(map([("k", 1.into())]), Some("alice"));
        let ending = Record {
            absolute_expires_at: Some(now + 1),
            ..live.clone()
        };
        create(&*store, &live).await;
        let id = create(&*store, &ending).await;
        let value_key = format!("{prefix}{}", id.as_str());
        let value: Vec<u8> = ::redis::cmd("GET")
            .arg(&value_key)
            .query_async(&mut conn)
            .await
            .expect("GET");
        let _: () = ::redis::cmd("SET")
            .arg(&value_key)
            .arg(value)
            .arg("EX")
            .arg(3600)
            .query_async(&mut conn)
            .await
            .expect("written back as Flask-Session's refresh does");
        while clock() <= now + 1 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            store.delete_user("alice").await.expect("deleted"),
            1,
            "{format:?}"
        );
        let left: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{prefix}*{}*", id.as_str()))
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        assert!(left.is_empty(), "{format:?}: {left:?}");
    }
}

/// Flask-Session layout: a session whose metadata cannot be read (written
/// by hand) is left out of listings, which still show the user's others.
#[cfg(feature = "redis")]
#[tokio::test]
async fn flask_session_layout_leaves_unreadable_sessions_out_of_listings() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let (store, prefix, _guard) = redis_store_of_layout(&url, Some(SerializationFormat::Msgpack));
    // Live by the clock, by which "log out everywhere" counts.
    let bad = create(
        &*store,
        &live_by_the_clock(map([("k", 1.into())]), Some("alice")),
    )
    .await;
    let not_text = create(
        &*store,
        &live_by_the_clock(map([("k", 1.into())]), Some("alice")),
    )
    .await;
    let good = create(
        &*store,
        &live_by_the_clock(map([("k", 2.into())]), Some("alice")),
    )
    .await;
    let mut conn = raw_redis(&url).await;
    for (id, value) in [(&bad, &b"xyz"[..]), (&not_text, &b"\xff"[..])] {
        let _: i64 = ::redis::cmd("HSET")
            .arg(format!("{prefix}{{{}}}", id.as_str()))
            .arg("\0created")
            .arg(value)
            .query_async(&mut conn)
            .await
            .expect("corrupt it");
    }
    for user in [Some("alice"), None] {
        let listed = store.list(user, None, 10, NOW).await.expect("a listing");
        let ids: Vec<&SessionId> = listed.iter().map(|info| &info.id).collect();
        assert_eq!(ids, [&good]);
    }
    assert_eq!(store.delete_user("alice").await.expect("deleted"), 3);
}

/// Flash messages written by hand with blanks around them (JSON allows
/// them, and loading reads them) are edited as the reference edits them.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_list_edits_read_lists_with_blanks() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let mut conn = raw_redis(&url).await;
    let (store, prefix, _guard) = redis_store_of_layout(&url, None);
    let (a, b) = (Value::from("a"), Value::from("b"));
    let cases = [
        (" [ ] ", Vec::new(), vec![Value::from("b")]),
        (" [\"a\"]\n", vec![a.clone()], vec![b.clone()]),
        (
            "\t[\"c\" ]",
            vec![a.clone()],
            vec![Value::from("c"), b.clone()],
        ),
    ];
    for (text, taken, expected) in cases {
        let id = create(&*store, &live_record(map([("k", 1.into())]), None)).await;
        let _: i64 = ::redis::cmd("HSET")
            .arg(format!("{prefix}{{{}}}", id.as_str()))
            .arg("_flashes")
            .arg(text)
            .query_async(&mut conn)
            .await
            .expect("written by hand");
        let read = stored_flashes(&*store, &id).await;
        let changes = flash_edit(
            taken
                .into_iter()
                .filter(|item| read.contains(item))
                .collect(),
            vec![b.clone()],
        );
        assert!(
            store.update(&id, &changes, NOW).await.expect("update"),
            "{text:?}"
        );
        assert_eq!(stored_flashes(&*store, &id).await, expected, "{text:?}");
    }
    // Blanks between the items: the taken one is not recognised, so it
    // stays to be shown again; nothing is lost.
    let id = create(&*store, &live_record(map([("k", 1.into())]), None)).await;
    let _: i64 = ::redis::cmd("HSET")
        .arg(format!("{prefix}{{{}}}", id.as_str()))
        .arg("_flashes")
        .arg("[ \"a\" , \"c\" ]")
        .query_async(&mut conn)
        .await
        .expect("written by hand");
    let changes = flash_edit(vec![a.clone()], vec![b.clone()]);
    assert!(store.update(&id, &changes, NOW).await.expect("update"));
    assert_eq!(stored_flashes(&*store, &id).await, [a, Value::from("c"), b]);
}

/// A key of a session that holds another kind of value than the store
/// writes there (set by hand: a list for a hash or a string) makes that
/// session corrupt, which the layer counts as absent, not the store
/// unavailable, which would answer 503 to its visitor until it expired.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_wrongly_typed_key_is_corrupt_not_unavailable() {
    let url = test_server_url("TESSERA_TEST_REDIS_URL");
    let conn = raw_redis(&url).await;
    for flask_format in [None, Some(SerializationFormat::Json)] {
        let (store, prefix, _guard) = redis_store_of_layout(&url, flask_format);
        let replace_with_list = |key: String| {
            let mut conn = conn.clone();
            async move {
                let _: i64 = ::redis::cmd("DEL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("deleted");
                let _: i64 = ::redis::cmd("RPUSH")
                    .arg(&key)
                    .arg("x")
                    .query_async(&mut conn)
                    .await
                    .expect("a list in its place");
            }
        };
        let id = create(&*store, &live_record(map([("k", 1.into())]), None)).await;
        // Where the session's fields (tessera) or its value (Flask-Session) live.
        let key = match flask_format {
            None => format!("{prefix}{{{}}}", id.as_str()),
            Some(_) => format!("{prefix}{}", id.as_str()),
        };
        replace_with_list(key).await;
        let loaded = store.load(&id, NOW).await;
        assert!(
            matches!(loaded, Err(StoreError::Corrupt(_))),
            "{flask_format:?}: {loaded:?}"
        );
        let listed = store.list(None, None, 10, NOW).await;
        assert!(
            !matches!(listed, Err(StoreError::Unavailable(_))),
            "{flask_format:?}: {listed:?}"
        );
        // One bad key is left out of a listing, not fail it: in
        // Flask-Session's layout, the one listings read, the metadata's.
        replace_with_list(format!("{prefix}{{{}}}", id.as_str())).await;
        let good = create(&*store, &live_record(map([("k", 2.into())]), None)).await;
        let listed = store.list(None, None, 10, NOW).await.expect("a listing");
        let ids: Vec<&SessionId> = listed.iter().map(|info| &info.id).collect();
        assert_eq!(ids, [&good], "{flask_format:?}");

        // A user's listing leaves out one whose metadata or value key is of
        // another kind; "log out everywhere" and revoking do not stop at it.
        let mut owned = Vec::new();
        for _ in 0..4 {
            // Live by the clock, by which "log out everywhere" counts.
            let record = live_by_the_clock(map([("k", 1.into())]), Some("bob"));
            owned.push(create(&*store, &record).await);
        }
        replace_with_list(format!("{prefix}{{{}}}", owned[1].as_str())).await;
        if flask_format.is_some() {
            replace_with_list(format!("{prefix}{}", owned[2].as_str())).await;
        }
        let readable: BTreeSet<&SessionId> = match flask_format {
            None => [&owned[0], &owned[2], &owned[3]].into(),
            Some(_) => [&owned[0], &owned[3]].into(),
        };
        let listed = store
            .list(Some("bob"), None, 10, NOW)
            .await
            .expect("a listing");
        let ids: BTreeSet<&SessionId> = listed.iter().map(|info| &info.id).collect();
        assert_eq!(ids, readable, "{flask_format:?}");
        assert!(
            store.delete_user("bob").await.expect("every one deleted") >= 3,
            "{flask_format:?}"
        );
        for id in &owned {
            assert!(
                matches!(store.load(id, NOW).await, Ok(None)),
                "{flask_format:?}: {id:?} is gone"
            );
        }
        let bad = create(&*store, &live_record(map([("k", 1.into())]), Some("eve"))).await;
        replace_with_list(format!("{prefix}{{{}}}", bad.as_str())).await;
        assert!(
            store.delete(&bad).await.expect("revoked"),
            "{flask_format:?}"
        );
        assert!(matches!(store.load(&bad, NOW).await, Ok(None)));
    }
}

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
#[cfg(feature = "sqlite")]
struct TempDir(std::path::PathBuf);

#[cfg(feature = "sqlite")]
impl TempDir {
    fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "tessera-{label}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

#[cfg(feature = "sqlite")]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn map<const N: usize>(entries: [(&str, Value); N]) -> Map {
    entries
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

fn live_record(data: Map, user_id: Option<&str>) -> Record {
    Record {
        data,
        user_id: user_id.map(str::to_owned),
        created_at: NOW - 60,
        expires_at: NOW + HOUR,
        absolute_expires_at: None,
    }
}

/// The clock, in Unix seconds.
fn clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A record live for an hour by the clock, by which
/// [`SessionStore::delete_user`] counts the sessions it ends; live at
/// [`NOW`] as well.
fn live_by_the_clock(data: Map, user_id: Option<&str>) -> Record {
    let now = clock();
    Record {
        created_at: now - 60,
        expires_at: now + HOUR,
        ..live_record(data, user_id)
    }
}

/// A record whose idle expiry is `NOW`: already dead at `NOW`.
fn expired_record(data: Map, user_id: Option<&str>) -> Record {
    Record {
        expires_at: NOW,
        ..live_record(data, user_id)
    }
}

fn float(value: f64) -> Value {
    Value::Number(Number::from_f64(value))
}

fn parsed(text: &str) -> Value {
    tagged::from_str(text).expect("valid tagged JSON")
}

async fn create(store: &dyn SessionStore, record: &Record) -> SessionId {
    let id = SessionId::generate();
    assert!(store.create(&id, record).await.expect("create"));
    id
}

async fn load(store: &dyn SessionStore, id: &SessionId, now: u64) -> Option<Record> {
    store.load(id, now).await.expect("load")
}

async fn load_live(store: &dyn SessionStore, id: &SessionId) -> Record {
    load(store, id, NOW).await.expect("a live record")
}

fn info(id: &SessionId, record: &Record) -> SessionInfo {
    SessionInfo {
        id: id.clone(),
        user_id: record.user_id.clone(),
        created_at: record.created_at,
        expires_at: record.expires_at,
        absolute_expires_at: record.absolute_expires_at,
    }
}

fn is_wrong_type<T: std::fmt::Debug>(result: &Result<T, StoreError>, expected_key: &str) -> bool {
    matches!(result, Err(StoreError::WrongType { key, .. }) if key == expected_key)
}

/// Applies `changes` through the store and through the reference semantics,
/// and checks they agree.
async fn update_like_reference(
    store: &dyn SessionStore,
    keeps: Keeps,
    id: &SessionId,
    expected: &mut Record,
    changes: Changes,
) {
    assert!(store.update(id, &changes, NOW).await.expect("update"));
    Changes {
        set: kept(keeps, &changes.set),
        ..changes.clone()
    }
    .apply_to(expected);
    assert_eq!(&load_live(store, id).await, expected, "after {changes:?}");
}

fn every_value_kind() -> Map {
    map([
        ("null", Value::Null),
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("int", Value::from(42)),
        ("negative", Value::from(-7)),
        ("zero", Value::from(0)),
        ("i64_max", Value::from(i64::MAX)),
        ("big", Value::from(2u128.pow(64) + 5)),
        ("big_negative", parsed("-123456789012345678901234567890")),
        ("float", float(0.1)),
        ("float_whole", parsed("1.0")),
        ("float_tiny", float(-1.5e-7)),
        ("float_huge", float(1e300)),
        ("float_negative_zero", float(-0.0)),
        ("nan", float(f64::NAN)),
        ("infinity", float(f64::INFINITY)),
        ("negative_infinity", float(f64::NEG_INFINITY)),
        (
            "string",
            Value::from("h\u{e9}llo \u{2713} \u{1f980} \"q\" \\ \n\t\u{0} \u{2028} \u{10ffff}"),
        ),
        ("empty_string", Value::from("")),
        (
            "list",
            Value::List(vec![
                Value::from(1),
                Value::from("two"),
                Value::Null,
                Value::List(vec![]),
            ]),
        ),
        ("empty_list", Value::List(vec![])),
        (
            "dict",
            Value::Dict(map([
                ("a", Value::from(1)),
                (
                    "nested",
                    Value::Dict(map([("b", Value::List(vec![true.into()]))])),
                ),
            ])),
        ),
        // Keys that look like Flask's tags must come back as plain keys.
        (
            "tag_like_key",
            Value::Dict(map([(" t", Value::List(vec![1.into(), 2.into()]))])),
        ),
        ("di_key", Value::Dict(map([(" di", Value::from("x"))]))),
        ("empty_dict", Value::Dict(Map::new())),
        (
            "tuple",
            Value::tuple([Value::from("message"), Value::from("hi")]),
        ),
        ("empty_tuple", Value::tuple([])),
        (
            "_flashes",
            Value::List(vec![Value::tuple([
                Value::from("error"),
                Value::from("oops"),
            ])]),
        ),
        ("bytes", Value::bytes((0..=255u8).collect::<Vec<u8>>())),
        ("empty_bytes", Value::bytes(Vec::new())),
        ("markup", Value::markup("<b>bold</b> &amp; \u{e9}")),
        (
            "uuid",
            // Through tagged JSON rather than the `uuid` and `time` crates,
            // so that a copy of this file needs no dependency but tessera's.
            tagged::from_str(r#"{" u": "12345678-1234-5678-1234-567812345678"}"#).expect("a UUID"),
        ),
        (
            "datetime",
            tagged::from_str(r#"{" d": "Tue, 05 Mar 2024 12:34:56 GMT"}"#).expect("a datetime"),
        ),
        (
            "unicode key \u{43a}\u{43b}\u{44e}\u{447} \u{1f511}",
            Value::from(1),
        ),
        ("", Value::from("the empty key")),
        ("quote'key\"", Value::from("sql-ish ' \" ; --")),
    ])
}

// ---------------------------------------------------------------------------
// Cases

async fn round_trip_every_value_kind(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let data = every_value_kind();
    let record = Record {
        data: data.clone(),
        user_id: Some("alice \u{1f980}".to_owned()),
        created_at: NOW - 10,
        expires_at: NOW + HOUR,
        absolute_expires_at: Some(NOW + 24 * HOUR),
    };
    let id = create(store, &record).await;
    let loaded = load_live(store, &id).await;
    assert_eq!(loaded, record);
    assert_eq!(
        tagged::map_to_string(&loaded.data),
        tagged::map_to_string(&data)
    );
    for (key, value) in &data {
        assert_eq!(
            tagged::to_string(&loaded.data[key]),
            tagged::to_string(value),
            "{key:?}"
        );
    }
    assert!(
        matches!(&loaded.data["big"], Value::Number(n) if n.as_str() == "18446744073709551621")
    );
    assert!(matches!(&loaded.data["tuple"], Value::Tuple(items) if items.len() == 2));
    assert!(matches!(&loaded.data["bytes"], Value::Bytes(bytes) if bytes.len() == 256));

    // No values, no owner, no absolute expiry.
    let bare = live_record(Map::new(), None);
    let bare_id = create(store, &bare).await;
    assert_eq!(load_live(store, &bare_id).await, bare);

    // Values written by update and the atomic operations round trip too.
    let changes = Changes {
        set: data.clone(),
        ..Changes::default()
    };
    assert!(store.update(&bare_id, &changes, NOW).await.expect("update"));
    for (key, value) in &data {
        assert_eq!(
            store
                .append(&bare_id, "appended", value, NOW)
                .await
                .expect("append"),
            Some(data.keys().position(|k| k == key).expect("key") + 1)
        );
    }
    let loaded = load_live(store, &bare_id).await;
    assert_eq!(
        loaded.data["appended"],
        Value::List(data.values().cloned().collect())
    );
    let mut expected = data.clone();
    expected.insert("appended".to_owned(), loaded.data["appended"].clone());
    assert_eq!(loaded.data, expected);
}

/// What Flask-Session's formats keep of a value: tuples become lists,
/// `Markup` and UUIDs strings; JSON also turns bytes into base64 text,
/// datetimes into RFC 3339 text and non-finite floats into null, as msgspec
/// does.
#[cfg(feature = "redis")]
fn as_flask_session_keeps(value: &Value, format: SerializationFormat) -> Option<Value> {
    use base64::Engine as _;
    let json = format == SerializationFormat::Json;
    Some(match value {
        Value::Tuple(items) | Value::List(items) => Value::List(
            items
                .iter()
                .map(|item| as_flask_session_keeps(item, format))
                .collect::<Option<_>>()?,
        ),
        Value::Dict(entries) => Value::Dict(
            entries
                .iter()
                .map(|(key, item)| Some((key, as_flask_session_keeps(item, format)?)))
                .collect::<Option<_>>()?,
        ),
        // msgpack holds integers of at most 64 bits; JSON any integer.
        Value::Number(number)
            if !json
                && number.is_integer()
                && number.as_i64().is_none()
                && number.as_u64().is_none() =>
        {
            return None
        }
        Value::Markup(text) => Value::String(text.clone()),
        Value::Uuid(uuid) => Value::String(uuid.hyphenated().to_string()),
        Value::Bytes(bytes) if json => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Value::DateTime(when) if json => Value::String(
            when.format(&time::format_description::well_known::Rfc3339)
                .expect("a formattable datetime"),
        ),
        Value::Number(number)
            if json && number.as_f64().is_some_and(|f| !f.is_finite()) && !number.is_integer() =>
        {
            Value::Null
        }
        other => other.clone(),
    })
}

#[cfg(feature = "redis")]
fn flask_session_msgpack_keeps(value: &Value) -> Option<Value> {
    as_flask_session_keeps(value, SerializationFormat::Msgpack)
}

#[cfg(feature = "redis")]
fn flask_session_json_keeps(value: &Value) -> Option<Value> {
    as_flask_session_keeps(value, SerializationFormat::Json)
}

/// Every value kind Flask-Session's format can hold comes back as it keeps
/// it, through create, update and append; integers beyond 64 bits round
/// trip in JSON and are refused in msgpack without changing the stored
/// session.
#[cfg(feature = "redis")]
async fn round_trip_in_flask_session(store: Arc<dyn SessionStore>, format: SerializationFormat) {
    let store = &*store;
    let mut data = every_value_kind();
    let big = data.remove("big").expect("big");
    let big_negative = data.remove("big_negative").expect("big_negative");
    let kept: Map = data
        .iter()
        .map(|(key, value)| {
            let kept = as_flask_session_keeps(value, format).expect("representable");
            (key, kept)
        })
        .collect();
    let record = Record {
        data: data.clone(),
        user_id: Some("alice \u{1f980}".to_owned()),
        created_at: NOW - 10,
        expires_at: NOW + HOUR,
        absolute_expires_at: Some(NOW + 24 * HOUR),
    };
    let id = create(store, &record).await;
    let loaded = load_live(store, &id).await;
    assert_eq!(
        loaded,
        Record {
            data: kept.clone(),
            ..record.clone()
        }
    );
    // The largest integers the format holds survive exactly.
    let edges = map([
        ("u64_max", Value::from(u64::MAX)),
        ("i64_min", Value::from(i64::MIN)),
    ]);
    let changes = Changes {
        set: edges.clone(),
        ..Changes::default()
    };
    assert!(store.update(&id, &changes, NOW).await.expect("update"));
    let mut expected = kept.clone();
    expected.extend(edges);
    assert_eq!(load_live(store, &id).await.data, expected);

    for too_big in [big, big_negative] {
        if let Some(kept) = as_flask_session_keeps(&too_big, format) {
            assert_eq!(format, SerializationFormat::Json);
            let changes = Changes {
                set: map([("n", too_big)]),
                ..Changes::default()
            };
            assert!(store.update(&id, &changes, NOW).await.expect("update"));
            expected.insert("n".to_owned(), kept);
            assert_eq!(load_live(store, &id).await.data, expected);
            continue;
        }
        assert_eq!(format, SerializationFormat::Msgpack);
        let changes = Changes {
            set: map([("n", too_big.clone())]),
            ..Changes::default()
        };
        assert!(
            matches!(
                store.update(&id, &changes, NOW).await,
                Err(StoreError::Unrepresentable(_))
            ),
            "{too_big:?}"
        );
        let mut with_big = record.clone();
        with_big.data.insert("n".to_owned(), too_big);
        assert!(matches!(
            store.create(&SessionId::generate(), &with_big).await,
            Err(StoreError::Unrepresentable(_))
        ));
    }
    assert_eq!(load_live(store, &id).await.data, expected);

    // Values written by append come back as the format keeps them too.
    let bare_id = create(store, &live_record(Map::new(), None)).await;
    for value in data.values() {
        store
            .append(&bare_id, "appended", value, NOW)
            .await
            .expect("append");
    }
    assert_eq!(
        load_live(store, &bare_id).await.data["appended"],
        Value::List(kept.values().cloned().collect())
    );
}

#[cfg(feature = "redis")]
async fn round_trip_in_flask_session_msgpack(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    round_trip_in_flask_session(store, SerializationFormat::Msgpack).await;
}

#[cfg(feature = "redis")]
async fn round_trip_in_flask_session_json(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    round_trip_in_flask_session(store, SerializationFormat::Json).await;
}

/// A request the client gives up on drops its store operation wherever it
/// is, in the middle of a transaction too; the store must stay usable, and
/// what it reports afterwards must be consistent.
async fn cancelled_operations_leave_the_store_usable(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let id = create(&*store, &live_record(Map::new(), None)).await;
    let mut delay = 0x2545_f491_u64;
    for round in 0..300u64 {
        delay ^= delay << 13;
        delay ^= delay >> 7;
        delay ^= delay << 17;
        let budget = std::time::Duration::from_micros(delay % 400);
        let store = Arc::clone(&store);
        let id = id.clone();
        let _ = tokio::time::timeout(budget, async move {
            match round % 4 {
                0 => store.increment(&id, "n", 1, NOW).await.map(drop),
                1 => store
                    .update(
                        &id,
                        &Changes {
                            set: map([("k", Value::from(round))]),
                            expires_at: Some(NOW + HOUR),
                            ..Changes::default()
                        },
                        NOW,
                    )
                    .await
                    .map(drop),
                2 => store
                    .append(&id, "l", &Value::from(round), NOW)
                    .await
                    .map(drop),
                _ => store
                    .create(&SessionId::generate(), &live_record(Map::new(), None))
                    .await
                    .map(drop),
            }
        })
        .await;
    }
    // Operations that finish after their caller gave up may still land;
    // wait for them, then every kind of operation must work.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = load_live(&*store, &id).await.data;
    let n = before.get("n").and_then(Value::as_i64).unwrap_or(0);
    assert_eq!(
        store
            .increment(&id, "n", 1, NOW)
            .await
            .expect("increment after cancellations"),
        Some(n + 1)
    );
    let changes = Changes {
        set: map([("after", Value::from(true))]),
        ..Changes::default()
    };
    assert!(store
        .update(&id, &changes, NOW)
        .await
        .expect("update after cancellations"));
    create(&*store, &live_record(Map::new(), None)).await;
    assert_eq!(
        load_live(&*store, &id).await.data["after"],
        Value::from(true)
    );
}

async fn create_refuses_a_taken_id(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let first = live_record(map([("a", Value::from(1))]), Some("alice"));
    let id = create(store, &first).await;
    let second = live_record(map([("b", Value::from(2))]), Some("bob"));
    assert!(!store.create(&id, &second).await.expect("create"));
    assert_eq!(load_live(store, &id).await, first);

    // An expired record not yet purged still holds its id.
    let expired = expired_record(map([("old", Value::from(1))]), None);
    let expired_id = create(store, &expired).await;
    assert!(!store.create(&expired_id, &second).await.expect("create"));
    assert_eq!(load(store, &expired_id, NOW).await, None);
    assert_eq!(load(store, &expired_id, NOW - 1).await, Some(expired));
}

/// A session of thousands of keys: stores return them in whatever order
/// their rows, hash fields or serialized dict hold, and the loaded map must
/// still be the same, in key order.
async fn many_keys_round_trip_in_order(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let data: Map = (0..3000)
        .rev()
        .map(|i| (format!("k{:04}", (i * 7919) % 3000), Value::from(i)))
        .collect();
    assert_eq!(data.len(), 3000);
    let mut expected = live_record(data.clone(), None);
    let id = create(store, &expected).await;
    let loaded = load_live(store, &id).await.data;
    assert_eq!(loaded, data);
    assert!(loaded.keys().zip(loaded.keys().skip(1)).all(|(a, b)| a < b));

    let mut changes = Changes::default();
    changes.set.insert("k0000".to_owned(), Value::from("first"));
    changes.set.insert("zz".to_owned(), Value::from("last"));
    changes.removed.push("k1500".to_owned());
    assert!(store.update(&id, &changes, NOW).await.expect("update"));
    changes.apply_to(&mut expected);
    assert_eq!(load_live(store, &id).await.data, expected.data);
}

async fn update_merges_key_by_key(store: Arc<dyn SessionStore>, keeps: Keeps) {
    let store = &*store;
    let mut expected = live_record(
        map([("a", 1.into()), ("b", 2.into()), ("c", 3.into())]),
        Some("alice"),
    );
    let id = create(store, &expected).await;

    // Set a, remove b, keep c, add d.
    update_like_reference(
        store,
        keeps,
        &id,
        &mut expected,
        Changes {
            set: map([("a", 10.into()), ("d", "new".into())]),
            removed: vec!["b".to_owned()],
            ..Changes::default()
        },
    )
    .await;
    assert_eq!(
        expected.data,
        map([("a", 10.into()), ("c", 3.into()), ("d", "new".into())])
    );

    // A request that writes only one key leaves every other key alone.
    update_like_reference(
        store,
        keeps,
        &id,
        &mut expected,
        Changes {
            set: map([("e", Value::tuple([1.into()]))]),
            ..Changes::default()
        },
    )
    .await;
    assert_eq!(expected.data.len(), 4);

    // Removing an absent key is not an error.
    update_like_reference(store, keeps, &id, &mut expected, removing("absent")).await;

    // The session's own columns.
    update_like_reference(
        store,
        keeps,
        &id,
        &mut expected,
        Changes {
            expires_at: Some(NOW + 2 * HOUR),
            user_id: Some(Some("bob".to_owned())),
            ..Changes::default()
        },
    )
    .await;
    assert_eq!(expected.user_id.as_deref(), Some("bob"));
    update_like_reference(
        store,
        keeps,
        &id,
        &mut expected,
        Changes {
            user_id: Some(None),
            ..Changes::default()
        },
    )
    .await;
    assert_eq!(expected.user_id, None);

    // Nothing to change: still reports that the record is live.
    update_like_reference(store, keeps, &id, &mut expected, Changes::default()).await;

    // No record: false.
    let changes = Changes {
        set: map([("x", 1.into())]),
        ..Changes::default()
    };
    let missing = SessionId::generate();
    assert!(!store.update(&missing, &changes, NOW).await.expect("update"));
    assert!(!store
        .update(&missing, &Changes::default(), NOW)
        .await
        .expect("update"));
    assert_eq!(load(store, &missing, NOW).await, None);
}

async fn update_applies_cleared_then_removed_then_set(store: Arc<dyn SessionStore>, keeps: Keeps) {
    let store = &*store;
    let mut expected = live_record(map([("a", 1.into()), ("b", 2.into())]), None);
    let id = create(store, &expected).await;

    // Removed and set in one request: the set wins, as in `apply_to`.
    update_like_reference(
        store,
        keeps,
        &id,
        &mut expected,
        Changes {
            set: map([("a", 100.into())]),
            removed: vec!["a".to_owned()],
            ..Changes::default()
        },
    )
    .await;
    assert_eq!(expected.data["a"], Value::from(100));

    // Cleared, removed and set: only what was set survives.
    update_like_reference(
        store,
        keeps,
        &id,
        &mut expected,
        Changes {
            cleared: true,
            set: map([("fresh", 1.into())]),
            removed: vec!["fresh".to_owned(), "b".to_owned()],
            ..Changes::default()
        },
    )
    .await;
    assert_eq!(expected.data, map([("fresh", 1.into())]));

    // Cleared alone leaves a live, empty session.
    update_like_reference(
        store,
        keeps,
        &id,
        &mut expected,
        Changes {
            cleared: true,
            ..Changes::default()
        },
    )
    .await;
    assert!(expected.data.is_empty());
}

async fn concurrent_updates_of_different_keys_all_persist(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    let id = create(&*store, &live_record(map([("base", 0.into())]), None)).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            let id = id.clone();
            tokio::spawn(async move {
                let changes = Changes {
                    set: map([(&format!("key{i}"), Value::from(i))]),
                    ..Changes::default()
                };
                store.update(&id, &changes, NOW).await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.expect("task").expect("update"));
    }
    let data = load_live(&*store, &id).await.data;
    assert_eq!(data.len(), 51);
    assert_eq!(data["base"], Value::from(0));
    for i in 0..50 {
        assert_eq!(data[&format!("key{i}")], Value::from(i), "key{i}");
    }
}

async fn concurrent_increments_lose_nothing(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let id = create(&*store, &live_record(Map::new(), None)).await;
    // 25 tasks, 4 increments each.
    let tasks: Vec<_> = (0..25)
        .map(|_| {
            let store = Arc::clone(&store);
            let id = id.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..4 {
                    let value = store.increment(&id, "count", 1, NOW).await;
                    seen.push(value.expect("increment").expect("live"));
                }
                seen
            })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await.expect("task"));
    }
    // Each increment saw a different total: none was lost or repeated.
    seen.sort_unstable();
    assert_eq!(seen, (1..=100).collect::<Vec<i64>>());
    assert_eq!(
        load_live(&*store, &id).await.data["count"],
        Value::from(100)
    );
}

/// Concurrent increments, many of them given up on midway (their request
/// cancelled while waiting for the store, queued behind others or running):
/// those that answer each saw a different total; the ones given up on may
/// land or not, so once they have, the stored count lies between the
/// answered ones and all that were tried, and the next increment counts on
/// from it.
async fn concurrent_increments_given_up_midway_count_once_at_most(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    const TASKS: u64 = 30;
    const EACH: u64 = 4;
    let id = create(&*store, &live_record(Map::new(), None)).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            let id = id.clone();
            tokio::spawn(async move {
                let mut answered = Vec::new();
                for attempt in 0..EACH {
                    // From nothing to about a millisecond: some give up before
                    // the store sees them, some while others run.
                    let budget = (task * 7_919 + attempt * 104_729) % 1_200;
                    let increment = store.increment(&id, "count", 1, NOW);
                    if let Ok(value) =
                        tokio::time::timeout(std::time::Duration::from_micros(budget), increment)
                            .await
                    {
                        answered.push(value.expect("increment").expect("live"));
                    }
                }
                answered
            })
        })
        .collect();
    let mut answered = Vec::new();
    for task in tasks {
        answered.extend(task.await.expect("task"));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stored = load_live(&*store, &id)
        .await
        .data
        .get("count")
        .map_or(0, |count| count.as_i64().expect("an int"));
    let tried = i64::try_from(TASKS * EACH).expect("small");
    answered.sort_unstable();
    let before = answered.len();
    answered.dedup();
    assert_eq!(answered.len(), before, "two increments saw one total");
    let counted = i64::try_from(answered.len()).expect("small");
    assert!(
        (counted..=tried).contains(&stored),
        "{counted} answered, {tried} tried, {stored} stored"
    );
    assert!(answered.iter().all(|total| (1..=stored).contains(total)));
    assert_eq!(
        store
            .increment(&id, "count", 1, NOW)
            .await
            .expect("increment after the cancellations"),
        Some(stored + 1)
    );
}

/// Concurrent increments up and down of one counter: every answer is what
/// the increment would have seen had they run one after another in some
/// order, and the counter ends at their sum.
async fn concurrent_increments_of_both_signs_answer_as_if_in_turn(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    let id = create(&*store, &live_record(Map::new(), None)).await;
    let steps: Vec<i64> = (0..48).map(|i| [3, -2, 5, 0][i % 4]).collect();
    let tasks: Vec<_> = steps
        .iter()
        .map(|&by| {
            let store = Arc::clone(&store);
            let id = id.clone();
            tokio::spawn(async move {
                let value = store.increment(&id, "count", by, NOW).await;
                (by, value.expect("increment").expect("live"))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let sum: i64 = steps.iter().sum();
    assert_eq!(
        load_live(&*store, &id).await.data["count"],
        Value::from(sum)
    );
    assert!(
        in_some_order(0, &mut answers.clone(), &mut BTreeSet::new()),
        "no order of the increments gives these answers: {answers:?}"
    );
}

/// Whether the increments `(by, answer)` can run one after another from
/// `value`, each answering its value; `dead_ends` remembers the states
/// already found to lead nowhere.
fn in_some_order(
    value: i64,
    left: &mut Vec<(i64, i64)>,
    dead_ends: &mut BTreeSet<(i64, Vec<(i64, i64)>)>,
) -> bool {
    if left.is_empty() {
        return true;
    }
    left.sort_unstable();
    if dead_ends.contains(&(value, left.clone())) {
        return false;
    }
    let mut tried = BTreeSet::new();
    for at in 0..left.len() {
        let (by, answer) = left[at];
        if answer != value + by || !tried.insert((by, answer)) {
            continue;
        }
        let taken = left.remove(at);
        let found = in_some_order(answer, left, dead_ends);
        left.insert(at, taken);
        if found {
            return true;
        }
        left.sort_unstable();
    }
    dead_ends.insert((value, left.clone()));
    false
}

/// Concurrent increments of a counter 10 below the largest integer: ten of
/// them count, each answering a different value up to it, and the others
/// are refused, changing nothing.
async fn concurrent_increments_near_the_end_of_the_range_count_until_it(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    let start = i64::MAX - 10;
    let id = create(
        &*store,
        &live_record(map([("count", Value::from(start))]), None),
    )
    .await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = Arc::clone(&store);
            let id = id.clone();
            tokio::spawn(async move { store.increment(&id, "count", 1, NOW).await })
        })
        .collect();
    let mut counted = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(value) => counted.push(value.expect("live")),
            refused => assert!(is_wrong_type(&refused, "count"), "{refused:?}"),
        }
    }
    counted.sort_unstable();
    assert_eq!(counted, (start + 1..=i64::MAX).collect::<Vec<_>>());
    assert_eq!(
        load_live(&*store, &id).await.data["count"],
        Value::from(i64::MAX)
    );
}

/// A load that begins after a write was answered sees it, even while
/// loads that began before the write are still on their way (answering the
/// later load from one of those would miss it); concurrent loads are
/// answered alike; and once the session is deleted, no load that begins
/// after finds it.
async fn a_load_sees_every_write_answered_before_it_began(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    let id = create(&*store, &live_record(map([("other", 1.into())]), None)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background: Vec<_> = (0..4)
        .map(|_| {
            let (store, id, stop) = (Arc::clone(&store), id.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut loads = 0_u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store.load(&id, NOW).await.expect("load");
                    loads += 1;
                    tokio::task::yield_now().await;
                }
                loads
            })
        })
        .collect();
    for round in 1..=30 {
        let counted = store.increment(&id, "n", 1, NOW).await;
        assert_eq!(counted.expect("increment"), Some(round));
        for found in loads_at_once(&store, &id, 8).await {
            let record = found.expect("live");
            assert_eq!(record.data["n"], Value::from(round), "round {round}");
            assert_eq!(record.data["other"], Value::from(1));
        }
    }
    assert!(store.delete(&id).await.expect("delete"));
    for found in loads_at_once(&store, &id, 8).await {
        assert!(found.is_none(), "a deleted session loaded: {found:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in background {
        assert!(task.await.expect("task") > 0);
    }
}

/// What `count` loads of `id`, each in a task of its own, all started
/// before any is awaited, found.
async fn loads_at_once(
    store: &Arc<dyn SessionStore>,
    id: &SessionId,
    count: usize,
) -> Vec<Option<Record>> {
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (store, id) = (Arc::clone(store), id.clone());
            tokio::spawn(async move { store.load(&id, NOW).await })
        })
        .collect();
    let mut found = Vec::new();
    for task in tasks {
        found.push(task.await.expect("task").expect("load"));
    }
    found
}

async fn concurrent_appends_lose_nothing(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let id = create(&*store, &live_record(map([("other", 1.into())]), None)).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            let id = id.clone();
            tokio::spawn(async move { store.append(&id, "cart", &Value::from(i), NOW).await })
        })
        .collect();
    let mut lengths = Vec::new();
    for task in tasks {
        lengths.push(task.await.expect("task").expect("append").expect("live"));
    }
    lengths.sort_unstable();
    assert_eq!(lengths, (1..=50).collect::<Vec<usize>>());
    let data = load_live(&*store, &id).await.data;
    let items: BTreeSet<i64> = data["cart"]
        .as_slice()
        .expect("a list")
        .iter()
        .map(|item| item.as_i64().expect("an int"))
        .collect();
    assert_eq!(items, (0..50).collect::<BTreeSet<i64>>());
    assert_eq!(data["other"], Value::from(1));
}

/// An increment and an append of one key, racing, where either could go
/// first: on a key with no value or `null`, whichever comes second finds
/// the other's int or list and is refused. Both acknowledged would mean one
/// overwrote the other after reading what was there before it.
async fn an_increment_and_an_append_racing_on_one_key_take_turns(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    for round in 0..40 {
        let data = if round % 2 == 0 {
            map([("other", 1.into())])
        } else {
            map([("k", Value::Null)])
        };
        let id = create(&*store, &live_record(data, None)).await;
        let incrementing = {
            let (store, id) = (Arc::clone(&store), id.clone());
            tokio::spawn(async move { store.increment(&id, "k", 1, NOW).await })
        };
        let appending = {
            let (store, id) = (Arc::clone(&store), id.clone());
            tokio::spawn(async move { store.append(&id, "k", &Value::from("x"), NOW).await })
        };
        let incremented = incrementing.await.expect("task");
        let appended = appending.await.expect("task");
        let stored = load_live(&*store, &id).await.data.remove("k");
        match (&incremented, &appended) {
            (Ok(Some(1)), Err(_)) => {
                assert!(is_wrong_type(&appended, "k"), "round {round}: {appended:?}");
                assert_eq!(stored, Some(Value::from(1)), "round {round}");
            }
            (Err(_), Ok(Some(1))) => {
                assert!(
                    is_wrong_type(&incremented, "k"),
                    "round {round}: {incremented:?}"
                );
                assert_eq!(
                    stored,
                    Some(Value::List(vec![Value::from("x")])),
                    "round {round}"
                );
            }
            _ => panic!("round {round}: increment {incremented:?}, append {appended:?}"),
        }
    }
}

/// Changes that edit the flash messages' list.
fn flash_edit(taken: Vec<Value>, added: Vec<Value>) -> Changes {
    Changes {
        list_edit: Some(ListEdit {
            key: "_flashes".to_owned(),
            taken,
            added,
        }),
        ..Changes::default()
    }
}

/// The flash messages stored in the session, as a request reads them.
async fn stored_flashes(store: &dyn SessionStore, id: &SessionId) -> Vec<Value> {
    load_live(store, id)
        .await
        .data
        .get("_flashes")
        .and_then(Value::as_slice)
        .map(<[Value]>::to_vec)
        .unwrap_or_default()
}

async fn list_edits_apply_to_the_list_as_stored(store: Arc<dyn SessionStore>, keeps: Keeps) {
    let store = &*store;
    let flash = |message: Value| Value::tuple([Value::from("message"), message]);
    let kept = |value: &Value| keeps(value).expect("the store holds it");
    let update = |id: SessionId, changes: Changes| async move {
        assert!(
            store.update(&id, &changes, NOW).await.expect("update"),
            "{changes:?}"
        );
    };
    // Messages of every kind the store holds: a store comparing texts must
    // find them as it wrote them.
    let messages: Vec<Value> = every_value_kind()
        .values()
        .map(|value| flash(value.clone()))
        .filter(|message| keeps(message).is_some())
        .collect();
    let record = live_record(
        map([
            ("_flashes", Value::List(messages.clone())),
            ("other", 1.into()),
        ]),
        None,
    );
    let id = create(store, &record).await;
    let read = stored_flashes(store, &id).await;
    assert_eq!(read.len(), messages.len());

    // Another request flashes while this one shows what it read and flashes.
    let (two, three) = (flash("two".into()), flash("three".into()));
    update(id.clone(), flash_edit(Vec::new(), vec![two.clone()])).await;
    let changes = Changes {
        set: map([("other", 2.into())]),
        ..flash_edit(read, vec![three.clone()])
    };
    update(id.clone(), changes).await;
    let data = load_live(store, &id).await.data;
    assert_eq!(
        data["_flashes"],
        Value::List(vec![kept(&two), kept(&three)])
    );
    assert_eq!(data["other"], Value::from(2));

    // Two requests read the same messages. One takes them all (the key
    // goes), a message is flashed, the other takes what it read: the new
    // message stays.
    let read = stored_flashes(store, &id).await;
    update(id.clone(), flash_edit(read.clone(), Vec::new())).await;
    assert_eq!(load_live(store, &id).await.data.get("_flashes"), None);
    let four = flash("four".into());
    update(id.clone(), flash_edit(Vec::new(), vec![four.clone()])).await;
    update(id.clone(), flash_edit(read, Vec::new())).await;
    assert_eq!(stored_flashes(store, &id).await, [kept(&four)]);

    // One request reads [four]; "five" comes; another reads [four, five];
    // the first takes [four]; "six" comes; the second takes [four, five]:
    // what is left of its messages, [five], goes, and "six" stays.
    let (five, six) = (flash("five".into()), flash("six".into()));
    let first = stored_flashes(store, &id).await;
    update(id.clone(), flash_edit(Vec::new(), vec![five])).await;
    let second = stored_flashes(store, &id).await;
    assert_eq!(second.len(), 2);
    update(id.clone(), flash_edit(first, Vec::new())).await;
    update(id.clone(), flash_edit(Vec::new(), vec![six.clone()])).await;
    update(id.clone(), flash_edit(second, Vec::new())).await;
    assert_eq!(stored_flashes(store, &id).await, [kept(&six)]);

    // What is not a list is replaced.
    let seven = flash("seven".into());
    let junk = Changes {
        set: map([("_flashes", "junk".into())]),
        ..Changes::default()
    };
    update(id.clone(), junk).await;
    update(
        id.clone(),
        flash_edit(vec![kept(&six)], vec![seven.clone()]),
    )
    .await;
    assert_eq!(stored_flashes(store, &id).await, [kept(&seven)]);

    // Cleared first, then edited: from an empty list.
    let eight = flash("eight".into());
    let changes = Changes {
        cleared: true,
        ..flash_edit(Vec::new(), vec![eight.clone()])
    };
    update(id.clone(), changes).await;
    let data = load_live(store, &id).await.data;
    assert_eq!(data, map([("_flashes", Value::List(vec![kept(&eight)]))]));

    // A dead session is not edited.
    let dead = create(store, &expired_record(Map::new(), None)).await;
    let edit = flash_edit(Vec::new(), vec![seven]);
    assert!(!store.update(&dead, &edit, NOW).await.expect("update"));
}

async fn concurrent_list_edits_lose_nothing(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let id = create(&*store, &live_record(map([("other", 1.into())]), None)).await;
    // Requests flash a message each while others show what they read.
    let flashing: Vec<_> = (0..40)
        .map(|i| {
            let (store, id) = (Arc::clone(&store), id.clone());
            tokio::spawn(async move {
                let changes = flash_edit(Vec::new(), vec![Value::from(i)]);
                assert!(store.update(&id, &changes, NOW).await.expect("update"));
            })
        })
        .collect();
    let showing: Vec<_> = (0..8)
        .map(|_| {
            let (store, id) = (Arc::clone(&store), id.clone());
            tokio::spawn(async move {
                let read = stored_flashes(&*store, &id).await;
                let changes = flash_edit(read.clone(), Vec::new());
                assert!(store.update(&id, &changes, NOW).await.expect("update"));
                read
            })
        })
        .collect();
    for task in flashing {
        task.await.expect("task");
    }
    let mut seen = BTreeSet::new();
    for task in showing {
        for message in task.await.expect("task") {
            seen.insert(message.as_i64().expect("an int"));
        }
    }
    let left: Vec<i64> = stored_flashes(&*store, &id)
        .await
        .iter()
        .map(|message| message.as_i64().expect("an int"))
        .collect();
    let distinct: BTreeSet<i64> = left.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        left.len(),
        "a message stored twice: {left:?}"
    );
    seen.extend(left);
    assert_eq!(
        seen,
        (0..40).collect::<BTreeSet<i64>>(),
        "a message was lost"
    );
}

async fn emptied_sessions_go_unless_written_meanwhile(store: Arc<dyn SessionStore>, keeps: Keeps) {
    let store = &*store;
    let permanent = || ("_permanent", Value::Bool(true));
    // Emptied: gone.
    let id = create(
        store,
        &live_record(map([permanent(), ("a", 1.into())]), None),
    )
    .await;
    assert_eq!(
        emptying(store, &id, &removing("a")).await,
        UpdateOutcome::Deleted
    );
    assert_eq!(load(store, &id, NOW).await, None);

    // Written meanwhile by another request: kept, with that write.
    let id = create(
        store,
        &live_record(map([permanent(), ("a", 1.into())]), None),
    )
    .await;
    let other = Changes {
        set: map([("b", 2.into())]),
        ..Changes::default()
    };
    assert!(store.update(&id, &other, NOW).await.expect("update"));
    assert_eq!(
        emptying(store, &id, &removing("a")).await,
        UpdateOutcome::Updated
    );
    assert_eq!(
        load_live(store, &id).await.data,
        map([permanent(), ("b", 2.into())])
    );
    assert_eq!(
        store.increment(&id, "n", 1, NOW).await.expect("increment"),
        Some(1)
    );
    assert_eq!(
        emptying(store, &id, &removing("b")).await,
        UpdateOutcome::Updated
    );
    assert_eq!(
        load_live(store, &id).await.data,
        map([permanent(), ("n", 1.into())])
    );

    // Its last flash messages shown while another request flashed: kept.
    let shown = Value::tuple(["message".into(), "shown".into()]);
    let id = create(
        store,
        &live_record(
            map([permanent(), ("_flashes", Value::List(vec![shown]))]),
            None,
        ),
    )
    .await;
    let read = stored_flashes(store, &id).await;
    let new = Value::tuple(["message".into(), "new".into()]);
    assert!(store
        .update(&id, &flash_edit(Vec::new(), vec![new.clone()]), NOW)
        .await
        .expect("update"));
    let taking = flash_edit(read.clone(), Vec::new());
    assert_eq!(emptying(store, &id, &taking).await, UpdateOutcome::Updated);
    assert_eq!(
        stored_flashes(store, &id).await,
        [keeps(&new).expect("kept")]
    );
    let read = stored_flashes(store, &id).await;
    let taking = flash_edit(read, Vec::new());
    assert_eq!(emptying(store, &id, &taking).await, UpdateOutcome::Deleted);
    assert_eq!(load(store, &id, NOW).await, None);

    // Dead: nothing to do.
    let dead = create(store, &expired_record(map([("a", 1.into())]), None)).await;
    assert_eq!(
        emptying(store, &dead, &removing("a")).await,
        UpdateOutcome::Vanished
    );
}

/// Emptied but owned: kept (its user is logged in); gone with its owner,
/// from the owner's list too.
async fn emptied_but_owned_sessions_stay(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let id = create(store, &owned_by_alice_with_one_key()).await;
    assert_eq!(
        emptying(store, &id, &removing("a")).await,
        UpdateOutcome::Updated
    );
    assert_eq!(
        load_live(store, &id).await.user_id.as_deref(),
        Some("alice")
    );
    let disowning = Changes {
        user_id: Some(None),
        ..Changes::default()
    };
    assert_eq!(
        emptying(store, &id, &disowning).await,
        UpdateOutcome::Deleted
    );
    assert_eq!(load(store, &id, NOW).await, None);
    assert_not_listed(store, "alice", &id).await;
}

/// The Flask-Session layout: Flask-Session counts a session holding nothing
/// but `_permanent` as none (its `regenerate()` skips it, the next login
/// through the Flask app writes into it), so an emptied session goes even
/// if it has an owner, from the owner's list too; one that the same change
/// gives an owner stays.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
async fn emptied_sessions_go_even_if_owned(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let record = owned_by_alice_with_one_key();
    let id = create(store, &record).await;
    assert_eq!(
        emptying(store, &id, &removing("a")).await,
        UpdateOutcome::Deleted
    );
    assert_eq!(load(store, &id, NOW).await, None);
    assert_not_listed(store, "alice", &id).await;

    let id = create(store, &record).await;
    let logging_in = Changes {
        removed: vec!["a".to_owned()],
        user_id: Some(Some("bob".to_owned())),
        ..Changes::default()
    };
    assert_eq!(
        emptying(store, &id, &logging_in).await,
        UpdateOutcome::Updated
    );
    assert_eq!(load_live(store, &id).await.user_id.as_deref(), Some("bob"));
}

/// A permanent session of alice's holding one key, `a`.
fn owned_by_alice_with_one_key() -> Record {
    live_record(
        map([("_permanent", true.into()), ("a", 1.into())]),
        Some("alice"),
    )
}

/// Changes that remove `key`.
fn removing(key: &str) -> Changes {
    Changes {
        removed: vec![key.to_owned()],
        ..Changes::default()
    }
}

/// `update_or_delete_if_empty`, which must succeed.
async fn emptying(store: &dyn SessionStore, id: &SessionId, changes: &Changes) -> UpdateOutcome {
    store
        .update_or_delete_if_empty(id, changes, NOW)
        .await
        .expect("update")
}

/// Checks that `user`'s sessions do not list `id`.
async fn assert_not_listed(store: &dyn SessionStore, user: &str, id: &SessionId) {
    let listed = store.list(Some(user), None, 10, NOW).await.expect("list");
    assert!(listed.iter().all(|info| &info.id != id), "{listed:?}");
}

async fn emptying_never_deletes_acknowledged_writes(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    for _ in 0..20 {
        let record = live_record(map([("_permanent", true.into()), ("a", 1.into())]), None);
        let id = create(&*store, &record).await;
        let counting: Vec<_> = (0..8)
            .map(|_| {
                let (store, id) = (Arc::clone(&store), id.clone());
                tokio::spawn(async move { store.increment(&id, "n", 1, NOW).await })
            })
            .collect();
        let emptying = removing("a");
        let outcome = store
            .update_or_delete_if_empty(&id, &emptying, NOW)
            .await
            .expect("update");
        let mut acknowledged = 0;
        for task in counting {
            if task.await.expect("task").expect("increment").is_some() {
                acknowledged += 1;
            }
        }
        match load(&*store, &id, NOW).await {
            Some(record) => {
                assert_eq!(outcome, UpdateOutcome::Updated);
                assert_eq!(record.data.get("n"), Some(&Value::from(acknowledged)));
            }
            None => {
                assert_eq!(outcome, UpdateOutcome::Deleted);
                assert_eq!(acknowledged, 0, "acknowledged increments deleted");
            }
        }
    }
}

async fn increment_rules(store: Arc<dyn SessionStore>, keeps: Keeps) {
    let store = &*store;
    let data = map([
        ("nothing", Value::Null),
        ("int", 41.into()),
        ("string", "7".into()),
        ("float", float(1.5)),
        ("whole_float", parsed("2.0")),
        ("big", Value::from(2u128.pow(64) + 5)),
        ("list", Value::List(vec![])),
        ("bool", true.into()),
        ("max", i64::MAX.into()),
        ("min", i64::MIN.into()),
    ]);
    // A store that cannot hold an integer beyond 64 bits is not asked to.
    let data = kept(keeps, &data);
    let id = create(store, &live_record(data.clone(), None)).await;
    let increment = |key: &'static str, by: i64| {
        let id = id.clone();
        async move { store.increment(&id, key, by, NOW).await }
    };

    assert_eq!(increment("absent", 5).await.expect("increment"), Some(5));
    assert_eq!(increment("absent", -7).await.expect("increment"), Some(-2));
    assert_eq!(increment("nothing", 1).await.expect("increment"), Some(1));
    assert_eq!(increment("int", 1).await.expect("increment"), Some(42));
    assert_eq!(increment("int", 0).await.expect("increment"), Some(42));

    for key in ["string", "float", "whole_float", "big", "list", "bool"] {
        if !data.contains_key(key) {
            continue;
        }
        assert!(is_wrong_type(&increment(key, 1).await, key), "{key}");
    }
    // Overflow is refused rather than wrapped.
    assert!(is_wrong_type(&increment("max", 1).await, "max"));
    assert!(is_wrong_type(&increment("min", -1).await, "min"));

    let loaded = load_live(store, &id).await.data;
    assert_eq!(loaded["absent"], Value::from(-2));
    assert_eq!(loaded["nothing"], Value::from(1));
    assert_eq!(loaded["int"], Value::from(42));
    // A refused increment changes nothing.
    for key in [
        "string",
        "float",
        "whole_float",
        "big",
        "list",
        "bool",
        "max",
        "min",
    ] {
        assert_eq!(loaded.get(key), data.get(key), "{key}");
    }

    // No live record: None, and nothing is written.
    let missing = SessionId::generate();
    assert_eq!(
        store
            .increment(&missing, "n", 1, NOW)
            .await
            .expect("increment"),
        None
    );
    assert_eq!(load(store, &missing, NOW).await, None);
    let expired = create(store, &expired_record(Map::new(), None)).await;
    assert_eq!(
        store
            .increment(&expired, "n", 1, NOW)
            .await
            .expect("increment"),
        None
    );
    assert_eq!(
        load(store, &expired, NOW - 1).await.expect("stored").data,
        Map::new()
    );
}

/// Every stored integer and step near the ends of the signed 64-bit range
/// and where the digits change from 18 to 19 (where a store may switch
/// between two ways of adding): the sum when it fits, a refusal that
/// changes nothing when it does not, as `i64::checked_add` says.
async fn increments_near_the_ends_of_the_range(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    const E18: i64 = 1_000_000_000_000_000_000;
    let stored = [
        0,
        -1,
        7,
        E18 - 1,
        -(E18 - 1),
        E18,
        -E18,
        i64::MAX - 1,
        i64::MAX,
        i64::MIN + 1,
        i64::MIN,
    ];
    let steps = [1, -1, E18, -E18, i64::MAX, i64::MIN, i64::MAX - E18 + 1];
    // Each pair of stored integer and step under a key of its own.
    let cases: Vec<(String, i64, i64)> = stored
        .iter()
        .flat_map(|&value| steps.iter().map(move |&by| (value, by)))
        .enumerate()
        .map(|(i, (value, by))| (format!("n{i}"), value, by))
        .collect();
    let data: Map = cases
        .iter()
        .map(|(key, value, _)| (key.clone(), Value::from(*value)))
        .collect();
    let id = create(store, &live_record(data, None)).await;
    for (key, value, by) in &cases {
        let result = store.increment(&id, key, *by, NOW).await;
        match value.checked_add(*by) {
            Some(sum) => assert_eq!(result.expect("increment"), Some(sum), "{value} + {by}"),
            None => assert!(is_wrong_type(&result, key), "{value} + {by}: {result:?}"),
        }
    }
    let loaded = load_live(store, &id).await.data;
    for (key, value, by) in &cases {
        let expected = value.checked_add(*by).unwrap_or(*value);
        assert_eq!(
            loaded[key.as_str()],
            Value::from(expected),
            "{value} + {by}"
        );
    }
}

async fn append_rules(store: Arc<dyn SessionStore>, keeps: Keeps) {
    let store = &*store;
    let data = map([
        ("nothing", Value::Null),
        ("list", Value::List(vec![1.into(), 2.into()])),
        ("string", "abc".into()),
        ("tuple", Value::tuple([1.into()])),
        ("dict", Value::Dict(Map::new())),
        ("int", 3.into()),
    ]);
    let id = create(store, &live_record(data.clone(), None)).await;
    let item = Value::tuple([Value::from("error"), Value::bytes(b"\x00\xff".to_vec())]);
    let append = |key: &'static str| {
        let id = id.clone();
        let item = item.clone();
        async move { store.append(&id, key, &item, NOW).await }
    };

    assert_eq!(append("absent").await.expect("append"), Some(1));
    assert_eq!(append("absent").await.expect("append"), Some(2));
    assert_eq!(append("nothing").await.expect("append"), Some(1));
    assert_eq!(append("list").await.expect("append"), Some(3));
    // A store that keeps tuples as lists (Flask-Session's formats) holds a
    // list under "tuple", which takes the item like any list.
    let tuple_kept_as_list = matches!(keeps(&data["tuple"]), Some(Value::List(_)));
    if tuple_kept_as_list {
        assert_eq!(append("tuple").await.expect("append"), Some(2));
    }
    for key in ["string", "tuple", "dict", "int"] {
        if key == "tuple" && tuple_kept_as_list {
            continue;
        }
        assert!(is_wrong_type(&append(key).await, key), "{key}");
    }

    let loaded = load_live(store, &id).await.data;
    let item = keeps(&item).expect("representable");
    assert_eq!(
        loaded["absent"],
        Value::List(vec![item.clone(), item.clone()])
    );
    assert_eq!(loaded["nothing"], Value::List(vec![item.clone()]));
    assert_eq!(
        loaded["list"],
        Value::List(vec![1.into(), 2.into(), item.clone()])
    );
    let data = kept(keeps, &data);
    for key in ["string", "tuple", "dict", "int"] {
        if key == "tuple" && tuple_kept_as_list {
            assert_eq!(loaded[key], Value::List(vec![1.into(), item.clone()]));
            continue;
        }
        assert_eq!(loaded[key], data[key], "{key}");
    }

    let missing = SessionId::generate();
    assert_eq!(
        store
            .append(&missing, "l", &item, NOW)
            .await
            .expect("append"),
        None
    );
    assert_eq!(load(store, &missing, NOW).await, None);
    let expired = create(store, &expired_record(Map::new(), None)).await;
    assert_eq!(
        store
            .append(&expired, "l", &item, NOW)
            .await
            .expect("append"),
        None
    );
    assert_eq!(
        load(store, &expired, NOW - 1).await.expect("stored").data,
        Map::new()
    );
}

async fn delete_removes_the_record(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let keep = live_record(map([("k", 1.into())]), Some("alice"));
    let keep_id = create(store, &keep).await;
    let id = create(store, &live_record(map([("a", 1.into())]), Some("alice"))).await;

    assert!(store.delete(&id).await.expect("delete"));
    assert_eq!(load(store, &id, NOW).await, None);
    assert!(!store.delete(&id).await.expect("delete"));
    assert!(!store.delete(&SessionId::generate()).await.expect("delete"));
    assert!(!store
        .update(
            &id,
            &Changes {
                set: map([("a", 2.into())]),
                ..Changes::default()
            },
            NOW
        )
        .await
        .expect("update"));
    assert_eq!(
        store.increment(&id, "a", 1, NOW).await.expect("increment"),
        None
    );

    // An expired record is still there to delete.
    let expired = create(store, &expired_record(Map::new(), None)).await;
    assert!(store.delete(&expired).await.expect("delete"));
    assert_eq!(load(store, &expired, NOW - 1).await, None);

    assert_eq!(load_live(store, &keep_id).await, keep);
    assert_eq!(
        store.list(None, None, 10, NOW).await.expect("list"),
        vec![info(&keep_id, &keep)]
    );
}

async fn cycle_id_moves_the_record(store: Arc<dyn SessionStore>, keeps: Keeps) {
    let store = &*store;
    let record = Record {
        absolute_expires_at: Some(NOW + 2 * HOUR),
        ..live_record(kept(keeps, &every_value_kind()), Some("alice"))
    };
    let old = create(store, &record).await;
    let new = SessionId::generate();
    assert!(store.cycle_id(&old, &new, NOW).await.expect("cycle"));
    assert_eq!(load(store, &old, NOW).await, None);
    assert_eq!(load_live(store, &new).await, record);
    assert!(!store.delete(&old).await.expect("delete"));
    assert_eq!(
        store.increment(&old, "n", 1, NOW).await.expect("increment"),
        None
    );
    assert_eq!(
        store.increment(&new, "n", 1, NOW).await.expect("increment"),
        Some(1)
    );
    assert_eq!(
        store
            .list(Some("alice"), None, 10, NOW)
            .await
            .expect("list"),
        vec![info(&new, &record)]
    );

    // The new id taken by a live record: nothing changes.
    let a_record = live_record(map([("a", 1.into())]), None);
    let b_record = live_record(map([("b", 2.into())]), None);
    let a = create(store, &a_record).await;
    let b = create(store, &b_record).await;
    assert!(!store.cycle_id(&a, &b, NOW).await.expect("cycle"));
    assert_eq!(load_live(store, &a).await, a_record);
    assert_eq!(load_live(store, &b).await, b_record);

    // ... or by an expired one.
    let dead = expired_record(map([("dead", 1.into())]), None);
    let dead_id = create(store, &dead).await;
    assert!(!store.cycle_id(&a, &dead_id, NOW).await.expect("cycle"));
    assert_eq!(load_live(store, &a).await, a_record);
    assert_eq!(load(store, &dead_id, NOW - 1).await, Some(dead));

    // Onto itself.
    assert!(!store.cycle_id(&a, &a, NOW).await.expect("cycle"));
    assert_eq!(load_live(store, &a).await, a_record);

    // An expired or missing old record: false, and the new id stays unused.
    let unused = SessionId::generate();
    assert!(!store.cycle_id(&dead_id, &unused, NOW).await.expect("cycle"));
    assert!(!store
        .cycle_id(&SessionId::generate(), &unused, NOW)
        .await
        .expect("cycle"));
    assert_eq!(load(store, &unused, NOW - 1).await, None);
    assert!(store.create(&unused, &a_record).await.expect("create"));
}

async fn idle_expiry(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let record = Record {
        expires_at: NOW + 10,
        ..live_record(map([("a", 1.into())]), None)
    };
    let id = create(store, &record).await;
    assert_eq!(load(store, &id, NOW + 9).await, Some(record.clone()));
    assert_eq!(load(store, &id, NOW + 10).await, None);
    assert_eq!(load(store, &id, NOW + 11).await, None);

    // Too late to write or extend.
    let late = Changes {
        set: map([("x", 1.into())]),
        expires_at: Some(NOW + HOUR),
        ..Changes::default()
    };
    assert!(!store.update(&id, &late, NOW + 10).await.expect("update"));
    assert!(!store
        .update(&id, &Changes::default(), NOW + 10)
        .await
        .expect("update"));
    assert_eq!(load(store, &id, NOW + 9).await, Some(record.clone()));
    assert_eq!(load(store, &id, NOW + 10).await, None);

    // In time, the idle expiry slides.
    let extend = Changes {
        expires_at: Some(NOW + 20),
        ..Changes::default()
    };
    assert!(store.update(&id, &extend, NOW + 9).await.expect("update"));
    assert!(load(store, &id, NOW + 19).await.is_some());
    assert_eq!(load(store, &id, NOW + 20).await, None);
}

async fn absolute_expiry_is_independent_of_idle_expiry(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    let store = &*store;
    let record = Record {
        expires_at: NOW + HOUR,
        absolute_expires_at: Some(NOW + 100),
        ..live_record(map([("a", 1.into())]), Some("alice"))
    };
    let id = create(store, &record).await;
    assert_eq!(load(store, &id, NOW + 99).await, Some(record.clone()));
    assert_eq!(load(store, &id, NOW + 100).await, None);

    // Extending the idle expiry does not push back the absolute one.
    let extend = Changes {
        expires_at: Some(NOW + 10 * HOUR),
        ..Changes::default()
    };
    assert!(store.update(&id, &extend, NOW + 50).await.expect("update"));
    assert!(load(store, &id, NOW + 99).await.is_some());
    assert_eq!(load(store, &id, NOW + 100).await, None);
    assert!(!store.update(&id, &extend, NOW + 100).await.expect("update"));
    assert_eq!(
        store
            .increment(&id, "n", 1, NOW + 100)
            .await
            .expect("increment"),
        None
    );
    assert_eq!(
        store
            .append(&id, "l", &Value::Null, NOW + 100)
            .await
            .expect("append"),
        None
    );
    assert!(!store
        .cycle_id(&id, &SessionId::generate(), NOW + 100)
        .await
        .expect("cycle"));
    assert!(store
        .list(Some("alice"), None, 10, NOW + 100)
        .await
        .expect("list")
        .is_empty());

    // The other way round: the idle expiry ends a session long before its
    // absolute expiry.
    let idle = Record {
        expires_at: NOW + 10,
        absolute_expires_at: Some(NOW + HOUR),
        ..live_record(Map::new(), None)
    };
    let idle_id = create(store, &idle).await;
    assert!(load(store, &idle_id, NOW + 9).await.is_some());
    assert_eq!(load(store, &idle_id, NOW + 10).await, None);
}

/// `Changes::absolute_expires_at` gives a record stored without an absolute
/// expiry one, and brings an existing one in, never out; the record ends
/// then for loads, writes, listings and the sweep alike.
async fn an_absolute_expiry_added_later_only_comes_sooner(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    let store = &*store;
    let record = live_record(map([("a", 1.into())]), Some("alice"));
    let id = create(store, &record).await;
    let cap = |at: u64| Changes {
        absolute_expires_at: Some(at),
        ..Changes::default()
    };
    assert!(!cap(NOW + 1).is_empty());

    assert!(store
        .update(&id, &cap(NOW + 100), NOW)
        .await
        .expect("update"));
    let expected = Record {
        absolute_expires_at: Some(NOW + 100),
        ..record.clone()
    };
    assert_eq!(load(store, &id, NOW + 99).await, Some(expected.clone()));
    assert_eq!(load(store, &id, NOW + 100).await, None);

    // A later one, with a new idle expiry: the idle expiry moves, the
    // absolute one stays.
    let later = Changes {
        expires_at: Some(NOW + 2 * HOUR),
        ..cap(NOW + 200)
    };
    assert!(store.update(&id, &later, NOW + 1).await.expect("update"));
    let expected = Record {
        expires_at: NOW + 2 * HOUR,
        ..expected
    };
    assert_eq!(load(store, &id, NOW + 99).await, Some(expected.clone()));

    // A sooner one, with a write: both kept.
    let sooner = Changes {
        set: map([("b", 2.into())]),
        ..cap(NOW + 50)
    };
    assert!(store.update(&id, &sooner, NOW + 2).await.expect("update"));
    let expected = Record {
        data: map([("a", 1.into()), ("b", 2.into())]),
        absolute_expires_at: Some(NOW + 50),
        ..expected
    };
    assert_eq!(load(store, &id, NOW + 49).await, Some(expected));
    assert_eq!(load(store, &id, NOW + 50).await, None);
    assert!(store
        .list(Some("alice"), None, 10, NOW + 50)
        .await
        .expect("list")
        .is_empty());
    assert!(!store
        .update(&id, &cap(NOW), NOW + 50)
        .await
        .expect("update"));
    assert_eq!(store.purge_expired(NOW + 49, 100).await.expect("purge"), 0);
    assert_eq!(store.purge_expired(NOW + 50, 100).await.expect("purge"), 1);
    assert_eq!(load(store, &id, NOW).await, None);
}

async fn list_filters_pages_and_skips_expired(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let mut live = Vec::new();
    for (user, count) in [(Some("alice"), 3), (Some("bob"), 2), (None, 2)] {
        for i in 0..count {
            let record = Record {
                // Different times, so the fields are checked, not assumed.
                created_at: NOW - 100 + i,
                expires_at: NOW + HOUR + i,
                absolute_expires_at: (i % 2 == 0).then_some(NOW + 2 * HOUR),
                ..live_record(map([("i", i.into())]), user)
            };
            let id = create(store, &record).await;
            live.push((id, record));
        }
    }
    // Not listed: idle-expired, absolutely expired.
    create(store, &expired_record(Map::new(), Some("alice"))).await;
    let absolutely_expired = Record {
        absolute_expires_at: Some(NOW),
        ..live_record(Map::new(), Some("alice"))
    };
    create(store, &absolutely_expired).await;

    let mut all: Vec<SessionInfo> = live.iter().map(|(id, r)| info(id, r)).collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let of = |user: &str| -> Vec<SessionInfo> {
        all.iter()
            .filter(|s| s.user_id.as_deref() == Some(user))
            .cloned()
            .collect()
    };

    assert_eq!(store.list(None, None, 100, NOW).await.expect("list"), all);
    assert_eq!(
        store
            .list(Some("alice"), None, 100, NOW)
            .await
            .expect("list"),
        of("alice")
    );
    assert_eq!(
        store.list(Some("bob"), None, 100, NOW).await.expect("list"),
        of("bob")
    );
    assert!(store
        .list(Some("nobody"), None, 100, NOW)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list(None, None, 0, NOW)
        .await
        .expect("list")
        .is_empty());

    // Paging: each page starts after the last id of the one before.
    for (user, page_size, expected) in [
        (None, 2, all.clone()),
        (None, 1, all.clone()),
        (None, 7, all.clone()),
        (Some("alice"), 2, of("alice")),
        (Some("alice"), 1, of("alice")),
    ] {
        let mut pages = Vec::new();
        let mut after: Option<SessionId> = None;
        // Bounded, so a store that repeats its last item fails, not hangs.
        for _ in 0..=all.len() {
            let page = store
                .list(user, after.as_ref(), page_size, NOW)
                .await
                .expect("list");
            assert!(page.len() <= page_size);
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            pages.extend(page);
        }
        assert_eq!(pages, expected, "{user:?} by {page_size}");
    }

    // `after` need not be a stored id.
    let middle = &all[3].id;
    let after = SessionId::parse(&format!("{}-", middle.as_str())).expect("an id");
    assert_eq!(
        store
            .list(None, Some(&after), 100, NOW)
            .await
            .expect("list"),
        all[4..].to_vec()
    );

    // Later, the sessions that expired in between are gone from the list.
    let later = NOW + HOUR + 1;
    let still_live: Vec<SessionInfo> = all
        .iter()
        .filter(|s| later < s.expires_at && s.absolute_expires_at.is_none_or(|at| later < at))
        .cloned()
        .collect();
    assert!(still_live.len() < all.len());
    assert_eq!(
        store.list(None, None, 100, later).await.expect("list"),
        still_live
    );
}

async fn delete_user_removes_only_that_users_sessions(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let mut alice = Vec::new();
    for _ in 0..3 {
        let record = live_by_the_clock(map([("a", 1.into())]), Some("alice"));
        alice.push(create(store, &record).await);
    }
    let bob_record = live_by_the_clock(map([("b", 1.into())]), Some("bob"));
    let bob = create(store, &bob_record).await;
    let anonymous_record = live_by_the_clock(Map::new(), None);
    let anonymous = create(store, &anonymous_record).await;

    assert_eq!(store.delete_user("alice").await.expect("delete_user"), 3);
    for id in &alice {
        assert_eq!(load(store, id, NOW).await, None);
    }
    assert_eq!(load_live(store, &bob).await, bob_record);
    assert_eq!(load_live(store, &anonymous).await, anonymous_record);
    assert!(store
        .list(Some("alice"), None, 10, NOW)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        store.list(None, None, 10, NOW).await.expect("list").len(),
        2
    );
    assert_eq!(store.delete_user("alice").await.expect("delete_user"), 0);
    assert_eq!(store.delete_user("nobody").await.expect("delete_user"), 0);
    assert_eq!(store.delete_user("").await.expect("delete_user"), 0);
}

/// "Log out everywhere" for a user with more sessions than a store deletes
/// at once (Redis deletes a few hundred per call, not to hold the server):
/// every one goes, and nothing else.
async fn delete_user_removes_hundreds_of_sessions(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    const SESSIONS: usize = 700;
    let mut alice = Vec::with_capacity(SESSIONS);
    for n in 0..SESSIONS {
        let record = live_by_the_clock(map([("n", Value::from(n))]), Some("alice"));
        alice.push(create(store, &record).await);
    }
    let bob_record = live_by_the_clock(map([("b", 1.into())]), Some("bob"));
    let bob = create(store, &bob_record).await;

    assert_eq!(
        store.delete_user("alice").await.expect("delete_user"),
        SESSIONS as u64
    );
    for id in alice.iter().step_by(37) {
        assert_eq!(load(store, id, NOW).await, None);
    }
    assert!(store
        .list(Some("alice"), None, 10, NOW)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(load_live(store, &bob).await, bob_record);
    assert_eq!(store.delete_user("alice").await.expect("delete_user"), 0);
}

/// "Log out everywhere" counts the sessions it ends: those of the user
/// that were live. Those already past their idle or absolute expiry but not
/// yet purged go too, uncounted, as the user no longer had them (Redis
/// drops them by itself; a demo said "2 sessions ended" of a user it had
/// just listed one live session for). The dead ones here die a second after
/// they are written, by the clock (which `delete_user` reads, as it takes
/// no time) and by Redis's TTLs, which count from the write.
async fn delete_user_counts_only_live_sessions(store: Arc<dyn SessionStore>, _keeps: Keeps) {
    let store = &*store;
    let now = clock();
    let live = Record {
        created_at: now,
        expires_at: now + HOUR,
        ..live_record(map([("a", 1.into())]), Some("alice"))
    };
    let idle_dead = Record {
        expires_at: now + 1,
        ..live.clone()
    };
    let absolutely_dead = Record {
        absolute_expires_at: Some(now + 1),
        ..live.clone()
    };
    let mut ids = Vec::new();
    for record in [&live, &idle_dead, &absolutely_dead, &live] {
        ids.push(create(store, record).await);
    }
    let written = std::time::Instant::now();
    while clock() <= now || written.elapsed() < std::time::Duration::from_millis(1100) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let listed = store
        .list(Some("alice"), None, 10, clock())
        .await
        .expect("list");
    assert_eq!(listed.len(), 2, "the user's live sessions: {listed:?}");

    assert_eq!(store.delete_user("alice").await.expect("delete_user"), 2);
    // Gone, the dead ones too: at `now` every one was live.
    for id in &ids {
        assert_eq!(load(store, id, now).await, None);
    }
    assert_eq!(store.delete_user("alice").await.expect("delete_user"), 0);
}

async fn purge_expired_removes_only_dead_records_in_batches(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    let store = &*store;
    let mut dead = Vec::new();
    for i in 0..5 {
        // Idle-expired, at or before NOW.
        let record = Record {
            expires_at: NOW - i,
            ..live_record(map([("d", 1.into())]), Some("alice"))
        };
        dead.push(create(store, &record).await);
    }
    for i in 0..3 {
        // Absolutely expired, though their idle expiry is ahead.
        let record = Record {
            absolute_expires_at: Some(NOW - i),
            ..live_record(map([("d", 1.into())]), None)
        };
        dead.push(create(store, &record).await);
    }
    let mut live = Vec::new();
    for i in 0..4 {
        let record = Record {
            // The first expires one second after NOW: live at NOW.
            expires_at: NOW + 1 + i,
            absolute_expires_at: (i % 2 == 0).then_some(NOW + 1),
            ..live_record(map([("l", i.into())]), Some("bob"))
        };
        let id = create(store, &record).await;
        live.push((id, record));
    }

    assert_eq!(store.purge_expired(NOW, 0).await.expect("purge"), 0);
    assert_eq!(store.purge_expired(NOW, 3).await.expect("purge"), 3);
    assert_eq!(store.purge_expired(NOW, 3).await.expect("purge"), 3);
    assert_eq!(store.purge_expired(NOW, 3).await.expect("purge"), 2);
    assert_eq!(store.purge_expired(NOW, 3).await.expect("purge"), 0);

    for (id, record) in &live {
        assert_eq!(&load_live(store, id).await, record);
    }
    // The dead records are really gone: their ids are free again.
    let replacement = live_record(Map::new(), None);
    for id in &dead {
        assert_eq!(load(store, id, 0).await, None);
        assert!(store.create(id, &replacement).await.expect("create"));
    }
    assert_eq!(store.delete_user("alice").await.expect("delete_user"), 0);

    // Later, the live ones die too and a large batch drains them at once.
    assert_eq!(store.purge_expired(NOW + 1, 100).await.expect("purge"), 2);
    assert_eq!(
        store.purge_expired(NOW + HOUR, 100).await.expect("purge"),
        2 + dead.len() as u64
    );
    assert!(store
        .list(None, None, 100, 0)
        .await
        .expect("list")
        .is_empty());
}

async fn expired_records_are_never_returned_before_purge(
    store: Arc<dyn SessionStore>,
    _keeps: Keeps,
) {
    let store = &*store;
    let idle = create(
        store,
        &expired_record(map([("a", 1.into())]), Some("carol")),
    )
    .await;
    let absolute = create(
        store,
        &Record {
            absolute_expires_at: Some(NOW),
            ..live_record(map([("a", 1.into())]), Some("carol"))
        },
    )
    .await;
    for id in [&idle, &absolute] {
        assert_eq!(load(store, id, NOW).await, None);
        assert_eq!(load(store, id, NOW + HOUR).await, None);
        // Stored all the same: visible before their expiry.
        assert!(load(store, id, NOW - 1).await.is_some());
    }
    assert!(store
        .list(Some("carol"), None, 10, NOW)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list(None, None, 10, NOW)
        .await
        .expect("list")
        .is_empty());
    assert_eq!(store.purge_expired(NOW, 10).await.expect("purge"), 2);
}

// ---------------------------------------------------------------------------
// SQLite only: the file itself.

#[cfg(feature = "sqlite")]
mod sqlite_file {
    use std::path::Path;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use sqlx::Connection as _;
    use tessera::store::SqliteStore;

    use super::*;

    /// A connection of the test's own, to look at what the store wrote.
    async fn inspect(path: &Path) -> SqliteConnection {
        SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
            .await
            .expect("open the database to inspect it")
    }

    async fn scalar<T>(conn: &mut SqliteConnection, sql: &'static str) -> T
    where
        T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        sqlx::query_scalar(sql)
            .fetch_one(conn)
            .await
            .expect("query")
    }

    #[tokio::test]
    async fn open_existing_never_creates_or_migrates() {
        let dir = TempDir::new("sqlite-existing");
        let missing = dir.path().join("absent").join("sessions.db");
        let err = SqliteStore::open_existing(&missing)
            .await
            .expect_err("no such file");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(
            !missing.parent().expect("parent").exists(),
            "no directory created"
        );

        // Someone else's (here: empty) database is refused and left as it was.
        let foreign = dir.path().join("foreign.db");
        std::fs::write(&foreign, b"").expect("an empty file");
        let err = SqliteStore::open_existing(&foreign)
            .await
            .expect_err("not a session store");
        assert!(
            err.to_string().contains("not a tessera session store"),
            "{err}"
        );
        assert_eq!(
            std::fs::metadata(&foreign).expect("still there").len(),
            0,
            "untouched"
        );

        let real = dir.path().join("sessions.db");
        SqliteStore::open(&real)
            .await
            .expect("create")
            .close()
            .await;
        let store = SqliteStore::open_existing(&real)
            .await
            .expect("a real store opens");
        assert!(store
            .load(&SessionId::generate(), 1)
            .await
            .expect("usable")
            .is_none());
        store.close().await;
    }

    /// An application that built its store from the configuration has it
    /// as a `dyn SessionStore`: closing it that way writes the log back too.
    #[tokio::test]
    async fn closing_through_the_trait_leaves_no_log_behind() {
        let dir = TempDir::new("sqlite-close");
        let path = dir.path().join("sessions.db");
        let store: Arc<dyn SessionStore> = Arc::new(SqliteStore::new(&path));
        create(&*store, &live_record(map([("a", 1.into())]), None)).await;
        let log = dir.path().join("sessions.db-wal");
        assert!(log.is_file());
        store.close().await;
        assert!(!log.exists(), "the log is left behind");
        let closed = store.load(&SessionId::generate(), NOW).await;
        assert!(
            matches!(closed, Err(StoreError::Unavailable(_))),
            "{closed:?}"
        );
    }

    #[tokio::test]
    async fn the_file_is_created_on_first_use_in_wal_mode() {
        let dir = TempDir::new("sqlite-lazy");
        let path = dir.path().join("nested").join("deeper").join("sessions.db");
        let store = SqliteStore::new(&path);
        assert_eq!(store.path(), path);
        assert!(
            !dir.path().join("nested").exists(),
            "new() touched the disk"
        );
        let from_url = SqliteStore::from_url(&format!("sqlite://{}", path.display())).expect("url");
        assert_eq!(from_url.path(), path);
        assert!(
            !dir.path().join("nested").exists(),
            "from_url() touched the disk"
        );

        assert_eq!(load(&store, &SessionId::generate(), NOW).await, None);
        assert!(path.is_file());

        let mut conn = inspect(&path).await;
        let mode: String = scalar(&mut conn, "PRAGMA journal_mode").await;
        assert_eq!(mode, "wal");
        let version: i64 = scalar(&mut conn, "PRAGMA user_version").await;
        assert_eq!(version, i64::from(SqliteStore::SCHEMA_VERSION));
        assert_eq!(SqliteStore::SCHEMA_VERSION, 1);
        let objects: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE name LIKE 'tessera%' ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .expect("query");
        assert_eq!(
            objects,
            [
                "tessera_session_values",
                "tessera_sessions",
                "tessera_sessions_absolute_expires_at",
                "tessera_sessions_expires_at",
                "tessera_sessions_user_id",
            ]
        );
        conn.close().await.expect("close");
        store.close().await;
    }

    #[tokio::test]
    async fn data_persists_across_instances() {
        let dir = TempDir::new("sqlite-reopen");
        let path = dir.path().join("sessions.db");
        let record = live_record(every_value_kind(), Some("alice"));

        let first = SqliteStore::open(&path).await.expect("open");
        let id = create(&first, &record).await;
        assert_eq!(
            first
                .increment(&id, "visits", 1, NOW)
                .await
                .expect("increment"),
            Some(1)
        );
        first.close().await;
        assert!(matches!(
            first.load(&id, NOW).await,
            Err(StoreError::Unavailable(_))
        ));

        // Reopening finds the schema in place and the data intact.
        let second = SqliteStore::open(&path).await.expect("reopen");
        let mut expected = record.clone();
        expected.data.insert("visits".to_owned(), 1.into());
        assert_eq!(load_live(&second, &id).await, expected);

        // Two stores on one file (as two processes would be) see each
        // other's writes.
        let third = SqliteStore::new(&path);
        assert_eq!(
            third
                .increment(&id, "visits", 1, NOW)
                .await
                .expect("increment"),
            Some(2)
        );
        assert_eq!(
            second
                .increment(&id, "visits", 1, NOW)
                .await
                .expect("increment"),
            Some(3)
        );
        assert_eq!(load_live(&third, &id).await.data["visits"], Value::from(3));

        let mut conn = inspect(&path).await;
        let version: i64 = scalar(&mut conn, "PRAGMA user_version").await;
        assert_eq!(version, i64::from(SqliteStore::SCHEMA_VERSION));
        conn.close().await.expect("close");
        second.close().await;
        third.close().await;
    }

    #[tokio::test]
    async fn a_failed_open_is_retried_by_the_next_operation() {
        let dir = TempDir::new("sqlite-retry");
        // A file where the store's directory should be.
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, b"not a directory").expect("write");
        let path = blocker.join("sessions.db");

        assert!(matches!(
            SqliteStore::open(&path).await,
            Err(StoreError::Unavailable(_))
        ));
        let store = SqliteStore::new(&path);
        let error = store
            .load(&SessionId::generate(), NOW)
            .await
            .expect_err("no directory");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(
            error.to_string().contains("sessions.db"),
            "the message names the file: {error}"
        );

        std::fs::remove_file(&blocker).expect("remove");
        let id = create(&store, &live_record(Map::new(), None)).await;
        assert!(load(&store, &id, NOW).await.is_some());
        store.close().await;
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = TempDir::new("sqlite-newer");
        let path = dir.path().join("sessions.db");
        SqliteStore::open(&path).await.expect("open").close().await;
        let mut conn = inspect(&path).await;
        sqlx::query("PRAGMA user_version = 99")
            .execute(&mut conn)
            .await
            .expect("set version");
        conn.close().await.expect("close");

        let error = SqliteStore::open(&path).await.expect_err("refused");
        assert!(
            matches!(&error, StoreError::Config(message) if message.text().contains("99")),
            "{error}"
        );
        // The CLI opens existing stores only: told the same.
        let error = SqliteStore::open_existing(&path)
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, StoreError::Config(message)
                if message.text().contains("version 99") && message.text().contains("upgrade tessera")),
            "{error}"
        );
    }

    async fn values_of(conn: &mut SqliteConnection, id: &SessionId) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM tessera_session_values WHERE session_id = ?1")
            .bind(id.as_str())
            .fetch_one(conn)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn values_are_tagged_json_one_row_per_key_and_go_with_their_session() {
        let dir = TempDir::new("sqlite-rows");
        let path = dir.path().join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let data = map([
            ("t", Value::tuple([1.into(), "x".into()])),
            ("n", Value::from(2u128.pow(64) + 5)),
        ]);
        let id = create(&store, &live_by_the_clock(data, Some("alice"))).await;
        let mut conn = inspect(&path).await;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT key, value FROM tessera_session_values WHERE session_id = ?1 ORDER BY key",
        )
        .bind(id.as_str())
        .fetch_all(&mut conn)
        .await
        .expect("query");
        assert_eq!(
            rows,
            [
                ("n".to_owned(), "18446744073709551621".to_owned()),
                ("t".to_owned(), r#"{" t":[1,"x"]}"#.to_owned()),
            ]
        );

        // Cycling moves the values; deleting, purging and deleting a user
        // leave none behind. Deleting a user ends its sessions at once and
        // leaves their rows to the sweeper's bounded batches, which may not
        // hold the write lock for long (all of a user's rows at once took
        // seconds for 50,000 sessions, stalling every process on the file).
        let new = SessionId::generate();
        assert!(store.cycle_id(&id, &new, NOW).await.expect("cycle"));
        let other = create(&store, &live_record(map([("o", 1.into())]), None)).await;
        let dead = create(&store, &expired_record(map([("d", 1.into())]), None)).await;
        assert_eq!(values_of(&mut conn, &id).await, 0);
        assert_eq!(values_of(&mut conn, &new).await, 2);
        assert_eq!(store.delete_user("alice").await.expect("delete_user"), 1);
        assert_eq!(load(&store, &new, NOW).await, None);
        assert_eq!(store.purge_expired(NOW, 10).await.expect("purge"), 2);
        assert_eq!(values_of(&mut conn, &new).await, 0);
        assert_eq!(values_of(&mut conn, &dead).await, 0);
        assert!(store.delete(&other).await.expect("delete"));
        let total: i64 = scalar(&mut conn, "SELECT count(*) FROM tessera_session_values").await;
        assert_eq!(total, 0);
        conn.close().await.expect("close");
        store.close().await;
    }

    #[tokio::test]
    async fn unreadable_values_are_reported_as_corrupt() {
        let dir = TempDir::new("sqlite-corrupt");
        let path = dir.path().join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let id = create(&store, &live_record(map([("bad", 1.into())]), None)).await;
        let mut conn = inspect(&path).await;
        sqlx::query("UPDATE tessera_session_values SET value = '{not json' WHERE key = 'bad'")
            .execute(&mut conn)
            .await
            .expect("corrupt it");
        conn.close().await.expect("close");

        assert!(matches!(
            store.load(&id, NOW).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.increment(&id, "bad", 1, NOW).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.append(&id, "bad", &Value::Null, NOW).await,
            Err(StoreError::Corrupt(_))
        ));
        // The other keys are still writable, and a write repairs the key.
        let repair = Changes {
            set: map([("bad", 5.into())]),
            ..Changes::default()
        };
        assert!(store.update(&id, &repair, NOW).await.expect("update"));
        assert_eq!(
            store
                .increment(&id, "bad", 1, NOW)
                .await
                .expect("increment"),
            Some(6)
        );
        store.close().await;
    }

    /// A session row whose columns cannot be read (edited by hand) is
    /// reported as corrupt when loaded and left out of listings, which
    /// still show the user's other sessions.
    #[tokio::test]
    async fn an_unreadable_session_row_is_left_out_of_listings() {
        let dir = TempDir::new("sqlite-corrupt-row");
        let path = dir.path().join("sessions.db");
        let store = SqliteStore::open(&path).await.expect("open");
        let mut ids = Vec::new();
        for _ in 0..5 {
            let record = live_by_the_clock(map([("k", 1.into())]), Some("alice"));
            ids.push(create(&store, &record).await);
        }
        ids.sort();
        // The first two in id order, and the last: whole pages of them.
        let bad = [&ids[0], &ids[1], &ids[4]];
        let mut conn = inspect(&path).await;
        for id in bad {
            sqlx::query("UPDATE tessera_sessions SET created_at = 'xyz' WHERE id = ?")
                .bind(id.as_str())
                .execute(&mut conn)
                .await
                .expect("corrupt it");
        }
        conn.close().await.expect("close");

        assert!(matches!(
            store.load(&ids[0], NOW).await,
            Err(StoreError::Corrupt(_))
        ));
        for user in [Some("alice"), None] {
            for limit in [1, 2, 10] {
                let listed = store.list(user, None, limit, NOW).await.expect("a listing");
                assert_eq!(listed.len(), limit.min(2), "a short page is the last");
                let mut seen = Vec::new();
                let mut after = None;
                loop {
                    let page = store
                        .list(user, after.as_ref(), limit, NOW)
                        .await
                        .expect("a page");
                    let Some(last) = page.last() else { break };
                    after = Some(last.id.clone());
                    seen.extend(page.into_iter().map(|info| info.id));
                }
                assert_eq!(seen, [ids[2].clone(), ids[3].clone()], "limit {limit}");
            }
        }
        assert_eq!(store.delete_user("alice").await.expect("deleted"), 5);
        store.close().await;
    }

    #[test]
    fn from_url_takes_absolute_and_relative_paths_and_refuses_the_rest() {
        let absolute = std::env::temp_dir().join("tessera-url-test").join("s.db");
        let store =
            SqliteStore::from_url(&format!("sqlite://{}", absolute.display())).expect("absolute");
        assert_eq!(store.path(), absolute);
        assert!(store.path().is_absolute());

        let store = SqliteStore::from_url("sqlite://relative/dir/s.db").expect("relative");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(store.path(), cwd.join("relative").join("dir").join("s.db"));
        let store = SqliteStore::from_url("sqlite://s.db").expect("relative");
        assert_eq!(store.path(), cwd.join("s.db"));
        // Percent-escapes are decoded, as sqlx decodes them: the only way to
        // name a file or directory holding `?` or `#`; a `%` that starts no
        // escape is kept.
        for (url, file) in [
            ("sqlite://my%20dir/s.db", "my dir/s.db"),
            ("sqlite://what%3F%23.db", "what?#.db"),
            ("sqlite://100%25.db", "100%.db"),
            ("sqlite://100%.db", "100%.db"),
            ("sqlite://caf%C3%A9.db", "caf\u{e9}.db"),
        ] {
            let store = SqliteStore::from_url(url).expect(url);
            assert_eq!(store.path(), cwd.join(file), "{url}");
        }

        for bad in [
            "",
            "s.db",
            "sqlite:",
            "sqlite:s.db",
            "sqlite:/s.db",
            "sqlite://",
            "sqlite:///",
            "sqlite://dir/",
            "sqlite://..",
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://s.db?mode=ro",
            "sqlite://s.db#x",
            "sqlite://dir%2F",
            "sqlite://s%00.db",
            "sqlite://%FF.db",
            "postgres://localhost/sessions",
            "redis://localhost",
            "file:///s.db",
            "SQLITE:///s.db",
        ] {
            match SqliteStore::from_url(bad) {
                Err(StoreError::Config(message)) => {
                    assert!(message.text().contains("sqlite://"), "{bad:?}: {message}");
                }
                other => panic!("{bad:?} was accepted: {other:?}"),
            }
        }
    }
}
