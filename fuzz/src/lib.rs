//! Helpers shared by the fuzz targets: itsdangerous' signatures, written
//! independently of tessera's (crate-private) signer, so a target can sign
//! arbitrary payloads and reach the parsers behind the signature check.

use std::io::Write as _;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The secret key every target uses (a Flask tutorial's; weak on purpose,
/// the fuzzers care about parsing, not secrecy).
pub const KEY: &str = "dev-secret-key";

/// Flask's salt for session cookies.
pub const COOKIE_SALT: &str = "cookie-session";

/// Flask-Session's salt for signed session ids.
pub const ID_SALT: &str = "flask-session";

fn mac(secret: &str, salt: &str) -> HmacSha1 {
    let mut derive = HmacSha1::new_from_slice(secret.as_bytes()).expect("any key length");
    derive.update(salt.as_bytes());
    let derived = derive.finalize().into_bytes();
    HmacSha1::new_from_slice(&derived).expect("any key length")
}

/// `payload.timestamp.signature` as itsdangerous' `TimestampSigner` writes it.
pub fn sign_timed(payload: &str, salt: &str, unix_seconds: u64) -> String {
    let bytes = unix_seconds.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mut out = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&bytes[first..]));
    let mut mac = mac(KEY, salt);
    mac.update(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    out
}

/// `value.signature` as itsdangerous' plain `Signer` writes it.
pub fn sign_untimed(value: &str, salt: &str) -> String {
    let mut mac = mac(KEY, salt);
    mac.update(value.as_bytes());
    format!(
        "{value}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// The cookie payload Flask would write for `json`: base64, or zlib then
/// base64 behind a '.' when `compressed`.
pub fn payload(json: &str, compressed: bool) -> String {
    if !compressed {
        return URL_SAFE_NO_PAD.encode(json);
    }
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(json.as_bytes())
        .expect("writes to memory");
    let zlib = encoder.finish().expect("writes to memory");
    format!(".{}", URL_SAFE_NO_PAD.encode(zlib))
}

/// A cookie signed at `unix_seconds` whose payload is `json`, as Flask
/// would have made it from that JSON text.
pub fn signed_json_cookie(json: &str, compressed: bool, unix_seconds: u64) -> String {
    sign_timed(&payload(json, compressed), COOKIE_SALT, unix_seconds)
}
