/* Leases (migration 14): several CA nodes serve one database, and one of them at a time signs what must have one
 * signer (checkpoints, tree heads, CRLs). A lease row names its holder and when it expires; a node takes it when it
 * is free, expired, or its holder is known dead, and renews it while it holds it, each in one transaction. A change
 * of holder is audited ("lease.take"). Each take is stamped (taken_ms, above every earlier take's), and the holder
 * renews, writes and lets go only by its own take's stamp: a node id given to two processes (a config copied, or a
 * command run with a serving node's id) makes two holders, never two signers. Times are the database's clock in
 * milliseconds (lease_now), never a node's: a node whose clock was stepped neither takes a live holder's lease nor
 * keeps the others waiting past its own. The CRLs the holder signs are kept here for the other nodes to serve. */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <stdlib.h>
#include <string.h>

static const char k_lease_get[] = "SELECT holder, expires_ms, taken_ms FROM leases WHERE name = ?";
static const char k_lease_insert[] = "INSERT INTO leases (name, holder, expires_ms, taken_ms) VALUES (?, ?, ?, ?)";
static const char k_lease_renew[] = "UPDATE leases SET expires_ms = ? WHERE name = ? AND holder = ? AND taken_ms = ?";
/* Compare-and-set on what was read: two nodes that read the same expired row cannot both take it, whatever the
 * backend's isolation. */
static const char k_lease_move[] =
    "UPDATE leases SET holder = ?, expires_ms = ?, taken_ms = ? WHERE name = ? AND holder = ? AND expires_ms = ?";
static const char k_lease_release[] =
    "UPDATE leases SET expires_ms = 0 WHERE name = ? AND holder = ? AND taken_ms = ?";
static const char k_lease_held[] =
    "SELECT 1 FROM leases WHERE name = ? AND holder = ? AND taken_ms = ? AND expires_ms > ?";
static const char k_crl_put[] =
    "INSERT INTO crls_signed (issuing_ca, epoch, next_update, der) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (issuing_ca) DO UPDATE SET epoch = excluded.epoch, next_update = excluded.next_update,"
    " der = excluded.der";
static const char k_crl_get[] = "SELECT epoch, next_update, der FROM crls_signed WHERE issuing_ca = ?";
/* A node asked for a CRL the signer never made: an empty row asks the signer for it (its next tick signs it). */
static const char k_crl_want[] = "INSERT INTO crls_signed (issuing_ca, epoch, next_update, der) VALUES (?, 0, 0, ?)"
                                 " ON CONFLICT (issuing_ca) DO NOTHING";

/* The database's clock: PostgreSQL's (clock_timestamp: now, not the transaction's start, which may have waited for
 * the writers' lock), SQLite's this host's, which every node on its file shares. */
static const char k_now_sqlite[] = "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
static const char k_now_pg[] = "SELECT CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT)";

/* A lease's "now": `given` when not 0 (the tests' own times), else the database's clock. */
static ct_err lease_now(ct_db *db, int64_t given, int64_t *now)
{
    *now = given;
    return given ? CT_OK : db_query_int(db, db_sql(db, k_now_sqlite, k_now_pg), now, "");
}

struct lease_ctx {
    const db_lease_request *req;
    db_lease_state *out;
};

static ct_err lease_take_rows(ct_db *db, struct lease_ctx *c)
{
    const db_lease_request *q = c->req;
    db_lease_state *out = c->out;
    db_stmt *st = NULL;
    bool row = false;
    char detail[DB_LEASE_HOLDER_MAX * 2 + 96];
    int64_t now = 0, row_stamp = 0;
    memset(out, 0, sizeof *out);
    CT_GUARD_RET(lease_now(db, q->now_ms, &now));
    int64_t until = now + q->ttl_ms;
    out->now_ms = now;
    CT_GUARD_RET(db_prepare(db, k_lease_get, &st, "t", q->name));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) {
        CT_GUARD_RET(db_col_text(st, 0, out->holder, sizeof out->holder));
        out->expires_ms = db_col_int(st, 1);
        row_stamp = db_col_int(st, 2);
    }
    /* The new take's stamp: above the row's, so that no earlier take (a paused holder's) matches it. */
    int64_t stamp = now > row_stamp ? now : row_stamp + 1;
    int changed = 0;
    if (row && strcmp(out->holder, q->holder) == 0 && q->stamp == row_stamp) { /* ours: renewed, even if it lapsed */
        CT_GUARD_RET(db_exec(db, k_lease_renew, &changed, "itti", until, q->name, q->holder, row_stamp));
        out->held = changed == 1;
        if (out->held) out->expires_ms = until, out->stamp = row_stamp;
        return CT_OK;
    }
    bool dead = row && q->holder_dead && q->holder_dead(q->dead_arg, out->holder);
    if (row && out->expires_ms > now && !dead) return CT_OK; /* another node's, and alive */
    if (row) {
        CT_GUARD_RET(db_exec(db, k_lease_move, &changed, "tiitti", q->holder, until, stamp, q->name, out->holder,
                             out->expires_ms));
        CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "holder=%s previous=%s %s", q->holder, out->holder,
                                 dead ? "previous_dead" : "previous_expired"));
    } else {
        ct_err rc = db_exec(db, k_lease_insert, &changed, "ttii", q->name, q->holder, until, stamp);
        if (rc == CT_ERR_EXISTS) changed = 0; /* another node inserted it first */
        else CT_GUARD_RET(rc);
        CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "holder=%s previous=none", q->holder));
    }
    if (changed != 1) return CT_OK; /* another node took it between our read and our write: not ours */
    CT_GUARD_RET(db_audit_append_tx(db, q->holder, "lease.take", q->name, "ok", detail));
    CT_GUARD_RET(ct_strlcpy(out->previous, sizeof out->previous, row ? out->holder : ""));
    CT_GUARD_RET(ct_strlcpy(out->holder, sizeof out->holder, q->holder));
    out->held = out->taken = true;
    out->expires_ms = until;
    out->stamp = stamp;
    return CT_OK;
}

/* The take, and this handle's fence moved to it when the fence names this holder (a take that then fails to commit
 * leaves a stamp no row has: the fence refuses until the next try). */
static ct_err lease_take_tx(ct_db *db, void *vctx)
{
    struct lease_ctx *c = vctx;
    CT_GUARD_RET(lease_take_rows(db, c));
    if (strcmp(db->fence_name, c->req->name) == 0 && strcmp(db->fence_holder, c->req->holder) == 0)
        db->fence_stamp = c->out->held ? c->out->stamp : 0;
    return CT_OK;
}

ct_err db_lease_take(ct_db *db, const db_lease_request *req, db_lease_state *out)
{
    CT_ENSURE_RET(db && req && out && req->ttl_ms > 0, ct_fail(CT_ERR_ARG, "db_lease_take: bad argument"));
    CT_GUARD_RET(db_check_str("lease name", req->name, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("lease holder", req->holder, DB_LEASE_HOLDER_MAX));
    struct lease_ctx c = {req, out};
    return db_call(db, true, lease_take_tx, &c);
}

struct release_ctx {
    const char *name, *holder;
    int64_t stamp;
};

static ct_err lease_release_fn(ct_db *db, void *vctx)
{
    struct release_ctx *c = vctx;
    return db_exec(db, k_lease_release, NULL, "tti", c->name, c->holder, c->stamp);
}

ct_err db_lease_release(ct_db *db, const char *name, const char *holder, int64_t stamp)
{
    CT_ENSURE_RET(db && name && holder, ct_fail(CT_ERR_ARG, "db_lease_release: bad argument"));
    struct release_ctx c = {name, holder, stamp};
    return db_call(db, true, lease_release_fn, &c);
}

struct crl_put_ctx {
    const db_lease_request *lease;
    const db_signed_crl *crl;
};

static ct_err crl_put_tx(ct_db *db, void *vctx)
{
    struct crl_put_ctx *c = vctx;
    int64_t one = 0, now = 0;
    CT_GUARD_RET(lease_now(db, c->lease->now_ms, &now));
    /* Fenced: a node that lost the lease (paused past its expiry) does not overwrite the new holder's CRL. */
    ct_err rc = db_query_int(db, k_lease_held, &one, "ttii", c->lease->name, c->lease->holder, c->lease->stamp, now);
    if (rc == CT_ERR_NOT_FOUND) return ct_fail(CT_ERR_UNAVAILABLE, "lease %s is not held by %s: CRL not stored",
                                               c->lease->name, c->lease->holder);
    CT_GUARD_RET(rc);
    /* Stored cRLNumbers only grow per generation: what audit verify holds a stored CRL to (db_crl_stored_latest). */
    db_crl_stored newest;
    CT_GUARD_RET(db_crl_stored_latest_tx(db, c->crl->issuing_ca, &newest));
    if (c->crl->number < newest.number)
        return ct_fail(CT_ERR_UNAVAILABLE, "CRL number %lld not stored: number %lld is stored already",
                       (long long)c->crl->number, (long long)newest.number);
    CT_GUARD_RET(db_exec(db, k_crl_put, NULL, "iiib", c->crl->issuing_ca, c->crl->epoch, c->crl->next_update,
                         c->crl->der.data, c->crl->der.len));
    char subject[48];
    uint8_t sha256[32];
    db_detail d;
    db_detail_init(&d);
    CT_GUARD_RET(ct_sha256(c->crl->der.data, c->crl->der.len, sha256));
    CT_GUARD_RET(db_detail_int(&d, "number", c->crl->number));
    CT_GUARD_RET(db_detail_int(&d, "this_update", c->crl->this_update));
    CT_GUARD_RET(db_detail_int(&d, "epoch", c->crl->epoch));
    CT_GUARD_RET(db_detail_hex(&d, "sha256", sha256, sizeof sha256));
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, DB_CRL_STORE_SUBJECT "%lld", (long long)c->crl->issuing_ca));
    return db_audit_append_tx(db, c->lease->holder, DB_CRL_STORE_ACTION, subject, "ok", d.s);
}

ct_err db_crl_signed_put(ct_db *db, const db_lease_request *lease, const db_signed_crl *crl)
{
    CT_ENSURE_RET(db && lease && crl && crl->der.len && crl->number > 0,
                  ct_fail(CT_ERR_ARG, "db_crl_signed_put: bad argument"));
    struct crl_put_ctx c = {lease, crl};
    return db_call(db, true, crl_put_tx, &c);
}

struct crl_get_ctx {
    int64_t issuing_ca;
    db_signed_crl *out;
};

static ct_err crl_get_fn(ct_db *db, void *vctx)
{
    struct crl_get_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_crl_get, &st, "i", c->issuing_ca));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_ERR_NOT_FOUND;
    c->out->issuing_ca = c->issuing_ca;
    c->out->epoch = db_col_int(st, 0);
    c->out->next_update = db_col_int(st, 1);
    size_t len = 0;
    const void *der = db_col_blob(st, 2, &len);
    c->out->wanted = !der || !len;
    if (c->out->wanted) return CT_OK;
    CT_GUARD_RET(ct_buf_alloc(&c->out->der, len));
    return ct_buf_set(&c->out->der, der, len);
}

ct_err db_crl_signed_get(ct_db *db, int64_t issuing_ca, db_signed_crl *out)
{
    CT_ENSURE_RET(db && out, ct_fail(CT_ERR_ARG, "db_crl_signed_get: bad argument"));
    memset(out, 0, sizeof *out);
    struct crl_get_ctx c = {issuing_ca, out};
    ct_err rc = db_call(db, false, crl_get_fn, &c);
    if (rc != CT_OK) ct_buf_free(&out->der);
    return rc;
}

static ct_err crl_want_fn(ct_db *db, void *vctx)
{
    static const uint8_t none = 0;
    return db_exec(db, k_crl_want, NULL, "ib", *(const int64_t *)vctx, &none, (size_t)0);
}

ct_err db_crl_signed_want(ct_db *db, int64_t issuing_ca)
{
    CT_ENSURE_RET(db, ct_fail(CT_ERR_ARG, "db_crl_signed_want: no database"));
    return db_call(db, true, crl_want_fn, &issuing_ca);
}

ct_err db_lease_fence(ct_db *db, const char *name, const char *holder)
{
    CT_ENSURE_RET(db, ct_fail(CT_ERR_ARG, "db_lease_fence: no database"));
    CT_GUARD_RET(db_check_str("lease name", name, sizeof db->fence_name));
    CT_GUARD_RET(db_check_str("lease holder", holder, sizeof db->fence_holder));
    CT_GUARD_RET(ct_strlcpy(db->fence_holder, sizeof db->fence_holder, holder));
    db->fence_stamp = 0;
    return ct_strlcpy(db->fence_name, sizeof db->fence_name, name);
}

ct_err db_lease_fence_tx(ct_db *db)
{
    int64_t held = 0, now = 0;
    if (!db->fence_name[0]) return CT_OK;
    CT_GUARD_RET(lease_now(db, 0, &now));
    ct_err rc = db_query_int(db, k_lease_held, &held, "ttii", db->fence_name, db->fence_holder, db->fence_stamp, now);
    if (rc == CT_ERR_NOT_FOUND)
        return ct_fail(CT_ERR_UNAVAILABLE, "this node (%s) does not hold the %s lease: it signs nothing",
                       db->fence_holder, db->fence_name);
    return rc;
}
