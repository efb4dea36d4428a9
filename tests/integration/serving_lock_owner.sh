#!/usr/bin/env bash
# A command run as root in a CA folder that another user serves (deploy/: the folder is camtrust's, `serve` runs as
# User=camtrust): the serving.lock root made was root's, 0600 (and so was the database a restore put in place), and
# that user's server could no longer open it and refused to start. The lock root makes and the database it restores
# go to the folder's owner (as SQLite's WAL and journal go to the database's);
# one an older build left root's stays root's (it may be a link to a file of root's), and the server's refusal says
# whose it is and what to do; a link the folder's owner put there is neither followed nor given away, even when it
# removes its link while root holds the file open (one link left: only the file root itself made is given away). Runs as root with setpriv (else skipped).
# Usage: serving_lock_owner.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/owner_lib.sh"
LOCK=$CA/serving.lock
echo "not a database" >"$WORK/junk"
# as_root_command: a command run as root that takes the serving lock (a restore of a bad file: refused after it)
as_root_command() { "$ROOT_BIN" restore --dir "$CA" --from "$WORK/junk" >/dev/null 2>"$WORK/root.err" || true; }

rm -f "$LOCK"
as_root_command
check "the command run as root took the lock (and refused the bad file)" grep -q 'not a SQLite database' "$WORK/root.err"
check_eq "the lock root made is the folder's owner's, owner only" "$OWNER:$OWNER 600" "$(stat -c '%u:%g %a' "$LOCK")"
check "the folder's owner then serves it" serves_as_owner

# a lock an older build left as root's
chown 0:0 "$LOCK"
rc=0; bounded 30 "$WORK/as-owner" serve --dir "$CA" --listen 127.0.0.1:0 >"$WORK/serve.out" 2>&1 || rc=$?
check_eq "the owner's server refuses to start on it" 1 "$rc"
check "... saying whose it is and what to do" grep -q "cannot open $LOCK: Permission denied (it belongs to uid 0, \
the folder to uid $OWNER: give it to the folder's owner" "$WORK/serve.out"
as_root_command
check_eq "the next command run as root leaves it as it is (it cannot tell it from a link to a file of root's)" "0:0" \
  "$(stat -c '%u:%g' "$LOCK")"
chown "$OWNER:$OWNER" "$LOCK" # the cure serve names
check "given to the folder's owner as serve says, the folder's owner serves it again" serves_as_owner

# a whole backup and restore run as root: the database restore puts in place is the folder owner's too
"$ROOT_BIN" backup --dir "$CA" --out "$WORK/copy.db" >/dev/null 2>&1
check "a restore run as root restores" "$ROOT_BIN" restore --dir "$CA" --from "$WORK/copy.db"
check_eq "... a database of the folder's owner, owner only" "$OWNER:$OWNER 600" "$(stat -c '%u:%g %a' "$CA/camtrust.db")"
check "the folder's owner serves the restored CA" serves_as_owner

# links the folder's owner put in its place: root neither follows nor gives away what they name
echo secret >"$OWN/root-file"
chmod 600 "$OWN/root-file"
rm -f "$LOCK"
ln -s "$OWN/root-file" "$LOCK"
as_root_command
check "a symbolic link is not followed: refused" grep -q "cannot open $LOCK: Too many levels of symbolic links" \
  "$WORK/root.err"
rm -f "$LOCK"
ln "$OWN/root-file" "$LOCK"
as_root_command
check "a hard link is locked but not given away" grep -q 'not a SQLite database' "$WORK/root.err"
check_eq "the file named stays root's" "0:0 600" "$(stat -c '%u:%g %a' "$OWN/root-file")"
# the owner removes its hard link once root has the file open (held at lock:opened): one link left, root's file
rm -f "$WORK/release" "$LOCK"
ln "$OWN/root-file" "$LOCK"
CAMTRUST_FAILPOINT=lock:opened CAMTRUST_FAILPOINT_RELEASE=$WORK/release "$ROOT_BIN" restore --dir "$CA" \
  --from "$WORK/junk" >/dev/null 2>"$WORK/held.err" &
held=$!
for _ in $(seq 1 600); do grep -q 'event=failpoint_held' "$WORK/held.err" && break; sleep 0.05; done
check "a command run as root held with the linked file open" grep -q 'event=failpoint_held' "$WORK/held.err"
setpriv --reuid="$OWNER" --regid="$OWNER" --clear-groups -- rm -f "$LOCK"
touch "$WORK/release"
wait "$held" || true
check_eq "the file it had open, its link in the folder removed meanwhile, stays root's" "0:0 600" \
  "$(stat -c '%u:%g %a' "$OWN/root-file")"
rm -f "$LOCK"
finish
