/* db copy: an existing CA's records copied whole into a new database (`camtrust-ca db migrate-to`): every table in
 * an order its references allow, each in its key's order, ids kept, in one transaction of the target. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "db_backend_priv.h"

/* Each table's columns (types: 'i' integer, 't' text, 'b' blob; any may be NULL), read and written in that order. */
typedef struct {
    const char *name, *select, *insert, *types;
} copy_table;

#define COPY(table, cols, key, params, types)                                                                    \
    {table, "SELECT " cols " FROM " table " ORDER BY " key, "INSERT INTO " table " (" cols ") VALUES (" params ")", \
     types}
/* The audit row's columns: its five text fields from actor on, and migration 18's raw. */
#define AUDIT_TEXT 2
#define AUDIT_RAW 9
static const copy_table k_tables[] = {
    COPY("audit", "seq, ts, actor, action, subject, outcome, detail, prev_hash, hash, raw", "seq",
         "?, ?, ?, ?, ?, ?, ?, ?, ?, ?", "iitttttbbb"),
    COPY("stations", "id, name, enabled, cert_sha256, cert_serial_hex, cert_der, created_at", "id",
         "?, ?, ?, ?, ?, ?, ?", "itibtbi"),
    COPY("orders", "id, station_id, model, open, created_at, closed_at", "id", "?, ?, ?, ?, ?, ?", "iitiii"),
    COPY("order_serials", "order_id, serial, revoked_seen", "order_id, serial", "?, ?, ?", "iti"),
    COPY("issuing_cas", "id, kind, generation, key_uri, cert_der, cert_sha256, installed_at", "id",
         "?, ?, ?, ?, ?, ?, ?", "ititbbi"),
    COPY("certificates",
         "rowid, cert_serial_hex, device_serial, profile, subject, not_before, not_after, station_id, order_id,"
         " spki_sha256, der, status, issued_at, revoked_at, revocation_reason, issuing_ca",
         "rowid", "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?", "ittttiiiibbtiiii"),
    COPY("officers", "id, name, role, enabled, cert_sha256, cert_serial_hex, cert_der, created_at", "id",
         "?, ?, ?, ?, ?, ?, ?, ?", "ittibtbi"),
    COPY("log_leaves", "leaf_index, cert_serial_hex, leaf_hash", "leaf_index", "?, ?, ?", "itb"),
    COPY("log_tree_heads", "id, tree_size, timestamp_ms, root_hash, signature", "id", "?, ?, ?, ?, ?", "iiibb"),
    COPY("log_checkpoints", "id, tree_size, audit_entries, note", "id", "?, ?, ?, ?", "iiit"),
    COPY("log_cosignatures", "id, checkpoint_id, witness, witness_time, line, received", "id", "?, ?, ?, ?, ?, ?",
         "iititi"),
    COPY("log_witness_reports", "id, received, witness, kind, kept_size, served_size, reason, report", "id",
         "?, ?, ?, ?, ?, ?, ?, ?", "iittiitt"),
    COPY("ca_identity", "id, ca_id, named_at", "id", "?, ?, ?", "iti"),
    /* Migration 14: who signs (a holder whose process is gone is replaced at once) and the CRLs it signed. */
    COPY("leases", "name, holder, expires_ms, taken_ms", "name", "?, ?, ?, ?", "ttii"),
    COPY("crls_signed", "issuing_ca, epoch, next_update, der", "issuing_ca", "?, ?, ?, ?", "iiib"),
    /* Migration 15: each certified key's holder. */
    COPY("certified_keys", "spki_sha256, device_serial, profile, cert_serial_hex", "spki_sha256", "?, ?, ?, ?",
         "bttt"),
    /* The one row migration 3 made in the target too. */
    {"revocation_state", "SELECT epoch, crl_number, ops_crl_number FROM revocation_state WHERE id = 1",
     "UPDATE revocation_state SET epoch = ?, crl_number = ?, ops_crl_number = ? WHERE id = 1", "iii"},
};
_Static_assert(DB_MAX_PARAMS >= 16, "the widest table");

/* Identity columns continue after the copied ids (PostgreSQL; SQLite's rowids do by themselves). */
static const char k_pg_sequences[] =
    "SELECT setval(pg_get_serial_sequence(t, c), n + 1, false) FROM (VALUES"
    " ('stations', 'id', (SELECT COALESCE(max(id), 0) FROM stations)),"
    " ('orders', 'id', (SELECT COALESCE(max(id), 0) FROM orders)),"
    " ('issuing_cas', 'id', (SELECT COALESCE(max(id), 0) FROM issuing_cas)),"
    " ('certificates', 'rowid', (SELECT COALESCE(max(rowid), 0) FROM certificates)),"
    " ('officers', 'id', (SELECT COALESCE(max(id), 0) FROM officers)),"
    " ('log_tree_heads', 'id', (SELECT COALESCE(max(id), 0) FROM log_tree_heads)),"
    " ('log_checkpoints', 'id', (SELECT COALESCE(max(id), 0) FROM log_checkpoints)),"
    " ('log_cosignatures', 'id', (SELECT COALESCE(max(id), 0) FROM log_cosignatures)),"
    " ('log_witness_reports', 'id', (SELECT COALESCE(max(id), 0) FROM log_witness_reports))) s (t, c, n)";

/* Every table of the source (but the schema version's own) must have its line above: a table a later migration adds
 * and this file does not copy would be lost silently. */
static const char k_src_tables_sqlite[] =
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
static const char k_src_tables_pg[] = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                                      " AND tablename <> 'camtrust_schema' ORDER BY tablename";

static ct_err every_table_copied(ct_db *src)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(src, db_sql(src, k_src_tables_sqlite, k_src_tables_pg), &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(src, st, &row));
        if (!row) return CT_OK;
        const char *name = db_col_str(st, 0);
        bool known = false;
        for (size_t i = 0; name && i < sizeof k_tables / sizeof k_tables[0]; i++)
            known |= strcmp(name, k_tables[i].name) == 0;
        CT_ENSURE_RET(known, ct_fail(CT_ERR_INTERNAL, "copy: table %s has no line in db/copy.c", name ? name : "?"));
    }
}

struct copy_ctx {
    ct_db *src, *dst;
    int64_t rows;
    db_audit_copy *scratch;
};

/* An audit row's text that is not UTF-8 (written before it was kept as '?'): as '?', the bytes as written in raw. */
static ct_err audit_text_fix(db_value *v, db_audit_copy *scratch)
{
    const char *text[5];
    if (!v[AUDIT_RAW].null) return CT_OK; /* copied before: its columns are UTF-8 */
    for (int i = 0; i < 5; i++) text[i] = v[AUDIT_TEXT + i].p;
    CT_GUARD_RET(db_audit_copy_text(text, scratch));
    if (scratch->raw.len == 0) return CT_OK;
    for (int i = 0; i < 5; i++) v[AUDIT_TEXT + i].p = scratch->shown[i];
    v[AUDIT_RAW] = (db_value){.type = 'b', .p = scratch->raw.data, .n = scratch->raw.len};
    return CT_OK;
}

static ct_err copy_table_rows(ct_db *src, ct_db *dst, const copy_table *t, db_audit_copy *scratch, int64_t *rows)
{
    db_stmt *st = NULL, *ins = NULL;
    bool row = false, done = false;
    db_value v[DB_MAX_PARAMS];
    int n = (int)strlen(t->types);
    CT_GUARD_RET(db_prepare(src, t->select, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(src, st, &row));
        if (!row) return CT_OK;
        for (int i = 0; i < n; i++) {
            v[i] = (db_value){.type = t->types[i], .null = db_col_is_null(st, i)};
            if (v[i].null) continue;
            if (v[i].type == 'i') v[i].i = db_col_int(st, i);
            else if (v[i].type == 't') v[i].p = db_col_str(st, i);
            else v[i].p = db_col_blob(st, i, &v[i].n);
        }
        if (strcmp(t->name, "audit") == 0) CT_GUARD_RET(audit_text_fix(v, scratch));
        CT_GUARD_RET(db_prepare_values(dst, t->insert, &ins, v, n));
        CT_GUARD_RET(db_step(dst, ins, &done));
        CT_ENSURE_RET(dst->be->changes(dst, ins) == 1, ct_fail(CT_ERR_DB, "copy: %.60s changed no row", t->insert));
        (*rows)++;
    }
}

static ct_err copy_tx(ct_db *dst, void *vctx)
{
    struct copy_ctx *c = vctx;
    /* The schema first, in the same transaction (PostgreSQL's DDL is transactional): killed anywhere, the target
     * holds nothing and a run again finds it empty. */
    for (int v = 1; v <= db_n_migrations; v++) CT_GUARD_RET(db_migrate_tx(dst, v));
    for (size_t i = 0; i < sizeof k_tables / sizeof k_tables[0]; i++)
        CT_GUARD_RET(copy_table_rows(c->src, dst, &k_tables[i], c->scratch, &c->rows));
    if (dst->be != &db_backend_sqlite) {
        db_stmt *st = NULL;
        bool row = false;
        CT_GUARD_RET(db_prepare(dst, k_pg_sequences, &st, ""));
        CT_GUARD_RET(db_step(dst, st, &row));
    }
    return CT_OK;
}

/* The source read as one snapshot, the target written in one transaction under its writers' lock. */
static ct_err copy_snapshot(ct_db *src, void *vctx)
{
    struct copy_ctx *c = vctx;
    CT_GUARD_RET(every_table_copied(src));
    return db_call(c->dst, true, copy_tx, c);
}

ct_err db_copy(ct_db *src, ct_db *dst, int64_t *rows)
{
    CT_ENSURE_RET(src && dst && dst->copy_target, ct_fail(CT_ERR_ARG, "db_copy: the target is not a copy target"));
    CT_ENSURE_RET(src->schema_version == db_n_migrations && dst->schema_version == 0,
                  ct_fail(CT_ERR_DB, "copy: schema %d into schema %d (this build's: %d)", src->schema_version,
                          dst->schema_version, db_n_migrations));
    ct_err rc = CT_OK;
    struct copy_ctx c = {.src = src, .dst = dst, .scratch = calloc(1, sizeof *c.scratch)};
    CT_ENSURE(c.scratch, CT_ERR_NOMEM);
    CT_GUARD(db_call_snapshot(src, copy_snapshot, &c));
    dst->schema_version = db_n_migrations;
    if (rows) *rows = c.rows;
cleanup:
    if (c.scratch) ct_buf_free(&c.scratch->raw);
    free(c.scratch);
    return rc;
}
