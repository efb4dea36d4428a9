/* vault internals: the custodians' shares (vault_share.c) and the ceremony record (vault_record.c). */
#ifndef CAMTRUST_VAULT_PRIV_H
#define CAMTRUST_VAULT_PRIV_H

#include "../../common/pki/pki.h"
#include "vault.h"

#define VAULT_STATE_FILE "vault.state"
#define VAULT_RECORD_FILE "ceremony.log"
#define VAULT_PATH_MAX 1024

/* ---- shares ----
 * The secret is the token's user PIN (32 random bytes) and SO PIN (32 more), split at once: the PINs given to the
 * token are their hex forms. */
#define VAULT_SECRET_LEN 64
#define VAULT_ID_LEN 32              /* SHA-256 of root.pem's certificate */
#define VAULT_KDF_ITERATIONS 600000  /* PBKDF2-HMAC-SHA256, OWASP's 2023 figure */
#define VAULT_KDF_MIN 100000         /* a share file asking fewer is refused (it would be a forged, weak one) */
#define VAULT_KDF_MAX 10000000       /* and more: bounded work for a file from outside */
#define VAULT_PASSPHRASE_MIN 8
#define VAULT_PASSPHRASE_MAX 256
#define VAULT_SHARE_PEM "CAMTRUST VAULT SHARE"

/* A share file: PEM of magic "CTVS", version 1, share number, K, N, vault ID, KDF iterations (big-endian), salt,
 * GCM nonce (these 72 bytes are the GCM additional data: a share cannot be moved to another vault or number), then
 * the encrypted share and the GCM tag. */
#define VAULT_SHARE_HDR 72
#define VAULT_SHARE_BYTES (VAULT_SHARE_HDR + VAULT_SECRET_LEN + 16)
typedef struct {
    uint8_t raw[VAULT_SHARE_BYTES];
    uint8_t number, quorum, custodians;
    uint8_t vault_id[VAULT_ID_LEN];
    uint32_t iterations;
} vault_share_file;

/* Splits `secret` into `n` shares (share I is shares[I-1], share number I) any `k` of which rebuild it. */
CT_MUST_CHECK ct_err vault_shamir_split(const uint8_t secret[VAULT_SECRET_LEN], unsigned n, unsigned k,
                                        uint8_t shares[][VAULT_SECRET_LEN]);
/* Rebuilds the secret from `count` shares with distinct numbers (at least the threshold: not checkable here). */
CT_MUST_CHECK ct_err vault_shamir_combine(const uint8_t *numbers, const uint8_t (*shares)[VAULT_SECRET_LEN],
                                          size_t count, uint8_t secret[VAULT_SECRET_LEN]);
/* Encrypts share `number` under the passphrase (PBKDF2 with a random salt, AES-256-GCM); PEM into `pem`. */
CT_MUST_CHECK ct_err vault_share_seal(const uint8_t id[VAULT_ID_LEN], unsigned number, unsigned k, unsigned n,
                                      uint32_t iterations, const char *passphrase,
                                      const uint8_t share[VAULT_SECRET_LEN], ct_buf *pem);
/* Reads a share file's header (outside input: bounded, nothing decrypted yet). */
CT_MUST_CHECK ct_err vault_share_parse(const uint8_t *pem, size_t len, vault_share_file *out);
/* Decrypts it: CT_ERR_INTEGRITY for a wrong passphrase or a changed byte. */
CT_MUST_CHECK ct_err vault_share_open(const vault_share_file *f, const char *passphrase,
                                      uint8_t share[VAULT_SECRET_LEN]);
/* The PIN verifier kept in vault.state: salt(16) || HMAC-SHA256(salt, secret). Checked before any login, so that a
 * wrong PIN never reaches the token (a real HSM locks after a few). */
#define VAULT_CHECK_LEN 48
CT_MUST_CHECK ct_err vault_pin_check_make(const uint8_t secret[VAULT_SECRET_LEN], uint8_t out[VAULT_CHECK_LEN]);
bool vault_pin_check_ok(const uint8_t secret[VAULT_SECRET_LEN], const uint8_t check[VAULT_CHECK_LEN]);

/* ---- the ceremony record: DIR/ceremony.log, one entry a line ----
 *   seq=N time=T action=A root=device|ops FIELDS... prev=HEX sig=HEX
 * prev is the SHA-256 of the previous line (zeros for the first), sig the root's ECDSA signature (DER, hex) over
 * the SHA-256 of the line up to " sig=". Values hold no spaces (vault_field_escape). */
#define VAULT_RECORD_MAX (4 * 1024 * 1024)
#define VAULT_ENTRY_MAX 4096
#define VAULT_TOKEN_FIELD_MAX (3 * 1024) /* a PKCS#11 module path or token label, escaped */
typedef struct {
    ct_buf text;     /* the whole file, verified */
    size_t entries;
    uint8_t head[32]; /* SHA-256 of the last line */
} vault_record;

typedef struct {
    const uint8_t *der;
    size_t len;
} vault_cert_ref;

/* Reads and verifies DIR's record against the two roots (CT_ERR_INTEGRITY naming the entry). */
CT_MUST_CHECK ct_err vault_record_read(const char *dir, vault_cert_ref device_root, vault_cert_ref ops_root,
                                       vault_record *r);
void vault_record_free(vault_record *r);
/* Appends an entry signed by `signer` (root "device" or "ops") and writes the file atomically. */
CT_MUST_CHECK ct_err vault_record_append(const char *dir, vault_record *r, hsm_key *signer, const char *root,
                                         const char *action, const char *fields);
/* Calls fn for each line (without its newline, NUL-terminated copy). */
typedef ct_err (*vault_entry_fn)(const char *line, void *arg);
CT_MUST_CHECK ct_err vault_record_each(const vault_record *r, vault_entry_fn fn, void *arg);
/* The value of `key` in an entry line ("" and false when absent). */
bool vault_entry_get(const char *line, const char *key, char *out, size_t max);
/* %XX for '%', spaces, controls and non-ASCII: a value that cannot split an entry. */
CT_MUST_CHECK ct_err vault_field_escape(const char *in, char *out, size_t max);

#endif
