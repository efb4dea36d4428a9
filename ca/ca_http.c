/* What every HTTP route shares, apart from libmicrohttpd (ca_server.c): answers and their errors, media types,
 * where a browser says a request comes from, and the client address as a limit key. No HTTP library here. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/siphash.h>

#include "ca_priv.h"

bool ca_media_type_is(const char *content_type, const char *want)
{
    if (!content_type) return false;
    size_t n = strlen(want);
    if (strncasecmp(content_type, want, n) != 0) return false;
    char next = content_type[n];
    return next == '\0' || next == ';' || next == ' ';
}

/* Random, so that it tells nobody how many there were. */
void ca_incident_name(char out[CA_INCIDENT_MAX])
{
    uint64_t id;
    if (ct_random((uint8_t *)&id, sizeof id) != CT_OK) id = (uint64_t)ct_now_ms();
    if (ct_snprintf(out, CA_INCIDENT_MAX, "%016llx", (unsigned long long)id) != CT_OK) out[0] = '\0';
}

ct_err ca_http_error(ca_http_answer *ans, ct_err e)
{
    ct_buf_free(&ans->body);
    ans->content_encoding = NULL; /* the error text is sent as it is */
    ans->status = ct_err_http_status(e);
    ans->content_type = "text/plain";
    const char *detail = ct_err_detail();
    if (ct_snprintf(ans->reason, sizeof ans->reason, "%s", *detail ? detail : ct_err_message(e)) != CT_OK)
        ans->reason[0] = '\0';
    ans->incident[0] = '\0';
    if (ans->status == 500) ca_incident_name(ans->incident); /* after the detail is kept: it may fail with its own */
    char said[sizeof ans->reason];
    if (ca_http_error_said(ans, e, said, sizeof said) != CT_OK) said[0] = '\0';
    if (ct_buf_alloc(&ans->body, sizeof said + 64) == CT_OK &&
        ct_buf_appendf(&ans->body, "%d %s\n", ans->status, said) != CT_OK)
        ans->body.len = 0;
    return e;
}

ct_err ca_http_error_said(const ca_http_answer *ans, ct_err e, char *out, size_t max)
{
    if (ans->status != 500) return ct_strlcpy(out, max, ans->reason);
    return ct_snprintf(out, max, "%s: incident %s in the CA's log", ct_err_message(e), ans->incident);
}

void ca_http_answer_free(ca_http_answer *ans) { ct_buf_free(&ans->body); }

/* Accept-Encoding (RFC 9110 12.5.3): gzip (or x-gzip), or "*" where gzip is not named, with a q-value above 0. */
bool ca_http_accepts_gzip(const char *accept_encoding)
{
    bool named = false, any = false;
    for (const char *p = accept_encoding; p && *p;) {
        size_t n = strcspn(p, ",");
        const char *end = p + n, *semi = memchr(p, ';', n);
        const char *name_end = semi ? semi : end;
        while (p < name_end && (*p == ' ' || *p == '\t')) p++;
        while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t')) name_end--;
        size_t len = (size_t)(name_end - p);
        bool allowed = true;
        if (semi) { /* ";q=0", ";q=0.0" ... refuse; any other weight accepts */
            const char *q = semi + 1;
            while (q < end && (*q == ' ' || *q == '\t')) q++;
            if (end - q >= 3 && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=' && q[2] == '0') {
                const char *d = q + 3;
                if (d < end && *d == '.') d++;
                while (d < end && *d == '0') d++;
                while (d < end && (*d == ' ' || *d == '\t')) d++;
                allowed = d != end;
            }
        }
        if ((len == 4 && strncasecmp(p, "gzip", 4) == 0) || (len == 6 && strncasecmp(p, "x-gzip", 6) == 0)) {
            if (!allowed) return false;
            named = true;
        } else if (len == 1 && *p == '*') {
            any = allowed;
        }
        p = *end ? end + 1 : end;
    }
    return named || any;
}

bool ca_http_reads(const char *method) { return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0; }

long ca_http_body_limit(const ca *c, const char *method) { return ca_http_reads(method) ? 0 : c->cfg.max_body; }

ct_err ca_http_body_too_large(const ca *c, const char *method)
{
    return ct_fail(CT_ERR_TOO_LARGE, "request body larger than %ld bytes", ca_http_body_limit(c, method));
}

/* "https://" + the Host header, compared without case (host names are case-insensitive). */
static bool origin_is_host(const char *origin, const char *host)
{
    static const char scheme[] = "https://";
    return host && *host && strncasecmp(origin, scheme, sizeof scheme - 1) == 0 &&
           strcasecmp(origin + sizeof scheme - 1, host) == 0;
}

/* A client certificate goes with every request a browser sends to this server, whichever page made it, so
 * browsers' own word on the origin decides. Programs (curl) send neither header: they may read, and must name
 * the origin to change anything. */
ct_err ca_http_same_origin(const ca_http_request *rq, bool changes_state)
{
    const char *site = rq->fetch_site, *host = rq->host ? rq->host : "";
    /* "none": the officer typed the address or followed a bookmark; a read only. */
    CT_ENSURE_RET(!site || strcmp(site, "same-origin") == 0 || (!changes_state && strcmp(site, "none") == 0),
                  ct_fail(CT_ERR_FORBIDDEN, "cross-origin request refused (Sec-Fetch-Site: %.20s)", site));
    CT_ENSURE_RET(!rq->origin || origin_is_host(rq->origin, rq->host),
                  ct_fail(CT_ERR_FORBIDDEN, "cross-origin request refused (Origin %.80s is not https://%.80s)",
                          rq->origin, host));
    CT_ENSURE_RET(!changes_state || rq->origin || site,
                  ct_fail(CT_ERR_FORBIDDEN, "a request that changes state must send Origin: https://%.80s", host));
    return CT_OK;
}

/* ---- the client address as a limit key ---- */

#define IPV6_PREFIX_BYTES 8 /* a /64: what one IPv6 client (a home, a host with SLAAC privacy addresses) is given */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void local_key(ca_addr_key *key) { memset(key->b, 0xff, sizeof key->b); } /* multicast: no client's source */

static void v4_key(const void *addr4, ca_addr_key *key)
{
    memcpy(key->b, v4_mapped_prefix, sizeof v4_mapped_prefix);
    memcpy(key->b + sizeof v4_mapped_prefix, addr4, 4);
}

static void v6_key(const uint8_t addr6[16], ca_addr_key *key)
{
    if (memcmp(addr6, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) { /* an IPv4 client of a dual-stack socket */
        v4_key(addr6 + sizeof v4_mapped_prefix, key);
        return;
    }
    memset(key->b, 0, sizeof key->b);
    memcpy(key->b, addr6, IPV6_PREFIX_BYTES);
}

void ca_addr_key_of(const struct sockaddr *sa, ca_addr_key *key)
{
    if (sa && sa->sa_family == AF_INET)
        v4_key(&((const struct sockaddr_in *)(const void *)sa)->sin_addr, key);
    else if (sa && sa->sa_family == AF_INET6)
        v6_key(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr, key);
    else
        local_key(key);
}

void ca_addr_key_of_text(const char *source, ca_addr_key *key)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (source && inet_pton(AF_INET, source, &a4) == 1) v4_key(&a4, key);
    else if (source && inet_pton(AF_INET6, source, &a6) == 1) v6_key(a6.s6_addr, key);
    else local_key(key);
}

bool ca_addr_key_equal(const ca_addr_key *a, const ca_addr_key *b) { return memcmp(a->b, b->b, sizeof a->b) == 0; }

bool ca_rate_take(int64_t *full_at_us, int64_t every_us, int64_t burst_us)
{
    const int64_t now = ct_now_ms() * 1000;
    int64_t from = *full_at_us > now ? *full_at_us : now;
    if (from + every_us - now > burst_us) return false;
    *full_at_us = from + every_us;
    return true;
}

bool ca_bucket_take(int64_t *full_at_us, long per_minute)
{
    const int64_t minute_us = 60000000LL;
    return ca_rate_take(full_at_us, minute_us / per_minute, minute_us);
}

_Static_assert(CA_HASH_SECRET_SIZE == SIPHASH_KEY_SIZE, "a SipHash key");
uint64_t ca_keyed_hash(const uint8_t secret[CA_HASH_SECRET_SIZE], const uint8_t *p, size_t n)
{
    uint8_t out[SIPHASH_MAC_SIZE_8] = {0};
    (void)wc_SipHash(secret, p, (word32)n, out, sizeof out); /* (fails on NULL arguments only) */
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

uint64_t ca_addr_key_hash(const uint8_t secret[CA_HASH_SECRET_SIZE], const ca_addr_key *key)
{
    return ca_keyed_hash(secret, key->b, sizeof key->b);
}

void ca_addr_key_text(const ca_addr_key *key, char out[CA_ADDR_KEY_TEXT_MAX])
{
    ca_addr_key local;
    local_key(&local);
    out[0] = '\0';
    if (ca_addr_key_equal(key, &local)) {
        if (ct_snprintf(out, CA_ADDR_KEY_TEXT_MAX, "local") != CT_OK) out[0] = '\0';
    } else if (memcmp(key->b, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
        if (!inet_ntop(AF_INET, key->b + sizeof v4_mapped_prefix, out, CA_ADDR_KEY_TEXT_MAX)) out[0] = '\0';
    } else if (inet_ntop(AF_INET6, key->b, out, CA_ADDR_KEY_TEXT_MAX)) {
        size_t n = strlen(out);
        if (ct_snprintf(out + n, CA_ADDR_KEY_TEXT_MAX - n, "/64") != CT_OK) out[0] = '\0';
    }
}
