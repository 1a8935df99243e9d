#!/usr/bin/env bash
# Make sure the services the tests talk to are up (for `make test` and CI):
#   * PostgreSQL on 127.0.0.1:5432, user postgres without a password, database helpdesk_test
#     (installs Debian's postgresql when absent, starts the cluster when stopped, and switches
#     local TCP connections to trust auth when a password would be asked — a test machine only)
#   * Redis on 127.0.0.1:6379 (installs redis-server when absent; starts one without persistence)
# Idempotent: does nothing when both already answer.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
TEST_DB="${HELPDESK_TEST_DB_NAME:-helpdesk_test}"
REDIS_PORT="${HELPDESK_TEST_REDIS_PORT:-6379}"

log() { printf '[test-services] %s\n' "$*"; }
die() { printf '[test-services] %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

APT_UPDATED=0
apt_install() {
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
        if [ "$APT_UPDATED" -eq 0 ]; then
            as_root apt-get update
            APT_UPDATED=1
        fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    fi
}

wait_for() {  # wait_for <seconds> <command...>
    local seconds="$1"
    shift
    for _ in $(seq $((seconds * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# --- PostgreSQL -------------------------------------------------------------------------------
pg_answers() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2; }
pg_login() { PGCONNECT_TIMEOUT=3 psql -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc "$1"; }

pg_port_open() { (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null; }

if ! pg_port_open && ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "installing postgresql"
    apt_install postgresql postgresql-client
elif ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; then
    log "installing postgresql-client"
    apt_install postgresql-client
fi

if ! pg_answers; then
    versions=$(ls /etc/postgresql 2>/dev/null || true)
    [ -n "$versions" ] || die "PostgreSQL is installed but has no cluster under /etc/postgresql"
    for version in $versions; do
        log "starting PostgreSQL $version/main"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    wait_for 30 pg_answers || die "PostgreSQL does not answer on $PG_HOST:$PG_PORT"
fi

if ! pg_login 'select 1' >/dev/null 2>&1; then
    # A fresh Debian cluster asks TCP clients for a password; tests connect without one.
    log "allowing passwordless local TCP connections (trust for 127.0.0.1 and ::1)"
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
        if ! as_root grep -q '^# helpdesk-test trust' "$hba"; then
            as_root sed -i '1i # helpdesk-test trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
        fi
    done
    as_postgres psql -q -c 'select pg_reload_conf()' >/dev/null
    wait_for 10 pg_login 'select 1' || die "cannot log in to PostgreSQL as $PG_USER on $PG_HOST:$PG_PORT"
fi

if [ "$(pg_login "select 1 from pg_database where datname = '$TEST_DB'")" != "1" ]; then
    log "creating database $TEST_DB"
    pg_login "create database \"$TEST_DB\"" >/dev/null
fi
log "PostgreSQL ready: postgresql://$PG_USER@$PG_HOST:$PG_PORT/$TEST_DB"

# --- Redis ------------------------------------------------------------------------------------
redis_answers() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis-server"
    apt_install redis-server
fi
if ! redis_answers; then
    log "starting redis-server on 127.0.0.1:$REDIS_PORT (no persistence)"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --dir /tmp --logfile /tmp/helpdesk-test-redis.log
    wait_for 10 redis_answers || die "Redis does not answer on 127.0.0.1:$REDIS_PORT"
fi
log "Redis ready: redis://127.0.0.1:$REDIS_PORT"
