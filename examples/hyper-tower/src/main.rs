//! tessera without axum: a plain hyper 1 server whose only service is
//! `tessera::SessionLayer` wrapped around a `tower::service_fn` handler,
//! bridged to hyper with `hyper_util::service::TowerToHyperService`. The
//! handler takes the `Session` from the request's extensions, loads it
//! (needed when sessions are server-side), and counts the visitor's visits.
//!
//! Run it from the workspace root (`SECRET_KEY` is required; the other
//! settings of the README's configuration table are read as well, for the
//! session types this example is built with: `cookie`, `encrypted` and
//! `memory`, since it enables no store feature):
//!
//! ```sh
//! export SECRET_KEY="$(cargo run -q -p tessera-cli -- key generate)"
//! cargo run -p tessera-example-hyper-tower      # PORT=5001 by default
//!
//! curl -b jar -c jar http://127.0.0.1:5001/         # visit number 1
//! curl -b jar -c jar http://127.0.0.1:5001/         # visit number 2
//! curl -b jar -c jar http://127.0.0.1:5001/logout   # session cleared (the cookie is deleted)
//! curl -b jar -c jar http://127.0.0.1:5001/         # visit number 1
//! ```
//!
//! The session lives in a signed, Flask-compatible cookie by default. With
//!
//! ```sh
//! SESSION_TYPE=memory cargo run -p tessera-example-hyper-tower
//! ```
//!
//! the cookie holds only a random id and the count lives in the server's
//! memory (and is gone on restart). That is why the handler calls
//! `session.load().await` before reading: the layer only reads the cookie,
//! and a store that fails to load the session makes the handler answer
//! `503 Service Unavailable` with `Retry-After`.
//!
//! `RUST_LOG` sets the log level (default `info`).

use std::error::Error;
use std::io::{self, IsTerminal as _};
use std::process::ExitCode;

use tessera::SessionConfig;
use tokio::net::TcpListener;

const DEFAULT_PORT: u16 = 5001;

const USAGE: &str = "\
Usage: tessera-example-hyper-tower

Counts each visitor's visits on a plain hyper server whose only service is
tessera's SessionLayer around a tower::service_fn, at http://127.0.0.1:PORT/
(/logout clears the session).

Environment:
  SECRET_KEY    required (generate one with `tessera key generate`)
  PORT          the port to listen on (default 5001)
  SESSION_TYPE  cookie (default), encrypted or memory
  RUST_LOG      the log level (default info)
and the other settings of tessera's README configuration table.
";

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(answered) = answer_arguments() {
        return answered;
    }
    init_logging();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The example takes no arguments, only environment variables: `--help`
/// shows how to run it, and anything else is refused rather than starting
/// the server regardless.
fn answer_arguments() -> Option<ExitCode> {
    let argument = std::env::args_os().nth(1)?;
    if argument == "--help" || argument == "-h" {
        print!("{USAGE}");
        return Some(ExitCode::SUCCESS);
    }
    eprint!(
        "error: unexpected argument {argument:?}: this example is configured by environment \
         variables only\n\n{USAGE}"
    );
    Some(ExitCode::from(2))
}

async fn run() -> Result<(), Box<dyn Error>> {
    let config = SessionConfig::from_env()?;
    let port = port_from_env()?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
    tracing::info!(
        "listening on http://{} with {:?} sessions",
        listener.local_addr()?,
        config.session_type()
    );
    tessera_example_hyper_tower::serve(listener, config).await;
    Ok(())
}

fn port_from_env() -> Result<u16, String> {
    match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("invalid PORT={port:?}: expected a port number (0 to 65535)")),
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_PORT),
        Err(std::env::VarError::NotUnicode(port)) => Err(format!(
            "invalid PORT={port:?}: expected a port number (0 to 65535)"
        )),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
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
