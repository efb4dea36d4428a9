/* gzip (RFC 1952) with zlib, for HTTP Content-Encoding: the C2SP tlog-tiles entry bundles. */
#include "core.h"

#include <zlib.h>

ct_err ct_gzip(const uint8_t *in, size_t len, ct_buf *out)
{
    ct_err rc = CT_OK;
    z_stream z = {0};
    bool init = false;
    CT_ENSURE_MSG(in && out && len <= UINT32_MAX, CT_ERR_ARG, "gzip: input of %zu bytes", len);
    /* windowBits 15 + 16: a gzip wrapper rather than zlib's own. */
    CT_ENSURE_MSG(deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK,
                  CT_ERR_NOMEM, "gzip: deflateInit2 failed");
    init = true;
    CT_GUARD(ct_buf_alloc(out, deflateBound(&z, (uLong)len)));
    z.next_in = (Bytef *)(uintptr_t)in; /* zlib takes no const input, and does not write to it */
    z.avail_in = (uInt)len;
    z.next_out = out->data;
    z.avail_out = (uInt)out->max;
    CT_ENSURE_MSG(deflate(&z, Z_FINISH) == Z_STREAM_END, CT_ERR_INTERNAL, "gzip: deflate did not finish");
    out->len = out->max - z.avail_out;
cleanup:
    if (init) deflateEnd(&z);
    if (rc != CT_OK) ct_buf_free(out);
    return rc;
}
