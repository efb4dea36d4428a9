#!/bin/bash
# pg.sh: a real PostgreSQL server of Debian's `postgresql` package for the tests, in a temporary folder, as an
# unprivileged user (initdb refuses root: as root it runs as `nobody`), on a free 127.0.0.1 port.
#   pg.sh run CMD ARGS...  starts a server, runs CMD with CAMTRUST_TEST_PG (its base connection string, superuser
#                          camtrust, no password) and CAMTRUST_TEST_PG_CTL (this script) exported, stops the server
#                          and removes its folder (also when CMD fails or is killed); exits with CMD's status.
#   pg.sh createdb [FROM]  prints the connection string of a new database on that server: empty, or a copy of the
#                          database FROM (its dbname).
#   pg.sh stop | start     stops / starts that server again (the "PostgreSQL down" tests).
# Authentication: trust for the superuser on 127.0.0.1, scram-sha-256 for the role camtrust_pw (password in
# $PGDATA/../pw, made here), so that db.password_file is exercised for real.
set -euo pipefail
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
pg_start() { # pg_start DATA PORT
  as_pg "$PG_BIN/pg_ctl" -D "$1" -l "$1/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $2 -c unix_socket_directories='$1' -c max_connections=60" start >/dev/null 2>&1
}

case "${1:-}" in
run)
  shift
  # Under /tmp: the server user (nobody) must reach it, and the build folder may not be open to it.
  base=$(mktemp -d /tmp/camtrust-pg.XXXXXX)
  chmod 755 "$base"
  data=$base/data
  stop_all() { as_pg "$PG_BIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$base"; }
  trap stop_all EXIT
  trap 'exit 130' INT TERM
  mkdir "$data" && chown "$(as_pg id -u)" "$data" 2>/dev/null || true
  # C collation: text sorts by bytes there, as in SQLite.
  as_pg "$PG_BIN/initdb" -D "$data" -U camtrust -A trust -E UTF8 --locale=C >"$base/initdb.log" 2>&1 ||
    { cat "$base/initdb.log" >&2; exit 1; }
  {
    echo "host all camtrust_pw 127.0.0.1/32 scram-sha-256"
    echo "host all all 127.0.0.1/32 trust"
  } >"$data/pg_hba.conf"
  started=0
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if pg_start "$data" "$port"; then started=1; break; fi
  done
  [ "$started" = 1 ] || { echo "pg.sh: PostgreSQL did not start" >&2; cat "$data/server.log" >&2 || true; exit 1; }
  echo "$port" >"$base/port"
  export CAMTRUST_TEST_PG="host=127.0.0.1 port=$port user=camtrust"
  export CAMTRUST_TEST_PG_CTL="$0" CAMTRUST_TEST_PG_BASE="$base"
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$base/pw"
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$CAMTRUST_TEST_PG dbname=postgres" \
    -c "CREATE ROLE camtrust_pw LOGIN CREATEDB PASSWORD '$(cat "$base/pw")'" >/dev/null
  status=0
  "$@" || status=$?
  exit $status
  ;;
createdb)
  name=ct_$(date +%s%N | tail -c 10)_$RANDOM
  from=${2:+ TEMPLATE $2}
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$CAMTRUST_TEST_PG dbname=postgres" -c "CREATE DATABASE $name$from" >/dev/null
  # SQLite's functions that the tests' own SQL (sqlite3 CLI or psql) uses, for the tests' eyes only.
  [ -n "${2:-}" ] || "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$CAMTRUST_TEST_PG dbname=$name" >/dev/null <<'SQL'
CREATE FUNCTION zeroblob(n int) RETURNS bytea LANGUAGE sql AS $$ SELECT decode(repeat('00', n), 'hex') $$;
CREATE FUNCTION hex(b bytea) RETURNS text LANGUAGE sql AS $$ SELECT upper(encode(b, 'hex')) $$;
CREATE FUNCTION instr(a text, b text) RETURNS int LANGUAGE sql AS $$ SELECT strpos(a, b) $$;
CREATE FUNCTION randomblob(n int) RETURNS bytea LANGUAGE sql AS
  $$ SELECT substring(decode(md5(random()::text) || md5(random()::text), 'hex') FROM 1 FOR n) $$;
SQL
  echo "$CAMTRUST_TEST_PG dbname=$name"
  ;;
stop)
  as_pg "$PG_BIN/pg_ctl" -D "$CAMTRUST_TEST_PG_BASE/data" -m fast -w stop >/dev/null
  ;;
start)
  pg_start "$CAMTRUST_TEST_PG_BASE/data" "$(cat "$CAMTRUST_TEST_PG_BASE/port")"
  ;;
*)
  echo "usage: $0 run CMD... | createdb | stop | start" >&2
  exit 2
  ;;
esac
