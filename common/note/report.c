/* A witness's report of an inconsistent log (note.h): two checkpoints of one log that cannot both be true, and
 * the consistency proof the witness was given. Length-prefixed, so that notes (which hold blank lines) need no
 * escaping; parsed strictly and bounded, as outside input. */
#include <string.h>

#include "note_priv.h"

static const char k_magic[] = "camtrust witness report v1\n";
static const char k_audit_line[] = "fork audit\n";

ct_err ct_witness_report_format(const ct_witness_report *r, ct_buf *out)
{
    CT_ENSURE_RET(r->kept_len > 0 && r->served_len > 0 && r->proof_n <= CT_MERKLE_MAX_PATH,
                  ct_fail(CT_ERR_ARG, "ct_witness_report_format: bad argument"));
    size_t need = strlen(k_magic) + r->kept_len + r->served_len + 64 + r->proof_n * 45 + strlen(k_audit_line);
    CT_ENSURE_RET(r->kept_len + r->served_len <= CT_WITNESS_REPORT_MAX,
                  ct_fail(CT_ERR_TOO_LARGE, "the report would be over %d bytes", CT_WITNESS_REPORT_MAX));
    CT_GUARD_RET(ct_buf_alloc(out, need + 1));
    CT_GUARD_RET(ct_buf_appendf(out, "%skept %zu\n", k_magic, r->kept_len));
    CT_GUARD_RET(ct_buf_append(out, r->kept, r->kept_len));
    CT_GUARD_RET(ct_buf_appendf(out, "served %zu\n", r->served_len));
    CT_GUARD_RET(ct_buf_append(out, r->served, r->served_len));
    CT_GUARD_RET(ct_buf_append(out, "proof", 5));
    for (size_t i = 0; i < r->proof_n; i++) {
        CT_GUARD_RET(ct_buf_append(out, " ", 1));
        CT_GUARD_RET(ct_base64_encode(r->proof[i], CT_MERKLE_HASH_LEN, false, out));
    }
    CT_GUARD_RET(ct_buf_append(out, "\n", 1));
    if (r->audit) CT_GUARD_RET(ct_buf_append(out, k_audit_line, strlen(k_audit_line)));
    if (out->len <= CT_WITNESS_REPORT_MAX) return CT_OK;
    ct_buf_free(out);
    return ct_fail(CT_ERR_TOO_LARGE, "the report would be over %d bytes", CT_WITNESS_REPORT_MAX);
}

static ct_err malformed(const char *why)
{
    return ct_fail(CT_ERR_BAD_REQUEST, "not a witness report (%s): want \"camtrust witness report v1\", \"kept N\" and N "
                                       "bytes, \"served N\" and N bytes, \"proof [base64 hash ...]\", [\"fork audit\"]",
                   why);
}

/* "<word> <decimal>\n" at *p, then that many bytes. */
static ct_err part(const uint8_t **p, const uint8_t *end, const char *word, const uint8_t **data, size_t *len)
{
    size_t wl = strlen(word);
    CT_ENSURE_RET((size_t)(end - *p) > wl + 1 && memcmp(*p, word, wl) == 0 && (*p)[wl] == ' ', malformed(word));
    const uint8_t *q = *p + wl + 1;
    size_t n = 0, digits = 0;
    for (; q < end && *q >= '0' && *q <= '9' && digits < 6; q++, digits++) n = n * 10 + (size_t)(*q - '0');
    CT_ENSURE_RET(digits > 0 && (digits == 1 || (*p)[wl + 1] != '0') && q < end && *q == '\n', malformed(word));
    q++;
    CT_ENSURE_RET(n > 0 && n <= (size_t)(end - q), malformed(word));
    *data = q;
    *len = n;
    *p = q + n;
    return CT_OK;
}

ct_err ct_witness_report_parse(const uint8_t *body, size_t len, ct_witness_report *r)
{
    memset(r, 0, sizeof *r);
    CT_ENSURE_RET(len <= CT_WITNESS_REPORT_MAX,
                  ct_fail(CT_ERR_TOO_LARGE, "a witness report is at most %d bytes", CT_WITNESS_REPORT_MAX));
    const uint8_t *p = body, *end = body + len;
    CT_ENSURE_RET(len > strlen(k_magic) && memcmp(body, k_magic, strlen(k_magic)) == 0, malformed("first line"));
    p += strlen(k_magic);
    CT_GUARD_RET(part(&p, end, "kept", &r->kept, &r->kept_len));
    CT_GUARD_RET(part(&p, end, "served", &r->served, &r->served_len));
    CT_ENSURE_RET((size_t)(end - p) >= 6 && memcmp(p, "proof", 5) == 0 && end[-1] == '\n', malformed("proof"));
    p += 5;
    while (*p == ' ') {
        const uint8_t *h = p + 1, *e = h;
        while (e < end && *e != ' ' && *e != '\n') e++;
        CT_ENSURE_RET(r->proof_n < CT_MERKLE_MAX_PATH &&
                          note_b64_exact((const char *)h, (size_t)(e - h), r->proof[r->proof_n], CT_MERKLE_HASH_LEN,
                                         NULL, "proof hash") == CT_OK,
                      malformed("proof hash"));
        r->proof_n++;
        p = e;
    }
    CT_ENSURE_RET(p < end && *p == '\n', malformed("after the proof"));
    p++;
    r->audit = (size_t)(end - p) == strlen(k_audit_line) && memcmp(p, k_audit_line, strlen(k_audit_line)) == 0;
    CT_ENSURE_RET(p == end || r->audit, malformed("after the proof"));
    return CT_OK;
}
