//! The tessera demo: one axum app serving the examples of four Flask session
//! tutorials, with sessions in Flask's signed cookies (`SESSION_TYPE=cookie`),
//! in tessera's encrypted ones (`encrypted`), or server-side (`memory`,
//! `redis`, `postgres`, or `sqlite`: the binary's default).
//!
//! [`build_app`] builds the router from a [`SessionConfig`], so tests can run
//! it in-process; [`cli::run`] is what the `tessera-demo` binary does
//! (configuration from the environment, secret key file, listening, graceful
//! shutdown).
//!
//! | route | seed | what it does |
//! |---|---|---|
//! | `GET /` | 002, 003 | the page: login and pet name status, forms, the session's contents |
//! | `GET /set_session`, `/get_session`, `/delete_session` | 000 | `session["username"]` |
//! | `GET /setsession`, `/getsession`, `/popsession` | 001 | `session["Username"]` |
//! | `POST /login`, `GET /logout` | 002 | log in with a form field `username` (server-side: a fresh id, tied to the user), log out (server-side, when logged in: the session ends) |
//! | `GET /petname`, `POST /petname` | 003 | a form for `pet` (and `remember`: a permanent session) |
//! | `GET /api/session` | | the session as a JSON object |
//! | `PUT /api/session/{key}`, `DELETE /api/session/{key}` | | set a key to the JSON body, remove a key |
//! | `POST /visits` | | atomic `visits += 1`; answers the count |
//! | `POST /cart` | | atomic append of the form field `item` to `cart`; answers the cart as JSON |
//! | `GET /sessions` | | the logged-in user's sessions (server-side only; a Flask-Session login is tied to its `username` first, with a `303` back) |
//! | `POST /sessions/logout-everywhere` | | ends every session of the user (server-side only; `409` with cookies) |
//!
//! A session store that is down makes these routes answer `503` with
//! `Retry-After`; one that answers but cannot be used as configured (tables
//! changed by hand, say) or data it cannot store answer `500`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use tessera::{CookieCodec, Session, SessionConfig, SessionLayer, SessionType};

mod api;
pub mod cli;
mod devices;
mod page;
mod respond;
pub mod secret;
mod seeds;

/// What the handlers need to know about the configuration.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) info: Arc<ConfigInfo>,
}

#[derive(Debug)]
pub(crate) struct ConfigInfo {
    pub(crate) session_type: SessionType,
    pub(crate) lifetime: Duration,
    /// `TESSERA_SESSION_ABSOLUTE_LIFETIME`, server-side.
    pub(crate) absolute_lifetime: Option<Duration>,
    pub(crate) refresh_each_request: bool,
    /// `SESSION_PERMANENT`, server-side.
    pub(crate) session_permanent: bool,
    pub(crate) cookie_name: String,
    /// Cookie sessions only: the codec and the configuration, to refuse a
    /// write that would make the cookie larger than `MAX_COOKIE_SIZE`
    /// (browsers drop such cookies).
    pub(crate) cookie_limit: Option<(CookieCodec, SessionConfig)>,
    /// The Flask-Session layout's format (`SESSION_SERIALIZATION_FORMAT`),
    /// to refuse a value it cannot hold before the save at the end of the
    /// request fails.
    pub(crate) flask_format: Option<tessera::store::flask_format::SerializationFormat>,
}

/// How the page names a cookie session's cookie.
pub(crate) fn cookie_kind(session_type: SessionType) -> &'static str {
    match session_type {
        SessionType::EncryptedCookie => "encrypted cookie",
        _ => "signed cookie",
    }
}

impl ConfigInfo {
    /// In cookie mode, the size of the `Set-Cookie` the session would need
    /// now if that is over `MAX_COOKIE_SIZE` (browsers drop such cookies).
    pub(crate) fn cookie_overflow(&self, session: &Session) -> Option<usize> {
        self.overflow_of(&session.to_map())
    }

    /// [`cookie_overflow`](Self::cookie_overflow) for a session holding `data`.
    pub(crate) fn overflow_of(&self, data: &tessera::Map) -> Option<usize> {
        let (codec, config) = self.cookie_limit.as_ref()?;
        let value = codec.encode(data, SystemTime::now());
        let permanent = data
            .get(tessera::PERMANENT_KEY)
            .is_some_and(tessera::Value::is_truthy);
        let size = config.set_cookie_len(value.len(), permanent);
        let limit = config.max_cookie_size();
        (limit > 0 && size > limit).then_some(size)
    }
}

/// The demo's router, with every route wrapped in a [`SessionLayer`] for `config`.
pub fn build_app(config: SessionConfig) -> Router {
    app_with_layer(SessionLayer::new(config))
}

/// [`build_app`] around a session layer made already (to reach its store).
pub fn app_with_layer(sessions: SessionLayer) -> Router {
    app_with(sessions, None)
}

/// [`app_with_layer`], with a deadline on each request once its headers
/// are in (the binary's `--request-timeout`): a request cut off is answered
/// `408` and its connection closed. Like one whose client went away, it
/// saves nothing more, but what had reached the store stays (a write the
/// store was committing when the deadline fell, say).
pub(crate) fn app_with(sessions: SessionLayer, request_timeout: Option<Duration>) -> Router {
    let config = sessions.config().clone();
    let state = AppState {
        info: Arc::new(ConfigInfo {
            session_type: config.session_type(),
            lifetime: config.permanent_session_lifetime(),
            absolute_lifetime: config.absolute_lifetime(),
            refresh_each_request: config.refresh_each_request(),
            session_permanent: config.session_permanent(),
            cookie_name: config.cookie_name().to_owned(),
            cookie_limit: (!config.session_type().is_server_side())
                .then(|| (config.cookie_codec(), config.clone())),
            flask_format: config.serialization_format(),
        }),
    };
    let routes = Router::new()
        .route("/", get(page::index))
        // Seed 000: Flask Tutorials: Session Configuration.
        .route("/set_session", get(seeds::set_session))
        .route("/get_session", get(seeds::get_session))
        .route("/delete_session", get(seeds::delete_session))
        // Seed 001: Flask Sessions.
        .route("/setsession", get(seeds::setsession))
        .route("/getsession", get(seeds::getsession))
        .route("/popsession", get(seeds::popsession))
        // Seed 002: Flask session object.
        .route("/login", post(seeds::login))
        .route("/logout", get(seeds::logout))
        // Seed 003: Introduction to sessions.
        .route("/petname", get(page::petname_form).post(seeds::petname))
        // The session as JSON; atomic counter and cart.
        .route("/api/session", get(api::show))
        .route("/api/session/{key}", put(api::put).delete(api::delete))
        .route("/visits", post(api::visit))
        .route("/cart", post(api::add_to_cart))
        // Server-side sessions: "your sessions", log out everywhere.
        .route("/sessions", get(devices::list))
        .route(
            "/sessions/logout-everywhere",
            post(devices::logout_everywhere),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(sessions);
    // Around the routes as one service: a route's `Allow` header is added
    // outside of the layers a `Router` puts around each route, and
    // `finish_response` needs it.
    let app = Router::new().fallback_service(routes);
    let app = match request_timeout {
        Some(timeout) => app.layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        )),
        None => app,
    };
    app.layer(middleware::from_fn(paths_as_flask_reads_them))
        .layer(middleware::from_fn_with_state(
            request_timeout,
            finish_response,
        ))
}

/// Paths routed as Flask routes them: a percent-escaped letter, digit or
/// `-._~` is that character (`/get%5Fsession` is `/get_session`, as the
/// WSGI server decodes the path), and a path with repeated slashes is
/// redirected (`308`) to the one with single slashes, as werkzeug's
/// `merge_slashes` does. Other escapes (`%2F`, `%20`) stay as they are for
/// the routes to read: a key in `/api/session/{key}` is decoded once, by
/// the route.
async fn paths_as_flask_reads_them(mut request: Request, next: Next) -> Response {
    let uri = request.uri();
    let path = uri.path();
    if path.contains("//") {
        let mut merged = String::with_capacity(path.len());
        for character in path.chars() {
            if !(character == '/' && merged.ends_with('/')) {
                merged.push(character);
            }
        }
        if let Some(query) = uri.query() {
            merged.push('?');
            merged.push_str(query);
        }
        return axum::response::IntoResponse::into_response(axum::response::Redirect::permanent(
            &merged,
        ));
    }
    if let Some(decoded) = unreserved_decoded(path) {
        let mut parts = request.uri().clone().into_parts();
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{decoded}?{query}"),
            None => decoded,
        };
        if let Ok(path_and_query) = path_and_query.parse() {
            parts.path_and_query = Some(path_and_query);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    next.run(request).await
}

/// `path` with its escapes of unreserved characters (RFC 3986: letters,
/// digits, `-._~`) decoded, or `None` if it has none.
fn unreserved_decoded(path: &str) -> Option<String> {
    if !path.contains('%') {
        return None;
    }
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let unreserved = bytes
            .get(at + 1..at + 3)
            .filter(|hex| bytes[at] == b'%' && hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok())
            .filter(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(byte));
        match unreserved {
            Some(byte) => {
                decoded.push(byte);
                at += 3;
            }
            None => {
                decoded.push(bytes[at]);
                at += 1;
            }
        }
    }
    // Shorter only if an escape was decoded.
    (decoded.len() < bytes.len()).then(|| String::from_utf8(decoded).ok())?
}

/// What every response gets, in one middleware (each costs the demo's
/// every request): `OPTIONS` answered as Flask answers it, the timeout's
/// `408` explained, the headers that keep pages private, and a log line.
async fn finish_response(
    axum::extract::State(request_timeout): axum::extract::State<Option<Duration>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        options_as_in_flask(&method, &mut response);
    }
    explain_bodiless_failures(&mut response, request_timeout);
    private_and_not_sniffed(&mut response);
    tracing::info!(%method, %path, status = response.status().as_u16(), "request");
    response
}

/// Every response here may show a visitor's session: `no-store`, so that a
/// shared computer's browser does not show it again from its history or
/// cache after logging out in it (a back/forward cache may still show a page
/// again when the logout happened in another browser: Chrome keeps
/// `no-store` pages there while their cookies stay the same); `nosniff`, so that the text and JSON ones, which echo
/// session values, are never read as HTML.
fn private_and_not_sniffed(response: &mut Response) {
    use axum::http::{header, HeaderValue};
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// The failures answered with a status alone, said in words as every other
/// error here is: the session layer's after a failed save (a tower layer
/// cannot write an application's body type), 409 when the session ended
/// while the request wrote to it, 503 when the store failed, 500 when the
/// session could not be stored; and the request timeout's 408, which also
/// closes its connection, as RFC 9110 asks (hyper closes on its own only
/// when the body was left unread, not when the store was what took the
/// time).
fn explain_bodiless_failures(response: &mut Response, request_timeout: Option<Duration>) {
    use axum::body::HttpBody as _;
    use axum::http::{header, HeaderValue};
    let explanation = match (response.status(), request_timeout) {
        (StatusCode::CONFLICT, _) => "Conflict: your session ended (logged out, perhaps on \
             another device, or expired) or moved to a new id (a login in another tab) while \
             this request was using it; nothing it changed was saved. Reload and try again.\n"
            .to_owned(),
        (StatusCode::SERVICE_UNAVAILABLE, _) => {
            "Service Unavailable: the session store is unavailable; try again shortly.\n".to_owned()
        }
        (StatusCode::INTERNAL_SERVER_ERROR, _) => {
            "Internal Server Error: the session could not be saved.\n".to_owned()
        }
        (StatusCode::REQUEST_TIMEOUT, Some(timeout)) => format!(
            "Request Timeout: the request took longer than {} s (a body sent too slowly or \
             not finished, or a session store slow to answer) and was cut off.\n",
            timeout.as_secs()
        ),
        _ => return,
    };
    if response.body().size_hint().exact() != Some(0) {
        return;
    }
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.remove(header::CONTENT_LENGTH);
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    *response.body_mut() = axum::body::Body::from(explanation);
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "Not Found")
}

/// With a text, as every other error here: a browser shows an empty 405
/// as a broken page (a form's URL opened from the address bar, say).
async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> (StatusCode, String) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "Method Not Allowed: {} does not take {method} (the Allow header lists what it takes)\n",
            uri.path()
        ),
    )
}

/// Flask answers `OPTIONS` on every route itself: `200` with no body, and
/// the route's methods, `OPTIONS` among them, in `Allow`, which its `405`s
/// list too. axum's routes answer `OPTIONS` with a `405`.
fn options_as_in_flask(method: &axum::http::Method, response: &mut Response) {
    use axum::http::{header, HeaderValue, Method};
    let asked_options = method == Method::OPTIONS;
    let Some(allowed) = response
        .headers()
        .get(header::ALLOW)
        .and_then(|allow| allow.to_str().ok())
    else {
        return;
    };
    let mut methods: Vec<&str> = allowed
        .split(',')
        .map(str::trim)
        .filter(|method| !method.is_empty())
        .collect();
    if !methods.contains(&"OPTIONS") {
        methods.push("OPTIONS");
    }
    let allow = HeaderValue::from_str(&methods.join(", ")).expect("methods are tokens");
    if asked_options {
        // The 405's headers stay: the session's (a refreshed cookie, `Vary`),
        // which Flask sends for OPTIONS as for any request.
        *response.status_mut() = StatusCode::OK;
        *response.body_mut() = axum::body::Body::empty();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.remove(header::CONTENT_LENGTH);
    }
    response.headers_mut().insert(header::ALLOW, allow);
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{header, Request};
    use tessera::SameSite;
    use tower::ServiceExt as _;

    use super::*;

    /// A body that never comes.
    struct NeverEnds;

    impl axum::body::HttpBody for NeverEnds {
        type Data = axum::body::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Pending
        }
    }

    /// A request past its deadline is answered 408 in words, kept out of
    /// caches, with its connection closed; and nothing of it is saved.
    #[tokio::test]
    async fn a_request_past_its_deadline_is_explained_and_its_connection_closed() {
        let config = SessionConfig::builder()
            .secret_key("a-test-key-that-is-long-enough-0123456789")
            .session_type(SessionType::Cookie)
            .build()
            .expect("config");
        let app = app_with(SessionLayer::new(config), Some(Duration::from_secs(1)));
        let request = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::new(NeverEnds))
            .expect("a request");
        let response = app.oneshot(request).await.expect("a response");
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONNECTION], "close");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(headers.get(header::SET_COOKIE).is_none(), "{headers:?}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        assert!(
            body.starts_with(b"Request Timeout: the request took longer than 1 s"),
            "{body:?}"
        );
    }

    #[tokio::test]
    async fn the_layers_bodiless_failures_are_explained_and_the_rest_left_alone() {
        let bodiless = |status: StatusCode| {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = status;
            response
        };
        let text = |response: Response| async move {
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .expect("a body");
            String::from_utf8(bytes.to_vec()).expect("text")
        };
        let explain_session_failures = |mut response: Response| async move {
            explain_bodiless_failures(&mut response, None);
            response
        };
        let explained = explain_session_failures(bodiless(StatusCode::CONFLICT)).await;
        assert_eq!(explained.status(), StatusCode::CONFLICT);
        assert_eq!(
            explained.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert!(text(explained)
            .await
            .starts_with("Conflict: your session ended"));
        assert!(
            text(explain_session_failures(bodiless(StatusCode::SERVICE_UNAVAILABLE)).await)
                .await
                .contains("try again shortly")
        );
        // A handler's own 409 keeps its words; other statuses are untouched.
        let own =
            axum::response::IntoResponse::into_response((StatusCode::CONFLICT, "Conflict: mine\n"));
        assert_eq!(
            text(explain_session_failures(own).await).await,
            "Conflict: mine\n"
        );
        assert_eq!(
            text(explain_session_failures(bodiless(StatusCode::NO_CONTENT)).await).await,
            ""
        );
    }

    /// The size the cookie-mode routes check against is the size the layer
    /// sends: every attribute counted, `Expires` for a permanent session.
    #[tokio::test]
    async fn the_cookie_size_estimate_is_exact() {
        for configure in [
            (|builder: tessera::SessionConfigBuilder| builder) as fn(_) -> _,
            |builder| {
                builder
                    .cookie_domain("example.com")
                    .cookie_path("/a b/é")
                    .cookie_same_site(SameSite::Lax)
                    .cookie_partitioned(true)
                    .cookie_name("__Host-s")
            },
            |builder| {
                builder
                    .cookie_http_only(false)
                    .cookie_same_site(SameSite::None)
                    .cookie_secure(true)
            },
        ] {
            let config = configure(
                SessionConfig::builder()
                    .secret_key("a-test-key-that-is-long-enough-0123456789")
                    .session_type(SessionType::Cookie),
            )
            .build()
            .expect("config");
            for (request, permanent) in [
                (Request::get("/setsession").body(Body::empty()), false),
                (
                    Request::post("/petname")
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(Body::from("pet=Rex&remember=on")),
                    true,
                ),
            ] {
                let response = build_app(config.clone())
                    .oneshot(request.expect("a request"))
                    .await
                    .expect("a response");
                let set_cookie = response
                    .headers()
                    .get(header::SET_COOKIE)
                    .expect("a cookie")
                    .to_str()
                    .expect("ASCII");
                let value = set_cookie
                    .split(';')
                    .next()
                    .and_then(|pair| pair.split_once('='))
                    .expect("name=value")
                    .1;
                assert_eq!(
                    set_cookie.len(),
                    config.set_cookie_len(value.len(), permanent),
                    "{set_cookie}"
                );
            }
        }
    }
}
