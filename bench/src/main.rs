//! `tessera-bench`: benchmarks of tessera against peer session libraries.
//!
//! `tessera-bench http [--rounds 4] [--duration 8] [--connections 16]
//! [--threads 2] [--markdown OUT.md] [--redis-url URL] [--postgres-url URL]
//! [--python PATH] [--only NAME,NAME]` runs every server under wrk and writes
//! a Markdown report. See `tessera_bench::orchestrate`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera_bench::orchestrate::{self, HttpArgs};

/// The `tessera-bench` command line.
#[derive(Debug, Parser)]
#[command(
    name = "tessera-bench",
    about = "Benchmark tessera against peer session libraries on this machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HTTP cost of one session read and increment per request: tessera
    /// (cookie, memory, SQLite, Redis, PostgreSQL) against bare axum,
    /// tower-sessions, actix-session and Flask under gunicorn, loaded by wrk.
    Http(HttpArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Http(args) => orchestrate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tessera-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
