/* The enrollment policy, called directly (no HTTP), on a real CA: SoftHSM token, SQLite file. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ca/ca_priv.h"
#include "test_util.h"

static const char *dir;
static ca *the_ca;
static ct_buf station_cert;

static void read_file_der(const char *path, bool is_csr, ct_buf *out)
{
    ck_assert_int_eq(is_csr ? ca_read_csr_file(path, out) : ca_read_cert_file(path, out), CT_OK);
}

/* A CSR made by openssl, as a station's camera would send it. */
static void openssl_csr(const char *name, const char *subject, const char *keyopt, ct_buf *der)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.csr", dir, name);
    ck_assert_int_eq(tu_sh("openssl req -new %s -nodes -keyout '%s/%s.key' -subj '%s' -out '%s' 2>/dev/null",
                           keyopt ? keyopt : "-newkey ec -pkeyopt ec_paramgen_curve:P-256", dir, name, subject, path),
                     0);
    read_file_der(path, true, der);
}

static void setup(void)
{
    char path[600], out[600];
    dir = tu_tmpdir("ca");
    snprintf(path, sizeof path, "%s/ca", dir);
    ck_assert_int_eq(ca_init(path), CT_OK);
    ck_assert_int_eq(ca_open(path, &the_ca), CT_OK);
    ck_assert_int_eq(tu_sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '%s/st.key' "
                           "-subj /CN=line1 -out '%s/st.csr' 2>/dev/null",
                           dir, dir),
                     0);
    snprintf(path, sizeof path, "%s/st.csr", dir);
    snprintf(out, sizeof out, "%s/st.pem", dir);
    ck_assert_int_eq(ca_station_add(the_ca, "line1", path, out), CT_OK);
    read_file_der(out, false, &station_cert);
    snprintf(path, sizeof path, "%s/serials", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("SN-1\nSN-2\nSN-3\n", f);
    fclose(f);
    int64_t id;
    ck_assert_int_eq(ca_order_create(the_ca, "line1", "CX100", path, &id), CT_OK);
}

static void teardown(void)
{
    ct_buf_free(&station_cert);
    ca_close(the_ca);
    the_ca = NULL;
}

static ct_err enroll(const ct_buf *client, const ct_buf *csr, ca_enroll_kind kind, const char *label,
                     ca_enroll_result *res)
{
    ca_enroll_request req = {.kind = kind, .client_cert = client ? client->data : NULL,
                             .client_cert_len = client ? client->len : 0, .label = label,
                             .csr = csr->data, .csr_len = csr->len};
    return ca_enroll(the_ca, &req, res);
}

static long count_rows(const char *table_where)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "sqlite3 -readonly '%s' \"select count(*) from %s\"", the_ca->cfg.db_path, table_where);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    long n = -1;
    ck_assert_int_eq(fscanf(p, "%ld", &n), 1);
    pclose(p);
    return n;
}

START_TEST(issues_idevid_for_a_serial_in_the_order)
{
    ct_buf csr = CT_BUF_INIT;
    ca_enroll_result res;
    openssl_csr("dev1", "/serialNumber=SN-1/CN=whatever", NULL, &csr);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, &res), CT_OK);
    ck_assert(!res.repeated);
    ck_assert_str_eq(res.actor, "line1");
    pki_cert_info info;
    ck_assert_int_eq(pki_cert_parse_info(res.cert_der.data, res.cert_der.len, &info), CT_OK);
    ck_assert_str_eq(info.subject_serial, "SN-1");
    ck_assert_str_eq(info.subject_cn, "CX100 SN-1");
    ck_assert(!info.is_ca);
    ck_assert_int_eq((long long)info.not_after, (long long)PKI_NOT_AFTER_FOREVER);
    const ca_signer *issuer = &the_ca->signers[CA_KEY_DEVICE_ISSUING];
    ck_assert_int_eq(pki_cert_verify_signed_by(res.cert_der.data, res.cert_der.len, issuer->cert_der.data,
                                               issuer->cert_der.len, time(NULL)),
                     CT_OK);
    ck_assert_int_eq(count_rows("certificates"), 1);
    ct_buf_free(&res.cert_der);
    ct_buf_free(&csr);
}
END_TEST

START_TEST(same_key_again_returns_the_same_certificate)
{
    ct_buf csr = CT_BUF_INIT, other = CT_BUF_INIT;
    ca_enroll_result a, b, c;
    openssl_csr("dev1", "/serialNumber=SN-1/CN=x", NULL, &csr);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, &a), CT_OK);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, &b), CT_OK);
    ck_assert(b.repeated);
    ck_assert_mem_eq(a.cert_der.data, b.cert_der.data, a.cert_der.len);
    openssl_csr("dev1b", "/serialNumber=SN-1/CN=x", NULL, &other);
    ck_assert_int_eq(enroll(&station_cert, &other, CA_ENROLL_NEW, NULL, &c), CT_ERR_ALREADY_ISSUED);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "SN-1"));
    ck_assert_int_eq(count_rows("certificates"), 1);
    ct_buf_free(&a.cert_der);
    ct_buf_free(&b.cert_der);
    ct_buf_free(&csr);
    ct_buf_free(&other);
}
END_TEST

START_TEST(refusals_leave_no_row_and_are_audited)
{
    ct_buf csr = CT_BUF_INIT, outside = CT_BUF_INIT, rsa = CT_BUF_INIT, noserial = CT_BUF_INIT, badname = CT_BUF_INIT;
    ca_enroll_result res;
    openssl_csr("dev2", "/serialNumber=SN-2/CN=x", NULL, &csr);
    openssl_csr("out", "/serialNumber=SN-99/CN=x", NULL, &outside);
    openssl_csr("rsa", "/serialNumber=SN-2/CN=x", "-newkey rsa:3072", &rsa);
    openssl_csr("nos", "/CN=SN-2", NULL, &noserial);
    openssl_csr("dots", "/serialNumber=SN.2/CN=x", NULL, &badname);
    long denied = count_rows("audit where outcome='denied'");
    ck_assert_int_eq(enroll(NULL, &csr, CA_ENROLL_NEW, NULL, &res), CT_ERR_UNAUTHENTICATED);
    ck_assert_int_eq(enroll(&station_cert, &outside, CA_ENROLL_NEW, NULL, &res), CT_ERR_NOT_IN_ORDER);
    ck_assert_int_eq(enroll(&station_cert, &rsa, CA_ENROLL_NEW, NULL, &res), CT_ERR_WEAK_KEY);
    ck_assert_int_eq(enroll(&station_cert, &noserial, CA_ENROLL_NEW, NULL, &res), CT_ERR_NO_SERIAL);
    ck_assert_int_eq(enroll(&station_cert, &badname, CA_ENROLL_NEW, NULL, &res), CT_ERR_BAD_CSR);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, "no-such-label", &res), CT_ERR_NOT_FOUND);
    /* A device certificate is not a station. */
    ck_assert_int_eq(enroll(&the_ca->signers[CA_KEY_DEVICE_ISSUING].cert_der, &csr, CA_ENROLL_NEW, NULL, &res),
                     CT_ERR_UNKNOWN_CLIENT);
    ck_assert_int_eq(ca_station_set_enabled(the_ca, "line1", false), CT_OK);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, &res), CT_ERR_DISABLED);
    ck_assert_int_eq(count_rows("certificates"), 0);
    ck_assert_int_eq(count_rows("audit where outcome='denied'") - denied, 8);
    db_audit_report report;
    ck_assert_int_eq(ca_audit_verify(the_ca, &report), CT_OK);
    ct_buf_free(&csr);
    ct_buf_free(&outside);
    ct_buf_free(&rsa);
    ct_buf_free(&noserial);
    ct_buf_free(&badname);
}
END_TEST

START_TEST(closed_order_issues_nothing)
{
    ct_buf csr = CT_BUF_INIT;
    ca_enroll_result res;
    openssl_csr("dev3", "/serialNumber=SN-3/CN=x", NULL, &csr);
    ck_assert_int_eq(ca_order_close(the_ca, 1), CT_OK);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, &res), CT_ERR_NOT_IN_ORDER);
    ct_buf_free(&csr);
}
END_TEST

START_TEST(renewal_supersedes_and_only_for_its_own_serial)
{
    ct_buf csr = CT_BUF_INIT, rekey = CT_BUF_INIT, steal = CT_BUF_INIT;
    ca_enroll_result first, second, res;
    openssl_csr("dev1", "/serialNumber=SN-1/CN=x", NULL, &csr);
    openssl_csr("dev1r", "/serialNumber=SN-1/CN=x", NULL, &rekey);
    openssl_csr("dev2", "/serialNumber=SN-2/CN=x", NULL, &steal);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, &first), CT_OK);
    ck_assert_int_eq(enroll(&first.cert_der, &rekey, CA_ENROLL_RENEW, NULL, &second), CT_OK);
    pki_cert_info info;
    ck_assert_int_eq(pki_cert_parse_info(second.cert_der.data, second.cert_der.len, &info), CT_OK);
    ck_assert_str_eq(info.subject_cn, "CX100 SN-1");
    ck_assert_int_eq(count_rows("certificates where status='superseded'"), 1);
    /* The old certificate no longer authenticates; the new one cannot renew someone else. */
    ck_assert_int_eq(enroll(&first.cert_der, &rekey, CA_ENROLL_RENEW, NULL, &res), CT_ERR_UNKNOWN_CLIENT);
    ck_assert_int_eq(enroll(&second.cert_der, &steal, CA_ENROLL_RENEW, NULL, &res), CT_ERR_FORBIDDEN);
    /* A station certificate cannot use the device route. */
    ck_assert_int_eq(enroll(&station_cert, &steal, CA_ENROLL_RENEW, NULL, &res), CT_ERR_UNKNOWN_CLIENT);
    ct_buf_free(&first.cert_der);
    ct_buf_free(&second.cert_der);
    ct_buf_free(&csr);
    ct_buf_free(&rekey);
    ct_buf_free(&steal);
}
END_TEST

START_TEST(est_layer_maps_errors_to_statuses)
{
    ca_http_answer ans;
    ca_http_request rq = {.method = "POST", .path = "simpleenroll", .content_type = "application/json"};
    ck_assert_int_eq(ca_est_handle(the_ca, &rq, &ans), CT_ERR_CONTENT_TYPE);
    ck_assert_int_eq(ans.status, 415);
    ca_http_answer_free(&ans);
    rq.content_type = "application/pkcs10";
    rq.body_too_large = true;
    ck_assert_int_eq(ca_est_handle(the_ca, &rq, &ans), CT_ERR_TOO_LARGE);
    ck_assert_int_eq(ans.status, 413);
    ca_http_answer_free(&ans);
    rq.body_too_large = false;
    rq.body = (const uint8_t *)"@@@@";
    rq.body_len = 4;
    rq.client_cert = station_cert.data;
    rq.client_cert_len = station_cert.len;
    ck_assert_int_eq(ca_est_handle(the_ca, &rq, &ans), CT_ERR_BAD_BASE64);
    ck_assert_int_eq(ans.status, 400);
    ck_assert_ptr_nonnull(memchr(ans.body.data, '\n', ans.body.len));
    ca_http_answer_free(&ans);
    rq.method = "GET";
    rq.path = "cacerts";
    ck_assert_int_eq(ca_est_handle(the_ca, &rq, &ans), CT_OK);
    ck_assert_int_eq(ans.status, 200);
    ca_http_answer_free(&ans);
    rq.path = "../cacerts";
    ck_assert_int_eq(ca_est_handle(the_ca, &rq, &ans), CT_ERR_NOT_FOUND);
    ca_http_answer_free(&ans);
}
END_TEST

START_TEST(config_refuses_unknown_settings)
{
    char path[600];
    ca_settings s;
    snprintf(path, sizeof path, "%s/ca", dir);
    ck_assert_int_eq(ca_init(path), CT_ERR_EXISTS);
    snprintf(path, sizeof path, "%s/ca/" CA_CONFIG_FILE, dir);
    ck_assert_int_eq(tu_sh("echo 'device.domian = typo.example' >> '%s'", path), 0);
    ck_assert_int_eq(ca_settings_load(the_ca->cfg.dir, &s), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "device.domian"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ca");
    TCase *tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, issues_idevid_for_a_serial_in_the_order);
    tcase_add_test(tc, same_key_again_returns_the_same_certificate);
    tcase_add_test(tc, refusals_leave_no_row_and_are_audited);
    tcase_add_test(tc, closed_order_issues_nothing);
    tcase_add_test(tc, renewal_supersedes_and_only_for_its_own_serial);
    tcase_add_test(tc, est_layer_maps_errors_to_statuses);
    tcase_add_test(tc, config_refuses_unknown_settings);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
