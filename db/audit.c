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
 * an older copy of the database back. Both need an anchor kept outside this database (signed checkpoints), and,
 * since nobody outside holds the key to recompute a chain, checkpoints also bind an RFC 9162 tree whose leaves are
 * the entries' stored hashes (db_log_audit_fetch): its consistency proofs show a witness that a longer chain extends
 * the one it kept. Nothing more is computed here per entry. */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_audit_last[] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
static const char k_audit_insert[] = "INSERT INTO audit (seq, ts, actor, action, subject, outcome, detail, prev_hash, hash)"
                                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
/* [1]: with migration 18's raw; [0]: NULL for it, in a chain read before that migration (an older database's seal,
 * db_audit_keyed_tx, comes before its migrations). */
#define AUDIT_ROWS(raw, order)                                                                                   \
    "SELECT seq, ts, actor, action, subject, outcome, detail, prev_hash, hash, " raw " FROM audit" order
static const char *const k_audit_all[] = {AUDIT_ROWS("NULL", " ORDER BY seq"), AUDIT_ROWS("raw", " ORDER BY seq")};
static const char *const k_audit_newest[] = {AUDIT_ROWS("NULL", " ORDER BY seq DESC LIMIT 1"),
                                             AUDIT_ROWS("raw", " ORDER BY seq DESC LIMIT 1")};
#define HAS_RAW(db) ((db)->schema_version >= DB_MIGRATION_AUDIT_RAW)

enum { AUDIT_N_TEXT = 5 }; /* actor, action, subject, outcome, detail */

typedef struct {
    const void *p;
    size_t n;
} span;

static void put_be(uint8_t *out, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8) out[i] = (uint8_t)v;
}

/* How many bytes audit_encode_to writes for these texts; CT_ERR_TOO_LARGE for a field over 4 GiB. */
static ct_err audit_encoded_len(const span text[AUDIT_N_TEXT], size_t *total)
{
    *total = 32 + 8 + 8;
    for (int i = 0; i < AUDIT_N_TEXT; i++) {
        CT_ENSURE_RET(text[i].n <= UINT32_MAX, ct_fail(CT_ERR_TOO_LARGE, "audit field of %zu bytes", text[i].n));
        *total += 4 + text[i].n;
    }
    return CT_OK;
}

/* Appends the text fields, each its 4-byte big-endian length then its bytes, to b, which has room for them: the
 * tail of what an entry's hash covers, and migration 18's raw. */
static ct_err audit_text_to(const span text[AUDIT_N_TEXT], ct_buf *b)
{
    uint8_t num[4];
    for (int i = 0; i < AUDIT_N_TEXT; i++) {
        put_be(num, text[i].n, 4);
        CT_GUARD_RET(ct_buf_append(b, num, 4));
        if (text[i].n > 0) CT_GUARD_RET(ct_buf_append(b, text[i].p, text[i].n));
    }
    return CT_OK;
}

/* Appends the bytes an entry's hash covers (see the top of this file) to b, which has room for them. */
static ct_err audit_encode_to(const uint8_t prev[32], int64_t seq, int64_t ts, const span text[AUDIT_N_TEXT], ct_buf *b)
{
    uint8_t num[8];
    CT_GUARD_RET(ct_buf_append(b, prev, 32));
    put_be(num, (uint64_t)seq, 8);
    CT_GUARD_RET(ct_buf_append(b, num, 8));
    put_be(num, (uint64_t)ts, 8);
    CT_GUARD_RET(ct_buf_append(b, num, 8));
    return audit_text_to(text, b);
}

/* The bytes an entry's hash covers, in a buffer of their own. */
static ct_err audit_encode(const uint8_t prev[32], int64_t seq, int64_t ts, const span text[AUDIT_N_TEXT], ct_buf *b)
{
    size_t total = 0;
    CT_GUARD_RET(audit_encoded_len(text, &total));
    CT_GUARD_RET(ct_buf_alloc(b, total));
    return audit_encode_to(prev, seq, ts, text, b);
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
    /* Subjects and details carry outside text (a CSR's serialNumber, a request's path): bytes that are not UTF-8
     * would be refused by PostgreSQL, and the refusal they belong to would go unaudited. Kept as '?'. */
    char subject_text[DB_AUDIT_FIELD_MAX], detail_text[DB_AUDIT_DETAIL_MAX];
    CT_GUARD_RET(ct_strlcpy(subject_text, sizeof subject_text, subject));
    CT_GUARD_RET(ct_strlcpy(detail_text, sizeof detail_text, detail));
    if (ct_utf8_repair(subject_text)) subject = subject_text;
    if (ct_utf8_repair(detail_text)) detail = detail_text;

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

/* Migration 18's raw (audit_text_to's bytes) read back as the five fields; false when it is not that. */
static bool raw_fields(const uint8_t *raw, size_t n, span text[AUDIT_N_TEXT])
{
    for (int i = 0; i < AUDIT_N_TEXT; i++) {
        if (n < 4) return false;
        size_t len = (size_t)raw[0] << 24 | (size_t)raw[1] << 16 | (size_t)raw[2] << 8 | raw[3];
        if (len > n - 4) return false;
        text[i] = (span){raw + 4, len};
        raw += 4 + len, n -= 4 + len;
    }
    return n == 0;
}

/* Whether `shown` is `written` with '?' for each byte that is not UTF-8 (ct_utf8_repair: same length). */
static bool shown_as(span written, span shown)
{
    char s[DB_AUDIT_DETAIL_MAX];
    if (written.n >= sizeof s || shown.n != written.n || (written.n && memchr(written.p, '\0', written.n))) return false;
    if (written.n) memcpy(s, written.p, written.n);
    s[written.n] = '\0';
    (void)ct_utf8_repair(s);
    return written.n == 0 || memcmp(s, shown.p, shown.n) == 0;
}

/* The text fields of a row of k_audit_all / k_audit_newest as its hash covers them: as stored (column_bytes, not
 * strlen: an appended NUL and tail is an edit too), or migration 18's raw fields when the columns show exactly them
 * (their bytes that are not UTF-8 as '?'). So the columns read are what the MAC covers, or that with '?': an edit of
 * the columns or of raw leaves bytes that the MAC does not match. */
static void row_text(db_stmt *st, span text[AUDIT_N_TEXT])
{
    for (int i = 0; i < AUDIT_N_TEXT; i++) text[i].p = db_col_blob(st, 2 + i, &text[i].n);
    size_t n = 0;
    const uint8_t *raw = db_col_blob(st, 9, &n);
    span written[AUDIT_N_TEXT];
    if (!raw || !raw_fields(raw, n, written)) return;
    for (int i = 0; i < AUDIT_N_TEXT; i++)
        if (!shown_as(written[i], text[i])) return;
    memcpy(text, written, sizeof written);
}

ct_err db_audit_copy_text(const char *text[AUDIT_N_TEXT], db_audit_copy *out)
{
    bool repaired = false;
    span written[AUDIT_N_TEXT];
    size_t total = 0;
    out->raw.len = 0;
    for (int i = 0; i < AUDIT_N_TEXT; i++) /* longer than any entry written: copied as it is */
        if (text[i] && strlen(text[i]) >= sizeof out->shown[i]) return CT_OK;
    for (int i = 0; i < AUDIT_N_TEXT; i++) {
        CT_GUARD_RET(ct_strlcpy(out->shown[i], sizeof out->shown[i], text[i] ? text[i] : ""));
        written[i] = (span){out->shown[i], strlen(out->shown[i])};
        total += 4 + written[i].n;
    }
    for (int i = 0; i < AUDIT_N_TEXT; i++) repaired |= ct_utf8_repair(out->shown[i]);
    if (!repaired) return CT_OK;
    for (int i = 0; i < AUDIT_N_TEXT; i++) written[i].p = text[i] ? text[i] : "";
    if (out->raw.max < total) {
        ct_buf_free(&out->raw);
        CT_GUARD_RET(ct_buf_alloc(&out->raw, total));
    }
    return audit_text_to(written, &out->raw);
}

/* The bytes a row's hash covers. */
static ct_err row_encode(db_stmt *st, const uint8_t prev[32], ct_buf *msg)
{
    span text[AUDIT_N_TEXT];
    row_text(st, text);
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

/* The verdict on one entry of an intact sequence, in chain order: `kind` says how its stored hash matched. */
static ct_err judge(ct_db *db, int64_t seq, entry_kind kind, bool keyed_action, db_audit_report *r)
{
    bool keyed = r->keyed_from > 0;
    if (keyed && kind == ENTRY_SHA)
        return broken(r, seq, "entry %lld: MAC does not match (not written by this CA's key: a plain SHA-256 hash "
                              "after entry %lld began the keyed chain)", (long long)seq, (long long)r->keyed_from);
    if (kind == ENTRY_BAD && db->mac.fn)
        return broken(r, seq, "entry %lld: MAC does not match (not written by this CA's key)", (long long)seq);
    if (kind == ENTRY_BAD)
        return broken(r, seq, "entry %lld was edited (hash does not match its content)", (long long)seq);
    if (kind == ENTRY_MAC && !keyed) {
        if (seq != 1 && !keyed_action)
            return broken(r, seq, "entry %lld is the first MACed entry but not an %s entry (a keyed chain begins with "
                                  "entry 1 or that entry)", (long long)seq, DB_AUDIT_KEYED_ACTION);
        r->keyed_from = seq;
    }
    r->entries++;
    return CT_OK;
}

/* The chain is read in batches: each batch's rows are encoded, their MACs then computed in the token at once
 * (db_audit_mac.fn_many: a token with many cores MACs on several sessions) and judged in chain order, so that the
 * first divergence is the one named, as an entry-by-entry walk names it. Every entry's MAC is computed, except for
 * an entry whose plain SHA-256 is its stored hash (written unkeyed, or forged without the key): that is all its
 * MAC could have shown too (a MAC equal to a SHA-256 of the same bytes would be a collision). Once the chain is
 * keyed, an entry's SHA-256 is computed only when its MAC does not match (to say how it was forged): a keyed
 * chain's entries all need their MAC anyway, and the SHA-256 of each was a fifth of the reading's time. */
#define VERIFY_BATCH 1024
#define VERIFY_ARENA ((size_t)1 << 20) /* the batch's messages, back to back */

typedef struct {
    int64_t seq;
    size_t off, len;    /* its message in the arena (or `own`, for one larger than the arena) */
    bool sha;           /* its SHA-256 is the stored hash */
    bool sha_known;     /* sha was computed (else: only if its MAC does not match) */
    bool keyed_action;  /* an "audit.keyed" entry */
    uint8_t stored[32];
} batch_entry;

typedef struct {
    ct_buf arena, own;
    size_t n;
    batch_entry e[VERIFY_BATCH];
    const uint8_t *msgs[VERIFY_BATCH];
    size_t lens[VERIFY_BATCH];
    size_t mac_of[VERIFY_BATCH]; /* index into macs, for the entries MACed */
    int64_t mac_seq[VERIFY_BATCH]; /* the entry of each MAC: what a failure names */
    uint8_t macs[VERIFY_BATCH][32];
} verify_batch;

static const uint8_t *batch_msg(const verify_batch *b, const batch_entry *e)
{
    return e->off == SIZE_MAX ? b->own.data : b->arena.data + e->off;
}

/* ENTRY_SHA when the entry's plain SHA-256 is its stored hash. */
static ct_err entry_sha(const verify_batch *b, const batch_entry *e, entry_kind *kind)
{
    uint8_t calc[32];
    CT_GUARD_RET(ct_sha256(batch_msg(b, e), e->len, calc));
    if (ct_equal_ct(calc, e->stored, 32)) *kind = ENTRY_SHA;
    return CT_OK;
}

/* MACs the batch's entries that need it, judges every one in order and empties the batch. */
static ct_err batch_judge(ct_db *db, verify_batch *b, db_audit_report *r)
{
    ct_err rc = CT_OK;
    size_t n_mac = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->e[i].sha || !db->mac.fn) continue;
        b->mac_of[i] = n_mac;
        b->mac_seq[n_mac] = b->e[i].seq;
        b->msgs[n_mac] = batch_msg(b, &b->e[i]);
        b->lens[n_mac++] = b->e[i].len;
    }
    size_t failed = 0;
    if (n_mac > 0 && db->mac.fn_many) {
        rc = db->mac.fn_many(db->mac.ctx, n_mac, b->msgs, b->lens, b->macs, &failed);
    } else {
        for (; failed < n_mac; failed++) {
            rc = db->mac.fn(db->mac.ctx, b->msgs[failed], b->lens[failed], b->macs[failed]);
            if (rc != CT_OK) break;
        }
    }
    /* The entry, not its place in the batch: what the one who reads the error can look up. */
    if (rc != CT_OK) {
        rc = ct_fail_ctx(rc, "audit entry %lld", (long long)b->mac_seq[failed < n_mac ? failed : 0]);
        goto cleanup;
    }
    for (size_t i = 0; i < b->n; i++) {
        const batch_entry *e = &b->e[i];
        entry_kind kind = e->sha ? ENTRY_SHA : ENTRY_BAD;
        if (!e->sha && db->mac.fn && ct_equal_ct(b->macs[b->mac_of[i]], e->stored, 32)) kind = ENTRY_MAC;
        if (kind == ENTRY_BAD && !e->sha_known) CT_GUARD(entry_sha(b, e, &kind));
        CT_GUARD(judge(db, e->seq, kind, e->keyed_action, r));
    }
cleanup:
    b->n = 0;
    b->arena.len = 0;
    ct_buf_free(&b->own);
    return rc;
}

/* Adds the current row (its place in the chain checked) to the batch, judging the batch first when it is full. */
static ct_err batch_add(ct_db *db, verify_batch *b, db_stmt *st, const uint8_t prev[32], const uint8_t stored[32],
                        db_audit_report *r)
{
    span text[AUDIT_N_TEXT];
    size_t len = 0;
    row_text(st, text);
    CT_GUARD_RET(audit_encoded_len(text, &len));
    if (b->n == VERIFY_BATCH || len > b->arena.max - b->arena.len)
        CT_GUARD_RET(batch_judge(db, b, r));
    batch_entry *e = &b->e[b->n];
    *e = (batch_entry){.seq = db_col_int(st, 0), .off = b->arena.len, .len = len};
    ct_buf *to = &b->arena;
    if (len > b->arena.max) { /* edited to be huge: alone in the batch, in a buffer of its own */
        CT_GUARD_RET(ct_buf_alloc(&b->own, len));
        to = &b->own;
        e->off = SIZE_MAX;
    }
    CT_GUARD_RET(audit_encode_to(prev, e->seq, db_col_int(st, 1), text, to));
    memcpy(e->stored, stored, 32);
    if (r->keyed_from == 0 || !db->mac.fn) { /* an unkeyed entry may come: its SHA-256 spares its MAC */
        entry_kind kind = ENTRY_BAD;
        CT_GUARD_RET(entry_sha(b, e, &kind));
        e->sha = kind == ENTRY_SHA;
        e->sha_known = true;
    }
    const char *action = db_col_str(st, 3);
    e->keyed_action = action && strcmp(action, DB_AUDIT_KEYED_ACTION) == 0;
    b->n++;
    return CT_OK;
}

static ct_err verify_fn(ct_db *db, void *vctx)
{
    ct_err rc = CT_OK, at_row = CT_OK;
    db_audit_report *r = vctx;
    db_stmt *st = NULL;
    bool row = false;
    uint8_t prev[32] = {0}, stored_prev[32], stored[32];
    verify_batch *b = calloc(1, sizeof *b);
    CT_ENSURE(b, CT_ERR_NOMEM);
    CT_GUARD(ct_buf_alloc(&b->arena, VERIFY_ARENA));
    CT_GUARD(db_prepare(db, k_audit_all[HAS_RAW(db)], &st, ""));
    /* A row out of place ends the reading; the rows before it are judged first (one of them may be the first
     * divergence), then it is. */
    for (int64_t expect = 1;; expect++) {
        CT_GUARD(db_step(db, st, &row));
        if (!row) break;
        int64_t seq = db_col_int(st, 0);
        if (seq > expect) {
            at_row = broken(r, expect, "entry %lld missing (deleted)", (long long)expect);
        } else if (seq < expect) {
            at_row = broken(r, seq, "entry %lld out of sequence (inserted)", (long long)seq);
        } else if (db_col_hash(st, 7, stored_prev) != CT_OK || memcmp(stored_prev, prev, 32) != 0) {
            at_row = seq == 1 ? broken(r, seq, "entry 1 does not start the chain (inserted)")
                              : broken(r, seq, "entry %lld does not follow entry %lld (reordered or inserted)",
                                       (long long)seq, (long long)(seq - 1));
        } else if (db_col_hash(st, 8, stored) != CT_OK) {
            at_row = broken(r, seq, "entry %lld has no 32-byte hash (edited)", (long long)seq);
        }
        if (at_row != CT_OK) break;
        CT_GUARD(batch_add(db, b, st, prev, stored, r));
        memcpy(prev, stored, 32);
    }
    CT_GUARD(batch_judge(db, b, r));
    if (at_row != CT_OK) { /* the rows before it are intact: its reason stands */
        rc = ct_fail(at_row, "audit chain broken: %s", r->reason);
        goto cleanup;
    }
    /* A keyed CA's chain with no MACed entry was rewritten without the token (or its keyed entries removed). */
    if (db->mac.fn && r->entries > 0 && r->keyed_from == 0)
        rc = broken(r, 1, "no entry is MACed with this CA's audit key (the chain was rewritten, or its keyed "
                          "entries deleted)");
cleanup:
    if (b) {
        ct_buf_free(&b->arena);
        ct_buf_free(&b->own);
        free(b);
    }
    return rc;
}

ct_err db_audit_verify(ct_db *db, db_audit_report *report)
{
    CT_ENSURE_RET(db && report, ct_fail(CT_ERR_ARG, "db_audit_verify: missing argument"));
    memset(report, 0, sizeof *report);
    int64_t t0 = ct_now_ms();
    /* One SELECT reads one consistent snapshot, even while other threads or processes append. */
    ct_err rc = db_call(db, false, verify_fn, report);
    report->ms = ct_now_ms() - t0;
    return rc;
}

ct_err db_audit_unkeyed_tx(ct_db *db, bool *unkeyed)
{
    ct_err rc = CT_OK;
    db_stmt *st = NULL;
    bool row = false;
    uint8_t stored_prev[32], stored[32], calc[32];
    ct_buf msg = CT_BUF_INIT;
    *unkeyed = true;
    CT_GUARD(db_prepare(db, k_audit_newest[HAS_RAW(db)], &st, ""));
    CT_GUARD(db_step(db, st, &row));
    if (!row) goto cleanup; /* an empty chain is keyed from its entry 1 */
    CT_GUARD(db_col_hash(st, 7, stored_prev));
    CT_GUARD(db_col_hash(st, 8, stored));
    CT_GUARD(row_encode(st, stored_prev, &msg));
    CT_GUARD(ct_sha256(msg.data, msg.len, calc));
    *unkeyed = ct_equal_ct(calc, stored, 32);
cleanup:
    ct_buf_free(&msg);
    return rc;
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
    CT_GUARD(db_prepare(db, k_audit_newest[HAS_RAW(db)], &st, ""));
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
