/* camtrust-view live (issue 14): watches a camera's live stream over HTTPS. TLS 1.3 only to a camera whose
 * certificate chains to the device root and names the host asked for (SERIAL.DOMAIN: a look-alike is refused
 * before any video is read; with --crl, a revoked one too); the playlist is polled, each new segment fetched, its
 * signatures checked with the streaming verifier (camtrust-verify's report, GOP by GOP; signed by the camera
 * serving it), and a segment is decrypted inside the viewer's token and written out only once every GOP of it
 * verified. Everything read from the network is bounded. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "../common/mediasign/mediasign.h"
#include "view_priv.h"

#define HEAD_MAX 8192
#define PLAYLIST_BYTES_MAX (1u << 20)
#define INIT_MAX (1u << 20)
#define SEGMENT_BYTES_MAX (256u << 20)
#define REQUEST_TIMEOUT_MS 10000
#define CAMERA_GONE_MS 15000 /* the camera answering nothing for this long ends the session */
#define PENDING_MAX 64       /* segments held while their signatures are still to come */
/* ... and the bytes of those queued, in all (the segment being fetched adds up to 256 MiB): 64 segments of up to
 * 256 MiB would be 16 GiB, which a camera could make a viewer hold by serving pictures no signature ever closes (a
 * GOP that never ends). Legitimate ones are released as their GOPs are reported, a few at a time: 64 2-second
 * segments of 4K at 25 Mbit/s are some 400 MiB. */
#define PENDING_BYTES_MAX ((size_t)512 << 20)

/* ---- the URL and the HTTP answer (outside input) ---- */
ct_err view_url_parse(const char *url, view_url *u)
{
    memset(u, 0, sizeof *u);
    CT_ENSURE_RET(strncmp(url, "https://", 8) == 0, ct_fail(CT_ERR_USAGE, "the URL must start with https://"));
    const char *h = url + 8, *colon = strchr(h, ':'), *slash = strchr(h, '/');
    CT_ENSURE_RET(colon && slash && colon < slash, ct_fail(CT_ERR_USAGE, "the URL must be https://HOST:PORT/PATH/"));
    size_t hl = (size_t)(colon - h);
    CT_ENSURE_RET(hl > 0 && hl < sizeof u->host && strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") >= hl,
                  ct_fail(CT_ERR_USAGE, "bad host in the URL"));
    memcpy(u->host, h, hl);
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    CT_ENSURE_RET(end == slash && port > 0 && port < 65536 && colon[1] >= '0' && colon[1] <= '9',
                  ct_fail(CT_ERR_USAGE, "bad port in the URL"));
    u->port = (unsigned)port;
    size_t pl = strlen(slash);
    CT_ENSURE_RET(pl < sizeof u->path && slash[pl - 1] == '/' &&
                      strspn(slash, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-.") == pl &&
                      !strstr(slash, ".."),
                  ct_fail(CT_ERR_USAGE, "the URL's path must be a folder (end with '/'), plain characters only"));
    memcpy(u->path, slash, pl + 1);
    size_t sl = strcspn(u->host, ".");
    CT_ENSURE_RET(sl < sizeof u->serial, ct_fail(CT_ERR_USAGE, "bad host in the URL"));
    memcpy(u->serial, u->host, sl);
    u->serial[sl] = '\0';
    return CT_OK;
}

ct_err view_http_parse(const uint8_t *resp, size_t len, size_t max_body, int *status, size_t *body_off)
{
    const uint8_t *end = NULL;
    for (size_t i = 0; i + 3 < len && i < HEAD_MAX; i++)
        if (memcmp(resp + i, "\r\n\r\n", 4) == 0) {
            end = resp + i;
            break;
        }
    CT_ENSURE_RET(end, ct_fail(CT_ERR_BAD_REQUEST, "the answer has no complete header (at most %d bytes)", HEAD_MAX));
    size_t head = (size_t)(end - resp);
    char h[HEAD_MAX + 1];
    memcpy(h, resp, head);
    h[head] = '\0';
    CT_ENSURE_RET(memchr(h, '\0', head) == NULL, ct_fail(CT_ERR_BAD_REQUEST, "a NUL byte in the answer's header"));
    CT_ENSURE_RET(strncmp(h, "HTTP/1.1 ", 9) == 0 || strncmp(h, "HTTP/1.0 ", 9) == 0,
                  ct_fail(CT_ERR_BAD_REQUEST, "not an HTTP/1.x answer"));
    CT_ENSURE_RET(h[9] >= '1' && h[9] <= '5' && h[10] >= '0' && h[10] <= '9' && h[11] >= '0' && h[11] <= '9' &&
                      (h[12] == ' ' || h[12] == '\r'),
                  ct_fail(CT_ERR_BAD_REQUEST, "bad status line"));
    *status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    /* Content-Length, exactly once; the body must be all of it and nothing more (Connection: close). */
    long long clen = -1;
    for (char *line = strstr(h, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) != 0) continue;
        CT_ENSURE_RET(clen < 0, ct_fail(CT_ERR_BAD_REQUEST, "two Content-Length headers"));
        const char *v = line + 17;
        while (*v == ' ' || *v == '\t') v++;
        char *e = NULL;
        CT_ENSURE_RET(*v >= '0' && *v <= '9', ct_fail(CT_ERR_BAD_REQUEST, "bad Content-Length"));
        errno = 0;
        clen = strtoll(v, &e, 10);
        CT_ENSURE_RET(errno == 0 && (*e == '\r' || *e == ' ' || *e == '\0'), ct_fail(CT_ERR_BAD_REQUEST, "bad Content-Length"));
    }
    *body_off = head + 4;
    size_t body = len - *body_off;
    if (*status != 200) return CT_OK;
    CT_ENSURE_RET(clen >= 0, ct_fail(CT_ERR_BAD_REQUEST, "no Content-Length"));
    CT_ENSURE_RET((unsigned long long)clen <= max_body,
                  ct_fail(CT_ERR_TOO_LARGE, "an answer of %lld bytes (at most %zu)", clen, max_body));
    CT_ENSURE_RET(body == (size_t)clen,
                  ct_fail(CT_ERR_BAD_REQUEST, "the body is %zu bytes, Content-Length says %lld (cut off?)", body, clen));
    return CT_OK;
}

/* Whether the n bytes at s (not NUL-terminated: the network's bytes) are all of `set`. */
static bool all_of(const char *s, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(set, s[i])) return false;
    return true;
}

/* A file name a playlist may name: relative, no folder, plain characters. */
static bool safe_name(const char *s, size_t n)
{
    return n > 0 && n < VIEW_NAME_MAX && s[0] != '.' &&
           all_of(s, n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.");
}

ct_err view_playlist_parse(const char *text, size_t len, view_playlist *p)
{
    memset(p, 0, sizeof *p);
    CT_ENSURE_RET(len <= PLAYLIST_BYTES_MAX, ct_fail(CT_ERR_TOO_LARGE, "playlist of %zu bytes", len));
    CT_ENSURE_RET(len >= 7 && memcmp(text, "#EXTM3U", 7) == 0, ct_fail(CT_ERR_BAD_REQUEST, "not an HLS playlist"));
    bool have_seq = false;
    uint8_t key[32] = {0};
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n && line[n - 1] == '\r') n--;
        if (n == 0) continue;
        CT_ENSURE_RET(!memchr(line, '\0', n), ct_fail(CT_ERR_BAD_REQUEST, "a NUL byte in the playlist"));
        if (line[0] != '#') {
            CT_ENSURE_RET(safe_name(line, n), ct_fail(CT_ERR_BAD_REQUEST, "playlist: segment URI '%s' is not a plain "
                                                      "file name", ct_text_safe((char[65]){0}, 65, line, n)));
            CT_ENSURE_RET(p->n < VIEW_PLAYLIST_MAX, ct_fail(CT_ERR_TOO_LARGE, "more than %d segments in the playlist",
                                                            VIEW_PLAYLIST_MAX));
            memcpy(p->names[p->n], line, n);
            p->names[p->n][n] = '\0';
            memcpy(p->keys[p->n++], key, sizeof key);
            continue;
        }
        static const char seq[] = "#EXT-X-MEDIA-SEQUENCE:", map[] = "#EXT-X-MAP:URI=\"";
        if (n > sizeof seq - 1 && memcmp(line, seq, sizeof seq - 1) == 0) {
            size_t dl = n - (sizeof seq - 1);
            const char *d = line + sizeof seq - 1;
            CT_ENSURE_RET(!have_seq && dl <= 18 && all_of(d, dl, "0123456789"),
                          ct_fail(CT_ERR_BAD_REQUEST, "playlist: bad EXT-X-MEDIA-SEQUENCE"));
            for (size_t i = 0; i < dl; i++) p->first_seq = p->first_seq * 10 + (uint64_t)(d[i] - '0');
            have_seq = true;
        } else if (n > sizeof map - 1 && memcmp(line, map, sizeof map - 1) == 0) {
            const char *u = line + sizeof map - 1, *q = memchr(u, '"', n - (sizeof map - 1));
            CT_ENSURE_RET(q && safe_name(u, (size_t)(q - u)) && !p->map[0],
                          ct_fail(CT_ERR_BAD_REQUEST, "playlist: bad EXT-X-MAP"));
            memcpy(p->map, u, (size_t)(q - u));
            p->map[q - u] = '\0';
        } else if (n > 11 && memcmp(line, "#EXT-X-KEY:", 11) == 0) {
            CT_GUARD_RET(ct_sha256(line, n, key));
        } else if (n == 14 && memcmp(line, "#EXT-X-ENDLIST", 14) == 0) {
            p->ended = true;
        }
    }
    CT_ENSURE_RET(p->map[0], ct_fail(CT_ERR_BAD_REQUEST, "playlist: no EXT-X-MAP (init segment)"));
    return CT_OK;
}

/* ---- HTTPS to the camera ---- */
typedef struct {
    uint8_t *p;
    size_t len, cap, max;
} gbuf;

static ct_err gbuf_put(gbuf *b, const void *p, size_t n)
{
    CT_ENSURE_RET(n <= b->max - b->len, ct_fail(CT_ERR_TOO_LARGE, "more than %zu bytes", b->max));
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        CT_ENSURE_RET(q, CT_ERR_NOMEM);
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return CT_OK;
}

typedef struct {
    view_url u;
    const char *connect; /* ADDR:PORT to reach instead of resolving the host (NULL: resolve) */
    WOLFSSL_CTX *ctx;
    const ms_verify_config *crl; /* root and CRL to judge the camera's certificate by (NULL: no CRL given) */
} camera;

static ct_err tcp_connect(const camera *c, int64_t deadline, int *out)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (c->connect) {
        CT_GUARD_RET(ct_addr_parse(c->connect, &ss, &sl));
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        char port[8];
        CT_GUARD_RET(ct_snprintf(port, sizeof port, "%u", c->u.port));
        int e = getaddrinfo(c->u.host, port, &hints, &ai);
        CT_ENSURE_RET(e == 0 && ai, ct_fail(CT_ERR_IO, "cannot resolve %s: %s", c->u.host, gai_strerror(e)));
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        sl = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    CT_ENSURE_RET(fd >= 0, ct_fail(CT_ERR_IO, "socket: %s", strerror(errno)));
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        int err = errno, so = 0;
        socklen_t l = sizeof so;
        if (err != EINPROGRESS || ct_wait_fd(fd, POLLOUT, deadline, "connecting to the camera") != CT_OK ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &l) != 0 || so != 0) {
            close(fd);
            return ct_fail(CT_ERR_IO, "cannot connect to %s:%u: %s", c->u.host, c->u.port,
                           strerror(err != EINPROGRESS ? err : so ? so : ETIMEDOUT));
        }
    }
    *out = fd;
    return CT_OK;
}

static bool tls_wait(WOLFSSL *ssl, int fd, int ret, int64_t deadline)
{
    int err = wolfSSL_get_error(ssl, ret);
    if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) return false;
    return ct_wait_fd(fd, err == WOLFSSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "talking to the camera") == CT_OK;
}

/* The certificate names the serial asked for: the host (SERIAL.DOMAIN) matched a dNSName; the subject's
 * serialNumber, when the certificate has one, must be that serial too. */
static ct_err check_serial(WOLFSSL *ssl, const camera *c)
{
    WOLFSSL_X509 *peer = wolfSSL_get_peer_certificate(ssl);
    CT_ENSURE_RET(peer, ct_fail(CT_ERR_INTEGRITY, "the camera sent no certificate"));
    char sn[128] = "";
    int n = wolfSSL_X509_NAME_get_text_by_NID(wolfSSL_X509_get_subject_name(peer), NID_serialNumber, sn, sizeof sn);
    wolfSSL_X509_free(peer);
    CT_ENSURE_RET(n <= 0 || strcasecmp(sn, c->u.serial) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "the camera's certificate is for serial %s, not %s", sn, c->u.serial));
    return CT_OK;
}

/* With a CRL: the chain the camera presented, judged as a signer's chain is (ms_chain_trusted): the device root's
 * CRL revoking its issuing CA, or the issuing CA's revoking its certificate, refuses it before any request. wolfSSL
 * verified the chain already; this adds revocation, checked on every connection (the chain could change). */
static ct_err check_revocation(WOLFSSL *ssl, const camera *c)
{
    ct_err rc = CT_OK;
    ct_buf pem = CT_BUF_INIT;
    bool trusted = false;
    char why[256] = "";
    WOLFSSL_X509_CHAIN *chain = wolfSSL_get_peer_chain(ssl);
    int n = chain ? wolfSSL_get_chain_count(chain) : 0;
    CT_ENSURE_MSG(n > 0, CT_ERR_INTEGRITY, "the camera sent no certificate chain");
    CT_GUARD(ct_buf_alloc(&pem, (size_t)n * 2 * PKI_MAX_CERT_DER));
    for (int i = 0; i < n; i++) {
        const unsigned char *der = wolfSSL_get_chain_cert(chain, i);
        int len = wolfSSL_get_chain_length(chain, i);
        CT_ENSURE_MSG(der && len > 0, CT_ERR_INTEGRITY, "the camera's certificate chain is unreadable");
        CT_GUARD(ct_pem_encode("CERTIFICATE", der, (size_t)len, &pem));
    }
    CT_GUARD(ms_chain_trusted(c->crl, pem.data, pem.len, time(NULL), &trusted, why, sizeof why));
    CT_ENSURE_MSG(trusted, CT_ERR_INTEGRITY, "the camera's certificate is refused: %s", why);
cleanup:
    ct_buf_free(&pem);
    return rc;
}

/* GET PATH/name: the body into `out` (at most `max`); CT_ERR_NOT_FOUND on 404. A certificate that does not
 * verify is CT_ERR_INTEGRITY (the caller stops), anything else a network error to retry. */
static ct_err https_get(const camera *c, const char *name, size_t max, gbuf *out)
{
    ct_err rc = CT_OK;
    int fd = -1, status = 0, r;
    int64_t deadline = ct_now_ms() + REQUEST_TIMEOUT_MS;
    WOLFSSL *ssl = NULL;
    gbuf resp = {.max = max + HEAD_MAX};
    char req[1024];
    uint8_t chunk[16384];
    size_t off = 0;
    CT_GUARD(tcp_connect(c, deadline, &fd));
    ssl = wolfSSL_new(c->ctx);
    CT_ENSURE_MSG(ssl, CT_ERR_NOMEM, "wolfSSL_new failed");
    CT_ENSURE_MSG(wolfSSL_set_fd(ssl, fd) == WOLFSSL_SUCCESS &&
                      wolfSSL_check_domain_name(ssl, c->u.host) == WOLFSSL_SUCCESS &&
                      wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, c->u.host, (unsigned short)strlen(c->u.host)) ==
                          WOLFSSL_SUCCESS,
                  CT_ERR_CRYPTO, "TLS setup failed");
    while ((r = wolfSSL_connect(ssl)) != WOLFSSL_SUCCESS) {
        int err = wolfSSL_get_error(ssl, r);
        if (tls_wait(ssl, fd, r, deadline)) continue;
        char why[WOLFSSL_MAX_ERROR_SZ];
        wolfSSL_ERR_error_string_n((unsigned long)err, why, sizeof why);
        bool cert = err == DOMAIN_NAME_MISMATCH || err == ASN_NO_SIGNER_E || err == ASN_SIG_CONFIRM_E ||
                    err == ASN_AFTER_DATE_E || err == ASN_BEFORE_DATE_E || err == VERIFY_CERT_ERROR ||
                    err == ASN_SELF_SIGNED_E || err == ASN_PATHLEN_INV_E || err == ASN_SIG_OID_E;
        CT_ENSURE_MSG(false, cert ? CT_ERR_INTEGRITY : CT_ERR_IO, "TLS with %s:%u refused: %s%s", c->u.host, c->u.port,
                      why, cert ? " (not a camera of this device root, or not this camera)" : "");
    }
    CT_GUARD(check_serial(ssl, c));
    if (c->crl) CT_GUARD(check_revocation(ssl, c));
    CT_GUARD(ct_snprintf(req, sizeof req, "GET %s%s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n\r\n", c->u.path,
                         name, c->u.host, c->u.port));
    for (size_t sent = 0, len = strlen(req); sent < len;) {
        r = wolfSSL_write(ssl, req + sent, (int)(len - sent));
        if (r > 0) sent += (size_t)r;
        else CT_ENSURE_MSG(tls_wait(ssl, fd, r, deadline), CT_ERR_IO, "sending the request to the camera failed");
    }
    for (;;) {
        r = wolfSSL_read(ssl, chunk, sizeof chunk);
        if (r > 0) {
            CT_GUARD(gbuf_put(&resp, chunk, (size_t)r));
            continue;
        }
        int err = wolfSSL_get_error(ssl, r);
        if (err == WOLFSSL_ERROR_ZERO_RETURN || err == SOCKET_PEER_CLOSED_E || (r == 0 && err == WOLFSSL_ERROR_SYSCALL))
            break;
        CT_ENSURE_MSG(tls_wait(ssl, fd, r, deadline), CT_ERR_IO, "reading %s from the camera failed (%d)", name, err);
    }
    CT_GUARD(view_http_parse(resp.p, resp.len, max, &status, &off));
    CT_ENSURE_MSG(status != 404, CT_ERR_NOT_FOUND, "%s%s: not found", c->u.path, name);
    CT_ENSURE_MSG(status == 200, CT_ERR_IO, "%s%s: HTTP %d", c->u.path, name, status);
    out->len = 0;
    CT_GUARD(gbuf_put(out, resp.p + off, resp.len - off));
cleanup:
    if (ssl) wolfSSL_free(ssl);
    if (fd >= 0) close(fd);
    free(resp.p);
    return rc;
}

/* ---- segments: verified, then shown ---- */
/* The parameter sets a decoder holds, by kind and id (cenc_param_slot): a digest of each (zeros: none). */
typedef struct {
    uint8_t h[CENC_PARAM_SLOTS][32];
} param_table;

typedef struct {
    uint64_t seq;
    uint64_t first, end; /* pictures [first, end) of the whole session */
    uint8_t *bytes;      /* init segment + segment */
    size_t len;
    char bad[256];       /* why it is not shown ("" while all its GOPs so far are authentic) */
    bool has_picture;
    uint8_t sets[32];    /* digest of the verifier's parameter sets (param_table) at its first picture */
} pending;

/* When a GOP was signed: seconds, then its counter in the session (two GOPs may share a second). */
typedef struct {
    time_t at;
    uint32_t counter;
} signed_mark;

static bool signed_after(const ms_gop_report *g, const signed_mark *m)
{
    return g->signed_at > m->at || (g->signed_at == m->at && g->counter > m->counter);
}

typedef struct {
    viewer v;
    camera cam;
    const view_live_opts *o;
    const char *url;
    FILE *report, *out;
    ms_verify_config vc;
    ct_buf root, crl;
    ms_verifier *ver;   /* the signing session's (a camera restarted starts another) */
    media_codec codec;  /* the video's, from its first session on */
    size_t gops;
    /* A camera signs its GOPs one after another, and a session it restarts after the one before: the latest GOP
     * reported authentic (of any session: its signing time and counter); this session's GOPs signed no later than
     * the one before them, reported `reordered` (its summary counts them so). */
    signed_mark latest;
    size_t demoted[MS_STATUS__COUNT]; /* this session's GOPs the verifier found authentic, reported otherwise here */
    uint64_t frames, verified_end; /* pictures pushed; pictures [0, verified_end) have a report */
    double t_base, t_last, t_step;
    bool have_t;
    cenc_writer *clear;
    gbuf held;      /* the clear init segment, written with the first segment shown: nothing before */
    bool out_open;  /* a segment was shown: output goes straight out */
    gbuf init;
    /* The verifier judges each segment with the sets of every segment walked before it, a player with those of the
     * segments shown (and the sample entry's): a segment not shown may have sent sets the next one relies on. */
    param_table walked, player, trial;
    bool walk_picture; /* the segment being walked reached its first picture */
    pending q[PENDING_MAX];
    size_t nq;
    size_t shown, refused;
    /* The playlist slid past the segments after the last one fetched, [slid_from, slid_to): told with the first GOP
     * reported after (tell_slide). */
    bool slid;
    uint64_t slid_from, slid_to, slid_on; /* ... and the segment verified on from (lower if it went back since) */
    bool other_codec; /* the camera restarted with another codec than the video shown: the end (take_segment) */
} session;

static ct_err out_write(void *arg, const uint8_t *p, size_t n)
{
    session *s = arg;
    if (!s->out_open) return gbuf_put(&s->held, p, n);
    CT_ENSURE_RET(fwrite(p, 1, n, s->out) == n && fflush(s->out) == 0,
                  ct_fail(CT_ERR_IO, "cannot write the video: %s", strerror(errno)));
    return CT_OK;
}

/* Live video was signed moments ago, by the viewer's clock: a GOP signed more than o->max_age_s before it is
 * verified is an older recording (the camera's own, served from the start by whoever writes its playlist: the
 * first GOP watched has nothing else to be compared with), and one signed without a clock (time 0) cannot show it
 * is not. So is one dated more than the bound after it: a camera clock set ahead (by hand, or by a forged NTP
 * answer) signs video that would pass as live until that date, however long it was held back. Each is reported not
 * live (its status and why into `g`); max_age_s 0: no bound (the user's choice). */
static bool not_live(const session *s, ms_gop_report *g)
{
    if (!s->o->max_age_s || g->status != MS_AUTHENTIC) return false;
    long long age = (long long)(time(NULL) - g->signed_at);
    char when[CT_TIME_UTC_MAX];
    if (g->signed_at && age <= s->o->max_age_s && age >= -s->o->max_age_s) return false;
    if (!g->signed_at) {
        g->status = MS_UNTRUSTED;
        if (ct_snprintf(g->detail, sizeof g->detail, "signed without a clock (time 0): cannot be shown to be live "
                        "(--max-age 0 shows it)") != CT_OK)
            g->detail[0] = '\0';
        return true;
    }
    ct_time_utc((int64_t)g->signed_at, when);
    bool ahead = age < 0;
    g->status = ahead ? MS_UNTRUSTED : MS_REORDERED;
    if (ct_snprintf(g->detail, sizeof g->detail, "%ssigned at %s, %lld s %s the viewer's clock (--max-age %ld): %s",
                    ahead ? "" : "stale: ", when, ahead ? -age : age, ahead ? "after" : "before", s->o->max_age_s,
                    ahead ? "the camera's clock is ahead of the viewer's, cannot be shown to be live"
                          : "an older recording, not live") != CT_OK)
        g->detail[0] = '\0';
    return true;
}

/* The line of a slide past the last segment fetched (watch), with the first GOP reported after it (NULL: none): one
 * signed after the last GOP verified that counts no higher is a new signing session, the camera restarted (in one
 * session both go up together); else the viewer fell behind, or a camera restarted long enough ago for its counter
 * to run past, which cannot be told apart. */
static void tell_slide(session *s, const ms_gop_report *g)
{
    if (!s->slid) return;
    s->slid = false;
    s->refused += (size_t)(s->slid_to - s->slid_from);
    if (g && g->status == MS_AUTHENTIC && g->has_counter && g->signed_at && s->latest.at &&
        signed_after(g, &s->latest) && g->counter <= s->latest.counter)
        fprintf(s->report, "camera restarted: a new signing session (its GOP %u signed after GOP %u) while the "
                           "playlist slid past segments %llu-%llu, NOT SHOWN: gone before they were fetched; verified on "
                           "its own from segment %llu's first picture\n",
                g->counter, s->latest.counter, (unsigned long long)s->slid_from, (unsigned long long)s->slid_to - 1,
                (unsigned long long)s->slid_on);
    else
        fprintf(s->report, "segments %llu-%llu: NOT SHOWN: gone from the playlist before they were fetched (the viewer "
                           "fell behind, or the camera restarted); verified on its own from segment %llu's first "
                           "picture\n",
                (unsigned long long)s->slid_from, (unsigned long long)s->slid_to - 1, (unsigned long long)s->slid_on);
    fflush(s->report);
}

static void on_gop(const ms_gop_report *gop, void *arg)
{
    session *s = arg;
    ms_gop_report r = *gop, *g = &r;
    tell_slide(s, gop);
    bool timed = g->status == MS_AUTHENTIC && g->signed_at && g->has_counter;
    /* A GOP signed no later than one verified before it: an older recording of the camera's (or its session rewound,
     * down to the last GOP) served as a restart, or numbered on, by whoever writes the playlist; not live video. In
     * one session the verifier judges the counters alone: another session's may run past them. */
    if (timed && s->latest.at && !signed_after(g, &s->latest)) {
        char latest[CT_TIME_UTC_MAX];
        ct_time_utc((int64_t)s->latest.at, latest);
        g->status = MS_REORDERED;
        if (ct_snprintf(g->detail, sizeof g->detail, "signed no later than the camera's GOP %u verified before it "
                        "(signed at %s): an older recording replayed, not live", s->latest.counter, latest) != CT_OK)
            g->detail[0] = '\0';
    } else {
        bool live = !not_live(s, g); /* a GOP too old or too far ahead is demoted there */
        if (live && timed) s->latest = (signed_mark){g->signed_at, g->counter};
    }
    if (g->status != gop->status) s->demoted[g->status]++;
    ms_print_gop(s->report, ++s->gops, g);
    fflush(s->report);
    for (size_t i = 0; i < s->nq; i++) {
        pending *p = &s->q[i];
        if (g->status == MS_AUTHENTIC || p->bad[0] || g->last_frame < p->first || g->first_frame >= p->end) continue;
        if (ct_snprintf(p->bad, sizeof p->bad, "not authentic: frames %llu-%llu %s%s%s",
                        (unsigned long long)g->first_frame, (unsigned long long)g->last_frame,
                        ms_status_name(g->status), g->detail[0] ? ": " : "", g->detail) != CT_OK)
            p->bad[0] = '!';
    }
    if (g->last_frame + 1 > s->verified_end) s->verified_end = g->last_frame + 1;
}

/* A parameter set into `tab` (any other NAL unit: nothing). */
static ct_err param_note(param_table *tab, media_codec c, const uint8_t *nal, size_t len)
{
    int slot = cenc_param_slot(c, nal, len);
    return slot < 0 ? CT_OK : ct_sha256(nal, len, tab->h[slot]);
}

static bool first_picture(media_codec c, const uint8_t *nal, size_t len)
{
    media_nal_info info = media_nal_classify(c, nal, len);
    return media_nal_is_vcl(info.kind) && info.first_slice;
}

/* Picture NAL units as stored, onto one session timeline (each segment's walk starts at 0). */
static ct_err on_nal(void *arg, media_codec c, const uint8_t *nal, size_t len, double t)
{
    session *s = arg;
    if (!s->ver) {
        /* The video shown so far goes on in one track: a camera restarted with another codec is another stream. */
        s->other_codec = s->out_open && c != s->codec;
        CT_ENSURE_RET(!s->other_codec, ct_fail(CT_ERR_BAD_REQUEST, "the camera restarted with %s video, not %s: "
                                               "another stream (watch it anew)", media_codec_name(c),
                                               media_codec_name(s->codec)));
        CT_GUARD_RET(ms_verifier_open(&s->vc, c, time(NULL), "the viewer's clock", on_gop, s, &s->ver));
        s->codec = c;
    }
    if (t < 0) { /* the sample entry's parameter sets: taken before the first picture only, as the verifier does */
        if (!s->frames) {
            CT_GUARD_RET(param_note(&s->walked, c, nal, len));
            /* the player's, from the init segment written with the first segment shown */
            if (!s->out_open) CT_GUARD_RET(param_note(&s->player, c, nal, len));
        }
        return ms_verifier_push_entry(s->ver, nal, len);
    }
    CT_GUARD_RET(param_note(&s->walked, c, nal, len));
    if (!s->walk_picture && first_picture(c, nal, len)) {
        pending *p = &s->q[s->nq - 1];
        s->walk_picture = p->has_picture = true;
        CT_GUARD_RET(ct_sha256(&s->walked, sizeof s->walked, p->sets));
    }
    double at = s->t_base + t;
    if (!s->have_t || at != s->t_last) {
        if (s->have_t && at > s->t_last) s->t_step = at - s->t_last;
        s->t_last = at;
        s->have_t = true;
        s->frames++;
    }
    return ms_verifier_push_sample(s->ver, nal, len, at);
}

typedef struct {
    session *s;
    bool picture;
    uint8_t at_picture[32];
} replay;

static ct_err replay_nal(void *arg, media_codec c, const uint8_t *nal, size_t len, double t)
{
    replay *r = arg;
    if (t < 0) return CT_OK; /* the sample entry's: the player took them once, at the start (s->player) */
    if (!r->picture && first_picture(c, nal, len)) {
        r->picture = true;
        CT_GUARD_RET(ct_sha256(&r->s->trial, sizeof r->s->trial, r->at_picture));
    }
    return param_note(&r->s->trial, c, nal, len);
}

/* Whether a player of what is shown decodes `p`'s first picture with the parameter sets the verifier judged it with
 * (else why not, in p->bad); s->trial: the player's sets after it. */
static ct_err player_sets(session *s, pending *p)
{
    replay r = {s, false, {0}};
    memcpy(&s->trial, &s->player, sizeof s->trial);
    CT_GUARD_RET(cenc_walk(p->bytes, p->len, replay_nal, &r));
    if (p->has_picture && (!r.picture || memcmp(r.at_picture, p->sets, sizeof r.at_picture) != 0))
        CT_GUARD_RET(ct_snprintf(p->bad, sizeof p->bad, "its pictures were verified with parameter sets sent in a "
                                                        "segment not shown, which a player of those shown lacks"));
    return CT_OK;
}

/* Shows or refuses the oldest segments whose every GOP has been reported (all of them at the end). */
static ct_err release(session *s, bool all)
{
    while (s->nq > 0 && (all || s->q[0].end <= s->verified_end)) {
        pending *p = &s->q[0];
        if (!p->bad[0] && p->end > s->verified_end)
            CT_GUARD_RET(ct_snprintf(p->bad, sizeof p->bad, "no signature covers frames %llu-%llu",
                                     (unsigned long long)s->verified_end, (unsigned long long)p->end - 1));
        ct_err rc = CT_OK;
        if (!p->bad[0] && player_sets(s, p) != CT_OK) {
            if (ct_snprintf(p->bad, sizeof p->bad, "%s", ct_err_detail()) != CT_OK) p->bad[0] = '!';
            ct_err_clear();
        }
        if (!p->bad[0]) {
            if (!s->clear) rc = cenc_decrypt_begin(s->init.p, s->init.len, out_write, s, &s->clear);
            if (rc == CT_OK) rc = cenc_decrypt_append(p->bytes, p->len, viewer_key, &s->v, s->clear);
            if (rc == CT_OK && !s->out_open) {
                s->out_open = true;
                rc = out_write(s, s->held.p, s->held.len);
            } else if (rc != CT_OK && !s->out_open) {
                cenc_writer_free(s->clear); /* nothing shown yet: start again with the next segment */
                s->clear = NULL;
                s->held.len = 0;
            }
            if (rc == CT_ERR_IO) return rc; /* the output is gone */
            if (rc != CT_OK && ct_snprintf(p->bad, sizeof p->bad, "%s", ct_err_detail()) != CT_OK) p->bad[0] = '!';
            ct_err_clear();
        }
        if (p->bad[0]) {
            fprintf(s->report, "segment %llu: NOT SHOWN: %s\n", (unsigned long long)p->seq, p->bad);
            s->refused++;
        } else {
            fprintf(s->report, "segment %llu: shown (frames %llu-%llu, verified)\n", (unsigned long long)p->seq,
                    (unsigned long long)p->first, (unsigned long long)p->end - 1);
            s->shown++;
            memcpy(&s->player, &s->trial, sizeof s->player);
        }
        fflush(s->report);
        free(p->bytes);
        memmove(s->q, s->q + 1, (s->nq - 1) * sizeof *s->q);
        s->nq--;
    }
    return CT_OK;
}

static ct_err take_segment(session *s, uint64_t seq, const gbuf *seg)
{
    CT_ENSURE_RET(s->nq < PENDING_MAX, ct_fail(CT_ERR_TOO_LARGE, "%d segments without a signature", PENDING_MAX));
    size_t held = 0; /* at most PENDING_BYTES_MAX */
    for (size_t i = 0; i < s->nq; i++) held += s->q[i].len;
    CT_ENSURE_RET(s->init.len + seg->len <= PENDING_BYTES_MAX - held,
                  ct_fail(CT_ERR_TOO_LARGE, "segment %llu: more than %zu MiB of segments held without a signature "
                                            "covering them", (unsigned long long)seq, PENDING_BYTES_MAX >> 20));
    pending *p = &s->q[s->nq];
    memset(p, 0, sizeof *p);
    p->seq = seq;
    p->first = s->frames;
    p->len = s->init.len + seg->len;
    p->bytes = malloc(p->len);
    CT_ENSURE_RET(p->bytes, CT_ERR_NOMEM);
    memcpy(p->bytes, s->init.p, s->init.len);
    memcpy(p->bytes + s->init.len, seg->p, seg->len);
    /* Live, a GOP is reported during the walk as soon as its signature arrives: until the walk ends the segment
     * holds every picture from `first` on, or a GOP judged inside it would be blamed on no segment and shown. */
    p->end = UINT64_MAX;
    s->nq++;
    s->have_t = false;
    s->walk_picture = false;
    size_t problems = s->ver ? ms_verifier_problems(s->ver, NULL) : 0;
    const char *problem = NULL;
    ct_err rc = cenc_walk(p->bytes, p->len, on_nal, s);
    /* A player of the video shown (one track) cannot follow another codec: rather than refuse each segment while
     * polling on, the watch ends in one line. */
    if (s->other_codec) return rc;
    if (rc != CT_OK) {
        if (ct_snprintf(p->bad, sizeof p->bad, "unreadable: %s", ct_err_detail()) != CT_OK) p->bad[0] = '!';
        if (s->ver) ms_verifier_problem(s->ver, "segment %llu unreadable", (unsigned long long)seq);
        ct_err_clear();
    }
    /* A problem the walk met (a NAL unit a player may read otherwise than the verifier: an invalid header, an
     * unspecified type) is the segment's: the GOPs it holds may still verify, as they do without it. */
    if (s->ver && ms_verifier_problems(s->ver, &problem) > problems && !p->bad[0] &&
        ct_snprintf(p->bad, sizeof p->bad, "%s", problem) != CT_OK)
        p->bad[0] = '!';
    p->end = s->frames;
    s->t_base = s->t_last + s->t_step;
    tell_slide(s, NULL); /* no GOP of it reported */
    return release(s, false);
}

/* The end of a signing session (the stream's, or the camera's before it restarted): its last GOPs reported, every
 * segment held shown or refused, its summary; the next session starts a verifier and a timeline of its own. */
static ct_err session_end(session *s)
{
    ms_summary sum;
    char where[300];
    tell_slide(s, NULL);
    if (!s->ver) return CT_OK;
    CT_GUARD_RET(ms_verifier_finish(s->ver, &sum));
    CT_GUARD_RET(release(s, true));
    CT_GUARD_RET(ct_snprintf(where, sizeof where, "%s", s->url));
    CT_GUARD_RET(ct_strlcpy(sum.container, sizeof sum.container, "live CMAF"));
    for (int i = 0; i < MS_STATUS__COUNT; i++) { /* as reported GOP by GOP (on_gop) */
        sum.count[MS_AUTHENTIC] -= s->demoted[i];
        sum.count[i] += s->demoted[i];
        if (s->demoted[i]) sum.authentic = false;
    }
    ms_print_summary(s->report, where, &sum);
    memset(s->demoted, 0, sizeof s->demoted);
    ms_verifier_close(s->ver);
    s->ver = NULL;
    s->gops = s->frames = s->verified_end = 0;
    s->t_base = s->t_last = s->t_step = 0;
    s->have_t = false;
    memset(&s->walked, 0, sizeof s->walked);
    if (!s->out_open) memset(&s->player, 0, sizeof s->player); /* nothing shown: the next init is the player's */
    return CT_OK;
}

static volatile sig_atomic_t g_stop;
static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls the playlist and takes each new segment until the playlist ends (or a stop signal). */
static ct_err watch(session *s)
{
    ct_err rc = CT_OK;
    gbuf pl = {.max = PLAYLIST_BYTES_MAX}, seg = {.max = SEGMENT_BYTES_MAX}, init_now = {.max = INIT_MAX};
    view_playlist *p = calloc(1, sizeof *p);
    char map[VIEW_NAME_MAX] = "";
    bool started = false;
    uint64_t next = 0, first_seq = 0; /* the next segment to fetch; the first the playlist named when last read */
    uint64_t fetched = UINT64_MAX;    /* the last segment fetched, and its key line's digest */
    uint8_t fetched_key[32];
    int64_t last_answer = ct_now_ms();
    CT_ENSURE(p, CT_ERR_NOMEM);
    s->init.max = INIT_MAX;
    while (!g_stop) {
        rc = https_get(&s->cam, "index.m3u8", PLAYLIST_BYTES_MAX, &pl);
        if (rc == CT_ERR_INTEGRITY) goto cleanup;
        if (rc == CT_ERR_NOT_FOUND) last_answer = ct_now_ms(); /* the camera answers: no segment out yet */
        if (rc != CT_OK) {
            CT_ENSURE_MSG(ct_now_ms() - last_answer < CAMERA_GONE_MS, rc, "the camera stopped answering: %s",
                          ct_err_detail());
            ct_err_clear();
            rc = CT_OK;
            pause_ms(500);
            continue;
        }
        last_answer = ct_now_ms();
        CT_GUARD(view_playlist_parse((const char *)pl.p, pl.len, p));
        /* The last segment fetched gone and the playlist naming the next one first: the viewer fell a little behind,
         * or the camera restarted and numbered up to it meanwhile, which neither the numbers nor the keys tell. The
         * init segment does, fetched again then: a new session writes its own (its first key's ID). */
        bool recheck_init = started && fetched != UINT64_MAX && p->first_seq == next;
        if (!map[0] || recheck_init) {
            rc = https_get(&s->cam, p->map, INIT_MAX, map[0] ? &init_now : &s->init);
            if (rc == CT_ERR_INTEGRITY) goto cleanup;
            if (rc != CT_OK) { /* retried at the next poll */
                ct_err_clear();
                rc = CT_OK;
                pause_ms(200);
                continue;
            }
            if (!map[0]) memcpy(map, p->map, sizeof map);
        }
        CT_ENSURE_MSG(strcmp(map, p->map) == 0, CT_ERR_BAD_REQUEST, "the init segment changed (%s): a new stream",
                      p->map);
        /* A live playlist only grows at its end: one naming fewer segments than were fetched, or sliding back, is a
         * camera that restarted (its agent did: a new signing session, new keys and parameter sets, its segments
         * numbered from 0 again); so is one naming the last segment fetched with another key (each has its own: the
         * new session reached that number between two polls). Its segments are another session's, verified by a
         * verifier of their own from their first picture, their signer's certificate checked again: not as the GOPs
         * after the last one shown (which they do not link to: `altered`). Anyone able to write the camera's
         * playlist may do the same to splice in another session; this line says so, and its GOPs name when they
         * were signed, and by which camera. */
        bool rekeyed = fetched != UINT64_MAX && fetched >= p->first_seq && fetched - p->first_seq < p->n &&
                       memcmp(p->keys[fetched - p->first_seq], fetched_key, sizeof fetched_key) != 0;
        bool renewed = recheck_init && (init_now.len != s->init.len ||
                                        (s->init.len && memcmp(init_now.p, s->init.p, s->init.len) != 0));
        if (started && (p->first_seq < first_seq || p->first_seq + p->n < next || rekeyed || renewed)) {
            char why[80];
            CT_GUARD(session_end(s));
            CT_GUARD(renewed ? ct_strlcpy(why, sizeof why, "a new init segment")
                             : ct_snprintf(why, sizeof why, "the playlist went back from segment %llu",
                                           (unsigned long long)next));
            fprintf(s->report, "camera restarted: a new signing session from segment %llu (%s), verified on its own "
                               "from its first picture\n", (unsigned long long)p->first_seq, why);
            fflush(s->report);
            map[0] = '\0'; /* its init segment, fetched again */
            started = false;
            fetched = UINT64_MAX;
            continue;
        }
        /* From the oldest segment the playlist still names (each carries the camera's certificate SEI). */
        if (!started) next = s->slid_on = p->first_seq;
        /* The segments gone are those the playlist that slid skipped, and any it slid past since: not counted from
         * this playlist alone, which may have gone back since (a restart, or whoever writes the playlist renumbering
         * the segments after a cut so that nothing would count as gone). */
        if (!started && s->slid && p->first_seq > s->slid_to) s->slid_to = p->first_seq;
        /* A playlist slid past the segments after the last one fetched: the viewer fell behind, or the camera
         * restarted and wrote more than a window meanwhile (neither going back nor naming the last segment fetched
         * again). The playlist cannot tell which: either way what follows is verified on its own from its first
         * picture, its init segment fetched again, as after a restart (not as the GOPs after the last one shown,
         * which a new session's do not link to: `reordered`); the first GOP reported tells which (tell_slide). */
        if (started && p->first_seq > next) {
            CT_GUARD(session_end(s));
            s->slid = true;
            s->slid_from = next;
            s->slid_to = p->first_seq;
            ct_failpoint_hold("live:slid"); /* tests: the playlist goes back before the next poll */
            map[0] = '\0';
            started = false;
            fetched = UINT64_MAX;
            continue;
        }
        started = true;
        first_seq = p->first_seq;
        for (size_t i = (size_t)(next - p->first_seq); i < p->n && !g_stop; i++, next++) {
            rc = https_get(&s->cam, p->names[i], SEGMENT_BYTES_MAX, &seg);
            if (rc == CT_ERR_INTEGRITY) goto cleanup;
            if (rc != CT_OK) break; /* retried at the next poll (or reported as gone) */
            fetched = next;
            memcpy(fetched_key, p->keys[i], sizeof fetched_key);
            CT_GUARD(take_segment(s, next, &seg));
        }
        if (rc != CT_OK) {
            ct_err_clear();
            rc = CT_OK;
            pause_ms(200);
            continue;
        }
        if (p->ended && next >= p->first_seq + p->n) break;
        ct_failpoint_hold("live:polled"); /* tests: the camera restarts, its playlist slides on meanwhile */
        pause_ms(s->o->poll_ms);
    }
cleanup:
    free(p);
    free(pl.p);
    free(seg.p);
    free(init_now.p);
    return rc;
}

ct_err view_live(const char *dir, const char *root, const char *url, const view_live_opts *o, FILE *out,
                 FILE *report, bool *all_shown)
{
    ct_err rc = CT_OK;
    session *s = calloc(1, sizeof *s);
    ct_buf pem = CT_BUF_INIT;
    bool inited = false, opened = false;
    *all_shown = false;
    CT_ENSURE(s, CT_ERR_NOMEM);
    s->o = o;
    s->url = url;
    s->out = out;
    s->report = report;
    s->held.max = SEGMENT_BYTES_MAX;
    s->cam.connect = o->connect;
    CT_GUARD(view_url_parse(url, &s->cam.u));
    CT_GUARD(viewer_open(dir, true, &s->v));
    opened = true;
    CT_ENSURE_MSG(s->v.installed, CT_ERR_CONFIG, "no certificate installed: run camtrust-view install");
    CT_GUARD(ct_file_read(root, CERT_FILE_MAX, &pem));
    CT_GUARD(ct_buf_alloc(&s->root, PKI_MAX_CERT_DER));
    CT_GUARD(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 0, &s->root));
    /* The camera that signed the video must be the one serving it (its TLS certificate names that serial): a
     * camera serving another camera's signed segments is refused from the first segment. */
    s->vc = (ms_verify_config){.root_der = s->root.data, .root_len = s->root.len, .live = true,
                               .serial = s->cam.u.serial};
    if (o->crl) { /* the TLS certificate and every signer's chain alike */
        CT_GUARD(ct_pem_or_der_read(o->crl, "X509 CRL", 1u << 20, &s->crl));
        s->vc.crl_der = s->crl.data;
        s->vc.crl_len = s->crl.len;
        s->cam.crl = &s->vc;
    }
    CT_ENSURE_MSG(wolfSSL_Init() == WOLFSSL_SUCCESS, CT_ERR_CRYPTO, "wolfSSL_Init failed");
    inited = true;
    s->cam.ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    CT_ENSURE_MSG(s->cam.ctx, CT_ERR_CRYPTO, "wolfSSL_CTX_new failed");
    /* The device root only: the camera's chain must end there. */
    CT_ENSURE_MSG(wolfSSL_CTX_load_verify_buffer(s->cam.ctx, pem.data, (long)pem.len, WOLFSSL_FILETYPE_PEM) ==
                      WOLFSSL_SUCCESS,
                  CT_ERR_CONFIG, "%s: not a root certificate wolfSSL takes", root);
    wolfSSL_CTX_set_verify(s->cam.ctx, WOLFSSL_VERIFY_PEER, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    CT_GUARD(watch(s));
    /* The end: the last GOP's signature came with the last segment; what is left is reported. */
    CT_GUARD(session_end(s));
    fprintf(report, "live: %zu segments shown, %zu not shown\n", s->shown, s->refused);
    *all_shown = s->refused == 0 && s->shown > 0;
cleanup:
    if (s) {
        for (size_t i = 0; i < s->nq; i++) free(s->q[i].bytes);
        ms_verifier_close(s->ver);
        cenc_writer_free(s->clear);
        if (s->cam.ctx) wolfSSL_CTX_free(s->cam.ctx);
        if (opened) viewer_close(&s->v);
        ct_buf_free(&s->root);
        ct_buf_free(&s->crl);
        free(s->init.p);
        free(s->held.p);
        free(s);
    }
    ct_buf_free(&pem);
    wc_ecc_fp_free();
    if (inited) wolfSSL_Cleanup();
    return rc;
}
