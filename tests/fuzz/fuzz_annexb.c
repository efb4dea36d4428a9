/* Fuzzes Annex B splitting, NAL classification and emulation prevention removal (what the validator does with
 * raw H.264/H.265 from anywhere), and the streaming validator itself on the NAL units found. */
#include <stdint.h>
#include <stdlib.h>

#include "mediasign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[1 << 16];
    static const uint8_t root[] = {0x30, 0x03, 0x02, 0x01, 0x01}; /* not a certificate: nothing is trusted */
    ms_verify_config cfg = {.root_der = root, .root_len = sizeof root, .live = size && (data[0] & 2)}; /* live viewing, or a file */
    ms_verifier *v = NULL;
    media_codec codec = size && (data[0] & 1) ? MEDIA_H265 : MEDIA_H264;
    size_t pos = 0, n, skipped, m;
    const uint8_t *nal;
    ms_summary sum;
    if (ms_verifier_open(&cfg, codec, 0, "fuzz", NULL, NULL, &v) != CT_OK) abort();
    while (media_annexb_next(data, size, &pos, &nal, &n, &skipped) == CT_OK) {
        media_nal_info info = media_nal_classify(codec, nal, n);
        (void)info;
        if (media_epb_remove(nal, n, out, sizeof out, &m) == CT_OK && m > n) abort();
        if (ms_verifier_push(v, nal, n, -1) == CT_ERR_NOMEM) abort();
    }
    if (ms_verifier_finish(v, &sum) != CT_OK) abort();
    ms_verifier_close(v);
    return 0;
}
