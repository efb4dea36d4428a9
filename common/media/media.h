/* media: bounded parsers and writers for what cameras record: H.264/H.265 elementary streams (Annex B byte
 * streams and length-prefixed NAL units), their SEI messages, and ISO BMFF (MP4) files. Everything read here is
 * outside input: every length is checked against what is left, and nothing is allocated in proportion to the
 * media data (the MP4 sample tables are container metadata, bounded by MEDIA_MP4_MAX_SAMPLES).
 * Used by media signing (issue 5) and meant for Common Encryption (issue 6): the box reader is general. */
#ifndef CAMTRUST_MEDIA_H
#define CAMTRUST_MEDIA_H

#include <stdio.h>
#include <time.h>

#include "../core/core.h"

typedef enum { MEDIA_H264 = 1, MEDIA_H265 = 2 } media_codec;
const char *media_codec_name(media_codec c);

/* ---- NAL units ---- */
typedef enum {
    MEDIA_NAL_INVALID,   /* forbidden bit set, or too short for its header */
    MEDIA_NAL_OTHER,     /* end of sequence/stream, filler, reserved, unspecified */
    MEDIA_NAL_PARAM,     /* SPS, PPS, VPS (and H.264 SPS extension, subset SPS) */
    MEDIA_NAL_AUD,       /* access unit delimiter */
    MEDIA_NAL_SEI,       /* prefix SEI */
    MEDIA_NAL_SUFFIX_SEI, /* H.265 suffix SEI */
    MEDIA_NAL_IRAP,      /* a slice of an intra random access picture: H.264 IDR (5), H.265 BLA/IDR/CRA (16-21) */
    MEDIA_NAL_TRAIL,     /* a slice of an ordinary predicted picture: H.264 non-IDR (1), H.265 TRAIL_N/R (0-1) */
    MEDIA_NAL_VCL_OTHER, /* any other coded slice: H.264 data partitions (2-4), H.265 TSA/STSA/RADL/RASL/reserved */
} media_nal_kind;

typedef struct {
    media_nal_kind kind;
    unsigned type;    /* nal_unit_type */
    bool first_slice; /* VCL only: the first slice of its picture (first_mb_in_slice 0 / first_slice_segment flag) */
} media_nal_info;

size_t media_nal_header_len(media_codec c);
media_nal_info media_nal_classify(media_codec c, const uint8_t *nal, size_t len);
static inline bool media_nal_is_vcl(media_nal_kind k)
{
    return k == MEDIA_NAL_IRAP || k == MEDIA_NAL_TRAIL || k == MEDIA_NAL_VCL_OTHER;
}

/* Annex B: the next NAL unit at or after *pos. *nal points into buf, without its start code and without the
 * zero bytes that precede the next start code. *skipped counts bytes before the start code that belong to no
 * NAL unit (garbage before the first one). CT_ERR_NOT_FOUND when there is none left. */
CT_MUST_CHECK ct_err media_annexb_next(const uint8_t *buf, size_t len, size_t *pos, const uint8_t **nal,
                                       size_t *nal_len, size_t *skipped);
/* Which codec an Annex B stream holds, from its first parameter sets or slices; CT_ERR_BAD_REQUEST if unclear. */
CT_MUST_CHECK ct_err media_annexb_guess(const uint8_t *buf, size_t len, media_codec *out);
/* Length-prefixed NAL units (MP4 samples): the next one at *pos, with a `size_len`-byte big-endian length.
 * CT_ERR_NOT_FOUND at the end, CT_ERR_BAD_REQUEST if a length runs past the sample. */
CT_MUST_CHECK ct_err media_lp_next(const uint8_t *buf, size_t len, unsigned size_len, size_t *pos,
                                   const uint8_t **nal, size_t *nal_len);

/* Emulation prevention (H.264 7.4.1, H.265 7.4.2): remove 0x03 after 00 00 into `out` (at most `max` bytes),
 * or append `in` to `out` with 0x03 inserted wherever 00 00 is followed by 00..03. */
CT_MUST_CHECK ct_err media_epb_remove(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *out_len);
CT_MUST_CHECK ct_err media_epb_add(const uint8_t *in, size_t len, ct_buf *out);
/* How many bytes of escaped `in` hold its first `off` unescaped bytes: where unescaped offset `off` lies in it. */
size_t media_epb_offset(const uint8_t *in, size_t len, size_t off);

/* ---- SEI (user_data_unregistered, payloadType 5) ---- */
#define MEDIA_UUID_LEN 16
/* Appends an SEI NAL header and the payloadType/payloadSize bytes of one user_data_unregistered message of
 * `payload_size` bytes (UUID included); the caller appends the payload and then the 0x80 stop byte. */
CT_MUST_CHECK ct_err media_sei_header(media_codec c, bool suffix, size_t payload_size, ct_buf *out);
/* Looks through the SEI messages of an SEI NAL unit given without emulation prevention (`rbsp`, header
 * included) for user_data_unregistered with `uuid`: on success *off and *size give that message's payload (UUID
 * included) within rbsp. CT_ERR_NOT_FOUND if there is none, CT_ERR_BAD_REQUEST if the messages are malformed. */
CT_MUST_CHECK ct_err media_sei_find(media_codec c, const uint8_t *rbsp, size_t len, const uint8_t uuid[MEDIA_UUID_LEN],
                                    size_t *off, size_t *size);

/* ---- ISO BMFF boxes ---- */
#define MEDIA_FOURCC(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
typedef struct {
    uint32_t type;
    uint64_t off;  /* of the box in the buffer */
    uint64_t hdr;  /* header bytes (8, 16 with largesize; 'uuid' boxes count their 16-byte type too) */
    uint64_t size; /* whole box */
} media_box;
/* The box at *pos within [.., end) of buf; advances *pos past it. CT_ERR_NOT_FOUND at end, CT_ERR_BAD_REQUEST
 * if it does not fit. */
CT_MUST_CHECK ct_err media_box_next(const uint8_t *buf, uint64_t end, uint64_t *pos, media_box *out);
/* The first child of `type` in [start, end). */
CT_MUST_CHECK ct_err media_box_find(const uint8_t *buf, uint64_t start, uint64_t end, uint32_t type, media_box *out);
/* Whether buf starts like an ISO BMFF file (a known top-level box first). */
bool media_is_mp4(const uint8_t *buf, size_t len);
/* What the edit lists (moov/trak/edts/elst) of an MP4 file tell a player: the most edits that are not empty in one
 * track, whether one plays at another rate than 1, whether one is malformed (cut short, counts past its box); and
 * the most sample entries (stsd: its count or its boxes, the larger) of a video track, each with its own parameter
 * sets, any of which stsc or tfhd may name for a sample; entries the same as the first but for encryption (`encv`
 * and its `sinf`: a clear lead) count once. */
typedef struct {
    uint64_t most_edits, most_entries;
    bool other_rate, malformed;
} media_edits;
void media_mp4_edits(const uint8_t *buf, size_t len, media_edits *out);

/* ---- an MP4 file in memory: its tracks' sample tables ---- */
#define MEDIA_MP4_MAX_TRACKS 16
#define MEDIA_MP4_MAX_SAMPLES (1u << 22) /* per track: 38 hours at 30 fps */
#define MEDIA_MP4_MAX_MOOV (64u << 20)
typedef struct media_mp4 media_mp4;

typedef struct {
    media_codec codec;
    unsigned nal_length_size; /* 1, 2 or 4 */
    uint32_t timescale;
    uint32_t samples;
    unsigned track;           /* index among the file's tracks */
} media_mp4_video;

/* Parses moov (plain, not fragmented: moof is refused with a clear reason). `buf` must outlive the result. */
CT_MUST_CHECK ct_err media_mp4_open(const uint8_t *buf, size_t len, media_mp4 **out);
void media_mp4_free(media_mp4 *m);
/* The first H.264/H.265 video track: CT_ERR_NOT_FOUND if there is none. */
CT_MUST_CHECK ct_err media_mp4_video_track(const media_mp4 *m, media_mp4_video *out);
/* mvhd creation_time as a Unix time, 0 when unset. */
time_t media_mp4_creation_time(const media_mp4 *m);
/* The index-th parameter set NAL unit of an avcC / hvcC record (box content, outside input: bounded);
 * CT_ERR_NOT_FOUND past the last. */
CT_MUST_CHECK ct_err media_config_nal(media_codec c, const uint8_t *config, size_t len, size_t index, const uint8_t **nal,
                                      size_t *nal_len);
/* The same for the video track's sample entry. */
CT_MUST_CHECK ct_err media_mp4_param_set(const media_mp4 *m, size_t index, const uint8_t **nal, size_t *len);
/* A video sample: where it is, its size, its decoding time and composition offset (presentation minus decoding
 * time, B-frames; timescale units) and whether it is a sync sample. */
typedef struct {
    uint64_t off;
    uint32_t size;
    uint64_t dts;
    int32_t cts;
    bool sync;
} media_sample;
CT_MUST_CHECK ct_err media_mp4_sample(const media_mp4 *m, uint32_t index, media_sample *out);

/* Writes a copy of the MP4 to `out` with each video sample replaced by what `fn` writes for it (every other
 * track's samples copied as they are): ftyp and other top-level boxes, one mdat with the chunks in their
 * original order, then moov with new sample sizes and chunk offsets. `fn` writes with media_out_write. */
typedef struct media_out media_out;
typedef ct_err (*media_sample_fn)(void *arg, uint32_t index, const uint8_t *sample, size_t len, media_out *o);
CT_MUST_CHECK ct_err media_mp4_rewrite(const media_mp4 *m, FILE *out, media_sample_fn fn, void *arg);
CT_MUST_CHECK ct_err media_out_write(media_out *o, const void *p, size_t n);

/* ---- input files: mapped read-only, so that large recordings cost address space, not heap ---- */
typedef struct {
    const uint8_t *data;
    size_t len;
    void *map;
} media_file;
CT_MUST_CHECK ct_err media_file_map(const char *path, media_file *out);
/* A private copy of the file's bytes as one open() read them (at most `max` bytes): what a later writer, a rename
 * or a switched symlink does to the path no longer changes it, so a check and a use of it read the same bytes.
 * Freed with media_file_unmap. */
CT_MUST_CHECK ct_err media_file_snapshot(const char *path, size_t max, media_file *out);
void media_file_unmap(media_file *f);
/* A mapping for tools that check files others may cut short meanwhile (a recording on a share): a page read past
 * the file's new end reads as zeros instead of raising SIGBUS (a handler is installed once), media_file_shrank
 * then says so, and media_file_unmap_guarded returns CT_ERR_IO naming `path` instead of `rc`: what was read from
 * it no longer counts. */
CT_MUST_CHECK ct_err media_file_map_guarded(const char *path, media_file *out);
bool media_file_shrank(const media_file *f);
CT_MUST_CHECK ct_err media_file_unmap_guarded(media_file *f, const char *path, ct_err rc);

#endif
