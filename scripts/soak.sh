#!/usr/bin/env bash
# Soak test: the demo (release build) under sustained load at saturation, in
# cookie, sqlite and redis modes one after the other, watching for errors and
# for leaks of memory or file descriptors.
#
#   scripts/soak.sh [SECONDS] [--markdown]   # SECONDS of load per mode (default 600)
#
# For each mode the demo listens on 127.0.0.1 (sqlite: a temp file; redis:
# TESSERA_TEST_REDIS_URL if set, as in scripts/test.sh, else its own server
# from scripts/services.sh, under a key prefix of its own) and wrk (2 threads,
# 32 connections; Debian's wrk, installed if missing) drives real session
# routes with a Lua script: each thread keeps 49 clients, each carrying its
# session cookie, that count visits (POST /visits), add to their cart
# (POST /cart) and read their session (GET /api/session); new clients keep
# arriving, logging in (POST /login, which gives the session a fresh id; a
# 302 to / with the new cookie, which replaces the oldest client's) and
# visiting for the first time (POST /visits without a cookie, a new session).
#
# Counted in Lua's response(): every answer must be a 2xx, or the 302 to /
# with a session cookie that /login answers; anything else is an error, as
# is any socket error (wrk's timeout is 10 s). The demo's resident memory
# (VmRSS) and open file descriptors are sampled every few seconds; "start"
# is the first sample after the warm-up (a tenth of the run, 3 to 60 s),
# "end" the last one before the load stops.
#
# Fails (exit 1) on any error, if the demo dies, if RSS grows from start to
# end by more than 20% and more than 10 MiB, or if the descriptors grow by
# more than 16 (SQLite's pool may open a few more connections later, 3
# descriptors each). Prints a table; with --markdown also rewrites the soak
# section of BENCHMARKS.md (between its markers, appended if missing; the
# rest of the file is left byte for byte).
set -euo pipefail

seconds=600
markdown=0
for arg in "$@"; do
    case "$arg" in
        --markdown) markdown=1 ;;
        ''|*[!0-9]*) echo "usage: scripts/soak.sh [SECONDS] [--markdown]" >&2; exit 2 ;;
        *) seconds="$arg" ;;
    esac
done
if (( seconds < 5 )); then
    echo "soak: at least 5 seconds per mode" >&2
    exit 2
fi
warmup=$(( seconds / 10 ))
(( warmup < 3 )) && warmup=3
(( warmup > 60 )) && warmup=60
interval=5
(( seconds < 60 )) && interval=1
# Bounds on growth from the first sample after the warm-up to the last.
rss_growth_percent=20
rss_growth_kib=$(( 10 * 1024 ))
fd_growth=16

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"
source scripts/demo-port.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-soak.XXXXXX")"
demo_pid=""
wrk_pid=""
services_dir=""
cleanup() {
    [[ -n "$wrk_pid" ]] && kill "$wrk_pid" 2>/dev/null || true
    if [[ -n "$demo_pid" ]]; then
        kill "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
    fi
    [[ -n "$services_dir" ]] && scripts/services.sh stop "$services_dir" >/dev/null 2>&1 || true
    rm -rf "$work"
}
log() { echo "soak: $*" >&2; }
trap cleanup EXIT
trap 'log "stopped by a signal"; exit 1' INT TERM HUP
set -E
trap 'log "failed: line $LINENO: $BASH_COMMAND"' ERR

if ! command -v wrk >/dev/null 2>&1; then
    apt_install soak wrk
fi

redis_url="${TESSERA_TEST_REDIS_URL:-}"
if [[ -z "$redis_url" ]]; then
    log "starting Redis (scripts/services.sh)"
    exports="$(scripts/services.sh start)"
    services_dir="$(sed -n "s/^export TESSERA_SERVICES_DIR='\(.*\)'$/\1/p" <<< "$exports")"
    redis_url="$(sed -n "s/^export TESSERA_TEST_REDIS_URL='\(.*\)'$/\1/p" <<< "$exports")"
fi

log "building the demo (release)"
cargo build -q --release -p tessera-demo
# Where cargo put it: CARGO_TARGET_DIR, if set (relative to here, as cargo reads it).
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
demo="$target_dir/release/tessera-demo"

cat > "$work/soak.lua" <<'LUA'
-- Clients carrying their session cookies; see scripts/soak.sh.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("thread_id", #threads)
end

local POOL = 49 -- prime to 3 and 20: every client gets every kind of request
local pool, oldest, n = {}, 1, 0
local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }

-- Read by done() through thread:get.
sent, ok, redirects, errors, logins, fresh = 0, 0, 0, 0, 0, 0
codes = {}

function request()
    n = n + 1
    sent = sent + 1
    if #pool < POOL or n % 20 == 0 then
        logins = logins + 1
        return wrk.format("POST", "/login", form, "username=soak-" .. thread_id .. "-" .. n)
    end
    if n % 20 == 10 then
        fresh = fresh + 1
        return wrk.format("POST", "/visits")
    end
    local cookie = pool[n % POOL + 1]
    local kind = n % 3
    if kind == 0 then
        return wrk.format("POST", "/visits", { Cookie = cookie })
    elseif kind == 1 then
        return wrk.format("POST", "/cart",
            { Cookie = cookie, ["Content-Type"] = form["Content-Type"] }, "item=i" .. n)
    end
    return wrk.format("GET", "/api/session", { Cookie = cookie })
end

local function header(headers, name)
    for key, value in pairs(headers) do
        if key:lower() == name then return value end
    end
end

function response(status, headers, body)
    if status >= 200 and status < 300 then
        ok = ok + 1
        return
    end
    local cookie = (header(headers, "set-cookie") or ""):match("^(session=[^;]+)")
    if status == 302 and header(headers, "location") == "/" and cookie then
        -- Only /login redirects: a new client, who replaces the oldest.
        redirects = redirects + 1
        if #pool < POOL then
            table.insert(pool, cookie)
        else
            pool[oldest] = cookie
            oldest = oldest % POOL + 1
        end
        return
    end
    errors = errors + 1
    codes[tostring(status)] = (codes[tostring(status)] or 0) + 1
end

function done(summary, latency, requests)
    local total = { sent = 0, ok = 0, redirects = 0, errors = 0, logins = 0, fresh = 0 }
    local all_codes = {}
    for _, thread in ipairs(threads) do
        for name in pairs(total) do
            total[name] = total[name] + thread:get(name)
        end
        for code, count in pairs(thread:get("codes")) do
            all_codes[code] = (all_codes[code] or 0) + count
        end
    end
    local listed = {}
    for code, count in pairs(all_codes) do
        table.insert(listed, code .. ":" .. count)
    end
    local e = summary.errors
    io.write(string.format(
        "SOAK responses=%d sent=%d ok=%d redirects=%d errors=%d logins=%d fresh=%d "
            .. "socket_errors=%d p99_ms=%.2f codes=%s\n",
        summary.requests, total.sent, total.ok, total.redirects, total.errors, total.logins,
        total.fresh, e.connect + e.read + e.write + e.timeout,
        latency:percentile(99) / 1000, #listed > 0 and table.concat(listed, ",") or "-"))
end
LUA

sample() { # pid -> "rss_kib fds", or nothing if the process is gone
    local rss fds
    rss="$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" || return 0
    fds="$(ls "/proc/$1/fd" 2>/dev/null | wc -l)" || return 0
    [[ -n "$rss" ]] && echo "$rss $fds"
}

run_mode() { # mode
    local mode="$1" dir="$work/$1" port="" env
    mkdir -p "$dir"
    env=(SECRET_KEY="soak-secret-key-0123456789abcdef0123456789" RUST_LOG=warn SESSION_TYPE="$mode")
    case "$mode" in
        sqlite) env+=(SESSION_STORE_URL="sqlite://$dir/sessions.db") ;;
        redis) env+=(SESSION_STORE_URL="$redis_url" SESSION_KEY_PREFIX="soak-$$-$(date +%s):") ;;
    esac
    (cd "$dir" && exec env "${env[@]}" "$demo" --host 127.0.0.1 --port 0 > "$dir/out" 2> "$dir/err") &
    demo_pid=$!
    if ! port="$(demo_port "$demo_pid" "$dir/out" "$dir/err")"; then
        log "$mode: the demo did not start"; return 1
    fi
    log "$mode: $seconds s of load on port $port (warm-up $warmup s, samples every $interval s)"

    wrk -t2 -c32 -d"${seconds}s" --timeout 10s -s "$work/soak.lua" "http://127.0.0.1:$port" \
        > "$dir/wrk.txt" 2>&1 &
    wrk_pid=$!
    local begin now
    begin="$(date +%s)"
    : > "$dir/samples.txt"
    while kill -0 "$wrk_pid" 2>/dev/null; do
        now="$(date +%s)"
        echo "$(( now - begin )) $(sample "$demo_pid")" >> "$dir/samples.txt"
        sleep "$interval"
    done
    wait "$wrk_pid" || true
    wrk_pid=""
    if kill -0 "$demo_pid" 2>/dev/null; then
        echo alive > "$dir/alive"
        kill "$demo_pid"
    else
        echo dead > "$dir/alive"
    fi
    wait "$demo_pid" 2>/dev/null || true
    demo_pid=""
}

for mode in cookie sqlite redis; do
    run_mode "$mode"
done

SOAK_SECONDS="$seconds" SOAK_WARMUP="$warmup" SOAK_INTERVAL="$interval" \
SOAK_RSS_PERCENT="$rss_growth_percent" SOAK_RSS_KIB="$rss_growth_kib" SOAK_FDS="$fd_growth" \
SOAK_MARKDOWN="$markdown" \
SOAK_CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
SOAK_CORES="$(nproc)" SOAK_DATE="$(date -u +%Y-%m-%d)" \
SOAK_REDIS="$(redis-server --version 2>/dev/null | sed -n 's/.*v=\([^ ]*\).*/\1/p')" \
python3 - "$work" "$repo_root/BENCHMARKS.md" <<'PYTHON'
import os, re, sys
from pathlib import Path

work, target = Path(sys.argv[1]), Path(sys.argv[2])
env = os.environ
seconds, warmup = int(env["SOAK_SECONDS"]), int(env["SOAK_WARMUP"])
rss_percent, rss_kib, fd_bound = int(env["SOAK_RSS_PERCENT"]), int(env["SOAK_RSS_KIB"]), int(env["SOAK_FDS"])
modes = ["cookie", "sqlite", "redis"]

rows, failures = [], []
for mode in modes:
    d = work / mode
    text = (d / "wrk.txt").read_text(errors="replace")
    stats = re.search(r"^SOAK (.*)$", text, re.M)
    if not stats:
        failures.append(f"{mode}: wrk gave no results:\n{text}")
        continue
    s = dict(kv.split("=", 1) for kv in stats.group(1).split())
    samples = []
    for line in (d / "samples.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            samples.append(tuple(map(int, parts)))
    after = [x for x in samples if x[0] >= warmup]
    if len(after) < 2:
        failures.append(f"{mode}: fewer than two samples after the warm-up: {samples}")
        continue
    start, end = after[0], after[-1]
    peak = max(x[1] for x in after)
    responses = int(s["responses"])
    errors = int(s["errors"])
    socket_errors = int(s["socket_errors"])
    growth = end[1] - start[1]
    row = dict(mode=mode, responses=responses, rps=responses / seconds, p99=float(s["p99_ms"]),
               logins_302=int(s["redirects"]), errors=errors, socket=socket_errors,
               codes=s["codes"], rss0=start[1], rss1=end[1], peak=peak, fd0=start[2], fd1=end[2],
               samples=len(after))
    rows.append(row)
    if errors:
        failures.append(f"{mode}: {errors} responses neither 2xx nor a login's 302 (status:count {s['codes']})")
    if int(s["redirects"]) > int(s["logins"]):
        failures.append(f"{mode}: {s['redirects']} redirects for {s['logins']} logins")
    if int(s["ok"]) + int(s["redirects"]) + errors != responses:
        failures.append(f"{mode}: Lua counted {s['ok']} + {s['redirects']} + {errors} of {responses} responses")
    if socket_errors:
        failures.append(f"{mode}: {socket_errors} socket errors:\n{text}")
    if responses == 0:
        failures.append(f"{mode}: no responses")
    if (d / "alive").read_text().strip() != "alive":
        failures.append(f"{mode}: the demo died: {(d / 'err').read_text(errors='replace')[-2000:]}")
    if growth > rss_kib and growth * 100 > start[1] * rss_percent:
        failures.append(f"{mode}: RSS grew from {start[1]} KiB to {end[1]} KiB after the warm-up")
    if end[2] - start[2] > fd_bound:
        failures.append(f"{mode}: open descriptors grew from {start[2]} to {end[2]}")

mib = lambda kib: f"{kib / 1024:.1f}"
header = ("| mode | requests | req/s | p99 ms | logins (`302`) | other non-2xx | socket errors | "
          "RSS start MiB | RSS end MiB | RSS peak MiB | fds start | fds end |")
table = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    table.append(f"| {r['mode']} | {r['responses']:,} | {r['rps']:,.0f} | {r['p99']:.2f} | "
                 f"{r['logins_302']:,} | {r['errors']} | {r['socket']} | {mib(r['rss0'])} | "
                 f"{mib(r['rss1'])} | {mib(r['peak'])} | {r['fd0']} | {r['fd1']} |")
verdict = "passed" if not failures else "FAILED"
print("\n".join(table))
print(f"\nsoak: {verdict} ({seconds} s per mode; start = first sample after the {warmup} s warm-up)")
for failure in failures:
    print(f"soak: FAIL: {failure}", file=sys.stderr)

if env["SOAK_MARKDOWN"] == "1":
    out = [
        "<!-- soak:begin -->",
        "## Soak",
        "",
        f"Generated by `scripts/soak.sh {seconds} --markdown` on {env['SOAK_DATE']}: {env['SOAK_CPU_MODEL']}, "
        f"{env['SOAK_CORES']} cores shared by the demo (release build), wrk and the store "
        f"(Redis {env['SOAK_REDIS']} with `appendfsync always`), all on loopback. "
        f"{seconds} s of load per mode at saturation (wrk, 2 threads, 32 connections): clients carrying "
        "their session cookies count visits (`POST /visits`), add to their cart (`POST /cart`) and read "
        "their session (`GET /api/session`), while new clients log in (`POST /login`, a `302` to `/` "
        "with a fresh session id) and new visitors arrive without a cookie.",
        "",
        *table,
        "",
        f"Other non-2xx: answers other than a 2xx or the `302` to `/` with a session cookie that "
        f"`/login` gives. Memory (`VmRSS`) and "
        f"descriptors (`/proc/PID/fd`) sampled every {env['SOAK_INTERVAL']} s; start is the first sample "
        f"after a {warmup} s warm-up, end the last one under load. The run fails on any other non-2xx or socket error, or if RSS "
        f"grows by more than {rss_percent}% and {rss_kib // 1024} MiB, or the descriptors by more than "
        f"{fd_bound}. Result: **{verdict}**.",
        "<!-- soak:end -->",
    ]
    section = "\n".join(out).encode()
    data = target.read_bytes() if target.exists() else b"# Benchmarks\n"
    begin, end = data.find(b"<!-- soak:begin -->"), data.find(b"<!-- soak:end -->")
    if begin != -1 and end > begin:
        data = data[:begin] + section + data[end + len(b"<!-- soak:end -->"):]
    else:
        data += (b"\n" if data.endswith(b"\n") else b"\n\n") + section + b"\n"
    target.write_bytes(data)
    print("soak: wrote the soak section of BENCHMARKS.md", file=sys.stderr)

sys.exit(1 if failures else 0)
PYTHON
