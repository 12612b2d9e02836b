//! Reading the date of a tagged datetime (`{" d": "…"}`) exactly as Flask
//! does.
//!
//! Flask's `TagDateTime` reads the string with Werkzeug's `parse_date`, which
//! is Python's `email.utils.parsedate_to_datetime`: a permissive RFC 2822
//! reader that also takes RFC 850 and asctime dates, two-digit years, named
//! and numeric zones, and ignores the weekday. Flask itself always writes
//! `Tue, 02 Jan 2024 03:04:05 GMT`, but a session written by other code, or
//! by hand with `tessera cookie sign`, may hold any form Python accepts, and
//! reading fewer of them would turn a datetime into `None`. What Python
//! refuses (a `ValueError`) Werkzeug turns into `None`, and so does this.
//!
//! The steps follow CPython's `email._parseaddr._parsedate_tz` one by one,
//! so that odd inputs are read the same way, not only the common ones.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

const MONTH_NAMES: [&str; 24] = [
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Python's `_timezones`: offsets written as `±HHMM` numbers.
const ZONES: [(&str, i64); 14] = [
    ("UT", 0),
    ("UTC", 0),
    ("GMT", 0),
    ("Z", 0),
    ("AST", -400),
    ("ADT", -300),
    ("EST", -500),
    ("EDT", -400),
    ("CST", -600),
    ("CDT", -500),
    ("MST", -700),
    ("MDT", -600),
    ("PST", -800),
    ("PDT", -700),
];

/// The instant `text` names, in UTC, or `None` where Werkzeug's `parse_date`
/// gives `None`. A date without a zone (or with an unknown one) is UTC, as
/// Werkzeug assumes.
pub(crate) fn parse(text: &str) -> Option<OffsetDateTime> {
    let fields = parsedate_tz(text)?;
    to_datetime(&fields)
}

/// The fields `_parsedate_tz` returns: year, month, day, hour, minute,
/// second, and the zone's offset in seconds if one was read.
#[derive(Debug, PartialEq, Eq)]
struct Fields {
    year: i64,
    month: u8,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    offset_seconds: Option<i64>,
}

fn parsedate_tz(text: &str) -> Option<Fields> {
    // Python's `str.split()`: its whitespace is Unicode's and \x1c to \x1f.
    let mut data: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, '\x1c'..='\x1f'))
        .filter(|part| !part.is_empty())
        .collect();
    let first = *data.first()?;
    // A weekday, with or without its comma, is skipped; a comma glued to
    // what follows it ("Tue,02") is cut off.
    if first.ends_with(',') || DAY_NAMES.contains(&first.to_lowercase().as_str()) {
        data.remove(0);
    } else if let Some(comma) = first.rfind(',') {
        data[0] = &first[comma + 1..];
    }
    // RFC 850: "02-Jan-24 03:04:05 GMT".
    if data.len() == 3 {
        let parts: Vec<&str> = data[0].split('-').collect();
        if parts.len() == 3 {
            let rest = data.split_off(1);
            data = parts;
            data.extend(rest);
        }
    }
    // A zone glued to the time: "03:04:05+0200".
    if data.len() == 4 {
        let glued = data[3];
        let sign = glued.find('+').or_else(|| glued.find('-'));
        match sign {
            Some(at) if at > 0 => {
                data[3] = &glued[..at];
                data.push(&glued[at..]);
            }
            _ => data.push(""),
        }
    }
    if data.len() < 5 {
        return None;
    }
    let (mut day, mut month, mut year, mut clock, mut zone) =
        (data[0], data[1], data[2], data[3], data[4]);
    if day.is_empty() || month.is_empty() || year.is_empty() {
        return None;
    }
    let mut month_name = month.to_lowercase();
    if !MONTH_NAMES.contains(&month_name.as_str()) {
        (day, month) = (month, day);
        month_name = month.to_lowercase();
        if !MONTH_NAMES.contains(&month_name.as_str()) {
            return None;
        }
    }
    let index = MONTH_NAMES.iter().position(|name| *name == month_name)?;
    let month_number = (index % 12) as u8 + 1;
    day = day.strip_suffix(',').unwrap_or(day);
    if year.find(':').is_some_and(|at| at > 0) {
        (year, clock) = (clock, year);
    }
    if let Some(stripped) = year.strip_suffix(',') {
        year = stripped;
        if year.is_empty() {
            return None;
        }
    }
    if !year.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        (year, zone) = (zone, year);
    }
    clock = clock.strip_suffix(',').unwrap_or(clock);
    let mut parts: Vec<&str> = clock.split(':').collect();
    if parts.len() == 1 && clock.contains('.') {
        // Some mailers write the time with dots.
        parts = clock.split('.').collect();
    }
    let (hour, minute, second) = match parts[..] {
        [hour, minute] => (hour, minute, "0"),
        [hour, minute, second] => (hour, minute, second),
        _ => return None,
    };
    let mut year = python_int(year)?;
    let day = python_int(day)?;
    let hour = python_int(hour)?;
    let minute = python_int(minute)?;
    let second = python_int(second)?;
    if year < 100 {
        year += if year > 68 { 1900 } else { 2000 };
    }
    Some(Fields {
        year,
        month: month_number,
        day,
        hour,
        minute,
        second,
        offset_seconds: zone_offset(zone),
    })
}

/// The zone's offset in seconds: a name from `ZONES` or a `±HHMM` number.
/// `-0000` means "unknown", like no zone at all.
fn zone_offset(zone: &str) -> Option<i64> {
    let upper = zone.to_uppercase();
    let hhmm = match ZONES.iter().find(|(name, _)| *name == upper) {
        Some(&(_, offset)) => offset,
        None => {
            let number = python_int(zone)?;
            if number == 0 && zone.starts_with('-') {
                return None;
            }
            number
        }
    };
    let magnitude = hhmm.checked_abs()?;
    let seconds = (magnitude / 100)
        .checked_mul(3600)?
        .checked_add((magnitude % 100) * 60)?;
    Some(if hhmm < 0 { -seconds } else { seconds })
}

/// Python's `int(text)` for ASCII input: an optional sign, then digits with
/// single underscores between them. Too large for `i64` is `None`. No such
/// number makes a valid date; as a zone, it is read as no zone (UTC), where
/// Flask's reading of the whole cookie fails (Python's `timedelta`
/// overflows, as it does for far smaller zones).
fn python_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: i64 = 0;
    for byte in digits.bytes().filter(|&byte| byte != b'_') {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(i64::from(byte - b'0'))?;
    }
    Some(if negative { -value } else { value })
}

/// Python's `datetime(…, tzinfo=timezone(timedelta(seconds=offset)))`,
/// then in UTC: `None` for what Python refuses, and for an instant whose
/// UTC year leaves 1–9999 (Werkzeug could not write it back).
fn to_datetime(fields: &Fields) -> Option<OffsetDateTime> {
    if !(1..=9999).contains(&fields.year) {
        return None;
    }
    let month = Month::try_from(fields.month).ok()?;
    let date = Date::from_calendar_date(
        i32::try_from(fields.year).ok()?,
        month,
        u8::try_from(fields.day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(fields.hour).ok()?,
        u8::try_from(fields.minute).ok()?,
        u8::try_from(fields.second).ok()?,
    )
    .ok()?;
    let offset_seconds = fields.offset_seconds.unwrap_or(0);
    // timedelta offsets must lie strictly within a day.
    if offset_seconds.abs() >= 86_400 {
        return None;
    }
    let offset = UtcOffset::from_whole_seconds(i32::try_from(offset_seconds).ok()?).ok()?;
    let utc = PrimitiveDateTime::new(date, time)
        .assume_offset(offset)
        .checked_to_offset(UtcOffset::UTC)?;
    (1..=9999).contains(&utc.year()).then_some(utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn flask_s_own_form() {
        assert_eq!(
            parse("Tue, 02 Jan 2024 03:04:05 GMT"),
            Some(datetime!(2024-01-02 03:04:05 UTC))
        );
    }

    /// Each of these is read by Python 3.11's
    /// `email.utils.parsedate_to_datetime` as the instant given (checked
    /// against it; the interop tests check Flask itself).
    #[test]
    fn the_forms_python_reads() {
        let expected = datetime!(2024-01-02 03:04:05 UTC);
        for text in [
            "Tue, 2 Jan 2024 03:04:05 +0000",
            "02 Jan 2024 03:04:05 GMT",
            "Tuesday, 02-Jan-24 03:04:05 GMT",
            "Tue Jan  2 03:04:05 2024",
            "Tue, 02 Jan 2024 03:04:05 UTC",
            "Tue, 02 Jan 2024 03:04:05 -0000",
            "Tue, 02 Jan 2024 05:04:05 +0200",
            "Mon, 01 Jan 2024 22:04:05 EST",
            "tue, 02 jan 2024 03:04:05 gmt",
            "Tue, 02 Jan 2024 03:04:05 GMT ",
            "Fri, 02 Jan 2024 03:04:05 GMT",
            "Tue,02 Jan 2024 03:04:05 GMT",
            "2 January 2024 03:04:05",
            "Jan 2 2024 03:04:05",
            "02 Jan 2024 03:04:05+0000",
            "02 Jan 2024 03.04.05 GMT",
            "02 Jan 2024 03:04:05 CET",
            "02 Jan 2_024 03:04:05",
            // Python's str.split() splits at these too.
            "Tue,\x1c02 Jan 2024\u{3000}03:04:05\x1fGMT",
        ] {
            assert_eq!(parse(text), Some(expected), "{text:?}");
        }
        assert_eq!(
            parse("02 Jan 2024 03:04"),
            Some(datetime!(2024-01-02 03:04:00 UTC))
        );
        assert_eq!(
            parse("02 Jan 70 03:04:05"),
            Some(datetime!(1970-01-02 03:04:05 UTC))
        );
        assert_eq!(
            parse("02 Jan 68 03:04:05"),
            Some(datetime!(2068-01-02 03:04:05 UTC))
        );
        assert_eq!(
            parse("02 Jan 2024 03:04:05 +5"),
            Some(datetime!(2024-01-02 02:59:05 UTC))
        );
        // Years below 100 are two-digit years, however they are written.
        assert_eq!(
            parse("Mon, 01 Jan 0001 00:30:00 +0100"),
            Some(datetime!(2000-12-31 23:30:00 UTC))
        );
    }

    /// Python raises `ValueError` for each (or `_parsedate_tz` gives
    /// `None`), which Werkzeug turns into `None`.
    #[test]
    fn what_python_refuses() {
        for text in [
            "",
            "   ",
            "yesterday",
            "Tue, 02 Foo 2024 03:04:05 GMT",
            "Tue, 30 Feb 2024 03:04:05 GMT",
            "Tue, 02 Jan 2024 24:00:00 GMT",
            "Tue, 02 Jan 2024 03:04:60 GMT",
            "Tue, 02 Jan 2024 03:04:05:06 GMT",
            "Tue, 02 Jan 2024 03 GMT",
            "Tue, 02 Jan 2024 03:04:05 +2400",
            "Tue, 02 Jan 10000 03:04:05 GMT",
            "Tue, 02 Jan 2024",
            "Tue, 02 Jan 0x10 03:04:05 GMT",
            "Tue, 02 Jan 2__024 03:04:05 GMT",
            "Tuesday, -Jan-24 03:04:05 GMT",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    /// Python reads these, but Flask fails on them (an `OverflowError` that
    /// Werkzeug does not catch, when reading the first and when writing the
    /// second back in UTC): an empty value is the better answer.
    #[test]
    fn what_python_cannot_handle() {
        assert_eq!(parse("Tue, 02 Jan 99999999999999999999 03:04:05 GMT"), None);
        assert_eq!(parse("Fri, 31 Dec 9999 23:30:00 -0100"), None);
    }
}
