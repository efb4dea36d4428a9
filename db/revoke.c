/* db revoke: revocation, certificate state for OCSP, CRL lists and numbers. */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------------------
 * revocation
 * ------------------------------------------------------------------------------------------------------- */
/* For the device issuing CA's OCSP responder: viewers, stations and officers are the operations issuing CA's, so
 * "unknown" there. */
/* Per issuer (db_crl_issuer), as its CRL below. */
#define CERT_STATUS(cond)                                                                                        \
    "SELECT status, revoked_at, revocation_reason, COALESCE(issuing_ca, 0) FROM certificates"                    \
    " WHERE cert_serial_hex = ? AND profile " cond
static const char *const k_cert_status[] = {[DB_CRL_DEVICE] = CERT_STATUS("NOT IN " DB_CLIENT_PROFILES),
                                            [DB_CRL_OPS] = CERT_STATUS("IN " DB_CLIENT_PROFILES)};
/* Per CRL issuer (db_crl_issuer): viewers, stations and officers are the operations issuing CA's, every other
 * profile the device's. */
#define REVOKED_LIST(cond)                                                                                       \
    "SELECT cert_serial_hex, revoked_at, revocation_reason FROM certificates"                                   \
    " WHERE status = 'revoked' AND profile " cond " AND (issuing_ca = ?1 OR (issuing_ca IS NULL AND ?2 <> 0))"       \
    " ORDER BY revoked_at, cert_serial_hex"
static const char *const k_cert_revoked_list[] = {[DB_CRL_DEVICE] = REVOKED_LIST("NOT IN " DB_CLIENT_PROFILES),
                                                  [DB_CRL_OPS] = REVOKED_LIST("IN " DB_CLIENT_PROFILES)};
static const char k_revocation_epoch[] = "SELECT epoch FROM revocation_state WHERE id = 1";
static const char k_revocation_bump[] = "UPDATE revocation_state SET epoch = epoch + 1 WHERE id = 1";
static const char *const k_crl_number_bump[] = {
    [DB_CRL_DEVICE] = "UPDATE revocation_state SET crl_number = crl_number + 1 WHERE id = 1",
    [DB_CRL_OPS] = "UPDATE revocation_state SET ops_crl_number = ops_crl_number + 1 WHERE id = 1"};
static const char *const k_crl_number[] = {[DB_CRL_DEVICE] = "SELECT crl_number FROM revocation_state WHERE id = 1",
                                           [DB_CRL_OPS] = "SELECT ops_crl_number FROM revocation_state WHERE id = 1"};
static const char *const k_crl_subject[] = {[DB_CRL_DEVICE] = "crl", [DB_CRL_OPS] = "ops crl"};
static const char k_order_exists[] = "SELECT id FROM orders WHERE id = ?";
/* The CA's own certificates (DB_PROFILE_CA_*: its TLS, OCSP, log and checkpoint identities), which officers do not
 * revoke (db_revocation.not_ca_own): the operator does, from the command line. */
static const char k_cert_ca_own[] =
    "SELECT profile FROM certificates WHERE cert_serial_hex = ? AND profile IN (" DB_CA_OWN_PROFILE_LIST ")";
/* The certificates of a scope: one serial; an order's or a station's, with the renewals of the devices they
 * enrolled (a renewal is issued to the device, without order or station). */
#define SCOPE_CERT "cert_serial_hex = ?1"
/* A renewal is a camera's (EST's device or media-signing certificate): not a viewer's, a station's, an officer's nor
 * the CA's own, whose device serial is their name or file's (a camera named like a station or a viewer, revoked with
 * its order, must not revoke the station or the viewer: a viewer "alice" lost hers to an order's camera "alice"). */
#define SCOPE_RENEWALS(col)                                                                                      \
    "(" col " IS NULL AND profile NOT IN " DB_OPERATOR_PROFILES " AND profile <> '" DB_PROFILE_VIEWER "'"         \
    " AND device_serial IN (SELECT device_serial FROM certificates WHERE " col " = ?1))"
#define SCOPE_ORDER "(order_id = ?1 OR " SCOPE_RENEWALS("order_id") ")"
#define SCOPE_STATION "(station_id = ?1 OR " SCOPE_RENEWALS("station_id") ")"
#define SCOPE_SQL(scope)                                                                                         \
    {"SELECT cert_serial_hex, status FROM certificates WHERE " scope " ORDER BY cert_serial_hex",               \
     "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3"                     \
     " WHERE " scope " AND status <> 'revoked'"}
static const char *const k_scope_sql[][2] = {[DB_REVOKE_CERT] = SCOPE_SQL(SCOPE_CERT),
                                              [DB_REVOKE_ORDER] = SCOPE_SQL(SCOPE_ORDER),
                                              [DB_REVOKE_STATION] = SCOPE_SQL(SCOPE_STATION)};
static const char *const k_scope_action[] = {[DB_REVOKE_CERT] = "cert.revoke", [DB_REVOKE_ORDER] = "order.revoke",
                                             [DB_REVOKE_STATION] = "station.revoke"};
/* A key revoked for keyCompromise (RFC 5280 reason 1) is trusted through none of its certificates (issuance refuses
 * it again: certs.c key_not_compromised): the keys of the scope's certificates so revoked, and every certificate of
 * those keys not revoked yet, of any serial and profile (a superseded one, a renewal). Run after the scope's own
 * update, so those are the scope's no longer. Read by migration 17's index on the key (without it, one pass over
 * every certificate inside the write transaction: some 0.1 s at 300,000 of them, while issuance waits). */
#define SAME_KEY_WHERE(scope)                                                                                    \
    " WHERE status <> 'revoked' AND spki_sha256 IN (SELECT spki_sha256 FROM certificates WHERE " scope            \
    " AND status = 'revoked' AND revocation_reason = 1)"
/* Third column: the certificate the audit entry names as revoked "with" it; NULL: the revocation's subject. */
#define SAME_KEY_SQL(scope, with)                                                                                \
    {"SELECT cert_serial_hex, spki_sha256, " with " AS revoked_with FROM certificates c" SAME_KEY_WHERE(scope)    \
     " ORDER BY cert_serial_hex",                                                                                \
     "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3" SAME_KEY_WHERE(scope)}
static const char *const k_same_key_sql[][2] = {[DB_REVOKE_CERT] = SAME_KEY_SQL(SCOPE_CERT, "NULL"),
                                                 [DB_REVOKE_ORDER] = SAME_KEY_SQL(SCOPE_ORDER, "NULL"),
                                                 [DB_REVOKE_STATION] = SAME_KEY_SQL(SCOPE_STATION, "NULL")};
/* The sweep (db_revoke_same_key_sweep): the keys of every certificate revoked for keyCompromise (?1: its code),
 * each other certificate named "with" the first of them revoked. Run at every serve start: it reads the revoked
 * certificates (by an index of them) and the certificates of their keys (migration 17's index), not every one. */
static const char *const k_sweep_sql[2] = SAME_KEY_SQL(
    "revocation_reason = ?1",
    "(SELECT k.cert_serial_hex FROM certificates k WHERE k.spki_sha256 = c.spki_sha256 AND k.status = 'revoked'"
    " AND k.revocation_reason = 1 ORDER BY k.revoked_at, k.cert_serial_hex LIMIT 1)");
#define REASON_KEY_COMPROMISE 1
/* Revoking an order closes it, revoking a station disables it: what they enrolled is revoked, so must be what
 * they would enroll next. */
static const char k_order_close_at[] = "UPDATE orders SET open = 0, closed_at = ?2 WHERE id = ?1 AND open = 1";
static const char k_station_disable_id[] = "UPDATE stations SET enabled = 0 WHERE id = ?1 AND enabled = 1";

struct revoke_ctx {
    const db_revocation *r;
    int64_t id; /* order or station id */
    char subject[DB_AUDIT_FIELD_MAX];
    int64_t count;
    int64_t same_key; /* keyCompromise: the other certificates of the revoked keys revoked with them */
    int64_t at;
    bool sweep; /* db_revoke_same_key_sweep: no scope of its own, id is the reason code */
};

/* A revocation's audit detail: count (main entry only), reason, time and the serials it revoked. */
static ct_err revoke_detail(const struct revoke_ctx *c, bool main, const char *serials, db_detail *d)
{
    db_detail_init(d);
    if (main) CT_GUARD_RET(db_detail_int(d, "certificates", c->count));
    if (main && c->same_key) CT_GUARD_RET(db_detail_int(d, "same_key", c->same_key));
    CT_GUARD_RET(db_detail_str(d, "reason", c->r->reason_name));
    CT_GUARD_RET(db_detail_int(d, "code", c->r->reason));
    CT_GUARD_RET(db_detail_int(d, "at", c->at));
    return *serials ? db_detail_str(d, "serials", serials) : CT_OK;
}

/* Prepares a query of the scope's certificates, its one parameter (?1) bound. */
static ct_err scope_prepare(ct_db *db, const struct revoke_ctx *c, const char *sql, db_stmt **st)
{
    if (c->r->scope == DB_REVOKE_CERT && !c->sweep) return db_prepare(db, sql, st, "t", c->r->cert_serial_hex);
    return db_prepare(db, sql, st, "i", c->id);
}

/* Counts the scope's certificates still to revoke and names each in the audit: the serials that do not fit the
 * main entry go in "revoke.serials" entries of the same transaction (the rebuild needs every one). */
static ct_err revoke_collect(ct_db *db, struct revoke_ctx *c, char *serials, size_t serials_max, int64_t *total)
{
    db_stmt *st = NULL;
    bool row = false;
    size_t used = 0;
    db_detail d;
    CT_GUARD_RET(scope_prepare(db, c, k_scope_sql[c->r->scope][0], &st));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) break;
        (*total)++;
        if (strcmp(db_col_str(st, 1), "revoked") == 0) continue;
        c->count++;
        const char *hex = db_col_str(st, 0);
        if (used + strlen(hex) + 2 >= serials_max) {
            CT_GUARD_RET(revoke_detail(c, false, serials, &d));
            CT_GUARD_RET(db_audit_append_tx(db, c->r->actor, "revoke.serials", c->subject, "ok", d.s));
            used = 0;
        }
        CT_GUARD_RET(ct_snprintf(serials + used, serials_max - used, "%s%s", used ? "," : "", hex));
        used += strlen(serials + used);
    }
    return CT_OK;
}

/* Binds the scope's one parameter (?1) and, for the updates, the revocation time (?2) and reason (?3). */
static ct_err scope_exec(ct_db *db, const struct revoke_ctx *c, const char *sql, int *changes)
{
    if (c->r->scope == DB_REVOKE_CERT && !c->sweep)
        return db_exec(db, sql, changes, "tii", c->r->cert_serial_hex, c->at, (int64_t)c->r->reason);
    return db_exec(db, sql, changes, "iii", c->id, c->at, (int64_t)c->r->reason);
}

/* keyCompromise: revokes the other certificates of the keys just revoked (SAME_KEY_WHERE) at the same time, each
 * with its own "revoke.same_key" audit entry (subject: its serial; the rebuild replays it as any revocation). */
static ct_err revoke_same_key(ct_db *db, struct revoke_ctx *c)
{
    db_stmt *st = NULL;
    bool row = false;
    db_detail d;
    const char *const *sql = c->sweep ? k_sweep_sql : k_same_key_sql[c->r->scope];
    CT_GUARD_RET(scope_prepare(db, c, sql[0], &st));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) break;
        const char *serial = db_col_str(st, 0);
        size_t spki_len = 0;
        const void *spki = db_col_blob(st, 1, &spki_len);
        CT_ENSURE_RET(serial && spki && spki_len == 32,
                      ct_fail(CT_ERR_INTEGRITY, "a certificate of a compromised key has no serial or key hash"));
        c->same_key++;
        CT_GUARD_RET(revoke_detail(c, false, serial, &d));
        CT_GUARD_RET(db_detail_hex(&d, "key", spki, spki_len));
        const char *with = db_col_str(st, 2);
        CT_GUARD_RET(db_detail_str(&d, "with", with ? with : c->subject));
        CT_GUARD_RET(db_audit_append_tx(db, c->r->actor, "revoke.same_key", serial, "ok", d.s));
    }
    int changes = 0;
    CT_GUARD_RET(scope_exec(db, c, sql[1], &changes));
    CT_ENSURE_RET(changes == c->same_key, ct_fail(CT_ERR_INTERNAL, "revoked %d certificates of the same keys, expected "
                                                  "%lld", changes, (long long)c->same_key));
    return CT_OK;
}

static ct_err revoke_tx(ct_db *db, void *vctx)
{
    struct revoke_ctx *c = vctx;
    const db_revocation *r = c->r;
    int64_t total = 0;
    ct_err rc = CT_OK;
    switch (r->scope) {
    case DB_REVOKE_CERT: {
        CT_GUARD_RET(ct_strlcpy(c->subject, sizeof c->subject, r->cert_serial_hex));
        if (!r->not_ca_own) break;
        db_stmt *st = NULL;
        bool own = false;
        CT_GUARD_RET(db_prepare(db, k_cert_ca_own, &st, "t", r->cert_serial_hex));
        CT_GUARD_RET(db_step(db, st, &own));
        CT_ENSURE_RET(!own, ct_fail(CT_ERR_FORBIDDEN, "certificate %s is the CA's own (%s): the operator revokes it, with "
                                    "camtrust-ca revoke --dir DIR %s --reason REASON", r->cert_serial_hex,
                                    db_col_str(st, 0), r->cert_serial_hex));
        break;
    }
    case DB_REVOKE_ORDER:
        c->id = r->order_id;
        CT_GUARD_RET(ct_snprintf(c->subject, sizeof c->subject, "order %lld", (long long)r->order_id));
        rc = db_query_int(db, k_order_exists, &c->id, "i", r->order_id);
        CT_ENSURE_RET(rc != CT_ERR_NOT_FOUND, ct_fail(CT_ERR_NOT_FOUND, "no order %lld", (long long)r->order_id));
        break;
    case DB_REVOKE_STATION:
        CT_GUARD_RET(ct_snprintf(c->subject, sizeof c->subject, "station %s", r->station));
        rc = db_query_int(db, db_sql_station_id, &c->id, "t", r->station);
        CT_ENSURE_RET(rc != CT_ERR_NOT_FOUND, ct_fail(CT_ERR_NOT_FOUND, "no station named '%s'", r->station));
        break;
    }
    CT_GUARD_RET(rc);
    char serials[768]; /* the main entry's room for serials, beside its other fields */
    serials[0] = '\0';
    CT_GUARD_RET(revoke_collect(db, c, serials, sizeof serials, &total));
    if (total == 0 && r->scope == DB_REVOKE_CERT)
        return ct_fail(CT_ERR_NOT_FOUND, "no certificate with serial %s was issued here", r->cert_serial_hex);
    int stopped = 0;
    if (r->scope == DB_REVOKE_ORDER) CT_GUARD_RET(db_exec(db, k_order_close_at, &stopped, "ii", c->id, c->at));
    if (r->scope == DB_REVOKE_STATION) CT_GUARD_RET(db_exec(db, k_station_disable_id, &stopped, "i", c->id));
    CT_ENSURE_RET(total > 0 || stopped, ct_fail(CT_ERR_NOT_FOUND, "%s has no certificates", c->subject));
    CT_ENSURE_RET(c->count > 0 || stopped,
                  r->scope == DB_REVOKE_CERT
                      ? ct_fail(CT_ERR_ALREADY_REVOKED, "certificate %s is already revoked", c->subject)
                      : ct_fail(CT_ERR_ALREADY_REVOKED, "every certificate of %s is already revoked (and it is %s)",
                                c->subject, r->scope == DB_REVOKE_ORDER ? "closed" : "disabled"));
    int changes = 0;
    CT_GUARD_RET(scope_exec(db, c, k_scope_sql[r->scope][1], &changes));
    CT_ENSURE_RET(changes == c->count, ct_fail(CT_ERR_INTERNAL, "revoked %d certificates, expected %lld", changes,
                                               (long long)c->count));
    if (r->reason == REASON_KEY_COMPROMISE && c->count > 0) CT_GUARD_RET(revoke_same_key(db, c));
    CT_GUARD_RET(db_exec(db, k_revocation_bump, NULL, ""));
    db_detail d;
    CT_GUARD_RET(revoke_detail(c, true, serials, &d));
    CT_GUARD_RET(db_audit_append_tx(db, r->actor, k_scope_action[r->scope], c->subject, "ok", d.s));
    if (!stopped) return CT_OK;
    db_detail_init(&d);
    if (r->scope == DB_REVOKE_ORDER) CT_GUARD_RET(db_detail_int(&d, "id", c->id));
    CT_GUARD_RET(db_detail_str(&d, "because", "revoked"));
    return db_audit_append_tx(db, r->actor, r->scope == DB_REVOKE_ORDER ? "order.close" : "station.disable",
                              r->scope == DB_REVOKE_ORDER ? c->subject : r->station, "ok", d.s);
}

ct_err db_revoke(ct_db *db, const db_revocation *r, db_revoke_count *count)
{
    CT_ENSURE_RET(db && r && (unsigned)r->scope <= DB_REVOKE_STATION, ct_fail(CT_ERR_ARG, "db_revoke: missing argument"));
    CT_GUARD_RET(db_check_str("actor", r->actor, DB_AUDIT_FIELD_MAX));
    CT_GUARD_RET(db_check_str("reason", r->reason_name, 64));
    CT_ENSURE_RET(r->reason >= 0 && r->reason <= 10, ct_fail(CT_ERR_ARG, "reason code %d", r->reason));
    if (r->scope == DB_REVOKE_CERT) CT_GUARD_RET(db_check_str("certificate serial", r->cert_serial_hex, DB_CERT_SERIAL_HEX_MAX));
    if (r->scope == DB_REVOKE_STATION) CT_GUARD_RET(db_check_str("station name", r->station, DB_NAME_MAX));
    struct revoke_ctx c = {.r = r, .at = r->at ? r->at : db_now()};
    CT_GUARD_RET(db_call(db, true, revoke_tx, &c));
    if (count) *count = (db_revoke_count){.revoked = c.count, .same_key = c.same_key};
    return CT_OK;
}

static ct_err sweep_tx(ct_db *db, void *vctx)
{
    struct revoke_ctx *c = vctx;
    CT_GUARD_RET(revoke_same_key(db, c));
    return c->same_key ? db_exec(db, k_revocation_bump, NULL, "") : CT_OK;
}

ct_err db_revoke_same_key_sweep(ct_db *db, const char *actor, int64_t *revoked)
{
    CT_ENSURE_RET(db && revoked, ct_fail(CT_ERR_ARG, "db_revoke_same_key_sweep: missing argument"));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    const db_revocation r = {.reason = REASON_KEY_COMPROMISE, .reason_name = "keyCompromise", .actor = actor};
    struct revoke_ctx c = {.r = &r, .id = REASON_KEY_COMPROMISE, .at = db_now(), .sweep = true};
    CT_GUARD_RET(db_call(db, true, sweep_tx, &c));
    *revoked = c.same_key;
    return CT_OK;
}

struct status_ctx {
    db_crl_issuer issuer;
    const char *serial;
    db_cert_state *out;
};

static ct_err status_fn(ct_db *db, void *vctx)
{
    struct status_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_cert_status[c->issuer], &st, "t", c->serial));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_ERR_NOT_FOUND;
    c->out->revoked = strcmp(db_col_str(st, 0), "revoked") == 0;
    c->out->revoked_at = db_col_int(st, 1);
    c->out->reason = (int)db_col_int(st, 2);
    c->out->issuing_ca = db_col_int(st, 3);
    return CT_OK;
}

ct_err db_cert_state_get(ct_db *db, db_crl_issuer issuer, const char *cert_serial_hex, db_cert_state *out)
{
    CT_ENSURE_RET(db && out && (unsigned)issuer <= DB_CRL_OPS, ct_fail(CT_ERR_ARG, "db_cert_state_get: missing argument"));
    CT_GUARD_RET(db_check_str("certificate serial", cert_serial_hex, DB_CERT_SERIAL_HEX_MAX));
    memset(out, 0, sizeof *out);
    struct status_ctx c = {.issuer = issuer, .serial = cert_serial_hex, .out = out};
    return db_call(db, false, status_fn, &c);
}

static ct_err revoked_row(db_stmt *st, void *item)
{
    db_revoked *r = item;
    CT_GUARD_RET(db_col_text(st, 0, r->cert_serial_hex, sizeof r->cert_serial_hex));
    r->revoked_at = db_col_int(st, 1);
    r->reason = (int)db_col_int(st, 2);
    return CT_OK;
}

ct_err db_cert_list_revoked(ct_db *db, db_crl_issuer issuer, int64_t issuing_ca, bool first_generation,
                            db_revoked **out, size_t *n)
{
    CT_ENSURE_RET(db && out && n && (unsigned)issuer <= DB_CRL_OPS,
                  ct_fail(CT_ERR_ARG, "db_cert_list_revoked: missing argument"));
    db_row_list l = {.sql = k_cert_revoked_list[issuer], .size = sizeof(db_revoked), .fill = revoked_row,
                  .by_generation = true, .issuing_ca = issuing_ca, .first_generation = first_generation};
    CT_GUARD_RET(db_collect(db, &l));
    *out = l.items;
    *n = l.n;
    return CT_OK;
}

static ct_err epoch_fn(ct_db *db, void *out) { return db_query_int(db, k_revocation_epoch, out, ""); }

ct_err db_revocation_epoch(ct_db *db, int64_t *epoch)
{
    CT_ENSURE_RET(db && epoch, ct_fail(CT_ERR_ARG, "db_revocation_epoch: missing argument"));
    return db_call(db, false, epoch_fn, epoch);
}

struct crl_ctx {
    db_crl_issuer issuer;
    const char *actor;
    size_t revoked;
    int64_t number;
};

static ct_err crl_number_tx(ct_db *db, void *vctx)
{
    struct crl_ctx *c = vctx;
    char subject[48];
    db_detail d;
    CT_GUARD_RET(db_exec(db, k_crl_number_bump[c->issuer], NULL, ""));
    CT_GUARD_RET(db_query_int(db, k_crl_number[c->issuer], &c->number, ""));
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "%s %lld", k_crl_subject[c->issuer], (long long)c->number));
    db_detail_init(&d);
    CT_GUARD_RET(db_detail_str(&d, "issuer", c->issuer == DB_CRL_DEVICE ? "device" : "ops"));
    CT_GUARD_RET(db_detail_int(&d, "number", c->number));
    CT_GUARD_RET(db_detail_int(&d, "revoked", (int64_t)c->revoked));
    return db_audit_append_tx(db, c->actor, "crl.issue", subject, "ok", d.s);
}

ct_err db_crl_number_next(ct_db *db, db_crl_issuer issuer, const char *actor, size_t revoked, int64_t *number)
{
    CT_ENSURE_RET(db && number && (unsigned)issuer <= DB_CRL_OPS,
                  ct_fail(CT_ERR_ARG, "db_crl_number_next: missing argument"));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct crl_ctx c = {.issuer = issuer, .actor = actor, .revoked = revoked};
    CT_GUARD_RET(db_call(db, true, crl_number_tx, &c));
    *number = c.number;
    return CT_OK;
}

