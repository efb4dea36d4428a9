/* Fuzzes the check camtrust-verify and camtrust-view verify run on a whole clip from anywhere (ms_verify_data):
 * the container told apart (Annex B, MP4, fragmented MP4, encrypted or not), the MP4 sample walk and the fragment
 * walk (cenc_walk) feeding the validator, the edit lists, the summary. The root is no certificate, so nothing may
 * come out authentic; a refusal of the file carries one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mediasign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_gop(const ms_gop_report *g, void *arg)
{
    if (g->status == MS_AUTHENTIC) abort();
    ++*(size_t *)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t root[] = {0x30, 0x03, 0x02, 0x01, 0x01}; /* not a certificate: nothing is trusted */
    ms_verify_config cfg = {.root_der = root, .root_len = sizeof root, .serial = size && (data[0] & 1) ? "CAM1" : NULL};
    media_file f = {.data = data, .len = size};
    ms_summary sum;
    size_t gops = 0;
    ct_err rc = ms_verify_data(&f, &cfg, on_gop, &gops, &sum);
    if (rc == CT_ERR_NOMEM || (rc != CT_OK && strchr(ct_err_detail(), '\n'))) abort();
    if (rc == CT_OK && sum.authentic) abort();
    ct_err_clear();
    return 0;
}
