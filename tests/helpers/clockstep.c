/* clockstep: an LD_PRELOAD shim that steps one process's wall clock by CLOCKSTEP_S seconds (negative: back), for
 * the tests (ha_clock.sh): a node whose clock is off, as on a host NTP has not synchronised yet or an operator set
 * by hand. Intercepted: clock_gettime of CLOCK_REALTIME and CLOCK_REALTIME_COARSE, gettimeofday, time; the monotonic
 * clocks are left as they are (a stepped wall clock does not move them). Test infrastructure only: never linked
 * into a product. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long step_s(void)
{
    const char *s = getenv("CLOCKSTEP_S");
    return s ? strtol(s, NULL, 10) : 0;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += step_s();
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    struct timespec ts;
    (void)tz;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
