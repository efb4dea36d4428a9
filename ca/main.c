/* camtrust-ca: parses arguments and calls one function of ca.h per command. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/pki/pki.h"
#include "ca.h"
#include "vault.h"

static const char usage[] =
    "usage: camtrust-ca COMMAND --dir DIR [options]\n"
    "  init                                     create a CA (token, online keys, database) and the issuing CAs'\n"
    "                                           requests DIR/device-issuing.csr, DIR/ops-issuing.csr for the\n"
    "                                           root vault's ceremony (camtrust-ca root sign)\n"
    "  install --cert F... [--crl F...]         take the ceremony's certificates (root.pem, ops-root.pem, the\n"
    "                                           issuing CAs') and the roots' CRLs, each checked; then serve\n"
    "  rotate device-issuing|ops-issuing        a new issuing CA key and its request (DIR/<which>.csr) for\n"
    "                                           the ceremony; install its certificate to issue with it\n"
    "  serve [--listen 127.0.0.1:8443] [--http-listen 127.0.0.1:8080|''] [--node-id ID]\n"
    "                                           serve EST (HTTPS), /crl and /ocsp (also plain HTTP) until SIGTERM;\n"
    "                                           ID: this node among several on one database (node.id)\n"
    "  station add --name N --csr F --out F     certify a factory station from its own CSR\n"
    "  viewer add --name N --csr F --out F      certify a viewer of encrypted video from its own CSR\n"
    "  station disable|enable N                 refuse or allow a station from its next request\n"
    "  order create --station N --model M --serials FILE\n"
    "  order list | order close ID\n"
    "  order reprovision --station N --model M --serial SN\n"
    "                                           allow a revoked device serial to be issued once more\n"
    "  audit verify [--checkpoint F ...] [--vkey F] [--witnesses K]\n"
    "                                           check the audit log (every entry's MAC in the token), the state\n"
    "                                           tables rebuilt from it, the issuance log (leaves against\n"
    "                                           certificates, every tree head's root and signature), and that the\n"
    "                                           database extends each kept checkpoint F (signature by DIR/log.vkey\n"
    "                                           or --vkey; audit entry and root, tree prefix, consistency);\n"
    "                                           K: each F (else the newest checkpoint) needs valid\n"
    "                                           cosignatures of K of the witnesses in log.witnesses\n"
    "  audit search [--device-serial S] [--cert-serial HEX] [--station N] [--order ID] [--model M]\n"
    "               [--from T] [--to T] [--status valid|superseded|revoked] [--limit N] [--offset N]\n"
    "               [--format table|csv|json]     find certificates (T: YYYY-MM-DD, ...THH:MM:SSZ or Unix time)\n"
    "  audit report [--from T] [--to T] [--format table|csv|json]\n"
    "                                           issuance per station, order and day; denials; revocations\n"
    "  officer add --name N --role auditor|officer --csr F --out F\n"
    "                                           certify a security officer (officer: may revoke) or auditor\n"
    "  officer disable|enable N                 refuse or allow an officer from its next request\n"
    "  officer role --name N --role auditor|officer\n"
    "                                           change an officer's role from its next request\n"
    "  revoke SERIAL --reason R                 revoke a certificate (serial in hex)\n"
    "  revoke --order ID --reason R             revoke every certificate of an order\n"
    "  revoke --station N --reason R            revoke every certificate a station enrolled\n"
    "      R: " PKI_REASON_NAMES "\n"
    "  crl [device|ops] [--generation N] --out FILE\n"
    "                                           write a freshly signed CRL (DER) of the device issuing CA, or of\n"
    "                                           the operations issuing CA (revoked viewers, stations, officers);\n"
    "                                           of its generation N (default: the current; as GET /crl/ops/N)\n"
    "  renew tls|ocsp|log                       re-certify the server's, the OCSP responder's or the log signer's\n"
    "                                           key for a fresh validity (restart the server to use it)\n"
    "  log sth                                  sign a tree head and a checkpoint of the issuance log now\n"
    "  witness init --name N [--ca-root F]      make a witness folder DIR: own token, Ed25519 key, witness.vkey;\n"
    "                                           F: the root the CA server's HTTPS certificate must chain to\n"
    "  witness --log https://HOST:PORT|http://HOST:PORT --vkey LOG.VKEY [--interval S]\n"
    "                                           cosign each checkpoint that extends the last one cosigned\n"
    "                                           (every S seconds, default 10); on a fork or rollback keep the\n"
    "                                           evidence in DIR/evidence/, report it to the CA, exit 1\n"
    "  log checkpoint [--out F]                 print (or save) the newest checkpoint (signing one if none)\n"
    "  db migrate-to --url URL [--password-file F]\n"
    "                                           copy the CA's SQLite records into the empty PostgreSQL database URL\n"
    "                                           (a libpq connection string, no password in it) and switch DIR to it;\n"
    "                                           audit verify before and after, the same newest checkpoint, or DIR\n"
    "                                           stays on SQLite (stop the server first)\n"
    "  backup --out F                           copy the database to F (owner only; SQLite's online backup:\n"
    "                                           the CA may be serving) and say what it holds\n"
    "  restore --from F [--checkpoint K ...] [--accept-rollback]\n"
    "                                           check F (integrity, this CA's, audit verify), compare it with\n"
    "                                           the checkpoints kept outside it (DIR/checkpoint.note, the database\n"
    "                                           it replaces, each K: a witness's state.note, a station's), put it\n"
    "                                           in place atomically (the server stopped); an older copy is\n"
    "                                           flagged and not served until --accept-rollback (audited)\n"
    "  log proof --serial HEX --out FILE        write a certificate's inclusion proof (for its device to keep)\n"
    "  log verify-proof --proof FILE --log-cert log.pem\n"
    "                                           check a proof offline (no --dir needed)\n"
    "The token PIN comes from the file named in DIR/camtrust-ca.conf or $CAMTRUST_CA_PIN.\n"
    "The offline root vault (its own folder and token; the PIN exists only as custodians' shares):\n"
    "  root init --custodians N --quorum K [--curve P-256|P-384] [--passphrase-file F ...]\n"
    "                                           make the vault DIR: device and operations roots (root.pem,\n"
    "                                           ops-root.pem), custodian-I.share for I = 1..N (any K rebuild the PIN)\n"
    "  root sign --csr F --profile device-issuing|ops-issuing --share F [--share F ...] --out F\n"
    "                                           certify an issuing CA (K shares)\n"
    "  root crl [--root device|ops] [--revoke SERIAL --reason R] --share F [--share F ...] --out F\n"
    "                                           a root's CRL (DER), long-lived; --revoke revokes a certificate the\n"
    "                                           vault signed (the root is the one that signed it)\n"
    "  root verify                              check the ceremony record (chain, every root signature)\n"
    "  root transcript                          print the record for the custodians to sign on paper\n"
    "  Passphrases: asked on the terminal (no echo), or --passphrase-file F, once per --share in the same order\n"
    "  (root init: once per custodian, in order); never on the command line.\n";

typedef struct {
    const char *dir, *listen, *http_listen, *name, *csr, *out, *station, *model, *serials, *reason, *order;
    const char *role, *device_serial, *cert_serial, *from, *to, *status, *limit, *offset, *format;
    const char *serial, *proof, *log_cert, *vkey, *witnesses, *log_url, *interval, *ca_root;
    const char *custodians, *quorum, *curve, *profile, *root, *revoke, *generation, *node_id;
    const char *url, *password_file;
    bool accept_rollback;
    const char *checkpoints[16]; /* --checkpoint, repeatable */
    int ncheckpoints;
    const char *certs[8], *crls[8]; /* install --cert, --crl: repeatable, or several values after one flag */
    int ncerts, ncrls;
    const char *shares[16], *passphrase_files[16]; /* --share, --passphrase-file: repeatable */
    int nshares, npassphrase_files;
    const char *words[4]; /* positional words after the options are removed */
    int nwords;
    const char *given[64]; /* every option as given, for the check that the command takes it */
    int ngiven;
} cli_args;

static int parse_args(int argc, char **argv, cli_args *a)
{
    static const struct {
        const char *flag;
        size_t offset;
    } opts[] = {
        {"--dir", offsetof(cli_args, dir)},         {"--listen", offsetof(cli_args, listen)},
        {"--name", offsetof(cli_args, name)},       {"--csr", offsetof(cli_args, csr)},
        {"--out", offsetof(cli_args, out)},         {"--station", offsetof(cli_args, station)},
        {"--model", offsetof(cli_args, model)},     {"--serials", offsetof(cli_args, serials)},
        {"--reason", offsetof(cli_args, reason)},   {"--order", offsetof(cli_args, order)},
        {"--http-listen", offsetof(cli_args, http_listen)},
        {"--role", offsetof(cli_args, role)},       {"--device-serial", offsetof(cli_args, device_serial)},
        {"--cert-serial", offsetof(cli_args, cert_serial)}, {"--from", offsetof(cli_args, from)},
        {"--to", offsetof(cli_args, to)},           {"--status", offsetof(cli_args, status)},
        {"--limit", offsetof(cli_args, limit)},     {"--offset", offsetof(cli_args, offset)},
        {"--format", offsetof(cli_args, format)},
        {"--serial", offsetof(cli_args, serial)},   {"--proof", offsetof(cli_args, proof)},
        {"--log-cert", offsetof(cli_args, log_cert)}, {"--vkey", offsetof(cli_args, vkey)},
        {"--witnesses", offsetof(cli_args, witnesses)}, {"--log", offsetof(cli_args, log_url)},
        {"--interval", offsetof(cli_args, interval)}, {"--ca-root", offsetof(cli_args, ca_root)},
        {"--custodians", offsetof(cli_args, custodians)}, {"--quorum", offsetof(cli_args, quorum)},
        {"--curve", offsetof(cli_args, curve)},     {"--profile", offsetof(cli_args, profile)},
        {"--root", offsetof(cli_args, root)},       {"--revoke", offsetof(cli_args, revoke)},
        {"--generation", offsetof(cli_args, generation)}, {"--node-id", offsetof(cli_args, node_id)},
        {"--url", offsetof(cli_args, url)},         {"--password-file", offsetof(cli_args, password_file)},
    };
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        bool matched = false;
        if (strncmp(argv[i], "--", 2) == 0) {
            if (a->ngiven == (int)(sizeof a->given / sizeof a->given[0])) {
                fprintf(stderr, "camtrust-ca: too many options\n");
                return -1;
            }
            a->given[a->ngiven++] = argv[i];
        }
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !matched; k++) {
            if (strcmp(argv[i], opts[k].flag) != 0) continue;
            if (i + 1 >= argc) {
                fprintf(stderr, "camtrust-ca: %s needs a value\n", argv[i]);
                return -1;
            }
            *(const char **)((char *)a + opts[k].offset) = argv[++i];
            matched = true;
        }
        if (matched) continue;
        if (strcmp(argv[i], "--accept-rollback") == 0) {
            a->accept_rollback = true;
            continue;
        }
        if (strcmp(argv[i], "--cert") == 0 || strcmp(argv[i], "--crl") == 0) {
            bool cert = strcmp(argv[i], "--cert") == 0;
            const char **list = cert ? a->certs : a->crls;
            int *n = cert ? &a->ncerts : &a->ncrls;
            int before = *n;
            for (; i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0 && *n < 8; i++) list[(*n)++] = argv[i + 1];
            if (*n == before) {
                fprintf(stderr, "camtrust-ca: %s needs a file (at most 8)\n", cert ? "--cert" : "--crl");
                return -1;
            }
            continue;
        }
        const char **list = strcmp(argv[i], "--checkpoint") == 0        ? a->checkpoints
                            : strcmp(argv[i], "--share") == 0           ? a->shares
                            : strcmp(argv[i], "--passphrase-file") == 0 ? a->passphrase_files
                                                                        : NULL;
        if (list) {
            int *n = list == a->checkpoints ? &a->ncheckpoints : list == a->shares ? &a->nshares : &a->npassphrase_files;
            if (i + 1 >= argc || *n == 16) {
                fprintf(stderr, "camtrust-ca: %s needs a value (at most 16 of them)\n", argv[i]);
                return -1;
            }
            list[(*n)++] = argv[++i];
            continue;
        }
        if (strncmp(argv[i], "--", 2) == 0) {
            (void)ct_cli_unknown("camtrust-ca", argv[i]);
            return -1;
        }
        if (a->nwords == 4) {
            fprintf(stderr, "camtrust-ca: unexpected '%s'\n", argv[i]);
            return -1;
        }
        a->words[a->nwords++] = argv[i];
    }
    return 0;
}

/* The options each command takes: the first entry whose words match (a one-word
 * command: whatever follows it, as "revoke SERIAL", "crl ops"). */
static const struct {
    const char *command, *options;
} k_commands[] = {
    {"init", "--dir"},
    {"install", "--dir --cert --crl"},
    {"rotate", "--dir"},
    {"serve", "--dir --listen --http-listen --node-id"},
    {"station add", "--dir --name --csr --out"},
    {"viewer add", "--dir --name --csr --out"},
    {"station disable", "--dir"},
    {"station enable", "--dir"},
    {"order create", "--dir --station --model --serials"},
    {"order reprovision", "--dir --station --model --serial"},
    {"order list", "--dir"},
    {"order close", "--dir"},
    {"audit verify", "--dir --checkpoint --vkey --witnesses"},
    {"audit search", "--dir --device-serial --cert-serial --station --order --model --from --to --status --limit "
                     "--offset --format"},
    {"audit report", "--dir --from --to --format"},
    {"officer add", "--dir --name --role --csr --out"},
    {"officer role", "--dir --name --role"},
    {"officer disable", "--dir"},
    {"officer enable", "--dir"},
    {"revoke", "--dir --order --station --reason"},
    {"crl", "--dir --generation --out"},
    {"renew", "--dir"},
    {"log proof", "--dir --serial --out"},
    {"log checkpoint", "--dir --out"},
    {"log verify-proof", "--proof --log-cert"},
    {"log sth", "--dir"},
    {"witness init", "--dir --name --ca-root"},
    {"witness", "--dir --log --vkey --interval"},
    {"db migrate-to", "--dir --url --password-file"},
    {"backup", "--dir --out"},
    {"restore", "--dir --from --checkpoint --accept-rollback"},
    {"root init", "--dir --custodians --quorum --curve --passphrase-file"},
    {"root sign", "--dir --csr --profile --share --passphrase-file --out"},
    {"root crl", "--dir --root --revoke --reason --share --passphrase-file --out"},
    {"root verify", "--dir"},
    {"root transcript", "--dir"},
};

/* An option the command does not take is refused, not ignored. A command not in the table is left to the usage. */
static bool options_taken(const cli_args *a)
{
    for (size_t k = 0; k < sizeof k_commands / sizeof k_commands[0]; k++) {
        const char *c = k_commands[k].command, *second = strchr(c, ' ');
        size_t n = second ? (size_t)(second - c) : strlen(c);
        if (strncmp(c, a->words[0], n) != 0 || a->words[0][n] != '\0') continue;
        if (second && (a->nwords < 2 || strcmp(second + 1, a->words[1]) != 0)) continue;
        for (int i = 0; i < a->ngiven; i++)
            if (!ct_cli_takes("camtrust-ca", c, k_commands[k].options, a->given[i])) return false;
        return true;
    }
    return true;
}

static int fail(ct_err e)
{
    const char *detail = ct_err_detail();
    fprintf(stderr, "camtrust-ca: %s\n", *detail ? detail : ct_err_message(e));
    return 1;
}

static bool is(const cli_args *a, const char *w0, const char *w1, int nwords)
{
    return a->nwords == nwords && strcmp(a->words[0], w0) == 0 && (!w1 || strcmp(a->words[1], w1) == 0);
}

static ct_err need(const char *value, const char *flag)
{
    return value ? CT_OK : ct_fail(CT_ERR_USAGE, "%s is required", flag);
}

/* revoke SERIAL | --order ID | --station NAME, each with --reason. */
static ct_err revoke(ca *c, const cli_args *a)
{
    ca_revoke_request req = {.reason = a->reason, .actor = "cli"};
    int targets = (a->nwords == 2) + (a->order != NULL) + (a->station != NULL);
    CT_GUARD_RET(need(a->reason, "--reason"));
    CT_ENSURE_RET(targets == 1, ct_fail(CT_ERR_USAGE, "revoke takes one of: SERIAL, --order ID, --station NAME"));
    req.scope = a->order ? DB_REVOKE_ORDER : a->station ? DB_REVOKE_STATION : DB_REVOKE_CERT;
    req.target = a->order ? a->order : a->station ? a->station : a->words[1];
    db_revoke_count n = {0};
    CT_GUARD_RET(ca_revoke(c, &req, &n));
    printf("revoked %lld certificate%s (%s)", (long long)n.revoked, n.revoked == 1 ? "" : "s", a->reason);
    if (n.same_key)
        printf(", and %lld other certificate%s of the same key", (long long)n.same_key, n.same_key == 1 ? "" : "s");
    printf("\n");
    return CT_OK;
}

/* audit search | audit report: written to stdout in the asked format (table by default). */
static ct_err audit_read(ca *c, const cli_args *a, bool search)
{
    ca_format f = CA_FORMAT_TABLE;
    ct_buf out = CT_BUF_INIT;
    if (a->format) CT_GUARD_RET(ca_format_parse(a->format, &f));
    ca_search_args q = {a->device_serial, a->cert_serial, a->station, a->order, a->model,
                        a->from,          a->to,          a->status,  a->limit, a->offset};
    CT_GUARD_RET(search ? ca_audit_search(c, &q, f, &out) : ca_audit_report(c, a->from, a->to, f, &out));
    ct_err rc = fwrite(out.data, 1, out.len, stdout) == out.len ? CT_OK : ct_fail(CT_ERR_IO, "cannot write the output");
    ct_buf_free(&out);
    return rc;
}

/* audit verify: the audit chain; then, on an intact chain, the state tables rebuilt from it, the issuance log and
 * each kept checkpoint, each with its own line (an edit often shows in several: the operator sees every finding).
 * `folder`: also the checkpoint the CA keeps in its folder (not for a copy being restored: restore compares). */
static ct_err audit_verify(ca *c, const cli_args *a, bool folder)
{
    db_audit_report report;
    db_state_report state;
    db_log_report log;
    if (ca_roots_online(c)) printf("WARNING: %s\n", CA_ROOTS_ONLINE_MSG);
    ct_err state_rc = CT_OK;
    ct_err rc = ca_audit_state_verify(c, &report, &state, &state_rc);
    if (rc == CT_ERR_INTEGRITY) printf("audit log BROKEN: %s\n", report.reason);
    CT_GUARD_RET(rc);
    printf("audit log intact: %lld entries, each MACed in the token from entry %lld\n", (long long)report.entries,
           (long long)report.keyed_from);
    if (state.warning[0]) printf("WARNING: %s\n", state.warning);
    if (state_rc == CT_ERR_INTEGRITY) printf("state tables BROKEN: %s\n", state.reason);
    else if (state_rc == CT_OK)
        printf("state tables match the audit: %lld entries replayed, %lld rows compared\n", (long long)state.entries,
               (long long)state.rows);
    else return state_rc;
    int64_t files = 0;
    ct_err certs_rc = ca_certs_verify(c, &files);
    if (certs_rc == CT_ERR_INTEGRITY) printf("CA certificates BROKEN: %s\n", ct_err_detail());
    else if (certs_rc == CT_OK && files == 0)
        printf("CA certificates: none yet (the key ceremony's certificates are not installed)\n");
    else if (certs_rc == CT_OK)
        printf("CA certificates match the audit: %lld files; %s certifies the key of log.vkey\n", (long long)files,
               CA_NOTE_CERT_FILE);
    else return certs_rc;
    rc = ca_log_verify(c, &log);
    if (rc == CT_ERR_INTEGRITY) printf("issuance log BROKEN: %s\n", log.reason);
    CT_GUARD_RET(rc);
    printf("issuance log intact: %lld leaves, %lld tree heads verified\n", (long long)log.leaves,
           (long long)log.tree_heads);
    int64_t kept = 0;
    rc = ca_log_checkpoints_verify(c, &kept);
    if (rc == CT_ERR_INTEGRITY) printf("checkpoints BROKEN: %s\n", ct_err_detail());
    CT_GUARD_RET(rc);
    printf("checkpoints intact: %lld verified with log.vkey\n", (long long)kept);
    ca_checkpoint_info in_folder;
    bool present = false;
    ct_err kept_rc = folder ? ca_kept_checkpoint_check(c, &in_folder, &present) : CT_OK;
    if (kept_rc == CT_ERR_INTEGRITY) printf("checkpoint kept by the CA CONTRADICTED: %s\n", ct_err_detail());
    else if (kept_rc != CT_OK) return kept_rc;
    else if (present)
        printf("checkpoint kept by the CA (%s) extended: size %llu, audit entries %llu\n", CA_KEPT_CHECKPOINT_FILE,
               (unsigned long long)in_folder.tree_size, (unsigned long long)in_folder.audit_entries);
    for (int i = 0; i < a->ncheckpoints; i++) {
        ca_checkpoint_info info;
        rc = ca_log_checkpoint_check(c, a->checkpoints[i], a->vkey, &info);
        if (rc == CT_ERR_INTEGRITY) printf("checkpoint CONTRADICTED: %s\n", ct_err_detail());
        CT_GUARD_RET(rc);
        printf("checkpoint %s extended: size %llu, audit entries %llu, signed at %llu\n", a->checkpoints[i],
               (unsigned long long)info.tree_size, (unsigned long long)info.audit_entries,
               (unsigned long long)info.time_ms);
    }
    if (a->witnesses) {
        char *end = NULL;
        long long k = strtoll(a->witnesses, &end, 10);
        CT_ENSURE_RET(*a->witnesses && !*end && k >= 1 && k <= 1000,
                      ct_fail(CT_ERR_USAGE, "--witnesses '%s' is not a number from 1", a->witnesses));
        /* each given checkpoint as kept (with the cosignatures it was served with), else the newest in the database */
        for (int i = 0; i < (a->ncheckpoints ? a->ncheckpoints : 1); i++) {
            const char *f = a->ncheckpoints ? a->checkpoints[i] : NULL;
            size_t have = 0, configured = 0;
            rc = ca_log_witnessed(c, f, (size_t)k, &have, &configured);
            if (rc == CT_ERR_INTEGRITY) printf("checkpoint NOT WITNESSED: %s\n", ct_err_detail());
            CT_GUARD_RET(rc);
            printf("checkpoint witnessed: %zu of %zu configured witnesses cosigned %s (%lld required)\n", have,
                   configured, f ? f : "the newest checkpoint", k);
        }
    }
    return state_rc != CT_OK ? state_rc : certs_rc != CT_OK ? certs_rc : kept_rc;
}

/* log checkpoint [--out F] */
static ct_err log_checkpoint(ca *c, const cli_args *a)
{
    ct_buf note = CT_BUF_INIT;
    ct_err rc = ca_log_checkpoint(c, "cli", &note);
    if (rc == CT_OK && a->out) rc = ct_file_write_atomic(a->out, note.data, note.len, 0644);
    else if (rc == CT_OK && fwrite(note.data, 1, note.len, stdout) != note.len)
        rc = ct_fail(CT_ERR_IO, "cannot write the output");
    if (rc == CT_OK && a->out) printf("checkpoint written: %s\n", a->out);
    ct_buf_free(&note);
    return rc;
}

/* log sth | log proof --serial HEX --out FILE */
static ct_err log_command(ca *c, const cli_args *a)
{
    if (strcmp(a->words[1], "sth") == 0) {
        db_tree_head h;
        char root[2 * CT_MERKLE_HASH_LEN + 1];
        CT_GUARD_RET(ca_log_sth(c, "cli", &h));
        CT_GUARD_RET(ct_hex_encode(h.head.root, sizeof h.head.root, root, sizeof root));
        printf("tree head %lld: size %llu, timestamp %llu, root %s\n", (long long)h.id,
               (unsigned long long)h.head.tree_size, (unsigned long long)h.head.timestamp_ms, root);
        return CT_OK;
    }
    CT_GUARD_RET(need(a->serial, "--serial"));
    CT_GUARD_RET(need(a->out, "--out"));
    CT_GUARD_RET(ca_log_proof_write(c, a->serial, a->out));
    printf("inclusion proof written: %s\n", a->out);
    return CT_OK;
}

/* log verify-proof --proof FILE --log-cert FILE: offline, without a CA. */
static int verify_proof(const cli_args *a)
{
    ca_log_proof_info info;
    ct_err rc = need(a->proof, "--proof");
    if (rc == CT_OK) rc = need(a->log_cert, "--log-cert");
    if (rc == CT_OK) rc = ca_log_proof_check(a->proof, a->log_cert, &info);
    if (rc == CT_ERR_INTEGRITY) {
        printf("proof INVALID: %s\n", ct_err_detail());
        return 1;
    }
    if (rc != CT_OK) return fail(rc);
    printf("proof valid: certificate %s (%s) is leaf %llu of the tree of %llu leaves signed at %llu\n",
           info.cert_serial, info.subject_serial, (unsigned long long)info.leaf_index,
           (unsigned long long)info.tree_size, (unsigned long long)info.timestamp_ms);
    return 0;
}

/* The checkpoint verifier key init wrote, for the operator to hand to whoever keeps checkpoints. */
static int print_vkey(const char *dir)
{
    char path[1024];
    ct_buf vkey = CT_BUF_INIT;
    ct_err rc = ct_path_join(path, sizeof path, dir, "log.vkey");
    if (rc == CT_OK) rc = ct_file_read(path, 1024, &vkey);
    if (rc != CT_OK) return fail(rc);
    printf("checkpoint verifier key (log.vkey): %.*s", (int)vkey.len, (const char *)vkey.data);
    ct_buf_free(&vkey);
    return 0;
}

/* witness init --name N | witness --log URL --vkey F [--interval S]: a witness folder, not a CA's. */
static int witness_command(const cli_args *a)
{
    if (a->nwords == 2) {
        char vkey[512];
        ct_err rc = ca_witness_init(a->dir, a->name, a->ca_root, vkey, sizeof vkey);
        if (rc != CT_OK) return fail(rc);
        printf("witness created in %s; its verifier key (witness.vkey), for the CA's log.witnesses:\n%s\n", a->dir, vkey);
        return 0;
    }
    char *end = NULL;
    double s = a->interval ? strtod(a->interval, &end) : 10.0;
    if (a->interval && (end == a->interval || *end || !(s >= 0.05 && s <= 86400))) {
        fprintf(stderr, "camtrust-ca: --interval '%s' is not 0.05 to 86400 seconds\n", a->interval);
        return 2;
    }
    ct_err rc = ca_witness_run(a->dir, a->log_url, a->vkey, (long)(s * 1000.0 + 0.5));
    return rc == CT_OK ? 0 : rc == CT_ERR_INTEGRITY ? 1 : fail(rc);
}

/* backup --out F: without the token, while the CA may be serving. */
static int backup_command(const cli_args *a)
{
    ca_backup_summary s;
    char root[65], when[CT_TIME_UTC_MAX] = "";
    ct_err rc = need(a->out, "--out");
    if (rc == CT_OK) rc = ca_backup(a->dir, a->out, &s);
    if (rc == CT_OK) rc = ct_hex_encode(s.root_sha256, sizeof s.root_sha256, root, sizeof root);
    if (rc != CT_OK) return fail(rc);
    printf("backup written: %s (mode 0600) of the CA whose device root has SHA-256 %s\n", a->out, root);
    printf("it holds: schema version %lld, %lld audit entries, a log of %lld certificates, %lld checkpoints\n",
           (long long)s.db.schema_version, (long long)s.db.audit_entries, (long long)s.db.log_size,
           (long long)s.db.checkpoints);
    if (s.checkpoint_time_ms) ct_time_utc((int64_t)(s.checkpoint_time_ms / 1000), when);
    if (s.db.checkpoints)
        printf("newest checkpoint: size %lld, audit entries %lld%s%s\n", (long long)s.db.checkpoint_size,
               (long long)s.db.checkpoint_audit_entries, *when ? ", signed " : "", when);
    return 0;
}

/* restore --from F [--checkpoint K ...] [--accept-rollback]: the copy checked (before and then with the token),
 * compared with the checkpoints kept outside it, put in place; or a rollback accepted. */
static int restore_command(const cli_args *a)
{
    ct_err rc = CT_OK;
    bool rolled_back = false;
    char replaced[1200] = "";
    if (!a->from && !a->accept_rollback) {
        fprintf(stderr, "camtrust-ca: restore needs --from FILE (or --accept-rollback)\n");
        return 2;
    }
    if (a->from) {
        ca_restore *r = NULL;
        ca *staged = NULL;
        rc = ca_restore_begin(a->dir, a->from, &r);
        if (rc == CT_OK) {
            const db_backup_info *i = ca_restore_info(r);
            printf("checking %s: schema version %lld, %lld audit entries, a log of %lld certificates\n", a->from,
                   (long long)i->schema_version, (long long)i->audit_entries, (long long)i->log_size);
            rc = ca_open_db(a->dir, ca_restore_staged(r), &staged);
            if (rc != CT_OK) rc = ct_fail_ctx(rc, "%s", a->from); /* a newer schema, keys it names that are not here */
        }
        if (rc == CT_OK) {
            cli_args alone = *a; /* the copy's own checks: the kept checkpoints are compared below */
            alone.ncheckpoints = 0;
            alone.witnesses = NULL;
            rc = audit_verify(staged, &alone, false);
            if (rc == CT_ERR_INTEGRITY) rc = ct_fail(rc, "%s does not verify (above): nothing restored", a->from);
        }
        if (rc == CT_OK)
            rc = ca_restore_compare(r, staged, a->checkpoints, (size_t)a->ncheckpoints, a->accept_rollback, stdout,
                                   &rolled_back);
        ca_close(staged);
        if (rc == CT_OK) rc = ca_restore_commit(r, replaced, sizeof replaced);
        ca_restore_end(r);
        if (rc != CT_OK) return fail(rc);
        printf("restored %s into %s%s%s\n", a->from, a->dir, *replaced ? "; the database it replaced: " : "", replaced);
    }
    if (rolled_back && !a->accept_rollback) {
        printf("ROLLED BACK: %s refuses to serve this database until an officer accepts it: camtrust-ca restore "
               "--dir %s --accept-rollback\n", a->dir, a->dir);
        return 1;
    }
    if (!a->accept_rollback) return 0;
    ca *c = NULL;
    ca_checkpoint_info kept = {0}, now = {0};
    bool accepted = false;
    rc = ca_open(a->dir, &c);
    if (rc == CT_OK) rc = ca_rollback_accept(c, &kept, &now, &accepted);
    ca_close(c);
    if (rc != CT_OK) return fail(rc);
    if (!accepted && !a->from) /* with --from, a rollback only the replaced database showed is accepted above */
        printf("nothing to accept: the database extends %s/%s\n", a->dir, CA_KEPT_CHECKPOINT_FILE);
    else if (accepted)
        printf("rollback accepted (audited: ca.rollback_accept): the log went back from size %llu (audit entries %llu) "
               "to %llu (audit entries %llu, the acceptance included); %s keeps its checkpoint from now on. Witnesses "
               "and stations that kept the newer one still refuse this log\n",
               (unsigned long long)kept.tree_size, (unsigned long long)kept.audit_entries,
               (unsigned long long)now.tree_size, (unsigned long long)now.audit_entries, CA_KEPT_CHECKPOINT_FILE);
    return 0;
}

/* A count option of root init. */
static ct_err count_arg(const char *value, const char *flag, unsigned *out)
{
    char *end = NULL;
    CT_GUARD_RET(need(value, flag));
    long n = strtol(value, &end, 10);
    CT_ENSURE_RET(*value && !*end && n >= 1 && n <= VAULT_MAX_CUSTODIANS,
                  ct_fail(CT_ERR_USAGE, "%s '%s' is not a number from 1 to %d", flag, value, VAULT_MAX_CUSTODIANS));
    *out = (unsigned)n;
    return CT_OK;
}

/* root init | sign | crl | verify | transcript: the vault folder DIR, never a CA's. */
static int root_command(const cli_args *a)
{
    vault_custodian who[16];
    ct_err rc = CT_OK;
    int nwho = strcmp(a->words[1], "init") == 0 ? 0 : a->nshares;
    memset(who, 0, sizeof who);
    if (strcmp(a->words[1], "init") == 0) {
        vault_init_args ia = {.dir = a->dir, .curve = a->curve, .who = who};
        if ((rc = count_arg(a->custodians, "--custodians", &ia.custodians)) != CT_OK ||
            (rc = count_arg(a->quorum, "--quorum", &ia.quorum)) != CT_OK)
            return fail(rc);
        nwho = (int)ia.custodians;
        if (a->npassphrase_files && a->npassphrase_files != nwho) {
            fprintf(stderr, "camtrust-ca: give one --passphrase-file per custodian (%d), or none to be asked\n", nwho);
            return 2;
        }
        for (int i = 0; i < nwho && a->npassphrase_files; i++) who[i].passphrase_file = a->passphrase_files[i];
        if ((rc = vault_init(&ia)) != CT_OK) return fail(rc);
        printf("root vault created in %s: root.pem, ops-root.pem, custodian-1.share to custodian-%u.share "
               "(any %u rebuild its PIN); hand each custodian their share\n", a->dir, ia.custodians, ia.quorum);
        return 0;
    }
    if (a->npassphrase_files && a->npassphrase_files != a->nshares) {
        fprintf(stderr, "camtrust-ca: give one --passphrase-file per --share, in the same order, or none to be asked\n");
        return 2;
    }
    for (int i = 0; i < nwho; i++) {
        who[i].share = a->shares[i];
        who[i].passphrase_file = a->npassphrase_files ? a->passphrase_files[i] : NULL;
    }
    vault_quorum q = {a->dir, who, (size_t)nwho};
    if (strcmp(a->words[1], "sign") == 0) {
        vault_profile p;
        vault_signed info;
        if ((rc = need(a->csr, "--csr")) == CT_OK && (rc = need(a->out, "--out")) == CT_OK &&
            (rc = vault_profile_parse(a->profile, &p)) == CT_OK && (rc = vault_sign(&q, a->csr, p, a->out, &info)) == CT_OK)
            printf("%s certified by the %s root: serial %s, %s\n", info.subject_cn, info.root, info.serial_hex, a->out);
    } else if (strcmp(a->words[1], "crl") == 0) {
        vault_crl_args cr = {a->root, a->revoke, a->reason};
        uint64_t number = 0;
        char root[8] = "";
        if ((rc = need(a->out, "--out")) == CT_OK && (rc = vault_crl(&q, &cr, a->out, &number, root)) == CT_OK)
            printf("%s root CRL number %llu written: %s\n", root, (unsigned long long)number, a->out);
    } else if (strcmp(a->words[1], "verify") == 0) {
        vault_record_report r;
        rc = vault_verify(a->dir, &r);
        if (rc == CT_ERR_INTEGRITY) printf("ceremony record BROKEN: %s\n", ct_err_detail());
        else if (rc == CT_OK)
            printf("ceremony record intact: %zu entries, each signed by its root; head %s (compare with the last "
                   "paper transcript)\n", r.entries, r.head);
    } else if (strcmp(a->words[1], "transcript") == 0) {
        rc = vault_transcript(a->dir, stdout);
    } else {
        fputs(usage, stderr);
        return 2;
    }
    return rc == CT_OK ? 0 : (rc == CT_ERR_INTEGRITY && strcmp(a->words[1], "verify") == 0 ? 1 : fail(rc));
}

static int run(ca *c, const cli_args *a)
{
    ct_err rc = CT_OK;
    if (is(a, "serve", NULL, 1)) {
        /* Its refusals are one line each, CT_ERR_INTEGRITY too (nothing else printed it). */
        if (a->node_id && (rc = ca_node_id_set(c, a->node_id)) != CT_OK) return fail(rc);
        if ((rc = ca_serve(c, a->listen, a->http_listen)) != CT_OK) return fail(rc);
    } else if (is(a, "station", "add", 2) || is(a, "viewer", "add", 2)) {
        ct_err (*add)(ca *, const char *, const char *, const char *) = a->words[0][0] == 'v' ? ca_viewer_add
                                                                                           : ca_station_add;
        if ((rc = need(a->name, "--name")) == CT_OK && (rc = need(a->csr, "--csr")) == CT_OK &&
            (rc = need(a->out, "--out")) == CT_OK && (rc = add(c, a->name, a->csr, a->out)) == CT_OK)
            printf("%s %s certified: %s\n", a->words[0], a->name, a->out);
    } else if (is(a, "station", "disable", 3) || is(a, "station", "enable", 3)) {
        bool enable = strcmp(a->words[1], "enable") == 0;
        if ((rc = ca_station_set_enabled(c, a->words[2], enable)) == CT_OK)
            printf("station %s %s\n", a->words[2], enable ? "enabled" : "disabled");
    } else if (is(a, "order", "create", 2)) {
        int64_t id = 0;
        if ((rc = need(a->station, "--station")) == CT_OK && (rc = need(a->model, "--model")) == CT_OK &&
            (rc = need(a->serials, "--serials")) == CT_OK &&
            (rc = ca_order_create(c, a->station, a->model, a->serials, &id)) == CT_OK)
            printf("order %lld created for station %s\n", (long long)id, a->station);
    } else if (is(a, "order", "reprovision", 2)) {
        int64_t id = 0;
        if ((rc = need(a->station, "--station")) == CT_OK && (rc = need(a->model, "--model")) == CT_OK &&
            (rc = need(a->serial, "--serial")) == CT_OK &&
            (rc = ca_order_reprovision(c, a->station, a->model, a->serial, &id)) == CT_OK)
            printf("order %lld created for station %s: %s may be issued once more\n", (long long)id, a->station,
                   a->serial);
    } else if (is(a, "order", "list", 2)) {
        rc = ca_order_list(c, stdout);
    } else if (is(a, "order", "close", 3)) {
        char *end = NULL;
        long long id = strtoll(a->words[2], &end, 10);
        rc = *end || id <= 0 ? ct_fail(CT_ERR_USAGE, "order id '%s' is not a number", a->words[2])
                             : ca_order_close(c, (int64_t)id);
        if (rc == CT_OK) printf("order %lld closed\n", id);
    } else if (is(a, "revoke", NULL, 1) || is(a, "revoke", NULL, 2)) {
        rc = revoke(c, a);
    } else if (is(a, "crl", NULL, 1) || is(a, "crl", "device", 2) || is(a, "crl", "ops", 2)) {
        ca_crl_kind kind = a->nwords == 2 && strcmp(a->words[1], "ops") == 0 ? CA_CRL_OPS : CA_CRL_DEVICE;
        char *end = NULL;
        long long gen = a->generation ? strtoll(a->generation, &end, 10) : 0;
        if (a->generation && (!*a->generation || *end || gen < 1))
            rc = ct_fail(CT_ERR_USAGE, "--generation '%s' is not a generation number (1, 2, ...)", a->generation);
        else if ((rc = need(a->out, "--out")) == CT_OK && (rc = ca_crl_write(c, kind, (int64_t)gen, a->out)) == CT_OK)
            printf("%sCRL written: %s\n", kind == CA_CRL_OPS ? "operations " : "", a->out);
    } else if (is(a, "renew", NULL, 2)) {
        time_t until = 0;
        char when[CT_TIME_UTC_MAX];
        if ((rc = ca_renew(c, a->words[1], &until)) == CT_OK) {
            ct_time_utc((int64_t)until, when);
            printf("renewed %s: valid until %s (restart the server to use it)\n", a->words[1], when);
        }
    } else if (is(a, "officer", "add", 2)) {
        if ((rc = need(a->name, "--name")) == CT_OK && (rc = need(a->role, "--role")) == CT_OK &&
            (rc = need(a->csr, "--csr")) == CT_OK && (rc = need(a->out, "--out")) == CT_OK &&
            (rc = ca_officer_add(c, a->name, a->role, a->csr, a->out)) == CT_OK)
            printf("officer %s certified as %s: %s\n", a->name, a->role, a->out);
    } else if (is(a, "officer", "disable", 3) || is(a, "officer", "enable", 3)) {
        bool enable = strcmp(a->words[1], "enable") == 0;
        if ((rc = ca_officer_set_enabled(c, a->words[2], enable)) == CT_OK)
            printf("officer %s %s\n", a->words[2], enable ? "enabled" : "disabled");
    } else if (is(a, "officer", "role", 2)) {
        if ((rc = need(a->name, "--name")) == CT_OK && (rc = need(a->role, "--role")) == CT_OK &&
            (rc = ca_officer_set_role(c, a->name, a->role)) == CT_OK)
            printf("officer %s is now %s\n", a->name, a->role);
    } else if (is(a, "audit", "search", 2) || is(a, "audit", "report", 2)) {
        rc = audit_read(c, a, strcmp(a->words[1], "search") == 0);
    } else if (is(a, "audit", "verify", 2)) {
        /* A read connection: the chain's MACs are checked on it while the state tables are rebuilt on the writer. */
        if ((rc = db_readers_open(ca_db(c), 1)) == CT_OK) rc = audit_verify(c, a, true);
    } else if (is(a, "rotate", NULL, 2)) {
        char path[1024];
        if ((rc = ca_rotate(c, a->words[1], path, sizeof path)) == CT_OK)
            printf("new %s key made; its request for the ceremony: %s\n", a->words[1], path);
    } else if (is(a, "log", "checkpoint", 2)) {
        rc = log_checkpoint(c, a);
    } else if (is(a, "log", "sth", 2) || is(a, "log", "proof", 2)) {
        rc = log_command(c, a);
    } else {
        fputs(usage, stderr);
        return 2;
    }
    return rc == CT_OK ? 0 : (rc == CT_ERR_INTEGRITY ? 1 : fail(rc));
}

/* db migrate-to: audit verify, the copy, audit verify of the copy and the same newest checkpoint; on any failure
 * the folder keeps (or gets back) its SQLite configuration. */
static int migrate_to(const cli_args *a)
{
    ca *c = NULL;
    ct_buf before = CT_BUF_INIT, after = CT_BUF_INIT;
    int64_t rows = 0;
    bool switched = false;
    ca_folder_lock *lock = NULL;
    ct_err rc = need(a->url, "--url");
    /* Held to the end: no server starts on the folder between the switch and the proof (or the switch back). */
    if (rc == CT_OK) rc = ca_serving_lock(a->dir, true, &lock);
    if (rc == CT_OK) rc = ca_open(a->dir, &c);
    if (rc == CT_OK) printf("the CA in SQLite:\n");
    if (rc == CT_OK) rc = audit_verify(c, a, true);
    if (rc == CT_OK) rc = ca_log_checkpoint(c, "cli", &before);
    if (rc == CT_OK) rc = ca_db_migrate_to(c, a->url, a->password_file, &rows);
    switched = rc == CT_OK;
    ca_close(c);
    c = NULL;
    if (switched) ct_failpoint_hold("migrate-to:switched"); /* tests: a serve tried between switch and proof */
    if (rc == CT_OK) printf("copied %lld rows; the copy in PostgreSQL:\n", (long long)rows);
    if (rc == CT_OK) rc = ca_open(a->dir, &c);
    if (rc == CT_OK) rc = audit_verify(c, a, true);
    if (rc == CT_OK) rc = ca_log_checkpoint(c, "cli", &after);
    if (rc == CT_OK && (before.len != after.len || memcmp(before.data, after.data, before.len) != 0))
        rc = ct_fail(CT_ERR_INTEGRITY, "the copy's newest checkpoint is not the original's");
    if (rc == CT_OK) rc = ca_db_migrated(c, "sqlite", rows);
    ca_close(c);
    if (rc == CT_OK) printf("the same newest checkpoint; %s now keeps its records in PostgreSQL\n", a->dir);
    if (rc != CT_OK && switched && ca_db_use_sqlite(a->dir) == CT_OK) fprintf(stderr, "camtrust-ca: %s stays on SQLite\n", a->dir);
    ca_folder_unlock(lock);
    ct_buf_free(&before);
    ct_buf_free(&after);
    return rc == CT_OK ? 0 : fail(rc);
}

/* The commands that write into --dir (a CA folder, a vault's, a witness's) first remove what a killed writer left
 * there: ct_file_write_atomic's NAME.tmp.PID of a process that is gone (a live one's stays). Those that only read
 * leave the folder alone (they may run without the right to write it); init, root init and witness init make a new
 * folder, and backup writes elsewhere. */
static bool writes_dir(const cli_args *a)
{
    if (strcmp(a->words[0], "root") == 0)
        return a->nwords == 2 && (strcmp(a->words[1], "sign") == 0 || strcmp(a->words[1], "crl") == 0);
    return !(is(a, "init", NULL, 1) || is(a, "witness", "init", 2) || is(a, "backup", NULL, 1) ||
             is(a, "order", "list", 2) || (a->nwords == 2 && strcmp(a->words[0], "audit") == 0) ||
             strcmp(a->words[0], "log") == 0 || strcmp(a->words[0], "crl") == 0);
}

int main(int argc, char **argv)
{
    cli_args a;
    if (ct_cli_help(argc, argv, usage)) return 0;
    /* A wrong option or word is named in one line (parse_args printed it); no command at all gets the usage. */
    if (parse_args(argc, argv, &a) != 0) return 2;
    if (a.nwords == 0) {
        fputs(usage, stderr);
        return 2;
    }
    if (!options_taken(&a)) return 2;
    if (is(&a, "log", "verify-proof", 2)) return verify_proof(&a);
    if (!a.dir) {
        fprintf(stderr, "camtrust-ca: --dir DIR is required\n");
        return 2;
    }
    if (writes_dir(&a)) {
        ct_err rc = ct_stale_remove(a.dir, "", ".tmp.");
        if (rc != CT_OK) return fail(rc);
    }
    if (is(&a, "witness", NULL, 1) || is(&a, "witness", "init", 2)) return witness_command(&a);
    if (a.nwords == 2 && strcmp(a.words[0], "root") == 0) return root_command(&a);
    if (is(&a, "backup", NULL, 1)) return backup_command(&a);
    if (is(&a, "restore", NULL, 1)) return restore_command(&a);
    if (is(&a, "init", NULL, 1)) {
        ct_err rc = ca_init(a.dir);
        if (rc != CT_OK) return fail(rc);
        printf("CA created in %s (%s); its issuing CAs' requests for the key ceremony: %s/device-issuing.csr "
               "%s/ops-issuing.csr\n", a.dir, CA_CONFIG_FILE, a.dir, a.dir);
        return print_vkey(a.dir);
    }
    if (is(&a, "db", "migrate-to", 2)) return migrate_to(&a);
    if (is(&a, "install", NULL, 1)) {
        ct_err rc = ca_install(a.dir, a.certs, (size_t)a.ncerts, a.crls, (size_t)a.ncrls);
        if (rc != CT_OK) return fail(rc);
        printf("installed in %s: root.pem, ops-root.pem, chain.pem, the issuing CAs and the certificates they sign\n",
               a.dir);
        return 0;
    }
    ca *c = NULL;
    ct_err rc = is(&a, "audit", "verify", 2) ? ca_open_installing(a.dir, &c) : ca_open(a.dir, &c);
    if (rc != CT_OK) return fail(rc);
    int status = run(c, &a);
    ca_close(c);
    return status;
}
