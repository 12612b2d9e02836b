//! Runs the real `tessera` binary.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::Run;
use tessera::{CookieCodec, Map, Value};

/// The worked example from Flask: key `dev-secret-key`, signed at 1700000000.
const EXAMPLE_KEY: &str = "dev-secret-key";
const EXAMPLE_COOKIE: &str =
    "eyJuYW1lIjoiYWxpY2UiLCJ1c2VyX2lkIjo0Mn0.ZVPxAA.oBF4FsEPGc1aqRIni6RktBSluqI";
const EXAMPLE_JSON: &str = r#"{"name":"alice","user_id":42}"#;
/// The largest max age the application takes (36,500 days): the example
/// cookie, from 2023, stays acceptable for a century.
const HUGE_MAX_AGE: &str = "3153600000";

const KEY: &str = "0123456789abcdef0123456789abcdef-cli-test";
const OLD_KEY: &str = "fedcba9876543210fedcba9876543210-cli-old";

impl Run {
    fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// The single stdout line, checking there is exactly one.
    fn line(&self) -> &str {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one stdout line: {:?}",
            self.stdout
        );
        lines[0]
    }
}

/// Runs `tessera args…` with `stdin`, a clean key environment plus `env`.
fn run_with(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    run_with_stdin_bytes(args, stdin.as_bytes(), env)
}

/// [`run_with`], with stdin given as bytes (which need not be UTF-8).
fn run_with_stdin_bytes(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(args)
        .env_remove("SECRET_KEY")
        .env_remove("SECRET_KEY_FALLBACKS")
        .env_remove("PERMANENT_SESSION_LIFETIME")
        .env_remove("SESSION_COOKIE_NAME")
        .env_remove("TESSERA_MAX_PAYLOAD_SIZE")
        .env_remove("TESSERA_ENCRYPTED_COMPRESSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the tessera binary runs");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // The command may exit before reading stdin; a write error is then fine.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    Run::from(
        child
            .wait_with_output()
            .expect("the tessera binary finishes"),
    )
}

fn run(args: &[&str]) -> Run {
    run_with(args, "", &[])
}

fn sign(key: &str, json: &str) -> String {
    let out = run_with(&["cookie", "sign", "--secret-key", key], json, &[]);
    assert!(out.success(), "sign failed: {:?}", out.stderr);
    out.line().to_owned()
}

fn decode(key: &str, cookie: &str) -> Run {
    run(&["cookie", "decode", "--secret-key", key, cookie])
}

#[test]
fn worked_example_is_expired_with_the_default_max_age() {
    let out = decode(EXAMPLE_KEY, EXAMPLE_COOKIE);
    let reason = out.refusal();
    assert!(reason.starts_with("error: expired: "), "{reason}");
    assert!(reason.contains("max age is 2678400 s"), "{reason}");
}

#[test]
fn worked_example_decodes_with_a_large_max_age() {
    let out = run(&[
        "cookie",
        "decode",
        "--secret-key",
        EXAMPLE_KEY,
        "--max-age",
        HUGE_MAX_AGE,
        EXAMPLE_COOKIE,
    ]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
}

/// As the application reads them, the max age and the cookie's name come
/// from PERMANENT_SESSION_LIFETIME and SESSION_COOKIE_NAME, so that a
/// cookie the application refuses as expired is not called valid here; the
/// options win over them.
#[test]
fn the_application_environment_gives_the_max_age_and_the_cookie_name() {
    let decode_with = |extra: &[&str], env: &[(&str, &str)]| {
        let args = [
            &["cookie", "decode", "--secret-key", EXAMPLE_KEY][..],
            extra,
            &[EXAMPLE_COOKIE],
        ]
        .concat();
        run_with(&args, "", env)
    };
    // The longest lifetime the application accepts.
    let longest = tessera::config::MAX_LIFETIME_SECS.to_string();
    let lifetime = [("PERMANENT_SESSION_LIFETIME", longest.as_str())];
    let out = decode_with(&[], &lifetime);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    let reason = decode_with(&["--max-age", "60"], &lifetime)
        .refusal()
        .to_owned();
    assert!(reason.contains("max age is 60 s"), "{reason}");
    let reason = decode_with(&[], &[("PERMANENT_SESSION_LIFETIME", "60")])
        .refusal()
        .to_owned();
    assert!(reason.contains("max age is 60 s"), "{reason}");

    let cookie = sign_encrypted(KEY, EXAMPLE_JSON, &["--cookie-name", "__Host-session"]);
    let open = |extra: &[&str], name: &str| {
        let args = [
            &["cookie", "decode", "--encrypted", "--secret-key", KEY][..],
            extra,
            &[cookie.as_str()],
        ]
        .concat();
        run_with(&args, "", &[("SESSION_COOKIE_NAME", name)])
    };
    let out = open(&[], "__Host-session");
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    let refused = open(&["--cookie-name", "session"], "__Host-session");
    assert!(
        refused.refusal().contains("--cookie-name's"),
        "{:?}",
        refused.stderr
    );
    let refused = open(&[], "sid");
    assert!(
        refused
            .refusal()
            .contains(r#"named "sid", SESSION_COOKIE_NAME's, from the environment"#),
        "{:?}",
        refused.stderr
    );
}

/// The application's variables are read as the application reads them: an
/// empty or blank one counts as unset, blanks around a number are dropped,
/// and a value the application would refuse is refused naming the
/// variable, not the option it stands in for.
#[test]
fn the_application_environment_is_read_as_the_application_reads_it() {
    let decode_with = |extra: &[&str], env: &[(&str, &str)]| {
        let args = [
            &["cookie", "decode", "--secret-key", EXAMPLE_KEY][..],
            extra,
            &[EXAMPLE_COOKIE],
        ]
        .concat();
        run_with(&args, "", env)
    };
    for unset in ["", "  ", "\t"] {
        let out = decode_with(&[], &[("PERMANENT_SESSION_LIFETIME", unset)]);
        let reason = out.refusal();
        assert!(
            reason.contains("max age is 2678400 s"),
            "{unset:?}: {reason}"
        );
    }
    // `60.0` is 60 seconds, as the application (and Flask) reads it.
    for sixty in [" 60 ", "60.0"] {
        let out = decode_with(&[], &[("PERMANENT_SESSION_LIFETIME", sixty)]);
        let reason = out.refusal();
        assert!(reason.contains("max age is 60 s"), "{sixty:?}: {reason}");
    }
    for invalid in ["soon", "0", "-5", "99999999999"] {
        let out = decode_with(&[], &[("PERMANENT_SESSION_LIFETIME", invalid)]);
        assert_eq!(out.status, Some(1), "{invalid:?}: {:?}", out.stderr);
        let reason = out.refusal();
        assert!(
            reason.contains(&format!("invalid PERMANENT_SESSION_LIFETIME={invalid:?}")),
            "{invalid:?}: {reason}"
        );
        assert!(reason.contains("--max-age wins"), "{reason}");
        // The option does not read the variable at all.
        let out = decode_with(
            &["--max-age", HUGE_MAX_AGE],
            &[("PERMANENT_SESSION_LIFETIME", invalid)],
        );
        assert!(out.success(), "{invalid:?}: {:?}", out.stderr);
    }

    let cookie = sign_encrypted(KEY, EXAMPLE_JSON, &[]);
    let open = |name: &str| {
        run_with(
            &[
                "cookie",
                "decode",
                "--encrypted",
                "--secret-key",
                KEY,
                &cookie,
            ],
            "",
            &[("SESSION_COOKIE_NAME", name)],
        )
    };
    for unset in ["", " ", "\n"] {
        let out = open(unset);
        assert!(out.success(), "{unset:?}: {:?}", out.stderr);
        assert_eq!(out.line(), EXAMPLE_JSON);
    }
    // Not trimmed, as the application does not trim it: refused there.
    for invalid in [" session", "a;b"] {
        let out = open(invalid);
        assert_eq!(out.status, Some(1), "{invalid:?}: {:?}", out.stderr);
        let reason = out.refusal();
        assert!(
            reason.contains(&format!("invalid SESSION_COOKIE_NAME={invalid:?}")),
            "{reason}"
        );
        assert!(reason.contains("--cookie-name wins"), "{reason}");
    }
    // A pasted name=value is not taken for a name from the environment.
    let pasted = format!("session={cookie}");
    let out = run_with(
        &[
            "cookie",
            "decode",
            "--encrypted",
            "--secret-key",
            KEY,
            &pasted,
        ],
        "",
        &[("SESSION_COOKIE_NAME", "")],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
}

#[test]
fn pasted_prefix_and_stdin_are_accepted() {
    let prefixed = format!("session={EXAMPLE_COOKIE}");
    let args = [
        "cookie",
        "decode",
        "--secret-key",
        EXAMPLE_KEY,
        "--max-age",
        HUGE_MAX_AGE,
    ];
    let out = run(&[&args[..], &[prefixed.as_str()]].concat());
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);

    let out = run_with(
        &[&args[..], &["-"]].concat(),
        &format!("session={EXAMPLE_COOKIE}; Path=/; HttpOnly\n"),
        &[],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
}

#[test]
fn sign_then_decode_round_trips() {
    // Inputs are written in Flask's form (sorted keys), so the output is equal.
    for json in [
        r#"{"name":"alice","user_id":42}"#,
        r#"{"a":{" t":[1,2]}}"#,
        r#"{"_flashes":[{" t":["message","Hi"]}],"_permanent":true}"#,
        r#"{"raw":{" b":"/wA="}}"#,
        r#"{"u":{" u":"12345678123456781234567812345678"},"when":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}}"#,
        r#"{"escaped":{" di":{" t__":[1]}},"html":{" m":"<b>hi</b>"}}"#,
        r#"{"big":123456789012345678901234567890,"f":1.5,"n":null}"#,
        // Long enough to be compressed.
        &format!(r#"{{"text":"{}"}}"#, "abc".repeat(500)),
    ] {
        let cookie = sign(KEY, json);
        let out = decode(KEY, &cookie);
        assert!(out.success(), "{json}: {:?}", out.stderr);
        assert_eq!(out.line(), json);
    }
    let compressed = sign(KEY, &format!(r#"{{"text":"{}"}}"#, "abc".repeat(500)));
    assert!(compressed.starts_with('.'), "{compressed}");
}

#[test]
fn unicode_is_written_as_flask_writes_it() {
    let cookie = sign(KEY, "{\"name\": \"Zoë 😀\", \"city\":\"Zürich\"}");
    let out = decode(KEY, &cookie);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(
        out.line(),
        r#"{"city":"Z\u00fcrich","name":"Zo\u00eb \ud83d\ude00"}"#
    );
}

#[test]
fn sign_matches_the_library_byte_for_byte() {
    let cookie = sign(KEY, EXAMPLE_JSON);
    let payload = cookie.split('.').next().expect("a payload");
    let data = Map::from([
        ("name".to_owned(), Value::from("alice")),
        ("user_id".to_owned(), Value::from(42)),
    ]);
    let expected = CookieCodec::new(&KEY.into(), &[]).encode(&data, SystemTime::now());
    assert!(expected.starts_with(&format!("{payload}.")), "{expected}");
}

#[test]
fn a_salt_must_match() {
    let out = run_with(
        &[
            "cookie",
            "sign",
            "--secret-key",
            KEY,
            "--salt",
            "flask-session",
        ],
        "{}",
        &[],
    );
    assert!(out.success(), "{:?}", out.stderr);
    let cookie = out.line().to_owned();
    assert!(decode(KEY, &cookie).refusal().contains("bad signature"));
    let out = run(&[
        "cookie",
        "decode",
        "--secret-key",
        KEY,
        "--salt",
        "flask-session",
        &cookie,
    ]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), "{}");
}

#[test]
fn bad_signature_is_refused() {
    let cookie = sign(KEY, EXAMPLE_JSON);
    let reason = decode(OLD_KEY, &cookie).refusal().to_owned();
    assert_eq!(reason, "error: bad signature");

    // A payload changed under the original signature.
    let mut parts: Vec<&str> = cookie.split('.').collect();
    parts[0] = "eyJuYW1lIjoibWFsbG9yeSIsInVzZXJfaWQiOjF9";
    let tampered = parts.join(".");
    assert_eq!(decode(KEY, &tampered).refusal(), "error: bad signature");
}

#[test]
fn a_fallback_key_is_accepted() {
    let cookie = sign(OLD_KEY, EXAMPLE_JSON);
    let out = run(&[
        "cookie",
        "decode",
        "--secret-key",
        KEY,
        "--fallback-key",
        "some-older-key",
        "--fallback-key",
        OLD_KEY,
        &cookie,
    ]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);

    let fallbacks = format!("some-older-key, {OLD_KEY}");
    let out = run_with(
        &["cookie", "decode", "--secret-key", KEY, &cookie],
        "",
        &[("SECRET_KEY_FALLBACKS", &fallbacks)],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);

    // --fallback-key replaces SECRET_KEY_FALLBACKS.
    let out = run_with(
        &[
            "cookie",
            "decode",
            "--secret-key",
            KEY,
            "--fallback-key",
            "another",
            &cookie,
        ],
        "",
        &[("SECRET_KEY_FALLBACKS", &fallbacks)],
    );
    assert_eq!(out.refusal(), "error: bad signature");
}

#[test]
fn secret_key_comes_from_the_environment() {
    let cookie = sign(KEY, EXAMPLE_JSON);
    let out = run_with(&["cookie", "decode", &cookie], "", &[("SECRET_KEY", KEY)]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    assert!(
        out.stderr.is_empty(),
        "verified: no warning {:?}",
        out.stderr
    );

    // The flag wins over the variable.
    let out = run_with(
        &["cookie", "decode", "--secret-key", KEY, &cookie],
        "",
        &[("SECRET_KEY", OLD_KEY)],
    );
    assert!(out.success(), "{:?}", out.stderr);
    let out = run_with(
        &["cookie", "decode", "--secret-key", OLD_KEY, &cookie],
        "",
        &[("SECRET_KEY", KEY)],
    );
    assert_eq!(out.refusal(), "error: bad signature");

    // Signing reads it too.
    let out = run_with(&["cookie", "sign"], "{\"a\":1}", &[("SECRET_KEY", KEY)]);
    assert!(out.success(), "{:?}", out.stderr);
    let out = decode(KEY, out.line());
    assert_eq!(out.line(), r#"{"a":1}"#);
}

#[test]
fn malformed_cookies_are_refused() {
    for cookie in [
        "garbage",
        "not.base64!.sig",
        "@@@.ZVPxAA.oBF4FsEPGc1aqRIni6RktBSluqI",
        ".",
        "",
        "session=",
    ] {
        let out = decode(KEY, cookie);
        let reason = out.refusal();
        assert!(
            reason.starts_with("error: malformed: ") || reason == "error: bad signature",
            "{cookie:?}: {reason}"
        );
    }
    assert!(decode(KEY, "garbage")
        .refusal()
        .starts_with("error: malformed: "));
}

#[test]
fn signed_garbage_payload_is_malformed() {
    // A correctly signed payload that is not JSON.
    let codec = CookieCodec::new(&KEY.into(), &[]);
    let valid = codec.encode(&Map::new(), SystemTime::now());
    let (_, rest) = valid.split_once('.').expect("a signed cookie");
    let timestamp = rest.split('.').next().expect("a timestamp");
    let cookie = sign_raw(&format!("bm9wZQ.{timestamp}"));
    let reason = decode(KEY, &cookie).refusal().to_owned();
    assert!(reason.starts_with("error: malformed: "), "{reason}");
}

/// Signs `value` (`payload.timestamp`) as itsdangerous does, for payloads the
/// codec would never produce.
fn sign_raw(value: &str) -> String {
    sign_raw_with(KEY.as_bytes(), value)
}

/// [`sign_raw`] with another key, also one the codec refuses (empty).
fn sign_raw_with(key: &[u8], value: &str) -> String {
    use hmac::{Hmac, Mac};
    use sha1::Sha1;
    let mut derive = Hmac::<Sha1>::new_from_slice(key).expect("any key length");
    derive.update(tessera::DEFAULT_SALT.as_bytes());
    let derived = derive.finalize().into_bytes();
    let mut mac = Hmac::<Sha1>::new_from_slice(&derived).expect("any key length");
    mac.update(value.as_bytes());
    let signature = mac.finalize().into_bytes();
    format!("{value}.{}", b64(&signature))
}

/// URL-safe base64 without padding.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[test]
fn signed_non_objects_are_refused() {
    let codec = CookieCodec::new(&KEY.into(), &[]);
    let valid = codec.encode(&Map::new(), SystemTime::now());
    let timestamp = valid.split('.').nth(1).expect("a timestamp");
    for json in ["[1,2]", "42", "\"s\"", "null", r#"{" t":[1]}"#] {
        let cookie = sign_raw(&format!("{}.{timestamp}", b64(json.as_bytes())));
        let reason = decode(KEY, &cookie).refusal().to_owned();
        assert!(
            reason.starts_with("error: not an object: "),
            "{json}: {reason}"
        );
    }
}

/// A payload another writer made with numbers Python writes otherwise is
/// shown as Flask holds it (`json.loads` makes `1E5` the float 100000.0).
#[test]
fn decode_shows_numbers_as_flask_reads_them() {
    let codec = CookieCodec::new(&KEY.into(), &[]);
    let valid = codec.encode(&Map::new(), SystemTime::now());
    let (_, rest) = valid.split_once('.').expect("a signed cookie");
    let timestamp = rest.split('.').next().expect("a timestamp");
    let payload = br#"{"a":1E5,"b":[0.10,-0],"c":1e300,"d":7}"#;
    let cookie = sign_raw(&format!("{}.{timestamp}", b64(payload)));
    for out in [decode(KEY, &cookie), run(&["cookie", "decode", &cookie])] {
        assert!(out.success(), "{:?}", out.stderr);
        assert_eq!(out.line(), r#"{"a":100000.0,"b":[0.1,0],"c":1e+300,"d":7}"#);
    }
}

#[test]
fn future_timestamps_are_refused() {
    let codec = CookieCodec::new(&KEY.into(), &[]);
    let later = SystemTime::now() + Duration::from_secs(3600);
    let cookie = codec.encode(&Map::new(), later);
    let reason = decode(KEY, &cookie).refusal().to_owned();
    assert!(reason.starts_with("error: timestamp is "), "{reason}");
    assert!(reason.ends_with(" s in the future"), "{reason}");
}

#[test]
fn oversized_payloads_are_refused() {
    let cookie = sign(KEY, &format!(r#"{{"text":"{}"}}"#, "abc".repeat(1_500)));
    let out = run(&[
        "cookie",
        "decode",
        "--secret-key",
        KEY,
        "--max-payload-size",
        "4096",
        &cookie,
    ]);
    assert!(out.refusal().starts_with("error: too large: "));
    let out = run(&["cookie", "decode", "--max-payload-size", "4096", &cookie]);
    assert!(out.refusal().starts_with("error: too large: "));
}

/// The options stand in for the application's settings, and take what the
/// application takes for them (as their environment variables do): a max
/// age of 0 would refuse every cookie, a payload bound under 4096 bytes is
/// refused at the application's start, and an empty or malformed cookie
/// name is no name a browser sends.
#[test]
fn options_the_application_would_refuse_are_refused() {
    let cookie = sign(KEY, EXAMPLE_JSON);
    let decode_with = |option: &str, value: &str| {
        run(&[
            "cookie",
            "decode",
            "--secret-key",
            KEY,
            option,
            value,
            &cookie,
        ])
    };
    for (option, value, expected) in [
        ("--max-age", "0", "1..=3153600000"),
        ("--max-age", "3153600001", "1..=3153600000"),
        ("--max-payload-size", "4095", "at least 4096 bytes"),
        ("--max-payload-size", "5", "at least 4096 bytes"),
        ("--cookie-name", "", "not a cookie name"),
        ("--cookie-name", "my session", "not a cookie name"),
    ] {
        let out = decode_with(option, value);
        assert_eq!(out.status, Some(2), "{option} {value:?}: {:?}", out.stderr);
        assert!(
            out.stderr.contains(expected),
            "{option} {value:?}: {:?}",
            out.stderr
        );
    }
    let out = run_with(
        &[
            "cookie",
            "sign",
            "--secret-key",
            KEY,
            "--encrypted",
            "--cookie-name",
            "",
        ],
        "{}",
        &[],
    );
    assert_eq!(out.status, Some(2), "{:?}", out.stderr);
    for (option, value) in [
        ("--max-age", "1"),
        ("--max-age", "3153600000"),
        ("--max-payload-size", "4096"),
    ] {
        let out = decode_with(option, value);
        assert!(out.success(), "{option} {value}: {:?}", out.stderr);
    }
}

/// Run in the application's environment, `decode` bounds payloads as the
/// application does (TESSERA_MAX_PAYLOAD_SIZE), larger or smaller than the
/// default; `--max-payload-size` wins, and a bound the application would
/// refuse is refused.
#[test]
fn the_payload_bound_comes_from_the_environment() {
    // About 10 KB inflated: within the default bound.
    let cookie = sign(KEY, &format!(r#"{{"text":"{}"}}"#, "abc".repeat(3_400)));
    let decode_in = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["cookie", "decode", "--secret-key", KEY];
        all.extend_from_slice(args);
        all.push(&cookie);
        run_with(&all, "", env)
    };
    assert!(decode_in(&[], &[]).success());
    let small = [("TESSERA_MAX_PAYLOAD_SIZE", "4096")];
    assert!(decode_in(&[], &small)
        .refusal()
        .starts_with("error: too large: payload exceeds 4096 bytes"));
    assert!(decode_in(&["--max-payload-size", "20000"], &small).success());
    for blank in ["", "  "] {
        assert!(decode_in(&[], &[("TESSERA_MAX_PAYLOAD_SIZE", blank)]).success());
    }
    // A 2 MB session, past the default bound, read where the application
    // allows it.
    let json = format!(r#"{{"text":"{}"}}"#, "a".repeat(2 << 20));
    let larger = [("TESSERA_MAX_PAYLOAD_SIZE", "4194304")];
    let out = run_with(&["cookie", "sign", "--secret-key", KEY], &json, &[]);
    assert!(out.refusal().starts_with("error: too large: "));
    let out = run_with(&["cookie", "sign", "--secret-key", KEY], &json, &larger);
    assert!(out.success(), "{}", out.stderr);
    let big = out.line().to_owned();
    let out = run_with(&["cookie", "decode", "--secret-key", KEY, "-"], &big, &[]);
    assert!(out.refusal().starts_with("error: too large: "));
    let out = run_with(
        &["cookie", "decode", "--secret-key", KEY, "-"],
        &big,
        &larger,
    );
    assert!(out.success(), "{}", out.stderr);
    for invalid in ["100", "lots", "-1"] {
        let env = [("TESSERA_MAX_PAYLOAD_SIZE", invalid)];
        let reason = decode_in(&[], &env).refusal().to_owned();
        assert!(
            reason.contains("TESSERA_MAX_PAYLOAD_SIZE") && reason.contains("--max-payload-size"),
            "{invalid}: {reason}"
        );
        // `sign` has no such option, and does not suggest one.
        let out = run_with(&["cookie", "sign", "--secret-key", KEY], "{}", &env);
        let reason = out.refusal();
        assert!(
            reason.contains("TESSERA_MAX_PAYLOAD_SIZE") && !reason.contains("--max-payload-size"),
            "{invalid}: {reason}"
        );
    }
}

#[test]
fn without_a_key_decoding_is_unverified() {
    let out = run(&["cookie", "decode", EXAMPLE_COOKIE]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    assert!(out.stderr.contains("UNVERIFIED"), "{:?}", out.stderr);
    assert!(out
        .stderr
        .contains("neither the signature nor the age was checked"));

    // Even a forged signature decodes, still with the warning.
    let forged = EXAMPLE_COOKIE.replace("oBF4", "xxxx");
    let out = run(&["cookie", "decode", &forged]);
    assert_eq!(out.line(), EXAMPLE_JSON);
    assert!(out.stderr.contains("UNVERIFIED"));

    // An empty key (a script's unset variable) is an error, not a reason to
    // skip verification; so are fallback keys without a key.
    let forged_argument = ["cookie", "decode", forged.as_str()];
    for (args, env) in [
        (&forged_argument[..], &[("SECRET_KEY", "")][..]),
        (
            &["cookie", "decode", "--secret-key", "", &forged][..],
            &[("SECRET_KEY", KEY)][..],
        ),
    ] {
        let out = run_with(args, "", env);
        assert!(out.stdout.is_empty(), "{:?}", out.stdout);
        assert!(
            out.refusal().starts_with("error: the secret key is empty"),
            "{:?}",
            out.stderr
        );
    }
    for (args, env) in [
        (&forged_argument[..], &[("SECRET_KEY_FALLBACKS", KEY)][..]),
        (
            &["cookie", "decode", "--fallback-key", KEY, &forged][..],
            &[][..],
        ),
    ] {
        let out = run_with(args, "", env);
        assert!(out.stdout.is_empty(), "{:?}", out.stdout);
        assert!(
            out.refusal()
                .starts_with("error: fallback keys given without a secret key"),
            "{:?}",
            out.stderr
        );
    }

    assert!(run(&["cookie", "decode", "garbage"])
        .refusal()
        .starts_with("error: malformed: "));
}

/// An empty key among SECRET_KEY_FALLBACKS (`[""]`, which only the JSON
/// form can give) is refused as the application refuses it at startup:
/// with it, a cookie anyone can sign would read as verified.
#[test]
fn an_empty_fallback_key_from_the_environment_is_refused() {
    // Signed with an empty key, as anyone can (the codec refuses to).
    let valid = CookieCodec::new(&KEY.into(), &[]).encode(&Map::new(), SystemTime::now());
    let timestamp = valid.split('.').nth(1).expect("a timestamp");
    let forged = sign_raw_with(
        b"",
        &format!("{}.{timestamp}", b64(br#"{"user_id":"admin"}"#)),
    );
    for (fallbacks, position) in [(r#"[""]"#, 1), (r#"["old-key-0123456789", ""]"#, 2)] {
        let out = run_with(
            &["cookie", "decode", &forged],
            "",
            &[("SECRET_KEY", KEY), ("SECRET_KEY_FALLBACKS", fallbacks)],
        );
        assert!(out.stdout.is_empty(), "{fallbacks}: {:?}", out.stdout);
        assert!(
            out.refusal()
                .contains(&format!("key {position} of SECRET_KEY_FALLBACKS")),
            "{fallbacks}: {:?}",
            out.stderr
        );
    }
}

/// A key of blanks only is no key to the application (its configuration
/// reads a blank SECRET_KEY as unset): refused as an empty key is, never
/// used as a key, nor a reason to read a cookie unverified.
#[test]
fn a_blank_key_is_refused_as_an_empty_one() {
    let cookie = sign(KEY, EXAMPLE_JSON);
    for blank in [" ", "  \t", "\n"] {
        for (args, env) in [
            (
                &["cookie", "decode", cookie.as_str()][..],
                &[("SECRET_KEY", blank)][..],
            ),
            (
                &["cookie", "decode", "--secret-key", blank, &cookie][..],
                &[][..],
            ),
            (
                &["cookie", "decode", "--encrypted", cookie.as_str()][..],
                &[("SECRET_KEY", blank)][..],
            ),
        ] {
            let out = run_with(args, "", env);
            let reason = out.refusal();
            assert!(
                reason.starts_with("error: the secret key is empty or only blanks"),
                "{blank:?} {args:?}: {reason}"
            );
        }
        let out = run_with(&["cookie", "sign"], "{}", &[("SECRET_KEY", blank)]);
        let reason = out.refusal();
        assert!(
            reason.starts_with("error: the secret key is empty or only blanks"),
            "{blank:?}: {reason}"
        );
        let out = run(&[
            "cookie",
            "decode",
            "--fallback-key",
            blank,
            "--secret-key",
            KEY,
            &cookie,
        ]);
        assert!(
            out.refusal().contains("--fallback-key is empty"),
            "{:?}",
            out.stderr
        );
    }
    // Blanks around a real key are part of it, as in Flask.
    let spaced = format!(" {KEY} ");
    let cookie = sign(&spaced, EXAMPLE_JSON);
    assert_eq!(decode(&spaced, &cookie).line(), EXAMPLE_JSON);
    assert!(decode(KEY, &cookie).refusal().contains("signature"));
}

#[test]
fn sign_refuses_what_is_not_an_object() {
    for (json, expected) in [
        ("[1, 2]", "error: not an object: "),
        ("42", "error: not an object: "),
        (r#"{" t": [1, 2]}"#, "error: not an object: "),
        ("{nope", "error: invalid JSON on stdin: "),
        ("", "error: invalid JSON on stdin: "),
        ("{} {}", "error: invalid JSON on stdin: "),
        // Flask would read these dates as None: signing them would lose them.
        (
            r#"{"a": {" d": "2024-01-01T00:00:00Z"}}"#,
            "error: invalid JSON on stdin: ",
        ),
        (
            r#"{"a": {" d": "yesterday"}}"#,
            "error: invalid JSON on stdin: ",
        ),
    ] {
        let out = run_with(&["cookie", "sign", "--secret-key", KEY], json, &[]);
        let reason = out.refusal();
        assert!(reason.starts_with(expected), "{json:?}: {reason}");
    }
    let out = run_with(&["cookie", "sign", "--secret-key", ""], "{}", &[]);
    assert!(out.refusal().contains("secret key is empty"));
}

/// Numbers typed in any JSON form are signed as Flask would sign the same
/// data: as Python's `json.loads` reads them and `json.dumps` writes them
/// (the expected line is what Flask 3.1's tagged serializer writes for the
/// input).
#[test]
fn sign_writes_numbers_as_python_does() {
    let input = r#"{"a": 1e300, "b": 1E5, "c": 1.50, "d": -0, "e": 0e0, "f": 2.0e0,
        "g": 100000000000000000000000.0, "h": [1e400, -1e-400, {"x": [5e-324]}],
        "i": {" t": [1.0e1]}, "j": 12345678901234567890123, "k": NaN, "l": -0.0}"#;
    let cookie = sign(KEY, input);
    let out = decode(KEY, &cookie);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(
        out.line(),
        r#"{"a":1e+300,"b":100000.0,"c":1.5,"d":0,"e":0.0,"f":2.0,"g":1e+23,"h":[Infinity,-0.0,{"x":[5e-324]}],"i":{" t":[10.0]},"j":12345678901234567890123,"k":NaN,"l":-0.0}"#
    );
    // Python refuses integers of more than 4300 digits, so Flask would
    // refuse the cookie: signing one is an error.
    let longest = format!(r#"{{"n": {}}}"#, "9".repeat(4300));
    sign(KEY, &longest);
    let too_long = format!(r#"{{"n": -{}}}"#, "9".repeat(4301));
    let out = run_with(&["cookie", "sign", "--secret-key", KEY], &too_long, &[]);
    assert!(
        out.refusal()
            .contains("an integer of more than 4300 digits"),
        "{:?}",
        out.stderr
    );
}

/// `count` letters from xorshift, the same every run: zlib shrinks them to
/// about 60% at best.
fn random_letters(count: usize) -> String {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect()
}

/// A cookie over MAX_COOKIE_SIZE is signed with a warning (as Flask warns);
/// a session tessera would refuse to read is not signed.
#[test]
fn sign_warns_about_large_cookies_and_refuses_what_cannot_be_read() {
    // zlib cannot shrink them below the limit.
    let random_text = random_letters(8000);
    let out = run_with(
        &["cookie", "sign", "--secret-key", KEY],
        &format!(r#"{{"a": "{random_text}"}}"#),
        &[],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert!(out.line().len() > 4093);
    assert!(
        out.stderr.contains("the cookie is too large"),
        "{:?}",
        out.stderr
    );
    let out = run_with(
        &["cookie", "sign", "--secret-key", KEY],
        r#"{"a": "small"}"#,
        &[],
    );
    assert!(out.success() && out.stderr.is_empty(), "{:?}", out.stderr);

    let huge = format!(
        r#"{{"a": "{}"}}"#,
        "x".repeat(tessera::DEFAULT_MAX_PAYLOAD_SIZE)
    );
    let out = run_with(&["cookie", "sign", "--secret-key", KEY], &huge, &[]);
    assert!(out.stdout.is_empty());
    assert!(
        out.refusal().starts_with("error: too large: "),
        "{:?}",
        out.stderr
    );
}

#[test]
fn sign_warns_about_weak_keys_on_stderr_only() {
    let out = run_with(
        &["cookie", "sign", "--secret-key", EXAMPLE_KEY],
        EXAMPLE_JSON,
        &[],
    );
    assert!(out.success());
    assert!(out.stderr.contains("weak"), "{:?}", out.stderr);
    let cookie = out.line();
    assert!(cookie.starts_with("eyJuYW1lIjoiYWxpY2UiLCJ1c2VyX2lkIjo0Mn0."));
    let out = run_with(&["cookie", "sign", "--secret-key", KEY], EXAMPLE_JSON, &[]);
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
}

#[test]
fn key_generate_prints_a_fresh_key() {
    let first = run(&["key", "generate"]);
    let second = run(&["key", "generate"]);
    for out in [&first, &second] {
        assert!(out.success());
        assert!(out.stderr.is_empty());
        assert_eq!(out.stdout.len(), 65, "{:?}", out.stdout);
        let key = out.line();
        assert_eq!(key.len(), 64);
        assert!(key
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
    assert_ne!(first.stdout, second.stdout);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["cookie", "sign"][..],
        &["cookie", "decode"],
        &["cookie", "frobnicate"],
        &["cookie", "decode", "--max-age", "soon", "x.y.z"],
        &["nope"],
        &[],
    ] {
        let out = run(args);
        assert_eq!(out.status, Some(2), "{args:?}: {:?}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
    }
}

#[test]
fn help_explains_keys_and_examples() {
    let out = run(&["cookie", "decode", "--help"]);
    assert!(out.success());
    for needle in [
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "UNVERIFIED",
        "--max-age",
        "2678400",
        "Example",
    ] {
        assert!(out.stdout.contains(needle), "{needle} missing");
    }
    // Key values from the environment are never shown.
    let out = run_with(&["cookie", "decode", "--help"], "", &[("SECRET_KEY", KEY)]);
    assert!(!out.stdout.contains(KEY));
    for args in [
        &["--help"][..],
        &["cookie", "sign", "--help"],
        &["key", "--help"],
    ] {
        let out = run(args);
        assert!(out.success(), "{args:?}");
        assert!(out.stdout.contains("Example"), "{args:?}");
    }
}

fn sign_encrypted(key: &str, json: &str, extra: &[&str]) -> String {
    let args = [
        &["cookie", "sign", "--encrypted", "--secret-key", key][..],
        extra,
    ]
    .concat();
    let out = run_with(&args, json, &[]);
    assert!(out.success(), "sign --encrypted failed: {:?}", out.stderr);
    out.line().to_owned()
}

fn decode_encrypted(key: &str, cookie: &str, extra: &[&str]) -> Run {
    let args = [
        &["cookie", "decode", "--encrypted", "--secret-key", key][..],
        extra,
        &[cookie],
    ]
    .concat();
    run(&args)
}

#[test]
fn encrypted_sign_then_decode_round_trips() {
    let long = format!(r#"{{"text":"{}"}}"#, "abc".repeat(500));
    for json in [
        r#"{"name":"alice","user_id":42}"#,
        r#"{"_flashes":[{" t":["message","Hi"]}],"_permanent":true}"#,
        r#"{"raw":{" b":"/wA="}}"#,
        r#"{"u":{" u":"12345678123456781234567812345678"},"when":{" d":"Tue, 02 Jan 2024 03:04:05 GMT"}}"#,
        r#"{"big":123456789012345678901234567890,"f":1.5,"n":null}"#,
        &long,
    ] {
        for extra in [&[][..], &["--compress"]] {
            let cookie = sign_encrypted(KEY, json, extra);
            assert!(cookie.starts_with('E'), "{cookie}");
            assert!(!cookie.contains('.'), "{cookie}");
            let out = decode_encrypted(KEY, &cookie, &[]);
            assert!(out.success(), "{json}: {:?}", out.stderr);
            assert_eq!(out.line(), json);
            assert!(out.stderr.is_empty(), "{:?}", out.stderr);
        }
    }
    // Not compressed unless asked for.
    let plain = sign_encrypted(KEY, &long, &[]);
    let compressed = sign_encrypted(KEY, &long, &["--compress"]);
    assert!(plain.len() > long.len(), "{}", plain.len());
    assert!(compressed.len() < 200, "{}", compressed.len());
    // The contents are not in the cookie.
    let cookie = sign_encrypted(KEY, r#"{"name":"alice-in-plain-sight"}"#, &[]);
    assert!(!cookie.contains("alice"));
    assert_ne!(
        cookie,
        sign_encrypted(KEY, r#"{"name":"alice-in-plain-sight"}"#, &[])
    );
}

#[test]
fn encrypted_decode_with_a_wrong_key_is_refused() {
    let cookie = sign_encrypted(KEY, EXAMPLE_JSON, &[]);
    let reason = decode_encrypted(OLD_KEY, &cookie, &[]).refusal().to_owned();
    assert!(reason.starts_with("error: cannot decrypt: "), "{reason}");
    // A changed character too.
    let mut tampered = cookie.into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ASCII");
    let reason = decode_encrypted(KEY, &tampered, &[]).refusal().to_owned();
    assert!(
        reason.starts_with("error: cannot decrypt: ") || reason.starts_with("error: malformed: "),
        "{reason}"
    );
}

#[test]
fn encrypted_cookie_name_must_match() {
    let cookie = sign_encrypted(KEY, EXAMPLE_JSON, &["--cookie-name", "__Host-session"]);
    let reason = decode_encrypted(KEY, &cookie, &[]).refusal().to_owned();
    assert!(reason.starts_with("error: cannot decrypt: "), "{reason}");
    let out = decode_encrypted(KEY, &cookie, &["--cookie-name", "__Host-session"]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    // A pasted `name=` prefix is dropped as for signed cookies.
    let pasted = format!("__Host-session={cookie}; Path=/; Secure");
    let out = decode_encrypted(KEY, &pasted, &["--cookie-name", "__Host-session"]);
    assert_eq!(out.line(), EXAMPLE_JSON);
}

/// `sign` seals for the name the application sends, as `decode` opens
/// with it: both read SESSION_COOKIE_NAME.
#[test]
fn encrypted_cookies_are_sealed_for_the_applications_cookie_name() {
    let app = [("SECRET_KEY", KEY), ("SESSION_COOKIE_NAME", "app_session")];
    let out = run_with(&["cookie", "sign", "--encrypted"], EXAMPLE_JSON, &app);
    assert!(out.success(), "{:?}", out.stderr);
    let cookie = out.line().to_owned();
    let out = run_with(&["cookie", "decode", "--encrypted", &cookie], "", &app);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    // Bound to that name, not to the default one.
    let reason = decode_encrypted(KEY, &cookie, &[]).refusal().to_owned();
    assert!(reason.starts_with("error: cannot decrypt: "), "{reason}");
    // The option wins, and a blank variable counts as unset.
    let out = run_with(
        &["cookie", "sign", "--encrypted", "--cookie-name", "other"],
        EXAMPLE_JSON,
        &app,
    );
    let cookie = out.line().to_owned();
    let out = decode_encrypted(KEY, &cookie, &["--cookie-name", "other"]);
    assert_eq!(out.line(), EXAMPLE_JSON);
    let out = run_with(
        &["cookie", "sign", "--encrypted"],
        EXAMPLE_JSON,
        &[("SECRET_KEY", KEY), ("SESSION_COOKIE_NAME", " ")],
    );
    assert!(out.success(), "{:?}", out.stderr);
    let out = decode_encrypted(KEY, out.line(), &[]);
    assert_eq!(out.line(), EXAMPLE_JSON);
}

#[test]
fn encrypted_fallback_key_is_accepted() {
    let cookie = sign_encrypted(OLD_KEY, EXAMPLE_JSON, &[]);
    let out = decode_encrypted(
        KEY,
        &cookie,
        &["--fallback-key", "older", "--fallback-key", OLD_KEY],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    let out = run_with(
        &["cookie", "decode", "--encrypted", &cookie],
        "",
        &[("SECRET_KEY", KEY), ("SECRET_KEY_FALLBACKS", OLD_KEY)],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    let reason = decode_encrypted(KEY, &cookie, &[]).refusal().to_owned();
    assert!(reason.starts_with("error: cannot decrypt: "), "{reason}");
}

#[test]
fn encrypted_decode_needs_a_key() {
    let cookie = sign_encrypted(KEY, EXAMPLE_JSON, &[]);
    // A usage error (status 2), as `sign` without a key is.
    for command in [
        &["cookie", "decode", "--encrypted", &cookie][..],
        &["cookie", "sign"],
    ] {
        let out = run(command);
        assert_eq!(out.status, Some(2), "{command:?}: {:?}", out.stderr);
        assert!(out.stdout.is_empty(), "{:?}", out.stdout);
        assert!(
            out.stderr.starts_with("error: no secret key: "),
            "{:?}",
            out.stderr
        );
        assert!(out.stderr.contains("--secret-key KEY"), "{:?}", out.stderr);
    }
    let out = run(&["cookie", "decode", "--encrypted", &cookie]);
    assert!(
        out.stderr.contains("cannot be read without its key"),
        "{:?}",
        out.stderr
    );
    let out = run_with(
        &["cookie", "decode", "--encrypted", &cookie],
        "",
        &[("SECRET_KEY", "")],
    );
    assert!(
        out.refusal().contains("secret key is empty"),
        "{:?}",
        out.stderr
    );
    // Without --encrypted and without a key, the hint names --encrypted.
    let reason = run(&["cookie", "decode", &cookie]).refusal().to_owned();
    assert!(reason.starts_with("error: malformed: "), "{reason}");
    assert!(reason.contains("--encrypted"), "{reason}");
    // With a key but without --encrypted, too.
    let reason = decode(KEY, &cookie).refusal().to_owned();
    assert!(reason.contains("--encrypted"), "{reason}");
    // And a signed cookie given to --encrypted says so.
    let signed = sign(KEY, EXAMPLE_JSON);
    let reason = decode_encrypted(KEY, &signed, &[]).refusal().to_owned();
    assert!(reason.contains("signed cookie"), "{reason}");
}

#[test]
fn encrypted_age_and_size_limits_apply() {
    let codec = CookieCodec::encrypted(&KEY.into(), &[], "session");
    let future = codec.encode(&Map::new(), SystemTime::now() + Duration::from_secs(3600));
    let reason = decode_encrypted(KEY, &future, &[]).refusal().to_owned();
    assert!(reason.starts_with("error: timestamp is "), "{reason}");
    let old = codec.encode(&Map::new(), SystemTime::now() - Duration::from_secs(120));
    let reason = decode_encrypted(KEY, &old, &["--max-age", "60"])
        .refusal()
        .to_owned();
    assert!(reason.starts_with("error: expired: "), "{reason}");
    let big = sign_encrypted(
        KEY,
        &format!(r#"{{"text":"{}"}}"#, "abc".repeat(1_500)),
        &["--compress"],
    );
    let reason = decode_encrypted(KEY, &big, &["--max-payload-size", "4096"])
        .refusal()
        .to_owned();
    assert!(reason.starts_with("error: too large: "), "{reason}");
}

/// An encrypted cookie is sealed, not signed, and is bound to a cookie name:
/// a refusal says so, and which name it was opened under, from where.
#[test]
fn encrypted_refusals_say_sealed_and_the_name_tried() {
    let codec = CookieCodec::encrypted(&KEY.into(), &[], "session");
    let old = codec.encode(&Map::new(), SystemTime::now() - Duration::from_secs(120));
    let reason = decode_encrypted(KEY, &old, &["--max-age", "60"])
        .refusal()
        .to_owned();
    assert!(reason.starts_with("error: expired: sealed 12"), "{reason}");
    assert!(reason.contains("max age is 60 s"), "{reason}");
    assert!(!reason.contains("signed"), "{reason}");
    // A signed cookie is still signed.
    let signed = decode(EXAMPLE_KEY, EXAMPLE_COOKIE).refusal().to_owned();
    assert!(signed.starts_with("error: expired: signed "), "{signed}");

    let sid = sign_encrypted(KEY, EXAMPLE_JSON, &["--cookie-name", "sid"]);
    for (cookie, extra, says) in [
        (
            sid.clone(),
            &[][..],
            r#"named "session", the default; pass the app's SESSION_COOKIE_NAME with --cookie-name if it is another"#,
        ),
        (
            sid.clone(),
            &["--cookie-name", "other"][..],
            r#"named "other", --cookie-name's"#,
        ),
        (
            format!("other={sid}"),
            &[][..],
            r#"named "other", the pasted one"#,
        ),
    ] {
        let reason = decode_encrypted(KEY, &cookie, extra).refusal().to_owned();
        assert!(reason.starts_with("error: cannot decrypt: "), "{reason}");
        assert!(
            reason.contains(&format!("(opened as an encrypted cookie {says})")),
            "{cookie} {extra:?}: {reason}"
        );
    }
    let out = decode_encrypted(KEY, &sid, &["--cookie-name", "sid"]);
    assert_eq!(out.line(), EXAMPLE_JSON);
}

#[test]
fn a_cookie_sealed_by_the_cli_is_opened_by_the_library() {
    let cookie = sign_encrypted(KEY, EXAMPLE_JSON, &["--cookie-name", "sid"]);
    let expected = Map::from([
        ("name".to_owned(), Value::from("alice")),
        ("user_id".to_owned(), Value::from(42)),
    ]);
    let codec = CookieCodec::encrypted(&KEY.into(), &[], "sid");
    assert_eq!(
        codec
            .decode(&cookie, SystemTime::now())
            .expect("opens")
            .data,
        expected
    );
    // As the layer's configuration builds it, from the environment's names.
    let config = tessera::SessionConfigBuilder::default()
        .with_vars([
            ("SECRET_KEY", KEY),
            ("SESSION_TYPE", "encrypted"),
            ("SESSION_COOKIE_NAME", "sid"),
        ])
        .and_then(tessera::SessionConfigBuilder::build)
        .expect("config");
    let decoded = config
        .cookie_codec()
        .decode(&cookie, SystemTime::now())
        .expect("the layer's codec opens it");
    assert_eq!(decoded.data, expected);
    // And the other way round.
    let sealed = config.cookie_codec().encode(&expected, SystemTime::now());
    let out = decode_encrypted(KEY, &sealed, &["--cookie-name", "sid"]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
}

#[test]
fn encrypted_options_need_encrypted() {
    for args in [
        &["cookie", "sign", "--secret-key", KEY, "--compress"][..],
        &[
            "cookie",
            "sign",
            "--secret-key",
            KEY,
            "--cookie-name",
            "sid",
        ],
    ] {
        let out = run_with(args, "{}", &[]);
        assert_eq!(out.status, Some(2), "{args:?}: {:?}", out.stderr);
        assert!(out.stderr.contains("--encrypted"), "{:?}", out.stderr);
    }
    for (args, needles) in [
        (
            &["cookie", "decode", "--help"][..],
            &["--encrypted", "--cookie-name", "cannot decrypt"][..],
        ),
        (
            &["cookie", "sign", "--help"],
            &["--encrypted", "--cookie-name", "--compress", "CRIME"],
        ),
    ] {
        let out = run(args);
        assert!(out.success());
        for needle in needles {
            assert!(out.stdout.contains(needle), "{args:?}: {needle} missing");
        }
    }
}

/// A cookie can be pasted as its header: the session cookie is taken from a
/// `Cookie:` or `Set-Cookie:` line, and an encrypted cookie pasted with its
/// name is opened under that name.
#[test]
fn cookies_pasted_as_headers_decode() {
    let signed = sign(KEY, EXAMPLE_JSON);
    for pasted in [
        format!("Cookie: theme=dark; session={signed}; lang=fr"),
        format!("Set-Cookie: session={signed}; HttpOnly; Path=/"),
        format!("session=\"{signed}\""),
        // One Cookie line per cookie, as HTTP/2 sends them.
        format!("Cookie: theme=dark\nCookie: session={signed}\n"),
        format!("Set-Cookie: theme=dark; Path=/\r\nSet-Cookie: session={signed}; HttpOnly"),
    ] {
        let out = decode(KEY, &pasted);
        assert!(out.success(), "{pasted}: {:?}", out.stderr);
        assert_eq!(out.line(), EXAMPLE_JSON);
    }
    let sealed = sign_encrypted(KEY, EXAMPLE_JSON, &["--cookie-name", "__Host-s"]);
    let out = decode_encrypted(KEY, &format!("__Host-s={sealed}"), &[]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    // A signed cookie of another name is picked out with --cookie-name; a
    // junk cookie of the same name before it does not hide it.
    let header = format!("Cookie: _ga=GA1.1.123; __Host-session=junk; __Host-session={signed}");
    let out = run(&[
        "cookie",
        "decode",
        "--secret-key",
        KEY,
        "--cookie-name",
        "__Host-session",
        &header,
    ]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    // Without a key too (unverified).
    let junk_first = format!("Cookie: session=junk; session={signed}");
    let out = run(&["cookie", "decode", &junk_first]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    let reason = decode(KEY, &header).refusal().to_owned();
    assert!(
        reason.contains("no cookie named \"session\"") && reason.contains("_ga, __Host-session"),
        "{reason}"
    );
    let reason = run(&[
        "cookie",
        "decode",
        "--secret-key",
        KEY,
        "--fallback-key",
        "",
        &signed,
    ])
    .refusal()
    .to_owned();
    assert!(reason.contains("--fallback-key is empty"), "{reason}");
    let out = run_with(
        &[
            "cookie",
            "sign",
            "--encrypted",
            "--secret-key",
            KEY,
            "--cookie-name",
            "a b;c",
        ],
        EXAMPLE_JSON,
        &[],
    );
    assert_eq!(out.status, Some(2), "{:?}", out.stderr);
    assert!(out.stderr.contains("not a cookie name"), "{:?}", out.stderr);
    // An explicit --cookie-name still wins over the pasted one: a pasted
    // cookie of another name is refused, naming both.
    let reason = decode_encrypted(
        KEY,
        &format!("__Host-s={sealed}"),
        &["--cookie-name", "other"],
    )
    .refusal()
    .to_owned();
    assert!(
        reason.starts_with("error: the pasted cookie is named \"__Host-s\", not \"other\""),
        "{reason}"
    );
    // The same through SESSION_COOKIE_NAME; a bare value is opened under the
    // given name.
    let out = run_with(
        &[
            "cookie",
            "decode",
            "--encrypted",
            "--secret-key",
            KEY,
            &format!("session={sealed}"),
        ],
        "",
        &[("SESSION_COOKIE_NAME", "__Host-s")],
    );
    assert!(
        out.refusal().contains("not \"__Host-s\""),
        "{:?}",
        out.stderr
    );
    let out = run_with(
        &[
            "cookie",
            "decode",
            "--encrypted",
            "--secret-key",
            KEY,
            &sealed,
        ],
        "",
        &[("SESSION_COOKIE_NAME", "__Host-s")],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
}

#[test]
fn several_session_cookies_say_which_one_is_shown() {
    let first = sign(KEY, r#"{"user_id":7}"#);
    let second = sign(KEY, EXAMPLE_JSON);
    // Flask reads only the first of them: say whether that is the one shown.
    let out = decode(KEY, &format!("Cookie: session={first}; session={second}"));
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), r#"{"user_id":7}"#);
    assert!(
        out.stderr.contains("2 cookies named \"session\"")
            && out
                .stderr
                .contains("this is the first, the one Flask reads"),
        "{:?}",
        out.stderr
    );
    for key in [Some(KEY), None] {
        let header = format!("Cookie: session=junk; session=%; session={second}");
        let out = match key {
            Some(key) => decode(key, &header),
            None => run(&["cookie", "decode", &header]),
        };
        assert!(out.success(), "{:?}", out.stderr);
        assert_eq!(out.line(), EXAMPLE_JSON);
        assert!(
            out.stderr.contains("3 cookies named \"session\"")
                && out.stderr.contains("this is the 3rd")
                && out.stderr.contains("Flask reads only the first"),
            "{:?}",
            out.stderr
        );
    }
    // One cookie: nothing to say.
    let out = decode(KEY, &format!("Cookie: theme=dark; session={second}"));
    assert!(out.success(), "{:?}", out.stderr);
    assert!(!out.stderr.contains("cookies named"), "{:?}", out.stderr);
    // Encrypted cookies, which Flask does not read: no word of Flask.
    let sealed = sign_encrypted(KEY, EXAMPLE_JSON, &[]);
    let out = decode_encrypted(KEY, &format!("Cookie: session=junk; session={sealed}"), &[]);
    assert!(out.success(), "{:?}", out.stderr);
    assert!(
        out.stderr
            .contains("this is the 2nd, the first that could be opened")
            && !out.stderr.contains("Flask"),
        "{:?}",
        out.stderr
    );
}

/// `sign --encrypted` compresses as the application does when
/// TESSERA_ENCRYPTED_COMPRESSION says so, and refuses a value the
/// application would refuse.
#[test]
fn sign_encrypted_follows_tessera_encrypted_compression() {
    let repetitive = format!(r#"{{"a": "{}"}}"#, "x".repeat(3000));
    let sign_with = |env: &[(&str, &str)], extra: &[&str]| {
        let args = [
            &["cookie", "sign", "--encrypted", "--secret-key", KEY][..],
            extra,
        ]
        .concat();
        run_with(&args, &repetitive, env)
    };
    let plain = sign_with(&[], &[]);
    assert!(plain.success(), "{:?}", plain.stderr);
    let compressed = sign_with(&[("TESSERA_ENCRYPTED_COMPRESSION", "true")], &[]);
    assert!(compressed.success(), "{:?}", compressed.stderr);
    assert!(
        compressed.line().len() < 300 && plain.line().len() > 3000,
        "{} {}",
        compressed.line().len(),
        plain.line().len()
    );
    let flagged = sign_with(&[("TESSERA_ENCRYPTED_COMPRESSION", "0")], &["--compress"]);
    assert!(flagged.line().len() < 300, "--compress wins");
    let opened = decode_encrypted(KEY, compressed.line(), &[]);
    assert!(opened.success(), "{:?}", opened.stderr);
    let refused = sign_with(&[("TESSERA_ENCRYPTED_COMPRESSION", "maybe")], &[]);
    assert!(
        refused.refusal().contains("TESSERA_ENCRYPTED_COMPRESSION"),
        "{:?}",
        refused.stderr
    );
}

/// The size check of `cookie sign` counts the cookie's name as the
/// application sends it (SESSION_COOKIE_NAME), not always as `session`: a
/// cookie that only a longer name takes over the limit was signed without a
/// word.
#[test]
fn sign_counts_the_applications_cookie_name_in_the_size_check() {
    let random_text = random_letters(6000);
    let warns = |letters: usize, env: &[(&str, &str)]| {
        let out = run_with(
            &["cookie", "sign", "--secret-key", KEY],
            &format!(r#"{{"a": "{}"}}"#, &random_text[..letters]),
            env,
        );
        assert!(out.success(), "{:?}", out.stderr);
        out.stderr.contains("the cookie is too large")
    };
    // The longest session that fits under the default name, to a few bytes
    // (zlib shrinks the letters to about 60%).
    let fits = (4000..6000)
        .step_by(8)
        .take_while(|&letters| !warns(letters, &[]))
        .last()
        .expect("some fit");
    assert!(fits < 5992, "the search found the limit");
    let long_name = "my_application_session_cookie_name";
    assert!(warns(fits, &[("SESSION_COOKIE_NAME", long_name)]));
    // A name the application would refuse is not this command's to refuse.
    assert!(!warns(fits, &[("SESSION_COOKIE_NAME", "bad name")]));
}

/// A session whose reading as Flask reads it nests deeper than the input
/// (`{" t": "ab"}` is a tuple of two strings, one level more) is refused
/// when that passes the depth a cookie read accepts: it was signed, then
/// refused by `decode` and by the application, which Flask reads.
#[test]
fn sign_refuses_what_would_not_read_back() {
    let mut refused_some = false;
    for depth in 120..132 {
        let input = format!(
            r#"{{"a": {}{{" t": "ab"}}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let signed = run_with(&["cookie", "sign", "--secret-key", KEY], &input, &[]);
        if !signed.success() {
            refused_some |= signed.stderr.contains("would not read back");
            continue;
        }
        let cookie = signed.stdout.trim().to_owned();
        let decoded = run(&["cookie", "decode", "--secret-key", KEY, &cookie]);
        assert!(decoded.success(), "depth {depth}: {:?}", decoded.stderr);
    }
    assert!(refused_some, "the depth limit was reached");
}

/// A permanent session's cookie carries `; Expires=<HTTP date>` as well, 39
/// bytes that Werkzeug's size check counts: `cookie sign` left them out, so
/// Flask warned about cookies it signed without a word.
#[test]
fn sign_counts_a_permanent_sessions_expiry_date_in_the_size_check() {
    let sign = |input: &str, limit: usize| {
        let out = run_with(
            &["cookie", "sign", "--secret-key", KEY],
            input,
            &[("MAX_COOKIE_SIZE", &limit.to_string())],
        );
        assert!(out.success(), "{:?}", out.stderr);
        let warned = out.stderr.contains("the cookie is too large");
        (out.line().len(), warned)
    };
    let attributes = "; HttpOnly; Path=/".len();
    let expires = "; Expires=Thu, 01 Jan 1970 00:00:00 GMT".len();
    for (input, permanent) in [
        (r#"{"_permanent": true, "user": "alice"}"#, true),
        (r#"{"_permanent": 1, "user": "alice"}"#, true),
        (r#"{"_permanent": false, "user": "alice"}"#, false),
        (r#"{"_permanent": 0, "user": "alice"}"#, false),
        (r#"{"user": "alice"}"#, false),
    ] {
        let (value_len, _) = sign(input, 0);
        let header =
            "session=".len() + value_len + attributes + if permanent { expires } else { 0 };
        assert_eq!(
            sign(input, header),
            (value_len, false),
            "{input} at {header}"
        );
        assert_eq!(
            sign(input, header - 1),
            (value_len, true),
            "{input} at {}",
            header - 1
        );
    }
}

/// The size check is the application's `MAX_COOKIE_SIZE`, from the
/// environment: a larger limit lets a cookie pass, 0 turns the check off,
/// and a value the application refuses is refused. It always checked
/// Werkzeug's default.
#[test]
fn sign_checks_the_applications_max_cookie_size() {
    let large = format!(r#"{{"a": "{}"}}"#, random_letters(6000));
    let warns = |env: &[(&str, &str)]| {
        let out = run_with(&["cookie", "sign", "--secret-key", KEY], &large, env);
        assert!(out.success(), "{:?}", out.stderr);
        out.stderr.contains("the cookie is too large")
    };
    assert!(warns(&[]));
    assert!(warns(&[("MAX_COOKIE_SIZE", "4093")]));
    assert!(!warns(&[("MAX_COOKIE_SIZE", "9000")]));
    assert!(!warns(&[("MAX_COOKIE_SIZE", "0")]));
    let small = run_with(
        &["cookie", "sign", "--secret-key", KEY],
        r#"{"a": 1}"#,
        &[("MAX_COOKIE_SIZE", "40")],
    );
    assert!(
        small.stderr.contains("over the 40 of MAX_COOKIE_SIZE"),
        "{:?}",
        small.stderr
    );
    let refused = run_with(
        &["cookie", "sign", "--secret-key", KEY],
        r#"{"a": 1}"#,
        &[("MAX_COOKIE_SIZE", "lots")],
    );
    assert!(!refused.success());
    assert!(
        refused.stderr.contains("MAX_COOKIE_SIZE"),
        "{:?}",
        refused.stderr
    );
}

/// Signing an encrypted cookie too large for browsers warns without
/// speaking of Flask, which reads no encrypted cookie.
#[test]
fn a_too_large_encrypted_cookie_is_warned_about_without_flask() {
    let large = format!(r#"{{"a": "{}"}}"#, "x".repeat(5000));
    let out = run_with(
        &["cookie", "sign", "--encrypted", "--secret-key", KEY],
        &large,
        &[],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert!(
        out.stderr.contains("the cookie is too large") && !out.stderr.contains("Flask warns"),
        "{:?}",
        out.stderr
    );
}

/// `curl -v` output pasted as it is: its `> ` and `< ` markers do not hide
/// the Cookie and Set-Cookie headers.
#[test]
fn curl_verbose_output_decodes() {
    let signed = sign(KEY, EXAMPLE_JSON);
    for pasted in [
        format!("> Cookie: session={signed}"),
        format!("< Set-Cookie: session={signed}; HttpOnly; Path=/"),
        format!(
            "*   Trying 127.0.0.1:5000...\n\
             * Connected to localhost (127.0.0.1) port 5000\n\
             > GET / HTTP/1.1\n\
             > Host: localhost:5000\n\
             > Cookie: session={signed}\n\
             >\n\
             < HTTP/1.1 200 OK\n\
             < Set-Cookie: session={signed}; HttpOnly; Path=/\n\
             <\n"
        ),
    ] {
        let out = run_with(
            &["cookie", "decode", "--secret-key", KEY, "-"],
            &pasted,
            &[],
        );
        assert!(out.success(), "{pasted}: {:?}", out.stderr);
        assert_eq!(out.line(), EXAMPLE_JSON);
    }
}

/// A whole response pasted (`curl -i`): only its Set-Cookie header holds a
/// cookie, so there is no warning about several session cookies.
#[test]
fn a_pasted_response_reads_only_its_cookie_headers() {
    let signed = sign(KEY, EXAMPLE_JSON);
    let response = format!(
        "HTTP/1.1 200 OK\r\n\
         Server: Werkzeug/3.0.1 Python/3.12.0\r\n\
         Date: Thu, 03 Dec 2026 11:00:00 GMT\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: 13\r\n\
         Vary: Cookie\r\n\
         Set-Cookie: session={signed}; HttpOnly; Path=/\r\n\
         Connection: close\r\n\
         \r\n\
         Hello, World!\n"
    );
    let out = run_with(
        &["cookie", "decode", "--secret-key", KEY, "-"],
        &response,
        &[],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
}

/// A Set-Cookie header of another cookie is not taken for the session's.
#[test]
fn a_set_cookie_header_of_another_name_is_refused() {
    let out = run(&[
        "cookie",
        "decode",
        "--secret-key",
        KEY,
        "Set-Cookie: csrftoken=abc; Path=/",
    ]);
    let reason = out.refusal();
    assert!(
        reason.contains("no cookie named \"session\"")
            && reason.contains("csrftoken")
            && reason.contains("--cookie-name"),
        "{reason}"
    );
    // Unverified, the same.
    let out = run(&["cookie", "decode", "Set-Cookie: csrftoken=abc; Path=/"]);
    assert!(
        out.refusal().contains("no cookie named \"session\""),
        "{:?}",
        out.stderr
    );
    // With its name as --cookie-name it is the one wanted.
    let signed = sign(KEY, EXAMPLE_JSON);
    let header = format!("Set-Cookie: sid={signed}; Path=/");
    let out = run(&[
        "cookie",
        "decode",
        "--secret-key",
        KEY,
        "--cookie-name",
        "sid",
        &header,
    ]);
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
}

/// Flask's quickstart key, which is not UTF-8.
#[cfg(unix)]
const BYTES_KEY: &[u8] = b"_5#y2L\"F4Q8z\n\xec]/";

/// Runs `tessera args…` with `stdin`, `SECRET_KEY` set to `key`'s bytes if given.
#[cfg(unix)]
fn run_with_key_bytes(args: &[&std::ffi::OsStr], stdin: &str, key: Option<&[u8]>) -> Run {
    use std::os::unix::ffi::OsStrExt as _;
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(args)
        .env_remove("SECRET_KEY")
        .env_remove("SECRET_KEY_FALLBACKS")
        .env_remove("PERMANENT_SESSION_LIFETIME")
        .env_remove("SESSION_COOKIE_NAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(key) = key {
        command.env("SECRET_KEY", std::ffi::OsStr::from_bytes(key));
    }
    let mut child = command.spawn().expect("the tessera binary runs");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let _ = pipe.write_all(stdin.as_bytes());
    drop(pipe);
    Run::from(
        child
            .wait_with_output()
            .expect("the tessera binary finishes"),
    )
}

/// Keys that are not UTF-8 are taken as bytes, from the environment, the
/// command line or a file.
#[cfg(unix)]
#[test]
fn keys_that_are_not_utf8_are_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;

    let out = run_with_key_bytes(
        &[OsStr::new("cookie"), OsStr::new("sign")],
        EXAMPLE_JSON,
        Some(BYTES_KEY),
    );
    assert!(out.success(), "{:?}", out.stderr);
    let cookie = out.line().to_owned();
    // The library, given the same bytes, accepts it.
    let codec = CookieCodec::new(&tessera::SecretKey::from(BYTES_KEY), &[]);
    assert!(codec.decode(&cookie, SystemTime::now()).is_ok());

    let decode_args = [
        OsStr::new("cookie"),
        OsStr::new("decode"),
        OsStr::new(&cookie),
    ];
    let out = run_with_key_bytes(&decode_args, "", Some(BYTES_KEY));
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
    let out = run_with_key_bytes(&decode_args, "", Some(b"another\xffkey"));
    assert_eq!(out.refusal(), "error: bad signature");
    let flag = [
        OsStr::new("cookie"),
        OsStr::new("decode"),
        OsStr::new("--secret-key"),
        OsStr::from_bytes(BYTES_KEY),
        OsStr::new(&cookie),
    ];
    let out = run_with_key_bytes(&flag, "", None);
    assert!(out.success(), "{:?}", out.stderr);

    // From a file, with the line end an editor adds, or without one.
    let dir = std::env::temp_dir();
    let path = dir.join(format!("tessera-cli-test-key-{}", std::process::id()));
    let other_path = dir.join(format!("tessera-cli-test-other-key-{}", std::process::id()));
    std::fs::write(&other_path, b"another\xffkey\n").expect("write the key file");
    for ending in [&b"\n"[..], b"\r\n", b""] {
        std::fs::write(&path, [BYTES_KEY, ending].concat()).expect("write the key file");
        let args = [
            OsStr::new("cookie"),
            OsStr::new("decode"),
            OsStr::new("--secret-key-file"),
            path.as_os_str(),
            OsStr::new(&cookie),
        ];
        // The file wins over the variable.
        let out = run_with_key_bytes(&args, "", Some(b"another\xffkey"));
        assert!(out.success(), "{ending:?}: {:?}", out.stderr);
        assert_eq!(out.line(), EXAMPLE_JSON);
    }
    let out = run_with_key_bytes(
        &[
            OsStr::new("cookie"),
            OsStr::new("sign"),
            OsStr::new("--secret-key-file"),
            path.as_os_str(),
        ],
        EXAMPLE_JSON,
        None,
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert!(codec.decode(out.line(), SystemTime::now()).is_ok());
    let out = run_with_key_bytes(
        &[
            OsStr::new("cookie"),
            OsStr::new("decode"),
            OsStr::new("--secret-key-file"),
            other_path.as_os_str(),
            OsStr::new(&cookie),
        ],
        "",
        Some(BYTES_KEY),
    );
    assert_eq!(out.refusal(), "error: bad signature");
    // Not both a file and a key on the command line.
    let out = run_with_key_bytes(
        &[
            OsStr::new("cookie"),
            OsStr::new("decode"),
            OsStr::new("--secret-key"),
            OsStr::new(KEY),
            OsStr::new("--secret-key-file"),
            path.as_os_str(),
            OsStr::new(&cookie),
        ],
        "",
        None,
    );
    assert_eq!(out.status, Some(2), "{:?}", out.stderr);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&other_path);
}

/// A UTF-8 byte-order mark, as some Windows editors and shells write, is
/// not part of what is read from stdin.
#[test]
fn a_byte_order_mark_on_stdin_is_dropped() {
    let out = run_with(
        &["cookie", "sign", "--secret-key", KEY],
        &format!("\u{feff}{EXAMPLE_JSON}\r\n"),
        &[],
    );
    assert!(out.success(), "{:?}", out.stderr);
    let cookie = out.line().to_owned();
    assert_eq!(decode(KEY, &cookie).line(), EXAMPLE_JSON);
    let out = run_with(
        &["cookie", "decode", "--secret-key", KEY, "-"],
        &format!("\u{feff}{cookie}\r\n"),
        &[],
    );
    assert!(out.success(), "{:?}", out.stderr);
    assert_eq!(out.line(), EXAMPLE_JSON);
}

/// A mistyped or unknown option is a usage error that names it, not a
/// cookie to decode (no cookie begins with '-'; a lone '-' is stdin).
#[test]
fn a_mistyped_option_is_not_taken_for_the_cookie() {
    let cookie = sign(KEY, EXAMPLE_JSON);
    for args in [
        &["cookie", "decode", "--secret-key", KEY, "--json", &cookie][..],
        &[
            "cookie",
            "decode",
            "--secret-key",
            KEY,
            &cookie,
            "--verbose",
        ],
        &["cookie", "decode", "--verbose"],
        &["cookie", "decode", "--secret-key-fil", "key.txt", &cookie],
    ] {
        let out = run(args);
        assert_eq!(out.status, Some(2), "{args:?}: {}", out.stdout);
        assert!(
            out.stderr.contains("unexpected argument '--"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// A pasted header is read as werkzeug reads header bytes: a byte that is
/// not UTF-8 (here Latin-1 `é` in another cookie) is one Latin-1 character,
/// and the session cookie beside it is still found. A session to sign, which
/// is JSON, must still be UTF-8.
#[test]
fn pasted_headers_that_are_not_utf8_are_read_as_latin1() {
    let cookie = sign(KEY, EXAMPLE_JSON);
    let cookie = cookie.as_bytes();
    for pasted in [
        [b"Cookie: k=\xe9; session=".as_slice(), cookie, b"\r\n"].concat(),
        [b"k=caf\xe9; session=".as_slice(), cookie].concat(),
        [
            b"> GET / HTTP/1.1\n> Cookie: session=".as_slice(),
            cookie,
            b"; t=\xff\xfe\n",
        ]
        .concat(),
    ] {
        assert!(std::str::from_utf8(&pasted).is_err());
        let out = run_with_stdin_bytes(
            &["cookie", "decode", "--secret-key", KEY, "-"],
            &pasted,
            &[],
        );
        assert!(out.success(), "{pasted:?}: {:?}", out.stderr);
        assert_eq!(out.line(), EXAMPLE_JSON);
    }
    let out = run_with_stdin_bytes(
        &["cookie", "sign", "--secret-key", KEY],
        b"{\"name\": \"caf\xe9\"}",
        &[],
    );
    assert_eq!(out.status, Some(1), "{:?}", out.stdout);
    assert!(out.stderr.contains("not valid UTF-8"), "{:?}", out.stderr);
}

/// An SQLite store whose write lock another connection holds until
/// [`release`](Self::release): commands on it wait for the store's busy
/// timeout.
struct LockedSqliteStore {
    dir: std::path::PathBuf,
    url: String,
    runtime: tokio::runtime::Runtime,
    store: tessera::store::SqliteStore,
    locker: sqlx::SqliteConnection,
}

impl LockedSqliteStore {
    fn new(label: &str) -> Self {
        use sqlx::{Connection as _, Executor as _};
        use tessera::store::{SessionStore as _, SqliteStore};

        let dir =
            std::env::temp_dir().join(format!("tessera-cli-test-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the directory");
        let path = dir.join("sessions.db");
        let url = format!("sqlite://{}", path.display());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        // The store stays open, so that SQLite keeps the files it made
        // private rather than the locking connection making new ones.
        let (store, locker) = runtime.block_on(async {
            let store = SqliteStore::open(&path).await.expect("the store opens");
            store.purge_expired(0, 1).await.expect("the store works");
            let mut locker = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("a second connection");
            locker
                .execute("BEGIN IMMEDIATE")
                .await
                .expect("the write lock");
            (store, locker)
        });
        Self {
            dir,
            url,
            runtime,
            store,
            locker,
        }
    }

    fn release(self) {
        use sqlx::{Connection as _, Executor as _};

        let Self {
            dir,
            runtime,
            store,
            mut locker,
            ..
        } = self;
        runtime.block_on(async {
            locker
                .execute("ROLLBACK")
                .await
                .expect("the lock is released");
            locker.close().await.expect("closed");
            store.close().await;
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A command that fails after waiting on a locked SQLite database says so
/// in one `error:` line, without sqlx's "slow statement" warning before it.
#[test]
fn a_slow_sqlite_statement_is_no_warning() {
    let locked = LockedSqliteStore::new("slow");
    let url = locked.url.clone();
    // The store's busy timeout passes, far over sqlx's threshold for slow
    // statements.
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["sessions", "purge-expired", "--store", &url])
        .env_remove("RUST_LOG")
        .env_remove("SESSION_STORE_URL")
        .stdin(Stdio::null())
        .output()
        .map(Run::from)
        .expect("the tessera binary runs");
    let reason = out.refusal().to_owned();
    assert!(reason.contains("locked"), "{reason}");
    locked.release();
}

/// Ctrl-C during a long command (here, waiting on a locked SQLite store)
/// ends it with status 130 and nothing more on stderr: the command is
/// stopped through its own handler, which clears the progress spinner a
/// terminal would show, rather than killed by the signal with the spinner
/// left on the screen.
#[cfg(unix)]
#[test]
fn ctrl_c_ends_a_command_with_status_130() {
    let locked = LockedSqliteStore::new("sigint");
    let url = locked.url.clone();
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["sessions", "purge-expired", "--store", &url])
        .env_remove("RUST_LOG")
        .env_remove("SESSION_STORE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tessera binary runs");
    // Well inside the store's wait for the lock.
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = Run::from(child.wait_with_output().expect("the binary finishes"));
    assert_eq!(out.status, Some(130), "stderr: {:?}", out.stderr);
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
    locked.release();
}

/// The demo's default session is server-side: its cookie is an id, which a
/// newcomer pastes into `cookie decode` first. The refusal says what it is
/// and where its data is, rather than suggesting an encrypted cookie.
#[test]
fn a_server_side_id_is_named_as_one() {
    // What SessionId::generate and Flask-Session's token_urlsafe(32) make.
    let id = "ku0kL7N2xq9Vb3mR8tYw4ZpA1cE6fH0jK5nQ7sU2DjM";
    let signed = format!("{id}.Wq3vX9kTz0bWmR7cLs2YhN5uFe8");
    for (cookie, encrypted, signer) in [
        (id.to_owned(), false, false),
        (id.to_owned(), true, false),
        (format!("session={id}"), false, false),
        (signed.clone(), false, true),
    ] {
        let mut args = vec!["cookie", "decode", "--secret-key", KEY];
        if encrypted {
            args.push("--encrypted");
        }
        args.push(&cookie);
        let out = run(&args);
        assert!(!out.success(), "{cookie}");
        assert!(
            out.stderr.contains("server-side session's id")
                && out.stderr.contains("tessera sessions show"),
            "{cookie}: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr.contains("SESSION_USE_SIGNER"),
            signer,
            "{cookie}: {}",
            out.stderr
        );
    }
    // Read from stdin with its line end, an id that starts as a curl
    // option would (`-b…`, `-sH…`) is still an id, not a curl command.
    for id in [
        "-bQx9kL7N2xq9Vb3mR8tYw4ZpA1cE6fH0jK5nQ7sU2Dj",
        "-sHfookL7N2xq9Vb3mR8tYw4ZpA1cE6fH0jK5nQ7sU2",
    ] {
        let out = run_with(
            &["cookie", "decode", "--secret-key", KEY, "-"],
            &format!("{id}\n"),
            &[],
        );
        assert!(
            out.stderr.contains("server-side session's id"),
            "{id}: {}",
            out.stderr
        );
    }
    // Without a key too.
    let out = run(&["cookie", "decode", id]);
    assert!(
        out.stderr.contains("server-side session's id"),
        "{}",
        out.stderr
    );
    // A signed or an encrypted cookie is not taken for an id.
    let out = decode(KEY, &format!("{}x", sign(KEY, EXAMPLE_JSON)));
    assert!(!out.stderr.contains("server-side"), "{}", out.stderr);
    // Nor is an encrypted cookie cut short in copying, which has an id's
    // characters: that is said instead.
    let sealed = sign_encrypted(KEY, EXAMPLE_JSON, &[]);
    for length in [30, 49, 50, 60, 65] {
        let out = decode_encrypted(KEY, &sealed[..length], &[]);
        assert!(!out.success(), "{length}");
        assert!(
            !out.stderr.contains("server-side")
                && out
                    .stderr
                    .contains(&format!("this one {length}: it may have been cut short")),
            "{length}: {}",
            out.stderr
        );
    }
}
