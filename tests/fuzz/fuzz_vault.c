/* Fuzzes what the root vault reads from outside: a CSR's extension request (pki_csr_asks_get, the profile check of
 * root sign) and a custodian's share file header (vault_share_parse). Malformed input fails cleanly; what parses
 * is within bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "vault_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pki_csr_asks asks;
    vault_share_file f;
    if (pki_csr_asks_get(data, size, &asks) == CT_OK && asks.path_len > 0xffff) abort();
    if (vault_share_parse(data, size, &f) == CT_OK &&
        (f.number < 1 || f.number > f.custodians || f.quorum > f.custodians || f.custodians > VAULT_MAX_CUSTODIANS ||
         f.iterations < VAULT_KDF_MIN || f.iterations > VAULT_KDF_MAX))
        abort();
    return 0;
}
