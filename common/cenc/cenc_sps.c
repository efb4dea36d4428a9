/* What cenc reads from parameter sets and slice headers: the picture size (for the sample entry and tkhd: players
 * lay out the picture from them before decoding), the picture order count, which gives the presentation order
 * of streams with B-frames (Annex B carries no timestamps), and the length of each slice header, which Common
 * Encryption must leave clear (ISO/IEC 23001-7 9.5: the protected range starts in slice data). H.264 7.3.2.1.1,
 * 7.3.2.2, 7.3.3 and 8.2.1; H.265 7.3.2.2, 7.3.2.3, 7.3.6.1, 7.3.7 and 8.3.1. */
#include <string.h>

#include "cenc_priv.h"

typedef struct {
    const uint8_t *p;
    size_t bits, pos;
    bool bad;
} bits;

static uint32_t u(bits *b, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++, b->pos++) {
        if (b->pos >= b->bits) {
            b->bad = true;
            return 0;
        }
        v = v << 1 | ((b->p[b->pos / 8] >> (7 - b->pos % 8)) & 1);
    }
    return v;
}

static uint32_t ue(bits *b)
{
    unsigned zeros = 0;
    while (!b->bad && u(b, 1) == 0)
        if (++zeros > 31) b->bad = true;
    return b->bad ? 0 : (uint32_t)((1ull << zeros) - 1 + u(b, zeros));
}

static int32_t se(bits *b)
{
    uint32_t k = ue(b);
    return k & 1 ? (int32_t)((k + 1) / 2) : -(int32_t)(k / 2);
}

static void h264_scaling_lists(bits *b, unsigned lists)
{
    for (unsigned i = 0; i < lists && !b->bad; i++) {
        if (!u(b, 1)) continue;
        int last = 8, next = 8;
        for (unsigned j = 0; j < (i < 6 ? 16u : 64u) && !b->bad; j++) {
            if (next != 0) next = (last + se(b) + 256) % 256;
            last = next == 0 ? last : next;
        }
    }
}

/* H.264 7.3.2.1.1 up to the frame cropping: the fields picture order and picture size need. */
static void h264_sps(bits *b, cenc_sps *o)
{
    static const uint8_t high[] = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135};
    uint32_t profile = u(b, 8), chroma = 1, separate = 0;
    u(b, 16);
    o->id = ue(b);
    if (memchr(high, (int)profile, sizeof high)) {
        if ((chroma = ue(b)) == 3) separate = u(b, 1);
        ue(b), ue(b), u(b, 1);
        if (u(b, 1)) h264_scaling_lists(b, chroma != 3 ? 8 : 12);
    }
    o->separate_colour_plane = separate;
    o->chroma_array_type = (uint8_t)(separate ? 0 : chroma);
    o->log2_max_frame_num = ue(b) + 4;
    o->poc_type = ue(b);
    if (o->poc_type == 0) o->log2_max_poc_lsb = ue(b) + 4;
    if (o->poc_type == 1) {
        o->poc_zero = u(b, 1);
        se(b), se(b);
        for (uint32_t i = 0, n = ue(b); i < n && i < 256 && !b->bad; i++) se(b);
    }
    ue(b), u(b, 1);
    uint32_t mbs_w = ue(b) + 1, map_h = ue(b) + 1, frame_mbs = u(b, 1);
    o->frame_mbs_only = frame_mbs;
    if (!frame_mbs) u(b, 1);
    u(b, 1);
    uint32_t crop[4] = {0};
    if (u(b, 1))
        for (int i = 0; i < 4; i++) crop[i] = ue(b);
    uint32_t type = separate ? 0 : chroma;
    uint32_t cx = type == 0 || type == 3 ? 1 : 2, cy = (type == 1 ? 2 : 1) * (2 - frame_mbs);
    o->width = mbs_w * 16 - cx * (crop[0] + crop[1]);
    o->height = (2 - frame_mbs) * map_h * 16 - cy * (crop[2] + crop[3]);
}

/* H.265 profile_tier_level(1, sub): returns general_profile_idc and its compatibility flags. */
static uint32_t h265_ptl(bits *b, uint32_t sub, uint32_t *compat)
{
    u(b, 3); /* profile space, tier (read together: fewer calls in the camera's code) */
    uint32_t profile = u(b, 5);
    *compat = u(b, 32);
    u(b, 32), u(b, 24); /* constraint flags (48 bits), level */
    bool prof[8] = {false}, lev[8] = {false};
    for (uint32_t i = 0; i < sub; i++) prof[i] = u(b, 1), lev[i] = u(b, 1);
    if (sub > 0)
        for (uint32_t i = sub; i < 8; i++) u(b, 2);
    for (uint32_t i = 0; i < sub; i++) {
        if (prof[i]) u(b, 32), u(b, 32), u(b, 24); /* 88 bits */
        if (lev[i]) u(b, 8);
    }
    return profile;
}

/* What the H.265 SPS parse carries from its first part to the rest. */
typedef struct {
    uint32_t sub, chroma, profile, compat, pic_w, pic_h;
} h265_sps_head;

/* H.265 7.3.2.2 up to log2_max_pic_order_cnt_lsb_minus4: what picture order and size need. */
static void h265_sps(bits *b, cenc_sps *o, h265_sps_head *h)
{
    u(b, 4);
    h->sub = u(b, 3);
    u(b, 1);
    h->profile = h265_ptl(b, h->sub, &h->compat);
    o->id = ue(b);
    h->chroma = ue(b);
    uint32_t separate = h->chroma == 3 ? u(b, 1) : 0;
    o->separate_colour_plane = separate;
    o->width = h->pic_w = ue(b), o->height = h->pic_h = ue(b);
    if (u(b, 1)) {
        uint32_t l = ue(b), r = ue(b), t = ue(b), bo = ue(b), type = separate ? 0 : h->chroma;
        o->width -= (type == 1 || type == 2 ? 2 : 1) * (l + r);
        o->height -= (type == 1 ? 2 : 1) * (t + bo);
    }
    ue(b), ue(b); /* bit depths */
    o->log2_max_poc_lsb = ue(b) + 4;
}

/* H.265 7.3.4 scaling_list_data(): skipped. */
static void h265_scaling_lists(bits *b)
{
    for (unsigned size = 0; size < 4; size++)
        for (unsigned m = 0; m < 6 && !b->bad; m += size == 3 ? 3 : 1) {
            if (!u(b, 1)) {
                ue(b); /* scaling_list_pred_matrix_id_delta */
                continue;
            }
            unsigned coefs = size == 0 ? 16 : 64;
            if (size > 1) se(b);
            for (unsigned i = 0; i < coefs && !b->bad; i++) se(b);
        }
}

/* H.265 7.3.7 st_ref_pic_set(idx) into *o: `sets` are the SPS's sets before it, `num` the SPS's count (idx ==
 * num: the set of a slice header); derived as in 7.4.8. False if out of range. */
static bool h265_rps(bits *b, const cenc_rps *sets, unsigned idx, unsigned num, cenc_rps *o)
{
    memset(o, 0, sizeof *o);
    if (idx != 0 && u(b, 1)) { /* inter_ref_pic_set_prediction_flag */
        uint32_t delta_idx = idx == num ? ue(b) + 1 : 1;
        if (b->bad || delta_idx > idx) return false;
        const cenc_rps *r = &sets[idx - delta_idx];
        uint32_t sign = u(b, 1), abs = ue(b) + 1, n = r->neg + r->pos, used = 0, use = 0;
        if (abs > 1u << 15) return false;
        int32_t d = sign ? -(int32_t)abs : (int32_t)abs, cand[CENC_MAX_DELTAS + 1];
        for (uint32_t j = 0; j <= n && !b->bad; j++) {
            uint32_t f = u(b, 1);
            used |= f << j;
            use |= (f || u(b, 1)) << j; /* use_delta_flag, 1 when absent */
            cand[j] = (j < n ? r->poc[j] : 0) + d; /* entry n: the reference picture itself */
        }
        /* S0: from the nearest, S1 likewise (7-61, 7-62): walk the reference set's entries in that order. */
        uint32_t order[2 * CENC_MAX_DELTAS + 2], k = 0;
        for (uint32_t j = r->pos; j-- > 0;) order[k++] = r->neg + j;
        order[k++] = n;
        for (uint32_t j = 0; j < r->neg; j++) order[k++] = j;
        for (uint32_t j = r->neg; j-- > 0;) order[k++] = j;
        order[k++] = n;
        for (uint32_t j = 0; j < r->pos; j++) order[k++] = r->neg + j;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t j = order[i];
            bool s0 = i < k / 2;
            if (!(use >> j & 1) || (s0 ? cand[j] >= 0 : cand[j] <= 0)) continue;
            if (o->neg + o->pos >= CENC_MAX_DELTAS) return false;
            o->used |= (uint16_t)((used >> j & 1) << (o->neg + o->pos));
            o->poc[o->neg + o->pos] = cand[j];
            if (s0) o->neg++;
            else o->pos++;
        }
        return !b->bad;
    }
    uint32_t neg = ue(b), pos = ue(b);
    if (b->bad || neg > CENC_MAX_DELTAS || pos > CENC_MAX_DELTAS - neg) return false;
    int32_t poc = 0;
    for (uint32_t i = 0; i < neg + pos && !b->bad; i++) {
        if (i == neg) poc = 0;
        uint32_t delta = ue(b) + 1;
        if (delta > 1u << 15) return false;
        poc += i < neg ? -(int32_t)delta : (int32_t)delta;
        o->poc[i] = poc;
        o->used |= (uint16_t)(u(b, 1) << i);
    }
    o->neg = (uint8_t)neg, o->pos = (uint8_t)pos;
    return !b->bad;
}

static unsigned ceil_log2(uint32_t n)
{
    unsigned k = 0;
    while (k < 32 && (1ull << k) < n) k++;
    return k;
}

/* H.265 7.3.2.2 from sps_sub_layer_ordering_info_present_flag to sps_temporal_mvp_enabled_flag: what slice
 * headers need. Profiles past Main 4:4:4 and high throughput (multi-layer, 3D, screen content) may carry SPS and
 * PPS extensions that change the slice header: not read. */
static void h265_sps_tail(bits *b, cenc_sps *o, const h265_sps_head *h)
{
    o->chroma_array_type = (uint8_t)(o->separate_colour_plane ? 0 : h->chroma);
    for (uint32_t i = u(b, 1) ? 0 : h->sub; i <= h->sub && !b->bad; i++) ue(b), ue(b), ue(b);
    uint32_t ctb = ue(b) + 3;
    ctb += ue(b);
    ue(b), ue(b), ue(b), ue(b); /* transform block sizes and depths */
    if (u(b, 1) && u(b, 1)) h265_scaling_lists(b);
    u(b, 1); /* amp_enabled_flag */
    o->sao = u(b, 1);
    if (u(b, 1)) u(b, 8), ue(b), ue(b), u(b, 1); /* PCM */
    uint32_t n = ue(b);
    if (b->bad || n > CENC_MAX_RPS || ctb < 4 || ctb > 6 || h->pic_w == 0 || h->pic_h == 0 || h->pic_w > 65536 ||
        h->pic_h > 65536)
        return (void)(b->bad = true);
    uint32_t size = 1u << ctb, ctbs = ((h->pic_w + size - 1) >> ctb) * ((h->pic_h + size - 1) >> ctb);
    o->addr_bits = (uint8_t)ceil_log2(ctbs);
    o->n_rps = (uint8_t)n;
    for (uint32_t i = 0; i < n; i++)
        if (!h265_rps(b, o->rps, i, n, &o->rps[i])) return (void)(b->bad = true);
    if ((o->long_term = (uint8_t)u(b, 1))) {
        uint32_t lt = ue(b);
        if (lt > 32) return (void)(b->bad = true);
        o->n_lt = (uint8_t)lt;
        for (uint32_t i = 0; i < lt; i++) u(b, o->log2_max_poc_lsb), o->lt_used |= u(b, 1) << i;
    }
    o->temporal_mvp = (uint8_t)u(b, 1);
    bool known = (h->profile >= 1 && h->profile <= 5) || (h->profile == 0 && (h->compat & 0x7c000000u));
    if (!known) b->bad = true;
}

/* The RBSP of a NAL unit's first bytes (header skipped), enough for any header field read here. */
static bool rbsp_of(media_codec c, const uint8_t *nal, size_t len, uint8_t *rbsp, size_t max, bits *b)
{
    size_t hdr = media_nal_header_len(c), n = 0;
    if (len <= hdr || media_epb_remove(nal + hdr, len - hdr > max - 16 ? max - 16 : len - hdr, rbsp, max, &n) != CT_OK) {
        ct_err_clear();
        return false;
    }
    *b = (bits){rbsp, n * 8, 0, false};
    return true;
}

static bool sps_read(media_codec c, const uint8_t *nal, size_t len, cenc_sps *o)
{
    uint8_t rbsp[1024];
    bits b;
    h265_sps_head h = {0};
    memset(o, 0, sizeof *o);
    if (!rbsp_of(c, nal, len, rbsp, sizeof rbsp, &b)) return false;
    if (c == MEDIA_H264) h264_sps(&b, o);
    else h265_sps(&b, o, &h);
    bool ok = !b.bad && o->id < CENC_MAX_SPS && o->log2_max_frame_num <= 16 && o->log2_max_poc_lsb <= 16;
    /* The rest matters to slice headers only: an SPS that fails there still orders pictures. */
    if (ok && c == MEDIA_H265) h265_sps_tail(&b, o, &h);
    o->valid = ok;
    o->hdr = ok && !b.bad;
    return ok;
}

void cenc_sps_size(media_codec c, const uint8_t *sps, size_t len, uint16_t *width, uint16_t *height)
{
    cenc_sps o;
    *width = *height = 0;
    if (sps_read(c, sps, len, &o) && o.width > 0 && o.height > 0 && o.width <= 0xffff && o.height <= 0xffff)
        *width = (uint16_t)o.width, *height = (uint16_t)o.height;
}

int cenc_param_slot(media_codec c, const uint8_t *nal, size_t len)
{
    uint8_t rbsp[256];
    bits b;
    uint32_t compat, type = media_nal_classify(c, nal, len).type, base, id;
    if (!rbsp_of(c, nal, len, rbsp, sizeof rbsp, &b)) return -1;
    if (c == MEDIA_H265 && type == 32) {
        base = 0, id = u(&b, 4); /* VPS */
    } else if (c == MEDIA_H265 && type == 33) {
        u(&b, 4);
        uint32_t sub = u(&b, 3);
        u(&b, 1);
        h265_ptl(&b, sub, &compat);
        base = 32, id = ue(&b);
    } else if (c == MEDIA_H264 && (type == 7 || type == 15)) { /* SPS, subset SPS: profile, flags, level, id */
        u(&b, 24);
        base = type == 7 ? 0 : 32, id = ue(&b);
    } else if (type == (c == MEDIA_H265 ? 34u : 8u) || (c == MEDIA_H264 && type == 13)) {
        base = type == 13 ? 64 : 96, id = ue(&b); /* PPS, SPS extension: the id first */
    } else {
        return -1;
    }
    return b.bad || id >= (base == 96 ? CENC_MAX_PPS : CENC_MAX_SPS) ? -1 : (int)(base + id);
}

/* ---- picture order (H.264 8.2.1.1, H.265 8.3.1) ---- */

/* H.264 7.3.2.2 up to redundant_pic_cnt_present_flag. Slice groups (FMO, Baseline only) are not read. */
static void h264_pps(bits *b, cenc_pps *p)
{
    p->cabac = (uint8_t)u(b, 1);
    p->bottom_field_poc = (uint8_t)u(b, 1);
    if (ue(b) != 0) b->bad = true; /* num_slice_groups_minus1 */
    uint32_t l0 = ue(b), l1 = ue(b);
    p->weighted_pred = (uint8_t)u(b, 1);
    p->weighted_bipred = (uint8_t)u(b, 2);
    se(b), se(b), se(b); /* pic_init_qp, pic_init_qs, chroma_qp_index_offset */
    p->deblocking_control = (uint8_t)u(b, 1);
    u(b, 1); /* constrained_intra_pred_flag */
    p->redundant_pic_cnt = (uint8_t)u(b, 1);
    if (l0 > 31 || l1 > 31) b->bad = true;
    p->ref_idx[0] = (uint8_t)l0, p->ref_idx[1] = (uint8_t)l1;
}

/* H.265 7.3.2.3 after num_extra_slice_header_bits, through pps_range_extension()'s
 * chroma_qp_offset_list_enabled_flag. Multi-layer, 3D and screen content extensions are not read. */
static void h265_pps(bits *b, cenc_pps *p)
{
    u(b, 1); /* sign_data_hiding_enabled_flag */
    p->cabac_init = (uint8_t)u(b, 1);
    uint32_t l0 = ue(b), l1 = ue(b);
    se(b);   /* init_qp_minus26 */
    u(b, 1); /* constrained_intra_pred_flag */
    uint32_t transform_skip = u(b, 1);
    if (u(b, 1)) ue(b); /* cu_qp_delta_enabled_flag, diff_cu_qp_delta_depth */
    se(b), se(b);       /* pps_cb_qp_offset, pps_cr_qp_offset */
    p->chroma_qp_offsets = (uint8_t)u(b, 1);
    p->weighted_pred = (uint8_t)u(b, 1);
    p->weighted_bipred = (uint8_t)u(b, 1);
    u(b, 1); /* transquant_bypass_enabled_flag */
    uint32_t tiles = u(b, 1), wpp = u(b, 1);
    p->entry_points = (uint8_t)(tiles || wpp);
    if (tiles) {
        uint32_t cols = ue(b), rows = ue(b);
        if (cols > 63 || rows > 63) return (void)(b->bad = true);
        if (!u(b, 1)) /* uniform_spacing_flag */
            for (uint32_t i = 0; i < cols + rows; i++) ue(b);
        u(b, 1); /* loop_filter_across_tiles_enabled_flag */
    }
    p->lf_across_slices = (uint8_t)u(b, 1);
    if (u(b, 1)) { /* deblocking_filter_control_present_flag */
        p->deblocking_override = (uint8_t)u(b, 1);
        if (!(p->deblocking_disabled = (uint8_t)u(b, 1))) se(b), se(b);
    }
    if (u(b, 1)) h265_scaling_lists(b);
    p->lists_mod = (uint8_t)u(b, 1);
    ue(b); /* log2_parallel_merge_level_minus2 */
    p->header_ext = (uint8_t)u(b, 1);
    if (u(b, 1)) { /* pps_extension_present_flag */
        uint32_t range = u(b, 1), others = u(b, 7);
        if (others) b->bad = true;
        if (range) {
            if (transform_skip) ue(b); /* log2_max_transform_skip_block_size_minus2 */
            u(b, 1);                   /* cross_component_prediction_enabled_flag */
            p->chroma_qp_list = (uint8_t)u(b, 1);
        }
    }
    if (l0 > 14 || l1 > 14) b->bad = true;
    p->ref_idx[0] = (uint8_t)l0, p->ref_idx[1] = (uint8_t)l1;
}

static void pps_read(cenc_order *s, media_codec c, const uint8_t *nal, size_t len)
{
    uint8_t rbsp[1024];
    bits b;
    if (!rbsp_of(c, nal, len, rbsp, sizeof rbsp, &b)) return;
    uint32_t id = ue(&b), sps = ue(&b);
    cenc_pps p = {.sps = (uint8_t)sps, .valid = true};
    if (c == MEDIA_H265) {
        p.dependent_slices = (uint8_t)u(&b, 1);
        p.output_flag_present = (uint8_t)u(&b, 1);
        p.extra_slice_header_bits = (uint8_t)u(&b, 3);
    }
    if (b.bad || id >= CENC_MAX_PPS || sps >= CENC_MAX_SPS) return;
    /* The rest matters to slice headers only: a PPS that fails there still orders pictures. */
    if (c == MEDIA_H265) h265_pps(&b, &p);
    else h264_pps(&b, &p);
    p.hdr = !b.bad;
    s->pps[id] = p;
}

/* H.264: the picture order count of a frame's first slice, pic_order_cnt_type 0; types 1 and 2 are treated as
 * output in decoding order (type 2 is by definition; type 1 is rare in cameras). */
static bool h264_order(cenc_order *s, const uint8_t *nal, size_t len, int64_t *poc)
{
    uint8_t rbsp[64];
    bits b;
    bool idr = (nal[0] & 0x1f) == 5, ref = (nal[0] & 0x60) != 0;
    if (!rbsp_of(MEDIA_H264, nal, len, rbsp, sizeof rbsp, &b)) return false;
    ue(&b), ue(&b);
    uint32_t pps = ue(&b);
    if (b.bad || pps >= CENC_MAX_PPS || !s->pps[pps].valid || !s->sps[s->pps[pps].sps].valid) return false;
    const cenc_sps *sps = &s->sps[s->pps[pps].sps];
    if (sps->separate_colour_plane) u(&b, 2);
    u(&b, sps->log2_max_frame_num);
    if (!sps->frame_mbs_only && u(&b, 1)) u(&b, 1);
    if (idr) {
        ue(&b); /* idr_pic_id */
        s->prev_msb = s->prev_lsb = 0;
        s->epoch++;
    }
    if (sps->poc_type != 0) {
        *poc = s->decoded;
        return !b.bad;
    }
    int64_t lsb = u(&b, sps->log2_max_poc_lsb), max = (int64_t)1 << sps->log2_max_poc_lsb, msb = s->prev_msb;
    if (b.bad) return false;
    if (lsb < s->prev_lsb && s->prev_lsb - lsb >= max / 2) msb += max;
    else if (lsb > s->prev_lsb && lsb - s->prev_lsb > max / 2) msb -= max;
    if (ref) s->prev_msb = msb, s->prev_lsb = lsb;
    *poc = msb + lsb;
    return true;
}

/* H.265: slice_pic_order_cnt_lsb of a picture's first slice segment, its MSB from the previous TemporalId 0
 * picture that is not a RASL, RADL or sub-layer non-reference picture. */
static bool h265_order(cenc_order *s, const uint8_t *nal, size_t len, int64_t *poc)
{
    uint8_t rbsp[64];
    bits b;
    unsigned type = (nal[0] >> 1) & 0x3f, tid = len > 1 ? (nal[1] & 7u) - 1 : 0;
    bool irap = type >= 16 && type <= 23, idr = type == 19 || type == 20;
    bool reset = idr || (type >= 16 && type <= 18) || (type == 21 && s->epoch == 0); /* IDR, BLA, a first CRA */
    if (!rbsp_of(MEDIA_H265, nal, len, rbsp, sizeof rbsp, &b)) return false;
    u(&b, 1);
    if (irap) u(&b, 1);
    uint32_t pps = ue(&b);
    if (b.bad || pps >= CENC_MAX_PPS || !s->pps[pps].valid || !s->sps[s->pps[pps].sps].valid) return false;
    const cenc_pps *pp = &s->pps[pps];
    const cenc_sps *sps = &s->sps[pp->sps];
    u(&b, pp->extra_slice_header_bits);
    ue(&b);
    if (pp->output_flag_present) u(&b, 1);
    if (sps->separate_colour_plane) u(&b, 2);
    int64_t lsb = idr ? 0 : u(&b, sps->log2_max_poc_lsb), max = (int64_t)1 << sps->log2_max_poc_lsb, msb = 0;
    if (b.bad) return false;
    if (reset) {
        s->epoch++;
    } else {
        msb = s->prev_msb;
        if (lsb < s->prev_lsb && s->prev_lsb - lsb >= max / 2) msb += max;
        else if (lsb > s->prev_lsb && lsb - s->prev_lsb > max / 2) msb -= max;
    }
    bool sub_layer_non_ref = type <= 14 && type % 2 == 0;
    if (tid == 0 && !(type >= 6 && type <= 9) && !sub_layer_non_ref) s->prev_msb = msb, s->prev_lsb = lsb;
    *poc = msb + lsb;
    return true;
}

void cenc_params_nal(cenc_order *s, media_codec c, const uint8_t *nal, size_t len)
{
    media_nal_info info = media_nal_classify(c, nal, len);
    if (info.kind != MEDIA_NAL_PARAM) return;
    cenc_sps sps;
    if (info.type == (c == MEDIA_H265 ? 33u : 7u) && sps_read(c, nal, len, &sps)) s->sps[sps.id] = sps;
    if (info.type == (c == MEDIA_H265 ? 34u : 8u)) pps_read(s, c, nal, len);
}

bool cenc_order_nal(cenc_order *s, media_codec c, const uint8_t *nal, size_t len, uint64_t *key)
{
    media_nal_info info = media_nal_classify(c, nal, len);
    if (info.kind == MEDIA_NAL_PARAM) {
        cenc_params_nal(s, c, nal, len);
        return false;
    }
    if (!media_nal_is_vcl(info.kind) || !info.first_slice) return false;
    int64_t poc = 0;
    bool ok = c == MEDIA_H264 ? h264_order(s, nal, len, &poc) : h265_order(s, nal, len, &poc);
    s->decoded++;
    if (!ok) poc = s->decoded; /* unreadable: assume decoding order */
    /* Within an epoch (from one POC reset to the next) the count orders the pictures; pictures of a later epoch
     * follow every picture of the earlier ones. */
    *key = ((uint64_t)s->epoch << 40) | ((uint64_t)(poc + ((int64_t)1 << 39)) & (((uint64_t)1 << 40) - 1));
    return true;
}

/* ---- slice header length ---- */

#define LIST_OPS_MAX 66 /* reordering / marking commands in one header: more than any list or DPB holds */

/* H.264 7.3.3.1 for one list: modification_of_pic_nums_idc commands up to 3. */
static void h264_list_mod(bits *b)
{
    if (!u(b, 1)) return;
    for (unsigned i = 0; !b->bad; i++) {
        uint32_t idc = ue(b);
        if (idc == 3) return;
        if (idc > 2 || i == LIST_OPS_MAX) b->bad = true;
        else ue(b); /* abs_diff_pic_num_minus1 or long_term_pic_num */
    }
}

/* H.264 7.3.3.2 pred_weight_table for `lists` lists of n[i] + 1 entries. */
static void h264_weights(bits *b, const cenc_sps *sps, unsigned lists, const uint32_t n[2])
{
    ue(b);
    if (sps->chroma_array_type) ue(b);
    for (unsigned l = 0; l < lists; l++)
        for (uint32_t i = 0; i <= n[l] && !b->bad; i++) {
            if (u(b, 1)) se(b), se(b);
            if (sps->chroma_array_type && u(b, 1)) se(b), se(b), se(b), se(b);
        }
}

/* H.264 7.3.3 (slice types 0-9: P B I SP SI, twice). */
static bool h264_header(const cenc_order *s, const uint8_t *nal, bits *b)
{
    unsigned nal_type = nal[0] & 0x1f, ref_idc = (nal[0] >> 5) & 3;
    if (nal_type != 1 && nal_type != 5) return false; /* data partitions, MVC and SVC slices */
    ue(b);
    uint32_t type = ue(b), pps_id = ue(b);
    if (b->bad || type > 9 || pps_id >= CENC_MAX_PPS) return false;
    const cenc_pps *pps = &s->pps[pps_id];
    const cenc_sps *sps = &s->sps[pps->sps];
    if (!pps->valid || !pps->hdr || !sps->valid || !sps->hdr) return false;
    type %= 5;
    bool p = type == 0 || type == 3, bslice = type == 1, field = false;
    if (sps->separate_colour_plane) u(b, 2);
    u(b, sps->log2_max_frame_num);
    if (!sps->frame_mbs_only && (field = u(b, 1))) u(b, 1);
    if (nal_type == 5) ue(b); /* idr_pic_id */
    if (sps->poc_type == 0) {
        u(b, sps->log2_max_poc_lsb);
        if (pps->bottom_field_poc && !field) se(b);
    }
    if (sps->poc_type == 1 && !sps->poc_zero) {
        se(b);
        if (pps->bottom_field_poc && !field) se(b);
    }
    if (pps->redundant_pic_cnt) ue(b);
    if (bslice) u(b, 1); /* direct_spatial_mv_pred_flag */
    uint32_t n[2] = {pps->ref_idx[0], pps->ref_idx[1]};
    if ((p || bslice) && u(b, 1)) { /* num_ref_idx_active_override_flag */
        n[0] = ue(b);
        if (bslice) n[1] = ue(b);
    }
    if (n[0] > 31 || n[1] > 31) return false;
    if (type != 2 && type != 4) h264_list_mod(b);
    if (bslice) h264_list_mod(b);
    if ((pps->weighted_pred && p) || (pps->weighted_bipred == 1 && bslice)) h264_weights(b, sps, bslice ? 2 : 1, n);
    if (ref_idc != 0) { /* dec_ref_pic_marking */
        if (nal_type == 5) {
            u(b, 2);
        } else if (u(b, 1)) {
            for (unsigned i = 0; !b->bad; i++) {
                uint32_t op = ue(b);
                if (op == 0) break;
                if (op > 6 || i == LIST_OPS_MAX) return false;
                if (op == 1 || op == 3) ue(b);
                if (op == 2) ue(b);
                if (op == 3 || op == 6) ue(b);
                if (op == 4) ue(b);
            }
        }
    }
    if (pps->cabac && type != 2 && type != 4) ue(b); /* cabac_init_idc */
    se(b);                                            /* slice_qp_delta */
    if (type == 3 || type == 4) {
        if (type == 3) u(b, 1);
        se(b);
    }
    if (pps->deblocking_control && ue(b) != 1) se(b), se(b);
    /* CABAC slice data starts at the next byte (cabac_alignment_one_bit); CAVLC slice data shares the header's
     * last byte, which therefore stays clear with it. */
    return !b->bad;
}

/* H.265 7.3.6.3 pred_weight_table for `lists` lists of n[i] + 1 entries: without layers or screen content every
 * reference picture has another POC than the current one, so each entry has its flags. */
static void h265_weights(bits *b, const cenc_sps *sps, unsigned lists, const uint32_t n[2])
{
    ue(b);
    if (sps->chroma_array_type) se(b);
    for (unsigned l = 0; l < lists && !b->bad; l++) {
        uint32_t luma = 0, chroma = 0;
        for (uint32_t i = 0; i <= n[l]; i++) luma |= u(b, 1) << i;
        if (sps->chroma_array_type)
            for (uint32_t i = 0; i <= n[l]; i++) chroma |= u(b, 1) << i;
        for (uint32_t i = 0; i <= n[l] && !b->bad; i++) {
            if (luma >> i & 1) se(b), se(b);
            if (chroma >> i & 1) se(b), se(b), se(b), se(b);
        }
    }
}

static unsigned popcount(uint32_t v)
{
    unsigned k = 0;
    for (; v; v &= v - 1) k++;
    return k;
}

/* H.265 7.3.6.1 from slice_type up to the entry points, for an independent slice segment. */
static bool h265_independent(bits *b, const cenc_sps *sps, const cenc_pps *pps, unsigned nal_type)
{
    u(b, pps->extra_slice_header_bits);
    uint32_t type = ue(b);
    if (b->bad || type > 2) return false;
    bool bslice = type == 0, inter = type != 2;
    if (pps->output_flag_present) u(b, 1);
    if (sps->separate_colour_plane) u(b, 2);
    unsigned curr = 0; /* NumPicTotalCurr */
    uint32_t tmvp = 0;
    if (nal_type != 19 && nal_type != 20) { /* not IDR */
        cenc_rps own;
        const cenc_rps *rps;
        u(b, sps->log2_max_poc_lsb);
        if (!u(b, 1)) { /* short_term_ref_pic_set_sps_flag */
            if (!h265_rps(b, sps->rps, sps->n_rps, sps->n_rps, &own)) return false;
            rps = &own;
        } else {
            uint32_t idx = sps->n_rps > 1 ? u(b, ceil_log2(sps->n_rps)) : 0;
            if (idx >= sps->n_rps) return false;
            rps = &sps->rps[idx];
        }
        curr = popcount(rps->used);
        if (sps->long_term) {
            uint32_t n_sps = sps->n_lt > 0 ? ue(b) : 0, n_pics = ue(b);
            if (b->bad || n_sps > sps->n_lt || n_pics > 32) return false;
            for (uint32_t i = 0; i < n_sps + n_pics && !b->bad; i++) {
                if (i < n_sps) {
                    uint32_t idx = sps->n_lt > 1 ? u(b, ceil_log2(sps->n_lt)) : 0;
                    if (idx >= sps->n_lt) return false;
                    curr += sps->lt_used >> idx & 1;
                } else {
                    u(b, sps->log2_max_poc_lsb);
                    curr += u(b, 1);
                }
                if (u(b, 1)) ue(b); /* delta_poc_msb_present_flag, delta_poc_msb_cycle_lt */
            }
        }
        if (sps->temporal_mvp) tmvp = u(b, 1);
    }
    uint32_t sao = 0;
    if (sps->sao) {
        sao = u(b, 1);
        if (sps->chroma_array_type) sao |= u(b, 1);
    }
    if (inter) {
        uint32_t n[2] = {pps->ref_idx[0], pps->ref_idx[1]};
        if (u(b, 1)) { /* num_ref_idx_active_override_flag */
            n[0] = ue(b);
            if (bslice) n[1] = ue(b);
        }
        if (b->bad || n[0] > 14 || n[1] > 14) return false;
        if (pps->lists_mod && curr > 1)
            for (unsigned l = 0; l < (bslice ? 2u : 1u); l++)
                if (u(b, 1))
                    for (uint32_t i = 0; i <= n[l]; i++) u(b, ceil_log2(curr));
        if (bslice) u(b, 1); /* mvd_l1_zero_flag */
        if (pps->cabac_init) u(b, 1);
        if (tmvp) {
            uint32_t from_l0 = bslice ? u(b, 1) : 1;
            if (n[from_l0 ? 0 : 1] > 0) ue(b); /* collocated_ref_idx */
        }
        if ((pps->weighted_pred && !bslice) || (pps->weighted_bipred && bslice))
            h265_weights(b, sps, bslice ? 2 : 1, n);
        ue(b); /* five_minus_max_num_merge_cand */
    }
    se(b); /* slice_qp_delta */
    if (pps->chroma_qp_offsets) se(b), se(b);
    if (pps->chroma_qp_list) u(b, 1);
    uint32_t deblocking_off = pps->deblocking_disabled;
    if (pps->deblocking_override && u(b, 1) && !(deblocking_off = u(b, 1))) se(b), se(b);
    if (pps->lf_across_slices && (sao || !deblocking_off)) u(b, 1);
    return !b->bad;
}

/* H.265 7.3.6.1 through byte_alignment(). */
static bool h265_header(const cenc_order *s, const uint8_t *nal, bits *b)
{
    unsigned nal_type = (nal[0] >> 1) & 0x3f, layer = (nal[0] & 1u) << 5 | nal[1] >> 3;
    if (layer != 0 || (nal_type > 9 && nal_type < 16) || nal_type > 21) return false; /* layers; reserved types */
    uint32_t first = u(b, 1);
    if (nal_type >= 16) u(b, 1); /* no_output_of_prior_pics_flag */
    uint32_t pps_id = ue(b);
    if (b->bad || pps_id >= 64) return false;
    const cenc_pps *pps = &s->pps[pps_id];
    const cenc_sps *sps = &s->sps[pps->sps];
    if (!pps->valid || !pps->hdr || !sps->valid || !sps->hdr) return false;
    uint32_t dependent = 0;
    if (!first) {
        if (pps->dependent_slices) dependent = u(b, 1);
        u(b, sps->addr_bits); /* slice_segment_address */
    }
    if (!dependent && !h265_independent(b, sps, pps, nal_type)) return false;
    if (pps->entry_points) {
        uint32_t n = ue(b);
        if (n > 0) {
            uint32_t bits_each = ue(b) + 1;
            if (b->bad || bits_each > 32 || n > (b->bits - b->pos) / bits_each) return false;
            b->pos += (size_t)n * bits_each; /* entry_point_offset_minus1: only their length matters */
        }
    }
    if (pps->header_ext) {
        uint32_t n = ue(b);
        if (b->bad || n > 256 || 8 * n > b->bits - b->pos) return false;
        b->pos += 8 * n; /* slice_segment_header_extension_data_byte */
    }
    if (b->pos > b->bits || u(b, 1) != 1) return false; /* alignment_bit_equal_to_one */
    while (b->pos % 8 && !b->bad)
        if (u(b, 1) != 0) return false;
    return !b->bad;
}

bool cenc_slice_header_size(const cenc_order *ps, media_codec c, const uint8_t *nal, size_t len, size_t *bytes)
{
    uint8_t rbsp[4096]; /* H.265 entry points take up to 32 bits per tile or CTB row */
    bits b;
    size_t hdr = media_nal_header_len(c);
    if (!media_nal_is_vcl(media_nal_classify(c, nal, len).kind) || !rbsp_of(c, nal, len, rbsp, sizeof rbsp, &b))
        return false;
    if (!(c == MEDIA_H264 ? h264_header(ps, nal, &b) : h265_header(ps, nal, &b)) || b.pos > b.bits) return false;
    size_t n = hdr + media_epb_offset(nal + hdr, len - hdr, (b.pos + 7) / 8);
    if (n > len) return false;
    *bytes = n;
    return true;
}
