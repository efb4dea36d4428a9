/* Fuzzes strict base64 decoding into bounded buffers and PEM block extraction. A successful decode must fit the
 * buffer and survive an encode/decode round trip unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_into(const uint8_t *data, size_t size, size_t max)
{
    ct_buf out = CT_BUF_INIT, enc = CT_BUF_INIT, again = CT_BUF_INIT;
    if (ct_buf_alloc(&out, max) != CT_OK) abort();
    ct_err rc = ct_base64_decode(data, size, &out);
    if (rc == CT_OK) {
        if (out.len > out.max || out.len == 0) abort();
        if (ct_buf_alloc(&enc, out.len / 3 * 4 + 8) != CT_OK || ct_buf_alloc(&again, out.len + 2) != CT_OK) abort();
        if (ct_base64_encode(out.data, out.len, false, &enc) != CT_OK) abort();
        if (ct_base64_decode(enc.data, enc.len, &again) != CT_OK) abort();
        if (again.len != out.len || memcmp(again.data, out.data, out.len) != 0) abort();
    } else if (rc != CT_ERR_BAD_BASE64 && rc != CT_ERR_TOO_LARGE) {
        abort();
    }
    ct_buf_free(&again);
    ct_buf_free(&enc);
    ct_buf_free(&out);
}

static void pem_decode(const uint8_t *data, size_t size, const char *label, size_t index)
{
    ct_buf der = CT_BUF_INIT;
    if (ct_buf_alloc(&der, 2048) != CT_OK) abort();
    ct_err rc = ct_pem_decode(data, size, label, index, &der);
    if (rc == CT_OK && der.len > der.max) abort();
    ct_buf_free(&der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_into(data, size, 8192);
    decode_into(data, size, 16);
    decode_into(data, size, 1);
    pem_decode(data, size, "CERTIFICATE", 0);
    pem_decode(data, size, "CERTIFICATE", 1);
    pem_decode(data, size, "CERTIFICATE REQUEST", 0);
    return 0;
}
