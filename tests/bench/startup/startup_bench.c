/* camtrust-bench-startup: the start-up benchmark's tool (tests/bench/startup/run drives it).
 *
 *   --mode hmac   the token's raw HMAC-SHA256 rate with the CA's audit key (hsm_mac_sign, the call the audit
 *                 check makes per entry), over --bytes-byte messages, with each of --threads threads (e.g. "1 2"),
 *                 --seconds each: the physical limit of checking every entry's MAC; then the same through
 *                 hsm_mac_sign_many (batches of 4096 over that many threads, a session copy of the key), as the
 *                 audit check calls it
 *
 * One key=value result line per run on stdout. A benchmark: it prints figures and never judges them; every loop
 * is bounded in count and in time. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define MAX_THREADS 64
#define MAX_BYTES 4096
#define MAX_OPS_PER_THREAD 50000000L

typedef struct {
    hsm_mac_key *mac;
    size_t bytes;
    double stop;
    long ok, failed;
    double end;
    char err[200];
} hmac_thread;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pthread_barrier_t g_barrier;
static double g_start;

static void *hmac_main(void *arg)
{
    hmac_thread *t = arg;
    uint8_t msg[MAX_BYTES], mac[HSM_MAC_LEN];
    memset(msg, 0x2e, sizeof msg);
    memcpy(msg, &t, sizeof t); /* a message of its own per thread */
    pthread_barrier_wait(&g_barrier);
    for (uint64_t i = 0; t->ok + t->failed < MAX_OPS_PER_THREAD && now_s() < t->stop; i++) {
        memcpy(msg + sizeof t, &i, sizeof i);
        ct_err rc = hsm_mac_sign(t->mac, msg, t->bytes, mac);
        if (rc == CT_OK) {
            t->ok++;
        } else {
            t->failed++;
            if (!t->err[0] && ct_snprintf(t->err, sizeof t->err, "%s: %s", ct_err_name(rc), ct_err_detail()) != CT_OK)
                t->err[0] = '?';
        }
    }
    t->end = now_s();
    return NULL;
}

static bool hmac_run(hsm_mac_key *mac, size_t bytes, size_t nt, double seconds, long sessions)
{
    hmac_thread th[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    memset(th, 0, sizeof th);
    if (pthread_barrier_init(&g_barrier, NULL, (unsigned)nt + 1) != 0) return false;
    g_start = now_s();
    for (size_t i = 0; i < nt; i++) {
        th[i] = (hmac_thread){.mac = mac, .bytes = bytes, .stop = g_start + seconds};
        if (pthread_create(&tids[i], NULL, hmac_main, &th[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&g_barrier);
    long ok = 0, failed = 0;
    double end = g_start;
    for (size_t i = 0; i < nt; i++) {
        pthread_join(tids[i], NULL);
        ok += th[i].ok;
        failed += th[i].failed;
        if (th[i].end > end) end = th[i].end;
        if (th[i].err[0]) fprintf(stderr, "hmac thread %zu: %s\n", i, th[i].err);
    }
    pthread_barrier_destroy(&g_barrier);
    double secs = end - g_start;
    printf("token-hmac threads=%zu sessions=%ld bytes=%zu macs=%ld failed=%ld seconds=%.3f macs_per_s=%.1f\n", nt,
           sessions, bytes, ok, failed, secs, secs > 0 ? (double)ok / secs : 0.0);
    fflush(stdout);
    return failed == 0 && ok > 0;
}

/* hsm_mac_sign_many, as the audit check calls it: batches of MANY_BATCH messages over nt threads. */
#define MANY_BATCH 4096
static bool many_run(hsm_mac_key *mac, size_t bytes, unsigned nt, double seconds, long sessions)
{
    static uint8_t buf[MANY_BATCH][MAX_BYTES], macs[MANY_BATCH][HSM_MAC_LEN];
    static const uint8_t *msgs[MANY_BATCH];
    static size_t lens[MANY_BATCH];
    long ok = 0;
    ct_err rc = CT_OK;
    for (size_t i = 0; i < MANY_BATCH; i++) {
        memset(buf[i], 0x2e, bytes);
        memcpy(buf[i], &i, sizeof i);
        msgs[i] = buf[i];
        lens[i] = bytes;
    }
    double t0 = now_s(), end = t0;
    while (rc == CT_OK && end - t0 < seconds && ok < MAX_OPS_PER_THREAD) {
        rc = hsm_mac_sign_many(mac, MANY_BATCH, msgs, lens, macs, nt, NULL);
        if (rc == CT_OK) ok += MANY_BATCH;
        end = now_s();
    }
    uint8_t one[HSM_MAC_LEN]; /* the batch's answers are the single call's */
    if (rc == CT_OK) rc = hsm_mac_sign(mac, msgs[MANY_BATCH - 1], bytes, one);
    if (rc == CT_OK && memcmp(one, macs[MANY_BATCH - 1], sizeof one) != 0) rc = ct_fail(CT_ERR_HSM, "batch MAC differs");
    if (rc != CT_OK) fprintf(stderr, "hmac-many: %s\n", ct_err_detail());
    double secs = end - t0;
    printf("token-hmac-many threads=%u sessions=%ld bytes=%zu macs=%ld failed=%d seconds=%.3f macs_per_s=%.1f\n", nt,
           sessions, bytes, ok, rc != CT_OK, secs, secs > 0 ? (double)ok / secs : 0.0);
    fflush(stdout);
    return rc == CT_OK;
}

/* A whole number in [min, max], nothing after it. */
static const char usage[] =
    "usage: camtrust-bench-startup --mode hmac --ca-dir DIR [--threads \"1 2\"] [--seconds S] [--bytes B]\n";

int main(int argc, char **argv)
{
    const char *mode = NULL, *ca_dir = NULL, *threads = "1 2";
    long seconds = 2, bytes = 224;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        bool ok = true;
        if (strcmp(a, "--mode") == 0) mode = v;
        else if (strcmp(a, "--ca-dir") == 0) ca_dir = v;
        else if (strcmp(a, "--threads") == 0) threads = v;
        else if (strcmp(a, "--seconds") == 0) ok = ct_parse_long(v, 1, 60, &seconds);
        else if (strcmp(a, "--bytes") == 0) ok = ct_parse_long(v, 1, MAX_BYTES, &bytes);
        else ok = false;
        if (!ok) {
            fprintf(stderr, "bad option or value: %s %s\n", a, v);
            return 64;
        }
    }
    if (!mode || strcmp(mode, "hmac") != 0 || !ca_dir || argc % 2 != 1) {
        fputs(usage, stderr);
        return 64;
    }
    ct_log_set_level(CT_LOG_WARN);
    ca_settings s;
    hsm *h = NULL;
    hsm_mac_key *mac = NULL;
    int exit_code = 1;
    if (ca_settings_load(ca_dir, &s) != CT_OK || hsm_open_settings(&s.hsm, &h) != CT_OK ||
        hsm_mac_key_find(h, s.audit_mac_uri, &mac) != CT_OK) {
        fprintf(stderr, "the CA's audit key: %s\n", ct_err_detail());
        goto done;
    }
    bool good = true;
    for (const char *p = threads; *p;) {
        char *end = NULL;
        long nt = strtol(p, &end, 10);
        if (end == p || nt < 1 || nt > MAX_THREADS) {
            fprintf(stderr, "bad --threads: %s\n", threads);
            exit_code = 64;
            goto done;
        }
        good = hmac_run(mac, (size_t)bytes, (size_t)nt, (double)seconds, s.hsm.sessions) && good;
        good = many_run(mac, (size_t)bytes, (unsigned)nt, (double)seconds, s.hsm.sessions) && good;
        for (p = end; *p == ' '; p++) {}
    }
    exit_code = good ? 0 : 2;
done:
    hsm_mac_key_free(mac);
    hsm_close(h);
    return exit_code;
}
