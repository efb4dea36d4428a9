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

/* An output file: a temporary file beside the path, renamed over it by cenc_out_close once complete. */
typedef struct {
    FILE *f;
    int fd;
    char tmp[1100];
} cenc_out_file;
CT_MUST_CHECK ct_err cenc_out_open(const char *path, cenc_out_file *o);
CT_MUST_CHECK ct_err cenc_out_write(void *arg, const uint8_t *p, size_t n); /* a cenc_out_fn */
/* With rc CT_OK: sync, close, rename to `path`. Otherwise, or when `path` is NULL (a scratch file): close and
 * remove. Returns rc or the first error of its own. */
CT_MUST_CHECK ct_err cenc_out_close(cenc_out_file *o, const char *path, ct_err rc);

/* Picture order of an Annex B stream, NAL unit by NAL unit in decoding order (cenc_sps.c). */
#define CENC_MAX_SPS 32
#define CENC_MAX_PPS 256 /* H.264 allows 256 PPS IDs, H.265 64 */
typedef struct {
    bool valid;
    uint32_t id, width, height;
    uint8_t separate_colour_plane, frame_mbs_only, poc_type, log2_max_frame_num, log2_max_poc_lsb;
} cenc_sps;
typedef struct {
    bool valid;
    uint8_t sps, output_flag_present, extra_slice_header_bits;
} cenc_pps;
typedef struct {
    cenc_sps sps[CENC_MAX_SPS];
    cenc_pps pps[CENC_MAX_PPS];
    int64_t prev_msb, prev_lsb;
    uint64_t epoch, decoded;
} cenc_order;
/* Remembers parameter sets; for the first slice of a picture returns true with *key: the picture's place in
 * presentation order, comparable across the whole stream. A slice header it cannot read counts as presented in
 * decoding order. */
bool cenc_order_nal(cenc_order *s, media_codec c, const uint8_t *nal, size_t len, uint64_t *key);

/* The picture size an SPS (NAL unit, header included) declares; 0 x 0 if it cannot be read (not an error:
 * decoders take the size from the SPS themselves). */
void cenc_sps_size(media_codec c, const uint8_t *sps, size_t len, uint16_t *width, uint16_t *height);

static inline uint32_t cenc_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t cenc_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

#endif
