//! The values a Flask session can hold.
//!
//! Flask stores sessions as *tagged JSON*: plain JSON plus one-key objects that
//! mark Python types JSON lacks (tuples, bytes, `Markup`, UUIDs, datetimes).
//! [`Value`] models exactly that set, so a session written by Flask can be read,
//! changed in one key and written back with every other key byte-for-byte as
//! Flask wrote it.

use std::fmt;

use base64::Engine as _;
use compact_str::CompactString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::map::Map;

/// One value in a Flask session.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// Python `None`, JSON `null`.
    Null,
    /// Python `bool`.
    Bool(bool),
    /// Python `int` or `float`, kept as the text Python wrote so big integers
    /// and float formatting survive a round trip unchanged.
    Number(Number),
    /// Python `str`.
    String(String),
    /// Python `list`.
    List(Vec<Value>),
    /// Python `dict` with string keys.
    Dict(Map),
    /// Python `tuple` (tag `" t"`); flash messages are tuples.
    Tuple(Vec<Value>),
    /// Python `bytes` (tag `" b"`).
    Bytes(Vec<u8>),
    /// `markupsafe.Markup`, a string known to be safe HTML (tag `" m"`).
    Markup(String),
    /// `uuid.UUID` (tag `" u"`).
    Uuid(Uuid),
    /// `datetime.datetime` in UTC with whole seconds (tag `" d"`), years 100
    /// to 9999. Cookies and stores write it as Flask writes it, an HTTP
    /// date, and read it as Flask reads one: another offset or fractions of
    /// a second are lost (build it with `Value::from(datetime)`, which drops
    /// them at once, as the memory store, which keeps values as given, then
    /// holds them too), years 0 to 99 read back as 2000 to 2068 and 1969 to
    /// 1999 (Python's two-digit years), and one outside years 1 to 9999 in
    /// UTC (which Python cannot hold) is refused when its session is sent
    /// or stored, as a value nested too deep is.
    DateTime(OffsetDateTime),
}

/// A JSON number exactly as written: a Python `int` of any size or a `float`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number(NumberText);

/// A number's text. Counters and ids are read and written on every request:
/// text of up to 24 bytes (every 64-bit integer, the floats sessions usually
/// hold) is kept inline, without a heap allocation, and is read as a `&str`
/// without being checked as UTF-8 again, which an inline byte array of our
/// own needed on every read (five times in a request that increments a
/// counter). Comparisons compare the text.
type NumberText = CompactString;

impl Number {
    /// Wraps number text that has already been validated as a JSON number
    /// (or one of Python's `NaN`, `Infinity`, `-Infinity`).
    pub(crate) fn from_validated(text: &str) -> Self {
        Self(NumberText::new(text))
    }

    /// A number from a float, formatted the way Python's `repr(float)` does.
    pub fn from_f64(value: f64) -> Self {
        Self::from_validated(&python_float_repr(value))
    }

    /// Formatted on the stack by `itoa`, which does only this, without
    /// `core::fmt`'s machinery: a counter is written on every request that
    /// changes it.
    fn from_integer(value: impl itoa::Integer) -> Self {
        Self::from_validated(itoa::Buffer::new().format(value))
    }

    /// The number's text as it appears in the JSON.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether the number is a Python `int` (no fraction, exponent or special value).
    pub fn is_integer(&self) -> bool {
        self.as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-')
    }

    /// The value as `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        if self.is_integer() {
            self.as_str().parse().ok()
        } else {
            None
        }
    }

    /// The value as `u64`, if it is a non-negative integer that fits.
    pub fn as_u64(&self) -> Option<u64> {
        if self.is_integer() {
            self.as_str().parse().ok()
        } else {
            None
        }
    }

    /// The value as `f64` (integers too, rounded; `NaN` and the infinities included).
    pub fn as_f64(&self) -> Option<f64> {
        match self.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            text => text.parse().ok(),
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! number_from_int {
    ($($ty:ty),*) => {$(
        impl From<$ty> for Number {
            fn from(value: $ty) -> Self {
                Self::from_integer(value)
            }
        }
        impl From<$ty> for Value {
            fn from(value: $ty) -> Self {
                Value::Number(value.into())
            }
        }
    )*};
}
number_from_int!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

impl From<f64> for Number {
    fn from(value: f64) -> Self {
        Self::from_f64(value)
    }
}

impl From<f32> for Number {
    fn from(value: f32) -> Self {
        // Through the shortest decimal of the f32, so 0.1f32 stays 0.1 rather
        // than becoming 0.10000000149011612.
        Self::from_f64(value.to_string().parse().unwrap_or(f64::from(value)))
    }
}

/// Formats a float as Python's `repr` does, which is what `json.dumps` writes.
///
/// Python prints the shortest round-tripping digits, in positional notation
/// when the decimal exponent is in `-4..16` and in scientific notation with a
/// signed, at least two-digit exponent otherwise.
pub(crate) fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let Some(Decimal {
        negative,
        digits,
        exponent,
    }) = Decimal::shortest(value)
    else {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    };
    let sign = if negative { "-" } else { "" };
    if !(-4..16).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.abs());
    }
    let point = exponent + 1; // digits before the decimal point
    if point <= 0 {
        let zeros = "0".repeat(point.unsigned_abs() as usize);
        format!("{sign}0.{zeros}{digits}")
    } else {
        let point = point as usize;
        if digits.len() <= point {
            let zeros = "0".repeat(point - digits.len());
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int_part, frac_part) = digits.split_at(point);
            format!("{sign}{int_part}.{frac_part}")
        }
    }
}

/// A finite float as its shortest round-tripping decimal digits.
pub(crate) struct Decimal {
    /// The sign (also of `-0.0`).
    pub(crate) negative: bool,
    /// The significant digits, without leading or trailing zeros.
    pub(crate) digits: String,
    /// The decimal exponent of the first digit.
    pub(crate) exponent: i32,
}

impl Decimal {
    /// `None` for zero (either sign), NaN and the infinities.
    pub(crate) fn shortest(value: f64) -> Option<Self> {
        // serde_json finds the digits with Ryu, which, like Python's repr,
        // breaks a tie between two equally short candidates towards the even
        // one; Rust's `{:e}` rounds it up (1680162312945338.25 would be
        // ...338.3 where Python writes ...338.2).
        let text = serde_json::Number::from_f64(value)?.to_string();
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let (negative, mantissa) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all = format!("{int_part}{frac_part}");
        let significant = all.trim_start_matches('0');
        let digits = significant.trim_end_matches('0');
        if digits.is_empty() {
            return None;
        }
        let leading_zeros = (all.len() - significant.len()) as i32;
        Some(Self {
            negative,
            digits: digits.to_owned(),
            exponent: exponent + int_part.len() as i32 - 1 - leading_zeros,
        })
    }
}

impl Value {
    /// A `bytes` value.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Value::Bytes(bytes.into())
    }

    /// A `tuple` value.
    pub fn tuple(items: impl IntoIterator<Item = Value>) -> Self {
        Value::Tuple(items.into_iter().collect())
    }

    /// A `Markup` value: HTML the application vouches for.
    pub fn markup(html: impl Into<String>) -> Self {
        Value::Markup(html.into())
    }

    /// The string, for both `str` and `Markup` values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Markup(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an `int` that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The number as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Python's `bool(value)`: false for `None`, `False`, zero, and empty
    /// strings, bytes, lists, tuples and dicts; true otherwise (`NaN`
    /// included). Flask tests `session.permanent` this way.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => match n.as_f64() {
                Some(value) => value != 0.0 || value.is_nan(),
                // An integer too long for a float is not zero.
                None => true,
            },
            Value::String(s) | Value::Markup(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(items) | Value::Tuple(items) => !items.is_empty(),
            Value::Dict(map) => !map.is_empty(),
            Value::Uuid(_) | Value::DateTime(_) => true,
        }
    }

    /// The bytes of a `bytes` value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The UUID of a `UUID` value.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Value::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    /// The instant of a `datetime` value.
    pub fn as_datetime(&self) -> Option<OffsetDateTime> {
        match self {
            Value::DateTime(d) => Some(*d),
            _ => None,
        }
    }

    /// The items of a `list` or `tuple`.
    pub fn as_slice(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The entries of a `dict`.
    pub fn as_dict(&self) -> Option<&Map> {
        match self {
            Value::Dict(map) => Some(map),
            _ => None,
        }
    }

    /// The Python type's name with its article (`"a float"`, `"None"`), for
    /// error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "None",
            Value::Bool(_) => "a bool",
            Value::Number(n) if n.is_integer() => "an int",
            Value::Number(_) => "a float",
            Value::String(_) => "a str",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Tuple(_) => "a tuple",
            Value::Bytes(_) => "bytes",
            Value::Markup(_) => "Markup",
            Value::Uuid(_) => "a UUID",
            Value::DateTime(_) => "a datetime",
        }
    }

    /// Whether this is `None`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Any `Serialize` value as a session value, as
    /// [`Session::insert`](crate::Session::insert) stores it: for the methods
    /// that take a `Value` ([`append`](crate::Session::append),
    /// [`setdefault`](crate::Session::setdefault),
    /// [`flash`](crate::Session::flash)).
    ///
    /// ```
    /// # fn main() -> Result<(), serde_json::Error> {
    /// #[derive(serde::Serialize)]
    /// struct Item { sku: String, qty: u32 }
    ///
    /// let item = tessera::Value::from_serialize(&Item { sku: "A-1".into(), qty: 2 })?;
    /// assert_eq!(item.to_tagged_json(), r#"{"qty":2,"sku":"A-1"}"#);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_serialize<T: serde::Serialize + ?Sized>(
        value: &T,
    ) -> Result<Self, serde_json::Error> {
        crate::value_serde::to_value(value)
    }

    /// This value as Flask's tagged JSON, compact and ASCII-escaped.
    pub fn to_tagged_json(&self) -> String {
        crate::tagged::to_string(self)
    }

    /// Converts to plain JSON for serde: tuples become arrays, bytes arrays of
    /// numbers, `Markup` a string, UUIDs hyphenated strings and datetimes
    /// RFC 3339 strings. Non-finite floats have no JSON form and become `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => number_to_json(n),
            Value::String(s) | Value::Markup(s) => Json::String(s.clone()),
            Value::List(items) | Value::Tuple(items) => {
                Json::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Dict(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_json()))
                    .collect(),
            ),
            Value::Bytes(bytes) => Json::Array(bytes.iter().map(|b| Json::from(*b)).collect()),
            Value::Uuid(u) => Json::String(u.hyphenated().to_string()),
            Value::DateTime(d) => Json::String(
                d.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            ),
        }
    }

    /// Converts plain JSON (from serde) to a session value: arrays become lists,
    /// objects dicts, floats are formatted as Python would.
    pub fn from_json(json: serde_json::Value) -> Self {
        use serde_json::Value as Json;
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(n) => Value::Number(if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                Number::from_f64(n.as_f64().unwrap_or(f64::NAN))
            }),
            Json::String(s) => Value::String(s),
            Json::Array(items) => Value::List(items.into_iter().map(Value::from_json).collect()),
            Json::Object(map) => Value::Dict(
                map.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

fn number_to_json(n: &Number) -> serde_json::Value {
    if let Some(i) = n.as_i64() {
        return i.into();
    }
    if let Some(u) = n.as_u64() {
        return u.into();
    }
    n.as_f64()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("None"),
            Value::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::List(items) => f.debug_list().entries(items).finish(),
            Value::Dict(map) => f.debug_map().entries(map).finish(),
            Value::Tuple(items) => {
                let mut t = f.debug_tuple("");
                for item in items {
                    t.field(item);
                }
                t.finish()
            }
            Value::Bytes(b) => write!(
                f,
                "b64({})",
                base64::engine::general_purpose::STANDARD.encode(b)
            ),
            Value::Markup(s) => write!(f, "Markup({s:?})"),
            Value::Uuid(u) => write!(f, "UUID('{u}')"),
            Value::DateTime(d) => write!(f, "datetime({d})"),
        }
    }
}

/// Shows the value as Flask tagged JSON.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_tagged_json())
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Number(value.into())
    }
}

impl From<f32> for Value {
    fn from(value: f32) -> Self {
        Value::Number(value.into())
    }
}

impl From<Number> for Value {
    fn from(value: Number) -> Self {
        Value::Number(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::String(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::String(value)
    }
}

impl From<Uuid> for Value {
    fn from(value: Uuid) -> Self {
        Value::Uuid(value)
    }
}

/// Datetimes are kept in UTC with whole seconds, as Flask's HTTP-date tag
/// keeps them. One whose UTC time is past what the `time` crate holds
/// (beyond year 9999) is kept in its own offset; like any datetime outside
/// years 1 to 9999 in UTC, a session refuses it when it is saved.
impl From<OffsetDateTime> for Value {
    fn from(value: OffsetDateTime) -> Self {
        let kept = value
            .checked_to_offset(time::UtcOffset::UTC)
            .unwrap_or(value);
        Value::DateTime(kept.replace_nanosecond(0).unwrap_or(kept))
    }
}

impl From<Map> for Value {
    fn from(value: Map) -> Self {
        Value::Dict(value)
    }
}

impl From<Vec<Value>> for Value {
    fn from(value: Vec<Value>) -> Self {
        Value::List(value)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e100, "1e+100"),
            (123456789.123, "123456789.123"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (2.5e-7, "2.5e-07"),
            (-3.0, "-3.0"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            // A tie between two shortest candidates goes to the even digit
            // (written as a sum: the exact literal is longer than its repr).
            (1680162312945338.0 + 0.25, "1680162312945338.2"),
            (2014963079974199.0 + 0.25, "2014963079974199.2"),
            (2014963079974199.0 + 0.75, "2014963079974199.8"),
            (1234629799683152.0 + 0.25, "1234629799683152.2"),
            (1234629799683152.0 + 0.75, "1234629799683152.8"),
        ];
        for (value, expected) in cases {
            assert_eq!(python_float_repr(value), expected, "repr of {value:e}");
        }
    }

    #[test]
    fn numbers_keep_their_text_inline_or_not() {
        for text in [
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "18446744073709551615",
            "1234567890123456789012",
            "12345678901234567890123",
            "-170141183460469231731687303715884105728",
            "1.2345678901234567e-308",
        ] {
            let number = Number::from_validated(text);
            assert_eq!(number.as_str(), text);
            assert_eq!(number, Number::from_validated(text));
            assert_eq!(number.to_string(), text);
        }
        assert_ne!(Number::from_validated("12"), Number::from_validated("1"));
        assert_eq!(Number::from(i128::MIN).as_str(), i128::MIN.to_string());
        assert_eq!(Number::from(u128::MAX).as_str(), u128::MAX.to_string());
        assert_eq!(Number::from(u64::MAX).as_u64(), Some(u64::MAX));
        // No bigger than the String it replaced.
        assert!(std::mem::size_of::<Number>() <= std::mem::size_of::<String>());
    }

    #[test]
    fn numbers_read_back() {
        let n = Number::from_validated("18446744073709551621");
        assert!(n.is_integer());
        assert_eq!(n.as_i64(), None);
        assert_eq!(n.as_u64(), None);
        assert_eq!(Number::from(-7i32).as_i64(), Some(-7));
        assert_eq!(Number::from(0.1f32).as_str(), "0.1");
        assert!(!Number::from(2.0f64).is_integer());
    }

    #[test]
    fn datetime_is_kept_in_utc_whole_seconds() {
        let local = time::macros::datetime!(2024-01-02 05:04:05.75 +02:00);
        let value = Value::from(local);
        assert_eq!(
            value.as_datetime(),
            Some(time::macros::datetime!(2024-01-02 03:04:05 UTC))
        );
    }
}
