#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (a Python venv with Flask, Debian's redis-server; PostgreSQL if missing),
# starts throwaway Redis and PostgreSQL servers on 127.0.0.1, then runs
# formatting, lints, docs and every test (unit, layer, CLI, demo, every store,
# and interop against real Flask). The servers are stopped at the end.
#
#   scripts/test.sh
#
# Needs cargo (rustup) and python3 with venv; everything else is fetched from
# crates.io and PyPI on the first run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

step() { printf '\n==> %s\n' "$*"; }

# A clean CI checkout builds everything once: incremental caches and full
# debug info would only cost time and disk there (backtraces keep their lines).
if [[ "${CI:-}" == "true" ]]; then
    export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=line-tables-only
fi

for tool in cargo python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "test.sh: '$tool' is required but not installed" >&2
        exit 1
    fi
done

# A whole run writes about 6 GiB in the checkout (the builds under target/
# and fuzz/target/, the venv); on a disk with less free, a build fails
# half-way with the linker's or cargo's own "No space left on device", which
# the warning below explains up front.
step "free disk space (a whole run needs about 6 GiB)"
free_kib="$(df -Pk . | awk 'NR == 2 { print $4 }')"
echo "$((free_kib / 1024)) MiB free where the builds go ($(pwd))"
if (( free_kib < 7 * 1024 * 1024 )); then
    echo "test.sh: warning: less than 7 GiB free; the builds may fail with 'No space left on device'" >&2
fi

step "Python venv with Flask for the interop tests"
python="$(scripts/setup-python.sh)"
"$python" -c 'import importlib.metadata as m; print("Flask", m.version("flask"), "/ itsdangerous", m.version("itsdangerous"))'

step "Cargo.lock against the workspace's rust-version"
cargo metadata --format-version 1 --locked | python3 scripts/check-rust-version.py

step "the profile report's grouping of samples (scripts/profile-report.py --self-test)"
python3 scripts/profile-report.py --self-test

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

step "Redis and PostgreSQL on loopback for the store tests"
services_dir=""
trap '[[ -z "$services_dir" ]] || scripts/services.sh stop "$services_dir"' EXIT
start_services || { echo "test.sh: the servers did not start (why: above)" >&2; exit 1; }

step "Chromium and chromedriver for the browser tests (Debian's chromium, chromium-driver)"
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    apt_install test.sh chromium chromium-driver
fi
/usr/bin/chromedriver --version

step "cargo test (all features)"
cargo test --workspace --all-features

step "soak: the demo under load, 15 s per mode (scripts/soak.sh; reuses the Redis above)"
scripts/soak.sh 15

step "fuzz: 10 s per libFuzzer target (scripts/fuzz.sh; longer runs: scripts/fuzz.sh 300)"
scripts/fuzz.sh 10

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

step "all checks passed"
