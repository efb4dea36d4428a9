/* The HTTP/1.1 client (http.h): wolfSSL TLS 1.3/1.2, the server verified against the pinned roots and by the
 * host name of the URL, the client key (if any) in a token; or plain TCP where the caller allows it. One
 * keep-alive connection per client, re-opened once when the server closed it in between. Every length read from
 * the network is bounded. */
#define _POSIX_C_SOURCE 200809L
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../factory/factory.h"
#include "http.h"

#define URL_MAX 512
#define HOST_MAX 256
#define REASON_MAX 200
#define PEM_FILE_MAX (64 * 1024)
#define DEFAULT_TIMEOUT_MS 10000

struct ct_http_client {
    char url[URL_MAX];
    char host[HOST_MAX];     /* for name checks and resolution, without brackets */
    char hostport[HOST_MAX]; /* for the Host header */
    char port[8];
    char user_agent[64];
    bool tls;
    int timeout_ms;
    int64_t deadline; /* ct_now_ms of the current request's end: its every byte, the handshake's too, by then */
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    int fd;
    bool connected;
    unsigned answered; /* answers read on the current connection */
    ct_buf in;         /* one whole answer: header and body */
};

typedef struct {
    int status;
    size_t body_off, body_len;
    bool keep_alive;
} http_answer;

/* ---- URL ---- */

static ct_err bad_url(const char *url, const char *why, bool plain)
{
    return ct_fail(CT_ERR_USAGE, "CA URL '%.200s': %s (want https://host[:port]%s)", url, why,
                   plain ? " or http://host[:port]" : "");
}

static ct_err url_parse(ct_http_client *c, const char *url, bool allow_plain)
{
    static const char https[] = "https://", http[] = "http://";
    CT_ENSURE_RET(strlen(url) < sizeof c->url, bad_url(url, "too long", allow_plain));
    CT_GUARD_RET(ct_strlcpy(c->url, sizeof c->url, url));
    c->tls = strncasecmp(url, https, strlen(https)) == 0;
    bool plain = !c->tls && allow_plain && strncasecmp(url, http, strlen(http)) == 0;
    CT_ENSURE_RET(c->tls || plain, bad_url(url, allow_plain ? "not https or http" : "not https", allow_plain));
    const char *h = url + strlen(c->tls ? https : http), *end;
    if (*h == '[') {
        end = strchr(h, ']');
        CT_ENSURE_RET(end, bad_url(url, "unclosed '['", allow_plain));
        h++;
    } else {
        end = h + strcspn(h, ":/");
    }
    size_t hl = (size_t)(end - h);
    CT_ENSURE_RET(hl > 0 && hl < sizeof c->host, bad_url(url, "bad host", allow_plain));
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    const char *rest = end + (*end == ']');
    size_t pl = 0;
    if (*rest == ':') {
        pl = strspn(rest + 1, "0123456789");
        long port = pl >= 1 && pl <= 5 ? strtol(rest + 1, NULL, 10) : 0;
        CT_ENSURE_RET(port > 0 && port < 65536, bad_url(url, "bad port", allow_plain));
        memcpy(c->port, rest + 1, pl);
        c->port[pl] = '\0';
        rest += pl + 1;
    } else {
        CT_GUARD_RET(ct_strlcpy(c->port, sizeof c->port, c->tls ? "443" : "80"));
    }
    CT_ENSURE_RET(*rest == '\0' || strcmp(rest, "/") == 0, bad_url(url, "a path is not allowed", allow_plain));
    bool v6 = strchr(c->host, ':') != NULL;
    return ct_snprintf(c->hostport, sizeof c->hostport, "%s%s%s:%s", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port);
}

/* ---- connection ---- */

static void disconnect(ct_http_client *c)
{
    if (c->ssl) wolfSSL_free(c->ssl);
    if (c->fd >= 0) close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
    c->connected = false;
    c->answered = 0;
}

/* ---- bytes on the socket, by the request's deadline ---- */

/* A socket timeout bounds each read, not the answer: a server (or whoever is between) sending a byte a second
 * held a station for hours. So the socket stays non-blocking and every read and write, wolfSSL's included (its I/O
 * callbacks below), waits only until the request's deadline. *n: bytes moved, 0 when the peer closed. */
static ct_err sock_io(ct_http_client *c, bool out, uint8_t *p, size_t len, size_t *n)
{
    for (;;) {
        CT_GUARD_RET(ct_wait_fd(c->fd, out ? POLLOUT : POLLIN, c->deadline,
                                out ? "sending to the CA" : "reading the CA's answer"));
        ssize_t r = out ? send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT) : recv(c->fd, p, len, MSG_DONTWAIT);
        if (r >= 0) {
            *n = (size_t)r;
            return CT_OK;
        }
        CT_ENSURE_RET(errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK,
                      ct_fail(CT_ERR_IO, "%s the CA at %s: %s", out ? "sending to" : "reading from", c->url,
                              strerror(errno)));
    }
}

/* Past the deadline wolfSSL is told to wait (WANT_READ/WANT_WRITE), which ends the call: tls_error says "timed out". */
static int tls_io(ct_http_client *c, bool out, char *buf, int sz)
{
    size_t n = 0;
    if (sock_io(c, out, (uint8_t *)buf, (size_t)sz, &n) == CT_OK)
        return n > 0 ? (int)n : WOLFSSL_CBIO_ERR_CONN_CLOSE;
    if (ct_now_ms() < c->deadline) return WOLFSSL_CBIO_ERR_GENERAL;
    return out ? WOLFSSL_CBIO_ERR_WANT_WRITE : WOLFSSL_CBIO_ERR_WANT_READ;
}

static int tls_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    return tls_io(ctx, false, buf, sz);
}

static int tls_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    return tls_io(ctx, true, buf, sz);
}

/* Resolves the host (a name is fine here: the certificate is checked against it) and connects by the request's
 * deadline (factory_connect); the socket stays non-blocking (sock_io). */
static ct_err tcp_connect(ct_http_client *c)
{
    ct_err rc = CT_OK;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(c->host, c->port, &hints, &list);
    CT_ENSURE_MSG(gai == 0, CT_ERR_IO, "CA unreachable at %s: cannot resolve %s: %s", c->url, c->host,
                  gai_strerror(gai));
    rc = CT_ERR_IO;
    for (struct addrinfo *a = list; a && rc != CT_OK; a = a->ai_next) {
        char ip[64], addr[80];
        if (getnameinfo(a->ai_addr, a->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST) != 0) continue;
        bool v6 = a->ai_family == AF_INET6;
        CT_GUARD(ct_snprintf(addr, sizeof addr, "%s%s%s:%s", v6 ? "[" : "", ip, v6 ? "]" : "", c->port));
        int64_t left = c->deadline - ct_now_ms();
        rc = factory_connect(addr, left > 1 ? (int)left : 1, &c->fd);
    }
    if (rc != CT_OK) rc = ct_fail_ctx(CT_ERR_IO, "CA unreachable at %s", c->url);
cleanup:
    if (list) freeaddrinfo(list);
    return rc;
}

static const char *tls_error(WOLFSSL *ssl, int ret, char *buf, size_t max)
{
    int e = wolfSSL_get_error(ssl, ret);
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) return "timed out";
    wolfSSL_ERR_error_string_n((unsigned long)e, buf, (unsigned long)max);
    return buf;
}

static ct_err connect_to(ct_http_client *c)
{
    ct_err rc = CT_OK;
    char err[128];
    CT_GUARD(tcp_connect(c));
    if (c->tls) {
        c->ssl = wolfSSL_new(c->ctx);
        CT_ENSURE(c->ssl, CT_ERR_NOMEM);
        CT_ENSURE_MSG(wolfSSL_set_fd(c->ssl, c->fd) == WOLFSSL_SUCCESS &&
                          wolfSSL_check_domain_name(c->ssl, c->host) == WOLFSSL_SUCCESS,
                      CT_ERR_INTERNAL, "cannot set up TLS to %s", c->url);
        wolfSSL_SSLSetIORecv(c->ssl, tls_recv);
        wolfSSL_SSLSetIOSend(c->ssl, tls_send);
        wolfSSL_SetIOReadCtx(c->ssl, c);
        wolfSSL_SetIOWriteCtx(c->ssl, c);
        int r = wolfSSL_connect(c->ssl);
        CT_ENSURE_MSG(r == WOLFSSL_SUCCESS, CT_ERR_IO, "TLS with the CA at %s failed: %s", c->url,
                      tls_error(c->ssl, r, err, sizeof err));
    }
    c->connected = true;
cleanup:
    if (rc != CT_OK) disconnect(c);
    return rc;
}

/* ---- bytes over TLS or plain TCP ---- */

/* Reads what is there (at least one byte); *got = 0 when the server closed the connection. */
static ct_err conn_read(ct_http_client *c, size_t *got)
{
    char err[128];
    size_t room = c->in.max - c->in.len;
    *got = 0;
    if (!c->tls) {
        CT_GUARD_RET(sock_io(c, false, c->in.data + c->in.len, room, got));
        c->in.len += *got;
        return CT_OK;
    }
    int want = room > (size_t)INT32_MAX ? INT32_MAX : (int)room;
    int r = wolfSSL_read(c->ssl, c->in.data + c->in.len, want);
    *got = r > 0 ? (size_t)r : 0;
    c->in.len += *got;
    if (r > 0) return CT_OK;
    int e = wolfSSL_get_error(c->ssl, r);
    if (r == 0 || e == WOLFSSL_ERROR_ZERO_RETURN || e == SOCKET_PEER_CLOSED_E) return CT_OK;
    return ct_fail(CT_ERR_IO, "reading the CA's answer from %s: %s", c->url, tls_error(c->ssl, r, err, sizeof err));
}

static ct_err conn_write(ct_http_client *c, const uint8_t *p, size_t n)
{
    char err[128];
    if (c->tls) {
        int r = wolfSSL_write(c->ssl, p, (int)n);
        CT_ENSURE_RET(r == (int)n, ct_fail(CT_ERR_IO, "sending to the CA at %s: %s", c->url,
                                           tls_error(c->ssl, r, err, sizeof err)));
        return CT_OK;
    }
    while (n > 0) {
        size_t sent = 0;
        CT_GUARD_RET(sock_io(c, true, (uint8_t *)p, n, &sent));
        p += sent;
        n -= sent;
    }
    return CT_OK;
}

/* ---- HTTP/1.1 ---- */

static size_t header_end(const ct_buf *in)
{
    for (size_t i = 3; i < in->len; i++)
        if (memcmp(in->data + i - 3, "\r\n\r\n", 4) == 0) return i + 1;
    return 0;
}

/* Case-insensitive "Name:" at the start of a header line: the value, with leading blanks skipped. */
static const char *header_value(const char *line, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':') return NULL;
    return line + n + 1 + strspn(line + n + 1, " \t");
}

/* Parses the status line and the headers we act on; `text` is the NUL-terminated header block. */
static ct_err parse_header(ct_http_client *c, char *text, http_answer *ans, long *content_length)
{
    int minor = -1;
    char *save = NULL, *line = strtok_r(text, "\r\n", &save);
    CT_ENSURE_RET(line && strncmp(line, "HTTP/1.", 7) == 0 && (line[7] == '0' || line[7] == '1') && line[8] == ' ' &&
                      strspn(line + 9, "0123456789") == 3,
                  ct_fail(CT_ERR_IO, "the CA at %s did not answer HTTP/1.x", c->url));
    minor = line[7] - '0';
    ans->status = (int)strtol(line + 9, NULL, 10);
    ans->keep_alive = minor == 1;
    *content_length = -1;
    while ((line = strtok_r(NULL, "\r\n", &save))) {
        const char *v;
        if ((v = header_value(line, "Content-Length"))) {
            size_t digits = strspn(v, "0123456789");
            CT_ENSURE_RET(digits > 0 && digits <= 9 && v[digits] == '\0',
                          ct_fail(CT_ERR_IO, "the CA at %s sent a bad Content-Length", c->url));
            *content_length = strtol(v, NULL, 10);
            CT_ENSURE_RET(*content_length <= CT_HTTP_MAX_BODY,
                          ct_fail(CT_ERR_TOO_LARGE, "the CA's answer of %ld bytes exceeds %d", *content_length,
                                  CT_HTTP_MAX_BODY));
        } else if ((v = header_value(line, "Connection"))) {
            if (strcasecmp(v, "close") == 0) ans->keep_alive = false;
        } else if ((v = header_value(line, "Transfer-Encoding"))) {
            CT_ENSURE_RET(strcasecmp(v, "identity") == 0,
                          ct_fail(CT_ERR_IO, "the CA at %s answered with Transfer-Encoding %.40s", c->url, v));
        }
    }
    /* Without a length the body ends with the connection. */
    if (*content_length < 0) ans->keep_alive = false;
    return CT_OK;
}

static ct_err read_answer(ct_http_client *c, http_answer *ans)
{
    size_t got = 0, hend = 0;
    long clen = -1;
    c->in.len = 0;
    while (!(hend = header_end(&c->in))) {
        CT_ENSURE_RET(c->in.len < CT_HTTP_MAX_HEADER,
                      ct_fail(CT_ERR_IO, "the CA's answer header exceeds %d bytes", CT_HTTP_MAX_HEADER));
        CT_GUARD_RET(conn_read(c, &got));
        CT_ENSURE_RET(got > 0, ct_fail(CT_ERR_IO, "the CA at %s closed the connection %s", c->url,
                                       c->in.len ? "in the middle of its answer" : "without answering"));
    }
    CT_ENSURE_RET(hend <= CT_HTTP_MAX_HEADER,
                  ct_fail(CT_ERR_IO, "the CA's answer header exceeds %d bytes", CT_HTTP_MAX_HEADER));
    char text[CT_HTTP_MAX_HEADER + 1];
    memcpy(text, c->in.data, hend);
    text[hend] = '\0';
    CT_GUARD_RET(parse_header(c, text, ans, &clen));
    ans->body_off = hend;
    size_t want = clen >= 0 ? hend + (size_t)clen : c->in.max;
    while (c->in.len < want) {
        CT_GUARD_RET(conn_read(c, &got));
        if (got == 0) break;
    }
    CT_ENSURE_RET(clen < 0 || c->in.len == want,
                  ct_fail(CT_ERR_IO, "truncated answer from the CA at %s: %zu of %ld body bytes", c->url,
                          c->in.len - hend, clen));
    CT_ENSURE_RET(clen >= 0 || got == 0,
                  ct_fail(CT_ERR_TOO_LARGE, "the CA's answer exceeds %d bytes", CT_HTTP_MAX_BODY));
    ans->body_len = c->in.len - hend;
    return CT_OK;
}

static ct_err send_request(ct_http_client *c, const char *method, const char *path, const char *headers,
                           const ct_buf *body)
{
    ct_err rc = CT_OK;
    ct_buf req = CT_BUF_INIT;
    CT_GUARD(ct_buf_alloc(&req, CT_HTTP_MAX_HEADER + (body ? body->len : 0)));
    CT_GUARD(ct_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n%s", method, path, c->hostport,
                            c->user_agent, headers ? headers : ""));
    if (body) CT_GUARD(ct_buf_appendf(&req, "Content-Length: %zu\r\n", body->len));
    CT_GUARD(ct_buf_appendf(&req, "\r\n"));
    if (body) CT_GUARD(ct_buf_append(&req, body->data, body->len));
    CT_GUARD(conn_write(c, req.data, req.len));
cleanup:
    ct_buf_free(&req);
    return rc;
}

/* One request, on the kept connection if there is one. A kept connection the server closed in the meantime
 * fails before any answer byte: then once more on a fresh connection (what is sent here is idempotent: EST
 * enrollment answers the same certificate for the same key, a cosignature or report is kept once). */
static ct_err http_request(ct_http_client *c, const char *method, const char *path, const char *headers,
                           const ct_buf *body, http_answer *ans)
{
    c->deadline = ct_now_ms() + c->timeout_ms; /* one for both attempts: timeout_ms bounds the whole request */
    for (int attempt = 0;; attempt++) {
        bool reused = c->connected && c->answered > 0;
        if (!c->connected) CT_GUARD_RET(connect_to(c));
        c->in.len = 0;
        ct_err rc = send_request(c, method, path, headers, body);
        if (rc == CT_OK) rc = read_answer(c, ans);
        if (rc == CT_OK) {
            c->answered++;
            if (!ans->keep_alive) disconnect(c);
            return CT_OK;
        }
        bool nothing_came = c->in.len == 0;
        disconnect(c);
        if (!(reused && nothing_came && attempt == 0)) return rc;
    }
}

ct_err ct_http_request(ct_http_client *c, const char *method, const char *path, const char *headers, const ct_buf *body,
                       ct_http_answer *out)
{
    http_answer ans = {0};
    CT_GUARD_RET(http_request(c, method, path, headers, body, &ans));
    *out = (ct_http_answer){.status = ans.status, .body = c->in.data + ans.body_off, .body_len = ans.body_len};
    return CT_OK;
}

/* The ct_err of a refusal, so that callers can tell "not in the order" from "CA broken". */
static ct_err status_error(int status)
{
    static const struct {
        int status;
        ct_err e;
    } map[] = {{400, CT_ERR_BAD_REQUEST}, {401, CT_ERR_UNAUTHENTICATED}, {403, CT_ERR_FORBIDDEN},
               {404, CT_ERR_NOT_FOUND},   {405, CT_ERR_METHOD},          {409, CT_ERR_ALREADY_ISSUED},
               {413, CT_ERR_TOO_LARGE},   {415, CT_ERR_CONTENT_TYPE},    {503, CT_ERR_UNAVAILABLE}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].status == status) return map[i].e;
    return status >= 500 ? CT_ERR_UNAVAILABLE : CT_ERR_BAD_REQUEST;
}

/* The CA's one-line reason ("403 serial ... is not in ..."): printable characters of the first line. */
ct_err ct_http_refusal(const ct_http_answer *ans, const char *what)
{
    char reason[REASON_MAX + 1];
    const uint8_t *p = ans->body, *end = ans->body + ans->body_len, *eol;
    char code[8];
    CT_GUARD_RET(ct_snprintf(code, sizeof code, "%d ", ans->status));
    if (ans->body_len >= strlen(code) && memcmp(p, code, strlen(code)) == 0) p += strlen(code);
    for (eol = p; eol < end && *eol != '\n' && *eol != '\r';) eol++;
    ct_text_safe(reason, sizeof reason, p, (size_t)(eol - p));
    return ct_fail(status_error(ans->status), "the CA refused %s (HTTP %d): %s", what, ans->status,
                   *reason ? reason : "no reason given");
}

static ct_err answer_body(const ct_http_answer *ans, const char *what, size_t max, ct_buf *body)
{
    if (ans->status != 200) return ct_http_refusal(ans, what);
    CT_ENSURE_RET(ans->body_len <= max,
                  ct_fail(CT_ERR_TOO_LARGE, "the CA's answer to %s is larger than %zu bytes", what, max));
    CT_GUARD_RET(ct_buf_alloc(body, ans->body_len + 1)); /* room for a NUL */
    CT_GUARD_RET(ct_buf_set(body, ans->body, ans->body_len));
    body->data[body->len] = '\0';
    return CT_OK;
}

ct_err ct_http_get(ct_http_client *c, const char *path, const char *what, size_t max, ct_buf *body)
{
    ct_http_answer ans;
    CT_GUARD_RET(ct_http_request(c, "GET", path, NULL, NULL, &ans));
    return answer_body(&ans, what, max, body);
}

ct_err ct_http_post_text(ct_http_client *c, const char *path, const ct_buf *body, const char *what, size_t max,
                         ct_buf *answer)
{
    ct_http_answer ans;
    CT_GUARD_RET(ct_http_request(c, "POST", path, "Content-Type: text/plain; charset=utf-8\r\n", body, &ans));
    return answer_body(&ans, what, max, answer);
}

/* ---- set-up ---- */

static ct_err load_pem_file(const char *path, ct_buf *pem)
{
    ct_err rc = ct_file_read(path, PEM_FILE_MAX, pem);
    return rc == CT_ERR_IO ? CT_ERR_CONFIG : rc; /* the detail names the file */
}

static ct_err tls_setup(ct_http_client *c, const ct_http_config *cfg)
{
    ct_err rc = CT_OK;
    ct_buf trust = CT_BUF_INIT, chain = CT_BUF_INIT;
    CT_ENSURE_MSG(cfg->trust_pem_path, CT_ERR_USAGE, "%s: HTTPS needs the root to trust (none pinned)", c->url);
    CT_GUARD(load_pem_file(cfg->trust_pem_path, &trust));
    if (cfg->chain_pem_path) CT_GUARD(load_pem_file(cfg->chain_pem_path, &chain));
    CT_ENSURE(wolfSSL_Init() == WOLFSSL_SUCCESS, CT_ERR_CRYPTO);
    c->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (!c->ctx) wolfSSL_Cleanup(); /* ct_http_client_free cleans up after a context only */
    CT_ENSURE(c->ctx, CT_ERR_NOMEM);
    CT_ENSURE(wolfSSL_CTX_SetMinVersion(c->ctx, WOLFSSL_TLSV1_2) == WOLFSSL_SUCCESS, CT_ERR_CRYPTO);
    CT_ENSURE_MSG(wolfSSL_CTX_load_verify_buffer(c->ctx, trust.data, (long)trust.len, WOLFSSL_FILETYPE_PEM) ==
                      WOLFSSL_SUCCESS,
                  CT_ERR_CONFIG, "%s holds no usable CA certificate", cfg->trust_pem_path);
    if (cfg->chain_pem_path) {
        CT_ENSURE_MSG(wolfSSL_CTX_use_certificate_chain_buffer(c->ctx, chain.data, (long)chain.len) == WOLFSSL_SUCCESS,
                      CT_ERR_CONFIG, "%s holds no usable certificate chain", cfg->chain_pem_path);
        CT_ENSURE_MSG(wolfSSL_CTX_use_PrivateKey_Id(c->ctx, cfg->key_id, (long)cfg->key_id_len, cfg->dev_id) ==
                          WOLFSSL_SUCCESS,
                      CT_ERR_HSM_NO_KEY, "wolfSSL cannot use the client key in the token");
        /* Asks the token whether its key is the one the certificate names. */
        CT_ENSURE_MSG(wolfSSL_CTX_check_private_key(c->ctx) == WOLFSSL_SUCCESS, CT_ERR_CONFIG,
                      "%s does not certify the token's key", cfg->chain_pem_path);
    }
    wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER, NULL);
cleanup:
    ct_buf_free(&trust);
    ct_buf_free(&chain);
    return rc;
}

ct_err ct_http_client_new(const ct_http_config *cfg, ct_http_client **out)
{
    ct_err rc = CT_OK;
    ct_http_client *c = calloc(1, sizeof *c);
    CT_ENSURE(c, CT_ERR_NOMEM);
    c->fd = -1;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    CT_GUARD(ct_strlcpy(c->user_agent, sizeof c->user_agent, cfg->user_agent ? cfg->user_agent : "camtrust"));
    CT_GUARD(url_parse(c, cfg->url, cfg->allow_plain));
    CT_GUARD(ct_buf_alloc(&c->in, CT_HTTP_MAX_HEADER + CT_HTTP_MAX_BODY));
    if (c->tls) CT_GUARD(tls_setup(c, cfg));
    *out = c;
    c = NULL;
cleanup:
    ct_http_client_free(c);
    return rc;
}

void ct_http_client_free(ct_http_client *c)
{
    if (!c) return;
    disconnect(c);
    if (c->ctx) {
        wolfSSL_CTX_free(c->ctx);
        wolfSSL_Cleanup();
    }
    ct_buf_free(&c->in);
    free(c);
}
