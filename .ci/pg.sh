#!/usr/bin/env bash
# Starts a private PostgreSQL cluster on 127.0.0.1:${PGPORT:-55432} for the
# tests and prints the URL to use as VESTNIK_TEST_PG. Idempotent.
set -euo pipefail
port=${PGPORT:-55432}
dir=${PGDIR:-/tmp/vestnik-pg}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
url="postgres://vestnik@127.0.0.1:$port/vestnik?sslmode=disable"
if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then echo "$url"; exit 0; fi
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
if [ ! -f "$dir/PG_VERSION" ]; then
  mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_pg "'$bin/initdb' -D '$dir' -U postgres -A trust -E UTF8 --locale=C.UTF-8" >/dev/null
fi
as_pg "'$bin/pg_ctl' -D '$dir' -l '$dir/log' -w -o \"-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 -c shared_buffers=256MB\" start" >/dev/null
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qAtc "SELECT 1 FROM pg_roles WHERE rolname='vestnik'" | grep -q 1 ||
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE ROLE vestnik LOGIN SUPERUSER" >/dev/null
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qAtc "SELECT 1 FROM pg_database WHERE datname='vestnik'" | grep -q 1 ||
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres -O vestnik vestnik
echo "$url"
