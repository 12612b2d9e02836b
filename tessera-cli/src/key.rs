//! `tessera key …`: secret keys.

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
