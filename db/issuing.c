/* db issuing: the generations of the device and operations issuing CAs (migration 12). Each is the certificate
 * the offline roots made for a key in the CA's token; the newest of a kind signs, the older ones keep answering
 * (CRL, OCSP) for what they signed. */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const k_kind_name[] = {[DB_CRL_DEVICE] = "device", [DB_CRL_OPS] = "ops"};
static const char k_issuing_insert[] = "INSERT INTO issuing_cas (kind, generation, key_uri, cert_der, cert_sha256,"
                                       " installed_at) VALUES (?, ?, ?, ?, ?, ?)";
static const char k_issuing_id[] = "SELECT id FROM issuing_cas WHERE cert_sha256 = ?";
static const char k_issuing_list[] = "SELECT id, kind, generation, key_uri, cert_der, installed_at FROM issuing_cas"
                                     " ORDER BY kind = 'ops', generation";

struct add_ctx {
    db_crl_issuer kind;
    int64_t generation;
    const char *key_uri, *actor, *detail;
    const uint8_t *der;
    size_t len;
    int64_t id;
};

static ct_err add_tx(ct_db *db, void *vctx)
{
    struct add_ctx *c = vctx;
    uint8_t hash[32];
    char subject[64];
    CT_GUARD_RET(ct_sha256(c->der, c->len, hash));
    ct_err rc = db_exec(db, k_issuing_insert, NULL, "titbbi", k_kind_name[c->kind], c->generation, c->key_uri, c->der,
                        c->len, hash, sizeof hash, db_now());
    CT_ENSURE_RET(rc != CT_ERR_EXISTS, ct_fail(CT_ERR_EXISTS, "the %s issuing CA's generation %lld, or this certificate,"
                                               " is installed already", k_kind_name[c->kind], (long long)c->generation));
    CT_GUARD_RET(rc);
    CT_GUARD_RET(db_query_int(db, k_issuing_id, &c->id, "b", hash, sizeof hash));
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "%s issuing CA %lld", k_kind_name[c->kind],
                             (long long)c->generation));
    return db_audit_append_tx(db, c->actor, "ca.issuing", subject, "ok", c->detail);
}

ct_err db_issuing_ca_add(ct_db *db, db_crl_issuer kind, int64_t generation, const char *key_uri, const uint8_t *der,
                         size_t len, const char *actor, const char *detail, int64_t *id)
{
    CT_ENSURE_RET(db && der && len && id && (unsigned)kind <= DB_CRL_OPS && generation >= 1,
                  ct_fail(CT_ERR_ARG, "db_issuing_ca_add: missing argument"));
    CT_GUARD_RET(db_check_str("key URI", key_uri, sizeof ((db_issuing_ca *)0)->key_uri));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct add_ctx c = {kind, generation, key_uri, actor, detail ? detail : "", der, len, 0};
    CT_GUARD_RET(db_call(db, true, add_tx, &c));
    *id = c.id;
    return CT_OK;
}

struct list_ctx {
    db_issuing_ca *items;
    size_t n, cap;
};

static ct_err list_fn(ct_db *db, void *vctx)
{
    struct list_ctx *l = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_issuing_list, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 8;
            db_issuing_ca *grown = realloc(l->items, cap * sizeof *grown);
            CT_ENSURE_RET(grown, CT_ERR_NOMEM);
            l->items = grown;
            l->cap = cap;
        }
        db_issuing_ca *g = &l->items[l->n];
        memset(g, 0, sizeof *g);
        l->n++;
        g->id = db_col_int(st, 0);
        g->kind = strcmp(db_col_str(st, 1), "ops") == 0 ? DB_CRL_OPS : DB_CRL_DEVICE;
        g->generation = db_col_int(st, 2);
        CT_GUARD_RET(db_col_text(st, 3, g->key_uri, sizeof g->key_uri));
        size_t len = 0;
        const void *der = db_col_blob(st, 4, &len);
        CT_ENSURE_RET(der && len, ct_fail(CT_ERR_DB, "issuing CA %lld has no certificate", (long long)g->id));
        CT_GUARD_RET(ct_buf_alloc(&g->cert_der, len));
        CT_GUARD_RET(ct_buf_set(&g->cert_der, der, len));
        g->installed_at = db_col_int(st, 5);
    }
}

ct_err db_issuing_ca_list(ct_db *db, db_issuing_ca **out, size_t *n)
{
    CT_ENSURE_RET(db && out && n, ct_fail(CT_ERR_ARG, "db_issuing_ca_list: missing argument"));
    struct list_ctx l = {0};
    ct_err rc = db_call(db, false, list_fn, &l);
    if (rc != CT_OK) {
        db_issuing_ca_list_free(l.items, l.n);
        return rc;
    }
    *out = l.items;
    *n = l.n;
    return CT_OK;
}

void db_issuing_ca_list_free(db_issuing_ca *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) ct_buf_free(&list[i].cert_der);
    free(list);
}
