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
