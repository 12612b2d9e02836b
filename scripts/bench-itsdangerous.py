#!/usr/bin/env python3
"""Benchmark Flask's session cookie signing (itsdangerous) per operation.

Run with the pinned venv:

    "$(scripts/setup-python.sh)" scripts/bench-itsdangerous.py

For three session sizes (about 100 B, 1 KiB and 4 KiB of tagged JSON) it times:
  encode_ns  Flask's signing serializer .dumps(session): tagged JSON, optional
             zlib, base64, timestamp, HMAC-SHA1 -> cookie string
  decode_ns  .loads(cookie, max_age=lifetime) on a cookie Flask produced, the
             call Flask's open_session makes
  hmac_ns    the floor set by the MAC itself: HMAC-SHA1 of the session's tagged
             JSON bytes alone with the derived key, keyed once outside the timed
             loop (base = hmac.new(derived_key, digestmod=sha1)) and per
             operation base.copy(), .update(json_bytes), .digest(), as tessera
             clones its pre-keyed MACs
  hmac_keyed_per_call_ns
             the same MAC keyed anew each time,
             hmac.new(derived_key, json_bytes, sha1).digest()
Each figure is the median over several timeit repeats, in nanoseconds per
operation. The whole run takes about 13 seconds. JSON on stdout.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import platform
import statistics
import sys
import timeit
from importlib.metadata import version

from flask import Flask

REPEATS = 7
TARGET_SECONDS_PER_REPEAT = 0.15  # 3 sizes x 4 ops x 7 repeats -> ~13 s


def session_100b() -> dict:
    """Flask-Login style: user id, freshness and a CSRF token (random-looking)."""
    return {
        "_fresh": True,
        "_user_id": "42",
        "csrf_token": "Jq3vX9kTz0bWmR7cLs2YhN5uFe8GdPa1oKiE4wVxBtQ",
        "theme": "dark",
    }


def session_1k() -> dict:
    """A logged-in shopper: profile, preferences, a small cart, one flash."""
    return {
        "_permanent": True,
        "_user_id": "10457",
        "csrf_token": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "user": {"id": 10457, "name": "Alice Martin", "email": "alice.martin@example.com",
                 "roles": ["customer", "beta"], "locale": "fr_FR", "tz": "Europe/Paris"},
        "prefs": {"theme": "dark", "currency": "EUR", "page_size": 24, "newsletter": False},
        "cart": [
            {"sku": "BK-2231", "title": "The Rust Programming Language", "qty": 1, "price": 39.95},
            {"sku": "MG-0042", "title": "Enamel mug, 350 ml", "qty": 2, "price": 12.5},
            {"sku": "TS-1180", "title": "T-shirt \"Ferris\" (M)", "qty": 1, "price": 21.0},
            {"sku": "ST-0007", "title": "Sticker pack", "qty": 3, "price": 4.99},
            {"sku": "NB-0311", "title": "Dotted notebook A5, 120 pages", "qty": 1, "price": 14.9},
            {"sku": "PN-0099", "title": "Gel pen, blue, 0.5 mm (pack of 3)", "qty": 2, "price": 6.45},
        ],
        "cart_total": 140.62,
        "shipping_estimate": {"method": "colissimo", "days": [2, 4], "price": 5.9},
        "last_search": "flask session cookie size",
        "referrer": "https://shop.example.com/blog/gift-guide",
        "_flashes": [("message", "Your basket was updated.")],
    }


def session_4k() -> dict:
    """The 1 KiB shopper plus browsing/search history, orders, A/B buckets, checkout."""
    data = session_1k()
    data["recently_viewed"] = [
        {"sku": f"PR-{1000 + 37 * i}", "title": f"Product {name}", "price": round(3.5 + 7.25 * i, 2),
         "viewed_at": 1700000000 + 613 * i}
        for i, name in enumerate([
            "Aurora desk lamp", "Basalt coaster set", "Cedar notebook", "Dune throw pillow",
            "Ember candle", "Fjord water bottle", "Granite bookends", "Harbor tote bag",
            "Indigo scarf", "Juniper soap", "Kelp face mask", "Lumen night light",
            "Moss terrarium", "Nimbus umbrella", "Onyx pen", "Pine incense",
            "Quartz paperweight", "Rattan basket", "Sage tea blend", "Tidal wall print",
            "Umber leather wallet", "Velvet cushion cover", "Willow plant pot",
            "Yarrow herbal balm",
        ])
    ]
    data["checkout"] = {
        "step": 2,
        "shipping": {"name": "Alice Martin", "street": "12 rue des Lilas", "city": "Lyon",
                     "postcode": "69003", "country": "FR", "phone": "+33 6 12 34 56 78"},
        "billing_same": True,
        "coupon": "WELCOME10",
        "notes": "Please leave the parcel with the concierge if I am not at home.",
    }
    data["ab_tests"] = {f"exp_{i:02d}": ("A" if i % 3 else "B") for i in range(18)}
    data["search_history"] = [
        "ceramic mug", "rust book", "desk lamp warm light", "notebook dotted a5",
        "gift ideas under 30", "stickers programming", "t-shirt ferris crab",
        "linen napkins", "blue gel pen",
    ]
    data["recent_orders"] = [
        {"order": f"FR-2024-{5810 + 13 * i:06d}", "total": round(19.99 + 23.4 * i, 2),
         "status": status, "items": 1 + i % 4}
        for i, status in enumerate(["delivered", "returned", "shipped"])
    ]
    return data


def median_ns(stmt, number: int) -> float:
    runs = timeit.repeat(stmt, number=number, repeat=REPEATS)
    return statistics.median(runs) / number * 1e9


def calibrate(stmt) -> int:
    """Iterations per repeat so that one repeat takes ~TARGET_SECONDS_PER_REPEAT."""
    number, elapsed = 1, 0.0
    while True:
        elapsed = timeit.timeit(stmt, number=number)
        if elapsed >= 0.02:
            break
        number *= 10
    return max(1, int(number * TARGET_SECONDS_PER_REPEAT / elapsed))


def main() -> int:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "bench-secret-key"
    max_age = int(app.permanent_session_lifetime.total_seconds())
    # Flask's key derivation: HMAC-SHA1(secret_key, salt) with salt "cookie-session".
    derived_key = hmac.new(b"bench-secret-key", b"cookie-session", hashlib.sha1).digest()
    # Keyed once, so that the floor is hashing the JSON alone.
    keyed = hmac.new(derived_key, digestmod=hashlib.sha1)

    results = []
    # An app context is required: without it Flask's JSON helpers skip the
    # app's provider and would not sort keys, i.e. not write what Flask sends.
    with app.app_context():
        signer = app.session_interface.get_signing_serializer(app)
        tagged = app.session_interface.serializer
        for label, data in (("100B", session_100b()), ("1KiB", session_1k()), ("4KiB", session_4k())):
            json_bytes = tagged.dumps(data).encode("utf-8")
            cookie = signer.dumps(data)
            assert signer.loads(cookie, max_age=max_age) == data

            encode = lambda: signer.dumps(data)  # noqa: E731
            decode = lambda: signer.loads(cookie, max_age=max_age)  # noqa: E731
            mac_keyed_per_call = lambda: hmac.new(derived_key, json_bytes, hashlib.sha1).digest()  # noqa: E731

            def mac():
                m = keyed.copy()
                m.update(json_bytes)
                return m.digest()

            results.append({
                "size": label,
                "json_bytes": len(json_bytes),
                "cookie_bytes": len(cookie),
                "compressed": cookie.startswith("."),
                "encode_ns": round(median_ns(encode, calibrate(encode))),
                "decode_ns": round(median_ns(decode, calibrate(decode))),
                "hmac_ns": round(median_ns(mac, calibrate(mac))),
                "hmac_keyed_per_call_ns": round(median_ns(mac_keyed_per_call, calibrate(mac_keyed_per_call))),
            })

    json.dump({
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "flask": version("flask"),
        "itsdangerous": version("itsdangerous"),
        "repeats": REPEATS,
        "statistic": "median ns per operation",
        "results": results,
    }, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
