/* Reading encrypted fragmented MP4 (outside input): the init segment's track and protection scheme, then each
 * fragment's samples with their senc entries, key ID ('seig' group or tenc) and camtrust pssh boxes. Decrypted
 * samples go through the writer in clear mode, so the output has the same shape as what cameras write. */
#include <stdlib.h>
#include <string.h>

#include "cenc_priv.h"

#define T(a, b, c, d) MEDIA_FOURCC(a, b, c, d)
#define BAD(...) ct_fail(CT_ERR_BAD_REQUEST, __VA_ARGS__)
#define NON_SYNC_FLAG 0x00010000u

/* A bounded reader over a box's content: a short read sets `bad` and yields zeros. */
typedef struct {
    const uint8_t *p;
    uint64_t left;
    bool bad;
} rd;

static const uint8_t *rd_take(rd *r, uint64_t n)
{
    static const uint8_t zeros[16];
    if (r->bad || r->left < n) {
        r->bad = true;
        return n <= sizeof zeros ? zeros : NULL;
    }
    const uint8_t *p = r->p;
    r->p += n, r->left -= n;
    return p;
}
static uint64_t rd_be(rd *r, unsigned bytes)
{
    const uint8_t *p = rd_take(r, bytes);
    uint64_t v = 0;
    for (unsigned i = 0; p && i < bytes; i++) v = v << 8 | p[i];
    return v;
}

static uint64_t box_start(const media_box *b) { return b->off + b->hdr; }
static uint64_t box_end(const media_box *b) { return b->off + b->size; }
static rd box_rd(const uint8_t *buf, const media_box *b) { return (rd){buf + box_start(b), b->size - b->hdr, false}; }

static ct_err child(const uint8_t *buf, const media_box *parent, uint32_t type, uint64_t skip, media_box *out)
{
    ct_err rc = media_box_find(buf, box_start(parent) + skip, box_end(parent), type, out);
    if (rc != CT_ERR_NOT_FOUND) return rc;
    char n[5] = {(char)(type >> 24), (char)(type >> 16), (char)(type >> 8), (char)type, 0};
    return BAD("no '%s' box where one is required", n);
}

/* A path of boxes, each the first of its type inside the previous. */
static ct_err path(const uint8_t *buf, media_box *b, const uint32_t *types, size_t n)
{
    for (size_t i = 0; i < n; i++) CT_GUARD_RET(child(buf, b, types[i], 0, b));
    return CT_OK;
}

typedef struct {
    uint8_t kid[CENC_KID_LEN], iv[CENC_IV_LEN];
    unsigned iv_size; /* per sample: 0 (constant IV), 8 or 16 */
} key_fields;

typedef struct {
    const uint8_t *buf;
    size_t len;
    cenc_track t;
    cenc_scheme scheme;
    key_fields dflt; /* tenc */
    uint32_t trex_dur, trex_size, trex_flags;
    uint64_t moov_end;
} file_info;

/* The key fields of tenc or a 'seig' entry, after their reserved byte (pattern byte included). */
static ct_err key_fields_read(rd *r, cenc_scheme s, key_fields *k)
{
    uint8_t pattern = (uint8_t)rd_be(r, 1);
    unsigned prot = (unsigned)rd_be(r, 1);
    k->iv_size = (unsigned)rd_be(r, 1);
    memcpy(k->kid, rd_take(r, CENC_KID_LEN), CENC_KID_LEN);
    memset(k->iv, 0, sizeof k->iv);
    if (prot == 1 && k->iv_size == 0) {
        unsigned n = (unsigned)rd_be(r, 1);
        CT_ENSURE_RET(!r->bad && n == CENC_IV_LEN, BAD("constant IV of %u bytes", n));
        memcpy(k->iv, rd_take(r, CENC_IV_LEN), CENC_IV_LEN);
    }
    CT_ENSURE_RET(!r->bad, BAD("key fields cut off"));
    CT_ENSURE_RET(prot == 1, BAD("samples marked unprotected: not supported"));
    CT_ENSURE_RET(s == CENC_CBCS ? pattern == 0x19 && k->iv_size == 0 : k->iv_size == 8 || k->iv_size == 16,
                  BAD("%s with pattern 0x%02x and %u-byte IVs: not what camtrust writes", cenc_scheme_name(s),
                      pattern, k->iv_size));
    return CT_OK;
}

static ct_err read_sample_entry(file_info *f, const media_box *e)
{
    const uint8_t *buf = f->buf;
    media_box b, x;
    CT_ENSURE_RET(e->size - e->hdr >= 78, BAD("video sample entry too short"));
    f->t.width = cenc_be16(buf + box_start(e) + 24);
    f->t.height = cenc_be16(buf + box_start(e) + 26);
    uint32_t fmt = e->type;
    f->scheme = CENC_CLEAR;
    if (e->type == T('e', 'n', 'c', 'v')) {
        CT_GUARD_RET(child(buf, e, T('s', 'i', 'n', 'f'), 78, &b));
        CT_GUARD_RET(child(buf, &b, T('f', 'r', 'm', 'a'), 0, &x));
        CT_ENSURE_RET(x.size - x.hdr == 4, BAD("frma malformed"));
        fmt = cenc_be32(buf + box_start(&x));
        CT_GUARD_RET(child(buf, &b, T('s', 'c', 'h', 'm'), 0, &x));
        rd r = box_rd(buf, &x);
        rd_be(&r, 4);
        uint32_t scheme = (uint32_t)rd_be(&r, 4);
        CT_ENSURE_RET(!r.bad, BAD("schm malformed"));
        f->scheme = scheme == T('c', 'b', 'c', 's') ? CENC_CBCS : scheme == T('c', 'e', 'n', 'c') ? CENC_CTR : CENC_CLEAR;
        CT_ENSURE_RET(f->scheme != CENC_CLEAR, BAD("protection scheme not cbcs or cenc"));
        CT_GUARD_RET(child(buf, &b, T('s', 'c', 'h', 'i'), 0, &x));
        CT_GUARD_RET(child(buf, &x, T('t', 'e', 'n', 'c'), 0, &x));
        r = box_rd(buf, &x);
        rd_be(&r, 5); /* version, flags, reserved */
        CT_GUARD_RET(key_fields_read(&r, f->scheme, &f->dflt));
    }
    bool avc = fmt == T('a', 'v', 'c', '1') || fmt == T('a', 'v', 'c', '3');
    bool hevc = fmt == T('h', 'v', 'c', '1') || fmt == T('h', 'e', 'v', '1');
    CT_ENSURE_RET(avc || hevc, BAD("video is neither H.264 nor H.265"));
    f->t.codec = avc ? MEDIA_H264 : MEDIA_H265;
    f->t.inband_params = fmt == T('a', 'v', 'c', '3') || fmt == T('h', 'e', 'v', '1');
    CT_GUARD_RET(child(buf, e, avc ? T('a', 'v', 'c', 'C') : T('h', 'v', 'c', 'C'), 78, &x));
    f->t.config = buf + box_start(&x);
    f->t.config_len = x.size - x.hdr;
    CT_ENSURE_RET(f->t.config_len > 0 && f->t.config_len <= 0xffff, BAD("decoder configuration of %zu bytes",
                                                                        f->t.config_len));
    /* NAL lengths must be 4 bytes: the subsample maps count them so. */
    CT_ENSURE_RET(f->t.config_len > 21 && (f->t.config[avc ? 4 : 21] & 3) == 3, BAD("NAL length size not 4"));
    return CT_OK;
}

static ct_err read_moov(file_info *f, const media_box *moov)
{
    const uint8_t *buf = f->buf;
    media_box b = *moov, x;
    static const uint32_t to_mdia[] = {T('t', 'r', 'a', 'k'), T('m', 'd', 'i', 'a')};
    static const uint32_t to_stsd[] = {T('m', 'i', 'n', 'f'), T('s', 't', 'b', 'l'), T('s', 't', 's', 'd')};
    CT_GUARD_RET(path(buf, &b, to_mdia, 2));
    /* An edit list's start (B-frame delay) carries over to the clear copy; other edits are not ours to keep. */
    media_box trak = *moov;
    if (media_box_find(buf, box_start(moov), box_end(moov), T('t', 'r', 'a', 'k'), &trak) == CT_OK &&
        media_box_find(buf, box_start(&trak), box_end(&trak), T('e', 'd', 't', 's'), &x) == CT_OK &&
        media_box_find(buf, box_start(&x), box_end(&x), T('e', 'l', 's', 't'), &x) == CT_OK) {
        rd e = box_rd(buf, &x);
        unsigned ev = (unsigned)rd_be(&e, 4) >> 24;
        uint64_t entries = rd_be(&e, 4);
        rd_be(&e, ev == 1 ? 8 : 4);
        int64_t media_time = ev == 1 ? (int64_t)rd_be(&e, 8) : (int32_t)(uint32_t)rd_be(&e, 4);
        CT_ENSURE_RET(!e.bad && entries >= 1, BAD("elst malformed"));
        if (media_time > 0 && media_time <= UINT32_MAX) f->t.presentation_delay = (uint32_t)media_time;
    }
    CT_GUARD_RET(child(buf, &b, T('m', 'd', 'h', 'd'), 0, &x));
    rd r = box_rd(buf, &x);
    unsigned v = (unsigned)rd_be(&r, 4) >> 24;
    rd_be(&r, v == 1 ? 16 : 8);
    f->t.timescale = (uint32_t)rd_be(&r, 4);
    CT_ENSURE_RET(!r.bad && f->t.timescale > 0, BAD("mdhd malformed"));
    CT_GUARD_RET(path(buf, &b, to_stsd, 3));
    CT_ENSURE_RET(b.size - b.hdr >= 8, BAD("stsd malformed"));
    CT_GUARD_RET(media_box_next(buf, box_end(&b), &(uint64_t){box_start(&b) + 8}, &x));
    CT_GUARD_RET(read_sample_entry(f, &x));
    b = *moov;
    if (media_box_find(buf, box_start(&b), box_end(&b), T('m', 'v', 'e', 'x'), &x) == CT_OK &&
        media_box_find(buf, box_start(&x), box_end(&x), T('t', 'r', 'e', 'x'), &x) == CT_OK) {
        r = box_rd(buf, &x);
        rd_be(&r, 12); /* version, flags, track, description */
        f->trex_dur = (uint32_t)rd_be(&r, 4);
        f->trex_size = (uint32_t)rd_be(&r, 4);
        f->trex_flags = (uint32_t)rd_be(&r, 4);
        CT_ENSURE_RET(!r.bad, BAD("trex malformed"));
    }
    return CT_OK;
}

/* The top-level moov; every other top-level box must fit the file. */
static ct_err open_file(const uint8_t *buf, size_t len, file_info *f)
{
    media_box b;
    uint64_t pos = 0;
    ct_err rc;
    memset(f, 0, sizeof *f);
    f->buf = buf;
    f->len = len;
    while ((rc = media_box_next(buf, len, &pos, &b)) == CT_OK) {
        CT_ENSURE_RET(b.type != T('m', 'o', 'o', 'f'), BAD("moof before moov"));
        if (b.type != T('m', 'o', 'o', 'v')) continue;
        f->moov_end = box_end(&b);
        return read_moov(f, &b);
    }
    return rc == CT_ERR_NOT_FOUND ? BAD("no moov: not an MP4 file, or cut off") : rc;
}

/* ---- fragments ---- */

typedef struct {
    file_info *f;
    cenc_pssh *pssh; /* the last camtrust pssh seen */
    bool have_pssh;
    cenc_key_fn key;
    void *key_arg;
    cenc_pssh_fn list;
    void *list_arg;
    uint8_t cur_kid[CENC_KID_LEN];
    cenc_cipher *cipher;
    cenc_writer *w;
    cenc_gbuf sample;
    cenc_nal_fn walk; /* instead of decrypting: every NAL unit as stored */
    void *walk_arg;
    uint64_t dts;
} reader;

static ct_err take_pssh(reader *r, const media_box *b)
{
    ct_err rc = cenc_pssh_parse(r->f->buf + b->off, b->size, r->pssh);
    if (rc == CT_ERR_NOT_FOUND) return CT_OK; /* another system's */
    CT_GUARD_RET(rc);
    r->have_pssh = true;
    return r->list ? r->list(r->list_arg, r->pssh) : CT_OK;
}

static ct_err use_key(reader *r, const uint8_t kid[CENC_KID_LEN])
{
    if (r->cipher && memcmp(kid, r->cur_kid, CENC_KID_LEN) == 0) return CT_OK;
    uint8_t key[CENC_KEY_LEN];
    cenc_cipher_free(r->cipher);
    r->cipher = NULL;
    bool have = r->have_pssh && memcmp(r->pssh->kid, kid, CENC_KID_LEN) == 0;
    ct_err rc = r->key(r->key_arg, kid, have ? r->pssh : NULL, key);
    if (rc == CT_OK) rc = cenc_cipher_new(r->f->scheme, key, true, &r->cipher);
    ct_wipe(key, sizeof key);
    memcpy(r->cur_kid, kid, CENC_KID_LEN);
    return rc;
}

typedef struct {
    uint64_t base;
    uint32_t dur, size, flags;
} traf_defaults;

static ct_err read_tfhd(reader *r, const media_box *traf, uint64_t moof_off, traf_defaults *d)
{
    media_box x;
    CT_GUARD_RET(child(r->f->buf, traf, T('t', 'f', 'h', 'd'), 0, &x));
    rd q = box_rd(r->f->buf, &x);
    uint32_t flags = (uint32_t)rd_be(&q, 4) & 0xffffff;
    CT_ENSURE_RET(rd_be(&q, 4) == 1, BAD("fragment of another track"));
    d->base = flags & 0x1 ? rd_be(&q, 8) : moof_off;
    if (flags & 0x2) rd_be(&q, 4);
    d->dur = flags & 0x8 ? (uint32_t)rd_be(&q, 4) : r->f->trex_dur;
    d->size = flags & 0x10 ? (uint32_t)rd_be(&q, 4) : r->f->trex_size;
    d->flags = flags & 0x20 ? (uint32_t)rd_be(&q, 4) : r->f->trex_flags;
    CT_ENSURE_RET(!q.bad, BAD("tfhd malformed"));
    return CT_OK;
}

/* One sample: its bytes copied, decrypted with its senc entry, and written out in clear. */
static ct_err sample_out(reader *r, uint64_t off, cenc_sample *smp, rd *senc, const key_fields *k,
                         cenc_subsample *ss)
{
    uint32_t size = (uint32_t)smp->len;
    uint8_t iv[CENC_IV_LEN];
    CT_ENSURE_RET(off <= r->f->len && size <= r->f->len - off && size <= CENC_MAX_SAMPLE,
                  BAD("sample of %u bytes at %llu lies outside the file (cut off?)", size, (unsigned long long)off));
    memcpy(iv, k->iv, sizeof iv);
    if (k->iv_size) {
        memset(iv, 0, sizeof iv);
        memcpy(iv, rd_take(senc, k->iv_size), k->iv_size);
    }
    size_t n = (size_t)rd_be(senc, 2);
    CT_ENSURE_RET(!senc->bad && n > 0 && n <= CENC_MAX_SUBSAMPLES,
                  BAD("senc: %zu subsamples (or the box is cut off)", n));
    for (size_t i = 0; i < n; i++) {
        ss[i].clear = (uint32_t)rd_be(senc, 2);
        ss[i].enc = (uint32_t)rd_be(senc, 4);
    }
    CT_ENSURE_RET(!senc->bad, BAD("senc cut off"));
    r->sample.len = 0;
    CT_GUARD_RET(cenc_gbuf_put(&r->sample, r->f->buf + off, size));
    CT_GUARD_RET(cenc_cipher_sample(r->cipher, iv, r->sample.p, size, ss, n));
    smp->data = r->sample.p;
    return r->w ? cenc_writer_sample(r->w, smp) : CT_OK;
}

/* The samples of a fragment's trun as stored, NAL unit by NAL unit. */
static ct_err walk_trun(reader *r, const media_box *traf, const traf_defaults *d)
{
    media_box trun;
    CT_GUARD_RET(child(r->f->buf, traf, T('t', 'r', 'u', 'n'), 0, &trun));
    rd t = box_rd(r->f->buf, &trun);
    uint32_t flags = (uint32_t)rd_be(&t, 4) & 0xffffff, count = (uint32_t)rd_be(&t, 4);
    int64_t data_off = flags & 0x1 ? (int32_t)(uint32_t)rd_be(&t, 4) : 0;
    if (flags & 0x4) rd_be(&t, 4);
    CT_ENSURE_RET(!t.bad && count <= CENC_MAX_FRAGMENT_SAMPLES && (data_off >= 0 || (uint64_t)-data_off <= d->base),
                  BAD("trun malformed"));
    uint64_t off = d->base + (uint64_t)data_off;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t dur = flags & 0x100 ? (uint32_t)rd_be(&t, 4) : d->dur;
        uint32_t size = flags & 0x200 ? (uint32_t)rd_be(&t, 4) : d->size;
        rd_be(&t, (flags & 0x400 ? 4 : 0) + (flags & 0x800 ? 4 : 0));
        CT_ENSURE_RET(!t.bad && off <= r->f->len && size <= r->f->len - off,
                      BAD("sample %u lies outside the file (cut off?)", i));
        size_t pos = 0, nal_len;
        const uint8_t *nal;
        ct_err rc;
        double at = (double)r->dts / r->f->t.timescale;
        while ((rc = media_lp_next(r->f->buf + off, size, 4, &pos, &nal, &nal_len)) == CT_OK)
            CT_GUARD_RET(r->walk(r->walk_arg, r->f->t.codec, nal, nal_len, at));
        CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
        off += size;
        r->dts += dur;
    }
    return CT_OK;
}

static ct_err read_traf(reader *r, const media_box *traf, uint64_t moof_off, cenc_subsample *ss)
{
    const uint8_t *buf = r->f->buf;
    media_box x;
    traf_defaults d = {0};
    key_fields k = r->f->dflt;
    CT_GUARD_RET(read_tfhd(r, traf, moof_off, &d));
    /* A custodian's walk reads the samples as stored: key metadata is none of its business. */
    if (r->walk) return walk_trun(r, traf, &d);
    /* The fragment's own key ID: camtrust writes one 'seig' group for all its samples. */
    if (media_box_find(buf, box_start(traf), box_end(traf), T('s', 'g', 'p', 'd'), &x) == CT_OK) {
        rd q = box_rd(buf, &x);
        unsigned v = (unsigned)(rd_be(&q, 4) >> 24);
        uint32_t type = (uint32_t)rd_be(&q, 4);
        if (type == T('s', 'e', 'i', 'g')) {
            if (v == 1) rd_be(&q, 4);
            CT_ENSURE_RET(rd_be(&q, 4) == 1, BAD("sgpd: one key per fragment expected"));
            rd_be(&q, 1);
            CT_GUARD_RET(key_fields_read(&q, r->f->scheme, &k));
        }
    }
    CT_GUARD_RET(child(buf, traf, T('t', 'r', 'u', 'n'), 0, &x));
    CT_ENSURE_RET(media_box_find(buf, box_end(&x), box_end(traf), T('t', 'r', 'u', 'n'), &(media_box){0}) ==
                      CT_ERR_NOT_FOUND,
                  BAD("more than one trun in a fragment"));
    rd t = box_rd(buf, &x);
    uint32_t flags = (uint32_t)rd_be(&t, 4) & 0xffffff, count = (uint32_t)rd_be(&t, 4);
    int64_t data_off = flags & 0x1 ? (int32_t)(uint32_t)rd_be(&t, 4) : 0;
    uint32_t first_flags = flags & 0x4 ? (uint32_t)rd_be(&t, 4) : d.flags;
    CT_ENSURE_RET(!t.bad && count <= CENC_MAX_FRAGMENT_SAMPLES, BAD("trun with %u samples (or cut off)", count));
    CT_GUARD_RET(child(buf, traf, T('s', 'e', 'n', 'c'), 0, &x));
    rd senc = box_rd(buf, &x);
    uint32_t senc_flags = (uint32_t)rd_be(&senc, 4) & 0xffffff;
    CT_ENSURE_RET(!senc.bad && (senc_flags & 2) && rd_be(&senc, 4) == count,
                  BAD("senc: sample count or subsample flag does not match the fragment"));
    CT_ENSURE_RET(data_off >= 0 || (uint64_t)-data_off <= d.base, BAD("trun data offset before the file"));
    uint64_t off = d.base + (uint64_t)data_off;
    CT_GUARD_RET(use_key(r, k.kid));
    for (uint32_t i = 0; i < count; i++) {
        uint32_t dur = flags & 0x100 ? (uint32_t)rd_be(&t, 4) : d.dur;
        uint32_t size = flags & 0x200 ? (uint32_t)rd_be(&t, 4) : d.size;
        uint32_t sf = flags & 0x400 ? (uint32_t)rd_be(&t, 4) : i == 0 ? first_flags : d.flags;
        /* Signed in version 1; writers put negative offsets in version 0 as well, so both read as signed. */
        int32_t cts = flags & 0x800 ? (int32_t)(uint32_t)rd_be(&t, 4) : 0;
        CT_ENSURE_RET(!t.bad, BAD("trun cut off"));
        cenc_sample smp = {.len = size, .duration = dur, .cts = cts, .sync = !(sf & NON_SYNC_FLAG)};
        CT_GUARD_RET(sample_out(r, off, &smp, &senc, &k, ss));
        off += size;
    }
    CT_ENSURE_RET(t.left == 0 && senc.left == 0, BAD("trun or senc has bytes its sample count does not explain"));
    return CT_OK;
}

static ct_err read_moof(reader *r, const media_box *moof, cenc_subsample *ss)
{
    const uint8_t *buf = r->f->buf;
    media_box b;
    uint64_t pos = box_start(moof);
    ct_err rc;
    size_t trafs = 0;
    while ((rc = media_box_next(buf, box_end(moof), &pos, &b)) == CT_OK) {
        if (b.type == T('p', 's', 's', 'h')) CT_GUARD_RET(take_pssh(r, &b));
        if (b.type != T('t', 'r', 'a', 'f')) continue;
        CT_ENSURE_RET(++trafs == 1, BAD("more than one track fragment in a moof"));
        if (r->key || r->walk) CT_GUARD_RET(read_traf(r, &b, moof->off, ss));
    }
    return rc == CT_ERR_NOT_FOUND ? CT_OK : rc;
}

/* Walks the whole file: pssh boxes (moov and moof), and with a key callback every sample. */
static ct_err walk(reader *r)
{
    const uint8_t *buf = r->f->buf;
    media_box b;
    uint64_t pos = 0;
    ct_err rc;
    cenc_subsample *ss = calloc(CENC_MAX_SUBSAMPLES, sizeof *ss);
    r->pssh = calloc(1, sizeof *r->pssh);
    if (!ss || !r->pssh) {
        rc = CT_ERR_NOMEM;
        goto cleanup;
    }
    while ((rc = media_box_next(buf, r->f->len, &pos, &b)) == CT_OK) {
        if (b.type == T('m', 'o', 'o', 'v')) {
            uint64_t p = box_start(&b);
            media_box c;
            while ((rc = media_box_next(buf, box_end(&b), &p, &c)) == CT_OK)
                if (c.type == T('p', 's', 's', 'h')) CT_GUARD(take_pssh(r, &c));
            CT_ENSURE(rc == CT_ERR_NOT_FOUND, rc);
        } else if (b.type == T('m', 'o', 'o', 'f')) {
            CT_GUARD(read_moof(r, &b, ss));
        }
    }
    CT_ENSURE(rc == CT_ERR_NOT_FOUND, rc);
    rc = CT_OK;
cleanup:
    free(ss);
    free(r->pssh);
    r->pssh = NULL;
    return rc;
}

ct_err cenc_list(const uint8_t *in, size_t len, cenc_scheme *scheme, cenc_pssh_fn cb, void *arg)
{
    file_info f;
    CT_GUARD_RET(open_file(in, len, &f));
    if (scheme) *scheme = f.scheme;
    reader r = {.f = &f, .list = cb, .list_arg = arg};
    return walk(&r);
}

ct_err cenc_walk(const uint8_t *in, size_t len, cenc_nal_fn cb, void *arg)
{
    file_info f;
    CT_GUARD_RET(open_file(in, len, &f));
    /* The sample entry's parameter sets first, as a decoder takes them (media signing binds them). */
    CT_GUARD_RET(cenc_config_nals(f.t.codec, f.t.config, f.t.config_len, cb, arg));
    reader r = {.f = &f, .walk = cb, .walk_arg = arg};
    return walk(&r);
}

ct_err cenc_decrypt(const uint8_t *in, size_t len, cenc_key_fn key, void *key_arg, cenc_out_fn out, void *out_arg,
                    cenc_stats *st)
{
    ct_err rc = CT_OK;
    file_info f;
    reader r = {.f = &f, .key = key, .key_arg = key_arg, .sample = {.max = CENC_MAX_SAMPLE}};
    CT_GUARD(open_file(in, len, &f));
    CT_ENSURE_MSG(f.scheme != CENC_CLEAR, CT_ERR_BAD_REQUEST, "the file is not encrypted");
    cenc_options clear = {.scheme = CENC_CLEAR};
    if (out) CT_GUARD(cenc_writer_new(&f.t, &clear, out, out_arg, &r.w));
    CT_GUARD(walk(&r));
    CT_ENSURE_MSG(r.cipher, CT_ERR_BAD_REQUEST, "the file holds no encrypted fragment (cut off?)");
    if (r.w) CT_GUARD(cenc_writer_finish(r.w, st));
cleanup:
    cenc_cipher_free(r.cipher);
    cenc_writer_free(r.w);
    cenc_gbuf_free(&r.sample);
    return rc;
}

ct_err cenc_decrypt_begin(const uint8_t *init, size_t len, cenc_out_fn out, void *out_arg, cenc_writer **w)
{
    file_info f;
    CT_GUARD_RET(open_file(init, len, &f));
    CT_ENSURE_RET(f.scheme != CENC_CLEAR, BAD("the stream is not encrypted"));
    cenc_options clear = {.scheme = CENC_CLEAR};
    return cenc_writer_new(&f.t, &clear, out, out_arg, w);
}

ct_err cenc_decrypt_append(const uint8_t *in, size_t len, cenc_key_fn key, void *key_arg, cenc_writer *w)
{
    ct_err rc = CT_OK;
    file_info f;
    reader r = {.f = &f, .key = key, .key_arg = key_arg, .sample = {.max = CENC_MAX_SAMPLE}, .w = w};
    CT_GUARD(open_file(in, len, &f));
    CT_ENSURE_MSG(f.scheme != CENC_CLEAR, CT_ERR_BAD_REQUEST, "the stream is not encrypted");
    CT_GUARD(walk(&r));
    CT_ENSURE_MSG(r.cipher, CT_ERR_BAD_REQUEST, "the segment holds no encrypted fragment (cut off?)");
    CT_GUARD(cenc_writer_gop_end(w));
cleanup:
    cenc_cipher_free(r.cipher);
    cenc_gbuf_free(&r.sample);
    return rc;
}

/* ---- the clear copy: under no name until it is whole (cenc_out_open_unnamed) ---- */
typedef struct {
    cenc_out_file o; /* first: cenc_out_write takes a clear_out too */
    bool written;
} clear_out;

static ct_err clear_write(void *arg, const uint8_t *p, size_t n)
{
    clear_out *c = arg;
    CT_GUARD_RET(cenc_out_write(&c->o, p, n));
    if (!c->written) ct_failpoint_hold("decrypt:writing"); /* kill tests: decrypting, some output written */
    c->written = true;
    return CT_OK;
}

ct_err cenc_decrypt_file(const media_file *in, const char *out, cenc_key_fn key, void *key_arg, cenc_stats *st)
{
    ct_err rc = CT_OK;
    clear_out c = {0};
    /* Its owner's only from the first byte: clear video of an encrypted recording. */
    CT_GUARD(cenc_out_open_unnamed(out, 0600, &c.o));
    CT_GUARD(cenc_decrypt(in->data, in->len, key, key_arg, clear_write, &c, st));
    /* A mapped input cut short meanwhile read as zeros: no clear copy of those (the caller names the file). */
    CT_ENSURE(!media_file_shrank(in), CT_ERR_IO);
    ct_failpoint("decrypt:written"); /* kill tests: the clear copy written, not yet in place */
cleanup:
    return cenc_out_close(&c.o, out, cenc_out_name(&c.o, rc));
}
