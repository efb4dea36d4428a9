/* Fuzzes the C2SP tile path parser (ct_tile_parse): any accepted path is in range and canonical (it formats back
 * to exactly the input), and the beyond-the-log check agrees with the tile's own bounds for a few log sizes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "merkle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ct_tile t;
    ct_err rc = ct_tile_parse((const char *)data, size, &t);
    if (rc != CT_OK) {
        if (rc != CT_ERR_BAD_REQUEST || !*ct_err_detail()) abort();
        return 0;
    }
    if (t.width < 1 || t.width > CT_TILE_WIDTH || t.level > CT_TILE_MAX_LEVEL || (t.entries && t.level)) abort();
    char again[CT_TILE_PATH_MAX + 1];
    if (ct_tile_format(&t, again, sizeof again) != CT_OK) abort();
    if (strlen(again) != size || memcmp(again, data, size) != 0) abort(); /* one tile, one path */
    static const uint64_t sizes[] = {0, 1, 255, 256, 70000, UINT64_C(1) << 40, INT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        rc = ct_tile_in_tree(&t, sizes[i]);
        if (rc != CT_OK && rc != CT_ERR_NOT_FOUND) abort();
        /* In the tree: its last hash covers leaves that exist. */
        if (rc == CT_OK) {
            unsigned shift = t.entries ? 0 : 8u * t.level;
            if (shift >= 64) abort();
            uint64_t have = sizes[i] >> shift;
            if (t.index > have / CT_TILE_WIDTH || t.index * CT_TILE_WIDTH + t.width > have) abort();
        }
    }
    return 0;
}
