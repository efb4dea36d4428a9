/* The station's EST exchanges (RFC 7030) over the HTTPS client of common/http: mutual TLS with the station's
 * token key, the CA server verified against the operations root. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "station_priv.h"

#define EST_PREFIX "/.well-known/est/"

static ct_err add_cert(const uint8_t *der, size_t len, void *arg)
{
    est_certs *certs = arg;
    CT_ENSURE_RET(certs->n < PKI_MAX_PKCS7_CERTS, CT_ERR_BAD_DER);
    ct_buf *b = &certs->der[certs->n];
    CT_GUARD_RET(ct_buf_alloc(b, len));
    CT_GUARD_RET(ct_buf_set(b, der, len));
    certs->n++;
    return CT_OK;
}

void est_certs_free(est_certs *certs)
{
    for (size_t i = 0; i < certs->n; i++) ct_buf_free(&certs->der[i]);
    certs->n = 0;
}

/* An EST exchange whose answer is a base64 certs-only PKCS#7. */
static ct_err est_exchange(ct_http_client *c, const char *method, const char *path, const ct_buf *body,
                           const char *what, est_certs *out)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    ct_http_answer ans = {0};
    char full[128];
    out->n = 0;
    CT_GUARD(ct_snprintf(full, sizeof full, "%s%s", EST_PREFIX, path));
    CT_GUARD(ct_http_request(c, method, full,
                             body ? "Content-Type: application/pkcs10\r\nContent-Transfer-Encoding: base64\r\n" : NULL,
                             body, &ans));
    if (ans.status != 200) {
        rc = ct_http_refusal(&ans, what);
        goto cleanup;
    }
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_PKCS7_DER));
    if ((rc = ct_base64_decode(ans.body, ans.body_len, &der)) != CT_OK) {
        rc = ct_fail_ctx(rc, "the CA's answer to %s is not base64", what);
        goto cleanup;
    }
    if ((rc = pki_pkcs7_certs_parse(der.data, der.len, add_cert, out)) != CT_OK) {
        rc = ct_fail_ctx(rc, "the CA's answer to %s is not a certs-only PKCS#7", what);
        goto cleanup;
    }
    CT_ENSURE_MSG(out->n > 0, CT_ERR_BAD_DER, "the CA's answer to %s holds no certificate", what);
cleanup:
    if (rc != CT_OK) est_certs_free(out);
    ct_buf_free(&der);
    return rc;
}

ct_err est_cacerts(ct_http_client *c, est_certs *out)
{
    return est_exchange(c, "GET", "cacerts", NULL, "cacerts", out);
}

ct_err est_simpleenroll(ct_http_client *c, const char *label, const uint8_t *csr, size_t csr_len, ct_buf *leaf)
{
    ct_err rc = CT_OK;
    ct_buf body = CT_BUF_INIT;
    est_certs certs = {.n = 0};
    char path[96], what[96];
    bool labelled = label && *label;
    CT_GUARD(ct_snprintf(path, sizeof path, "%s%ssimpleenroll", labelled ? label : "", labelled ? "/" : ""));
    CT_GUARD(ct_snprintf(what, sizeof what, "the %s enrollment", labelled ? label : "device"));
    CT_ENSURE(csr_len <= PKI_MAX_CSR_DER, CT_ERR_TOO_LARGE);
    CT_GUARD(ct_buf_alloc(&body, csr_len * 2 + 64));
    CT_GUARD(ct_base64_encode(csr, csr_len, true, &body));
    CT_GUARD(est_exchange(c, "POST", path, &body, what, &certs));
    CT_GUARD(ct_buf_alloc(leaf, certs.der[0].len));
    CT_GUARD(ct_buf_set(leaf, certs.der[0].data, certs.der[0].len));
cleanup:
    est_certs_free(&certs);
    ct_buf_free(&body);
    return rc;
}
