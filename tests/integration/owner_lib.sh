# Shared by the tests of commands run as root in a CA folder another user serves (serving_lock_owner.sh,
# root_files_owner.sh), sourced after lib.sh: skips (77) unless root with setpriv and a /tmp that runs programs.
# Sets OWN (a folder of the run's own under /tmp, removed at exit), CA (OWN/ca, a CA made and given to OWNER),
# OWNER (4242) and ROOT_BIN (the binary copied into OWN), and writes $WORK/as-owner (ROOT_BIN run as OWNER).
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then echo "skipped: needs root and setpriv"; exit 77; fi

# The folder's owner must reach the CA folder and the binary: a clone under /root (0700) or a test-tmp made 0700
# is out of its reach, so both go to a folder of their own under /tmp (removed at exit). A run killed outright
# (ctest's timeout: no trap runs) leaves its folder, named by its pid: those of runs no longer running go first.
for old in /tmp/camtrust-lock-owner.*.*; do
  pid=${old#/tmp/camtrust-lock-owner.}; pid=${pid%%.*}
  if [ -d "$old" ] && [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null; then rm -rf "$old"; fi
done
OWN=$(mktemp -d "/tmp/camtrust-lock-owner.$$.XXXXXX")
trap 'stop_bg; cleanup_server; rm -rf "$OWN"; [ -n "${CAMTRUST_TEST_KEEP:-}" ] || rm -rf "$WORK"' EXIT
chmod 755 "$OWN"
cp "$CA_BIN" "$OWN/camtrust-ca"
"$OWN/camtrust-ca" --help >/dev/null 2>&1 || { echo "skipped: /tmp does not run programs (noexec)"; exit 77; }
CA=$OWN/ca
OWNER=4242 # no such user needed: the folder's owner by number, as systemd's StateDirectory makes it
ca_create "$CA" >/dev/null
chown -R "$OWNER:$OWNER" "$CA"
ROOT_BIN=$OWN/camtrust-ca
# the folder's owner running the CA's binary (start_ca runs "$CA_BIN serve")
cat >"$WORK/as-owner" <<EOS
#!/bin/sh
exec setpriv --reuid=$OWNER --regid=$OWNER --clear-groups -- "$ROOT_BIN" "\$@"
EOS
chmod 755 "$WORK/as-owner"
# serves_as_owner: the folder's owner starts its server on it and it answers
serves_as_owner() {
  local ok=1
  CA_BIN=$WORK/as-owner start_ca "$CA" >/dev/null &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" \
         "https://localhost:$PORT/.well-known/est/cacerts")" = 200 ] && ok=0
  cleanup_server
  return $ok
}
