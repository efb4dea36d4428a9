/* db orders: production orders and their serial lines. */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------------------
 * orders
 * ------------------------------------------------------------------------------------------------------- */
#define ORDER_COLUMNS "SELECT o.id, s.name, o.model, o.open, o.created_at,"
#define ORDER_COUNTS                                                                                          \
    " (SELECT count(*) FROM order_serials x WHERE x.order_id = o.id),"                                        \
    " (SELECT count(DISTINCT c.device_serial) FROM certificates c WHERE c.order_id = o.id)"
#define ORDER_FROM " FROM orders o JOIN stations s ON s.id = o.station_id "
static const char k_order_list[] = ORDER_COLUMNS ORDER_COUNTS ORDER_FROM "ORDER BY o.id";
/* On the enrollment path the counts are not needed, and counting grows with the order: left at 0. */
/* Led by the serial's index (order_serials_serial), whatever the number of the station's open orders or of
 * stations: the serial's few order lines, then each one's order and station by key. SQLite keeps CROSS JOIN's order
 * (its planner would otherwise walk the station's open orders, probing the serial in each); PostgreSQL plans it as
 * the join it is. Of those few rows the caller takes the newest order (a re-provisioning line is newer): an ORDER BY
 * here would make SQLite open a temporary B-tree to sort them on every enrollment. */
static const char k_order_for_serial[] = ORDER_COLUMNS " 0, 0 FROM order_serials os CROSS JOIN orders o"
                                         " CROSS JOIN stations s WHERE os.serial = ? AND o.id = os.order_id"
                                         " AND o.station_id = ? AND o.open = 1 AND s.id = o.station_id";
static const char k_serial_open_order[] = "SELECT o.id FROM order_serials s JOIN orders o ON o.id = s.order_id"
                                          " WHERE s.serial = ? AND o.open = 1 AND o.id <> ?";
/* One camera, one DNS name: a serial that differs only by case from one of any order (this one too). */
static const char k_serial_case_variant[] = "SELECT serial, order_id FROM order_serials"
                                            " WHERE serial = ?1 COLLATE NOCASE AND serial <> ?1 LIMIT 1";
static const char k_order_insert[] = "INSERT INTO orders (station_id, model, open, created_at) VALUES (?, ?, 1, ?) RETURNING id";
static const char k_order_serial_insert[] = "INSERT INTO order_serials (order_id, serial, revoked_seen) VALUES (?, ?, ?)";
static const char k_serial_revoked_count[] = "SELECT count(*) FROM certificates WHERE device_serial = ? COLLATE NOCASE"
                                             " AND status = 'revoked' AND profile NOT IN " DB_CLIENT_PROFILES;
static const char k_serial_current_any[] = "SELECT cert_serial_hex FROM certificates WHERE device_serial = ?"
                                           " COLLATE NOCASE AND status = 'valid' AND profile NOT IN " DB_CLIENT_PROFILES
                                           " LIMIT 1";
static const char k_order_close[] = "UPDATE orders SET open = 0, closed_at = ? WHERE id = ? AND open = 1";

static ct_err order_from_row(db_stmt *st, db_order *o)
{
    memset(o, 0, sizeof *o);
    o->id = db_col_int(st, 0);
    CT_GUARD_RET(db_col_text(st, 1, o->station, sizeof o->station));
    CT_GUARD_RET(db_col_text(st, 2, o->model, sizeof o->model));
    o->open = (int)db_col_int(st, 3) != 0;
    o->created_at = db_col_int(st, 4);
    o->serial_count = db_col_int(st, 5);
    o->issued_count = db_col_int(st, 6);
    return CT_OK;
}

struct order_ctx {
    const char *station;
    const char *model;
    const char *const *serials;
    size_t n_serials;
    const char *actor;
    int64_t id; /* in: order or station id; out: new order id */
    const char *serial;
    db_order *out;
};

/* Inserts the order of c->station (c->id gets it) and its serial lines, each checked before its insert so that a
 * refusal names the serial and the order it collides with (the migrations' triggers are only backstops). */
static ct_err order_insert_tx(ct_db *db, struct order_ctx *c, int64_t revoked_seen)
{
    int64_t station_id = 0, other = 0;
    db_stmt *st = NULL;
    bool row = false;
    ct_err rc = db_query_int(db, db_sql_station_id, &station_id, "t", c->station);
    CT_ENSURE_RET(rc != CT_ERR_NOT_FOUND, ct_fail(CT_ERR_NOT_FOUND, "no station named '%s'", c->station));
    CT_GUARD_RET(rc);
    CT_GUARD_RET(db_query_int(db, k_order_insert, &c->id, "iti", station_id, c->model, db_now()));
    for (size_t i = 0; i < c->n_serials; i++) {
        const char *serial = c->serials[i];
        /* A re-provisioning line may sit beside the serial's line in an open order (its revoked certificate's). */
        rc = revoked_seen ? CT_ERR_NOT_FOUND : db_query_int(db, k_serial_open_order, &other, "ti", serial, c->id);
        CT_ENSURE_RET(rc != CT_OK, ct_fail(CT_ERR_EXISTS, "serial '%s' is already in open order %lld", serial,
                                           (long long)other));
        CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
        CT_GUARD_RET(db_prepare(db, k_serial_case_variant, &st, "t", serial));
        CT_GUARD_RET(db_step(db, st, &row));
        CT_ENSURE_RET(!row, ct_fail(CT_ERR_EXISTS, "serial '%s' differs only by case from '%s' (order %lld): serials "
                                    "are one DNS name", serial, db_col_str(st, 0),
                                    (long long)db_col_int(st, 1)));
        rc = db_exec(db, k_order_serial_insert, NULL, "iti", c->id, serial, revoked_seen);
        CT_ENSURE_RET(rc != CT_ERR_EXISTS, ct_fail(CT_ERR_EXISTS, "serial '%s' is listed twice", serial));
        CT_GUARD_RET(rc);
    }
    return CT_OK;
}

/* What rebuilds an order: id, station, model and its serial lines (their count and hash). */
static ct_err order_detail(ct_db *db, const struct order_ctx *c, db_detail *d)
{
    uint8_t h[32];
    int64_t n = 0;
    CT_GUARD_RET(db_order_serials_hash(db, c->id, h, &n));
    db_detail_init(d);
    CT_GUARD_RET(db_detail_int(d, "id", c->id));
    CT_GUARD_RET(db_detail_str(d, "station", c->station));
    CT_GUARD_RET(db_detail_str(d, "model", c->model));
    CT_GUARD_RET(db_detail_int(d, "serials", n));
    return db_detail_hex(d, "serials_sha256", h, 32);
}

static ct_err order_create_tx(ct_db *db, void *vctx)
{
    struct order_ctx *c = vctx;
    CT_GUARD_RET(order_insert_tx(db, c, 0));
    char subject[32];
    db_detail d;
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "order %lld", (long long)c->id));
    CT_GUARD_RET(order_detail(db, c, &d));
    return db_audit_append_tx(db, c->actor, "order.create", subject, "ok", d.s);
}

ct_err db_order_create(ct_db *db, const char *station, const char *model, const char *const *serials,
                       size_t n_serials, const char *actor, int64_t *order_id)
{
    CT_ENSURE_RET(db && order_id, ct_fail(CT_ERR_ARG, "db_order_create: missing argument"));
    CT_ENSURE_RET(serials && n_serials > 0, ct_fail(CT_ERR_ARG, "an order needs at least one serial"));
    CT_GUARD_RET(db_check_str("station name", station, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("model", model, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    for (size_t i = 0; i < n_serials; i++) CT_GUARD_RET(db_check_str("device serial", serials[i], DB_SERIAL_MAX));
    struct order_ctx c = {.station = station, .model = model, .serials = serials, .n_serials = n_serials,
                          .actor = actor};
    CT_GUARD_RET(db_call(db, true, order_create_tx, &c));
    *order_id = c.id;
    return CT_OK;
}

static ct_err order_reprovision_tx(ct_db *db, void *vctx)
{
    struct order_ctx *c = vctx;
    int64_t revoked = 0;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_query_int(db, k_serial_revoked_count, &revoked, "t", c->serial));
    CT_ENSURE_RET(revoked > 0, ct_fail(CT_ERR_NOT_FOUND, "serial '%s' has no revoked certificate: order it with "
                                       "'order create'", c->serial));
    CT_GUARD_RET(db_prepare(db, k_serial_current_any, &st, "t", c->serial));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(!row, ct_fail(CT_ERR_ALREADY_ISSUED, "serial '%s' still has a valid certificate (%s): revoke it first",
                                c->serial, db_col_str(st, 0)));
    c->serials = &c->serial;
    c->n_serials = 1;
    CT_GUARD_RET(order_insert_tx(db, c, revoked));
    char subject[32];
    db_detail d;
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "order %lld", (long long)c->id));
    CT_GUARD_RET(order_detail(db, c, &d));
    CT_GUARD_RET(db_detail_str(&d, "serial", c->serial));
    CT_GUARD_RET(db_detail_int(&d, "revoked", revoked));
    return db_audit_append_tx(db, c->actor, "order.reprovision", subject, "ok", d.s);
}

ct_err db_order_reprovision(ct_db *db, const char *station, const char *model, const char *serial, const char *actor,
                            int64_t *order_id)
{
    CT_ENSURE_RET(db && order_id, ct_fail(CT_ERR_ARG, "db_order_reprovision: missing argument"));
    CT_GUARD_RET(db_check_str("station name", station, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("model", model, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("device serial", serial, DB_SERIAL_MAX));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct order_ctx c = {.station = station, .model = model, .serial = serial, .actor = actor};
    CT_GUARD_RET(db_call(db, true, order_reprovision_tx, &c));
    *order_id = c.id;
    return CT_OK;
}

static ct_err order_row(db_stmt *st, void *item) { return order_from_row(st, item); }

ct_err db_order_list(ct_db *db, db_order_cb cb, void *arg)
{
    CT_ENSURE_RET(db && cb, ct_fail(CT_ERR_ARG, "db_order_list: missing argument"));
    db_row_list l = {.sql = k_order_list, .size = sizeof(db_order), .fill = order_row};
    ct_err rc = db_collect(db, &l);
    for (size_t i = 0; rc == CT_OK && i < l.n; i++) cb((db_order *)l.items + i, arg);
    free(l.items);
    return rc;
}

static ct_err order_close_tx(ct_db *db, void *vctx)
{
    struct order_ctx *c = vctx;
    int changes = 0;
    CT_GUARD_RET(db_exec(db, k_order_close, &changes, "ii", db_now(), c->id));
    CT_ENSURE_RET(changes == 1, ct_fail(CT_ERR_NOT_FOUND, "no open order %lld", (long long)c->id));
    char subject[32];
    db_detail d;
    db_detail_init(&d);
    CT_GUARD_RET(db_detail_int(&d, "id", c->id));
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "order %lld", (long long)c->id));
    return db_audit_append_tx(db, c->actor, "order.close", subject, "ok", d.s);
}

ct_err db_order_close(ct_db *db, int64_t order_id, const char *actor)
{
    CT_ENSURE_RET(db, CT_ERR_ARG);
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct order_ctx c = {.id = order_id, .actor = actor};
    return db_call(db, true, order_close_tx, &c);
}

static ct_err order_for_serial_fn(ct_db *db, void *vctx)
{
    struct order_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_order_for_serial, &st, "ti", c->serial, c->id));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(row, ct_fail(CT_ERR_NOT_IN_ORDER, "serial '%s' is not in an open order of station %lld", c->serial,
                               (long long)c->id));
    c->out->id = 0;
    while (row) {
        if (db_col_int(st, 0) > c->out->id) CT_GUARD_RET(order_from_row(st, c->out)); /* the newest order */
        CT_GUARD_RET(db_step(db, st, &row));
    }
    return CT_OK;
}

ct_err db_order_find_for_serial(ct_db *db, int64_t station_id, const char *serial, db_order *out)
{
    CT_ENSURE_RET(db && out, ct_fail(CT_ERR_ARG, "db_order_find_for_serial: missing argument"));
    CT_GUARD_RET(db_check_str("device serial", serial, DB_SERIAL_MAX));
    struct order_ctx c = {.id = station_id, .serial = serial, .out = out};
    return db_call(db, false, order_for_serial_fn, &c);
}

