//! `tessera-bench`: benchmarks of tessera against peer session libraries.
//!
//! `tessera-bench http [--rounds 4] [--duration 8] [--connections 16]
//! [--threads 2] [--markdown OUT.md] [--redis-url URL] [--postgres-url URL]
//! [--python PATH] [--only NAME,NAME]` runs every server under wrk and writes
//! a Markdown report. See `tessera_bench::orchestrate`.
//!
//! `tessera-bench flamegraph --title TITLE PERF_SCRIPT.txt OUT.svg` draws a
//! flame graph of a profile recorded with call stacks. See
//! `tessera_bench::flamegraph`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera_bench::flamegraph::{self, FlamegraphArgs};
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
    /// A flame graph (SVG) from `perf script`'s output of a profile recorded
    /// with call stacks (`perf record --call-graph dwarf`).
    Flamegraph(FlamegraphArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Http(args) => orchestrate::run(args).map_err(Into::into),
        Command::Flamegraph(args) => flamegraph::run(&args).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tessera-bench: {}", error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The error and every source under it, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
