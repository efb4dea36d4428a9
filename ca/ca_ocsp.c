/* Serving revocation: the CRLs kept in memory (GET /crl: the device issuing CA's; GET /crl/ops: the operations
 * issuing CA's, revoked viewers) and the OCSP responder (RFC 6960, GET and POST /ocsp) for every generation of
 * both issuing CAs.
 *
 * Speed: the answer for one certificate without a nonce stays the same until the certificate is revoked or
 * the answer nears its nextUpdate, so it is signed once in the token, kept, and sent again as it is (RFC 6960
 * allows pre-produced responses). An answer with a nonce, or for several certificates, is signed per request.
 * Every signature (those, answers for an unknown serial, and the first of a kept answer: the client picks the CertID,
 * among the many the log's serials give) is within a budget per client address (ocsp.signatures_per_minute, an
 * IPv6 client by its /64): one address made the token sign ~1,200 a second and tripled enrollment latency. Past it
 * a kept answer is still sent, its nonce left out (RFC 8954 3: a responder may ignore the nonce); anything else
 * gets tryLater (RFC 6960 2.3); either is counted as a refusal of that address (ca_refusals.c).
 * Revocations, made by this process or another, move the database's revocation epoch; requests notice within
 * CA_REVOCATION_POLL_MS, and then the CRL is re-signed and every kept answer is checked again before it is next sent:
 * its certificate's status looked up once (no signature), the answer sent and current again when unchanged, signed
 * anew (within the budget) when not. A revocation of one camera so costs the others behind one address no signature
 * (one revocation made all of them ask the token again, and most of a NAT's boot storm got tryLater). An epoch that
 * cannot be read drops every kept answer (nothing to check them against).
 * Several nodes: every node signs its own OCSP answers (so a revocation on any node is in every node's OCSP answers
 * within CA_REVOCATION_POLL_MS), but only the holder of the signer lease signs CRLs (ca_lease.c), and stores each in
 * the database; the other nodes serve the stored one, and answer 503 rather than a CRL that still lacks a
 * revocation ca_crl_stale_ms after they saw it. Whoever can write the database can put back an older CRL the
 * signer really signed (from before a revocation): a stored CRL is served or adopted only when its DER agrees with
 * what this node knows (crl_consistent). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define HOUR_SECONDS 3600
#define OCSP_PROBES 8
#define OCSP_CERT_ID_MAX 128
#define OCSP_BUDGET_SLOTS 4096 /* client addresses whose budget is kept: a power of two */
#define OCSP_BUDGET_PROBES 8
#define OCSP_REQUEST_TYPE "application/ocsp-request"
#define OCSP_RESPONSE_TYPE "application/ocsp-response"

typedef struct {
    uint64_t hash;
    /* The generation (ca_revocation.generation) read before its status was last looked up: the current one, sent as
     * kept; an older one, checked again first; below ca_revocation.kept_from (0: empty), dropped. */
    uint64_t checked;
    uint64_t claimed; /* the generation in which a request took on checking it again: one look-up per generation */
    time_t refresh_at;
    pki_ocsp_single status; /* as looked up (its cert_id unused: cert_id below) */
    uint8_t cert_id[OCSP_CERT_ID_MAX];
    size_t cert_id_len;
    ct_buf response;
} ocsp_slot;

/* One client address's budget of signatures (ocsp.signatures_per_minute) as a token bucket kept as the time it is
 * full again (GCRA): a slot never used (0) and a full bucket are alike, so taking one's slot loses nothing. */
typedef struct {
    ca_addr_key key;
    int64_t full_at_us; /* monotonic */
} ocsp_budget;

/* The OCSP answers of one issuing CA generation: the current device one's by the delegated responder (its
 * certificate, then the issuer; the device issuing CA certifies it), every other one's by that generation's own
 * key (RFC 6960 2.2 and 4.2.2.2: the CA that issued the certificate; a delegated responder must be certified by
 * that same CA, so the OCSP key cannot answer for the operations issuing CA's stations, officers and viewers). */
typedef struct {
    const ca_generation *g;
    pki_cert_ids responder_ids;
    pki_ocsp_responder responder;
    const uint8_t *certs[2];
    size_t cert_lens[2];
} ocsp_gen;

struct ca_revocation {
    pthread_mutex_t mu; /* the CRLs, the epoch, and when the epoch was last read */
    ct_buf crl[CA_GENERATIONS_MAX]; /* by index in c->gens: each generation's CRL, made when first asked for */
    time_t crl_refresh_at[CA_GENERATIONS_MAX];
    int64_t crl_epoch[CA_GENERATIONS_MAX]; /* the revocation epoch each kept CRL covers */
    uint64_t crl_number[CA_GENERATIONS_MAX];    /* the highest cRLNumber this node signed or served, per generation */
    int64_t crl_lacking_ms[CA_GENERATIONS_MAX]; /* monotonic ms it first found the CRL it served lacking one; 0: not */
    bool crl_refused[CA_GENERATIONS_MAX];       /* the stored CRL was refused at the last look (logged once) */
    /* The revocation epoch at which the kept CRL was last found wholly consistent, and its nextUpdate: while both
     * hold and the stored bytes are the kept ones, a request serves it without verifying it again. */
    int64_t crl_judged_epoch[CA_GENERATIONS_MAX];
    time_t crl_judged_until[CA_GENERATIONS_MAX];
    int64_t epoch_seen_ms;          /* monotonic time this node first read `epoch` */
    int first_device;               /* the index of the first device generation: GET /crl (its certificates' DP) */
    _Atomic int64_t epoch;          /* the epoch the CRLs follow: read_epoch's, taken over under mu */
    /* The epoch as last read from the database, by its own lock: a revocation reaches the OCSP answers within
     * CA_REVOCATION_POLL_MS even while mu is held for long (a CRL signed or judged). */
    pthread_mutex_t epoch_mu;
    _Atomic int64_t read_epoch;
    _Atomic int64_t read_epoch_seen_ms;
    _Atomic int64_t checked_ms;    /* monotonic time of the last epoch read: peeked at without the lock */
    bool mu_ok, cache_lock_ok, epoch_mu_ok;
    ocsp_gen gens[CA_GENERATIONS_MAX]; /* both kinds' generations: whose certificates this responder answers for */
    size_t n_gens;
    pthread_rwlock_t cache_lock;
    ocsp_slot *slots;
    size_t n_slots;          /* a power of two, or 0: nothing is kept */
    uint8_t cache_secret[CA_HASH_SECRET_SIZE]; /* where a CertID's answer goes (ca_keyed_hash) */
    uint64_t generation;     /* under cache_lock: one more each time the epoch moved or could not be read */
    uint64_t kept_from;      /* under cache_lock: answers checked in an older generation are dropped (epoch unread) */
    pthread_mutex_t budget_mu;
    bool budget_mu_ok;
    ocsp_budget *budgets;    /* OCSP_BUDGET_SLOTS, under budget_mu */
    uint8_t budget_secret[CA_HASH_SECRET_SIZE]; /* where an address's budget goes (ca_addr_key_hash) */
};

/* ---- the CRL and the revocation epoch ---- */

/* The signer: signs generation `gen`'s CRL and keeps it, in memory and (serving) in the database for the other
 * nodes. Under r->mu, with r->epoch read before the CRL lists what is revoked. */
static ct_err crl_refresh(ca *c, int gen)
{
    ca_revocation *r = c->rev;
    ct_buf der = CT_BUF_INIT;
    time_t next = 0, now = time(NULL);
    int64_t epoch = r->epoch, number = 0;
    CT_GUARD_RET(ca_crl_make_gen(c, &c->gens[gen], CA_SERVER_ACTOR, &der, &next, &number));
    ct_buf_free(&r->crl[gen]);
    r->crl[gen] = der;
    r->crl_refresh_at[gen] = now + (next - now) / 2;
    r->crl_epoch[gen] = epoch;
    if ((uint64_t)number > r->crl_number[gen]) r->crl_number[gen] = (uint64_t)number;
    if (!c->lease) return CT_OK;
    db_lease_request lease;
    ca_lease_request(c, &lease);
    db_signed_crl kept = {.issuing_ca = c->gens[gen].id, .epoch = epoch, .next_update = (int64_t)next, .number = number,
                          .this_update = (int64_t)next - (int64_t)c->cfg.crl_hours * HOUR_SECONDS, .der = der};
    return db_crl_signed_put(c->db, &lease, &kept);
}

/* Whether a stored CRL (written by whoever can write the database) may be served or adopted as generation `gen`'s,
 * judged on its DER against what this node knows rather than on the row's columns (ca_crl_judge): signed by that
 * generation's key, its cRLNumber not below the highest this node signed or served, not past its nextUpdate, listing
 * every certificate of that generation the database shows revoked (what the OCSP answers say), and its thisUpdate not
 * before the newest of those revocations (give or take the nodes' clock agreement, a lease). With `grace`, the very
 * CRL this node served already stays served for ca_crl_stale_ms after it first lacked a revocation (the signer
 * re-signs within a tick). CT_ERR_UNAVAILABLE naming why. Under r->mu. */
static ct_err crl_consistent(ca *c, int gen, const ct_buf *der, bool grace, pki_crl_info *info)
{
    ca_revocation *r = c->rev;
    ca_crl_judged j;
    ca_thread_crypto_cache_track(); /* the verification below, on a request thread or the lease thread */
    CT_GUARD_RET(ca_crl_judge(c, &c->gens[gen], der, 0, &j));
    *info = j.info;
    CT_ENSURE_RET(info->number >= r->crl_number[gen],
                  ct_fail(CT_ERR_UNAVAILABLE, "the stored CRL is number %llu, older than number %llu this node served "
                          "(an older CRL put back)", (unsigned long long)info->number,
                          (unsigned long long)r->crl_number[gen]));
    CT_ENSURE_RET(info->next_update > time(NULL),
                  ct_fail(CT_ERR_UNAVAILABLE, "the kept CRL is past its nextUpdate (no signer node is running)"));
    if (!j.lacking[0] && info->this_update + (time_t)(c->cfg.lease_ms / 1000) >= j.newest) {
        r->crl_lacking_ms[gen] = 0;
        return CT_OK;
    }
    int64_t now = ct_now_ms();
    if (!r->crl_lacking_ms[gen]) r->crl_lacking_ms[gen] = now;
    /* From when this node first saw the revocation, or (an epoch moved on by someone else since) first saw the CRL
     * lacking it: no later. */
    int64_t behind_ms = now - (r->crl_lacking_ms[gen] < r->epoch_seen_ms ? r->crl_lacking_ms[gen] : r->epoch_seen_ms);
    bool served = grace && r->crl_number[gen] && info->number == r->crl_number[gen];
    if (served && behind_ms <= ca_crl_stale_ms(c)) return CT_OK;
    if (served)
        return ct_fail(CT_ERR_UNAVAILABLE, "the kept CRL lacks revocations made %lld ms ago (no signer node re-signed "
                       "it)", (long long)behind_ms);
    if (j.lacking[0])
        return ct_fail(CT_ERR_UNAVAILABLE, "the stored CRL (number %llu) does not list certificate %s, revoked",
                       (unsigned long long)info->number, j.lacking);
    return ct_fail(CT_ERR_UNAVAILABLE, "the stored CRL (number %llu) was signed before the newest revocation",
                   (unsigned long long)info->number);
}

static void crl_refusal_log(const ca *c, int gen, const char *then)
{
    ct_log(CT_LOG_WARN, "crl_refused", "generation=%lld kind=%s error=%s then=%s", (long long)c->gens[gen].generation,
           c->gens[gen].kind == CA_CRL_OPS ? "ops" : "device", CT_LOGQ(ct_err_detail()), then);
}

/* Whether `der` is the CRL this node keeps for generation `gen` (made or served by it). */
static bool crl_is_kept(const ca_revocation *r, int gen, const ct_buf *der)
{
    return der->len == r->crl[gen].len && (!der->len || memcmp(der->data, r->crl[gen].data, der->len) == 0);
}

/* Another node: the CRL the signer stored, when consistent (above); else CT_ERR_UNAVAILABLE, the caller answers
 * 503, and one line is logged until one is. Under r->mu. */
static ct_err crl_load(ca *c, int gen)
{
    ca_revocation *r = c->rev;
    db_signed_crl kept;
    pki_crl_info info;
    ct_err rc = db_crl_signed_get(c->db, c->gens[gen].id, &kept);
    if (rc == CT_ERR_NOT_FOUND) rc = db_crl_signed_want(c->db, c->gens[gen].id);
    CT_GUARD_RET(rc);
    CT_ENSURE_RET(!kept.wanted && kept.der.len,
                  ct_fail(CT_ERR_UNAVAILABLE, "this CRL is not signed yet: the signer node signs it within %lld ms",
                          (long long)ca_lease_tick_ms(c)));
    if (crl_is_kept(r, gen, &kept.der) && r->crl_judged_epoch[gen] == r->epoch &&
        time(NULL) < r->crl_judged_until[gen]) {
        ct_buf_free(&kept.der); /* judged already at this epoch: no verification on every request */
        return CT_OK;
    }
    rc = crl_consistent(c, gen, &kept.der, true, &info);
    if (rc != CT_OK) {
        if (!r->crl_refused[gen]) crl_refusal_log(c, gen, "503");
        r->crl_refused[gen] = true;
        ct_buf_free(&kept.der);
        return rc;
    }
    r->crl_refused[gen] = false;
    r->crl_number[gen] = info.number;
    r->crl_judged_epoch[gen] = r->crl_lacking_ms[gen] ? -1 : r->epoch; /* served in grace: judged again next time */
    r->crl_judged_until[gen] = info.next_update;
    ct_buf_free(&r->crl[gen]);
    r->crl[gen] = kept.der;
    r->crl_epoch[gen] = kept.epoch;
    return CT_OK;
}

/* The CRL of generation `gen` as this node serves it: signed when due or stale (the signer), else as stored. */
static ct_err crl_current(ca *c, int gen)
{
    ca_revocation *r = c->rev;
    if (!ca_lease_held(c)) return crl_load(c, gen);
    if (time(NULL) >= r->crl_refresh_at[gen] || r->crl_epoch[gen] < r->epoch) return crl_refresh(c, gen);
    return CT_OK;
}

/* Reads the revocation epoch (at most every CA_REVOCATION_POLL_MS unless `now`) under epoch_mu alone; when it
 * moved, every kept OCSP answer is checked again before it is next sent; when it could not be read, every one is
 * dropped at once. True when it read. */
static bool epoch_poll(ca *c, int64_t t, bool now)
{
    ca_revocation *r = c->rev;
    if (!now && t - atomic_load(&r->checked_ms) < CA_REVOCATION_POLL_MS) return false;
    if (pthread_mutex_lock(&r->epoch_mu) != 0) return false;
    bool read = now || t - atomic_load(&r->checked_ms) >= CA_REVOCATION_POLL_MS; /* not by another thread meanwhile */
    int64_t epoch = 0;
    if (read) {
        atomic_store(&r->checked_ms, t);
        ct_err rc = ct_failpoint_hit("ocsp:epoch-read-fails") ? ct_fail(CT_ERR_DB, "cannot read the epoch (failpoint)")
                                                               : db_revocation_epoch(c->db, &epoch);
        if (rc != CT_OK)
            ct_log(CT_LOG_ERROR, "revocation_refresh", "error=%s", CT_LOGQ(*ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
        /* Unread, a revocation (another node's, or this one's just made) may have moved it: the kept answers are
         * dropped too, else a revoked camera's kept 'good' was sent for as long as the database stayed unread. */
        bool moved = rc == CT_OK && epoch != atomic_load(&r->read_epoch);
        if (rc != CT_OK || moved) {
            (void)pthread_rwlock_wrlock(&r->cache_lock);
            r->generation++;
            if (rc != CT_OK) r->kept_from = r->generation;
            (void)pthread_rwlock_unlock(&r->cache_lock);
        }
        if (moved) {
            atomic_store(&r->read_epoch_seen_ms, t);
            atomic_store(&r->read_epoch, epoch);
        }
    }
    (void)pthread_mutex_unlock(&r->epoch_mu);
    return read;
}

/* The CRLs take over the epoch read last: when it moved, each is re-signed (the signer) or judged again. Under mu. */
static bool epoch_follow(ca_revocation *r, size_t n_gens)
{
    int64_t epoch = atomic_load(&r->read_epoch);
    if (epoch == r->epoch) return false;
    r->epoch = epoch;
    r->epoch_seen_ms = atomic_load(&r->read_epoch_seen_ms);
    for (size_t i = 0; i < n_gens; i++) r->crl_refresh_at[i] = 0;
    return true;
}

/* The epoch (above), then the CRLs follow it, as when the CRL nears its nextUpdate. The CRL part is skipped while
 * another thread holds it (a CRL being signed or judged), unless `now`; the OCSP answers never wait for it. */
static void refresh(ca *c, bool now)
{
    ca_revocation *r = c->rev;
    int64_t t = ct_now_ms();
    bool read = epoch_poll(c, t, now);
    if (!read && !now && atomic_load(&r->read_epoch) == atomic_load(&r->epoch)) return; /* nothing to follow */
    if (now) {
        if (pthread_mutex_lock(&r->mu) != 0) return;
    } else if (pthread_mutex_trylock(&r->mu) != 0) {
        return;
    }
    if (epoch_follow(r, c->n_gens)) ct_failpoint_hold("revocation:follow"); /* tests: a thread holding mu */
    /* The first device CRL (GET /crl) is kept ready for the many cameras' clients; the others are made when asked
     * (and by the signer's tick, for the other nodes). */
    ct_err rc = CT_OK;
    if (ca_lease_held(c) && time(NULL) >= r->crl_refresh_at[r->first_device]) rc = crl_refresh(c, r->first_device);
    if (rc != CT_OK) ct_log(CT_LOG_ERROR, "revocation_refresh", "error=%s", CT_LOGQ(*ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
    (void)pthread_mutex_unlock(&r->mu);
}

void ca_revocation_changed(ca *c)
{
    if (c && c->rev) refresh(c, true);
}

/* The signer's tick, for a CRL it did not make itself: the one the previous signer stored becomes its own (re-signed
 * below when due or stale); one asked for (db_crl_signed_want) is signed below. False when no node serves or
 * asked for it: nothing to sign. Under r->mu. */
static bool crl_adopt(ca *c, int gen)
{
    ca_revocation *r = c->rev;
    db_signed_crl kept;
    pki_crl_info info;
    if (db_crl_signed_get(c->db, c->gens[gen].id, &kept) != CT_OK) return false;
    r->crl_refresh_at[gen] = 1; /* asked for, or not consistent: signed anew below, nothing taken from the row */
    if (kept.wanted) return true;
    if (crl_consistent(c, gen, &kept.der, false, &info) != CT_OK) {
        if (!crl_is_kept(r, gen, &kept.der)) crl_refusal_log(c, gen, "re-sign"); /* its own lacking one: no news */
        ct_buf_free(&kept.der);
        return true;
    }
    r->crl_number[gen] = info.number;
    ct_buf_free(&r->crl[gen]);
    r->crl[gen] = kept.der;
    r->crl_epoch[gen] = r->epoch; /* it lists what the database showed revoked after this node read the epoch */
    /* re-signed at half its validity, as the signer's own: nextUpdate - crl.validity_hours / 2 */
    r->crl_refresh_at[gen] = info.next_update - (time_t)c->cfg.crl_hours * HOUR_SECONDS / 2;
    return true;
}

/* The signer's tick, for a CRL it made: true (logged) when the stored one is no longer that one (someone who can
 * write the database replaced it): the other nodes refuse it until it is signed and stored anew. Under r->mu. */
static bool crl_replaced(ca *c, int gen)
{
    ca_revocation *r = c->rev;
    db_signed_crl kept;
    if (db_crl_signed_get(c->db, c->gens[gen].id, &kept) != CT_OK) return false;
    bool replaced = !crl_is_kept(r, gen, &kept.der);
    ct_buf_free(&kept.der);
    if (replaced)
        ct_log(CT_LOG_WARN, "crl_replaced", "generation=%lld kind=%s then=re-sign", (long long)c->gens[gen].generation,
               c->gens[gen].kind == CA_CRL_OPS ? "ops" : "device");
    return replaced;
}

void ca_revocation_sign_due(ca *c)
{
    ca_revocation *r = c ? c->rev : NULL;
    if (!r) return;
    refresh(c, true);
    if (pthread_mutex_lock(&r->mu) != 0) return;
    for (size_t i = 0; i < c->n_gens && ca_lease_held(c); i++) {
        if (!r->crl_refresh_at[i]) {
            if (!crl_adopt(c, (int)i)) continue; /* no node serves it yet */
        } else if (r->crl_refresh_at[i] > 1 && crl_replaced(c, (int)i)) {
            r->crl_refresh_at[i] = 1;
        }
        if (time(NULL) < r->crl_refresh_at[i] && r->crl_epoch[i] >= r->epoch) continue;
        ct_err rc = crl_refresh(c, (int)i);
        if (rc != CT_OK)
            ct_log(CT_LOG_ERROR, "crl_sign", "generation=%lld error=%s", (long long)c->gens[i].generation,
                   CT_LOGQ(*ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
    }
    (void)pthread_mutex_unlock(&r->mu);
}

ct_err ca_revocation_start(ca *c)
{
    ct_err rc = CT_OK;
    ca_revocation *r = calloc(1, sizeof *r);
    CT_ENSURE_RET(r, CT_ERR_NOMEM);
    c->rev = r;
    r->mu_ok = pthread_mutex_init(&r->mu, NULL) == 0;
    r->epoch_mu_ok = pthread_mutex_init(&r->epoch_mu, NULL) == 0;
    r->cache_lock_ok = pthread_rwlock_init(&r->cache_lock, NULL) == 0;
    r->budget_mu_ok = pthread_mutex_init(&r->budget_mu, NULL) == 0;
    CT_ENSURE_MSG(r->mu_ok && r->epoch_mu_ok && r->cache_lock_ok && r->budget_mu_ok, CT_ERR_INTERNAL,
                  "cannot create the revocation locks");
    r->budgets = calloc(OCSP_BUDGET_SLOTS, sizeof *r->budgets);
    CT_ENSURE(r->budgets, CT_ERR_NOMEM);
    CT_GUARD(ct_random(r->budget_secret, sizeof r->budget_secret));
    CT_GUARD(ct_random(r->cache_secret, sizeof r->cache_secret));
    r->generation = r->kept_from = 1;
    const ca_signer *ocsp = &c->signers[CA_KEY_OCSP];
    r->first_device = -1;
    for (size_t i = 0; i < c->n_gens; i++) {
        const ca_generation *g = &c->gens[i];
        if (g->kind == CA_CRL_DEVICE && r->first_device < 0) r->first_device = (int)i;
        ocsp_gen *o = &r->gens[r->n_gens++];
        o->g = g;
        if (ocsp->key && (int)i == c->current[CA_CRL_DEVICE]) { /* a delegated responder: it, then its issuer */
            CT_GUARD(pki_cert_ids_get(ocsp->cert_der.data, ocsp->cert_der.len, &o->responder_ids));
            o->certs[0] = ocsp->cert_der.data, o->cert_lens[0] = ocsp->cert_der.len;
            o->certs[1] = g->s.cert_der.data, o->cert_lens[1] = g->s.cert_der.len;
            o->responder = (pki_ocsp_responder){.key = ocsp->key, .n_certs = 2};
        } else {
            o->responder_ids = g->ids;
            o->certs[0] = g->s.cert_der.data, o->cert_lens[0] = g->s.cert_der.len;
            o->responder = (pki_ocsp_responder){.key = g->s.key, .n_certs = 1};
        }
        o->responder.ids = &o->responder_ids;
        o->responder.certs = o->certs;
        o->responder.cert_lens = o->cert_lens;
    }
    CT_ENSURE_MSG(r->first_device >= 0, CT_ERR_CONFIG, "no device issuing CA is installed");
    for (r->n_slots = c->cfg.ocsp_cache ? 1 : 0; r->n_slots && r->n_slots < (size_t)c->cfg.ocsp_cache;) r->n_slots *= 2;
    r->slots = calloc(r->n_slots ? r->n_slots : 1, sizeof *r->slots);
    CT_ENSURE(r->slots, CT_ERR_NOMEM);
    int64_t epoch = 0;
    CT_GUARD(db_revocation_epoch(c->db, &epoch));
    atomic_store(&r->epoch, epoch);
    r->epoch_seen_ms = ct_now_ms();
    atomic_store(&r->read_epoch, epoch);
    atomic_store(&r->read_epoch_seen_ms, r->epoch_seen_ms);
    atomic_store(&r->checked_ms, r->epoch_seen_ms);
    if (ca_lease_held(c)) CT_GUARD(crl_refresh(c, r->first_device));
cleanup:
    if (rc != CT_OK) ca_revocation_stop(c);
    return rc;
}

void ca_revocation_stop(ca *c)
{
    ca_revocation *r = c ? c->rev : NULL;
    if (!r) return;
    for (size_t i = 0; r->slots && i < r->n_slots; i++) ct_buf_free(&r->slots[i].response);
    free(r->slots);
    free(r->budgets);
    ct_wipe(r->budget_secret, sizeof r->budget_secret);
    ct_wipe(r->cache_secret, sizeof r->cache_secret);
    for (size_t i = 0; i < CA_GENERATIONS_MAX; i++) ct_buf_free(&r->crl[i]);
    if (r->cache_lock_ok) (void)pthread_rwlock_destroy(&r->cache_lock);
    if (r->mu_ok) (void)pthread_mutex_destroy(&r->mu);
    if (r->epoch_mu_ok) (void)pthread_mutex_destroy(&r->epoch_mu);
    if (r->budget_mu_ok) (void)pthread_mutex_destroy(&r->budget_mu);
    free(r);
    c->rev = NULL;
}

/* Which generation's CRL a path names: /crl and /crl/ops the first device and operations generations' (what
 * their certificates name), /crl/device/N and /crl/ops/N generation N's. */
static bool crl_path_parse(const ca *c, const char *path, int *gen)
{
    ca_crl_kind kind = CA_CRL_DEVICE;
    long long want = 1;
    const char *rest = NULL;
    if (strcmp(path, "/crl") == 0 || strcmp(path, "/crl/ops") == 0) {
        kind = path[4] ? CA_CRL_OPS : CA_CRL_DEVICE;
    } else if (strncmp(path, "/crl/device/", 12) == 0 || strncmp(path, "/crl/ops/", 9) == 0) {
        kind = path[5] == 'o' ? CA_CRL_OPS : CA_CRL_DEVICE;
        rest = path + (kind == CA_CRL_OPS ? 9 : 12);
        char *end = NULL;
        want = strtoll(rest, &end, 10);
        if (!*rest || *end || *rest == '0' || want < 1) return false;
    } else {
        return false;
    }
    *gen = ca_generation_find(c, kind, want);
    return *gen >= 0;
}

ct_err ca_crl_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    memset(ans, 0, sizeof *ans);
    ct_err_clear();
    CT_ENSURE_MSG(c->rev, CT_ERR_UNAVAILABLE, "the revocation service is not running");
    int gen = -1;
    CT_ENSURE_MSG(crl_path_parse(c, rq->path, &gen), CT_ERR_NOT_FOUND, "no such resource");
    CT_ENSURE_MSG(strcmp(rq->method, "GET") == 0, CT_ERR_METHOD, "%s takes GET", rq->path);
    refresh(c, true); /* CRL fetches are rare: always the latest */
    CT_ENSURE(pthread_mutex_lock(&c->rev->mu) == 0, CT_ERR_INTERNAL);
    const ct_buf *crl = &c->rev->crl[gen];
    rc = crl_current(c, gen);
    int64_t epoch = c->rev->crl_epoch[gen];
    if (rc == CT_OK) rc = ct_buf_alloc(&ans->body, crl->len);
    if (rc == CT_OK) rc = ct_buf_set(&ans->body, crl->data, crl->len);
    (void)pthread_mutex_unlock(&c->rev->mu);
    CT_GUARD(rc);
    ans->status = 200;
    ans->content_type = "application/pkix-crl";
    CT_GUARD(ct_snprintf(ans->reason, sizeof ans->reason, "crl epoch=%lld%s", (long long)epoch,
                         ca_lease_held(c) ? "" : " stored"));
cleanup:
    if (rc != CT_OK) ca_http_error(ans, rc);
    return rc;
}

/* ---- kept OCSP answers ---- */

/* An answer is kept within OCSP_PROBES slots of where its CertID goes under the cache's own secret (ca_keyed_hash).
 * Under a public hash (FNV-1a) anyone picked, among the serials the issuance log lists (each named by several
 * CertIDs: either hash, NULL or absent parameters, a spare leading zero), a few that all went where an honest
 * camera's answer is kept, and each round of them pushed it out: a signature in the token for each honest request,
 * within no budget (a known serial without a nonce). */

typedef enum { KEPT_NONE, KEPT_CURRENT, KEPT_TO_CHECK } ocsp_kept;

static bool same_status(const pki_ocsp_single *a, const pki_ocsp_single *b)
{
    return a->status == b->status && a->revoked_at == b->revoked_at && a->reason == b->reason;
}

/* The slot keeping an answer for this CertID (under the cache's hash `h`), not dropped nor due for refresh; NULL
 * when there is none. Under cache_lock. */
static ocsp_slot *slot_of(ca_revocation *r, uint64_t h, const pki_ocsp_cert_id *id, time_t now)
{
    for (size_t k = 0; k < OCSP_PROBES; k++) {
        ocsp_slot *s = &r->slots[(h + k) & (r->n_slots - 1)];
        if (s->checked >= r->kept_from && s->hash == h && s->cert_id_len == id->der_len && now < s->refresh_at &&
            memcmp(s->cert_id, id->der, id->der_len) == 0)
            return s;
    }
    return NULL;
}

/* Copies a kept answer for this CertID into `out`, its status into `was`: KEPT_CURRENT when its status was looked up
 * after the epoch last moved; KEPT_TO_CHECK when before, to the one request that takes on checking it again in this
 * generation (`*generation`: read before that look-up); else KEPT_NONE (none, or another request checks it). */
static ocsp_kept cache_get(ca_revocation *r, const pki_ocsp_cert_id *id, time_t now, ct_buf *out,
                           pki_ocsp_single *was, uint64_t *generation)
{
    if (!r->n_slots || id->der_len > OCSP_CERT_ID_MAX) return KEPT_NONE;
    uint64_t h = ca_keyed_hash(r->cache_secret, id->der, id->der_len);
    ocsp_kept got = KEPT_NONE;
    /* Read-locked; again write-locked only to take on a check (once per kept answer after a revocation). */
    for (bool write = false;; write = true) {
        if ((write ? pthread_rwlock_wrlock(&r->cache_lock) : pthread_rwlock_rdlock(&r->cache_lock)) != 0) break;
        ocsp_slot *s = slot_of(r, h, id, now);
        bool current = s && s->checked == r->generation;
        if (s && !current && !write) {
            (void)pthread_rwlock_unlock(&r->cache_lock);
            continue;
        }
        if (s && (current || s->claimed != r->generation) && ct_buf_alloc(out, s->response.len) == CT_OK &&
            ct_buf_set(out, s->response.data, s->response.len) == CT_OK) {
            if (!current) s->claimed = r->generation;
            got = current ? KEPT_CURRENT : KEPT_TO_CHECK;
            *was = s->status;
            *generation = r->generation;
        }
        (void)pthread_rwlock_unlock(&r->cache_lock);
        break;
    }
    if (got == KEPT_NONE) ct_buf_free(out);
    return got;
}

/* The answer kept for this CertID was checked again in `generation` and its status found to be `was` still: it is
 * current again (unless the epoch could not be read since). */
static void cache_checked(ca_revocation *r, const pki_ocsp_cert_id *id, uint64_t generation, time_t now,
                          const pki_ocsp_single *was)
{
    uint64_t h = ca_keyed_hash(r->cache_secret, id->der, id->der_len);
    if (pthread_rwlock_wrlock(&r->cache_lock) != 0) return;
    ocsp_slot *s = slot_of(r, h, id, now);
    if (s && generation >= r->kept_from && s->checked < generation && same_status(&s->status, was))
        s->checked = generation;
    (void)pthread_rwlock_unlock(&r->cache_lock);
}

/* Keeps an answer whose status `st` was looked up in `generation`, unless the epoch could not be read since (a
 * generation the epoch moved past is kept, and checked again when next asked for). Within its probe window it takes
 * the same CertID's slot, an empty or dropped one, or else the one due for refresh first. */
static void cache_put(ca_revocation *r, const pki_ocsp_cert_id *id, uint64_t generation, time_t refresh_at,
                      const pki_ocsp_single *st, const ct_buf *response)
{
    ct_buf copy = CT_BUF_INIT;
    if (!r->n_slots || id->der_len > OCSP_CERT_ID_MAX || ct_buf_alloc(&copy, response->len) != CT_OK ||
        ct_buf_set(&copy, response->data, response->len) != CT_OK) {
        ct_buf_free(&copy);
        return;
    }
    uint64_t h = ca_keyed_hash(r->cache_secret, id->der, id->der_len);
    if (pthread_rwlock_wrlock(&r->cache_lock) != 0) {
        ct_buf_free(&copy);
        return;
    }
    ocsp_slot *pick = NULL;
    for (size_t k = 0; k < OCSP_PROBES && generation >= r->kept_from; k++) {
        ocsp_slot *s = &r->slots[(h + k) & (r->n_slots - 1)];
        bool same = s->hash == h && s->cert_id_len == id->der_len && memcmp(s->cert_id, id->der, id->der_len) == 0;
        if (same || s->checked < r->kept_from) {
            pick = s;
            break;
        }
        if (!pick || s->refresh_at < pick->refresh_at) pick = s;
    }
    if (pick) {
        ct_buf_free(&pick->response);
        *pick = (ocsp_slot){.hash = h, .checked = generation, .refresh_at = refresh_at, .status = *st,
                            .cert_id_len = id->der_len, .response = copy};
        pick->status.cert_id = NULL;
        memcpy(pick->cert_id, id->der, id->der_len);
        copy = (ct_buf)CT_BUF_INIT;
    }
    (void)pthread_rwlock_unlock(&r->cache_lock);
    ct_buf_free(&copy);
}

/* ---- OCSP ---- */

static const char *const status_names[] = {[PKI_OCSP_GOOD] = "good", [PKI_OCSP_REVOKED] = "revoked",
                                           [PKI_OCSP_UNKNOWN] = "unknown"};

static ct_err answer_status(ca_http_answer *ans, int status, const char *why)
{
    ct_buf_free(&ans->body);
    ans->status = 200; /* RFC 6960 A.1: the OCSP status is in the body */
    ans->content_type = OCSP_RESPONSE_TYPE;
    if (ct_snprintf(ans->reason, sizeof ans->reason, "%s", why) != CT_OK) ans->reason[0] = '\0';
    return pki_ocsp_response_status(status, &ans->body);
}

/* Takes one signature from the budget of the client at `source`; false when it has none left. Its slot is its own,
 * a never used one, or the fullest within its probe window: one address can use up only its own budget (taking
 * another's slot gives that one a full bucket, never less). */
static bool budget_take(ca *c, const char *source)
{
    ca_revocation *r = c->rev;
    ca_addr_key key;
    ca_addr_key_of_text(source, &key);
    uint64_t h = ca_addr_key_hash(r->budget_secret, &key);
    if (pthread_mutex_lock(&r->budget_mu) != 0) return false;
    ocsp_budget *b = NULL;
    for (size_t k = 0; k < OCSP_BUDGET_PROBES; k++) {
        ocsp_budget *s = &r->budgets[(h + k) & (OCSP_BUDGET_SLOTS - 1)];
        if (ca_addr_key_equal(&s->key, &key)) {
            b = s;
            break;
        }
        if (!b || s->full_at_us < b->full_at_us) b = s;
    }
    if (!ca_addr_key_equal(&b->key, &key)) *b = (ocsp_budget){.key = key, .full_at_us = 0};
    bool left = ca_bucket_take(&b->full_at_us, c->cfg.ocsp_signatures_per_minute);
    (void)pthread_mutex_unlock(&r->budget_mu);
    return left;
}

/* Looks each certificate up. */
static ct_err look_up(ca *c, const ocsp_gen *o, const pki_ocsp_request *req, pki_ocsp_single *single)
{
    ct_err rc = CT_OK;
    for (size_t i = 0; i < req->n; i++) {
        const pki_ocsp_cert_id *id = &req->ids[i];
        db_cert_state st;
        single[i] = (pki_ocsp_single){.cert_id = id->der, .cert_id_len = id->der_len, .status = PKI_OCSP_UNKNOWN};
        db_crl_issuer issuer = o->g->kind == CA_CRL_OPS ? DB_CRL_OPS : DB_CRL_DEVICE;
        rc = !*id->serial_hex                      ? CT_ERR_NOT_FOUND
             : ct_failpoint_hit("ocsp:look-up-fails") ? ct_fail(CT_ERR_DB, "cannot read the certificate (failpoint)")
                                                      : db_cert_state_get(c->db, issuer, id->serial_hex, &st);
        if (rc == CT_ERR_NOT_FOUND) continue;
        CT_GUARD(rc);
        /* A serial that another generation (of its kind) signed is not this issuer's. */
        if (st.issuing_ca ? st.issuing_ca != o->g->id : o->g->generation != 1) continue;
        single[i].status = st.revoked ? PKI_OCSP_REVOKED : PKI_OCSP_GOOD;
        single[i].revoked_at = (time_t)st.revoked_at;
        single[i].reason = st.reason;
    }
    rc = CT_OK;
cleanup:
    return rc;
}

/* The answer kept for the one certificate of `req` (none for several) into `out`, its status into single[0]: as kept
 * when its status was looked up after the epoch last moved, else (a revocation since, of any certificate) once its
 * status is looked up again and found unchanged. Past its client's budget too: one look-up, the one request that
 * takes that on in this generation (cache_get), no signature; a client cannot make answers kept past its budget, so
 * all clients together cost at most one look-up per kept answer per move of the epoch. False when none is sent:
 * `*looked` then says whether `single` holds the status looked up in `*generation` (changed: signed anew).
 * `*checked` says that it was looked up again. */
static bool kept_answer(ca *c, const ocsp_gen *o, const pki_ocsp_request *req, time_t now, ct_buf *out,
                        pki_ocsp_single *single, uint64_t *generation, bool *looked, bool *checked)
{
    ca_revocation *r = c->rev;
    pki_ocsp_single was;
    ocsp_kept got = req->n == 1 ? cache_get(r, &req->ids[0], now, out, &was, generation) : KEPT_NONE;
    if (got == KEPT_CURRENT) single[0] = was;
    if (got != KEPT_TO_CHECK) return got == KEPT_CURRENT;
    ct_failpoint_hold("ocsp:recheck"); /* tests: each check logged, one held under way */
    *looked = look_up(c, o, req, single) == CT_OK;
    ct_failpoint_hold("ocsp:recheck-looked-up"); /* tests: a revocation read between the look-up and the mark */
    *checked = *looked && same_status(&single[0], &was);
    if (*checked) {
        cache_checked(r, &req->ids[0], *generation, now, &was);
        return true;
    }
    ct_buf_free(out);
    return false;
}

/* Signs one answer for all the certificates looked up. */
static ct_err sign_answer(ca *c, const ocsp_gen *o, const pki_ocsp_request *req, const pki_ocsp_single *single,
                          ct_buf *response)
{
    ct_err rc = CT_OK;
    ct_buf part = CT_BUF_INIT;
    pki_ocsp_responder r = o->responder;
    r.produced_at = r.this_update = time(NULL);
    r.next_update = r.this_update + (time_t)c->cfg.ocsp_hours * HOUR_SECONDS;
    CT_GUARD(pki_ocsp_sign(&r, single, req->n, req->nonce, req->nonce_len, &part));
    CT_GUARD(pki_ocsp_response(&r, part.data, part.len, response));
cleanup:
    ct_buf_free(&part);
    return rc;
}

/* A request past its client's budget (budget_take) is counted as a refusal of that client: an officer sees who. */
static void over_budget(ca *c, const char *source, const char *then)
{
    (void)ca_refuse_anonymous(c, source, "ocsp.budget", "",
                              ct_fail(CT_ERR_UNAVAILABLE, "over ocsp.signatures_per_minute: %s", then));
}

/* The answer to a DER OCSPRequest (outside input) from the client at `source`. Refusals of the request itself are
 * OCSP statuses in an HTTP 200; `*malformed` tells the caller to audit one. */
static ct_err answer_request(ca *c, const char *source, const uint8_t *der, size_t len, ca_http_answer *ans,
                             bool *malformed)
{
    ca_revocation *r = c->rev;
    pki_ocsp_request req;
    char why[200];
    if (pki_ocsp_request_parse(der, len, &req) != CT_OK) {
        *malformed = true;
        CT_GUARD_RET(ct_snprintf(why, sizeof why, "malformedRequest: %.160s", ct_err_detail()));
        return answer_status(ans, PKI_OCSP_MALFORMED, why);
    }
    /* The issuer by its name and key hashes: one of the issuing CAs' generations, the same for all. */
    const ocsp_gen *o = NULL;
    for (size_t k = 0; k < r->n_gens && !o; k++)
        if (pki_ocsp_cert_id_is_for(&req.ids[0], &r->gens[k].g->ids)) o = &r->gens[k];
    for (size_t i = 0; i < req.n; i++)
        if (!o || !pki_ocsp_cert_id_is_for(&req.ids[i], &o->g->ids))
            return answer_status(ans, PKI_OCSP_UNAUTHORIZED, "unauthorized: a certificate of another issuer");
    refresh(c, false);
    time_t now = time(NULL);
    bool nonce_left_out = false, looked = false, checked = false;
    pki_ocsp_single single[PKI_OCSP_MAX_CERTS];
    uint64_t generation = 0;
    bool kept = !req.nonce && kept_answer(c, o, &req, now, &ans->body, single, &generation, &looked, &checked);
    if (!kept) {
        ct_err rc = CT_OK;
        if (!looked) { /* read before the database is: a revocation since makes the answer due for a check */
            (void)pthread_rwlock_rdlock(&r->cache_lock);
            generation = r->generation;
            (void)pthread_rwlock_unlock(&r->cache_lock);
        }
        /* Every signature is within the client's budget: one made to be kept too (a client cycling through more
         * CertIDs of the serials the log lists than are kept missed every time). Past it only a kept answer is
         * sent: its nonce left out, or kept meanwhile by another request. Taken before the database is read (but
         * for a kept answer's one check, kept_answer): past it a request cost a look-up per CertID (up to
         * PKI_OCSP_MAX_CERTS), of the database all nodes share. */
        if (!budget_take(c, source)) {
            kept = !looked && kept_answer(c, o, &req, now, &ans->body, single, &generation, &looked, &checked);
            if (!kept) {
                over_budget(c, source, "tryLater");
                return answer_status(ans, PKI_OCSP_TRY_LATER, "tryLater: over ocsp.signatures_per_minute");
            }
            if (req.nonce) over_budget(c, source, "answered without its nonce (pre-signed)");
            nonce_left_out = req.nonce != NULL;
            req.nonce = NULL;
            req.nonce_len = 0;
        } else if (!looked) {
            rc = look_up(c, o, &req, single);
        }
        if (rc == CT_OK && !kept) rc = sign_answer(c, o, &req, single, &ans->body);
        if (rc != CT_OK) { /* RFC 6960's internalError carries no text: the detail is in this line, under the
                            * incident the request's own line (ca_server.c) names first too */
            ca_incident_name(ans->incident);
            ct_log(CT_LOG_ERROR, "ocsp_sign", "incident=%s error=%s", ans->incident,
                   CT_LOGQ(*ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
            return answer_status(ans, PKI_OCSP_INTERNAL_ERROR, "internalError: see event=ocsp_sign under the incident");
        }
        /* Unknown serials are not kept: anyone can ask for any number of them. */
        if (!kept && req.n == 1 && !req.nonce && single[0].status != PKI_OCSP_UNKNOWN)
            cache_put(r, &req.ids[0], generation, now + (time_t)c->cfg.ocsp_hours * HOUR_SECONDS / 2, &single[0],
                      &ans->body);
    }
    ans->status = 200;
    ans->content_type = OCSP_RESPONSE_TYPE;
    return ct_snprintf(ans->reason, sizeof ans->reason, "%s serial=%s%s%s%s", status_names[single[0].status],
                       *req.ids[0].serial_hex ? req.ids[0].serial_hex : "-", req.n > 1 ? " (+more)" : "",
                       req.nonce ? " nonce" : (nonce_left_out ? " nonce left out (over budget)" : ""),
                       kept ? (checked ? " pre-signed, status looked up again" : " pre-signed") : "");
}

ct_err ca_ocsp_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    ct_buf decoded = CT_BUF_INIT;
    const uint8_t *der = NULL;
    size_t len = 0;
    bool malformed = false;
    memset(ans, 0, sizeof *ans);
    ct_err_clear();
    CT_ENSURE_MSG(c->rev, CT_ERR_UNAVAILABLE, "the revocation service is not running");
    const char *rest = rq->path + strlen("/ocsp");
    CT_ENSURE_MSG(strncmp(rq->path, "/ocsp", 5) == 0 && (*rest == '\0' || *rest == '/'), CT_ERR_NOT_FOUND,
                  "no such resource");
    /* Before any work (a signature, a budget use): a GET's body too, else answered and only then refused. */
    CT_ENSURE(!rq->body_too_large, ca_http_body_too_large(c, rq->method));
    if (strcmp(rq->method, "GET") == 0) { /* RFC 6960 A.1.1: GET /ocsp/<url-encoded base64 DER> */
        const char *b64 = *rest ? rest + 1 : rest;
        size_t n = strlen(b64);
        CT_ENSURE_MSG(n <= (PKI_OCSP_MAX_REQUEST + 2) / 3 * 4, CT_ERR_TOO_LARGE, "OCSP request larger than %d bytes",
                      PKI_OCSP_MAX_REQUEST);
        CT_GUARD(ct_buf_alloc(&decoded, PKI_OCSP_MAX_REQUEST));
        if (ct_base64_decode((const uint8_t *)b64, n, &decoded) != CT_OK) decoded.len = 0; /* malformed below */
        der = decoded.data;
        len = decoded.len;
    } else if (strcmp(rq->method, "POST") == 0) {
        CT_ENSURE_MSG(!*rest, CT_ERR_NOT_FOUND, "POST the OCSP request to /ocsp");
        CT_ENSURE_MSG(rq->body_len <= PKI_OCSP_MAX_REQUEST, CT_ERR_TOO_LARGE,
                      "OCSP request larger than %d bytes", PKI_OCSP_MAX_REQUEST);
        CT_ENSURE_MSG(ca_media_type_is(rq->content_type, OCSP_REQUEST_TYPE), CT_ERR_CONTENT_TYPE,
                      "content type must be " OCSP_REQUEST_TYPE); /* fixed: counted per reason (ca_refusals.c) */
        der = rq->body;
        len = rq->body_len;
    } else {
        rc = ct_fail(CT_ERR_METHOD, "/ocsp takes GET or POST");
        goto cleanup;
    }
    CT_GUARD(answer_request(c, rq->source, der ? der : (const uint8_t *)"", len, ans, &malformed));
    if (malformed) (void)ca_refuse_anonymous(c, rq->source, "ocsp.request", "", ct_fail(CT_ERR_BAD_DER, "%s", ans->reason));
cleanup:
    ct_buf_free(&decoded);
    if (rc != CT_OK) {
        if (ct_err_http_status(rc) < 500 && rc != CT_ERR_NOT_FOUND && rc != CT_ERR_METHOD)
            rc = ca_refuse_anonymous(c, rq->source, "ocsp.request", "", rc);
        ca_http_error(ans, rc);
    }
    return rc;
}
