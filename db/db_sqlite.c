/* db backend: SQLite (WAL, synchronous=FULL, foreign keys), one file beside the CA. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/core/merkle.h"
#include "db_backend_priv.h"

#define H(db) ((sqlite3 *)(db)->conn)
#define ST(st) ((sqlite3_stmt *)(st)->impl)

static ct_err lite_fail(ct_db *db, const char *what)
{
    int ext = sqlite3_extended_errcode(H(db));
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return db_fail_exists(db, what, sqlite3_errmsg(H(db)));
    return ct_fail(CT_ERR_DB, "%s: %s", what, sqlite3_errmsg(H(db)));
}

/* ct_leaf_hash(der): the SQL function the log's migration uses to log the certificates recorded before it. */
static void leaf_hash_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    uint8_t h[CT_MERKLE_HASH_LEN];
    const void *p = argc == 1 ? sqlite3_value_blob(argv[0]) : NULL;
    int n = argc == 1 ? sqlite3_value_bytes(argv[0]) : 0;
    if (!p || n <= 0 || ct_merkle_leaf_hash(p, (size_t)n, h) != CT_OK) {
        sqlite3_result_error(ctx, "ct_leaf_hash: no certificate", -1);
        return;
    }
    sqlite3_result_blob(ctx, h, sizeof h, SQLITE_TRANSIENT);
}

/* Narrows an existing file to owner-only (ENOENT is fine); `create` makes it first, empty, with that mode. */
static ct_err file_private(const char *path, bool create)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0 && errno == ENOENT && !create) return CT_OK;
    CT_ENSURE_RET(fd >= 0, ct_fail(CT_ERR_DB, "cannot open %s: %s", path, strerror(errno)));
    int r = fstat(fd, &st) != 0 || ((st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) != 0) ? errno : 0;
    close(fd);
    return r ? ct_fail(CT_ERR_DB, "cannot make %s private: %s", path, strerror(r)) : CT_OK;
}

/* The database holds the CA's records: owner only. SQLite creates its WAL and shared-memory files with the
 * database file's mode, so the file is made first with 0600; files an older version made are narrowed. */
static ct_err db_files_private(const char *path)
{
    char side[4096];
    CT_GUARD_RET(file_private(path, true));
    static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        CT_GUARD_RET(ct_snprintf(side, sizeof side, "%s%s", path, suffixes[i]));
        CT_GUARD_RET(file_private(side, false));
    }
    return CT_OK;
}

static ct_err lite_exec_script(ct_db *db, const char *sql, const char *what)
{
    return sqlite3_exec(H(db), sql, NULL, NULL, NULL) == SQLITE_OK ? CT_OK : lite_fail(db, what);
}

/* Turning a new file to WAL needs its exclusive lock. When several processes open it at once, SQLite answers BUSY
 * at once, without its busy handler, to the one whose wait could deadlock; the locks are gone after the reset, so
 * trying again within the busy timeout is safe. */
static ct_err lite_enable_wal(ct_db *db)
{
    enum { PAUSE_MS = 10, TRIES = 5000 / PAUSE_MS };
    sqlite3_stmt *st = NULL;
    CT_ENSURE_RET(sqlite3_prepare_v2(H(db), "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK,
                  lite_fail(db, "journal mode"));
    int r = SQLITE_BUSY;
    for (int i = 0; i < TRIES && (r & 0xff) == SQLITE_BUSY; i++) {
        if (i > 0) (void)sqlite3_sleep(PAUSE_MS);
        r = sqlite3_step(st);
        if (r != SQLITE_ROW) (void)sqlite3_reset(st);
    }
    const unsigned char *mode = r == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
    ct_err rc = mode && strcmp((const char *)mode, "wal") == 0 ? CT_OK
                : mode ? ct_fail(CT_ERR_DB, "cannot enable WAL (journal_mode=%s)", (const char *)mode)
                       : lite_fail(db, "cannot enable WAL");
    (void)sqlite3_finalize(st);
    return rc;
}

/* Each issuance of a group commit is written inside its own SAVEPOINT, whose journal (the original of every page it
 * changes, some 80 KB) SQLite spills to a temporary file past 64 KB: opened, written and removed once per batch.
 * Kept in memory up to 1 MiB instead; larger statement journals (migrations) still spill. No memory statistics
 * (nothing reads them): they put one process-wide mutex around every SQLite allocation, which the connections'
 * threads queued on (futex waits under load). */
static void lite_configure(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 1 << 20);
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static ct_err lite_open(ct_db *db, const char *path, const char *password)
{
    (void)password;
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    (void)pthread_once(&configured, lite_configure); /* before SQLite initializes (the first open), or never */
    sqlite3 *h = NULL;
    /* A reader opens files its writer already made private, and must not: closing any descriptor of the database
     * file drops every POSIX lock this process holds on it, the writer's included, and another process would then
     * act as if no one had it open (checkpoint and remove the WAL under us). */
    if (!db->read_only) CT_GUARD_RET(db_files_private(path));
    /* NOMUTEX: our own mutex already serialises every use of the connection. */
    int r = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    db->conn = h;
    CT_ENSURE_RET(r == SQLITE_OK,
                  ct_fail(CT_ERR_DB, "cannot open %s: %s", path, h ? sqlite3_errmsg(h) : sqlite3_errstr(r)));
    CT_ENSURE_RET(sqlite3_extended_result_codes(h, 1) == SQLITE_OK && sqlite3_busy_timeout(h, 5000) == SQLITE_OK,
                  ct_fail(CT_ERR_DB, "cannot configure %s", path));
    CT_GUARD_RET(lite_enable_wal(db));
    /* FULL: the issued certificate is on disk before the CA answers. */
    CT_GUARD_RET(lite_exec_script(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", "pragmas"));
    if (db->read_only) CT_GUARD_RET(lite_exec_script(db, "PRAGMA query_only = ON", "read-only reader"));
    r = sqlite3_create_function(h, "ct_leaf_hash", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, leaf_hash_fn, NULL,
                                NULL);
    return r == SQLITE_OK ? CT_OK : lite_fail(db, "register ct_leaf_hash");
}

/* The commit leaves the WAL sync to lite_sync: NORMAL still syncs the WAL before each checkpoint and the database
 * after it, so a frame checkpointed before lite_sync is durable too. The WAL file stays while this connection is
 * open (SQLite removes it only at the last close), so a descriptor of our own syncs the same file. */
static ct_err lite_defer_sync(ct_db *db)
{
    const char *main_file = sqlite3_db_filename(H(db), "main");
    char wal[1100];
    CT_ENSURE_RET(main_file && *main_file, ct_fail(CT_ERR_DB, "the database has no file to sync"));
    CT_GUARD_RET(ct_snprintf(wal, sizeof wal, "%s-wal", main_file));
    int fd = open(wal, O_RDONLY | O_CLOEXEC);
    CT_ENSURE_RET(fd >= 0, ct_fail(CT_ERR_DB, "cannot open %s: %s", wal, strerror(errno)));
    ct_err rc = lite_exec_script(db, "PRAGMA synchronous = NORMAL", "deferred sync");
    if (rc != CT_OK) {
        (void)close(fd);
        return rc;
    }
    db->sync_fd = fd;
    return CT_OK;
}

static ct_err lite_sync(ct_db *db)
{
    return fdatasync(db->sync_fd) == 0 ? CT_OK : ct_fail(CT_ERR_DB, "syncing the WAL failed: %s", strerror(errno));
}

static void lite_close(ct_db *db)
{
    /* With every statement finalized close cannot be busy; a failure here is a bug worth a log line. */
    if (db->conn && sqlite3_close(H(db)) != SQLITE_OK)
        ct_log(CT_LOG_ERROR, "db.close_failed", "error=%s", CT_LOGQ(sqlite3_errmsg(H(db))));
    db->conn = NULL;
    if (db->sync_deferred) (void)close(db->sync_fd); /* the WAL, never locked: closing it drops no lock */
}

static ct_err lite_prepare(ct_db *db, db_stmt *st)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(H(db), st->sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
        return lite_fail(db, "prepare");
    st->impl = s;
    return CT_OK;
}

static void lite_finalize(ct_db *db, db_stmt *st)
{
    (void)db;
    (void)sqlite3_finalize(ST(st));
    st->impl = NULL;
}

static ct_err lite_bind(ct_db *db, db_stmt *st, const db_value *v, int n)
{
    sqlite3_stmt *s = ST(st);
    /* reset's result only repeats the previous run's step error, already reported then. */
    (void)sqlite3_reset(s);
    if (sqlite3_clear_bindings(s) != SQLITE_OK) return lite_fail(db, "clear bindings");
    for (int i = 0; i < n; i++) {
        int r;
        if (v[i].null) {
            r = sqlite3_bind_null(s, i + 1);
        } else if (v[i].type == 't') {
            r = sqlite3_bind_text(s, i + 1, v[i].p, -1, SQLITE_TRANSIENT);
        } else if (v[i].type == 'i') {
            r = sqlite3_bind_int64(s, i + 1, v[i].i);
        } else if (v[i].type == 'b') {
            if (v[i].n > (size_t)INT32_MAX) return ct_fail(CT_ERR_TOO_LARGE, "blob of %zu bytes", v[i].n);
            r = sqlite3_bind_blob(s, i + 1, v[i].p, (int)v[i].n, SQLITE_TRANSIENT);
        } else {
            return ct_fail(CT_ERR_INTERNAL, "bad bind type '%c'", v[i].type);
        }
        if (r != SQLITE_OK) return lite_fail(db, "bind");
    }
    return CT_OK;
}

static ct_err lite_step(ct_db *db, db_stmt *st, bool *row)
{
    int r = sqlite3_step(ST(st));
    if (r == SQLITE_ROW || r == SQLITE_DONE) {
        *row = (r == SQLITE_ROW);
        return CT_OK;
    }
    return lite_fail(db, "step");
}

static void lite_reset(ct_db *db, db_stmt *st)
{
    (void)db;
    (void)sqlite3_reset(ST(st));
}

static int64_t lite_changes(ct_db *db, db_stmt *st)
{
    (void)st;
    return sqlite3_changes(H(db));
}

static int64_t lite_col_int(db_stmt *st, int col) { return sqlite3_column_int64(ST(st), col); }
static const char *lite_col_str(db_stmt *st, int col) { return (const char *)sqlite3_column_text(ST(st), col); }
static bool lite_col_is_null(db_stmt *st, int col) { return sqlite3_column_type(ST(st), col) == SQLITE_NULL; }

static const void *lite_col_blob(db_stmt *st, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(ST(st), col);
    *len = p ? (size_t)sqlite3_column_bytes(ST(st), col) : 0;
    return p;
}

/* Prepared once and kept, as every statement (sqlite3_exec would parse them again on each call). */
static const char k_begin_write[] = "BEGIN IMMEDIATE";
static const char k_begin_read[] = "BEGIN";
static const char k_commit[] = "COMMIT";

static ct_err lite_run_kept(ct_db *db, const char *sql, const char *what)
{
    db_stmt *st = NULL;
    CT_GUARD_RET(db_prepare(db, sql, &st, ""));
    return sqlite3_step(ST(st)) == SQLITE_DONE ? CT_OK : lite_fail(db, what);
}

/* IMMEDIATE takes the write lock up front: read-then-write never hits SQLITE_BUSY mid-transaction. */
static ct_err lite_begin(ct_db *db, bool write) { return lite_run_kept(db, write ? k_begin_write : k_begin_read, "begin"); }

static ct_err lite_commit(ct_db *db) { return lite_run_kept(db, k_commit, "commit"); }

static void lite_rollback(ct_db *db)
{
    /* Some errors (e.g. SQLITE_FULL) already rolled back; ROLLBACK then would only fail. */
    if (!sqlite3_get_autocommit(H(db)) && sqlite3_exec(H(db), "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        ct_log(CT_LOG_ERROR, "db.rollback_failed", "error=%s", CT_LOGQ(sqlite3_errmsg(H(db))));
}

/* PRAGMA user_version holds how many migrations are applied. */
static ct_err lite_version_get(ct_db *db, int64_t *version)
{
    return db_query_int(db, "PRAGMA user_version", version, "");
}

static ct_err lite_version_set(ct_db *db, int version)
{
    char pragma[64];
    CT_GUARD_RET(ct_snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", version));
    return lite_exec_script(db, pragma, "set user_version");
}

const db_backend db_backend_sqlite = {
    .name = "sqlite",
    .open = lite_open,
    .close = lite_close,
    .prepare = lite_prepare,
    .finalize = lite_finalize,
    .bind = lite_bind,
    .step = lite_step,
    .reset = lite_reset,
    .changes = lite_changes,
    .col_int = lite_col_int,
    .col_str = lite_col_str,
    .col_blob = lite_col_blob,
    .col_is_null = lite_col_is_null,
    .exec_script = lite_exec_script,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .defer_sync = lite_defer_sync,
    .sync = lite_sync,
    .version_get = lite_version_get,
    .version_set = lite_version_set,
    .fail = lite_fail,
};
