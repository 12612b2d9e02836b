//! Tower middleware that opens the session from the request's cookie and
//! saves it into the response, with Flask's `open_session`/`save_session` rules.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tessera::{Session, SessionConfig, SessionLayer};
//!
//! async fn counter(session: Session) -> String {
//!     let visits: u64 = session.get("visits").ok().flatten().unwrap_or(0) + 1;
//!     session.insert("visits", visits).ok();
//!     format!("visit number {visits}")
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = SessionConfig::from_env()?; // SECRET_KEY and Flask's other names
//! let app = Router::new()
//!     .route("/", get(counter))
//!     .layer(SessionLayer::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cookie::Cookie;
use http::header::{COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use time::OffsetDateTime;
use tower_layer::Layer;
use tower_service::Service;

use crate::codec::CookieCodec;
use crate::config::{SameSite, SessionConfig, SessionType};
use crate::server::{CookieAction, ServerSettings, ServerState};
use crate::session::{Session, PERMANENT_KEY};
use crate::signing::Signer;
use crate::store::{MemoryStore, SessionId, SessionStore};
use crate::value::Value;

/// Flask-Session's salt for signed session ids.
const ID_SALT: &str = "flask-session";
/// How many ids of one request are looked up at most. A browser sends
/// several cookies of one name when they differ in path or domain, for
/// example one planted by a sibling subdomain (cookie tossing) before the
/// user's own: the first that names a live session is used, so a made-up or
/// dead id does not hide the user's session. The bound keeps a request full
/// of made-up ids from costing more than a few store calls.
const MAX_PRESENTED_IDS: usize = 4;
/// Expired records deleted per sweep statement: small enough that a write
/// queued behind one batch waits a few milliseconds at most.
const SWEEP_BATCH: usize = 64;
/// The pause between sweep batches, in which queued writes get the store's
/// write lock: sweeping is background work and may take its time.
const SWEEP_PAUSE: Duration = Duration::from_millis(2);

/// Adds a [`Session`] to every request's extensions and saves it afterwards.
#[derive(Debug, Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
}

impl SessionLayer {
    /// A layer for this configuration: signed cookies for `SESSION_TYPE=cookie`,
    /// otherwise server-side sessions in the store it names. Stores are
    /// opened lazily, so this never fails: a store that cannot be reached
    /// makes requests that use the session answer 503 until it can.
    pub fn new(config: SessionConfig) -> Self {
        let store: Option<Arc<dyn SessionStore>> = match config.session_type {
            SessionType::Cookie => None,
            SessionType::Memory => Some(Arc::new(MemoryStore::new(config.memory_max_sessions))),
            #[cfg(feature = "sqlite")]
            SessionType::Sqlite => Some(Arc::new(crate::store::SqliteStore::new(
                config.sqlite_path(),
            ))),
            #[cfg(feature = "redis")]
            SessionType::Redis => Some(match config.serialization_format {
                None => network_store(
                    crate::store::RedisStore::new(&config.network_store_url())
                        .map(|store| store.with_prefix(config.key_prefix.as_str())),
                ),
                Some(format) => network_store(
                    crate::store::FlaskSessionRedisStore::new(&config.network_store_url(), format)
                        .map(|store| store.with_prefix(config.key_prefix.as_str())),
                ),
            }),
            #[cfg(feature = "postgres")]
            SessionType::Postgres => Some(network_store(crate::store::PostgresStore::new(
                &config.network_store_url(),
            ))),
            #[cfg(not(all(feature = "redis", feature = "postgres")))]
            #[allow(unreachable_patterns)]
            SessionType::Redis | SessionType::Postgres => {
                tracing::error!(
                    "SESSION_TYPE={} needs tessera's feature of that name; using the memory store",
                    config.session_type
                );
                Some(Arc::new(MemoryStore::new(config.memory_max_sessions)))
            }
            #[cfg(not(feature = "sqlite"))]
            SessionType::Sqlite => {
                // SessionConfigBuilder::build refuses this; a config built
                // otherwise falls back to memory rather than failing requests.
                tracing::error!(
                    "SESSION_TYPE=sqlite needs tessera's `sqlite` feature; using the memory store"
                );
                Some(Arc::new(MemoryStore::new(config.memory_max_sessions)))
            }
        };
        match store {
            Some(store) => Self::with_store(config, store),
            None => Self::from_backend(config, None),
        }
    }

    /// Server-side sessions in `store`, whatever `SESSION_TYPE` says.
    pub fn with_store(config: SessionConfig, store: Arc<dyn SessionStore>) -> Self {
        let settings = ServerSettings {
            store,
            idle_secs: config.permanent_session_lifetime.as_secs(),
            absolute_secs: config.absolute_lifetime.map(|lifetime| lifetime.as_secs()),
            refresh_each_request: config.refresh_each_request,
            session_permanent: config.session_permanent,
        };
        Self::from_backend(config, Some(Arc::new(settings)))
    }

    fn from_backend(config: SessionConfig, server: Option<Arc<ServerSettings>>) -> Self {
        let backend = match server {
            None => Backend::Cookie(config.cookie_codec()),
            Some(settings) => Backend::Server {
                id_signer: config.use_signer.then(|| {
                    Signer::new(
                        &config.secret_key,
                        &config.secret_key_fallbacks,
                        ID_SALT.as_bytes(),
                    )
                }),
                settings,
            },
        };
        Self {
            shared: Arc::new(Shared {
                config,
                backend,
                sweeper: OnceLock::new(),
            }),
        }
    }

    /// The configuration this layer uses.
    pub fn config(&self) -> &SessionConfig {
        &self.shared.config
    }

    /// The server-side store, if sessions are server-side.
    pub fn store(&self) -> Option<Arc<dyn SessionStore>> {
        match &self.shared.backend {
            Backend::Cookie(_) => None,
            Backend::Server { settings, .. } => Some(settings.store.clone()),
        }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        self.shared.start_sweeper();
        let session = self.shared.open(request.headers(), SystemTime::now());
        request.extensions_mut().insert(session.clone());
        ResponseFuture {
            inner: self.inner.call(request),
            session: Some(session),
            shared: self.shared.clone(),
            saving: None,
        }
    }
}

/// A network store from its URL. `SessionConfigBuilder::build` has checked
/// the URL; should it still be refused, every request that needs the session
/// answers 503 and the reason is logged, rather than sessions silently going
/// elsewhere.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn network_store<S: SessionStore>(
    store: Result<S, crate::store::StoreError>,
) -> Arc<dyn SessionStore> {
    match store {
        Ok(store) => Arc::new(store),
        Err(error) => {
            tracing::error!(%error, "the session store cannot be used");
            Arc::new(crate::store::UnusableStore(error.to_string()))
        }
    }
}

/// A server-side save in progress.
type Saving<B> = Pin<Box<dyn Future<Output = Response<B>> + Send>>;

pin_project! {
    /// Saves the session once the inner service has produced its response,
    /// so writes made anywhere inside the layer are kept.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        session: Option<Session>,
        shared: Arc<Shared>,
        saving: Option<Saving<B>>,
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(saving) = this.saving.as_mut() {
            let response = ready!(saving.as_mut().poll(cx));
            *this.saving = None;
            return Poll::Ready(Ok(response));
        }
        let mut response = ready!(this.inner.poll(cx))?;
        if let (Some(session), Backend::Server { .. }) =
            (this.session.as_ref(), &this.shared.backend)
        {
            let session = session.clone();
            *this.session = None;
            let mut saving: Saving<B> =
                Box::pin(save_server(this.shared.clone(), session, response));
            return match saving.as_mut().poll(cx) {
                Poll::Ready(response) => Poll::Ready(Ok(response)),
                Poll::Pending => {
                    *this.saving = Some(saving);
                    Poll::Pending
                }
            };
        }
        if let Some(session) = this.session.take() {
            if let Err(oversized) =
                this.shared
                    .save(&session, response.headers_mut(), SystemTime::now())
            {
                tracing::error!("{oversized}; answering 500 because oversized cookies are refused");
                let mut refused = Response::new(B::default());
                *refused.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return Poll::Ready(Ok(refused));
            }
        }
        Poll::Ready(Ok(response))
    }
}

/// A `Set-Cookie` larger than `MAX_COOKIE_SIZE`, with refusal configured.
#[derive(Debug, thiserror::Error)]
#[error("the {name:?} cookie is too large: {size} bytes, over MAX_COOKIE_SIZE of {limit} bytes")]
pub(crate) struct OversizedCookie {
    name: String,
    size: usize,
    limit: usize,
}

/// What the response does to a cookie session's cookie.
enum CookieWrite {
    Remove,
    Set { value: String, permanent: bool },
}

/// Where sessions live.
#[derive(Debug)]
enum Backend {
    /// Signed cookies holding the data.
    Cookie(CookieCodec),
    /// Cookies holding an id (signed with Flask-Session's scheme if
    /// `SESSION_USE_SIGNER`), data in a store.
    Server {
        settings: Arc<ServerSettings>,
        id_signer: Option<Signer>,
    },
}

#[derive(Debug)]
struct Shared {
    config: SessionConfig,
    backend: Backend,
    sweeper: OnceLock<()>,
}

/// Answers the response once a server-side session is saved, or 503 if the
/// store failed: a write that was not stored is never acknowledged.
async fn save_server<B: Default>(
    shared: Arc<Shared>,
    session: Session,
    mut response: Response<B>,
) -> Response<B> {
    match crate::server::save(&session).await {
        Ok((action, accessed)) => {
            let headers = response.headers_mut();
            if accessed {
                add_vary_cookie(headers);
            }
            match action {
                CookieAction::Keep => {}
                CookieAction::Set { id, expires_at } => {
                    let value = shared.id_cookie_value(&id);
                    let expires = expires_at
                        .map(|at| OffsetDateTime::from(UNIX_EPOCH + Duration::from_secs(at)));
                    append_set_cookie(headers, cookie_header(shared.cookie(&value, expires)));
                    add_vary_cookie(headers);
                }
                CookieAction::Delete => {
                    append_set_cookie(headers, shared.removal_cookie());
                    add_vary_cookie(headers);
                }
            }
            response
        }
        Err(error @ crate::store::StoreError::Unrepresentable(_)) => {
            // The application stored something the format cannot hold:
            // retrying cannot help, so this is the application's 500.
            tracing::error!(%error, "could not save the session; answering 500");
            let mut response = Response::new(B::default());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
        Err(error) => {
            tracing::error!(%error, "could not save the session; answering 503");
            store_unavailable_response()
        }
    }
}

/// `503 Service Unavailable` with `Retry-After`, for a store that failed.
pub(crate) fn store_unavailable_response<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Deletes expired records in bounded batches, forever, until the store is
/// dropped. Each batch is a short statement, so requests are never stalled.
async fn sweep(store: Weak<dyn SessionStore>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(store) = store.upgrade() else { return };
        let mut purged = 0u64;
        loop {
            let now = crate::server::unix_now();
            match store.purge_expired(now, SWEEP_BATCH).await {
                Ok(count) => {
                    purged += count;
                    if count < SWEEP_BATCH as u64 {
                        break;
                    }
                    tokio::time::sleep(SWEEP_PAUSE).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "sweeping expired sessions failed; will retry");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::debug!(purged, "swept expired sessions");
        }
    }
}

impl Shared {
    fn start_sweeper(&self) {
        let Backend::Server { settings, .. } = &self.backend else {
            return;
        };
        self.sweeper
            .get_or_init(|| match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(sweep(
                        Arc::downgrade(&settings.store),
                        self.config.sweep_interval,
                    ));
                }
                Err(_) => tracing::warn!("no tokio runtime: expired sessions are not swept"),
            });
    }

    fn id_cookie_value(&self, id: &SessionId) -> String {
        match &self.backend {
            Backend::Server {
                id_signer: Some(signer),
                ..
            } => signer.sign_untimed(id.as_str()),
            _ => id.as_str().to_owned(),
        }
    }

    fn removal_cookie(&self) -> String {
        cookie_header(
            self.cookie("", Some(OffsetDateTime::UNIX_EPOCH))
                .max_age(cookie::time::Duration::ZERO),
        )
    }

    /// Flask's `open_session`: the first cookie of our name that verifies,
    /// else a new empty session. Server-side, the store is not asked yet:
    /// the well-formed (and, with a signer, correctly signed) ids are kept in
    /// order, and the first one naming a live session will be used.
    fn open(&self, headers: &HeaderMap, now: SystemTime) -> Session {
        let codec = match &self.backend {
            Backend::Cookie(codec) => codec,
            Backend::Server {
                settings,
                id_signer,
            } => {
                let mut had_cookie = false;
                let mut presented: Vec<SessionId> = Vec::new();
                for value in cookie_values(headers, &self.config.cookie_name) {
                    had_cookie = true;
                    let id = match id_signer {
                        Some(signer) => signer.verify_untimed(value),
                        None => Some(value),
                    };
                    let Some(id) = id.and_then(SessionId::parse) else {
                        continue;
                    };
                    if !presented.contains(&id) {
                        presented.push(id);
                    }
                    if presented.len() == MAX_PRESENTED_IDS {
                        break;
                    }
                }
                return Session::server_side(ServerState::new(
                    settings.clone(),
                    presented,
                    had_cookie,
                ));
            }
        };
        for value in cookie_values(headers, &self.config.cookie_name) {
            match codec.decode(value, now) {
                Ok(decoded) => return Session::loaded(decoded.data, decoded.signed_at),
                Err(reason) => {
                    tracing::debug!(%reason, "session cookie refused; starting an empty session")
                }
            }
        }
        Session::loaded(Default::default(), None)
    }

    /// Flask's `save_session`.
    fn save(
        &self,
        session: &Session,
        headers: &mut HeaderMap,
        now: SystemTime,
    ) -> Result<(), OversizedCookie> {
        let config = &self.config;
        let (accessed, write) = session.with_save_state(|data, modified, accessed| {
            let write = if data.is_empty() {
                modified.then_some(CookieWrite::Remove)
            } else {
                let permanent = data.get(PERMANENT_KEY).and_then(Value::as_bool) == Some(true);
                match &self.backend {
                    Backend::Cookie(codec)
                        if modified || (permanent && config.refresh_each_request) =>
                    {
                        Some(CookieWrite::Set {
                            value: codec.encode(data, now),
                            permanent,
                        })
                    }
                    _ => None,
                }
            };
            (accessed, write)
        });
        if accessed {
            add_vary_cookie(headers);
        }
        let (value, permanent) = match write {
            None => return Ok(()),
            Some(CookieWrite::Remove) => {
                append_set_cookie(headers, self.removal_cookie());
                add_vary_cookie(headers);
                return Ok(());
            }
            Some(CookieWrite::Set { value, permanent }) => (value, permanent),
        };
        let expires =
            permanent.then(|| OffsetDateTime::from(now) + config.permanent_session_lifetime);
        let header = cookie_header(self.cookie(&value, expires));
        if config.max_cookie_size > 0 && header.len() > config.max_cookie_size {
            let oversized = OversizedCookie {
                name: config.cookie_name.clone(),
                size: header.len(),
                limit: config.max_cookie_size,
            };
            if config.refuse_oversized_cookies {
                return Err(oversized);
            }
            tracing::error!("{oversized}; browsers may silently ignore it and lose the session");
        }
        append_set_cookie(headers, header);
        add_vary_cookie(headers);
        Ok(())
    }

    fn cookie<'c>(
        &'c self,
        value: &'c str,
        expires: Option<OffsetDateTime>,
    ) -> cookie::CookieBuilder<'c> {
        let config = &self.config;
        let mut builder = Cookie::build((config.cookie_name.as_str(), value))
            .path(config.cookie_path.as_str())
            .http_only(config.cookie_http_only)
            .secure(config.cookie_secure());
        if let Some(domain) = &config.cookie_domain {
            builder = builder.domain(domain.as_str());
        }
        if let Some(same_site) = config.cookie_same_site {
            builder = builder.same_site(match same_site {
                SameSite::Strict => cookie::SameSite::Strict,
                SameSite::Lax => cookie::SameSite::Lax,
                SameSite::None => cookie::SameSite::None,
            });
        }
        if config.cookie_partitioned {
            builder = builder.partitioned(true);
        }
        if let Some(expires) = expires {
            builder = builder.expires(expires);
        }
        builder
    }
}

/// Values of every cookie named `name`, across all `Cookie` headers, in order.
fn cookie_values<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(COOKIE)
        .iter()
        // Pair by pair, not `to_str` on the header: browsers send other
        // cookies' UTF-8 as it is, and that must not hide the session cookie.
        .flat_map(|header| header.as_bytes().split(|byte| *byte == b';'))
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .filter_map(move |pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| {
                let value = value.trim();
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value)
            })
        })
}

/// The `Set-Cookie` value, written once into a string of the right size.
fn cookie_header(cookie: cookie::CookieBuilder<'_>) -> String {
    use std::fmt::Write as _;
    let cookie = cookie.build();
    let mut header = String::with_capacity(cookie.value().len() + 160);
    let _ = write!(header, "{cookie}");
    header
}

fn append_set_cookie(headers: &mut HeaderMap, cookie: String) {
    // From the String itself: no copy.
    match HeaderValue::try_from(cookie) {
        Ok(value) => {
            headers.append(SET_COOKIE, value);
        }
        Err(_) => tracing::error!("session cookie is not a valid header value; not sent"),
    }
}

/// Adds `Cookie` to `Vary` once, merging into whatever `Vary` already says.
fn add_vary_cookie(headers: &mut HeaderMap) {
    if !headers.contains_key(VARY) {
        headers.insert(VARY, HeaderValue::from_static("Cookie"));
        return;
    }
    let existing: Vec<String> = headers
        .get_all(VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .collect();
    if existing
        .iter()
        .any(|token| token == "*" || token.eq_ignore_ascii_case("cookie"))
    {
        return;
    }
    let merged = existing
        .into_iter()
        .chain(std::iter::once("Cookie".to_owned()))
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&merged) {
        headers.insert(VARY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_is_merged_once() {
        let mut headers = HeaderMap::new();
        add_vary_cookie(&mut headers);
        add_vary_cookie(&mut headers);
        assert_eq!(headers.get_all(VARY).iter().collect::<Vec<_>>(), ["Cookie"]);

        let mut headers = HeaderMap::new();
        headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
        headers.append(VARY, HeaderValue::from_static("Origin"));
        add_vary_cookie(&mut headers);
        assert_eq!(
            headers.get_all(VARY).iter().collect::<Vec<_>>(),
            ["Accept-Encoding, Origin, Cookie"]
        );

        let mut headers = HeaderMap::new();
        headers.insert(VARY, HeaderValue::from_static("accept, COOKIE"));
        add_vary_cookie(&mut headers);
        assert_eq!(
            headers.get(VARY).map(|v| v.as_bytes()),
            Some(&b"accept, COOKIE"[..])
        );
    }

    #[test]
    fn finds_every_cookie_with_the_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; session=x; sessionx=no"),
        );
        headers.append(COOKIE, HeaderValue::from_static("session=\"y\";b=2"));
        assert_eq!(
            cookie_values(&headers, "session").collect::<Vec<_>>(),
            ["x", "y"]
        );
    }

    #[test]
    fn non_ascii_cookies_do_not_hide_the_session() {
        // Found by fuzzing: one non-ASCII byte anywhere made the whole
        // header unreadable, so a UTF-8 cookie set by a page logged users out.
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_bytes(b"name=Jos\xc3\xa9; session=x; raw=\xff").expect("obs-text"),
        );
        headers.append(
            COOKIE,
            HeaderValue::from_bytes(b"session=\xe9t\xe9; session=y").expect("obs-text"),
        );
        assert_eq!(
            cookie_values(&headers, "session").collect::<Vec<_>>(),
            ["x", "y"]
        );
    }
}
