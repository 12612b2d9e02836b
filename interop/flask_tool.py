#!/usr/bin/env python3
"""Ground truth from real Flask for tessera's interop tests.

Every answer comes from Flask's own machinery: a real ``Flask`` app object, its
``app.session_interface``, ``get_signing_serializer(app)``, the session
interface's ``TaggedJSONSerializer`` and real request contexts / test clients.
Nothing about the cookie format is re-implemented here.

Output is JSON on stdout. Subcommands:

  cases     --secret-key K [--fallback-key F]... [--timestamp T] [--sign-with-fallback F]
            One JSON object per line for a fixed list of named sessions:
            {"name", "cookie", "tagged_json", "compressed"}.
  load      --secret-key K [--fallback-key F]... [--lifetime S] [--now T] COOKIE
            Opens COOKIE exactly like Flask does for a request carrying it.
  sign      --secret-key K [--timestamp T]         (tagged JSON on stdin)
  roundtrip [--secret-key K]                       (tagged JSON on stdin)
  variants  --secret-key K [--seed N] [--count N]
            Cookies changed the ways a client, a proxy or another signer
            might change them, each with Flask's verdict:
            {"cookie", "ok", "empty", "tagged_json"} or {"cookie", "ok": false, "error"}.
  cookie-headers --secret-key K [--seed N] [--count N]
            Cookie headers carrying a valid session cookie among changes
            clients and proxies make, each with the session Flask reads:
            {"header_hex", "tagged_json"}.
  set-cookie-headers [--timestamp T]
            The Set-Cookie / Vary headers Flask sends in a set of scenarios.

Run it with the venv made by scripts/setup-python.sh (pinned Flask versions).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import sys
import uuid
from collections.abc import Iterator
from importlib.metadata import version as _version
from typing import Any

import itsdangerous.encoding
import itsdangerous.timed
from flask import Flask, session
from markupsafe import Markup

COOKIE_NAME = "session"  # Flask's default SESSION_COOKIE_NAME


# --------------------------------------------------------------------------
# Flask plumbing
# --------------------------------------------------------------------------


def make_app(
    secret_key: str | None,
    fallback_keys: list[str] | None = None,
    lifetime: int | None = None,
    **config: Any,
) -> Flask:
    """A bare Flask app configured the way a real deployment would be."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = secret_key
    # Flask reads SECRET_KEY_FALLBACKS as a list, oldest first; the signing
    # serializer tries the current key, then the fallbacks from last to first.
    app.config["SECRET_KEY_FALLBACKS"] = list(fallback_keys or [])
    if lifetime is not None:
        app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(seconds=lifetime)
    app.config.update(config)
    return app


@contextlib.contextmanager
def frozen_clock(timestamp: int | None) -> Iterator[None]:
    """Freeze the clock itsdangerous uses, if a timestamp is given.

    In itsdangerous 2.2 ``TimestampSigner.get_timestamp`` (``int(time.time())``)
    is the single source of "now": ``sign`` stamps cookies with it and
    ``unsign`` computes ``age = get_timestamp() - cookie_ts`` for max_age.
    Patching the method therefore makes both signing and expiry checks
    deterministic, without touching the global ``time.time``.
    """
    if timestamp is None:
        yield
        return
    signer_cls = itsdangerous.timed.TimestampSigner
    original = signer_cls.get_timestamp
    signer_cls.get_timestamp = lambda self: int(timestamp)  # type: ignore[method-assign]
    try:
        yield
    finally:
        signer_cls.get_timestamp = original  # type: ignore[method-assign]


def tagged_serializer(app: Flask):
    """The TaggedJSONSerializer Flask uses for the session payload."""
    return app.session_interface.serializer  # type: ignore[attr-defined]


def signing_serializer(app: Flask):
    """Flask's URLSafeTimedSerializer (salt "cookie-session", HMAC-SHA1)."""
    s = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    if s is None:
        raise SystemExit("error: an empty secret key gives no signing serializer")
    return s


# NOTE: serializer.dumps must run inside an app context. Flask's json.dumps
# only applies the app's JSON provider (sort_keys=True, ensure_ascii=True)
# when current_app is set; outside a context it falls back to plain
# json.dumps *without* sorted keys, which is not what Flask writes into
# cookies. Every call below is therefore wrapped in app.app_context() (or a
# request context, which pushes one).


def emit(obj: Any) -> None:
    """One compact JSON document per line. ensure_ascii keeps stdout 7-bit."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=True) + "\n")


def read_stdin_text() -> str:
    # Read bytes and decode strictly as UTF-8, whatever the locale says.
    return sys.stdin.buffer.read().decode("utf-8")


# --------------------------------------------------------------------------
# The fixed list of test sessions
# --------------------------------------------------------------------------

# Printable ASCII without '"' and '\\', so the JSON text of the noise string is
# exactly as long as the string itself (no escapes).
_NOISE_ALPHABET = "".join(
    c for c in map(chr, range(0x20, 0x7F)) if c not in '"\\'
)


def noise(length: int, seed: str) -> str:
    """A deterministic, random-looking string (SHA-256 in counter mode)."""
    n = len(_NOISE_ALPHABET)
    out: list[str] = []
    counter = 0
    while len(out) < length:
        block = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        # Rejection sampling keeps the characters uniformly distributed.
        out.extend(_NOISE_ALPHABET[b % n] for b in block if b < 2 * n)
        counter += 1
    return "".join(out[:length])


def build_cases() -> list[tuple[str, dict[str, Any]]]:
    """Named sessions in native Python, as a Flask view would store them."""
    utc = dt.timezone.utc
    return [
        # The worked example of docs: {"user_id": 42, "name": "alice"}.
        ("alice", {"user_id": 42, "name": "alice"}),
        ("empty", {}),
        # ---- strings
        ("string_quotes_backslashes",
         {"s": 'say "hi" \\ back\\slash / slash \'single\''}),
        ("string_control_chars",
         {"s": "nl\ntab\tcr\rnul\x00us\x1fdel\x7fbs\x08ff\x0c"}),
        ("string_non_ascii", {"s": "caf\u00e9 \u4e2d\u6587", "\u00e9": "key"}),
        # Astral characters are written by Flask as UTF-16 surrogate pairs
        # (\ud83c\udfaf); U+1D11E and U+1F600 are two more.
        ("string_astral", {"s": "\U0001F3AF target \U0001D11E clef \U0001F600"}),
        ("string_html_chars", {"s": "<script>alert('x') & </script>"}),
        # ---- numbers
        ("ints", {
            "zero": 0,
            "minus_one": -1,
            "two_pow_53_plus_1": 2**53 + 1,
            "i64_max": 2**63 - 1,
            "i64_min": -(2**63),
            "u64_max": 2**64 - 1,
            "two_pow_64_plus_5": 2**64 + 5,
            "minus_two_pow_70": -(2**70),
        }),
        # A list keeps the order, so a mismatch is easy to locate. Python
        # writes floats with repr(): 1e16 -> "1e+16", 1e15 -> "1000000000000000.0",
        # 1e-05 -> "1e-05", 0.0001 -> "0.0001", -0.0 -> "-0.0".
        ("floats", {"f": [
            1.5, 0.1, 1e16, 1e15, 1e-05, 0.0001, -0.0, 1e100, 123456789.123,
            100.0, 1e22, 5e-324, 1.7976931348623157e308, -2.5e-07,
        ]}),
        ("bools_none", {"t": True, "f": False, "n": None}),
        # ---- containers
        ("nested", {
            "a": {"b": {"c": [1, [2, [3, {"d": "e"}]]]}},
            "mixed": [1, "two", 3.0, None, True, {"k": []}],
        }),
        ("empty_containers", {"list": [], "dict": {}}),
        ("tuple", {"tup": (1, "two", 3.5)}),
        ("nested_tuple", {"lst": [1, (2, 3), [(4, (5, 6))]], "empty_tuple": ()}),
        # ---- tagged types
        # b"\xfb\xef\xbe" -> "++++" and b"\xfb\xff" -> "+/8=" show that " b"
        # uses *standard* base64 with padding, not the URL-safe alphabet.
        ("bytes", {
            "ff00": b"\xff\x00",
            "empty": b"",
            "hello": b"hello",
            "plus": b"\xfb\xef\xbe",
            "slash_pad": b"\xfb\xff",
        }),
        ("markup", {"html": Markup("<b>hi</b>")}),
        ("uuid", {"id": uuid.UUID("12345678-1234-5678-1234-567812345678")}),
        ("datetime", {"when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc)}),
        # Flask's " d" tag drops microseconds: the Python value does not
        # round-trip (its tagged JSON equals the "datetime" case).
        ("datetime_microseconds",
         {"when": dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=utc)}),
        # ---- the " di" escape: a one-key dict whose key is a tag
        ("escape_t", {"x": {" t": [1, 2]}}),
        ("escape_di", {"y": {" di": 1}}),
        ("escape_b", {"z": {" b": "not base64"}}),
        # The whole session is such a dict, so the top level gets escaped too.
        ("escape_top_level", {" t": "top"}),
        # Two keys: not a tag candidate, so no escape.
        ("tag_key_with_sibling", {"z": {" t": 1, "other": 2}}),
        # ---- Flask's own keys
        ("permanent", {"_permanent": True, "user_id": 7}),
        ("flashes", {"_flashes": [("message", "Hi"), ("error", "Bad")]}),
        ("flash_markup", {"_flashes": [("message", Markup("<i>safe</i>"))]}),
        # ---- payload size / compression
        ("large_compressible", {"blob": "a" * 2000}),
        # zlib cannot shrink ~128 random printable characters (the Huffman
        # table costs more than it saves), so this one is sent uncompressed
        # and can be compared byte for byte. Much longer random text always
        # compresses a little (printable ASCII carries < 7 bits/char).
        ("large_incompressible", {"noise": noise(128, "incompressible")}),
        ("large_random_compressed", {"noise": noise(1500, "compressed")}),
        # ---- key order: Flask sorts keys by code point. U+FB01 < U+1F600 by
        # code point, but a UTF-16 comparison would put U+1F600 (D83D...) first.
        ("key_order", {
            "B": 1, "a": 2, "\u00e9": 3, "Z": 4, "_": 5, "": 6,
            "\ufb01": 7, "\U0001F600": 8, "aa": 9, "A": 10,
        }),
    ]


# --------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------


def cmd_cases(args: argparse.Namespace) -> int:
    app = make_app(args.secret_key, args.fallback_key)
    signer_app = app
    if args.sign_with_fallback is not None:
        if args.sign_with_fallback not in (args.fallback_key or []):
            raise SystemExit("error: --sign-with-fallback must name one of the --fallback-key values")
        # New cookies are always signed with the current key, so "a cookie
        # signed with a fallback key" is a cookie made by a second app whose
        # SECRET_KEY *was* that key (as before a key rotation).
        signer_app = make_app(args.sign_with_fallback)

    tagged = tagged_serializer(app)
    with signer_app.app_context(), frozen_clock(args.timestamp):
        signer = signing_serializer(signer_app)
        for name, data in build_cases():
            # save_session signs dict(session); do the same.
            cookie = signer.dumps(dict(data))
            emit({
                "name": name,
                "cookie": cookie,
                "tagged_json": tagged.dumps(dict(data)),
                "compressed": cookie.startswith("."),
            })
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    app = make_app(args.secret_key, args.fallback_key, args.lifetime)
    headers = {"Cookie": f"{COOKIE_NAME}={args.cookie}"}
    # The request context is built but not pushed: pushing it would already
    # call open_session, outside our error handling. Only the app context is
    # pushed (the tagged JSON serializer needs current_app, see above).
    request = app.test_request_context("/", headers=headers).request
    with app.app_context(), frozen_clock(args.now):
        try:
            sess = app.session_interface.open_session(app, request)
        except Exception as exc:  # noqa: BLE001 - reporting Flask's failure is the point
            # E.g. a correctly signed payload that is not a JSON object: Flask
            # itself would fail the request with a 500.
            emit({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            return 0
        if sess is None:
            emit({"ok": False, "error": "open_session returned None (no secret key)"})
            return 0
        # A bad signature, expiry or malformed cookie gives an empty session,
        # not an exception: that is Flask's documented behaviour.
        emit({
            "ok": True,
            "tagged_json": tagged_serializer(app).dumps(dict(sess)),
            # Flask tests it for truth (get_expiration_time), whatever it holds.
            "permanent": bool(sess.permanent),
            "empty": len(sess) == 0,
        })
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    app = make_app(args.secret_key)
    text = read_stdin_text()
    with app.app_context(), frozen_clock(args.timestamp):
        data = tagged_serializer(app).loads(text)
        # Not restricted to objects on purpose: signing e.g. "[1,2]" yields a
        # correctly signed cookie whose payload is not a JSON object.
        if isinstance(data, dict):
            data = dict(data)
        emit({"cookie": signing_serializer(app).dumps(data)})
    return 0


def cmd_roundtrip(args: argparse.Namespace) -> int:
    app = make_app(args.secret_key)
    text = read_stdin_text()
    with app.app_context():
        s = tagged_serializer(app)
        emit({"tagged_json": s.dumps(s.loads(text))})
    return 0


# ---- variants ----------------------------------------------------------------

# Tag contents Flask never writes but reads, through Python's duck typing
# (`tuple(value)`, `b64decode(value)`, `uuid.UUID(value)`), as another
# signer sharing the key might write them; and text Python refuses.
_RAW_PAYLOADS = [
    '{"a":{" t":"ab"}}',
    '{"a":{" t":""}}',
    '{"a":{" b":"aGk==="}}',
    '{"a":{" b":"aG k="}}',
    '{"a":{" b":"=aGk="}}',
    '{"a":{" b":"!!"}}',
    '{"a":{" b":"aGk"}}',
    '{"a":{" u":"1234-5678-1234-5678-1234-5678-1234-5678"}}',
    '{"a":{" u":"{12345678123456781234567812345678}"}}',
    '{"a":{" u":"urn:uuid:12345678-1234-5678-1234-567812345678"}}',
    '{"a":{" u":"ABCDEF78123456781234567812345678"}}',
    '{"a":{" u":"0x345678123456781234567812345678"}}',
    '{"a":{" u":"1_345678123456781234567812345678"}}',
    '{"a":{" u":"1__45678123456781234567812345678"}}',
    '{"a":{" u":"1234567812345678123456781234567"}}',
    '{"a":"\\u0041"}',
    '{"a":"\\u+041"}',
    '{"a":"\\u-041"}',
    '{"a":"\\ud83d\\u+e00"}',
]

# Characters a client, a proxy or a hand-written signer could leave in a
# cookie value without breaking the Cookie header (no space, '"' or ';').
_INSERTS = "=+/-_!~*.,:@\\\u00e9"


def _mutate(text: str, rng: Any) -> str:
    op = rng.randrange(6)
    if op == 0 or not text:
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice(_INSERTS) + text[at:]
    if op == 1:
        return text + "=" * rng.randrange(1, 5)
    if op == 2:
        return text.replace("-", "+").replace("_", "/")
    if op == 3:
        at = rng.randrange(len(text))
        return text[:at] + text[at + 1:]
    if op == 4:
        return text + rng.choice(_INSERTS) * rng.randrange(1, 3)
    at = rng.randrange(len(text))
    return text[:at] + rng.choice(_INSERTS) + text[at + 1:]


def _verdict(app: Flask, cookie: str) -> dict[str, Any]:
    """What Flask makes of a request carrying `cookie`: as `cmd_load`."""
    headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
    request = app.test_request_context("/", headers=headers).request
    try:
        sess = app.session_interface.open_session(app, request)
    except Exception as exc:  # noqa: BLE001 - Flask would answer 500
        return {"cookie": cookie, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "cookie": cookie,
        "ok": True,
        "empty": len(sess) == 0,
        "tagged_json": tagged_serializer(app).dumps(dict(sess)),
    }


def cmd_variants(args: argparse.Namespace) -> int:
    """Cookies Flask did not write but may receive, each with Flask's verdict:
    random changes to the signature (no key needed), and to the timestamp or
    the payload re-signed with the key (another signer's quirks), plus the
    raw payloads above, signed. Flask's clock is frozen for the whole run and
    each verdict says when it was made (`now`), so that a timestamp changed
    to a moment just ahead is judged at the same time on both sides."""
    import random
    import time

    rng = random.Random(args.seed)
    app = make_app(args.secret_key)
    now = int(time.time())
    with app.app_context(), frozen_clock(now):
        serializer = signing_serializer(app)
        signer = serializer.make_signer(serializer.salt)
        sessions = [
            {"user_id": 42},
            {"cart": [1, 2, 3], "name": "\u00e9" * 40, "b": b"\x00\xff"},
            {"text": "abc " * 200, "t": (1, "x")},
        ]
        bases = [serializer.dumps(data) for data in sessions]
        for raw in _RAW_PAYLOADS:
            cookie = signer.sign(itsdangerous.encoding.base64_encode(raw)).decode()
            emit({**_verdict(app, cookie), "now": now})
        for _ in range(args.count):
            cookie = rng.choice(bases)
            value, signature = cookie.rsplit(".", 1)
            payload, timestamp = value.rsplit(".", 1)
            part = rng.randrange(3)
            if part == 0:
                variant = f"{value}.{_mutate(signature, rng)}"
            else:
                if part == 1:
                    value = f"{payload}.{_mutate(timestamp, rng)}"
                else:
                    value = f"{_mutate(payload, rng)}.{timestamp}"
                variant = f"{value}.{signer.get_signature(value).decode()}"
            emit({**_verdict(app, variant), "now": now})
    return 0


def cmd_cookie_headers(args: argparse.Namespace) -> int:
    """Cookie headers carrying a valid session cookie, changed the ways
    clients and proxies change them (spaces, quotes, escapes, separators,
    bytes beyond ASCII, other cookies around it), each with the session
    Flask reads from it. Headers are bytes (in hex), given to Flask as a WSGI
    server gives them: each byte one Latin-1 character."""
    import random

    rng = random.Random(args.seed)
    app = make_app(args.secret_key)
    with app.app_context():
        cookie = signing_serializer(app).dumps({"user_id": 42, "name": "\u00e9"})
    noise = [b" ", b"\t", b'"', b"\\", b";", b",", b"=", b"a", b"!",
             "\u00e9".encode(), "\u20ac".encode(), b"\xe9", b"\xa0", b"\xff"]
    others = [b"", b"a=1; ", b"theme=dark;", b'q="x y"; ', b"x; ", b"=v; ",
              "k=\u00e9; ".encode(), b"raw=\xe9\xff; "]

    def quoted(value: bytes) -> bytes:
        # Quote it, escaping some characters as werkzeug's unslash reads them.
        out = []
        for byte in value:
            pick = rng.randrange(8)
            if pick == 0:
                out.append(b"\\" + bytes([byte]))
            elif pick == 1:
                out.append(b"\\%03o" % byte)
            else:
                out.append(bytes([byte]))
        return b'"' + b"".join(out) + b'"'

    for _ in range(args.count):
        value = cookie.encode()
        kind = rng.randrange(6)
        if kind == 0:
            at = rng.randrange(len(value) + 1)
            value = value[:at] + rng.choice(noise) + value[at:]
        elif kind == 1:
            # Into the signature, which anyone can change: one to three.
            dot = value.rindex(b".") + 1
            for _ in range(rng.randrange(1, 4)):
                at = rng.randrange(dot, len(value) + 1)
                value = value[:at] + rng.choice(noise) + value[at:]
        elif kind == 2:
            value = quoted(value)
        elif kind == 3:
            value = rng.choice([b'"', b" ", b"\t", b""]) + value + rng.choice([b'"', b" ", b"\t", b"", b";"])
        name = rng.choice([b"session", b" session", b"session ", b"session\t"])
        equals = rng.choice([b"=", b" =", b"= ", b" = "])
        header = rng.choice(others) + name + equals + value + rng.choice([b"", b";", b"; b=2", b";c"])
        emit({"header_hex": header.hex(), **_verdict_for_header(app, header)})
    return 0


def _verdict_for_header(app: Flask, header: bytes) -> dict[str, Any]:
    from werkzeug.test import create_environ

    environ = create_environ("/")
    environ["HTTP_COOKIE"] = header.decode("latin-1")
    with app.request_context(environ):
        from flask import request

        sess = app.session_interface.open_session(app, request)
        return {"tagged_json": tagged_serializer(app).dumps(dict(sess))}


# ---- set-cookie-headers ----------------------------------------------------

# Config variants: Flask defaults, then one SESSION_COOKIE_* option at a time,
# then all of them together (shows the attribute order in one header).
_HEADER_CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "samesite_lax": {"SESSION_COOKIE_SAMESITE": "Lax"},
    "secure": {"SESSION_COOKIE_SECURE": True},
    "domain": {"SESSION_COOKIE_DOMAIN": "example.com"},
    "path": {"SESSION_COOKIE_PATH": "/app"},
    # Unset, the cookie's path is APPLICATION_ROOT's; set, it wins.
    "application_root": {"APPLICATION_ROOT": "/app"},
    "application_root_and_path": {"APPLICATION_ROOT": "/app", "SESSION_COOKIE_PATH": "/"},
    "partitioned": {"SESSION_COOKIE_PARTITIONED": True},
    "all_options": {
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_DOMAIN": "example.com",
        "SESSION_COOKIE_PATH": "/app",
        "SESSION_COOKIE_PARTITIONED": True,
    },
}

# scenario -> (route, what the request carries, description)
_HEADER_SCENARIOS: dict[str, tuple[str, str, str]] = {
    "set_key": ("/set", "none", "sets session['key'] (non-permanent), no cookie sent"),
    "set_permanent": ("/set_permanent", "none",
                      "sets session.permanent = True and session['key'], no cookie sent"),
    "clear_nonempty": ("/clear", "session",
                       "session.clear() on a non-empty session (deletion cookie)"),
    "read_only": ("/read", "session", "only reads session.get('key')"),
    "untouched": ("/untouched", "none", "does not touch the session, no cookie sent"),
}

# Extra scenarios, run with the default config only.
_HEADER_EXTRAS: dict[str, tuple[str, str, str]] = {
    "clear_empty": ("/clear", "none",
                    "session.clear() with no cookie sent: empty but modified"),
    "read_missing": ("/read", "none", "reads session.get('key') with no cookie sent"),
    "untouched_with_cookie": ("/untouched", "session",
                              "does not touch a non-permanent session it was sent"),
    "untouched_with_permanent_cookie": ("/untouched", "permanent_session",
                                        "does not touch a permanent session it was sent "
                                        "(SESSION_REFRESH_EACH_REQUEST re-signs it)"),
}


def _header_app(config: dict[str, Any]) -> Flask:
    app = make_app("k", **config)

    @app.route("/set")
    def set_key() -> str:
        session["key"] = "value"
        return "ok"

    @app.route("/set_permanent")
    def set_permanent() -> str:
        session.permanent = True
        session["key"] = "value"
        return "ok"

    @app.route("/clear")
    def clear() -> str:
        session.clear()
        return "ok"

    @app.route("/read")
    def read() -> str:
        return str(session.get("key"))

    @app.route("/untouched")
    def untouched() -> str:
        return "ok"

    return app


def cmd_set_cookie_headers(args: argparse.Namespace) -> int:
    out: dict[str, Any] = {}
    runs = [(cfg, sc, _HEADER_SCENARIOS[sc]) for cfg in _HEADER_CONFIGS for sc in _HEADER_SCENARIOS]
    runs += [("default", sc, spec) for sc, spec in _HEADER_EXTRAS.items()]

    with frozen_clock(args.timestamp):
        for cfg_name, scenario, (route, carries, description) in runs:
            config = _HEADER_CONFIGS[cfg_name]
            app = _header_app(config)
            request_cookie = None
            if carries != "none":
                data: dict[str, Any] = {"key": "value"}
                if carries == "permanent_session":
                    data["_permanent"] = True
                with app.app_context():
                    request_cookie = f"{COOKIE_NAME}={signing_serializer(app).dumps(data)}"
            # use_cookies=False: send exactly the Cookie header given, so the
            # test client's cookie jar (domain/path matching) plays no part.
            client = app.test_client(use_cookies=False)
            headers = {"Cookie": request_cookie} if request_cookie else {}
            resp = client.get(route, headers=headers)
            out[f"{cfg_name}/{scenario}"] = {
                "description": description,
                "config": config,
                "request": f"GET {route}",
                "request_cookie": request_cookie,
                "status": resp.status_code,
                "set_cookie": resp.headers.getlist("Set-Cookie"),
                "vary": resp.headers.get("Vary"),
            }

    # One line, as every subcommand answers (pipe it to `python -m json.tool`
    # to read it).
    emit(out)
    return 0


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=f"Flask {_version('flask')} / itsdangerous {_version('itsdangerous')} "
        f"/ werkzeug {_version('werkzeug')} ground truth; JSON on stdout."
    )
    sub = p.add_subparsers(dest="command", required=True)

    def keys(sp: argparse.ArgumentParser, fallbacks: bool = True, required: bool = True) -> None:
        sp.add_argument("--secret-key", required=required, help="SECRET_KEY")
        if fallbacks:
            sp.add_argument("--fallback-key", action="append", default=[],
                            help="an entry of SECRET_KEY_FALLBACKS (repeat, oldest first)")

    sp = sub.add_parser("cases", help="sign the fixed list of test sessions")
    keys(sp)
    sp.add_argument("--timestamp", type=int, help="freeze the signing time (unix seconds)")
    sp.add_argument("--sign-with-fallback", metavar="KEY",
                    help="sign with this fallback key (one of --fallback-key) instead of the current key")
    sp.set_defaults(func=cmd_cases)

    sp = sub.add_parser("load", help="open a cookie like Flask does for a request")
    keys(sp)
    sp.add_argument("--lifetime", type=int, help="PERMANENT_SESSION_LIFETIME in seconds")
    sp.add_argument("--now", type=int,
                    help="freeze 'now' (unix seconds) for the expiry check")
    sp.add_argument("cookie", help="the value of the 'session' cookie")
    sp.set_defaults(func=cmd_load)

    sp = sub.add_parser("sign", help="sign tagged JSON read from stdin")
    keys(sp, fallbacks=False)
    sp.add_argument("--timestamp", type=int, help="freeze the signing time (unix seconds)")
    sp.set_defaults(func=cmd_sign)

    sp = sub.add_parser("roundtrip", help="loads then dumps tagged JSON read from stdin")
    keys(sp, fallbacks=False, required=False)
    sp.set_defaults(func=cmd_roundtrip)

    sp = sub.add_parser("variants", help="changed cookies and Flask's verdict on each")
    keys(sp, fallbacks=False)
    sp.add_argument("--seed", type=int, default=1)
    sp.add_argument("--count", type=int, default=500)
    sp.set_defaults(func=cmd_variants)

    sp = sub.add_parser("cookie-headers", help="changed Cookie headers and the session Flask reads")
    keys(sp, fallbacks=False)
    sp.add_argument("--seed", type=int, default=1)
    sp.add_argument("--count", type=int, default=500)
    sp.set_defaults(func=cmd_cookie_headers)

    sp = sub.add_parser("set-cookie-headers",
                        help="Set-Cookie and Vary headers Flask sends, by scenario")
    sp.add_argument("--timestamp", type=int,
                    help="freeze the signing time (Expires still uses the real clock)")
    sp.set_defaults(func=cmd_set_cookie_headers)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:
        # Output piped into e.g. `head`: stop quietly (recipe from the Python
        # docs: point stdout at devnull so the exit-time flush cannot fail).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
