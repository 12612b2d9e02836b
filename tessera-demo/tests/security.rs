//! The limits of cookie sessions, over HTTP with the demo's own login and
//! logout (`SESSION_TYPE=cookie`): what SECURITY.md says about them.
//! Server-side revocation and fixation, for every store, are in
//! `revocation.rs`; the library's security tests are in
//! `tessera/tests/security.rs`.

mod common;

use std::time::{Duration, SystemTime};

use common::{serve, Browser};
use serde_json::json;
use tessera::{DecodeError, SessionConfig, SignatureError};

fn cookie_config() -> SessionConfig {
    common::config_for(common::Mode::Cookie, None)
}

/// A cookie session cannot be revoked: logging out tells this browser to
/// forget the login, but a copy of the cookie taken before (stolen, or kept
/// by the user) still logs in until it is older than
/// `PERMANENT_SESSION_LIFETIME`. Server-side sessions do not have this limit
/// (`revocation.rs`).
#[tokio::test]
async fn a_copied_cookie_session_outlives_logout_until_its_max_age() {
    let config = cookie_config();
    let mut browser = Browser::new(serve(config.clone()).await);
    browser
        .post_form("/login", &[("username", "alice")])
        .await
        .assert_redirect_home();
    let mut copy = browser.copy();

    browser.get("/logout").await.assert_redirect_home();
    let page = browser.get("/").await;
    assert!(page.body.contains("You are not logged in"), "{}", page.body);
    assert!(browser
        .get("/api/session")
        .await
        .json()
        .get("username")
        .is_none());

    let copied = copy.session().expect("the copied cookie").to_owned();
    let all = copy.get("/api/session").await.json();
    assert_eq!(all["username"], json!("alice"), "the known limit: {all}");

    let codec = config.cookie_codec();
    assert!(codec.decode(&copied, SystemTime::now()).is_ok());
    let past_max_age =
        SystemTime::now() + config.permanent_session_lifetime() + Duration::from_secs(2);
    assert!(
        matches!(
            codec.decode(&copied, past_max_age),
            Err(DecodeError::Signature(SignatureError::Expired { .. }))
        ),
        "refused once older than PERMANENT_SESSION_LIFETIME"
    );
}

/// Fixation cannot happen with cookie sessions: the login is written into the
/// victim's new cookie, so a cookie the attacker planted before it (and kept
/// a copy of) stays anonymous.
#[tokio::test]
async fn a_planted_cookie_session_does_not_carry_the_victims_login() {
    let mut attacker = Browser::new(serve(cookie_config()).await);
    attacker.put_json("/api/session/theme", r#""dark""#).await;
    let mut victim = attacker.copy();

    victim
        .post_form("/login", &[("username", "victim")])
        .await
        .assert_redirect_home();
    assert_ne!(victim.session(), attacker.session(), "a new cookie");
    let all = victim.get("/api/session").await.json();
    assert_eq!(all["username"], json!("victim"), "{all}");
    assert_eq!(
        all["theme"],
        json!("dark"),
        "the planted data is kept: {all}"
    );

    let all = attacker.get("/api/session").await.json();
    assert!(all.get("username").is_none(), "{all}");
    assert!(attacker
        .get("/")
        .await
        .body
        .contains("You are not logged in"));
}
