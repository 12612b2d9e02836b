//! `tessera`: inspect and sign Flask-compatible session cookies, generate keys,
//! manage server-side sessions.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cookie;
mod env;
mod error;
mod io;
mod key;
mod python;
mod sessions;

use error::Error;

/// Inspect and sign Flask session cookies, generate secret keys, manage server-side sessions.
#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    long_about = "Inspect and sign Flask session cookies, generate secret keys, and list, \
        inspect and revoke the sessions of a server-side store.\n\n\
        Cookies are read and written exactly as Flask (itsdangerous) does, so a cookie \
        from a Flask app can be checked here and a cookie signed here is accepted by Flask \
        when both use the same SECRET_KEY. With --encrypted, tessera's encrypted cookies \
        (SESSION_TYPE=encrypted) are opened and sealed instead; they need the key to be read.",
    after_help = "Examples:\n  \
        export SECRET_KEY=…   # read from the environment (a --secret-key shows in process listings)\n  \
        tessera cookie decode 'eyJ1c2VyX2lkIjo0Mn0.ZVPxAA.…'\n  \
        echo '{\"user_id\": 42}' | tessera cookie sign\n  \
        tessera cookie decode --encrypted 'E…'\n  \
        tessera key generate\n  \
        tessera sessions list --store sqlite:///var/lib/app/sessions.db\n  \
        tessera sessions revoke-user --store sqlite:///var/lib/app/sessions.db alice"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode, verify and sign session cookies; open and seal encrypted ones.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            export SECRET_KEY=…   # read from the environment (a --secret-key shows in process listings)\n  \
            tessera cookie decode 'session=eyJ…'\n  \
            echo '{\"user_id\": 42}' | tessera cookie sign\n  \
            echo '{\"user_id\": 42}' | tessera cookie sign --encrypted"
    )]
    Cookie(cookie::CookieCommand),
    /// Generate secret keys.
    #[command(
        subcommand,
        after_help = "Example:\n  export SECRET_KEY=\"$(tessera key generate)\""
    )]
    Key(key::KeyCommand),
    /// List, inspect and revoke server-side sessions (--store URL or SESSION_STORE_URL).
    #[command(
        subcommand,
        long_about = sessions::long_about(),
        after_help = sessions::AFTER_HELP
    )]
    Sessions(sessions::SessionsCommand),
}

/// The library's warnings (a stored session that cannot be read, left out
/// of a listing, say) on stderr, one line each; `RUST_LOG` as elsewhere.
/// By default sqlx's own warnings (its "slow statement" lines, for a big
/// batch or a wait on a locked database) are left out: a failure is one
/// `error: …` line, and a slow command is no failure.
fn log_to_stderr() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        // A log that cannot be written (a full disk, a reader gone) must
        // not stop the command: the library would report it with
        // `eprintln!`, which panics when stderr is what failed.
        .log_internal_errors(false)
        .event_format(CommandLineEvent)
        .init();
}

/// A library log line as the command's own warnings are written
/// (`warning: …`): what the library logs as an error (a stored session that
/// cannot be read) is a warning here, where the command itself may succeed,
/// and `error: …` stays the one line of a failure.
struct CommandLineEvent;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for CommandLineEvent
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let kind = match *event.metadata().level() {
            tracing::Level::ERROR | tracing::Level::WARN => "warning",
            tracing::Level::INFO => "note",
            tracing::Level::DEBUG | tracing::Level::TRACE => "debug",
        };
        write!(writer, "{kind}: ")?;
        // Debugging output comes from many crates (hyper, sqlx, redis):
        // named, so that it can be told apart and filtered with RUST_LOG.
        if kind == "debug" {
            write!(writer, "{}: ", event.metadata().target())?;
        }
        tracing_subscriber::fmt::FormatFields::format_fields(context, writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn main() -> ExitCode {
    // Usage errors exit with 2 (and --help/--version with 0) inside `parse`.
    let cli = Cli::parse();
    log_to_stderr();
    let result = match cli.command {
        Command::Cookie(command) => cookie::run(command),
        Command::Key(command) => key::run(command),
        Command::Sessions(command) => sessions::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(Error::Interrupted) => ExitCode::from(130),
        Err(err) => {
            io::report_error(&err);
            ExitCode::FAILURE
        }
    }
}
