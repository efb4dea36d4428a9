/* Officers and what they read, called directly (no HTTP server): roles and authentication, the revocation
 * body parser, search filters, report numbers, and the JSON / CSV escaping everything goes through. One CA per
 * test case fixture: a SoftHSM token and an SQLite file, two stations, an auditor and an officer. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca_priv.h"
#include "test_util.h"

static const char *tmp;
static ca *the_ca;
static ct_buf line1_cert, line2_cert, alice_cert, bob_cert;

/* A client (station or officer) certified from an openssl CSR; its DER certificate in `der`. */
static void client(const char *name, const char *role, ct_buf *der)
{
    char csr[600], pem[600];
    snprintf(csr, sizeof csr, "%s/%s.csr", tmp, name);
    snprintf(pem, sizeof pem, "%s/%s.pem", tmp, name);
    ck_assert_int_eq(tu_sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null "
                           "-subj /CN=%s -out '%s' 2>/dev/null", name, csr), 0);
    ck_assert_int_eq(role ? ca_officer_add(the_ca, name, role, csr, pem) : ca_station_add(the_ca, name, csr, pem), CT_OK);
    ck_assert_int_eq(ca_read_cert_file(pem, der), CT_OK);
}

/* One camera enrolled by a station: a CSR for `serial` through the real policy. */
static void camera(const ct_buf *station, const char *serial)
{
    char path[600];
    ct_buf csr = CT_BUF_INIT;
    ca_enroll_result res = {0};
    snprintf(path, sizeof path, "%s/%s.csr", tmp, serial);
    ck_assert_int_eq(tu_sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null "
                           "-subj /serialNumber=%s/CN=x -out '%s' 2>/dev/null", serial, path), 0);
    ck_assert_int_eq(ca_read_csr_file(path, &csr), CT_OK);
    ca_enroll_request req = {.kind = CA_ENROLL_NEW, .client_cert = station->data, .client_cert_len = station->len,
                             .csr = csr.data, .csr_len = csr.len};
    ck_assert_int_eq(ca_enroll(the_ca, &req, &res), CT_OK);
    ct_buf_free(&res.cert_der);
    ct_buf_free(&csr);
}

static void order(const char *station, const char *model, const char *serials)
{
    char path[600];
    int64_t id;
    snprintf(path, sizeof path, "%s/%s-%s.txt", tmp, station, model);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(serials, f);
    fclose(f);
    ck_assert_int_eq(ca_order_create(the_ca, station, model, path, &id), CT_OK);
}

static void setup(void)
{
    char dir[600];
    tmp = tu_tmpdir("officer");
    snprintf(dir, sizeof dir, "%s/ca", tmp);
    ck_assert_int_eq(tu_ca_create(dir), 0);
    ck_assert_int_eq(ca_open(dir, &the_ca), CT_OK);
    /* the names the requests below give as Host (the server's TLS certificate would have them) */
    ck_assert_int_eq(ct_strlcpy(the_ca->cfg.server_names, sizeof the_ca->cfg.server_names, "localhost, ca.test"), CT_OK);
    client("line1", NULL, &line1_cert);
    client("line2", NULL, &line2_cert);
    client("alice", "auditor", &alice_cert);
    client("bob", "officer", &bob_cert);
    order("line1", "CX100", "SN-1\nSN-2\nSN-3\n"); /* order 1 */
    order("line1", "CX200", "SN-4\n");             /* order 2 */
    order("line2", "CX100", "SN-7\nSN-8\n");       /* order 3 */
    const char *line1[] = {"SN-1", "SN-2", "SN-3", "SN-4"};
    for (size_t i = 0; i < 4; i++) camera(&line1_cert, line1[i]);
    camera(&line2_cert, "SN-7");
}

static void teardown(void)
{
    ct_buf *all[] = {&line1_cert, &line2_cert, &alice_cert, &bob_cert};
    for (size_t i = 0; i < 4; i++) ct_buf_free(all[i]);
    ca_close(the_ca);
    the_ca = NULL;
}

static long count(const char *table_where)
{
    return tu_count_rows(the_ca->cfg.db_path, the_ca->cfg.db_url, table_where);
}

/* ---- escaping ---- */
START_TEST(json_and_csv_escaping)
{
    ct_buf b = CT_BUF_INIT;
    const char *s = NULL;
    ck_assert_int_eq(ct_buf_alloc(&b, 256), CT_OK);
    ck_assert_int_eq(ct_json_string(&b, "a\"b\\c\n\x01</script>&\xc3\xa9\xff"), CT_OK);
    ck_assert_int_eq(ct_buf_cstr(&b, &s), CT_OK);
    ck_assert_str_eq(s, "\"a\\\"b\\\\c\\u000a\\u0001\\u003c/script\\u003e\\u0026\xc3\xa9\\ufffd\"");
    b.len = 0;
    ck_assert_int_eq(ct_json_string(&b, "\xed\xa0\x80\xc0\xaf"), CT_OK); /* a surrogate and an overlong '/' */
    ck_assert_int_eq(ct_buf_cstr(&b, &s), CT_OK);
    ck_assert_str_eq(s, "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
    b.len = 0;
    const char *fields[] = {"plain", "with,comma", "say \"hi\"", "two\r\nlines", "", "=HYPERLINK(\"x\")", "@SUM(A1)",
                            "-2+3", "a=b"};
    for (size_t i = 0; i < 9; i++) {
        if (i) ck_assert_int_eq(ct_buf_append(&b, ",", 1), CT_OK);
        ck_assert_int_eq(ct_csv_field(&b, fields[i]), CT_OK);
    }
    ck_assert_int_eq(ct_buf_cstr(&b, &s), CT_OK);
    ck_assert_str_eq(s, "plain,\"with,comma\",\"say \"\"hi\"\"\",\"two\r\nlines\",,\"'=HYPERLINK(\"\"x\"\")\","
                        "\"'@SUM(A1)\",\"'-2+3\",a=b");
    /* Log values: one quoted field whatever they hold; cut with a mark when too long, never unterminated. */
    char q[24];
    ck_assert_str_eq(ct_log_quote(q, sizeof q, "/x status=200 \"a\\"), "\"/x status=200 \\\"a\\\\\"");
    ck_assert_str_eq(ct_log_quote(q, sizeof q, NULL), "\"\"");
    ck_assert_str_eq(ct_log_quote(q, sizeof q, "0123456789012345678901234567"), "\"012345678901234567...\"");
    ck_assert_str_eq(ct_log_quote(q, sizeof q, "\"\"\"\"\"\"\"\"\"\"\"\"\""), "\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"\\\"...\"");
    ck_assert_uint_eq(strlen(ct_log_quote(q, sizeof q, "01234567890123456789")), 22); /* fits exactly */
    ck_assert_str_eq(ct_log_quote(q, 6, "abc"), "\"abc\"");
    ck_assert_str_eq(ct_log_quote(q, 6, "abcd"), "");
    /* URLs: escapes decoded except those of control characters, which would cut or split the path. */
    char url[] = "/est/simpleenroll%00x%2Fa+b%zz%4%0a%7F%7e%25";
    ck_assert_uint_eq(ct_url_unescape(url), strlen("/est/simpleenroll%00x/a+b%zz%4%0a%7F~%"));
    ck_assert_str_eq(url, "/est/simpleenroll%00x/a+b%zz%4%0a%7F~%");
    ct_buf_free(&b);
}
END_TEST

static ct_err parse(const char *type, const char *body, ca_revoke_fields *f)
{
    return ca_revoke_fields_parse(type, (const uint8_t *)body, strlen(body), f);
}

START_TEST(revoke_bodies_are_parsed_strictly)
{
    ca_revoke_fields f;
    ck_assert_int_eq(parse("application/json", " { \"serial\" : \"AB:cd\", \"reason\":\"key\\u0043ompromise\" } ", &f),
                     CT_OK);
    ck_assert_str_eq(f.serial, "AB:cd");
    ck_assert_str_eq(f.reason, "keyCompromise");
    ck_assert_int_eq(parse("application/json; charset=utf-8", "{\"order\": 12, \"reason\": \"a\\/b\\u00e9\"}", &f), CT_OK);
    ck_assert_str_eq(f.order, "12");
    ck_assert_str_eq(f.reason, "a/b\xc3\xa9");
    /* A form is what another site's page can post without asking: refused like any other type. */
    ck_assert_int_eq(parse("application/x-www-form-urlencoded", "station=line1&reason=affiliationChanged", &f),
                     CT_ERR_CONTENT_TYPE);
    const char *bad_json[] = {"", "{", "[]", "{\"serial\":\"a\"", "{\"serial\":\"a\"}x", "{\"serial\":true}",
                              "{\"serial\":\"a\",}", "{\"force\":\"1\"}", "{\"serial\":\"a\",\"serial\":\"b\"}",
                              "{\"serial\":\"a\\q\"}", "{\"serial\":\"a\\u0000\"}", "{\"serial\":\"\\ud800\"}",
                              "{\"serial\":\"tab\there\"}", "{\"serial\":-1}"};
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++)
        ck_assert_msg(parse("application/json", bad_json[i], &f) == CT_ERR_BAD_REQUEST, "accepted %s", bad_json[i]);
    char long_value[300];
    memset(long_value, 'a', sizeof long_value);
    memcpy(long_value, "{\"serial\":\"", 11);
    memcpy(long_value + sizeof long_value - 3, "\"}", 3);
    ck_assert_int_eq(parse("application/json", long_value, &f), CT_ERR_BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "longer than 127 bytes"));
    ck_assert_int_eq(parse("text/plain", "{}", &f), CT_ERR_CONTENT_TYPE);
    ck_assert_int_eq(parse(NULL, "{}", &f), CT_ERR_CONTENT_TYPE);
    uint8_t big[CA_OFFICER_MAX_BODY + 1];
    memset(big, ' ', sizeof big);
    ck_assert_int_eq(ca_revoke_fields_parse("application/json", big, sizeof big, &f), CT_ERR_TOO_LARGE);
    ck_assert_int_eq(ca_revoke_fields_parse("application/json", (const uint8_t *)"{}\0", 3, &f), CT_ERR_BAD_REQUEST);
}
END_TEST

/* ---- roles ---- */
static ct_err handle(const ct_buf *cert, const char *method, const char *path, const char *body, ca_http_answer *ans)
{
    ca_http_request rq = {.method = method, .path = path, .content_type = "application/json",
                          .body = (const uint8_t *)body, .body_len = body ? strlen(body) : 0,
                          .client_cert = cert ? cert->data : NULL, .client_cert_len = cert ? cert->len : 0,
                          .host = "ca.test:8443", .origin = "https://ca.test:8443", .fetch_site = "same-origin"};
    return ca_officer_handle(the_ca, &rq, ans);
}

static bool body_has(const ca_http_answer *ans, const char *what)
{
    return ans->body.len && memmem(ans->body.data, ans->body.len, what, strlen(what)) != NULL;
}

START_TEST(roles_decide_who_reads_and_who_revokes)
{
    ca_officer_id who;
    ca_http_request rq = {.client_cert = alice_cert.data, .client_cert_len = alice_cert.len};
    ck_assert_int_eq(ca_officer_identify(the_ca, &rq, &who), CT_OK);
    ck_assert_str_eq(who.name, "alice");
    ck_assert_int_eq(who.role, DB_ROLE_AUDITOR);
    ck_assert_str_eq(who.actor, "officer:alice");
    rq.client_cert = line1_cert.data, rq.client_cert_len = line1_cert.len;
    ck_assert_int_eq(ca_officer_identify(the_ca, &rq, &who), CT_ERR_FORBIDDEN);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "stations cannot read"));
    ck_assert_str_eq(who.actor, "station:line1");
    rq.client_cert = NULL, rq.client_cert_len = 0;
    ck_assert_int_eq(ca_officer_identify(the_ca, &rq, &who), CT_ERR_UNAUTHENTICATED);
    rq.client_cert_untrusted = true;
    ck_assert_int_eq(ca_officer_identify(the_ca, &rq, &who), CT_ERR_UNKNOWN_CLIENT);

    ca_http_answer ans;
    long denied = count("audit where outcome = 'denied'");
    const char *body = "{\"order\": 1, \"reason\": \"keyCompromise\"}";
    ck_assert_int_eq(handle(&alice_cert, "POST", "/officer/api/revoke", body, &ans), CT_ERR_FORBIDDEN);
    ck_assert_int_eq(ans.status, 403);
    ck_assert(body_has(&ans, "\"error\":\"auditors cannot revoke"));
    ca_http_answer_free(&ans);
    ck_assert_int_eq(count("audit where outcome = 'denied'"), denied + 1);
    ck_assert_int_eq(count("audit where outcome = 'denied' and actor = 'officer:alice'"), 1);
    ck_assert_int_eq(count("certificates where status = 'revoked'"), 0);
    ck_assert_int_eq(handle(&line1_cert, "GET", "/officer/api/report", NULL, &ans), CT_ERR_FORBIDDEN);
    ca_http_answer_free(&ans);
    ck_assert_int_eq(handle(NULL, "GET", "/console/", NULL, &ans), CT_ERR_UNAUTHENTICATED);
    ck_assert_int_eq(ans.status, 401);
    ca_http_answer_free(&ans);
    ck_assert_int_eq(count("audit where action = 'officer.access' and outcome = 'denied'"), 2);

    ck_assert_int_eq(handle(&alice_cert, "GET", "/officer/api/search", NULL, &ans), CT_OK);
    ck_assert(body_has(&ans, "\"total\":5,"));
    ca_http_answer_free(&ans);
    ck_assert_int_eq(handle(&bob_cert, "POST", "/officer/api/revoke", body, &ans), CT_OK);
    ck_assert(body_has(&ans, "{\"revoked\":3,\"same_key\":0,\"scope\":\"order\",\"target\":\"1\",\"reason\":\"keyCompromise\"}"));
    ca_http_answer_free(&ans);
    ck_assert_int_eq(count("audit where actor = 'officer:bob' and action = 'order.revoke' and outcome = 'ok'"), 1);
    ck_assert_int_eq(handle(&bob_cert, "POST", "/officer/api/revoke", body, &ans), CT_ERR_ALREADY_REVOKED);
    ck_assert_int_eq(ans.status, 409);
    ca_http_answer_free(&ans);

    /* A role change holds from the next request: bob made auditor cannot revoke, alice made officer can. */
    ck_assert_int_eq(ca_officer_set_role(the_ca, "bob", "auditor"), CT_OK);
    ck_assert_int_eq(ca_officer_set_role(the_ca, "alice", "officer"), CT_OK);
    const char *one = "{\"station\": \"line2\", \"reason\": \"superseded\"}";
    ck_assert_int_eq(handle(&bob_cert, "POST", "/officer/api/revoke", one, &ans), CT_ERR_FORBIDDEN);
    ca_http_answer_free(&ans);
    ck_assert_int_eq(handle(&alice_cert, "POST", "/officer/api/revoke", one, &ans), CT_OK);
    ca_http_answer_free(&ans);
    ck_assert_int_eq(count("audit where action = 'officer.role' and outcome = 'ok'"), 2);
    db_state_report st;
    ck_assert_int_eq(ca_state_verify(the_ca, &st), CT_OK);

    ck_assert_int_eq(ca_officer_set_enabled(the_ca, "bob", false), CT_OK);
    ck_assert_int_eq(handle(&bob_cert, "GET", "/officer/api/me", NULL, &ans), CT_ERR_DISABLED);
    ca_http_answer_free(&ans);
    ck_assert_int_eq(ca_officer_set_enabled(the_ca, "nobody", true), CT_ERR_NOT_FOUND);
}
END_TEST

/* ---- search ---- */
static long found(const ca_search_args *a)
{
    ct_buf out = CT_BUF_INIT;
    const char *s = NULL;
    long total = -1;
    ck_assert_int_eq(ca_audit_search(the_ca, a, CA_FORMAT_JSON, &out), CT_OK);
    ck_assert_int_eq(ct_buf_cstr(&out, &s), CT_OK);
    ck_assert_int_eq(sscanf(s, "{\"total\":%ld,", &total), 1);
    ct_buf_free(&out);
    return total;
}

START_TEST(search_filters_combine)
{
    ck_assert_int_eq(found(&(ca_search_args){0}), 5);
    ck_assert_int_eq(found(&(ca_search_args){.device_serial = "SN-2"}), 1);
    ck_assert_int_eq(found(&(ca_search_args){.station = "line1"}), 4);
    ck_assert_int_eq(found(&(ca_search_args){.station = "line1", .model = "CX100"}), 3);
    ck_assert_int_eq(found(&(ca_search_args){.model = "CX100"}), 4);
    ck_assert_int_eq(found(&(ca_search_args){.order = "2"}), 1);
    ck_assert_int_eq(found(&(ca_search_args){.order = "2", .device_serial = "SN-1"}), 0);
    ck_assert_int_eq(found(&(ca_search_args){.from = "2000-01-01", .to = "9999-01-01"}), 5);
    ck_assert_int_eq(found(&(ca_search_args){.to = "2020-01-01T00:00:00Z"}), 0);
    ck_assert_int_eq(found(&(ca_search_args){.from = "4102444800"}), 0); /* 2100 */
    ck_assert_int_eq(found(&(ca_search_args){.status = "valid"}), 5);
    ck_assert_int_eq(ca_revoke(the_ca, &(ca_revoke_request){DB_REVOKE_STATION, "line2", "superseded", "test", false}, NULL), CT_OK);
    ck_assert_int_eq(found(&(ca_search_args){.status = "revoked"}), 1);
    ck_assert_int_eq(found(&(ca_search_args){.status = "revoked", .station = "line1"}), 0);

    /* The certificate serial in any spelling people paste. */
    ct_buf out = CT_BUF_INIT;
    const char *s = NULL;
    ck_assert_int_eq(ca_audit_search(the_ca, &(ca_search_args){.device_serial = "SN-7"}, CA_FORMAT_CSV, &out), CT_OK);
    ck_assert_int_eq(ct_buf_cstr(&out, &s), CT_OK);
    ck_assert_ptr_nonnull(strstr(s, "cert_serial,device_serial,profile,station,order,model,status,issued_at,not_after,"
                                    "revoked_at,reason,subject\r\n"));
    ck_assert_ptr_nonnull(strstr(s, ",SN-7,device,line2,3,CX100,revoked,"));
    ck_assert_ptr_nonnull(strstr(s, ",superseded,CX100 SN-7\r\n"));
    char serial[DB_CERT_SERIAL_HEX_MAX + 8] = "", upper[DB_CERT_SERIAL_HEX_MAX + 8] = "";
    ck_assert_int_eq(sscanf(strchr(s, '\n') + 1, "%40[0-9a-f]", serial), 1);
    for (size_t i = 0; serial[i]; i++) upper[i] = (char)(serial[i] >= 'a' ? serial[i] - 32 : serial[i]);
    ct_buf_free(&out);
    ck_assert_int_eq(found(&(ca_search_args){.cert_serial = serial}), 1);
    ck_assert_int_eq(found(&(ca_search_args){.cert_serial = upper}), 1);

    /* Paging: limit and offset, the total stays. */
    ck_assert_int_eq(ca_audit_search(the_ca, &(ca_search_args){.limit = "2", .offset = "4"}, CA_FORMAT_TABLE, &out), CT_OK);
    ck_assert_int_eq(ct_buf_cstr(&out, &s), CT_OK);
    ck_assert_ptr_nonnull(strstr(s, "1 of 5 shown (offset 4)"));
    ct_buf_free(&out);

    /* Bad filters: named, nothing searched. */
    const ca_search_args bad[] = {{.device_serial = "SN 1"}, {.cert_serial = "xyz"}, {.station = "line'1"},
                                  {.order = "0"},           {.order = "1;2"},      {.status = "lost"},
                                  {.from = "yesterday"},    {.from = "2026-01-02", .to = "2026-01-01"},
                                  {.limit = "0"},           {.limit = "501"},      {.offset = "-1"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(ca_audit_search(the_ca, &bad[i], CA_FORMAT_JSON, &out), CT_ERR_USAGE);
    char huge[200];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    ck_assert_int_eq(ca_audit_search(the_ca, &(ca_search_args){.model = huge}, CA_FORMAT_JSON, &out), CT_ERR_USAGE);
}
END_TEST

/* ---- report ---- */
static char *report(ca_format f)
{
    ct_buf out = CT_BUF_INIT;
    const char *s = NULL;
    ck_assert_int_eq(ca_audit_report(the_ca, NULL, NULL, f, &out), CT_OK);
    ck_assert_int_eq(ct_buf_cstr(&out, &s), CT_OK);
    char *copy = strdup(s);
    ct_buf_free(&out);
    return copy;
}

START_TEST(report_counts_issuance_denials_and_revocations)
{
    ca_http_answer ans;
    /* A denied enrollment by line2 (serial outside its order) and a station at the officer API. */
    ct_buf csr = CT_BUF_INIT;
    ca_enroll_result res = {0};
    char path[600];
    snprintf(path, sizeof path, "%s/SN-1.csr", tmp);
    ck_assert_int_eq(ca_read_csr_file(path, &csr), CT_OK);
    ca_enroll_request req = {.kind = CA_ENROLL_NEW, .client_cert = line2_cert.data, .client_cert_len = line2_cert.len,
                             .csr = csr.data, .csr_len = csr.len};
    ck_assert_int_eq(ca_enroll(the_ca, &req, &res), CT_ERR_NOT_IN_ORDER);
    ct_buf_free(&csr);
    ck_assert_int_eq(handle(&line2_cert, "GET", "/officer/api/search", NULL, &ans), CT_ERR_FORBIDDEN);
    ca_http_answer_free(&ans);
    ck_assert_int_eq(ca_revoke(the_ca, &(ca_revoke_request){DB_REVOKE_ORDER, "1", "cessationOfOperation", "test", false}, NULL),
                     CT_OK);

    char *json = report(CA_FORMAT_JSON);
    ck_assert_ptr_nonnull(strstr(json, "\"totals\":[{\"issued\":5,\"revoked\":3,\"denials\":2,\"revocation_actions\":1,"
                                       "\"denial_entries\":2}]"));
    ck_assert_ptr_nonnull(strstr(json, "{\"station\":\"line1\",\"issued\":4,\"revoked\":3,\"denied\":0,\"denied_entries\":0,\"over_budget\":0}"));
    ck_assert_ptr_nonnull(strstr(json, "{\"station\":\"line2\",\"issued\":1,\"revoked\":0,\"denied\":2,\"denied_entries\":2,\"over_budget\":0}"));
    ck_assert_ptr_nonnull(strstr(json, "{\"order\":1,\"station\":\"line1\",\"model\":\"CX100\",\"state\":\"closed\","
                                       "\"serials\":3,\"issued\":3,\"revoked\":3}"));
    ck_assert_ptr_nonnull(strstr(json, "{\"order\":3,\"station\":\"line2\",\"model\":\"CX100\",\"state\":\"open\","
                                       "\"serials\":2,\"issued\":1,\"revoked\":0}"));
    ck_assert_ptr_nonnull(strstr(json, "\"reasons\":[{\"reason\":\"cessationOfOperation\",\"revoked\":3}]"));
    ck_assert_ptr_nonnull(strstr(json, "\"actor\":\"station:line2\",\"action\":\"officer.access\""));
    ck_assert_ptr_nonnull(strstr(json, "\"action\":\"order.revoke\",\"subject\":\"order 1\""));
    ck_assert_ptr_nonnull(strstr(json, "\"issued\":4}")); /* line1's day */
    ck_assert_str_eq(json + strlen(json) - 3, "]}\n");
    free(json);
    char *csv = report(CA_FORMAT_CSV);
    ck_assert_ptr_nonnull(strstr(csv, "issued,revoked,denials,revocation_actions,denial_entries\r\n5,3,2,1,2\r\n\r\nstation,"));
    ck_assert_ptr_nonnull(strstr(csv, "\r\nline2,1,0,2,2,0\r\n"));
    ck_assert_ptr_nonnull(strstr(csv, ",station:line2,officer.access,/officer/api/search,stations cannot read: station "
                                      "line2 is not an officer,1\r\n"));
    free(csv);
    ca_format f;
    ck_assert_int_eq(ca_format_parse("xml", &f), CT_ERR_USAGE);
    ct_buf out = CT_BUF_INIT;
    ck_assert_int_eq(ca_audit_report(the_ca, "2026-13-01", NULL, CA_FORMAT_JSON, &out), CT_ERR_USAGE);
}
END_TEST

START_TEST(cert_detail_decodes_and_refuses_unknown)
{
    ct_buf out = CT_BUF_INIT;
    const char *s = NULL;
    ck_assert_int_eq(ca_audit_search(the_ca, &(ca_search_args){.device_serial = "SN-1"}, CA_FORMAT_CSV, &out), CT_OK);
    ck_assert_int_eq(ct_buf_cstr(&out, &s), CT_OK);
    char serial[DB_CERT_SERIAL_HEX_MAX + 8] = "";
    ck_assert_int_eq(sscanf(strchr(s, '\n') + 1, "%40[0-9a-f]", serial), 1);
    ct_buf_free(&out);
    ck_assert_int_eq(ca_cert_detail_json(the_ca, serial, &out), CT_OK);
    ck_assert_int_eq(ct_buf_cstr(&out, &s), CT_OK);
    const char *want[] = {"\"device_serial\":\"SN-1\"", "\"status\":\"valid\"", "\"key_usage\":\"digitalSignature\"",
                          "\"ext_key_usage\":\"serverAuth, clientAuth\"", "\"key_type\":\"EC P-256\"",
                          "\"subject_cn\":\"CX100 SN-1\"", "\"log_inclusion\":\"leaf ",
                          "\"chain_status\":\"verified", "\"order\":1,", "-----BEGIN CERTIFICATE-----\\u000a"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) ck_assert_msg(strstr(s, want[i]), "no %s in %s", want[i], s);
    ct_buf_free(&out);
    ck_assert_int_eq(ca_cert_detail_json(the_ca, "0123456789abcdef", &out), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(ca_cert_detail_json(the_ca, "not hex", &out), CT_ERR_USAGE);
    /* a viewer is the operations issuing CA's: its chain is checked against that one */
    char csr[600], pem[600];
    snprintf(csr, sizeof csr, "%s/viewer.csr", tmp);
    snprintf(pem, sizeof pem, "%s/viewer.pem", tmp);
    ck_assert_int_eq(tu_sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null "
                           "-subj /CN=v1 -out '%s' 2>/dev/null", csr), 0);
    ck_assert_int_eq(ca_viewer_add(the_ca, "v1", csr, pem), CT_OK);
    ct_buf vder = CT_BUF_INIT;
    pki_cert_info vi;
    ck_assert_int_eq(ca_read_cert_file(pem, &vder), CT_OK);
    ck_assert_int_eq(pki_cert_parse_info(vder.data, vder.len, &vi), CT_OK);
    ck_assert_int_eq(ca_cert_detail_json(the_ca, vi.serial_hex, &out), CT_OK);
    ck_assert_int_eq(ct_buf_cstr(&out, &s), CT_OK);
    ck_assert_msg(strstr(s, "\"chain_status\":\"verified: signed by the operations issuing CA"), "%s", s);
    ct_buf_free(&out);
    ct_buf_free(&vder);
}
END_TEST

/* A page of another site makes the officer's browser send the request, certificate and all: the browser's own
 * headers say so, and nothing changes. Programs that send no such header may read but not revoke. */
static ct_err from(const char *method, const char *path, const char *origin, const char *site, ca_http_answer *ans)
{
    /* (a read sends none: a GET takes no body, ca_http_body_limit) */
    const char *body = ca_http_reads(method) ? "" : "{\"order\": 2, \"reason\": \"keyCompromise\"}";
    ca_http_request rq = {.method = method, .path = path, .content_type = "application/json",
                          .body = (const uint8_t *)body, .body_len = strlen(body), .client_cert = bob_cert.data,
                          .client_cert_len = bob_cert.len, .host = "CA.test:8443", .origin = origin, .fetch_site = site};
    ct_err rc = ca_officer_handle(the_ca, &rq, ans);
    ca_http_answer_free(ans);
    return rc;
}

START_TEST(cross_site_requests_change_nothing)
{
    ca_http_answer ans;
    const struct {
        const char *origin, *site;
    } refused[] = {{"https://evil.example", NULL},          {NULL, NULL},
                   {"https://evil.example", "same-origin"}, {"https://ca.test:8443", "cross-site"},
                   {NULL, "same-site"},                     {NULL, "none"},
                   {"http://ca.test:8443", NULL},           {"https://ca.test:8443.evil.example", NULL},
                   {"null", NULL}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ck_assert_msg(from("POST", "/officer/api/revoke", refused[i].origin, refused[i].site, &ans) == CT_ERR_FORBIDDEN,
                      "revoke accepted from %s / %s", refused[i].origin, refused[i].site);
        ck_assert_int_eq(ans.status, 403);
    }
    ck_assert_int_eq(count("certificates where status = 'revoked'"), 0);
    ck_assert_int_eq(count("audit where action = 'officer.csrf' and actor = 'officer:bob' and outcome = 'denied'"), 9);
    ck_assert_int_eq(count("audit where action = 'officer.csrf' and detail like 'cross-origin request refused (Origin "
                           "https://evil.example is not https://CA.test:8443)'"), 2);
    /* Reads of the API: refused when the browser says another site asks, served to programs and typed addresses. */
    ck_assert_int_eq(from("GET", "/officer/api/search", NULL, "cross-site", &ans), CT_ERR_FORBIDDEN);
    ck_assert_int_eq(from("GET", "/officer/api/me", "https://evil.example", "cross-site", &ans), CT_ERR_FORBIDDEN);
    char long_path[400] = "/officer/api/";
    memset(long_path + 13, 'x', sizeof long_path - 14);
    ck_assert_int_eq(from("POST", long_path, "https://evil.example", NULL, &ans), CT_ERR_FORBIDDEN); /* still audited */
    ck_assert_int_eq(count("audit where action = 'officer.csrf'"), 12);
    ck_assert_int_eq(from("GET", "/officer/api/me", NULL, NULL, &ans), CT_OK);
    ck_assert_int_eq(from("GET", "/officer/api/me", NULL, "none", &ans), CT_OK);
    ck_assert_int_eq(from("GET", "/console/", NULL, "cross-site", &ans), CT_OK); /* a link to the console: a page */
    /* Its script and style: its own page's only (another site's <script> of it loaded for an officer alone). */
    ck_assert_int_eq(from("GET", "/console/app.js", NULL, "cross-site", &ans), CT_ERR_FORBIDDEN);
    ck_assert_int_eq(from("GET", "/console/app.css", NULL, "same-site", &ans), CT_ERR_FORBIDDEN);
    ck_assert_int_eq(from("GET", "/console/app.js", NULL, "same-origin", &ans), CT_OK);
    ck_assert_int_eq(from("POST", "/console/", "https://evil.example", NULL, &ans), CT_ERR_FORBIDDEN);
    /* The console's own requests: same origin (the host compared without case), or the browser saying so. */
    ck_assert_int_eq(from("POST", "/officer/api/revoke", "https://ca.test:8443", NULL, &ans), CT_OK);
    ck_assert_int_eq(count("certificates where status = 'revoked'"), 1);
    ck_assert_int_eq(from("POST", "/officer/api/revoke", NULL, "same-origin", &ans), CT_ERR_ALREADY_REVOKED);
}
END_TEST

/* DNS rebinding: another site's name resolves to this server, the browser was told to accept its certificate for it.
 * The page is then its own origin, same-origin to the browser: only the Host, not one of this CA's names, tells. */
START_TEST(rebound_names_change_nothing)
{
    const char *const hosts[] = {"evil.example:8443", "evil.example", "ca.test.evil.example:8443", "[::1]:8443",
                                 "10.0.0.1:8443",     "",             "ca.tes:8443",               ":8443",
                                 "[ca.test",          "(repeated)"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char origin[96];
        snprintf(origin, sizeof origin, "https://%s", hosts[i]);
        ca_http_request rq = {.method = "POST", .path = "/officer/api/revoke", .content_type = "application/json",
                              .body = (const uint8_t *)"{\"order\": 2, \"reason\": \"keyCompromise\"}",
                              .client_cert = bob_cert.data, .client_cert_len = bob_cert.len, .host = hosts[i],
                              .origin = origin, .fetch_site = "same-origin"};
        rq.body_len = strlen((const char *)rq.body);
        ca_http_answer ans;
        ck_assert_msg(ca_officer_handle(the_ca, &rq, &ans) == CT_ERR_FORBIDDEN, "revoked under Host '%s'", hosts[i]);
        ck_assert_int_eq(ans.status, 403);
        ca_http_answer_free(&ans);
        rq.method = "GET", rq.path = "/officer/api/me", rq.body_len = 0, rq.origin = NULL;
        ck_assert_msg(ca_officer_handle(the_ca, &rq, &ans) == CT_ERR_FORBIDDEN, "read under Host '%s'", hosts[i]);
        ca_http_answer_free(&ans);
    }
    ck_assert_int_eq(count("certificates where status = 'revoked'"), 0);
    ck_assert_int_eq(count("audit where action = 'officer.csrf' and detail like 'Host ''evil.example:8443'' is not one "
                           "of this CA''s names (server.names, server.ips)'"), 2);
    /* Its names (any case, written absolute, with or without the port) and its address (server.ips) */
    const char *const ours[] = {"CA.Test:8443", "ca.test.", "localhost:8443", "127.0.0.1:8443"};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        ca_http_request rq = {.method = "GET", .path = "/officer/api/me", .client_cert = bob_cert.data,
                              .client_cert_len = bob_cert.len, .host = ours[i], .fetch_site = "same-origin"};
        ca_http_answer ans;
        ck_assert_msg(ca_officer_handle(the_ca, &rq, &ans) == CT_OK, "Host '%s' refused", ours[i]);
        ca_http_answer_free(&ans);
    }
}
END_TEST

/* Accept-Encoding as clients send it (tlog-tiles entry bundles are gzip only when accepted). */
START_TEST(accept_encoding_gzip)
{
    static const struct {
        const char *header;
        bool gzip;
    } cases[] = {
        {NULL, false}, {"", false}, {"identity", false}, {"gzip", true}, {"GZip", true}, {"x-gzip", true},
        {"gzip, deflate, br", true}, {"br,gzip", true}, {" deflate , gzip ;q=0.5", true}, {"gzip;q=0", false},
        {"gzip; q=0.000", false}, {"gzip;q=0.001", true}, {"*", true}, {"*;q=0", false}, {"*, gzip;q=0", false},
        {"gzip;q=0, *", false}, {"identity, *;q=0.1", true}, {"gzipx", false}, {"xgzip", false}, {"gzip2", false},
        {",,,", false}, {"gzip;", true}, {"deflate;q=0, gzip", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(ca_http_accepts_gzip(cases[i].header) == cases[i].gzip, "'%s'",
                      cases[i].header ? cases[i].header : "(none)");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("officer");
    TCase *plain = tcase_create("parsing");
    tcase_add_test(plain, json_and_csv_escaping);
    tcase_add_test(plain, revoke_bodies_are_parsed_strictly);
    tcase_add_test(plain, accept_encoding_gzip);
    suite_add_tcase(s, plain);
    TCase *tc = tcase_create("officers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, roles_decide_who_reads_and_who_revokes);
    tcase_add_test(tc, search_filters_combine);
    tcase_add_test(tc, report_counts_issuance_denials_and_revocations);
    tcase_add_test(tc, cert_detail_decodes_and_refuses_unknown);
    tcase_add_test(tc, cross_site_requests_change_nothing);
    tcase_add_test(tc, rebound_names_change_nothing);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
