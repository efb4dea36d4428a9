#!/usr/bin/env bash
# A node's id is the actor of its lease.take and crl.store entries: it must not read as one of the CA's own actors
# (a config's node.id `ca`, `cli`...: refused at load in one line, as --node-id is) nor as a camera's. A node with
# no node.id was "HOST:PID": on a host named `device`, `device:PID`, a camera's actor; it is now `node:HOST:PID`
# (played in a UTS namespace of its own named `device`, as root; skipped without unshare), and audit verify holds.
# Usage: node_id.sh PATH/TO/camtrust-ca
CA_BIN=$1
. "$(dirname "$0")/lib.sh"

CA=$WORK/ca
ca_create "$CA" >/dev/null
CONF=$CA/camtrust-ca.conf
cp "$CONF" "$WORK/conf.orig"

# ---- node.id one of the CA's own actors: refused at load, one line ----
for own in ca ca-server cli unknown; do
  sed -i "s/^node.id = .*/node.id = $own/" "$CONF"
  rc=0; err=$("$CA_BIN" audit verify --dir "$CA" 2>&1 >/dev/null) || rc=$?
  check_eq "config node.id = $own is refused in one line (exit $rc)" \
    "camtrust-ca: config node.id '$own' is one of the CA's own audit actors (ca, ca-server, cli, unknown)" \
    "$err"
done
cp "$WORK/conf.orig" "$CONF"
rc=0; err=$(bounded 30 "$CA_BIN" serve --dir "$CA" --listen 127.0.0.1:0 --node-id ca-server 2>&1 >/dev/null) || rc=$?
check_eq "serve --node-id ca-server is refused in one line (exit $rc)" \
  "camtrust-ca: node id 'ca-server' is one of the CA's own audit actors (ca, ca-server, cli, unknown)" \
  "$(grep -v 'event=' <<<"$err")"
check_eq "... nothing of it audited" 0 "$(sql "$CA/camtrust.db" "select count(*) from audit where actor = 'ca-server'")"

# ---- no node.id, on a host named like a kind of actor ----
if [ "$(id -u)" = 0 ] && unshare --uts true 2>/dev/null; then
  sed -i "s/^node.id = .*/node.id = /" "$CONF"
  : >"$WORK/device.log"
  unshare --uts sh -c 'hostname device && exec "$0" serve --dir "$1" --listen 127.0.0.1:0 --http-listen ""' \
    "$CA_BIN" "$CA" 2>"$WORK/device.log" &
  SERVER_PID=$!
  for _ in $(seq 1 600); do grep -q 'event=listening' "$WORK/device.log" && break; sleep 0.05; done
  check "a node on a host named 'device' serves" grep -q 'event=listening' "$WORK/device.log"
  pid=$SERVER_PID
  cleanup_server
  check_eq "its lease.take is audited as node:device:PID" "node:device:$pid" \
    "$(sql "$CA/camtrust.db" "select actor from audit where action = 'lease.take' order by seq desc limit 1")"
  check_eq "... and no entry reads as a camera's" 0 \
    "$(sql "$CA/camtrust.db" "select count(*) from audit where actor like 'device:%'")"
  out=$("$CA_BIN" audit verify --dir "$CA" 2>&1) || true
  check "audit verify holds" grep -q '^state tables match the audit: ' <<<"$out"
else
  echo "# skipped the host named 'device' (needs root and unshare --uts)"
fi
finish
