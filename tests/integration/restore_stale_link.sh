#!/usr/bin/env bash
# A restore run as root in a CA folder another user serves first removes what killed restores left there (stages
# .restore-<dead pid>). The folder's owner plants one, a subfolder of many files, and the moment root starts emptying
# that subfolder (inotify: its first file removed), swaps it for a link to a folder of root's holding files of the
# same names. Root removed the stage by path (nftw: each file by its full name, the subfolder's name resolved again
# each time): through the link, root's own files went. Now every folder is opened relative to the one holding it,
# never through a link, and every name removed relative to that: root's files stay. Runs as root with setpriv (else
# skipped).
# Usage: restore_stale_link.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/owner_lib.sh"
N=3000 # files in the planted subfolder: root is still removing them when the swap is done

"$ROOT_BIN" backup --dir "$CA" --out "$OWN/copy.db" >/dev/null
VICTIM=$OWN/root-only # root's, owner only: the owner may not touch it
mkdir -m 700 "$VICTIM"
(cd "$VICTIM" && seq -f 'f%05g' "$N" | xargs touch)
sh -c 'exit 0' &
dead=$!
wait "$dead"
STAGE=$CA/.restore-$dead
as_owner() { setpriv --reuid="$OWNER" --regid="$OWNER" --clear-groups -- "$@"; }
# a python3 the owner may run (root's own may lie under a folder of root's: pyenv under /root)
PY=
for p in /usr/bin/python3 /usr/local/bin/python3 "$(command -v python3)"; do
  if as_owner "$p" -c '' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "skipped: no python3 the folder's owner may run"; exit 77; }
as_owner mkdir -p "$STAGE/sub"
as_owner sh -c "cd '$STAGE/sub' && seq -f 'f%05g' $N | xargs touch"
# the owner's watcher: at the first file removed from sub, sub moved aside and a link to root's folder put there
as_owner "$PY" - "$STAGE" "$VICTIM" >"$WORK/watcher.out" 2>&1 <<'EOF' &
import ctypes, os, signal, sys
stage, victim = sys.argv[1], sys.argv[2]
signal.alarm(60)
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(0)
if fd < 0 or libc.inotify_add_watch(fd, os.path.join(stage, "sub").encode(), 0x200) < 0:  # IN_DELETE
    sys.exit("inotify: %s" % os.strerror(ctypes.get_errno()))
print("ready", flush=True)
os.read(fd, 4096)
os.rename(os.path.join(stage, "sub"), os.path.join(stage, "moved"))
os.symlink(victim, os.path.join(stage, "sub"))
print("swapped", flush=True)
EOF
watcher=$!
BG_PIDS+=("$watcher")
for _ in $(seq 100); do grep -q ready "$WORK/watcher.out" && break; sleep 0.1; done
check "the owner watches its planted stage ($(basename "$STAGE"))" grep -q ready "$WORK/watcher.out"
rc=0; out=$("$ROOT_BIN" restore --dir "$CA" --from "$OWN/copy.db" 2>&1) || rc=$?
wait "$watcher" || true
BG_PIDS=()
check "... and swapped its subfolder for a link to root's folder while root removed it" grep -q swapped "$WORK/watcher.out"
check_eq "root's $N files all stay (restore exit $rc: ${out//$'\n'/ })" "$N" "$(find "$VICTIM" -type f | wc -l)"
check "... the link itself is the owner's, not followed" test -L "$STAGE/sub" -o ! -e "$STAGE/sub"
finish
