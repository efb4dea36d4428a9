/* What every HTTP route shares, apart from libmicrohttpd (ca_server.c): answers and their errors, media types,
 * and where a browser says a request comes from. No HTTP library here. */
#include <string.h>
#include <strings.h>

#include "ca_priv.h"

bool ca_media_type_is(const char *content_type, const char *want)
{
    if (!content_type) return false;
    size_t n = strlen(want);
    if (strncasecmp(content_type, want, n) != 0) return false;
    char next = content_type[n];
    return next == '\0' || next == ';' || next == ' ';
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
    if (ct_buf_alloc(&ans->body, sizeof ans->reason + 64) == CT_OK &&
        ct_buf_appendf(&ans->body, "%d %s\n", ans->status, ans->reason) != CT_OK)
        ans->body.len = 0;
    return e;
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
