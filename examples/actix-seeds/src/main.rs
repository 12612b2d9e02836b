//! The Flask session tutorials' seed routes on actix-web, with tessera's
//! actix middleware: the same texts and behaviour as the axum demo's
//! (`tessera-demo`), and cookies either app accepts from the other.
//!
//! Run it from the workspace root (`SECRET_KEY` is required; any other
//! setting of the README's configuration table is read as well):
//!
//! ```sh
//! export SECRET_KEY="$(cargo run -q -p tessera-cli -- key generate)"
//! cargo run -p tessera-example-actix-seeds       # PORT=5002 by default
//!
//! curl -b jar -c jar http://127.0.0.1:5002/set_session    # Session data set.
//! curl -b jar -c jar http://127.0.0.1:5002/get_session    # Welcome, your_username!
//! curl -b jar -c jar -d username=alice http://127.0.0.1:5002/login
//! curl -b jar -c jar http://127.0.0.1:5002/               # Logged in as alice, flashed once
//! ```
//!
//! or open <http://127.0.0.1:5002/> in a browser. Sessions are signed,
//! Flask-compatible cookies by default;
//!
//! ```sh
//! SESSION_TYPE=sqlite SESSION_STORE_URL=sqlite://actix-seeds.db cargo run -p tessera-example-actix-seeds
//! ```
//!
//! keeps them server-side in `actix-seeds.db` (created in the working
//! directory), with only a random id in the cookie; login then gives the
//! session a fresh id, and logout ends it in the store. `SESSION_TYPE=memory`
//! keeps them in the server's memory instead.
//!
//! `RUST_LOG` sets the log level (default `info`). A request not answered
//! within 30 seconds, its body included, is answered `408 Request Timeout`
//! and its connection closed.

use std::error::Error;
use std::io::{self, IsTerminal as _};
use std::process::ExitCode;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};
use tessera::actix::SessionMiddleware;
use tessera::SessionConfig;
use tessera_example_actix_seeds::{time_limited, REQUEST_TIMEOUT};

const DEFAULT_PORT: u16 = 5002;

const USAGE: &str = "\
Usage: tessera-example-actix-seeds

Serves the Flask session tutorials' seed routes on actix-web, with tessera's
actix middleware, at http://127.0.0.1:PORT/.

Environment:
  SECRET_KEY        required (generate one with `tessera key generate`)
  PORT              the port to listen on (default 5002)
  SESSION_TYPE      cookie (default), encrypted, memory or sqlite
  SESSION_STORE_URL for sqlite, e.g. sqlite://actix-seeds.db
  RUST_LOG          the log level (default info)
and the other settings of tessera's README configuration table.
";

#[actix_web::main]
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
    let session_type = config.session_type();
    // Built once: every worker's clone shares one store and one sweeper.
    let sessions = SessionMiddleware::new(config);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .wrap(from_fn(|request, next| {
                time_limited(REQUEST_TIMEOUT, request, next)
            }))
            .configure(tessera_example_actix_seeds::configure)
    })
    .bind(("127.0.0.1", port))
    .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
    for address in server.addrs() {
        tracing::info!("listening on http://{address} with {session_type:?} sessions");
    }
    server.run().await?;
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
