/* Escaping for what camtrust writes for others to read: JSON strings (RFC 8259) and CSV fields (RFC 4180). */
#include "core.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one (overlong, surrogate, truncated). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n <= 1) return n;
    unsigned cp = c & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

ct_err ct_json_string(ct_buf *b, const char *s)
{
    CT_GUARD_RET(ct_buf_append(b, "\"", 1));
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        unsigned c = *p;
        size_t n = utf8_len(p);
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            CT_GUARD_RET(ct_buf_append(b, esc, 2));
        } else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&') {
            /* Controls, and the characters that matter if the JSON ever lands inside HTML. */
            CT_GUARD_RET(ct_buf_appendf(b, "\\u%04x", c));
        } else if (n == 0) {
            CT_GUARD_RET(ct_buf_append(b, "\\ufffd", 6)); /* not UTF-8: replaced, never passed on */
            n = 1;
        } else {
            CT_GUARD_RET(ct_buf_append(b, p, n));
        }
        p += n ? n : 1;
    }
    return ct_buf_append(b, "\"", 1);
}

bool ct_utf8_repair(char *s)
{
    bool repaired = false;
    for (unsigned char *p = (unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n) {
            p += n;
            continue;
        }
        *p++ = '?';
        repaired = true;
    }
    return repaired;
}

ct_err ct_csv_field(ct_buf *b, const char *s)
{
    if (!s) s = "";
    /* A cell starting like a formula would run in the officer's spreadsheet (CSV injection): names and
     * refusal details can come from outside, so such a cell is quoted and starts with an apostrophe. */
    bool formula = *s && strchr("=+-@\t\r", *s);
    if (!formula && !strpbrk(s, ",\"\r\n")) return ct_buf_append(b, s, strlen(s));
    CT_GUARD_RET(ct_buf_append(b, formula ? "\"'" : "\"", formula ? 2 : 1));
    for (const char *p = s; *p; p++) {
        if (*p == '"') CT_GUARD_RET(ct_buf_append(b, "\"", 1));
        CT_GUARD_RET(ct_buf_append(b, p, 1));
    }
    return ct_buf_append(b, "\"", 1);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t ct_url_unescape(char *s)
{
    size_t n = 0;
    for (size_t i = 0; s[i]; i++) {
        int h = s[i] == '%' ? hex_digit(s[i + 1]) : -1, l = h >= 0 ? hex_digit(s[i + 2]) : -1;
        unsigned char c = (unsigned char)(h * 16 + l);
        if (l < 0 || c < 0x20 || c == 0x7f) { /* not an escape, or one of a control character: kept as it is */
            s[n++] = s[i];
            continue;
        }
        s[n++] = (char)c;
        i += 2;
    }
    s[n] = '\0';
    return n;
}
