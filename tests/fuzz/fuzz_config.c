/* Fuzzes the config parser: any bytes either parse or fail cleanly, and lookups on the result are safe. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"listen", "workers", "db.path", "pin-file", "a", "k", ""};
    ct_config *c = NULL;
    ct_err rc = ct_config_parse(data, size, &c);
    if (rc != CT_OK) {
        if (c != NULL || rc != CT_ERR_CONFIG) abort(); /* NOMEM aside, every refusal is CT_ERR_CONFIG */
        return 0;
    }
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = ct_config_get(c, keys[i], NULL);
        if (v) {
            size_t n = strlen(v);
            if (n > CT_CONFIG_MAX_LINE) abort();
            for (size_t j = 0; j < n; j++)
                if ((unsigned char)v[j] < 0x20) abort(); /* control characters are refused */
        }
        long out = 0;
        if (ct_config_get_int(c, keys[i], 7, -1000, 1000, &out) == CT_OK && (out < -1000 || out > 1000)) abort();
    }
    ct_config_free(c);
    return 0;
}
