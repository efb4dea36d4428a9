#!/usr/bin/env bash
# Every binary answers --help (and -h) with its usage on stdout and exit 0; an unknown command or option is still
# a usage error, exit 2: an unknown command gets the usage on stderr, an unknown option (where the binary names it)
# and an option a command does not take one line naming it, nothing done.
# Usage: cli_help.sh BUILD_DIR
BUILD=$1
. "$(dirname "$0")/lib.sh"
# camtrust-ca opens its CA before it reads the command: give it a real one.
CA_BIN=$BUILD/ca/camtrust-ca
ca_create "$WORK/ca" >/dev/null
for bin in ca/camtrust-ca provision/camtrust-station device-agent/camtrust-agent device-agent/camtrust-agent-sim verify/camtrust-verify view/camtrust-view; do
  b=$BUILD/$bin name=$(basename "$bin")
  for flag in --help -h; do
    rc=0; "$b" $flag >"$WORK/out" 2>"$WORK/err" || rc=$?
    check_eq "$name $flag exits 0" 0 "$rc"
    check "... with its usage on stdout" grep -q "^usage: $name" "$WORK/out"
    check "... and nothing on stderr" test ! -s "$WORK/err"
  done
  rc=0; "$b" init --help >"$WORK/out" 2>/dev/null || rc=$?
  check_eq "$name COMMAND --help exits 0 too" 0 "$rc"
  rc=0; "$b" no-such-command --dir "$WORK/$( [ "$name" = camtrust-ca ] && echo ca || echo x)" >"$WORK/out" 2>"$WORK/err" || rc=$?
  check_eq "$name with an unknown command exits 2" 2 "$rc"
  check "... with its usage on stderr, nothing on stdout" bash -c "grep -q '^usage: $name' '$WORK/err' && test ! -s '$WORK/out'"
  rc=0; "$b" --no-such-option >"$WORK/out" 2>"$WORK/err" || rc=$?
  check_eq "$name with an unknown option exits 2" 2 "$rc"
done

# An option a command does not take is refused, not ignored (the operator would believe it applied): exit 2, one line
# "COMMAND does not take OPTION", nothing on stdout, nothing written or done.
not_taken() { # not_taken COMMAND_AND_OPTION OPTION BIN ARGS...
  local what=$1 opt=$2 rc=0; shift 2
  rm -f "$WORK/stray"
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  if [ "$rc" = 2 ] && [ "$(wc -l <"$WORK/err")" = 1 ] && grep -q -- "does not take $opt\$" "$WORK/err" &&
     [ ! -s "$WORK/out" ] && [ ! -e "$WORK/stray" ]; then ok "$what is refused: $(cat "$WORK/err")"
  else not_ok "$what (exit $rc): $(cat "$WORK/err" "$WORK/out")"; fi
}
C=$BUILD/ca/camtrust-ca
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/s.key" -subj /CN=s -out "$WORK/s.csr" 2>/dev/null
not_taken "station add --role" --role "$C" station add --dir "$WORK/ca" --name s --csr "$WORK/s.csr" --role officer --out "$WORK/stray"
not_taken "revoke --out" --out "$C" revoke 01 --dir "$WORK/ca" --reason keyCompromise --out "$WORK/stray"
not_taken "crl --serial" --serial "$C" crl --dir "$WORK/ca" --serial 01 --out "$WORK/stray"
not_taken "audit verify --from" --from "$C" audit verify --dir "$WORK/ca" --from 2026-01-01
not_taken "audit report --station" --station "$C" audit report --dir "$WORK/ca" --station s
not_taken "serve --out" --out bounded 20 "$C" serve --dir "$WORK/ca" --listen 127.0.0.1:0 --out "$WORK/stray"
not_taken "log checkpoint --vkey" --vkey "$C" log checkpoint --dir "$WORK/ca" --vkey "$WORK/ca/log.vkey" --out "$WORK/stray"
not_taken "log verify-proof --dir" --dir "$C" log verify-proof --dir "$WORK/ca" --proof "$WORK/p" --log-cert "$WORK/ca/log.pem"
not_taken "backup --checkpoint" --checkpoint "$C" backup --dir "$WORK/ca" --checkpoint "$WORK/k" --out "$WORK/stray"
not_taken "restore --witnesses" --witnesses "$C" restore --dir "$WORK/ca" --from "$WORK/x" --witnesses 2
S=$BUILD/provision/camtrust-station
not_taken "camtrust-station init --ca" --ca "$S" init --dir "$WORK/stray" --name line1 --ca https://127.0.0.1:9
not_taken "camtrust-station log show --timeout-ms" --timeout-ms "$S" log show --dir "$WORK/st" --timeout-ms 100 --out "$WORK/stray"
not_taken "camtrust-view verify --dir" --dir "$BUILD/view/camtrust-view" verify --dir "$WORK/v" --root "$WORK/ca/root.pem" "$WORK/x.mp4"
not_taken "camtrust-view init --key" --key "$BUILD/view/camtrust-view" init --dir "$WORK/stray" --name v --key
rc=0; "$C" audit verify --dir "$WORK/ca" --bogus >"$WORK/out" 2>"$WORK/err" || rc=$?
check_eq "camtrust-ca audit verify --bogus: one line, exit 2" \
  "2 camtrust-ca: unknown option '--bogus' (camtrust-ca --help)" "$rc $(cat "$WORK/err")"
# camtrust-station provision --jobs: at most 32, one CA connection each, what a CA lets one address hold by default
# (server.per_ip_connections): more is refused in one line rather than turned away by the CA camera by camera.
rc=0; "$S" provision --dir "$WORK/st" --ca https://127.0.0.1:9 --device 127.0.0.1:9 --jobs 33 >"$WORK/out" 2>"$WORK/err" || rc=$?
check "camtrust-station provision --jobs 33: one line naming the CA's limit, exit 2" \
  bash -c "[ $rc = 2 ] && [ \$(wc -l <'$WORK/err') = 1 ] && grep -q -- '--jobs is 1..32 .*server.per_ip_connections, 32 by default' '$WORK/err'"
rc=0; "$S" provision --dir "$WORK/st" --ca https://127.0.0.1:9 --device 127.0.0.1:9 --jobs 32 >"$WORK/out" 2>"$WORK/err" || rc=$?
check_eq "... --jobs 32 is no usage error (no station folder: exit 1)" 1 "$rc"
rc=0; "$S" provision --dir "$WORK/st" --ca https://127.0.0.1:9 --bogus 1 >"$WORK/out" 2>"$WORK/err" || rc=$?
check_eq "camtrust-station provision --bogus: one line, exit 2" \
  "2 camtrust-station: unknown option '--bogus' (camtrust-station --help)" "$rc $(cat "$WORK/err")"
rc=0; "$S" init --dir "$WORK/stray" -x >"$WORK/out" 2>"$WORK/err" || rc=$?
check_eq "camtrust-station init -x: one line, exit 2" \
  "2 camtrust-station: unknown option '-x' (camtrust-station --help)" "$rc $(cat "$WORK/err")"
# camtrust-agent (and camtrust-agent-sim) name an option none of the command's in one line, exit 2; an option
# missing its value is still answered with the usage.
G=$BUILD/device-agent/camtrust-agent
for t in "--listen:reset --dir $WORK/cam --listen 127.0.0.1:0" "--viewers:boot --dir $WORK/cam --viewers $WORK/v" \
         "--live:record --dir $WORK/cam --viewers $WORK/v --live $WORK/l $WORK/in $WORK/out" \
         "--cmaf:stream --dir $WORK/cam --viewers $WORK/v --listen 127.0.0.1:0 --cmaf yes" \
         "--x:boot --x 1 --dir $WORK/cam" "--x:sign --dir $WORK/cam --x 1 $WORK/in $WORK/out" \
         "--x:factory --dir $WORK/cam --listen 127.0.0.1:0 --x 1"; do
  args=${t#*:} opt=${t%%:*}
  rc=0; $G $args >"$WORK/out" 2>"$WORK/err" || rc=$?
  if [ "$rc" = 2 ] && [ "$(cat "$WORK/err")" = "camtrust-agent: unknown option '$opt' (camtrust-agent --help)" ] &&
     [ ! -s "$WORK/out" ]; then ok "camtrust-agent ${args%% *} $opt is refused in one line, exit 2"
  else not_ok "camtrust-agent ${args%% *} $opt (exit $rc): $(head -c 300 "$WORK/err")"; fi
done
rc=0; $G boot --dir >"$WORK/out" 2>"$WORK/err" || rc=$?
check "camtrust-agent boot --dir without its value: usage, exit 2" \
  bash -c "[ $rc = 2 ] && grep -q '^usage: camtrust-agent' '$WORK/err' && [ ! -s '$WORK/out' ]"
rc=0; "$BUILD/device-agent/camtrust-agent-sim" simulate --dir "$WORK/stray" --x 1 >"$WORK/out" 2>"$WORK/err" || rc=$?
check_eq "camtrust-agent-sim simulate --x: one line, exit 2" "2 camtrust-agent-sim: unknown option '--x' (camtrust-agent-sim --help)" \
  "$rc $(cat "$WORK/err")"
check "... and nothing was recorded: no station s" bash -c "! sqlite3 '$WORK/ca/camtrust.db' \"select name from stations\" | grep -qx s"
finish
