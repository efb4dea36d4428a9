/* The ONVIF Media Signing format: which NAL units are hashed and how, and the SEI TLVs (layout in mediasign.h). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ms_priv.h"

const uint8_t ms_uuid[MEDIA_UUID_LEN] = {0x00, 0x5b, 0xc9, 0x3f, 0x2d, 0x71, 0x5e, 0x95,
                                         0xad, 0xa4, 0x79, 0x6f, 0x90, 0x87, 0x7a, 0x6f};
/* The crypto info TLV is the same in every SEI: version, the DER OID of SHA-256 and its length, no signing OID
 * (EC keys carry their curve), RSA size 0. Written whole (the camera's code is counted in bytes). */
static const uint8_t crypto_tlv[] = {MS_TAG_CRYPTO, 0, 16, 1 /* version */, 11,
                                     0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0, 0, 0};
static const uint8_t *const oid_sha256 = crypto_tlv + 5;
#define OID_SHA256_LEN 11

/* 100 ns units between 1601-01-01 and 1970-01-01. */
#define MS_EPOCH_DIFF 116444736000000000LL

int64_t ms_time_from_unix(time_t t, uint32_t nsec)
{
    return (int64_t)t * 10000000LL + nsec / 100 + MS_EPOCH_DIFF;
}

time_t ms_time_to_unix(int64_t t)
{
    return t > MS_EPOCH_DIFF ? (time_t)((t - MS_EPOCH_DIFF) / 10000000LL) : 0;
}

ms_role ms_nal_role(media_codec c, const uint8_t *nal, size_t len, media_nal_info *info)
{
    *info = media_nal_classify(c, nal, len);
    /* H.264 auxiliary (19), SVC/MVC (20) and 3D-AVC (21) slices: pictures a player that decodes them shows */
    if (c == MEDIA_H264 && info->type - 19u <= 2) return MS_ROLE_UNHASHED;
    switch (info->kind) {
    case MEDIA_NAL_INVALID: return MS_ROLE_INVALID;
    case MEDIA_NAL_IRAP: return info->first_slice ? MS_ROLE_GOP_START : MS_ROLE_PICTURE;
    case MEDIA_NAL_TRAIL: return MS_ROLE_PICTURE;
    case MEDIA_NAL_VCL_OTHER: return MS_ROLE_UNHASHED;
    case MEDIA_NAL_SEI:
    case MEDIA_NAL_SUFFIX_SEI: return MS_ROLE_SEI;
    case MEDIA_NAL_PARAM: return MS_ROLE_PARAM;
    default: return MS_ROLE_IGNORED;
    }
}

_Static_assert(offsetof(ms_psets, gop) == offsetof(ms_psets, tlv) + 4, "the digest follows its TLV header");
_Static_assert(offsetof(ms_psets, run) == offsetof(ms_psets, prev) + MS_HASH_LEN, "prev and R are cleared together");

ct_err ms_gop_init(ms_gop *g)
{
    memset(g, 0, sizeof *g);
    /* Version 2: the digest covers every group of a run (1, camtrust before: the last group only; verifiers before
     * read either as the same digest). */
    memcpy(g->ps.tlv, (const uint8_t[4]){MS_TAG_ARBITRARY, 0, 1 + MS_HASH_LEN, 2 /* version */}, 4);
    g->hashes = calloc(MS_MAX_GOP_NALS, sizeof *g->hashes);
    return g->hashes ? CT_OK : CT_ERR_NOMEM;
}

void ms_gop_free(ms_gop *g)
{
    free(g->hashes);
    memset(g, 0, sizeof *g);
}

void ms_gop_reset(ms_gop *g)
{
    g->started = false;
    g->n = 0;
}

ct_err ms_gop_add(ms_gop *g, const uint8_t *nal, size_t len, bool start)
{
    uint8_t h[2 * MS_HASH_LEN];
    /* Trailing zero bytes are not part of the NAL unit (some muxers leave one). */
    while (len > 0 && nal[len - 1] == 0) len--;
    CT_GUARD_RET(ms_psets_picture(&g->ps, start));
    if (start) ms_gop_reset(g);
    CT_ENSURE_RET(g->started || start, CT_ERR_ARG);
    CT_ENSURE_RET(g->n < MS_MAX_GOP_NALS,
                  ct_fail(CT_ERR_TOO_LARGE, "GOP of more than %d picture NAL units", MS_MAX_GOP_NALS));
    CT_GUARD_RET(ct_sha256(nal, len, start ? g->anchor : h + MS_HASH_LEN));
    if (start) {
        g->started = true;
        memcpy(g->hashes[g->n++], g->anchor, MS_HASH_LEN);
        return CT_OK;
    }
    memcpy(h, g->anchor, MS_HASH_LEN);
    CT_GUARD_RET(ct_sha256(h, sizeof h, g->hashes[g->n]));
    g->n++;
    return CT_OK;
}

/* The current group is complete: the same as the one before it, it is taken out of R again. */
static void group_done(ms_psets *p)
{
    if (memcmp(p->run[2], p->prev, MS_HASH_LEN) == 0) memcpy(p->run[0], p->start, MS_HASH_LEN);
    memcpy(p->prev, p->run[2], MS_HASH_LEN);
}

/* Both out of line: inlined into their callers they cost the camera's binary a page (agent_size). */
__attribute__((noinline)) ct_err ms_psets_param(ms_psets *p, const uint8_t *nal, size_t len, unsigned type)
{
    while (len > 0 && nal[len - 1] == 0) len--; /* as ms_gop_add */
    bool pps = type == 8 || type == 34; /* no parameter set of one codec has the other's PPS type */
    if (!p->open) memset(p->prev, 0, 2 * MS_HASH_LEN); /* prev and R */
    /* A new group: the first after a picture, or a VPS or SPS after a PPS. */
    if (!p->open || (p->after_pps && !pps)) {
        if (p->open) group_done(p);
        memcpy(p->start, p->run[0], MS_HASH_LEN);
        memset(p->run[2], 0, MS_HASH_LEN);
    }
    p->open = true;
    p->after_pps = pps;
    CT_GUARD_RET(ct_sha256(nal, len, p->run[1]));
    CT_GUARD_RET(ct_sha256(p->run[1], 2 * MS_HASH_LEN, p->run[2]));
    return ct_sha256(p->run[0], 2 * MS_HASH_LEN, p->run[0]);
}

__attribute__((noinline)) ct_err ms_psets_picture(ms_psets *p, bool start)
{
    if (p->open) {
        group_done(p);
        memcpy(p->gop[1], p->run[0], MS_HASH_LEN);
        p->open = false;
        if (!start) CT_GUARD_RET(ct_sha256(p->gop, sizeof p->gop, p->gop[0]));
    }
    if (start) memcpy(p->gop[0], p->gop[1], MS_HASH_LEN);
    return CT_OK;
}

ct_err ms_gop_hash(const uint8_t (*hashes)[MS_HASH_LEN], size_t n, uint8_t out[MS_HASH_LEN])
{
    return ct_sha256(hashes, n * MS_HASH_LEN, out);
}

/* ---- writing ---- */

static ct_err put_tl(ct_buf *b, uint8_t tag, size_t len)
{
    CT_ENSURE_RET(len <= 0xffff, ct_fail(CT_ERR_TOO_LARGE, "TLV %u of %zu bytes", tag, len));
    uint8_t h[4] = {tag, (uint8_t)(len >> 8), (uint8_t)len, 1 /* every value starts with its version */};
    return ct_buf_append(b, h, sizeof h);
}

static void be_store(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static ct_err put_str8(ct_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    CT_ENSURE_RET(n < 256, ct_fail(CT_ERR_USAGE, "vendor string of %zu bytes", n));
    uint8_t n8 = (uint8_t)n;
    CT_GUARD_RET(ct_buf_append(b, &n8, 1));
    return ct_buf_append(b, s, n);
}

static ct_err put_info_tlvs(ct_buf *b, const ms_signer_config *cfg)
{
    CT_GUARD_RET(ct_buf_append(b, crypto_tlv, sizeof crypto_tlv));
    size_t at = b->len;
    CT_GUARD_RET(put_tl(b, MS_TAG_VENDOR, 0));
    CT_GUARD_RET(put_str8(b, cfg->firmware));
    CT_GUARD_RET(put_str8(b, cfg->serial));
    CT_GUARD_RET(put_str8(b, cfg->manufacturer));
    size_t n = b->len - at - 3;
    b->data[at + 1] = (uint8_t)(n >> 8);
    b->data[at + 2] = (uint8_t)n;
    CT_GUARD_RET(put_tl(b, MS_TAG_CERTS, 2 + cfg->chain_len));
    CT_GUARD_RET(put_str8(b, NULL)); /* a 0 byte: manufacturer provisioned */
    return ct_buf_append(b, cfg->chain_pem, cfg->chain_len);
}

static ct_err put_gop_tlvs(ct_buf *b, const ms_gop_doc *d)
{
    /* The general TLV's fixed part built here and appended in one piece (the camera's code is counted in bytes). */
    uint8_t f[4 + 3 + 1 + 8 + 4 + 2 + 2 * MS_HASH_LEN] = {
        MS_TAG_GENERAL, 0, sizeof f - 3, 1, 1, 0, 0 /* implementation 1.0.0 */, 0 /* a whole GOP, not a partial one */};
    const ms_gop *g = d->gop;
    be_store(f + 8, (uint64_t)d->timestamp, 8);
    be_store(f + 16, d->counter, 4);
    be_store(f + 20, g->n, 2);
    CT_GUARD_RET(ms_gop_hash((const uint8_t (*)[MS_HASH_LEN])g->hashes, g->n, f + 22));
    if (d->linked) memcpy(f + 22 + MS_HASH_LEN, d->linked, MS_HASH_LEN); /* else zeros: the first GOP */
    CT_GUARD_RET(ct_buf_append(b, f, sizeof f));
    CT_GUARD_RET(put_tl(b, MS_TAG_HASHES, 1 + g->n * MS_HASH_LEN));
    CT_GUARD_RET(ct_buf_append(b, g->hashes, g->n * MS_HASH_LEN));
    /* camtrust's parameter sets, signed with the GOP: arbitrary data, which the reference validator reads past (it
     * fails on a tag it does not know) */
    return ct_buf_append(b, d->psets_tlv, 4 + MS_HASH_LEN);
}

static ct_err put_model_tlv(ct_buf *b, const char *model)
{
    size_t n = strlen(MS_MODEL_PREFIX) + (model ? strlen(model) : 0);
    CT_GUARD_RET(put_tl(b, MS_TAG_ARBITRARY, 1 + n));
    CT_GUARD_RET(ct_buf_append(b, MS_MODEL_PREFIX, strlen(MS_MODEL_PREFIX)));
    return ct_buf_append(b, model ? model : "", n - strlen(MS_MODEL_PREFIX));
}

ct_err ms_sei_begin(media_codec c, bool suffix, const ms_gop_doc *d, const ms_signer_config *cfg, ct_buf *nal)
{
    ct_err rc = CT_OK;
    ct_buf body = CT_BUF_INIT;
    uint8_t head[MEDIA_UUID_LEN + 1];
    memcpy(head, ms_uuid, MEDIA_UUID_LEN);
    head[MEDIA_UUID_LEN] = d ? 0 : MS_RESERVED_ONCE; /* the reserved byte */
    CT_GUARD(ct_buf_alloc(&body, MS_MAX_SEI));
    CT_GUARD(ct_buf_append(&body, head, sizeof head));
    /* The chain travels in every SEI, so that a clip cut from anywhere verifies on its own. */
    CT_GUARD(put_info_tlvs(&body, cfg));
    if (d) CT_GUARD(put_gop_tlvs(&body, d));
    CT_GUARD(put_model_tlv(&body, cfg->model));
    /* The payload size goes first and covers the signature TLV, whose size is fixed for that reason. */
    nal->len = 0;
    CT_GUARD(media_sei_header(c, suffix, body.len + 4 + 2 + MS_SIG_MAX, nal));
    CT_GUARD(ct_buf_append(nal, body.data, body.len));
cleanup:
    ct_buf_free(&body);
    return rc;
}

ct_err ms_sei_end(ct_buf *nal, const uint8_t *sig, size_t sig_len, ct_buf *out)
{
    /* The signature TLV (its size fixed: the payload size was written first), then the stop byte, in one piece. */
    uint8_t t[4 + 2 + MS_SIG_MAX + 1] = {MS_TAG_SIGNATURE, 0, 1 + 2 + MS_SIG_MAX, 1};
    CT_ENSURE_RET(sig_len <= MS_SIG_MAX, ct_fail(CT_ERR_CRYPTO, "signature of %zu bytes", sig_len));
    be_store(t + 4, sig_len, 2);
    memcpy(t + 6, sig, sig_len);
    memset(t + 6 + sig_len, 0x01, MS_SIG_MAX - sig_len); /* ones, as the reference pads: never emulation prevention */
    t[sizeof t - 1] = 0x80;
    CT_GUARD_RET(ct_buf_append(nal, t, sizeof t));
    out->len = 0;
    return media_epb_add(nal->data, nal->len, out);
}

/* ---- reading ---- */

static ct_err bad(const char *what)
{
    return ct_fail(CT_ERR_BAD_REQUEST, "media signing SEI: %s", what);
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = v << 8 | p[i];
    return v;
}

static ct_err parse_vendor(const uint8_t *v, size_t n, ms_sei *out)
{
    char *dst[3] = {out->firmware, out->serial, out->manufacturer};
    size_t pos = 1;
    for (int i = 0; i < 3; i++) {
        CT_ENSURE_RET(pos < n && v[pos] <= n - pos - 1, bad("vendor info cut off"));
        ct_text_safe(dst[i], MS_TEXT_MAX, v + pos + 1, v[pos]);
        pos += 1 + (size_t)v[pos];
    }
    return pos == n ? CT_OK : bad("vendor info has trailing bytes");
}

static ct_err parse_general(const uint8_t *v, size_t n, ms_sei *out)
{
    /* version 1: 19 bytes then two hashes; version 2 adds an 8-byte end timestamp after the start. */
    size_t fixed = v[0] == 2 ? 27 : 19;
    CT_ENSURE_RET(v[0] == 1 || v[0] == 2, bad("unknown general info version"));
    CT_ENSURE_RET(n == fixed + 2 * MS_HASH_LEN, bad("general info is not for SHA-256"));
    out->timestamp = (int64_t)get_be(v + 5, 8);
    out->counter = (uint32_t)get_be(v + fixed - 6, 4);
    out->nals = (uint16_t)get_be(v + fixed - 2, 2);
    memcpy(out->gop_hash, v + fixed, MS_HASH_LEN);
    memcpy(out->linked, v + fixed + MS_HASH_LEN, MS_HASH_LEN);
    out->has_general = true;
    return CT_OK;
}

static ct_err parse_tlv(uint8_t tag, const uint8_t *v, size_t n, size_t at, ms_sei *out)
{
    switch (tag) {
    case MS_TAG_GENERAL: return parse_general(v, n, out);
    case MS_TAG_HASHES:
        CT_ENSURE_RET(v[0] == 1 && (n - 1) % MS_HASH_LEN == 0, bad("hash list is not a list of SHA-256 hashes"));
        out->hashes = v + 1;
        out->n_hashes = (n - 1) / MS_HASH_LEN;
        out->has_hashes = true;
        return CT_OK;
    case MS_TAG_SIGNATURE:
        CT_ENSURE_RET(n >= 3 && v[0] == 1, bad("signature TLV too short"));
        out->sig_len = (size_t)get_be(v + 1, 2);
        CT_ENSURE_RET(out->sig_len <= n - 3, bad("signature longer than its TLV"));
        out->sig = v + 3;
        out->doc_len = at;
        out->has_signature = true;
        return CT_OK;
    case MS_TAG_CRYPTO:
        CT_ENSURE_RET(n >= 2 && v[1] <= n - 2, bad("crypto info cut off"));
        CT_ENSURE_RET(v[1] == OID_SHA256_LEN && memcmp(v + 2, oid_sha256, OID_SHA256_LEN) == 0,
                      bad("hash algorithm other than SHA-256"));
        out->has_crypto = true;
        return CT_OK;
    case MS_TAG_VENDOR: return parse_vendor(v, n, out);
    case MS_TAG_CERTS:
        CT_ENSURE_RET(n >= 2, bad("certificate TLV too short"));
        out->chain_pem = v + 2;
        out->chain_len = n - 2;
        out->has_chain = true;
        return CT_OK;
    case MS_TAG_ARBITRARY:
        if (n - 1 >= strlen(MS_MODEL_PREFIX) && memcmp(v + 1, MS_MODEL_PREFIX, strlen(MS_MODEL_PREFIX)) == 0) {
            out->has_model = true;
            ct_text_safe(out->model, sizeof out->model, v + 1 + strlen(MS_MODEL_PREFIX), n - 1 - strlen(MS_MODEL_PREFIX));
        } else if (n == 1 + MS_HASH_LEN) { /* camtrust's parameter sets only beside its model: below */
            memcpy(out->psets, v + 1, MS_HASH_LEN);
            out->has_psets = true;
            out->psets_version = v[0];
        }
        return CT_OK;
    default: return CT_OK; /* unknown tags are skipped: later versions may add some */
    }
}

ct_err ms_sei_parse(media_codec c, const uint8_t *rbsp, size_t len, ms_sei *out)
{
    size_t off, size;
    memset(out, 0, sizeof *out);
    CT_GUARD_RET(media_sei_find(c, rbsp, len, ms_uuid, &off, &size));
    CT_ENSURE_RET(size > MEDIA_UUID_LEN, bad("no reserved byte"));
    out->reserved = rbsp[off + MEDIA_UUID_LEN];
    size_t pos = off + MEDIA_UUID_LEN + 1, end = off + size;
    while (pos < end) {
        CT_ENSURE_RET(end - pos >= 3, bad("TLV header cut off"));
        CT_ENSURE_RET(!out->has_signature, bad("TLVs after the signature"));
        uint8_t tag = rbsp[pos];
        size_t n = (size_t)get_be(rbsp + pos + 1, 2);
        CT_ENSURE_RET(n >= 1 && n <= end - pos - 3, bad("TLV longer than the SEI"));
        CT_GUARD_RET(parse_tlv(tag, rbsp + pos + 3, n, pos, out));
        pos += 3 + n;
    }
    /* A digest of 32 bytes is camtrust's parameter sets only in an SEI that names a camtrust model. */
    out->has_psets = out->has_psets && out->has_model;
    return CT_OK;
}
