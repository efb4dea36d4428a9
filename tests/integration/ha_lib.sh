# Shared by the tests of several nodes on one database (ha_*.sh), sourced after lib.sh with $CA set.
# start_node NAME [NODE_ID]: a node of the CA $CA on its own loopback ports, serving as NODE_ID (default NAME), its
# log $WORK/NAME.log, started under `env "${NODE_ENV[@]}"` (e.g. a preloaded shim); sets PORT_<NAME>, HTTP_<NAME>,
# PID_<NAME> ('-' in NAME as '_').
NODE_ENV=()
start_node() {
  local name=$1 id=${2:-$1} try port http pid
  for try in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000)); http=$((20000 + RANDOM % 40000))
    : >"$WORK/$name.log" # (emptied before the child runs: a restarted node's old "listening" line must not count)
    env "${NODE_ENV[@]}" "$CA_BIN" serve --dir "$CA" --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http" \
      --node-id "$id" 2>"$WORK/$name.log" &
    pid=$!
    for _ in $(seq 1 600); do
      grep -q 'event=listening' "$WORK/$name.log" 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if grep -q 'event=listening' "$WORK/$name.log"; then
      BG_PIDS+=("$pid"); printf -v "PORT_${name//-/_}" %s "$port"; printf -v "HTTP_${name//-/_}" %s "$http"
      printf -v "PID_${name//-/_}" %s "$pid"; return 0
    fi
    # (a node that exited, its port taken meanwhile, is reaped already: kill fails, and set -e must not end the
    # test here; it did so silently under load, the ERR trap not being run inside a function)
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  done
  echo "could not start node $name:"; cat "$WORK/$name.log"; return 1
}

# wait_log NAME PATTERN: waits (bounded, 20 s) for a line matching PATTERN in node NAME's log.
wait_log() {
  local _
  for _ in $(seq 1 400); do grep -q -- "$2" "$WORK/$1.log" && return 0; sleep 0.05; done
  return 1
}

# crl_lists HTTP_PORT OUT: that node's /crl (into OUT) lists the certificate $REV_SERIAL, within a bounded wait.
crl_lists() {
  local _
  for _ in $(seq 1 400); do
    curl -s --max-time 5 -o "$2" "http://127.0.0.1:$1/crl" || true
    openssl crl -inform DER -in "$2" -noout -text 2>/dev/null | grep -q "Serial Number: $REV_SERIAL" && return 0
    sleep 0.05
  done
  return 1
}
