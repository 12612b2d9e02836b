//! Flask-Session's stored formats (msgpack and JSON, as `FlaskSessionRedisStore`
//! reads what a Flask app, or anyone who can write to its Redis, stored) on
//! arbitrary bytes: reading never panics, in either format first, and what
//! is read and can be written again reads back to the same value, which is
//! written again byte for byte.
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
        let rewritten = format
            .encode(&again)
            .unwrap_or_else(|error| panic!("{again:?}, read from what was written, is refused: {error}"));
        assert_eq!(rewritten, written, "{map:?} then {again:?}");
    }
});
