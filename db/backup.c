/* Backup and restore of the SQLite database (db_backup.h). These open connections of their own on files given by
 * path, so they speak to SQLite directly (sqlite3_open_v2, sqlite3_backup_*, sqlite3_exec, sqlite3_prepare_v2):
 * db_prepare and the other helpers work on the CA's ct_db only. */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <string.h>

#include "db_backup.h"

#define BUSY_MS 10000

/* A connection of its own to the file at `path` (never created here). */
static ct_err conn_open_as(const char *path, const char *name, int flags, sqlite3 **out)
{
    *out = NULL;
    int r = sqlite3_open_v2(path, out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | flags, NULL);
    if (r == SQLITE_OK && sqlite3_busy_timeout(*out, BUSY_MS) == SQLITE_OK) return CT_OK;
    ct_err rc = ct_fail(CT_ERR_DB, "cannot open %s: %s", name, *out ? sqlite3_errmsg(*out) : sqlite3_errstr(r));
    sqlite3_close(*out);
    *out = NULL;
    return rc;
}

static ct_err conn_open(const char *path, const char *name, sqlite3 **out)
{
    return conn_open_as(path, name, 0, out);
}

static ct_err conn_exec(sqlite3 *h, const char *path, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) == SQLITE_OK) return CT_OK;
    ct_err rc = ct_fail(CT_ERR_DB, "%s: %s: %s", path, sql, msg ? msg : sqlite3_errmsg(h));
    sqlite3_free(msg);
    return rc;
}

/* The first column of the first row as an integer (0 without rows); `text` (may be NULL) gets it as text. */
static ct_err conn_query(sqlite3 *h, const char *path, const char *sql, const char *bind, int64_t *out, ct_buf *text)
{
    sqlite3_stmt *st = NULL;
    ct_err rc = CT_OK;
    *out = 0;
    int r = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
    if (r == SQLITE_OK && bind) r = sqlite3_bind_text(st, 1, bind, -1, SQLITE_STATIC);
    if (r == SQLITE_OK) r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        const unsigned char *s = sqlite3_column_text(st, 0);
        if (text && s) {
            size_t n = (size_t)sqlite3_column_bytes(st, 0);
            rc = ct_buf_alloc(text, n + 1);
            if (rc == CT_OK) rc = ct_buf_append(text, s, n);
            if (rc == CT_OK) rc = ct_buf_append(text, "", 1);
            if (rc == CT_OK) text->len = n;
        }
    } else if (r != SQLITE_DONE) {
        rc = ct_fail(CT_ERR_INTEGRITY, "%s: %s", path, sqlite3_errmsg(h));
    }
    sqlite3_finalize(st);
    return rc;
}

ct_err db_backup_write(const char *src, const char *dst)
{
    ct_err rc = CT_OK;
    sqlite3 *from = NULL, *to = NULL;
    sqlite3_backup *b = NULL;
    CT_GUARD(conn_open(src, src, &from));
    /* No link followed: a backup run as root may write into a folder of another user's, who could put one to a
     * database of root's in place of the temporary made for it. */
    CT_GUARD(conn_open_as(dst, dst, SQLITE_OPEN_NOFOLLOW, &to));
    b = sqlite3_backup_init(to, "main", from, "main");
    CT_ENSURE_MSG(b, CT_ERR_DB, "cannot back up %s: %s", src, sqlite3_errmsg(to));
    /* All pages in one step: one read transaction, one snapshot. In steps, every write by the server would restart
     * the copy from the first page, and a busy CA might never let it finish. */
    int r;
    while ((r = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || r == SQLITE_LOCKED) sqlite3_sleep(20);
    int fin = sqlite3_backup_finish(b);
    b = NULL;
    CT_ENSURE_MSG(r == SQLITE_DONE && fin == SQLITE_OK, CT_ERR_DB, "cannot back up %s: %s", src, sqlite3_errmsg(to));
    /* The copy as one file: nothing beside it to lose on the way to the backup medium. */
    CT_GUARD(conn_exec(to, dst, "PRAGMA journal_mode = DELETE"));
cleanup:
    if (b) sqlite3_backup_finish(b);
    if (to && sqlite3_close(to) != SQLITE_OK && rc == CT_OK) rc = ct_fail(CT_ERR_DB, "cannot close %s", dst);
    sqlite3_close(from);
    return rc;
}

ct_err db_backup_check(const char *path, const char *name, db_backup_info *info)
{
    ct_err rc = CT_OK;
    sqlite3 *h = NULL;
    ct_buf verdict = CT_BUF_INIT;
    int64_t unused = 0, has_log = 0;
    memset(info, 0, sizeof *info);
    CT_GUARD(conn_open(path, name, &h));
    /* A file that is not a database fails here, before integrity_check can say anything. */
    CT_GUARD(conn_query(h, name, "PRAGMA integrity_check(1)", NULL, &unused, &verdict));
    CT_ENSURE_MSG(verdict.data && strcmp((const char *)verdict.data, "ok") == 0, CT_ERR_INTEGRITY, "%s is damaged: %s",
                  name, verdict.data ? (const char *)verdict.data : "no answer from integrity_check");
    CT_GUARD(conn_query(h, name, "PRAGMA user_version", NULL, &info->schema_version, NULL));
    CT_ENSURE_MSG(info->schema_version > 0, CT_ERR_INTEGRITY, "%s is not a camtrust CA database (no schema)", name);
    CT_GUARD(conn_query(h, name, "SELECT coalesce(max(seq), 0) FROM audit", NULL, &info->audit_entries, NULL));
    CT_GUARD(conn_query(h, name, "SELECT count(*) FROM sqlite_master WHERE name = 'log_checkpoints'", NULL, &has_log,
                        NULL));
    if (!has_log) goto cleanup; /* a CA from before the issuance log */
    CT_GUARD(conn_query(h, name, "SELECT count(*) FROM log_leaves", NULL, &info->log_size, NULL));
    CT_GUARD(conn_query(h, name, "SELECT count(*) FROM log_checkpoints", NULL, &info->checkpoints, NULL));
    CT_GUARD(conn_query(h, name, "SELECT tree_size FROM log_checkpoints ORDER BY id DESC LIMIT 1", NULL,
                        &info->checkpoint_size, NULL));
    CT_GUARD(conn_query(h, name, "SELECT audit_entries FROM log_checkpoints ORDER BY id DESC LIMIT 1", NULL,
                        &info->checkpoint_audit_entries, NULL));
cleanup:
    ct_buf_free(&verdict);
    sqlite3_close(h);
    return rc;
}

ct_err db_backup_names_cert(const char *path, const char *file, const uint8_t sha256[32], bool *recorded,
                            bool *matches)
{
    ct_err rc = CT_OK;
    sqlite3 *h = NULL;
    ct_buf detail = CT_BUF_INIT;
    char want[8 + 65];
    int64_t unused = 0;
    *recorded = *matches = false;
    CT_GUARD(ct_snprintf(want, sizeof want, "sha256="));
    CT_GUARD(ct_hex_encode(sha256, 32, want + 7, sizeof want - 7));
    CT_GUARD(conn_open(path, path, &h));
    CT_GUARD(conn_query(h, path,
                        "SELECT detail FROM audit WHERE action IN ('ca.cert', 'ca.renew') AND subject = ?1"
                        " AND outcome = 'ok' ORDER BY seq DESC LIMIT 1",
                        file, &unused, &detail));
    *recorded = detail.data != NULL;
    /* v=2 key=value pairs, one space apart; hex is never escaped */
    for (const char *d = detail.data ? (const char *)detail.data : NULL; d && !*matches; d = strchr(d, ' ')) {
        if (*d == ' ') d++;
        size_t n = strlen(want);
        *matches = strncmp(d, want, n) == 0 && (d[n] == ' ' || d[n] == '\0');
    }
cleanup:
    ct_buf_free(&detail);
    sqlite3_close(h);
    return rc;
}

ct_err db_backup_ca_id(const char *path, char *out, size_t max)
{
    ct_err rc = CT_OK;
    sqlite3 *h = NULL;
    ct_buf id = CT_BUF_INIT;
    int64_t has = 0;
    CT_GUARD(conn_open(path, path, &h));
    CT_GUARD(conn_query(h, path, "SELECT count(*) FROM sqlite_master WHERE name = 'ca_identity'", NULL, &has, NULL));
    if (has) CT_GUARD(conn_query(h, path, "SELECT ca_id FROM ca_identity LIMIT 1", NULL, &has, &id));
    CT_ENSURE(id.data, CT_ERR_NOT_FOUND);
    CT_GUARD(ct_strlcpy(out, max, (const char *)id.data));
cleanup:
    ct_buf_free(&id);
    sqlite3_close(h);
    return rc;
}

ct_err db_backup_newest_checkpoint(const char *path, ct_buf *note)
{
    ct_err rc = CT_OK;
    sqlite3 *h = NULL;
    int64_t unused = 0;
    CT_GUARD(conn_open(path, path, &h));
    CT_GUARD(conn_query(h, path, "SELECT note FROM log_checkpoints ORDER BY id DESC LIMIT 1", NULL, &unused, note));
    if (!note->data) rc = CT_ERR_NOT_FOUND;
cleanup:
    sqlite3_close(h);
    return rc;
}

ct_err db_backup_audit_head(const char *path, int64_t *entries, uint8_t hash[32])
{
    ct_err rc = CT_OK;
    sqlite3 *h = NULL;
    ct_buf hex = CT_BUF_INIT;
    size_t n = 0;
    int64_t unused = 0;
    memset(hash, 0, 32);
    CT_GUARD(conn_open(path, path, &h));
    CT_GUARD(conn_query(h, path, "SELECT coalesce(max(seq), 0) FROM audit", NULL, entries, NULL));
    if (*entries == 0) goto cleanup;
    CT_GUARD(conn_query(h, path, "SELECT lower(hex(hash)) FROM audit ORDER BY seq DESC LIMIT 1", NULL, &unused,
                        &hex));
    CT_ENSURE_MSG(hex.data && ct_hex_decode((const char *)hex.data, hash, 32, &n) == CT_OK && n == 32, CT_ERR_INTEGRITY,
                  "%s: the newest audit entry has no hash", path);
cleanup:
    ct_buf_free(&hex);
    sqlite3_close(h);
    return rc;
}

ct_err db_backup_fold_wal(const char *path)
{
    ct_err rc = CT_OK;
    sqlite3 *h = NULL;
    int64_t busy = 0;
    CT_GUARD(conn_open(path, path, &h));
    /* (busy, pages in the WAL, pages folded): busy 1 means a reader or writer kept it from finishing */
    CT_GUARD(conn_query(h, path, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, &busy, NULL));
    CT_ENSURE_MSG(busy == 0, CT_ERR_DB, "%s is in use by another process (stop the CA's server and commands first)", path);
cleanup:
    if (h && sqlite3_close(h) != SQLITE_OK && rc == CT_OK) rc = ct_fail(CT_ERR_DB, "cannot close %s", path);
    return rc;
}
