/* Witnesses' reports of an inconsistent log (db_log.h): append-only, each with its audit event. ca/ checks a
 * report before it comes here (both checkpoints signed by the CA's key, and contradicting each other or this
 * database). */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "db_log.h"
#include "db_priv.h"

static const char k_report_insert[] =
    "INSERT OR IGNORE INTO log_witness_reports (received, witness, kind, kept_size, served_size, reason, report)"
    " VALUES (strftime('%s', 'now'), ?, ?, ?, ?, ?, ?)";
static const char k_report_id[] = "SELECT id FROM log_witness_reports WHERE report = ?";
static const char k_report_list[] = "SELECT id, received, witness, kind, kept_size, served_size, reason"
                                    " FROM log_witness_reports ORDER BY id DESC LIMIT ?";

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
    CT_GUARD_RET(db_exec(db, k_report_insert, &changes, "ttiitt", r->witness, r->kind, (int64_t)r->kept_size,
                         (int64_t)r->served_size, r->reason, c->report));
    c->added = changes > 0;
    CT_GUARD_RET(db_query_int(db, k_report_id, &r->id, "t", c->report));
    if (!c->added) return CT_OK;
    char subject[48], detail[DB_AUDIT_FIELD_MAX];
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "witness report %lld", (long long)r->id));
    CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "witness=%.60s kind=%s kept=%llu served=%llu reason=%.100s",
                             r->witness[0] ? r->witness : "(none)", r->kind, (unsigned long long)r->kept_size,
                             (unsigned long long)r->served_size, r->reason));
    return db_audit_append_tx(db, c->actor, "log.witness_report", subject, "ok", detail);
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
    sqlite3_stmt *st = NULL;
    CT_GUARD_RET(db_prepare(db, k_report_list, &st, "i", (int64_t)c->max));
    for (;;) {
        bool row = false;
        db_witness_report r = {0};
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        r.id = sqlite3_column_int64(st, 0);
        r.received = sqlite3_column_int64(st, 1);
        CT_GUARD_RET(db_col_text(st, 2, r.witness, sizeof r.witness));
        CT_GUARD_RET(db_col_text(st, 3, r.kind, sizeof r.kind));
        r.kept_size = (uint64_t)sqlite3_column_int64(st, 4);
        r.served_size = (uint64_t)sqlite3_column_int64(st, 5);
        CT_GUARD_RET(db_col_text(st, 6, r.reason, sizeof r.reason));
        CT_GUARD_RET(c->fn(c->arg, &r));
    }
}

ct_err db_log_witness_reports(ct_db *db, int max, db_witness_report_fn fn, void *arg)
{
    CT_ENSURE_RET(db && fn && max > 0, ct_fail(CT_ERR_ARG, "db_log_witness_reports: bad argument"));
    struct report_ctx c = {.max = max, .fn = fn, .arg = arg};
    return db_call(db, false, report_list_fn, &c);
}
