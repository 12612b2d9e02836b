//! The `Cookie` request header read as Flask reads it: werkzeug's
//! `parse_cookie`, so that a cookie Flask would not see (a value with a
//! space or a quote inside, say) is not seen here either, and a quoted value
//! is unescaped as werkzeug unescapes it.

use std::borrow::Cow;

use crate::words;

/// The values of every cookie named `name` in one `Cookie` header, in
/// order, read as Flask reads them: werkzeug 3.1.9's `parse_cookie` (blanks
/// around names and `=` skipped, quoted values unescaped, a value with a
/// space or a quote inside no cookie), with bytes beyond ASCII read as
/// Latin-1, one character each, as a WSGI server hands them to werkzeug:
/// Flask then signs and decodes the value's UTF-8, in which each such byte
/// counts twice, and so does tessera. (No cookie Flask writes holds one.)
///
/// ```
/// let values: Vec<_> = tessera::cookie_values(br#"a=1; session="x\.y"; session=z"#, "session").collect();
/// assert_eq!(values, ["x.y", "z"]);
/// ```
pub fn cookie_values<'h, 'n>(header: &'h [u8], name: &'n str) -> CookieValues<'h, 'n> {
    let source = match std::str::from_utf8(header) {
        Ok(text) if text.is_ascii() => Source::Header(Pairs::new(text)),
        _ => {
            let text: String = header.iter().copied().map(char::from).collect();
            let repaired: Vec<Cow<'h, str>> = Pairs::new(&text)
                .filter(|(key, _)| *key == name)
                .map(|(_, value)| Cow::Owned(unquote(value).into_owned()))
                .collect();
            Source::Repaired(repaired.into_iter())
        }
    };
    CookieValues { name, source }
}

/// The iterator [`cookie_values`] returns. `Debug` shows the name only:
/// the values are cookies.
pub struct CookieValues<'h, 'n> {
    name: &'n str,
    source: Source<'h>,
}

impl std::fmt::Debug for CookieValues<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieValues")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

enum Source<'h> {
    /// The header itself.
    Header(Pairs<'h>),
    /// Values read from the header's Latin-1 reading.
    Repaired(std::vec::IntoIter<Cow<'h, str>>),
}

impl<'h> Iterator for CookieValues<'h, '_> {
    type Item = Cow<'h, str>;

    fn next(&mut self) -> Option<Self::Item> {
        let name = self.name;
        match &mut self.source {
            Source::Header(pairs) => pairs
                .find(|(key, _)| *key == name)
                .map(|(_, value)| unquote(value)),
            Source::Repaired(values) => values.next(),
        }
    }
}

/// `(name, raw value)` pairs, a quoted value with its quotes.
struct Pairs<'t> {
    text: &'t str,
    position: usize,
}

impl<'t> Pairs<'t> {
    fn new(text: &'t str) -> Self {
        Self { text, position: 0 }
    }
}

impl<'t> Iterator for Pairs<'t> {
    type Item = (&'t str, &'t str);

    /// werkzeug's loop: match the pattern at the position; where it does
    /// not match, skip past the next `;`, and stop when there is none.
    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        while self.position < bytes.len() {
            if let Some((key, value, end)) = pair_at(bytes, self.position) {
                self.position = end;
                // Both ranges end at ASCII delimiters, so they are char boundaries.
                return Some((&self.text[key.0..key.1], &self.text[value.0..value.1]));
            }
            match self.text[self.position..].find(';') {
                Some(offset) => self.position += offset + 1,
                None => self.position = bytes.len(),
            }
        }
        None
    }
}

fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

fn skip_blanks(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).copied().is_some_and(is_blank) {
        at += 1;
    }
    at
}

/// Where the pattern ends if `[ \t]*(;|\Z)` matches at `at`.
fn end_at(bytes: &[u8], at: usize) -> Option<usize> {
    let at = skip_blanks(bytes, at);
    match bytes.get(at) {
        None => Some(at),
        Some(b';') => Some(at + 1),
        Some(_) => None,
    }
}

type Range = (usize, usize);

/// werkzeug's `_cookie_re` at `start`, with its backtracking spelled out:
///
/// ```text
/// [ \t]* ([^ \t=";]+) (?:[ \t]*=[ \t]*("(?:[^\\"]|\\.)*"|[^ \t";]*))? [ \t]* (?:;|\Z)
/// ```
///
/// Returns the key's and the value's ranges and where the match ends.
fn pair_at(bytes: &[u8], start: usize) -> Option<(Range, Range, usize)> {
    let key_start = skip_blanks(bytes, start);
    let key_end = run_end(bytes, key_start, [b' ', b'\t', b'=', b'"', b';']);
    if key_end == key_start {
        return None;
    }
    let key = (key_start, key_end);
    let equals = skip_blanks(bytes, key_end);
    if bytes.get(equals) == Some(&b'=') {
        let value_start = skip_blanks(bytes, equals + 1);
        if let Some(close) = closing_quote(bytes, value_start) {
            if let Some(end) = end_at(bytes, close + 1) {
                return Some((key, (value_start, close + 1), end));
            }
        }
        let value_end = run_end(bytes, value_start, [b' ', b'\t', b'"', b';']);
        if let Some(end) = end_at(bytes, value_end) {
            return Some((key, (value_start, value_end), end));
        }
    }
    // Without a value (a bare name).
    end_at(bytes, key_end).map(|end| (key, (key_end, key_end), end))
}

/// Where the run of bytes from `at` that are none of `stops` ends: at the
/// first stop, or at the end of `bytes`. Eight bytes at a time: a session
/// cookie's value is long, and reading it a byte at a time was most of the
/// cost of finding the cookie.
fn run_end<const N: usize>(bytes: &[u8], mut at: usize, stops: [u8; N]) -> usize {
    while let Some(word) = words::word_at(bytes, at) {
        let found = stops
            .iter()
            .fold(0, |found, &stop| found | words::bytes_equal(word, stop));
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = bytes.get(at..).unwrap_or_default();
    at + rest
        .iter()
        .position(|byte| stops.contains(byte))
        .unwrap_or(rest.len())
}

/// The closing quote of `"(?:[^\\"]|\\.)*"` opening at `open`, if any
/// (`.` is any character but a newline).
fn closing_quote(bytes: &[u8], open: usize) -> Option<usize> {
    if bytes.get(open) != Some(&b'"') {
        return None;
    }
    let mut at = open + 1;
    loop {
        match bytes.get(at)? {
            b'"' => return Some(at),
            b'\\' => match bytes.get(at + 1)? {
                b'\n' => return None,
                _ => at += 2,
            },
            _ => at += 1,
        }
    }
}

/// A quoted value without its quotes, its backslash escapes undone as
/// werkzeug undoes them (`\ooo` octal for a byte, `\c` for `c`), the bytes
/// read as UTF-8 with replacement.
fn unquote(value: &str) -> Cow<'_, str> {
    let Some(inner) = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return Cow::Borrowed(value);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'\\' || at + 1 == bytes.len() {
            out.push(bytes[at]);
            at += 1;
            continue;
        }
        let octal = bytes.get(at + 1..at + 4).filter(|digits| {
            matches!(digits[0], b'0'..=b'3')
                && matches!(digits[1], b'0'..=b'7')
                && matches!(digits[2], b'0'..=b'7')
        });
        match octal {
            Some(digits) => {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |byte, digit| (byte << 3) | (digit - b'0')),
                );
                at += 4;
            }
            None if bytes[at + 1] == b'\n' => {
                out.push(b'\\');
                at += 1;
            }
            None => {
                out.push(bytes[at + 1]);
                at += 2;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(header: &[u8], name: &str) -> Vec<String> {
        cookie_values(header, name).map(Cow::into_owned).collect()
    }

    /// Each expectation is what werkzeug 3.1's `parse_cookie` answers; the
    /// interop tests compare with it directly on many more.
    #[test]
    fn reads_what_werkzeug_reads() {
        assert_eq!(all(b"a=1; session=x; sessionx=no", "session"), ["x"]);
        assert_eq!(all(b"session=\"y\";b=2", "session"), ["y"]);
        assert_eq!(all(b"  session = x ;", "session"), ["x"]);
        // A space or a quote inside a value: werkzeug skips to the next `;`.
        assert_eq!(all(b"session=a b; session=c", "session"), ["c"]);
        assert_eq!(all(b"session=a\"b; x=1", "x"), ["1"]);
        assert!(all(b"session=a\"b; x=1", "session").is_empty());
        assert!(all(b"session=\"abc\"def; x=1", "session").is_empty());
        // Quoted values are unescaped.
        assert_eq!(all(br#"session="a\.b\"c\\d""#, "session"), ["a.b\"c\\d"]);
        assert_eq!(all(br#"session="\303\251\101""#, "session"), ["éA"]);
        assert_eq!(all(br#"session="\400""#, "session"), ["400"]);
        assert_eq!(all(b"session=\"a;b\"; x=1", "session"), ["a;b"]);
        // A bare name has an empty value; `=` and `,` may sit in a value.
        assert_eq!(all(b"session; x=1", "session"), [""]);
        assert_eq!(all(b"session=a=b,c", "session"), ["a=b,c"]);
        assert_eq!(all(b"=x; session=y", "session"), ["y"]);
        assert_eq!(all(b";;session=y;;", "session"), ["y"]);
        assert!(all(b"", "session").is_empty());
        assert!(all(b"session=\"open", "session").is_empty());
    }

    #[test]
    fn a_run_ends_at_the_first_stop_byte() {
        let stops = [b' ', b'\t', b'"', b';'];
        let naive = |bytes: &[u8], at: usize| {
            (at..bytes.len())
                .find(|&i| stops.contains(&bytes[i]))
                .unwrap_or(bytes.len())
        };
        // Every stop at every place of every length up to 40, behind runs
        // of bytes that differ from a stop in one bit (no false matches).
        for len in 0..=40usize {
            for filler in [b'a', b'!', b':', b'"' ^ 0x80, b';' | 0x80, 0x00, 0xff] {
                let plain = vec![filler; len];
                for at in 0..=len {
                    assert_eq!(run_end(&plain, at, stops), naive(&plain, at));
                }
                for place in 0..len {
                    for stop in stops {
                        let mut bytes = plain.clone();
                        bytes[place] = stop;
                        for at in 0..=len {
                            assert_eq!(
                                run_end(&bytes, at, stops),
                                naive(&bytes, at),
                                "{stop:#x} at {place} of {len}, from {at}, among {filler:#x}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bytes_beyond_ascii_are_latin1_and_hide_no_other_cookie() {
        // Found by fuzzing: one non-ASCII byte anywhere made the whole
        // header unreadable, so a UTF-8 cookie set by a page logged users out.
        assert_eq!(
            all(b"name=Jos\xc3\xa9; session=x; raw=\xff", "session"),
            ["x"]
        );
        // As a WSGI server gives them to werkzeug: UTF-8 "é" is two characters.
        assert_eq!(
            all(b"session=\xe9t\xc3\xa9; session=y", "session"),
            ["\u{e9}t\u{c3}\u{a9}", "y"]
        );
    }
}
