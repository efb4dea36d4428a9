/* db log: the issuance log's leaves and signed tree heads (see db_log.h). The leaf is appended by cert_issue_tx
 * (db.c) inside the issuance's own transaction, so a certificate that left the CA is always in the log. */
#define _POSIX_C_SOURCE 200809L
#include "db_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_priv.h"

static const char k_leaf_append[] =
    "INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash)"
    " VALUES ((SELECT coalesce(max(leaf_index) + 1, 0) FROM log_leaves), ?, ?)";
static const char k_log_size[] = "SELECT coalesce(max(leaf_index) + 1, 0) FROM log_leaves";
static const char k_leaves_from[] = "SELECT leaf_index, leaf_hash FROM log_leaves WHERE leaf_index >= ?"
                                    " ORDER BY leaf_index LIMIT ?";
static const char k_leaf_find[] = "SELECT l.leaf_index, c.der FROM log_leaves l"
                                  " JOIN certificates c ON c.cert_serial_hex = l.cert_serial_hex"
                                  " WHERE l.cert_serial_hex = ?";
static const char k_entries_from[] = "SELECT l.leaf_index, c.der FROM log_leaves l"
                                     " LEFT JOIN certificates c ON c.cert_serial_hex = l.cert_serial_hex"
                                     " WHERE l.leaf_index >= ? ORDER BY l.leaf_index LIMIT ?";
static const char k_head_insert[] =
    "INSERT INTO log_tree_heads (tree_size, timestamp_ms, root_hash, signature) VALUES (?, ?, ?, ?) RETURNING id";
static const char k_head_latest[] = "SELECT id, tree_size, timestamp_ms, root_hash, signature FROM log_tree_heads"
                                    " ORDER BY id DESC LIMIT 1";
static const char k_head_all[] =
    "SELECT id, tree_size, timestamp_ms, root_hash, signature FROM log_tree_heads ORDER BY id";
static const char k_verify_leaves[] =
    "SELECT l.leaf_index, l.cert_serial_hex, l.leaf_hash, c.der, c.rowid FROM log_leaves l"
    " LEFT JOIN certificates c ON c.cert_serial_hex = l.cert_serial_hex ORDER BY l.leaf_index";
static const char k_verify_unlogged[] =
    "SELECT cert_serial_hex FROM certificates c WHERE NOT EXISTS"
    " (SELECT 1 FROM log_leaves l WHERE l.cert_serial_hex = c.cert_serial_hex)"
    " AND c.profile NOT IN " DB_OPERATOR_PROFILES " ORDER BY c.rowid LIMIT 1";

/* The audit tree's leaves (leaf i: entry number i + 1's stored hash), as leaf_range reads them. */
static const char k_audit_leaves_from[] = "SELECT seq - 1, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?";
static const char k_audit_head[] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
static const char k_audit_at[] = "SELECT seq, hash FROM audit WHERE seq = ?";
static const char k_ckpt_insert[] = "INSERT INTO log_checkpoints (tree_size, audit_entries, note) VALUES (?, ?, ?) RETURNING id";
static const char k_ckpt_latest[] = "SELECT id, tree_size, note FROM log_checkpoints ORDER BY id DESC LIMIT 1";
static const char k_ckpt_next[] = "SELECT id, tree_size, note FROM log_checkpoints WHERE id > ? ORDER BY id LIMIT 1";
/* Entries past what the newest checkpoint binds that changed something: not the checkpoints' own entries, the tree
 * heads' nor the witnesses' cosignatures (they follow the log's growth, which the checkpoint's size binds, and every
 * checkpoint: counting them, a checkpoint signed on the tick would call for another after the burst's tree head),
 * nor refusals (outcome "denied": nothing changed, and anyone can cause them), nor a CRL stored (it follows from the
 * revocations, each due itself, and from the clock: every CRL refresh of every generation would call for one), nor
 * an officer's reads (a console open on the checkpoint page would call for one every few seconds). */
static const char k_audit_uncovered[] =
    "SELECT count(*) FROM (SELECT 1 FROM audit WHERE seq > COALESCE((SELECT audit_entries FROM log_checkpoints"
    " ORDER BY id DESC LIMIT 1), 0) AND outcome = 'ok'"
    " AND action NOT IN ('log.checkpoint', 'log.cosignature', 'log.sth', '" DB_CRL_STORE_ACTION "',"
    " 'officer.read', 'officer.search', 'officer.report')"
    " LIMIT 1) AS t";

ct_err db_log_append_tx(ct_db *db, const char *cert_serial_hex, const uint8_t leaf_hash[32])
{
    return db_exec(db, k_leaf_append, NULL, "tb", cert_serial_hex, leaf_hash, (size_t)32);
}

/* The log's size, inside the caller's transaction. */
static ct_err size_tx(ct_db *db, uint64_t *size)
{
    int64_t n = 0;
    CT_GUARD_RET(db_query_int(db, k_log_size, &n, ""));
    *size = (uint64_t)n;
    return CT_OK;
}

/* One number a query without parameters reads, in a read transaction of its own. */
struct count_ctx {
    const char *sql;
    int64_t n;
};

static ct_err count_fn(ct_db *db, void *vctx)
{
    struct count_ctx *c = vctx;
    return db_query_int(db, c->sql, &c->n, "");
}

static ct_err count_of(ct_db *db, const char *sql, int64_t *n)
{
    struct count_ctx c = {.sql = sql};
    CT_GUARD_RET(db_call(db, false, count_fn, &c));
    *n = c.n;
    return CT_OK;
}

ct_err db_log_size(ct_db *db, uint64_t *size)
{
    CT_ENSURE_RET(db && size, ct_fail(CT_ERR_ARG, "db_log_size: missing argument"));
    int64_t n = 0;
    CT_GUARD_RET(count_of(db, k_log_size, &n));
    *size = (uint64_t)n;
    return CT_OK;
}

/* How a gap's message names a row: a log leaf by its index, an audit entry by its seq (index + 1), as audit verify
 * and the checkpoint checks name it. */
typedef struct {
    const char *what;
    uint64_t first_number;
} row_naming;
static const row_naming k_log_leaf = {"log leaf", 0}, k_audit_entry = {"audit entry", 1};

/* The rows of a leaf-range query (leaf_index first), [from, from + count) in order and without a gap, each to
 * `row_fn`; *n: how many there were. */
typedef ct_err (*leaf_row_fn)(db_stmt *st, uint64_t index, void *arg);
static ct_err leaf_range(ct_db *db, const char *sql, const row_naming *naming, uint64_t from, uint64_t count,
                         leaf_row_fn row_fn, void *arg, uint64_t *n)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, sql, &st, "ii", (int64_t)from, (int64_t)count));
    for (*n = 0;; (*n)++) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        CT_ENSURE_RET((uint64_t)db_col_int(st, 0) == from + *n,
                      ct_fail(CT_ERR_INTEGRITY, "%s %llu is missing", naming->what,
                              (unsigned long long)(from + *n + naming->first_number)));
        CT_GUARD_RET(row_fn(st, from + *n, arg));
    }
}

struct leaves_ctx {
    uint64_t from, count;
    ct_merkle_hash *out;
    bool audit; /* the audit tree's leaves, not the issuance log's */
};

static ct_err hash_row(db_stmt *st, uint64_t index, void *arg)
{
    struct leaves_ctx *c = arg;
    return db_col_hash(st, 1, c->out[index - c->from]);
}

/* An audit entry's stored hash as its leaf hash: one SHA-256 of 33 bytes, computed when a tree is read, so that
 * appending an entry costs nothing more. */
static ct_err audit_leaf_row(db_stmt *st, uint64_t index, void *arg)
{
    struct leaves_ctx *c = arg;
    uint8_t hash[32];
    CT_GUARD_RET(db_col_hash(st, 1, hash));
    return ct_merkle_leaf_hash(hash, sizeof hash, c->out[index - c->from]);
}

static ct_err leaves_fn(ct_db *db, void *vctx)
{
    struct leaves_ctx *c = vctx;
    return c->audit ? leaf_range(db, k_audit_leaves_from, &k_audit_entry, c->from, c->count, audit_leaf_row, c,
                                 &c->count)
                    : leaf_range(db, k_leaves_from, &k_log_leaf, c->from, c->count, hash_row, c, &c->count);
}

ct_err db_log_leaves_from(ct_db *db, uint64_t from, ct_merkle_hash *out, uint64_t *count)
{
    CT_ENSURE_RET(db && out && count && *count <= INT64_MAX && from <= INT64_MAX,
                  ct_fail(CT_ERR_ARG, "db_log_leaves_from: bad argument"));
    struct leaves_ctx c = {.from = from, .count = *count, .out = out};
    CT_GUARD_RET(db_call(db, false, leaves_fn, &c));
    *count = c.count;
    return CT_OK;
}

ct_err db_log_fetch(void *db, uint64_t from, uint64_t n, ct_merkle_hash *out, uint64_t *got)
{
    *got = n;
    return db_log_leaves_from(db, from, out, got);
}

ct_err db_log_audit_fetch(void *db, uint64_t from, uint64_t n, ct_merkle_hash *out, uint64_t *got)
{
    CT_ENSURE_RET(db && out && got && n <= INT64_MAX && from <= INT64_MAX,
                  ct_fail(CT_ERR_ARG, "db_log_audit_fetch: bad argument"));
    struct leaves_ctx c = {.from = from, .count = n, .out = out, .audit = true};
    CT_GUARD_RET(db_call(db, false, leaves_fn, &c));
    *got = c.count;
    return CT_OK;
}

ct_err db_log_leaves(ct_db *db, uint64_t n, ct_merkle_hash **out)
{
    ct_err rc = CT_OK;
    ct_merkle_hash *all = NULL;
    uint64_t got = n;
    CT_ENSURE_MSG(db && out && n <= SIZE_MAX / sizeof *all, CT_ERR_ARG, "db_log_leaves: bad argument");
    all = malloc(n ? n * sizeof *all : 1);
    CT_ENSURE(all, CT_ERR_NOMEM);
    CT_GUARD(db_log_leaves_from(db, 0, all, &got));
    CT_ENSURE_MSG(got == n, CT_ERR_USAGE, "tree size %llu is larger than the log (%llu leaves)", (unsigned long long)n,
                  (unsigned long long)got);
    *out = all;
    all = NULL;
cleanup:
    free(all);
    return rc;
}

struct entries_ctx {
    uint64_t from, count;
    db_log_entry_fn fn;
    void *arg;
};

static ct_err entry_row(db_stmt *st, uint64_t index, void *arg)
{
    struct entries_ctx *c = arg;
    size_t len = 0;
    const void *der = db_col_blob(st, 1, &len);
    CT_ENSURE_RET(der && len > 0, ct_fail(CT_ERR_INTEGRITY, "log leaf %llu has no certificate", (unsigned long long)index));
    return c->fn(c->arg, index, der, len);
}

static ct_err entries_fn(ct_db *db, void *vctx)
{
    struct entries_ctx *c = vctx;
    uint64_t n = 0;
    CT_GUARD_RET(leaf_range(db, k_entries_from, &k_log_leaf, c->from, c->count, entry_row, c, &n));
    CT_ENSURE_RET(n == c->count, ct_fail(CT_ERR_USAGE, "the log ends before leaf %llu", (unsigned long long)(c->from + c->count)));
    return CT_OK;
}

ct_err db_log_entries(ct_db *db, uint64_t from, uint64_t count, db_log_entry_fn fn, void *arg)
{
    CT_ENSURE_RET(db && fn && count <= DB_LOG_ENTRIES_MAX && from <= INT64_MAX - DB_LOG_ENTRIES_MAX,
                  ct_fail(CT_ERR_ARG, "db_log_entries: bad argument"));
    struct entries_ctx c = {.from = from, .count = count, .fn = fn, .arg = arg};
    return db_call(db, false, entries_fn, &c);
}

struct find_ctx {
    const char *serial;
    uint64_t index;
    ct_buf *der;
};

static ct_err find_fn(ct_db *db, void *vctx)
{
    struct find_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_leaf_find, &st, "t", c->serial));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(row, ct_fail(CT_ERR_NOT_FOUND, "no certificate with serial %s is in the log", c->serial));
    c->index = (uint64_t)db_col_int(st, 0);
    size_t len = 0;
    const void *der = db_col_blob(st, 1, &len);
    CT_ENSURE_RET(der && len > 0, ct_fail(CT_ERR_DB, "certificate %s has no DER", c->serial));
    CT_GUARD_RET(ct_buf_alloc(c->der, len));
    return ct_buf_set(c->der, der, len);
}

ct_err db_log_find(ct_db *db, const char *cert_serial_hex, uint64_t *index, ct_buf *der)
{
    CT_ENSURE_RET(db && index && der, ct_fail(CT_ERR_ARG, "db_log_find: missing argument"));
    CT_GUARD_RET(db_check_str("certificate serial", cert_serial_hex, DB_CERT_SERIAL_HEX_MAX));
    struct find_ctx c = {.serial = cert_serial_hex, .der = der};
    ct_err rc = db_call(db, false, find_fn, &c);
    if (rc != CT_OK) ct_buf_free(der);
    else *index = c.index;
    return rc;
}

/* ---- tree heads ---- */

static ct_err head_from_row(db_stmt *st, db_tree_head *out)
{
    memset(out, 0, sizeof *out);
    out->id = db_col_int(st, 0);
    out->head.tree_size = (uint64_t)db_col_int(st, 1);
    out->head.timestamp_ms = (uint64_t)db_col_int(st, 2);
    CT_GUARD_RET(db_col_hash(st, 3, out->head.root));
    size_t n = 0;
    const void *sig = db_col_blob(st, 4, &n);
    /* An oversized signature is kept short of the buffer: it fails verification, as a forged one should. */
    out->head.sig_len = n < sizeof out->head.sig ? n : sizeof out->head.sig;
    if (sig && out->head.sig_len) memcpy(out->head.sig, sig, out->head.sig_len);
    return CT_OK;
}

static ct_err latest_fn(ct_db *db, void *out)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_head_latest, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_ERR_NOT_FOUND;
    return head_from_row(st, out);
}

ct_err db_log_tree_head_latest(ct_db *db, db_tree_head *out)
{
    CT_ENSURE_RET(db && out, ct_fail(CT_ERR_ARG, "db_log_tree_head_latest: missing argument"));
    return db_call(db, false, latest_fn, out);
}

struct head_ctx {
    const ct_tree_head *h;
    const char *actor;
    int64_t id;
};

static ct_err head_add_tx(ct_db *db, void *vctx)
{
    struct head_ctx *c = vctx;
    const ct_tree_head *h = c->h;
    uint64_t size = 0;
    db_tree_head last;
    CT_GUARD_RET(db_lease_fence_tx(db));
    CT_GUARD_RET(size_tx(db, &size));
    CT_ENSURE_RET(h->tree_size <= size, ct_fail(CT_ERR_USAGE, "tree size %llu is larger than the log (%llu leaves)",
                                                (unsigned long long)h->tree_size, (unsigned long long)size));
    ct_err rc = latest_fn(db, &last);
    if (rc == CT_OK) {
        CT_ENSURE_RET(h->tree_size >= last.head.tree_size && h->timestamp_ms >= last.head.timestamp_ms,
                      ct_fail(CT_ERR_USAGE, "a tree head must not go back (tree head %lld: size %llu, timestamp %llu)",
                              (long long)last.id, (unsigned long long)last.head.tree_size,
                              (unsigned long long)last.head.timestamp_ms));
    } else if (rc != CT_ERR_NOT_FOUND) {
        return rc;
    }
    CT_GUARD_RET(db_query_int(db, k_head_insert, &c->id, "iibb", (int64_t)h->tree_size, (int64_t)h->timestamp_ms,
                              h->root, sizeof h->root, h->sig, h->sig_len));
    char subject[48], root[2 * CT_MERKLE_HASH_LEN + 1], detail[160];
    CT_GUARD_RET(ct_hex_encode(h->root, sizeof h->root, root, sizeof root));
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "tree head %lld", (long long)c->id));
    CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "size=%llu timestamp=%llu root=%s", (unsigned long long)h->tree_size,
                             (unsigned long long)h->timestamp_ms, root));
    return db_audit_append_tx(db, c->actor, "log.sth", subject, "ok", detail);
}

ct_err db_log_tree_head_add(ct_db *db, const ct_tree_head *h, const char *actor, int64_t *id)
{
    CT_ENSURE_RET(db && h && h->sig_len > 0 && h->sig_len <= sizeof h->sig,
                  ct_fail(CT_ERR_ARG, "db_log_tree_head_add: unsigned tree head"));
    CT_ENSURE_RET(h->tree_size <= INT64_MAX && h->timestamp_ms <= INT64_MAX, ct_fail(CT_ERR_ARG, "tree head out of range"));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct head_ctx c = {.h = h, .actor = actor};
    CT_GUARD_RET(db_call(db, true, head_add_tx, &c));
    if (id) *id = c.id;
    return CT_OK;
}

/* ---- verification ---- */

typedef struct {
    db_tree_head_check check;
    void *arg;
    db_log_report *r;
    db_tree_head *heads;
    ct_merkle_hash *roots; /* the root recomputed for each tree head, as the walk reaches its size */
    size_t n_heads, next;  /* tree heads loaded; the next one whose size the walk has to reach */
    ct_merkle_frontier tree;
} verify_ctx;

static ct_err diverged(db_log_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ct_err diverged(db_log_report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    if (n < 0) r->reason[0] = '\0';
    return ct_fail(CT_ERR_INTEGRITY, "issuance log broken: %s", r->reason);
}

static ct_err load_heads(ct_db *db, verify_ctx *v)
{
    db_stmt *st = NULL;
    bool row = false;
    size_t cap = 0;
    CT_GUARD_RET(db_prepare(db, k_head_all, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        if (v->n_heads == cap) {
            cap = cap ? cap * 2 : 64;
            db_tree_head *grown = realloc(v->heads, cap * sizeof *grown);
            CT_ENSURE_RET(grown, CT_ERR_NOMEM);
            v->heads = grown;
            ct_merkle_hash *roots = realloc(v->roots, cap * sizeof *roots);
            CT_ENSURE_RET(roots, CT_ERR_NOMEM);
            v->roots = roots;
        }
        db_tree_head *h = &v->heads[v->n_heads];
        CT_GUARD_RET(head_from_row(st, h));
        if (v->n_heads > 0 && h->head.tree_size < h[-1].head.tree_size)
            return diverged(v->r, "tree head %lld (size %llu) is smaller than tree head %lld (size %llu) before it",
                            (long long)h->id, (unsigned long long)h->head.tree_size, (long long)h[-1].id,
                            (unsigned long long)h[-1].head.tree_size);
        v->n_heads++;
    }
}

/* Records the root of the tree's current size for every tree head of that size. */
static ct_err record_roots(verify_ctx *v)
{
    for (; v->next < v->n_heads && v->heads[v->next].head.tree_size == v->tree.size; v->next++)
        CT_GUARD_RET(ct_merkle_frontier_root(&v->tree, v->roots[v->next]));
    return CT_OK;
}

/* After the leaves: each tree head's root, then its signature, in the order they were signed. */
static ct_err check_heads(verify_ctx *v)
{
    for (size_t i = 0; i < v->n_heads; i++) {
        const db_tree_head *h = &v->heads[i];
        if (memcmp(v->roots[i], h->head.root, CT_MERKLE_HASH_LEN) != 0)
            return diverged(v->r, "tree head %lld (size %llu): root does not match the leaves", (long long)h->id,
                            (unsigned long long)h->head.tree_size);
        if (!v->check) return diverged(v->r, "tree head %lld: no log certificate to check its signature", (long long)h->id);
        ct_err rc = v->check(&h->head, v->arg);
        if (rc == CT_ERR_INTEGRITY) return diverged(v->r, "tree head %lld: signature does not verify", (long long)h->id);
        CT_GUARD_RET(rc);
        v->r->tree_heads++;
    }
    return CT_OK;
}

static ct_err walk_leaves(ct_db *db, verify_ctx *v)
{
    db_stmt *st = NULL;
    bool row = false;
    int64_t prev_rowid = 0;
    uint8_t stored[CT_MERKLE_HASH_LEN], calc[CT_MERKLE_HASH_LEN];
    CT_GUARD_RET(record_roots(v));
    CT_GUARD_RET(db_prepare(db, k_verify_leaves, &st, ""));
    for (int64_t expect = 0;; expect++) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        int64_t index = db_col_int(st, 0);
        const char *serial = db_col_str(st, 1);
        if (!serial) serial = "?";
        if (index != expect) return diverged(v->r, "log leaf %lld missing (deleted)", (long long)expect);
        size_t der_len = 0;
        const void *der = db_col_blob(st, 3, &der_len);
        if (!der || der_len == 0)
            return diverged(v->r, "log leaf %lld: certificate %.40s is not in the database", (long long)index, serial);
        CT_GUARD_RET(ct_merkle_leaf_hash(der, der_len, calc));
        if (db_col_hash(st, 2, stored) != CT_OK || memcmp(stored, calc, sizeof calc) != 0)
            return diverged(v->r, "log leaf %lld: hash does not match certificate %.40s (edited)", (long long)index, serial);
        int64_t rowid = db_col_int(st, 4);
        if (rowid == prev_rowid)
            return diverged(v->r, "log leaf %lld: certificate %.40s is logged twice", (long long)index, serial);
        if (rowid < prev_rowid)
            return diverged(v->r, "log leaf %lld: certificate %.40s was issued before the certificate of leaf %lld "
                                  "(reordered)", (long long)index, serial, (long long)(index - 1));
        prev_rowid = rowid;
        CT_GUARD_RET(ct_merkle_frontier_push(&v->tree, calc));
        v->r->leaves++;
        CT_GUARD_RET(record_roots(v));
    }
}

static ct_err verify_snapshot(ct_db *db, verify_ctx *v)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(load_heads(db, v));
    CT_GUARD_RET(walk_leaves(db, v));
    CT_GUARD_RET(db_prepare(db, k_verify_unlogged, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) return diverged(v->r, "certificate %.40s missing from the log", db_col_str(st, 0));
    if (v->next < v->n_heads) {
        const db_tree_head *h = &v->heads[v->next];
        return diverged(v->r, "tree head %lld (size %llu): the log has only %llu leaves", (long long)h->id,
                        (unsigned long long)h->head.tree_size, (unsigned long long)v->tree.size);
    }
    return check_heads(v);
}

static ct_err verify_fn(ct_db *db, void *vctx)
{
    /* One read transaction: leaves, certificates and tree heads as of one moment, while the CA goes on issuing. */
    return verify_snapshot(db, vctx);
}

ct_err db_log_verify(ct_db *db, db_tree_head_check check, void *arg, db_log_report *report)
{
    CT_ENSURE_RET(db && report, ct_fail(CT_ERR_ARG, "db_log_verify: missing argument"));
    memset(report, 0, sizeof *report);
    verify_ctx v = {.check = check, .arg = arg, .r = report};
    ct_merkle_frontier_init(&v.tree);
    ct_err rc = db_call_snapshot(db, verify_fn, &v);
    free(v.heads);
    free(v.roots);
    return rc;
}

/* ---- checkpoints ---- */

struct audit_ctx {
    uint64_t seq;
    uint8_t *hash;
};

/* Audit entry number c->seq, or the newest when c->seq is 0 (0 and zeros for an empty chain). */
static ct_err audit_entry_fn(ct_db *db, void *vctx)
{
    struct audit_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false, newest = c->seq == 0;
    CT_GUARD_RET(newest ? db_prepare(db, k_audit_head, &st, "") : db_prepare(db, k_audit_at, &st, "i", (int64_t)c->seq));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) {
        memset(c->hash, 0, 32);
        return newest ? CT_OK : CT_ERR_NOT_FOUND;
    }
    c->seq = (uint64_t)db_col_int(st, 0);
    return db_col_hash(st, 1, c->hash);
}

ct_err db_log_audit_head(ct_db *db, uint64_t *entries, uint8_t hash[32])
{
    CT_ENSURE_RET(db && entries && hash, ct_fail(CT_ERR_ARG, "db_log_audit_head: missing argument"));
    struct audit_ctx c = {.hash = hash};
    CT_GUARD_RET(db_call(db, false, audit_entry_fn, &c));
    *entries = c.seq;
    return CT_OK;
}

ct_err db_log_audit_hash(ct_db *db, uint64_t seq, uint8_t hash[32])
{
    CT_ENSURE_RET(db && hash && seq >= 1 && seq <= INT64_MAX, ct_fail(CT_ERR_ARG, "db_log_audit_hash: bad argument"));
    struct audit_ctx c = {.seq = seq, .hash = hash};
    return db_call(db, false, audit_entry_fn, &c);
}

ct_err db_log_audit_uncovered(ct_db *db, bool *uncovered)
{
    CT_ENSURE_RET(db && uncovered, ct_fail(CT_ERR_ARG, "db_log_audit_uncovered: missing argument"));
    int64_t n = 0;
    CT_GUARD_RET(count_of(db, k_audit_uncovered, &n));
    *uncovered = n > 0;
    return CT_OK;
}

struct ckpt_ctx {
    uint64_t tree_size, audit_entries;
    const char *note, *actor;
    int64_t id, after; /* after >= 0: the next one after it, not the newest */
    ct_buf *out;
};

static ct_err ckpt_latest_fn(ct_db *db, void *vctx)
{
    struct ckpt_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(c->after >= 0 ? db_prepare(db, k_ckpt_next, &st, "i", c->after) : db_prepare(db, k_ckpt_latest, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_ERR_NOT_FOUND;
    c->id = db_col_int(st, 0);
    c->tree_size = (uint64_t)db_col_int(st, 1);
    if (!c->out) return CT_OK;
    size_t n = 0;
    const unsigned char *note = db_col_blob(st, 2, &n);
    CT_ENSURE_RET(note && n > 0 && n < DB_CHECKPOINT_MAX, ct_fail(CT_ERR_DB, "checkpoint %lld: %zu bytes of note",
                                                                   (long long)c->id, n));
    CT_GUARD_RET(ct_buf_alloc(c->out, n + 1));
    CT_GUARD_RET(ct_buf_set(c->out, note, n));
    const char *s = NULL;
    return ct_buf_cstr(c->out, &s);
}

static ct_err checkpoint_get(ct_db *db, int64_t after, int64_t *id, uint64_t *tree_size, ct_buf *note)
{
    CT_ENSURE_RET(db && note, ct_fail(CT_ERR_ARG, "db_log_checkpoint: missing argument"));
    struct ckpt_ctx c = {.out = note, .after = after};
    ct_err rc = db_call(db, false, ckpt_latest_fn, &c);
    if (rc != CT_OK) {
        ct_buf_free(note);
        return rc;
    }
    if (id) *id = c.id;
    if (tree_size) *tree_size = c.tree_size;
    return CT_OK;
}

ct_err db_log_checkpoint_latest(ct_db *db, int64_t *id, uint64_t *tree_size, ct_buf *note)
{
    return checkpoint_get(db, -1, id, tree_size, note);
}

ct_err db_log_checkpoint_next(ct_db *db, int64_t after, int64_t *id, uint64_t *tree_size, ct_buf *note)
{
    return checkpoint_get(db, after < 0 ? 0 : after, id, tree_size, note);
}

static ct_err ckpt_add_tx(ct_db *db, void *vctx)
{
    struct ckpt_ctx *c = vctx;
    uint64_t size = 0;
    CT_GUARD_RET(db_lease_fence_tx(db));
    CT_GUARD_RET(size_tx(db, &size));
    CT_ENSURE_RET(c->tree_size <= size, ct_fail(CT_ERR_USAGE, "checkpoint of %llu leaves: the log has %llu",
                                                (unsigned long long)c->tree_size, (unsigned long long)size));
    struct ckpt_ctx last = {.after = -1};
    ct_err rc = ckpt_latest_fn(db, &last);
    if (rc == CT_OK)
        CT_ENSURE_RET(c->tree_size >= last.tree_size,
                      ct_fail(CT_ERR_USAGE, "a checkpoint must not go back (checkpoint %lld: size %llu)",
                              (long long)last.id, (unsigned long long)last.tree_size));
    else if (rc != CT_ERR_NOT_FOUND)
        return rc;
    CT_GUARD_RET(db_query_int(db, k_ckpt_insert, &c->id, "iit", (int64_t)c->tree_size, (int64_t)c->audit_entries,
                              c->note));
    char subject[48], detail[96];
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "checkpoint %lld", (long long)c->id));
    CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "size=%llu audit_entries=%llu", (unsigned long long)c->tree_size,
                             (unsigned long long)c->audit_entries));
    return db_audit_append_tx(db, c->actor, "log.checkpoint", subject, "ok", detail);
}

ct_err db_log_checkpoint_add(ct_db *db, uint64_t tree_size, uint64_t audit_entries, const char *note,
                             const char *actor, int64_t *id)
{
    CT_ENSURE_RET(db && note && tree_size <= INT64_MAX && audit_entries <= INT64_MAX,
                  ct_fail(CT_ERR_ARG, "db_log_checkpoint_add: bad argument"));
    CT_GUARD_RET(db_check_str("checkpoint", note, DB_CHECKPOINT_MAX));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct ckpt_ctx c = {.tree_size = tree_size, .audit_entries = audit_entries, .note = note, .actor = actor};
    CT_GUARD_RET(db_call(db, true, ckpt_add_tx, &c));
    if (id) *id = c.id;
    return CT_OK;
}


/* ---- cosignatures ---- */

static const char k_cosig_insert[] = "INSERT INTO log_cosignatures (checkpoint_id, witness, witness_time, line,"
                                     " received) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
static const char k_cosig_lines[] = "SELECT line FROM log_cosignatures WHERE checkpoint_id = ? ORDER BY id";

struct cosig_ctx {
    int64_t checkpoint_id;
    const char *witness, *line, *actor;
    uint64_t time;
    bool added;
    ct_buf *out;
};

static ct_err cosig_add_tx(ct_db *db, void *vctx)
{
    struct cosig_ctx *c = vctx;
    int changes = 0;
    CT_GUARD_RET(db_exec(db, k_cosig_insert, &changes, "ititi", c->checkpoint_id, c->witness, (int64_t)c->time, c->line,
                         db_now()));
    c->added = changes > 0;
    if (!c->added) return CT_OK;
    char subject[48], detail[DB_AUDIT_FIELD_MAX];
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "checkpoint %lld", (long long)c->checkpoint_id));
    CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "witness=%.160s time=%llu", c->witness, (unsigned long long)c->time));
    return db_audit_append_tx(db, c->actor, "log.cosignature", subject, "ok", detail);
}

ct_err db_log_cosignature_add(ct_db *db, int64_t checkpoint_id, const char *witness, uint64_t witness_time,
                              const char *line, const char *actor, bool *added)
{
    CT_ENSURE_RET(db && checkpoint_id > 0 && witness_time <= INT64_MAX,
                  ct_fail(CT_ERR_ARG, "db_log_cosignature_add: bad argument"));
    CT_GUARD_RET(db_check_str("witness", witness, 512));
    CT_GUARD_RET(db_check_str("cosignature", line, DB_COSIG_MAX));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct cosig_ctx c = {.checkpoint_id = checkpoint_id, .witness = witness, .time = witness_time, .line = line,
                          .actor = actor};
    CT_GUARD_RET(db_call(db, true, cosig_add_tx, &c));
    if (added) *added = c.added;
    return CT_OK;
}

static ct_err cosig_lines_fn(ct_db *db, void *vctx)
{
    struct cosig_ctx *c = vctx;
    db_stmt *st = NULL;
    CT_GUARD_RET(db_prepare(db, k_cosig_lines, &st, "i", c->checkpoint_id));
    for (;;) {
        bool row = false;
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        size_t n = 0;
        const unsigned char *line = db_col_blob(st, 0, &n);
        CT_ENSURE_RET(line && n > 0 && n < DB_COSIG_MAX && line[n - 1] == '\n',
                      ct_fail(CT_ERR_DB, "checkpoint %lld: a malformed cosignature row", (long long)c->checkpoint_id));
        CT_GUARD_RET(ct_buf_append(c->out, line, n));
    }
}

ct_err db_log_cosignatures(ct_db *db, int64_t checkpoint_id, ct_buf *lines)
{
    CT_ENSURE_RET(db && lines, ct_fail(CT_ERR_ARG, "db_log_cosignatures: missing argument"));
    struct cosig_ctx c = {.checkpoint_id = checkpoint_id, .out = lines};
    return db_call(db, false, cosig_lines_fn, &c);
}

static const char k_cosig_newest[] = "SELECT max(witness_time) FROM log_cosignatures WHERE witness = ?";

static ct_err cosig_newest_fn(ct_db *db, void *vctx)
{
    struct cosig_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_cosig_newest, &st, "t", c->witness));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row || db_col_is_null(st, 0)) return CT_ERR_NOT_FOUND;
    c->time = (uint64_t)db_col_int(st, 0);
    return CT_OK;
}

ct_err db_log_cosignature_newest(ct_db *db, const char *witness, uint64_t *witness_time)
{
    CT_ENSURE_RET(db && witness && witness_time, ct_fail(CT_ERR_ARG, "db_log_cosignature_newest: missing argument"));
    struct cosig_ctx c = {.witness = witness};
    ct_err rc = db_call(db, false, cosig_newest_fn, &c);
    if (rc == CT_ERR_NOT_FOUND) ct_err_clear();
    if (rc == CT_OK) *witness_time = c.time;
    return rc;
}
