/* The enrollment policy, called directly (no HTTP), on a real CA: SoftHSM token, SQLite file. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    ck_assert_int_eq(tu_ca_create(path), 0);
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
    return tu_count_rows(the_ca->cfg.db_path, the_ca->cfg.db_url, table_where);
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
    ck_assert_int_eq(count_rows("certificates where profile='device'"), 1);
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
    ck_assert_int_eq(count_rows("certificates where profile='device'"), 1);
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
    ck_assert_int_eq(count_rows("certificates where profile='device'"), 0);
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

/* A running server counts refusals per actor: one address (or one officer's certificate) keys at most 8 kinds,
 * its further ones share an overflow row of its own, and another address still has its row. */
START_TEST(counted_refusals_are_bounded_per_client)
{
    ck_assert_int_eq(ca_refusals_start(the_ca), CT_OK);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(ca_refuse_anonymous(the_ca, "10.0.0.1", "est.enroll", "", ct_fail(CT_ERR_BAD_REQUEST, "kind %d", i)),
                         CT_ERR_BAD_REQUEST);
        ck_assert_int_eq(ca_refuse_counted(the_ca, "officer:bob", "officer.csrf", "/officer/api/search",
                                           ct_fail(CT_ERR_FORBIDDEN, "origin %d", i)),
                         CT_ERR_FORBIDDEN);
    }
    ck_assert_str_eq(ct_err_detail(), "origin 19"); /* the reason goes back to the client */
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(ca_refuse_anonymous(the_ca, "10.0.0.2", "est.enroll", "", ct_fail(CT_ERR_UNAUTHENTICATED, "none")),
                         CT_ERR_UNAUTHENTICATED);
    /* One client whatever address it takes: an IPv4 one mapped into IPv6, any of an IPv6 /64. */
    (void)ca_refuse_anonymous(the_ca, "::ffff:10.0.0.2", "est.enroll", "", ct_fail(CT_ERR_UNAUTHENTICATED, "none"));
    const char *const v6[] = {"2001:db8:1:2::1", "2001:db8:1:2:ffff:eeee:dddd:cccc", "2001:db8:1:2::1"};
    for (size_t i = 0; i < 3; i++)
        (void)ca_refuse_anonymous(the_ca, v6[i], "est.enroll", "", ct_fail(CT_ERR_UNAUTHENTICATED, "none"));
    ca_refusals_stop(the_ca); /* writes the counts */
    ck_assert_int_eq(count_rows("audit where actor = 'anonymous:2001:db8:1:2::/64' and detail like '3 refused from %: none'"), 1);
    ck_assert_int_eq(count_rows("audit where actor like 'anonymous:2001:%' and actor != 'anonymous:2001:db8:1:2::/64'"), 0);
    ck_assert_int_eq(count_rows("audit where actor = 'anonymous:10.0.0.1' and action = 'est.enroll'"), 8);
    ck_assert_int_eq(count_rows("audit where actor = 'anonymous:10.0.0.1' and action = 'audit.overflow' and detail like '12 refused from %'"), 1);
    ck_assert_int_eq(count_rows("audit where actor = 'officer:bob' and action = 'officer.csrf' and detail like '1 refused from %: origin %'"), 8);
    ck_assert_int_eq(count_rows("audit where actor = 'officer:bob' and action = 'audit.overflow' and detail like '12 refused from %'"), 1);
    ck_assert_int_eq(count_rows("audit where actor = 'anonymous:10.0.0.2' and detail like '3 refused from %: none'"), 1);
    ck_assert_int_eq(count_rows("audit where actor = 'anonymous:*'"), 0);
    db_audit_report report;
    ck_assert_int_eq(ca_audit_verify(the_ca, &report), CT_OK);
}
END_TEST

/* Per-address limits key a client by what it cannot vary at will: an IPv4 address whole (IPv4-mapped into IPv6
 * too: a dual-stack socket's view of it), an IPv6 address by its /64, from text (refusals, OCSP) or a socket address
 * (connections) alike. */
START_TEST(client_addresses_key_ipv6_by_its_64)
{
    ca_addr_key a, b;
    char text[CA_ADDR_KEY_TEXT_MAX];
    ca_addr_key_of_text("2001:db8:1:2::1", &a);
    ca_addr_key_of_text("2001:db8:1:2:ffff:eeee:dddd:cccc", &b);
    ck_assert(ca_addr_key_equal(&a, &b));
    ca_addr_key_text(&a, text);
    ck_assert_str_eq(text, "2001:db8:1:2::/64");
    ca_addr_key_of_text("2001:db8:1:3::1", &b);
    ck_assert(!ca_addr_key_equal(&a, &b));
    ca_addr_key_of_text("::1", &b);
    ca_addr_key_text(&b, text);
    ck_assert_str_eq(text, "::/64");

    ca_addr_key_of_text("::ffff:192.0.2.7", &a);
    ca_addr_key_of_text("192.0.2.7", &b);
    ck_assert(ca_addr_key_equal(&a, &b));
    ca_addr_key_text(&a, text);
    ck_assert_str_eq(text, "192.0.2.7");
    ca_addr_key_of_text("192.0.2.8", &b);
    ck_assert(!ca_addr_key_equal(&a, &b));

    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6.sin6_addr), 1);
    ca_addr_key_of((const struct sockaddr *)&s6, &b);
    ck_assert(ca_addr_key_equal(&a, &b));
    ck_assert_int_eq(inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr), 1);
    ca_addr_key_of((const struct sockaddr *)&s4, &b);
    ck_assert(ca_addr_key_equal(&a, &b));
    ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8:1:2:5::9", &s6.sin6_addr), 1);
    ca_addr_key_of((const struct sockaddr *)&s6, &b);
    ca_addr_key_text(&b, text);
    ck_assert_str_eq(text, "2001:db8:1:2::/64");

    ca_addr_key_of_text(NULL, &a); /* in-process: one key of its own, no client's */
    ca_addr_key_of_text("", &b);
    ck_assert(ca_addr_key_equal(&a, &b));
    ca_addr_key_of(NULL, &b);
    ck_assert(ca_addr_key_equal(&a, &b));
    ca_addr_key_text(&a, text);
    ck_assert_str_eq(text, "local");
    ca_addr_key_of_text("::", &b);
    ck_assert(!ca_addr_key_equal(&a, &b));
}
END_TEST

/* FNV-1a: the public hash the per-address tables and the OCSP cache used, which an attacker computes. */
static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3u;
    return h;
}

/* The per-address tables' hash is keyed (ca_addr_key_hash). The attacker computes the public hash it replaced
 * (FNV-1a) and picks, of the 65,536 /64s of its /48, 64 whose keys share one home slot in a table of 512 (the
 * server's by default: twice server.max_connections, a power of two): under a table's secret they spread as any
 * addresses do, and another table's secret places them elsewhere. */
START_TEST(address_hash_is_keyed_against_chosen_addresses)
{
    enum { SLOTS = 512, PICKED = 64 };
    ca_addr_key picked[PICKED];
    size_t n = 0;
    uint64_t target = 0;
    for (unsigned i = 0; i < 65536 && n < PICKED; i++) {
        char text[40];
        snprintf(text, sizeof text, "2001:db8:7:%x::1", i);
        ca_addr_key_of_text(text, &picked[n]);
        uint64_t home = fnv1a(picked[n].b, sizeof picked[n].b) & (SLOTS - 1);
        if (!n) target = home;
        if (home == target) n++;
    }
    ck_assert_uint_eq(n, PICKED);
    uint8_t secret[CA_HASH_SECRET_SIZE], other[CA_HASH_SECRET_SIZE];
    ck_assert_int_eq(ct_random(secret, sizeof secret), CT_OK);
    ck_assert_int_eq(ct_random(other, sizeof other), CT_OK);
    unsigned per_home[SLOTS] = {0}, most = 0, elsewhere = 0;
    for (size_t i = 0; i < PICKED; i++) {
        uint64_t home = ca_addr_key_hash(secret, &picked[i]) & (SLOTS - 1);
        if (++per_home[home] > most) most = per_home[home];
        elsewhere += (ca_addr_key_hash(other, &picked[i]) & (SLOTS - 1)) != home;
    }
    /* (64 addresses at random in 512 slots: 9 or more in one, about once in 10^11) */
    ck_assert_uint_le(most, 8);
    ck_assert_uint_ge(elsewhere, PICKED / 2);
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


/* ---- revocation: ca_revoke, CRLs and the OCSP handler, checked with openssl ---- */

/* Enrolls SERIAL through the station; writes DIR/SERIAL.pem; returns the certificate serial (hex). */
static void issue_pem(const char *serial, char hex[DB_CERT_SERIAL_HEX_MAX])
{
    char subject[96], path[600];
    ct_buf csr = CT_BUF_INIT;
    ca_enroll_result res;
    snprintf(subject, sizeof subject, "/serialNumber=%s/CN=x", serial);
    openssl_csr(serial, subject, NULL, &csr);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, &res), CT_OK);
    pki_cert_info info;
    ck_assert_int_eq(pki_cert_parse_info(res.cert_der.data, res.cert_der.len, &info), CT_OK);
    snprintf(hex, DB_CERT_SERIAL_HEX_MAX, "%s", info.serial_hex);
    snprintf(path, sizeof path, "%s/%s.der", dir, serial);
    ck_assert_int_eq(ct_file_write_atomic(path, res.cert_der.data, res.cert_der.len, 0600), CT_OK);
    ck_assert_int_eq(tu_sh("openssl x509 -inform DER -in '%s' -out '%s/%s.pem'", path, dir, serial), 0);
    ct_buf_free(&res.cert_der);
    ct_buf_free(&csr);
}

static ct_err revoke_by_tester(db_revoke_scope scope, const char *target, const char *reason)
{
    ca_revoke_request req = {.scope = scope, .target = target, .reason = reason, .actor = "tester"};
    return ca_revoke(the_ca, &req, NULL);
}

/* What openssl makes of an OCSP answer for DIR/SERIAL.pem, e.g. "good" or "revoked" (and the reason). */
static bool openssl_ocsp_says(const ca_http_answer *ans, const char *serial, const char *want)
{
    char path[600];
    snprintf(path, sizeof path, "%s/resp.der", dir);
    ck_assert_int_eq(ct_file_write_atomic(path, ans->body.data, ans->body.len, 0600), CT_OK);
    /* -no_nonce: with -respin openssl would compare with a nonce of its own (see nonce_echoed). */
    return tu_sh("openssl ocsp -respin '%s' -issuer '%s/device-issuing.pem' -cert '%s/%s.pem' -CAfile '%s/root.pem' "
                 "-no_nonce 2>&1 | tr '\\n' ' ' | grep -q 'Response verify OK.*%s'",
                 path, the_ca->cfg.dir, dir, serial, the_ca->cfg.dir, want) == 0;
}

/* An OCSP request made by openssl for DIR/SERIAL.pem (no nonce unless asked). */
static void openssl_ocsp_request(const char *serial, bool nonce, ct_buf *der)
{
    char path[600];
    snprintf(path, sizeof path, "%s/req.der", dir);
    ck_assert_int_eq(tu_sh("openssl ocsp -issuer '%s/device-issuing.pem' -cert '%s/%s.pem' %s -reqout '%s' >/dev/null",
                           the_ca->cfg.dir, dir, serial, nonce ? "-nonce" : "-no_nonce", path),
                     0);
    ck_assert_int_eq(ct_file_read(path, 8192, der), CT_OK);
}

/* Whether the last answer (DIR/resp.der) carries the nonce of DIR/req.der. */
static bool nonce_echoed(void)
{
    return tu_sh("n=$(openssl ocsp -reqin '%s/req.der' -req_text | grep -A1 'OCSP Nonce' | tail -1); [ -n \"$n\" ] && "
                 "openssl ocsp -respin '%s/resp.der' -resp_text -noverify | grep -A1 'OCSP Nonce' | tail -1 | "
                 "grep -qF \"$n\"",
                 dir, dir) == 0;
}

static ct_err ocsp_post(const ct_buf *der, ca_http_answer *ans)
{
    ca_http_request rq = {.method = "POST", .path = "/ocsp", .content_type = "application/ocsp-request",
                          .body = der->data, .body_len = der->len};
    return ca_ocsp_handle(the_ca, &rq, ans);
}

START_TEST(revoke_one_an_order_and_refusals)
{
    char a[DB_CERT_SERIAL_HEX_MAX], b[DB_CERT_SERIAL_HEX_MAX], upper[DB_CERT_SERIAL_HEX_MAX + 20];
    issue_pem("SN-1", a);
    issue_pem("SN-2", b);
    long denied = count_rows("audit where outcome='denied'");
    /* As openssl prints it: upper case, with colons. */
    snprintf(upper, sizeof upper, "%c%c:%s", a[0] - 32 * (a[0] >= 'a'), a[1] - 32 * (a[1] >= 'a'), a + 2);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, upper, "keyCompromise"), CT_OK);
    ck_assert_int_eq(count_rows("certificates where status='revoked' and revocation_reason=1 and revoked_at > 0"), 1);
    ck_assert_int_eq(count_rows("audit where action='cert.revoke' and outcome='ok' and actor='tester'"), 1);
    /* Refusals: each audited, nothing changed. */
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, a, "keyCompromise"), CT_ERR_ALREADY_REVOKED);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, "0badc0de", "keyCompromise"), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, "xyz", "keyCompromise"), CT_ERR_USAGE);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, b, "certificateHold"), CT_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "cessationOfOperation"));
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_ORDER, "99", "superseded"), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_STATION, "nope", "superseded"), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(count_rows("audit where outcome='denied'") - denied, 6);
    ck_assert_int_eq(count_rows("certificates where status='revoked'"), 1);
    /* The order: what is left of it, in one audited action that counts it. */
    db_revoke_count n = {0};
    ca_revoke_request req = {.scope = DB_REVOKE_ORDER, .target = "1", .reason = "cessationOfOperation", .actor = "cli"};
    ck_assert_int_eq(ca_revoke(the_ca, &req, &n), CT_OK);
    ck_assert_int_eq(n.revoked, 1);
    ck_assert_int_eq(count_rows("audit where action='order.revoke' and detail like 'v=2 certificates=1 %'"), 1);
    /* Nothing left to revoke, but the station is disabled with it; then nothing is left to do. */
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_STATION, "line1", "superseded"), CT_OK);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_STATION, "line1", "superseded"), CT_ERR_ALREADY_REVOKED);
    ck_assert_int_eq(count_rows("certificates where status='revoked'"), 2);
    db_audit_report report;
    ck_assert_int_eq(ca_audit_verify(the_ca, &report), CT_OK);
}
END_TEST

START_TEST(crl_lists_exactly_the_revoked_serials)
{
    char a[DB_CERT_SERIAL_HEX_MAX], b[DB_CERT_SERIAL_HEX_MAX], c3[DB_CERT_SERIAL_HEX_MAX], path[600];
    issue_pem("SN-1", a);
    issue_pem("SN-2", b);
    issue_pem("SN-3", c3);
    snprintf(path, sizeof path, "%s/empty.crl", dir);
    ck_assert_int_eq(ca_crl_write(the_ca, CA_CRL_DEVICE, 0, path), CT_OK);
    ck_assert_int_eq(tu_sh("openssl crl -inform DER -in '%s' -CAfile '%s/chain.pem' -verify -noout -text 2>&1 | "
                           "grep -q 'No Revoked Certificates'", path, the_ca->cfg.dir), 0);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, a, "unspecified"), CT_OK);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, c3, "affiliationChanged"), CT_OK);
    snprintf(path, sizeof path, "%s/two.crl", dir);
    ck_assert_int_eq(ca_crl_write(the_ca, CA_CRL_DEVICE, 0, path), CT_OK);
    ck_assert_int_eq(tu_sh("openssl crl -inform DER -in '%s' -CAfile '%s/chain.pem' -verify -noout 2>&1 | grep -q 'verify OK'",
                           path, the_ca->cfg.dir), 0);
    ck_assert_int_eq(tu_sh("test \"$(openssl crl -inform DER -in '%s' -noout -text | sed -n 's/ *Serial Number: //p' | "
                           "tr A-F a-f | sort | paste -sd,)\" = \"$(printf '%%s\\n%%s\\n' %s %s | sort | paste -sd,)\"",
                           path, a, c3),
                     0);
    ck_assert_int_eq(tu_sh("openssl crl -inform DER -in '%s' -noout -text | grep -A1 'CRL Number' | grep -q '^ *2$'", path), 0);
    ck_assert_int_eq(tu_sh("openssl crl -inform DER -in '%s' -noout -text | grep -q 'Affiliation Changed'", path), 0);
    ck_assert_int_eq(count_rows("audit where action='crl.issue'"), 2);
}
END_TEST

/* A device CRL signed in the token with the given times and entries, stored as the signer stores it (under the
 * lease, audited): what the state check then judges. */
static void store_crl(time_t this_update, time_t next_update, const pki_revoked *list, size_t n)
{
    const ca_generation *g = &the_ca->gens[the_ca->current[CA_CRL_DEVICE]];
    int64_t number = 0;
    ct_buf der = CT_BUF_INIT;
    ck_assert_int_eq(db_crl_number_next(the_ca->db, DB_CRL_DEVICE, "tester", n, &number), CT_OK);
    pki_crl_params p = {.issuer_cert = g->s.cert_der.data, .issuer_len = g->s.cert_der.len, .issuer_key = g->s.key,
                        .number = (uint64_t)number, .this_update = this_update, .next_update = next_update};
    ck_assert_int_eq(pki_crl_make(&p, list, n, &der), CT_OK);
    static int64_t stamp; /* the tester's take, renewed by the next call */
    db_lease_request lease = {
        .name = DB_LEASE_SIGNER, .holder = "tester", .now_ms = ct_wall_ms(), .ttl_ms = 60000, .stamp = stamp};
    db_lease_state st;
    ck_assert_int_eq(db_lease_take(the_ca->db, &lease, &st), CT_OK);
    lease.stamp = stamp = st.stamp;
    db_signed_crl kept = {.issuing_ca = g->id, .next_update = next_update, .number = number,
                          .this_update = this_update, .der = der};
    ck_assert_int_eq(db_crl_signed_put(the_ca->db, &lease, &kept), CT_OK);
    ct_buf_free(&der);
}

/* The stored CRL as the state check (audit verify, the server's start) judges it: lagging a revocation made after it
 * was signed, it passes; past its nextUpdate, a warning; lacking a revocation made before it was signed, it fails
 * naming the certificate. */
START_TEST(stored_crl_judged_by_the_state_check)
{
    char a[DB_CERT_SERIAL_HEX_MAX], b[DB_CERT_SERIAL_HEX_MAX];
    db_state_report rep;
    issue_pem("SN-1", a);
    issue_pem("SN-2", b);
    time_t now = time(NULL);
    store_crl(now - 60, now + 3600, NULL, 0);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, a, "keyCompromise"), CT_OK);
    ck_assert_msg(ca_state_verify(the_ca, &rep) == CT_OK, "%s", rep.reason);
    ck_assert_str_eq(rep.warning, "");
    pki_revoked listed = {a, now, 1}; /* keyCompromise */
    store_crl(now - 7200, now - 3600, &listed, 1);
    ck_assert_msg(ca_state_verify(the_ca, &rep) == CT_OK, "%s", rep.reason);
    ck_assert_msg(strstr(rep.warning, "the stored device CRL of generation 1 (number 2) is past its nextUpdate (") &&
                      strstr(rep.warning, "stale, not tampered with"), "%s", rep.warning);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, b, "keyCompromise"), CT_OK);
    store_crl(now + 120, now + 3600, &listed, 1);
    ck_assert_int_eq(ca_state_verify(the_ca, &rep), CT_ERR_INTEGRITY);
    char want[160];
    snprintf(want, sizeof want, "the stored device CRL of generation 1 (number 3) does not list certificate %s, revoked at ",
             b);
    ck_assert_msg(strstr(rep.reason, want) && strstr(rep.reason, ", before it was signed"), "%s", rep.reason);
}
END_TEST

START_TEST(ocsp_answers_and_refreshes_on_revocation)
{
    char a[DB_CERT_SERIAL_HEX_MAX], b[DB_CERT_SERIAL_HEX_MAX];
    ct_buf req = CT_BUF_INIT, nonce_req = CT_BUF_INIT, other = CT_BUF_INIT;
    ca_http_answer ans;
    issue_pem("SN-1", a);
    issue_pem("SN-2", b);
    ck_assert_int_eq(ca_revocation_start(the_ca), CT_OK);
    openssl_ocsp_request("SN-1", false, &req);
    openssl_ocsp_request("SN-1", true, &nonce_req);
    ck_assert_int_eq(ocsp_post(&req, &ans), CT_OK);
    ck_assert_int_eq(ans.status, 200);
    ck_assert(openssl_ocsp_says(&ans, "SN-1", "SN-1.pem: good"));
    ca_http_answer_free(&ans);
    /* The second time the kept (pre-signed) answer is sent. */
    ck_assert_int_eq(ocsp_post(&req, &ans), CT_OK);
    ck_assert_ptr_nonnull(strstr(ans.reason, "pre-signed"));
    ca_http_answer_free(&ans);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, a, "keyCompromise"), CT_OK);
    ck_assert_int_eq(ocsp_post(&req, &ans), CT_OK);
    ck_assert_ptr_null(strstr(ans.reason, "pre-signed"));
    ck_assert(openssl_ocsp_says(&ans, "SN-1", "SN-1.pem: revoked.*Reason: keyCompromise"));
    ca_http_answer_free(&ans);
    /* With a nonce (openssl checks that it is echoed), signed for this request. */
    ck_assert_int_eq(ocsp_post(&nonce_req, &ans), CT_OK);
    ck_assert(openssl_ocsp_says(&ans, "SN-1", "SN-1.pem: revoked"));
    ck_assert(nonce_echoed());
    ck_assert_ptr_nonnull(strstr(ans.reason, "nonce"));
    ca_http_answer_free(&ans);
    /* GET /ocsp/<base64>. */
    ct_buf b64 = CT_BUF_INIT;
    char path[8192];
    ck_assert_int_eq(ct_buf_alloc(&b64, 4096), CT_OK);
    ck_assert_int_eq(ct_base64_encode(req.data, req.len, false, &b64), CT_OK);
    snprintf(path, sizeof path, "/ocsp/%.*s", (int)b64.len, (const char *)b64.data);
    ca_http_request get = {.method = "GET", .path = path};
    ck_assert_int_eq(ca_ocsp_handle(the_ca, &get, &ans), CT_OK);
    ck_assert(openssl_ocsp_says(&ans, "SN-1", "revoked"));
    ca_http_answer_free(&ans);
    ct_buf_free(&b64);
    /* A serial never issued here: unknown. The station's certificate: the operations issuing CA answers for it. A
     * certificate of an issuer that is no issuing CA generation (the root): unauthorized. */
    req.data[req.len - 1] ^= 1; /* the serial is the request's last field */
    ck_assert_int_eq(ocsp_post(&req, &ans), CT_OK);
    ck_assert_ptr_nonnull(strstr(ans.reason, "unknown"));
    ca_http_answer_free(&ans);
    ck_assert_int_eq(tu_sh("openssl ocsp -issuer '%s/ops-issuing.pem' -cert '%s/st.pem' -no_nonce -reqout '%s/other.der'",
                           the_ca->cfg.dir, dir, dir), 0);
    snprintf(path, sizeof path, "%s/other.der", dir);
    ck_assert_int_eq(ct_file_read(path, 8192, &other), CT_OK);
    ck_assert_int_eq(ocsp_post(&other, &ans), CT_OK);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_int_gt(ans.body.len, 5); /* a signed answer, not an error status */
    ca_http_answer_free(&ans);
    ct_buf_free(&other);
    ck_assert_int_eq(tu_sh("openssl ocsp -issuer '%s/root.pem' -cert '%s/st.pem' -no_nonce -reqout '%s/other.der'",
                           the_ca->cfg.dir, dir, dir), 0);
    ck_assert_int_eq(ct_file_read(path, 8192, &other), CT_OK);
    ck_assert_int_eq(ocsp_post(&other, &ans), CT_OK);
    static const uint8_t unauthorized[] = {0x30, 0x03, 0x0a, 0x01, 0x06};
    ck_assert_int_eq(ans.body.len, sizeof unauthorized);
    ck_assert_mem_eq(ans.body.data, unauthorized, sizeof unauthorized);
    ca_http_answer_free(&ans);
    ca_revocation_stop(the_ca);
    ct_buf_free(&req);
    ct_buf_free(&nonce_req);
    ct_buf_free(&other);
}
END_TEST

START_TEST(ocsp_bad_input_is_refused_and_audited)
{
    static const uint8_t malformed[] = {0x30, 0x03, 0x0a, 0x01, 0x01};
    ca_http_answer ans;
    ct_buf junk = CT_BUF_INIT;
    ck_assert_int_eq(ca_revocation_start(the_ca), CT_OK);
    long denied = count_rows("audit where outcome='denied' and action='ocsp.request'");
    ck_assert_int_eq(ct_buf_alloc(&junk, PKI_OCSP_MAX_REQUEST + 1), CT_OK);
    ck_assert_int_eq(ct_buf_append(&junk, "\x30\x03\x02\x01\x00", 5), CT_OK);
    ck_assert_int_eq(ocsp_post(&junk, &ans), CT_OK);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_int_eq(ans.body.len, sizeof malformed);
    ck_assert_mem_eq(ans.body.data, malformed, sizeof malformed);
    ck_assert_ptr_nonnull(strstr(ans.reason, "malformedRequest"));
    ca_http_answer_free(&ans);
    junk.len = PKI_OCSP_MAX_REQUEST + 1;
    ck_assert_int_eq(ocsp_post(&junk, &ans), CT_ERR_TOO_LARGE);
    ck_assert_int_eq(ans.status, 413);
    ca_http_answer_free(&ans);
    ca_http_request rq = {.method = "POST", .path = "/ocsp", .content_type = "text/plain", .body = junk.data, .body_len = 5};
    ck_assert_int_eq(ca_ocsp_handle(the_ca, &rq, &ans), CT_ERR_CONTENT_TYPE);
    ck_assert_int_eq(ans.status, 415);
    ca_http_answer_free(&ans);
    rq.path = "/ocsp/!!not-base64";
    rq.method = "GET";
    ck_assert_int_eq(ca_ocsp_handle(the_ca, &rq, &ans), CT_OK);
    ck_assert_mem_eq(ans.body.data, malformed, sizeof malformed);
    ca_http_answer_free(&ans);
    rq.method = "PUT";
    ck_assert_int_eq(ca_ocsp_handle(the_ca, &rq, &ans), CT_ERR_METHOD);
    ca_http_answer_free(&ans);
    ck_assert_int_eq(count_rows("audit where outcome='denied' and action='ocsp.request'") - denied, 4);
    ck_assert_int_eq(count_rows("certificates where profile='device'"), 0);
    ca_revocation_stop(the_ca);
    ct_buf_free(&junk);
}
END_TEST

/* Makes the CA an older one, without the certificate file of an optional key, and opens it again. */
static void reopen_without(ca_key_role role)
{
    char path[CA_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", the_ca->cfg.dir, ca_key_cert_file[role]);
    ck_assert_int_eq(unlink(path), 0);
    snprintf(path, sizeof path, "%s", the_ca->cfg.dir);
    ca_close(the_ca);
    ck_assert_int_eq(ca_open(path, &the_ca), CT_OK);
    ck_assert_ptr_null(the_ca->signers[role].key);
}

/* A CA folder made before revocation support has no OCSP signer: it opens, and its issuing CA answers. */
START_TEST(ocsp_without_a_delegated_signer)
{
    char a[DB_CERT_SERIAL_HEX_MAX];
    ct_buf req = CT_BUF_INIT;
    ca_http_answer ans;
    issue_pem("SN-1", a);
    reopen_without(CA_KEY_OCSP);
    ck_assert_int_eq(ca_revocation_start(the_ca), CT_OK);
    openssl_ocsp_request("SN-1", false, &req);
    ck_assert_int_eq(ocsp_post(&req, &ans), CT_OK);
    ck_assert(openssl_ocsp_says(&ans, "SN-1", "SN-1.pem: good"));
    ca_http_answer_free(&ans);
    ca_revocation_stop(the_ca);
    ct_buf_free(&req);
}
END_TEST

/* ---- the issuance log: tree heads signed in the token, a device's proof, an older CA folder ---- */
START_TEST(log_tree_heads_and_a_device_proof)
{
    char a[DB_CERT_SERIAL_HEX_MAX], b[DB_CERT_SERIAL_HEX_MAX], proof[600], log_pem[CA_PATH_MAX + 16];
    issue_pem("SN-1", a);
    issue_pem("SN-2", b);
    db_tree_head h;
    ck_assert_int_eq(ca_log_sth(the_ca, "tester", &h), CT_OK);
    ck_assert_int_eq(h.head.tree_size, 2);
    const ca_signer *log = &the_ca->signers[CA_KEY_LOG];
    ck_assert_int_eq(pki_tree_head_verify(log->cert_der.data, log->cert_der.len, &h.head), CT_OK);
    h.head.timestamp_ms++;
    ck_assert_int_eq(pki_tree_head_verify(log->cert_der.data, log->cert_der.len, &h.head), CT_ERR_INTEGRITY);
    /* The log key is certified by the operations issuing CA, not a device CA. */
    const ca_signer *ops = &the_ca->signers[CA_KEY_OPS_ISSUING];
    ck_assert_int_eq(pki_cert_verify_signed_by(log->cert_der.data, log->cert_der.len, ops->cert_der.data,
                                               ops->cert_der.len, time(NULL)), CT_OK);
    snprintf(proof, sizeof proof, "%s/sn2.proof", dir);
    snprintf(log_pem, sizeof log_pem, "%s/log.pem", the_ca->cfg.dir);
    ck_assert_int_eq(ca_log_proof_write(the_ca, b, proof), CT_OK);
    ca_log_proof_info info;
    ck_assert_int_eq(ca_log_proof_check(proof, log_pem, &info), CT_OK);
    ck_assert_int_eq(info.leaf_index, 1);
    ck_assert_int_eq(info.tree_size, 2);
    ck_assert_str_eq(info.cert_serial, b);
    ck_assert_str_eq(info.subject_serial, "SN-2");
    db_log_report rep;
    ck_assert_int_eq(ca_log_verify(the_ca, &rep), CT_OK);
    ck_assert_int_eq(rep.leaves, 2);
    ck_assert_int_eq(rep.tree_heads, 2); /* init's empty one and tester's, which covers the proof's leaf */
    ck_assert_int_eq(count_rows("audit where action='log.sth' and actor='tester'"), 1);
}
END_TEST

/* A CA folder made before the log: it opens, keeps logging, and says why it cannot sign a tree head. */
START_TEST(log_without_a_log_signer)
{
    char a[DB_CERT_SERIAL_HEX_MAX];
    reopen_without(CA_KEY_LOG);
    issue_pem("SN-1", a);
    ck_assert_int_eq(count_rows("log_leaves"), 1);
    ck_assert_int_eq(ca_log_sth(the_ca, "tester", NULL), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "has no log.pem (made before the issuance log)"));
    ck_assert_int_eq(ca_log_start(the_ca), CT_OK); /* serving goes on without tree heads, with checkpoints */
    ck_assert_ptr_nonnull(the_ca->log);
    ca_log_stop(the_ca);
    ck_assert_int_eq(count_rows("log_checkpoints where tree_size = 1"), 1);
    db_log_report rep;
    ck_assert_int_eq(ca_log_verify(the_ca, &rep), CT_ERR_INTEGRITY); /* init's tree head can no longer be checked */
    ck_assert_str_eq(rep.reason, "tree head 1: no log certificate to check its signature");
}
END_TEST

/* The audit tree's kept chunk roots (ca_log.c) against someone who writes the database under a running CA: entries
 * inside the first kept chunk deleted and appended again with other content, the later ones (the entry the kept
 * checkpoint names among them) left as they were. The CA must not sign over it from the roots it kept of the rows that
 * were: it finds the chain no longer what checkpoint.note bound and refuses, one line. (Before, the warm cache still
 * held the honest root: the check passed and a checkpoint mixing it with the rewritten rows was signed.) */
START_TEST(audit_rows_rewritten_under_a_warm_cache)
{
    if (the_ca->cfg.db_url[0]) return; /* the attacker below writes the SQLite file */
    enum { PAD = 1100 };               /* the chain past one kept chunk (1024 entries) */
    static db_audit_entry pad[PAD];
    for (size_t i = 0; i < PAD; i++) pad[i] = (db_audit_entry){"tester", "test.entry", "x", "ok", ""};
    ck_assert_int_eq(db_audit_append_all(ca_db(the_ca), pad, PAD), CT_OK);
    ck_assert_int_eq(ca_log_sth(the_ca, "tester", NULL), CT_OK); /* kept in checkpoint.note; the cache now warm */
    long signed_before = count_rows("log_checkpoints");
    ck_assert_int_eq(tu_sh("sqlite3 '%s' \"DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq BETWEEN 1001 AND "
                           "1024; WITH RECURSIVE n(i) AS (SELECT 1001 UNION ALL SELECT i + 1 FROM n WHERE i < 1024) "
                           "INSERT INTO audit (seq, ts, actor, action, subject, outcome, detail, prev_hash, hash) "
                           "SELECT i, 0, 'cli', 'cert.unrevoke', 'x', 'ok', 'forged', zeroblob(32), randomblob(32) "
                           "FROM n\"", the_ca->cfg.db_path), 0);
    ck_assert_int_eq(ca_log_sth(the_ca, "tester", NULL), CT_ERR_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "entries have another root (an entry removed, replaced or edited"));
    ck_assert_int_eq(count_rows("log_checkpoints"), signed_before);
}
END_TEST

/* ---- issue 10: revocation is final, one serial one name, every certificate revocable ---- */

/* Enrolls SERIAL (as the CSR's subject serial) through the station with a fresh key named KEY. */
static ct_err enroll_new(const char *key, const char *serial, ca_enroll_result *res)
{
    char subject[96];
    ct_buf csr = CT_BUF_INIT;
    snprintf(subject, sizeof subject, "/serialNumber=%s/CN=x", serial);
    openssl_csr(key, subject, NULL, &csr);
    ct_err rc = enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, res);
    ct_buf_free(&csr);
    return rc;
}

static void write_text(const char *name, const char *text, char *path, size_t max)
{
    snprintf(path, max, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(revoked_serial_is_never_issued_again)
{
    char a[DB_CERT_SERIAL_HEX_MAX];
    ca_enroll_result res = {0};
    ct_buf first = CT_BUF_INIT, csr = CT_BUF_INIT;
    issue_pem("SN-1", a);
    char path[600];
    snprintf(path, sizeof path, "%s/SN-1.der", dir);
    ck_assert_int_eq(ct_file_read(path, 8192, &first), CT_OK);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, a, "keyCompromise"), CT_OK);
    long denied = count_rows("audit where outcome='denied' and action='est.enroll'");
    /* A new key for the revoked serial, and the old key again: both refused, audited, nothing recorded. */
    ck_assert_int_eq(enroll_new("sn1-new", "SN-1", &res), CT_ERR_ALREADY_REVOKED);
    ck_assert_int_eq(ct_err_http_status(CT_ERR_ALREADY_REVOKED), 409);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "revocation is final"));
    snprintf(path, sizeof path, "%s/SN-1.csr", dir);
    read_file_der(path, true, &csr);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, &res), CT_ERR_ALREADY_REVOKED);
    /* Nor under the other label: the serial is revoked, whatever it would be certified for. */
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, CA_PROFILE_MEDIA_SIGNING, &res), CT_ERR_ALREADY_REVOKED);
    ck_assert_int_eq(count_rows("certificates where device_serial='SN-1'"), 1);
    ck_assert_int_eq(count_rows("certificates where profile='device'"), 1);
    ck_assert_int_eq(count_rows("log_leaves"), 1);
    ck_assert_int_eq(count_rows("audit where outcome='denied' and action='est.enroll' and actor='line1' and "
                                "subject='SN-1' and detail like '%revocation is final%'") - denied, 3);
    /* The revoked device cannot renew either: its certificate no longer authenticates it. */
    ck_assert_int_eq(enroll(&first, &csr, CA_ENROLL_RENEW, NULL, &res), CT_ERR_UNKNOWN_CLIENT);
    /* Other serials of the order still enroll. */
    ck_assert_int_eq(enroll_new("sn2", "SN-2", &res), CT_OK);
    ct_buf_free(&res.cert_der);
    ct_buf_free(&first);
    ct_buf_free(&csr);
    db_audit_report report;
    ck_assert_int_eq(ca_audit_verify(the_ca, &report), CT_OK);
}
END_TEST

/* A camera whose media-signing certificate was revoked cannot get a new one by renewing with its (valid) identity
 * certificate: revocation is final for that profile too. */
/* An order made before order create refused a model and serial whose CN ("<model> <serial>") exceeds 63 characters
 * (db_order_create takes it, as the older CA did): its enrollment is refused in one line (403), audited, nothing
 * signed or recorded; it was a 500 ("formatted string too long") for every request. */
START_TEST(an_order_whose_cn_cannot_be_built_is_refused)
{
    const char *serials[] = {"SN-LONG-0123456789012345678901234"};
    char model[41];
    memset(model, 'M', 40);
    model[40] = '\0';
    int64_t id = 0;
    ck_assert_int_eq(db_order_create(the_ca->db, "line1", model, serials, 1, "tester", &id), CT_OK);
    long denied = count_rows("audit where outcome='denied' and action='est.enroll'");
    ca_enroll_result res = {0};
    ck_assert_int_eq(enroll_new("long-cn", serials[0], &res), CT_ERR_FORBIDDEN);
    ck_assert_msg(strstr(ct_err_detail(), "make a subject CN over 63 characters"), "%s", ct_err_detail());
    ck_assert_int_eq(count_rows("certificates where profile='device'"), 0);
    ck_assert_int_eq(count_rows("audit where outcome='denied' and action='est.enroll'"), denied + 1);
}
END_TEST

START_TEST(renewal_cannot_replace_a_revoked_certificate)
{
    ca_enroll_result id = {0}, ms = {0}, res = {0};
    ct_buf csr = CT_BUF_INIT, rekey = CT_BUF_INIT;
    pki_cert_info info;
    ck_assert_int_eq(enroll_new("sn1-id", "SN-1", &id), CT_OK);
    openssl_csr("sn1-ms", "/serialNumber=SN-1/CN=x", NULL, &csr);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, CA_PROFILE_MEDIA_SIGNING, &ms), CT_OK);
    ck_assert_int_eq(pki_cert_parse_info(ms.cert_der.data, ms.cert_der.len, &info), CT_OK);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, info.serial_hex, "keyCompromise"), CT_OK);
    openssl_csr("sn1-ms2", "/serialNumber=SN-1/CN=x", NULL, &rekey);
    ck_assert_int_eq(enroll(&id.cert_der, &rekey, CA_ENROLL_RENEW, CA_PROFILE_MEDIA_SIGNING, &res), CT_ERR_ALREADY_REVOKED);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "revocation is final"));
    ck_assert_int_eq(count_rows("certificates where device_serial='SN-1' and profile='media-signing'"), 1);
    /* The identity certificate, not revoked, still renews. */
    ck_assert_int_eq(enroll(&id.cert_der, &rekey, CA_ENROLL_RENEW, NULL, &res), CT_OK);
    ct_buf_free(&res.cert_der);
    ct_buf_free(&id.cert_der);
    ct_buf_free(&ms.cert_der);
    ct_buf_free(&csr);
    ct_buf_free(&rekey);
    db_audit_report report;
    ck_assert_int_eq(ca_audit_verify(the_ca, &report), CT_OK);
}
END_TEST

START_TEST(reprovisioning_allows_a_revoked_serial_once_more)
{
    char a[DB_CERT_SERIAL_HEX_MAX], b[DB_CERT_SERIAL_HEX_MAX];
    ca_enroll_result res = {0};
    int64_t id = 0;
    issue_pem("SN-1", a);
    /* Only a revoked serial, only without a valid certificate, only as recorded. */
    ck_assert_int_eq(ca_order_reprovision(the_ca, "line1", "CX100", "SN-1", &id), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(ca_order_reprovision(the_ca, "line1", "CX100", "SN-2", &id), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(ca_order_reprovision(the_ca, "line1", "CX100", "SN_1", &id), CT_ERR_USAGE);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, a, "keyCompromise"), CT_OK);
    ck_assert_int_eq(ca_order_reprovision(the_ca, "line1", "CX100", "sn-1", &id), CT_ERR_EXISTS);
    ck_assert_int_eq(ca_order_reprovision(the_ca, "nope", "CX100", "SN-1", &id), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(count_rows("orders"), 1);
    ck_assert_int_eq(ca_order_reprovision(the_ca, "line1", "CX100", "SN-1", &id), CT_OK);
    /* The next order (PostgreSQL's sequences are not transactional: a refused order above may have taken a number). */
    ck_assert_int_gt(id, 1);
    char where[300];
    snprintf(where, sizeof where, "audit where action='order.reprovision' and subject='order %lld' and actor='cli' and "
             "detail like '%%serial=SN-1 revoked=1'", (long long)id);
    ck_assert_int_eq(count_rows(where), 1);
    /* Once more: a new key is issued, against the new order... */
    ck_assert_int_eq(enroll_new("sn1-again", "SN-1", &res), CT_OK);
    pki_cert_info info;
    ck_assert_int_eq(pki_cert_parse_info(res.cert_der.data, res.cert_der.len, &info), CT_OK);
    snprintf(b, sizeof b, "%s", info.serial_hex);
    ct_buf_free(&res.cert_der);
    snprintf(where, sizeof where, "certificates where order_id=%lld and status='valid'", (long long)id);
    ck_assert_int_eq(count_rows(where), 1);
    ck_assert_int_eq(ca_order_reprovision(the_ca, "line1", "CX100", "SN-1", &id), CT_ERR_ALREADY_ISSUED);
    /* ...and once only: revoked again, it is refused again. */
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, b, "keyCompromise"), CT_OK);
    ck_assert_int_eq(enroll_new("sn1-third", "SN-1", &res), CT_ERR_ALREADY_REVOKED);
    ck_assert_int_eq(count_rows("certificates where device_serial='SN-1'"), 2);
}
END_TEST

START_TEST(revoking_an_order_closes_it_and_a_station_disables_it)
{
    char a[DB_CERT_SERIAL_HEX_MAX];
    ca_enroll_result res = {0};
    issue_pem("SN-1", a);
    ca_revoke_request req = {.scope = DB_REVOKE_ORDER, .target = "1", .reason = "cessationOfOperation", .actor = "cli"};
    ck_assert_int_eq(ca_revoke(the_ca, &req, NULL), CT_OK);
    ck_assert_int_eq(count_rows("orders where id=1 and open=0 and closed_at > 0"), 1);
    ck_assert_int_eq(count_rows("audit where action='order.close' and subject='order 1' and actor='cli' and "
                                "detail='v=2 id=1 because=revoked' and seq = (select max(seq) from audit)"), 1);
    ck_assert_int_eq(enroll_new("sn2", "SN-2", &res), CT_ERR_NOT_IN_ORDER);
    /* A station: its certificates revoked and the station disabled, in one transaction. */
    char path[600];
    int64_t id = 0;
    write_text("more", "SN-7\n", path, sizeof path);
    ck_assert_int_eq(ca_order_create(the_ca, "line1", "CX100", path, &id), CT_OK);
    ck_assert_int_eq(enroll_new("sn7", "SN-7", &res), CT_OK);
    ct_buf_free(&res.cert_der);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_STATION, "line1", "keyCompromise"), CT_OK);
    ck_assert_int_eq(count_rows("stations where name='line1' and enabled=0"), 1);
    ck_assert_int_eq(count_rows("certificates where profile='device' and status <> 'revoked'"), 0);
    ck_assert_int_eq(count_rows("audit where action='station.disable' and subject='line1' and actor='tester'"), 1);
    ck_assert_int_eq(enroll_new("sn7b", "SN-7", &res), CT_ERR_DISABLED);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_STATION, "line1", "keyCompromise"), CT_ERR_ALREADY_REVOKED);
    db_audit_report report;
    ck_assert_int_eq(ca_audit_verify(the_ca, &report), CT_OK);
}
END_TEST

START_TEST(serials_are_one_case_insensitively)
{
    char path[600];
    int64_t id = 0;
    ca_enroll_result res = {0};
    /* Orders: against any order's serial, and within the same file. */
    write_text("case1", "SN-9\nsn-1\n", path, sizeof path);
    ck_assert_int_eq(ca_order_create(the_ca, "line1", "CX100", path, &id), CT_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "'sn-1' differs only by case from 'SN-1'"));
    write_text("case2", "cam-x1\nCAM-X1\n", path, sizeof path);
    ck_assert_int_eq(ca_order_create(the_ca, "line1", "CX100", path, &id), CT_ERR_EXISTS);
    ck_assert_int_eq(ca_order_close(the_ca, 1), CT_OK);
    write_text("case3", "sn-2\n", path, sizeof path); /* a closed order's serial counts too */
    ck_assert_int_eq(ca_order_create(the_ca, "line1", "CX100", path, &id), CT_ERR_EXISTS);
    ck_assert_int_eq(count_rows("orders"), 1);
    ck_assert_int_eq(count_rows("order_serials"), 3);
    /* Issuance: a database made before this rule may hold both spellings in orders; the second is refused. */
    write_text("case4", "cam-x1\n", path, sizeof path);
    ck_assert_int_eq(ca_order_create(the_ca, "line1", "CX100", path, &id), CT_OK);
    ck_assert_int_eq(enroll_new("x1", "cam-x1", &res), CT_OK);
    ct_buf_free(&res.cert_der);
    if (tu_on_pg()) return; /* the rest edits the SQLite file itself */
    ck_assert_int_eq(tu_sh("sqlite3 '%s' \"drop trigger order_serials_one_case; insert into order_serials (order_id, "
                           "serial) values (%lld, 'CAM-X1')\"", the_ca->cfg.db_path, (long long)id), 0);
    ck_assert_int_eq(enroll_new("x1b", "CAM-X1", &res), CT_ERR_EXISTS);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "'CAM-X1' differs only by case from 'cam-x1'"));
    ck_assert_int_eq(count_rows("certificates where profile='device'"), 1);
    ck_assert_int_eq(count_rows("audit where outcome='denied' and subject='CAM-X1'"), 1);
    /* Search: any case finds it; the subject keeps the serial as written. */
    db_cert_row rows[4];
    size_t n = 0;
    db_search q = {.device_serial = "CAM-x1", .limit = 4};
    ck_assert_int_eq(db_cert_search(the_ca->db, &q, rows, &n, NULL), CT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(rows[0].device_serial, "cam-x1");
    ck_assert_str_eq(rows[0].subject, "CX100 cam-x1");
}
END_TEST

START_TEST(station_and_officer_certificates_are_revoked_at_once)
{
    pki_cert_info st;
    ca_enroll_result res = {0};
    char path[600], out[600];
    ck_assert_int_eq(pki_cert_parse_info(station_cert.data, station_cert.len, &st), CT_OK);
    ck_assert_int_eq(count_rows("certificates where profile='station' and device_serial='line1' and status='valid'"), 1);
    /* An officer, who can identify itself until its certificate is revoked. */
    ck_assert_int_eq(tu_sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '%s/of.key' "
                           "-subj /CN=olga -out '%s/of.csr' 2>/dev/null", dir, dir), 0);
    snprintf(path, sizeof path, "%s/of.csr", dir);
    snprintf(out, sizeof out, "%s/of.pem", dir);
    ck_assert_int_eq(ca_officer_add(the_ca, "olga", "officer", path, out), CT_OK);
    ct_buf officer = CT_BUF_INIT;
    read_file_der(out, false, &officer);
    pki_cert_info of;
    ck_assert_int_eq(pki_cert_parse_info(officer.data, officer.len, &of), CT_OK);
    ca_http_request rq = {.method = "GET", .path = "/officer/api/search", .client_cert = officer.data,
                          .client_cert_len = officer.len};
    ca_officer_id who;
    ck_assert_int_eq(ca_officer_identify(the_ca, &rq, &who), CT_OK);
    /* Revoked by serial, as any certificate: refused on the next request. */
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, st.serial_hex, "keyCompromise"), CT_OK);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, of.serial_hex, "affiliationChanged"), CT_OK);
    ck_assert_int_eq(enroll_new("sn1", "SN-1", &res), CT_ERR_DISABLED);
    ck_assert_int_eq(ct_err_http_status(CT_ERR_DISABLED), 403);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "is revoked"));
    ck_assert_int_eq(count_rows("audit where outcome='denied' and actor='line1' and detail like '%is revoked'"), 1);
    ck_assert_int_eq(ca_officer_identify(the_ca, &rq, &who), CT_ERR_DISABLED);
    ck_assert_str_eq(who.actor, "officer:olga");
    /* On the operations CRL (verified against its issuer), not on the device CRL. */
    snprintf(path, sizeof path, "%s/ops.crl", dir);
    ck_assert_int_eq(ca_crl_write(the_ca, CA_CRL_OPS, 0, path), CT_OK);
    ck_assert_int_eq(tu_sh("cat '%s/ops-issuing.pem' '%s/ops-root.pem' > '%s/ops-chain.pem' && openssl crl -inform DER "
                           "-in '%s' -CAfile '%s/ops-chain.pem' -verify -noout 2>&1 | grep -q 'verify OK'",
                           the_ca->cfg.dir, the_ca->cfg.dir, dir, path, dir), 0);
    ck_assert_int_eq(tu_sh("test \"$(openssl crl -inform DER -in '%s' -noout -text | sed -n 's/ *Serial Number: //p' | "
                           "tr A-F a-f | sort | paste -sd,)\" = \"$(printf '%%s\\n%%s\\n' %s %s | sort | paste -sd,)\"",
                           path, st.serial_hex, of.serial_hex), 0);
    snprintf(path, sizeof path, "%s/dev.crl", dir);
    ck_assert_int_eq(ca_crl_write(the_ca, CA_CRL_DEVICE, 0, path), CT_OK);
    ck_assert_int_eq(tu_sh("openssl crl -inform DER -in '%s' -noout -text | grep -q 'No Revoked Certificates'", path), 0);
    ct_buf_free(&officer);
}
END_TEST

START_TEST(serials_file_may_be_a_pipe)
{
    int fds[2];
    char path[64];
    int64_t id = 0;
    ct_buf got = CT_BUF_INIT;
    /* As `--serials <(...)` gives it: a pipe, whose size says nothing. */
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], "SN-21\nSN-22\n", 12), 12);
    close(fds[1]);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[0]);
    ck_assert_int_eq(ca_order_create(the_ca, "line1", "CX100", path, &id), CT_OK);
    close(fds[0]);
    ck_assert_int_eq(count_rows("order_serials where serial in ('SN-21', 'SN-22')"), 2);
    /* Still bounded (ct_file_read_stream, which order create reads it with): a pipe longer than the bound is
     * refused. ct_file_read takes regular files only. */
    char big[5000];
    memset(big, 'a', sizeof big);
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], big, sizeof big), (ssize_t)sizeof big);
    close(fds[1]);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[0]);
    ck_assert_int_eq(ct_file_read(path, 5000, &got), CT_ERR_IO);
    ck_assert_int_eq(ct_file_read_stream(path, 4999, &got), CT_ERR_TOO_LARGE);
    close(fds[0]);
    ck_assert_ptr_null(got.data);
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], big, sizeof big), (ssize_t)sizeof big);
    close(fds[1]);
    ck_assert_int_eq(ct_file_read_stream(path, 5000, &got), CT_OK);
    close(fds[0]);
    ck_assert_uint_eq(got.len, 5000);
    ck_assert_uint_gt(got.max, got.len); /* room for a NUL */
    ct_buf_free(&got);
}
END_TEST

START_TEST(database_files_are_private)
{
    if (tu_on_pg()) return; /* it edits or inspects the SQLite file itself */
    struct stat sb;
    char side[CA_PATH_MAX + 16];
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", the_ca->cfg.db_path, suffixes[i]);
        ck_assert_int_eq(stat(side, &sb), 0);
        ck_assert_int_eq(sb.st_mode & 0777, 0600);
    }
    /* A folder made by an older version (0644) is narrowed when opened. */
    snprintf(side, sizeof side, "%s", the_ca->cfg.dir);
    ca_close(the_ca);
    the_ca = NULL;
    ck_assert_int_eq(tu_sh("chmod 0644 '%s/'*.db*", side), 0);
    ck_assert_int_eq(ca_open(side, &the_ca), CT_OK);
    ck_assert_int_eq(stat(the_ca->cfg.db_path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
}
END_TEST

START_TEST(server_failures_in_issuance_are_audited)
{
    if (tu_on_pg()) return; /* it edits or inspects the SQLite file itself */
    ca_enroll_result res = {0};
    /* The database refuses the certificate row (as a full disk would) while the audit table still takes rows. */
    ck_assert_int_eq(tu_sh("sqlite3 '%s' \"create trigger t_full before insert on certificates begin "
                           "select raise(abort, 'database or disk is full (stand-in)'); end\"",
                           the_ca->cfg.db_path), 0);
    long denied = count_rows("audit where outcome='denied'");
    ck_assert_int_eq(enroll_new("sn1", "SN-1", &res), CT_ERR_DB);
    ck_assert_int_eq(ct_err_http_status(CT_ERR_DB), 500);
    ck_assert_int_eq(count_rows("audit where outcome='denied' and action='est.enroll' and actor='line1' and "
                                "subject='SN-1' and detail like '%disk is full (stand-in)%'") ,1);
    ck_assert_int_eq(count_rows("audit where outcome='denied'") - denied, 1);
    ck_assert_int_eq(count_rows("certificates where profile='device'"), 0);
}
END_TEST

/* A CA folder older than station records: the station's certificate is recorded when it is revoked. */
START_TEST(an_older_station_certificate_is_recorded_and_revoked)
{
    if (tu_on_pg()) return; /* it edits or inspects the SQLite file itself */
    pki_cert_info st;
    ca_enroll_result res = {0};
    ck_assert_int_eq(pki_cert_parse_info(station_cert.data, station_cert.len, &st), CT_OK);
    ck_assert_int_eq(tu_sh("sqlite3 '%s' \"delete from certificates where profile = 'station'\"", the_ca->cfg.db_path), 0);
    ck_assert_int_eq(revoke_by_tester(DB_REVOKE_CERT, st.serial_hex, "keyCompromise"), CT_OK);
    ck_assert_int_eq(count_rows("audit where action='cert.record' and subject='line1' and actor='tester'"), 1);
    ck_assert_int_eq(count_rows("certificates where profile='station' and device_serial='line1' and status='revoked' "
                                "and subject='CN=line1' and not_after > not_before"), 1);
    ck_assert_int_eq(enroll_new("sn1", "SN-1", &res), CT_ERR_DISABLED);
    db_audit_report report;
    ck_assert_int_eq(ca_audit_verify(the_ca, &report), CT_OK);
}
END_TEST

/* ---- issue 11: the audit chain is MACed by a key in the CA's token ---- */
START_TEST(audit_chain_is_keyed_by_the_token)
{
    if (tu_on_pg()) return; /* it edits or inspects the SQLite file itself */
    ct_buf csr = CT_BUF_INIT;
    ca_enroll_result res;
    openssl_csr("k1", "/serialNumber=SN-1/CN=x", NULL, &csr);
    ck_assert_int_eq(enroll(&station_cert, &csr, CA_ENROLL_NEW, NULL, &res), CT_OK);
    db_audit_report report;
    ck_assert_int_eq(ca_audit_verify(the_ca, &report), CT_OK);
    ck_assert_int_eq(report.keyed_from, 1);
    ck_assert_int_eq(report.entries, count_rows("audit"));
    /* The key init made is the configured one, a secret key in the token: not usable as a private key. */
    hsm_mac_key *k = NULL;
    hsm_key *priv = NULL;
    ck_assert_int_eq(hsm_mac_key_find(the_ca->hsm, the_ca->cfg.audit_mac_uri, &k), CT_OK);
    ck_assert_str_eq(hsm_mac_key_label(k), "audit-mac");
    ck_assert_int_eq(hsm_key_find(the_ca->hsm, "audit-mac", &priv), CT_ERR_HSM_NO_KEY);
    ck_assert_int_eq(hsm_key_find(the_ca->hsm, the_ca->cfg.audit_mac_uri, &priv), CT_ERR_ARG);
    hsm_mac_key_free(k);
    /* The issuance's entry, edited in the file: named by the CA's verify. */
    int64_t seq = 0;
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' \"DROP TRIGGER audit_no_update; UPDATE audit SET subject = 'SN-2' WHERE "
             "action = 'cert.issue'\"", the_ca->cfg.db_path);
    ck_assert_int_eq(tu_sh("%s", cmd), 0);
    snprintf(cmd, sizeof cmd, "sqlite3 -readonly '%s' \"select seq from audit where action = 'cert.issue'\"",
             the_ca->cfg.db_path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%lld", (long long *)&seq), 1);
    pclose(p);
    ck_assert_int_eq(ca_audit_verify(the_ca, &report), CT_ERR_INTEGRITY);
    ck_assert_int_eq(report.first_bad_seq, seq);
    ck_assert_ptr_nonnull(strstr(report.reason, "MAC does not match (not written by this CA's key)"));
    ct_buf_free(&res.cert_der);
    ct_buf_free(&csr);
}
END_TEST

START_TEST(configured_audit_key_must_exist)
{
    char path[600];
    snprintf(path, sizeof path, "%s/ca/" CA_CONFIG_FILE, dir);
    long entries = count_rows("audit");
    ca_close(the_ca);
    the_ca = NULL;
    ck_assert_int_eq(tu_sh("sed -i 's|^key.audit_mac.*|key.audit_mac = pkcs11:object=nope;type=secret-key|' '%s'", path),
                     0);
    snprintf(path, sizeof path, "%s/ca", dir);
    ca *c = NULL;
    ck_assert_int_eq(ca_open(path, &c), CT_ERR_HSM_NO_KEY); /* only the default key is made on first use */
    snprintf(path, sizeof path, "%s/ca/" CA_CONFIG_FILE, dir);
    ck_assert_int_eq(tu_sh("sed -i 's|^key.audit_mac.*|key.audit_mac = pkcs11:object=device-root;type=private|' '%s'",
                           path), 0);
    snprintf(path, sizeof path, "%s/ca", dir);
    ck_assert_int_eq(ca_open(path, &c), CT_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "type=secret-key"));
    ck_assert_ptr_null(c);
    snprintf(path, sizeof path, "%s/ca/" CA_CONFIG_FILE, dir);
    ck_assert_int_eq(tu_sh("sed -i 's|^key.audit_mac.*|key.audit_mac = pkcs11:object=audit-mac;type=secret-key|' '%s'",
                           path), 0);
    snprintf(path, sizeof path, "%s/ca", dir);
    ck_assert_int_eq(ca_open(path, &the_ca), CT_OK);
    ck_assert_int_eq(count_rows("audit"), entries); /* nothing was written by the refused opens */
}
END_TEST

/* A test case on a fresh CA per test. */
static TCase *ca_case(const char *name, double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("ca");
    TCase *tc = ca_case("policy", 60);
    tcase_add_test(tc, issues_idevid_for_a_serial_in_the_order);
    tcase_add_test(tc, same_key_again_returns_the_same_certificate);
    tcase_add_test(tc, refusals_leave_no_row_and_are_audited);
    tcase_add_test(tc, counted_refusals_are_bounded_per_client);
    tcase_add_test(tc, client_addresses_key_ipv6_by_its_64);
    tcase_add_test(tc, address_hash_is_keyed_against_chosen_addresses);
    tcase_add_test(tc, closed_order_issues_nothing);
    tcase_add_test(tc, renewal_supersedes_and_only_for_its_own_serial);
    tcase_add_test(tc, est_layer_maps_errors_to_statuses);
    tcase_add_test(tc, config_refuses_unknown_settings);
    suite_add_tcase(s, tc);
    TCase *rv = ca_case("revocation", 120);
    tcase_add_test(rv, revoke_one_an_order_and_refusals);
    tcase_add_test(rv, crl_lists_exactly_the_revoked_serials);
    tcase_add_test(rv, stored_crl_judged_by_the_state_check);
    tcase_add_test(rv, ocsp_answers_and_refreshes_on_revocation);
    tcase_add_test(rv, ocsp_bad_input_is_refused_and_audited);
    tcase_add_test(rv, ocsp_without_a_delegated_signer);
    suite_add_tcase(s, rv);
    TCase *lg = ca_case("log", 120);
    tcase_add_test(lg, log_tree_heads_and_a_device_proof);
    tcase_add_test(lg, log_without_a_log_signer);
    tcase_add_test(lg, audit_rows_rewritten_under_a_warm_cache);
    suite_add_tcase(s, lg);
    TCase *h10 = ca_case("issue10-records", 120);
    tcase_add_test(h10, revoked_serial_is_never_issued_again);
    tcase_add_test(h10, renewal_cannot_replace_a_revoked_certificate);
    tcase_add_test(h10, an_order_whose_cn_cannot_be_built_is_refused);
    tcase_add_test(h10, reprovisioning_allows_a_revoked_serial_once_more);
    tcase_add_test(h10, revoking_an_order_closes_it_and_a_station_disables_it);
    tcase_add_test(h10, serials_are_one_case_insensitively);
    tcase_add_test(h10, station_and_officer_certificates_are_revoked_at_once);
    tcase_add_test(h10, serials_file_may_be_a_pipe);
    tcase_add_test(h10, database_files_are_private);
    tcase_add_test(h10, server_failures_in_issuance_are_audited);
    tcase_add_test(h10, an_older_station_certificate_is_recorded_and_revoked);
    suite_add_tcase(s, h10);
    TCase *i11 = ca_case("issue11-audit-mac", 120);
    tcase_add_test(i11, audit_chain_is_keyed_by_the_token);
    tcase_add_test(i11, configured_audit_key_must_exist);
    suite_add_tcase(s, i11);
    return tu_run_suite(s);
}
