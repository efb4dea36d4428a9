/* Subsample maps and the sample cipher: AES-CBC with the 1:9 pattern ('cbcs') and AES-CTR ('cenc'). */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>

#include <stdlib.h>
#include <string.h>

#include "cenc_priv.h"

#define NAL_LEN_SIZE 4
#define BLOCK 16
#define CBCS_CRYPT 1 /* blocks encrypted ... */
#define CBCS_SKIP 9  /* ... then skipped */

const uint8_t cenc_system_id[16] = CENC_SYSTEM_ID_BYTES;

const char *cenc_scheme_name(cenc_scheme s)
{
    return s == CENC_CBCS ? "cbcs" : s == CENC_CTR ? "cenc" : "clear";
}

ct_err cenc_scheme_parse(const char *name, cenc_scheme *out)
{
    if (strcmp(name, "cbcs") == 0) *out = CENC_CBCS;
    else if (strcmp(name, "cenc") == 0) *out = CENC_CTR;
    else return ct_fail(CT_ERR_USAGE, "scheme '%.16s': use cbcs or cenc", name);
    return CT_OK;
}

/* Appends one entry; clear runs longer than senc's 16 bits become entries of their own. */
static ct_err put_subsample(size_t clear, uint32_t enc, cenc_subsample *out, size_t max, size_t *n)
{
    while (clear > 0xffff) {
        CT_ENSURE_RET(*n < max, ct_fail(CT_ERR_TOO_LARGE, "more than %zu subsamples in a sample", max));
        out[(*n)++] = (cenc_subsample){0xffff, 0};
        clear -= 0xffff;
    }
    CT_ENSURE_RET(*n < max, ct_fail(CT_ERR_TOO_LARGE, "more than %zu subsamples in a sample", max));
    out[(*n)++] = (cenc_subsample){(uint32_t)clear, enc};
    return CT_OK;
}

ct_err cenc_subsamples(media_codec c, const uint8_t *sample, size_t len, cenc_subsample *out, size_t max, size_t *n)
{
    return cenc_subsamples_with(NULL, c, sample, len, out, max, n, NULL);
}

ct_err cenc_subsamples_with(const cenc_order *ps, media_codec c, const uint8_t *sample, size_t len,
                            cenc_subsample *out, size_t max, size_t *n, size_t *unknown)
{
    size_t pos = 0, clear = 0;
    const uint8_t *nal;
    size_t nal_len;
    ct_err rc;
    *n = 0;
    CT_ENSURE_RET(len <= CENC_MAX_SAMPLE, ct_fail(CT_ERR_TOO_LARGE, "sample of %zu bytes", len));
    while ((rc = media_lp_next(sample, len, NAL_LEN_SIZE, &pos, &nal, &nal_len)) == CT_OK) {
        size_t enc = 0, lead = CENC_CLEAR_LEAD, hdr;
        media_nal_info ni = media_nal_classify(c, nal, nal_len);
        /* H.264's auxiliary (19), SVC/MVC (20) and 3D-AVC (21) slices carry pictures too: an alpha plane, a layer
         * of higher resolution or quality, another view; their headers are not read, the first 32 bytes stay clear.
         * (H.265's 19-21 are IRAP slices, VCL already.) */
        if (media_nal_is_vcl(ni.kind) || ni.type - 19u <= 2) {
            /* The whole slice header stays clear (ISO 23001-7 9.5): its length when the parameter sets tell. */
            if (ps && cenc_slice_header_size(ps, c, nal, nal_len, &hdr)) lead = hdr > lead ? hdr : lead;
            else if (unknown) ++*unknown;
            if (nal_len > lead) enc = (nal_len - lead) & ~(size_t)(BLOCK - 1);
        }
        clear += NAL_LEN_SIZE + nal_len - enc;
        if (enc == 0) continue;
        CT_GUARD_RET(put_subsample(clear, (uint32_t)enc, out, max, n));
        clear = 0;
    }
    CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
    if (clear > 0 || *n == 0) CT_GUARD_RET(put_subsample(clear, 0, out, max, n));
    return CT_OK;
}

struct cenc_cipher {
    Aes aes;
    cenc_scheme scheme;
    bool decrypt;
    uint8_t key[CENC_KEY_LEN]; /* 'cenc' re-keys per sample to restart the counter */
};

ct_err cenc_cipher_new(cenc_scheme s, const uint8_t key[CENC_KEY_LEN], bool decrypt, cenc_cipher **out)
{
    ct_err rc = CT_OK;
    cenc_cipher *c = calloc(1, sizeof *c);
    CT_ENSURE(c, CT_ERR_NOMEM);
    CT_ENSURE_MSG(s == CENC_CBCS || s == CENC_CTR, CT_ERR_ARG, "no cipher for scheme %d", (int)s);
    c->scheme = s;
    c->decrypt = decrypt;
    memcpy(c->key, key, sizeof c->key);
    CT_ENSURE_MSG(wc_AesInit(&c->aes, NULL, INVALID_DEVID) == 0, CT_ERR_CRYPTO, "AES init failed");
    /* CTR uses the encryption schedule in both directions. */
    int dir = s == CENC_CBCS && decrypt ? AES_DECRYPTION : AES_ENCRYPTION;
    CT_ENSURE_MSG(wc_AesSetKey(&c->aes, key, CENC_KEY_LEN, NULL, dir) == 0, CT_ERR_CRYPTO, "AES key setup failed");
    *out = c;
    c = NULL;
cleanup:
    cenc_cipher_free(c);
    return rc;
}

void cenc_cipher_free(cenc_cipher *c)
{
    if (!c) return;
    wc_AesFree(&c->aes);
    ct_wipe(c, sizeof *c);
    free(c);
}

/* 'cbcs': per subsample the IV restarts; one block in ten is en/decrypted, the chain running on across the
 * skipped blocks; a trailing partial block stays clear. */
static int cbcs_range(cenc_cipher *c, const uint8_t iv[CENC_IV_LEN], uint8_t *p, size_t len)
{
    int ret = wc_AesSetIV(&c->aes, iv);
    for (size_t off = 0; ret == 0 && len - off >= BLOCK * CBCS_CRYPT; off += BLOCK * (CBCS_CRYPT + CBCS_SKIP)) {
        ret = c->decrypt ? wc_AesCbcDecrypt(&c->aes, p + off, p + off, BLOCK * CBCS_CRYPT)
                         : wc_AesCbcEncrypt(&c->aes, p + off, p + off, BLOCK * CBCS_CRYPT);
        if (len - off < BLOCK * (CBCS_CRYPT + CBCS_SKIP)) break;
    }
    return ret;
}

ct_err cenc_cipher_sample(cenc_cipher *c, const uint8_t iv[CENC_IV_LEN], uint8_t *sample, size_t len,
                          const cenc_subsample *ss, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += (uint64_t)ss[i].clear + ss[i].enc;
    CT_ENSURE_RET(total == len, ct_fail(CT_ERR_BAD_REQUEST, "subsamples cover %llu bytes of a %zu-byte sample",
                                        (unsigned long long)total, len));
    int ret = 0;
    /* The counter starts at IV || 0 for each sample and runs on across its subsamples. */
    if (c->scheme == CENC_CTR) ret = wc_AesSetKeyDirect(&c->aes, c->key, CENC_KEY_LEN, iv, AES_ENCRYPTION);
    size_t off = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        off += ss[i].clear;
        if (ss[i].enc == 0) continue;
        ret = c->scheme == CENC_CTR ? wc_AesCtrEncrypt(&c->aes, sample + off, sample + off, ss[i].enc)
                                    : cbcs_range(c, iv, sample + off, ss[i].enc);
        off += ss[i].enc;
    }
    return ret == 0 ? CT_OK : ct_fail(CT_ERR_CRYPTO, "AES failed (%d)", ret);
}
