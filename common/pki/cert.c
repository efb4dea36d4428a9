/* X.509 certificates: issuing with token keys through wolfSSL's certificate generation, and reading /
 * verifying certificates (outside input: our bounded walk pins the framing, wolfSSL parses the rest). */
#define _POSIX_C_SOURCE 200809L /* gmtime_r, inet_pton */
#include "pki_priv.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>

/* ---- token signing glue (shared with csr.c) ---- */

ct_err pki_sig_type(const hsm_key *k, int *sig_type)
{
    switch (hsm_key_get_type(k)) {
    case HSM_EC_P256: *sig_type = CTC_SHA256wECDSA; return CT_OK;
    case HSM_EC_P384: *sig_type = CTC_SHA384wECDSA; return CT_OK;
    default: return ct_fail(CT_ERR_ARG, "token key of unknown type");
    }
}

/* The token signs the digest itself (pki_sign_tbs), as for CRLs and OCSP: wolfSSL's wc_SignCert_ex would want a
 * wolfSSL RNG (a DRBG seeded from the system) started for every certificate only to hand it to the token. */
ct_err pki_body_sign(hsm_key *k, const Cert *cert, ct_buf *out)
{
    CT_ENSURE_RET(cert->bodySz > 0 && (size_t)cert->bodySz <= out->max, CT_ERR_ARG);
    out->len = (size_t)cert->bodySz;
    CT_GUARD_RET(pki_sign_tbs(k, out->data, out->len, out)); /* the digest is taken before anything is appended */
    return pki_der_wrap(out, 0, PKI_TAG_SEQUENCE);
}

/* The digest a token key signs a TBS with: SHA-256 for P-256, SHA-384 for P-384 (as pki_signer_open's sig_type). */
static ct_err tbs_digest(const hsm_key *k, const uint8_t *tbs, size_t tbs_len, uint8_t digest[WC_SHA384_DIGEST_SIZE],
                         word32 *dlen)
{
    bool p384 = hsm_key_get_type(k) == HSM_EC_P384;
    *dlen = p384 ? WC_SHA384_DIGEST_SIZE : WC_SHA256_DIGEST_SIZE;
    CT_ENSURE_RET(wc_Hash(p384 ? WC_HASH_TYPE_SHA384 : WC_HASH_TYPE_SHA256, tbs, (word32)tbs_len, digest, *dlen) == 0,
                  ct_fail(CT_ERR_CRYPTO, "hashing failed"));
    return CT_OK;
}

ct_err pki_sign_tbs(hsm_key *k, const uint8_t *tbs, size_t tbs_len, ct_buf *out)
{
    bool p384 = hsm_key_get_type(k) == HSM_EC_P384;
    uint8_t digest[WC_SHA384_DIGEST_SIZE], sig[1 + 160];
    size_t sig_len = sizeof sig - 1;
    word32 dlen;
    CT_GUARD_RET(tbs_digest(k, tbs, tbs_len, digest, &dlen));
    CT_GUARD_RET(hsm_key_sign_digest(k, digest, dlen, sig + 1, &sig_len));
    sig[0] = 0; /* BIT STRING: no unused bits */
    size_t start = out->len;
    if (p384) CT_GUARD_RET(pki_der_put(out, PKI_TAG_OID, PKI_OID_BYTES(pki_oid_ecdsa_sha384)));
    else CT_GUARD_RET(pki_der_put(out, PKI_TAG_OID, PKI_OID_BYTES(pki_oid_ecdsa_sha256)));
    CT_GUARD_RET(pki_der_wrap(out, start, PKI_TAG_SEQUENCE));
    return pki_der_put(out, PKI_TAG_BIT_STRING, sig, sig_len + 1);
}

/* PrintableString's alphabet (X.680): wolfSSL writes serialNumber as one without checking. */
static bool printable_string(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr(" '()+,-./:=?", c)))
            return false;
    }
    return true;
}

ct_err pki_cert_name_set(CertName *name, const char *cn, const char *serial, const char *org)
{
    CT_ENSURE_RET(cn && *cn, ct_fail(CT_ERR_ARG, "subject CN is empty"));
    CT_GUARD_RET(ct_strlcpy(name->commonName, sizeof name->commonName, cn));
    name->commonNameEnc = CTC_UTF8;
    if (serial) {
        CT_ENSURE_RET(*serial && printable_string(serial),
                      ct_fail(CT_ERR_ARG, "subject serialNumber must be a non-empty PrintableString"));
        CT_GUARD_RET(ct_strlcpy(name->serialDev, sizeof name->serialDev, serial));
        name->serialDevEnc = CTC_PRINTABLE;
    }
    if (org) {
        CT_GUARD_RET(ct_strlcpy(name->org, sizeof name->org, org));
        name->orgEnc = CTC_UTF8;
    }
    return CT_OK;
}

/* ---- ASN.1 time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ, the only forms RFC 5280 allows. */
ct_err pki_time_parse(const pki_tlv *t, time_t *out)
{
    size_t ylen = t->tag == PKI_TAG_UTC_TIME ? 2 : t->tag == PKI_TAG_GEN_TIME ? 4 : 0;
    if (ylen == 0 || t->val_len != ylen + 11 || t->val[t->val_len - 1] != 'Z')
        return ct_fail(CT_ERR_BAD_DER, "validity time is not RFC 5280 UTCTime/GeneralizedTime");
    int64_t f[6] = {0};
    const uint8_t *p = t->val;
    for (size_t i = 0; i < 6; i++) {
        size_t n = i == 0 ? ylen : 2;
        for (size_t j = 0; j < n; j++, p++) {
            if (*p < '0' || *p > '9') return ct_fail(CT_ERR_BAD_DER, "validity time has a non-digit");
            f[i] = f[i] * 10 + (*p - '0');
        }
    }
    if (ylen == 2) f[0] += f[0] < 50 ? 2000 : 1900;
    if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 59)
        return ct_fail(CT_ERR_BAD_DER, "validity time out of range");
    *out = (time_t)(days_from_civil(f[0], f[1], f[2]) * 86400 + f[3] * 3600 + f[4] * 60 + f[5]);
    return CT_OK;
}

/* A complete time TLV: UTCTime through 2049 and GeneralizedTime from 2050, or GeneralizedTime always. */
static ct_err time_tlv(time_t t, bool generalized, uint8_t out[PKI_TIME_TLV_MAX], size_t *out_len)
{
    struct tm tm;
    char s[20];
    CT_ENSURE_RET(t >= 0 && gmtime_r(&t, &tm), ct_fail(CT_ERR_ARG, "time %lld not representable", (long long)t));
    int year = tm.tm_year + 1900;
    CT_ENSURE_RET(year <= 9999, ct_fail(CT_ERR_ARG, "year %d beyond 9999", year));
    bool utc = year < 2050 && !generalized;
    CT_GUARD_RET(ct_snprintf(s, sizeof s, "%0*d%02d%02d%02d%02d%02dZ", utc ? 2 : 4, utc ? year % 100 : year,
                             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec));
    size_t n = strlen(s);
    out[0] = utc ? PKI_TAG_UTC_TIME : PKI_TAG_GEN_TIME;
    out[1] = (uint8_t)n;
    memcpy(out + 2, s, n);
    *out_len = n + 2;
    return CT_OK;
}

ct_err pki_der_put_time(ct_buf *b, time_t t, bool generalized)
{
    uint8_t tlv[PKI_TIME_TLV_MAX];
    size_t n = 0;
    CT_GUARD_RET(time_tlv(t, generalized, tlv, &n));
    return ct_buf_append(b, tlv, n);
}

/* The time TLV for Cert.beforeDate/afterDate. */
static ct_err time_encode(time_t t, byte out[CTC_DATE_SIZE], int *out_len)
{
    _Static_assert(CTC_DATE_SIZE >= PKI_TIME_TLV_MAX, "wolfSSL date field too small");
    size_t n = 0;
    CT_GUARD_RET(time_tlv(t, false, out, &n));
    *out_len = (int)n;
    return CT_OK;
}

/* ---- reading certificates ---- */

typedef struct {
    pki_tlv serial, issuer, subject, spki;
    time_t not_before, not_after;
    DecodedCert dc; /* wolfSSL's parse of the same bytes: isCA, key OID */
    bool dc_init;
} cert_view;

/* Certificate: exactly one SEQUENCE { TBS { [0] version, serial, sigAlg, issuer, validity, subject, SPKI, ... },
 * sigAlg, signature }. */
static ct_err cert_walk(const uint8_t *der, size_t len, cert_view *v)
{
    pki_der in = pki_der_span(der, len);
    pki_tlv cert, tbs, f, validity, t0, t1;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "Certificate", &cert));
    CT_GUARD_RET(pki_der_end(&in, "Certificate"));
    pki_der c = pki_der_inside(&cert);
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_SEQUENCE, "tbsCertificate", &tbs));
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_SEQUENCE, "signatureAlgorithm", &f));
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_BIT_STRING, "signature", &f));
    CT_GUARD_RET(pki_der_end(&c, "Certificate"));
    pki_der t = pki_der_inside(&tbs);
    CT_GUARD_RET(pki_der_next(&t, "version or serial", &v->serial));
    if (v->serial.tag == PKI_TAG_CTX0) CT_GUARD_RET(pki_der_next(&t, "serialNumber", &v->serial));
    if (v->serial.tag != PKI_TAG_INTEGER || v->serial.val_len == 0)
        return ct_fail(CT_ERR_BAD_DER, "serialNumber is not an INTEGER");
    CT_GUARD_RET(pki_der_expect(&t, PKI_TAG_SEQUENCE, "signature", &f));
    CT_GUARD_RET(pki_der_expect(&t, PKI_TAG_SEQUENCE, "issuer", &v->issuer));
    CT_GUARD_RET(pki_der_expect(&t, PKI_TAG_SEQUENCE, "validity", &validity));
    CT_GUARD_RET(pki_der_expect(&t, PKI_TAG_SEQUENCE, "subject", &v->subject));
    CT_GUARD_RET(pki_der_expect(&t, PKI_TAG_SEQUENCE, "subjectPublicKeyInfo", &v->spki));
    pki_der vd = pki_der_inside(&validity);
    CT_GUARD_RET(pki_der_next(&vd, "notBefore", &t0));
    CT_GUARD_RET(pki_der_next(&vd, "notAfter", &t1));
    CT_GUARD_RET(pki_der_end(&vd, "validity"));
    CT_GUARD_RET(pki_time_parse(&t0, &v->not_before));
    return pki_time_parse(&t1, &v->not_after);
}

/* The checked walk only, for callers that need no wolfSSL parse. */
static ct_err cert_walk_only(const uint8_t *der, size_t len, cert_view *v)
{
    memset(v, 0, sizeof *v);
    CT_ENSURE_RET(der && len > 0 && len <= PKI_MAX_CERT_DER, ct_fail(CT_ERR_BAD_DER, "certificate of %zu bytes", len));
    return cert_walk(der, len, v);
}

ct_err pki_cert_subject(const uint8_t *der, size_t len, pki_tlv *subject)
{
    cert_view v;
    CT_GUARD_RET(cert_walk_only(der, len, &v));
    *subject = v.subject;
    return CT_OK;
}

ct_err pki_cert_serial_issuer(const uint8_t *der, size_t len, pki_tlv *serial, pki_tlv *issuer)
{
    cert_view v;
    CT_GUARD_RET(cert_walk_only(der, len, &v));
    *serial = v.serial;
    *issuer = v.issuer;
    return CT_OK;
}

ct_err pki_cert_spki(const uint8_t *der, size_t len, const uint8_t **spki, size_t *spki_len)
{
    cert_view v;
    CT_GUARD_RET(cert_walk_only(der, len, &v));
    *spki = v.spki.tlv;
    *spki_len = v.spki.tlv_len;
    return CT_OK;
}

/* Walks and parses a certificate; cert_close afterwards on every path. */
static ct_err cert_open(const uint8_t *der, size_t len, cert_view *v)
{
    memset(v, 0, sizeof *v);
    CT_ENSURE_RET(der && len > 0 && len <= PKI_MAX_CERT_DER,
                  ct_fail(CT_ERR_BAD_DER, "certificate of %zu bytes (1..%d accepted)", len, PKI_MAX_CERT_DER));
    CT_GUARD_RET(cert_walk(der, len, v));
    InitDecodedCert(&v->dc, der, (word32)len, NULL);
    v->dc_init = true;
    /* NO_VERIFY: signatures and dates are checked by pki_cert_verify_signed_by against a given time. */
    int ret = ParseCert(&v->dc, CERT_TYPE, NO_VERIFY, NULL);
    if (ret != 0) return ct_fail(CT_ERR_BAD_DER, "wolfSSL rejects the certificate: %s (%d)", wc_GetErrorString(ret), ret);
    return CT_OK;
}

static void cert_close(cert_view *v)
{
    if (v->dc_init) FreeDecodedCert(&v->dc);
    v->dc_init = false;
}

static bool tlv_equal(const pki_tlv *a, const pki_tlv *b)
{
    return a->tlv_len == b->tlv_len && memcmp(a->tlv, b->tlv, a->tlv_len) == 0;
}

ct_err pki_cert_parse_info(const uint8_t *der, size_t len, pki_cert_info *info)
{
    ct_err rc = CT_OK;
    cert_view v;
    memset(&v, 0, sizeof v);
    CT_ENSURE(info, CT_ERR_ARG);
    memset(info, 0, sizeof *info);
    CT_GUARD(cert_open(der, len, &v));
    /* The INTEGER's sign byte is not part of the serial as people write it. */
    const uint8_t *serial = v.serial.val;
    size_t serial_len = v.serial.val_len;
    if (serial_len > 1 && serial[0] == 0) serial++, serial_len--;
    CT_ENSURE_MSG(serial_len * 2 < sizeof info->serial_hex, CT_ERR_BAD_DER, "serial of %zu bytes too long", serial_len);
    CT_GUARD(ct_hex_encode(serial, serial_len, info->serial_hex, sizeof info->serial_hex));
    CT_GUARD(pki_name_attr(v.subject.tlv, v.subject.tlv_len, PKI_OID_BYTES(pki_oid_at_cn), "subject CN",
                           info->subject_cn, sizeof info->subject_cn));
    CT_GUARD(pki_name_attr(v.subject.tlv, v.subject.tlv_len, PKI_OID_BYTES(pki_oid_at_serial),
                           "subject serialNumber", info->subject_serial, sizeof info->subject_serial));
    CT_GUARD(pki_name_attr(v.issuer.tlv, v.issuer.tlv_len, PKI_OID_BYTES(pki_oid_at_cn), "issuer CN",
                           info->issuer_cn, sizeof info->issuer_cn));
    info->not_before = v.not_before;
    info->not_after = v.not_after;
    info->is_ca = v.dc.isCA != 0;
    info->key_usage = v.dc.extKeyUsageSet ? v.dc.extKeyUsage : 0;
    info->path_len = v.dc.pathLengthSet ? (int)v.dc.pathLength : -1;
    CT_GUARD(ct_sha256(v.spki.tlv, v.spki.tlv_len, info->spki_sha256));
    CT_GUARD(ct_sha256(der, len, info->cert_sha256));
cleanup:
    cert_close(&v);
    return rc;
}

ct_err pki_cert_ids_get(const uint8_t *der, size_t len, pki_cert_ids *out)
{
    ct_err rc = CT_OK;
    cert_view v;
    pki_tlv alg, key;
    memset(out, 0, sizeof *out);
    CT_GUARD(cert_open(der, len, &v));
    pki_der spki = pki_der_inside(&v.spki);
    CT_GUARD(pki_der_expect(&spki, PKI_TAG_SEQUENCE, "SPKI algorithm", &alg));
    CT_GUARD(pki_der_expect(&spki, PKI_TAG_BIT_STRING, "SPKI key", &key));
    CT_ENSURE_MSG(key.val_len > 1 && key.val[0] == 0, CT_ERR_BAD_DER, "public key BIT STRING has unused bits");
    /* RFC 6960 4.1.1: the hash of the key's BIT STRING value, without the unused-bits count. */
    CT_ENSURE(wc_ShaHash(v.subject.tlv, (word32)v.subject.tlv_len, out->name_sha1) == 0 &&
                  wc_ShaHash(key.val + 1, (word32)key.val_len - 1, out->key_sha1) == 0 &&
                  wc_Sha256Hash(v.subject.tlv, (word32)v.subject.tlv_len, out->name_sha256) == 0 &&
                  wc_Sha256Hash(key.val + 1, (word32)key.val_len - 1, out->key_sha256) == 0,
              ct_fail(CT_ERR_CRYPTO, "hashing failed"));
    CT_ENSURE_MSG(v.dc.extSubjKeyIdSet, CT_ERR_BAD_DER, "certificate has no subjectKeyIdentifier");
    _Static_assert(sizeof v.dc.extSubjKeyId <= sizeof out->key_id, "key id size");
    memcpy(out->key_id, v.dc.extSubjKeyId, sizeof v.dc.extSubjKeyId);
    out->key_id_len = sizeof v.dc.extSubjKeyId;
cleanup:
    cert_close(&v);
    return rc;
}

/* wolfSSL's own date checks compare with "now" only; `at` is compared here. */
static ct_err valid_at(const cert_view *v, const char *which, time_t at)
{
    if (at < v->not_before) return ct_fail(CT_ERR_INTEGRITY, "%s certificate not yet valid", which);
    if (at > v->not_after) return ct_fail(CT_ERR_INTEGRITY, "%s certificate expired", which);
    return CT_OK;
}

ct_err pki_cert_verify_signed_by(const uint8_t *cert, size_t cert_len, const uint8_t *issuer, size_t issuer_len,
                                 time_t at)
{
    ct_err rc = CT_OK;
    cert_view c, i;
    memset(&c, 0, sizeof c);
    memset(&i, 0, sizeof i);
    CT_GUARD(cert_open(cert, cert_len, &c));
    CT_GUARD(cert_open(issuer, issuer_len, &i));
    /* Byte equality is stricter than RFC 5280 name matching; camtrust copies issuer names verbatim. */
    CT_ENSURE_MSG(tlv_equal(&c.issuer, &i.subject), CT_ERR_INTEGRITY, "certificate issuer is not the issuer's subject");
    CT_ENSURE_MSG(i.dc.isCA, CT_ERR_INTEGRITY, "issuer certificate is not a CA");
    int ret = wc_CheckCertSigPubKey(cert, (word32)cert_len, NULL, i.spki.tlv, (word32)i.spki.tlv_len, (int)i.dc.keyOID);
    CT_ENSURE_MSG(ret == 0, CT_ERR_INTEGRITY, "certificate signature does not verify with the issuer key: %s (%d)",
                  wc_GetErrorString(ret), ret);
    CT_GUARD(valid_at(&c, "the", at));
    CT_GUARD(valid_at(&i, "the issuer", at));
cleanup:
    cert_close(&c);
    cert_close(&i);
    return rc;
}

/* ---- issuing ---- */

static const struct {
    bool is_ca, path_len_0, san;
    const char *key_usage, *ext_key_usage;
} profiles[] = {
    [PKI_PROFILE_ROOT_CA] = {true, false, false, "keyCertSign,cRLSign", NULL},
    [PKI_PROFILE_ISSUING_CA] = {true, true, false, "keyCertSign,cRLSign", NULL},
    [PKI_PROFILE_DEVICE_ID] = {false, false, true, "digitalSignature", "serverAuth,clientAuth"},
    [PKI_PROFILE_CLIENT] = {false, false, false, "digitalSignature", "clientAuth"},
    [PKI_PROFILE_TLS_SERVER] = {false, false, true, "digitalSignature", "serverAuth"},
    [PKI_PROFILE_MEDIA_SIGNING] = {false, false, false, "digitalSignature", NULL},
    [PKI_PROFILE_OCSP_SIGNER] = {false, false, false, "digitalSignature", "OCSPSigning"},
    [PKI_PROFILE_LOG_SIGNER] = {false, false, false, "digitalSignature", NULL},
    [PKI_PROFILE_VIEWER] = {false, false, false, "keyAgreement", NULL},
};

static bool dns_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

/* The SAN GeneralNames SEQUENCE that wolfSSL copies into the extension as it is. */
static ct_err san_build(const pki_cert_template *t, Cert *cert)
{
    ct_err rc = CT_OK;
    ct_buf names = CT_BUF_INIT, seq = CT_BUF_INIT;
    CT_GUARD(ct_buf_alloc(&names, 2048));
    CT_GUARD(ct_buf_alloc(&seq, 2048));
    for (size_t i = 0; i < 4 && t->dns_names[i]; i++) {
        CT_ENSURE_MSG(dns_name_ok(t->dns_names[i]), CT_ERR_ARG, "SAN DNS name '%s' is not a host name", t->dns_names[i]);
        CT_GUARD(pki_der_put(&names, PKI_TAG_SAN_DNS, t->dns_names[i], strlen(t->dns_names[i])));
    }
    for (size_t i = 0; i < 2 && t->ip_addrs[i]; i++) {
        uint8_t ip[4];
        CT_ENSURE_MSG(inet_pton(AF_INET, t->ip_addrs[i], ip) == 1, CT_ERR_ARG, "SAN IP '%s' is not dotted IPv4",
                      t->ip_addrs[i]);
        CT_GUARD(pki_der_put(&names, PKI_TAG_SAN_IP, ip, sizeof ip));
    }
    if (names.len == 0) goto cleanup;
    CT_GUARD(pki_der_put(&seq, PKI_TAG_SEQUENCE, names.data, names.len));
    CT_ENSURE(seq.len <= sizeof cert->altNames, CT_ERR_BUF_FULL);
    memcpy(cert->altNames, seq.data, seq.len);
    cert->altNamesSz = (int)seq.len;
cleanup:
    ct_buf_free(&names);
    ct_buf_free(&seq);
    return rc;
}

/* A random positive serial of PKI_SERIAL_BYTES with a non-zero first byte (so DER keeps all 16 bytes). */
static ct_err serial_make(Cert *cert, pki_issued_info *info)
{
    uint8_t s[PKI_SERIAL_BYTES];
    CT_GUARD_RET(ct_random(s, sizeof s));
    s[0] &= 0x7f;
    if (s[0] == 0) s[0] = 1;
    memcpy(cert->serial, s, sizeof s);
    cert->serialSz = (int)sizeof s;
    memcpy(info->serial, s, sizeof s);
    return ct_hex_encode(s, sizeof s, info->serial_hex, sizeof info->serial_hex);
}

static ct_err wolf_ok(int ret, const char *what)
{
    if (ret < 0) return ct_fail(CT_ERR_CRYPTO, "%s: %s (%d)", what, wc_GetErrorString(ret), ret);
    return CT_OK;
}

static const uint8_t oid_crl_dp[3] = {0x55, 0x1d, 0x1f};                                /* 2.5.29.31 */
static const uint8_t oid_aia[8] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01};       /* 1.3.6.1.5.5.7.1.1 */
static const uint8_t oid_ad_ocsp[8] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01};   /* 1.3.6.1.5.5.7.48.1 */
static const uint8_t oid_ocsp_nocheck[9] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05};

/* An http(s) URI for a certificate extension: printable ASCII without spaces, bounded. */
static bool uri_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 8 || n > 255 || (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f) return false;
    return true;
}

/* The extensions wolfSSL 5.5.4 cannot write, as DER Extension elements: cRLDistributionPoints and
 * authorityInfoAccess (OCSP) from the template, id-pkix-ocsp-nocheck for an OCSP signer. */
static ct_err extra_extensions(const pki_cert_template *t, ct_buf *exts)
{
    ct_err rc = CT_OK;
    ct_buf v = CT_BUF_INIT;
    CT_GUARD(ct_buf_alloc(&v, 512));
    if (t->crl_url && *t->crl_url) {
        CT_ENSURE_MSG(uri_ok(t->crl_url), CT_ERR_ARG, "CRL URL '%.80s' is not an http(s) URI", t->crl_url);
        /* SEQUENCE { DistributionPoint { [0] distributionPoint { [0] fullName { [6] URI } } } } */
        CT_GUARD(pki_der_put(&v, 0x86, t->crl_url, strlen(t->crl_url)));
        CT_GUARD(pki_der_wrap(&v, 0, PKI_TAG_CTX0));
        CT_GUARD(pki_der_wrap(&v, 0, PKI_TAG_CTX0));
        CT_GUARD(pki_der_wrap(&v, 0, PKI_TAG_SEQUENCE));
        CT_GUARD(pki_der_wrap(&v, 0, PKI_TAG_SEQUENCE));
        CT_GUARD(pki_der_put_ext(exts, PKI_OID_BYTES(oid_crl_dp), false, v.data, v.len));
    }
    if (t->ocsp_url && *t->ocsp_url) {
        CT_ENSURE_MSG(uri_ok(t->ocsp_url), CT_ERR_ARG, "OCSP URL '%.80s' is not an http(s) URI", t->ocsp_url);
        /* SEQUENCE { AccessDescription { id-ad-ocsp, [6] URI } } */
        v.len = 0;
        CT_GUARD(pki_der_put(&v, PKI_TAG_OID, PKI_OID_BYTES(oid_ad_ocsp)));
        CT_GUARD(pki_der_put(&v, 0x86, t->ocsp_url, strlen(t->ocsp_url)));
        CT_GUARD(pki_der_wrap(&v, 0, PKI_TAG_SEQUENCE));
        CT_GUARD(pki_der_wrap(&v, 0, PKI_TAG_SEQUENCE));
        CT_GUARD(pki_der_put_ext(exts, PKI_OID_BYTES(oid_aia), false, v.data, v.len));
    }
    if (t->profile == PKI_PROFILE_OCSP_SIGNER) {
        static const uint8_t der_null[2] = {PKI_TAG_NULL, 0};
        CT_GUARD(pki_der_put_ext(exts, PKI_OID_BYTES(oid_ocsp_nocheck), false, der_null, sizeof der_null));
    }
cleanup:
    ct_buf_free(&v);
    return rc;
}

/* Before signing, rewrites the to-be-signed body that wc_MakeCert_ex left in `out`, with every enclosing
 * length adjusted: wolfSSL 5.5.4 writes basicConstraints without the critical flag, which RFC 5280 requires in
 * CA certificates (openssl verify -x509_strict refuses such a chain), and cannot write the `extra` extensions,
 * which are appended. */
static ct_err extensions_finish(Cert *cert, const ct_buf *extra, ct_buf *out)
{
    static const uint8_t oid_bc[3] = {0x55, 0x1d, 0x13}, der_true[3] = {0x01, 0x01, 0xff};
    ct_err rc = CT_OK;
    ct_buf tbs = CT_BUF_INIT;
    pki_der in = pki_der_span(out->data, (size_t)cert->bodySz);
    pki_tlv body, f, exts, ext, oid, crit;
    bool found = false;
    CT_GUARD(pki_der_expect(&in, PKI_TAG_SEQUENCE, "tbsCertificate", &body));
    pki_der b = pki_der_inside(&body);
    do { /* up to [3] extensions, the last field */
        CT_GUARD(pki_der_next(&b, "tbsCertificate", &f));
    } while (f.tag != PKI_TAG_CTX3);
    CT_GUARD(pki_der_end(&b, "tbsCertificate"));
    pki_der w = pki_der_inside(&f);
    CT_GUARD(pki_der_expect(&w, PKI_TAG_SEQUENCE, "extensions", &exts));
    for (pki_der e = pki_der_inside(&exts); e.len && !found;) {
        CT_GUARD(pki_der_expect(&e, PKI_TAG_SEQUENCE, "extension", &ext));
        pki_der x = pki_der_inside(&ext);
        CT_GUARD(pki_der_expect(&x, PKI_TAG_OID, "extension id", &oid));
        CT_GUARD(pki_der_next(&x, "extension", &crit));
        found = pki_der_oid_is(&oid, PKI_OID_BYTES(oid_bc));
    }
    CT_ENSURE_MSG(found || !cert->isCA, CT_ERR_INTERNAL, "wolfSSL wrote no basicConstraints");
    /* Already critical: a wolfSSL that does it itself. */
    bool make_critical = cert->isCA && crit.tag != PKI_TAG_BOOLEAN;
    if (!make_critical && extra->len == 0) goto cleanup;

    /* The body grows by the extra extensions, the critical flag (3 bytes) and longer length fields; never past
     * what `out` holds (ct_buf_append refuses). */
    size_t room = (size_t)cert->bodySz + extra->len + 32;
    CT_GUARD(ct_buf_alloc(&tbs, room < out->max ? room : out->max));
    CT_GUARD(ct_buf_append(&tbs, body.val, (size_t)(f.tlv - body.val)));
    size_t wrap = tbs.len;
    if (make_critical) {
        const uint8_t *ext_end = ext.tlv + ext.tlv_len;
        CT_GUARD(ct_buf_append(&tbs, exts.val, (size_t)(ext.tlv - exts.val)));
        size_t one = tbs.len;
        CT_GUARD(ct_buf_append(&tbs, oid.tlv, oid.tlv_len));
        CT_GUARD(ct_buf_append(&tbs, der_true, sizeof der_true));
        CT_GUARD(ct_buf_append(&tbs, crit.tlv, (size_t)(ext_end - crit.tlv)));
        CT_GUARD(pki_der_wrap(&tbs, one, PKI_TAG_SEQUENCE));
        CT_GUARD(ct_buf_append(&tbs, ext_end, (size_t)(exts.val + exts.val_len - ext_end)));
    } else {
        CT_GUARD(ct_buf_append(&tbs, exts.val, exts.val_len));
    }
    CT_GUARD(ct_buf_append(&tbs, extra->data, extra->len));
    CT_GUARD(pki_der_wrap(&tbs, wrap, PKI_TAG_SEQUENCE));
    CT_GUARD(pki_der_wrap(&tbs, wrap, PKI_TAG_CTX3));
    CT_GUARD(pki_der_wrap(&tbs, 0, PKI_TAG_SEQUENCE));
    memcpy(out->data, tbs.data, tbs.len);
    cert->bodySz = (int)tbs.len;
cleanup:
    ct_buf_free(&tbs);
    return rc;
}

ct_err pki_ed25519_spki(const uint8_t pub[PKI_ED25519_PUB_LEN], uint8_t out[PKI_ED25519_SPKI_LEN])
{
    /* SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (no unused bits) key } (RFC 8410) */
    static const uint8_t prefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    _Static_assert(sizeof prefix + PKI_ED25519_PUB_LEN == PKI_ED25519_SPKI_LEN, "Ed25519 SPKI size");
    CT_ENSURE_RET(pub && out, CT_ERR_ARG);
    memcpy(out, prefix, sizeof prefix);
    memcpy(out + sizeof prefix, pub, PKI_ED25519_PUB_LEN);
    return CT_OK;
}

/* The subject's public key as wolfSSL's certificate generation takes it: EC (P-256, P-384) or Ed25519. */
typedef struct {
    int type; /* ECC_TYPE or ED25519_TYPE; 0 before loading */
    ecc_key ecc;
    ed25519_key ed;
} subject_key;

static ct_err subject_key_load(const uint8_t *spki, size_t len, subject_key *k)
{
    word32 idx = 0;
    if (pki_spki_is_ed25519(spki, len)) {
        /* The one encoding (RFC 8410): wolfSSL 5.5.4's wc_Ed25519PublicKeyDecode leaves the index short of the end. */
        uint8_t want[PKI_ED25519_SPKI_LEN];
        CT_ENSURE_RET(len == sizeof want, ct_fail(CT_ERR_BAD_DER, "subject public key is not a valid Ed25519 key"));
        const uint8_t *pub = spki + len - PKI_ED25519_PUB_LEN;
        CT_GUARD_RET(pki_ed25519_spki(pub, want));
        CT_ENSURE_RET(memcmp(want, spki, len) == 0,
                      ct_fail(CT_ERR_BAD_DER, "subject public key is not a valid Ed25519 key"));
        CT_ENSURE_RET(wc_ed25519_init(&k->ed) == 0, CT_ERR_CRYPTO);
        k->type = ED25519_TYPE;
        CT_ENSURE_RET(wc_ed25519_import_public(pub, PKI_ED25519_PUB_LEN, &k->ed) == 0,
                      ct_fail(CT_ERR_BAD_DER, "subject public key is not a valid Ed25519 key"));
        return CT_OK;
    }
    hsm_key_type type;
    CT_GUARD_RET(pki_spki_key_type(spki, len, &type));
    CT_ENSURE_RET(wc_ecc_init(&k->ecc) == 0, CT_ERR_CRYPTO);
    k->type = ECC_TYPE;
    /* On-curve is the whole check for P-256/P-384 (cofactor 1). wc_ecc_check_key would also multiply by the
     * order, a second use of a one-off key that makes FP_ECC build a fixed-point table for it (~3 ms). */
    CT_ENSURE_RET(wc_EccPublicKeyDecode(spki, &idx, &k->ecc, (word32)len) == 0 && idx == len &&
                      wc_ecc_point_is_on_curve(&k->ecc.pubkey, k->ecc.idx) == 0,
                  ct_fail(CT_ERR_BAD_DER, "subject public key is not a valid EC point"));
    return CT_OK;
}

static void *subject_key_ptr(subject_key *k) { return k->type == ED25519_TYPE ? (void *)&k->ed : (void *)&k->ecc; }

static void subject_key_free(subject_key *k)
{
    if (k->type == ED25519_TYPE) wc_ed25519_free(&k->ed);
    else if (k->type == ECC_TYPE) wc_ecc_free(&k->ecc);
    k->type = 0;
}

/* A CA checks what the token signed before anyone relies on it: the new certificate's signature, over its TBS as
 * written, verified with the issuer key's public object in the token (wolfSSL's generic ECC math verifies at a
 * third of the token's rate here). */
static ct_err token_signature_check(hsm_key *issuer_key, const ct_buf *der)
{
    pki_der in = pki_der_span(der->data, der->len);
    pki_tlv cert, tbs, alg, sig;
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "Certificate", &cert));
    pki_der c = pki_der_inside(&cert);
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_SEQUENCE, "tbsCertificate", &tbs));
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_SEQUENCE, "signatureAlgorithm", &alg));
    CT_GUARD_RET(pki_der_expect(&c, PKI_TAG_BIT_STRING, "signature", &sig));
    CT_ENSURE_RET(sig.val_len > 1 && sig.val[0] == 0, ct_fail(CT_ERR_HSM, "the new certificate's signature is malformed"));
    uint8_t digest[WC_SHA384_DIGEST_SIZE];
    word32 dlen;
    bool valid = false;
    CT_GUARD_RET(tbs_digest(issuer_key, tbs.tlv, tbs.tlv_len, digest, &dlen));
    CT_GUARD_RET(hsm_key_verify_digest(issuer_key, digest, dlen, sig.val + 1, sig.val_len - 1, &valid));
    CT_ENSURE_RET(valid, ct_fail(CT_ERR_HSM, "the token's signature on the new certificate does not verify"));
    return CT_OK;
}

/* wc_MakeCert_ex insists on an RNG, though it draws from it only to make a serial (ours is set): one per thread,
 * started at the thread's first certificate, instead of a DRBG seeded from the system per certificate. */
static pthread_key_t rng_key;
static bool rng_key_ok;
static pthread_once_t rng_once = PTHREAD_ONCE_INIT;

static void rng_free(void *p)
{
    wc_FreeRng(p);
    free(p);
}

static void rng_key_make(void) { rng_key_ok = pthread_key_create(&rng_key, rng_free) == 0; }

static ct_err thread_rng(WC_RNG **out)
{
    CT_ENSURE_RET(pthread_once(&rng_once, rng_key_make) == 0 && rng_key_ok, ct_fail(CT_ERR_INTERNAL, "no thread key"));
    WC_RNG *rng = pthread_getspecific(rng_key);
    if (!rng) {
        rng = calloc(1, sizeof *rng);
        CT_ENSURE_RET(rng, CT_ERR_NOMEM);
        if (wc_InitRng(rng) != 0) {
            free(rng);
            return ct_fail(CT_ERR_CRYPTO, "wolfSSL RNG does not start");
        }
        if (pthread_setspecific(rng_key, rng) != 0) {
            rng_free(rng);
            return ct_fail(CT_ERR_INTERNAL, "thread key not set");
        }
    }
    *out = rng;
    return CT_OK;
}

struct pki_issuer {
    Cert proto; /* wc_InitCert's defaults with the issuer's name (its subject, raw) and the authority key id */
    hsm_key *key;
};

void pki_issuer_free(pki_issuer *iss) { free(iss); }

ct_err pki_issuer_open(const uint8_t *cert_der, size_t len, hsm_key *key, pki_issuer **out)
{
    ct_err rc = CT_OK;
    pki_issuer *iss = NULL;
    cert_view iv;
    ct_buf spki = CT_BUF_INIT;
    memset(&iv, 0, sizeof iv);
    CT_ENSURE(out && key, CT_ERR_ARG);
    *out = NULL;
    int sig_type = 0;
    CT_GUARD(pki_sig_type(key, &sig_type));
    CT_GUARD(cert_open(cert_der, len, &iv));
    CT_ENSURE_MSG(iv.dc.isCA, CT_ERR_ARG, "issuer certificate is not a CA");
    /* The key must be the one in the certificate, or what it signs would not verify anywhere. */
    CT_GUARD(ct_buf_alloc(&spki, 512));
    CT_GUARD(hsm_key_public_der(key, &spki));
    pki_tlv token = {PKI_TAG_SEQUENCE, spki.data, spki.len, NULL, 0};
    CT_ENSURE_MSG(tlv_equal(&token, &iv.spki), CT_ERR_ARG, "issuer key does not match the issuer certificate");
    iss = calloc(1, sizeof *iss);
    CT_ENSURE(iss, CT_ERR_NOMEM);
    iss->key = key;
    CT_GUARD(wolf_ok(wc_InitCert(&iss->proto), "wc_InitCert"));
    /* Raw copy, so that the issuer name matches the issuer's subject byte for byte. */
    CT_GUARD(wolf_ok(wc_SetIssuerRaw(&iss->proto, cert_der, (int)len), "wc_SetIssuerRaw"));
    CT_GUARD(wolf_ok(wc_SetAuthKeyIdFromCert(&iss->proto, cert_der, (int)len), "authority key id"));
    /* Each certificate gets a copy: it must not share wolfSSL's parse cache (freed after each call). */
    CT_ENSURE_MSG(iss->proto.decodedCert == NULL, CT_ERR_INTERNAL, "wolfSSL kept the issuer's parse");
    iss->proto.der = NULL; /* the caller's buffer, which a copy must not point to */
    iss->proto.sigType = sig_type;
    *out = iss;
    iss = NULL;
cleanup:
    pki_issuer_free(iss);
    cert_close(&iv);
    ct_buf_free(&spki);
    return rc;
}

/* Issues with `iss` (NULL: a self-signed root, whose subject key must be `key`'s). */
static ct_err issue(const pki_cert_template *t, const uint8_t *subject_spki, size_t spki_len, const pki_issuer *iss,
                    hsm_key *key, ct_buf *out_der, pki_issued_info *info)
{
    ct_err rc = CT_OK;
    Cert *cert = NULL;
    subject_key subj = {0};
    ct_buf self_spki = CT_BUF_INIT, extra = CT_BUF_INIT;
    pki_issued_info local_info;

    if (!info) info = &local_info;
    CT_ENSURE(t && subject_spki && key && out_der && out_der->data, CT_ERR_ARG);
    CT_ENSURE_MSG((size_t)t->profile < sizeof profiles / sizeof profiles[0], CT_ERR_ARG, "unknown profile");
    CT_ENSURE_MSG(profiles[t->profile].san || (!t->dns_names[0] && !t->ip_addrs[0]), CT_ERR_ARG,
                  "this profile takes no subjectAltName");
    CT_ENSURE_MSG((iss == NULL) == (t->profile == PKI_PROFILE_ROOT_CA), CT_ERR_ARG,
                  "a root (and only a root) has no issuer certificate");

    /* The subject key: an accepted type, and a valid key of it. */
    CT_GUARD(subject_key_load(subject_spki, spki_len, &subj));

    cert = malloc(sizeof *cert);
    CT_ENSURE(cert, CT_ERR_NOMEM);
    if (iss) {
        memcpy(cert, &iss->proto, sizeof *cert);
    } else {
        /* A root signs its own key. */
        CT_GUARD(ct_buf_alloc(&self_spki, 512));
        CT_GUARD(hsm_key_public_der(key, &self_spki));
        CT_ENSURE_MSG(self_spki.len == spki_len && memcmp(self_spki.data, subject_spki, spki_len) == 0, CT_ERR_ARG,
                      "issuer key does not match the root's subject key");
        memset(cert, 0, sizeof *cert);
        CT_GUARD(wolf_ok(wc_InitCert(cert), "wc_InitCert"));
        CT_GUARD(pki_sig_type(key, &cert->sigType));
        CT_GUARD(wolf_ok(wc_SetAuthKeyIdFromPublicKey_ex(cert, subj.type, subject_key_ptr(&subj)), "authority key id"));
    }
    CT_GUARD(serial_make(cert, info));
    CT_GUARD(pki_cert_name_set(&cert->subject, t->cn, t->serial_number, t->organization));
    time_t not_before = t->not_before ? t->not_before : time(NULL) - 300;
    CT_ENSURE_MSG(t->not_after > not_before, CT_ERR_ARG, "notAfter is not after notBefore");
    /* wolfSSL uses beforeDate/afterDate verbatim (instead of daysValid) when both are set. */
    CT_GUARD(time_encode(not_before, cert->beforeDate, &cert->beforeDateSz));
    CT_GUARD(time_encode(t->not_after, cert->afterDate, &cert->afterDateSz));
    info->not_before = not_before;
    info->not_after = t->not_after;

    cert->isCA = profiles[t->profile].is_ca;
    if (profiles[t->profile].path_len_0) {
        cert->pathLen = 0;
        cert->pathLenSet = 1;
    }
    CT_GUARD(wolf_ok(wc_SetKeyUsage(cert, profiles[t->profile].key_usage), "wc_SetKeyUsage"));
    if (profiles[t->profile].ext_key_usage)
        CT_GUARD(wolf_ok(wc_SetExtKeyUsage(cert, profiles[t->profile].ext_key_usage), "wc_SetExtKeyUsage"));
    CT_GUARD(san_build(t, cert));
    CT_GUARD(wolf_ok(wc_SetSubjectKeyIdFromPublicKey_ex(cert, subj.type, subject_key_ptr(&subj)), "subject key id"));

    WC_RNG *rng = NULL;
    CT_GUARD(thread_rng(&rng));
    int ret = wc_MakeCert_ex(cert, out_der->data, (word32)out_der->max, subj.type, subject_key_ptr(&subj), rng);
    CT_ENSURE_MSG(ret > 0, CT_ERR_CRYPTO, "wc_MakeCert_ex: %s (%d)", wc_GetErrorString(ret), ret);
    CT_GUARD(ct_buf_alloc(&extra, 1024));
    CT_GUARD(extra_extensions(t, &extra));
    CT_GUARD(extensions_finish(cert, &extra, out_der));
    CT_GUARD(pki_body_sign(key, cert, out_der));
    CT_GUARD(token_signature_check(key, out_der));
cleanup:
    if (rc != CT_OK && out_der) out_der->len = 0;
    subject_key_free(&subj);
    ct_buf_free(&self_spki);
    ct_buf_free(&extra);
    free(cert);
    return rc;
}

ct_err pki_cert_issue_by(const pki_issuer *iss, const pki_cert_template *t, const uint8_t *subject_spki,
                         size_t spki_len, ct_buf *out_der, pki_issued_info *info)
{
    if (!iss) {
        if (out_der) out_der->len = 0;
        return ct_fail(CT_ERR_ARG, "no issuing CA to sign with");
    }
    return issue(t, subject_spki, spki_len, iss, iss->key, out_der, info);
}

ct_err pki_cert_issue(const pki_cert_template *t, const uint8_t *subject_spki, size_t spki_len,
                      const uint8_t *issuer_cert_der, size_t issuer_len, hsm_key *issuer_key, ct_buf *out_der,
                      pki_issued_info *info)
{
    pki_issuer *iss = NULL;
    if (!issuer_cert_der) return issue(t, subject_spki, spki_len, NULL, issuer_key, out_der, info);
    ct_err rc = pki_issuer_open(issuer_cert_der, issuer_len, issuer_key, &iss);
    if (rc == CT_OK) rc = issue(t, subject_spki, spki_len, iss, issuer_key, out_der, info);
    else if (out_der) out_der->len = 0;
    pki_issuer_free(iss);
    return rc;
}
