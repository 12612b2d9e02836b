//! Cookie codec cost per operation, for the three sessions of
//! `scripts/bench-itsdangerous.py` (about 100 B, 1 KiB and 4 KiB of tagged
//! JSON), so the numbers compare directly with Flask's (itsdangerous):
//!
//! - `encode/<size>`: `CookieCodec::encode` (tagged JSON, zlib when it helps,
//!   base64, timestamp, HMAC-SHA1), reading the clock as Flask does;
//! - `decode/<size>`: `CookieCodec::decode` of a cookie it made, with Flask's
//!   default max age, reading the clock as Flask does;
//! - `hmac_sha1/<size>`: the floor set by the MAC: HMAC-SHA1 of the session's
//!   tagged JSON bytes with the derived key, keyed once outside the timed loop
//!   and cloned per operation, as the codec clones its pre-keyed MACs (the
//!   Python script's `base.copy()`, `update`, `digest()`);
//! - `hmac_sha1_keyed_per_call/<size>`: the same MAC keyed anew each time
//!   (`Hmac::new_from_slice`; Python's `hmac.new(derived_key, json_bytes,
//!   sha1).digest()`), which adds two SHA-1 blocks of key setup per call.
//!
//! - `parse_only/<size>`: the session's tagged JSON parsed into a map (and
//!   dropped), without MAC, base64 or clock: what decoding spends building the
//!   session; `serde_json_value/<size>`: serde_json parsing the same text into
//!   its own `Value`, for scale.
//!
//! - `cookie_crate_encode/<size>`, `cookie_crate_decode/<size>`: the usual
//!   Rust alternative for the same session: serde_json, base64 (a cookie
//!   value cannot hold JSON's quotes and commas) and the `cookie` crate's
//!   signed jar (HMAC-SHA256), with no timestamp, no max age and no
//!   compression; decoding verifies the signature and parses the JSON into a
//!   `serde_json::Value`.
//!
//! - `hostile/<case>`: refusing hostile cookies: a correctly signed 8 MiB zlib
//!   bomb (stopped at the 1 MiB payload bound), a tampered 4 KiB cookie and
//!   random garbage; and reading a correctly signed session of 50,000 keys
//!   (about 0.8 MiB of JSON) in sorted order and reversed, which must cost
//!   about the same.
//!
//! - `encrypted_encode/<mode>/<size>`, `encrypted_decode/<mode>/<size>`: the
//!   signed codec (`signed`, as `encode`/`decode` above, measured again in the
//!   same run so the ratio is fair) against the encrypted one
//!   (`SESSION_TYPE=encrypted`: XChaCha20-Poly1305, a nonce from the OS RNG per
//!   cookie), without compression (`encrypted`, the default) and with it
//!   (`encrypted_compressed`). The cookie sizes of the three are printed as
//!   `encrypted …` lines. Run alone with `-- encrypted_`.
//!
//! `scripts/bench-codec.sh` runs this and the Python script and writes
//! BENCHMARKS.md. The sessions' sizes are printed as `session …` lines, and
//! with `TESSERA_BENCH_DUMP_DIR` set each session's tagged JSON is written to
//! `<dir>/<size>.json`, so the script can check that both sides measure the
//! same bytes.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tessera::{tagged, CookieCodec, Map, Number, SecretKey, Value};

/// The Python script's key.
const SECRET_KEY: &str = "bench-secret-key";

fn map<const N: usize>(entries: [(&str, Value); N]) -> Map {
    entries
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

fn dict<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Dict(map(entries))
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn f(value: f64) -> Value {
    Value::from(value)
}

/// Python's `round(value, 2)`: the correctly rounded two-decimal value.
fn round2(value: f64) -> Value {
    let text = format!("{value:.2}");
    Value::Number(Number::from_f64(text.parse().unwrap_or(value)))
}

/// `session_100b()`: Flask-Login style user id, freshness, CSRF token.
fn session_100b() -> Map {
    map([
        ("_fresh", true.into()),
        ("_user_id", s("42")),
        (
            "csrf_token",
            s("Jq3vX9kTz0bWmR7cLs2YhN5uFe8GdPa1oKiE4wVxBtQ"),
        ),
        ("theme", s("dark")),
    ])
}

fn cart_item(sku: &str, title: &str, qty: i64, price: f64) -> Value {
    dict([
        ("sku", s(sku)),
        ("title", s(title)),
        ("qty", qty.into()),
        ("price", f(price)),
    ])
}

/// `session_1k()`: a logged-in shopper with a small cart and one flash.
fn session_1k() -> Map {
    map([
        ("_permanent", true.into()),
        ("_user_id", s("10457")),
        (
            "csrf_token",
            s("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        ),
        (
            "user",
            dict([
                ("id", 10457.into()),
                ("name", s("Alice Martin")),
                ("email", s("alice.martin@example.com")),
                ("roles", Value::List(vec![s("customer"), s("beta")])),
                ("locale", s("fr_FR")),
                ("tz", s("Europe/Paris")),
            ]),
        ),
        (
            "prefs",
            dict([
                ("theme", s("dark")),
                ("currency", s("EUR")),
                ("page_size", 24.into()),
                ("newsletter", false.into()),
            ]),
        ),
        (
            "cart",
            Value::List(vec![
                cart_item("BK-2231", "The Rust Programming Language", 1, 39.95),
                cart_item("MG-0042", "Enamel mug, 350 ml", 2, 12.5),
                cart_item("TS-1180", "T-shirt \"Ferris\" (M)", 1, 21.0),
                cart_item("ST-0007", "Sticker pack", 3, 4.99),
                cart_item("NB-0311", "Dotted notebook A5, 120 pages", 1, 14.9),
                cart_item("PN-0099", "Gel pen, blue, 0.5 mm (pack of 3)", 2, 6.45),
            ]),
        ),
        ("cart_total", f(140.62)),
        (
            "shipping_estimate",
            dict([
                ("method", s("colissimo")),
                ("days", Value::List(vec![2.into(), 4.into()])),
                ("price", f(5.9)),
            ]),
        ),
        ("last_search", s("flask session cookie size")),
        ("referrer", s("https://shop.example.com/blog/gift-guide")),
        (
            "_flashes",
            Value::List(vec![Value::tuple([
                s("message"),
                s("Your basket was updated."),
            ])]),
        ),
    ])
}

/// `session_4k()`: the shopper plus history, orders, A/B buckets, checkout.
fn session_4k() -> Map {
    let mut data = session_1k();
    let names = [
        "Aurora desk lamp",
        "Basalt coaster set",
        "Cedar notebook",
        "Dune throw pillow",
        "Ember candle",
        "Fjord water bottle",
        "Granite bookends",
        "Harbor tote bag",
        "Indigo scarf",
        "Juniper soap",
        "Kelp face mask",
        "Lumen night light",
        "Moss terrarium",
        "Nimbus umbrella",
        "Onyx pen",
        "Pine incense",
        "Quartz paperweight",
        "Rattan basket",
        "Sage tea blend",
        "Tidal wall print",
        "Umber leather wallet",
        "Velvet cushion cover",
        "Willow plant pot",
        "Yarrow herbal balm",
    ];
    let viewed = names
        .iter()
        .zip(0i64..)
        .map(|(name, i)| {
            dict([
                ("sku", Value::from(format!("PR-{}", 1000 + 37 * i))),
                ("title", Value::from(format!("Product {name}"))),
                ("price", round2(3.5 + 7.25 * i as f64)),
                ("viewed_at", (1_700_000_000 + 613 * i).into()),
            ])
        })
        .collect();
    data.insert("recently_viewed".to_owned(), Value::List(viewed));
    data.insert(
        "checkout".to_owned(),
        dict([
            ("step", 2.into()),
            (
                "shipping",
                dict([
                    ("name", s("Alice Martin")),
                    ("street", s("12 rue des Lilas")),
                    ("city", s("Lyon")),
                    ("postcode", s("69003")),
                    ("country", s("FR")),
                    ("phone", s("+33 6 12 34 56 78")),
                ]),
            ),
            ("billing_same", true.into()),
            ("coupon", s("WELCOME10")),
            (
                "notes",
                s("Please leave the parcel with the concierge if I am not at home."),
            ),
        ]),
    );
    let ab_tests = (0..18)
        .map(|i| {
            let bucket = if i % 3 != 0 { "A" } else { "B" };
            (format!("exp_{i:02}"), s(bucket))
        })
        .collect();
    data.insert("ab_tests".to_owned(), Value::Dict(ab_tests));
    let searches = [
        "ceramic mug",
        "rust book",
        "desk lamp warm light",
        "notebook dotted a5",
        "gift ideas under 30",
        "stickers programming",
        "t-shirt ferris crab",
        "linen napkins",
        "blue gel pen",
    ];
    data.insert(
        "search_history".to_owned(),
        Value::List(searches.into_iter().map(s).collect()),
    );
    let orders = ["delivered", "returned", "shipped"]
        .into_iter()
        .zip(0i64..)
        .map(|(status, i)| {
            dict([
                (
                    "order",
                    Value::from(format!("FR-2024-{:06}", 5810 + 13 * i)),
                ),
                ("total", round2(19.99 + 23.4 * i as f64)),
                ("status", s(status)),
                ("items", (1 + i % 4).into()),
            ])
        })
        .collect();
    data.insert("recent_orders".to_owned(), Value::List(orders));
    data
}

fn sessions() -> [(&'static str, Map); 3] {
    [
        ("100B", session_100b()),
        ("1KiB", session_1k()),
        ("4KiB", session_4k()),
    ]
}

fn codec(c: &mut Criterion) {
    let key = SecretKey::from(SECRET_KEY);
    // Flask's default PERMANENT_SESSION_LIFETIME, as the Python script uses.
    let codec = CookieCodec::new(&key, &[]);
    let derived: [u8; 20] = {
        let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("any key length");
        mac.update(tessera::DEFAULT_SALT.as_bytes());
        mac.finalize().into_bytes().into()
    };
    let sessions = sessions();

    for (label, data) in &sessions {
        let json = tagged::map_to_string(data);
        let cookie = codec.encode(data, SystemTime::now());
        let decoded = codec.decode(&cookie, SystemTime::now()).expect("decodes");
        assert_eq!(&decoded.data, data, "{label} round trips");
        if let Some(dir) = std::env::var_os("TESSERA_BENCH_DUMP_DIR") {
            let path = std::path::Path::new(&dir).join(format!("{label}.json"));
            std::fs::write(&path, &json).expect("writes the session dump");
        }
        println!(
            "session {label}: json_bytes={} cookie_bytes={} compressed={}",
            json.len(),
            cookie.len(),
            cookie.starts_with('.')
        );
    }

    let mut group = c.benchmark_group("encode");
    for (label, data) in &sessions {
        group.bench_with_input(BenchmarkId::from_parameter(label), data, |b, data| {
            b.iter(|| codec.encode(black_box(data), SystemTime::now()));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("decode");
    for (label, data) in &sessions {
        let cookie = codec.encode(data, SystemTime::now());
        group.bench_with_input(BenchmarkId::from_parameter(label), &cookie, |b, cookie| {
            b.iter(|| codec.decode(black_box(cookie), SystemTime::now()));
        });
    }
    group.finish();

    // The floor: the key's inner and outer states are computed once, as the
    // codec's signer does, so only hashing the JSON is left per operation.
    let keyed = Hmac::<Sha1>::new_from_slice(&derived).expect("any key length");
    let mut group = c.benchmark_group("hmac_sha1");
    for (label, data) in &sessions {
        let json = tagged::map_to_string(data).into_bytes();
        group.bench_with_input(BenchmarkId::from_parameter(label), &json, |b, json| {
            b.iter(|| {
                let mut mac = black_box(&keyed).clone();
                mac.update(black_box(json));
                mac.finalize().into_bytes()
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("hmac_sha1_keyed_per_call");
    for (label, data) in &sessions {
        let json = tagged::map_to_string(data).into_bytes();
        group.bench_with_input(BenchmarkId::from_parameter(label), &json, |b, json| {
            b.iter(|| {
                let mut mac =
                    Hmac::<Sha1>::new_from_slice(black_box(&derived)).expect("any key length");
                mac.update(black_box(json));
                mac.finalize().into_bytes()
            });
        });
    }
    group.finish();

    // What decoding spends on building the session, apart from the MAC:
    // the tagged JSON parsed into the map (and the map dropped, as `decode`
    // is measured), and serde_json's own `Value` from the same text.
    let mut group = c.benchmark_group("parse_only");
    for (label, data) in &sessions {
        let json = tagged::map_to_string(data);
        group.bench_with_input(BenchmarkId::from_parameter(label), &json, |b, json| {
            b.iter(|| tagged::from_str(black_box(json)));
        });
    }
    group.finish();
    let mut group = c.benchmark_group("serde_json_value");
    for (label, data) in &sessions {
        let json = tagged::map_to_string(data);
        group.bench_with_input(BenchmarkId::from_parameter(label), &json, |b, json| {
            b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(json)));
        });
    }
    group.finish();

    cookie_crate(c, &sessions);
    encrypted(c, &key, &sessions);

    let mut group = c.benchmark_group("hostile");
    let (_, big) = &sessions[2];
    let mut tampered = codec.encode(big, SystemTime::now()).into_bytes();
    tampered[10] ^= 1;
    let tampered = String::from_utf8(tampered).expect("ascii");
    let bomb = signed_zlib_bomb(&derived, 8 << 20);
    let garbage = "x".repeat(4000);
    for (case, cookie) in [
        ("zlib_bomb_8MiB", &bomb),
        ("tampered_4KiB", &tampered),
        ("garbage_4KB", &garbage),
    ] {
        assert!(
            codec.decode(cookie, SystemTime::now()).is_err(),
            "{case} must be refused"
        );
        group.bench_with_input(BenchmarkId::from_parameter(case), cookie, |b, cookie| {
            b.iter(|| codec.decode(black_box(cookie), SystemTime::now()));
        });
    }
    // Accepted, but as many keys as the payload bound allows, in the order
    // Flask writes them and reversed: reading the reversed one must not
    // cost a shift of the map per key.
    for (case, descending) in [("ascending_keys_50k", false), ("descending_keys_50k", true)] {
        let cookie = signed_json(&derived, &many_keys(50_000, descending));
        let decoded = codec.decode(&cookie, SystemTime::now()).expect("decodes");
        assert_eq!(decoded.data.len(), 50_000, "{case}");
        group.bench_with_input(BenchmarkId::from_parameter(case), &cookie, |b, cookie| {
            b.iter(|| codec.decode(black_box(cookie), SystemTime::now()));
        });
    }
    group.finish();
}

/// The signed codec against the encrypted one, compressed and not.
fn encrypted(c: &mut Criterion, key: &SecretKey, sessions: &[(&'static str, Map)]) {
    let codecs = [
        ("signed", CookieCodec::new(key, &[])),
        ("encrypted", CookieCodec::encrypted(key, &[], "session")),
        (
            "encrypted_compressed",
            CookieCodec::encrypted(key, &[], "session").encrypted_compression(true),
        ),
    ];
    for (label, data) in sessions {
        let sizes: Vec<String> = codecs
            .iter()
            .map(|(mode, codec)| {
                let cookie = codec.encode(data, SystemTime::now());
                let decoded = codec.decode(&cookie, SystemTime::now()).expect("decodes");
                assert_eq!(&decoded.data, data, "{mode} {label} round trips");
                format!("{mode}_bytes={}", cookie.len())
            })
            .collect();
        println!("encrypted {label}: {}", sizes.join(" "));
    }

    let mut group = c.benchmark_group("encrypted_encode");
    for (label, data) in sessions {
        for (mode, codec) in &codecs {
            group.bench_with_input(BenchmarkId::new(*mode, label), data, |b, data| {
                b.iter(|| codec.encode(black_box(data), SystemTime::now()));
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("encrypted_decode");
    for (label, data) in sessions {
        for (mode, codec) in &codecs {
            let cookie = codec.encode(data, SystemTime::now());
            group.bench_with_input(BenchmarkId::new(*mode, label), &cookie, |b, cookie| {
                b.iter(|| codec.decode(black_box(cookie), SystemTime::now()));
            });
        }
    }
    group.finish();
}

/// A cookie signed with the real key whose payload inflates to `size` bytes
/// of JSON: what a leaked key or a hostile peer sharing the key could send.
/// The `cookie` crate's signed jar with serde_json, for the same sessions.
fn cookie_crate(c: &mut Criterion, sessions: &[(&'static str, Map)]) {
    use base64::Engine as _;
    use cookie::{Cookie, CookieJar, Key};

    let key = Key::from(&[7u8; 64]);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let encode = |json: &serde_json::Value| -> String {
        let value = b64.encode(serde_json::to_vec(json).expect("serializes"));
        let mut jar = CookieJar::new();
        jar.signed_mut(&key).add(Cookie::new("session", value));
        jar.get("session").expect("just added").value().to_owned()
    };
    let decode = |signed: &str| -> Option<serde_json::Value> {
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new("session", signed.to_owned()));
        let verified = jar.signed(&key).get("session")?;
        let bytes = b64.decode(verified.value()).ok()?;
        serde_json::from_slice(&bytes).ok()
    };

    let mut group = c.benchmark_group("cookie_crate_encode");
    for (label, data) in sessions {
        let json: serde_json::Value =
            serde_json::from_str(&tagged::map_to_string(data)).expect("plain JSON");
        assert_eq!(decode(&encode(&json)).as_ref(), Some(&json), "{label}");
        println!("cookie crate {label}: cookie_bytes={}", encode(&json).len());
        group.bench_with_input(BenchmarkId::from_parameter(label), &json, |b, json| {
            b.iter(|| encode(black_box(json)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cookie_crate_decode");
    for (label, data) in sessions {
        let json: serde_json::Value =
            serde_json::from_str(&tagged::map_to_string(data)).expect("plain JSON");
        let signed = encode(&json);
        group.bench_with_input(BenchmarkId::from_parameter(label), &signed, |b, signed| {
            b.iter(|| decode(black_box(signed)));
        });
    }
    group.finish();
}

fn signed_zlib_bomb(derived: &[u8; 20], size: usize) -> String {
    use std::io::Write as _;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(b"{\"a\":\"").expect("compresses");
    let chunk = vec![b'a'; 1 << 16];
    for _ in 0..size / chunk.len() {
        encoder.write_all(&chunk).expect("compresses");
    }
    encoder.write_all(b"\"}").expect("compresses");
    signed_zlib(derived, &encoder.finish().expect("compresses"))
}

/// A correctly signed cookie for tagged JSON `json`, compressed.
fn signed_json(derived: &[u8; 20], json: &str) -> String {
    use std::io::Write as _;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(json.as_bytes()).expect("compresses");
    signed_zlib(derived, &encoder.finish().expect("compresses"))
}

/// A correctly signed cookie whose payload is the zlib stream `zlib`.
fn signed_zlib(derived: &[u8; 20], zlib: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = format!(".{}", b64.encode(zlib));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let timestamp = now.to_be_bytes();
    let first = timestamp.iter().position(|b| *b != 0).unwrap_or(7);
    let value = format!("{payload}.{}", b64.encode(&timestamp[first..]));
    let mut mac = Hmac::<Sha1>::new_from_slice(derived).expect("any key length");
    mac.update(value.as_bytes());
    format!("{value}.{}", b64.encode(mac.finalize().into_bytes()))
}

/// Tagged JSON of one object with `count` integer keys, in ascending or
/// descending order.
fn many_keys(count: usize, descending: bool) -> String {
    let entries: Vec<String> = (0..count).map(|i| format!("\"k{i:06}\":{i}")).collect();
    let ordered: Vec<&str> = if descending {
        entries.iter().rev().map(String::as_str).collect()
    } else {
        entries.iter().map(String::as_str).collect()
    };
    format!("{{{}}}", ordered.join(","))
}

/// 47 benchmarks of about 4 s each: about three minutes in all, after the
/// build (`-- encrypted_` runs the 18 of the signed/encrypted comparison).
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(60)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = codec
}
criterion_main!(benches);
