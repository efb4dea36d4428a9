/* db backends: what db.c asks of SQLite (db_sqlite.c) and PostgreSQL (db_pg.c). Only the backends see their
 * library's types; the rest of db/ speaks db_stmt and db_col_*. Every function runs with db->mu held. */
#ifndef CAMTRUST_DB_BACKEND_PRIV_H
#define CAMTRUST_DB_BACKEND_PRIV_H

#include "db_priv.h"

struct db_stmt {
    const char *sql; /* the static SQL string it was prepared from (the cache key) */
    ct_db *db;
    void *impl;      /* the backend's statement */
    bool bound;      /* bound since the end of the last call: reset then (a call uses a few of ~100 kept) */
};

typedef struct db_backend {
    const char *name; /* "sqlite", "postgresql" */
    /* Connects to `target` (a file path, a libpq connection string) and sets db->conn; `password` may be NULL. */
    ct_err (*open)(ct_db *db, const char *target, const char *password);
    void (*close)(ct_db *db);
    /* Before each call: re-makes a lost connection (NULL: nothing to do); CT_ERR_UNAVAILABLE while it stays lost. */
    ct_err (*ready)(ct_db *db);
    /* Whether the last failure lost the connection (a call that found it stale is tried once more; not one that
     * waited its bound for the writers' lock). */
    bool (*lost)(ct_db *db);
    /* Makes st->impl from st->sql; finalize frees it. */
    ct_err (*prepare)(ct_db *db, db_stmt *st);
    void (*finalize)(ct_db *db, db_stmt *st);
    /* Forgets the previous run and binds the parameters. */
    ct_err (*bind)(ct_db *db, db_stmt *st, const db_value *v, int n);
    ct_err (*step)(ct_db *db, db_stmt *st, bool *row);
    /* Ends a run early (no rows held: a held SQLite statement would pin an old snapshot). */
    void (*reset)(ct_db *db, db_stmt *st);
    int64_t (*changes)(ct_db *db, db_stmt *st);
    int64_t (*col_int)(db_stmt *st, int col);
    const char *(*col_str)(db_stmt *st, int col);
    const void *(*col_blob)(db_stmt *st, int col, size_t *len);
    bool (*col_is_null)(db_stmt *st, int col);
    ct_err (*exec_script)(ct_db *db, const char *sql, const char *what);
    /* The write transaction takes the one lock that serialises every writer of this database (all processes,
     * all nodes); a read transaction sees one snapshot. */
    ct_err (*begin)(ct_db *db, bool write);
    ct_err (*commit)(ct_db *db);
    void (*rollback)(ct_db *db);
    /* db_pipeline_commits (NULL: the backend's commit stays durable by itself): after defer_sync, a commit
     * returns with its writes handed to the OS, and sync makes every write handed so far durable. */
    ct_err (*defer_sync)(ct_db *db);
    ct_err (*sync)(ct_db *db);
    ct_err (*version_get)(ct_db *db, int64_t *version);
    ct_err (*version_set)(ct_db *db, int version);
    /* The backend's last error as a ct_err with "what: message" (db_sql_fail). */
    ct_err (*fail)(ct_db *db, const char *what);
} db_backend;

/* A unique rule refused a row: CT_ERR_EXISTS, "what: the record exists already". The backend's `text` names the
 * schema's constraints, indexes and tables, and a 409's detail reaches its client: logged (event=db.exists), not told. */
ct_err db_fail_exists(ct_db *db, const char *what, const char *text);

extern const db_backend db_backend_sqlite;
extern const db_backend db_backend_pg;

#endif
