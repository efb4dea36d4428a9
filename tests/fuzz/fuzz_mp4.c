/* Fuzzes the MP4 reader: boxes, sample tables, parameter sets, edit lists and the length-prefixed NAL units of every
 * sample; every sample it hands out must lie inside the input. */
#include <stdint.h>
#include <stdlib.h>

#include "media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    media_mp4 *m = NULL;
    media_mp4_video v;
    media_sample s;
    media_edits e;
    const uint8_t *nal;
    size_t n, pos;
    media_mp4_edits(data, size, &e); /* the edit lists the verifier reads (every read within its box) */
    if (media_mp4_open(data, size, &m) != CT_OK) return 0;
    if (media_mp4_video_track(m, &v) == CT_OK) {
        for (size_t i = 0; media_mp4_param_set(m, i, &nal, &n) == CT_OK; i++)
            if (nal < data || nal + n > data + size) abort();
        for (uint32_t i = 0; i < v.samples && i < 4096; i++) {
            if (media_mp4_sample(m, i, &s) != CT_OK) break;
            if (s.off > size || s.size > size - s.off) abort();
            pos = 0;
            while (media_lp_next(data + s.off, s.size, v.nal_length_size, &pos, &nal, &n) == CT_OK)
                if (nal + n > data + s.off + s.size) abort();
        }
    }
    (void)media_mp4_creation_time(m);
    media_mp4_free(m);
    return 0;
}
