/* Fuzzes what camtrust-view live reads from the network and the command line (view/view_live.c): the input as an
 * HLS playlist, as an HTTP answer, and as a URL. Whatever parses must be safe to use: segment and map names plain
 * file names (no folder, no leading dot), the body inside the answer and within its bound, the URL's path a
 * folder without "..". Refusals carry one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(ct_err rc)
{
    if (rc != CT_OK && strchr(ct_err_detail(), '\n')) abort();
}

static void plain(const char *name)
{
    if (!name[0] || name[0] == '.' || strchr(name, '/') || strlen(name) >= VIEW_NAME_MAX) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static view_playlist p;
    ct_err rc = view_playlist_parse((const char *)data, size, &p);
    one_line(rc);
    if (rc == CT_OK) {
        if (p.n > VIEW_PLAYLIST_MAX) abort();
        plain(p.map);
        for (size_t i = 0; i < p.n; i++) plain(p.names[i]);
    }
    int status = 0;
    size_t off = 0, max = 4096;
    rc = view_http_parse(data, size, max, &status, &off);
    one_line(rc);
    if (rc == CT_OK && (off > size || status < 100 || status > 599 || (status == 200 && size - off > max))) abort();

    char url[512];
    size_t n = size < sizeof url - 1 ? size : sizeof url - 1;
    memcpy(url, data, n);
    url[n] = '\0';
    view_url u;
    rc = view_url_parse(url, &u);
    one_line(rc);
    if (rc == CT_OK && (!u.host[0] || u.path[0] != '/' || u.path[strlen(u.path) - 1] != '/' || strstr(u.path, "..") ||
                        !u.port || u.port > 65535))
        abort();
    return 0;
}
