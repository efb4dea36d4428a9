/* db: the handle, the SQL helpers every db/ file uses (statement cache, calls under the lock, transactions) and
 * the migrations' runner, over a backend (db_backend_priv.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "db_backend_priv.h"

int64_t db_now(void) { return (int64_t)time(NULL); }

/* ---------------------------------------------------------------------------------------------------------
 * SQL helpers
 * ------------------------------------------------------------------------------------------------------- */
ct_err db_sql_fail(ct_db *db, const char *what) { return db->be->fail(db, what); }

/* A unique rule's refusal, kept until its call ends (db_exists_logged): logged then only if no caller named it better
 * (its detail still the one told here); a refusal its caller names ("station name 'x' is taken") or expects (a lease
 * another node took first) is no operator's news. */
static _Thread_local struct {
    const char *backend;
    char told[CT_ERR_DETAIL_MAX], text[256];
} t_exists;

ct_err db_fail_exists(ct_db *db, const char *what, const char *text)
{
    ct_err rc = ct_fail(CT_ERR_EXISTS, "%s: the record exists already", what);
    t_exists.backend = db->be->name;
    if (ct_strlcpy(t_exists.told, sizeof t_exists.told, ct_err_detail()) != CT_OK) t_exists.told[0] = '\0';
    if (ct_strlcpy(t_exists.text, sizeof t_exists.text, text ? text : "") != CT_OK) t_exists.text[0] = '\0';
    return rc;
}

void db_exists_logged(ct_err rc)
{
    if (rc == CT_ERR_EXISTS && t_exists.told[0] && strcmp(ct_err_detail(), t_exists.told) == 0)
        ct_log(CT_LOG_INFO, "db.exists", "backend=%s error=%s told=%s", t_exists.backend, CT_LOGQ(t_exists.text),
               CT_LOGQ(t_exists.told));
    t_exists.told[0] = '\0';
}

const char *db_sql(ct_db *db, const char *sqlite, const char *pg)
{
    return pg && db->be != &db_backend_sqlite ? pg : sqlite;
}

ct_err db_check_str(const char *what, const char *s, size_t max)
{
    if (!s || !*s) return ct_fail(CT_ERR_ARG, "%s is missing", what);
    if (strnlen(s, max) >= max) return ct_fail(CT_ERR_ARG, "%s is longer than %zu bytes", what, max - 1);
    return CT_OK;
}

static ct_err cached_stmt(ct_db *db, const char *sql, db_stmt **out)
{
    for (size_t i = 0; i < db->n_cached; i++) {
        if (db->cache[i]->sql == sql) {
            *out = db->cache[i];
            return CT_OK;
        }
    }
    if (db->n_cached == DB_STMT_CACHE_MAX) return ct_fail(CT_ERR_INTERNAL, "db statement cache full");
    db_stmt *st = calloc(1, sizeof *st);
    CT_ENSURE_RET(st, CT_ERR_NOMEM);
    st->sql = sql;
    st->db = db;
    ct_err rc = db->be->prepare(db, st);
    if (rc != CT_OK) {
        free(st);
        return rc;
    }
    db->cache[db->n_cached++] = st;
    *out = st;
    return CT_OK;
}

ct_err db_prepare_values(ct_db *db, const char *sql, db_stmt **out, const db_value *v, int n)
{
    db_stmt *st = NULL;
    CT_GUARD_RET(cached_stmt(db, sql, &st));
    st->bound = true;
    CT_GUARD_RET(db->be->bind(db, st, v, n));
    *out = st;
    return CT_OK;
}

/* The 't','i','z','b' arguments as values. */
static ct_err vprepare(ct_db *db, const char *sql, db_stmt **out, const char *types, va_list ap)
{
    db_value v[DB_MAX_PARAMS];
    int n = 0;
    for (; *types; types++, n++) {
        CT_ENSURE_RET(n < DB_MAX_PARAMS, ct_fail(CT_ERR_INTERNAL, "too many SQL parameters: %.60s", sql));
        v[n] = (db_value){.type = *types == 'z' ? 'i' : *types};
        switch (*types) {
        case 't':
            v[n].p = va_arg(ap, const char *);
            v[n].null = !v[n].p;
            break;
        case 'i':
        case 'z':
            v[n].i = va_arg(ap, int64_t);
            v[n].null = *types == 'z' && v[n].i == 0;
            break;
        case 'b':
            v[n].p = va_arg(ap, const void *);
            v[n].n = va_arg(ap, size_t);
            v[n].null = !v[n].p; /* SQL NULL, as sqlite3_bind_blob makes it */
            break;
        default:
            return ct_fail(CT_ERR_INTERNAL, "bad bind type '%c'", *types);
        }
    }
    return db_prepare_values(db, sql, out, v, n);
}

ct_err db_prepare(ct_db *db, const char *sql, db_stmt **out, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    ct_err rc = vprepare(db, sql, out, types, ap);
    va_end(ap);
    return rc;
}

ct_err db_step(ct_db *db, db_stmt *st, bool *row) { return db->be->step(db, st, row); }

/* Prepares (cached), binds and takes the first step: the common start of db_exec and db_query_int. */
static ct_err vrun(ct_db *db, const char *sql, db_stmt **st, bool *row, const char *types, va_list ap)
{
    CT_GUARD_RET(vprepare(db, sql, st, types, ap));
    return db_step(db, *st, row);
}

ct_err db_exec(ct_db *db, const char *sql, int *changes, const char *types, ...)
{
    db_stmt *st = NULL;
    bool row = false;
    va_list ap;
    va_start(ap, types);
    ct_err rc = vrun(db, sql, &st, &row, types, ap);
    va_end(ap);
    CT_GUARD_RET(rc);
    CT_ENSURE_RET(!row, ct_fail(CT_ERR_INTERNAL, "statement returned rows: %.60s", sql));
    if (changes) *changes = (int)db->be->changes(db, st);
    return CT_OK;
}

ct_err db_query_int(ct_db *db, const char *sql, int64_t *out, const char *types, ...)
{
    db_stmt *st = NULL;
    bool row = false;
    va_list ap;
    va_start(ap, types);
    ct_err rc = vrun(db, sql, &st, &row, types, ap);
    va_end(ap);
    CT_GUARD_RET(rc);
    if (!row) return CT_ERR_NOT_FOUND;
    *out = db_col_int(st, 0);
    return CT_OK;
}

ct_err db_exec_script(ct_db *db, const char *sql, const char *what)
{
    return *sql ? db->be->exec_script(db, sql, what) : CT_OK;
}

int64_t db_col_int(db_stmt *st, int col) { return st->db->be->col_int(st, col); }
const char *db_col_str(db_stmt *st, int col) { return st->db->be->col_str(st, col); }
bool db_col_is_null(db_stmt *st, int col) { return st->db->be->col_is_null(st, col); }

const void *db_col_blob(db_stmt *st, int col, size_t *len)
{
    size_t n = 0;
    const void *p = st->db->be->col_blob(st, col, &n);
    if (len) *len = n;
    return p;
}

ct_err db_col_text(db_stmt *st, int col, char *dst, size_t dst_max)
{
    const char *s = db_col_str(st, col);
    if (!s) return ct_fail(CT_ERR_DB, "column %d is NULL", col);
    if (ct_strlcpy(dst, dst_max, s) != CT_OK)
        return ct_fail(CT_ERR_DB, "column %d longer than %zu bytes", col, dst_max - 1);
    return CT_OK;
}

ct_err db_col_hash(db_stmt *st, int col, uint8_t out[32])
{
    size_t n = 0;
    const void *p = db_col_blob(st, col, &n);
    if (!p || n != 32) return ct_fail(CT_ERR_INTEGRITY, "column %d is not a SHA-256", col);
    memcpy(out, p, 32);
    return CT_OK;
}

/* Ends the transaction; on any error rolls back so nothing partial remains and keeps the first error. */
static ct_err tx_end(ct_db *db, ct_err rc)
{
    if (rc == CT_OK) rc = db->be->commit(db);
    if (rc != CT_OK) db->be->rollback(db);
    return rc;
}

struct db_readers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n, n_idle;
    ct_db *all[DB_READERS_MAX];
    ct_db *idle[DB_READERS_MAX];
};

static ct_db *reader_take(struct db_readers *r)
{
    (void)pthread_mutex_lock(&r->mu);
    while (r->n_idle == 0) (void)pthread_cond_wait(&r->cv, &r->mu);
    ct_db *rd = r->idle[--r->n_idle];
    (void)pthread_mutex_unlock(&r->mu);
    return rd;
}

static void reader_give_back(struct db_readers *r, ct_db *rd)
{
    (void)pthread_mutex_lock(&r->mu);
    r->idle[r->n_idle++] = rd;
    (void)pthread_cond_signal(&r->cv);
    (void)pthread_mutex_unlock(&r->mu);
}

/* What a call runs in: no transaction, a write transaction, a read snapshot, or a write transaction always rolled
 * back (db_call_scratch). */
typedef enum { CALL_PLAIN, CALL_WRITE, CALL_SNAPSHOT, CALL_SCRATCH } call_mode;
static bool call_writes(call_mode m) { return m == CALL_WRITE || m == CALL_SCRATCH; }

/* Runs fn under the handle's mutex, in the transaction `tx` says. */
static ct_err call_locked(ct_db *db, call_mode tx, db_fn fn, void *ctx);

/* call_locked on the writer, or for a read on an idle reader when there are readers; a write returns once durable. */
static ct_err call(ct_db *db, call_mode tx, db_fn fn, void *ctx)
{
    if (!call_writes(tx) && db->readers) {
        ct_db *rd = reader_take(db->readers);
        ct_err rc = call_locked(rd, tx, fn, ctx);
        reader_give_back(db->readers, rd);
        return rc;
    }
    ct_err rc = call_locked(db, tx, fn, ctx);
    /* Outside the write lock: other writers go on while this commit reaches the disk. */
    return rc == CT_OK && tx == CALL_WRITE ? db_sync(db) : rc;
}

ct_err db_sync(ct_db *db) { return db->sync_deferred ? db->be->sync(db) : CT_OK; }

ct_err db_call_write_unsynced(ct_db *db, db_fn fn, void *ctx) { return call_locked(db, CALL_WRITE, fn, ctx); }

ct_err db_pipeline_commits(ct_db *db)
{
    CT_ENSURE_RET(db && !db->read_only, ct_fail(CT_ERR_ARG, "db_pipeline_commits: not a writer's handle"));
    if (!db->be->defer_sync || db->sync_deferred) return CT_OK;
    if (pthread_mutex_lock(&db->mu) != 0) return ct_fail(CT_ERR_INTERNAL, "db mutex lock failed");
    ct_err rc = db->be->defer_sync(db);
    if (rc == CT_OK) db->sync_deferred = true;
    (void)pthread_mutex_unlock(&db->mu);
    return rc;
}

/* A rolling upgrade: a node of a newer build migrated the schema under this running one. Writing on would leave
 * what the newer migrations keep in step undone (a new column not filled, a new table's rows missing), so this
 * handle writes nothing from then on: read in each write transaction under the writers' lock (a migration holds it
 * too, so one committed before is seen), said once, then every write refused at once (503). */
static ct_err schema_not_newer(ct_db *db)
{
    if (!db->schema_newer) {
        int64_t version = 0;
        CT_GUARD_RET(db->be->version_get(db, &version));
        if (version <= db_n_migrations) return CT_OK;
        db->schema_newer = version;
        ct_log(CT_LOG_ERROR, "schema_newer", "version=%lld build=%d reason=%s", (long long)version, db_n_migrations,
               CT_LOGQ("a newer build migrated the database: this node writes nothing (503) until it is upgraded"));
    }
    return ct_fail(CT_ERR_UNAVAILABLE, "database schema %lld is newer than this build (%d): this node writes nothing "
                                       "until it is upgraded", (long long)db->schema_newer, db_n_migrations);
}

bool db_schema_outdated(const ct_db *db) { return db && db->schema_newer; }

/* One run of fn. *retry says whether a CT_ERR_UNAVAILABLE came from a connection that looked ready but was stale
 * (PostgreSQL restarted, ready's idle probe not due yet) where nothing can have been written: at BEGIN, or anywhere
 * on a reader, which refuses writes. A wait for the writers' lock that ran out is not tried again (twice its bound). */
static ct_err attempt(ct_db *db, call_mode tx, db_fn fn, void *ctx, bool *retry)
{
    ct_err rc = db->be->ready ? db->be->ready(db) : CT_OK;
    bool ready = rc == CT_OK;
    if (rc == CT_OK && tx != CALL_PLAIN) rc = db->be->begin(db, call_writes(tx));
    bool began = rc == CT_OK;
    if (rc == CT_OK && call_writes(tx)) rc = schema_not_newer(db);
    if (rc == CT_OK) rc = fn(db, ctx);
    /* A statement left on a row would pin an old snapshot (stale reads, no checkpoints): reset every one run. */
    for (size_t i = 0; i < db->n_cached; i++) {
        if (!db->cache[i]->bound) continue;
        db->cache[i]->bound = false;
        db->be->reset(db, db->cache[i]);
    }
    if (tx == CALL_SCRATCH) db->be->rollback(db);
    else if (tx != CALL_PLAIN) rc = tx_end(db, rc);
    *retry = rc == CT_ERR_UNAVAILABLE && db->be->lost && db->be->lost(db) && ready && (!began || db->read_only);
    return rc;
}

static ct_err call_locked(ct_db *db, call_mode tx, db_fn fn, void *ctx)
{
    if (pthread_mutex_lock(&db->mu) != 0) return ct_fail(CT_ERR_INTERNAL, "db mutex lock failed");
    bool retry = false;
    ct_err rc = attempt(db, tx, fn, ctx, &retry);
    if (retry) rc = attempt(db, tx, fn, ctx, &retry); /* once, on a connection ready makes again */
    db_exists_logged(rc);
    if (pthread_mutex_unlock(&db->mu) != 0 && rc == CT_OK) rc = ct_fail(CT_ERR_INTERNAL, "db mutex unlock failed");
    return rc;
}

ct_err db_call(ct_db *db, bool tx, db_fn fn, void *ctx) { return call(db, tx ? CALL_WRITE : CALL_PLAIN, fn, ctx); }
ct_err db_call_snapshot(ct_db *db, db_fn fn, void *ctx) { return call(db, CALL_SNAPSHOT, fn, ctx); }
ct_err db_call_scratch(ct_db *db, db_fn fn, void *ctx) { return call(db, CALL_SCRATCH, fn, ctx); }

static ct_err collect_fn(ct_db *db, void *vctx)
{
    db_row_list *l = vctx;
    db_stmt *st = NULL;
    bool row = false;
    if (l->by_generation)
        CT_GUARD_RET(db_prepare(db, l->sql, &st, "ii", l->issuing_ca, (int64_t)l->first_generation));
    else
        CT_GUARD_RET(db_prepare(db, l->sql, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 64;
            void *grown = realloc(l->items, cap * l->size);
            CT_ENSURE_RET(grown, CT_ERR_NOMEM);
            l->items = grown;
            l->cap = cap;
        }
        CT_GUARD_RET(l->fill(st, (char *)l->items + l->n * l->size));
        l->n++;
    }
}

ct_err db_collect(ct_db *db, db_row_list *l)
{
    ct_err rc = db_call(db, false, collect_fn, l);
    if (rc != CT_OK) {
        free(l->items);
        l->items = NULL;
        l->n = 0;
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------------------
 * open / migrations / close
 * ------------------------------------------------------------------------------------------------------- */
ct_err db_migrate_tx(ct_db *db, int target)
{
    int64_t have = 0;
    CT_GUARD_RET(db->be->version_get(db, &have));
    /* Another process (or node) may have migrated while we waited for the write lock. */
    if (have >= target) return CT_OK;
    char what[64];
    CT_GUARD_RET(ct_snprintf(what, sizeof what, "migration %d", target));
    CT_GUARD_RET(db_exec_script(db, db_migration_sql(db, target), what));
    ct_failpoint(what);
    CT_GUARD_RET(db->be->version_set(db, target));
    if (db->copy_target) return CT_OK; /* the copy brings the audit of every migration */
    if (target == DB_MIGRATION_STATE_BASELINE) CT_GUARD_RET(db_state_baseline_tx(db));
    return db_audit_append_tx(db, "camtrust-db", "db.migrate", what, "ok", NULL);
}

static ct_err migrate_one(ct_db *db, void *ctx) { return db_migrate_tx(db, *(const int *)ctx); }

/* The audit key found or made under the write lock, so that two processes upgrading one folder make one key and
 * one seal; the seal comes before any migration writes its own (MACed) entry: the first MACed entry is the seal. */
static ct_err audit_key_ready(ct_db *db, void *ctx)
{
    (void)ctx;
    bool made = false, may_make = true; /* a new database has no chain yet */
    int64_t version = 0;
    CT_GUARD_RET(db->be->version_get(db, &version));
    if (version >= 1) CT_GUARD_RET(db_audit_unkeyed_tx(db, &may_make));
    CT_GUARD_RET(db->mac.key(db->mac.ctx, may_make, &made));
    return made && version >= 1 ? db_audit_keyed_tx(db) : CT_OK;
}

static ct_err read_version(ct_db *db, void *ctx)
{
    (void)ctx;
    int64_t version = 0;
    CT_GUARD_RET(db->be->version_get(db, &version));
    CT_ENSURE_RET(version <= db_n_migrations,
                  ct_fail(CT_ERR_DB, "database schema %lld is newer than this build (%d)", (long long)version,
                          db_n_migrations));
    db->schema_version = (int)version;
    return CT_OK;
}

static const char k_tables_sqlite[] = "SELECT count(*) FROM sqlite_master WHERE type = 'table'";
static const char k_tables_pg[] = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()";

/* A copy goes only into an empty database: nothing of another CA (or an earlier attempt) is mixed in. */
static ct_err target_empty(ct_db *db, void *ctx)
{
    (void)ctx;
    int64_t tables = 0;
    CT_GUARD_RET(db_query_int(db, db_sql(db, k_tables_sqlite, k_tables_pg), &tables, ""));
    CT_ENSURE_RET(tables == 0 && db->schema_version == 0,
                  ct_fail(CT_ERR_EXISTS, "the target database is not empty (%lld tables): a CA is copied only into an "
                                         "empty database", (long long)tables));
    return CT_OK;
}

ct_err db_open(const char *path, ct_db **out) { return db_open_keyed(path, NULL, out); }

ct_err db_open_keyed(const char *path, const db_audit_mac *mac, ct_db **out)
{
    const db_config cfg = {.backend = DB_BACKEND_SQLITE, .path = path};
    return db_open_config(&cfg, mac, out);
}

const char *db_backend_name(const ct_db *db) { return db ? db->be->name : ""; }

#define DB_PASSWORD_MAX 1024

/* Connects db (its be and conn) as cfg says; a reader's connection then refuses every write. */
static ct_err backend_open(ct_db *db, const db_config *cfg)
{
    if (cfg->backend == DB_BACKEND_SQLITE) {
        CT_ENSURE_RET(cfg->path && *cfg->path, ct_fail(CT_ERR_ARG, "db_open: no path"));
        db->be = &db_backend_sqlite;
        return db->be->open(db, cfg->path, NULL);
    }
    CT_ENSURE_RET(cfg->backend == DB_BACKEND_POSTGRESQL && cfg->url && *cfg->url,
                  ct_fail(CT_ERR_CONFIG, "db.url is missing (the PostgreSQL connection string)"));
    db->be = &db_backend_pg;
    char pw[DB_PASSWORD_MAX] = "";
    ct_err rc = cfg->password_file ? ct_secret_load(cfg->password_file, NULL, pw, sizeof pw) : CT_OK;
    if (rc == CT_OK) rc = db->be->open(db, cfg->url, cfg->password_file ? pw : NULL);
    ct_wipe(pw, sizeof pw); /* libpq keeps its own copy for reconnecting */
    return rc;
}

static const char k_ca_id_get[] = "SELECT ca_id FROM ca_identity WHERE id = 1";
static const char k_ca_id_set[] = "INSERT INTO ca_identity (id, ca_id, named_at) VALUES (1, ?, ?)";

/* The database names its CA: the first open names it, every later one must be of the same CA (several nodes of one
 * CA share a database; a node set up with another CA's folder must not write into it). */
static ct_err ca_identity_tx(ct_db *db, void *ctx)
{
    const char *want = ctx;
    db_stmt *st = NULL;
    bool row = false;
    char have[DB_CA_ID_MAX];
    CT_GUARD_RET(db_prepare(db, k_ca_id_get, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) {
        CT_GUARD_RET(db_col_text(st, 0, have, sizeof have));
        CT_ENSURE_RET(strcmp(have, want) == 0,
                      ct_fail(CT_ERR_CONFIG, "this database belongs to CA %s, not to this folder's CA %s: a node "
                                             "serves only its own CA's database", have, want));
        return CT_OK;
    }
    CT_GUARD_RET(db_exec(db, k_ca_id_set, NULL, "ti", want, db_now()));
    return db_audit_append_tx(db, "camtrust-db", "db.ca_id", want, "ok", db->be->name);
}

/* Keeps how db was opened (copies of the strings) so that its readers open the same database. */
static ct_err remember_config(ct_db *db, const db_config *cfg)
{
    db->cfg = *cfg;
    const char *target = cfg->backend == DB_BACKEND_SQLITE ? cfg->path : cfg->url;
    if (target) {
        CT_GUARD_RET(ct_strlcpy(db->cfg_target, sizeof db->cfg_target, target));
        if (cfg->backend == DB_BACKEND_SQLITE) db->cfg.path = db->cfg_target;
        else db->cfg.url = db->cfg_target;
    }
    if (cfg->password_file) {
        CT_GUARD_RET(ct_strlcpy(db->cfg_password_file, sizeof db->cfg_password_file, cfg->password_file));
        db->cfg.password_file = db->cfg_password_file;
    }
    db->cfg.ca_id = NULL; /* checked once, at open */
    return CT_OK;
}

static void readers_close(struct db_readers *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) db_close(r->all[i]);
    (void)pthread_mutex_destroy(&r->mu);
    (void)pthread_cond_destroy(&r->cv);
    free(r);
}

ct_err db_readers_open(ct_db *db, unsigned n)
{
    ct_err rc = CT_OK;
    struct db_readers *r = NULL;
    CT_ENSURE(db && !db->read_only && !db->readers, ct_fail(CT_ERR_ARG, "db_readers_open: not a writer's handle"));
    CT_ENSURE(n >= 1 && n <= DB_READERS_MAX, ct_fail(CT_ERR_ARG, "db readers: %u (1..%d)", n, DB_READERS_MAX));
    r = calloc(1, sizeof *r);
    CT_ENSURE(r, CT_ERR_NOMEM);
    CT_ENSURE(pthread_mutex_init(&r->mu, NULL) == 0, ct_fail(CT_ERR_INTERNAL, "db readers mutex init failed"));
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        (void)pthread_mutex_destroy(&r->mu);
        free(r);
        return ct_fail(CT_ERR_INTERNAL, "db readers init failed");
    }
    while (r->n < n) {
        ct_db *rd = calloc(1, sizeof *rd);
        CT_ENSURE(rd, CT_ERR_NOMEM);
        r->all[r->n++] = rd; /* closed with the others if it fails to open */
        rd->read_only = true;
        rd->mac = db->mac;
        rd->schema_version = db->schema_version;
        rd->gc_tail = &rd->gc_head;
        CT_ENSURE(pthread_mutex_init(&rd->mu, NULL) == 0 && pthread_mutex_init(&rd->gc_mu, NULL) == 0,
                  ct_fail(CT_ERR_INTERNAL, "db reader init failed"));
        CT_GUARD(remember_config(rd, &db->cfg));
        CT_GUARD(backend_open(rd, &rd->cfg));
        r->idle[r->n_idle++] = rd;
    }
    db->readers = r;
    r = NULL;
cleanup:
    readers_close(r);
    return rc;
}

ct_err db_open_config(const db_config *cfg, const db_audit_mac *mac, ct_db **out)
{
    ct_err rc = CT_OK;
    ct_db *db = NULL;
    CT_ENSURE(cfg && out, ct_fail(CT_ERR_ARG, "db_open: no configuration"));
    CT_ENSURE(!mac || (mac->fn && mac->key), ct_fail(CT_ERR_ARG, "db_open: a MAC without its functions"));
    db = calloc(1, sizeof *db);
    CT_ENSURE(db, CT_ERR_NOMEM);
    db->be = &db_backend_sqlite;
    if (mac) db->mac = *mac;
    CT_ENSURE(pthread_mutex_init(&db->mu, NULL) == 0, ct_fail(CT_ERR_INTERNAL, "db mutex init failed"));
    CT_ENSURE(pthread_mutex_init(&db->gc_mu, NULL) == 0, ct_fail(CT_ERR_INTERNAL, "db group commit init failed"));
    db->gc_tail = &db->gc_head;
    CT_GUARD(remember_config(db, cfg));
    CT_GUARD(backend_open(db, &db->cfg));
    CT_GUARD(db_call(db, false, read_version, NULL));
    db->copy_target = cfg->copy_target;
    if (db->copy_target) CT_GUARD(db_call(db, false, target_empty, NULL));
    if (mac) CT_GUARD(db_call(db, true, audit_key_ready, NULL));
    /* A copy target stays empty until db_copy: its schema and rows are one transaction, which a kill leaves out. */
    for (int v = db->schema_version + 1; !db->copy_target && v <= db_n_migrations; v++) {
        CT_GUARD(db_call(db, true, migrate_one, &v));
        db->schema_version = v;
    }
    if (cfg->ca_id) {
        CT_GUARD(db_check_str("CA id", cfg->ca_id, DB_CA_ID_MAX));
        CT_GUARD(db_call(db, true, ca_identity_tx, (void *)cfg->ca_id));
    }
    *out = db;
cleanup:
    if (rc != CT_OK) db_close(db);
    return rc;
}

void db_close(ct_db *db)
{
    if (!db) return;
    readers_close(db->readers);
    for (size_t i = 0; i < db->n_cached; i++) {
        db->be->finalize(db, db->cache[i]);
        free(db->cache[i]);
    }
    if (db->conn) db->be->close(db);
    (void)pthread_mutex_destroy(&db->mu);
    (void)pthread_mutex_destroy(&db->gc_mu);
    free(db);
}

int db_schema_version(ct_db *db) { return db ? db->schema_version : 0; }
