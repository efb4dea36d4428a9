/* camtrust-bench-enroll: load generator for the enrollment benchmark (tests/bench/enroll/run drives it).
 *
 *   --mode est    N keep-alive mutual-TLS 1.3 connections (wolfSSL) POSTing /.well-known/est/simpleenroll
 *   --mode cfssl  N keep-alive plain-HTTP connections POSTing /api/v1/cfssl/sign to `cfssl serve`
 *   --mode cfssl-tls  the same over TLS 1.3 with a client certificate (cfssl serve -mutual-tls-ca)
 *   --mode token  raw hsm_key_sign_digest rate on the CA's device-issuing key, 1 thread then N threads; then
 *                 raw hsm_verify_digest with a fresh public key each time (a CSR's proof of possession), 1 and
 *                 N threads; then wolfSSL's own verify of the same, 1 thread, for comparison; then the token's
 *                 whole share of one issuance, 1 and N threads: the CSR's proof of possession (hsm_verify_digest),
 *                 the TBS signed by the device-issuing key (hsm_key_sign_digest), that signature re-checked in the
 *                 token (hsm_key_verify_digest), the audit entry's HMAC (hsm_mac_sign with the audit key), the calls
 *                 the CA makes; and the same without the re-check, so that the defence's cost can be read
 *
 * CSRs are made before the timed part: one fresh software P-256 key per request, subject serialNumber from
 * the --serials list. Each connection thread sends its share (requests t, t+N, t+2N, ...) back to back and
 * records the latency of each; TLS handshakes happen before the clock starts. One result line per figure,
 * key=value, on stdout. A benchmark: it prints figures and never judges them. Every loop is bounded in count
 * and in time (--max-seconds, socket timeouts). */
#define _POSIX_C_SOURCE 200809L
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ca_priv.h"

#define MAX_CONNS 256
#define MAX_REQUESTS 1000000
#define MAX_SERIAL_LEN 63
#define MAX_HEADER_BYTES 8192
#define MAX_RESPONSE_BYTES (64 * 1024)
#define MAX_RECONNECTS 100
#define IO_TIMEOUT_S 30
#define CSR_DER_MAX 1024
#define TOKEN_LAT_CAP 2000000

typedef enum { MODE_EST, MODE_CFSSL, MODE_CFSSL_TLS, MODE_TOKEN } bench_mode;

/* Modes that speak TLS with a client certificate. */
#define MODE_TLS(m) ((m) == MODE_EST || (m) == MODE_CFSSL_TLS)

typedef struct {
    bench_mode mode;
    const char *host;
    long port;
    long port2; /* est: a second node of the same CA (--port2): odd connections go there; 0: none */
    long conns;
    long count;
    const char *serials_path;
    const char *cert_path;
    const char *key_path;
    const char *cafile;
    const char *server_name;
    const char *ca_dir;
    const char *answered_path; /* est, cfssl: each serial answered 200 is appended here as it is answered */
    double seconds;     /* token mode: duration of each run */
    double max_seconds; /* est/cfssl: the whole timed part stops after this */
} bench_opts;

/* ---- small helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0) return 0.0;
    size_t rank = (size_t)(p * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t hay_len, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0 || hay_len < n) return NULL;
    for (size_t i = 0; i + n <= hay_len; i++)
        if (memcmp(hay + i, needle, n) == 0) return hay + i;
    return NULL;
}

static bool parse_double(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) return false;
    *out = v;
    return true;
}

/* An error message for the report: bounded, truncated when long (it is only ever printed). */
static void errf(char *dst, size_t max, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *dst, size_t max, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(dst, max, fmt, ap);
    va_end(ap);
}

/* ---- serials and CSRs (outside the timed part) ---- */

typedef struct {
    char (*serial)[MAX_SERIAL_LEN + 1];
    size_t n;
} serial_list;

static ct_err serials_load(const char *path, size_t want, serial_list *out)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT;
    out->serial = calloc(want, sizeof *out->serial);
    out->n = 0;
    CT_ENSURE(out->serial, CT_ERR_NOMEM);
    CT_GUARD(ct_file_read(path, 64u * 1024u * 1024u, &file));
    size_t pos = 0;
    while (pos < file.len && out->n < want) {
        size_t start = pos;
        while (pos < file.len && file.data[pos] != '\n') pos++;
        size_t end = pos;
        pos++; /* past the newline */
        while (end > start && (file.data[end - 1] == '\r' || file.data[end - 1] == ' ' || file.data[end - 1] == '\t'))
            end--;
        while (start < end && (file.data[start] == ' ' || file.data[start] == '\t')) start++;
        if (end == start || file.data[start] == '#') continue;
        CT_ENSURE_MSG(end - start <= MAX_SERIAL_LEN, CT_ERR_USAGE, "%s: serial longer than %d", path, MAX_SERIAL_LEN);
        memcpy(out->serial[out->n], file.data + start, end - start);
        out->serial[out->n][end - start] = '\0';
        out->n++;
    }
    CT_ENSURE_MSG(out->n == want, CT_ERR_USAGE, "%s holds %zu serials, %zu needed", path, out->n, want);
cleanup:
    ct_buf_free(&file);
    return rc;
}

/* A fresh software P-256 key and its PKCS#10 (DER), subject serialNumber=SERIAL, CN="bench SERIAL". */
static ct_err csr_make(WC_RNG *rng, const char *serial, Cert *req, uint8_t *der, size_t der_max, size_t *der_len)
{
    ct_err rc = CT_OK;
    ecc_key key;
    bool key_ok = false;
    CT_ENSURE_MSG(wc_ecc_init(&key) == 0, CT_ERR_CRYPTO, "wc_ecc_init failed");
    key_ok = true;
    int ret = wc_ecc_make_key_ex(rng, 32, &key, ECC_SECP256R1);
    CT_ENSURE_MSG(ret == 0, CT_ERR_CRYPTO, "wc_ecc_make_key_ex: %s", wc_GetErrorString(ret));
    CT_ENSURE_MSG(wc_InitCert(req) == 0, CT_ERR_CRYPTO, "wc_InitCert failed");
    req->version = 0;
    req->sigType = CTC_SHA256wECDSA;
    CT_GUARD(ct_strlcpy(req->subject.serialDev, sizeof req->subject.serialDev, serial));
    req->subject.serialDevEnc = CTC_PRINTABLE;
    CT_GUARD(ct_snprintf(req->subject.commonName, sizeof req->subject.commonName, "bench %s", serial));
    req->subject.commonNameEnc = CTC_UTF8;
    ret = wc_MakeCertReq_ex(req, der, (word32)der_max, ECC_TYPE, &key);
    CT_ENSURE_MSG(ret > 0, CT_ERR_CRYPTO, "wc_MakeCertReq_ex: %s", wc_GetErrorString(ret));
    ret = wc_SignCert_ex(req->bodySz, req->sigType, der, (word32)der_max, ECC_TYPE, &key, rng);
    CT_ENSURE_MSG(ret > 0, CT_ERR_CRYPTO, "wc_SignCert_ex: %s", wc_GetErrorString(ret));
    *der_len = (size_t)ret;
cleanup:
    if (key_ok) wc_ecc_free(&key);
    return rc;
}

/* The whole HTTP request for one CSR, ready to write. */
static ct_err request_build(const bench_opts *o, const uint8_t *der, size_t der_len, ct_buf *out)
{
    ct_err rc = CT_OK;
    ct_buf enc = CT_BUF_INIT, body = CT_BUF_INIT;
    CT_GUARD(ct_buf_alloc(&enc, 4096));
    CT_GUARD(ct_buf_alloc(&body, 4096));
    if (o->mode == MODE_EST) {
        CT_GUARD(ct_base64_encode(der, der_len, false, &body));
        CT_GUARD(ct_buf_alloc(out, body.len + 512));
        CT_GUARD(ct_buf_appendf(out,
                                "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: %s:%ld\r\n"
                                "Content-Type: application/pkcs10\r\nContent-Length: %zu\r\n\r\n",
                                o->server_name, o->port, body.len));
    } else {
        CT_GUARD(ct_pem_encode("CERTIFICATE REQUEST", der, der_len, &enc));
        CT_GUARD(ct_buf_append(&body, "{\"certificate_request\":\"", 24));
        for (size_t i = 0; i < enc.len; i++) {
            if (enc.data[i] == '\n') CT_GUARD(ct_buf_append(&body, "\\n", 2));
            else if (enc.data[i] != '\r') CT_GUARD(ct_buf_append(&body, &enc.data[i], 1));
        }
        CT_GUARD(ct_buf_append(&body, "\"}", 2));
        CT_GUARD(ct_buf_alloc(out, body.len + 512));
        CT_GUARD(ct_buf_appendf(out,
                                "POST /api/v1/cfssl/sign HTTP/1.1\r\nHost: %s:%ld\r\n"
                                "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                                o->host, o->port, body.len));
    }
    CT_GUARD(ct_buf_append(out, body.data, body.len));
cleanup:
    ct_buf_free(&enc);
    ct_buf_free(&body);
    if (rc != CT_OK) ct_buf_free(out);
    return rc;
}

/* ---- connections: plain TCP or wolfSSL TLS 1.3 over it ---- */

typedef struct {
    int fd;
    WOLFSSL *ssl;
} conn;

static WOLFSSL_CTX *g_tls_ctx;

static void conn_close(conn *c)
{
    if (c->ssl) {
        wolfSSL_shutdown(c->ssl);
        wolfSSL_free(c->ssl);
    }
    if (c->fd >= 0) close(c->fd);
    c->ssl = NULL;
    c->fd = -1;
}

static bool conn_open(const bench_opts *o, conn *c, char *err, size_t err_max)
{
    c->fd = -1;
    c->ssl = NULL;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1) {
        errf(err, err_max, "host %s is not an IPv4 address", o->host);
        return false;
    }
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) {
        errf(err, err_max, "socket: %s", strerror(errno));
        return false;
    }
    struct timeval tv = {IO_TIMEOUT_S, 0};
    int one = 1;
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        errf(err, err_max, "connect %s:%ld: %s", o->host, o->port, strerror(errno));
        conn_close(c);
        return false;
    }
    if (!MODE_TLS(o->mode)) return true;
    c->ssl = wolfSSL_new(g_tls_ctx);
    if (!c->ssl || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS) {
        errf(err, err_max, "wolfSSL_new/set_fd failed");
        conn_close(c);
        return false;
    }
    (void)wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, o->server_name, (word16)strlen(o->server_name));
    (void)wolfSSL_check_domain_name(c->ssl, o->server_name);
    if (wolfSSL_connect(c->ssl) != WOLFSSL_SUCCESS) {
        int e = wolfSSL_get_error(c->ssl, 0);
        char msg[WOLFSSL_MAX_ERROR_SZ];
        errf(err, err_max, "TLS handshake: %s (%d)", wolfSSL_ERR_error_string((unsigned long)e, msg), e);
        conn_close(c);
        return false;
    }
    return true;
}

static bool conn_write_all(conn *c, const uint8_t *p, size_t n)
{
    size_t done = 0;
    int rounds = 0;
    while (done < n && rounds++ < 100000) {
        size_t chunk = n - done > 1u << 20 ? 1u << 20 : n - done;
        if (c->ssl) {
            int w = wolfSSL_write(c->ssl, p + done, (int)chunk);
            if (w <= 0) return false;
            done += (size_t)w;
        } else {
            ssize_t w = send(c->fd, p + done, chunk, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return false;
            done += (size_t)w;
        }
    }
    return done == n;
}

/* Reads at most `max` bytes; >0 bytes read, 0 closed, <0 error or timeout. */
static long conn_read(conn *c, uint8_t *p, size_t max)
{
    if (c->ssl) {
        int r = wolfSSL_read(c->ssl, p, (int)max);
        if (r > 0) return r;
        int e = wolfSSL_get_error(c->ssl, r);
        return e == WOLFSSL_ERROR_ZERO_RETURN || e == SOCKET_PEER_CLOSED_E ? 0 : -1;
    }
    for (int tries = 0; tries < 100; tries++) {
        ssize_t r = recv(c->fd, p, max, 0);
        if (r < 0 && errno == EINTR) continue;
        return (long)r;
    }
    return -1;
}

/* ---- one bounded HTTP/1.1 response: headers up to MAX_HEADER_BYTES, body by Content-Length only ---- */

typedef struct {
    int status;
    const uint8_t *body;
    size_t body_len;
    bool close;
} http_response;

static bool header_value(const uint8_t *hdr, size_t hdr_len, const char *name, char *val, size_t val_max)
{
    size_t nlen = strlen(name);
    size_t pos = 0;
    while (pos < hdr_len) {
        size_t start = pos;
        while (pos + 1 < hdr_len && !(hdr[pos] == '\r' && hdr[pos + 1] == '\n')) pos++;
        size_t end = pos;
        pos += 2;
        if (end - start > nlen && hdr[start + nlen] == ':' && strncasecmp((const char *)hdr + start, name, nlen) == 0) {
            size_t v = start + nlen + 1;
            while (v < end && (hdr[v] == ' ' || hdr[v] == '\t')) v++;
            size_t vl = end - v;
            if (vl + 1 > val_max) return false;
            memcpy(val, hdr + v, vl);
            val[vl] = '\0';
            return true;
        }
    }
    return false;
}

static bool http_read_response(conn *c, uint8_t *buf, size_t buf_max, http_response *r, char *err, size_t err_max)
{
    size_t have = 0, hdr_end = 0;
    const uint8_t *eoh = NULL;
    int rounds = 0;
    while (!eoh) {
        if (have >= MAX_HEADER_BYTES || rounds++ > 10000) {
            errf(err, err_max, "response header too large");
            return false;
        }
        long n = conn_read(c, buf + have, MAX_HEADER_BYTES - have);
        if (n <= 0) {
            errf(err, err_max, n == 0 ? "connection closed" : "read failed or timed out");
            return false;
        }
        have += (size_t)n;
        eoh = find_bytes(buf, have, "\r\n\r\n");
    }
    hdr_end = (size_t)(eoh - buf) + 4;
    if (hdr_end < 13 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ') {
        errf(err, err_max, "not an HTTP/1.x response");
        return false;
    }
    r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    char val[64];
    if (header_value(buf, hdr_end, "Transfer-Encoding", val, sizeof val)) {
        errf(err, err_max, "Transfer-Encoding %s not supported (Content-Length only)", val);
        return false;
    }
    long clen = 0;
    if (!header_value(buf, hdr_end, "Content-Length", val, sizeof val) ||
        !ct_parse_long(val, 0, (long)(buf_max - hdr_end), &clen)) {
        errf(err, err_max, "missing or oversized Content-Length");
        return false;
    }
    r->close = header_value(buf, hdr_end, "Connection", val, sizeof val) && strcasecmp(val, "close") == 0;
    size_t total = hdr_end + (size_t)clen;
    rounds = 0;
    while (have < total) {
        if (rounds++ > 100000) {
            errf(err, err_max, "body read did not finish");
            return false;
        }
        long n = conn_read(c, buf + have, total - have);
        if (n <= 0) {
            errf(err, err_max, "body truncated");
            return false;
        }
        have += (size_t)n;
    }
    if (have > total) {
        errf(err, err_max, "unexpected bytes after the response");
        return false;
    }
    r->body = buf + hdr_end;
    r->body_len = (size_t)clen;
    return true;
}

/* ---- est / cfssl load ---- */

typedef struct {
    const bench_opts *o;
    const ct_buf *requests;
    const serial_list *serials; /* serial i is request i's */
    size_t index;    /* thread number */
    double *lat;     /* latency (s) of each request of this thread, by its order */
    size_t n_lat;
    size_t ok, failed, reconnects, unsent;
    double handshake_s;
    double end;
    char err[256];
} load_thread;

static pthread_barrier_t g_barrier;
static double g_start;
static int g_answered_fd = -1;

/* --answered: one line per serial answered 200, written at once (O_APPEND: one write() per line, whole), so that a
 * test that cuts the server's power mid-load knows every answer that left it. */
static void answered_note(const char *serial)
{
    char line[MAX_SERIAL_LEN + 2];
    if (g_answered_fd < 0 || ct_snprintf(line, sizeof line, "%s\n", serial) != CT_OK) return;
    if (write(g_answered_fd, line, strlen(line)) != (ssize_t)strlen(line))
        fprintf(stderr, "--answered: cannot write: %s\n", strerror(errno));
}

/* --port2: this connection's node (several CA nodes on one database share the load). */
static bench_opts node_opts(const load_thread *t)
{
    bench_opts mine = *t->o;
    if (mine.port2 && t->index % 2) mine.port = mine.port2;
    return mine;
}

static void *load_main(void *arg)
{
    load_thread *t = arg;
    const bench_opts node = node_opts(t);
    const bench_opts *o = &node;
    conn c = {-1, NULL};
    uint8_t *buf = malloc(MAX_RESPONSE_BYTES);
    double h0 = now_s();
    bool up = buf && conn_open(o, &c, t->err, sizeof t->err);
    t->handshake_s = now_s() - h0;
    pthread_barrier_wait(&g_barrier); /* the clock starts when every connection is up */
    double deadline = now_s() + o->max_seconds;
    for (size_t i = t->index; up && i < (size_t)o->count; i += (size_t)o->conns) {
        if (now_s() > deadline) {
            errf(t->err, sizeof t->err, "stopped at --max-seconds");
            break;
        }
        double t0 = now_s();
        http_response r = {0, NULL, 0, false};
        char err[160] = "";
        bool sent = conn_write_all(&c, t->requests[i].data, t->requests[i].len);
        bool got = sent && http_read_response(&c, buf, MAX_RESPONSE_BYTES, &r, err, sizeof err);
        double dt = now_s() - t0;
        bool good = got && r.status == 200 &&
                    (o->mode == MODE_EST ? r.body_len > 0 : find_bytes(r.body, r.body_len, "\"success\":true") != NULL);
        if (good) {
            t->ok++;
            t->lat[t->n_lat++] = dt;
            answered_note(t->serials->serial[i]);
        } else {
            t->failed++;
            if (!t->err[0]) {
                if (!sent) errf(t->err, sizeof t->err, "request %zu: write failed", i);
                else if (!got) errf(t->err, sizeof t->err, "request %zu: %s", i, err);
                else {
                    size_t show = r.body_len > 120 ? 120 : r.body_len;
                    char snippet[121];
                    for (size_t k = 0; k < show; k++)
                        snippet[k] = r.body[k] >= 0x20 && r.body[k] < 0x7f ? (char)r.body[k] : '.';
                    snippet[show] = '\0';
                    errf(t->err, sizeof t->err, "request %zu: HTTP %d: %s", i, r.status, snippet);
                }
            }
        }
        if (!got || r.close) { /* the server ended the keep-alive: reconnect (counted), bounded */
            conn_close(&c);
            if (t->reconnects++ >= MAX_RECONNECTS) break;
            char cerr[160];
            up = conn_open(o, &c, cerr, sizeof cerr);
            if (!up && !t->err[0]) errf(t->err, sizeof t->err, "reconnect: %s", cerr);
        }
    }
    t->end = now_s();
    size_t share = ((size_t)o->count - t->index + (size_t)o->conns - 1) / (size_t)o->conns;
    t->unsent = share - t->ok - t->failed;
    conn_close(&c);
    free(buf);
    wc_ecc_fp_free(); /* wolfSSL's per-thread fixed-point cache (its handshakes' ECC) */
    return NULL;
}

static const char *mode_name(bench_mode m)
{
    return m == MODE_EST ? "est" : m == MODE_CFSSL ? "cfssl" : m == MODE_CFSSL_TLS ? "cfssl-tls" : "token";
}

static int run_load(const bench_opts *o)
{
    int exit_code = 1;
    size_t n = (size_t)o->count, nt = (size_t)o->conns;
    serial_list serials = {NULL, 0};
    ct_buf *requests = calloc(n, sizeof *requests);
    load_thread *threads = calloc(nt, sizeof *threads);
    pthread_t *tids = calloc(nt, sizeof *tids);
    double *all = calloc(n, sizeof *all);
    Cert *req = malloc(sizeof *req);
    WC_RNG rng;
    bool rng_ok = false;
    size_t started = 0;
    if (!requests || !threads || !tids || !all || !req) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    if (serials_load(o->serials_path, n, &serials) != CT_OK) {
        fprintf(stderr, "serials: %s\n", ct_err_detail());
        goto done;
    }
    if (wc_InitRng(&rng) != 0) goto done;
    rng_ok = true;
    double g0 = now_s();
    for (size_t i = 0; i < n; i++) {
        uint8_t der[CSR_DER_MAX];
        size_t der_len = 0;
        if (csr_make(&rng, serials.serial[i], req, der, sizeof der, &der_len) != CT_OK ||
            request_build(o, der, der_len, &requests[i]) != CT_OK) {
            fprintf(stderr, "CSR %zu: %s\n", i, ct_err_detail());
            goto done;
        }
    }
    fprintf(stderr, "%s: %zu fresh P-256 CSRs made in %.2f s (not timed)\n", mode_name(o->mode), n, now_s() - g0);
    if (o->answered_path &&
        (g_answered_fd = open(o->answered_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        fprintf(stderr, "--answered %s: %s\n", o->answered_path, strerror(errno));
        goto done;
    }

    if (MODE_TLS(o->mode)) {
        g_tls_ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
        if (!g_tls_ctx || wolfSSL_CTX_load_verify_locations(g_tls_ctx, o->cafile, NULL) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_use_certificate_chain_file(g_tls_ctx, o->cert_path) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_use_PrivateKey_file(g_tls_ctx, o->key_path, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
            fprintf(stderr, "TLS setup: cannot load %s / %s / %s\n", o->cafile, o->cert_path, o->key_path);
            goto done;
        }
        wolfSSL_CTX_set_verify(g_tls_ctx, WOLFSSL_VERIFY_PEER, NULL);
    }

    if (pthread_barrier_init(&g_barrier, NULL, (unsigned)nt + 1) != 0) goto done;
    size_t off = 0;
    for (size_t t = 0; t < nt; t++) {
        threads[t].o = o;
        threads[t].requests = requests;
        threads[t].serials = &serials;
        threads[t].index = t;
        threads[t].lat = all + off;
        off += (n - t + nt - 1) / nt; /* this thread's share */
    }
    for (; started < nt; started++)
        if (pthread_create(&tids[started], NULL, load_main, &threads[started]) != 0) break;
    if (started < nt) {
        /* cannot reach the barrier count: say so and stop (the started threads wait forever; exit ends them) */
        fprintf(stderr, "pthread_create failed after %zu threads\n", started);
        exit(1);
    }
    pthread_barrier_wait(&g_barrier);
    g_start = now_s();
    for (size_t t = 0; t < nt; t++) pthread_join(tids[t], NULL);
    pthread_barrier_destroy(&g_barrier);

    size_t ok = 0, failed = 0, reconnects = 0, unsent = 0, nl = 0;
    double end = g_start, hs_max = 0;
    for (size_t t = 0; t < nt; t++) {
        ok += threads[t].ok;
        failed += threads[t].failed;
        reconnects += threads[t].reconnects;
        unsent += threads[t].unsent;
        if (threads[t].end > end) end = threads[t].end;
        if (threads[t].handshake_s > hs_max) hs_max = threads[t].handshake_s;
        if (threads[t].err[0]) fprintf(stderr, "%s conn %zu: %s\n", mode_name(o->mode), t, threads[t].err);
        /* compact the latencies into one array */
        memmove(all + nl, threads[t].lat, threads[t].n_lat * sizeof *all);
        nl += threads[t].n_lat;
    }
    qsort(all, nl, sizeof *all, cmp_double);
    double secs = end - g_start;
    printf("%s conns=%ld requests=%ld ok=%zu failed=%zu unsent=%zu reconnects=%zu seconds=%.3f certs_per_s=%.1f p50_ms=%.2f "
           "p99_ms=%.2f max_ms=%.2f connect_ms_max=%.1f\n",
           mode_name(o->mode), o->conns, o->count, ok, failed, unsent, reconnects, secs, secs > 0 ? (double)ok / secs : 0.0,
           percentile(all, nl, 0.50) * 1e3, percentile(all, nl, 0.99) * 1e3, nl ? all[nl - 1] * 1e3 : 0.0,
           hs_max * 1e3);
    fflush(stdout);
    exit_code = failed == 0 && ok == n ? 0 : 2;
done:
    if (g_answered_fd >= 0) (void)close(g_answered_fd);
    g_answered_fd = -1;
    if (g_tls_ctx) wolfSSL_CTX_free(g_tls_ctx);
    g_tls_ctx = NULL;
    if (rng_ok) wc_FreeRng(&rng);
    if (requests)
        for (size_t i = 0; i < n; i++) ct_buf_free(&requests[i]);
    free(requests);
    free(threads);
    free(tids);
    free(all);
    free(req);
    free(serials.serial);
    return exit_code;
}

/* ---- token: raw sign rate of the device-issuing key; raw verify rate with fresh public keys; one issuance ---- */

typedef enum { OP_SIGN, OP_VERIFY_TOKEN, OP_VERIFY_WOLF, OP_ISSUE, OP_ISSUE_NORECHECK } token_op;

/* The bytes of one audit entry MACed per issuance: prev hash, seq, time and the five texts of a cert.issue entry
 * (db/audit.c), about this long. */
#define AUDIT_ENTRY_BYTES 224

/* A proof of possession to check: a fresh software key's point, a digest and its DER signature. */
#define VERIFY_CASES 64
typedef struct {
    uint8_t point[65];
    uint8_t digest[32];
    uint8_t sig[80];
    size_t sig_len;
} verify_case;

/* What every token run uses: the CA's token, its device-issuing key and audit key, the proofs to check. */
typedef struct {
    hsm *h;
    const verify_case *cases;
    hsm_key *key;
    hsm_mac_key *mac;
    long sessions;
    double seconds;
} token_ctx;

typedef struct {
    token_op op;
    const token_ctx *x;
    double *lat;
    size_t cap, n, ok, failed;
    double end;
    char err[256];
} sign_thread;

/* One verify of case `vc`; wolfSSL imports the key afresh each time, as it does for each CSR. */
static ct_err verify_one(const sign_thread *t, const verify_case *vc)
{
    bool valid = false;
    if (t->op == OP_VERIFY_TOKEN) {
        CT_GUARD_RET(hsm_verify_digest(t->x->h, HSM_EC_P256, vc->point, sizeof vc->point, vc->digest, sizeof vc->digest,
                                       vc->sig, vc->sig_len, &valid));
    } else {
        ecc_key k;
        int res = 0;
        if (wc_ecc_init(&k) != 0) return ct_fail(CT_ERR_CRYPTO, "wc_ecc_init");
        int ret = wc_ecc_import_x963_ex(vc->point, sizeof vc->point, &k, ECC_SECP256R1);
        if (ret == 0) ret = wc_ecc_verify_hash(vc->sig, (word32)vc->sig_len, vc->digest, sizeof vc->digest, &res, &k);
        wc_ecc_free(&k);
        if (ret != 0) return ct_fail(CT_ERR_CRYPTO, "wc_ecc_verify_hash: %d", ret);
        valid = res == 1;
    }
    return valid ? CT_OK : ct_fail(CT_ERR_CRYPTO, "a good signature did not verify");
}

/* The token's share of one issuance, in the CA's order and through the CA's calls: the CSR's proof of possession
 * with its fresh key (pki_csr_parse_in), the TBS's digest signed by the issuing key and, unless OP_ISSUE_NORECHECK,
 * that signature checked with the key's public object (pki_cert_issue), the audit entry's HMAC (db/audit.c). The
 * software around them (DER, SHA-256 of the TBS, SQL) is not counted. Every answer is checked. */
static ct_err issue_one(const sign_thread *t, const verify_case *vc, uint64_t counter)
{
    const token_ctx *x = t->x;
    bool valid = false;
    CT_GUARD_RET(hsm_verify_digest(x->h, HSM_EC_P256, vc->point, sizeof vc->point, vc->digest, sizeof vc->digest,
                                   vc->sig, vc->sig_len, &valid));
    CT_ENSURE_RET(valid, ct_fail(CT_ERR_CRYPTO, "a good proof of possession did not verify"));
    /* an entry of its own each time (thread, counter); its SHA-256 stands for the new TBS's digest */
    uint8_t entry[AUDIT_ENTRY_BYTES], digest[32], sig[160], mac[HSM_MAC_LEN];
    size_t sig_len = sizeof sig;
    memset(entry, 0x2e, sizeof entry);
    memcpy(entry, &t, sizeof t);
    memcpy(entry + sizeof t, &counter, sizeof counter);
    CT_GUARD_RET(ct_sha256(entry, sizeof entry, digest));
    CT_GUARD_RET(hsm_key_sign_digest(x->key, digest, sizeof digest, sig, &sig_len));
    if (t->op == OP_ISSUE) {
        valid = false;
        CT_GUARD_RET(hsm_key_verify_digest(x->key, digest, sizeof digest, sig, sig_len, &valid));
        CT_ENSURE_RET(valid, ct_fail(CT_ERR_HSM, "the token's signature did not verify with its own key"));
    }
    return hsm_mac_sign(x->mac, entry, sizeof entry, mac);
}

static void *sign_main(void *arg)
{
    sign_thread *t = arg;
    uint8_t digest[32];
    uint64_t counter = (uint64_t)(uintptr_t)t;
    pthread_barrier_wait(&g_barrier);
    double stop = g_start + t->x->seconds;
    /* bounded: at most TOKEN_LAT_CAP signatures, and no longer than the run */
    while (t->ok + t->failed < TOKEN_LAT_CAP) {
        double t0 = now_s();
        if (t0 >= stop) break;
        counter++;
        ct_err rc;
        if (t->op == OP_ISSUE || t->op == OP_ISSUE_NORECHECK) {
            rc = issue_one(t, &t->x->cases[counter % VERIFY_CASES], counter);
        } else if (t->op != OP_SIGN) {
            rc = verify_one(t, &t->x->cases[counter % VERIFY_CASES]);
        } else if (ct_sha256(&counter, sizeof counter, digest) != CT_OK) {
            t->failed++;
            continue;
        } else {
            uint8_t sig[160];
            size_t sig_len = sizeof sig;
            rc = hsm_key_sign_digest(t->x->key, digest, sizeof digest, sig, &sig_len);
        }
        double dt = now_s() - t0;
        if (rc == CT_OK) {
            t->ok++;
            if (t->n < t->cap) t->lat[t->n++] = dt;
        } else {
            t->failed++;
            if (!t->err[0]) errf(t->err, sizeof t->err, "%s: %s", ct_err_name(rc), ct_err_detail());
        }
    }
    t->end = now_s();
    wc_ecc_fp_free(); /* wolfSSL's per-thread fixed-point cache (OP_VERIFY_WOLF) */
    return NULL;
}

static bool token_run(token_op op, const token_ctx *x, size_t nt)
{
    bool good = false;
    sign_thread *threads = calloc(nt, sizeof *threads);
    pthread_t *tids = calloc(nt, sizeof *tids);
    size_t cap = (size_t)(x->seconds * 100000.0) + 1000; /* latencies kept per thread */
    if (cap > TOKEN_LAT_CAP) cap = TOKEN_LAT_CAP;
    double *all = calloc(cap * nt, sizeof *all);
    size_t started = 0;
    if (!threads || !tids || !all || pthread_barrier_init(&g_barrier, NULL, (unsigned)nt + 1) != 0) goto done;
    for (size_t i = 0; i < nt; i++) {
        threads[i].op = op;
        threads[i].x = x;
        threads[i].lat = all + i * cap;
        threads[i].cap = cap;
    }
    for (; started < nt; started++)
        if (pthread_create(&tids[started], NULL, sign_main, &threads[started]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    g_start = now_s(); /* set before the barrier releases the threads */
    pthread_barrier_wait(&g_barrier);
    for (size_t i = 0; i < nt; i++) pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&g_barrier);
    size_t ok = 0, failed = 0, nl = 0;
    double end = g_start;
    for (size_t i = 0; i < nt; i++) {
        ok += threads[i].ok;
        failed += threads[i].failed;
        if (threads[i].end > end) end = threads[i].end;
        if (threads[i].err[0]) fprintf(stderr, "token thread %zu: %s\n", i, threads[i].err);
        memmove(all + nl, threads[i].lat, threads[i].n * sizeof *all);
        nl += threads[i].n;
    }
    qsort(all, nl, sizeof *all, cmp_double);
    double secs = end - g_start;
    static const char *const names[] = {"token", "token-verify", "wolfssl-verify", "token-issuance",
                                        "token-issuance-norecheck"};
    const char *what = op == OP_SIGN ? "signs" : op == OP_ISSUE || op == OP_ISSUE_NORECHECK ? "issuances" : "verifies";
    printf("%s threads=%zu sessions=%ld %s=%zu failed=%zu seconds=%.3f %s_per_s=%.1f p50_ms=%.3f p99_ms=%.3f\n",
           names[op], nt, op == OP_VERIFY_WOLF ? 0 : x->sessions, what, ok, failed, secs, what, secs > 0 ? (double)ok / secs : 0.0,
           percentile(all, nl, 0.50) * 1e3, percentile(all, nl, 0.99) * 1e3);
    fflush(stdout);
    good = failed == 0 && ok > 0;
done:
    free(threads);
    free(tids);
    free(all);
    return good;
}

/* VERIFY_CASES fresh software P-256 keys, each with a signature over a digest of its own (not timed). */
static ct_err verify_cases_make(verify_case *cases)
{
    ct_err rc = CT_OK;
    WC_RNG rng;
    ecc_key k;
    bool rng_ok = false, k_ok = false;
    CT_ENSURE_MSG(wc_InitRng(&rng) == 0, CT_ERR_CRYPTO, "wc_InitRng");
    rng_ok = true;
    for (size_t i = 0; i < VERIFY_CASES; i++) {
        verify_case *vc = &cases[i];
        CT_ENSURE_MSG(wc_ecc_init(&k) == 0, CT_ERR_CRYPTO, "wc_ecc_init");
        k_ok = true;
        CT_ENSURE_MSG(wc_ecc_make_key_ex(&rng, 32, &k, ECC_SECP256R1) == 0, CT_ERR_CRYPTO, "wc_ecc_make_key_ex");
        word32 plen = sizeof vc->point, slen = sizeof vc->sig;
        CT_ENSURE_MSG(wc_ecc_export_x963(&k, vc->point, &plen) == 0 && plen == sizeof vc->point, CT_ERR_CRYPTO,
                      "wc_ecc_export_x963");
        CT_ENSURE_MSG(wc_RNG_GenerateBlock(&rng, vc->digest, sizeof vc->digest) == 0, CT_ERR_CRYPTO,
                      "wc_RNG_GenerateBlock");
        CT_ENSURE_MSG(wc_ecc_sign_hash(vc->digest, sizeof vc->digest, vc->sig, &slen, &rng, &k) == 0, CT_ERR_CRYPTO,
                      "wc_ecc_sign_hash");
        vc->sig_len = slen;
        wc_ecc_free(&k);
        k_ok = false;
    }
cleanup:
    if (k_ok) wc_ecc_free(&k);
    if (rng_ok) wc_FreeRng(&rng);
    return rc;
}

/* Before timing: both token verifies the issuance run counts refuse a signature over another digest (a run of
 * verifies that could not fail would measure nothing). */
static ct_err verifies_refuse(const token_ctx *x)
{
    const verify_case *vc = &x->cases[0];
    uint8_t other[32], sig[160];
    size_t sig_len = sizeof sig;
    bool pop_valid = true, own_valid = true;
    memcpy(other, vc->digest, sizeof other);
    other[0] ^= 1;
    CT_GUARD_RET(hsm_verify_digest(x->h, HSM_EC_P256, vc->point, sizeof vc->point, other, sizeof other, vc->sig,
                                   vc->sig_len, &pop_valid));
    CT_GUARD_RET(hsm_key_sign_digest(x->key, vc->digest, sizeof vc->digest, sig, &sig_len));
    CT_GUARD_RET(hsm_key_verify_digest(x->key, other, sizeof other, sig, sig_len, &own_valid));
    CT_ENSURE_RET(!pop_valid && !own_valid, ct_fail(CT_ERR_CRYPTO, "the token accepted a signature over another digest"));
    return CT_OK;
}

static int run_token(const bench_opts *o)
{
    ca_settings s;
    hsm *h = NULL;
    hsm_key *key = NULL;
    hsm_mac_key *mac = NULL;
    int exit_code = 1;
    if (ca_settings_load(o->ca_dir, &s) != CT_OK) {
        fprintf(stderr, "CA settings: %s\n", ct_err_detail());
        goto done;
    }
    if (hsm_open_settings(&s.hsm, &h) != CT_OK) {
        fprintf(stderr, "CA token: %s\n", ct_err_detail());
        goto done;
    }
    if (hsm_key_find(h, s.key_uri[CA_KEY_DEVICE_ISSUING], &key) != CT_OK) {
        fprintf(stderr, "device issuing key %s: %s\n", s.key_uri[CA_KEY_DEVICE_ISSUING], ct_err_detail());
        goto done;
    }
    /* the audit key as the CA opens it (ca_init.c audit_key): made by the CA's first database open */
    if (hsm_mac_key_find(h, s.audit_mac_uri, &mac) != CT_OK) {
        fprintf(stderr, "audit key %s: %s\n", s.audit_mac_uri, ct_err_detail());
        goto done;
    }
    static verify_case cases[VERIFY_CASES];
    if (verify_cases_make(cases) != CT_OK) {
        fprintf(stderr, "verify cases: %s\n", ct_err_detail());
        goto done;
    }
    const token_ctx x = {h, cases, key, mac, s.hsm.sessions, o->seconds};
    if (verifies_refuse(&x) != CT_OK) {
        fprintf(stderr, "token check: %s\n", ct_err_detail());
        exit_code = 2;
        goto done;
    }
    static const token_op ops[] = {OP_SIGN, OP_VERIFY_TOKEN, OP_VERIFY_WOLF, OP_ISSUE, OP_ISSUE_NORECHECK};
    size_t nt = (size_t)o->conns;
    bool good = true;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        good = token_run(ops[i], &x, 1) && good;
        /* wolfSSL's verify is the one software comparison: one thread */
        if (nt > 1 && ops[i] != OP_VERIFY_WOLF) good = token_run(ops[i], &x, nt) && good;
    }
    exit_code = good ? 0 : 2;
done:
    hsm_mac_key_free(mac);
    hsm_key_free(key);
    hsm_close(h);
    return exit_code;
}

/* ---- command line ---- */

static const char usage[] =
    "usage: camtrust-bench-enroll --mode est|cfssl|cfssl-tls|token [options]\n"
    "  --conns N          connections (est, cfssl) or threads (token); default 8\n"
    "  --count M          requests (est, cfssl); default 4000\n"
    "  --serials FILE     M subject serialNumbers, one a line (est, cfssl)\n"
    "  --host IP --port P server (IPv4 loopback); est: --server-name localhost\n"
    "  --port2 P          est: a second node of the same CA; odd connections go to it\n"
    "  --cert F --key F --cafile F   est, cfssl-tls: the client's certificate and key, the server's CA file\n"
    "  --ca-dir DIR       token: the CA folder (its config names the token, PIN file and keys)\n"
    "  --seconds S        token: length of each run (default 2)\n"
    "  --max-seconds S    est, cfssl: stop the timed part after S seconds (default 300)\n"
    "  --answered FILE    est, cfssl: append each serial answered 200 to FILE, one a line, as it is answered\n";

static bool parse_opts(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.mode = MODE_EST, .host = "127.0.0.1", .port = 0, .conns = 8, .count = 4000,
                      .server_name = "localhost", .seconds = 2.0, .max_seconds = 300.0};
    const char *mode = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return false;
        const char *v = argv[++i];
        bool ok = true;
        if (strcmp(a, "--mode") == 0) mode = v;
        else if (strcmp(a, "--host") == 0) o->host = v;
        else if (strcmp(a, "--port") == 0) ok = ct_parse_long(v, 1, 65535, &o->port);
        else if (strcmp(a, "--port2") == 0) ok = ct_parse_long(v, 1, 65535, &o->port2);
        else if (strcmp(a, "--conns") == 0) ok = ct_parse_long(v, 1, MAX_CONNS, &o->conns);
        else if (strcmp(a, "--count") == 0) ok = ct_parse_long(v, 1, MAX_REQUESTS, &o->count);
        else if (strcmp(a, "--serials") == 0) o->serials_path = v;
        else if (strcmp(a, "--cert") == 0) o->cert_path = v;
        else if (strcmp(a, "--key") == 0) o->key_path = v;
        else if (strcmp(a, "--cafile") == 0) o->cafile = v;
        else if (strcmp(a, "--server-name") == 0) o->server_name = v;
        else if (strcmp(a, "--ca-dir") == 0) o->ca_dir = v;
        else if (strcmp(a, "--answered") == 0) o->answered_path = v;
        else if (strcmp(a, "--seconds") == 0) ok = parse_double(v, 0.1, 60.0, &o->seconds);
        else if (strcmp(a, "--max-seconds") == 0) ok = parse_double(v, 1.0, 3600.0, &o->max_seconds);
        else ok = false;
        if (!ok) {
            fprintf(stderr, "bad option or value: %s %s\n", a, v);
            return false;
        }
    }
    if (!mode) return false;
    if (strcmp(mode, "est") == 0) o->mode = MODE_EST;
    else if (strcmp(mode, "cfssl") == 0) o->mode = MODE_CFSSL;
    else if (strcmp(mode, "cfssl-tls") == 0) o->mode = MODE_CFSSL_TLS;
    else if (strcmp(mode, "token") == 0) o->mode = MODE_TOKEN;
    else return false;
    if (o->mode == MODE_TOKEN) return o->ca_dir != NULL;
    if (o->port == 0 || !o->serials_path || o->conns > o->count) return false;
    if (MODE_TLS(o->mode) && (!o->cert_path || !o->key_path || !o->cafile)) return false;
    return true;
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (!parse_opts(argc, argv, &o)) {
        fputs(usage, stderr);
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    ct_log_set_level(CT_LOG_WARN);
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
        fprintf(stderr, "wolfSSL_Init failed\n");
        return 1;
    }
    int rc = o.mode == MODE_TOKEN ? run_token(&o) : run_load(&o);
    wolfSSL_Cleanup();
    return rc;
}
