/* H.264/H.265 NAL units: Annex B splitting, length prefixes, classification, emulation prevention, SEI. */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>

#include "media.h"

const char *media_codec_name(media_codec c)
{
    return c == MEDIA_H265 ? "H.265" : c == MEDIA_H264 ? "H.264" : "?";
}

size_t media_nal_header_len(media_codec c)
{
    return c == MEDIA_H265 ? 2 : 1;
}

static media_nal_kind h264_kind(unsigned t)
{
    switch (t) {
    case 1: return MEDIA_NAL_TRAIL;
    case 2: case 3: case 4: return MEDIA_NAL_VCL_OTHER;
    case 5: return MEDIA_NAL_IRAP;
    case 6: return MEDIA_NAL_SEI;
    case 7: case 8: case 13: case 15: return MEDIA_NAL_PARAM;
    case 9: return MEDIA_NAL_AUD;
    default: return MEDIA_NAL_OTHER;
    }
}

static media_nal_kind h265_kind(unsigned t)
{
    if (t <= 1) return MEDIA_NAL_TRAIL;
    if (t >= 16 && t <= 21) return MEDIA_NAL_IRAP;
    if (t <= 31) return MEDIA_NAL_VCL_OTHER;
    if (t >= 32 && t <= 34) return MEDIA_NAL_PARAM;
    if (t == 35) return MEDIA_NAL_AUD;
    if (t == 39) return MEDIA_NAL_SEI;
    if (t == 40) return MEDIA_NAL_SUFFIX_SEI;
    return MEDIA_NAL_OTHER;
}

media_nal_info media_nal_classify(media_codec c, const uint8_t *nal, size_t len)
{
    media_nal_info i = {MEDIA_NAL_INVALID, 0, false};
    size_t hl = media_nal_header_len(c);
    if (!nal || len < hl || (nal[0] & 0x80)) return i;
    i.type = c == MEDIA_H265 ? (nal[0] >> 1) & 0x3f : nal[0] & 0x1f;
    i.kind = c == MEDIA_H265 ? h265_kind(i.type) : h264_kind(i.type);
    /* first_mb_in_slice is ue(v): value 0 is the single bit 1; H.265 has first_slice_segment_in_pic_flag. */
    if (media_nal_is_vcl(i.kind)) i.first_slice = len > hl && (nal[hl] & 0x80);
    return i;
}

/* Position of the next 00 00 01 at or after `from`, or len. */
static size_t find_start(const uint8_t *buf, size_t len, size_t from)
{
    for (size_t i = from; i + 2 < len;) {
        const uint8_t *z = memchr(buf + i, 0, len - 2 - i);
        if (!z) break;
        i = (size_t)(z - buf);
        if (buf[i + 1] == 0 && buf[i + 2] == 1) return i;
        i++;
    }
    return len;
}

ct_err media_annexb_next(const uint8_t *buf, size_t len, size_t *pos, const uint8_t **nal, size_t *nal_len,
                         size_t *skipped)
{
    size_t s = find_start(buf, len, *pos);
    if (s >= len) {
        *skipped = len - *pos;
        *pos = len;
        return CT_ERR_NOT_FOUND;
    }
    /* Zero bytes before a start code are part of it (zero_byte / trailing_zero_8bits), anything else is not. */
    size_t lead = s;
    while (lead > *pos && buf[lead - 1] == 0) lead--;
    *skipped = lead - *pos;
    size_t begin = s + 3, end = find_start(buf, len, begin);
    size_t stop = end;
    while (stop > begin && buf[stop - 1] == 0) stop--;
    *nal = buf + begin;
    *nal_len = stop - begin;
    *pos = end;
    return CT_OK;
}

ct_err media_annexb_guess(const uint8_t *buf, size_t len, media_codec *out)
{
    size_t pos = 0, n, skipped;
    const uint8_t *nal;
    /* H.265 streams open with VPS/SPS/PPS (32-34) or AUD (35); H.264 with SPS (7), AUD (9) or SEI (6). */
    for (int k = 0; k < 8 && media_annexb_next(buf, len, &pos, &nal, &n, &skipped) == CT_OK; k++) {
        if (n == 0) continue; /* a start code ending the input: nal points past it */
        if (n >= 2 && !(nal[0] & 0x80) && (nal[1] & 0x07) != 0 && ((nal[0] >> 1) & 0x3f) >= 32 &&
            ((nal[0] >> 1) & 0x3f) <= 35) {
            *out = MEDIA_H265;
            return CT_OK;
        }
        unsigned t = nal[0] & 0x1f;
        if (!(nal[0] & 0x80) && (t == 7 || t == 9 || t == 6)) {
            *out = MEDIA_H264;
            return CT_OK;
        }
    }
    return ct_fail(CT_ERR_BAD_REQUEST, "not an H.264 or H.265 Annex B stream (no parameter sets at its start)");
}

ct_err media_lp_next(const uint8_t *buf, size_t len, unsigned size_len, size_t *pos, const uint8_t **nal,
                     size_t *nal_len)
{
    if (*pos >= len) return CT_ERR_NOT_FOUND;
    CT_ENSURE_RET(size_len >= 1 && size_len <= 4, CT_ERR_ARG);
    CT_ENSURE_RET(len - *pos >= size_len,
                  ct_fail(CT_ERR_BAD_REQUEST, "NAL length prefix cut off at byte %zu of a %zu-byte sample", *pos, len));
    size_t n = 0;
    for (unsigned i = 0; i < size_len; i++) n = n << 8 | buf[*pos + i];
    size_t at = *pos + size_len;
    CT_ENSURE_RET(n <= len - at, ct_fail(CT_ERR_BAD_REQUEST, "NAL unit of %zu bytes runs past its %zu-byte sample", n,
                                          len));
    *nal = buf + at;
    *nal_len = n;
    *pos = at + n;
    return CT_OK;
}

ct_err media_epb_remove(const uint8_t *in, size_t len, uint8_t *out, size_t max, size_t *out_len)
{
    size_t o = 0;
    int zeros = 0;
    for (size_t i = 0; i < len; i++) {
        if (zeros >= 2 && in[i] == 3) {
            zeros = 0;
            continue;
        }
        CT_ENSURE_RET(o < max, ct_fail(CT_ERR_BUF_FULL, "NAL unit larger than %zu bytes", max));
        out[o++] = in[i];
        zeros = in[i] == 0 ? zeros + 1 : 0;
    }
    *out_len = o;
    return CT_OK;
}

size_t media_epb_offset(const uint8_t *in, size_t len, size_t off)
{
    size_t i = 0, o = 0;
    int zeros = 0;
    for (; i < len && o < off; i++) {
        if (zeros >= 2 && in[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = in[i] == 0 ? zeros + 1 : 0;
        o++;
    }
    return i;
}

ct_err media_epb_add(const uint8_t *in, size_t len, ct_buf *out)
{
    int zeros = 0;
    for (size_t i = 0; i < len; i++) {
        if (zeros >= 2 && in[i] <= 3) {
            static const uint8_t epb = 3;
            CT_GUARD_RET(ct_buf_append(out, &epb, 1));
            zeros = 0;
        }
        CT_GUARD_RET(ct_buf_append(out, &in[i], 1));
        zeros = in[i] == 0 ? zeros + 1 : 0;
    }
    return CT_OK;
}

/* SEI payloadType and payloadSize: 0xff bytes each adding 255, then the last byte. */
static ct_err put_ff_coded(ct_buf *b, size_t v)
{
    static const uint8_t ff = 0xff;
    for (; v >= 255; v -= 255) CT_GUARD_RET(ct_buf_append(b, &ff, 1));
    uint8_t last = (uint8_t)v;
    return ct_buf_append(b, &last, 1);
}

static ct_err get_ff_coded(const uint8_t *p, size_t len, size_t *pos, size_t *v)
{
    *v = 0;
    for (;;) {
        CT_ENSURE_RET(*pos < len, ct_fail(CT_ERR_BAD_REQUEST, "SEI message header cut off"));
        uint8_t b = p[(*pos)++];
        CT_ENSURE_RET(*v <= SIZE_MAX / 2, CT_ERR_BAD_REQUEST);
        *v += b;
        if (b != 0xff) return CT_OK;
    }
}

ct_err media_sei_header(media_codec c, bool suffix, size_t payload_size, ct_buf *out)
{
    /* forbidden 0, nal_ref_idc 0, type 6 / H.265 type 39 or 40, layer 0, temporal id plus 1 = 1. */
    uint8_t hdr[3] = {0x06, 0x05, 0};
    size_t n = 1;
    if (c == MEDIA_H265) {
        hdr[0] = (uint8_t)((suffix ? 40 : 39) << 1);
        hdr[1] = 0x01;
        hdr[2] = 0x05;
        n = 3;
    }
    CT_GUARD_RET(ct_buf_append(out, hdr, c == MEDIA_H265 ? n : 2));
    return put_ff_coded(out, payload_size);
}

ct_err media_sei_find(media_codec c, const uint8_t *rbsp, size_t len, const uint8_t uuid[MEDIA_UUID_LEN], size_t *off,
                      size_t *size)
{
    size_t pos = media_nal_header_len(c);
    CT_ENSURE_RET(len > pos, ct_fail(CT_ERR_BAD_REQUEST, "SEI NAL unit of %zu bytes", len));
    /* Messages follow each other until the rbsp trailing bits (0x80, the last byte). */
    while (pos < len && !(pos + 1 == len && rbsp[pos] == 0x80)) {
        size_t type, n;
        CT_GUARD_RET(get_ff_coded(rbsp, len, &pos, &type));
        CT_GUARD_RET(get_ff_coded(rbsp, len, &pos, &n));
        CT_ENSURE_RET(n <= len - pos, ct_fail(CT_ERR_BAD_REQUEST, "SEI message of %zu bytes runs past its %zu-byte NAL "
                                                                  "unit", n, len));
        if (type == 5 && n >= MEDIA_UUID_LEN && memcmp(rbsp + pos, uuid, MEDIA_UUID_LEN) == 0) {
            *off = pos;
            *size = n;
            return CT_OK;
        }
        pos += n;
    }
    return CT_ERR_NOT_FOUND;
}

ct_err media_file_map(const char *path, media_file *out)
{
    ct_err rc = CT_OK;
    struct stat st;
    memset(out, 0, sizeof *out);
    /* Non-blocking: a FIFO put where a recording was expected is refused below, not waited on for ever (reads of
     * a regular file do not heed the flag). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    CT_ENSURE_MSG(fd >= 0, CT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    CT_ENSURE_MSG(fstat(fd, &st) == 0 && S_ISREG(st.st_mode), CT_ERR_IO, "%s is not a regular file", path);
    CT_ENSURE_MSG(st.st_size > 0, CT_ERR_BAD_REQUEST, "%s is empty", path);
    /* Populated at once: one bulk fault instead of one per page while hashing (costly under virtualisation). */
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    CT_ENSURE_MSG(p != MAP_FAILED, CT_ERR_IO, "cannot map %s: %s", path, strerror(errno));
    out->map = p;
    out->data = p;
    out->len = (size_t)st.st_size;
cleanup:
    if (fd >= 0) close(fd);
    return rc;
}

ct_err media_file_snapshot(const char *path, size_t max, media_file *out)
{
    ct_err rc = CT_OK;
    struct stat st;
    size_t got = 0;
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* as media_file_map's */
    CT_ENSURE_MSG(fd >= 0, CT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    CT_ENSURE_MSG(fstat(fd, &st) == 0 && S_ISREG(st.st_mode), CT_ERR_IO, "%s is not a regular file", path);
    CT_ENSURE_MSG(st.st_size > 0, CT_ERR_BAD_REQUEST, "%s is empty", path);
    CT_ENSURE_MSG((uint64_t)st.st_size <= max, CT_ERR_TOO_LARGE, "%s is larger than %zu MiB", path, max >> 20);
    /* Anonymous memory, not a mapping of the file: a file mapping shows whatever another writer puts there later. */
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CT_ENSURE_MSG(p != MAP_FAILED, CT_ERR_IO, "cannot hold %s in memory: %s", path, strerror(errno));
    out->map = p;
    out->len = (size_t)st.st_size;
    while (got < out->len) {
        ssize_t n = read(fd, (uint8_t *)p + got, out->len - got);
        if (n < 0 && errno == EINTR) continue;
        CT_ENSURE_MSG(n > 0, CT_ERR_IO, "cannot read %s: %s", path, n < 0 ? strerror(errno) : "it shrank while read");
        got += (size_t)n;
    }
    CT_ENSURE_MSG(mprotect(p, out->len, PROT_READ) == 0, CT_ERR_IO, "mprotect: %s", strerror(errno));
    out->data = p;
cleanup:
    if (fd >= 0) close(fd);
    if (rc != CT_OK) media_file_unmap(out);
    return rc;
}

void media_file_unmap(media_file *f)
{
    if (f->map) munmap(f->map, f->len);
    memset(f, 0, sizeof *f);
}
