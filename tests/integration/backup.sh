#!/usr/bin/env bash
# Backup and restore of a SQLite CA (issue 13), against the operator who puts an old copy back: `backup` while the CA
# serves and issues (a consistent, owner-only copy that verifies and restores to a working CA holding every
# certificate a client had received before it); an older copy restored after more issuance is flagged, refused by
# `serve` until an officer accepts it, and the acceptance is audited with both sizes; a damaged, truncated, forged or
# foreign copy is refused in one line with the CA folder left byte for byte as it was; a restore killed at each step
# leaves the old database or the new one, never a mix. Usage: backup.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
DB=$CA/camtrust.db
ca_create "$CA" >/dev/null
N=10
station_with_order line1 $(seq -f 'CAM%04g' 1 $((N + 2)))
WITH_HTTP=1 start_ca "$CA"
enroll() { # enroll SERIAL: prints the HTTP status; $WORK/got/SERIAL once the client has its certificate
  make_csr "$WORK/$1" "/serialNumber=$1/CN=x"
  local code; code=$(est_post simpleenroll "$WORK/$1.b64" "$WORK/$1.p7b64" --cert "$WORK/station.pem" --key "$WORK/station.key")
  [ "$code" = 200 ] && mkdir -p "$WORK/got" && touch "$WORK/got/$1"
  echo "$code"
}
signed() { # signed N: until the served checkpoint covers N certificates
  for _ in $(seq 1 100); do
    [ "$(curl -s --max-time 5 "http://127.0.0.1:$HTTP_PORT/log/checkpoint" | sed -n 2p)" = "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
# The CA folder as bytes: every file's name and SHA-256; the token store only by its names, since SoftHSM rewrites its
# token.object at every login (any command's, audit verify's too): its own bookkeeping, not the CA's writing.
folder() { (cd "$CA" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sed 's|^[0-9a-f]*  \./tokens/|tokens/|'); }

# ---- backup while serving and issuing ----
( for i in $(seq 1 $N); do enroll "$(printf 'CAM%04g' "$i")" >/dev/null; done ) &
ISSUER=$!
for _ in $(seq 1 200); do [ "$(ls "$WORK/got" 2>/dev/null | wc -l)" -ge 4 ] && break; sleep 0.05; done
BEFORE=$(ls "$WORK/got") # certificates clients had received before the backup began
rc=0; out=$("$CA_BIN" backup --dir "$CA" --out "$WORK/b1.db" 2>&1) || rc=$?
wait "$ISSUER"
check_eq "backup while the CA serves and issues: exit 0" 0 "$rc"
check "... it names the copy, owner only, and the CA by its device root" \
  grep -q "^backup written: $WORK/b1.db (mode 0600) of the CA whose device root has SHA-256 $(openssl x509 -in "$CA/root.pem" -outform DER | sha256sum | cut -c1-64)" <<<"$out"
check_eq "... the file is owner-only (0600)" 600 "$(stat -c %a "$WORK/b1.db")"
held=$(sql "$WORK/b1.db" "select count(*) from log_leaves")
check_eq "... it says what it holds (schema, audit entries, log size, checkpoints)" \
  "it holds: schema version $(sql "$DB" "pragma user_version"), $(sql "$WORK/b1.db" "select max(seq) from audit") audit entries, a log of $held certificates, $(sql "$WORK/b1.db" "select count(*) from log_checkpoints") checkpoints" \
  "$(sed -n 2p <<<"$out")"
check "... and its newest checkpoint" grep -qE "^newest checkpoint: size [0-9]+, audit entries [0-9]+, signed 20" <<<"$out"
check_eq "... one file: rollback-journal mode, no WAL beside it" "delete no-wal" \
  "$(sql "$WORK/b1.db" "pragma journal_mode") $([ -e "$WORK/b1.db-wal" ] && echo wal || echo no-wal)"
check_eq "... consistent: PRAGMA integrity_check" ok "$(sql "$WORK/b1.db" "pragma integrity_check")"
missing=0
for s in $BEFORE; do
  [ "$(sql "$WORK/b1.db" "select count(*) from certificates where device_serial = '$s' and profile = 'device'")" = 1 ] || missing=$((missing + 1))
done
check_eq "... it holds every certificate a client had received before it began ($(wc -w <<<"$BEFORE") of them)" 0 "$missing"
check "... and issuance went on meanwhile (all $N answered)" test "$(ls "$WORK/got" | wc -l)" = "$N"
check "the server signs a checkpoint of all $N" signed "$N"
cleanup_server
check "the server stopped, the CA keeps its newest checkpoint in its folder (checkpoint.note)" \
  test "$(sed -n 2p "$CA/checkpoint.note")" = "$N"

# ---- restore of the newest copy: checked, put in place, the CA serves it ----
"$CA_BIN" backup --dir "$CA" --out "$WORK/b2.db" >/dev/null
rc=0; out=$("$CA_BIN" restore --dir "$CA" --from "$WORK/b2.db" 2>&1) || rc=$?
check_eq "restore of the newest copy: exit 0" 0 "$rc"
check "... after audit verify's checks on the copy (audit chain, state, log)" \
  bash -c 'grep -q "^audit log intact" <<<"$1" && grep -q "^state tables match the audit" <<<"$1" && grep -q "^issuance log intact: '"$N"' leaves" <<<"$1"' _ "$out"
check "... it extends the checkpoint the CA kept" grep -q "^checkpoint kept in $CA/checkpoint.note extended: size $N" <<<"$out"
check "... the database it replaced kept beside" grep -q "^restored $WORK/b2.db into $CA; the database it replaced: $DB.replaced-" <<<"$out"
check_eq "... owner only" 600 "$(stat -c %a "$DB")"
check "... audit verify passes on the restored CA" "$CA_BIN" audit verify --dir "$CA"
WITH_HTTP=1 start_ca "$CA"
check_eq "... which serves and issues" 200 "$(enroll "CAM$(printf %04d $((N + 1)))")"
check "... and signs its checkpoint" signed $((N + 1))
cleanup_server

# ---- the older copy (b1, before more issuance): flagged, not served until accepted ----
KEPT=$WORK/kept.note
cp "$CA/checkpoint.note" "$KEPT" # what a station or witness kept
rc=0; out=$("$CA_BIN" restore --dir "$CA" --from "$WORK/b1.db" 2>&1) || rc=$?
check_eq "restore of an older copy: exit 1" 1 "$rc"
check "... it verifies (its chain is whole)" grep -q "^issuance log intact: $held leaves" <<<"$out"
check "... and is flagged: older than the checkpoint the CA kept" \
  grep -q "^ROLLED BACK: the checkpoint kept in $CA/checkpoint.note (size $((N + 1)), audit entries [0-9]*): .*(truncated or rolled back)" <<<"$out"
check "... saying what to do" grep -q "refuses to serve this database until an officer accepts it: camtrust-ca restore --dir $CA --accept-rollback" <<<"$out"
serve_refuses "the older copy put back" "the database is older than checkpoint.note (size $((N + 1)), audit entries"
verify_says "the older copy put back" "checkpoint kept by the CA CONTRADICTED: the database is older than checkpoint.note"
rc=0; out=$("$CA_BIN" log sth --dir "$CA" 2>&1) || rc=$?
check "... and no checkpoint is signed over it (log sth refused)" grep -q "^1 camtrust-ca: the database is older than checkpoint.note" <<<"$rc $out"
check_eq "... nor was one recorded" "$(sql "$WORK/b1.db" "select count(*) from log_checkpoints")" "$(sql "$DB" "select count(*) from log_checkpoints")"
rc=0; out=$("$CA_BIN" restore --dir "$CA" --accept-rollback 2>&1) || rc=$?
check_eq "an officer accepts the rollback: exit 0" 0 "$rc"
check "... it says both sizes" grep -q "^rollback accepted (audited: ca.rollback_accept): the log went back from size $((N + 1)) .* to $held " <<<"$out"
check_eq "... audited with both sizes and the superseded checkpoint's hash" \
  "cli|ok|kept_size=$((N + 1)) log_size=$held kept_sha256=$(sha256sum <"$KEPT" | cut -c1-64)" \
  "$(sql "$DB" "select actor, outcome, substr(detail, instr(detail, 'kept_size='), instr(substr(detail, instr(detail, 'kept_size=')), ' ') - 1)
     || ' ' || substr(detail, instr(detail, 'log_size='), instr(substr(detail, instr(detail, 'log_size=')), ' ') - 1)
     || ' ' || substr(detail, instr(detail, 'kept_sha256='), 76) from audit where action = 'ca.rollback_accept'")"
check "... the superseded checkpoint kept beside as evidence" cmp "$KEPT" "$(ls "$CA"/checkpoint.note.rolled-back-* | head -1)"
check "... audit verify passes" "$CA_BIN" audit verify --dir "$CA"
verify_says "... a station's or witness's kept checkpoint still shows the rollback" "(truncated or rolled back)" --checkpoint "$KEPT"
WITH_HTTP=1 start_ca "$CA"
check "... the CA serves again, its checkpoint from the restored log on" signed "$held"
missing=0
for s in $BEFORE; do
  [ "$(sql "$DB" "select count(*) from certificates where device_serial = '$s' and status = 'valid'")" = 1 ] || missing=$((missing + 1))
done
check_eq "... holding every certificate issued before the backup" 0 "$missing"
cleanup_server
rc=0; out=$("$CA_BIN" restore --dir "$CA" --accept-rollback 2>&1) || rc=$?
check_eq "accepting again: nothing to accept" "0 nothing to accept: the database extends $CA/checkpoint.note" "$rc $out"

# ---- a kept checkpoint given with --checkpoint (a witness's state.note: the CA's note with its cosignature) flags a
# copy too ----
"$CA_BIN" backup --dir "$CA" --out "$WORK/b3.db" >/dev/null
W=$WORK/state.note
{ cat "$KEPT"; echo "— witness.example.org/w1 $(head -c 76 /dev/urandom | base64 -w0)"; } >"$W"
rc=0; out=$("$CA_BIN" restore --dir "$CA" --from "$WORK/b3.db" --checkpoint "$W" 2>&1) || rc=$?
check "a copy that forks from a witness's kept checkpoint (--checkpoint): flagged, exit 1" \
  grep -q "^1 ROLLED BACK: the checkpoint kept in $W (size $((N + 1))" <<<"$rc $(grep ROLLED <<<"$out" | head -1)"
serve_refuses "... kept in checkpoint.note from then on" "the database is older than checkpoint.note (size $((N + 1))"
"$CA_BIN" restore --dir "$CA" --accept-rollback >/dev/null
check "... accepted: the CA starts" "$CA_BIN" audit verify --dir "$CA"

# ---- bad copies: one line, the folder left byte for byte ----
"$CA_BIN" backup --dir "$CA" --out "$WORK/good.db" >/dev/null
SIZE=$(stat -c %s "$WORK/good.db")
head -c $((SIZE / 2)) "$WORK/good.db" >"$WORK/truncated.db"
cp "$WORK/good.db" "$WORK/corrupt.db"
dd if=/dev/urandom of="$WORK/corrupt.db" bs=1 seek=$((SIZE / 2)) count=4096 conv=notrunc 2>/dev/null
echo "not a database" >"$WORK/text.db"
cp "$WORK/good.db" "$WORK/forged.db"
sqlite3 "$WORK/forged.db" "DROP TRIGGER audit_no_update; UPDATE audit SET detail = 'forged' WHERE seq = 5"
cp "$WORK/good.db" "$WORK/newer.db"
sqlite3 "$WORK/newer.db" "PRAGMA user_version = 99"
cp "$WORK/good.db" "$WORK/roots.db" # a CA under other roots, as its audit records them
sqlite3 "$WORK/roots.db" "DROP TRIGGER audit_no_update; UPDATE audit SET detail = replace(detail, 'sha256=', 'sha256=0')
  WHERE action = 'ca.cert' AND subject = 'root.pem'"
cp "$WORK/good.db" "$WORK/live.db"
printf 'WAL frames\n' >"$WORK/live.db-wal"
ca_create "$WORK/other" >/dev/null # another CA under the same offline roots
"$CA_BIN" backup --dir "$WORK/other" --out "$WORK/other.db" >/dev/null
refused() { # refused WHAT FILE TEXT
  local before rc=0 err; before=$(folder)
  err=$("$CA_BIN" restore --dir "$CA" --from "$2" 2>&1 >/dev/null) || rc=$?
  check_eq "$1: exit 1" 1 "$rc"
  check "... one line: $3" test "$(wc -l <<<"$err") $(grep -cF -- "$3" <<<"$err")" = "1 1"
  check_eq "... the CA folder byte for byte as it was" "$before" "$(folder)"
}
refused "a truncated copy" "$WORK/truncated.db" "camtrust-ca: $WORK/truncated.db"
refused "a copy with damaged pages" "$WORK/corrupt.db" "camtrust-ca: $WORK/corrupt.db"
refused "a file that is no database" "$WORK/text.db" "camtrust-ca: $WORK/text.db is not a SQLite database"
refused "a copy with an audit entry edited" "$WORK/forged.db" "camtrust-ca: $WORK/forged.db does not verify (above): nothing restored"
refused "a copy of a schema newer than this build" "$WORK/newer.db" "camtrust-ca: $WORK/newer.db: database schema 99 is newer than this build"
refused "a live database's file, its WAL beside it" "$WORK/live.db" "camtrust-ca: $WORK/live.db has a write-ahead log beside it"
refused "a copy whose audit records other roots" "$WORK/roots.db" "camtrust-ca: $WORK/roots.db is another CA's database: its root.pem is not $CA/root.pem"
refused "another CA's copy" "$WORK/other.db" "camtrust-ca: $WORK/other.db is another CA's database"
check "the CA still verifies" "$CA_BIN" audit verify --dir "$CA"
WITH_HTTP=1 start_ca "$CA"
rc=0; out=$("$CA_BIN" restore --dir "$CA" --from "$WORK/good.db" 2>&1) || rc=$?
check_eq "restore while the CA serves: refused" "1 camtrust-ca: $CA is being served: stop its server first" "$rc $out"
cleanup_server

# ---- the copy from before a revocation, no checkpoint signed since (a revocation does not grow the log): the
# database it would replace shows it; nothing restored until an officer accepts, the acceptance audited ----
"$CA_BIN" backup --dir "$CA" --out "$WORK/unrevoked.db" >/dev/null
REVOKED=$(sql "$DB" "select cert_serial_hex from certificates where status = 'valid' and profile = 'device' limit 1")
"$CA_BIN" revoke --dir "$CA" "$REVOKED" --reason keyCompromise >/dev/null
COPY=$(sql "$WORK/unrevoked.db" "select max(seq) from audit")
LIVE=$(sql "$DB" "select max(seq) from audit")
# (compared with the database being replaced, whose empty WAL SQLite removes at the close: not the CA's data)
data() { folder | grep -v -- '-wal$\|-shm$'; }
before=$(data)
rc=0; err=$("$CA_BIN" restore --dir "$CA" --from "$WORK/unrevoked.db" 2>&1 >/dev/null) || rc=$?
check_eq "restore of the copy from before a revocation: exit 1" 1 "$rc"
check "... one line naming what it would undo" test "$(wc -l <<<"$err") $(grep -c "^camtrust-ca: the database replaced has $LIVE audit entries, the copy $COPY: restoring it undoes the last $((LIVE - COPY)) .*nothing restored" <<<"$err")" = "1 1"
check_eq "... the CA folder byte for byte as it was" "$before" "$(data)"
check_eq "... the certificate still revoked" revoked "$(sql "$DB" "select status from certificates where cert_serial_hex = '$REVOKED'")"
rc=0; out=$("$CA_BIN" restore --dir "$CA" --from "$WORK/unrevoked.db" --accept-rollback 2>&1) || rc=$?
check "... an officer accepts it (--accept-rollback): exit 0, flagged" test "$rc $(grep -c "^ROLLED BACK: the database replaced has $LIVE audit entries" <<<"$out")" = "0 1"
check "... and is not told there was nothing to accept" bash -c "! grep -q 'nothing to accept' <<<'$out'"
check_eq "... the acceptance audited in the restored chain, with both lengths" \
  "$((COPY + 1))|cli|ok|replaced_audit_entries=$LIVE audit_entries=$COPY" \
  "$(sql "$DB" "select seq, actor, outcome, replace(detail, substr(detail, instr(detail, ' replaced_audit_sha256='), 87), '') from audit
     where action = 'ca.rollback_accept' and detail like '%replaced_audit_entries=%'" | sed 's/v=2 //')"
check "... audit verify passes" "$CA_BIN" audit verify --dir "$CA"

# ---- a backup killed before its rename: no copy, and the next one removes its temporary file ----
rc=0; CAMTRUST_FAILPOINT=backup:synced "$CA_BIN" backup --dir "$CA" --out "$WORK/k.db" >/dev/null 2>&1 || rc=$?
check_eq "a backup killed before its rename: no file, its temporary left" "137 0 1" \
  "$rc $(ls "$WORK" | grep -c '^k\.db$') $(ls "$WORK" | grep -c '^k\.db\.tmp\.')"
"$CA_BIN" backup --dir "$CA" --out "$WORK/k.db" >/dev/null
check_eq "... the next backup writes the file and removes the temporary" "1 0" \
  "$(ls "$WORK" | grep -c '^k\.db$') $(ls "$WORK" | grep -c '^k\.db\.tmp\.')"

# ---- --out naming the live database (or its WAL), directly or through another path: refused, nothing changed ----
ln -s "$CA" "$WORK/ca-link"
sum=$(sha256sum "$CA/camtrust.db" | cut -c1-64)
for out in "$CA/camtrust.db" "$WORK/ca-link/camtrust.db" "$CA/camtrust.db-wal" "$CA/../$(basename "$CA")/camtrust.db-shm"; do
  rc=0; msg=$("$CA_BIN" backup --dir "$CA" --out "$out" 2>&1) || rc=$?
  check_eq "backup --out $out: refused in one line naming the live database" "1 1 1" \
    "$rc $(wc -l <<<"$msg") $(grep -c "is the CA's live database" <<<"$msg")"
done
check_eq "... the database untouched" "$sum" "$(sha256sum "$CA/camtrust.db" | cut -c1-64)"

# ---- a restore killed between its writes: the old database or the new one, never a mix ----
"$CA_BIN" backup --dir "$CA" --out "$WORK/new.db" >/dev/null
NEW=$(sql "$WORK/new.db" "select max(seq) from audit")
for point in restore:staged restore:folded restore:renamed; do
  "$CA_BIN" station disable --dir "$CA" line1 >/dev/null # a state of the live database the copy does not have
  OLD=$(sql "$DB" "select max(seq) from audit")
  # (the copy lacks the live database's newest entries: accepted, which the copy records before it is put in place)
  rc=0; CAMTRUST_FAILPOINT=$point "$CA_BIN" restore --dir "$CA" --from "$WORK/new.db" --accept-rollback >/dev/null 2>&1 || rc=$?
  have=$(sql "$DB" "select max(seq) from audit")
  state=$(sql "$DB" "select enabled from stations where name = 'line1'")
  check "killed at $point (exit $rc): the old database ($OLD entries, station disabled) or the new ($((NEW + 1)), enabled)" \
    test "$have $state" = "$OLD 0" -o "$have $state" = "$((NEW + 1)) 1"
  check "... whole: audit verify passes" "$CA_BIN" audit verify --dir "$CA"
  "$CA_BIN" station enable --dir "$CA" line1 >/dev/null 2>&1 || true
done
check_eq "the next restore finishes, and removes what the killed ones left" "0 0" \
  "$("$CA_BIN" restore --dir "$CA" --from "$WORK/new.db" --accept-rollback >/dev/null 2>&1; echo $?) $(ls -a "$CA" | grep -c '^\.restore-')"

# ---- a folder whose records are in PostgreSQL: pg_dump's business, said in one line ----
cp "$CA/camtrust-ca.conf" "$WORK/conf.saved"
sed -i 's|^db.backend *=.*|db.backend = postgresql|; s|^db.url *=.*|db.url = host=127.0.0.1 port=9 dbname=ca|' "$CA/camtrust-ca.conf"
rc=0; out=$("$CA_BIN" backup --dir "$CA" --out "$WORK/pg.db" 2>&1) || rc=$?
check_eq "backup of a PostgreSQL folder: refused, naming pg_dump" "1 1" "$rc $(grep -c "keeps its records in PostgreSQL: back them up with pg_dump" <<<"$out")"
rc=0; out=$("$CA_BIN" restore --dir "$CA" --from "$WORK/new.db" 2>&1) || rc=$?
check_eq "... restore --from too, naming pg_restore" "1 1" "$rc $(grep -c "keeps its records in PostgreSQL: restore them with pg_restore" <<<"$out")"
cp "$WORK/conf.saved" "$CA/camtrust-ca.conf"

# ---- a folder that lost its database: the copy restored into it ----
rm -f "$DB" "$DB-wal" "$DB-shm"
rc=0; out=$("$CA_BIN" restore --dir "$CA" --from "$WORK/new.db" 2>&1) || rc=$?
check_eq "a folder without its database: restored" "0 restored $WORK/new.db into $CA" "$rc $(tail -1 <<<"$out")"
check "... and it verifies" "$CA_BIN" audit verify --dir "$CA"

# ---- the serving lock on a folder that is no CA's yet: nothing left in it, init takes it ----
mkdir "$WORK/fresh"
rc=0; "$CA_BIN" db migrate-to --dir "$WORK/fresh" --url "host=127.0.0.1 port=9 dbname=ca" >/dev/null 2>&1 || rc=$?
check_eq "db migrate-to given a folder before its init: refused, the folder left empty" "1 " "$rc $(ls -A "$WORK/fresh")"
check "... and init takes it" "$CA_BIN" init --dir "$WORK/fresh"
finish
