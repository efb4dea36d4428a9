/* Fuzzes what the recorder reads from an Annex B stream's parameter sets and slice headers: picture sizes,
 * picture order counts (B-frame presentation order) and slice header lengths (the clear part of each slice), NAL
 * unit by NAL unit as cenc_record_file and the writer do, and the parameter set ids the verifier reads. An odd first
 * byte (garbage before the first start code) selects H.265. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/cenc/cenc_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cenc_order ord;
    media_codec codec = size && (data[0] & 1) ? MEDIA_H265 : MEDIA_H264;
    size_t pos = 0, n, skipped;
    const uint8_t *nal;
    uint64_t key, last_epoch = 0;
    uint16_t w, h;
    size_t bytes;
    memset(&ord, 0, sizeof ord);
    while (media_annexb_next(data, size, &pos, &nal, &n, &skipped) == CT_OK) {
        cenc_sps_size(codec, nal, n, &w, &h);
        /* a parameter set's slot (the verifier's table, by kind and id) is one of them */
        int slot = cenc_param_slot(codec, nal, n);
        if (slot < -1 || slot >= CENC_PARAM_SLOTS) abort();
        if (cenc_order_nal(&ord, codec, nal, n, &key)) {
            /* epochs (POC resets) only grow, and a key never goes back to an earlier one */
            if (key >> 40 < last_epoch) abort();
            last_epoch = key >> 40;
        }
        /* a header length lies inside its NAL unit, past the NAL header */
        if (cenc_slice_header_size(&ord, codec, nal, n, &bytes) && (bytes > n || bytes <= media_nal_header_len(codec)))
            abort();
    }
    return 0;
}
