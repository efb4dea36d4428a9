/* The camera's HTTPS server: TLS 1.3 with the installed identity chain and the identity key in the token. A few
 * worker threads, each serving one connection at a time, each request under one deadline: connections, time and
 * memory (one request head and one 16 KiB file chunk per worker) are bounded, and one client address (IPv6: its
 * /64) holds at most AGENT_SERVE_PER_ADDRESS of the workers. HTTP/1.1 connections stay open for
 * at most KEEP_REQUESTS requests, idle at most serve.timeout_ms, and an idle one gives its worker up to a client
 * waiting for one. Live video (issue 14) is served as the files the pipeline wrote whole, so any number of viewers
 * costs no extra encryption. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "agent_priv.h"

#define REQUEST_MAX 8192
#define KEEP_REQUESTS 100 /* requests on one connection; its last answer says Connection: close */

/* After a wolfSSL call on the non-blocking socket returned `ret`: waits until it can go on, true to retry.
 * One deadline for the whole request: a silent or slow client cannot hold the camera. */
static bool tls_wait(WOLFSSL *ssl, int fd, int ret, int64_t deadline)
{
    int err = wolfSSL_get_error(ssl, ret);
    if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) return false;
    return ct_wait_fd(fd, err == WOLFSSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "serving a client") == CT_OK;
}

static bool tls_write_all(WOLFSSL *ssl, int fd, const void *p, size_t n, int64_t deadline)
{
    const uint8_t *b = p;
    while (n > 0) {
        int w = wolfSSL_write(ssl, b, (int)(n > 16384 ? 16384 : n));
        if (w <= 0) {
            if (tls_wait(ssl, fd, w, deadline)) continue;
            return false;
        }
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* The answer's head, and what the request's is compared with: literals, merged, unaligned (the firmware agent has
 * a few bytes to spare). */
#define HEAD_FORMAT "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-cache\r\n%s\r\n"
#define CLOSE_FIELD "Connection: close\r\n"

static bool send_head(WOLFSSL *ssl, int fd, const char *status, const char *type, size_t len, bool keep,
                      int64_t deadline)
{
    char head[512];
    /* HTTP/1.1 connections persist unless one side says close. */
    return ct_snprintf(head, sizeof head, HEAD_FORMAT, status, type, len, keep ? "" : CLOSE_FIELD) == CT_OK &&
           tls_write_all(ssl, fd, head, strlen(head), deadline);
}

/* True when the whole answer went out (and `keep`: the connection may carry another request). */
static bool send_text(WOLFSSL *ssl, int fd, const char *status, const char *type, const char *body, bool keep,
                      int64_t deadline)
{
    return send_head(ssl, fd, status, type, strlen(body), keep, deadline) &&
           tls_write_all(ssl, fd, body, strlen(body), deadline) && keep;
}

/* The live files a client may ask for: the playlist, the init segment, seg-<digits>.m4s; nothing else. */
static const char *live_type(const char *name)
{
    size_t n = strlen(name);
    if (strcmp(name, "index.m3u8") == 0) return "application/vnd.apple.mpegurl";
    if (strcmp(name, "init.mp4") == 0) return "video/mp4";
    if (n > 8 && n < 32 && strncmp(name, "seg-", 4) == 0 && strcmp(name + n - 4, ".m4s") == 0 &&
        strspn(name + 4, "0123456789") == n - 8)
        return "video/iso.segment";
    return NULL;
}

/* A whole file of the live folder (404 when `name` names none: "" for a target outside it), in chunks; each chunk
 * gets the full timeout, the whole answer at most ten. */
static bool send_file(WOLFSSL *ssl, int fd, const char *dir, const char *name, bool keep, long timeout_ms)
{
    char path[AGENT_PATH_MAX];
    uint8_t chunk[16384];
    struct stat sb;
    int64_t start = ct_now_ms(), deadline = start + timeout_ms;
    const char *type = live_type(name);
    /* Not waiting to open: a FIFO planted in the folder would hold the worker (then each) for good. */
    int f = type && ct_path_join(path, sizeof path, dir, name) == CT_OK
                ? open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
    if (f < 0 || fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (f >= 0) close(f);
        return send_text(ssl, fd, "404 Not Found", "text/plain", "not found\n", keep, deadline);
    }
    size_t left = (size_t)sb.st_size;
    bool ok = send_head(ssl, fd, "200 OK", type, left, keep, deadline);
    while (ok && left > 0) {
        ssize_t r = read(f, chunk, left < sizeof chunk ? left : sizeof chunk);
        if (r <= 0) break; /* files are renamed whole, never truncated: only an I/O error gets here */
        deadline = ct_now_ms() + timeout_ms;
        if (deadline > start + 10 * timeout_ms) deadline = start + 10 * timeout_ms;
        ok = tls_write_all(ssl, fd, chunk, (size_t)r, deadline);
        left -= (size_t)r;
    }
    close(f);
    return ok && left == 0 && keep;
}

/* Whether `s` starts with the `n` letters (or ':') of `word`, ignoring case: strncasecmp without its import, which
 * alone would cost the firmware agent a page. */
static bool starts_nocase(const char *s, const char *word, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != (word[i] | 0x20)) return false;
    return true;
}

/* Whether the client lets the connection stay open after this request: HTTP/1.1 without "Connection: close"
 * (HTTP/1.0 closes: its keep-alive is not negotiated here), announcing no body. A body is never read: its bytes,
 * sent after the head, would be taken for the next request (a proxy in front would see them as this one's body).
 * So a head this reader might see otherwise than a proxy closes too: a bare LF (a line's end to many parsers, not
 * here) and "Content-Length :" (a name, then blanks; or any longer name: closing costs nothing).
 * `head`: the request head, NUL-ended. */
static bool client_keeps(const char *head)
{
    const char *line = strchr(head, '\n');
    if (!line || line - head < 9 || memcmp(line - 9, HEAD_FORMAT, 8) != 0) return false; /* "HTTP/1.1" */
    for (; line; line = strchr(line + 1, '\n')) {
        if (line[-1] != '\r' || starts_nocase(line + 1, &HEAD_FORMAT[31], 14) ||
            starts_nocase(line + 1, "Transfer-Encoding", 17))
            return false; /* "Content-Length" */
        if (!starts_nocase(line + 1, CLOSE_FIELD, 11)) continue; /* "Connection:" */
        for (const char *v = line + 12; *v && *v != '\r'; v++)
            if (starts_nocase(v, &CLOSE_FIELD[12], 5)) return false; /* "close" */
    }
    return true;
}

/* Reads one request head (bounded) and answers: the camera's page, or with a live folder its files. True when the
 * connection may carry the next request: the client keeps it, this is not its `last`, the answer went out whole,
 * and nothing came after the head (no pipelining, no body). */
static bool answer(WOLFSSL *ssl, int fd, const agent *a, const char *live, bool last, int64_t deadline)
{
    char req[REQUEST_MAX + 1], page[512];
    size_t got = 0;
    req[0] = '\0';
    while (got < REQUEST_MAX) {
        int n = wolfSSL_read(ssl, req + got, (int)(REQUEST_MAX - got));
        if (n <= 0) {
            if (tls_wait(ssl, fd, n, deadline)) continue;
            return false;
        }
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n")) break;
    }
    /* The target: "GET /path HTTP/1.x"; a query string is ignored. A refusal's body is its status line (one call
     * for the three: the firmware agent has a few bytes to spare). */
    char *target = req + 4;
    const char *refusal = got >= REQUEST_MAX                           ? "431 Request Header Fields Too Large"
                          : got < 4 || memcmp(req, "GET ", 4) != 0       ? "405 Method Not Allowed"
                          : strchr(target, ' ') == NULL                  ? "400 Bad Request"
                                                                         : NULL;
    if (refusal) return send_text(ssl, fd, refusal, "text/plain", refusal, false, deadline);
    bool keep = !last && strstr(req, "\r\n\r\n") + 4 == req + got && client_keeps(req);
    target[strcspn(target, " ?")] = '\0';
    /* Anything but the page is a live file or, as "" (no live file's name), 404. */
    if (strcmp(target, "/") != 0 && strcmp(target, "/index.html") != 0)
        return send_file(ssl, fd, live, live && strncmp(target, "/live/", 6) == 0 ? target + 6 : "", keep,
                         a->serve_timeout_ms);
    /* Numbered arguments: each passed once (fewer bytes of code in the firmware agent). */
    if (ct_snprintf(page, sizeof page,
                    "<!doctype html><html><head><title>%1$s %2$s</title></head><body><h1>camtrust camera %2$s</h1>"
                    "<p>model %1$s, serial %2$s</p>%3$s</body></html>\n",
                    a->model, a->serial,
                    live ? "<p>live video: <a href=\"/live/index.m3u8\">/live/index.m3u8</a></p>" : "") != CT_OK)
        return false;
    return send_text(ssl, fd, "200 OK", "text/html; charset=utf-8", page, keep, deadline);
}

/* ---- the server: workers sharing the listening socket ---- */
typedef struct {
    agent_server *s;
    uint8_t key[AGENT_ADDR_KEY_LEN]; /* its client's address (agent_accept) */
    bool serving;                    /* counts against that address's AGENT_SERVE_PER_ADDRESS */
} agent_worker;

struct agent_server {
    agent *a;
    WOLFSSL_CTX *ctx;
    const char *live;
    int lfd;
    size_t n;
    atomic_int busy; /* workers serving a connection */
    pthread_t t[AGENT_SERVE_WORKERS];
    agent_worker w[AGENT_SERVE_WORKERS];
};
static pthread_mutex_t g_hold_mu = PTHREAD_MUTEX_INITIALIZER; /* the workers' `serving` (one server a process) */

/* Takes (on) or gives up this worker's hold on its client's address; taking fails when AGENT_SERVE_PER_ADDRESS
 * other workers serve that address: a client that opens connections and sends nothing would otherwise hold every
 * worker for serve.timeout_ms, again and again. */
static bool address_hold(agent_worker *w, bool on)
{
    int n = 0;
    pthread_mutex_lock(&g_hold_mu);
    for (int i = 0; on && i < AGENT_SERVE_WORKERS; i++)
        n += w->s->w[i].serving && memcmp(w->s->w[i].key, w->key, sizeof w->key) == 0;
    w->serving = on && n < AGENT_SERVE_PER_ADDRESS;
    pthread_mutex_unlock(&g_hold_mu);
    return w->serving;
}

/* At most one line a minute, with the refusals since the previous line: a client that connects in a loop would
 * otherwise fill the camera's log (its flash) with one line per connection. */
static void log_refused(void)
{
    static atomic_uint refused;
    static atomic_llong next;
    atomic_fetch_add(&refused, 1);
    long long now = time(NULL), due = atomic_load(&next);
    if (now >= due && atomic_compare_exchange_strong(&next, &due, now + 60))
        ct_log(CT_LOG_INFO, "connection_refused", "reason=per_address_limit refused=%u", atomic_exchange(&refused, 0));
}

/* Between two requests on a kept connection: true when the next one begins before `deadline`; false when the
 * client stays idle that long or closes, or when every worker is busy and another client waits for one (an idle
 * connection gives its worker up; its client opens a new one when it needs it). */
static bool next_request(agent_server *s, int fd, int64_t deadline)
{
    /* The socket, not wolfSSL's buffer: it reads a record at a time, and answer() took all of the last one. */
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.events = POLLIN}};
    for (;;) {
        int64_t left = deadline - ct_now_ms();
        p[1].fd = atomic_load(&s->busy) >= AGENT_SERVE_WORKERS ? s->lfd : -1;
        /* A slice, so that a worker freed or taken meanwhile changes whether the listening socket is watched. */
        int r = left > 0 ? poll(p, 2, left > 100 ? 100 : (int)left) : 0;
        if (r < 0 && errno != EINTR) return false;
        if (p[0].revents) return true; /* the request, or the close that its read finds */
        if (p[1].revents || left <= 0 || agent_stopping()) return false;
    }
}

static void serve_client(agent_server *s, int fd)
{
    const agent *a = s->a;
    int64_t deadline = ct_now_ms() + a->serve_timeout_ms;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return;
    WOLFSSL *ssl = wolfSSL_new(s->ctx);
    if (!ssl) return;
    int r = wolfSSL_set_fd(ssl, fd);
    if (r == WOLFSSL_SUCCESS)
        while ((r = wolfSSL_accept(ssl)) != WOLFSSL_SUCCESS && tls_wait(ssl, fd, r, deadline)) continue;
    if (r == WOLFSSL_SUCCESS) {
        /* Each request under its own deadline, the wait for it under the idle one (both serve.timeout_ms). */
        for (int n = 1; answer(ssl, fd, a, s->live, n == KEEP_REQUESTS, deadline) &&
                        next_request(s, fd, ct_now_ms() + a->serve_timeout_ms);
             n++)
            deadline = ct_now_ms() + a->serve_timeout_ms;
        wolfSSL_shutdown(ssl);
    } else {
        ct_log(CT_LOG_INFO, "handshake_failed", "error=%d", wolfSSL_get_error(ssl, r));
    }
    wolfSSL_free(ssl);
}

/* A server context with the installed TLS identity; the key never leaves the token. */
static ct_err tls_setup(agent *a, WOLFSSL_CTX **out)
{
    ct_err rc = CT_OK;
    agent_creds c;
    ct_buf pem = CT_BUF_INIT;
    memset(&c, 0, sizeof c);
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    CT_ENSURE_MSG(ctx, CT_ERR_CRYPTO, "wolfSSL_CTX_new failed");
    CT_GUARD(agent_creds_load(a, &c));
    CT_GUARD(ct_buf_alloc(&pem, AGENT_CREDS_MAX));
    CT_GUARD(agent_chain_pem(&c.chain[AGENT_PROFILE_DEVICE], &pem));
    uint8_t id[AGENT_KEY_ID_LEN];
    agent_key_id(AGENT_PROFILE_DEVICE, id);
    /* One message for both (the chain verified already): the firmware agent has few bytes to spare. */
    CT_ENSURE_MSG(wolfSSL_CTX_use_certificate_chain_buffer(ctx, pem.data, (long)pem.len) == WOLFSSL_SUCCESS &&
                      wolfSSL_CTX_use_PrivateKey_Id(ctx, id, sizeof id, hsm_wolf_dev_id(a->h)) == WOLFSSL_SUCCESS,
                  CT_ERR_CRYPTO, "wolfSSL does not take the identity chain or key");
    CT_ENSURE_MSG(wolfSSL_CTX_check_private_key(ctx) == WOLFSSL_SUCCESS, CT_ERR_INTEGRITY,
                  "the identity key does not match the certificate");
    *out = ctx;
    ctx = NULL;
cleanup:
    wolfSSL_CTX_free(ctx);
    agent_creds_free(&c);
    ct_buf_free(&pem);
    return rc;
}


static void *worker(void *arg)
{
    agent_worker *w = arg;
    agent_server *s = w->s;
    while (!agent_stopping()) {
        int fd = -1;
        if (agent_accept(s->lfd, &fd, w->key) != CT_OK) {
            ct_log(CT_LOG_ERROR, "accept_failed", "reason=%s", CT_LOGQ(ct_err_detail()));
            break;
        }
        if (fd < 0) continue;
        if (address_hold(w, true)) {
            atomic_fetch_add(&s->busy, 1);
            serve_client(s, fd);
            atomic_fetch_sub(&s->busy, 1);
            address_hold(w, false);
        } else {
            log_refused();
        }
        close(fd);
    }
    wc_ecc_fp_free(); /* this thread's fixed-point cache (its handshakes' ECC): some 12 MB, gone with the thread */
    return NULL;
}

ct_err agent_server_start(agent *a, const char *listen, const char *live_dir, agent_server **out)
{
    ct_err rc = CT_OK;
    agent_server *s = calloc(1, sizeof *s);
    CT_ENSURE_RET(s, CT_ERR_NOMEM);
    s->a = a;
    s->live = live_dir;
    s->lfd = -1;
    CT_GUARD(tls_setup(a, &s->ctx));
    CT_GUARD(agent_listen(listen, &s->lfd));
    /* Non-blocking: the workers poll the same socket, and the one that loses a race must not block in accept. */
    int flags = fcntl(s->lfd, F_GETFL);
    CT_ENSURE_MSG(flags >= 0 && fcntl(s->lfd, F_SETFL, flags | O_NONBLOCK) == 0, CT_ERR_IO, "fcntl: %s",
                  strerror(errno));
    /* Stop signals go to the calling thread (a blocking read or open there returns), never to a worker. */
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    for (size_t i = 0; i < AGENT_SERVE_WORKERS; i++) s->w[i].s = s;
    for (; s->n < AGENT_SERVE_WORKERS && pthread_create(&s->t[s->n], NULL, worker, &s->w[s->n]) == 0; s->n++) continue;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    CT_ENSURE_MSG(s->n == AGENT_SERVE_WORKERS, CT_ERR_INTERNAL, "no thread");
    *out = s;
    s = NULL;
cleanup:
    if (s && s->n) agent_stop_request(); /* the workers started end before they are joined */
    agent_server_stop(s);
    return rc;
}

void agent_server_stop(agent_server *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) pthread_join(s->t[i], NULL);
    if (s->lfd >= 0) close(s->lfd);
    wolfSSL_CTX_free(s->ctx);
    free(s);
}

ct_err agent_serve(const char *dir, const char *listen)
{
    ct_err rc = CT_OK;
    agent *a = NULL;
    agent_server *srv = NULL;
    agent_status st;
    bool inited = false;
    CT_GUARD(agent_open(dir, &a));
    CT_GUARD(agent_serving_check(a, &st));
    CT_ENSURE_MSG(wolfSSL_Init() == WOLFSSL_SUCCESS, CT_ERR_CRYPTO, "wolfSSL_Init failed");
    inited = true;
    agent_signals_install();
    CT_GUARD(agent_server_start(a, listen, NULL, &srv));
    ct_log(CT_LOG_INFO, "serving", "serial=%s identity=%s listen=%s", a->serial, CT_LOGQ(st.identity_cn), listen);
    while (!agent_stopping()) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ct_log(CT_LOG_INFO, "stopping", "serial=%s", a->serial);
cleanup:
    agent_server_stop(srv);
    agent_close(a);
    wc_ecc_fp_free(); /* wolfSSL's per-thread fixed-point cache */
    if (inited) wolfSSL_Cleanup();
    return rc;
}

ct_err agent_serving_check(agent *a, agent_status *st)
{
    CT_GUARD_RET(agent_status_get(a, st));
    CT_ENSURE_RET(st->state == AGENT_PROVISIONED,
                  ct_fail(CT_ERR_FORBIDDEN, "not serving: the camera is %s%s%s", agent_state_name(st->state),
                          st->state == AGENT_BROKEN ? ": " : "", st->reason));
    return CT_OK;
}
