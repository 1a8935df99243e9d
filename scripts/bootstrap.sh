#!/usr/bin/env bash
# Idempotent setup on a fresh Debian/Ubuntu with only Python 3.11+:
#   * .venv (python3 -m venv; installs python3-venv when the module is missing)
#   * requirements.lock into .venv, again only when the lock file changed (stamp in .venv)
#   * redis-server and nginx-light from apt when absent (with sudo when not root)
#   * nodejs, npm (to build web/) and chromium (its browser journey) from apt when absent
# Safe to run on every `make run` / `make test`: a no-op when everything is in place.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
VENV=".venv"
STAMP="$VENV/.requirements.lock.sha256"

log() { printf '[bootstrap] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
    # Installing may also start the daemons as system services (Debian does unless a policy-rc.d
    # says no); harmless: the local run uses a Redis that answers, and its own nginx config.
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
        if [ "$APT_UPDATED" -eq 0 ]; then
            log "apt-get install failed; updating the package lists and trying again"
            as_root apt-get update
            APT_UPDATED=1
        fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    fi
}

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# --- Python -------------------------------------------------------------------------------
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "[bootstrap] $PYTHON is older than 3.11; install Python 3.11+ first" >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        version="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        log "python venv module missing; installing python3-venv"
        apt_install "python${version}-venv" || apt_install python3-venv
    fi
    log "creating $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi

lock_hash="$(sha256sum requirements.lock | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$lock_hash" ]; then
    log "installing requirements.lock into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r requirements.lock
    echo "$lock_hash" >"$STAMP"
fi

# --- system services the local run needs ------------------------------------------------------
missing=()
have redis-server || missing+=(redis-server)
have nginx || missing+=(nginx-light)
# The console (web/) is built with node and npm, and its browser journey runs Debian's chromium.
have node || missing+=(nodejs)
have npm || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    log "warning: node $(node --version) is older than 20.19, which web/ (vite) needs"
fi

log "ready"
