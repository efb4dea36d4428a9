/* camtrust-bench-ocsp: the OCSP benchmark's tool (tests/bench/ocsp/run drives it).
 *
 *   --mode seed   records --count certificates in the CA's database (as issuance does: one audited row each;
 *                 a benchmark CA, so the rows hold placeholder DER), revokes every --revoke-every'th, and writes
 *                 their serials (hex, one per line) to --serials
 *   --mode load   --conns keep-alive plain-HTTP connections POSTing OCSP requests (SHA-1 CertID, as openssl
 *                 sends them; with --nonce each carries a fresh nonce) for the serials in turn: one untimed
 *                 warm-up pass over every serial (the pre-signing), then --requests timed requests
 *   --mode token  the raw token sign rate (hsm_key_sign_digest, P-256) on the OCSP signer key, 1 and --conns
 *                 threads, --seconds each
 *
 * The load runs in --client-threads threads, each an epoll loop over its share of the connections with one
 * request outstanding per connection. One key=value result line per figure on stdout. A benchmark: it prints
 * figures and never judges them; every loop is bounded in count and in time. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ca_priv.h"

#define MAX_CONNS 1024
#define MAX_SERIALS 1000000
#define MAX_REQUESTS 50000000L
#define RESPONSE_MAX 16384
#define DEADLINE_S 300.0

typedef struct {
    const char *mode, *ca_dir, *serials, *issuer, *host;
    long port, conns, client_threads, count, revoke_every, requests;
    double seconds;
    bool nonce;
} opts;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Prints rate and latency percentiles (nearest rank) of `n` latencies in seconds over `wall` seconds. */
static void report(const char *what, const char *params, double *lat, size_t n, size_t failed, double wall)
{
    qsort(lat, n, sizeof *lat, cmp_double);
    double p50 = n ? lat[(n - 1) / 2] : 0, p99 = n ? lat[(size_t)((double)(n - 1) * 0.99)] : 0;
    printf("%s %s ok=%zu failed=%zu seconds=%.3f per_s=%.0f p50_ms=%.3f p99_ms=%.3f\n", what, params, n, failed, wall,
           wall > 0 ? (double)n / wall : 0.0, p50 * 1e3, p99 * 1e3);
    fflush(stdout);
}

/* Starts `fn` on each of `nt` items (`size` bytes apart) and joins them: the wall time, or -1 if a thread did
 * not start. */
static double run_threads(void *(*fn)(void *), void *items, size_t size, size_t nt)
{
    pthread_t *tids = calloc(nt, sizeof *tids);
    size_t started = 0;
    double t0 = now_s();
    while (tids && started < nt && pthread_create(&tids[started], NULL, fn, (char *)items + started * size) == 0)
        started++;
    for (size_t t = 0; t < started; t++) pthread_join(tids[t], NULL);
    free(tids);
    return started == nt ? now_s() - t0 : -1;
}

/* ---- seed ---- */

static int run_seed(const opts *o)
{
    ca *c = NULL;
    FILE *out = NULL;
    int exit_code = 1;
    long revoked = 0;
    if (ca_open(o->ca_dir, &c) != CT_OK || !(out = fopen(o->serials, "w"))) {
        fprintf(stderr, "seed: %s\n", *ct_err_detail() ? ct_err_detail() : "cannot open the CA or --serials");
        goto done;
    }
    for (long i = 0; i < o->count; i++) {
        db_cert_record r = {.not_before = 1700000000, .not_after = PKI_NOT_AFTER_FOREVER,
                            .der = (const uint8_t *)"placeholder", .der_len = 11};
        uint8_t serial[PKI_SERIAL_BYTES];
        if (ct_random(serial, sizeof serial) != CT_OK) goto done;
        serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x01);
        /* a key of its own per row (one key, one holder; keyCompromise revokes every certificate of a key) */
        if (ct_sha256(serial, sizeof serial, r.spki_sha256) != CT_OK) goto done;
        if (ct_hex_encode(serial, sizeof serial, r.cert_serial_hex, sizeof r.cert_serial_hex) != CT_OK ||
            ct_snprintf(r.device_serial, sizeof r.device_serial, "OCSPB-%07ld", i) != CT_OK ||
            ct_strlcpy(r.profile, sizeof r.profile, CA_PROFILE_DEVICE) != CT_OK ||
            ct_snprintf(r.subject, sizeof r.subject, "BX1 OCSPB-%07ld", i) != CT_OK ||
            db_cert_record_issuance(ca_db(c), &r, NULL, "bench") != CT_OK) {
            fprintf(stderr, "seed %ld: %s\n", i, ct_err_detail());
            goto done;
        }
        if (o->revoke_every > 0 && i % o->revoke_every == 0) {
            ca_revoke_request rq = {.scope = DB_REVOKE_CERT, .target = r.cert_serial_hex, .reason = "keyCompromise",
                                    .actor = "bench"};
            if (ca_revoke(c, &rq, NULL) != CT_OK) {
                fprintf(stderr, "revoke %s: %s\n", r.cert_serial_hex, ct_err_detail());
                goto done;
            }
            revoked++;
        }
        fprintf(out, "%s\n", r.cert_serial_hex);
    }
    printf("seed certificates=%ld revoked=%ld\n", o->count, revoked);
    exit_code = 0;
done:
    if (out && fclose(out) != 0) exit_code = 1;
    ca_close(c);
    return exit_code;
}

/* ---- load ---- */

typedef struct {
    ct_buf *reqs;      /* whole HTTP requests, one per serial (or per request, with nonces) */
    size_t n_reqs;
    size_t next;       /* guarded by g_mu */
    size_t limit;
} work_queue;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static bool take(work_queue *q, size_t *i)
{
    pthread_mutex_lock(&g_mu);
    bool ok = q->next < q->limit;
    if (ok) *i = q->next++ % q->n_reqs;
    pthread_mutex_unlock(&g_mu);
    return ok;
}

typedef struct {
    int fd;
    size_t req, sent, have;
    double t0;
    bool busy;
    uint8_t buf[RESPONSE_MAX];
} connection;

typedef struct {
    const opts *o;
    work_queue *q;
    connection *conns;
    size_t n_conns;
    double *lat;
    size_t n_lat, cap_lat, failed;
    char err[160];
} client;

static int dial(const opts *o)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || inet_pton(AF_INET, o->host, &sa.sin_addr) != 1) goto fail;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) goto fail;
    return fd;
fail:
    if (fd >= 0) close(fd);
    return -1;
}

/* A whole response in c->buf? -1 malformed, 0 not yet, else its length; *ok: HTTP 200 and OCSP successful. */
static long response_complete(const connection *c, bool *ok)
{
    const uint8_t *end = NULL;
    for (size_t i = 0; i + 3 < c->have && !end; i++)
        if (memcmp(c->buf + i, "\r\n\r\n", 4) == 0) end = c->buf + i + 4;
    if (!end) return c->have >= RESPONSE_MAX ? -1 : 0;
    size_t hdr = (size_t)(end - c->buf);
    const char *cl = NULL;
    for (size_t i = 0; i + 16 < hdr && !cl; i++)
        if (strncasecmp((const char *)c->buf + i, "\r\nContent-Length:", 17) == 0) cl = (const char *)c->buf + i + 17;
    if (!cl || memcmp(c->buf, "HTTP/1.1 ", 9) != 0) return -1;
    long body = strtol(cl, NULL, 10);
    if (body < 5 || (size_t)body > RESPONSE_MAX - hdr) return -1;
    if (c->have < hdr + (size_t)body) return 0;
    /* OCSPResponse SEQUENCE { ENUMERATED successful (0) ... }: the ENUMERATED follows a 2- to 4-byte header. */
    const uint8_t *b = end;
    size_t skip = (b[1] & 0x80) ? 2 + (b[1] & 0x7f) : 2;
    *ok = memcmp(c->buf + 9, "200", 3) == 0 && (size_t)body > skip + 3 && b[skip] == 0x0a && b[skip + 2] == 0;
    return (long)(hdr + (size_t)body);
}

static bool conn_send(client *cl, connection *c, size_t req)
{
    c->req = req, c->sent = 0, c->have = 0, c->busy = true;
    c->t0 = now_s();
    const ct_buf *r = &cl->q->reqs[req];
    ssize_t w = send(c->fd, r->data, r->len, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) return false;
    c->sent = w > 0 ? (size_t)w : 0;
    return true;
}

static void note_failure(client *cl, const char *what)
{
    cl->failed++;
    if (!cl->err[0]) snprintf(cl->err, sizeof cl->err, "%s", what); /* only printed: may truncate */
}

static void *client_main(void *arg)
{
    client *cl = arg;
    struct epoll_event ev[64];
    int ep = epoll_create1(0);
    size_t active = 0, req;
    double deadline = now_s() + DEADLINE_S;
    for (size_t i = 0; ep >= 0 && i < cl->n_conns; i++) {
        connection *c = &cl->conns[i];
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        if (c->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) != 0 || !take(cl->q, &req)) continue;
        if (conn_send(cl, c, req)) active++;
        else note_failure(cl, "send failed");
    }
    while (active > 0 && now_s() < deadline) {
        int n = epoll_wait(ep, ev, 64, 1000);
        for (int k = 0; k < n; k++) {
            connection *c = ev[k].data.ptr;
            const ct_buf *r = &cl->q->reqs[c->req];
            if (!c->busy) continue;
            if (c->sent < r->len) {
                ssize_t w = send(c->fd, r->data + c->sent, r->len - c->sent, MSG_NOSIGNAL);
                if (w > 0) c->sent += (size_t)w;
            }
            ssize_t got = recv(c->fd, c->buf + c->have, RESPONSE_MAX - c->have, 0);
            if (got == 0 || (got < 0 && errno != EAGAIN)) {
                note_failure(cl, "connection closed");
                c->busy = false;
                active--;
                continue;
            }
            if (got > 0) c->have += (size_t)got;
            bool ok = false;
            long len = response_complete(c, &ok);
            if (len == 0) continue;
            if (len < 0 || !ok || (size_t)len != c->have) note_failure(cl, "bad response (not HTTP 200 + OCSP successful)");
            else if (cl->n_lat < cl->cap_lat) cl->lat[cl->n_lat++] = now_s() - c->t0;
            c->busy = false;
            if (take(cl->q, &req) && conn_send(cl, c, req)) continue;
            active--;
        }
    }
    if (active) note_failure(cl, "stopped at the deadline");
    if (ep >= 0) close(ep);
    return NULL;
}

/* Runs `limit` requests from the queue over every connection; reports them under `what`. */
static bool run_pass(const opts *o, work_queue *q, connection *conns, size_t limit, const char *what, const char *params)
{
    size_t nt = (size_t)o->client_threads;
    client *cls = calloc(nt, sizeof *cls);
    double *all = calloc(limit, sizeof *all);
    bool ok = cls && all;
    size_t n = 0, failed = 0;
    q->next = 0;
    q->limit = limit;
    for (size_t t = 0; ok && t < nt; t++) {
        size_t first = (size_t)o->conns * t / nt, last = (size_t)o->conns * (t + 1) / nt;
        cls[t] = (client){.o = o, .q = q, .conns = conns + first, .n_conns = last - first, .cap_lat = limit};
        ok = (cls[t].lat = malloc(limit * sizeof(double))) != NULL;
    }
    double wall = ok ? run_threads(client_main, cls, sizeof *cls, nt) : -1;
    ok = wall >= 0;
    for (size_t t = 0; cls && t < nt; t++) {
        if (cls[t].lat) memcpy(all + n, cls[t].lat, cls[t].n_lat * sizeof *all);
        n += cls[t].n_lat;
        failed += cls[t].failed;
        if (cls[t].err[0]) fprintf(stderr, "%s: client %zu: %s\n", what, t, cls[t].err);
        free(cls[t].lat);
    }
    if (ok) report(what, params, all, n, failed, wall);
    free(all);
    free(cls);
    return ok && failed == 0 && n == limit;
}

/* One HTTP request per serial; with --nonce each carries a random nonce of its own (the server signs every
 * request with a nonce, so reusing one across passes costs it nothing less). */
static ct_err build_requests(const opts *o, work_queue *q)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT, cert = CT_BUF_INIT, der = CT_BUF_INIT;
    pki_cert_ids ids;
    const char *text = NULL;
    CT_GUARD(ca_read_cert_file(o->issuer, &cert));
    CT_GUARD(pki_cert_ids_get(cert.data, cert.len, &ids));
    CT_GUARD(ct_file_read(o->serials, 64u * 1024 * 1024, &file));
    CT_GUARD(ct_buf_cstr(&file, &text));
    size_t lines = 0;
    for (size_t i = 0; i < file.len; i++) lines += file.data[i] == '\n';
    CT_ENSURE_MSG(lines > 0 && lines <= MAX_SERIALS, CT_ERR_USAGE, "%s: 1 to %d serials", o->serials, MAX_SERIALS);
    q->reqs = calloc(lines, sizeof *q->reqs);
    CT_ENSURE(q->reqs, CT_ERR_NOMEM);
    char *save = NULL;
    for (char *line = strtok_r((char *)file.data, "\n", &save); line && q->n_reqs < lines;
         line = strtok_r(NULL, "\n", &save)) {
        uint8_t serial[PKI_MAX_SERIAL_BYTES], nonce[16];
        size_t len = 0;
        CT_GUARD(ct_hex_decode(line, serial, sizeof serial, &len));
        if (o->nonce) CT_GUARD(ct_random(nonce, sizeof nonce));
        CT_GUARD(pki_ocsp_request_make(&ids, serial, len, o->nonce ? nonce : NULL, sizeof nonce, &der));
        ct_buf *r = &q->reqs[q->n_reqs++];
        CT_GUARD(ct_buf_alloc(r, der.len + 256));
        CT_GUARD(ct_buf_appendf(r,
                                "POST /ocsp HTTP/1.1\r\nHost: %s:%ld\r\nContent-Type: application/ocsp-request\r\n"
                                "Content-Length: %zu\r\n\r\n",
                                o->host, o->port, der.len));
        CT_GUARD(ct_buf_append(r, der.data, der.len));
        ct_buf_free(&der);
    }
cleanup:
    ct_buf_free(&file);
    ct_buf_free(&cert);
    ct_buf_free(&der);
    return rc;
}

static int run_load(const opts *o)
{
    work_queue q = {0};
    connection *conns = calloc((size_t)o->conns, sizeof *conns);
    int exit_code = 1;
    char params[128];
    size_t serials_hint = 0;
    if (!conns) goto done;
    if (build_requests(o, &q) != CT_OK) {
        fprintf(stderr, "requests: %s\n", ct_err_detail());
        goto done;
    }
    serials_hint = q.n_reqs;
    for (long i = 0; i < o->conns; i++) conns[i].fd = dial(o);
    for (long i = 0; i < o->conns; i++)
        if (conns[i].fd < 0) {
            fprintf(stderr, "connect %s:%ld failed\n", o->host, o->port);
            goto done;
        }
    snprintf(params, sizeof params, "conns=%ld client_threads=%ld serials=%zu", o->conns, o->client_threads,
                      serials_hint);
    bool ok = run_pass(o, &q, conns, q.n_reqs, o->nonce ? "ocsp_nonce_warmup" : "ocsp_first_pass", params);
    ok = ok && run_pass(o, &q, conns, (size_t)o->requests, o->nonce ? "ocsp_nonce" : "ocsp_presigned", params);
    exit_code = ok ? 0 : 2;
done:
    for (long i = 0; conns && i < o->conns; i++)
        if (conns[i].fd >= 0) close(conns[i].fd);
    for (size_t i = 0; i < q.n_reqs; i++) ct_buf_free(&q.reqs[i]);
    free(q.reqs);
    free(conns);
    return exit_code;
}

/* ---- token ---- */

typedef struct {
    hsm_key *key;
    double end;
    double *lat;
    size_t n, cap, failed;
} signer;

static void *sign_main(void *arg)
{
    signer *s = arg;
    uint8_t digest[32], sig[160];
    memset(digest, 0x5a, sizeof digest);
    while (s->n < s->cap && now_s() < s->end) {
        size_t len = sizeof sig;
        double t0 = now_s();
        if (hsm_key_sign_digest(s->key, digest, sizeof digest, sig, &len) != CT_OK) s->failed++;
        else s->lat[s->n++] = now_s() - t0;
    }
    return NULL;
}

static bool token_run(hsm_key *key, size_t nt, double seconds)
{
    enum { CAP = 2000000 };
    signer *s = calloc(nt, sizeof *s);
    double *all = calloc((size_t)CAP * nt, sizeof *all);
    size_t n = 0, failed = 0;
    double end = now_s() + seconds;
    for (size_t t = 0; s && all && t < nt; t++)
        s[t] = (signer){.key = key, .end = end, .lat = all + (size_t)CAP * t, .cap = CAP};
    double wall = s && all ? run_threads(sign_main, s, sizeof *s, nt) : -1;
    bool ok = wall >= 0;
    for (size_t t = 0; ok && t < nt; t++) {
        memmove(all + n, s[t].lat, s[t].n * sizeof *all);
        n += s[t].n;
        failed += s[t].failed;
    }
    char params[32];
    snprintf(params, sizeof params, "threads=%zu", nt);
    if (ok) report("token_sign", params, all, n, failed, wall);
    free(all);
    free(s);
    return ok && failed == 0;
}

static int run_token(const opts *o)
{
    ca *c = NULL;
    if (ca_open(o->ca_dir, &c) != CT_OK) {
        fprintf(stderr, "CA: %s\n", ct_err_detail());
        return 1;
    }
    hsm_key *k = c->signers[CA_KEY_OCSP].key ? c->signers[CA_KEY_OCSP].key : c->signers[CA_KEY_DEVICE_ISSUING].key;
    bool ok = token_run(k, 1, o->seconds) && (o->conns == 1 || token_run(k, (size_t)o->conns, o->seconds));
    ca_close(c);
    return ok ? 0 : 2;
}

/* ---- arguments ---- */

static bool number(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    opts o = {.host = "127.0.0.1", .conns = 8, .client_threads = 1, .count = 2000, .revoke_every = 10,
              .requests = 200000, .seconds = 2};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long secs = 0;
        bool ok = v != NULL;
        if (strcmp(f, "--nonce") == 0) { o.nonce = true; continue; }
        if (!ok) {}
        else if (strcmp(f, "--mode") == 0) o.mode = v;
        else if (strcmp(f, "--ca-dir") == 0) o.ca_dir = v;
        else if (strcmp(f, "--serials") == 0) o.serials = v;
        else if (strcmp(f, "--issuer") == 0) o.issuer = v;
        else if (strcmp(f, "--host") == 0) o.host = v;
        else if (strcmp(f, "--port") == 0) ok = number(v, 1, 65535, &o.port);
        else if (strcmp(f, "--conns") == 0) ok = number(v, 1, MAX_CONNS, &o.conns);
        else if (strcmp(f, "--client-threads") == 0) ok = number(v, 1, 64, &o.client_threads);
        else if (strcmp(f, "--count") == 0) ok = number(v, 1, MAX_SERIALS, &o.count);
        else if (strcmp(f, "--revoke-every") == 0) ok = number(v, 0, MAX_SERIALS, &o.revoke_every);
        else if (strcmp(f, "--requests") == 0) ok = number(v, 1, MAX_REQUESTS, &o.requests);
        else if (strcmp(f, "--seconds") == 0) ok = number(v, 1, 600, &secs), o.seconds = (double)secs;
        else ok = false;
        if (!ok) {
            fprintf(stderr, "camtrust-bench-ocsp: bad option %s (see the comment at the top of ocsp_bench.c)\n", f);
            return 64;
        }
        i++;
    }
    if (o.client_threads > o.conns) o.client_threads = o.conns;
    if (o.mode && strcmp(o.mode, "seed") == 0 && o.ca_dir && o.serials) return run_seed(&o);
    if (o.mode && strcmp(o.mode, "load") == 0 && o.port && o.serials && o.issuer) return run_load(&o);
    if (o.mode && strcmp(o.mode, "token") == 0 && o.ca_dir) return run_token(&o);
    fprintf(stderr, "usage: camtrust-bench-ocsp --mode seed|load|token (see the comment at the top of ocsp_bench.c)\n");
    return 64;
}
