#!/usr/bin/env bash
# Fuzzes tessera with libFuzzer: cookie decoding, Flask's tagged JSON, session
# ids, whole requests through the layer, and Flask-Session's stored formats
# (fuzz/fuzz_targets/).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]    default: 300 s, every target
#
# How: the fuzz crate is built directly with cargo on the stable toolchain,
# with the instrumentation `cargo fuzz run <target> --sanitizer none` uses
# (LLVM sanitizer coverage with comparison tracing, `--cfg fuzzing`,
# optimised with debug assertions), and the target binaries run for the given
# time each, as many at once as there are cores (FUZZ_JOBS overrides). This
# was chosen over cargo-fuzz as the quicker path on a fresh machine:
# `cargo install cargo-fuzz` compiles the tool before doing the same build
# (which it also does with one codegen unit per crate, slower still). Every
# flag is a stable `-C` flag, so neither nightly nor RUSTC_BOOTSTRAP is
# needed. Where cargo-fuzz is installed, `cargo fuzz run <target> -s none`
# runs the same targets (fuzz/ has its layout).
#
# Each corpus grows in fuzz/corpus/<target>, starting from the seeds in
# fuzz/seeds/<target>. A crash, failed check or timeout is saved under
# fuzz/artifacts/<target>/ and fails the script once every target has run;
# replay one with `fuzz/target/<host triple>/release/<target> <file>`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-300}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]" >&2
    exit 2
fi
shift $(($# > 0 ? 1 : 0))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(cookie_decode tagged_json session_id layer_cookie_header flask_session_format)
fi

# libfuzzer-sys builds libFuzzer from its C++ source.
if ! command -v c++ >/dev/null 2>&1; then
    echo "fuzz.sh: a C++ compiler (c++) is required to build libFuzzer" >&2
    exit 1
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    --cfg fuzzing
    -Clink-dead-code
    -Cdebug-assertions
)
if [[ "$host" == *-linux-* ]]; then
    flags+=(-Cllvm-args=-sanitizer-coverage-stack-depth)
fi

echo "fuzz.sh: building ${targets[*]} for $host"
# --target keeps the instrumentation out of build scripts and proc macros.
RUSTFLAGS="${flags[*]} ${RUSTFLAGS:-}" cargo build \
    --manifest-path fuzz/Cargo.toml --target-dir fuzz/target --target "$host" \
    --release --config profile.release.debug=\"line-tables-only\" --quiet \
    $(printf -- '--bin %s ' "${targets[@]}")

# One target per core at a time (FUZZ_JOBS overrides).
jobs="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}"

fuzz() {
    local target="$1" start=$SECONDS status=ok
    local corpus="fuzz/corpus/$target" artifacts="fuzz/artifacts/$target/"
    local log="fuzz/target/$target.log"
    local seeds=()
    mkdir -p "$corpus" "$artifacts"
    if [ -d "fuzz/seeds/$target" ]; then
        seeds=("fuzz/seeds/$target")
    fi
    "fuzz/target/$host/release/$target" -max_total_time="$seconds" -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" "${seeds[@]}" \
        >"$log" 2>&1 || status=FAILED
    echo "$status $((SECONDS - start))" >"$log.status"
}

running=0
for target in "${targets[@]}"; do
    fuzz "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

failed=()
for target in "${targets[@]}"; do
    log="fuzz/target/$target.log"
    read -r status elapsed <"$log.status"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    printf 'fuzz.sh: %-20s %-6s %s runs in %d s, corpus %d inputs\n' "$target" "$status" \
        "${runs:-?}" "$elapsed" "$(find "fuzz/corpus/$target" -type f | wc -l)"
    if [ "$status" != ok ]; then
        failed+=("$target")
        tail -n 60 "$log" >&2
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failures in ${failed[*]}; inputs are in fuzz/artifacts/" >&2
    exit 1
fi
