/* pki internals shared by csr.c, cert.c and pkcs7.c: a tiny bounded DER reader/writer (implemented in
 * pkcs7.c, the file that is all DER) and the token-signing glue around wolfSSL (implemented in cert.c). */
#ifndef CAMTRUST_PKI_PRIV_H
#define CAMTRUST_PKI_PRIV_H

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include "pki.h"

/* ---- DER tags used here ---- */
enum {
    PKI_TAG_BOOLEAN = 0x01,
    PKI_TAG_INTEGER = 0x02,
    PKI_TAG_BIT_STRING = 0x03,
    PKI_TAG_OCTET_STRING = 0x04,
    PKI_TAG_NULL = 0x05,
    PKI_TAG_OID = 0x06,
    PKI_TAG_ENUMERATED = 0x0a,
    PKI_TAG_UTF8 = 0x0c,
    PKI_TAG_PRINTABLE = 0x13,
    PKI_TAG_T61 = 0x14,
    PKI_TAG_IA5 = 0x16,
    PKI_TAG_UTC_TIME = 0x17,
    PKI_TAG_GEN_TIME = 0x18,
    PKI_TAG_SEQUENCE = 0x30,
    PKI_TAG_SET = 0x31,
    PKI_TAG_CTX0 = 0xa0, /* [0] constructed */
    PKI_TAG_CTX1 = 0xa1, /* [1] constructed */
    PKI_TAG_CTX2 = 0xa2, /* [2] constructed */
    PKI_TAG_CTX3 = 0xa3, /* [3] constructed */
    PKI_TAG_SAN_DNS = 0x82,
    PKI_TAG_SAN_IP = 0x87,
};

/* Object identifiers as DER content bytes (no tag, no length). */
#define PKI_OID_BYTES(name) name, sizeof(name)
extern const uint8_t pki_oid_ec_public_key[7];  /* 1.2.840.10045.2.1 */
extern const uint8_t pki_oid_p256[8];           /* 1.2.840.10045.3.1.7 */
extern const uint8_t pki_oid_p384[5];           /* 1.3.132.0.34 */
extern const uint8_t pki_oid_ed25519[3];        /* 1.3.101.112 (RFC 8410) */
extern const uint8_t pki_oid_ecdsa_sha256[8];   /* 1.2.840.10045.4.3.2 */
extern const uint8_t pki_oid_ecdsa_sha384[8];   /* 1.2.840.10045.4.3.3 */
extern const uint8_t pki_oid_crl_number[3];     /* 2.5.29.20 */
extern const uint8_t pki_oid_crl_reason[3];     /* 2.5.29.21 */
extern const uint8_t pki_oid_at_cn[3];          /* 2.5.4.3 */
extern const uint8_t pki_oid_at_serial[3];      /* 2.5.4.5 */

/* ---- reader: a span still to be read; every read is checked against what is left ---- */
typedef struct {
    const uint8_t *p;
    size_t len;
} pki_der;

typedef struct {
    uint8_t tag;
    const uint8_t *tlv; /* the whole element, header included */
    size_t tlv_len;
    const uint8_t *val;
    size_t val_len;
} pki_tlv;

static inline pki_der pki_der_span(const uint8_t *p, size_t len) { return (pki_der){p, len}; }
static inline pki_der pki_der_inside(const pki_tlv *t) { return (pki_der){t->val, t->val_len}; }

/* Reads one element off the front of `in`: one-byte tag, definite minimal DER length (at most 4 length
 * bytes). CT_ERR_BAD_DER with a detail naming `what` otherwise. */
CT_MUST_CHECK ct_err pki_der_next(pki_der *in, const char *what, pki_tlv *out);
/* Like pki_der_next, and the tag must be `tag`. */
CT_MUST_CHECK ct_err pki_der_expect(pki_der *in, uint8_t tag, const char *what, pki_tlv *out);
/* CT_ERR_BAD_DER unless `in` is fully consumed. */
CT_MUST_CHECK ct_err pki_der_end(const pki_der *in, const char *what);
bool pki_der_oid_is(const pki_tlv *t, const uint8_t *oid, size_t oid_len);

/* The value of the single attribute `oid` in a DER Name as a C string ("" if absent). CT_ERR_BAD_DER if the
 * Name is malformed, the attribute appears twice, is not a string, holds a NUL or does not fit. */
CT_MUST_CHECK ct_err pki_name_attr(const uint8_t *name, size_t name_len, const uint8_t *oid, size_t oid_len,
                                   const char *what, char *out, size_t out_max);

/* The subject Name element of a DER certificate (the checked walk only; points into `der`). */
CT_MUST_CHECK ct_err pki_cert_subject(const uint8_t *der, size_t len, pki_tlv *subject);
/* Its serialNumber INTEGER and issuer Name, the same way. */
CT_MUST_CHECK ct_err pki_cert_serial_issuer(const uint8_t *der, size_t len, pki_tlv *serial, pki_tlv *issuer);
/* A time TLV in the forms RFC 5280 allows (UTCTime, GeneralizedTime, "Z"), range-checked. */
CT_MUST_CHECK ct_err pki_time_parse(const pki_tlv *t, time_t *out);

/* ---- writer: appends to a bounded buffer ---- */
size_t pki_der_hdr_len(size_t content_len);
CT_MUST_CHECK ct_err pki_der_put_hdr(ct_buf *b, uint8_t tag, size_t content_len);
CT_MUST_CHECK ct_err pki_der_put(ct_buf *b, uint8_t tag, const void *content, size_t content_len);
/* Turns everything in `b` from byte `from` on into the content of one element `tag` (inside out building). */
CT_MUST_CHECK ct_err pki_der_wrap(ct_buf *b, size_t from, uint8_t tag);
/* A non-negative INTEGER from big-endian magnitude bytes (leading zeros dropped, a sign byte added). */
CT_MUST_CHECK ct_err pki_der_put_uint(ct_buf *b, const uint8_t *mag, size_t len);
/* An Extension: SEQUENCE { extnID, critical TRUE if set, extnValue OCTET STRING { value } }. */
CT_MUST_CHECK ct_err pki_der_put_ext(ct_buf *b, const uint8_t *oid, size_t oid_len, bool critical,
                                     const uint8_t *value, size_t value_len);
/* A time: UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280), or always GeneralizedTime
 * (RFC 6960). */
CT_MUST_CHECK ct_err pki_der_put_time(ct_buf *b, time_t t, bool generalized);
#define PKI_TIME_TLV_MAX 17

/* The key type of a DER SubjectPublicKeyInfo: CT_ERR_WEAK_KEY (with the algorithm named) unless EC P-256/P-384,
 * CT_ERR_BAD_DER if malformed (csr.c). */
CT_MUST_CHECK ct_err pki_spki_key_type(const uint8_t *spki, size_t len, hsm_key_type *out);
/* Whether a DER SubjectPublicKeyInfo is an Ed25519 key (RFC 8410: no parameters); malformed is false. */
bool pki_spki_is_ed25519(const uint8_t *spki, size_t len);

/* ---- signing with a token key (cert.c) ---- */
/* The signature type wolfSSL writes into a body a token key signs: CTC_SHA256wECDSA (P-256) or CTC_SHA384wECDSA. */
CT_MUST_CHECK ct_err pki_sig_type(const hsm_key *k, int *sig_type);
/* Signs the to-be-signed body that wc_MakeCert_ex / wc_MakeCertReq_ex left in out->data (cert->bodySz bytes)
 * inside the token and makes out the complete DER (body, signatureAlgorithm, signature). */
CT_MUST_CHECK ct_err pki_body_sign(hsm_key *k, const Cert *cert, ct_buf *out);
/* Appends signatureAlgorithm and the BIT STRING signature of `tbs` (a whole DER element), signed in the
 * token by `k` with ECDSA and the curve's hash: what follows the to-be-signed part in CRLs and OCSP. */
CT_MUST_CHECK ct_err pki_sign_tbs(hsm_key *k, const uint8_t *tbs, size_t tbs_len, ct_buf *out);
/* Sets cert->subject CN (UTF8), serialNumber (PrintableString, checked) and O from C strings (NULL: absent). */
CT_MUST_CHECK ct_err pki_cert_name_set(CertName *name, const char *cn, const char *serial, const char *org);

#endif
