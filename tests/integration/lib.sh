# Shared by the integration tests: assertions, a CA server on a free loopback port, EST calls with curl.
# Tests source this after setting CA_BIN (path of camtrust-ca).
set -euo pipefail
# A command failing outside a check ends the test (set -e): say where instead of stopping silently.
trap 'rc=$?; echo "not ok - the script stopped at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND (exit $rc)"' ERR

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # check "description" command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what"; fi
}
check_eq() { # check_eq "description" expected actual
  if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (expected '$2', got '$3')"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# (the folder is made here too: run alone, e.g. ctest -R integration_, no unit test has made it first)
mkdir -p "${CAMTRUST_TEST_TMP:-/tmp}"
WORK=$(mktemp -d "${CAMTRUST_TEST_TMP:-/tmp}/itest.XXXXXX")
SERVER_PID=
cleanup_server() { # (the pid forgotten once waited for: a later call must not signal whatever reuses it)
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; fi
  SERVER_PID=
}
# Background processes a test starts (cameras, peers): stop_bg ends them (and the EXIT trap does).
BG_PIDS=()
stop_bg() {
  local pid
  for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  BG_PIDS=()
}
trap 'stop_bg; cleanup_server; [ -n "${CAMTRUST_TEST_KEEP:-}" ] || rm -rf "$WORK"' EXIT

# bounded SECONDS COMMAND...: COMMAND, sent SIGTERM after SECONDS (SIGKILL 10 s later; exit 124 then). Not plain
# `timeout`, which also sends SIGCONT to its whole group just after: landing as LeakSanitizer stops the exiting
# process's threads to scan them (ASan builds), it cancels the stop, and both wait for each other for ever (a witness
# given 5 s ran until the test's own timeout, 240 s, in CI).
bounded() { timeout --foreground -k 10 "$@"; }

# ipv6_aliases ADDRESS...: adds each IPv6 address as a loopback alias when it may (root and `ip`), removed at exit;
# true when every one was added (each call's own: a test may call it again).
ALIASES=()
remove_aliases() { local a; for a in "${ALIASES[@]}"; do ip -6 addr del "$a/128" dev lo 2>/dev/null || true; done; }
ipv6_aliases() {
  local a before=${#ALIASES[@]}
  trap 'remove_aliases; stop_bg; cleanup_server; [ -n "${CAMTRUST_TEST_KEEP:-}" ] || rm -rf "$WORK"' EXIT
  for a in "$@"; do ip -6 addr add "$a/128" dev lo nodad 2>/dev/null && ALIASES+=("$a"); done
  [ $((${#ALIASES[@]} - before)) = $# ]
}

# wait_listening OUTFILE PID: sets ADDR from its "listening on ADDR" line (up to 10 s). Empty OUTFILE before starting
# PID when it may hold an earlier run's line (the child's own redirection truncates it only once the child runs).
wait_listening() {
  local out=$1 pid=$2
  for _ in $(seq 1 200); do
    if grep -q '^listening on ' "$out" 2>/dev/null; then ADDR=$(sed -n 's/^listening on //p' "$out"); return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# start_ca DIR: serves DIR's CA on a free loopback port; sets PORT and SERVER_PID, log in $WORK/server.log.
# With WITH_HTTP=1 it also serves /crl and /ocsp over plain HTTP on HTTP_PORT (else no plain HTTP at all). With
# CA_HOST='[::1]' both listen on IPv6 loopback instead.
start_ca() {
  local dir=$1 try http host=${CA_HOST:-127.0.0.1}
  rm -f "$WORK/server.failed-starts.log"
  for try in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 40000))
    HTTP_PORT=$((20000 + RANDOM % 40000)); http=
    [ "${WITH_HTTP:-0}" = 1 ] && http=$host:$HTTP_PORT
    # emptied here, not only by the child's redirection: until the child runs, the last server's "listening" line
    # is still in the file and the wait below would return before this server listens
    : >"$WORK/server.log"
    "$CA_BIN" serve --dir "$dir" --listen "$host:$PORT" --http-listen "$http" 2>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 600); do # up to 30 s: the start checks the whole audit chain, slow under ASan on a loaded machine
      grep -q 'event=listening' "$WORK/server.log" 2>/dev/null && return 0
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.05
    done
    # (a server that exited, e.g. on a port taken meanwhile, may be reaped already: kill fails, set -e must not end here)
    kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true
    # What a start does before it listens (a sweep at start, a migration) is done by the attempt that failed: its
    # lines kept for the checks of them (start_lines).
    cat "$WORK/server.log" >>"$WORK/server.failed-starts.log"
  done
  echo "could not start the CA server:"; cat "$WORK/server.log"; return 1
}

# start_lines: what the last start_ca's server logged, with what any attempt before it that failed logged (a port
# taken meanwhile ends an attempt after the work a start does before it listens).
start_lines() { cat "$WORK/server.failed-starts.log" "$WORK/server.log" 2>/dev/null || true; }

# est_post OP BODYFILE OUTFILE [curl options...]: POSTs to /.well-known/est/OP, prints the HTTP status.
# EST_CONTENT_TYPE overrides the content type.
est_post() {
  local op=$1 body=$2 out=$3; shift 3
  curl -s -o "$out" -w '%{http_code}' --max-time 20 --cacert "$CA/ops-root.pem" \
    -H "Content-Type: ${EST_CONTENT_TYPE:-application/pkcs10}" --data-binary "@$body" "$@" \
    "https://localhost:$PORT/.well-known/est/$op" || true
}

# make_csr OUTPREFIX SUBJECT [openssl req key options...]: OUTPREFIX.key, .der (DER CSR), .b64 (EST body).
make_csr() {
  local out=$1 subj=$2; shift 2
  if [ $# -eq 0 ]; then set -- -newkey ec -pkeyopt ec_paramgen_curve:P-256; fi
  openssl req -new "$@" -nodes -keyout "$out.key" -subj "$subj" -outform DER -out "$out.der" 2>/dev/null
  base64 "$out.der" >"$out.b64"
}

# incident_of FILE STATUS MESSAGE: the incident a 500's body "STATUS MESSAGE: incident ID in the CA's log" names
# (MESSAGE a sed regex; nothing when the body is another). incident_line ID: the server's log line naming it, waited
# for (up to 10 s: the server logs an answer once it is sent), found as the README tells operators: the incident
# is the field after the line's own ts, level and event, where no client's quoted method, path or reason can write it.
# incident_count ID: how many lines the server wrote under it.
incident_of() { sed -n "s/^$2 $3: incident \([0-9a-f]\{16\}\) in the CA's log\$/\1/p" "$1"; }
incident_line() {
  for _ in $(seq 1 100); do grep "^ts=[^ ]* level=error event=request incident=${1:-none} " "$WORK/server.log" && return 0
    sleep 0.1; done
}
incident_count() { grep -c "^ts=[^ ]* level=error event=request incident=${1:-none} " "$WORK/server.log" || true; }

# frames FILE [ffmpeg input options...]: the MD5 of every picture ffmpeg decodes of FILE, one per line (the video
# tests compare what a player shows with the source).
frames() {
  local f=$1; shift
  ffmpeg -nostdin -loglevel error "$@" -i "$f" -f framemd5 - 2>/dev/null | grep -v '^#' | awk -F', *' '{print $6}' || true
}

# on_sqlite: the CA under test keeps its records in SQLite (not CAMTRUST_TEST_DB=postgresql): for the checks of the
# file itself (its mode, an edit with the sqlite3 CLI).
on_sqlite() { [ "${CAMTRUST_TEST_DB:-sqlite}" != postgresql ]; }

# sql DB QUERY: a read-only look at the CA's records with the sqlite3 CLI (DB: the folder's camtrust.db); with psql
# when the folder's config keeps them in PostgreSQL (same output: '|' between columns).
sql() {
  local conf
  conf=$(dirname "$1")/camtrust-ca.conf
  if [ -e "$conf" ] && grep -q '^db.backend = postgresql' "$conf"; then
    local pwf; pwf=$(sed -n 's/^db.password_file = //p' "$conf")
    PGPASSWORD=$([ -n "$pwf" ] && cat "$pwf") psql -X -q -At -F'|' -v ON_ERROR_STOP=1 "$(sed -n 's/^db.url = //p' "$conf")" -c "$2"
  else
    sqlite3 -readonly "$1" "$2"
  fi
}

# anonymous_refusals DB ACTION: how many anonymous refusals of ACTION the audit counts. A server writes them as
# counts ("N refused from ...") per action, address and reason once per audit.anonymous_interval_s and at stop.
anonymous_refusals() {
  sql "$1" "select coalesce(sum(cast(substr(detail, 1, instr(detail, ' ') - 1) as integer)), 0) from audit
            where action = '$2' and actor like 'anonymous:%' and outcome = 'denied'"
}

# audited_refusals DB: how many refusals the audit holds one by one (the anonymous ones above are left out: rows of
# counts written at intervals, one could land between two counts taken around a refusal, as under load).
audited_refusals() { sql "$1" "select count(*) from audit where outcome='denied' and actor not like 'anonymous:%'"; }

# station_with_order STATION SERIAL...: certifies a station from a fresh P-256 key ($WORK/station.key,
# $WORK/station.pem) and opens an order of model CX100 for the serials.
station_with_order() {
  local name=$1; shift
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/station.key" -subj "/CN=$name" \
    -out "$WORK/station.csr" 2>/dev/null
  "$CA_BIN" station add --dir "$CA" --name "$name" --csr "$WORK/station.csr" --out "$WORK/station.pem" >/dev/null
  printf '%s\n' "$@" >"$WORK/serials.txt"
  "$CA_BIN" order create --dir "$CA" --station "$name" --model CX100 --serials "$WORK/serials.txt" >/dev/null
}

# station_root_crl_none DIR: the station folder DIR checks no device-root CRL (ca.root_crl = none: without it
# provision refuses to run; ceremony.sh and station_root_crl.sh play the check itself).
station_root_crl_none() { sed -i 's/^ca.root_crl = .*/ca.root_crl = none/' "$1/station.conf"; }

# ca_create DIR [VAULT]: a CA in DIR, made by init, the key ceremony in the root vault VAULT (default $WORK/vault,
# made once per test) and install (tests/helpers/ca_create.sh); init's output on stdout.
ca_create() {
  "$(dirname "${BASH_SOURCE[0]}")/../helpers/ca_create.sh" "$CA_BIN" "$1" "${2:-$WORK/vault}"
}
# vault_quorum VAULT: sets Q to the options naming a quorum of its custodians (2, 4 and 5 of ca_create's vault).
vault_quorum() {
  local i
  Q=()
  for i in 2 4 5; do Q+=(--share "$1/custodian-$i.share" --passphrase-file "$1.custodians/$i/passphrase"); done
}
# ops_rotate OUT: the CA $CA's operations issuing CA rotated, the next generation signed at a ceremony of the vault
# $V (quorum Q, vault_quorum) into OUT and installed.
ops_rotate() {
  "$CA_BIN" rotate --dir "$CA" ops-issuing >/dev/null
  "$CA_BIN" root sign --dir "$V" --csr "$CA/ops-issuing.csr" --profile ops-issuing "${Q[@]}" --out "$1" >/dev/null
  "$CA_BIN" install --dir "$CA" --cert "$1" >/dev/null
}
# viewer_camera CAM SERIAL: a simulated camera (SIM_BIN) pinning the CA $CA's roots and a 1 s H.264 clip,
# $WORK/clip.h264 (ffmpeg), for it to record.
viewer_camera() {
  "$SIM_BIN" simulate --dir "$1" --serial "$2" --model CX1 --root "$CA/root.pem" --ops-root "$CA/ops-root.pem" >/dev/null
  [ -e "$WORK/clip.h264" ] || ffmpeg -nostdin -loglevel error -f lavfi -i testsrc2=size=320x180:rate=30 -t 1 \
    -c:v libx264 -g 30 -bf 0 -pix_fmt yuv420p -f h264 "$WORK/clip.h264"
}
# viewer_make NAME...: for each NAME a viewer folder $WORK/NAME (its key in its own token) and its certificate
# $WORK/NAME.pem from the CA $CA's current operations issuing CA, installed (VIEW_BIN: camtrust-view).
viewer_make() {
  local v
  for v in "$@"; do
    "$VIEW_BIN" init --dir "$WORK/$v" --name "$v" >/dev/null
    "$CA_BIN" viewer add --dir "$CA" --name "$v" --csr "$WORK/$v/viewer.csr" --out "$WORK/$v.pem" >/dev/null
    "$VIEW_BIN" install --dir "$WORK/$v" --cert "$WORK/$v.pem" >/dev/null
  done
}
# For attacks on a CA folder $CA (the CA binary $CA_BIN):
# verify_says WHAT TEXT [audit verify options]: audit verify exits 1 with a line containing TEXT.
verify_says() {
  local what=$1 want=$2 rc=0 out; shift 2
  out=$("$CA_BIN" audit verify --dir "$CA" "$@" 2>&1) || rc=$?
  if [ "$rc" = 1 ] && grep -qF -- "$want" <<<"$out"; then ok "$what: audit verify ${*:+$* }says '$want'"
  else not_ok "$what: audit verify $* (exit $rc): $out"; fi
}
# serve_refuses WHAT TEXT: the server exits at start with TEXT in its one-line reason, serving nothing.
serve_refuses() {
  local rc=0 out; out=$(bounded 30 "$CA_BIN" serve --dir "$CA" --listen 127.0.0.1:0 --http-listen '' 2>&1) || rc=$?
  if [ "$rc" = 1 ] && grep -qF -- "$2" <<<"$out" && ! grep -q 'event=listening' <<<"$out"; then ok "$1: the server refuses to start"
  else not_ok "$1: serve (exit $rc): $out"; fi
}
