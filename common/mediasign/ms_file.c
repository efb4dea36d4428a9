/* Recordings on disk: signing an Annex B or MP4 file into a new one, and verifying one (Annex B, MP4, or the
 * fragmented MP4, clear or encrypted, that camtrust-agent record writes). Input files are mapped; the signer
 * holds one GOP, the verifier a few. */
#define _POSIX_C_SOURCE 200809L
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../cenc/cenc.h"
#include "ms_priv.h"

typedef struct {
    ms_signer *s;
    media_codec codec;
    const media_mp4 *mp4;
    unsigned nls;       /* MP4: NAL length size; 0 for Annex B */
    uint32_t timescale, samples;
    FILE *out;          /* Annex B */
    media_out *o;       /* MP4, per sample */
    ct_buf sei;
    ms_sign_stats *st;
    uint64_t frames;
    int64_t start;      /* format time of the first picture */
    cenc_out_file of;   /* the output, renamed into place once whole */
} sign_ctx;

static ct_err put_nal(sign_ctx *c, const uint8_t *nal, size_t len)
{
    if (!c->nls) {
        static const uint8_t sc[4] = {0, 0, 0, 1};
        CT_ENSURE_RET(fwrite(sc, 1, 4, c->out) == 4 && fwrite(nal, 1, len, c->out) == len,
                      ct_fail(CT_ERR_IO, "write failed: %s", strerror(errno)));
        c->st->bytes_out += 4 + len;
        return CT_OK;
    }
    uint8_t pre[4];
    CT_ENSURE_RET(c->nls == 4 || len < (1u << (8 * c->nls)), ct_fail(CT_ERR_TOO_LARGE, "NAL unit too large for its "
                                                                                    "length prefix"));
    for (unsigned i = 0; i < c->nls; i++) pre[i] = (uint8_t)(len >> (8 * (c->nls - 1 - i)));
    CT_GUARD_RET(media_out_write(c->o, pre, c->nls));
    return media_out_write(c->o, nal, len);
}

/* Writes the SEIs signed so far; waits when the token falls behind (or for all of them at the end). */
static ct_err drain(sign_ctx *c, bool all)
{
    for (;;) {
        bool ready, wait = all || ms_signer_backlog(c->s) > MS_SIGNER_QUEUE / 2;
        CT_GUARD_RET(ms_signer_take(c->s, wait, &c->sei, &ready));
        if (!ready) return CT_OK;
        CT_GUARD_RET(put_nal(c, c->sei.data, c->sei.len));
    }
}

static ct_err sign_nal(sign_ctx *c, const uint8_t *nal, size_t len, int64_t t)
{
    media_nal_info info = media_nal_classify(c->codec, nal, len);
    if (media_nal_is_vcl(info.kind) && info.first_slice) {
        CT_GUARD_RET(ms_signer_push(c->s, nal, len, t));
        c->frames++;
        /* Signature SEIs go before the first slice of a picture, as prefix SEIs must. */
        CT_GUARD_RET(drain(c, false));
    } else {
        CT_GUARD_RET(ms_signer_push(c->s, nal, len, t));
    }
    return put_nal(c, nal, len);
}

static ct_err sign_sample(void *arg, uint32_t index, const uint8_t *p, size_t len, media_out *o)
{
    sign_ctx *c = arg;
    media_sample smp;
    const uint8_t *nal;
    size_t pos = 0, n;
    ct_err rc;
    c->o = o;
    CT_GUARD_RET(media_mp4_sample(c->mp4, index, &smp));
    int64_t t = c->start + (c->timescale ? (int64_t)(smp.dts * 10000000ULL / c->timescale) : 0);
    while ((rc = media_lp_next(p, len, c->nls, &pos, &nal, &n)) == CT_OK) CT_GUARD_RET(sign_nal(c, nal, n, t));
    CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, ct_fail(rc, "video sample %u: %s", index + 1, ct_err_detail()));
    c->st->bytes_in += len;
    if (index + 1 == c->samples) {
        CT_GUARD_RET(ms_signer_finish(c->s));
        CT_GUARD_RET(drain(c, true));
    }
    return CT_OK;
}

static ct_err sign_annexb(sign_ctx *c, const media_file *in, unsigned fps)
{
    size_t pos = 0, n, skipped;
    const uint8_t *nal;
    while (media_annexb_next(in->data, in->len, &pos, &nal, &n, &skipped) == CT_OK) {
        CT_ENSURE_RET(skipped == 0, ct_fail(CT_ERR_BAD_REQUEST, "%zu bytes before the first start code", skipped));
        CT_GUARD_RET(sign_nal(c, nal, n, c->start + (int64_t)(c->frames * 10000000ULL / fps)));
    }
    CT_GUARD_RET(ms_signer_finish(c->s));
    return drain(c, true);
}

ct_err ms_sign_file(const ms_signer_config *cfg, const char *in_path, const char *out_path, ms_sign_stats *st)
{
    ct_err rc = CT_OK;
    media_file in = {0};
    media_mp4 *mp4 = NULL;
    media_mp4_video vid;
    ms_signer_config sc = *cfg;
    sign_ctx c;
    memset(&c, 0, sizeof c);
    c.st = st;
    st->bytes_in = st->bytes_out = st->gops = 0;
    CT_GUARD(media_file_map(in_path, &in));
    if (media_is_mp4(in.data, in.len)) {
        CT_GUARD(media_mp4_open(in.data, in.len, &mp4));
        CT_GUARD(media_mp4_video_track(mp4, &vid));
        sc.codec = vid.codec;
        c.mp4 = mp4;
        c.nls = vid.nal_length_size;
        c.timescale = vid.timescale;
        c.samples = vid.samples;
    } else {
        CT_GUARD(media_annexb_guess(in.data, in.len, &sc.codec));
    }
    c.codec = sc.codec;
    c.start = ms_time_from_unix(st->start ? st->start : time(NULL), 0);
    CT_GUARD(ms_signer_open(&sc, &c.s));
    /* A kill or power cut while signing leaves the previous OUT (or none), never part of one. */
    CT_GUARD(cenc_out_open(out_path, 0666, &c.of));
    c.out = c.of.f;
    if (mp4) {
        /* The sample entry's parameter sets (avcC/hvcC) first: what a decoder starts with, signed with the GOPs. */
        const uint8_t *ps;
        size_t ps_len;
        for (size_t i = 0; media_mp4_param_set(mp4, i, &ps, &ps_len) == CT_OK; i++)
            CT_GUARD(ms_signer_push(c.s, ps, ps_len, 0));
        CT_GUARD(media_mp4_rewrite(mp4, c.out, sign_sample, &c));
        CT_ENSURE_MSG(vid.samples > 0, CT_ERR_BAD_REQUEST, "the video track has no samples");
        st->bytes_in = in.len;
        off_t end = ftello(c.out);
        st->bytes_out = end > 0 ? (uint64_t)end : 0;
    } else {
        CT_GUARD(sign_annexb(&c, &in, st->fps ? st->fps : 30));
        st->bytes_in = in.len;
    }
    st->gops = c.frames ? ms_signer_gops(c.s) : 0;
cleanup:
    rc = cenc_out_close(&c.of, out_path, rc);
    ms_signer_close(c.s);
    ct_buf_free(&c.sei);
    media_mp4_free(mp4);
    media_file_unmap(&in);
    return rc;
}

/* ---- verifying ---- */

static const char no_time[] = "verification time (no recording time in the clip)";

/* What a player takes from an MP4 besides the samples. An edit list tells it what to present: more than one edit
 * (after an optional empty one) can show the pictures reordered, repeated or spliced, and a rate other than 1 freezes
 * them; the signatures cover the samples as stored, not that. One edit (a start and a length: an authentic part, in
 * order) is what writers make. */
static void check_edits(const media_file *f, ms_verifier *v)
{
    media_edits e;
    media_mp4_edits(f->data, f->len, &e);
    /* Verified with the first one's parameter sets (and the samples' own): another, named for samples in stsc or
     * tfhd, is what a player decodes them with (ffmpeg does), and no signature covers it. */
    if (e.most_entries > 1)
        ms_verifier_problem(v, "the MP4 video track has %llu sample entries: a player may decode the pictures with "
                               "parameter sets (avcC/hvcC) other than those verified", (unsigned long long)e.most_entries);
    if (e.malformed) ms_verifier_problem(v, "malformed MP4 edit list");
    if (e.other_rate)
        ms_verifier_problem(v, "the MP4 edit list presents pictures at another rate than recorded (a player does not "
                               "show what was verified)");
    else if (e.most_edits > 1)
        ms_verifier_problem(v, "the MP4 edit list has %llu edits: a player presents the pictures in another order or "
                               "selection than the one verified", (unsigned long long)e.most_edits);
}

/* A trak's mdia/minf/stbl/`type` box into *out. */
static bool stbl_child(const uint8_t *d, const media_box *trak, uint32_t type, media_box *out)
{
    const uint32_t path[] = {MEDIA_FOURCC('m', 'd', 'i', 'a'), MEDIA_FOURCC('m', 'i', 'n', 'f'),
                             MEDIA_FOURCC('s', 't', 'b', 'l'), type};
    *out = *trak;
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++)
        if (media_box_find(d, out->off + out->hdr, out->off + out->size, path[i], out) != CT_OK) return false;
    return true;
}

/* Whether a box inside a sample entry is one ffmpeg takes for the decoder configuration (mov_read_glbl): the first
 * of them in the entry, whichever its type, and not the one named for the entry's format. */
static bool config_box(uint32_t type)
{
    return type == MEDIA_FOURCC('a', 'v', 'c', 'C') || type == MEDIA_FOURCC('h', 'v', 'c', 'C') ||
           type == MEDIA_FOURCC('g', 'l', 'b', 'l') || type == MEDIA_FOURCC('a', 'v', '1', 'C') ||
           type == MEDIA_FOURCC('v', 'v', 'c', 'C');
}

/* Each video sample entry's decoder configuration must be one box that players read as one: an avcC of version 1,
 * an hvcC (ffmpeg takes one of version 0 too, which early muxers wrote). ffmpeg takes another (an avcC of version 0,
 * an hvcC starting 0 0 0 or 0 0 1) for Annex B, and the samples too, so it decodes NAL units hidden, start code
 * first, in the payload of ones the verifier reads by their lengths and passes over (filler data), not the signed
 * pictures. Of two (a glbl before the avcC) ffmpeg takes the first, the verifier the avcC. */
static void check_config(const media_file *f, ms_verifier *v)
{
    const uint8_t *d = f->data;
    media_box moov, trak, b, e, c, cfg;
    bool found = media_box_find(d, 0, f->len, MEDIA_FOURCC('m', 'o', 'o', 'v'), &moov) == CT_OK;
    for (uint64_t t = moov.off + moov.hdr; found && media_box_next(d, moov.off + moov.size, &t, &trak) == CT_OK;) {
        bool stsd = stbl_child(d, &trak, MEDIA_FOURCC('s', 't', 's', 'd'), &b);
        /* stsd: a full box and its entry count, then the entries; a visual one has 78 bytes before its boxes */
        for (uint64_t pos = b.off + b.hdr + 8; stsd && media_box_next(d, b.off + b.size, &pos, &e) == CT_OK;) {
            unsigned configs = 0;
            for (uint64_t at = e.off + e.hdr + 78; e.size - e.hdr >= 78 && media_box_next(d, e.off + e.size, &at, &c) == CT_OK;)
                if (config_box(c.type) && configs++ == 0) cfg = c;
            const uint8_t *p = configs ? d + cfg.off + cfg.hdr : NULL;
            uint64_t n = configs ? cfg.size - cfg.hdr : 0;
            /* ffmpeg's test: an avcC of version 1; an hvcC not starting 0 0 0 or 0 0 1 (version 0 was written too) */
            bool annexb = configs && (cfg.type == MEDIA_FOURCC('a', 'v', 'c', 'C') ? n == 0 || p[0] != 1
                                      : cfg.type == MEDIA_FOURCC('h', 'v', 'c', 'C') ? n <= 3 || (!p[0] && !p[1] && p[2] <= 1)
                                                                                     : false);
            if (configs > 1)
                ms_verifier_problem(v, "an MP4 sample entry holds %u decoder configurations (avcC, hvcC, glbl...): "
                                       "players differ in which one they take, and ffmpeg takes the first",
                                    configs);
            else if (annexb)
                ms_verifier_problem(v, "the MP4 sample entry's decoder configuration (avcC/hvcC) is not of version 1: "
                                       "a player (ffmpeg) then reads it and the samples as Annex B, NAL units other "
                                       "than those verified");
        }
    }
    ct_err_clear();
}

/* Whether a trex or tfhd (`box`) names a sample description other than the first: trex always does (after version,
 * flags and track), a tfhd with flag 0x2 (after its base offset, with flag 0x1). */
static bool other_description(const uint8_t *d, const media_box *box)
{
    const uint8_t *p = d + box->off + box->hdr;
    uint64_t n = box->size - box->hdr, at = 8;
    if (box->type == MEDIA_FOURCC('t', 'f', 'h', 'd')) {
        if (n < 4 || !(p[3] & 2)) return false;
        at += p[3] & 1 ? 8 : 0;
    }
    return n >= at + 4 && (p[at] | p[at + 1] | p[at + 2] | (p[at + 3] ^ 1)) != 0;
}

/* The sample description a fragmented file's samples are decoded with: trex's default, or a track fragment's own.
 * The verifier reads them with the first; ffmpeg takes the one named, and skips without a word the fragments naming
 * one the stsd lacks: a GOP verified that it does not show. */
static void check_description_index(const media_file *f, ms_verifier *v)
{
    const uint8_t *d = f->data;
    media_box top, b, x;
    uint64_t bad = 0;
    for (uint64_t pos = 0; media_box_next(d, f->len, &pos, &top) == CT_OK;) {
        bool moov = top.type == MEDIA_FOURCC('m', 'o', 'o', 'v');
        uint32_t parent = moov ? MEDIA_FOURCC('m', 'v', 'e', 'x') : MEDIA_FOURCC('t', 'r', 'a', 'f');
        if ((moov || top.type == MEDIA_FOURCC('m', 'o', 'o', 'f')) &&
            media_box_find(d, top.off + top.hdr, top.off + top.size, parent, &b) == CT_OK)
            for (uint64_t at = b.off + b.hdr; media_box_next(d, b.off + b.size, &at, &x) == CT_OK;)
                bad += (x.type == MEDIA_FOURCC('t', 'r', 'e', 'x') || x.type == MEDIA_FOURCC('t', 'f', 'h', 'd')) &&
                       other_description(d, &x);
    }
    ct_err_clear();
    if (bad)
        ms_verifier_problem(v, "%llu fragment default(s) (trex/tfhd) name a sample description other than the first: "
                               "a player decodes those samples with another one, or skips them (ffmpeg)",
                            (unsigned long long)bad);
}

/* A fragmented file's moov may hold samples of its own, before the first fragment (ffmpeg's frag_keyframe without
 * empty_moov puts the first GOP there): players show them, and the verifier reads the fragments only, so that GOP
 * could be anything. stsz and stz2 both have the sample count after version, flags and 4 bytes. */
static void check_moov_samples(const media_file *f, ms_verifier *v)
{
    const uint8_t *d = f->data;
    media_box moov, trak, b;
    uint64_t samples = 0;
    bool found = media_box_find(d, 0, f->len, MEDIA_FOURCC('m', 'o', 'o', 'v'), &moov) == CT_OK;
    for (uint64_t t = moov.off + moov.hdr; found && media_box_next(d, moov.off + moov.size, &t, &trak) == CT_OK;)
        if ((stbl_child(d, &trak, MEDIA_FOURCC('s', 't', 's', 'z'), &b) ||
             stbl_child(d, &trak, MEDIA_FOURCC('s', 't', 'z', '2'), &b)) &&
            b.size - b.hdr >= 12) {
            const uint8_t *p = d + b.off + b.hdr + 8;
            samples += (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        }
    ct_err_clear();
    if (samples)
        ms_verifier_problem(v, "the fragmented MP4's moov holds %llu samples outside any fragment (as ffmpeg's "
                               "frag_keyframe without empty_moov writes): a player shows them, and the verifier "
                               "reads the fragments only", (unsigned long long)samples);
}

static ct_err verify_mp4(const media_file *f, const ms_verify_config *cfg, ms_gop_cb cb, void *arg, ms_summary *sum)
{
    ct_err rc = CT_OK;
    media_mp4 *m = NULL;
    ms_verifier *v = NULL;
    media_mp4_video vid;
    media_sample smp;
    CT_GUARD(media_mp4_open(f->data, f->len, &m));
    CT_GUARD(media_mp4_video_track(m, &vid));
    time_t created = media_mp4_creation_time(m);
    CT_GUARD(ms_verifier_open(cfg, vid.codec, created ? created : time(NULL), created ? "MP4 creation time" : no_time,
                              cb, arg, &v));
    const uint8_t *ps;
    size_t ps_len;
    for (size_t i = 0; media_mp4_param_set(m, i, &ps, &ps_len) == CT_OK; i++)
        CT_GUARD(ms_verifier_push_entry(v, ps, ps_len));
    for (uint32_t i = 0; i < vid.samples; i++) {
        const uint8_t *nal;
        size_t pos = 0, n;
        rc = media_mp4_sample(m, i, &smp);
        if (rc != CT_OK) {
            ms_verifier_problem(v, "%s", ct_err_detail());
            break;
        }
        double t = vid.timescale ? (double)smp.dts / vid.timescale : -1;
        const uint8_t *p = f->data + smp.off;
        while ((rc = media_lp_next(p, smp.size, vid.nal_length_size, &pos, &nal, &n)) == CT_OK)
            CT_GUARD(ms_verifier_push_sample(v, nal, n, t));
        if (rc != CT_ERR_NOT_FOUND) ms_verifier_problem(v, "video sample %u: %s", i + 1, ct_err_detail());
        rc = CT_OK;
    }
    rc = CT_OK;
    check_edits(f, v);
    check_config(f, v);
    CT_GUARD(ms_verifier_finish(v, sum));
    CT_GUARD(ct_strlcpy(sum->container, sizeof sum->container, "MP4"));
cleanup:
    ms_verifier_close(v);
    media_mp4_free(m);
    return rc;
}

static ct_err verify_annexb(const media_file *f, const ms_verify_config *cfg, ms_gop_cb cb, void *arg,
                            ms_summary *sum)
{
    ct_err rc = CT_OK;
    ms_verifier *v = NULL;
    media_codec codec;
    size_t pos = 0, n, skipped;
    const uint8_t *nal;
    CT_GUARD(media_annexb_guess(f->data, f->len, &codec));
    CT_GUARD(ms_verifier_open(cfg, codec, time(NULL), no_time, cb, arg, &v));
    while (media_annexb_next(f->data, f->len, &pos, &nal, &n, &skipped) == CT_OK) {
        if (skipped) ms_verifier_problem(v, "%zu bytes outside any NAL unit before byte %zu", skipped, pos);
        CT_GUARD(ms_verifier_push(v, nal, n, -1));
    }
    CT_GUARD(ms_verifier_finish(v, sum));
    CT_GUARD(ct_strlcpy(sum->container, sizeof sum->container, "Annex B"));
cleanup:
    ms_verifier_close(v);
    return rc;
}

/* Fragmented: a moof, or a moov announcing fragments (mvex). */
static bool mp4_fragmented(const media_file *f)
{
    media_box b, x;
    uint64_t pos = 0;
    while (media_box_next(f->data, f->len, &pos, &b) == CT_OK) {
        if (b.type == MEDIA_FOURCC('m', 'o', 'o', 'f')) return true;
        if (b.type == MEDIA_FOURCC('m', 'o', 'o', 'v') &&
            media_box_find(f->data, b.off + b.hdr, b.off + b.size, MEDIA_FOURCC('m', 'v', 'e', 'x'), &x) == CT_OK)
            return true;
    }
    return false;
}

typedef struct {
    const ms_verify_config *cfg;
    ms_gop_cb cb;
    void *arg;
    ms_verifier *v;     /* opened at the first NAL unit: cenc_walk names the codec there */
    ct_err verifier_rc; /* the verifier's own failure, told apart from a malformed file */
} frag_ctx;

static ct_err frag_nal(void *arg, media_codec codec, const uint8_t *nal, size_t len, double t)
{
    frag_ctx *c = arg;
    /* No container time: camtrust's writer leaves mvhd's creation time zero, the SEI timestamps date the clip. */
    if (!c->v) c->verifier_rc = ms_verifier_open(c->cfg, codec, time(NULL), no_time, c->cb, c->arg, &c->v);
    /* Time -1: the sample entry's parameter sets (cenc_walk) */
    if (c->verifier_rc == CT_OK)
        c->verifier_rc = t < 0 ? ms_verifier_push_entry(c->v, nal, len) : ms_verifier_push_sample(c->v, nal, len, t);
    return c->verifier_rc;
}

/* The NAL units as stored (slices still encrypted): the signatures cover those bytes, so no key is needed. */
static ct_err verify_fragmented(const media_file *f, const ms_verify_config *cfg, ms_gop_cb cb, void *arg,
                                ms_summary *sum)
{
    ct_err rc = CT_OK;
    frag_ctx c = {cfg, cb, arg, NULL, CT_OK};
    rc = cenc_walk(f->data, f->len, frag_nal, &c);
    /* A fragment that cannot be read after some video (a cut-off recording) is a finding about the clip. */
    CT_ENSURE(rc == CT_OK || (c.v && c.verifier_rc == CT_OK), rc);
    if (rc != CT_OK) ms_verifier_problem(c.v, "%s", ct_err_detail());
    rc = CT_OK;
    CT_ENSURE_MSG(c.v, CT_ERR_BAD_REQUEST, "fragmented MP4 without any video sample");
    check_edits(f, c.v);
    check_config(f, c.v);
    check_description_index(f, c.v);
    check_moov_samples(f, c.v);
    CT_GUARD(ms_verifier_finish(c.v, sum));
    CT_GUARD(ct_strlcpy(sum->container, sizeof sum->container, "fragmented MP4"));
cleanup:
    ms_verifier_close(c.v);
    return rc;
}

ct_err ms_verify_data(const media_file *f, const ms_verify_config *cfg, ms_gop_cb cb, void *arg, ms_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    return !media_is_mp4(f->data, f->len) ? verify_annexb(f, cfg, cb, arg, sum)
           : mp4_fragmented(f)            ? verify_fragmented(f, cfg, cb, arg, sum)
                                          : verify_mp4(f, cfg, cb, arg, sum);
}

typedef struct {
    const media_file *f;
    ms_gop_cb cb;
    void *arg;
} shrink_ctx;

/* Once the file shrank, GOPs are judged on zeros: not reported (the check then fails as a whole). */
static void gop_unless_shrunk(const ms_gop_report *g, void *arg)
{
    const shrink_ctx *c = arg;
    if (c->cb && !media_file_shrank(c->f)) c->cb(g, c->arg);
}

ct_err ms_verify_file(const char *path, const ms_verify_config *cfg, ms_gop_cb cb, void *arg, ms_summary *sum)
{
    media_file f;
    memset(sum, 0, sizeof *sum);
    /* A recording on a share may be truncated while it is checked: a clear failure, not a crash (SIGBUS). */
    CT_GUARD_RET(media_file_map_guarded(path, &f));
    ct_failpoint_hold("verify:mapped");
    shrink_ctx c = {&f, cb, arg};
    ct_err rc = ms_verify_data(&f, cfg, gop_unless_shrunk, &c, sum);
    return media_file_unmap_guarded(&f, path, rc);
}
