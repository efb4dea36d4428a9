/* What officers read, in the CA's own words and three formats (table, CSV, JSON): certificate search, one
 * certificate in detail, and the issuance/denial/revocation report. Plain C: the CLI and the officer API
 * (ca_officer.c) both call it. */
#define _GNU_SOURCE /* timegm, strptime */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define SEARCH_OUT_MAX (1024 * 1024)
#define REPORT_OUT_MAX (4 * 1024 * 1024)
#define DETAIL_OUT_MAX (64 * 1024)
#define FILTER_MAX 128 /* bytes of any one filter value */
#define OFFSET_MAX 1000000000LL
#define NUM_MAX CT_TIME_UTC_MAX

ct_err ca_format_parse(const char *name, ca_format *out)
{
    static const char *const names[] = {[CA_FORMAT_TABLE] = "table", [CA_FORMAT_CSV] = "csv", [CA_FORMAT_JSON] = "json"};
    for (unsigned f = 0; f <= CA_FORMAT_JSON; f++) {
        if (name && strcmp(name, names[f]) == 0) {
            *out = (ca_format)f;
            return CT_OK;
        }
    }
    return ct_fail(CT_ERR_USAGE, "format '%.20s' is not one of: table, csv, json", name ? name : "");
}

/* ---- output: tables of text cells, written as aligned text, CSV (RFC 4180) or JSON ---- */
typedef enum { COL_TEXT, COL_NUM, COL_OPT /* text, JSON null when empty */ } col_kind;
typedef struct {
    const char *name;
    col_kind kind;
    int width; /* for the table format */
} column;

typedef struct {
    ca_format f;
    ct_buf *out;
    const column *cols;
    size_t ncols;
    size_t tables;
} emitter;

/* JSON objects and arrays are written with a ',' after every element; closing drops the last one. */
static ct_err json_close(ct_buf *b, char bracket)
{
    if (b->len && b->data[b->len - 1] == ',') b->len--;
    char end[2] = {bracket, ','};
    return ct_buf_append(b, end, 2);
}

static ct_err json_key(ct_buf *b, const char *key)
{
    CT_GUARD_RET(ct_json_string(b, key));
    return ct_buf_append(b, ":", 1);
}

static ct_err json_str(ct_buf *b, const char *key, const char *value)
{
    CT_GUARD_RET(json_key(b, key));
    CT_GUARD_RET(ct_json_string(b, value));
    return ct_buf_append(b, ",", 1);
}

static ct_err json_num(ct_buf *b, const char *key, int64_t value)
{
    CT_GUARD_RET(json_key(b, key));
    return ct_buf_appendf(b, "%lld,", (long long)value);
}

/* Text for a terminal: control characters would move the cursor or worse, so they show as '?' (ct_text_safe, byte
 * for byte, written straight into the buffer: with room for the cell and a NUL it is never cut). */
static ct_err table_text(ct_buf *b, const char *s, int width)
{
    size_t n = strlen(s);
    CT_ENSURE_RET(n < b->max - b->len, ct_fail(CT_ERR_BUF_FULL, "output larger than %zu bytes", b->max));
    ct_text_safe((char *)b->data + b->len, n + 1, s, n);
    b->len += n;
    for (size_t i = n; (int)i < width; i++) CT_GUARD_RET(ct_buf_append(b, " ", 1));
    return ct_buf_append(b, " ", 1);
}

static ct_err doc_begin(emitter *e)
{
    return e->f == CA_FORMAT_JSON ? ct_buf_append(e->out, "{", 1) : CT_OK;
}

static ct_err doc_end(emitter *e)
{
    if (e->f != CA_FORMAT_JSON) return CT_OK;
    CT_GUARD_RET(json_close(e->out, '}'));
    e->out->data[e->out->len - 1] = '\n';
    return CT_OK;
}

static ct_err table_begin(emitter *e, const char *name, const column *cols, size_t ncols)
{
    e->cols = cols;
    e->ncols = ncols;
    switch (e->f) {
    case CA_FORMAT_JSON:
        CT_GUARD_RET(json_key(e->out, name));
        return ct_buf_append(e->out, "[", 1);
    case CA_FORMAT_CSV: /* several tables: each its own header, a blank line between */
        if (e->tables) CT_GUARD_RET(ct_buf_append(e->out, "\r\n", 2));
        for (size_t i = 0; i < ncols; i++) {
            if (i) CT_GUARD_RET(ct_buf_append(e->out, ",", 1));
            CT_GUARD_RET(ct_csv_field(e->out, cols[i].name));
        }
        return ct_buf_append(e->out, "\r\n", 2);
    case CA_FORMAT_TABLE:
        CT_GUARD_RET(ct_buf_appendf(e->out, "%s== %s ==\n", e->tables ? "\n" : "", name));
        for (size_t i = 0; i < ncols; i++) CT_GUARD_RET(table_text(e->out, cols[i].name, cols[i].width));
        e->out->data[e->out->len - 1] = '\n';
        return CT_OK;
    }
    return CT_ERR_ARG;
}

static ct_err table_row(emitter *e, const char *const *cells)
{
    switch (e->f) {
    case CA_FORMAT_JSON:
        CT_GUARD_RET(ct_buf_append(e->out, "{", 1));
        for (size_t i = 0; i < e->ncols; i++) {
            CT_GUARD_RET(json_key(e->out, e->cols[i].name));
            if (e->cols[i].kind == COL_NUM) CT_GUARD_RET(ct_buf_appendf(e->out, "%s,", cells[i]));
            else if (e->cols[i].kind == COL_OPT && !*cells[i]) CT_GUARD_RET(ct_buf_append(e->out, "null,", 5));
            else {
                CT_GUARD_RET(ct_json_string(e->out, cells[i]));
                CT_GUARD_RET(ct_buf_append(e->out, ",", 1));
            }
        }
        return json_close(e->out, '}');
    case CA_FORMAT_CSV:
        for (size_t i = 0; i < e->ncols; i++) {
            if (i) CT_GUARD_RET(ct_buf_append(e->out, ",", 1));
            CT_GUARD_RET(ct_csv_field(e->out, cells[i]));
        }
        return ct_buf_append(e->out, "\r\n", 2);
    case CA_FORMAT_TABLE:
        for (size_t i = 0; i < e->ncols; i++) CT_GUARD_RET(table_text(e->out, cells[i], e->cols[i].width));
        e->out->data[e->out->len - 1] = '\n';
        return CT_OK;
    }
    return CT_ERR_ARG;
}

static ct_err table_end(emitter *e)
{
    e->tables++;
    return e->f == CA_FORMAT_JSON ? json_close(e->out, ']') : CT_OK;
}

/* "2026-11-01T12:00:00Z", or "" for 0 (no such time). */
static void time_text(int64_t t, char out[NUM_MAX])
{
    if (t != 0) ct_time_utc(t, out);
    else out[0] = '\0';
}

static void num_text(int64_t v, char out[NUM_MAX])
{
    if (ct_snprintf(out, NUM_MAX, "%lld", (long long)v) != CT_OK) out[0] = '\0';
}

/* ---- filters ---- */
static ct_err time_parse(const char *s, const char *what, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char *end = NULL;
    if (strspn(s, "0123456789") == strlen(s) && strlen(s) <= 12) {
        *out = strtoll(s, &end, 10);
        return CT_OK;
    }
    end = strptime(s, "%Y-%m-%d", &tm);
    if (end && *end == 'T') end = strptime(end, "T%H:%M:%SZ", &tm);
    CT_ENSURE_RET(end && *end == '\0' && tm.tm_year >= 70 && tm.tm_year < 8100,
                  ct_fail(CT_ERR_USAGE, "%s '%.40s': use Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", what, s));
    *out = (int64_t)timegm(&tm);
    return CT_OK;
}

ct_err ca_int_parse(const char *s, const char *what, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    CT_ENSURE_RET(*s && strspn(s, "0123456789") == strlen(s),
                  ct_fail(CT_ERR_USAGE, "%s '%.40s' is not a number", what, s));
    errno = 0;
    long long v = strtoll(s, &end, 10); /* past the largest it saturates there (ERANGE): refused, not read as it */
    CT_ENSURE_RET(errno != ERANGE && v >= min && v <= max,
                  ct_fail(CT_ERR_USAGE, "%s '%.40s' must be %lld..%lld", what, s, (long long)min, (long long)max));
    *out = (int64_t)v;
    return CT_OK;
}

static bool given(const char *s) { return s && *s; }

/* The time range of a search or report: both bounds optional, `to` after `from`. */
static ct_err range_parse(const char *from, const char *to, int64_t *f, int64_t *t)
{
    *f = *t = 0;
    if (given(from)) CT_GUARD_RET(time_parse(from, "from", f));
    if (given(to)) CT_GUARD_RET(time_parse(to, "to", t));
    CT_ENSURE_RET(!*t || *t > *f, ct_fail(CT_ERR_USAGE, "'to' must come after 'from'"));
    return CT_OK;
}

static ct_err search_parse(const ca_search_args *a, db_search *q, char serial[DB_CERT_SERIAL_HEX_MAX])
{
    const char *const all[] = {a->device_serial, a->cert_serial, a->station, a->order, a->model,
                               a->from,          a->to,          a->status,  a->limit, a->offset};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        CT_ENSURE_RET(!all[i] || strnlen(all[i], FILTER_MAX) < FILTER_MAX,
                      ct_fail(CT_ERR_USAGE, "a search filter is longer than %d bytes", FILTER_MAX - 1));
    memset(q, 0, sizeof *q);
    q->limit = CA_SEARCH_DEFAULT_LIMIT;
    if (given(a->device_serial)) {
        CT_ENSURE_RET(ca_serial_valid(a->device_serial),
                      ct_fail(CT_ERR_USAGE, "device serial '%.64s': letters, digits and '-'", a->device_serial));
        q->device_serial = a->device_serial;
    }
    if (given(a->cert_serial)) {
        CT_GUARD_RET(ca_serial_normalize(a->cert_serial, serial));
        q->cert_serial_hex = serial;
    }
    if (given(a->station)) {
        CT_ENSURE_RET(ca_name_valid(a->station), ct_fail(CT_ERR_USAGE, "station '%.64s' is not a name", a->station));
        q->station = a->station;
    }
    if (given(a->model)) {
        CT_ENSURE_RET(ca_name_valid(a->model), ct_fail(CT_ERR_USAGE, "model '%.64s' is not a name", a->model));
        q->model = a->model;
    }
    if (given(a->status)) {
        CT_ENSURE_RET(strcmp(a->status, "valid") == 0 || strcmp(a->status, "superseded") == 0 ||
                          strcmp(a->status, "revoked") == 0,
                      ct_fail(CT_ERR_USAGE, "status '%.20s' is not one of: valid, superseded, revoked", a->status));
        q->status = a->status;
    }
    if (given(a->order)) CT_GUARD_RET(ca_int_parse(a->order, "order", 1, INT64_MAX, &q->order_id));
    if (given(a->limit)) CT_GUARD_RET(ca_int_parse(a->limit, "limit", 1, DB_SEARCH_MAX_LIMIT, &q->limit));
    if (given(a->offset)) CT_GUARD_RET(ca_int_parse(a->offset, "offset", 0, OFFSET_MAX, &q->offset));
    return range_parse(a->from, a->to, &q->from, &q->to);
}

/* ---- search ---- */
static const column k_search_cols[] = {
    {"cert_serial", COL_TEXT, 32}, {"device_serial", COL_TEXT, 14}, {"profile", COL_TEXT, 13},
    {"station", COL_TEXT, 10},     {"order", COL_OPT, 5},           {"model", COL_TEXT, 8},
    {"status", COL_TEXT, 10},      {"issued_at", COL_TEXT, 20},     {"not_after", COL_TEXT, 20},
    {"revoked_at", COL_OPT, 20},   {"reason", COL_OPT, 12},         {"subject", COL_TEXT, 0},
};
#define N_SEARCH_COLS (sizeof k_search_cols / sizeof k_search_cols[0])

static ct_err search_row(emitter *e, const db_cert_row *r)
{
    char order[NUM_MAX] = "", issued[NUM_MAX], not_after[NUM_MAX], revoked[NUM_MAX];
    if (r->order_id) num_text(r->order_id, order);
    time_text(r->issued_at, issued);
    time_text(r->not_after, not_after);
    time_text(r->revoked_at, revoked);
    const char *cells[N_SEARCH_COLS] = {r->cert_serial_hex, r->device_serial, r->profile, r->station, order,
                                        r->model, r->status, issued, not_after, revoked,
                                        r->reason >= 0 ? pki_reason_name(r->reason) : "", r->subject};
    return table_row(e, cells);
}

ct_err ca_audit_search(ca *c, const ca_search_args *a, ca_format f, ct_buf *out)
{
    ct_err rc = CT_OK;
    db_search q;
    char serial[DB_CERT_SERIAL_HEX_MAX];
    db_cert_row *rows = NULL;
    size_t n = 0;
    int64_t total = 0;
    emitter e = {.f = f, .out = out};
    CT_GUARD(search_parse(a, &q, serial));
    rows = calloc((size_t)q.limit, sizeof *rows);
    CT_ENSURE(rows, CT_ERR_NOMEM);
    CT_GUARD(db_cert_search(c->db, &q, rows, &n, &total));
    CT_GUARD(ct_buf_alloc(out, SEARCH_OUT_MAX));
    CT_GUARD(doc_begin(&e));
    if (f == CA_FORMAT_JSON) {
        CT_GUARD(json_num(out, "total", total));
        CT_GUARD(json_num(out, "offset", q.offset));
        CT_GUARD(json_num(out, "limit", q.limit));
    }
    CT_GUARD(table_begin(&e, "results", k_search_cols, N_SEARCH_COLS));
    for (size_t i = 0; i < n; i++) CT_GUARD(search_row(&e, &rows[i]));
    CT_GUARD(table_end(&e));
    if (f == CA_FORMAT_TABLE)
        CT_GUARD(ct_buf_appendf(out, "%zu of %lld shown (offset %lld)\n", n, (long long)total, (long long)q.offset));
    CT_GUARD(doc_end(&e));
cleanup:
    free(rows);
    if (rc != CT_OK) ct_buf_free(out);
    return rc;
}

/* ---- report ---- */
/* denials and denied: refused requests (a counted entry's N, ca_refusals.c); the *_entries columns (added last, for
 * readers by position): the audit entries that hold them. */
static const column k_totals_cols[] = {{"issued", COL_NUM, 8},         {"revoked", COL_NUM, 8},
                                       {"denials", COL_NUM, 8},        {"revocation_actions", COL_NUM, 8},
                                       {"denial_entries", COL_NUM, 8}};
static const column k_station_cols[] = {{"station", COL_TEXT, 16}, {"issued", COL_NUM, 8}, {"revoked", COL_NUM, 8},
                                        {"denied", COL_NUM, 8},     {"denied_entries", COL_NUM, 8},
                                        {"over_budget", COL_NUM, 8}}; /* denied requests past station.refusals_per_minute */
static const column k_order_cols[] = {{"order", COL_NUM, 6},   {"station", COL_TEXT, 16}, {"model", COL_TEXT, 10},
                                      {"state", COL_TEXT, 7},  {"serials", COL_NUM, 8},   {"issued", COL_NUM, 8},
                                      {"revoked", COL_NUM, 8}};
static const column k_day_cols[] = {{"day", COL_TEXT, 10}, {"station", COL_TEXT, 16}, {"issued", COL_NUM, 8}};
static const column k_reason_cols[] = {{"reason", COL_TEXT, 22}, {"revoked", COL_NUM, 8}};
#define EVENT_COLS                                                                                              \
    {"seq", COL_NUM, 6}, {"time", COL_TEXT, 20}, {"actor", COL_TEXT, 18}, {"action", COL_TEXT, 15},              \
        {"subject", COL_TEXT, 34}, {"detail", COL_TEXT, 0}
static const column k_event_cols[] = {EVENT_COLS};
static const column k_denial_cols[] = {EVENT_COLS, {"requests", COL_NUM, 0}}; /* how many refused requests it holds */
#define COLS(a) a, sizeof a / sizeof a[0]
static const struct {
    const char *name;
    const column *cols;
    size_t ncols;
} k_sections[DB_REPORT__COUNT] = {
    [DB_REPORT_TOTALS] = {"totals", COLS(k_totals_cols)},      [DB_REPORT_STATION] = {"stations", COLS(k_station_cols)},
    [DB_REPORT_ORDER] = {"orders", COLS(k_order_cols)},        [DB_REPORT_DAY] = {"days", COLS(k_day_cols)},
    [DB_REPORT_REASON] = {"reasons", COLS(k_reason_cols)},     [DB_REPORT_DENIAL] = {"denials", COLS(k_denial_cols)},
    [DB_REPORT_REVOCATION] = {"revocations", COLS(k_event_cols)},
};

/* The sections the database cuts at a number of rows (db.h), and the table that says which were cut: over a long
 * history (stations x days) the report without a range is those rows, not all, and says so rather than seem whole. */
static const int64_t k_section_max[DB_REPORT__COUNT] = {
    [DB_REPORT_STATION] = DB_REPORT_MAX_STATIONS, [DB_REPORT_ORDER] = DB_REPORT_MAX_ORDERS,
    [DB_REPORT_DAY] = DB_REPORT_MAX_DAYS,         [DB_REPORT_DENIAL] = DB_REPORT_MAX_EVENTS,
    [DB_REPORT_REVOCATION] = DB_REPORT_MAX_EVENTS,
};
static const column k_limited_cols[] = {{"section", COL_TEXT, 12}, {"shown", COL_NUM, 8}};

typedef struct {
    emitter e;
    int section; /* the table open now, -1 before the first */
    int64_t rows[DB_REPORT__COUNT];
} report_out;

/* Last, a section of its own ("limited"; empty when nothing was cut): each section that reached its number of rows,
 * the newest or largest first, so that more of them may lie in the period. */
static ct_err report_limits(report_out *r)
{
    char shown[NUM_MAX];
    CT_GUARD_RET(table_begin(&r->e, "limited", COLS(k_limited_cols)));
    for (int i = 0; i < DB_REPORT__COUNT; i++) {
        if (!k_section_max[i] || r->rows[i] <= k_section_max[i]) continue;
        num_text(k_section_max[i], shown);
        CT_GUARD_RET(table_row(&r->e, (const char *const[]){k_sections[i].name, shown}));
    }
    CT_GUARD_RET(table_end(&r->e));
    for (int i = 0; r->e.f == CA_FORMAT_TABLE && i < DB_REPORT__COUNT; i++)
        if (k_section_max[i] && r->rows[i] > k_section_max[i])
            CT_GUARD_RET(ct_buf_appendf(r->e.out, "%s: only the first %lld rows shown (newest or largest first)\n",
                                        k_sections[i].name, (long long)k_section_max[i]));
    return CT_OK;
}

/* Every section is written, empty ones too: readers find every key. */
static ct_err report_advance(report_out *r, int to)
{
    while (r->section < to) {
        if (r->section >= 0) CT_GUARD_RET(table_end(&r->e));
        if (++r->section < DB_REPORT__COUNT) {
            const column *cols = k_sections[r->section].cols;
            CT_GUARD_RET(table_begin(&r->e, k_sections[r->section].name, cols, k_sections[r->section].ncols));
        }
    }
    return CT_OK;
}

static ct_err report_row(const db_report_row *row, void *arg)
{
    report_out *r = arg;
    char id[NUM_MAX], ts[NUM_MAX], n[DB_REPORT_NUMBERS][NUM_MAX];
    CT_GUARD_RET(report_advance(r, (int)row->section));
    /* The row past a section's maximum only says that it was cut (report_limits). */
    int64_t before = r->rows[row->section]++;
    if (k_section_max[row->section] && before >= k_section_max[row->section]) return CT_OK;
    num_text(row->id, id);
    time_text(row->ts, ts);
    for (int i = 0; i < DB_REPORT_NUMBERS; i++) num_text(row->n[i], n[i]);
    switch (row->section) {
    case DB_REPORT_TOTALS:
        CT_GUARD_RET(table_row(&r->e, (const char *const[]){n[0], n[1], n[2], n[3], n[4]}));
        /* A counted entry stands for many requests: say both, in words, to the reader of the table. */
        return r->e.f == CA_FORMAT_TABLE ? ct_buf_appendf(r->e.out, "%s refused requests in %s audit entries\n", n[2], n[4])
                                         : CT_OK;
    case DB_REPORT_STATION:
        return table_row(&r->e, (const char *const[]){row->name, n[0], n[1], n[2], n[4], n[3]});
    case DB_REPORT_ORDER:
        return table_row(&r->e, (const char *const[]){id, row->name, row->text, row->n[3] ? "open" : "closed", n[0],
                                                      n[1], n[2]});
    case DB_REPORT_DAY:
        return table_row(&r->e, (const char *const[]){row->name, row->text, n[0]});
    case DB_REPORT_REASON:
        return table_row(&r->e, (const char *const[]){pki_reason_name((int)row->id), n[0]});
    case DB_REPORT_DENIAL:
        return table_row(&r->e, (const char *const[]){id, ts, row->name, row->text, row->subject, row->detail, n[0]});
    case DB_REPORT_REVOCATION:
        return table_row(&r->e, (const char *const[]){id, ts, row->name, row->text, row->subject, row->detail});
    case DB_REPORT__COUNT:
        break;
    }
    return ct_fail(CT_ERR_INTERNAL, "report section %d", (int)row->section);
}

ct_err ca_audit_report(ca *c, const char *from, const char *to, ca_format f, ct_buf *out)
{
    ct_err rc = CT_OK;
    int64_t t0 = 0, t1 = 0;
    report_out r = {.e = {.f = f, .out = out}, .section = -1};
    CT_ENSURE_MSG((!from || strnlen(from, FILTER_MAX) < FILTER_MAX) && (!to || strnlen(to, FILTER_MAX) < FILTER_MAX),
                  CT_ERR_USAGE, "a time bound is longer than %d bytes", FILTER_MAX - 1);
    CT_GUARD(range_parse(from, to, &t0, &t1));
    CT_GUARD(ct_buf_alloc(out, REPORT_OUT_MAX));
    CT_GUARD(doc_begin(&r.e));
    CT_GUARD(db_report(c->db, t0, t1, report_row, &r));
    CT_GUARD(report_advance(&r, DB_REPORT__COUNT));
    CT_GUARD(report_limits(&r));
    CT_GUARD(doc_end(&r.e));
cleanup:
    if (rc != CT_OK) ct_buf_free(out);
    return rc;
}

/* ---- one certificate ---- */
static ct_err json_pem(ct_buf *b, const uint8_t *der, size_t len)
{
    ct_err rc = CT_OK;
    ct_buf pem = CT_BUF_INIT;
    const char *text = NULL;
    CT_GUARD(ct_buf_alloc(&pem, len * 2 + 128));
    CT_GUARD(ct_pem_encode("CERTIFICATE", der, len, &pem));
    CT_GUARD(ct_buf_cstr(&pem, &text));
    CT_GUARD(ct_json_string(b, text));
    CT_GUARD(ct_buf_append(b, ",", 1));
cleanup:
    ct_buf_free(&pem);
    return rc;
}

/* Where the certificate is in the issuance log (ca_log.c) and whether a signed tree head covers it yet. */
static ct_err log_inclusion(ca *c, const char *serial, char *out, size_t max)
{
    uint64_t index = 0;
    ct_buf leaf = CT_BUF_INIT;
    db_tree_head th;
    ct_err rc = db_log_find(c->db, serial, &index, &leaf);
    ct_buf_free(&leaf);
    if (rc == CT_ERR_NOT_FOUND) return ct_strlcpy(out, max, "not in the issuance log");
    CT_GUARD_RET(rc);
    rc = db_log_tree_head_latest(c->db, &th);
    if (rc == CT_ERR_NOT_FOUND || (rc == CT_OK && th.head.tree_size <= index))
        return ct_snprintf(out, max, "leaf %llu; no signed tree head covers it yet", (unsigned long long)index);
    CT_GUARD_RET(rc);
    return ct_snprintf(out, max, "leaf %llu of %llu, under signed tree head %lld (proof: /log/proof/inclusion?serial=%s)",
                       (unsigned long long)index, (unsigned long long)th.head.tree_size, (long long)th.id, serial);
}

static ct_err detail_fields(ca *c, const db_cert_row *r, const ct_buf *der, int64_t audit_seq, ct_buf *b)
{
    pki_cert_detail d;
    char t[4][NUM_MAX], fp[65], logged[256];
    CT_GUARD_RET(pki_cert_describe(der->data, der->len, &d));
    CT_GUARD_RET(log_inclusion(c, r->cert_serial_hex, logged, sizeof logged));
    CT_GUARD_RET(ct_hex_encode(d.info.cert_sha256, 32, fp, sizeof fp));
    time_text(r->issued_at, t[0]);
    time_text(d.info.not_before, t[1]);
    time_text(d.info.not_after, t[2]);
    time_text(r->revoked_at, t[3]);
    /* Viewers are the operations issuing CA's; everything else in the table the device issuing CA's. */
    bool viewer = strcmp(r->profile, "viewer") == 0;
    const ca_signer *issuing = &c->signers[viewer ? CA_KEY_OPS_ISSUING : CA_KEY_DEVICE_ISSUING],
                    *root = &c->signers[viewer ? CA_KEY_OPS_ROOT : CA_KEY_DEVICE_ROOT];
    bool chain_ok = false; /* by whichever generation of that issuing CA signed it (rotations) */
    for (size_t i = 0; i < c->n_gens && !chain_ok; i++) {
        const ca_signer *g = &c->gens[i].s;
        if (c->gens[i].kind == (viewer ? CA_CRL_OPS : CA_CRL_DEVICE) &&
            pki_cert_verify_signed_by(der->data, der->len, g->cert_der.data, g->cert_der.len, time(NULL)) == CT_OK) {
            issuing = g;
            chain_ok = true;
        }
    }
    char chain[96];
    CT_GUARD_RET(ct_snprintf(chain, sizeof chain, chain_ok ? "verified: signed by the %s issuing CA, within its validity"
                                                           : "NOT verified against the %s issuing CA",
                             viewer ? "operations" : "device"));
    const struct {
        const char *key, *value;
    } text[] = {
        {"cert_serial", r->cert_serial_hex}, {"device_serial", r->device_serial}, {"profile", r->profile},
        {"status", r->status}, {"station", r->station}, {"model", r->model}, {"issued_at", t[0]},
        {"subject", d.subject}, {"subject_serial_number", d.info.subject_serial}, {"subject_cn", d.info.subject_cn},
        {"issuer", d.issuer}, {"not_before", t[1]}, {"not_after", t[2]}, {"key_type", d.key_type},
        {"key_usage", d.key_usage}, {"ext_key_usage", d.ext_key_usage}, {"san", d.san}, {"sha256", fp},
        {"revoked_at", t[3]}, {"revocation_reason", r->reason >= 0 ? pki_reason_name(r->reason) : ""},
        {"chain_status", chain},
        {"log_inclusion", logged},
    };
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) CT_GUARD_RET(json_str(b, text[i].key, text[i].value));
    CT_GUARD_RET(json_num(b, "order", r->order_id));
    CT_GUARD_RET(json_num(b, "audit_seq", audit_seq));
    CT_GUARD_RET(json_key(b, "pem"));
    CT_GUARD_RET(json_pem(b, der->data, der->len));
    CT_GUARD_RET(json_key(b, "chain"));
    CT_GUARD_RET(ct_buf_append(b, "[", 1));
    CT_GUARD_RET(json_pem(b, issuing->cert_der.data, issuing->cert_der.len));
    CT_GUARD_RET(json_pem(b, root->cert_der.data, root->cert_der.len));
    return json_close(b, ']');
}

ct_err ca_cert_detail_json(ca *c, const char *serial, ct_buf *out)
{
    ct_err rc = CT_OK;
    char hex[DB_CERT_SERIAL_HEX_MAX];
    db_cert_row row;
    ct_buf der = CT_BUF_INIT;
    int64_t audit_seq = 0;
    CT_ENSURE_MSG(serial && strnlen(serial, FILTER_MAX) < FILTER_MAX, CT_ERR_USAGE, "certificate serial too long");
    CT_GUARD(ca_serial_normalize(serial, hex));
    CT_GUARD(db_cert_get(c->db, hex, &row, &der, &audit_seq));
    CT_GUARD(ct_buf_alloc(out, DETAIL_OUT_MAX));
    CT_GUARD(ct_buf_append(out, "{", 1));
    CT_GUARD(detail_fields(c, &row, &der, audit_seq, out));
    CT_GUARD(json_close(out, '}'));
    out->data[out->len - 1] = '\n';
cleanup:
    ct_buf_free(&der);
    if (rc != CT_OK) ct_buf_free(out);
    return rc;
}
