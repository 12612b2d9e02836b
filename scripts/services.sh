#!/usr/bin/env bash
# Starts throwaway Redis and PostgreSQL servers on 127.0.0.1 for the tests,
# in a temporary directory, and prints the environment that points the tests
# at them. Installs Debian's redis-server (and PostgreSQL, if missing) first.
#
#   exports="$(scripts/services.sh start)" && eval "$exports"   # exports TESSERA_TEST_REDIS_URL, ...
#   (start_services in scripts/lib.sh does this for the scripts)
#   scripts/services.sh stop "$TESSERA_SERVICES_DIR"
#
#   scripts/services.sh redis-stop DIR | redis-start DIR    # an outage and the recovery
#   scripts/services.sh pg-stop DIR | pg-start DIR          # (used by the outage tests)
#
# Redis writes an append-only file synced on every write, so a restart keeps
# every acknowledged write. With TESSERA_REDIS_PERSISTENCE=default it runs
# with Redis' own defaults instead (snapshots now and then, no append-only
# file), as most deployments run it; scripts/bench.sh benchmarks on that.
#
# PostgreSQL refuses to run as root, so the cluster belongs to the system
# user `postgres` (created by Debian's package) when run as root.
#
# Both also speak TLS, with a certificate for 127.0.0.1 from a throwaway CA
# made here: Redis on a port of its own (TESSERA_TEST_REDIS_TLS_URL), PostgreSQL
# on its usual one (TESSERA_TEST_POSTGRES_TLS_URL verifies the certificate;
# TESSERA_TEST_POSTGRES_URL asks for plain text).
# SSL_CERT_FILE is set to the system's root certificates plus that CA, which
# is how rustls (and OpenSSL) programs are told to trust another CA.
set -euo pipefail

log() { echo "services: $*" >&2; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        # `return 0`: a bare return inside an exit trap (start's) would
        # return the status the script is exiting with.
        [[ -x "$dir/pg_ctl" ]] && { echo "$dir"; return 0; }
    done
    return 0
}

start() {
    command -v redis-server >/dev/null 2>&1 || apt_install services redis-server
    command -v openssl >/dev/null 2>&1 || apt_install services openssl
    [[ -n "$(pg_bin)" ]] || apt_install services postgresql
    local bin dir redis_port pg_port as_pg=()
    bin="$(pg_bin)"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/tessera-services.XXXXXX")"
    # The servers run as daemons, outside the caller's process group, and the
    # caller learns their directory only from the last lines printed here; so
    # a start that ends before them (a failure, or a signal to the caller's
    # group, which reaches this script too) stops what it began itself.
    trap "abandon '$dir' \$?" EXIT
    chmod 755 "$dir"
    certificates "$dir/tls"

    redis_port="$(free_port)"
    echo "$redis_port" > "$dir/redis.port"
    free_port > "$dir/redis.tls-port"
    case "${TESSERA_REDIS_PERSISTENCE:-always}" in
        always | default) echo "${TESSERA_REDIS_PERSISTENCE:-always}" > "$dir/redis.persistence" ;;
        *) log "TESSERA_REDIS_PERSISTENCE must be always or default"; exit 2 ;;
    esac
    redis_start "$dir"

    mkdir -p "$dir/pg"
    # PostgreSQL wants its key readable by its own user only.
    cp "$dir/tls/server.pem" "$dir/tls/server.key" "$dir/pg/"
    chmod 600 "$dir/pg/server.key"
    if [[ $(id -u) -eq 0 ]]; then
        as_pg=(runuser -u postgres --)
        chown -R postgres "$dir/pg"
    fi
    pg_port="$(free_port)"
    echo "$pg_port" > "$dir/pg.port"
    "${as_pg[@]}" "$bin/initdb" -D "$dir/pg/data" -U tessera --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
    pg_start "$dir"
    "${as_pg[@]}" "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U tessera tessera

    for _ in $(seq 50); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    log "redis on 127.0.0.1:$redis_port, postgres on 127.0.0.1:$pg_port, in $dir"
    # Printed whole, then the trap dropped: a caller gone meanwhile (its
    # end of the pipe closed) fails the print, and the trap stops them.
    # PostgreSQL's URL asks for plain text, as before the server spoke TLS:
    # the benchmarks stay comparable with earlier runs and with peers that
    # have no TLS.
    printf '%s\n' \
        "export TESSERA_SERVICES_DIR='$dir'" \
        "export TESSERA_TEST_REDIS_URL='redis://127.0.0.1:$redis_port/0'" \
        "export TESSERA_TEST_POSTGRES_URL='postgres://tessera@127.0.0.1:$pg_port/tessera?sslmode=disable'" \
        "export TESSERA_TEST_REDIS_TLS_URL='rediss://127.0.0.1:$(cat "$dir/redis.tls-port")/0'" \
        "export TESSERA_TEST_POSTGRES_TLS_URL='postgres://tessera@127.0.0.1:$pg_port/tessera?sslmode=verify-full&sslrootcert=$dir/tls/ca.pem'" \
        "export SSL_CERT_FILE='$dir/tls/bundle.pem'"
    trap - EXIT
}

# What `start` does when it ends early (with STATUS): on a failure, the
# servers' own words on why, from their logs in DIR (which goes); on a
# signal (128 and above) nothing to say. Then it stops what it began.
abandon() {
    local dir="$1" status="$2" file
    if (( status > 0 && status < 128 )); then
        for file in "$dir/initdb.log" "$dir/pg/postgres.log" "$dir/redis.log"; do
            if [[ -s "$file" ]]; then
                log "the end of ${file#"$dir/"}:"
                tail -n 15 "$file" >&2
            fi
        done
    fi
    stop "$dir"
}

# A CA and a certificate it signed for 127.0.0.1 and localhost, valid for a
# week, in DIR; bundle.pem is the system's root certificates and the CA.
certificates() {
    local dir="$1"
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
        -subj "/CN=tessera test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
    printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
        "keyUsage=digitalSignature" "extendedKeyUsage=serverAuth" > "$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 7 -extfile "$dir/server.ext" -out "$dir/server.pem" >/dev/null 2>&1
    local system=/etc/ssl/certs/ca-certificates.crt
    { if [[ -n "${SSL_CERT_FILE:-}" && -f "$SSL_CERT_FILE" ]]; then cat "$SSL_CERT_FILE"
      elif [[ -f "$system" ]]; then cat "$system"; fi
      cat "$dir/ca.pem"; } > "$dir/bundle.pem"
}

as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

redis_start() {
    local dir="$1" port
    port="$(cat "$dir/redis.port")"
    local persistence=(--save "" --appendonly yes --appendfsync always)
    [[ "$(cat "$dir/redis.persistence" 2>/dev/null)" == default ]] && persistence=()
    redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" "${persistence[@]}" \
        --tls-port "$(cat "$dir/redis.tls-port")" --tls-auth-clients no \
        --tls-cert-file "$dir/tls/server.pem" --tls-key-file "$dir/tls/server.key" \
        --tls-ca-cert-file "$dir/tls/ca.pem" \
        --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "redis on port $port did not answer within 5 s"
    return 1
}

redis_stop() {
    local dir="$1"
    redis-cli -p "$(cat "$dir/redis.port")" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        redis-cli -p "$(cat "$dir/redis.port")" ping >/dev/null 2>&1 || return 0
        sleep 0.1
    done
}

pg_start() {
    local dir="$1" bin port
    bin="$(pg_bin)"
    port="$(cat "$dir/pg.port")"
    as_postgres "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir/pg' -c fsync=off -c ssl=on -c ssl_cert_file='$dir/pg/server.pem' -c ssl_key_file='$dir/pg/server.key'" \
        start >/dev/null
}

pg_stop() {
    as_postgres "$(pg_bin)/pg_ctl" -D "$1/pg/data" -m fast -w stop >/dev/null
}

stop() {
    local dir="${1:?usage: services.sh stop DIR}" bin as_pg=()
    bin="$(pg_bin)"
    [[ $(id -u) -eq 0 ]] && as_pg=(runuser -u postgres --)
    if [[ -f "$dir/redis.pid" ]]; then
        kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    elif [[ -f "$dir/redis.port" ]]; then
        # Stopped while Redis was starting, before it wrote its pid file:
        # shut down the Redis on its port if it is this one (its directory
        # is this one's), not another that took the port meanwhile.
        local port
        port="$(cat "$dir/redis.port")"
        if [[ "$(redis-cli -p "$port" config get dir 2>/dev/null | sed -n 2p)" \
            == "$(cd "$dir" && pwd -P)" ]]; then
            redis_stop "$dir"
        fi
    fi
    if [[ -d "$dir/pg/data" && -n "$bin" ]]; then
        "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    redis-stop) redis_stop "${2:?DIR}" ;;
    redis-start) redis_start "${2:?DIR}" ;;
    pg-stop) pg_stop "${2:?DIR}" ;;
    pg-start) pg_start "${2:?DIR}" ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: scripts/services.sh start | stop DIR | redis-stop DIR | redis-start DIR | pg-stop DIR | pg-start DIR" >&2; exit 2 ;;
esac
