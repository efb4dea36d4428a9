/* The root vault's parts: Shamir shares (libgfshare), share files (PBKDF2 + AES-256-GCM), the PIN verifier, and
 * the ceremony record on a real SoftHSM token key. The whole commands are played by tests/integration/vault.sh. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"
#include "vault_priv.h"

static const uint8_t vault_id[VAULT_ID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static void secret_fill(uint8_t s[VAULT_SECRET_LEN])
{
    ck_assert_int_eq(ct_random(s, VAULT_SECRET_LEN), CT_OK);
}

START_TEST(shamir_any_quorum_rebuilds)
{
    uint8_t secret[VAULT_SECRET_LEN], shares[5][VAULT_SECRET_LEN], got[VAULT_SECRET_LEN];
    secret_fill(secret);
    ck_assert_int_eq(vault_shamir_split(secret, 5, 3, shares), CT_OK);
    /* every subset of the five: those of 3 or more rebuild the secret, those of 2 or fewer do not */
    for (unsigned mask = 1; mask < 32; mask++) {
        uint8_t numbers[5], picked[5][VAULT_SECRET_LEN];
        size_t n = 0;
        for (unsigned i = 0; i < 5; i++)
            if (mask & (1u << i)) {
                numbers[n] = (uint8_t)(i + 1);
                memcpy(picked[n++], shares[i], VAULT_SECRET_LEN);
            }
        ck_assert_int_eq(vault_shamir_combine(numbers, (const uint8_t(*)[VAULT_SECRET_LEN])picked, n, got), CT_OK);
        if (n >= 3)
            ck_assert_msg(memcmp(got, secret, sizeof got) == 0, "shares %x did not rebuild the secret", mask);
        else
            ck_assert_msg(memcmp(got, secret, sizeof got) != 0, "%zu shares (%x) rebuilt the secret", n, mask);
    }
    /* no share is the secret, and two splits of one secret share nothing */
    uint8_t again[5][VAULT_SECRET_LEN];
    ck_assert_int_eq(vault_shamir_split(secret, 5, 3, again), CT_OK);
    for (int i = 0; i < 5; i++) {
        ck_assert(memcmp(shares[i], secret, VAULT_SECRET_LEN) != 0);
        ck_assert(memcmp(shares[i], again[i], VAULT_SECRET_LEN) != 0);
    }
}
END_TEST

static void seal(unsigned number, const char *pass, const uint8_t share[VAULT_SECRET_LEN], ct_buf *pem)
{
    ck_assert_int_eq(ct_buf_alloc(pem, 1024), CT_OK);
    ck_assert_int_eq(vault_share_seal(vault_id, number, 2, 3, VAULT_KDF_MIN, pass, share, pem), CT_OK);
}

/* the share file's bytes (base64 decoded), changed at `at`, encoded again */
static void flip(const ct_buf *pem, size_t at, ct_buf *out)
{
    ct_buf der = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&der, 512), CT_OK);
    ck_assert_int_eq(ct_pem_decode(pem->data, pem->len, VAULT_SHARE_PEM, 0, &der), CT_OK);
    der.data[at] ^= 0x01;
    ck_assert_int_eq(ct_buf_alloc(out, 1024), CT_OK);
    ck_assert_int_eq(ct_pem_encode(VAULT_SHARE_PEM, der.data, der.len, out), CT_OK);
    ct_buf_free(&der);
}

START_TEST(share_file_round_trip)
{
    uint8_t share[VAULT_SECRET_LEN], got[VAULT_SECRET_LEN];
    ct_buf pem = CT_BUF_INIT;
    vault_share_file f;
    secret_fill(share);
    seal(2, "correct horse battery", share, &pem);
    ck_assert_ptr_null(memmem(pem.data, pem.len, "correct horse", 13));
    ck_assert_int_eq(vault_share_parse(pem.data, pem.len, &f), CT_OK);
    ck_assert_uint_eq(f.number, 2);
    ck_assert_uint_eq(f.quorum, 2);
    ck_assert_uint_eq(f.custodians, 3);
    ck_assert_uint_eq(f.iterations, VAULT_KDF_MIN);
    ck_assert_mem_eq(f.vault_id, vault_id, VAULT_ID_LEN);
    ck_assert_int_eq(vault_share_open(&f, "correct horse battery", got), CT_OK);
    ck_assert_mem_eq(got, share, VAULT_SECRET_LEN);
    ck_assert_int_eq(vault_share_open(&f, "correct horse batterz", got), CT_ERR_INTEGRITY);
    ck_assert_str_eq(ct_err_detail(), "wrong passphrase, or the share file was changed");
    ck_assert_int_eq(vault_share_open(&f, "short", got), CT_ERR_USAGE);
    ct_buf_free(&pem);
}
END_TEST

/* Every byte of the file counts: the header is GCM's additional data (a share cannot claim another number, quorum
 * or vault), the rest is ciphertext and tag. A changed iteration count is refused or fails the tag. */
START_TEST(share_file_any_changed_byte_is_refused)
{
    uint8_t share[VAULT_SECRET_LEN], got[VAULT_SECRET_LEN];
    ct_buf pem = CT_BUF_INIT;
    secret_fill(share);
    seal(1, "correct horse battery", share, &pem);
    static const size_t at[] = {0, 4, 5, 6, 7, 8, 39, 43, 44, 59, 60, 71, 72, 135, 136, 151};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        ct_buf bad = CT_BUF_INIT;
        vault_share_file f;
        flip(&pem, at[i], &bad);
        ct_err rc = vault_share_parse(bad.data, bad.len, &f);
        if (rc == CT_OK) rc = vault_share_open(&f, "correct horse battery", got);
        ck_assert_msg(rc != CT_OK, "byte %zu changed and the share still opened", at[i]);
        ct_buf_free(&bad);
    }
    ct_buf_free(&pem);
}
END_TEST

START_TEST(share_file_malformed)
{
    vault_share_file f;
    const char *junk = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    ck_assert_int_eq(vault_share_parse((const uint8_t *)junk, strlen(junk), &f), CT_ERR_BAD_REQUEST);
    const char *small = "-----BEGIN CAMTRUST VAULT SHARE-----\nQ1RWUwE=\n-----END CAMTRUST VAULT SHARE-----\n";
    ck_assert_int_eq(vault_share_parse((const uint8_t *)small, strlen(small), &f), CT_ERR_BAD_REQUEST);
    /* a share asking few KDF iterations (a weakened, forged file) is refused before any work */
    uint8_t share[VAULT_SECRET_LEN] = {0};
    ct_buf pem = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&pem, 1024), CT_OK);
    ck_assert_int_eq(vault_share_seal(vault_id, 1, 2, 3, 1000, "correct horse battery", share, &pem), CT_OK);
    ck_assert_int_eq(vault_share_parse(pem.data, pem.len, &f), CT_ERR_BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "1000 PBKDF2 iterations"));
    ct_buf_free(&pem);
}
END_TEST

START_TEST(pin_check)
{
    uint8_t secret[VAULT_SECRET_LEN], check[VAULT_CHECK_LEN], check2[VAULT_CHECK_LEN];
    secret_fill(secret);
    ck_assert_int_eq(vault_pin_check_make(secret, check), CT_OK);
    ck_assert_int_eq(vault_pin_check_make(secret, check2), CT_OK);
    ck_assert(memcmp(check, check2, sizeof check) != 0); /* salted */
    ck_assert(vault_pin_check_ok(secret, check));
    ck_assert(vault_pin_check_ok(secret, check2));
    ck_assert(memmem(check, sizeof check, secret, 8) == NULL);
    secret[63] ^= 1;
    ck_assert(!vault_pin_check_ok(secret, check));
}
END_TEST

/* ---- the ceremony record, signed by a real token key ---- */
static const char *dir;
static hsm *h;
static hsm_key *root_key, *other_key;
static ct_buf root_der, other_der;

static void self_signed(hsm_key *k, const char *cn, ct_buf *der)
{
    ct_buf spki = CT_BUF_INIT;
    pki_cert_template t = {.profile = PKI_PROFILE_ROOT_CA, .cn = cn, .not_after = time(NULL) + 86400};
    ck_assert_int_eq(ct_buf_alloc(&spki, 1024), CT_OK);
    ck_assert_int_eq(hsm_key_public_der(k, &spki), CT_OK);
    ck_assert_int_eq(ct_buf_alloc(der, PKI_MAX_CERT_DER), CT_OK);
    ck_assert_int_eq(pki_cert_issue(&t, spki.data, spki.len, NULL, 0, k, der, NULL), CT_OK);
    ct_buf_free(&spki);
}

static void setup_token(void)
{
    char pin[] = TU_PIN;
    dir = tu_tmpdir("vault");
    tu_softhsm_token(dir, "vault-test");
    hsm_config c = {.token_label = "vault-test", .pin = pin};
    ck_assert_int_eq(hsm_open(&c, &h), CT_OK);
    ck_assert_int_eq(hsm_key_generate(h, HSM_EC_P256, "device-root", (const uint8_t *)"\x7a\x01", 2, &root_key), CT_OK);
    ck_assert_int_eq(hsm_key_generate(h, HSM_EC_P384, "ops-root", (const uint8_t *)"\x7a\x02", 2, &other_key), CT_OK);
    self_signed(root_key, "device root", &root_der);
    self_signed(other_key, "ops root", &other_der);
}

static void teardown_token(void)
{
    hsm_key_free(root_key);
    hsm_key_free(other_key);
    hsm_close(h);
    ct_buf_free(&root_der);
    ct_buf_free(&other_der);
}

static ct_err read_record(vault_record *r)
{
    return vault_record_read(dir, (vault_cert_ref){root_der.data, root_der.len},
                             (vault_cert_ref){other_der.data, other_der.len}, r);
}

static void write_record(const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, VAULT_RECORD_FILE);
    ck_assert_int_eq(ct_file_write_atomic(path, text, strlen(text), 0644), CT_OK);
}

/* three entries: init (device), sign (ops, a CN with spaces), crl (device) */
static void make_record(char *text, size_t max)
{
    vault_record r;
    memset(&r, 0, sizeof r);
    char cn[128];
    ck_assert_int_eq(vault_field_escape("Acme Device Issuing CA 100%\n", cn, sizeof cn), CT_OK);
    ck_assert_str_eq(cn, "Acme%20Device%20Issuing%20CA%20100%25%0A");
    char fields[256];
    snprintf(fields, sizeof fields, "serial=0a cn=%s shares=1,3", cn);
    ck_assert_int_eq(vault_record_append(dir, &r, root_key, "device", "init", "custodians=3"), CT_OK);
    ck_assert_int_eq(vault_record_append(dir, &r, other_key, "ops", "sign", fields), CT_OK);
    ck_assert_int_eq(vault_record_append(dir, &r, root_key, "device", "crl", ""), CT_OK);
    ck_assert_uint_eq(r.entries, 3);
    ck_assert_uint_lt(r.text.len, max);
    memcpy(text, r.text.data, r.text.len);
    text[r.text.len] = '\0';
    vault_record_free(&r);
}

START_TEST(record_verifies)
{
    char text[8192], value[128];
    vault_record r;
    make_record(text, sizeof text);
    ck_assert_int_eq(read_record(&r), CT_OK);
    ck_assert_uint_eq(r.entries, 3);
    char *second = strchr(text, '\n') + 1;
    *strchr(second, '\n') = '\0';
    ck_assert(vault_entry_get(second, "cn", value, sizeof value));
    ck_assert_str_eq(value, "Acme%20Device%20Issuing%20CA%20100%25%0A");
    ck_assert(vault_entry_get(second, "root", value, sizeof value));
    ck_assert_str_eq(value, "ops");
    ck_assert(!vault_entry_get(second, "absent", value, sizeof value));
    vault_record_free(&r);
}
END_TEST

/* Each way of changing the record is caught, and named. */
START_TEST(record_tampering_is_caught)
{
    char text[8192], bad[8192];
    vault_record r;
    make_record(text, sizeof text);
    char *l2 = strchr(text, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    size_t n1 = (size_t)(l2 - text), n2 = (size_t)(l3 - l2), n3 = strlen(l3);
    static const struct {
        const char *what, *detail;
    } cases[] = {
        {"edited", "entry 2: the ops root's signature does not verify"},
        {"deleted", "entry 2: out of sequence"},
        {"reordered", "entry 2: out of sequence"},
        {"last cut short", "cut short"},
        {"signer swapped", "entry 2: the device root's signature does not verify"},
        {"first removed", "entry 1: out of sequence"},
        {"replayed", "entry 3: out of sequence"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bad[0] = '\0';
        if (i == 0) { /* shares=1,3 -> 1,2 */
            snprintf(bad, sizeof bad, "%s", text);
            char *s = strstr(bad, "shares=1,3");
            s[9] = '2';
        } else if (i == 1) {
            snprintf(bad, sizeof bad, "%.*s%s", (int)n1, text, l3);
        } else if (i == 2) {
            snprintf(bad, sizeof bad, "%.*s%s%.*s", (int)n1, text, l3, (int)n2, l2);
        } else if (i == 3) {
            snprintf(bad, sizeof bad, "%.*s", (int)(strlen(text) - 1), text);
        } else if (i == 4) {
            snprintf(bad, sizeof bad, "%s", text);
            char *s = strstr(bad, "root=ops");
            memcpy(s, "root=dev", 8); /* "root=device" would not fit: the line would not parse as device */
            memmove(s + 11, s + 8, strlen(s + 8) + 1);
            memcpy(s + 8, "ice", 3);
        } else if (i == 5) {
            snprintf(bad, sizeof bad, "%s", l2);
        } else {
            snprintf(bad, sizeof bad, "%.*s%.*s", (int)(n1 + n2), text, (int)n2, l2);
        }
        (void)n3;
        write_record(bad);
        ck_assert_msg(read_record(&r) == CT_ERR_INTEGRITY, "%s record accepted", cases[i].what);
        ck_assert_msg(strstr(ct_err_detail(), cases[i].detail), "%s: '%s'", cases[i].what, ct_err_detail());
    }
    /* against another vault's roots, the intact record does not verify either */
    write_record(text);
    ck_assert_int_eq(vault_record_read(dir, (vault_cert_ref){other_der.data, other_der.len},
                                       (vault_cert_ref){root_der.data, root_der.len}, &r),
                     CT_ERR_INTEGRITY);
    ck_assert_int_eq(read_record(&r), CT_OK);
    vault_record_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vault");
    TCase *shares = tcase_create("shares");
    tcase_set_timeout(shares, 60);
    tcase_add_test(shares, shamir_any_quorum_rebuilds);
    tcase_add_test(shares, share_file_round_trip);
    tcase_add_test(shares, share_file_any_changed_byte_is_refused);
    tcase_add_test(shares, share_file_malformed);
    tcase_add_test(shares, pin_check);
    suite_add_tcase(s, shares);
    TCase *record = tcase_create("record");
    tcase_add_checked_fixture(record, setup_token, teardown_token);
    tcase_add_test(record, record_verifies);
    tcase_add_test(record, record_tampering_is_caught);
    suite_add_tcase(s, record);
    return tu_run_suite(s);
}
