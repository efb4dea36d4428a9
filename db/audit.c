/* db audit: an append-only, hash-chained log of everything the CA decided.
 *
 * hash_n = SHA-256(prev_hash || seq || ts || actor || action || subject || outcome || detail), with seq and ts
 * as 8-byte big-endian integers and every text field prefixed by its 4-byte big-endian length, so no two
 * different entries encode to the same bytes. Entry 1's prev_hash is 32 zero bytes.
 *
 * Triggers refuse UPDATE and DELETE through SQL; the chain catches whoever edits the file around them.
 * What the chain alone cannot show: deleting the newest entries (a shorter chain is still a valid chain), or
 * rewriting an entry and recomputing every later hash. Both need an anchor kept outside this database
 * (the signed tree heads of the Merkle log, which come later). */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char k_audit_last[] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
static const char k_audit_insert[] = "INSERT INTO audit (seq, ts, actor, action, subject, outcome, detail, prev_hash, hash)"
                                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char k_audit_all[] =
    "SELECT seq, ts, actor, action, subject, outcome, detail, prev_hash, hash FROM audit ORDER BY seq";

enum { AUDIT_N_TEXT = 5 }; /* actor, action, subject, outcome, detail */

typedef struct {
    const void *p;
    size_t n;
} span;

static void put_be(uint8_t *out, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8) out[i] = (uint8_t)v;
}

static ct_err audit_hash(const uint8_t prev[32], int64_t seq, int64_t ts, const span text[AUDIT_N_TEXT],
                         uint8_t out[32])
{
    ct_err rc = CT_OK;
    ct_buf b = CT_BUF_INIT;
    uint8_t num[8];
    size_t total = 32 + 8 + 8;
    for (int i = 0; i < AUDIT_N_TEXT; i++) {
        CT_ENSURE_MSG(text[i].n <= UINT32_MAX, CT_ERR_TOO_LARGE, "audit field of %zu bytes", text[i].n);
        total += 4 + text[i].n;
    }
    CT_GUARD(ct_buf_alloc(&b, total));
    CT_GUARD(ct_buf_append(&b, prev, 32));
    put_be(num, (uint64_t)seq, 8);
    CT_GUARD(ct_buf_append(&b, num, 8));
    put_be(num, (uint64_t)ts, 8);
    CT_GUARD(ct_buf_append(&b, num, 8));
    for (int i = 0; i < AUDIT_N_TEXT; i++) {
        put_be(num, text[i].n, 4);
        CT_GUARD(ct_buf_append(&b, num, 4));
        if (text[i].n > 0) CT_GUARD(ct_buf_append(&b, text[i].p, text[i].n));
    }
    CT_GUARD(ct_sha256(b.data, b.len, out));
cleanup:
    ct_buf_free(&b);
    return rc;
}

ct_err db_audit_append_tx(ct_db *db, const char *actor, const char *action, const char *subject,
                          const char *outcome, const char *detail)
{
    CT_GUARD_RET(db_check_str("audit actor", actor, DB_AUDIT_FIELD_MAX));
    CT_GUARD_RET(db_check_str("audit action", action, DB_AUDIT_FIELD_MAX));
    CT_GUARD_RET(db_check_str("audit outcome", outcome, DB_AUDIT_FIELD_MAX));
    /* A denied request may have no subject and most events no detail: both may be empty. */
    if (!subject) subject = "";
    if (!detail) detail = "";
    CT_ENSURE_RET(strnlen(subject, DB_AUDIT_FIELD_MAX) < DB_AUDIT_FIELD_MAX,
                  ct_fail(CT_ERR_ARG, "audit subject is longer than %d bytes", DB_AUDIT_FIELD_MAX - 1));
    CT_ENSURE_RET(strnlen(detail, DB_AUDIT_DETAIL_MAX) < DB_AUDIT_DETAIL_MAX,
                  ct_fail(CT_ERR_ARG, "audit detail is longer than %d bytes", DB_AUDIT_DETAIL_MAX - 1));

    /* The caller holds the write lock (BEGIN IMMEDIATE), so nobody can append between this read and the insert. */
    sqlite3_stmt *st = NULL;
    bool row = false;
    uint8_t prev[32] = {0}, hash[32];
    int64_t seq = 1;
    CT_GUARD_RET(db_prepare(db, k_audit_last, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) {
        seq = sqlite3_column_int64(st, 0) + 1;
        CT_GUARD_RET(db_col_hash(st, 1, prev));
    }
    int64_t ts = (int64_t)time(NULL);
    const span text[AUDIT_N_TEXT] = {{actor, strlen(actor)},     {action, strlen(action)},
                                     {subject, strlen(subject)}, {outcome, strlen(outcome)},
                                     {detail, strlen(detail)}};
    CT_GUARD_RET(audit_hash(prev, seq, ts, text, hash));
    return db_exec(db, k_audit_insert, NULL, "iitttttbb", seq, ts, actor, action, subject, outcome, detail, prev,
                   sizeof prev, hash, sizeof hash);
}

struct append_ctx {
    const db_audit_entry *entries;
    size_t n;
};

static ct_err append_fn(ct_db *db, void *vctx)
{
    const struct append_ctx *c = vctx;
    for (size_t i = 0; i < c->n; i++) {
        const db_audit_entry *e = &c->entries[i];
        CT_GUARD_RET(db_audit_append_tx(db, e->actor, e->action, e->subject, e->outcome, e->detail));
    }
    return CT_OK;
}

ct_err db_audit_append_all(ct_db *db, const db_audit_entry *entries, size_t n)
{
    CT_ENSURE_RET(db && (entries || !n), CT_ERR_ARG);
    struct append_ctx c = {entries, n};
    return n ? db_call(db, true, append_fn, &c) : CT_OK;
}

ct_err db_audit_append(ct_db *db, const char *actor, const char *action, const char *subject, const char *outcome,
                       const char *detail)
{
    const db_audit_entry e = {actor, action, subject, outcome, detail};
    return db_audit_append_all(db, &e, 1);
}

/* Records the first divergence in the report and as the error detail. */
static ct_err broken(db_audit_report *r, int64_t seq, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ct_err broken(db_audit_report *r, int64_t seq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    if (n < 0) r->reason[0] = '\0';
    r->first_bad_seq = seq;
    return ct_fail(CT_ERR_INTEGRITY, "audit chain broken: %s", r->reason);
}

static ct_err verify_fn(ct_db *db, void *vctx)
{
    db_audit_report *r = vctx;
    sqlite3_stmt *st = NULL;
    bool row = false;
    uint8_t prev[32] = {0}, stored_prev[32], stored[32], calc[32];
    CT_GUARD_RET(db_prepare(db, k_audit_all, &st, ""));
    for (int64_t expect = 1;; expect++) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        int64_t seq = sqlite3_column_int64(st, 0);
        if (seq > expect) return broken(r, expect, "entry %lld missing (deleted)", (long long)expect);
        if (seq < expect) return broken(r, seq, "entry %lld out of sequence (inserted)", (long long)seq);
        if (db_col_hash(st, 7, stored_prev) != CT_OK || memcmp(stored_prev, prev, 32) != 0) {
            if (seq == 1) return broken(r, seq, "entry 1 does not start the chain (inserted)");
            return broken(r, seq, "entry %lld does not follow entry %lld (reordered or inserted)", (long long)seq,
                          (long long)(seq - 1));
        }
        span text[AUDIT_N_TEXT];
        for (int i = 0; i < AUDIT_N_TEXT; i++) {
            /* Hash every stored byte (column_bytes, not strlen): an appended NUL and tail is an edit too. */
            text[i].p = sqlite3_column_text(st, 2 + i);
            text[i].n = (size_t)sqlite3_column_bytes(st, 2 + i);
        }
        CT_GUARD_RET(audit_hash(prev, seq, sqlite3_column_int64(st, 1), text, calc));
        if (db_col_hash(st, 8, stored) != CT_OK || memcmp(stored, calc, 32) != 0)
            return broken(r, seq, "entry %lld was edited (hash does not match its content)", (long long)seq);
        memcpy(prev, stored, 32);
        r->entries++;
    }
}

ct_err db_audit_verify(ct_db *db, db_audit_report *report)
{
    CT_ENSURE_RET(db && report, ct_fail(CT_ERR_ARG, "db_audit_verify: missing argument"));
    memset(report, 0, sizeof *report);
    /* One SELECT reads one consistent snapshot, even while other threads or processes append. */
    return db_call(db, false, verify_fn, report);
}
