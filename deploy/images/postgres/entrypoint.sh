#!/bin/bash
# The official postgres image's entrypoint, reduced to what compose.yaml relies on.
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  export PGUSER="$POSTGRES_USER" PGDATABASE=postgres
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -q -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  export PGDATABASE="$POSTGRES_DB"
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sh) echo "$0: running $script"; if [ -x "$script" ]; then "$script"; else . "$script"; fi ;;
      *.sql) echo "$0: running $script"; psql -v ON_ERROR_STOP=1 -q -f "$script" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset PGUSER PGDATABASE
  echo "$0: database initialised"
fi
if [ "$1" = postgres ]; then
  exec postgres -c listen_addresses='*' "${@:2}"
fi
exec "$@"
