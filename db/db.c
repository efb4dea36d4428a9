/* db: connection, migrations, SQL helpers, and the CA's records (stations, orders, certificates). */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------------------
 * Schema: numbered migrations. PRAGMA user_version holds how many are applied; each runs in its own
 * transaction together with the version bump and an audit event, so a crash leaves either all or nothing.
 * Append new migrations at the end; never edit an applied one.
 * ------------------------------------------------------------------------------------------------------- */
static const char *const k_migrations[] = {
    /* 1: the audit chain first, so every later migration is itself audited. */
    "CREATE TABLE audit ("
    "  seq INTEGER PRIMARY KEY,"
    "  ts INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, outcome TEXT NOT NULL,"
    "  detail TEXT NOT NULL,"
    "  prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),"
    "  hash BLOB NOT NULL CHECK (length(hash) = 32));"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;",

    /* 2: stations, orders and certificates. */
    "CREATE TABLE stations ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    "  cert_sha256 BLOB NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),"
    "  cert_serial_hex TEXT NOT NULL,"
    "  cert_der BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE orders ("
    "  id INTEGER PRIMARY KEY,"
    "  station_id INTEGER NOT NULL REFERENCES stations(id),"
    "  model TEXT NOT NULL,"
    "  open INTEGER NOT NULL DEFAULT 1 CHECK (open IN (0, 1)),"
    "  created_at INTEGER NOT NULL,"
    "  closed_at INTEGER);"
    "CREATE INDEX orders_station_open ON orders(station_id, open);"
    "CREATE TABLE order_serials ("
    "  order_id INTEGER NOT NULL REFERENCES orders(id),"
    "  serial TEXT NOT NULL,"
    "  PRIMARY KEY (order_id, serial));"
    "CREATE INDEX order_serials_serial ON order_serials(serial);"
    /* Backstop for the rule db_order_create checks (and names the serial for): one open order per serial. */
    "CREATE TRIGGER order_serials_one_open BEFORE INSERT ON order_serials"
    "  WHEN EXISTS (SELECT 1 FROM order_serials s JOIN orders o ON o.id = s.order_id"
    "               WHERE s.serial = NEW.serial AND o.open = 1 AND s.order_id <> NEW.order_id)"
    "  BEGIN SELECT RAISE(ABORT, 'serial is already in another open order'); END;"
    "CREATE TABLE certificates ("
    "  cert_serial_hex TEXT PRIMARY KEY,"
    "  device_serial TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  station_id INTEGER REFERENCES stations(id),"
    "  order_id INTEGER REFERENCES orders(id),"
    "  spki_sha256 BLOB NOT NULL CHECK (length(spki_sha256) = 32),"
    "  der BLOB NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'superseded', 'revoked')),"
    "  issued_at INTEGER NOT NULL);"
    /* The database itself refuses a second current certificate for a serial and profile. */
    "CREATE UNIQUE INDEX certificates_one_valid ON certificates(device_serial, profile) WHERE status = 'valid';"
    "CREATE INDEX certificates_order ON certificates(order_id);",

    /* 3: revocation. A revoked certificate has both its time and its RFC 5280 reason code, and stays revoked;
     * revocation_state counts revocations (so servers notice them) and CRLs (cRLNumber). */
    "ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;"
    "ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER CHECK (revocation_reason BETWEEN 0 AND 10);"
    "CREATE INDEX certificates_station ON certificates(station_id);"
    "CREATE INDEX certificates_device ON certificates(device_serial);"
    "CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE status = 'revoked';"
    "CREATE TRIGGER certificates_revocation_complete BEFORE UPDATE OF status ON certificates"
    "  WHEN NEW.status = 'revoked' AND (NEW.revoked_at IS NULL OR NEW.revocation_reason IS NULL)"
    "  BEGIN SELECT RAISE(ABORT, 'a revocation needs its time and reason'); END;"
    "CREATE TRIGGER certificates_revocation_final BEFORE UPDATE ON certificates WHEN OLD.status = 'revoked'"
    "  BEGIN SELECT RAISE(ABORT, 'a revoked certificate stays revoked'); END;"
    "CREATE TABLE revocation_state ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  epoch INTEGER NOT NULL,"
    "  crl_number INTEGER NOT NULL);"
    "INSERT INTO revocation_state (id, epoch, crl_number) VALUES (1, 0, 0);",

    /* 4: officers (security officers and auditors, each with its client certificate), and indexes for what they
     * search: certificates by issuance time, audit entries by outcome and time (denials). */
    "CREATE TABLE officers ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL CHECK (role IN ('auditor', 'officer')),"
    "  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    "  cert_sha256 BLOB NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),"
    "  cert_serial_hex TEXT NOT NULL,"
    "  cert_der BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX certificates_issued ON certificates(issued_at);"
    "CREATE INDEX audit_outcome ON audit(outcome, ts);",

    /* 5: the issuance log (db_log.h): an RFC 9162 Merkle tree over the certificates' DER in issuance order, and its
     * signed tree heads, both append-only. Certificates recorded before it are logged now, in the order they were
     * recorded (ct_leaf_hash is db/log.c's SQL function). */
    "CREATE TABLE log_leaves ("
    "  leaf_index INTEGER PRIMARY KEY CHECK (leaf_index >= 0),"
    "  cert_serial_hex TEXT NOT NULL UNIQUE REFERENCES certificates(cert_serial_hex),"
    "  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32));"
    "CREATE TABLE log_tree_heads ("
    "  id INTEGER PRIMARY KEY,"
    "  tree_size INTEGER NOT NULL CHECK (tree_size >= 0),"
    "  timestamp_ms INTEGER NOT NULL,"
    "  root_hash BLOB NOT NULL CHECK (length(root_hash) = 32),"
    "  signature BLOB NOT NULL);"
    "CREATE TRIGGER log_leaves_no_update BEFORE UPDATE ON log_leaves"
    "  BEGIN SELECT RAISE(ABORT, 'the issuance log is append-only'); END;"
    "CREATE TRIGGER log_leaves_no_delete BEFORE DELETE ON log_leaves"
    "  BEGIN SELECT RAISE(ABORT, 'the issuance log is append-only'); END;"
    "CREATE TRIGGER log_tree_heads_no_update BEFORE UPDATE ON log_tree_heads"
    "  BEGIN SELECT RAISE(ABORT, 'tree heads are append-only'); END;"
    "CREATE TRIGGER log_tree_heads_no_delete BEFORE DELETE ON log_tree_heads"
    "  BEGIN SELECT RAISE(ABORT, 'tree heads are append-only'); END;"
    "INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash)"
    "  SELECT row_number() OVER (ORDER BY rowid) - 1, cert_serial_hex, ct_leaf_hash(der) FROM certificates;",

    /* 6: the operations issuing CA's CRL (revoked viewers) counts its own cRLNumber: RFC 5280 numbers are per
     * issuer, and the device CRL's sequence stays as it was. */
    "ALTER TABLE revocation_state ADD COLUMN ops_crl_number INTEGER NOT NULL DEFAULT 0;",

    /* 7: a device serial is also a DNS name, so serials are one case-insensitively: indexes to find them that way
     * and backstops for the rules db_order_create and issuance check (and name the serial for). Rows already
     * recorded stay as they are. An order line may re-provision a serial whose certificates were revoked:
     * revoked_seen counts its revoked certificates when the line was opened, and the line allows issuance only
     * while no later revocation of that serial exists; such a line may sit beside the serial's line in another
     * open order (the newest line is the one enrollment uses). */
    "CREATE INDEX order_serials_serial_nocase ON order_serials(serial COLLATE NOCASE);"
    "CREATE INDEX certificates_device_nocase ON certificates(device_serial COLLATE NOCASE);"
    "ALTER TABLE order_serials ADD COLUMN revoked_seen INTEGER NOT NULL DEFAULT 0 CHECK (revoked_seen >= 0);"
    "DROP TRIGGER order_serials_one_open;"
    "CREATE TRIGGER order_serials_one_open BEFORE INSERT ON order_serials"
    "  WHEN NEW.revoked_seen = 0 AND EXISTS (SELECT 1 FROM order_serials s JOIN orders o ON o.id = s.order_id"
    "               WHERE s.serial = NEW.serial AND o.open = 1 AND s.order_id <> NEW.order_id)"
    "  BEGIN SELECT RAISE(ABORT, 'serial is already in another open order'); END;"
    "CREATE TRIGGER order_serials_one_case BEFORE INSERT ON order_serials"
    "  WHEN EXISTS (SELECT 1 FROM order_serials WHERE serial = NEW.serial COLLATE NOCASE AND serial <> NEW.serial)"
    "  BEGIN SELECT RAISE(ABORT, 'serial differs only by case from an ordered one'); END;"
    "CREATE TRIGGER certificates_one_case BEFORE INSERT ON certificates"
    "  WHEN NEW.order_id IS NOT NULL AND NEW.profile NOT IN ('viewer', 'station', 'officer') AND EXISTS ("
    "    SELECT 1 FROM certificates"
    "    WHERE device_serial = NEW.device_serial COLLATE NOCASE AND device_serial <> NEW.device_serial"
    "    AND profile NOT IN ('viewer', 'station', 'officer'))"
    "  BEGIN SELECT RAISE(ABORT, 'device serial differs only by case from an issued one'); END;",

    /* 8: the issuance log's checkpoints (C2SP signed notes, Ed25519 in the token), kept whole as signed, with
     * what they bind: tree size and the audit chain's length. Append-only like the tree heads. */
    "CREATE TABLE log_checkpoints ("
    "  id INTEGER PRIMARY KEY,"
    "  tree_size INTEGER NOT NULL CHECK (tree_size >= 0),"
    "  audit_entries INTEGER NOT NULL CHECK (audit_entries >= 0),"
    "  note TEXT NOT NULL);"
    "CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE ON log_checkpoints"
    "  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
    "CREATE TRIGGER log_checkpoints_no_delete BEFORE DELETE ON log_checkpoints"
    "  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;",
    /* 9: state changes are audited with what rebuilds them (rebuild.c); migrate_one writes the state as it stands
     * (db_state_baseline_tx) after this script, for the rebuild to start from. */
    "CREATE INDEX audit_action ON audit(action, seq);",
    /* 10: witnesses' cosignatures of checkpoints (c2sp.org/tlog-cosignature), one per witness and checkpoint. */
    "CREATE TABLE log_cosignatures ("
    "  id INTEGER PRIMARY KEY,"
    "  checkpoint_id INTEGER NOT NULL REFERENCES log_checkpoints(id),"
    "  witness TEXT NOT NULL,"
    "  witness_time INTEGER NOT NULL CHECK (witness_time >= 0),"
    "  line TEXT NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  UNIQUE (checkpoint_id, witness));"
    "CREATE TRIGGER log_cosignatures_no_update BEFORE UPDATE ON log_cosignatures"
    "  BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;"
    "CREATE TRIGGER log_cosignatures_no_delete BEFORE DELETE ON log_cosignatures"
    "  BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;",
    /* 11: witnesses' reports of an inconsistent log (POST /log/witness-report), kept whole as received once the
     * CA checked them against its own key and database: two signed checkpoints that cannot both be true. */
    "CREATE TABLE log_witness_reports ("
    "  id INTEGER PRIMARY KEY,"
    "  received INTEGER NOT NULL,"
    "  witness TEXT NOT NULL," /* the configured witness whose cosignature the kept checkpoint carries; '' none */
    "  kind TEXT NOT NULL CHECK (kind IN ('fork', 'rollback')),"
    "  kept_size INTEGER NOT NULL CHECK (kept_size >= 0),"
    "  served_size INTEGER NOT NULL CHECK (served_size >= 0),"
    "  reason TEXT NOT NULL,"
    "  report TEXT NOT NULL UNIQUE);"
    "CREATE TRIGGER log_witness_reports_no_update BEFORE UPDATE ON log_witness_reports"
    "  BEGIN SELECT RAISE(ABORT, 'witness reports are append-only'); END;"
    "CREATE TRIGGER log_witness_reports_no_delete BEFORE DELETE ON log_witness_reports"
    "  BEGIN SELECT RAISE(ABORT, 'witness reports are append-only'); END;",
    /* 12: issuing CA generations (db/issuing.c): each certificate of the device or operations issuing CA that the
     * offline roots certified, in order, and which of them signed each certificate (NULL: recorded before this, by
     * the kind's first generation). Append-only: an old generation keeps answering for what it signed. */
    DB_MIGRATION_ISSUING_CAS,
    /* 13: the pg branch's (a placeholder until it is merged). */
    "SELECT 1;",
    /* 14: leases and the signer's CRLs (db/lease.c). */
    DB_MIGRATION_LEASES,
};
#define MIGRATION_STATE_BASELINE 9
#define N_MIGRATIONS ((int)(sizeof k_migrations / sizeof k_migrations[0]))

static int64_t now(void) { return (int64_t)time(NULL); }

/* ---------------------------------------------------------------------------------------------------------
 * SQL helpers
 * ------------------------------------------------------------------------------------------------------- */
ct_err db_sql_fail(ct_db *db, const char *what)
{
    int ext = sqlite3_extended_errcode(db->h);
    ct_err e = (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) ? CT_ERR_EXISTS : CT_ERR_DB;
    return ct_fail(e, "%s: %s", what, sqlite3_errmsg(db->h));
}

ct_err db_check_str(const char *what, const char *s, size_t max)
{
    if (!s || !*s) return ct_fail(CT_ERR_ARG, "%s is missing", what);
    if (strnlen(s, max) >= max) return ct_fail(CT_ERR_ARG, "%s is longer than %zu bytes", what, max - 1);
    return CT_OK;
}

static ct_err cached_stmt(ct_db *db, const char *sql, sqlite3_stmt **out)
{
    for (size_t i = 0; i < db->n_cached; i++) {
        if (db->cache[i].sql == sql) {
            *out = db->cache[i].st;
            return CT_OK;
        }
    }
    if (db->n_cached == DB_STMT_CACHE_MAX) return ct_fail(CT_ERR_INTERNAL, "db statement cache full");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return db_sql_fail(db, "prepare");
    db->cache[db->n_cached].sql = sql;
    db->cache[db->n_cached].st = st;
    db->n_cached++;
    *out = st;
    return CT_OK;
}

static ct_err bind_args(ct_db *db, sqlite3_stmt *st, const char *types, va_list ap)
{
    for (int i = 1; *types; types++, i++) {
        int r;
        switch (*types) {
        case 't': {
            const char *s = va_arg(ap, const char *);
            r = s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
            break;
        }
        case 'i':
            r = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
            break;
        case 'z': {
            int64_t v = va_arg(ap, int64_t);
            r = v ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
            break;
        }
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            if (n > (size_t)INT32_MAX) return ct_fail(CT_ERR_TOO_LARGE, "blob of %zu bytes", n);
            r = sqlite3_bind_blob(st, i, p, (int)n, SQLITE_TRANSIENT);
            break;
        }
        default:
            return ct_fail(CT_ERR_INTERNAL, "bad bind type '%c'", *types);
        }
        if (r != SQLITE_OK) return db_sql_fail(db, "bind");
    }
    return CT_OK;
}

static ct_err vprepare(ct_db *db, const char *sql, sqlite3_stmt **out, const char *types, va_list ap)
{
    sqlite3_stmt *st = NULL;
    CT_GUARD_RET(cached_stmt(db, sql, &st));
    /* reset's result only repeats the previous run's step error, already reported then. */
    (void)sqlite3_reset(st);
    if (sqlite3_clear_bindings(st) != SQLITE_OK) return db_sql_fail(db, "clear bindings");
    CT_GUARD_RET(bind_args(db, st, types, ap));
    *out = st;
    return CT_OK;
}

ct_err db_prepare(ct_db *db, const char *sql, sqlite3_stmt **out, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    ct_err rc = vprepare(db, sql, out, types, ap);
    va_end(ap);
    return rc;
}

ct_err db_step(ct_db *db, sqlite3_stmt *st, bool *row)
{
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW || r == SQLITE_DONE) {
        *row = (r == SQLITE_ROW);
        return CT_OK;
    }
    return db_sql_fail(db, "step");
}

/* Prepares (cached), binds and takes the first step: the common start of db_exec and db_query_int. */
static ct_err vrun(ct_db *db, const char *sql, sqlite3_stmt **st, bool *row, const char *types, va_list ap)
{
    CT_GUARD_RET(vprepare(db, sql, st, types, ap));
    return db_step(db, *st, row);
}

ct_err db_exec(ct_db *db, const char *sql, int *changes, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    va_list ap;
    va_start(ap, types);
    ct_err rc = vrun(db, sql, &st, &row, types, ap);
    va_end(ap);
    CT_GUARD_RET(rc);
    CT_ENSURE_RET(!row, ct_fail(CT_ERR_INTERNAL, "statement returned rows: %.60s", sql));
    if (changes) *changes = sqlite3_changes(db->h);
    return CT_OK;
}

ct_err db_query_int(ct_db *db, const char *sql, int64_t *out, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    va_list ap;
    va_start(ap, types);
    ct_err rc = vrun(db, sql, &st, &row, types, ap);
    va_end(ap);
    CT_GUARD_RET(rc);
    if (!row) return CT_ERR_NOT_FOUND;
    *out = sqlite3_column_int64(st, 0);
    return CT_OK;
}

ct_err db_col_text(sqlite3_stmt *st, int col, char *dst, size_t dst_max)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    if (!s) return ct_fail(CT_ERR_DB, "column %d is NULL", col);
    if (ct_strlcpy(dst, dst_max, (const char *)s) != CT_OK)
        return ct_fail(CT_ERR_DB, "column %d longer than %zu bytes", col, dst_max - 1);
    return CT_OK;
}

ct_err db_col_hash(sqlite3_stmt *st, int col, uint8_t out[32])
{
    const void *p = sqlite3_column_blob(st, col);
    if (!p || sqlite3_column_bytes(st, col) != 32) return ct_fail(CT_ERR_INTEGRITY, "column %d is not a SHA-256", col);
    memcpy(out, p, 32);
    return CT_OK;
}

static ct_err exec_script(ct_db *db, const char *sql, const char *what)
{
    return sqlite3_exec(db->h, sql, NULL, NULL, NULL) == SQLITE_OK ? CT_OK : db_sql_fail(db, what);
}

/* Ends the transaction; on any error rolls back so nothing partial remains and keeps the first error. */
static ct_err tx_end(ct_db *db, ct_err rc)
{
    if (rc == CT_OK) rc = exec_script(db, "COMMIT", "commit");
    /* Some errors (e.g. SQLITE_FULL) already rolled back; ROLLBACK then would only fail. */
    if (rc != CT_OK && !sqlite3_get_autocommit(db->h) && sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        ct_log(CT_LOG_ERROR, "db.rollback_failed", "error=%s", CT_LOGQ(sqlite3_errmsg(db->h)));
    return rc;
}

ct_err db_call(ct_db *db, bool tx, db_fn fn, void *ctx)
{
    if (pthread_mutex_lock(&db->mu) != 0) return ct_fail(CT_ERR_INTERNAL, "db mutex lock failed");
    /* IMMEDIATE takes the write lock up front: read-then-write never hits SQLITE_BUSY mid-transaction. */
    ct_err rc = tx ? exec_script(db, "BEGIN IMMEDIATE", "begin") : CT_OK;
    if (rc == CT_OK) rc = fn(db, ctx);
    /* A statement left on a row would pin an old WAL snapshot (stale reads, no checkpoints): reset all. */
    for (size_t i = 0; i < db->n_cached; i++) (void)sqlite3_reset(db->cache[i].st);
    if (tx) rc = tx_end(db, rc);
    if (pthread_mutex_unlock(&db->mu) != 0 && rc == CT_OK) rc = ct_fail(CT_ERR_INTERNAL, "db mutex unlock failed");
    return rc;
}

/* A query's rows collected into a growing array, so that callers' callbacks run without the lock held. */
typedef struct {
    const char *sql;
    size_t size;                             /* of one item */
    ct_err (*fill)(sqlite3_stmt *st, void *item);
    void *items;
    size_t n, cap;
    bool by_generation;    /* the revoked lists: ?1 the issuing CA generation's id, ?2 whether it is the first */
    int64_t issuing_ca;
    bool first_generation;
} row_list;

static ct_err collect_fn(ct_db *db, void *vctx)
{
    row_list *l = vctx;
    sqlite3_stmt *st = NULL;
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

/* Runs the collection; on failure nothing stays allocated. */
static ct_err collect(ct_db *db, row_list *l)
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
static const char k_user_version[] = "PRAGMA user_version";
static const char k_journal_wal[] = "PRAGMA journal_mode = WAL";

static ct_err migrate_one(ct_db *db, void *ctx)
{
    int target = *(const int *)ctx;
    int64_t have = 0;
    CT_GUARD_RET(db_query_int(db, k_user_version, &have, ""));
    /* Another process may have migrated while we waited for the write lock. */
    if (have >= target) return CT_OK;
    char what[64];
    CT_GUARD_RET(ct_snprintf(what, sizeof what, "migration %d", target));
    CT_GUARD_RET(exec_script(db, k_migrations[target - 1], what));
    char pragma[64];
    CT_GUARD_RET(ct_snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", target));
    CT_GUARD_RET(exec_script(db, pragma, "set user_version"));
    if (target == MIGRATION_STATE_BASELINE) CT_GUARD_RET(db_state_baseline_tx(db));
    return db_audit_append_tx(db, "camtrust-db", "db.migrate", what, "ok", NULL);
}

/* The audit key found or made under the write lock, so that two processes upgrading one folder make one key and
 * one seal; the seal comes before any migration writes its own (MACed) entry: the first MACed entry is the seal. */
static ct_err audit_key_ready(ct_db *db, void *ctx)
{
    (void)ctx;
    bool made = false;
    int64_t version = 0;
    CT_GUARD_RET(db->mac.key(db->mac.ctx, &made));
    CT_GUARD_RET(db_query_int(db, k_user_version, &version, ""));
    return made && version >= 1 ? db_audit_keyed_tx(db) : CT_OK;
}

static ct_err configure(ct_db *db, void *ctx)
{
    (void)ctx;
    sqlite3_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_journal_wal, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    const unsigned char *mode = row ? sqlite3_column_text(st, 0) : NULL;
    CT_ENSURE_RET(mode && strcmp((const char *)mode, "wal") == 0,
                  ct_fail(CT_ERR_DB, "cannot enable WAL (journal_mode=%s)", mode ? (const char *)mode : "?"));
    /* FULL: the issued certificate is on disk before the CA answers. */
    CT_GUARD_RET(exec_script(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", "pragmas"));
    int64_t version = 0;
    CT_GUARD_RET(db_query_int(db, k_user_version, &version, ""));
    CT_ENSURE_RET(version <= N_MIGRATIONS,
                  ct_fail(CT_ERR_DB, "database schema %lld is newer than this build (%d)", (long long)version,
                          N_MIGRATIONS));
    db->schema_version = (int)version;
    return CT_OK;
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

ct_err db_open(const char *path, ct_db **out) { return db_open_keyed(path, NULL, out); }

ct_err db_open_keyed(const char *path, const db_audit_mac *mac, ct_db **out)
{
    ct_err rc = CT_OK;
    ct_db *db = NULL;
    CT_ENSURE(path && *path && out, ct_fail(CT_ERR_ARG, "db_open: no path"));
    CT_ENSURE(!mac || (mac->fn && mac->key), ct_fail(CT_ERR_ARG, "db_open: a MAC without its functions"));
    db = calloc(1, sizeof *db);
    CT_ENSURE(db, CT_ERR_NOMEM);
    if (mac) db->mac = *mac;
    CT_ENSURE(pthread_mutex_init(&db->mu, NULL) == 0, ct_fail(CT_ERR_INTERNAL, "db mutex init failed"));
    CT_ENSURE(pthread_mutex_init(&db->gc_mu, NULL) == 0 && pthread_cond_init(&db->gc_cv, NULL) == 0,
              ct_fail(CT_ERR_INTERNAL, "db group commit init failed"));
    db->gc_tail = &db->gc_head;
    CT_GUARD(db_files_private(path));
    /* NOMUTEX: our own mutex already serialises every use of the connection. */
    int r = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    CT_ENSURE_MSG(r == SQLITE_OK, CT_ERR_DB, "cannot open %s: %s", path,
                  db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(r));
    CT_ENSURE_MSG(sqlite3_extended_result_codes(db->h, 1) == SQLITE_OK && sqlite3_busy_timeout(db->h, 5000) == SQLITE_OK,
                  CT_ERR_DB, "cannot configure %s", path);
    CT_GUARD(db_call(db, false, configure, NULL));
    CT_GUARD(db_log_register(db));
    if (mac) CT_GUARD(db_call(db, true, audit_key_ready, NULL));
    for (int v = db->schema_version + 1; v <= N_MIGRATIONS; v++) {
        CT_GUARD(db_call(db, true, migrate_one, &v));
        db->schema_version = v;
    }
    *out = db;
cleanup:
    if (rc != CT_OK) db_close(db);
    return rc;
}

void db_close(ct_db *db)
{
    if (!db) return;
    for (size_t i = 0; i < db->n_cached; i++) (void)sqlite3_finalize(db->cache[i].st);
    /* With every statement finalized close cannot be busy; a failure here is a bug worth a log line. */
    if (db->h && sqlite3_close(db->h) != SQLITE_OK)
        ct_log(CT_LOG_ERROR, "db.close_failed", "error=%s", CT_LOGQ(sqlite3_errmsg(db->h)));
    (void)pthread_mutex_destroy(&db->mu);
    (void)pthread_mutex_destroy(&db->gc_mu);
    (void)pthread_cond_destroy(&db->gc_cv);
    free(db);
}

int db_schema_version(ct_db *db) { return db ? db->schema_version : 0; }

/* ---------------------------------------------------------------------------------------------------------
 * stations
 * ------------------------------------------------------------------------------------------------------- */
/* A station is refused as soon as its certificate is revoked (no row: recorded before certificates were). */
#define STATION_SELECT                                                                                           \
    "SELECT id, name, enabled, cert_sha256, cert_serial_hex, EXISTS (SELECT 1 FROM certificates c"              \
    " WHERE c.cert_serial_hex = stations.cert_serial_hex AND c.profile = '" DB_PROFILE_STATION "'"               \
    " AND c.status = 'revoked') FROM stations "
static const char k_station_by_name[] = STATION_SELECT "WHERE name = ?";
static const char k_station_by_cert[] = STATION_SELECT "WHERE cert_sha256 = ?";
static const char k_station_id[] = "SELECT id FROM stations WHERE name = ?";
static const char k_station_insert[] =
    "INSERT INTO stations (name, enabled, cert_sha256, cert_serial_hex, cert_der, created_at) VALUES (?, 1, ?, ?, ?, ?)";
static const char k_station_enable[] = "UPDATE stations SET enabled = ? WHERE name = ?";

struct station_ctx {
    const char *name;
    const uint8_t *hash;
    const db_cert_record *cert;
    const char *actor;
    db_station *out;
};

static ct_err station_add_tx(ct_db *db, void *vctx)
{
    struct station_ctx *c = vctx;
    const db_cert_record *r = c->cert;
    ct_err rc = db_exec(db, k_station_insert, NULL, "tbtbi", c->name, c->hash, (size_t)32, r->cert_serial_hex, r->der,
                        r->der_len, now());
    if (rc == CT_ERR_EXISTS) {
        int64_t id = 0;
        return db_query_int(db, k_station_id, &id, "t", c->name) == CT_OK
                   ? ct_fail(CT_ERR_EXISTS, "station name '%s' is taken", c->name)
                   : ct_fail(CT_ERR_EXISTS, "this certificate is already registered to another station");
    }
    CT_GUARD_RET(rc);
    CT_GUARD_RET(db_cert_insert_tx(db, r, NULL, c->actor));
    db_detail d;
    db_detail_init(&d);
    CT_GUARD_RET(db_detail_str(&d, "cert_serial", r->cert_serial_hex));
    CT_GUARD_RET(db_detail_hex(&d, "fp", c->hash, 32));
    return db_audit_append_tx(db, c->actor, "station.add", c->name, "ok", d.s);
}

ct_err db_station_add(ct_db *db, const char *name, const db_cert_record *cert, const char *actor)
{
    CT_ENSURE_RET(db, ct_fail(CT_ERR_ARG, "db_station_add: no database"));
    CT_GUARD_RET(db_check_str("station name", name, DB_NAME_MAX));
    CT_GUARD_RET(db_cert_record_check(cert, NULL, actor));
    CT_ENSURE_RET(strcmp(cert->profile, DB_PROFILE_STATION) == 0 && strcmp(cert->device_serial, name) == 0,
                  ct_fail(CT_ERR_ARG, "a station certificate is recorded with profile station and its name"));
    uint8_t hash[32];
    CT_GUARD_RET(ct_sha256(cert->der, cert->der_len, hash));
    struct station_ctx c = {.name = name, .hash = hash, .cert = cert, .actor = actor};
    return db_call(db, true, station_add_tx, &c);
}

static ct_err station_find_fn(ct_db *db, void *vctx)
{
    struct station_ctx *c = vctx;
    sqlite3_stmt *st = NULL;
    bool row = false;
    if (c->name)
        CT_GUARD_RET(db_prepare(db, k_station_by_name, &st, "t", c->name));
    else
        CT_GUARD_RET(db_prepare(db, k_station_by_cert, &st, "b", c->hash, (size_t)32));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return c->name ? ct_fail(CT_ERR_NOT_FOUND, "no station named '%s'", c->name)
                             : ct_fail(CT_ERR_NOT_FOUND, "no station holds this certificate");
    memset(c->out, 0, sizeof *c->out);
    c->out->id = sqlite3_column_int64(st, 0);
    CT_GUARD_RET(db_col_text(st, 1, c->out->name, sizeof c->out->name));
    c->out->enabled = sqlite3_column_int(st, 2) != 0;
    CT_GUARD_RET(db_col_hash(st, 3, c->out->cert_sha256));
    CT_GUARD_RET(db_col_text(st, 4, c->out->cert_serial_hex, sizeof c->out->cert_serial_hex));
    c->out->revoked = sqlite3_column_int(st, 5) != 0;
    return CT_OK;
}

ct_err db_station_find_by_cert(ct_db *db, const uint8_t cert_sha256[32], db_station *out)
{
    CT_ENSURE_RET(db && cert_sha256 && out, ct_fail(CT_ERR_ARG, "db_station_find_by_cert: missing argument"));
    struct station_ctx c = {.hash = cert_sha256, .out = out};
    CT_GUARD_RET(db_call(db, false, station_find_fn, &c));
    CT_ENSURE_RET(!out->revoked, ct_fail(CT_ERR_DISABLED, "the certificate of station %s (%s) is revoked", out->name,
                                         out->cert_serial_hex));
    return CT_OK;
}

ct_err db_station_find(ct_db *db, const char *name, db_station *out)
{
    CT_ENSURE_RET(db && out, ct_fail(CT_ERR_ARG, "db_station_find: missing argument"));
    CT_GUARD_RET(db_check_str("station name", name, DB_NAME_MAX));
    struct station_ctx c = {.name = name, .out = out};
    return db_call(db, false, station_find_fn, &c);
}

ct_err db_station_set_enabled(ct_db *db, const char *name, bool enabled, const char *actor)
{
    return db_client_set_enabled(db, "station", k_station_enable, name, enabled, actor);
}

/* ---------------------------------------------------------------------------------------------------------
 * orders
 * ------------------------------------------------------------------------------------------------------- */
#define ORDER_COLUMNS "SELECT o.id, s.name, o.model, o.open, o.created_at,"
#define ORDER_COUNTS                                                                                          \
    " (SELECT count(*) FROM order_serials x WHERE x.order_id = o.id),"                                        \
    " (SELECT count(DISTINCT c.device_serial) FROM certificates c WHERE c.order_id = o.id)"
#define ORDER_FROM " FROM orders o JOIN stations s ON s.id = o.station_id "
static const char k_order_list[] = ORDER_COLUMNS ORDER_COUNTS ORDER_FROM "ORDER BY o.id";
/* On the enrollment path the counts are not needed, and counting grows with the order: left at 0. */
static const char k_order_for_serial[] = ORDER_COLUMNS " 0, 0" ORDER_FROM
                                         "JOIN order_serials os ON os.order_id = o.id"
                                         " WHERE o.station_id = ? AND os.serial = ? AND o.open = 1"
                                         " ORDER BY o.id DESC LIMIT 1"; /* a re-provisioning line is newer */
static const char k_serial_open_order[] = "SELECT o.id FROM order_serials s JOIN orders o ON o.id = s.order_id"
                                          " WHERE s.serial = ? AND o.open = 1 AND o.id <> ?";
/* One camera, one DNS name: a serial that differs only by case from one of any order (this one too). */
static const char k_serial_case_variant[] = "SELECT serial, order_id FROM order_serials"
                                            " WHERE serial = ?1 COLLATE NOCASE AND serial <> ?1 LIMIT 1";
static const char k_order_insert[] = "INSERT INTO orders (station_id, model, open, created_at) VALUES (?, ?, 1, ?)";
static const char k_order_serial_insert[] = "INSERT INTO order_serials (order_id, serial, revoked_seen) VALUES (?, ?, ?)";
static const char k_serial_revoked_count[] = "SELECT count(*) FROM certificates WHERE device_serial = ? COLLATE NOCASE"
                                             " AND status = 'revoked' AND profile NOT IN " DB_CLIENT_PROFILES;
static const char k_serial_current_any[] = "SELECT cert_serial_hex FROM certificates WHERE device_serial = ?"
                                           " COLLATE NOCASE AND status = 'valid' AND profile NOT IN " DB_CLIENT_PROFILES
                                           " LIMIT 1";
static const char k_order_close[] = "UPDATE orders SET open = 0, closed_at = ? WHERE id = ? AND open = 1";

static ct_err order_from_row(sqlite3_stmt *st, db_order *o)
{
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(st, 0);
    CT_GUARD_RET(db_col_text(st, 1, o->station, sizeof o->station));
    CT_GUARD_RET(db_col_text(st, 2, o->model, sizeof o->model));
    o->open = sqlite3_column_int(st, 3) != 0;
    o->created_at = sqlite3_column_int64(st, 4);
    o->serial_count = sqlite3_column_int64(st, 5);
    o->issued_count = sqlite3_column_int64(st, 6);
    return CT_OK;
}

struct order_ctx {
    const char *station;
    const char *model;
    const char *const *serials;
    size_t n_serials;
    const char *actor;
    int64_t id; /* in: order or station id; out: new order id */
    const char *serial;
    db_order *out;
};

/* Inserts the order of c->station (c->id gets it) and its serial lines, each checked before its insert so that a
 * refusal names the serial and the order it collides with (the migrations' triggers are only backstops). */
static ct_err order_insert_tx(ct_db *db, struct order_ctx *c, int64_t revoked_seen)
{
    int64_t station_id = 0, other = 0;
    sqlite3_stmt *st = NULL;
    bool row = false;
    ct_err rc = db_query_int(db, k_station_id, &station_id, "t", c->station);
    CT_ENSURE_RET(rc != CT_ERR_NOT_FOUND, ct_fail(CT_ERR_NOT_FOUND, "no station named '%s'", c->station));
    CT_GUARD_RET(rc);
    CT_GUARD_RET(db_exec(db, k_order_insert, NULL, "iti", station_id, c->model, now()));
    c->id = sqlite3_last_insert_rowid(db->h);
    for (size_t i = 0; i < c->n_serials; i++) {
        const char *serial = c->serials[i];
        /* A re-provisioning line may sit beside the serial's line in an open order (its revoked certificate's). */
        rc = revoked_seen ? CT_ERR_NOT_FOUND : db_query_int(db, k_serial_open_order, &other, "ti", serial, c->id);
        CT_ENSURE_RET(rc != CT_OK, ct_fail(CT_ERR_EXISTS, "serial '%s' is already in open order %lld", serial,
                                           (long long)other));
        CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
        CT_GUARD_RET(db_prepare(db, k_serial_case_variant, &st, "t", serial));
        CT_GUARD_RET(db_step(db, st, &row));
        CT_ENSURE_RET(!row, ct_fail(CT_ERR_EXISTS, "serial '%s' differs only by case from '%s' (order %lld): serials "
                                    "are one DNS name", serial, (const char *)sqlite3_column_text(st, 0),
                                    (long long)sqlite3_column_int64(st, 1)));
        rc = db_exec(db, k_order_serial_insert, NULL, "iti", c->id, serial, revoked_seen);
        CT_ENSURE_RET(rc != CT_ERR_EXISTS, ct_fail(CT_ERR_EXISTS, "serial '%s' is listed twice", serial));
        CT_GUARD_RET(rc);
    }
    return CT_OK;
}

/* What rebuilds an order: id, station, model and its serial lines (their count and hash). */
static ct_err order_detail(ct_db *db, const struct order_ctx *c, db_detail *d)
{
    uint8_t h[32];
    int64_t n = 0;
    CT_GUARD_RET(db_order_serials_hash(db, c->id, h, &n));
    db_detail_init(d);
    CT_GUARD_RET(db_detail_int(d, "id", c->id));
    CT_GUARD_RET(db_detail_str(d, "station", c->station));
    CT_GUARD_RET(db_detail_str(d, "model", c->model));
    CT_GUARD_RET(db_detail_int(d, "serials", n));
    return db_detail_hex(d, "serials_sha256", h, 32);
}

static ct_err order_create_tx(ct_db *db, void *vctx)
{
    struct order_ctx *c = vctx;
    CT_GUARD_RET(order_insert_tx(db, c, 0));
    char subject[32];
    db_detail d;
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "order %lld", (long long)c->id));
    CT_GUARD_RET(order_detail(db, c, &d));
    return db_audit_append_tx(db, c->actor, "order.create", subject, "ok", d.s);
}

ct_err db_order_create(ct_db *db, const char *station, const char *model, const char *const *serials,
                       size_t n_serials, const char *actor, int64_t *order_id)
{
    CT_ENSURE_RET(db && order_id, ct_fail(CT_ERR_ARG, "db_order_create: missing argument"));
    CT_ENSURE_RET(serials && n_serials > 0, ct_fail(CT_ERR_ARG, "an order needs at least one serial"));
    CT_GUARD_RET(db_check_str("station name", station, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("model", model, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    for (size_t i = 0; i < n_serials; i++) CT_GUARD_RET(db_check_str("device serial", serials[i], DB_SERIAL_MAX));
    struct order_ctx c = {.station = station, .model = model, .serials = serials, .n_serials = n_serials,
                          .actor = actor};
    CT_GUARD_RET(db_call(db, true, order_create_tx, &c));
    *order_id = c.id;
    return CT_OK;
}

static ct_err order_reprovision_tx(ct_db *db, void *vctx)
{
    struct order_ctx *c = vctx;
    int64_t revoked = 0;
    sqlite3_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_query_int(db, k_serial_revoked_count, &revoked, "t", c->serial));
    CT_ENSURE_RET(revoked > 0, ct_fail(CT_ERR_NOT_FOUND, "serial '%s' has no revoked certificate: order it with "
                                       "'order create'", c->serial));
    CT_GUARD_RET(db_prepare(db, k_serial_current_any, &st, "t", c->serial));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(!row, ct_fail(CT_ERR_ALREADY_ISSUED, "serial '%s' still has a valid certificate (%s): revoke it first",
                                c->serial, (const char *)sqlite3_column_text(st, 0)));
    c->serials = &c->serial;
    c->n_serials = 1;
    CT_GUARD_RET(order_insert_tx(db, c, revoked));
    char subject[32];
    db_detail d;
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "order %lld", (long long)c->id));
    CT_GUARD_RET(order_detail(db, c, &d));
    CT_GUARD_RET(db_detail_str(&d, "serial", c->serial));
    CT_GUARD_RET(db_detail_int(&d, "revoked", revoked));
    return db_audit_append_tx(db, c->actor, "order.reprovision", subject, "ok", d.s);
}

ct_err db_order_reprovision(ct_db *db, const char *station, const char *model, const char *serial, const char *actor,
                            int64_t *order_id)
{
    CT_ENSURE_RET(db && order_id, ct_fail(CT_ERR_ARG, "db_order_reprovision: missing argument"));
    CT_GUARD_RET(db_check_str("station name", station, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("model", model, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("device serial", serial, DB_SERIAL_MAX));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct order_ctx c = {.station = station, .model = model, .serial = serial, .actor = actor};
    CT_GUARD_RET(db_call(db, true, order_reprovision_tx, &c));
    *order_id = c.id;
    return CT_OK;
}

static ct_err order_row(sqlite3_stmt *st, void *item) { return order_from_row(st, item); }

ct_err db_order_list(ct_db *db, db_order_cb cb, void *arg)
{
    CT_ENSURE_RET(db && cb, ct_fail(CT_ERR_ARG, "db_order_list: missing argument"));
    row_list l = {.sql = k_order_list, .size = sizeof(db_order), .fill = order_row};
    ct_err rc = collect(db, &l);
    for (size_t i = 0; rc == CT_OK && i < l.n; i++) cb((db_order *)l.items + i, arg);
    free(l.items);
    return rc;
}

static ct_err order_close_tx(ct_db *db, void *vctx)
{
    struct order_ctx *c = vctx;
    int changes = 0;
    CT_GUARD_RET(db_exec(db, k_order_close, &changes, "ii", now(), c->id));
    CT_ENSURE_RET(changes == 1, ct_fail(CT_ERR_NOT_FOUND, "no open order %lld", (long long)c->id));
    char subject[32];
    db_detail d;
    db_detail_init(&d);
    CT_GUARD_RET(db_detail_int(&d, "id", c->id));
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "order %lld", (long long)c->id));
    return db_audit_append_tx(db, c->actor, "order.close", subject, "ok", d.s);
}

ct_err db_order_close(ct_db *db, int64_t order_id, const char *actor)
{
    CT_ENSURE_RET(db, CT_ERR_ARG);
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct order_ctx c = {.id = order_id, .actor = actor};
    return db_call(db, true, order_close_tx, &c);
}

static ct_err order_for_serial_fn(ct_db *db, void *vctx)
{
    struct order_ctx *c = vctx;
    sqlite3_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_order_for_serial, &st, "it", c->id, c->serial));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(row, ct_fail(CT_ERR_NOT_IN_ORDER, "serial '%s' is not in an open order of station %lld", c->serial,
                               (long long)c->id));
    return order_from_row(st, c->out);
}

ct_err db_order_find_for_serial(ct_db *db, int64_t station_id, const char *serial, db_order *out)
{
    CT_ENSURE_RET(db && out, ct_fail(CT_ERR_ARG, "db_order_find_for_serial: missing argument"));
    CT_GUARD_RET(db_check_str("device serial", serial, DB_SERIAL_MAX));
    struct order_ctx c = {.id = station_id, .serial = serial, .out = out};
    return db_call(db, false, order_for_serial_fn, &c);
}

/* ---------------------------------------------------------------------------------------------------------
 * certificates
 * ------------------------------------------------------------------------------------------------------- */
static const char k_cert_current[] = "SELECT cert_serial_hex, status, spki_sha256, der FROM certificates"
                                     " WHERE device_serial = ? AND profile = ? AND status = 'valid'";
static const char k_cert_current_count[] = "SELECT count(*) FROM certificates"
                                           " WHERE device_serial = ? AND profile = ? AND status = 'valid'";
/* Only the same device's current certificate of the same profile can be superseded by this issuance. */
static const char k_cert_supersede[] = "UPDATE certificates SET status = 'superseded' WHERE cert_serial_hex = ?"
                                       " AND device_serial = ? AND profile = ? AND status = 'valid'";
/* One camera, one DNS name: a device serial that differs only by case from an issued one. */
static const char k_cert_case_variant[] = "SELECT device_serial FROM certificates WHERE device_serial = ?1 COLLATE NOCASE"
                                          " AND device_serial <> ?1 AND profile NOT IN " DB_CLIENT_PROFILES " LIMIT 1";
/* Revocation is final: an order's issuance (of any profile) is refused (1) while the serial has a revoked
 * certificate, unless its order line re-provisions it and nothing of that serial was revoked since the line
 * opened. */
static const char k_cert_revoked_block[] =
    "SELECT (SELECT count(*) FROM certificates WHERE device_serial = ?1 COLLATE NOCASE AND status = 'revoked'"
    "  AND profile NOT IN " DB_CLIENT_PROFILES ")"
    " > COALESCE((SELECT revoked_seen FROM order_serials WHERE order_id = ?2 AND serial = ?1), 0)";
/* A renewal that supersedes nothing: has this serial's certificate of this profile been revoked? */
static const char k_cert_profile_revoked[] = "SELECT count(*) FROM certificates WHERE device_serial = ? COLLATE NOCASE"
                                             " AND profile = ? AND status = 'revoked'";
static const char k_cert_insert[] =
    "INSERT INTO certificates (cert_serial_hex, device_serial, profile, subject, not_before, not_after, station_id,"
    " order_id, spki_sha256, der, status, issued_at, issuing_ca) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'valid', ?, ?)";

struct cert_ctx {
    const char *serial;
    const char *profile;
    db_cert *out;
    const db_cert_record *rec;
    const char *supersedes;
    const char *actor;
};

static ct_err cert_current_fn(ct_db *db, void *vctx)
{
    struct cert_ctx *c = vctx;
    sqlite3_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_cert_current, &st, "tt", c->serial, c->profile));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(row, ct_fail(CT_ERR_NOT_FOUND, "no current %s certificate for serial '%s'", c->profile, c->serial));
    CT_GUARD_RET(db_col_text(st, 0, c->out->cert_serial_hex, sizeof c->out->cert_serial_hex));
    CT_GUARD_RET(db_col_text(st, 1, c->out->status, sizeof c->out->status));
    CT_GUARD_RET(db_col_hash(st, 2, c->out->spki_sha256));
    const void *der = sqlite3_column_blob(st, 3);
    size_t len = (size_t)sqlite3_column_bytes(st, 3);
    CT_ENSURE_RET(der && len > 0, ct_fail(CT_ERR_DB, "certificate %s has no DER", c->out->cert_serial_hex));
    CT_GUARD_RET(ct_buf_alloc(&c->out->der, len));
    return ct_buf_set(&c->out->der, der, len);
}

ct_err db_cert_find_current(ct_db *db, const char *device_serial, const char *profile, db_cert *out)
{
    CT_ENSURE_RET(db && out, ct_fail(CT_ERR_ARG, "db_cert_find_current: missing argument"));
    CT_GUARD_RET(db_check_str("device serial", device_serial, DB_SERIAL_MAX));
    CT_GUARD_RET(db_check_str("profile", profile, DB_PROFILE_MAX));
    memset(out, 0, sizeof *out);
    struct cert_ctx c = {.serial = device_serial, .profile = profile, .out = out};
    ct_err rc = db_call(db, false, cert_current_fn, &c);
    if (rc != CT_OK) ct_buf_free(&out->der);
    return rc;
}

/* The device serial's rules for an order's issuance: one spelling, and revocation is final. A renewal keeps the
 * serial of the certificate that authenticated it (even one spelt twice before this rule), and cannot replace a
 * revoked certificate of its profile: it must supersede a current one, or the profile must never have been
 * revoked for that serial (only an order line re-provisions it). */
static ct_err cert_serial_allowed(ct_db *db, const db_cert_record *r, const char *supersedes)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    int64_t blocked = 0;
    if (r->order_id == 0) {
        if (!supersedes) CT_GUARD_RET(db_query_int(db, k_cert_profile_revoked, &blocked, "tt", r->device_serial, r->profile));
        CT_ENSURE_RET(!blocked, ct_fail(CT_ERR_ALREADY_REVOKED, "the %s certificate of serial '%s' was revoked and "
                                        "revocation is final: a renewal cannot replace it (an officer may re-provision "
                                        "it: order reprovision)", r->profile, r->device_serial));
        return CT_OK;
    }
    CT_GUARD_RET(db_prepare(db, k_cert_case_variant, &st, "t", r->device_serial));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(!row, ct_fail(CT_ERR_EXISTS, "serial '%s' differs only by case from '%s', issued here: serials are "
                                "one DNS name", r->device_serial, (const char *)sqlite3_column_text(st, 0)));
    CT_GUARD_RET(db_query_int(db, k_cert_revoked_block, &blocked, "ti", r->device_serial, r->order_id));
    CT_ENSURE_RET(!blocked, ct_fail(CT_ERR_ALREADY_REVOKED, "serial '%s' has a revoked certificate and revocation is "
                                    "final (an officer may re-provision it: order reprovision)", r->device_serial));
    return CT_OK;
}

/* What rebuilds a certificate's row (the device serial is the entry's subject; the DER by its hash: the row and
 * the issuance log hold it). */
static ct_err cert_detail(const db_cert_record *r, const char *supersedes, db_detail *d)
{
    uint8_t h[32];
    CT_GUARD_RET(ct_sha256(r->der, r->der_len, h));
    db_detail_init(d);
    CT_GUARD_RET(db_detail_str(d, "cert_serial", r->cert_serial_hex));
    CT_GUARD_RET(db_detail_str(d, "profile", r->profile));
    CT_GUARD_RET(db_detail_int(d, "station", r->station_id));
    CT_GUARD_RET(db_detail_int(d, "order", r->order_id));
    CT_GUARD_RET(db_detail_str(d, "supersedes", supersedes ? supersedes : "-"));
    CT_GUARD_RET(db_detail_hex(d, "spki", r->spki_sha256, 32));
    CT_GUARD_RET(db_detail_hex(d, "sha256", h, 32));
    return db_detail_int(d, "issuing_ca", r->issuing_ca); /* which generation's CRL and OCSP answer for it */
}

ct_err db_cert_insert_tx(ct_db *db, const db_cert_record *r, const char *supersedes, const char *actor)
{
    if (supersedes) {
        int changes = 0;
        CT_GUARD_RET(db_exec(db, k_cert_supersede, &changes, "ttt", supersedes, r->device_serial, r->profile));
        CT_ENSURE_RET(changes == 1, ct_fail(CT_ERR_NOT_FOUND, "no current %s certificate %s of serial '%s' to supersede",
                                            r->profile, supersedes, r->device_serial));
    }
    bool operator = strcmp(r->profile, DB_PROFILE_STATION) == 0 || strcmp(r->profile, DB_PROFILE_OFFICER) == 0;
    if (!operator && strcmp(r->profile, DB_PROFILE_VIEWER) != 0) CT_GUARD_RET(cert_serial_allowed(db, r, supersedes));
    ct_err rc = db_exec(db, k_cert_insert, NULL, "ttttiizzbbiz", r->cert_serial_hex, r->device_serial, r->profile,
                        r->subject, r->not_before, r->not_after, r->station_id, r->order_id, r->spki_sha256,
                        sizeof r->spki_sha256, r->der, r->der_len, now(), r->issuing_ca);
    if (rc == CT_ERR_EXISTS) {
        /* Two unique rules can refuse this row: tell the caller which one. */
        int64_t current = 0;
        CT_GUARD_RET(db_query_int(db, k_cert_current_count, &current, "tt", r->device_serial, r->profile));
        return current > 0 ? ct_fail(CT_ERR_ALREADY_ISSUED, "serial '%s' already has a current %s certificate",
                                     r->device_serial, r->profile)
                           : ct_fail(CT_ERR_EXISTS, "certificate serial %s is already recorded", r->cert_serial_hex);
    }
    CT_GUARD_RET(rc);
    /* The issuance log's next leaf, in this same transaction: no certificate leaves the CA unlogged (but the
     * CA's own operators', DB_OPERATOR_PROFILES). */
    if (!operator) CT_GUARD_RET(db_log_append_tx(db, r->cert_serial_hex, r->der, r->der_len));
    db_detail d;
    CT_GUARD_RET(cert_detail(r, supersedes, &d));
    return db_audit_append_tx(db, actor, "cert.issue", r->device_serial, "ok", d.s);
}

static ct_err cert_issue_tx(ct_db *db, void *vctx)
{
    struct cert_ctx *c = vctx;
    return db_cert_insert_tx(db, c->rec, c->supersedes, c->actor);
}

static const char k_operator_unrecorded[] =
    "SELECT name, '" DB_PROFILE_STATION "', cert_serial_hex, cert_der FROM stations s WHERE NOT EXISTS"
    " (SELECT 1 FROM certificates c WHERE c.cert_serial_hex = s.cert_serial_hex) UNION ALL"
    " SELECT name, '" DB_PROFILE_OFFICER "', cert_serial_hex, cert_der FROM officers o WHERE NOT EXISTS"
    " (SELECT 1 FROM certificates c WHERE c.cert_serial_hex = o.cert_serial_hex)";

struct backfill_ctx {
    db_cert_fill_fn fill;
    const char *actor;
    int64_t count;
};

static ct_err backfill_tx(ct_db *db, void *vctx)
{
    struct backfill_ctx *c = vctx;
    sqlite3_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_operator_unrecorded, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        db_cert_record r = {0};
        CT_GUARD_RET(db_col_text(st, 0, r.device_serial, sizeof r.device_serial));
        CT_GUARD_RET(db_col_text(st, 1, r.profile, sizeof r.profile));
        CT_GUARD_RET(db_col_text(st, 2, r.cert_serial_hex, sizeof r.cert_serial_hex));
        r.der = sqlite3_column_blob(st, 3);
        r.der_len = (size_t)sqlite3_column_bytes(st, 3);
        CT_GUARD_RET(c->fill(r.der, r.der_len, &r));
        CT_GUARD_RET(db_cert_record_check(&r, NULL, c->actor));
        CT_GUARD_RET(db_exec(db, k_cert_insert, NULL, "ttttiizzbbiz", r.cert_serial_hex, r.device_serial, r.profile,
                             r.subject, r.not_before, r.not_after, (int64_t)0, (int64_t)0, r.spki_sha256,
                             sizeof r.spki_sha256, r.der, r.der_len, now(), (int64_t)0));
        db_detail d;
        CT_GUARD_RET(cert_detail(&r, NULL, &d));
        CT_GUARD_RET(db_detail_str(&d, "recorded", "later"));
        CT_GUARD_RET(db_audit_append_tx(db, c->actor, "cert.record", r.device_serial, "ok", d.s));
        c->count++;
    }
}

ct_err db_operator_certs_backfill(ct_db *db, db_cert_fill_fn fill, const char *actor, int64_t *count)
{
    CT_ENSURE_RET(db && fill, ct_fail(CT_ERR_ARG, "db_operator_certs_backfill: missing argument"));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct backfill_ctx c = {.fill = fill, .actor = actor};
    CT_GUARD_RET(db_call(db, true, backfill_tx, &c));
    if (count) *count = c.count;
    return CT_OK;
}

/* Group commit. Every issuance is on disk before its answer, and one fsync costs about a millisecond, so
 * concurrent issuances share one transaction and one fsync: a leader takes everything queued, writes each
 * item inside its own SAVEPOINT (a refused item leaves nothing and spoils no other), commits once and hands
 * every waiting thread its own result. While it writes, new items queue up for the next leader. */
struct db_pending {
    struct cert_ctx *ctx;
    ct_err rc;
    bool done;
    char detail[256];
    struct db_pending *next;
};

static void keep_detail(struct db_pending *p, ct_err rc)
{
    p->rc = rc;
    if (rc != CT_OK && ct_strlcpy(p->detail, sizeof p->detail, ct_err_detail()) != CT_OK) p->detail[0] = '\0';
}

static ct_err batch_tx(ct_db *db, void *vctx)
{
    for (struct db_pending *p = vctx; p; p = p->next) {
        CT_GUARD_RET(exec_script(db, "SAVEPOINT issuance", "savepoint"));
        ct_err_clear();
        keep_detail(p, cert_issue_tx(db, p->ctx));
        if (p->rc != CT_OK) CT_GUARD_RET(exec_script(db, "ROLLBACK TO issuance", "rollback to savepoint"));
        CT_GUARD_RET(exec_script(db, "RELEASE issuance", "release savepoint"));
    }
    return CT_OK;
}

static void lead_batch(ct_db *db)
{
    struct db_pending *batch = db->gc_head;
    db->gc_head = NULL;
    db->gc_tail = &db->gc_head;
    db->gc_leading = true;
    (void)pthread_mutex_unlock(&db->gc_mu);
    ct_err_clear();
    ct_err rc = db_call(db, true, batch_tx, batch);
    struct db_pending failed = {0};
    keep_detail(&failed, rc);
    (void)pthread_mutex_lock(&db->gc_mu);
    for (struct db_pending *p = batch, *next; p; p = next) {
        next = p->next; /* p belongs to a waiting thread that may return as soon as it is done */
        if (rc != CT_OK) { /* the whole transaction is gone: nobody's item was recorded */
            p->rc = rc;
            memcpy(p->detail, failed.detail, sizeof p->detail);
        }
        p->done = true;
    }
    db->gc_leading = false;
    (void)pthread_cond_broadcast(&db->gc_cv);
}

static ct_err group_commit(ct_db *db, struct cert_ctx *c)
{
    struct db_pending me = {.ctx = c};
    CT_ENSURE_RET(pthread_mutex_lock(&db->gc_mu) == 0, ct_fail(CT_ERR_INTERNAL, "db group commit lock failed"));
    *db->gc_tail = &me;
    db->gc_tail = &me.next;
    while (!me.done) {
        if (!db->gc_leading) lead_batch(db);
        else (void)pthread_cond_wait(&db->gc_cv, &db->gc_mu);
    }
    (void)pthread_mutex_unlock(&db->gc_mu);
    return me.rc == CT_OK ? CT_OK : ct_fail(me.rc, "%s", me.detail);
}

ct_err db_cert_record_check(const db_cert_record *rec, const char *supersedes_hex, const char *actor)
{
    CT_ENSURE_RET(rec && rec->der && rec->der_len > 0, ct_fail(CT_ERR_ARG, "certificate record incomplete"));
    CT_GUARD_RET(db_check_str("certificate serial", rec->cert_serial_hex, sizeof rec->cert_serial_hex));
    CT_GUARD_RET(db_check_str("device serial", rec->device_serial, sizeof rec->device_serial));
    CT_GUARD_RET(db_check_str("profile", rec->profile, sizeof rec->profile));
    CT_GUARD_RET(db_check_str("subject", rec->subject, sizeof rec->subject));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    if (supersedes_hex) CT_GUARD_RET(db_check_str("superseded serial", supersedes_hex, DB_CERT_SERIAL_HEX_MAX));
    CT_ENSURE_RET(rec->not_after > rec->not_before, ct_fail(CT_ERR_ARG, "certificate validity is empty"));
    CT_ENSURE_RET(rec->station_id >= 0 && rec->order_id >= 0, ct_fail(CT_ERR_ARG, "negative station or order id"));
    return CT_OK;
}

ct_err db_cert_record_issuance(ct_db *db, const db_cert_record *rec, const char *supersedes_hex, const char *actor)
{
    CT_ENSURE_RET(db, ct_fail(CT_ERR_ARG, "db_cert_record_issuance: no database"));
    CT_GUARD_RET(db_cert_record_check(rec, supersedes_hex, actor));
    struct cert_ctx c = {.rec = rec, .supersedes = supersedes_hex, .actor = actor};
    return group_commit(db, &c);
}

/* ---------------------------------------------------------------------------------------------------------
 * revocation
 * ------------------------------------------------------------------------------------------------------- */
/* For the device issuing CA's OCSP responder: viewers, stations and officers are the operations issuing CA's, so
 * "unknown" there. */
/* Per issuer (db_crl_issuer), as its CRL below. */
#define CERT_STATUS(cond)                                                                                        \
    "SELECT status, revoked_at, revocation_reason, COALESCE(issuing_ca, 0) FROM certificates"                    \
    " WHERE cert_serial_hex = ? AND profile " cond
static const char *const k_cert_status[] = {[DB_CRL_DEVICE] = CERT_STATUS("NOT IN " DB_CLIENT_PROFILES),
                                            [DB_CRL_OPS] = CERT_STATUS("IN " DB_CLIENT_PROFILES)};
/* Per CRL issuer (db_crl_issuer): viewers, stations and officers are the operations issuing CA's, every other
 * profile the device's. */
#define REVOKED_LIST(cond)                                                                                       \
    "SELECT cert_serial_hex, revoked_at, revocation_reason FROM certificates"                                   \
    " WHERE status = 'revoked' AND profile " cond " AND (issuing_ca = ?1 OR (issuing_ca IS NULL AND ?2))"       \
    " ORDER BY revoked_at, cert_serial_hex"
static const char *const k_cert_revoked_list[] = {[DB_CRL_DEVICE] = REVOKED_LIST("NOT IN " DB_CLIENT_PROFILES),
                                                  [DB_CRL_OPS] = REVOKED_LIST("IN " DB_CLIENT_PROFILES)};
static const char k_revocation_epoch[] = "SELECT epoch FROM revocation_state WHERE id = 1";
static const char k_revocation_bump[] = "UPDATE revocation_state SET epoch = epoch + 1 WHERE id = 1";
static const char *const k_crl_number_bump[] = {
    [DB_CRL_DEVICE] = "UPDATE revocation_state SET crl_number = crl_number + 1 WHERE id = 1",
    [DB_CRL_OPS] = "UPDATE revocation_state SET ops_crl_number = ops_crl_number + 1 WHERE id = 1"};
static const char *const k_crl_number[] = {[DB_CRL_DEVICE] = "SELECT crl_number FROM revocation_state WHERE id = 1",
                                           [DB_CRL_OPS] = "SELECT ops_crl_number FROM revocation_state WHERE id = 1"};
static const char *const k_crl_subject[] = {[DB_CRL_DEVICE] = "crl", [DB_CRL_OPS] = "ops crl"};
static const char k_order_exists[] = "SELECT id FROM orders WHERE id = ?";
/* The certificates of a scope: one serial; an order's or a station's, with the renewals of the devices they
 * enrolled (a renewal is issued to the device, without order or station). */
#define SCOPE_CERT "cert_serial_hex = ?1"
#define SCOPE_ORDER                                                                                              \
    "(order_id = ?1 OR (order_id IS NULL AND device_serial IN"                                                  \
    " (SELECT device_serial FROM certificates WHERE order_id = ?1)))"
#define SCOPE_STATION                                                                                            \
    "(station_id = ?1 OR (station_id IS NULL AND profile NOT IN " DB_CLIENT_PROFILES " AND device_serial IN"     \
    " (SELECT device_serial FROM certificates WHERE station_id = ?1)))"
#define SCOPE_SQL(scope)                                                                                         \
    {"SELECT cert_serial_hex, status FROM certificates WHERE " scope " ORDER BY cert_serial_hex",               \
     "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3"                     \
     " WHERE " scope " AND status <> 'revoked'"}
static const char *const k_scope_sql[][2] = {[DB_REVOKE_CERT] = SCOPE_SQL(SCOPE_CERT),
                                              [DB_REVOKE_ORDER] = SCOPE_SQL(SCOPE_ORDER),
                                              [DB_REVOKE_STATION] = SCOPE_SQL(SCOPE_STATION)};
static const char *const k_scope_action[] = {[DB_REVOKE_CERT] = "cert.revoke", [DB_REVOKE_ORDER] = "order.revoke",
                                             [DB_REVOKE_STATION] = "station.revoke"};
/* Revoking an order closes it, revoking a station disables it: what they enrolled is revoked, so must be what
 * they would enroll next. */
static const char k_order_close_at[] = "UPDATE orders SET open = 0, closed_at = ?2 WHERE id = ?1 AND open = 1";
static const char k_station_disable_id[] = "UPDATE stations SET enabled = 0 WHERE id = ?1 AND enabled = 1";

struct revoke_ctx {
    const db_revocation *r;
    int64_t id; /* order or station id */
    char subject[DB_AUDIT_FIELD_MAX];
    int64_t count;
    int64_t at;
};

/* A revocation's audit detail: count (main entry only), reason, time and the serials it revoked. */
static ct_err revoke_detail(const struct revoke_ctx *c, bool main, const char *serials, db_detail *d)
{
    db_detail_init(d);
    if (main) CT_GUARD_RET(db_detail_int(d, "certificates", c->count));
    CT_GUARD_RET(db_detail_str(d, "reason", c->r->reason_name));
    CT_GUARD_RET(db_detail_int(d, "code", c->r->reason));
    CT_GUARD_RET(db_detail_int(d, "at", c->at));
    return *serials ? db_detail_str(d, "serials", serials) : CT_OK;
}

/* Counts the scope's certificates still to revoke and names each in the audit: the serials that do not fit the
 * main entry go in "revoke.serials" entries of the same transaction (the rebuild needs every one). */
static ct_err revoke_collect(ct_db *db, struct revoke_ctx *c, char *serials, size_t serials_max, int64_t *total)
{
    sqlite3_stmt *st = NULL;
    bool row = false;
    size_t used = 0;
    db_detail d;
    if (c->r->scope == DB_REVOKE_CERT) CT_GUARD_RET(db_prepare(db, k_scope_sql[c->r->scope][0], &st, "t", c->r->cert_serial_hex));
    else CT_GUARD_RET(db_prepare(db, k_scope_sql[c->r->scope][0], &st, "i", c->id));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) break;
        (*total)++;
        if (strcmp((const char *)sqlite3_column_text(st, 1), "revoked") == 0) continue;
        c->count++;
        const char *hex = (const char *)sqlite3_column_text(st, 0);
        if (used + strlen(hex) + 2 >= serials_max) {
            CT_GUARD_RET(revoke_detail(c, false, serials, &d));
            CT_GUARD_RET(db_audit_append_tx(db, c->r->actor, "revoke.serials", c->subject, "ok", d.s));
            used = 0;
        }
        CT_GUARD_RET(ct_snprintf(serials + used, serials_max - used, "%s%s", used ? "," : "", hex));
        used += strlen(serials + used);
    }
    return CT_OK;
}

static ct_err revoke_tx(ct_db *db, void *vctx)
{
    struct revoke_ctx *c = vctx;
    const db_revocation *r = c->r;
    int64_t total = 0;
    ct_err rc = CT_OK;
    switch (r->scope) {
    case DB_REVOKE_CERT:
        CT_GUARD_RET(ct_strlcpy(c->subject, sizeof c->subject, r->cert_serial_hex));
        break;
    case DB_REVOKE_ORDER:
        c->id = r->order_id;
        CT_GUARD_RET(ct_snprintf(c->subject, sizeof c->subject, "order %lld", (long long)r->order_id));
        rc = db_query_int(db, k_order_exists, &c->id, "i", r->order_id);
        CT_ENSURE_RET(rc != CT_ERR_NOT_FOUND, ct_fail(CT_ERR_NOT_FOUND, "no order %lld", (long long)r->order_id));
        break;
    case DB_REVOKE_STATION:
        CT_GUARD_RET(ct_snprintf(c->subject, sizeof c->subject, "station %s", r->station));
        rc = db_query_int(db, k_station_id, &c->id, "t", r->station);
        CT_ENSURE_RET(rc != CT_ERR_NOT_FOUND, ct_fail(CT_ERR_NOT_FOUND, "no station named '%s'", r->station));
        break;
    }
    CT_GUARD_RET(rc);
    char serials[768]; /* the main entry's room for serials, beside its other fields */
    serials[0] = '\0';
    CT_GUARD_RET(revoke_collect(db, c, serials, sizeof serials, &total));
    if (total == 0 && r->scope == DB_REVOKE_CERT)
        return ct_fail(CT_ERR_NOT_FOUND, "no certificate with serial %s was issued here", r->cert_serial_hex);
    int stopped = 0;
    if (r->scope == DB_REVOKE_ORDER) CT_GUARD_RET(db_exec(db, k_order_close_at, &stopped, "ii", c->id, c->at));
    if (r->scope == DB_REVOKE_STATION) CT_GUARD_RET(db_exec(db, k_station_disable_id, &stopped, "i", c->id));
    CT_ENSURE_RET(total > 0 || stopped, ct_fail(CT_ERR_NOT_FOUND, "%s has no certificates", c->subject));
    CT_ENSURE_RET(c->count > 0 || stopped,
                  r->scope == DB_REVOKE_CERT
                      ? ct_fail(CT_ERR_ALREADY_REVOKED, "certificate %s is already revoked", c->subject)
                      : ct_fail(CT_ERR_ALREADY_REVOKED, "every certificate of %s is already revoked (and it is %s)",
                                c->subject, r->scope == DB_REVOKE_ORDER ? "closed" : "disabled"));
    int changes = 0;
    if (r->scope == DB_REVOKE_CERT)
        CT_GUARD_RET(db_exec(db, k_scope_sql[r->scope][1], &changes, "tii", r->cert_serial_hex, c->at, (int64_t)r->reason));
    else
        CT_GUARD_RET(db_exec(db, k_scope_sql[r->scope][1], &changes, "iii", c->id, c->at, (int64_t)r->reason));
    CT_ENSURE_RET(changes == c->count, ct_fail(CT_ERR_INTERNAL, "revoked %d certificates, expected %lld", changes,
                                               (long long)c->count));
    CT_GUARD_RET(db_exec(db, k_revocation_bump, NULL, ""));
    db_detail d;
    CT_GUARD_RET(revoke_detail(c, true, serials, &d));
    CT_GUARD_RET(db_audit_append_tx(db, r->actor, k_scope_action[r->scope], c->subject, "ok", d.s));
    if (!stopped) return CT_OK;
    db_detail_init(&d);
    if (r->scope == DB_REVOKE_ORDER) CT_GUARD_RET(db_detail_int(&d, "id", c->id));
    CT_GUARD_RET(db_detail_str(&d, "because", "revoked"));
    return db_audit_append_tx(db, r->actor, r->scope == DB_REVOKE_ORDER ? "order.close" : "station.disable",
                              r->scope == DB_REVOKE_ORDER ? c->subject : r->station, "ok", d.s);
}

ct_err db_revoke(ct_db *db, const db_revocation *r, int64_t *count)
{
    CT_ENSURE_RET(db && r && (unsigned)r->scope <= DB_REVOKE_STATION, ct_fail(CT_ERR_ARG, "db_revoke: missing argument"));
    CT_GUARD_RET(db_check_str("actor", r->actor, DB_AUDIT_FIELD_MAX));
    CT_GUARD_RET(db_check_str("reason", r->reason_name, 64));
    CT_ENSURE_RET(r->reason >= 0 && r->reason <= 10, ct_fail(CT_ERR_ARG, "reason code %d", r->reason));
    if (r->scope == DB_REVOKE_CERT) CT_GUARD_RET(db_check_str("certificate serial", r->cert_serial_hex, DB_CERT_SERIAL_HEX_MAX));
    if (r->scope == DB_REVOKE_STATION) CT_GUARD_RET(db_check_str("station name", r->station, DB_NAME_MAX));
    struct revoke_ctx c = {.r = r, .at = r->at ? r->at : now()};
    CT_GUARD_RET(db_call(db, true, revoke_tx, &c));
    if (count) *count = c.count;
    return CT_OK;
}

struct status_ctx {
    db_crl_issuer issuer;
    const char *serial;
    db_cert_state *out;
};

static ct_err status_fn(ct_db *db, void *vctx)
{
    struct status_ctx *c = vctx;
    sqlite3_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_cert_status[c->issuer], &st, "t", c->serial));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_ERR_NOT_FOUND;
    c->out->revoked = strcmp((const char *)sqlite3_column_text(st, 0), "revoked") == 0;
    c->out->revoked_at = sqlite3_column_int64(st, 1);
    c->out->reason = sqlite3_column_int(st, 2);
    c->out->issuing_ca = sqlite3_column_int64(st, 3);
    return CT_OK;
}

ct_err db_cert_state_get(ct_db *db, db_crl_issuer issuer, const char *cert_serial_hex, db_cert_state *out)
{
    CT_ENSURE_RET(db && out && (unsigned)issuer <= DB_CRL_OPS, ct_fail(CT_ERR_ARG, "db_cert_state_get: missing argument"));
    CT_GUARD_RET(db_check_str("certificate serial", cert_serial_hex, DB_CERT_SERIAL_HEX_MAX));
    memset(out, 0, sizeof *out);
    struct status_ctx c = {.issuer = issuer, .serial = cert_serial_hex, .out = out};
    return db_call(db, false, status_fn, &c);
}

static ct_err revoked_row(sqlite3_stmt *st, void *item)
{
    db_revoked *r = item;
    CT_GUARD_RET(db_col_text(st, 0, r->cert_serial_hex, sizeof r->cert_serial_hex));
    r->revoked_at = sqlite3_column_int64(st, 1);
    r->reason = sqlite3_column_int(st, 2);
    return CT_OK;
}

ct_err db_cert_list_revoked(ct_db *db, db_crl_issuer issuer, int64_t issuing_ca, bool first_generation,
                            db_revoked **out, size_t *n)
{
    CT_ENSURE_RET(db && out && n && (unsigned)issuer <= DB_CRL_OPS,
                  ct_fail(CT_ERR_ARG, "db_cert_list_revoked: missing argument"));
    row_list l = {.sql = k_cert_revoked_list[issuer], .size = sizeof(db_revoked), .fill = revoked_row,
                  .by_generation = true, .issuing_ca = issuing_ca, .first_generation = first_generation};
    CT_GUARD_RET(collect(db, &l));
    *out = l.items;
    *n = l.n;
    return CT_OK;
}

static ct_err epoch_fn(ct_db *db, void *out) { return db_query_int(db, k_revocation_epoch, out, ""); }

ct_err db_revocation_epoch(ct_db *db, int64_t *epoch)
{
    CT_ENSURE_RET(db && epoch, ct_fail(CT_ERR_ARG, "db_revocation_epoch: missing argument"));
    return db_call(db, false, epoch_fn, epoch);
}

struct crl_ctx {
    db_crl_issuer issuer;
    const char *actor;
    size_t revoked;
    int64_t number;
};

static ct_err crl_number_tx(ct_db *db, void *vctx)
{
    struct crl_ctx *c = vctx;
    char subject[48];
    db_detail d;
    CT_GUARD_RET(db_exec(db, k_crl_number_bump[c->issuer], NULL, ""));
    CT_GUARD_RET(db_query_int(db, k_crl_number[c->issuer], &c->number, ""));
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "%s %lld", k_crl_subject[c->issuer], (long long)c->number));
    db_detail_init(&d);
    CT_GUARD_RET(db_detail_str(&d, "issuer", c->issuer == DB_CRL_DEVICE ? "device" : "ops"));
    CT_GUARD_RET(db_detail_int(&d, "number", c->number));
    CT_GUARD_RET(db_detail_int(&d, "revoked", (int64_t)c->revoked));
    return db_audit_append_tx(db, c->actor, "crl.issue", subject, "ok", d.s);
}

ct_err db_crl_number_next(ct_db *db, db_crl_issuer issuer, const char *actor, size_t revoked, int64_t *number)
{
    CT_ENSURE_RET(db && number && (unsigned)issuer <= DB_CRL_OPS,
                  ct_fail(CT_ERR_ARG, "db_crl_number_next: missing argument"));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct crl_ctx c = {.issuer = issuer, .actor = actor, .revoked = revoked};
    CT_GUARD_RET(db_call(db, true, crl_number_tx, &c));
    *number = c.number;
    return CT_OK;
}
