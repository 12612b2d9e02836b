//! `tessera-demo`: the Flask session tutorials' examples, served by tessera.
//! See `tessera-demo --help`.

use std::process::ExitCode;

use clap::Parser as _;
use tessera_demo::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    cli::init_tracing();
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tessera-demo: {err}");
            ExitCode::FAILURE
        }
    }
}
