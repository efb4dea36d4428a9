/* hsm internals shared by hsm.c (PKCS#11) and hsm_wolf.c (wolfSSL crypto callback). */
#ifndef CAMTRUST_HSM_PRIV_H
#define CAMTRUST_HSM_PRIV_H

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/pkcs11.h>

#include <pthread.h>
#include <stdatomic.h>

#include "hsm.h"

/* Constants missing from wolfSSL's bundled pkcs11.h (values from PKCS#11 v2.40). */
#ifndef CKR_GENERAL_ERROR
#define CKR_GENERAL_ERROR 0x00000005UL
#endif
#ifndef CKR_ATTRIBUTE_SENSITIVE
#define CKR_ATTRIBUTE_SENSITIVE 0x00000011UL
#endif
#ifndef CKR_ATTRIBUTE_TYPE_INVALID
#define CKR_ATTRIBUTE_TYPE_INVALID 0x00000012UL
#endif
#ifndef CKR_PIN_INCORRECT
#define CKR_PIN_INCORRECT 0x000000A0UL
#endif
#ifndef CKR_PIN_INVALID
#define CKR_PIN_INVALID 0x000000A1UL
#endif
#ifndef CKR_PIN_LEN_RANGE
#define CKR_PIN_LEN_RANGE 0x000000A2UL
#endif
#ifndef CKR_PIN_LOCKED
#define CKR_PIN_LOCKED 0x000000A4UL
#endif
#ifndef CKR_USER_ALREADY_LOGGED_IN
#define CKR_USER_ALREADY_LOGGED_IN 0x00000100UL
#endif
#ifndef CKR_USER_PIN_NOT_INITIALIZED
#define CKR_USER_PIN_NOT_INITIALIZED 0x00000102UL
#endif
#ifndef CKR_CRYPTOKI_ALREADY_INITIALIZED
#define CKR_CRYPTOKI_ALREADY_INITIALIZED 0x00000191UL
#endif
#ifndef CKR_SIGNATURE_LEN_RANGE
#define CKR_SIGNATURE_LEN_RANGE 0x000000C1UL
#endif
#ifndef CKF_USER_PIN_INITIALIZED
#define CKF_USER_PIN_INITIALIZED 0x00000008UL
#endif
#ifndef CKF_TOKEN_INITIALIZED
#define CKF_TOKEN_INITIALIZED 0x00000400UL
#endif

#define HSM_TOKEN_LABEL_LEN 32 /* CK_TOKEN_INFO.label: fixed, space-padded */
#define HSM_DEFAULT_POOL 4
#define HSM_MAX_POOL 64
#define HSM_EC_POINT_MAX (1 + 2 * 48) /* uncompressed P-384 point */
#define HSM_WOLF_MAX_KEYS 64

typedef struct hsm_module hsm_module;

/* What the wolfSSL callback needs to serve a key without touching the token's object search. */
typedef struct {
    uint8_t id[HSM_ID_MAX];
    size_t id_len;
    CK_OBJECT_HANDLE priv;
    hsm_key_type type;
    uint8_t point[HSM_EC_POINT_MAX];
    size_t point_len;
} hsm_wolf_entry;

struct hsm {
    hsm_module *mod;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    char token_label[HSM_TOKEN_LABEL_LEN + 1];

    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    CK_SESSION_HANDLE *sessions; /* all opened sessions */
    CK_SESSION_HANDLE *idle;     /* stack of sessions not borrowed */
    unsigned n_sessions, n_idle;

    int dev_id; /* 0 until registered with wolfSSL */
    pthread_mutex_t reg_lock;
    hsm_wolf_entry reg[HSM_WOLF_MAX_KEYS];
    size_t reg_n;
};

struct hsm_key {
    hsm *h;
    CK_OBJECT_HANDLE priv, pub;
    hsm_key_type type;
    char label[HSM_LABEL_MAX + 1];
    uint8_t id[HSM_ID_MAX];
    size_t id_len;
    uint8_t point[HSM_EC_POINT_MAX]; /* 0x04 || X || Y */
    size_t point_len;
    /* A session copy of the public key, made at the first hsm_key_verify_digest: SoftHSM re-reads a token object's
     * file for every use, a session object not (the re-check of every issued certificate, ~1.3x). */
    _Atomic CK_OBJECT_HANDLE pub_session;
};

/* How often a SoftHSM race (another process rewriting the token's files: CKR_GENERAL_ERROR) is waited out, and the
 * wait before try `attempt` (20 ms more each time). */
#define HSM_BUSY_TRIES 5
void hsm_busy_pause(int attempt);

/* Size of one coordinate (and of r, s) in bytes. */
size_t hsm_coord_size(hsm_key_type t);
int hsm_wolf_curve_id(hsm_key_type t);

/* ECDSA with the token object on a pooled session; DER signature out (*sig_len: in capacity, out length). */
CT_MUST_CHECK ct_err hsm_sign_der(hsm *h, CK_OBJECT_HANDLE priv, hsm_key_type type, const uint8_t *digest,
                                  size_t digest_len, uint8_t *sig, size_t *sig_len);
/* ECDH inside the token: the raw shared X coordinate (*out_len: in capacity, out length). */
CT_MUST_CHECK ct_err hsm_ecdh_raw(hsm *h, CK_OBJECT_HANDLE priv, hsm_key_type type, const uint8_t *peer_point,
                                  size_t peer_len, uint8_t *out, size_t *out_len);

/* hsm_wolf.c: device registration per hsm and the id -> object registry. */
CT_MUST_CHECK ct_err hsm_wolf_attach(hsm *h);
void hsm_wolf_detach(hsm *h);
CT_MUST_CHECK ct_err hsm_wolf_remember(hsm *h, const hsm_key *k);
void hsm_wolf_forget(hsm *h, const hsm_key *k);

/* hsm.c, for the other key kinds (hsm_mac.c, hsm_eddsa.c): the session pool (one thread at a time on a session);
 * object search; key search by class, type, label and/or id; a new key's label and id checked (bounds, unique)
 * and, once generated, found as the one token object so named; a private key named by URI or label; a secret
 * key's URI ("pkcs11:object=L;type=secret-key", or a bare label) as label and id (id_len 0: none given). */
CK_SESSION_HANDLE hsm_session_get(hsm *h);
void hsm_session_put(hsm *h, CK_SESSION_HANDLE s);
CT_MUST_CHECK ct_err hsm_objects_find(hsm *h, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                                      CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *count);
CT_MUST_CHECK ct_err hsm_keys_find(hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, const char *label,
                                   const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE found[2], CK_ULONG *count);
CT_MUST_CHECK ct_err hsm_new_object_check(hsm *h, CK_SESSION_HANDLE s, const char *label, const uint8_t *id,
                                          size_t id_len);
CT_MUST_CHECK ct_err hsm_generated_check(hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt,
                                         CK_OBJECT_HANDLE obj, const char *label, const uint8_t *id, size_t id_len);
CT_MUST_CHECK ct_err hsm_private_find_named(hsm *h, CK_SESSION_HANDLE s, CK_KEY_TYPE kt, const char *uri_or_label,
                                            CK_OBJECT_HANDLE *out);
CT_MUST_CHECK ct_err hsm_uri_secret(const hsm *h, const char *uri_or_label, char label[HSM_LABEL_MAX + 1],
                                    uint8_t id[HSM_ID_MAX], size_t *id_len);

#endif
