#!/usr/bin/env bash
# A kill during a start never loses the token. SoftHSM rewrites the token's token.object (its wrapped PINs and token
# key) in place at every login: truncated to 0, then written. A CA killed in between (kill -9, a power cut) left it
# empty and every later command failed with "no token labelled ...": every key of the CA gone. Killed exactly there
# (strace injects SIGKILL at that write), then by kill -9 at random moments of its starts, the CA's next command
# opens its token and MACs its whole audit chain in it. Killed as the copy itself is written, its temporary is removed
# at the next write. A start while another process logs in waits for that write instead of taking its file for empty.
# Usage: token_object_kill.sh BUILD_DIR
BUILD=$(cd "$1" && pwd)
CA_BIN=$BUILD/ca/camtrust-ca
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/token_kill_lib.sh"
cd "$WORK"

"$CA_BIN" init --dir ca >/dev/null
OBJECT=$(token_object "$WORK/ca")
opens() { "$CA_BIN" audit verify --dir ca >/dev/null 2>&1; }
check "the CA's token opens and MACs its audit chain" opens
check "... and a copy of its token.object is kept beside it, 0600" test "$(stat -c %a "$OBJECT~")" = 600

# ---- killed right after SoftHSM truncated token.object, before it wrote it again ----
killed_at_token_write "a start of the CA" "$OBJECT" "$CA_BIN" audit verify --dir ca
check "the next start opens the token and MACs the audit chain in it" opens
check "... and token.object is whole again" test -s "$OBJECT"

# ---- killed while the copy itself is written: its temporary is swept at the next write (once its writer is dead) ----
# (the copy's is the only rename of `audit verify`; strace -P does not match rename's paths)
rc=0
{ ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o /dev/null -e trace=rename -e inject=rename:signal=KILL \
  "$CA_BIN" audit verify --dir ca >/dev/null 2>&1; } 2>/dev/null || rc=$?
check_eq "a start killed as it renames the copy's temporary into place: it died there" 137 "$rc"
stale() { ls "$(dirname "$OBJECT")" | grep -c '^token\.object~\.tmp\.[0-9]*$' || true; }
check_eq "... leaving its temporary token.object~.tmp.PID" 1 "$(stale)"
printf 'live' >"$OBJECT~.tmp.$$" # one a live process (this shell) is writing
check "the next start opens the token" opens
check_eq "... and removed the dead process's temporary, not the live one's" \
  "token.object~.tmp.$$" "$(ls "$(dirname "$OBJECT")" | grep '\.tmp\.')"
rm -f "$OBJECT~.tmp.$$"
# A file beside the tokens in the store (an operator's note) is no token: the copies go on (the sweep stopped at it,
# and with it every copy after it, with a token_object_copy warning at every start).
printf 'note' >"$WORK/ca/tokens/NOTE"
out=$("$CA_BIN" audit verify --dir ca 2>&1 >/dev/null) || true
check "a file beside the tokens in the store: the start warns of no copy it could not write" \
  bash -c '! grep -q token_object_copy <<<"$0"' "$out"
rm "$WORK/ca/tokens/NOTE"

# ---- a start while another process logs in to the same token ----
# SoftHSM truncates token.object under an fcntl write lock, then writes it again. A start that took the empty file
# for one a kill left put the copy over it, and the other process's write went to the file that rename unlinked
# (the old code). Played by a writer that takes that lock and truncates, and writes again only once the start waits
# on the lock (/proc/locks) or has ended: the start waits, puts nothing over it, and the write lands.
cat >"$WORK/writer.py" <<'PY'
import fcntl, os, sys, time
path, held, pidfile = sys.argv[1:4]
f = open(path, 'r+b')
data = f.read()
fcntl.lockf(f, fcntl.LOCK_EX)
f.truncate(0)
open(held, 'w').close()
ino = os.fstat(f.fileno()).st_ino
def waiting():  # a lock request blocked on this file
    return any('->' in l and l.split()[-3].split(':')[-1] == str(ino) for l in open('/proc/locks'))
def ended(pid):
    try: return open('/proc/%d/stat' % pid).read().split(')')[-1].split()[0] in 'ZX'
    except OSError: return True
for _ in range(1200):
    if os.path.exists(pidfile) and open(pidfile).read().strip():
        if waiting() or ended(int(open(pidfile).read())): break
    time.sleep(0.05)
f.seek(0); f.write(data); f.flush(); os.fsync(f.fileno())
st = os.fstat(f.fileno())
print('kept' if st.st_nlink > 0 and st.st_ino == os.stat(path).st_ino else 'lost')
fcntl.lockf(f, fcntl.LOCK_UN)
PY
rm -f "$WORK/held" "$WORK/starter.pid"
python3 "$WORK/writer.py" "$OBJECT" "$WORK/held" "$WORK/starter.pid" >"$WORK/writer.out" &
writer=$!
for _ in $(seq 1 600); do [ -e "$WORK/held" ] && break; sleep 0.05; done
"$CA_BIN" audit verify --dir ca >/dev/null 2>&1 &
starter=$!
echo "$starter" >"$WORK/starter.pid"
wait "$writer" || true
rc=0; wait "$starter" || rc=$?
check_eq "a start while another process's login has token.object truncated: that write lands in token.object" \
  kept "$(cat "$WORK/writer.out")"
check_eq "... and the start (having waited) opens the token" 0 "$rc"
check "... token.object whole" test -s "$OBJECT"
check "... and the next start opens the token" opens

# The same with SoftHSM itself as the writer: a CA's login held (strace) with token.object empty while another CA
# starts, once right after SoftHSM truncated it (its write lock held), once at its write (SoftHSM 2.6.1 has unlocked
# by then: stdio flushes at fclose). token.object stays the file both write in place (the old code renamed the copy
# over it, another file; with the lock alone, the second case did too).
for held in ftruncate:delay_exit write:delay_enter; do
  ino=$(stat -c %i "$OBJECT")
  ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o /dev/null -P "$OBJECT" -e trace="${held%%:*}" \
    -e inject="$held=3000000" "$CA_BIN" audit verify --dir ca >/dev/null 2>&1 &
  writer=$!
  for _ in $(seq 1 1000); do [ -s "$OBJECT" ] || break; sleep 0.01; done
  size=$(stat -c %s "$OBJECT")
  rc=0; "$CA_BIN" audit verify --dir ca >/dev/null 2>&1 || rc=$?
  wrc=0; wait "$writer" || wrc=$?
  check_eq "a start while a SoftHSM login elsewhere is held at its ${held%%:*} of token.object (empty): both open it" \
    "0 0 0" "$size $wrc $rc"
  check_eq "... and token.object is still the file SoftHSM rewrites in place (no copy put over it)" "$ino" \
    "$(stat -c %i "$OBJECT")"
  check "... whole, and the next start opens the token" opens
done

# ---- a whole token.object is never replaced by the copy ----
printf 'junk' >"$OBJECT~"
check "a start with a damaged copy beside a whole token.object opens the token" opens
check "... and keeps a good copy again" test "$(stat -c %s "$OBJECT~")" = "$(stat -c %s "$OBJECT")"

# ---- a copy that cannot be written (here a folder in its place; a full disk on a camera) is no reason not to open ----
rm -f "$OBJECT~"; mkdir -p "$OBJECT~/x"
OUT=$("$CA_BIN" audit verify --dir ca 2>&1) && rc=0 || rc=$?
check_eq "a start whose copy of token.object cannot be written opens the token all the same" 0 "$rc"
check "... and says so in a warning" grep -q 'event=token_object_copy' <<<"$OUT"
rm -rf "$OBJECT~"
# (the kills below need a copy to put back: CI's first kills, on a loaded machine, all came before a start had made
# it again, and one left token.object empty with no copy, every key gone, as a CA upgraded from before the copy was)
check "the next start keeps a copy again" bash -c '"$0" audit verify --dir ca && test -s "$1"' "$CA_BIN" "$OBJECT~"

# ---- kill -9 at random moments of starts (up to 150), spread over one start's length as measured here ----
t0=$(date +%s%N); opens || true; start_ms=$((($(date +%s%N) - t0) / 1000000 + 1))
emptied=0
for i in $(seq 1 150); do
  "$CA_BIN" audit verify --dir ca >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '0.%03d' $((RANDOM % (start_ms < 1000 ? start_ms : 999))))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ ! -s "$OBJECT" ]; then
    emptied=$((emptied + 1))
    check "kill -9 $i left token.object empty: the next start opens the token" opens
    [ "$emptied" -lt 3 ] || break
  fi
done
echo "# $emptied of $i kills -9 left token.object empty (a start takes $start_ms ms here)"
check "after $i kills -9 the token opens and MACs the audit chain" opens
finish
