/* EST (RFC 7030) over the policy: routes, content types and base64 bodies. No HTTP library here. */
#include <string.h>

#include "ca_priv.h"

#define EST_LABEL_MAX 32
#define EST_PKCS7_CERTS_ONLY "application/pkcs7-mime; smime-type=certs-only"

static bool label_valid(const char *s, size_t n)
{
    if (n == 0 || n > EST_LABEL_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

static ct_err answer_base64(ca_http_answer *ans, const char *content_type, const ct_buf *der)
{
    ans->status = 200;
    ans->content_type = content_type;
    CT_GUARD_RET(ct_buf_alloc(&ans->body, der->len * 2 + 64));
    return ct_base64_encode(der->data, der->len, true, &ans->body);
}

static ct_err enroll(ca *c, ca_enroll_kind kind, const char *label, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    ct_buf csr = CT_BUF_INIT, p7 = CT_BUF_INIT;
    ca_enroll_result res = {0};
    /* Room for what the body can decode to (3 bytes per 4), up to the bound: a longer CSR is refused below. */
    size_t csr_room = rq->body_len / 4 * 3 + 3 < PKI_MAX_CSR_DER ? rq->body_len / 4 * 3 + 3 : PKI_MAX_CSR_DER;
    /* Refusals that need no parsing come first, and are audited like every other refusal. */
    if (rq->body_too_large) rc = ca_http_body_too_large(c, rq->method);
    else if (!ca_media_type_is(rq->content_type, "application/pkcs10"))
        /* A fixed reason: the sent type is the client's text, and this refusal (before any certificate) is
         * counted per reason, so each type sent would be a key of its own. */
        rc = ct_fail(CT_ERR_CONTENT_TYPE, "content type must be application/pkcs10");
    else if (rq->client_cert_untrusted)
        rc = ct_fail(CT_ERR_UNKNOWN_CLIENT, "the client certificate does not chain to a camtrust CA");
    else if (!rq->client_cert)
        rc = ct_fail(CT_ERR_UNAUTHENTICATED, "no TLS client certificate was presented");
    else if (ct_buf_alloc(&csr, csr_room) != CT_OK)
        rc = CT_ERR_NOMEM;
    else if ((rc = ct_base64_decode(rq->body, rq->body_len, &csr)) == CT_ERR_TOO_LARGE)
        rc = ct_fail(CT_ERR_TOO_LARGE, "CSR larger than %d bytes", PKI_MAX_CSR_DER);
    if (rc != CT_OK) {
        rc = ca_refuse_anonymous(c, rq->source, "est.enroll", "", rc);
        goto cleanup;
    }
    ca_enroll_request req = {.kind = kind, .client_cert = rq->client_cert, .client_cert_len = rq->client_cert_len,
                             .label = label, .csr = csr.data, .csr_len = csr.len, .source = rq->source};
    ct_err enrolled = ca_enroll(c, &req, &res);
    CT_GUARD(ct_strlcpy(ans->actor, sizeof ans->actor, res.actor));
    CT_GUARD(enrolled);
    const uint8_t *certs[] = {res.cert_der.data};
    const size_t lens[] = {res.cert_der.len};
    CT_GUARD(ct_buf_alloc(&p7, res.cert_der.len + 128));
    CT_GUARD(pki_pkcs7_certs_only(certs, lens, 1, &p7));
    CT_GUARD(answer_base64(ans, EST_PKCS7_CERTS_ONLY, &p7));
    CT_GUARD(ct_snprintf(ans->reason, sizeof ans->reason, "%s serial=%s", res.repeated ? "repeated" : "issued",
                         res.device_serial));
cleanup:
    ct_buf_free(&csr);
    ct_buf_free(&p7);
    ct_buf_free(&res.cert_der);
    return rc;
}

ct_err ca_est_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    char label[EST_LABEL_MAX + 1] = "";
    memset(ans, 0, sizeof *ans);
    ct_err_clear();
    const char *path = rq->path, *op = path, *slash = strchr(path, '/');
    if (slash) {
        CT_ENSURE_MSG(label_valid(path, (size_t)(slash - path)), CT_ERR_NOT_FOUND, "no such EST resource");
        memcpy(label, path, (size_t)(slash - path));
        op = slash + 1;
    }
    bool is_get = strcmp(rq->method, "GET") == 0, is_post = strcmp(rq->method, "POST") == 0;
    if (strcmp(op, "cacerts") == 0) {
        CT_ENSURE_MSG(is_get, CT_ERR_METHOD, "cacerts takes GET");
        CT_GUARD(ca_cacerts(c, &der));
        CT_GUARD(answer_base64(ans, "application/pkcs7-mime", &der));
    } else if (strcmp(op, "csrattrs") == 0) {
        CT_ENSURE_MSG(is_get, CT_ERR_METHOD, "csrattrs takes GET");
        CT_GUARD(ct_buf_alloc(&der, 256));
        CT_GUARD(pki_csrattrs(&der));
        CT_GUARD(answer_base64(ans, "application/csrattrs", &der));
    } else if (strcmp(op, "simpleenroll") == 0 || strcmp(op, "simplereenroll") == 0) {
        CT_ENSURE_MSG(is_post, CT_ERR_METHOD, "%s takes POST", op);
        ca_enroll_kind kind = strcmp(op, "simpleenroll") == 0 ? CA_ENROLL_NEW : CA_ENROLL_RENEW;
        CT_GUARD(enroll(c, kind, label, rq, ans));
    } else {
        rc = ct_fail(CT_ERR_NOT_FOUND, "no such EST resource");
    }
cleanup:
    ct_buf_free(&der);
    if (rc != CT_OK) ca_http_error(ans, rc);
    return rc;
}
