/* What cenc reads from parameter sets and slice headers: the picture size (for the sample entry and tkhd: players
 * lay out the picture from them before decoding) and the picture order count, which gives the presentation order
 * of streams with B-frames (Annex B carries no timestamps). H.264 7.3.2.1.1, 7.3.3 and 8.2.1; H.265 7.3.2.2,
 * 7.3.6.1 and 8.3.1; read only as far as those fields. */
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
    o->log2_max_frame_num = ue(b) + 4;
    o->poc_type = ue(b);
    if (o->poc_type == 0) o->log2_max_poc_lsb = ue(b) + 4;
    if (o->poc_type == 1) {
        u(b, 1), se(b), se(b);
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

/* H.265 7.3.2.2 up to log2_max_pic_order_cnt_lsb_minus4. */
static void h265_sps(bits *b, cenc_sps *o)
{
    u(b, 4);
    uint32_t sub = u(b, 3);
    u(b, 1);
    u(b, 32), u(b, 32), u(b, 32); /* general profile, compatibility, constraints, level: 96 bits */
    bool prof[8] = {false}, lev[8] = {false};
    for (uint32_t i = 0; i < sub; i++) prof[i] = u(b, 1), lev[i] = u(b, 1);
    if (sub > 0)
        for (uint32_t i = sub; i < 8; i++) u(b, 2);
    for (uint32_t i = 0; i < sub; i++) {
        if (prof[i]) u(b, 32), u(b, 32), u(b, 24); /* 88 bits */
        if (lev[i]) u(b, 8);
    }
    o->id = ue(b);
    uint32_t chroma = ue(b), separate = chroma == 3 ? u(b, 1) : 0;
    o->separate_colour_plane = separate;
    o->width = ue(b), o->height = ue(b);
    if (u(b, 1)) {
        uint32_t l = ue(b), r = ue(b), t = ue(b), bo = ue(b), type = separate ? 0 : chroma;
        o->width -= (type == 1 || type == 2 ? 2 : 1) * (l + r);
        o->height -= (type == 1 ? 2 : 1) * (t + bo);
    }
    ue(b), ue(b); /* bit depths */
    o->log2_max_poc_lsb = ue(b) + 4;
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
    uint8_t rbsp[256];
    bits b;
    memset(o, 0, sizeof *o);
    if (!rbsp_of(c, nal, len, rbsp, sizeof rbsp, &b)) return false;
    if (c == MEDIA_H264) h264_sps(&b, o);
    else h265_sps(&b, o);
    bool ok = !b.bad && o->id < CENC_MAX_SPS && o->log2_max_frame_num <= 16 && o->log2_max_poc_lsb <= 16;
    o->valid = ok;
    return ok;
}

void cenc_sps_size(media_codec c, const uint8_t *sps, size_t len, uint16_t *width, uint16_t *height)
{
    cenc_sps o;
    *width = *height = 0;
    if (sps_read(c, sps, len, &o) && o.width > 0 && o.height > 0 && o.width <= 0xffff && o.height <= 0xffff)
        *width = (uint16_t)o.width, *height = (uint16_t)o.height;
}

/* ---- picture order (H.264 8.2.1.1, H.265 8.3.1) ---- */

static void pps_read(cenc_order *s, media_codec c, const uint8_t *nal, size_t len)
{
    uint8_t rbsp[64];
    bits b;
    if (!rbsp_of(c, nal, len, rbsp, sizeof rbsp, &b)) return;
    uint32_t id = ue(&b), sps = ue(&b);
    cenc_pps p = {.sps = (uint8_t)sps, .valid = true};
    if (c == MEDIA_H265) {
        u(&b, 1); /* dependent_slice_segments_enabled_flag */
        p.output_flag_present = u(&b, 1);
        p.extra_slice_header_bits = (uint8_t)u(&b, 3);
    }
    if (!b.bad && id < CENC_MAX_PPS && sps < CENC_MAX_SPS) s->pps[id] = p;
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

bool cenc_order_nal(cenc_order *s, media_codec c, const uint8_t *nal, size_t len, uint64_t *key)
{
    media_nal_info info = media_nal_classify(c, nal, len);
    if (info.kind == MEDIA_NAL_PARAM) {
        unsigned sps_type = c == MEDIA_H265 ? 33 : 7, pps_type = c == MEDIA_H265 ? 34 : 8;
        cenc_sps sps;
        if (info.type == sps_type && sps_read(c, nal, len, &sps)) s->sps[sps.id] = sps;
        if (info.type == pps_type) pps_read(s, c, nal, len);
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
