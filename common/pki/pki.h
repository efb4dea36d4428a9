/* pki: X.509, CSR and PKCS#7 helpers on top of wolfSSL, shared by the CA, the station and the agent.
 * Private keys are always token keys (hsm_key); this module never sees key bytes. */
#ifndef CAMTRUST_PKI_H
#define CAMTRUST_PKI_H

#include <time.h>

#include "../../hsm/hsm.h"
#include "../core/core.h"

#define PKI_MAX_CSR_DER 8192
#define PKI_MAX_CERT_DER 8192
#define PKI_NAME_MAX 64
#define PKI_SERIAL_BYTES 16 /* 127 random bits: positive, at least 64 bits as RFC 5280 / CA/B ask */
#define PKI_MAX_SERIAL_BYTES 20 /* RFC 5280's limit, for certificates made elsewhere (openssl uses 20) */
/* notAfter "no well-defined expiration" (RFC 5280 4.1.2.5), the IEEE 802.1AR IDevID default. */
#define PKI_NOT_AFTER_FOREVER ((time_t)253402300799)

/* ---- certificate requests (outside input: bounded, signature verified) ---- */
typedef struct pki_csr pki_csr;

/* Parses DER PKCS#10 and checks proof of possession (its own signature). Errors: CT_ERR_BAD_CSR
 * (malformed), CT_ERR_CSR_SIGNATURE, CT_ERR_WEAK_KEY (anything but EC P-256/P-384). */
CT_MUST_CHECK ct_err pki_csr_parse(const uint8_t *der, size_t len, pki_csr **out);
void pki_csr_free(pki_csr *csr);
/* Subject serialNumber (2.5.4.5), "" if absent; subject CN, "" if absent. */
const char *pki_csr_subject_serial(const pki_csr *csr);
const char *pki_csr_subject_cn(const pki_csr *csr);
hsm_key_type pki_csr_key_type(const pki_csr *csr);
/* DER SubjectPublicKeyInfo, and its SHA-256 (used to recognise "the same key"). */
const uint8_t *pki_csr_spki(const pki_csr *csr, size_t *len);
void pki_csr_spki_sha256(const pki_csr *csr, uint8_t out[32]);

/* Makes a DER PKCS#10 for a token key with subject CN (and serialNumber if non-NULL). */
CT_MUST_CHECK ct_err pki_csr_make(hsm_key *key, const char *cn, const char *serial_number, ct_buf *der);

/* ---- certificates ---- */
typedef enum {
    PKI_PROFILE_ROOT_CA,     /* self-signed, CA, keyCertSign+cRLSign, no pathLen limit */
    PKI_PROFILE_ISSUING_CA,  /* CA, pathLen 0, keyCertSign+cRLSign */
    PKI_PROFILE_DEVICE_ID,   /* IEEE 802.1AR IDevID: digitalSignature (critical), EKU serverAuth+clientAuth, SAN DNS */
    PKI_PROFILE_CLIENT,      /* stations (and later officers, viewers): digitalSignature, EKU clientAuth */
    PKI_PROFILE_TLS_SERVER,  /* the CA's own HTTPS: digitalSignature, EKU serverAuth, SAN DNS/IP */
    PKI_PROFILE_MEDIA_SIGNING, /* a camera's recording-signing key: digitalSignature (critical) only, no EKU */
} pki_profile;

typedef struct {
    pki_profile profile;
    const char *cn;
    const char *serial_number;   /* subject serialNumber, or NULL */
    const char *organization;    /* subject O, or NULL */
    const char *dns_names[4];    /* SAN dNSName entries, NULL-terminated */
    const char *ip_addrs[2];     /* SAN iPAddress entries (dotted IPv4), NULL-terminated */
    time_t not_before;           /* 0: now minus 5 minutes (clock skew) */
    time_t not_after;            /* UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280) */
} pki_cert_template;

typedef struct {
    uint8_t serial[PKI_SERIAL_BYTES];
    char serial_hex[PKI_SERIAL_BYTES * 2 + 1];
} pki_issued_info;

/* Issues a certificate for `subject_spki`, signed inside the token by `issuer_key`. `issuer_cert_der` is NULL
 * for a self-signed root (then `subject_spki` must be the issuer key's own). Random positive serial, AKI/SKI. */
CT_MUST_CHECK ct_err pki_cert_issue(const pki_cert_template *t, const uint8_t *subject_spki, size_t spki_len,
                                    const uint8_t *issuer_cert_der, size_t issuer_len, hsm_key *issuer_key,
                                    ct_buf *out_der, pki_issued_info *info);

/* Facts about a certificate, parsed with wolfSSL (outside input: bounded). */
typedef struct {
    char serial_hex[PKI_MAX_SERIAL_BYTES * 2 + 1]; /* lower-case, without the INTEGER's sign byte */
    char subject_cn[PKI_NAME_MAX];
    char subject_serial[PKI_NAME_MAX];
    char issuer_cn[PKI_NAME_MAX];
    time_t not_before;
    time_t not_after;
    bool is_ca;
    uint8_t spki_sha256[32];
    uint8_t cert_sha256[32];
} pki_cert_info;
CT_MUST_CHECK ct_err pki_cert_parse_info(const uint8_t *der, size_t len, pki_cert_info *info);

/* Verifies that `cert` is signed by `issuer` (signature and issuer/subject names) and is valid at `at`. */
CT_MUST_CHECK ct_err pki_cert_verify_signed_by(const uint8_t *cert, size_t cert_len, const uint8_t *issuer,
                                               size_t issuer_len, time_t at);

/* Bounds for certs-only PKCS#7 read from outside. */
#define PKI_MAX_PKCS7_CERTS 16
#define PKI_MAX_PKCS7_DER (PKI_MAX_PKCS7_CERTS * PKI_MAX_CERT_DER)
/* Degenerate "certs-only" CMS SignedData (RFC 5652 / RFC 7030 4.1.3): DER. */
CT_MUST_CHECK ct_err pki_pkcs7_certs_only(const uint8_t *const *certs, const size_t *lens, size_t n, ct_buf *out_der);
/* Reads the certificates out of a certs-only PKCS#7 (outside input): calls `cb` per certificate in order. */
typedef ct_err (*pki_cert_cb)(const uint8_t *der, size_t len, void *arg);
CT_MUST_CHECK ct_err pki_pkcs7_certs_parse(const uint8_t *der, size_t len, pki_cert_cb cb, void *arg);

/* The DER CsrAttrs (RFC 7030 4.5.2) that camtrust asks for: ecdsa-with-SHA256 and subject serialNumber. */
CT_MUST_CHECK ct_err pki_csrattrs(ct_buf *out_der);

#endif
