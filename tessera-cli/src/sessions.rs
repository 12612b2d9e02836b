//! `tessera sessions …`: list, inspect and revoke server-side sessions.

use std::borrow::Cow;
use std::io::{self, BufWriter, IsTerminal as _, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tessera::store::{Record, SessionId, SessionInfo, SessionStore, SqliteStore, StoreError};
use tessera::tagged;

use crate::error::{Error, Result};
use crate::io::{print_line, stdout_error, warn};

/// Sessions fetched by one `list` query, or purged by one `purge_expired`
/// call, unless `--batch` says otherwise.
const DEFAULT_BATCH: u32 = 1000;

/// What `--store` accepts, for error messages.
const SUPPORTED: &str = "sqlite:///absolute/path.db, sqlite://relative/path.db, \
    redis://host:port/db (rediss:// for TLS, redis+unix:///path.sock?db=N or unix:// for a \
    socket; valkey:// and valkeys:// alike) or postgres://user@host:port/db";

/// How the URL of a store is given.
const STORE_HELP: &str = "Every command takes the store's URL from --store or, failing that, \
    from SESSION_STORE_URL (the variable the application reads): \
    sqlite:///absolute/path.db or sqlite://path/relative/to/the/current/directory.db \
    (the file must exist: it is never created here), redis://host:port/db (also \
    redis://user:password@host:port/db, redis+unix:///path.sock?db=N, unix://, valkey://; keys under \
    SESSION_KEY_PREFIX, default session:, set but empty no prefix; in Flask-Session's layout when \
    SESSION_SERIALIZATION_FORMAT is msgpack or json, and refused when the sessions found under \
    the prefix are in the other layout, or in both; ignored with a warning for the other stores) or postgres://user:password@host:port/db (the \
    application's tables must be there: they are never created here; for tables in a schema \
    of their own, add ?options=-c%20search_path%3Dname to the URL). TLS: rediss://… for \
    Redis, ?sslmode=verify-full (and &sslrootcert=ca.pem for a private CA) for PostgreSQL; \
    certificates are checked against the system's root certificates, or the file \
    SSL_CERT_FILE names.";

#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// List live sessions in id order: id, user, created, expires.
    #[command(
        long_about = "List the live sessions (not expired, not revoked) in id order, one \
            per line: the id, the user (- for none; a user id that is - itself, or \
            begins with a double quote, is shown in double quotes, its own escaped as \\\"), \
            when the session was created and when it expires unless used again (the earlier of its idle and absolute expiry), \
            tab-separated, times in RFC 3339 UTC (a session only Flask-Session has written \
            has no creation time: the time of the listing is shown). Control characters, \
            invisible formatting \
            characters (such as right-to-left overrides) and backslashes in user ids are \
            escaped.\n\n\
            With --json: a JSON array of objects {id, user_id, created_at, expires_at, \
            absolute_expires_at}, times in Unix seconds (created_at null for a session only \
            Flask-Session has written, as in show --json), expires_at the idle expiry and \
            absolute_expires_at the absolute one (the session ends at the earlier of the \
            two, the time the plain listing shows), user_id and absolute_expires_at \
            null when unset, expires_at null for a session that never expires (a Redis key \
            without a time to live; never in the plain listing). The listing is streamed page by page, however many sessions \
            there are (on Redis, where nothing is in id order, the ids are read and sorted \
            first: some 180 bytes of memory per session); a spinner on stderr counts them when stderr is a terminal.",
        after_help = "Examples:\n  \
            tessera sessions list --store sqlite:///var/lib/app/sessions.db\n  \
            SESSION_SERIALIZATION_FORMAT=msgpack tessera sessions list --store redis://127.0.0.1:6379/0\n  \
            tessera sessions list --user alice --json --store sqlite://sessions.db\n  \
            SESSION_STORE_URL=sqlite://sessions.db tessera sessions list | wc -l"
    )]
    List(ListArgs),
    /// Show one live session: its owner, times and data.
    #[command(
        visible_alias = "inspect",
        long_about = "Show one live session: its id, user, creation time, idle expiry \
            (extended while the session is used), absolute expiry, and its data on one \
            line of Flask tagged JSON (the JSON Flask would sign: sorted keys, ASCII only, \
            tuples as {\" t\": [...]}, bytes as {\" b\": \"base64\"}, ...).\n\n\
            With --json: an object {id, user_id, created_at, expires_at, \
            absolute_expires_at, data}, times in Unix seconds (created_at null, and \
            \"unknown\" in plain output, for a session only Flask-Session has written, \
            which stores no creation time; expires_at the idle expiry, null for never; the session ends at the earlier of the two expiries), \
            data the tagged JSON object as is (which, as in Flask, may hold NaN or Infinity).\n\n\
            The id may be pasted as the browser holds it: session=ID, a Cookie or \
            Set-Cookie header (the cookie named --cookie-name, or SESSION_COOKIE_NAME, taken \
            from it as `tessera cookie decode` takes it), or signed as with \
            SESSION_USE_SIGNER (ID.signature: the id is looked up, the signature is not \
            checked).\n\n\
            An unknown, expired or revoked id exits with status 1.",
        after_help = "Examples:\n  \
            tessera sessions show --store sqlite://sessions.db 'Q2hlY2sgdGhlIGNvb2tpZSBpbiB5b3VyIGJyb3dzZXI'\n  \
            tessera sessions show --json \"$ID\" | jq .data\n  \
            tessera sessions show 'Cookie: theme=dark; session=Q2hlY2sgdGhlIGNvb2tpZSBpbiB5b3VyIGJyb3dzZXI.c2ln'"
    )]
    Show(ShowArgs),
    /// Revoke (delete) one session.
    #[command(
        long_about = "Delete one session: its next request starts a new, empty session. \
            Prints `revoked`; an id with no live session exits with status 1, as \
            `sessions show` does (the record of an expired one is deleted all the same, \
            whether or not the store had dropped it yet). The id may be pasted as \
            `sessions show` takes it.",
        after_help = "Example:\n  \
            tessera sessions revoke --store sqlite:///var/lib/app/sessions.db \"$ID\""
    )]
    Revoke(RevokeArgs),
    /// Revoke every session of one user ("log out everywhere").
    #[command(
        long_about = "End every session of one user (\"log out everywhere\"), and print \
            how many of them were live; 0 is not an error. Expired ones not yet purged \
            go too, uncounted. With --json: {\"revoked\": N}. SQLite ends them at once \
            and leaves their rows to the expiry sweep (the application's, or \
            purge-expired); the other stores delete them.",
        after_help = "Example:\n  \
            tessera sessions revoke-user --store sqlite:///var/lib/app/sessions.db alice"
    )]
    RevokeUser(RevokeUserArgs),
    /// Delete the sessions that have expired, and print how many.
    #[command(
        long_about = "Delete every session that is no longer live (past its idle or its \
            absolute expiry), a batch at a time so that the application's requests are \
            never held up for long, and print how many were deleted. With --json: \
            {\"purged\": N}. A progress counter on stderr shows the work when stderr is a \
            terminal. Applications with a server-side store also purge periodically by \
            themselves; this is for a store whose application is stopped, or a cron job.",
        after_help = "Examples:\n  \
            tessera sessions purge-expired --store sqlite:///var/lib/app/sessions.db\n  \
            tessera sessions purge-expired --batch 10000 --json"
    )]
    PurgeExpired(PurgeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The session store: sqlite:///absolute/path.db, sqlite://relative/path.db,
    /// redis://host:port/db (rediss:// for TLS) or postgres://user@host:port/db.
    /// Default: the SESSION_STORE_URL environment variable.
    #[arg(long = "store", value_name = "URL")]
    url: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this user's sessions.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Print a JSON array instead of lines.
    #[arg(long)]
    json: bool,
    /// Sessions fetched per query.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// No progress counter on stderr, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

/// A session's id as pasted, for the commands that act on one session.
#[derive(Debug, Args)]
pub(crate) struct PastedId {
    /// The cookie's name (SESSION_COOKIE_NAME): picks the session cookie out of a pasted
    /// Cookie header; given here or in the environment, a pasted name=value of another name is
    /// refused. Default: the SESSION_COOKIE_NAME environment variable, else "session".
    #[arg(long, value_name = "NAME")]
    cookie_name: Option<String>,
    /// The session id, or '-' to read it from stdin: bare, or pasted as the cookie holds it
    /// ('session=ID', a 'Cookie: …' or 'Set-Cookie: …' header, a curl command copied from the
    /// browser's developer tools, or ID.signature as with
    /// SESSION_USE_SIGNER, whose signature is dropped unchecked). Ids may begin with '-', so
    /// one is taken as the id even where it looks like an option.
    #[arg(value_name = "ID", allow_hyphen_values = true)]
    id: String,
}

impl PastedId {
    /// The session id, picked out of what was pasted by the cookie's name.
    fn id(&self) -> Result<SessionId> {
        let given = match &self.cookie_name {
            Some(name) => Some(name.clone()),
            None => crate::env::cookie_name()?,
        };
        let name_given = given.is_some();
        parse_id(
            &self.id,
            given
                .as_deref()
                .unwrap_or(crate::cookie::DEFAULT_COOKIE_NAME),
            name_given,
        )
    }
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print a JSON object instead of lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    session: PastedId,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print {"revoked": 1} instead of `revoked`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    session: PastedId,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeUserArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print {"revoked": N} instead of N.
    #[arg(long)]
    json: bool,
    /// The user whose sessions are revoked. A user id that begins with '-' follows '--'
    /// (`revoke-user -- -dash`), so that a mistyped option is an error, not a user.
    #[arg(value_name = "USER")]
    user: String,
}

#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print {"purged": N} instead of N.
    #[arg(long)]
    json: bool,
    /// Sessions deleted per transaction; after each, a pause as long as it
    /// took, so that the application's requests keep the store.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// No progress counter on stderr, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

/// Appended to the `sessions` command's help.
pub(crate) const AFTER_HELP: &str = "Examples:\n  \
    export SESSION_STORE_URL=sqlite:///var/lib/app/sessions.db\n  \
    tessera sessions list --user alice\n  \
    tessera sessions show \"$ID\"\n  \
    tessera sessions revoke \"$ID\"\n  \
    tessera sessions revoke-user alice\n  \
    tessera sessions purge-expired";

/// The long help of the `sessions` command.
pub(crate) fn long_about() -> String {
    format!(
        "List, inspect and revoke the sessions of a server-side store (SESSION_TYPE=sqlite, \
         redis or postgres).\n\n\
         {STORE_HELP}\n\n\
         Every command prints its result on stdout (add --json for JSON) and, on failure, \
         one `error: …` line on stderr with exit status 1; usage errors (an unknown option, \
         no store URL given) exit with status 2, and Ctrl-C stops a command with status 130, \
         its progress line cleared. A `revoke`, `revoke-user` or `purge-expired` that failed \
         on a timeout (a lock held elsewhere, a stalled server) may still be applied once the \
         store gets to it: check with `list` or `show`."
    )
}

pub(crate) fn run(command: SessionsCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Error::new(format_args!("starting the async runtime: {err}")))?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = run_on_store(command) => result,
            // The command's future is dropped, and with it its progress
            // spinner, which clears its line, instead of staying on the
            // screen as the default handler, ending the process, left it.
            () = interrupted() => Err(Error::Interrupted),
        }
    });
    if matches!(result, Err(Error::Interrupted)) {
        // Nothing waits for a store operation left halfway.
        runtime.shutdown_background();
    }
    result
}

/// Resolves at the first Ctrl-C (SIGINT); never, if it cannot be watched.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn run_on_store(command: SessionsCommand) -> Result<()> {
    let url = match &command {
        SessionsCommand::List(args) => &args.store.url,
        SessionsCommand::Show(args) => &args.store.url,
        SessionsCommand::Revoke(args) => &args.store.url,
        SessionsCommand::RevokeUser(args) => &args.store.url,
        SessionsCommand::PurgeExpired(args) => &args.store.url,
    };
    // An option's blanks are dropped; the variable is used as it is, as the
    // application uses it (which refuses a SQLite URL with blanks around
    // it, and whose Redis and PostgreSQL clients drop them).
    let url = match url {
        Some(url) => Some(url.trim().to_owned()),
        None => crate::env::store_url()?,
    };
    // A usage error (status 2, as clap's own), saying where the URL may
    // come from.
    let Some(url) = url.as_deref().filter(|url| !url.is_empty()) else {
        clap::Error::raw(
            clap::error::ErrorKind::MissingRequiredArgument,
            format!(
                "no session store given: pass --store URL or set SESSION_STORE_URL, the \
                 variable the application reads; supported: {SUPPORTED}\n"
            ),
        )
        .exit()
    };
    let (store, unconfirmed_warning) = Store::open(url).await?;
    let stores_creation = !matches!(store, Store::FlaskSessionRedis(_));
    let found = match command {
        SessionsCommand::List(args) => list(store.get(), stores_creation, args).await,
        SessionsCommand::Show(args) => show(store.get(), stores_creation, args).await,
        SessionsCommand::Revoke(args) => revoke(store.get(), args).await,
        SessionsCommand::RevokeUser(args) => revoke_user(store.get(), args).await,
        SessionsCommand::PurgeExpired(args) => purge_expired(store.get(), args).await,
    };
    if let Some(warning) = unconfirmed_warning {
        if !matches!(found, Ok(true)) {
            warn(&warning);
        }
    }
    let result = found.map(|_| ());
    if result.is_ok() {
        store.close().await;
    } else {
        // After a failure (a statement stalled on a lock held elsewhere, say)
        // closing may wait on it: the error is worth more than a clean close.
        let _ = tokio::time::timeout(Duration::from_secs(1), store.close()).await;
    }
    result
}

/// An open store of one of the supported kinds.
enum Store {
    Sqlite(SqliteStore),
    Redis(tessera::store::RedisStore),
    FlaskSessionRedis(tessera::store::FlaskSessionRedisStore),
    Postgres(tessera::store::PostgresStore),
}

impl Store {
    /// Opens the store at `url`, which must already exist. Also returns a
    /// warning to give if the command then finds no session (see
    /// [`elsewhere_warning`]).
    async fn open(url: &str) -> Result<(Self, Option<String>)> {
        let scheme = url
            .trim_start()
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => {
                warn_if_format_set("SQLite", "sqlite")?;
                let store = SqliteStore::from_url(url).map_err(store_error)?;
                ensure_file(store.path())?;
                // Opened now, so that a bad file is reported as such.
                let store = SqliteStore::open_existing(store.path())
                    .await
                    .map_err(store_error)?;
                Ok((Self::Sqlite(store), None))
            }
            Some(scheme) if is_redis_scheme(scheme) => {
                use tessera::store::redis::Layout;
                // The application's own settings say which layout it uses.
                let prefix = crate::env::key_prefix()?;
                // Acting on the other layout would report sessions without
                // their data, and "revoke" one while its data lives on.
                let mismatch = |found: Layout| {
                    let hint = match found {
                        Layout::FlaskSession => {
                            "Flask-Session's layout: set SESSION_SERIALIZATION_FORMAT to the \
                             application's (msgpack or json)"
                        }
                        Layout::Tessera => {
                            "tessera's own layout: unset SESSION_SERIALIZATION_FORMAT, as the \
                             application has it"
                        }
                        Layout::Both => {
                            "both layouts: applications of each share it, and each reads the \
                             other's sessions wrongly; give each a SESSION_KEY_PREFIX of its own"
                        }
                    };
                    Error::new(format_args!(
                        "the sessions under the key prefix {prefix:?} are in {hint}"
                    ))
                };
                match crate::env::serialization_format()? {
                    Some(format) => {
                        // A value neither format reads is shown as such, and
                        // revoked with a warning, not taken for no session.
                        let store = tessera::store::FlaskSessionRedisStore::new(url, format)
                            .map_err(store_error)?
                            .with_prefix(prefix.clone())
                            .refusing_unreadable();
                        match store.sample_layout().await.map_err(store_error)? {
                            Some(found @ (Layout::Tessera | Layout::Both)) => Err(mismatch(found)),
                            Some(Layout::FlaskSession) => {
                                Ok((Self::FlaskSessionRedis(store), None))
                            }
                            // Flask-Session's own sessions are in no index,
                            // and the sample may miss them in a large
                            // database: said only if the command finds none.
                            None => {
                                let warning = elsewhere_warning(
                                    &prefix,
                                    store.indexed_prefixes().await,
                                    true,
                                );
                                Ok((Self::FlaskSessionRedis(store), warning))
                            }
                        }
                    }
                    None => {
                        let store = tessera::store::RedisStore::new(url)
                            .map_err(store_error)?
                            .with_prefix(prefix.clone());
                        match store.sample_layout().await.map_err(store_error)? {
                            Some(found @ (Layout::FlaskSession | Layout::Both)) => {
                                Err(mismatch(found))
                            }
                            Some(Layout::Tessera) => Ok((Self::Redis(store), None)),
                            None => {
                                if let Some(warning) = elsewhere_warning(
                                    &prefix,
                                    store.indexed_prefixes().await,
                                    false,
                                ) {
                                    warn(&warning);
                                }
                                Ok((Self::Redis(store), None))
                            }
                        }
                    }
                }
            }
            Some("postgres" | "postgresql") => {
                warn_if_format_set("PostgreSQL", "postgres")?;
                // Connected now, so that an unreachable server is reported as
                // such; a database without the tables is refused, not given them.
                let store = tessera::store::PostgresStore::new(url)
                    .map_err(store_error)?
                    .open_existing()
                    .await
                    .map_err(store_error)?;
                Ok((Self::Postgres(store), None))
            }
            // The scheme only: URLs can carry passwords.
            Some(scheme) if is_scheme(scheme) => Err(Error::new(format_args!(
                "unsupported session store URL scheme {scheme}://; supported: {SUPPORTED}"
            ))),
            _ => Err(Error::new(format_args!(
                "the session store must be given as a URL; supported: {SUPPORTED}"
            ))),
        }
    }

    fn get(&self) -> &dyn SessionStore {
        match self {
            Self::Sqlite(store) => store,
            Self::Redis(store) => store,
            Self::FlaskSessionRedis(store) => store,
            Self::Postgres(store) => store,
        }
    }

    /// Closes the connections, so that SQLite folds its log into the file.
    async fn close(self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Redis(_) | Self::FlaskSessionRedis(_) => {}
            Self::Postgres(store) => store.close().await,
        }
    }
}

/// The warning for a prefix under which no session is indexed: a prefix
/// left unset or mistyped would have the commands find nothing and a "log
/// out everywhere" end nothing, exiting as on success. Says where sessions
/// are, if under other prefixes. (A store that is empty, as after every
/// session expired, is warned about too: nothing tells the two apart.)
/// Sessions that only a Flask app wrote are in no index, so for
/// Flask-Session's layout the warning says that prefixes holding only those
/// go unnamed.
fn elsewhere_warning(
    prefix: &str,
    indexed: Result<Vec<String>, StoreError>,
    flask_session_layout: bool,
) -> Option<String> {
    let indexed = match indexed {
        Ok(indexed) => indexed,
        // Only a courtesy: a server that denies SCAN (an ACL) gets none.
        Err(_) => return None,
    };
    if indexed.iter().any(|other| other == prefix) {
        return None;
    }
    let unindexed = if flask_session_layout {
        " (sessions that only a Flask app has written are in no index, so a prefix holding \
         only those is not named here: the Flask app's SESSION_KEY_PREFIX says where they are)"
    } else {
        ""
    };
    Some(if indexed.is_empty() {
        format!(
            "no sessions under the key prefix {prefix:?} on this server, nor indexed under any \
             other: SESSION_KEY_PREFIX must be the application's (default \"session:\"){unindexed}"
        )
    } else {
        let others: Vec<String> = indexed.iter().map(|other| format!("{other:?}")).collect();
        format!(
            "no sessions under the key prefix {prefix:?} on this server; there are some under \
             {}: set SESSION_KEY_PREFIX to the application's{unindexed}",
            others.join(", ")
        )
    })
}

/// SESSION_SERIALIZATION_FORMAT chooses between Redis layouts; with any
/// other store the application refuses to start, and the command, told the
/// store by `--store` perhaps, goes on without it but says so. A value the
/// application would refuse is refused here, as for Redis.
fn warn_if_format_set(store: &str, session_type: &str) -> Result<()> {
    if let Some(format) = crate::env::serialization_format()? {
        warn(&format!(
            "SESSION_SERIALIZATION_FORMAT={} is ignored: only a Redis store keeps sessions in \
             Flask-Session's format, not this {store} store (an application with \
             SESSION_TYPE={session_type} refuses to start with it set)",
            format.as_str()
        ));
    }
    Ok(())
}

/// Whether `scheme` names a Redis server, as the application's store (and
/// the Redis client under it) reads it: Valkey's names included.
fn is_redis_scheme(scheme: &str) -> bool {
    matches!(
        scheme,
        "redis" | "rediss" | "redis+unix" | "unix" | "valkey" | "valkeys" | "valkey+unix"
    )
}

/// Whether `text` is a URL scheme (RFC 3986: a letter, then letters,
/// digits, `+`, `-` or `.`).
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Refuses a database file that does not exist, rather than create an empty
/// store and report that it holds no sessions.
fn ensure_file(path: &Path) -> Result<()> {
    let missing = |why: &dyn std::fmt::Display| {
        Err(Error::new(format_args!(
            "no session store at {}: {why}",
            path.display()
        )))
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => missing(&"it is a directory"),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => missing(
            &"the file does not exist (the application creates it when it first uses the store)",
        ),
        Err(err) => missing(&err),
    }
}

fn store_error(err: StoreError) -> Error {
    Error::new(err)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The session id in what was pasted: a bare id, or the session cookie's
/// value (`session=ID`, a `Cookie:` or `Set-Cookie:` header, read as
/// `tessera cookie decode` reads them), its signature dropped when signed
/// as with SESSION_USE_SIGNER. The signature is not checked: the id is only
/// looked up, and a forged one finds nothing a bare id would not.
fn parse_id(text: &str, cookie_name: &str, name_given: bool) -> Result<SessionId> {
    let input = if text == "-" {
        crate::io::read_stdin_header_text("the session id")?
    } else {
        text.to_owned()
    };
    if let Some(id) = SessionId::parse(input.trim()) {
        return Ok(id);
    }
    if input.trim().is_empty() {
        return Err(Error::new("not a session id: nothing was given"));
    }
    let (_, values) = crate::cookie::pasted_cookies(&input, cookie_name, name_given)?;
    let mut ids: Vec<SessionId> = Vec::new();
    // Values that are no id beside one that is (a stale or planted cookie
    // of the same name) are passed over, as tessera's server passes over
    // them to the id it can use.
    let mut refusal = None;
    let mut passed_over = 0;
    for value in &values {
        let id = match crate::cookie::server_side_id(value) {
            Some(true) => value.split_once('.').map_or(&**value, |(id, _)| id),
            _ => value,
        };
        match SessionId::parse(id) {
            Some(id) if !ids.contains(&id) => ids.push(id),
            Some(_) => {}
            None => {
                passed_over += 1;
                refusal.get_or_insert_with(|| not_a_session_id(value));
            }
        }
    }
    match ids.len() {
        1 => {
            if passed_over > 0 {
                crate::io::warn(&format!(
                    "passed over {passed_over} value(s) of the cookie {cookie_name:?} that \
                     are no session id, as tessera's server does"
                ));
            }
            Ok(ids.remove(0))
        }
        0 => Err(refusal.unwrap_or_else(|| Error::new("not a session id: the cookie is empty"))),
        count => Err(Error::new(format_args!(
            "the pasted text holds {count} different session ids (cookies named \
             {cookie_name:?}); pass the one to use"
        ))),
    }
}

/// Why `value` is no session id, and what it may be instead.
fn not_a_session_id(value: &str) -> Error {
    match looks_like_a_cookie_session(value) {
        Some(CookieLike::Signed) => Error::new(
            "not a session id: this looks like a cookie that holds the session itself \
             (signed, as Flask's), not a server-side session's id; read it with \
             `tessera cookie decode`",
        ),
        Some(CookieLike::LongRun) => Error::new(format_args!(
            "not a session id: {} characters, where a session id has at most 256; if it is \
             an encrypted cookie (SESSION_TYPE=encrypted), which holds the session itself, \
             read it with `tessera cookie decode --encrypted`",
            value.len()
        )),
        None => Error::new(
            "not a session id: expected 22 to 256 characters of URL-safe base64, alone, as \
             session=ID, in a pasted Cookie or Set-Cookie header, or signed (ID.signature, \
             as with SESSION_USE_SIGNER)",
        ),
    }
}

/// What a value that is no session id looks like instead.
enum CookieLike {
    /// A signed cookie session's three dotted parts (Flask's).
    Signed,
    /// One run of URL-safe base64 too long for an id, as an encrypted
    /// cookie is.
    LongRun,
}

/// Which cookie that holds the session itself `value` has the shape of,
/// if any: a signed one (`payload.timestamp.signature`, with a leading dot
/// when compressed) or an encrypted one (longer than any id, without
/// dots), in URL-safe base64 either way.
fn looks_like_a_cookie_session(value: &str) -> Option<CookieLike> {
    let url_safe = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = value
        .strip_prefix('.')
        .unwrap_or(value)
        .split('.')
        .collect();
    match parts.len() {
        1 if value.len() > 256 && url_safe(value) => Some(CookieLike::LongRun),
        3 if parts.iter().all(|part| !part.is_empty() && url_safe(part)) => {
            Some(CookieLike::Signed)
        }
        _ => None,
    }
}

async fn list(store: &dyn SessionStore, stores_creation: bool, args: ListArgs) -> Result<bool> {
    let now = now();
    let batch = args.batch as usize;
    let user = args.user.as_deref();
    if user == Some("") {
        // As `revoke-user`: an empty user is a command line gone wrong (a
        // variable unset), not a user to look for.
        return Err(Error::new("the user is empty"));
    }
    let progress = Progress::new(!args.no_progress, "sessions");
    let mut out = BufWriter::new(io::stdout().lock());
    let mut after: Option<SessionId> = None;
    let mut count: u64 = 0;
    loop {
        let page = store
            .list(user, after.as_ref(), batch, now)
            .await
            .map_err(store_error)?;
        progress
            .suspend(|| {
                for info in &page {
                    if args.json {
                        out.write_all(if count == 0 { b"[\n" } else { b",\n" })?;
                        let mut json = SessionJson::from(info);
                        // Flask-Session's layout reports the listing's time
                        // for a session only Flask-Session has written (one
                        // tessera made this very second reads so too).
                        if !stores_creation && info.created_at == now {
                            json.created_at = None;
                        }
                        let json = serde_json::to_string(&json)?;
                        out.write_all(terminal_safe_json(json).as_bytes())?;
                    } else {
                        write_plain_line(&mut out, info)?;
                    }
                    count += 1;
                }
                // A page at a time, so that a slow store still shows progress.
                out.flush()
            })
            .map_err(stdout_error)?;
        progress.set(count);
        // Until an empty page: a store may leave unreadable sessions out of
        // a page, so a short one is not the end.
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.id.clone());
    }
    if args.json {
        out.write_all(if count == 0 { b"[]\n" } else { b"\n]\n" })
            .and_then(|()| out.flush())
            .map_err(stdout_error)?;
    }
    Ok(count > 0)
}

fn write_plain_line(out: &mut impl Write, info: &SessionInfo) -> io::Result<()> {
    let expires = info
        .absolute_expires_at
        .map_or(info.expires_at, |at| at.min(info.expires_at));
    writeln!(
        out,
        "{}\t{}\t{}\t{}",
        info.id.as_str(),
        user_field(info.user_id.as_deref()),
        rfc3339(info.created_at),
        rfc3339(expires),
    )
}

/// A session in `list --json` and, with its data, `show --json`.
#[derive(Debug, Serialize)]
struct SessionJson<'a> {
    id: &'a str,
    user_id: Option<&'a str>,
    /// `null` for unknown (a session only Flask-Session has written).
    created_at: Option<u64>,
    /// `null` for never (a Redis key without a time to live).
    expires_at: Option<u64>,
    absolute_expires_at: Option<u64>,
}

/// Unix seconds, or `None` past the year 9999: what the stores report for
/// a session without expiry.
fn unless_never(seconds: u64) -> Option<u64> {
    (seconds <= LAST_SECOND_OF_9999).then_some(seconds)
}

/// 9999-12-31T23:59:59Z.
const LAST_SECOND_OF_9999: u64 = 253_402_300_799;

impl<'a> From<&'a SessionInfo> for SessionJson<'a> {
    fn from(info: &'a SessionInfo) -> Self {
        Self {
            id: info.id.as_str(),
            user_id: info.user_id.as_deref(),
            created_at: Some(info.created_at),
            expires_at: unless_never(info.expires_at),
            absolute_expires_at: info.absolute_expires_at,
        }
    }
}

async fn show(store: &dyn SessionStore, stores_creation: bool, args: ShowArgs) -> Result<bool> {
    let id = args.session.id()?;
    let now = now();
    let record = store
        .load(&id, now)
        .await
        .map_err(store_error)?
        .ok_or_else(|| Error::new("no live session with that id"))?;
    let created_at = if stores_creation || record.created_at != now {
        Some(record.created_at)
    } else {
        // Flask-Session's layout has no creation time for a session only
        // Flask-Session has written, and the store reports the time of
        // the load instead: loaded as of a second earlier (when a session
        // live now was live too), such a session moves with it, and one
        // created this very second does not.
        let earlier = now.saturating_sub(1);
        match store.load(&id, earlier).await.map_err(store_error)? {
            Some(record) if record.created_at == earlier && earlier < now => None,
            _ => Some(record.created_at),
        }
    };
    let mut data = record.data.clone();
    crate::python::as_python_reads_it(&mut data);
    let data = tagged::map_to_string(&data);
    if args.json {
        print_line(&show_json(&id, &record, created_at, &data)?)?;
    } else {
        let absolute = record
            .absolute_expires_at
            .map_or_else(|| "none".to_owned(), rfc3339);
        let user = user_field(record.user_id.as_deref());
        print_line(&format!(
            "id:               {}\n\
             user:             {user}\n\
             created:          {}\n\
             expires:          {}\n\
             absolute expiry:  {absolute}\n\
             data:             {data}",
            id.as_str(),
            created_at.map_or_else(
                || "unknown (Flask-Session, which wrote the session, stores none)".to_owned(),
                rfc3339
            ),
            rfc3339(record.expires_at),
        ))?;
    }
    Ok(true)
}

/// The `show --json` object: the session's fields, then `data` as the
/// tagged JSON exactly as written, which serde_json could not carry through
/// unchanged (Python's NaN, integers of any size, ASCII escapes).
fn show_json(
    id: &SessionId,
    record: &Record,
    created_at: Option<u64>,
    data: &str,
) -> Result<String> {
    let fields = SessionJson {
        id: id.as_str(),
        user_id: record.user_id.as_deref(),
        created_at,
        expires_at: unless_never(record.expires_at),
        absolute_expires_at: record.absolute_expires_at,
    };
    let mut json = serde_json::to_string(&fields)
        .map(terminal_safe_json)
        .map_err(|err| Error::new(format_args!("writing JSON: {err}")))?;
    // A struct always serializes to an object: `{…}`.
    if json.pop() != Some('}') {
        return Err(Error::new("writing JSON: the session is not an object"));
    }
    json.push_str(",\"data\":");
    json.push_str(data);
    json.push('}');
    Ok(json)
}

async fn revoke(store: &dyn SessionStore, args: RevokeArgs) -> Result<bool> {
    let id = args.session.id()?;
    // An expired session is already over, whether its store dropped it at
    // expiry (Redis) or keeps it until a sweep (SQL): both answer as `show`
    // and `revoke-user` do, and the expired record goes all the same.
    let live = match store.load(&id, now()).await {
        Ok(found) => found.is_some(),
        // Stored, but unreadable: revoking it by id is how it is ended.
        Err(StoreError::Corrupt(reason)) => {
            warn(&format!(
                "the session's data cannot be read ({reason}); revoking it all the same"
            ));
            true
        }
        Err(error) => return Err(store_error(error)),
    };
    let deleted = store.delete(&id).await.map_err(store_error)?;
    if !(live && deleted) {
        return Err(Error::new("no live session with that id"));
    }
    print_line(if args.json {
        r#"{"revoked":1}"#
    } else {
        "revoked"
    })?;
    Ok(true)
}

async fn revoke_user(store: &dyn SessionStore, args: RevokeUserArgs) -> Result<bool> {
    if args.user.is_empty() {
        return Err(Error::new("the user is empty"));
    }
    let revoked = store.delete_user(&args.user).await.map_err(store_error)?;
    if args.json {
        print_line(&serde_json::json!({ "revoked": revoked }).to_string())?;
    } else {
        print_line(&revoked.to_string())?;
    }
    Ok(revoked > 0)
}

/// The least pause between two batches of `purge-expired`.
const MIN_PURGE_PAUSE: Duration = Duration::from_millis(2);

async fn purge_expired(store: &dyn SessionStore, args: PurgeArgs) -> Result<bool> {
    // One instant throughout, so the loop ends even while sessions expire.
    let now = now();
    let batch = args.batch as usize;
    let progress = Progress::new(!args.no_progress, "expired sessions purged");
    let mut purged: u64 = 0;
    loop {
        let started = Instant::now();
        let deleted = store.purge_expired(now, batch).await.map_err(store_error)?;
        purged += deleted;
        progress.set(purged);
        if deleted < u64::from(args.batch) {
            break;
        }
        // The application's requests go on meanwhile: a pause as long as
        // the batch leaves them the store at least half the time. Back to
        // back, an SQLite application's writes (whose waits for the lock
        // back off up to 100 ms between tries) waited up to a second.
        tokio::time::sleep(started.elapsed().max(MIN_PURGE_PAUSE)).await;
    }
    drop(progress);
    if args.json {
        print_line(&serde_json::json!({ "purged": purged }).to_string())?;
    } else {
        print_line(&purged.to_string())?;
    }
    Ok(purged > 0)
}

/// A spinner with a count on stderr, drawn only when stderr is a terminal
/// and cleared when dropped, so that pipes and logs never see it.
struct Progress(ProgressBar);

impl Progress {
    fn new(enabled: bool, what: &'static str) -> Self {
        if !enabled || !io::stderr().is_terminal() {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {human_pos} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(what);
        bar.enable_steady_tick(Duration::from_millis(100));
        Self(bar)
    }

    fn set(&self, count: u64) {
        self.0.set_position(count);
    }

    /// Runs `f` with the spinner off the screen, for output to the terminal.
    fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.0.suspend(f)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Unix seconds as RFC 3339 UTC (`2023-11-14T22:13:20Z`), or `never` past
/// the year 9999 (a Redis key without a time to live, say).
fn rfc3339(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "never".to_owned())
}

/// A session's user in plain output: `-` for none, and a user id that could
/// pass for that (`-` itself) quoted, with the quotes of one that begins
/// with a quote escaped, so that `-` and `"…"` each mean one thing.
fn user_field(user: Option<&str>) -> Cow<'_, str> {
    match user {
        None => Cow::Borrowed("-"),
        Some(user) if user == "-" || user.starts_with('"') => {
            Cow::Owned(format!("\"{}\"", plain(user).replace('"', "\\\"")))
        }
        Some(user) => plain(user),
    }
}

/// `text` with control characters and backslashes escaped, so that a user id
/// cannot break the line or column structure of plain output, and with
/// invisible formatting characters escaped, so that it cannot pass for
/// another on a terminal (`eve\u{202e}nimda` shows as "eveadmin").
fn plain(text: &str) -> Cow<'_, str> {
    let escape = |c: char| c.is_control() || c == '\\' || is_invisible_format(c);
    if !text.chars().any(escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `json` with the characters [`plain`] escapes written as `\uXXXX`
/// escapes (serde_json writes all but the C0 controls as they are): the
/// same JSON, which an operator's terminal shows without obeying a user
/// id's control sequences or bidi overrides.
fn terminal_safe_json(json: String) -> String {
    let escape =
        |c: char| (c.is_control() && !c.is_ascii()) || c == '\u{7f}' || is_invisible_format(c);
    if !json.chars().any(escape) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that change how the text around them is shown without showing
/// themselves: Unicode's format characters (category Cf), its default
/// ignorable code points (variation selectors, fillers, tags) and the line
/// and paragraph separators.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user id's control characters and bidi overrides come out of
    /// `--json` escaped, as the plain output escapes them, and the JSON
    /// still reads back as the same user id.
    #[test]
    fn json_output_escapes_what_a_terminal_would_obey() {
        let user = "eve\u{202e}nimda\u{9b}2J\u{7f}\u{2028}\u{e0001}é\u{1}";
        let json = serde_json::to_string(&serde_json::json!({ "user_id": user }))
            .map(terminal_safe_json)
            .expect("JSON");
        assert!(json.chars().all(|c| c.is_ascii() || c == 'é'), "{json}");
        assert!(!json.chars().any(|c| c.is_control()), "{json}");
        for escaped in ["\\u202e", "\\u009b", "\\u007f", "\\u2028", "\\udb40\\udc01"] {
            assert!(json.contains(escaped), "{escaped} in {json}");
        }
        let back: serde_json::Value = serde_json::from_str(&json).expect("still JSON");
        assert_eq!(back["user_id"], user);
        assert_eq!(
            terminal_safe_json("{\"a\":\"é\"}".to_owned()),
            "{\"a\":\"é\"}"
        );
    }

    /// A value that is no id beside one that is, in a pasted Cookie header
    /// (a stale or planted cookie of the same name), is passed over, as the
    /// server passes over it; alone, it is refused with the reason.
    #[test]
    fn values_that_are_no_id_beside_an_id_are_passed_over() {
        let id = SessionId::generate();
        let text = id.as_str();
        for pasted in [
            format!("session=junk; session={text}"),
            format!("Cookie: session=; session={text}"),
            format!("session={text}; session=not%20an%20id"),
        ] {
            assert_eq!(
                parse_id(&pasted, "session", false).expect(&pasted),
                id,
                "{pasted}"
            );
        }
        let error = parse_id("session=junk; session=", "session", false)
            .expect_err("no id")
            .to_string();
        assert!(error.contains("expected 22 to 256 characters"), "{error}");
    }

    #[test]
    fn only_a_cookie_of_that_shape_is_called_one() {
        let encrypted = "A".repeat(300);
        for cookie in [
            "eyJ2aXNpdHMiOjF9.axHv7Q.Cr09GZm_beqrpCk_kgI7gfAQHe8",
            ".eJyrVkrOz8lJTS5JzEvPLFGyMjQ0MgQA.axHv7Q.hA7d9pnOGr0jkBwrV8xyhDP1Evg",
            encrypted.as_str(),
        ] {
            let error = parse_id(cookie, "session", false)
                .expect_err(cookie)
                .to_string();
            assert!(error.contains("tessera cookie decode"), "{cookie}: {error}");
        }
        for not_an_id in ["../../etc/passwd", "a.b", "abc def", "x.y.z.w.v"] {
            let error = parse_id(not_an_id, "session", false)
                .expect_err(not_an_id)
                .to_string();
            assert!(
                error.contains("expected 22 to 256 characters"),
                "{not_an_id}: {error}"
            );
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        // What the Redis stores report for a key without a time to live.
        assert_eq!(rfc3339((1 << 53) - 1), "never");
        assert_eq!(rfc3339(u64::MAX), "never");
        assert_eq!(unless_never(253_402_300_799), Some(253_402_300_799));
        assert_eq!(unless_never((1 << 53) - 1), None);
    }

    #[test]
    fn a_user_named_like_no_user_is_quoted() {
        assert_eq!(user_field(None), "-");
        assert_eq!(user_field(Some("-")), r#""-""#);
        assert_eq!(user_field(Some("--")), "--");
        assert_eq!(user_field(Some("alice")), "alice");
        assert_eq!(user_field(Some(r#""-""#)), r#""\"-\"""#);
        assert_eq!(user_field(Some(r#""a\"#)), r#""\"a\\""#);
        assert_eq!(user_field(Some(r#"a"b"#)), r#"a"b"#);
    }

    #[test]
    fn user_ids_cannot_break_lines() {
        assert_eq!(plain("alice"), "alice");
        assert_eq!(plain("émile"), "émile");
        assert_eq!(plain("a\tb\nc\\d"), "a\\tb\\nc\\\\d");
        assert_eq!(plain("eve\u{202e}nimda"), "eve\\u{202e}nimda");
        assert_eq!(plain("a\u{200b}b\u{feff}"), "a\\u{200b}b\\u{feff}");
        assert_eq!(plain("a\u{2028}b"), "a\\u{2028}b");
        for invisible in [
            '\u{34f}',
            '\u{fe0f}',
            '\u{3164}',
            '\u{115f}',
            '\u{17b4}',
            '\u{1d173}',
            '\u{1bca0}',
            '\u{13430}',
            '\u{890}',
            '\u{8e2}',
            '\u{110bd}',
            '\u{e0041}',
            '\u{e0100}',
        ] {
            let escaped = plain(&format!("alice{invisible}")).into_owned();
            assert_eq!(escaped, format!("alice{}", invisible.escape_default()));
        }
    }

    #[test]
    fn schemes() {
        for redis in [
            "redis",
            "rediss",
            "redis+unix",
            "unix",
            "valkey",
            "valkeys",
            "valkey+unix",
        ] {
            assert!(is_redis_scheme(redis), "{redis}");
        }
        assert!(!is_redis_scheme("postgres"));
        assert!(is_scheme("sqlite"));
        assert!(is_scheme("postgres+tls"));
        assert!(!is_scheme(""));
        assert!(!is_scheme("/var/lib"));
        assert!(!is_scheme("1abc"));
    }
}
