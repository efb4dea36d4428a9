#!/usr/bin/env bash
# Every binary answers --help (and -h) with its usage on stdout and exit 0; an unknown command or option is still
# a usage error: usage on stderr, exit 2. Usage: cli_help.sh BUILD_DIR
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
finish
