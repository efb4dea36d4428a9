/* Refusals of anonymous requests (no authenticated client: a malformed OCSP request, an EST request without a
 * station certificate, an officer route without an officer) are counted, not written one by one: anyone can send
 * them, and a row with an fsync each let one client grow the audit log by ~0.8 MB/s and slow issuance by a third.
 * While the server runs they are kept per (action, source address, reason) and written every
 * audit.anonymous_interval_s as one audit row each; at most audit.anonymous_max_rows keys per interval, the rest
 * counted in one overflow row, so the audit grows by a bounded number of rows per interval whatever the flood.
 * Refusals of authenticated parties (a station, an officer, a device) are still audited one by one. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define REFUSAL_ACTION_MAX 32
#define REFUSAL_SOURCE_MAX 64
#define REFUSAL_REASON_MAX 160

typedef struct {
    char action[REFUSAL_ACTION_MAX];
    char source[REFUSAL_SOURCE_MAX];
    char reason[REFUSAL_REASON_MAX];
    int64_t count;
    time_t first, last;
} refusal_count;

typedef struct {
    refusal_count *rows; /* `cap` of them, `used` filled */
    size_t used;
    int64_t overflow;    /* refusals whose key found no free row */
    time_t overflow_first, overflow_last;
} refusal_table;

struct ca_refusals {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool mu_ok, cv_ok, thread_ok, stop;
    size_t cap;
    long interval_s;
    refusal_table now;   /* under mu */
    refusal_table spare; /* the writer's: swapped with `now` at each interval, so counting never waits on the db */
};

static void copy_truncated(char *dst, size_t max, const char *src)
{
    if (ct_snprintf(dst, max, "%.*s", (int)max - 1, src) != CT_OK) dst[0] = '\0';
}

static void count_into(refusal_table *t, size_t cap, const char *action, const char *source, const char *reason,
                       time_t when)
{
    refusal_count *r = NULL;
    for (size_t i = 0; i < t->used && !r; i++)
        if (strcmp(t->rows[i].reason, reason) == 0 && strcmp(t->rows[i].source, source) == 0 &&
            strcmp(t->rows[i].action, action) == 0)
            r = &t->rows[i];
    if (!r && t->used < cap) {
        r = &t->rows[t->used++];
        memset(r, 0, sizeof *r);
        /* Truncated copies: the parts are outside text, and a shortened key is still a key. */
        copy_truncated(r->action, sizeof r->action, action);
        copy_truncated(r->source, sizeof r->source, source);
        copy_truncated(r->reason, sizeof r->reason, reason);
        r->first = when;
    }
    if (!r) {
        if (!t->overflow) t->overflow_first = when;
        t->overflow++;
        t->overflow_last = when;
        return;
    }
    r->count++;
    r->last = when;
}

/* The actor and detail of one count's audit entry. */
typedef struct {
    char actor[DB_NAME_MAX];
    char detail[REFUSAL_REASON_MAX + 96];
} entry_text;

static void describe(entry_text *e, const char *source, const char *reason, int64_t count, time_t first, time_t last)
{
    char from[CT_TIME_UTC_MAX], to[CT_TIME_UTC_MAX];
    ct_time_utc((int64_t)first, from);
    ct_time_utc((int64_t)last, to);
    if (ct_snprintf(e->actor, sizeof e->actor, "anonymous:%s", source) != CT_OK) copy_truncated(e->actor, sizeof e->actor, "anonymous");
    if (ct_snprintf(e->detail, sizeof e->detail, "%lld refused from %s to %s: %s", (long long)count, from, to,
                    reason) != CT_OK)
        e->detail[0] = '\0';
}

/* Writes the table's counts in one transaction, then empties it. */
static void write_table(ca *c, refusal_table *t)
{
    size_t n = t->used + (t->overflow ? 1 : 0);
    entry_text *text = n ? calloc(n, sizeof *text) : NULL;
    db_audit_entry *entries = n ? calloc(n, sizeof *entries) : NULL;
    ct_err rc = CT_OK;
    if (n && (!text || !entries)) rc = CT_ERR_NOMEM;
    for (size_t i = 0; rc == CT_OK && i < n; i++) {
        const refusal_count *r = &t->rows[i];
        if (i < t->used) describe(&text[i], r->source, r->reason, r->count, r->first, r->last);
        else describe(&text[i], "*", "further anonymous refusals (audit.anonymous_max_rows reached)", t->overflow,
                      t->overflow_first, t->overflow_last);
        entries[i] = (db_audit_entry){text[i].actor, i < t->used ? r->action : "audit.overflow", "", "denied",
                                      text[i].detail};
    }
    if (rc == CT_OK) rc = db_audit_append_all(c->db, entries, n);
    if (rc != CT_OK) ct_log(CT_LOG_ERROR, "audit", "msg=\"anonymous refusal counts not audited\" count=%zu error=%s", n,
                            CT_LOGQ(*ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
    free(text);
    free(entries);
    t->used = 0;
    t->overflow = 0;
}

/* Swaps the tables under the lock and writes the full one outside it. */
static void flush(ca *c)
{
    ca_refusals *r = c->refusals;
    refusal_table full = r->now;
    r->now = r->spare;
    r->spare = full;
    (void)pthread_mutex_unlock(&r->mu);
    write_table(c, &r->spare);
    (void)pthread_mutex_lock(&r->mu);
}

static void *writer_thread(void *arg)
{
    ca *c = arg;
    ca_refusals *r = c->refusals;
    (void)pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec until;
        ct_timespec_in((int64_t)r->interval_s * 1000, &until);
        while (!r->stop && pthread_cond_timedwait(&r->cv, &r->mu, &until) == 0) {}
        flush(c);
    }
    (void)pthread_mutex_unlock(&r->mu);
    return NULL;
}

ct_err ca_refusals_start(ca *c)
{
    ca_refusals *r = calloc(1, sizeof *r);
    CT_ENSURE_RET(r, CT_ERR_NOMEM);
    c->refusals = r;
    r->cap = (size_t)c->cfg.anonymous_max_rows;
    r->interval_s = c->cfg.anonymous_interval_s;
    r->now.rows = calloc(r->cap, sizeof *r->now.rows);
    r->spare.rows = calloc(r->cap, sizeof *r->spare.rows);
    r->mu_ok = pthread_mutex_init(&r->mu, NULL) == 0;
    r->cv_ok = ct_cond_init(&r->cv) == 0;
    if (r->now.rows && r->spare.rows && r->mu_ok && r->cv_ok)
        r->thread_ok = pthread_create(&r->thread, NULL, writer_thread, c) == 0;
    if (r->thread_ok) return CT_OK;
    ca_refusals_stop(c);
    return ct_fail(CT_ERR_NOMEM, "cannot start the anonymous refusal counter");
}

void ca_refusals_stop(ca *c)
{
    ca_refusals *r = c->refusals;
    if (!r) return;
    if (r->thread_ok) {
        (void)pthread_mutex_lock(&r->mu);
        r->stop = true;
        (void)pthread_cond_signal(&r->cv);
        (void)pthread_mutex_unlock(&r->mu);
        (void)pthread_join(r->thread, NULL); /* its last flush writes what was counted */
    }
    c->refusals = NULL;
    if (r->cv_ok) (void)pthread_cond_destroy(&r->cv);
    if (r->mu_ok) (void)pthread_mutex_destroy(&r->mu);
    free(r->now.rows);
    free(r->spare.rows);
    free(r);
}

ct_err ca_refuse_anonymous(ca *c, const char *source, const char *action, const char *subject, ct_err why)
{
    ca_refusals *r = c->refusals;
    if (!r) return ca_audit_refusal(c, action, "unknown", subject, why); /* not serving: one row, as any refusal */
    char reason[REFUSAL_REASON_MAX];
    copy_truncated(reason, sizeof reason, *ct_err_detail() ? ct_err_detail() : ct_err_message(why));
    time_t now = time(NULL);
    (void)pthread_mutex_lock(&r->mu);
    count_into(&r->now, r->cap, action, source && *source ? source : "local", reason, now);
    (void)pthread_mutex_unlock(&r->mu);
    return ct_fail(why, "%s", reason);
}
