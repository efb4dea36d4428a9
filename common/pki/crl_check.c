/* Reading a CRL (outside input) for one certificate, with the checked DER walker: the CRL must be the
 * certificate's issuer's and carry its signature. Shared by the signed-video verifier (a camera's signing
 * certificate) and the camera (its viewers' certificates). wolfSSL 5.5.4 refuses a CRL past its nextUpdate
 * outright and cannot list one's entries, so the reading is ours and only the signature check is wolfSSL's.
 * The walk is strict: a malformed entry is an error, never the end of the list (that would fail open). */
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "pki_priv.h"

/* The TBS digest for the CRL's signature algorithm: ecdsa-with-SHA256, or SHA384 from a P-384 CA (as
 * pki_crl_make signs). */
static ct_err tbs_digest(const pki_tlv *alg, const pki_tlv *tbs, uint8_t digest[WC_SHA384_DIGEST_SIZE], size_t *len)
{
    pki_der in = pki_der_inside(alg);
    pki_tlv oid;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_OID, "CRL signature algorithm", &oid));
    if (pki_der_oid_is(&oid, pki_oid_ecdsa_sha256, sizeof pki_oid_ecdsa_sha256)) {
        *len = 32;
        return ct_sha256(tbs->tlv, tbs->tlv_len, digest);
    }
    CT_ENSURE_RET(pki_der_oid_is(&oid, pki_oid_ecdsa_sha384, sizeof pki_oid_ecdsa_sha384),
                  ct_fail(CT_ERR_BAD_DER, "CRL signature algorithm is not ecdsa-with-SHA256 or SHA384"));
    *len = WC_SHA384_DIGEST_SIZE;
    return wc_Sha384Hash(tbs->tlv, (word32)tbs->tlv_len, digest) == 0 ? CT_OK : ct_fail(CT_ERR_CRYPTO, "SHA-384");
}

/* revokedCertificates: is `serial` listed, and since when. */
static ct_err find_serial(const pki_tlv *list, const pki_tlv *serial, pki_crl_status *out)
{
    pki_der in = pki_der_inside(list);
    while (in.len > 0) {
        pki_tlv entry, s, date;
        CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "revoked certificate", &entry));
        pki_der e = pki_der_inside(&entry);
        CT_GUARD_RET(pki_der_expect(&e, PKI_TAG_INTEGER, "revoked serial", &s));
        CT_GUARD_RET(pki_der_next(&e, "revocationDate", &date));
        time_t at;
        CT_GUARD_RET(pki_time_parse(&date, &at));
        if (s.val_len == serial->val_len && memcmp(s.val, serial->val, s.val_len) == 0) {
            out->revoked = true;
            out->revoked_at = at;
        }
    }
    return CT_OK;
}

ct_err pki_crl_check(const uint8_t *crl_der, size_t crl_len, const uint8_t *issuer, size_t issuer_len,
                     const uint8_t *cert, size_t cert_len, pki_crl_status *out)
{
    pki_der in = pki_der_span(crl_der, crl_len), tbs_in;
    pki_tlv crl, tbs, alg, sig, t, inner_alg, name, serial = {0}, cert_issuer = {0};
    uint8_t digest[WC_SHA384_DIGEST_SIZE];
    size_t digest_len = 0;
    memset(out, 0, sizeof *out);
    CT_GUARD_RET(pki_cert_serial_issuer(cert, cert_len, &serial, &cert_issuer));
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "CRL", &crl));
    CT_GUARD_RET(pki_der_end(&in, "CRL"));
    in = pki_der_inside(&crl);
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "tbsCertList", &tbs));
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "CRL signature algorithm", &alg));
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_BIT_STRING, "CRL signature", &sig));
    CT_GUARD_RET(pki_der_end(&in, "CRL"));
    CT_ENSURE_RET(sig.val_len > 1 && sig.val[0] == 0, ct_fail(CT_ERR_BAD_DER, "CRL signature BIT STRING"));
    tbs_in = pki_der_inside(&tbs);
    CT_GUARD_RET(pki_der_next(&tbs_in, "CRL version", &t));
    if (t.tag == PKI_TAG_INTEGER) CT_GUARD_RET(pki_der_next(&tbs_in, "CRL signature algorithm", &t));
    inner_alg = t;
    /* RFC 5280 5.1.1.2: the algorithm inside what is signed names the one outside. */
    CT_ENSURE_RET(inner_alg.tlv_len == alg.tlv_len && memcmp(inner_alg.tlv, alg.tlv, alg.tlv_len) == 0,
                  ct_fail(CT_ERR_BAD_DER, "CRL signature algorithms inside and outside differ"));
    CT_GUARD_RET(pki_der_expect(&tbs_in, PKI_TAG_SEQUENCE, "CRL issuer", &name));
    CT_GUARD_RET(pki_der_next(&tbs_in, "thisUpdate", &t));
    CT_GUARD_RET(pki_time_parse(&t, &out->this_update));
    if (name.tlv_len != cert_issuer.tlv_len || memcmp(name.tlv, cert_issuer.tlv, name.tlv_len) != 0)
        return ct_fail(CT_ERR_NOT_FOUND, "the CRL is not from the certificate's issuer");
    CT_GUARD_RET(tbs_digest(&alg, &tbs, digest, &digest_len));
    if (pki_cert_verify_digest(issuer, issuer_len, digest, digest_len, sig.val + 1, sig.val_len - 1) != CT_OK)
        return ct_fail(CT_ERR_INTEGRITY, "the CRL's signature does not verify with its issuer's key");
    /* nextUpdate, revokedCertificates and crlExtensions ([0]) are optional, in that order. */
    bool list_seen = false, ext_seen = false;
    while (tbs_in.len > 0) {
        CT_GUARD_RET(pki_der_next(&tbs_in, "CRL", &t));
        CT_ENSURE_RET(!ext_seen, ct_fail(CT_ERR_BAD_DER, "CRL element after its extensions"));
        if ((t.tag == PKI_TAG_UTC_TIME || t.tag == PKI_TAG_GEN_TIME) && !list_seen && !out->next_update) {
            CT_GUARD_RET(pki_time_parse(&t, &out->next_update));
        } else if (t.tag == PKI_TAG_SEQUENCE && !list_seen) {
            list_seen = true;
            CT_GUARD_RET(find_serial(&t, &serial, out));
        } else {
            CT_ENSURE_RET(t.tag == PKI_TAG_CTX0, ct_fail(CT_ERR_BAD_DER, "unexpected element 0x%02x in a CRL", t.tag));
            ext_seen = true;
        }
    }
    return CT_OK;
}
