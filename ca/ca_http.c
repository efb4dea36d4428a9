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
