/* db certs: issued certificates, recorded with their log leaf and audit event (group commit). */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/core/merkle.h"

/* ---------------------------------------------------------------------------------------------------------
 * certificates
 * ------------------------------------------------------------------------------------------------------- */
static const char k_cert_current[] = "SELECT cert_serial_hex, status, spki_sha256, der FROM certificates"
                                     " WHERE device_serial = ? AND profile = ? AND status = 'valid'";
static const char k_cert_current_count[] = "SELECT count(*) FROM certificates"
                                           " WHERE device_serial = ? AND profile = ? AND status = 'valid'";
/* Only the same device's current certificate of the same profile can be superseded by this issuance. */
static const char k_cert_supersede[] = "UPDATE certificates SET status = 'superseded' WHERE cert_serial_hex = ?"
                                       " AND device_serial = ? AND profile = ? AND status = 'valid'";
/* One camera, one DNS name: a device serial that differs only by case from an issued one. */
static const char k_cert_case_variant[] = "SELECT device_serial FROM certificates WHERE device_serial = ?1 COLLATE NOCASE"
                                          " AND device_serial <> ?1 AND profile NOT IN " DB_CLIENT_PROFILES " LIMIT 1";
/* Revocation is final: an order's issuance (of any profile) is refused (1) while the serial has a revoked
 * certificate, unless its order line re-provisions it and nothing of that serial was revoked since the line
 * opened. */
static const char k_cert_revoked_block[] =
    "SELECT (SELECT count(*) FROM certificates WHERE device_serial = ?1 COLLATE NOCASE AND status = 'revoked'"
    "  AND profile NOT IN " DB_CLIENT_PROFILES ")"
    " > COALESCE((SELECT revoked_seen FROM order_serials WHERE order_id = ?2 AND serial = ?1), 0)";
/* The certificate that authenticated a renewal, still current in its write transaction. */
static const char k_cert_is_current[] = "SELECT count(*) FROM certificates WHERE cert_serial_hex = ?"
                                        " AND status = 'valid'";
/* An order's issuance, read in its write transaction: the order still open, its station still enabled and its
 * certificate not revoked (the request was checked before it was signed; an officer may have acted meanwhile). */
static const char k_order_issuable[] =
    "SELECT o.open, s.enabled, s.name, EXISTS (SELECT 1 FROM certificates c WHERE c.cert_serial_hex = s.cert_serial_hex"
    " AND c.profile = '" DB_PROFILE_STATION "' AND c.status = 'revoked') FROM orders o JOIN stations s ON s.id ="
    " o.station_id WHERE o.id = ? AND s.id = ?";
/* A renewal that supersedes nothing: has this serial's certificate of this profile been revoked? */
static const char k_cert_profile_revoked[] = "SELECT count(*) FROM certificates WHERE device_serial = ? COLLATE NOCASE"
                                             " AND profile = ? AND status = 'revoked'";
/* The certificate a renewal was to supersede, not current when it is recorded: revoked (2) or superseded (1) since the
 * renewal was checked; no row: it is not this serial's certificate of this profile. */
static const char k_cert_gone[] = "SELECT CASE status WHEN 'revoked' THEN 2 WHEN 'superseded' THEN 1 ELSE 0 END"
                                  " FROM certificates WHERE cert_serial_hex = ? AND device_serial = ? AND profile = ?";
static const char k_cert_insert[] =
    "INSERT INTO certificates (cert_serial_hex, device_serial, profile, subject, not_before, not_after, station_id,"
    " order_id, spki_sha256, der, status, issued_at, issuing_ca) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'valid', ?, ?)";

/* One public key, one holder (migration 15): the first certificate of a key claims it for its device serial and
 * profile; only that holder's certificates (a renewal, a re-provisioning) may certify it again. */
static const char k_key_claim[] = "INSERT INTO certified_keys (spki_sha256, device_serial, profile, cert_serial_hex)"
                                  " VALUES (?, ?, ?, ?) ON CONFLICT (spki_sha256) DO NOTHING";
static const char k_key_holder[] = "SELECT device_serial, profile, cert_serial_hex FROM certified_keys"
                                   " WHERE spki_sha256 = ?";
/* A key once revoked for keyCompromise (RFC 5280 reason 1), under any serial and profile: read through an index on
 * the key (migration 16's partial one, whose predicate this is, or 17's), not every certificate. The key's
 * first certificate named (its others were revoked with it, db_revoke). */
static const char k_key_compromised[] = "SELECT cert_serial_hex, device_serial FROM certificates WHERE spki_sha256 = ?"
                                        " AND status = 'revoked' AND revocation_reason = 1 ORDER BY rowid LIMIT 1";

struct cert_ctx {
    const char *serial;
    const char *profile;
    db_cert *out;
    const db_cert_record *rec;
    const char *supersedes;
    const char *actor;
    db_detail detail; /* the issuance's audit detail and log leaf hash, made before the write (db_cert_detail) */
    uint8_t leaf[CT_MERKLE_HASH_LEN];
};

static ct_err cert_current_fn(ct_db *db, void *vctx)
{
    struct cert_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_cert_current, &st, "tt", c->serial, c->profile));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(row, ct_fail(CT_ERR_NOT_FOUND, "no current %s certificate for serial '%s'", c->profile, c->serial));
    CT_GUARD_RET(db_col_text(st, 0, c->out->cert_serial_hex, sizeof c->out->cert_serial_hex));
    CT_GUARD_RET(db_col_text(st, 1, c->out->status, sizeof c->out->status));
    CT_GUARD_RET(db_col_hash(st, 2, c->out->spki_sha256));
    size_t len = 0;
    const void *der = db_col_blob(st, 3, &len);
    CT_ENSURE_RET(der && len > 0, ct_fail(CT_ERR_DB, "certificate %s has no DER", c->out->cert_serial_hex));
    CT_GUARD_RET(ct_buf_alloc(&c->out->der, len));
    return ct_buf_set(&c->out->der, der, len);
}

ct_err db_cert_find_current(ct_db *db, const char *device_serial, const char *profile, db_cert *out)
{
    CT_ENSURE_RET(db && out, ct_fail(CT_ERR_ARG, "db_cert_find_current: missing argument"));
    CT_GUARD_RET(db_check_str("device serial", device_serial, DB_SERIAL_MAX));
    CT_GUARD_RET(db_check_str("profile", profile, DB_PROFILE_MAX));
    memset(out, 0, sizeof *out);
    struct cert_ctx c = {.serial = device_serial, .profile = profile, .out = out};
    ct_err rc = db_call(db, false, cert_current_fn, &c);
    if (rc != CT_OK) ct_buf_free(&out->der);
    return rc;
}

struct key_holder_ctx {
    const uint8_t *spki_sha256;
    char *serial;
    size_t max;
};

static ct_err key_holder_fn(ct_db *db, void *vctx)
{
    struct key_holder_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_key_holder, &st, "b", c->spki_sha256, (size_t)32));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(row, ct_fail(CT_ERR_NOT_FOUND, "no certificate certifies this public key"));
    return db_col_text(st, 0, c->serial, c->max);
}

ct_err db_key_holder(ct_db *db, const uint8_t spki_sha256[32], char *serial, size_t max)
{
    CT_ENSURE_RET(db && spki_sha256 && serial, ct_fail(CT_ERR_ARG, "db_key_holder: missing argument"));
    struct key_holder_ctx c = {.spki_sha256 = spki_sha256, .serial = serial, .max = max};
    return db_call(db, false, key_holder_fn, &c);
}

static ct_err key_holder_check(ct_db *db, const uint8_t spki_sha256[32], const char *device_serial,
                               const char *profile)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_key_holder, &st, "b", spki_sha256, (size_t)32));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_OK;
    const char *serial = db_col_str(st, 0), *prof = db_col_str(st, 1), *cert = db_col_str(st, 2);
    CT_ENSURE_RET(serial && prof && cert, ct_fail(CT_ERR_DB, "a certified key's holder has no serial or profile"));
    if (strcmp(serial, device_serial) == 0 && strcmp(prof, profile) == 0) return CT_OK;
    return ct_fail(CT_ERR_EXISTS, "this public key is already certified for serial '%s' (%s certificate %s): one key "
                   "per device and profile", serial, prof, cert);
}

/* Read in the issuance's own write transaction: a revocation committed by any process or node before it is seen. */
static ct_err key_not_compromised(ct_db *db, const uint8_t spki_sha256[32])
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_key_compromised, &st, "b", spki_sha256, (size_t)32));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_OK;
    return ct_fail(CT_ERR_FORBIDDEN, "this public key was revoked for keyCompromise (certificate %s of serial '%s'): "
                   "a compromised key is never certified again, make a new key", db_col_str(st, 0), db_col_str(st, 1));
}

ct_err db_cert_key_claim_tx(ct_db *db, const db_cert_record *r, bool check)
{
    CT_GUARD_RET(db_exec(db, k_key_claim, NULL, "bttt", r->spki_sha256, sizeof r->spki_sha256, r->device_serial,
                         r->profile, r->cert_serial_hex));
    /* The claim above and this read in one write transaction (on PostgreSQL, under the writers' lock): of two
     * issuances of one key for different holders, on any node, the second sees the first's claim. */
    return check ? key_holder_check(db, r->spki_sha256, r->device_serial, r->profile) : CT_OK;
}

/* The order and station that asked, as they are now: closed, disabled or revoked since the request was checked (the
 * station of a revoke --station, which revokes what it enrolled) is refused, and nothing is written. */
static ct_err order_issuable(ct_db *db, const db_cert_record *r)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_order_issuable, &st, "ii", r->order_id, r->station_id));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(row, ct_fail(CT_ERR_NOT_IN_ORDER, "order %lld is not an order of station %lld",
                               (long long)r->order_id, (long long)r->station_id));
    const char *station = db_col_str(st, 2);
    CT_ENSURE_RET(!db_col_int(st, 3), ct_fail(CT_ERR_DISABLED, "the certificate of station %s is revoked", station));
    CT_ENSURE_RET(db_col_int(st, 1), ct_fail(CT_ERR_DISABLED, "station %s is disabled", station));
    CT_ENSURE_RET(db_col_int(st, 0), ct_fail(CT_ERR_NOT_IN_ORDER, "order %lld of station %s is closed",
                                             (long long)r->order_id, station));
    return CT_OK;
}

/* The device serial's rules for an order's issuance: one spelling, and revocation is final. A renewal keeps the
 * serial of the certificate that authenticated it (even one spelt twice before this rule), and cannot replace a
 * revoked certificate of its profile: it must supersede a current one, or the profile must never have been
 * revoked for that serial (only an order line re-provisions it). */
static ct_err cert_serial_allowed(ct_db *db, const db_cert_record *r, const char *supersedes)
{
    db_stmt *st = NULL;
    bool row = false;
    int64_t blocked = 0;
    if (r->order_id == 0) {
        if (!supersedes) CT_GUARD_RET(db_query_int(db, k_cert_profile_revoked, &blocked, "tt", r->device_serial, r->profile));
        CT_ENSURE_RET(!blocked, ct_fail(CT_ERR_ALREADY_REVOKED, "the %s certificate of serial '%s' was revoked and "
                                        "revocation is final: a renewal cannot replace it (an officer may re-provision "
                                        "it: order reprovision)", r->profile, r->device_serial));
        return CT_OK;
    }
    CT_GUARD_RET(order_issuable(db, r));
    CT_GUARD_RET(db_prepare(db, k_cert_case_variant, &st, "t", r->device_serial));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(!row, ct_fail(CT_ERR_EXISTS, "serial '%s' differs only by case from '%s', issued here: serials are "
                                "one DNS name", r->device_serial, db_col_str(st, 0)));
    CT_GUARD_RET(db_query_int(db, k_cert_revoked_block, &blocked, "ti", r->device_serial, r->order_id));
    CT_ENSURE_RET(!blocked, ct_fail(CT_ERR_ALREADY_REVOKED, "serial '%s' has a revoked certificate and revocation is "
                                    "final (an officer may re-provision it: order reprovision)", r->device_serial));
    return CT_OK;
}

/* What rebuilds a certificate's row (the device serial is the entry's subject; the DER by its hash: the row and
 * the issuance log hold it); with `leaf`, the certificate's issuance log leaf hash too. */
ct_err db_cert_detail(const db_cert_record *r, const char *supersedes, db_detail *d, uint8_t *leaf)
{
    uint8_t h[32];
    if (leaf) CT_GUARD_RET(ct_merkle_leaf_hash(r->der, r->der_len, leaf));
    CT_GUARD_RET(ct_sha256(r->der, r->der_len, h));
    db_detail_init(d);
    CT_GUARD_RET(db_detail_str(d, "cert_serial", r->cert_serial_hex));
    CT_GUARD_RET(db_detail_str(d, "profile", r->profile));
    CT_GUARD_RET(db_detail_int(d, "station", r->station_id));
    CT_GUARD_RET(db_detail_int(d, "order", r->order_id));
    CT_GUARD_RET(db_detail_str(d, "supersedes", supersedes ? supersedes : "-"));
    CT_GUARD_RET(db_detail_hex(d, "spki", r->spki_sha256, 32));
    CT_GUARD_RET(db_detail_hex(d, "sha256", h, 32));
    return db_detail_int(d, "issuing_ca", r->issuing_ca); /* which generation's CRL and OCSP answer for it */
}

/* d and leaf: db_cert_detail's, made by the caller (outside the group commit's serialized writer). */
static ct_err cert_insert_tx(ct_db *db, const db_cert_record *r, const char *supersedes, const char *actor,
                             const db_detail *d, const uint8_t *leaf)
{
    if (r->authenticated_by) {
        /* Before the supersede below, which may be of that very certificate (an identity renewal). */
        int64_t current = 0;
        CT_GUARD_RET(db_query_int(db, k_cert_is_current, &current, "t", r->authenticated_by));
        CT_ENSURE_RET(current == 1, ct_fail(CT_ERR_UNKNOWN_CLIENT, "the client certificate is not the current "
                                            "certificate of a device (%s: revoked or superseded meanwhile)",
                                            r->authenticated_by));
    }
    if (supersedes) {
        int changes = 0;
        int64_t gone = 0;
        CT_GUARD_RET(db_exec(db, k_cert_supersede, &changes, "ttt", supersedes, r->device_serial, r->profile));
        /* Revoked or renewed by another request since this renewal was checked: said as such (409), not a 404. */
        ct_err rc = changes == 1 ? CT_OK
                                 : db_query_int(db, k_cert_gone, &gone, "ttt", supersedes, r->device_serial, r->profile);
        CT_ENSURE_RET(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
        CT_ENSURE_RET(gone != 2, ct_fail(CT_ERR_ALREADY_REVOKED, "the %s certificate %s of serial '%s' was revoked "
                                         "meanwhile and revocation is final: a renewal cannot replace it", r->profile,
                                         supersedes, r->device_serial));
        CT_ENSURE_RET(gone != 1, ct_fail(CT_ERR_ALREADY_ISSUED, "the %s certificate %s of serial '%s' was renewed "
                                         "meanwhile: renew the current one", r->profile, supersedes, r->device_serial));
        CT_ENSURE_RET(changes == 1, ct_fail(CT_ERR_NOT_FOUND, "no current %s certificate %s of serial '%s' to supersede",
                                            r->profile, supersedes, r->device_serial));
    }
    bool operator = strcmp(r->profile, DB_PROFILE_STATION) == 0 || strcmp(r->profile, DB_PROFILE_OFFICER) == 0;
    if (!operator && strcmp(r->profile, DB_PROFILE_VIEWER) != 0) CT_GUARD_RET(cert_serial_allowed(db, r, supersedes));
    /* After the serial's rules (a serial revoked and not re-provisioned says so, whatever the key), before the key's
     * holder: a compromised key is refused as such, for whichever serial and profile. */
    CT_GUARD_RET(key_not_compromised(db, r->spki_sha256));
    ct_err rc = db_exec(db, k_cert_insert, NULL, "ttttiizzbbiz", r->cert_serial_hex, r->device_serial, r->profile,
                        r->subject, r->not_before, r->not_after, r->station_id, r->order_id, r->spki_sha256,
                        sizeof r->spki_sha256, r->der, r->der_len, db_now(), r->issuing_ca);
    if (rc == CT_ERR_EXISTS) {
        /* Two unique rules can refuse this row: tell the caller which one. */
        int64_t current = 0;
        CT_GUARD_RET(db_query_int(db, k_cert_current_count, &current, "tt", r->device_serial, r->profile));
        return current > 0 ? ct_fail(CT_ERR_ALREADY_ISSUED, "serial '%s' already has a current %s certificate",
                                     r->device_serial, r->profile)
                           : ct_fail(CT_ERR_EXISTS, "certificate serial %s is already recorded", r->cert_serial_hex);
    }
    CT_GUARD_RET(rc);
    CT_GUARD_RET(db_cert_key_claim_tx(db, r, true));
    /* A camera's renewal renews: a profile's first certificate is a station's, in an order (which an officer closes,
     * or disables its station), never one the camera's identity certificate gets for itself. After the key's holder
     * (another serial's key is a clone, named as such); the CA's own certificates are recorded without one at first. */
    CT_ENSURE_RET(supersedes || !r->authenticated_by,
                  ct_fail(CT_ERR_FORBIDDEN, "serial '%s' has no %s certificate to renew: its first is a station's "
                          "(simpleenroll in an open order)", r->device_serial, r->profile));
    /* The issuance log's next leaf, in this same transaction: no certificate leaves the CA unlogged (but the
     * CA's own operators', DB_OPERATOR_PROFILES). */
    if (!operator) CT_GUARD_RET(db_log_append_tx(db, r->cert_serial_hex, leaf));
    return db_audit_append_tx(db, actor, "cert.issue", r->device_serial, "ok", d->s);
}

ct_err db_cert_insert_tx(ct_db *db, const db_cert_record *r, const char *supersedes, const char *actor)
{
    db_detail d;
    uint8_t leaf[CT_MERKLE_HASH_LEN];
    CT_GUARD_RET(db_cert_detail(r, supersedes, &d, leaf));
    return cert_insert_tx(db, r, supersedes, actor, &d, leaf);
}

static ct_err cert_issue_tx(ct_db *db, void *vctx)
{
    struct cert_ctx *c = vctx;
    return cert_insert_tx(db, c->rec, c->supersedes, c->actor, &c->detail, c->leaf);
}

static const char k_operator_unrecorded[] =
    "SELECT name, '" DB_PROFILE_STATION "', cert_serial_hex, cert_der FROM stations s WHERE NOT EXISTS"
    " (SELECT 1 FROM certificates c WHERE c.cert_serial_hex = s.cert_serial_hex) UNION ALL"
    " SELECT name, '" DB_PROFILE_OFFICER "', cert_serial_hex, cert_der FROM officers o WHERE NOT EXISTS"
    " (SELECT 1 FROM certificates c WHERE c.cert_serial_hex = o.cert_serial_hex)";

struct backfill_ctx {
    db_cert_fill_fn fill;
    const char *actor;
    int64_t count;
};

static ct_err backfill_tx(ct_db *db, void *vctx)
{
    struct backfill_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_operator_unrecorded, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        db_cert_record r = {0};
        CT_GUARD_RET(db_col_text(st, 0, r.device_serial, sizeof r.device_serial));
        CT_GUARD_RET(db_col_text(st, 1, r.profile, sizeof r.profile));
        CT_GUARD_RET(db_col_text(st, 2, r.cert_serial_hex, sizeof r.cert_serial_hex));
        r.der = db_col_blob(st, 3, &r.der_len);
        CT_GUARD_RET(c->fill(r.der, r.der_len, &r));
        CT_GUARD_RET(db_cert_record_check(&r, NULL, c->actor));
        CT_GUARD_RET(db_exec(db, k_cert_insert, NULL, "ttttiizzbbiz", r.cert_serial_hex, r.device_serial, r.profile,
                             r.subject, r.not_before, r.not_after, (int64_t)0, (int64_t)0, r.spki_sha256,
                             sizeof r.spki_sha256, r.der, r.der_len, db_now(), (int64_t)0));
        CT_GUARD_RET(db_cert_key_claim_tx(db, &r, false)); /* recorded as found: claimed if unclaimed */
        db_detail d;
        CT_GUARD_RET(db_cert_detail(&r, NULL, &d, NULL));
        CT_GUARD_RET(db_detail_str(&d, "recorded", "later"));
        CT_GUARD_RET(db_audit_append_tx(db, c->actor, "cert.record", r.device_serial, "ok", d.s));
        c->count++;
    }
}

ct_err db_operator_certs_backfill(ct_db *db, db_cert_fill_fn fill, const char *actor, int64_t *count)
{
    CT_ENSURE_RET(db && fill, ct_fail(CT_ERR_ARG, "db_operator_certs_backfill: missing argument"));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct backfill_ctx c = {.fill = fill, .actor = actor};
    CT_GUARD_RET(db_call(db, true, backfill_tx, &c));
    if (count) *count = c.count;
    return CT_OK;
}

/* Group commit. Every issuance is on disk before its answer, and one fsync costs about a millisecond, so
 * concurrent issuances share one transaction and one fsync: a leader takes everything queued, writes each
 * item inside its own SAVEPOINT (a refused item leaves nothing and spoils no other), commits once and hands
 * every waiting thread its own result once the commit is durable. While it writes, new items queue up for the
 * next leader, who may begin writing while this commit is still being synced (db_pipeline_commits). */
struct db_pending {
    struct cert_ctx *ctx;
    ct_err_saved err; /* its answer */
    bool done;
    bool wants_company; /* waiting for a second item to join it (the failpoint's gather), under gc_mu */
    struct db_pending *next;
    /* Its thread's own wake-up: only the threads a change concerns are woken (the next leader, a batch's own
     * members), not every waiting thread twice a batch. */
    pthread_cond_t cv;
};

/* Prepared once and kept (db_exec): the leader runs them for every item while the others wait. */
static const char k_savepoint[] = "SAVEPOINT issuance";
static const char k_savepoint_rollback[] = "ROLLBACK TO SAVEPOINT issuance";
static const char k_savepoint_release[] = "RELEASE SAVEPOINT issuance";

static ct_err batch_tx(ct_db *db, void *vctx)
{
    for (struct db_pending *p = vctx; p; p = p->next) {
        CT_GUARD_RET(db_exec(db, k_savepoint, NULL, ""));
        ct_err_clear();
        ct_err_save(&p->err, cert_issue_tx(db, p->ctx));
        db_exists_logged(p->err.rc);
        if (p->err.rc != CT_OK) CT_GUARD_RET(db_exec(db, k_savepoint_rollback, NULL, ""));
        CT_GUARD_RET(db_exec(db, k_savepoint_release, NULL, ""));
    }
    ct_failpoint_hold("db:issuance-written"); /* tests: the node stalls here, holding the writers' lock */
    return CT_OK;
}

static void lead_batch(ct_db *db)
{
    struct db_pending *batch = db->gc_head;
    db->gc_head = NULL;
    db->gc_tail = &db->gc_head;
    db->gc_leading = true;
    db->gc_busy += db->gc_queued;
    db->gc_queued = 0;
    (void)pthread_mutex_unlock(&db->gc_mu);
    ct_err_clear();
    ct_err rc = db_call_write_unsynced(db, batch_tx, batch);
    /* The next leader writes its batch while this one's commit reaches the disk (db_pipeline_commits). */
    (void)pthread_mutex_lock(&db->gc_mu);
    db->gc_leading = false;
    if (db->gc_head) (void)pthread_cond_signal(&db->gc_head->cv); /* the first queued leads (or whoever comes first) */
    (void)pthread_mutex_unlock(&db->gc_mu);
    if (rc == CT_OK) {
        /* A crash here (a batch of two or more: others wait on this leader): nobody has an answer yet. */
        if (batch->next) ct_failpoint("db:issuance-unsynced");
        rc = ct_failpoint_hit("db:issuance-sync-fails") ? ct_fail(CT_ERR_DB, "syncing the commit failed (failpoint)")
                                                        : db_sync(db);
    }
    ct_err_saved failed;
    ct_err_save(&failed, rc);
    (void)pthread_mutex_lock(&db->gc_mu);
    for (struct db_pending *p = batch, *next; p; p = next) {
        next = p->next; /* p belongs to a waiting thread that may return as soon as it is done */
        /* the transaction failed (nothing recorded) or its sync did: nobody is told "issued" */
        if (rc != CT_OK) p->err = failed;
        p->done = true;
        db->gc_busy--;
        (void)pthread_cond_signal(&p->cv); /* under gc_mu: its thread cannot return (and drop p) before we unlock */
    }
}

/* How long a would-be leader waits for announced issuances not queued yet: a commit's writes and sync cost about
 * as much CPU for one certificate as for several (the same index pages written again, the same sync), and the
 * CPU is what limits a loaded CA. Bounded, and only while something is on its way: a lone request never waits. */
#define GC_GATHER_US 2000

/* Announced issuances not queued yet (checking their CSR, signing), under gc_mu. */
static int gc_on_the_way(ct_db *db) { return atomic_load(&db->gc_coming) - db->gc_queued - db->gc_busy; }

/* Whether this thread's announced issuance has been queued (group_commit): one that ends without (refused, a
 * repeat) wakes the would-be leader that waits for it. One answered does not: its client's next request usually
 * comes in its place, and the leader's wait for it makes the batch larger (fewer syncs per certificate). */
static _Thread_local bool gc_queued_since_announced;

void db_issuances_coming(ct_db *db, int delta)
{
    if (!db) return;
    atomic_fetch_add(&db->gc_coming, delta);
    bool queued = gc_queued_since_announced;
    gc_queued_since_announced = false;
    if (delta >= 0 || queued) return;
    /* Taking gc_mu orders this after the would-be leader's check of gc_on_the_way. */
    if (pthread_mutex_lock(&db->gc_mu) != 0) return; /* it leads when its bounded wait ends */
    if (db->gc_head && !db->gc_leading && gc_on_the_way(db) <= 0) (void)pthread_cond_signal(&db->gc_head->cv);
    (void)pthread_mutex_unlock(&db->gc_mu);
}

static ct_err group_commit(ct_db *db, struct cert_ctx *c)
{
    struct db_pending me = {.ctx = c};
    CT_ENSURE_RET(ct_cond_init(&me.cv) == 0, ct_fail(CT_ERR_INTERNAL, "db group commit wait init failed"));
    /* The crash failpoint needs a batch of two: a lone request waits a bounded while for a second to join it,
     * however slowly requests arrive (a loaded test machine, a fast PostgreSQL commit). */
    bool gather = ct_failpoint_hit("db:issuance-unsynced");
    struct timespec gather_until;
    ct_timespec_in(2000, &gather_until);
    if (pthread_mutex_lock(&db->gc_mu) != 0) {
        (void)pthread_cond_destroy(&me.cv);
        return ct_fail(CT_ERR_INTERNAL, "db group commit lock failed");
    }
    *db->gc_tail = &me;
    db->gc_tail = &me.next;
    db->gc_queued++;
    gc_queued_since_announced = true;
    /* A would-be leader waiting for issuances on their way is woken only when it would lead: the last of them
     * has come (it waits on while any is missing), or any company at all (the failpoint's gather). */
    if (db->gc_head != &me && !db->gc_leading && (gc_on_the_way(db) <= 0 || db->gc_head->wants_company))
        (void)pthread_cond_signal(&db->gc_head->cv);
    struct timespec delay_until;
    ct_timespec_in_us(GC_GATHER_US, &delay_until);
    bool delay = true;
    while (!me.done) {
        bool waits_for_company = gather && db->gc_head && !db->gc_head->next;
        bool leads = !db->gc_leading && db->gc_head && !waits_for_company;
        /* Lead when nobody writes and something waits (perhaps not me: my item may be syncing already), after
         * a bounded wait for the issuances on their way. */
        me.wants_company = waits_for_company;
        if (leads && delay && gc_on_the_way(db) > 0)
            delay = pthread_cond_timedwait(&me.cv, &db->gc_mu, &delay_until) != ETIMEDOUT;
        else if (leads) lead_batch(db);
        else if (waits_for_company)
            gather = pthread_cond_timedwait(&me.cv, &db->gc_mu, &gather_until) != ETIMEDOUT;
        else (void)pthread_cond_wait(&me.cv, &db->gc_mu);
    }
    (void)pthread_mutex_unlock(&db->gc_mu);
    (void)pthread_cond_destroy(&me.cv);
    return ct_err_restore(&me.err);
}

ct_err db_cert_record_check(const db_cert_record *rec, const char *supersedes_hex, const char *actor)
{
    CT_ENSURE_RET(rec && rec->der && rec->der_len > 0, ct_fail(CT_ERR_ARG, "certificate record incomplete"));
    CT_GUARD_RET(db_check_str("certificate serial", rec->cert_serial_hex, sizeof rec->cert_serial_hex));
    CT_GUARD_RET(db_check_str("device serial", rec->device_serial, sizeof rec->device_serial));
    CT_GUARD_RET(db_check_str("profile", rec->profile, sizeof rec->profile));
    CT_GUARD_RET(db_check_str("subject", rec->subject, sizeof rec->subject));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    if (supersedes_hex) CT_GUARD_RET(db_check_str("superseded serial", supersedes_hex, DB_CERT_SERIAL_HEX_MAX));
    if (rec->authenticated_by)
        CT_GUARD_RET(db_check_str("authenticating certificate serial", rec->authenticated_by, DB_CERT_SERIAL_HEX_MAX));
    CT_ENSURE_RET(rec->not_after > rec->not_before, ct_fail(CT_ERR_ARG, "certificate validity is empty"));
    CT_ENSURE_RET(rec->station_id >= 0 && rec->order_id >= 0, ct_fail(CT_ERR_ARG, "negative station or order id"));
    return CT_OK;
}

ct_err db_cert_record_issuance(ct_db *db, const db_cert_record *rec, const char *supersedes_hex, const char *actor)
{
    CT_ENSURE_RET(db, ct_fail(CT_ERR_ARG, "db_cert_record_issuance: no database"));
    CT_GUARD_RET(db_cert_record_check(rec, supersedes_hex, actor));
    struct cert_ctx c = {.rec = rec, .supersedes = supersedes_hex, .actor = actor};
    /* The detail (and the DER's hashes) here, in the caller's thread: the leader only writes. */
    CT_GUARD_RET(db_cert_detail(rec, supersedes_hex, &c.detail, c.leaf));
    return group_commit(db, &c);
}

