//! 100 parallel clients sharing one server-side session, over real HTTP on a
//! multi-threaded runtime: writes to different keys all persist, and the
//! atomic counter and cart lose nothing.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{serve_mode, Browser, Mode};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

const CLIENTS: usize = 100;

/// Sends one request per client, all at once, each from its own client with
/// the shared cookie; returns every (client, status, body), panicking if a
/// response moves the session to another id.
async fn all_at_once<F>(cookie: &str, request: F) -> Vec<(usize, StatusCode, String)>
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let start = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = JoinSet::new();
    for i in 0..CLIENTS {
        let (request, start) = (request.clone(), start.clone());
        let cookie = format!("session={cookie}");
        tasks.spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client");
            let builder = request(&client, i).header(COOKIE, cookie.as_str());
            start.wait().await;
            let response = builder.send().await.expect("answered");
            for set_cookie in response.headers().get_all(SET_COOKIE) {
                let set_cookie = set_cookie.to_str().expect("ASCII");
                assert!(
                    set_cookie.starts_with(&cookie),
                    "request {i} moved the session: {set_cookie}"
                );
            }
            let status = response.status();
            (i, status, response.text().await.expect("a body"))
        });
    }
    let mut replies = Vec::with_capacity(CLIENTS);
    while let Some(reply) = tasks.join_next().await {
        replies.push(reply.expect("the client task finishes"));
    }
    replies
}

async fn hundred_clients_on_one_session(mode: Mode) {
    let served = serve_mode(mode, "parallel").await;
    let base = served.base.clone();
    let mut browser = Browser::new(base.clone());
    browser.put_json("/api/session/start", "0").await;
    assert_eq!(browser.post("/visits").await.body, "1");
    browser.post_form("/cart", &[("item", "first")]).await;
    let cookie = browser.session().expect("a session").to_owned();

    // Different keys, written in parallel: every one persists.
    let url = base.clone();
    let replies = all_at_once(&cookie, move |client, i| {
        client
            .put(format!("{url}/api/session/k{i}"))
            .header("content-type", "application/json")
            .body(i.to_string())
    })
    .await;
    for (_, status, body) in &replies {
        assert_eq!(*status, StatusCode::OK, "{mode:?}: {body}");
    }
    let all = browser.get("/api/session").await.json();
    for i in 0..CLIENTS {
        assert_eq!(all[format!("k{i}")], json!(i), "{mode:?}: k{i} in {all}");
    }
    assert_eq!(all["start"], json!(0));

    // The counter: exactly 100 more, each request seeing a different count.
    let url = base.clone();
    let replies = all_at_once(&cookie, move |client, _| {
        client.post(format!("{url}/visits"))
    })
    .await;
    let mut counts = BTreeSet::new();
    for (_, status, body) in &replies {
        assert_eq!(*status, StatusCode::OK, "{mode:?}: {body}");
        counts.insert(body.parse::<usize>().expect("a count"));
    }
    assert_eq!(
        counts,
        (2..=CLIENTS + 1).collect::<BTreeSet<_>>(),
        "{mode:?}: every increment counted once"
    );
    let all = browser.get("/api/session").await.json();
    assert_eq!(all["visits"], json!(CLIENTS + 1), "{mode:?}");

    // The cart: all 100 items, none lost.
    let url = base.clone();
    let replies = all_at_once(&cookie, move |client, i| {
        client
            .post(format!("{url}/cart"))
            .form(&[("item", format!("item-{i}"))])
    })
    .await;
    for (i, status, body) in &replies {
        assert_eq!(*status, StatusCode::OK, "{mode:?}: {body}");
        let cart: Vec<String> = serde_json::from_str(body).expect("a JSON array");
        assert_eq!(cart[0], "first", "{mode:?}");
        assert!(
            cart.contains(&format!("item-{i}")),
            "{mode:?}: {i} in {cart:?}"
        );
    }
    let cart: Vec<String> =
        serde_json::from_value(browser.get("/api/session").await.json()["cart"].clone())
            .expect("a list of strings");
    assert_eq!(cart.len(), CLIENTS + 1, "{mode:?}: {cart:?}");
    assert_eq!(cart[0], "first");
    let items: BTreeSet<&str> = cart[1..].iter().map(String::as_str).collect();
    let expected: BTreeSet<String> = (0..CLIENTS).map(|i| format!("item-{i}")).collect();
    assert_eq!(
        items,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "{mode:?}"
    );
    assert_eq!(
        browser.session(),
        Some(cookie.as_str()),
        "still one session"
    );
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_parallel_clients_on_one_memory_session() {
    hundred_clients_on_one_session(Mode::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_parallel_clients_on_one_sqlite_session() {
    hundred_clients_on_one_session(Mode::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_parallel_clients_on_one_postgres_session() {
    hundred_clients_on_one_session(Mode::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_parallel_clients_on_one_redis_session() {
    hundred_clients_on_one_session(Mode::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_parallel_clients_on_one_flask_session_redis_session() {
    hundred_clients_on_one_session(Mode::FlaskSessionRedis).await;
}
