#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ct_config {
    size_t count;
    struct {
        char *key;
        char *value;
    } entries[CT_CONFIG_MAX_ENTRIES];
};

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }
static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

static char *dup_range(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Parses one line [p, p+n); empty and comment lines are skipped. */
static ct_err parse_line(ct_config *c, const char *p, size_t n, size_t line_no)
{
    while (n && is_space(*p)) p++, n--;
    while (n && is_space(p[n - 1])) n--;
    if (n == 0 || *p == '#') return CT_OK;
    size_t k = 0;
    while (k < n && is_key_char(p[k])) k++;
    CT_ENSURE_RET(k > 0, ct_fail(CT_ERR_CONFIG, "config line %zu: expected 'key = value'", line_no));
    size_t eq = k;
    while (eq < n && is_space(p[eq])) eq++;
    CT_ENSURE_RET(eq < n && p[eq] == '=', ct_fail(CT_ERR_CONFIG, "config line %zu: expected '=' after key", line_no));
    size_t v = eq + 1;
    while (v < n && is_space(p[v])) v++;
    for (size_t i = v; i < n; i++)
        CT_ENSURE_RET((unsigned char)p[i] >= 0x20, ct_fail(CT_ERR_CONFIG, "config line %zu: control character", line_no));
    for (size_t i = 0; i < c->count; i++)
        if (strlen(c->entries[i].key) == k && memcmp(c->entries[i].key, p, k) == 0)
            return ct_fail(CT_ERR_CONFIG, "config line %zu: key '%.*s' given twice", line_no, (int)k, p);
    CT_ENSURE_RET(c->count < CT_CONFIG_MAX_ENTRIES, ct_fail(CT_ERR_CONFIG, "config: more than %d keys", CT_CONFIG_MAX_ENTRIES));
    char *key = dup_range(p, k), *value = dup_range(p + v, n - v);
    if (!key || !value) {
        free(key);
        free(value);
        return CT_ERR_NOMEM;
    }
    c->entries[c->count].key = key;
    c->entries[c->count].value = value;
    c->count++;
    return CT_OK;
}

ct_err ct_config_parse(const uint8_t *text, size_t len, ct_config **out)
{
    ct_err rc = CT_OK;
    *out = NULL;
    CT_ENSURE_RET(len <= CT_CONFIG_MAX_BYTES, ct_fail(CT_ERR_CONFIG, "config larger than %d bytes", CT_CONFIG_MAX_BYTES));
    ct_config *c = calloc(1, sizeof *c);
    CT_ENSURE_RET(c, CT_ERR_NOMEM);
    const char *p = (const char *)text, *end = p + len;
    for (size_t line_no = 1; p < end; line_no++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        CT_ENSURE_MSG(n <= CT_CONFIG_MAX_LINE, CT_ERR_CONFIG, "config line %zu longer than %d bytes", line_no,
                      CT_CONFIG_MAX_LINE);
        CT_ENSURE_MSG(memchr(p, '\0', n) == NULL, CT_ERR_CONFIG, "config line %zu: NUL byte", line_no);
        CT_GUARD(parse_line(c, p, n, line_no));
        p += n + (nl ? 1 : 0);
    }
    *out = c;
    c = NULL;
cleanup:
    ct_config_free(c);
    return rc;
}

ct_err ct_config_load(const char *path, ct_config **out)
{
    ct_buf text = CT_BUF_INIT;
    ct_err rc = ct_file_read(path, CT_CONFIG_MAX_BYTES, &text);
    if (rc == CT_ERR_TOO_LARGE) rc = ct_fail(CT_ERR_CONFIG, "%s is larger than %d bytes", path, CT_CONFIG_MAX_BYTES);
    if (rc == CT_OK) rc = ct_config_parse(text.data, text.len, out);
    ct_buf_free(&text);
    return rc;
}

const char *ct_config_get(const ct_config *c, const char *key, const char *fallback)
{
    if (!c) return fallback;
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->entries[i].key, key) == 0) return c->entries[i].value;
    return fallback;
}

bool ct_parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno != 0 || end == s || *end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

ct_err ct_config_get_int(const ct_config *c, const char *key, long fallback, long min, long max, long *out)
{
    const char *v = ct_config_get(c, key, NULL);
    if (!v) {
        *out = fallback;
        return CT_OK;
    }
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    CT_ENSURE_RET(*v && end && *end == '\0', ct_fail(CT_ERR_CONFIG, "config %s: '%s' is not a number", key, v));
    CT_ENSURE_RET(errno != ERANGE, ct_fail(CT_ERR_CONFIG, "config %s: '%s' outside %ld..%ld", key, v, min, max));
    CT_ENSURE_RET(n >= min && n <= max, ct_fail(CT_ERR_CONFIG, "config %s: %ld outside %ld..%ld", key, n, min, max));
    *out = n;
    return CT_OK;
}

size_t ct_config_count(const ct_config *c) { return c ? c->count : 0; }

const char *ct_config_key(const ct_config *c, size_t i) { return c && i < c->count ? c->entries[i].key : NULL; }

void ct_config_free(ct_config *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->count; i++) {
        free(c->entries[i].key);
        free(c->entries[i].value);
    }
    free(c);
}
