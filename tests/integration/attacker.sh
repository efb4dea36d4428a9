#!/usr/bin/env bash
# The attacker of issue 11, in one place: write access to a real CA's camtrust.db (sqlite3, the triggers dropped),
# none to its token. Every kind of edit, the tail cut, an older copy put back, a fork shown to a station installed
# after it. Each case asserts who catches it, and each row of README's "what each attack leaves behind" table is
# asserted here, the "cannot see it" cells included: `audit verify` (with `--checkpoint` of an officer's kept
# checkpoint where only a kept head can show it), `serve` refusing to start, a station's `log check` / `log
# compare`, the witness (`camtrust-ca witness`). The cases are attacker_lib.sh's, played on PostgreSQL too by
# attacker_pg.sh. Usage: attacker.sh BUILD_DIR
BUILD=$1
CA_BIN=$BUILD/ca/camtrust-ca
STATION_BIN=$BUILD/provision/camtrust-station
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/attacker_lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
# keep NAME: a copy of the database ($WORK/NAME.db); restore NAME puts it back, the CA's checkpoint.note removed.
keep() { sqlite3 "$DB" ".backup '$WORK/$1.db'"; }
restore() { rm -f "$DB-wal" "$DB-shm" "$CA/checkpoint.note"; cp "$WORK/$1.db" "$DB"; }
# sql_edit SQL: the attacker's statements after dropping every trigger (the copies put back have them all).
sql_edit() { sqlite3 "$DB" "$(sql "$DB" "select 'DROP TRIGGER ' || name || ';' from sqlite_master where type = 'trigger'") $1"; }

attacker_setup
attacker_history
chain_attacks
state_attacks
crl_attacks
forged_leaf_attack
tail_cut_attacks
older_copy_attacks
honest_back
finish
