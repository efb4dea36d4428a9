/* Fuzzes the witness report parser (common/note/report.c), the body of POST /log/witness-report: whatever parses
 * lies inside the input, and formats back to exactly the input (one spelling per report). Refusals carry one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ct_witness_report r;
    ct_err rc = ct_witness_report_parse(data, size, &r);
    if (rc != CT_OK) {
        if (strchr(ct_err_detail(), '\n')) abort();
        return 0;
    }
    if (r.kept < data || r.kept + r.kept_len > data + size || r.served < data || r.served + r.served_len > data + size ||
        r.proof_n > CT_MERKLE_MAX_PATH)
        abort();
    ct_buf again = CT_BUF_INIT;
    if (ct_witness_report_format(&r, &again) != CT_OK || again.len != size || memcmp(again.data, data, size) != 0) abort();
    ct_buf_free(&again);
    return 0;
}
