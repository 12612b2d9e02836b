//! The `tessera-demo` command: flags, logging, listening, graceful shutdown.

use std::io::{self, IsTerminal as _, Write as _};
use std::path::PathBuf;

use clap::Parser;
use tessera::{SessionConfig, SessionType};
use tokio::net::TcpListener;

use crate::secret::{self, KeySource, SetupError};

/// The `tessera-demo` command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tessera-demo",
    version,
    about = "Serve the Flask session tutorials' examples with tessera's Flask-compatible sessions",
    long_about = "Serve the Flask session tutorials' examples with tessera's Flask-compatible \
        sessions.\n\nOpen the printed URL: the page at / links to every example (set, get and \
        delete session data, log in and out, a pet name in a permanent session) and shows what \
        the session holds, plus a JSON API, an atomic visit counter and cart, and a \
        \"your sessions\" page with \"log out everywhere\". Sessions are configured from the \
        environment with Flask's names; by default they are kept server-side in an SQLite \
        file beside --key-file (SESSION_TYPE=cookie gives Flask's signed cookies).",
    after_help = environment_help()
)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (see the printed URL).
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// Where the generated secret key is kept when SECRET_KEY is not set
    /// (created with mode 0600, reused on the next start). SQLite sessions
    /// go in tessera-demo-sessions.db in the same directory unless
    /// SESSION_STORE_URL is set.
    #[arg(long, value_name = "PATH", default_value = "tessera-demo.key")]
    pub key_file: PathBuf,
    /// On Ctrl-C or SIGTERM, how long requests in flight may take to finish
    /// before the demo stops without them (a second signal stops it at
    /// once). A client that never finishes sending its request would
    /// otherwise keep it running.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub shutdown_timeout: u64,
    /// How long a client may take to send a request's headers, and how long
    /// an open connection may wait idle for its next request, before it is
    /// closed: clients that connect and send nothing, or a byte at a time,
    /// cannot hold the demo's connections for ever.
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub header_timeout: u64,
    /// How long a request may take once its headers are in, its body's
    /// arrival and its answer included, before it is answered 408 Request
    /// Timeout and its connection closed: a client that sends a body slowly,
    /// or stops halfway, cannot hold a connection for ever either.
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub request_timeout: u64,
}

fn environment_help() -> String {
    let width = secret::ENVIRONMENT
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    let mut help = String::from(
        "Environment (Flask's config names; empty counts as unset, but for SESSION_KEY_PREFIX):\n",
    );
    for (name, meaning) in secret::ENVIRONMENT {
        help.push_str(&format!("  {name:<width$}  {meaning}"));
        if *name == "SESSION_TYPE" {
            help.push_str(&format!("; one of: {}", SessionType::NAMES.join(", ")));
        }
        help.push('\n');
    }
    help.push_str(
        "\nWithout SECRET_KEY a strong key is generated once and kept in --key-file, so sessions \
         survive restarts.\nWithout SESSION_TYPE sessions are kept server-side in SQLite, in \
         tessera-demo-sessions.db beside --key-file.\nOn start the command prints where sessions \
         are kept, then `tessera-demo listening on http://HOST:PORT`.",
    );
    help
}

/// Why the demo stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration or key file is unusable.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The address could not be bound.
    #[error("cannot listen on {host}:{port}: {source}")]
    Bind {
        /// `--host`.
        host: String,
        /// `--port`.
        port: u16,
        /// Why.
        source: io::Error,
    },
    /// The server failed.
    #[error("server error: {0}")]
    Serve(#[from] io::Error),
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`, but only errors
/// of sqlx: its warnings of slow statements and of pooled connections come
/// once per waiting request during a lock or an outage, which tessera
/// logs at most once a second itself).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        // A log that cannot be written (a full disk, a reader gone) must
        // not stop the server: the library would report it with
        // `eprintln!`, which panics when stderr is what failed.
        .log_internal_errors(false)
        .init();
}

/// Configures, listens, prints the URL and serves until Ctrl-C or SIGTERM.
pub async fn run(cli: Cli) -> Result<(), RunError> {
    let (config, source) = secret::config_from_env(&cli.key_file)?;
    // Blank counts as unset, as in the library; say which it was.
    let unset = if std::env::var_os("SECRET_KEY").is_some() {
        "is blank, which counts as unset"
    } else {
        "is not set"
    };
    match &source {
        KeySource::Environment => tracing::info!("using SECRET_KEY from the environment"),
        KeySource::Generated(path) => say(&format!(
            "tessera-demo: SECRET_KEY {unset}, so a new random secret key was generated and \
             saved to {} (readable by you only). It will be reused on the next start{}. Set \
             SECRET_KEY to use your own key.",
            path.display(),
            if config.session_type() == SessionType::Memory {
                ""
            } else {
                ", so sessions survive restarts"
            }
        )),
        KeySource::Reused(path) => say(&format!(
            "tessera-demo: SECRET_KEY {unset}; using the secret key saved in {}.",
            path.display()
        )),
    }
    say(&sessions_notice(&config));
    if config.cookie_path() != "/" {
        // Browsers send a cookie only under its path; the demo's pages are
        // at the root, so such a session would never come back.
        tracing::warn!(
            path = config.cookie_path(),
            "the session cookie's path (SESSION_COOKIE_PATH, else APPLICATION_ROOT) does not \
             cover the demo's pages at /: browsers will not send the cookie back, so sessions \
             will not last"
        );
    }

    let listener = TcpListener::bind((cli.host.as_str(), cli.port))
        .await
        .map_err(|source| RunError::Bind {
            host: cli.host.clone(),
            port: cli.port,
            source,
        })?;
    let address = listener.local_addr()?;
    let sessions_file = (config.session_type() == SessionType::Sqlite)
        .then(|| config.sqlite_path().display().to_string());
    tracing::info!(
        session_type = %config.session_type(),
        sessions_file,
        cookie = config.cookie_name(),
        "serving the Flask session tutorials"
    );
    // Listening for signals before saying the demo listens: a supervisor
    // may stop it as soon as it is up, and a SIGTERM with no handler yet
    // kills the process instead of closing the store.
    let signals = ShutdownSignals::listen();
    say(&format!("tessera-demo listening on http://{address}"));

    let sessions = tessera::SessionLayer::new(config);
    let store = sessions.store();
    if let Some(store) = &store {
        tokio::spawn(probe(store.clone()));
    }
    let finished = serve(listener, sessions, &cli, signals).await?;
    // After a forced stop, requests cut off may still hold connections.
    if let Some(store) = store.filter(|_| finished) {
        // SQLite writes its log back into the database file.
        if tokio::time::timeout(STORE_CLOSE_TIMEOUT, store.close())
            .await
            .is_err()
        {
            tracing::warn!("the session store did not close in time");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long closing the session store may take at shutdown.
const STORE_CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves until a signal, then finishes the requests in flight until the
/// deadline or a second signal. Returns whether they all finished.
async fn serve(
    listener: TcpListener,
    sessions: tessera::SessionLayer,
    cli: &Cli,
    mut signals: ShutdownSignals,
) -> Result<bool, RunError> {
    let app = crate::app_with(
        sessions,
        Some(std::time::Duration::from_secs(cli.request_timeout)),
    );
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(cli.header_timeout));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A client that gave up before it was accepted.
                Err(error) if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) => continue,
                Err(error) => {
                    // Out of descriptors, say: it passes as connections
                    // close, so neither stop nor spin meanwhile (as
                    // axum::serve does, and with its words).
                    tracing::error!("accept error: {error}");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = signals.recv() => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection =
            connections.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Clients hanging up, or timed out before sending a request.
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: finishing requests in flight");
    let deadline = std::time::Duration::from_secs(cli.shutdown_timeout);
    tokio::select! {
        () = connections.shutdown() => Ok(true),
        () = tokio::time::sleep(deadline) => {
            tracing::warn!(
                "requests still in flight after {} s (--shutdown-timeout); stopping \
                 without them",
                cli.shutdown_timeout
            );
            Ok(false)
        }
        () = signals.recv() => {
            tracing::warn!("a second signal: stopping without the requests in flight");
            Ok(false)
        }
    }
}

/// Where sessions are kept, as the start-up notice says it.
pub fn sessions_notice(config: &SessionConfig) -> String {
    match config.session_type() {
        SessionType::Sqlite => {
            let path = config.sqlite_path();
            let path = std::path::absolute(&path).unwrap_or(path);
            format!(
                "tessera-demo: SESSION_TYPE=sqlite: sessions are kept server-side in the SQLite \
                 file {} and survive restarts.",
                path.display()
            )
        }
        SessionType::Memory => {
            "tessera-demo: SESSION_TYPE=memory: sessions are kept server-side in this process's \
             memory and end when it stops."
                .to_owned()
        }
        SessionType::EncryptedCookie => "tessera-demo: SESSION_TYPE=encrypted: sessions are kept \
             in encrypted cookies, which the browser can neither read nor change (Flask cannot \
             read them either)."
            .to_owned(),
        SessionType::Redis => match config.serialization_format() {
            Some(format) => format!(
                "tessera-demo: SESSION_TYPE=redis: sessions are kept server-side in Redis, in \
                 Flask-Session's layout ({}) under the key prefix {:?}, shared with a Flask app \
                 that uses the same settings.",
                format.as_str(),
                config.key_prefix()
            ),
            None => format!(
                "tessera-demo: SESSION_TYPE=redis: sessions are kept server-side in Redis, \
                 under the key prefix {:?}, and shared by every instance that uses it.",
                config.key_prefix()
            ),
        },
        SessionType::Postgres => "tessera-demo: SESSION_TYPE=postgres: sessions are kept \
             server-side in PostgreSQL, shared by every instance that uses the database."
            .to_owned(),
        other => {
            format!(
                "tessera-demo: SESSION_TYPE={other}: sessions are kept in signed cookies, which \
                 Flask reads with the same SECRET_KEY."
            )
        }
    }
}

/// Asks the store once at start, reading and writing (a throwaway session
/// holding one value, read back and deleted at once), so that one that
/// cannot be used (a wrong password, a database that does not exist, a host
/// that cannot be reached, a user without the rights writes need, a
/// read-only replica, tables changed by hand) is reported now, not at the
/// first visitor's 503 or 500. Serving goes on either way: the store may
/// come up later.
async fn probe(store: std::sync::Arc<dyn tessera::SessionStore>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let id = tessera::SessionId::generate();
    // A value as every session of the demo's holds, since a store's values
    // may be kept apart from its sessions (PostgreSQL's table of them).
    let mut data = tessera::Map::new();
    data.insert(
        tessera::PERMANENT_KEY.to_owned(),
        tessera::Value::Bool(true),
    );
    let throwaway = tessera::store::Record {
        data,
        user_id: None,
        created_at: now,
        expires_at: now.saturating_add(60),
        absolute_expires_at: None,
    };
    let used = async {
        store.load(&id, now).await?;
        store.create(&id, &throwaway).await?;
        store.load(&id, now).await?;
        store.delete(&id).await
    };
    match used.await {
        Ok(_) => tracing::info!("the session store answers reads and writes"),
        Err(error) if error.is_outage() => tracing::error!(
            %error,
            "the session store cannot be used yet; requests that need a session answer 503 \
             until it can"
        ),
        Err(error) => tracing::error!(
            %error,
            "the session store cannot be used as configured; requests that need a session \
             answer 500 until the configuration is mended"
        ),
    }
}

/// A line on stdout, flushed at once (scripts and tests wait for it).
fn say(line: &str) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Ctrl-C and SIGTERM, caught from the moment [`listen`](Self::listen)
/// returns (tokio's `ctrl_c()` would only catch them once first polled).
struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
}

impl ShutdownSignals {
    fn listen() -> Self {
        fn caught<S>(name: &str, made: std::io::Result<S>) -> Option<S> {
            made.map_err(|err| tracing::error!("cannot listen for {name}: {err}"))
                .ok()
        }
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                interrupt: caught("Ctrl-C", signal(SignalKind::interrupt())),
                terminate: caught("SIGTERM", signal(SignalKind::terminate())),
            }
        }
        #[cfg(windows)]
        {
            Self {
                ctrl_c: caught("Ctrl-C", tokio::signal::windows::ctrl_c()),
            }
        }
    }

    /// Resolves on the next signal.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                Some(()) = next(self.interrupt.as_mut()) => {}
                Some(()) = next(self.terminate.as_mut()) => {}
                else => std::future::pending().await,
            }
        }
        #[cfg(windows)]
        {
            match self.ctrl_c.as_mut() {
                Some(ctrl_c) => {
                    ctrl_c.recv().await;
                }
                None => std::future::pending().await,
            }
        }
    }
}

#[cfg(unix)]
async fn next(signal: Option<&mut tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera::store::flask_format::SerializationFormat;

    #[test]
    fn the_notice_names_where_sessions_are_kept() {
        let config = |session_type, format| {
            SessionConfig::builder()
                .secret_key("k".repeat(32))
                .session_type(session_type)
                .serialization_format(format)
                .build()
                .expect("a configuration")
        };
        for (session_type, format, expected) in [
            (SessionType::Cookie, None, "signed cookies"),
            (SessionType::EncryptedCookie, None, "encrypted cookies"),
            (SessionType::Memory, None, "memory"),
            (
                SessionType::Redis,
                None,
                "in Redis, under the key prefix \"session:\"",
            ),
            (
                SessionType::Redis,
                Some(SerializationFormat::Msgpack),
                "Flask-Session's layout (msgpack)",
            ),
            (SessionType::Postgres, None, "PostgreSQL"),
        ] {
            let notice = sessions_notice(&config(session_type, format));
            assert!(notice.contains(expected), "{notice}");
        }
    }
}
