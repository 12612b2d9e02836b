# Shell functions the scripts share. Sourced, not run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# apt_install WHO PACKAGE...: installs Debian packages quietly, as root,
# refreshing the package lists only when the first try fails (a fresh
# machine's lists may be stale or missing). Not root: says what to install
# and exits. Fails (status 1) when apt-get does.
apt_install() {
    local who="$1"
    shift
    if [[ $(id -u) -ne 0 ]]; then
        echo "$who: need root to apt-get install $*; install them and retry" >&2
        exit 1
    fi
    echo "$who: installing $* (Debian)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$@" >/dev/null; } \
        || { echo "$who: could not apt-get install $*" >&2; return 1; }
}

# A TCP port free on 127.0.0.1 at the time of asking.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_services: starts Redis and PostgreSQL (scripts/services.sh start),
# exports what it prints (TESSERA_TEST_REDIS_URL, ...) and sets services_dir
# for the caller's `scripts/services.sh stop "$services_dir"`. Run from the
# repository's root. Fails when the start fails, which
# `eval "$(scripts/services.sh start)"` would hide behind eval's status.
# Its environment reaches the start: `TESSERA_REDIS_PERSISTENCE=default start_services`.
start_services() {
    local exports
    exports="$(scripts/services.sh start)" || return
    eval "$exports"
    services_dir="$TESSERA_SERVICES_DIR"
}
