/* hsm_mac: HMAC-SHA256 with a generic secret key that never leaves the token (the audit chain's key).
 * The object handle is looked up once and kept; each MAC borrows a pooled session for one C_SignInit + C_Sign,
 * so any number of threads may MAC at once without sharing a session. */
#define _POSIX_C_SOURCE 200809L
#include "hsm_priv.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HSM_MAC_KEY_BYTES 32

struct hsm_mac_key {
    hsm *h;
    CK_OBJECT_HANDLE obj;
    char label[HSM_LABEL_MAX + 1];
};

/* The generic secret keys with this label (and id, when given). */
static ct_err secret_find(hsm *h, CK_SESSION_HANDLE s, const char *label, const uint8_t *id, size_t id_len,
                          CK_OBJECT_HANDLE found[2], CK_ULONG *count)
{
    return hsm_keys_find(h, s, CKO_SECRET_KEY, CKK_GENERIC_SECRET, label[0] ? label : NULL, id, id_len, found, count);
}

static ct_err mac_key_new(hsm *h, CK_OBJECT_HANDLE obj, const char *label, hsm_mac_key **out)
{
    hsm_mac_key *k = calloc(1, sizeof *k);
    if (!k) return CT_ERR_NOMEM;
    k->h = h;
    k->obj = obj;
    ct_err rc = ct_strlcpy(k->label, sizeof k->label, label);
    if (rc != CT_OK) {
        free(k);
        return rc;
    }
    *out = k;
    return CT_OK;
}

ct_err hsm_mac_key_find(hsm *h, const char *uri_or_label, hsm_mac_key **out)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    char label[HSM_LABEL_MAX + 1];
    uint8_t id[HSM_ID_MAX];
    size_t id_len = 0;
    CT_ENSURE(h && uri_or_label && out, CT_ERR_ARG);
    *out = NULL;
    CT_GUARD(hsm_uri_secret(h, uri_or_label, label, id, &id_len));
    s = hsm_session_get(h);
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    CT_GUARD(secret_find(h, s, label, id, id_len, found, &count));
    CT_ENSURE_MSG(count > 0, CT_ERR_HSM_NO_KEY, "no secret key '%s' in token '%s'", label, h->token_label);
    CT_ENSURE_MSG(count == 1, CT_ERR_HSM, "secret key '%s' is ambiguous in token '%s'", label, h->token_label);
    CT_GUARD(mac_key_new(h, found[0], label, out));
cleanup:
    if (s != CK_INVALID_HANDLE) hsm_session_put(h, s);
    return rc;
}

ct_err hsm_mac_key_generate(hsm *h, const char *label, const uint8_t *id, size_t id_len, hsm_mac_key **out)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CT_ENSURE(h && label && id && out, CT_ERR_ARG);
    *out = NULL;
    size_t label_len = strlen(label);
    s = hsm_session_get(h);
    CT_GUARD(hsm_new_object_check(h, s, label, id, id_len));

    /* Sign and verify (HMAC) only; SoftHSM grants every usage a template does not deny. */
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ULONG value_len = HSM_MAC_KEY_BYTES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},         {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_VALUE_LEN, &value_len, sizeof value_len},
        {CKA_TOKEN, &yes, sizeof yes},         {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},     {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &yes, sizeof yes},          {CKA_VERIFY, &yes, sizeof yes},
        {CKA_ENCRYPT, &no, sizeof no},         {CKA_DECRYPT, &no, sizeof no},
        {CKA_WRAP, &no, sizeof no},            {CKA_UNWRAP, &no, sizeof no},
        {CKA_DERIVE, &no, sizeof no},          {CKA_MODIFIABLE, &no, sizeof no},
        {CKA_LABEL, (void *)label, (CK_ULONG)label_len}, {CKA_ID, (void *)id, (CK_ULONG)id_len},
    };
    CK_MECHANISM mech = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
    CK_RV rv = h->f->C_GenerateKey(s, &mech, tmpl, sizeof tmpl / sizeof tmpl[0], &obj);
    /* SoftHSM fails while another process rewrites the token's files: again, once the failed try left nothing. */
    for (int i = 1; rv == CKR_GENERAL_ERROR && i < HSM_BUSY_TRIES; i++) {
        hsm_busy_pause(i);
        CT_GUARD(hsm_new_object_check(h, s, label, id, id_len));
        rv = h->f->C_GenerateKey(s, &mech, tmpl, sizeof tmpl / sizeof tmpl[0], &obj);
    }
    CT_ENSURE_MSG(rv == CKR_OK, CT_ERR_HSM, "C_GenerateKey(generic secret) failed: CKR 0x%lx", rv);
    CT_GUARD(hsm_generated_check(h, s, CKO_SECRET_KEY, CKK_GENERIC_SECRET, obj, label, id, id_len));
    CT_GUARD(mac_key_new(h, obj, label, out));
cleanup:
    if (s != CK_INVALID_HANDLE) hsm_session_put(h, s);
    return rc;
}

/* One HMAC on session s; a MAC of another length is a token fault (CKR_GENERAL_ERROR). */
static CK_RV mac_once(hsm_mac_key *k, CK_SESSION_HANDLE s, const uint8_t *msg, size_t len, uint8_t mac[HSM_MAC_LEN])
{
    CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
    CK_ULONG mac_len = HSM_MAC_LEN;
    CK_RV rv = k->h->f->C_SignInit(s, &mech, k->obj);
    if (rv == CKR_OK) rv = k->h->f->C_Sign(s, (CK_BYTE_PTR)msg, (CK_ULONG)len, mac, &mac_len);
    return rv == CKR_OK && mac_len != HSM_MAC_LEN ? CKR_GENERAL_ERROR : rv;
}

static ct_err mac_failed(const hsm_mac_key *k, CK_RV rv)
{
    return ct_fail(CT_ERR_HSM, "HMAC with key '%s' in the token failed: CKR 0x%lx", k->label, rv);
}

ct_err hsm_mac_sign(hsm_mac_key *k, const uint8_t *msg, size_t len, uint8_t mac[HSM_MAC_LEN])
{
    CT_ENSURE_RET(k && (msg || !len) && mac, ct_fail(CT_ERR_ARG, "hsm_mac_sign: missing argument"));
    CK_SESSION_HANDLE s = hsm_session_get(k->h);
    CK_RV rv = mac_once(k, s, msg, len, mac);
    hsm_session_put(k->h, s);
    return rv == CKR_OK ? CT_OK : mac_failed(k, rv);
}

typedef struct {
    hsm_mac_key *k;
    const uint8_t *const *msgs;
    const size_t *lens;
    uint8_t (*macs)[HSM_MAC_LEN];
    size_t from, to;
    CK_RV rv;
    size_t failed_at;
} mac_share;

/* One thread's share on one pooled session; the first failure ends it. */
static void *mac_share_run(void *arg)
{
    mac_share *m = arg;
    CK_SESSION_HANDLE s = hsm_session_get(m->k->h);
    m->rv = CKR_OK;
    for (size_t i = m->from; i < m->to && m->rv == CKR_OK; i++) {
        m->rv = mac_once(m->k, s, m->msgs[i], m->lens[i], m->macs[i]);
        m->failed_at = i;
    }
    hsm_session_put(m->k->h, s);
    return NULL;
}

ct_err hsm_mac_sign_many(hsm_mac_key *k, size_t n, const uint8_t *const *msgs, const size_t *lens,
                         uint8_t (*macs)[HSM_MAC_LEN], unsigned threads, size_t *failed)
{
    mac_share share[HSM_MAC_THREADS_MAX];
    pthread_t tid[HSM_MAC_THREADS_MAX];
    bool started[HSM_MAC_THREADS_MAX] = {false};
    CT_ENSURE_RET(k && (msgs || !n) && (lens || !n) && (macs || !n),
                  ct_fail(CT_ERR_ARG, "hsm_mac_sign_many: missing argument"));
    if (n == 0) return CT_OK;
    /* Never more threads than sessions (each holds one for its whole share), nor than messages. */
    if (threads > k->h->n_sessions) threads = k->h->n_sessions;
    if (threads > HSM_MAC_THREADS_MAX) threads = HSM_MAC_THREADS_MAX;
    if (threads > n) threads = (unsigned)n;
    if (threads == 0) threads = 1;
    for (unsigned t = 0; t < threads; t++) {
        share[t] = (mac_share){.k = k, .msgs = msgs, .lens = lens, .macs = macs, .from = n * t / threads,
                               .to = n * (t + 1) / threads};
        /* every share but the last on a thread of its own (or here, if none can be made); the last one here */
        started[t] = t + 1 < threads && pthread_create(&tid[t], NULL, mac_share_run, &share[t]) == 0;
        if (!started[t] && t + 1 < threads) mac_share_run(&share[t]);
    }
    mac_share_run(&share[threads - 1]);
    for (unsigned t = 0; t < threads; t++)
        if (started[t]) (void)pthread_join(tid[t], NULL);
    /* Shares are in order and each stops at its first failure: the first failed share's is the first failure. */
    for (unsigned t = 0; t < threads; t++) {
        if (share[t].rv == CKR_OK) continue;
        if (failed) *failed = share[t].failed_at;
        return mac_failed(k, share[t].rv);
    }
    return CT_OK;
}

const char *hsm_mac_key_label(const hsm_mac_key *k) { return k ? k->label : ""; }

void hsm_mac_key_free(hsm_mac_key *k)
{
    if (!k) return;
    ct_wipe(k, sizeof *k);
    free(k);
}
