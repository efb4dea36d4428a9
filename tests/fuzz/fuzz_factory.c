/* Fuzzes the factory-mode message parser: any bytes either decode into a frame whose fields all lie inside it,
 * or are refused cleanly; walking and string lookups on a decoded frame are safe. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "factory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    factory_msg m = {0};
    size_t used = 0;
    ct_err rc = factory_frame_decode(data, size, &m, &used);
    if (rc != CT_OK) {
        if (m.payload.data) abort(); /* nothing kept on refusal */
        if (rc != CT_ERR_NOT_FOUND && rc != CT_ERR_BAD_REQUEST && rc != CT_ERR_NOMEM) abort();
        return 0;
    }
    if (used < FACTORY_HEADER_LEN || used > size || m.payload.len > FACTORY_MAX_PAYLOAD) abort();
    size_t off = 0, count = 0, total = 0;
    factory_field f;
    while ((rc = factory_msg_next(&m, &off, &f)) == CT_OK) {
        if (f.value < m.payload.data || f.value + f.len > m.payload.data + m.payload.len) abort();
        total += 3 + f.len;
        if (++count > FACTORY_MAX_FIELDS) abort();
    }
    /* decode checked every field: the walk ends exactly at the end */
    if (rc != CT_ERR_NOT_FOUND || total != m.payload.len) abort();
    char s[64];
    for (int tag = FACTORY_TAG_SERIAL; tag <= FACTORY_TAG_STATUS; tag++)
        if (factory_msg_get_str(&m, (factory_tag)tag, s, sizeof s) == CT_OK && strlen(s) >= sizeof s) abort();
    factory_msg_free(&m);
    return 0;
}
