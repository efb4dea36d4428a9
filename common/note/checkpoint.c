/* note: C2SP checkpoints (c2sp.org/tlog-checkpoint) and camtrust's two extension lines (see note.h). */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "note_priv.h"

#define EXT_AUDIT "camtrust-audit "
#define EXT_AUDIT_ROOT "camtrust-audit-root "
#define EXT_TIME "camtrust-time "

/* ASCII decimal without leading zeros (except "0"), at most INT64_MAX: what SQLite and the spec both take. */
static ct_err parse_u64(const char *p, size_t n, const char *what, uint64_t *out)
{
    CT_ENSURE_RET(n > 0 && n <= 19, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint %s: not a decimal number", what));
    CT_ENSURE_RET(n == 1 || p[0] != '0', ct_fail(CT_ERR_BAD_REQUEST, "checkpoint %s: leading zero", what));
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        CT_ENSURE_RET(p[i] >= '0' && p[i] <= '9', ct_fail(CT_ERR_BAD_REQUEST, "checkpoint %s: not a decimal number", what));
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    CT_ENSURE_RET(v <= INT64_MAX, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint %s: too large", what));
    *out = v;
    return CT_OK;
}

ct_err ct_checkpoint_format(const ct_checkpoint *c, ct_buf *out)
{
    CT_ENSURE_RET(c && out, CT_ERR_ARG);
    size_t n = strnlen(c->origin, CT_NOTE_NAME_MAX);
    CT_ENSURE_RET(n > 0 && n < CT_NOTE_NAME_MAX && !memchr(c->origin, '\n', n),
                  ct_fail(CT_ERR_ARG, "a checkpoint origin is one non-empty line"));
    CT_GUARD_RET(ct_buf_appendf(out, "%s\n%llu\n", c->origin, (unsigned long long)c->size));
    CT_GUARD_RET(ct_base64_encode(c->root, sizeof c->root, false, out));
    CT_GUARD_RET(ct_buf_append(out, "\n", 1));
    if (c->has_audit) {
        CT_GUARD_RET(ct_buf_appendf(out, EXT_AUDIT "%llu ", (unsigned long long)c->audit_entries));
        CT_GUARD_RET(ct_base64_encode(c->audit_hash, sizeof c->audit_hash, false, out));
        CT_GUARD_RET(ct_buf_append(out, "\n", 1));
    }
#ifndef CT_NOTE_NO_AUDIT_ROOT
    if (c->has_audit && c->has_audit_root) {
        CT_GUARD_RET(ct_buf_append(out, EXT_AUDIT_ROOT, strlen(EXT_AUDIT_ROOT)));
        CT_GUARD_RET(ct_base64_encode(c->audit_root, sizeof c->audit_root, false, out));
        CT_GUARD_RET(ct_buf_append(out, "\n", 1));
    }
#endif
    if (c->has_time) CT_GUARD_RET(ct_buf_appendf(out, EXT_TIME "%llu\n", (unsigned long long)c->time_ms));
    return CT_OK;
}

/* "camtrust-audit N HASH" after its prefix. */
static ct_err parse_audit(const char *p, size_t n, ct_checkpoint *out)
{
    const char *sp = memchr(p, ' ', n);
    CT_ENSURE_RET(sp, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint audit line: not 'camtrust-audit ENTRIES HASH'"));
    CT_GUARD_RET(parse_u64(p, (size_t)(sp - p), "audit entries", &out->audit_entries));
    size_t rest = n - (size_t)(sp - p) - 1;
    CT_GUARD_RET(note_b64_exact(sp + 1, rest, out->audit_hash, sizeof out->audit_hash, NULL, "checkpoint audit hash"));
    out->has_audit = true;
    return CT_OK;
}

ct_err ct_checkpoint_parse(const uint8_t *text, size_t len, ct_checkpoint *out)
{
    CT_ENSURE_RET(text && out, CT_ERR_ARG);
    memset(out, 0, sizeof *out);
    CT_ENSURE_RET(len <= CT_NOTE_MAX, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint of %zu bytes", len));
    CT_ENSURE_RET(len > 0 && text[len - 1] == '\n', ct_fail(CT_ERR_BAD_REQUEST, "checkpoint does not end in a newline"));
    CT_GUARD_RET(note_chars_check(text, len, "checkpoint"));
    size_t line = 0;
    for (size_t start = 0; start < len; line++) {
        const char *p = (const char *)text + start;
        const char *nl = memchr(p, '\n', len - start);
        size_t n = (size_t)(nl - p);
        start += n + 1;
        CT_ENSURE_RET(n > 0, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint line %zu is empty", line + 1));
        if (line == 0) {
            CT_ENSURE_RET(n < sizeof out->origin, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint origin too long"));
            memcpy(out->origin, p, n);
        } else if (line == 1) {
            CT_GUARD_RET(parse_u64(p, n, "tree size", &out->size));
        } else if (line == 2) {
            CT_GUARD_RET(note_b64_exact(p, n, out->root, sizeof out->root, NULL, "checkpoint root hash"));
        } else if (n > strlen(EXT_AUDIT) && memcmp(p, EXT_AUDIT, strlen(EXT_AUDIT)) == 0) {
            CT_ENSURE_RET(!out->has_audit, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint has two audit lines"));
            CT_GUARD_RET(parse_audit(p + strlen(EXT_AUDIT), n - strlen(EXT_AUDIT), out));
#ifndef CT_NOTE_NO_AUDIT_ROOT /* the firmware agent's build (no room): the line is an extension it ignores */
        } else if (n > strlen(EXT_AUDIT_ROOT) && memcmp(p, EXT_AUDIT_ROOT, strlen(EXT_AUDIT_ROOT)) == 0) {
            CT_ENSURE_RET(!out->has_audit_root, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint has two audit root lines"));
            CT_GUARD_RET(note_b64_exact(p + strlen(EXT_AUDIT_ROOT), n - strlen(EXT_AUDIT_ROOT), out->audit_root,
                                        sizeof out->audit_root, NULL, "checkpoint audit root"));
            out->has_audit_root = true;
#endif
        } else if (n > strlen(EXT_TIME) && memcmp(p, EXT_TIME, strlen(EXT_TIME)) == 0) {
            CT_ENSURE_RET(!out->has_time, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint has two time lines"));
            CT_GUARD_RET(parse_u64(p + strlen(EXT_TIME), n - strlen(EXT_TIME), "time", &out->time_ms));
            out->has_time = true;
        } /* any other extension line: opaque, as the spec says */
    }
    CT_ENSURE_RET(line >= 3, ct_fail(CT_ERR_BAD_REQUEST, "checkpoint has %zu lines, not origin, size and root hash", line));
#ifndef CT_NOTE_NO_AUDIT_ROOT
    /* The root is of a tree of audit_entries leaves: without that line it binds no size. */
    CT_ENSURE_RET(!out->has_audit_root || out->has_audit,
                  ct_fail(CT_ERR_BAD_REQUEST, "checkpoint has an audit root line but no audit line"));
#endif
    return CT_OK;
}

ct_err ct_checkpoint_open(const uint8_t *note, size_t len, const ct_note_verifier *v, ct_checkpoint *out)
{
    size_t text_len = 0;
    CT_GUARD_RET(ct_note_open(note, len, v, &text_len));
    CT_GUARD_RET(ct_checkpoint_parse(note, text_len, out));
    CT_ENSURE_RET(strcmp(out->origin, v->name) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "a checkpoint of log %.80s, not of %.80s", out->origin, v->name));
    return CT_OK;
}
