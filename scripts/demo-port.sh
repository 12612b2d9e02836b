# Sourced by the scripts that start the demo under load; not run by itself.

# demo_port PID OUT [ERR]: waits up to 30 s for the demo started as PID, with
# `--host 127.0.0.1 --port 0` and its standard output in OUT, to say where it
# listens, and prints the port. Fails, showing ERR (or OUT), if the demo exits
# or does not say so in time: a port picked at random can be taken, and a load
# generator pointed at nothing fails later with a far less useful message.
demo_port() {
    local pid="$1" out="$2" err="${3:-$2}" port=""
    for _ in $(seq 300); do
        port="$(sed -n 's|^tessera-demo listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$out" 2>/dev/null)"
        if [[ -n "$port" ]]; then
            echo "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "the demo did not start; what it printed:" >&2
    cat "$err" >&2
    return 1
}
