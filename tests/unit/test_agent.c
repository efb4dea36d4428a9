/* camera agent: simulate, keys in the device token, CSRs, install refusals, install + boot, reset.
 * The certificates come from a test CA made with the openssl CLI, independent of camtrust's own CA code. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent_priv.h"
#include "test_util.h"

#define SERIAL "CAM0042"

static const char *dir; /* this test process's folder: ca/, other/, dev/ */
static char dev[600];

static void make_ca(const char *name)
{
    ck_assert_int_eq(
        tu_sh("cd '%s' && mkdir %s && cd %s && "
              "openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key "
              "-subj '/CN=%s root' -days 3650 -addext basicConstraints=critical,CA:TRUE "
              "-addext keyUsage=critical,keyCertSign,cRLSign -out root.pem 2>/dev/null && "
              "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout issuing.key "
              "-subj '/CN=%s issuing' -out issuing.csr 2>/dev/null && "
              "printf 'basicConstraints=critical,CA:TRUE,pathlen:0\\nkeyUsage=critical,keyCertSign\\n' >ca.ext && "
              "printf 'basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\n' >leaf.ext && "
              "openssl x509 -req -in issuing.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3650 "
              "-extfile ca.ext -out issuing.pem 2>/dev/null",
              dir, name, name, name, name),
        0);
}

static void setup(void)
{
    dir = tu_tmpdir("agent");
    make_ca("ca");
    make_ca("other");
    snprintf(dev, sizeof dev, "%s/dev", dir);
    char root[700];
    snprintf(root, sizeof root, "%s/ca/root.pem", dir);
    ct_err rc = agent_simulate(dev, SERIAL, "CX100", NULL, root);
    ck_assert_msg(rc == CT_OK, "simulate: %s", ct_err_detail());
}

static agent *open_dev(void)
{
    agent *a = NULL;
    ct_err rc = agent_open(dev, &a);
    ck_assert_msg(rc == CT_OK, "open: %s", ct_err_detail());
    return a;
}

/* Sends one message to the handler, as factory mode would. */
static void ask(agent *a, factory_type type, const char *profile, factory_msg *resp, bool *close_after)
{
    factory_msg req;
    ck_assert_int_eq(factory_msg_init(&req, type), CT_OK);
    if (profile) ck_assert_int_eq(factory_msg_add_str(&req, FACTORY_TAG_PROFILE, profile), CT_OK);
    ck_assert_int_eq(agent_factory_handle(a, &req, resp, close_after), CT_OK);
    factory_msg_free(&req);
}

/* GET_CSRS; writes DIR/<profile>.csr.der and returns the SHA-256 of each CSR's key in spki[]. */
static void get_csrs(agent *a, uint8_t spki[2][32])
{
    factory_msg resp;
    bool close_after;
    ask(a, FACTORY_GET_CSRS, NULL, &resp, &close_after);
    ck_assert_uint_eq(resp.type, FACTORY_CSRS);
    size_t off = 0;
    factory_field f;
    int p = -1, seen = 0;
    while (factory_msg_next(&resp, &off, &f) == CT_OK) {
        if (f.tag == FACTORY_TAG_PROFILE) {
            p = f.len == 6 && memcmp(f.value, "device", 6) == 0 ? 0 : 1;
            continue;
        }
        ck_assert_uint_eq(f.tag, FACTORY_TAG_CSR);
        pki_csr *csr = NULL;
        ck_assert_int_eq(pki_csr_parse(f.value, f.len, &csr), CT_OK); /* signature verified */
        ck_assert_str_eq(pki_csr_subject_serial(csr), SERIAL);
        ck_assert_str_eq(pki_csr_subject_cn(csr), SERIAL);
        pki_csr_spki_sha256(csr, spki[p]);
        pki_csr_free(csr);
        char path[700];
        snprintf(path, sizeof path, "%s/%s.csr.der", dir, agent_profile_name[p]);
        ck_assert_int_eq(ct_file_write_atomic(path, f.value, f.len, 0644), CT_OK);
        seen++;
    }
    ck_assert_int_eq(seen, 2);
    factory_msg_free(&resp);
}

/* Signs DIR/<profile>.csr.der with CA `ca` into DIR/<out> (leaf then issuing). `force_key`: a PEM public key that
 * replaces the CSR's; `subj`: a subject that replaces the CSR's (made with a throw-away key). */
static void sign(const char *ca, const char *profile, const char *subj, const char *out)
{
    if (subj)
        ck_assert_int_eq(tu_sh("cd '%s' && openssl req -inform DER -in %s.csr.der -pubkey -noout >forced.pub && "
                               "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout x.key "
                               "-subj '%s' -out in.csr 2>/dev/null && openssl x509 -req -in in.csr -force_pubkey "
                               "forced.pub -CA %s/issuing.pem -CAkey %s/issuing.key -CAcreateserial -days 30 "
                               "-extfile %s/leaf.ext -out leaf.pem 2>/dev/null && cat leaf.pem %s/issuing.pem >%s",
                               dir, profile, subj, ca, ca, ca, ca, out),
                         0);
    else
        ck_assert_int_eq(tu_sh("cd '%s' && openssl req -inform DER -in %s.csr.der -out in.csr && openssl x509 -req "
                               "-in in.csr -CA %s/issuing.pem -CAkey %s/issuing.key -CAcreateserial -days 30 "
                               "-extfile %s/leaf.ext -out leaf.pem 2>/dev/null && cat leaf.pem %s/issuing.pem >%s",
                               dir, profile, ca, ca, ca, ca, out),
                         0);
}

/* INSTALL with the chains in DIR/<files[p]> ("" : the profile with no certificate, NULL: profile left out);
 * `cut` bytes are cut off the end of the device leaf. */
static void install_msg(const char *files[2], size_t cut, factory_msg *m)
{
    ck_assert_int_eq(factory_msg_init(m, FACTORY_INSTALL), CT_OK);
    ct_buf der;
    ck_assert_int_eq(ct_buf_alloc(&der, PKI_MAX_CERT_DER), CT_OK);
    for (int p = 0; p < 2; p++) {
        if (!files[p]) continue;
        ck_assert_int_eq(factory_msg_add_str(m, FACTORY_TAG_PROFILE, agent_profile_name[p]), CT_OK);
        if (!*files[p]) continue;
        char path[700];
        ct_buf pem;
        snprintf(path, sizeof path, "%s/%s", dir, files[p]);
        ck_assert_int_eq(ct_file_read(path, 65536, &pem), CT_OK);
        for (size_t i = 0; ct_pem_decode(pem.data, pem.len, "CERTIFICATE", i, &der) == CT_OK; i++)
            ck_assert_int_eq(factory_msg_add(m, FACTORY_TAG_CERT, der.data, der.len - (p == 0 && i == 0 ? cut : 0)),
                             CT_OK);
        ct_buf_free(&pem);
    }
    ct_buf_free(&der);
}

static void creds_path(char *out, size_t max) { snprintf(out, max, "%s/credentials.pem", dev); }

static bool installed(void)
{
    char p[700];
    creds_path(p, sizeof p);
    return ct_file_exists(p);
}

/* An install that must be refused with `want` and a reason containing `why`; nothing written, keys kept. */
static void refused(agent *a, const char *files[2], size_t cut, ct_err want, const char *why)
{
    uint8_t before[2][32], after[2][32];
    get_csrs(a, before);
    factory_msg m;
    install_msg(files, cut, &m);
    ct_err rc = agent_install(a, &m);
    ck_assert_msg(rc == want, "got %s (%s), want %s", ct_err_name(rc), ct_err_detail(), ct_err_name(want));
    ck_assert_msg(strstr(ct_err_detail(), why), "reason '%s' lacks '%s'", ct_err_detail(), why);
    factory_msg_free(&m);
    ck_assert(!installed());
    get_csrs(a, after);
    ck_assert_int_eq(memcmp(before, after, sizeof before), 0);
    /* Through the handler, the station reads the refusal in RESULT. */
    install_msg(files, cut, &m);
    factory_msg resp;
    bool close_after;
    ck_assert_int_eq(agent_factory_handle(a, &m, &resp, &close_after), CT_OK);
    char status[64];
    ck_assert_uint_eq(resp.type, FACTORY_RESULT);
    ck_assert_int_eq(factory_msg_get_str(&resp, FACTORY_TAG_STATUS, status, sizeof status), CT_OK);
    ck_assert_str_eq(status, ct_err_name(want));
    factory_msg_free(&resp);
    factory_msg_free(&m);
    agent_status st;
    ck_assert_int_eq(agent_status_get(a, &st), CT_OK);
    ck_assert_int_eq(st.state, AGENT_UNPROVISIONED);
}

/* Both profiles signed by the right CA into dev.chain and media.chain. */
/* CSRs, then their chains from the good CA; `spki` gets the keys' hashes. */
static void sign_good(agent *a, uint8_t spki[2][32])
{
    get_csrs(a, spki);
    sign("ca", "device", NULL, "dev.chain");
    sign("ca", "media-signing", NULL, "media.chain");
}

START_TEST(simulate_folder)
{
    char p[700], root[700];
    struct stat st;
    snprintf(p, sizeof p, "%s/secrets/user.pin", dev);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    snprintf(p, sizeof p, "%s/identity", dev);
    ck_assert_int_eq(tu_sh("grep -q '^serial = " SERIAL "$' '%s' && grep -q '^mac = 02:' '%s'", p, p), 0);
    snprintf(p, sizeof p, "%s/agent.conf", dev);
    ck_assert_int_eq(tu_sh("grep -q '^hsm.module = ' '%s' && grep -q '^hsm.softhsm_conf = ' '%s'", p, p), 0);
    snprintf(root, sizeof root, "%s/ca/root.pem", dir);
    ck_assert_int_eq(tu_sh("cmp -s '%s/root.pem' '%s'", dev, root), 0);
    ck_assert_int_eq(agent_simulate(dev, SERIAL, "CX100", NULL, root), CT_ERR_EXISTS);
    snprintf(p, sizeof p, "%s/dev2", dir);
    ck_assert_int_eq(agent_simulate(p, "bad serial", "CX100", NULL, root), CT_ERR_USAGE);
    ck_assert_int_eq(agent_simulate(p, "CAM1", "CX100", NULL, "/nonexistent.pem"), CT_ERR_IO);
    snprintf(root, sizeof root, "%s/ca/issuing.pem", dir); /* not self-signed: not a root */
    ck_assert_int_eq(agent_simulate(p, "CAM1", "CX100", NULL, root), CT_ERR_CONFIG);
    agent_status s;
    ck_assert_int_eq(agent_boot(dev, &s), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(s.state, AGENT_UNPROVISIONED);
}
END_TEST

START_TEST(keys_stay_in_token)
{
    agent *a = open_dev();
    uint8_t first[2][32], again[2][32];
    get_csrs(a, first);
    get_csrs(a, again); /* a retry reuses the keys */
    ck_assert_int_eq(memcmp(first, again, sizeof first), 0);
    ck_assert_int_ne(memcmp(first[0], first[1], 32), 0); /* two different keys */
    ck_assert_int_eq(tu_sh("cd '%s' && openssl req -inform DER -in device.csr.der -noout -verify 2>&1 | grep -q OK",
                           dir),
                     0);
    agent_close(a);
    /* A tool that is not ours sees both private keys as sensitive and never extractable. */
    for (int p = 0; p < 2; p++)
        ck_assert_int_eq(tu_sh("cd '%s' && SOFTHSM2_CONF=softhsm2.conf pkcs11-tool --module "
                               "/usr/lib/softhsm/libsofthsm2.so --token-label camtrust-device --login --pin "
                               "\"$(cat secrets/user.pin)\" --list-objects --type privkey 2>/dev/null | grep -A6 "
                               "'label: *%s$' | grep -q 'never extractable'",
                               dev, agent_key_label[p]),
                         0);
}
END_TEST

/* GET_CSRS with `nonce` (NULL: none); the challengePassword of each CSR in challenge[p] ("" if none). Fails the
 * test unless the answer is CSRS; returns false on an ERROR answer, its reason in `reason`. */
static bool csrs_with_nonce(agent *a, const char *nonce, char challenge[2][PKI_CHALLENGE_MAX], char *reason, size_t max)
{
    factory_msg req, resp;
    bool close_after;
    ck_assert_int_eq(factory_msg_init(&req, FACTORY_GET_CSRS), CT_OK);
    if (nonce) ck_assert_int_eq(factory_msg_add_str(&req, FACTORY_TAG_NONCE, nonce), CT_OK);
    ck_assert_int_eq(agent_factory_handle(a, &req, &resp, &close_after), CT_OK);
    factory_msg_free(&req);
    if (resp.type == FACTORY_ERROR) {
        ck_assert(close_after);
        ck_assert_int_eq(factory_msg_get_str(&resp, FACTORY_TAG_REASON, reason, max), CT_OK);
        factory_msg_free(&resp);
        return false;
    }
    ck_assert_uint_eq(resp.type, FACTORY_CSRS);
    size_t off = 0;
    factory_field f;
    int p = -1;
    while (factory_msg_next(&resp, &off, &f) == CT_OK) {
        if (f.tag == FACTORY_TAG_PROFILE) p = f.len == 6 && memcmp(f.value, "device", 6) == 0 ? 0 : 1;
        if (f.tag != FACTORY_TAG_CSR) continue;
        pki_csr *csr = NULL;
        ck_assert_int_eq(pki_csr_parse(f.value, f.len, &csr), CT_OK); /* signed over the challenge too */
        pki_csr_free(csr);
        pki_csr_asks asks;
        ck_assert_int_eq(pki_csr_asks_get(f.value, f.len, &asks), CT_OK);
        memcpy(challenge[p], asks.challenge, sizeof asks.challenge);
        char path[700];
        snprintf(path, sizeof path, "%s/%s.csr.der", dir, agent_profile_name[p]);
        ck_assert_int_eq(ct_file_write_atomic(path, f.value, f.len, 0644), CT_OK);
    }
    factory_msg_free(&resp);
    return true;
}

START_TEST(csrs_sign_the_nonce)
{
    agent *a = open_dev();
    char challenge[2][PKI_CHALLENGE_MAX], reason[256];
    const char *nonce = "00112233445566778899aabbccddeeff";
    ck_assert(csrs_with_nonce(a, nonce, challenge, reason, sizeof reason));
    ck_assert_str_eq(challenge[0], nonce);
    ck_assert_str_eq(challenge[1], nonce);
    /* openssl reads it as the PKCS#9 challengePassword of a request whose signature verifies */
    ck_assert_int_eq(tu_sh("cd '%s' && openssl req -inform DER -in media-signing.csr.der -noout -verify -text 2>&1 | "
                           "grep -q 'challengePassword *:%s'",
                           dir, nonce),
                     0);
    /* an older station sends no nonce: CSRs without a challenge, as before */
    ck_assert(csrs_with_nonce(a, NULL, challenge, reason, sizeof reason));
    ck_assert_str_eq(challenge[0], "");
    ck_assert_str_eq(challenge[1], "");
    /* anything but 32 lowercase hex digits is refused in one line, before any CSR */
    static const char *const bad[] = {"00112233445566778899aabbccddeef", "00112233445566778899aabbccddeeff0",
                                      "00112233445566778899AABBCCDDEEFF", "0011223344556677 899aabbccddeeff", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!csrs_with_nonce(a, bad[i], challenge, reason, sizeof reason), "nonce '%s' accepted", bad[i]);
        ck_assert_str_eq(reason, "the station's nonce is not 32 hex digits");
    }
    agent_close(a);
}
END_TEST

START_TEST(install_refusals)
{
    agent *a = open_dev();
    uint8_t spki[2][32];
    sign_good(a, spki);
    /* Another root: the chain verifies on its own, but not to the pinned root. */
    sign("other", "device", NULL, "foreign.chain");
    refused(a, (const char *[2]){"foreign.chain", "media.chain"}, 0, CT_ERR_INTEGRITY, "pinned device root");
    /* The right CA, the right serial, another key. */
    ck_assert_int_eq(tu_sh("cd '%s' && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                           "-keyout k.key -subj '/serialNumber=" SERIAL "/CN=" SERIAL "' -outform DER "
                           "-out stranger.csr.der 2>/dev/null",
                           dir),
                     0);
    sign("ca", "stranger", NULL, "stranger.chain");
    refused(a, (const char *[2]){"dev.chain", "stranger.chain"}, 0, CT_ERR_INTEGRITY, "another key");
    /* The token's key, certified for another serial. */
    sign("ca", "device", "/serialNumber=CAM9999/CN=CAM9999", "wrong-serial.chain");
    refused(a, (const char *[2]){"wrong-serial.chain", "media.chain"}, 0, CT_ERR_INTEGRITY, "CAM9999");
    /* The two chains swapped: each leaf belongs to the other key. */
    refused(a, (const char *[2]){"media.chain", "dev.chain"}, 0, CT_ERR_INTEGRITY, "another key");
    /* Empty, missing and truncated chains. */
    refused(a, (const char *[2]){"", "media.chain"}, 0, CT_ERR_BAD_REQUEST, "no certificate chain for profile device");
    refused(a, (const char *[2]){"dev.chain", NULL}, 0, CT_ERR_BAD_REQUEST, "media-signing");
    refused(a, (const char *[2]){"dev.chain", "media.chain"}, 40, CT_ERR_BAD_DER, "malformed");
    /* Only the leaf: the issuing CA is missing, so it does not reach the root. */
    ck_assert_int_eq(tu_sh("cd '%s' && openssl x509 -in dev.chain -out leaf-only.chain", dir), 0);
    refused(a, (const char *[2]){"leaf-only.chain", "media.chain"}, 0, CT_ERR_INTEGRITY, "pinned device root");
    /* Valid now, expired later: the same chain does not verify two months ahead. */
    factory_msg m;
    agent_creds c;
    pki_cert_info leaf;
    install_msg((const char *[2]){"dev.chain", "media.chain"}, 0, &m);
    ck_assert_int_eq(agent_creds_from_msg(&m, &c), CT_OK);
    ck_assert_int_eq(agent_creds_verify(a, &c, time(NULL), &leaf), CT_OK);
    ck_assert_int_eq(agent_creds_verify(a, &c, time(NULL) + 60 * 86400, &leaf), CT_ERR_INTEGRITY);
    agent_creds_free(&c);
    factory_msg_free(&m);
    agent_close(a);
}
END_TEST

START_TEST(install_then_boot)
{
    agent *a = open_dev();
    uint8_t keys[2][32];
    sign_good(a, keys);
    factory_msg m, resp;
    bool close_after;
    /* The root may come at the end of a chain. */
    ck_assert_int_eq(tu_sh("cd '%s' && cat ca/root.pem >>dev.chain", dir), 0);
    install_msg((const char *[2]){"dev.chain", "media.chain"}, 0, &m);
    ck_assert_int_eq(agent_factory_handle(a, &m, &resp, &close_after), CT_OK);
    char status[64];
    ck_assert_int_eq(factory_msg_get_str(&resp, FACTORY_TAG_STATUS, status, sizeof status), CT_OK);
    ck_assert_str_eq(status, "ok");
    ck_assert(!close_after);
    factory_msg_free(&resp);
    ck_assert(installed());
    /* Locked: no second install; CSRs only for the installed keys (none made); HELLO says provisioned and
     * shows the installed leaves, the very certificates of the INSTALL, for a station to confirm with the CA. */
    ck_assert_int_eq(agent_install(a, &m), CT_ERR_EXISTS);
    uint8_t after[2][32];
    get_csrs(a, after);
    ck_assert_mem_eq(after, keys, sizeof after);
    ask(a, FACTORY_HELLO, NULL, &resp, &close_after);
    ck_assert_int_eq(factory_msg_get_str(&resp, FACTORY_TAG_STATE, status, sizeof status), CT_OK);
    ck_assert_str_eq(status, "provisioned");
    size_t off = 0, off_m = 0, certs = 0;
    factory_field f, g;
    while (factory_msg_next(&resp, &off, &f) == CT_OK) {
        if (f.tag != FACTORY_TAG_CERT) continue;
        /* the leaf after each PROFILE of the INSTALL message */
        while (factory_msg_next(&m, &off_m, &g) == CT_OK && g.tag != FACTORY_TAG_PROFILE) {}
        ck_assert_int_eq(factory_msg_next(&m, &off_m, &g), CT_OK);
        ck_assert_uint_eq(g.tag, FACTORY_TAG_CERT);
        ck_assert_uint_eq(f.len, g.len);
        ck_assert_mem_eq(f.value, g.value, f.len);
        certs++;
    }
    ck_assert_uint_eq(certs, 2);
    factory_msg_free(&resp);
    factory_msg_free(&m);
    agent_close(a);

    agent_status st;
    char line[512];
    ck_assert_int_eq(agent_boot(dev, &st), CT_OK);
    ck_assert_int_eq(agent_status_line(&st, line, sizeof line), CT_OK);
    ck_assert_msg(strncmp(line, "provisioned serial=" SERIAL " model=CX100 identity=\"" SERIAL "\" notAfter=", 60) == 0,
                  "%s", line);
    /* openssl agrees with what was installed. */
    ck_assert_int_eq(tu_sh("cd '%s' && openssl verify -CAfile ca/root.pem -untrusted ca/issuing.pem "
                           "dev/credentials.pem >/dev/null",
                           dir),
                     0);
    /* A damaged credentials file is reported as broken, never as provisioned. */
    ck_assert_int_eq(tu_sh("cd '%s' && sed -i '5d' credentials.pem", dev), 0);
    ck_assert_int_eq(agent_boot(dev, &st), CT_ERR_INTEGRITY);
    ck_assert_int_eq(st.state, AGENT_BROKEN);
    /* ... and factory mode shows it as such, with no certificate to confirm. */
    a = open_dev();
    ask(a, FACTORY_HELLO, NULL, &resp, &close_after);
    ck_assert_int_eq(factory_msg_get_str(&resp, FACTORY_TAG_STATE, status, sizeof status), CT_OK);
    ck_assert_str_eq(status, "broken");
    ck_assert_int_eq(factory_msg_get_str(&resp, FACTORY_TAG_CERT, status, sizeof status), CT_ERR_NOT_FOUND);
    factory_msg_free(&resp);
    agent_close(a);
}
END_TEST

START_TEST(reset_destroys_keys)
{
    agent *a = open_dev();
    uint8_t before[2][32], after[2][32];
    sign_good(a, before);
    factory_msg m;
    install_msg((const char *[2]){"dev.chain", "media.chain"}, 0, &m);
    ck_assert_int_eq(agent_install(a, &m), CT_OK);
    factory_msg_free(&m);
    agent_close(a);
    ck_assert_int_eq(agent_reset(dev), CT_OK);
    agent_status st;
    ck_assert_int_eq(agent_boot(dev, &st), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(st.state, AGENT_UNPROVISIONED);
    a = open_dev();
    hsm_key *k = NULL;
    ck_assert_int_eq(agent_key_get(a, AGENT_PROFILE_DEVICE, false, &k), CT_ERR_HSM_NO_KEY);
    get_csrs(a, after); /* fresh keys */
    ck_assert_int_ne(memcmp(before[0], after[0], 32), 0);
    ck_assert_int_ne(memcmp(before[1], after[1], 32), 0);
    agent_close(a);
    ck_assert_int_eq(agent_reset(dev), CT_OK); /* twice is fine */
}
END_TEST

static Suite *agent_suite(void)
{
    Suite *s = suite_create("agent");
    TCase *t = tcase_create("agent");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, simulate_folder);
    tcase_add_test(t, keys_stay_in_token);
    tcase_add_test(t, csrs_sign_the_nonce);
    tcase_add_test(t, install_refusals);
    tcase_add_test(t, install_then_boot);
    tcase_add_test(t, reset_destroys_keys);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(agent_suite());
}
