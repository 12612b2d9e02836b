#!/usr/bin/env bash
# Every benchmark, in one run, rewriting BENCHMARKS.md:
#
#   scripts/bench.sh          # 50 to 60 minutes on 2 cores, once built
#   TESSERA_BENCH_QUICK=1 scripts/bench.sh   # smaller sizes and one short round, for a try
#
# A quick run's report goes to BENCHMARKS.quick.md and BENCHMARKS.md is left
# as it was: one round of 3 s is no measure of the targets. A run that fails
# or is stopped part-way (quick or not) puts BENCHMARKS.md back as it was and
# leaves what it had rewritten in BENCHMARKS.failed.md, so the file is never
# half one run and half another; a signal to the script (TERM, INT, HUP)
# also ends the step that was running and the servers it had started. From
# a fresh clone, building takes most of the time (about 35 minutes for a
# quick run on 2 busy cores). The scripts
# build into CARGO_TARGET_DIR if it is set, the repository's target/
# otherwise, and run what they built there.
#
# Needs cargo (rustup). First it installs from Debian whichever of these is
# missing (as root; apt-get, as scripts/services.sh installs its servers):
# wrk (the load generator of steps 2, 3 and 5), curl (steps 3 and 5),
# python3 with python3-venv (the venv of steps 1 and 2, the report writers,
# scripts/services.sh) and gcc (the linker, and the C some dependencies
# build).
# Then:
#
# 1. scripts/bench-codec.sh: the cookie codec against the raw HMAC-SHA1
#    floor, the `cookie` crate's signed jar with serde_json, and itsdangerous,
#    in 4 interleaved rounds (1 in a quick run; writes the top of the file and
#    keeps every marked section below).
#    Creates the Python venv if missing or stale (.venv: Flask, Flask-Session,
#    gunicorn, from PyPI) through scripts/setup-python.sh.
# 2. `tessera-bench http` (the `bench` workspace member): the same route on
#    bare axum and bare actix-web, bare axum carrying a cookie session's
#    headers (axum-headers), tessera in every SESSION_TYPE,
#    tower-sessions, actix-session, and Flask under gunicorn, interleaved;
#    then the server-side targets again with the requests taking turns
#    among 1,000 sessions (many visitors), in a section of its own.
#    scripts/services.sh installs Debian's redis-server, openssl and
#    postgresql if missing, and starts Redis and PostgreSQL for this step.
# 3. scripts/bench-store.sh: SQLite at 10k and 1M sessions (side by side, in
#    alternating rounds), its sweep, and the demo in cookie, memory and
#    sqlite modes.
# 4. scripts/bench-scale.sh: the memory store, Redis (both layouts) and
#    PostgreSQL at 10k and 1M sessions (side by side, in alternating
#    rounds), bytes per session, sweeps.
# 5. scripts/bench-distributed.sh: two demo instances on Redis and
#    PostgreSQL, round trips per request, bytes per session; it fails if a
#    counter shows a lost update.
# 6. scripts/profile.sh: perf profiles of the cookie route's server and of
#    decoding a 100 B cookie, their flame graphs (bench/flamegraphs/; a
#    quick run's go to bench/flamegraphs.quick/), and the Redis commands
#    per request beside tower-sessions' (installs Debian's linux-perf if
#    missing).
#
# Steps 2, 4, 5 and 6 start their own Redis and PostgreSQL and stop them
# afterwards. Close other work on the machine first: every figure is
# compared with a baseline measured in the same run, but a busy machine
# still widens the spread.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

step() { echo "==> $*" >&2; }

quick="${TESSERA_BENCH_QUICK:-}"
if [[ -n "$quick" ]]; then
    export TESSERA_BENCH_LARGE=100000 TESSERA_BENCH_EXPIRED=20000
    export TESSERA_BENCH_CODEC_ROUNDS="${TESSERA_BENCH_CODEC_ROUNDS:-1}"
    export TESSERA_BENCH_CODEC_SECONDS="${TESSERA_BENCH_CODEC_SECONDS:-1}"
    http_args=(--rounds 1 --duration 3)
    # Only a finished try may be found there.
    rm -f BENCHMARKS.quick.md
else
    http_args=(--rounds 4 --duration 8)
fi
rm -f BENCHMARKS.failed.md

# The steps rewrite BENCHMARKS.md in place, one section each. The file as it
# was is put back unless a full run finishes; a signal leaves $? at 0 in an
# EXIT trap, hence the flag rather than the exit status.
committed="$(mktemp)"
cp BENCHMARKS.md "$committed"
finished=""
put_back() {
    # The file first, the messages after: with the terminal or a pipe gone
    # (a closed `| tee`), writing one fails, which must not stop the rest.
    trap '' PIPE
    local message
    if [[ -z "$finished" ]]; then
        if cmp -s BENCHMARKS.md "$committed"; then
            message="the ${quick:+quick }run failed before it rewrote anything; BENCHMARKS.md is unchanged"
        else
            mv BENCHMARKS.md BENCHMARKS.failed.md
            message="the ${quick:+quick }run failed: BENCHMARKS.md is put back as it was; its partial report is in BENCHMARKS.failed.md"
        fi
        cp "$committed" BENCHMARKS.md
    elif [[ -n "$quick" ]]; then
        mv BENCHMARKS.md BENCHMARKS.quick.md
        cp "$committed" BENCHMARKS.md
        message="the quick run's report is in BENCHMARKS.quick.md; BENCHMARKS.md is unchanged"
    else
        message="BENCHMARKS.md rewritten"
    fi
    rm -f "$committed"
    step "$message" || true
}
trap put_back EXIT

# A signal to this script (a `timeout`, a CI job cancelled, Ctrl-C) ends the
# step it started too, and lets it stop the servers it started. bash runs a
# trap only once its foreground command has ended, so every step runs in
# the background and is waited for (`wait` returns at once on a signal).
# With job control on, each step is a process group of its own: a signal
# sent to this script's group (`timeout` sends one) does not reach it, and
# the trap sends it TERM once, so that its exit traps stop its servers
# without a second signal cutting them short.
set -m
step_group=""
on_signal() {
    trap '' TERM INT HUP PIPE
    if [[ -n "$step_group" ]]; then
        kill -TERM -- "-$step_group" 2>/dev/null || true
        wait || true
    fi
    step "stopped by a signal: the step that was running has ended" || true
    exit "$1"
}
trap 'on_signal 129' HUP
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
# Its output gone (a `| tee` ended): the step is ended as for a signal.
trap 'on_signal 141' PIPE
run() {
    "$@" &
    step_group=$!
    wait "$step_group"
    step_group=""
}

if ! command -v cargo >/dev/null 2>&1; then
    echo "bench: cargo is needed (rustup)" >&2
    exit 1
fi
packages=()
command -v wrk >/dev/null 2>&1 || packages+=(wrk)
command -v curl >/dev/null 2>&1 || packages+=(curl)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
# Debian's python3 makes venvs with pip only with python3-venv (ensurepip).
python3 -c 'import ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
command -v cc >/dev/null 2>&1 || packages+=(gcc)
if (( ${#packages[@]} )); then
    apt_install bench "${packages[@]}"
fi

step "cookie codec"
run scripts/bench-codec.sh

step "HTTP against the peers"
python="$(scripts/setup-python.sh)"
run cargo build -q --release -p tessera-bench
# Run by `run`, so in a subshell of its own: its exit trap is its own.
run_http() {
    services_dir=""
    trap '[[ -n "$services_dir" ]] && scripts/services.sh stop "$services_dir" >/dev/null 2>&1' EXIT
    # Redis as most deployments run it: its default persistence, no
    # append-only file synced on every write (the tests' setting).
    TESSERA_REDIS_PERSISTENCE=default start_services
    bench="$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/tessera-bench"
    "$bench" http "${http_args[@]}" \
        --redis-url "$TESSERA_TEST_REDIS_URL" --postgres-url "$TESSERA_TEST_POSTGRES_URL" \
        --python "$python" --markdown BENCHMARKS.md
    # The same route on many visitors' sessions, one request at a time each:
    # the stores' costs without one session's concurrent operations to
    # combine (the run above sends every request to one session).
    "$bench" http "${http_args[@]}" --sessions 1000 \
        --only axum-bare,tessera-memory,tower-memory,tessera-sqlite,tower-sqlite,tessera-redis,tower-redis,tessera-postgres,tower-postgres,actix-bare,tessera-actix-redis,actix-redis,flask-session-redis \
        --redis-url "$TESSERA_TEST_REDIS_URL" --postgres-url "$TESSERA_TEST_POSTGRES_URL" \
        --python "$python" --markdown BENCHMARKS.md
}
run run_http

step "SQLite store and the demo"
run scripts/bench-store.sh

step "every store at scale"
run scripts/bench-scale.sh

step "two instances on Redis and PostgreSQL"
run scripts/bench-distributed.sh

step "profiles of the missed targets"
if [[ -n "$quick" ]]; then
    run env TESSERA_PROFILE_SECONDS="${TESSERA_PROFILE_SECONDS:-2}" \
        TESSERA_FLAMEGRAPH_DIR=bench/flamegraphs.quick scripts/profile.sh
else
    run scripts/profile.sh
fi

finished=1
