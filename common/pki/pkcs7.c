/* Certs-only PKCS#7 and CsrAttrs, plus the bounded DER reader/writer the other pki files share. Written by
 * hand rather than with wolfSSL's PKCS#7 code: the structures are tiny and fixed, and outside input should
 * meet a walker whose every read is checked against what is left. */
#include "pki_priv.h"

#include <string.h>

const uint8_t pki_oid_ec_public_key[7] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
const uint8_t pki_oid_p256[8] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
const uint8_t pki_oid_p384[5] = {0x2b, 0x81, 0x04, 0x00, 0x22};
const uint8_t pki_oid_ed25519[3] = {0x2b, 0x65, 0x70};
const uint8_t pki_oid_ecdsa_sha256[8] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
const uint8_t pki_oid_ecdsa_sha384[8] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
const uint8_t pki_oid_at_cn[3] = {0x55, 0x04, 0x03};
const uint8_t pki_oid_at_serial[3] = {0x55, 0x04, 0x05};
static const uint8_t oid_signed_data[9] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
static const uint8_t oid_data[9] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};

/* ---- DER reader ---- */

ct_err pki_der_next(pki_der *in, const char *what, pki_tlv *out)
{
    const uint8_t *p = in->p;
    size_t left = in->len;
    if (left < 2) return ct_fail(CT_ERR_BAD_DER, "%s: truncated (%zu bytes left)", what, left);
    uint8_t tag = p[0];
    /* High-tag-number form never occurs in the structures read here. */
    if ((tag & 0x1f) == 0x1f) return ct_fail(CT_ERR_BAD_DER, "%s: multi-byte tag", what);
    size_t len = p[1], hdr = 2;
    if (len & 0x80) {
        size_t n = len & 0x7f;
        if (n == 0) return ct_fail(CT_ERR_BAD_DER, "%s: indefinite length (BER, not DER)", what);
        if (n > 4 || n > left - 2) return ct_fail(CT_ERR_BAD_DER, "%s: bad length field", what);
        if (p[2] == 0) return ct_fail(CT_ERR_BAD_DER, "%s: non-minimal length", what);
        len = 0;
        for (size_t i = 0; i < n; i++) len = len << 8 | p[2 + i];
        if (len < 0x80) return ct_fail(CT_ERR_BAD_DER, "%s: non-minimal length", what);
        hdr += n;
    }
    if (len > left - hdr)
        return ct_fail(CT_ERR_BAD_DER, "%s: length %zu exceeds the %zu bytes left", what, len, left - hdr);
    *out = (pki_tlv){tag, p, hdr + len, p + hdr, len};
    in->p += hdr + len;
    in->len -= hdr + len;
    return CT_OK;
}

ct_err pki_der_expect(pki_der *in, uint8_t tag, const char *what, pki_tlv *out)
{
    CT_GUARD_RET(pki_der_next(in, what, out));
    if (out->tag != tag)
        return ct_fail(CT_ERR_BAD_DER, "%s: expected tag 0x%02x, found 0x%02x", what, tag, out->tag);
    return CT_OK;
}

ct_err pki_der_end(const pki_der *in, const char *what)
{
    if (in->len) return ct_fail(CT_ERR_BAD_DER, "%s: %zu unexpected trailing bytes", what, in->len);
    return CT_OK;
}

bool pki_der_oid_is(const pki_tlv *t, const uint8_t *oid, size_t oid_len)
{
    return t->tag == PKI_TAG_OID && t->val_len == oid_len && memcmp(t->val, oid, oid_len) == 0;
}

static bool is_string_tag(uint8_t tag)
{
    return tag == PKI_TAG_UTF8 || tag == PKI_TAG_PRINTABLE || tag == PKI_TAG_IA5 || tag == PKI_TAG_T61;
}

ct_err pki_name_attr(const uint8_t *name, size_t name_len, const uint8_t *oid, size_t oid_len, const char *what,
                     char *out, size_t out_max)
{
    pki_der outer = pki_der_span(name, name_len);
    pki_tlv seq, rdn, atv, type, value;
    bool found = false;
    out[0] = '\0';
    CT_GUARD_RET(pki_der_expect(&outer, PKI_TAG_SEQUENCE, "Name", &seq));
    CT_GUARD_RET(pki_der_end(&outer, "Name"));
    for (pki_der rdns = pki_der_inside(&seq); rdns.len;) {
        CT_GUARD_RET(pki_der_expect(&rdns, PKI_TAG_SET, "Name RDN", &rdn));
        for (pki_der atvs = pki_der_inside(&rdn); atvs.len;) {
            CT_GUARD_RET(pki_der_expect(&atvs, PKI_TAG_SEQUENCE, "Name attribute", &atv));
            pki_der a = pki_der_inside(&atv);
            CT_GUARD_RET(pki_der_expect(&a, PKI_TAG_OID, "Name attribute type", &type));
            CT_GUARD_RET(pki_der_next(&a, "Name attribute value", &value));
            CT_GUARD_RET(pki_der_end(&a, "Name attribute"));
            if (!pki_der_oid_is(&type, oid, oid_len)) continue;
            /* Two values would make "the" serial ambiguous: refuse instead of picking one. */
            if (found) return ct_fail(CT_ERR_BAD_DER, "%s appears twice in the name", what);
            if (!is_string_tag(value.tag))
                return ct_fail(CT_ERR_BAD_DER, "%s has unsupported string type 0x%02x", what, value.tag);
            if (value.val_len >= out_max)
                return ct_fail(CT_ERR_BAD_DER, "%s longer than %zu bytes", what, out_max - 1);
            if (memchr(value.val, 0, value.val_len))
                return ct_fail(CT_ERR_BAD_DER, "%s contains a NUL byte", what);
            memcpy(out, value.val, value.val_len);
            out[value.val_len] = '\0';
            found = true;
        }
    }
    return CT_OK;
}

/* ---- DER writer ---- */

size_t pki_der_hdr_len(size_t content_len)
{
    if (content_len < 0x80) return 2;
    size_t n = 2; /* tag, 0x80 | count, then the length's bytes */
    for (size_t l = content_len; l; l >>= 8) n++;
    return n;
}

ct_err pki_der_put_hdr(ct_buf *b, uint8_t tag, size_t content_len)
{
    uint8_t hdr[2 + sizeof(size_t)];
    size_t n = 0;
    hdr[n++] = tag;
    if (content_len < 0x80) {
        hdr[n++] = (uint8_t)content_len;
    } else {
        size_t len_bytes = 0;
        for (size_t l = content_len; l; l >>= 8) len_bytes++;
        hdr[n++] = (uint8_t)(0x80 | len_bytes);
        for (size_t i = len_bytes; i > 0; i--) hdr[n++] = (uint8_t)(content_len >> (8 * (i - 1)));
    }
    return ct_buf_append(b, hdr, n);
}

ct_err pki_der_put(ct_buf *b, uint8_t tag, const void *content, size_t content_len)
{
    CT_GUARD_RET(pki_der_put_hdr(b, tag, content_len));
    return ct_buf_append(b, content, content_len);
}

ct_err pki_der_wrap(ct_buf *b, size_t from, uint8_t tag)
{
    CT_ENSURE_RET(from <= b->len, CT_ERR_ARG);
    size_t content = b->len - from, hdr = pki_der_hdr_len(content);
    CT_ENSURE_RET(hdr <= b->max - b->len, ct_fail(CT_ERR_BUF_FULL, "DER buffer full (%zu bytes)", b->max));
    memmove(b->data + from + hdr, b->data + from, content);
    size_t end = b->len + hdr;
    b->len = from;
    CT_GUARD_RET(pki_der_put_hdr(b, tag, content));
    b->len = end;
    return CT_OK;
}

ct_err pki_der_put_uint(ct_buf *b, const uint8_t *mag, size_t len)
{
    while (len > 1 && mag[0] == 0) mag++, len--;
    CT_ENSURE_RET(len > 0, CT_ERR_ARG);
    bool sign = mag[0] & 0x80;
    CT_GUARD_RET(pki_der_put_hdr(b, PKI_TAG_INTEGER, len + sign));
    static const uint8_t zero = 0;
    if (sign) CT_GUARD_RET(ct_buf_append(b, &zero, 1));
    return ct_buf_append(b, mag, len);
}

ct_err pki_der_put_ext(ct_buf *b, const uint8_t *oid, size_t oid_len, bool critical, const uint8_t *value,
                       size_t value_len)
{
    static const uint8_t der_true[3] = {PKI_TAG_BOOLEAN, 0x01, 0xff};
    size_t start = b->len;
    CT_GUARD_RET(pki_der_put(b, PKI_TAG_OID, oid, oid_len));
    if (critical) CT_GUARD_RET(ct_buf_append(b, der_true, sizeof der_true));
    CT_GUARD_RET(pki_der_put(b, PKI_TAG_OCTET_STRING, value, value_len));
    return pki_der_wrap(b, start, PKI_TAG_SEQUENCE);
}

/* ---- certs-only SignedData ---- */

/* SignedData fields before the certificates: version 1, no digestAlgorithms, encapContentInfo id-data. */
static ct_err put_sd_head(ct_buf *b)
{
    static const uint8_t version = 1;
    CT_GUARD_RET(pki_der_put(b, PKI_TAG_INTEGER, &version, 1));
    CT_GUARD_RET(pki_der_put_hdr(b, PKI_TAG_SET, 0));
    CT_GUARD_RET(pki_der_put_hdr(b, PKI_TAG_SEQUENCE, 2 + sizeof oid_data));
    return pki_der_put(b, PKI_TAG_OID, PKI_OID_BYTES(oid_data));
}
#define SD_HEAD_LEN (3 + 2 + 2 + 2 + sizeof oid_data)

ct_err pki_pkcs7_certs_only(const uint8_t *const *certs, const size_t *lens, size_t n, ct_buf *out_der)
{
    CT_ENSURE_RET(n <= PKI_MAX_PKCS7_CERTS, ct_fail(CT_ERR_ARG, "%zu certificates, at most %d", n, PKI_MAX_PKCS7_CERTS));
    size_t certs_len = 0;
    for (size_t i = 0; i < n; i++) {
        CT_ENSURE_RET(certs[i] && lens[i] > 0 && lens[i] <= PKI_MAX_CERT_DER,
                      ct_fail(CT_ERR_ARG, "certificate %zu is empty or larger than %d bytes", i, PKI_MAX_CERT_DER));
        certs_len += lens[i];
    }
    out_der->len = 0;
    /* Sizes from the inside out, so that every header is written once, in order. */
    size_t certs_field = n ? pki_der_hdr_len(certs_len) + certs_len : 0;
    size_t sd_len = SD_HEAD_LEN + certs_field + 2; /* + empty signerInfos */
    size_t sd_seq = pki_der_hdr_len(sd_len) + sd_len;
    size_t ci_len = 2 + sizeof oid_signed_data + pki_der_hdr_len(sd_seq) + sd_seq;
    CT_GUARD_RET(pki_der_put_hdr(out_der, PKI_TAG_SEQUENCE, ci_len));
    CT_GUARD_RET(pki_der_put(out_der, PKI_TAG_OID, PKI_OID_BYTES(oid_signed_data)));
    CT_GUARD_RET(pki_der_put_hdr(out_der, PKI_TAG_CTX0, sd_seq));
    CT_GUARD_RET(pki_der_put_hdr(out_der, PKI_TAG_SEQUENCE, sd_len));
    CT_GUARD_RET(put_sd_head(out_der));
    if (n) CT_GUARD_RET(pki_der_put_hdr(out_der, PKI_TAG_CTX0, certs_len));
    for (size_t i = 0; i < n; i++) CT_GUARD_RET(ct_buf_append(out_der, certs[i], lens[i]));
    return pki_der_put_hdr(out_der, PKI_TAG_SET, 0); /* signerInfos */
}

ct_err pki_pkcs7_certs_parse(const uint8_t *der, size_t len, pki_cert_cb cb, void *arg)
{
    CT_ENSURE_RET(der && cb, CT_ERR_ARG);
    CT_ENSURE_RET(len <= PKI_MAX_PKCS7_DER,
                  ct_fail(CT_ERR_BAD_DER, "PKCS#7 of %zu bytes exceeds %d", len, PKI_MAX_PKCS7_DER));
    pki_der in = pki_der_span(der, len);
    pki_tlv ci = {0}, type = {0}, wrap = {0}, sd = {0}, f = {0};
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "ContentInfo", &ci));
    CT_GUARD_RET(pki_der_end(&in, "PKCS#7"));
    pki_der c = pki_der_inside(&ci);
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_OID, "contentType", &type));
    if (!pki_der_oid_is(&type, PKI_OID_BYTES(oid_signed_data)))
        return ct_fail(CT_ERR_BAD_DER, "PKCS#7 content type is not signedData");
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_CTX0, "content", &wrap));
    CT_GUARD_RET(pki_der_end(&c, "ContentInfo"));
    pki_der w = pki_der_inside(&wrap);
    CT_GUARD_RET(pki_der_expect(&w, PKI_TAG_SEQUENCE, "SignedData", &sd));
    CT_GUARD_RET(pki_der_end(&w, "content"));

    pki_der s = pki_der_inside(&sd);
    CT_GUARD_RET(pki_der_expect(&s, PKI_TAG_INTEGER, "SignedData version", &f));
    if (f.val_len != 1 || f.val[0] > 5) return ct_fail(CT_ERR_BAD_DER, "SignedData version not in 0..5");
    CT_GUARD_RET(pki_der_expect(&s, PKI_TAG_SET, "digestAlgorithms", &f));
    CT_GUARD_RET(pki_der_expect(&s, PKI_TAG_SEQUENCE, "encapContentInfo", &f));
    pki_der e = pki_der_inside(&f);
    CT_GUARD_RET(pki_der_expect(&e, PKI_TAG_OID, "eContentType", &type));
    if (!pki_der_oid_is(&type, PKI_OID_BYTES(oid_data)))
        return ct_fail(CT_ERR_BAD_DER, "certs-only PKCS#7 must carry id-data");
    CT_GUARD_RET(pki_der_end(&e, "encapContentInfo (certs-only carries no content)"));

    CT_GUARD_RET(pki_der_next(&s, "SignedData", &f));
    if (f.tag == PKI_TAG_CTX0) {
        size_t count = 0;
        for (pki_der certs = pki_der_inside(&f); certs.len; count++) {
            pki_tlv cert;
            CT_GUARD_RET(pki_der_expect(&certs, PKI_TAG_SEQUENCE, "certificate", &cert));
            if (count >= PKI_MAX_PKCS7_CERTS)
                return ct_fail(CT_ERR_BAD_DER, "more than %d certificates", PKI_MAX_PKCS7_CERTS);
            if (cert.tlv_len > PKI_MAX_CERT_DER)
                return ct_fail(CT_ERR_BAD_DER, "certificate %zu larger than %d bytes", count, PKI_MAX_CERT_DER);
            CT_GUARD_RET(cb(cert.tlv, cert.tlv_len, arg));
        }
        CT_GUARD_RET(pki_der_next(&s, "SignedData", &f));
    }
    /* crls [1] may accompany the certificates; camtrust does not read them. */
    if (f.tag == PKI_TAG_CTX1) CT_GUARD_RET(pki_der_next(&s, "SignedData", &f));
    if (f.tag != PKI_TAG_SET || f.val_len != 0)
        return ct_fail(CT_ERR_BAD_DER, "certs-only PKCS#7 must end with empty signerInfos");
    return pki_der_end(&s, "SignedData");
}

ct_err pki_csrattrs(ct_buf *out_der)
{
    out_der->len = 0;
    size_t content = 2 + sizeof pki_oid_ecdsa_sha256 + 2 + sizeof pki_oid_at_serial;
    CT_GUARD_RET(pki_der_put_hdr(out_der, PKI_TAG_SEQUENCE, content));
    CT_GUARD_RET(pki_der_put(out_der, PKI_TAG_OID, PKI_OID_BYTES(pki_oid_ecdsa_sha256)));
    return pki_der_put(out_der, PKI_TAG_OID, PKI_OID_BYTES(pki_oid_at_serial));
}
