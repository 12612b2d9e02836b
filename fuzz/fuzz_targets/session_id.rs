//! `SessionId::parse` on arbitrary text: it accepts exactly URL-safe base64
//! of 22 to 256 characters, and an accepted id keeps its text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::SessionId;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let well_formed = (22..=256).contains(&text.chars().count())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match SessionId::parse(text) {
        Some(id) => {
            assert!(well_formed, "accepted {text:?}");
            assert_eq!(id.as_str(), text);
            assert_eq!(SessionId::parse(id.as_str()).as_ref(), Some(&id));
            let fingerprint = id.fingerprint();
            assert_eq!(fingerprint.len(), 12);
            assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        None => assert!(!well_formed, "refused {text:?}"),
    }
});
