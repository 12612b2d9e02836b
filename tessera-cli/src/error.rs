//! The command's errors: each becomes one line on stderr and exit status 1.

use std::fmt;

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Error {
    /// A reason to show the user, on one line.
    Message(String),
    /// Whoever read our stdout went away (`tessera … | head`): not an error.
    BrokenPipe,
    /// Ctrl-C (SIGINT) stopped the command: exit status 130, as a shell
    /// gives a command that the signal ended.
    Interrupted,
}

impl Error {
    pub(crate) fn new(message: impl fmt::Display) -> Self {
        Self::Message(message.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(message) => {
                // Always one line, whatever the underlying error printed.
                let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
                if let Some(first) = lines.next() {
                    f.write_str(first)?;
                }
                for line in lines {
                    write!(f, " {line}")?;
                }
                Ok(())
            }
            Self::BrokenPipe => f.write_str("broken pipe"),
            Self::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl From<tessera::DecodeError> for Error {
    fn from(err: tessera::DecodeError) -> Self {
        Self::new(err)
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
