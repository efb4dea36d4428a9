/* db internals shared by db.c and audit.c: the handle, the statement cache and the SQL helpers. */
#ifndef CAMTRUST_DB_PRIV_H
#define CAMTRUST_DB_PRIV_H

#include <pthread.h>
#include <sqlite3.h>

#include "db.h"

/* Every statement is prepared once and kept: the issuance path runs the same handful on every request. */
#define DB_STMT_CACHE_MAX 160
/* Bounds for audit fields (actor, action, subject, outcome) and the free-text detail. */
#define DB_AUDIT_FIELD_MAX 256
#define DB_AUDIT_DETAIL_MAX 1024
/* The entry that seals a chain begun unkeyed: it and every later entry are MACed. */
#define DB_AUDIT_KEYED_ACTION "audit.keyed"

struct ct_db {
    sqlite3 *h;
    pthread_mutex_t mu; /* one connection, many CA threads: every public call holds it */
    int schema_version;
    struct {
        const char *sql; /* keyed by the address of a static SQL string */
        sqlite3_stmt *st;
    } cache[DB_STMT_CACHE_MAX];
    size_t n_cached;
    /* Group commit of issuances (db_cert_record_issuance): a queue that one leader thread writes at a time. */
    pthread_mutex_t gc_mu;
    pthread_cond_t gc_cv;
    struct db_pending *gc_head, **gc_tail;
    bool gc_leading;
    /* The audit chain's key (db_open_keyed); fn NULL: SHA-256 only. */
    db_audit_mac mac;
};

/* The profiles of the operations issuing CA's certificates (db.h DB_PROFILE_*), for SQL "profile [NOT] IN". */
#define DB_CLIENT_PROFILES "('viewer', 'station', 'officer')"
/* Of those, the CA's own operators: recorded so that they can be revoked, but neither in the issuance log (it
 * lists what cameras and viewers hold) nor in officers' searches and reports (their own tables name them). */
#define DB_OPERATOR_PROFILES "('" DB_PROFILE_STATION "', '" DB_PROFILE_OFFICER "')"

/* Migration 12 (its SQL beside the code that uses it, in issuing.c's words). */
#define DB_MIGRATION_ISSUING_CAS                                                                                  \
    "CREATE TABLE issuing_cas ("                                                                                  \
    "  id INTEGER PRIMARY KEY,"                                                                                   \
    "  kind TEXT NOT NULL CHECK (kind IN ('device', 'ops')),"                                                     \
    "  generation INTEGER NOT NULL CHECK (generation >= 1),"                                                      \
    "  key_uri TEXT NOT NULL,"                                                                                    \
    "  cert_der BLOB NOT NULL,"                                                                                   \
    "  cert_sha256 BLOB NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),"                                        \
    "  installed_at INTEGER NOT NULL,"                                                                            \
    "  UNIQUE (kind, generation));"                                                                               \
    "CREATE TRIGGER issuing_cas_no_update BEFORE UPDATE ON issuing_cas"                                           \
    "  BEGIN SELECT RAISE(ABORT, 'issuing CA generations are append-only'); END;"                                 \
    "CREATE TRIGGER issuing_cas_no_delete BEFORE DELETE ON issuing_cas"                                           \
    "  BEGIN SELECT RAISE(ABORT, 'issuing CA generations are append-only'); END;"                                 \
    "ALTER TABLE certificates ADD COLUMN issuing_ca INTEGER;" /* an issuing_cas id (no REFERENCES: droppable) */

/* Checks an issued certificate's record (and the actor) before it is written. */
CT_MUST_CHECK ct_err db_cert_record_check(const db_cert_record *rec, const char *supersedes_hex, const char *actor);
/* Records an issued certificate (superseding `supersedes_hex` when non-NULL), its issuance log leaf and its audit
 * event; the caller holds the mutex and an open transaction. */
CT_MUST_CHECK ct_err db_cert_insert_tx(ct_db *db, const db_cert_record *rec, const char *supersedes_hex,
                                       const char *actor);

/* CT_ERR_DB with "what: sqlite message"; unique/primary-key violations become CT_ERR_EXISTS so callers can
 * name the duplicate in their own words. */
ct_err db_sql_fail(ct_db *db, const char *what);

/* The cached statement for `sql` (a static string), reset and with `types`-directed parameters bound:
 *   't' const char * (NULL binds SQL NULL), 'i' int64_t, 'z' int64_t with 0 meaning NULL,
 *   'b' const void *, size_t (blob).  */
CT_MUST_CHECK ct_err db_prepare(ct_db *db, const char *sql, sqlite3_stmt **out, const char *types, ...);
/* Prepares, binds, runs to completion (no rows expected) and reports sqlite3_changes in *changes (may be NULL). */
CT_MUST_CHECK ct_err db_exec(ct_db *db, const char *sql, int *changes, const char *types, ...);
/* Runs a query whose first row's first column is an integer; CT_ERR_NOT_FOUND (no detail) without rows. */
CT_MUST_CHECK ct_err db_query_int(ct_db *db, const char *sql, int64_t *out, const char *types, ...);
/* Steps a prepared statement: CT_OK with *row true/false, CT_ERR_DB on error. */
CT_MUST_CHECK ct_err db_step(ct_db *db, sqlite3_stmt *st, bool *row);
/* Copies a text column into a fixed array; fails (CT_ERR_DB) rather than truncate. */
CT_MUST_CHECK ct_err db_col_text(sqlite3_stmt *st, int col, char *dst, size_t dst_max);
/* Copies a 32-byte blob column; anything else is CT_ERR_INTEGRITY. */
CT_MUST_CHECK ct_err db_col_hash(sqlite3_stmt *st, int col, uint8_t out[32]);

/* Runs fn under the mutex; with `tx`, inside BEGIN IMMEDIATE .. COMMIT, rolled back on any error. */
typedef ct_err (*db_fn)(ct_db *db, void *ctx);
CT_MUST_CHECK ct_err db_call(ct_db *db, bool tx, db_fn fn, void *ctx);

/* Seals an unkeyed chain with its "audit.keyed" entry (audit.c; the caller holds the mutex and a transaction):
 * nothing when the chain is empty or its newest entry is MACed already. */
CT_MUST_CHECK ct_err db_audit_keyed_tx(ct_db *db);
/* Appends one audit event; the caller holds the mutex and an open transaction. */
CT_MUST_CHECK ct_err db_audit_append_tx(ct_db *db, const char *actor, const char *action, const char *subject,
                                        const char *outcome, const char *detail);

/* The issuance log (log.c): registers the SQL function ct_leaf_hash(der) that its migration uses; appends a
 * certificate's leaf (the caller holds the mutex and the issuance's transaction). */
CT_MUST_CHECK ct_err db_log_register(ct_db *db);
CT_MUST_CHECK ct_err db_log_append_tx(ct_db *db, const char *cert_serial_hex, const uint8_t *der, size_t der_len);

/* Checks a caller-supplied string: non-NULL, non-empty, shorter than max (so it fits a db.h array). */
CT_MUST_CHECK ct_err db_check_str(const char *what, const char *s, size_t max);

/* Enables or disables the client `name` (a station, an officer) with its audit event "<kind>.enable" or
 * "<kind>.disable", in one transaction. `sql` (static): "UPDATE <table> SET enabled = ? WHERE name = ?". */
CT_MUST_CHECK ct_err db_client_set_enabled(ct_db *db, const char *kind, const char *sql, const char *name,
                                           bool enabled, const char *actor);

/* Audit details that record a change of state (rebuild.c): "v=2" then " key=value" pairs, values %XX-escaped
 * outside [A-Za-z0-9._:/+@,-]. db_state_verify rebuilds the state tables from them. */
#define DB_DETAIL_V2 "v=2"
typedef struct {
    char s[DB_AUDIT_DETAIL_MAX];
    size_t n;
} db_detail;
void db_detail_init(db_detail *d);
CT_MUST_CHECK ct_err db_detail_str(db_detail *d, const char *key, const char *val);
CT_MUST_CHECK ct_err db_detail_int(db_detail *d, const char *key, int64_t v);
CT_MUST_CHECK ct_err db_detail_hex(db_detail *d, const char *key, const uint8_t *p, size_t n);
bool db_detail_is_v2(const char *detail);
/* SHA-256 over an order's serial lines ("serial,revoked_seen\n" in byte order) and how many there are. */
CT_MUST_CHECK ct_err db_order_serials_hash(ct_db *db, int64_t order_id, uint8_t out[32], int64_t *count);
/* A witness report's row (witness_reports.c; db_witness_report is in db_log.h) as its audit event
 * "log.witness_report" records it: subject DB_WITNESS_REPORT_SUBJECT + id; detail received, kind, kept, served and
 * the SHA-256 of witness, reason and report. db_witness_report_read reads the DB_WITNESS_REPORT_COLS from `col`. */
#define DB_WITNESS_REPORT_SUBJECT "witness report "
#define DB_WITNESS_REPORT_COLS "id, received, witness, kind, kept_size, served_size, reason"
struct db_witness_report_s;
CT_MUST_CHECK ct_err db_witness_report_detail(const struct db_witness_report_s *r, const char *report, db_detail *d);
CT_MUST_CHECK ct_err db_witness_report_read(sqlite3_stmt *st, int col, struct db_witness_report_s *r);
/* Migration 9: the "audit.state" entry and one "state.*" entry per row, where the rebuild starts. */
CT_MUST_CHECK ct_err db_state_baseline_tx(ct_db *db);

/* Migration 14 (its SQL beside the code that uses it, lease.c): the leases that let one node of several sign (the
 * checkpoints, tree heads and CRLs), and the CRLs that node signed, for the other nodes to serve. */
#define DB_MIGRATION_LEASES                                                                                       \
    "CREATE TABLE leases ("                                                                                       \
    "  name TEXT PRIMARY KEY,"                                                                                    \
    "  holder TEXT NOT NULL,"                                                                                     \
    "  expires_ms INTEGER NOT NULL,"                                                                              \
    "  taken_ms INTEGER NOT NULL);"                                                                               \
    "CREATE TABLE crls_signed ("                                                                                  \
    "  issuing_ca INTEGER PRIMARY KEY," /* an issuing_cas id */                                                   \
    "  epoch INTEGER NOT NULL CHECK (epoch >= 0),"                                                                \
    "  next_update INTEGER NOT NULL,"                                                                             \
    "  der BLOB NOT NULL);"

#endif
