/* Escaping for what camtrust writes for others to read: JSON strings (RFC 8259), CSV fields (RFC 4180) and outside
 * text for terminals and log lines. */
#include "core.h"

#include <string.h>

ct_utf8_char ct_utf8_next(const uint8_t *p, size_t n)
{
    static const uint8_t shortest[] = {7, 11, 16}; /* the bits a 2-, 3- or 4-byte form needs: fewer is overlong */
    const ct_utf8_char bad = {0, 0};
    uint32_t v = n ? p[0] : 0x80;
    if (v < 0x80) return (ct_utf8_char){1, v};
    size_t len = (size_t)__builtin_clz(~(v << 24)); /* the lead byte's leading 1 bits */
    if (len - 2 > 2 || len > n) return bad;
    v &= 0x7fu >> len;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return bad;
        v = v << 6 | (p[i] & 0x3fu);
    }
    if (v >> shortest[len - 2] == 0 || v > 0x10ffff || v - 0xd800 < 0x800) return bad;
    return (ct_utf8_char){len, v};
}

/* The same for a NUL-terminated string: a sequence stops at the NUL (not a continuation byte), never reads past. */
static size_t utf8_len(const unsigned char *s) { return ct_utf8_next(s, 4).len; }

const char *ct_text_safe(char *out, size_t max, const void *text, size_t n)
{
    /* Valid UTF-8 other than C1 is kept: names (officers, stations, models) may be UTF-8, and the audit, its JSON
     * and CSV keep it (README: outside text that is not UTF-8 is kept as '?'); terminals act on C0, DEL and C1
     * only. Every other byte becomes one '?' (as in ct_utf8_repair): a C1 control's two bytes are "??". */
    const uint8_t *s = text;
    size_t i = 0; /* one byte written per byte read: in place (out == text) it reads before it writes */
    if (!max) return "";
    for (size_t left = 0; i < n; i++) { /* left: bytes of a kept character still to copy */
        if (!left) {
            ct_utf8_char c = ct_utf8_next(s + i, n - i); /* not UTF-8: {0, 0}, a control */
            left = c.cp >= 0x20 && c.cp - 0x7f > 0x20 ? c.len : 0;
            if (i + (left ? left : 1) >= max) break; /* a character that does not fit whole is left out */
        }
        out[i] = left ? (left--, (char)s[i]) : '?';
    }
    out[i] = '\0';
    return out;
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
