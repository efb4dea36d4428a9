/* cenc internals shared by its files: a growable bounded buffer for media data (not secret, so not a ct_buf,
 * which is allocated at its maximum and wiped whole) and ISO BMFF box writing on it. */
#ifndef CAMTRUST_CENC_PRIV_H
#define CAMTRUST_CENC_PRIV_H

#include <stdio.h>

#include "cenc.h"

typedef struct {
    uint8_t *p;
    size_t len, cap, max;
} cenc_gbuf;

CT_MUST_CHECK ct_err cenc_gbuf_put(cenc_gbuf *b, const void *p, size_t n);
CT_MUST_CHECK ct_err cenc_gbuf_be(cenc_gbuf *b, uint64_t v, unsigned bytes); /* big-endian, 1..8 bytes */
void cenc_gbuf_free(cenc_gbuf *b);

/* A box whose size is patched by cenc_box_close; a full box adds version and flags. */
CT_MUST_CHECK ct_err cenc_box_open(cenc_gbuf *b, const char *type, size_t *start);
CT_MUST_CHECK ct_err cenc_full_open(cenc_gbuf *b, const char *type, unsigned version, uint32_t flags, size_t *start);
void cenc_box_close(cenc_gbuf *b, size_t start);

/* The parameter sets of an avcC / hvcC record to `cb` (time -1), as a decoder takes them before any sample: the
 * verifiers' first NAL units (cenc_walk), so the signer's first too (cenc_writer_new). */
CT_MUST_CHECK ct_err cenc_config_nals(media_codec c, const uint8_t *config, size_t len, cenc_nal_fn cb, void *arg);

/* What cenc reads from parameter sets and slice headers (cenc_sps.c): picture order of an Annex B stream, NAL
 * unit by NAL unit in decoding order, and the length of each slice header (the clear part of a protected slice). */
#define CENC_MAX_SPS 32
#define CENC_MAX_PPS 256 /* H.264 allows 256 PPS IDs, H.265 64 */
#define CENC_MAX_RPS 64  /* H.265 num_short_term_ref_pic_sets */
#define CENC_MAX_DELTAS 16 /* H.265 entries of a short-term RPS: at most the DPB size */
typedef struct {
    uint8_t neg, pos;             /* NumNegativePics, NumPositivePics */
    uint16_t used;                /* UsedByCurrPic, a bit per entry */
    int32_t poc[CENC_MAX_DELTAS]; /* DeltaPocS0 then DeltaPocS1 */
} cenc_rps;
typedef struct {
    bool valid; /* the fields picture order and size need */
    bool hdr;   /* the slice header fields too */
    uint32_t id, width, height;
    uint8_t separate_colour_plane, frame_mbs_only, poc_type, log2_max_frame_num, log2_max_poc_lsb;
    uint8_t chroma_array_type, poc_zero;                    /* H.264: delta_pic_order_always_zero_flag */
    uint8_t addr_bits, sao, temporal_mvp, long_term, n_lt;  /* H.265: slice_segment_address bits, ... */
    uint8_t n_rps;                                          /* num_short_term_ref_pic_sets */
    uint32_t lt_used;                                       /* used_by_curr_pic_lt_sps_flag bits */
    cenc_rps rps[CENC_MAX_RPS];
} cenc_sps;
typedef struct {
    bool valid, hdr; /* as in cenc_sps */
    uint8_t sps, output_flag_present, extra_slice_header_bits;
    uint8_t ref_idx[2], weighted_pred, weighted_bipred; /* num_ref_idx_lX_default_active_minus1, ... */
    uint8_t cabac, bottom_field_poc, redundant_pic_cnt, deblocking_control; /* H.264 */
    uint8_t dependent_slices, cabac_init, lists_mod, chroma_qp_offsets, chroma_qp_list, entry_points; /* H.265 */
    uint8_t lf_across_slices, deblocking_override, deblocking_disabled, header_ext;
} cenc_pps;
typedef struct {
    cenc_sps sps[CENC_MAX_SPS];
    cenc_pps pps[CENC_MAX_PPS];
    int64_t prev_msb, prev_lsb;
    uint64_t epoch, decoded;
} cenc_order;
/* Remembers a parameter set NAL unit (SPS, PPS; others are ignored). */
void cenc_params_nal(cenc_order *s, media_codec c, const uint8_t *nal, size_t len);
/* Remembers parameter sets; for the first slice of a picture returns true with *key: the picture's place in
 * presentation order, comparable across the whole stream. A slice header it cannot read counts as presented in
 * decoding order. */
bool cenc_order_nal(cenc_order *s, media_codec c, const uint8_t *nal, size_t len, uint64_t *key);
/* The bytes of a slice NAL unit as stored (emulation prevention included) from its first byte through its slice
 * header: H.264 7.3.3 through cabac_alignment_one_bit (CABAC) or the byte of the last header bit (CAVLC), H.265
 * 7.3.6.1 through byte_alignment(). False if it cannot tell: parameter sets missing or not understood (H.264
 * FMO, MVC, data partitioning; H.265 layers, SCC and 3D), a header that does not parse. */
bool cenc_slice_header_size(const cenc_order *ps, media_codec c, const uint8_t *nal, size_t len, size_t *bytes);
/* cenc_subsamples with the stream's parameter sets known (NULL: none): a slice keeps its whole header clear,
 * at least CENC_CLEAR_LEAD bytes; *unknown (may be NULL) counts slices whose header length it could not tell,
 * which keep CENC_CLEAR_LEAD. */
CT_MUST_CHECK ct_err cenc_subsamples_with(const cenc_order *ps, media_codec c, const uint8_t *sample, size_t len,
                                          cenc_subsample *out, size_t max, size_t *n, size_t *unknown);

/* The picture size an SPS (NAL unit, header included) declares; 0 x 0 if it cannot be read (not an error:
 * decoders take the size from the SPS themselves). */
void cenc_sps_size(media_codec c, const uint8_t *sps, size_t len, uint16_t *width, uint16_t *height);

static inline uint32_t cenc_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t cenc_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

#endif
