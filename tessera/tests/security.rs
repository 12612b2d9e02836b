//! Security properties through the public API, for cookie sessions and
//! server-side sessions (the memory store, and SQLite with the `sqlite`
//! feature): tampering and forgery, replay after logout, fixation, id
//! guessing, cookie tossing, oversized input, and secrets kept out of `Debug`
//! output and logs. `SECURITY.md` states what these tests establish.
#![cfg(feature = "axum")]

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use hmac::Mac as _;
use tessera::{
    CookieCodec, DecodeError, Map, MemoryStore, SecretKey, Session, SessionConfig,
    SessionConfigBuilder, SessionError, SessionId, SessionLayer, SessionStore, SessionType,
    SignatureError, Value,
};
use tower::ServiceExt;

mod common;
#[path = "common/counting_store.rs"]
mod counting_store;
#[path = "common/logs.rs"]
mod logs;

use common::{cookie_pair, request as send, set_cookies, text};
use counting_store::CountingStore;
use logs::LogBuffer;

const KEY: &str = "security-test-current-key-0123456789abcdef";
const OTHER_KEY: &str = "security-test-unrelated-key-0123456789abcdef";
/// URL-safe base64, in index order.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// How many well-formed ids of one request the layer looks up at most.
const MAX_IDS_LOOKED_UP: usize = 4;

// ---------------------------------------------------------------------------
// The app, in every mode

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cookie,
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite,
}

fn server_modes() -> Vec<Mode> {
    vec![
        Mode::Memory,
        #[cfg(feature = "sqlite")]
        Mode::Sqlite,
    ]
}

fn all_modes() -> Vec<Mode> {
    let mut modes = vec![Mode::Cookie];
    modes.extend(server_modes());
    modes
}

/// The app in one mode, with what the tests look into.
struct Fixture {
    app: Router,
    config: SessionConfig,
    store: Option<Arc<CountingStore>>,
    #[cfg(feature = "sqlite")]
    _dir: Option<TempDir>,
}

impl Fixture {
    fn store(&self) -> &CountingStore {
        self.store.as_deref().expect("a server-side mode")
    }

    /// Whether the store holds a live session under the id in `cookie`
    /// (`session=id` or `session=id.signature`).
    async fn is_live(&self, cookie: &str) -> bool {
        let value = cookie.trim_start_matches("session=");
        let id = value.split('.').next().expect("an id");
        let id = SessionId::parse(id).expect("a well-formed id");
        self.store()
            .load(&id, unix_now())
            .await
            .expect("the store answers")
            .is_some()
    }
}

fn fixture(
    mode: Mode,
    configure: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder,
) -> Fixture {
    let config = configure(SessionConfig::builder().secret_key(KEY))
        .build()
        .expect("a valid configuration");
    #[cfg(feature = "sqlite")]
    let dir = (mode == Mode::Sqlite).then(|| TempDir::new("security"));
    let inner: Option<Arc<dyn SessionStore>> = match mode {
        Mode::Cookie => None,
        Mode::Memory => Some(Arc::new(MemoryStore::default())),
        #[cfg(feature = "sqlite")]
        Mode::Sqlite => Some(Arc::new(tessera::store::SqliteStore::new(
            dir.as_ref().expect("a directory").0.join("sessions.db"),
        ))),
    };
    let store = inner.map(|inner| Arc::new(CountingStore::new(inner)));
    let layer = match &store {
        None => SessionLayer::new(config.clone()),
        Some(store) => SessionLayer::with_store(config.clone(), store.clone()),
    };
    Fixture {
        app: routes().layer(layer),
        config,
        store,
        #[cfg(feature = "sqlite")]
        _dir: dir,
    }
}

fn routes() -> Router {
    Router::new()
        .route(
            "/get/{key}",
            get(|s: Session, Path(key): Path<String>| async move {
                s.get_value(&key)
                    .map_or("None".to_owned(), |v| v.to_tagged_json())
            }),
        )
        .route(
            "/set/{key}",
            post(
                |s: Session, Path(key): Path<String>, body: String| async move {
                    s.insert_value(key, body);
                    "ok"
                },
            ),
        )
        // `levels` lists around 1 under "deep", set by `insert`, by
        // `insert_value` or appended to the list under "deep" by `append`.
        .route(
            "/deep/{how}/{levels}",
            post(
                |s: Session, Path((how, levels)): Path<(String, usize)>| async move {
                    let mut value = Value::from(1);
                    for _ in 0..levels {
                        value = Value::List(vec![value]);
                    }
                    let result = match how.as_str() {
                        "insert" => s.insert("deep", value),
                        "insert_value" => {
                            s.insert_value("deep", value);
                            Ok(())
                        }
                        _ => s.append("deep", value).await.map(drop),
                    };
                    match result {
                        Ok(()) => (StatusCode::OK, "set".to_owned()),
                        Err(error) => (error.status(), format!("{error}: {error:?}")),
                    }
                },
            ),
        )
        // A datetime under "date", set by `insert_value` or appended to the
        // list under "date" by `append`.
        .route(
            "/date/{how}/{which}",
            post(
                |s: Session, Path((how, which)): Path<(String, String)>| async move {
                    let when = match which.as_str() {
                        // UTC is past year 9999, where the time crate ends.
                        "after-9999" => time::macros::datetime!(9999-12-31 23:00 -05:00),
                        // UTC is year 0, which Python's datetime has not.
                        "year-0" => time::macros::datetime!(0001-01-01 00:30 +05:00),
                        "last" => time::macros::datetime!(9999-12-31 23:59:59 UTC),
                        _ => time::macros::datetime!(0001-01-01 00:00 UTC),
                    };
                    let result = match how.as_str() {
                        "insert_value" => {
                            s.insert_value("date", when);
                            Ok(())
                        }
                        _ => s.append("date", Value::DateTime(when)).await.map(drop),
                    };
                    match result {
                        Ok(()) => (StatusCode::OK, "set".to_owned()),
                        Err(error) => (error.status(), format!("{error}: {error:?}")),
                    }
                },
            ),
        )
        // What a login handler does: a fresh id (server-side), then the user.
        .route(
            "/login/{user}",
            post(|s: Session, Path(user): Path<String>| async move {
                match s.cycle_id().await {
                    Ok(()) | Err(SessionError::Revoked) => {}
                    Err(error) => return (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
                }
                s.set_user_id(Some(&user));
                s.insert_value("username", user);
                (StatusCode::OK, "logged in".to_owned())
            }),
        )
        .route(
            "/logout",
            post(|s: Session| async move {
                match s.destroy().await {
                    Ok(()) => (StatusCode::OK, "logged out".to_owned()),
                    Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
                }
            }),
        )
}

/// Status, `Set-Cookie` headers and body of one response.
async fn parts(response: Response) -> (StatusCode, Vec<String>, String) {
    let status = response.status();
    let cookies = set_cookies(response.headers());
    (status, cookies, text(response).await)
}

/// `POST path` with the `Cookie` header `cookie`: the status, the cookie the
/// browser then holds (a cookie session's accepted write comes with its new
/// one) and the body.
async fn post_as(app: &Router, cookie: &str, path: &str) -> (StatusCode, String, String) {
    let (status, cookies, body) = parts(send(app, "POST", path, Some(cookie), "").await).await;
    let cookie = cookies.first().map_or(cookie.to_owned(), |c| {
        c.split(';').next().expect("pair").to_owned()
    });
    (status, cookie, body)
}

/// `GET /get/{key}` with the `Cookie` header `cookie`.
async fn read(app: &Router, key: &str, cookie: &str) -> (StatusCode, Vec<String>, String) {
    parts(send(app, "GET", &format!("/get/{key}"), Some(cookie), "").await).await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// `id.signature` as Flask-Session's `SESSION_USE_SIGNER` writes it: HMAC-SHA1
/// with the key derived from `secret` and the salt `flask-session`.
fn sign_id(secret: &str, id: &str) -> String {
    type HmacSha1 = hmac::Hmac<sha1::Sha1>;
    let mut derive = HmacSha1::new_from_slice(secret.as_bytes()).expect("any key length");
    derive.update(b"flask-session");
    let derived = derive.finalize().into_bytes();
    let mut mac = HmacSha1::new_from_slice(&derived).expect("any key length");
    mac.update(id.as_bytes());
    let signature =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{id}.{signature}")
}

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
#[cfg(feature = "sqlite")]
struct TempDir(std::path::PathBuf);

#[cfg(feature = "sqlite")]
impl TempDir {
    fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tessera-{label}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            SessionId::generate().fingerprint()
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }
}

#[cfg(feature = "sqlite")]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Tampering and forgery

/// Every value that differs from `value` in exactly one byte: each position
/// replaced by every other URL-safe base64 character and by '.'.
fn single_byte_changes(value: &str) -> Vec<(usize, String)> {
    let mut changes = Vec::new();
    for position in 0..value.len() {
        for &replacement in ALPHABET.iter().chain(b".") {
            if value.as_bytes()[position] == replacement {
                continue;
            }
            let mut bytes = value.as_bytes().to_vec();
            bytes[position] = replacement;
            changes.push((position, String::from_utf8(bytes).expect("ASCII")));
        }
    }
    changes
}

/// Whether `changed` differs from `original` only in the two low bits of its
/// last character. A 20-byte HMAC-SHA1 signature takes 27 base64 characters
/// and the last one carries 2 unused bits, which base64 decoding (Python's as
/// much as this library's) ignores: such a change leaves the decoded
/// signature, and so the session, exactly as they were.
fn only_unused_signature_bits(original: &str, changed: &str) -> bool {
    let (Some(&a), Some(&b)) = (original.as_bytes().last(), changed.as_bytes().last()) else {
        return false;
    };
    let index = |byte: u8| ALPHABET.iter().position(|&c| c == byte);
    original[..original.len() - 1] == changed[..changed.len() - 1]
        && matches!((index(a), index(b)), (Some(a), Some(b)) if a >> 2 == b >> 2)
}

/// Which part of `payload.timestamp.signature` the byte at `position` is in.
fn part_of(value: &str, position: usize) -> &'static str {
    let signature_start = value.rfind('.').expect("signed") + 1;
    let timestamp_start = value[..signature_start - 1]
        .rfind('.')
        .expect("timestamped")
        + 1;
    match position {
        p if p >= signature_start => "signature",
        p if p >= timestamp_start => "timestamp",
        p if p + 1 == timestamp_start => "separator",
        _ => "payload",
    }
}

/// Any single changed byte in the payload, timestamp or signature of a valid
/// cookie gives an empty session: `200`, no `Set-Cookie`, nothing read. The
/// one exception changes nothing: the unused bits of the signature's last
/// base64 character (three variants per cookie, each the same signature).
#[tokio::test]
async fn a_cookie_with_any_single_changed_byte_gives_an_empty_session() {
    let fx = fixture(Mode::Cookie, |b| b);
    let plain = cookie_pair(&send(&fx.app, "POST", "/set/value", None, "tamper-me").await);
    let compressed =
        cookie_pair(&send(&fx.app, "POST", "/set/value", None, &"z".repeat(600)).await);
    assert!(
        compressed.starts_with("session=."),
        "a zlib payload: {compressed}"
    );
    for (cookie, expected) in [
        (plain, "\"tamper-me\"".to_owned()),
        (compressed, format!("\"{}\"", "z".repeat(600))),
    ] {
        let value = cookie.trim_start_matches("session=");
        assert_eq!(read(&fx.app, "value", &cookie).await.2, expected);
        let mut same_signature = 0;
        let mut tried = HashSet::new();
        for (position, changed) in single_byte_changes(value) {
            let part = part_of(value, position);
            tried.insert(part);
            let (status, cookies, body) =
                read(&fx.app, "value", &format!("session={changed}")).await;
            assert_eq!(status, StatusCode::OK, "{part} byte {position}: {changed}");
            assert!(cookies.is_empty(), "{part} byte {position}: {cookies:?}");
            if only_unused_signature_bits(value, &changed) {
                same_signature += 1;
                assert_eq!(body, expected, "the same signature: {changed}");
            } else {
                assert_eq!(body, "None", "{part} byte {position} accepted: {changed}");
            }
        }
        assert_eq!(same_signature, 3, "only the last character's unused bits");
        assert_eq!(tried.len(), 4, "every part was changed: {tried:?}");
    }
}

/// A changed byte in a server-side cookie names another id, which was never
/// issued; with `SESSION_USE_SIGNER` it also breaks the signature, so the
/// store is not even asked.
#[tokio::test]
async fn a_session_id_with_any_single_changed_byte_gives_an_empty_session() {
    for mode in server_modes() {
        for signed in [false, true] {
            let fx = fixture(mode, |b| b.use_signer(signed));
            let cookie = cookie_pair(&send(&fx.app, "POST", "/set/value", None, "mine").await);
            let value = cookie.trim_start_matches("session=");
            assert_eq!(read(&fx.app, "value", &cookie).await.2, "\"mine\"");
            let loads_before = fx.store().loads();
            let mut same_signature = 0;
            for (position, changed) in single_byte_changes(value) {
                let (status, cookies, body) =
                    read(&fx.app, "value", &format!("session={changed}")).await;
                let context = format!("{mode:?} signed={signed} byte {position}: {changed}");
                assert_eq!(status, StatusCode::OK, "{context}");
                assert!(cookies.is_empty(), "{context}: {cookies:?}");
                if signed && only_unused_signature_bits(value, &changed) {
                    same_signature += 1;
                    assert_eq!(body, "\"mine\"", "{context}");
                } else {
                    assert_eq!(body, "None", "{context}");
                }
            }
            if signed {
                assert_eq!(same_signature, 3, "{mode:?}");
                assert_eq!(
                    fx.store().loads() - loads_before,
                    3,
                    "{mode:?}: a bad signature costs no store call"
                );
            }
        }
    }
}

/// A cookie is honoured only if signed with this app's key (or a fallback)
/// and salt: not another app's key, not the key with another salt (so
/// Flask-Session's signed ids cannot pass as session cookies), not an empty
/// key.
#[tokio::test]
async fn cookies_signed_with_another_key_or_salt_are_refused() {
    let fx = fixture(Mode::Cookie, |b| b);
    let data = Map::from([("value".to_owned(), Value::from("forged"))]);
    let now = SystemTime::now();
    let genuine = CookieCodec::new(&SecretKey::from(KEY), &[]).encode(&data, now);
    assert_eq!(
        read(&fx.app, "value", &format!("session={genuine}"))
            .await
            .2,
        "\"forged\"",
        "the same data signed right is accepted"
    );
    for (what, cookie) in [
        (
            "another key",
            CookieCodec::new(&SecretKey::from(OTHER_KEY), &[]).encode(&data, now),
        ),
        (
            "another salt",
            CookieCodec::with_salt(&SecretKey::from(KEY), &[], "flask-session").encode(&data, now),
        ),
        (
            "an empty key",
            signed_with_an_empty_key(r#"{"value":"forged"}"#),
        ),
        (
            "the key as a fallback of another",
            CookieCodec::new(&SecretKey::from(OTHER_KEY), &[SecretKey::from(KEY)])
                .encode(&data, now),
        ),
    ] {
        let (status, cookies, body) = read(&fx.app, "value", &format!("session={cookie}")).await;
        assert_eq!(status, StatusCode::OK, "{what}");
        assert!(cookies.is_empty(), "{what}");
        assert_eq!(body, "None", "{what} accepted");
    }
}

/// `json` signed as itsdangerous signs it with an empty key, which anyone
/// can do (tessera's codec refuses to): HMAC-SHA1 key derivation with
/// Flask's salt, the timestamp, and the signature, base64url without padding.
fn signed_with_an_empty_key(json: &str) -> String {
    use hmac::{Hmac, Mac as _};
    type HmacSha1 = Hmac<sha1::Sha1>;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut derive = HmacSha1::new_from_slice(b"").expect("any key");
    derive.update(b"cookie-session");
    let derived = derive.finalize().into_bytes();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let timestamp = now.to_be_bytes();
    let first = timestamp.iter().position(|&b| b != 0).unwrap_or(7);
    let signed = format!("{}.{}", b64(json.as_bytes()), b64(&timestamp[first..]));
    let mut mac = HmacSha1::new_from_slice(&derived).expect("any key");
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
}

/// With `SESSION_USE_SIGNER`, an id that is live in the store is refused when
/// signed with another key: the signature, not the store, decides first.
#[tokio::test]
async fn signed_ids_from_another_key_are_refused() {
    for mode in server_modes() {
        let fx = fixture(mode, |b| b.use_signer(true));
        let other = SessionLayer::with_store(
            SessionConfig::builder()
                .secret_key(OTHER_KEY)
                .use_signer(true)
                .build()
                .expect("config"),
            fx.store.clone().expect("a store"),
        );
        let other_app = routes().layer(other);
        let cookie = cookie_pair(&send(&other_app, "POST", "/set/value", None, "other").await);
        assert!(fx.is_live(&cookie).await, "{mode:?}: the id is live");
        assert_eq!(read(&fx.app, "value", &cookie).await.2, "None", "{mode:?}");
        let id = cookie
            .trim_start_matches("session=")
            .split('.')
            .next()
            .expect("id");
        assert_eq!(
            read(&fx.app, "value", &format!("session={}", sign_id(KEY, id)))
                .await
                .2,
            "\"other\"",
            "{mode:?}: the same id signed with this app's key is accepted"
        );
    }
}

// Cookies older than PERMANENT_SESSION_LIFETIME (or dated in the future) are
// refused: tests/layer.rs, old_and_future_cookies_are_refused, and the signer's
// unit tests at the exact boundary. Expired server-side records:
// tests/server_side.rs, idle_and_absolute_expiry.

// ---------------------------------------------------------------------------
// Replay after logout

/// Server-side, logging out deletes the record: the old cookie, replayed,
/// names a dead id and gives an empty session, and writing through it starts
/// a new session under a new id. A cookie session cannot be revoked: the
/// browser is told to delete the cookie, but a copy stays valid until it is
/// older than `PERMANENT_SESSION_LIFETIME` (the known limit SECURITY.md states).
#[tokio::test]
async fn replaying_a_cookie_after_logout() {
    for mode in all_modes() {
        let fx = fixture(mode, |b| b);
        let old = cookie_pair(&send(&fx.app, "POST", "/login/alice", None, "").await);
        assert_eq!(read(&fx.app, "username", &old).await.2, "\"alice\"");

        let logout = send(&fx.app, "POST", "/logout", Some(&old), "").await;
        let deleted = set_cookies(logout.headers());
        assert_eq!(deleted.len(), 1, "{mode:?}: {deleted:?}");
        assert!(deleted[0].starts_with("session=;"), "{mode:?}: {deleted:?}");

        let (status, cookies, body) = read(&fx.app, "username", &old).await;
        assert_eq!(status, StatusCode::OK);
        if mode == Mode::Cookie {
            assert_eq!(body, "\"alice\"", "a copied cookie session outlives logout");
            let codec = fx.config.cookie_codec();
            let value = old.trim_start_matches("session=");
            let after_lifetime =
                SystemTime::now() + fx.config.permanent_session_lifetime() + Duration::from_secs(2);
            assert!(
                matches!(
                    codec.decode(value, after_lifetime),
                    Err(DecodeError::Signature(SignatureError::Expired { .. }))
                ),
                "but not its max age"
            );
            continue;
        }
        assert_eq!(body, "None", "{mode:?}: the id is dead");
        assert!(cookies.is_empty(), "{mode:?}: {cookies:?}");
        assert!(!fx.is_live(&old).await, "{mode:?}");
        let write = send(&fx.app, "POST", "/set/theme", Some(&old), "dark").await;
        let fresh = cookie_pair(&write);
        assert_ne!(fresh, old, "{mode:?}: a new session, under a new id");
        assert_eq!(read(&fx.app, "username", &fresh).await.2, "None");
        assert!(!fx.is_live(&old).await, "{mode:?}: never resurrected");
    }
}

// ---------------------------------------------------------------------------
// Fixation

/// An id the server never issued is never adopted, even well-formed and (as
/// if the key had leaked) correctly signed: the store is the authority. The
/// visitor gets a fresh id, and the planted one stays empty, so whoever
/// planted it sees nothing. (An id issued before login is cycled by
/// `cycle_id`: tests/server_side.rs, and every store over HTTP in
/// tessera-demo/tests/revocation.rs.)
#[tokio::test]
async fn an_id_the_server_never_issued_is_never_adopted() {
    for mode in server_modes() {
        for signed in [false, true] {
            let fx = fixture(mode, |b| b.use_signer(signed));
            let planted_id = SessionId::generate();
            let planted = if signed {
                format!("session={}", sign_id(KEY, planted_id.as_str()))
            } else {
                format!("session={}", planted_id.as_str())
            };
            let context = format!("{mode:?} signed={signed}");
            for route in ["/set/theme", "/login/victim"] {
                let response = send(&fx.app, "POST", route, Some(&planted), "dark").await;
                assert_eq!(response.status(), StatusCode::OK, "{context} {route}");
                let issued = cookie_pair(&response);
                assert_ne!(issued, planted, "{context} {route}: a fresh id");
                assert!(
                    !issued.contains(planted_id.as_str()),
                    "{context} {route}: {issued}"
                );
                assert!(fx.is_live(&issued).await, "{context} {route}");
                assert!(!fx.is_live(&planted).await, "{context} {route}: not stored");
                assert_eq!(
                    read(&fx.app, "theme", &planted).await.2,
                    "None",
                    "{context}"
                );
                assert_eq!(read(&fx.app, "username", &planted).await.2, "None");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Id guessing

/// Session ids are 32 bytes from the OS CSPRNG: 256 bits of entropy in 43
/// URL-safe base64 characters (42 carrying 6 bits, the last 4). For 100,000
/// ids: the form, no duplicate, every character position uniform (chi-square)
/// and every one of the 256 bits balanced. The bounds are loose enough that a
/// correct generator fails them with a probability below 1e-8 in total,
/// while a counter, a clock or a short seed fails them at once.
#[test]
fn session_ids_carry_256_random_bits() {
    const N: usize = 100_000;
    let mut seen = HashSet::with_capacity(N);
    let mut counts = vec![[0u32; 64]; 43];
    let mut ones = [0u32; 256];
    for _ in 0..N {
        let id = SessionId::generate();
        let text = id.as_str();
        assert_eq!(text.len(), 43, "{text}");
        assert_eq!(SessionId::parse(text).as_ref(), Some(&id));
        for (position, byte) in text.bytes().enumerate() {
            let index = ALPHABET
                .iter()
                .position(|&c| c == byte)
                .unwrap_or_else(|| panic!("{text}: not URL-safe base64"));
            counts[position][index] += 1;
            let bits = if position == 42 { 4 } else { 6 };
            for bit in 0..bits {
                if (index >> (5 - bit)) & 1 == 1 {
                    ones[position * 6 + bit] += 1;
                }
            }
        }
        assert!(seen.insert(id), "a duplicate id after {} ids", seen.len());
    }

    let chi_square = |observed: &[u32], categories: usize| -> f64 {
        let expected = N as f64 / categories as f64;
        observed
            .iter()
            .map(|&count| (f64::from(count) - expected).powi(2) / expected)
            .sum()
    };
    // 63 degrees of freedom: mean 63, standard deviation 11.2;
    // P(X < 15) ≈ 6e-11 and P(X > 200) < 1e-14 per position.
    for (position, observed) in counts.iter().enumerate().take(42) {
        let x = chi_square(observed, 64);
        assert!(
            (15.0..200.0).contains(&x),
            "position {position}: chi-square {x:.1}"
        );
    }
    // The last character holds 4 bits: only every fourth character occurs,
    // uniformly (15 degrees of freedom: P(X < 0.5) ≈ 2e-9, P(X > 90) ≈ 1e-12).
    let last = &counts[42];
    assert!(
        last.iter()
            .enumerate()
            .all(|(index, &count)| index % 4 == 0 || count == 0),
        "the last character carries exactly 4 bits"
    );
    let used: Vec<u32> = last.iter().step_by(4).copied().collect();
    let x = chi_square(&used, 16);
    assert!((0.5..90.0).contains(&x), "last position: chi-square {x:.1}");
    // Each bit is set in half the ids, within 8 standard deviations (158).
    for (bit, &count) in ones.iter().enumerate() {
        let deviation = (f64::from(count) - N as f64 / 2.0).abs();
        assert!(
            deviation < 8.0 * 158.2,
            "bit {bit} is set in {count} of {N} ids"
        );
    }
}

/// A value nested deeper than a session is read back with (128 levels, the
/// session's dict the first) is refused before it is sent or stored, in
/// every mode: stored, the whole session would be unreadable on the next
/// request (server-side, every request of that visitor would fail until
/// it expired). `insert` and `append` say so; a value set otherwise makes
/// the response a 500. Either way the session stays as it was.
#[tokio::test]
async fn values_too_deep_to_read_back_are_refused() {
    for mode in all_modes() {
        let fx = fixture(mode, |b| b);
        let login = send(&fx.app, "POST", "/login/alice", None, "").await;
        let cookie = cookie_pair(&login);
        let post = async |path: &str| post_as(&fx.app, &cookie, path).await;
        let still_alice = async |cookie: &str| {
            assert_eq!(
                read(&fx.app, "username", cookie).await.2,
                "\"alice\"",
                "{mode:?}"
            );
        };
        // 127 lists in the value, 128 levels with the session's dict: readable.
        for how in ["insert", "insert_value"] {
            let (status, written, body) = post(&format!("/deep/{how}/127")).await;
            assert_eq!(status, StatusCode::OK, "{mode:?} {how}: {body}");
            still_alice(&written).await;
            assert!(read(&fx.app, "deep", &written).await.2.starts_with("[[["));
        }
        let (status, _, body) = post("/deep/insert/128").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{mode:?}");
        assert!(
            body.contains("would nest deeper than 128 levels"),
            "{mode:?}: {body}"
        );
        let (status, _, _) = post("/deep/insert_value/128").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{mode:?}");
        still_alice(&cookie).await;
        // An appended item sits one level deeper, in the list.
        let (status, written, body) = post("/deep/append/126").await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {body}");
        still_alice(&written).await;
        let (status, _, body) = post("/deep/append/127").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{mode:?}");
        assert!(
            body.contains("would nest deeper than 128 levels"),
            "{mode:?}: {body}"
        );
        still_alice(&cookie).await;
    }
}

/// A datetime outside years 1 to 9999 in UTC (which Python's `datetime`
/// cannot hold, so that Flask could not read the session; past 9999 the
/// `time` crate cannot either) is refused before it is sent or stored, as
/// a value nested too deep is: `append` says so, a value set otherwise
/// makes the response a 500, and the session stays as it was. The first
/// and last datetimes Python holds are written.
#[tokio::test]
async fn datetimes_flask_cannot_read_back_are_refused() {
    for mode in all_modes() {
        let fx = fixture(mode, |b| b);
        let cookie = cookie_pair(&send(&fx.app, "POST", "/login/alice", None, "").await);
        let post = async |path: &str| post_as(&fx.app, &cookie, path).await;
        for which in ["after-9999", "year-0"] {
            for how in ["insert_value", "append"] {
                let (status, written, body) = post(&format!("/date/{how}/{which}")).await;
                assert_eq!(
                    status,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "{mode:?} {how} {which}: {body}"
                );
                if how == "append" {
                    assert!(
                        body.contains("a datetime outside years 1 to 9999 in UTC")
                            && !body.contains("9999-12-31")
                            && !body.contains("0001-01-01"),
                        "{mode:?} {which}: {body}"
                    );
                }
                assert_eq!(written, cookie, "{mode:?} {how} {which}: no new cookie");
                let (_, _, username) = read(&fx.app, "username", &cookie).await;
                assert_eq!(username, "\"alice\"", "{mode:?} {how} {which}");
                let (_, _, date) = read(&fx.app, "date", &cookie).await;
                assert_eq!(date, "None", "{mode:?} {how} {which}");
            }
        }
        // Read back as Python reads a year below 100, in this century,
        // except from the memory store, which keeps values as they were set.
        let first_year = if mode == Mode::Memory { "0001" } else { "2001" };
        for (which, text) in [
            ("last", "Fri, 31 Dec 9999 23:59:59 GMT".to_owned()),
            ("first", format!("Mon, 01 Jan {first_year} 00:00:00 GMT")),
        ] {
            let (status, written, body) = post(&format!("/date/insert_value/{which}")).await;
            assert_eq!(status, StatusCode::OK, "{mode:?} {which}: {body}");
            let (_, _, date) = read(&fx.app, "date", &written).await;
            assert_eq!(date, format!("{{\" d\":\"{text}\"}}"), "{mode:?} {which}");
        }
    }
}

/// A stored record that cannot be read (a value too deep, written by an
/// older version or by hand) makes its session count as absent, as in the
/// Flask-Session layout: a new session, not a 503 on every request of that
/// visitor until the record expires. The record itself is left alone.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn an_unreadable_stored_session_counts_as_absent() {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use sqlx::Connection as _;

    let fx = fixture(Mode::Sqlite, |b| b);
    let cookie = cookie_pair(&send(&fx.app, "POST", "/login/alice", None, "").await);
    let path = fx._dir.as_ref().expect("a directory").0.join("sessions.db");
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path))
        .await
        .expect("open the database");
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let changed = sqlx::query("UPDATE tessera_session_values SET value = ? WHERE key = 'username'")
        .bind(&deep)
        .execute(&mut conn)
        .await
        .expect("update")
        .rows_affected();
    assert_eq!(changed, 1);

    let (status, cookies, body) = read(&fx.app, "username", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "None");
    assert!(cookies.is_empty(), "a read writes nothing: {cookies:?}");
    let response = send(&fx.app, "POST", "/login/bob", Some(&cookie), "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = cookie_pair(&response);
    assert_ne!(fresh, cookie);
    assert_eq!(read(&fx.app, "username", &fresh).await.2, "\"bob\"");
    let kept: String = sqlx::query_scalar(
        "SELECT value FROM tessera_session_values WHERE key = 'username' AND value LIKE '[%'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("the unreadable record is left alone");
    assert_eq!(kept, deep);
}

// ---------------------------------------------------------------------------
// Cookie tossing

/// Cookie mode: when several cookies share the session's name (one set by an
/// attacker on a more specific path or a parent domain, which the browser
/// sends first), the first one that verifies is used. A forged one is
/// ignored, and a response that saves the session writes the user's data,
/// never the attacker's. A genuine cookie of the attacker's own session sent
/// first does win: the server cannot tell two genuine cookies apart, which is
/// why SECURITY.md recommends the `__Host-` prefix.
#[tokio::test]
async fn cookie_tossing_in_cookie_mode() {
    let fx = fixture(Mode::Cookie, |b| b);
    let codec = fx.config.cookie_codec();
    let victim = cookie_pair(&send(&fx.app, "POST", "/set/value", None, "victim").await);
    let attacker_data = Map::from([("value".to_owned(), Value::from("attacker"))]);
    let other_key = CookieCodec::new(&SecretKey::from(OTHER_KEY), &[]);
    let mut tampered = victim.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let forged = [
        format!(
            "session={}",
            other_key.encode(&attacker_data, SystemTime::now())
        ),
        String::from_utf8(tampered).expect("ASCII"),
        "session=garbage".to_owned(),
        "session=".to_owned(),
    ];
    for tossed in &forged {
        let header = format!("{tossed}; {victim}");
        let (status, cookies, body) = read(&fx.app, "value", &header).await;
        assert_eq!(status, StatusCode::OK, "{tossed}");
        assert!(cookies.is_empty(), "a read writes nothing: {cookies:?}");
        assert_eq!(body, "\"victim\"", "{tossed}");

        let response = send(&fx.app, "POST", "/set/other", Some(&header), "x").await;
        let saved = cookie_pair(&response);
        let data = codec
            .decode(saved.trim_start_matches("session="), SystemTime::now())
            .expect("a genuine cookie")
            .data;
        assert_eq!(data.get("value"), Some(&Value::from("victim")), "{tossed}");
        assert_eq!(data.get("other"), Some(&Value::from("x")));
    }
    let attacker = cookie_pair(&send(&fx.app, "POST", "/set/value", None, "attacker").await);
    assert_eq!(
        read(&fx.app, "value", &format!("{attacker}; {victim}"))
            .await
            .2,
        "\"attacker\"",
        "the first genuine cookie wins"
    );
    assert_eq!(
        read(&fx.app, "value", &format!("{victim}; {attacker}"))
            .await
            .2,
        "\"victim\""
    );
    // At most 16 signed cookies of the name are checked (each costs a MAC
    // per key): the genuine one among them is found, one after them is not.
    let junk = |count: usize| "session=garbage.aaaa.bbbb; ".repeat(count);
    let within = format!("{}{victim}", junk(15));
    assert_eq!(read(&fx.app, "value", &within).await.2, "\"victim\"");
    let beyond = format!("{}{victim}", junk(16));
    assert_eq!(read(&fx.app, "value", &beyond).await.2, "None");
    // Values without a signature are refused before any MAC and do not count.
    let unsigned = format!("{}{victim}", "session=garbage; ".repeat(1000));
    assert_eq!(read(&fx.app, "value", &unsigned).await.2, "\"victim\"");
}

/// Server-side: the first cookie that names a *live* session is used. An id
/// the attacker made up, a badly signed one, or one of the attacker's dead
/// sessions, sent before the user's cookie, neither hides the user's session
/// nor makes the response overwrite the user's cookie with a new id. The
/// attacker's own live session sent first does win (it cannot be told apart),
/// but logging in through it moves it to a fresh id, so the attacker's copy
/// is then dead.
#[tokio::test]
async fn cookie_tossing_server_side() {
    for mode in server_modes() {
        for signed in [false, true] {
            let fx = fixture(mode, |b| b.use_signer(signed));
            let context = format!("{mode:?} signed={signed}");
            let victim = cookie_pair(&send(&fx.app, "POST", "/login/victim", None, "").await);
            let victim_value = victim.trim_start_matches("session=").to_owned();

            let made_up = SessionId::generate();
            let dead = cookie_pair(&send(&fx.app, "POST", "/set/theme", None, "x").await);
            send(&fx.app, "POST", "/logout", Some(&dead), "").await;
            assert!(!fx.is_live(&dead).await, "{context}");
            let tossed_cookies = [
                format!("session={}", made_up.as_str()),
                format!("session={}", sign_id(KEY, made_up.as_str())),
                format!("session={}", sign_id(OTHER_KEY, made_up.as_str())),
                dead,
                "session=garbage".to_owned(),
            ];
            for tossed in &tossed_cookies {
                let header = format!("{tossed}; {victim}");
                let (status, cookies, body) = read(&fx.app, "username", &header).await;
                assert_eq!(status, StatusCode::OK, "{context} {tossed}");
                assert!(cookies.is_empty(), "{context} {tossed}: {cookies:?}");
                assert_eq!(body, "\"victim\"", "{context}: {tossed} hid the session");

                let response = send(&fx.app, "POST", "/set/theme", Some(&header), "dark").await;
                assert_eq!(response.status(), StatusCode::OK, "{context} {tossed}");
                for cookie in set_cookies(response.headers()) {
                    assert!(
                        cookie.starts_with(&format!("session={victim_value};")),
                        "{context} {tossed}: the user's cookie replaced by {cookie}"
                    );
                }
                assert_eq!(read(&fx.app, "theme", &victim).await.2, "\"dark\"");
            }

            // With the signer, at most 16 values carrying a signature are
            // checked (each costs a MAC per key), as for cookie sessions;
            // without it, checking an id costs nothing and dotted junk is
            // skipped however much of it comes first.
            let junk = |count: usize| format!("{}{victim}", "session=junk.sig; ".repeat(count));
            assert_eq!(read(&fx.app, "username", &junk(15)).await.2, "\"victim\"");
            let (count, expected) = if signed {
                (16, "None")
            } else {
                (100, "\"victim\"")
            };
            assert_eq!(
                read(&fx.app, "username", &junk(count)).await.2,
                expected,
                "{context}"
            );
            assert_eq!(
                read(
                    &fx.app,
                    "username",
                    &format!("{}{victim}", "session=junk; ".repeat(1000))
                )
                .await
                .2,
                "\"victim\"",
                "{context}"
            );

            let attacker = cookie_pair(&send(&fx.app, "POST", "/set/theme", None, "evil").await);
            let header = format!("{attacker}; {victim}");
            assert_eq!(
                read(&fx.app, "theme", &header).await.2,
                "\"evil\"",
                "{context}: the first live session wins"
            );
            let login = send(&fx.app, "POST", "/login/victim", Some(&header), "").await;
            let after = cookie_pair(&login);
            assert_ne!(after, attacker, "{context}");
            assert_ne!(after, victim, "{context}");
            assert!(!fx.is_live(&attacker).await, "{context}: cycled away");
            assert_eq!(read(&fx.app, "username", &attacker).await.2, "None");
            assert_eq!(read(&fx.app, "username", &after).await.2, "\"victim\"");
        }
    }
}

/// The configuration SECURITY.md recommends against tossing (and network
/// attackers), read from the environment: a `__Host-` cookie, which browsers
/// accept only with `Secure`, `Path=/` and no `Domain`, so no other host or
/// path can set one of that name. Every `Set-Cookie` of the session, the
/// deletion included, carries those attributes.
#[tokio::test]
async fn the_recommended_configuration_sets_a_host_prefixed_cookie() {
    for mode in all_modes() {
        let builder = SessionConfigBuilder::default()
            .with_vars([
                ("SECRET_KEY", KEY),
                ("SESSION_COOKIE_NAME", "__Host-session"),
                ("SESSION_COOKIE_SECURE", "true"),
                ("SESSION_COOKIE_SAMESITE", "Lax"),
            ])
            .expect("valid settings");
        let config = builder.build().expect("config");
        let layer = match mode {
            Mode::Cookie => SessionLayer::new(config),
            _ => SessionLayer::with_store(config, Arc::new(MemoryStore::default())),
        };
        let app = routes().layer(layer);
        let login = send(&app, "POST", "/login/alice", None, "").await;
        let set = set_cookies(login.headers());
        let pair = cookie_pair(&login);
        let logout = send(&app, "POST", "/logout", Some(&pair), "").await;
        let deleted = set_cookies(logout.headers());
        for cookie in set.iter().chain(&deleted) {
            let attributes: Vec<String> = cookie
                .split(';')
                .skip(1)
                .map(|a| a.trim().to_ascii_lowercase())
                .collect();
            assert!(cookie.starts_with("__Host-session="), "{mode:?}: {cookie}");
            for expected in ["secure", "httponly", "path=/", "samesite=lax"] {
                assert!(
                    attributes.iter().any(|a| a == expected),
                    "{mode:?}: {expected} missing in {cookie}"
                );
            }
            assert!(
                !attributes.iter().any(|a| a.starts_with("domain")),
                "{mode:?}: {cookie}"
            );
        }
        assert_eq!(deleted.len(), 1, "{mode:?}");
    }
}

// ---------------------------------------------------------------------------
// Oversized and numerous cookies

/// A huge `Cookie` header, a huge session cookie, or thousands of cookies
/// give a `200` with an empty session (or the user's session, when the good
/// cookie is still found), never a 5xx or a panic. Server-side, at most four
/// well-formed ids of one request are looked up, so a request full of made-up
/// ids costs a bounded number of store calls.
#[tokio::test]
async fn oversized_and_numerous_cookies_never_fail_a_request() {
    for mode in all_modes() {
        let fx = fixture(mode, |b| b);
        let good = cookie_pair(&send(&fx.app, "POST", "/set/value", None, "kept").await);
        let huge_value = "A".repeat(1 << 20);
        let other_cookies = (0..100_000)
            .map(|i| format!("c{i}=v"))
            .collect::<Vec<_>>()
            .join("; ");
        let junk_sessions = (0..10_000)
            .map(|i| format!("session=junk{i}"))
            .collect::<Vec<_>>()
            .join("; ");
        let cases = [
            (
                "1 MiB of other cookies",
                format!("{other_cookies}; {good}"),
                true,
            ),
            (
                "a 1 MiB session cookie",
                format!("session={huge_value}"),
                false,
            ),
            (
                "a 1 MiB session cookie first",
                format!("session={huge_value}; {good}"),
                true,
            ),
            (
                "10,000 junk session cookies",
                format!("{junk_sessions}; {good}"),
                true,
            ),
        ];
        for (what, header, found) in cases {
            let (status, cookies, body) = read(&fx.app, "value", &header).await;
            assert_eq!(status, StatusCode::OK, "{mode:?}: {what}");
            assert!(cookies.is_empty(), "{mode:?}: {what}");
            let expected = if found { "\"kept\"" } else { "None" };
            assert_eq!(body, expected, "{mode:?}: {what}");
        }

        // A thousand separate Cookie headers.
        let mut request = Request::get("/get/value");
        for i in 0..1000 {
            request = request.header(header::COOKIE, format!("c{i}=v; session=x{i}"));
        }
        let request = request
            .header(header::COOKIE, HeaderValue::from_str(&good).expect("ASCII"))
            .body(Body::empty())
            .expect("request");
        let response = fx.app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{mode:?}");
        assert_eq!(text(response).await, "\"kept\"", "{mode:?}");

        if mode == Mode::Cookie {
            continue;
        }
        // Thousands of made-up, well-formed ids before the good one.
        let made_up = (0..10_000)
            .map(|_| format!("session={}", SessionId::generate().as_str()))
            .collect::<Vec<_>>()
            .join("; ");
        let loads = fx.store().loads();
        let (status, _, body) = read(&fx.app, "value", &format!("{made_up}; {good}")).await;
        assert_eq!(status, StatusCode::OK, "{mode:?}");
        assert_eq!(body, "None", "{mode:?}: only the first ids are looked up");
        assert!(
            fx.store().loads() - loads <= MAX_IDS_LOOKED_UP,
            "{mode:?}: {} loads for one request",
            fx.store().loads() - loads
        );
    }
}

/// Server-side, the cookie holds only the id, so it stays small whatever the
/// session holds. (Cookie mode logs an error naming the size of a cookie over
/// `MAX_COOKIE_SIZE`, or answers 500 with `TESSERA_REFUSE_OVERSIZED_COOKIES`:
/// tests/layer.rs, oversized_cookie_is_logged_or_refused.)
#[tokio::test]
async fn server_side_cookies_stay_small_whatever_the_session_holds() {
    for mode in server_modes() {
        for signed in [false, true] {
            let fx = fixture(mode, |b| b.use_signer(signed));
            let big = "b".repeat(256 * 1024);
            let response = send(&fx.app, "POST", "/set/value", None, &big).await;
            assert_eq!(response.status(), StatusCode::OK);
            let cookies = set_cookies(response.headers());
            assert_eq!(cookies.len(), 1);
            assert!(cookies[0].len() < 200, "{mode:?}: {}", cookies[0]);
            let pair = cookies[0].split(';').next().expect("pair").to_owned();
            assert_eq!(
                read(&fx.app, "value", &pair).await.2.len(),
                big.len() + 2,
                "{mode:?}: the data is in the store"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Secrets in Debug output and logs

/// `Debug` of keys, configurations (builder and built), codecs, layers and
/// stores never shows a secret key, a fallback key or a store URL's
/// password; what is not secret (the host) is still shown.
#[test]
fn debug_output_never_shows_secrets() {
    let key = "debug-secret-current-key-kept-out-of-debug";
    let fallback = "debug-secret-fallback-key-kept-out-of-debug";
    let password = "pa55-kept-out-of-debug";
    let secrets = [key, fallback, password];
    let check = |what: &str, output: String| {
        for secret in secrets {
            assert!(!output.contains(secret), "{what} shows {secret}: {output}");
        }
    };
    let builder = SessionConfig::builder()
        .secret_key(key)
        .secret_key_fallbacks([fallback])
        .session_type(SessionType::Memory)
        .store_url(format!(
            "postgres://app:{password}@db.internal:5432/sessions"
        ));
    let config = builder.clone().build().expect("config");
    check("SecretKey", format!("{:?}", SecretKey::from(key)));
    check("SessionConfigBuilder", format!("{builder:?}"));
    check("SessionConfigBuilder", format!("{builder:#?}"));
    check("SessionConfig", format!("{config:?}"));
    check("SessionConfig", format!("{config:#?}"));
    check("CookieCodec", format!("{:?}", config.cookie_codec()));
    check(
        "SessionLayer",
        format!("{:?}", SessionLayer::new(config.clone())),
    );
    let cookie_config = SessionConfig::builder()
        .secret_key(key)
        .secret_key_fallbacks([fallback])
        .build()
        .expect("config");
    check(
        "SessionLayer",
        format!("{:#?}", SessionLayer::new(cookie_config)),
    );
    assert!(
        format!("{config:?}").contains("db.internal"),
        "the URL is redacted, not dropped: {config:?}"
    );
    // A password pasted without percent-encoding (base64 ones hold `/`):
    // neither `Debug` nor the error that refuses the URL shows it.
    let urls = [
        "Pa55/kept?out#of@xyz",
        "Pa55@w/kept@z",
        "Pa55@w?kept@z",
        "Pa55?kept",
    ]
    .into_iter()
    .flat_map(|raw| {
        [
            format!("redis://:{raw}@cache.internal:6379/0"),
            format!("postgres://app:{raw}@db.internal:5432/sessions?application_name=a"),
            format!("postgres://db.internal/sessions?user=app&password={raw}"),
        ]
    });
    for url in urls {
        let builder = SessionConfig::builder()
            .secret_key(key)
            .session_type(SessionType::Memory)
            .store_url(url.clone());
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("Pa55") && !shown.contains("kept"),
            "{shown}"
        );
        for session_type in [SessionType::Redis, SessionType::Postgres] {
            if let Err(error) = SessionConfig::builder()
                .secret_key(key)
                .session_type(session_type)
                .store_url(url.clone())
                .build()
            {
                let shown = error.to_string();
                assert!(
                    !shown.contains("Pa55") && !shown.contains("kept"),
                    "{shown}"
                );
            }
        }
    }

    #[cfg(feature = "redis")]
    {
        let url = format!("redis://:{password}@cache.internal:6379/0");
        let store = tessera::store::RedisStore::new(&url).expect("a Redis URL");
        check("RedisStore", format!("{store:?}"));
        let flask = tessera::store::FlaskSessionRedisStore::new(
            &url,
            tessera::store::flask_format::SerializationFormat::Json,
        )
        .expect("a Redis URL");
        check("FlaskSessionRedisStore", format!("{flask:?}"));
        let config = SessionConfig::builder()
            .secret_key(key)
            .session_type(SessionType::Redis)
            .store_url(url)
            .build()
            .expect("config");
        check("SessionConfig", format!("{config:?}"));
        check("SessionLayer", format!("{:?}", SessionLayer::new(config)));
        let refused = SessionConfig::builder()
            .secret_key(key)
            .session_type(SessionType::Redis)
            .store_url(format!("redis://:{password}@cache.internal:notaport/0"))
            .build()
            .expect_err("a bad port");
        check("ConfigError", refused.to_string());
        check("ConfigError", format!("{refused:?}"));
    }
    #[cfg(feature = "postgres")]
    {
        let url = format!("postgres://app:{password}@db.internal:5432/sessions");
        let store = tessera::store::PostgresStore::new(&url).expect("a PostgreSQL URL");
        check("PostgresStore", format!("{store:?}"));
        let config = SessionConfig::builder()
            .secret_key(key)
            .session_type(SessionType::Postgres)
            .store_url(url)
            .build()
            .expect("config");
        check("SessionConfig", format!("{config:?}"));
        check("SessionLayer", format!("{:?}", SessionLayer::new(config)));
        let refused = SessionConfig::builder()
            .secret_key(key)
            .session_type(SessionType::Postgres)
            .store_url(format!("postgres://app:{password}@db.internal:notaport/x"))
            .build()
            .expect_err("a bad port");
        check("ConfigError", refused.to_string());
        check("ConfigError", format!("{refused:?}"));
    }
}

/// A process-wide subscriber at TRACE, so that events from every thread
/// (the store's worker threads included) are captured.
fn capture_logs() -> LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        logs
    })
    .clone()
}

/// Requests that log in, read, send a forged cookie, log out, and fill the
/// memory store until it evicts, logged at TRACE: the log never contains a
/// secret key, a full session id or a cookie value. It does contain the
/// refusal of the forged cookie and the evicted session's fingerprint, so the
/// capture is known to work.
#[tokio::test]
async fn logs_never_show_keys_session_ids_or_cookies() {
    let logs = capture_logs();
    let fallback = "log-test-fallback-key-0123456789abcdef";
    let mut secrets = vec![KEY.to_owned(), fallback.to_owned()];
    for mode in all_modes() {
        for signed in [false, true] {
            if mode == Mode::Cookie && signed {
                continue;
            }
            let fx = fixture(mode, |b| {
                b.secret_key_fallbacks([fallback]).use_signer(signed)
            });
            let login = send(&fx.app, "POST", "/login/alice", None, "").await;
            let cookie = cookie_pair(&login);
            let value = cookie.trim_start_matches("session=").to_owned();
            assert_eq!(read(&fx.app, "username", &cookie).await.2, "\"alice\"");
            let first = if value.starts_with('A') { "B" } else { "A" };
            let forged = format!("{first}{}", &value[1..]);
            read(&fx.app, "username", &format!("session={forged}")).await;
            let relogin = send(&fx.app, "POST", "/login/alice", Some(&cookie), "").await;
            let cycled = cookie_pair(&relogin);
            send(&fx.app, "POST", "/logout", Some(&cycled), "").await;
            for pair in [&cookie, &cycled] {
                let value = pair.trim_start_matches("session=");
                secrets.push(value.to_owned());
                if mode != Mode::Cookie {
                    secrets.push(value.split('.').next().expect("id").to_owned());
                }
            }
            secrets.push(forged);
        }
    }

    let config = SessionConfig::builder()
        .secret_key(KEY)
        .session_type(SessionType::Memory)
        .memory_max_sessions(1)
        .build()
        .expect("config");
    let app = routes().layer(SessionLayer::new(config));
    let first = cookie_pair(&send(&app, "POST", "/set/a", None, "1").await);
    let second = cookie_pair(&send(&app, "POST", "/set/a", None, "2").await);
    let ids: Vec<SessionId> = [&first, &second]
        .iter()
        .map(|pair| SessionId::parse(pair.trim_start_matches("session=")).expect("an id"))
        .collect();
    secrets.extend(ids.iter().map(|id| id.as_str().to_owned()));

    let logged = logs.contents();
    assert!(
        logged.contains("session cookie refused"),
        "the forged cookie's refusal is logged at DEBUG: {logged:.2000}"
    );
    assert!(
        ids.iter().any(|id| logged.contains(&id.fingerprint())),
        "the eviction names the session by its fingerprint: {logged:.2000}"
    );
    for secret in &secrets {
        assert!(!logged.contains(secret.as_str()), "the log shows {secret}");
    }
}
