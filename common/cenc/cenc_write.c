/* The fragmented MP4 writer: init segment, then per GOP a moof (with the segment's pssh when a key starts) and
 * an mdat of samples encrypted in place. */
#include <stdlib.h>
#include <string.h>

#include "cenc_priv.h"

#define TIMESCALE_MOVIE 1000
#define FLAGS_SYNC 0x02000000u     /* sample_depends_on 2: an IDR/IRAP picture */
#define FLAGS_NON_SYNC 0x01010000u /* depends on others, sample_is_non_sync_sample */
#define TRUN_FLAGS 0x000701u       /* data-offset, duration, size, flags present */
#define TRUN_CTS 0x000800u         /* composition offsets present */
#define TFHD_BASE_IS_MOOF 0x020000u
#define SENC_SUBSAMPLES 0x2u
#define CTR_IV_LEN 8
#define CBCS_PATTERN 0x19 /* crypt 1, skip 9 */
#define BOX_MAX (64u << 20)

/* ---- growable buffers and boxes ---- */

ct_err cenc_gbuf_put(cenc_gbuf *b, const void *p, size_t n)
{
    size_t max = b->max ? b->max : BOX_MAX;
    CT_ENSURE_RET(n <= max - b->len, ct_fail(CT_ERR_TOO_LARGE, "more than %zu bytes of media data at once", max));
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap = cap > max / 2 ? max : cap * 2;
        uint8_t *q = realloc(b->p, cap);
        CT_ENSURE_RET(q, CT_ERR_NOMEM);
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return CT_OK;
}

ct_err cenc_gbuf_be(cenc_gbuf *b, uint64_t v, unsigned bytes)
{
    uint8_t t[8];
    for (unsigned i = 0; i < bytes; i++) t[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    return cenc_gbuf_put(b, t, bytes);
}

void cenc_gbuf_free(cenc_gbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

ct_err cenc_box_open(cenc_gbuf *b, const char *type, size_t *start)
{
    *start = b->len;
    CT_GUARD_RET(cenc_gbuf_be(b, 0, 4));
    return cenc_gbuf_put(b, type, 4);
}

ct_err cenc_full_open(cenc_gbuf *b, const char *type, unsigned version, uint32_t flags, size_t *start)
{
    CT_GUARD_RET(cenc_box_open(b, type, start));
    return cenc_gbuf_be(b, (uint64_t)version << 24 | flags, 4);
}

void cenc_box_close(cenc_gbuf *b, size_t start)
{
    uint32_t n = (uint32_t)(b->len - start);
    uint8_t *p = b->p + start;
    p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
}

/* ---- decoder configuration records ---- */

static ct_err put_nal16(cenc_gbuf *b, const uint8_t *nal, size_t len)
{
    CT_ENSURE_RET(len <= 0xffff, ct_fail(CT_ERR_BAD_REQUEST, "parameter set of %zu bytes", len));
    CT_GUARD_RET(cenc_gbuf_be(b, len, 2));
    return cenc_gbuf_put(b, nal, len);
}

/* The parameter sets of one NAL unit type, counted into an `bits`-bit count (H.264 avcC: 5 bits under 0xe0). */
static ct_err put_params(media_codec c, cenc_gbuf *b, const uint8_t *const *nals, const size_t *lens, size_t n,
                         unsigned type, uint8_t count_prefix)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += media_nal_classify(c, nals[i], lens[i]).type == type;
    CT_ENSURE_RET(count > 0 && count < 32, ct_fail(CT_ERR_BAD_REQUEST, "no parameter set of NAL type %u", type));
    if (c == MEDIA_H265) {
        CT_GUARD_RET(cenc_gbuf_be(b, 0x80 | type, 1)); /* array_completeness */
        CT_GUARD_RET(cenc_gbuf_be(b, count, 2));
    } else {
        CT_GUARD_RET(cenc_gbuf_be(b, count_prefix | count, 1));
    }
    for (size_t i = 0; i < n; i++)
        if (media_nal_classify(c, nals[i], lens[i]).type == type) CT_GUARD_RET(put_nal16(b, nals[i], lens[i]));
    return CT_OK;
}

static const uint8_t *find_type(media_codec c, const uint8_t *const *nals, const size_t *lens, size_t n, unsigned type,
                                size_t *len)
{
    for (size_t i = 0; i < n; i++)
        if (media_nal_classify(c, nals[i], lens[i]).type == type) return *len = lens[i], nals[i];
    return NULL;
}

ct_err cenc_config_record(media_codec c, const uint8_t *const *nals, const size_t *lens, size_t n, ct_buf *out)
{
    ct_err rc = CT_OK;
    cenc_gbuf b = {.max = 1 << 16};
    size_t sps_len = 0;
    const uint8_t *sps = find_type(c, nals, lens, n, c == MEDIA_H265 ? 33 : 7, &sps_len);
    CT_ENSURE_MSG(sps, CT_ERR_BAD_REQUEST, "no SPS before the first picture");
    if (c == MEDIA_H264) {
        CT_ENSURE_MSG(sps_len >= 4, CT_ERR_BAD_REQUEST, "SPS too short");
        uint8_t head[5] = {1, sps[1], sps[2], sps[3], 0xff}; /* version, profile, compatibility, level, 4-byte lengths */
        CT_GUARD(cenc_gbuf_put(&b, head, sizeof head));
        CT_GUARD(put_params(c, &b, nals, lens, n, 7, 0xe0));
        CT_GUARD(put_params(c, &b, nals, lens, n, 8, 0));
    } else {
        /* profile_tier_level's general part: bytes 1..12 of the SPS payload without emulation prevention. */
        uint8_t rbsp[32];
        size_t rl = 0;
        CT_GUARD(media_epb_remove(sps + 2, sps_len - 2 < 24 ? sps_len - 2 : 24, rbsp, sizeof rbsp, &rl));
        CT_ENSURE_MSG(sps_len > 2 && rl >= 13, CT_ERR_BAD_REQUEST, "SPS too short");
        CT_GUARD(cenc_gbuf_be(&b, 1, 1));
        CT_GUARD(cenc_gbuf_put(&b, rbsp + 1, 12));
        /* min_spatial_segmentation 0, parallelism 0, 4:2:0, 8 bits (players read them from the SPS), no frame
         * rate, one temporal layer nested, 4-byte lengths; then VPS, SPS, PPS arrays. */
        static const uint8_t tail[] = {0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00, 0x0f, 3};
        CT_GUARD(cenc_gbuf_put(&b, tail, sizeof tail));
        for (unsigned t = 32; t <= 34; t++) CT_GUARD(put_params(c, &b, nals, lens, n, t, 0));
    }
    CT_GUARD(ct_buf_alloc(out, b.len));
    CT_GUARD(ct_buf_append(out, b.p, b.len));
cleanup:
    cenc_gbuf_free(&b);
    return rc;
}

/* ---- the writer ---- */

struct cenc_writer {
    cenc_track t;
    ct_buf config;
    cenc_options o;
    cenc_recipient *recipients;
    cenc_out_fn out;
    void *arg;
    /* the current segment's key: its ID, the cipher (which alone holds the key) and the IVs */
    uint8_t kid[CENC_KID_LEN], const_iv[CENC_IV_LEN];
    uint64_t ctr_base, seg_samples, seg_start;
    cenc_cipher *cipher;
    cenc_gbuf pssh; /* for the next moof */
    /* the fragment being built */
    uint32_t n, size[CENC_MAX_FRAGMENT_SAMPLES], dur[CENC_MAX_FRAGMENT_SAMPLES];
    int32_t cts[CENC_MAX_FRAGMENT_SAMPLES];
    uint8_t sync[CENC_MAX_FRAGMENT_SAMPLES], info[CENC_MAX_FRAGMENT_SAMPLES];
    uint8_t sap_type; /* of the fragment's first sample: 1, or 2/3 when decodable/undecodable leading pictures follow */
    cenc_gbuf mdat, senc, moof;
    cenc_gbuf refs; /* one sidx reference per fragment written */
    cenc_gbuf ept;  /* each fragment's earliest presentation time (8 bytes) */
    uint64_t seg_first_fragment;
    size_t last_at, last_entry; /* the last sample: in mdat, its senc entry (signatures may follow it) */
    uint8_t last_iv[CENC_IV_LEN];
    uint64_t frag_dts, dts;
    uint32_t seq;
    cenc_subsample ss[CENC_MAX_SUBSAMPLES];
    cenc_stats st;
    cenc_order *ps; /* the stream's parameter sets: slice header lengths */
    bool warned;    /* about a slice header of unknown length */
    bool seg_reported; /* live: segment_done already called for the current segment (cenc_writer_gop_end) */
    bool rekey;        /* the recipients changed: a new segment (and key) at the next sync sample */
};

static ct_err emit(cenc_writer *w, const uint8_t *p, size_t n)
{
    w->st.out_bytes += n;
    return w->out(w->arg, p, n);
}

static bool encrypted(const cenc_writer *w) { return w->o.scheme != CENC_CLEAR; }

static ct_err put_zeros(cenc_gbuf *b, size_t n)
{
    static const uint8_t z[64];
    return n <= sizeof z ? cenc_gbuf_put(b, z, n) : ct_fail(CT_ERR_INTERNAL, "zeros");
}

/* The per-key fields of tenc and of a 'seig' group entry (after their leading reserved byte). */
static ct_err put_key_fields(cenc_writer *w, cenc_gbuf *b)
{
    bool cbcs = w->o.scheme == CENC_CBCS;
    CT_GUARD_RET(cenc_gbuf_be(b, cbcs ? CBCS_PATTERN : 0, 1));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 1)); /* isProtected */
    CT_GUARD_RET(cenc_gbuf_be(b, cbcs ? 0 : CTR_IV_LEN, 1));
    CT_GUARD_RET(cenc_gbuf_put(b, w->kid, CENC_KID_LEN));
    if (!cbcs) return CT_OK;
    CT_GUARD_RET(cenc_gbuf_be(b, CENC_IV_LEN, 1));
    return cenc_gbuf_put(b, w->const_iv, CENC_IV_LEN);
}

static ct_err put_sample_entry(cenc_writer *w, cenc_gbuf *b)
{
    size_t e, c, s, x, y;
    bool h265 = w->t.codec == MEDIA_H265;
    /* avc3/hev1 declare that samples may carry parameter sets of their own (ISO/IEC 14496-15 5.4.2, 8.4.1). */
    const char *fmt = h265 ? (w->t.inband_params ? "hev1" : "hvc1") : (w->t.inband_params ? "avc3" : "avc1");
    CT_GUARD_RET(cenc_box_open(b, encrypted(w) ? "encv" : fmt, &e));
    CT_GUARD_RET(put_zeros(b, 6));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 2)); /* data_reference_index */
    CT_GUARD_RET(put_zeros(b, 16));
    CT_GUARD_RET(cenc_gbuf_be(b, w->t.width, 2));
    CT_GUARD_RET(cenc_gbuf_be(b, w->t.height, 2));
    CT_GUARD_RET(cenc_gbuf_be(b, 0x0048000000480000ull, 8)); /* 72 dpi */
    CT_GUARD_RET(put_zeros(b, 4));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 2)); /* frame_count */
    CT_GUARD_RET(put_zeros(b, 32));      /* compressorname */
    CT_GUARD_RET(cenc_gbuf_be(b, 0x0018ffff, 4));
    CT_GUARD_RET(cenc_box_open(b, h265 ? "hvcC" : "avcC", &c));
    CT_GUARD_RET(cenc_gbuf_put(b, w->config.data, w->config.len));
    cenc_box_close(b, c);
    if (encrypted(w)) {
        CT_GUARD_RET(cenc_box_open(b, "sinf", &s));
        CT_GUARD_RET(cenc_box_open(b, "frma", &x));
        CT_GUARD_RET(cenc_gbuf_put(b, fmt, 4));
        cenc_box_close(b, x);
        CT_GUARD_RET(cenc_full_open(b, "schm", 0, 0, &x));
        CT_GUARD_RET(cenc_gbuf_put(b, cenc_scheme_name(w->o.scheme), 4));
        CT_GUARD_RET(cenc_gbuf_be(b, 0x00010000, 4));
        cenc_box_close(b, x);
        CT_GUARD_RET(cenc_box_open(b, "schi", &x));
        CT_GUARD_RET(cenc_full_open(b, "tenc", w->o.scheme == CENC_CBCS, 0, &y));
        CT_GUARD_RET(put_zeros(b, 1));
        CT_GUARD_RET(put_key_fields(w, b));
        cenc_box_close(b, y);
        cenc_box_close(b, x);
        cenc_box_close(b, s);
    }
    cenc_box_close(b, e);
    return CT_OK;
}

static const uint8_t matrix[36] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                                   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0};

static ct_err put_moov(cenc_writer *w, cenc_gbuf *b)
{
    size_t moov, trak, mdia, minf, stbl, x, y;
    static const char *const empty_tables[] = {"stts", "stsc", "stco"};
    CT_GUARD_RET(cenc_box_open(b, "moov", &moov));
    CT_GUARD_RET(cenc_full_open(b, "mvhd", 0, 0, &x));
    CT_GUARD_RET(put_zeros(b, 8)); /* creation, modification */
    CT_GUARD_RET(cenc_gbuf_be(b, TIMESCALE_MOVIE, 4));
    CT_GUARD_RET(put_zeros(b, 4)); /* duration: fragments follow */
    CT_GUARD_RET(cenc_gbuf_be(b, 0x000100000100ull, 6)); /* rate 1.0, volume 1.0 */
    CT_GUARD_RET(put_zeros(b, 10));
    CT_GUARD_RET(cenc_gbuf_put(b, matrix, sizeof matrix));
    CT_GUARD_RET(put_zeros(b, 24));
    CT_GUARD_RET(cenc_gbuf_be(b, 2, 4)); /* next_track_ID */
    cenc_box_close(b, x);
    CT_GUARD_RET(cenc_box_open(b, "trak", &trak));
    CT_GUARD_RET(cenc_full_open(b, "tkhd", 0, 3, &x)); /* enabled, in movie */
    CT_GUARD_RET(put_zeros(b, 8));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4)); /* track_ID */
    CT_GUARD_RET(put_zeros(b, 8 + 8 + 8)); /* reserved, duration, reserved; layer, group, volume, reserved */
    CT_GUARD_RET(cenc_gbuf_put(b, matrix, sizeof matrix));
    CT_GUARD_RET(cenc_gbuf_be(b, (uint64_t)w->t.width << 16, 4));
    CT_GUARD_RET(cenc_gbuf_be(b, (uint64_t)w->t.height << 16, 4));
    cenc_box_close(b, x);
    if (w->t.presentation_delay) {
        /* B-frames: presentation starts at the first sample's composition time. Duration 0: the fragments that
         * follow decide it (ISO/IEC 14496-12 8.6.6, as CMAF writes it). */
        CT_GUARD_RET(cenc_box_open(b, "edts", &x));
        CT_GUARD_RET(cenc_full_open(b, "elst", 0, 0, &y));
        CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));
        CT_GUARD_RET(put_zeros(b, 4));
        CT_GUARD_RET(cenc_gbuf_be(b, w->t.presentation_delay, 4));
        CT_GUARD_RET(cenc_gbuf_be(b, 0x00010000, 4)); /* rate 1.0 */
        cenc_box_close(b, y);
        cenc_box_close(b, x);
    }
    CT_GUARD_RET(cenc_box_open(b, "mdia", &mdia));
    CT_GUARD_RET(cenc_full_open(b, "mdhd", 0, 0, &x));
    CT_GUARD_RET(put_zeros(b, 8));
    CT_GUARD_RET(cenc_gbuf_be(b, w->t.timescale, 4));
    CT_GUARD_RET(put_zeros(b, 4));
    CT_GUARD_RET(cenc_gbuf_be(b, 0x55c40000, 4)); /* language "und" */
    cenc_box_close(b, x);
    CT_GUARD_RET(cenc_full_open(b, "hdlr", 0, 0, &x));
    CT_GUARD_RET(put_zeros(b, 4));
    CT_GUARD_RET(cenc_gbuf_put(b, "vide", 4));
    CT_GUARD_RET(put_zeros(b, 12));
    CT_GUARD_RET(cenc_gbuf_put(b, "camtrust video", 15));
    cenc_box_close(b, x);
    CT_GUARD_RET(cenc_box_open(b, "minf", &minf));
    CT_GUARD_RET(cenc_full_open(b, "vmhd", 0, 1, &x));
    CT_GUARD_RET(put_zeros(b, 8));
    cenc_box_close(b, x);
    CT_GUARD_RET(cenc_box_open(b, "dinf", &x));
    CT_GUARD_RET(cenc_full_open(b, "dref", 0, 0, &y));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));
    CT_GUARD_RET(cenc_gbuf_be(b, 12, 4)); /* 'url ' with flag 1: media in this file */
    CT_GUARD_RET(cenc_gbuf_put(b, "url ", 4));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));
    cenc_box_close(b, y);
    cenc_box_close(b, x);
    CT_GUARD_RET(cenc_box_open(b, "stbl", &stbl));
    CT_GUARD_RET(cenc_full_open(b, "stsd", 0, 0, &x));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));
    CT_GUARD_RET(put_sample_entry(w, b));
    cenc_box_close(b, x);
    for (size_t i = 0; i < 3; i++) {
        CT_GUARD_RET(cenc_full_open(b, empty_tables[i], 0, 0, &x));
        CT_GUARD_RET(put_zeros(b, 4));
        cenc_box_close(b, x);
    }
    CT_GUARD_RET(cenc_full_open(b, "stsz", 0, 0, &x));
    CT_GUARD_RET(put_zeros(b, 8));
    cenc_box_close(b, x);
    cenc_box_close(b, stbl);
    cenc_box_close(b, minf);
    cenc_box_close(b, mdia);
    cenc_box_close(b, trak);
    CT_GUARD_RET(cenc_box_open(b, "mvex", &x));
    CT_GUARD_RET(cenc_full_open(b, "trex", 0, 0, &y));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));  /* track_ID */
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));  /* sample description index */
    CT_GUARD_RET(put_zeros(b, 12));
    cenc_box_close(b, y);
    cenc_box_close(b, x);
    cenc_box_close(b, moov);
    return CT_OK;
}

/* A new content key: ID, cipher, and its pssh with the key wrapped for every recipient. The key itself lives
 * only in the cipher from here on. */
static ct_err new_key(cenc_writer *w)
{
    ct_err rc = CT_OK;
    uint8_t key[CENC_KEY_LEN], base[8];
    cenc_pssh *p = calloc(1, sizeof *p);
    CT_ENSURE(p, CT_ERR_NOMEM);
    cenc_cipher_free(w->cipher);
    w->cipher = NULL;
    CT_GUARD(ct_random(key, sizeof key));
    CT_GUARD(ct_random(w->kid, sizeof w->kid));
    CT_GUARD(ct_random(base, sizeof base));
    w->ctr_base = 0;
    for (int i = 0; i < 8; i++) w->ctr_base = w->ctr_base << 8 | base[i];
    CT_GUARD(cenc_cipher_new(w->o.scheme, key, false, &w->cipher));
    memcpy(p->kid, w->kid, CENC_KID_LEN);
    for (size_t i = 0; i < w->o.n_recipients; i++) CT_GUARD(cenc_wrap(&w->recipients[i], w->kid, key, &p->r[i]));
    p->n = w->o.n_recipients;
    ct_buf box = CT_BUF_INIT;
    CT_GUARD(ct_buf_alloc(&box, 64 + CENC_MAX_RECIPIENTS * 128));
    w->pssh.len = 0;
    rc = cenc_pssh_encode(p, &box);
    if (rc == CT_OK) rc = cenc_gbuf_put(&w->pssh, box.data, box.len);
    ct_buf_free(&box);
    CT_GUARD(rc);
cleanup:
    ct_wipe(key, sizeof key);
    free(p);
    return rc;
}

/* Ends the current segment (its fragments all written) and starts the next one with its own key. */
static ct_err next_segment(cenc_writer *w, bool last)
{
    if (w->st.segments > 0 && w->o.segment_done && !w->seg_reported) {
        cenc_segment s = {w->st.segments - 1, w->seg_first_fragment, w->st.fragments - w->seg_first_fragment,
                          w->seg_start, w->dts - w->seg_start};
        CT_GUARD_RET(w->o.segment_done(w->o.segment_arg, &s));
    }
    if (last) return CT_OK;
    w->seg_reported = w->rekey = false;
    if (w->o.sign && w->o.sign->segment && w->st.segments > 0) CT_GUARD_RET(w->o.sign->segment(w->o.sign->arg));
    w->seg_samples = 0;
    w->seg_start = w->dts;
    w->seg_first_fragment = w->st.fragments;
    w->st.segments++;
    return encrypted(w) ? new_key(w) : CT_OK;
}

static ct_err put_traf_encryption(cenc_writer *w, cenc_gbuf *b, size_t moof, size_t *saio_patch)
{
    size_t x;
    /* every sample of the fragment in the segment's 'seig' group: its key ID (and constant IV) */
    CT_GUARD_RET(cenc_full_open(b, "sbgp", 0, 0, &x));
    CT_GUARD_RET(cenc_gbuf_put(b, "seig", 4));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));
    CT_GUARD_RET(cenc_gbuf_be(b, w->n, 4));
    CT_GUARD_RET(cenc_gbuf_be(b, 0x10001, 4)); /* the first group description of this fragment */
    cenc_box_close(b, x);
    CT_GUARD_RET(cenc_full_open(b, "sgpd", 1, 0, &x));
    CT_GUARD_RET(cenc_gbuf_put(b, "seig", 4));
    CT_GUARD_RET(cenc_gbuf_be(b, w->o.scheme == CENC_CBCS ? 37 : 20, 4)); /* default_length */
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));
    CT_GUARD_RET(put_zeros(b, 1));
    CT_GUARD_RET(put_key_fields(w, b));
    cenc_box_close(b, x);
    CT_GUARD_RET(cenc_full_open(b, "senc", 0, SENC_SUBSAMPLES, &x));
    CT_GUARD_RET(cenc_gbuf_be(b, w->n, 4));
    size_t senc_data = b->len - moof;
    CT_GUARD_RET(cenc_gbuf_put(b, w->senc.p, w->senc.len));
    cenc_box_close(b, x);
    bool same = true;
    for (uint32_t i = 1; i < w->n; i++) same = same && w->info[i] == w->info[0];
    CT_GUARD_RET(cenc_full_open(b, "saiz", 0, 0, &x));
    CT_GUARD_RET(cenc_gbuf_be(b, same ? w->info[0] : 0, 1));
    CT_GUARD_RET(cenc_gbuf_be(b, w->n, 4));
    if (!same) CT_GUARD_RET(cenc_gbuf_put(b, w->info, w->n));
    cenc_box_close(b, x);
    CT_GUARD_RET(cenc_full_open(b, "saio", 0, 0, &x));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));
    *saio_patch = b->len;
    CT_GUARD_RET(cenc_gbuf_be(b, senc_data, 4)); /* from the moof: tfhd default-base-is-moof */
    cenc_box_close(b, x);
    return CT_OK;
}

static void patch32(cenc_gbuf *b, size_t at, uint64_t v)
{
    for (int i = 0; i < 4; i++) b->p[at + (size_t)i] = (uint8_t)(v >> (24 - 8 * i));
}

static ct_err flush(cenc_writer *w)
{
    if (w->n == 0) return CT_OK;
    cenc_gbuf *b = &w->moof;
    size_t moof, traf, x, data_offset, saio;
    b->len = 0;
    CT_GUARD_RET(cenc_box_open(b, "moof", &moof));
    CT_GUARD_RET(cenc_full_open(b, "mfhd", 0, 0, &x));
    CT_GUARD_RET(cenc_gbuf_be(b, ++w->seq, 4));
    cenc_box_close(b, x);
    if (w->pssh.len) CT_GUARD_RET(cenc_gbuf_put(b, w->pssh.p, w->pssh.len));
    CT_GUARD_RET(cenc_box_open(b, "traf", &traf));
    CT_GUARD_RET(cenc_full_open(b, "tfhd", 0, TFHD_BASE_IS_MOOF, &x));
    CT_GUARD_RET(cenc_gbuf_be(b, 1, 4));
    cenc_box_close(b, x);
    CT_GUARD_RET(cenc_full_open(b, "tfdt", 1, 0, &x));
    CT_GUARD_RET(cenc_gbuf_be(b, w->frag_dts, 8));
    cenc_box_close(b, x);
    /* Composition offsets only when there are B-frames; version 1 (signed) only when one is negative. */
    bool cts = false, negative = false;
    int64_t first_pts = INT64_MAX;
    for (uint32_t i = 0, dts = 0; i < w->n; dts += w->dur[i++]) {
        cts = cts || w->cts[i] != 0;
        negative = negative || w->cts[i] < 0;
        if ((int64_t)dts + w->cts[i] < first_pts) first_pts = (int64_t)dts + w->cts[i];
    }
    CT_GUARD_RET(cenc_full_open(b, "trun", negative, TRUN_FLAGS | (cts ? TRUN_CTS : 0), &x));
    CT_GUARD_RET(cenc_gbuf_be(b, w->n, 4));
    data_offset = b->len;
    CT_GUARD_RET(cenc_gbuf_be(b, 0, 4));
    for (uint32_t i = 0; i < w->n; i++) {
        CT_GUARD_RET(cenc_gbuf_be(b, w->dur[i], 4));
        CT_GUARD_RET(cenc_gbuf_be(b, w->size[i], 4));
        CT_GUARD_RET(cenc_gbuf_be(b, w->sync[i] ? FLAGS_SYNC : FLAGS_NON_SYNC, 4));
        if (cts) CT_GUARD_RET(cenc_gbuf_be(b, (uint32_t)w->cts[i], 4));
    }
    cenc_box_close(b, x);
    if (encrypted(w)) CT_GUARD_RET(put_traf_encryption(w, b, moof, &saio));
    cenc_box_close(b, traf);
    cenc_box_close(b, moof);
    CT_ENSURE_RET(b->len + 8 + w->mdat.len <= UINT32_MAX, ct_fail(CT_ERR_TOO_LARGE, "fragment too large"));
    patch32(b, data_offset, b->len + 8);
    CT_GUARD_RET(cenc_gbuf_be(b, 8 + w->mdat.len, 4));
    CT_GUARD_RET(cenc_gbuf_put(b, "mdat", 4));
    uint64_t frag_size = b->len + w->mdat.len;
    CT_ENSURE_RET(frag_size < (1u << 31), ct_fail(CT_ERR_TOO_LARGE, "fragment too large"));
    CT_GUARD_RET(cenc_gbuf_be(&w->refs, frag_size, 4));
    CT_GUARD_RET(cenc_gbuf_be(&w->refs, w->dts - w->frag_dts, 4));
    /* starts_with_SAP, SAP_type (ISO/IEC 14496-12 8.16.3, Annex I) */
    CT_GUARD_RET(cenc_gbuf_be(&w->refs, w->sync[0] ? 0x80000000u | (uint32_t)w->sap_type << 28 : 0, 4));
    uint64_t ept = (int64_t)w->frag_dts + first_pts > 0 ? (uint64_t)((int64_t)w->frag_dts + first_pts) : 0;
    CT_GUARD_RET(cenc_gbuf_be(&w->ept, ept, 8));
    CT_GUARD_RET(emit(w, b->p, b->len));
    CT_GUARD_RET(emit(w, w->mdat.p, w->mdat.len));
    w->st.fragments++;
    w->frag_dts = w->dts;
    w->n = 0;
    w->sap_type = 1;
    w->mdat.len = w->senc.len = w->pssh.len = 0;
    return CT_OK;
}

ct_err cenc_config_nals(media_codec c, const uint8_t *config, size_t len, cenc_nal_fn cb, void *arg)
{
    const uint8_t *nal;
    size_t n;
    for (size_t i = 0; media_config_nal(c, config, len, i, &nal, &n) == CT_OK; i++)
        CT_GUARD_RET(cb(arg, c, nal, n, -1));
    return CT_OK;
}

/* Remembers the parameter sets of the avcC / hvcC record. A record it cannot read leaves them unknown: slices
 * then keep CENC_CLEAR_LEAD clear, with a warning. */
static void learn_config(cenc_writer *w)
{
    const uint8_t *nal;
    size_t len;
    /* Each call walks from the start: bounded by how many parameter sets a decoder keeps, not by the record. */
    for (size_t i = 0; i < CENC_MAX_SPS + CENC_MAX_PPS + 16 &&
                       media_config_nal(w->t.codec, w->config.data, w->config.len, i, &nal, &len) == CT_OK;
         i++)
        cenc_params_nal(w->ps, w->t.codec, nal, len);
    ct_err_clear();
}

/* The subsample map of a sample, after remembering its parameter sets: they precede its slices (ones that change
 * may not follow a picture's first slice), so the map is the same before and after signatures are inserted. */
/* The same walk notes the H.265 leading pictures of the fragment's IRAP picture for its sidx SAP type: RADL ones
 * decode from it (type 2), RASL ones need the previous GOP (type 3: an open GOP, as x265 makes at CRA pictures). */
static ct_err map_sample(cenc_writer *w, const uint8_t *sample, size_t len, size_t *n)
{
    size_t pos = 0, nal_len, unknown = 0;
    const uint8_t *nal;
    while (media_lp_next(sample, len, 4, &pos, &nal, &nal_len) == CT_OK) {
        if (encrypted(w)) cenc_params_nal(w->ps, w->t.codec, nal, nal_len);
        unsigned type = w->t.codec == MEDIA_H265 && nal_len > 0 ? (nal[0] >> 1) & 0x3fu : 0;
        if (w->n > 0 && (type == 8 || type == 9)) w->sap_type = 3;
        if (w->n > 0 && (type == 6 || type == 7) && w->sap_type < 2) w->sap_type = 2;
    }
    ct_err_clear(); /* a bad length: cenc_subsamples names it */
    /* Clear output (a decrypted copy) protects nothing: the cheap fixed-lead map checks the lengths and counts. */
    if (!encrypted(w)) return cenc_subsamples(w->t.codec, sample, len, w->ss, CENC_MAX_SUBSAMPLES, n);
    CT_GUARD_RET(cenc_subsamples_with(w->ps, w->t.codec, sample, len, w->ss, CENC_MAX_SUBSAMPLES, n, &unknown));
    if (unknown > 0 && encrypted(w) && !w->warned) {
        w->warned = true;
        ct_log(CT_LOG_WARN, "cenc_slice_header", "codec=%s slices=%zu msg=\"slice header length unknown (parameter "
               "sets missing or unsupported): first %d bytes kept clear\"",
               media_codec_name(w->t.codec), unknown, CENC_CLEAR_LEAD);
    }
    return CT_OK;
}

ct_err cenc_writer_new(const cenc_track *t, const cenc_options *o, cenc_out_fn out, void *arg, cenc_writer **wp)
{
    ct_err rc = CT_OK;
    cenc_gbuf init = {0};
    cenc_writer *w = calloc(1, sizeof *w);
    CT_ENSURE(w, CT_ERR_NOMEM);
    CT_ENSURE_MSG(t->config_len > 0 && t->timescale > 0, CT_ERR_ARG, "track without configuration or timescale");
    CT_ENSURE_MSG(o->scheme == CENC_CLEAR || (o->n_recipients > 0 && o->n_recipients <= CENC_MAX_RECIPIENTS),
                  CT_ERR_ARG, "encryption needs 1 to %d viewers", CENC_MAX_RECIPIENTS);
    w->t = *t;
    w->o = *o;
    w->out = out;
    w->arg = arg;
    w->mdat.max = CENC_MAX_FRAGMENT;
    w->moof.max = w->senc.max = 32u << 20;
    w->sap_type = 1;
    CT_GUARD(ct_buf_alloc(&w->config, t->config_len));
    CT_GUARD(ct_buf_append(&w->config, t->config, t->config_len));
    w->t.config = NULL;
    /* Signed, the sample entry's parameter sets are bound first, as verifiers read them: a player decodes with them,
     * and samples without their own (an MP4 with them in its avcC / hvcC only) have no others. */
    if (o->sign) CT_GUARD(cenc_config_nals(t->codec, w->config.data, w->config.len, o->sign->nal, o->sign->arg));
    w->ps = calloc(1, sizeof *w->ps);
    CT_ENSURE(w->ps, CT_ERR_NOMEM);
    if (encrypted(w)) learn_config(w);
    if (encrypted(w)) {
        w->recipients = calloc(o->n_recipients, sizeof *w->recipients);
        CT_ENSURE(w->recipients, CT_ERR_NOMEM);
        memcpy(w->recipients, o->recipients, o->n_recipients * sizeof *w->recipients);
        w->o.recipients = NULL;
        CT_GUARD(ct_random(w->const_iv, sizeof w->const_iv));
    }
    CT_GUARD(next_segment(w, false));
    static const uint8_t ftyp[] = {0, 0, 0, 28, 'f', 't', 'y', 'p', 'i', 's', 'o', '6', 0, 0, 0, 0,
                                   'i', 's', 'o', '6', 'm', 'p', '4', '1', 'c', 'm', 'f', 'c'};
    CT_GUARD(cenc_gbuf_put(&init, ftyp, sizeof ftyp));
    CT_GUARD(put_moov(w, &init));
    CT_GUARD(emit(w, init.p, init.len));
    w->st.init_bytes = init.len;
    *wp = w;
    w = NULL;
cleanup:
    cenc_gbuf_free(&init);
    cenc_writer_free(w);
    return rc;
}

/* The senc entry and saiz size of the current sample from its subsample map (w->ss, n entries). */
static ct_err put_entry(cenc_writer *w, size_t n, const uint8_t iv[CENC_IV_LEN])
{
    bool ctr = w->o.scheme == CENC_CTR;
    size_t info = (ctr ? CTR_IV_LEN : 0) + 2 + 6 * n;
    CT_ENSURE_RET(info <= 0xff, ct_fail(CT_ERR_TOO_LARGE, "%zu slices in a picture: saiz holds at most %d", n,
                                        ctr ? 40 : 42));
    w->last_entry = w->senc.len;
    if (ctr) CT_GUARD_RET(cenc_gbuf_put(&w->senc, iv, CTR_IV_LEN));
    CT_GUARD_RET(cenc_gbuf_be(&w->senc, n, 2));
    for (size_t i = 0; i < n; i++) {
        CT_GUARD_RET(cenc_gbuf_be(&w->senc, w->ss[i].clear, 2));
        CT_GUARD_RET(cenc_gbuf_be(&w->senc, w->ss[i].enc, 4));
    }
    w->info[w->n] = (uint8_t)info;
    return CT_OK;
}

/* Inserts the NAL units the signer has ready (signature SEIs: clear) into the sample at `at`, before its first
 * slice, or at its end when `at_end`. */
static ct_err insert_signatures(cenc_writer *w, size_t at, size_t *len, bool wait, bool at_end)
{
    ct_err rc = CT_OK;
    ct_buf nal = CT_BUF_INIT;
    size_t pos = 0, before = *len, nal_len;
    const uint8_t *p;
    for (bool ready = true; ready;) {
        ct_buf_free(&nal);
        CT_GUARD(w->o.sign->take(w->o.sign->arg, wait, &nal, &ready));
        if (!ready) break;
        if (!at_end && before == *len) /* where the first slice starts */
            while (media_lp_next(w->mdat.p + at, *len, 4, &(size_t){pos}, &p, &nal_len) == CT_OK &&
                   !media_nal_is_vcl(media_nal_classify(w->t.codec, p, nal_len).kind))
                pos += 4 + nal_len;
        size_t end = w->mdat.len, ins = at + (at_end ? *len : pos), add = 4 + nal.len;
        CT_GUARD(cenc_gbuf_be(&w->mdat, nal.len, 4)); /* grows the buffer; moved into place below */
        CT_GUARD(cenc_gbuf_put(&w->mdat, nal.data, nal.len));
        memmove(w->mdat.p + ins + add, w->mdat.p + ins, end - ins);
        w->mdat.p[ins] = (uint8_t)(nal.len >> 24), w->mdat.p[ins + 1] = (uint8_t)(nal.len >> 16);
        w->mdat.p[ins + 2] = (uint8_t)(nal.len >> 8), w->mdat.p[ins + 3] = (uint8_t)nal.len;
        memcpy(w->mdat.p + ins + 4, nal.data, nal.len);
        *len += add;
        pos += add;
    }
cleanup:
    ct_buf_free(&nal);
    return rc;
}

/* Hands the sample's NAL units as stored to the signer, then inserts the signatures it has ready. */
static ct_err sign_sample(cenc_writer *w, size_t at, size_t *len)
{
    size_t pos = 0, nal_len;
    const uint8_t *nal;
    ct_err rc;
    double t = (double)w->dts / w->t.timescale;
    while ((rc = media_lp_next(w->mdat.p + at, *len, 4, &pos, &nal, &nal_len)) == CT_OK)
        CT_GUARD_RET(w->o.sign->nal(w->o.sign->arg, w->t.codec, nal, nal_len, t));
    CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
    return insert_signatures(w, at, len, false, false);
}


static ct_err sign_gop_end(cenc_writer *w);

static bool segment_due(const cenc_writer *w)
{
    return w->rekey ||
           (w->o.segment_ms && (w->dts - w->seg_start) * 1000 >= (uint64_t)w->o.segment_ms * w->t.timescale);
}

ct_err cenc_writer_gop_end(cenc_writer *w)
{
    /* Live: the GOP's signature goes with it (the signer's finish ends the GOP; the next IRAP starts another),
     * so a viewer verifies a segment as soon as it has it, not one segment later. */
    CT_GUARD_RET(sign_gop_end(w));
    CT_GUARD_RET(flush(w));
    if (!segment_due(w) || w->seg_reported || !w->o.segment_done || w->st.segments == 0) return CT_OK;
    cenc_segment s = {w->st.segments - 1, w->seg_first_fragment, w->st.fragments - w->seg_first_fragment,
                      w->seg_start, w->dts - w->seg_start};
    w->seg_reported = true;
    return w->o.segment_done(w->o.segment_arg, &s);
}

ct_err cenc_writer_set_recipients(cenc_writer *w, const cenc_recipient *r, size_t n)
{
    CT_ENSURE_RET(encrypted(w), ct_fail(CT_ERR_BAD_REQUEST, "a clear stream has no recipients"));
    CT_ENSURE_RET(n > 0 && n <= CENC_MAX_RECIPIENTS,
                  ct_fail(CT_ERR_BAD_REQUEST, "%zu recipients: 1 to %d", n, CENC_MAX_RECIPIENTS));
    /* A viewer removed must not get the key of pictures taken after: the segment ends here, not at its length
     * (its key is wrapped for the old list). */
    w->rekey = true;
    cenc_recipient *copy = calloc(n, sizeof *copy);
    CT_ENSURE_RET(copy, CT_ERR_NOMEM);
    memcpy(copy, r, n * sizeof *copy);
    free(w->recipients);
    w->recipients = copy;
    w->o.n_recipients = n;
    return CT_OK;
}

ct_err cenc_writer_sample(cenc_writer *w, const cenc_sample *smp)
{
    size_t n = 0, len = smp->len;
    const uint8_t *sample = smp->data;
    bool sync = smp->sync;
    uint8_t iv[CENC_IV_LEN] = {0};
    if (sync || w->n == CENC_MAX_FRAGMENT_SAMPLES || w->mdat.len + len > CENC_MAX_FRAGMENT) CT_GUARD_RET(flush(w));
    /* Segments (and keys) change only at a GOP boundary, so each starts decodable. */
    if (sync && segment_due(w)) CT_GUARD_RET(next_segment(w, false));
    CT_GUARD_RET(map_sample(w, sample, len, &n));
    size_t at = w->mdat.len;
    CT_GUARD_RET(cenc_gbuf_put(&w->mdat, sample, len));
    w->st.media_bytes += len;
    for (size_t i = 0; i < n; i++) w->st.protected_bytes += w->ss[i].enc;
    if (encrypted(w)) {
        if (w->o.scheme == CENC_CTR) {
            uint64_t v = w->ctr_base + w->seg_samples++;
            for (int i = 0; i < 8; i++) iv[i] = (uint8_t)(v >> (56 - 8 * i));
        } else {
            memcpy(iv, w->const_iv, sizeof iv);
        }
        CT_GUARD_RET(cenc_cipher_sample(w->cipher, iv, w->mdat.p + at, len, w->ss, n));
    }
    /* Signatures cover the bytes as stored: a custodian without keys verifies the encrypted recording. The
     * inserted SEIs are clear and change no protected range, so the encryption above stands. */
    if (w->o.sign) CT_GUARD_RET(sign_sample(w, at, &len));
    /* Inserted SEIs shift the slices: map the sample as stored again. */
    if (encrypted(w) && len != smp->len) CT_GUARD_RET(map_sample(w, w->mdat.p + at, len, &n));
    if (encrypted(w)) CT_GUARD_RET(put_entry(w, n, iv));
    memcpy(w->last_iv, iv, sizeof iv);
    w->last_at = at;
    w->size[w->n] = (uint32_t)len;
    w->dur[w->n] = smp->duration;
    w->cts[w->n] = smp->cts;
    w->sync[w->n] = sync;
    w->n++;
    w->dts += smp->duration;
    w->st.samples++;
    return CT_OK;
}

/* The GOP's signature right after its last picture: into that sample, re-describing its subsamples. */
static ct_err sign_gop_end(cenc_writer *w)
{
    if (!w->o.sign || w->n == 0) return CT_OK;
    size_t len = w->size[w->n - 1];
    CT_GUARD_RET(w->o.sign->finish(w->o.sign->arg));
    CT_GUARD_RET(insert_signatures(w, w->last_at, &len, true, true));
    if (encrypted(w) && len != w->size[w->n - 1]) {
        size_t n = 0;
        w->n--;
        w->senc.len = w->last_entry;
        CT_GUARD_RET(map_sample(w, w->mdat.p + w->last_at, len, &n));
        CT_GUARD_RET(put_entry(w, n, w->last_iv));
        w->n++;
    }
    w->size[w->n - 1] = (uint32_t)len;
    return CT_OK;
}

ct_err cenc_writer_finish(cenc_writer *w, cenc_stats *st)
{
    CT_GUARD_RET(sign_gop_end(w));
    CT_GUARD_RET(flush(w));
    CT_GUARD_RET(next_segment(w, true));
    if (st) *st = w->st;
    return CT_OK;
}

void cenc_writer_stats(const cenc_writer *w, cenc_stats *st) { *st = w->st; }

ct_err cenc_writer_index(const cenc_writer *w, ct_buf *out) { return cenc_writer_index_from(w, 0, out); }

ct_err cenc_writer_index_from(const cenc_writer *w, uint64_t first, ct_buf *out)
{
    ct_err rc = CT_OK;
    cenc_gbuf b = {0};
    size_t x, total = w->refs.len / 12;
    CT_ENSURE_MSG(first < total, CT_ERR_ARG, "no fragment to index");
    size_t n = total - (size_t)first;
    CT_ENSURE_MSG(n <= 0xffff, CT_ERR_TOO_LARGE, "%zu fragments: a sidx indexes 1 to 65535", n);
    CT_GUARD(cenc_full_open(&b, "sidx", 1, 0, &x));
    CT_GUARD(cenc_gbuf_be(&b, 1, 4)); /* reference_ID: the track */
    CT_GUARD(cenc_gbuf_be(&b, w->t.timescale, 4));
    CT_GUARD(cenc_gbuf_put(&b, w->ept.p + 8 * first, 8)); /* earliest presentation time */
    CT_GUARD(put_zeros(&b, 8));       /* first offset: the fragments follow */
    CT_GUARD(cenc_gbuf_be(&b, n, 4)); /* reserved 16 bits, reference_count */
    CT_GUARD(cenc_gbuf_put(&b, w->refs.p + 12 * first, 12 * n));
    cenc_box_close(&b, x);
    CT_GUARD(ct_buf_alloc(out, b.len));
    CT_GUARD(ct_buf_append(out, b.p, b.len));
cleanup:
    cenc_gbuf_free(&b);
    return rc;
}

void cenc_writer_free(cenc_writer *w)
{
    if (!w) return;
    cenc_cipher_free(w->cipher);
    ct_buf_free(&w->config);
    cenc_gbuf_free(&w->pssh);
    cenc_gbuf_free(&w->mdat);
    cenc_gbuf_free(&w->senc);
    cenc_gbuf_free(&w->moof);
    cenc_gbuf_free(&w->refs);
    cenc_gbuf_free(&w->ept);
    free(w->recipients);
    free(w->ps);
    ct_wipe(w->kid, sizeof w->kid);
    free(w);
}
