#!/usr/bin/env bash
# Checkpoints the CA's own software never signs: the attacker is root on the CA host, so it can use the CA's token
# (pkcs11-tool on its SoftHSM token, the log-note key) and answer on the CA's address (a Python HTTP server here). The
# witness w1 (its own token) cosigned the real CA's checkpoint, which binds the audit chain (camtrust-audit N HASH).
# The attacker signs the same tree without that line: cosigned, it would leave w1 nothing to compare the next
# checkpoint's audit chain with, and a copy from before a revocation put back would then be cosigned too. Nor without
# the audit tree's root (camtrust-audit-root) its kept one has. A checkpoint of another log's origin, signed with the
# same key, is refused as well.
# Usage: witness_forged.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/witness_lib.sh"
witness_setup line1 CAM0001 CAM0002
WITH_HTTP=1 start_ca "$CA"
enroll CAM0001 CAM0002
start_witness
cosigned_two() {
  for _ in $(seq 1 150); do
    [ -e "$W1/state.note" ] && [ "$(sed -n 2p "$W1/state.note")" = 2 ] && return 0
    sleep 0.1
  done
  return 1
}
check "w1 cosigns the real checkpoint of 2 certificates" cosigned_two
stop_witness
cleanup_server
check "... which binds the audit chain" grep -q '^camtrust-audit [0-9]* ' "$W1/state.note"
cp "$W1/state.note" "$WORK/state.before"

# witness_once: one run of w1 against the attacker's answer; sets RC, the log in $WORK/w.log
witness_once() {
  RC=0; bounded 10 "$CA_BIN" witness --dir "$W1" --log "http://$ADDR" --vkey "$CA/log.vkey" --interval 0.2 \
    2>"$WORK/w.log" || RC=$?
}

# The same tree, signed by the CA's key, without the audit line.
sed -n '1,3p;/^camtrust-time /p' "$WORK/state.before" >"$WORK/noaudit.txt"
sign_note "$WORK/noaudit.txt" "$WORK/noaudit.note"
check "the attacker signs the same tree without the audit line with the CA's token" \
  bash -c "[ \"\$(grep -c '^— ' '$WORK/noaudit.note')\" = 1 ] && ! grep -q '^camtrust-audit' '$WORK/noaudit.note'"
fake_ca "$WORK/noaudit.note"
witness_once
check_eq "w1 refuses a checkpoint that drops the audit line its kept one has (exit 1)" 1 "$RC"
check "... saying why, one line" grep -q "event=witness_refused .*reason=\"the CA's checkpoint of size 2 binds no audit chain, the kept .*state.note does\"" "$WORK/w.log"
check "... cosigning nothing" bash -c "! grep -q witness_cosigned '$WORK/w.log' && cmp -s '$W1/state.note' '$WORK/state.before'"
stop_bg

# The same tree and audit chain, signed by the CA's key, without the audit tree's root (as the CA's software signed
# before it): w1 kept a root, so it could no longer check that a longer chain extends its own.
sed -n '1,3p;/^camtrust-audit /p;/^camtrust-time /p' "$WORK/state.before" >"$WORK/noroot.txt"
sign_note "$WORK/noroot.txt" "$WORK/noroot.note"
check "the attacker signs the same checkpoint without the audit root line" \
  bash -c "grep -q '^camtrust-audit ' '$WORK/noroot.note' && ! grep -q '^camtrust-audit-root' '$WORK/noroot.note'"
fake_ca "$WORK/noroot.note"
witness_once
check_eq "w1 refuses a checkpoint that drops the audit root its kept one has (exit 1)" 1 "$RC"
check "... saying why, one line" grep -q "event=witness_refused .*reason=\"the CA's checkpoint of size 2 binds no audit root, the kept .*state.note does\"" "$WORK/w.log"
check "... cosigning nothing" bash -c "! grep -q witness_cosigned '$WORK/w.log' && cmp -s '$W1/state.note' '$WORK/state.before'"
stop_bg
# Kept in the CA's database after the checkpoints with a root (as a node of an older build would sign it): audit
# verify names it.
sqlite3 "$DB" "INSERT INTO log_checkpoints (tree_size, audit_entries, note) VALUES (2, $(audit_entries "$WORK/noroot.note"),
  CAST(readfile('$WORK/noroot.note') AS TEXT))"
rc=0; out=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || rc=$?
check_eq "audit verify with it as the database's newest checkpoint: exit 1" 1 "$rc"
check "... naming it: it binds no audit root, the one before did" \
  grep -q "^checkpoints BROKEN: checkpoint [0-9]* (size 2): it binds no audit root, the one before did$" <<<"$out"

# Another log's checkpoint (its origin line changed), signed by the same key: not this log's.
{ echo "camtrust.example.com/another-log"; sed -n '2,$p' "$WORK/state.before" | sed '/^$/,$d'; } >"$WORK/origin.txt"
sign_note "$WORK/origin.txt" "$WORK/origin.note"
fake_ca "$WORK/origin.note"
witness_once
check_eq "w1 refuses a checkpoint of another origin signed by the CA's key (exit 1)" 1 "$RC"
check "... saying why, one line" grep -q "event=witness_refused .*reason=\"the served checkpoint is not the log's: a checkpoint of log camtrust.example.com/another-log, not of camtrust.example.com/" "$WORK/w.log"
check "... cosigning nothing" bash -c "! grep -q witness_cosigned '$WORK/w.log' && cmp -s '$W1/state.note' '$WORK/state.before'"
stop_bg
finish
