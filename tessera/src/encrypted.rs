//! Encrypted session cookies (`SESSION_TYPE=encrypted`): the session is
//! sealed with XChaCha20-Poly1305, so the visitor can neither read nor change
//! it. Not Flask-compatible: Flask only signs.
//!
//! # Wire format
//!
//! The cookie value is URL-safe base64 without padding (decoded strictly:
//! no padding, no stray trailing bits, so every character counts) of
//!
//! ```text
//! header (1) || nonce (24) || ciphertext (8 + n) || tag (16)
//! ```
//!
//! - **header**: the format version in the high nibble (1) and flags in the
//!   low nibble; bit 0 set means the payload is zlib-compressed. So `0x10`
//!   (plain) or `0x11` (compressed); any other value is refused before any
//!   decryption. Version 1 cookies therefore always start with `E`.
//! - **nonce**: 24 fresh bytes from the OS RNG per cookie. XChaCha's 192-bit
//!   nonce makes random nonces safe for any number of cookies under one key.
//! - **ciphertext**: the encryption of the creation time (8 bytes, big-endian
//!   Unix seconds) followed by the session as Flask tagged JSON (`n` bytes,
//!   zlib when the header says so). The time is inside so that it is both
//!   authenticated and hidden.
//! - **tag**: Poly1305 over the ciphertext and the associated data, which is
//!   the header byte followed by the cookie's name. The header is covered so
//!   that the compressed flag cannot be flipped; the name so that a cookie
//!   cannot be replayed under another cookie name (another app on the domain
//!   sharing the key, or a server-side id cookie).
//!
//! The 256-bit key is HKDF-SHA256 of `SECRET_KEY` with the signing salt
//! (`cookie-session` by default) as HKDF salt and `tessera encrypted session
//! cookie v1` as info, so it is independent of the HMAC key Flask derives from
//! the same secret. Each of `SECRET_KEY_FALLBACKS` gets its own key; cookies
//! are always sealed with the current one.
//!
//! A version 1 cookie is 49 bytes longer than its payload before base64, so
//! about 66 characters plus four thirds of the payload.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::AeadInPlace as _;
use chacha20poly1305::{KeyInit as _, Tag, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore as _;
use sha2::Sha256;

use crate::codec::{compress_if_smaller, session_from_payload, DecodeError, Decoded};
use crate::key::SecretKey;
use crate::map::Map;
use crate::signing::{check_age, unix_seconds};
use crate::tagged;

/// HKDF info: separates this key from any other use of `SECRET_KEY`, and from
/// a later format's key.
const KDF_INFO: &[u8] = b"tessera encrypted session cookie v1";

const VERSION: u8 = 1;
const FLAG_COMPRESSED: u8 = 0x01;
const HEADER_PLAIN: u8 = VERSION << 4;
const HEADER_COMPRESSED: u8 = HEADER_PLAIN | FLAG_COMPRESSED;

const HEADER_LEN: usize = 1;
const NONCE_LEN: usize = 24;
const TIMESTAMP_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// Bytes a sealed cookie adds to its payload, before base64.
pub(crate) const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TIMESTAMP_LEN + TAG_LEN;
/// The base64 length of the smallest sealed cookie.
const MIN_COOKIE_LEN: usize = (OVERHEAD * 4).div_ceil(3);

/// Whether opening `cookie` could get as far as the keys: a shorter value
/// cannot hold a sealed session and is refused before any.
pub(crate) fn may_reach_the_keys(cookie: &str) -> bool {
    cookie.len() >= MIN_COOKIE_LEN
}

/// Seals and opens session cookies for one cookie name and set of keys.
#[derive(Clone)]
pub(crate) struct CookieCipher {
    /// Current key first, then fallbacks newest first.
    ciphers: Vec<XChaCha20Poly1305>,
    cookie_name: Box<str>,
    compress: bool,
}

impl fmt::Debug for CookieCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieCipher")
            .field("keys", &self.ciphers.len())
            .field("cookie_name", &self.cookie_name)
            .field("compress", &self.compress)
            .finish_non_exhaustive()
    }
}

impl CookieCipher {
    /// `fallbacks` in `SECRET_KEY_FALLBACKS` order (oldest first).
    pub(crate) fn new(
        current: &SecretKey,
        fallbacks: &[SecretKey],
        salt: &[u8],
        cookie_name: &str,
    ) -> Self {
        let ciphers = std::iter::once(current)
            .chain(fallbacks.iter().rev())
            .map(|key| XChaCha20Poly1305::new(&derive_key(key.as_bytes(), salt).into()))
            .collect();
        Self {
            ciphers,
            cookie_name: cookie_name.into(),
            compress: false,
        }
    }

    /// See [`CookieCodec::encrypted_compression`](crate::CookieCodec::encrypted_compression)
    /// for why this is off by default.
    pub(crate) fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// The cookie value for `data`, sealed at `now` with the current key.
    pub(crate) fn encode(&self, data: &Map, now: SystemTime) -> String {
        self.encode_measured(data, now).0
    }

    /// [`encode`](Self::encode), and the length of the session's JSON.
    pub(crate) fn encode_measured(&self, data: &Map, now: SystemTime) -> (String, usize) {
        let json = tagged::map_to_string(data);
        let compressed = if self.compress {
            compress_if_smaller(json.as_bytes())
        } else {
            None
        };
        let (header, payload) = match &compressed {
            Some(deflated) => (HEADER_COMPRESSED, deflated.as_slice()),
            None => (HEADER_PLAIN, json.as_bytes()),
        };
        let mut sealed = Vec::with_capacity(OVERHEAD + payload.len());
        sealed.push(header);
        let mut nonce = [0u8; NONCE_LEN];
        // A failing OS RNG panics here, as it does for any key or id this
        // crate generates: a cookie must never be sealed with a guessable nonce.
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&unix_seconds(now).to_be_bytes());
        sealed.extend_from_slice(payload);
        let aad = self.associated_data(header);
        let body = &mut sealed[HEADER_LEN + NONCE_LEN..];
        let tag = self.ciphers[0]
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, body)
            // Only a message beyond 256 GiB can fail.
            .expect("a session cookie is far below XChaCha20's message limit");
        sealed.extend_from_slice(&tag);
        (URL_SAFE_NO_PAD.encode(sealed), json.len())
    }

    /// Opens a cookie value: checks its format, authenticates and decrypts it
    /// with the current key or a fallback, then checks its age and parses it.
    pub(crate) fn decode(
        &self,
        cookie: &str,
        max_age: Duration,
        max_payload_size: usize,
        now: SystemTime,
    ) -> Result<Decoded, DecodeError> {
        // Base64 decodes to three quarters of its length; refuse before allocating.
        if cookie.len() / 4 * 3 > max_payload_size.saturating_add(OVERHEAD) {
            return Err(DecodeError::TooLarge {
                limit: max_payload_size,
            });
        }
        let mut sealed = URL_SAFE_NO_PAD
            .decode(cookie)
            .map_err(|_| DecodeError::Malformed("encrypted cookie is not base64"))?;
        if sealed.len() < OVERHEAD {
            return Err(DecodeError::Malformed(
                "too short to be an encrypted cookie",
            ));
        }
        let header = sealed[0];
        if header != HEADER_PLAIN && header != HEADER_COMPRESSED {
            return Err(DecodeError::UnknownFormat(header));
        }
        let aad = self.associated_data(header);
        let (nonce, rest) = sealed[HEADER_LEN..].split_at_mut(NONCE_LEN);
        let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let (nonce, tag) = (XNonce::from_slice(nonce), Tag::from_slice(tag));
        // The body is decrypted only once the tag verifies, so after a
        // failure it is still the ciphertext the next key needs.
        let opened = self.ciphers.iter().any(|cipher| {
            cipher
                .decrypt_in_place_detached(nonce, &aad, body, tag)
                .is_ok()
        });
        if !opened {
            return Err(DecodeError::Decrypt);
        }
        let (timestamp, payload) = body.split_at(TIMESTAMP_LEN);
        let mut created = [0u8; TIMESTAMP_LEN];
        created.copy_from_slice(timestamp);
        let created = u64::from_be_bytes(created);
        check_age(created, max_age, now)?;
        let data = session_from_payload(payload, header & FLAG_COMPRESSED != 0, max_payload_size)?;
        Ok(Decoded {
            data,
            signed_at: Some(created),
        })
    }

    fn associated_data(&self, header: u8) -> Vec<u8> {
        let mut aad = Vec::with_capacity(HEADER_LEN + self.cookie_name.len());
        aad.push(header);
        aad.extend_from_slice(self.cookie_name.as_bytes());
        aad
    }
}

/// HKDF-SHA256 of the secret key, with the signing salt as HKDF salt.
fn derive_key(secret: &[u8], salt: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), secret)
        .expand(KDF_INFO, &mut key)
        .expect("32 bytes is far below HKDF-SHA256's output limit");
    key
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::codec::DEFAULT_MAX_PAYLOAD_SIZE;
    use crate::signing::SignatureError;

    const MAX_AGE: Duration = Duration::from_secs(3600);

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn cipher(key: &str) -> CookieCipher {
        CookieCipher::new(&key.into(), &[], b"cookie-session", "session")
    }

    fn open(cipher: &CookieCipher, cookie: &str, now: u64) -> Result<Decoded, DecodeError> {
        cipher.decode(cookie, MAX_AGE, DEFAULT_MAX_PAYLOAD_SIZE, at(now))
    }

    fn alice() -> Map {
        Map::from([
            ("user_id".to_owned(), 42.into()),
            ("name".to_owned(), "alice".into()),
        ])
    }

    fn raw(cookie: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(cookie).expect("base64")
    }

    #[test]
    fn layout_is_the_documented_one() {
        let cookie = cipher("k").encode(&alice(), at(1_700_000_000));
        let bytes = raw(&cookie);
        let json = tagged::map_to_string(&alice());
        assert_eq!(bytes.len(), OVERHEAD + json.len());
        assert_eq!(bytes[0], 0x10);
        assert!(cookie.starts_with('E'), "{cookie}");
        assert!(!cookie.contains(['=', '.', '+', '/']), "{cookie}");
    }

    #[test]
    fn derived_key_is_separate_from_signing() {
        let key = derive_key(b"dev-secret-key", b"cookie-session");
        assert_ne!(
            key[..20],
            crate::signing::derive_key(b"dev-secret-key", b"cookie-session")
        );
        assert_ne!(key, derive_key(b"dev-secret-key", b"flask-session"));
        assert_ne!(key, derive_key(b"dev-secret-keY", b"cookie-session"));
    }

    #[test]
    fn the_creation_time_is_authenticated_and_checked() {
        let cipher = cipher("k");
        let cookie = cipher.encode(&alice(), at(1000));
        let decoded = open(&cipher, &cookie, 1000 + 3600).expect("at max age");
        assert_eq!(decoded.signed_at, Some(1000));
        assert!(matches!(
            open(&cipher, &cookie, 1000 + 3601),
            Err(DecodeError::Signature(SignatureError::Expired {
                age: 3601,
                max_age: 3600
            }))
        ));
        assert!(matches!(
            open(&cipher, &cookie, 999),
            Err(DecodeError::Signature(SignatureError::FutureTimestamp(1)))
        ));
    }

    #[test]
    fn other_headers_are_refused_before_decrypting() {
        let cipher = cipher("k");
        let cookie = cipher.encode(&alice(), at(10));
        for header in [0x00, 0x01, 0x12, 0x20, 0x21, 0xff] {
            let mut bytes = raw(&cookie);
            bytes[0] = header;
            let forged = URL_SAFE_NO_PAD.encode(bytes);
            assert!(
                matches!(open(&cipher, &forged, 10), Err(DecodeError::UnknownFormat(h)) if h == header),
                "{header:#x}"
            );
        }
        // The compressed flag is covered by the tag: flipping it is tampering.
        let mut bytes = raw(&cookie);
        bytes[0] = HEADER_COMPRESSED;
        let flipped = URL_SAFE_NO_PAD.encode(bytes);
        assert!(matches!(
            open(&cipher, &flipped, 10),
            Err(DecodeError::Decrypt)
        ));
    }

    #[test]
    fn short_and_truncated_input_is_malformed_or_refused() {
        let cipher = cipher("k");
        let cookie = cipher.encode(&Map::new(), at(10));
        let bytes = raw(&cookie);
        assert_eq!(bytes.len(), OVERHEAD + 2);
        for cut in 0..bytes.len() {
            let truncated = URL_SAFE_NO_PAD.encode(&bytes[..cut]);
            let result = open(&cipher, &truncated, 10);
            if cut < OVERHEAD {
                assert!(
                    matches!(result, Err(DecodeError::Malformed(_))),
                    "{cut}: {result:?}"
                );
            } else {
                assert!(matches!(result, Err(DecodeError::Decrypt)), "{cut}");
            }
        }
    }

    #[test]
    fn a_sealed_non_object_is_refused() {
        // Sealed by hand, as the codec never would.
        let cipher = cipher("k");
        for json in ["[1,2]", "42", "null", "{nope"] {
            let mut sealed = vec![HEADER_PLAIN];
            sealed.extend_from_slice(&[7; NONCE_LEN]);
            sealed.extend_from_slice(&10u64.to_be_bytes());
            sealed.extend_from_slice(json.as_bytes());
            let aad = cipher.associated_data(HEADER_PLAIN);
            let tag = cipher.ciphers[0]
                .encrypt_in_place_detached(
                    XNonce::from_slice(&[7; NONCE_LEN]),
                    &aad,
                    &mut sealed[HEADER_LEN + NONCE_LEN..],
                )
                .expect("encrypts");
            sealed.extend_from_slice(&tag);
            let result = open(&cipher, &URL_SAFE_NO_PAD.encode(sealed), 10);
            assert!(
                matches!(result, Err(DecodeError::NotAnObject | DecodeError::Json(_))),
                "{json}: {result:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let cipher = CookieCipher::new(
            &"hunter2-hunter2-hunter2-hunter2".into(),
            &["older-hunter2".into()],
            b"cookie-session",
            "session",
        );
        let debug = format!("{cipher:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("keys: 2"), "{debug}");
        let key = derive_key(b"hunter2-hunter2-hunter2-hunter2", b"cookie-session");
        assert!(!debug.contains(&crate::key::hex(&key)), "{debug}");
        assert!(!debug.contains(&format!("{:?}", &key[..4])), "{debug}");
    }
}
