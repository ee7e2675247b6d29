#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the tests and print its URL.
#
#   scripts/postgres.sh          install if missing, init, start, create the
#                                database; prints postgresql+psycopg://... on stdout
#   scripts/postgres.sh stop     stop the server (the data stays for next time)
#   scripts/postgres.sh destroy  stop it and delete its data directory
#
# Idempotent and fast when the server already runs.  Listens on 127.0.0.1 only
# (port ANALYZER_PG_PORT, default 55432), trusts local connections and runs
# with fsync off: it is for tests, never for patient data.  Runs the server as
# the `postgres` user when started as root.  Messages go to stderr; only the
# URL goes to stdout.
set -euo pipefail

PORT=${ANALYZER_PG_PORT:-55432}
DB=${ANALYZER_PG_DB:-analyzer_test}
DIR=${ANALYZER_PG_DIR:-${TMPDIR:-/tmp}/analyzer-postgres-$PORT}
ACTION=${1:-start}

say() { echo "postgres.sh: $*" >&2; }

find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"; return 0
  fi
  return 1
}

BIN=$(find_bin || true)
if [ -z "$BIN" ]; then
  if [ "$ACTION" != start ]; then say "PostgreSQL is not installed"; exit 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    say "PostgreSQL is not installed and this is not root: install the Debian package 'postgresql'"
    exit 1
  fi
  say "installing the Debian package postgresql (once)"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d 101: do not let the package start its own cluster as a service.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; }
  BIN=$(find_bin) || { say "initdb not found after installing postgresql"; exit 1; }
fi

# Run server commands as a non-root user (PostgreSQL refuses to run as root).
if [ "$(id -u)" -eq 0 ]; then
  RUNAS_USER=postgres
  id "$RUNAS_USER" >/dev/null 2>&1 || useradd --system --no-create-home "$RUNAS_USER"
  as_pg() { runuser -u "$RUNAS_USER" -- "$@"; }
else
  as_pg() { "$@"; }
fi

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1; }

case "$ACTION" in
  stop|destroy)
    if [ -f "$DIR/PG_VERSION" ]; then
      as_pg "$BIN/pg_ctl" -D "$DIR" -m fast -w stop >&2 || true
    fi
    if [ "$ACTION" = destroy ]; then rm -rf "$DIR"; fi
    exit 0 ;;
  start) ;;
  *) say "unknown action $ACTION (start, stop, destroy)"; exit 2 ;;
esac

if ! ready; then
  if [ ! -f "$DIR/PG_VERSION" ]; then
    say "creating a cluster in $DIR"
    rm -rf "$DIR"
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    [ "$(id -u)" -eq 0 ] && chown "$RUNAS_USER" "$DIR"
    as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      --no-sync >"$DIR.initdb.log" 2>&1 \
      || { cat "$DIR.initdb.log" >&2; exit 1; }
  fi
  say "starting on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 30 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
    start >&2 || { tail -n 20 "$DIR/server.log" >&2 || true; exit 1; }
fi

if ! "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
     "SELECT 1 FROM pg_database WHERE datname = '$DB'" postgres | grep -q 1; then
  "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB" >&2
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
