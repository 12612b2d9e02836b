//! Flask's tagged JSON (`flask/json/tag.py`), read and written byte-for-byte.
//!
//! The writer reproduces `json.dumps(tag(value), sort_keys=True,
//! separators=(",", ":"), ensure_ascii=True)`. The reader is a small strict
//! JSON parser rather than serde_json because it must keep number text
//! exactly (Python integers have no size limit), accept Python's `NaN` and
//! `Infinity`, see object keys in document order (Flask's `" di"` untagging
//! takes the *first* key) and bound nesting depth on hostile input.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::Write as _;

use base64::Engine as _;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::map::Map;
use crate::python_base64::{self, Flavor};
use crate::value::{Number, Value};

/// How deeply arrays and objects may nest before input is refused.
pub const MAX_DEPTH: usize = 128;

const TAG_DICT: &str = " di";
const TAG_TUPLE: &str = " t";
const TAG_BYTES: &str = " b";
const TAG_MARKUP: &str = " m";
const TAG_UUID: &str = " u";
const TAG_DATETIME: &str = " d";
const TAGS: [&str; 6] = [
    TAG_DICT,
    TAG_TUPLE,
    TAG_BYTES,
    TAG_MARKUP,
    TAG_UUID,
    TAG_DATETIME,
];

const HTTP_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Why tagged JSON could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tagged JSON at byte {offset}: {reason}")]
pub struct ParseError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// Writes a value as Flask's tagged JSON. A datetime outside years 1 to
/// 9999 in UTC is written, but Flask cannot read it back (nor tessera as it
/// was); a session refuses such a value before it is sent or stored.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Why a session value, written, would not read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unwritable {
    /// Nested deeper than [`MAX_DEPTH`] levels.
    TooDeep,
    /// A datetime outside years 1 to 9999 in UTC: Flask's reader (Python's
    /// `datetime`) holds no other, and an HTTP date's year has four digits.
    DateOutOfRange(OffsetDateTime),
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooDeep => write!(
                f,
                "it would nest deeper than {MAX_DEPTH} levels, which no session is read back with"
            ),
            // Not the datetime itself: session data, and this is logged.
            Self::DateOutOfRange(_) => write!(
                f,
                "it holds a datetime outside years 1 to 9999 in UTC, which no session is \
                 read back with"
            ),
        }
    }
}

/// `when` in UTC, if its year there is one Python's `datetime` holds (1 to
/// 9999).
pub(crate) fn utc_in_python_range(when: OffsetDateTime) -> Option<OffsetDateTime> {
    when.checked_to_offset(time::UtcOffset::UTC)
        .filter(|utc| (1..=9999).contains(&utc.year()))
}

/// Why `map`, written as tagged JSON, would not read back: nesting deeper
/// than [`MAX_DEPTH`] (counted as the reader counts: every object and
/// array, a tag's object included) or a datetime out of range. Stops
/// early: a flat session costs one look at each value.
pub(crate) fn map_unwritable(map: &Map) -> Option<Unwritable> {
    dict_unwritable(map, MAX_DEPTH)
}

/// Why `value`, as a value of a session (the session's own dict is the
/// first level), would not read back, in a cookie or in any store.
pub(crate) fn value_unwritable(value: &Value) -> Option<Unwritable> {
    item_unwritable(value, MAX_DEPTH - 1)
}

/// [`value_unwritable`] for `value` under `key`: a session whose only key
/// is a tag is written inside `{" di": …}`, one level more.
pub(crate) fn value_under_unwritable(key: &str, value: &Value) -> Option<Unwritable> {
    let escape = usize::from(TAGS.contains(&key));
    item_unwritable(value, MAX_DEPTH - 1 - escape)
}

/// [`value_under_unwritable`] for an item appended to the list under
/// `key`.
pub(crate) fn list_item_under_unwritable(key: &str, value: &Value) -> Option<Unwritable> {
    let escape = usize::from(TAGS.contains(&key));
    item_unwritable(value, MAX_DEPTH - 2 - escape)
}

fn dict_unwritable(map: &Map, room: usize) -> Option<Unwritable> {
    // A one-key dict whose key is a tag is written inside {" di": …}.
    let escaped = map.len() == 1 && map.keys().next().is_some_and(|key| TAGS.contains(&key));
    let needed = 1 + usize::from(escaped);
    if room < needed {
        return Some(Unwritable::TooDeep);
    }
    map.values()
        .find_map(|value| item_unwritable(value, room - needed))
}

fn items_unwritable(items: &[Value], room: usize, needed: usize) -> Option<Unwritable> {
    if room < needed {
        return Some(Unwritable::TooDeep);
    }
    items
        .iter()
        .find_map(|item| item_unwritable(item, room - needed))
}

fn item_unwritable(value: &Value, room: usize) -> Option<Unwritable> {
    match value {
        Value::List(items) => items_unwritable(items, room, 1),
        Value::Tuple(items) => items_unwritable(items, room, 2),
        Value::Dict(map) => dict_unwritable(map, room),
        Value::DateTime(_) | Value::Bytes(_) | Value::Markup(_) | Value::Uuid(_) if room < 1 => {
            Some(Unwritable::TooDeep)
        }
        Value::DateTime(when) if utc_in_python_range(*when).is_none() => {
            Some(Unwritable::DateOutOfRange(*when))
        }
        Value::Null
        | Value::Bool(_)
        | Value::Number(_)
        | Value::String(_)
        | Value::DateTime(_)
        | Value::Bytes(_)
        | Value::Markup(_)
        | Value::Uuid(_) => None,
    }
}

/// The longest integer Python reads by default (`sys.get_int_max_str_digits`).
const PYTHON_MAX_INT_DIGITS: usize = 4300;

/// Writes a session's map as Flask's tagged JSON (datetimes as
/// [`to_string`] writes them).
pub fn map_to_string(map: &Map) -> String {
    // Most sessions fit; growing a string from empty copies it several times.
    let mut out = String::with_capacity(128);
    write_dict(&mut out, map);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(n.as_str()),
        Value::String(s) => write_string(out, s),
        Value::List(items) => write_array(out, items),
        Value::Dict(map) => write_dict(out, map),
        Value::Tuple(items) => {
            write_tag_open(out, TAG_TUPLE);
            write_array(out, items);
            out.push('}');
        }
        Value::Bytes(bytes) => {
            write_tag_open(out, TAG_BYTES);
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
            out.push_str("\"}");
        }
        Value::Markup(html) => {
            write_tag_open(out, TAG_MARKUP);
            write_string(out, html);
            out.push('}');
        }
        Value::Uuid(uuid) => {
            write_tag_open(out, TAG_UUID);
            out.push('"');
            out.push_str(uuid.simple().encode_lower(&mut uuid::Uuid::encode_buffer()));
            out.push_str("\"}");
        }
        Value::DateTime(when) => {
            write_tag_open(out, TAG_DATETIME);
            out.push('"');
            out.push_str(&http_date(*when));
            out.push_str("\"}");
        }
    }
}

fn write_tag_open(out: &mut String, tag: &str) {
    out.push_str("{\"");
    out.push_str(tag);
    out.push_str("\":");
}

fn write_array(out: &mut String, items: &[Value]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_value(out, item);
    }
    out.push(']');
}

pub(crate) fn write_dict(out: &mut String, map: &Map) {
    // A one-key dict whose key is itself a tag would be read back as that
    // tag, so Flask escapes it as {" di": {"<key>__": value}}.
    if map.len() == 1 {
        if let Some((key, value)) = map.iter().next() {
            if TAGS.contains(&key) {
                write_tag_open(out, TAG_DICT);
                out.push('{');
                write_string(out, &format!("{key}__"));
                out.push(':');
                write_value(out, value);
                out.push_str("}}");
                return;
            }
        }
    }
    out.push('{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

/// Python's `ensure_ascii` escaping: everything outside printable ASCII is
/// `\uXXXX` with lowercase hex, astral characters as surrogate pairs.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    loop {
        // Printable ASCII other than the quote and the backslash is written
        // as it is, a run at a time: keys, ids and tokens are nothing else.
        let plain = rest
            .bytes()
            .position(|byte| !matches!(byte, b' '..=b'~') || byte == b'"' || byte == b'\\')
            .unwrap_or(rest.len());
        // The run is ASCII, so it ends on a character boundary.
        let (run, after) = rest.split_at(plain);
        out.push_str(run);
        let mut chars = after.chars();
        let Some(c) = chars.next() else {
            break;
        };
        rest = chars.as_str();
        write_escaped_char(out, c);
    }
    out.push('"');
}

/// One character [`write_string`] does not write as it is: the quote, the
/// backslash, a control character or one beyond ASCII.
fn write_escaped_char(out: &mut String, c: char) {
    if let Some(escape) = short_escape(c) {
        out.push_str(escape);
    } else {
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            let _ = write!(out, "\\u{unit:04x}");
        }
    }
}

/// JSON's two-character escape of `c`, if it has one: the quote, the
/// backslash and five control characters. Every JSON writer of Python's
/// that tessera matches (the `json` module, msgspec) uses them; they
/// differ in what else they escape.
pub(crate) fn short_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\u{8}' => "\\b",
        '\u{c}' => "\\f",
        _ => return None,
    })
}

/// An HTTP date, as Werkzeug's `http_date` writes it. A datetime whose UTC
/// time the `time` crate cannot hold (past year 9999 or before -9999) is
/// written as the nearest one it can: sessions refuse datetimes outside
/// years 1 to 9999 before writing them (see [`Unwritable`]).
pub(crate) fn http_date(when: OffsetDateTime) -> String {
    let utc = when
        .checked_to_offset(time::UtcOffset::UTC)
        .unwrap_or_else(|| {
            // Only the offset can carry the time past the range, in its direction.
            if when.offset().is_negative() {
                time::PrimitiveDateTime::MAX.assume_utc()
            } else {
                time::PrimitiveDateTime::MIN.assume_utc()
            }
        });
    utc.format(HTTP_DATE).unwrap_or_default()
}

/// Reads Flask's tagged JSON into a value, untagging as Flask does. A lone
/// UTF-16 surrogate (`"\ud800"`, which a Python string can hold and a Rust
/// one cannot) reads as U+FFFD, so that the rest of the session survives.
pub fn from_str(text: &str) -> Result<Value, ParseError> {
    parse(text, true, false)
}

/// [`from_str`] for writing sessions rather than reading them: a `" d"`
/// tag whose text is not an HTTP date (`Tue, 02 Jan 2024 03:04:05 GMT`) is
/// an error, where Flask (and [`from_str`]) read it as `None`, which would
/// silently sign a `null` instead of the date meant; so is a lone UTF-16
/// surrogate (`"\ud800"`), which [`from_str`] reads as U+FFFD.
pub fn from_str_strict(text: &str) -> Result<Value, ParseError> {
    parse(text, true, true)
}

/// Rewrites the numbers in `value` as Python's `json.loads` and then
/// `json.dumps` would write them (`1E5` is `100000.0`, `-0` is `0`, `1e400`
/// is `Infinity`). The readers keep a number's text as it came, which is
/// Python's for anything Flask wrote; JSON from elsewhere, once rewritten,
/// makes the session, and the cookie, Flask would make of it.
///
/// ```
/// let mut value = tessera::tagged::from_str_strict("[1E5, -0, 0.10, 7]").unwrap();
/// tessera::tagged::python_numbers(&mut value);
/// assert_eq!(tessera::tagged::to_string(&value), "[100000.0,0,0.1,7]");
/// ```
pub fn python_numbers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(rewritten) = python_number(number) {
                *number = rewritten;
            }
        }
        Value::List(items) | Value::Tuple(items) => items.iter_mut().for_each(python_numbers),
        Value::Dict(map) => map.values_mut().for_each(python_numbers),
        _ => {}
    }
}

/// The number as Python writes it, if that is other text.
fn python_number(number: &Number) -> Option<Number> {
    let text = number.as_str();
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return None;
    }
    // (The parser has refused an integer Python cannot read already.)
    if number.is_integer() {
        return (text == "-0").then(|| Number::from(0));
    }
    // Rust's parse rounds correctly, as Python's float() does; JSON number
    // text always parses (past f64's range to an infinity, as in Python).
    let value: f64 = text.parse().ok()?;
    let rewritten = Number::from_f64(value);
    (rewritten.as_str() != text).then_some(rewritten)
}

/// Reads plain JSON, where a one-key object such as `{" t": [1]}` is just
/// a dict: what Flask-Session's JSON serialization stores.
pub(crate) fn from_str_plain(text: &str) -> Result<Value, ParseError> {
    parse(text, false, false)
}

/// Reads Flask's tagged JSON that must be a dict (a session), as
/// [`from_str`] does; `Ok(None)` when it is JSON but not a dict. The map is
/// built and returned as itself rather than inside a [`Value`]: moving a
/// freshly written `Value` out again stalls the CPU (see
/// `Parser::parse_value_into`), and every cookie read did it once.
pub(crate) fn dict_from_str(text: &str) -> Result<Option<Map>, ParseError> {
    let mut parser = Parser::at(text, 0, true);
    parser.skip_whitespace();
    if parser.peek() != Some(b'{') {
        return parse(text, true, false).map(|value| match value {
            Value::Dict(map) => Some(map),
            _ => None,
        });
    }
    let parsed = (|| {
        let start = parser.pos;
        let mut map = Map::new();
        let value_start = parser.parse_object_entries(&mut map, 1)?;
        // Untagged before the end is checked, as `parse` does.
        let map = if map.len() == 1 {
            match parser.untag(map, value_start) {
                Ok(Value::Dict(map)) => Some(map),
                Ok(_) => None,
                Err(reason) => return Err(parser.error_at(start, reason)),
            }
        } else {
            Some(map)
        };
        parser.expect_end()?;
        Ok(map)
    })();
    parsed.map_err(|Failed| parser.failure())
}

fn parse(text: &str, untag: bool, strict: bool) -> Result<Value, ParseError> {
    let mut parser = Parser::at(text, 0, untag);
    parser.strict = strict;
    let parsed = (|| {
        parser.skip_whitespace();
        let mut value = Value::Null;
        parser.parse_value_into(&mut value, 0)?;
        parser.expect_end()?;
        Ok(value)
    })();
    parsed.map_err(|Failed| parser.failure())
}

/// The parser failed; why and where is in `Parser::failure`. Keeping the
/// error out of every `Result` keeps those as small as the value itself,
/// and the parser moves a lot of them.
struct Failed;

struct Parser<'a> {
    /// Valid UTF-8 already; the parser splits it only next to ASCII bytes,
    /// so every slice of it it takes is a whole string slice.
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    untag: bool,
    /// For writing: an unreadable `" d"` date is an error, not `None`, and
    /// a lone surrogate one, not U+FFFD.
    strict: bool,
    failure: Cell<Option<ParseError>>,
}

impl<'a> Parser<'a> {
    fn at(text: &'a str, pos: usize, untag: bool) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos,
            untag,
            strict: false,
            failure: Cell::new(None),
        }
    }

    /// Why and where parsing failed, once it has.
    fn failure(&self) -> ParseError {
        self.failure.take().unwrap_or(ParseError {
            offset: self.pos,
            reason: "invalid JSON",
        })
    }

    fn error(&self, reason: &'static str) -> Failed {
        self.error_at(self.pos, reason)
    }

    fn error_at(&self, offset: usize, reason: &'static str) -> Failed {
        self.failure.set(Some(ParseError { offset, reason }));
        Failed
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Nothing but whitespace after the document.
    fn expect_end(&mut self) -> Result<(), Failed> {
        self.skip_whitespace();
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error("trailing characters"))
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, literal: &str) -> bool {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    /// Reads a value into `slot`. Values are built where they are kept
    /// rather than returned and moved: a freshly written enum read back
    /// whole stalls the CPU (the store cannot be forwarded to a wider
    /// load), and that was a large part of reading a session.
    fn parse_value_into(&mut self, slot: &mut Value, depth: usize) -> Result<(), Failed> {
        *slot = match self.peek() {
            None => return Err(self.error("unexpected end of input")),
            Some(b'{') => return self.parse_object_into(slot, depth + 1),
            Some(b'[') => {
                let mut items = Vec::new();
                self.parse_array_into(&mut items, depth + 1)?;
                Value::List(items)
            }
            Some(b'"') => Value::String(self.parse_string()?.into_owned()),
            Some(b't') if self.expect_literal("true") => Value::Bool(true),
            Some(b'f') if self.expect_literal("false") => Value::Bool(false),
            Some(b'n') if self.expect_literal("null") => Value::Null,
            Some(b'N') if self.expect_literal("NaN") => {
                Value::Number(Number::from_validated("NaN"))
            }
            Some(b'I') if self.expect_literal("Infinity") => {
                Value::Number(Number::from_validated("Infinity"))
            }
            Some(b'-') if self.bytes[self.pos..].starts_with(b"-Infinity") => {
                self.pos += "-Infinity".len();
                Value::Number(Number::from_validated("-Infinity"))
            }
            Some(b'-' | b'0'..=b'9') => Value::Number(self.parse_number()?),
            Some(_) => return Err(self.error("unexpected character")),
        };
        Ok(())
    }

    fn parse_number(&mut self) -> Result<Number, Failed> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits_start = self.pos;
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.error("invalid number")),
        }
        // Python refuses to read longer integers (sys.get_int_max_str_digits),
        // so Flask would refuse the session: so does this.
        if self.pos - digits_start > PYTHON_MAX_INT_DIGITS
            && !matches!(self.peek(), Some(b'.' | b'e' | b'E'))
        {
            return Err(self.error("an integer of more than 4300 digits, which Python refuses"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.skip_digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("invalid number"));
            }
            self.skip_digits();
        }
        let text = self
            .text
            .get(start..self.pos)
            .ok_or_else(|| self.error("invalid number"))?;
        Ok(Number::from_validated(text))
    }

    fn skip_digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    /// A string, borrowed from the text when it holds no escapes (most do),
    /// so the caller allocates it once, where it is kept.
    fn parse_string(&mut self) -> Result<Cow<'a, str>, Failed> {
        let start = self.pos + 1; // after the opening quote
        let end = start + plain_run_len(&self.bytes[start..]);
        if self.bytes.get(end) == Some(&b'"') {
            if let Some(text) = self.text.get(start..end) {
                self.pos = end + 1;
                return Ok(Cow::Borrowed(text));
            }
        }
        self.pos = start;
        self.parse_escaped_string().map(Cow::Owned)
    }

    /// The rest of a string that holds escapes (or is malformed), run by run.
    #[cold]
    fn parse_escaped_string(&mut self) -> Result<String, Failed> {
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            self.pos += plain_run_len(&self.bytes[self.pos..]);
            let run = self
                .text
                .get(run_start..self.pos)
                .ok_or_else(|| self.error("invalid UTF-8 in string"))?;
            out.push_str(run);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.parse_escape(&mut out)?;
                }
                Some(_) => return Err(self.error("control character in string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    fn parse_escape(&mut self, out: &mut String) -> Result<(), Failed> {
        let Some(b) = self.peek() else {
            return Err(self.error("unterminated escape"));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.parse_hex4()?;
                let low = (0xd800..0xdc00).contains(&unit).then(|| {
                    let after = self.pos;
                    self.bytes[after..]
                        .starts_with(b"\\u")
                        .then(|| {
                            self.pos += 2;
                            self.parse_hex4().ok()
                        })
                        .flatten()
                        .filter(|low| (0xdc00..0xe000).contains(low))
                        .or_else(|| {
                            // Not a pair: the next escape is read on its own.
                            self.pos = after;
                            None
                        })
                });
                match (low, char::from_u32(u32::from(unit))) {
                    (Some(Some(low)), _) => {
                        let code = 0x10000
                            + ((u32::from(unit) - 0xd800) << 10)
                            + (u32::from(low) - 0xdc00);
                        char::from_u32(code).ok_or_else(|| self.error("invalid code point"))?
                    }
                    (None, Some(c)) => c,
                    // A lone surrogate: Python's strings hold one, Rust's
                    // cannot. Reading it as U+FFFD keeps the rest of the
                    // session (a login), where refusing would lose it all;
                    // writing sessions (`strict`) refuses it instead.
                    _ if self.strict => {
                        return Err(self.error("lone surrogate in string"));
                    }
                    _ => char::REPLACEMENT_CHARACTER,
                }
            }
            _ => return Err(self.error("invalid escape")),
        };
        out.push(c);
        Ok(())
    }

    fn parse_hex4(&mut self) -> Result<u16, Failed> {
        let hex = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        // Four hex digits exactly: `from_str_radix` alone would also take a
        // sign ("\\u+041"), which Python refuses.
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.error("invalid \\u escape"));
        }
        let unit = hex
            .iter()
            .fold(0u16, |unit, digit| (unit << 4) | hex_digit_value(*digit));
        self.pos += 4;
        Ok(unit)
    }

    fn enter(&self, depth: usize) -> Result<(), Failed> {
        if depth > MAX_DEPTH {
            Err(self.error("nesting too deep"))
        } else {
            Ok(())
        }
    }

    fn parse_array_into(&mut self, items: &mut Vec<Value>, depth: usize) -> Result<(), Failed> {
        self.enter(depth)?;
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            items.push(Value::Null);
            if let Some(slot) = items.last_mut() {
                self.parse_value_into(slot, depth)?;
            }
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn parse_object_into(&mut self, slot: &mut Value, depth: usize) -> Result<(), Failed> {
        let start = self.pos;
        let mut map = Map::new();
        let value_start = self.parse_object_entries(&mut map, depth)?;
        *slot = if !self.untag || map.len() != 1 {
            Value::Dict(map)
        } else {
            self.untag(map, value_start)
                .map_err(|reason| self.error_at(start, reason))?
        };
        Ok(())
    }

    /// Reads the object at the cursor into `map` (empty), without untagging
    /// it. Returns where its last value starts: untagging `{" di": {...}}`
    /// needs the inner object's first key in document order, which the map
    /// does not keep, so it is read again from there.
    fn parse_object_entries(&mut self, map: &mut Map, depth: usize) -> Result<usize, Failed> {
        self.enter(depth)?;
        self.pos += 1;
        let mut value_start = self.pos;
        let mut in_order = true;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(value_start);
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a string key"));
            }
            let key = self.parse_string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.pos += 1;
            self.skip_whitespace();
            value_start = self.pos;
            // Python keeps the last value of a repeated key; so does the
            // map. The dict is whole before the tag check, as in Python, so
            // `{" t": [1], " t": [2]}` is the one-key dict `{" t": [2]}`: a
            // tuple.
            in_order &= map.push_read_with(key, |value| self.parse_value_into(value, depth))?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected ',' or '}'")),
            }
        }
        if !in_order {
            map.restore_order();
        }
        Ok(value_start)
    }

    /// Converts a one-key dict that is a tag, exactly as Flask's
    /// `_untag_scan` does (children first, then the dict itself);
    /// `value_start` is where the tag's value starts in the text.
    fn untag(&self, mut map: Map, value_start: usize) -> Result<Value, &'static str> {
        let Some(tag) = map
            .keys()
            .next()
            .and_then(|key| TAGS.iter().find(|tag| **tag == key))
        else {
            return Ok(Value::Dict(map));
        };
        let Some((_, value)) = map.pop_first() else {
            return Ok(Value::Dict(map));
        };
        if *tag != TAG_DICT {
            return untag_value(tag, value, self.strict);
        }
        // Flask keeps the first key, minus its last two characters ("__").
        let Value::Dict(mut inner) = value else {
            return Err("' di' tag must hold an object");
        };
        let first_key = if inner.len() == 1 {
            // Also what an inner object that was itself untagged left.
            inner.pop_first()
        } else {
            self.first_key_at(value_start)
                .and_then(|key| inner.remove_entry(&key))
        };
        let Some((key, value)) = first_key else {
            return Err("' di' tag must hold one key");
        };
        let mut chars = key.chars();
        chars.next_back();
        chars.next_back();
        Ok(Value::Dict(Map::from([(chars.as_str().to_owned(), value)])))
    }

    /// The first key of the object that starts at `position`, read again.
    fn first_key_at(&self, position: usize) -> Option<String> {
        let mut parser = Parser::at(self.text, position + 1, self.untag);
        parser.strict = self.strict;
        parser.skip_whitespace();
        (parser.peek() == Some(b'"'))
            .then(|| parser.parse_string().ok().map(Cow::into_owned))
            .flatten()
    }
}

/// Whether a string byte ends a run of plain characters: the closing
/// quote, an escape, or a control character JSON does not allow.
fn ends_plain_run(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// How many bytes at the start of `bytes` are plain string characters,
/// eight at a time: session strings are mostly long runs (tokens, ids) and
/// this scan was most of the parser's time.
fn plain_run_len(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    // The classic "has a zero byte" test, applied to the word xor the
    // quote, xor the backslash, and to "below 0x20". Borrows can flag bytes
    // after the first real one, never before it, so the lowest flag is exact.
    let zero_bytes = |word: u64| word.wrapping_sub(ONES) & !word & HIGH_BITS;
    let mut offset = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let flagged = zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS);
        if flagged != 0 {
            return offset + (flagged.trailing_zeros() / 8) as usize;
        }
        offset += 8;
    }
    let rest = &bytes[offset..];
    offset
        + rest
            .iter()
            .position(|&byte| ends_plain_run(byte))
            .unwrap_or(rest.len())
}

/// Python's `uuid.UUID(text)`: `urn:` and `uuid:` removed wherever they
/// are, braces stripped from both ends, hyphens removed anywhere, then 32
/// characters read by `int(…, 16)` (ASCII only here: Python would also take
/// other scripts' digits, which no UUID writer emits).
fn python_uuid(text: &str) -> Option<uuid::Uuid> {
    let text = text.replace("urn:", "").replace("uuid:", "");
    let hex = text.trim_matches(['{', '}']).replace('-', "");
    if hex.chars().count() != 32 {
        return None;
    }
    python_hex_int(&hex).map(uuid::Uuid::from_u128)
}

/// Python's `int(text, 16)` for ASCII text: surrounding whitespace, a sign,
/// a `0x` prefix, and single underscores between digits (or after the
/// prefix). Negative values other than zero are `None`, as `UUID` refuses them.
fn python_hex_int(text: &str) -> Option<u128> {
    // What `int()` strips: Unicode's whitespace (not \x1c to \x1f, which
    // `str.split()` splits at).
    let text = text.trim_matches(char::is_whitespace);
    let (negative, text) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (prefixed, digits) = match text.get(..2) {
        Some("0x" | "0X") => (true, &text[2..]),
        _ => (false, text),
    };
    let mut value: u128 = 0;
    let mut digit_seen = false;
    let mut after_underscore = false;
    for byte in digits.bytes() {
        if byte == b'_' {
            // One underscore at a time, between digits, or right after "0x".
            if after_underscore || !(digit_seen || prefixed) {
                return None;
            }
            after_underscore = true;
            continue;
        }
        if !byte.is_ascii_hexdigit() {
            return None;
        }
        value = value
            .checked_mul(16)?
            .checked_add(u128::from(hex_digit_value(byte)))?;
        digit_seen = true;
        after_underscore = false;
    }
    if !digit_seen || after_underscore || (negative && value != 0) {
        return None;
    }
    Some(value)
}

fn hex_digit_value(digit: u8) -> u16 {
    u16::from(match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    })
}

fn untag_value(tag: &str, value: Value, strict: bool) -> Result<Value, &'static str> {
    match tag {
        // Flask's `tuple(value)`: a string gives its characters.
        TAG_TUPLE => match value {
            Value::List(items) => Ok(Value::Tuple(items)),
            Value::String(text) => Ok(Value::Tuple(
                text.chars().map(|c| Value::String(c.to_string())).collect(),
            )),
            _ => Err("' t' tag must hold an array"),
        },
        // Flask's `b64decode(value)`, as lenient as Python's, but ASCII only.
        TAG_BYTES => match value {
            Value::String(text) if text.is_ascii() => {
                let mut bytes = Vec::new();
                python_base64::decode(text.as_bytes(), Flavor::Standard, &mut bytes)
                    .map(|()| Value::Bytes(bytes))
                    .map_err(|_| "' b' tag must hold base64")
            }
            Value::String(_) => Err("' b' tag must hold base64"),
            _ => Err("' b' tag must hold a string"),
        },
        TAG_MARKUP => match value {
            Value::String(html) => Ok(Value::Markup(html)),
            _ => Err("' m' tag must hold a string"),
        },
        TAG_UUID => match value {
            Value::String(text) => python_uuid(&text)
                .map(Value::Uuid)
                .ok_or("' u' tag must hold a UUID"),
            _ => Err("' u' tag must hold a string"),
        },
        // Werkzeug's parse_date gives None for a date it cannot read.
        TAG_DATETIME => match value {
            // Werkzeug's parse_date(None) is None too.
            Value::Null => Ok(Value::Null),
            Value::String(text) => match crate::email_date::parse(&text) {
                Some(when) => Ok(Value::DateTime(when)),
                None if strict => Err("' d' tag must hold an HTTP date, such as \
                     \"Tue, 02 Jan 2024 03:04:05 GMT\""),
                None => Ok(Value::Null),
            },
            _ => Err("' d' tag must hold a string"),
        },
        _ => Err("unknown tag"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_rewritten_as_python_writes_them() {
        let mut value = from_str_strict(
            r#"{"a": 1E5, "b": [0.10, -0, {"c": 1e300}], "d": 1e400, "e": 7, "f": 2.5, "g": -0.0,
                "h": 123456789012345678901234567890, "i": 123456789012345678901234567890.5,
                "j": {" t": [1e-7, 1.50]}, "k": NaN, "l": -1e400}"#,
        )
        .expect("valid");
        python_numbers(&mut value);
        assert_eq!(
            to_string(&value),
            concat!(
                r#"{"a":100000.0,"b":[0.1,0,{"c":1e+300}],"d":Infinity,"e":7,"f":2.5,"g":-0.0,"#,
                r#""h":123456789012345678901234567890,"i":1.2345678901234568e+29,"#,
                r#""j":{" t":[1e-07,1.5]},"k":NaN,"l":-Infinity}"#
            )
        );
    }

    fn round_trip(text: &str) {
        let value = from_str(text).expect("parses");
        assert_eq!(to_string(&value), text);
    }

    proptest::proptest! {
        /// Strings are written as a character-by-character escaper writes
        /// them (Python's `ensure_ascii`), runs of plain text and all.
        #[test]
        fn strings_are_written_as_each_character_escaped(text in "\\PC{0,40}|[ -~é🎯\\n\\t\\x01\\x7f\"\\\\]{0,40}") {
            let mut expected = String::from('"');
            for c in text.chars() {
                if matches!(c, ' '..='~') && c != '"' && c != '\\' {
                    expected.push(c);
                } else {
                    write_escaped_char(&mut expected, c);
                }
            }
            expected.push('"');
            let mut written = String::new();
            write_string(&mut written, &text);
            proptest::prop_assert_eq!(written, expected);
        }
    }

    #[test]
    fn writes_sorted_compact_ascii() {
        let value = from_str(r#"{"user_id": 42, "name": "alice"}"#).expect("parses");
        assert_eq!(to_string(&value), r#"{"name":"alice","user_id":42}"#);
        let s = Value::from("é中🎯\u{7f}\u{0}\"\\/\n");
        assert_eq!(
            to_string(&s),
            r#""\u00e9\u4e2d\ud83c\udfaf\u007f\u0000\"\\/\n""#
        );
    }

    /// A datetime past what the time crate holds in UTC is written as the
    /// nearest it holds, not a panic; sessions refuse it before writing.
    #[test]
    fn datetimes_beyond_utc_range_are_written_without_panicking() {
        let late = Value::DateTime(time::macros::datetime!(9999-12-31 23:00 -05:00));
        assert_eq!(
            to_string(&late),
            r#"{" d":"Fri, 31 Dec 9999 23:59:59 GMT"}"#
        );
        assert_eq!(
            value_unwritable(&late),
            Some(Unwritable::DateOutOfRange(time::macros::datetime!(
                9999-12-31 23:00 -05:00
            )))
        );
        let early = Value::DateTime(time::macros::datetime!(-9999-01-01 00:00 +01:00));
        assert!(
            to_string(&early).contains("-9999 00:00:00 GMT"),
            "{}",
            to_string(&early)
        );
        let first = Value::DateTime(time::macros::datetime!(0001-01-01 00:00 UTC));
        assert_eq!(value_unwritable(&first), None);
    }

    /// Integers as long as Python reads them, and no longer (floats are
    /// not bounded).
    #[test]
    fn integers_beyond_python_s_limit_are_refused() {
        let longest = "9".repeat(4300);
        assert!(from_str(&longest).is_ok());
        assert!(from_str(&format!("-{longest}")).is_ok());
        let error = from_str(&format!("[1,{longest}9]")).expect_err("too long");
        assert!(error.reason.contains("4300 digits"), "{error}");
        assert!(from_str(&format!("{longest}9.0")).is_ok());
        assert!(from_str(&format!("{longest}9e0")).is_ok());
    }

    /// The writer's depth check agrees with the reader, for every kind of
    /// nesting, right at the bound.
    #[test]
    fn the_depth_check_agrees_with_the_reader() {
        fn nest(levels: usize, wrap: fn(Value) -> Value) -> Map {
            let mut value = Value::from(1);
            for _ in 0..levels {
                value = wrap(value);
            }
            Map::from([("k".to_owned(), value)])
        }
        let wraps: [fn(Value) -> Value; 5] = [
            |v| Value::List(vec![v]),
            |v| Value::Tuple(vec![v]),
            |v| Value::Dict(Map::from([("a".to_owned(), v)])),
            |v| Value::Dict(Map::from([(" t".to_owned(), v)])),
            |v| Value::List(vec![Value::from(0), v, Value::bytes(vec![1])]),
        ];
        for wrap in wraps {
            for levels in 0..200 {
                let map = nest(levels, wrap);
                let readable = from_str(&map_to_string(&map)).is_ok();
                assert_eq!(
                    map_unwritable(&map),
                    (!readable).then_some(Unwritable::TooDeep),
                    "{levels} levels of {:?}",
                    wrap(Value::Null)
                );
            }
        }
        let leafy = Map::from([("b".to_owned(), Value::bytes(vec![1]))]);
        assert_eq!(map_unwritable(&leafy), None);
    }

    #[test]
    fn tags_round_trip() {
        round_trip(r#"{" t":[1,"a",{" t":[]}]}"#);
        round_trip(r#"{" b":"/wA="}"#);
        round_trip(r#"{" m":"<b>hi</b>"}"#);
        round_trip(r#"{" u":"12345678123456781234567812345678"}"#);
        round_trip(r#"{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}"#);
        round_trip(r#"{"x":{" di":{" t__":[1,2]}}}"#);
        round_trip(r#"{" t":1,"other":2}"#);
        round_trip(r#"[18446744073709551621,-1180591620717411303424,1e+16,NaN,-Infinity]"#);
    }

    proptest::proptest! {
        #[test]
        fn the_word_scan_finds_what_the_byte_scan_finds(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::prelude::Just(b'"'),
                    proptest::prelude::Just(b'\\'),
                    0x1fu8..=0x21,
                    0x7fu8..=0x81,
                ],
                0..40,
            ),
            plain_prefix in 0usize..24,
        ) {
            let mut input = vec![b'a'; plain_prefix];
            input.extend(bytes);
            let expected = input.iter().position(|&b| ends_plain_run(b)).unwrap_or(input.len());
            proptest::prop_assert_eq!(plain_run_len(&input), expected);
        }
    }

    /// What `dict_from_str` must answer: `from_str`'s value if a dict,
    /// `None` for any other value, and the same error.
    fn dict_by_value(text: &str) -> Result<Option<Map>, ParseError> {
        from_str(text).map(|value| match value {
            Value::Dict(map) => Some(map),
            _ => None,
        })
    }

    #[test]
    fn a_session_reads_as_its_value_reads() {
        for text in [
            r#"{"_fresh":true,"_user_id":"42","theme":"dark"}"#,
            " \n{ \"b\" : 1 , \"a\" : [2] } \t",
            "{}",
            r#"{" t":[1,2]}"#,
            r#"{" di":{"a__":1}}"#,
            r#"{" di":{"b__":1,"a__":2}}"#,
            r#"{" di":{}}"#,
            r#"{" di":1}"#,
            r#"{" m":"<b>x</b>"}"#,
            r#"{" d":"not a date"}"#,
            r#"{" t":[1], " t":[2]}"#,
            r#"{"b":1,"a":2,"b":3}"#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            r#"{1:2}"#,
            "[1]",
            "\"text\"",
            "null",
            "",
            "   ",
        ] {
            assert_eq!(dict_from_str(text), dict_by_value(text), "{text}");
        }
        let deep = format!(
            "{}{}",
            r#"{"a":"#.repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert!(dict_from_str(&deep).is_err());
        assert_eq!(dict_from_str(&deep), dict_by_value(&deep));
    }

    proptest::proptest! {
        #[test]
        fn any_text_reads_as_a_session_as_its_value_reads(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{", "}", "[", "]", ":", ",", " ", "1", "-2.5", "true", "null",
                    "\"a\"", "\"b__\"", "\" t\"", "\" di\"", "\" m\"", "\" u\"",
                    "\"x\\u00e9\"", "\"", "x",
                ]),
                0..24,
            ),
            object in proptest::prelude::any::<bool>(),
        ) {
            // Most sessions start as an object; so do half the texts here.
            let text = if object { format!("{{{}", parts.concat()) } else { parts.concat() };
            proptest::prop_assert_eq!(dict_from_str(&text), dict_by_value(&text), "{}", text);
        }
    }

    #[test]
    fn escaped_dict_keeps_its_first_key_in_document_order() {
        // Flask's TagDict.to_python takes `next(iter(value))`: the first key
        // as written, whatever the others are.
        for (text, key, value) in [
            (r#"{" di":{"b__":1,"a__":2}}"#, "b", 1),
            (r#"{" di":{ "z__" : 3 , "a__":2}}"#, "z", 3),
            (r#"{" di":{"b__":1,"a__":2,"b__":5}}"#, "b", 5),
            (r#"{" di":{"x__":1}," di":{"q__":7,"p__":8}}"#, "q", 7),
            (r#"{" di":{" di":{"a____":4}}}"#, "a", 4),
        ] {
            let parsed = from_str(text).expect("parses");
            let expected = Value::Dict(Map::from([(key.to_owned(), Value::from(value))]));
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn escaped_dict_reads_as_user_dict() {
        let value = from_str(r#"{" di":{" t__":[1,2]}}"#).expect("parses");
        let map = value.as_dict().expect("a dict");
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(" t"), Some(&Value::List(vec![1.into(), 2.into()])));
    }

    #[test]
    fn refuses_malformed_and_deep_input() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"}",
            "\"\u{1}\"",
            "01x",
            "{\" t\":1}",
            "{\" b\":\"aGk\"}",
            "{\" di\":{}}",
            "tru",
            "1 2",
        ] {
            assert!(from_str(bad).is_err(), "{bad:?} should be refused");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(
            from_str(&deep).map_err(|e| e.reason),
            Err("nesting too deep")
        );
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(from_str(&ok).is_ok());
    }

    #[test]
    fn repeated_keys_are_untagged_like_python() {
        // Found by fuzzing: the tag check looked at the pairs before they
        // became a dict, so a repeated tag key made a one-key dict holding a
        // tag name, which is written escaped one level deeper and so could
        // exceed MAX_DEPTH when read back. Python's dict keeps the last value.
        assert_eq!(
            from_str(r#"{" t":[1]," t":[2]}"#),
            Ok(Value::Tuple(vec![2.into()]))
        );
        assert!(from_str(r#"{" t":[1]," t":2}"#).is_err());
        assert_eq!(
            from_str(r#"{"a":1,"a":2,"b":3}"#),
            Ok(Value::Dict(Map::from([
                ("a".to_owned(), 2.into()),
                ("b".to_owned(), 3.into())
            ])))
        );
        let deep = "[".repeat(MAX_DEPTH - 2) + r#"{" t":0," t":[]}"# + &"]".repeat(MAX_DEPTH - 2);
        let value = from_str(&deep).expect("parses");
        assert_eq!(from_str(&to_string(&value)), Ok(value));
    }

    #[test]
    fn keys_out_of_order_are_sorted_and_the_last_repeat_wins() {
        assert_eq!(
            from_str(r#"{"b":1,"a":2,"c":{"z":0,"y":1},"b":3,"a":4}"#),
            Ok(Value::Dict(Map::from([
                ("a", 4.into()),
                ("b", 3.into()),
                (
                    "c",
                    Value::Dict(Map::from([("y", 1.into()), ("z", 0.into())]))
                ),
            ])))
        );
        // Hostile input: every key before the previous one. Read with one
        // sort at the end, so this many keys cost no more than in order
        // (`hostile/descending_keys` in the codec benchmark measures it).
        let count = 20_000;
        let text = format!(
            "{{{}}}",
            (0..count)
                .rev()
                .map(|i| format!(r#""{i:05}":{i}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let Ok(Value::Dict(map)) = from_str(&text) else {
            panic!("reads a dict");
        };
        assert_eq!(map.len(), count);
        assert!(map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b));
        assert_eq!(map.get("00042").and_then(Value::as_i64), Some(42));
    }

    #[test]
    fn unreadable_date_becomes_none_like_werkzeug() {
        assert_eq!(from_str(r#"{" d":"yesterday"}"#), Ok(Value::Null));
    }

    #[test]
    fn unicode_escapes_are_four_hex_digits_exactly() {
        assert_eq!(from_str(r#""\u0041\u00e9""#), Ok(Value::from("Aé")));
        assert_eq!(from_str(r#""\u00C9""#), Ok(Value::from("É")));
        // `u16::from_str_radix` takes a sign; Python's JSON reader does not.
        for bad in [
            r#""\u+041""#,
            r#""\u-041""#,
            r#""\u 041""#,
            r#""\u004""#,
            r#""\ud83d\u+e00""#,
        ] {
            assert_eq!(
                from_str(bad).map_err(|e| e.reason),
                Err("invalid \\u escape"),
                "{bad}"
            );
        }
    }

    /// Tag contents Flask reads although it never writes them: what
    /// `tuple(value)`, `b64decode(value)` and `uuid.UUID(value)` accept
    /// (each checked against CPython 3.11).
    #[test]
    fn tag_contents_are_read_as_python_reads_them() {
        let tuple = |items: &[&str]| Value::Tuple(items.iter().map(|&s| Value::from(s)).collect());
        assert_eq!(from_str(r#"{" t":"ab"}"#), Ok(tuple(&["a", "b"])));
        assert_eq!(from_str(r#"{" t":""}"#), Ok(tuple(&[])));
        for (text, bytes) in [
            (r#"{" b":"aGk="}"#, &b"hi"[..]),
            (r#"{" b":"aGk==="}"#, b"hi"),
            (r#"{" b":"aG k="}"#, b"hi"),
            (r#"{" b":"=aGk="}"#, b"hi"),
            (r#"{" b":"!!"}"#, b""),
        ] {
            assert_eq!(from_str(text), Ok(Value::Bytes(bytes.to_vec())), "{text}");
        }
        for bad in [
            r#"{" b":"aGk"}"#,
            r#"{" b":"a"}"#,
            r#"{" b":"aGké="}"#,
            r#"{" b":"aGk\u00e9="}"#,
        ] {
            assert!(from_str(bad).is_err(), "{bad}");
        }
        let uuid = |hex: &str| Ok(Value::Uuid(uuid::Uuid::parse_str(hex).expect("a UUID")));
        for (text, hex) in [
            (
                "12345678123456781234567812345678",
                "12345678123456781234567812345678",
            ),
            (
                "1234-5678-1234-5678-1234-5678-1234-5678",
                "12345678123456781234567812345678",
            ),
            (
                "{12345678123456781234567812345678}",
                "12345678123456781234567812345678",
            ),
            (
                "urn:uuid:12345678-1234-5678-1234-567812345678",
                "12345678123456781234567812345678",
            ),
            (
                "ABCDEF78123456781234567812345678",
                "abcdef78123456781234567812345678",
            ),
            (
                "0x345678123456781234567812345678",
                "00345678123456781234567812345678",
            ),
            (
                "+2345678123456781234567812345678",
                "02345678123456781234567812345678",
            ),
            (
                " 234567812345678123456781234567 ",
                "00234567812345678123456781234567",
            ),
            (
                "0x_45678123456781234567812345678",
                "00045678123456781234567812345678",
            ),
            (
                "1_345678123456781234567812345678",
                "01345678123456781234567812345678",
            ),
            // int() strips Unicode's whitespace.
            (
                "\u{a0}234567812345678123456781234567\u{3000}",
                "00234567812345678123456781234567",
            ),
        ] {
            assert_eq!(
                from_str(&format!(r#"{{" u":"{text}"}}"#)),
                uuid(hex),
                "{text}"
            );
        }
        for bad in [
            "1234567812345678123456781234567",
            "123456781234567812345678123456789",
            "1__45678123456781234567812345678",
            "_2345678123456781234567812345678",
            "2345678123456781234567812345678_",
            "0x",
            "g2345678123456781234567812345678",
            // int() does not strip what str.split() splits at beyond it.
            "1234567812345678123456781234567\u{1c}",
        ] {
            assert!(from_str(&format!(r#"{{" u":"{bad}"}}"#)).is_err(), "{bad}");
        }
    }

    #[test]
    fn lone_surrogates_read_as_replacement_characters() {
        for (text, read) in [
            r#""a\ud800b""#,
            r#""\udc00""#,
            r#""\ud800\u0041""#,
            r#""\ud800\ud800\udc00""#,
            r#""\ud800""#,
        ]
        .into_iter()
        .zip([
            "a\u{fffd}b",
            "\u{fffd}",
            "\u{fffd}A",
            "\u{fffd}\u{10000}",
            "\u{fffd}",
        ]) {
            assert_eq!(from_str(text), Ok(Value::from(read)), "{text}");
            assert!(from_str_strict(text).is_err(), "{text}");
        }
        assert_eq!(from_str(r#""\ud83c\udfaf""#), Ok(Value::from("\u{1f3af}")));
    }

    #[test]
    fn writing_refuses_an_unreadable_date() {
        for text in [
            r#"{" d":"yesterday"}"#,
            r#"{"a":[{"b":{" d":"2024-01-01T00:00:00Z"}}]}"#,
        ] {
            let error = from_str_strict(text).expect_err(text);
            assert!(error.reason.contains("HTTP date"), "{error}");
        }
        let date = r#"{"a":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}}"#;
        assert_eq!(from_str_strict(date), from_str(date));
        assert!(matches!(
            from_str_strict(date),
            Ok(Value::Dict(map)) if matches!(map.get("a"), Some(Value::DateTime(_)))
        ));
    }
}
