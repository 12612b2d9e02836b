//! The signed session cookie, byte-compatible with Flask's
//! `SecureCookieSessionInterface`: tagged JSON, zlib when it helps, URL-safe
//! base64, then an itsdangerous timestamp signature.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::key::SecretKey;
use crate::signing::{SignatureError, Signer, B64, SIGNATURE_SUFFIX_LEN};
use crate::tagged::{self, ParseError};
use crate::value::{Map, Value};

/// Flask's salt for session cookies.
pub const DEFAULT_SALT: &str = "cookie-session";

/// The default bound on a decoded payload (after inflating): 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_SIZE: usize = 1024 * 1024;

/// Why a cookie was refused. Every variant means "start an empty session".
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The signature or timestamp is missing, wrong or out of date.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The payload is not valid base64, or not valid zlib data.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The payload inflates (or decodes) to more than the allowed size.
    #[error("too large: payload exceeds {limit} bytes")]
    TooLarge {
        /// The bound that was exceeded.
        limit: usize,
    },
    /// The payload is not valid tagged JSON.
    #[error("malformed: {0}")]
    Json(#[from] ParseError),
    /// The payload is valid JSON but not an object.
    #[error("not an object: the payload is valid JSON but not a JSON object")]
    NotAnObject,
}

/// A session decoded from a cookie.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The session's contents.
    pub data: Map,
    /// When the cookie was signed, in Unix seconds (absent for unverified decoding).
    pub signed_at: Option<u64>,
}

/// Encodes and decodes Flask session cookies for one set of keys.
#[derive(Debug, Clone)]
pub struct CookieCodec {
    signer: Signer,
    max_age: Duration,
    max_payload_size: usize,
}

impl CookieCodec {
    /// A codec with Flask's salt, a max age of 31 days and a 1 MiB payload bound.
    /// `fallbacks` are in `SECRET_KEY_FALLBACKS` order: oldest first.
    pub fn new(secret_key: &SecretKey, fallbacks: &[SecretKey]) -> Self {
        Self::with_salt(secret_key, fallbacks, DEFAULT_SALT)
    }

    /// A codec with another salt (Flask-Session's signed ids use `flask-session`).
    pub fn with_salt(secret_key: &SecretKey, fallbacks: &[SecretKey], salt: &str) -> Self {
        Self {
            signer: Signer::new(secret_key, fallbacks, salt.as_bytes()),
            max_age: Duration::from_secs(crate::config::DEFAULT_LIFETIME_SECS),
            max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
        }
    }

    /// Cookies signed longer ago than this are refused (Flask uses
    /// `PERMANENT_SESSION_LIFETIME`, for every session).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Payloads larger than this after base64 decoding and inflating are refused.
    pub fn max_payload_size(mut self, bytes: usize) -> Self {
        self.max_payload_size = bytes;
        self
    }

    /// The cookie value for `data`, signed at `now`.
    pub fn encode(&self, data: &Map, now: SystemTime) -> String {
        let payload = encode_payload(&tagged::map_to_string(data));
        self.signer.sign_in_place(payload, now)
    }

    /// Verifies and decodes a cookie value.
    pub fn decode(&self, cookie: &str, now: SystemTime) -> Result<Decoded, DecodeError> {
        let (payload, signed_at) = self.signer.verify(cookie, self.max_age, now)?;
        let data = decode_payload(payload, self.max_payload_size)?;
        Ok(Decoded {
            data,
            signed_at: Some(signed_at),
        })
    }
}

/// Decodes a cookie's payload **without checking its signature**: anyone can
/// read a signed cookie, which is what this shows. Never trust the result.
pub fn decode_unverified(cookie: &str, max_payload_size: usize) -> Result<Decoded, DecodeError> {
    // The payload is everything before the timestamp and signature; a
    // compressed payload starts with '.', so split from the right.
    let mut parts = cookie.rsplitn(3, '.');
    let (_signature, _timestamp, payload) = (parts.next(), parts.next(), parts.next());
    let payload = payload.ok_or(DecodeError::Malformed("not a signed cookie"))?;
    let data = decode_payload(payload, max_payload_size)?;
    Ok(Decoded {
        data,
        signed_at: None,
    })
}

thread_local! {
    // A zlib stream allocates a few hundred KiB of state; building one per
    // cookie dominated encoding, so each thread keeps one and resets it.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), true));
    static DECOMPRESSOR: RefCell<Decompress> = RefCell::new(Decompress::new(true));
}

/// Tagged JSON to payload text: zlib only when it saves at least two bytes,
/// marked by a leading '.'.
fn encode_payload(json: &str) -> String {
    let compressed = compress_if_smaller(json.as_bytes());
    let bytes = compressed.as_deref().unwrap_or(json.as_bytes());
    // Room for the signature too, which is appended to this string.
    let mut out = String::with_capacity(1 + bytes.len().div_ceil(3) * 4 + SIGNATURE_SUFFIX_LEN);
    if compressed.is_some() {
        out.push('.');
    }
    B64.encode_string(bytes, &mut out);
    out
}

/// The zlib form of `data` (default level, as Python's `zlib.compress`) if it
/// is at least two bytes shorter; otherwise `None`, found without producing
/// more output than that.
fn compress_if_smaller(data: &[u8]) -> Option<Vec<u8>> {
    if crate::deflate_bound::zlib_cannot_save_two_bytes(data) {
        return None;
    }
    let limit = data.len().checked_sub(2)?;
    COMPRESSOR.with(|compressor| {
        let mut compressor = compressor.borrow_mut();
        compressor.reset();
        // compress_vec writes only into spare capacity, so the stream stops
        // at the limit if the result would not be small enough.
        let mut out = Vec::with_capacity(limit);
        let status = compressor
            .compress_vec(data, &mut out, FlushCompress::Finish)
            .ok()?;
        (status == Status::StreamEnd && out.len() <= limit).then_some(out)
    })
}

fn decode_payload(payload: &str, limit: usize) -> Result<Map, DecodeError> {
    let (compressed, text) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    // Base64 decodes to three quarters of its length; refuse before allocating.
    if text.len() / 4 * 3 > limit.saturating_add(3) {
        return Err(DecodeError::TooLarge { limit });
    }
    let bytes = B64
        .decode(text)
        .map_err(|_| DecodeError::Malformed("payload is not base64"))?;
    let json = if compressed {
        inflate_bounded(&bytes, limit)?
    } else {
        if bytes.len() > limit {
            return Err(DecodeError::TooLarge { limit });
        }
        bytes
    };
    let json =
        std::str::from_utf8(&json).map_err(|_| DecodeError::Malformed("payload is not UTF-8"))?;
    match tagged::from_str(json)? {
        Value::Dict(map) => Ok(map),
        _ => Err(DecodeError::NotAnObject),
    }
}

/// Inflates zlib data, stopping as soon as the output passes `limit`, so a
/// zlib bomb costs at most `limit` bytes and the time to produce them.
fn inflate_bounded(bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    const MALFORMED: DecodeError = DecodeError::Malformed("payload is not valid zlib data");
    DECOMPRESSOR.with(|decompressor| {
        let mut decompressor = decompressor.borrow_mut();
        decompressor.reset(true);
        let ceiling = limit.saturating_add(1);
        let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).clamp(64, ceiling));
        loop {
            let consumed = usize::try_from(decompressor.total_in()).map_err(|_| MALFORMED)?;
            let produced = out.len();
            let status = decompressor
                .decompress_vec(&bytes[consumed..], &mut out, FlushDecompress::None)
                .map_err(|_| MALFORMED)?;
            if out.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            if status == Status::StreamEnd {
                return Ok(out);
            }
            if out.len() == out.capacity() {
                out.reserve_exact(out.capacity().min(ceiling - out.len()).max(1));
            } else if decompressor.total_in() as usize == consumed && out.len() == produced {
                // No progress with room to write: the stream is truncated.
                return Err(MALFORMED);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::UNIX_EPOCH;

    use flate2::write::ZlibEncoder;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn alice() -> Map {
        Map::from([
            ("user_id".to_owned(), 42.into()),
            ("name".to_owned(), "alice".into()),
        ])
    }

    #[test]
    fn worked_example_from_flask() {
        let codec = CookieCodec::new(&"dev-secret-key".into(), &[]);
        let cookie = codec.encode(&alice(), at(1_700_000_000));
        assert_eq!(
            cookie,
            "eyJuYW1lIjoiYWxpY2UiLCJ1c2VyX2lkIjo0Mn0.ZVPxAA.oBF4FsEPGc1aqRIni6RktBSluqI"
        );
        let decoded = codec.decode(&cookie, at(1_700_000_100)).expect("decodes");
        assert_eq!(decoded.data, alice());
        assert_eq!(decoded.signed_at, Some(1_700_000_000));
    }

    #[test]
    fn compresses_only_when_it_helps() {
        let codec = CookieCodec::new(&"k".into(), &[]);
        let big = Map::from([("a".to_owned(), "a".repeat(2000).into())]);
        let cookie = codec.encode(&big, at(10));
        assert!(cookie.starts_with('.'), "{cookie}");
        assert!(cookie.len() < 200);
        assert_eq!(codec.decode(&cookie, at(10)).expect("decodes").data, big);
        assert!(!codec.encode(&alice(), at(10)).starts_with('.'));
        assert_eq!(
            decode_unverified(&cookie, 1 << 20).expect("decodes").data,
            big
        );
    }

    #[test]
    fn zlib_bomb_is_refused() {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        let json = format!("{{\"a\":\"{}\"}}", "a".repeat(8 * 1024 * 1024));
        encoder.write_all(json.as_bytes()).expect("compresses");
        let bomb = format!(".{}", B64.encode(encoder.finish().expect("compresses")));
        let signer = Signer::new(&"k".into(), &[], DEFAULT_SALT.as_bytes());
        let cookie = signer.sign(&bomb, at(10));
        let codec = CookieCodec::new(&"k".into(), &[]);
        let result = codec.decode(&cookie, at(10));
        assert!(matches!(
            result,
            Err(DecodeError::TooLarge {
                limit: DEFAULT_MAX_PAYLOAD_SIZE
            })
        ));
    }

    #[test]
    fn inflate_handles_truncation_and_limits() {
        let json = format!("{{\"a\":\"{}\"}}", "xy".repeat(5000));
        let compressed = compress_if_smaller(json.as_bytes()).expect("compressible");
        assert_eq!(
            inflate_bounded(&compressed, 1 << 20).expect("inflates"),
            json.as_bytes()
        );
        assert!(matches!(
            inflate_bounded(&compressed, json.len() - 1),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(
            inflate_bounded(&compressed, json.len()).expect("fits exactly"),
            json.as_bytes()
        );
        for cut in [0, 1, 2, compressed.len() / 2, compressed.len() - 1] {
            assert!(
                matches!(
                    inflate_bounded(&compressed[..cut], 1 << 20),
                    Err(DecodeError::Malformed(_))
                ),
                "truncated at {cut}"
            );
        }
        assert!(inflate_bounded(b"not zlib at all", 1 << 20).is_err());
        // The same thread-local stream is reused correctly after an error.
        assert_eq!(
            inflate_bounded(&compressed, 1 << 20).expect("inflates"),
            json.as_bytes()
        );
        assert_eq!(compress_if_smaller(b"ab"), None);
        assert_eq!(compress_if_smaller(b""), None);
    }

    #[test]
    fn signed_non_objects_are_refused() {
        let signer = Signer::new(&"k".into(), &[], DEFAULT_SALT.as_bytes());
        let codec = CookieCodec::new(&"k".into(), &[]);
        for json in ["[1,2]", "42", "\"s\"", "null", "{\" t\":[1]}"] {
            let cookie = signer.sign(&B64.encode(json), at(10));
            assert!(
                matches!(codec.decode(&cookie, at(10)), Err(DecodeError::NotAnObject)),
                "{json}"
            );
        }
        let cookie = signer.sign(&B64.encode("{nope"), at(10));
        assert!(matches!(
            codec.decode(&cookie, at(10)),
            Err(DecodeError::Json(_))
        ));
    }
}
