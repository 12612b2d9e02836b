#!/usr/bin/env bash
# Where the time goes in the benchmarks whose targets tessera misses,
# profiled on this machine; rewrites the "Profiles" section of BENCHMARKS.md
# (between its markers), leaving the rest as it is:
#
#   scripts/profile.sh            # about 5 minutes, once built
#   TESSERA_PROFILE_SECONDS=4 scripts/profile.sh   # shorter runs
#
# 1. The cookie target. `bench-server` (the `bench` member's, the servers of
#    `tessera-bench http`) as bare axum, as bare axum with a session's headers
#    and as tessera's cookie sessions, each loaded by wrk as `tessera-bench
#    http` loads it (1 thread, 16 connections, the cookie of one session)
#    while `perf record` samples the server, in two rounds (A B C, C B A). The samples are grouped by what
#    they ran (the kernel, the crate or tessera's module, malloc) and turned
#    into microseconds per request with the server's CPU time from /proc.
# 2. The decode target. `perf record` of criterion running `decode/100B` of
#    `cargo bench -p tessera --bench codec` (`--profile-time`), grouped the
#    same way, and a short timing of it against the HMAC floor.
# 3. Flame graphs (bench/flamegraphs/*.svg, rewritten; the directory
#    TESSERA_FLAMEGRAPH_DIR names instead, if set, as scripts/bench.sh's
#    quick run sets it): bare axum and tessera's cookie sessions under wrk,
#    one request through the layer in process (`cargo bench --bench
#    layer`) and decode/100B, each recorded again with call stacks (`perf
#    record --call-graph dwarf`, a few seconds) and drawn by `tessera-bench
#    flamegraph`. Where the flat profiles say which functions cost, these
#    show who called them.
# 4. The Redis store against tower-sessions'. Both servers under wrk again,
#    on a Redis started for the purpose (scripts/services.sh), with the
#    server's own counts (`INFO commandstats`, `INFO cpu`): the commands a
#    request makes and the Redis time each takes.
#
# Needs wrk, curl and python3, and perf (Debian's linux-perf) for the first
# three parts; installs the missing ones as root. Where perf cannot record
# (not installable, or a container that forbids it), the section says so in
# place of the first two parts, draws no flame graphs, and the Redis part
# still runs. Code inlined into a function counts as that function's: the
# groups say where the time is, not every callee.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

seconds="${TESSERA_PROFILE_SECONDS:-8}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "profile: TESSERA_PROFILE_SECONDS must be a whole number of seconds from 1" >&2
    exit 1
fi
log() { echo "profile: $*" >&2; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
packages=()
command -v wrk >/dev/null 2>&1 || packages+=(wrk)
command -v curl >/dev/null 2>&1 || packages+=(curl)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
if (( ${#packages[@]} )); then
    apt_install profile "${packages[@]}"
fi
if ! command -v perf >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    apt_install profile linux-perf || true
fi

work="$(mktemp -d)"
services_dir=""
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    [[ -n "$services_dir" ]] && scripts/services.sh stop "$services_dir" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# Whether perf can sample here, kernel included; if not, why not.
perf_error=""
paranoid="$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)"
if ! command -v perf >/dev/null 2>&1; then
    perf_error="perf is not installed (Debian's linux-perf)"
elif [[ $(id -u) -ne 0 && "$paranoid" -gt 1 ]]; then
    perf_error="kernel.perf_event_paranoid is $paranoid: kernel samples need root, or 1 or less"
elif ! perf record -q -o "$work/probe.perf" -- true >"$work/probe.log" 2>&1; then
    perf_error="perf record failed: $(head -c 300 "$work/probe.log" | tr '\n' ' ')"
fi
[[ -n "$perf_error" ]] && log "no perf profiles: $perf_error"

log "building bench-server, tessera-bench and the codec and layer benchmarks (release)"
cargo build -q --release -p tessera-bench
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
server_bin="$target_dir/release/bench-server"
bench_bin="$target_dir/release/tessera-bench"
# The executable of one of tessera's criterion benchmarks, built if needed.
bench_executable() {
    local name="$1" executable
    executable="$(cargo bench -q -p tessera --bench "$name" --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$name")"
    [[ -x "$executable" ]] || { log "cannot find the $name benchmark's executable"; exit 1; }
    echo "$executable"
}
codec_bin="$(bench_executable codec)"
layer_bin="$(bench_executable layer)"
# The flame graphs' recordings: short, as unwinding every sample's stack
# (`--call-graph dwarf`) makes big files and a slow `perf script`.
stack_seconds=$(( seconds < 3 ? seconds : 3 ))
stack_options=(-e cpu-clock --call-graph dwarf,16384 -F 499)
stack_record=(perf record -q "${stack_options[@]}")
# Relative to the repository, as BENCHMARKS.md links to it.
flame_dir="${TESSERA_FLAMEGRAPH_DIR:-bench/flamegraphs}"
flame_dir="${flame_dir%/}"
flamegraphs=()

# CPU time of a process (user + system, clock ticks, all its threads).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# Loads one server: NAME MODE [extra bench-server arguments...], MODE `perf`,
# `stacks` (perf with call stacks, for a flame graph) or `redis`. Writes
# OUT.wrk and OUT.cpu (seconds of server CPU) and, for perf and stacks,
# OUT.perf, for redis, Redis' counts over the same seconds (OUT.redis,
# OUT.rcpu0, OUT.rcpu1); OUT is $out if set, else NAME.
load() {
    local name="$1" mode="$2"
    local file="${out:-$1}"
    local seconds="$seconds"
    [[ "$mode" == stacks ]] && seconds="$stack_seconds"
    shift 2
    local port
    port="$(free_port)"
    "$server_bin" --server "$name" --port "$port" "$@" >"$work/$name.server.log" 2>&1 &
    server_pid=$!
    local up=""
    for _ in $(seq 100); do
        if curl -sf -o /dev/null "http://127.0.0.1:$port/"; then up=1; break; fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$up" ]]; then
        log "bench-server --server $name did not answer: $(cat "$work/$name.server.log")"
        exit 1
    fi
    # One session for every connection, made by one request, as tessera-bench does.
    local cookie
    cookie="$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/" \
        | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)"
    local header=()
    [[ -n "$cookie" ]] && header=(-H "Cookie: $cookie")
    wrk -t1 -c16 -d2s "${header[@]}" "http://127.0.0.1:$port/" >/dev/null # warm-up
    local before after perf_pid=""
    if [[ "$mode" == redis ]]; then
        "${redis_cli[@]}" config resetstat >/dev/null
        "${redis_cli[@]}" info cpu >"$work/$file.rcpu0"
    fi
    before="$(cpu_ticks "$server_pid")"
    if [[ "$mode" == perf || "$mode" == stacks ]]; then
        local record=(perf record -q -F 999)
        [[ "$mode" == stacks ]] && record=("${stack_record[@]}")
        "${record[@]}" -p "$server_pid" -o "$work/$file.perf" -- sleep "$seconds" \
            >"$work/$file.perf.log" 2>&1 &
        perf_pid=$!
    fi
    # In a subshell of its own, whose `times` then gives wrk's CPU time.
    (
        wrk -t1 -c16 -d"${seconds}s" "${header[@]}" "http://127.0.0.1:$port/" >"$work/$file.wrk"
        times >"$work/$file.times"
    )
    if [[ -n "$perf_pid" ]]; then wait "$perf_pid"; fi
    after="$(cpu_ticks "$server_pid")"
    if [[ "$mode" == redis ]]; then
        "${redis_cli[@]}" info cpu >"$work/$file.rcpu1"
        "${redis_cli[@]}" info commandstats >"$work/$file.redis"
    fi
    python3 -c "print(($after - $before) / $(getconf CLK_TCK))" >"$work/$file.cpu"
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# The flat profile: percent, object, symbol.
flat() {
    perf report -q -i "$1" --stdio --no-children --sort dso,sym --percent-limit 0 2>/dev/null >"$1.txt"
}

# 1. The cookie target: two rounds, A B C then C B A, averaged.
cookie_targets=(axum-bare axum-headers tessera-cookie)
for round in 1 2; do
    [[ -n "$perf_error" ]] && break
    order=("${cookie_targets[@]}")
    ((round == 2)) && order=("${cookie_targets[2]}" "${cookie_targets[1]}" "${cookie_targets[0]}")
    for name in "${order[@]}"; do
        log "the cookie target, round $round of 2: $name under wrk with perf, ${seconds} s"
        out="cookie-$name-$round"
        load "$name" perf
        flat "$work/$out.perf"
    done
done
unset out

# 2. Decoding a 100 B cookie: where its time goes, and how long it takes
# against the floor (criterion, the figures of scripts/bench-codec.sh's
# setting of malloc).
malloc_kept="glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=16777216"
[[ -z "$perf_error" ]] && (
    log "decode/100B under perf (criterion --profile-time ${seconds})"
    cd tessera
    GLIBC_TUNABLES="$malloc_kept" CRITERION_HOME="$work/criterion" \
        perf record -q -F 4999 -o "$work/decode.perf" -- \
        "$codec_bin" --bench '^decode/100B$' --profile-time "$seconds" >"$work/decode.perf.log" 2>&1
    log "decode/100B and hmac_sha1/100B timed (criterion)"
    GLIBC_TUNABLES="$malloc_kept" CRITERION_HOME="$work/criterion" \
        "$codec_bin" --bench '^(decode|hmac_sha1)/100B$' --warm-up-time 1 --measurement-time 3 \
        >"$work/decode.time.log" 2>&1
)
[[ -z "$perf_error" ]] && flat "$work/decode.perf"

# 3. Flame graphs: FILE.perf (recorded with call stacks) drawn into
# $work/flames/NAME.svg, titled TITLE, and moved to $flame_dir with the
# report, so that a run that fails before it leaves the committed ones. A
# graph that cannot be drawn is reported and left out; the profiles above
# do not depend on it.
flame() {
    local recording="$1" name="$2" title="$3"
    if perf script --no-inline -i "$recording" >"$recording.txt" 2>"$recording.script.log" \
        && "$bench_bin" flamegraph --title "$title" \
            --subtitle "scripts/profile.sh, $(date -u +%Y-%m-%d), $(nproc) cores; width: CPU time (cpu-clock samples)" \
            "$recording.txt" "$work/flames/$name.svg" 2>"$recording.flame.log"; then
        flamegraphs+=("$name.svg")
    else
        log "no flame graph for $name: $(cat "$recording.script.log" "$recording.flame.log" 2>/dev/null | head -c 300)"
    fi
    rm -f "$recording.txt"
}

if [[ -z "$perf_error" ]]; then
    mkdir -p "$work/flames"
    for name in axum-bare tessera-cookie; do
        log "flame graph: $name under wrk, ${stack_seconds} s with call stacks"
        out="stacks-$name"
        load "$name" stacks
        flame "$work/$out.perf" "$name" "$name under wrk: the server's CPU, by call stack"
    done
    unset out
    log "flame graph: one request through the layer in process, ${stack_seconds} s"
    (
        cd tessera
        CRITERION_HOME="$work/criterion" "${stack_record[@]}" -o "$work/stacks-layer.perf" -- \
            "$layer_bin" --bench '^request/tessera_cookie_increment$' --profile-time "$stack_seconds" \
            >"$work/stacks-layer.log" 2>&1
    )
    flame "$work/stacks-layer.perf" layer-tessera-cookie-increment \
        "request/tessera_cookie_increment: one request through the layer, in process"
    log "flame graph: decode/100B, ${stack_seconds} s"
    (
        cd tessera
        GLIBC_TUNABLES="$malloc_kept" CRITERION_HOME="$work/criterion" \
            "${stack_record[@]}" -o "$work/stacks-decode.perf" -- \
            "$codec_bin" --bench '^decode/100B$' --profile-time "$stack_seconds" \
            >"$work/stacks-decode.log" 2>&1
    )
    flame "$work/stacks-decode.perf" decode-100B "decode/100B: decoding a 100 B cookie"
fi

# 4. Redis: commands and their Redis time per request.
TESSERA_REDIS_PERSISTENCE=default start_services
redis_host_port="${TESSERA_TEST_REDIS_URL#redis://}"
redis_host_port="${redis_host_port%%/*}"
redis_cli=(redis-cli -h "${redis_host_port%:*}" -p "${redis_host_port##*:}")
# Two runs each, A B B A; their counts are added up.
for name in tower-redis tessera-redis tessera-redis tower-redis; do
    out="redis-$name-1"
    [[ -s "$work/$out.redis" ]] && out="redis-$name-2"
    log "Redis: $name under wrk, ${seconds} s"
    load "$name" redis --store-url "$TESSERA_TEST_REDIS_URL" --key-prefix "profile:$out:"
done
unset out

BENCH_CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
BENCH_CORES="$(nproc)" BENCH_DATE="$(date -u +%Y-%m-%d)" BENCH_SECONDS="$seconds" \
BENCH_PERF="$(perf version 2>/dev/null || echo "no perf")" BENCH_PERF_ERROR="$perf_error" \
BENCH_FLAMEGRAPHS="${flamegraphs[*]}" BENCH_FLAMEGRAPH_DIR="$flame_dir" \
BENCH_STACK_RECORD="perf record ${stack_options[*]}" BENCH_STACK_SECONDS="$stack_seconds" \
BENCH_REDIS="$("${redis_cli[@]}" info server | sed -n 's/^redis_version:\(.*\)\r*$/\1/p' | tr -d '\r')" \
python3 "$script_dir/profile-report.py" "$work" "$repo_root/BENCHMARKS.md"
if (( ${#flamegraphs[@]} )); then
    mkdir -p "$flame_dir"
    for name in "${flamegraphs[@]}"; do
        mv "$work/flames/$name" "$flame_dir/$name"
    done
    log "wrote ${#flamegraphs[@]} flame graphs to $flame_dir/"
fi
