#!/bin/bash
# ca_create.sh CA_BIN DIR [VAULT [TEMPLATE]]: makes the CA folder DIR the way an operator does: `camtrust-ca init`
# (unless DIR is initialised already), then the key ceremony in the offline root vault VAULT (made at first use: 3 of
# 5 custodians, each share under its own passphrase file; later calls reuse it), then `camtrust-ca install` with the
# roots, both issuing CAs' certificates and the roots' CRLs. init's output is passed through. Every test and tool
# that needs a CA makes it here.
# With TEMPLATE (unit tests that want a fresh CA per test case): the first CA made is kept there, and later calls
# for a DIR that does not exist yet get a copy of it (same keys; its token store path rewritten).
# With CAMTRUST_TEST_DB=postgresql (under tests/helpers/pg.sh) the CA keeps its records in a new PostgreSQL database
# of that server (db.backend and db.url written before init; a template's copy gets a copy of its database).
set -euo pipefail
bin=$1 dir=$2 vault=${3:-$(dirname "$dir")/vault} template=${4:-}
pg=0; [ "${CAMTRUST_TEST_DB:-}" = postgresql ] && pg=1
made=camtrust.db; [ "$pg" = 1 ] && made=ca-id # what marks an initialised CA folder
if [ -n "$template" ] && [ -e "$template/$made" ] && [ ! -e "$dir" ]; then
  cp -a "$template" "$dir"
  sed -i "s|^directories.tokendir = .*|directories.tokendir = $dir/tokens|" "$dir/softhsm2.conf"
  if [ "$pg" = 1 ]; then
    url=$("$CAMTRUST_TEST_PG_CTL" createdb "$(sed -n 's/^db.url = .*dbname=//p' "$template/camtrust-ca.conf")")
    sed -i "s|^db.url = .*|db.url = $url|" "$dir/camtrust-ca.conf"
  fi
  exit 0
fi
fresh=0; [ -e "$dir" ] || fresh=1 # before PostgreSQL's config is written into it below
if [ "$pg" = 1 ] && [ ! -e "$dir" ]; then
  # Every setting written out, as init writes them (tests edit them with sed): a default config made once per server.
  defaults=$CAMTRUST_TEST_PG_BASE/defaults.conf
  if [ ! -e "$defaults" ]; then
    scratch=$(mktemp -d "$CAMTRUST_TEST_PG_BASE/defaults.XXXXXX")
    "$bin" init --dir "$scratch/ca" >/dev/null && cp "$scratch/ca/camtrust-ca.conf" "$defaults.$$" && mv "$defaults.$$" "$defaults"
    rm -rf "$scratch"
  fi
  mkdir -p "$dir"
  sed -e 's|^db.backend = .*|db.backend = postgresql|' -e "s|^db.url = .*|db.url = $("$CAMTRUST_TEST_PG_CTL" createdb)|" \
    "$defaults" >"$dir/camtrust-ca.conf"
fi
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
[ -e "$dir/$made" ] || "$bin" init --dir "$dir" # a folder made by init already: the ceremony only
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
  cp -a "$dir" "$template.tmp.$$"
  if [ "$pg" = 1 ]; then # the template keeps a database of its own: DIR's test goes on writing into DIR's
    url=$("$CAMTRUST_TEST_PG_CTL" createdb "$(sed -n 's/^db.url = .*dbname=//p' "$dir/camtrust-ca.conf")")
    sed -i "s|^db.url = .*|db.url = $url|" "$template.tmp.$$/camtrust-ca.conf"
  fi
  mv -T "$template.tmp.$$" "$template"
fi
