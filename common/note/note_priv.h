/* Internal to common/note: what note.c and checkpoint.c share. */
#ifndef CAMTRUST_NOTE_PRIV_H
#define CAMTRUST_NOTE_PRIV_H

#include "note.h"

/* Valid UTF-8 without control characters other than '\n' (CT_ERR_BAD_REQUEST naming `what` and the offset). */
CT_MUST_CHECK ct_err note_chars_check(const uint8_t *p, size_t n, const char *what);
/* Strict base64 [s, s + n): canonical, no spaces; exactly `want` bytes unless want is 0 (then at most n bytes
 * land in out, *got says how many). */
CT_MUST_CHECK ct_err note_b64_exact(const char *s, size_t n, uint8_t *out, size_t want, size_t *got, const char *what);

#endif
