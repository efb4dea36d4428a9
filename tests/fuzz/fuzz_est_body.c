/* Fuzzes what the CA does with an EST simpleenroll body (RFC 7030 4.2.1): strict base64 into a PKI_MAX_CSR_DER
 * buffer, then PKCS#10 parsing with its proof-of-possession check, the getters the CA uses, and free. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ct_buf der = CT_BUF_INIT;
    if (ct_buf_alloc(&der, PKI_MAX_CSR_DER) != CT_OK) abort();
    if (ct_base64_decode(data, size, &der) == CT_OK) {
        pki_csr *csr = NULL;
        if (pki_csr_parse(der.data, der.len, &csr) == CT_OK) {
            if (!csr) abort();
            const char *serial = pki_csr_subject_serial(csr), *cn = pki_csr_subject_cn(csr);
            if (!serial || !cn || strlen(serial) >= PKI_NAME_MAX * 4 || strlen(cn) >= PKI_NAME_MAX * 4) abort();
            size_t spki_len = 0;
            const uint8_t *spki = pki_csr_spki(csr, &spki_len);
            if (!spki || spki_len == 0 || spki_len > der.len) abort();
            uint8_t h[32];
            pki_csr_spki_sha256(csr, h);
            (void)pki_csr_key_type(csr);
            pki_csr_free(csr);
        }
    }
    ct_buf_free(&der);
    return 0;
}
