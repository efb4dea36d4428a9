/* Officers: certified like stations, from their own CSRs, with a role (auditor: reads; officer: also revokes).
 * The /officer/api/ routes: who is asking (an enabled officer's client certificate, nothing else), what the
 * role allows, bounded parsing of the few request fields, JSON answers. Every action and every refusal is
 * audited with actor "officer:NAME" (or who else was refused). */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <strings.h>

#include "ca_priv.h"

#define API_PREFIX "/officer/api/"
#define CLI_ACTOR "cli"
#define JSON_TYPE "application/json"
#define KEY_MAX 16

const char *const ca_officer_headers[] = {
    "Content-Security-Policy",
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options", "nosniff",
    "X-Frame-Options", "DENY",
    "Referrer-Policy", "no-referrer",
    "Cache-Control", "no-store",
    /* A page of another site that opened the console (a link, window.open) keeps no handle on it: it could reload it
     * at will, each load four budgeted, audited reads (the officer's own console then refused, 429). */
    "Cross-Origin-Opener-Policy", "same-origin",
    /* Nor may it embed an answer (a script, a style sheet): whether one loads tells it the visitor is an officer. */
    "Cross-Origin-Resource-Policy", "same-origin",
    NULL,
};

/* The console's page: the one officer resource another site may link to (a navigation, whatever its origin). */
static bool console_page(const char *path) { return strcmp(path, "/console") == 0 || strcmp(path, "/console/") == 0; }

bool ca_officer_route(const char *path)
{
    return strncmp(path, "/officer/", 9) == 0 || strcmp(path, "/console") == 0 || strncmp(path, "/console/", 9) == 0;
}

/* ---- commands ---- */
ct_err ca_officer_add(ca *c, const char *name, const char *role, const char *csr_path, const char *out_path)
{
    ct_err rc = CT_OK;
    ct_buf cert = CT_BUF_INIT;
    db_cert_record rec;
    db_role r;
    CT_ENSURE_MSG(name && ca_name_valid(name), CT_ERR_USAGE, "officer name '%.64s': use 1-63 letters, digits, '-', '_', '.'",
                  name ? name : "");
    CT_GUARD(db_role_parse(role, &r));
    CT_GUARD(ca_client_cert_issue(c, name, DB_PROFILE_OFFICER, csr_path, &cert, &rec));
    CT_GUARD(db_officer_add(c->db, name, r, &rec, CLI_ACTOR));
    CT_GUARD(ca_client_cert_write(c, out_path, &cert));
cleanup:
    ct_buf_free(&cert);
    return rc;
}

ct_err ca_officer_set_enabled(ca *c, const char *name, bool enabled)
{
    return db_officer_set_enabled(c->db, name, enabled, CLI_ACTOR);
}

ct_err ca_officer_set_role(ca *c, const char *name, const char *role)
{
    db_role r;
    CT_ENSURE_RET(name && ca_name_valid(name), ct_fail(CT_ERR_USAGE, "officer name '%.64s': use 1-63 letters, digits, "
                                                       "'-', '_', '.'", name ? name : ""));
    CT_GUARD_RET(db_role_parse(role, &r));
    return db_officer_set_role(c->db, name, r, CLI_ACTOR);
}

/* ---- who is asking ---- */
/* No certificate, or one that chains to no camtrust CA: nobody is authenticated. */
#define ANONYMOUS_ACTOR "client:unknown"
static void set_actor(ca_officer_id *who, const char *kind, const char *name)
{
    if (ct_snprintf(who->actor, sizeof who->actor, "%s:%s", kind, name) != CT_OK) who->actor[0] = '\0';
}

ct_err ca_officer_identify(ca *c, const ca_http_request *rq, ca_officer_id *who)
{
    uint8_t fp[32];
    db_officer o;
    db_station st;
    memset(who, 0, sizeof *who);
    CT_GUARD_RET(ct_strlcpy(who->actor, sizeof who->actor, ANONYMOUS_ACTOR));
    CT_ENSURE_RET(!rq->client_cert_untrusted,
                  ct_fail(CT_ERR_UNKNOWN_CLIENT, "the client certificate does not chain to a camtrust CA"));
    CT_ENSURE_RET(rq->client_cert && rq->client_cert_len,
                  ct_fail(CT_ERR_UNAUTHENTICATED, "an officer client certificate is required"));
    CT_GUARD_RET(ct_sha256(rq->client_cert, rq->client_cert_len, fp));
    ct_err rc = db_officer_find_by_cert(c->db, fp, &o);
    if (rc == CT_OK || rc == CT_ERR_DISABLED) { /* DISABLED: its certificate is revoked */
        set_actor(who, "officer", o.name);
        CT_GUARD_RET(rc);
        CT_GUARD_RET(ct_strlcpy(who->name, sizeof who->name, o.name));
        who->role = o.role;
        CT_ENSURE_RET(o.enabled, ct_fail(CT_ERR_DISABLED, "officer %s is disabled", o.name));
        return CT_OK;
    }
    CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
    rc = db_station_find_by_cert(c->db, fp, &st);
    if (rc == CT_OK) {
        set_actor(who, "station", st.name);
        return ct_fail(CT_ERR_FORBIDDEN, "stations cannot read: station %s is not an officer", st.name);
    }
    CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
    set_actor(who, "client", "unregistered");
    return ct_fail(CT_ERR_FORBIDDEN, "the client certificate is not a registered officer");
}

/* ---- where the browser thinks it is ---- */
/* Whether `name` (n bytes) is one of a comma-separated list, without case. */
static bool listed(const char *list, const char *name, size_t n)
{
    for (const char *p = list; *p;) {
        p += strspn(p, ", ");
        size_t len = strcspn(p, ", ");
        if (len == n && strncasecmp(p, name, n) == 0) return true;
        p += len;
    }
    return false;
}

/* The Host must be one of this CA's names (server.names, server.ips: its TLS certificate's). A name of another
 * site made to resolve to this server (DNS rebinding; its officer once told the browser to accept this server's
 * certificate for it) is that site's own origin to the browser: Origin https://<its name>, Sec-Fetch-Site
 * same-origin, the officer's certificate sent. Only the Host tells. */
static ct_err host_is_ours(const ca *c, const char *host)
{
    const char *h = host ? host : "", *end = h + strlen(h), *colon = strrchr(h, ':');
    if (*h == '[') { /* an IPv6 literal: [address]:port */
        h++;
        end = strchr(h, ']');
        if (!end) end = h;
    } else if (colon) {
        end = colon;
    }
    size_t n = (size_t)(end - h);
    if (n > 1 && h[n - 1] == '.') n--; /* the absolute form of a name: the same name */
    CT_ENSURE_RET(n && (listed(c->cfg.server_names, h, n) || listed(c->cfg.server_ips, h, n)),
                  ct_fail(CT_ERR_FORBIDDEN, "Host '%.80s' is not one of this CA's names (server.names, server.ips)",
                          host ? host : "(none)"));
    return CT_OK;
}

/* ---- request bodies ---- */
static ct_err field_slot(ca_revoke_fields *f, const char *key, char **slot)
{
    static const struct {
        const char *key;
        size_t offset;
    } k_fields[] = {{"serial", offsetof(ca_revoke_fields, serial)},
                    {"order", offsetof(ca_revoke_fields, order)},
                    {"station", offsetof(ca_revoke_fields, station)},
                    {"reason", offsetof(ca_revoke_fields, reason)}};
    for (size_t i = 0; i < sizeof k_fields / sizeof k_fields[0]; i++) {
        if (strcmp(key, k_fields[i].key) != 0) continue;
        *slot = (char *)f + k_fields[i].offset;
        CT_ENSURE_RET(!**slot, ct_fail(CT_ERR_BAD_REQUEST, "field '%s' is given twice", key));
        return CT_OK;
    }
    return ct_fail(CT_ERR_BAD_REQUEST, "unknown field '%.20s' (serial, order, station, reason)", key);
}

typedef struct {
    const char *p, *start, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')) c->p++;
}

static ct_err malformed(const cursor *c, const char *what)
{
    return ct_fail(CT_ERR_BAD_REQUEST, "malformed JSON at byte %zu: %s", (size_t)(c->p - c->start), what);
}

static bool take(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static ct_err put_char(char *out, size_t max, size_t *n, unsigned ch)
{
    CT_ENSURE_RET(*n + 1 < max, ct_fail(CT_ERR_BAD_REQUEST, "a field is longer than %zu bytes", max - 1));
    out[(*n)++] = (char)ch;
    return CT_OK;
}

/* \uXXXX: a code point below U+D800 (no surrogates, no NUL), written as UTF-8. */
static ct_err json_unicode(cursor *c, char *out, size_t max, size_t *n)
{
    unsigned cp = 0;
    CT_ENSURE_RET(c->end - c->p >= 4, malformed(c, "short \\u escape"));
    for (int i = 0; i < 4; i++, c->p++) {
        char h = *c->p;
        int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        CT_ENSURE_RET(v >= 0, malformed(c, "bad \\u escape"));
        cp = cp * 16 + (unsigned)v;
    }
    CT_ENSURE_RET(cp != 0 && cp < 0xd800, malformed(c, "\\u escape of NUL or a surrogate"));
    if (cp < 0x80) return put_char(out, max, n, cp);
    if (cp < 0x800) {
        CT_GUARD_RET(put_char(out, max, n, 0xc0 | (cp >> 6)));
    } else {
        CT_GUARD_RET(put_char(out, max, n, 0xe0 | (cp >> 12)));
        CT_GUARD_RET(put_char(out, max, n, 0x80 | ((cp >> 6) & 0x3f)));
    }
    return put_char(out, max, n, 0x80 | (cp & 0x3f));
}

static ct_err json_string_value(cursor *c, char *out, size_t max)
{
    static const char k_escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    size_t n = 0;
    CT_ENSURE_RET(take(c, '"'), malformed(c, "expected a string"));
    for (;;) {
        CT_ENSURE_RET(c->p < c->end, malformed(c, "unterminated string"));
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') break;
        CT_ENSURE_RET(ch >= 0x20, malformed(c, "control character in a string"));
        if (ch != '\\') {
            CT_GUARD_RET(put_char(out, max, &n, ch));
            continue;
        }
        CT_ENSURE_RET(c->p < c->end, malformed(c, "unterminated escape"));
        char e = *c->p++;
        if (e == 'u') {
            CT_GUARD_RET(json_unicode(c, out, max, &n));
            continue;
        }
        const char *m = NULL;
        for (size_t i = 0; i + 1 < sizeof k_escapes && !m; i += 2)
            if (k_escapes[i] == e) m = &k_escapes[i + 1];
        CT_ENSURE_RET(m, malformed(c, "unknown escape"));
        CT_GUARD_RET(put_char(out, max, &n, (unsigned char)*m));
    }
    out[n] = '\0';
    return CT_OK;
}

/* A value: a string, or a whole non-negative number (an order id) kept as its digits. */
static ct_err json_value(cursor *c, char *out, size_t max)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == '"') return json_string_value(c, out, max);
    size_t n = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') CT_GUARD_RET(put_char(out, max, &n, (unsigned char)*c->p++));
    CT_ENSURE_RET(n > 0, malformed(c, "values must be strings or whole numbers"));
    out[n] = '\0';
    return CT_OK;
}

static ct_err parse_json(const char *body, size_t len, ca_revoke_fields *out)
{
    cursor c = {body, body, body + len};
    char key[KEY_MAX], *slot = NULL;
    CT_ENSURE_RET(take(&c, '{'), malformed(&c, "expected an object"));
    if (!take(&c, '}')) {
        do {
            CT_GUARD_RET(json_string_value(&c, key, sizeof key));
            CT_GUARD_RET(field_slot(out, key, &slot));
            CT_ENSURE_RET(take(&c, ':'), malformed(&c, "expected ':'"));
            CT_GUARD_RET(json_value(&c, slot, CA_FIELD_MAX));
        } while (take(&c, ','));
        CT_ENSURE_RET(take(&c, '}'), malformed(&c, "expected ',' or '}'"));
    }
    skip_ws(&c);
    CT_ENSURE_RET(c.p == c.end, malformed(&c, "text after the object"));
    return CT_OK;
}

ct_err ca_revoke_fields_parse(const char *content_type, const uint8_t *body, size_t len, ca_revoke_fields *out)
{
    memset(out, 0, sizeof *out);
    CT_ENSURE_RET(len <= CA_OFFICER_MAX_BODY,
                  ct_fail(CT_ERR_TOO_LARGE, "request body larger than %d bytes", CA_OFFICER_MAX_BODY));
    CT_ENSURE_RET(!memchr(body, '\0', len), ct_fail(CT_ERR_BAD_REQUEST, "NUL byte in the request body"));
    /* JSON only: a page of another site can post a form here without asking, but not JSON. */
    CT_ENSURE_RET(ca_media_type_is(content_type, JSON_TYPE),
                  ct_fail(CT_ERR_CONTENT_TYPE, "content type must be " JSON_TYPE ", not '%.60s'",
                          content_type ? content_type : "(none)"));
    return parse_json((const char *)body, len, out);
}

/* ---- answers ---- */
static ct_err answer_json(ca_http_answer *ans, ct_buf *body, const char *reason)
{
    ans->status = 200;
    ans->content_type = JSON_TYPE;
    ans->body = *body;
    *body = (ct_buf)CT_BUF_INIT;
    return ct_strlcpy(ans->reason, sizeof ans->reason, reason);
}

/* An API refusal: the status, and {"status": N, "error": "reason"} (a 500's: its message and incident). */
static ct_err api_error(ca_http_answer *ans, ct_err e)
{
    ca_http_error(ans, e);
    ct_buf_free(&ans->body);
    ans->content_type = JSON_TYPE;
    char said[sizeof ans->reason];
    if (ca_http_error_said(ans, e, said, sizeof said) != CT_OK ||
        ct_buf_alloc(&ans->body, sizeof said * 6 + 64) != CT_OK ||
        ct_buf_appendf(&ans->body, "{\"status\":%d,\"error\":", ans->status) != CT_OK ||
        ct_json_string(&ans->body, said) != CT_OK || ct_buf_append(&ans->body, "}\n", 2) != CT_OK)
        ans->body.len = 0;
    return e;
}

static const char *arg(const ca_http_request *rq, const char *key)
{
    return rq->arg ? rq->arg(rq->arg_ctx, key) : NULL;
}

/* Audits a completed read; without its audit entry the answer is not sent. */
static ct_err audited(ca *c, const ca_officer_id *who, const char *action, const char *subject, const char *detail)
{
    return db_audit_append(c->db, who->actor, action, subject, "ok", detail);
}

static ct_err api_search(ca *c, const ca_officer_id *who, const ca_http_request *rq, ct_buf *out)
{
    static const char *const keys[] = {"device_serial", "cert_serial", "station", "order", "model",
                                       "from",          "to",          "status",  "limit", "offset"};
    const char *v[sizeof keys / sizeof keys[0]];
    char detail[DB_AUDIT_TEXT_MAX * 3] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        v[i] = arg(rq, keys[i]);
        if (!v[i] || !*v[i]) continue;
        CT_GUARD_RET(ct_snprintf(detail + used, sizeof detail - used, "%s%s=%.64s", used ? " " : "", keys[i], v[i]));
        used += strlen(detail + used);
    }
    ca_search_args a = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
    CT_GUARD_RET(ca_audit_search(c, &a, CA_FORMAT_JSON, out));
    return audited(c, who, "officer.search", "certificates", detail);
}

static ct_err api_report(ca *c, const ca_officer_id *who, const ca_http_request *rq, ct_buf *out)
{
    CT_GUARD_RET(ca_audit_report(c, arg(rq, "from"), arg(rq, "to"), CA_FORMAT_JSON, out));
    return audited(c, who, "officer.report", "report", NULL);
}

static ct_err api_cert(ca *c, const ca_officer_id *who, const char *serial, ct_buf *out)
{
    CT_GUARD_RET(ca_cert_detail_json(c, serial, out));
    return audited(c, who, "officer.read", serial, NULL);
}

static ct_err api_me(const ca_officer_id *who, ct_buf *out)
{
    CT_GUARD_RET(ct_buf_alloc(out, 256));
    CT_GUARD_RET(ct_buf_append(out, "{\"name\":", 8));
    CT_GUARD_RET(ct_json_string(out, who->name));
    CT_GUARD_RET(ct_buf_append(out, ",\"role\":", 8));
    CT_GUARD_RET(ct_json_string(out, db_role_name(who->role)));
    return ct_buf_append(out, "}\n", 2);
}

/* POST revoke (a body too large to read refused before, counted: ca_officer_handle): the role first (an auditor is
 * refused whatever it sends), then the body, then ca_revoke (which audits its own refusals: unknown target, already
 * revoked, bad reason). */
static ct_err api_revoke(ca *c, const ca_officer_id *who, const ca_http_request *rq, ct_buf *out,
                         db_revoke_count *count)
{
    ca_revoke_fields f;
    ct_err rc = CT_OK;
    if (who->role != DB_ROLE_OFFICER) rc = ct_fail(CT_ERR_FORBIDDEN, "auditors cannot revoke (officer %s)", who->name);
    else if ((rc = ca_revoke_fields_parse(rq->content_type, rq->body, rq->body_len, &f)) == CT_OK &&
             (!!*f.serial + !!*f.order + !!*f.station != 1 || !*f.reason))
        rc = ct_fail(CT_ERR_BAD_REQUEST, "name one of serial, order, station, and a reason");
    if (rc != CT_OK) return ca_audit_refusal(c, "officer.revoke", who->actor, "", rc);
    ca_revoke_request req = {.scope = *f.order ? DB_REVOKE_ORDER : *f.station ? DB_REVOKE_STATION : DB_REVOKE_CERT,
                             .target = *f.order ? f.order : *f.station ? f.station : f.serial,
                             .reason = f.reason,
                             .actor = who->actor,
                             .not_ca_own = true};
    CT_GUARD_RET(ca_revoke(c, &req, count));
    static const char *const scope_names[] = {[DB_REVOKE_CERT] = "certificate", [DB_REVOKE_ORDER] = "order",
                                              [DB_REVOKE_STATION] = "station"};
    CT_GUARD_RET(ct_buf_alloc(out, 1024));
    CT_GUARD_RET(ct_buf_appendf(out, "{\"revoked\":%lld,\"same_key\":%lld,\"scope\":\"%s\",\"target\":",
                                (long long)count->revoked, (long long)count->same_key, scope_names[req.scope]));
    CT_GUARD_RET(ct_json_string(out, req.target));
    CT_GUARD_RET(ct_buf_append(out, ",\"reason\":", 10));
    CT_GUARD_RET(ct_json_string(out, req.reason));
    return ct_buf_append(out, "}\n", 2);
}

static ct_err api_route(ca *c, const ca_officer_id *who, const ca_http_request *rq, ct_buf *out, char *reason,
                        size_t reason_max)
{
    const char *route = rq->path + strlen(API_PREFIX);
    bool get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;
    bool cert = strncmp(route, "cert/", 5) == 0;
    if (strcmp(route, "revoke") == 0) {
        db_revoke_count n = {0};
        /* Another method decided nothing, and a looping script (a PUT is not budgeted as a read) would grow the
         * audit one fsync'd entry a request: counted, as the other gates' refusals. */
        CT_ENSURE_RET(post, ca_refuse_counted(c, who->actor, "officer.revoke", "",
                                              ct_fail(CT_ERR_METHOD, "revoke takes POST")));
        CT_GUARD_RET(api_revoke(c, who, rq, out, &n));
        if (!n.same_key) return ct_snprintf(reason, reason_max, "revoked %lld", (long long)n.revoked);
        return ct_snprintf(reason, reason_max, "revoked %lld and %lld of the same key", (long long)n.revoked,
                           (long long)n.same_key);
    }
    if (strcmp(route, "checkpoint") == 0) { /* the newest checkpoint and its witnesses (public data, read audited) */
        CT_ENSURE_RET(get, ct_fail(CT_ERR_METHOD, "%s takes GET", route));
        CT_GUARD_RET(ca_log_checkpoint_json(c, out));
        CT_GUARD_RET(audited(c, who, "officer.read", "checkpoint", NULL));
        return ct_snprintf(reason, reason_max, "checkpoint");
    }
    CT_ENSURE_RET(strcmp(route, "search") == 0 || strcmp(route, "report") == 0 || strcmp(route, "me") == 0 || cert,
                  ct_fail(CT_ERR_NOT_FOUND, "no such officer API route"));
    CT_ENSURE_RET(get, ct_fail(CT_ERR_METHOD, "%s takes GET", route));
    ct_err rc = strcmp(route, "me") == 0 ? api_me(who, out)
                : cert                   ? api_cert(c, who, route + 5, out)
                : strcmp(route, "search") == 0 ? api_search(c, who, rq, out)
                                               : api_report(c, who, rq, out);
    /* A read refused for its input (bad filter, unknown serial) is audited like any refusal. */
    if (rc != CT_OK && ct_err_http_status(rc) < 500)
        return ca_audit_refusal(c, cert ? "officer.read" : "officer.search", who->actor, cert ? route + 5 : "", rc);
    CT_GUARD_RET(rc);
    return ct_snprintf(reason, reason_max, "%.40s", route);
}

ct_err ca_officer_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans)
{
    ca_officer_id who;
    ct_buf out = CT_BUF_INIT;
    char reason[sizeof ans->reason] = "";
    bool api = strncmp(rq->path, API_PREFIX, strlen(API_PREFIX)) == 0;
    memset(ans, 0, sizeof *ans);
    ct_err_clear();
    char subject[96]; /* the path, as refusals are audited */
    if (ct_snprintf(subject, sizeof subject, "%.80s", rq->path) != CT_OK) subject[0] = '\0';
    ct_err rc = ca_officer_identify(c, rq, &who);
    if (ct_snprintf(ans->actor, sizeof ans->actor, "%.*s", (int)sizeof ans->actor - 1, who.actor) != CT_OK)
        ans->actor[0] = '\0';
    if (rc != CT_OK && ct_err_http_status(rc) < 500)
        rc = strcmp(who.actor, ANONYMOUS_ACTOR) == 0 ? ca_refuse_anonymous(c, rq->source, "officer.access", subject, rc)
                                                     : ca_refuse_counted(c, who.actor, "officer.access", subject, rc);
    /* A page of another site can make the officer's browser send anything here, with the officer's certificate:
     * the API, the console's script and style (loaded by its own page only: another site's <script> of it loaded
     * for an officer, failed for anyone else) and every request that would change state must come from this
     * server's own pages. Such a page can send these as fast as the browser will (and a disabled officer's
     * certificate to the door above): counted. */
    bool reads = ca_http_reads(rq->method);
    if (rc == CT_OK && (rc = host_is_ours(c, rq->host)) != CT_OK)
        rc = ca_refuse_counted(c, who.actor, "officer.csrf", subject, rc);
    if (rc == CT_OK && (!console_page(rq->path) || !reads) && (rc = ca_http_same_origin(rq, !reads)) != CT_OK)
        rc = ca_refuse_counted(c, who.actor, "officer.csrf", subject, rc);
    /* A body too large (any on a read, past server.max_body, or a revocation's past CA_OFFICER_MAX_BODY) is refused
     * before its route reads it: a read gets a 413 and no answer (ca_server.c), so it must not audit a read it never
     * sends, and a revocation nobody could read decided nothing (api_revoke audits the refusals of what it reads one
     * by one). Counted, as the other gates: unbudgeted rows would let a looping script grow the audit as fast as the
     * token MACs. The bound named is the one applied. */
    long body_max = ca_http_body_limit(c, rq->method);
    body_max = body_max < CA_OFFICER_MAX_BODY ? body_max : CA_OFFICER_MAX_BODY;
    if (rc == CT_OK && (rq->body_too_large || (long)rq->body_len > body_max))
        rc = ca_refuse_counted(c, who.actor, "officer.body", subject,
                               ct_fail(CT_ERR_TOO_LARGE, "request body larger than %ld bytes", body_max));
    if (rc == CT_OK && !api) return ca_console_handle(rq, ans);
    /* Each read is an audit row with its fsync and MAC: an officer's own script (an auditor's too) could grow the
     * audit as fast as the token MACs. Past its budget a read is counted, not answered (429, Retry-After: when one
     * more is allowed). Revocations are not budgeted: each is a decision of its own, and a script that spent the
     * budget must not keep its officer from revoking during an incident. */
    if (rc == CT_OK && reads && !ca_actor_budget_take(c, who.actor, c->cfg.officer_requests_per_minute)) {
        rc = ca_refuse_counted(c, who.actor, "officer.budget", subject,
                               ct_fail(CT_ERR_RATE_LIMITED, "over officer.requests_per_minute (%ld): ask again later",
                                       c->cfg.officer_requests_per_minute));
        ans->retry_after_s = (60 + c->cfg.officer_requests_per_minute - 1) / c->cfg.officer_requests_per_minute;
    }
    if (rc == CT_OK) rc = api_route(c, &who, rq, &out, reason, sizeof reason);
    if (rc == CT_OK) rc = answer_json(ans, &out, reason);
    ct_buf_free(&out);
    if (rc != CT_OK) return api ? api_error(ans, rc) : ca_http_error(ans, rc);
    return CT_OK;
}
