//! Secret keys: redacted in `Debug`, checked for strength, generated from the OS.

use std::fmt;

use rand::RngCore as _;

/// Keys shorter than this many bytes are considered weak.
pub(crate) const MIN_STRONG_KEY_LEN: usize = 32;

/// Keys of fewer different bytes than this (`aaaa…`, `0101…`) are weak,
/// however long: a random key of 32 bytes or hex digits has 13 or more.
const MIN_DISTINCT_BYTES: usize = 6;

/// Keys that appear in tutorials and examples; an attacker tries these first.
const WELL_KNOWN_KEYS: &[&str] = &[
    "your_secret_key",
    "xyz",
    "supersecretkey",
    "This is a pretend secret key.",
    "dev",
    "dev-secret-key",
    "development key",
    "secret",
    "secret_key",
    "secret-key",
    "super secret key",
    "changeme",
    "change-me",
    "replace-me",
    "mysecretkey",
    "my_secret_key",
    "SECRET_KEY",
    "default",
];

/// A secret key used to sign (or encrypt) session cookies.
///
/// `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// A key from raw bytes. Flask uses the UTF-8 bytes of a string key.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// A fresh key of 32 random bytes from the OS, written as 64 hex digits
    /// so it can be pasted into an environment variable.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(hex(&bytes).into_bytes())
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Why this key is weak, if it is: too short, a well-known example
    /// (in any case, blanks around it aside), or a few bytes repeated.
    pub fn weakness(&self) -> Option<String> {
        let trimmed = self.0.trim_ascii();
        let well_known = WELL_KNOWN_KEYS
            .iter()
            .any(|known| known.as_bytes().eq_ignore_ascii_case(trimmed));
        let mut seen = [false; 256];
        for &byte in &self.0 {
            seen[usize::from(byte)] = true;
        }
        let distinct = seen.iter().filter(|&&seen| seen).count();
        let long = self.0.len() >= MIN_STRONG_KEY_LEN;
        if well_known {
            Some("it is a well-known example key".to_owned())
        } else if long && distinct < MIN_DISTINCT_BYTES {
            let unit = if distinct == 1 {
                "byte"
            } else {
                "different bytes"
            };
            Some(format!(
                "it is made of {distinct} {unit} only; use at least {MIN_STRONG_KEY_LEN} random \
                 bytes"
            ))
        } else if let Some(period) = long.then(|| repetition_period(&self.0)).flatten() {
            Some(format!(
                "it repeats its first {period} bytes; use at least {MIN_STRONG_KEY_LEN} random bytes"
            ))
        } else if self.0.len() < MIN_STRONG_KEY_LEN {
            let len = self.0.len();
            let unit = if len == 1 { "byte" } else { "bytes" };
            Some(format!(
                "it is {len} {unit} long; use at least {MIN_STRONG_KEY_LEN} random bytes"
            ))
        } else {
            None
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl From<&str> for SecretKey {
    fn from(value: &str) -> Self {
        Self::new(value.as_bytes())
    }
}

impl From<String> for SecretKey {
    fn from(value: String) -> Self {
        Self::new(value.into_bytes())
    }
}

impl From<&[u8]> for SecretKey {
    fn from(value: &[u8]) -> Self {
        Self::new(value)
    }
}

impl From<Vec<u8>> for SecretKey {
    fn from(value: Vec<u8>) -> Self {
        Self::new(value)
    }
}

/// The length of the part `bytes` repeat (`password123password123pa…`), if
/// they are that part at least twice over. (Keys longer than 4096 bytes are
/// not looked at: the check is quadratic, and no one types such a key.)
fn repetition_period(bytes: &[u8]) -> Option<usize> {
    if bytes.len() > 4096 {
        return None;
    }
    (1..=bytes.len() / 2).find(|&period| {
        bytes
            .iter()
            .zip(&bytes[period..])
            .all(|(byte, later)| byte == later)
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = SecretKey::from("hunter2-hunter2-hunter2-hunter2-hunter2");
        assert!(!format!("{key:?}").contains("hunter2"));
    }

    #[test]
    fn weak_keys_are_found() {
        assert!(SecretKey::from("This is a pretend secret key.")
            .weakness()
            .is_some());
        assert!(SecretKey::from("SUPERSECRETKEY").weakness().is_some());
        assert!(SecretKey::from("short").weakness().is_some());
        assert!(SecretKey::from(" your_secret_key\n")
            .weakness()
            .is_some_and(|why| why.contains("well-known")));
        for repeated in ["a".repeat(32), "01".repeat(40), "abcde".repeat(10)] {
            let why = SecretKey::from(repeated.as_str()).weakness();
            assert!(
                why.as_deref().is_some_and(|why| why.contains("only")),
                "{repeated}: {why:?}"
            );
        }
        assert_eq!(
            SecretKey::from("a".repeat(32)).weakness().as_deref(),
            Some("it is made of 1 byte only; use at least 32 random bytes")
        );
        for repeated in [
            "abcdef".repeat(6),
            "password123".repeat(3),
            "0123456789abcdef".repeat(2),
            format!("{}pass", "password123".repeat(3)),
        ] {
            let why = SecretKey::from(repeated.as_str()).weakness();
            assert!(
                why.as_deref()
                    .is_some_and(|why| why.contains("repeats its first")),
                "{repeated}: {why:?}"
            );
        }
        assert!(SecretKey::from("correct horse battery staple, twice")
            .weakness()
            .is_none());
        assert!(SecretKey::generate().weakness().is_none());
        assert_ne!(SecretKey::generate(), SecretKey::generate());
        assert_eq!(SecretKey::generate().as_bytes().len(), 64);
    }
}
