//! Server-side sessions end when the user says so, over HTTP: a copied
//! cookie dies at logout, "log out everywhere" reaches other devices at once,
//! and a session id obtained before login (fixation) is worthless after it.

mod common;

use common::{serve_mode, Browser, Mode};
use serde_json::json;

/// Redis and PostgreSQL are the shared servers `scripts/services.sh` starts,
/// so tests that act on a user by name use a name of their own.
const SERVER_SIDE: [Mode; 5] = [
    Mode::Memory,
    Mode::Sqlite,
    Mode::Postgres,
    Mode::Redis,
    Mode::FlaskSessionRedis,
];

#[tokio::test]
async fn a_copied_cookie_is_dead_after_logout() {
    for mode in SERVER_SIDE {
        let served = serve_mode(mode, "copied-cookie").await;
        let mut browser = Browser::new(served.base.clone());
        browser
            .post_form("/login", &[("username", "alice")])
            .await
            .assert_redirect_home();
        browser.post_form("/cart", &[("item", "apple")]).await;
        let mut stolen = browser.copy();
        assert!(stolen.get("/").await.body.contains("Logged in as alice"));

        let reply = browser.get("/logout").await;
        reply.assert_redirect_home();
        let page = browser.get("/").await;
        assert!(page.body.contains("You are not logged in"), "{mode:?}");
        assert!(page.body.contains(">Logged out</li>"), "{mode:?}");
        assert!(
            page.body.contains("Your cart is empty."),
            "the session ended"
        );
        assert_ne!(browser.session(), stolen.session(), "a fresh session");

        let page = stolen.get("/").await;
        assert!(
            page.body.contains("You are not logged in"),
            "{mode:?}: the copy is dead: {}",
            page.body
        );
        assert!(page.body.contains("Your cart is empty."), "{mode:?}");
        assert_eq!(
            stolen.get("/get_session").await.body,
            "No session data found."
        );
        // Writing through the dead copy starts a new, anonymous session.
        stolen.put_json("/api/session/theme", r#""dark""#).await;
        let all = stolen.get("/api/session").await.json();
        assert!(all.get("username").is_none(), "{mode:?}: {all}");
        assert!(all.get("cart").is_none(), "{mode:?}: {all}");
        drop(served);
    }
}

#[tokio::test]
async fn log_out_everywhere_reaches_the_other_device_at_once() {
    for mode in SERVER_SIDE {
        let served = serve_mode(mode, "other-device").await;
        let user = format!("alice-{}-{}", mode.name(), std::process::id());
        let mut laptop = Browser::new(served.base.clone());
        let mut phone = Browser::new(served.base.clone());
        for browser in [&mut laptop, &mut phone] {
            browser
                .post_form("/login", &[("username", &user)])
                .await
                .assert_redirect_home();
        }
        assert!(phone
            .get("/")
            .await
            .body
            .contains(&format!("Logged in as {user}")));

        laptop
            .post("/sessions/logout-everywhere")
            .await
            .assert_redirect_home();

        let page = phone.get("/").await;
        assert!(
            page.body.contains("You are not logged in"),
            "{mode:?}: {}",
            page.body
        );
        assert_eq!(
            phone.get("/get_session").await.body,
            "No session data found."
        );
        assert!(laptop.get("/").await.body.contains("You are not logged in"));
        drop(served);
    }
}

#[tokio::test]
async fn a_cookie_from_before_login_is_not_valid_after_it() {
    for mode in SERVER_SIDE {
        let served = serve_mode(mode, "fixation").await;
        let mut victim = Browser::new(served.base.clone());
        // An anonymous session, as an attacker would plant in the victim's browser.
        victim.put_json("/api/session/theme", r#""dark""#).await;
        let planted = victim.copy();
        let before = victim.session().expect("a session").to_owned();

        let reply = victim.post_form("/login", &[("username", "victim")]).await;
        reply.assert_redirect_home();
        let after = victim.session().expect("still a session").to_owned();
        assert_ne!(after, before, "{mode:?}: login sends a new session id");
        assert!(
            reply.set_cookies().iter().any(|c| c.contains(&after)),
            "{mode:?}: the login response carries the new id"
        );

        let all = victim.get("/api/session").await.json();
        assert_eq!(all["username"], json!("victim"), "{mode:?}: {all}");
        assert_eq!(all["theme"], json!("dark"), "{mode:?}: data is kept");

        let mut attacker = planted;
        let page = attacker.get("/").await;
        assert!(
            page.body.contains("You are not logged in"),
            "{mode:?}: the planted id is anonymous: {}",
            page.body
        );
        let all = attacker.get("/api/session").await.json();
        assert!(all.get("username").is_none(), "{mode:?}: {all}");
        assert!(attacker
            .get("/sessions")
            .await
            .body
            .contains("You are not logged in"));
        drop(served);
    }
}

/// Seed 000's routes set and pop `username`, the tutorial's way of logging
/// in and out: the session's user follows, so "your sessions" (and log out
/// everywhere) agree with the page's "Logged in as".
#[tokio::test]
async fn the_tutorials_username_routes_log_in_and_out() {
    for mode in SERVER_SIDE {
        let served = serve_mode(mode, "username-routes").await;
        let mut browser = Browser::new(served.base.clone());
        browser
            .post_form("/login", &[("username", "dave")])
            .await
            .assert_redirect_home();
        assert!(browser.get("/sessions").await.body.contains("dave has "));

        assert_eq!(
            browser.get("/delete_session").await.body,
            "Session data deleted."
        );
        assert!(
            browser
                .get("/")
                .await
                .body
                .contains("You are not logged in"),
            "{mode:?}"
        );
        let page = browser.get("/sessions").await.body;
        assert!(page.contains("You are not logged in."), "{mode:?}: {page}");

        let anonymous = browser.session().map(str::to_owned);
        assert_eq!(browser.get("/set_session").await.body, "Session data set.");
        assert!(
            browser
                .get("/")
                .await
                .body
                .contains("Logged in as your_username"),
            "{mode:?}"
        );
        // Earlier runs' sessions of the shared name may be live in the
        // shared servers' stores: no count.
        let page = browser.get("/sessions").await.body;
        assert!(page.contains("your_username has "), "{mode:?}: {page}");
        assert_ne!(
            browser.session(),
            anonymous.as_deref(),
            "{mode:?}: a login moves the id"
        );
        drop(served);
    }
}

/// "Remember me" on a session that is permanent already (server-side, with
/// SESSION_PERMANENT's default) says so, rather than that it made it so.
#[tokio::test]
async fn remember_me_on_a_permanent_session_says_it_was_already() {
    let served = serve_mode(Mode::Memory, "remember-me").await;
    let mut browser = Browser::new(served.base.clone());
    browser
        .post_form("/petname", &[("pet", "Rex"), ("remember", "on")])
        .await;
    let page = browser.get("/").await.body;
    assert!(
        page.contains("this session was permanent already"),
        "{page}"
    );
    assert!(!page.contains("is now permanent"), "{page}");
}

/// With `SESSION_PERMANENT=false`, a second "remember me" says the session
/// was permanent already, without naming a setting that is false: it is
/// permanent because of the first.
#[tokio::test]
async fn remember_me_again_without_session_permanent_names_no_setting() {
    let config = tessera::SessionConfig::builder()
        .secret_key("demo-remember-me-test-secret-key-0123456789")
        .session_type(tessera::SessionType::Memory)
        .session_permanent(false)
        .build()
        .expect("config");
    let mut browser = Browser::new(common::serve(config).await);
    for _ in 0..2 {
        browser
            .post_form("/petname", &[("pet", "Rex"), ("remember", "on")])
            .await;
    }
    let page = browser.get("/").await.body;
    assert!(page.contains("this session is now permanent"), "{page}");
    assert!(
        page.contains("this session was permanent already"),
        "{page}"
    );
    assert!(!page.contains("SESSION_PERMANENT=true"), "{page}");
}

/// A `username` the login form refuses (a NUL character, put through the
/// JSON API) ties the session to no one: "your sessions" and "log out
/// everywhere" answered 500 on PostgreSQL, which stores no such user id.
#[tokio::test]
async fn a_username_the_login_form_refuses_logs_no_one_in() {
    for mode in SERVER_SIDE {
        let served = serve_mode(mode, "nul-username").await;
        let mut browser = Browser::new(served.base.clone());
        let put = browser
            .put_json("/api/session/username", r#""a\u0000b""#)
            .await;
        assert_eq!(put.status, 200, "{mode:?}: {}", put.body);
        let listed = browser.get("/sessions").await;
        assert_eq!(listed.status, 200, "{mode:?}: {}", listed.body);
        assert!(listed.body.contains("You are not logged in"), "{mode:?}");
        let ended = browser.post("/sessions/logout-everywhere").await;
        assert!(ended.status.is_redirection(), "{mode:?}: {}", ended.body);
    }
}

/// Flash messages a client never loads the page for (a script repeating a
/// logout) stop at the demo's cap, rather than growing the stored session
/// past what the demo lets a visitor store.
#[tokio::test]
async fn flash_messages_never_shown_are_capped() {
    let served = serve_mode(Mode::Sqlite, "flash-cap").await;
    let mut browser = Browser::new(served.base.clone());
    browser.post_form("/login", &[("username", "alice")]).await;
    for _ in 0..30 {
        browser.get("/logout").await;
    }
    let session = browser.get("/api/session").await.json();
    let flashes = session["_flashes"].as_array().expect("flashes").len();
    assert_eq!(flashes, 20, "{session}");
    let page = browser.get("/").await.body;
    assert!(page.contains("Logged out"), "{page}");
    assert!(page.contains("You were not logged in"), "{page}");
}
