//! Flask's tagged JSON reader on arbitrary text: it never panics, and
//! whatever it accepts is written back to text that reads as the same value,
//! which the writer then reproduces byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::tagged;
use tessera::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = tagged::from_str(text) else {
        return;
    };
    let written = tagged::to_string(&value);
    let again = match tagged::from_str(&written) {
        Ok(again) => again,
        Err(error) => panic!("{value:?} was written as {written:?}, which is refused: {error}"),
    };
    assert_eq!(again, value, "written as {written:?}");
    assert_eq!(tagged::to_string(&again), written);
    if let Value::Dict(map) = &value {
        assert_eq!(tagged::map_to_string(map), written);
    }
});
