#include "core.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Every name and message in one block of text, and the table holds offsets into it: with no pointers the table
 * needs no load-time relocation and stays in read-only data (it counts against the camera agent's size). */
struct ct_error_text {
#define CT_X_TEXT(n, s, m) char n##_name[sizeof #n]; char n##_msg[sizeof m];
    CT_ERROR_TABLE(CT_X_TEXT)
#undef CT_X_TEXT
};
static const struct ct_error_text ct_error_text = {
#define CT_X_INIT(n, s, m) #n, m,
    CT_ERROR_TABLE(CT_X_INIT)
#undef CT_X_INIT
};
_Static_assert(sizeof(struct ct_error_text) <= UINT16_MAX, "error text offsets are 16-bit");

static const struct {
    uint16_t name, message;
    int16_t status;
} ct_error_table[CT_ERR__COUNT] = {
#define CT_X_ROW(n, s, m) [n] = {offsetof(struct ct_error_text, n##_name), offsetof(struct ct_error_text, n##_msg), s},
    CT_ERROR_TABLE(CT_X_ROW)
#undef CT_X_ROW
};

static _Thread_local char ct_detail[CT_ERR_DETAIL_MAX];

static int in_range(ct_err e) { return (int)e >= 0 && e < CT_ERR__COUNT; }

static const char *text_at(uint16_t off) { return (const char *)&ct_error_text + off; }

const char *ct_err_name(ct_err e) { return in_range(e) ? text_at(ct_error_table[e].name) : "CT_ERR_UNKNOWN"; }
const char *ct_err_message(ct_err e) { return in_range(e) ? text_at(ct_error_table[e].message) : "unknown error"; }
int ct_err_http_status(ct_err e) { return in_range(e) ? ct_error_table[e].status : 500; }

ct_err ct_fail(ct_err e, const char *fmt, ...)
{
    /* Formatted apart first: callers may quote the detail they replace (ct_fail(e, "%s: %s", path,
     * ct_err_detail())), which vsnprintf into the same buffer would overwrite while it reads it. */
    char formatted[sizeof ct_detail];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(formatted, sizeof formatted, fmt, ap);
    va_end(ap);
    if (n < 0) formatted[0] = '\0';
    /* Details quote outside input (CSR names, paths): one line, so they cannot forge log lines, and no control a
     * terminal acts on (C1 included), since they reach officers' and cameras' terminals. */
    ct_text_safe(ct_detail, sizeof ct_detail, formatted, strlen(formatted));
    return e;
}

ct_err ct_fail_ctx(ct_err e, const char *fmt, ...)
{
    char context[200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
    if (n < 0) context[0] = '\0';
    return ct_fail(e, "%s: %s", context, *ct_detail ? ct_detail : ct_err_message(e)); /* ct_fail formats apart */
}

void ct_err_save(ct_err_saved *s, ct_err rc)
{
    s->rc = rc;
    if (rc == CT_OK || ct_strlcpy(s->detail, sizeof s->detail, *ct_detail ? ct_detail : ct_err_message(rc)) != CT_OK)
        s->detail[0] = '\0';
}

ct_err ct_err_restore(const ct_err_saved *s) { return s->rc == CT_OK ? CT_OK : ct_fail(s->rc, "%s", s->detail); }

const char *ct_err_detail(void) { return ct_detail; }
void ct_err_clear(void) { ct_detail[0] = '\0'; }
