#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <stdlib.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/hash.h>

ct_err ct_secret_load(const char *path, const char *env, char *out, size_t out_max)
{
    if (path && *path) {
        ct_buf b = CT_BUF_INIT;
        ct_err rc = ct_file_read(path, 1024, &b);
        if (rc != CT_OK)
            return ct_fail(CT_ERR_CONFIG, "cannot read secret file %s: %s", path,
                           rc == CT_ERR_TOO_LARGE ? "larger than 1024 bytes" : "missing or unreadable");
        size_t n = b.len;
        while (n && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r')) n--;
        if (n == 0 || n >= out_max) {
            ct_buf_free(&b);
            return ct_fail(CT_ERR_CONFIG, "secret file %s is empty or too long", path);
        }
        memcpy(out, b.data, n);
        out[n] = '\0';
        ct_buf_free(&b);
        return CT_OK;
    }
    const char *v = env ? getenv(env) : NULL;
    CT_ENSURE_RET(v && *v, ct_fail(CT_ERR_CONFIG, "no secret: set a PIN file in the config or %s", env ? env : "a PIN file"));
    return ct_strlcpy(out, out_max, v);
}

ct_err ct_random(uint8_t *out, size_t len)
{
    WC_RNG rng;
    CT_ENSURE_RET(wc_InitRng(&rng) == 0, CT_ERR_CRYPTO);
    int r = wc_RNG_GenerateBlock(&rng, out, (word32)len);
    wc_FreeRng(&rng);
    return r == 0 ? CT_OK : CT_ERR_CRYPTO;
}

ct_err ct_sha256(const void *data, size_t len, uint8_t out[32])
{
    return wc_Sha256Hash(data, (word32)len, out) == 0 ? CT_OK : CT_ERR_CRYPTO;
}
