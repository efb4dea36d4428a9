#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static ct_log_level ct_log_min = CT_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ct_log_set_level(ct_log_level min) { ct_log_min = min; }

void ct_log(ct_log_level level, const char *event, const char *fmt, ...)
{
    if (level < ct_log_min) return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], event);
    if (n < 0 || (size_t)n >= sizeof line) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One event, one line: control characters from outside input cannot start a forged line. */
    for (char *p = line + n; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    /* One write per line keeps lines whole when threads log at once. */
    fprintf(stderr, "%s\n", line);
}

const char *ct_log_quote(char *out, size_t max, const char *s)
{
    static const char cut[] = "...\"";
    const char *p = s ? s : "";
    size_t len = 0;
    for (const char *q = p; *q; q++) len += (*q == '"' || *q == '\\') ? 2 : 1;
    bool whole = len + 3 <= max;
    if (!whole && max < sizeof cut + 2) { /* no room even for a cut value */
        if (max) out[0] = '\0';
        return out;
    }
    size_t end = whole ? 1 + len : max - sizeof cut; /* where the value's characters stop */
    size_t n = 0;
    out[n++] = '"';
    for (; *p; p++) {
        bool esc = *p == '"' || *p == '\\';
        if (n + (esc ? 2 : 1) > end) break;
        if (esc) out[n++] = '\\';
        out[n++] = *p;
    }
    if (!whole) {
        memcpy(out + n, cut, sizeof cut);
        return out;
    }
    out[n++] = '"';
    out[n] = '\0';
    return out;
}
