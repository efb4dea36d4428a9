/* Files: recording an H.264/H.265 input (Annex B or MP4) into an encrypted fragmented MP4 (decrypting one is in
 * cenc_read.c, so that a camera does not carry the reader). Outputs appear complete or not at all. */
#define _GNU_SOURCE /* DT_DIR, O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cenc_priv.h"

#define MAX_PARAMS 16
#define TIMESCALE_ANNEXB 90000

/* ---- output: a temporary file beside OUT, renamed over it once complete ----
 * Unnamed (cenc_out_open_unnamed): the file is created without a name (O_TMPFILE) and linked to OUT.tmp.PID only
 * once whole (cenc_out_name), then renamed as a named one is: a writer killed midway leaves nothing behind (the
 * kernel frees an unnamed file with its last descriptor); one killed between link and rename leaves OUT.tmp.PID,
 * which the next open's sweep removes. The link goes through /proc (linkat's AT_EMPTY_PATH needs a privilege):
 * without /proc (a chroot, a minimal container), or on a file system without unnamed files, the file is named
 * from the start. */
static ct_err out_open(const char *path, unsigned mode, bool unnamed, cenc_out_file *o)
{
    const char *base = strrchr(path, '/');
    o->f = NULL;
    o->unnamed = false;
    /* The folder, "/"-ended ("." for a bare name), in o->tmp for the moment. */
    CT_GUARD_RET(ct_snprintf(o->tmp, sizeof o->tmp, "%.*s", base ? (int)(base - path) + 1 : 1, base ? path : "."));
    /* Best effort: a leftover we may not remove (another user's, in a shared sticky folder) must not stop the write. */
    if (ct_stale_remove(o->tmp, base ? base + 1 : path, ".tmp.") != CT_OK)
        ct_log(CT_LOG_WARN, "stale_left", "path=%s", CT_LOGQ(path));
    if (unnamed && access("/proc/self/fd", X_OK) == 0) {
        o->fd = open(o->tmp, O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
        CT_ENSURE_RET(o->fd >= 0 || errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL,
                      ct_fail(CT_ERR_IO, "cannot create a file in %s: %s", o->tmp, strerror(errno)));
        o->unnamed = o->fd >= 0;
    }
    ct_err rc = ct_snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", path, (long)getpid());
    if (rc != CT_OK && o->unnamed) close(o->fd);
    CT_GUARD_RET(rc);
    (void)unlink(o->tmp);
    if (!o->unnamed) o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    CT_ENSURE_RET(o->fd >= 0, ct_fail(CT_ERR_IO, "cannot create a file beside %s: %s", path, strerror(errno)));
    o->f = fdopen(o->fd, "wb");
    if (!o->f) {
        close(o->fd);
        unlink(o->tmp);
        return ct_fail(CT_ERR_IO, "cannot write %s: %s", o->tmp, strerror(errno));
    }
    return CT_OK;
}

ct_err cenc_out_open(const char *path, unsigned mode, cenc_out_file *o)
{
    return out_open(path, mode, false, o);
}

ct_err cenc_out_open_unnamed(const char *path, unsigned mode, cenc_out_file *o)
{
    return out_open(path, mode, true, o);
}

ct_err cenc_out_name(cenc_out_file *o, ct_err rc)
{
    char self[64];
    if (rc != CT_OK || !o->unnamed) return rc;
    CT_GUARD_RET(ct_snprintf(self, sizeof self, "/proc/self/fd/%d", o->fd));
    CT_ENSURE_RET(linkat(AT_FDCWD, self, AT_FDCWD, o->tmp, AT_SYMLINK_FOLLOW) == 0,
                  ct_fail(CT_ERR_IO, "cannot link %s: %s", o->tmp, strerror(errno)));
    ct_failpoint("decrypt:linked"); /* kill tests: OUT.tmp.PID named, not yet renamed */
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
    if (rc == CT_OK && rename(o->tmp, path) != 0)
        rc = ct_fail(CT_ERR_IO, "cannot rename to %s: %s", path, strerror(errno));
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

static ct_err feed_aus(recorder *r, const uint8_t *buf, size_t len, const int32_t *cts, size_t n, uint32_t dur);

static ct_err record_annexb(recorder *r, const uint8_t *buf, size_t len, unsigned fps)
{
    ct_err rc = CT_OK;
    int32_t *cts = NULL;
    size_t n = 0;
    uint32_t dur = TIMESCALE_ANNEXB / (fps ? fps : 30);
    CT_GUARD(media_annexb_guess(buf, len, &r->codec));
    CT_GUARD(annexb_timing(r, buf, len, dur, &cts, &n));
    CT_ENSURE_MSG(n > 0, CT_ERR_BAD_REQUEST, "the stream holds no picture");
    r->inband_params = true; /* a camera's elementary stream repeats its parameter sets at every IRAP */
    CT_GUARD(rec_start(r, TIMESCALE_ANNEXB));
    CT_GUARD(feed_aus(r, buf, len, cts, n, dur));
cleanup:
    free(cts);
    return rc;
}

/* Hands the `n` access units of `buf` (Annex B) to the writer, with their composition offsets. */
static ct_err feed_aus(recorder *r, const uint8_t *buf, size_t len, const int32_t *cts, size_t n, uint32_t dur)
{
    size_t pos = 0, start, end, p, nal_len, skipped;
    const uint8_t *nal;
    for (size_t i = 0; i < n && au_next(r->codec, buf, len, &pos, &start, &end) == CT_OK; i++) {
        bool sync = false;
        /* NAL units after the last picture (a signed stream's last signature SEI) go with it. */
        if (i + 1 == n) end = len;
        r->au.len = 0;
        for (p = start; media_annexb_next(buf, end, &p, &nal, &nal_len, &skipped) == CT_OK;) {
            CT_GUARD_RET(au_put(r, nal, nal_len));
            sync = sync || media_nal_classify(r->codec, nal, nal_len).kind == MEDIA_NAL_IRAP;
        }
        cenc_sample s = {.data = r->au.p, .len = r->au.len, .duration = dur, .cts = cts[i], .sync = sync};
        CT_GUARD_RET(cenc_writer_sample(r->w, &s));
    }
    return CT_OK;
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
    char scratch_path[1024];
    recorder r = {.o = o, .out = cenc_out_write, .out_arg = &scratch, .au = {.max = CENC_MAX_SAMPLE}};
    CT_GUARD(media_file_map(in, &f));
    /* A recording is as readable as any file the umask allows (it is encrypted): the kernel applies it. */
    CT_GUARD(ct_snprintf(scratch_path, sizeof scratch_path, "%s.body", out)); /* OUT.body.tmp.PID, never renamed */
    CT_GUARD(cenc_out_open(scratch_path, 0666, &scratch));
    CT_GUARD(record_input(in, &r, &f, fps, &s));
    CT_GUARD(cenc_writer_index(r.w, &sidx));
    CT_ENSURE_MSG(fflush(scratch.f) == 0, CT_ERR_IO, "cannot write %s: %s", scratch.tmp, strerror(errno));
    CT_GUARD(media_file_map(scratch.tmp, &body));
    CT_ENSURE_MSG(body.len == s.out_bytes && s.init_bytes <= body.len, CT_ERR_IO, "%s: short write", scratch.tmp);
    CT_GUARD(cenc_out_open(out, 0666, &of));
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
#define LIVE_MAX_WINDOW 1000
#define RECORD_MAX_FILES 100000 /* segments looked at when rotating the recording */

typedef struct {
    const char *dir;
    recorder *r;
    bool init_done;
    cenc_gbuf seg;      /* the current segment's fragments */
    cenc_gbuf entries;  /* the playlist's segment lines (the last `window` segments when live) */
    size_t starts[LIVE_MAX_WINDOW + 1]; /* live: where each segment's lines start in `entries` */
    size_t n_entries;
    uint64_t first_seq;  /* index of the first segment in the playlist */
    unsigned window;     /* 0: every segment (a recording) */
    char record[1024];   /* live: the recording's folder of this run, "" without */
    const cenc_live_config *live;
    double longest;      /* seconds */
} segmenter;

static ct_err write_in(const char *dir, const char *name, const void *p, size_t n)
{
    char path[1100];
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, name));
    return ct_file_write_atomic(path, p, n, 0644);
}

static ct_err write_in_dir(const segmenter *g, const char *name, const void *p, size_t n)
{
    CT_GUARD_RET(write_in(g->dir, name, p, n));
    /* The recording on "SD card": the same bytes, each file synced and renamed whole. */
    return g->record[0] && strcmp(name, PLAYLIST_NAME) != 0 ? write_in(g->record, name, p, n) : CT_OK;
}

static ct_err seg_out(void *arg, const uint8_t *p, size_t n)
{
    segmenter *g = arg;
    if (g->init_done) return cenc_gbuf_put(&g->seg, p, n);
    g->init_done = true; /* the writer hands its init segment over in one piece */
    return write_in_dir(g, INIT_NAME, p, n);
}

static ct_err put_str(cenc_gbuf *b, const char *s) { return cenc_gbuf_put(b, s, strlen(s)); }

/* The playlist (HLS, RFC 8216 with fMP4 segments): a recording is an EVENT playlist that only grows; live, a
 * sliding window of the last segments with EXT-X-MEDIA-SEQUENCE. Closed with ENDLIST when the input ends. Each
 * encrypted segment names its key by its pssh under camtrust's system ID, as DRM systems do in HLS. */
static ct_err write_playlist(segmenter *g, bool end)
{
    ct_err rc = CT_OK;
    cenc_gbuf b = {.max = PLAYLIST_MAX};
    char line[160];
    CT_GUARD(ct_snprintf(line, sizeof line, "#EXTM3U\n#EXT-X-VERSION:7\n%s#EXT-X-MEDIA-SEQUENCE:%llu\n",
                         g->window ? "" : "#EXT-X-PLAYLIST-TYPE:EVENT\n", (unsigned long long)g->first_seq));
    CT_GUARD(put_str(&b, line));
    /* The target duration should not change while the playlist grows: the configured segment length, unless a
     * longer GOP made a segment longer (RFC 8216 4.3.3.1: every EXTINF, rounded, at most the target). */
    unsigned long target = (g->r->o->segment_ms + 999) / 1000, longest = (unsigned long)(g->longest + 0.5);
    CT_GUARD(ct_snprintf(line, sizeof line, "#EXT-X-TARGETDURATION:%lu\n#EXT-X-MAP:URI=\"" INIT_NAME "\"\n",
                         longest > target ? longest : target));
    CT_GUARD(put_str(&b, line));
    CT_GUARD(cenc_gbuf_put(&b, g->entries.p, g->entries.len));
    if (end) CT_GUARD(put_str(&b, "#EXT-X-ENDLIST\n"));
    CT_GUARD(write_in(g->dir, PLAYLIST_NAME, b.p, b.len));
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

static ct_err seg_name(uint64_t index, char *name, size_t max)
{
    return ct_snprintf(name, max, "seg-%06llu.m4s", (unsigned long long)index);
}

/* Live: the playlist keeps the last `window` segments; a segment's file stays one more window after it left
 * the playlist (RFC 8216 6.2.2: clients may still be fetching it), then goes. */
static ct_err slide(segmenter *g)
{
    char name[32], path[1100];
    if (!g->window || g->n_entries <= g->window) return CT_OK;
    size_t cut = g->starts[1];
    memmove(g->entries.p, g->entries.p + cut, g->entries.len - cut);
    g->entries.len -= cut;
    for (size_t i = 1; i < g->n_entries; i++) g->starts[i - 1] = g->starts[i] - cut;
    g->n_entries--;
    g->first_seq++;
    if (g->first_seq > g->window) {
        CT_GUARD_RET(seg_name(g->first_seq - g->window - 1, name, sizeof name));
        CT_GUARD_RET(ct_path_join(path, sizeof path, g->dir, name));
        if (unlink(path) != 0 && errno != ENOENT)
            return ct_fail(CT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    }
    return CT_OK;
}

static ct_err record_rotate(segmenter *g);

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
    CT_GUARD(seg_name(s->index, name, sizeof name));
    CT_GUARD(write_in_dir(g, name, file.p, file.len));
    double seconds = (double)s->duration / g->r->timescale;
    if (g->window) g->starts[g->n_entries++] = g->entries.len;
    CT_GUARD(key_line(g));
    g->seg.len = 0;
    CT_GUARD(ct_snprintf(line, sizeof line, "#EXTINF:%.3f,\n%s\n", seconds, name));
    CT_GUARD(put_str(&g->entries, line));
    g->longest = seconds > g->longest ? seconds : g->longest;
    CT_GUARD(slide(g));
    CT_GUARD(write_playlist(g, false));
    if (g->record[0]) CT_GUARD(record_rotate(g));
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

/* ---- the recording's rotation ---- */
typedef struct {
    char run[64], name[32];
    uint64_t size;
    time_t mtime;
} rec_file;

static int rec_file_cmp(const void *a, const void *b)
{
    const rec_file *x = a, *y = b;
    int c = strcmp(x->run, y->run);
    return c ? c : strcmp(x->name, y->name);
}

static bool is_segment_name(const char *n)
{
    size_t len = strlen(n);
    return len > 8 && len < 32 && strncmp(n, "seg-", 4) == 0 && strcmp(n + len - 4, ".m4s") == 0 &&
           strspn(n + 4, "0123456789") == len - 8;
}

/* Lists the segments of every run folder of the recording (oldest run first: names are UTC times). */
static ct_err rec_list(const char *root, cenc_gbuf *files, size_t *n)
{
    ct_err rc = CT_OK;
    DIR *d = opendir(root), *sd = NULL;
    struct dirent *e, *f;
    struct stat sb;
    char path[1100], sub[1100];
    CT_ENSURE_MSG(d, CT_ERR_IO, "cannot read %s: %s", root, strerror(errno));
    *n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof ((rec_file *)0)->run) continue;
        CT_GUARD(ct_path_join(sub, sizeof sub, root, e->d_name));
        if (lstat(sub, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        sd = opendir(sub);
        if (!sd) continue;
        while ((f = readdir(sd))) {
            if (!is_segment_name(f->d_name)) continue;
            CT_GUARD(ct_path_join(path, sizeof path, sub, f->d_name));
            if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
            CT_ENSURE_MSG(*n < RECORD_MAX_FILES, CT_ERR_TOO_LARGE, "%s: more than %d segments", root,
                          RECORD_MAX_FILES);
            rec_file rf = {.size = (uint64_t)sb.st_size, .mtime = sb.st_mtime};
            CT_GUARD(ct_strlcpy(rf.run, sizeof rf.run, e->d_name));
            CT_GUARD(ct_strlcpy(rf.name, sizeof rf.name, f->d_name));
            CT_GUARD(cenc_gbuf_put(files, &rf, sizeof rf));
            (*n)++;
        }
        closedir(sd);
        sd = NULL;
    }
cleanup:
    if (sd) closedir(sd);
    if (d) closedir(d);
    return rc;
}

/* Removes a run folder of an earlier run whose segments are all gone: its init segment and the folder. */
static void rec_drop_run(const char *root, const char *run)
{
    char sub[1100], path[1100];
    if (ct_path_join(sub, sizeof sub, root, run) != CT_OK || ct_path_join(path, sizeof path, sub, INIT_NAME) != CT_OK)
        return;
    (void)unlink(path);
    if (rmdir(sub) == 0) ct_log(CT_LOG_INFO, "record_rotated", "run=%s", CT_LOGQ(run));
}

/* Oldest segments first, while the recording is over its size or age; never the newest segment. */
static ct_err record_rotate(segmenter *g)
{
    ct_err rc = CT_OK;
    const cenc_live_config *c = g->live;
    cenc_gbuf list = {.max = (size_t)RECORD_MAX_FILES * sizeof(rec_file)};
    size_t n = 0;
    uint64_t total = 0;
    time_t now = time(NULL);
    char path[1100], sub[1100];
    if (!c->record_max_bytes && !c->record_max_age_s) return CT_OK;
    CT_GUARD(rec_list(c->record_dir, &list, &n));
    rec_file *f = (rec_file *)(void *)list.p;
    if (n) qsort(f, n, sizeof *f, rec_file_cmp);
    for (size_t i = 0; i < n; i++) total += f[i].size;
    for (size_t i = 0; i + 1 < n; i++) {
        bool big = c->record_max_bytes && total > c->record_max_bytes;
        bool old = c->record_max_age_s && now - f[i].mtime > (time_t)c->record_max_age_s;
        if (!big && !old) break;
        CT_GUARD(ct_path_join(sub, sizeof sub, c->record_dir, f[i].run));
        CT_GUARD(ct_path_join(path, sizeof path, sub, f[i].name));
        if (unlink(path) == 0) total -= f[i].size;
        bool run_ends = strcmp(f[i].run, f[i + 1].run) != 0;
        if (run_ends) rec_drop_run(c->record_dir, f[i].run);
    }
cleanup:
    cenc_gbuf_free(&list);
    return rc;
}

/* What killed runs left: temporaries of files never renamed into place (a segment is there whole or not at all). */
static ct_err rec_clean(const char *root)
{
    ct_err rc = CT_OK;
    DIR *d = opendir(root);
    struct dirent *e;
    char sub[1100];
    CT_ENSURE_MSG(d, CT_ERR_IO, "cannot read %s: %s", root, strerror(errno));
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && e->d_type == DT_DIR) {
            CT_GUARD(ct_path_join(sub, sizeof sub, root, e->d_name));
            CT_GUARD(ct_stale_remove(sub, "", ".tmp."));
        }
cleanup:
    if (d) closedir(d);
    return rc;
}

/* ---- live: Annex B as it comes ---- */
#define LIVE_PENDING_MAX (CENC_MAX_SAMPLE + (1u << 20))

struct cenc_live {
    cenc_live_config c;
    cenc_options o;
    recorder r;
    segmenter g;
    cenc_gbuf pending;   /* input not yet in a complete access unit */
    cenc_gbuf gop;       /* the current GOP's access units (Annex B) */
    size_t gop_aus;
    uint32_t dur, delay0;
    bool started, warned_lead, warned_order;
    cenc_recipient rcpt[CENC_MAX_RECIPIENTS]; /* the writer copies them when it starts; until then, here */
};

ct_err cenc_live_new(const cenc_live_config *c, const cenc_options *o, cenc_live **out)
{
    ct_err rc = CT_OK;
    char run[64];
    struct tm tm;
    time_t now = time(NULL);
    CT_ENSURE_RET(c->window > 0 && c->window <= LIVE_MAX_WINDOW,
                  ct_fail(CT_ERR_USAGE, "window %u: 1 to %d segments", c->window, LIVE_MAX_WINDOW));
    CT_ENSURE_RET(o->segment_ms > 0, ct_fail(CT_ERR_USAGE, "a live stream needs a segment length"));
    cenc_live *l = calloc(1, sizeof *l);
    CT_ENSURE_RET(l, CT_ERR_NOMEM);
    l->c = *c;
    l->o = *o;
    CT_ENSURE(o->n_recipients <= CENC_MAX_RECIPIENTS, ct_fail(CT_ERR_BAD_REQUEST, "%zu recipients", o->n_recipients));
    if (o->n_recipients) memcpy(l->rcpt, o->recipients, o->n_recipients * sizeof *l->rcpt);
    l->o.recipients = l->rcpt;
    l->o.segment_done = seg_done;
    l->o.segment_arg = &l->g;
    l->r = (recorder){.o = &l->o, .out = seg_out, .out_arg = &l->g, .au = {.max = CENC_MAX_SAMPLE},
                      .inband_params = true};
    l->g = (segmenter){.dir = l->c.dir, .r = &l->r, .seg = {.max = SEGMENT_MAX}, .entries = {.max = PLAYLIST_MAX},
                       .window = c->window, .live = &l->c};
    l->pending.max = LIVE_PENDING_MAX;
    l->gop.max = CENC_MAX_FRAGMENT;
    l->dur = TIMESCALE_ANNEXB / (c->fps ? c->fps : 30);
    CT_GUARD(ct_mkdir(c->dir, 0755));
    CT_GUARD(ct_stale_remove(c->dir, "", ".tmp."));
    if (c->record_dir) {
        /* One folder per run (its own init segment), named by its start in UTC so that names sort by age. */
        CT_GUARD(ct_mkdir(c->record_dir, 0755));
        CT_GUARD(rec_clean(c->record_dir));
        CT_ENSURE_MSG(gmtime_r(&now, &tm) && strftime(run, sizeof run, "%Y%m%dT%H%M%SZ", &tm) > 0, CT_ERR_INTERNAL,
                      "no time");
        CT_GUARD(ct_path_join(l->g.record, sizeof l->g.record, c->record_dir, run));
        CT_GUARD(ct_snprintf(run, sizeof run, "-%ld", (long)getpid()));
        CT_ENSURE_MSG(strlen(l->g.record) + strlen(run) < sizeof l->g.record, CT_ERR_CONFIG, "record path too long");
        memcpy(l->g.record + strlen(l->g.record), run, strlen(run) + 1);
        CT_GUARD(ct_mkdir(l->g.record, 0755));
        CT_GUARD(ct_file_sync_dir(l->g.record));
    }
    *out = l;
    l = NULL;
cleanup:
    cenc_live_free(l);
    return rc;
}

static bool au_is_irap(media_codec c, const uint8_t *au, size_t len)
{
    size_t p = 0, nal_len, skipped;
    const uint8_t *nal;
    while (media_annexb_next(au, len, &p, &nal, &nal_len, &skipped) == CT_OK)
        if (media_nal_classify(c, nal, nal_len).kind == MEDIA_NAL_IRAP) return true;
    return false;
}

/* The GOP is complete: its timing, its samples, its fragment out now (or the stream's end). */
static ct_err gop_done(cenc_live *l, bool last)
{
    ct_err rc = CT_OK;
    int32_t *cts = NULL;
    size_t n = 0;
    recorder *r = &l->r;
    r->n_params = 0;
    r->delay = 0;
    CT_GUARD(annexb_timing(r, l->gop.p, l->gop.len, l->dur, &cts, &n));
    if (!l->started) {
        CT_GUARD(rec_start(r, TIMESCALE_ANNEXB));
        l->started = true;
        l->delay0 = r->delay;
    } else if (r->delay != l->delay0) {
        /* The init segment fixed the presentation delay: a GOP reordering deeper is kept in decoding order. */
        if (!l->warned_order)
            ct_log(CT_LOG_WARN, "live_order", "msg=\"a GOP reorders pictures more than the first: decoding order\"");
        l->warned_order = true;
        memset(cts, 0, n * sizeof *cts);
    }
    CT_GUARD(feed_aus(r, l->gop.p, l->gop.len, cts, n, l->dur));
    CT_GUARD(last ? cenc_writer_finish(r->w, NULL) : cenc_writer_gop_end(r->w));
    l->gop.len = 0;
    l->gop_aus = 0;
cleanup:
    free(cts);
    return rc;
}

static ct_err take_au(cenc_live *l, const uint8_t *au, size_t len)
{
    bool irap = au_is_irap(l->r.codec, au, len);
    if (irap && l->gop_aus) CT_GUARD_RET(gop_done(l, false));
    if (!irap && !l->gop_aus) {
        /* Joined the encoder mid-GOP: nothing decodable until its next IRAP picture. */
        if (!l->warned_lead) ct_log(CT_LOG_WARN, "live_skip", "msg=\"pictures before the first IRAP dropped\"");
        l->warned_lead = true;
        return CT_OK;
    }
    CT_ENSURE_RET(l->gop_aus < CENC_MAX_FRAGMENT_SAMPLES,
                  ct_fail(CT_ERR_TOO_LARGE, "a GOP of more than %d pictures", CENC_MAX_FRAGMENT_SAMPLES));
    CT_GUARD_RET(cenc_gbuf_put(&l->gop, au, len));
    l->gop_aus++;
    return CT_OK;
}

/* Start of the last start code (00 00 01) in `b`: everything before it is whole NAL units. */
static size_t last_start_code(const uint8_t *b, size_t len)
{
    for (size_t i = len; i >= 3; i--)
        if (b[i - 3] == 0 && b[i - 2] == 0 && b[i - 1] == 1) return i - 3;
    return 0;
}

/* Takes every complete access unit out of `pending` (all of it at the end of input). */
static ct_err live_process(cenc_live *l, bool eof)
{
    size_t limit = eof ? l->pending.len : last_start_code(l->pending.p, l->pending.len), pos = 0, start, end;
    ct_err rc;
    if (limit == 0) return CT_OK;
    if (!l->r.codec) {
        rc = media_annexb_guess(l->pending.p, limit, &l->r.codec);
        if (rc != CT_OK && !eof && l->pending.len < (1u << 20)) {
            ct_err_clear(); /* not enough seen yet */
            return CT_OK;
        }
        CT_GUARD_RET(rc);
    }
    size_t consumed = 0;
    while ((rc = au_next(l->r.codec, l->pending.p, limit, &pos, &start, &end)) == CT_OK) {
        if (!eof && end >= limit) break; /* the next NAL unit may still belong to it */
        CT_GUARD_RET(take_au(l, l->pending.p + start, end - start));
        consumed = end;
    }
    CT_ENSURE_RET(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    ct_err_clear();
    memmove(l->pending.p, l->pending.p + consumed, l->pending.len - consumed);
    l->pending.len -= consumed;
    return CT_OK;
}

ct_err cenc_live_push(cenc_live *l, const uint8_t *p, size_t n)
{
    CT_ENSURE_RET(l->pending.len + n <= l->pending.max,
                  ct_fail(CT_ERR_TOO_LARGE, "an access unit of more than %u bytes", LIVE_PENDING_MAX));
    CT_GUARD_RET(cenc_gbuf_put(&l->pending, p, n));
    return live_process(l, false);
}

ct_err cenc_live_set_recipients(cenc_live *l, const cenc_recipient *r, size_t n)
{
    if (!l->r.w) { /* not started: the writer takes them when it is made */
        CT_ENSURE_RET(n > 0 && n <= CENC_MAX_RECIPIENTS, ct_fail(CT_ERR_BAD_REQUEST, "%zu recipients", n));
        memcpy(l->rcpt, r, n * sizeof *l->rcpt);
        l->o.n_recipients = n;
        return CT_OK;
    }
    return cenc_writer_set_recipients(l->r.w, r, n);
}

ct_err cenc_live_finish(cenc_live *l, cenc_stats *st)
{
    CT_GUARD_RET(live_process(l, true));
    CT_ENSURE_RET(l->gop_aus || l->started, ct_fail(CT_ERR_BAD_REQUEST, "the stream held no picture"));
    if (l->gop_aus) CT_GUARD_RET(gop_done(l, true));
    else CT_GUARD_RET(cenc_writer_finish(l->r.w, NULL));
    CT_GUARD_RET(write_playlist(&l->g, true));
    if (st) cenc_live_stats(l, st);
    return CT_OK;
}

void cenc_live_stats(const cenc_live *l, cenc_stats *st)
{
    memset(st, 0, sizeof *st);
    if (l->r.w) cenc_writer_stats(l->r.w, st);
}

void cenc_live_free(cenc_live *l)
{
    if (!l) return;
    cenc_writer_free(l->r.w);
    cenc_gbuf_free(&l->r.au);
    cenc_gbuf_free(&l->g.seg);
    cenc_gbuf_free(&l->g.entries);
    cenc_gbuf_free(&l->pending);
    cenc_gbuf_free(&l->gop);
    free(l);
}
