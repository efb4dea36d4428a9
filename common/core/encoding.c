#include "core.h"

#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>

static bool is_b64_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

ct_err ct_base64_decode(const uint8_t *in, size_t in_len, ct_buf *out)
{
    ct_err rc = CT_OK;
    ct_buf clean = CT_BUF_INIT, plain = CT_BUF_INIT;
    size_t pad = 0;

    /* Strip line breaks and spaces first so that wolfSSL's decoder sees one strict run. */
    CT_GUARD(ct_buf_alloc(&clean, in_len + 1));
    for (size_t i = 0; i < in_len; i++) {
        uint8_t c = in[i];
        if (c == '\r' || c == '\n' || c == ' ' || c == '\t') continue;
        if (c == '=') {
            pad++;
            CT_ENSURE_MSG(pad <= 2, CT_ERR_BAD_BASE64, "more than two '=' padding characters");
        } else {
            CT_ENSURE_MSG(is_b64_char(c), CT_ERR_BAD_BASE64, "invalid base64 character 0x%02x at offset %zu", c, i);
            CT_ENSURE_MSG(pad == 0, CT_ERR_BAD_BASE64, "base64 data after '=' padding");
        }
        clean.data[clean.len++] = c;
    }
    CT_ENSURE_MSG(clean.len > 0, CT_ERR_BAD_BASE64, "empty base64 body");
    CT_ENSURE_MSG(clean.len % 4 == 0, CT_ERR_BAD_BASE64, "base64 length %zu is not a multiple of 4", clean.len);
    size_t need = clean.len / 4 * 3 - pad;
    CT_ENSURE_MSG(need <= out->max, CT_ERR_TOO_LARGE, "decoded body exceeds %zu bytes", out->max);
    /* wolfSSL wants room for whole 3-byte groups, padding included: decode into a scratch buffer. */
    CT_GUARD(ct_buf_alloc(&plain, clean.len / 4 * 3));
    word32 out_len = (word32)plain.max;
    CT_ENSURE_MSG(Base64_Decode(clean.data, (word32)clean.len, plain.data, &out_len) == 0, CT_ERR_BAD_BASE64,
                  "base64 does not decode");
    CT_GUARD(ct_buf_set(out, plain.data, out_len));
cleanup:
    ct_buf_free(&plain);
    ct_buf_free(&clean);
    return rc;
}

ct_err ct_base64_encode(const uint8_t *in, size_t in_len, bool line_breaks, ct_buf *out)
{
    /* 4/3 expansion, plus a newline every 64 output characters with line breaks. */
    size_t need = (in_len + 2) / 3 * 4;
    if (line_breaks) need += need / 64 + 2;
    CT_ENSURE_RET(need <= out->max - out->len, ct_fail(CT_ERR_BUF_FULL, "base64 output of %zu bytes too large", need));
    word32 n = (word32)(out->max - out->len);
    int ret = line_breaks ? Base64_Encode(in, (word32)in_len, out->data + out->len, &n)
                          : Base64_Encode_NoNl(in, (word32)in_len, out->data + out->len, &n);
    CT_ENSURE_RET(ret == 0, CT_ERR_INTERNAL);
    out->len += n;
    return CT_OK;
}

ct_err ct_pem_encode(const char *label, const uint8_t *der, size_t der_len, ct_buf *out)
{
    CT_GUARD_RET(ct_buf_appendf(out, "-----BEGIN %s-----\n", label));
    CT_GUARD_RET(ct_base64_encode(der, der_len, true, out));
    if (out->len && out->data[out->len - 1] != '\n') CT_GUARD_RET(ct_buf_append(out, "\n", 1));
    return ct_buf_appendf(out, "-----END %s-----\n", label);
}

const uint8_t *ct_mem_find(const uint8_t *hay, size_t hay_len, const char *needle)
{
    size_t n = strlen(needle);
    if (n > hay_len) return NULL;
    for (size_t i = 0; i + n <= hay_len; i++)
        if (memcmp(hay + i, needle, n) == 0) return hay + i;
    return NULL;
}

ct_err ct_pem_decode(const uint8_t *pem, size_t pem_len, const char *label, size_t index, ct_buf *der)
{
    char begin[96], end[96];
    CT_GUARD_RET(ct_snprintf(begin, sizeof begin, "-----BEGIN %s-----", label));
    CT_GUARD_RET(ct_snprintf(end, sizeof end, "-----END %s-----", label));
    const uint8_t *p = pem, *limit = pem + pem_len;
    for (size_t i = 0;; i++) {
        const uint8_t *b = ct_mem_find(p, (size_t)(limit - p), begin);
        if (!b) return ct_fail(CT_ERR_NOT_FOUND, "no PEM block '%s' number %zu", label, index + 1);
        b += strlen(begin);
        const uint8_t *e = ct_mem_find(b, (size_t)(limit - b), end);
        if (!e) return ct_fail(CT_ERR_BAD_BASE64, "PEM block '%s' has no END line", label);
        if (i == index) {
            ct_err rc = ct_base64_decode(b, (size_t)(e - b), der);
            /* A PEM file is not a request body: a block too large for the buffer is malformed input. */
            return rc == CT_ERR_TOO_LARGE ? ct_fail(CT_ERR_BAD_DER, "PEM block larger than %zu bytes", der->max) : rc;
        }
        p = e + strlen(end);
    }
}

ct_err ct_hex_encode(const uint8_t *in, size_t in_len, char *out, size_t out_max)
{
    static const char digits[] = "0123456789abcdef";
    CT_ENSURE_RET(in_len * 2 + 1 <= out_max, CT_ERR_BUF_FULL);
    for (size_t i = 0; i < in_len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[in_len * 2] = '\0';
    return CT_OK;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

ct_err ct_hex_decode(const char *in, uint8_t *out, size_t out_max, size_t *out_len)
{
    size_t n = strlen(in);
    CT_ENSURE_RET(n % 2 == 0, ct_fail(CT_ERR_BAD_REQUEST, "hex string has odd length"));
    CT_ENSURE_RET(n / 2 <= out_max, ct_fail(CT_ERR_BAD_REQUEST, "hex string too long"));
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_val(in[2 * i]), lo = hex_val(in[2 * i + 1]);
        CT_ENSURE_RET(hi >= 0 && lo >= 0, ct_fail(CT_ERR_BAD_REQUEST, "invalid hex digit"));
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = n / 2;
    return CT_OK;
}
