/* hsm: PKCS#11 by hand (dlopen + function list) so that object handles can be cached and sessions pooled;
 * wolfSSL's own PKCS#11 layer looks objects up on every call and misreads SoftHSM's slot list. */
#define _POSIX_C_SOURCE 200809L
#include "hsm_priv.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/wolfcrypt/ecc.h>

#define HSM_PIN_MAX 256
#define HSM_MAX_SLOTS 1024
#define HSM_URI_MAX 1024
#define HSM_DIGEST_MAX 64
#define HSM_LOGIN_SLOTS 16

/* Fails the current function with CT_ERR_HSM and the PKCS#11 return value as detail. */
#define HSM_CK(call, what)                                                                         \
    do {                                                                                           \
        CK_RV hsm_rv_ = (call);                                                                    \
        CT_ENSURE_MSG(hsm_rv_ == CKR_OK, CT_ERR_HSM, "%s failed: CKR 0x%lx", (what), hsm_rv_);      \
    } while (0)

/* DER OIDs for CKA_EC_PARAMS (namedCurve). */
static const uint8_t OID_P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_P384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

size_t hsm_coord_size(hsm_key_type t) { return t == HSM_EC_P384 ? 48 : 32; }

/* ---------------- modules: one load and one C_Initialize per path per process ---------------- */

struct hsm_module {
    char path[PATH_MAX];
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    unsigned refs;
    bool owns_init; /* false when someone else in the process initialised it: then never C_Finalize */
    hsm_module *next;
    /* PKCS#11 login is per token for the whole process: a second C_Login answers "already logged in" without
     * looking at the PIN. So we keep a digest of the PIN that did log in and hold later PINs to it. */
    struct {
        CK_SLOT_ID slot;
        uint8_t pin_hash[32];
        bool set;
    } logins[HSM_LOGIN_SLOTS];
};

static pthread_mutex_t g_mod_lock = PTHREAD_MUTEX_INITIALIZER;
static hsm_module *g_mods;

static CK_RV module_initialize(hsm_module *m)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    return m->f->C_Initialize(&args);
}

static ct_err module_load(const char *path, hsm_module **out)
{
    ct_err rc = CT_OK;
    hsm_module *m = calloc(1, sizeof *m);
    CT_ENSURE(m, CT_ERR_NOMEM);
    CT_GUARD(ct_strlcpy(m->path, sizeof m->path, path));
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CT_ENSURE_MSG(m->dl, CT_ERR_HSM, "cannot load PKCS#11 module %s: %s", path, dlerror());
    CK_C_GetFunctionList gfl;
    *(void **)&gfl = dlsym(m->dl, "C_GetFunctionList"); /* POSIX-sanctioned object->function cast */
    CT_ENSURE_MSG(gfl, CT_ERR_HSM, "%s has no C_GetFunctionList", path);
    HSM_CK(gfl(&m->f), "C_GetFunctionList");
    CT_ENSURE_MSG(m->f, CT_ERR_HSM, "%s returned no function list", path);
    CK_RV rv = module_initialize(m);
    CT_ENSURE_MSG(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED, CT_ERR_HSM,
                  "C_Initialize failed: CKR 0x%lx", rv);
    m->owns_init = rv == CKR_OK;
    m->refs = 1;
    *out = m;
    m = NULL;
cleanup:
    if (m) {
        if (m->dl) dlclose(m->dl);
        free(m);
    }
    return rc;
}

static ct_err module_acquire(const char *path, hsm_module **out)
{
    ct_err rc = CT_OK;
    if (!path) path = HSM_DEFAULT_MODULE;
    pthread_mutex_lock(&g_mod_lock);
    hsm_module *m = g_mods;
    while (m && strcmp(m->path, path) != 0) m = m->next;
    if (m) {
        m->refs++;
    } else {
        CT_GUARD(module_load(path, &m));
        m->next = g_mods;
        g_mods = m;
    }
    *out = m;
cleanup:
    pthread_mutex_unlock(&g_mod_lock);
    return rc;
}

static void module_release(hsm_module *m)
{
    if (!m) return;
    pthread_mutex_lock(&g_mod_lock);
    if (--m->refs == 0) {
        hsm_module **pp = &g_mods;
        while (*pp != m) pp = &(*pp)->next;
        *pp = m->next;
        if (m->owns_init) m->f->C_Finalize(NULL);
        dlclose(m->dl);
        free(m);
    }
    pthread_mutex_unlock(&g_mod_lock);
}

/* ---------------- slots and tokens ---------------- */

static ct_err label_pad(const char *label, CK_UTF8CHAR out[HSM_TOKEN_LABEL_LEN])
{
    size_t n = strlen(label);
    if (n == 0 || n > HSM_TOKEN_LABEL_LEN)
        return ct_fail(CT_ERR_ARG, "token label must be 1..%d bytes", HSM_TOKEN_LABEL_LEN);
    memset(out, ' ', HSM_TOKEN_LABEL_LEN);
    memcpy(out, label, n);
    return CT_OK;
}

/* Looks at every slot with a token: the one initialised with `label`, and the first uninitialised one. */
static ct_err token_scan(CK_FUNCTION_LIST_PTR f, const char *label, bool *found, CK_SLOT_ID *slot, bool *have_free,
                         CK_SLOT_ID *free_slot)
{
    ct_err rc = CT_OK;
    CK_SLOT_ID *slots = NULL;
    CK_UTF8CHAR want[HSM_TOKEN_LABEL_LEN];
    CK_ULONG n = 0;
    *found = false;
    if (have_free) *have_free = false;
    CT_GUARD(label_pad(label, want));
    HSM_CK(f->C_GetSlotList(CK_TRUE, NULL, &n), "C_GetSlotList");
    CT_ENSURE_MSG(n <= HSM_MAX_SLOTS, CT_ERR_HSM, "module reports %lu slots", n);
    slots = calloc(n ? n : 1, sizeof *slots);
    CT_ENSURE(slots, CT_ERR_NOMEM);
    HSM_CK(f->C_GetSlotList(CK_TRUE, slots, &n), "C_GetSlotList");
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK) continue;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
            if (have_free && !*have_free) {
                *have_free = true;
                *free_slot = slots[i];
            }
        } else if (!*found && memcmp(ti.label, want, sizeof want) == 0) {
            *found = true;
            *slot = slots[i];
        }
    }
cleanup:
    free(slots);
    return rc;
}

void hsm_busy_pause(int attempt)
{
    const struct timespec pause = {0, 20 * 1000000L * attempt};
    nanosleep(&pause, NULL);
}

static ct_err token_find(CK_FUNCTION_LIST_PTR f, const char *label, CK_SLOT_ID *slot)
{
    bool found;
    CT_GUARD_RET(token_scan(f, label, &found, slot, NULL, NULL));
    return found ? CT_OK : ct_fail(CT_ERR_HSM_NO_TOKEN, "no token labelled '%s'", label);
}

/* SoftHSM reads its token files once, at C_Initialize: a token that another process was rewriting at that moment
 * (generating a key, logging in) is missing from this process's slots, or present without its user PIN or flags.
 * While this process alone uses the module (nothing opened or logged in yet), it initialises it again to read them
 * anew; *alone is false when someone else in the process holds the module (its view is then kept). */
static ct_err module_reread_alone(hsm_module *m, int attempt, bool *alone)
{
    pthread_mutex_lock(&g_mod_lock);
    *alone = m->refs == 1 && m->owns_init;
    CK_RV rv = CKR_OK;
    if (*alone) {
        (void)m->f->C_Finalize(NULL);
        memset(m->logins, 0, sizeof m->logins);
        hsm_busy_pause(attempt);
        rv = module_initialize(m);
    }
    pthread_mutex_unlock(&g_mod_lock);
    return rv == CKR_OK ? CT_OK : ct_fail(CT_ERR_HSM, "C_Initialize failed: CKR 0x%lx", rv);
}

/* Records the PIN digest of a successful user login (on=true), or checks a PIN against it (on=false; true
 * when it matches or when the login was made by someone else in the process). */
static bool login_record(hsm_module *m, CK_SLOT_ID slot, const uint8_t hash[32], bool on)
{
    bool ok = !on;
    pthread_mutex_lock(&g_mod_lock);
    size_t i = 0, free_i = HSM_LOGIN_SLOTS;
    for (; i < HSM_LOGIN_SLOTS && !(m->logins[i].set && m->logins[i].slot == slot); i++)
        if (!m->logins[i].set && free_i == HSM_LOGIN_SLOTS) free_i = i;
    if (on) {
        if (i == HSM_LOGIN_SLOTS) i = free_i;
        if (i < HSM_LOGIN_SLOTS) {
            m->logins[i].slot = slot;
            m->logins[i].set = true;
            memcpy(m->logins[i].pin_hash, hash, 32);
            ok = true;
        }
    } else if (i < HSM_LOGIN_SLOTS) {
        ok = ct_equal_ct(m->logins[i].pin_hash, hash, 32);
    }
    pthread_mutex_unlock(&g_mod_lock);
    return ok;
}

/* *rv_out (may be NULL) is the token's last answer, for a caller that can cure CKR_USER_PIN_NOT_INITIALIZED. */
static ct_err login(hsm_module *m, CK_SLOT_ID slot, CK_SESSION_HANDLE s, CK_USER_TYPE who, const char *pin,
                    CK_RV *rv_out)
{
    ct_err rc = CT_OK;
    CK_UTF8CHAR buf[HSM_PIN_MAX];
    uint8_t hash[32];
    size_t n = strnlen(pin, sizeof buf);
    CT_ENSURE_MSG(n > 0 && n < sizeof buf, CT_ERR_ARG, "PIN must be 1..%d bytes", HSM_PIN_MAX - 1);
    memcpy(buf, pin, n); /* a writable copy: C_Login is not const-correct */
    CT_GUARD(ct_sha256(buf, n, hash));
    CK_RV rv = m->f->C_Login(s, who, buf, (CK_ULONG)n);
    /* SoftHSM answers CKR_GENERAL_ERROR while another process rewrites the token's files: a moment later it logs
     * in. A wrong PIN is never retried (each try would count against the token's PIN retry limit). */
    for (int i = 1; rv == CKR_GENERAL_ERROR && i < HSM_BUSY_TRIES; i++) {
        hsm_busy_pause(i);
        rv = m->f->C_Login(s, who, buf, (CK_ULONG)n);
    }
    if (rv_out) *rv_out = rv;
    CT_ENSURE_MSG(rv != CKR_PIN_INCORRECT && rv != CKR_PIN_LOCKED && rv != CKR_PIN_LEN_RANGE &&
                      rv != CKR_PIN_INVALID,
                  CT_ERR_HSM_LOGIN, "login refused: CKR 0x%lx", rv);
    CT_ENSURE_MSG(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN, CT_ERR_HSM_LOGIN, "C_Login failed: CKR 0x%lx",
                  rv);
    if (who == CKU_USER)
        CT_ENSURE_MSG(login_record(m, slot, hash, rv == CKR_OK), CT_ERR_HSM_LOGIN,
                      "login refused: not the PIN the token is logged in with");
cleanup:
    ct_wipe(buf, sizeof buf);
    ct_wipe(hash, sizeof hash);
    return rc;
}

ct_err hsm_token_create(const char *module_path, const char *token_label, const char *so_pin, const char *user_pin)
{
    ct_err rc = CT_OK;
    hsm_module *m = NULL;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    bool so_in = false, found, have_free;
    CK_SLOT_ID slot = 0, free_slot = 0;
    CK_UTF8CHAR label[HSM_TOKEN_LABEL_LEN];
    CK_UTF8CHAR pin[HSM_PIN_MAX];
    size_t so_len = 0, user_len = 0;
    CT_ENSURE(token_label && so_pin && user_pin, CT_ERR_ARG);
    CT_GUARD(label_pad(token_label, label));
    so_len = strnlen(so_pin, sizeof pin);
    user_len = strnlen(user_pin, sizeof pin);
    CT_ENSURE_MSG(so_len && so_len < sizeof pin && user_len && user_len < sizeof pin, CT_ERR_ARG,
                  "PINs must be 1..%d bytes", HSM_PIN_MAX - 1);
    CT_GUARD(module_acquire(module_path, &m));
    CT_GUARD(token_scan(m->f, token_label, &found, &slot, &have_free, &free_slot));
    CT_ENSURE_MSG(!found, CT_ERR_EXISTS, "token '%s' exists already", token_label);
    CT_ENSURE_MSG(have_free, CT_ERR_HSM_NO_TOKEN, "no uninitialised token slot is free");
    memcpy(pin, so_pin, so_len);
    HSM_CK(m->f->C_InitToken(free_slot, pin, (CK_ULONG)so_len, label), "C_InitToken");
    /* SoftHSM gives the new token another slot id: look it up again by label. */
    CT_GUARD(token_find(m->f, token_label, &slot));
    HSM_CK(m->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), "C_OpenSession");
    CT_GUARD(login(m, slot, s, CKU_SO, so_pin, NULL));
    so_in = true;
    memcpy(pin, user_pin, user_len);
    HSM_CK(m->f->C_InitPIN(s, pin, (CK_ULONG)user_len), "C_InitPIN");
cleanup:
    ct_wipe(pin, sizeof pin);
    if (so_in) m->f->C_Logout(s);
    if (s != CK_INVALID_HANDLE) m->f->C_CloseSession(s);
    module_release(m);
    return rc;
}

/* ---------------- open/close and the session pool ---------------- */

static ct_err hsm_alloc(hsm **out)
{
    hsm *h = calloc(1, sizeof *h);
    if (!h) return CT_ERR_NOMEM;
    if (pthread_mutex_init(&h->pool_lock, NULL) != 0) goto fail_pool;
    if (pthread_cond_init(&h->pool_cond, NULL) != 0) goto fail_cond;
    if (pthread_mutex_init(&h->reg_lock, NULL) != 0) goto fail_reg;
    *out = h;
    return CT_OK;
fail_reg:
    pthread_cond_destroy(&h->pool_cond);
fail_cond:
    pthread_mutex_destroy(&h->pool_lock);
fail_pool:
    free(h);
    return ct_fail(CT_ERR_INTERNAL, "cannot create hsm locks");
}

static ct_err sessions_open(hsm *h, unsigned pool)
{
    ct_err rc = CT_OK;
    for (unsigned i = 0; i < pool; i++) {
        CK_SESSION_HANDLE s;
        HSM_CK(h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), "C_OpenSession");
        h->sessions[h->n_sessions++] = s;
        h->idle[h->n_idle++] = s;
    }
cleanup:
    return rc;
}

static void sessions_close(hsm *h)
{
    for (unsigned i = 0; i < h->n_sessions; i++) h->f->C_CloseSession(h->sessions[i]);
    h->n_sessions = h->n_idle = 0;
}

ct_err hsm_open(const hsm_config *cfg, hsm **out)
{
    ct_err rc = CT_OK;
    hsm *h = NULL;
    CT_ENSURE(cfg && cfg->token_label && cfg->pin && out, CT_ERR_ARG);
    *out = NULL;
    unsigned pool = cfg->session_pool ? cfg->session_pool : HSM_DEFAULT_POOL;
    CT_ENSURE_MSG(pool <= HSM_MAX_POOL, CT_ERR_ARG, "session pool of %u exceeds %d", pool, HSM_MAX_POOL);
    CT_GUARD(hsm_alloc(&h));
    CT_GUARD(ct_strlcpy(h->token_label, sizeof h->token_label, cfg->token_label));
    CT_GUARD(module_acquire(cfg->module_path, &h->mod));
    h->f = h->mod->f;
    h->sessions = calloc(pool, sizeof *h->sessions);
    h->idle = calloc(pool, sizeof *h->idle);
    CT_ENSURE(h->sessions && h->idle, CT_ERR_NOMEM);
    /* The token missing from SoftHSM's view, or its user PIN or flags, were read from token files another process
     * was rewriting: the module reads them again (module_reread_alone) and the pool is opened anew. */
    bool alone = true;
    for (int attempt = 1;; attempt++) {
        CK_RV rv = CKR_OK;
        rc = token_find(h->f, cfg->token_label, &h->slot);
        if (rc == CT_OK) CT_GUARD(sessions_open(h, pool));
        /* Login state is per token and application: once covers every session of the pool. */
        if (rc == CT_OK) rc = login(h->mod, h->slot, h->sessions[0], CKU_USER, cfg->pin, &rv);
        bool stale_view = rc == CT_ERR_HSM_NO_TOKEN || rv == CKR_USER_PIN_NOT_INITIALIZED || rv == CKR_GENERAL_ERROR;
        if (rc == CT_OK || !stale_view || !alone || attempt >= HSM_BUSY_TRIES) break;
        sessions_close(h);
        CT_GUARD(module_reread_alone(h->mod, attempt, &alone));
    }
    CT_GUARD(rc);
    CT_GUARD(hsm_wolf_attach(h));
    *out = h;
    h = NULL;
cleanup:
    hsm_close(h);
    return rc;
}

void hsm_close(hsm *h)
{
    if (!h) return;
    hsm_wolf_detach(h);
    /* Close only our own sessions (no C_Logout / C_CloseAllSessions): another hsm handle in this process
     * may share the token's login. */
    sessions_close(h);
    free(h->sessions);
    free(h->idle);
    module_release(h->mod);
    pthread_mutex_destroy(&h->reg_lock);
    pthread_cond_destroy(&h->pool_cond);
    pthread_mutex_destroy(&h->pool_lock);
    free(h);
}

CK_SESSION_HANDLE hsm_session_get(hsm *h)
{
    pthread_mutex_lock(&h->pool_lock);
    while (h->n_idle == 0) pthread_cond_wait(&h->pool_cond, &h->pool_lock);
    CK_SESSION_HANDLE s = h->idle[--h->n_idle];
    pthread_mutex_unlock(&h->pool_lock);
    return s;
}

void hsm_session_put(hsm *h, CK_SESSION_HANDLE s)
{
    pthread_mutex_lock(&h->pool_lock);
    h->idle[h->n_idle++] = s;
    pthread_cond_signal(&h->pool_cond);
    pthread_mutex_unlock(&h->pool_lock);
}

/* ---------------- objects ---------------- */

ct_err hsm_objects_find(hsm *h, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *found,
                        CK_ULONG max, CK_ULONG *count)
{
    ct_err rc = CT_OK;
    *count = 0;
    HSM_CK(h->f->C_FindObjectsInit(s, tmpl, n), "C_FindObjectsInit");
    CK_RV rv = h->f->C_FindObjects(s, found, max, count);
    h->f->C_FindObjectsFinal(s);
    CT_ENSURE_MSG(rv == CKR_OK, CT_ERR_HSM, "C_FindObjects failed: CKR 0x%lx", rv);
cleanup:
    return rc;
}

static ct_err attr_get(hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, void *buf,
                       size_t max, size_t *len)
{
    ct_err rc = CT_OK;
    CK_ATTRIBUTE a = {type, buf, (CK_ULONG)max};
    HSM_CK(h->f->C_GetAttributeValue(s, obj, &a, 1), "C_GetAttributeValue");
    CT_ENSURE_MSG(a.ulValueLen != (CK_ULONG)-1 && a.ulValueLen <= max, CT_ERR_HSM, "attribute 0x%lx unreadable",
                  type);
    *len = a.ulValueLen;
cleanup:
    return rc;
}

/* CKA_EC_POINT is a DER OCTET STRING around the point; some modules return the bare point. */
static ct_err point_parse(const uint8_t *a, size_t n, hsm_key_type t, uint8_t *pt, size_t *pt_len)
{
    size_t want = 1 + 2 * hsm_coord_size(t), hdr = 0;
    if (n == want && a[0] == 0x04) {
        hdr = 0;
    } else if (n >= 2 && a[0] == 0x04 && a[1] < 0x80 && a[1] == n - 2) {
        hdr = 2;
    } else if (n >= 3 && a[0] == 0x04 && a[1] == 0x81 && a[2] == n - 3) {
        hdr = 3;
    } else {
        return ct_fail(CT_ERR_HSM, "malformed CKA_EC_POINT (%zu bytes)", n);
    }
    if (n - hdr != want || a[hdr] != 0x04) return ct_fail(CT_ERR_HSM, "EC point is not an uncompressed point");
    memcpy(pt, a + hdr, want);
    *pt_len = want;
    return CT_OK;
}

/* Reads label, id, curve and public point of a private key object into a new hsm_key. */
static ct_err key_load(hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, hsm_key **out)
{
    ct_err rc = CT_OK;
    hsm_key *k = calloc(1, sizeof *k);
    uint8_t buf[2 * HSM_EC_POINT_MAX];
    size_t n = 0;
    CT_ENSURE(k, CT_ERR_NOMEM);
    k->h = h;
    k->priv = priv;
    CT_GUARD(attr_get(h, s, priv, CKA_LABEL, k->label, HSM_LABEL_MAX, &n));
    k->label[n] = '\0';
    CT_GUARD(attr_get(h, s, priv, CKA_ID, k->id, sizeof k->id, &k->id_len));
    CT_GUARD(attr_get(h, s, priv, CKA_EC_PARAMS, buf, sizeof buf, &n));
    if (n == sizeof OID_P256 && memcmp(buf, OID_P256, n) == 0) {
        k->type = HSM_EC_P256;
    } else if (n == sizeof OID_P384 && memcmp(buf, OID_P384, n) == 0) {
        k->type = HSM_EC_P384;
    } else {
        CT_ENSURE_MSG(false, CT_ERR_WEAK_KEY, "key '%s' is not on P-256 or P-384", k->label);
    }
    /* The public half: same CKA_ID (or the same label when the key has no id). */
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_ID, k->id, (CK_ULONG)k->id_len}};
    if (k->id_len == 0) tmpl[1] = (CK_ATTRIBUTE){CKA_LABEL, k->label, (CK_ULONG)strlen(k->label)};
    CK_ULONG count = 0;
    CT_GUARD(hsm_objects_find(h, s, tmpl, 2, &k->pub, 1, &count));
    CT_ENSURE_MSG(count == 1, CT_ERR_HSM_NO_KEY, "key '%s' has no public key object", k->label);
    CT_GUARD(attr_get(h, s, k->pub, CKA_EC_POINT, buf, sizeof buf, &n));
    CT_GUARD(point_parse(buf, n, k->type, k->point, &k->point_len));
    CT_GUARD(hsm_wolf_remember(h, k));
    *out = k;
    k = NULL;
cleanup:
    hsm_key_free(k);
    return rc;
}

/* The key objects of this class and type matching label and/or id (either may be absent). */
ct_err hsm_keys_find(hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, const char *label,
                     const uint8_t *id, size_t id_len, CK_OBJECT_HANDLE found[2], CK_ULONG *count)
{
    CK_ATTRIBUTE tmpl[4] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt}};
    CK_ULONG n = 2;
    if (label) tmpl[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)};
    if (id_len) tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, (CK_ULONG)id_len};
    return hsm_objects_find(h, s, tmpl, n, found, 2, count);
}

/* The private EC key objects matching label and/or id (either may be absent). */
/* Whether any object (of any class) carries this attribute value. */
static ct_err object_exists(hsm *h, CK_SESSION_HANDLE s, CK_ATTRIBUTE_TYPE type, const void *v, size_t n,
                            bool *exists)
{
    CK_ATTRIBUTE a = {type, (void *)v, (CK_ULONG)n};
    CK_OBJECT_HANDLE o;
    CK_ULONG count = 0;
    CT_GUARD_RET(hsm_objects_find(h, s, &a, 1, &o, 1, &count));
    *exists = count > 0;
    return CT_OK;
}

/* A new key's label and id: within bounds, and carried by no object in the token yet (CT_ERR_EXISTS). */
ct_err hsm_new_object_check(hsm *h, CK_SESSION_HANDLE s, const char *label, const uint8_t *id, size_t id_len)
{
    size_t label_len = strlen(label);
    bool exists = false;
    CT_ENSURE_RET(label_len > 0 && label_len <= HSM_LABEL_MAX,
                  ct_fail(CT_ERR_ARG, "key label must be 1..%d bytes", HSM_LABEL_MAX));
    CT_ENSURE_RET(id_len > 0 && id_len <= HSM_ID_MAX, ct_fail(CT_ERR_ARG, "key id must be 1..%d bytes", HSM_ID_MAX));
    CT_GUARD_RET(object_exists(h, s, CKA_LABEL, label, label_len, &exists));
    CT_ENSURE_RET(!exists, ct_fail(CT_ERR_EXISTS, "an object labelled '%s' exists already", label));
    CT_GUARD_RET(object_exists(h, s, CKA_ID, id, id_len, &exists));
    CT_ENSURE_RET(!exists, ct_fail(CT_ERR_EXISTS, "an object with this id exists already"));
    return CT_OK;
}

/* A module that silently made a session object would lose the key: check it is the one token object so named. */
ct_err hsm_generated_check(hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, CK_OBJECT_HANDLE obj,
                           const char *label, const uint8_t *id, size_t id_len)
{
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    CK_BBOOL on_token = CK_FALSE;
    size_t n = 0;
    CT_GUARD_RET(hsm_keys_find(h, s, cls, kt, label, id, id_len, found, &count));
    CT_ENSURE_RET(count == 1 && found[0] == obj, ct_fail(CT_ERR_HSM, "generated key '%s' not found in the token", label));
    CT_GUARD_RET(attr_get(h, s, obj, CKA_TOKEN, &on_token, sizeof on_token, &n));
    CT_ENSURE_RET(on_token == CK_TRUE, ct_fail(CT_ERR_HSM, "generated key '%s' is not a token object", label));
    return CT_OK;
}

/* What a key may do. SoftHSM grants every usage a template does not deny, so each one is set explicitly. */
typedef struct {
    CK_BBOOL sign, derive, modifiable;
} key_usage;

static ct_err key_generate(hsm *h, hsm_key_type type, const char *label, const uint8_t *id, size_t id_len,
                           key_usage u, hsm_key **out)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CT_ENSURE(h && label && id && out, CT_ERR_ARG);
    *out = NULL;
    size_t label_len = strlen(label);
    CT_ENSURE_MSG(type == HSM_EC_P256 || type == HSM_EC_P384, CT_ERR_WEAK_KEY, "unsupported key type %d",
                  (int)type);
    s = hsm_session_get(h);
    CT_GUARD(hsm_new_object_check(h, s, label, id, id_len));

    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    const uint8_t *oid = type == HSM_EC_P384 ? OID_P384 : OID_P256;
    CK_ULONG oid_len = type == HSM_EC_P384 ? sizeof OID_P384 : sizeof OID_P256;
    CK_ATTRIBUTE pub_t[] = {
        {CKA_TOKEN, &yes, sizeof yes},          {CKA_VERIFY, &u.sign, sizeof u.sign},
        {CKA_DERIVE, &no, sizeof no},           {CKA_ENCRYPT, &no, sizeof no},
        {CKA_WRAP, &no, sizeof no},             {CKA_EC_PARAMS, (void *)oid, oid_len},
        {CKA_LABEL, (void *)label, (CK_ULONG)label_len}, {CKA_ID, (void *)id, (CK_ULONG)id_len},
    };
    CK_ATTRIBUTE priv_t[] = {
        {CKA_TOKEN, &yes, sizeof yes},       {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},   {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &u.sign, sizeof u.sign},  {CKA_DERIVE, &u.derive, sizeof u.derive},
        {CKA_DECRYPT, &no, sizeof no},       {CKA_UNWRAP, &no, sizeof no},
        {CKA_SIGN_RECOVER, &no, sizeof no},  {CKA_MODIFIABLE, &u.modifiable, sizeof u.modifiable},
        {CKA_LABEL, (void *)label, (CK_ULONG)label_len}, {CKA_ID, (void *)id, (CK_ULONG)id_len},
    };
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    HSM_CK(h->f->C_GenerateKeyPair(s, &mech, pub_t, sizeof pub_t / sizeof pub_t[0], priv_t,
                                   sizeof priv_t / sizeof priv_t[0], &pub, &priv),
           "C_GenerateKeyPair");
    CT_GUARD(hsm_generated_check(h, s, CKO_PRIVATE_KEY, CKK_EC, priv, label, id, id_len));
    CT_GUARD(key_load(h, s, priv, out));
cleanup:
    if (s != CK_INVALID_HANDLE) hsm_session_put(h, s);
    return rc;
}

ct_err hsm_key_generate(hsm *h, hsm_key_type type, const char *label, const uint8_t *id, size_t id_len,
                        hsm_key **out)
{
    return key_generate(h, type, label, id, id_len, (key_usage){CK_TRUE, CK_FALSE, CK_FALSE}, out);
}

/* Switches signing off for good and reads it back: a module that ignored it must not pass unnoticed. */
static ct_err sign_off(hsm_key *k)
{
    ct_err rc = CT_OK;
    hsm *h = k->h;
    CK_SESSION_HANDLE s = hsm_session_get(h);
    CK_BBOOL no = CK_FALSE, now = CK_TRUE;
    size_t n = 0;
    CK_ATTRIBUTE a = {CKA_SIGN, &no, sizeof no};
    HSM_CK(h->f->C_SetAttributeValue(s, k->priv, &a, 1), "C_SetAttributeValue(CKA_SIGN)");
    CT_GUARD(attr_get(h, s, k->priv, CKA_SIGN, &now, sizeof now, &n));
    CT_ENSURE_MSG(now == CK_FALSE, CT_ERR_HSM, "key '%s' still signs after CKA_SIGN was set false", k->label);
cleanup:
    hsm_session_put(h, s);
    return rc;
}

ct_err hsm_key_generate_ecdh(hsm *h, hsm_key_type type, const char *label, const uint8_t *id, size_t id_len,
                             hsm_pop_fn pop, void *pop_arg, hsm_key **out)
{
    ct_err rc = CT_OK;
    hsm_key *k = NULL;
    CT_GUARD_RET(key_generate(h, type, label, id, id_len, (key_usage){pop != NULL, CK_TRUE, pop != NULL}, &k));
    if (pop) {
        CT_GUARD(pop(k, pop_arg));
        CT_GUARD(sign_off(k));
    }
    *out = k;
    k = NULL;
cleanup:
    /* A key left able to sign is not handed out: gone, so that a re-run starts clean. */
    if (k && hsm_key_destroy(h, k) != CT_OK) ct_log(CT_LOG_ERROR, "hsm_key_left", "label=%s", CT_LOGQ(label));
    return rc;
}

/* ---------------- RFC 7512 URIs ---------------- */

typedef struct {
    char token[HSM_TOKEN_LABEL_LEN + 1];
    char object[HSM_LABEL_MAX + 1];
    uint8_t id[HSM_ID_MAX];
    size_t id_len;
    bool has_token, has_object;
    bool secret; /* type=secret-key (hsm_mac.c); hsm_key_find wants private keys */
} hsm_uri;

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static ct_err pct_decode(const char *s, size_t n, uint8_t *out, size_t max, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3) return ct_fail(CT_ERR_ARG, "truncated %%-escape in URI");
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return ct_fail(CT_ERR_ARG, "bad %%-escape in URI");
            c = hi * 16 + lo;
            i += 2;
        }
        if (o >= max) return ct_fail(CT_ERR_ARG, "URI attribute longer than %zu bytes", max);
        out[o++] = (uint8_t)c;
    }
    *out_len = o;
    return CT_OK;
}

/* Decodes a text attribute: no embedded NUL, NUL-terminated. */
static ct_err pct_decode_str(const char *s, size_t n, char *out, size_t max)
{
    size_t len = 0;
    CT_GUARD_RET(pct_decode(s, n, (uint8_t *)out, max - 1, &len));
    if (memchr(out, '\0', len)) return ct_fail(CT_ERR_ARG, "NUL byte in URI attribute");
    out[len] = '\0';
    return CT_OK;
}

static ct_err uri_parse(const char *uri, hsm_uri *u)
{
    memset(u, 0, sizeof *u);
    const char *p = uri + strlen("pkcs11:");
    size_t path_len = strcspn(p, "?"); /* query attributes (pin-source, module-path) are not ours */
    const char *end = p + path_len;
    while (p < end) {
        size_t n = strcspn(p, ";");
        if (p + n > end) n = (size_t)(end - p);
        const char *eq = memchr(p, '=', n);
        if (eq) {
            size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
            const char *v = eq + 1;
            if (klen == 5 && memcmp(p, "token", 5) == 0) {
                CT_GUARD_RET(pct_decode_str(v, vlen, u->token, sizeof u->token));
                u->has_token = true;
            } else if (klen == 6 && memcmp(p, "object", 6) == 0) {
                CT_GUARD_RET(pct_decode_str(v, vlen, u->object, sizeof u->object));
                u->has_object = true;
            } else if (klen == 2 && memcmp(p, "id", 2) == 0) {
                CT_GUARD_RET(pct_decode(v, vlen, u->id, sizeof u->id, &u->id_len));
            } else if (klen == 4 && memcmp(p, "type", 4) == 0 && vlen == 10 && memcmp(v, "secret-key", 10) == 0) {
                u->secret = true;
            } else if (klen == 4 && memcmp(p, "type", 4) == 0 && !(vlen == 7 && memcmp(v, "private", 7) == 0)) {
                return ct_fail(CT_ERR_ARG, "URI names a non-private object type");
            }
        }
        p += n;
        if (p < end) p++; /* the ';' */
    }
    if (!u->has_object && u->id_len == 0) return ct_fail(CT_ERR_ARG, "URI names neither object nor id");
    return CT_OK;
}

/* A key named by RFC 7512 URI (its token=, if any, must be the open token's; type=secret-key only when `secret`)
 * or by bare label. */
static ct_err key_name_parse(const hsm *h, const char *uri_or_label, bool secret, hsm_uri *u)
{
    CT_ENSURE_RET(strnlen(uri_or_label, HSM_URI_MAX) < HSM_URI_MAX, ct_fail(CT_ERR_ARG, "key URI too long"));
    if (strncmp(uri_or_label, "pkcs11:", 7) == 0) {
        CT_GUARD_RET(uri_parse(uri_or_label, u));
        CT_ENSURE_RET(u->secret == secret, ct_fail(CT_ERR_ARG, secret ? "a secret key's URI says type=secret-key"
                                                                       : "URI names a secret key, not a private key"));
        CT_ENSURE_RET(!u->has_token || strcmp(u->token, h->token_label) == 0,
                      ct_fail(CT_ERR_HSM_NO_TOKEN, "URI names token '%s', the open token is '%s'", u->token,
                              h->token_label));
        return CT_OK;
    }
    memset(u, 0, sizeof *u);
    CT_GUARD_RET(ct_strlcpy(u->object, sizeof u->object, uri_or_label));
    CT_ENSURE_RET(u->object[0], ct_fail(CT_ERR_ARG, "empty key label"));
    u->has_object = true;
    return CT_OK;
}

ct_err hsm_private_find_named(hsm *h, CK_SESSION_HANDLE s, CK_KEY_TYPE kt, const char *uri_or_label,
                              CK_OBJECT_HANDLE *out)
{
    hsm_uri u;
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    CT_GUARD_RET(key_name_parse(h, uri_or_label, false, &u));
    CT_GUARD_RET(hsm_keys_find(h, s, CKO_PRIVATE_KEY, kt, u.has_object ? u.object : NULL, u.id, u.id_len, found,
                               &count));
    CT_ENSURE_RET(count > 0, ct_fail(CT_ERR_HSM_NO_KEY, "no private %s key '%s' in token '%s'",
                                     kt == CKK_EC ? "EC" : "Ed25519", u.object, h->token_label));
    CT_ENSURE_RET(count == 1, ct_fail(CT_ERR_HSM, "key '%s' is ambiguous in token '%s'", u.object, h->token_label));
    *out = found[0];
    return CT_OK;
}

ct_err hsm_key_find(hsm *h, const char *uri_or_label, hsm_key **out)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    CT_ENSURE(h && uri_or_label && out, CT_ERR_ARG);
    *out = NULL;
    s = hsm_session_get(h);
    CT_GUARD(hsm_private_find_named(h, s, CKK_EC, uri_or_label, &priv));
    CT_GUARD(key_load(h, s, priv, out));
cleanup:
    if (s != CK_INVALID_HANDLE) hsm_session_put(h, s);
    return rc;
}

/* Percent-encodes all but RFC 3986 unreserved characters (always all for binary ids). */
static ct_err pct_encode(ct_buf *b, const uint8_t *p, size_t n, bool all)
{
    for (size_t i = 0; i < n; i++) {
        int c = p[i];
        bool plain = !all && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                              c == '-' || c == '.' || c == '_' || c == '~');
        CT_GUARD_RET(plain ? ct_buf_append(b, &p[i], 1) : ct_buf_appendf(b, "%%%02X", c));
    }
    return CT_OK;
}

ct_err hsm_key_uri(const hsm_key *k, char *out, size_t out_max)
{
    if (!k || !out || out_max == 0) return CT_ERR_ARG;
    ct_buf b = {(uint8_t *)out, 0, out_max}; /* writes straight into the caller's array; never freed */
    const char *s;
    CT_GUARD_RET(ct_buf_append(&b, "pkcs11:token=", 13));
    CT_GUARD_RET(pct_encode(&b, (const uint8_t *)k->h->token_label, strlen(k->h->token_label), false));
    CT_GUARD_RET(ct_buf_append(&b, ";object=", 8));
    CT_GUARD_RET(pct_encode(&b, (const uint8_t *)k->label, strlen(k->label), false));
    CT_GUARD_RET(ct_buf_append(&b, ";id=", 4));
    CT_GUARD_RET(pct_encode(&b, k->id, k->id_len, true));
    CT_GUARD_RET(ct_buf_append(&b, ";type=private", 13));
    return ct_buf_cstr(&b, &s);
}

ct_err hsm_key_made_inside(const hsm_key *k, bool *inside)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_BBOOL local = CK_FALSE, never_extractable = CK_FALSE, always_sensitive = CK_FALSE, extractable = CK_TRUE;
    CK_ATTRIBUTE a[] = {{CKA_LOCAL, &local, sizeof local},
                        {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof never_extractable},
                        {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof always_sensitive},
                        {CKA_EXTRACTABLE, &extractable, sizeof extractable}};
    CT_ENSURE(k && inside, CT_ERR_ARG);
    *inside = false;
    s = hsm_session_get(k->h);
    HSM_CK(k->h->f->C_GetAttributeValue(s, k->priv, a, sizeof a / sizeof a[0]), "C_GetAttributeValue");
    *inside = local == CK_TRUE && never_extractable == CK_TRUE && always_sensitive == CK_TRUE &&
              extractable == CK_FALSE;
cleanup:
    if (s != CK_INVALID_HANDLE) hsm_session_put(k->h, s);
    return rc;
}

hsm_key_type hsm_key_get_type(const hsm_key *k) { return k ? k->type : (hsm_key_type)0; }
const char *hsm_key_label(const hsm_key *k) { return k ? k->label : ""; }

void hsm_key_free(hsm_key *k)
{
    if (!k) return;
    CK_OBJECT_HANDLE copy = atomic_load(&k->pub_session);
    if (copy != CK_INVALID_HANDLE) { /* its hsm is still open: keys are freed before their hsm */
        CK_SESSION_HANDLE s = hsm_session_get(k->h);
        k->h->f->C_DestroyObject(s, copy);
        hsm_session_put(k->h, s);
    }
    ct_wipe(k, sizeof *k);
    free(k);
}

ct_err hsm_key_destroy(hsm *h, hsm_key *k)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CT_ENSURE(h && k && k->h == h, CT_ERR_ARG);
    hsm_wolf_forget(h, k);
    s = hsm_session_get(h);
    HSM_CK(h->f->C_DestroyObject(s, k->priv), "C_DestroyObject(private)");
    if (k->pub != CK_INVALID_HANDLE) HSM_CK(h->f->C_DestroyObject(s, k->pub), "C_DestroyObject(public)");
cleanup:
    if (s != CK_INVALID_HANDLE) hsm_session_put(h, s);
    hsm_key_free(k);
    return rc;
}

/* ---------------- operations with the key inside the token ---------------- */

ct_err hsm_sign_der(hsm *h, CK_OBJECT_HANDLE priv, hsm_key_type type, const uint8_t *digest, size_t digest_len,
                    uint8_t *sig, size_t *sig_len)
{
    ct_err rc = CT_OK;
    CT_ENSURE(h && digest && sig && sig_len, CT_ERR_ARG);
    CT_ENSURE_MSG(digest_len > 0 && digest_len <= HSM_DIGEST_MAX, CT_ERR_ARG, "digest of %zu bytes", digest_len);
    uint8_t rs[2 * 48];
    CK_ULONG rs_len = sizeof rs;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_SESSION_HANDLE s = hsm_session_get(h);
    CK_RV rv = h->f->C_SignInit(s, &mech, priv);
    if (rv == CKR_OK) rv = h->f->C_Sign(s, (CK_BYTE_PTR)digest, (CK_ULONG)digest_len, rs, &rs_len);
    hsm_session_put(h, s);
    CT_ENSURE_MSG(rv == CKR_OK, CT_ERR_HSM, "ECDSA signing in the token failed: CKR 0x%lx", rv);
    size_t c = hsm_coord_size(type);
    CT_ENSURE_MSG(rs_len == 2 * c, CT_ERR_HSM, "token returned a %lu-byte signature", rs_len);
    word32 out_len = *sig_len > UINT32_MAX ? UINT32_MAX : (word32)*sig_len;
    int ret = wc_ecc_rs_raw_to_sig(rs, (word32)c, rs + c, (word32)c, sig, &out_len);
    CT_ENSURE_MSG(ret == 0, CT_ERR_CRYPTO, "encoding the signature failed: %d", ret);
    *sig_len = out_len;
cleanup:
    return rc;
}

ct_err hsm_key_sign_digest(hsm_key *k, const uint8_t *digest, size_t digest_len, uint8_t *sig, size_t *sig_len)
{
    if (!k) return CT_ERR_ARG;
    return hsm_sign_der(k->h, k->priv, k->type, digest, digest_len, sig, sig_len);
}

/* CKM_ECDSA verify with the public key object `pub` on session `s`. The DER signature becomes r || s, each
 * left-padded to the coordinate size; a malformed one is simply not valid. */
static ct_err verify_on(hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, hsm_key_type type, const uint8_t *digest,
                        size_t digest_len, const uint8_t *sig_der, size_t sig_len, bool *valid)
{
    ct_err rc = CT_OK;
    size_t c = hsm_coord_size(type);
    uint8_t r[48 + 1], sv[48 + 1], rs[2 * 48];
    word32 r_len = sizeof r, s_len = sizeof sv;
    *valid = false;
    CT_ENSURE_MSG(digest_len > 0 && digest_len <= HSM_DIGEST_MAX, CT_ERR_ARG, "digest of %zu bytes", digest_len);
    if (sig_len > 2 * (48 + 8) || wc_ecc_sig_to_rs(sig_der, (word32)sig_len, r, &r_len, sv, &s_len) != 0 ||
        r_len > c || s_len > c || r_len == 0 || s_len == 0)
        goto cleanup;
    memset(rs, 0, 2 * c);
    memcpy(rs + c - r_len, r, r_len);
    memcpy(rs + 2 * c - s_len, sv, s_len);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    HSM_CK(h->f->C_VerifyInit(s, &mech, pub), "C_VerifyInit");
    CK_RV rv = h->f->C_Verify(s, (CK_BYTE_PTR)digest, (CK_ULONG)digest_len, rs, (CK_ULONG)(2 * c));
    CT_ENSURE_MSG(rv == CKR_OK || rv == CKR_SIGNATURE_INVALID || rv == CKR_SIGNATURE_LEN_RANGE, CT_ERR_HSM,
                  "C_Verify failed: CKR 0x%lx", rv);
    *valid = rv == CKR_OK;
cleanup:
    return rc;
}

/* A session object (CKA_TOKEN false, CKA_VERIFY only) holding a public key: the token verifies with its own
 * (OpenSSL) code, some 2-5x faster here than the Debian wolfSSL's generic ECC math with a fresh key. */
static ct_err pub_session_object(hsm *h, CK_SESSION_HANDLE s, hsm_key_type type, const uint8_t *point,
                                 size_t point_len, CK_OBJECT_HANDLE *pub)
{
    ct_err rc = CT_OK;
    CT_ENSURE_MSG(point_len == 1 + 2 * hsm_coord_size(type) && point[0] == 0x04, CT_ERR_ARG, "EC point of %zu bytes",
                  point_len);
    /* CKA_EC_POINT is the DER OCTET STRING around the point (at most 97 bytes: a one-byte length). */
    uint8_t ec_point[2 + HSM_EC_POINT_MAX];
    ec_point[0] = 0x04;
    ec_point[1] = (uint8_t)point_len;
    memcpy(ec_point + 2, point, point_len);
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    const uint8_t *params = type == HSM_EC_P384 ? OID_P384 : OID_P256;
    CK_ULONG params_len = type == HSM_EC_P384 ? sizeof OID_P384 : sizeof OID_P256;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &no, sizeof no},
        {CKA_VERIFY, &yes, sizeof yes},
        {CKA_EC_PARAMS, (CK_VOID_PTR)params, params_len},
        {CKA_EC_POINT, ec_point, (CK_ULONG)(point_len + 2)},
    };
    HSM_CK(h->f->C_CreateObject(s, tmpl, sizeof tmpl / sizeof tmpl[0], pub), "C_CreateObject (public key)");
cleanup:
    return rc;
}

/* The CSR's key: a short-lived session object destroyed before returning (each request brings a key of its own). */
ct_err hsm_verify_digest(hsm *h, hsm_key_type type, const uint8_t *point, size_t point_len, const uint8_t *digest,
                         size_t digest_len, const uint8_t *sig_der, size_t sig_len, bool *valid)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    CT_ENSURE(h && point && digest && sig_der && valid, CT_ERR_ARG);
    *valid = false;
    s = hsm_session_get(h);
    CT_GUARD(pub_session_object(h, s, type, point, point_len, &pub));
    CT_GUARD(verify_on(h, s, pub, type, digest, digest_len, sig_der, sig_len, valid));
cleanup:
    if (pub != CK_INVALID_HANDLE) h->f->C_DestroyObject(s, pub);
    if (s != CK_INVALID_HANDLE) hsm_session_put(h, s);
    return rc;
}

/* k's public key as a session object (made once; public, so a copy gives nothing away), or its token object when
 * the copy cannot be made. */
static CK_OBJECT_HANDLE verify_handle(hsm_key *k, CK_SESSION_HANDLE s)
{
    CK_OBJECT_HANDLE have = atomic_load(&k->pub_session);
    if (have != CK_INVALID_HANDLE) return have;
    CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
    if (pub_session_object(k->h, s, k->type, k->point, k->point_len, &made) != CT_OK) return k->pub;
    if (!atomic_compare_exchange_strong(&k->pub_session, &have, made)) k->h->f->C_DestroyObject(s, made); /* lost */
    return atomic_load(&k->pub_session);
}

ct_err hsm_key_verify_digest(hsm_key *k, const uint8_t *digest, size_t digest_len, const uint8_t *sig_der,
                             size_t sig_len, bool *valid)
{
    if (!k || !digest || !sig_der || !valid) return CT_ERR_ARG;
    CK_SESSION_HANDLE s = hsm_session_get(k->h);
    CK_OBJECT_HANDLE pub = verify_handle(k, s);
    ct_err rc = verify_on(k->h, s, pub, k->type, digest, digest_len, sig_der, sig_len, valid);
    /* The copy lives with the session that made it: should that session be gone, the token object answers. */
    if (rc != CT_OK && pub != k->pub) rc = verify_on(k->h, s, k->pub, k->type, digest, digest_len, sig_der, sig_len, valid);
    hsm_session_put(k->h, s);
    return rc;
}

ct_err hsm_ecdh_raw(hsm *h, CK_OBJECT_HANDLE priv, hsm_key_type type, const uint8_t *peer_point, size_t peer_len,
                    uint8_t *out, size_t *out_len)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE secret = CK_INVALID_HANDLE;
    CT_ENSURE(h && peer_point && out && out_len, CT_ERR_ARG);
    CT_ENSURE_MSG(peer_len == 1 + 2 * hsm_coord_size(type), CT_ERR_ARG, "peer point of %zu bytes", peer_len);
    CK_ECDH1_DERIVE_PARAMS params = {CKD_NULL, 0, NULL, (CK_ULONG)peer_len, (CK_BYTE_PTR)peer_point};
    CK_MECHANISM mech = {CKM_ECDH1_DERIVE, &params, sizeof params};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG value_len = (CK_ULONG)hsm_coord_size(type);
    /* A short-lived session object that we may read: the shared secret leaves the token by design. */
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},         {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &no, sizeof no},           {CKA_SENSITIVE, &no, sizeof no},
        {CKA_EXTRACTABLE, &yes, sizeof yes},   {CKA_VALUE_LEN, &value_len, sizeof value_len},
    };
    s = hsm_session_get(h);
    HSM_CK(h->f->C_DeriveKey(s, &mech, priv, tmpl, sizeof tmpl / sizeof tmpl[0], &secret), "C_DeriveKey");
    CT_GUARD(attr_get(h, s, secret, CKA_VALUE, out, *out_len, out_len));
cleanup:
    if (secret != CK_INVALID_HANDLE) h->f->C_DestroyObject(s, secret);
    if (s != CK_INVALID_HANDLE) hsm_session_put(h, s);
    return rc;
}

/* ---------------- key names, for every kind of key ---------------- */

ct_err hsm_uri_secret(const hsm *h, const char *uri_or_label, char label[HSM_LABEL_MAX + 1], uint8_t id[HSM_ID_MAX],
                      size_t *id_len)
{
    hsm_uri u;
    CT_ENSURE_RET(h && uri_or_label && label && id && id_len, CT_ERR_ARG);
    CT_GUARD_RET(key_name_parse(h, uri_or_label, true, &u));
    memcpy(label, u.object, sizeof u.object);
    memcpy(id, u.id, u.id_len);
    *id_len = u.id_len;
    return CT_OK;
}
