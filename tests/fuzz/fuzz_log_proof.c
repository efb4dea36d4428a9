/* Fuzzes what a witness and a station take from the CA they check (common/http/log.c): the input is an answer to
 * /log/proof/consistency or /log/proof/inclusion, after 16 bytes giving the two tree sizes (or a leaf index and a
 * size). Its hashes are parsed as ct_http_json_hashes does and checked with the RFC 9162 verifiers: whatever a
 * hostile CA sends, at most CT_MERKLE_MAX_PATH hashes are taken, nothing is read or written past the answer, and a
 * proof of nothing verifies nothing (an empty proof between two different sizes). Refusals carry one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"consistency_path", "audit_path"};
    if (size < 16) return 0;
    uint64_t a = be64(data), b = be64(data + 8);
    uint8_t root_a[CT_MERKLE_HASH_LEN], root_b[CT_MERKLE_HASH_LEN];
    memset(root_a, 0x11, sizeof root_a);
    memset(root_b, 0x22, sizeof root_b);
    for (size_t k = 0; k < 2; k++) {
        ct_buf body = CT_BUF_INIT;
        ct_merkle_hash path[CT_MERKLE_MAX_PATH];
        size_t n = 0;
        /* As the client holds an answer: its bytes and room for a NUL after them. */
        if (ct_buf_alloc(&body, size - 16 + 1) != CT_OK || ct_buf_set(&body, data + 16, size - 16) != CT_OK) abort();
        ct_err rc = ct_http_json_hashes(&body, names[k], path, &n);
        if (rc != CT_OK && strchr(ct_err_detail(), '\n')) abort();
        if (rc == CT_OK) {
            if (n > CT_MERKLE_MAX_PATH) abort();
            bool holds = ct_merkle_verify_consistency(a, root_a, b, root_b, path, n);
            if (holds && n == 0 && a != b && a != 0) abort(); /* an empty proof between two trees proves nothing */
            (void)ct_merkle_verify_inclusion(root_a, a, b, path, n, root_b);
        }
        ct_buf_free(&body);
    }
    return 0;
}
