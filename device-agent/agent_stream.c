/* Live protected video (issue 14): the encoder's Annex B output in, signed and encrypted CMAF segments and a live
 * playlist out (cenc_live), served over the camera's own HTTPS by the same process. Each segment is encrypted
 * once, whatever the number of viewers: they all fetch the same files. The viewers folder is watched; a change
 * takes effect from the next GOP (a new segment, its key wrapped for the new list). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "agent_priv.h"

#define READ_CHUNK (256 * 1024)
#define VIEWERS_CHECK_MS 200
#define VIEWERS_RELOAD_S 60

/* What the viewers folder holds now, as one number: it changes when a file is added, removed, renamed or
 * rewritten (names, sizes, modification times), whatever the order readdir gives. */
static uint64_t viewers_stamp(const char *dir)
{
    uint64_t stamp = 0;
    char path[AGENT_PATH_MAX];
    struct stat sb;
    DIR *d = opendir(dir);
    if (!d) return 1;
    if (fstat(dirfd(d), &sb) == 0) stamp ^= (uint64_t)sb.st_mtim.tv_sec * 1000000007u + (uint64_t)sb.st_mtim.tv_nsec;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || ct_path_join(path, sizeof path, dir, e->d_name) != CT_OK || stat(path, &sb) != 0)
            continue;
        uint64_t h = 1469598103934665603u; /* FNV-1a of the name, then size and time */
        for (const char *c = e->d_name; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211u;
        h = (h ^ (uint64_t)sb.st_size) * 1099511628211u;
        h = (h ^ ((uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec)) * 1099511628211u;
        stamp += h;
    }
    closedir(d);
    return stamp;
}

/* Re-reads the viewers when the folder changed, and each minute: a viewer's certificate that expired, the folder
 * unchanged, would get the keys on. A folder that no longer loads (an expired certificate in it too) stops the
 * stream: the camera does not go on encrypting for a list it cannot read (a removed viewer would keep its access). */
static ct_err viewers_refresh(const char *dir, const agent_stream_opts *o, cenc_live *l, uint64_t *stamp)
{
    static time_t minute; /* of the last reading (one stream per process) */
    cenc_recipient r[CENC_MAX_RECIPIENTS];
    size_t n = 0;
    uint64_t now = viewers_stamp(o->viewers);
    time_t m = time(NULL) / VIEWERS_RELOAD_S;
    if (now == *stamp && m == minute) return CT_OK;
    CT_GUARD_RET(agent_viewers_load(dir, o->viewers, r, CENC_MAX_RECIPIENTS, &n));
    minute = m;
    if (now == *stamp) return CT_OK; /* the same viewers, still valid: the key stays */
    CT_GUARD_RET(cenc_live_set_recipients(l, r, n));
    *stamp = now;
    ct_log(CT_LOG_INFO, "viewers_changed", "viewers=%zu msg=\"from the next GOP on\"", n);
    return CT_OK;
}

ct_err agent_stream(const char *dir, const agent_stream_opts *o, cenc_stats *st)
{
    ct_err rc = CT_OK;
    agent *a = NULL;
    agent_server *srv = NULL;
    agent_status status;
    agent_rec_signer rs;
    cenc_live *l = NULL;
    cenc_recipient r[CENC_MAX_RECIPIENTS];
    size_t n = 0;
    uint8_t *chunk = NULL;
    int in = -1;
    bool inited = false, ended = false;
    memset(&rs, 0, sizeof rs);
    memset(st, 0, sizeof *st);
    CT_GUARD(agent_open(dir, &a));
    CT_GUARD(agent_serving_check(a, &status));
    uint64_t stamp = viewers_stamp(o->viewers); /* before reading: a change while it loads is seen next time */
    CT_GUARD(agent_viewers_load(dir, o->viewers, r, CENC_MAX_RECIPIENTS, &n));
    if (o->sign) CT_GUARD(agent_rec_signer_open(a, 0, true, &rs));
    cenc_options co = {.scheme = o->scheme, .segment_ms = o->segment_ms, .recipients = r, .n_recipients = n,
                       .sign = o->sign ? &rs.hooks : NULL};
    cenc_live_config lc = {.dir = o->live_dir, .window = o->window, .fps = o->fps, .record_dir = o->record_dir,
                           .record_max_bytes = o->record_max_bytes, .record_max_age_s = o->record_max_age_s};
    CT_GUARD(cenc_live_new(&lc, &co, &l));
    chunk = malloc(READ_CHUNK);
    CT_ENSURE(chunk, CT_ERR_NOMEM);
    CT_ENSURE_MSG(wolfSSL_Init() == WOLFSSL_SUCCESS, CT_ERR_CRYPTO, "wolfSSL_Init failed");
    inited = true;
    agent_signals_install();
    CT_GUARD(agent_server_start(a, o->listen, o->live_dir, &srv));
    /* Serving first: opening a FIFO waits for the encoder, which may start once the camera answers. */
    in = o->in ? open(o->in, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    CT_ENSURE_MSG(in >= 0 || (errno == EINTR && agent_stopping()), CT_ERR_IO, "cannot open %s: %s", o->in,
                  strerror(errno));
    ended = in < 0;
    ct_log(CT_LOG_INFO, "streaming", "serial=%s viewers=%zu scheme=%s segment_ms=%u window=%u signed=%s", a->serial, n,
           cenc_scheme_name(o->scheme), o->segment_ms, o->window, o->sign ? "yes" : "no");
    int64_t next_check = ct_now_ms() + VIEWERS_CHECK_MS;
    /* Input until it ends or a stop signal; then the stream is closed (ENDLIST) and served until stopped. */
    while (!ended && !agent_stopping()) {
        struct pollfd p = {.fd = in, .events = POLLIN};
        int ready = poll(&p, 1, VIEWERS_CHECK_MS);
        CT_ENSURE_MSG(ready >= 0 || errno == EINTR, CT_ERR_IO, "poll: %s", strerror(errno));
        if (ct_now_ms() >= next_check) {
            CT_GUARD(viewers_refresh(dir, o, l, &stamp));
            next_check = ct_now_ms() + VIEWERS_CHECK_MS;
        }
        if (ready <= 0) continue;
        ssize_t got = read(in, chunk, READ_CHUNK);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        CT_ENSURE_MSG(got >= 0, CT_ERR_IO, "reading the encoder's output: %s", strerror(errno));
        if (got == 0) ended = true;
        else CT_GUARD(cenc_live_push(l, chunk, (size_t)got));
    }
    CT_GUARD(viewers_refresh(dir, o, l, &stamp));
    CT_GUARD(cenc_live_finish(l, st));
    ct_log(CT_LOG_INFO, "stream_ended", "serial=%s frames=%llu segments=%llu", a->serial,
           (unsigned long long)st->samples, (unsigned long long)st->segments);
    if (o->on_end) o->on_end(o->on_end_arg, st);
    while (!agent_stopping()) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
cleanup:
    if (rc != CT_OK && l) cenc_live_stats(l, st);
    /* The workers end at the stop flag; an error before it must stop them too. */
    if (rc != CT_OK && srv) agent_stop_request();
    agent_server_stop(srv);
    cenc_live_free(l);
    agent_rec_signer_close(&rs);
    if (in >= 0 && in != STDIN_FILENO) close(in);
    free(chunk);
    agent_close(a);
    wc_ecc_fp_free();
    if (inited) wolfSSL_Cleanup();
    return rc;
}
