/* The CA's own certificate files against the audit, and the checkpoint key's certificate.
 *
 * Every certificate file the CA uses (root.pem ... log.pem, and log-checkpoint.pem) is recorded in the audit:
 * "ca.cert" when issued at init (or first seen by a CA folder made before these records: trusted as found, like
 * the state entry of migration 9), "ca.renew" when renewed. `audit verify` and the server's start compare each
 * file's SHA-256 with its newest record, so an older certificate put back after a renewal is named; a file cannot
 * be replaced by one the token never signed (ca_open checks each against its token key).
 *
 * The Ed25519 checkpoint key is certified by the operations issuing CA (log-checkpoint.pem, profile of the log
 * signer: digitalSignature only), issued at init, or at the next open of a CA folder without it.
 *
 * The certificates the CA issues to itself (server.pem, ocsp-signer.pem, log.pem, log-checkpoint.pem) are also
 * rows of the certificates table, recorded at the same points (and at the first open of an older folder). */
#define _DEFAULT_SOURCE /* flock */
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "ca_priv.h"

#define CERTS_ACTOR "ca"
#define DAY_SECONDS 86400

/* The i-th certificate file the CA uses: its name and DER (`scratch` holds a file read here); false past the last. */
static ct_err cert_in_use(ca *c, int i, const char **file, const ct_buf **der, ct_buf *scratch, bool *more)
{
    *more = i <= CA_KEY__COUNT;
    if (i < CA_KEY__COUNT) {
        *file = ca_key_cert_file[i];
        *der = &c->signers[i].cert_der; /* empty for a signer an older folder lacks */
        return CT_OK;
    }
    if (i > CA_KEY__COUNT) return CT_OK;
    char path[CA_PATH_MAX];
    *file = CA_NOTE_CERT_FILE;
    *der = scratch;
    CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, CA_NOTE_CERT_FILE));
    ct_buf_free(scratch);
    return ca_read_cert_file(path, scratch);
}

static ct_err record(ca *c, const char *file, const ct_buf *der)
{
    pki_cert_info info;
    CT_GUARD_RET(pki_cert_parse_info(der->data, der->len, &info));
    return db_cert_file_record_add(c->db, CERTS_ACTOR, file, info.serial_hex, (int64_t)info.not_after,
                                   info.cert_sha256);
}

/* The CA's own certificates among the files (cert_in_use's index), under the issuing CA that signs them. */
static const struct {
    int file;
    const char *profile;
    db_crl_issuer issuer;
} k_own[] = {{CA_KEY_TLS, DB_PROFILE_CA_TLS, DB_CRL_OPS},
             {CA_KEY_OCSP, DB_PROFILE_CA_OCSP, DB_CRL_DEVICE},
             {CA_KEY_LOG, DB_PROFILE_CA_LOG, DB_CRL_OPS},
             {CA_KEY__COUNT, DB_PROFILE_CA_CHECKPOINT, DB_CRL_OPS}};

/* One of the CA's own certificates, in use and as the audit records its file (`sha256`), in the certificates
 * table: OCSP answers for it (and a CRL lists it once revoked) like for every certificate this CA issues, rather
 * than "unknown". Under the generation whose key signed it (0 when none of this CA's: only generation 1 answers). */
static ct_err own_cert_record(ca *c, int i, const char *file, const ct_buf *der, const uint8_t sha256[32])
{
    size_t k = 0;
    db_cert_state st;
    pki_cert_info info;
    while (k < sizeof k_own / sizeof k_own[0] && k_own[k].file != i) k++;
    if (k == sizeof k_own / sizeof k_own[0]) return CT_OK; /* a root's or an issuing CA's: the vault's CRLs answer */
    CT_GUARD_RET(pki_cert_parse_info(der->data, der->len, &info));
    if (memcmp(info.cert_sha256, sha256, 32) != 0) return CT_OK; /* not the one recorded: audit verify names it */
    ct_err rc = db_cert_state_get(c->db, k_own[k].issuer, info.serial_hex, &st);
    if (rc != CT_ERR_NOT_FOUND) return rc; /* recorded already (or the error) */
    db_cert_record rec = {.not_before = info.not_before, .not_after = info.not_after, .der = der->data,
                          .der_len = der->len};
    for (size_t g = 0; g < c->n_gens && !rec.issuing_ca; g++)
        if ((db_crl_issuer)c->gens[g].kind == k_own[k].issuer &&
            pki_cert_verify_signed_by(der->data, der->len, c->gens[g].s.cert_der.data, c->gens[g].s.cert_der.len,
                                      time(NULL)) == CT_OK)
            rec.issuing_ca = c->gens[g].id;
    ct_err_clear();
    memcpy(rec.spki_sha256, info.spki_sha256, sizeof rec.spki_sha256);
    CT_GUARD_RET(ct_strlcpy(rec.cert_serial_hex, sizeof rec.cert_serial_hex, info.serial_hex));
    CT_GUARD_RET(ct_strlcpy(rec.device_serial, sizeof rec.device_serial, file));
    CT_GUARD_RET(ct_strlcpy(rec.profile, sizeof rec.profile, k_own[k].profile));
    CT_GUARD_RET(ct_snprintf(rec.subject, sizeof rec.subject, "CN=%s", info.subject_cn));
    return db_ca_cert_record(c->db, &rec, CERTS_ACTOR, NULL);
}

/* Certifies the checkpoint key, at most as long as the operations issuing CA lives, and writes the file. */
static ct_err note_cert_issue(ca *c, const char *path)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    uint8_t spki[PKI_ED25519_SPKI_LEN];
    char cn[PKI_NAME_MAX];
    pki_cert_info issuer;
    const ca_signer *s = &c->signers[CA_KEY_OPS_ISSUING];
    CT_ENSURE_MSG(c->note_key && s->key, CT_ERR_CONFIG, "no checkpoint key or operations issuing CA to certify it");
    CT_GUARD(pki_ed25519_spki(hsm_eddsa_public(c->note_key), spki));
    CT_GUARD(pki_cert_parse_info(s->cert_der.data, s->cert_der.len, &issuer));
    CT_GUARD(ct_snprintf(cn, sizeof cn, "%.40s Log Checkpoints", c->cfg.organization));
    time_t now = time(NULL), until = now + (time_t)c->cfg.issuing_days * DAY_SECONDS;
    pki_cert_template t = {.profile = PKI_PROFILE_LOG_SIGNER, .cn = cn, .organization = c->cfg.organization,
                           .not_before = now - 300, .not_after = until < issuer.not_after ? until : issuer.not_after};
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CERT_DER));
    CT_GUARD(pki_cert_issue(&t, spki, sizeof spki, s->cert_der.data, s->cert_der.len, s->key, &der, NULL));
    const ct_buf *one[] = {&der};
    CT_GUARD(ca_write_pem_chain(path, one, 1));
    CT_GUARD(record(c, CA_NOTE_CERT_FILE, &der));
cleanup:
    ct_buf_free(&der);
    return rc;
}

ct_err ca_certs_open(ca *c)
{
    ct_err rc = CT_OK;
    ct_buf scratch = CT_BUF_INIT;
    char path[CA_PATH_MAX];
    const char *file = NULL;
    const ct_buf *der = NULL;
    bool more = true;
    if (!c->installed) return CT_OK; /* nothing certified before the ceremony: install records what it writes */
    /* Processes opening the folder at once (a server and commands) take turns: one certifies and records, the
     * others find the file with its record. */
    int dir = open(c->cfg.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CT_ENSURE_MSG(dir >= 0 && flock(dir, LOCK_EX) == 0, CT_ERR_IO, "cannot lock %s", c->cfg.dir);
    CT_GUARD(ct_path_join(path, sizeof path, c->cfg.dir, CA_NOTE_CERT_FILE));
    if (!ct_file_exists(path)) CT_GUARD(note_cert_issue(c, path));
    for (int i = 0; more; i++) {
        db_cert_file_record r;
        CT_GUARD(cert_in_use(c, i, &file, &der, &scratch, &more));
        if (!more || der->len == 0) continue;
        rc = db_cert_file_latest(c->db, file, &r);
        if (rc == CT_ERR_NOT_FOUND && (rc = record(c, file, der)) == CT_OK) rc = db_cert_file_latest(c->db, file, &r);
        CT_GUARD(rc);
        CT_GUARD(own_cert_record(c, i, file, der, r.sha256));
    }
cleanup:
    if (dir >= 0) close(dir); /* and the lock with it */
    ct_buf_free(&scratch);
    return rc;
}

ct_err ca_cert_file_record(ca *c, const char *file, const ct_buf *der)
{
    return record(c, file, der);
}

ct_err ca_note_cert_reissue(ca *c)
{
    char path[CA_PATH_MAX];
    CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, CA_NOTE_CERT_FILE));
    return note_cert_issue(c, path);
}

/* log-checkpoint.pem: signed by the operations issuing CA, for a signing key only, of the key that log.vkey names. */
static ct_err note_cert_check(ca *c, const ct_buf *der)
{
    char path[CA_PATH_MAX];
    ct_note_verifier v;
    uint8_t spki[PKI_ED25519_SPKI_LEN];
    const uint8_t *have = NULL;
    size_t have_len = 0;
    pki_cert_info info;
    const ct_buf *ops = &c->signers[CA_KEY_OPS_ISSUING].cert_der;
    CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, CA_LOG_VKEY_FILE));
    CT_GUARD_RET(ct_note_verifier_load(path, &v));
    CT_GUARD_RET(pki_ed25519_spki(v.pub, spki));
    CT_GUARD_RET(pki_cert_spki(der->data, der->len, &have, &have_len));
    CT_ENSURE_RET(have_len == sizeof spki && memcmp(have, spki, sizeof spki) == 0,
                  ct_fail(CT_ERR_INTEGRITY, CA_NOTE_CERT_FILE " does not certify the key of " CA_LOG_VKEY_FILE));
    ct_err rc = pki_cert_verify_signed_by(der->data, der->len, ops->data, ops->len, time(NULL));
    CT_ENSURE_RET(rc != CT_ERR_INTEGRITY, ct_fail(CT_ERR_INTEGRITY, CA_NOTE_CERT_FILE " is not valid under %s: %s",
                                                  ca_key_cert_file[CA_KEY_OPS_ISSUING], ct_err_detail()));
    CT_GUARD_RET(rc);
    CT_GUARD_RET(pki_cert_parse_info(der->data, der->len, &info));
    CT_ENSURE_RET(!info.is_ca && info.key_usage == PKI_KU_DIGITAL_SIGNATURE,
                  ct_fail(CT_ERR_INTEGRITY, CA_NOTE_CERT_FILE " is not a checkpoint signer's certificate"));
    return CT_OK;
}

ct_err ca_certs_verify(ca *c, int64_t *files)
{
    ct_err rc = CT_OK;
    ct_buf scratch = CT_BUF_INIT;
    const char *file = NULL;
    const ct_buf *der = NULL;
    bool more = true;
    *files = 0;
    if (!c->installed) return CT_OK; /* before the ceremony's certificates there are none */
    for (int i = 0; more; i++) {
        db_cert_file_record r;
        rc = cert_in_use(c, i, &file, &der, &scratch, &more);
        CT_ENSURE(rc != CT_ERR_NOT_FOUND && rc != CT_ERR_IO,
                  ct_fail(CT_ERR_INTEGRITY, "%s: %s", file, ct_err_detail())); /* gone since the open */
        CT_GUARD(rc);
        if (!more || der->len == 0) continue;
        rc = db_cert_file_latest(c->db, file, &r);
        CT_ENSURE(rc != CT_ERR_NOT_FOUND, ct_fail(CT_ERR_INTEGRITY, "%s: the audit never recorded it", file));
        CT_GUARD(rc);
        pki_cert_info info;
        CT_GUARD(pki_cert_parse_info(der->data, der->len, &info));
        CT_ENSURE_MSG(memcmp(info.cert_sha256, r.sha256, 32) == 0, CT_ERR_INTEGRITY,
                      "%s: certificate %s in use, the audit's newest is %s (entry %lld, %s): %s", file, info.serial_hex,
                      r.cert_serial, (long long)r.seq, r.action,
                      strcmp(r.action, "ca.renew") == 0 ? "an older one put back?" : "replaced?");
        if (i == CA_KEY__COUNT) CT_GUARD(note_cert_check(c, der));
        (*files)++;
    }
cleanup:
    ct_buf_free(&scratch);
    return rc;
}
