/* Files: recording an H.264/H.265 input (Annex B or MP4) into an encrypted fragmented MP4 (decrypting one is in
 * cenc_read.c, so that a camera does not carry the reader). Outputs appear complete or not at all. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cenc_priv.h"

#define MAX_PARAMS 16
#define TIMESCALE_ANNEXB 90000

/* ---- output: a temporary file beside OUT, renamed over it once complete ---- */
ct_err cenc_out_open(const char *path, cenc_out_file *o)
{
    static _Atomic unsigned seq;
    o->f = NULL;
    CT_GUARD_RET(ct_snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&seq, 1)));
    /* A recording is as readable as any file the umask allows (it is encrypted): the kernel applies it. */
    o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    CT_ENSURE_RET(o->fd >= 0, ct_fail(CT_ERR_IO, "cannot create a file beside %s: %s", path, strerror(errno)));
    o->f = fdopen(o->fd, "wb");
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
    return rc == CT_OK ? ct_file_sync_dir(path) : rc;
}

/* ---- recording ---- */
typedef struct {
    media_codec codec;
    const cenc_options *o;
    cenc_out_fn out;
    void *out_arg;
    cenc_writer *w;
    const uint8_t *params[MAX_PARAMS];
    size_t param_len[MAX_PARAMS], n_params;
    bool inband_params;
    uint32_t delay; /* presentation delay of B-frame streams */
    uint32_t timescale;
    cenc_gbuf au;
} recorder;

static ct_err rec_start(recorder *r, uint32_t timescale)
{
    ct_err rc = CT_OK;
    ct_buf config = CT_BUF_INIT;
    CT_GUARD(cenc_config_record(r->codec, r->params, r->param_len, r->n_params, &config));
    r->timescale = timescale;
    cenc_track t = {.codec = r->codec, .timescale = timescale, .config = config.data, .config_len = config.len,
                    .inband_params = r->inband_params, .presentation_delay = r->delay};
    for (size_t i = 0; i < r->n_params && !t.width; i++)
        if (media_nal_classify(r->codec, r->params[i], r->param_len[i]).type == (r->codec == MEDIA_H265 ? 33u : 7u))
            cenc_sps_size(r->codec, r->params[i], r->param_len[i], &t.width, &t.height);
    CT_GUARD(cenc_writer_new(&t, r->o, r->out, r->out_arg, &r->w));
cleanup:
    ct_buf_free(&config);
    return rc;
}

static ct_err au_put(recorder *r, const uint8_t *nal, size_t len)
{
    CT_GUARD_RET(cenc_gbuf_be(&r->au, len, 4));
    return cenc_gbuf_put(&r->au, nal, len);
}

/* The next access unit of an Annex B stream at *pos, as the byte range [*start, *end), by H.264 7.4.1.2.3 /
 * H.265 7.4.2.4.4, enough for camera streams: a new one starts at an access unit delimiter, parameter set or
 * prefix SEI after a picture, or at the first slice of the next picture. NAL units after the last picture
 * belong to none here (the recorder puts them with it). CT_ERR_NOT_FOUND at the end. */
static ct_err au_next(media_codec c, const uint8_t *buf, size_t len, size_t *pos, size_t *start, size_t *end)
{
    size_t p = *pos, before, nal_len, skipped;
    const uint8_t *nal;
    bool picture = false;
    ct_err rc;
    *start = p;
    for (before = p; (rc = media_annexb_next(buf, len, &p, &nal, &nal_len, &skipped)) == CT_OK; before = p) {
        media_nal_info info = media_nal_classify(c, nal, nal_len);
        bool vcl = media_nal_is_vcl(info.kind);
        bool starts = info.kind == MEDIA_NAL_AUD || info.kind == MEDIA_NAL_PARAM || info.kind == MEDIA_NAL_SEI ||
                      (vcl && info.first_slice);
        if (picture && starts) break;
        picture = picture || vcl;
    }
    CT_ENSURE_RET(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    if (!picture) return CT_ERR_NOT_FOUND;
    *end = *pos = rc == CT_OK ? before : len;
    return CT_OK;
}

typedef struct {
    uint64_t key;
    uint32_t index;
} order_entry;

static int order_cmp(const void *a, const void *b)
{
    const order_entry *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key ? 1 : x->index < y->index ? -1 : x->index > y->index;
}

/* More reordering than any decoder buffers (H.264 and H.265 hold at most 16 pictures) means slice headers we
 * misread: such a stream is recorded in decoding order rather than refused. */
#define MAX_REORDER 16

/* First pass over an Annex B stream: the parameter sets of its first picture, and each access unit's composition
 * offset from picture order counts (Annex B carries no timestamps; B-frames are presented out of decoding order).
 * A picture's presentation slot is its rank in presentation order; the whole timeline is delayed by the deepest
 * reordering so that no offset is negative, and the edit list (cenc_track.presentation_delay) takes that back. */
static ct_err annexb_timing(recorder *r, const uint8_t *buf, size_t len, uint32_t dur, int32_t **cts_out, size_t *n_out)
{
    ct_err rc = CT_OK;
    cenc_order *ord = calloc(1, sizeof *ord);
    order_entry *e = NULL;
    int32_t *cts = NULL;
    size_t n = 0, cap = 0, pos = 0, start, end, p, nal_len, skipped;
    const uint8_t *nal;
    CT_ENSURE(ord, CT_ERR_NOMEM);
    while ((rc = au_next(r->codec, buf, len, &pos, &start, &end)) == CT_OK) {
        CT_ENSURE_MSG(n < MEDIA_MP4_MAX_SAMPLES, CT_ERR_TOO_LARGE, "more than %u pictures", MEDIA_MP4_MAX_SAMPLES);
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            order_entry *g = realloc(e, cap * sizeof *e);
            CT_ENSURE(g, CT_ERR_NOMEM);
            e = g;
        }
        e[n] = (order_entry){UINT64_MAX, (uint32_t)n};
        bool have = false;
        for (p = start; media_annexb_next(buf, end, &p, &nal, &nal_len, &skipped) == CT_OK;) {
            uint64_t key;
            if (n == 0 && media_nal_classify(r->codec, nal, nal_len).kind == MEDIA_NAL_PARAM && r->n_params < MAX_PARAMS) {
                r->params[r->n_params] = nal;
                r->param_len[r->n_params++] = nal_len;
            }
            if (cenc_order_nal(ord, r->codec, nal, nal_len, &key) && !have) e[n].key = key, have = true;
        }
        n++;
    }
    CT_ENSURE(rc == CT_ERR_NOT_FOUND, rc);
    rc = CT_OK;
    cts = calloc(n ? n : 1, sizeof *cts);
    CT_ENSURE(cts, CT_ERR_NOMEM);
    qsort(e, n, sizeof *e, order_cmp);
    int64_t depth = 0;
    for (size_t rank = 0; rank < n; rank++) {
        int64_t behind = (int64_t)e[rank].index - (int64_t)rank;
        depth = behind > depth ? behind : depth;
    }
    if (depth > MAX_REORDER) {
        ct_log(CT_LOG_WARN, "record_order", "depth=%lld msg=\"picture order counts past any decoder's reordering: "
               "recorded in decoding order\"", (long long)depth);
    } else if (depth > 0) {
        for (size_t rank = 0; rank < n; rank++)
            cts[e[rank].index] = (int32_t)(((int64_t)rank - e[rank].index + depth) * dur);
        r->delay = (uint32_t)(depth * dur);
    }
    *cts_out = cts;
    *n_out = n;
    cts = NULL;
cleanup:
    free(cts);
    free(e);
    free(ord);
    return rc;
}

static ct_err record_annexb(recorder *r, const uint8_t *buf, size_t len, unsigned fps)
{
    ct_err rc = CT_OK;
    int32_t *cts = NULL;
    size_t n = 0, pos = 0, start, end, p, nal_len, skipped;
    const uint8_t *nal;
    uint32_t dur = TIMESCALE_ANNEXB / (fps ? fps : 30);
    CT_GUARD(media_annexb_guess(buf, len, &r->codec));
    CT_GUARD(annexb_timing(r, buf, len, dur, &cts, &n));
    CT_ENSURE_MSG(n > 0, CT_ERR_BAD_REQUEST, "the stream holds no picture");
    r->inband_params = true; /* a camera's elementary stream repeats its parameter sets at every IRAP */
    CT_GUARD(rec_start(r, TIMESCALE_ANNEXB));
    for (size_t i = 0; i < n && au_next(r->codec, buf, len, &pos, &start, &end) == CT_OK; i++) {
        bool sync = false;
        /* NAL units after the last picture (a signed stream's last signature SEI) go with it. */
        if (i + 1 == n) end = len;
        r->au.len = 0;
        for (p = start; media_annexb_next(buf, end, &p, &nal, &nal_len, &skipped) == CT_OK;) {
            CT_GUARD(au_put(r, nal, nal_len));
            sync = sync || media_nal_classify(r->codec, nal, nal_len).kind == MEDIA_NAL_IRAP;
        }
        cenc_sample s = {.data = r->au.p, .len = r->au.len, .duration = dur, .cts = cts[i], .sync = sync};
        CT_GUARD(cenc_writer_sample(r->w, &s));
    }
cleanup:
    free(cts);
    return rc;
}

/* MP4 input: the video track's samples with their NAL lengths re-written to 4 bytes, its timing kept. */
static ct_err record_mp4(recorder *r, const uint8_t *buf, size_t len)
{
    ct_err rc = CT_OK;
    media_mp4 *m = NULL;
    media_mp4_video v;
    media_sample s, next;
    size_t pos, nal_len;
    const uint8_t *nal;
    CT_GUARD(media_mp4_open(buf, len, &m));
    CT_GUARD(media_mp4_video_track(m, &v));
    r->codec = v.codec;
    while (r->n_params < MAX_PARAMS &&
           (rc = media_mp4_param_set(m, r->n_params, &r->params[r->n_params], &r->param_len[r->n_params])) == CT_OK)
        r->n_params++;
    CT_ENSURE(rc == CT_ERR_NOT_FOUND || rc == CT_OK, rc);
    /* The presentation starts at the earliest composition time; parameter sets inside the first sample mean the
     * stream carries them in band. */
    int64_t first = INT64_MAX;
    for (uint32_t i = 0; i < v.samples; i++) {
        CT_GUARD(media_mp4_sample(m, i, &s));
        if ((int64_t)s.dts + s.cts < first) first = (int64_t)s.dts + s.cts;
        if (i > 0) continue;
        CT_ENSURE_MSG(s.off <= len && s.size <= len - s.off, CT_ERR_BAD_REQUEST, "sample 0 outside the file");
        for (pos = 0; media_lp_next(buf + s.off, s.size, v.nal_length_size, &pos, &nal, &nal_len) == CT_OK;)
            r->inband_params = r->inband_params || media_nal_classify(r->codec, nal, nal_len).kind == MEDIA_NAL_PARAM;
    }
    ct_err_clear();
    r->delay = first > 0 && first != INT64_MAX && first <= UINT32_MAX ? (uint32_t)first : 0;
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
        r->au.len = 0;
        for (pos = 0; (rc = media_lp_next(buf + s.off, s.size, v.nal_length_size, &pos, &nal, &nal_len)) == CT_OK;)
            CT_GUARD(au_put(r, nal, nal_len));
        CT_ENSURE(rc == CT_ERR_NOT_FOUND, rc);
        cenc_sample out = {.data = r->au.p, .len = r->au.len, .duration = dur, .cts = s.cts, .sync = s.sync};
        CT_GUARD(cenc_writer_sample(r->w, &out));
    }
    rc = CT_OK;
cleanup:
    media_mp4_free(m);
    return rc;
}

/* Feeds IN (mapped) through a new writer (r->w, finished on success) whose output goes to r->out. */
static ct_err record_input(const char *in, recorder *r, const media_file *f, unsigned fps, cenc_stats *st)
{
    if (media_is_mp4(f->data, f->len)) CT_GUARD_RET(record_mp4(r, f->data, f->len));
    else CT_GUARD_RET(record_annexb(r, f->data, f->len, fps));
    CT_ENSURE_RET(r->w, ct_fail(CT_ERR_BAD_REQUEST, "%s holds no picture", in));
    return cenc_writer_finish(r->w, st);
}

/* Init segment, sidx, fragments: the fragments go to a scratch file first, as the sidx needs their sizes. */
ct_err cenc_record_file(const char *in, const char *out, const cenc_options *o, unsigned fps, cenc_stats *st)
{
    ct_err rc = CT_OK;
    media_file f = {0}, body = {0};
    cenc_out_file scratch = {0}, of = {0};
    ct_buf sidx = CT_BUF_INIT;
    cenc_stats s;
    recorder r = {.o = o, .out = cenc_out_write, .out_arg = &scratch, .au = {.max = CENC_MAX_SAMPLE}};
    CT_GUARD(media_file_map(in, &f));
    CT_GUARD(cenc_out_open(out, &scratch));
    CT_GUARD(record_input(in, &r, &f, fps, &s));
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

/* ---- live CMAF segments: what a recorder stores as it comes ---- */
#define SEGMENT_MAX (512u << 20)
#define PLAYLIST_MAX (4u << 20)
#define INIT_NAME "init.mp4"
#define PLAYLIST_NAME "index.m3u8"

typedef struct {
    const char *dir;
    recorder *r;
    bool init_done;
    cenc_gbuf seg;      /* the current segment's fragments */
    cenc_gbuf entries;  /* the playlist's segment lines so far */
    double longest;     /* seconds */
} segmenter;

static ct_err write_in_dir(const segmenter *g, const char *name, const void *p, size_t n)
{
    char path[1100];
    CT_GUARD_RET(ct_path_join(path, sizeof path, g->dir, name));
    return ct_file_write_atomic(path, p, n, 0644);
}

static ct_err seg_out(void *arg, const uint8_t *p, size_t n)
{
    segmenter *g = arg;
    if (g->init_done) return cenc_gbuf_put(&g->seg, p, n);
    g->init_done = true; /* the writer hands its init segment over in one piece */
    return write_in_dir(g, INIT_NAME, p, n);
}

static ct_err put_str(cenc_gbuf *b, const char *s) { return cenc_gbuf_put(b, s, strlen(s)); }

/* The playlist (HLS, RFC 8216 with fMP4 segments): a live event while recording, closed with ENDLIST. Each
 * encrypted segment names its key by its pssh under camtrust's system ID, as DRM systems do in HLS. */
static ct_err write_playlist(segmenter *g, bool end)
{
    ct_err rc = CT_OK;
    cenc_gbuf b = {.max = PLAYLIST_MAX};
    char line[160];
    CT_GUARD(put_str(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:0\n"));
    /* The target duration should not change while the playlist grows: the configured segment length, unless a
     * longer GOP made a segment longer (RFC 8216 4.3.3.1: every EXTINF, rounded, at most the target). */
    unsigned long target = (g->r->o->segment_ms + 999) / 1000, longest = (unsigned long)(g->longest + 0.5);
    CT_GUARD(ct_snprintf(line, sizeof line, "#EXT-X-TARGETDURATION:%lu\n#EXT-X-MAP:URI=\"" INIT_NAME "\"\n",
                         longest > target ? longest : target));
    CT_GUARD(put_str(&b, line));
    CT_GUARD(cenc_gbuf_put(&b, g->entries.p, g->entries.len));
    if (end) CT_GUARD(put_str(&b, "#EXT-X-ENDLIST\n"));
    CT_GUARD(write_in_dir(g, PLAYLIST_NAME, b.p, b.len));
cleanup:
    cenc_gbuf_free(&b);
    return rc;
}

/* The key line of an encrypted segment: its first moof's camtrust pssh. */
static ct_err key_line(segmenter *g)
{
    ct_err rc = CT_OK;
    media_box moof, pssh;
    ct_buf b64 = CT_BUF_INIT;
    char line[128];
    if (g->r->o->scheme == CENC_CLEAR) return CT_OK;
    CT_GUARD(media_box_find(g->seg.p, 0, g->seg.len, MEDIA_FOURCC('m', 'o', 'o', 'f'), &moof));
    CT_GUARD(media_box_find(g->seg.p, moof.off + moof.hdr, moof.off + moof.size, MEDIA_FOURCC('p', 's', 's', 'h'),
                            &pssh));
    CT_GUARD(ct_buf_alloc(&b64, ((size_t)pssh.size + 2) / 3 * 4));
    CT_GUARD(ct_base64_encode(g->seg.p + pssh.off, (size_t)pssh.size, false, &b64));
    CT_GUARD(ct_snprintf(line, sizeof line, "#EXT-X-KEY:METHOD=%s,URI=\"data:text/plain;base64,",
                         g->r->o->scheme == CENC_CBCS ? "SAMPLE-AES" : "SAMPLE-AES-CTR"));
    CT_GUARD(put_str(&g->entries, line));
    CT_GUARD(cenc_gbuf_put(&g->entries, b64.data, b64.len));
    CT_GUARD(put_str(&g->entries, "\",KEYFORMAT=\"urn:uuid:ffc3dd56-e680-466e-8df4-9c49c57641d2\","
                                  "KEYFORMATVERSIONS=\"1\"\n"));
cleanup:
    ct_buf_free(&b64);
    return rc;
}

/* A segment is complete: styp, its own sidx (players seek with it; ffmpeg 5.1 needs it to decrypt a segment of
 * several fragments), its fragments; then the playlist names it. */
static ct_err seg_done(void *arg, const cenc_segment *s)
{
    ct_err rc = CT_OK;
    segmenter *g = arg;
    ct_buf sidx = CT_BUF_INIT;
    cenc_gbuf file = {.max = SEGMENT_MAX};
    char name[32], line[64];
    static const uint8_t styp[] = {0, 0, 0, 24, 's', 't', 'y', 'p', 'm', 's', 'd', 'h', 0, 0, 0, 0,
                                   'm', 's', 'd', 'h', 'c', 'm', 'f', 's'};
    CT_GUARD(cenc_writer_index_from(g->r->w, s->first_fragment, &sidx));
    CT_GUARD(cenc_gbuf_put(&file, styp, sizeof styp));
    CT_GUARD(cenc_gbuf_put(&file, sidx.data, sidx.len));
    CT_GUARD(cenc_gbuf_put(&file, g->seg.p, g->seg.len));
    CT_GUARD(ct_snprintf(name, sizeof name, "seg-%06llu.m4s", (unsigned long long)s->index));
    CT_GUARD(write_in_dir(g, name, file.p, file.len));
    double seconds = (double)s->duration / g->r->timescale;
    CT_GUARD(key_line(g));
    g->seg.len = 0;
    CT_GUARD(ct_snprintf(line, sizeof line, "#EXTINF:%.3f,\n%s\n", seconds, name));
    CT_GUARD(put_str(&g->entries, line));
    g->longest = seconds > g->longest ? seconds : g->longest;
    CT_GUARD(write_playlist(g, false));
cleanup:
    cenc_gbuf_free(&file);
    ct_buf_free(&sidx);
    return rc;
}

ct_err cenc_record_segments(const char *in, const char *dir, const cenc_options *o, unsigned fps, cenc_stats *st)
{
    ct_err rc = CT_OK;
    media_file f = {0};
    cenc_options so = *o;
    segmenter g = {.dir = dir, .seg = {.max = SEGMENT_MAX}, .entries = {.max = PLAYLIST_MAX}};
    recorder r = {.o = &so, .out = seg_out, .out_arg = &g, .au = {.max = CENC_MAX_SAMPLE}};
    g.r = &r;
    so.segment_done = seg_done;
    so.segment_arg = &g;
    CT_GUARD(media_file_map(in, &f));
    CT_GUARD(ct_mkdir(dir, 0755));
    CT_GUARD(record_input(in, &r, &f, fps, st));
    CT_GUARD(write_playlist(&g, true));
cleanup:
    cenc_writer_free(r.w);
    cenc_gbuf_free(&r.au);
    cenc_gbuf_free(&g.seg);
    cenc_gbuf_free(&g.entries);
    media_file_unmap(&f);
    return rc;
}
