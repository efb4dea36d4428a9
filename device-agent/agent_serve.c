/* The camera's HTTPS server: TLS 1.3 with the installed identity chain and the identity key in the token. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
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

/* Reads the request head (bounded) and answers a page naming the camera. */
static void answer(WOLFSSL *ssl, int fd, const agent *a, int64_t deadline)
{
    char req[REQUEST_MAX + 1], page[512], resp[1024];
    size_t got = 0;
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
    bool get = got >= 4 && memcmp(req, "GET ", 4) == 0;
    const char *status = get ? "200 OK" : got >= REQUEST_MAX ? "431 Request Header Fields Too Large"
                                                             : "405 Method Not Allowed";
    if (ct_snprintf(page, sizeof page,
                    "<!doctype html><html><head><title>%s %s</title></head><body><h1>camtrust camera %s</h1>"
                    "<p>model %s, serial %s</p></body></html>\n",
                    a->model, a->serial, a->serial, a->model, a->serial) != CT_OK ||
        ct_snprintf(resp, sizeof resp,
                    "HTTP/1.1 %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n%s",
                    status, get ? strlen(page) : (size_t)0, get ? page : "") != CT_OK)
        return;
    int w;
    while ((w = wolfSSL_write(ssl, resp, (int)strlen(resp))) <= 0)
        if (!tls_wait(ssl, fd, w, deadline)) return;
}

static void serve_client(WOLFSSL_CTX *ctx, const agent *a, int fd)
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
        answer(ssl, fd, a, deadline);
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

ct_err agent_serve(const char *dir, const char *listen)
{
    ct_err rc = CT_OK;
    agent *a = NULL;
    WOLFSSL_CTX *ctx = NULL;
    agent_status st;
    int lfd = -1;
    bool inited = false;
    CT_GUARD(agent_open(dir, &a));
    CT_GUARD(agent_status_get(a, &st));
    CT_ENSURE_MSG(st.state == AGENT_PROVISIONED, CT_ERR_FORBIDDEN, "not serving: the camera is %s%s%s",
                  agent_state_name(st.state), st.state == AGENT_BROKEN ? ": " : "", st.reason);
    CT_ENSURE_MSG(wolfSSL_Init() == WOLFSSL_SUCCESS, CT_ERR_CRYPTO, "wolfSSL_Init failed");
    inited = true;
    CT_GUARD(tls_setup(a, &ctx));
    agent_signals_install();
    CT_GUARD(agent_listen(listen, &lfd));
    ct_log(CT_LOG_INFO, "serving", "serial=%s identity=%s listen=%s", a->serial, CT_LOGQ(st.identity_cn), listen);
    while (!agent_stopping()) {
        int fd = -1;
        CT_GUARD(agent_accept(lfd, &fd));
        if (fd < 0) continue;
        serve_client(ctx, a, fd);
        close(fd);
    }
    ct_log(CT_LOG_INFO, "stopping", "serial=%s", a->serial);
cleanup:
    if (lfd >= 0) close(lfd);
    wolfSSL_CTX_free(ctx);
    agent_close(a);
    wc_ecc_fp_free(); /* wolfSSL's per-thread fixed-point cache */
    if (inited) wolfSSL_Cleanup();
    return rc;
}
