//! One application, served by either web stack over real HTTP, in any
//! session type: what the shared behaviour tests run against.
//!
//! Routes are written once, as functions of the [`Session`]; [`serve`]
//! mounts them on axum (through `SessionLayer`) or on actix-web (through
//! `tessera::actix::SessionMiddleware`) and answers on a loopback port, so a
//! test sees exactly what a client of either stack would.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tessera::{
    MemoryStore, Session, SessionConfig, SessionConfigBuilder, SessionStore, SessionType,
};

/// The web stacks tessera integrates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stack {
    Axum,
    Actix,
}

/// Where the sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Signed,
    Encrypted,
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "redis")]
    Redis,
    #[cfg(feature = "postgres")]
    Postgres,
}

impl Mode {
    pub(crate) fn is_server_side(self) -> bool {
        !matches!(self, Mode::Signed | Mode::Encrypted)
    }
}

/// What a route answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn text(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub(crate) fn status(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            ..Self::text(body)
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

type BoxReply = Pin<Box<dyn Future<Output = Reply> + Send>>;
type Handler = Arc<dyn Fn(Session, String) -> BoxReply + Send + Sync>;

#[derive(Clone)]
enum Target {
    /// A route that never takes the session.
    Plain(&'static str),
    /// A route that takes the session and the request body.
    Session(Handler),
}

/// One route of the test application.
#[derive(Clone)]
pub(crate) struct Route {
    method: Method,
    path: &'static str,
    target: Target,
}

impl Route {
    /// `method path`, answered by `handler` with the session and the body.
    pub(crate) fn new<F, Fut>(method: Method, path: &'static str, handler: F) -> Self
    where
        F: Fn(Session, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        Self {
            method,
            path,
            target: Target::Session(Arc::new(move |session, body| {
                Box::pin(handler(session, body))
            })),
        }
    }

    /// `GET path` with a synchronous handler of the session.
    pub(crate) fn get(
        path: &'static str,
        handler: impl Fn(&Session) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let handler = Arc::new(handler);
        Self::new(Method::GET, path, move |session, _body| {
            let handler = handler.clone();
            async move { handler(&session) }
        })
    }

    /// `GET path` answering `body`, without the session.
    pub(crate) fn plain(path: &'static str, body: &'static str) -> Self {
        Self {
            method: Method::GET,
            path,
            target: Target::Plain(body),
        }
    }
}

/// A response as the client saw it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    /// Every `Set-Cookie` header.
    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    }

    /// The `name=value` part of the only `Set-Cookie`.
    pub(crate) fn cookie_pair(&self) -> String {
        let cookies = self.set_cookies();
        assert_eq!(cookies.len(), 1, "expected one Set-Cookie: {cookies:?}");
        cookies[0].split(';').next().expect("pair").to_owned()
    }

    /// Every `Vary` header.
    pub(crate) fn vary(&self) -> Vec<String> {
        self.headers
            .get_all(http::header::VARY)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    }
}

/// A running application; stops when dropped.
pub(crate) struct Server {
    base: String,
    client: reqwest::Client,
    stop: Option<Box<dyn FnOnce() + Send + Sync>>,
    _store_guard: Option<StoreGuard>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

impl Server {
    /// Sends one request, with the `Cookie` header if given.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: &str,
    ) -> Answer {
        let cookie = cookie.map(|c| HeaderValue::from_str(c).expect("a header value"));
        self.send_raw(method, path, cookie, body).await
    }

    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        self.send("GET", path, cookie, "").await
    }

    pub(crate) async fn post(&self, path: &str, cookie: Option<&str>, body: &str) -> Answer {
        self.send("POST", path, cookie, body).await
    }

    /// Sends one request with any `Cookie` header bytes.
    pub(crate) async fn send_raw(
        &self,
        method: &str,
        path: &str,
        cookie: Option<HeaderValue>,
        body: &str,
    ) -> Answer {
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .body(body.to_owned());
        if let Some(cookie) = cookie {
            request = request.header(http::header::COOKIE, cookie);
        }
        let response = request.send().await.expect("the server answers");
        Answer {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("a body"),
        }
    }
}

/// Keeps a mode's store state alive for the server's life, and cleans up.
// Only the SQLite mode keeps state of its own (its directory).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) enum StoreGuard {
    Dir(PathBuf),
}

impl Drop for StoreGuard {
    fn drop(&mut self) {
        match self {
            StoreGuard::Dir(path) => {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}

/// The session type `mode` names, on `builder`, and the store for
/// server-side modes.
fn sessions(
    mode: Mode,
    builder: SessionConfigBuilder,
) -> (
    SessionConfig,
    Option<Arc<dyn SessionStore>>,
    Option<StoreGuard>,
) {
    let session_type = match mode {
        Mode::Signed => SessionType::Cookie,
        Mode::Encrypted => SessionType::EncryptedCookie,
        _ => SessionType::Memory,
    };
    let config = builder
        .session_type(session_type)
        .build()
        .expect("a valid configuration");
    let (store, guard): (Option<Arc<dyn SessionStore>>, Option<StoreGuard>) = match mode {
        Mode::Signed | Mode::Encrypted => (None, None),
        Mode::Memory => (Some(Arc::new(MemoryStore::default())), None),
        #[cfg(feature = "sqlite")]
        Mode::Sqlite => {
            let dir = std::env::temp_dir().join(format!(
                "tessera-stack-{}",
                tessera::SessionId::generate().fingerprint()
            ));
            std::fs::create_dir_all(&dir).expect("a temporary directory");
            let store = tessera::store::SqliteStore::new(dir.join("sessions.db"));
            (Some(Arc::new(store)), Some(StoreGuard::Dir(dir)))
        }
        #[cfg(feature = "redis")]
        Mode::Redis => {
            let prefix = format!("stack-{}:", tessera::SessionId::generate().fingerprint());
            let store = tessera::store::RedisStore::new(&service_url("TESSERA_TEST_REDIS_URL"))
                .expect("a Redis URL")
                .with_prefix(&prefix);
            (Some(Arc::new(store)), None)
        }
        #[cfg(feature = "postgres")]
        Mode::Postgres => {
            let store =
                tessera::store::PostgresStore::new(&service_url("TESSERA_TEST_POSTGRES_URL"))
                    .expect("a PostgreSQL URL");
            (Some(Arc::new(store)), None)
        }
    };
    (config, store, guard)
}

/// Fails, rather than skips, when the servers were not started.
#[cfg(any(feature = "redis", feature = "postgres"))]
fn service_url(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: start the servers with \
             `eval \"$(scripts/services.sh start)\"` or run scripts/test.sh"
        )
    })
}

/// Serves `routes` with `stack`, sessions configured by `builder` in `mode`.
pub(crate) async fn serve(
    stack: Stack,
    mode: Mode,
    builder: SessionConfigBuilder,
    routes: Vec<Route>,
) -> Server {
    let (config, store, guard) = sessions(mode, builder);
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let stop: Box<dyn FnOnce() + Send + Sync> = match stack {
        Stack::Axum => axum_server(config, store, routes, listener),
        Stack::Actix => actix_server(config, store, routes, listener),
    };
    Server {
        base,
        client: reqwest::Client::builder()
            .no_proxy()
            // Well within actix-web's 5 s keep-alive: a connection reused
            // just as the server closes it fails the request (a test that
            // waits on Python between requests on a busy machine did).
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("a client"),
        stop: Some(stop),
        _store_guard: guard,
    }
}

fn axum_server(
    config: SessionConfig,
    store: Option<Arc<dyn SessionStore>>,
    routes: Vec<Route>,
    listener: TcpListener,
) -> Box<dyn FnOnce() + Send + Sync> {
    use axum::response::IntoResponse;
    use axum::routing::{on, MethodFilter};

    let mut router = axum::Router::new();
    for route in routes {
        let filter = MethodFilter::try_from(route.method.clone()).expect("a routable method");
        router = match route.target {
            Target::Plain(body) => {
                router.route(route.path, on(filter, move || async move { body }))
            }
            Target::Session(handler) => router.route(
                route.path,
                on(filter, move |session: Session, body: String| {
                    let handler = handler.clone();
                    async move {
                        let reply = handler(session, body).await;
                        let mut headers = HeaderMap::new();
                        for (name, value) in reply.headers {
                            headers.append(
                                HeaderName::from_static(name),
                                HeaderValue::from_str(&value).expect("a header value"),
                            );
                        }
                        (
                            StatusCode::from_u16(reply.status).expect("a status"),
                            headers,
                            reply.body,
                        )
                            .into_response()
                    }
                }),
            ),
        };
    }
    let layer = match store {
        Some(store) => tessera::SessionLayer::with_store(config, store),
        None => tessera::SessionLayer::new(config),
    };
    let router = router.layer(layer);
    listener.set_nonblocking(true).expect("non-blocking");
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    let task = tokio::spawn(async move { axum::serve(listener, router).await });
    Box::new(move || task.abort())
}

fn actix_server(
    config: SessionConfig,
    store: Option<Arc<dyn SessionStore>>,
    routes: Vec<Route>,
    listener: TcpListener,
) -> Box<dyn FnOnce() + Send + Sync> {
    use actix_web::{web, App, HttpResponse, HttpServer};

    let middleware = match store {
        Some(store) => tessera::actix::SessionMiddleware::with_store(config, store),
        None => tessera::actix::SessionMiddleware::new(config),
    };
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let mut app = App::new().wrap(middleware.clone());
                for route in routes.clone() {
                    let method =
                        actix_web::http::Method::from_bytes(route.method.as_str().as_bytes())
                            .expect("a method");
                    app = match route.target {
                        Target::Plain(body) => app.route(
                            route.path,
                            web::method(method).to(move || async move { body }),
                        ),
                        Target::Session(handler) => app.route(
                            route.path,
                            web::method(method).to(move |session: Session, body: String| {
                                let handler = handler.clone();
                                async move {
                                    let reply = handler(session, body).await;
                                    let status =
                                        actix_web::http::StatusCode::from_u16(reply.status)
                                            .expect("a status");
                                    let mut response = HttpResponse::build(status);
                                    for (name, value) in reply.headers {
                                        response.append_header((name, value));
                                    }
                                    response.body(reply.body)
                                }
                            }),
                        ),
                    };
                }
                app
            })
            .workers(2)
            .disable_signals()
            .shutdown_timeout(0)
            .listen(listener)
            .expect("actix-web listens")
            .run();
            handle_tx.send(server.handle()).expect("the test waits");
            server.await
        })
    });
    let handle = handle_rx.recv().expect("actix-web started");
    Box::new(move || {
        // The command is sent at once; completion need not be awaited.
        drop(handle.stop(false));
    })
}
