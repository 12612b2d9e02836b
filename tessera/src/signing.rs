//! itsdangerous' `TimestampSigner` as Flask configures it: HMAC-SHA1 with a
//! key derived from each secret key and a salt, and a timestamp in the value.

use std::mem::MaybeUninit;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[cfg(test)]
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
#[cfg(test)]
use base64::engine::DecodePaddingMode;
#[cfg(test)]
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq as _;

use crate::key::SecretKey;
use crate::python_base64::{self, Flavor};
use crate::words;

type HmacSha1 = Hmac<Sha1>;

/// URL-safe base64 without padding, as itsdangerous writes it. Reading goes
/// through [`decode_base64`], which reads what Python reads.
#[cfg(test)]
pub(crate) const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The same alphabet through a SIMD decoder and encoder, several times
/// faster on a cookie. It accepts only canonical base64 (what every signer
/// writes), so decoding tries it first and falls back to
/// [`python_base64`], whose leniency (Python's) decides what is accepted.
const B64_FAST: base64_simd::Base64 = base64_simd::URL_SAFE_NO_PAD;

/// Appends the bytes of URL-safe base64 `text` to `out`, read as
/// itsdangerous reads it; on error `out` is as it was.
pub(crate) fn decode_base64(text: &str, out: &mut Vec<u8>) -> Result<(), python_base64::Invalid> {
    if B64_FAST.decode_append(text, out).is_ok() {
        return Ok(());
    }
    python_base64::decode(text.as_bytes(), Flavor::Itsdangerous, out)
}

/// Why [`decode_base64_slice`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceError {
    /// Python would not read it.
    Invalid,
    /// It decodes to more bytes than `out` holds.
    TooLong,
}

/// Decodes URL-safe base64 `text` into `out`, returning the length:
/// canonical input through the SIMD decoder, anything else as itsdangerous
/// reads it.
pub(crate) fn decode_base64_slice(text: &str, out: &mut [u8]) -> Result<usize, SliceError> {
    if let Some(len) = decode_canonical_base64(text, out) {
        return Ok(len);
    }
    let mut bytes = Vec::new();
    python_base64::decode(text.as_bytes(), Flavor::Itsdangerous, &mut bytes)
        .map_err(|_| SliceError::Invalid)?;
    let out = out.get_mut(..bytes.len()).ok_or(SliceError::TooLong)?;
    out.copy_from_slice(&bytes);
    Ok(bytes.len())
}

/// Decodes canonical URL-safe base64 `text` into `out`, returning the
/// length; `None` if it is not canonical or does not fit.
fn decode_canonical_base64(text: &str, out: &mut [u8]) -> Option<usize> {
    decode_canonical_into(text, base64_simd::Out::from_slice(out)).map(|decoded| decoded.len())
}

/// [`decode_canonical_base64`] into a buffer that need not be initialised
/// (so need not be zeroed first), returning the decoded bytes.
pub(crate) fn decode_canonical_base64_uninit<'a>(
    text: &str,
    out: &'a mut [MaybeUninit<u8>],
) -> Option<&'a mut [u8]> {
    decode_canonical_into(text, base64_simd::Out::from_uninit_slice(out))
}

/// Both of the above: the decoded bytes at the start of `out`, or `None`
/// if `text` is not canonical or they would not fit.
fn decode_canonical_into<'a>(text: &str, out: base64_simd::Out<'a, [u8]>) -> Option<&'a mut [u8]> {
    let len = B64_FAST.decoded_length(text.as_bytes()).ok()?;
    if len > out.len() {
        return None;
    }
    B64_FAST.decode(text.as_bytes(), out).ok()
}

/// Appends URL-safe base64 of `bytes` to `out`, without padding.
pub(crate) fn encode_base64(bytes: &[u8], out: &mut String) {
    B64_FAST.encode_append(bytes, out);
}

/// Why a signed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The value has no signature or timestamp, or they are not base64.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// No key produced this signature.
    #[error("bad signature")]
    BadSignature,
    /// The signature is older than the maximum age.
    #[error("expired: signed {age} s ago, max age is {max_age} s")]
    Expired {
        /// Seconds since signing.
        age: u64,
        /// The allowed age in seconds.
        max_age: u64,
    },
    /// The timestamp lies in the future.
    #[error("timestamp is {0} s in the future")]
    FutureTimestamp(u64),
}

/// Signs with the current key and verifies with it and the fallbacks.
#[derive(Clone)]
pub(crate) struct Signer {
    /// Pre-keyed MACs, current key first, then fallbacks newest first.
    macs: Vec<HmacSha1>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.macs.len())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// `fallbacks` are in Flask's `SECRET_KEY_FALLBACKS` order (oldest first).
    pub(crate) fn new(current: &SecretKey, fallbacks: &[SecretKey], salt: &[u8]) -> Self {
        let macs = std::iter::once(current)
            .chain(fallbacks.iter().rev())
            .map(|key| {
                let derived = derive_key(key.as_bytes(), salt);
                HmacSha1::new_from_slice(&derived).expect("HMAC takes a key of any length")
            })
            .collect();
        Self { macs }
    }

    /// `payload.timestamp.signature`, signed with the current key.
    #[cfg(test)]
    pub(crate) fn sign(&self, payload: &str, now: SystemTime) -> String {
        let mut out = payload.to_owned();
        self.sign_appended(&mut out, 0, now);
        out
    }

    /// Signs the payload that `out` holds from `start` on with the current
    /// key, appending `.timestamp.signature` to it.
    pub(crate) fn sign_appended(&self, out: &mut String, start: usize, now: SystemTime) {
        out.push('.');
        let (timestamp, first) = timestamp_bytes(unix_seconds(now));
        encode_base64(&timestamp[first..], out);
        let mut mac = self.macs[0].clone();
        mac.update(&out.as_bytes()[start..]);
        let tag = mac.finalize().into_bytes();
        out.push('.');
        encode_base64(&tag, out);
    }

    /// Checks the signature and age; returns the payload and when it was signed.
    pub(crate) fn verify<'a>(
        &self,
        signed: &'a str,
        max_age: Duration,
        now: SystemTime,
    ) -> Result<(&'a str, u64), SignatureError> {
        let (value, signature) =
            split_at_last_dot(signed).ok_or(SignatureError::Malformed("no signature"))?;
        // A SHA-1 tag is 20 bytes; anything longer cannot match.
        let mut tag = [0u8; 32];
        let signature = match decode_base64_slice(signature, &mut tag) {
            Ok(len) => &tag[..len],
            Err(SliceError::TooLong) => return Err(SignatureError::BadSignature),
            Err(SliceError::Invalid) => {
                return Err(SignatureError::Malformed("signature is not base64"))
            }
        };
        if !self.any_key_signed(value, signature) {
            return Err(SignatureError::BadSignature);
        }
        let (payload, timestamp) =
            split_at_last_dot(value).ok_or(SignatureError::Malformed("no timestamp"))?;
        let timestamp = decode_timestamp(timestamp)?;
        check_age(timestamp, max_age, now)?;
        Ok((payload, timestamp))
    }
}

/// `text.rsplit_once('.')`. A dot is never part of a longer UTF-8
/// character, so the bytes can be searched.
fn split_at_last_dot(text: &str) -> Option<(&str, &str)> {
    let dot = last_dot(text.as_bytes())?;
    Some((text.get(..dot)?, text.get(dot + 1..)?))
}

/// Where the last `.` of `bytes` is. It is a few bytes from the end (before
/// a signature or a timestamp), where setting up a vectorised search costs
/// more than the search, and going back a byte at a time was half of what
/// verifying spent outside the MAC; so the search goes back eight bytes at
/// a time.
fn last_dot(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(word) = end
        .checked_sub(8)
        .and_then(|start| words::word_at(bytes, start))
    {
        let dots = words::bytes_equal(word, b'.');
        end -= 8;
        if dots != 0 {
            // The highest flagged byte is the last dot.
            return Some(end + (63 - dots.leading_zeros() as usize) / 8);
        }
    }
    bytes[..end].iter().rposition(|&byte| byte == b'.')
}

/// The age rules every timed cookie follows, signed or encrypted: not from
/// the future, not older than `max_age`.
pub(crate) fn check_age(
    created: u64,
    max_age: Duration,
    now: SystemTime,
) -> Result<(), SignatureError> {
    let now = unix_seconds(now);
    if created > now {
        return Err(SignatureError::FutureTimestamp(created - now));
    }
    let age = now - created;
    if age > max_age.as_secs() {
        return Err(SignatureError::Expired {
            age,
            max_age: max_age.as_secs(),
        });
    }
    Ok(())
}

impl Signer {
    /// `value.signature` without a timestamp: itsdangerous' plain `Signer`,
    /// which Flask-Session uses for signed session ids.
    pub(crate) fn sign_untimed(&self, value: &str) -> String {
        let mut mac = self.macs[0].clone();
        mac.update(value.as_bytes());
        let mut out = String::with_capacity(value.len() + 28);
        out.push_str(value);
        out.push('.');
        encode_base64(&mac.finalize().into_bytes(), &mut out);
        out
    }

    /// The value of `value.signature` if any key made the signature, and
    /// whether that was the current key.
    pub(crate) fn verify_untimed<'a>(&self, signed: &'a str) -> Option<(&'a str, bool)> {
        let (value, signature) = split_at_last_dot(signed)?;
        // A SHA-1 tag is 20 bytes; anything longer cannot match.
        let mut tag = [0u8; 32];
        let len = decode_base64_slice(signature, &mut tag).ok()?;
        self.signing_key(value, &tag[..len])
            .map(|key| (value, key == 0))
    }

    /// Whether the current key or a fallback made `signature` for `value`,
    /// compared in constant time.
    fn any_key_signed(&self, value: &str, signature: &[u8]) -> bool {
        self.signing_key(value, signature).is_some()
    }

    /// Which key made `signature` for `value`: 0 for the current one, then
    /// the fallbacks in order.
    fn signing_key(&self, value: &str, signature: &[u8]) -> Option<usize> {
        self.macs.iter().position(|mac| {
            let mut mac = mac.clone();
            mac.update(value.as_bytes());
            tag_matches(&mac.finalize().into_bytes().into(), signature)
        })
    }
}

/// Whether `given` is the tag `computed`, in time that does not depend on
/// where they differ. `Mac::verify_slice` compares as safely, but passes
/// each of the 20 bytes through `subtle`'s optimisation barrier (a few
/// percent of decoding a small cookie); here the differences are gathered
/// first and only their sum goes through it.
fn tag_matches(computed: &[u8; 20], given: &[u8]) -> bool {
    // The length of a signature is public: it is in the cookie.
    if given.len() != computed.len() {
        return false;
    }
    let difference = computed
        .iter()
        .zip(given)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b));
    difference.ct_eq(&0).into()
}

/// `HMAC-SHA1(key = secret, msg = salt)`, itsdangerous' "hmac" key derivation.
pub(crate) fn derive_key(secret: &[u8], salt: &[u8]) -> [u8; 20] {
    let mut mac = HmacSha1::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(salt);
    mac.finalize().into_bytes().into()
}

pub(crate) fn unix_seconds(when: SystemTime) -> u64 {
    when.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Big-endian with leading zero bytes stripped, as itsdangerous' `int_to_bytes`.
fn timestamp_bytes(seconds: u64) -> ([u8; 8], usize) {
    let bytes = seconds.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    (bytes, first)
}

fn decode_timestamp(text: &str) -> Result<u64, SignatureError> {
    const NOT_BASE64: SignatureError = SignatureError::Malformed("timestamp is not base64");
    // Every real timestamp fits on the stack; only hostile ones allocate.
    let mut buffer = [0u8; 12];
    let mut long = Vec::new();
    let bytes: &[u8] = if text.len() <= 16 {
        let len = decode_base64_slice(text, &mut buffer).map_err(|_| NOT_BASE64)?;
        &buffer[..len]
    } else {
        decode_base64(text, &mut long).map_err(|_| NOT_BASE64)?;
        &long
    };
    // itsdangerous calls a timestamp this long malformed (it would lie far
    // beyond the year 9999).
    if bytes.len() > 8 {
        return Err(SignatureError::Malformed("timestamp out of range"));
    }
    Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn derived_key_matches_flask() {
        assert_eq!(
            crate::key::hex(&derive_key(b"dev-secret-key", b"cookie-session")),
            "71009d16d198ed703005b52dd74858969d57a0be"
        );
    }

    #[test]
    fn timestamp_encoding_matches_itsdangerous() {
        let signer = Signer::new(&"k".into(), &[], b"cookie-session");
        let signed = signer.sign("p", at(1_700_000_000));
        assert!(signed.starts_with("p.ZVPxAA."), "{signed}");
    }

    #[test]
    fn verifies_current_then_fallbacks_and_checks_age() {
        let old = Signer::new(&"old".into(), &[], b"s");
        let new = Signer::new(&"new".into(), &["older".into(), "old".into()], b"s");
        let signed = old.sign("payload", at(1000));
        assert_eq!(
            new.verify(&signed, Duration::from_secs(10), at(1005)),
            Ok(("payload", 1000))
        );
        assert_eq!(
            new.verify(&signed, Duration::from_secs(10), at(1011)),
            Err(SignatureError::Expired {
                age: 11,
                max_age: 10
            })
        );
        assert_eq!(
            new.verify(&signed, Duration::from_secs(10), at(999)),
            Err(SignatureError::FutureTimestamp(1))
        );
        let stranger = Signer::new(&"stranger".into(), &[], b"s");
        assert_eq!(
            stranger.verify(&signed, Duration::from_secs(10), at(1005)),
            Err(SignatureError::BadSignature)
        );
        let other_salt = Signer::new(&"old".into(), &[], b"t");
        assert_eq!(
            other_salt.verify(&signed, Duration::from_secs(10), at(1005)),
            Err(SignatureError::BadSignature)
        );
    }

    /// A timestamp of more than 8 bytes, correctly signed, is malformed, as
    /// itsdangerous says ("Malformed timestamp"), not a date in the future.
    #[test]
    fn overlong_timestamps_are_malformed() {
        let signer = Signer::new(&"k".into(), &[], b"s");
        let unsigned = format!("payload.{}", B64.encode([1u8, 0, 0, 0, 0, 0, 0, 0, 0]));
        let signed = signer.sign_untimed(&unsigned);
        assert_eq!(
            signer.verify(&signed, Duration::from_secs(10), at(1000)),
            Err(SignatureError::Malformed("timestamp out of range"))
        );
    }

    #[test]
    fn the_last_dot_is_found_at_every_position_of_every_length() {
        for len in 0..=40 {
            assert_eq!(last_dot(&vec![b'a'; len]), None, "no dot in {len}");
            for dot in 0..len {
                let mut bytes = vec![b'a'; len];
                bytes[dot] = b'.';
                assert_eq!(last_dot(&bytes), Some(dot), "one dot at {dot} of {len}");
                // Bytes one bit away from a dot ('/', '/' ^ 0x80 and so on)
                // are no dots, nor is a dot with its top bit set.
                for near in [b'/', b'-', b'.' | 0x80, 0x2f | 0x80, 0x00, 0xff] {
                    bytes[len - 1] = if dot == len - 1 { b'.' } else { near };
                    assert_eq!(
                        last_dot(&bytes),
                        Some(dot),
                        "{near:#x} after {dot} of {len}"
                    );
                }
                for earlier in 0..dot {
                    let mut two = vec![b'a'; len];
                    two[earlier] = b'.';
                    two[dot] = b'.';
                    assert_eq!(
                        last_dot(&two),
                        Some(dot),
                        "dots at {earlier} and {dot} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_tag_matches_only_itself() {
        let tag: [u8; 20] = std::array::from_fn(|i| (i as u8).wrapping_mul(37));
        assert!(tag_matches(&tag, &tag));
        for byte in 0..20 {
            for bit in 0..8 {
                let mut other = tag;
                other[byte] ^= 1 << bit;
                assert!(!tag_matches(&tag, &other), "byte {byte}, bit {bit}");
            }
        }
        assert!(!tag_matches(&tag, &tag[..19]));
        assert!(!tag_matches(&tag, &[tag.as_slice(), &[0]].concat()));
        assert!(!tag_matches(&tag, &[]));
    }

    #[test]
    fn untimed_signatures() {
        let signer = Signer::new(&"new".into(), &["old".into()], b"flask-session");
        let old = Signer::new(&"old".into(), &[], b"flask-session");
        let signed = old.sign_untimed("sid123");
        // Accepted, and known to be a fallback's.
        assert_eq!(signer.verify_untimed(&signed), Some(("sid123", false)));
        assert_eq!(
            signer.verify_untimed(&signer.sign_untimed("sid123")),
            Some(("sid123", true))
        );
        assert_eq!(signer.verify_untimed("sid123.AAAA"), None);
        assert_eq!(signer.verify_untimed("sid123"), None);
        assert_eq!(signed.split_once('.').map(|(_, sig)| sig.len()), Some(27));
    }

    /// The forms of a canonical 27-character signature that Python also
    /// reads as the same tag: itself, padded, with junk after the padding,
    /// and with the last character's two unused bits set.
    fn same_tag_forms(signature: &str) -> [String; 4] {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = signature.as_bytes()[26];
        let position = alphabet.iter().position(|c| *c == last).expect("base64");
        let stray = char::from(alphabet[position ^ 0b11]);
        [
            signature.to_owned(),
            format!("{signature}="),
            format!("{signature}=junk"),
            format!("{}{stray}", &signature[..26]),
        ]
    }

    /// itsdangerous reads a signature in any base64 Python reads; so does
    /// the check, for the current key and the fallbacks, timed or not.
    #[test]
    fn signatures_in_non_canonical_base64_are_read_as_python_reads_them() {
        let current = Signer::new(&"new".into(), &["old".into()], b"s");
        let old = Signer::new(&"old".into(), &[], b"s");
        let max_age = Duration::from_secs(10);
        for (signer, is_current) in [(&current, true), (&old, false)] {
            let signed = signer.sign("payload", at(1000));
            let (value, signature) = signed.rsplit_once('.').expect("signed");
            for form in same_tag_forms(signature) {
                assert_eq!(
                    current.verify(&format!("{value}.{form}"), max_age, at(1005)),
                    Ok(("payload", 1000)),
                    "{form}"
                );
            }
            let untimed = signer.sign_untimed("payload");
            let (_, signature) = untimed.rsplit_once('.').expect("signed");
            for form in same_tag_forms(signature) {
                assert_eq!(
                    current.verify_untimed(&format!("payload.{form}")),
                    Some(("payload", is_current)),
                    "{form}"
                );
            }
            // Not base64, or another tag: refused.
            assert_eq!(
                current.verify(&format!("{value}.AAAAA"), max_age, at(1005)),
                Err(SignatureError::Malformed("signature is not base64"))
            );
            let (_, signature) = signed.rsplit_once('.').expect("signed");
            let mut changed = signature.as_bytes().to_vec();
            changed[3] = if changed[3] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).expect("ascii");
            for wrong in [changed, format!("{signature}AAAA")] {
                assert_eq!(
                    current.verify(&format!("{value}.{wrong}"), max_age, at(1005)),
                    Err(SignatureError::BadSignature),
                    "{wrong}"
                );
            }
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        let signer = Signer::new(&"k".into(), &[], b"s");
        for bad in ["", "abc", "a.b", "a.b.!!!", "..", "a.b.c.d"] {
            assert!(
                signer.verify(bad, Duration::from_secs(10), at(5)).is_err(),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_last_dot_is_found_as_rsplit_once_finds_it(
            text in "([a-z.]{0,40}|[a-zé.\\u{10000}]{0,40}|[a-z]{0,80}\\.[a-z]{20,80})",
        ) {
            prop_assert_eq!(split_at_last_dot(&text), text.rsplit_once('.'));
        }

        #[test]
        fn fast_base64_reads_what_python_reads(
            text in "[A-Za-z0-9_=+/.é-]{0,48}",
        ) {
            let mut out = vec![7u8];
            let read = decode_base64(&text, &mut out).map(|()| out[1..].to_vec());
            let mut python = Vec::new();
            let python = python_base64::decode(text.as_bytes(), Flavor::Itsdangerous, &mut python)
                .map(|()| python);
            prop_assert_eq!(&read, &python);
            if read.is_err() {
                prop_assert_eq!(&out, &[7u8]);
            }
            let mut small = [0u8; 12];
            if let Some(len) = decode_canonical_base64(&text, &mut small) {
                prop_assert_eq!(Ok(small[..len].to_vec()), read);
            }
        }

        #[test]
        fn fast_base64_writes_what_itsdangerous_writes(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut text = String::from("prefix.");
            encode_base64(&bytes, &mut text);
            prop_assert_eq!(&text["prefix.".len()..], B64.encode(&bytes));
            let mut back = Vec::new();
            prop_assert!(decode_base64(&text["prefix.".len()..], &mut back).is_ok());
            prop_assert_eq!(back, bytes);
        }
    }

    #[test]
    fn non_canonical_base64_is_still_read_as_python_reads_it() {
        // "QQ" is canonical for b"A"; "QR" sets trailing bits Python ignores,
        // "QQ==" is padded, and Python skips what is not base64 and stops at
        // padding: the SIMD decoder refuses these, the fallback reads them.
        for text in [
            "QQ", "QR", "QQ==", "QQ=", "QQ===", "QQ==junk", "Q Q==", "QQ==é",
        ] {
            let mut out = Vec::new();
            assert!(decode_base64(text, &mut out).is_ok(), "{text}");
            assert_eq!(out, b"A", "{text}");
        }
    }
}
