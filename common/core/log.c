#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static ct_log_level ct_log_min = CT_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void ct_log_set_level(ct_log_level min) { ct_log_min = min; }

void ct_log(ct_log_level level, const char *event, const char *fmt, ...)
{
    if (level < ct_log_min) return;
    /* The date and time to the second, kept per thread: gmtime_r takes glibc's time zone lock on every call. */
    static _Thread_local time_t day_sec = -1;
    static _Thread_local char day[24];
    char line[1024 + 1]; /* and the newline */
    const size_t room = sizeof line - 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != day_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        if (snprintf(day, sizeof day, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec) >= (int)sizeof day)
            return;
        day_sec = ts.tv_sec;
    }
    int n = snprintf(line, room, "ts=%s.%03ldZ level=%s event=%s ", day, ts.tv_nsec / 1000000, level_names[level], event);
    if (n < 0 || (size_t)n >= room) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, room - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = m < 0 ? (size_t)n : (size_t)n + (size_t)m >= room ? room - 1 : (size_t)n + (size_t)m;
    /* One event, one line: control characters from outside input cannot start a forged line (nor, C1 included,
     * act on the terminal that shows it). In place, byte for byte: the length stays. */
    ct_text_safe(line + n, room - (size_t)n, line + n, len - (size_t)n);
    line[len++] = '\n';
    /* One write per line keeps lines whole when threads log at once (up to PIPE_BUF, a pipe takes it whole);
     * stdio's unbuffered stderr would format the line a second time. */
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        off += (size_t)w;
    }
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
