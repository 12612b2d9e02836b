//! Base64 read exactly as Python reads it where Flask decodes: CPython's
//! `binascii.a2b_base64` in its default, non-strict mode, behind
//! itsdangerous' `base64_decode` (cookies: URL-safe, padded first) or
//! `base64.b64decode` (the tagged JSON's bytes).
//!
//! A cookie's signature is decoded before anything is verified, so what
//! Python tolerates there (`+` and `/`, extra `=`, stray characters) can
//! reach Flask from any client or proxy, and Flask accepts the cookie. A
//! stricter reader here would log such a visitor out of the Rust service
//! only. Canonical input never comes here: the callers try a fast strict
//! decoder first.

/// Which alphabet, and which of Python's two entry points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// itsdangerous' `base64_decode`: pads the text with `=` to a multiple
    /// of four, then `base64.urlsafe_b64decode` (`-` and `_` read as `+`
    /// and `/`, which are accepted too).
    Itsdangerous,
    /// `base64.b64decode(text)`: the standard alphabet, no padding added.
    Standard,
}

/// Why Python would raise `binascii.Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// One base64 character too many: no input encodes to that.
    OneCharTooMany,
    /// The data ends inside a quad that padding does not close.
    IncorrectPadding,
}

/// Appends what Python decodes from `text` to `out`; on error `out` is as
/// it was.
pub(crate) fn decode(text: &[u8], flavor: Flavor, out: &mut Vec<u8>) -> Result<(), Invalid> {
    let added_padding = match flavor {
        Flavor::Itsdangerous => (4 - text.len() % 4) % 4,
        Flavor::Standard => 0,
    };
    let start = out.len();
    out.reserve(text.len() / 4 * 3 + 3);
    // The loop of `binascii_a2b_base64_impl`, non-strict branch by branch.
    let mut quad_pos = 0usize;
    let mut left = 0u8;
    let mut pads = 0usize;
    let padding = std::iter::repeat_n(&b'=', added_padding);
    for &byte in text.iter().chain(padding) {
        if byte == b'=' {
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    // A complete pad sequence ends the data; the rest is ignored.
                    return Ok(());
                }
            }
            continue;
        }
        let Some(sextet) = sextet(byte, flavor) else {
            continue;
        };
        pads = 0;
        match quad_pos {
            0 => {
                left = sextet;
                quad_pos = 1;
            }
            1 => {
                out.push((left << 2) | (sextet >> 4));
                left = sextet & 0x0f;
                quad_pos = 2;
            }
            2 => {
                out.push((left << 4) | (sextet >> 2));
                left = sextet & 0x03;
                quad_pos = 3;
            }
            _ => {
                out.push((left << 6) | sextet);
                quad_pos = 0;
            }
        }
    }
    match quad_pos {
        0 => Ok(()),
        1 => {
            out.truncate(start);
            Err(Invalid::OneCharTooMany)
        }
        _ => {
            out.truncate(start);
            Err(Invalid::IncorrectPadding)
        }
    }
}

fn sextet(byte: u8, flavor: Flavor) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'-' if flavor == Flavor::Itsdangerous => Some(62),
        b'_' if flavor == Flavor::Itsdangerous => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn its(text: &str) -> Result<Vec<u8>, Invalid> {
        let mut out = Vec::new();
        decode(text.as_bytes(), Flavor::Itsdangerous, &mut out).map(|()| out)
    }

    fn standard(text: &str) -> Result<Vec<u8>, Invalid> {
        let mut out = Vec::new();
        decode(text.as_bytes(), Flavor::Standard, &mut out).map(|()| out)
    }

    /// Each expectation is what CPython 3.11 answers (itsdangerous 2.2's
    /// `base64_decode`, `base64.b64decode`); the interop tests compare with
    /// Python directly on many more.
    #[test]
    fn reads_what_python_reads() {
        assert_eq!(its("aGk"), Ok(b"hi".to_vec()));
        assert_eq!(its("aGk="), Ok(b"hi".to_vec()));
        assert_eq!(its("aGk=="), Ok(b"hi".to_vec()));
        assert_eq!(its("aGk==="), Ok(b"hi".to_vec()));
        assert_eq!(its("aGk=!xyz"), Ok(b"hi".to_vec()));
        assert_eq!(its("a G!k"), Ok(b"hi".to_vec()));
        assert_eq!(its("aGké"), Ok(b"hi".to_vec()));
        assert_eq!(its("-_-_"), its("+/+/"));
        assert_eq!(its("QR"), Ok(b"A".to_vec()));
        assert_eq!(its(""), Ok(Vec::new()));
        assert_eq!(its("!!!!"), Ok(Vec::new()));
        assert_eq!(its("a"), Err(Invalid::OneCharTooMany));
        assert_eq!(its("aGk!"), Err(Invalid::IncorrectPadding));
        assert_eq!(standard("aGk="), Ok(b"hi".to_vec()));
        assert_eq!(standard("aG k="), Ok(b"hi".to_vec()));
        assert_eq!(standard("aGk==="), Ok(b"hi".to_vec()));
        assert_eq!(standard("aGk"), Err(Invalid::IncorrectPadding));
        assert_eq!(standard("-_-_"), Ok(Vec::new()));
        assert_eq!(standard("=aGk="), Ok(b"hi".to_vec()));
    }

    #[test]
    fn errors_leave_the_output_as_it_was() {
        let mut out = b"kept".to_vec();
        assert!(decode(b"aGk!", Flavor::Itsdangerous, &mut out).is_err());
        assert_eq!(out, b"kept");
    }
}
