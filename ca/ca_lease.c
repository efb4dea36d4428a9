/* Several nodes, one signer. Every node serving one database answers EST, OCSP, /log and /crl; one of them at a
 * time, the holder of the database's "signer" lease (db/lease.c), signs checkpoints, tree heads and CRLs, and the
 * others serve what it stored. A thread takes or renews the lease every node.lease_ms / 5; the holder stops signing
 * a tick before its lease would expire, so that a node taking an expired lease never signs beside it. When the
 * holder dies another node takes over within node.lease_ms + one tick (at once when the holder was a process of
 * this host that is gone), and a clean stop lets the lease go at once.
 * While it holds the lease, each tick the thread also does what another node's requests cannot wake it for: it
 * reads the revocation epoch and re-signs the CRLs another node's revocation made stale, and looks for issuances
 * that no tree head covers yet and audited changes (any node's or command's) that no checkpoint binds yet. On the other nodes it reads the epoch, so that each knows within a
 * tick that its stored CRL lacks a revocation (ca_crl_stale_ms counts from then).
 * Bounds (L = node.lease_ms, T = L / 5): a revocation is in every node's OCSP answers within CA_REVOCATION_POLL_MS;
 * in every node's CRL within T while the signer runs, within L + 2T when it died; no node serves a CRL lacking it
 * later than L + 3T after it (ca_crl_stale_ms after a node saw it): 503 instead. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca_priv.h"

struct ca_lease {
    pthread_mutex_t mu; /* stop */
    pthread_cond_t cv;
    pthread_t thread;
    bool mu_ok, cv_ok, thread_ok, stop;
    char holder[DB_LEASE_HOLDER_MAX];
    char host[DB_LEASE_HOLDER_MAX];
    _Atomic int64_t sign_until; /* monotonic ms: this node may sign until then (0: it does not hold the lease) */
    _Atomic int64_t stamp;      /* the stamp of this process's take (db_lease_state.stamp; 0: none) */
    bool held;                  /* at the last try (the thread's) */
    char other[DB_LEASE_HOLDER_MAX]; /* who held it at the last try, when not this node */
    bool command;                    /* a command's (ca_lease_for_command): its audit entries say it, no log lines */
    bool same_id_seen;               /* the last try found the lease held under this id by another process */
};

int64_t ca_lease_tick_ms(const ca *c) { return c->cfg.lease_ms / 5; }

int64_t ca_crl_stale_ms(const ca *c) { return c->cfg.lease_ms + 2 * ca_lease_tick_ms(c); }

bool ca_lease_held(const ca *c)
{
    /* Not serving (a command): nothing else signs through this process, the command signs as it always did. */
    if (!c->lease) return true;
    return ct_now_ms() < atomic_load(&c->lease->sign_until);
}

/* `holder` is "HOST:PID" of this host's process that is gone. */
static bool host_pid_dead(const ca_lease *l, const char *holder)
{
    size_t n = strlen(l->host);
    if (strncmp(holder, l->host, n) != 0 || holder[n] != ':') return false;
    char *end = NULL;
    long pid = strtol(holder + n + 1, &end, 10);
    if (!end || *end || pid <= 1) return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* A holder "node:HOST:PID" (or an older build's "HOST:PID") of this host whose process is gone: its lease need not
 * be waited for. */
static bool holder_dead(void *arg, const char *holder)
{
    const ca_lease *l = arg;
    size_t prefix = strlen(CA_NODE_ACTOR);
    if (strncmp(holder, CA_NODE_ACTOR, prefix) == 0 && host_pid_dead(l, holder + prefix)) return true;
    return host_pid_dead(l, holder);
}

void ca_lease_request(const ca *c, db_lease_request *req)
{
    *req = (db_lease_request){.name = DB_LEASE_SIGNER, .holder = c->lease->holder, .now_ms = 0, /* the database's */
                              .ttl_ms = c->cfg.lease_ms, .holder_dead = holder_dead, .dead_arg = c->lease,
                              .stamp = atomic_load(&c->lease->stamp)};
}

/* One try: takes or renews the lease; logs a change. */
static void lease_try(ca *c)
{
    ca_lease *l = c->lease;
    db_lease_request req;
    db_lease_state st;
    int64_t mono = ct_now_ms(); /* before the transaction: the lease may have been renewed a little earlier */
    ca_lease_request(c, &req);
    ct_err rc = db_lease_take(c->db, &req, &st);
    if (rc != CT_OK) {
        if (db_schema_outdated(c->db)) return; /* said once (schema_newer); the lease runs out, a newer node takes it */
        ct_log(CT_LOG_ERROR, "lease", "error=%s", CT_LOGQ(*ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
        return; /* sign_until runs out by itself */
    }
    if (st.held) atomic_store(&l->stamp, st.stamp);
    if (st.held) atomic_store(&l->sign_until, mono + c->cfg.lease_ms - ca_lease_tick_ms(c));
    else atomic_store(&l->sign_until, 0);
    /* Held under this node's own id by another process: this node before a restart, or a second node given the same
     * id (a config copied). It signs nothing until that lease expires; said once. */
    bool same_id = !st.held && strcmp(st.holder, l->holder) == 0;
    if (same_id && !l->same_id_seen && !l->command)
        ct_log(CT_LOG_WARN, "lease_same_id", "lease=%s holder=%s expires_in_ms=%lld reason=%s", DB_LEASE_SIGNER,
               CT_LOGQ(l->holder), (long long)(st.expires_ms - st.now_ms),
               CT_LOGQ("another process holds it under this node's id: signing waits for its expiry (node ids must "
                       "differ between nodes)"));
    l->same_id_seen = same_id;
    if (st.taken && !l->command)
        ct_log(CT_LOG_INFO, "lease_taken", "lease=%s holder=%s previous=%s", DB_LEASE_SIGNER, CT_LOGQ(l->holder),
               CT_LOGQ(*st.previous ? st.previous : "none"));
    else if (l->held && !st.held && !l->command)
        ct_log(CT_LOG_WARN, "lease_lost", "lease=%s holder=%s", DB_LEASE_SIGNER, CT_LOGQ(st.holder));
    l->held = st.held;
    if (!st.held && ct_strlcpy(l->other, sizeof l->other, st.holder) != CT_OK) l->other[0] = '\0';
}

static void *lease_thread(void *arg)
{
    ca *c = arg;
    ca_lease *l = c->lease;
    (void)pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        struct timespec until;
        ct_timespec_in(ca_lease_tick_ms(c), &until);
        while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &until) == 0) {}
        if (l->stop) break;
        (void)pthread_mutex_unlock(&l->mu);
        lease_try(c);
        if (ca_lease_held(c)) {
            ca_revocation_sign_due(c); /* another node's revocations */
            ca_log_issued(c);          /* heads if the log grew or the audit holds a change no checkpoint binds */
        } else {
            ca_revocation_changed(c); /* reads the epoch: how long the stored CRL lacks a revocation counts from here */
        }
        (void)pthread_mutex_lock(&l->mu);
    }
    (void)pthread_mutex_unlock(&l->mu);
    return NULL;
}

ct_err ca_node_id_set(ca *c, const char *node_id)
{
    CT_ENSURE_RET(c && node_id && ca_name_valid(node_id),
                  ct_fail(CT_ERR_USAGE, "node id '%.64s': 1-63 letters, digits, '-', '_', '.'", node_id ? node_id : ""));
    CT_GUARD_RET(ca_own_actor_refuse("node id", node_id, CT_ERR_USAGE));
    return ct_strlcpy(c->cfg.node_id, sizeof c->cfg.node_id, node_id);
}

/* The lease's state and fence, and a first try (no thread). */
static ct_err lease_begin(ca *c, bool command)
{
    ct_err rc = CT_OK;
    ca_lease *l = calloc(1, sizeof *l);
    CT_ENSURE_RET(l, CT_ERR_NOMEM);
    c->lease = l;
    l->command = command;
    if (gethostname(l->host, sizeof l->host - 1) != 0) CT_GUARD(ct_strlcpy(l->host, sizeof l->host, "localhost"));
    if (c->cfg.node_id[0]) {
        CT_GUARD(ct_strlcpy(l->holder, sizeof l->holder, c->cfg.node_id));
    } else {
        CT_GUARD(ct_snprintf(l->holder, sizeof l->holder, CA_NODE_ACTOR "%.100s:%ld", l->host, (long)getpid()));
    }
    CT_GUARD(db_lease_fence(c->db, DB_LEASE_SIGNER, l->holder));
    l->mu_ok = pthread_mutex_init(&l->mu, NULL) == 0;
    l->cv_ok = ct_cond_init(&l->cv) == 0;
    CT_ENSURE_MSG(l->mu_ok && l->cv_ok, CT_ERR_INTERNAL, "cannot create the lease locks");
    lease_try(c); /* before revocation and the log start: the holder signs at once */
cleanup:
    if (rc != CT_OK) ca_lease_free(c);
    return rc;
}

ct_err ca_lease_start(ca *c)
{
    CT_GUARD_RET(lease_begin(c, false));
    ct_log(CT_LOG_INFO, "node", "id=%s signer=%s lease_ms=%ld", CT_LOGQ(c->lease->holder),
           ca_lease_held(c) ? "yes" : "no", c->cfg.lease_ms);
    return CT_OK;
}

ct_err ca_lease_for_command(ca *c)
{
    CT_GUARD_RET(lease_begin(c, true));
    if (ca_lease_held(c)) return CT_OK;
    char other[DB_LEASE_HOLDER_MAX];
    ct_err rc = ct_strlcpy(other, sizeof other, c->lease->other);
    ca_lease_free(c);
    CT_GUARD_RET(rc);
    return ct_fail(CT_ERR_UNAVAILABLE, "the signer lease is held by %s, which signs the log: ask it (or stop it) instead",
                   other[0] ? other : "another node");
}

ct_err ca_lease_run(ca *c)
{
    ca_lease *l = c->lease;
    CT_ENSURE_RET(l && !l->thread_ok, ct_fail(CT_ERR_INTERNAL, "ca_lease_run: no lease, or running already"));
    l->thread_ok = pthread_create(&l->thread, NULL, lease_thread, c) == 0;
    CT_ENSURE_RET(l->thread_ok, ct_fail(CT_ERR_INTERNAL, "cannot start the lease thread"));
    return CT_OK;
}

void ca_lease_stop(ca *c)
{
    ca_lease *l = c ? c->lease : NULL;
    if (!l || !l->thread_ok) return;
    (void)pthread_mutex_lock(&l->mu);
    l->stop = true;
    (void)pthread_cond_signal(&l->cv);
    (void)pthread_mutex_unlock(&l->mu);
    (void)pthread_join(l->thread, NULL);
    l->thread_ok = false;
}

void ca_lease_free(ca *c)
{
    ca_lease *l = c ? c->lease : NULL;
    if (!l) return;
    ca_lease_stop(c);
    if (ca_lease_held(c) && db_lease_release(c->db, DB_LEASE_SIGNER, l->holder, atomic_load(&l->stamp)) == CT_OK &&
        !l->command)
        ct_log(CT_LOG_INFO, "lease_released", "lease=%s holder=%s", DB_LEASE_SIGNER, CT_LOGQ(l->holder));
    if (l->cv_ok) (void)pthread_cond_destroy(&l->cv);
    if (l->mu_ok) (void)pthread_mutex_destroy(&l->mu);
    free(l);
    c->lease = NULL;
}
