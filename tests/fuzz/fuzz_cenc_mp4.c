/* Encrypted fragmented MP4 as outside input: the box walk (with keys and, as a custodian, without), moov/sample entry/tenc, pssh, moof/traf/trun/senc/
 * sgpd parsing and the sample decryption behind camtrust-view (decrypt, and live's segment by segment), with a fixed
 * key (no token). */
#include <string.h>

#include "../../common/cenc/cenc.h"

static ct_err fixed_key(void *arg, const uint8_t kid[CENC_KID_LEN], const cenc_pssh *p, uint8_t key[CENC_KEY_LEN])
{
    (void)arg, (void)p;
    memcpy(key, kid, CENC_KEY_LEN);
    return CT_OK;
}

static ct_err discard(void *arg, const uint8_t *p, size_t n)
{
    (void)arg, (void)p, (void)n;
    return CT_OK;
}

static ct_err nal(void *arg, media_codec c, const uint8_t *p, size_t n, double t)
{
    (void)c, (void)p, (void)t;
    *(size_t *)arg += n;
    return CT_OK;
}

static ct_err count(void *arg, const cenc_pssh *p)
{
    *(size_t *)arg += p->n;
    return CT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t recipients = 0;
    cenc_scheme s;
    if (cenc_list(data, size, &s, count, &recipients) != CT_OK) ct_err_clear();
    if (cenc_decrypt(data, size, fixed_key, NULL, discard, NULL, NULL) != CT_OK) ct_err_clear();
    if (cenc_walk(data, size, nal, &recipients) != CT_OK) ct_err_clear();
    /* camtrust-view live: the init segment opens the clear output, each segment (init + segment) is appended. */
    cenc_writer *w = NULL;
    if (cenc_decrypt_begin(data, size, discard, NULL, &w) == CT_OK &&
        cenc_decrypt_append(data, size, fixed_key, NULL, w) != CT_OK)
        ct_err_clear();
    cenc_writer_free(w);
    ct_err_clear();
    return 0;
}
