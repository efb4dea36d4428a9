#!/bin/bash
# ca_create.sh CA_BIN DIR [VAULT [TEMPLATE]]: makes the CA folder DIR the way an operator does: `camtrust-ca init`
# (unless DIR is initialised already), then the key ceremony in the offline root vault VAULT (made at first use: 3 of
# 5 custodians, each share under its own passphrase file; later calls reuse it), then `camtrust-ca install` with the
# roots, both issuing CAs' certificates and the roots' CRLs. init's output is passed through. Every test and tool
# that needs a CA makes it here.
# With TEMPLATE (unit tests that want a fresh CA per test case): the first CA made is kept there, and later calls
# for a DIR that does not exist yet get a copy of it (same keys; its token store path rewritten).
set -euo pipefail
bin=$1 dir=$2 vault=${3:-$(dirname "$dir")/vault} template=${4:-}
if [ -n "$template" ] && [ -e "$template/camtrust.db" ] && [ ! -e "$dir" ]; then
  cp -a "$template" "$dir"
  sed -i "s|^directories.tokendir = .*|directories.tokendir = $dir/tokens|" "$dir/softhsm2.conf"
  exit 0
fi
fresh=0; [ -e "$dir" ] || fresh=1
cust=$vault.custodians # the custodians' own folders: passphrase files (tests only: people type them)
quorum=()
for i in 2 4 5; do quorum+=(--share "$vault/custodian-$i.share" --passphrase-file "$cust/$i/passphrase"); done

if [ ! -e "$vault/root.pem" ]; then
  init=()
  for i in 1 2 3 4 5; do
    mkdir -p "$cust/$i"
    printf 'custodian %d passphrase for tests\n' "$i" >"$cust/$i/passphrase"
    init+=(--passphrase-file "$cust/$i/passphrase")
  done
  # The fewest PBKDF2 iterations a vault takes: tests spend their time on ceremonies, not on key stretching.
  mkdir -p "$vault" && printf 'kdf.iterations = 100000\n' >"$vault/vault.conf"
  "$bin" root init --dir "$vault" --custodians 5 --quorum 3 "${init[@]}" >/dev/null
fi
[ -e "$dir/camtrust.db" ] || "$bin" init --dir "$dir" # a folder made by init already: the ceremony only
for which in device-issuing ops-issuing; do
  "$bin" root sign --dir "$vault" --csr "$dir/$which.csr" --profile "$which" "${quorum[@]}" \
    --out "$dir.$which.pem" >/dev/null
done
for root in device ops; do
  "$bin" root crl --dir "$vault" --root "$root" "${quorum[@]}" --out "$dir.$root-root.crl" >/dev/null
done
"$bin" install --dir "$dir" --cert "$vault/root.pem" "$vault/ops-root.pem" "$dir.device-issuing.pem" \
  "$dir.ops-issuing.pem" --crl "$dir.device-root.crl" "$dir.ops-root.crl" >/dev/null
rm -f "$dir.device-issuing.pem" "$dir.ops-issuing.pem" "$dir.device-root.crl" "$dir.ops-root.crl"
if [ -n "$template" ] && [ "$fresh" = 1 ] && [ ! -e "$template" ]; then
  cp -a "$dir" "$template.tmp.$$" && mv -T "$template.tmp.$$" "$template"
fi
