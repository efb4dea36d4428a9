/* The picture size from an SPS, for the sample entry and tkhd (players lay out the picture from them before
 * decoding). H.264 7.3.2.1.1 and H.265 7.3.2.2, read as far as the conformance/cropping window. */
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

static void h264_size(bits *b, uint32_t *w, uint32_t *h)
{
    static const uint8_t high[] = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135};
    uint32_t profile = u(b, 8), chroma = 1, separate = 0;
    u(b, 16);
    ue(b);
    if (memchr(high, (int)profile, sizeof high)) {
        if ((chroma = ue(b)) == 3) separate = u(b, 1);
        ue(b), ue(b), u(b, 1);
        if (u(b, 1)) h264_scaling_lists(b, chroma != 3 ? 8 : 12);
    }
    ue(b);
    uint32_t poc = ue(b);
    if (poc == 0) ue(b);
    if (poc == 1) {
        u(b, 1), se(b), se(b);
        for (uint32_t i = 0, n = ue(b); i < n && i < 256 && !b->bad; i++) se(b);
    }
    ue(b), u(b, 1);
    uint32_t mbs_w = ue(b) + 1, map_h = ue(b) + 1, frame_mbs = u(b, 1);
    if (!frame_mbs) u(b, 1);
    u(b, 1);
    uint32_t crop[4] = {0};
    if (u(b, 1))
        for (int i = 0; i < 4; i++) crop[i] = ue(b);
    uint32_t type = separate ? 0 : chroma;
    uint32_t cx = type == 0 || type == 3 ? 1 : 2, cy = (type == 1 ? 2 : 1) * (2 - frame_mbs);
    *w = mbs_w * 16 - cx * (crop[0] + crop[1]);
    *h = (2 - frame_mbs) * map_h * 16 - cy * (crop[2] + crop[3]);
}

static void h265_size(bits *b, uint32_t *w, uint32_t *h)
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
    ue(b);
    uint32_t chroma = ue(b), separate = chroma == 3 ? u(b, 1) : 0;
    *w = ue(b), *h = ue(b);
    if (u(b, 1)) {
        uint32_t l = ue(b), r = ue(b), t = ue(b), bo = ue(b), type = separate ? 0 : chroma;
        *w -= (type == 1 || type == 2 ? 2 : 1) * (l + r);
        *h -= (type == 1 ? 2 : 1) * (t + bo);
    }
}

void cenc_sps_size(media_codec c, const uint8_t *sps, size_t len, uint16_t *width, uint16_t *height)
{
    uint8_t rbsp[256];
    size_t hdr = media_nal_header_len(c), n = 0;
    uint32_t w = 0, h = 0;
    *width = *height = 0;
    if (len <= hdr || media_epb_remove(sps + hdr, len - hdr > 200 ? 200 : len - hdr, rbsp, sizeof rbsp, &n) != CT_OK) {
        ct_err_clear();
        return;
    }
    bits b = {rbsp, n * 8, 0, false};
    if (c == MEDIA_H264) h264_size(&b, &w, &h);
    else h265_size(&b, &w, &h);
    if (!b.bad && w > 0 && h > 0 && w <= 0xffff && h <= 0xffff) *width = (uint16_t)w, *height = (uint16_t)h;
}
