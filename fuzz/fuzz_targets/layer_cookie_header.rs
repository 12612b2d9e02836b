//! A whole request through `SessionLayer` with a hostile `Cookie` header:
//! signed cookies, server-side sessions in the memory store, and
//! server-side sessions with Flask-Session's signed ids. The handler reads
//! and changes the session as an application would. No answer may be a 500
//! or panic, and a cookie the layer sends back must decode to the session
//! the handler left.
//!
//! The first input byte picks the backend and how the rest becomes the
//! header: as it is, or wrapped into a validly signed cookie (or id) so the
//! parsers behind the signature see it.
#![no_main]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use tessera::{
    CookieCodec, Map, Record, Session, SessionConfig, SessionId, SessionLayer, SessionService,
    SessionStore, SessionType,
};
use tessera_fuzz::{sign_untimed, signed_json_cookie, ID_SALT, KEY};
use tokio::runtime::Runtime;
use tower_layer::Layer as _;
use tower_service::Service;

/// What the handler saw, passed back beside the response.
#[derive(Clone)]
struct Seen {
    new: bool,
    session: Session,
}

/// An application handler: loads the session, reads it every way the API
/// offers, and writes to a session the visitor brought.
#[derive(Clone)]
struct App;

impl Service<Request<()>> for App {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        Box::pin(async move {
            let session = request
                .extensions()
                .get::<Session>()
                .cloned()
                .expect("the layer adds the session");
            if session.load().await.is_err() {
                let mut response = Response::new(String::new());
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                return Ok(response);
            }
            let mut body = String::new();
            for key in session.keys() {
                if let Some(value) = session.get_value(&key) {
                    body.push_str(&value.to_tagged_json());
                    body.push_str(&value.to_json().to_string());
                }
            }
            let _ = session.get::<String>("user");
            let _ = session.get_bytes("b");
            let _ = session.get_uuid("u");
            let _ = session.get_datetime("d");
            let permanent = session.permanent();
            let flashes = session.take_flashes();
            let new = session.is_new();
            if !new {
                // Only a session the visitor brought is written, so the
                // memory stores keep just the seeded sessions.
                let visits: u64 = session.get("visits").ok().flatten().unwrap_or(0);
                let _ = session.insert("visits", visits.wrapping_add(1));
                session.flash(format!("{} flashes, permanent: {permanent}", flashes.len()));
            }
            let mut response = Response::new(body);
            response.extensions_mut().insert(Seen { new, session });
            Ok(response)
        })
    }
}

struct Fixture {
    runtime: Runtime,
    cookie: SessionService<App>,
    codec: CookieCodec,
    memory: SessionService<App>,
    signed_ids: SessionService<App>,
    /// A live session in both memory stores.
    known_id: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
        let config = |session_type, use_signer| {
            SessionConfig::builder()
                .secret_key(KEY)
                .session_type(session_type)
                .use_signer(use_signer)
                .build()
                .expect("a valid configuration")
        };
        let cookie_config = config(SessionType::Cookie, false);
        let codec = cookie_config.cookie_codec();
        let known = SessionId::generate();
        let now = unix_now();
        let record = Record {
            data: Map::from([("user".to_owned(), "alice".into())]),
            user_id: Some("alice".to_owned()),
            created_at: now,
            expires_at: now + 365 * 24 * 3600,
            absolute_expires_at: None,
        };
        let server = |use_signer| {
            let layer = SessionLayer::new(config(SessionType::Memory, use_signer));
            let store: Arc<dyn SessionStore> = layer.store().expect("server-side");
            let created = runtime
                .block_on(store.create(&known, &record))
                .expect("the memory store works");
            assert!(created);
            layer.layer(App)
        };
        Fixture {
            cookie: SessionLayer::new(cookie_config).layer(App),
            codec,
            memory: server(false),
            signed_ids: server(true),
            known_id: known.as_str().to_owned(),
            runtime,
        }
    })
}

/// How the input becomes a request.
enum Mode {
    /// Signed cookies; the header is the input.
    Cookie,
    /// Signed cookies; the header carries a valid cookie made from the input as JSON.
    CookieJson { compressed: bool },
    /// Memory store; the header is the input, after the known id when `known`.
    Memory { known: bool },
    /// Memory store with signed ids; the header is the input, after the
    /// signed known id when `known`.
    SignedIds { known: bool },
    /// Memory store with signed ids; the header carries the input as a validly signed id.
    SignedInput,
}

fn mode(byte: u8) -> Mode {
    match byte % 8 {
        0 => Mode::Cookie,
        1 => Mode::CookieJson { compressed: false },
        2 => Mode::CookieJson { compressed: true },
        3 => Mode::Memory { known: false },
        4 => Mode::Memory { known: true },
        5 => Mode::SignedIds { known: false },
        6 => Mode::SignedIds { known: true },
        _ => Mode::SignedInput,
    }
}

fn set_cookie_value(response: &Response<String>) -> Option<String> {
    let mut headers = response.headers().get_all(SET_COOKIE).iter();
    let header = headers.next()?.to_str().expect("an ASCII Set-Cookie");
    assert!(headers.next().is_none(), "more than one Set-Cookie");
    let pair = header.split(';').next().unwrap_or_default();
    let value = pair.strip_prefix("session=").expect("the session cookie");
    Some(value.to_owned())
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let mode = mode(first);
    let header: Vec<u8> = match mode {
        Mode::Cookie | Mode::Memory { known: false } | Mode::SignedIds { known: false } => {
            rest.to_vec()
        }
        Mode::Memory { known: true } => {
            [format!("session={}; ", fixture.known_id).as_bytes(), rest].concat()
        }
        Mode::SignedIds { known: true } => {
            let id = sign_untimed(&fixture.known_id, ID_SALT);
            [format!("session={id}; ").as_bytes(), rest].concat()
        }
        Mode::CookieJson { compressed } => {
            let Ok(json) = std::str::from_utf8(rest) else {
                return;
            };
            let cookie = signed_json_cookie(json, compressed, unix_now());
            format!("session={cookie}").into_bytes()
        }
        Mode::SignedInput => {
            let Ok(id) = std::str::from_utf8(rest) else {
                return;
            };
            format!("session={}", sign_untimed(id, ID_SALT)).into_bytes()
        }
    };
    let Ok(header) = HeaderValue::from_bytes(&header) else {
        return;
    };
    let mut service = match mode {
        Mode::Cookie | Mode::CookieJson { .. } => fixture.cookie.clone(),
        Mode::Memory { .. } => fixture.memory.clone(),
        Mode::SignedIds { .. } | Mode::SignedInput => fixture.signed_ids.clone(),
    };
    let mut request = Request::new(());
    request.headers_mut().insert(COOKIE, header);
    let response = fixture
        .runtime
        .block_on(async move { service.call(request).await })
        .expect("infallible");
    // Not a 500 (nor a 503: the memory store never fails).
    assert_eq!(response.status(), StatusCode::OK);
    let seen = response
        .extensions()
        .get::<Seen>()
        .cloned()
        .expect("the handler ran");
    match mode {
        Mode::Cookie | Mode::CookieJson { .. } => {
            let cookie = set_cookie_value(&response);
            if seen.new {
                assert_eq!(
                    cookie, None,
                    "a cookie for a session the handler left alone"
                );
            } else {
                let cookie = cookie.expect("a changed session is sent back");
                let decoded = fixture
                    .codec
                    .decode(&cookie, SystemTime::now())
                    .expect("the layer's own cookie decodes");
                assert_eq!(decoded.data, seen.session.to_map());
            }
        }
        Mode::Memory { known: true } | Mode::SignedIds { known: true } => {
            assert!(!seen.new, "the known session was not loaded");
            assert_eq!(
                seen.session.get::<String>("user").ok().flatten().as_deref(),
                Some("alice")
            );
        }
        Mode::Memory { known: false } | Mode::SignedIds { known: false } | Mode::SignedInput => {}
    }
});
