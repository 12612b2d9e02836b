//! Cookie decoding on hostile input. Every input is used four ways:
//!
//! 1. as a whole cookie value for `CookieCodec::decode` and `decode_unverified`;
//! 2. as the payload of a cookie correctly signed with the codec's key, so
//!    base64, zlib and the JSON reader behind the signature are reached;
//! 3. and 4. as JSON text that Flask would have written, signed, plain and
//!    compressed: decoding must agree exactly with `tagged::from_str`.
//!
//! Whatever decodes must encode again and decode to the same session, in a
//! signed and in an encrypted cookie; the input as an encrypted cookie never
//! opens (nothing the fuzzer makes carries a valid tag) and never panics.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use tessera::{
    decode_unverified, tagged, CookieCodec, DecodeError, Map, Value, DEFAULT_MAX_PAYLOAD_SIZE,
};
use tessera_fuzz::{sign_timed, signed_json_cookie, COOKIE_SALT, KEY};

/// When the seeds and the signed inputs were signed, and when they are read.
const SIGNED_AT: u64 = 1_700_000_000;
const NOW: u64 = SIGNED_AT + 100;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn codec() -> CookieCodec {
    CookieCodec::new(&KEY.into(), &[])
}

fn encrypted_codec() -> CookieCodec {
    CookieCodec::encrypted(&KEY.into(), &[], "session")
}

/// A decoded session must survive the codec's own encoding unchanged.
fn assert_reencodes(codec: &CookieCodec, data: &Map) {
    for codec in [codec, &encrypted_codec()] {
        let cookie = codec.encode(data, now());
        match codec.decode(&cookie, now()) {
            Ok(again) => assert_eq!(&again.data, data, "re-encoded as {cookie}"),
            Err(error) => panic!("re-encoded session refused ({error}): {cookie}"),
        }
    }
}

fn same_outcome(a: &Result<Map, DecodeError>, b: &Result<Map, DecodeError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let codec = codec();

    // 1. The input as a cookie value: only a seed (a real cookie) verifies.
    let verified = codec.decode(text, now()).map(|d| d.data);
    let unverified = decode_unverified(text, DEFAULT_MAX_PAYLOAD_SIZE).map(|d| d.data);
    if let Ok(map) = &verified {
        assert!(
            matches!(&unverified, Ok(other) if other == map),
            "verified but unverified decoding disagrees: {unverified:?}"
        );
        assert_reencodes(&codec, map);
    }

    if let Ok(opened) = encrypted_codec().decode(text, now()) {
        panic!("an encrypted cookie was forged: {opened:?}");
    }

    // 2. The input as the payload of a correctly signed cookie.
    let cookie = sign_timed(text, COOKIE_SALT, SIGNED_AT);
    let verified = codec.decode(&cookie, now());
    if let Err(DecodeError::Signature(error)) = &verified {
        panic!("a correctly signed cookie was refused: {error}");
    }
    let verified = verified.map(|d| d.data);
    let unverified = decode_unverified(&cookie, DEFAULT_MAX_PAYLOAD_SIZE).map(|d| d.data);
    assert!(
        same_outcome(&verified, &unverified),
        "verified {verified:?} but unverified {unverified:?}"
    );
    if let Ok(map) = &verified {
        assert_reencodes(&codec, map);
    }

    // 3. and 4. The input as the JSON inside a Flask cookie.
    let expected = tagged::from_str(text);
    for compressed in [false, true] {
        let cookie = signed_json_cookie(text, compressed, SIGNED_AT);
        let decoded = codec.decode(&cookie, now());
        match (&expected, &decoded) {
            (Ok(Value::Dict(map)), Ok(decoded)) => {
                assert_eq!(&decoded.data, map);
                assert_eq!(decoded.signed_at, Some(SIGNED_AT));
                assert_reencodes(&codec, map);
            }
            (Ok(Value::Dict(_)), Err(error)) => panic!("a valid session was refused: {error}"),
            (Ok(_), Err(DecodeError::NotAnObject)) | (Err(_), Err(DecodeError::Json(_))) => {}
            (expected, decoded) => {
                panic!("tagged::from_str gave {expected:?} but the codec {decoded:?}")
            }
        }
    }
});
