/* db audit: an append-only, chained log of everything the CA decided, each entry authenticated by the CA's token.
 *
 * msg_n = prev_hash || seq || ts || actor || action || subject || outcome || detail, with seq and ts as 8-byte
 * big-endian integers and every text field prefixed by its 4-byte big-endian length, so no two different
 * entries encode to the same bytes. Entry 1's prev_hash is 32 zero bytes.
 * hash_n = HMAC-SHA256(audit key, msg_n) on a keyed handle (db_open_keyed: the key never leaves the token), or
 * SHA-256(msg_n) on an unkeyed one (chains written before keying, and tests of the chain itself).
 *
 * Triggers refuse UPDATE and DELETE through SQL; the chain catches whoever edits the file around them, and the
 * MAC whoever recomputes the chain after an edit, an insertion or a forged entry: without the token nobody can
 * write an entry that verifies. A chain begun unkeyed is sealed by its "audit.keyed" entry, whose MAC covers
 * the hash of the last unkeyed entry and so, through the chain, every one before it.
 * What MACs alone cannot show: deleting the newest entries (a shorter chain is still a valid chain), or putting
 * an older copy of the database back. Both need an anchor kept outside this database (signed checkpoints). */
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
static const char k_audit_newest[] =
    "SELECT seq, ts, actor, action, subject, outcome, detail, prev_hash, hash FROM audit ORDER BY seq DESC LIMIT 1";

enum { AUDIT_N_TEXT = 5 }; /* actor, action, subject, outcome, detail */

typedef struct {
    const void *p;
    size_t n;
} span;

static void put_be(uint8_t *out, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8) out[i] = (uint8_t)v;
}

/* The bytes an entry's hash covers (see the top of this file). */
static ct_err audit_encode(const uint8_t prev[32], int64_t seq, int64_t ts, const span text[AUDIT_N_TEXT], ct_buf *b)
{
    uint8_t num[8];
    size_t total = 32 + 8 + 8;
    for (int i = 0; i < AUDIT_N_TEXT; i++) {
        CT_ENSURE_RET(text[i].n <= UINT32_MAX, ct_fail(CT_ERR_TOO_LARGE, "audit field of %zu bytes", text[i].n));
        total += 4 + text[i].n;
    }
    CT_GUARD_RET(ct_buf_alloc(b, total));
    CT_GUARD_RET(ct_buf_append(b, prev, 32));
    put_be(num, (uint64_t)seq, 8);
    CT_GUARD_RET(ct_buf_append(b, num, 8));
    put_be(num, (uint64_t)ts, 8);
    CT_GUARD_RET(ct_buf_append(b, num, 8));
    for (int i = 0; i < AUDIT_N_TEXT; i++) {
        put_be(num, text[i].n, 4);
        CT_GUARD_RET(ct_buf_append(b, num, 4));
        if (text[i].n > 0) CT_GUARD_RET(ct_buf_append(b, text[i].p, text[i].n));
    }
    return CT_OK;
}

/* An entry's hash as this handle writes it: MACed in the token when keyed, else SHA-256. */
static ct_err audit_hash(ct_db *db, const ct_buf *msg, uint8_t out[32])
{
    return db->mac.fn ? db->mac.fn(db->mac.ctx, msg->data, msg->len, out) : ct_sha256(msg->data, msg->len, out);
}

static ct_err audit_insert(ct_db *db, int64_t seq, const uint8_t prev[32], const char *actor, const char *action,
                           const char *subject, const char *outcome, const char *detail)
{
    ct_err rc = CT_OK;
    ct_buf msg = CT_BUF_INIT;
    uint8_t hash[32];
    int64_t ts = db_now();
    const span text[AUDIT_N_TEXT] = {{actor, strlen(actor)},     {action, strlen(action)},
                                     {subject, strlen(subject)}, {outcome, strlen(outcome)},
                                     {detail, strlen(detail)}};
    CT_GUARD(audit_encode(prev, seq, ts, text, &msg));
    CT_GUARD(audit_hash(db, &msg, hash));
    CT_GUARD(db_exec(db, k_audit_insert, NULL, "iitttttbb", seq, ts, actor, action, subject, outcome, detail, prev,
                     (size_t)32, hash, sizeof hash));
cleanup:
    ct_buf_free(&msg);
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
    db_stmt *st = NULL;
    bool row = false;
    uint8_t prev[32] = {0};
    int64_t seq = 1;
    CT_GUARD_RET(db_prepare(db, k_audit_last, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) {
        seq = db_col_int(st, 0) + 1;
        CT_GUARD_RET(db_col_hash(st, 1, prev));
    }
    return audit_insert(db, seq, prev, actor, action, subject, outcome, detail);
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

/* Reads a row of k_audit_all / k_audit_newest: its text fields as stored (column_bytes, not strlen: an
 * appended NUL and tail is an edit too) and the bytes its hash covers. */
static ct_err row_encode(db_stmt *st, const uint8_t prev[32], ct_buf *msg)
{
    span text[AUDIT_N_TEXT];
    for (int i = 0; i < AUDIT_N_TEXT; i++) {
        text[i].p = db_col_blob(st, 2 + i, &text[i].n);
    }
    return audit_encode(prev, db_col_int(st, 0), db_col_int(st, 1), text, msg);
}

/* How a stored hash matches its entry: the token's MAC, plain SHA-256 (written unkeyed), or neither. */
typedef enum { ENTRY_BAD, ENTRY_SHA, ENTRY_MAC } entry_kind;

static ct_err entry_check(ct_db *db, const ct_buf *msg, const uint8_t stored[32], bool want_mac, entry_kind *kind)
{
    uint8_t calc[32];
    *kind = ENTRY_BAD;
    if (!want_mac) {
        CT_GUARD_RET(ct_sha256(msg->data, msg->len, calc));
        if (ct_equal_ct(calc, stored, 32)) *kind = ENTRY_SHA;
    }
    if (*kind == ENTRY_BAD && db->mac.fn) {
        CT_GUARD_RET(db->mac.fn(db->mac.ctx, msg->data, msg->len, calc));
        if (ct_equal_ct(calc, stored, 32)) *kind = ENTRY_MAC;
    }
    if (*kind == ENTRY_BAD && want_mac) { /* to say how it was forged */
        CT_GUARD_RET(ct_sha256(msg->data, msg->len, calc));
        if (ct_equal_ct(calc, stored, 32)) *kind = ENTRY_SHA;
    }
    return CT_OK;
}

static ct_err verify_row(ct_db *db, db_stmt *st, int64_t seq, uint8_t prev[32], db_audit_report *r)
{
    ct_err rc = CT_OK;
    ct_buf msg = CT_BUF_INIT;
    uint8_t stored[32];
    entry_kind kind = ENTRY_BAD;
    bool keyed = r->keyed_from > 0;
    if (db_col_hash(st, 8, stored) != CT_OK) {
        rc = broken(r, seq, "entry %lld has no 32-byte hash (edited)", (long long)seq);
        goto cleanup;
    }
    CT_GUARD(row_encode(st, prev, &msg));
    CT_GUARD(entry_check(db, &msg, stored, keyed, &kind));
    if (keyed && kind == ENTRY_SHA) {
        rc = broken(r, seq, "entry %lld: MAC does not match (not written by this CA's key: a plain SHA-256 hash after "
                            "entry %lld began the keyed chain)", (long long)seq, (long long)r->keyed_from);
    } else if (kind == ENTRY_BAD && db->mac.fn) {
        rc = broken(r, seq, "entry %lld: MAC does not match (not written by this CA's key)", (long long)seq);
    } else if (kind == ENTRY_BAD) {
        rc = broken(r, seq, "entry %lld was edited (hash does not match its content)", (long long)seq);
    } else if (kind == ENTRY_MAC && !keyed) {
        const char *action = db_col_str(st, 3);
        if (seq != 1 && !(action && strcmp(action, DB_AUDIT_KEYED_ACTION) == 0))
            rc = broken(r, seq, "entry %lld is the first MACed entry but not an %s entry (a keyed chain begins with "
                                "entry 1 or that entry)", (long long)seq, DB_AUDIT_KEYED_ACTION);
        else
            r->keyed_from = seq;
    }
    if (rc == CT_OK) memcpy(prev, stored, 32);
cleanup:
    ct_buf_free(&msg);
    return rc;
}

static ct_err verify_fn(ct_db *db, void *vctx)
{
    db_audit_report *r = vctx;
    db_stmt *st = NULL;
    bool row = false;
    uint8_t prev[32] = {0}, stored_prev[32];
    CT_GUARD_RET(db_prepare(db, k_audit_all, &st, ""));
    for (int64_t expect = 1;; expect++) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) break;
        int64_t seq = db_col_int(st, 0);
        if (seq > expect) return broken(r, expect, "entry %lld missing (deleted)", (long long)expect);
        if (seq < expect) return broken(r, seq, "entry %lld out of sequence (inserted)", (long long)seq);
        if (db_col_hash(st, 7, stored_prev) != CT_OK || memcmp(stored_prev, prev, 32) != 0) {
            if (seq == 1) return broken(r, seq, "entry 1 does not start the chain (inserted)");
            return broken(r, seq, "entry %lld does not follow entry %lld (reordered or inserted)", (long long)seq,
                          (long long)(seq - 1));
        }
        CT_GUARD_RET(verify_row(db, st, seq, prev, r));
        r->entries++;
    }
    /* A keyed CA's chain with no MACed entry was rewritten without the token (or its keyed entries removed). */
    if (db->mac.fn && r->entries > 0 && r->keyed_from == 0)
        return broken(r, 1, "no entry is MACed with this CA's audit key (the chain was rewritten, or its keyed "
                            "entries deleted)");
    return CT_OK;
}

ct_err db_audit_verify(ct_db *db, db_audit_report *report)
{
    CT_ENSURE_RET(db && report, ct_fail(CT_ERR_ARG, "db_audit_verify: missing argument"));
    memset(report, 0, sizeof *report);
    /* One SELECT reads one consistent snapshot, even while other threads or processes append. */
    return db_call(db, false, verify_fn, report);
}

ct_err db_audit_keyed_tx(ct_db *db)
{
    ct_err rc = CT_OK;
    db_stmt *st = NULL;
    bool row = false;
    uint8_t prev[32], stored_prev[32];
    entry_kind kind = ENTRY_BAD;
    ct_buf msg = CT_BUF_INIT;
    char detail[160];
    CT_ENSURE(db->mac.fn, CT_ERR_ARG);
    CT_GUARD(db_prepare(db, k_audit_newest, &st, ""));
    CT_GUARD(db_step(db, st, &row));
    if (!row) goto cleanup; /* an empty chain is keyed from its entry 1 */
    int64_t seq = db_col_int(st, 0);
    CT_GUARD(db_col_hash(st, 7, stored_prev));
    CT_GUARD(db_col_hash(st, 8, prev));
    CT_GUARD(row_encode(st, stored_prev, &msg));
    CT_GUARD(entry_check(db, &msg, prev, true, &kind));
    if (kind == ENTRY_MAC) goto cleanup; /* sealed already */
    CT_GUARD(ct_snprintf(detail, sizeof detail,
                         "entries 1-%lld are SHA-256 chained; this one and every later one are HMAC-SHA256 in the token",
                         (long long)seq));
    CT_GUARD(audit_insert(db, seq + 1, prev, "camtrust-db", DB_AUDIT_KEYED_ACTION,
                          db->mac.key_name ? db->mac.key_name : "", "ok", detail));
cleanup:
    ct_buf_free(&msg);
    return rc;
}
