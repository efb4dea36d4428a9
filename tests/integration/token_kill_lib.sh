# Shared by the token.object kill tests (after lib.sh). SoftHSM rewrites a token's token.object (its wrapped PINs and
# token key) in place at every login: truncated to 0, then one write. A component killed in between leaves it empty,
# and without the copy beside it (token.object~, hsm/hsm_local.c) every key of its token is gone.

# token_object DIR: the token.object of the one token in DIR/tokens (a component's own token store).
token_object() { echo "$(ls -d "$1"/tokens/*)/token.object"; }

# killed_at_token_write WHAT OBJECT CMD...: runs CMD with strace injecting SIGKILL at its first write of OBJECT
# (SoftHSM's, right after its ftruncate); checks that CMD died there and left OBJECT empty.
killed_at_token_write() {
  local what=$1 object=$2 rc=0; shift 2
  # (strace dies of the same signal: the shell's "Killed" line is not shown)
  { ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o /dev/null -P "$object" -e trace=write -e inject=write:signal=KILL \
    "$@" >/dev/null 2>&1; } 2>/dev/null || rc=$?
  check_eq "$what killed at SoftHSM's write of token.object: it died there" 137 "$rc"
  check "... leaving token.object empty" test ! -s "$object"
}
