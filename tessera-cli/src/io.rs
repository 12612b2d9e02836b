//! Reading stdin and writing stdout/stderr without panicking.

use std::io::{self, Read as _, Write as _};

use crate::error::{Error, Result};

/// Input larger than this on stdin is refused (a cookie is a few KiB; a
/// session to sign is rarely more than a few hundred).
const MAX_STDIN: u64 = 64 * 1024 * 1024;

/// All of stdin as UTF-8 text, without a leading byte-order mark (which
/// some Windows editors and shells write, and which no JSON or cookie
/// starts with); `what` names it in error messages.
pub(crate) fn read_stdin(what: &str) -> Result<String> {
    let text = String::from_utf8(read_stdin_bytes(what)?)
        .map_err(|_| Error::new(format_args!("reading {what} from stdin: not valid UTF-8")))?;
    Ok(without_byte_order_mark(text))
}

/// All of stdin as text, for pasted headers: UTF-8 when it is, otherwise
/// each byte as its Latin-1 character, as werkzeug reads a header's bytes,
/// so a stray byte in another cookie does not hide the session cookie.
pub(crate) fn read_stdin_header_text(what: &str) -> Result<String> {
    let text = match String::from_utf8(read_stdin_bytes(what)?) {
        Ok(text) => text,
        Err(error) => error.into_bytes().into_iter().map(char::from).collect(),
    };
    Ok(without_byte_order_mark(text))
}

fn read_stdin_bytes(what: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_STDIN + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| Error::new(format_args!("reading {what} from stdin: {err}")))?;
    if bytes.len() as u64 > MAX_STDIN {
        return Err(Error::new(format_args!(
            "reading {what} from stdin: more than {MAX_STDIN} bytes"
        )));
    }
    Ok(bytes)
}

fn without_byte_order_mark(text: String) -> String {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// Writes `line` and a newline to stdout.
pub(crate) fn print_line(line: &str) -> Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(stdout_error)
}

/// The error for a failed write to stdout: a closed pipe is not reported.
pub(crate) fn stdout_error(err: io::Error) -> Error {
    match err.kind() {
        io::ErrorKind::BrokenPipe => Error::BrokenPipe,
        _ => Error::new(format_args!("writing to stdout: {err}")),
    }
}

/// `warning: …` on stderr; a failure to write it is ignored.
pub(crate) fn warn(message: &str) {
    let _ = writeln!(io::stderr().lock(), "warning: {message}");
}

/// `error: …` on stderr, one line.
pub(crate) fn report_error(err: &Error) {
    let _ = writeln!(io::stderr().lock(), "error: {err}");
}
