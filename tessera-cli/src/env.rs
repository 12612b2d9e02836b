//! The application's settings that the commands fall back to, read from the
//! environment as the application reads them, so that a command sees what
//! the application sees: an empty or blank variable counts as unset (but
//! `SESSION_KEY_PREFIX`, where an empty one is no prefix, as in
//! Flask-Session), blanks around a number or a format name are dropped, and
//! a value the application would refuse is refused here, naming the
//! variable rather than the option it stands in for.

use std::ffi::OsString;

use tessera::config::{is_valid_cookie_name, MIN_PAYLOAD_SIZE};
use tessera::store::flask_format::SerializationFormat;
use tessera::{ConfigError, SessionConfig, SessionConfigBuilder};

use crate::error::{Error, Result};

const LIFETIME: &str = "PERMANENT_SESSION_LIFETIME";
const COOKIE_NAME: &str = "SESSION_COOKIE_NAME";
const STORE_URL: &str = "SESSION_STORE_URL";
const KEY_PREFIX: &str = "SESSION_KEY_PREFIX";
const SERIALIZATION_FORMAT: &str = "SESSION_SERIALIZATION_FORMAT";
const MAX_PAYLOAD_SIZE: &str = "TESSERA_MAX_PAYLOAD_SIZE";
const MAX_COOKIE_SIZE: &str = "MAX_COOKIE_SIZE";
const ENCRYPTED_COMPRESSION: &str = "TESSERA_ENCRYPTED_COMPRESSION";

/// `PERMANENT_SESSION_LIFETIME`, in seconds; `--max-age` wins over it.
pub(crate) fn max_age() -> Result<Option<u64>> {
    let Some(value) = setting(LIFETIME, "--max-age")? else {
        return Ok(None);
    };
    // Read by the application's own configuration (`60.0` is 60 seconds, as
    // in Flask), which also refuses, as the application does when it
    // starts, a lifetime it could not write into cookies and stores. The
    // key only lets the configuration be built; nothing is signed with it.
    let config = SessionConfig::builder()
        .secret_key("tessera-cli-reads-the-lifetime-with-no-key-of-the-application")
        .with_vars([(LIFETIME, value)])
        .and_then(SessionConfigBuilder::build)
        .map_err(|error| refused(error, "--max-age"))?;
    Ok(Some(config.permanent_session_lifetime().as_secs()))
}

/// `TESSERA_MAX_PAYLOAD_SIZE`, in bytes; `option`, if the command has one
/// (`--max-payload-size`), wins over it.
pub(crate) fn max_payload_size(option: &str) -> Result<Option<usize>> {
    let Some(value) = setting(MAX_PAYLOAD_SIZE, option)? else {
        return Ok(None);
    };
    payload_size(value.trim())
        .map(Some)
        .map_err(|expected| refused(invalid(MAX_PAYLOAD_SIZE, &value, expected), option))
}

/// A payload bound, as the application takes it (`--max-payload-size`,
/// `TESSERA_MAX_PAYLOAD_SIZE`); else what it expects.
pub(crate) fn payload_size(text: &str) -> std::result::Result<usize, String> {
    // The application refuses a smaller bound when it starts.
    match text.parse::<usize>() {
        Ok(bytes) if bytes >= MIN_PAYLOAD_SIZE => Ok(bytes),
        _ => Err(format!(
            "at least {MIN_PAYLOAD_SIZE} bytes: sessions larger than this would be written but \
             never read back"
        )),
    }
}

/// `TESSERA_ENCRYPTED_COMPRESSION`: whether the application compresses
/// encrypted cookies; `--compress` turns it on whatever it says.
pub(crate) fn encrypted_compression() -> Result<bool> {
    // Checked by `setting` as the application checks it: true, false, 1 or 0.
    Ok(setting(ENCRYPTED_COMPRESSION, "--compress")?
        .is_some_and(|value| matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "1")))
}

/// `SESSION_COOKIE_NAME`; `--cookie-name` wins over it.
pub(crate) fn cookie_name() -> Result<Option<String>> {
    let Some(name) = setting(COOKIE_NAME, "--cookie-name")? else {
        return Ok(None);
    };
    // Used as it is, blanks included, as the application uses it: one it
    // refuses at startup would find no cookie here.
    if is_valid_cookie_name(&name) {
        Ok(Some(name))
    } else {
        Err(refused(
            invalid(
                COOKIE_NAME,
                &name,
                "a cookie name token (letters, digits, - _ . ! etc.)",
            ),
            "--cookie-name",
        ))
    }
}

/// `MAX_COOKIE_SIZE`, in bytes, else Werkzeug's default; 0 turns the
/// check off, as in the application.
pub(crate) fn max_cookie_size() -> Result<usize> {
    let Some(value) = setting(MAX_COOKIE_SIZE, "")? else {
        return Ok(tessera::config::DEFAULT_MAX_COOKIE_SIZE);
    };
    // `setting` refused what the application refuses.
    value
        .trim()
        .parse()
        .map_err(|_| refused(invalid(MAX_COOKIE_SIZE, &value, "a number of bytes"), ""))
}

/// `SESSION_STORE_URL`; `--store` wins over it.
pub(crate) fn store_url() -> Result<Option<String>> {
    setting(STORE_URL, "--store")
}

/// `SESSION_KEY_PREFIX`, else Flask-Session's default.
pub(crate) fn key_prefix() -> Result<String> {
    Ok(
        setting(KEY_PREFIX, "")?
            .unwrap_or_else(|| tessera::store::redis::DEFAULT_PREFIX.to_owned()),
    )
}

/// `SESSION_SERIALIZATION_FORMAT`: `Some` when the application keeps its
/// Redis sessions in Flask-Session's layout.
pub(crate) fn serialization_format() -> Result<Option<SerializationFormat>> {
    setting(SERIALIZATION_FORMAT, "")?
        .map(|format| {
            format.trim().parse().map_err(|_| {
                refused(
                    invalid(SERIALIZATION_FORMAT, &format, "msgpack or json"),
                    "",
                )
            })
        })
        .transpose()
}

/// The variable `name` as text, `None` when the application would take it
/// as unset. The library reads it first, as the application's
/// configuration does, so that what it refuses there (a value that is not
/// UTF-8, a number that is none) is refused here with the same words.
fn setting(name: &'static str, option: &str) -> Result<Option<String>> {
    let Some(value) = std::env::var_os(name) else {
        return Ok(None);
    };
    SessionConfig::builder()
        .with_vars_os([(OsString::from(name), value.clone())])
        .map(drop)
        .map_err(|error| refused(error, option))?;
    let value = value
        .into_string()
        .map_err(|_| Error::new(format_args!("{name} is not valid UTF-8")))?;
    Ok((name == KEY_PREFIX || !value.trim().is_empty()).then_some(value))
}

fn invalid(name: &'static str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        name,
        value: value.to_owned(),
        expected: expected.into(),
    }
}

/// The library's reason, and, where an option stands in for the variable,
/// that it does: the variable may be one the user never set for this
/// command but for the application.
fn refused(error: ConfigError, option: &str) -> Error {
    if option.is_empty() {
        Error::new(format_args!("{error}; set in the environment"))
    } else {
        Error::new(format_args!(
            "{error}; set in the environment ({option} wins over it)"
        ))
    }
}
