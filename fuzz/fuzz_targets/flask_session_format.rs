//! Flask-Session's stored formats (msgpack and JSON, as `FlaskSessionRedisStore`
//! reads what a Flask app, or anyone who can write to its Redis, stored) on
//! arbitrary bytes: reading never panics, in either format first, and what
//! is read and can be written again is written again byte for byte from what
//! it reads back as (JSON's lossy forms, bytes and datetimes as strings,
//! settle in that one round); what is read as msgpack reads back as the
//! same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::store::flask_format::SerializationFormat;

fuzz_target!(|data: &[u8]| {
    for format in [SerializationFormat::Msgpack, SerializationFormat::Json] {
        let Ok(map) = format.decode(data) else {
            continue;
        };
        // A value read may have no form in the format (an integer JSON
        // holds beyond msgpack's range): refused, as Flask-Session would.
        let Ok(written) = format.encode(&map) else {
            continue;
        };
        let again = match format.decode(&written) {
            Ok(again) => again,
            Err(error) => panic!("{map:?} was written as {written:?}, which is refused: {error}"),
        };
        let rewritten = format.encode(&again).unwrap_or_else(|error| {
            panic!("{again:?}, read from what was written, is refused: {error}")
        });
        assert_eq!(rewritten, written, "{map:?} then {again:?}");
        // Read as msgpack (a map's first byte, which no JSON text starts
        // with; the JSON a msgpack read falls back to may hold forms msgpack
        // writes otherwise, `-0` as 0), it reads back as the same value.
        // Compared as shown: `NaN` is not equal to itself.
        let msgpack_map = matches!(data.first(), Some(0x80..=0x8f | 0xde | 0xdf));
        if format == SerializationFormat::Msgpack && msgpack_map {
            assert_eq!(
                format!("{again:?}"),
                format!("{map:?}"),
                "written as {written:?}"
            );
        }
    }
});
