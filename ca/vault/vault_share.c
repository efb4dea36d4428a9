/* The custodians' shares: Shamir over GF(2^8) by libgfshare, each share sealed under its custodian's passphrase
 * with PBKDF2-HMAC-SHA256 and AES-256-GCM from wolfSSL. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>

#include <libgfshare.h>
#include <string.h>

#include "vault_priv.h"

static const uint8_t share_magic[4] = {'C', 'T', 'V', 'S'};
#define SHARE_VERSION 1
#define SALT_LEN 16
#define NONCE_LEN 12
#define TAG_LEN 16

/* libgfshare draws its polynomial coefficients through this hook: wolfSSL's RNG, a failure remembered (the hook
 * cannot return one) and turned into an error by the caller. */
static bool rand_failed;
static void fill_rand(unsigned char *buf, unsigned int n)
{
    if (ct_random(buf, n) != CT_OK) {
        rand_failed = true;
        memset(buf, 0, n);
    }
}

ct_err vault_shamir_split(const uint8_t secret[VAULT_SECRET_LEN], unsigned n, unsigned k,
                          uint8_t shares[][VAULT_SECRET_LEN])
{
    uint8_t numbers[VAULT_MAX_CUSTODIANS], copy[VAULT_SECRET_LEN];
    CT_ENSURE_RET(k >= 1 && k <= n && n <= VAULT_MAX_CUSTODIANS, CT_ERR_ARG);
    for (unsigned i = 0; i < n; i++) numbers[i] = (uint8_t)(i + 1);
    gfshare_fill_rand = fill_rand;
    rand_failed = false;
    gfshare_ctx *ctx = gfshare_ctx_init_enc(numbers, n, (unsigned char)k, VAULT_SECRET_LEN);
    CT_ENSURE_RET(ctx, ct_fail(CT_ERR_NOMEM, "libgfshare cannot start"));
    memcpy(copy, secret, sizeof copy); /* the library's argument is not const */
    gfshare_ctx_enc_setsecret(ctx, copy);
    for (unsigned i = 0; i < n; i++) gfshare_ctx_enc_getshare(ctx, (unsigned char)i, shares[i]);
    gfshare_ctx_free(ctx); /* overwrites its coefficients before freeing */
    ct_wipe(copy, sizeof copy);
    if (rand_failed) {
        ct_wipe(shares, (size_t)n * VAULT_SECRET_LEN);
        return ct_fail(CT_ERR_CRYPTO, "no randomness for the shares");
    }
    return CT_OK;
}

ct_err vault_shamir_combine(const uint8_t *numbers, const uint8_t (*shares)[VAULT_SECRET_LEN], size_t count,
                            uint8_t secret[VAULT_SECRET_LEN])
{
    uint8_t nrs[VAULT_MAX_CUSTODIANS], copy[VAULT_SECRET_LEN];
    CT_ENSURE_RET(count >= 1 && count <= VAULT_MAX_CUSTODIANS, CT_ERR_ARG);
    memcpy(nrs, numbers, count);
    gfshare_fill_rand = fill_rand;
    gfshare_ctx *ctx = gfshare_ctx_init_dec(nrs, (unsigned)count, VAULT_SECRET_LEN);
    CT_ENSURE_RET(ctx, ct_fail(CT_ERR_NOMEM, "libgfshare cannot start"));
    for (size_t i = 0; i < count; i++) {
        memcpy(copy, shares[i], sizeof copy);
        gfshare_ctx_dec_giveshare(ctx, (unsigned char)i, copy);
    }
    gfshare_ctx_dec_extract(ctx, secret);
    gfshare_ctx_free(ctx);
    ct_wipe(copy, sizeof copy);
    return CT_OK;
}

static ct_err derive_key(const char *passphrase, const uint8_t salt[SALT_LEN], uint32_t iterations, uint8_t key[32])
{
    size_t n = strlen(passphrase);
    CT_ENSURE_RET(n >= VAULT_PASSPHRASE_MIN && n <= VAULT_PASSPHRASE_MAX,
                  ct_fail(CT_ERR_USAGE, "a passphrase has %d to %d characters", VAULT_PASSPHRASE_MIN,
                          VAULT_PASSPHRASE_MAX));
    int r = wc_PBKDF2(key, (const byte *)passphrase, (int)n, salt, SALT_LEN, (int)iterations, 32, WC_SHA256);
    return r == 0 ? CT_OK : ct_fail(CT_ERR_CRYPTO, "PBKDF2 failed (%d)", r);
}

/* AES-256-GCM over the share, the header as additional data; `encrypt` false checks the tag. */
static ct_err gcm(const uint8_t key[32], uint8_t raw[VAULT_SHARE_BYTES], const uint8_t *in, uint8_t *out, bool encrypt)
{
    Aes aes;
    const uint8_t *nonce = raw + VAULT_SHARE_HDR - NONCE_LEN;
    uint8_t *tag = raw + VAULT_SHARE_HDR + VAULT_SECRET_LEN;
    CT_ENSURE_RET(wc_AesInit(&aes, NULL, INVALID_DEVID) == 0, ct_fail(CT_ERR_CRYPTO, "AES does not start"));
    int r = wc_AesGcmSetKey(&aes, key, 32);
    if (r == 0 && encrypt)
        r = wc_AesGcmEncrypt(&aes, out, in, VAULT_SECRET_LEN, nonce, NONCE_LEN, tag, TAG_LEN, raw, VAULT_SHARE_HDR);
    else if (r == 0)
        r = wc_AesGcmDecrypt(&aes, out, in, VAULT_SECRET_LEN, nonce, NONCE_LEN, tag, TAG_LEN, raw, VAULT_SHARE_HDR);
    wc_AesFree(&aes);
    ct_wipe(&aes, sizeof aes); /* the key schedule: wc_AesFree leaves it */
    if (r != 0 && !encrypt) return ct_fail(CT_ERR_INTEGRITY, "wrong passphrase, or the share file was changed");
    return r == 0 ? CT_OK : ct_fail(CT_ERR_CRYPTO, "AES-GCM failed (%d)", r);
}

ct_err vault_share_seal(const uint8_t id[VAULT_ID_LEN], unsigned number, unsigned k, unsigned n, uint32_t iterations,
                        const char *passphrase, const uint8_t share[VAULT_SECRET_LEN], ct_buf *pem)
{
    ct_err rc = CT_OK;
    uint8_t raw[VAULT_SHARE_BYTES], key[32];
    CT_ENSURE(number >= 1 && number <= n && k >= 1 && k <= n && n <= VAULT_MAX_CUSTODIANS, CT_ERR_ARG);
    memcpy(raw, share_magic, 4);
    raw[4] = SHARE_VERSION;
    raw[5] = (uint8_t)number;
    raw[6] = (uint8_t)k;
    raw[7] = (uint8_t)n;
    memcpy(raw + 8, id, VAULT_ID_LEN);
    for (int i = 0; i < 4; i++) raw[40 + i] = (uint8_t)(iterations >> (24 - 8 * i));
    CT_GUARD(ct_random(raw + 44, SALT_LEN + NONCE_LEN));
    CT_GUARD(derive_key(passphrase, raw + 44, iterations, key));
    CT_GUARD(gcm(key, raw, share, raw + VAULT_SHARE_HDR, true));
    CT_GUARD(ct_pem_encode(VAULT_SHARE_PEM, raw, sizeof raw, pem));
cleanup:
    ct_wipe(key, sizeof key);
    return rc;
}

ct_err vault_share_parse(const uint8_t *pem, size_t len, vault_share_file *out)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    memset(out, 0, sizeof *out);
    CT_GUARD(ct_buf_alloc(&der, VAULT_SHARE_BYTES + 3));
    rc = ct_pem_decode(pem, len, VAULT_SHARE_PEM, 0, &der);
    CT_ENSURE_MSG(rc == CT_OK, CT_ERR_BAD_REQUEST, "not a camtrust vault share (no %s block)", VAULT_SHARE_PEM);
    CT_ENSURE_MSG(der.len == VAULT_SHARE_BYTES && memcmp(der.data, share_magic, 4) == 0, CT_ERR_BAD_REQUEST,
                  "not a camtrust vault share (%zu bytes)", der.len);
    CT_ENSURE_MSG(der.data[4] == SHARE_VERSION, CT_ERR_BAD_REQUEST, "share version %u is not 1", der.data[4]);
    memcpy(out->raw, der.data, VAULT_SHARE_BYTES);
    out->number = out->raw[5];
    out->quorum = out->raw[6];
    out->custodians = out->raw[7];
    memcpy(out->vault_id, out->raw + 8, VAULT_ID_LEN);
    out->iterations = (uint32_t)out->raw[40] << 24 | (uint32_t)out->raw[41] << 16 | (uint32_t)out->raw[42] << 8 |
                      out->raw[43];
    CT_ENSURE_MSG(out->custodians >= 1 && out->custodians <= VAULT_MAX_CUSTODIANS && out->quorum >= 1 &&
                      out->quorum <= out->custodians && out->number >= 1 && out->number <= out->custodians,
                  CT_ERR_BAD_REQUEST, "share %u of %u (quorum %u) is not possible", out->number, out->custodians,
                  out->quorum);
    CT_ENSURE_MSG(out->iterations >= VAULT_KDF_MIN && out->iterations <= VAULT_KDF_MAX, CT_ERR_BAD_REQUEST,
                  "share asks for %u PBKDF2 iterations (%d to %d)", out->iterations, VAULT_KDF_MIN, VAULT_KDF_MAX);
cleanup:
    ct_buf_free(&der);
    return rc;
}

ct_err vault_share_open(const vault_share_file *f, const char *passphrase, uint8_t share[VAULT_SECRET_LEN])
{
    ct_err rc = CT_OK;
    uint8_t key[32], raw[VAULT_SHARE_BYTES];
    memcpy(raw, f->raw, sizeof raw);
    CT_GUARD(derive_key(passphrase, raw + 44, f->iterations, key));
    CT_GUARD(gcm(key, raw, raw + VAULT_SHARE_HDR, share, false));
cleanup:
    if (rc != CT_OK) ct_wipe(share, VAULT_SECRET_LEN);
    ct_wipe(key, sizeof key);
    return rc;
}

static ct_err pin_mac(const uint8_t secret[VAULT_SECRET_LEN], const uint8_t salt[16], uint8_t mac[32])
{
    Hmac h;
    int r = wc_HmacInit(&h, NULL, INVALID_DEVID);
    if (r == 0) r = wc_HmacSetKey(&h, WC_SHA256, salt, 16);
    if (r == 0) r = wc_HmacUpdate(&h, secret, VAULT_SECRET_LEN);
    if (r == 0) r = wc_HmacFinal(&h, mac);
    wc_HmacFree(&h);
    ct_wipe(&h, sizeof h); /* its state has hashed the secret */
    return r == 0 ? CT_OK : ct_fail(CT_ERR_CRYPTO, "HMAC failed (%d)", r);
}

ct_err vault_pin_check_make(const uint8_t secret[VAULT_SECRET_LEN], uint8_t out[VAULT_CHECK_LEN])
{
    CT_GUARD_RET(ct_random(out, 16));
    return pin_mac(secret, out, out + 16);
}

bool vault_pin_check_ok(const uint8_t secret[VAULT_SECRET_LEN], const uint8_t check[VAULT_CHECK_LEN])
{
    uint8_t mac[32];
    bool ok = pin_mac(secret, check, mac) == CT_OK && ct_equal_ct(mac, check + 16, 32);
    ct_wipe(mac, sizeof mac);
    return ok;
}
