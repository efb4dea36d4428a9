/* vault: the offline root vault. Its own token holds the device root and the operations root; the token's PINs
 * exist only as k-of-n Shamir shares, one per custodian, each encrypted under that custodian's passphrase. Every
 * use of a root key (init, sign, crl) needs a quorum of shares and appends a signed entry to the ceremony record.
 * Nothing else can be done with the root keys. */
#ifndef CAMTRUST_VAULT_H
#define CAMTRUST_VAULT_H

#include <stdio.h>

#include "../../common/core/core.h"

#define VAULT_MAX_CUSTODIANS 16
#define VAULT_CONFIG_FILE "vault.conf"

/* Where a custodian's passphrase comes from: a file (first line), or the terminal (no echo) when `file` is NULL. */
typedef struct {
    const char *share;           /* the custodian-I.share file (vault_sign/vault_crl); unused by vault_init */
    const char *passphrase_file; /* NULL: asked on the terminal */
} vault_custodian;

typedef struct {
    const char *dir;
    unsigned custodians, quorum;
    const char *curve;               /* "P-256" (NULL) or "P-384" */
    const vault_custodian *who;      /* `custodians` entries: custodian I's passphrase source is who[I-1] */
} vault_init_args;

/* Makes the vault folder whole or not at all: token, both roots (root.pem, ops-root.pem), custodian-I.share for
 * I = 1..N, vault.state, the ceremony record's first two entries (one by each root). DIR may hold only its
 * vault.conf beforehand. */
CT_MUST_CHECK ct_err vault_init(const vault_init_args *a);

typedef enum { VAULT_PROFILE_DEVICE_ISSUING, VAULT_PROFILE_OPS_ISSUING } vault_profile;
CT_MUST_CHECK ct_err vault_profile_parse(const char *name, vault_profile *out);

typedef struct {
    const char *dir;
    const vault_custodian *shares;
    size_t nshares;
} vault_quorum;

typedef struct {
    char serial_hex[41];
    char subject_cn[64];
    char root[8]; /* "device" or "ops" */
} vault_signed;

/* Certifies an issuing CA from its CSR (PEM or DER): proof of possession, the profile's name, nothing asked beyond
 * CA, pathLen 0, keyCertSign and cRLSign. Writes the certificate (PEM) to `out`. */
CT_MUST_CHECK ct_err vault_sign(const vault_quorum *q, const char *csr_path, vault_profile profile, const char *out,
                                vault_signed *info);

typedef struct {
    const char *root;   /* "device" or "ops"; NULL: the root that signed `revoke`, else device */
    const char *revoke; /* serial (hex) of a certificate this vault signed, or NULL */
    const char *reason; /* RFC 5280 reason name, with `revoke` */
} vault_crl_args;

/* Writes the root's CRL (DER): every revocation in the record, and the new one. */
CT_MUST_CHECK ct_err vault_crl(const vault_quorum *q, const vault_crl_args *a, const char *out, uint64_t *number,
                               char root_out[8]);

/* The ceremony record: hash chain and every entry's signature by the root that acted, against root.pem and
 * ops-root.pem. CT_ERR_INTEGRITY with the broken entry named (ct_err_detail). */
typedef struct {
    size_t entries;
    char head[65]; /* hex SHA-256 of the last entry: compare with the last paper transcript */
} vault_record_report;
CT_MUST_CHECK ct_err vault_verify(const char *dir, vault_record_report *out);

/* Prints the verified record as text for the paper record that custodians sign. */
CT_MUST_CHECK ct_err vault_transcript(const char *dir, FILE *out);

#endif
