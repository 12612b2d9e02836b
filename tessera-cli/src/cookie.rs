//! `tessera cookie …`: decode, verify and sign Flask session cookies, and
//! open and seal tessera's encrypted ones.

use std::borrow::Cow;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use tessera::{tagged, CookieCodec, DecodeError, SecretKey, SignatureError, Value, PERMANENT_KEY};

use crate::env;
use crate::error::{Error, Result};
use crate::io;
use crate::key;
use crate::python;

/// The environment variable holding fallback keys, comma-separated.
const FALLBACKS_VAR: &str = "SECRET_KEY_FALLBACKS";

/// What Flask's default configuration writes after a session cookie's value.
const DEFAULT_ATTRIBUTES: &str = "; HttpOnly; Path=/";
/// What a permanent session's cookie carries besides: an HTTP date is always
/// 29 bytes long.
const EXPIRES_ATTRIBUTE: &str = "; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

/// The default `SESSION_COOKIE_NAME`, which an encrypted cookie is bound to.
pub(crate) const DEFAULT_COOKIE_NAME: &str = "session";

#[derive(Debug, Subcommand)]
pub(crate) enum CookieCommand {
    /// Verify a session cookie and print its contents as tagged JSON.
    #[command(
        long_about = "Verify a Flask session cookie and print its contents on one line \
            of Flask tagged JSON (the JSON Flask would sign for the session it reads: sorted keys, ASCII only, \
            tuples as {\" t\": [...]}, bytes as {\" b\": \"base64\"}, ...; a string \
            holding a lone UTF-16 surrogate, which Python allows and Rust does not, \
            shows it as U+FFFD, as tessera's sessions read it).\n\n\
            With a secret key the signature and age are checked: a refused cookie (bad \
            signature, expired, malformed, too large, not an object, timestamp in the \
            future) exits with status 1 and a one-line reason on stderr.\n\n\
            Without a secret key (no --secret-key and no SECRET_KEY) the payload is \
            decoded WITHOUT checking the signature or the age and a warning says so: \
            anyone can read a Flask session cookie, only the key proves who wrote it. \
            An empty or blank key, or fallback keys without a key, is an error, never a reason \
            to skip verification.\n\n\
            As the application reads them, PERMANENT_SESSION_LIFETIME (the max age) \
            and SESSION_COOKIE_NAME come from the environment unless --max-age and \
            --cookie-name are given (empty or blank, they count as unset).\n\n\
            Keys: --secret-key-file (the key's bytes in a file, one trailing line end \
            dropped) or --secret-key wins over the SECRET_KEY environment variable; \
            --fallback-key (repeatable, oldest first) wins over SECRET_KEY_FALLBACKS \
            (comma-separated, oldest first, blanks around each key dropped; or a JSON list \
            of strings, each key exactly as written, as Flask's from_prefixed_env reads \
            FLASK_SECRET_KEY_FALLBACKS). Each \
            option falls back to its variable independently. A key need not be UTF-8 \
            (Flask's quickstart key is not). Prefer the variables or --secret-key-file for \
            real keys: the command line of a running process is visible to other users \
            of the machine.\n\n\
            With --encrypted the cookie is one of tessera's encrypted cookies \
            (SESSION_TYPE=encrypted): it is decrypted and authenticated with the key \
            or a fallback, and its age checked, with the same reasons for refusal \
            (plus \"cannot decrypt\" for another key, another cookie name or a changed \
            cookie). Its contents cannot be read without the key, so --encrypted \
            requires one (without one, a usage error: status 2). The cookie is bound to the name it is sent under: \
            --cookie-name, else SESSION_COOKIE_NAME, else \"session\", as the app names it.",
        after_help = "Examples:\n  \
            tessera cookie decode --secret-key dev-secret-key --max-age 999999999 \\\n      \
            eyJuYW1lIjoiYWxpY2UiLCJ1c2VyX2lkIjo0Mn0.ZVPxAA.oBF4FsEPGc1aqRIni6RktBSluqI\n  \
            {\"name\":\"alice\",\"user_id\":42}\n\n  \
            SECRET_KEY=… tessera cookie decode 'session=eyJ…'   # a pasted 'session=' is fine\n  \
            pbpaste | tessera cookie decode -                 # read the cookie from stdin\n  \
            tessera cookie decode 'eyJ…'                      # no key: UNVERIFIED contents\n  \
            tessera cookie decode --encrypted --cookie-name __Host-session 'E…'   # SECRET_KEY from the environment"
    )]
    Decode(DecodeArgs),
    /// Sign a session (tagged JSON object on stdin) and print the cookie value.
    #[command(
        long_about = "Read a session from stdin as a JSON object (Flask tagged JSON: \
            {\" t\": [...]} is a tuple, {\" b\": \"...\"} bytes, {\" u\": \"...\"} a UUID, \
            {\" d\": \"...\"} a datetime, {\" m\": \"...\"} Markup), sign it now with the \
            secret key exactly as Flask would, and print the cookie value on stdout. A \
            string holding a lone UTF-16 surrogate (\"\\ud800\") is refused: Rust \
            strings cannot hold one.\n\n\
            With --encrypted, seal it instead as tessera does with SESSION_TYPE=encrypted \
            (XChaCha20-Poly1305, bound to --cookie-name, else SESSION_COOKIE_NAME, else \
            \"session\", the name the app sends it under): \
            the result can only be read with the key. --compress (or \
            TESSERA_ENCRYPTED_COMPRESSION=true in the environment, as the app reads it) \
            compresses it first; off by default, because compressing secrets beside \
            attacker-influenced data reveals them through the cookie's length \
            (CRIME/BREACH).\n\n\
            A cookie larger than MAX_COOKIE_SIZE (from the environment, as the app reads \
            it: Werkzeug's 4093 bytes by default, 0 for no check), counting its name and \
            Flask's default attributes (and the expiry date of a permanent session's, \
            \"_permanent\": true), is warned about: browsers may ignore it.\n\n\
            --secret-key-file (the key's bytes in a file, one trailing line end dropped) \
            or --secret-key wins over the SECRET_KEY environment variable; a key need not \
            be UTF-8.",
        after_help = "Examples:\n  \
            echo '{\"user_id\": 42, \"_flashes\": [{\" t\": [\"message\", \"Hi\"]}]}' \\\n      \
            | tessera cookie sign              # the key from SECRET_KEY\n  \
            echo '{\"user_id\": 42}' | tessera cookie sign --encrypted"
    )]
    Sign(SignArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The secret key (Flask's SECRET_KEY). Without one a signed cookie is decoded UNVERIFIED;
    /// an empty or blank one is an error. Default: the SECRET_KEY environment variable.
    #[arg(long, value_name = "KEY")]
    secret_key: Option<OsString>,

    /// Read the secret key's bytes from this file instead (one trailing line end, "\n" or
    /// "\r\n", is dropped): unlike --secret-key, it does not show in process listings.
    #[arg(long, value_name = "PATH", conflicts_with = "secret_key")]
    secret_key_file: Option<PathBuf>,

    /// The cookie is encrypted (SESSION_TYPE=encrypted): decrypt it with the key, which is then required.
    #[arg(long)]
    encrypted: bool,

    /// The cookie's name (SESSION_COOKIE_NAME): picks it out of a pasted Cookie or Set-Cookie header, and an
    /// encrypted cookie is bound to it; given here or in the environment, a pasted name=value of another
    /// name is refused. Default: the SESSION_COOKIE_NAME environment variable, else the name pasted with
    /// a bare name=value, else "session".
    #[arg(long, value_name = "NAME", value_parser = cookie_name_option)]
    cookie_name: Option<String>,

    /// An older key still accepted (repeatable, oldest first).
    /// Default: SECRET_KEY_FALLBACKS, comma-separated or a JSON list of strings.
    #[arg(long = "fallback-key", value_name = "KEY")]
    fallback_keys: Vec<OsString>,

    /// Refuse cookies signed (or sealed) longer ago than this: the application's
    /// PERMANENT_SESSION_LIFETIME, which the environment variable of that name gives
    /// (in seconds), else Flask's default of 31 days (2678400). From 1 to 3153600000, the
    /// lifetimes the application takes.
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=tessera::config::MAX_LIFETIME_SECS)
    )]
    max_age: Option<u64>,

    /// The signing salt (for an encrypted cookie, the key derivation's salt).
    #[arg(long, value_name = "SALT", default_value = tessera::DEFAULT_SALT)]
    salt: String,

    /// Refuse payloads larger than this after base64 decoding, decrypting and inflating.
    /// Default: the TESSERA_MAX_PAYLOAD_SIZE environment variable, else 1048576, as the
    /// application bounds them. At least 4096, as the application takes it.
    #[arg(long, value_name = "BYTES", value_parser = env::payload_size)]
    max_payload_size: Option<usize>,

    /// The cookie value, or '-' to read it from stdin. A pasted 'session=value', 'Cookie: …' or
    /// 'Set-Cookie: …' header, or a Cookie header's value ('a=1; session=value') is fine: the
    /// session cookie is taken from it, read as Flask reads a Cookie header. Several lines
    /// (one Cookie line per cookie, as HTTP/2 sends them) are read one by one; `curl -v`
    /// output's '> ', '< ' and '* ' line markers are dropped, and among header lines (a
    /// whole `curl -i` response) only the Cookie and Set-Cookie ones are read; of a response
    /// that sets the cookie more than once, the last, which the browser keeps. A request
    /// copied from the browser's developer tools as a curl command ("Copy as cURL", bash) is
    /// read for its cookies ('-b …', '--cookie …' or '-H "Cookie: …"').
    #[arg(value_name = "COOKIE")]
    cookie: String,
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The secret key (Flask's SECRET_KEY). Default: the SECRET_KEY environment variable.
    #[arg(long, value_name = "KEY")]
    secret_key: Option<OsString>,

    /// Read the secret key's bytes from this file instead (one trailing line end, "\n" or
    /// "\r\n", is dropped): unlike --secret-key, it does not show in process listings.
    #[arg(long, value_name = "PATH", conflicts_with = "secret_key")]
    secret_key_file: Option<PathBuf>,

    /// The signing salt (for an encrypted cookie, the key derivation's salt).
    #[arg(long, value_name = "SALT", default_value = tessera::DEFAULT_SALT)]
    salt: String,

    /// Encrypt the session as SESSION_TYPE=encrypted does, instead of signing it.
    #[arg(long)]
    encrypted: bool,

    /// The name the encrypted cookie will be sent under: it is bound into the cookie. Default: the
    /// SESSION_COOKIE_NAME environment variable, else "session", as the application names it.
    #[arg(long, value_name = "NAME", requires = "encrypted", value_parser = cookie_name_option)]
    cookie_name: Option<String>,

    /// Compress the session before encrypting it; without it, as TESSERA_ENCRYPTED_COMPRESSION in
    /// the environment says, as the application does. Leaks secrets stored beside
    /// attacker-influenced data through the cookie's length.
    #[arg(long, requires = "encrypted")]
    compress: bool,
}

/// `--cookie-name`, held to what the application takes for
/// `SESSION_COOKIE_NAME`: a name it refuses would find no cookie here.
fn cookie_name_option(name: &str) -> std::result::Result<String, String> {
    if tessera::config::is_valid_cookie_name(name) {
        Ok(name.to_owned())
    } else {
        Err("not a cookie name (a token of letters, digits, - _ . ! etc.)".to_owned())
    }
}

pub(crate) fn run(command: CookieCommand) -> Result<()> {
    match command {
        CookieCommand::Decode(args) => decode(args),
        CookieCommand::Sign(args) => sign(args),
    }
}

fn decode(args: DecodeArgs) -> Result<()> {
    let input = if args.cookie == "-" {
        io::read_stdin_header_text("the cookie")?
    } else {
        args.cookie
    };
    let max_age = match args.max_age {
        Some(max_age) => max_age,
        None => env::max_age()?.unwrap_or(tessera::config::DEFAULT_LIFETIME_SECS),
    };
    let max_payload_size = match args.max_payload_size {
        Some(bytes) => bytes,
        None => env::max_payload_size("--max-payload-size")?
            .unwrap_or(tessera::DEFAULT_MAX_PAYLOAD_SIZE),
    };
    let env_cookie_name = match args.cookie_name {
        Some(_) => None,
        None => env::cookie_name()?,
    };
    let given_name = args.cookie_name.as_deref().or(env_cookie_name.as_deref());
    let wanted_name = given_name.unwrap_or(DEFAULT_COOKIE_NAME);
    let (pasted_name, candidates) = pasted_cookies(&input, wanted_name, given_name.is_some())?;
    let cookie_name = given_name.or(pasted_name).unwrap_or(DEFAULT_COOKIE_NAME);
    if args
        .fallback_keys
        .iter()
        .any(|key| key::is_blank(key.as_encoded_bytes()))
    {
        return Err(Error::new("a --fallback-key is empty or only blanks"));
    }
    let fallbacks: Vec<SecretKey> = if args.fallback_keys.is_empty() {
        let fallbacks = fallbacks_from_env()?;
        // Refused as the application refuses it at startup: with an empty
        // fallback, anyone's cookie would read as verified.
        if let Some(index) = fallbacks.iter().position(|key| key.as_bytes().is_empty()) {
            return Err(Error::new(
                tessera::ConfigError::EmptyFallbackKey {
                    position: index + 1,
                }
                .to_string(),
            ));
        }
        fallbacks
    } else {
        args.fallback_keys
            .into_iter()
            .map(|fallback| key::bytes(fallback, "--fallback-key").map(SecretKey::from))
            .collect::<Result<_>>()?
    };
    // A script that passes an unset variable as the key must not get
    // unverified contents with status 0: only the absence of every key
    // means "read it without checking".
    let secret_key = key::secret_key(args.secret_key, args.secret_key_file.as_deref())?;
    let decoded = match secret_key {
        Some(secret_key) if key::is_blank(&secret_key) => {
            return Err(Error::new(if args.encrypted {
                "the secret key is empty or only blanks: pass the app's SECRET_KEY with --secret-key \
                 (an encrypted cookie cannot be read without it)"
            } else {
                "the secret key is empty or only blanks: pass the app's SECRET_KEY with \
                 --secret-key, \
                 or give no key at all (neither --secret-key nor SECRET_KEY) to read \
                 the contents unverified"
            }))
        }
        Some(secret_key) => {
            let key = SecretKey::from(secret_key);
            let codec = if args.encrypted {
                CookieCodec::encrypted_with_salt(&key, &fallbacks, &args.salt, cookie_name)
            } else {
                CookieCodec::with_salt(&key, &fallbacks, &args.salt)
            }
            .max_age(Duration::from_secs(max_age))
            .max_payload_size(max_payload_size);
            // As the server does with several cookies of one name: the
            // first that verifies; else why the first was refused.
            let mut first_refusal = None;
            let mut found = None;
            for (position, cookie) in candidates.iter().enumerate() {
                match codec.decode(cookie, SystemTime::now()) {
                    Ok(decoded) => {
                        note_duplicates(candidates.len(), position, cookie_name, args.encrypted);
                        found = Some(decoded);
                        break;
                    }
                    Err(DecodeError::Decrypt)
                        if args.encrypted && server_side_id(cookie).is_none() =>
                    {
                        // The name is bound into the cookie: say which one
                        // was tried, and where it came from.
                        let source = if args.cookie_name.is_some() {
                            "--cookie-name's"
                        } else if env_cookie_name.is_some() {
                            "SESSION_COOKIE_NAME's, from the environment"
                        } else if pasted_name.is_some() {
                            "the pasted one"
                        } else {
                            "the default; pass the app's SESSION_COOKIE_NAME with \
                             --cookie-name if it is another"
                        };
                        first_refusal.get_or_insert_with(|| {
                            Error::new(format_args!(
                                "{} (opened as an encrypted cookie named {cookie_name:?}, \
                                 {source})",
                                DecodeError::Decrypt
                            ))
                        });
                    }
                    Err(err) => {
                        first_refusal.get_or_insert_with(|| refusal(err, cookie, args.encrypted));
                    }
                }
            }
            match (found, first_refusal) {
                (Some(decoded), _) => decoded,
                (None, Some(refusal)) => return Err(refusal),
                (None, None) => return Err(Error::new("malformed: the cookie is empty")),
            }
        }
        // A usage error, as when `sign` is given no key.
        None if args.encrypted => clap::Error::raw(
            clap::error::ErrorKind::MissingRequiredArgument,
            "no secret key: an encrypted cookie cannot be read without its key; \
             pass --secret-key-file PATH or --secret-key KEY, or set SECRET_KEY\n",
        )
        .exit(),
        None if !fallbacks.is_empty() => {
            return Err(Error::new(
                "fallback keys given without a secret key: pass the app's SECRET_KEY \
                 too (--secret-key or SECRET_KEY); with no key at all the contents are \
                 read unverified",
            ))
        }
        None => {
            // The first that decodes, as with a key; else why the first did not.
            let mut results = candidates.iter().enumerate().map(|(position, cookie)| {
                tessera::decode_unverified(cookie, max_payload_size)
                    .map(|decoded| (position, decoded))
                    .map_err(|err| refusal(err, cookie, false))
            });
            let first = results
                .next()
                .unwrap_or_else(|| Err(Error::new("malformed: the cookie is empty")));
            let (position, decoded) = match first {
                Ok(found) => found,
                Err(first_refusal) => results.find_map(Result::ok).ok_or(first_refusal)?,
            };
            note_duplicates(candidates.len(), position, cookie_name, false);
            io::warn(
                "UNVERIFIED: no secret key given (--secret-key or SECRET_KEY), so neither \
                 the signature nor the age was checked; anyone can write these contents",
            );
            decoded
        }
    };
    // As Flask's session holds it: `1E5` in a cookie another writer made is
    // the float 100000.0 there.
    let mut data = decoded.data;
    python::as_python_reads_it(&mut data);
    io::print_line(&tagged::map_to_string(&data))
}

fn sign(args: SignArgs) -> Result<()> {
    let Some(secret_key) = key::secret_key(args.secret_key, args.secret_key_file.as_deref())?
    else {
        // A usage error, as when clap finds a required option missing.
        clap::Error::raw(
            clap::error::ErrorKind::MissingRequiredArgument,
            "no secret key: pass --secret-key-file PATH or --secret-key KEY, or set SECRET_KEY\n",
        )
        .exit()
    };
    if key::is_blank(&secret_key) {
        return Err(Error::new(
            "the secret key is empty or only blanks: pass --secret-key KEY or set SECRET_KEY",
        ));
    }
    let input = io::read_stdin("the session")?;
    let mut data = match tagged::from_str_strict(&input) {
        Ok(Value::Dict(map)) => map,
        Ok(other) => {
            return Err(Error::new(format_args!(
                "not an object: the session must be a JSON object, got {}",
                kind(&other)
            )))
        }
        Err(err) => return Err(Error::new(format_args!("invalid JSON on stdin: {err}"))),
    };
    python::as_python_reads_it(&mut data);
    let json_len = tagged::map_to_string(&data).len();
    // `sign` has no option for it: the bound is the application's.
    let (max_payload_size, bound_from) = match env::max_payload_size("")? {
        Some(bytes) => (bytes, " (TESSERA_MAX_PAYLOAD_SIZE)"),
        None => (tessera::DEFAULT_MAX_PAYLOAD_SIZE, ""),
    };
    if json_len > max_payload_size {
        return Err(Error::new(format_args!(
            "too large: the session is {json_len} bytes of JSON, and tessera refuses \
             sessions over {max_payload_size} bytes{bound_from} when it reads them"
        )));
    }
    // An encrypted cookie opens only under the name it was sealed for: the
    // application's, unless told otherwise. A signed one does not depend on
    // it, but its size check counts it as the application sends it.
    let cookie_name = match (&args.cookie_name, args.encrypted) {
        (Some(name), _) => name.clone(),
        (None, true) => env::cookie_name()?.unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned()),
        // Only counted: a name the application would refuse is its to refuse.
        (None, false) => env::cookie_name()
            .ok()
            .flatten()
            .unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned()),
    };
    let key = SecretKey::from(secret_key);
    if let Some(reason) = key.weakness() {
        io::warn(&format!(
            "the secret key is weak: {reason}; anyone who guesses it can forge sessions"
        ));
    }
    let codec = if args.encrypted {
        CookieCodec::encrypted_with_salt(&key, &[], &args.salt, &cookie_name)
            .encrypted_compression(args.compress || env::encrypted_compression()?)
    } else {
        CookieCodec::with_salt(&key, &[], &args.salt)
    }
    // The read-back below, as the application reads.
    .max_payload_size(max_payload_size);
    let now = SystemTime::now();
    let cookie = codec.encode(&data, now);
    // What Python's reading made of the input can be more deeply nested
    // than the input (`{" t": "ab"}` is the tuple `("a", "b")`): a cookie
    // the application would refuse to read is refused here, as the
    // application refuses to send one.
    if let Err(reason) = codec.decode(&cookie, now) {
        return Err(Error::new(format_args!(
            "the session would not read back: {reason}"
        )));
    }
    // Werkzeug's check (and tessera's MAX_COOKIE_SIZE) counts the whole
    // Set-Cookie value: with Flask's default attributes here (more
    // attributes only make it longer), and the expiry date that Flask (and
    // tessera) add to a permanent session's cookie.
    let expires_len = if data.get(PERMANENT_KEY).is_some_and(Value::is_truthy) {
        EXPIRES_ATTRIBUTE.len()
    } else {
        0
    };
    let set_cookie_len =
        cookie_name.len() + 1 + cookie.len() + DEFAULT_ATTRIBUTES.len() + expires_len;
    let max_cookie_size = env::max_cookie_size()?;
    if max_cookie_size > 0 && set_cookie_len > max_cookie_size {
        // Flask reads no encrypted cookie, so it has nothing to say of one.
        let flask = if args.encrypted {
            ""
        } else {
            ", and Flask warns when it sets one"
        };
        let expiry = if expires_len > 0 {
            " and a permanent session's expiry date"
        } else {
            ""
        };
        io::warn(&format!(
            "the cookie is too large: {set_cookie_len} bytes with its name and the default \
             attributes (Flask's){expiry}, over the {} of MAX_COOKIE_SIZE; browsers may \
             silently ignore it{flask}",
            max_cookie_size
        ));
    }
    io::print_line(&cookie)
}

/// Several cookies of the session's name (set for other paths or domains,
/// say) are a common cause of lost logins, and Flask reads only the first of
/// them, where tessera's server takes the first that verifies: say which one
/// is shown. (Flask reads no encrypted cookie at all.)
fn note_duplicates(count: usize, position: usize, cookie_name: &str, encrypted: bool) {
    if count < 2 {
        return;
    }
    let which = if encrypted {
        format!(
            "this is the {}, the first that could be opened, as tessera's server takes it",
            ordinal(position + 1)
        )
    } else if position == 0 {
        "this is the first, the one Flask reads".to_owned()
    } else {
        format!(
            "this is the {}, the first that could be read; Flask reads only the first, \
             which could not be (tessera's server takes the first that verifies)",
            ordinal(position + 1)
        )
    };
    io::warn(&format!(
        "the header has {count} cookies named {cookie_name:?} (set for other paths or \
         domains?); {which}"
    ));
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The reason a cookie was refused, with a hint when it looks like the other
/// kind: signed cookies always hold dots, encrypted ones never do.
fn refusal(err: DecodeError, cookie: &str, encrypted: bool) -> Error {
    // `Cookie: session=`: what the app reads as no session at all.
    if cookie.is_empty() {
        return Error::new("malformed: the cookie is empty");
    }
    // A sealed cookie's base64 starts with its header's `E` and is at least
    // 66 characters; a 43-character one may still be an id (tessera's own,
    // Flask-Session's by default).
    const DEFAULT_ID_LEN: usize = 43;
    if encrypted
        && cookie.starts_with('E')
        && cookie.len() < SHORTEST_ENCRYPTED
        && cookie.len() != DEFAULT_ID_LEN
    {
        return Error::new(format_args!(
            "{err} (an encrypted cookie is at least {SHORTEST_ENCRYPTED} characters, this one \
             {}: it may have been cut short in copying)",
            cookie.len()
        ));
    }
    if let Some(signed) = server_side_id(cookie) {
        return Error::new(format_args!(
            "{err} (this looks like a server-side session's id{}, which holds no data: look \
             the session up with `tessera sessions show ID --store URL`)",
            if signed {
                ", signed as with SESSION_USE_SIGNER"
            } else {
                ""
            }
        ));
    }
    // An encrypted cookie's time is when it was sealed: nothing signs it.
    if let (true, DecodeError::Signature(SignatureError::Expired { age, max_age })) =
        (encrypted, &err)
    {
        return Error::new(format_args!(
            "expired: sealed {age} s ago, max age is {max_age} s"
        ));
    }
    let malformed = matches!(
        err,
        DecodeError::Malformed(_) | DecodeError::Signature(SignatureError::Malformed(_))
    );
    match (malformed, encrypted, cookie.contains('.')) {
        (true, true, true) => Error::new(format_args!(
            "{err} (this looks like a signed cookie: drop --encrypted)"
        )),
        (true, false, false) => Error::new(format_args!(
            "{err} (if this is an encrypted cookie, from SESSION_TYPE=encrypted, pass --encrypted and its key)"
        )),
        _ => Error::new(err),
    }
}

/// The length of the shortest encrypted cookie's value.
const SHORTEST_ENCRYPTED: usize = 66;

/// Whether `cookie` is a server-side session's id (the demo's default,
/// Flask-Session's) rather than a cookie holding a session: `Some(true)` for
/// an id with a signature (`id.signature`, `SESSION_USE_SIGNER`). A bare id
/// shorter than any encrypted cookie (66 characters) is one; a signed
/// cookie has two dots, an id with its signature one.
pub(crate) fn server_side_id(cookie: &str) -> Option<bool> {
    if cookie.len() < SHORTEST_ENCRYPTED && tessera::store::SessionId::parse(cookie).is_some() {
        return Some(false);
    }
    let (id, signature) = cookie.split_once('.')?;
    let signature_like = !signature.is_empty()
        && signature
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (signature_like && tessera::store::SessionId::parse(id).is_some()).then_some(true)
}

/// `SECRET_KEY_FALLBACKS`, split as the library's configuration splits it.
/// Keys that are not UTF-8 are split the same way, on their bytes.
fn fallbacks_from_env() -> Result<Vec<SecretKey>> {
    let Some(value) = std::env::var_os(FALLBACKS_VAR) else {
        return Ok(Vec::new());
    };
    let value = match value.into_string() {
        Ok(text) => {
            return tessera::config::parse_fallback_keys(&text)
                .map_err(|error| Error::new(error.to_string()))
        }
        Err(value) => key::bytes(value, FALLBACKS_VAR)?,
    };
    Ok(value
        .split(|&byte| byte == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|key| !key.is_empty())
        .map(SecretKey::from)
        .collect())
}

/// The cookie's name, if one was pasted, and the values to try, from what
/// was pasted: a bare value, `name=value`, a `Cookie:` header (every cookie
/// named `wanted_name`, in order) or a `Set-Cookie:` header (its cookie,
/// without the attributes), on one line or several. The blanks a paste adds
/// around them (space, tab, line ends) and quotes are dropped.
/// A cookie value itself never contains `=`, `;` or spaces.
///
/// `name_given`: whether `wanted_name` was given (`--cookie-name` or
/// `SESSION_COOKIE_NAME`) rather than the default; a pasted `name=value` of
/// another name is then refused, as a header without that cookie is.
pub(crate) fn pasted_cookies<'a>(
    input: &'a str,
    wanted_name: &'a str,
    name_given: bool,
) -> Result<(Option<&'a str>, Vec<Cow<'a, str>>)> {
    // A request copied from the browser's developer tools as a curl command:
    // its cookies are in `-b` (Chrome) or a Cookie header (Firefox).
    if let Some(headers) = curl_command_cookies(input)? {
        let (name, values) = pasted_cookies(&headers, wanted_name, name_given)?;
        let name = name.map(|_| wanted_name);
        let values = values
            .into_iter()
            .map(|value| Cow::Owned(value.into_owned()))
            .collect();
        return Ok((name, values));
    }
    // Several lines (HTTP/2 sends one Cookie line per cookie, as developer
    // tools show them; or a few Set-Cookie lines): each is read on its own,
    // and their cookies are tried in order.
    let lines: Vec<&str> = input
        .lines()
        .map(|line| without_curl_prefix(line.trim_matches(is_paste_blank)))
        .filter(|line| !line.is_empty())
        .collect();
    if lines.len() > 1 {
        // Beside Cookie or Set-Cookie headers (a whole `curl -i` response,
        // say), the status line, the other headers and the body hold no
        // cookie: taken as bare values they would be counted as more cookies.
        let any_header = lines.iter().any(|line| header(line).is_some());
        // A request or response without either (a response that set no
        // cookie): none of its lines is a cookie either.
        if !any_header && lines.iter().any(|line| is_http_start_line(line)) {
            return Err(Error::new(
                "the pasted request or response has no Cookie or Set-Cookie line: it sent \
                 no cookie and set none; paste one that does, or the cookie's value",
            ));
        }
        let mut found = Vec::new();
        let mut first_refusal = None;
        // A response's Set-Cookie of the session cookie that deletes it, and
        // whether the last of its Set-Cookie lines for that cookie does.
        let mut deleted = false;
        let mut deleted_last = false;
        for line in lines {
            let kind = header(line).map(|(is_cookie_header, _)| is_cookie_header);
            match pasted_cookies(line, wanted_name, name_given) {
                Ok((None, _)) | Err(_) if any_header && kind.is_none() => {}
                Ok((name, values)) => {
                    deleted_last &= !(kind == Some(false) && name == Some(wanted_name));
                    found.push((name, values, kind));
                }
                Err(refusal) => {
                    let deletes = kind == Some(false) && deletes(line, wanted_name);
                    deleted |= deletes;
                    deleted_last |= deletes;
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        // Other cookies' Set-Cookie lines do not count once one line is the
        // session cookie's.
        if found.iter().any(|(name, _, _)| *name == Some(wanted_name)) {
            found.retain(|(name, _, _)| name.is_none_or(|name| name == wanted_name));
        }
        // A request and its response (`curl -v`): the response's cookie is
        // the one the browser holds after it, the request's is the one
        // before.
        let request = found.iter().any(|(_, _, kind)| *kind == Some(true));
        if request && deleted {
            return Err(Error::new(format_args!(
                "the pasted response's Set-Cookie deletes the cookie {wanted_name:?} (a \
                 logout?), so the browser holds none after it; paste the request's Cookie \
                 header alone to read the cookie it sent"
            )));
        }
        if request && found.iter().any(|(_, _, kind)| *kind == Some(false)) {
            found.retain(|(_, _, kind)| *kind == Some(false));
            io::warn(
                "the pasted text holds a request's Cookie header and a response's Set-Cookie: \
                 this is the response's cookie, the one the browser holds after it; paste the \
                 request's Cookie header alone to read the cookie it sent",
            );
        }
        // What is left is a response's Set-Cookie lines alone.
        let response_only =
            !found.is_empty() && found.iter().all(|(_, _, kind)| *kind == Some(false));
        // A response that sets the cookie, then deletes it: the browser
        // keeps none.
        if response_only && deleted_last {
            return Err(Error::new(format_args!(
                "the pasted response's last Set-Cookie of the cookie {wanted_name:?} deletes \
                 it (a logout?), so the browser holds none after it"
            )));
        }
        // A response that sets the cookie more than once: a browser keeps
        // the last (of one Path and Domain), the one it then sends back.
        if response_only && found.len() > 1 {
            let times = found.len();
            found.drain(..times - 1);
            io::warn(&format!(
                "the pasted response sets the cookie {wanted_name:?} {times} times: this is \
                 the last, the one a browser keeps when their Path and Domain are the same"
            ));
        }
        let name = found.iter().find_map(|(name, _, _)| *name);
        let values: Vec<Cow<'a, str>> = found
            .into_iter()
            .flat_map(|(_, values, _)| values)
            .collect();
        return match first_refusal {
            Some(refusal) if values.is_empty() => Err(refusal),
            _ => Ok((name, values)),
        };
    }
    let mut text = without_curl_prefix(input.trim_matches(is_paste_blank));
    let mut cookie_header = false;
    let mut prefixed = false;
    if let Some((is_cookie_header, value)) = header(text) {
        cookie_header = is_cookie_header;
        prefixed = true;
        text = value;
    }
    // A Cookie header's value pasted without "Cookie:" (as the browser's
    // developer tools or document.cookie show it): a pair after the first
    // carries the session cookie's name, which no Set-Cookie attribute does,
    // or the first pair is another cookie and every part is a pair (a
    // Set-Cookie value has attributes such as HttpOnly without a value).
    if !prefixed && text.contains(';') {
        let mut pairs = text
            .split(';')
            .map(|pair| split_pair(pair.trim_matches(is_paste_blank)).0);
        let first = pairs.next().flatten();
        let rest: Vec<Option<&str>> = pairs.collect();
        cookie_header = rest.contains(&Some(wanted_name))
            || (first.is_some_and(|name| name != wanted_name) && rest.iter().all(Option::is_some));
    }
    if cookie_header {
        // Read as the server reads a Cookie header, so that what is found
        // here is what the app would find.
        let values: Vec<Cow<'a, str>> =
            tessera::cookie_values(text.as_bytes(), wanted_name).collect();
        if values.is_empty() {
            let names: Vec<&str> = text
                .split(';')
                .filter_map(|pair| split_pair(pair.trim_matches(is_paste_blank)).0)
                .collect();
            if names.contains(&wanted_name) {
                return Err(Error::new(format_args!(
                    "malformed: the pasted Cookie header's {wanted_name:?} cookie has a value \
                     Flask does not read as one (a stray quote, space or other character a \
                     cookie value cannot hold), so the app would get no session cookie"
                )));
            }
            return Err(Error::new(format_args!(
                "no cookie named {wanted_name:?} in the pasted Cookie header (it has {}); {}",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                },
                name_advice(name_given)
            )));
        }
        return Ok((Some(wanted_name), values));
    }
    let first = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_matches(is_paste_blank);
    let (name, value) = match split_pair(first) {
        // A bare signed cookie with `=` in it (Flask reads padded base64):
        // in the signature, its dots are no cookie name's; in the payload,
        // what follows is `=` or the rest of an uncompressed cookie
        // (`.ts.sig`: a compressed value has three dots).
        (Some(name), value)
            if name != wanted_name
                && (name.contains('.')
                    || value.is_empty()
                    || value.starts_with('=')
                    || (value.starts_with('.') && value.matches('.').count() == 2)) =>
        {
            (None, first)
        }
        pair => pair,
    };
    // A Set-Cookie header names its cookie, as a Cookie header does: one of
    // another name (a CSRF token, say) is no session cookie to decode.
    if let Some(name) = name.filter(|name| prefixed && *name != wanted_name) {
        return Err(Error::new(format_args!(
            "no cookie named {wanted_name:?} in the pasted Set-Cookie header (it sets \
             {name}); {}",
            name_advice(name_given)
        )));
    }
    if let Some(name) = name.filter(|name| name_given && *name != wanted_name) {
        return Err(Error::new(format_args!(
            "the pasted cookie is named {name:?}, not {wanted_name:?}; {}",
            name_advice(name_given)
        )));
    }
    let value = unquote(value);
    // A Set-Cookie (a pair with attributes) of an empty value, or one that
    // expires the cookie at once whatever its value (PHP's logouts keep
    // one), is a deletion, not a damaged cookie.
    let set_cookie = name.is_some() && text.contains(';');
    if value.is_empty() || (set_cookie && expires_at_once(text)) {
        if set_cookie {
            return Err(Error::new(format_args!(
                "the pasted Set-Cookie deletes the cookie {wanted_name:?} (a logout?), so \
                 the browser holds none after it; paste the request's Cookie header to read \
                 the cookie it sent"
            )));
        }
        return Err(Error::new("malformed: the cookie is empty"));
    }
    Ok((name, vec![value]))
}

/// What to do when the pasted text holds no cookie of the wanted name.
fn name_advice(name_given: bool) -> &'static str {
    if name_given {
        "the name comes from --cookie-name, else SESSION_COOKIE_NAME: give the app's \
         session cookie's name, or paste that cookie"
    } else {
        "pass the session cookie's name with --cookie-name"
    }
}

/// Whether a `Set-Cookie` line deletes the cookie `name`: sets it to an
/// empty value, or expires it at once.
fn deletes(line: &str, name: &str) -> bool {
    header(line).is_some_and(|(is_cookie_header, value)| {
        let first = value.split(';').next().unwrap_or_default();
        let (set_name, set_value) = split_pair(first.trim_matches(is_paste_blank));
        !is_cookie_header
            && set_name == Some(name)
            && (set_value.is_empty() || expires_at_once(value))
    })
}

/// Whether a `Set-Cookie` value's attributes delete the cookie (RFC 6265
/// 5.3): a `Max-Age` of 0 or less, or without `Max-Age`, an `Expires` in the
/// distant past, as the epoch that logouts send (werkzeug, Django, Rails,
/// PHP). A recent past `Expires` is not taken for one: a response pasted
/// from an old log has a cookie that expired since, which is still the one
/// to read.
fn expires_at_once(set_cookie: &str) -> bool {
    let Ok(cookie) = cookie::Cookie::parse(set_cookie) else {
        return false;
    };
    match (cookie.max_age(), cookie.expires_datetime()) {
        (Some(max_age), _) => max_age <= time::Duration::ZERO,
        (None, Some(expires)) => expires.year() < 2000,
        // Dates the cookie crate does not read but browsers do (RFC 6265
        // 5.1.1 reads any date by its tokens): `-0000` for the zone, as
        // older Rack wrote.
        (None, None) => set_cookie
            .split(';')
            .skip(1)
            .filter_map(|attribute| attribute.split_once('='))
            .filter(|(name, _)| name.trim().eq_ignore_ascii_case("expires"))
            .filter_map(|(_, date)| year_of_cookie_date(date))
            .last()
            .is_some_and(|year| year < 2000),
    }
}

/// The year of a cookie date as RFC 6265 5.1.1 finds it: the first group of
/// two to four digits after the day of the month (one or two digits), times
/// (with `:`) skipped; two-digit years are 1970 to 2069.
fn year_of_cookie_date(date: &str) -> Option<i32> {
    let mut day_seen = false;
    for token in date
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|token| !token.is_empty() && !token.contains(':'))
    {
        let digits = token.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            continue;
        }
        let number: i32 = token[..digits].parse().ok()?;
        if !day_seen && digits <= 2 {
            day_seen = true;
        } else if (2..=4).contains(&digits) {
            return Some(match number {
                70..=99 if digits == 2 => 1900 + number,
                0..=69 if digits == 2 => 2000 + number,
                _ => number,
            });
        }
    }
    None
}

/// For a pasted curl command (the browser's "Copy as cURL", bash form) or
/// lines of one, its cookies as Cookie header lines: those of
/// `-b`/`--cookie` and of `-H`/`--header` `Cookie:` arguments, in order.
/// `None` when the paste is no curl command.
fn curl_command_cookies(input: &str) -> Result<Option<String>> {
    const COOKIE_OPTIONS: [&str; 4] = ["-H", "-b", "--header", "--cookie"];
    // Blanks around the paste (stdin's line end) are no separator of words:
    // a lone value that starts with `-b` or `-sH` (an id may) is no command.
    let text = input.trim_matches(is_paste_blank);
    // No cookie value or session id holds a blank, nor an id `=`.
    let is_curl = std::iter::once("curl").chain(COOKIE_OPTIONS).any(|word| {
        text.strip_prefix(word).is_some_and(|rest| {
            rest.starts_with(is_paste_blank)
                || rest.starts_with('\\')
                || (word.starts_with("--") && rest.starts_with('='))
        })
    });
    // Lines of one that start with another option (`-X 'POST' \`,
    // `--compressed \`): a curl command if one of them sends cookies.
    let words = if is_curl {
        shell_words(text).ok_or_else(|| {
            Error::new("malformed: the pasted curl command has a quote that is not closed")
        })?
    } else if text.starts_with('-') && text.contains(is_paste_blank) {
        match shell_words(text) {
            Some(words) if words.iter().any(|word| cookie_option(word).is_some()) => words,
            _ => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    // Windows' cmd form quotes with `^"`, which bash's rules do not read.
    if words
        .iter()
        .any(|word| word.contains("^\"") || word.starts_with('^'))
    {
        return Err(Error::new(
            "the pasted curl command is in the Windows (cmd) form, which this does not read: \
             copy it as cURL (bash), or paste its Cookie header",
        ));
    }
    let mut headers = Vec::new();
    let mut cookie_files = Vec::new();
    let mut words = words.iter().map(String::as_str);
    while let Some(word) = words.next() {
        let Some((cookies, attached)) = cookie_option(word) else {
            continue;
        };
        let Some(value) = attached.or_else(|| words.next()) else {
            break;
        };
        if cookies {
            // Without `=`, curl reads the argument as a file of cookies.
            if value.contains('=') {
                headers.push(format!("Cookie: {value}"));
            } else {
                cookie_files.push(value);
            }
        } else if header(value).is_some_and(|(is_cookie_header, _)| is_cookie_header) {
            headers.push(value.to_owned());
        }
    }
    if let (true, Some(file)) = (headers.is_empty(), cookie_files.first()) {
        return Err(Error::new(format_args!(
            "the pasted curl command reads its cookies from the file {file:?}: paste the \
             session cookie itself"
        )));
    }
    if headers.is_empty() {
        return Err(Error::new(
            "the pasted curl command sends no cookie (no -b, --cookie or Cookie header)",
        ));
    }
    Ok(Some(headers.join("\n")))
}

/// curl's short options that take an argument. In a cluster of short
/// options (`-sb 'a=1'`), the first of these takes the rest of the word as
/// its argument (`-b'a=1'`, `-sba=1`), or else the next word.
const CURL_SHORT_OPTIONS_WITH_ARGUMENT: &str = "AbcCdDeEFHKmoPQrtTuUwxXyYz";

/// Whether a word of a curl command sends cookies: `Some(true)` for
/// `-b`/`--cookie`, `Some(false)` for `-H`/`--header` (a header, perhaps a
/// Cookie one), each with its argument when the word holds it
/// (`--cookie=…`, `-b…`, `-sb…`; else it is the next word).
fn cookie_option(word: &str) -> Option<(bool, Option<&str>)> {
    if let Some(long) = word.strip_prefix("--") {
        let (name, attached) = match long.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (long, None),
        };
        return match name {
            "cookie" => Some((true, attached)),
            "header" => Some((false, attached)),
            _ => None,
        };
    }
    let cluster = word.strip_prefix('-')?;
    for (at, option) in cluster.char_indices() {
        if CURL_SHORT_OPTIONS_WITH_ARGUMENT.contains(option) {
            let rest = &cluster[at + option.len_utf8()..];
            let attached = (!rest.is_empty()).then_some(rest);
            return match option {
                'b' => Some((true, attached)),
                'H' => Some((false, attached)),
                _ => None,
            };
        }
        // Flags (`-s`, `-v`, `-L`, `-0`, `-#`) until one takes an argument.
        if !(option.is_ascii_alphanumeric() || option == '#') {
            return None;
        }
    }
    None
}

/// A command line split into words as bash splits it: blanks between words,
/// `'…'`, `"…"` (with `\` escapes), `$'…'` (with C escapes) and `\` outside
/// quotes, and a `\` before a line end joining two lines. `None` when a quote
/// is not closed.
fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => words.extend(word.take()),
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some('\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                }
                Some(escaped) => word.get_or_insert_with(String::new).push(escaped),
            },
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        other => word.push(other),
                    }
                }
            }
            '"' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            escaped @ ('"' | '\\' | '$' | '`') => word.push(escaped),
                            '\n' => {}
                            other => {
                                word.push('\\');
                                word.push(other);
                            }
                        },
                        other => word.push(other),
                    }
                }
            }
            '$' if chars.peek() == Some(&'\'') => {
                chars.next();
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        '\\' => match chars.next()? {
                            'n' => word.push('\n'),
                            't' => word.push('\t'),
                            'r' => word.push('\r'),
                            other => word.push(other),
                        },
                        other => word.push(other),
                    }
                }
            }
            other => word.get_or_insert_with(String::new).push(other),
        }
    }
    words.extend(word);
    Some(words)
}

/// A line of `curl -v` output without the marker curl puts before it
/// (`> ` sent, `< ` received, `* ` curl's own notes), so that its Cookie and
/// Set-Cookie headers read as headers. A cookie value never starts with one.
fn without_curl_prefix(line: &str) -> &str {
    for marker in ['>', '<', '*'] {
        if let Some(rest) = line.strip_prefix(marker) {
            if rest.is_empty() || rest.starts_with(is_paste_blank) {
                return rest.trim_start_matches(is_paste_blank);
            }
        }
    }
    line
}

/// Whether `line` begins an HTTP/1 message, as `curl -v` and `curl -i`
/// show them: a status line (`HTTP/1.1 200 OK`, `HTTP/2 200`) or a request
/// line (`GET /path HTTP/1.1`).
fn is_http_start_line(line: &str) -> bool {
    let mut words = line.split_ascii_whitespace();
    let first = words.next().unwrap_or_default();
    if first.starts_with("HTTP/") {
        return true;
    }
    let is_method = !first.is_empty() && first.bytes().all(|b| b.is_ascii_uppercase());
    let last = words.last().unwrap_or_default();
    is_method && last.starts_with("HTTP/")
}

/// For a `Cookie:` (true) or `Set-Cookie:` (false) header line, which one
/// it is and its value.
fn header(text: &str) -> Option<(bool, &str)> {
    [("cookie:", true), ("set-cookie:", false)]
        .into_iter()
        .find_map(|(prefix, is_cookie_header)| {
            let start = text.get(..prefix.len())?;
            start.eq_ignore_ascii_case(prefix).then(|| {
                (
                    is_cookie_header,
                    text[prefix.len()..].trim_start_matches(is_paste_blank),
                )
            })
        })
}

/// What a paste adds around the text; other blanks belong to the header, and
/// are read as werkzeug reads them.
fn is_paste_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `name=value`, when what comes before `=` is a cookie name.
fn split_pair(pair: &str) -> (Option<&str>, &str) {
    let Some((name, value)) = pair.split_once('=') else {
        return (None, pair);
    };
    let name = name.trim_matches(is_paste_blank);
    if tessera::config::is_valid_cookie_name(name) {
        (Some(name), value.trim_matches(is_paste_blank))
    } else {
        (None, pair)
    }
}

/// A quoted value without its quotes and with its backslash escapes undone,
/// as werkzeug (and so Flask) reads it from a Cookie header.
fn unquote(value: &str) -> Cow<'_, str> {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return Cow::Borrowed(value);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let pair = format!("v={value}");
    match tessera::cookie_values(pair.as_bytes(), "v").next() {
        Some(unescaped) => Cow::Owned(unescaped.into_owned()),
        None => Cow::Borrowed(inner),
    }
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

    /// A name given (`--cookie-name`, `SESSION_COOKIE_NAME`) is held to:
    /// a pasted cookie of another name is refused, as a header without that
    /// cookie is, and the advice does not ask for the option already given.
    /// The default name lets a bare `name=value` of any name through.
    #[test]
    fn a_given_cookie_name_is_held_to() {
        let (name, values) = pasted_cookies("sid=abc.def.ghi", "session", false).expect("read");
        assert_eq!((name, values.len()), (Some("sid"), 1));
        for text in [
            "session=abc.def.ghi",
            "session=abc.def.ghi; x=1",
            "Cookie: session=abc.def.ghi",
            "Set-Cookie: session=abc.def.ghi; Path=/",
        ] {
            let error = pasted_cookies(text, "mycookie", true)
                .expect_err(text)
                .to_string();
            assert!(error.contains("\"mycookie\""), "{text}: {error}");
            assert!(error.contains("session"), "{text}: {error}");
            assert!(
                !error.contains("pass the session cookie's name"),
                "{text}: {error}"
            );
        }
        for text in [
            "mycookie=abc.def.ghi",
            "session=x; mycookie=abc.def.ghi",
            "abc.def.ghi",
        ] {
            let (_, values) = pasted_cookies(text, "mycookie", true).expect(text);
            assert_eq!(values, ["abc.def.ghi"], "{text}");
        }
    }

    /// A request copied from developer tools as a curl command (bash form):
    /// Chrome puts the cookies in `-b`, Firefox in a Cookie header; either
    /// may be quoted in any of bash's ways and span lines.
    #[test]
    fn curl_commands_give_their_cookies() {
        let value = |text: &str| {
            let (name, values) = pasted_cookies(text, "session", false).expect(text);
            assert_eq!(name, Some("session"), "{text}");
            values.into_iter().map(Cow::into_owned).collect::<Vec<_>>()
        };
        for text in [
            "curl 'http://127.0.0.1:5000/' \\\n  -H 'Accept: text/html' \\\n  \
             -b 'a=1; session=abc.def.ghi' \\\n  -H 'User-Agent: x'",
            "curl 'http://127.0.0.1:5000/' \\\r\n  -H 'Cookie: a=1; session=abc.def.ghi' \\\r\n",
            "curl \"http://h/\" -H \"cookie: session=abc.def.ghi\"",
            "curl $'http://h/\\'x' --cookie=$'session=abc.def.ghi; b=\\'2\\''",
            "curl http://h/ --header Cookie:\\ session=abc.def.ghi",
            // A line of one, as copied from it, or a few from another option on.
            "  -H 'Cookie: a=1; session=abc.def.ghi' \\",
            "-b 'session=abc.def.ghi'",
            "-X 'POST' \\\n  -b 'a=1; session=abc.def.ghi' \\\n  --compressed",
            "--compressed \\\n  -H 'Cookie: session=abc.def.ghi'",
            // A cookie file beside the cookies it sends.
            "curl h -b cookies.txt -H 'Cookie: session=abc.def.ghi'",
            // Written by hand: arguments glued to their options, and options
            // in clusters, as curl reads them.
            "curl 'http://h/' -b'session=abc.def.ghi'",
            "curl 'http://h/' -H'Cookie: session=abc.def.ghi'",
            "curl -sb 'session=abc.def.ghi' 'http://h/'",
            "curl -vLb'a=1; session=abc.def.ghi' http://h/",
            "curl -sS -XPOST -H 'Cookie: session=abc.def.ghi' http://h/",
            "-sb 'session=abc.def.ghi'",
        ] {
            assert_eq!(value(text), ["abc.def.ghi"], "{text}");
        }
        // Every cookie of the name, in order, as from a Cookie header.
        assert_eq!(
            value("curl h -b 'session=first' -H 'Cookie: session=second'"),
            ["first", "second"]
        );
        for (text, expected) in [
            ("curl http://h/ -H 'Accept: */*'", "sends no cookie"),
            // `-X`'s argument, not `-H` with `EAD`; `-o`'s, not `-b`.
            ("curl -XHEAD http://h/", "sends no cookie"),
            ("curl -sob http://h/", "sends no cookie"),
            (
                "curl http://h/ -b cookies.txt",
                "from the file \"cookies.txt\"",
            ),
            ("curl http://h/ -b 'session=abc", "not closed"),
            ("curl http://h/ -b 'a=1; b=2'", "(it has a, b)"),
            (
                "curl ^\"http://h/^\" -b ^\"session=abc.def.ghi^\"",
                "Windows (cmd) form",
            ),
            (
                "curl ^\"http://h/^\" -H ^\"Cookie: session=abc.def.ghi^\"",
                "Windows (cmd) form",
            ),
        ] {
            let error = pasted_cookies(text, "session", false)
                .expect_err(text)
                .to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    /// A Cookie header with the session cookie's name whose value Flask does
    /// not read (a stray quote or space) says so, instead of claiming the
    /// header has no such cookie while listing it.
    #[test]
    fn a_session_cookie_flask_cannot_read_is_named_as_malformed() {
        for text in [
            "Cookie: a=1; session=abc.def.ghi\"",
            "a=1; session=abc.def.ghi\" x",
        ] {
            let error = pasted_cookies(text, "session", true)
                .expect_err(text)
                .to_string();
            assert!(
                error.starts_with("malformed: the pasted Cookie header's \"session\" cookie"),
                "{text}: {error}"
            );
        }
    }

    #[test]
    fn pasted_cookies_are_cleaned() {
        // Values as `&str` (leaked: a test's few bytes) to compare with literals.
        fn pasted<'a>(text: &'a str, wanted: &'a str) -> (Option<&'a str>, Vec<&'a str>) {
            let (name, values) = pasted_cookies(text, wanted, false).expect(text);
            let values = values
                .into_iter()
                .map(|value| &*Box::leak(value.into_owned().into_boxed_str()))
                .collect();
            (name, values)
        }
        for (text, name) in [
            ("abc.def.ghi", None),
            ("  abc.def.ghi\n", None),
            ("\"abc.def.ghi\"", None),
            ("session=abc.def.ghi", Some("session")),
            ("session = abc.def.ghi", Some("session")),
            ("session=abc.def.ghi; Path=/; HttpOnly", Some("session")),
            ("session=\"abc.def.ghi\"", Some("session")),
            ("Cookie: session=abc.def.ghi", Some("session")),
            ("cookie: theme=dark; session=abc.def.ghi; lang=fr", Some("session")),
            (
                "Set-Cookie: session=abc.def.ghi; Expires=Tue, 14 Nov 2023 22:13:20 GMT; HttpOnly; Path=/",
                Some("session"),
            ),
            ("__Host-s=abc.def.ghi", Some("__Host-s")),
        ] {
            assert_eq!(pasted(text, "session"), (name, vec!["abc.def.ghi"]), "{text:?}");
        }
        assert_eq!(
            pasted(".eJw.def.ghi", "session"),
            (None, vec![".eJw.def.ghi"])
        );
        // Every cookie of the wanted name, in order: the first that verifies
        // is used, as the server does.
        assert_eq!(
            pasted("Cookie: session=junk; a=1; session=abc.def.ghi", "session"),
            (Some("session"), vec!["junk", "abc.def.ghi"])
        );
        assert_eq!(
            pasted("Cookie: a=1; sid=abc.def.ghi", "sid"),
            (Some("sid"), vec!["abc.def.ghi"])
        );
        // A pasted Cookie header is read as werkzeug reads it: a quoted
        // value unescaped, a value with a blank inside no cookie at all.
        assert_eq!(
            pasted(
                r#"Cookie: session="abc\056def.ghi"; session=x y.z; session=jkl.mno.pqr"#,
                "session"
            ),
            (Some("session"), vec!["abc.def.ghi", "jkl.mno.pqr"])
        );
        // Several lines, each read on its own.
        assert_eq!(
            pasted("Cookie: a=1\r\ncookie: session=abc.def.ghi\n", "session"),
            (Some("session"), vec!["abc.def.ghi"])
        );
        assert_eq!(
            pasted(
                "Set-Cookie: session=abc.def.ghi; Path=/\nSet-Cookie: theme=dark\n\nsession=jkl.mno.pqr",
                "session"
            ),
            (Some("session"), vec!["abc.def.ghi", "jkl.mno.pqr"])
        );
        assert!(pasted_cookies("Cookie: a=1\nCookie: b=2", "session", false).is_err());
        // A response setting it twice: the last, which the browser keeps.
        assert_eq!(
            pasted(
                "HTTP/1.1 200 OK\nSet-Cookie: session=abc.def.ghi; Path=/\n\
                 Set-Cookie: theme=dark\nset-cookie: session=jkl.mno.pqr; Path=/\n",
                "session"
            ),
            (Some("session"), vec!["jkl.mno.pqr"])
        );
        // One that sets it, then deletes it: the browser keeps none.
        let error = pasted_cookies(
            "Set-Cookie: session=abc.def.ghi; Path=/\n\
             Set-Cookie: session=; Max-Age=0; Path=/\n",
            "session",
            false,
        )
        .expect_err("deleted last")
        .to_string();
        assert!(error.contains("last Set-Cookie"), "{error}");
        assert!(!error.contains("  "), "{error}");
        // A request and its response, as `curl -v` shows them: the
        // response's cookie, the browser's after it.
        let exchange = "> POST /visits HTTP/1.1\n> Cookie: session=old.def.ghi\n>\n\
                        < HTTP/1.1 200 OK\n< set-cookie: session=new.def.ghi; HttpOnly; Path=/\n";
        assert_eq!(
            pasted(exchange, "session"),
            (Some("session"), vec!["new.def.ghi"])
        );
        // A response that deletes it: nothing to read, and said so.
        let logout = "> GET /logout HTTP/1.1\n> Cookie: session=old.def.ghi\n>\n\
                      < HTTP/1.1 302 Found\n\
                      < set-cookie: session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/\n";
        let error = pasted_cookies(logout, "session", false)
            .expect_err("deleted")
            .to_string();
        assert!(error.contains("deletes the cookie"), "{error}");
        // A logout's response alone, however it is pasted, is said to be one,
        // also when it keeps a value and only expires the cookie (PHP's do).
        for response in [
            "Set-Cookie: session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/",
            "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/",
            "HTTP/1.1 302 FOUND\nSet-Cookie: session=; Max-Age=0; Path=/\nLocation: /\n",
            "< HTTP/1.1 302 FOUND\n< set-cookie: session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/\n",
            "Set-Cookie: session=abc.def.ghi; Max-Age=0; Path=/",
            "Set-Cookie: session=abc.def.ghi; Max-Age=-1",
            "Set-Cookie: session=deleted; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/",
            "session=abc.def.ghi; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly",
            "< HTTP/1.1 302 FOUND\n< set-cookie: session=abc.def.ghi; Max-Age=0\n",
            "Set-Cookie: session=abc.def.ghi; Expires=Thu, 01 Jan 1970 00:00:00 -0000; Path=/",
            "Set-Cookie: session=abc.def.ghi; path=/; expires=Thu, 01-Jan-70 00:00:01 +0000",
        ] {
            let error = pasted_cookies(response, "session", false)
                .expect_err(response)
                .to_string();
            assert!(error.contains("deletes the cookie \"session\""), "{response}: {error}");
        }
        let exchange_expiring = "> GET /logout HTTP/1.1\n> Cookie: session=old.def.ghi\n>\n\
                                 < HTTP/1.1 302 Found\n\
                                 < set-cookie: session=old.def.ghi; Max-Age=0; Path=/\n";
        let error = pasted_cookies(exchange_expiring, "session", false)
            .expect_err("deleted")
            .to_string();
        assert!(error.contains("deletes the cookie"), "{error}");
        // Not a deletion: a later expiry, one past by now (an old log), a
        // positive Max-Age over an Expires of the epoch, an Expires no
        // browser reads.
        for response in [
            "Set-Cookie: session=abc.def.ghi; Expires=Wed, 01 Jan 3000 00:00:00 GMT; Path=/",
            "Set-Cookie: session=abc.def.ghi; Expires=Tue, 14 Nov 2023 22:13:20 GMT; Path=/",
            "Set-Cookie: session=abc.def.ghi; Expires=Wed, 01 Jan 3000 00:00:00 -0000; Path=/",
            "Set-Cookie: session=abc.def.ghi; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "Set-Cookie: session=abc.def.ghi; Expires=soon; HttpOnly",
        ] {
            assert_eq!(
                pasted(response, "session"),
                (Some("session"), vec!["abc.def.ghi"]),
                "{response}"
            );
        }
        // A request and response that carry no cookie are said to.
        for exchange in [
            "* Connected to 127.0.0.1\n> GET /api HTTP/1.1\n> Host: h\n>\n< HTTP/1.1 200 OK\n\
             < vary: Cookie\n<\n{ [2 bytes data]\n",
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1\r\n\r\n2",
            "HTTP/2 200\ncontent-length: 1\n",
        ] {
            let error = pasted_cookies(exchange, "session", false)
                .expect_err(exchange)
                .to_string();
            assert!(
                error.contains("no Cookie or Set-Cookie line"),
                "{exchange}: {error}"
            );
        }
        // An empty value with nothing else is no deletion, just empty.
        for empty in ["session=", "Set-Cookie: session="] {
            let error = pasted_cookies(empty, "session", false)
                .expect_err(empty)
                .to_string();
            assert!(!error.contains("deletes"), "{empty}: {error}");
        }
        // Another cookie's Set-Cookie leaves the request's session cookie.
        let other = "> Cookie: session=old.def.ghi\n< set-cookie: theme=dark; Path=/\n";
        assert_eq!(
            pasted(other, "session"),
            (Some("session"), vec!["old.def.ghi"])
        );
        // The same without "Cookie:", as developer tools and document.cookie
        // show it.
        assert_eq!(
            pasted("foo=bar; session=abc.def.ghi", "session"),
            (Some("session"), vec!["abc.def.ghi"])
        );
        assert_eq!(
            pasted("session=junk; a=1; session=abc.def.ghi", "session"),
            (Some("session"), vec!["junk", "abc.def.ghi"])
        );
        assert_eq!(
            pasted("_ga=GA1; sid=abc.def.ghi", "sid"),
            (Some("sid"), vec!["abc.def.ghi"])
        );
        // Cookies, none of them the session's: said so.
        let error = pasted_cookies("foo=bar; baz=qux", "session", false)
            .expect_err("no session cookie")
            .to_string();
        assert!(error.contains("foo, baz"), "{error}");
        // A Set-Cookie value of another name is still taken as the cookie.
        assert_eq!(
            pasted("sid=abc.def.ghi; Path=/; HttpOnly", "session"),
            (Some("sid"), vec!["abc.def.ghi"])
        );
        // A Cookie header without the wanted name is an error naming those it has.
        let error = pasted_cookies("Cookie: _ga=GA1; sid=abc.def.ghi", "session", false)
            .expect_err("no session cookie")
            .to_string();
        assert!(
            error.contains("_ga, sid") && error.contains("--cookie-name"),
            "{error}"
        );
        assert!(pasted_cookies("session=", "session", false).is_err());
        // A bare cookie with padding is no `name=value`.
        for bare in [
            "eyJhIjoxfQ.aw80hg.sig=",
            "eyJhIjoxfQ.aw80hg.sig==",
            ".eJyr.aw80hg.s=g",
            "eyJhIjoxfQ==.aw80hg.sig",
            "eyJhIjoxfQ=.aw80hg.sig",
            ".eJyr=.aw80hg.sig",
        ] {
            assert_eq!(pasted(bare, "session"), (None, vec![bare]), "{bare}");
        }
        assert_eq!(
            pasted("session=eyJhIjoxfQ.aw80hg.sig=", "session"),
            (Some("session"), vec!["eyJhIjoxfQ.aw80hg.sig="])
        );
        // Quoted values are unescaped as werkzeug unescapes them.
        assert_eq!(
            pasted(r#""abc\.def.g\hi""#, "session"),
            (None, vec!["abc.def.ghi"])
        );
        assert_eq!(
            pasted(r#"Cookie: a=1; session="abc\056def.ghi""#, "session"),
            (Some("session"), vec!["abc.def.ghi"])
        );
        // curl -v's markers are dropped; beside header lines, the other
        // lines of a response are no cookies.
        assert_eq!(
            pasted("> Cookie: session=abc.def.ghi", "session"),
            (Some("session"), vec!["abc.def.ghi"])
        );
        assert_eq!(
            pasted(
                "* Connected\n< HTTP/1.1 200 OK\n< Content-Type: text/html; charset=utf-8\n\
                 < Set-Cookie: session=abc.def.ghi; HttpOnly; Path=/\n<\nHello",
                "session"
            ),
            (Some("session"), vec!["abc.def.ghi"])
        );
        // A Set-Cookie header names its cookie: another is no session cookie.
        let error = pasted_cookies("Set-Cookie: csrftoken=abc; Path=/", "session", false)
            .expect_err("no session cookie")
            .to_string();
        assert!(
            error.contains("\"session\"") && error.contains("csrftoken"),
            "{error}"
        );
        // A compressed cookie under another name is still `name=value`.
        assert_eq!(
            pasted("sid=.eJyr.aw80hg.sig", "session"),
            (Some("sid"), vec![".eJyr.aw80hg.sig"])
        );
    }
}
