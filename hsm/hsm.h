/* hsm: the one PKCS#11 layer of camtrust. Only this module calls PKCS#11; everyone else holds an opaque
 * key handle and asks it to sign. Nothing here can return private key bytes.
 *
 * Works with any PKCS#11 module by path (SoftHSMv2 here; a network HSM or a camera's secure element is a
 * config change). Thread-safe: one logged-in token, a pool of sessions handed out one per operation. */
#ifndef CAMTRUST_HSM_H
#define CAMTRUST_HSM_H

#include "../common/core/core.h"

#define HSM_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define HSM_LABEL_MAX 64
#define HSM_ID_MAX 32

typedef struct hsm hsm;         /* a module loaded, a token found and logged in, a session pool */
typedef struct hsm_key hsm_key; /* a private key object in the token, with its public half */

typedef enum { HSM_EC_P256 = 1, HSM_EC_P384 = 2 } hsm_key_type;

typedef struct {
    const char *module_path; /* NULL: HSM_DEFAULT_MODULE */
    const char *token_label;
    const char *pin;         /* wiped by the caller after hsm_open returns */
    unsigned session_pool;   /* 0: default (4) */
} hsm_config;

/* Initialises a token in the first free slot with this label, sets the user PIN. For SoftHSM the
 * caller sets SOFTHSM2_CONF first. CT_ERR_EXISTS if a token with this label already exists. */
CT_MUST_CHECK ct_err hsm_token_create(const char *module_path, const char *token_label, const char *so_pin,
                                      const char *user_pin);

CT_MUST_CHECK ct_err hsm_open(const hsm_config *cfg, hsm **out);
void hsm_close(hsm *h);

/* Generates a signing key pair inside the token: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE
 * false, CKA_SIGN and nothing else (CKA_DERIVE, CKA_DECRYPT, CKA_UNWRAP false: SoftHSM grants every usage a
 * template does not deny), CKA_MODIFIABLE false so that no one widens it later. `label` and `id` must be unique
 * in the token (CT_ERR_EXISTS). */
CT_MUST_CHECK ct_err hsm_key_generate(hsm *h, hsm_key_type type, const char *label, const uint8_t *id, size_t id_len,
                                      hsm_key **out);
/* A key-agreement key: CKA_DERIVE (ECDH) only. With `pop`, its one signature (the proof of possession of its
 * CSR) is made by pop(key, pop_arg) right after generation, then CKA_SIGN is switched off and read back false
 * (the key stays CKA_MODIFIABLE, which that needs); if any of it fails the key is destroyed. Without `pop` it
 * never signs and is not modifiable. */
typedef ct_err (*hsm_pop_fn)(hsm_key *k, void *arg);
CT_MUST_CHECK ct_err hsm_key_generate_ecdh(hsm *h, hsm_key_type type, const char *label, const uint8_t *id,
                                           size_t id_len, hsm_pop_fn pop, void *pop_arg, hsm_key **out);

/* Finds a key by a PKCS#11 URI (RFC 7512: "pkcs11:object=LABEL;id=%01%02", token= must match if given)
 * or by a bare label. CT_ERR_HSM_NO_KEY if absent. */
CT_MUST_CHECK ct_err hsm_key_find(hsm *h, const char *uri_or_label, hsm_key **out);

/* The RFC 7512 URI of a key: "pkcs11:token=T;object=L;id=%..;type=private". */
CT_MUST_CHECK ct_err hsm_key_uri(const hsm_key *k, char *out, size_t out_max);

/* Whether the token made the key itself and never let its value out (CKA_LOCAL, CKA_NEVER_EXTRACTABLE,
 * CKA_ALWAYS_SENSITIVE true, CKA_EXTRACTABLE false): not a key imported by someone who may hold a copy. */
CT_MUST_CHECK ct_err hsm_key_made_inside(const hsm_key *k, bool *inside);
hsm_key_type hsm_key_get_type(const hsm_key *k);
const char *hsm_key_label(const hsm_key *k);

/* DER SubjectPublicKeyInfo of the key's public half. */
CT_MUST_CHECK ct_err hsm_key_public_der(const hsm_key *k, ct_buf *spki);

/* ECDSA over a digest inside the token (CKM_ECDSA); the signature is DER (ECDSA-Sig-Value). */
CT_MUST_CHECK ct_err hsm_key_sign_digest(hsm_key *k, const uint8_t *digest, size_t digest_len, uint8_t *sig,
                                         size_t *sig_len);

/* ECDSA verification inside the token (CKM_ECDSA) with a public key from outside it (`point`: 0x04 || X || Y on
 * `type`'s curve), e.g. a CSR's proof of possession. *valid tells the answer; a malformed signature is not valid;
 * the return value is for failures of the token itself. */
CT_MUST_CHECK ct_err hsm_verify_digest(hsm *h, hsm_key_type type, const uint8_t *point, size_t point_len,
                                       const uint8_t *digest, size_t digest_len, const uint8_t *sig_der,
                                       size_t sig_len, bool *valid);
/* The same with the public half of a key in the token (its cached object handle): e.g. a CA checking what the token
 * just signed. */
CT_MUST_CHECK ct_err hsm_key_verify_digest(hsm_key *k, const uint8_t *digest, size_t digest_len, const uint8_t *sig_der,
                                           size_t sig_len, bool *valid);

/* For wolfSSL: the crypto-callback device id under which this hsm serves ECDSA signatures (and ECDH) for
 * keys loaded with hsm_key_wolf_ecc, so that wolfSSL's certificate/CSR signing and TLS use token keys. */
int hsm_wolf_dev_id(const hsm *h);

/* Fills `ecc_key_out` (a wolfSSL `ecc_key *`, passed as void * to keep wolfSSL out of this header) with the
 * key's public point and the token key's id under hsm_wolf_dev_id. Free it with wc_ecc_free. */
CT_MUST_CHECK ct_err hsm_key_wolf_ecc(const hsm_key *k, void *ecc_key_out);

/* Destroys the private and public objects in the token (factory reset). Frees `k`. */
CT_MUST_CHECK ct_err hsm_key_destroy(hsm *h, hsm_key *k);
/* Frees k (before its hsm is closed); the token's objects stay. */
void hsm_key_free(hsm_key *k);

/* ---- a component's own token, from its config file ----
 * The CA, the station, the camera agent and the viewer each reach their token the same way: these rows in
 * their settings schema, then hsm_local_token_prepare (first run) and hsm_open_settings. */
#define HSM_PATH_MAX 1024
#define HSM_SETTING_ROWS(token_default, pin_env)                                                           \
    {"hsm.module", HSM_DEFAULT_MODULE, "PKCS#11 module of the token holding this component's keys"},       \
    {"hsm.token", token_default, "token label"},                                                          \
    {"hsm.pin_file", "secrets/user.pin", "user PIN file (relative to this folder); empty: $" pin_env},     \
    {"hsm.softhsm_conf", "softhsm2.conf",                                                                  \
     "SoftHSMv2 only: its config, exported as SOFTHSM2_CONF; empty for any other token"},                 \
    {"hsm.sessions", "4", "PKCS#11 sessions kept open"}

typedef struct {
    char module[HSM_PATH_MAX];
    char token[HSM_LABEL_MAX];
    char pin_file[HSM_PATH_MAX];     /* absolute, or "" for the environment variable */
    char softhsm_conf[HSM_PATH_MAX]; /* absolute, or "" */
    char pin_env[64];
    long sessions;
} hsm_settings;

/* Reads the HSM_SETTING_ROWS keys (paths relative to `dir`) and exports SOFTHSM2_CONF when configured. */
CT_MUST_CHECK ct_err hsm_settings_read(const ct_settings_schema *schema, const ct_config *cfg, const char *dir,
                                       const char *pin_env, hsm_settings *out);

/* First run of a component: with SoftHSM, writes its config (token store DIR/tokens, an absolute path) if absent;
 * then, unless the PIN file exists already (a configured, existing token), creates the token with fresh random
 * user and SO PINs written to 0600 files (the SO PIN beside the user PIN, as so.pin). */
CT_MUST_CHECK ct_err hsm_local_token_prepare(const hsm_settings *s, const char *dir);

/* A component folder built under another name (`dir`, a staging folder) and renamed to `final_dir` when whole:
 * points the SoftHSM config written for `dir` at the final token store (absolute). Call it when the token is no
 * longer used under `dir`, before the rename. A config that is not the one written for `dir` is left alone. */
CT_MUST_CHECK ct_err hsm_local_relocate(const hsm_settings *s, const char *dir, const char *final_dir);

/* Opens the configured token with the PIN from the PIN file, or from the environment variable. */
CT_MUST_CHECK ct_err hsm_open_settings(const hsm_settings *s, hsm **out);
/* The same with a PIN the caller holds (rebuilt from custodians' shares: never in a file). */
CT_MUST_CHECK ct_err hsm_open_settings_pin(const hsm_settings *s, const char *pin, hsm **out);

/* ---- Ed25519 keys (hsm_eddsa.c): the issuance log's checkpoint key (C2SP signed notes) ----
 * Generated inside the token (CKM_EC_EDWARDS_KEY_PAIR_GEN, curve Ed25519): token object, private, sensitive, not
 * extractable, CKA_SIGN only (CKA_DERIVE, CKA_DECRYPT, CKA_UNWRAP false), not modifiable. Signs with CKM_EDDSA
 * (pure Ed25519 over the message, RFC 8032). */
#define HSM_ED25519_PUB_LEN 32
#define HSM_ED25519_SIG_LEN 64
typedef struct hsm_eddsa_key hsm_eddsa_key;

/* `label` and `id` must be unique in the token (CT_ERR_EXISTS). */
CT_MUST_CHECK ct_err hsm_eddsa_generate(hsm *h, const char *label, const uint8_t *id, size_t id_len,
                                        hsm_eddsa_key **out);
/* By RFC 7512 URI or bare label; CT_ERR_HSM_NO_KEY if there is no such Ed25519 private key. */
CT_MUST_CHECK ct_err hsm_eddsa_find(hsm *h, const char *uri_or_label, hsm_eddsa_key **out);
/* The raw 32-byte public key (RFC 8032 encoding). */
const uint8_t *hsm_eddsa_public(const hsm_eddsa_key *k);
CT_MUST_CHECK ct_err hsm_eddsa_sign(hsm_eddsa_key *k, const uint8_t *msg, size_t len, uint8_t sig[HSM_ED25519_SIG_LEN]);
void hsm_eddsa_free(hsm_eddsa_key *k);

/* ---- HMAC keys (hsm_mac.c): a secret that never leaves the token, e.g. the audit chain's key ----
 * A generic secret key (CKK_GENERIC_SECRET, 256 bits) used with CKM_SHA256_HMAC. URIs say type=secret-key:
 * "pkcs11:object=audit-mac;type=secret-key". The handle is cached; each MAC borrows one pooled session. */
#define HSM_MAC_LEN 32
typedef struct hsm_mac_key hsm_mac_key;

/* CT_ERR_HSM_NO_KEY if absent. */
CT_MUST_CHECK ct_err hsm_mac_key_find(hsm *h, const char *uri_or_label, hsm_mac_key **out);
/* Generated inside the token: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true, CKA_EXTRACTABLE false, CKA_SIGN and
 * CKA_VERIFY only, CKA_MODIFIABLE false. `label` and `id` must be unique in the token (CT_ERR_EXISTS). */
CT_MUST_CHECK ct_err hsm_mac_key_generate(hsm *h, const char *label, const uint8_t *id, size_t id_len,
                                          hsm_mac_key **out);
/* HMAC-SHA256 of msg inside the token. Callers compare MACs with ct_equal_ct. */
CT_MUST_CHECK ct_err hsm_mac_sign(hsm_mac_key *k, const uint8_t *msg, size_t len, uint8_t mac[HSM_MAC_LEN]);
/* The same for n messages at once (a bulk check: every audit entry at start): macs[i] is msgs[i]'s. Split over up to
 * `threads` threads (at most the session pool's size and HSM_MAC_THREADS_MAX), each on one pooled session for its
 * whole share: a token with many cores MACs in parallel. (SoftHSM serialises the uses of one token object.)
 * On failure (the error as hsm_mac_sign's), *failed (if not NULL) is the first message whose MAC failed: the caller
 * names what that message is. */
#define HSM_MAC_THREADS_MAX 16
CT_MUST_CHECK ct_err hsm_mac_sign_many(hsm_mac_key *k, size_t n, const uint8_t *const *msgs, const size_t *lens,
                                       uint8_t (*macs)[HSM_MAC_LEN], unsigned threads, size_t *failed);
const char *hsm_mac_key_label(const hsm_mac_key *k);
void hsm_mac_key_free(hsm_mac_key *k);

#endif
