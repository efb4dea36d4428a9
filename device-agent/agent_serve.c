/* The camera's HTTPS server: TLS 1.3 with the installed identity chain and the identity key in the token. A few
 * worker threads, each serving one connection at a time under one deadline: connections, time and memory
 * (one request head and one 16 KiB file chunk per worker) are bounded. Live video (issue 14) is served as the
 * files the pipeline wrote whole, so any number of viewers costs no extra encryption. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "agent_priv.h"

#define REQUEST_MAX 8192

/* After a wolfSSL call on the non-blocking socket returned `ret`: waits until it can go on, true to retry.
 * One deadline for the whole connection: a silent or slow client cannot hold the camera. */
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

static bool send_head(WOLFSSL *ssl, int fd, const char *status, const char *type, size_t len, int64_t deadline)
{
    char head[512];
    return ct_snprintf(head, sizeof head,
                       "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-cache\r\n"
                       "Connection: close\r\n\r\n",
                       status, type, len) == CT_OK &&
           tls_write_all(ssl, fd, head, strlen(head), deadline);
}

static void send_text(WOLFSSL *ssl, int fd, const char *status, const char *type, const char *body, int64_t deadline)
{
    if (send_head(ssl, fd, status, type, strlen(body), deadline)) (void)tls_write_all(ssl, fd, body, strlen(body), deadline);
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

/* A whole file of the live folder, in chunks; each chunk gets the full timeout, the whole answer at most ten. */
static void send_file(WOLFSSL *ssl, int fd, const char *dir, const char *name, long timeout_ms)
{
    char path[AGENT_PATH_MAX];
    uint8_t chunk[16384];
    struct stat sb;
    int64_t start = ct_now_ms(), deadline = start + timeout_ms;
    const char *type = live_type(name);
    int f = type && ct_path_join(path, sizeof path, dir, name) == CT_OK
                ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (f < 0 || fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        send_text(ssl, fd, "404 Not Found", "text/plain", "not found\n", deadline);
        if (f >= 0) close(f);
        return;
    }
    size_t left = (size_t)sb.st_size;
    bool ok = send_head(ssl, fd, "200 OK", type, left, deadline);
    while (ok && left > 0) {
        ssize_t r = read(f, chunk, left < sizeof chunk ? left : sizeof chunk);
        if (r <= 0) break; /* files are renamed whole, never truncated: only an I/O error gets here */
        deadline = ct_now_ms() + timeout_ms;
        if (deadline > start + 10 * timeout_ms) deadline = start + 10 * timeout_ms;
        ok = tls_write_all(ssl, fd, chunk, (size_t)r, deadline);
        left -= (size_t)r;
    }
    close(f);
}

/* Reads the request head (bounded) and answers: the camera's page, or with a live folder its files. */
static void answer(WOLFSSL *ssl, int fd, const agent *a, const char *live, int64_t deadline)
{
    char req[REQUEST_MAX + 1], page[512];
    size_t got = 0;
    req[0] = '\0';
    while (got < REQUEST_MAX) {
        int n = wolfSSL_read(ssl, req + got, (int)(REQUEST_MAX - got));
        if (n <= 0) {
            if (tls_wait(ssl, fd, n, deadline)) continue;
            return;
        }
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n")) break;
    }
    if (got >= REQUEST_MAX) {
        send_text(ssl, fd, "431 Request Header Fields Too Large", "text/plain", "request too large\n", deadline);
        return;
    }
    if (got < 4 || memcmp(req, "GET ", 4) != 0) {
        send_text(ssl, fd, "405 Method Not Allowed", "text/plain", "", deadline);
        return;
    }
    /* The target: "GET /path HTTP/1.x"; a query string is ignored. */
    char *target = req + 4, *sp = strchr(target, ' ');
    if (!sp) {
        send_text(ssl, fd, "400 Bad Request", "text/plain", "bad request\n", deadline);
        return;
    }
    *sp = '\0';
    target[strcspn(target, "?")] = '\0';
    if (live && strncmp(target, "/live/", 6) == 0) {
        send_file(ssl, fd, live, target + 6, a->serve_timeout_ms);
        return;
    }
    if (strcmp(target, "/") != 0 && strcmp(target, "/index.html") != 0) {
        send_text(ssl, fd, "404 Not Found", "text/plain", "not found\n", deadline);
        return;
    }
    if (ct_snprintf(page, sizeof page,
                    "<!doctype html><html><head><title>%s %s</title></head><body><h1>camtrust camera %s</h1>"
                    "<p>model %s, serial %s</p>%s</body></html>\n",
                    a->model, a->serial, a->serial, a->model, a->serial,
                    live ? "<p>live video: <a href=\"/live/index.m3u8\">/live/index.m3u8</a></p>" : "") == CT_OK)
        send_text(ssl, fd, "200 OK", "text/html; charset=utf-8", page, deadline);
}

static void serve_client(WOLFSSL_CTX *ctx, const agent *a, const char *live, int fd)
{
    int64_t deadline = ct_now_ms() + a->serve_timeout_ms;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return;
    WOLFSSL *ssl = wolfSSL_new(ctx);
    if (!ssl) return;
    int r = wolfSSL_set_fd(ssl, fd);
    if (r == WOLFSSL_SUCCESS)
        while ((r = wolfSSL_accept(ssl)) != WOLFSSL_SUCCESS && tls_wait(ssl, fd, r, deadline)) continue;
    if (r == WOLFSSL_SUCCESS) {
        answer(ssl, fd, a, live, deadline);
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
    CT_ENSURE_MSG(wolfSSL_CTX_use_certificate_chain_buffer(ctx, pem.data, (long)pem.len) == WOLFSSL_SUCCESS,
                  CT_ERR_CRYPTO, "wolfSSL does not take the identity chain");
    uint8_t id[AGENT_KEY_ID_LEN];
    agent_key_id(AGENT_PROFILE_DEVICE, id);
    CT_ENSURE_MSG(wolfSSL_CTX_use_PrivateKey_Id(ctx, id, sizeof id, hsm_wolf_dev_id(a->h)) == WOLFSSL_SUCCESS,
                  CT_ERR_CRYPTO, "wolfSSL does not take the identity key");
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


/* ---- the server: workers sharing the listening socket ---- */
struct agent_server {
    agent *a;
    WOLFSSL_CTX *ctx;
    const char *live;
    int lfd;
    size_t n;
    pthread_t t[AGENT_SERVE_WORKERS];
};

static void *worker(void *arg)
{
    agent_server *s = arg;
    while (!agent_stopping()) {
        int fd = -1;
        if (agent_accept(s->lfd, &fd) != CT_OK) {
            ct_log(CT_LOG_ERROR, "accept_failed", "reason=%s", CT_LOGQ(ct_err_detail()));
            break;
        }
        if (fd < 0) continue;
        serve_client(s->ctx, s->a, s->live, fd);
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
    for (; s->n < AGENT_SERVE_WORKERS && pthread_create(&s->t[s->n], NULL, worker, s) == 0; s->n++) continue;
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
