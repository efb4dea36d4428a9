/* PKCS#10 requests: parsing outside input (bounded walk first, then wolfSSL, which also checks proof of
 * possession), and making requests for token keys. */
#include "pki_priv.h"

#include <stdlib.h>
#include <string.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

/* The largest SPKI of an accepted key: P-384 uncompressed is 120 bytes. */
#define PKI_MAX_SPKI 128

struct pki_csr {
    hsm_key_type type;
    size_t spki_len;
    uint8_t spki[PKI_MAX_SPKI];
    uint8_t spki_sha256[32];
    char serial[PKI_NAME_MAX];
    char cn[PKI_NAME_MAX];
};

/* Names for the refusal message of keys that people actually send. */
static const struct {
    uint8_t oid[9];
    size_t len;
    const char *name;
} known_keys[] = {
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}, 9, "RSA"},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a}, 9, "RSA-PSS"},
    {{0x2b, 0x65, 0x70}, 3, "Ed25519"},
    {{0x2b, 0x65, 0x71}, 3, "Ed448"},
    {{0x2b, 0x81, 0x04, 0x00, 0x23}, 5, "EC P-521"},
    {{0x2b, 0x81, 0x04, 0x00, 0x0a}, 5, "EC secp256k1"},
};

static const char *key_name(const pki_tlv *oid)
{
    for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0]; i++)
        if (pki_der_oid_is(oid, known_keys[i].oid, known_keys[i].len)) return known_keys[i].name;
    return "unknown";
}

/* SubjectPublicKeyInfo: exactly SEQUENCE { SEQUENCE { algorithm OID, parameters... }, BIT STRING }; `params`
 * is what follows the OID. */
static ct_err spki_algorithm(const uint8_t *spki, size_t len, pki_tlv *oid, pki_der *params)
{
    pki_der in = pki_der_span(spki, len);
    pki_tlv seq, alg, bits;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "SubjectPublicKeyInfo", &seq));
    CT_GUARD_RET(pki_der_end(&in, "SubjectPublicKeyInfo"));
    pki_der s = pki_der_inside(&seq);
    CT_GUARD_RET(pki_der_expect(&s, PKI_TAG_SEQUENCE, "key algorithm", &alg));
    CT_GUARD_RET(pki_der_expect(&s, PKI_TAG_BIT_STRING, "public key", &bits));
    CT_GUARD_RET(pki_der_end(&s, "SubjectPublicKeyInfo"));
    *params = pki_der_inside(&alg);
    return pki_der_expect(params, PKI_TAG_OID, "key algorithm", oid);
}

ct_err pki_spki_key_type(const uint8_t *spki, size_t len, hsm_key_type *out)
{
    pki_tlv oid, param;
    pki_der a;
    CT_GUARD_RET(spki_algorithm(spki, len, &oid, &a));
    if (!pki_der_oid_is(&oid, PKI_OID_BYTES(pki_oid_ec_public_key)))
        return ct_fail(CT_ERR_WEAK_KEY, "%s key not accepted: only EC P-256 and P-384", key_name(&oid));
    CT_GUARD_RET(pki_der_expect(&a, PKI_TAG_OID, "EC named curve", &param));
    CT_GUARD_RET(pki_der_end(&a, "key algorithm"));
    if (pki_der_oid_is(&param, PKI_OID_BYTES(pki_oid_p256)))
        *out = HSM_EC_P256;
    else if (pki_der_oid_is(&param, PKI_OID_BYTES(pki_oid_p384)))
        *out = HSM_EC_P384;
    else
        return ct_fail(CT_ERR_WEAK_KEY, "EC curve %s not accepted: only P-256 and P-384", key_name(&param));
    return CT_OK;
}

bool pki_spki_is_ed25519(const uint8_t *spki, size_t len)
{
    pki_tlv oid;
    pki_der a;
    return spki_algorithm(spki, len, &oid, &a) == CT_OK && pki_der_oid_is(&oid, PKI_OID_BYTES(pki_oid_ed25519)) &&
           a.len == 0;
}

/* CertificationRequest: exactly one SEQUENCE { CRI { version 0, subject, SPKI, ... }, sigAlg, signature }.
 * `attributes` (NULL: not wanted) receives what follows the SPKI inside the CRI. */
/* `signed_part` and `signature` (NULL: not wanted) receive the CRI element and the signature BIT STRING. */
static ct_err csr_walk(const uint8_t *der, size_t len, pki_tlv *subject, pki_tlv *spki, pki_der *attributes,
                       pki_tlv *signed_part, pki_tlv *signature)
{
    pki_der in = pki_der_span(der, len);
    pki_tlv req, cri, f, sig;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "CertificationRequest", &req));
    CT_GUARD_RET(pki_der_end(&in, "CertificationRequest"));
    pki_der r = pki_der_inside(&req);
    CT_GUARD_RET(pki_der_expect(&r, PKI_TAG_SEQUENCE, "certificationRequestInfo", &cri));
    CT_GUARD_RET(pki_der_expect(&r, PKI_TAG_SEQUENCE, "signatureAlgorithm", &f));
    CT_GUARD_RET(pki_der_expect(&r, PKI_TAG_BIT_STRING, "signature", &sig));
    CT_GUARD_RET(pki_der_end(&r, "CertificationRequest"));
    if (signed_part) *signed_part = cri;
    if (signature) *signature = sig;
    pki_der c = pki_der_inside(&cri);
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_INTEGER, "version", &f));
    if (f.val_len != 1 || f.val[0] != 0) return ct_fail(CT_ERR_BAD_DER, "request version is not 1 (0)");
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_SEQUENCE, "subject", subject));
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_SEQUENCE, "subjectPKInfo", spki));
    if (attributes) *attributes = c;
    return CT_OK;
}

/* The proof of possession checked inside the token: ECDSA over the hash the request names, of the CRI as sent,
 * with the request's own public key (an uncompressed point on its curve, checked here first: the token would
 * otherwise fail as a 500 on what is the client's bad input). */
static ct_err pop_verify_in_token(hsm *token, hsm_key_type type, int sig_oid, const pki_tlv *cri, const pki_tlv *spki,
                                  const pki_tlv *signature)
{
    ct_err rc = CT_OK;
    pki_tlv oid;
    pki_der params;
    ecc_key key;
    bool key_ok = false;
    CT_GUARD(spki_algorithm(spki->tlv, spki->tlv_len, &oid, &params));
    /* spki_algorithm checked the shape: the BIT STRING is the last element of the SPKI */
    pki_der in = pki_der_inside(spki);
    pki_tlv alg, bits;
    CT_GUARD(pki_der_expect(&in, PKI_TAG_SEQUENCE, "key algorithm", &alg));
    CT_GUARD(pki_der_expect(&in, PKI_TAG_BIT_STRING, "public key", &bits));
    size_t point_len = 1 + 2 * (type == HSM_EC_P384 ? 48u : 32u);
    CT_ENSURE_MSG(bits.val_len == point_len + 1 && bits.val[0] == 0 && bits.val[1] == 0x04, CT_ERR_BAD_CSR,
                  "the request's public key is not an uncompressed EC point");
    const uint8_t *point = bits.val + 1;
    int curve = type == HSM_EC_P384 ? ECC_SECP384R1 : ECC_SECP256R1;
    CT_ENSURE_MSG(wc_ecc_init(&key) == 0, CT_ERR_CRYPTO, "wc_ecc_init failed");
    key_ok = true;
    CT_ENSURE_MSG(wc_ecc_import_x963_ex(point, (word32)point_len, &key, curve) == 0 &&
                      wc_ecc_point_is_on_curve(&key.pubkey, wc_ecc_get_curve_idx(curve)) == 0,
                  CT_ERR_BAD_CSR, "the request's public key is not a point on its curve");
    uint8_t digest[WC_SHA512_DIGEST_SIZE];
    size_t digest_len;
    int ret;
    if (sig_oid == CTC_SHA256wECDSA) {
        ret = wc_Sha256Hash(cri->tlv, (word32)cri->tlv_len, digest);
        digest_len = WC_SHA256_DIGEST_SIZE;
    } else if (sig_oid == CTC_SHA384wECDSA) {
        ret = wc_Sha384Hash(cri->tlv, (word32)cri->tlv_len, digest);
        digest_len = WC_SHA384_DIGEST_SIZE;
    } else {
        ret = wc_Sha512Hash(cri->tlv, (word32)cri->tlv_len, digest);
        digest_len = WC_SHA512_DIGEST_SIZE;
    }
    CT_ENSURE_MSG(ret == 0, CT_ERR_CRYPTO, "hashing the request failed: %d", ret);
    /* BIT STRING: no unused bits, then the DER ECDSA-Sig-Value */
    CT_ENSURE_MSG(signature->val_len > 1 && signature->val[0] == 0, CT_ERR_CSR_SIGNATURE,
                  "request signature does not verify with its key");
    bool valid = false;
    CT_GUARD(hsm_verify_digest(token, type, point, point_len, digest, digest_len, signature->val + 1,
                               signature->val_len - 1, &valid));
    CT_ENSURE_MSG(valid, CT_ERR_CSR_SIGNATURE, "request signature does not verify with its key");
cleanup:
    if (key_ok) wc_ecc_free(&key);
    return rc;
}

ct_err pki_csr_parse(const uint8_t *der, size_t len, pki_csr **out) { return pki_csr_parse_in(der, len, NULL, out); }

ct_err pki_csr_parse_in(const uint8_t *der, size_t len, hsm *token, pki_csr **out)
{
    ct_err rc = CT_OK;
    pki_csr *csr = NULL;
    DecodedCert dc;
    bool dc_init = false;
    pki_tlv subject, spki, cri, signature;

    CT_ENSURE(out, CT_ERR_ARG);
    *out = NULL;
    CT_ENSURE_MSG(der && len > 0, CT_ERR_BAD_CSR, "empty certificate request");
    CT_ENSURE_MSG(len <= PKI_MAX_CSR_DER, CT_ERR_BAD_CSR, "request of %zu bytes exceeds %d", len, PKI_MAX_CSR_DER);
    csr = calloc(1, sizeof *csr);
    CT_ENSURE(csr, CT_ERR_NOMEM);

    /* Our own walk first: it pins the outer framing, and refuses unwanted keys before wolfSSL spends a
     * signature verification on them. */
    CT_GUARD(csr_walk(der, len, &subject, &spki, NULL, &cri, &signature));
    CT_GUARD(pki_spki_key_type(spki.tlv, spki.tlv_len, &csr->type));
    CT_ENSURE_MSG(spki.tlv_len <= sizeof csr->spki, CT_ERR_BAD_CSR, "public key info of %zu bytes", spki.tlv_len);

    /* wolfSSL 5.5.4 checks the request's own signature in ParseCert(CERTREQ_TYPE, VERIFY); with a token, wolfSSL
     * only parses and the token verifies (pop_verify_in_token). */
    InitDecodedCert(&dc, der, (word32)len, NULL);
    dc_init = true;
    int ret = ParseCert(&dc, CERTREQ_TYPE, token ? NO_VERIFY : VERIFY, NULL);
    CT_ENSURE_MSG(ret != ASN_SIG_CONFIRM_E, CT_ERR_CSR_SIGNATURE, "request signature does not verify with its key");
    CT_ENSURE_MSG(ret == 0, CT_ERR_BAD_CSR, "wolfSSL rejects the request: %s (%d)", wc_GetErrorString(ret), ret);
    CT_ENSURE_MSG(dc.signatureOID == CTC_SHA256wECDSA || dc.signatureOID == CTC_SHA384wECDSA ||
                      dc.signatureOID == CTC_SHA512wECDSA,
                  CT_ERR_BAD_CSR, "request signature algorithm %u is not ECDSA with SHA-2", dc.signatureOID);
    if (token) CT_GUARD(pop_verify_in_token(token, csr->type, (int)dc.signatureOID, &cri, &spki, &signature));

    CT_GUARD(pki_name_attr(subject.tlv, subject.tlv_len, PKI_OID_BYTES(pki_oid_at_serial), "subject serialNumber",
                           csr->serial, sizeof csr->serial));
    CT_GUARD(pki_name_attr(subject.tlv, subject.tlv_len, PKI_OID_BYTES(pki_oid_at_cn), "subject CN", csr->cn,
                           sizeof csr->cn));
    memcpy(csr->spki, spki.tlv, spki.tlv_len);
    csr->spki_len = spki.tlv_len;
    CT_GUARD(ct_sha256(csr->spki, csr->spki_len, csr->spki_sha256));
cleanup:
    if (dc_init) FreeDecodedCert(&dc);
    /* The DER walker speaks of DER; to the caller any malformation of a request is a bad request. */
    if (rc == CT_ERR_BAD_DER) rc = CT_ERR_BAD_CSR;
    if (rc == CT_OK)
        *out = csr;
    else
        free(csr);
    return rc;
}

static const uint8_t oid_extension_request[9] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e};
_Static_assert(PKI_CHALLENGE_MAX <= CTC_NAME_SIZE, "a challenge must fit wolfSSL's Cert.challengePw");
static const uint8_t oid_challenge_password[9] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07};
static const uint8_t oid_basic_constraints[3] = {0x55, 0x1d, 0x13};
static const uint8_t oid_key_usage[3] = {0x55, 0x1d, 0x0f};

/* BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } */
static ct_err asks_basic_constraints(const pki_tlv *value, pki_csr_asks *out)
{
    pki_der in = pki_der_inside(value);
    pki_tlv seq, f;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "basicConstraints", &seq));
    CT_GUARD_RET(pki_der_end(&in, "basicConstraints"));
    pki_der b = pki_der_inside(&seq);
    out->basic_constraints = true;
    while (b.len > 0) {
        CT_GUARD_RET(pki_der_next(&b, "basicConstraints field", &f));
        if (f.tag == PKI_TAG_BOOLEAN && f.val_len == 1) {
            out->ca = f.val[0] != 0;
        } else if (f.tag == PKI_TAG_INTEGER && f.val_len >= 1 && f.val_len <= 2 && !(f.val[0] & 0x80)) {
            out->path_len = f.val_len == 1 ? f.val[0] : (f.val[0] << 8 | f.val[1]);
        } else {
            return ct_fail(CT_ERR_BAD_CSR, "request's basicConstraints is malformed");
        }
    }
    return CT_OK;
}

/* KeyUsage ::= BIT STRING: unused-bits byte, then one or two bytes of bits */
static ct_err asks_key_usage(const pki_tlv *value, pki_csr_asks *out)
{
    pki_der in = pki_der_inside(value);
    pki_tlv bits;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_BIT_STRING, "keyUsage", &bits));
    CT_GUARD_RET(pki_der_end(&in, "keyUsage"));
    CT_ENSURE_RET(bits.val_len >= 1 && bits.val_len <= 3 && bits.val[0] < 8,
                  ct_fail(CT_ERR_BAD_CSR, "request's keyUsage is malformed"));
    out->key_usage = true;
    out->key_usage_bits = (uint16_t)((bits.val_len > 1 ? bits.val[1] : 0) | (bits.val_len > 2 ? bits.val[2] << 8 : 0));
    return CT_OK;
}

/* challengePassword: SET { DirectoryString } with exactly one value, once; no NUL inside (compared as a C string). */
static ct_err asks_challenge(const pki_tlv *set, pki_csr_asks *out)
{
    pki_der in = pki_der_inside(set);
    pki_tlv v;
    CT_GUARD_RET(pki_der_next(&in, "challengePassword", &v));
    CT_GUARD_RET(pki_der_end(&in, "challengePassword"));
    CT_ENSURE_RET(!out->challenge[0] && (v.tag == PKI_TAG_PRINTABLE || v.tag == PKI_TAG_UTF8) && v.val_len > 0 &&
                      v.val_len < sizeof out->challenge && !memchr(v.val, '\0', v.val_len),
                  ct_fail(CT_ERR_BAD_CSR, "request's challengePassword is malformed"));
    memcpy(out->challenge, v.val, v.val_len);
    out->challenge[v.val_len] = '\0';
    return CT_OK;
}

ct_err pki_csr_asks_get(const uint8_t *der, size_t len, pki_csr_asks *out)
{
    pki_tlv subject, spki, attrs, attr, oid, set, exts, ext, f;
    memset(out, 0, sizeof *out);
    out->path_len = -1;
    CT_ENSURE_RET(len <= PKI_MAX_CSR_DER, ct_fail(CT_ERR_BAD_CSR, "request of %zu bytes exceeds %d", len, PKI_MAX_CSR_DER));
    pki_der rest;
    ct_err rc = csr_walk(der, len, &subject, &spki, &rest, NULL, NULL);
    if (rc == CT_ERR_BAD_DER) rc = CT_ERR_BAD_CSR;
    CT_GUARD_RET(rc);
    if (rest.len == 0) return CT_OK; /* no attributes [0] after the SPKI */
    CT_GUARD_RET(pki_der_expect(&rest, PKI_TAG_CTX0, "attributes", &attrs));
    CT_GUARD_RET(pki_der_end(&rest, "certificationRequestInfo"));
    pki_der a = pki_der_inside(&attrs);
    while (a.len > 0) {
        CT_GUARD_RET(pki_der_expect(&a, PKI_TAG_SEQUENCE, "attribute", &attr));
        pki_der at = pki_der_inside(&attr);
        CT_GUARD_RET(pki_der_expect(&at, PKI_TAG_OID, "attribute type", &oid));
        CT_GUARD_RET(pki_der_expect(&at, PKI_TAG_SET, "attribute values", &set));
        if (!pki_der_oid_is(&oid, PKI_OID_BYTES(oid_extension_request))) {
            out->other_attributes++;
            if (pki_der_oid_is(&oid, PKI_OID_BYTES(oid_challenge_password))) CT_GUARD_RET(asks_challenge(&set, out));
            continue;
        }
        pki_der sv = pki_der_inside(&set);
        CT_GUARD_RET(pki_der_expect(&sv, PKI_TAG_SEQUENCE, "extensionRequest", &exts));
        CT_GUARD_RET(pki_der_end(&sv, "extensionRequest"));
        pki_der e = pki_der_inside(&exts);
        while (e.len > 0) {
            CT_GUARD_RET(pki_der_expect(&e, PKI_TAG_SEQUENCE, "extension", &ext));
            pki_der x = pki_der_inside(&ext);
            CT_GUARD_RET(pki_der_expect(&x, PKI_TAG_OID, "extnID", &oid));
            CT_GUARD_RET(pki_der_next(&x, "extension", &f));
            if (f.tag == PKI_TAG_BOOLEAN) CT_GUARD_RET(pki_der_expect(&x, PKI_TAG_OCTET_STRING, "extnValue", &f));
            CT_ENSURE_RET(f.tag == PKI_TAG_OCTET_STRING, ct_fail(CT_ERR_BAD_CSR, "request's extension has no value"));
            if (pki_der_oid_is(&oid, PKI_OID_BYTES(oid_basic_constraints)))
                CT_GUARD_RET(asks_basic_constraints(&f, out));
            else if (pki_der_oid_is(&oid, PKI_OID_BYTES(oid_key_usage)))
                CT_GUARD_RET(asks_key_usage(&f, out));
            else
                out->other_extensions++;
        }
    }
    return CT_OK;
}

void pki_csr_free(pki_csr *csr) { free(csr); }
const char *pki_csr_subject_serial(const pki_csr *csr) { return csr->serial; }
const char *pki_csr_subject_cn(const pki_csr *csr) { return csr->cn; }
hsm_key_type pki_csr_key_type(const pki_csr *csr) { return csr->type; }

const uint8_t *pki_csr_spki(const pki_csr *csr, size_t *len)
{
    *len = csr->spki_len;
    return csr->spki;
}

void pki_csr_spki_sha256(const pki_csr *csr, uint8_t out[32]) { memcpy(out, csr->spki_sha256, 32); }

ct_err pki_csr_make(hsm_key *key, const char *cn, const char *serial_number, ct_buf *der)
{
    return pki_csr_make_challenged(key, cn, serial_number, NULL, der);
}

ct_err pki_csr_make_challenged(hsm_key *key, const char *cn, const char *serial_number, const char *challenge,
                               ct_buf *der)
{
    ct_err rc = CT_OK;
    ecc_key pub; /* the key's public point, which wolfSSL writes into the request */
    bool loaded = false;
    Cert *cert = NULL;

    CT_ENSURE(key && cn && der && der->data, CT_ERR_ARG);
    cert = calloc(1, sizeof *cert);
    CT_ENSURE(cert, CT_ERR_NOMEM);
    CT_ENSURE_MSG(wc_InitCert(cert) == 0, CT_ERR_CRYPTO, "wc_InitCert failed");
    /* wc_InitCert sets version 2 (X.509 v3) and wc_MakeCertReq_ex writes it into the request as is; PKCS#10
     * knows only version 0. */
    cert->version = 0;
    CT_GUARD(pki_cert_name_set(&cert->subject, cn, serial_number, NULL));
    if (challenge) {
        CT_GUARD(ct_strlcpy(cert->challengePw, sizeof cert->challengePw, challenge));
        cert->challengePwPrintableString = 1;
    }
    CT_GUARD(pki_sig_type(key, &cert->sigType));
    CT_GUARD(hsm_key_wolf_ecc(key, &pub));
    loaded = true;
    int ret = wc_MakeCertReq_ex(cert, der->data, (word32)der->max, ECC_TYPE, &pub);
    CT_ENSURE_MSG(ret > 0, CT_ERR_CRYPTO, "wc_MakeCertReq_ex: %s (%d)", wc_GetErrorString(ret), ret);
    CT_GUARD(pki_body_sign(key, cert, der));
cleanup:
    if (loaded) wc_ecc_free(&pub);
    free(cert);
    return rc;
}
