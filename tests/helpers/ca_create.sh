#!/bin/bash
# ca_create.sh CA_BIN DIR [VAULT]: makes the CA folder DIR the way an operator does: `camtrust-ca init` (unless
# DIR is initialised already), then the
# key ceremony in the offline root vault VAULT (made at first use: 3 of 5 custodians, each share under its own
# passphrase file; later calls reuse it), then `camtrust-ca install`. init's output is passed through. Every test
# and tool that needs a CA makes it here.
set -euo pipefail
bin=$1 dir=$2 vault=${3:-$(dirname "$dir")/vault}
cust=$vault.custodians
shares=()
for i in 1 2 3; do shares+=(--share "$cust/custodian-$i.share" --passphrase-file "$cust/pass-$i"); done

if [ ! -e "$vault/root.pem" ]; then
  mkdir -p "$cust"
  for i in 1 2 3 4 5; do printf 'custodian %d passphrase for tests\n' "$i" >"$cust/pass-$i"; done
  # PLACEHOLDER until the vault lands: openssl roots
  mkdir -p "$vault"
  printf '[req]\ndistinguished_name=dn\n[dn]\n[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n[issuing]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$vault/ext.cnf"
  for r in root ops-root; do
    openssl ecparam -genkey -name prime256v1 -noout -out "$vault/$r.key" 2>/dev/null
    openssl req -x509 -new -key "$vault/$r.key" -subj "/O=Test/CN=$r" -days 3650 -out "$vault/$r.pem" -config "$vault/ext.cnf" -extensions root 2>/dev/null
  done
fi
[ -e "$dir/camtrust.db" ] || "$bin" init --dir "$dir" # a folder made by init already: the ceremony only
openssl x509 -req -in "$dir/device-issuing.csr" -CA "$vault/root.pem" -CAkey "$vault/root.key" -set_serial "0x$(openssl rand -hex 16)" -out "$dir.device-issuing.pem" -days 3650 -extfile "$vault/ext.cnf" -extensions issuing 2>/dev/null
openssl x509 -req -in "$dir/ops-issuing.csr" -CA "$vault/ops-root.pem" -CAkey "$vault/ops-root.key" -set_serial "0x$(openssl rand -hex 16)" -out "$dir.ops-issuing.pem" -days 3650 -extfile "$vault/ext.cnf" -extensions issuing 2>/dev/null
"$bin" install --dir "$dir" --cert "$vault/root.pem" "$vault/ops-root.pem" "$dir.device-issuing.pem" \
  "$dir.ops-issuing.pem" >/dev/null
rm -f "$dir.device-issuing.pem" "$dir.ops-issuing.pem"
