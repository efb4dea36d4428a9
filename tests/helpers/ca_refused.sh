# Sourced by integration tests (after lib.sh, with CA_BIN set): a CA or vault folder's fingerprint, and a refusal
# by camtrust-ca that must leave the folder as it was.
# Every file of a folder, its token's key objects included (SoftHSM rewrites its token.object bookkeeping at each
# login, and every component keeps a copy of it, token.object~: not the CA's writing), and the database by its content: any command that opens it may checkpoint a WAL that an earlier
# one left, which rewrites camtrust.db and its -wal and -shm files without changing a row; the running server renews
# its signer lease (a row of leases) every 2 s.
fingerprint() {
  (cd "$1" && find . -type f ! -name '*.lock' ! -name token.object ! -name 'token.object~' ! -name 'camtrust.db*' -print0 | sort -z | xargs -0 sha256sum
   [ ! -e camtrust.db ] || echo "$(sqlite3 camtrust.db .dump | grep -v '^INSERT INTO leases ' | sha256sum | cut -d' ' -f1)  ./camtrust.db (its rows)")
}
# changed BEFORE AFTER: "unchanged", or the files whose content differs
changed() { [ "$1" = "$2" ] && echo unchanged || echo "CHANGED: $(diff <(echo "$1") <(echo "$2") | sed -n 's/^[<>] [0-9a-f]* *//p' | sort -u | tr '\n' ' ')"; }
# refused "description" PATTERN DIR args...: exit 1, one line on stderr matching PATTERN, DIR unchanged
refused() {
  local what=$1 pattern=$2 dir=$3 before after rc=0; shift 3
  before=$(fingerprint "$dir")
  "$CA_BIN" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  after=$(fingerprint "$dir")
  if [ "$rc" -eq 1 ] && [ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q -- "$pattern" "$WORK/err" && [ "$before" = "$after" ]
  then ok "$what"
  else not_ok "$what (exit $rc, $dir $(changed "$before" "$after")): $(cat "$WORK/err")"; fi
}
