//! The routes added for server-side sessions, in every `SESSION_TYPE`: the
//! JSON API, the atomic counter and cart, "your sessions", "log out
//! everywhere", and `503` when the store fails.

mod common;

use common::{config_for, serve, serve_mode, sqlite_url, Browser, Mode, TempDir, TEST_KEY};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::json;
use tessera::{SessionConfig, SessionId, SessionType};

const SERVER_SIDE: [Mode; 5] = [
    Mode::Memory,
    Mode::Sqlite,
    Mode::Postgres,
    Mode::Redis,
    Mode::FlaskSessionRedis,
];
const ALL: [Mode; 6] = [
    Mode::Cookie,
    Mode::Memory,
    Mode::Sqlite,
    Mode::Postgres,
    Mode::Redis,
    Mode::FlaskSessionRedis,
];

/// A user name no other test (or earlier run) on a shared server uses.
fn unique_user(name: &str) -> String {
    format!("{name}-{}", SessionId::generate().fingerprint())
}

/// The fingerprint `/sessions` and `/` show for a browser's session.
fn fingerprint(browser: &Browser) -> String {
    let id = browser.session().expect("a session cookie");
    SessionId::parse(id).expect("an id").fingerprint()
}

#[tokio::test]
async fn json_api_sets_shows_and_removes_keys() {
    for mode in ALL {
        let served = serve_mode(mode, "json-api").await;
        let mut browser = Browser::new(served.base.clone());

        let reply = browser.get("/api/session").await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}");
        let empty = reply.json();
        assert!(empty.is_object(), "{mode:?}: {empty}");
        assert!(empty.get("theme").is_none());
        assert!(
            reply.set_cookies().is_empty(),
            "{mode:?}: reading stores nothing"
        );

        let reply = browser.put_json("/api/session/theme", r#""dark""#).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {}", reply.body);
        assert_eq!(reply.json(), json!("dark"));
        assert!(browser.session().is_some(), "{mode:?}: a session now");

        let prefs = json!({"sizes": [1, 2.5, null], "dense": true, "name": "café"});
        let reply = browser
            .put_json("/api/session/prefs", &prefs.to_string())
            .await;
        assert_eq!(reply.json(), prefs, "{mode:?}");
        let reply = browser.put_json("/api/session/count", " 42 ").await;
        assert_eq!(reply.json(), json!(42), "{mode:?}");

        let all = browser.get("/api/session").await.json();
        assert_eq!(all["theme"], json!("dark"), "{mode:?}: {all}");
        assert_eq!(all["prefs"], prefs, "{mode:?}: {all}");
        assert_eq!(all["count"], json!(42), "{mode:?}: {all}");
        if mode != Mode::Cookie {
            assert_eq!(all["_permanent"], json!(true), "SESSION_PERMANENT: {all}");
        }

        // Invalid JSON is a clear 400 and changes nothing; so is a date
        // that is none, which was stored as `null`.
        for bad in [
            "{nope",
            "",
            "dark",
            "[1,",
            "1 2",
            r#"{" d": "not a date"}"#,
            r#""\ud800""#,
        ] {
            let reply = browser.put_json("/api/session/theme", bad).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{mode:?}: {bad:?}");
            assert!(reply.body.contains("JSON"), "{mode:?}: {}", reply.body);
        }
        let reply = browser
            .put_json(&format!("/api/session/{}", "k".repeat(300)), "1")
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{mode:?}");
        let reply = browser.put_json("/api/session/%FF", "1").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{mode:?}");
        let huge = format!("\"{}\"", "x".repeat(20_000));
        let reply = browser.put_json("/api/session/huge", &huge).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{mode:?}");
        assert_eq!(
            browser.get("/api/session").await.json()["theme"],
            json!("dark")
        );

        let reply = browser.delete("/api/session/theme").await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{mode:?}");
        assert!(reply.body.is_empty());
        let all = browser.get("/api/session").await.json();
        assert!(all.get("theme").is_none(), "{mode:?}: {all}");
        assert_eq!(all["prefs"], prefs);
        let reply = browser.delete("/api/session/never-there").await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{mode:?}");

        // The seed routes see what the API wrote.
        browser.put_json("/api/session/username", r#""api""#).await;
        assert_eq!(browser.get("/get_session").await.body, "Welcome, api!");
        drop(served);
    }
}

#[tokio::test]
async fn visits_and_cart_count_and_collect() {
    for mode in ALL {
        let served = serve_mode(mode, "visits-cart").await;
        let mut browser = Browser::new(served.base.clone());

        let reply = browser.post("/visits").await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {}", reply.body);
        assert_eq!(reply.body, "1");
        let content_type = reply.headers.get(CONTENT_TYPE).expect("typed");
        assert!(content_type
            .to_str()
            .expect("ASCII")
            .starts_with("text/plain"));
        assert_eq!(browser.post("/visits").await.body, "2", "{mode:?}");

        let reply = browser.post_form("/cart", &[("item", "apple")]).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {}", reply.body);
        assert_eq!(reply.json(), json!(["apple"]));
        let reply = browser
            .post_form("/cart", &[("item", "pear & <fig>")])
            .await;
        assert_eq!(reply.json(), json!(["apple", "pear & <fig>"]), "{mode:?}");

        let too_long = "x".repeat(300);
        for form in [
            &[][..],
            &[("item", "")][..],
            &[("item", "  ")][..],
            &[("thing", "apple")][..],
            &[("item", too_long.as_str())][..],
        ] {
            let reply = browser.post_form("/cart", form).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{mode:?}: {form:?}");
            assert!(reply.body.contains("item"), "{mode:?}: {}", reply.body);
        }

        let page = browser.get("/").await;
        assert!(page.body.contains("Visits counted: 2"), "{mode:?}");
        assert!(page.body.contains("<li>apple</li>"), "{mode:?}");
        assert!(
            page.body.contains("<li>pear &amp; &lt;fig&gt;</li>"),
            "{mode:?}"
        );
        for form in [
            "action=\"/visits\"",
            "action=\"/cart\"",
            "href=\"/sessions\"",
        ] {
            assert!(page.body.contains(form), "{mode:?}: {form}");
        }
        assert!(page.body.contains("href=\"/api/session\""));

        // A key of the wrong type is a conflict, not a server error.
        browser.put_json("/api/session/visits", r#""many""#).await;
        let reply = browser.post("/visits").await;
        assert_eq!(
            reply.status,
            StatusCode::CONFLICT,
            "{mode:?}: {}",
            reply.body
        );
        assert!(reply.body.contains("visits"), "{}", reply.body);
        browser.put_json("/api/session/cart", "5").await;
        let reply = browser.post_form("/cart", &[("item", "apple")]).await;
        assert_eq!(
            reply.status,
            StatusCode::CONFLICT,
            "{mode:?}: {}",
            reply.body
        );
        drop(served);
    }
}

#[tokio::test]
async fn the_first_visit_of_a_new_visitor_starts_a_session() {
    for mode in SERVER_SIDE {
        let served = serve_mode(mode, "first-visit").await;
        let mut browser = Browser::new(served.base.clone());
        assert_eq!(browser.post("/visits").await.body, "1");
        assert!(browser.session().is_some(), "{mode:?}");
        assert_eq!(browser.post("/visits").await.body, "2", "{mode:?}");
        let mut other = Browser::new(served.base.clone());
        assert_eq!(other.post("/visits").await.body, "1", "{mode:?}: separate");
        drop(served);
    }
}

#[tokio::test]
async fn sessions_page_lists_the_users_sessions() {
    for mode in SERVER_SIDE {
        let (alice, bob_name) = (unique_user("alice"), unique_user("bob"));
        let served = serve_mode(mode, "sessions-page").await;
        let mut laptop = Browser::new(served.base.clone());

        let page = laptop.get("/sessions").await;
        assert_eq!(page.status, StatusCode::OK, "{mode:?}");
        assert!(page.body.contains("You are not logged in"), "{}", page.body);
        assert!(page.body.contains("href=\"/\""));

        laptop
            .post_form("/login", &[("username", alice.as_str())])
            .await
            .assert_redirect_home();
        let mut phone = Browser::new(served.base.clone());
        phone
            .post_form("/login", &[("username", alice.as_str())])
            .await
            .assert_redirect_home();
        let mut bob = Browser::new(served.base.clone());
        bob.post_form("/login", &[("username", bob_name.as_str())])
            .await
            .assert_redirect_home();

        let page = laptop.get("/sessions").await;
        assert_eq!(page.status, StatusCode::OK, "{mode:?}");
        let content_type = page.headers.get(CONTENT_TYPE).expect("typed");
        assert!(content_type
            .to_str()
            .expect("ASCII")
            .starts_with("text/html"));
        assert!(
            page.body.contains(&format!("{alice} has 2 live sessions")),
            "{}",
            page.body
        );
        let (laptop_fp, phone_fp) = (fingerprint(&laptop), fingerprint(&phone));
        assert!(
            page.body.contains(&format!("#{laptop_fp}")),
            "{}",
            page.body
        );
        assert!(page.body.contains(&format!("#{phone_fp}")), "{}", page.body);
        assert!(!page.body.contains(&format!("#{}", fingerprint(&bob))));
        // Never the ids themselves: they are the credentials.
        for browser in [&laptop, &phone, &bob] {
            assert!(!page.body.contains(browser.session().expect("an id")));
        }
        assert_eq!(page.body.matches("this device").count(), 1);
        let this_row = page
            .body
            .split("<tr>")
            .find(|row| row.contains("this device"))
            .expect("a row for this device");
        assert!(this_row.contains(&laptop_fp), "{this_row}");
        assert!(page.body.contains("UTC"), "created and expiry times");
        assert!(page
            .body
            .contains("<form method=\"post\" action=\"/sessions/logout-everywhere\">"));

        // The page at / shows the same fingerprint.
        let home = laptop.get("/").await;
        assert!(
            home.body.contains(&format!("<code>#{laptop_fp}</code>")),
            "{}",
            home.body
        );
        assert!(home.body.contains(&format!(
            "<dt>SESSION_TYPE</dt><dd><code>{}</code></dd>",
            mode.name()
        )));
        assert!(
            home.body
                .contains(&format!("<dt>User</dt><dd>{alice}</dd>")),
            "{}",
            home.body
        );
        drop(served);
    }
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session_of_the_user() {
    for mode in SERVER_SIDE {
        let (alice, bob_name) = (unique_user("alice"), unique_user("bob"));
        let served = serve_mode(mode, "everywhere").await;
        let mut laptop = Browser::new(served.base.clone());
        let mut phone = Browser::new(served.base.clone());
        let mut bob = Browser::new(served.base.clone());
        for (browser, user) in [
            (&mut laptop, alice.as_str()),
            (&mut phone, alice.as_str()),
            (&mut bob, bob_name.as_str()),
        ] {
            browser
                .post_form("/login", &[("username", user)])
                .await
                .assert_redirect_home();
        }

        let reply = phone.post("/sessions/logout-everywhere").await;
        reply.assert_redirect_home();
        let page = phone.get("/").await;
        assert!(page.body.contains("You are not logged in"), "{mode:?}");
        assert!(
            page.body
                .contains("Logged out everywhere: 2 sessions ended"),
            "{mode:?}: {}",
            page.body
        );
        assert!(laptop.get("/").await.body.contains("You are not logged in"));
        assert!(laptop
            .get("/sessions")
            .await
            .body
            .contains("You are not logged in"));
        assert!(
            bob.get("/")
                .await
                .body
                .contains(&format!("Logged in as {bob_name}")),
            "{mode:?}"
        );

        // Without a user it ends just this session.
        let mut anonymous = Browser::new(served.base.clone());
        anonymous.post("/visits").await;
        anonymous
            .post("/sessions/logout-everywhere")
            .await
            .assert_redirect_home();
        let page = anonymous.get("/").await;
        assert!(page.body.contains("1 session ended"), "{}", page.body);
        assert!(page.body.contains("Visits counted: 0"), "{}", page.body);

        // Logged in as a Flask app sharing the store logs in (`username`
        // alone, tied to no user): tied on the way, and counted once.
        let mut untied = Browser::new(served.base.clone());
        untied.put_json("/api/session/username", "\"lone\"").await;
        untied
            .post("/sessions/logout-everywhere")
            .await
            .assert_redirect_home();
        let page = untied.get("/").await;
        assert!(page.body.contains("1 session ended"), "{}", page.body);

        // `/sessions?tied` reloaded (or bookmarked) before the tie lists
        // the sessions, tying on the way.
        let mut reloaded = Browser::new(served.base.clone());
        reloaded
            .put_json("/api/session/username", "\"carol\"")
            .await;
        let page = reloaded.get("/sessions?tied").await;
        assert!(page.body.contains("has 1 live session"), "{}", page.body);
        drop(served);
    }
}

#[tokio::test]
async fn server_only_routes_say_so_in_cookie_mode() {
    let served = serve_mode(Mode::Cookie, "cookie-mode").await;
    let mut browser = Browser::new(served.base.clone());

    let page = browser.get("/sessions").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Listing your sessions needs server-side sessions"),
        "{}",
        page.body
    );
    assert!(page.body.contains("SESSION_TYPE=cookie"));

    browser
        .post_form("/login", &[("username", "alice")])
        .await
        .assert_redirect_home();
    let page = browser.get("/sessions").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("needs server-side sessions"));

    let reply = browser.post("/sessions/logout-everywhere").await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(
        reply.body.contains("server-side sessions"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("SESSION_TYPE=cookie"), "{}", reply.body);
    assert!(reply.set_cookies().is_empty());
    assert!(browser.get("/").await.body.contains("Logged in as alice"));

    // The panel explains that a cookie session has no id.
    let page = browser.get("/").await;
    assert!(page
        .body
        .contains("<dt>Session id</dt><dd>none: the signed cookie holds the data itself</dd>"));
    // Logging out keeps the seed's behaviour: only `username` goes.
    browser.post_form("/cart", &[("item", "apple")]).await;
    browser.get("/logout").await.assert_redirect_home();
    let page = browser.get("/").await;
    assert!(page.body.contains("You are not logged in"));
    assert!(page.body.contains(">Logged out</li>"));
    assert!(page.body.contains("<li>apple</li>"), "{}", page.body);
}

/// Text that does not compress: `n` pseudo-random letters and digits.
fn incompressible(n: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

#[tokio::test]
async fn cookie_mode_refuses_writes_that_would_not_fit_in_a_cookie() {
    let big = format!("\"{}\"", incompressible(5000, 7));
    for mode in ALL {
        let served = serve_mode(mode, "cookie-size").await;
        let mut browser = Browser::new(served.base.clone());
        browser.put_json("/api/session/theme", r#""dark""#).await;
        let reply = browser.put_json("/api/session/theme", &big).await;
        if mode == Mode::Cookie {
            assert_eq!(
                reply.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{}",
                reply.body
            );
            assert!(reply.body.contains("MAX_COOKIE_SIZE"), "{}", reply.body);
            // Nothing changed, so no cookie is sent (as Flask sends none for
            // a session it did not modify).
            assert_eq!(reply.set_cookies(), Vec::<String>::new());
            let all = browser.get("/api/session").await.json();
            assert_eq!(all["theme"], json!("dark"), "nothing changed: {all}");
        } else {
            assert_eq!(reply.status, StatusCode::OK, "{mode:?}: the store holds it");
        }

        // Items of the longest accepted length, until the cookie is full.
        let mut added = 0;
        for i in 0..40 {
            let item = incompressible(256, i + 1);
            let reply = browser.post_form("/cart", &[("item", item.as_str())]).await;
            if reply.status == StatusCode::PAYLOAD_TOO_LARGE {
                assert_eq!(reply.set_cookies(), Vec::<String>::new(), "{mode:?}");
                break;
            }
            assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {}", reply.body);
            added += 1;
        }
        let cart = browser.get("/api/session").await.json()["cart"].clone();
        let kept = cart.as_array().map_or(0, Vec::len);
        assert_eq!(kept, added, "{mode:?}: a refused item is not kept");
        if mode == Mode::Cookie {
            assert!((5..40).contains(&added), "{added} items fit in a cookie");
        } else {
            assert_eq!(added, 40, "{mode:?}");
        }

        // The tutorials' forms write the session too: with the cookie full,
        // logging in or naming a pet is refused the same way, not answered
        // with a cookie the browser would drop (losing cart and login).
        let name = incompressible(256, 99);
        let pet = incompressible(256, 98);
        for (path, fields) in [
            ("/login", vec![("username", name.as_str())]),
            ("/petname", vec![("pet", pet.as_str()), ("remember", "1")]),
        ] {
            let before = browser.get("/api/session").await.json();
            let reply = browser.post_form(path, &fields).await;
            if mode == Mode::Cookie {
                assert_eq!(
                    reply.status,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "{path}: {}",
                    reply.body
                );
                let after = browser.get("/api/session").await.json();
                assert_eq!(after, before, "{path}: nothing changed");
            } else {
                assert_eq!(reply.status, StatusCode::FOUND, "{mode:?} {path}");
            }
        }
        drop(served);
    }
}

/// With the cookie session filled to the limit, a visit that would not fit
/// is refused like any other write, and logging out still logs out: without
/// its "Logged out" message, never with a cookie the browser would drop
/// (keeping the old one, logged in).
#[tokio::test]
async fn a_full_cookie_session_still_logs_out_and_refuses_a_visit_that_does_not_fit() {
    let served = serve_mode(Mode::Cookie, "full-cookie").await;
    let limit = 4093;
    {
        let mut browser = Browser::new(served.base.clone());
        browser.post_form("/login", &[("username", "alice")]).await;
        // The page shows, and so removes, the login message.
        browser.get("/").await;
        // Fill with values of shrinking size until nothing more fits.
        let mut size = 1024;
        let mut n = 0;
        while size > 0 {
            let value = format!("\"{}\"", incompressible(size, n + 1));
            let reply = browser
                .put_json(&format!("/api/session/k{n}"), &value)
                .await;
            if reply.status == StatusCode::PAYLOAD_TOO_LARGE {
                size /= 2;
            } else {
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                n += 1;
            }
        }
        let before = browser.get("/api/session").await.json();
        assert_eq!(before["username"], json!("alice"));
        let cookie_len = |reply: &common::Reply| {
            reply
                .set_cookies()
                .iter()
                .map(String::len)
                .max()
                .unwrap_or(0)
        };
        // A visit adds `,"visits":1`, more than a one-character value took.
        let reply = browser.post("/visits").await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            reply.body
        );
        assert_eq!(browser.get("/api/session").await.json(), before);
        // So do the tutorials' own writes.
        for path in ["/set_session", "/setsession"] {
            let reply = browser.get(path).await;
            assert_eq!(
                reply.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{path}: {}",
                reply.body
            );
        }
        assert_eq!(browser.get("/api/session").await.json(), before);
        let reply = browser.get("/logout").await;
        reply.assert_redirect_home();
        assert!(cookie_len(&reply) <= limit, "{} bytes", cookie_len(&reply));
        let after = browser.get("/api/session").await.json();
        assert!(after.get("username").is_none(), "logged out: {after}");
    }
}

/// A value nested as deep as a session can be read is refused when the
/// session would add one level more; NUL characters are refused in keys.
/// No visitor can grow a session past 64 KiB of JSON, in any mode, through
/// the API or the cart: a `413` that changes nothing, where a server-side
/// session grew without end (and every request on it with it), and a
/// cookie session, compressed under 4 KB, grew until it could no longer be
/// read (a 500). Under Flask-Session's msgpack, an integer msgpack cannot
/// hold is a `400`, not the 500 of the save after the handler.
#[tokio::test]
async fn sessions_stay_bounded_and_unstorable_values_are_refused() {
    for mode in ALL {
        let served = serve_mode(mode, "bounded").await;
        let mut browser = Browser::new(served.base.clone());
        // Compressible, so that the cookie stays small in cookie mode.
        let value = format!("\"{}\"", "z".repeat(15_000));
        let mut stored = 0;
        let refused = loop {
            let reply = browser
                .put_json(&format!("/api/session/k{stored}"), &value)
                .await;
            if reply.status != StatusCode::OK {
                break reply;
            }
            stored += 1;
            assert!(stored < 10, "{mode:?}: no bound");
        };
        assert_eq!(
            refused.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{mode:?}: {}",
            refused.body
        );
        assert!(refused.body.contains("65536"), "{mode:?}: {}", refused.body);
        assert_eq!(stored, 4, "{mode:?}");
        let all = browser.get("/api/session").await.json();
        let keys = all.as_object().expect("an object").keys();
        assert_eq!(
            keys.filter(|key| key.starts_with('k')).count(),
            4,
            "{mode:?}"
        );

        let mut browser = Browser::new(served.base.clone());
        let item = "c".repeat(250);
        let mut items = 0;
        let refused = loop {
            let reply = browser.post_form("/cart", &[("item", item.as_str())]).await;
            if reply.status != StatusCode::OK {
                break reply;
            }
            items += 1;
            assert!(items < 1000, "{mode:?}: no bound");
        };
        assert_eq!(
            refused.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{mode:?}: {}",
            refused.body
        );
        let cart = browser.get("/api/session").await.json()["cart"].clone();
        assert_eq!(cart.as_array().map(Vec::len), Some(items), "{mode:?}");
        assert!(items > 200, "{mode:?}: {items}");

        let reply = browser
            .put_json("/api/session/big", "18446744073709551616")
            .await;
        if mode == Mode::FlaskSessionRedis {
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
            assert!(reply.body.contains("msgpack"), "{}", reply.body);
        } else {
            assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {}", reply.body);
        }
        drop(served);
    }
}

#[tokio::test]
async fn the_api_refuses_values_too_deep_for_a_session_and_keys_with_nul() {
    for mode in [Mode::Cookie, Mode::Sqlite, Mode::FlaskSessionRedis] {
        let served = serve_mode(mode, "deep").await;
        let mut browser = Browser::new(served.base.clone());
        let nested = |levels: usize| "[".repeat(levels) + &"]".repeat(levels);
        let reply = browser.put_json("/api/session/deep", &nested(127)).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {}", reply.body);
        let reply = browser.put_json("/api/session/deep", &nested(128)).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{mode:?}: {}",
            reply.body
        );
        assert!(reply.body.contains("127 levels"), "{}", reply.body);
        let reply = browser.put_json("/api/session/a%00b", "1").await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{mode:?}: {}",
            reply.body
        );
        let reply = browser.post_form("/login", &[("username", "a\0b")]).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{mode:?}: {}",
            reply.body
        );
        // In values, NUL is fine everywhere.
        let reply = browser.post_form("/cart", &[("item", "a\0b")]).await;
        assert_eq!(reply.status, StatusCode::OK, "{mode:?}: {}", reply.body);
        // The session still reads, with the 127 levels.
        let all = browser.get("/api/session").await;
        assert_eq!(all.status, StatusCode::OK, "{mode:?}");
        // (Deeper than serde_json reads by default: compared as text.)
        assert!(all.body.contains(&nested(127)), "{mode:?}: {}", all.body);
        drop(served);
    }
}

#[tokio::test]
async fn a_failing_store_answers_503_never_500() {
    let dir = TempDir::new("store-down");
    // A file where the database's directory should be: SQLite cannot open it.
    let blocker = dir.0.join("blocker");
    std::fs::write(&blocker, "not a directory").expect("a file");
    let config = SessionConfig::builder()
        .secret_key(TEST_KEY)
        .session_type(SessionType::Sqlite)
        .store_url(sqlite_url(&blocker.join("sessions.db")))
        .build()
        .expect("valid: stores open lazily");
    let base = serve(config).await;

    let mut anonymous = Browser::new(base.clone());
    let page = anonymous.get("/").await;
    assert_eq!(page.status, StatusCode::OK, "no cookie, no store call");
    let mut copied = Browser::new(base.clone());
    copied.cookies.insert(
        "session".to_owned(),
        SessionId::generate().as_str().to_owned(),
    );

    let mut checks = Vec::new();
    checks.push(("POST /visits", anonymous.post("/visits").await));
    checks.push((
        "POST /cart",
        anonymous.post_form("/cart", &[("item", "apple")]).await,
    ));
    checks.push((
        "PUT /api/session/k",
        anonymous.put_json("/api/session/k", "1").await,
    ));
    checks.push((
        "POST /login",
        anonymous
            .post_form("/login", &[("username", "alice")])
            .await,
    ));
    for (name, reply) in [
        ("GET / with a cookie", copied.get("/").await),
        ("GET /api/session", copied.get("/api/session").await),
        (
            "DELETE /api/session/k",
            copied.delete("/api/session/k").await,
        ),
        ("GET /sessions", copied.get("/sessions").await),
        ("GET /logout", copied.get("/logout").await),
        (
            "POST /sessions/logout-everywhere",
            copied.post("/sessions/logout-everywhere").await,
        ),
        (
            "POST /login with a cookie",
            copied.post_form("/login", &[("username", "alice")]).await,
        ),
    ] {
        checks.push((name, reply));
    }
    for (name, reply) in checks {
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{name}: {}",
            reply.body
        );
        assert!(reply.headers.get(RETRY_AFTER).is_some(), "{name}");
    }
}

#[test]
fn test_configs_are_what_they_say() {
    let dir = TempDir::new("configs");
    assert_eq!(
        config_for(Mode::Memory, None).session_type(),
        SessionType::Memory
    );
    let sqlite = config_for(Mode::Sqlite, Some(&dir.0));
    assert_eq!(sqlite.session_type(), SessionType::Sqlite);
    assert_eq!(sqlite.sqlite_path(), dir.0.join("sessions.db"));
}

/// Numbers go in and come out exactly as Flask keeps them: integers of any
/// size, floats to the last digit, written as Python writes them.
#[tokio::test]
async fn the_json_api_keeps_numbers_exact() {
    let served = serve_mode(Mode::Cookie, "exact-numbers").await;
    let mut browser = Browser::new(served.base.clone());
    for (sent, stored) in [
        (
            "123456789012345678901234567890",
            "123456789012345678901234567890",
        ),
        ("1.5e-300", "1.5e-300"),
        // The float Python reads (…68e16, not the …66e16 of an inexact parse).
        ("12345678901234567.0", "1.2345678901234568e+16"),
        ("[1, 18446744073709551616]", "[1,18446744073709551616]"),
    ] {
        let reply = browser.put_json("/api/session/n", sent).await;
        assert_eq!(reply.status, StatusCode::OK, "{sent}: {}", reply.body);
        assert_eq!(reply.body, stored, "{sent}");
        let all = browser.get("/api/session").await;
        assert!(
            all.body.contains(&format!("\"n\":{stored}")),
            "{}",
            all.body
        );
    }
    // Numbers spelled otherwise than Python spells them go into the cookie
    // as Python writes them, so that it is the cookie Flask would sign.
    for (sent, python) in [
        ("1E5", "100000.0"),
        ("-0", "0"),
        ("[1e-7, 1.50, 1e16]", "[1e-07,1.5,1e+16]"),
        ("{\"b\": 1e2}", "{\"b\":100.0}"),
    ] {
        let reply = browser.put_json("/api/session/n", sent).await;
        assert_eq!(reply.status, StatusCode::OK, "{sent}: {}", reply.body);
        let cookie = browser.cookies.get("session").expect("a session cookie");
        let decoded = tessera::decode_unverified(cookie, tessera::DEFAULT_MAX_PAYLOAD_SIZE)
            .expect("a signed cookie");
        let n = decoded.data.get("n").expect("the key");
        assert_eq!(tessera::tagged::to_string(n), python, "{sent}");
    }
    drop(served);
}

/// A session over `MAX_COOKIE_SIZE` already (the limit was lowered since)
/// can still be changed, as long as the change leaves its cookie no larger;
/// growing it is refused, as before. (Every write was refused, so the
/// visitor could not even make it smaller.)
#[tokio::test]
async fn a_session_over_a_lowered_cookie_limit_can_still_change_without_growing() {
    let roomy = serve(config_for(Mode::Cookie, None)).await;
    let tight = serve(
        SessionConfig::builder()
            .secret_key(TEST_KEY)
            .session_type(SessionType::Cookie)
            .max_cookie_size(1_000)
            .build()
            .expect("config"),
    )
    .await;
    // Digits that do not compress much: 2,000 bytes of them.
    let mut state = 12_345u64;
    let noise: String = (0..2_000)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            char::from(b'0' + u8::try_from(state >> 60).expect("4 bits") % 10)
        })
        .collect();
    let mut browser = Browser::new(roomy);
    let reply = browser
        .put_json("/api/session/big", &format!("\"{noise}\""))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    browser.base = tight;
    let smaller = format!("\"{}\"", &noise[..1_900]);
    let reply = browser.put_json("/api/session/big", &smaller).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = browser.put_json("/api/session/more", "\"grows it\"").await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    let session = browser.get("/api/session").await.json();
    assert_eq!(session["big"].as_str().map(str::len), Some(1_900));
    assert!(session.get("more").is_none(), "{session}");
    let reply = browser.delete("/api/session/big").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    let reply = browser.put_json("/api/session/more", "\"fits now\"").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// A session the store cannot write back in its format (here an integer
/// past 64 bits, which a Flask-Session app in JSON wrote and msgpack cannot
/// hold) is no outage: retrying would fail the same way, so no 503 and no
/// `Retry-After`, and the stored session stays as it was.
#[tokio::test]
async fn a_session_the_store_cannot_write_back_is_no_outage() {
    let served = serve_mode(Mode::FlaskSessionRedis, "unwritable").await;
    let mut browser = Browser::new(served.base.clone());
    let reply = browser.put_json("/api/session/username", "\"alice\"").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let id = browser
        .cookies
        .get("session")
        .expect("a session cookie")
        .clone();
    let key = format!("flask-session:{id}");
    let stored = r#"{"username": "alice", "n": 123456789012345678901234567890}"#;
    let redis_url = common::server_url("TESSERA_TEST_REDIS_URL");
    let mut redis = ::redis::Client::open(redis_url.as_str())
        .expect("a Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let () = ::redis::cmd("SET")
        .arg(&key)
        .arg(stored)
        .arg("KEEPTTL")
        .query_async(&mut redis)
        .await
        .expect("SET");

    for (name, reply) in [
        ("POST /visits", browser.post("/visits").await),
        (
            "POST /cart",
            browser.post_form("/cart", &[("item", "apple")]).await,
        ),
        (
            "PUT /api/session/k",
            browser.put_json("/api/session/k", "1").await,
        ),
    ] {
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{name}: {}",
            reply.body
        );
        assert!(reply.headers.get(RETRY_AFTER).is_none(), "{name}");
    }
    let read = browser.get("/api/session").await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert!(
        read.body.contains("123456789012345678901234567890"),
        "{}",
        read.body
    );
    let kept: String = ::redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("GET");
    assert_eq!(kept, stored);
    let () = ::redis::cmd("DEL")
        .arg(&key)
        .arg(format!("flask-session:{{{id}}}"))
        .query_async(&mut redis)
        .await
        .expect("DEL");
}

/// `PUT /api/session/{key}` answers the value as it is stored, which is
/// what the next read gets: in Flask-Session's JSON layout, bytes become
/// base64 text and tuples lists (it answered the value as sent, and a read
/// then found another).
#[tokio::test]
async fn a_put_answers_the_value_the_next_read_gets_in_every_layout() {
    use tessera::store::flask_format::SerializationFormat;
    let flask_json = SessionConfig::builder()
        .secret_key(TEST_KEY)
        .session_type(SessionType::Redis)
        .store_url(common::server_url("TESSERA_TEST_REDIS_URL"))
        .key_prefix("flask-session-json:")
        .serialization_format(Some(SerializationFormat::Json))
        .build()
        .expect("a valid configuration");
    let mut servers = vec![("Flask-Session JSON", serve(flask_json).await, None)];
    for mode in ALL {
        let served = serve_mode(mode, "put-as-stored").await;
        servers.push(("a mode", served.base.clone(), Some((mode, served))));
    }
    let values = [
        r#"{" b":"AAE="}"#,
        r#"{" t":[1,"two"]}"#,
        r#"{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}"#,
        r#"{" u":"12345678-1234-5678-1234-567812345678"}"#,
        r#"{" m":"<b>x</b>"}"#,
        r#"[1,{" t":[2]}]"#,
        "12345678901234567890",
    ];
    for (name, base, mode) in &servers {
        let mode = mode.as_ref().map(|(mode, _)| *mode);
        let mut browser = Browser::new(base.clone());
        for value in values {
            let put = browser.put_json("/api/session/v", value).await;
            // 12345678901234567890 does not fit msgpack's integers: refused.
            if put.status == StatusCode::BAD_REQUEST {
                assert_eq!(mode, Some(Mode::FlaskSessionRedis), "{name} {value}");
                continue;
            }
            assert_eq!(
                put.status,
                StatusCode::OK,
                "{name} {mode:?} {value}: {}",
                put.body
            );
            let answered: serde_json::Value = serde_json::from_str(&put.body).expect("JSON");
            let read = browser.get("/api/session").await;
            let read: serde_json::Value = serde_json::from_str(&read.body).expect("JSON");
            assert_eq!(answered, read["v"], "{name} {mode:?} {value}");
        }
    }
}
