/* Internal to common/note: what note.c and checkpoint.c share. */
#ifndef CAMTRUST_NOTE_PRIV_H
#define CAMTRUST_NOTE_PRIV_H

#include "note.h"

/* Valid UTF-8 without control characters other than '\n' (CT_ERR_BAD_REQUEST naming `what` and the offset). */
CT_MUST_CHECK ct_err note_chars_check(const uint8_t *p, size_t n, const char *what);
/* Strict base64 [s, s + n): canonical, no spaces; exactly `want` bytes unless want is 0 (then at most n bytes
 * land in out, *got says how many). */
CT_MUST_CHECK ct_err note_b64_exact(const char *s, size_t n, uint8_t *out, size_t want, size_t *got, const char *what);

/* The verifier, its text form and its parse, for signature type `alg` (CT_NOTE_ED25519 or CT_COSIG_V1). */
CT_MUST_CHECK ct_err note_verifier_make_alg(const char *name, uint8_t alg, const uint8_t pub[CT_NOTE_PUB_LEN],
                                            ct_note_verifier *out);
CT_MUST_CHECK ct_err note_verifier_format_alg(const ct_note_verifier *v, uint8_t alg, char *out, size_t out_max);
CT_MUST_CHECK ct_err note_verifier_parse_alg(const char *s, size_t len, uint8_t alg, ct_note_verifier *out);
bool note_ed25519_ok(const uint8_t pub[CT_NOTE_PUB_LEN], const uint8_t *msg, size_t len, const uint8_t *sig);
/* Appends "<em dash> name base64(raw)\n". */
CT_MUST_CHECK ct_err note_sig_line_append(ct_buf *out, const char *name, const uint8_t *raw, size_t raw_len);
/* One signature line (no newline): its key name (pointing into p) and decoded bytes (at least 5; raw_max room). */
CT_MUST_CHECK ct_err note_line_parse(const char *p, size_t n, size_t line_no, const char **name, size_t *name_len,
                                     uint8_t *raw, size_t raw_max, size_t *raw_len);
/* A note's format: bounded, UTF-8, a blank line, at least one signature line; *text_len = its text's length. */
CT_MUST_CHECK ct_err note_split(const uint8_t *note, size_t len, size_t *text_len);

#endif
