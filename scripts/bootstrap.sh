#!/bin/sh
# Create ./.venv with mailhub installed from this checkout (editable).
#   sh scripts/bootstrap.sh          runtime only
#   sh scripts/bootstrap.sh dev      plus the test and lint tools
# Debian ships the venv module separately (python3-venv); it is installed when missing and
# root or sudo is available.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else return 1
    fi
}

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "bootstrap: mailhub needs Python 3.11 or newer ($PY is $("$PY" -V 2>&1))" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
    if ! "$PY" -m venv .venv >/dev/null 2>&1; then
        rm -rf .venv
        echo "bootstrap: installing python3-venv (needed to create .venv)" >&2
        if ! { as_root apt-get update -q &&
               as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }; then
            echo "bootstrap: cannot create a virtualenv; install python3-venv and retry" >&2
            exit 1
        fi
        "$PY" -m venv .venv
    fi
fi

if [ -n "${1:-}" ]; then spec=".[$1]"; else spec="."; fi
.venv/bin/python -m pip install -q -e "$spec"
