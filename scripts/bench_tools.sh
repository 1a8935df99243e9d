#!/usr/bin/env bash
# What `make bench` needs beyond `make run` and `make test`: wrk (HTTP load) and pgbench
# (PostgreSQL's own benchmark; Debian ships the binary with the server package, which
# scripts/ensure_test_services.sh installs when PostgreSQL is local, and /usr/bin/pgbench
# is only a wrapper). Installed with apt (through sudo when not root) only when missing.
# Idempotent: does nothing when both work.
set -euo pipefail

log() { printf '[bench-tools] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    fi
}

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    apt_install wrk
fi
if ! pgbench --version >/dev/null 2>&1; then
    log "installing pgbench (postgresql-contrib)"
    apt_install postgresql-contrib
fi
log "ready: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $(pgbench --version)"
