/* The officer web console: one page, its script and its style, compiled in from ca/console/ (embed.cmake).
 * Served only after ca_officer_handle has authenticated an officer; the page then talks to /officer/api/. */
#include <string.h>

#include "ca_priv.h"

extern const unsigned char ca_console_index_html[], ca_console_app_js[], ca_console_app_css[];
extern const size_t ca_console_index_html_len, ca_console_app_js_len, ca_console_app_css_len;

ct_err ca_console_handle(const ca_http_request *rq, ca_http_answer *ans)
{
    const struct {
        const char *path, *type;
        const unsigned char *data;
        size_t len;
    } assets[] = {
        {"/console/", "text/html; charset=utf-8", ca_console_index_html, ca_console_index_html_len},
        {"/console/app.js", "text/javascript; charset=utf-8", ca_console_app_js, ca_console_app_js_len},
        {"/console/app.css", "text/css; charset=utf-8", ca_console_app_css, ca_console_app_css_len},
    };
    const char *path = strcmp(rq->path, "/console") == 0 ? "/console/" : rq->path;
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++) {
        if (strcmp(path, assets[i].path) != 0) continue;
        if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0)
            return ca_http_error(ans, ct_fail(CT_ERR_METHOD, "the console takes GET"));
        ans->status = 200;
        ans->content_type = assets[i].type;
        CT_GUARD_RET(ct_buf_alloc(&ans->body, assets[i].len));
        CT_GUARD_RET(ct_buf_set(&ans->body, assets[i].data, assets[i].len));
        return ct_snprintf(ans->reason, sizeof ans->reason, "console %s", assets[i].path);
    }
    return ca_http_error(ans, ct_fail(CT_ERR_NOT_FOUND, "no such console resource"));
}
