//! `tessera cookie …`: decode, verify and sign Flask session cookies.

use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use tessera::{tagged, CookieCodec, SecretKey, Value};

use crate::error::{Error, Result};
use crate::io;

/// The environment variable holding fallback keys, comma-separated.
const FALLBACKS_VAR: &str = "SECRET_KEY_FALLBACKS";

#[derive(Debug, Subcommand)]
pub(crate) enum CookieCommand {
    /// Verify a session cookie and print its contents as tagged JSON.
    #[command(
        long_about = "Verify a Flask session cookie and print its contents on one line \
            of Flask tagged JSON (the exact JSON Flask signs: sorted keys, ASCII only, \
            tuples as {\" t\": [...]}, bytes as {\" b\": \"base64\"}, ...).\n\n\
            With a secret key the signature and age are checked: a refused cookie (bad \
            signature, expired, malformed, too large, not an object, timestamp in the \
            future) exits with status 1 and a one-line reason on stderr.\n\n\
            Without a secret key (no --secret-key and no SECRET_KEY) the payload is \
            decoded WITHOUT checking the signature and a warning says so: anyone can \
            read a Flask session cookie, only the key proves who wrote it.\n\n\
            Keys: --secret-key wins over the SECRET_KEY environment variable; \
            --fallback-key (repeatable, oldest first) wins over SECRET_KEY_FALLBACKS \
            (comma-separated, oldest first, like Flask's SECRET_KEY_FALLBACKS). Each \
            option falls back to its variable independently.",
        after_help = "Examples:\n  \
            tessera cookie decode --secret-key dev-secret-key --max-age 999999999 \\\n      \
            eyJuYW1lIjoiYWxpY2UiLCJ1c2VyX2lkIjo0Mn0.ZVPxAA.oBF4FsEPGc1aqRIni6RktBSluqI\n  \
            {\"name\":\"alice\",\"user_id\":42}\n\n  \
            SECRET_KEY=… tessera cookie decode 'session=eyJ…'   # a pasted 'session=' is fine\n  \
            pbpaste | tessera cookie decode -                 # read the cookie from stdin\n  \
            tessera cookie decode 'eyJ…'                      # no key: UNVERIFIED contents"
    )]
    Decode(DecodeArgs),
    /// Sign a session (tagged JSON object on stdin) and print the cookie value.
    #[command(
        long_about = "Read a session from stdin as a JSON object (Flask tagged JSON: \
            {\" t\": [...]} is a tuple, {\" b\": \"...\"} bytes, {\" u\": \"...\"} a UUID, \
            {\" d\": \"...\"} a datetime, {\" m\": \"...\"} Markup), sign it now with the \
            secret key exactly as Flask would, and print the cookie value on stdout.\n\n\
            --secret-key wins over the SECRET_KEY environment variable.",
        after_help = "Example:\n  \
            echo '{\"user_id\": 42, \"_flashes\": [{\" t\": [\"message\", \"Hi\"]}]}' \\\n      \
            | tessera cookie sign --secret-key \"$SECRET_KEY\""
    )]
    Sign(SignArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The secret key (Flask's SECRET_KEY). Without one (or an empty one) the cookie is decoded UNVERIFIED.
    #[arg(long, value_name = "KEY", env = "SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,

    /// An older key still accepted (repeatable, oldest first).
    /// Default: SECRET_KEY_FALLBACKS, comma-separated.
    #[arg(long = "fallback-key", value_name = "KEY")]
    fallback_keys: Vec<String>,

    /// Refuse cookies signed longer ago than this (Flask's PERMANENT_SESSION_LIFETIME).
    #[arg(long, value_name = "SECONDS", default_value_t = tessera::config::DEFAULT_LIFETIME_SECS)]
    max_age: u64,

    /// The signing salt.
    #[arg(long, value_name = "SALT", default_value = tessera::DEFAULT_SALT)]
    salt: String,

    /// Refuse payloads larger than this after base64 decoding and inflating.
    #[arg(long, value_name = "BYTES", default_value_t = tessera::DEFAULT_MAX_PAYLOAD_SIZE)]
    max_payload_size: usize,

    /// The cookie value, or '-' to read it from stdin. A leading 'session=' is ignored.
    #[arg(value_name = "COOKIE", allow_hyphen_values = true)]
    cookie: String,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The secret key (Flask's SECRET_KEY).
    #[arg(long, value_name = "KEY", env = "SECRET_KEY", hide_env_values = true)]
    secret_key: String,

    /// The signing salt.
    #[arg(long, value_name = "SALT", default_value = tessera::DEFAULT_SALT)]
    salt: String,
}

pub(crate) fn run(command: CookieCommand) -> Result<()> {
    match command {
        CookieCommand::Decode(args) => decode(args),
        CookieCommand::Sign(args) => sign(args),
    }
}

fn decode(args: DecodeArgs) -> Result<()> {
    let input = if args.cookie == "-" {
        io::read_stdin("the cookie")?
    } else {
        args.cookie
    };
    let cookie = clean_cookie(&input);
    if cookie.is_empty() {
        return Err(Error::new("malformed: the cookie is empty"));
    }
    let decoded = match args.secret_key.filter(|key| !key.is_empty()) {
        Some(secret_key) => {
            let fallbacks: Vec<SecretKey> = if args.fallback_keys.is_empty() {
                fallbacks_from_env()?
            } else {
                args.fallback_keys
                    .into_iter()
                    .filter(|key| !key.is_empty())
                    .map(SecretKey::from)
                    .collect()
            };
            CookieCodec::with_salt(&secret_key.as_str().into(), &fallbacks, &args.salt)
                .max_age(Duration::from_secs(args.max_age))
                .max_payload_size(args.max_payload_size)
                .decode(cookie, SystemTime::now())?
        }
        None => {
            let decoded = tessera::decode_unverified(cookie, args.max_payload_size)?;
            io::warn(
                "UNVERIFIED: no secret key given (--secret-key or SECRET_KEY), so the \
                 signature was not checked; anyone can write these contents",
            );
            decoded
        }
    };
    io::print_line(&tagged::map_to_string(&decoded.data))
}

fn sign(args: SignArgs) -> Result<()> {
    if args.secret_key.is_empty() {
        return Err(Error::new(
            "the secret key is empty: pass --secret-key KEY or set SECRET_KEY",
        ));
    }
    let input = io::read_stdin("the session")?;
    let data = match tagged::from_str(&input) {
        Ok(Value::Dict(map)) => map,
        Ok(other) => {
            return Err(Error::new(format_args!(
                "not an object: the session must be a JSON object, got {}",
                kind(&other)
            )))
        }
        Err(err) => return Err(Error::new(format_args!("invalid JSON on stdin: {err}"))),
    };
    let key = SecretKey::from(args.secret_key);
    if let Some(reason) = key.weakness() {
        io::warn(&format!(
            "the secret key is weak: {reason}; anyone who guesses it can forge sessions"
        ));
    }
    let cookie = CookieCodec::with_salt(&key, &[], &args.salt).encode(&data, SystemTime::now());
    io::print_line(&cookie)
}

/// `SECRET_KEY_FALLBACKS`, split as the library's configuration splits it.
fn fallbacks_from_env() -> Result<Vec<SecretKey>> {
    match std::env::var(FALLBACKS_VAR) {
        Ok(value) => Ok(tessera::config::parse_fallback_keys(&value)),
        Err(std::env::VarError::NotPresent) => Ok(Vec::new()),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::new(format_args!(
            "{FALLBACKS_VAR} is not valid UTF-8"
        ))),
    }
}

/// The cookie value from what was pasted: surrounding whitespace and quotes,
/// a `session=` (or any `name=`) prefix and trailing `; Path=/…` attributes
/// are dropped. A cookie value itself never contains `=`, `;` or spaces.
fn clean_cookie(input: &str) -> &str {
    let mut cookie = input.trim();
    if let Some((before, _)) = cookie.split_once(';') {
        cookie = before.trim_end();
    }
    if let Some((name, value)) = cookie.split_once('=') {
        if tessera::config::is_valid_cookie_name(name.trim()) {
            cookie = value.trim_start();
        }
    }
    cookie
        .strip_prefix('"')
        .and_then(|c| c.strip_suffix('"'))
        .unwrap_or(cookie)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "an array",
        Value::Dict(_) => "an object",
        Value::Tuple(_) => "a tagged tuple",
        Value::Bytes(_) => "tagged bytes",
        Value::Markup(_) => "tagged Markup",
        Value::Uuid(_) => "a tagged UUID",
        Value::DateTime(_) => "a tagged datetime",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_cookies_are_cleaned() {
        for pasted in [
            "abc.def.ghi",
            "  abc.def.ghi\n",
            "session=abc.def.ghi",
            "session = abc.def.ghi",
            "session=abc.def.ghi; Path=/; HttpOnly",
            "\"abc.def.ghi\"",
            "session=\"abc.def.ghi\"",
        ] {
            assert_eq!(clean_cookie(pasted), "abc.def.ghi", "{pasted:?}");
        }
        assert_eq!(clean_cookie(".eJw.def.ghi"), ".eJw.def.ghi");
    }
}
