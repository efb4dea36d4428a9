/* The station's EST client (RFC 7030): wolfSSL TLS 1.3/1.2 with the client key in the station's token, the
 * server verified against the operations root and by the host name of the URL. One keep-alive HTTP/1.1
 * connection per client, re-opened once when the server closed it in between. Every length read from the
 * network is bounded. */
#define _POSIX_C_SOURCE 200809L
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/factory/factory.h"
#include "station_priv.h"

#define EST_PREFIX "/.well-known/est/"
#define URL_MAX 512
#define HOST_MAX 256
#define REASON_MAX 200
#define PEM_FILE_MAX (64 * 1024)

struct est_client {
    char url[URL_MAX];
    char host[HOST_MAX];     /* for name checks and resolution, without brackets */
    char hostport[HOST_MAX]; /* for the Host header */
    char port[8];
    int timeout_ms;
    WOLFSSL_CTX *ctx;
    WOLFSSL *ssl;
    int fd;
    unsigned answered; /* answers read on the current connection */
    ct_buf in;         /* one whole answer: header and body */
};

typedef struct {
    int status;
    size_t body_off, body_len;
    bool keep_alive;
} http_answer;

/* ---- URL ---- */

static ct_err bad_url(const char *url, const char *why)
{
    return ct_fail(CT_ERR_USAGE, "CA URL '%.200s': %s (want https://host[:port])", url, why);
}

static ct_err url_parse(est_client *c, const char *url)
{
    static const char scheme[] = "https://";
    CT_ENSURE_RET(strlen(url) < sizeof c->url, bad_url(url, "too long"));
    CT_GUARD_RET(ct_strlcpy(c->url, sizeof c->url, url));
    CT_ENSURE_RET(strncasecmp(url, scheme, strlen(scheme)) == 0, bad_url(url, "not https"));
    const char *h = url + strlen(scheme), *end;
    if (*h == '[') {
        end = strchr(h, ']');
        CT_ENSURE_RET(end, bad_url(url, "unclosed '['"));
        h++;
    } else {
        end = h + strcspn(h, ":/");
    }
    size_t hl = (size_t)(end - h);
    CT_ENSURE_RET(hl > 0 && hl < sizeof c->host, bad_url(url, "bad host"));
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    const char *rest = end + (*end == ']');
    size_t pl = 0;
    if (*rest == ':') {
        pl = strspn(rest + 1, "0123456789");
        long port = pl >= 1 && pl <= 5 ? strtol(rest + 1, NULL, 10) : 0;
        CT_ENSURE_RET(port > 0 && port < 65536, bad_url(url, "bad port"));
        memcpy(c->port, rest + 1, pl);
        c->port[pl] = '\0';
        rest += pl + 1;
    } else {
        CT_GUARD_RET(ct_strlcpy(c->port, sizeof c->port, "443"));
    }
    CT_ENSURE_RET(*rest == '\0' || strcmp(rest, "/") == 0, bad_url(url, "a path is not allowed"));
    bool v6 = strchr(c->host, ':') != NULL;
    return ct_snprintf(c->hostport, sizeof c->hostport, "%s%s%s:%s", v6 ? "[" : "", c->host, v6 ? "]" : "", c->port);
}

/* ---- connection ---- */

static void disconnect(est_client *c)
{
    if (c->ssl) wolfSSL_free(c->ssl);
    if (c->fd >= 0) close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
    c->answered = 0;
}

/* Resolves the host (a name is fine here: the certificate is checked against it) and connects with the
 * deadline of factory_connect; then blocking I/O bounded by socket timeouts, which wolfSSL reports as
 * WANT_READ/WANT_WRITE. */
static ct_err tcp_connect(est_client *c)
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
        rc = factory_connect(addr, c->timeout_ms, &c->fd);
    }
    if (rc != CT_OK) {
        rc = station_fail_ctx(CT_ERR_IO, "CA unreachable at %s", c->url);
        goto cleanup;
    }
    struct timeval tv = {.tv_sec = c->timeout_ms / 1000, .tv_usec = (c->timeout_ms % 1000) * 1000};
    int flags = fcntl(c->fd, F_GETFL);
    CT_ENSURE_MSG(flags >= 0 && fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK) == 0 &&
                      setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
                      setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0,
                  CT_ERR_IO, "cannot set up the socket to %s: %s", c->url, strerror(errno));
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

static ct_err tls_connect(est_client *c)
{
    ct_err rc = CT_OK;
    char err[128];
    CT_GUARD(tcp_connect(c));
    c->ssl = wolfSSL_new(c->ctx);
    CT_ENSURE(c->ssl, CT_ERR_NOMEM);
    CT_ENSURE_MSG(wolfSSL_set_fd(c->ssl, c->fd) == WOLFSSL_SUCCESS &&
                      wolfSSL_check_domain_name(c->ssl, c->host) == WOLFSSL_SUCCESS,
                  CT_ERR_INTERNAL, "cannot set up TLS to %s", c->url);
    int r = wolfSSL_connect(c->ssl);
    CT_ENSURE_MSG(r == WOLFSSL_SUCCESS, CT_ERR_IO, "TLS with the CA at %s failed: %s", c->url,
                  tls_error(c->ssl, r, err, sizeof err));
cleanup:
    if (rc != CT_OK) disconnect(c);
    return rc;
}

/* ---- HTTP/1.1 ---- */

/* Reads what is there (at least one byte); *got = 0 when the server closed the connection. */
static ct_err tls_read(est_client *c, size_t *got)
{
    char err[128];
    size_t room = c->in.max - c->in.len;
    int want = room > (size_t)INT32_MAX ? INT32_MAX : (int)room;
    int r = wolfSSL_read(c->ssl, c->in.data + c->in.len, want);
    *got = r > 0 ? (size_t)r : 0;
    c->in.len += *got;
    if (r > 0) return CT_OK;
    int e = wolfSSL_get_error(c->ssl, r);
    if (r == 0 || e == WOLFSSL_ERROR_ZERO_RETURN || e == SOCKET_PEER_CLOSED_E) return CT_OK;
    return ct_fail(CT_ERR_IO, "reading the CA's answer from %s: %s", c->url, tls_error(c->ssl, r, err, sizeof err));
}

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
static ct_err parse_header(est_client *c, char *text, http_answer *ans, long *content_length)
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
            CT_ENSURE_RET(*content_length <= EST_MAX_BODY,
                          ct_fail(CT_ERR_TOO_LARGE, "the CA's answer of %ld bytes exceeds %d", *content_length,
                                  EST_MAX_BODY));
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

static ct_err read_answer(est_client *c, http_answer *ans)
{
    size_t got = 0, hend = 0;
    long clen = -1;
    c->in.len = 0;
    while (!(hend = header_end(&c->in))) {
        CT_ENSURE_RET(c->in.len < EST_MAX_HEADER,
                      ct_fail(CT_ERR_IO, "the CA's answer header exceeds %d bytes", EST_MAX_HEADER));
        CT_GUARD_RET(tls_read(c, &got));
        CT_ENSURE_RET(got > 0, ct_fail(CT_ERR_IO, "the CA at %s closed the connection %s", c->url,
                                       c->in.len ? "in the middle of its answer" : "without answering"));
    }
    CT_ENSURE_RET(hend <= EST_MAX_HEADER,
                  ct_fail(CT_ERR_IO, "the CA's answer header exceeds %d bytes", EST_MAX_HEADER));
    char text[EST_MAX_HEADER + 1];
    memcpy(text, c->in.data, hend);
    text[hend] = '\0';
    CT_GUARD_RET(parse_header(c, text, ans, &clen));
    ans->body_off = hend;
    size_t want = clen >= 0 ? hend + (size_t)clen : c->in.max;
    while (c->in.len < want) {
        CT_GUARD_RET(tls_read(c, &got));
        if (got == 0) break;
    }
    CT_ENSURE_RET(clen < 0 || c->in.len == want,
                  ct_fail(CT_ERR_IO, "truncated answer from the CA at %s: %zu of %ld body bytes", c->url,
                          c->in.len - hend, clen));
    CT_ENSURE_RET(clen >= 0 || got == 0, ct_fail(CT_ERR_TOO_LARGE, "the CA's answer exceeds %d bytes", EST_MAX_BODY));
    ans->body_len = c->in.len - hend;
    return CT_OK;
}

static ct_err send_request(est_client *c, const char *method, const char *path, const ct_buf *body)
{
    ct_err rc = CT_OK;
    ct_buf req = CT_BUF_INIT;
    char err[128];
    CT_GUARD(ct_buf_alloc(&req, EST_MAX_HEADER + (body ? body->len : 0)));
    CT_GUARD(ct_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: camtrust-station\r\n", method, path,
                            c->hostport));
    if (body)
        CT_GUARD(ct_buf_appendf(&req,
                                "Content-Type: application/pkcs10\r\nContent-Transfer-Encoding: base64\r\n"
                                "Content-Length: %zu\r\n",
                                body->len));
    CT_GUARD(ct_buf_appendf(&req, "\r\n"));
    if (body) CT_GUARD(ct_buf_append(&req, body->data, body->len));
    int r = wolfSSL_write(c->ssl, req.data, (int)req.len);
    CT_ENSURE_MSG(r == (int)req.len, CT_ERR_IO, "sending to the CA at %s: %s", c->url,
                  tls_error(c->ssl, r, err, sizeof err));
cleanup:
    ct_buf_free(&req);
    return rc;
}

/* One request, on the kept connection if there is one. A kept connection the server closed in the meantime
 * fails before any answer byte: then once more on a fresh connection (EST enrollment is idempotent here:
 * the CA answers the same certificate for the same key). */
static ct_err http_request(est_client *c, const char *method, const char *path, const ct_buf *body,
                           http_answer *ans)
{
    for (int attempt = 0;; attempt++) {
        bool reused = c->ssl != NULL && c->answered > 0;
        if (!c->ssl) CT_GUARD_RET(tls_connect(c));
        c->in.len = 0;
        ct_err rc = send_request(c, method, path, body);
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
static ct_err refusal(est_client *c, const http_answer *ans, const char *what)
{
    char reason[REASON_MAX + 1];
    const uint8_t *p = c->in.data + ans->body_off;
    size_t n = 0;
    char code[8];
    CT_GUARD_RET(ct_snprintf(code, sizeof code, "%d ", ans->status));
    if (ans->body_len >= strlen(code) && memcmp(p, code, strlen(code)) == 0) p += strlen(code);
    const uint8_t *end = c->in.data + ans->body_off + ans->body_len;
    while (p < end && n < REASON_MAX && *p != '\n' && *p != '\r') {
        reason[n++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
        p++;
    }
    reason[n] = '\0';
    return ct_fail(status_error(ans->status), "the CA refused %s (HTTP %d): %s", what, ans->status,
                   n ? reason : "no reason given");
}

static ct_err add_cert(const uint8_t *der, size_t len, void *arg)
{
    est_certs *certs = arg;
    CT_ENSURE_RET(certs->n < PKI_MAX_PKCS7_CERTS, CT_ERR_BAD_DER);
    ct_buf *b = &certs->der[certs->n];
    CT_GUARD_RET(ct_buf_alloc(b, len));
    CT_GUARD_RET(ct_buf_set(b, der, len));
    certs->n++;
    return CT_OK;
}

void est_certs_free(est_certs *certs)
{
    for (size_t i = 0; i < certs->n; i++) ct_buf_free(&certs->der[i]);
    certs->n = 0;
}

/* An EST exchange whose answer is a base64 certs-only PKCS#7. */
static ct_err est_exchange(est_client *c, const char *method, const char *path, const ct_buf *body, const char *what,
                           est_certs *out)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    http_answer ans = {0};
    char full[128];
    out->n = 0;
    CT_GUARD(ct_snprintf(full, sizeof full, "%s%s", EST_PREFIX, path));
    CT_GUARD(http_request(c, method, full, body, &ans));
    if (ans.status != 200) {
        rc = refusal(c, &ans, what);
        goto cleanup;
    }
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_PKCS7_DER));
    if ((rc = ct_base64_decode(c->in.data + ans.body_off, ans.body_len, &der)) != CT_OK) {
        rc = station_fail_ctx(rc, "the CA's answer to %s is not base64", what);
        goto cleanup;
    }
    if ((rc = pki_pkcs7_certs_parse(der.data, der.len, add_cert, out)) != CT_OK) {
        rc = station_fail_ctx(rc, "the CA's answer to %s is not a certs-only PKCS#7", what);
        goto cleanup;
    }
    CT_ENSURE_MSG(out->n > 0, CT_ERR_BAD_DER, "the CA's answer to %s holds no certificate", what);
cleanup:
    if (rc != CT_OK) est_certs_free(out);
    ct_buf_free(&der);
    return rc;
}

ct_err est_cacerts(est_client *c, est_certs *out)
{
    return est_exchange(c, "GET", "cacerts", NULL, "cacerts", out);
}

ct_err est_simpleenroll(est_client *c, const char *label, const uint8_t *csr, size_t csr_len, ct_buf *leaf)
{
    ct_err rc = CT_OK;
    ct_buf body = CT_BUF_INIT;
    est_certs certs = {.n = 0};
    char path[96], what[96];
    bool labelled = label && *label;
    CT_GUARD(ct_snprintf(path, sizeof path, "%s%ssimpleenroll", labelled ? label : "", labelled ? "/" : ""));
    CT_GUARD(ct_snprintf(what, sizeof what, "the %s enrollment", labelled ? label : "device"));
    CT_ENSURE(csr_len <= PKI_MAX_CSR_DER, CT_ERR_TOO_LARGE);
    CT_GUARD(ct_buf_alloc(&body, csr_len * 2 + 64));
    CT_GUARD(ct_base64_encode(csr, csr_len, true, &body));
    CT_GUARD(est_exchange(c, "POST", path, &body, what, &certs));
    CT_GUARD(ct_buf_alloc(leaf, certs.der[0].len));
    CT_GUARD(ct_buf_set(leaf, certs.der[0].data, certs.der[0].len));
cleanup:
    est_certs_free(&certs);
    ct_buf_free(&body);
    return rc;
}

ct_err est_get(est_client *c, const char *path, const char *what, size_t max, ct_buf *body)
{
    http_answer ans = {0};
    CT_GUARD_RET(http_request(c, "GET", path, NULL, &ans));
    if (ans.status != 200) return refusal(c, &ans, what);
    CT_ENSURE_RET(ans.body_len <= max, ct_fail(CT_ERR_TOO_LARGE, "the CA's answer to %s is larger than %zu bytes", what,
                                              max));
    CT_GUARD_RET(ct_buf_alloc(body, ans.body_len + 1)); /* room for a NUL */
    return ct_buf_set(body, c->in.data + ans.body_off, ans.body_len);
}

/* ---- set-up ---- */

static ct_err load_pem_file(const char *path, ct_buf *pem)
{
    ct_err rc = ct_file_read(path, PEM_FILE_MAX, pem);
    return rc == CT_ERR_IO ? CT_ERR_CONFIG : rc; /* the detail names the file */
}

ct_err est_client_new(const est_config *cfg, est_client **out)
{
    ct_err rc = CT_OK;
    ct_buf trust = CT_BUF_INIT, chain = CT_BUF_INIT;
    bool wolf_up = false;
    est_client *c = calloc(1, sizeof *c);
    CT_ENSURE(c, CT_ERR_NOMEM);
    c->fd = -1;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : FACTORY_DEFAULT_TIMEOUT_MS;
    CT_GUARD(url_parse(c, cfg->url));
    CT_GUARD(ct_buf_alloc(&c->in, EST_MAX_HEADER + EST_MAX_BODY));
    CT_GUARD(load_pem_file(cfg->trust_pem_path, &trust));
    CT_GUARD(load_pem_file(cfg->chain_pem_path, &chain));
    CT_ENSURE(wolfSSL_Init() == WOLFSSL_SUCCESS, CT_ERR_CRYPTO);
    wolf_up = true;
    c->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    CT_ENSURE(c->ctx, CT_ERR_NOMEM);
    CT_ENSURE(wolfSSL_CTX_SetMinVersion(c->ctx, WOLFSSL_TLSV1_2) == WOLFSSL_SUCCESS, CT_ERR_CRYPTO);
    CT_ENSURE_MSG(wolfSSL_CTX_load_verify_buffer(c->ctx, trust.data, (long)trust.len, WOLFSSL_FILETYPE_PEM) ==
                      WOLFSSL_SUCCESS,
                  CT_ERR_CONFIG, "%s holds no usable CA certificate", cfg->trust_pem_path);
    CT_ENSURE_MSG(wolfSSL_CTX_use_certificate_chain_buffer(c->ctx, chain.data, (long)chain.len) == WOLFSSL_SUCCESS,
                  CT_ERR_CONFIG, "%s holds no usable certificate chain", cfg->chain_pem_path);
    CT_ENSURE_MSG(wolfSSL_CTX_use_PrivateKey_Id(c->ctx, cfg->key_id, (long)cfg->key_id_len, cfg->dev_id) ==
                      WOLFSSL_SUCCESS,
                  CT_ERR_HSM_NO_KEY, "wolfSSL cannot use the station key in the token");
    /* Asks the token whether its key is the one the certificate names. */
    CT_ENSURE_MSG(wolfSSL_CTX_check_private_key(c->ctx) == WOLFSSL_SUCCESS, CT_ERR_CONFIG,
                  "%s does not certify the station's token key", cfg->chain_pem_path);
    wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER, NULL);
    *out = c;
    c = NULL;
cleanup:
    ct_buf_free(&trust);
    ct_buf_free(&chain);
    if (c) {
        if (c->ctx) wolfSSL_CTX_free(c->ctx);
        ct_buf_free(&c->in);
        free(c);
        if (wolf_up) wolfSSL_Cleanup();
    }
    return rc;
}

void est_client_free(est_client *c)
{
    if (!c) return;
    disconnect(c);
    wolfSSL_CTX_free(c->ctx);
    ct_buf_free(&c->in);
    free(c);
    wolfSSL_Cleanup();
}
