/* Revocation: CRLs (RFC 5280 section 5) and OCSP (RFC 6960), built with the bounded DER writer and signed
 * inside the token; OCSP requests (outside input) read with the checked DER walker. wolfSSL 5.5.4 can read
 * CRLs and OCSP responses but not make them. */
#include "pki_priv.h"

#include <string.h>

const uint8_t pki_oid_crl_number[3] = {0x55, 0x1d, 0x14}; /* 2.5.29.20 */
const uint8_t pki_oid_crl_reason[3] = {0x55, 0x1d, 0x15};      /* 2.5.29.21 */
static const uint8_t oid_aki[3] = {0x55, 0x1d, 0x23};          /* 2.5.29.35 */
static const uint8_t oid_sha1[5] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};
static const uint8_t oid_sha256[9] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
static const uint8_t oid_ocsp_basic[9] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01};
static const uint8_t oid_ocsp_nonce[9] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02};

/* ---- reasons ---- */

static const struct {
    int code;
    const char *name;
} reasons[] = {
    {0, "unspecified"},         {1, "keyCompromise"},        {2, "cACompromise"},       {3, "affiliationChanged"},
    {4, "superseded"},          {5, "cessationOfOperation"}, {9, "privilegeWithdrawn"},
};

ct_err pki_reason_parse(const char *name, int *code)
{
    for (size_t i = 0; name && i < sizeof reasons / sizeof reasons[0]; i++) {
        if (strcmp(name, reasons[i].name) != 0) continue;
        *code = reasons[i].code;
        return CT_OK;
    }
    return ct_fail(CT_ERR_USAGE, "reason '%.40s' is not one of: %s", name ? name : "", PKI_REASON_NAMES);
}

const char *pki_reason_name(int code)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == code) return reasons[i].name;
    return "?";
}

/* ---- shared pieces ---- */

/* A certificate serial as recorded (lower-case hex, no sign byte) as an INTEGER. */
static ct_err put_serial_hex(ct_buf *b, const char *hex)
{
    uint8_t mag[PKI_MAX_SERIAL_BYTES];
    size_t len = 0;
    CT_ENSURE_RET(ct_hex_decode(hex, mag, sizeof mag, &len) == CT_OK && len > 0,
                  ct_fail(CT_ERR_ARG, "certificate serial '%.48s' is not 1 to %d bytes of hex", hex,
                          PKI_MAX_SERIAL_BYTES));
    return pki_der_put_uint(b, mag, len);
}

/* The [0] EXPLICIT ENUMERATED reason (OCSP), or an Extension holding it (CRL): nothing for unspecified. */
static ct_err put_reason(ct_buf *b, int reason, bool as_extension)
{
    uint8_t enumerated[3] = {PKI_TAG_ENUMERATED, 1, (uint8_t)reason};
    CT_ENSURE_RET(reason >= 0 && reason <= 10, ct_fail(CT_ERR_ARG, "reason code %d", reason));
    if (reason == 0) return CT_OK;
    if (as_extension) return pki_der_put_ext(b, PKI_OID_BYTES(pki_oid_crl_reason), false, enumerated, sizeof enumerated);
    return pki_der_put(b, PKI_TAG_CTX0, enumerated, sizeof enumerated);
}

/* [tag] EXPLICIT Extensions holding only the nonce (RFC 8954: an OCTET STRING inside extnValue). */
static ct_err put_nonce_extensions(ct_buf *b, const uint8_t *nonce, size_t nonce_len, uint8_t tag)
{
    uint8_t value[2 + PKI_OCSP_MAX_NONCE] = {PKI_TAG_OCTET_STRING, (uint8_t)nonce_len};
    CT_ENSURE_RET(nonce_len > 0 && nonce_len <= PKI_OCSP_MAX_NONCE, CT_ERR_ARG);
    memcpy(value + 2, nonce, nonce_len);
    size_t start = b->len;
    CT_GUARD_RET(pki_der_put_ext(b, PKI_OID_BYTES(oid_ocsp_nonce), false, value, nonce_len + 2));
    CT_GUARD_RET(pki_der_wrap(b, start, PKI_TAG_SEQUENCE));
    return pki_der_wrap(b, start, tag);
}

/* ---- CRL ---- */

ct_err pki_crl_make(const pki_crl_params *p, const pki_revoked *list, size_t n, ct_buf *out)
{
    ct_err rc = CT_OK;
    pki_cert_ids ids;
    pki_cert_info info;
    ct_buf v = CT_BUF_INIT;
    CT_ENSURE(p && p->issuer_cert && p->issuer_key && out && (list || n == 0), CT_ERR_ARG);
    CT_ENSURE_MSG(n <= 10000000, CT_ERR_ARG, "%zu revoked certificates", n);
    CT_ENSURE_MSG(p->next_update > p->this_update, CT_ERR_ARG, "nextUpdate is not after thisUpdate");
    CT_GUARD(pki_cert_ids_get(p->issuer_cert, p->issuer_len, &ids));
    CT_GUARD(pki_cert_parse_info(p->issuer_cert, p->issuer_len, &info));
    CT_ENSURE_MSG(info.is_ca, CT_ERR_ARG, "the CRL issuer is not a CA");
    /* Each entry is at most 2 + 23 (serial) + 17 (time) + 15 (reason) bytes; the rest is below 1 KiB. */
    CT_GUARD(ct_buf_alloc(out, 2048 + p->issuer_len + n * 64));
    CT_GUARD(ct_buf_alloc(&v, 128));

    static const uint8_t v2 = 1;
    CT_GUARD(pki_der_put(out, PKI_TAG_INTEGER, &v2, 1));
    size_t mark = out->len;
    if (hsm_key_get_type(p->issuer_key) == HSM_EC_P384)
        CT_GUARD(pki_der_put(out, PKI_TAG_OID, PKI_OID_BYTES(pki_oid_ecdsa_sha384)));
    else
        CT_GUARD(pki_der_put(out, PKI_TAG_OID, PKI_OID_BYTES(pki_oid_ecdsa_sha256)));
    CT_GUARD(pki_der_wrap(out, mark, PKI_TAG_SEQUENCE));
    /* The issuer is the CA certificate's subject, byte for byte. */
    pki_tlv subject;
    CT_GUARD(pki_cert_subject(p->issuer_cert, p->issuer_len, &subject));
    CT_GUARD(ct_buf_append(out, subject.tlv, subject.tlv_len));
    CT_GUARD(pki_der_put_time(out, p->this_update, false));
    CT_GUARD(pki_der_put_time(out, p->next_update, false));
    if (n > 0) {
        size_t all = out->len;
        for (size_t i = 0; i < n; i++) {
            size_t one = out->len;
            CT_GUARD(put_serial_hex(out, list[i].serial_hex));
            CT_GUARD(pki_der_put_time(out, list[i].revoked_at, false));
            size_t exts = out->len;
            CT_GUARD(put_reason(out, list[i].reason, true));
            if (out->len > exts) CT_GUARD(pki_der_wrap(out, exts, PKI_TAG_SEQUENCE));
            CT_GUARD(pki_der_wrap(out, one, PKI_TAG_SEQUENCE));
        }
        CT_GUARD(pki_der_wrap(out, all, PKI_TAG_SEQUENCE));
    }
    mark = out->len;
    CT_GUARD(pki_der_put(&v, 0x80, ids.key_id, ids.key_id_len)); /* keyIdentifier [0] */
    CT_GUARD(pki_der_wrap(&v, 0, PKI_TAG_SEQUENCE));
    CT_GUARD(pki_der_put_ext(out, PKI_OID_BYTES(oid_aki), false, v.data, v.len));
    uint8_t number[8];
    for (int i = 0; i < 8; i++) number[i] = (uint8_t)(p->number >> (56 - 8 * i));
    v.len = 0;
    CT_GUARD(pki_der_put_uint(&v, number, sizeof number));
    CT_GUARD(pki_der_put_ext(out, PKI_OID_BYTES(pki_oid_crl_number), false, v.data, v.len));
    CT_GUARD(pki_der_wrap(out, mark, PKI_TAG_SEQUENCE));
    CT_GUARD(pki_der_wrap(out, mark, PKI_TAG_CTX0));
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE)); /* tbsCertList */
    CT_GUARD(pki_sign_tbs(p->issuer_key, out->data, out->len, out));
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE));
cleanup:
    ct_buf_free(&v);
    if (rc != CT_OK && out) ct_buf_free(out);
    return rc;
}

/* ---- OCSP requests ---- */

/* Extensions { Extension }: only the nonce is understood; another critical one makes the request malformed
 * for us (RFC 5280 4.2). */
static ct_err read_extensions(const pki_tlv *wrapper, pki_ocsp_request *out, bool nonce_allowed)
{
    pki_der w = pki_der_inside(wrapper);
    pki_tlv seq, ext, oid, f, value;
    CT_GUARD_RET(pki_der_expect(&w, PKI_TAG_SEQUENCE, "Extensions", &seq));
    CT_GUARD_RET(pki_der_end(&w, "Extensions"));
    for (pki_der e = pki_der_inside(&seq); e.len;) {
        CT_GUARD_RET(pki_der_expect(&e, PKI_TAG_SEQUENCE, "Extension", &ext));
        pki_der x = pki_der_inside(&ext);
        CT_GUARD_RET(pki_der_expect(&x, PKI_TAG_OID, "extnID", &oid));
        CT_GUARD_RET(pki_der_next(&x, "Extension", &f));
        bool critical = false;
        if (f.tag == PKI_TAG_BOOLEAN) {
            if (f.val_len != 1) return ct_fail(CT_ERR_BAD_DER, "critical flag is not one byte");
            critical = f.val[0] != 0;
            CT_GUARD_RET(pki_der_next(&x, "Extension", &f));
        }
        if (f.tag != PKI_TAG_OCTET_STRING) return ct_fail(CT_ERR_BAD_DER, "extnValue is not an OCTET STRING");
        CT_GUARD_RET(pki_der_end(&x, "Extension"));
        if (!pki_der_oid_is(&oid, PKI_OID_BYTES(oid_ocsp_nonce))) {
            if (critical) return ct_fail(CT_ERR_BAD_DER, "unsupported critical extension");
            continue;
        }
        if (!nonce_allowed || out->nonce) return ct_fail(CT_ERR_BAD_DER, "nonce where none may be, or twice");
        /* RFC 8954: Nonce ::= OCTET STRING (SIZE(1..32)) inside extnValue. */
        pki_der nv = pki_der_inside(&f);
        CT_GUARD_RET(pki_der_expect(&nv, PKI_TAG_OCTET_STRING, "nonce", &value));
        CT_GUARD_RET(pki_der_end(&nv, "nonce"));
        if (value.val_len < 1 || value.val_len > PKI_OCSP_MAX_NONCE)
            return ct_fail(CT_ERR_BAD_DER, "nonce of %zu bytes (1 to %d accepted)", value.val_len, PKI_OCSP_MAX_NONCE);
        out->nonce = value.val;
        out->nonce_len = value.val_len;
    }
    return CT_OK;
}

static ct_err read_cert_id(const pki_tlv *req, pki_ocsp_cert_id *id)
{
    pki_der r = pki_der_inside(req);
    pki_tlv cid, alg, oid, name, key, serial, f;
    CT_GUARD_RET(pki_der_expect(&r, PKI_TAG_SEQUENCE, "CertID", &cid));
    id->der = cid.tlv;
    id->der_len = cid.tlv_len;
    pki_der c = pki_der_inside(&cid);
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_SEQUENCE, "hashAlgorithm", &alg));
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_OCTET_STRING, "issuerNameHash", &name));
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_OCTET_STRING, "issuerKeyHash", &key));
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_INTEGER, "serialNumber", &serial));
    CT_GUARD_RET(pki_der_end(&c, "CertID"));
    pki_der a = pki_der_inside(&alg);
    CT_GUARD_RET(pki_der_expect(&a, PKI_TAG_OID, "hash algorithm", &oid));
    if (a.len) { /* parameters: absent or NULL */
        CT_GUARD_RET(pki_der_expect(&a, PKI_TAG_NULL, "hash parameters", &f));
        if (f.val_len) return ct_fail(CT_ERR_BAD_DER, "hash parameters are not NULL");
        CT_GUARD_RET(pki_der_end(&a, "hashAlgorithm"));
    }
    size_t want;
    if (pki_der_oid_is(&oid, PKI_OID_BYTES(oid_sha1))) id->hash = PKI_OCSP_SHA1, want = 20;
    else if (pki_der_oid_is(&oid, PKI_OID_BYTES(oid_sha256))) id->hash = PKI_OCSP_SHA256, want = 32;
    else return ct_fail(CT_ERR_BAD_DER, "CertID hash algorithm is neither SHA-1 nor SHA-256");
    if (name.val_len != want || key.val_len != want) return ct_fail(CT_ERR_BAD_DER, "CertID hashes of the wrong size");
    id->name_hash = name.val;
    id->key_hash = key.val;
    /* Serials that cannot be ours (negative, longer than RFC 5280 allows) stay "": status unknown. */
    const uint8_t *s = serial.val;
    size_t n = serial.val_len;
    if (n == 0) return ct_fail(CT_ERR_BAD_DER, "empty serialNumber");
    if (n > 1 && s[0] == 0) s++, n--;
    id->serial_hex[0] = '\0';
    if (!(serial.val[0] & 0x80) && n <= PKI_MAX_SERIAL_BYTES)
        CT_GUARD_RET(ct_hex_encode(s, n, id->serial_hex, sizeof id->serial_hex));
    if (r.len == 0) return CT_OK;
    CT_GUARD_RET(pki_der_expect(&r, PKI_TAG_CTX0, "singleRequestExtensions", &f));
    CT_GUARD_RET(pki_der_end(&r, "Request"));
    pki_ocsp_request ignored = {0};
    return read_extensions(&f, &ignored, false);
}

ct_err pki_ocsp_request_parse(const uint8_t *der, size_t len, pki_ocsp_request *out)
{
    CT_ENSURE_RET(der && out, CT_ERR_ARG);
    memset(out, 0, sizeof *out);
    CT_ENSURE_RET(len > 0 && len <= PKI_OCSP_MAX_REQUEST,
                  ct_fail(CT_ERR_BAD_DER, "OCSP request of %zu bytes (1 to %d accepted)", len, PKI_OCSP_MAX_REQUEST));
    pki_der in = pki_der_span(der, len);
    pki_tlv req, tbs, f, list, one;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "OCSPRequest", &req));
    CT_GUARD_RET(pki_der_end(&in, "OCSPRequest"));
    pki_der r = pki_der_inside(&req);
    CT_GUARD_RET(pki_der_expect(&r, PKI_TAG_SEQUENCE, "tbsRequest", &tbs));
    if (r.len) { /* optionalSignature [0]: allowed, not checked */
        CT_GUARD_RET(pki_der_expect(&r, PKI_TAG_CTX0, "optionalSignature", &f));
        CT_GUARD_RET(pki_der_end(&r, "OCSPRequest"));
    }
    pki_der t = pki_der_inside(&tbs);
    CT_GUARD_RET(pki_der_next(&t, "tbsRequest", &f));
    if (f.tag == PKI_TAG_CTX0) { /* version [0] EXPLICIT INTEGER: only v1 (0) */
        if (f.val_len != 3 || f.val[0] != PKI_TAG_INTEGER || f.val[1] != 1 || f.val[2] != 0)
            return ct_fail(CT_ERR_BAD_DER, "OCSP request version is not v1");
        CT_GUARD_RET(pki_der_next(&t, "tbsRequest", &f));
    }
    if (f.tag == PKI_TAG_CTX1) CT_GUARD_RET(pki_der_next(&t, "tbsRequest", &f)); /* requestorName */
    if (f.tag != PKI_TAG_SEQUENCE) return ct_fail(CT_ERR_BAD_DER, "requestList: expected a SEQUENCE");
    list = f;
    if (t.len) {
        CT_GUARD_RET(pki_der_expect(&t, PKI_TAG_CTX2, "requestExtensions", &f));
        CT_GUARD_RET(pki_der_end(&t, "tbsRequest"));
        CT_GUARD_RET(read_extensions(&f, out, true));
    }
    for (pki_der l = pki_der_inside(&list); l.len; out->n++) {
        if (out->n == PKI_OCSP_MAX_CERTS)
            return ct_fail(CT_ERR_BAD_DER, "more than %d certificates in one request", PKI_OCSP_MAX_CERTS);
        CT_GUARD_RET(pki_der_expect(&l, PKI_TAG_SEQUENCE, "Request", &one));
        CT_GUARD_RET(read_cert_id(&one, &out->ids[out->n]));
    }
    if (out->n == 0) return ct_fail(CT_ERR_BAD_DER, "the request names no certificate");
    return CT_OK;
}

ct_err pki_ocsp_request_make(const pki_cert_ids *issuer, const uint8_t *serial, size_t serial_len,
                             const uint8_t *nonce, size_t nonce_len, ct_buf *out)
{
    static const uint8_t der_null[2] = {PKI_TAG_NULL, 0};
    ct_err rc = CT_OK;
    CT_ENSURE(issuer && serial && serial_len > 0 && serial_len <= PKI_MAX_SERIAL_BYTES && out, CT_ERR_ARG);
    CT_ENSURE(!nonce || (nonce_len > 0 && nonce_len <= PKI_OCSP_MAX_NONCE), CT_ERR_ARG);
    CT_GUARD(ct_buf_alloc(out, 256));
    CT_GUARD(pki_der_put(out, PKI_TAG_OID, PKI_OID_BYTES(oid_sha1)));
    CT_GUARD(ct_buf_append(out, der_null, sizeof der_null));
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE));
    CT_GUARD(pki_der_put(out, PKI_TAG_OCTET_STRING, issuer->name_sha1, sizeof issuer->name_sha1));
    CT_GUARD(pki_der_put(out, PKI_TAG_OCTET_STRING, issuer->key_sha1, sizeof issuer->key_sha1));
    CT_GUARD(pki_der_put_uint(out, serial, serial_len));
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE)); /* CertID */
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE)); /* Request */
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE)); /* requestList */
    if (nonce) CT_GUARD(put_nonce_extensions(out, nonce, nonce_len, PKI_TAG_CTX2)); /* requestExtensions [2] */
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE)); /* tbsRequest */
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE)); /* OCSPRequest */
cleanup:
    if (rc != CT_OK && out) ct_buf_free(out);
    return rc;
}

bool pki_ocsp_cert_id_is_for(const pki_ocsp_cert_id *id, const pki_cert_ids *issuer)
{
    if (id->hash == PKI_OCSP_SHA1)
        return memcmp(id->name_hash, issuer->name_sha1, 20) == 0 && memcmp(id->key_hash, issuer->key_sha1, 20) == 0;
    return memcmp(id->name_hash, issuer->name_sha256, 32) == 0 && memcmp(id->key_hash, issuer->key_sha256, 32) == 0;
}

/* ---- OCSP responses ---- */

ct_err pki_ocsp_sign(const pki_ocsp_responder *r, const pki_ocsp_single *s, size_t n, const uint8_t *nonce,
                     size_t nonce_len, ct_buf *out)
{
    ct_err rc = CT_OK;
    CT_ENSURE(r && r->key && r->ids && s && n > 0 && n <= PKI_OCSP_MAX_CERTS && out, CT_ERR_ARG);
    CT_ENSURE(nonce_len <= PKI_OCSP_MAX_NONCE, CT_ERR_ARG);
    size_t certids = 0;
    for (size_t i = 0; i < n; i++) certids += s[i].cert_id_len;
    CT_GUARD(ct_buf_alloc(out, 1024 + certids + n * 96));
    /* responderID byKey [2] EXPLICIT KeyHash (SHA-1 of the responder's public key) */
    CT_GUARD(pki_der_put(out, PKI_TAG_OCTET_STRING, r->ids->key_sha1, sizeof r->ids->key_sha1));
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_CTX2));
    CT_GUARD(pki_der_put_time(out, r->produced_at, true));
    size_t all = out->len;
    for (size_t i = 0; i < n; i++) {
        size_t one = out->len;
        CT_GUARD(ct_buf_append(out, s[i].cert_id, s[i].cert_id_len));
        if (s[i].status == PKI_OCSP_GOOD) {
            CT_GUARD(pki_der_put_hdr(out, 0x80, 0)); /* good [0] IMPLICIT NULL */
        } else if (s[i].status == PKI_OCSP_UNKNOWN) {
            CT_GUARD(pki_der_put_hdr(out, 0x82, 0)); /* unknown [2] IMPLICIT NULL */
        } else {                                    /* revoked [1] IMPLICIT RevokedInfo */
            size_t info = out->len;
            CT_GUARD(pki_der_put_time(out, s[i].revoked_at, true));
            CT_GUARD(put_reason(out, s[i].reason, false));
            CT_GUARD(pki_der_wrap(out, info, PKI_TAG_CTX1));
        }
        CT_GUARD(pki_der_put_time(out, r->this_update, true));
        size_t next = out->len;
        CT_GUARD(pki_der_put_time(out, r->next_update, true));
        CT_GUARD(pki_der_wrap(out, next, PKI_TAG_CTX0));
        CT_GUARD(pki_der_wrap(out, one, PKI_TAG_SEQUENCE));
    }
    CT_GUARD(pki_der_wrap(out, all, PKI_TAG_SEQUENCE));
    if (nonce) CT_GUARD(put_nonce_extensions(out, nonce, nonce_len, PKI_TAG_CTX1)); /* responseExtensions [1] */
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE)); /* tbsResponseData */
    CT_GUARD(pki_sign_tbs(r->key, out->data, out->len, out));
cleanup:
    if (rc != CT_OK && out) ct_buf_free(out);
    return rc;
}

ct_err pki_ocsp_response(const pki_ocsp_responder *r, const uint8_t *signed_part, size_t len, ct_buf *out)
{
    static const uint8_t successful[3] = {PKI_TAG_ENUMERATED, 1, 0};
    ct_err rc = CT_OK;
    size_t certs = 0;
    CT_ENSURE(r && signed_part && out, CT_ERR_ARG);
    for (size_t i = 0; i < r->n_certs; i++) certs += r->cert_lens[i];
    CT_GUARD(ct_buf_alloc(out, len + certs + 64));
    CT_GUARD(ct_buf_append(out, successful, sizeof successful));
    size_t bytes = out->len;
    CT_GUARD(pki_der_put(out, PKI_TAG_OID, PKI_OID_BYTES(oid_ocsp_basic)));
    size_t basic = out->len;
    CT_GUARD(ct_buf_append(out, signed_part, len));
    if (r->n_certs) {
        size_t list = out->len;
        for (size_t i = 0; i < r->n_certs; i++) CT_GUARD(ct_buf_append(out, r->certs[i], r->cert_lens[i]));
        CT_GUARD(pki_der_wrap(out, list, PKI_TAG_SEQUENCE));
        CT_GUARD(pki_der_wrap(out, list, PKI_TAG_CTX0));
    }
    CT_GUARD(pki_der_wrap(out, basic, PKI_TAG_SEQUENCE));     /* BasicOCSPResponse */
    CT_GUARD(pki_der_wrap(out, basic, PKI_TAG_OCTET_STRING)); /* response */
    CT_GUARD(pki_der_wrap(out, bytes, PKI_TAG_SEQUENCE));     /* ResponseBytes */
    CT_GUARD(pki_der_wrap(out, bytes, PKI_TAG_CTX0));
    CT_GUARD(pki_der_wrap(out, 0, PKI_TAG_SEQUENCE));
cleanup:
    if (rc != CT_OK && out) ct_buf_free(out);
    return rc;
}

ct_err pki_ocsp_response_status(int status, ct_buf *out)
{
    CT_ENSURE_RET(status > 0 && status <= 6 && status != 4, CT_ERR_ARG);
    const uint8_t der[5] = {PKI_TAG_SEQUENCE, 3, PKI_TAG_ENUMERATED, 1, (uint8_t)status};
    CT_GUARD_RET(ct_buf_alloc(out, sizeof der));
    return ct_buf_append(out, der, sizeof der);
}
