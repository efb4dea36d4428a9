/* pki: X.509, CSR and PKCS#7 helpers on top of wolfSSL, shared by the CA, the station and the agent.
 * Private keys are always token keys (hsm_key); this module never sees key bytes. */
#ifndef CAMTRUST_PKI_H
#define CAMTRUST_PKI_H

#include <time.h>

#include "../../hsm/hsm.h"
#include "../core/core.h"
#include "../core/merkle.h"

#define PKI_MAX_CSR_DER 8192
#define PKI_MAX_CERT_DER 8192
#define PKI_NAME_MAX 64
#define PKI_CHALLENGE_MAX 64 /* a challengePassword with its NUL: wolfSSL's Cert.challengePw */
#define PKI_SERIAL_BYTES 16 /* 127 random bits: positive, at least 64 bits as RFC 5280 / CA/B ask */
#define PKI_MAX_SERIAL_BYTES 20 /* RFC 5280's limit, for certificates made elsewhere (openssl uses 20) */
/* notAfter "no well-defined expiration" (RFC 5280 4.1.2.5), the IEEE 802.1AR IDevID default. */
#define PKI_NOT_AFTER_FOREVER ((time_t)253402300799)

/* ---- certificate requests (outside input: bounded, signature verified) ---- */
typedef struct pki_csr pki_csr;

/* Parses DER PKCS#10 and checks proof of possession (its own signature). Errors: CT_ERR_BAD_CSR
 * (malformed), CT_ERR_CSR_SIGNATURE, CT_ERR_WEAK_KEY (anything but EC P-256/P-384). */
CT_MUST_CHECK ct_err pki_csr_parse(const uint8_t *der, size_t len, pki_csr **out);
/* The same with the proof of possession verified inside `token` (PKCS#11 CKM_ECDSA, the request's key as a session
 * object) rather than by wolfSSL; NULL: as pki_csr_parse. The CA's hot path: its token verifies ~5x faster. */
CT_MUST_CHECK ct_err pki_csr_parse_in(const uint8_t *der, size_t len, hsm *token, pki_csr **out);
void pki_csr_free(pki_csr *csr);
/* Subject serialNumber (2.5.4.5), "" if absent; subject CN, "" if absent. */
const char *pki_csr_subject_serial(const pki_csr *csr);
const char *pki_csr_subject_cn(const pki_csr *csr);
hsm_key_type pki_csr_key_type(const pki_csr *csr);
/* DER SubjectPublicKeyInfo, and its SHA-256 (used to recognise "the same key"). */
const uint8_t *pki_csr_spki(const pki_csr *csr, size_t *len);
void pki_csr_spki_sha256(const pki_csr *csr, uint8_t out[32]);

/* What a request asks for beyond its subject and key: the extensions of its extensionRequest attribute (PKCS#9),
 * read with the checked DER walk (outside input). The issuer decides what it grants; a profile refuses a request
 * that asks for more than it gives, rather than silently granting less. */
typedef struct {
    bool basic_constraints; /* present */
    bool ca;
    int path_len;           /* -1: none given */
    bool key_usage;         /* present */
    uint16_t key_usage_bits; /* PKI_KU_* (wolfSSL's KEYUSE_* values) */
    size_t other_extensions; /* any other extension */
    size_t other_attributes; /* any attribute but extensionRequest (challengePassword included) */
    char challenge[PKI_CHALLENGE_MAX]; /* PKCS#9 challengePassword (PrintableString or UTF8String), "" if absent */
} pki_csr_asks;
CT_MUST_CHECK ct_err pki_csr_asks_get(const uint8_t *der, size_t len, pki_csr_asks *out);

/* Makes a DER PKCS#10 for a token key with subject CN (and serialNumber if non-NULL). */
CT_MUST_CHECK ct_err pki_csr_make(hsm_key *key, const char *cn, const char *serial_number, ct_buf *der);
/* The same with a PKCS#9 challengePassword (PrintableString; NULL: none): signed with the request, it binds the
 * proof of possession to whoever chose the challenge (the factory station's nonce). */
CT_MUST_CHECK ct_err pki_csr_make_challenged(hsm_key *key, const char *cn, const char *serial_number,
                                             const char *challenge, ct_buf *der);

/* ---- certificates ---- */
typedef enum {
    PKI_PROFILE_ROOT_CA,     /* self-signed, CA, keyCertSign+cRLSign, no pathLen limit */
    PKI_PROFILE_ISSUING_CA,  /* CA, pathLen 0, keyCertSign+cRLSign */
    PKI_PROFILE_DEVICE_ID,   /* IEEE 802.1AR IDevID: digitalSignature (critical), EKU serverAuth+clientAuth, SAN DNS */
    PKI_PROFILE_CLIENT,      /* stations (and later officers, viewers): digitalSignature, EKU clientAuth */
    PKI_PROFILE_TLS_SERVER,  /* the CA's own HTTPS: digitalSignature, EKU serverAuth, SAN DNS/IP */
    PKI_PROFILE_MEDIA_SIGNING, /* a camera's recording-signing key: digitalSignature (critical) only, no EKU */
    PKI_PROFILE_OCSP_SIGNER, /* delegated OCSP responder: digitalSignature (critical), EKU OCSPSigning, ocsp-nocheck */
    PKI_PROFILE_LOG_SIGNER,  /* the issuance log key (signed tree heads): digitalSignature (critical) only, no EKU */
    PKI_PROFILE_VIEWER,      /* an authorised viewer of encrypted video: keyAgreement (critical) only, no EKU: its
                              * key only unwraps content keys (ECDH), so it can neither sign nor log in (TLS) */
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
    const char *crl_url;         /* cRLDistributionPoints fullName URI, or NULL/"" for none */
    const char *ocsp_url;        /* authorityInfoAccess id-ad-ocsp URI, or NULL/"" for none */
} pki_cert_template;

typedef struct {
    uint8_t serial[PKI_SERIAL_BYTES];
    char serial_hex[PKI_SERIAL_BYTES * 2 + 1];
    time_t not_before, not_after; /* as written */
} pki_issued_info;

/* An Ed25519 public key (32 bytes) as a DER SubjectPublicKeyInfo (RFC 8410), which pki_cert_issue certifies like an
 * EC key (the issuer still signs with its ECDSA token key): the log's checkpoint key. */
#define PKI_ED25519_PUB_LEN 32
#define PKI_ED25519_SPKI_LEN 44
CT_MUST_CHECK ct_err pki_ed25519_spki(const uint8_t pub[PKI_ED25519_PUB_LEN], uint8_t out[PKI_ED25519_SPKI_LEN]);
/* Issues a certificate for `subject_spki` (EC P-256/P-384 or Ed25519), signed inside the token by `issuer_key`.
 * `issuer_cert_der` is NULL for a self-signed root (then `subject_spki` must be the issuer key's own). Random
 * positive serial, AKI/SKI. */
CT_MUST_CHECK ct_err pki_cert_issue(const pki_cert_template *t, const uint8_t *subject_spki, size_t spki_len,
                                    const uint8_t *issuer_cert_der, size_t issuer_len, hsm_key *issuer_key,
                                    ct_buf *out_der, pki_issued_info *info);

/* An issuing CA made ready once for many certificates: its certificate parsed, checked to be a CA's and to
 * certify `key` (borrowed: it must outlive the issuer), and what every certificate it signs copies from it (its
 * name, its key id) prepared. Then pki_cert_issue_by issues like pki_cert_issue, without reading the issuer's
 * certificate again. Read only once made: threads may issue with one issuer at once. */
typedef struct pki_issuer pki_issuer;
CT_MUST_CHECK ct_err pki_issuer_open(const uint8_t *cert_der, size_t len, hsm_key *key, pki_issuer **out);
void pki_issuer_free(pki_issuer *iss);
CT_MUST_CHECK ct_err pki_cert_issue_by(const pki_issuer *iss, const pki_cert_template *t, const uint8_t *subject_spki,
                                       size_t spki_len, ct_buf *out_der, pki_issued_info *info);

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
    uint16_t key_usage; /* keyUsage bits (PKI_KU_*), 0 when the extension is absent */
    int path_len;       /* basicConstraints pathLenConstraint, -1 when absent */
} pki_cert_info;
#define PKI_KU_DIGITAL_SIGNATURE 0x0080 /* wolfSSL's KEYUSE_* values */
#define PKI_KU_KEY_AGREEMENT 0x0008
#define PKI_KU_KEY_CERT_SIGN 0x0004
#define PKI_KU_CRL_SIGN 0x0002
CT_MUST_CHECK ct_err pki_cert_parse_info(const uint8_t *der, size_t len, pki_cert_info *info);
/* The certificate's DER SubjectPublicKeyInfo (points into `der`). */
CT_MUST_CHECK ct_err pki_cert_spki(const uint8_t *der, size_t len, const uint8_t **spki, size_t *spki_len);

/* A certificate decoded for people to read (the officer console): names as wolfSSL prints them
 * ("/O=.../CN=..."), key usage and extended key usage names, subjectAltName entries. */
#define PKI_DESCRIBE_TEXT 512
typedef struct {
    pki_cert_info info;
    char subject[PKI_DESCRIBE_TEXT];
    char issuer[PKI_DESCRIBE_TEXT];
    char key_usage[160];     /* "digitalSignature, keyCertSign", "" when absent */
    char ext_key_usage[160]; /* "serverAuth, clientAuth", "" when absent */
    char san[PKI_DESCRIBE_TEXT]; /* "DNS:a.example, IP:10.0.0.1", "" when absent */
    char key_type[16];       /* "EC P-256", "EC P-384", "Ed25519" */
} pki_cert_detail;
CT_MUST_CHECK ct_err pki_cert_describe(const uint8_t *der, size_t len, pki_cert_detail *out);

/* Verifies that `cert` is signed by `issuer` (signature and issuer/subject names) and is valid at `at`. */
CT_MUST_CHECK ct_err pki_cert_verify_signed_by(const uint8_t *cert, size_t cert_len, const uint8_t *issuer,
                                               size_t issuer_len, time_t at);

/* ---- revocation: CRLs (RFC 5280) and OCSP (RFC 6960), signed inside the token ---- */

/* CRLReason codes camtrust revokes with. certificateHold (6) and removeFromCRL (8) are not offered:
 * a revocation is final. */
#define PKI_REASON_UNSPECIFIED 0
#define PKI_REASON_KEY_COMPROMISE 1
#define PKI_REASON_CA_COMPROMISE 2
#define PKI_REASON_SUPERSEDED 4
#define PKI_REASON_NAMES "unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, " \
                         "cessationOfOperation, privilegeWithdrawn"
/* The code of an RFC 5280 reason name (case-sensitive, as the RFC spells it); CT_ERR_USAGE naming the choices. */
CT_MUST_CHECK ct_err pki_reason_parse(const char *name, int *code);
/* The RFC 5280 name of a code, "?" for one camtrust does not use. */
const char *pki_reason_name(int code);

/* What identifies a CA certificate in OCSP CertIDs (hashes of its subject Name and of its public key's
 * BIT STRING value) and in AuthorityKeyIdentifiers (its own subjectKeyIdentifier). */
typedef struct {
    uint8_t name_sha1[20], key_sha1[20];
    uint8_t name_sha256[32], key_sha256[32];
    uint8_t key_id[32];
    size_t key_id_len;
} pki_cert_ids;
CT_MUST_CHECK ct_err pki_cert_ids_get(const uint8_t *cert, size_t len, pki_cert_ids *out);

typedef struct {
    const char *serial_hex; /* lower-case, as recorded */
    time_t revoked_at;
    int reason;             /* PKI_REASON_*: unspecified (0) is written as no reasonCode (RFC 5280 5.3.1) */
} pki_revoked;

typedef struct {
    const uint8_t *issuer_cert; /* the CA that issued the revoked certificates, and signs the CRL */
    size_t issuer_len;
    hsm_key *issuer_key;
    uint64_t number;            /* cRLNumber: grows with every CRL */
    time_t this_update, next_update;
} pki_crl_params;

/* A v2 CRL with cRLNumber and authorityKeyIdentifier, one entry per revoked certificate, signed inside the
 * token (ecdsa-with-SHA256, or SHA384 for a P-384 issuer). Allocates out_der (ct_buf_free). */
CT_MUST_CHECK ct_err pki_crl_make(const pki_crl_params *p, const pki_revoked *list, size_t n, ct_buf *out_der);

/* What a CRL (DER, outside input) says of `cert`, once it is known to be its issuer's CRL: it names the
 * certificate's issuer and its ecdsa-with-SHA256 signature verifies with the key of `issuer` (a certificate the
 * caller already trusts). CT_ERR_NOT_FOUND if it is another CA's CRL, CT_ERR_INTEGRITY if the signature does not
 * verify, CT_ERR_BAD_DER if malformed. A CRL past its nextUpdate is read all the same (its revocations stay
 * true); how fresh it must be is the caller's judgement. */
typedef struct {
    time_t this_update, next_update; /* next_update 0 when the CRL has none */
    bool revoked;
    time_t revoked_at;
} pki_crl_status;
CT_MUST_CHECK ct_err pki_crl_check(const uint8_t *crl_der, size_t crl_len, const uint8_t *issuer, size_t issuer_len,
                                   const uint8_t *cert, size_t cert_len, pki_crl_status *out);

/* The reasonCode of `cert`'s entry in its issuer's CRL (checked as pki_crl_read does): PKI_REASON_* (unspecified
 * when the entry has none), -1 when the CRL does not list it. The camera's agent does not need it. */
CT_MUST_CHECK ct_err pki_crl_reason(const uint8_t *crl_der, size_t crl_len, const uint8_t *issuer, size_t issuer_len,
                                    const uint8_t *cert, size_t cert_len, int *reason);

/* A CRL read whole: pki_crl_read checks that `issuer` (a certificate the caller already trusts) signed it (its
 * issuer name is that certificate's subject, the signature verifies with its key) and that every entry is well
 * formed; CT_ERR_NOT_FOUND another CA's, CT_ERR_INTEGRITY a signature that does not verify, CT_ERR_BAD_DER. */
typedef struct {
    time_t this_update, next_update; /* next_update 0 when the CRL has none */
    uint64_t number;                 /* cRLNumber; 0 when it has none */
    const uint8_t *entries;          /* revokedCertificates' contents (into the DER read), entries_len bytes */
    size_t entries_len;
} pki_crl_info;
CT_MUST_CHECK ct_err pki_crl_read(const uint8_t *crl_der, size_t crl_len, const uint8_t *issuer, size_t issuer_len,
                                  pki_crl_info *out);
/* The index in `list` of the first certificate the CRL does not list, in *missing; n when it lists them all. */
CT_MUST_CHECK ct_err pki_crl_missing(const pki_crl_info *crl, const pki_revoked *list, size_t n, size_t *missing);
/* May the CRL `now` replace `was`, the one of `issuer` taken before (a certificate the caller trusts)? Yes when it is
 * the same CRL, when `was` is empty or not `issuer`'s (nothing it revokes can be trusted to keep), or when `now` has
 * a higher cRLNumber and still lists every certificate `was` lists. Else CT_ERR_INTEGRITY saying which: an older
 * CRL, or one made from a record cut short (an entry gone), would bring back what `was` revokes. `now` unreadable
 * as `issuer`'s: pki_crl_read's error. The camera's agent does not need it. */
CT_MUST_CHECK ct_err pki_crl_supersedes(const uint8_t *now, size_t now_len, const uint8_t *was, size_t was_len,
                                        const uint8_t *issuer, size_t issuer_len);

/* OCSP requests are outside input: bounded, parsed with the same checked DER walker. */
#define PKI_OCSP_MAX_REQUEST 4096 /* bytes of DER */
#define PKI_OCSP_MAX_CERTS 8      /* CertIDs in one request */
#define PKI_OCSP_MAX_NONCE 32     /* RFC 8954 */

typedef enum { PKI_OCSP_SHA1, PKI_OCSP_SHA256 } pki_ocsp_hash;

typedef struct {
    pki_ocsp_hash hash;
    const uint8_t *der;     /* the CertID as sent (points into the request): the response repeats it */
    size_t der_len;
    const uint8_t *name_hash, *key_hash; /* digest-sized */
    char serial_hex[PKI_MAX_SERIAL_BYTES * 2 + 1]; /* lower-case, without the sign byte; "" if negative */
} pki_ocsp_cert_id;

typedef struct {
    size_t n;
    pki_ocsp_cert_id ids[PKI_OCSP_MAX_CERTS];
    const uint8_t *nonce;   /* the nonce extension's value (inside its OCTET STRING), or NULL */
    size_t nonce_len;
} pki_ocsp_request;

/* Parses a DER OCSPRequest. CT_ERR_BAD_DER (with a detail) for anything malformed, over a bound or not
 * understood (an unsupported hash algorithm, a critical extension other than the nonce). The request's
 * optional signature is not checked: answers are public. Pointers in `out` point into `der`. */
CT_MUST_CHECK ct_err pki_ocsp_request_parse(const uint8_t *der, size_t len, pki_ocsp_request *out);
/* An OCSPRequest (DER) for one certificate of `issuer` by its serial (big-endian magnitude), SHA-1 CertID as
 * openssl sends it, with a nonce extension if `nonce` is non-NULL (1..PKI_OCSP_MAX_NONCE bytes): what an OCSP
 * client of camtrust sends. Allocates out. */
CT_MUST_CHECK ct_err pki_ocsp_request_make(const pki_cert_ids *issuer, const uint8_t *serial, size_t serial_len,
                                           const uint8_t *nonce, size_t nonce_len, ct_buf *out);
/* Whether a CertID names the CA `issuer`. */
bool pki_ocsp_cert_id_is_for(const pki_ocsp_cert_id *id, const pki_cert_ids *issuer);

typedef enum { PKI_OCSP_GOOD, PKI_OCSP_REVOKED, PKI_OCSP_UNKNOWN } pki_ocsp_status;

typedef struct {
    const uint8_t *cert_id; /* DER CertID */
    size_t cert_id_len;
    pki_ocsp_status status;
    time_t revoked_at;
    int reason;             /* PKI_REASON_*; unspecified is left out */
} pki_ocsp_single;

typedef struct {
    hsm_key *key;                      /* the responder's token key */
    const pki_cert_ids *ids;           /* the responder certificate's (ResponderID byKey) */
    const uint8_t *const *certs;       /* sent in BasicOCSPResponse.certs: responder certificate and its issuer */
    const size_t *cert_lens;
    size_t n_certs;
    time_t produced_at, this_update, next_update;
} pki_ocsp_responder;

/* Signs a BasicOCSPResponse's tbsResponseData inside the token. `signed_part` receives tbsResponseData,
 * signatureAlgorithm and signature: all of a BasicOCSPResponse but its certificates, so that it can be kept
 * and sent many times (pki_ocsp_response). With a nonce (NULL: none) the nonce extension is echoed.
 * Allocates signed_part. */
CT_MUST_CHECK ct_err pki_ocsp_sign(const pki_ocsp_responder *r, const pki_ocsp_single *s, size_t n,
                                   const uint8_t *nonce, size_t nonce_len, ct_buf *signed_part);
/* A successful OCSPResponse around a signed part and the responder's certificates. Allocates out. */
CT_MUST_CHECK ct_err pki_ocsp_response(const pki_ocsp_responder *r, const uint8_t *signed_part, size_t len,
                                       ct_buf *out);
/* An OCSPResponse that is only a status: malformedRequest 1, internalError 2, tryLater 3, unauthorized 6. */
#define PKI_OCSP_MALFORMED 1
#define PKI_OCSP_INTERNAL_ERROR 2
#define PKI_OCSP_TRY_LATER 3
#define PKI_OCSP_UNAUTHORIZED 6
CT_MUST_CHECK ct_err pki_ocsp_response_status(int status, ct_buf *out);

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

/* ---- the issuance log: signed tree heads and a certificate's inclusion proof (see common/core/merkle.h) ---- */
/* Verifies an ECDSA signature (DER) over `digest` with the public key of a certificate: CT_ERR_INTEGRITY if not. */
CT_MUST_CHECK ct_err pki_cert_verify_digest(const uint8_t *cert, size_t cert_len, const uint8_t *digest,
                                            size_t digest_len, const uint8_t *sig, size_t sig_len);
/* Signs a tree head (its 51-byte TreeHeadDataV2 layout, SHA-256) inside the token with the P-256 log key. */
CT_MUST_CHECK ct_err pki_tree_head_sign(hsm_key *log_key, ct_tree_head *h);
/* CT_ERR_INTEGRITY unless the tree head's signature verifies with the log certificate's key. */
CT_MUST_CHECK ct_err pki_tree_head_verify(const uint8_t *log_cert, size_t log_cert_len, const ct_tree_head *h);

/* A certificate's inclusion proof, kept by its device and checked offline (PEM label PKI_LOG_PROOF_PEM):
 *   LogInclusionProof ::= SEQUENCE {
 *     version     INTEGER (1),
 *     certificate OCTET STRING,             -- the leaf: the certificate's DER, exactly as logged
 *     leafIndex   INTEGER,                  -- 0-based position in the log
 *     treeHead    SEQUENCE { treeSize INTEGER, timestamp INTEGER (ms since the epoch),
 *                            rootHash OCTET STRING (32), signature OCTET STRING (DER ECDSA-Sig-Value) },
 *     auditPath   SEQUENCE OF OCTET STRING (32) }   -- RFC 9162 PATH(leafIndex, D[treeSize]) */
#define PKI_LOG_PROOF_PEM "CAMTRUST LOG PROOF"
#define PKI_LOG_PROOF_MAX (PKI_MAX_CERT_DER + 4096)
typedef struct {
    const uint8_t *cert; /* points into the parsed DER (or the caller's certificate when encoding) */
    size_t cert_len;
    uint64_t leaf_index;
    ct_tree_head head;
    ct_merkle_hash path[CT_MERKLE_MAX_PATH];
    size_t path_len;
} pki_log_proof;
/* Allocates der. */
CT_MUST_CHECK ct_err pki_log_proof_encode(const pki_log_proof *p, ct_buf *der);
CT_MUST_CHECK ct_err pki_log_proof_parse(const uint8_t *der, size_t len, pki_log_proof *p);
/* Parses, checks that the audit path leads from the certificate's leaf hash to the tree head's root, and that
 * the log key signed the tree head. CT_ERR_INTEGRITY (with the reason) when it does not hold. */
CT_MUST_CHECK ct_err pki_log_proof_verify(const uint8_t *der, size_t len, const uint8_t *log_cert, size_t log_cert_len,
                                          pki_log_proof *p);

#endif
