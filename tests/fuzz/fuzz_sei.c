/* Fuzzes the SEI message walk and the ONVIF Media Signing TLV decoder: every pointer they hand out must lie
 * inside the input. */
#include <stdint.h>
#include <stdlib.h>

#include "mediasign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
    if (!n) return;
    if (p < data || p + n > data + size) abort();
    volatile uint8_t sink = p[0] ^ p[n - 1];
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int c = MEDIA_H264; c <= MEDIA_H265; c++) {
        ms_sei s;
        if (ms_sei_parse((media_codec)c, data, size, &s) != CT_OK) continue;
        touch(s.hashes, s.n_hashes * MS_HASH_LEN, data, size);
        touch(s.sig, s.sig_len, data, size);
        touch(s.chain_pem, s.chain_len, data, size);
        if (s.has_signature && s.doc_len > size) abort();
    }
    return 0;
}
