#!/bin/sh
# Set everything up and run the whole test suite (README's second command; .ci/run runs it).
#   sh tests/run.sh [pytest arguments]
# 1. installs the Debian mail clients the interoperability tests drive (when root or sudo is
#    available; otherwise those tests are skipped), 2. creates .venv with mailhub[dev],
# 3. runs pytest on two workers.
set -eu
cd "$(dirname "$0")/.."

PKGS="dovecot-imapd dovecot-pop3d dovecot-lmtpd isync fetchmail getmail6 offlineimap3 swaks curl openssl"
missing=""
for pkg in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $pkg"
    fi
done
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""
    elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"
    else SUDO="none"
    fi
    if [ "$SUDO" != "none" ]; then
        echo "run.sh: installing$missing" >&2
        $SUDO apt-get update -q
        # shellcheck disable=SC2086
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    else
        echo "run.sh: not root and no sudo: tests that need$missing will be skipped" >&2
    fi
fi

sh scripts/bootstrap.sh dev
exec .venv/bin/python -m pytest -n 2 "$@"
