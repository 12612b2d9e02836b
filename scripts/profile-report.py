"""Writes the "Profiles" section of BENCHMARKS.md from what scripts/profile.sh
collected: WORK_DIR BENCHMARKS.md (run by that script; not on its own).
`--self-test` checks how samples are grouped, as scripts/test.sh does."""

import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path


HTTP = "HTTP: hyper, http, axum, tower, bytes"
RUNTIME = "runtime: tokio, mio, futures"
GROUPS = {
    **dict.fromkeys(["sha1", "hmac", "digest", "block_buffer"], "SHA-1 and HMAC (sha1, hmac)"),
    **dict.fromkeys(["base64_simd", "vsimd", "base64"], "base64 (base64-simd)"),
    **dict.fromkeys(
        ["hyper", "hyper_util", "http", "http_body", "http_body_util", "httparse", "httpdate",
         "axum", "axum_core", "matchit", "tower", "tower_service", "tower_layer", "tower_http",
         "bytes"],
        HTTP,
    ),
    **dict.fromkeys(
        ["tokio", "mio", "futures_util", "futures_core", "futures_task", "futures_channel",
         "pin_project_lite", "parking_lot", "parking_lot_core"],
        RUNTIME,
    ),
    **dict.fromkeys(["core", "alloc", "std"], "Rust core, alloc and std"),
    "__rustc": "allocation (malloc, free)",
    "criterion": "criterion (the harness)",
    "tessera_bench": "the benchmark's route (tessera_bench)",
}
PRIMITIVES = re.compile(r"^(?:[A-Z][0-9]?|[ui](?:8|16|32|64|128|size)|f32|f64|bool|char|str|\[.*)$")


STD = {"core", "alloc", "std"}


def path_of(text):
    """The leading `crate::module` of a path, as a list; None if there is none."""
    text = re.sub(r"^(?:&|mut |dyn |\*const |\*mut )+", "", text.strip())
    head = re.match(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)?", text)
    if not head or (PRIMITIVES.match(head.group(0)) and "::" not in head.group(0)):
        return None
    return head.group(0).split("::")


def split_qualified(text):
    """`<Type as Trait>::rest` as (Type, Trait); (Type, None) for `<Type>::rest`."""
    depth = 0
    for at, char in enumerate(text):
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
            if depth == 0:
                inner = text[1:at]
                break
    else:
        return text[1:], None
    depth = 0
    for at, char in enumerate(inner):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if depth == 0 and inner.startswith(" as ", at):
            return inner[:at], inner[at + 4 :]
    return inner, None


def leading_path(text):
    """The crate (and module) whose code a Rust symbol is: for `<Type as
    Trait>::f`, the type's, but the trait's when the type is a generic
    parameter, a primitive or a standard library type and the trait is not
    the standard library's (the impl can only be the trait crate's); the
    pointee's for drop_in_place."""
    text = text.strip()
    drop = re.match(r"core::ptr::drop_in_place<(.*)>$", text)
    if drop:
        return leading_path(drop.group(1))
    if text.startswith("<"):
        own, trait = split_qualified(text)
        own_path, trait_path = path_of(own), trait and path_of(trait)
        if trait_path and (own_path is None or (own_path[0] in STD and trait_path[0] not in STD)):
            return trait_path
        return own_path or ["core"]
    if "::" not in text:
        return None
    return path_of(text)


def self_test():
    cases = {
        ("bench-server", "<hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse"): HTTP,
        ("bench-server", "<F as axum::handler::Handler<(M,T1),S>>::call::{{closure}}"): HTTP,
        ("bench-server", "<alloc::string::String as axum_core::response::into_response::IntoResponse>::into_response"): HTTP,
        ("bench-server", "<u64 as itoa::Unsigned>::fmt"): "itoa",
        ("bench-server", "<usize>::_fmt"): "Rust core, alloc and std",
        ("bench-server", "<std::time::SystemTime>::now"): "Rust core, alloc and std",
        ("bench-server", "<T as core::any::Any>::type_id"): "Rust core, alloc and std",
        ("bench-server", "core::ptr::drop_in_place<tessera::session::Inner>"): "tessera::session",
        ("bench-server", "tessera::deflate_bound::zlib_cannot_save_two_bytes"): "tessera::deflate_bound",
        ("bench-server", "<tessera::cookie_header::Pairs as core::iter::traits::iterator::Iterator>::next"): "tessera::cookie_header",
        ("bench-server", "<tessera::layer::SessionService<S> as tower_service::Service<http::request::Request<B>>>::call"): "tessera::layer",
        ("bench-server", "<&mio::net::tcp::stream::TcpStream as std::io::Read>::read"): RUNTIME,
        ("bench-server", "<compact_str::CompactString as core::convert::From<alloc::borrow::Cow<str>>>::from"): "compact_str",
        ("bench-server", "sha1::compress::x86::digest_blocks"): "SHA-1 and HMAC (sha1, hmac)",
        ("bench-server", "__rustc::__rdl_alloc"): "allocation (malloc, free)",
        ("bench-server", "tessera_bench::server::tessera_cookie::{{closure}}"): "the benchmark's route (tessera_bench)",
        ("bench-server", "0x00007f1234"): "unresolved",
        ("codec-0123abcdef", "libdeflate_zlib_decompress"): "zlib and libdeflate (C)",
        ("codec-0123abcdef", "criterion::bencher::Bencher<M>::iter"): "criterion (the harness)",
        ("libc.so.6", "_int_free"): "allocation (malloc, free)",
        ("libc.so.6", "cfree@GLIBC_2.2.5"): "allocation (malloc, free)",
        ("libc.so.6", "__memmove_avx512_unaligned_erms"): "memory copies and compares (libc)",
        ("libc.so.6", "__libc_recv"): "libc, other",
        ("[kernel.kallsyms]", "tcp_ack"): "kernel",
        ("[vdso]", "__vdso_clock_gettime"): "clock (vDSO)",
        ("ld-linux-x86-64.so.2", "_dl_relocate_object"): "other libraries",
    }
    failed = [(key, component(*key), want) for key, want in cases.items() if component(*key) != want]
    for (dso, symbol), got, want in failed:
        print(f"profile-report: {dso} {symbol}: {got!r}, expected {want!r}", file=sys.stderr)
    # The twenty-sixth session's whole run (the kernel 1.18 µs apart, the
    # totals 0.17) and the profile run alone after it (0.19 and 1.69).
    for total, kernel, cautioned in ((0.17, -1.18, True), (1.69, -0.19, False), (1.0, 0.5, True)):
        if bool(kernel_caution(total, kernel)) != cautioned:
            failed.append((total, kernel))
            print(f"profile-report: the kernel caution for {total}, {kernel} should be {cautioned}", file=sys.stderr)
    line = "     6.40%  [kernel.kallsyms]  [k] _raw_spin_unlock_irqrestore"
    parsed = LINE.match(line)
    if not parsed or parsed.group(1, 2, 4) != ("6.40", "[kernel.kallsyms]", "_raw_spin_unlock_irqrestore"):
        failed.append(line)
        print(f"profile-report: cannot read {line!r}", file=sys.stderr)
    sys.exit(1 if failed else 0)


def kernel_caution(total_delta, kernel_delta):
    """A sentence for the cookie profile when the kernel's share moved by at
    least half the whole difference: the kernel's time per request depends
    on how many requests each system call serves, so on the load of the
    moment, and the session's work barely changes it (a few more header
    bytes), so such a move is the runs' noise, not the session's cost."""
    if abs(kernel_delta) < abs(total_delta) / 2:
        return ""
    return (
        f" The kernel's share moved by {kernel_delta:+.2f} µs per request between these runs, at least half "
        f"the whole difference ({total_delta:+.2f} µs; {total_delta - kernel_delta:+.2f} µs outside the "
        "kernel): these totals are within the runs' noise, and the target's measure is the HTTP section's, "
        "in rounds."
    )


def component(dso, symbol):
    if dso.startswith("[kernel"):
        return "kernel"
    if dso == "[vdso]":
        return "clock (vDSO)"
    if dso.startswith("libc"):
        if re.search(r"malloc|free|realloc|calloc|^_int_|tcache|unlink_chunk|consolidate", symbol):
            return "allocation (malloc, free)"
        if re.search(r"mem(move|cpy|set|cmp|chr)|str(len|chr|cmp)", symbol):
            return "memory copies and compares (libc)"
        return "libc, other"
    if not dso.startswith("bench-server") and not dso.startswith("codec"):
        return "other libraries"
    path = leading_path(symbol)
    if path is None:
        if re.search(r"deflate|inflate|adler|crc32|zlib", symbol):
            return "zlib and libdeflate (C)"
        if re.match(r"^(0x[0-9a-f]+|\[unknown\])$", symbol):
            return "unresolved"
        return "other native code"
    crate = path[0]
    if crate == "tessera":
        return f"tessera::{path[1]}" if len(path) > 1 else "tessera"
    return GROUPS.get(crate, crate)


LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$")


def profile(path):
    """Share (0..1) of the samples per component, and per symbol."""
    components, symbols = defaultdict(float), defaultdict(float)
    for line in Path(path).read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if not m:
            continue
        share = float(m.group(1)) / 100
        dso, symbol = m.group(2), m.group(4)
        group = component(dso, symbol)
        components[group] += share
        symbols[(group, symbol)] += share
    return components, symbols


def children_cpu_seconds(path):
    """wrk's CPU time, seconds: the second line of bash's `times` (the
    children's user and system time) written after it; None if missing."""
    try:
        line = Path(path).read_text().splitlines()[1]
    except (OSError, IndexError):
        return None
    total = 0.0
    for part in line.split():
        match = re.fullmatch(r"(\d+)m([\d.]+)s", part)
        if not match:
            return None
        total += int(match.group(1)) * 60 + float(match.group(2))
    return total


def wrk(path):
    text = Path(path).read_text()
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    rate = float(re.search(r"Requests/sec:\s*([\d.]+)", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    if bad or errors:
        sys.exit(f"profile: {path}: wrk saw failures ({(bad or errors).group(0)})")
    return requests, rate


def fmt(value, digits=2):
    return f"{value:,.{digits}f}"


def short(symbol, limit=110):
    symbol = symbol.replace("|", "\\|")
    return symbol if len(symbol) <= limit else symbol[: limit - 1] + "…"


if sys.argv[1:] == ["--self-test"]:
    self_test()
work, target = Path(sys.argv[1]), Path(sys.argv[2])
seconds = os.environ["BENCH_SECONDS"]

out = []
w = out.append
w("<!-- profile:begin -->")
w("## Profiles of the targets tessera misses")
w("")
w(
    f"Generated by `scripts/profile.sh` on {os.environ['BENCH_DATE']}: {os.environ['BENCH_CPU_MODEL']}, "
    f"{os.environ['BENCH_CORES']} cores, {os.environ['BENCH_PERF']}, Redis {os.environ['BENCH_REDIS']}. "
    "Where the time goes, not the targets' measure (that is `tessera-bench http` and "
    "`scripts/bench-codec.sh`, in rounds): the runs are short, and `perf record` adds its own cost. Samples are grouped by what they ran: the kernel, malloc, tessera's modules, other crates "
    "(a function's inlined callees count as the function's; a method as its type's crate, or its trait's "
    "when the type is a generic parameter or the standard library's, so a handler closure counts as "
    "axum's)."
)
w("")

def perf_parts():
    # 1. The cookie target.
    names = ["axum-bare", "axum-headers", "tessera-cookie"]
    # Each figure is the mean of the two rounds': requests/s, CPU per
    # request, and each group's (and function's) microseconds per request.
    runs = {}
    wrk_us = {}
    for name in names:
        rates, cpus, wrk_cpus = [], [], []
        components, symbols = defaultdict(float), defaultdict(float)
        for round_ in (1, 2):
            stem = work / f"cookie-{name}-{round_}"
            requests, rate = wrk(f"{stem}.wrk")
            cpu_us = float(Path(f"{stem}.cpu").read_text()) * 1e6 / requests
            wrk_seconds = children_cpu_seconds(f"{stem}.times")
            if wrk_seconds is not None:
                wrk_cpus.append(wrk_seconds * 1e6 / requests)
            shares, functions = profile(f"{stem}.perf.txt")
            rates.append(rate)
            cpus.append(cpu_us)
            for key, share in shares.items():
                components[key] += share * cpu_us / 2
            for key, share in functions.items():
                symbols[key] += share * cpu_us / 2
        cpu_us = sum(cpus) / 2
        runs[name] = (
            sum(rates) / 2,
            cpu_us,
            {key: v / cpu_us for key, v in components.items()},
            {key: v / cpu_us for key, v in symbols.items()},
        )
        if len(wrk_cpus) == 2:
            wrk_us[name] = sum(wrk_cpus) / 2

    w("### The cookie target: the server's CPU per request, by what it ran")
    w("")
    w(
        f"`bench-server` (the servers of `tessera-bench http`, 2 worker threads) loaded by wrk for {seconds} s "
        "(1 thread, 16 connections, every one sending the cookie of one session) while `perf record -F 999` "
        "sampled it; each group's share of the samples times the server's CPU time per request "
        "(`/proc`, user and system); the mean of two rounds (in the order of the columns, then backwards). `axum-headers` is bare axum reading the `Cookie` header and sending a "
        "`Set-Cookie` header of a session's size; `tessera-cookie` reads `user` and increments `counter` in "
        "a signed cookie session, so every response carries a new cookie."
    )
    w("")
    w("| | " + " | ".join(f"`{n}`" for n in names) + " | `tessera-cookie` − `axum-bare` |")
    w("|---|" + "---:|" * (len(names) + 1))
    w("| requests/s under perf | " + " | ".join(fmt(runs[n][0], 0) for n in names) + " | |")
    w(
        "| server CPU µs/request | "
        + " | ".join(fmt(runs[n][1]) for n in names)
        + f" | {runs['tessera-cookie'][1] - runs['axum-bare'][1]:+.2f} |"
    )
    per_request = {n: {c: share * runs[n][1] for c, share in runs[n][2].items()} for n in names}
    every = set().union(*(per_request[n].keys() for n in names))
    shown = [c for c in every if max(per_request[n].get(c, 0) for n in names) >= 0.05]
    shown.sort(key=lambda c: (-(per_request["tessera-cookie"].get(c, 0) - per_request["axum-bare"].get(c, 0)), c))
    for c in shown:
        values = [per_request[n].get(c, 0) for n in names]
        w(f"| {c} | " + " | ".join(fmt(v) for v in values) + f" | {values[2] - values[0]:+.2f} |")
    rest = [sum(v for c, v in per_request[n].items() if c not in shown) for n in names]
    w("| everything else (groups under 0.05 µs) | " + " | ".join(fmt(v) for v in rest) + f" | {rest[2] - rest[0]:+.2f} |")
    w("")
    bare_cpu, cookie_cpu = runs["axum-bare"][1], runs["tessera-cookie"][1]
    kernel_delta = per_request["tessera-cookie"].get("kernel", 0) - per_request["axum-bare"].get("kernel", 0)
    tessera_own = sum(v for c, v in per_request["tessera-cookie"].items() if c.startswith("tessera"))
    if "axum-bare" in wrk_us and "tessera-cookie" in wrk_us:
        # What the machine spent per request, measured: as busy at 90% of
        # the throughput, each request may take 1/0.9 of it.
        bare_total = bare_cpu + wrk_us["axum-bare"]
        cookie_total = cookie_cpu + wrk_us["tessera-cookie"]
        budget = (
            f"The target's budget: bare axum's server and wrk spent {bare_total:.1f} µs of CPU per request "
            f"in all ({bare_cpu:.2f} and {wrk_us['axum-bare']:.2f}; the kernel's work for each in its system "
            f"time, `perf`'s in the server's), so serving at most 10% fewer, the machine as busy, leaves "
            f"{bare_total / 0.9 - bare_total:.1f} µs more per request for everything the session adds, "
            f"headers included; `tessera-cookie` added {cookie_total - bare_total:.2f} µs "
            f"({cookie_cpu - bare_cpu:.2f} in the server, {wrk_us['tessera-cookie'] - wrk_us['axum-bare']:+.2f} "
            "in wrk)."
        )
    else:
        cores = int(os.environ["BENCH_CORES"])
        machine_us = cores * 1e6 / runs["axum-bare"][0]
        budget = (
            f"The target's budget, if the {cores} cores are busy throughout: bare axum's "
            f"{fmt(runs['axum-bare'][0], 0)} requests/s are {machine_us:.1f} µs of CPU per request in all "
            f"(server, kernel, wrk), and serving at most 10% fewer leaves {machine_us / 0.9 - machine_us:.1f} µs "
            "more per request for everything the session adds, headers included."
        )
    user_delta = cookie_cpu - bare_cpu - kernel_delta
    caution = kernel_caution(cookie_cpu - bare_cpu, kernel_delta)
    w(
        f"Here `tessera-cookie` cost the server {cookie_cpu - bare_cpu:.2f} µs per request more than bare axum "
        f"({cookie_cpu / bare_cpu:.2f}×), {kernel_delta:+.2f} µs of it in the kernel and {user_delta:+.2f} µs "
        f"outside it; tessera's own modules ran {tessera_own:.2f} µs per request. " + budget + caution
    )
    w("")
    top = sorted(
        ((share, c, s) for (c, s), share in runs["tessera-cookie"][3].items() if c != "kernel"),
        reverse=True,
    )[:15]
    w("The 15 user-space functions of `tessera-cookie` with the most samples:")
    w("")
    w("| share of samples | µs/request | group | function |")
    w("|---:|---:|---|---|")
    for share, c, s in top:
        w(f"| {share:.1%} | {fmt(share * cookie_cpu)} | {c} | `{short(s)}` |")
    w("")

    # 2. Decoding a 100 B cookie.
    def estimate(bench):
        path = work / "criterion" / bench / "100B" / "new" / "estimates.json"
        return json.loads(path.read_text())["median"]["point_estimate"]


    decode_ns, floor_ns = estimate("decode"), estimate("hmac_sha1")
    components, symbols = profile(work / "decode.perf.txt")
    harness = {"criterion (the harness)", "kernel", "unresolved"}
    routine = sum(v for c, v in components.items() if c not in harness) or 1.0
    w("### Decoding a 100 B cookie, by what it ran")
    w("")
    w(
        f"`perf record -F 4999` of criterion running `decode/100B` of `cargo bench -p tessera --bench codec` "
        f"for {seconds} s (`--profile-time`; malloc keeping its memory, as in the codec section), then both "
        f"timed here (`--measurement-time 3`): decode {fmt(decode_ns, 0)} ns, the HMAC floor (`hmac_sha1/100B`) "
        f"{fmt(floor_ns, 0)} ns, {decode_ns / floor_ns:.1f}×; the target is 3×, {fmt(3 * floor_ns, 0)} ns. "
        "Nanoseconds per decode are each group's share of the decode's samples (the harness's and the "
        "kernel's left out) times the decode's time."
    )
    w("")
    w("| group | share of the decode's samples | ns per decode |")
    w("|---|---:|---:|")
    for c, v in sorted(components.items(), key=lambda item: -item[1]):
        if c in harness or v / routine < 0.005:
            continue
        w(f"| {c} | {v / routine:.1%} | {fmt(v / routine * decode_ns, 0)} |")
    outside = sum(v for c, v in components.items() if c in harness)
    w(f"| (left out: harness, kernel, unresolved) | {outside:.1%} of all samples | |")
    w("")
    w("The 12 functions with the most samples:")
    w("")
    w("| share of the decode's samples | group | function |")
    w("|---:|---|---|")
    decode_top = [(v, c, s) for (c, s), v in symbols.items() if c not in harness]
    for v, c, s in sorted(decode_top, reverse=True)[:12]:
        w(f"| {v / routine:.1%} | {c} | `{short(s)}` |")
    w("")


perf_error = os.environ.get("BENCH_PERF_ERROR", "")
if perf_error:
    w("### The cookie target and decoding a 100 B cookie: not profiled in this run")
    w("")
    w(f"perf could not record on this machine: {perf_error.strip().rstrip('.')}.")
    w("")
else:
    perf_parts()

# 3. The flame graphs, those drawn in this run.
flame_titles = {
    "axum-bare.svg": "`axum-bare` under wrk: the server's CPU by call stack",
    "tessera-cookie.svg": "`tessera-cookie` under wrk: the server's CPU by call stack",
    "layer-tessera-cookie-increment.svg": (
        "one request through the layer in process (`cargo bench --bench layer`, "
        "`request/tessera_cookie_increment`), without the network"
    ),
    "decode-100B.svg": "`decode/100B` of the codec benchmark",
}
flames = os.environ.get("BENCH_FLAMEGRAPHS", "").split()
flame_dir = os.environ.get("BENCH_FLAMEGRAPH_DIR", "bench/flamegraphs")
if flames:
    w("### Flame graphs")
    w("")
    w(
        f"Recorded again with call stacks (`{os.environ['BENCH_STACK_RECORD']}`, "
        f"{os.environ['BENCH_STACK_SECONDS']} s each) and drawn by `tessera-bench flamegraph` (inferno): where the "
        "tables above say which functions cost, these show who called them. A frame's width is its "
        "share of the CPU time; open the SVG in a browser to zoom and search."
    )
    w("")
    for name in flames:
        w(f"- [{name}]({flame_dir}/{name}): {flame_titles.get(name, name)}")
    w("")

# 4. Redis.
def info(path):
    fields = {}
    for line in Path(path).read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.strip().split(":", 1)
            fields[key] = value
    return fields


w("### Redis: what a request asks of the server")
w("")
w(
    f"`bench-server` as `tessera-redis` and `tower-redis` under wrk (1 thread, 16 connections, one "
    f"session's cookie), {seconds} s each, twice, "
    "in the order tower, tessera, tessera, tower, on a Redis of its own with its default persistence; "
    "Redis' counts (`CONFIG RESETSTAT`, then `INFO commandstats` and `INFO cpu`) over the measured "
    "seconds, both runs added up. Commands a script runs are counted on their own lines and inside the "
    "script's time. The times per call are Redis' own, taken on the clock while the cores are shared "
    "with the server and wrk, so a command that Redis was interrupted in counts long; the CPU per "
    "request is Redis' CPU time."
)
w("")
w("| target | requests/s | Redis CPU µs/request | command | calls/request | Redis µs per call | Redis µs/request |")
w("|---|---:|---:|---|---:|---:|---:|")
redis_cpu = {}
for name in ["tessera-redis", "tower-redis"]:
    requests = rate_sum = cpu = 0.0
    calls, usec = defaultdict(int), defaultdict(int)
    for run in (1, 2):
        stem = work / f"redis-{name}-{run}"
        n, rate = wrk(f"{stem}.wrk")
        requests += n
        rate_sum += rate
        c0, c1 = info(f"{stem}.rcpu0"), info(f"{stem}.rcpu1")
        cpu += sum(float(c1[k]) - float(c0[k]) for k in ("used_cpu_user", "used_cpu_sys"))
        for key, value in info(f"{stem}.redis").items():
            if not key.startswith("cmdstat_"):
                continue
            stats = dict(part.split("=", 1) for part in value.split(","))
            calls[key[8:]] += int(stats["calls"])
            usec[key[8:]] += int(stats["usec"])
    redis_cpu[name] = cpu * 1e6 / requests
    first = True
    for command in sorted(calls, key=lambda k: -usec[k]):
        if command in ("config", "info") or calls[command] / requests < 0.01:
            continue
        w(
            f"| {'`' + name + '`' if first else ''} | {fmt(rate_sum / 2, 0) if first else ''} | "
            f"{fmt(redis_cpu[name]) if first else ''} | `{command.upper()}` | {calls[command] / requests:.2f} | "
            f"{usec[command] / calls[command]:.2f} | {usec[command] / requests:.2f} |"
        )
        first = False
w("")
w(
    f"Redis spent {redis_cpu['tessera-redis'] - redis_cpu['tower-redis']:+.2f} µs of CPU per request on "
    "`tessera-redis` against `tower-redis`. Each request asks for two things: tessera loads the "
    "session's hash and runs its increment as one script, which checks in the same atomic step that "
    "the session is still live; tower-sessions reads the whole session and writes it back (and loses "
    "most increments under concurrent requests, see the HTTP section). tower-sessions sends both to "
    "Redis for every request; tessera sends the loads (and the increments) of this one session that "
    "come in one turn of the server's scheduler as one, so its calls per request fall below one as "
    "requests share the session."
)
w("<!-- profile:end -->")
section = "\n".join(out)

text = target.read_text() if target.exists() else "# Benchmarks\n"
if "<!-- profile:begin -->" in text:
    text = re.sub(r"<!-- profile:begin -->.*?<!-- profile:end -->", lambda _: section, text, flags=re.S)
elif "<!-- targets:begin -->" in text:
    text = text.replace("<!-- targets:begin -->", section + "\n\n<!-- targets:begin -->", 1)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
target.write_text(text)
print("profile: wrote the profiles section of BENCHMARKS.md", file=sys.stderr)
