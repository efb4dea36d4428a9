/* Fuzzes reading certificates out of a certs-only PKCS#7 (what the agent does with /cacerts and simpleenroll
 * responses): malformed input fails cleanly, and every certificate handed to the callback is readable. */
#include <stdint.h>
#include <stdlib.h>

#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    size_t count;
} seen;

static ct_err on_cert(const uint8_t *der, size_t len, void *arg)
{
    seen *s = arg;
    if (!der || len == 0) abort();
    volatile uint8_t sink = der[0] ^ der[len - 1]; /* let ASan check the whole range is readable */
    (void)sink;
    s->count++;
    return CT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seen s = {0};
    ct_err rc = pki_pkcs7_certs_parse(data, size, on_cert, &s);
    (void)rc;
    return 0;
}
