/* ISO BMFF (MP4): a bounded box reader, the sample tables of plain (non-fragmented) files, and a rewriter that
 * replaces the video samples (what signing needs; Common Encryption will need the same walk). */
#define _FILE_OFFSET_BITS 64
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "media.h"

#define T(a, b, c, d) MEDIA_FOURCC(a, b, c, d)
#define MP4_EPOCH_TO_UNIX 2082844800u /* seconds from 1904-01-01 to 1970-01-01 */

typedef struct {
    uint32_t handler;
    media_codec codec;           /* 0 unless an H.264/H.265 sample entry */
    unsigned nal_length_size;
    uint32_t timescale;
    const uint8_t *config;       /* avcC / hvcC content, in the file */
    size_t config_len;
    uint32_t n_samples, n_available; /* samples listed / fully inside the file */
    uint32_t *sizes;
    uint64_t *offs;
    uint64_t *dts;               /* video track only */
    uint8_t *sync;               /* video track only; NULL: every sample is a sync sample */
    int32_t *cts;                /* video track only; NULL: presented in decoding order (no ctts) */
    uint32_t n_chunks;
    uint64_t *chunk_off;
    uint32_t *chunk_first;       /* first sample of each chunk */
} mp4_track;

struct media_mp4 {
    const uint8_t *buf;
    size_t len;
    media_box moov;
    time_t created;
    size_t n_tracks;
    mp4_track tracks[MEDIA_MP4_MAX_TRACKS];
    int video; /* index of the first H.264/H.265 track, -1 if none */
};

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

ct_err media_box_next(const uint8_t *buf, uint64_t end, uint64_t *pos, media_box *out)
{
    if (*pos >= end) return CT_ERR_NOT_FOUND;
    uint64_t left = end - *pos;
    CT_ENSURE_RET(left >= 8, ct_fail(CT_ERR_BAD_REQUEST, "box header cut off at byte %llu", (unsigned long long)*pos));
    const uint8_t *p = buf + *pos;
    uint64_t size = be32(p), hdr = 8;
    out->type = be32(p + 4);
    if (size == 1) {
        CT_ENSURE_RET(left >= 16, ct_fail(CT_ERR_BAD_REQUEST, "box largesize cut off"));
        size = be64(p + 8);
        hdr = 16;
    } else if (size == 0) {
        size = left; /* to the end of the enclosing space */
    }
    if (out->type == T('u', 'u', 'i', 'd')) hdr += 16;
    CT_ENSURE_RET(size >= hdr && size <= left,
                  ct_fail(CT_ERR_BAD_REQUEST, "box '%s' at byte %llu claims %llu bytes, %llu are left",
                          ct_text_safe((char[5]){0}, 5, p + 4, 4),
                          (unsigned long long)*pos, (unsigned long long)size, (unsigned long long)left));
    out->off = *pos;
    out->hdr = hdr;
    out->size = size;
    *pos += size;
    return CT_OK;
}

ct_err media_box_find(const uint8_t *buf, uint64_t start, uint64_t end, uint32_t type, media_box *out)
{
    uint64_t pos = start;
    ct_err rc;
    while ((rc = media_box_next(buf, end, &pos, out)) == CT_OK)
        if (out->type == type) return CT_OK;
    return rc;
}

static uint64_t box_start(const media_box *b) { return b->off + b->hdr; }

/* One elst box's entries (version 0: duration, media_time, rate of 4 bytes each; 1: 8, 8, 4), every read within
 * the box: an empty edit has media_time -1. */
static void elst_read(const uint8_t *p, uint64_t len, media_edits *out)
{
    if (len < 8) {
        out->malformed = true;
        return;
    }
    uint64_t entry = p[0] == 1 ? 20 : 12, edits = 0, count = be32(p + 4), pos = 8;
    for (; count > 0 && len - pos >= entry; pos += entry, count--) {
        const uint8_t *e = p + pos + entry - 12; /* e[4..7]: media_time's last 4 bytes (v1: e[0..3] its first); e[8..]:
                                                  * the rate, 1.0 as 16.16 */
        bool empty = be32(e + 4) == 0xffffffffu && (entry == 12 || be32(e) == 0xffffffffu);
        edits += !empty;
        if (!empty && be32(e + 8) != 0x00010000u) out->other_rate = true;
    }
    if (count > 0) out->malformed = true;
    if (edits > out->most_edits) out->most_edits = edits;
}

/* The next box inside a sample entry, passing over `sinf` (what an encrypted entry adds). */
static ct_err entry_box(const uint8_t *buf, const media_box *e, uint64_t *pos, media_box *out)
{
    ct_err rc;
    while ((rc = media_box_next(buf, e->off + e->size, pos, out)) == CT_OK && out->type == T('s', 'i', 'n', 'f')) {}
    return rc;
}

/* What a video sample entry holds: its type, or for an encrypted one (`encv`) the original format its sinf's frma
 * names (0: none). */
static uint32_t entry_format(const uint8_t *buf, const media_box *e)
{
    media_box sinf, frma;
    if (e->type != T('e', 'n', 'c', 'v')) return e->type;
    if (e->size - e->hdr < 78 ||
        media_box_find(buf, box_start(e) + 78, e->off + e->size, T('s', 'i', 'n', 'f'), &sinf) != CT_OK ||
        media_box_find(buf, box_start(&sinf), sinf.off + sinf.size, T('f', 'r', 'm', 'a'), &frma) != CT_OK ||
        frma.size - frma.hdr < 4) {
        ct_err_clear();
        return 0;
    }
    return be32(buf + box_start(&frma));
}

/* Whether two video sample entries give a decoder the same: the VisualSampleEntry fields (78 bytes) and the same
 * boxes in the same order (avcC/hvcC, pasp, clap, colr...), byte for byte, but for the name `encv` (whose frma must
 * name the other's format: avc1 and avc3 or hvc1 and hev1 are decoded otherwise) and the `sinf` of an encrypted one
 * (a clear lead: an `avc1` entry for the first samples beside the `encv` of the others). */
static bool same_entry(const uint8_t *buf, const media_box *a, const media_box *b)
{
    const uint64_t fields = 78;
    media_box x, y;
    ct_err ra, rb;
    uint64_t pa = box_start(a) + fields, pb = box_start(b) + fields;
    uint32_t format = entry_format(buf, a);
    if (format == 0 || format != entry_format(buf, b) ||
        a->size - a->hdr < fields || b->size - b->hdr < fields ||
        memcmp(buf + box_start(a), buf + box_start(b), fields) != 0)
        return false;
    while ((ra = entry_box(buf, a, &pa, &x)) == CT_OK && (rb = entry_box(buf, b, &pb, &y)) == CT_OK)
        if (x.size != y.size || memcmp(buf + x.off, buf + y.off, x.size) != 0) return false;
    if (ra == CT_OK) return false; /* a has a box more */
    ct_err_clear();
    return ra == CT_ERR_NOT_FOUND && entry_box(buf, b, &pb, &y) == CT_ERR_NOT_FOUND;
}

/* The sample entries of a video track's stsd that differ (same_entry): its count or its boxes, the larger (0 for
 * another track). */
static uint64_t video_entries(const uint8_t *buf, const media_box *trak)
{
    static const uint32_t path[] = {T('m', 'd', 'i', 'a'), T('m', 'i', 'n', 'f'), T('s', 't', 'b', 'l'),
                                    T('s', 't', 's', 'd')};
    media_box b = *trak, hdlr, e;
    for (size_t i = 0; i < 4; i++) {
        if (media_box_find(buf, box_start(&b), b.off + b.size, path[i], &b) != CT_OK) return 0;
        if (i == 0 && (media_box_find(buf, box_start(&b), b.off + b.size, T('h', 'd', 'l', 'r'), &hdlr) != CT_OK ||
                       hdlr.size - hdlr.hdr < 12 || be32(buf + box_start(&hdlr) + 8) != T('v', 'i', 'd', 'e')))
            return 0;
    }
    if (b.size - b.hdr < 8) return 0;
    uint64_t count = be32(buf + box_start(&b) + 4), boxes = 0, differ = 0;
    media_box first = {0};
    for (uint64_t pos = box_start(&b) + 8; media_box_next(buf, b.off + b.size, &pos, &e) == CT_OK; boxes++)
        if (boxes == 0) first = e, differ = 1;
        else differ += !same_entry(buf, &first, &e);
    return count > boxes ? count - boxes + differ : differ;
}

void media_mp4_edits(const uint8_t *buf, size_t len, media_edits *out)
{
    media_box moov, trak, edts, elst;
    memset(out, 0, sizeof *out);
    if (media_box_find(buf, 0, len, MEDIA_FOURCC('m', 'o', 'o', 'v'), &moov) != CT_OK) return;
    for (uint64_t pos = box_start(&moov); media_box_next(buf, moov.off + moov.size, &pos, &trak) == CT_OK;) {
        if (trak.type != MEDIA_FOURCC('t', 'r', 'a', 'k')) continue;
        uint64_t entries = video_entries(buf, &trak);
        if (entries > out->most_entries) out->most_entries = entries;
        if (media_box_find(buf, box_start(&trak), trak.off + trak.size, MEDIA_FOURCC('e', 'd', 't', 's'), &edts) == CT_OK &&
            media_box_find(buf, box_start(&edts), edts.off + edts.size, MEDIA_FOURCC('e', 'l', 's', 't'), &elst) == CT_OK)
            elst_read(buf + box_start(&elst), elst.size - elst.hdr, out);
    }
}
static uint64_t box_end(const media_box *b) { return b->off + b->size; }

bool media_is_mp4(const uint8_t *buf, size_t len)
{
    if (len < 8) return false;
    uint32_t t = be32(buf + 4);
    return t == T('f', 't', 'y', 'p') || t == T('m', 'o', 'o', 'v') || t == T('m', 'd', 'a', 't') ||
           t == T('f', 'r', 'e', 'e') || t == T('s', 't', 'y', 'p');
}

/* A full box's content after version/flags, with at least `need` bytes. */
static ct_err full_box(const uint8_t *buf, const media_box *b, uint64_t need, const uint8_t **p, uint64_t *len)
{
    uint64_t n = b->size - b->hdr;
    CT_ENSURE_RET(n >= 4 + need, ct_fail(CT_ERR_BAD_REQUEST, "box '%s' too short",
                                         ct_text_safe((char[5]){0}, 5, buf + b->off + 4, 4)));
    *p = buf + box_start(b) + 4;
    *len = n - 4;
    return CT_OK;
}

/* A table of `count` entries of `entry` bytes after a 4-byte count at p. */
static ct_err table(const uint8_t *p, uint64_t len, uint64_t entry, const char *what, uint32_t *count)
{
    CT_ENSURE_RET(len >= 4, ct_fail(CT_ERR_BAD_REQUEST, "%s: no entry count", what));
    *count = be32(p);
    CT_ENSURE_RET(*count <= (len - 4) / entry,
                  ct_fail(CT_ERR_BAD_REQUEST, "%s: %u entries do not fit in its box", what, *count));
    return CT_OK;
}

static void track_free(mp4_track *t)
{
    free(t->sizes);
    free(t->offs);
    free(t->dts);
    free(t->sync);
    free(t->cts);
    free(t->chunk_off);
    free(t->chunk_first);
    memset(t, 0, sizeof *t);
}

void media_mp4_free(media_mp4 *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_tracks; i++) track_free(&m->tracks[i]);
    free(m);
}

static ct_err sample_entry(const uint8_t *buf, const media_box *stsd, mp4_track *t)
{
    const uint8_t *p = NULL;
    uint64_t n = 0;
    media_box e, cfg;
    CT_GUARD_RET(full_box(buf, stsd, 4, &p, &n));
    uint64_t pos = box_start(stsd) + 8;
    CT_GUARD_RET(media_box_next(buf, box_end(stsd), &pos, &e));
    bool avc = e.type == T('a', 'v', 'c', '1') || e.type == T('a', 'v', 'c', '3');
    bool hevc = e.type == T('h', 'v', 'c', '1') || e.type == T('h', 'e', 'v', '1');
    if (!avc && !hevc) return CT_OK;
    /* VisualSampleEntry: 78 bytes of fixed fields before its child boxes. */
    CT_ENSURE_RET(e.size - e.hdr >= 78, ct_fail(CT_ERR_BAD_REQUEST, "video sample entry too short"));
    ct_err rc = media_box_find(buf, box_start(&e) + 78, box_end(&e), avc ? T('a', 'v', 'c', 'C') : T('h', 'v', 'c', 'C'),
                               &cfg);
    CT_ENSURE_RET(rc != CT_ERR_NOT_FOUND, ct_fail(CT_ERR_BAD_REQUEST, "%s sample entry without its configuration box",
                                                   avc ? "avc1" : "hvc1"));
    CT_GUARD_RET(rc);
    t->config = buf + box_start(&cfg);
    t->config_len = (size_t)(cfg.size - cfg.hdr);
    CT_ENSURE_RET(t->config_len >= (avc ? 6u : 23u), ct_fail(CT_ERR_BAD_REQUEST, "configuration box too short"));
    t->nal_length_size = (t->config[avc ? 4 : 21] & 3u) + 1;
    CT_ENSURE_RET(t->nal_length_size != 3, ct_fail(CT_ERR_BAD_REQUEST, "NAL length size 3 is not allowed"));
    t->codec = avc ? MEDIA_H264 : MEDIA_H265;
    return CT_OK;
}

/* Per-sample sizes, chunk table and per-sample offsets from stsz, stco/co64 and stsc. */
static ct_err sample_tables(const media_mp4 *m, const media_box *stbl, mp4_track *t)
{
    const uint8_t *buf = m->buf, *p = NULL;
    uint64_t n = 0;
    media_box b;
    uint32_t count = 0;
    CT_ENSURE_RET(media_box_find(buf, box_start(stbl), box_end(stbl), T('s', 't', 's', 'z'), &b) == CT_OK,
                  ct_fail(CT_ERR_BAD_REQUEST, "track without stsz (stz2 is not supported)"));
    CT_GUARD_RET(full_box(buf, &b, 8, &p, &n));
    uint32_t fixed = be32(p);
    count = be32(p + 4);
    CT_ENSURE_RET(count <= MEDIA_MP4_MAX_SAMPLES, ct_fail(CT_ERR_TOO_LARGE, "track of %u samples", count));
    CT_ENSURE_RET(fixed || count <= (n - 8) / 4, ct_fail(CT_ERR_BAD_REQUEST, "stsz: %u sizes do not fit", count));
    t->n_samples = count;
    t->sizes = calloc(count ? count : 1, sizeof *t->sizes);
    t->offs = calloc(count ? count : 1, sizeof *t->offs);
    CT_ENSURE_RET(t->sizes && t->offs, CT_ERR_NOMEM);
    for (uint32_t i = 0; i < count; i++) t->sizes[i] = fixed ? fixed : be32(p + 8 + 4 * (size_t)i);

    bool co64 = media_box_find(buf, box_start(stbl), box_end(stbl), T('c', 'o', '6', '4'), &b) == CT_OK;
    CT_ENSURE_RET(co64 || media_box_find(buf, box_start(stbl), box_end(stbl), T('s', 't', 'c', 'o'), &b) == CT_OK,
                  ct_fail(CT_ERR_BAD_REQUEST, "track without stco/co64"));
    CT_GUARD_RET(full_box(buf, &b, 4, &p, &n));
    CT_GUARD_RET(table(p, n, co64 ? 8 : 4, "chunk offsets", &t->n_chunks));
    t->chunk_off = calloc(t->n_chunks ? t->n_chunks : 1, sizeof *t->chunk_off);
    t->chunk_first = calloc(t->n_chunks ? t->n_chunks : 1, sizeof *t->chunk_first);
    CT_ENSURE_RET(t->chunk_off && t->chunk_first, CT_ERR_NOMEM);
    for (uint32_t i = 0; i < t->n_chunks; i++) t->chunk_off[i] = co64 ? be64(p + 4 + 8 * (size_t)i) : be32(p + 4 + 4 * (size_t)i);

    CT_ENSURE_RET(media_box_find(buf, box_start(stbl), box_end(stbl), T('s', 't', 's', 'c'), &b) == CT_OK,
                  ct_fail(CT_ERR_BAD_REQUEST, "track without stsc"));
    CT_GUARD_RET(full_box(buf, &b, 4, &p, &n));
    CT_GUARD_RET(table(p, n, 12, "sample-to-chunk", &count));
    uint32_t s = 0;
    t->n_available = 0;
    bool inside = true;
    for (uint32_t e = 0; e < count; e++) {
        const uint8_t *q = p + 4 + 12 * (size_t)e;
        uint32_t first = be32(q), per = be32(q + 4);
        uint32_t next = e + 1 < count ? be32(q + 12) : t->n_chunks + 1;
        CT_ENSURE_RET(first >= 1 && first < next && next <= t->n_chunks + 1,
                      ct_fail(CT_ERR_BAD_REQUEST, "sample-to-chunk entry %u is out of order", e + 1));
        for (uint32_t c = first - 1; c + 1 < next; c++) {
            uint64_t off = t->chunk_off[c];
            t->chunk_first[c] = s;
            CT_ENSURE_RET(per <= t->n_samples - s, ct_fail(CT_ERR_BAD_REQUEST, "chunks hold more samples than stsz"));
            for (uint32_t k = 0; k < per; k++, s++) {
                t->offs[s] = off;
                inside = inside && off <= m->len && t->sizes[s] <= m->len - off;
                if (inside) t->n_available = s + 1;
                off += t->sizes[s];
            }
        }
    }
    CT_ENSURE_RET(s == t->n_samples, ct_fail(CT_ERR_BAD_REQUEST, "chunks hold %u samples, stsz lists %u", s, t->n_samples));
    return CT_OK;
}

static ct_err video_tables(const uint8_t *buf, const media_box *stbl, mp4_track *t)
{
    const uint8_t *p = NULL;
    uint64_t n = 0;
    media_box b;
    uint32_t count = 0;
    t->dts = calloc(t->n_samples ? t->n_samples : 1, sizeof *t->dts);
    CT_ENSURE_RET(t->dts, CT_ERR_NOMEM);
    if (media_box_find(buf, box_start(stbl), box_end(stbl), T('s', 't', 't', 's'), &b) == CT_OK) {
        CT_GUARD_RET(full_box(buf, &b, 4, &p, &n));
        CT_GUARD_RET(table(p, n, 8, "time-to-sample", &count));
        uint64_t now = 0;
        uint32_t s = 0;
        for (uint32_t e = 0; e < count && s < t->n_samples; e++) {
            uint32_t k = be32(p + 4 + 8 * (size_t)e), delta = be32(p + 8 + 8 * (size_t)e);
            for (; k > 0 && s < t->n_samples; k--, s++, now += delta) t->dts[s] = now;
        }
    }
    if (media_box_find(buf, box_start(stbl), box_end(stbl), T('s', 't', 's', 's'), &b) == CT_OK) {
        CT_GUARD_RET(full_box(buf, &b, 4, &p, &n));
        CT_GUARD_RET(table(p, n, 4, "sync samples", &count));
        t->sync = calloc(t->n_samples ? t->n_samples : 1, 1);
        CT_ENSURE_RET(t->sync, CT_ERR_NOMEM);
        for (uint32_t e = 0; e < count; e++) {
            uint32_t k = be32(p + 4 + 4 * (size_t)e);
            if (k >= 1 && k <= t->n_samples) t->sync[k - 1] = 1;
        }
    }
    /* Composition offsets (B-frames). Version 0 declares them unsigned, but writers put negative ones there
     * too, so both versions read as signed, as players do. */
    if (media_box_find(buf, box_start(stbl), box_end(stbl), T('c', 't', 't', 's'), &b) == CT_OK) {
        CT_GUARD_RET(full_box(buf, &b, 4, &p, &n));
        CT_GUARD_RET(table(p, n, 8, "composition offsets", &count));
        t->cts = calloc(t->n_samples ? t->n_samples : 1, sizeof *t->cts);
        CT_ENSURE_RET(t->cts, CT_ERR_NOMEM);
        uint32_t s = 0;
        for (uint32_t e = 0; e < count && s < t->n_samples; e++) {
            uint32_t k = be32(p + 4 + 8 * (size_t)e), off = be32(p + 8 + 8 * (size_t)e);
            for (; k > 0 && s < t->n_samples; k--, s++) t->cts[s] = (int32_t)off;
        }
    }
    return CT_OK;
}

static ct_err parse_trak(media_mp4 *m, const media_box *trak, mp4_track *t)
{
    const uint8_t *buf = m->buf, *p = NULL;
    uint64_t n = 0;
    media_box mdia, b, minf, stbl;
    CT_ENSURE_RET(media_box_find(buf, box_start(trak), box_end(trak), T('m', 'd', 'i', 'a'), &mdia) == CT_OK,
                  ct_fail(CT_ERR_BAD_REQUEST, "trak without mdia"));
    CT_ENSURE_RET(media_box_find(buf, box_start(&mdia), box_end(&mdia), T('m', 'd', 'h', 'd'), &b) == CT_OK,
                  ct_fail(CT_ERR_BAD_REQUEST, "mdia without mdhd"));
    CT_GUARD_RET(full_box(buf, &b, 20, &p, &n));
    bool v1 = buf[box_start(&b)] == 1;
    CT_ENSURE_RET(!v1 || n >= 32, ct_fail(CT_ERR_BAD_REQUEST, "mdhd too short"));
    t->timescale = be32(p + (v1 ? 16 : 8));
    if (media_box_find(buf, box_start(&mdia), box_end(&mdia), T('h', 'd', 'l', 'r'), &b) == CT_OK) {
        CT_GUARD_RET(full_box(buf, &b, 8, &p, &n));
        t->handler = be32(p + 4);
    }
    CT_ENSURE_RET(media_box_find(buf, box_start(&mdia), box_end(&mdia), T('m', 'i', 'n', 'f'), &minf) == CT_OK &&
                      media_box_find(buf, box_start(&minf), box_end(&minf), T('s', 't', 'b', 'l'), &stbl) == CT_OK,
                  ct_fail(CT_ERR_BAD_REQUEST, "track without minf/stbl"));
    if (t->handler == T('v', 'i', 'd', 'e') &&
        media_box_find(buf, box_start(&stbl), box_end(&stbl), T('s', 't', 's', 'd'), &b) == CT_OK)
        CT_GUARD_RET(sample_entry(buf, &b, t));
    CT_GUARD_RET(sample_tables(m, &stbl, t));
    if (t->codec) CT_GUARD_RET(video_tables(buf, &stbl, t));
    return CT_OK;
}

ct_err media_mp4_open(const uint8_t *buf, size_t len, media_mp4 **out)
{
    ct_err rc = CT_OK;
    media_box b;
    uint64_t pos = 0;
    bool have_moov = false;
    media_mp4 *m = calloc(1, sizeof *m);
    CT_ENSURE(m, CT_ERR_NOMEM);
    m->buf = buf;
    m->len = len;
    m->video = -1;
    while ((rc = media_box_next(buf, len, &pos, &b)) == CT_OK) {
        CT_ENSURE_MSG(b.type != T('m', 'o', 'o', 'f'), CT_ERR_BAD_REQUEST, "fragmented MP4 (moof) is not supported");
        if (b.type == T('m', 'o', 'o', 'v') && !have_moov) {
            m->moov = b;
            have_moov = true;
        }
    }
    /* A cut-off last box (a truncated recording's mdat) is tolerated: its samples count as missing. */
    CT_ENSURE(rc == CT_ERR_NOT_FOUND || (rc == CT_ERR_BAD_REQUEST && have_moov), rc);
    rc = CT_OK;
    CT_ENSURE_MSG(have_moov, CT_ERR_BAD_REQUEST, "MP4 without a moov box (truncated, or fragmented)");
    CT_ENSURE_MSG(m->moov.size <= MEDIA_MP4_MAX_MOOV, CT_ERR_TOO_LARGE, "moov of %llu bytes",
                  (unsigned long long)m->moov.size);
    CT_ENSURE_MSG(media_box_find(buf, box_start(&m->moov), box_end(&m->moov), T('m', 'v', 'e', 'x'), &b) != CT_OK,
                  CT_ERR_BAD_REQUEST, "fragmented MP4 (mvex) is not supported");
    if (media_box_find(buf, box_start(&m->moov), box_end(&m->moov), T('m', 'v', 'h', 'd'), &b) == CT_OK) {
        const uint8_t *p = NULL;
        uint64_t n = 0;
        CT_GUARD(full_box(buf, &b, 8, &p, &n));
        uint64_t created = buf[box_start(&b)] == 1 ? be64(p) : be32(p);
        m->created = created > MP4_EPOCH_TO_UNIX ? (time_t)(created - MP4_EPOCH_TO_UNIX) : 0;
    }
    pos = box_start(&m->moov);
    while ((rc = media_box_next(buf, box_end(&m->moov), &pos, &b)) == CT_OK) {
        if (b.type != T('t', 'r', 'a', 'k')) continue;
        CT_ENSURE_MSG(m->n_tracks < MEDIA_MP4_MAX_TRACKS, CT_ERR_TOO_LARGE, "more than %d tracks", MEDIA_MP4_MAX_TRACKS);
        mp4_track *t = &m->tracks[m->n_tracks++];
        CT_GUARD(parse_trak(m, &b, t));
        if (t->codec && m->video < 0) m->video = (int)(m->n_tracks - 1);
    }
    CT_ENSURE(rc == CT_ERR_NOT_FOUND, rc);
    rc = CT_OK;
    *out = m;
    m = NULL;
cleanup:
    media_mp4_free(m);
    return rc;
}

ct_err media_mp4_video_track(const media_mp4 *m, media_mp4_video *out)
{
    if (m->video < 0) return ct_fail(CT_ERR_NOT_FOUND, "no H.264 or H.265 video track");
    const mp4_track *t = &m->tracks[m->video];
    *out = (media_mp4_video){t->codec, t->nal_length_size, t->timescale, t->n_samples, (unsigned)m->video};
    return CT_OK;
}

time_t media_mp4_creation_time(const media_mp4 *m)
{
    return m->created;
}

/* avcC: SPS and PPS lists; hvcC: arrays of NAL units. Walks the configuration to the index-th one. */
ct_err media_config_nal(media_codec codec, const uint8_t *c, size_t n, size_t index, const uint8_t **nal, size_t *len)
{
    size_t pos = codec == MEDIA_H264 ? 5 : 23, k = 0;
    CT_ENSURE_RET(n >= pos, ct_fail(CT_ERR_BAD_REQUEST, "decoder configuration of %zu bytes cut off", n));
    size_t groups = codec == MEDIA_H264 ? 2 : c[22];
    for (size_t g = 0; g < groups; g++) {
        size_t count;
        if (codec == MEDIA_H264) {
            CT_ENSURE_RET(pos < n, ct_fail(CT_ERR_BAD_REQUEST, "avcC cut off"));
            count = g == 0 ? (c[pos] & 0x1f) : c[pos];
            pos++;
        } else {
            CT_ENSURE_RET(n - pos >= 3 && pos < n, ct_fail(CT_ERR_BAD_REQUEST, "hvcC cut off"));
            count = be16(c + pos + 1);
            pos += 3;
        }
        for (size_t i = 0; i < count; i++, k++) {
            CT_ENSURE_RET(pos <= n && n - pos >= 2, ct_fail(CT_ERR_BAD_REQUEST, "parameter set cut off"));
            size_t l = be16(c + pos);
            CT_ENSURE_RET(l <= n - pos - 2, ct_fail(CT_ERR_BAD_REQUEST, "parameter set of %zu bytes cut off", l));
            if (k == index) {
                *nal = c + pos + 2;
                *len = l;
                return CT_OK;
            }
            pos += 2 + l;
        }
    }
    return CT_ERR_NOT_FOUND;
}

ct_err media_mp4_param_set(const media_mp4 *m, size_t index, const uint8_t **nal, size_t *len)
{
    CT_ENSURE_RET(m->video >= 0, CT_ERR_NOT_FOUND);
    const mp4_track *t = &m->tracks[m->video];
    return media_config_nal(t->codec, t->config, t->config_len, index, nal, len);
}

ct_err media_mp4_sample(const media_mp4 *m, uint32_t index, media_sample *out)
{
    CT_ENSURE_RET(m->video >= 0, CT_ERR_NOT_FOUND);
    const mp4_track *t = &m->tracks[m->video];
    if (index >= t->n_samples) return CT_ERR_NOT_FOUND;
    CT_ENSURE_RET(index < t->n_available,
                  ct_fail(CT_ERR_BAD_REQUEST, "sample %u lies outside the file (truncated recording)", index + 1));
    *out = (media_sample){t->offs[index], t->sizes[index], t->dts[index], t->cts ? t->cts[index] : 0,
                          !t->sync || t->sync[index]};
    return CT_OK;
}

/* ---- rewriting ---- */

struct media_out {
    FILE *f;
    uint64_t pos;
};

ct_err media_out_write(media_out *o, const void *p, size_t n)
{
    CT_ENSURE_RET(n == 0 || fwrite(p, 1, n, o->f) == n, ct_fail(CT_ERR_IO, "write failed"));
    o->pos += n;
    return CT_OK;
}

typedef struct {
    const media_mp4 *m;
    uint64_t **chunk_new; /* per track: new chunk offsets */
    uint32_t *video_sizes;
    size_t trak_seen;
} rebuild;

static ct_err put32(ct_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return ct_buf_append(b, x, 4);
}

static void patch32(ct_buf *b, size_t at, uint32_t v)
{
    b->data[at] = (uint8_t)(v >> 24);
    b->data[at + 1] = (uint8_t)(v >> 16);
    b->data[at + 2] = (uint8_t)(v >> 8);
    b->data[at + 3] = (uint8_t)v;
}

static ct_err chunk_table(const rebuild *r, size_t track, ct_buf *out)
{
    const mp4_track *t = &r->m->tracks[track];
    bool wide = false;
    for (uint32_t i = 0; i < t->n_chunks; i++) wide = wide || r->chunk_new[track][i] > UINT32_MAX;
    CT_GUARD_RET(put32(out, 8 + 8 + t->n_chunks * (wide ? 8u : 4u)));
    CT_GUARD_RET(put32(out, wide ? T('c', 'o', '6', '4') : T('s', 't', 'c', 'o')));
    CT_GUARD_RET(put32(out, 0));
    CT_GUARD_RET(put32(out, t->n_chunks));
    for (uint32_t i = 0; i < t->n_chunks; i++) {
        if (wide) CT_GUARD_RET(put32(out, (uint32_t)(r->chunk_new[track][i] >> 32)));
        CT_GUARD_RET(put32(out, (uint32_t)r->chunk_new[track][i]));
    }
    return CT_OK;
}

static ct_err copy_box(rebuild *r, const media_box *b, size_t track, ct_buf *out)
{
    const uint8_t *buf = r->m->buf;
    uint32_t ty = b->type;
    bool container = ty == T('m', 'o', 'o', 'v') || ty == T('t', 'r', 'a', 'k') || ty == T('m', 'd', 'i', 'a') ||
                     ty == T('m', 'i', 'n', 'f') || ty == T('s', 't', 'b', 'l');
    if (ty == T('t', 'r', 'a', 'k')) track = r->trak_seen++;
    if (container) {
        size_t at = out->len;
        media_box c;
        uint64_t pos = box_start(b);
        ct_err rc;
        CT_GUARD_RET(put32(out, 0));
        CT_GUARD_RET(put32(out, ty));
        while ((rc = media_box_next(buf, box_end(b), &pos, &c)) == CT_OK) CT_GUARD_RET(copy_box(r, &c, track, out));
        CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
        CT_ENSURE_RET(out->len - at <= UINT32_MAX, CT_ERR_TOO_LARGE);
        patch32(out, at, (uint32_t)(out->len - at));
        return CT_OK;
    }
    if (track < r->m->n_tracks && (ty == T('s', 't', 'c', 'o') || ty == T('c', 'o', '6', '4')))
        return chunk_table(r, track, out);
    if (track == (size_t)r->m->video && ty == T('s', 't', 's', 'z')) {
        const mp4_track *t = &r->m->tracks[track];
        CT_GUARD_RET(put32(out, 20 + 4 * t->n_samples));
        CT_GUARD_RET(put32(out, ty));
        CT_GUARD_RET(put32(out, 0));
        CT_GUARD_RET(put32(out, 0));
        CT_GUARD_RET(put32(out, t->n_samples));
        for (uint32_t i = 0; i < t->n_samples; i++) CT_GUARD_RET(put32(out, r->video_sizes[i]));
        return CT_OK;
    }
    return ct_buf_append(out, buf + b->off, (size_t)b->size);
}

/* The chunk with the smallest original offset not yet written, across tracks; false when all are written. */
static bool next_chunk(const media_mp4 *m, const uint32_t *done, size_t *track)
{
    bool found = false;
    for (size_t i = 0; i < m->n_tracks; i++) {
        const mp4_track *t = &m->tracks[i];
        if (done[i] >= t->n_chunks) continue;
        if (!found || t->chunk_off[done[i]] < m->tracks[*track].chunk_off[done[*track]]) *track = i;
        found = true;
    }
    return found;
}

static ct_err write_chunks(rebuild *r, media_out *o, media_sample_fn fn, void *arg)
{
    const media_mp4 *m = r->m;
    uint32_t done[MEDIA_MP4_MAX_TRACKS] = {0};
    size_t ti = 0;
    while (next_chunk(m, done, &ti)) {
        const mp4_track *t = &m->tracks[ti];
        uint32_t c = done[ti]++;
        uint32_t end = c + 1 < t->n_chunks ? t->chunk_first[c + 1] : t->n_samples;
        r->chunk_new[ti][c] = o->pos;
        for (uint32_t s = t->chunk_first[c]; s < end; s++) {
            CT_ENSURE_RET(s < t->n_available,
                          ct_fail(CT_ERR_BAD_REQUEST, "sample %u of track %zu lies outside the file", s + 1, ti + 1));
            const uint8_t *p = m->buf + t->offs[s];
            if ((int)ti != m->video) {
                CT_GUARD_RET(media_out_write(o, p, t->sizes[s]));
                continue;
            }
            uint64_t before = o->pos;
            CT_GUARD_RET(fn(arg, s, p, t->sizes[s], o));
            CT_ENSURE_RET(o->pos - before <= UINT32_MAX, CT_ERR_TOO_LARGE);
            r->video_sizes[s] = (uint32_t)(o->pos - before);
        }
    }
    return CT_OK;
}

ct_err media_mp4_rewrite(const media_mp4 *m, FILE *out, media_sample_fn fn, void *arg)
{
    ct_err rc = CT_OK;
    media_out o = {out, 0};
    rebuild r = {m, NULL, NULL, 0};
    ct_buf moov = CT_BUF_INIT;
    media_box b;
    uint64_t pos = 0;
    size_t chunks = 0;
    CT_ENSURE_MSG(m->video >= 0, CT_ERR_NOT_FOUND, "no H.264 or H.265 video track");
    r.chunk_new = calloc(m->n_tracks, sizeof *r.chunk_new);
    r.video_sizes = calloc(m->tracks[m->video].n_samples + 1, sizeof *r.video_sizes);
    CT_ENSURE(r.chunk_new && r.video_sizes, CT_ERR_NOMEM);
    for (size_t i = 0; i < m->n_tracks; i++) {
        chunks += m->tracks[i].n_chunks;
        r.chunk_new[i] = calloc(m->tracks[i].n_chunks + 1, sizeof **r.chunk_new);
        CT_ENSURE(r.chunk_new[i], CT_ERR_NOMEM);
    }
    /* Top-level boxes other than the media, its index and padding keep their order (ftyp first). */
    while (media_box_next(m->buf, m->len, &pos, &b) == CT_OK)
        if (b.type != T('m', 'o', 'o', 'v') && b.type != T('m', 'd', 'a', 't') && b.type != T('f', 'r', 'e', 'e') &&
            b.type != T('s', 'k', 'i', 'p'))
            CT_GUARD(media_out_write(&o, m->buf + b.off, (size_t)b.size));
    /* mdat with a 64-bit size, patched once the samples are written. */
    uint64_t mdat_at = o.pos;
    static const uint8_t mdat_hdr[16] = {0, 0, 0, 1, 'm', 'd', 'a', 't'};
    CT_GUARD(media_out_write(&o, mdat_hdr, sizeof mdat_hdr));
    CT_GUARD(write_chunks(&r, &o, fn, arg));
    uint64_t mdat_size = o.pos - mdat_at;
    uint8_t sz[8];
    for (int i = 0; i < 8; i++) sz[i] = (uint8_t)(mdat_size >> (56 - 8 * i));
    CT_ENSURE_MSG(fflush(out) == 0 && fseeko(out, (off_t)mdat_at + 8, SEEK_SET) == 0 && fwrite(sz, 1, 8, out) == 8 &&
                      fseeko(out, 0, SEEK_END) == 0,
                  CT_ERR_IO, "cannot patch the mdat size (is the output seekable?)");
    /* The new moov: stsz may grow from a fixed size to a table, stco may become co64. */
    CT_GUARD(ct_buf_alloc(&moov, (size_t)m->moov.size + 4 * (size_t)m->tracks[m->video].n_samples + 8 * chunks + 1024));
    CT_GUARD(copy_box(&r, &m->moov, (size_t)-1, &moov));
    CT_GUARD(media_out_write(&o, moov.data, moov.len));
cleanup:
    if (r.chunk_new)
        for (size_t i = 0; i < m->n_tracks; i++) free(r.chunk_new[i]);
    free(r.chunk_new);
    free(r.video_sizes);
    ct_buf_free(&moov);
    return rc;
}
