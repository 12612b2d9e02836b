//! Store outages: with Redis or PostgreSQL stopped, requests that need the
//! session get 503 and the others are unaffected; once the store is back,
//! service resumes by itself and no acknowledged write is lost. Each test
//! runs private servers (`scripts/services.sh`), since it stops them.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{serve, Browser};
use reqwest::StatusCode;
use tessera::{SessionConfig, SessionType};

/// Private Redis and PostgreSQL servers, stopped when dropped.
struct Servers {
    dir: String,
    redis_url: String,
    postgres_url: String,
}

fn services(args: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/services.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("services.sh runs");
    assert!(
        output.status.success(),
        "services.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

impl Servers {
    fn start() -> Self {
        let exports = services(&["start"]);
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}='")))
                .and_then(|rest| rest.strip_suffix('\''))
                .unwrap_or_else(|| panic!("services.sh printed no {name}"))
                .to_owned()
        };
        Self {
            dir: value("TESSERA_SERVICES_DIR"),
            redis_url: value("TESSERA_TEST_REDIS_URL"),
            postgres_url: value("TESSERA_TEST_POSTGRES_URL"),
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        services(&["stop", &self.dir]);
    }
}

async fn outage(session_type: SessionType, stop: &str, start: &str) {
    let servers = Servers::start();
    let url = match session_type {
        SessionType::Redis => servers.redis_url.clone(),
        _ => servers.postgres_url.clone(),
    };
    let config = SessionConfig::builder()
        .secret_key("outage-test-secret-key-0123456789abcdef")
        .session_type(session_type)
        .store_url(url)
        .build()
        .expect("config");
    let mut browser = Browser::new(serve(config).await);
    assert_eq!(
        browser
            .post_form("/login", &[("username", "alice")])
            .await
            .status,
        StatusCode::FOUND
    );
    let visits = browser.post("/visits").await;
    assert_eq!(
        (visits.status, visits.body.trim()),
        (StatusCode::OK, "1"),
        "{session_type}"
    );

    services(&[stop, &servers.dir]);
    assert_eq!(
        browser.get("/petname").await.status,
        StatusCode::OK,
        "{session_type}: no session needed"
    );
    for _ in 0..3 {
        let reply = browser.get("/api/session").await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{session_type}: {}",
            reply.body
        );
        assert!(reply.headers.contains_key("retry-after"));
        assert_eq!(
            browser.post("/visits").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    services(&[start, &servers.dir]);
    let back = Instant::now();
    loop {
        let reply = browser.get("/api/session").await;
        if reply.status == StatusCode::OK {
            let session = reply.json();
            assert_eq!(
                session["username"], "alice",
                "{session_type}: the login survived"
            );
            assert_eq!(
                session["visits"], 1,
                "{session_type}: the acknowledged write survived"
            );
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "{session_type}: service did not resume: {}",
            reply.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let visits = browser.post("/visits").await;
    assert_eq!(
        (visits.status, visits.body.trim()),
        (StatusCode::OK, "2"),
        "{session_type}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_gives_503_and_recovers() {
    outage(SessionType::Redis, "redis-stop", "redis-start").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_gives_503_and_recovers() {
    outage(SessionType::Postgres, "pg-stop", "pg-start").await;
}
