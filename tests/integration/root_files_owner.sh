#!/usr/bin/env bash
# Commands run as root in a CA folder another user serves (deploy/: User=camtrust) left it files of root's, owner
# only, that the service could neither use nor remove: the CA id an older folder gets at its first open, a killed
# restore's stage folder (.restore-PID, which the next restore, not run as root, could not remove: it refused), a
# backup's file (and its temporary, and SQLite's journal beside it) written into a folder of that user. Each is now
# given to the folder's owner when root makes it (O_EXCL, in the folder opened once, no link followed), as
# serving.lock is (serving_lock_owner.sh). The config db migrate-to rewrites: db_pg.sh. And no link the folder's
# owner plants is followed (a `secrets` link at db migrate-to, or its kept db.password swapped for one before root
# reads it back, a restore's stage or a backup's temporary swapped for one). Runs as root with setpriv (else skipped).
# Usage: root_files_owner.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/owner_lib.sh"
owned() { stat -c '%u:%g %a' "$1"; }

# ---- the CA id, made at the first open of a folder that has none (an older one, whose database names no CA yet:
# this one's does, so the command is refused after making it, and the id is put back after) ----
id=$(cat "$CA/ca-id")
rm -f "$CA/ca-id"
"$ROOT_BIN" audit verify --dir "$CA" >/dev/null 2>&1 || true
check_eq "the CA id a command run as root made is the folder's owner's, owner only" "$OWNER:$OWNER 600" \
  "$(owned "$CA/ca-id" 2>&1)"
echo "$id" >"$CA/ca-id"

# ---- a backup run as root into a folder of the owner's ----
BACKUPS=$OWN/backups
mkdir "$BACKUPS"
chown "$OWNER:$OWNER" "$BACKUPS"
CAMTRUST_FAILPOINT=backup:synced "$ROOT_BIN" backup --dir "$CA" --out "$BACKUPS/copy.db" >/dev/null 2>&1 || true
tmp=$(ls "$BACKUPS" | grep '^copy\.db\.tmp\.[0-9]*$' || true)
check "a backup run as root, killed before its rename, left its temporary ($tmp)" test -n "$tmp"
[ -z "$tmp" ] || check_eq "... the folder's owner's" "$OWNER:$OWNER 600" "$(owned "$BACKUPS/$tmp")"
check "a whole backup run as root" "$ROOT_BIN" backup --dir "$CA" --out "$BACKUPS/copy.db"
check_eq "... is the folder's owner's, owner only" "$OWNER:$OWNER 600" "$(owned "$BACKUPS/copy.db")"

# ---- a restore run as root, killed with its stage made ----
rc=0; CAMTRUST_FAILPOINT=restore:staged "$ROOT_BIN" restore --dir "$CA" --from "$BACKUPS/copy.db" >/dev/null 2>&1 || rc=$?
check_eq "a restore run as root killed with its copy staged" 137 "$rc"
stage=$(ls -a "$CA" | grep '^\.restore-[0-9]*$' || true)
check "... left its stage ($stage)" test -n "$stage"
[ -z "$stage" ] || check_eq "... the folder's owner's, owner only" "$OWNER:$OWNER 700" "$(owned "$CA/$stage")"
[ -z "$stage" ] || check_eq "... and so is the copy in it" "$OWNER:$OWNER 600" \
  "$(owned "$CA/$stage/camtrust.db")"
rc=0; out=$("$WORK/as-owner" restore --dir "$CA" --from "$BACKUPS/copy.db" 2>&1) || rc=$?
check_eq "the folder's owner restores after it (exit $rc: $(tail -1 <<<"$out"))" 0 "$rc"
check_eq "... the killed restore's stage removed" "" "$(ls -a "$CA" | grep '^\.restore-' || true)"
check "the folder's owner serves the restored CA" serves_as_owner
# held_swap POINT MADE SWAP CMD...: CMD run as root, held at its failpoint POINT until MADE (a path, %PID% its pid)
# exists, then SWAP (a shell line, %PID% too) run as the folder's owner, then CMD released; sets rc (CMD's exit).
held_swap() {
  local point=$1 made=$2 swap=$3 pid
  shift 3
  rm -f "$WORK/release"
  CAMTRUST_FAILPOINT=$point CAMTRUST_FAILPOINT_RELEASE=$WORK/release "$@" >"$WORK/held.out" 2>&1 &
  pid=$!
  made=${made//%PID%/$pid}
  for _ in $(seq 300); do [ -e "$made" ] && break; sleep 0.1; done
  check "$point: held with $(basename "$made") made" test -e "$made"
  setpriv --reuid="$OWNER" --regid="$OWNER" --clear-groups -- sh -c "${swap//%PID%/$pid}"
  touch "$WORK/release"
  rc=0; wait "$pid" || rc=$?
}
# ---- db migrate-to run as root, the password from a pipe kept in the folder's secrets/: a `secrets` the folder's
# owner made a link to another folder (here root's, holding a file of that name) must not be followed. It was: root
# replaced that folder's db.password with the password, then (the copy failing: no database there) removed it. ----
VICTIM=$OWN/victim
mkdir -m 700 "$VICTIM"
echo "another service's password" >"$VICTIM/db.password"
# (the token's PIN moved out of its way first, as the folder's owner may: the config is its own)
mv "$CA/secrets" "$CA/pins"
sed -i 's|^hsm.pin_file = .*|hsm.pin_file = pins/user.pin|' "$CA/camtrust-ca.conf"
setpriv --reuid="$OWNER" --regid="$OWNER" --clear-groups -- ln -s "$VICTIM" "$CA/secrets"
rc=0; out=$("$ROOT_BIN" db migrate-to --dir "$CA" --url "host=127.0.0.1 port=1 dbname=none connect_timeout=2" \
  --password-file <(echo pipe-password) 2>&1) || rc=$?
check "db migrate-to run as root with a secrets link is refused (exit $rc)" test "$rc" != 0
check_eq "... and the file in the folder the link names is untouched" "another service's password" \
  "$(cat "$VICTIM/db.password" 2>&1)"
check_eq "... nothing else written there" "db.password" "$(ls -A "$VICTIM")"
check "... the refusal names the link ($(grep -m1 secrets <<<"$out"))" grep -q "secrets.*link" <<<"$out"
rm "$CA/secrets"
mv "$CA/pins" "$CA/secrets"
sed -i 's|^hsm.pin_file = .*|hsm.pin_file = secrets/user.pin|' "$CA/camtrust-ca.conf"
# ---- ... and its kept secrets/db.password, swapped by the folder's owner for a link to another folder's password
# after root wrote it and before root read it back by path to connect: root read the other password and sent it to
# the URL root gave. The URL's server here is the attacker's listener (loopback), which asks for the password in
# clear text and keeps what it gets. ----
# pg_listener OUT: a PostgreSQL server's first words on a loopback port (in $WORK/pg.port): no TLS, the password
# in clear text, which it writes to OUT; one connection, at most 60 s.
pg_listener() {
  rm -f "$WORK/pg.port" "$1"
  python3 - "$WORK/pg.port" "$1" <<'PY' &
import socket, struct, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
s.settimeout(60)
open(sys.argv[1], "w").write("%d\n" % s.getsockname()[1])
c, _ = s.accept()
c.settimeout(20)
def exact(n):
    b = b""
    while len(b) < n:
        more = c.recv(n - len(b))
        if not more:
            sys.exit(0)
        b += more
    return b
while True:  # the startup message, after any TLS or GSS request (refused: "N")
    body = exact(struct.unpack("!I", exact(4))[0] - 4)
    if struct.unpack("!I", body[:4])[0] in (80877103, 80877104):
        c.sendall(b"N")
        continue
    break
c.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
exact(1)
open(sys.argv[2], "w").write(exact(struct.unpack("!I", exact(4))[0] - 4).rstrip(b"\0").decode())
PY
  BG_PIDS+=($!)
  for _ in $(seq 100); do [ -s "$WORK/pg.port" ] && break; sleep 0.1; done
}
pg_listener "$WORK/sent"
"$ROOT_BIN" db migrate-to --dir "$CA" --url "host=127.0.0.1 port=$(cat "$WORK/pg.port") dbname=none connect_timeout=5" \
  --password-file <(echo pipe-password) >/dev/null 2>&1 || true
check_eq "db migrate-to run as root sends the password given to the URL's server" "pipe-password" "$(cat "$WORK/sent" 2>&1)"
check "... and keeps none after failing" test ! -e "$CA/secrets/db.password"
pg_listener "$WORK/sent"
held_swap migrate:password-kept "$CA/secrets/db.password" \
  "rm -f '$CA/secrets/db.password' && ln -s '$VICTIM/db.password' '$CA/secrets/db.password'" \
  "$ROOT_BIN" db migrate-to --dir "$CA" --url "host=127.0.0.1 port=$(cat "$WORK/pg.port") dbname=none connect_timeout=5" \
  --password-file <(echo pipe-password)
check "a kept password swapped for a link to another folder's is refused (exit $rc)" test "$rc" != 0
check "... that folder's password not sent ($(cat "$WORK/sent" 2>&1))" test ! -e "$WORK/sent"
check "... the refusal names the link ($(grep -m1 db.password "$WORK/held.out"))" grep -q "db.password.*link" "$WORK/held.out"
check_eq "... and the file it names is untouched" "another service's password" "$(cat "$VICTIM/db.password" 2>&1)"
rm -f "$CA/secrets/db.password"
# ---- a restore run as root whose stage (the folder's owner's) its owner swaps for a link to another folder, after
# root made it and before the copy goes in: root must not make the copy in the folder the link names. It did (a file
# of root's there, left when the rename out of it failed: another file system here). ----
SHM_VICTIM=$(mktemp -d /dev/shm/camtrust-victim.XXXXXX)
chmod 700 "$SHM_VICTIM"
held_swap restore:stage-made "$CA/.restore-%PID%" \
  "mv '$CA/.restore-%PID%' '$CA/moved-stage' && ln -s '$SHM_VICTIM' '$CA/.restore-%PID%'" \
  "$ROOT_BIN" restore --dir "$CA" --from "$BACKUPS/copy.db"
check_eq "a restore whose stage was swapped for a link made nothing in the folder it names (exit $rc)" "" \
  "$(ls -A "$SHM_VICTIM")"
rm -rf "$SHM_VICTIM" "$CA/moved-stage" "$CA"/.restore-*
check "the folder's owner still serves its CA" serves_as_owner
# ---- a backup run as root into a folder of another user's, who swaps its temporary (given to that user) for a link
# to a SQLite file of root's elsewhere before the copy is written: root must neither write the copy into that file nor
# make it owner only. It did both (SQLite follows a link to the database it opens; chmod too). ----
ROOT_ONLY=$OWN/root-only
mkdir -m 700 "$ROOT_ONLY"
sqlite3 "$ROOT_ONLY/app.db" "create table precious(a); insert into precious values (42)"
chmod 644 "$ROOT_ONLY/app.db"
held_swap backup:temp-made "$BACKUPS/swapped.db.tmp.%PID%" \
  "rm -f '$BACKUPS/swapped.db.tmp.%PID%' && ln -s '$ROOT_ONLY/app.db' '$BACKUPS/swapped.db.tmp.%PID%'" \
  "$ROOT_BIN" backup --dir "$CA" --out "$BACKUPS/swapped.db"
check_eq "... swapped for a link to root's SQLite file: that file keeps its own content (exit $rc)" "42" \
  "$(sqlite3 "$ROOT_ONLY/app.db" "select a from precious" 2>&1)"
check_eq "... and its mode" "644" "$(stat -c %a "$ROOT_ONLY/app.db")"
rm -f "$BACKUPS"/swapped.db*
ln -s "$BACKUPS" "$OWN/backups-link" # the operator's own link (a backup disk): still followed
check "a backup into a folder named through a link of the operator's" \
  "$ROOT_BIN" backup --dir "$CA" --out "$OWN/backups-link/linked.db"
check "... is there" test -f "$BACKUPS/linked.db"
finish
