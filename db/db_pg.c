/* db backend: PostgreSQL through libpq. Statements are prepared once per connection (named, with the parameter
 * types the 't','i','z','b' string gives), `?`/`?N` become `$N`; results come as text, BYTEA decoded here. Every
 * write transaction first takes one advisory lock, so writers on every node take turns: one audit chain, one
 * Merkle log, one sequence of everything. A lost connection is re-made at the next call (statements re-prepared);
 * the call that lost it fails with CT_ERR_UNAVAILABLE and its transaction is gone (PostgreSQL rolled it back).
 * A write's wait for the lock is bounded (db_config.lock_wait_ms: then CT_ERR_UNAVAILABLE, rolled back), and so is
 * its transaction's idleness (idle_tx_ms): the server ends the session of a node stalled holding the lock. */
#define _POSIX_C_SOURCE 200809L
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "db_backend_priv.h"

/* The writers' lock: one per database (advisory locks are per database), and a database holds one CA. */
#define PG_WRITE_LOCK "SELECT pg_advisory_xact_lock(7162819382734521001)"
#define PG_MAX_PARAMS 32
#define PG_BYTEAOID 17
#define PG_BOOLOID 16

typedef struct {
    PGconn *c;
    PGresult *err;      /* the last failed result (its message and SQLSTATE), or NULL */
    char err_msg[256];  /* the last failure without a result (connection) */
    unsigned generation; /* grows with every reconnection: statements prepared before are gone */
    unsigned next_name;
    bool in_tx;
    int64_t used_ms;    /* when the connection last answered (ct_now_ms) */
    char begin_write[256]; /* BEGIN, the write transaction's bounds, the writers' lock */
} pg_conn;

typedef struct {
    char *text;          /* the SQL with $N placeholders */
    int nparams;
    bool own_savepoint;      /* may fail on a constraint that the caller handles: run inside its own savepoint */
    char name[24];
    unsigned prepared_gen; /* 0: not prepared on this connection */
    Oid types[PG_MAX_PARAMS];
    char *vals[PG_MAX_PARAMS];
    int lens[PG_MAX_PARAMS], fmts[PG_MAX_PARAMS];
    bool run;            /* executed since the last bind */
    PGresult *res;
    int row, nrows;
    int64_t changes;
    uint8_t **blobs;     /* decoded BYTEA of the current row, per column (NULL: not decoded yet) */
    size_t *blob_lens;
    int nblobs;
} pg_stmt;

#define C(db) ((pg_conn *)(db)->conn)
#define S(st) ((pg_stmt *)(st)->impl)

static void set_err(pg_conn *pc, PGresult *res)
{
    if (pc->err) PQclear(pc->err);
    pc->err = res;
    pc->err_msg[0] = '\0';
}

/* The first line of a libpq message (they end in newlines and may carry DETAIL lines), cut to fit. */
static void first_line(char *dst, size_t max, const char *src)
{
    size_t n = src ? strcspn(src, "\n") : 0;
    if (n >= max) n = max - 1;
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Whether the last error is the connection's (lost, or the server shutting down), not the statement's. */
static bool pg_lost(const pg_conn *pc)
{
    const char *state = pc->err ? PQresultErrorField(pc->err, PG_DIAG_SQLSTATE) : NULL;
    return !pc->c || PQstatus(pc->c) != CONNECTION_OK || (state && strncmp(state, "08", 2) == 0) ||
           (state && (strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0));
}

static ct_err pg_fail(ct_db *db, const char *what)
{
    pg_conn *pc = C(db);
    char msg[256] = "";
    const char *state = NULL;
    if (pc->err) {
        state = PQresultErrorField(pc->err, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(pc->err, PG_DIAG_MESSAGE_PRIMARY);
        first_line(msg, sizeof msg, m ? m : PQresultErrorMessage(pc->err));
    } else if (pc->err_msg[0]) {
        first_line(msg, sizeof msg, pc->err_msg);
    } else if (pc->c) {
        first_line(msg, sizeof msg, PQerrorMessage(pc->c));
    }
    /* A 503's reason is told to whoever asked (anyone, for the log's proofs): libpq's text names the database's
     * hosts, addresses and ports, so it is the operator's only, in its own line. lock_not_available: the write's
     * wait for a lock ran out (lock_wait_ms), its transaction is rolled back. */
    bool busy = state && strcmp(state, "55P03") == 0;
    if (busy || pg_lost(pc)) {
        ct_log(CT_LOG_WARN, "db.unavailable", "backend=postgresql what=%s error=%s", what,
               CT_LOGQ(msg[0] ? msg : "no connection"));
        return ct_fail(CT_ERR_UNAVAILABLE, "%s: PostgreSQL %s: ask again later", what,
                       busy ? "busy (a lock was not granted in time)" : "unavailable");
    }
    if (state && (strcmp(state, "23505") == 0)) return db_fail_exists(db, what, msg);
    return ct_fail(CT_ERR_DB, "%s: %s", what, msg);
}

/* Runs a command without parameters; fails on anything but success. */
static ct_err run(ct_db *db, const char *sql, const char *what)
{
    pg_conn *pc = C(db);
    PGresult *res = PQexec(pc->c, sql);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        PQclear(res);
        return CT_OK;
    }
    set_err(pc, res);
    return pg_fail(db, what);
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("relation already exists, skipping") are not the CA's news */
}

static ct_err session_setup(ct_db *db)
{
    PQsetNoticeProcessor(C(db)->c, quiet, NULL);
    /* The answer leaves only after the commit is durable (and the migrations read one way on every node). */
    CT_GUARD_RET(run(db, "SET synchronous_commit = on; SET client_min_messages = warning; SET TIME ZONE 'UTC'",
                     "session settings"));
    return db->read_only ? run(db, "SET default_transaction_read_only = on", "read-only reader") : CT_OK;
}

/* The connection string names the server, never the password (that comes from db.password_file): command lines
 * and configs are read by more eyes than a 0600 file. */
static ct_err url_check(const char *url)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    if (!opts) {
        char msg[256] = "out of memory";
        if (err) first_line(msg, sizeof msg, err);
        PQfreemem(err);
        return ct_fail(CT_ERR_CONFIG, "db.url is not a libpq connection string: %s", msg);
    }
    bool has_password = false;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) has_password = true;
    PQconninfoFree(opts);
    return has_password ? ct_fail(CT_ERR_CONFIG, "db.url holds a password: put it in db.password_file") : CT_OK;
}

/* Bounds set for each write transaction alone (SET LOCAL): a reader's snapshot may stand idle while its rows are
 * worked through, and a bound left 0 keeps what the server or the role says. */
static ct_err begin_write_sql(const db_config *cfg, char *sql, size_t max)
{
    char wait[64] = "", idle[80] = "";
    if (cfg->lock_wait_ms > 0)
        CT_GUARD_RET(ct_snprintf(wait, sizeof wait, "SET LOCAL lock_timeout = %lld; ", (long long)cfg->lock_wait_ms));
    if (cfg->idle_tx_ms > 0)
        CT_GUARD_RET(ct_snprintf(idle, sizeof idle, "SET LOCAL idle_in_transaction_session_timeout = %lld; ",
                                 (long long)cfg->idle_tx_ms));
    return ct_snprintf(sql, max, "BEGIN; %s%s" PG_WRITE_LOCK, wait, idle);
}

static ct_err pg_open(ct_db *db, const char *url, const char *password)
{
    CT_GUARD_RET(url_check(url));
    pg_conn *pc = calloc(1, sizeof *pc);
    CT_ENSURE_RET(pc, CT_ERR_NOMEM);
    db->conn = pc;
    pc->generation = 1;
    CT_GUARD_RET(begin_write_sql(&db->cfg, pc->begin_write, sizeof pc->begin_write));
    /* Only a server that takes writes (after the URL's own settings: they cannot undo it): the CA writes, a standby
     * may lag behind what this node wrote, and of a URL naming several hosts (a primary and its standby, whichever is
     * which after a failover) the writable one is used, at every reconnection too. */
    const char *keys[] = {"dbname", "target_session_attrs", "connect_timeout", "password", NULL};
    const char *vals[] = {url, "read-write", "5", password, NULL};
    if (!password) keys[3] = NULL;
    pc->c = PQconnectdbParams(keys, vals, 1);
    CT_ENSURE_RET(pc->c, CT_ERR_NOMEM);
    if (PQstatus(pc->c) != CONNECTION_OK) {
        char msg[256];
        first_line(msg, sizeof msg, PQerrorMessage(pc->c));
        return ct_fail(CT_ERR_UNAVAILABLE, "cannot connect to PostgreSQL (%s): %s", PQdb(pc->c) ? PQdb(pc->c) : "?",
                       msg);
    }
    return session_setup(db);
}

static void pg_close(ct_db *db)
{
    pg_conn *pc = C(db);
    if (!pc) return;
    if (pc->err) PQclear(pc->err);
    if (pc->c) PQfinish(pc->c);
    free(pc);
    db->conn = NULL;
}

/* `?` and `?N` become `$N` (outside quoted text); nparams gets the highest number. */
static ct_err translate(const char *sql, pg_stmt *s)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 3 + 1);
    CT_ENSURE_RET(out, CT_ERR_NOMEM);
    size_t o = 0;
    int next = 0, max = 0;
    bool quoted = false;
    for (size_t i = 0; i < n; i++) {
        char ch = sql[i];
        if (ch == '\'') quoted = !quoted;
        if (quoted || ch != '?') {
            out[o++] = ch;
            continue;
        }
        int num = 0;
        if (sql[i + 1] >= '0' && sql[i + 1] <= '9') {
            while (sql[i + 1] >= '0' && sql[i + 1] <= '9') num = num * 10 + (sql[++i] - '0');
        } else {
            num = ++next;
        }
        if (num > max) max = num;
        /* 3 bytes per '?' reserved: numbers below 100 */
        if (num >= 100 || ct_snprintf(out + o, n * 3 + 1 - o, "$%d", num) != CT_OK) {
            free(out);
            return ct_fail(CT_ERR_INTERNAL, "too many SQL parameters");
        }
        o += strlen(out + o);
    }
    out[o] = '\0';
    s->text = out;
    s->nparams = max;
    return max > PG_MAX_PARAMS ? ct_fail(CT_ERR_INTERNAL, "%d SQL parameters", max) : CT_OK;
}

static ct_err pg_prepare(ct_db *db, db_stmt *st)
{
    pg_stmt *s = calloc(1, sizeof *s);
    CT_ENSURE_RET(s, CT_ERR_NOMEM);
    st->impl = s;
    CT_GUARD_RET(translate(st->sql, s));
    /* The audit chain's and the log's next rows are numbered under the writers' lock: a conflict there is a bug that
     * fails the transaction anyway, and they are on every issuance's path (two round trips each saved). */
    static const char *const unchecked[] = {"INSERT INTO audit ", "INSERT INTO log_leaves "};
    const char *p = st->sql;
    while (*p == ' ') p++;
    s->own_savepoint = strncmp(p, "INSERT", 6) == 0;
    for (size_t i = 0; i < sizeof unchecked / sizeof unchecked[0]; i++)
        if (strncmp(p, unchecked[i], strlen(unchecked[i])) == 0) s->own_savepoint = false;
    return ct_snprintf(s->name, sizeof s->name, "ct%u", ++C(db)->next_name);
}

static void clear_row(pg_stmt *s)
{
    for (int i = 0; i < s->nblobs; i++) {
        free(s->blobs[i]);
        s->blobs[i] = NULL;
    }
}

static void clear_run(pg_stmt *s)
{
    clear_row(s);
    if (s->res) PQclear(s->res);
    s->res = NULL;
    s->row = -1;
    s->nrows = 0;
    s->run = false;
}

static void clear_params(pg_stmt *s)
{
    for (int i = 0; i < PG_MAX_PARAMS; i++) {
        free(s->vals[i]);
        s->vals[i] = NULL;
    }
}

static void pg_finalize(ct_db *db, db_stmt *st)
{
    (void)db;
    pg_stmt *s = S(st);
    if (!s) return;
    clear_run(s);
    clear_params(s);
    free(s->blobs);
    free(s->blob_lens);
    free(s->text);
    free(s);
    st->impl = NULL;
}

static ct_err pg_bind(ct_db *db, db_stmt *st, const db_value *v, int n)
{
    (void)db;
    pg_stmt *s = S(st);
    clear_run(s);
    clear_params(s);
    CT_ENSURE_RET(n == s->nparams,
                  ct_fail(CT_ERR_INTERNAL, "%d values for %d parameters: %.60s", n, s->nparams, st->sql));
    for (int i = 0; i < n; i++) {
        s->fmts[i] = 0;
        s->lens[i] = 0;
        if (v[i].type == 't') {
            s->types[i] = 25; /* text */
            if (!v[i].null) CT_ENSURE_RET(s->vals[i] = strdup(v[i].p), CT_ERR_NOMEM);
        } else if (v[i].type == 'i') {
            s->types[i] = 20; /* int8 */
            if (v[i].null) continue;
            CT_ENSURE_RET(s->vals[i] = malloc(24), CT_ERR_NOMEM);
            CT_GUARD_RET(ct_snprintf(s->vals[i], 24, "%lld", (long long)v[i].i));
        } else if (v[i].type == 'b') {
            CT_ENSURE_RET(v[i].n <= (size_t)INT32_MAX, ct_fail(CT_ERR_TOO_LARGE, "blob of %zu bytes", v[i].n));
            s->types[i] = PG_BYTEAOID;
            s->fmts[i] = 1;
            s->lens[i] = (int)v[i].n;
            if (v[i].null) continue;
            CT_ENSURE_RET(s->vals[i] = malloc(v[i].n ? v[i].n : 1), CT_ERR_NOMEM);
            if (v[i].n) memcpy(s->vals[i], v[i].p, v[i].n);
        } else {
            return ct_fail(CT_ERR_INTERNAL, "bad bind type '%c'", v[i].type);
        }
    }
    return CT_OK;
}

/* Prepares the statement on this connection (again after a reconnection), with the bound values' types. */
static ct_err ensure_prepared(ct_db *db, db_stmt *st)
{
    pg_conn *pc = C(db);
    pg_stmt *s = S(st);
    if (s->prepared_gen == pc->generation) return CT_OK;
    PGresult *res = PQprepare(pc->c, s->name, s->text, s->nparams, s->types);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_err(pc, res);
        return pg_fail(db, "prepare");
    }
    PQclear(res);
    s->prepared_gen = pc->generation;
    return CT_OK;
}

static ct_err execute(ct_db *db, db_stmt *st)
{
    pg_conn *pc = C(db);
    pg_stmt *s = S(st);
    CT_GUARD_RET(ensure_prepared(db, st));
    /* Inside a transaction a failed statement spoils the rest (SQLite's does not): an INSERT whose refusal the
     * caller handles runs in its own savepoint. */
    bool sp = s->own_savepoint && pc->in_tx;
    if (sp) CT_GUARD_RET(run(db, "SAVEPOINT ct_stmt", "savepoint"));
    PGresult *res = PQexecPrepared(pc->c, s->name, s->nparams, (const char *const *)s->vals, s->lens, s->fmts, 0);
    ExecStatusType status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        set_err(pc, res);
        if (sp && !pg_lost(pc)) { /* the refusal is told (and logged, once) after the rollback, which may fail first */
            PGresult *keep = pc->err;
            pc->err = NULL;
            ct_err rb = run(db, "ROLLBACK TO SAVEPOINT ct_stmt; RELEASE SAVEPOINT ct_stmt", "rollback to savepoint");
            set_err(pc, keep);
            if (rb != CT_OK) return rb;
        }
        return pg_fail(db, "step");
    }
    if (sp) {
        ct_err rc = run(db, "RELEASE SAVEPOINT ct_stmt", "release savepoint");
        if (rc != CT_OK) {
            PQclear(res);
            return rc;
        }
    }
    s->res = res;
    s->run = true;
    s->row = -1;
    s->nrows = PQntuples(res);
    const char *t = PQcmdTuples(res);
    s->changes = t && *t ? strtoll(t, NULL, 10) : 0;
    int nf = PQnfields(res);
    if (nf > s->nblobs) {
        uint8_t **b = realloc(s->blobs, (size_t)nf * sizeof *b);
        CT_ENSURE_RET(b, CT_ERR_NOMEM);
        s->blobs = b;
        size_t *l = realloc(s->blob_lens, (size_t)nf * sizeof *l);
        CT_ENSURE_RET(l, CT_ERR_NOMEM);
        s->blob_lens = l;
        for (int i = s->nblobs; i < nf; i++) s->blobs[i] = NULL;
        s->nblobs = nf;
    }
    return CT_OK;
}

static ct_err pg_step(ct_db *db, db_stmt *st, bool *row)
{
    pg_stmt *s = S(st);
    if (!s->run) CT_GUARD_RET(execute(db, st));
    clear_row(s);
    if (s->row < s->nrows) s->row++;
    *row = s->row < s->nrows;
    return CT_OK;
}

static void pg_reset(ct_db *db, db_stmt *st)
{
    (void)db;
    clear_run(S(st));
}

static int64_t pg_changes(ct_db *db, db_stmt *st)
{
    (void)db;
    return S(st)->changes;
}

static bool pg_col_is_null(db_stmt *st, int col)
{
    pg_stmt *s = S(st);
    return !s->res || s->row < 0 || s->row >= s->nrows || col >= PQnfields(s->res) || PQgetisnull(s->res, s->row, col);
}

static const char *pg_col_str(db_stmt *st, int col)
{
    pg_stmt *s = S(st);
    return pg_col_is_null(st, col) ? NULL : PQgetvalue(s->res, s->row, col);
}

static int64_t pg_col_int(db_stmt *st, int col)
{
    const char *v = pg_col_str(st, col);
    if (!v) return 0;
    if (PQftype(S(st)->res, col) == PG_BOOLOID) return v[0] == 't';
    return strtoll(v, NULL, 10);
}

static const void *pg_col_blob(db_stmt *st, int col, size_t *len)
{
    pg_stmt *s = S(st);
    *len = 0;
    const char *v = pg_col_str(st, col);
    if (!v) return NULL;
    if (PQftype(s->res, col) != PG_BYTEAOID) { /* text read as bytes */
        *len = (size_t)PQgetlength(s->res, s->row, col);
        return v;
    }
    if (!s->blobs[col]) {
        size_t n = 0;
        unsigned char *p = PQunescapeBytea((const unsigned char *)v, &n);
        if (!p) return NULL;
        s->blobs[col] = malloc(n ? n : 1);
        if (s->blobs[col] && n) memcpy(s->blobs[col], p, n);
        PQfreemem(p);
        if (!s->blobs[col]) return NULL;
        s->blob_lens[col] = n;
    }
    *len = s->blob_lens[col];
    return s->blobs[col];
}

static ct_err pg_exec_script(ct_db *db, const char *sql, const char *what) { return run(db, sql, what); }

/* A connection idle this long is asked whether it still stands before a call uses it: a server restarted meanwhile
 * would otherwise fail that call (503) rather than the probe. Busy connections are not asked. */
#define PG_IDLE_PROBE_MS 1000

/* A lost connection is re-made here, before a call's first statement; what was prepared is prepared again. */
static ct_err reconnect_if_lost(ct_db *db)
{
    pg_conn *pc = C(db);
    int64_t now = ct_now_ms();
    if (PQstatus(pc->c) == CONNECTION_OK && now - pc->used_ms > PG_IDLE_PROBE_MS) {
        PGresult *res = PQexec(pc->c, "");
        if (res) PQclear(res);
    }
    pc->used_ms = now;
    if (PQstatus(pc->c) == CONNECTION_OK) return CT_OK;
    PQreset(pc->c);
    pc->generation++;
    if (PQstatus(pc->c) != CONNECTION_OK) {
        set_err(pc, NULL);
        first_line(pc->err_msg, sizeof pc->err_msg, PQerrorMessage(pc->c));
        return pg_fail(db, "reconnect");
    }
    ct_log(CT_LOG_INFO, "db.reconnected", "backend=postgresql");
    return session_setup(db);
}

static ct_err pg_begin(ct_db *db, bool write)
{
    /* A read sees one snapshot; a write takes the writers' lock first, and reads after it (READ COMMITTED) see
     * everything committed before it was granted. */
    CT_GUARD_RET(run(db, write ? C(db)->begin_write : "BEGIN ISOLATION LEVEL REPEATABLE READ", "begin"));
    C(db)->in_tx = true;
    return CT_OK;
}

static bool pg_conn_lost(ct_db *db) { return pg_lost(C(db)); }

static ct_err pg_commit(ct_db *db)
{
    ct_err rc = run(db, "COMMIT", "commit");
    if (rc == CT_OK) C(db)->in_tx = false;
    return rc;
}

static void pg_rollback(ct_db *db)
{
    pg_conn *pc = C(db);
    pc->in_tx = false;
    if (PQstatus(pc->c) != CONNECTION_OK || PQtransactionStatus(pc->c) == PQTRANS_IDLE) return;
    PGresult *res = PQexec(pc->c, "ROLLBACK");
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
        ct_log(CT_LOG_ERROR, "db.rollback_failed", "error=%s", CT_LOGQ(PQerrorMessage(pc->c)));
    if (res) PQclear(res);
}

/* The schema version in a table of its own (PostgreSQL has no user_version). */
static const char k_version_table[] = "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
                                      " AND tablename = 'camtrust_schema'";
static const char k_version[] = "SELECT version FROM camtrust_schema WHERE id = 1";

static ct_err pg_version_get(ct_db *db, int64_t *version)
{
    int64_t exists = db->schema_version > 0; /* the first migration made it: one query in each write transaction */
    *version = 0;
    if (!exists) CT_GUARD_RET(db_query_int(db, k_version_table, &exists, ""));
    if (!exists) return CT_OK;
    ct_err rc = db_query_int(db, k_version, version, "");
    return rc == CT_ERR_NOT_FOUND ? CT_OK : rc;
}

static ct_err pg_version_set(ct_db *db, int version)
{
    char sql[256];
    CT_GUARD_RET(ct_snprintf(sql, sizeof sql,
                             "CREATE TABLE IF NOT EXISTS camtrust_schema (id INT PRIMARY KEY CHECK (id = 1),"
                             " version INT NOT NULL); INSERT INTO camtrust_schema (id, version) VALUES (1, %d)"
                             " ON CONFLICT (id) DO UPDATE SET version = %d",
                             version, version));
    return run(db, sql, "set schema version");
}

const db_backend db_backend_pg = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .ready = reconnect_if_lost,
    .lost = pg_conn_lost,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .bind = pg_bind,
    .step = pg_step,
    .reset = pg_reset,
    .changes = pg_changes,
    .col_int = pg_col_int,
    .col_str = pg_col_str,
    .col_blob = pg_col_blob,
    .col_is_null = pg_col_is_null,
    .exec_script = pg_exec_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .version_get = pg_version_get,
    .version_set = pg_version_set,
    .fail = pg_fail,
};
