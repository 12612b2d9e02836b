#!/usr/bin/env python3
"""Fails if a package of Cargo.lock declares a newer Rust than the workspace's
`rust-version` (what the README promises), naming the packages.

    cargo metadata --format-version 1 --locked | scripts/check-rust-version.py
"""
import json
import sys


def version(text):
    """(major, minor, patch): "1.89" is 1.89.0."""
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


metadata = json.load(sys.stdin)
members = set(metadata["workspace_members"])
packages = metadata["packages"]
floors = {p["rust_version"] for p in packages if p["id"] in members and p.get("rust_version")}
if len(floors) != 1:
    sys.exit(f"check-rust-version: the workspace members declare {sorted(floors)}, not one rust-version")
floor = floors.pop()
above = sorted(
    f"{p['name']} {p['version']} (Rust {p['rust_version']})"
    for p in packages
    if p["id"] not in members and p.get("rust_version") and version(p["rust_version"]) > version(floor)
)
if above:
    sys.exit(
        f"check-rust-version: Cargo.lock holds packages that need a newer Rust than the workspace's "
        f"rust-version {floor}: " + ", ".join(above)
    )
print(f"every locked package builds with Rust {floor}, the workspace's rust-version")
