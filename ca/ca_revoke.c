/* Revocation commands and CRLs: plain C on the database and the token; ca_ocsp.c serves the results. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define HOUR_SECONDS 3600

static const char *const revoke_action[] = {[DB_REVOKE_CERT] = "cert.revoke", [DB_REVOKE_ORDER] = "order.revoke",
                                            [DB_REVOKE_STATION] = "station.revoke"};

/* A certificate serial as people paste it ("3A:0F..", "3a0f..", openssl's "serial=3A0F..") into the recorded
 * form: lower-case hex without the INTEGER's sign byte. */
ct_err ca_serial_normalize(const char *in, char out[DB_CERT_SERIAL_HEX_MAX])
{
    size_t n = 0;
    if (strncmp(in, "serial=", 7) == 0) in += 7;
    for (const char *p = in; *p; p++) {
        char ch = *p;
        if (ch == ':') continue;
        if (ch >= 'A' && ch <= 'F') ch = (char)(ch - 'A' + 'a');
        CT_ENSURE_RET(((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) && n + 1 < DB_CERT_SERIAL_HEX_MAX,
                      ct_fail(CT_ERR_USAGE, "'%.60s' is not a certificate serial (hex, up to %d digits)", in,
                              DB_CERT_SERIAL_HEX_MAX - 1));
        out[n++] = ch;
    }
    out[n] = '\0';
    CT_ENSURE_RET(n > 0 && n % 2 == 0, ct_fail(CT_ERR_USAGE, "'%.60s' is not a certificate serial (whole bytes of hex)", in));
    size_t skip = 0;
    while (n - skip > 2 && out[skip] == '0' && out[skip + 1] == '0') skip += 2;
    memmove(out, out + skip, n - skip + 1);
    return CT_OK;
}

static ct_err revoke_request(const ca_revoke_request *req, char serial[DB_CERT_SERIAL_HEX_MAX], db_revocation *r)
{
    CT_ENSURE_RET(req->target && *req->target, ct_fail(CT_ERR_USAGE, "nothing to revoke was named"));
    CT_GUARD_RET(pki_reason_parse(req->reason, &r->reason));
    r->reason_name = req->reason;
    switch (req->scope) {
    case DB_REVOKE_CERT:
        CT_GUARD_RET(ca_serial_normalize(req->target, serial));
        r->cert_serial_hex = serial;
        return CT_OK;
    case DB_REVOKE_ORDER:
        return ca_int_parse(req->target, "order id", 1, INT64_MAX, &r->order_id);
    case DB_REVOKE_STATION:
        r->station = req->target;
        return CT_OK;
    }
    return ct_fail(CT_ERR_ARG, "unknown revocation scope");
}

/* A station's or officer's certificate as recorded (db_operator_certs_backfill): from the certificate itself. */
static ct_err operator_cert_fill(const uint8_t *der, size_t len, db_cert_record *rec)
{
    pki_cert_info info;
    CT_GUARD_RET(pki_cert_parse_info(der, len, &info));
    rec->not_before = info.not_before;
    rec->not_after = info.not_after;
    memcpy(rec->spki_sha256, info.spki_sha256, sizeof rec->spki_sha256);
    return ct_snprintf(rec->subject, sizeof rec->subject, "CN=%s", info.subject_cn);
}

ct_err ca_revoke(ca *c, const ca_revoke_request *req, db_revoke_count *count)
{
    char serial[DB_CERT_SERIAL_HEX_MAX] = "";
    CT_ENSURE_RET(c && req && (unsigned)req->scope <= DB_REVOKE_STATION, CT_ERR_ARG);
    const char *actor = req->actor && *req->actor ? req->actor : "unknown";
    db_revocation r = {.scope = req->scope, .actor = actor, .not_ca_own = req->not_ca_own};
    ct_err_clear();
    ct_err rc = revoke_request(req, serial, &r);
    /* A folder older than station and officer records: record theirs first, so that they can be revoked. */
    if (rc == CT_OK && req->scope == DB_REVOKE_CERT) rc = db_operator_certs_backfill(c->db, operator_cert_fill, actor, NULL);
    if (rc == CT_OK) rc = db_revoke(c->db, &r, count);
    if (rc != CT_OK) {
        if (ct_err_http_status(rc) >= 500) return rc;
        char subject[96];
        if (ct_snprintf(subject, sizeof subject, "%.80s", req->target ? req->target : "") != CT_OK) subject[0] = '\0';
        return ca_audit_refusal(c, revoke_action[req->scope], actor, subject, rc);
    }
    ca_revocation_changed(c);
    return CT_OK;
}

ct_err ca_revoke_compromised_keys(ca *c)
{
    int64_t revoked = 0;
    CT_GUARD_RET(db_revoke_same_key_sweep(c->db, "ca", &revoked));
    if (revoked)
        ct_log(CT_LOG_WARN, "same_key_revoked", "certificates=%lld msg=\"other certificates of keys revoked for "
               "keyCompromise before this version, revoked now (audit: revoke.same_key)\"", (long long)revoked);
    return CT_OK;
}

/* Each CRL is signed by the CA that issued what it lists: devices by a device issuing CA generation; viewers,
 * stations and officers by an operations issuing CA generation. Each generation has its own CRL (of what it
 * signed); one cRLNumber sequence per kind serves them all (each CRL's numbers still only grow). */
ct_err ca_crl_revoked(ca *c, const ca_generation *g, db_revoked **list, pki_revoked **entries, size_t *n)
{
    ct_err rc = CT_OK;
    *list = NULL, *entries = NULL, *n = 0;
    db_crl_issuer issuer = g->kind == CA_CRL_OPS ? DB_CRL_OPS : DB_CRL_DEVICE;
    CT_GUARD(db_cert_list_revoked(c->db, issuer, g->id, g->generation == 1, list, n));
    *entries = calloc(*n ? *n : 1, sizeof **entries);
    CT_ENSURE(*entries, CT_ERR_NOMEM);
    for (size_t i = 0; i < *n; i++)
        (*entries)[i] = (pki_revoked){(*list)[i].cert_serial_hex, (time_t)(*list)[i].revoked_at, (*list)[i].reason};
cleanup:
    if (rc != CT_OK) {
        free(*list), *list = NULL;
        *n = 0;
    }
    return rc;
}

ct_err ca_crl_make_gen(ca *c, const ca_generation *g, const char *actor, ct_buf *der, time_t *next_update,
                       int64_t *number_out)
{
    ct_err rc = CT_OK;
    db_revoked *list = NULL;
    pki_revoked *entries = NULL;
    size_t n = 0;
    int64_t number = 0;
    db_crl_issuer issuer = g->kind == CA_CRL_OPS ? DB_CRL_OPS : DB_CRL_DEVICE;
    CT_GUARD(ca_crl_revoked(c, g, &list, &entries, &n));
    CT_GUARD(db_crl_number_next(c->db, issuer, actor, n, &number));
    time_t now = time(NULL);
    pki_crl_params p = {.issuer_cert = g->s.cert_der.data, .issuer_len = g->s.cert_der.len, .issuer_key = g->s.key,
                        .number = (uint64_t)number, .this_update = now,
                        .next_update = now + (time_t)c->cfg.crl_hours * HOUR_SECONDS};
    CT_GUARD(pki_crl_make(&p, entries, n, der));
    if (next_update) *next_update = p.next_update;
    if (number_out) *number_out = number;
cleanup:
    free(list);
    free(entries);
    return rc;
}

ct_err ca_crl_write(ca *c, ca_crl_kind kind, int64_t generation, const char *path)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    CT_ENSURE_RET((unsigned)kind <= CA_CRL_OPS && generation >= 0, ct_fail(CT_ERR_ARG, "ca_crl_write: bad argument"));
    int gen = ca_generation_find(c, kind, generation);
    CT_ENSURE_RET(gen >= 0, ct_fail(CT_ERR_NOT_FOUND, "no %s issuing CA generation %lld is installed (current: %lld)",
                                    kind == CA_CRL_OPS ? "operations" : "device", (long long)generation,
                                    c->current[kind] >= 0 ? (long long)c->gens[c->current[kind]].generation : 0LL));
    /* As serve does before its first CRL: one written here after an upgrade must list the swept certificates too. */
    CT_GUARD(ca_revoke_compromised_keys(c));
    CT_GUARD(ca_crl_make_gen(c, &c->gens[gen], "cli", &der, NULL, NULL));
    CT_GUARD(ct_file_write_atomic(path, der.data, der.len, 0644));
cleanup:
    ct_buf_free(&der);
    return rc;
}
