/* Refusals that one client can cause once per request without being accountable for each are counted, not written
 * one by one: those of anonymous requests (no authenticated client: a malformed OCSP request, an EST request without
 * a station certificate, an officer route without an officer), and those of a certificate that reached the officer
 * door it may not open or came from another site's page (a browser sends the officer's certificate with whatever a
 * page asks for). A row with an fsync each let one client grow the audit log by ~0.8 MB/s and slow issuance by a
 * third. While the server runs they are kept per (actor, action, reason), the actor "anonymous:ADDRESS" (an IPv6
 * client's /64: ca_addr_key) or the party's own ("officer:bob"), and written every audit.anonymous_interval_s as one
 * audit row each. At most REFUSAL_ROWS_PER_ACTOR keys per actor (its further kinds in one overflow row of its own,
 * so that one address cannot push the others out) and audit.anonymous_max_rows keys in all per interval (the rest in
 * one overflow row): the audit grows by a bounded number of rows per interval whatever the flood. A station's counts
 * (past its budget, ca_policy.c) keep their own rows beyond that, as many per station: stations are authenticated
 * and made by an operator, and their name is what an officer needs. Refusals of what an authenticated party asked
 * for (a station's serial, an officer's revocation) are still audited one by one. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define REFUSAL_ACTION_MAX 32
#define REFUSAL_REASON_MAX 160
#define REFUSAL_ROWS_PER_ACTOR 8 /* kinds of refusal one actor (one address when anonymous) may key per interval;
                                   * the overflow reason below names it */
#define REFUSAL_OVERFLOW_ACTION "audit.overflow"
/* Parties whose request budget is kept: officers and stations share them, cameras have as many of their own (anyone
 * holding many cameras' keys cannot push an officer's budget out). When all are taken the fullest gives way, and the
 * newcomer takes over its bucket as it is: a party that rotates identities (or returns after being pushed out) never
 * starts with more than the fullest bucket kept, so cycling the slots does not refill anyone. */
#define BUDGET_SLOTS 64

typedef struct {
    char actor[CA_ACTOR_MAX];
    char action[REFUSAL_ACTION_MAX];
    char reason[REFUSAL_REASON_MAX];
    int64_t count;
    time_t first, last;
} refusal_count;

typedef struct {
    refusal_count *rows; /* `room` of them, `used` filled: at most `cap` shared, and the own rows of stations */
    size_t used, room, shared;
    int64_t overflow;    /* refusals whose key found no free row */
    time_t overflow_first, overflow_last;
} refusal_table;

/* An authenticated party's budget of requests that each write an audit row (ca_actor_budget_take). */
typedef struct {
    char actor[CA_ACTOR_MAX];
    int64_t full_at_us; /* ca_bucket_take's; 0: a slot never used, which is a full bucket */
} actor_budget;

struct ca_refusals {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool mu_ok, cv_ok, thread_ok, stop;
    size_t cap;
    long interval_s;
    refusal_table now;   /* under mu */
    refusal_table spare; /* the writer's: swapped with `now` at each interval, so counting never waits on the db */
    actor_budget budgets[BUDGET_SLOTS];        /* under mu */
    actor_budget device_budgets[BUDGET_SLOTS]; /* under mu */
};

static void copy_truncated(char *dst, size_t max, const char *src)
{
    if (ct_snprintf(dst, max, "%.*s", (int)max - 1, src) != CT_OK) dst[0] = '\0';
}

static refusal_count *find_row(refusal_table *t, const char *actor, const char *action, const char *reason,
                               size_t *actor_rows)
{
    for (size_t i = 0; i < t->used; i++) {
        refusal_count *r = &t->rows[i];
        if (strcmp(r->actor, actor) != 0) continue;
        if (actor_rows) ++*actor_rows;
        if (strcmp(r->reason, reason) == 0 && strcmp(r->action, action) == 0) return r;
    }
    return NULL;
}

/* A free row, the table grown if need be (a station's own rows: REFUSAL_ROWS_PER_ACTOR and its overflow each). */
static refusal_count *new_row(refusal_table *t)
{
    if (t->used == t->room) {
        refusal_count *rows = realloc(t->rows, (t->room + REFUSAL_ROWS_PER_ACTOR + 1) * sizeof *rows);
        if (!rows) return NULL;
        t->rows = rows;
        t->room += REFUSAL_ROWS_PER_ACTOR + 1;
    }
    return &t->rows[t->used++];
}

/* own: the actor is a station, authenticated and made by an operator: its counts keep its name whatever others
 * counted (bounded per station as every actor's), where others share `cap` rows. */
static void count_into(refusal_table *t, size_t cap, const char *actor, bool own, const char *action,
                       const char *reason, time_t when)
{
    size_t actor_rows = 0;
    refusal_count *r = find_row(t, actor, action, reason, &actor_rows);
    if (!r && actor_rows >= REFUSAL_ROWS_PER_ACTOR) { /* this actor's further kinds share its overflow row */
        action = REFUSAL_OVERFLOW_ACTION;
        reason = "further kinds of refusal of this client (each client has 8 counts per interval)";
        r = find_row(t, actor, action, reason, NULL);
    }
    if (!r && (own || t->shared < cap) && (r = new_row(t))) {
        if (!own) t->shared++;
        memset(r, 0, sizeof *r);
        /* Truncated copies: the parts are outside text, and a shortened key is still a key. */
        copy_truncated(r->actor, sizeof r->actor, actor);
        copy_truncated(r->action, sizeof r->action, action);
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
    char actor[CA_ACTOR_MAX];
    char detail[REFUSAL_REASON_MAX + 96];
} entry_text;

static void describe(entry_text *e, const char *actor, const char *reason, int64_t count, time_t first, time_t last)
{
    char from[CT_TIME_UTC_MAX], to[CT_TIME_UTC_MAX];
    ct_time_utc((int64_t)first, from);
    ct_time_utc((int64_t)last, to);
    copy_truncated(e->actor, sizeof e->actor, actor);
    if (ct_snprintf(e->detail, sizeof e->detail, "%lld refused from %s to %s: %s", (long long)count, from, to,
                    reason) != CT_OK)
        e->detail[0] = '\0';
}

/* Writes the table's counts in one transaction, then empties it. */
static void write_table(ca *c, refusal_table *t)
{
    size_t n = t->used + (t->overflow ? 1 : 0);
    if (!n) return; /* nothing refused: no transaction */
    entry_text *text = n ? calloc(n, sizeof *text) : NULL;
    db_audit_entry *entries = n ? calloc(n, sizeof *entries) : NULL;
    ct_err rc = CT_OK;
    if (n && (!text || !entries)) rc = CT_ERR_NOMEM;
    for (size_t i = 0; rc == CT_OK && i < n; i++) {
        const refusal_count *r = &t->rows[i];
        if (i < t->used) describe(&text[i], r->actor, r->reason, r->count, r->first, r->last);
        else describe(&text[i], "anonymous:*", "further counted refusals (audit.anonymous_max_rows reached)",
                      t->overflow, t->overflow_first, t->overflow_last);
        entries[i] = (db_audit_entry){text[i].actor, i < t->used ? r->action : REFUSAL_OVERFLOW_ACTION, "", "denied",
                                      text[i].detail};
    }
    if (rc == CT_OK) rc = db_audit_append_all(c->db, entries, n);
    if (rc != CT_OK) ct_log(CT_LOG_ERROR, "audit", "msg=\"refusal counts not audited\" count=%zu error=%s", n,
                            CT_LOGQ(*ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
    free(text);
    free(entries);
    t->used = 0;
    t->shared = 0;
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
    flush(c); /* what was counted before this thread first ran, when stopped at once */
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
    r->now.room = r->spare.room = r->cap;
    r->mu_ok = pthread_mutex_init(&r->mu, NULL) == 0;
    r->cv_ok = ct_cond_init(&r->cv) == 0;
    if (r->now.rows && r->spare.rows && r->mu_ok && r->cv_ok)
        r->thread_ok = pthread_create(&r->thread, NULL, writer_thread, c) == 0;
    if (r->thread_ok) return CT_OK;
    ca_refusals_stop(c);
    return ct_fail(CT_ERR_NOMEM, "cannot start the refusal counter");
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

/* Counts one refusal of `actor` while serving (else audits it) and returns `why` with the reason as the detail. */
static ct_err count(ca *c, const char *actor, bool own, const char *action, const char *subject, ct_err why)
{
    ca_refusals *r = c->refusals;
    if (!r) return ca_audit_refusal(c, action, actor, subject, why);
    char reason[REFUSAL_REASON_MAX];
    copy_truncated(reason, sizeof reason, *ct_err_detail() ? ct_err_detail() : ct_err_message(why));
    time_t now = time(NULL);
    (void)pthread_mutex_lock(&r->mu);
    count_into(&r->now, r->cap, actor, own, action, reason, now);
    (void)pthread_mutex_unlock(&r->mu);
    return ct_fail(why, "%s", reason);
}

ct_err ca_refuse_anonymous(ca *c, const char *source, const char *action, const char *subject, ct_err why)
{
    if (!c->refusals) return ca_audit_refusal(c, action, "unknown", subject, why); /* not serving: one row, as any refusal */
    /* Keyed as every per-address limit: an IPv6 client by its /64, or one client could take every row. */
    char actor[CA_ACTOR_MAX], client[CA_ADDR_KEY_TEXT_MAX];
    ca_addr_key key;
    ca_addr_key_of_text(source, &key);
    ca_addr_key_text(&key, client);
    if (ct_snprintf(actor, sizeof actor, "anonymous:%s", client) != CT_OK)
        copy_truncated(actor, sizeof actor, "anonymous");
    return count(c, actor, false, action, subject, why);
}

ct_err ca_refuse_counted(ca *c, const char *actor, const char *action, const char *subject, ct_err why)
{
    return count(c, actor, false, action, subject, why);
}

ct_err ca_refuse_counted_station(ca *c, const char *station, const char *action, const char *subject, ct_err why)
{
    return count(c, station, true, action, subject, why);
}

static bool budget_take(ca *c, bool device, const char *actor, long per_minute)
{
    ca_refusals *r = c->refusals;
    if (!r || per_minute <= 0) return true; /* not serving: the command line has no one to budget */
    actor_budget *slots = device ? r->device_budgets : r->budgets;
    /* A truncated key would match no slot: each request a fresh one, no budget at all. No such actor is made. */
    if (strlen(actor) >= sizeof slots[0].actor) return false;
    (void)pthread_mutex_lock(&r->mu);
    actor_budget *b = NULL;
    for (size_t i = 0; i < BUDGET_SLOTS && !(b && strcmp(b->actor, actor) == 0); i++)
        if (!b || strcmp(slots[i].actor, actor) == 0 || slots[i].full_at_us < b->full_at_us) b = &slots[i];
    /* Another's slot taken is the fullest: its bucket stays as it is (BUDGET_SLOTS). */
    if (strcmp(b->actor, actor) != 0) copy_truncated(b->actor, sizeof b->actor, actor);
    bool left = ca_bucket_take(&b->full_at_us, per_minute);
    (void)pthread_mutex_unlock(&r->mu);
    return left;
}

bool ca_actor_budget_take(ca *c, const char *actor, long per_minute)
{
    return budget_take(c, false, actor, per_minute);
}

bool ca_device_budget_take(ca *c, const char *key, long per_minute)
{
    return budget_take(c, true, key, per_minute);
}
