//! Cookies against real Flask (installed into `.venv` by
//! `scripts/setup-python.sh`, which this test runs itself).
//!
//! Flask signs every kind of session it can hold; tessera must read each one
//! to the same data and write it back byte-for-byte, and Flask must load
//! every cookie tessera writes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;
use tessera::{tagged, CookieCodec, DecodeError, Map, SecretKey, SignatureError, Value};

#[path = "../../interop/support.rs"]
mod support;

use support::flask_tool;

const KEY: &str = "interop-secret-key-0123456789abcdef";
const OLD_KEY: &str = "interop-old-key-0123456789abcdef";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn str_field<'a>(json: &'a Json, field: &str) -> &'a str {
    json[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {json}"))
}

/// Flask loads `cookie` and returns (tagged JSON, permanent, empty).
fn flask_load(cookie: &str, extra: &[&str]) -> (String, bool, bool) {
    let mut args = vec!["load", "--secret-key", KEY];
    args.extend_from_slice(extra);
    args.push(cookie);
    let result = flask_tool(&args, None).remove(0);
    assert_eq!(
        result["ok"],
        Json::Bool(true),
        "Flask failed to load {cookie}: {result}"
    );
    (
        str_field(&result, "tagged_json").to_owned(),
        result["permanent"].as_bool().expect("permanent"),
        result["empty"].as_bool().expect("empty"),
    )
}

#[test]
fn flask_cookies_decode_to_the_same_data_and_reencode_identically() {
    let signed_at = unix_now() - 100;
    let timestamp = signed_at.to_string();
    let cases = flask_tool(
        &["cases", "--secret-key", KEY, "--timestamp", &timestamp],
        None,
    );
    assert!(
        cases.len() >= 30,
        "expected the full case list, got {}",
        cases.len()
    );
    let codec = CookieCodec::new(&KEY.into(), &[]);
    let mut compressed_cases = 0;
    for case in &cases {
        let name = str_field(case, "name");
        let cookie = str_field(case, "cookie");
        let flask_json = str_field(case, "tagged_json");
        let decoded = codec
            .decode(cookie, SystemTime::now())
            .unwrap_or_else(|e| panic!("{name}: tessera refused Flask's cookie: {e}"));
        assert_eq!(decoded.signed_at, Some(signed_at), "{name}");
        assert_eq!(
            tagged::map_to_string(&decoded.data),
            flask_json,
            "{name}: re-encoded JSON differs"
        );
        // The same data parsed straight from Flask's JSON is the same value.
        assert_eq!(
            tagged::from_str(flask_json).expect("parses"),
            Value::Dict(decoded.data.clone()),
            "{name}"
        );
        let ours = codec.encode(&decoded.data, at(signed_at));
        // Same compression decision as Flask (compressed bytes themselves
        // differ between zlib builds, so only the decision is compared).
        assert_eq!(
            ours.starts_with('.'),
            cookie.starts_with('.'),
            "{name}: compression decision differs"
        );
        if case["compressed"] == Json::Bool(true) {
            compressed_cases += 1;
        } else {
            // Uncompressed cookies are byte-identical, signature included.
            assert_eq!(
                codec.encode(&decoded.data, at(signed_at)),
                cookie,
                "{name}: cookie differs"
            );
        }
    }
    assert!(
        compressed_cases >= 3,
        "the case list must exercise compression"
    );
}

#[test]
fn flask_loads_every_cookie_tessera_writes() {
    let cases = flask_tool(&["cases", "--secret-key", KEY], None);
    let codec = CookieCodec::new(&KEY.into(), &[]);
    for case in &cases {
        let name = str_field(case, "name");
        let expected = str_field(case, "tagged_json");
        let data = match tagged::from_str(expected).expect("parses") {
            Value::Dict(map) => map,
            other => panic!("{name}: not a dict: {other:?}"),
        };
        if data.is_empty() {
            continue;
        }
        let cookie = codec.encode(&data, SystemTime::now());
        let (loaded, permanent, _) = flask_load(&cookie, &[]);
        assert_eq!(loaded, expected, "{name}: Flask read something else");
        assert_eq!(permanent, data.contains_key("_permanent"), "{name}");
    }
}

#[test]
fn values_built_in_rust_load_in_flask_as_the_same_python_values() {
    let mut data = Map::new();
    data.insert(
        "tuple".into(),
        Value::tuple([1.into(), "two".into(), 3.5.into()]),
    );
    data.insert(
        "bytes".into(),
        Value::bytes(b"\xff\x00\xfb\xef\xbe".to_vec()),
    );
    data.insert("markup".into(), Value::markup("<b>hi</b>"));
    data.insert(
        "uuid".into(),
        uuid::Uuid::from_u128(0x1234_5678_1234_5678_1234_5678_1234_5678).into(),
    );
    data.insert(
        "when".into(),
        time::macros::datetime!(2024-01-02 03:04:05 UTC).into(),
    );
    data.insert(
        "escape".into(),
        Value::Dict(Map::from([(" t".to_owned(), Value::from(1))])),
    );
    data.insert("unicode".into(), "café 中文 🎯 \u{7f}\u{0}".into());
    data.insert(
        "floats".into(),
        Value::List(vec![
            0.1.into(),
            1e16.into(),
            1e-5.into(),
            (-0.0).into(),
            2.0.into(),
        ]),
    );
    data.insert("big".into(), Value::from(u64::MAX));
    data.insert("neg".into(), Value::from(i64::MIN));
    data.insert("_permanent".into(), true.into());
    data.insert(
        "_flashes".into(),
        Value::List(vec![Value::tuple(["message".into(), "Hi".into()])]),
    );
    let ours = tagged::map_to_string(&data);

    // Flask re-emits our JSON byte for byte: it reads the same Python values.
    let round = flask_tool(&["roundtrip"], Some(&ours)).remove(0);
    assert_eq!(str_field(&round, "tagged_json"), ours);

    let cookie = CookieCodec::new(&KEY.into(), &[]).encode(&data, SystemTime::now());
    let (loaded, permanent, _) = flask_load(&cookie, &[]);
    assert_eq!(loaded, ours);
    assert!(permanent);

    // And Flask's own signature of that JSON is what tessera produces.
    let timestamp = (unix_now() - 5).to_string();
    let signed = flask_tool(
        &["sign", "--secret-key", KEY, "--timestamp", &timestamp],
        Some(&ours),
    )
    .remove(0);
    let flask_cookie = str_field(&signed, "cookie");
    let decoded = CookieCodec::new(&KEY.into(), &[])
        .decode(flask_cookie, SystemTime::now())
        .expect("decodes");
    assert_eq!(decoded.data, data);
}

/// A tagged datetime may be written in any form Python's email date parser
/// reads (Flask writes only one, other code may write others): tessera reads
/// each to the instant Flask reads, and what neither can read to `None`.
#[test]
fn tagged_dates_in_every_form_are_read_as_flask_reads_them() {
    let forms = [
        "Tue, 02 Jan 2024 03:04:05 GMT",
        "Tue, 2 Jan 2024 03:04:05 +0000",
        "02 Jan 2024 03:04:05 GMT",
        "Tuesday, 02-Jan-24 03:04:05 GMT",
        "Tue Jan  2 03:04:05 2024",
        "Tue, 02 Jan 2024 03:04:05 UTC",
        "Tue, 02 Jan 2024 05:04:05 +0200",
        "Mon, 01 Jan 2024 22:04:05 EST",
        "Sat, 31 Dec 1999 23:59:59 PDT",
        "tue, 02 jan 2024 03:04:05 gmt",
        "Fri, 02 Jan 2024 03:04:05 GMT",
        "Tue,02 Jan 2024 03:04:05 GMT",
        "2 January 2024 03:04",
        "Jan 2 2024 03:04:05",
        "02 Jan 2024 03:04:05+0130",
        "02 Jan 2024 03.04.05 GMT",
        "02 Jan 2024 03:04:05 CET",
        "02 Jan 69 03:04:05",
        "02 Jan 68 03:04:05 -0000",
        "Mon, 01 Jan 0001 00:30:00 +0100",
        "Thu, 31 Dec 0099 23:59:59 GMT",
        "01 Mar 2024 00:00:00 +2359",
        "29 Feb 2023 00:00:00 GMT",
        "Tue, 02 Jan 2024 24:00:00 GMT",
        "Tue, 02 Jan 2024 03:04:05 +2400",
        "Tue, 02 Jan 2024",
        "yesterday",
        "",
    ];
    let mut text = String::from("{");
    for (index, form) in forms.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            r#""d{index:02}":{{" d":{}}}"#,
            serde_json::to_string(form).expect("a JSON string")
        ));
    }
    text.push('}');
    // And a null where the date should be: None for Flask too.
    let text = format!("{},\"null\":{{\" d\":null}}}}", &text[..text.len() - 1]);
    let flask = flask_tool(&["roundtrip"], Some(&text)).remove(0);
    let ours = tagged::to_string(&tagged::from_str(&text).expect("parses"));
    assert_eq!(ours, str_field(&flask, "tagged_json"));
    // Not trivially equal: most forms are dates, some are not.
    let flask_values: Json = serde_json::from_str(&ours).expect("JSON");
    let nulls = flask_values
        .as_object()
        .expect("an object")
        .values()
        .filter(|value| value.is_null())
        .count();
    assert_eq!(nulls, 7, "{ours}");
}

/// `Set-Cookie` and `Vary` as Flask sends them, for every cookie option and
/// every kind of response (set, set permanent, clear, read, untouched, with
/// and without a cookie): tessera's headers are the same bytes, but for the
/// signature and the expiry date, which depend on the clock.
#[cfg(feature = "axum")]
#[test]
fn set_cookie_headers_are_flasks_byte_for_byte() {
    use axum::routing::get;
    use tower::ServiceExt as _;

    /// The header with its cookie value and a non-epoch expiry masked.
    fn masked(set_cookie: &str) -> String {
        set_cookie
            .split("; ")
            .enumerate()
            .map(|(index, part)| match (index, part.split_once('=')) {
                (0, Some((name, value))) if !value.is_empty() => format!("{name}=<value>"),
                (_, Some(("Expires", date))) if !date.starts_with("Thu, 01 Jan 1970") => {
                    "Expires=<date>".to_owned()
                }
                _ => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    let timestamp = (unix_now() - 5).to_string();
    let reference = flask_tool(&["set-cookie-headers", "--timestamp", &timestamp], None).remove(0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let scenarios = reference.as_object().expect("scenarios");
    assert!(scenarios.len() >= 30, "{}", scenarios.len());
    for (name, scenario) in scenarios {
        let mut vars = vec![("SECRET_KEY".to_owned(), "k".to_owned())];
        for (setting, value) in scenario["config"].as_object().expect("config") {
            let value = match value {
                Json::Bool(flag) => flag.to_string(),
                Json::String(text) => text.clone(),
                other => panic!("{name}: {setting} = {other}"),
            };
            vars.push((setting.clone(), value));
        }
        let config = tessera::SessionConfigBuilder::default()
            .with_vars(vars)
            .and_then(tessera::SessionConfigBuilder::build)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let app = axum::Router::new()
            .route(
                "/set",
                get(|s: tessera::Session| async move {
                    s.insert("key", "value").ok();
                    "ok"
                }),
            )
            .route(
                "/set_permanent",
                get(|s: tessera::Session| async move {
                    s.set_permanent(true);
                    s.insert("key", "value").ok();
                    "ok"
                }),
            )
            .route(
                "/clear",
                get(|s: tessera::Session| async move {
                    s.clear();
                    "ok"
                }),
            )
            .route(
                "/read",
                get(|s: tessera::Session| async move {
                    format!("{:?}", s.get::<String>("key").ok().flatten())
                }),
            )
            .route("/untouched", get(|| async { "ok" }))
            .layer(tessera::SessionLayer::new(config));
        let path = str_field(scenario, "request")
            .strip_prefix("GET ")
            .expect("a GET");
        let mut request = http::Request::get(path);
        if let Some(cookie) = scenario["request_cookie"].as_str() {
            request = request.header(http::header::COOKIE, cookie);
        }
        let request = request.body(axum::body::Body::empty()).expect("a request");
        let response = runtime.block_on(app.oneshot(request)).expect("a response");
        assert_eq!(
            u64::from(response.status().as_u16()),
            scenario["status"].as_u64().expect("status"),
            "{name}"
        );
        let ours: Vec<String> = response
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|value| masked(value.to_str().expect("ASCII")))
            .collect();
        let flasks: Vec<String> = scenario["set_cookie"]
            .as_array()
            .expect("set_cookie")
            .iter()
            .map(|value| masked(value.as_str().expect("a header")))
            .collect();
        assert_eq!(ours, flasks, "{name}");
        let vary = response
            .headers()
            .get(http::header::VARY)
            .map(|value| value.to_str().expect("ASCII").to_owned());
        assert_eq!(vary.as_deref(), scenario["vary"].as_str(), "{name}");
    }
}

/// `session.permanent` is Python's truth of `_permanent`, whatever it holds
/// (Flask only ever writes a bool, other code may write anything).
#[test]
fn permanent_is_the_truth_of_the_value_as_in_flask() {
    let codec = CookieCodec::new(&KEY.into(), &[]);
    for json in [
        "true",
        "false",
        "1",
        "0",
        "-0.0",
        "0.5",
        "NaN",
        "\"yes\"",
        "\"\"",
        "null",
        "[]",
        "[0]",
        "{}",
        r#"{" t":[]}"#,
        r#"{" t":[0]}"#,
        r#"{" b":""}"#,
        "12345678901234567890123",
    ] {
        let value = tagged::from_str(json).expect("tagged JSON");
        let data = Map::from([
            ("_permanent".to_owned(), value.clone()),
            ("k".to_owned(), Value::from(1)),
        ]);
        let cookie = codec.encode(&data, SystemTime::now());
        let (_, permanent, _) = flask_load(&cookie, &[]);
        assert_eq!(value.is_truthy(), permanent, "_permanent = {json}");
    }
}

/// A Python string may hold a lone surrogate, which Flask writes as
/// `\ud800`; a Rust string cannot. The session still loads (the surrogate
/// as U+FFFD), so the login in it survives.
#[test]
fn a_lone_surrogate_from_flask_keeps_the_rest_of_the_session() {
    let signed = flask_tool(
        &["sign", "--secret-key", KEY],
        Some(r#"{"user_id": 7, "s": "a\ud800b"}"#),
    )
    .remove(0);
    let cookie = str_field(&signed, "cookie");
    let (loaded, _, _) = flask_load(cookie, &[]);
    assert_eq!(loaded, r#"{"s":"a\ud800b","user_id":7}"#, "Flask reads it");
    let decoded = CookieCodec::new(&KEY.into(), &[])
        .decode(cookie, SystemTime::now())
        .expect("tessera reads it too");
    assert_eq!(decoded.data.get("user_id"), Some(&Value::from(7)));
    assert_eq!(decoded.data.get("s"), Some(&Value::from("a\u{fffd}b")));
}

#[test]
fn fallback_keys_interoperate_both_ways() {
    // Flask signs with an old key that is now a fallback.
    let cases = flask_tool(
        &[
            "cases",
            "--secret-key",
            KEY,
            "--fallback-key",
            OLD_KEY,
            "--sign-with-fallback",
            OLD_KEY,
        ],
        None,
    );
    let alice = cases
        .iter()
        .find(|c| c["name"] == "alice")
        .expect("alice case");
    let cookie = str_field(alice, "cookie");
    let rotated = CookieCodec::new(&KEY.into(), &[SecretKey::from(OLD_KEY)]);
    let decoded = rotated
        .decode(cookie, SystemTime::now())
        .expect("fallback verifies");
    assert_eq!(
        tagged::map_to_string(&decoded.data),
        r#"{"name":"alice","user_id":42}"#
    );
    let strict = CookieCodec::new(&KEY.into(), &[]);
    assert!(matches!(
        strict.decode(cookie, SystemTime::now()),
        Err(DecodeError::Signature(SignatureError::BadSignature))
    ));

    // tessera signs with the old key; Flask with the new key and the old one
    // as a fallback loads it, and without the fallback does not.
    let old = CookieCodec::new(&OLD_KEY.into(), &[]);
    let cookie = old.encode(&decoded.data, SystemTime::now());
    let (loaded, _, _) = flask_load(&cookie, &["--fallback-key", OLD_KEY]);
    assert_eq!(loaded, r#"{"name":"alice","user_id":42}"#);
    let (_, _, empty) = flask_load(&cookie, &[]);
    assert!(empty, "Flask without the fallback must refuse");
}

#[test]
fn expiry_and_future_timestamps_agree_with_flask() {
    let data = Map::from([("k".to_owned(), Value::from("v"))]);
    let now = unix_now();
    let lifetime = 60u64;
    let codec = CookieCodec::new(&KEY.into(), &[]).max_age(Duration::from_secs(lifetime));
    for (signed_at, accepted) in [
        (now - 30, true),
        (now - 61, false),
        (now + 30, false),
        (now - 60, true),
    ] {
        let cookie = codec.encode(&data, at(signed_at));
        let ours = codec.decode(&cookie, at(now)).is_ok();
        let (_, _, empty) = flask_load(
            &cookie,
            &[
                "--lifetime",
                &lifetime.to_string(),
                "--now",
                &now.to_string(),
            ],
        );
        assert_eq!(
            ours,
            accepted,
            "tessera, signed {} s ago",
            now as i64 - signed_at as i64
        );
        assert_eq!(
            !empty,
            accepted,
            "Flask, signed {} s ago",
            now as i64 - signed_at as i64
        );
    }
}

#[test]
fn tampered_cookies_are_refused_by_both() {
    let data = Map::from([("user_id".to_owned(), Value::from(1))]);
    let cookie = CookieCodec::new(&KEY.into(), &[]).encode(&data, SystemTime::now());
    // Change the payload to claim another user, keeping the old signature.
    let forged_payload = base64_url(r#"{"user_id":2}"#);
    let rest = cookie.split_once('.').expect("payload").1;
    let forged = format!("{forged_payload}.{rest}");
    let (_, _, empty) = flask_load(&forged, &[]);
    assert!(empty);
    assert!(CookieCodec::new(&KEY.into(), &[])
        .decode(&forged, SystemTime::now())
        .is_err());
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// Cookies Flask never writes but accepts: a signature in the other base64
/// alphabet or with padding or stray characters (anyone can change those,
/// no key needed), and timestamps, payloads and tag contents another signer
/// sharing the key could write. tessera must accept exactly what Flask
/// accepts, and read it to the same data; what Flask refuses, or fails on
/// with a 500, tessera refuses.
#[test]
fn changed_cookies_are_accepted_exactly_when_flask_accepts_them() {
    let codec = CookieCodec::new(&KEY.into(), &[]);
    let mut accepted = 0;
    let mut refused = 0;
    for seed in ["1", "2"] {
        for verdict in flask_tool(
            &[
                "variants",
                "--secret-key",
                KEY,
                "--seed",
                seed,
                "--count",
                "400",
            ],
            None,
        ) {
            let cookie = str_field(&verdict, "cookie");
            // Judged at the moment Flask judged it: a timestamp changed to a
            // second just ahead is in the future for both, or for neither.
            let flask_now = verdict["now"].as_u64().expect("the verdict's time");
            let ours = codec.decode(cookie, UNIX_EPOCH + Duration::from_secs(flask_now));
            let flask_read =
                verdict["ok"] == Json::Bool(true) && verdict["empty"] == Json::Bool(false);
            if flask_read {
                let decoded =
                    ours.unwrap_or_else(|e| panic!("Flask reads {cookie}, tessera refuses: {e}"));
                assert_eq!(
                    tagged::map_to_string(&decoded.data),
                    str_field(&verdict, "tagged_json"),
                    "{cookie}"
                );
                accepted += 1;
            } else {
                assert!(
                    ours.as_ref().is_err_and(|_| true)
                        || ours.as_ref().is_ok_and(|d| d.data.is_empty()),
                    "Flask refuses {cookie} ({verdict}), tessera reads {:?}",
                    ours.map(|d| tagged::map_to_string(&d.data))
                );
                refused += 1;
            }
        }
    }
    // Both kinds must be well represented for the comparison to mean much.
    assert!(
        accepted >= 100 && refused >= 100,
        "{accepted} accepted, {refused} refused"
    );
}

/// Cookie headers as clients and proxies send them: spaces and tabs around
/// the name and `=`, quoted values with werkzeug's backslash escapes, a
/// stray space, quote, separator or byte beyond ASCII (UTF-8 or not) inside
/// the value, other cookies around it. The session tessera reads from each header is the one Flask reads:
/// the same data, or none where Flask sees no valid cookie.
#[cfg(feature = "axum")]
#[tokio::test]
async fn cookie_headers_are_read_as_flask_reads_them() {
    use axum::body::Body;
    use axum::routing::get;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    let config = tessera::SessionConfig::builder()
        .secret_key(KEY)
        .build()
        .expect("config");
    let app = axum::Router::new()
        .route(
            "/",
            get(
                |session: tessera::Session| async move { tagged::map_to_string(&session.to_map()) },
            ),
        )
        .layer(tessera::SessionLayer::new(config));
    let (mut read, mut empty) = (0, 0);
    for verdict in flask_tool(
        &["cookie-headers", "--secret-key", KEY, "--count", "600"],
        None,
    ) {
        let hex = str_field(&verdict, "header_hex");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex"))
            .collect();
        let header = String::from_utf8_lossy(&bytes).into_owned();
        let value = axum::http::HeaderValue::from_bytes(&bytes).expect("a header value");
        let request = axum::http::Request::get("/")
            .header(axum::http::header::COOKIE, value)
            .body(Body::empty())
            .expect("a request");
        let response = app.clone().oneshot(request).await.expect("answers");
        assert_eq!(response.status(), axum::http::StatusCode::OK, "{header}");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let ours = String::from_utf8(body.to_vec()).expect("UTF-8");
        let flasks = str_field(&verdict, "tagged_json");
        assert_eq!(ours, flasks, "Cookie: {header}");
        if flasks == "{}" {
            empty += 1;
        } else {
            read += 1;
        }
    }
    assert!(read >= 100 && empty >= 50, "{read} read, {empty} empty");
}

/// Flask-Session before 0.7 unpickles whatever its Redis key holds, and an
/// application of that age may share the prefix. Every session tessera
/// writes in Flask-Session's layout must be refused by `pickle` at once
/// (never run as pickle code, whatever a visitor stored in it), and must
/// still be what msgspec (Flask-Session 0.7 and later) reads.
#[test]
fn flask_session_records_are_refused_by_pickle_and_read_by_msgspec() {
    use tessera::store::flask_format::SerializationFormat;

    // A one-byte msgpack map header followed by a string of 216 bytes is
    // pickle's LONG1 swallowing the next 0xa1 bytes, then the visitor's
    // text as pickle code: a call of `os.system` (the test only checks
    // that pickle stops before reaching it).
    let payload = "x".repeat(158) + "cos\nsystem\n(S'echo unpickled'\ntR.";
    let mut sessions: Vec<Map> = Vec::new();
    for keys in 0..=20usize {
        let mut data = Map::new();
        for key in 0..keys {
            let value = if key == 0 {
                Value::from(payload.as_str())
            } else {
                Value::from(key as i64)
            };
            data.insert(format!("k{key:02}"), value);
        }
        sessions.push(data);
    }
    let mut wide = Map::new();
    for key in 0..70_000 {
        wide.insert(format!("w{key}"), Value::from(1));
    }
    sessions.push(wide);

    let mut input = String::new();
    for format in [SerializationFormat::Msgpack, SerializationFormat::Json] {
        for data in &sessions {
            let bytes = format.encode(data).expect("encodes");
            let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            input.push_str(format.as_str());
            input.push(' ');
            input.push_str(&hex);
            input.push('\n');
        }
    }
    let script = r#"
import json, pickle, sys
import msgspec
for line in sys.stdin:
    format, text = line.split()
    record = bytes.fromhex(text)
    try:
        pickle.loads(record)
        refusal = None
    except pickle.UnpicklingError as error:
        refusal = str(error)
    except Exception as error:
        refusal = "not an UnpicklingError: " + type(error).__name__ + ": " + str(error)
    decode = msgspec.msgpack.decode if format == "msgpack" else msgspec.json.decode
    data = decode(record)
    print(json.dumps({"refusal": refusal, "keys": len(data), "first": data.get("k00", data.get("w0"))}))
"#;
    let mut child = std::process::Command::new(support::python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("written");
    }
    let output = child.wait_with_output().expect("python runs");
    assert!(output.status.success(), "python failed");
    let lines: Vec<Json> = String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 2 * sessions.len());
    for (verdict, data) in lines.iter().zip(sessions.iter().cycle()) {
        let refusal = verdict["refusal"]
            .as_str()
            .unwrap_or_else(|| panic!("pickle read a record of {} keys: {verdict}", data.len()));
        assert!(refusal.starts_with("invalid load key"), "{verdict}");
        assert_eq!(verdict["keys"], data.len(), "{verdict}");
        match data.get("k00").or_else(|| data.get("w0")) {
            Some(Value::String(text)) => assert_eq!(verdict["first"], text.as_str()),
            Some(_) => assert_eq!(verdict["first"], 1),
            None => assert!(verdict["first"].is_null(), "{verdict}"),
        }
    }
}
