/* db own_certs: the CA's own certificates (its server's, its OCSP responder's, its log signers'), recorded in the
 * certificates table like every certificate the CA issues, so that OCSP and the CRLs answer for them and they can
 * be revoked. Not in the issuance log, which lists what cameras and viewers hold (DB_OPERATOR_PROFILES). */
#include "db_priv.h"

#include <string.h>

static const char k_own_known[] = "SELECT count(*) FROM certificates WHERE cert_serial_hex = ?";
static const char k_own_current[] = "SELECT cert_serial_hex FROM certificates WHERE device_serial = ? AND profile = ?"
                                    " AND status = 'valid'";
static const char k_own_supersede[] = "UPDATE certificates SET status = 'superseded' WHERE cert_serial_hex = ?";
static const char k_own_insert[] =
    "INSERT INTO certificates (cert_serial_hex, device_serial, profile, subject, not_before, not_after, spki_sha256,"
    " der, status, issued_at, issuing_ca) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'valid', ?, ?)";

struct own_ctx {
    const db_cert_record *r;
    const char *actor;
    bool recorded;
};

static ct_err own_record_tx(ct_db *db, void *vctx)
{
    struct own_ctx *c = vctx;
    const db_cert_record *r = c->r;
    char supersedes[DB_CERT_SERIAL_HEX_MAX] = "-";
    int64_t known = 0;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_query_int(db, k_own_known, &known, "t", r->cert_serial_hex));
    if (known) return CT_OK; /* another process recorded it first */
    CT_GUARD_RET(db_prepare(db, k_own_current, &st, "tt", r->device_serial, r->profile));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) CT_GUARD_RET(db_col_text(st, 0, supersedes, sizeof supersedes));
    if (row) CT_GUARD_RET(db_exec(db, k_own_supersede, NULL, "t", supersedes));
    CT_GUARD_RET(db_exec(db, k_own_insert, NULL, "ttttiibbiz", r->cert_serial_hex, r->device_serial, r->profile,
                         r->subject, r->not_before, r->not_after, r->spki_sha256, sizeof r->spki_sha256, r->der,
                         r->der_len, db_now(), r->issuing_ca));
    CT_GUARD_RET(db_cert_key_claim_tx(db, r, false)); /* the CA's own keys: nobody else's to certify */
    /* The fields db_state_verify replays for every certificate (rebuild.c, "cert.record"). */
    db_detail d;
    CT_GUARD_RET(db_cert_detail(r, supersedes, &d, NULL));
    CT_GUARD_RET(db_audit_append_tx(db, c->actor, "cert.record", r->device_serial, "ok", d.s));
    c->recorded = true;
    return CT_OK;
}

ct_err db_ca_cert_record(ct_db *db, const db_cert_record *rec, const char *actor, bool *recorded)
{
    CT_ENSURE_RET(db && rec, ct_fail(CT_ERR_ARG, "db_ca_cert_record: missing argument"));
    CT_GUARD_RET(db_cert_record_check(rec, NULL, actor));
    CT_ENSURE_RET(rec->station_id == 0 && rec->order_id == 0,
                  ct_fail(CT_ERR_ARG, "the CA's own certificate names a station or order"));
    struct own_ctx c = {.r = rec, .actor = actor};
    CT_GUARD_RET(db_call(db, true, own_record_tx, &c));
    if (recorded) *recorded = c.recorded;
    return CT_OK;
}
