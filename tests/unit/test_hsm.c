/* hsm against a real SoftHSM token: keys are made and used inside the token and cannot be read out. */
#define _GNU_SOURCE
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hsm_priv.h" /* the PKCS#11 types and the constants wolfSSL's pkcs11.h lacks */
#include "test_util.h"

#define TOKEN "T1"

static const char *g_dir;
static hsm *g_h;

static hsm *open_token(const char *label, const char *pin)
{
    hsm_config cfg = {NULL, label, pin, 0};
    hsm *h = NULL;
    ct_err rc = hsm_open(&cfg, &h);
    ck_assert_msg(rc == CT_OK, "hsm_open: %s (%s)", ct_err_name(rc), ct_err_detail());
    return h;
}

/* Checked fixture: runs in the forked test process, so PKCS#11 state never crosses a fork. */
static void setup(void)
{
    g_dir = tu_tmpdir("hsm");
    tu_softhsm_token(g_dir, TOKEN);
    g_h = open_token(TOKEN, TU_PIN);
}

static void teardown(void)
{
    hsm_close(g_h);
    g_h = NULL;
}

static hsm_key *gen(hsm_key_type t, const char *label, uint8_t id0)
{
    uint8_t id[3] = {0x01, 0x02, id0};
    hsm_key *k = NULL;
    ct_err rc = hsm_key_generate(g_h, t, label, id, sizeof id, &k);
    ck_assert_msg(rc == CT_OK, "generate: %s (%s)", ct_err_name(rc), ct_err_detail());
    return k;
}

static void spki_key(const hsm_key *k, ecc_key *pub)
{
    ct_buf spki = CT_BUF_INIT;
    word32 idx = 0;
    ck_assert_int_eq(ct_buf_alloc(&spki, 512), CT_OK);
    ck_assert_int_eq(hsm_key_public_der(k, &spki), CT_OK);
    ck_assert_int_eq(wc_ecc_init(pub), 0);
    ck_assert_int_eq(wc_EccPublicKeyDecode(spki.data, &idx, pub, (word32)spki.len), 0);
    ct_buf_free(&spki);
}

static int verify(ecc_key *pub, const uint8_t *sig, size_t sig_len, const uint8_t *digest, size_t digest_len)
{
    int ok = 0;
    ck_assert_int_eq(wc_ecc_verify_hash(sig, (word32)sig_len, digest, (word32)digest_len, &ok, pub), 0);
    return ok;
}

static void random_bytes(uint8_t *p, size_t n) { ck_assert_int_eq(ct_random(p, n), CT_OK); }

/* Signs a random digest in the token and checks it verifies only for that digest. */
static void sign_and_verify(hsm_key *k, size_t digest_len)
{
    uint8_t digest[48], sig[128];
    size_t sig_len = sizeof sig;
    ecc_key pub;
    random_bytes(digest, digest_len);
    ct_err rc = hsm_key_sign_digest(k, digest, digest_len, sig, &sig_len);
    ck_assert_msg(rc == CT_OK, "sign: %s (%s)", ct_err_name(rc), ct_err_detail());
    spki_key(k, &pub);
    ck_assert_int_eq(verify(&pub, sig, sig_len, digest, digest_len), 1);
    digest[0] ^= 1;
    ck_assert_int_eq(verify(&pub, sig, sig_len, digest, digest_len), 0);
    wc_ecc_free(&pub);
}

static void same_public(const hsm_key *a, const hsm_key *b)
{
    ct_buf x = CT_BUF_INIT, y = CT_BUF_INIT;
    ck_assert_int_eq(hsm_key_public_der(a, &x), CT_OK);
    ck_assert_int_eq(hsm_key_public_der(b, &y), CT_OK);
    ck_assert_uint_eq(x.len, y.len);
    ck_assert_mem_eq(x.data, y.data, x.len);
    ct_buf_free(&x);
    ct_buf_free(&y);
}

/* ---------------- tokens and login ---------------- */

START_TEST(test_token_create)
{
    const char *dir = tu_tmpdir("hsmtok");
    tu_softhsm_token(dir, "other"); /* only for the config; SoftHSM then offers a fresh free slot */
    ct_err rc = hsm_token_create(NULL, "fresh", "so-secret", "user-pin");
    ck_assert_msg(rc == CT_OK, "token_create: %s (%s)", ct_err_name(rc), ct_err_detail());
    ck_assert_int_eq(hsm_token_create(NULL, "fresh", "so-secret", "user-pin"), CT_ERR_EXISTS);
    hsm *h = open_token("fresh", "user-pin");
    hsm_close(h);
    hsm_config bad = {NULL, "fresh", "so-secret", 0};
    ck_assert_int_eq(hsm_open(&bad, &h), CT_ERR_HSM_LOGIN);
    ck_assert_int_eq(tu_sh("softhsm2-util --show-slots | grep -q 'Label: *fresh'"), 0);
}
END_TEST

START_TEST(test_wrong_pin)
{
    const char *dir = tu_tmpdir("hsmpin");
    tu_softhsm_token(dir, TOKEN);
    hsm_config cfg = {NULL, TOKEN, "9999wrong", 0};
    hsm *h = NULL;
    ck_assert_int_eq(hsm_open(&cfg, &h), CT_ERR_HSM_LOGIN);
    ck_assert_ptr_null(h);
    ck_assert_str_ne(ct_err_detail(), "");
    ck_assert_ptr_null(strstr(ct_err_detail(), "9999wrong"));
    hsm_close(open_token(TOKEN, TU_PIN)); /* and the right PIN still works afterwards */
}
END_TEST

START_TEST(test_unknown_token)
{
    const char *dir = tu_tmpdir("hsmlbl");
    tu_softhsm_token(dir, TOKEN);
    hsm_config cfg = {NULL, "nosuch", TU_PIN, 0};
    hsm *h = NULL;
    ck_assert_int_eq(hsm_open(&cfg, &h), CT_ERR_HSM_NO_TOKEN);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "nosuch"));
    cfg.module_path = "/nonexistent/module.so";
    cfg.token_label = TOKEN;
    ck_assert_int_eq(hsm_open(&cfg, &h), CT_ERR_HSM);
}
END_TEST

START_TEST(test_two_handles)
{
    hsm *h2 = open_token(TOKEN, TU_PIN);
    /* the token is logged in already: a wrong PIN must still be refused */
    hsm_config wrong = {NULL, TOKEN, "4321", 0};
    hsm *h3 = NULL;
    ck_assert_int_eq(hsm_open(&wrong, &h3), CT_ERR_HSM_LOGIN);
    ck_assert_ptr_null(h3);
    hsm_key *k = gen(HSM_EC_P256, "shared", 1);
    hsm_key *k2 = NULL;
    ck_assert_int_eq(hsm_key_find(h2, "shared", &k2), CT_OK);
    sign_and_verify(k2, 32);
    hsm_key_free(k);
    hsm_close(g_h); /* the other handle keeps the module and the login */
    g_h = NULL;
    sign_and_verify(k2, 32);
    hsm_key_free(k2);
    hsm_close(h2);
    g_h = open_token(TOKEN, TU_PIN); /* after the module was finalised */
    ck_assert_int_eq(hsm_key_find(g_h, "shared", &k), CT_OK);
    sign_and_verify(k, 32);
    hsm_key_free(k);
}
END_TEST

/* ---------------- keys ---------------- */

START_TEST(test_generate_sign)
{
    hsm_key *a = gen(HSM_EC_P256, "p256", 1);
    hsm_key *b = gen(HSM_EC_P384, "p384", 2);
    ck_assert_int_eq(hsm_key_get_type(a), HSM_EC_P256);
    ck_assert_int_eq(hsm_key_get_type(b), HSM_EC_P384);
    ck_assert_str_eq(hsm_key_label(b), "p384");
    sign_and_verify(a, 32);
    sign_and_verify(b, 48);
    sign_and_verify(b, 32);
    ecc_key pub;
    spki_key(b, &pub);
    ck_assert_int_eq(wc_ecc_get_curve_id(pub.idx), ECC_SECP384R1);
    wc_ecc_free(&pub);
    uint8_t digest[32] = {1}, sig[8];
    size_t sig_len = sizeof sig;
    ck_assert_int_eq(hsm_key_sign_digest(a, digest, sizeof digest, sig, &sig_len), CT_ERR_CRYPTO); /* too small */
    hsm_key_free(a);
    hsm_key_free(b);
}
END_TEST

/* hsm_verify_digest: the token's answer about a signature by a key from outside it (a CSR's proof of possession). A
 * signature by another key, over another digest, or malformed is "not valid" (and not a token failure). */
START_TEST(test_verify_digest)
{
    hsm_key *a = gen(HSM_EC_P256, "va", 1), *c = gen(HSM_EC_P256, "vc", 2), *p = gen(HSM_EC_P384, "vp", 3);
    hsm_key *keys[] = {a, c, p};
    uint8_t point[3][97];
    size_t point_len[3];
    for (size_t i = 0; i < 3; i++) {
        ct_buf spki = CT_BUF_INIT;
        ck_assert_int_eq(ct_buf_alloc(&spki, 256), CT_OK);
        ck_assert_int_eq(hsm_key_public_der(keys[i], &spki), CT_OK);
        point_len[i] = i == 2 ? 97 : 65; /* the uncompressed point ends the SPKI */
        memcpy(point[i], spki.data + spki.len - point_len[i], point_len[i]);
        ck_assert_int_eq(point[i][0], 0x04);
        ct_buf_free(&spki);
    }
    uint8_t digest[48] = {7}, sig[128];
    for (size_t i = 0; i < 3; i += 2) {
        size_t dlen = i == 2 ? 48 : 32, sig_len = sizeof sig;
        hsm_key_type t = i == 2 ? HSM_EC_P384 : HSM_EC_P256;
        ck_assert_int_eq(hsm_key_sign_digest(keys[i], digest, dlen, sig, &sig_len), CT_OK);
        bool valid = false;
        ck_assert_int_eq(hsm_verify_digest(g_h, t, point[i], point_len[i], digest, dlen, sig, sig_len, &valid), CT_OK);
        ck_assert(valid);
        digest[1] ^= 1; /* another digest */
        ck_assert_int_eq(hsm_verify_digest(g_h, t, point[i], point_len[i], digest, dlen, sig, sig_len, &valid), CT_OK);
        ck_assert(!valid);
        digest[1] ^= 1;
        sig[sig_len - 1] ^= 1; /* s changed */
        ck_assert_int_eq(hsm_verify_digest(g_h, t, point[i], point_len[i], digest, dlen, sig, sig_len, &valid), CT_OK);
        ck_assert(!valid);
        sig[sig_len - 1] ^= 1;
        ck_assert_int_eq(hsm_verify_digest(g_h, t, point[i], point_len[i], digest, dlen, sig, 3, &valid), CT_OK);
        ck_assert(!valid); /* not DER */
    }
    /* a's signature, c's key */
    size_t sig_len = sizeof sig;
    bool valid = true;
    ck_assert_int_eq(hsm_key_sign_digest(a, digest, 32, sig, &sig_len), CT_OK);
    ck_assert_int_eq(hsm_verify_digest(g_h, HSM_EC_P256, point[1], 65, digest, 32, sig, sig_len, &valid), CT_OK);
    ck_assert(!valid);
    /* The same through the keys' own public objects (hsm_key_verify_digest) */
    ck_assert_int_eq(hsm_key_verify_digest(a, digest, 32, sig, sig_len, &valid), CT_OK);
    ck_assert(valid);
    ck_assert_int_eq(hsm_key_verify_digest(c, digest, 32, sig, sig_len, &valid), CT_OK);
    ck_assert(!valid);
    digest[0] ^= 1;
    ck_assert_int_eq(hsm_key_verify_digest(a, digest, 32, sig, sig_len, &valid), CT_OK);
    ck_assert(!valid);
    digest[0] ^= 1;
    /* a P-384 point given as P-256: refused before the token */
    ck_assert_int_eq(hsm_verify_digest(g_h, HSM_EC_P256, point[2], 97, digest, 32, sig, sig_len, &valid), CT_ERR_ARG);
    hsm_key_free(a);
    hsm_key_free(c);
    hsm_key_free(p);
}
END_TEST

START_TEST(test_duplicate)
{
    hsm_key *a = gen(HSM_EC_P256, "dup", 1), *b = NULL;
    uint8_t other_id[1] = {9}, same_id[3] = {0x01, 0x02, 1};
    ck_assert_int_eq(hsm_key_generate(g_h, HSM_EC_P256, "dup", other_id, 1, &b), CT_ERR_EXISTS);
    ck_assert_int_eq(hsm_key_generate(g_h, HSM_EC_P256, "dup2", same_id, 3, &b), CT_ERR_EXISTS);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(hsm_key_generate(g_h, HSM_EC_P256, "dup2", other_id, 1, &b), CT_OK);
    hsm_key_free(a);
    hsm_key_free(b);
}
END_TEST

START_TEST(test_find)
{
    hsm_key *k = gen(HSM_EC_P256, "k one", 0xfe), *f = NULL;
    hsm_key_free(gen(HSM_EC_P256, "decoy", 0x10)); /* another key the lookups must not confuse */
    char uri[256];
    ck_assert_int_eq(hsm_key_uri(k, uri, sizeof uri), CT_OK);
    ck_assert_str_eq(uri, "pkcs11:token=T1;object=k%20one;id=%01%02%FE;type=private");
    ck_assert_int_ne(hsm_key_uri(k, uri, 20), CT_OK);

    const char *ok[] = {"k one", "pkcs11:token=T1;object=k%20one;id=%01%02%FE;type=private",
                        "pkcs11:object=k%20one;serial=123;model=x", "pkcs11:id=%01%02%fe?pin-value=1234"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ct_err rc = hsm_key_find(g_h, ok[i], &f);
        ck_assert_msg(rc == CT_OK, "find %s: %s (%s)", ok[i], ct_err_name(rc), ct_err_detail());
        ck_assert_str_eq(hsm_key_label(f), "k one");
        same_public(k, f);
        sign_and_verify(f, 32);
        hsm_key_free(f);
        f = NULL;
    }
    ck_assert_int_eq(hsm_key_find(g_h, "pkcs11:token=T2;object=k%20one", &f), CT_ERR_HSM_NO_TOKEN);
    ck_assert_int_eq(hsm_key_find(g_h, "pkcs11:object=k%20one;id=%01%02%10", &f), CT_ERR_HSM_NO_KEY);
    ck_assert_int_eq(hsm_key_find(g_h, "absent", &f), CT_ERR_HSM_NO_KEY);
    ck_assert_int_eq(hsm_key_find(g_h, "pkcs11:object=k%2", &f), CT_ERR_ARG);
    ck_assert_int_eq(hsm_key_find(g_h, "pkcs11:token=T1", &f), CT_ERR_ARG);
    ck_assert_int_eq(hsm_key_find(g_h, "pkcs11:object=k%20one;type=public", &f), CT_ERR_ARG);
    ck_assert_ptr_null(f);
    hsm_key_free(k);
}
END_TEST

START_TEST(test_persist)
{
    hsm_key *k = gen(HSM_EC_P384, "keep", 1), *f = NULL;
    ct_buf before = CT_BUF_INIT, after = CT_BUF_INIT;
    ck_assert_int_eq(hsm_key_public_der(k, &before), CT_OK);
    hsm_key_free(k);
    hsm_close(g_h);
    g_h = open_token(TOKEN, TU_PIN);
    ck_assert_int_eq(hsm_key_find(g_h, "keep", &f), CT_OK);
    ck_assert_int_eq(hsm_key_public_der(f, &after), CT_OK);
    ck_assert_uint_eq(before.len, after.len);
    ck_assert_mem_eq(before.data, after.data, before.len);
    sign_and_verify(f, 48);
    hsm_key_free(f);
    ct_buf_free(&before);
    ct_buf_free(&after);
}
END_TEST

START_TEST(test_destroy)
{
    hsm_key *k = gen(HSM_EC_P256, "gone", 7), *f = NULL;
    ck_assert_int_eq(hsm_key_destroy(g_h, k), CT_OK);
    ck_assert_int_eq(hsm_key_find(g_h, "gone", &f), CT_ERR_HSM_NO_KEY);
    ck_assert_int_eq(hsm_key_find(g_h, "pkcs11:id=%01%02%07", &f), CT_ERR_HSM_NO_KEY);
    /* the public object went too: the label is free again */
    k = gen(HSM_EC_P256, "gone", 7);
    hsm_key_free(k);
}
END_TEST

/* ---------------- the key cannot leave the token ---------------- */

static CK_BBOOL attr_bool(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t)
{
    CK_BBOOL v = 2;
    CK_ATTRIBUTE a = {t, &v, sizeof v};
    ck_assert_uint_eq(f->C_GetAttributeValue(s, o, &a, 1), CKR_OK);
    return v;
}

/* The one object of this class and label, found with the raw module. */
static CK_OBJECT_HANDLE raw_find(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)}};
    CK_OBJECT_HANDLE o;
    CK_ULONG count = 0;
    ck_assert_uint_eq(f->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
    ck_assert_uint_eq(f->C_FindObjects(s, &o, 1, &count), CKR_OK);
    ck_assert_uint_eq(f->C_FindObjectsFinal(s), CKR_OK);
    ck_assert_uint_eq(count, 1);
    return o;
}

START_TEST(test_not_extractable)
{
    hsm_key_free(gen(HSM_EC_P256, "secret", 1));
    hsm_close(g_h); /* so that the raw module use below is on its own */
    g_h = NULL;

    void *dl = dlopen(HSM_DEFAULT_MODULE, RTLD_NOW);
    ck_assert_ptr_nonnull(dl);
    CK_C_GetFunctionList gfl;
    *(void **)&gfl = dlsym(dl, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f = NULL;
    ck_assert_uint_eq(gfl(&f), CKR_OK);
    ck_assert_uint_eq(f->C_Initialize(NULL), CKR_OK);
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8, i;
    ck_assert_uint_eq(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        ck_assert_uint_eq(f->C_GetTokenInfo(slots[i], &ti), CKR_OK);
        if (memcmp(ti.label, TOKEN "                              ", 32) == 0) break;
    }
    ck_assert_uint_lt(i, n);
    CK_SESSION_HANDLE s;
    ck_assert_uint_eq(f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK);
    ck_assert_uint_eq(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK);
    CK_OBJECT_HANDLE o = raw_find(f, s, CKO_PRIVATE_KEY, "secret");

    uint8_t value[256];
    CK_ATTRIBUTE a = {CKA_VALUE, value, sizeof value};
    ck_assert_uint_eq(f->C_GetAttributeValue(s, o, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
    ck_assert_uint_eq(a.ulValueLen, (CK_ULONG)-1);
    ck_assert_uint_eq(attr_bool(f, s, o, CKA_SENSITIVE), CK_TRUE);
    ck_assert_uint_eq(attr_bool(f, s, o, CKA_EXTRACTABLE), CK_FALSE);
    ck_assert_uint_eq(attr_bool(f, s, o, CKA_TOKEN), CK_TRUE);
    ck_assert_uint_eq(attr_bool(f, s, o, CKA_PRIVATE), CK_TRUE);
    f->C_CloseSession(s);
    f->C_Finalize(NULL);
    dlclose(dl);

    /* pkcs11-tool exits 0 on EC private keys ("not (yet) supported"): judge it by what it writes out. */
    ck_assert_int_eq(tu_sh("cd '%s' && pkcs11-tool --module " HSM_DEFAULT_MODULE " --login --pin " TU_PIN
                           " --token-label " TOKEN " --read-object --label secret --type pubkey -o pub.der"
                           " >/dev/null 2>&1 && test -s pub.der",
                           g_dir),
                     0); /* the command itself works... */
    ck_assert_int_eq(tu_sh("cd '%s' && { pkcs11-tool --module " HSM_DEFAULT_MODULE " --login --pin " TU_PIN
                           " --token-label " TOKEN " --read-object --label secret --type privkey -o priv.der"
                           " >/dev/null 2>&1 || true; } && test ! -s priv.der",
                           g_dir),
                     0); /* ...but yields nothing for the private key */
}
END_TEST

/* ---------------- key usages: each key does its one job only ---------------- */

/* A P-256 public point of a software key, as an ECDH peer. */
static void peer_point(uint8_t *pt, size_t *len)
{
    WC_RNG rng;
    ecc_key peer;
    word32 n = (word32)*len;
    ck_assert_int_eq(wc_InitRng(&rng), 0);
    ck_assert_int_eq(wc_ecc_init(&peer), 0);
    ck_assert_int_eq(wc_ecc_make_key(&rng, 32, &peer), 0);
    ck_assert_int_eq(wc_ecc_export_x963(&peer, pt, &n), 0);
    *len = n;
    wc_ecc_free(&peer);
    wc_FreeRng(&rng);
}

static ct_err ecdh(hsm_key *k)
{
    uint8_t pt[HSM_EC_POINT_MAX], secret[48];
    size_t pt_len = sizeof pt, secret_len = sizeof secret;
    peer_point(pt, &pt_len);
    return hsm_ecdh_raw(g_h, k->priv, k->type, pt, pt_len, secret, &secret_len);
}

static ct_err sign(hsm_key *k)
{
    uint8_t digest[32] = {1}, sig[80];
    size_t sig_len = sizeof sig;
    return hsm_key_sign_digest(k, digest, sizeof digest, sig, &sig_len);
}

/* What C_SetAttributeValue answers when someone tries to give the key `type` = true afterwards. */
static CK_RV widen(hsm_key *k, CK_ATTRIBUTE_TYPE type)
{
    CK_SESSION_HANDLE s;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE a = {type, &yes, sizeof yes};
    ck_assert_uint_eq(g_h->f->C_OpenSession(g_h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CK_RV rv = g_h->f->C_SetAttributeValue(s, k->priv, &a, 1);
    g_h->f->C_CloseSession(s);
    return rv;
}

static ct_err pop_sign(hsm_key *k, void *arg)
{
    *(ct_err *)arg = sign(k);
    return *(ct_err *)arg;
}

static ct_err pop_fail(hsm_key *k, void *arg)
{
    (void)k;
    (void)arg;
    return ct_fail(CT_ERR_IO, "the CSR could not be written");
}

START_TEST(test_key_usages)
{
    /* A signing key signs, and the token refuses ECDH with it (C_DeriveKey), now and after any attempt to
     * widen it: SoftHSM would otherwise grant CKA_DERIVE to every key that does not deny it. */
    hsm_key *signer = gen(HSM_EC_P256, "signer", 1);
    ck_assert_int_eq(sign(signer), CT_OK);
    ck_assert_int_eq(ecdh(signer), CT_ERR_HSM);
    ck_assert_uint_ne(widen(signer, CKA_DERIVE), CKR_OK);
    ck_assert_int_eq(ecdh(signer), CT_ERR_HSM);

    /* An ECDH key without a proof of possession: derives, never signs. */
    hsm_key *agree = NULL;
    const uint8_t id2[] = {0x02, 0x02}, id3[] = {0x02, 0x03}, id4[] = {0x02, 0x04};
    ck_assert_int_eq(hsm_key_generate_ecdh(g_h, HSM_EC_P256, "agree", id2, sizeof id2, NULL, NULL, &agree), CT_OK);
    ck_assert_int_eq(ecdh(agree), CT_OK);
    ck_assert_int_eq(sign(agree), CT_ERR_HSM);
    ck_assert_uint_ne(widen(agree, CKA_SIGN), CKR_OK);
    ck_assert_int_eq(sign(agree), CT_ERR_HSM);

    /* With one: it signed inside the callback, and never after. */
    hsm_key *viewer = NULL;
    ct_err popped = CT_ERR_INTERNAL;
    ck_assert_int_eq(hsm_key_generate_ecdh(g_h, HSM_EC_P256, "viewer", id3, sizeof id3, pop_sign, &popped, &viewer),
                     CT_OK);
    ck_assert_int_eq(popped, CT_OK);
    ck_assert_int_eq(sign(viewer), CT_ERR_HSM);
    ck_assert_int_eq(ecdh(viewer), CT_OK);

    /* A failed proof of possession leaves no key behind (a key that may still sign). */
    hsm_key *lost = NULL;
    ck_assert_int_eq(hsm_key_generate_ecdh(g_h, HSM_EC_P256, "lost", id4, sizeof id4, pop_fail, NULL, &lost),
                     CT_ERR_IO);
    ck_assert_ptr_null(lost);
    ck_assert_int_eq(hsm_key_find(g_h, "lost", &lost), CT_ERR_HSM_NO_KEY);
    hsm_key_free(signer);
    hsm_key_free(agree);
    hsm_key_free(viewer);
}
END_TEST

/* ---------------- threads ---------------- */

#define N_THREADS 4
#define N_SIGS 200

static atomic_int g_good;

static void *signer(void *arg)
{
    hsm_key *k = arg;
    ecc_key pub;
    spki_key(k, &pub);
    for (int i = 0; i < N_SIGS; i++) {
        uint8_t digest[32], sig[80];
        size_t sig_len = sizeof sig;
        random_bytes(digest, sizeof digest);
        if (hsm_key_sign_digest(k, digest, sizeof digest, sig, &sig_len) == CT_OK &&
            verify(&pub, sig, sig_len, digest, sizeof digest) == 1)
            atomic_fetch_add(&g_good, 1);
    }
    wc_ecc_free(&pub);
    wc_ecc_fp_free(); /* wolfSSL's per-thread fixed-point cache */
    return NULL;
}

START_TEST(test_threads)
{
    hsm_key *k = gen(HSM_EC_P256, "busy", 1);
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, signer, k), 0);
    for (int i = 0; i < N_THREADS; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&g_good), N_THREADS * N_SIGS);
    hsm_key_free(k);
}
END_TEST

/* ---------------- wolfSSL crypto callback ---------------- */

START_TEST(test_wolf_callback)
{
    hsm_key *k = gen(HSM_EC_P256, "wolf", 1);
    int dev = hsm_wolf_dev_id(g_h);
    ck_assert_int_ne(dev, INVALID_DEVID);
    WC_RNG rng;
    ck_assert_int_eq(wc_InitRng(&rng), 0);
    ecc_key tok, pub, sw;
    ck_assert_int_eq(hsm_key_wolf_ecc(k, &tok), CT_OK);
    spki_key(k, &pub);
    uint8_t digest[32], sig[80];
    word32 sig_len = sizeof sig;
    random_bytes(digest, sizeof digest);

    /* token key: the signature comes from the token (the ecc_key has no private part to sign with) */
    ck_assert_int_eq(wc_ecc_sign_hash(digest, sizeof digest, sig, &sig_len, &rng, &tok), 0);
    ck_assert_int_eq(verify(&pub, sig, sig_len, digest, sizeof digest), 1);
    ck_assert_int_eq(verify(&tok, sig, sig_len, digest, sizeof digest), 1); /* verify: software */

    /* a software key under the same devId is still served by wolfSSL itself */
    ck_assert_int_eq(wc_ecc_init_ex(&sw, NULL, dev), 0);
    ck_assert_int_eq(wc_ecc_make_key_ex(&rng, 32, &sw, ECC_SECP256R1), 0);
    ck_assert_int_eq(wc_ecc_set_rng(&sw, &rng), 0);
    sig_len = sizeof sig;
    ck_assert_int_eq(wc_ecc_sign_hash(digest, sizeof digest, sig, &sig_len, &rng, &sw), 0);
    ck_assert_int_eq(verify(&sw, sig, sig_len, digest, sizeof digest), 1);

    /* ECDH inside the token (with a key-agreement key) agrees with software ECDH on the other side */
    hsm_key *dk = NULL;
    const uint8_t did[] = {0x0d, 0x01};
    ecc_key dtok, dpub;
    ck_assert_int_eq(hsm_key_generate_ecdh(g_h, HSM_EC_P256, "wolf-ecdh", did, sizeof did, NULL, NULL, &dk), CT_OK);
    ck_assert_int_eq(hsm_key_wolf_ecc(dk, &dtok), CT_OK);
    spki_key(dk, &dpub);
    uint8_t s1[32], s2[32];
    word32 l1 = sizeof s1, l2 = sizeof s2;
    ck_assert_int_eq(wc_ecc_shared_secret(&dtok, &sw, s1, &l1), 0);
    ck_assert_int_eq(wc_ecc_shared_secret(&sw, &dpub, s2, &l2), 0);
    ck_assert_uint_eq(l1, 32);
    ck_assert_uint_eq(l1, l2);
    ck_assert_mem_eq(s1, s2, l1);
    /* the signing key does not agree */
    l1 = sizeof s1;
    ck_assert_int_ne(wc_ecc_shared_secret(&tok, &sw, s1, &l1), 0);
    wc_ecc_free(&dtok);
    wc_ecc_free(&dpub);
    hsm_key_free(dk);

    /* a destroyed key is no longer served */
    ck_assert_int_eq(hsm_key_destroy(g_h, k), CT_OK);
    sig_len = sizeof sig;
    ck_assert_int_ne(wc_ecc_sign_hash(digest, sizeof digest, sig, &sig_len, &rng, &tok), 0);

    wc_ecc_free(&tok);
    wc_ecc_free(&pub);
    wc_ecc_free(&sw);
    wc_FreeRng(&rng);
}
END_TEST

/* ---------------- TLS 1.3 with the server key in the token ---------------- */

/* A self-signed certificate signed by the token key through the callback. */
static int make_cert(hsm_key *k, uint8_t *der, word32 der_max)
{
    Cert c;
    ecc_key tok;
    WC_RNG rng;
    ck_assert_int_eq(wc_InitRng(&rng), 0);
    ck_assert_int_eq(wc_InitCert(&c), 0);
    ck_assert_int_eq(ct_strlcpy(c.subject.commonName, sizeof c.subject.commonName, hsm_key_label(k)), CT_OK);
    c.sigType = CTC_SHA256wECDSA;
    c.daysValid = 1;
    ck_assert_int_eq(hsm_key_wolf_ecc(k, &tok), CT_OK);
    ck_assert_int_gt(wc_MakeCert(&c, der, der_max, NULL, &tok, &rng), 0);
    int n = wc_SignCert(c.bodySz, c.sigType, der, der_max, NULL, &tok, &rng);
    ck_assert_int_gt(n, 0);
    wc_ecc_free(&tok);
    wc_FreeRng(&rng);
    return n;
}

typedef struct {
    int fd, dev, cert_len, ret;
    const uint8_t *cert;
    uint8_t id[3];
    char got[6];
} tls_side;

static void *tls_server(void *arg)
{
    tls_side *t = arg;
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    WOLFSSL *ssl = NULL;
    t->ret = -1;
    if (ctx && wolfSSL_CTX_use_certificate_buffer(ctx, t->cert, t->cert_len, WOLFSSL_FILETYPE_ASN1) == 1 &&
        wolfSSL_CTX_use_PrivateKey_Id(ctx, t->id, sizeof t->id, t->dev) == 1 && (ssl = wolfSSL_new(ctx)) &&
        wolfSSL_set_fd(ssl, t->fd) == 1 && wolfSSL_accept(ssl) == 1 && wolfSSL_read(ssl, t->got, 5) == 5 &&
        wolfSSL_write(ssl, "world", 5) == 5)
        t->ret = 0;
    wolfSSL_free(ssl);
    wolfSSL_CTX_free(ctx);
    close(t->fd);
    wc_ecc_fp_free(); /* wolfSSL's per-thread fixed-point cache */
    return NULL;
}

START_TEST(test_wolf_tls)
{
    ck_assert_int_eq(wolfSSL_Init(), 1);
    hsm_key *k = gen(HSM_EC_P256, "tls", 5), *other = gen(HSM_EC_P256, "other", 6);
    uint8_t cert[2048], other_cert[2048];
    int cert_len = make_cert(k, cert, sizeof cert), other_len = make_cert(other, other_cert, sizeof other_cert);

    /* the token key does not match someone else's certificate */
    WOLFSSL_CTX *bad = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    uint8_t id[3] = {0x01, 0x02, 5};
    ck_assert_int_eq(wolfSSL_CTX_use_certificate_buffer(bad, other_cert, other_len, WOLFSSL_FILETYPE_ASN1), 1);
    ck_assert_int_eq(wolfSSL_CTX_use_PrivateKey_Id(bad, id, sizeof id, hsm_wolf_dev_id(g_h)), 1);
    ck_assert_int_ne(wolfSSL_CTX_check_private_key(bad), 1);
    ck_assert_int_eq(wolfSSL_CTX_use_certificate_buffer(bad, cert, cert_len, WOLFSSL_FILETYPE_ASN1), 1);
    ck_assert_int_eq(wolfSSL_CTX_check_private_key(bad), 1);
    wolfSSL_CTX_free(bad);

    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    tls_side srv = {sv[0], hsm_wolf_dev_id(g_h), cert_len, -1, cert, {0x01, 0x02, 5}, {0}};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, tls_server, &srv), 0);
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    ck_assert_int_eq(wolfSSL_CTX_load_verify_buffer(ctx, cert, cert_len, WOLFSSL_FILETYPE_ASN1), 1);
    WOLFSSL *ssl = wolfSSL_new(ctx);
    ck_assert_int_eq(wolfSSL_set_fd(ssl, sv[1]), 1);
    int ok = wolfSSL_connect(ssl);
    char buf[6] = {0};
    if (ok == 1) ok = wolfSSL_write(ssl, "hello", 5) == 5 && wolfSSL_read(ssl, buf, 5) == 5;
    wolfSSL_free(ssl);
    wolfSSL_CTX_free(ctx);
    close(sv[1]);
    pthread_join(th, NULL);
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(srv.ret, 0);
    ck_assert_str_eq(srv.got, "hello");
    ck_assert_str_eq(buf, "world");
    hsm_key_free(k);
    hsm_key_free(other);
    wolfSSL_Cleanup();
}
END_TEST

/* ---------------- issue 11: HMAC keys (hsm_mac.c) ---------------- */

static void mac_of(hsm_mac_key *k, const char *msg, uint8_t out[HSM_MAC_LEN])
{
    ct_err rc = hsm_mac_sign(k, (const uint8_t *)msg, strlen(msg), out);
    ck_assert_msg(rc == CT_OK, "hsm_mac_sign: %s", ct_err_detail());
}

START_TEST(test_mac_key)
{
    const uint8_t id1[] = {0x0a, 1}, id2[] = {0x0a, 2};
    hsm_mac_key *k = NULL, *k2 = NULL, *f = NULL;
    hsm_key *priv = NULL;
    uint8_t a[HSM_MAC_LEN], b[HSM_MAC_LEN], c[HSM_MAC_LEN];
    ck_assert_int_eq(hsm_mac_key_generate(g_h, "mac1", id1, sizeof id1, &k), CT_OK);
    ck_assert_int_eq(hsm_mac_key_generate(g_h, "mac1", id2, sizeof id2, &k2), CT_ERR_EXISTS);
    ck_assert_int_eq(hsm_mac_key_generate(g_h, "mac2", id1, sizeof id1, &k2), CT_ERR_EXISTS);
    ck_assert_int_eq(hsm_mac_key_generate(g_h, "mac2", id2, sizeof id2, &k2), CT_OK);
    mac_of(k, "entry 1", a);
    mac_of(k, "entry 1", b);
    ck_assert_mem_eq(a, b, HSM_MAC_LEN);
    mac_of(k, "entry 2", b);
    ck_assert(memcmp(a, b, HSM_MAC_LEN) != 0);
    mac_of(k2, "entry 1", b);
    ck_assert(memcmp(a, b, HSM_MAC_LEN) != 0); /* another key, another MAC */
    /* Found again by URI or label (another process would), it is the same key. */
    const char *const names[] = {"pkcs11:object=mac1;type=secret-key", "pkcs11:id=%0a%01;type=secret-key", "mac1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ck_assert_int_eq(hsm_mac_key_find(g_h, names[i], &f), CT_OK);
        mac_of(f, "entry 1", c);
        ck_assert_mem_eq(a, c, HSM_MAC_LEN);
        hsm_mac_key_free(f);
    }
    ck_assert_int_eq(hsm_mac_key_find(g_h, "pkcs11:object=mac1;type=private", &f), CT_ERR_ARG);
    ck_assert_int_eq(hsm_mac_key_find(g_h, "pkcs11:object=mac3;type=secret-key", &f), CT_ERR_HSM_NO_KEY);
    ck_assert_int_eq(hsm_key_find(g_h, "mac1", &priv), CT_ERR_HSM_NO_KEY); /* not a private key */
    ck_assert_int_eq(hsm_key_find(g_h, "pkcs11:object=mac1;type=secret-key", &priv), CT_ERR_ARG);
    hsm_mac_key_free(k2);

    /* The secret stays in the token and does nothing but MACs; nobody widens it. */
    CK_FUNCTION_LIST_PTR fl = g_h->f;
    CK_SESSION_HANDLE s;
    ck_assert_uint_eq(fl->C_OpenSession(g_h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK);
    CK_OBJECT_HANDLE o = raw_find(fl, s, CKO_SECRET_KEY, "mac1");
    uint8_t value[64];
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof value};
    ck_assert_uint_eq(fl->C_GetAttributeValue(s, o, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
    ck_assert_uint_eq(attr_bool(fl, s, o, CKA_SENSITIVE), CK_TRUE);
    ck_assert_uint_eq(attr_bool(fl, s, o, CKA_EXTRACTABLE), CK_FALSE);
    ck_assert_uint_eq(attr_bool(fl, s, o, CKA_TOKEN), CK_TRUE);
    ck_assert_uint_eq(attr_bool(fl, s, o, CKA_PRIVATE), CK_TRUE);
    ck_assert_uint_eq(attr_bool(fl, s, o, CKA_SIGN), CK_TRUE);
    const CK_ATTRIBUTE_TYPE never[] = {CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_DERIVE, CKA_MODIFIABLE};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) ck_assert_uint_eq(attr_bool(fl, s, o, never[i]), CK_FALSE);
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE widen_it = {CKA_EXTRACTABLE, &yes, sizeof yes};
    ck_assert_uint_ne(fl->C_SetAttributeValue(s, o, &widen_it, 1), CKR_OK);
    ck_assert_uint_eq(attr_bool(fl, s, o, CKA_EXTRACTABLE), CK_FALSE);
    fl->C_CloseSession(s);
    hsm_mac_key_free(k);
}
END_TEST

/* MACs from several threads at once: each borrows its own pooled session, and every one is right. */
static uint8_t g_mac_want[HSM_MAC_LEN];
static atomic_int g_mac_good;

static void *macer(void *arg)
{
    for (int i = 0; i < N_SIGS; i++) {
        uint8_t got[HSM_MAC_LEN];
        if (hsm_mac_sign(arg, (const uint8_t *)"entry 1", 7, got) == CT_OK && memcmp(got, g_mac_want, sizeof got) == 0)
            atomic_fetch_add(&g_mac_good, 1);
    }
    return NULL;
}

START_TEST(test_mac_threads)
{
    const uint8_t id[] = {0x0b, 1};
    hsm_mac_key *k = NULL;
    ck_assert_int_eq(hsm_mac_key_generate(g_h, "busy-mac", id, sizeof id, &k), CT_OK);
    mac_of(k, "entry 1", g_mac_want);
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, macer, k), 0);
    for (int i = 0; i < N_THREADS; i++) pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&g_mac_good), N_THREADS * N_SIGS);
    hsm_mac_key_free(k);
}
END_TEST

/* Many messages at once on several sessions: each MAC is the one hsm_mac_sign gives for its own message (not another
 * message's, nor another share's), whatever the number of threads asked for. */
START_TEST(test_mac_many)
{
    const uint8_t id[] = {0x0b, 2};
    hsm_mac_key *k = NULL;
    ck_assert_int_eq(hsm_mac_key_generate(g_h, "many-mac", id, sizeof id, &k), CT_OK);
    enum { N = 37 };
    char text[N][16];
    const uint8_t *msgs[N];
    size_t lens[N];
    uint8_t macs[N][HSM_MAC_LEN], want[HSM_MAC_LEN];
    for (int i = 0; i < N; i++) {
        snprintf(text[i], sizeof text[i], "entry %d", i + 1);
        msgs[i] = (const uint8_t *)text[i];
        lens[i] = strlen(text[i]);
    }
    const unsigned threads[] = {0, 1, 2, 3, 64};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        memset(macs, 0, sizeof macs);
        ck_assert_int_eq(hsm_mac_sign_many(k, N, msgs, lens, macs, threads[t], NULL), CT_OK);
        for (int i = 0; i < N; i++) {
            mac_of(k, text[i], want);
            ck_assert_mem_eq(macs[i], want, HSM_MAC_LEN);
            if (i > 0) ck_assert(memcmp(macs[i], macs[i - 1], HSM_MAC_LEN) != 0);
        }
    }
    ck_assert_int_eq(hsm_mac_sign_many(k, 0, NULL, NULL, NULL, 2, NULL), CT_OK);
    ck_assert_int_eq(hsm_mac_sign_many(NULL, N, msgs, lens, macs, 2, NULL), CT_ERR_ARG);
    hsm_mac_key_free(k);
}
END_TEST

static Suite *hsm_suite(void)
{
    Suite *s = suite_create("hsm");
    TCase *plain = tcase_create("token");
    tcase_set_timeout(plain, 60);
    tcase_add_test(plain, test_token_create);
    tcase_add_test(plain, test_wrong_pin);
    tcase_add_test(plain, test_unknown_token);
    suite_add_tcase(s, plain);

    TCase *keys = tcase_create("keys");
    tcase_set_timeout(keys, 120);
    tcase_add_checked_fixture(keys, setup, teardown);
    tcase_add_test(keys, test_two_handles);
    tcase_add_test(keys, test_generate_sign);
    tcase_add_test(keys, test_duplicate);
    tcase_add_test(keys, test_find);
    tcase_add_test(keys, test_persist);
    tcase_add_test(keys, test_destroy);
    tcase_add_test(keys, test_not_extractable);
    tcase_add_test(keys, test_key_usages);
    tcase_add_test(keys, test_threads);
    tcase_add_test(keys, test_wolf_callback);
    tcase_add_test(keys, test_wolf_tls);
    tcase_add_test(keys, test_mac_key);
    tcase_add_test(keys, test_mac_threads);
    tcase_add_test(keys, test_mac_many);
    tcase_add_test(keys, test_verify_digest);
    suite_add_tcase(s, keys);
    return s;
}

int main(void) { return tu_run_suite(hsm_suite()); }
