//! `tessera`: inspect and sign Flask-compatible session cookies, generate keys.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cookie;
mod error;
mod io;
mod key;

use error::Error;

/// Inspect and sign Flask session cookies, and generate secret keys.
#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    long_about = "Inspect and sign Flask session cookies, and generate secret keys.\n\n\
        Cookies are read and written exactly as Flask (itsdangerous) does, so a cookie \
        from a Flask app can be checked here and a cookie signed here is accepted by Flask \
        when both use the same SECRET_KEY.",
    after_help = "Examples:\n  \
        tessera cookie decode --secret-key \"$SECRET_KEY\" 'eyJ1c2VyX2lkIjo0Mn0.ZVPxAA.…'\n  \
        echo '{\"user_id\": 42}' | tessera cookie sign --secret-key \"$SECRET_KEY\"\n  \
        tessera key generate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode, verify and sign session cookies.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            tessera cookie decode --secret-key \"$SECRET_KEY\" 'session=eyJ…'\n  \
            echo '{\"user_id\": 42}' | tessera cookie sign --secret-key \"$SECRET_KEY\""
    )]
    Cookie(cookie::CookieCommand),
    /// Generate secret keys.
    #[command(
        subcommand,
        after_help = "Example:\n  export SECRET_KEY=\"$(tessera key generate)\""
    )]
    Key(key::KeyCommand),
}

fn main() -> ExitCode {
    // Usage errors exit with 2 (and --help/--version with 0) inside `parse`.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Cookie(command) => cookie::run(command),
        Command::Key(command) => key::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(err) => {
            io::report_error(&err);
            ExitCode::FAILURE
        }
    }
}
