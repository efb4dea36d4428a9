/* pki tests. The independent judge is the real `openssl` CLI: it makes the requests we parse and checks the
 * requests, certificates and PKCS#7 we make. Signing tests use a real SoftHSM token. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../../common/pki/pki.h"
#include "test_util.h"

static const char *dir; /* this test process's folder */

static void path_of(char *out, size_t max, const char *name) { ck_assert_int_eq(ct_path_join(out, max, dir, name), CT_OK); }

static void load(const char *name, ct_buf *b)
{
    char p[600];
    path_of(p, sizeof p, name);
    ct_err rc = ct_file_read(p, 256 * 1024, b);
    ck_assert_msg(rc == CT_OK, "read %s: %s", name, ct_err_detail());
}

static void save(const char *name, const uint8_t *d, size_t n)
{
    char p[600];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(d, 1, n, f), n);
    fclose(f);
}

static void save_pem(const char *name, const char *label, const ct_buf *der)
{
    ct_buf pem = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&pem, der->len * 2 + 200), CT_OK);
    ck_assert_int_eq(ct_pem_encode(label, der->data, der->len, &pem), CT_OK);
    save(name, pem.data, pem.len);
    ct_buf_free(&pem);
}

/* Runs a shell command in the test folder; its exit status. */
static int sh(const char *cmd)
{
    return tu_sh("cd '%s' && %s", dir, cmd);
}

/* An openssl-made CSR, DER, in `name` with key algorithm arguments for `openssl genpkey`. */
static void openssl_csr(const char *genpkey_args, const char *subj, const char *extra, const char *name)
{
    char cmd[1024];
    ck_assert_int_eq(ct_snprintf(cmd, sizeof cmd,
                                 "openssl genpkey %s -out %s.key 2>/dev/null && openssl req -new -key %s.key "
                                 "-subj '%s' %s -outform DER -out %s",
                                 genpkey_args, name, name, subj, extra, name),
                     CT_OK);
    ck_assert_int_eq(sh(cmd), 0);
}

static ct_err parse_file(const char *name, pki_csr **out)
{
    ct_buf der = CT_BUF_INIT;
    load(name, &der);
    ct_err rc = pki_csr_parse(der.data, der.len, out);
    ct_buf_free(&der);
    return rc;
}

static void setup_dir(void) { dir = tu_tmpdir("pki"); }

#define EC_P256 "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"
#define EC_P384 "-algorithm EC -pkeyopt ec_paramgen_curve:P-384"

/* ---- requests made by openssl ---- */

START_TEST(csr_openssl_ec_parses)
{
    static const struct {
        const char *args;
        hsm_key_type type;
    } keys[] = {{EC_P256, HSM_EC_P256}, {EC_P384, HSM_EC_P384}};
    for (size_t i = 0; i < 2; i++) {
        openssl_csr(keys[i].args, "/serialNumber=CAM001/CN=x", "", "ec.csr");
        pki_csr *csr = NULL;
        ct_err rc = parse_file("ec.csr", &csr);
        ck_assert_msg(rc == CT_OK, "%s: %s", ct_err_name(rc), ct_err_detail());
        ck_assert_str_eq(pki_csr_subject_serial(csr), "CAM001");
        ck_assert_str_eq(pki_csr_subject_cn(csr), "x");
        ck_assert_int_eq(pki_csr_key_type(csr), keys[i].type);
        /* The SPKI is the key's, as openssl writes it; the hash is over exactly those bytes. */
        ck_assert_int_eq(sh("openssl pkey -in ec.csr.key -pubout -outform DER -out ec.pub"), 0);
        ct_buf pub = CT_BUF_INIT;
        load("ec.pub", &pub);
        size_t n;
        const uint8_t *spki = pki_csr_spki(csr, &n);
        ck_assert_uint_eq(n, pub.len);
        ck_assert_mem_eq(spki, pub.data, n);
        uint8_t h1[32], h2[32];
        pki_csr_spki_sha256(csr, h1);
        ck_assert_int_eq(ct_sha256(pub.data, pub.len, h2), CT_OK);
        ck_assert_mem_eq(h1, h2, 32);
        ct_buf_free(&pub);
        pki_csr_free(csr);
    }
}
END_TEST

START_TEST(csr_extras_ignored_and_serial_optional)
{
    pki_csr *csr = NULL;
    /* Requested extensions and attributes are ignored, not refused. */
    openssl_csr(EC_P256, "/C=DE/O=Acme/CN=cam 7/serialNumber=SN-7",
                "-addext subjectAltName=DNS:a.example -addext keyUsage=keyCertSign", "x.csr");
    ck_assert_int_eq(parse_file("x.csr", &csr), CT_OK);
    ck_assert_str_eq(pki_csr_subject_serial(csr), "SN-7");
    ck_assert_str_eq(pki_csr_subject_cn(csr), "cam 7");
    pki_csr_free(csr);
    openssl_csr(EC_P256, "/CN=only-cn", "", "y.csr");
    ck_assert_int_eq(parse_file("y.csr", &csr), CT_OK);
    ck_assert_str_eq(pki_csr_subject_serial(csr), "");
    ck_assert_str_eq(pki_csr_subject_cn(csr), "only-cn");
    pki_csr_free(csr);
    /* Two serial numbers: which one would the CA authorise? Refused. */
    openssl_csr(EC_P256, "/serialNumber=A/serialNumber=B/CN=x", "", "z.csr");
    ck_assert_int_eq(parse_file("z.csr", &csr), CT_ERR_BAD_CSR);
    ck_assert_ptr_null(csr);
}
END_TEST

START_TEST(csr_bad_signature)
{
    openssl_csr(EC_P256, "/serialNumber=CAM001/CN=x", "", "s.csr");
    ct_buf der = CT_BUF_INIT;
    load("s.csr", &der);
    pki_csr *csr = NULL;
    /* The last byte belongs to the signature's s value. */
    der.data[der.len - 1] ^= 0x01;
    ct_err rc = pki_csr_parse(der.data, der.len, &csr);
    ck_assert_msg(rc == CT_ERR_CSR_SIGNATURE, "%s: %s", ct_err_name(rc), ct_err_detail());
    ck_assert_ptr_null(csr);
    der.data[der.len - 1] ^= 0x01;
    ck_assert_int_eq(pki_csr_parse(der.data, der.len, &csr), CT_OK);
    pki_csr_free(csr);
    /* A signed field changed after signing: CAM001 -> CAM002. */
    uint8_t *p = memmem(der.data, der.len, "CAM001", 6);
    ck_assert_ptr_nonnull(p);
    p[5] = '2';
    ck_assert_int_eq(pki_csr_parse(der.data, der.len, &csr), CT_ERR_CSR_SIGNATURE);
    ct_buf_free(&der);
}
END_TEST

START_TEST(csr_weak_keys)
{
    static const char *keys[] = {"-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
                                 "-algorithm RSA -pkeyopt rsa_keygen_bits:3072",
                                 "-algorithm EC -pkeyopt ec_paramgen_curve:P-521", "-algorithm ED25519"};
    static const char *names[] = {"RSA", "RSA", "P-521", "Ed25519"};
    for (size_t i = 0; i < 4; i++) {
        openssl_csr(keys[i], "/serialNumber=CAM001/CN=x", "", "w.csr");
        pki_csr *csr = NULL;
        ct_err_clear();
        ct_err rc = parse_file("w.csr", &csr);
        ck_assert_msg(rc == CT_ERR_WEAK_KEY, "%s: %s", keys[i], ct_err_name(rc));
        ck_assert_ptr_null(csr);
        ck_assert_msg(strstr(ct_err_detail(), names[i]), "detail '%s' does not name %s", ct_err_detail(), names[i]);
    }
}
END_TEST

START_TEST(csr_malformed)
{
    openssl_csr(EC_P256, "/serialNumber=CAM001/CN=x", "", "m.csr");
    ct_buf der = CT_BUF_INIT, big = CT_BUF_INIT;
    load("m.csr", &der);
    ck_assert_int_eq(ct_buf_alloc(&big, PKI_MAX_CSR_DER + 16), CT_OK);
    ck_assert_int_eq(ct_buf_append(&big, der.data, der.len), CT_OK);
    pki_csr *csr = NULL;
    static const uint8_t tiny[] = {0x30, 0x00}, huge_len[] = {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x00},
                         indefinite[] = {0x30, 0x80, 0x00, 0x00};
    ck_assert_int_eq(pki_csr_parse(der.data, 0, &csr), CT_ERR_BAD_CSR);
    ck_assert_int_eq(pki_csr_parse(NULL, 0, &csr), CT_ERR_BAD_CSR);
    ck_assert_int_eq(pki_csr_parse(der.data, der.len - 1, &csr), CT_ERR_BAD_CSR);
    ck_assert_int_eq(pki_csr_parse(der.data, der.len / 2, &csr), CT_ERR_BAD_CSR);
    ck_assert_int_eq(pki_csr_parse(tiny, sizeof tiny, &csr), CT_ERR_BAD_CSR);
    ck_assert_int_eq(pki_csr_parse(huge_len, sizeof huge_len, &csr), CT_ERR_BAD_CSR);
    ck_assert_int_eq(pki_csr_parse(indefinite, sizeof indefinite, &csr), CT_ERR_BAD_CSR);
    /* Trailing garbage after a valid request. */
    ck_assert_int_eq(ct_buf_append(&big, "\x00", 1), CT_OK);
    ck_assert_int_eq(pki_csr_parse(big.data, big.len, &csr), CT_ERR_BAD_CSR);
    ck_assert_msg(strstr(ct_err_detail(), "trailing"), "detail: %s", ct_err_detail());
    /* Larger than the limit, even if it were well-formed. */
    ck_assert_int_eq(pki_csr_parse(big.data, PKI_MAX_CSR_DER + 1, &csr), CT_ERR_BAD_CSR);
    /* Random bytes, with and without a plausible SEQUENCE header in front. */
    for (int i = 0; i < 200; i++) {
        uint8_t r[300];
        ck_assert_int_eq(ct_random(r, sizeof r), CT_OK);
        if (i % 2) {
            r[0] = 0x30;
            r[1] = 0x82;
            r[2] = 0x01;
            r[3] = 0x28;
        }
        ck_assert_int_eq(pki_csr_parse(r, sizeof r, &csr), CT_ERR_BAD_CSR);
    }
    /* Every truncation of a good request is refused. */
    for (size_t n = 1; n < der.len; n++) ck_assert_int_eq(pki_csr_parse(der.data, n, &csr), CT_ERR_BAD_CSR);
    ck_assert_ptr_null(csr);
    ct_buf_free(&der);
    ct_buf_free(&big);
}
END_TEST

/* ---- PKCS#7, CsrAttrs, certificate facts (openssl-made certificates) ---- */

typedef struct {
    ct_buf certs[4];
    size_t n;
} collected;

static ct_err collect(const uint8_t *der, size_t len, void *arg)
{
    collected *c = arg;
    ck_assert_uint_lt(c->n, 4);
    ck_assert_int_eq(ct_buf_alloc(&c->certs[c->n], len), CT_OK);
    ck_assert_int_eq(ct_buf_append(&c->certs[c->n], der, len), CT_OK);
    c->n++;
    return CT_OK;
}

static void collected_free(collected *c)
{
    for (size_t i = 0; i < c->n; i++) ct_buf_free(&c->certs[i]);
    c->n = 0;
}

static void openssl_selfsigned(const char *cn, const char *name)
{
    char cmd[600];
    ck_assert_int_eq(ct_snprintf(cmd, sizeof cmd,
                                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
                                 "%s.key -subj '/serialNumber=S-%s/CN=%s' -days 30 -outform DER -out %s 2>/dev/null",
                                 name, cn, cn, name),
                     CT_OK);
    ck_assert_int_eq(sh(cmd), 0);
}

START_TEST(pkcs7_roundtrip_with_openssl)
{
    openssl_selfsigned("alpha", "a.der");
    openssl_selfsigned("beta", "b.der");
    ct_buf a = CT_BUF_INIT, b = CT_BUF_INIT, p7 = CT_BUF_INIT, theirs = CT_BUF_INIT;
    load("a.der", &a);
    load("b.der", &b);
    const uint8_t *certs[] = {a.data, b.data};
    size_t lens[] = {a.len, b.len};
    ck_assert_int_eq(ct_buf_alloc(&p7, 8192), CT_OK);
    ck_assert_int_eq(pki_pkcs7_certs_only(certs, lens, 2, &p7), CT_OK);
    save("ours.p7", p7.data, p7.len);
    /* openssl reads ours, lists both in order. */
    ck_assert_int_eq(sh("openssl pkcs7 -inform DER -in ours.p7 -print_certs -out listed.pem && "
                        "grep -q '^subject=.*CN = alpha' listed.pem && grep -q '^subject=.*CN = beta' listed.pem && "
                        "grep '^subject' listed.pem | head -1 | grep -q alpha && "
                        "test $(grep -c 'BEGIN CERTIFICATE' listed.pem) = 2"),
                     0);
    /* ...and we read ours and openssl's. */
    collected c = {0};
    ck_assert_int_eq(pki_pkcs7_certs_parse(p7.data, p7.len, collect, &c), CT_OK);
    ck_assert_uint_eq(c.n, 2);
    ck_assert_uint_eq(c.certs[0].len, a.len);
    ck_assert_mem_eq(c.certs[0].data, a.data, a.len);
    ck_assert_mem_eq(c.certs[1].data, b.data, b.len);
    collected_free(&c);
    ck_assert_int_eq(sh("openssl x509 -inform DER -in a.der -out a.pem && openssl x509 -inform DER -in b.der -out "
                        "b.pem && openssl crl2pkcs7 -nocrl -certfile b.pem -certfile a.pem -outform DER -out theirs.p7"),
                     0);
    load("theirs.p7", &theirs);
    ck_assert_int_eq(pki_pkcs7_certs_parse(theirs.data, theirs.len, collect, &c), CT_OK);
    ck_assert_uint_eq(c.n, 2);
    ck_assert_mem_eq(c.certs[0].data, b.data, b.len);
    ck_assert_mem_eq(c.certs[1].data, a.data, a.len);
    collected_free(&c);

    /* Malformed: every truncation, a trailing byte, a non-empty signerInfos, a wrong content type. */
    for (size_t n = 0; n < p7.len; n++)
        ck_assert_int_eq(pki_pkcs7_certs_parse(p7.data, n, collect, &c), CT_ERR_BAD_DER);
    collected_free(&c);
    ck_assert_int_eq(ct_buf_append(&p7, "\x00", 1), CT_OK);
    ck_assert_int_eq(pki_pkcs7_certs_parse(p7.data, p7.len, collect, &c), CT_ERR_BAD_DER);
    p7.len--;
    p7.data[p7.len - 1] = 0x01; /* signerInfos SET length 0 -> 1 without the byte: inner length error */
    ck_assert_int_eq(pki_pkcs7_certs_parse(p7.data, p7.len, collect, &c), CT_ERR_BAD_DER);
    p7.data[p7.len - 1] = 0x00;
    p7.data[p7.len - 2] = 0x30; /* signerInfos not a SET */
    ck_assert_int_eq(pki_pkcs7_certs_parse(p7.data, p7.len, collect, &c), CT_ERR_BAD_DER);
    p7.data[p7.len - 2] = 0x31;
    uint8_t *oid = memmem(p7.data, p7.len, "\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02", 9);
    ck_assert_ptr_nonnull(oid);
    oid[8] = 0x03; /* envelopedData */
    collected_free(&c);
    ck_assert_int_eq(pki_pkcs7_certs_parse(p7.data, p7.len, collect, &c), CT_ERR_BAD_DER);
    oid[8] = 0x02;
    ck_assert_int_eq(pki_pkcs7_certs_parse(p7.data, p7.len, collect, &c), CT_OK);
    collected_free(&c);
    ct_buf_free(&a);
    ct_buf_free(&b);
    ct_buf_free(&p7);
    ct_buf_free(&theirs);
}
END_TEST

START_TEST(csrattrs_der)
{
    ct_buf d = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&d, 64), CT_OK);
    ck_assert_int_eq(pki_csrattrs(&d), CT_OK);
    static const uint8_t want[] = {0x30, 0x0f, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04,
                                   0x03, 0x02, 0x06, 0x03, 0x55, 0x04, 0x05};
    ck_assert_uint_eq(d.len, sizeof want);
    ck_assert_mem_eq(d.data, want, sizeof want);
    save("attrs.der", d.data, d.len);
    ck_assert_int_eq(sh("openssl asn1parse -inform DER -in attrs.der > attrs.txt && grep -q ecdsa-with-SHA256 "
                        "attrs.txt && grep -q serialNumber attrs.txt"),
                     0);
    ct_buf_free(&d);
}
END_TEST

START_TEST(cert_info_openssl)
{
    openssl_selfsigned("gamma", "g.der");
    ct_buf der = CT_BUF_INIT, pub = CT_BUF_INIT, ser = CT_BUF_INIT;
    load("g.der", &der);
    pki_cert_info info;
    ck_assert_int_eq(pki_cert_parse_info(der.data, der.len, &info), CT_OK);
    ck_assert_str_eq(info.subject_cn, "gamma");
    ck_assert_str_eq(info.issuer_cn, "gamma");
    ck_assert_str_eq(info.subject_serial, "S-gamma");
    ck_assert(info.is_ca); /* openssl req -x509 adds CA:TRUE */
    ck_assert_int_eq(info.not_after - info.not_before, 30 * 86400);
    ck_assert_int_le(labs((long)(info.not_before - time(NULL))), 120);
    ck_assert_int_eq(sh("openssl x509 -inform DER -in g.der -noout -serial | cut -d= -f2 | tr -d '\\n' > ser.txt && "
                        "openssl x509 -inform DER -in g.der -noout -pubkey | openssl pkey -pubin -outform DER -out "
                        "g.pub"),
                     0);
    load("ser.txt", &ser);
    ck_assert_uint_eq(ser.len, strlen(info.serial_hex));
    ck_assert_int_eq(strncasecmp((const char *)ser.data, info.serial_hex, ser.len), 0);
    load("g.pub", &pub);
    uint8_t h[32], whole[32];
    ck_assert_int_eq(ct_sha256(pub.data, pub.len, h), CT_OK);
    ck_assert_mem_eq(info.spki_sha256, h, 32);
    ck_assert_int_eq(ct_sha256(der.data, der.len, whole), CT_OK);
    ck_assert_mem_eq(info.cert_sha256, whole, 32);
    /* Outside input: framing errors are refused. */
    ck_assert_int_eq(pki_cert_parse_info(der.data, der.len - 1, &info), CT_ERR_BAD_DER);
    ck_assert_int_eq(pki_cert_parse_info(der.data, 0, &info), CT_ERR_BAD_DER);
    ck_assert_int_eq(pki_cert_parse_info(der.data, PKI_MAX_CERT_DER + 1, &info), CT_ERR_BAD_DER);
    ct_buf_free(&der);
    ct_buf_free(&pub);
    ct_buf_free(&ser);
}
END_TEST

/* ---- signing with token keys ---- */

static hsm *tok;

static void public_der(hsm_key *k, ct_buf *spki)
{
    ck_assert_int_eq(ct_buf_alloc(spki, 512), CT_OK);
    ck_assert_int_eq(hsm_key_public_der(k, spki), CT_OK);
}

static void setup_token(void)
{
    setup_dir();
    tu_softhsm_token(dir, "pki-test");
    char pin[] = TU_PIN;
    hsm_config cfg = {.module_path = NULL, .token_label = "pki-test", .pin = pin, .session_pool = 2};
    ct_err rc = hsm_open(&cfg, &tok);
    ck_assert_msg(rc == CT_OK, "hsm_open: %s %s", ct_err_name(rc), ct_err_detail());
}

static void teardown_token(void)
{
    hsm_close(tok);
    tok = NULL;
}

static hsm_key *genkey(hsm_key_type type, const char *label)
{
    hsm_key *k = NULL;
    uint8_t id[8] = {0};
    ck_assert_int_eq(ct_snprintf((char *)id, sizeof id, "%.7s", label), CT_OK);
    ct_err rc = hsm_key_generate(tok, type, label, id, strlen((char *)id), &k);
    ck_assert_msg(rc == CT_OK, "hsm_key_generate: %s %s", ct_err_name(rc), ct_err_detail());
    return k;
}

/* A request for token key `k` (CN "camera 1", serialNumber CAM-0001; `challenge` NULL: none) in `der` and `name`. */
static void token_csr(hsm_key *k, const char *challenge, const char *name, ct_buf *der)
{
    if (!der->data) ck_assert_int_eq(ct_buf_alloc(der, PKI_MAX_CSR_DER), CT_OK);
    ct_err rc = challenge ? pki_csr_make_challenged(k, "camera 1", "CAM-0001", challenge, der)
                          : pki_csr_make(k, "camera 1", "CAM-0001", der);
    ck_assert_msg(rc == CT_OK, "%s %s", ct_err_name(rc), ct_err_detail());
    save(name, der->data, der->len);
}

START_TEST(token_csr_openssl_verifies)
{
    static const hsm_key_type types[] = {HSM_EC_P256, HSM_EC_P384};
    static const char *labels[] = {"csr256", "csr384"};
    for (size_t i = 0; i < 2; i++) {
        hsm_key *k = genkey(types[i], labels[i]);
        ct_buf der = CT_BUF_INIT, spki = CT_BUF_INIT;
        token_csr(k, NULL, "tok.csr", &der);
        ck_assert_int_eq(sh("openssl req -inform DER -in tok.csr -verify -noout -subject > subj.txt 2>&1 && "
                            "grep -q 'verify OK' subj.txt && grep -q 'CN = camera 1' subj.txt && "
                            "grep -q 'serialNumber = CAM-0001' subj.txt"),
                         0);
        /* PKCS#10 version 1 is encoded as 0 (wolfSSL would write 2). */
        ck_assert_int_eq(sh("openssl req -inform DER -in tok.csr -noout -text | grep -q 'Version: 1 (0x0)'"), 0);
        ck_assert_int_eq(sh(i == 0 ? "openssl req -inform DER -in tok.csr -noout -text | grep -q ecdsa-with-SHA256"
                                   : "openssl req -inform DER -in tok.csr -noout -text | grep -q ecdsa-with-SHA384"),
                         0);
        pki_csr *csr = NULL;
        ct_err rc = pki_csr_parse(der.data, der.len, &csr);
        ck_assert_msg(rc == CT_OK, "%s %s", ct_err_name(rc), ct_err_detail());
        ck_assert_str_eq(pki_csr_subject_serial(csr), "CAM-0001");
        ck_assert_str_eq(pki_csr_subject_cn(csr), "camera 1");
        ck_assert_int_eq(pki_csr_key_type(csr), types[i]);
        public_der(k, &spki);
        size_t n;
        const uint8_t *p = pki_csr_spki(csr, &n);
        ck_assert_uint_eq(n, spki.len);
        ck_assert_mem_eq(p, spki.data, n);
        pki_csr_free(csr);
        /* Not a PrintableString: refused rather than mis-encoded. */
        ck_assert_int_eq(pki_csr_make(k, "x", "CAM_0001", &der), CT_ERR_ARG);
        ct_buf_free(&der);
        ct_buf_free(&spki);
        hsm_key_free(k);
    }
}
END_TEST

static void challenge_of(const char *name, ct_err want, const char *challenge)
{
    ct_buf der = CT_BUF_INIT;
    pki_csr_asks asks;
    load(name, &der);
    ck_assert_int_eq(pki_csr_asks_get(der.data, der.len, &asks), want);
    if (want == CT_OK) ck_assert_str_eq(asks.challenge, challenge);
    if (want == CT_OK) ck_assert_uint_eq(asks.other_attributes, *challenge ? 1 : 0); /* the vault still refuses it */
    ct_buf_free(&der);
}

/* The PKCS#9 challengePassword: written signed into a token key's request (PrintableString), read back from ours and
 * openssl's (UTF8String); one that fits no Cert.challengePw is malformed. */
START_TEST(csr_challenge_password)
{
    hsm_key *k = genkey(HSM_EC_P256, "chal");
    ct_buf der = CT_BUF_INIT;
    token_csr(k, "00112233445566778899aabbccddeeff", "chal.csr", &der);
    ck_assert_int_eq(sh("openssl req -inform DER -in chal.csr -verify -noout -text 2>&1 | grep -q 'verify OK' && "
                        "openssl asn1parse -inform DER -in chal.csr | grep -A2 challengePassword | "
                        "grep -q 'PRINTABLESTRING *:00112233445566778899aabbccddeeff'"),
                     0);
    challenge_of("chal.csr", CT_OK, "00112233445566778899aabbccddeeff");
    token_csr(k, NULL, "none.csr", &der);
    challenge_of("none.csr", CT_OK, "");
    ck_assert_int_eq(sh("openssl genpkey " EC_P256 " -out o.key 2>/dev/null && "
                        "printf '[req]\\nprompt = no\\ndistinguished_name = dn\\nattributes = a\\n[dn]\\nCN = x\\n"
                        "[a]\\nchallengePassword = s3cret nonce\\n' >ok.cnf && "
                        "sed 's/= s3cret nonce/= 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/' ok.cnf >long.cnf && "
                        "openssl req -new -key o.key -config ok.cnf -outform DER -out ok.csr && "
                        "openssl req -new -key o.key -config long.cnf -outform DER -out long.csr"),
                     0);
    challenge_of("ok.csr", CT_OK, "s3cret nonce");
    challenge_of("long.csr", CT_ERR_BAD_CSR, NULL);
    ct_buf_free(&der);
    hsm_key_free(k);
}
END_TEST

/* Issues into `name` (DER and .pem) and returns the DER. */
static void issue(const pki_cert_template *t, const ct_buf *spki, const ct_buf *issuer, hsm_key *ik, const char *name,
                  ct_buf *out, pki_issued_info *info)
{
    ck_assert_int_eq(ct_buf_alloc(out, PKI_MAX_CERT_DER), CT_OK);
    ct_err rc = pki_cert_issue(t, spki->data, spki->len, issuer ? issuer->data : NULL, issuer ? issuer->len : 0, ik,
                               out, info);
    ck_assert_msg(rc == CT_OK, "issue %s: %s %s", name, ct_err_name(rc), ct_err_detail());
    char pem[64];
    ck_assert_int_eq(ct_snprintf(pem, sizeof pem, "%s.pem", name), CT_OK);
    save(name, out->data, out->len);
    save_pem(pem, "CERTIFICATE", out);
}

typedef struct {
    hsm_key *root_key, *ica_key;
    ct_buf root_spki, ica_spki, root, ica;
} ca_chain;

static void make_cas(ca_chain *c, hsm_key_type root_type)
{
    memset(c, 0, sizeof *c);
    c->root_key = genkey(root_type, "root");
    c->ica_key = genkey(HSM_EC_P256, "ica");
    public_der(c->root_key, &c->root_spki);
    public_der(c->ica_key, &c->ica_spki);
    pki_cert_template rt = {.profile = PKI_PROFILE_ROOT_CA, .cn = "Acme Root", .organization = "Acme",
                            .not_after = PKI_NOT_AFTER_FOREVER};
    issue(&rt, &c->root_spki, NULL, c->root_key, "root.der", &c->root, NULL);
    pki_cert_template it = {.profile = PKI_PROFILE_ISSUING_CA, .cn = "Acme Devices", .organization = "Acme",
                            .not_after = PKI_NOT_AFTER_FOREVER};
    issue(&it, &c->ica_spki, &c->root, c->root_key, "ica.der", &c->ica, NULL);
}

static void free_cas(ca_chain *c)
{
    hsm_key_free(c->root_key);
    hsm_key_free(c->ica_key);
    ct_buf_free(&c->root_spki);
    ct_buf_free(&c->ica_spki);
    ct_buf_free(&c->root);
    ct_buf_free(&c->ica);
}

/* A device key made by openssl, taken from its CSR as the CA would. */
static void device_spki(ct_buf *spki)
{
    openssl_csr(EC_P256, "/serialNumber=CAM001/CN=cam", "", "dev.csr");
    pki_csr *csr = NULL;
    ck_assert_int_eq(parse_file("dev.csr", &csr), CT_OK);
    size_t n;
    const uint8_t *p = pki_csr_spki(csr, &n);
    ck_assert_int_eq(ct_buf_alloc(spki, n), CT_OK);
    ck_assert_int_eq(ct_buf_append(spki, p, n), CT_OK);
    pki_csr_free(csr);
}

static void chain_test(hsm_key_type root_type)
{
    ca_chain c;
    make_cas(&c, root_type);
    ct_buf spki = CT_BUF_INIT, dev = CT_BUF_INIT;
    device_spki(&spki);
    pki_cert_template dt = {.profile = PKI_PROFILE_DEVICE_ID, .cn = "cam", .serial_number = "CAM001",
                            .organization = "Acme", .dns_names = {"cam001.devices.example", NULL},
                            .not_after = PKI_NOT_AFTER_FOREVER};
    pki_issued_info info;
    issue(&dt, &spki, &c.ica, c.ica_key, "dev.der", &dev, &info);

    /* -x509_strict: also RFC 5280's rules such as basicConstraints critical in CA certificates. */
    ck_assert_int_eq(sh("openssl verify -x509_strict -CAfile root.der.pem -untrusted ica.der.pem dev.der.pem"), 0);
    /* Without the issuing CA there is no path: the check above can fail. */
    ck_assert_int_ne(sh("openssl verify -CAfile root.der.pem dev.der.pem 2>/dev/null"), 0);
    ck_assert_int_eq(sh(root_type == HSM_EC_P384 ? "openssl x509 -in ica.der.pem -noout -text | grep -q "
                                                   "'Signature Algorithm: ecdsa-with-SHA384'"
                                                 : "openssl x509 -in ica.der.pem -noout -text | grep -q "
                                                   "'Signature Algorithm: ecdsa-with-SHA256'"),
                     0);
    ck_assert_int_eq(sh("openssl x509 -in root.der.pem -noout -text > root.txt && grep -A1 'Basic Constraints: critical' root.txt | grep -q 'CA:TRUE$' && "
                        "grep -A1 'Key Usage: critical' root.txt | grep -q 'Certificate Sign, CRL Sign' && "
                        "grep -q 'Not After : Dec 31 23:59:59 9999 GMT' root.txt && "
                        "grep -q 'Issuer: O = Acme, CN = Acme Root' root.txt"),
                     0);
    ck_assert_int_eq(sh("openssl x509 -in ica.der.pem -noout -text > ica.txt && grep -A1 'Basic Constraints: critical' ica.txt | grep -q 'CA:TRUE, pathlen:0' "
                        "&& grep -A1 'Key Usage: critical' ica.txt | grep -q 'Certificate Sign, CRL Sign' && "
                        "grep -q 'Authority Key Identifier' ica.txt && grep -q 'Subject Key Identifier' ica.txt"),
                     0);
    ck_assert_int_eq(sh("openssl x509 -in dev.der.pem -noout -text > dev.txt && "
                        "grep -A1 'X509v3 Key Usage: critical' dev.txt | grep -q 'Digital Signature$' && "
                        "grep -A1 'Extended Key Usage' dev.txt | grep -q 'TLS Web Server Authentication, TLS Web "
                        "Client Authentication' && grep -q 'DNS:cam001.devices.example' dev.txt && "
                        "grep -q 'Not After : Dec 31 23:59:59 9999 GMT' dev.txt && "
                        "grep -q 'Subject: O = Acme, CN = cam, serialNumber = CAM001' dev.txt && "
                        "! grep -q 'CA:TRUE' dev.txt"),
                     0);
    /* The serial: 16 bytes, positive (openssl prints no leading 00 and a first byte below 0x80), as returned. */
    ck_assert_int_eq(sh("openssl x509 -in dev.der.pem -noout -serial | cut -d= -f2 | tr -d '\\n' > dserial.txt"), 0);
    ct_buf ser = CT_BUF_INIT;
    load("dserial.txt", &ser);
    ck_assert_uint_eq(ser.len, 32);
    ck_assert_int_eq(strncasecmp((const char *)ser.data, info.serial_hex, 32), 0);
    ck_assert_uint_ge(info.serial[0], 0x01);
    ck_assert_uint_le(info.serial[0], 0x7f);

    pki_cert_info ci;
    ck_assert_int_eq(pki_cert_parse_info(dev.data, dev.len, &ci), CT_OK);
    ck_assert_str_eq(ci.serial_hex, info.serial_hex);
    ck_assert_str_eq(ci.subject_cn, "cam");
    ck_assert_str_eq(ci.subject_serial, "CAM001");
    ck_assert_str_eq(ci.issuer_cn, "Acme Devices");
    ck_assert_int_eq(ci.not_after, PKI_NOT_AFTER_FOREVER);
    ck_assert(!ci.is_ca);
    ck_assert_int_eq(pki_cert_parse_info(c.ica.data, c.ica.len, &ci), CT_OK);
    ck_assert(ci.is_ca);

    time_t now = time(NULL);
    ck_assert_int_eq(pki_cert_verify_signed_by(dev.data, dev.len, c.ica.data, c.ica.len, now), CT_OK);
    ck_assert_int_eq(pki_cert_verify_signed_by(c.ica.data, c.ica.len, c.root.data, c.root.len, now), CT_OK);
    ck_assert_int_eq(pki_cert_verify_signed_by(c.root.data, c.root.len, c.root.data, c.root.len, now), CT_OK);
    ck_assert_int_eq(pki_cert_verify_signed_by(dev.data, dev.len, c.root.data, c.root.len, now), CT_ERR_INTEGRITY);
    /* Before notBefore (now - 5 min by default). */
    ck_assert_int_eq(pki_cert_verify_signed_by(dev.data, dev.len, c.ica.data, c.ica.len, now - 3600),
                     CT_ERR_INTEGRITY);

    /* The PKCS#7 of the chain lists all three for openssl and for us. */
    const uint8_t *certs[] = {dev.data, c.ica.data, c.root.data};
    size_t lens[] = {dev.len, c.ica.len, c.root.len};
    ct_buf p7 = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&p7, 3 * PKI_MAX_CERT_DER), CT_OK);
    ck_assert_int_eq(pki_pkcs7_certs_only(certs, lens, 3, &p7), CT_OK);
    save("chain.p7", p7.data, p7.len);
    ck_assert_int_eq(sh("test $(openssl pkcs7 -inform DER -in chain.p7 -print_certs | grep -c '^subject=') = 3"), 0);
    collected col = {0};
    ck_assert_int_eq(pki_pkcs7_certs_parse(p7.data, p7.len, collect, &col), CT_OK);
    ck_assert_uint_eq(col.n, 3);
    ck_assert_mem_eq(col.certs[2].data, c.root.data, c.root.len);
    collected_free(&col);

    ct_buf_free(&p7);
    ct_buf_free(&ser);
    ct_buf_free(&spki);
    ct_buf_free(&dev);
    free_cas(&c);
}

START_TEST(chain_p384_root) { chain_test(HSM_EC_P384); }
END_TEST

START_TEST(chain_p256_root) { chain_test(HSM_EC_P256); }
END_TEST

START_TEST(verify_rejects_other_issuer)
{
    ca_chain c;
    make_cas(&c, HSM_EC_P256);
    /* An impostor issuing CA with the same name, under the same root, with another key. */
    hsm_key *other = genkey(HSM_EC_P256, "other");
    ct_buf other_spki = CT_BUF_INIT, other_ca = CT_BUF_INIT, spki = CT_BUF_INIT, dev = CT_BUF_INIT;
    public_der(other, &other_spki);
    pki_cert_template it = {.profile = PKI_PROFILE_ISSUING_CA, .cn = "Acme Devices", .organization = "Acme",
                            .not_after = PKI_NOT_AFTER_FOREVER};
    issue(&it, &other_spki, &c.root, c.root_key, "other.der", &other_ca, NULL);
    device_spki(&spki);
    pki_cert_template dt = {.profile = PKI_PROFILE_CLIENT, .cn = "station 1", .not_after = PKI_NOT_AFTER_FOREVER};
    issue(&dt, &spki, &other_ca, other, "st.der", &dev, NULL);
    time_t now = time(NULL);
    ck_assert_int_eq(pki_cert_verify_signed_by(dev.data, dev.len, other_ca.data, other_ca.len, now), CT_OK);
    ct_err_clear();
    ck_assert_int_eq(pki_cert_verify_signed_by(dev.data, dev.len, c.ica.data, c.ica.len, now), CT_ERR_INTEGRITY);
    ck_assert_msg(strstr(ct_err_detail(), "signature"), "detail: %s", ct_err_detail());
    ck_assert_int_ne(sh("openssl verify -CAfile root.der.pem -untrusted ica.der.pem st.der.pem 2>/dev/null"), 0);
    ck_assert_int_eq(sh("openssl verify -CAfile root.der.pem -untrusted other.der.pem st.der.pem && "
                        "openssl x509 -in st.der.pem -noout -text > st.txt && "
                        "grep -A1 'Extended Key Usage' st.txt | grep -q 'TLS Web Client Authentication$'"),
                     0);
    /* A leaf as issuer: not a CA. */
    ck_assert_int_eq(pki_cert_verify_signed_by(dev.data, dev.len, dev.data, dev.len, now), CT_ERR_INTEGRITY);
    hsm_key_free(other);
    ct_buf_free(&other_spki);
    ct_buf_free(&other_ca);
    ct_buf_free(&spki);
    ct_buf_free(&dev);
    free_cas(&c);
}
END_TEST

/* CRLs as pki_crl_make signs them (SHA-256 from a P-256 CA, SHA-384 from a P-384 one) read back by pki_crl_check:
 * the listed serial is revoked, another issuer's CRL is not this certificate's, an altered one is refused. */
static void crl_of(const ct_buf *issuer, hsm_key *key, const char *serial_hex, time_t at, ct_buf *crl)
{
    pki_revoked r = {serial_hex, at, 1};
    pki_crl_params p = {issuer->data, issuer->len, key, 7, time(NULL), time(NULL) + 3600};
    ct_err rc = pki_crl_make(&p, &r, 1, crl);
    ck_assert_msg(rc == CT_OK, "pki_crl_make: %s %s", ct_err_name(rc), ct_err_detail());
}

START_TEST(crl_check_p256_p384)
{
    ca_chain c;
    make_cas(&c, HSM_EC_P384);
    ct_buf spki = CT_BUF_INIT, dev = CT_BUF_INIT, by_ica = CT_BUF_INIT, by_root = CT_BUF_INIT;
    pki_issued_info di;
    pki_crl_status st;
    device_spki(&spki);
    pki_cert_template dt = {.profile = PKI_PROFILE_DEVICE_ID, .cn = "cam", .not_after = PKI_NOT_AFTER_FOREVER};
    issue(&dt, &spki, &c.ica, c.ica_key, "dev.der", &dev, &di);
    pki_cert_info ica_info;
    ck_assert_int_eq(pki_cert_parse_info(c.ica.data, c.ica.len, &ica_info), CT_OK);
    crl_of(&c.ica, c.ica_key, di.serial_hex, 1700000000, &by_ica);
    crl_of(&c.root, c.root_key, ica_info.serial_hex, 1700000100, &by_root);
    ck_assert_int_eq(pki_crl_check(by_ica.data, by_ica.len, c.ica.data, c.ica.len, dev.data, dev.len, &st), CT_OK);
    ck_assert(st.revoked && st.revoked_at == 1700000000 && st.next_update > st.this_update);
    /* the P-384 root's CRL (ecdsa-with-SHA384) revokes the issuing CA */
    ck_assert_int_eq(pki_crl_check(by_root.data, by_root.len, c.root.data, c.root.len, c.ica.data, c.ica.len, &st),
                     CT_OK);
    ck_assert(st.revoked && st.revoked_at == 1700000100);
    /* the root's CRL says nothing of a device certificate: another issuer's */
    ck_assert_int_eq(pki_crl_check(by_root.data, by_root.len, c.root.data, c.root.len, dev.data, dev.len, &st),
                     CT_ERR_NOT_FOUND);
    /* read whole (a node checking a stored CRL): its number, whom it lists, by its signer only */
    pki_crl_info info;
    size_t missing = 9;
    ck_assert_int_eq(pki_crl_read(by_ica.data, by_ica.len, c.ica.data, c.ica.len, &info), CT_OK);
    ck_assert(info.number == 7 && info.next_update > info.this_update);
    pki_revoked want[2] = {{di.serial_hex, 1700000000, 1}, {ica_info.serial_hex, 1700000100, 1}};
    ck_assert_int_eq(pki_crl_missing(&info, want, 1, &missing), CT_OK);
    ck_assert_uint_eq(missing, 1); /* lists the one */
    ck_assert_int_eq(pki_crl_missing(&info, want, 2, &missing), CT_OK);
    ck_assert_uint_eq(missing, 1); /* not the other */
    ck_assert_int_eq(pki_crl_read(by_ica.data, by_ica.len, c.root.data, c.root.len, &info), CT_ERR_NOT_FOUND);
    /* an altered signature; trailing bytes after the CRL */
    by_ica.data[by_ica.len - 3] ^= 1;
    ck_assert_int_eq(pki_crl_read(by_ica.data, by_ica.len, c.ica.data, c.ica.len, &info), CT_ERR_INTEGRITY);
    ck_assert_int_eq(pki_crl_check(by_ica.data, by_ica.len, c.ica.data, c.ica.len, dev.data, dev.len, &st),
                     CT_ERR_INTEGRITY);
    by_ica.data[by_ica.len - 3] ^= 1;
    ck_assert_int_eq(pki_crl_check(by_ica.data, by_ica.len - 1, c.ica.data, c.ica.len, dev.data, dev.len, &st),
                     CT_ERR_BAD_DER);
    ct_buf_free(&spki);
    ct_buf_free(&dev);
    ct_buf_free(&by_ica);
    ct_buf_free(&by_root);
    free_cas(&c);
}
END_TEST

/* pki_crl_supersedes, the rule for a root's CRL replacing the one taken before (camtrust-ca install, the station's
 * ca.root_crl): the same CRL again, or a higher number listing all the earlier one lists; never a lower or equal
 * number, nor a higher one that leaves an entry out (a serial with its DER sign byte too); a CRL taken before that
 * is not the issuer's is no bar. */
static void crl_numbered(const ca_chain *c, uint64_t number, const pki_revoked *list, size_t n, ct_buf *crl)
{
    pki_crl_params p = {c->root.data, c->root.len, c->root_key, number, time(NULL), time(NULL) + 3600};
    ct_err rc = pki_crl_make(&p, list, n, crl);
    ck_assert_msg(rc == CT_OK, "pki_crl_make: %s %s", ct_err_name(rc), ct_err_detail());
}

#define SUPERSEDES(now, was) \
    pki_crl_supersedes((now)->data, (now)->len, (was)->data, (was)->len, c.root.data, c.root.len)

START_TEST(crl_supersedes)
{
    ca_chain c;
    make_cas(&c, HSM_EC_P256);
    pki_revoked list[2] = {{"0a", 1700000000, 1}, {"8b01", 1700000100, 1}}; /* 8b01: DER INTEGER 00 8b 01 */
    ct_buf one = CT_BUF_INIT, two = CT_BUF_INIT, cut = CT_BUF_INIT, again = CT_BUF_INIT, three = CT_BUF_INIT,
           none = CT_BUF_INIT, other = CT_BUF_INIT;
    crl_numbered(&c, 3, list, 1, &one);
    crl_numbered(&c, 4, list, 2, &two);
    crl_numbered(&c, 5, list, 1, &cut);   /* 8b01 left out */
    crl_numbered(&c, 4, list, 2, &again); /* the same number and list, signed anew */
    crl_numbered(&c, 6, list, 2, &three);
    crl_of(&c.ica, c.ica_key, "0a", 1700000000, &other); /* the issuing CA's, not the root's */
    ck_assert_int_eq(SUPERSEDES(&one, &one), CT_OK);
    ck_assert_int_eq(SUPERSEDES(&two, &one), CT_OK);
    ck_assert_int_eq(SUPERSEDES(&three, &two), CT_OK);
    ck_assert_int_eq(SUPERSEDES(&one, &none), CT_OK);
    ck_assert_int_eq(SUPERSEDES(&one, &other), CT_OK);
    ck_assert_int_eq(SUPERSEDES(&one, &two), CT_ERR_INTEGRITY);
    ck_assert_str_eq(ct_err_detail(), "its cRLNumber 3 is not above the earlier one's, 4");
    ck_assert_int_eq(SUPERSEDES(&again, &two), CT_ERR_INTEGRITY);
    ck_assert_int_eq(SUPERSEDES(&cut, &two), CT_ERR_INTEGRITY);
    ck_assert_str_eq(ct_err_detail(), "it no longer revokes serial 8b01, which the earlier one revokes");
    ct_buf_free(&one);
    ct_buf_free(&two);
    ct_buf_free(&cut);
    ct_buf_free(&again);
    ct_buf_free(&three);
    ct_buf_free(&other);
    free_cas(&c);
}
END_TEST

START_TEST(issue_dates_and_refusals)
{
    ca_chain c;
    make_cas(&c, HSM_EC_P256);
    ct_buf spki = CT_BUF_INIT, out = CT_BUF_INIT, rsa = CT_BUF_INIT;
    device_spki(&spki);
    /* RFC 5280: UTCTime through 2049, GeneralizedTime from 2050; explicit notBefore is kept. */
    static const struct {
        time_t nb, na;
        const char *check;
    } dates[] = {
        {946684800, 2524607999, "grep -q 'UTCTIME.*:000101000000Z' a.txt && grep -q 'UTCTIME.*:491231235959Z' a.txt"},
        {946684800, 2524608000, "grep -q 'GENERALIZEDTIME.*:20500101000000Z' a.txt"},
    };
    for (size_t i = 0; i < 2; i++) {
        pki_cert_template t = {.profile = PKI_PROFILE_TLS_SERVER, .cn = "ca.example", .dns_names = {"ca.example"},
                               .ip_addrs = {"192.0.2.7"}, .not_before = dates[i].nb, .not_after = dates[i].na};
        issue(&t, &spki, &c.ica, c.ica_key, "t.der", &out, NULL);
        ck_assert_int_eq(sh("openssl asn1parse -inform DER -in t.der > a.txt"), 0);
        ck_assert_int_eq(sh(dates[i].check), 0);
        ck_assert_int_eq(sh("openssl x509 -in t.der.pem -noout -text > t.txt && "
                            "grep -q 'DNS:ca.example, IP Address:192.0.2.7' t.txt && "
                            "grep -A1 'Extended Key Usage' t.txt | grep -q 'TLS Web Server Authentication$'"),
                         0);
        pki_cert_info ci;
        ck_assert_int_eq(pki_cert_parse_info(out.data, out.len, &ci), CT_OK);
        ck_assert_int_eq(ci.not_before, dates[i].nb);
        ck_assert_int_eq(ci.not_after, dates[i].na);
        ck_assert_int_eq(pki_cert_verify_signed_by(out.data, out.len, c.ica.data, c.ica.len, dates[i].na), CT_OK);
        ck_assert_int_eq(pki_cert_verify_signed_by(out.data, out.len, c.ica.data, c.ica.len, dates[i].na + 1),
                         CT_ERR_INTEGRITY);
        ct_buf_free(&out);
    }
    ck_assert_int_eq(ct_buf_alloc(&out, PKI_MAX_CERT_DER), CT_OK);
    pki_cert_template t = {.profile = PKI_PROFILE_DEVICE_ID, .cn = "cam", .not_after = PKI_NOT_AFTER_FOREVER};
    /* Signing key and issuer certificate disagree. */
    ck_assert_int_eq(pki_cert_issue(&t, spki.data, spki.len, c.ica.data, c.ica.len, c.root_key, &out, NULL),
                     CT_ERR_ARG);
    /* A root whose subject key is not the signing key. */
    t.profile = PKI_PROFILE_ROOT_CA;
    ck_assert_int_eq(pki_cert_issue(&t, spki.data, spki.len, NULL, 0, c.root_key, &out, NULL), CT_ERR_ARG);
    /* A SAN on a profile without one; an RSA subject key. */
    t.profile = PKI_PROFILE_CLIENT;
    t.dns_names[0] = "x.example";
    ck_assert_int_eq(pki_cert_issue(&t, spki.data, spki.len, c.ica.data, c.ica.len, c.ica_key, &out, NULL),
                     CT_ERR_ARG);
    t.dns_names[0] = NULL;
    ck_assert_int_eq(sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null | "
                        "openssl pkey -pubout -outform DER -out rsa.pub"),
                     0);
    load("rsa.pub", &rsa);
    ck_assert_int_eq(pki_cert_issue(&t, rsa.data, rsa.len, c.ica.data, c.ica.len, c.ica_key, &out, NULL),
                     CT_ERR_WEAK_KEY);
    ck_assert_int_eq(pki_cert_issue(&t, spki.data, spki.len, c.ica.data, c.ica.len, c.ica_key, &out, NULL), CT_OK);
    /* An issuer made ready once (the CA's path): it refuses what pki_cert_issue refuses, and issues alike. */
    pki_issuer *iss = NULL;
    ck_assert_int_eq(pki_issuer_open(c.ica.data, c.ica.len, c.root_key, &iss), CT_ERR_ARG); /* not its key */
    ck_assert_ptr_null(iss);
    ck_assert_int_eq(pki_issuer_open(out.data, out.len, c.ica_key, &iss), CT_ERR_ARG); /* not a CA */
    ck_assert_int_eq(pki_cert_issue_by(NULL, &t, spki.data, spki.len, &out, NULL), CT_ERR_ARG);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(pki_issuer_open(c.ica.data, c.ica.len, c.ica_key, &iss), CT_OK);
    t.dns_names[0] = "x.example";
    ck_assert_int_eq(pki_cert_issue_by(iss, &t, spki.data, spki.len, &out, NULL), CT_ERR_ARG);
    t.dns_names[0] = NULL;
    pki_issued_info first, second;
    ct_buf again = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&again, PKI_MAX_CERT_DER), CT_OK);
    ck_assert_int_eq(pki_cert_issue_by(iss, &t, spki.data, spki.len, &out, &first), CT_OK);
    ck_assert_int_eq(pki_cert_issue_by(iss, &t, spki.data, spki.len, &again, &second), CT_OK);
    ck_assert_str_ne(first.serial_hex, second.serial_hex);
    for (int i = 0; i < 2; i++) {
        const ct_buf *b = i ? &again : &out;
        ck_assert_int_eq(pki_cert_verify_signed_by(b->data, b->len, c.ica.data, c.ica.len, time(NULL)), CT_OK);
        pki_cert_info ci;
        ck_assert_int_eq(pki_cert_parse_info(b->data, b->len, &ci), CT_OK);
        ck_assert_int_eq(ci.not_before, (i ? second : first).not_before); /* the validity reported is the one written */
        ck_assert_int_eq(ci.not_after, (i ? second : first).not_after);
    }
    save("by.der", again.data, again.len);
    save_pem("by.der.pem", "CERTIFICATE", &again);
    ck_assert_int_eq(sh("openssl verify -x509_strict -CAfile root.der.pem -untrusted ica.der.pem by.der.pem"), 0);
    pki_issuer_free(iss);
    ct_buf_free(&again);
    ct_buf_free(&rsa);
    ct_buf_free(&out);
    ct_buf_free(&spki);
    free_cas(&c);
}
END_TEST

/* An Ed25519 subject key (the log's checkpoint key), signed ECDSA by a token CA: openssl reads and verifies it; a
 * malformed Ed25519 key is refused. */
START_TEST(issue_ed25519_subject)
{
    ca_chain c;
    make_cas(&c, HSM_EC_P256);
    ct_buf spki = CT_BUF_INIT, out = CT_BUF_INIT;
    ck_assert_int_eq(
        sh("openssl genpkey -algorithm ED25519 2>/dev/null | openssl pkey -pubout -outform DER -out ed.pub"), 0);
    load("ed.pub", &spki);
    ck_assert_uint_eq(spki.len, PKI_ED25519_SPKI_LEN);
    uint8_t again[PKI_ED25519_SPKI_LEN];
    ck_assert_int_eq(pki_ed25519_spki(spki.data + spki.len - PKI_ED25519_PUB_LEN, again), CT_OK);
    ck_assert_mem_eq(again, spki.data, spki.len); /* the one encoding, as openssl writes it */
    pki_cert_template t = {.profile = PKI_PROFILE_LOG_SIGNER, .cn = "Acme Log Checkpoints", .organization = "Acme",
                           .not_after = time(NULL) + 86400};
    issue(&t, &spki, &c.ica, c.ica_key, "ed.der", &out, NULL);
    ck_assert_int_eq(sh("openssl verify -x509_strict -CAfile root.der.pem -untrusted ica.der.pem ed.der.pem"), 0);
    ck_assert_int_eq(sh("openssl x509 -in ed.der.pem -noout -text > ed.txt"
                        " && grep -q 'Public Key Algorithm: ED25519' ed.txt"
                        " && grep -q 'Signature Algorithm: ecdsa-with-SHA256' ed.txt"
                        " && grep -A1 'Key Usage: critical' ed.txt | grep -q 'Digital Signature$'"
                        " && openssl x509 -in ed.der.pem -noout -pubkey | openssl pkey -pubin -outform DER"
                        " | cmp - ed.pub"),
                     0);
    ck_assert_int_eq(pki_cert_verify_signed_by(out.data, out.len, c.ica.data, c.ica.len, time(NULL)), CT_OK);
    pki_cert_detail d;
    ck_assert_int_eq(pki_cert_describe(out.data, out.len, &d), CT_OK);
    ck_assert_str_eq(d.key_type, "Ed25519");
    const uint8_t *p = NULL;
    size_t n = 0;
    ck_assert_int_eq(pki_cert_spki(out.data, out.len, &p, &n), CT_OK);
    ck_assert_mem_eq(p, spki.data, spki.len);
    /* Malformed: the key one byte short (lengths fixed up), parameters after the OID. */
    static const uint8_t short_key[] = {0x30, 0x29, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x20, 0x00,
                                        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                        21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    static const uint8_t with_params[] = {0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00, 0x03,
                                          0x21, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                                          18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    ck_assert_int_eq(pki_cert_issue(&t, short_key, sizeof short_key, c.ica.data, c.ica.len, c.ica_key, &out, NULL),
                     CT_ERR_BAD_DER);
    ck_assert_int_eq(pki_cert_issue(&t, with_params, sizeof with_params, c.ica.data, c.ica.len, c.ica_key, &out, NULL),
                     CT_ERR_WEAK_KEY);
    ck_assert_uint_eq(out.len, 0);
    ct_buf_free(&out);
    ct_buf_free(&spki);
    free_cas(&c);
}
END_TEST

/* The CA's path: the proof of possession verified inside the token (pki_csr_parse_in). An attacker who sends a
 * request for a key it does not hold (another key's SPKI put in a signed request), a broken signature, a signed
 * field changed after signing, or a point off the curve is refused as bad input (4xx), never issued. */
START_TEST(csr_pop_verified_in_token)
{
    static const struct {
        const char *key;
        const char *digest;
        hsm_key_type type;
    } cases[] = {{EC_P256, "-sha256", HSM_EC_P256}, {EC_P256, "-sha384", HSM_EC_P256},
                 {EC_P384, "-sha384", HSM_EC_P384}, {EC_P384, "-sha512", HSM_EC_P384}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        openssl_csr(cases[i].key, "/serialNumber=CAM001/CN=x", cases[i].digest, "a.csr");
        openssl_csr(cases[i].key, "/serialNumber=CAM001/CN=x", cases[i].digest, "b.csr");
        ct_buf a = CT_BUF_INIT, b = CT_BUF_INIT;
        load("a.csr", &a);
        load("b.csr", &b);
        pki_csr *csr = NULL;
        ct_err rc = pki_csr_parse_in(a.data, a.len, tok, &csr);
        ck_assert_msg(rc == CT_OK, "%zu: %s: %s", i, ct_err_name(rc), ct_err_detail());
        ck_assert_str_eq(pki_csr_subject_serial(csr), "CAM001");
        ck_assert_int_eq(pki_csr_key_type(csr), cases[i].type);
        size_t spki_len;
        const uint8_t *spki = pki_csr_spki(csr, &spki_len);
        uint8_t *in_a = memmem(a.data, a.len, spki, spki_len);
        ck_assert_ptr_nonnull(in_a);
        pki_csr_free(csr);
        csr = NULL;
        /* b's key in a's signed request: a signature by a key the sender does not claim. */
        ck_assert_int_eq(pki_csr_parse_in(b.data, b.len, tok, &csr), CT_OK);
        const uint8_t *spki_b = pki_csr_spki(csr, &spki_len);
        ct_buf swapped = CT_BUF_INIT;
        ck_assert_int_eq(ct_buf_alloc(&swapped, a.len), CT_OK);
        ck_assert_int_eq(ct_buf_set(&swapped, a.data, a.len), CT_OK);
        memcpy(swapped.data + (in_a - a.data), spki_b, spki_len);
        pki_csr_free(csr);
        csr = NULL;
        rc = pki_csr_parse_in(swapped.data, swapped.len, tok, &csr);
        ck_assert_msg(rc == CT_ERR_CSR_SIGNATURE, "%zu: %s: %s", i, ct_err_name(rc), ct_err_detail());
        ck_assert_ptr_null(csr);
        /* The point's last byte changed: almost surely off the curve; bad input either way, never a 500. */
        swapped.data[(in_a - a.data) + spki_len - 1] ^= 0x01;
        rc = pki_csr_parse_in(swapped.data, swapped.len, tok, &csr);
        ck_assert_msg(rc == CT_ERR_BAD_CSR || rc == CT_ERR_CSR_SIGNATURE, "%zu: %s: %s", i, ct_err_name(rc),
                      ct_err_detail());
        ck_assert_ptr_null(csr);
        /* The last byte belongs to the signature's s value. */
        a.data[a.len - 1] ^= 0x01;
        rc = pki_csr_parse_in(a.data, a.len, tok, &csr);
        ck_assert_msg(rc == CT_ERR_CSR_SIGNATURE, "%zu: %s: %s", i, ct_err_name(rc), ct_err_detail());
        a.data[a.len - 1] ^= 0x01;
        /* A signed field changed after signing: CAM001 -> CAM002. */
        uint8_t *p = memmem(a.data, a.len, "CAM001", 6);
        ck_assert_ptr_nonnull(p);
        p[5] = '2';
        ck_assert_int_eq(pki_csr_parse_in(a.data, a.len, tok, &csr), CT_ERR_CSR_SIGNATURE);
        ck_assert_ptr_null(csr);
        ct_buf_free(&a);
        ct_buf_free(&b);
        ct_buf_free(&swapped);
    }
}
END_TEST

static Suite *pki_suite(void)
{
    Suite *s = suite_create("pki");
    TCase *parse = tcase_create("parse");
    tcase_add_checked_fixture(parse, setup_dir, NULL);
    tcase_add_test(parse, csr_openssl_ec_parses);
    tcase_add_test(parse, csr_extras_ignored_and_serial_optional);
    tcase_add_test(parse, csr_bad_signature);
    tcase_add_test(parse, csr_weak_keys);
    tcase_add_test(parse, csr_malformed);
    tcase_add_test(parse, pkcs7_roundtrip_with_openssl);
    tcase_add_test(parse, csrattrs_der);
    tcase_add_test(parse, cert_info_openssl);
    suite_add_tcase(s, parse);
    TCase *sign = tcase_create("sign");
    tcase_add_checked_fixture(sign, setup_token, teardown_token);
    tcase_add_test(sign, token_csr_openssl_verifies);
    tcase_add_test(sign, csr_challenge_password);
    tcase_add_test(sign, chain_p384_root);
    tcase_add_test(sign, chain_p256_root);
    tcase_add_test(sign, verify_rejects_other_issuer);
    tcase_add_test(sign, issue_dates_and_refusals);
    tcase_add_test(sign, issue_ed25519_subject);
    tcase_add_test(sign, crl_check_p256_p384);
    tcase_add_test(sign, crl_supersedes);
    tcase_add_test(sign, csr_pop_verified_in_token);
    suite_add_tcase(s, sign);
    return s;
}

int main(void) { return tu_run_suite(pki_suite()); }
