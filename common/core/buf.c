#define _DEFAULT_SOURCE /* explicit_bzero */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

ct_err ct_buf_alloc(ct_buf *b, size_t max)
{
    b->len = 0;
    b->max = 0;
    b->data = calloc(1, max ? max : 1);
    if (!b->data) return CT_ERR_NOMEM;
    b->max = max;
    return CT_OK;
}

ct_err ct_buf_append(ct_buf *b, const void *p, size_t n)
{
    if (n > b->max - b->len) return ct_fail(CT_ERR_BUF_FULL, "buffer full (%zu of %zu bytes)", b->len, b->max);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return CT_OK;
}

ct_err ct_buf_set(ct_buf *b, const void *p, size_t n)
{
    b->len = 0;
    return ct_buf_append(b, p, n);
}

ct_err ct_buf_appendf(ct_buf *b, const char *fmt, ...)
{
    size_t room = b->max - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
    va_end(ap);
    /* vsnprintf needs room for its NUL, which we do not count. */
    if (n < 0 || (size_t)n >= room) return ct_fail(CT_ERR_BUF_FULL, "buffer full (%zu bytes)", b->max);
    b->len += (size_t)n;
    return CT_OK;
}

ct_err ct_buf_cstr(ct_buf *b, const char **out)
{
    if (b->len >= b->max) return CT_ERR_BUF_FULL;
    b->data[b->len] = '\0';
    *out = (const char *)b->data;
    return CT_OK;
}

void ct_wipe(void *p, size_t n)
{
    if (p && n) explicit_bzero(p, n);
}

void ct_buf_free(ct_buf *b)
{
    if (!b->data) return;
    ct_wipe(b->data, b->max);
    free(b->data);
    b->data = NULL;
    b->len = b->max = 0;
}

bool ct_equal_ct(const void *a, const void *b, size_t n)
{
    return wolfSSL_CRYPTO_memcmp(a, b, n) == 0;
}

ct_err ct_strlcpy(char *dst, size_t dst_max, const char *src)
{
    size_t n = strnlen(src, dst_max); /* no further than what could fit */
    if (n >= dst_max) return ct_fail(CT_ERR_BUF_FULL, "a string of %zu bytes or more does not fit in %zu", n, dst_max);
    memcpy(dst, src, n + 1);
    return CT_OK;
}

ct_err ct_snprintf(char *dst, size_t dst_max, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, dst_max, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= dst_max) return ct_fail(CT_ERR_BUF_FULL, "formatted string too long");
    return CT_OK;
}

ct_err ct_path_join(char *out, size_t out_max, const char *dir, const char *name)
{
    return ct_snprintf(out, out_max, "%s/%s", dir, name);
}
