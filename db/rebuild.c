/* db rebuild: the state tables rebuilt from the audit chain and compared with what the tables hold.
 *
 * Every state change writes its audit entry in the same transaction, with a detail in format version 2:
 * "v=2 key=value key=value ...", each value with the bytes outside [A-Za-z0-9._:/+@,-] written as %XX (so a value
 * holds no space or '='; the one list, serials=, is of hex serials, comma-separated). Older entries keep their
 * free text.
 *
 * Where the rebuild starts: migration 9 writes an "audit.state" entry (the certificates' count and highest rowid,
 * both CRL numbers) followed by one "state.*" entry per station, officer, order and non-valid certificate that
 * existed then; from there every v2 entry is replayed. Certificates recorded before it and still valid are known
 * by count (and rowid) only: the table must hold exactly that many rows up to that rowid, each valid unless a later
 * entry says otherwise. Everything else is compared field by field. Replay runs into TEMP tables (rb_*), inside
 * the caller's transaction, so one consistent snapshot is compared. */
#define _POSIX_C_SOURCE 200809L
#include "db_log.h"
#include "db_priv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------------------
 * the v2 detail format
 * ------------------------------------------------------------------------------------------------------- */
static bool plain_byte(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("._:/+@,-", ch);
}

void db_detail_init(db_detail *d)
{
    memcpy(d->s, DB_DETAIL_V2, sizeof DB_DETAIL_V2);
    d->n = sizeof DB_DETAIL_V2 - 1;
}

ct_err db_detail_str(db_detail *d, const char *key, const char *val)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t need = strlen(key) + 2;
    for (const unsigned char *p = (const unsigned char *)val; *p; p++) need += plain_byte(*p) ? 1 : 3;
    CT_ENSURE_RET(d->n + need < sizeof d->s, ct_fail(CT_ERR_TOO_LARGE, "audit detail: no room for %s", key));
    CT_GUARD_RET(ct_snprintf(d->s + d->n, sizeof d->s - d->n, " %s=", key));
    d->n += strlen(d->s + d->n);
    for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
        if (plain_byte(*p)) {
            d->s[d->n++] = (char)*p;
        } else {
            d->s[d->n++] = '%';
            d->s[d->n++] = hex[*p >> 4];
            d->s[d->n++] = hex[*p & 15];
        }
    }
    d->s[d->n] = '\0';
    return CT_OK;
}

ct_err db_detail_int(db_detail *d, const char *key, int64_t v)
{
    char num[24];
    CT_GUARD_RET(ct_snprintf(num, sizeof num, "%lld", (long long)v));
    return db_detail_str(d, key, num);
}

ct_err db_detail_hex(db_detail *d, const char *key, const uint8_t *p, size_t n)
{
    char hex[2 * 64 + 1];
    CT_ENSURE_RET(n <= 64, ct_fail(CT_ERR_ARG, "audit detail: %s too long", key));
    CT_GUARD_RET(ct_hex_encode(p, n, hex, sizeof hex));
    return db_detail_str(d, key, hex);
}

bool db_detail_is_v2(const char *detail)
{
    size_t n = sizeof DB_DETAIL_V2 - 1;
    return detail && strncmp(detail, DB_DETAIL_V2, n) == 0 && (detail[n] == ' ' || detail[n] == '\0');
}

static int unhex(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The decoded value of `key` in a v2 detail; false when absent, malformed or longer than max - 1. */
static bool kv_get(const char *detail, const char *key, char *out, size_t max)
{
    size_t klen = strlen(key);
    for (const char *p = strchr(detail, ' '); p; p = strchr(p + 1, ' ')) {
        if (strncmp(p + 1, key, klen) != 0 || p[1 + klen] != '=') continue;
        size_t n = 0;
        for (const char *v = p + 2 + klen; *v && *v != ' '; v++) {
            int ch = (unsigned char)*v;
            if (ch == '%') {
                int hi = unhex(v[1]), lo = hi < 0 ? -1 : unhex(v[2]);
                if (lo < 0) return false;
                ch = hi * 16 + lo;
                v += 2;
            }
            if (n + 1 >= max || ch == 0) return false;
            out[n++] = (char)ch;
        }
        out[n] = '\0';
        return true;
    }
    return false;
}

static bool kv_int(const char *detail, const char *key, int64_t *out)
{
    char num[24], *end = NULL;
    if (!kv_get(detail, key, num, sizeof num) || !num[0]) return false;
    long long v = strtoll(num, &end, 10);
    if (*end) return false;
    *out = v;
    return true;
}

static bool kv_hash(const char *detail, const char *key, uint8_t out[32])
{
    char hex[65];
    size_t n = 0;
    return kv_get(detail, key, hex, sizeof hex) && ct_hex_decode(hex, out, 32, &n) == CT_OK && n == 32;
}

/* ---------------------------------------------------------------------------------------------------------
 * the CA's certificate files
 * ------------------------------------------------------------------------------------------------------- */
/* SQLite: "+outcome" keeps its planner off the outcome index, under which it would read every entry that is 'ok'
 * (nearly all: ~70 ms a file at 100,000 entries, at every open) where the action index finds a handful. */
#define LATEST_ENTRY(actions, outcome)                                                                             \
    "SELECT seq, action, detail FROM audit WHERE action IN (" actions ") AND subject = ? AND " outcome                \
    " = 'ok' ORDER BY seq DESC LIMIT 1"
#define CERT_FILE_LATEST(outcome) LATEST_ENTRY("'ca.cert', 'ca.renew'", outcome)
static const char k_cert_file_latest[] = CERT_FILE_LATEST("+outcome");
static const char k_cert_file_latest_pg[] = CERT_FILE_LATEST("outcome");

ct_err db_cert_file_record_add(ct_db *db, const char *actor, const char *file, const char *cert_serial,
                               int64_t not_after, const uint8_t sha256[32])
{
    db_detail d;
    db_detail_init(&d);
    CT_GUARD_RET(db_detail_str(&d, "cert_serial", cert_serial));
    CT_GUARD_RET(db_detail_int(&d, "not_after", not_after));
    CT_GUARD_RET(db_detail_hex(&d, "sha256", sha256, 32));
    return db_audit_append(db, actor, "ca.cert", file, "ok", d.s);
}

struct cert_file_ctx {
    const char *file;
    db_cert_file_record *out;
};

static ct_err cert_file_latest_fn(ct_db *db, void *vctx)
{
    struct cert_file_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, db_sql(db, k_cert_file_latest, k_cert_file_latest_pg), &st, "t", c->file));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_ERR_NOT_FOUND;
    const char *detail = db_col_str(st, 2);
    c->out->seq = db_col_int(st, 0);
    CT_GUARD_RET(db_col_text(st, 1, c->out->action, sizeof c->out->action));
    CT_ENSURE_RET(db_detail_is_v2(detail) &&
                      kv_get(detail, "cert_serial", c->out->cert_serial, sizeof c->out->cert_serial) &&
                      kv_hash(detail, "sha256", c->out->sha256),
                  ct_fail(CT_ERR_INTEGRITY, "audit entry %lld (%s %s): certificate fields missing or malformed",
                          (long long)c->out->seq, c->out->action, c->file));
    return CT_OK;
}

ct_err db_cert_file_latest(ct_db *db, const char *file, db_cert_file_record *out)
{
    CT_ENSURE_RET(db && file && out, ct_fail(CT_ERR_ARG, "db_cert_file_latest: missing argument"));
    memset(out, 0, sizeof *out);
    struct cert_file_ctx c = {.file = file, .out = out};
    return db_call(db, false, cert_file_latest_fn, &c);
}

/* ---------------------------------------------------------------------------------------------------------
 * the stored CRLs: what the audit records of them
 * ------------------------------------------------------------------------------------------------------- */
static const char k_crl_stored_latest[] = LATEST_ENTRY("'" DB_CRL_STORE_ACTION "'", "+outcome");
static const char k_crl_stored_latest_pg[] = LATEST_ENTRY("'" DB_CRL_STORE_ACTION "'", "outcome");
static const char k_crl_issued_max[] =
    "SELECT CASE WHEN ? = 0 THEN crl_number ELSE ops_crl_number END FROM revocation_state WHERE id = 1";

ct_err db_crl_stored_latest_tx(ct_db *db, int64_t issuing_ca, db_crl_stored *out)
{
    db_stmt *st = NULL;
    bool row = false;
    char subject[48];
    memset(out, 0, sizeof *out);
    CT_GUARD_RET(ct_snprintf(subject, sizeof subject, DB_CRL_STORE_SUBJECT "%lld", (long long)issuing_ca));
    CT_GUARD_RET(db_prepare(db, db_sql(db, k_crl_stored_latest, k_crl_stored_latest_pg), &st, "t", subject));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_OK;
    const char *detail = db_col_str(st, 2);
    out->seq = db_col_int(st, 0);
    CT_ENSURE_RET(db_detail_is_v2(detail) && kv_int(detail, "number", &out->number) &&
                      kv_int(detail, "this_update", &out->this_update),
                  ct_fail(CT_ERR_INTEGRITY, "audit entry %lld (%s %s): CRL fields missing or malformed",
                          (long long)out->seq, DB_CRL_STORE_ACTION, subject));
    return CT_OK;
}

struct crl_stored_ctx {
    int64_t issuing_ca;
    db_crl_issuer kind;
    db_crl_stored *out;
};

static ct_err crl_stored_fn(ct_db *db, void *vctx)
{
    struct crl_stored_ctx *c = vctx;
    CT_GUARD_RET(db_crl_stored_latest_tx(db, c->issuing_ca, c->out));
    return db_query_int(db, k_crl_issued_max, &c->out->issued_max, "i", (int64_t)c->kind);
}

ct_err db_crl_stored_latest(ct_db *db, int64_t issuing_ca, db_crl_issuer kind, db_crl_stored *out)
{
    CT_ENSURE_RET(db && out && (unsigned)kind <= DB_CRL_OPS, ct_fail(CT_ERR_ARG, "db_crl_stored_latest: bad argument"));
    struct crl_stored_ctx c = {issuing_ca, kind, out};
    return db_call_snapshot(db, crl_stored_fn, &c);
}

/* ---------------------------------------------------------------------------------------------------------
 * an order's serial lines, hashed: SHA-256 over "serial,revoked_seen\n" per line in byte order
 * ------------------------------------------------------------------------------------------------------- */
static const char k_order_serial_count[] = "SELECT count(*) FROM order_serials WHERE order_id = ?";
static const char k_order_serial_lines[] = "SELECT serial, revoked_seen FROM order_serials WHERE order_id = ?"
                                           " ORDER BY serial";

ct_err db_order_serials_hash(ct_db *db, int64_t order_id, uint8_t out[32], int64_t *count)
{
    ct_err rc = CT_OK;
    ct_buf b = CT_BUF_INIT;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD(db_query_int(db, k_order_serial_count, count, "i", order_id));
    CT_GUARD(ct_buf_alloc(&b, (size_t)*count * (DB_SERIAL_MAX + 24) + 1));
    CT_GUARD(db_prepare(db, k_order_serial_lines, &st, "i", order_id));
    for (;;) {
        CT_GUARD(db_step(db, st, &row));
        if (!row) break;
        CT_GUARD(ct_buf_appendf(&b, "%s,%lld\n", db_col_str(st, 0),
                                (long long)db_col_int(st, 1)));
    }
    CT_GUARD(ct_sha256(b.data, b.len, out));
cleanup:
    ct_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------------
 * the baseline (migration 9): the state as it stood, so that the rebuild has somewhere to start
 * ------------------------------------------------------------------------------------------------------- */
static const char k_base_counts[] =
    "SELECT (SELECT count(*) FROM certificates), (SELECT COALESCE(max(rowid), 0) FROM certificates),"
    " crl_number, ops_crl_number FROM revocation_state WHERE id = 1";
static const char k_base_stations[] = "SELECT name, enabled, cert_sha256 FROM stations ORDER BY id";
static const char k_base_officers[] = "SELECT name, role, enabled, cert_sha256 FROM officers ORDER BY id";
static const char k_base_orders[] =
    "SELECT o.id, s.name, o.model, o.open FROM orders o JOIN stations s ON s.id = o.station_id ORDER BY o.id";
static const char k_base_certs[] = "SELECT cert_serial_hex, status, COALESCE(revoked_at, 0),"
                                   " COALESCE(revocation_reason, -1) FROM certificates WHERE status <> 'valid'"
                                   " ORDER BY rowid";

/* One row of a k_base_* query as a state entry's detail (subject: column 0). */
typedef ct_err (*base_fill_fn)(ct_db *db, db_stmt *st, db_detail *d);

static ct_err base_station(ct_db *db, db_stmt *st, db_detail *d)
{
    (void)db;
    uint8_t fp[32];
    CT_GUARD_RET(db_detail_int(d, "enabled", db_col_int(st, 1)));
    CT_GUARD_RET(db_col_hash(st, 2, fp));
    return db_detail_hex(d, "fp", fp, 32);
}

static ct_err base_officer(ct_db *db, db_stmt *st, db_detail *d)
{
    (void)db;
    uint8_t fp[32];
    CT_GUARD_RET(db_detail_str(d, "role", db_col_str(st, 1)));
    CT_GUARD_RET(db_detail_int(d, "enabled", db_col_int(st, 2)));
    CT_GUARD_RET(db_col_hash(st, 3, fp));
    return db_detail_hex(d, "fp", fp, 32);
}

static ct_err base_order(ct_db *db, db_stmt *st, db_detail *d)
{
    int64_t id = db_col_int(st, 0), n = 0;
    uint8_t h[32];
    CT_GUARD_RET(db_detail_int(d, "id", id));
    CT_GUARD_RET(db_detail_str(d, "station", db_col_str(st, 1)));
    CT_GUARD_RET(db_detail_str(d, "model", db_col_str(st, 2)));
    CT_GUARD_RET(db_detail_int(d, "open", db_col_int(st, 3)));
    CT_GUARD_RET(db_order_serials_hash(db, id, h, &n));
    CT_GUARD_RET(db_detail_int(d, "serials", n));
    return db_detail_hex(d, "serials_sha256", h, 32);
}

static ct_err base_cert(ct_db *db, db_stmt *st, db_detail *d)
{
    (void)db;
    CT_GUARD_RET(db_detail_str(d, "cert_serial", db_col_str(st, 0)));
    CT_GUARD_RET(db_detail_str(d, "status", db_col_str(st, 1)));
    CT_GUARD_RET(db_detail_int(d, "at", db_col_int(st, 2)));
    return db_detail_int(d, "code", db_col_int(st, 3));
}

static const struct {
    const char *sql, *action, *subject_prefix;
    base_fill_fn fill;
} k_base[] = {
    {k_base_stations, "state.station", "", base_station},
    {k_base_officers, "state.officer", "", base_officer},
    {k_base_orders, "state.order", "order ", base_order},
    {k_base_certs, "state.cert", "", base_cert},
};

ct_err db_state_baseline_tx(ct_db *db)
{
    db_stmt *st = NULL;
    bool row = false;
    db_detail d;
    db_detail_init(&d);
    CT_GUARD_RET(db_prepare(db, k_base_counts, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(row, ct_fail(CT_ERR_INTEGRITY, "revocation_state has no row"));
    CT_GUARD_RET(db_detail_int(&d, "certs", db_col_int(st, 0)));
    CT_GUARD_RET(db_detail_int(&d, "rowid_max", db_col_int(st, 1)));
    CT_GUARD_RET(db_detail_int(&d, "crl", db_col_int(st, 2)));
    CT_GUARD_RET(db_detail_int(&d, "ops_crl", db_col_int(st, 3)));
    CT_GUARD_RET(db_audit_append_tx(db, "camtrust-db", "audit.state", "state tables", "ok", d.s));
    for (size_t i = 0; i < sizeof k_base / sizeof k_base[0]; i++) {
        CT_GUARD_RET(db_prepare(db, k_base[i].sql, &st, ""));
        for (;;) {
            char subject[DB_AUDIT_FIELD_MAX];
            CT_GUARD_RET(db_step(db, st, &row));
            if (!row) break;
            db_detail_init(&d);
            CT_GUARD_RET(k_base[i].fill(db, st, &d));
            CT_GUARD_RET(ct_snprintf(subject, sizeof subject, "%s%s", k_base[i].subject_prefix,
                                     db_col_str(st, 0)));
            CT_GUARD_RET(db_audit_append_tx(db, "camtrust-db", k_base[i].action, subject, "ok", d.s));
        }
    }
    return CT_OK;
}

/* ---------------------------------------------------------------------------------------------------------
 * replay
 * ------------------------------------------------------------------------------------------------------- */
/* I and B: INTEGER and BLOB in SQLite, BIGINT and BYTEA in PostgreSQL. */
#define RB_SCHEMA(I, B)                                                                                              \
    "CREATE TEMP TABLE IF NOT EXISTS rb_cert (serial TEXT PRIMARY KEY, seq " I ", status TEXT, revoked_at " I ","    \
    "  reason " I ", reason_name TEXT, issued " I ", device TEXT, profile TEXT, station_id " I ","                    \
    "  order_id " I ", spki " B ", sha256 " B ", issuing_ca " I ");"                                                 \
    "CREATE TEMP TABLE IF NOT EXISTS rb_station (name TEXT PRIMARY KEY, seq " I ", enabled " I ", fp " B ");"        \
    "CREATE TEMP TABLE IF NOT EXISTS rb_officer (name TEXT PRIMARY KEY, seq " I ", role TEXT, enabled " I ","        \
    "  fp " B ");"                                                                                                   \
    "CREATE TEMP TABLE IF NOT EXISTS rb_order (id " I " PRIMARY KEY, seq " I ", station TEXT, model TEXT,"           \
    "  open " I ", serials " I ", serials_sha256 " B ");"                                                            \
    "CREATE TEMP TABLE IF NOT EXISTS rb_crl (issuer TEXT PRIMARY KEY, number " I ");"                                \
    "CREATE TEMP TABLE IF NOT EXISTS rb_report (id " I " PRIMARY KEY, seq " I ", detail TEXT);"                      \
    "DELETE FROM rb_cert; DELETE FROM rb_station; DELETE FROM rb_officer; DELETE FROM rb_order; DELETE FROM rb_crl;" \
    "DELETE FROM rb_report;"
/* SQLite: the rb_* tables' pages stay in memory up to 256 MiB (some 1,000,000 certificates) while they are filled in
 * serial order, not the default 2 MB; beyond it, in a file, every insertion reads and writes pages of it (a state
 * check at 100,000 entries took twice as long). The database's own pages too: the compare reads the certificates
 * three times (rows, keys, claims), each time again from the file through a 2 MB cache; beyond the cache (2 GB of
 * database at 1,000,000 certificates) the file is read mapped, not copied page by page (the state check took 23 s
 * there instead of 28). Set back to the defaults once compared (k_rb_done). */
static const char k_rb_schema[] = RB_SCHEMA("INTEGER", "BLOB") "PRAGMA temp.cache_size = -262144;"
                                  "PRAGMA main.cache_size = -262144; PRAGMA main.mmap_size = 8589934592;";
static const char k_rb_done[] = "PRAGMA temp.cache_size = -2000; PRAGMA main.cache_size = -2000;"
                                "PRAGMA main.mmap_size = 0;";
static const char k_rb_done_pg[] = ""; /* nothing to give back */
static const char k_rb_schema_pg[] = RB_SCHEMA("BIGINT", "BYTEA");
static const char k_rb_marker[] = "SELECT seq, detail FROM audit WHERE action = 'audit.state' ORDER BY seq LIMIT 1";
/* Refusals change no state (and their detail may quote a client): only what was done is replayed. In chain order
 * (SQLite: "+outcome", as CERT_FILE_LATEST, else it sorts every entry read through the outcome index). */
#define RB_ENTRIES(outcome)                                                                                        \
    "SELECT seq, action, subject, detail FROM audit WHERE seq > ? AND " outcome " = 'ok' ORDER BY seq"
static const char k_rb_entries[] = RB_ENTRIES("+outcome");
static const char k_rb_entries_pg[] = RB_ENTRIES("outcome");
static const char k_rb_cert_issue[] =
    "INSERT INTO rb_cert (serial, seq, status, issued, device, profile, station_id, order_id, spki, sha256, issuing_ca)"
    " VALUES (?, ?, 'valid', 1, ?, ?, ?, ?, ?, ?, ?)";
static const char k_rb_cert_status[] =
    "INSERT INTO rb_cert (serial, seq, status, revoked_at, reason, reason_name, issued) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)"
    " ON CONFLICT (serial) DO UPDATE SET status = ?3, revoked_at = ?4, reason = ?5, reason_name = ?6";
static const char k_rb_station_set[] =
    "INSERT INTO rb_station (name, seq, enabled, fp) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (name) DO UPDATE SET enabled = ?3, fp = COALESCE(?4, rb_station.fp)";
static const char k_rb_officer_set[] =
    "INSERT INTO rb_officer (name, seq, role, enabled, fp) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (name) DO UPDATE SET role = COALESCE(?3, rb_officer.role), enabled = ?4, fp = COALESCE(?5, rb_officer.fp)";
static const char k_rb_order_set[] =
    "INSERT INTO rb_order (id, seq, station, model, open, serials, serials_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (id) DO UPDATE SET seq = ?2, station = ?3, model = ?4, open = ?5, serials = ?6, serials_sha256 = ?7";
static const char k_rb_order_close[] = "UPDATE rb_order SET open = 0 WHERE id = ?";
static const char k_rb_station_known[] = "SELECT count(*) FROM rb_station WHERE name = ?";
static const char k_rb_officer_known[] = "SELECT count(*) FROM rb_officer WHERE name = ?";
static const char k_rb_officer_role[] = "UPDATE rb_officer SET role = ? WHERE name = ?";
static const char k_rb_crl_set[] = "INSERT INTO rb_crl (issuer, number) VALUES (?1, ?2)"
                                   " ON CONFLICT (issuer) DO UPDATE SET number = ?2";
static const char k_rb_report_add[] = "INSERT INTO rb_report (id, seq, detail) VALUES (?, ?, ?)";

typedef struct {
    db_state_report *r;
    int64_t base_certs, base_rowid;
} rebuild_ctx;

static ct_err vdiffers(db_state_report *r, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static ct_err vdiffers(db_state_report *r, const char *fmt, va_list ap)
{
    if (vsnprintf(r->reason, sizeof r->reason, fmt, ap) < 0) r->reason[0] = '\0';
    return ct_fail(CT_ERR_INTEGRITY, "state differs from the audit: %s", r->reason);
}

ct_err db_state_differs(db_state_report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ct_err rc = vdiffers(r, fmt, ap);
    va_end(ap);
    return rc;
}

static ct_err differs(rebuild_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ct_err differs(rebuild_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ct_err rc = vdiffers(c->r, fmt, ap);
    va_end(ap);
    return rc;
}

/* An entry of format 2 that lacks what its action needs: the chain may be intact, the record is not. */
static ct_err bad_entry(rebuild_ctx *c, int64_t seq, const char *what)
{
    return differs(c, "audit entry %lld: %s missing or malformed", (long long)seq, what);
}

/* Certificates revoked by one entry: serials=a,b,... with at, code, reason. */
static ct_err replay_revoke(ct_db *db, rebuild_ctx *c, int64_t seq, const char *detail)
{
    char serials[DB_AUDIT_DETAIL_MAX], reason[64];
    int64_t at = 0, code = 0;
    if (!kv_int(detail, "at", &at) || !kv_int(detail, "code", &code)) return bad_entry(c, seq, "at/code");
    if (!kv_get(detail, "reason", reason, sizeof reason)) reason[0] = '\0';
    if (!kv_get(detail, "serials", serials, sizeof serials)) return CT_OK; /* nothing revoked (an order closed) */
    for (char *save = NULL, *s = strtok_r(serials, ",", &save); s; s = strtok_r(NULL, ",", &save))
        CT_GUARD_RET(db_exec(db, k_rb_cert_status, NULL, "titiit", s, seq, "revoked", at, code, reason));
    return CT_OK;
}

static ct_err replay_one(ct_db *db, rebuild_ctx *c, int64_t seq, const char *action, const char *subject,
                         const char *detail)
{
    char a[DB_CERT_SERIAL_HEX_MAX], b[DB_PROFILE_MAX], m[DB_NAME_MAX], status[16];
    uint8_t h1[32], h2[32];
    int64_t i1 = 0, i2 = 0, i3 = 0;
    if (strcmp(action, "cert.issue") == 0 || strcmp(action, "cert.record") == 0) {
        if (!kv_get(detail, "cert_serial", a, sizeof a) || !kv_get(detail, "profile", b, sizeof b) ||
            !kv_int(detail, "station", &i1) || !kv_int(detail, "order", &i2) || !kv_hash(detail, "spki", h1) ||
            !kv_hash(detail, "sha256", h2))
            return bad_entry(c, seq, "certificate fields");
        if (!kv_int(detail, "issuing_ca", &i3)) i3 = -1; /* recorded before issuing CA generations: not compared */
        ct_err rc = db_exec(db, k_rb_cert_issue, NULL, "tittiibbi", a, seq, subject, b, i1, i2, h1, (size_t)32, h2,
                            (size_t)32, i3);
        if (rc == CT_ERR_EXISTS) return differs(c, "certificate %s: recorded twice in the audit (entry %lld)", a,
                                                (long long)seq);
        CT_GUARD_RET(rc);
        if (kv_get(detail, "supersedes", a, sizeof a) && strcmp(a, "-") != 0)
            CT_GUARD_RET(db_exec(db, k_rb_cert_status, NULL, "titiit", a, seq, "superseded", (int64_t)0, (int64_t)-1,
                                 ""));
    } else if (strcmp(action, "state.cert") == 0) {
        if (!kv_get(detail, "status", status, sizeof status) || !kv_int(detail, "at", &i1) || !kv_int(detail, "code", &i2))
            return bad_entry(c, seq, "certificate state");
        CT_GUARD_RET(db_exec(db, k_rb_cert_status, NULL, "titiit", subject, seq, status, i1, i2, ""));
    } else if (strcmp(action, "cert.revoke") == 0 || strcmp(action, "order.revoke") == 0 ||
               strcmp(action, "station.revoke") == 0 || strcmp(action, "revoke.serials") == 0 ||
               strcmp(action, "revoke.same_key") == 0) {
        return replay_revoke(db, c, seq, detail);
    } else if (strcmp(action, "station.add") == 0 || strcmp(action, "state.station") == 0) {
        if (!kv_hash(detail, "fp", h1)) return bad_entry(c, seq, "station fingerprint");
        if (!kv_int(detail, "enabled", &i1)) i1 = 1;
        CT_GUARD_RET(db_exec(db, k_rb_station_set, NULL, "tiib", subject, seq, i1, h1, (size_t)32));
    } else if (strcmp(action, "station.enable") == 0 || strcmp(action, "station.disable") == 0) {
        CT_GUARD_RET(db_query_int(db, k_rb_station_known, &i2, "t", subject));
        if (!i2) return differs(c, "station %s: %s in the audit (entry %lld) but never added", subject, action + 8,
                                (long long)seq);
        CT_GUARD_RET(db_exec(db, k_rb_station_set, NULL, "tiib", subject, seq, (int64_t)(action[8] == 'e'), NULL,
                             (size_t)0));
    } else if (strcmp(action, "officer.add") == 0 || strcmp(action, "state.officer") == 0) {
        if (!kv_hash(detail, "fp", h1) || !kv_get(detail, "role", b, sizeof b)) return bad_entry(c, seq, "officer fields");
        if (!kv_int(detail, "enabled", &i1)) i1 = 1;
        CT_GUARD_RET(db_exec(db, k_rb_officer_set, NULL, "titib", subject, seq, b, i1, h1, (size_t)32));
    } else if (strcmp(action, "officer.enable") == 0 || strcmp(action, "officer.disable") == 0) {
        CT_GUARD_RET(db_query_int(db, k_rb_officer_known, &i2, "t", subject));
        if (!i2) return differs(c, "officer %s: %s in the audit (entry %lld) but never added", subject, action + 8,
                                (long long)seq);
        CT_GUARD_RET(db_exec(db, k_rb_officer_set, NULL, "titib", subject, seq, NULL, (int64_t)(action[8] == 'e'),
                             NULL, (size_t)0));
    } else if (strcmp(action, "officer.role") == 0) {
        if (!kv_get(detail, "role", b, sizeof b)) return bad_entry(c, seq, "officer role");
        int changes = 0;
        CT_GUARD_RET(db_exec(db, k_rb_officer_role, &changes, "tt", b, subject));
        if (changes != 1) return differs(c, "officer %s: role in the audit (entry %lld) but never added", subject,
                                         (long long)seq);
    } else if (strcmp(action, "order.create") == 0 || strcmp(action, "order.reprovision") == 0 ||
               strcmp(action, "state.order") == 0) {
        char model[DB_NAME_MAX];
        if (!kv_int(detail, "id", &i1) || !kv_get(detail, "station", m, sizeof m) ||
            !kv_get(detail, "model", model, sizeof model) || !kv_int(detail, "serials", &i2) ||
            !kv_hash(detail, "serials_sha256", h1))
            return bad_entry(c, seq, "order fields");
        if (!kv_int(detail, "open", &i3)) i3 = 1;
        CT_GUARD_RET(db_exec(db, k_rb_order_set, NULL, "iittiib", i1, seq, m, model, i3, i2, h1, (size_t)32));
    } else if (strcmp(action, "order.close") == 0) {
        if (!kv_int(detail, "id", &i1)) return bad_entry(c, seq, "order id");
        CT_GUARD_RET(db_exec(db, k_rb_order_close, NULL, "i", i1));
    } else if (strcmp(action, "crl.issue") == 0) {
        if (!kv_get(detail, "issuer", b, sizeof b) || !kv_int(detail, "number", &i1)) return bad_entry(c, seq, "CRL");
        CT_GUARD_RET(db_exec(db, k_rb_crl_set, NULL, "ti", b, i1));
    }
    return CT_OK; /* actions that change no state table (log.sth, ca.renew, denials) */
}

/* A witness report's event: its id from the subject; `detail` NULL for one recorded before format 2 (only that the
 * row exists is compared then). */
static ct_err replay_report(ct_db *db, rebuild_ctx *c, int64_t seq, const char *subject, const char *detail)
{
    size_t n = sizeof DB_WITNESS_REPORT_SUBJECT - 1;
    char *end = NULL;
    if (strncmp(subject, DB_WITNESS_REPORT_SUBJECT, n) != 0) return bad_entry(c, seq, "witness report id");
    long long id = strtoll(subject + n, &end, 10);
    if (end == subject + n || *end || id <= 0) return bad_entry(c, seq, "witness report id");
    ct_err rc = db_exec(db, k_rb_report_add, NULL, "iit", (int64_t)id, seq, detail);
    if (rc == CT_ERR_EXISTS) return differs(c, "witness report %lld: recorded twice in the audit (entry %lld)", id,
                                            (long long)seq);
    return rc;
}

static ct_err replay(ct_db *db, rebuild_ctx *c)
{
    db_stmt *st = NULL;
    bool row = false;
    int64_t crl = 0, ops_crl = 0, from = 0;
    CT_GUARD_RET(db_exec_script(db, db_sql(db, k_rb_schema, k_rb_schema_pg), "rebuild tables"));
    CT_GUARD_RET(db_prepare(db, k_rb_marker, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return differs(c, "the audit has no audit.state entry to rebuild from (deleted?)");
    from = db_col_int(st, 0);
    const char *marker = db_col_str(st, 1);
    if (!db_detail_is_v2(marker) || !kv_int(marker, "certs", &c->base_certs) ||
        !kv_int(marker, "rowid_max", &c->base_rowid) || !kv_int(marker, "crl", &crl) || !kv_int(marker, "ops_crl", &ops_crl))
        return bad_entry(c, from, "state counts");
    CT_GUARD_RET(db_exec(db, k_rb_crl_set, NULL, "ti", "device", crl));
    CT_GUARD_RET(db_exec(db, k_rb_crl_set, NULL, "ti", "ops", ops_crl));
    CT_GUARD_RET(db_prepare(db, db_sql(db, k_rb_entries, k_rb_entries_pg), &st, "i", from));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        const char *detail = db_col_str(st, 3);
        const char *action = db_col_str(st, 1), *subject = db_col_str(st, 2);
        /* the chain's MACs are checked beside this replay, not before it: a row may be an edit (a NULL where the
         * schema says NOT NULL, written around it); the chain's verdict is the one reported */
        if (!action || !subject) return bad_entry(c, db_col_int(st, 0), "action or subject");
        bool v2 = db_detail_is_v2(detail);
        if (strcmp(action, "log.witness_report") == 0) {
            c->r->entries += v2;
            CT_GUARD_RET(replay_report(db, c, db_col_int(st, 0), subject, v2 ? detail : NULL));
            continue;
        }
        if (!v2) continue; /* older text, or an event that changes no state */
        c->r->entries++;
        CT_GUARD_RET(replay_one(db, c, db_col_int(st, 0), action, subject, detail));
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * compare: the first row that differs, in one line
 * ------------------------------------------------------------------------------------------------------- */
/* The rows in chain order through an index built once they are all in (cheaper than keeping it during the
 * replay), so that the join's rows, DER included, are not sorted in a temporary B-tree (at 100,000 certificates
 * some 70 MB went through the sorter). */
static const char k_rb_cert_order[] = "CREATE INDEX IF NOT EXISTS rb_cert_seq ON rb_cert (seq, serial)";
static const char k_cmp_certs[] =
    "SELECT r.serial, r.seq, r.status, COALESCE(r.revoked_at, 0), COALESCE(r.reason, -1), COALESCE(r.reason_name, ''),"
    " r.issued, r.device, r.profile, r.station_id, r.order_id, r.spki, r.sha256,"
    " c.cert_serial_hex IS NOT NULL, c.status, COALESCE(c.revoked_at, 0), COALESCE(c.revocation_reason, -1), c.der,"
    " c.device_serial, c.profile, COALESCE(c.station_id, 0), COALESCE(c.order_id, 0), c.spki_sha256,"
    " COALESCE(r.issuing_ca, -1), COALESCE(c.issuing_ca, 0)"
    " FROM rb_cert r LEFT JOIN certificates c ON c.cert_serial_hex = r.serial ORDER BY r.seq, r.serial";
/* Rows the audit does not name: certificates recorded before the state entry (known by count and rowid), valid. */
static const char k_cmp_cert_unknown[] =
    "SELECT cert_serial_hex, status FROM certificates c WHERE NOT EXISTS (SELECT 1 FROM rb_cert r"
    " WHERE r.serial = c.cert_serial_hex) AND (c.rowid > ?1 OR c.status <> 'valid') ORDER BY c.rowid LIMIT 1";
static const char k_cmp_cert_base[] = "SELECT count(*) FROM certificates WHERE rowid <= ?";
/* Stations and officers alike: name, role ('' for stations), enabled, fingerprint; then the table's. */
static const char k_cmp_stations[] =
    "SELECT r.name, '', r.enabled, r.fp, s.name IS NOT NULL, '', s.enabled, s.cert_sha256 FROM rb_station r"
    " LEFT JOIN stations s ON s.name = r.name ORDER BY r.seq";
static const char k_cmp_station_unknown[] =
    "SELECT name FROM stations WHERE name NOT IN (SELECT name FROM rb_station) ORDER BY id LIMIT 1";
static const char k_cmp_officers[] =
    "SELECT r.name, r.role, r.enabled, r.fp, o.name IS NOT NULL, o.role, o.enabled, o.cert_sha256 FROM rb_officer r"
    " LEFT JOIN officers o ON o.name = r.name ORDER BY r.seq";
static const char k_cmp_officer_unknown[] =
    "SELECT name FROM officers WHERE name NOT IN (SELECT name FROM rb_officer) ORDER BY id LIMIT 1";
static const char k_cmp_orders[] =
    "SELECT r.id, r.station, r.model, r.open, r.serials, r.serials_sha256, o.id IS NOT NULL, COALESCE(s.name, ''),"
    " o.model, o.open FROM rb_order r LEFT JOIN orders o ON o.id = r.id LEFT JOIN stations s ON s.id = o.station_id"
    " ORDER BY r.id";
static const char k_cmp_order_unknown[] =
    "SELECT id FROM orders WHERE id NOT IN (SELECT id FROM rb_order) ORDER BY id LIMIT 1";
static const char k_cmp_crl[] =
    "SELECT r.issuer, r.number, CASE r.issuer WHEN 'device' THEN s.crl_number ELSE s.ops_crl_number END"
    " FROM rb_crl r, revocation_state s WHERE s.id = 1 ORDER BY r.issuer";

static const char *yes_no(int64_t v, const char *yes, const char *no) { return v ? yes : no; }

static void utc(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) && strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0) return;
    if (ct_snprintf(out, 32, "%lld", (long long)t) != CT_OK) out[0] = '\0'; /* 20 digits fit: cannot fail */
}

static bool blob_eq(db_stmt *st, int col, db_stmt *st2, int col2)
{
    size_t n = 0, n2 = 0;
    const void *a = db_col_blob(st, col, &n), *b = db_col_blob(st2, col2, &n2);
    return a && b && n == n2 && memcmp(a, b, n) == 0;
}

static ct_err compare_certs(ct_db *db, rebuild_ctx *c)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_exec_script(db, k_rb_cert_order, "rebuild tables"));
    CT_GUARD_RET(db_prepare(db, k_cmp_certs, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) break;
        c->r->rows++;
        const char *serial = db_col_str(st, 0);
        const char *want = db_col_str(st, 2);
        int64_t seq = db_col_int(st, 1), at = db_col_int(st, 3), reason = db_col_int(st, 4);
        const char *reason_name = db_col_str(st, 5);
        char when[32], have_when[32];
        if (!(int)db_col_int(st, 13))
            return differs(c, "certificate %s: %s in the audit (entry %lld), not in the table (deleted?)", serial, want,
                           (long long)seq);
        const char *have = db_col_str(st, 14);
        int64_t have_at = db_col_int(st, 15), have_reason = db_col_int(st, 16);
        if (strcmp(want, have) != 0) {
            char why[64];
            if (*reason_name) CT_GUARD_RET(ct_strlcpy(why, sizeof why, reason_name));
            else CT_GUARD_RET(ct_snprintf(why, sizeof why, "reason code %lld", (long long)reason));
            utc(at, when);
            if (strcmp(want, "revoked") == 0)
                return differs(c, "certificate %s: revoked in the audit (%s at %s), %s in the table (un-revoked?)", serial,
                               why, when, have);
            return differs(c, "certificate %s: %s in the audit, %s in the table", serial, want, have);
        }
        if (strcmp(want, "revoked") == 0 && (at != have_at || reason != have_reason)) {
            utc(at, when);
            utc(have_at, have_when);
            return differs(c, "certificate %s: revoked in the audit at %s with reason code %lld, in the table at %s "
                           "with reason code %lld", serial, when, (long long)reason, have_when, (long long)have_reason);
        }
        if (!(int)db_col_int(st, 6)) continue; /* only its state is known (recorded before the state entry) */
        uint8_t der_hash[32];
        size_t der_len = 0, want_len = 0;
        const void *der = db_col_blob(st, 17, &der_len);
        CT_GUARD_RET(ct_sha256(der ? der : "", der_len, der_hash));
        const void *want_hash = db_col_blob(st, 12, &want_len);
        if (!want_hash || want_len != 32 || memcmp(want_hash, der_hash, 32) != 0)
            return differs(c, "certificate %s: its DER in the table is not the one the audit recorded (replaced?)", serial);
        const char *what = NULL;
        if (strcmp(db_col_str(st, 7), db_col_str(st, 18)) != 0)
            what = "device serial";
        else if (strcmp(db_col_str(st, 8), db_col_str(st, 19)) != 0)
            what = "profile";
        else if (db_col_int(st, 9) != db_col_int(st, 20)) what = "station";
        else if (db_col_int(st, 10) != db_col_int(st, 21)) what = "order";
        else if (!blob_eq(st, 11, st, 22)) what = "public key";
        else if (db_col_int(st, 23) >= 0 && db_col_int(st, 23) != db_col_int(st, 24))
            what = "issuing CA generation";
        if (what) return differs(c, "certificate %s: its %s in the table is not the one the audit recorded", serial, what);
    }
    CT_GUARD_RET(db_prepare(db, k_cmp_cert_unknown, &st, "i", c->base_rowid));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) {
        const char *serial = db_col_str(st, 0), *have = db_col_str(st, 1);
        if (strcmp(have, "valid") != 0)
            return differs(c, "certificate %s: valid in the audit, %s in the table (changed outside the CA?)", serial, have);
        return differs(c, "certificate %s: not in the audit, %s in the table (inserted?)", serial, have);
    }
    int64_t base = 0;
    CT_GUARD_RET(db_query_int(db, k_cmp_cert_base, &base, "i", c->base_rowid));
    if (base != c->base_certs)
        return differs(c, "certificates recorded before the audit's state entry: %lld in the audit, %lld in the table "
                       "(deleted?)", (long long)c->base_certs, (long long)base);
    return CT_OK;
}

/* One public key, one holder (certified_keys, migration 15): its triggers dropped, a claim deleted or moved would let
 * the key be certified for another holder. Each key's claim must name the first certificate of that key (rowid
 * order, as migration 15 and every issuance claim it: serial, profile, certificate serial), and each claim must name
 * a certificate of its key. Compared after the certificates themselves (their keys then are the audit's). Both read
 * the tables in their own order: a key's first certificate is one with no certificate of its key before it (an
 * index seek in certificates_by_key), not a list of keys whose rows were then read at random. */
static const char k_cmp_key_claims[] =
    "SELECT c.cert_serial_hex, c.device_serial, c.profile, k.spki_sha256 IS NOT NULL, COALESCE(k.cert_serial_hex, ''),"
    " COALESCE(k.device_serial, ''), COALESCE(k.profile, '') FROM certificates c"
    " LEFT JOIN certified_keys k ON k.spki_sha256 = c.spki_sha256"
    " WHERE NOT EXISTS (SELECT 1 FROM certificates e WHERE e.spki_sha256 = c.spki_sha256 AND e.rowid < c.rowid)"
    " AND (k.spki_sha256 IS NULL OR k.cert_serial_hex <> c.cert_serial_hex OR k.device_serial <> c.device_serial"
    " OR k.profile <> c.profile) ORDER BY c.rowid LIMIT 1";
static const char k_cmp_key_claim_unknown[] =
    "SELECT k.cert_serial_hex, k.device_serial, k.profile FROM certified_keys k WHERE NOT EXISTS (SELECT 1 FROM"
    " certificates c WHERE c.cert_serial_hex = k.cert_serial_hex AND c.spki_sha256 = k.spki_sha256)"
    " ORDER BY k.cert_serial_hex LIMIT 1";
static const char k_key_claim_count[] = "SELECT count(*) FROM certified_keys";

static ct_err compare_key_claims(ct_db *db, rebuild_ctx *c)
{
    db_stmt *st = NULL;
    bool row = false;
    int64_t claims = 0;
    CT_GUARD_RET(db_prepare(db, k_cmp_key_claims, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) {
        const char *serial = db_col_str(st, 0), *device = db_col_str(st, 1), *profile = db_col_str(st, 2);
        if (!(int)db_col_int(st, 3))
            return differs(c, "certificate %s (%s %s): its public key has no claim in certified_keys (deleted?)", serial,
                           device, profile);
        return differs(c, "certificate %s (%s %s) first certified its public key, certified_keys names certificate %s "
                       "(%s %s) (changed?)", serial, device, profile, db_col_str(st, 4), db_col_str(st, 5),
                       db_col_str(st, 6));
    }
    CT_GUARD_RET(db_prepare(db, k_cmp_key_claim_unknown, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row)
        return differs(c, "certified_keys claims a key for certificate %s (%s %s), which no certificate of that key is "
                       "(inserted?)", db_col_str(st, 0), db_col_str(st, 1), db_col_str(st, 2));
    CT_GUARD_RET(db_query_int(db, k_key_claim_count, &claims, ""));
    c->r->rows += claims;
    return CT_OK;
}

/* The first row of `sql` names a row the audit never recorded. */
static ct_err unknown_row(ct_db *db, rebuild_ctx *c, const char *sql, const char *kind)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, sql, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) return differs(c, "%s %s: not in the audit, in the table (inserted?)", kind,
                            db_col_str(st, 0));
    return CT_OK;
}

/* A station's or an officer's row: `sql` compares (k_cmp_stations, k_cmp_officers), `unknown` finds the rows the
 * audit never added. */
static ct_err compare_clients(ct_db *db, rebuild_ctx *c, const char *kind, const char *sql, const char *unknown)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, sql, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) break;
        c->r->rows++;
        const char *name = db_col_str(st, 0), *want_role = db_col_str(st, 1);
        int64_t want = db_col_int(st, 2), have = db_col_int(st, 6);
        if (!(int)db_col_int(st, 4)) return differs(c, "%s %s: in the audit, not in the table (deleted?)", kind, name);
        const char *have_role = db_col_str(st, 5);
        if (strcmp(want_role, have_role) != 0)
            return differs(c, "%s %s: %s in the audit, %s in the table", kind, name, want_role, have_role);
        if (want != have)
            return differs(c, "%s %s: %s in the audit, %s in the table", kind, name,
                           yes_no(want, "enabled", "disabled"), yes_no(have, "enabled", "disabled"));
        if (!blob_eq(st, 3, st, 7))
            return differs(c, "%s %s: its certificate in the table is not the one the audit recorded", kind, name);
    }
    return unknown_row(db, c, unknown, kind);
}

static ct_err compare_orders(ct_db *db, rebuild_ctx *c)
{
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_cmp_orders, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) break;
        c->r->rows++;
        int64_t id = db_col_int(st, 0), want_open = db_col_int(st, 3), n = 0;
        if (!(int)db_col_int(st, 6)) return differs(c, "order %lld: in the audit, not in the table (deleted?)", (long long)id);
        int64_t have_open = db_col_int(st, 9);
        if (strcmp(db_col_str(st, 1), db_col_str(st, 7)) != 0 ||
            strcmp(db_col_str(st, 2), db_col_str(st, 8)) != 0)
            return differs(c, "order %lld: its station or model in the table is not the audit's", (long long)id);
        if (want_open != have_open)
            return differs(c, "order %lld: %s in the audit, %s in the table", (long long)id,
                           yes_no(want_open, "open", "closed"), yes_no(have_open, "open", "closed"));
        uint8_t h[32];
        CT_GUARD_RET(db_order_serials_hash(db, id, h, &n));
        size_t want_len = 0;
        const void *want = db_col_blob(st, 5, &want_len);
        if (n != db_col_int(st, 4) || !want || want_len != 32 || memcmp(want, h, 32) != 0)
            return differs(c, "order %lld: %lld serials in the audit, %lld in the table%s", (long long)id,
                           (long long)db_col_int(st, 4), (long long)n,
                           n == db_col_int(st, 4) ? ", not the same ones (edited?)" : " (added or removed?)");
    }
    CT_GUARD_RET(db_prepare(db, k_cmp_order_unknown, &st, ""));
    CT_GUARD_RET(db_step(db, st, &row));
    if (row) return differs(c, "order %lld: not in the audit, in the table (inserted?)", (long long)db_col_int(st, 0));
    CT_GUARD_RET(db_prepare(db, k_cmp_crl, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) return CT_OK;
        int64_t want = db_col_int(st, 1), have = db_col_int(st, 2);
        if (want != have)
            return differs(c, "%s CRL number: %lld in the audit, %lld in the table", db_col_str(st, 0),
                           (long long)want, (long long)have);
    }
}

static const char k_cmp_reports[] =
    "SELECT r.id, r.seq, r.detail, w.id IS NOT NULL, w.* FROM rb_report r LEFT JOIN"
    " (SELECT report, " DB_WITNESS_REPORT_COLS " FROM log_witness_reports) w ON w.id = r.id ORDER BY r.id";
static const char k_cmp_report_unknown[] =
    "SELECT id FROM log_witness_reports WHERE id NOT IN (SELECT id FROM rb_report) ORDER BY id LIMIT 1";

/* Witness reports (they flag a witness in the officer console): each row as its event recorded it. */
static ct_err compare_reports(ct_db *db, rebuild_ctx *c)
{
    static const struct {
        const char *key, *what;
    } fields[] = {{"received", "time received"},   {"kind", "kind"},           {"kept", "kept size"},
                  {"served", "served size"},        {"witness_sha256", "witness"}, {"reason_sha256", "reason"},
                  {"report_sha256", "report text"}};
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_cmp_reports, &st, ""));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row) break;
        c->r->rows++;
        int64_t id = db_col_int(st, 0), seq = db_col_int(st, 1);
        const char *want = db_col_str(st, 2);
        if (!(int)db_col_int(st, 3))
            return differs(c, "witness report %lld: in the audit (entry %lld), not in the table (deleted?)", (long long)id,
                           (long long)seq);
        if (!want) continue; /* recorded before format 2: only its row is known */
        db_witness_report r;
        db_detail have;
        const char *report = db_col_str(st, 4);
        CT_GUARD_RET(db_witness_report_read(st, 5, &r));
        CT_GUARD_RET(db_witness_report_detail(&r, report ? report : "", &have));
        if (strcmp(want, have.s) == 0) continue;
        const char *what = "fields";
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            char a[DB_AUDIT_DETAIL_MAX], b[DB_AUDIT_DETAIL_MAX];
            if (kv_get(want, fields[i].key, a, sizeof a) && kv_get(have.s, fields[i].key, b, sizeof b) && !strcmp(a, b))
                continue;
            what = fields[i].what;
            break;
        }
        return differs(c, "witness report %lld: its %s in the table is not the one the audit recorded (entry %lld; "
                       "edited?)", (long long)id, what, (long long)seq);
    }
    return unknown_row(db, c, k_cmp_report_unknown, "witness report");
}

static ct_err state_compare(ct_db *db, rebuild_ctx *c)
{
    CT_GUARD_RET(replay(db, c));
    CT_GUARD_RET(compare_certs(db, c));
    CT_GUARD_RET(compare_key_claims(db, c));
    CT_GUARD_RET(compare_clients(db, c, "station", k_cmp_stations, k_cmp_station_unknown));
    CT_GUARD_RET(compare_clients(db, c, "officer", k_cmp_officers, k_cmp_officer_unknown));
    CT_GUARD_RET(compare_orders(db, c));
    return compare_reports(db, c);
}

static ct_err state_verify_fn(ct_db *db, void *vctx)
{
    ct_err rc = state_compare(db, vctx);
    /* the memory given to the rb_* tables back, the detail of a difference kept */
    ct_err_saved compared;
    ct_err_save(&compared, rc);
    ct_err done = db_exec_script(db, db_sql(db, k_rb_done, k_rb_done_pg), "rebuild tables");
    return rc == CT_OK ? done : ct_err_restore(&compared);
}

ct_err db_state_verify(ct_db *db, db_state_report *report)
{
    CT_ENSURE_RET(db && report, ct_fail(CT_ERR_ARG, "db_state_verify: missing argument"));
    memset(report, 0, sizeof *report);
    rebuild_ctx c = {.r = report};
    int64_t t0 = ct_now_ms();
    /* A transaction for one snapshot of audit and tables; the rb_* tables are TEMP (this connection's only) and
     * go with its rollback. */
    ct_err rc = db_call_scratch(db, state_verify_fn, &c);
    report->ms = ct_now_ms() - t0;
    return rc;
}
