/* Viewers of encrypted video (issue 6): the operations issuing CA certifies a viewer's token key from its own CSR
 * with the viewer profile (keyAgreement only). Recorded like every issued certificate (profile "viewer", the
 * viewer's name in the subject-serial column), so it is audited and can be revoked by serial. */
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define DAY_SECONDS 86400

ct_err ca_viewer_add(ca *c, const char *name, const char *csr_path, const char *out_path)
{
    ct_err rc = CT_OK;
    ct_buf csr_der = CT_BUF_INIT, cert = CT_BUF_INIT;
    pki_csr *csr = NULL;
    pki_issued_info issued;
    size_t spki_len;
    CT_ENSURE_MSG(ca_name_valid(name), CT_ERR_USAGE, "viewer name '%.64s': use 1-63 letters, digits, '-', '_', '.'",
                  name);
    CT_GUARD(ca_read_csr_file(csr_path, &csr_der));
    /* Proof of possession: the viewer signed its CSR with the key in its own token. Cameras wrap keys with
     * ECDH P-256, so that is the only curve a viewer may have. */
    CT_GUARD(pki_csr_parse(csr_der.data, csr_der.len, &csr));
    CT_ENSURE_MSG(pki_csr_key_type(csr) == HSM_EC_P256, CT_ERR_WEAK_KEY, "a viewer key must be EC P-256");
    const uint8_t *spki = pki_csr_spki(csr, &spki_len);
    time_t now = time(NULL);
    pki_cert_template t = {.profile = PKI_PROFILE_VIEWER, .cn = name, .organization = c->cfg.organization,
                           .not_before = now - 300, .not_after = now + (time_t)c->cfg.station_days * DAY_SECONDS};
    const ca_signer *s = &c->signers[CA_KEY_OPS_ISSUING];
    CT_GUARD(ct_buf_alloc(&cert, PKI_MAX_CERT_DER));
    CT_GUARD(pki_cert_issue(&t, spki, spki_len, s->cert_der.data, s->cert_der.len, s->key, &cert, &issued));
    db_cert_record rec = {.not_before = t.not_before, .not_after = t.not_after, .der = cert.data, .der_len = cert.len,
                          .issuing_ca = ca_issuing_id(c, CA_CRL_OPS)};
    CT_GUARD(ct_strlcpy(rec.cert_serial_hex, sizeof rec.cert_serial_hex, issued.serial_hex));
    CT_GUARD(ct_strlcpy(rec.device_serial, sizeof rec.device_serial, name));
    CT_GUARD(ct_strlcpy(rec.profile, sizeof rec.profile, DB_PROFILE_VIEWER));
    CT_GUARD(ct_snprintf(rec.subject, sizeof rec.subject, "CN=%s", name));
    pki_csr_spki_sha256(csr, rec.spki_sha256);
    rc = db_cert_record_issuance(c->db, &rec, NULL, "cli");
    CT_ENSURE_MSG(rc != CT_ERR_ALREADY_ISSUED, rc, "viewer %s is certified already", name);
    CT_GUARD(rc);
    /* The camera checks the chain up to its pinned operations root: certificate, then the issuing CA. */
    const ct_buf *chain[] = {&cert, &s->cert_der};
    CT_GUARD(ca_write_pem_chain(out_path, chain, 2));
cleanup:
    pki_csr_free(csr);
    ct_buf_free(&csr_der);
    ct_buf_free(&cert);
    return rc;
}
