//! `bench-server`: one route, served by one of the benchmarked stacks.
//!
//! `GET /` reads the string `user` from the session (absent is fine),
//! increments the integer `counter` in it (absent counts as 0) and answers
//! `200` with the new value as plain text. The bare servers have no session:
//! they increment a process-wide counter instead.
//!
//! The tokio runtime (or actix-web's workers) gets exactly `--threads` worker
//! threads, so every server runs on the same number of threads. Once bound,
//! the server prints `listening on http://127.0.0.1:PORT` on stdout and
//! serves until it is killed. A store that cannot be reached at start-up is
//! an error (a message on stderr, a non-zero exit), not a server that
//! answers 503.

use std::io::Write as _;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderValue, StatusCode};
use axum::routing::get;
use axum::Router;
use tessera::{SessionConfig, SessionId, SessionLayer, SessionType};

use crate::targets::ServerKind;

/// How long a store may take to answer the start-up probe.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `bench-server` command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bench-server",
    about = "Serve GET / (read `user`, increment `counter` in the session) with one of the \
             benchmarked session stacks"
)]
pub struct ServerArgs {
    /// Which stack to serve with.
    #[arg(long, value_enum)]
    pub server: ServerKind,
    /// The port to listen on, on 127.0.0.1 (0 picks a free one).
    #[arg(long)]
    pub port: u16,
    /// Worker threads: the tokio runtime's, or actix-web's workers.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
    /// The store: redis://HOST:PORT/DB, postgres://USER@HOST:PORT/DB, or
    /// sqlite:///absolute/path.db (default for SQLite: a file in a new
    /// directory under the system's temporary directory). Required for the
    /// Redis and PostgreSQL servers.
    #[arg(long, value_name = "URL")]
    pub store_url: Option<String>,
    /// The prefix of every Redis key (tessera, actix-session; tower-sessions'
    /// Redis store has no prefix and uses bare session ids).
    #[arg(long, default_value = "tessera-bench:")]
    pub key_prefix: String,
}

/// Why `bench-server` could not serve: a message for stderr.
#[derive(Debug)]
pub struct ServerError(String);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

fn fail(message: impl Into<String>) -> ServerError {
    ServerError(message.into())
}

/// Serves until killed; returns only on a start-up (or server) error.
pub fn run(args: ServerArgs) -> Result<(), ServerError> {
    match args.server {
        ServerKind::ActixBare
        | ServerKind::ActixCookie
        | ServerKind::ActixRedis
        | ServerKind::TesseraActixCookie
        | ServerKind::TesseraActixRedis => actix::run(&args),
        _ => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(usize::from(args.threads))
                .enable_all()
                .build()
                .map_err(|error| fail(format!("cannot start the tokio runtime: {error}")))?;
            runtime.block_on(serve_axum(&args))
        }
    }
}

/// Prints the line the orchestrator (or a person) waits for.
fn announce(port: u16) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on http://127.0.0.1:{port}");
    let _ = stdout.flush();
}

fn required_url<'a>(args: &'a ServerArgs, what: &str) -> Result<&'a str, ServerError> {
    args.store_url.as_deref().ok_or_else(|| {
        fail(format!(
            "--server {} needs --store-url with the {what} URL",
            args.server
        ))
    })
}

/// `--store-url`, or a new SQLite file under the temporary directory.
fn sqlite_url(args: &ServerArgs, file: &str) -> Result<String, ServerError> {
    if let Some(url) = &args.store_url {
        return Ok(url.clone());
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("tessera-bench-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|error| fail(format!("cannot create {}: {error}", dir.display())))?;
    let path = dir.join(file);
    let path = path
        .to_str()
        .ok_or_else(|| fail(format!("{} is not UTF-8", path.display())))?;
    Ok(format!("sqlite://{path}"))
}

static BARE_COUNTER: AtomicU64 = AtomicU64::new(0);

fn bare_increment() -> String {
    (BARE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1).to_string()
}

async fn serve_axum(args: &ServerArgs) -> Result<(), ServerError> {
    let app = match args.server {
        ServerKind::AxumBare => Router::new().route("/", get(axum_bare)),
        ServerKind::AxumHeaders => Router::new().route("/", get(axum_headers)),
        ServerKind::TesseraCookie
        | ServerKind::TesseraEncrypted
        | ServerKind::TesseraMemory
        | ServerKind::TesseraSqlite
        | ServerKind::TesseraRedis
        | ServerKind::TesseraPostgres => tessera_app(args).await?,
        ServerKind::TowerMemory
        | ServerKind::TowerSqlite
        | ServerKind::TowerRedis
        | ServerKind::TowerPostgres => tower::app(args).await?,
        ServerKind::ActixBare
        | ServerKind::ActixCookie
        | ServerKind::ActixRedis
        | ServerKind::TesseraActixCookie
        | ServerKind::TesseraActixRedis => {
            return Err(fail("actix servers do not run on axum"));
        }
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|error| fail(format!("cannot listen on 127.0.0.1:{}: {error}", args.port)))?;
    let port = listener
        .local_addr()
        .map_err(|error| fail(format!("cannot read the bound address: {error}")))?
        .port();
    announce(port);
    axum::serve(listener, app)
        .await
        .map_err(|error| fail(format!("server error: {error}")))
}

async fn axum_bare() -> String {
    bare_increment()
}

/// A `Set-Cookie` as long as the one `tessera-cookie` answers with (a one-digit
/// counter, a timestamp, the signature), which comes back in every request.
const FIXED_SET_COOKIE: &str =
    "session=eyJjb3VudGVyIjoyfQ.aw2-7w.H7d4z4oZF1XQxNRAU3aeKY-hjWQ; HttpOnly; Path=/";

async fn axum_headers() -> ([(header::HeaderName, HeaderValue); 2], String) {
    (
        [
            (
                header::SET_COOKIE,
                HeaderValue::from_static(FIXED_SET_COOKIE),
            ),
            (header::VARY, HeaderValue::from_static("Cookie")),
        ],
        bare_increment(),
    )
}

/// The tessera servers on axum: the layer built from a `SessionConfig`, as an
/// application would, and a probe of the store before listening.
async fn tessera_app(args: &ServerArgs) -> Result<Router, ServerError> {
    let (config, server_side) = tessera_config(args)?;
    let layer = SessionLayer::new(config);
    probe_store(layer.store()).await?;
    let router = if server_side {
        Router::new().route("/", get(tessera_server_side))
    } else {
        Router::new().route("/", get(tessera_cookie))
    };
    Ok(router.layer(layer))
}

/// The configuration of a tessera server, and whether it is server-side.
fn tessera_config(args: &ServerArgs) -> Result<(SessionConfig, bool), ServerError> {
    let builder = SessionConfig::builder().secret_key(crate::SECRET_KEY);
    let (builder, server_side) = match args.server {
        ServerKind::TesseraCookie | ServerKind::TesseraActixCookie => {
            (builder.session_type(SessionType::Cookie), false)
        }
        ServerKind::TesseraEncrypted => (builder.session_type(SessionType::EncryptedCookie), false),
        ServerKind::TesseraMemory => (builder.session_type(SessionType::Memory), true),
        ServerKind::TesseraSqlite => (
            builder
                .session_type(SessionType::Sqlite)
                .store_url(sqlite_url(args, "tessera.db")?),
            true,
        ),
        ServerKind::TesseraRedis | ServerKind::TesseraActixRedis => (
            builder
                .session_type(SessionType::Redis)
                .store_url(required_url(args, "Redis")?)
                .key_prefix(args.key_prefix.as_str()),
            true,
        ),
        ServerKind::TesseraPostgres => (
            builder
                .session_type(SessionType::Postgres)
                .store_url(required_url(args, "PostgreSQL")?),
            true,
        ),
        other => return Err(fail(format!("{other} is not a tessera server"))),
    };
    let config = builder
        .build()
        .map_err(|error| fail(format!("bad tessera configuration: {error}")))?;
    Ok((config, server_side))
}

/// Stores open lazily; a benchmark wants an unreachable one now. Loading an
/// id that does not exist also creates SQL tables.
async fn probe_store(
    store: Option<std::sync::Arc<dyn tessera::SessionStore>>,
) -> Result<(), ServerError> {
    let Some(store) = store else {
        return Ok(());
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let id = SessionId::generate();
    match tokio::time::timeout(STORE_PROBE_TIMEOUT, store.load(&id, now)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(fail(format!("cannot reach the session store: {error}"))),
        Err(_) => Err(fail(format!(
            "the session store did not answer within {STORE_PROBE_TIMEOUT:?}"
        ))),
    }
}

type Answer = Result<String, (StatusCode, String)>;

fn session_error(status: StatusCode, error: impl std::fmt::Display) -> (StatusCode, String) {
    (status, format!("session error: {error}"))
}

/// Cookie sessions: read, add one, write back (all within this request).
async fn tessera_cookie(session: tessera::Session) -> Answer {
    let _user: Option<String> = session
        .get("user")
        .map_err(|error| session_error(StatusCode::INTERNAL_SERVER_ERROR, error))?;
    let counter: u64 = session
        .get("counter")
        .map_err(|error| session_error(StatusCode::INTERNAL_SERVER_ERROR, error))?
        .unwrap_or(0)
        + 1;
    session
        .insert("counter", counter)
        .map_err(|error| session_error(StatusCode::INTERNAL_SERVER_ERROR, error))?;
    Ok(counter.to_string())
}

/// Server-side sessions: tessera's atomic increment in the store.
async fn tessera_server_side(session: tessera::Session) -> Answer {
    let _user: Option<String> = session
        .get("user")
        .map_err(|error| session_error(StatusCode::INTERNAL_SERVER_ERROR, error))?;
    let counter = session
        .increment("counter", 1)
        .await
        .map_err(|error| session_error(StatusCode::SERVICE_UNAVAILABLE, error))?;
    Ok(counter.to_string())
}

/// tower-sessions 0.14 with its memory, SQLite (sqlx) and Redis (fred) stores.
mod tower {
    use super::*;

    use tower_sessions::{MemoryStore, SessionManagerLayer, SessionStore};
    use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};
    use tower_sessions_redis_store::RedisStore;
    use tower_sessions_sqlx_store::sqlx::postgres::PgPoolOptions;
    use tower_sessions_sqlx_store::sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous,
    };
    use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

    pub(super) async fn app(args: &ServerArgs) -> Result<Router, ServerError> {
        match args.server {
            ServerKind::TowerMemory => Ok(with_store(MemoryStore::default())),
            ServerKind::TowerSqlite => {
                let url = sqlite_url(args, "tower.db")?;
                // The durability tessera's SQLite store runs with (WAL,
                // synchronous=NORMAL: no fsync per commit); sqlx's default
                // would be synchronous=FULL.
                let options = SqliteConnectOptions::from_str(&url)
                    .map_err(|error| fail(format!("bad SQLite URL {url}: {error}")))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal);
                let pool = SqlitePool::connect_with(options)
                    .await
                    .map_err(|error| fail(format!("cannot open {url}: {error}")))?;
                let store = SqliteStore::new(pool);
                store
                    .migrate()
                    .await
                    .map_err(|error| fail(format!("cannot create the sessions table: {error}")))?;
                Ok(with_store(store))
            }
            ServerKind::TowerRedis => {
                let url = required_url(args, "Redis")?;
                let config = Config::from_url(url)
                    .map_err(|error| fail(format!("bad Redis URL {url}: {error}")))?;
                // One connection per worker thread; fred pipelines on each.
                let pool = Pool::new(config, None, None, None, usize::from(args.threads))
                    .map_err(|error| fail(format!("cannot create the Redis pool: {error}")))?;
                match tokio::time::timeout(STORE_PROBE_TIMEOUT, pool.init()).await {
                    Ok(Ok(_connection_task)) => {}
                    Ok(Err(error)) => {
                        return Err(fail(format!("cannot connect to Redis at {url}: {error}")))
                    }
                    Err(_) => {
                        return Err(fail(format!(
                            "Redis at {url} did not answer within {STORE_PROBE_TIMEOUT:?}"
                        )))
                    }
                }
                Ok(with_store(RedisStore::new(pool)))
            }
            ServerKind::TowerPostgres => {
                let url = required_url(args, "PostgreSQL")?;
                // 10: as many connections as tessera's PostgreSQL store
                // opens by default, so neither waits on a smaller pool.
                let pool = PgPoolOptions::new()
                    .max_connections(10)
                    .acquire_timeout(STORE_PROBE_TIMEOUT)
                    .connect(url)
                    .await
                    .map_err(|error| fail(format!("cannot connect to PostgreSQL: {error}")))?;
                let store = PostgresStore::new(pool);
                store
                    .migrate()
                    .await
                    .map_err(|error| fail(format!("cannot create the sessions table: {error}")))?;
                Ok(with_store(store))
            }
            other => Err(fail(format!("{other} is not a tower-sessions server"))),
        }
    }

    /// Comparable to tessera's defaults: a cookie named `session`, not
    /// `Secure` (plain HTTP), tower-sessions' default expiry.
    fn with_store<S: SessionStore + Clone>(store: S) -> Router {
        let layer = SessionManagerLayer::new(store)
            .with_name("session")
            .with_secure(false);
        Router::new().route("/", get(handler)).layer(layer)
    }

    async fn handler(session: tower_sessions::Session) -> Answer {
        let _user: Option<String> = session
            .get("user")
            .await
            .map_err(|error| session_error(StatusCode::INTERNAL_SERVER_ERROR, error))?;
        let counter = session
            .get::<u64>("counter")
            .await
            .map_err(|error| session_error(StatusCode::INTERNAL_SERVER_ERROR, error))?
            .unwrap_or(0)
            + 1;
        session
            .insert("counter", counter)
            .await
            .map_err(|error| session_error(StatusCode::INTERNAL_SERVER_ERROR, error))?;
        Ok(counter.to_string())
    }
}

/// actix-web 4 with actix-session's cookie and Redis stores.
mod actix {
    use super::*;

    use actix_session::config::CookieContentSecurity;
    use actix_session::storage::{CookieSessionStore, RedisSessionStore, SessionStore};
    use actix_session::SessionMiddleware;
    use actix_web::cookie::Key;
    use actix_web::{web, App, HttpResponse, HttpServer};

    /// Binds, announces the port and runs: a macro because `HttpServer`'s
    /// type parameters name crates this one does not depend on.
    macro_rules! serve {
        ($server:expr, $workers:expr, $port:expr) => {{
            let port: u16 = $port;
            let server = $server
                .workers($workers)
                .shutdown_timeout(1)
                .bind(("127.0.0.1", port))
                .map_err(|error| fail(format!("cannot listen on 127.0.0.1:{port}: {error}")))?;
            announce(server.addrs().first().map_or(port, |addr| addr.port()));
            server
                .run()
                .await
                .map_err(|error| fail(format!("server error: {error}")))
        }};
    }

    pub(super) fn run(args: &ServerArgs) -> Result<(), ServerError> {
        let key = Key::try_from(crate::SECRET_KEY.as_bytes())
            .map_err(|error| fail(format!("bad actix key: {error}")))?;
        let workers = usize::from(args.threads);
        actix_web::rt::System::new().block_on(async move {
            match args.server {
                ServerKind::ActixBare => {
                    let server = HttpServer::new(|| {
                        App::new().route("/", web::get().to(|| async { bare_increment() }))
                    });
                    serve!(server, workers, args.port)
                }
                ServerKind::ActixCookie => {
                    let server = HttpServer::new(move || {
                        App::new()
                            .wrap(middleware(CookieSessionStore::default(), key.clone()))
                            .route("/", web::get().to(handler))
                    });
                    serve!(server, workers, args.port)
                }
                ServerKind::ActixRedis => {
                    let url = required_url(args, "Redis")?;
                    let prefix = args.key_prefix.clone();
                    let builder = RedisSessionStore::builder(url)
                        .cache_keygen(move |key| format!("{prefix}{key}"));
                    let store =
                        match tokio::time::timeout(STORE_PROBE_TIMEOUT, builder.build()).await {
                            Ok(Ok(store)) => store,
                            Ok(Err(error)) => {
                                return Err(fail(format!(
                                    "cannot connect to Redis at {url}: {error:#}"
                                )))
                            }
                            Err(_) => {
                                return Err(fail(format!(
                                    "Redis at {url} did not answer within {STORE_PROBE_TIMEOUT:?}"
                                )))
                            }
                        };
                    let server = HttpServer::new(move || {
                        App::new()
                            .wrap(middleware(store.clone(), key.clone()))
                            .route("/", web::get().to(handler))
                    });
                    serve!(server, workers, args.port)
                }
                ServerKind::TesseraActixCookie | ServerKind::TesseraActixRedis => {
                    let (config, server_side) = tessera_config(args)?;
                    let sessions = tessera::actix::SessionMiddleware::new(config);
                    probe_store(sessions.store()).await?;
                    let server = HttpServer::new(move || {
                        let app = App::new().wrap(sessions.clone());
                        if server_side {
                            app.route("/", web::get().to(tessera_server_side_actix))
                        } else {
                            app.route("/", web::get().to(tessera_cookie_actix))
                        }
                    });
                    serve!(server, workers, args.port)
                }
                other => Err(fail(format!("{other} is not an actix server"))),
            }
        })
    }

    async fn tessera_cookie_actix(session: tessera::Session) -> HttpResponse {
        actix_answer(tessera_cookie(session).await)
    }

    async fn tessera_server_side_actix(session: tessera::Session) -> HttpResponse {
        actix_answer(tessera_server_side(session).await)
    }

    /// The axum handlers' answer, as actix-web's response.
    fn actix_answer(answer: Answer) -> HttpResponse {
        match answer {
            Ok(body) => HttpResponse::Ok().body(body),
            Err((status, body)) => HttpResponse::build(
                actix_web::http::StatusCode::from_u16(status.as_u16())
                    .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
            )
            .body(body),
        }
    }

    /// actix-session's defaults (a browser-session cookie named `id`) but
    /// not `Secure`, as the others, and signed rather than encrypted (its
    /// default), as tessera's cookie targets are: like with like.
    fn middleware<S: SessionStore>(store: S, key: Key) -> SessionMiddleware<S> {
        SessionMiddleware::builder(store, key)
            .cookie_secure(false)
            .cookie_content_security(CookieContentSecurity::Signed)
            .build()
    }

    async fn handler(session: actix_session::Session) -> actix_web::Result<HttpResponse> {
        let _user: Option<String> = session.get("user")?;
        let counter = session.get::<u64>("counter")?.unwrap_or(0) + 1;
        session.insert("counter", counter)?;
        Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(counter.to_string()))
    }
}
