/* db stations: the factory stations and their client certificates. */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------------------
 * stations
 * ------------------------------------------------------------------------------------------------------- */
/* A station is refused as soon as its certificate is revoked (no row: recorded before certificates were). */
#define STATION_SELECT                                                                                           \
    "SELECT id, name, enabled, cert_sha256, cert_serial_hex, EXISTS (SELECT 1 FROM certificates c"              \
    " WHERE c.cert_serial_hex = stations.cert_serial_hex AND c.profile = '" DB_PROFILE_STATION "'"               \
    " AND c.status = 'revoked') FROM stations "
static const char k_station_by_name[] = STATION_SELECT "WHERE name = ?";
static const char k_station_by_cert[] = STATION_SELECT "WHERE cert_sha256 = ?";
const char db_sql_station_id[] = "SELECT id FROM stations WHERE name = ?";
static const char k_station_insert[] =
    "INSERT INTO stations (name, enabled, cert_sha256, cert_serial_hex, cert_der, created_at) VALUES (?, 1, ?, ?, ?, ?)";
static const char k_station_enable[] = "UPDATE stations SET enabled = ? WHERE name = ?";

struct station_ctx {
    const char *name;
    const uint8_t *hash;
    const db_cert_record *cert;
    const char *actor;
    db_station *out;
};

static ct_err station_add_tx(ct_db *db, void *vctx)
{
    struct station_ctx *c = vctx;
    const db_cert_record *r = c->cert;
    ct_err rc = db_exec(db, k_station_insert, NULL, "tbtbi", c->name, c->hash, (size_t)32, r->cert_serial_hex, r->der,
                        r->der_len, db_now());
    if (rc == CT_ERR_EXISTS) {
        int64_t id = 0;
        return db_query_int(db, db_sql_station_id, &id, "t", c->name) == CT_OK
                   ? ct_fail(CT_ERR_EXISTS, "station name '%s' is taken", c->name)
                   : ct_fail(CT_ERR_EXISTS, "this certificate is already registered to another station");
    }
    CT_GUARD_RET(rc);
    CT_GUARD_RET(db_cert_insert_tx(db, r, NULL, c->actor));
    db_detail d;
    db_detail_init(&d);
    CT_GUARD_RET(db_detail_str(&d, "cert_serial", r->cert_serial_hex));
    CT_GUARD_RET(db_detail_hex(&d, "fp", c->hash, 32));
    return db_audit_append_tx(db, c->actor, "station.add", c->name, "ok", d.s);
}

ct_err db_station_add(ct_db *db, const char *name, const db_cert_record *cert, const char *actor)
{
    CT_ENSURE_RET(db, ct_fail(CT_ERR_ARG, "db_station_add: no database"));
    CT_GUARD_RET(db_check_str("station name", name, DB_NAME_MAX));
    CT_GUARD_RET(db_cert_record_check(cert, NULL, actor));
    CT_ENSURE_RET(strcmp(cert->profile, DB_PROFILE_STATION) == 0 && strcmp(cert->device_serial, name) == 0,
                  ct_fail(CT_ERR_ARG, "a station certificate is recorded with profile station and its name"));
    uint8_t hash[32];
    CT_GUARD_RET(ct_sha256(cert->der, cert->der_len, hash));
    struct station_ctx c = {.name = name, .hash = hash, .cert = cert, .actor = actor};
    return db_call(db, true, station_add_tx, &c);
}

static ct_err station_find_fn(ct_db *db, void *vctx)
{
    struct station_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    if (c->name)
        CT_GUARD_RET(db_prepare(db, k_station_by_name, &st, "t", c->name));
    else
        CT_GUARD_RET(db_prepare(db, k_station_by_cert, &st, "b", c->hash, (size_t)32));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return c->name ? ct_fail(CT_ERR_NOT_FOUND, "no station named '%s'", c->name)
                             : ct_fail(CT_ERR_NOT_FOUND, "no station holds this certificate");
    memset(c->out, 0, sizeof *c->out);
    c->out->id = db_col_int(st, 0);
    CT_GUARD_RET(db_col_text(st, 1, c->out->name, sizeof c->out->name));
    c->out->enabled = (int)db_col_int(st, 2) != 0;
    CT_GUARD_RET(db_col_hash(st, 3, c->out->cert_sha256));
    CT_GUARD_RET(db_col_text(st, 4, c->out->cert_serial_hex, sizeof c->out->cert_serial_hex));
    c->out->revoked = (int)db_col_int(st, 5) != 0;
    return CT_OK;
}

ct_err db_station_find_by_cert(ct_db *db, const uint8_t cert_sha256[32], db_station *out)
{
    CT_ENSURE_RET(db && cert_sha256 && out, ct_fail(CT_ERR_ARG, "db_station_find_by_cert: missing argument"));
    struct station_ctx c = {.hash = cert_sha256, .out = out};
    CT_GUARD_RET(db_call(db, false, station_find_fn, &c));
    CT_ENSURE_RET(!out->revoked, ct_fail(CT_ERR_DISABLED, "the certificate of station %s (%s) is revoked", out->name,
                                         out->cert_serial_hex));
    return CT_OK;
}

ct_err db_station_find(ct_db *db, const char *name, db_station *out)
{
    CT_ENSURE_RET(db && out, ct_fail(CT_ERR_ARG, "db_station_find: missing argument"));
    CT_GUARD_RET(db_check_str("station name", name, DB_NAME_MAX));
    struct station_ctx c = {.name = name, .out = out};
    return db_call(db, false, station_find_fn, &c);
}

ct_err db_station_set_enabled(ct_db *db, const char *name, bool enabled, const char *actor)
{
    return db_client_set_enabled(db, "station", k_station_enable, name, enabled, actor);
}

