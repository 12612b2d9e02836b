//! `tessera key …`: secret keys.

use std::ffi::OsString;
use std::path::Path;

use clap::Subcommand;
use tessera::SecretKey;

use crate::error::{Error, Result};
use crate::io;

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Print a new random secret key (64 hex digits, 256 bits).
    #[command(
        long_about = "Print a new random secret key: 32 bytes from the operating system's \
            random generator, written as 64 hexadecimal digits. Nothing else is printed on \
            stdout, so the output can be captured directly.",
        after_help = "Example:\n  export SECRET_KEY=\"$(tessera key generate)\""
    )]
    Generate,
}

pub(crate) fn run(command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Generate => generate(),
    }
}

fn generate() -> Result<()> {
    let key = SecretKey::generate();
    let text = std::str::from_utf8(key.as_bytes())
        .map_err(|_| Error::new("the generated key is not text"))?;
    io::print_line(text)
}

/// The environment variable holding the secret key.
const SECRET_KEY_VAR: &str = "SECRET_KEY";

/// The secret key's bytes: `--secret-key-file`'s, else `--secret-key`'s,
/// else `SECRET_KEY`'s; `None` when none is given. Read here rather than by
/// clap, which would refuse a key that is not UTF-8 (Flask's quickstart key
/// is not) and would count the variable as a `--secret-key` conflicting
/// with `--secret-key-file`.
pub(crate) fn secret_key(flag: Option<OsString>, file: Option<&Path>) -> Result<Option<Vec<u8>>> {
    if let Some(path) = file {
        let mut bytes = std::fs::read(path).map_err(|err| {
            Error::new(format_args!(
                "reading the secret key from {}: {err}",
                path.display()
            ))
        })?;
        // The line end an editor or `echo` adds is not part of the key.
        if bytes.ends_with(b"\r\n") {
            bytes.truncate(bytes.len() - 2);
        } else if bytes.ends_with(b"\n") {
            bytes.truncate(bytes.len() - 1);
        }
        return Ok(Some(bytes));
    }
    match flag {
        Some(key) => bytes(key, "--secret-key").map(Some),
        None => std::env::var_os(SECRET_KEY_VAR)
            .map(|key| bytes(key, SECRET_KEY_VAR))
            .transpose(),
    }
}

/// Whether `key` is empty or only blanks (spaces, tabs, line ends), which
/// the application's configuration reads as no SECRET_KEY at all: refused
/// here as an empty key is, rather than used as a key the application would
/// never have.
pub(crate) fn is_blank(key: &[u8]) -> bool {
    std::str::from_utf8(key).is_ok_and(|key| key.trim().is_empty())
}

/// A key given on the command line or in the environment, as bytes.
#[cfg(unix)]
pub(crate) fn bytes(key: OsString, _what: &str) -> Result<Vec<u8>> {
    use std::os::unix::ffi::OsStringExt as _;
    Ok(key.into_vec())
}

/// A key given on the command line or in the environment, as bytes: here
/// only text can be, as UTF-8.
#[cfg(not(unix))]
pub(crate) fn bytes(key: OsString, what: &str) -> Result<Vec<u8>> {
    key.into_string()
        .map(String::into_bytes)
        .map_err(|_| Error::new(format_args!("{what} is not valid UTF-8")))
}
