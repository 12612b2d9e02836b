//! The session cookie. Signed (the default), it is byte-compatible with
//! Flask's `SecureCookieSessionInterface`: tagged JSON, zlib when it helps,
//! URL-safe base64, then an itsdangerous timestamp signature. Encrypted
//! (`SESSION_TYPE=encrypted`), the same tagged JSON is sealed with
//! XChaCha20-Poly1305; the format is described in `encrypted.rs`.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::{Duration, SystemTime};

use flate2::{Compress, Compression, FlushCompress, Status};
use libdeflater::{DecompressionError, Decompressor};

use crate::encrypted::CookieCipher;
use crate::key::SecretKey;
use crate::map::Map;
use crate::scratch;
use crate::signing::{self, decode_base64, encode_base64, SignatureError, Signer};
use crate::tagged::{self, ParseError};

/// Flask's salt for session cookies.
pub const DEFAULT_SALT: &str = "cookie-session";

/// The default bound on a decoded payload (after inflating): 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_SIZE: usize = 1024 * 1024;

/// Why a cookie was refused. Every variant means "start an empty session".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// No key authenticates this encrypted cookie under this cookie name: it
    /// was sealed with another key or for another cookie name, or changed.
    #[error("cannot decrypt: no key opens this cookie under this cookie name (sealed with another key, salt or cookie name, or tampered with)")]
    Decrypt,
    /// The encrypted cookie's header byte names a format version or flags
    /// this version of tessera does not write.
    #[error("unknown format: encrypted cookie header byte {0:#04x} is not one this version reads")]
    UnknownFormat(u8),
}

/// A session decoded from a cookie.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The session's contents.
    pub data: Map,
    /// When the cookie was signed (or sealed, for an encrypted cookie), in
    /// Unix seconds (absent for unverified decoding).
    pub signed_at: Option<u64>,
}

/// Encodes and decodes session cookies for one set of keys: signed as Flask
/// signs them ([`new`](Self::new)), or encrypted ([`encrypted`](Self::encrypted)).
#[derive(Debug, Clone)]
pub struct CookieCodec {
    mode: Mode,
    max_age: Duration,
    max_payload_size: usize,
}

#[derive(Debug, Clone)]
enum Mode {
    Signed { signer: Signer },
    Encrypted { cipher: CookieCipher },
}

/// See [`CookieCodec::new`]'s panics.
fn refuse_empty_keys(secret_key: &SecretKey, fallbacks: &[SecretKey]) {
    assert!(
        !secret_key.as_bytes().is_empty(),
        "CookieCodec: the secret key is empty, and anyone can sign cookies with an empty key"
    );
    assert!(
        fallbacks.iter().all(|key| !key.as_bytes().is_empty()),
        "CookieCodec: a fallback key is empty, and anyone can sign cookies with an empty key"
    );
}

impl CookieCodec {
    /// A codec with Flask's salt, a max age of 31 days and a 1 MiB payload bound.
    /// `fallbacks` are in `SECRET_KEY_FALLBACKS` order: oldest first.
    ///
    /// # Panics
    ///
    /// If `secret_key` or a fallback is empty: anyone can sign (or seal) a
    /// cookie with an empty key, so with one every forged session would
    /// read as genuine. (Flask has no sessions then; `SessionConfig` refuses
    /// such keys with an error.) The same holds for every constructor.
    pub fn new(secret_key: &SecretKey, fallbacks: &[SecretKey]) -> Self {
        Self::with_salt(secret_key, fallbacks, DEFAULT_SALT)
    }

    /// A codec with another salt (Flask-Session's signed ids use `flask-session`).
    pub fn with_salt(secret_key: &SecretKey, fallbacks: &[SecretKey], salt: &str) -> Self {
        refuse_empty_keys(secret_key, fallbacks);
        Self::with_mode(Mode::Signed {
            signer: Signer::new(secret_key, fallbacks, salt.as_bytes()),
        })
    }

    /// An encrypting codec (`SESSION_TYPE=encrypted`): the session is sealed
    /// with XChaCha20-Poly1305, so the visitor can neither read nor change it,
    /// and the cookie is bound to `cookie_name`, which must be the name it is
    /// sent under. The key is derived from `secret_key` with Flask's salt;
    /// `fallbacks` (oldest first) still open older cookies. Not readable by
    /// Flask. Compression is off; see [`encrypted_compression`](Self::encrypted_compression).
    pub fn encrypted(secret_key: &SecretKey, fallbacks: &[SecretKey], cookie_name: &str) -> Self {
        Self::encrypted_with_salt(secret_key, fallbacks, DEFAULT_SALT, cookie_name)
    }

    /// [`encrypted`](Self::encrypted) with another salt in the key derivation.
    pub fn encrypted_with_salt(
        secret_key: &SecretKey,
        fallbacks: &[SecretKey],
        salt: &str,
        cookie_name: &str,
    ) -> Self {
        refuse_empty_keys(secret_key, fallbacks);
        Self::with_mode(Mode::Encrypted {
            cipher: CookieCipher::new(secret_key, fallbacks, salt.as_bytes(), cookie_name),
        })
    }

    fn with_mode(mode: Mode) -> Self {
        Self {
            mode,
            max_age: Duration::from_secs(crate::config::DEFAULT_LIFETIME_SECS),
            max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
        }
    }

    /// Whether this codec encrypts (rather than signs) cookies.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.mode, Mode::Encrypted { .. })
    }

    /// Encrypted cookies only: zlib-compress the session before sealing it
    /// when that makes it smaller (`TESSERA_ENCRYPTED_COMPRESSION`). Off by
    /// default. Signed cookies are always compressed as Flask does, and
    /// compressed encrypted cookies are opened whatever this says.
    ///
    /// **Warning:** encryption hides the content but not the length. When a
    /// session holds a secret (a CSRF token, an API key) beside data an
    /// attacker can influence (a search term, a form field echoed into the
    /// session), compressing lets the attacker guess the secret piece by
    /// piece from how the cookie's length changes (the CRIME and BREACH
    /// attacks). Enable it only for sessions that hold no such mix, for
    /// example to fit a large session in a cookie.
    pub fn encrypted_compression(mut self, enabled: bool) -> Self {
        if let Mode::Encrypted { cipher } = self.mode {
            self.mode = Mode::Encrypted {
                cipher: cipher.compress(enabled),
            };
        }
        self
    }

    /// Cookies signed (or sealed) longer ago than this are refused (Flask uses
    /// `PERMANENT_SESSION_LIFETIME`, for every session).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Payloads larger than this after base64 decoding, decrypting and
    /// inflating are refused.
    pub fn max_payload_size(mut self, bytes: usize) -> Self {
        self.max_payload_size = bytes;
        self
    }

    /// The cookie value for `data`, signed (or sealed) at `now` with the current key.
    pub fn encode(&self, data: &Map, now: SystemTime) -> String {
        match &self.mode {
            Mode::Signed { .. } => scratch::with(&scratch::COOKIE, |out| {
                self.encode_into(data, now, out);
                out.as_str().to_owned()
            }),
            Mode::Encrypted { cipher } => cipher.encode(data, now),
        }
    }

    /// Appends the cookie value for `data`, as [`encode`](Self::encode)
    /// returns it, to `out`.
    /// Returns whether the cookie can be read back: whether the session's
    /// JSON is within the payload size this codec reads (compressed, a far
    /// larger session fits in a cookie).
    pub(crate) fn encode_into(&self, data: &Map, now: SystemTime, out: &mut String) -> bool {
        let json_len = match &self.mode {
            Mode::Signed { signer } => {
                let start = out.len();
                let json_len = scratch::with(&scratch::JSON, |json| {
                    tagged::write_dict(json, data);
                    write_payload(json, out);
                    json.len()
                });
                signer.sign_appended(out, start, now);
                json_len
            }
            Mode::Encrypted { cipher } => {
                let (cookie, json_len) = cipher.encode_measured(data, now);
                out.push_str(&cookie);
                json_len
            }
        };
        json_len <= self.max_payload_size
    }

    /// Appends the cookie value for a session read unchanged from a signed
    /// cookie whose payload (as [`decode_keeping_payload`] returns it) is
    /// `payload`, signed at `now` with the current key: the payload already
    /// holds the session's data, so only the timestamp and the signature are
    /// new. Returns false, appending nothing, for an encrypted codec, whose
    /// cookies carry no payload to reuse.
    ///
    /// [`decode_keeping_payload`]: Self::decode_keeping_payload
    pub(crate) fn resign_into(&self, payload: &str, now: SystemTime, out: &mut String) -> bool {
        match &self.mode {
            Mode::Signed { signer } => {
                let start = out.len();
                out.push_str(payload);
                signer.sign_appended(out, start, now);
                true
            }
            Mode::Encrypted { .. } => false,
        }
    }

    /// Verifies (or decrypts) and decodes a cookie value. Any error means
    /// the cookie must be ignored.
    pub fn decode(&self, cookie: &str, now: SystemTime) -> Result<Decoded, DecodeError> {
        self.decode_keeping_payload(cookie, now)
            .map(|(decoded, _)| decoded)
    }

    /// Whether checking `cookie` costs a MAC or a decryption per key: values
    /// that cannot be a cookie of this codec's kind are refused before any.
    pub(crate) fn checks_keys_for(&self, cookie: &str) -> bool {
        match &self.mode {
            Mode::Signed { .. } => cookie.contains('.'),
            Mode::Encrypted { .. } => crate::encrypted::may_reach_the_keys(cookie),
        }
    }

    /// [`decode`](Self::decode), also returning a signed cookie's payload
    /// (the part before the timestamp), for
    /// [`resign_into`](Self::resign_into); `None` for an encrypted cookie.
    pub(crate) fn decode_keeping_payload<'a>(
        &self,
        cookie: &'a str,
        now: SystemTime,
    ) -> Result<(Decoded, Option<&'a str>), DecodeError> {
        match &self.mode {
            Mode::Signed { signer } => {
                let (payload, signed_at) = signer.verify(cookie, self.max_age, now)?;
                let data = decode_payload(payload, self.max_payload_size)?;
                let decoded = Decoded {
                    data,
                    signed_at: Some(signed_at),
                };
                Ok((decoded, Some(payload)))
            }
            Mode::Encrypted { cipher } => cipher
                .decode(cookie, self.max_age, self.max_payload_size, now)
                .map(|decoded| (decoded, None)),
        }
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
    // Encoding stays with zlib, the library Python's zlib module wraps, so
    // whether compression saves Flask's two bytes is decided as Flask would.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), true));
    // Any correct inflater gives the same bytes; libdeflate's keeps its
    // decode tables between calls.
    static INFLATER: RefCell<Decompressor> = RefCell::new(Decompressor::new());
}

/// Appends the payload text for tagged JSON: zlib only when it saves at
/// least two bytes, marked by a leading '.'.
fn write_payload(json: &str, out: &mut String) {
    scratch::with(&scratch::COMPRESSED, |compressed| {
        if compress_into_if_smaller(json.as_bytes(), compressed) {
            out.push('.');
            encode_base64(compressed, out);
        } else {
            encode_base64(json.as_bytes(), out);
        }
    });
}

/// The zlib form of `data` (default level, as Python's `zlib.compress`) if it
/// is at least two bytes shorter; otherwise `None`, found without producing
/// more output than that.
pub(crate) fn compress_if_smaller(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    compress_into_if_smaller(data, &mut out).then_some(out)
}

/// [`compress_if_smaller`] into `out`, whose contents are replaced: true
/// when `out` holds the smaller zlib form.
fn compress_into_if_smaller(data: &[u8], out: &mut Vec<u8>) -> bool {
    if crate::deflate_bound::zlib_cannot_save_two_bytes(data) {
        return false;
    }
    let Some(limit) = data.len().checked_sub(2) else {
        return false;
    };
    COMPRESSOR.with(|compressor| {
        let mut compressor = compressor.borrow_mut();
        compressor.reset();
        // The output ends at the limit, so the stream stops there if the
        // result would not be small enough.
        out.clear();
        out.resize(limit, 0);
        let status = compressor.compress(data, out, FlushCompress::Finish);
        let written = usize::try_from(compressor.total_out()).unwrap_or(usize::MAX);
        out.truncate(written);
        matches!(status, Ok(Status::StreamEnd)) && written <= limit
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
    const NOT_BASE64: DecodeError = DecodeError::Malformed("payload is not base64");
    // A typical session's payload fits on the stack, which is cheaper to
    // reach than the per-thread buffer larger ones use. Base64 that is not
    // canonical (no signer writes it) takes the general path below.
    if text.len() <= SMALL_PAYLOAD / 3 * 4 {
        let mut bytes = [MaybeUninit::uninit(); SMALL_PAYLOAD];
        if let Some(bytes) = signing::decode_canonical_base64_uninit(text, &mut bytes) {
            return session_from_payload(bytes, compressed, limit);
        }
    }
    scratch::with(&scratch::PAYLOAD, |bytes| {
        decode_base64(text, bytes).map_err(|_| NOT_BASE64)?;
        session_from_payload(bytes, compressed, limit)
    })
}

/// The largest payload, in bytes, decoded on the stack.
const SMALL_PAYLOAD: usize = 256;

/// A session from a cookie's decoded payload, inflated first if
/// `compressed`; either way no more than `limit` bytes of JSON are read.
pub(crate) fn session_from_payload(
    payload: &[u8],
    compressed: bool,
    limit: usize,
) -> Result<Map, DecodeError> {
    if compressed {
        return scratch::with(&scratch::INFLATED, |json| {
            inflate_bounded_into(payload, limit, json)?;
            parse_session(json)
        });
    }
    if payload.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    parse_session(payload)
}

/// A session from its tagged JSON, which must be an object.
pub(crate) fn parse_session(json: &[u8]) -> Result<Map, DecodeError> {
    let json =
        std::str::from_utf8(json).map_err(|_| DecodeError::Malformed("payload is not UTF-8"))?;
    tagged::dict_from_str(json)?.ok_or(DecodeError::NotAnObject)
}

#[cfg(test)]
pub(crate) fn inflate_bounded(bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    inflate_bounded_into(bytes, limit, &mut out)?;
    Ok(out)
}

/// Inflates zlib data into `out` (empty), refusing output past `limit`, so a
/// zlib bomb costs at most `limit` bytes and the time to produce them.
///
/// libdeflate inflates a whole stream into room given up front (about twice
/// as fast as zlib's streaming inflate on a cookie): it starts from a guess
/// and, when that is too small, starts over with four times the room, up to
/// one byte past the limit. Like zlib, it stops at the end of the stream
/// and ignores what follows.
fn inflate_bounded_into(bytes: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    const MALFORMED: DecodeError = DecodeError::Malformed("payload is not valid zlib data");
    // Sessions' JSON rarely inflates to more than 8 times its zlib size.
    const FIRST_GUESS_RATIO: usize = 8;
    const SMALLEST_ROOM: usize = 1024;
    let ceiling = limit.saturating_add(1);
    let mut room = bytes
        .len()
        .saturating_mul(FIRST_GUESS_RATIO)
        .clamp(SMALLEST_ROOM.min(ceiling), ceiling);
    INFLATER.with(|inflater| {
        let mut inflater = inflater.borrow_mut();
        loop {
            out.clear();
            out.resize(room, 0);
            match inflater.zlib_decompress(bytes, out) {
                Ok(written) => {
                    out.truncate(written);
                    return if written > limit {
                        Err(DecodeError::TooLarge { limit })
                    } else {
                        Ok(())
                    };
                }
                Err(DecompressionError::InsufficientSpace) if room < ceiling => {
                    room = room.saturating_mul(4).min(ceiling);
                }
                Err(DecompressionError::InsufficientSpace) => {
                    return Err(DecodeError::TooLarge { limit })
                }
                Err(DecompressionError::BadData) => return Err(MALFORMED),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use crate::signing::B64;
    use crate::value::Value;
    use std::io::Write as _;
    use std::time::UNIX_EPOCH;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use flate2::write::ZlibEncoder;

    use super::*;

    /// An empty key, current or fallback, signs cookies anyone can make:
    /// refused at once, as `SessionConfig` refuses it.
    #[test]
    fn empty_keys_are_refused() {
        let builds: [fn(); 4] = [
            || drop(CookieCodec::new(&SecretKey::from(""), &[])),
            || {
                drop(CookieCodec::new(
                    &SecretKey::from("k"),
                    &[SecretKey::from("")],
                ))
            },
            || drop(CookieCodec::encrypted(&SecretKey::from(""), &[], "session")),
            || {
                drop(CookieCodec::encrypted(
                    &SecretKey::from("k"),
                    &[SecretKey::from("")],
                    "session",
                ))
            },
        ];
        for build in builds {
            let refused = std::panic::catch_unwind(build).expect_err("refused");
            let message = refused
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| refused.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            assert!(message.contains("anyone can sign"), "{message}");
        }
    }

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

    /// zlib's streaming inflate, as the reference: the whole stream, or
    /// `None` when zlib refuses it.
    fn zlib_inflate(bytes: &[u8]) -> Option<Vec<u8>> {
        let mut inflater = flate2::Decompress::new(true);
        let mut out = Vec::with_capacity(1 << 16);
        match inflater.decompress_vec(bytes, &mut out, flate2::FlushDecompress::Finish) {
            Ok(Status::StreamEnd) => Some(out),
            _ => None,
        }
    }

    #[test]
    fn inflating_agrees_with_zlib_on_damaged_streams() {
        // A small deterministic generator: the test must not depend on luck.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let texts = [
            r#"{"_permanent":true,"user":"alice","cart":[1,2,3,4,5]}"#.repeat(3),
            "z".repeat(40_000),
            (0..600)
                .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
                .collect(),
        ];
        let mut refused = 0;
        for text in &texts {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(text.as_bytes()).expect("compresses");
            let stream = encoder.finish().expect("compresses");
            for round in 0..400 {
                let mut damaged = stream.clone();
                // Change one to three bytes; now and then add or cut a tail.
                for _ in 0..=(next() % 3) {
                    let at = (next() as usize) % damaged.len();
                    damaged[at] ^= 1 << (next() % 8);
                }
                match round % 10 {
                    0 => damaged.extend_from_slice(b"trailing"),
                    1 => damaged.truncate(damaged.len() - 1 - (next() as usize) % 4),
                    _ => {}
                }
                let expected = zlib_inflate(&damaged);
                let got = inflate_bounded(&damaged, 1 << 20).ok();
                let context = format!("round {round} of a {}-byte text", text.len());
                match (&got, &expected) {
                    (Some(got), Some(expected)) => assert_eq!(got, expected, "{context}"),
                    (None, Some(_)) => panic!("{context}: refused what zlib inflates"),
                    // libdeflate decodes a few codes zlib calls invalid; what
                    // it accepts still passed the Adler-32 check.
                    (Some(got), None) => assert_eq!(got, text.as_bytes(), "{context}"),
                    (None, None) => refused += 1,
                }
            }
            // Trailing bytes after a whole stream are ignored, as zlib does.
            let mut tailed = stream.clone();
            tailed.extend_from_slice(b"\x00garbage");
            assert_eq!(
                inflate_bounded(&tailed, 1 << 20).expect("inflates"),
                text.as_bytes()
            );
        }
        assert!(
            refused > 0,
            "no damaged stream was refused: the test damaged nothing"
        );
    }

    #[test]
    fn inflating_respects_limits_below_the_first_guess() {
        let compressed = compress_if_smaller(&[b'q'; 100]).expect("compressible");
        for limit in [0, 1, 99] {
            assert!(matches!(
                inflate_bounded(&compressed, limit),
                Err(DecodeError::TooLarge { limit: l }) if l == limit
            ));
        }
        assert_eq!(
            inflate_bounded(&compressed, 100).expect("fits"),
            [b'q'; 100]
        );
    }

    const KEY: &str = "encrypted-codec-test-key-0123456789abcdef";
    const OLD_KEY: &str = "encrypted-codec-old-key-0123456789abcdef";

    fn encrypted(key: &str) -> CookieCodec {
        CookieCodec::encrypted(&key.into(), &[], "session")
    }

    fn raw_len(cookie: &str) -> usize {
        URL_SAFE_NO_PAD.decode(cookie).expect("base64").len()
    }

    fn every_value_type() -> Map {
        Map::from([
            ("none".to_owned(), Value::Null),
            ("yes".to_owned(), true.into()),
            ("int".to_owned(), (-42).into()),
            ("huge".to_owned(), Value::from(u128::MAX)),
            ("float".to_owned(), 0.1.into()),
            ("text".to_owned(), "Zoë 😀 \"quoted\" \\".into()),
            (
                "list".to_owned(),
                Value::List(vec![1.into(), "two".into(), Value::Null]),
            ),
            (
                "dict".to_owned(),
                Value::Dict(Map::from([(" t".to_owned(), Value::tuple([1.into()]))])),
            ),
            (
                "tuple".to_owned(),
                Value::tuple([Value::from("message"), "Hi".into()]),
            ),
            ("bytes".to_owned(), Value::Bytes(vec![0, 1, 254, 255])),
            ("markup".to_owned(), Value::markup("<em>hi</em>")),
            (
                "uuid".to_owned(),
                Value::Uuid(uuid::Uuid::from_u128(
                    0x1234_5678_9abc_def0_1234_5678_9abc_def0,
                )),
            ),
            (
                "when".to_owned(),
                Value::DateTime(
                    time::OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("in range"),
                ),
            ),
        ])
    }

    #[test]
    fn encrypted_cookies_round_trip_every_value_type() {
        let codec = encrypted(KEY);
        assert!(codec.is_encrypted());
        assert!(!CookieCodec::new(&KEY.into(), &[]).is_encrypted());
        for data in [Map::new(), alice(), every_value_type()] {
            let cookie = codec.encode(&data, at(1_700_000_000));
            let decoded = codec.decode(&cookie, at(1_700_000_001)).expect("decodes");
            assert_eq!(decoded.data, data);
            assert_eq!(decoded.signed_at, Some(1_700_000_000));
        }
    }

    #[test]
    fn encrypted_cookies_hide_the_session() {
        let codec = encrypted(KEY);
        let cookie = codec.encode(&alice(), at(10));
        let raw = URL_SAFE_NO_PAD.decode(&cookie).expect("base64");
        // Needles long enough not to turn up in random bytes by chance.
        for needle in ["alice", "user_id"] {
            assert!(!cookie.contains(needle), "{cookie}");
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in the decoded cookie"
            );
        }
        assert!(decode_unverified(&cookie, 1 << 20).is_err());
    }

    #[test]
    fn any_changed_character_of_an_encrypted_cookie_is_refused() {
        let codec = encrypted(KEY);
        let cookie = codec.encode(&alice(), at(10));
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.";
        for index in 0..cookie.len() {
            for &replacement in alphabet {
                let mut bytes = cookie.clone().into_bytes();
                if bytes[index] == replacement {
                    continue;
                }
                bytes[index] = replacement;
                let mutated = String::from_utf8(bytes).expect("ASCII");
                assert!(
                    codec.decode(&mutated, at(10)).is_err(),
                    "{index}: {mutated} was accepted"
                );
            }
        }
        // Appending or removing characters too.
        assert!(codec.decode(&format!("{cookie}A"), at(10)).is_err());
        assert!(codec.decode(&cookie[..cookie.len() - 1], at(10)).is_err());
    }

    #[test]
    fn encrypted_cookies_are_bound_to_the_key_and_the_cookie_name() {
        let cookie = encrypted(KEY).encode(&alice(), at(10));
        assert!(matches!(
            encrypted(OLD_KEY).decode(&cookie, at(10)),
            Err(DecodeError::Decrypt)
        ));
        let other_name = CookieCodec::encrypted(&KEY.into(), &[], "__Host-session");
        assert!(matches!(
            other_name.decode(&cookie, at(10)),
            Err(DecodeError::Decrypt)
        ));
        let other_salt = CookieCodec::encrypted_with_salt(&KEY.into(), &[], "other", "session");
        assert!(matches!(
            other_salt.decode(&cookie, at(10)),
            Err(DecodeError::Decrypt)
        ));
        // A signed cookie is not an encrypted one, and the other way round.
        let signed = CookieCodec::new(&KEY.into(), &[]);
        assert!(encrypted(KEY)
            .decode(&signed.encode(&alice(), at(10)), at(10))
            .is_err());
        assert!(signed.decode(&cookie, at(10)).is_err());
        let message = DecodeError::Decrypt.to_string();
        assert!(message.starts_with("cannot decrypt: "), "{message}");
    }

    #[test]
    fn fallback_keys_open_cookies_that_are_resealed_with_the_current_key() {
        let old = encrypted(OLD_KEY).encode(&alice(), at(10));
        let rotated = CookieCodec::encrypted(
            &KEY.into(),
            &["oldest-key".into(), OLD_KEY.into()],
            "session",
        );
        let decoded = rotated.decode(&old, at(11)).expect("a fallback opens it");
        assert_eq!(decoded.data, alice());
        let resealed = rotated.encode(&decoded.data, at(11));
        assert_eq!(
            encrypted(KEY)
                .decode(&resealed, at(11))
                .expect("current key")
                .data,
            alice()
        );
        assert!(matches!(
            encrypted(OLD_KEY).decode(&resealed, at(11)),
            Err(DecodeError::Decrypt)
        ));
    }

    #[test]
    fn encrypted_cookies_expire_and_refuse_the_future() {
        let codec = encrypted(KEY).max_age(Duration::from_secs(60));
        let cookie = codec.encode(&alice(), at(1000));
        assert!(codec.decode(&cookie, at(1060)).is_ok());
        let expired = codec.decode(&cookie, at(1061)).expect_err("expired");
        assert!(expired.to_string().starts_with("expired: "), "{expired}");
        let future = codec.decode(&cookie, at(999)).expect_err("from the future");
        assert_eq!(future.to_string(), "timestamp is 1 s in the future");
    }

    #[test]
    fn encrypted_cookies_are_not_compressed_by_default() {
        let codec = encrypted(KEY);
        let sizes: Vec<(usize, usize)> = [0, 100, 1000, 3000]
            .into_iter()
            .map(|n| {
                let data = Map::from([("a".to_owned(), "a".repeat(n).into())]);
                let json = tagged::map_to_string(&data).len();
                (json, raw_len(&codec.encode(&data, at(10))))
            })
            .collect();
        for (json, raw) in sizes {
            // Exactly the payload plus the fixed overhead, however repetitive.
            assert_eq!(raw, json + crate::encrypted::OVERHEAD);
        }
        let cookie = codec.encode(
            &Map::from([("a".to_owned(), "a".repeat(3000).into())]),
            at(10),
        );
        assert!(cookie.len() > 4000, "{}", cookie.len());
    }

    #[test]
    fn encrypted_compression_when_enabled() {
        let compressing = encrypted(KEY).encrypted_compression(true);
        let big = Map::from([("a".to_owned(), "a".repeat(3000).into())]);
        let cookie = compressing.encode(&big, at(10));
        assert!(cookie.len() < 200, "{}", cookie.len());
        assert_eq!(URL_SAFE_NO_PAD.decode(&cookie).expect("base64")[0], 0x11);
        assert_eq!(
            compressing.decode(&cookie, at(10)).expect("opens").data,
            big
        );
        // Opened even where compression is off, so it can be turned off.
        assert_eq!(
            encrypted(KEY).decode(&cookie, at(10)).expect("opens").data,
            big
        );
        // Not compressed when it would not help.
        let small = compressing.encode(&alice(), at(10));
        assert_eq!(URL_SAFE_NO_PAD.decode(&small).expect("base64")[0], 0x10);
        // No effect on a signed codec.
        let signed = CookieCodec::new(&KEY.into(), &[]).encrypted_compression(false);
        assert!(signed.encode(&big, at(10)).starts_with('.'));
    }

    #[test]
    fn two_encodings_of_one_session_differ() {
        let codec = encrypted(KEY);
        let first = codec.encode(&alice(), at(10));
        let second = codec.encode(&alice(), at(10));
        assert_ne!(first, second);
        assert_ne!(
            URL_SAFE_NO_PAD.decode(&first).expect("base64")[1..25],
            URL_SAFE_NO_PAD.decode(&second).expect("base64")[1..25],
            "fresh nonces"
        );
        assert_eq!(codec.decode(&first, at(10)).expect("opens").data, alice());
        assert_eq!(codec.decode(&second, at(10)).expect("opens").data, alice());
    }

    #[test]
    fn oversized_and_garbage_encrypted_cookies_are_refused() {
        let codec = encrypted(KEY);
        let huge = "A".repeat(2 * DEFAULT_MAX_PAYLOAD_SIZE);
        assert!(matches!(
            codec.decode(&huge, at(10)),
            Err(DecodeError::TooLarge { .. })
        ));
        for garbage in ["", "E", "garbage", "a.b.c", "!!!!", "E===", &"E".repeat(65)] {
            let result = codec.decode(garbage, at(10));
            assert!(
                matches!(
                    result,
                    Err(DecodeError::Malformed(_) | DecodeError::Decrypt)
                ),
                "{garbage:?}: {result:?}"
            );
        }
        // Padding is refused: one spelling per cookie.
        let cookie = codec.encode(&alice(), at(10));
        assert!(codec.decode(&cookie, at(10)).is_ok());
        for padding in ["=", "=="] {
            assert!(codec.decode(&format!("{cookie}{padding}"), at(10)).is_err());
        }

        // A payload over the bound, before and after inflating.
        let big = Map::from([("a".to_owned(), "a".repeat(10_000).into())]);
        let plain = codec.encode(&big, at(10));
        assert!(matches!(
            codec.clone().max_payload_size(1000).decode(&plain, at(10)),
            Err(DecodeError::TooLarge { limit: 1000 })
        ));
        let compressed = encrypted(KEY)
            .encrypted_compression(true)
            .encode(&big, at(10));
        assert!(compressed.len() < 1000);
        assert!(matches!(
            codec
                .clone()
                .max_payload_size(1000)
                .decode(&compressed, at(10)),
            Err(DecodeError::TooLarge { limit: 1000 })
        ));
        assert!(codec
            .max_payload_size(10_010)
            .decode(&compressed, at(10))
            .is_ok());
    }

    #[test]
    fn a_sealed_zlib_bomb_is_refused() {
        let bomb = Map::from([("a".to_owned(), "a".repeat(8 * 1024 * 1024).into())]);
        let cookie = encrypted(KEY)
            .encrypted_compression(true)
            .encode(&bomb, at(10));
        assert!(cookie.len() < 16 * 1024, "{}", cookie.len());
        assert!(matches!(
            encrypted(KEY).decode(&cookie, at(10)),
            Err(DecodeError::TooLarge {
                limit: DEFAULT_MAX_PAYLOAD_SIZE
            })
        ));
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
