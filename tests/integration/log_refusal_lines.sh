#!/usr/bin/env bash
# The operator's view of a refusal to sign: the newest checkpoint row taken away under a serving node (as an older
# copy of the database put back would), one more certificate issued: the node refuses, one line, said again only once
# a minute while it lasts. The row put back: the node signs again, and says so in one line (log_signing_resumed): with
# the refusal repeated once a minute, its lines stopping no longer told the operator that it had ended. Refused again
# after that (within the minute): said again, not taken for the refusal said before.
# Usage: log_refusal_lines.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/tiles_lib.sh"
if ! on_sqlite; then echo "skipped: the rows are edited in the SQLite file"; exit 77; fi

# wait_line PATTERN [COUNT]: until the server's log has COUNT (1) lines matching it (up to 15 s).
wait_line() { for _ in $(seq 1 150); do [ "$(lines "$1")" -ge "${2:-1}" ] && return 0; sleep 0.1; done; }
lines() { grep -c "$1" "$WORK/server.log" || true; }
kept_size() { sed -n 2p "$CA/checkpoint.note"; }
# take_away: the newest checkpoint row saved aside and deleted, one transaction.
take_away() {
  db_edit "BEGIN IMMEDIATE; DROP TABLE IF EXISTS attacker_saved; CREATE TABLE attacker_saved AS SELECT * FROM log_checkpoints
    WHERE id = (SELECT max(id) FROM log_checkpoints); DROP TRIGGER IF EXISTS log_checkpoints_no_delete;
    DELETE FROM log_checkpoints WHERE id = (SELECT max(id) FROM log_checkpoints); COMMIT"
}
REFUSED='event=log_sth error=.*newest checkpoint'
RESUMED='event=log_signing_resumed after=.*newest checkpoint'

tiles_ca 3
cleanup_server # again with a lease tick of 200 ms: the signer looks at the log five times a second
sed -i 's/^node.lease_ms = .*/node.lease_ms = 1000/' "$CA/camtrust-ca.conf"
WITH_HTTP=1 start_ca "$CA"
PLAIN=http://127.0.0.1:$HTTP_PORT
export PORT
enroll_one CAM0001
wait_sth 1
for _ in $(seq 1 150); do [ "$(kept_size)" = 1 ] && break; sleep 0.1; done
check_eq "a tree head and the checkpoint kept: 1" "1 1" "$(jq .tree_size "$WORK/sth.json") $(kept_size)"

take_away
enroll_one CAM0002
wait_line "$REFUSED"
check_eq "the newest checkpoint row taken away, one more issued: the node refuses, one line" 1 "$(lines "$REFUSED")"

db_edit "INSERT INTO log_checkpoints SELECT * FROM attacker_saved"
wait_sth 2
check_eq "the row put back: a tree head of 2 signed" 2 "$(jq .tree_size "$WORK/sth.json")"
wait_line "$RESUMED"
check_eq "... and the end of the refusal said, one line" 1 "$(lines "$RESUMED")"
for _ in $(seq 1 150); do [ "$(kept_size)" = 2 ] && break; sleep 0.1; done
check_eq "... the checkpoint of 2 kept" 2 "$(kept_size)"

take_away
enroll_one CAM0003
wait_line "$REFUSED" 2
check_eq "refused again within the minute: said again" 2 "$(lines "$REFUSED")"
check_eq "... no tree head past 2" 2 "$(sql "$DB" "select max(tree_size) from log_tree_heads")"
finish
