/* db internals shared by the files of db/: the handle, the statement cache and the SQL helpers. No backend's own types
 * here: statements are the opaque db_stmt, read through db_col_*; db_backend_priv.h is the backends' side. */
#ifndef CAMTRUST_DB_PRIV_H
#define CAMTRUST_DB_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>

#include "db.h"

typedef struct db_stmt db_stmt;
struct db_backend;
/* One parameter's value: type 't' (p: a string), 'i' (i), 'b' (p, n); `null` for SQL NULL (of that type). */
typedef struct {
    char type;
    bool null;
    int64_t i;
    const void *p;
    size_t n;
} db_value;
#define DB_MAX_PARAMS 32

/* Every statement is prepared once and kept: the issuance path runs the same handful on every request (officer
 * searches are 16 of them: officer.c SEARCH_LEADS). */
#define DB_STMT_CACHE_MAX 192
/* Bounds for audit fields (actor, action, subject, outcome) and the free-text detail. */
#define DB_AUDIT_FIELD_MAX 256
#define DB_AUDIT_DETAIL_MAX 1024
/* The entry that seals a chain begun unkeyed: it and every later entry are MACed. */
#define DB_AUDIT_KEYED_ACTION "audit.keyed"

struct ct_db {
    const struct db_backend *be;
    void *conn;         /* the backend's connection */
    pthread_mutex_t mu; /* one connection, many CA threads: every public call holds it */
    int schema_version;
    int64_t schema_newer; /* a newer build's schema version, seen in a write transaction (0: none): writes refused */
    bool copy_target;   /* db_config.copy_target: migrated by db_copy, in its transaction, with no audit entries */
    db_stmt *cache[DB_STMT_CACHE_MAX]; /* keyed by the address of a static SQL string */
    size_t n_cached;
    /* Group commit of issuances (db_cert_record_issuance): a queue that one leader thread writes at a time (each
     * waiting thread has a condition variable of its own in its queue item). */
    pthread_mutex_t gc_mu;
    struct db_pending *gc_head, **gc_tail;
    bool gc_leading;
    int gc_queued, gc_busy; /* items queued; items taken by a leader and not yet answered (under gc_mu) */
    atomic_int gc_coming;   /* db_issuances_coming: announced and not yet answered (queued and busy ones too) */
    /* The audit chain's key (db_open_keyed); fn NULL: SHA-256 only. */
    db_audit_mac mac;
    /* db_lease_fence: tree heads and checkpoints are written only while this holder holds this lease. */
    char fence_name[32];
    char fence_holder[DB_LEASE_HOLDER_MAX];
    int64_t fence_stamp; /* the take of it this handle's db_lease_take holds (0: none): set under mu */
    /* Reads outside a write transaction run on a connection of their own (db_readers_open): in WAL mode, and in
     * PostgreSQL, a reader never waits for the writer's statements, commit and fsync. NULL: all on `conn`. */
    struct db_readers *readers;
    bool read_only; /* this handle is one of those readers: its connection refuses writes */
    /* db_pipeline_commits: a write transaction's commit is made durable by be->sync after the write lock is
     * released (sync_fd is the backend's file to sync). */
    bool sync_deferred;
    int sync_fd;
    db_config cfg;  /* how it was opened (strings owned below): readers open the same way */
    char cfg_target[1024], cfg_password_file[1024];
};

/* The profiles of the operations issuing CA's certificates (db.h DB_PROFILE_*), for SQL "profile [NOT] IN". */
#define DB_CLIENT_PROFILES                                                                                          \
    "('viewer', 'station', 'officer', '" DB_PROFILE_CA_TLS "', '" DB_PROFILE_CA_LOG "', '" DB_PROFILE_CA_CHECKPOINT "')"
/* The CA's own operators and its own certificates (of either issuing CA): recorded so that they can be revoked
 * and OCSP answers for them, but neither in the issuance log (it lists what cameras and viewers hold) nor in
 * officers' searches and reports (their own tables and files name them). */
#define DB_OPERATOR_PROFILES "('" DB_PROFILE_STATION "', '" DB_PROFILE_OFFICER "', " DB_CA_OWN_PROFILE_LIST ")"
/* The CA's own certificates (its TLS, OCSP, log and checkpoint identities), as SQL strings separated by commas. */
#define DB_CA_OWN_PROFILE_LIST                                                                                      \
    "'" DB_PROFILE_CA_TLS "', '" DB_PROFILE_CA_LOG "', '" DB_PROFILE_CA_CHECKPOINT "', '" DB_PROFILE_CA_OCSP "'"

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

/* CT_ERR_DB with "what: backend message"; unique/primary-key violations become CT_ERR_EXISTS so callers can
 * name the duplicate in their own words. */
ct_err db_sql_fail(ct_db *db, const char *what);
/* Where a call's work ends (call_locked; each item of a batch): a unique rule's refusal that `rc` still is, in the
 * words db_fail_exists told it (no caller named it better), is logged with the database's text (event=db.exists). */
void db_exists_logged(ct_err rc);
/* The current time in Unix seconds, as every table records it. */
int64_t db_now(void);
/* The migrations (migrations.c): db_n_migrations of them, numbered from 1; the SQL of migration n for this
 * handle's backend (its own dialect's text where it differs). */
extern const int db_n_migrations;
#define DB_MIGRATION_STATE_BASELINE 9
/* The migration that gives audit entries their raw text (audit.c row_text). */
#define DB_MIGRATION_AUDIT_RAW 18
const char *db_migration_sql(ct_db *db, int n);
/* Migration `target` in the caller's write transaction, unless the schema has it already (failpoint "migration N"
 * after its SQL ran: kill tests). */
ct_err db_migrate_tx(ct_db *db, int target);
/* `sqlite` unless the backend is PostgreSQL and `pg` is non-NULL: a statement whose dialects differ, both texts
 * side by side where it is used (each a static string: the statement cache keys on the address). */
const char *db_sql(ct_db *db, const char *sqlite, const char *pg);

/* The cached statement for `sql` (a static string), reset and with `types`-directed parameters bound:
 *   't' const char * (NULL binds SQL NULL), 'i' int64_t, 'z' int64_t with 0 meaning NULL,
 *   'b' const void *, size_t (blob).  */
CT_MUST_CHECK ct_err db_prepare(ct_db *db, const char *sql, db_stmt **out, const char *types, ...);
/* db_prepare with the values in an array (a row copied whole: db copy). */
CT_MUST_CHECK ct_err db_prepare_values(ct_db *db, const char *sql, db_stmt **out, const db_value *v, int n);
/* Prepares, binds, runs to completion (no rows expected) and reports the rows changed in *changes (may be NULL). */
CT_MUST_CHECK ct_err db_exec(ct_db *db, const char *sql, int *changes, const char *types, ...);
/* Runs a query whose first row's first column is an integer; CT_ERR_NOT_FOUND (no detail) without rows. */
CT_MUST_CHECK ct_err db_query_int(ct_db *db, const char *sql, int64_t *out, const char *types, ...);
/* Steps a prepared statement: CT_OK with *row true/false, CT_ERR_DB on error. */
CT_MUST_CHECK ct_err db_step(ct_db *db, db_stmt *st, bool *row);
/* Runs an SQL script (several statements, no parameters, no rows), e.g. a migration; `what` names it in errors.
 * An empty script (db_sql's text for a dialect with nothing to do) does nothing. */
CT_MUST_CHECK ct_err db_exec_script(ct_db *db, const char *sql, const char *what);
/* The current row's columns (0-based). An integer column (a boolean reads 0/1; NULL reads 0). */
int64_t db_col_int(db_stmt *st, int col);
/* A text column as stored (NULL for SQL NULL); valid until the next step. */
const char *db_col_str(db_stmt *st, int col);
/* A blob column and its length (NULL, 0 for SQL NULL); valid until the next step. */
const void *db_col_blob(db_stmt *st, int col, size_t *len);
bool db_col_is_null(db_stmt *st, int col);
/* Copies a text column into a fixed array; fails (CT_ERR_DB) rather than truncate. */
CT_MUST_CHECK ct_err db_col_text(db_stmt *st, int col, char *dst, size_t dst_max);
/* Copies a 32-byte blob column; anything else is CT_ERR_INTEGRITY. */
CT_MUST_CHECK ct_err db_col_hash(db_stmt *st, int col, uint8_t out[32]);

/* Runs fn under the mutex; with `tx`, inside a write transaction (the one writer lock: BEGIN IMMEDIATE on
 * SQLite, an advisory lock on PostgreSQL), rolled back on any error. */
typedef ct_err (*db_fn)(ct_db *db, void *ctx);
CT_MUST_CHECK ct_err db_call(ct_db *db, bool tx, db_fn fn, void *ctx);
/* db_call with a read-only transaction: every statement of fn reads one snapshot. */
CT_MUST_CHECK ct_err db_call_snapshot(ct_db *db, db_fn fn, void *ctx);
/* db_call(db, true, ...) that is always rolled back, for work whose writes are scratch (TEMP tables): on SQLite a
 * committed TEMP table's pages stay dirty in the writer's cache, and every later commit walks them. */
CT_MUST_CHECK ct_err db_call_scratch(ct_db *db, db_fn fn, void *ctx);
/* db_call(db, true, ...) whose commit may not be durable yet when it returns (db_pipeline_commits): the caller
 * calls db_sync before anyone learns of what it wrote. The group commit's leader syncs outside the write lock so
 * that the next batch is written meanwhile. */
CT_MUST_CHECK ct_err db_call_write_unsynced(ct_db *db, db_fn fn, void *ctx);
/* Makes every commit so far durable (nothing to do unless db_pipeline_commits). */
CT_MUST_CHECK ct_err db_sync(ct_db *db);

/* A query's rows collected into a growing array, so that callers' callbacks run without the lock held. */
typedef struct {
    const char *sql;
    size_t size;                             /* of one item */
    ct_err (*fill)(db_stmt *st, void *item);
    void *items;
    size_t n, cap;
    bool by_generation;    /* the revoked lists: ?1 the issuing CA generation's id, ?2 whether it is the first */
    int64_t issuing_ca;
    bool first_generation;
} db_row_list;
/* Runs the collection; on failure nothing stays allocated. */
CT_MUST_CHECK ct_err db_collect(ct_db *db, db_row_list *l);
/* The SQL that db_cert_search runs for `q` (with `count`: its total), one of a few static texts led by an indexed
 * term: tests read its query plan. */
const char *db_cert_search_sql(const db_search *q, bool count);
/* A station's id by name (stations.c), for the orders and revocations that name it. */
extern const char db_sql_station_id[];

/* Seals an unkeyed chain with its "audit.keyed" entry (audit.c; the caller holds the mutex and a transaction):
 * nothing when the chain is empty or its newest entry is MACed already. */
CT_MUST_CHECK ct_err db_audit_keyed_tx(ct_db *db);
/* Whether a key may be made for the chain (audit.c; under the write lock): it is empty, or its newest entry is
 * plain SHA-256 (written before keying). A newest entry with any other hash was MACed by a key that must exist. */
CT_MUST_CHECK ct_err db_audit_unkeyed_tx(ct_db *db, bool *unkeyed);
/* An audit row's five text fields (actor, action, subject, outcome, detail) as db_copy writes them. Entries written
 * before db_audit_append_tx kept outside bytes as '?' may hold bytes that are not UTF-8, MACed as they are, which
 * PostgreSQL's text refuses: the columns get them as '?' and migration 18's raw the fields as written (audit.c
 * row_text reads them back). */
typedef struct {
    char shown[5][DB_AUDIT_DETAIL_MAX]; /* the fields, each byte that is not UTF-8 as '?' */
    ct_buf raw;                         /* the fields as written when one is not UTF-8; else len 0 (raw NULL) */
} db_audit_copy;
CT_MUST_CHECK ct_err db_audit_copy_text(const char *text[5], db_audit_copy *out);
/* Appends one audit event; the caller holds the mutex and an open transaction. */
CT_MUST_CHECK ct_err db_audit_append_tx(ct_db *db, const char *actor, const char *action, const char *subject,
                                        const char *outcome, const char *detail);

/* The issuance log (log.c): appends a certificate's leaf, its hash (ct_merkle_leaf_hash of the DER) made by the
 * caller (the caller holds the mutex and the issuance's transaction). */
CT_MUST_CHECK ct_err db_log_append_tx(ct_db *db, const char *cert_serial_hex, const uint8_t leaf_hash[32]);

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
/* The audit detail of a recorded certificate (the fields db_state_verify replays); leaf: its log leaf hash, or NULL. */
CT_MUST_CHECK ct_err db_cert_detail(const db_cert_record *r, const char *supersedes, db_detail *d, uint8_t *leaf);
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
CT_MUST_CHECK ct_err db_witness_report_read(db_stmt *st, int col, struct db_witness_report_s *r);
/* Migration 9: the "audit.state" entry and one "state.*" entry per row, where the rebuild starts. */
CT_MUST_CHECK ct_err db_state_baseline_tx(ct_db *db);

/* Migration 14 (its SQL beside the code that uses it, lease.c): the leases that let one node of several sign (the
 * checkpoints, tree heads and CRLs), and the CRLs that node signed, for the other nodes to serve. The dialects
 * differ in the id and blob types only: SQLite's INTEGER PRIMARY KEY and BLOB, PostgreSQL's BIGINT and BYTEA. */
#define DB_MIGRATION_LEASES_AS(id_type, blob_type)                                                                \
    "CREATE TABLE leases ("                                                                                       \
    "  name TEXT PRIMARY KEY,"                                                                                    \
    "  holder TEXT NOT NULL,"                                                                                     \
    "  expires_ms BIGINT NOT NULL,"                                                                               \
    "  taken_ms BIGINT NOT NULL);"                                                                                \
    "CREATE TABLE crls_signed ("                                                                                  \
    "  issuing_ca " id_type " PRIMARY KEY," /* an issuing_cas id */                                               \
    "  epoch BIGINT NOT NULL CHECK (epoch >= 0),"                                                                 \
    "  next_update BIGINT NOT NULL,"                                                                              \
    "  der " blob_type " NOT NULL);"
#define DB_MIGRATION_LEASES DB_MIGRATION_LEASES_AS("INTEGER", "BLOB")
#define DB_MIGRATION_LEASES_PG DB_MIGRATION_LEASES_AS("BIGINT", "BYTEA")

/* Claims r's public key for its device serial and profile (certified_keys) unless already claimed; with `check`,
 * CT_ERR_EXISTS naming the holder if that is another serial or profile (db_cert_record_issuance). */
CT_MUST_CHECK ct_err db_cert_key_claim_tx(ct_db *db, const db_cert_record *r, bool check);

/* Each stored CRL's audit entry (lease.c), read by db_crl_stored_latest (rebuild.c): subject "issuing CA <id>". */
#define DB_CRL_STORE_ACTION "crl.store"
#define DB_CRL_STORE_SUBJECT "issuing CA "
/* db_crl_stored_latest's "crl.store" part inside the caller's transaction (out->issued_max left 0). */
CT_MUST_CHECK ct_err db_crl_stored_latest_tx(ct_db *db, int64_t issuing_ca, db_crl_stored *out);

/* The fence (db_lease_fence) checked inside a tree head's or checkpoint's transaction (lease.c). */
CT_MUST_CHECK ct_err db_lease_fence_tx(ct_db *db);

#endif
