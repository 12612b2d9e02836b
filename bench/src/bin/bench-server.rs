//! `bench-server --server NAME --port PORT [--threads N]`: serves `GET /`
//! (read `user`, increment `counter` in the session) with one of the
//! benchmarked stacks until killed. See `tessera_bench::server`.

use std::process::ExitCode;

use clap::Parser as _;
use tessera_bench::server::{self, ServerArgs};

fn main() -> ExitCode {
    let args = ServerArgs::parse();
    let name = args.server;
    match server::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-server --server {name}: {error}");
            ExitCode::FAILURE
        }
    }
}
