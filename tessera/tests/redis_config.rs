//! `SESSION_TYPE=redis` through the layer, against the server that
//! `scripts/services.sh` starts (`TESSERA_TEST_REDIS_URL`).
#![cfg(all(feature = "redis", feature = "axum"))]

use axum::routing::post;
use axum::Router;
use rand::RngCore as _;
use tessera::{Session, SessionConfig, SessionLayer, SessionType};

mod common;

use common::{cookie_pair, request, text};

fn redis_url() -> String {
    std::env::var("TESSERA_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TESSERA_TEST_REDIS_URL is not set: start the servers with `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh")
    })
}

#[tokio::test]
async fn sessions_live_under_session_key_prefix() {
    let url = redis_url();
    let mut random = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let prefix = format!(
        "prefix-test-{}:",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let config = SessionConfig::builder()
        .secret_key("redis-config-test-secret-key-0123456789")
        .session_type(SessionType::Redis)
        .store_url(url.clone())
        .key_prefix(prefix.clone())
        .build()
        .expect("config");
    let app = Router::new()
        .route(
            "/",
            post(|s: Session| async move {
                s.increment("n", 1)
                    .await
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            }),
        )
        .layer(SessionLayer::new(config));
    let first = request(&app, "POST", "/", None, "").await;
    let cookie = cookie_pair(&first);
    assert_eq!(text(first).await, "1");
    assert_eq!(
        text(request(&app, "POST", "/", Some(&cookie), "").await).await,
        "2"
    );

    let id = cookie.trim_start_matches("session=").to_owned();
    let client = redis::Client::open(url.as_str()).expect("a redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(
        keys.iter().any(|key| key.contains(&id)),
        "{keys:?} should hold the session {id}"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(
            keys.iter()
                .find(|key| key.contains(&id))
                .expect("the session key"),
        )
        .query_async(&mut conn)
        .await
        .expect("TTL");
    assert!(ttl > 0, "the session has a native TTL: {ttl}");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .expect("clean up");
}

fn random_hex() -> String {
    let mut random = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut random);
    random.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

async fn admin() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url().as_str())
        .expect("a redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// A Redis user of the test server whose ACL is `rules`: its name and the
/// server's URL with its credentials.
async fn acl_user(rules: &[&str]) -> (String, String) {
    let name = format!("acl-test-{}", random_hex());
    let mut setuser = redis::cmd("ACL");
    setuser
        .arg("SETUSER")
        .arg(&name)
        .arg("on")
        .arg(">acl-test-password");
    for rule in rules {
        setuser.arg(*rule);
    }
    let () = setuser
        .query_async(&mut admin().await)
        .await
        .expect("ACL SETUSER");
    let url = redis_url();
    let address = url.strip_prefix("redis://").expect("a redis:// URL");
    assert!(!address.contains('@'), "the test URL has no credentials");
    let url = format!("redis://{name}:acl-test-password@{address}");
    (name, url)
}

async fn remove_user(name: &str) {
    let _: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(name)
        .query_async(&mut admin().await)
        .await
        .expect("ACL DELUSER");
}

fn owned_record(now: u64) -> tessera::store::Record {
    tessera::store::Record {
        data: tessera::Map::from([("n".to_owned(), tessera::Value::from(1))]),
        user_id: Some("carol".to_owned()),
        created_at: now,
        expires_at: now + 3600,
        absolute_expires_at: None,
    }
}

/// Listing sessions in Flask-Session's layout as a user whose ACL refuses
/// a command the store's scripts run (here `TIME`, outside `@read`) fails
/// with Redis' refusal. Each session was reported corrupt and left out
/// instead: an empty listing, and a `tessera sessions list` that exited 0.
#[tokio::test]
async fn a_listing_the_acl_refuses_fails_rather_than_listing_nothing() {
    use tessera::store::flask_format::SerializationFormat;
    use tessera::store::{FlaskSessionRedisStore, SessionId, SessionStore};
    let prefix = format!("acl-fs-{}:", random_hex());
    let now = unix_now();
    let writer = FlaskSessionRedisStore::new(&redis_url(), SerializationFormat::Msgpack)
        .expect("a redis URL")
        .with_prefix(&prefix);
    let id = SessionId::generate();
    assert!(writer
        .create(&id, &owned_record(now))
        .await
        .expect("create"));
    let (name, url) = acl_user(&["~*", "+@all", "-time"]).await;
    let reader = FlaskSessionRedisStore::new(&url, SerializationFormat::Msgpack)
        .expect("a redis URL")
        .with_prefix(&prefix);
    let refused = reader.list(None, None, 100, now).await;
    remove_user(&name).await;
    let error = refused.expect_err("refused, not an empty listing");
    assert!(
        matches!(error, tessera::store::StoreError::Unavailable(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains("can't run"), "{error}");
    let listed = writer.list(None, None, 100, now).await.expect("list");
    assert_eq!(listed.len(), 1, "the application's own user lists it");
    assert!(writer.delete(&id).await.expect("delete"));
}

/// A user may be denied `SCAN` (ACL key patterns do not filter what it
/// returns, so cautious operators deny it): the check of which layout the
/// sessions under a prefix are in (which `tessera sessions` runs before
/// every command) then looks at the expiry index only, with a warning.
/// It failed, so every CLI command failed with "store unavailable" for a
/// user the application itself works with.
#[tokio::test]
async fn the_layout_check_goes_on_without_scan() {
    use tessera::store::redis::Layout;
    use tessera::store::{RedisStore, SessionId, SessionStore};
    let prefix = format!("acl-own-{}:", random_hex());
    let now = unix_now();
    let writer = RedisStore::new(&redis_url())
        .expect("a redis URL")
        .with_prefix(&prefix);
    let id = SessionId::generate();
    assert!(writer
        .create(&id, &owned_record(now))
        .await
        .expect("create"));
    let (name, url) = acl_user(&["~*", "+@all", "-scan"]).await;
    let reader = RedisStore::new(&url)
        .expect("a redis URL")
        .with_prefix(&prefix);
    let found = reader.sample_layout().await;
    let scan_refused: Result<(Vec<String>,), _> = async {
        let mut conn = redis::Client::open(url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        redis::cmd("SCAN").arg(0).query_async(&mut conn).await
    }
    .await;
    remove_user(&name).await;
    assert!(scan_refused.is_err(), "the user may not SCAN");
    assert_eq!(found.expect("checked without SCAN"), Some(Layout::Tessera));
    assert!(writer.delete(&id).await.expect("delete"));
}

/// A Redis server of this test's own that requires a password, killed when
/// dropped.
struct PasswordRedis {
    server: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl PasswordRedis {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-password-redis-{}", random_hex()));
        std::fs::create_dir(&dir).expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let server = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--requirepass",
                "the-password",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/services.sh installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server listens");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { server, port, dir }
    }
}

impl Drop for PasswordRedis {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A store URL without the password a server requires: each operation
/// fails saying that Redis wants one. For a long command (a save's script),
/// Redis does not answer `NOAUTH` but "Protocol error: unauthenticated
/// multibulk length", which said nothing of the missing password. (Each
/// operation on a store of its own: Redis closes the connection after a
/// protocol error, and the next command on it fails as a dropped
/// connection would.)
#[tokio::test]
async fn a_missing_password_is_named_in_the_failure() {
    use tessera::store::{RedisStore, SessionId, SessionStore as _};
    let server = PasswordRedis::start();
    let without_password = format!("redis://127.0.0.1:{}/0", server.port);
    let store = || RedisStore::new(&without_password).expect("a redis URL");
    let now = unix_now();
    let id = SessionId::generate();
    let mut record = owned_record(now);
    for n in 0..20 {
        record
            .data
            .insert(format!("key-{n}"), tessera::Value::from(n));
    }
    let failures = [
        store().load(&id, now).await.err(),
        store().create(&id, &record).await.err(),
        store().increment(&id, "n", 1, now).await.err(),
        store().delete_user("carol").await.err(),
    ];
    for failure in failures {
        let failure = failure.expect("refused without the password");
        assert!(
            matches!(failure, tessera::StoreError::Unavailable(_)),
            "{failure:?}"
        );
        let text = failure.to_string();
        assert!(
            text.contains("NOAUTH") && text.contains("password"),
            "{text}"
        );
    }

    let with_password = format!("redis://:the-password@127.0.0.1:{}/0", server.port);
    let authenticated = RedisStore::new(&with_password).expect("a redis URL");
    assert!(authenticated.create(&id, &record).await.expect("saved"));
}

/// Deletes `key`, as an operator would after finding junk in it.
async fn mend(key: &str) {
    let _: i64 = redis::cmd("DEL")
        .arg(key)
        .query_async(&mut admin().await)
        .await
        .expect("DEL");
}

/// A store's shared keys holding another kind of value (set by hand or by
/// another program), in either layout: a script failed on them midway,
/// after the writes before, which Redis does not undo. A logout deleted the
/// session and answered 500; a write answered "not saved" and was stored;
/// a revocation from the command line deleted the session and failed. Now
/// what only removes from them goes through, and what adds to them is
/// refused before anything is written.
#[tokio::test]
async fn shared_keys_of_another_type_leave_no_write_half_made() {
    use tessera::store::flask_format::SerializationFormat;
    use tessera::store::{
        Changes, FlaskSessionRedisStore, RedisStore, SessionId, SessionStore, StoreError,
    };
    let now = unix_now();
    let own_prefix = format!("spoilt-own-{}:", random_hex());
    let flask_prefix = format!("spoilt-fs-{}:", random_hex());
    let own = RedisStore::new(&redis_url())
        .expect("a redis URL")
        .with_prefix(&own_prefix);
    let flask = FlaskSessionRedisStore::new(&redis_url(), SerializationFormat::Msgpack)
        .expect("a redis URL")
        .with_prefix(&flask_prefix);
    let layouts: [(&dyn SessionStore, &str); 2] = [(&own, &own_prefix), (&flask, &flask_prefix)];
    for (store, prefix) in layouts {
        let mut redis = admin().await;
        let mut spoil = async |key: String| {
            let () = redis::cmd("SET")
                .arg(&key)
                .arg("junk")
                .query_async(&mut redis)
                .await
                .expect("SET");
            key
        };
        let refused = |result: Result<bool, StoreError>, what: &str| match result {
            Err(StoreError::Corrupt(reason)) => {
                assert!(
                    reason.to_string().contains("nothing was written"),
                    "{prefix} {what}: {reason}"
                );
            }
            other => panic!("{prefix} {what}: {other:?}"),
        };
        let record = |user: Option<&str>| tessera::store::Record {
            user_id: user.map(str::to_owned),
            ..owned_record(now)
        };
        let user_set = |user: &str| format!("{prefix}user:{user}");
        let index = format!("{prefix}expiry");

        // Removing from a user's set that is not one: the logout goes through.
        let owned = SessionId::generate();
        assert!(store
            .create(&owned, &record(Some("dora")))
            .await
            .expect("create"));
        let spoilt = spoil(user_set("dora")).await;
        assert!(store.delete(&owned).await.expect("deleted"), "{prefix}");
        assert_eq!(
            store.load(&owned, now).await.expect("load"),
            None,
            "{prefix}"
        );
        // Adding to one: a login is refused, the session left as it was.
        let anonymous = SessionId::generate();
        assert!(store
            .create(&anonymous, &record(None))
            .await
            .expect("create"));
        let login = Changes {
            set: tessera::Map::from([("user".to_owned(), tessera::Value::from("dora"))]),
            user_id: Some(Some("dora".to_owned())),
            ..Changes::default()
        };
        refused(store.update(&anonymous, &login, now).await, "login");
        let kept = store
            .load(&anonymous, now)
            .await
            .expect("load")
            .expect("live");
        assert_eq!(
            (kept.user_id, kept.data.get("user")),
            (None, None),
            "{prefix}"
        );
        refused(
            store
                .create(&SessionId::generate(), &record(Some("dora")))
                .await,
            "a new session of the user",
        );
        mend(&spoilt).await;

        // The expiry index: a write that moves the expiry, a new session
        // and a new id are refused whole; a deletion goes through.
        let spoilt = spoil(index.clone()).await;
        // The layout check that `tessera sessions` runs before a revocation
        // reads the index: it goes on without it.
        let layout = match prefix {
            p if p == own_prefix => own.sample_layout().await,
            _ => flask.sample_layout().await,
        };
        assert!(layout.is_ok(), "{prefix}: {layout:?}");
        let refresh = Changes {
            set: tessera::Map::from([("n".to_owned(), tessera::Value::from(2))]),
            expires_at: Some(now + 7200),
            ..Changes::default()
        };
        refused(store.update(&anonymous, &refresh, now).await, "refresh");
        let kept = store
            .load(&anonymous, now)
            .await
            .expect("load")
            .expect("live");
        assert_eq!(
            kept.data.get("n"),
            Some(&tessera::Value::from(1)),
            "{prefix}"
        );
        assert_eq!(kept.expires_at, now + 3600, "{prefix}");
        refused(
            store.create(&SessionId::generate(), &record(None)).await,
            "create",
        );
        let new_id = SessionId::generate();
        refused(store.cycle_id(&anonymous, &new_id, now).await, "a new id");
        assert!(
            store.load(&anonymous, now).await.expect("load").is_some(),
            "{prefix}"
        );
        assert_eq!(
            store.load(&new_id, now).await.expect("load"),
            None,
            "{prefix}"
        );
        assert!(store.delete(&anonymous).await.expect("deleted"), "{prefix}");
        assert_eq!(
            store.load(&anonymous, now).await.expect("load"),
            None,
            "{prefix}"
        );
        mend(&spoilt).await;
    }
}
