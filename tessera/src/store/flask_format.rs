//! The bytes Flask-Session 0.8 stores for a session in Redis.
//!
//! Flask-Session serializes `dict(session)` with msgspec 0.22, as MessagePack
//! (`SESSION_SERIALIZATION_FORMAT = "msgpack"`, the default) or as JSON
//! (`"json"`), and reads it back with msgspec's untyped decoders, trying the
//! configured format first and the other one second. This is plain msgpack or
//! plain JSON, not Flask's tagged JSON: a Python `tuple` is stored as an
//! array and comes back as a `list`, and in JSON `bytes` and `datetime`
//! become strings that stay strings. [`SerializationFormat`] writes what
//! msgspec writes, byte for byte (but for the header of the session's own
//! map, below), and reads what msgspec reads:
//!
//! | [`Value`] | msgpack | JSON | read back as |
//! |---|---|---|---|
//! | `Null` | nil | `null` | `Null` |
//! | `Bool` | bool | `true` / `false` | `Bool` |
//! | integer `Number` | the smallest int form; outside `-2**63..=2**64-1` refused, as msgspec refuses it | its digits, any size | `Number` |
//! | float `Number` | float64, always | msgspec's shortest digits (`1e300`, `0.00001`); NaN and the infinities as `null` | `Number` (JSON: `Null` for a non-finite float) |
//! | `String` | str | string, raw UTF-8, control characters escaped | `String` |
//! | `Markup` | str (msgspec cannot encode `Markup`; this writes the text) | string | `String` |
//! | `Bytes` | bin | standard base64 string with padding | msgpack: `Bytes`; JSON: `String` |
//! | `List`, `Tuple` | array | array | `List` |
//! | `Dict` | map with str keys, in key order | object | `Dict` |
//! | `Uuid` | hyphenated lowercase str | hyphenated lowercase string | `String` |
//! | `DateTime` | timestamp (extension type -1) in UTC, in the smallest of its three forms | RFC 3339 in UTC with `Z`, a fraction only when nonzero | msgpack: `DateTime` in UTC; JSON: `String` |
//!
//! **The session's map header.** Flask-Session before 0.7 stored sessions
//! with `pickle` and unpickles whatever its Redis key holds. msgspec
//! writes a map of up to 15 entries with a one-byte header, `0x80` to
//! `0x8f`, and every one of those bytes is a pickle opcode: `0x8a` (LONG1)
//! swallows the bytes its next byte counts, after which a visitor's string
//! value runs as pickle code in such an application. So the session's own
//! map is always written with the 16-bit (or 32-bit) length header, `0xde`
//! (`0xdf`), which is valid msgpack that msgspec and every msgpack reader
//! accept, and which pickle refuses at its first byte (`invalid load key`),
//! an `UnpicklingError` that Flask-Session 0.4 to 0.6 treat as no session.
//! Nested maps keep msgspec's smallest headers: pickle never gets past the
//! first byte.
//!
//! Datetimes must fall in Python's years 1 to 9999. msgpack keeps
//! nanoseconds (Python rounds them to microseconds when it reads them); JSON
//! writes six fraction digits like Python, nine when there are nanoseconds.
//!
//! Reading is for data that may come from another application or from
//! whoever reached the Redis server: it never panics, never allocates for a
//! declared length the input cannot hold, and refuses nesting deeper than
//! [`crate::tagged::MAX_DEPTH`] levels. msgpack map keys that are not
//! strings (Python allows `int`, `float`, `bool`, `None`, `bytes`, tuple and
//! datetime keys) are read as the text JSON would write for them (`1` is
//! `"1"`, `True` is `"true"`, `None` is `"null"`, bytes their base64 text
//! (`b'k'` is `"aw=="`), a tuple its array
//! `[1,2]`, a datetime its RFC 3339 text), and a top-level
//! entry a write does not change is written back byte for byte
//! (what the store's writes do),
//! so such keys survive in the values tessera leaves alone; float32 values, which msgspec
//! never writes, are read as the Python floats they widen to. Only extension
//! type -1 (timestamps) is accepted, and pickle is never tried. JSON is read
//! by the [`crate::tagged`] parser without untagging, so numbers keep
//! their text and Python's `NaN` and `Infinity` are accepted too.

use std::fmt::Write as _;
use std::str::FromStr;

use base64::Engine as _;
use rmp::encode::ByteBuf;
use rmp::Marker;
use time::OffsetDateTime;

use crate::map::Map;
use crate::tagged::{self, MAX_DEPTH};
use crate::value::{Decimal, Number, Value};

/// Flask-Session's `SESSION_SERIALIZATION_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerializationFormat {
    /// MessagePack, Flask-Session's default.
    #[default]
    Msgpack,
    /// JSON.
    Json,
}

impl SerializationFormat {
    /// The name Flask-Session's configuration uses: `"msgpack"` or `"json"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Msgpack => "msgpack",
            Self::Json => "json",
        }
    }

    /// A session's data as msgspec would encode `dict(session)` in this format.
    ///
    /// Fails, as Flask-Session would, for what the format cannot hold (an
    /// integer outside msgpack's range, a datetime outside Python's), and for
    /// nesting deeper than [`decode`](Self::decode) accepts.
    pub fn encode(self, data: &Map) -> Result<Vec<u8>, FormatError> {
        match self {
            Self::Msgpack => msgpack::encode(data),
            Self::Json => json::encode(data),
        }
    }

    /// Reads stored session data. Like Flask-Session, tries this format, then
    /// the other one; the error names both failures.
    pub fn decode(self, bytes: &[u8]) -> Result<Map, FormatError> {
        let first = match self.decode_only(bytes) {
            Ok(map) => return Ok(map),
            Err(error) => error,
        };
        let second = match self.other().decode_only(bytes) {
            Ok(map) => return Ok(map),
            Err(error) => error,
        };
        let (msgpack, json) = match self {
            Self::Msgpack => (first, second),
            Self::Json => (second, first),
        };
        Err(FormatError::Unreadable {
            msgpack: Box::new(msgpack),
            json: Box::new(json),
        })
    }

    /// [`encode`](Self::encode), but every top-level entry whose value is
    /// what `original` (the stored bytes `data` was read from) holds is
    /// copied from those bytes as it is. A value read only approximately
    /// thus goes back exactly as Flask-Session wrote it when the request
    /// did not change it: in msgpack a dict whose keys are not all str (read
    /// with str keys), in either format the order of a nested dict's keys
    /// (Python's insertion order; a [`Map`] keeps key order).
    #[cfg(feature = "redis")]
    pub(crate) fn encode_keeping(
        self,
        data: &Map,
        original: &[u8],
    ) -> Result<Vec<u8>, FormatError> {
        match self {
            Self::Msgpack => msgpack::encode_keeping(data, original),
            Self::Json => json::encode_keeping(data, original),
        }
    }

    fn decode_only(self, bytes: &[u8]) -> Result<Map, FormatError> {
        match self {
            Self::Msgpack => msgpack::decode(bytes),
            Self::Json => json::decode(bytes),
        }
    }

    fn other(self) -> Self {
        match self {
            Self::Msgpack => Self::Json,
            Self::Json => Self::Msgpack,
        }
    }

    /// The name for messages.
    fn label(self) -> &'static str {
        match self {
            Self::Msgpack => "msgpack",
            Self::Json => "JSON",
        }
    }
}

/// Accepts exactly the names Flask-Session accepts: `msgpack` and `json`.
impl FromStr for SerializationFormat {
    type Err = FormatError;

    fn from_str(name: &str) -> Result<Self, FormatError> {
        match name {
            "msgpack" => Ok(Self::Msgpack),
            "json" => Ok(Self::Json),
            _ => Err(FormatError::UnknownFormat(name.to_owned())),
        }
    }
}

/// Session data could not be converted to or from a stored format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// A format name other than `msgpack` or `json`.
    #[error("unknown session serialization format {0:?}: expected \"msgpack\" or \"json\"")]
    UnknownFormat(String),
    /// A value has no form in the format (Flask-Session could not store it either).
    #[error("session cannot be stored as {}: {reason}", .format.label())]
    Unencodable {
        /// The format being written.
        format: SerializationFormat,
        /// What could not be written.
        reason: String,
    },
    /// The bytes are not a session in one format.
    #[error("invalid {} session data at byte {offset}: {reason}", .format.label())]
    Malformed {
        /// The format being read.
        format: SerializationFormat,
        /// Byte offset in the input where the problem was found.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// Neither format could read the stored bytes.
    #[error("stored session is neither msgpack nor JSON: {msgpack}; {json}")]
    Unreadable {
        /// Why the bytes are not msgpack.
        msgpack: Box<FormatError>,
        /// Why the bytes are not JSON.
        json: Box<FormatError>,
    },
}

fn unencodable(format: SerializationFormat, reason: String) -> FormatError {
    FormatError::Unencodable { format, reason }
}

fn too_deep(format: SerializationFormat) -> FormatError {
    unencodable(format, format!("nested more than {MAX_DEPTH} levels"))
}

/// The datetime in UTC, if Python's `datetime` can hold it: otherwise the
/// Flask app could not read the session back.
fn python_datetime(
    when: OffsetDateTime,
    format: SerializationFormat,
) -> Result<OffsetDateTime, FormatError> {
    crate::tagged::utc_in_python_range(when).ok_or_else(|| {
        unencodable(
            format,
            // Not the datetime itself: session data, and this is logged.
            "a datetime outside Python's years 1 to 9999 (in UTC)".to_owned(),
        )
    })
}

mod msgpack {
    use super::*;

    const FORMAT: SerializationFormat = SerializationFormat::Msgpack;
    /// The extension type MessagePack reserves for timestamps.
    const TIMESTAMP: i8 = -1;

    pub(super) fn encode(data: &Map) -> Result<Vec<u8>, FormatError> {
        let mut out = ByteBuf::new();
        write_session_map_len(&mut out, data.len())?;
        write_entries(&mut out, data, 1)?;
        Ok(out.into_vec())
    }

    /// The header of the session's own map, never in the one-byte form:
    /// see the module documentation (pickle refuses `0xde` and `0xdf`).
    fn write_session_map_len(out: &mut ByteBuf, len: usize) -> Result<(), FormatError> {
        let len = length(len, "a dict")?;
        let out = out.as_mut_vec();
        match u16::try_from(len) {
            Ok(len) => {
                out.push(Marker::Map16.to_u8());
                out.extend_from_slice(&len.to_be_bytes());
            }
            Err(_) => {
                out.push(Marker::Map32.to_u8());
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        Ok(())
    }

    #[cfg(feature = "redis")]
    pub(super) fn encode_keeping(data: &Map, original: &[u8]) -> Result<Vec<u8>, FormatError> {
        let Ok(entries) = top_level_entries(original) else {
            return encode(data);
        };
        // A key read twice (say 1 and "1") cannot be matched to one entry.
        let mut by_key: std::collections::HashMap<&str, Option<&Entry>> =
            std::collections::HashMap::with_capacity(entries.len());
        for entry in &entries {
            by_key
                .entry(entry.key.as_str())
                .and_modify(|found| *found = None)
                .or_insert(Some(entry));
        }
        let mut out = ByteBuf::new();
        write_session_map_len(&mut out, data.len())?;
        for (key, value) in data {
            match by_key.get(key) {
                Some(Some(entry)) if entry.value == *value => {
                    out.as_mut_vec()
                        .extend_from_slice(&original[entry.span.clone()]);
                }
                _ => {
                    write_str(&mut out, key)?;
                    write_value(&mut out, value, 1)?;
                }
            }
        }
        Ok(out.into_vec())
    }

    /// One top-level entry of a stored session: its key as read, where the
    /// entry (key and value) lies in the bytes, and its value as read.
    #[cfg(feature = "redis")]
    struct Entry {
        key: String,
        span: std::ops::Range<usize>,
        value: Value,
    }

    #[cfg(feature = "redis")]
    fn top_level_entries(bytes: &[u8]) -> Result<Vec<Entry>, FormatError> {
        let mut reader = Reader {
            input: bytes,
            rest: bytes,
        };
        let marker = reader.marker()?;
        let Some(len) = reader.map_len(marker)? else {
            return Err(reader.error_at(0, "the session is not a map"));
        };
        let len = reader.count(len, 2, "a map", "entries")?;
        let mut entries = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            let start = reader.offset();
            let key = reader.key(1)?;
            let value = reader.value(1)?;
            entries.push(Entry {
                key,
                span: start..reader.offset(),
                value,
            });
        }
        if !reader.rest.is_empty() {
            return Err(reader.error("trailing bytes after the session"));
        }
        Ok(entries)
    }

    /// A length in a msgpack header, which holds at most 32 bits.
    fn length(len: usize, what: &str) -> Result<u32, FormatError> {
        u32::try_from(len).map_err(|_| {
            unencodable(
                FORMAT,
                format!(
                    "{what} of length {len} is too long for msgpack \
                     (Flask-Session cannot store it either)"
                ),
            )
        })
    }

    // Writing to a ByteBuf cannot fail (its error type is `Infallible`), so
    // the `Ok` patterns below are irrefutable.

    fn write_map(out: &mut ByteBuf, map: &Map, depth: usize) -> Result<(), FormatError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(FORMAT));
        }
        let Ok(_) = rmp::encode::write_map_len(out, length(map.len(), "a dict")?);
        write_entries(out, map, depth)
    }

    /// A map's keys and values, after its header.
    fn write_entries(out: &mut ByteBuf, map: &Map, depth: usize) -> Result<(), FormatError> {
        for (key, value) in map {
            write_str(out, key)?;
            write_value(out, value, depth)?;
        }
        Ok(())
    }

    fn write_str(out: &mut ByteBuf, text: &str) -> Result<(), FormatError> {
        let Ok(_) = rmp::encode::write_str_len(out, length(text.len(), "a str")?);
        out.as_mut_vec().extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn write_value(out: &mut ByteBuf, value: &Value, depth: usize) -> Result<(), FormatError> {
        match value {
            Value::Null => {
                let Ok(()) = rmp::encode::write_nil(out);
            }
            Value::Bool(b) => {
                let Ok(()) = rmp::encode::write_bool(out, *b);
            }
            Value::Number(n) => write_number(out, n)?,
            Value::String(s) | Value::Markup(s) => write_str(out, s)?,
            Value::Bytes(bytes) => {
                let Ok(_) = rmp::encode::write_bin_len(out, length(bytes.len(), "bytes")?);
                out.as_mut_vec().extend_from_slice(bytes);
            }
            Value::List(items) | Value::Tuple(items) => {
                if depth + 1 > MAX_DEPTH {
                    return Err(too_deep(FORMAT));
                }
                let Ok(_) = rmp::encode::write_array_len(out, length(items.len(), "a list")?);
                for item in items {
                    write_value(out, item, depth + 1)?;
                }
            }
            Value::Dict(map) => write_map(out, map, depth + 1)?,
            Value::Uuid(uuid) => {
                write_str(
                    out,
                    uuid.hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer()),
                )?;
            }
            Value::DateTime(when) => write_timestamp(out, python_datetime(*when, FORMAT)?),
        }
        Ok(())
    }

    fn write_number(out: &mut ByteBuf, n: &Number) -> Result<(), FormatError> {
        if !n.is_integer() {
            // msgspec writes every Python float as float64, even 1.0.
            let Ok(()) = rmp::encode::write_f64(out, n.as_f64().unwrap_or(f64::NAN));
            return Ok(());
        }
        if let Ok(i) = n.as_str().parse::<i64>() {
            let Ok(_) = rmp::encode::write_sint(out, i);
        } else if let Some(u) = n.as_u64() {
            let Ok(_) = rmp::encode::write_uint(out, u);
        } else {
            return Err(unencodable(
                FORMAT,
                format!(
                    "an integer of {} digits does not fit msgpack, which holds -2**63 to \
                     2**64 - 1 (Flask-Session cannot store it either)",
                    n.as_str().trim_start_matches('-').len()
                ),
            ));
        }
        Ok(())
    }

    /// A timestamp in the smallest form msgspec picks: 32 bits of seconds,
    /// 64 bits of nanoseconds and seconds, or 96 bits for the rest
    /// (before 1970 or after 2514).
    fn write_timestamp(out: &mut ByteBuf, utc: OffsetDateTime) {
        // `unix_timestamp` rounds down and `nanosecond` counts up from it,
        // which is the spec's (and msgspec's) split for negative times too.
        let seconds = utc.unix_timestamp();
        let nanos = utc.nanosecond();
        let bytes = out.as_mut_vec();
        match u64::try_from(seconds) {
            Ok(secs) if nanos == 0 && secs <= u64::from(u32::MAX) => {
                bytes.extend_from_slice(&[Marker::FixExt4.to_u8(), TIMESTAMP as u8]);
                bytes.extend_from_slice(&(secs as u32).to_be_bytes());
            }
            Ok(secs) if secs < 1 << 34 => {
                bytes.extend_from_slice(&[Marker::FixExt8.to_u8(), TIMESTAMP as u8]);
                bytes.extend_from_slice(&((u64::from(nanos) << 34) | secs).to_be_bytes());
            }
            _ => {
                bytes.extend_from_slice(&[Marker::Ext8.to_u8(), 12, TIMESTAMP as u8]);
                bytes.extend_from_slice(&nanos.to_be_bytes());
                bytes.extend_from_slice(&seconds.to_be_bytes());
            }
        }
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Map, FormatError> {
        let mut reader = Reader {
            input: bytes,
            rest: bytes,
        };
        let marker = reader.marker()?;
        let Some(len) = reader.map_len(marker)? else {
            return Err(reader.error_at(0, format!("the session is {}, not a map", kind(marker))));
        };
        let map = reader.map(len, 1)?;
        if !reader.rest.is_empty() {
            return Err(reader.error("trailing bytes after the session"));
        }
        Ok(map)
    }

    struct Reader<'a> {
        input: &'a [u8],
        rest: &'a [u8],
    }

    impl<'a> Reader<'a> {
        fn offset(&self) -> usize {
            self.input.len() - self.rest.len()
        }

        fn error(&self, reason: impl Into<String>) -> FormatError {
            self.error_at(self.offset(), reason)
        }

        fn error_at(&self, offset: usize, reason: impl Into<String>) -> FormatError {
            FormatError::Malformed {
                format: FORMAT,
                offset,
                reason: reason.into(),
            }
        }

        fn marker(&mut self) -> Result<Marker, FormatError> {
            rmp::decode::read_marker(&mut self.rest).map_err(|_| self.error("truncated input"))
        }

        fn take(&mut self, len: usize) -> Result<&'a [u8], FormatError> {
            if len > self.rest.len() {
                return Err(self.error("truncated input"));
            }
            let (head, tail) = self.rest.split_at(len);
            self.rest = tail;
            Ok(head)
        }

        fn take_array<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
            let head = self.take(N)?;
            <[u8; N]>::try_from(head).map_err(|_| self.error("truncated input"))
        }

        fn u8(&mut self) -> Result<u8, FormatError> {
            Ok(u8::from_be_bytes(self.take_array()?))
        }

        fn u16(&mut self) -> Result<u16, FormatError> {
            Ok(u16::from_be_bytes(self.take_array()?))
        }

        fn u32(&mut self) -> Result<u32, FormatError> {
            Ok(u32::from_be_bytes(self.take_array()?))
        }

        /// A declared count of items, refused before anything is allocated
        /// for it if the rest of the input cannot hold that many items of
        /// at least `min_size` bytes each.
        fn count(
            &self,
            len: u32,
            min_size: usize,
            what: &str,
            unit: &str,
        ) -> Result<usize, FormatError> {
            match usize::try_from(len) {
                Ok(count) if count <= self.rest.len() / min_size => Ok(count),
                _ => Err(self.error(format!(
                    "{what} declares {len} {unit}, more than the {} bytes left can hold",
                    self.rest.len()
                ))),
            }
        }

        fn int(&mut self, marker: Marker) -> Result<Option<Number>, FormatError> {
            Ok(Some(match marker {
                Marker::FixPos(n) => n.into(),
                Marker::FixNeg(n) => n.into(),
                Marker::U8 => self.u8()?.into(),
                Marker::U16 => self.u16()?.into(),
                Marker::U32 => self.u32()?.into(),
                Marker::U64 => u64::from_be_bytes(self.take_array()?).into(),
                Marker::I8 => i8::from_be_bytes(self.take_array()?).into(),
                Marker::I16 => i16::from_be_bytes(self.take_array()?).into(),
                Marker::I32 => i32::from_be_bytes(self.take_array()?).into(),
                Marker::I64 => i64::from_be_bytes(self.take_array()?).into(),
                _ => return Ok(None),
            }))
        }

        fn str_len(&mut self, marker: Marker) -> Result<Option<u32>, FormatError> {
            Ok(Some(match marker {
                Marker::FixStr(n) => n.into(),
                Marker::Str8 => self.u8()?.into(),
                Marker::Str16 => self.u16()?.into(),
                Marker::Str32 => self.u32()?,
                _ => return Ok(None),
            }))
        }

        fn map_len(&mut self, marker: Marker) -> Result<Option<u32>, FormatError> {
            Ok(Some(match marker {
                Marker::FixMap(n) => n.into(),
                Marker::Map16 => self.u16()?.into(),
                Marker::Map32 => self.u32()?,
                _ => return Ok(None),
            }))
        }

        fn string(&mut self, len: u32) -> Result<String, FormatError> {
            let start = self.offset();
            let len = self.count(len, 1, "a str", "bytes")?;
            let bytes = self.take(len)?;
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| self.error_at(start, "invalid UTF-8 in a str"))
        }

        fn value(&mut self, depth: usize) -> Result<Value, FormatError> {
            let start = self.offset();
            let marker = self.marker()?;
            if let Some(n) = self.int(marker)? {
                return Ok(Value::Number(n));
            }
            if let Some(len) = self.str_len(marker)? {
                return Ok(Value::String(self.string(len)?));
            }
            if let Some(len) = self.map_len(marker)? {
                return Ok(Value::Dict(self.map(len, depth + 1)?));
            }
            Ok(match marker {
                Marker::Null => Value::Null,
                Marker::True => Value::Bool(true),
                Marker::False => Value::Bool(false),
                Marker::F32 => {
                    let float = f32::from_be_bytes(self.take_array()?);
                    Value::Number(Number::from_f64(f64::from(float)))
                }
                Marker::F64 => {
                    Value::Number(Number::from_f64(f64::from_be_bytes(self.take_array()?)))
                }
                Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                    Value::Bytes(self.bin(marker)?.to_vec())
                }
                Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
                    let len = match marker {
                        Marker::FixArray(n) => n.into(),
                        Marker::Array16 => self.u16()?.into(),
                        _ => self.u32()?,
                    };
                    Value::List(self.array(len, depth + 1)?)
                }
                Marker::FixExt1 => self.ext(1, start)?,
                Marker::FixExt2 => self.ext(2, start)?,
                Marker::FixExt4 => self.ext(4, start)?,
                Marker::FixExt8 => self.ext(8, start)?,
                Marker::FixExt16 => self.ext(16, start)?,
                Marker::Ext8 => {
                    let len = self.u8()?.into();
                    self.ext(len, start)?
                }
                Marker::Ext16 => {
                    let len = self.u16()?.into();
                    self.ext(len, start)?
                }
                Marker::Ext32 => {
                    let len = self.u32()?;
                    self.ext(len, start)?
                }
                _ => return Err(self.error_at(start, "invalid marker byte 0xc1")),
            })
        }

        /// The bytes of a bin whose marker was just read.
        fn bin(&mut self, marker: Marker) -> Result<&'a [u8], FormatError> {
            let len = match marker {
                Marker::Bin8 => self.u8()?.into(),
                Marker::Bin16 => self.u16()?.into(),
                _ => self.u32()?,
            };
            let len = self.count(len, 1, "a bin", "bytes")?;
            self.take(len)
        }

        fn array(&mut self, len: u32, depth: usize) -> Result<Vec<Value>, FormatError> {
            if depth > MAX_DEPTH {
                return Err(self.error(format!("nested more than {MAX_DEPTH} levels")));
            }
            let len = self.count(len, 1, "an array", "items")?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(self.value(depth)?);
            }
            Ok(items)
        }

        fn map(&mut self, len: u32, depth: usize) -> Result<Map, FormatError> {
            if depth > MAX_DEPTH {
                return Err(self.error(format!("nested more than {MAX_DEPTH} levels")));
            }
            let len = self.count(len, 2, "a map", "entries")?;
            // Python's dict order is insertion order, not sorted: collected
            // and sorted once, rather than inserted one by one. Python keeps
            // the last value of a repeated key; so does the collected map.
            let mut entries = Vec::with_capacity(len.min(1024));
            for _ in 0..len {
                let key = self.key(depth)?;
                entries.push((key, self.value(depth)?));
            }
            Ok(entries.into_iter().collect())
        }

        fn key(&mut self, depth: usize) -> Result<String, FormatError> {
            let start = self.offset();
            let before = self.rest;
            let marker = self.marker()?;
            if let Some(len) = self.str_len(marker)? {
                return self.string(len);
            }
            // A Python dict may have keys of other types: each is read as
            // the text JSON would write for it (1 is "1", True is "true",
            // None is "null", 1.5 is "1.5"). An entry the request does not
            // change is written back as it was (`encode_keeping`).
            if let Some(n) = self.int(marker)? {
                return Ok(n.as_str().to_owned());
            }
            match marker {
                Marker::Null => Ok("null".to_owned()),
                Marker::True => Ok("true".to_owned()),
                Marker::False => Ok("false".to_owned()),
                Marker::F32 => {
                    let float = f32::from_be_bytes(self.take_array()?);
                    Ok(Number::from_f64(f64::from(float)).as_str().to_owned())
                }
                Marker::F64 => {
                    let float = f64::from_be_bytes(self.take_array()?);
                    Ok(Number::from_f64(float).as_str().to_owned())
                }
                // Base64, as msgspec's JSON writes bytes keys: two keys
                // stay two (as text with replacement characters, b'\xff'
                // and b'\xfe' were one, and a write kept only one).
                Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                    Ok(base64::engine::general_purpose::STANDARD.encode(self.bin(marker)?))
                }
                // Tuples (and frozensets, which msgspec also writes as
                // arrays) and aware datetimes are keys too: a tuple reads as
                // its JSON array, a datetime as its RFC 3339 text.
                Marker::FixArray(_)
                | Marker::Array16
                | Marker::Array32
                | Marker::FixExt1
                | Marker::FixExt2
                | Marker::FixExt4
                | Marker::FixExt8
                | Marker::FixExt16
                | Marker::Ext8
                | Marker::Ext16
                | Marker::Ext32 => {
                    self.rest = before;
                    let mut text = String::new();
                    match self.value(depth)? {
                        Value::DateTime(when) => super::json::write_datetime(&mut text, when),
                        other => super::json::write_value(&mut text, &other, depth)?,
                    }
                    Ok(text)
                }
                _ => Err(self.error_at(
                    start,
                    format!(
                        "a map key must be a str, an int, a float, a bool, None, bytes, a tuple or a datetime, not {}",
                        kind(marker)
                    ),
                )),
            }
        }

        fn ext(&mut self, len: u32, start: usize) -> Result<Value, FormatError> {
            let ty = i8::from_be_bytes(self.take_array()?);
            if ty != TIMESTAMP {
                return Err(self.error_at(start, format!("unsupported extension type {ty}")));
            }
            let (seconds, nanos) = match len {
                4 => (i64::from(self.u32()?), 0),
                8 => {
                    let packed = u64::from_be_bytes(self.take_array()?);
                    ((packed & ((1 << 34) - 1)) as i64, (packed >> 34) as u32)
                }
                12 => {
                    let nanos = self.u32()?;
                    (i64::from_be_bytes(self.take_array()?), nanos)
                }
                _ => {
                    return Err(
                        self.error_at(start, format!("a timestamp cannot be {len} bytes long"))
                    )
                }
            };
            if nanos >= 1_000_000_000 {
                return Err(self.error_at(start, "timestamp nanoseconds out of range"));
            }
            OffsetDateTime::from_unix_timestamp(seconds)
                .ok()
                .and_then(|when| when.replace_nanosecond(nanos).ok())
                .filter(|when| (1..=9999).contains(&when.year()))
                .map(Value::DateTime)
                .ok_or_else(|| self.error_at(start, "timestamp outside Python's years 1 to 9999"))
        }
    }

    /// What a marker introduces, for messages.
    fn kind(marker: Marker) -> &'static str {
        match marker {
            Marker::Null => "nil",
            Marker::True | Marker::False => "a bool",
            Marker::FixPos(_)
            | Marker::FixNeg(_)
            | Marker::U8
            | Marker::U16
            | Marker::U32
            | Marker::U64
            | Marker::I8
            | Marker::I16
            | Marker::I32
            | Marker::I64 => "an int",
            Marker::F32 | Marker::F64 => "a float",
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "a str",
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "a bin",
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "an array",
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "a map",
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => "an extension",
            Marker::Reserved => "the invalid marker byte 0xc1",
        }
    }
}

mod json {
    use super::*;

    const FORMAT: SerializationFormat = SerializationFormat::Json;

    pub(super) fn encode(data: &Map) -> Result<Vec<u8>, FormatError> {
        let mut out = String::new();
        write_object(&mut out, data, 1)?;
        Ok(out.into_bytes())
    }

    #[cfg(feature = "redis")]
    pub(super) fn encode_keeping(data: &Map, original: &[u8]) -> Result<Vec<u8>, FormatError> {
        let Some((text, entries)) = std::str::from_utf8(original)
            .ok()
            .and_then(|text| Some((text, top_level_entries(text)?)))
        else {
            return encode(data);
        };
        // A key written twice cannot be matched to one entry.
        let mut by_key: std::collections::HashMap<String, Option<&Entry>> =
            std::collections::HashMap::with_capacity(entries.len());
        for entry in &entries {
            let Ok(Value::String(key)) = tagged::from_str_plain(&text[entry.key.clone()]) else {
                return encode(data);
            };
            by_key
                .entry(key)
                .and_modify(|found| *found = None)
                .or_insert(Some(entry));
        }
        let unchanged = |entry: &Entry, value: &Value| {
            tagged::from_str_plain(&text[entry.value.clone()]).is_ok_and(|mut stored| {
                as_python_float(&mut stored);
                stored == *value
            })
        };
        let mut out = String::with_capacity(original.len());
        out.push('{');
        for (i, (key, value)) in data.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match by_key.get(key) {
                Some(Some(entry)) if unchanged(entry, value) => {
                    out.push_str(&text[entry.key.start..entry.value.end]);
                }
                _ => {
                    write_string(&mut out, key);
                    out.push(':');
                    write_value(&mut out, value, 1)?;
                }
            }
        }
        out.push('}');
        Ok(out.into_bytes())
    }

    /// Where one top-level entry of a stored JSON object lies: its key (a
    /// JSON string, quotes included) and its value.
    #[cfg(feature = "redis")]
    struct Entry {
        key: std::ops::Range<usize>,
        value: std::ops::Range<usize>,
    }

    /// The entries of the JSON object `text`, found by skipping over
    /// strings and brackets; `None` where it is not an object of that shape
    /// (the caller then encodes anew). Whether the values are valid JSON is
    /// for the parser to say.
    #[cfg(feature = "redis")]
    fn top_level_entries(text: &str) -> Option<Vec<Entry>> {
        let bytes = text.as_bytes();
        let skip_space = |mut at: usize| {
            while bytes.get(at).is_some_and(|b| b" \t\r\n".contains(b)) {
                at += 1;
            }
            at
        };
        // The end of the string starting at `at` (its opening quote).
        let skip_string = |mut at: usize| {
            at += 1;
            loop {
                match bytes.get(at)? {
                    b'"' => return Some(at + 1),
                    b'\\' => at += 2,
                    _ => at += 1,
                }
            }
        };
        // The end of the value starting at `at`.
        let skip_value = |start: usize| match *bytes.get(start)? {
            b'"' => skip_string(start),
            b'{' | b'[' => {
                let (mut at, mut depth) = (start, 0usize);
                loop {
                    match *bytes.get(at)? {
                        b'"' => {
                            at = skip_string(at)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(at + 1);
                            }
                        }
                        _ => {}
                    }
                    at += 1;
                }
            }
            _ => {
                let mut at = start;
                while bytes.get(at).is_some_and(|b| !b",}] \t\r\n".contains(b)) {
                    at += 1;
                }
                Some(at)
            }
        };
        let mut at = skip_space(0);
        if bytes.get(at) != Some(&b'{') {
            return None;
        }
        at = skip_space(at + 1);
        let mut entries = Vec::new();
        if bytes.get(at) == Some(&b'}') {
            return (skip_space(at + 1) == bytes.len()).then_some(entries);
        }
        loop {
            if bytes.get(at) != Some(&b'"') {
                return None;
            }
            let key_end = skip_string(at)?;
            let colon = skip_space(key_end);
            if bytes.get(colon) != Some(&b':') {
                return None;
            }
            let value_start = skip_space(colon + 1);
            let value_end = skip_value(value_start)?;
            if value_end == value_start {
                return None;
            }
            entries.push(Entry {
                key: at..key_end,
                value: value_start..value_end,
            });
            at = skip_space(value_end);
            match bytes.get(at)? {
                b',' => at = skip_space(at + 1),
                b'}' => return (skip_space(at + 1) == bytes.len()).then_some(entries),
                _ => return None,
            }
        }
    }

    fn write_object(out: &mut String, map: &Map, depth: usize) -> Result<(), FormatError> {
        if depth > MAX_DEPTH {
            return Err(too_deep(FORMAT));
        }
        out.push('{');
        for (i, (key, value)) in map.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(out, key);
            out.push(':');
            write_value(out, value, depth)?;
        }
        out.push('}');
        Ok(())
    }

    pub(super) fn write_value(
        out: &mut String,
        value: &Value,
        depth: usize,
    ) -> Result<(), FormatError> {
        match value {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) if n.is_integer() => {
                // Python has no negative zero integer.
                let text = n.as_str();
                if text.trim_start_matches('-').bytes().all(|b| b == b'0') {
                    out.push('0');
                } else {
                    out.push_str(text);
                }
            }
            Value::Number(n) => write_float(out, n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) | Value::Markup(s) => write_string(out, s),
            Value::List(items) | Value::Tuple(items) => {
                if depth + 1 > MAX_DEPTH {
                    return Err(too_deep(FORMAT));
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_value(out, item, depth + 1)?;
                }
                out.push(']');
            }
            Value::Dict(map) => write_object(out, map, depth + 1)?,
            Value::Bytes(bytes) => {
                out.push('"');
                base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
                out.push('"');
            }
            Value::Uuid(uuid) => {
                out.push('"');
                out.push_str(
                    uuid.hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer()),
                );
                out.push('"');
            }
            Value::DateTime(when) => {
                let utc = python_datetime(*when, FORMAT)?;
                out.push('"');
                write_datetime(out, utc);
                out.push('"');
            }
        }
        Ok(())
    }

    /// msgspec's escaping: only `"`, `\` and control characters, everything
    /// else (non-ASCII, DEL, U+2028) as raw UTF-8.
    fn write_string(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            if let Some(escape) = tagged::short_escape(c) {
                out.push_str(escape);
            } else if c < ' ' {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        out.push('"');
    }

    /// A float as msgspec writes it: the shortest round-tripping digits, in
    /// positional notation when the decimal exponent is in `-5..16` and as
    /// `1e300`, `2.5e-7` (no `+`, no padding) otherwise. JSON has no NaN or
    /// infinity; msgspec writes `null`.
    pub(super) fn write_float(out: &mut String, value: f64) {
        if !value.is_finite() {
            out.push_str("null");
            return;
        }
        let Some(Decimal {
            negative,
            digits,
            exponent,
        }) = Decimal::shortest(value)
        else {
            out.push_str(if value.is_sign_negative() {
                "-0.0"
            } else {
                "0.0"
            });
            return;
        };
        if negative {
            out.push('-');
        }
        let digits = digits.as_str();
        if !(-5..16).contains(&exponent) {
            let (first, rest) = digits.split_at(1);
            out.push_str(first);
            if !rest.is_empty() {
                out.push('.');
                out.push_str(rest);
            }
            let _ = write!(out, "e{exponent}");
            return;
        }
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
            out.push_str(digits);
            return;
        }
        let point = point as usize;
        if digits.len() <= point {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', point - digits.len()));
            out.push_str(".0");
        } else {
            let (int_part, frac_part) = digits.split_at(point);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac_part);
        }
    }

    /// RFC 3339 as msgspec writes a UTC datetime: `Z`, and microseconds
    /// only when nonzero. Python has no nanoseconds; when there are some
    /// they are written as nine digits rather than lost.
    pub(super) fn write_datetime(out: &mut String, utc: OffsetDateTime) {
        let _ = write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        );
        let nanos = utc.nanosecond();
        if !nanos.is_multiple_of(1000) {
            let _ = write!(out, ".{nanos:09}");
        } else if nanos != 0 {
            let _ = write!(out, ".{:06}", nanos / 1000);
        }
        out.push('Z');
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Map, FormatError> {
        let malformed = |offset, reason: &str| FormatError::Malformed {
            format: FORMAT,
            offset,
            reason: reason.to_owned(),
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|error| malformed(error.valid_up_to(), "invalid UTF-8"))?;
        match tagged::from_str_plain(text) {
            Ok(Value::Dict(mut map)) => {
                map.values_mut().for_each(as_python_float);
                Ok(map)
            }
            Ok(other) => Err(malformed(
                0,
                &format!("the session is {}, not an object", other.type_name()),
            )),
            Err(error) => Err(malformed(error.offset, error.reason)),
        }
    }
}

/// Floats as Python holds them after `msgspec.json` read them: JSON may
/// write `1e300` or `1E+300`, Python's `repr` (and msgpack's reading) is
/// `1e+300`, and equal sessions must compare equal whichever format they
/// came through.
fn as_python_float(value: &mut Value) {
    match value {
        Value::Number(number) if !number.is_integer() => {
            if let Some(float) = number.as_f64() {
                *number = Number::from_f64(float);
            }
        }
        Value::List(items) | Value::Tuple(items) => items.iter_mut().for_each(as_python_float),
        Value::Dict(entries) => entries.values_mut().for_each(as_python_float),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use time::macros::datetime;

    const MSGPACK: SerializationFormat = SerializationFormat::Msgpack;
    const JSON: SerializationFormat = SerializationFormat::Json;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn hex(bytes: &[u8]) -> String {
        crate::key::hex(bytes)
    }

    /// What tessera writes where msgspec wrote `msgspec` (hex): the same
    /// bytes but for the session map's header, which is always the 16-bit
    /// form (see the module documentation: pickle refuses it).
    fn widened(msgspec: &str) -> String {
        let header = u8::from_str_radix(&msgspec[..2], 16).expect("hex");
        assert!(
            (0x80..=0x8f).contains(&header),
            "msgspec wrote a one-byte map header"
        );
        format!("de00{:02x}{}", header & 0x0f, &msgspec[2..])
    }

    fn map<const N: usize>(entries: [(&str, Value); N]) -> Map {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    fn float(text: &str) -> Value {
        Value::Number(Number::from_validated(text))
    }

    fn json_text(format: SerializationFormat, data: &Map) -> String {
        String::from_utf8(format.encode(data).expect("encodes")).expect("UTF-8")
    }

    /// `{'_permanent': True, 'user_id': 42, '_flashes': [('message', 'Hi')]}`,
    /// the example in Flask-Session's documentation.
    fn flask_example() -> Map {
        map([
            (
                "_flashes",
                Value::List(vec![Value::tuple(["message".into(), "Hi".into()])]),
            ),
            ("_permanent", true.into()),
            ("user_id", 42.into()),
        ])
    }

    // Every hex and JSON vector below is what msgspec 0.22's encoders
    // (`msgspec.msgpack.encode`, `msgspec.json.encode`) wrote for the same
    // Python dict, built with its keys in the order a `Map` iterates.

    #[test]
    fn flask_session_example_matches_msgspec() {
        let data = flask_example();
        assert_eq!(
            hex(&MSGPACK.encode(&data).expect("encodes")),
            widened(
                "83a85f666c61736865739192a76d657373616765a24869aa5f7065726d616e656e74c3a775736572\
             5f69642a"
            )
        );
        assert_eq!(
            json_text(JSON, &data),
            r#"{"_flashes":[["message","Hi"]],"_permanent":true,"user_id":42}"#
        );
        // Written by Python in the dict's insertion order; tuples come back as lists.
        let python = unhex(
            "83aa5f7065726d616e656e74c3a7757365725f69642aa85f666c61736865739192a76d657373616765\
             a24869",
        );
        let expected = map([
            (
                "_flashes",
                Value::List(vec![Value::List(vec!["message".into(), "Hi".into()])]),
            ),
            ("_permanent", true.into()),
            ("user_id", 42.into()),
        ]);
        assert_eq!(MSGPACK.decode(&python).expect("decodes"), expected);
        assert_eq!(JSON.decode(&python).expect("falls back"), expected);
    }

    #[test]
    fn integers_use_msgspecs_smallest_forms() {
        let ints: Vec<Value> = vec![
            0.into(),
            1.into(),
            127.into(),
            128.into(),
            255.into(),
            256.into(),
            65535.into(),
            65536.into(),
            4294967295u64.into(),
            4294967296u64.into(),
            i64::MAX.into(),
            9223372036854775808u64.into(),
            u64::MAX.into(),
            (-1).into(),
            (-32).into(),
            (-33).into(),
            (-128).into(),
            (-129).into(),
            (-32768).into(),
            (-32769).into(),
            (-2147483648i64).into(),
            (-2147483649i64).into(),
            i64::MIN.into(),
        ];
        let data = map([("ints", Value::List(ints))]);
        let msgpack = "81a4696e7473dc001700017fcc80ccffcd0100cdffffce00010000ceffffffffcf000000010000\
                       0000cf7fffffffffffffffcf8000000000000000cfffffffffffffffffffe0d0dfd080d1ff7fd1\
                       8000d2ffff7fffd280000000d3ffffffff7fffffffd38000000000000000";
        assert_eq!(
            hex(&MSGPACK.encode(&data).expect("encodes")),
            widened(msgpack)
        );
        assert_eq!(MSGPACK.decode(&unhex(msgpack)).expect("decodes"), data);
        assert_eq!(
            json_text(JSON, &data),
            "{\"ints\":[0,1,127,128,255,256,65535,65536,4294967295,4294967296,\
             9223372036854775807,9223372036854775808,18446744073709551615,-1,-32,-33,-128,\
             -129,-32768,-32769,-2147483648,-2147483649,-9223372036854775808]}"
        );
    }

    #[test]
    fn integers_past_msgpacks_range_are_refused_but_fit_json() {
        for text in [
            "1180591620717411303424",
            "18446744073709551616",
            "-9223372036854775809",
        ] {
            let data = map([("big", float(text))]);
            let error = MSGPACK.encode(&data).expect_err("msgpack cannot hold it");
            assert!(matches!(error, FormatError::Unencodable { .. }));
            // Its size, not the value, which is session data (and logged).
            let digits = text.trim_start_matches('-').len();
            assert!(
                error
                    .to_string()
                    .contains(&format!("an integer of {digits} digits")),
                "{error}"
            );
            assert!(!error.to_string().contains(text), "{error}");
        }
        // msgspec's JSON encoder writes any int.
        let data = map([
            ("big", float("1180591620717411303424")),
            ("neg", float("-9223372036854775809")),
            ("zero", float("-0")),
        ]);
        assert_eq!(
            json_text(JSON, &data),
            r#"{"big":1180591620717411303424,"neg":-9223372036854775809,"zero":0}"#
        );
    }

    #[test]
    fn floats_match_msgspec() {
        let texts = [
            "1.0",
            "1.5",
            "0.1",
            "1e+300",
            "-0.0",
            "5e-324",
            "NaN",
            "Infinity",
            "-Infinity",
            "1e+16",
            "1e-05",
            "1e-07",
            "123456789.123",
            "1.7976931348623157e+308",
            "1e+22",
            "0.000123",
            "-2.5e-07",
            "1000000000000000.0",
        ];
        let data = map([("floats", Value::List(texts.map(float).to_vec()))]);
        let msgpack =
            "81a6666c6f617473dc0012cb3ff0000000000000cb3ff8000000000000cb3fb999999999999a\
                       cb7e37e43c8800759ccb8000000000000000cb0000000000000001cb7ff8000000000000cb7f\
                       f0000000000000cbfff0000000000000cb4341c37937e08000cb3ee4f8b588e368f1cb3e7ad7\
                       f29abcaf48cb419d6f34547df3b6cb7fefffffffffffffcb4480f0cf064dd592cb3f201f31f4\
                       6ed246cbbe90c6f7a0b5ed8dcb430c6bf526340000";
        assert_eq!(
            hex(&MSGPACK.encode(&data).expect("encodes")),
            widened(msgpack)
        );
        // Python's repr text comes back, so these round-trip exactly.
        assert_eq!(MSGPACK.decode(&unhex(msgpack)).expect("decodes"), data);
        assert_eq!(
            json_text(JSON, &data),
            "{\"floats\":[1.0,1.5,0.1,1e300,-0.0,5e-324,null,null,null,1e16,0.00001,1e-7,\
             123456789.123,1.7976931348623157e308,1e22,0.000123,-2.5e-7,1000000000000000.0]}"
        );
    }

    #[test]
    fn float_formatting_around_the_notation_switch() {
        // (value, msgspec.json.encode(value)) for exponents -10..=24.
        let cases = [
            (1e-10, "1e-10"),
            (1.2345678901234568e-9, "1.2345678901234568e-9"),
            (1.25e-6, "1.25e-6"),
            (1.2499999999999999e-6, "1.2499999999999999e-6"),
            (1.25e-5, "0.0000125"),
            (1.2345678901234568e-5, "0.000012345678901234568"),
            (0.00012345678901234567, "0.00012345678901234567"),
            (12345678901.234568, "12345678901.234568"),
            (1234567890123456.8, "1234567890123456.8"),
            (1.25e16, "1.25e16"),
            (1.2345678901234566e16, "1.2345678901234566e16"),
            (1.0000000000000001e23, "1.0000000000000001e23"),
            (-1.2499999999999998e24, "-1.2499999999999998e24"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (0.001, "0.001"),
            // Exactly halfway between ...338.2 and ...338.3: the even digit.
            (1680162312945338.2, "1680162312945338.2"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            json::write_float(&mut out, value);
            assert_eq!(out, expected, "{value:e}");
        }
    }

    #[test]
    fn every_value_type_matches_msgspec() {
        let data = map([
            ("bytes", Value::bytes(*b"ab")),
            (
                "dict",
                Value::Dict(map([
                    ("a", Value::Null),
                    ("b", Value::List(vec![true.into(), false.into()])),
                ])),
            ),
            ("dt", datetime!(2024-01-02 03:04:05 UTC).into()),
            (
                "dt_far",
                Value::DateTime(datetime!(2106-02-07 06:28:16 UTC)),
            ),
            (
                "dt_neg",
                Value::DateTime(datetime!(1969-12-31 23:59:59 UTC)),
            ),
            (
                "dt_us",
                Value::DateTime(datetime!(2024-01-02 03:04:05.123456 UTC)),
            ),
            ("empty_dict", Value::Dict(Map::new())),
            ("empty_list", Value::List(Vec::new())),
            ("markup", Value::markup("<b>x</b>")),
            ("tuple", Value::tuple([1.into(), "a".into()])),
            ("unicode", "é中🎯".into()),
            ("uuid", uuid::Uuid::from_u128(5).into()),
        ]);
        let msgpack = "8ca56279746573c4026162a46469637482a161c0a16292c3c2a26474d6ff65937d25a66474\
                       5f666172d7ff0000000100000000a664745f6e6567c70cff00000000ffffffffffffffffa564\
                       745f7573d7ff1d6f280065937d25aa656d7074795f6469637480aa656d7074795f6c69737490\
                       a66d61726b7570a83c623e783c2f623ea57475706c659201a161a7756e69636f6465a9c3a9e4\
                       b8adf09f8eafa475756964d92430303030303030302d303030302d303030302d303030302d30\
                       3030303030303030303035";
        assert_eq!(
            hex(&MSGPACK.encode(&data).expect("encodes")),
            widened(msgpack)
        );
        let json = "{\"bytes\":\"YWI=\",\"dict\":{\"a\":null,\"b\":[true,false]},\
                    \"dt\":\"2024-01-02T03:04:05Z\",\"dt_far\":\"2106-02-07T06:28:16Z\",\
                    \"dt_neg\":\"1969-12-31T23:59:59Z\",\"dt_us\":\"2024-01-02T03:04:05.123456Z\",\
                    \"empty_dict\":{},\"empty_list\":[],\"markup\":\"<b>x</b>\",\
                    \"tuple\":[1,\"a\"],\"unicode\":\"é中🎯\",\
                    \"uuid\":\"00000000-0000-0000-0000-000000000005\"}";
        assert_eq!(json_text(JSON, &data), json);

        let mut from_msgpack = data.clone();
        from_msgpack.insert("markup".into(), "<b>x</b>".into());
        from_msgpack.insert("tuple".into(), Value::List(vec![1.into(), "a".into()]));
        from_msgpack.insert("uuid".into(), "00000000-0000-0000-0000-000000000005".into());
        assert_eq!(
            MSGPACK.decode(&unhex(msgpack)).expect("decodes"),
            from_msgpack
        );

        // msgspec's untyped JSON decoder leaves bytes and datetimes as strings.
        let mut from_json = from_msgpack;
        for (key, text) in [
            ("bytes", "YWI="),
            ("dt", "2024-01-02T03:04:05Z"),
            ("dt_far", "2106-02-07T06:28:16Z"),
            ("dt_neg", "1969-12-31T23:59:59Z"),
            ("dt_us", "2024-01-02T03:04:05.123456Z"),
        ] {
            from_json.insert(key.into(), text.into());
        }
        assert_eq!(JSON.decode(json.as_bytes()).expect("decodes"), from_json);
    }

    #[test]
    fn datetimes_use_msgspecs_timestamp_forms() {
        let dates = [
            datetime!(0001-01-01 00:00:00 UTC),
            datetime!(9999-12-31 23:59:59.999999 UTC),
            datetime!(1960-01-01 00:00:00.5 UTC),
            datetime!(2514-05-30 01:53:03.000005 UTC),
            datetime!(2514-05-30 01:53:04 UTC),
            datetime!(2024-01-02 03:04:05.12 UTC),
        ];
        let data = map([("d", Value::List(dates.map(Value::DateTime).to_vec()))]);
        let msgpack =
            "81a16496c70cff00000000fffffff1886e0900c70cff3b9ac6180000003afff4417fc70cff1d\
                       cd6500ffffffffed300880d7ff00004e23ffffffffc70cff000000000000000400000000d7ff\
                       1c9c380065937d25";
        assert_eq!(
            hex(&MSGPACK.encode(&data).expect("encodes")),
            widened(msgpack)
        );
        assert_eq!(MSGPACK.decode(&unhex(msgpack)).expect("decodes"), data);
        assert_eq!(
            json_text(JSON, &data),
            "{\"d\":[\"0001-01-01T00:00:00Z\",\"9999-12-31T23:59:59.999999Z\",\
             \"1960-01-01T00:00:00.500000Z\",\"2514-05-30T01:53:03.000005Z\",\
             \"2514-05-30T01:53:04Z\",\"2024-01-02T03:04:05.120000Z\"]}"
        );
    }

    #[test]
    fn datetimes_are_written_in_utc_and_read_back_in_utc() {
        // msgspec writes 2024-01-02T05:04:05+02:00 as the same instant.
        let local = Value::DateTime(datetime!(2024-01-02 05:04:05 +02:00));
        let data = map([("d", local)]);
        assert_eq!(
            hex(&MSGPACK.encode(&data).expect("encodes")),
            widened("81a164d6ff65937d25")
        );
        assert_eq!(json_text(JSON, &data), r#"{"d":"2024-01-02T03:04:05Z"}"#);
        let back = MSGPACK
            .decode(&unhex("81a164d6ff65937d25"))
            .expect("decodes");
        let when = back["d"].as_datetime().expect("a datetime");
        assert_eq!(when.offset(), time::UtcOffset::UTC);
        assert_eq!(when, datetime!(2024-01-02 03:04:05 UTC));
    }

    #[test]
    fn nanoseconds_are_kept() {
        let when = datetime!(2024-01-02 03:04:05.123456789 UTC);
        let data = map([("d", Value::DateTime(when))]);
        let bytes = MSGPACK.encode(&data).expect("encodes");
        assert_eq!(MSGPACK.decode(&bytes).expect("decodes"), data);
        assert_eq!(
            json_text(JSON, &data),
            r#"{"d":"2024-01-02T03:04:05.123456789Z"}"#
        );
    }

    #[test]
    fn datetimes_python_cannot_hold_are_refused() {
        let ancient = time::Date::from_calendar_date(0, time::Month::January, 1)
            .expect("a date")
            .midnight()
            .assume_utc();
        // In UTC, past the last year the time crate holds.
        let beyond = time::macros::datetime!(9999-12-31 23:00 -05:00);
        for when in [ancient, beyond] {
            let data = map([("d", Value::DateTime(when))]);
            for format in [MSGPACK, JSON] {
                let error = format.encode(&data).expect_err("out of range");
                assert!(error.to_string().contains("years 1 to 9999"), "{error}");
            }
        }
    }

    #[test]
    fn strings_are_escaped_like_msgspec() {
        let mut text: String = (0u8..0x20).map(char::from).collect();
        text.push_str(" \"\\/\u{7f}\u{80}é\u{2028}🎯");
        let data = map([("s", text.into())]);
        let expected = String::from(
            r#"{"s":"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f \"\\/"#,
        ) + "\u{7f}\u{80}é\u{2028}🎯\"}";
        assert_eq!(json_text(JSON, &data), expected);
        assert_eq!(
            hex(&MSGPACK.encode(&data).expect("encodes")),
            widened(
"81a173d930000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20225c2f\
             7fc280c3a9e280a8f09f8eaf")
        );
        assert_eq!(JSON.decode(expected.as_bytes()).expect("decodes"), data);
    }

    #[test]
    fn length_headers_match_msgspec() {
        // msgspec: 'a' * n, b'a' * n, list(range(n)), {str(i): 0 for i in range(n)}.
        let cases: [(Value, &str); 9] = [
            ("a".repeat(31).into(), "bf61"),
            ("a".repeat(32).into(), "d92061"),
            ("a".repeat(256).into(), "da010061"),
            ("a".repeat(65536).into(), "db0001000061"),
            (Value::bytes(vec![b'a'; 1]), "c40161"),
            (Value::bytes(vec![b'a'; 256]), "c5010061"),
            (Value::bytes(vec![b'a'; 65536]), "c60001000061"),
            (Value::List((0..16).map(Value::from).collect()), "dc0010"),
            (
                Value::List((0..65536).map(Value::from).collect()),
                "dd00010000",
            ),
        ];
        for (value, header) in cases {
            let bytes = MSGPACK
                .encode(&map([("v", value.clone())]))
                .expect("encodes");
            // After the map header (three bytes: see `widened`) and the key "v".
            assert_eq!(hex(&bytes[5..5 + header.len() / 2]), header);
            assert_eq!(MSGPACK.decode(&bytes).expect("decodes")["v"], value);
        }
        let wide: Map = (0..16).map(|i| (i.to_string(), 0.into())).collect();
        assert_eq!(hex(&MSGPACK.encode(&wide).expect("encodes")[..3]), "de0010");
    }

    #[test]
    fn one_key_objects_are_not_untagged() {
        let data = JSON
            .decode(br#"{" t":[1,2],"x":{" b":"YWI="}}"#)
            .expect("decodes");
        assert_eq!(data[" t"], Value::List(vec![1.into(), 2.into()]));
        assert_eq!(data["x"], Value::Dict(map([(" b", "YWI=".into())])));
    }

    #[test]
    fn decode_falls_back_to_the_other_format() {
        let msgpack = MSGPACK.encode(&flask_example()).expect("encodes");
        let json = JSON.encode(&flask_example()).expect("encodes");
        for format in [MSGPACK, JSON] {
            assert!(format.decode(&msgpack).is_ok());
            assert!(format.decode(&json).is_ok());
        }
        let error = JSON.decode(b"\x93\x01\x02").expect_err("neither");
        let FormatError::Unreadable { msgpack, json } = &error else {
            panic!("{error:?}");
        };
        assert!(msgpack.to_string().contains("not a map"), "{msgpack}");
        assert!(json.to_string().contains("invalid JSON"), "{json}");
        let message = error.to_string();
        assert!(message.starts_with("stored session is neither msgpack nor JSON: invalid msgpack"));
    }

    /// Decoding with each format alone, so a refusal is the one meant.
    fn refuse(bytes: &[u8]) -> String {
        let error = msgpack::decode(bytes).expect_err("refused");
        assert!(MSGPACK.decode(bytes).is_err());
        error.to_string()
    }

    #[test]
    fn every_truncation_is_refused() {
        let whole = unhex(
            "8ca56279746573c4026162a46469637482a161c0a16292c3c2a26474d6ff65937d25a664745f666172d7ff\
             0000000100000000a664745f6e6567c70cff00000000ffffffffffffffffa564745f7573d7ff1d6f28006593\
             7d25aa656d7074795f6469637480aa656d7074795f6c69737490a66d61726b7570a83c623e783c2f623ea5\
             7475706c659201a161a7756e69636f6465a9c3a9e4b8adf09f8eafa475756964d9243030303030303030\
             2d303030302d303030302d303030302d303030303030303030303035",
        );
        assert!(MSGPACK.decode(&whole).is_ok());
        for end in 0..whole.len() {
            assert!(
                MSGPACK.decode(&whole[..end]).is_err(),
                "prefix of {end} bytes"
            );
        }
        let json = JSON.encode(&flask_example()).expect("encodes");
        for end in 0..json.len() {
            assert!(JSON.decode(&json[..end]).is_err(), "prefix of {end} bytes");
        }
    }

    #[test]
    fn huge_declared_lengths_are_refused_without_allocating() {
        for blob in [
            "dfffffffffa161c0",   // map32 of 4294967295 entries
            "81a161ddffffffffc0", // array32
            "81a161dbffffffff61", // str32
            "81a161c6ffffffff61", // bin32
            "81a161dcffff",       // array16, nothing after
        ] {
            let message = refuse(&unhex(blob));
            assert!(
                message.contains("bytes left can hold") || message.contains("truncated"),
                "{blob}: {message}"
            );
        }
    }

    fn nested(levels: usize) -> Vec<u8> {
        // A map holding `levels - 1` nested arrays: `levels` containers in all.
        let mut bytes = unhex("81a161");
        bytes.extend(std::iter::repeat_n(0x91, levels - 2));
        bytes.push(0x90);
        bytes
    }

    #[test]
    fn nesting_is_bounded_both_ways() {
        assert!(MSGPACK.decode(&nested(MAX_DEPTH)).is_ok());
        let message = refuse(&nested(MAX_DEPTH + 1));
        assert!(message.contains("nested more than 128 levels"), "{message}");

        let mut value = Value::List(Vec::new());
        for _ in 0..MAX_DEPTH - 2 {
            value = Value::List(vec![value]);
        }
        let data = map([("a", value.clone())]);
        assert_eq!(
            hex(&MSGPACK.encode(&data).expect("128 levels")),
            widened(&hex(&nested(MAX_DEPTH)))
        );
        let json = JSON.encode(&data).expect("128 levels");
        assert_eq!(JSON.decode(&json).expect("decodes"), data);
        let deeper = map([("a", Value::List(vec![value]))]);
        for format in [MSGPACK, JSON] {
            let error = format.encode(&deeper).expect_err("129 levels");
            assert!(error.to_string().contains("nested more than 128 levels"));
        }
    }

    #[test]
    fn malformed_msgpack_is_refused() {
        for (blob, reason) in [
            ("81a161a2ff00", "invalid UTF-8"),      // value is not UTF-8
            ("81a2ff0000", "invalid UTF-8"),        // key is not UTF-8
            ("81a161d50500ff", "extension type 5"), // unknown ext
            ("81a161d4ff00", "1 bytes long"),       // timestamp of a bad size
            ("81a161c9ffffffffff00", "4294967295 bytes long"),
            ("81a161c9ffffffff0500", "extension type 5"),
            ("81a161d7fffffffffc00000000", "nanoseconds"),
            ("81a161c70cff3b9aca000000000000000000", "nanoseconds"),
            ("81a161c70cff000000007fffffffffffffff", "years 1 to 9999"),
            ("81a161c70cff00000000fffffff1886e08ff", "years 1 to 9999"), // year 0
            ("90", "not a map"),
            ("c0", "not a map"),
            ("a161", "not a map"),
            ("", "truncated"),
            ("8000", "trailing bytes"),
            ("81a161c1", "0xc1"),
            ("8181010200", "not a map"), // a dict key (Python refuses those)
        ] {
            let message = refuse(&unhex(blob));
            assert!(message.contains(reason), "{blob}: {message}");
        }
    }

    #[test]
    fn msgpack_readers_accept_what_msgspec_accepts() {
        // Int keys (Python allows them), float32, and every int width.
        let data = msgpack::decode(&unhex(
            "84 01 02 ff 03 d1ff7f ca3dcccccd cd0100 cf8000000000000000"
                .replace(' ', "")
                .as_str(),
        ))
        .expect("decodes");
        assert_eq!(
            data,
            map([
                ("1", 2.into()),
                ("-1", 3.into()),
                ("-129", float("0.10000000149011612")),
                ("256", 9223372036854775808u64.into()),
            ])
        );
    }

    /// In JSON too, entries a write leaves alone go back byte for byte, so
    /// a nested dict keeps Python's insertion order.
    #[cfg(feature = "redis")]
    #[test]
    fn json_entries_a_write_leaves_alone_go_back_as_stored() {
        let stored = br#"{"cart":{"zebra":1,"apple":2},"n":1,"when": {"z":[1,{"b":2,"a":"}]\"x"}]}, "f":1E+300}"#;
        let mut data = JSON.decode(stored).expect("read");
        data.insert("n".to_owned(), 2.into());
        data.insert("new".to_owned(), "x".into());
        let written = JSON.encode_keeping(&data, stored).expect("written");
        assert_eq!(
            String::from_utf8(written.clone()).expect("text"),
            r#"{"cart":{"zebra":1,"apple":2},"f":1E+300,"n":2,"new":"x","when": {"z":[1,{"b":2,"a":"}]\"x"}]}}"#
        );
        assert_eq!(JSON.decode(&written).expect("read"), data);
        // A changed entry is written anew.
        data.insert("cart".to_owned(), Value::Dict(map([("zebra", 1.into())])));
        let written = JSON.encode_keeping(&data, stored).expect("written");
        assert!(
            String::from_utf8(written.clone())
                .expect("text")
                .starts_with(r#"{"cart":{"zebra":1},"f":1E+300,"#),
            "{written:?}"
        );
        assert_eq!(JSON.decode(&written).expect("read"), data);
        // Stored bytes that are not a JSON object (msgpack, say), or one
        // with a key written twice, give a plain encoding.
        for original in [&b"\x81\xa1n\x01"[..], br#"{"n":1,"n":1}"#, b"{\"n\":1"] {
            assert_eq!(
                JSON.encode_keeping(&data, original).expect("written"),
                JSON.encode(&data).expect("written")
            );
        }
    }

    /// Keys Python allows besides str are read as the text JSON would write
    /// for them; entries a write leaves alone go back byte for byte (the
    /// blobs are msgspec's, as Flask-Session writes them).
    #[cfg(feature = "redis")]
    #[test]
    fn msgpack_keys_of_every_type_survive_writes_that_leave_them() {
        // {'intkey': {1: 'a', -5: 'b'}, 'flags': {True: 1, None: 2, 1.5: 3, b'k': 4}, 'n': 1}
        let stored = unhex(
            "83a6696e746b65798201a161fba162a5666c61677384c301c002cb3ff800000000000003c4016b04a16e01",
        );
        let mut data = MSGPACK.decode(&stored).expect("read");
        assert_eq!(
            data,
            map([
                (
                    "intkey",
                    Value::Dict(map([("1", "a".into()), ("-5", "b".into())]))
                ),
                (
                    "flags",
                    Value::Dict(map([
                        ("true", 1.into()),
                        ("null", 2.into()),
                        ("1.5", 3.into()),
                        ("aw==", 4.into()),
                    ])),
                ),
                ("n", 1.into()),
            ])
        );
        data.insert("n".to_owned(), 2.into());
        data.insert("new".to_owned(), "x".into());
        // msgspec's encoding of {'flags': {...}, 'intkey': {...}, 'n': 2, 'new': 'x'}.
        assert_eq!(
            hex(&MSGPACK.encode_keeping(&data, &stored).expect("written")),
            widened(
"84a5666c61677384c301c002cb3ff800000000000003c4016b04a6696e746b65798201a161fba162a16e02a36e6577a178")
        );
        // A changed entry is written anew, with str keys.
        data.insert(
            "intkey".to_owned(),
            Value::Dict(map([("1", "changed".into())])),
        );
        let written = MSGPACK.encode_keeping(&data, &stored).expect("written");
        assert_eq!(MSGPACK.decode(&written).expect("read"), data);
        assert!(!hex(&written).contains("8201a161"));
        // A bytes key that is not UTF-8 reads as its base64 too, and goes
        // back as it was: {'v': {b'\xff\x00': 'x'}, 'n': 1}.
        let stored = unhex("82a17681c402ff00a178a16e01");
        let mut data = MSGPACK.decode(&stored).expect("read");
        assert_eq!(
            data.get("v"),
            Some(&Value::Dict(map([("/wA=", "x".into())])))
        );
        data.insert("n".to_owned(), 2.into());
        assert_eq!(
            hex(&MSGPACK.encode_keeping(&data, &stored).expect("written")),
            widened("82a16e02a17681c402ff00a178")
        );
        // Two such keys stay two, and a write of another key keeps both:
        // {b'\xff': 'first', b'\xfe': 'second', 'user': 'alice'}.
        let stored = unhex("83c401ffa56669727374c401fea67365636f6e64a475736572a5616c696365");
        let mut data = MSGPACK.decode(&stored).expect("read");
        assert_eq!(
            data,
            map([
                ("/w==", "first".into()),
                ("/g==", "second".into()),
                ("user", "alice".into()),
            ])
        );
        data.insert("theme".to_owned(), "dark".into());
        let written = MSGPACK.encode_keeping(&data, &stored).expect("written");
        for entry in ["c401ffa56669727374", "c401fea67365636f6e64"] {
            assert!(hex(&written).contains(entry), "{entry} kept");
        }
        // Tuple and datetime keys read as JSON's array and RFC 3339 text,
        // and go back as they were: msgspec's encoding of
        // {'seen': {(1, 2): 3, ('a', (True, None)): 4},
        //  'when': {datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=utc): 'x'},
        //  (7, 'k'): 'top', 'n': 1}.
        let stored = unhex(
            "84a47365656e829201020392a16192c3c004a47768656e81d7ff3b9aca0066322ec0a1789207a16ba3746f70a16e01",
        );
        let mut data = MSGPACK.decode(&stored).expect("read");
        assert_eq!(
            data,
            map([
                (
                    "seen",
                    Value::Dict(map([
                        ("[1,2]", 3.into()),
                        ("[\"a\",[true,null]]", 4.into())
                    ]))
                ),
                (
                    "when",
                    Value::Dict(map([("2024-05-01T12:00:00.250000Z", "x".into())]))
                ),
                ("[7,\"k\"]", "top".into()),
                ("n", 1.into()),
            ])
        );
        data.insert("n".to_owned(), 2.into());
        let written = hex(&MSGPACK.encode_keeping(&data, &stored).expect("written"));
        for untouched in [
            "a47365656e829201020392a16192c3c004",
            "a47768656e81d7ff3b9aca0066322ec0a178",
            "9207a16ba3746f70",
        ] {
            assert!(written.contains(untouched), "{written}");
        }
        assert_eq!(MSGPACK.decode(&unhex(&written)).expect("read"), data);

        // Stored bytes that are not msgpack (JSON, say) give a plain encoding.
        assert_eq!(
            MSGPACK
                .encode_keeping(&data, b"{\"n\": 1}")
                .expect("written"),
            MSGPACK.encode(&data).expect("written")
        );
    }

    #[test]
    fn json_must_be_an_object_of_utf8() {
        for (text, reason) in [
            (&b"[1,2]"[..], "not an object"),
            (b"\"s\"", "not an object"),
            (b"{\"a\":\"\xff\"}", "invalid UTF-8"),
            (b"{\"a\":1", "expected ',' or '}'"),
            (b"{\"a\":1} x", "trailing"),
        ] {
            let error = json::decode(text).expect_err("refused");
            assert!(error.to_string().contains(reason), "{error}");
        }
    }

    #[test]
    fn names_are_flask_sessions() {
        assert_eq!(SerializationFormat::default(), MSGPACK);
        for format in [MSGPACK, JSON] {
            assert_eq!(format.as_str().parse::<SerializationFormat>(), Ok(format));
        }
        for bad in ["", "JSON", "Msgpack", "pickle", " json"] {
            let error = bad.parse::<SerializationFormat>().expect_err(bad);
            assert!(error
                .to_string()
                .contains(r#"expected "msgpack" or "json""#));
        }
    }

    /// A small deterministic generator, so the round trips cover many shapes.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn text(&mut self) -> String {
            const CHARS: [char; 10] = ['a', 'Z', '0', ' ', '"', '\\', '\n', 'é', '中', '🎯'];
            let len = [0, 3, 31, 32, 40][self.below(5) as usize];
            (0..len)
                .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
                .collect()
        }

        fn datetime(&mut self) -> OffsetDateTime {
            const FIRST: i64 = -62_135_596_800; // 0001-01-01
            const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59
            let seconds = match self.below(3) {
                0 => self.below(1 << 32) as i64,
                1 => self.below(1 << 34) as i64,
                _ => FIRST + self.below((LAST - FIRST + 1) as u64) as i64,
            };
            let nanos = match self.below(3) {
                0 => 0,
                1 => self.below(1_000_000) as u32 * 1000,
                _ => self.below(1_000_000_000) as u32,
            };
            OffsetDateTime::from_unix_timestamp(seconds)
                .ok()
                .and_then(|when| when.replace_nanosecond(nanos).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        }

        fn value(&mut self, depth: usize) -> Value {
            let kinds = if depth >= 4 { 9 } else { 12 };
            match self.below(kinds) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 1),
                2 => Value::from(self.next() as i64 >> self.below(64)),
                3 => Value::from(self.next()),
                4 => Value::from(f64::from_bits(self.next())),
                5 => Value::from(self.text()),
                6 => Value::bytes(
                    (0..self.below(300))
                        .map(|_| self.next() as u8)
                        .collect::<Vec<_>>(),
                ),
                7 => Value::DateTime(self.datetime()),
                8 => match self.below(2) {
                    0 => Value::markup(self.text()),
                    _ => Value::Uuid(uuid::Uuid::from_u128(
                        u128::from(self.next()) << 64 | u128::from(self.next()),
                    )),
                },
                9 => Value::List((0..self.below(20)).map(|_| self.value(depth + 1)).collect()),
                10 => Value::tuple(
                    (0..self.below(4))
                        .map(|_| self.value(depth + 1))
                        .collect::<Vec<_>>(),
                ),
                _ => Value::Dict(self.map(depth + 1)),
            }
        }

        fn map(&mut self, depth: usize) -> Map {
            (0..self.below(20))
                .map(|_| (self.text(), self.value(depth)))
                .collect()
        }
    }

    /// What msgpack gives back: no tuples, `Markup` or UUIDs.
    fn as_msgpack_reads(value: &Value) -> Value {
        match value {
            Value::Tuple(items) | Value::List(items) => {
                Value::List(items.iter().map(as_msgpack_reads).collect())
            }
            Value::Dict(map) => {
                Value::Dict(map.iter().map(|(k, v)| (k, as_msgpack_reads(v))).collect())
            }
            Value::Markup(s) => Value::String(s.clone()),
            Value::Uuid(u) => Value::String(u.hyphenated().to_string()),
            other => other.clone(),
        }
    }

    /// What JSON gives back, with every float compared by value.
    fn as_json_reads(value: &Value) -> Value {
        match value {
            Value::Number(n) if !n.is_integer() => match n.as_f64() {
                Some(x) if x.is_finite() => Value::Number(Number::from_f64(x)),
                _ => Value::Null,
            },
            Value::Tuple(items) | Value::List(items) => {
                Value::List(items.iter().map(as_json_reads).collect())
            }
            Value::Dict(map) => {
                Value::Dict(map.iter().map(|(k, v)| (k, as_json_reads(v))).collect())
            }
            Value::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Value::Markup(s) => Value::String(s.clone()),
            Value::Uuid(u) => Value::String(u.hyphenated().to_string()),
            Value::DateTime(d) => {
                let mut out = String::new();
                json::write_datetime(&mut out, *d);
                Value::String(out)
            }
            other => other.clone(),
        }
    }

    #[test]
    fn random_sessions_round_trip() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..400 {
            let data = rng.map(0);
            let msgpack = MSGPACK.encode(&data).expect("encodes");
            let expected = as_msgpack_reads(&Value::Dict(data.clone()));
            assert_eq!(
                Value::Dict(MSGPACK.decode(&msgpack).expect("decodes")),
                expected
            );
            let json = JSON.encode(&data).expect("encodes");
            let back = JSON.decode(&json).expect("decodes");
            assert_eq!(
                as_json_reads(&Value::Dict(back)),
                as_json_reads(&Value::Dict(data))
            );
        }
    }
}
