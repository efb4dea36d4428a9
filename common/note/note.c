/* note: C2SP signed notes with Ed25519 (see note.h). Verification is wolfSSL's Ed25519 (RFC 8032, the pure
 * variant over the whole text), built into Debian's wolfSSL (HAVE_ED25519). */
#define _POSIX_C_SOURCE 200809L
#include "note.h"

#include <stdlib.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ed25519.h>

#include "note_priv.h"

static const char k_dash[] = "\xE2\x80\x94 "; /* U+2014 EM DASH, then a space: every signature line starts so */
#define DASH_LEN 4

static bool unicode_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

ct_err note_chars_check(const uint8_t *p, size_t n, const char *what)
{
    for (size_t i = 0; i < n;) {
        ct_utf8_char c = ct_utf8_next(p + i, n - i);
        if (c.len == 0) return ct_fail(CT_ERR_BAD_REQUEST, "%s: not UTF-8 at byte %zu", what, i);
        if (c.cp < 0x20 && c.cp != '\n') return ct_fail(CT_ERR_BAD_REQUEST, "%s: control character 0x%02x at byte %zu", what, (unsigned)c.cp, i);
        i += c.len;
    }
    return CT_OK;
}

bool ct_note_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len >= CT_NOTE_NAME_MAX) return false;
    const uint8_t *p = (const uint8_t *)name;
    for (size_t i = 0; i < len;) {
        ct_utf8_char c = ct_utf8_next(p + i, len - i);
        if (c.len == 0 || c.cp < 0x20 || c.cp == '+' || unicode_space(c.cp)) return false;
        i += c.len;
    }
    return true;
}

ct_err note_b64_exact(const char *s, size_t n, uint8_t *out, size_t want, size_t *got, const char *what)
{
    ct_err rc = CT_OK;
    ct_buf dec = CT_BUF_INIT;
    char again[CT_NOTE_MAX / 8];
    ct_buf enc = {(uint8_t *)again, 0, sizeof again};
    CT_ENSURE_MSG(n > 0 && n < sizeof again, CT_ERR_BAD_REQUEST, "%s: %zu characters of base64", what, n);
    for (size_t i = 0; i < n; i++) /* ct_base64_decode would skip spaces and line breaks: none belong here */
        CT_ENSURE_MSG(s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n', CT_ERR_BAD_REQUEST,
                      "%s: space inside base64", what);
    CT_GUARD(ct_buf_alloc(&dec, want ? want : n));
    rc = ct_base64_decode((const uint8_t *)s, n, &dec);
    CT_ENSURE_MSG(rc == CT_OK, CT_ERR_BAD_REQUEST, "%s: malformed base64", what);
    CT_ENSURE_MSG(!want || dec.len == want, CT_ERR_BAD_REQUEST, "%s: %zu bytes, not %zu", what, dec.len, want);
    /* Only the canonical encoding: one value, one spelling (no stray bits in the last character). */
    CT_GUARD(ct_base64_encode(dec.data, dec.len, false, &enc));
    CT_ENSURE_MSG(enc.len == n && memcmp(enc.data, s, n) == 0, CT_ERR_BAD_REQUEST, "%s: non-canonical base64", what);
    memcpy(out, dec.data, dec.len);
    if (got) *got = dec.len;
cleanup:
    ct_buf_free(&dec);
    return rc;
}

static ct_err key_id(const char *name, uint8_t alg, const uint8_t pub[CT_NOTE_PUB_LEN], uint8_t id[4])
{
    uint8_t buf[CT_NOTE_NAME_MAX + 2 + CT_NOTE_PUB_LEN], h[32];
    size_t n = strlen(name);
    CT_ENSURE_RET(n < CT_NOTE_NAME_MAX, ct_fail(CT_ERR_ARG, "key name too long"));
    memcpy(buf, name, n);
    buf[n] = '\n';
    buf[n + 1] = alg;
    memcpy(buf + n + 2, pub, CT_NOTE_PUB_LEN);
    CT_GUARD_RET(ct_sha256(buf, n + 2 + CT_NOTE_PUB_LEN, h));
    memcpy(id, h, 4);
    return CT_OK;
}

ct_err ct_note_verifier_make(const char *name, const uint8_t pub[CT_NOTE_PUB_LEN], ct_note_verifier *out)
{
    return note_verifier_make_alg(name, CT_NOTE_ED25519, pub, out);
}

ct_err note_verifier_make_alg(const char *name, uint8_t alg, const uint8_t pub[CT_NOTE_PUB_LEN], ct_note_verifier *out)
{
    CT_ENSURE_RET(name && pub && out, CT_ERR_ARG);
    size_t n = strnlen(name, CT_NOTE_NAME_MAX);
    CT_ENSURE_RET(ct_note_name_valid(name, n),
                  ct_fail(CT_ERR_CONFIG, "'%.80s' is not a note key name (no spaces, no '+', 1-%d bytes of UTF-8)", name,
                          CT_NOTE_NAME_MAX - 1));
    memset(out, 0, sizeof *out);
    memcpy(out->name, name, n);
    memcpy(out->pub, pub, CT_NOTE_PUB_LEN);
    return key_id(out->name, alg, pub, out->key_id);
}

ct_err ct_note_verifier_format(const ct_note_verifier *v, char *out, size_t out_max)
{
    return note_verifier_format_alg(v, CT_NOTE_ED25519, out, out_max);
}

ct_err note_verifier_format_alg(const ct_note_verifier *v, uint8_t alg, char *out, size_t out_max)
{
    uint8_t key[1 + CT_NOTE_PUB_LEN] = {alg};
    char b64[64], hex[9];
    ct_buf enc = {(uint8_t *)b64, 0, sizeof b64 - 1};
    memcpy(key + 1, v->pub, CT_NOTE_PUB_LEN);
    CT_GUARD_RET(ct_base64_encode(key, sizeof key, false, &enc));
    b64[enc.len] = '\0';
    CT_GUARD_RET(ct_hex_encode(v->key_id, 4, hex, sizeof hex));
    return ct_snprintf(out, out_max, "%s+%s+%s", v->name, hex, b64);
}

ct_err ct_note_verifier_parse(const char *s, size_t len, ct_note_verifier *out)
{
    return note_verifier_parse_alg(s, len, CT_NOTE_ED25519, out);
}

ct_err note_verifier_parse_alg(const char *s, size_t len, uint8_t alg, ct_note_verifier *out)
{
    uint8_t key[1 + CT_NOTE_PUB_LEN], id[4];
    char hex[9];
    size_t id_len = 0;
    CT_ENSURE_RET(s && out, CT_ERR_ARG);
    if (len > 0 && s[len - 1] == '\n') len--;
    CT_ENSURE_RET(len > 0 && len < CT_NOTE_VKEY_MAX, ct_fail(CT_ERR_BAD_REQUEST, "verifier key: %zu bytes", len));
    const char *plus1 = memchr(s, '+', len);
    CT_ENSURE_RET(plus1, ct_fail(CT_ERR_BAD_REQUEST, "verifier key: not name+hash+key"));
    size_t name_len = (size_t)(plus1 - s), rest = len - name_len - 1;
    CT_ENSURE_RET(ct_note_name_valid(s, name_len), ct_fail(CT_ERR_BAD_REQUEST, "verifier key: bad key name"));
    CT_ENSURE_RET(rest > 9 && plus1[9] == '+', ct_fail(CT_ERR_BAD_REQUEST, "verifier key: key ID is not 8 hex digits"));
    memcpy(hex, plus1 + 1, 8);
    hex[8] = '\0';
    /* Lower-case only, as the key ID is written: one spelling per verifier key. */
    CT_ENSURE_RET(strspn(hex, "0123456789abcdef") == 8 && ct_hex_decode(hex, id, sizeof id, &id_len) == CT_OK &&
                      id_len == 4,
                  ct_fail(CT_ERR_BAD_REQUEST, "verifier key: key ID is not 8 hex digits"));
    CT_GUARD_RET(note_b64_exact(plus1 + 10, rest - 9, key, sizeof key, NULL, "verifier key"));
    CT_ENSURE_RET(key[0] == alg,
                  ct_fail(CT_ERR_BAD_REQUEST, "verifier key: algorithm 0x%02x is not %s", key[0],
                          alg == CT_NOTE_ED25519 ? "Ed25519" : "cosignature/v1 (0x04)"));
    char name[CT_NOTE_NAME_MAX];
    memcpy(name, s, name_len);
    name[name_len] = '\0';
    CT_GUARD_RET(note_verifier_make_alg(name, alg, key + 1, out));
    CT_ENSURE_RET(memcmp(out->key_id, id, 4) == 0,
                  ct_fail(CT_ERR_BAD_REQUEST, "verifier key: key ID %s does not match its name and key", hex));
    return CT_OK;
}

static ct_err append_sig_line(ct_buf *out, const ct_note_verifier *v, const uint8_t sig[CT_NOTE_SIG_LEN])
{
    uint8_t raw[4 + CT_NOTE_SIG_LEN];
    memcpy(raw, v->key_id, 4);
    memcpy(raw + 4, sig, CT_NOTE_SIG_LEN);
    return note_sig_line_append(out, v->name, raw, sizeof raw);
}

ct_err note_sig_line_append(ct_buf *out, const char *name, const uint8_t *raw, size_t raw_len)
{
    CT_GUARD_RET(ct_buf_append(out, k_dash, DASH_LEN));
    CT_GUARD_RET(ct_buf_append(out, name, strlen(name)));
    CT_GUARD_RET(ct_buf_append(out, " ", 1));
    CT_GUARD_RET(ct_base64_encode(raw, raw_len, false, out));
    return ct_buf_append(out, "\n", 1);
}

ct_err ct_note_sign(const uint8_t *text, size_t text_len, const ct_note_verifier *v, ct_note_sign_fn sign, void *arg,
                    ct_buf *out)
{
    ct_err rc = CT_OK;
    uint8_t sig[CT_NOTE_SIG_LEN];
    CT_ENSURE(text && v && sign && out, CT_ERR_ARG);
    CT_ENSURE_MSG(text_len > 0 && text_len < CT_NOTE_MAX / 2 && text[text_len - 1] == '\n', CT_ERR_ARG,
                  "a note's text ends in a newline");
    CT_GUARD(note_chars_check(text, text_len, "note text"));
    CT_GUARD(sign(arg, text, text_len, sig));
    CT_GUARD(ct_buf_alloc(out, text_len + 1 + DASH_LEN + strlen(v->name) + 1 + 4 * (4 + CT_NOTE_SIG_LEN + 2) / 3 + 2));
    CT_GUARD(ct_buf_append(out, text, text_len));
    CT_GUARD(ct_buf_append(out, "\n", 1));
    CT_GUARD(append_sig_line(out, v, sig));
cleanup:
    if (rc != CT_OK) ct_buf_free(out);
    return rc;
}

bool note_ed25519_ok(const uint8_t pub[CT_NOTE_PUB_LEN], const uint8_t *msg, size_t len, const uint8_t *sig)
{
    ed25519_key key;
    int res = 0;
    if (wc_ed25519_init(&key) != 0) return false;
    bool ok = wc_ed25519_import_public(pub, CT_NOTE_PUB_LEN, &key) == 0 &&
              wc_ed25519_verify_msg(sig, CT_NOTE_SIG_LEN, msg, (word32)len, &res, &key) == 0 && res == 1;
    wc_ed25519_free(&key);
    return ok;
}

ct_err note_line_parse(const char *p, size_t n, size_t line_no, const char **name, size_t *name_len, uint8_t *raw,
                       size_t raw_max, size_t *raw_len)
{
    CT_ENSURE_RET(n > DASH_LEN && memcmp(p, k_dash, DASH_LEN) == 0,
                  ct_fail(CT_ERR_BAD_REQUEST, "signature line %zu does not start with an em dash and a space", line_no));
    p += DASH_LEN;
    n -= DASH_LEN;
    const char *sp = memchr(p, ' ', n);
    CT_ENSURE_RET(sp, ct_fail(CT_ERR_BAD_REQUEST, "signature line %zu: no space between key name and signature", line_no));
    *name = p;
    *name_len = (size_t)(sp - p);
    size_t b64_len = n - *name_len - 1;
    CT_ENSURE_RET(ct_note_name_valid(p, *name_len), ct_fail(CT_ERR_BAD_REQUEST, "signature line %zu: bad key name", line_no));
    CT_ENSURE_RET(b64_len <= raw_max, ct_fail(CT_ERR_BAD_REQUEST, "signature line %zu: signature too long", line_no));
    CT_GUARD_RET(note_b64_exact(sp + 1, b64_len, raw, 0, raw_len, "signature"));
    CT_ENSURE_RET(*raw_len >= 5, ct_fail(CT_ERR_BAD_REQUEST, "signature line %zu: signature shorter than a key ID", line_no));
    return CT_OK;
}

/* One signature line [p, p + n) (without its newline): does it carry v's signature, and does that verify? */
static ct_err check_line(const uint8_t *note, size_t text_len, const char *p, size_t n, size_t line_no,
                         const ct_note_verifier *v, bool *found, char *other, size_t other_max)
{
    ct_err rc = CT_OK;
    uint8_t *raw = NULL;
    const char *name = NULL;
    size_t name_len = 0, raw_len = 0;
    raw = malloc(n + 1);
    CT_ENSURE(raw, CT_ERR_NOMEM);
    CT_GUARD(note_line_parse(p, n, line_no, &name, &name_len, raw, n + 1, &raw_len));
    bool same_name = name_len == strlen(v->name) && memcmp(name, v->name, name_len) == 0;
    if (!same_name || memcmp(raw, v->key_id, 4) != 0) { /* another key's: ignored, but remembered for the reason */
        if (!other[0]) {
            char hex[9];
            CT_GUARD(ct_hex_encode(raw, 4, hex, sizeof hex));
            CT_GUARD(ct_snprintf(other, other_max, "%.*s (key ID %s)", (int)(name_len > 80 ? 80 : name_len), name, hex));
        }
        goto cleanup;
    }
    CT_ENSURE_MSG(raw_len == 4 + CT_NOTE_SIG_LEN, CT_ERR_INTEGRITY,
                  "the signature by %s is %zu bytes, not an Ed25519 signature", v->name, raw_len - 4);
    CT_ENSURE_MSG(note_ed25519_ok(v->pub, note, text_len, raw + 4), CT_ERR_INTEGRITY,
                  "the signature by %s does not verify (the note was altered or signed by another key)", v->name);
    *found = true;
cleanup:
    free(raw);
    return rc;
}

ct_err note_split(const uint8_t *note, size_t len, size_t *text_len)
{
    CT_ENSURE_RET(len <= CT_NOTE_MAX, ct_fail(CT_ERR_BAD_REQUEST, "note of %zu bytes (at most %d)", len, CT_NOTE_MAX));
    CT_ENSURE_RET(len > 0 && note[len - 1] == '\n', ct_fail(CT_ERR_BAD_REQUEST, "note does not end in a newline"));
    CT_GUARD_RET(note_chars_check(note, len, "note"));
    size_t split = len;
    for (size_t i = len - 1; i > 0 && split == len; i--)
        if (note[i] == '\n' && note[i - 1] == '\n') split = i - 1;
    CT_ENSURE_RET(split < len, ct_fail(CT_ERR_BAD_REQUEST, "note has no blank line before its signatures"));
    CT_ENSURE_RET(split + 2 < len, ct_fail(CT_ERR_BAD_REQUEST, "note has no signature"));
    *text_len = split + 1;
    return CT_OK;
}

ct_err ct_note_open(const uint8_t *note, size_t len, const ct_note_verifier *v, size_t *text_len)
{
    CT_ENSURE_RET(note && v && text_len, CT_ERR_ARG);
    size_t text = 0;
    CT_GUARD_RET(note_split(note, len, &text));
    size_t start = text + 1, lines = 0;
    bool found = false;
    char other[128] = "";
    while (start < len) {
        const uint8_t *nl = memchr(note + start, '\n', len - start);
        size_t n = (size_t)(nl - (note + start)); /* the note ends in '\n': nl is never NULL */
        CT_ENSURE_RET(++lines <= CT_NOTE_MAX_SIGS,
                      ct_fail(CT_ERR_BAD_REQUEST, "note has more than %d signatures", CT_NOTE_MAX_SIGS));
        CT_GUARD_RET(check_line(note, text, (const char *)note + start, n, lines, v, &found, other, sizeof other));
        start += n + 1;
    }
    char hex[9];
    CT_GUARD_RET(ct_hex_encode(v->key_id, 4, hex, sizeof hex));
    CT_ENSURE_RET(found, ct_fail(CT_ERR_INTEGRITY, "note is not signed by %.80s (key ID %s)%s%s", v->name, hex,
                                 other[0] ? "; signed by " : "", other));
    *text_len = text;
    return CT_OK;
}

ct_err ct_note_verifier_load(const char *path, ct_note_verifier *out)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT;
    CT_GUARD(ct_file_read(path, CT_NOTE_VKEY_MAX + 2, &file));
    rc = ct_note_verifier_parse((const char *)file.data, file.len, out);
    if (rc != CT_OK) {
        char why[CT_NOTE_VKEY_MAX];
        if (ct_strlcpy(why, sizeof why, ct_err_detail()) != CT_OK) why[0] = '\0';
        rc = ct_fail(rc, "%s: %s", path, why);
    }
cleanup:
    ct_buf_free(&file);
    return rc;
}

ct_err ct_note_verifier_write(const ct_note_verifier *v, const char *path)
{
    char text[CT_NOTE_VKEY_MAX + 1];
    CT_GUARD_RET(ct_note_verifier_format(v, text, sizeof text - 1));
    size_t n = strlen(text);
    text[n++] = '\n';
    return ct_file_write_atomic(path, text, n, 0644);
}
