#!/usr/bin/env bash
# Create (or refresh) the Python virtual environment used by the interop tests
# and the Python benchmark, then print the path of its python interpreter.
#
#   scripts/setup-python.sh            # => /path/to/repo/.venv/bin/python
#
# The venv lives at <repo>/.venv. It is rebuilt only when it is missing, broken,
# or interop/requirements.txt changed since the last install (a hash of the
# requirements file is stored inside the venv), so a second run is instant.
# Progress messages go to stderr; stdout carries only the python path, so
# callers can do: PY="$(scripts/setup-python.sh)".
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
venv="$repo_root/.venv"
requirements="$repo_root/interop/requirements.txt"
stamp="$venv/.requirements.sha256"
python_bin="$venv/bin/python"

want_hash="$(sha256sum "$requirements" | cut -d' ' -f1)"

venv_is_current() {
    [[ -x "$python_bin" && -f "$stamp" && "$(cat "$stamp")" == "$want_hash" ]] \
        && "$python_bin" -c 'import flask' 2>/dev/null
}

if venv_is_current; then
    echo "$python_bin"
    exit 0
fi

# Several tests may call this script at once: serialize the (re)build so one
# run does not delete a venv another is installing into. The lock file lives
# outside the work tree, one per checkout.
if command -v flock >/dev/null 2>&1; then
    lock="${TMPDIR:-/tmp}/tessera-setup-python-$(printf '%s' "$repo_root" | sha256sum | cut -c1-16).lock"
    exec 9>"$lock"
    flock 9
    if venv_is_current; then  # built by whoever held the lock before us
        echo "$python_bin"
        exit 0
    fi
fi

host_python="${PYTHON:-python3}"
if ! command -v "$host_python" >/dev/null 2>&1; then
    echo "setup-python: '$host_python' not found; install python3 (and python3-venv)" >&2
    exit 1
fi

# Start from a clean venv: leftovers of an older requirements set (or a venv
# from another Python version) must not leak into the interop results.
echo "setup-python: creating $venv" >&2
rm -rf "$venv"
if ! "$host_python" -m venv "$venv" >&2; then
    echo "setup-python: '$host_python -m venv' failed; on Debian: apt-get install python3-venv" >&2
    rm -rf "$venv"
    exit 1
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
"$python_bin" -m pip install --quiet --no-input -r "$requirements" >&2

# Written last, so an interrupted install is retried on the next run.
echo "$want_hash" > "$stamp"
echo "$python_bin"
