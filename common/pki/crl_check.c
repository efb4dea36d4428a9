/* Reading a CRL (outside input) for one certificate, with the checked DER walker: the CRL must be the
 * certificate's issuer's and carry its signature. Shared by the signed-video verifier (a camera's signing
 * certificate) and the camera (its viewers' certificates). wolfSSL 5.5.4 refuses a CRL past its nextUpdate
 * outright and cannot list one's entries, so the reading is ours and only the signature check is wolfSSL's. */
#define _DEFAULT_SOURCE /* timegm */
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "pki_priv.h"

static const uint8_t oid_ecdsa_sha256[8] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};

/* A certificate's serial and issuer name. */
static ct_err serial_and_issuer(const uint8_t *der, size_t len, pki_tlv *serial, pki_tlv *issuer)
{
    pki_der in = pki_der_span(der, len), tbs_in;
    pki_tlv cert, tbs, t;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "certificate", &cert));
    in = pki_der_inside(&cert);
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "tbsCertificate", &tbs));
    tbs_in = pki_der_inside(&tbs);
    CT_GUARD_RET(pki_der_next(&tbs_in, "version or serial", &t));
    if (t.tag == PKI_TAG_CTX0) CT_GUARD_RET(pki_der_next(&tbs_in, "serial", &t));
    CT_ENSURE_RET(t.tag == PKI_TAG_INTEGER, ct_fail(CT_ERR_BAD_DER, "certificate serial is not an INTEGER"));
    *serial = t;
    CT_GUARD_RET(pki_der_expect(&tbs_in, PKI_TAG_SEQUENCE, "signature algorithm", &t));
    return pki_der_expect(&tbs_in, PKI_TAG_SEQUENCE, "issuer", issuer);
}

/* UTCTime / GeneralizedTime "...Z" to time_t. */
static ct_err der_time(const pki_tlv *t, time_t *out)
{
    bool gen = t->tag == PKI_TAG_GEN_TIME;
    size_t yl = gen ? 4 : 2;
    CT_ENSURE_RET((t->tag == PKI_TAG_UTC_TIME || gen) && t->val_len == yl + 11 && t->val[yl + 10] == 'Z',
                  ct_fail(CT_ERR_BAD_DER, "CRL time is not in DER form"));
    int v[6] = {0};
    const uint8_t *p = t->val;
    for (size_t i = 0; i < yl + 10; i++)
        CT_ENSURE_RET(p[i] >= '0' && p[i] <= '9', ct_fail(CT_ERR_BAD_DER, "CRL time has a non-digit"));
    for (size_t i = 0; i < yl; i++) v[0] = v[0] * 10 + (p[i] - '0');
    for (int k = 1; k < 6; k++) v[k] = (p[yl + 2 * (k - 1)] - '0') * 10 + (p[yl + 2 * (k - 1) + 1] - '0');
    if (!gen) v[0] += v[0] < 50 ? 2000 : 1900;
    struct tm tm = {.tm_year = v[0] - 1900, .tm_mon = v[1] - 1, .tm_mday = v[2], .tm_hour = v[3], .tm_min = v[4],
                    .tm_sec = v[5]};
    *out = timegm(&tm);
    return CT_OK;
}

static ct_err verify_with_issuer(const uint8_t *issuer, size_t issuer_len, const pki_tlv *tbs, const pki_tlv *sig)
{
    const uint8_t *spki;
    size_t spki_len;
    uint8_t digest[32];
    word32 idx = 0;
    int ok = 0;
    ecc_key key;
    CT_GUARD_RET(pki_cert_spki(issuer, issuer_len, &spki, &spki_len));
    CT_GUARD_RET(ct_sha256(tbs->tlv, tbs->tlv_len, digest));
    CT_ENSURE_RET(wc_ecc_init(&key) == 0, CT_ERR_CRYPTO);
    bool good = wc_EccPublicKeyDecode(spki, &idx, &key, (word32)spki_len) == 0 &&
                wc_ecc_verify_hash(sig->val + 1, (word32)(sig->val_len - 1), digest, sizeof digest, &ok, &key) == 0 &&
                ok == 1;
    wc_ecc_free(&key);
    return good ? CT_OK : ct_fail(CT_ERR_INTEGRITY, "the CRL's signature does not verify with its issuer's key");
}

ct_err pki_crl_check(const uint8_t *crl_der, size_t crl_len, const uint8_t *issuer, size_t issuer_len,
                     const uint8_t *cert, size_t cert_len, pki_crl_status *out)
{
    pki_der in = pki_der_span(crl_der, crl_len), tbs_in, list_in, alg_in;
    pki_tlv crl, tbs, alg, sig, t, name, serial = {0}, cert_issuer = {0};
    memset(out, 0, sizeof *out);
    CT_GUARD_RET(serial_and_issuer(cert, cert_len, &serial, &cert_issuer));
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "CRL", &crl));
    in = pki_der_inside(&crl);
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "tbsCertList", &tbs));
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "CRL signature algorithm", &alg));
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_BIT_STRING, "CRL signature", &sig));
    alg_in = pki_der_inside(&alg);
    CT_GUARD_RET(pki_der_expect(&alg_in, PKI_TAG_OID, "CRL signature algorithm", &t));
    CT_ENSURE_RET(pki_der_oid_is(&t, oid_ecdsa_sha256, sizeof oid_ecdsa_sha256),
                  ct_fail(CT_ERR_BAD_DER, "CRL signature algorithm is not ecdsa-with-SHA256"));
    CT_ENSURE_RET(sig.val_len > 1 && sig.val[0] == 0, ct_fail(CT_ERR_BAD_DER, "CRL signature BIT STRING"));
    tbs_in = pki_der_inside(&tbs);
    CT_GUARD_RET(pki_der_next(&tbs_in, "CRL version", &t));
    if (t.tag == PKI_TAG_INTEGER) CT_GUARD_RET(pki_der_next(&tbs_in, "CRL signature algorithm", &t));
    CT_GUARD_RET(pki_der_expect(&tbs_in, PKI_TAG_SEQUENCE, "CRL issuer", &name));
    CT_GUARD_RET(pki_der_next(&tbs_in, "thisUpdate", &t));
    CT_GUARD_RET(der_time(&t, &out->this_update));
    if (name.tlv_len != cert_issuer.tlv_len || memcmp(name.tlv, cert_issuer.tlv, name.tlv_len) != 0)
        return ct_fail(CT_ERR_NOT_FOUND, "the CRL is not from the certificate's issuer");
    CT_GUARD_RET(verify_with_issuer(issuer, issuer_len, &tbs, &sig));
    /* nextUpdate is optional; then the revoked list, if any; then extensions ([0]). */
    while (pki_der_next(&tbs_in, "CRL", &t) == CT_OK) {
        if (t.tag == PKI_TAG_UTC_TIME || t.tag == PKI_TAG_GEN_TIME) CT_GUARD_RET(der_time(&t, &out->next_update));
        if (t.tag != PKI_TAG_SEQUENCE) continue;
        list_in = pki_der_inside(&t);
        pki_tlv entry;
        while (pki_der_expect(&list_in, PKI_TAG_SEQUENCE, "revoked certificate", &entry) == CT_OK) {
            pki_der e = pki_der_inside(&entry);
            pki_tlv s, date;
            CT_GUARD_RET(pki_der_expect(&e, PKI_TAG_INTEGER, "revoked serial", &s));
            CT_GUARD_RET(pki_der_next(&e, "revocationDate", &date));
            if (s.val_len != serial.val_len || memcmp(s.val, serial.val, s.val_len) != 0) continue;
            CT_GUARD_RET(der_time(&date, &out->revoked_at));
            out->revoked = true;
        }
    }
    return CT_OK;
}
