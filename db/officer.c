/* db officers: security officers and auditors, and what they read (search, one certificate, report). */
#define _POSIX_C_SOURCE 200809L
#include "db_priv.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const k_role_names[] = {[DB_ROLE_AUDITOR] = "auditor", [DB_ROLE_OFFICER] = "officer"};

const char *db_role_name(db_role role) { return (unsigned)role <= DB_ROLE_OFFICER ? k_role_names[role] : "?"; }

ct_err db_role_parse(const char *name, db_role *out)
{
    for (unsigned r = 0; r <= DB_ROLE_OFFICER; r++) {
        if (name && strcmp(name, k_role_names[r]) == 0) {
            *out = (db_role)r;
            return CT_OK;
        }
    }
    return ct_fail(CT_ERR_USAGE, "role '%.40s' is not one of: auditor, officer", name ? name : "");
}

/* ---------------------------------------------------------------------------------------------------------
 * officers
 * ------------------------------------------------------------------------------------------------------- */
static const char k_officer_insert[] = "INSERT INTO officers (name, role, enabled, cert_sha256, cert_serial_hex, cert_der,"
                                       " created_at) VALUES (?, ?, 1, ?, ?, ?, ?)";
static const char k_officer_named[] = "SELECT id FROM officers WHERE name = ?";
/* An officer is refused as soon as its certificate is revoked (no row: recorded before certificates were). */
static const char k_officer_by_cert[] =
    "SELECT id, name, role, enabled, cert_serial_hex, EXISTS (SELECT 1 FROM certificates c"
    " WHERE c.cert_serial_hex = officers.cert_serial_hex AND c.profile = '" DB_PROFILE_OFFICER "'"
    " AND c.status = 'revoked') FROM officers WHERE cert_sha256 = ?";
static const char k_officer_enable[] = "UPDATE officers SET enabled = ? WHERE name = ?";
static const char k_officer_role_get[] = "SELECT role = ?2 FROM officers WHERE name = ?1";
static const char k_officer_role_set[] = "UPDATE officers SET role = ? WHERE name = ?";

struct officer_ctx {
    const char *name;
    db_role role;
    const uint8_t *hash;
    const db_cert_record *cert;
    const char *actor;
    db_officer *out;
    bool revoked;
};

static ct_err officer_add_tx(ct_db *db, void *vctx)
{
    struct officer_ctx *c = vctx;
    const db_cert_record *r = c->cert;
    int64_t id = 0;
    ct_err rc = db_exec(db, k_officer_insert, NULL, "ttbtbi", c->name, db_role_name(c->role), c->hash, (size_t)32,
                        r->cert_serial_hex, r->der, r->der_len, db_now());
    if (rc == CT_ERR_EXISTS)
        return db_query_int(db, k_officer_named, &id, "t", c->name) == CT_OK
                   ? ct_fail(CT_ERR_EXISTS, "officer name '%s' is taken", c->name)
                   : ct_fail(CT_ERR_EXISTS, "this certificate is already registered to another officer");
    CT_GUARD_RET(rc);
    CT_GUARD_RET(db_cert_insert_tx(db, r, NULL, c->actor));
    db_detail d;
    db_detail_init(&d);
    CT_GUARD_RET(db_detail_str(&d, "role", db_role_name(c->role)));
    CT_GUARD_RET(db_detail_str(&d, "cert_serial", r->cert_serial_hex));
    CT_GUARD_RET(db_detail_hex(&d, "fp", c->hash, 32));
    return db_audit_append_tx(db, c->actor, "officer.add", c->name, "ok", d.s);
}

ct_err db_officer_add(ct_db *db, const char *name, db_role role, const db_cert_record *cert, const char *actor)
{
    uint8_t hash[32];
    CT_ENSURE_RET(db && (unsigned)role <= DB_ROLE_OFFICER, ct_fail(CT_ERR_ARG, "officer role missing"));
    CT_GUARD_RET(db_check_str("officer name", name, DB_NAME_MAX));
    CT_GUARD_RET(db_cert_record_check(cert, NULL, actor));
    CT_ENSURE_RET(strcmp(cert->profile, DB_PROFILE_OFFICER) == 0 && strcmp(cert->device_serial, name) == 0,
                  ct_fail(CT_ERR_ARG, "an officer certificate is recorded with profile officer and its name"));
    CT_GUARD_RET(ct_sha256(cert->der, cert->der_len, hash));
    struct officer_ctx c = {.name = name, .role = role, .hash = hash, .cert = cert, .actor = actor};
    return db_call(db, true, officer_add_tx, &c);
}

static ct_err officer_find_fn(ct_db *db, void *vctx)
{
    struct officer_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    char role[16];
    CT_GUARD_RET(db_prepare(db, k_officer_by_cert, &st, "b", c->hash, (size_t)32));
    CT_GUARD_RET(db_step(db, st, &row));
    if (!row) return CT_ERR_NOT_FOUND;
    memset(c->out, 0, sizeof *c->out);
    c->out->id = db_col_int(st, 0);
    CT_GUARD_RET(db_col_text(st, 1, c->out->name, sizeof c->out->name));
    CT_GUARD_RET(db_col_text(st, 2, role, sizeof role));
    CT_GUARD_RET(db_role_parse(role, &c->out->role));
    c->out->enabled = (int)db_col_int(st, 3) != 0;
    c->revoked = (int)db_col_int(st, 5) != 0;
    return db_col_text(st, 4, c->out->cert_serial_hex, sizeof c->out->cert_serial_hex);
}

ct_err db_officer_find_by_cert(ct_db *db, const uint8_t cert_sha256[32], db_officer *out)
{
    CT_ENSURE_RET(db && cert_sha256 && out, ct_fail(CT_ERR_ARG, "db_officer_find_by_cert: missing argument"));
    struct officer_ctx c = {.hash = cert_sha256, .out = out};
    CT_GUARD_RET(db_call(db, false, officer_find_fn, &c));
    CT_ENSURE_RET(!c.revoked, ct_fail(CT_ERR_DISABLED, "the certificate of officer %s (%s) is revoked", out->name,
                                      out->cert_serial_hex));
    return CT_OK;
}

struct enable_ctx {
    const char *kind, *sql, *name, *actor;
    bool enabled;
};

static ct_err enable_tx(ct_db *db, void *vctx)
{
    struct enable_ctx *c = vctx;
    int changes = 0;
    char action[64];
    CT_GUARD_RET(db_exec(db, c->sql, &changes, "it", (int64_t)c->enabled, c->name));
    CT_ENSURE_RET(changes == 1, ct_fail(CT_ERR_NOT_FOUND, "no %s named '%s'", c->kind, c->name));
    CT_GUARD_RET(ct_snprintf(action, sizeof action, "%s.%s", c->kind, c->enabled ? "enable" : "disable"));
    return db_audit_append_tx(db, c->actor, action, c->name, "ok", DB_DETAIL_V2);
}

ct_err db_client_set_enabled(ct_db *db, const char *kind, const char *sql, const char *name, bool enabled,
                             const char *actor)
{
    char what[64];
    CT_ENSURE_RET(db && kind && sql, CT_ERR_ARG);
    CT_GUARD_RET(ct_snprintf(what, sizeof what, "%s name", kind));
    CT_GUARD_RET(db_check_str(what, name, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct enable_ctx c = {.kind = kind, .sql = sql, .name = name, .actor = actor, .enabled = enabled};
    return db_call(db, true, enable_tx, &c);
}

ct_err db_officer_set_enabled(ct_db *db, const char *name, bool enabled, const char *actor)
{
    return db_client_set_enabled(db, "officer", k_officer_enable, name, enabled, actor);
}

static ct_err officer_role_tx(ct_db *db, void *vctx)
{
    struct officer_ctx *c = vctx;
    int64_t same = 0;
    ct_err rc = db_query_int(db, k_officer_role_get, &same, "tt", c->name, db_role_name(c->role));
    CT_ENSURE_RET(rc != CT_ERR_NOT_FOUND, ct_fail(CT_ERR_NOT_FOUND, "no officer named '%s'", c->name));
    CT_GUARD_RET(rc);
    CT_ENSURE_RET(!same, ct_fail(CT_ERR_EXISTS, "officer %s is %s already", c->name, db_role_name(c->role)));
    CT_GUARD_RET(db_exec(db, k_officer_role_set, NULL, "tt", db_role_name(c->role), c->name));
    db_detail d;
    db_detail_init(&d);
    CT_GUARD_RET(db_detail_str(&d, "role", db_role_name(c->role)));
    return db_audit_append_tx(db, c->actor, "officer.role", c->name, "ok", d.s);
}

ct_err db_officer_set_role(ct_db *db, const char *name, db_role role, const char *actor)
{
    CT_ENSURE_RET(db && (unsigned)role <= DB_ROLE_OFFICER, ct_fail(CT_ERR_ARG, "officer role missing"));
    CT_GUARD_RET(db_check_str("officer name", name, DB_NAME_MAX));
    CT_GUARD_RET(db_check_str("actor", actor, DB_AUDIT_FIELD_MAX));
    struct officer_ctx c = {.name = name, .role = role, .actor = actor};
    return db_call(db, true, officer_role_tx, &c);
}

/* ---------------------------------------------------------------------------------------------------------
 * search and one certificate
 * ------------------------------------------------------------------------------------------------------- */
#define CERT_ROW_COLUMNS                                                                                       \
    "SELECT c.cert_serial_hex, c.device_serial, c.profile, c.subject, COALESCE(s.name, ''),"                  \
    " COALESCE(c.order_id, 0), COALESCE(o.model, ''), c.status, c.issued_at, c.not_before, c.not_after,"      \
    " COALESCE(c.revoked_at, 0), COALESCE(c.revocation_reason, -1)"
#define CERT_ROW_FROM                                                                                          \
    " FROM certificates c LEFT JOIN stations s ON s.id = c.station_id LEFT JOIN orders o ON o.id = c.order_id"
/* What officers search and report: the certificates of cameras and viewers (DB_OPERATOR_PROFILES). */
#define NOT_CLIENT(col) " " col " NOT IN " DB_OPERATOR_PROFILES " "
/* Every filter is a parameter (NULL: any), each kept by its own term below. A term "?N IS NULL OR ..." cannot use an
 * index, so each search is led by its most selective given filter written as a plain term that one can (what
 * search_lead picks; its plain term restates what its own "IS NULL OR" term keeps, nothing more): an officer's
 * search reads the rows its filters name, not the whole table (1M rows: 0.13 s a count otherwise). The station and
 * model are looked up first (stations.name is unique), so that certificates are read by station or order. */
#define SEARCH_KEPT                                                                                            \
    " AND (?1 IS NULL OR c.device_serial = ?1 COLLATE NOCASE) AND (?2 IS NULL OR c.cert_serial_hex = ?2)"      \
    " AND (?3 IS NULL OR c.station_id = (SELECT id FROM stations WHERE name = ?3))"                           \
    " AND (?4 IS NULL OR c.order_id = ?4) AND (?5 IS NULL OR c.order_id IN (SELECT id FROM orders WHERE model = ?5))" \
    " AND (?6 IS NULL OR c.issued_at >= ?6) AND (?7 IS NULL OR c.issued_at < ?7) AND (?8 IS NULL OR c.status = ?8)"
#define SEARCH_WHERE(lead) " WHERE" NOT_CLIENT("c.profile") "AND " lead SEARCH_KEPT
/* The leading terms, most selective first (search_lead). The time range's open ends are the widest values (no
 * certificate is issued at either): both ends bound the index's range. Only "revoked" has an index of its own, of
 * revocation times (a revoked certificate has one: a trigger sees to it), read whole by that open range. */
#define SEARCH_LEADS(X)                                                                                        \
    X(SEARCH_BY_CERT, "c.cert_serial_hex = ?2")                                                               \
    X(SEARCH_BY_DEVICE, "c.device_serial = ?1 COLLATE NOCASE")                                                \
    X(SEARCH_BY_ORDER, "c.order_id = ?4")                                                                     \
    X(SEARCH_BY_STATION, "c.station_id = (SELECT id FROM stations WHERE name = ?3)")                          \
    X(SEARCH_BY_MODEL, "c.order_id IN (SELECT id FROM orders WHERE model = ?5)")                              \
    X(SEARCH_BY_TIME, "c.issued_at >= COALESCE(?6, -9223372036854775807)"                                     \
                      " AND c.issued_at <= COALESCE(?7, 9223372036854775807)")                                \
    X(SEARCH_BY_REVOKED, "c.status = 'revoked' AND c.revoked_at >= -9223372036854775807")                     \
    X(SEARCH_ALL, "1 = 1")
#define SEARCH_ENUM(name, term) name,
typedef enum { SEARCH_LEADS(SEARCH_ENUM) SEARCH__COUNT } search_lead_kind;
#define SEARCH_ROWS_SQL(name, term)                                                                            \
    [name] = CERT_ROW_COLUMNS CERT_ROW_FROM SEARCH_WHERE(term) " ORDER BY c.issued_at DESC, c.cert_serial_hex LIMIT ?9 OFFSET ?10",
#define SEARCH_COUNT_SQL(name, term) [name] = "SELECT count(*) FROM certificates c" SEARCH_WHERE(term),
static const char *const k_search[SEARCH__COUNT] = {SEARCH_LEADS(SEARCH_ROWS_SQL)};
static const char *const k_search_count[SEARCH__COUNT] = {SEARCH_LEADS(SEARCH_COUNT_SQL)};
static const char k_cert_one[] = CERT_ROW_COLUMNS ", c.der" CERT_ROW_FROM " WHERE c.cert_serial_hex = ?";
static const char k_cert_issue_event[] = "SELECT seq FROM audit WHERE action = 'cert.issue' AND subject = ?"
                                         " AND (detail = 'cert_serial=' || ?2 OR detail LIKE 'cert_serial=' || ?2 || ' %'"
                                         " OR detail LIKE '" DB_DETAIL_V2 " cert_serial=' || ?2 || ' %')"
                                         " ORDER BY seq LIMIT 1";

static const char *nullable(const char *s) { return s && *s ? s : NULL; }

static ct_err cert_row_fill(db_stmt *st, db_cert_row *r)
{
    memset(r, 0, sizeof *r);
    CT_GUARD_RET(db_col_text(st, 0, r->cert_serial_hex, sizeof r->cert_serial_hex));
    CT_GUARD_RET(db_col_text(st, 1, r->device_serial, sizeof r->device_serial));
    CT_GUARD_RET(db_col_text(st, 2, r->profile, sizeof r->profile));
    CT_GUARD_RET(db_col_text(st, 3, r->subject, sizeof r->subject));
    CT_GUARD_RET(db_col_text(st, 4, r->station, sizeof r->station));
    r->order_id = db_col_int(st, 5);
    CT_GUARD_RET(db_col_text(st, 6, r->model, sizeof r->model));
    CT_GUARD_RET(db_col_text(st, 7, r->status, sizeof r->status));
    r->issued_at = db_col_int(st, 8);
    r->not_before = db_col_int(st, 9);
    r->not_after = db_col_int(st, 10);
    r->revoked_at = db_col_int(st, 11);
    r->reason = (int)db_col_int(st, 12);
    return CT_OK;
}

struct search_ctx {
    const db_search *q;
    db_cert_row *rows;
    size_t n;
    int64_t total;
    bool want_total;
    /* db_cert_get */
    const char *serial;
    ct_buf *der;
    int64_t audit_seq;
};

/* The search's leading filter: the first given of SEARCH_LEADS. */
static search_lead_kind search_lead(const db_search *q)
{
    if (nullable(q->cert_serial_hex)) return SEARCH_BY_CERT;
    if (nullable(q->device_serial)) return SEARCH_BY_DEVICE;
    if (q->order_id) return SEARCH_BY_ORDER;
    if (nullable(q->station)) return SEARCH_BY_STATION;
    if (nullable(q->model)) return SEARCH_BY_MODEL;
    if (q->from || q->to) return SEARCH_BY_TIME;
    if (q->status && strcmp(q->status, "revoked") == 0) return SEARCH_BY_REVOKED;
    return SEARCH_ALL;
}

const char *db_cert_search_sql(const db_search *q, bool count)
{
    return (count ? k_search_count : k_search)[search_lead(q)];
}

static ct_err search_fn(ct_db *db, void *vctx)
{
    struct search_ctx *c = vctx;
    const db_search *q = c->q;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, db_cert_search_sql(q, false), &st, "tttztzztii", nullable(q->device_serial),
                            nullable(q->cert_serial_hex), nullable(q->station), q->order_id, nullable(q->model), q->from,
                            q->to, nullable(q->status), q->limit, q->offset));
    for (;;) {
        CT_GUARD_RET(db_step(db, st, &row));
        if (!row || c->n >= (size_t)q->limit) break;
        CT_GUARD_RET(cert_row_fill(st, &c->rows[c->n]));
        c->n++;
    }
    if (!c->want_total) return CT_OK;
    return db_query_int(db, db_cert_search_sql(q, true), &c->total, "tttztzzt", nullable(q->device_serial),
                        nullable(q->cert_serial_hex), nullable(q->station), q->order_id, nullable(q->model), q->from,
                        q->to, nullable(q->status));
}

ct_err db_cert_search(ct_db *db, const db_search *q, db_cert_row *rows, size_t *n, int64_t *total)
{
    CT_ENSURE_RET(db && q && rows && n, ct_fail(CT_ERR_ARG, "db_cert_search: missing argument"));
    CT_ENSURE_RET(q->limit >= 1 && q->limit <= DB_SEARCH_MAX_LIMIT && q->offset >= 0 && q->order_id >= 0,
                  ct_fail(CT_ERR_USAGE, "limit must be 1..%d and offset, order at least 0", DB_SEARCH_MAX_LIMIT));
    struct search_ctx c = {.q = q, .rows = rows, .want_total = total != NULL};
    *n = 0;
    CT_GUARD_RET(db_call(db, false, search_fn, &c));
    *n = c.n;
    if (total) *total = c.total;
    return CT_OK;
}

static ct_err cert_get_fn(ct_db *db, void *vctx)
{
    struct search_ctx *c = vctx;
    db_stmt *st = NULL;
    bool row = false;
    CT_GUARD_RET(db_prepare(db, k_cert_one, &st, "t", c->serial));
    CT_GUARD_RET(db_step(db, st, &row));
    CT_ENSURE_RET(row, ct_fail(CT_ERR_NOT_FOUND, "no certificate with serial %s was issued here", c->serial));
    CT_GUARD_RET(cert_row_fill(st, c->rows));
    size_t len = 0;
    const void *der = db_col_blob(st, 13, &len);
    CT_ENSURE_RET(der && len > 0, ct_fail(CT_ERR_DB, "certificate %s has no DER", c->serial));
    CT_GUARD_RET(ct_buf_alloc(c->der, len));
    CT_GUARD_RET(ct_buf_set(c->der, der, len));
    ct_err rc = db_query_int(db, k_cert_issue_event, &c->audit_seq, "tt", c->rows->device_serial, c->serial);
    return rc == CT_ERR_NOT_FOUND ? CT_OK : rc;
}

ct_err db_cert_get(ct_db *db, const char *cert_serial_hex, db_cert_row *row, ct_buf *der, int64_t *audit_seq)
{
    CT_ENSURE_RET(db && row && der && audit_seq, ct_fail(CT_ERR_ARG, "db_cert_get: missing argument"));
    CT_GUARD_RET(db_check_str("certificate serial", cert_serial_hex, DB_CERT_SERIAL_HEX_MAX));
    struct search_ctx c = {.rows = row, .serial = cert_serial_hex, .der = der};
    ct_err rc = db_call(db, false, cert_get_fn, &c);
    if (rc != CT_OK) ct_buf_free(der);
    *audit_seq = c.audit_seq;
    return rc;
}

/* ---------------------------------------------------------------------------------------------------------
 * report
 * ------------------------------------------------------------------------------------------------------- */
/* ?1, ?2: the time range (NULL: open); TS(col) keeps a time column inside it. */
#define TS(col) " (?1 IS NULL OR " col " >= ?1) AND (?2 IS NULL OR " col " < ?2) "
/* How many refused requests an audit entry stands for: a counted entry (ca/ca_refusals.c: "N refused from FIRST to
 * LAST: REASON") N, any other entry 1. Only text functions both backends have (no instr, no position). */
#define DIGITS "'0123456789'"
#define ENTRY_REQUESTS                                                                                        \
    " (CASE WHEN length(ltrim(detail, " DIGITS ")) < length(detail) AND ltrim(detail, " DIGITS ") LIKE ' refused from %'" \
    " THEN CAST(substr(detail, 1, length(detail) - length(ltrim(detail, " DIGITS "))) AS BIGINT) ELSE 1 END) "
#define AUDIT_EVENT_COLUMNS(n0) "SELECT seq, ts, actor, action, subject, detail, " n0 ", 0, 0, 0, 0 FROM audit WHERE "
/* Each query's columns: id, ts, name, text, subject, detail, n0..n4 (missing ones NULL). */
static const char *const k_report_sql[DB_REPORT__COUNT] = {
    [DB_REPORT_TOTALS] =
        "SELECT 0, 0, '', '', '', '',"
        " (SELECT count(*) FROM certificates WHERE" NOT_CLIENT("profile") "AND" TS("issued_at") "),"
        " (SELECT count(*) FROM certificates WHERE" NOT_CLIENT("profile") "AND status = 'revoked' AND"
        TS("revoked_at") "),"
        " (SELECT COALESCE(sum(" ENTRY_REQUESTS "), 0) FROM audit WHERE outcome = 'denied' AND" TS("ts") "),"
        " (SELECT count(*) FROM audit WHERE outcome = 'ok' AND action LIKE '%.revoke' AND" TS("ts") "),"
        " (SELECT count(*) FROM audit WHERE outcome = 'denied' AND" TS("ts") ")",
    [DB_REPORT_STATION] = /* denied: its enrollments, and its attempts at officer routes; over: those past its budget */
        "SELECT 0, 0, s.name, '', '', '', COALESCE(i.n, 0), COALESCE(i.r, 0), COALESCE(sum(d.n), 0), COALESCE(sum(d.b), 0),"
        " COALESCE(sum(d.e), 0) FROM stations s"
        " LEFT JOIN (SELECT station_id, count(*) n, sum(CASE WHEN status = 'revoked' THEN 1 ELSE 0 END) r FROM certificates WHERE" TS("issued_at")
        " GROUP BY station_id) i ON i.station_id = s.id"
        " LEFT JOIN (SELECT actor, sum(" ENTRY_REQUESTS ") n, count(*) e,"
        " sum(CASE WHEN action = 'est.budget' THEN" ENTRY_REQUESTS "ELSE 0 END) b FROM audit WHERE outcome = 'denied' AND" TS("ts")
        " GROUP BY actor) d ON d.actor = s.name OR d.actor = 'station:' || s.name"
        " GROUP BY s.id, s.name, i.n, i.r ORDER BY COALESCE(i.n, 0) DESC, s.name LIMIT 201",
    [DB_REPORT_ORDER] =
        "SELECT o.id, 0, s.name, o.model, '', '',"
        " (SELECT count(*) FROM order_serials x WHERE x.order_id = o.id),"
        " (SELECT count(DISTINCT c.device_serial) FROM certificates c WHERE c.order_id = o.id AND" TS("c.issued_at") "),"
        " (SELECT count(*) FROM certificates c WHERE c.order_id = o.id AND c.status = 'revoked' AND" TS("c.issued_at") "),"
        " o.open, 0 FROM orders o JOIN stations s ON s.id = o.station_id ORDER BY o.id DESC LIMIT 501",
    [DB_REPORT_DAY] =
        "SELECT 0, c.issued_at / 86400 d, '', COALESCE(s.name, ''), '', '', count(*), 0, 0, 0, 0" /* the UTC day, named in C */
        " FROM certificates c LEFT JOIN stations s ON s.id = c.station_id WHERE" NOT_CLIENT("c.profile") "AND"
        TS("c.issued_at")
        " GROUP BY d, s.name ORDER BY d DESC, s.name LIMIT 1001",
    [DB_REPORT_REASON] =
        "SELECT revocation_reason, 0, '', '', '', '', count(*), 0, 0, 0, 0 FROM certificates"
        " WHERE" NOT_CLIENT("profile") "AND status = 'revoked' AND" TS("revoked_at") "GROUP BY revocation_reason ORDER BY revocation_reason",
    [DB_REPORT_DENIAL] =
        AUDIT_EVENT_COLUMNS(ENTRY_REQUESTS) "outcome = 'denied' AND" TS("ts") "ORDER BY seq DESC LIMIT 101",
    [DB_REPORT_REVOCATION] =
        AUDIT_EVENT_COLUMNS("0") "outcome = 'ok' AND action LIKE '%.revoke' AND" TS("ts") "ORDER BY seq DESC LIMIT 101",
};
_Static_assert(DB_REPORT_MAX_STATIONS == 200 && DB_REPORT_MAX_ORDERS == 500 && DB_REPORT_MAX_DAYS == 1000 &&
                   DB_REPORT_MAX_EVENTS == 100,
               "the LIMITs in k_report_sql: each one more, so that a section cut is told from one that is whole");

/* Copies a text column, cut (not refused) at the field's size: reports show audit text, which may be longer. */
static void col_text_cut(db_stmt *st, int col, char *dst, size_t max)
{
    const char *s = db_col_str(st, col);
    size_t n = s ? strnlen(s, max - 1) : 0;
    if (n) memcpy(dst, s, n);
    dst[n] = '\0';
}

struct report_ctx {
    int64_t from, to;
    db_report_row *rows;
    size_t n, cap;
};

static ct_err report_fn(ct_db *db, void *vctx)
{
    struct report_ctx *c = vctx;
    for (int sec = 0; sec < DB_REPORT__COUNT; sec++) {
        db_stmt *st = NULL;
        bool row = false;
        CT_GUARD_RET(db_prepare(db, k_report_sql[sec], &st, "zz", c->from, c->to));
        for (;;) {
            CT_GUARD_RET(db_step(db, st, &row));
            if (!row) break;
            CT_ENSURE_RET(c->n < c->cap, ct_fail(CT_ERR_INTERNAL, "report larger than its bound"));
            db_report_row *r = &c->rows[c->n++];
            memset(r, 0, sizeof *r);
            r->section = (db_report_section)sec;
            r->id = db_col_int(st, 0);
            r->ts = db_col_int(st, 1);
            col_text_cut(st, 2, r->name, sizeof r->name);
            if (sec == DB_REPORT_DAY) {
                ct_time_utc(r->ts * 86400, r->name);
                r->name[10] = '\0'; /* YYYY-MM-DD */
                r->ts = 0;
            }
            col_text_cut(st, 3, r->text, sizeof r->text);
            col_text_cut(st, 4, r->subject, sizeof r->subject);
            col_text_cut(st, 5, r->detail, sizeof r->detail);
            for (int i = 0; i < DB_REPORT_NUMBERS; i++) r->n[i] = db_col_int(st, 6 + i);
        }
    }
    return CT_OK;
}

ct_err db_report(ct_db *db, int64_t from, int64_t to, db_report_cb cb, void *arg)
{
    ct_err rc = CT_OK;
    CT_ENSURE_RET(db && cb, ct_fail(CT_ERR_ARG, "db_report: missing argument"));
    struct report_ctx c = {.from = from, .to = to,
                           .cap = 1 + DB_REPORT_MAX_STATIONS + DB_REPORT_MAX_ORDERS + DB_REPORT_MAX_DAYS + 11 +
                                  2 * DB_REPORT_MAX_EVENTS + 5}; /* each cut section's one more row */
    c.rows = calloc(c.cap, sizeof *c.rows);
    CT_ENSURE(c.rows, CT_ERR_NOMEM);
    CT_GUARD(db_call(db, false, report_fn, &c));
    for (size_t i = 0; i < c.n; i++) CT_GUARD(cb(&c.rows[i], arg));
cleanup:
    free(c.rows);
    return rc;
}
