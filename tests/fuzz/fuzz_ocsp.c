/* Fuzzes the OCSP request parser (RFC 6960 OCSPRequest, outside input on GET /ocsp/<base64> and POST /ocsp):
 * the bounded DER walk, CertID hashes, serials and the nonce extension, the issuer match the responder makes,
 * and the status-only answer it gives to what it cannot read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const pki_cert_ids issuer; /* all zero: matches nothing real, exercises the comparison */
    pki_ocsp_request req;
    ct_buf out = CT_BUF_INIT;
    if (pki_ocsp_request_parse(data, size, &req) == CT_OK) {
        if (req.n == 0 || req.n > PKI_OCSP_MAX_CERTS) abort();
        if (req.nonce && (req.nonce_len == 0 || req.nonce_len > PKI_OCSP_MAX_NONCE || req.nonce < data ||
                          req.nonce + req.nonce_len > data + size))
            abort();
        for (size_t i = 0; i < req.n; i++) {
            const pki_ocsp_cert_id *id = &req.ids[i];
            if (id->der < data || id->der_len == 0 || id->der + id->der_len > data + size) abort();
            if (strlen(id->serial_hex) >= sizeof id->serial_hex) abort();
            (void)pki_ocsp_cert_id_is_for(id, &issuer);
        }
    } else if (pki_ocsp_response_status(PKI_OCSP_MALFORMED, &out) != CT_OK || out.len != 5) {
        abort();
    }
    ct_buf_free(&out);
    return 0;
}
