//! The demo with `SESSION_TYPE=encrypted`: the tutorials' routes work as with
//! signed cookies, and the browser cannot read what its cookie holds.

use tessera::{SessionConfig, SessionType};

mod common;

use common::{serve, Browser, TEST_KEY};

#[tokio::test]
async fn the_seed_routes_work_with_encrypted_cookies() {
    let config = SessionConfig::builder()
        .secret_key(TEST_KEY)
        .session_type(SessionType::EncryptedCookie)
        .build()
        .expect("a configuration");
    let mut browser = Browser::new(serve(config).await);

    assert_eq!(browser.get("/set_session").await.body, "Session data set.");
    let cookie = browser.session().expect("a session cookie").to_owned();
    assert!(!cookie.contains("your_username"), "{cookie}");
    // "your_username" in base64 at each of its three alignments.
    for encoded in ["eW91cl91c2VybmFt", "lvdXJfdXNlcm5hbW", "5b3VyX3VzZXJuYW1l"] {
        assert!(!cookie.contains(encoded), "{cookie}");
    }
    assert_eq!(
        browser.get("/get_session").await.body,
        "Welcome, your_username!"
    );

    browser
        .post_form("/login", &[("username", "alice")])
        .await
        .assert_redirect_home();
    let page = browser.get("/").await.body;
    assert!(page.contains("Logged in as alice"), "{page}");
    assert!(page.contains("encrypted cookie"), "{page}");
    assert!(!page.contains("signed cookie"), "{page}");
    // An encrypted cookie is sealed, not signed.
    assert!(page.contains("<dt>Sealed</dt>"), "{page}");
    assert!(!page.contains("<dt>Signed</dt>"), "{page}");

    let devices = browser.get("/sessions").await.body;
    assert!(devices.contains("encrypted cookie"), "{devices}");

    // A signed cookie with the same key is not an encrypted one.
    let mut forger = Browser::new(browser.base.clone());
    let signed = tessera::CookieCodec::new(&TEST_KEY.into(), &[]).encode(
        &tessera::Map::from([("username".to_owned(), tessera::Value::from("mallory"))]),
        std::time::SystemTime::now(),
    );
    forger.cookies.insert("session".to_owned(), signed);
    assert_eq!(
        forger.get("/get_session").await.body,
        "No session data found."
    );
}
