/* Witnesses' reports of an inconsistent log (db_log.h): append-only, each with its audit event. ca/ checks a
 * report before it comes here (both checkpoints signed by the CA's key, and contradicting each other or this
 * database). The event's detail (format v2) records the whole row, the long texts by their SHA-256, so that
 * db_state_verify can tell a deleted, added or edited report (rebuild.c). */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include "db_log.h"
#include "db_priv.h"

static const char k_report_insert[] =
    "INSERT INTO log_witness_reports (received, witness, kind, kept_size, served_size, reason, report)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
static const char k_report_id[] = "SELECT id FROM log_witness_reports WHERE report = ?";
/* The same finding: who reported it (by its cosignature), what and at which sizes, the CA's own reason. Not the text:
 * the proof given and any signature line the CA does not know can be varied by anyone who holds the two notes. */
static const char k_finding_id[] = "SELECT id FROM log_witness_reports WHERE witness = ? AND kind = ? AND kept_size = ?"
                                   " AND served_size = ? AND reason = ? ORDER BY id LIMIT 1";
static const char k_report_list[] = "SELECT " DB_WITNESS_REPORT_COLS " FROM log_witness_reports ORDER BY id DESC LIMIT ?";

static ct_err detail_sha256(db_detail *d, const char *key, const char *text)
{
    uint8_t h[32];
    CT_GUARD_RET(ct_sha256(text, strlen(text), h));
    return db_detail_hex(d, key, h, 32);
}

ct_err db_witness_report_detail(const db_witness_report *r, const char *report, db_detail *d)
{
    db_detail_init(d);
    CT_GUARD_RET(db_detail_int(d, "received", r->received));
    CT_GUARD_RET(db_detail_str(d, "kind", r->kind));
    CT_GUARD_RET(db_detail_int(d, "kept", (int64_t)r->kept_size));
    CT_GUARD_RET(db_detail_int(d, "served", (int64_t)r->served_size));
    CT_GUARD_RET(detail_sha256(d, "witness_sha256", r->witness));
    CT_GUARD_RET(detail_sha256(d, "reason_sha256", r->reason));
    return detail_sha256(d, "report_sha256", report);
}

ct_err db_witness_report_read(db_stmt *st, int col, db_witness_report *r)
{
    memset(r, 0, sizeof *r);
    r->id = db_col_int(st, col);
    r->received = db_col_int(st, col + 1);
    CT_GUARD_RET(db_col_text(st, col + 2, r->witness, sizeof r->witness));
    CT_GUARD_RET(db_col_text(st, col + 3, r->kind, sizeof r->kind));
    r->kept_size = (uint64_t)db_col_int(st, col + 4);
    r->served_size = (uint64_t)db_col_int(st, col + 5);
    return db_col_text(st, col + 6, r->reason, sizeof r->reason);
}

struct report_ctx {
    db_witness_report *r;
    const char *report, *actor;
    bool added;
    int max;
    db_witness_report_fn fn;
    void *arg;
};

static ct_err report_add_tx(ct_db *db, void *vctx)
{
    struct report_ctx *c = vctx;
    db_witness_report *r = c->r;
    int changes = 0;
    db_detail d;
    r->received = db_now();
    ct_err rc = db_query_int(db, k_finding_id, &r->id, "ttiit", r->witness, r->kind, (int64_t)r->kept_size,
                             (int64_t)r->served_size, r->reason);
    if (rc == CT_OK) return CT_OK; /* already recorded: c->added stays false */
    CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
    CT_GUARD_RET(db_exec(db, k_report_insert, &changes, "ittiitt", r->received, r->witness, r->kind,
                         (int64_t)r->kept_size, (int64_t)r->served_size, r->reason, c->report));
    c->added = changes > 0;
    CT_GUARD_RET(db_query_int(db, k_report_id, &r->id, "t", c->report));
    if (!c->added) return CT_OK;
    char subject[48];
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, DB_WITNESS_REPORT_SUBJECT "%lld", (long long)r->id));
    CT_GUARD_RET(db_witness_report_detail(r, c->report, &d));
    return db_audit_append_tx(db, c->actor, "log.witness_report", subject, "ok", d.s);
}

ct_err db_log_witness_report_add(ct_db *db, db_witness_report *r, const char *report, const char *actor, bool *added)
{
    CT_ENSURE_RET(db && r && r->kept_size <= INT64_MAX && r->served_size <= INT64_MAX &&
                      (strcmp(r->kind, "fork") == 0 || strcmp(r->kind, "rollback") == 0) &&
                      strnlen(r->witness, sizeof r->witness) < sizeof r->witness,
                  ct_fail(CT_ERR_ARG, "db_log_witness_report_add: bad argument"));
    CT_GUARD_RET(db_check_str("reason", r->reason, sizeof r->reason));
    CT_GUARD_RET(db_check_str("witness report", report, DB_WITNESS_REPORT_MAX));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct report_ctx c = {.r = r, .report = report, .actor = actor};
    CT_GUARD_RET(db_call(db, true, report_add_tx, &c));
    if (added) *added = c.added;
    return CT_OK;
}

static ct_err report_list_fn(ct_db *db, void *vctx)
{
    struct report_ctx *c = vctx;
    db_stmt *st = NULL;
    CT_GUARD_RET(db_prepare(db, k_report_list, &st, "i", (int64_t)c->max));
    for (;;) {
        bool row = false;
        db_witness_report r;
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        CT_GUARD_RET(db_witness_report_read(st, 0, &r));
        CT_GUARD_RET(c->fn(c->arg, &r));
    }
}

ct_err db_log_witness_reports(ct_db *db, int max, db_witness_report_fn fn, void *arg)
{
    CT_ENSURE_RET(db && fn && max > 0, ct_fail(CT_ERR_ARG, "db_log_witness_reports: bad argument"));
    struct report_ctx c = {.max = max, .fn = fn, .arg = arg};
    return db_call(db, false, report_list_fn, &c);
}
