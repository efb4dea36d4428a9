/* Signed video on the camera: the recording is signed with the media-signing key inside the token, and the
 * media-signing chain (without the root) travels in the stream. */
#include <string.h>

#include "agent_priv.h"

#define AGENT_FIRMWARE "camtrust-agent 1.0"
#define AGENT_MANUFACTURER "camtrust"

/* The media-signing key and its chain (without the root: validators bring their own), for a provisioned camera
 * only. Shared by `sign` and by `record --sign`. */
ct_err agent_media_signer_config(agent *a, agent_creds *c, ct_buf *pem, hsm_key **k, ms_signer_config *cfg)
{
    agent_status status;
    CT_GUARD_RET(agent_status_get(a, &status));
    CT_ENSURE_RET(status.state == AGENT_PROVISIONED,
                  ct_fail(CT_ERR_FORBIDDEN, "cannot sign: the camera is %s%s%s", agent_state_name(status.state),
                          status.reason[0] ? ": " : "", status.reason));
    CT_GUARD_RET(agent_creds_load(a, c));
    agent_chain *ch = &c->chain[AGENT_PROFILE_MEDIA];
    /* The format carries the chain without its root: validators bring their own. */
    if (ch->n > 1 && ch->der[ch->n - 1].len == a->root_der.len &&
        memcmp(ch->der[ch->n - 1].data, a->root_der.data, a->root_der.len) == 0)
        ch->n--;
    CT_GUARD_RET(ct_buf_alloc(pem, AGENT_CREDS_MAX));
    CT_GUARD_RET(agent_chain_pem(ch, pem));
    CT_GUARD_RET(agent_key_get(a, AGENT_PROFILE_MEDIA, false, k));
    *cfg = (ms_signer_config){0, *k, pem->data, pem->len, a->serial, a->model, AGENT_FIRMWARE, AGENT_MANUFACTURER, false};
    return CT_OK;
}

ct_err agent_sign(const char *dir, const char *in, const char *out, ms_sign_stats *st)
{
    ct_err rc = CT_OK;
    agent *a = NULL;
    agent_creds c;
    hsm_key *k = NULL;
    ct_buf pem = CT_BUF_INIT;
    ms_signer_config cfg;
    memset(&c, 0, sizeof c);
    CT_GUARD(agent_open(dir, &a));
    CT_GUARD(agent_media_signer_config(a, &c, &pem, &k, &cfg));
    cfg.threaded = true; /* a whole file: signatures off the hashing thread */
    CT_GUARD(ms_sign_file(&cfg, in, out, st));
    ct_log(CT_LOG_INFO, "signed", "serial=%s in=%s out=%s gops=%llu", a->serial, CT_LOGQ(in), CT_LOGQ(out), (unsigned long long)st->gops);
cleanup:
    hsm_key_free(k);
    ct_buf_free(&pem);
    agent_creds_free(&c);
    agent_close(a);
    return rc;
}
