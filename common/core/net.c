#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"

ct_err ct_addr_parse(const char *hostport, struct sockaddr_storage *out, socklen_t *out_len)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    CT_ENSURE_RET(colon && colon != hostport, ct_fail(CT_ERR_CONFIG, "address '%.80s' is not host:port", hostport));
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    CT_ENSURE_RET(colon[1] && *end == '\0' && port >= 0 && port < 65536,
                  ct_fail(CT_ERR_CONFIG, "bad port in '%.80s'", hostport));
    size_t hl = (size_t)(colon - hostport);
    CT_ENSURE_RET(hl < sizeof host, ct_fail(CT_ERR_CONFIG, "host too long in '%.80s'", hostport));
    memcpy(host, hostport, hl);
    host[hl] = '\0';
    memset(out, 0, sizeof *out);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
        host[hl - 1] = '\0';
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        CT_ENSURE_RET(inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1,
                      ct_fail(CT_ERR_CONFIG, "bad IPv6 address in '%.80s'", hostport));
        *out_len = sizeof *a6;
        return CT_OK;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)out;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    CT_ENSURE_RET(inet_pton(AF_INET, host, &a4->sin_addr) == 1,
                  ct_fail(CT_ERR_CONFIG, "bad IPv4 address in '%.80s' (numeric addresses only)", hostport));
    *out_len = sizeof *a4;
    return CT_OK;
}

void ct_addr_host(const struct sockaddr *sa, char *out, size_t out_max)
{
    const void *host = NULL;
    if (out_max) out[0] = '\0';
    if (sa && sa->sa_family == AF_INET) host = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    if (sa && sa->sa_family == AF_INET6) host = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (host && out_max && !inet_ntop(sa->sa_family, host, out, (socklen_t)out_max)) out[0] = '\0';
}

void ct_time_utc(int64_t t, char out[CT_TIME_UTC_MAX])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || strftime(out, CT_TIME_UTC_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) out[0] = '\0';
}

int64_t ct_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ct_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ct_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc != 0) return rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0) rc = pthread_cond_init(cv, &a);
    (void)pthread_condattr_destroy(&a);
    return rc;
}

void ct_timespec_in(int64_t ms, struct timespec *out) { ct_timespec_in_us(ms * 1000, out); }

void ct_timespec_in_us(int64_t us, struct timespec *out)
{
    clock_gettime(CLOCK_MONOTONIC, out);
    long long ns = out->tv_nsec + (long long)us * 1000LL;
    out->tv_sec += (time_t)(ns / 1000000000LL);
    out->tv_nsec = (long)(ns % 1000000000LL);
}

ct_err ct_wait_fd(int fd, short events, int64_t deadline_ms, const char *what)
{
    for (;;) {
        int64_t left = deadline_ms - ct_now_ms();
        CT_ENSURE_RET(left > 0, ct_fail(CT_ERR_IO, "timed out %s", what));
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r < 0 && errno == EINTR) continue;
        CT_ENSURE_RET(r >= 0, ct_fail(CT_ERR_IO, "poll failed %s: %s", what, strerror(errno)));
        if (r > 0) return CT_OK;
    }
}
