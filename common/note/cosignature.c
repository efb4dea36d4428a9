/* cosignature: C2SP tlog-cosignature/v1 (see note.h). The signed message binds the witness's time to the checkpoint,
 * so an old cosignature cannot be shown as a fresh one. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "note.h"
#include "note_priv.h"

#define COSIG_RAW (4 + 8 + CT_NOTE_SIG_LEN)
#define COSIG_HEADER_MAX 48 /* "cosignature/v1\ntime " + 20 digits + "\n" */

ct_err ct_cosig_verifier_make(const char *name, const uint8_t pub[CT_NOTE_PUB_LEN], ct_note_verifier *out)
{
    return note_verifier_make_alg(name, CT_COSIG_V1, pub, out);
}

ct_err ct_cosig_verifier_format(const ct_note_verifier *w, char *out, size_t out_max)
{
    return note_verifier_format_alg(w, CT_COSIG_V1, out, out_max);
}

ct_err ct_cosig_verifier_parse(const char *s, size_t len, ct_note_verifier *w)
{
    return note_verifier_parse_alg(s, len, CT_COSIG_V1, w);
}

/* The signed message: header || text (allocated into msg). */
static ct_err cosig_message(const uint8_t *text, size_t text_len, uint64_t t, ct_buf *msg)
{
    CT_ENSURE_RET(text && text_len > 0 && text_len < CT_NOTE_MAX && text[text_len - 1] == '\n',
                  ct_fail(CT_ERR_BAD_REQUEST, "a checkpoint's text ends in a newline"));
    CT_GUARD_RET(ct_buf_alloc(msg, COSIG_HEADER_MAX + text_len));
    CT_GUARD_RET(ct_buf_appendf(msg, "cosignature/v1\ntime %llu\n", (unsigned long long)t));
    return ct_buf_append(msg, text, text_len);
}

ct_err ct_cosig_sign(const uint8_t *text, size_t text_len, const ct_note_verifier *w, uint64_t t, ct_note_sign_fn sign,
                     void *arg, ct_buf *line)
{
    ct_err rc = CT_OK;
    ct_buf msg = CT_BUF_INIT;
    uint8_t raw[COSIG_RAW];
    CT_ENSURE(w && sign && line && t <= INT64_MAX, CT_ERR_ARG);
    CT_GUARD(note_chars_check(text, text_len, "checkpoint text"));
    CT_GUARD(cosig_message(text, text_len, t, &msg));
    memcpy(raw, w->key_id, 4);
    for (int i = 0; i < 8; i++) raw[4 + i] = (uint8_t)(t >> (56 - 8 * i));
    CT_GUARD(sign(arg, msg.data, msg.len, raw + 12));
    CT_GUARD(note_sig_line_append(line, w->name, raw, sizeof raw));
cleanup:
    ct_buf_free(&msg);
    return rc;
}

ct_err ct_cosig_line_verify(const uint8_t *text, size_t text_len, const char *line, size_t line_len,
                            const ct_note_verifier *w, uint64_t *t)
{
    ct_err rc = CT_OK;
    ct_buf msg = CT_BUF_INIT;
    uint8_t raw[CT_COSIG_LINE_MAX];
    const char *name = NULL;
    size_t name_len = 0, raw_len = 0;
    char hex[9];
    CT_ENSURE(text && line && w && t, CT_ERR_ARG);
    if (line_len > 0 && line[line_len - 1] == '\n') line_len--;
    CT_ENSURE_MSG(line_len < CT_COSIG_LINE_MAX, CT_ERR_BAD_REQUEST, "cosignature line of %zu bytes", line_len);
    CT_GUARD(note_chars_check((const uint8_t *)line, line_len, "cosignature line"));
    CT_ENSURE_MSG(!memchr(line, '\n', line_len), CT_ERR_BAD_REQUEST, "cosignature: more than one line");
    CT_GUARD(note_line_parse(line, line_len, 1, &name, &name_len, raw, sizeof raw, &raw_len));
    CT_GUARD(ct_hex_encode(raw, 4, hex, sizeof hex));
    CT_ENSURE_MSG(name_len == strlen(w->name) && memcmp(name, w->name, name_len) == 0, CT_ERR_NOT_FOUND,
                  "cosignature by %.*s, not by witness %.80s", (int)(name_len > 80 ? 80 : name_len), name, w->name);
    CT_ENSURE_MSG(memcmp(raw, w->key_id, 4) == 0, CT_ERR_NOT_FOUND,
                  "cosignature by %.80s has key ID %s, not the witness's (another key of that name)", w->name, hex);
    CT_ENSURE_MSG(raw_len == COSIG_RAW, CT_ERR_INTEGRITY, "cosignature by %.80s is %zu bytes, not %d", w->name, raw_len,
                  COSIG_RAW);
    uint64_t when = 0;
    for (int i = 0; i < 8; i++) when = when << 8 | raw[4 + i];
    CT_ENSURE_MSG(when <= INT64_MAX, CT_ERR_BAD_REQUEST, "cosignature by %.80s: timestamp beyond 2^63 - 1", w->name);
    CT_GUARD(cosig_message(text, text_len, when, &msg));
    CT_ENSURE_MSG(note_ed25519_ok(w->pub, msg.data, msg.len, raw + 12), CT_ERR_INTEGRITY,
                  "the cosignature by %.80s does not verify (another checkpoint, another time or another key)", w->name);
    *t = when;
cleanup:
    ct_buf_free(&msg);
    return rc;
}

ct_err ct_cosig_open(const uint8_t *note, size_t len, const ct_note_verifier *w, size_t *text_len, uint64_t *t)
{
    size_t text = 0, lines = 0;
    CT_ENSURE_RET(note && w && text_len && t, CT_ERR_ARG);
    CT_GUARD_RET(note_split(note, len, &text));
    for (size_t start = text + 1; start < len;) {
        const uint8_t *nl = memchr(note + start, '\n', len - start);
        size_t n = (size_t)(nl - (note + start)); /* the note ends in '\n' */
        CT_ENSURE_RET(++lines <= CT_NOTE_MAX_SIGS,
                      ct_fail(CT_ERR_BAD_REQUEST, "note has more than %d signatures", CT_NOTE_MAX_SIGS));
        ct_err rc = ct_cosig_line_verify(note, text, (const char *)note + start, n, w, t);
        if (rc == CT_OK) {
            *text_len = text;
            return CT_OK;
        }
        if (rc != CT_ERR_NOT_FOUND) return rc; /* malformed, or w's line that does not verify */
        start += n + 1;
    }
    return ct_fail(CT_ERR_NOT_FOUND, "not cosigned by witness %.80s", w->name);
}

ct_err ct_cosig_verifiers_load(const char *path, ct_note_verifier *w, size_t max, size_t *n)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT;
    *n = 0;
    if (!ct_file_exists(path)) return CT_OK; /* no witness configured */
    CT_GUARD(ct_file_read(path, max * (CT_NOTE_VKEY_MAX + 2), &file));
    size_t line_no = 0;
    for (size_t start = 0; start < file.len;) {
        const uint8_t *nl = memchr(file.data + start, '\n', file.len - start);
        size_t len = nl ? (size_t)(nl - (file.data + start)) : file.len - start;
        const char *line = (const char *)file.data + start;
        start += len + 1;
        line_no++;
        if (len == 0 || line[0] == '#') continue;
        CT_ENSURE_MSG(*n < max, CT_ERR_CONFIG, "%s: more than %zu witnesses", path, max);
        rc = ct_cosig_verifier_parse(line, len, &w[*n]);
        if (rc != CT_OK) { /* (ct_fail_ctx: a detail formatted into the buffer it is read from comes out garbled) */
            rc = ct_fail_ctx(CT_ERR_CONFIG, "%s line %zu", path, line_no);
            goto cleanup;
        }
        for (size_t i = 0; i < *n; i++)
            CT_ENSURE_MSG(strcmp(w[i].name, w[*n].name) != 0, CT_ERR_CONFIG, "%s line %zu: witness %s twice", path,
                          line_no, w[*n].name);
        (*n)++;
    }
cleanup:
    ct_buf_free(&file);
    return rc;
}

ct_err ct_cosig_witnessed(const uint8_t *note, size_t len, const ct_note_verifier *w, size_t nw, size_t k,
                          const char *what, size_t *have)
{
    ct_err rc = CT_OK;
    size_t text_len = 0;
    uint64_t t = 0;
    char names[256] = "", why[256];
    ct_buf missing = {(uint8_t *)names, 0, sizeof names - 1}; /* names[] stays NUL-terminated */
    *have = 0;
    for (size_t i = 0; i < nw; i++) {
        rc = ct_cosig_open(note, len, &w[i], &text_len, &t);
        if (rc == CT_OK) {
            (*have)++;
            continue;
        }
        if (rc != CT_ERR_NOT_FOUND) { /* a cosignature that does not verify: edited, or forged */
            CT_GUARD_RET(ct_strlcpy(why, sizeof why, ct_err_detail()));
            return ct_fail(CT_ERR_INTEGRITY, "%s: %s", what, why);
        }
        if (ct_buf_appendf(&missing, "%s%.60s", missing.len ? ", " : "", w[i].name) != CT_OK) {} /* a long list: cut */
    }
    CT_ENSURE_RET(*have >= k, ct_fail(CT_ERR_INTEGRITY, "%s has %zu of the %zu cosignatures required (%zu witnesses "
                                                        "configured; missing: %s)",
                                      what, *have, k, nw, names[0] ? names : "none"));
    return CT_OK;
}
