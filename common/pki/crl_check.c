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

/* One entry of revokedCertificates: its serial's INTEGER and revocationDate; `rest` (when asked for) what follows
 * them, the optional crlEntryExtensions. */
static ct_err next_entry(pki_der *in, pki_tlv *serial, time_t *at, pki_der *rest)
{
    pki_tlv entry, date;
    CT_GUARD_RET(pki_der_expect(in, PKI_TAG_SEQUENCE, "revoked certificate", &entry));
    pki_der e = pki_der_inside(&entry);
    CT_GUARD_RET(pki_der_expect(&e, PKI_TAG_INTEGER, "revoked serial", serial));
    CT_GUARD_RET(pki_der_next(&e, "revocationDate", &date));
    if (rest) *rest = e;
    return pki_time_parse(&date, at);
}

/* revokedCertificates: is `serial` listed, and since when. */
static ct_err find_serial(pki_der in, const pki_tlv *serial, pki_crl_status *out)
{
    while (in.len > 0) {
        pki_tlv s;
        time_t at;
        CT_GUARD_RET(next_entry(&in, &s, &at, NULL));
        if (s.val_len == serial->val_len && memcmp(s.val, serial->val, s.val_len) == 0) {
            out->revoked = true;
            out->revoked_at = at;
        }
    }
    return CT_OK;
}

/* The extnValue's contents of the extension `oid` in a SEQUENCE OF Extension (a CRL's or an entry's); its
 * span stays NULL when absent. */
static ct_err find_ext(const pki_tlv *seq, const uint8_t *want, size_t want_len, pki_der *value)
{
    pki_der list = pki_der_inside(seq);
    pki_tlv ext, oid, t;
    memset(value, 0, sizeof *value);
    while (list.len > 0) {
        CT_GUARD_RET(pki_der_expect(&list, PKI_TAG_SEQUENCE, "CRL extension", &ext));
        pki_der e = pki_der_inside(&ext);
        CT_GUARD_RET(pki_der_expect(&e, PKI_TAG_OID, "CRL extension id", &oid));
        CT_GUARD_RET(pki_der_next(&e, "CRL extension value", &t));
        if (t.tag != PKI_TAG_OCTET_STRING) CT_GUARD_RET(pki_der_expect(&e, PKI_TAG_OCTET_STRING, "CRL extension value", &t));
        if (pki_der_oid_is(&oid, want, want_len)) *value = pki_der_inside(&t);
    }
    return CT_OK;
}

/* cRLNumber among crlExtensions ([0] EXPLICIT Extensions); 0 when absent. */
static ct_err read_number(const pki_tlv *exts, uint64_t *number)
{
    pki_der in = pki_der_inside(exts), v;
    pki_tlv seq;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "crlExtensions", &seq));
    CT_GUARD_RET(find_ext(&seq, PKI_OID_BYTES(pki_oid_crl_number), &v));
    if (v.p) {
        pki_tlv n;
        CT_GUARD_RET(pki_der_expect(&v, PKI_TAG_INTEGER, "cRLNumber", &n));
        const uint8_t *p = n.val;
        size_t len = n.val_len;
        if (len > 1 && p[0] == 0) p++, len--;
        CT_ENSURE_RET(len >= 1 && len <= 8 && !(n.val[0] & 0x80), ct_fail(CT_ERR_BAD_DER, "cRLNumber out of range"));
        *number = 0;
        for (size_t i = 0; i < len; i++) *number = *number << 8 | p[i];
    }
    return CT_OK;
}

/* The CRL's parts, once its issuer is known to be `name` (else CT_ERR_NOT_FOUND) and its signature verifies with
 * `issuer`'s key. */
static ct_err crl_open(const uint8_t *crl_der, size_t crl_len, const pki_tlv *name_want, const uint8_t *issuer,
                       size_t issuer_len, pki_crl_info *out, pki_tlv *exts)
{
    pki_der in = pki_der_span(crl_der, crl_len), tbs_in;
    pki_tlv crl, tbs, alg, sig, t, inner_alg, name;
    uint8_t digest[WC_SHA384_DIGEST_SIZE];
    size_t digest_len = 0;
    memset(out, 0, sizeof *out);
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
    if (name.tlv_len != name_want->tlv_len || memcmp(name.tlv, name_want->tlv, name.tlv_len) != 0)
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
            out->entries = t.val;
            out->entries_len = t.val_len;
        } else {
            CT_ENSURE_RET(t.tag == PKI_TAG_CTX0, ct_fail(CT_ERR_BAD_DER, "unexpected element 0x%02x in a CRL", t.tag));
            ext_seen = true;
            *exts = t;
        }
    }
    return CT_OK;
}

ct_err pki_crl_check(const uint8_t *crl_der, size_t crl_len, const uint8_t *issuer, size_t issuer_len,
                     const uint8_t *cert, size_t cert_len, pki_crl_status *out)
{
    pki_tlv serial = {0}, cert_issuer = {0};
    pki_crl_info info;
    memset(out, 0, sizeof *out);
    CT_GUARD_RET(pki_cert_serial_issuer(cert, cert_len, &serial, &cert_issuer));
    pki_tlv exts;
    CT_GUARD_RET(crl_open(crl_der, crl_len, &cert_issuer, issuer, issuer_len, &info, &exts));
    out->this_update = info.this_update;
    out->next_update = info.next_update;
    return find_serial(pki_der_span(info.entries, info.entries_len), &serial, out);
}

ct_err pki_crl_read(const uint8_t *crl_der, size_t crl_len, const uint8_t *issuer, size_t issuer_len,
                    pki_crl_info *out)
{
    pki_tlv subject;
    CT_ENSURE_RET(crl_der && issuer && out, ct_fail(CT_ERR_ARG, "pki_crl_read: bad argument"));
    CT_GUARD_RET(pki_cert_subject(issuer, issuer_len, &subject));
    pki_tlv exts = {0};
    CT_GUARD_RET(crl_open(crl_der, crl_len, &subject, issuer, issuer_len, out, &exts));
    /* Read here, not in crl_open: the camera's agent checks CRLs with pki_crl_check and needs neither (its size). */
    if (exts.tlv) CT_GUARD_RET(read_number(&exts, &out->number));
    /* Every entry well formed: a malformed one must not end the list early. */
    pki_der entries = pki_der_span(out->entries, out->entries_len);
    pki_tlv s;
    time_t at;
    while (entries.len > 0) CT_GUARD_RET(next_entry(&entries, &s, &at, NULL));
    return CT_OK;
}

ct_err pki_crl_reason(const uint8_t *crl_der, size_t crl_len, const uint8_t *issuer, size_t issuer_len,
                      const uint8_t *cert, size_t cert_len, int *reason)
{
    pki_tlv serial = {0}, cert_issuer = {0}, s, exts;
    pki_crl_info info;
    time_t at;
    *reason = -1;
    CT_GUARD_RET(pki_cert_serial_issuer(cert, cert_len, &serial, &cert_issuer));
    CT_GUARD_RET(pki_crl_read(crl_der, crl_len, issuer, issuer_len, &info));
    pki_der entries = pki_der_span(info.entries, info.entries_len), rest, v;
    while (entries.len > 0) {
        CT_GUARD_RET(next_entry(&entries, &s, &at, &rest));
        if (s.val_len != serial.val_len || memcmp(s.val, serial.val, s.val_len) != 0) continue;
        *reason = PKI_REASON_UNSPECIFIED; /* RFC 5280 5.3.1: no reasonCode is unspecified */
        if (rest.len == 0) continue;
        CT_GUARD_RET(pki_der_expect(&rest, PKI_TAG_SEQUENCE, "crlEntryExtensions", &exts));
        CT_GUARD_RET(find_ext(&exts, PKI_OID_BYTES(pki_oid_crl_reason), &v));
        pki_tlv code;
        if (!v.p) continue;
        CT_GUARD_RET(pki_der_expect(&v, PKI_TAG_ENUMERATED, "reasonCode", &code));
        CT_ENSURE_RET(code.val_len == 1 && code.val[0] <= 10, ct_fail(CT_ERR_BAD_DER, "reasonCode out of range"));
        *reason = code.val[0];
    }
    return CT_OK;
}

ct_err pki_crl_missing(const pki_crl_info *crl, const pki_revoked *list, size_t n, size_t *missing)
{
    const pki_der all = pki_der_span(crl->entries, crl->entries_len);
    pki_der at = all;
    *missing = n;
    for (size_t i = 0; i < n; i++) {
        uint8_t mag[PKI_MAX_SERIAL_BYTES];
        size_t len = 0;
        CT_ENSURE_RET(ct_hex_decode(list[i].serial_hex, mag, sizeof mag, &len) == CT_OK && len > 0,
                      ct_fail(CT_ERR_ARG, "certificate serial '%.48s' is not 1 to %d bytes of hex", list[i].serial_hex,
                              PKI_MAX_SERIAL_BYTES));
        bool found = false;
        /* One pass when both are in the order pki_crl_make writes (the list's); from the start for one that is not. */
        for (int pass = 0; pass < 2 && !found; pass++) {
            pki_der in = pass ? all : at;
            while (in.len > 0 && !found) {
                pki_tlv s;
                time_t when;
                CT_GUARD_RET(next_entry(&in, &s, &when, NULL));
                const uint8_t *v = s.val;
                size_t vlen = s.val_len;
                if (vlen > 1 && v[0] == 0) v++, vlen--;
                found = vlen == len && memcmp(v, mag, len) == 0;
            }
            if (found) at = in;
        }
        if (!found) {
            *missing = i;
            return CT_OK;
        }
    }
    return CT_OK;
}

ct_err pki_crl_supersedes(const uint8_t *now, size_t now_len, const uint8_t *was, size_t was_len,
                          const uint8_t *issuer, size_t issuer_len)
{
    pki_crl_info before, after;
    if (was_len == now_len && memcmp(was, now, now_len) == 0) return CT_OK; /* the same CRL again */
    if (!was_len || pki_crl_read(was, was_len, issuer, issuer_len, &before) != CT_OK) {
        ct_err_clear();
        return CT_OK;
    }
    CT_GUARD_RET(pki_crl_read(now, now_len, issuer, issuer_len, &after));
    CT_ENSURE_RET(after.number > before.number,
                  ct_fail(CT_ERR_INTEGRITY, "its cRLNumber %llu is not above the earlier one's, %llu",
                          (unsigned long long)after.number, (unsigned long long)before.number));
    pki_der entries = pki_der_span(before.entries, before.entries_len);
    while (entries.len > 0) {
        pki_tlv s;
        time_t at;
        pki_crl_status st = {0};
        char hex[PKI_MAX_SERIAL_BYTES * 2 + 1] = "";
        CT_GUARD_RET(next_entry(&entries, &s, &at, NULL));
        CT_GUARD_RET(find_serial(pki_der_span(after.entries, after.entries_len), &s, &st));
        if (st.revoked) continue;
        size_t skip = s.val_len > 1 && s.val[0] == 0;
        if (ct_hex_encode(s.val + skip, s.val_len - skip, hex, sizeof hex) != CT_OK) ct_err_clear();
        return ct_fail(CT_ERR_INTEGRITY, "it no longer revokes serial %s, which the earlier one revokes", hex);
    }
    return CT_OK;
}
