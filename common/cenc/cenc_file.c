/* Files: recording an H.264/H.265 input (Annex B or MP4) into an encrypted fragmented MP4 (decrypting one is in
 * cenc_read.c, so that a camera does not carry the reader). Outputs appear complete or not at all. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cenc_priv.h"

#define MAX_PARAMS 16
#define TIMESCALE_ANNEXB 90000

/* ---- output: a temporary file beside OUT, renamed over it once complete ---- */
ct_err cenc_out_open(const char *path, cenc_out_file *o)
{
    o->f = NULL;
    CT_GUARD_RET(ct_snprintf(o->tmp, sizeof o->tmp, "%s.XXXXXX", path));
    o->fd = mkstemp(o->tmp);
    CT_ENSURE_RET(o->fd >= 0, ct_fail(CT_ERR_IO, "cannot create a file beside %s: %s", path, strerror(errno)));
    /* mkstemp makes 0600; a recording is as readable as any file the umask allows (it is encrypted). */
    mode_t um = umask(0);
    umask(um);
    o->f = fchmod(o->fd, 0666 & ~um) == 0 ? fdopen(o->fd, "wb") : NULL;
    if (!o->f) {
        close(o->fd);
        unlink(o->tmp);
        return ct_fail(CT_ERR_IO, "cannot write %s: %s", o->tmp, strerror(errno));
    }
    return CT_OK;
}

ct_err cenc_out_write(void *arg, const uint8_t *p, size_t n)
{
    cenc_out_file *o = arg;
    return fwrite(p, 1, n, o->f) == n ? CT_OK : ct_fail(CT_ERR_IO, "cannot write %s: %s", o->tmp, strerror(errno));
}

ct_err cenc_out_close(cenc_out_file *o, const char *path, ct_err rc)
{
    if (!o->f) return rc;
    if (!path) {
        fclose(o->f);
        o->f = NULL;
        unlink(o->tmp);
        return rc;
    }
    if (rc == CT_OK && (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0))
        rc = ct_fail(CT_ERR_IO, "cannot write %s: %s", o->tmp, strerror(errno));
    if (fclose(o->f) != 0 && rc == CT_OK) rc = ct_fail(CT_ERR_IO, "cannot write %s: %s", o->tmp, strerror(errno));
    o->f = NULL;
    if (rc == CT_OK && rename(o->tmp, path) != 0) rc = ct_fail(CT_ERR_IO, "cannot rename to %s: %s", path, strerror(errno));
    if (rc != CT_OK) unlink(o->tmp);
    return rc;
}

/* ---- recording ---- */
typedef struct {
    media_codec codec;
    const cenc_options *o;
    cenc_out_file *out;
    cenc_writer *w;
    const uint8_t *params[MAX_PARAMS];
    size_t param_len[MAX_PARAMS], n_params;
    cenc_gbuf au;
    bool au_vcl, au_sync;
} recorder;

static ct_err rec_start(recorder *r, uint32_t timescale)
{
    ct_err rc = CT_OK;
    ct_buf config = CT_BUF_INIT;
    CT_GUARD(cenc_config_record(r->codec, r->params, r->param_len, r->n_params, &config));
    cenc_track t = {.codec = r->codec, .timescale = timescale, .config = config.data, .config_len = config.len};
    for (size_t i = 0; i < r->n_params && !t.width; i++)
        if (media_nal_classify(r->codec, r->params[i], r->param_len[i]).type == (r->codec == MEDIA_H265 ? 33u : 7u))
            cenc_sps_size(r->codec, r->params[i], r->param_len[i], &t.width, &t.height);
    CT_GUARD(cenc_writer_new(&t, r->o, cenc_out_write, r->out, &r->w));
cleanup:
    ct_buf_free(&config);
    return rc;
}

static ct_err au_put(recorder *r, const uint8_t *nal, size_t len)
{
    CT_GUARD_RET(cenc_gbuf_be(&r->au, len, 4));
    return cenc_gbuf_put(&r->au, nal, len);
}

static ct_err au_emit(recorder *r, uint32_t dur)
{
    if (!r->au_vcl) return CT_OK;
    if (!r->w) CT_GUARD_RET(rec_start(r, TIMESCALE_ANNEXB));
    CT_GUARD_RET(cenc_writer_sample(r->w, r->au.p, r->au.len, dur, r->au_sync));
    r->au.len = 0;
    r->au_vcl = r->au_sync = false;
    return CT_OK;
}

/* Access units by H.264 7.4.1.2.3 / H.265 7.4.2.4.4, enough for camera streams: a new one starts at an access
 * unit delimiter, parameter set or prefix SEI after a picture, or at the first slice of the next picture. */
static ct_err record_annexb(recorder *r, const uint8_t *buf, size_t len, unsigned fps)
{
    size_t pos = 0, nal_len, skipped;
    const uint8_t *nal;
    ct_err rc;
    uint32_t dur = TIMESCALE_ANNEXB / (fps ? fps : 30);
    CT_GUARD_RET(media_annexb_guess(buf, len, &r->codec));
    while ((rc = media_annexb_next(buf, len, &pos, &nal, &nal_len, &skipped)) == CT_OK) {
        media_nal_info info = media_nal_classify(r->codec, nal, nal_len);
        bool vcl = media_nal_is_vcl(info.kind);
        bool starts = info.kind == MEDIA_NAL_AUD || info.kind == MEDIA_NAL_PARAM || info.kind == MEDIA_NAL_SEI ||
                      (vcl && info.first_slice);
        if (r->au_vcl && starts) CT_GUARD_RET(au_emit(r, dur));
        if (!r->w && info.kind == MEDIA_NAL_PARAM && r->n_params < MAX_PARAMS) {
            r->params[r->n_params] = nal;
            r->param_len[r->n_params++] = nal_len;
        }
        CT_GUARD_RET(au_put(r, nal, nal_len));
        r->au_vcl = r->au_vcl || vcl;
        r->au_sync = r->au_sync || info.kind == MEDIA_NAL_IRAP;
    }
    CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
    return au_emit(r, dur);
}

/* MP4 input: the video track's samples with their NAL lengths re-written to 4 bytes, its timing kept. */
static ct_err record_mp4(recorder *r, const uint8_t *buf, size_t len)
{
    ct_err rc = CT_OK;
    media_mp4 *m = NULL;
    media_mp4_video v;
    media_sample s, next;
    CT_GUARD(media_mp4_open(buf, len, &m));
    CT_GUARD(media_mp4_video_track(m, &v));
    r->codec = v.codec;
    while (r->n_params < MAX_PARAMS &&
           (rc = media_mp4_param_set(m, r->n_params, &r->params[r->n_params], &r->param_len[r->n_params])) == CT_OK)
        r->n_params++;
    CT_ENSURE(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    CT_GUARD(rec_start(r, v.timescale));
    uint32_t dur = v.timescale / 30;
    for (uint32_t i = 0; i < v.samples; i++) {
        CT_GUARD(media_mp4_sample(m, i, &s));
        if (i + 1 < v.samples) {
            CT_GUARD(media_mp4_sample(m, i + 1, &next));
            CT_ENSURE_MSG(next.dts > s.dts && next.dts - s.dts <= UINT32_MAX, CT_ERR_BAD_REQUEST,
                          "sample %u: decoding times not increasing", i + 1);
            dur = (uint32_t)(next.dts - s.dts);
        }
        CT_ENSURE_MSG(s.off <= len && s.size <= len - s.off, CT_ERR_BAD_REQUEST, "sample %u outside the file", i);
        size_t pos = 0, nal_len;
        const uint8_t *nal;
        r->au.len = 0;
        while ((rc = media_lp_next(buf + s.off, s.size, v.nal_length_size, &pos, &nal, &nal_len)) == CT_OK)
            CT_GUARD(au_put(r, nal, nal_len));
        CT_ENSURE(rc == CT_ERR_NOT_FOUND, rc);
        CT_GUARD(cenc_writer_sample(r->w, r->au.p, r->au.len, dur, s.sync));
    }
    rc = CT_OK;
cleanup:
    media_mp4_free(m);
    return rc;
}

/* Init segment, sidx, fragments: the fragments go to a scratch file first, as the sidx needs their sizes. */
ct_err cenc_record_file(const char *in, const char *out, const cenc_options *o, unsigned fps, cenc_stats *st)
{
    ct_err rc = CT_OK;
    media_file f = {0}, body = {0};
    cenc_out_file scratch = {0}, of = {0};
    ct_buf sidx = CT_BUF_INIT;
    cenc_stats s;
    recorder r = {.o = o, .out = &scratch, .au = {.max = CENC_MAX_SAMPLE}};
    CT_GUARD(media_file_map(in, &f));
    CT_GUARD(cenc_out_open(out, &scratch));
    if (media_is_mp4(f.data, f.len)) CT_GUARD(record_mp4(&r, f.data, f.len));
    else CT_GUARD(record_annexb(&r, f.data, f.len, fps));
    CT_ENSURE_MSG(r.w, CT_ERR_BAD_REQUEST, "%s holds no picture", in);
    CT_GUARD(cenc_writer_finish(r.w, &s));
    CT_GUARD(cenc_writer_index(r.w, &sidx));
    CT_ENSURE_MSG(fflush(scratch.f) == 0, CT_ERR_IO, "cannot write %s: %s", scratch.tmp, strerror(errno));
    CT_GUARD(media_file_map(scratch.tmp, &body));
    CT_ENSURE_MSG(body.len == s.out_bytes && s.init_bytes <= body.len, CT_ERR_IO, "%s: short write", scratch.tmp);
    CT_GUARD(cenc_out_open(out, &of));
    CT_GUARD(cenc_out_write(&of, body.data, s.init_bytes));
    CT_GUARD(cenc_out_write(&of, sidx.data, sidx.len));
    CT_GUARD(cenc_out_write(&of, body.data + s.init_bytes, body.len - s.init_bytes));
    s.out_bytes += sidx.len;
    if (st) *st = s;
cleanup:
    media_file_unmap(&body);
    rc = cenc_out_close(&scratch, NULL, rc);
    rc = cenc_out_close(&of, out, rc);
    cenc_writer_free(r.w);
    cenc_gbuf_free(&r.au);
    ct_buf_free(&sidx);
    media_file_unmap(&f);
    return rc;
}
