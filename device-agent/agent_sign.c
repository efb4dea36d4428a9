/* Signed video on the camera: the recording is signed with the media-signing key inside the token, and the
 * media-signing chain (without the root) travels in the stream. */
#include <string.h>

#include "agent_priv.h"

#define AGENT_FIRMWARE "camtrust-agent 1.0"
#define AGENT_MANUFACTURER "camtrust"

ct_err agent_sign(const char *dir, const char *in, const char *out, ms_sign_stats *st)
{
    ct_err rc = CT_OK;
    agent *a = NULL;
    agent_status status;
    agent_creds c;
    hsm_key *k = NULL;
    ct_buf pem = CT_BUF_INIT;
    memset(&c, 0, sizeof c);
    CT_GUARD(agent_open(dir, &a));
    CT_GUARD(agent_status_get(a, &status));
    CT_ENSURE_MSG(status.state == AGENT_PROVISIONED, CT_ERR_FORBIDDEN, "cannot sign: the camera is %s%s%s",
                  agent_state_name(status.state), status.reason[0] ? ": " : "", status.reason);
    CT_GUARD(agent_creds_load(a, &c));
    agent_chain *ch = &c.chain[AGENT_PROFILE_MEDIA];
    /* The format carries the chain without its root: validators bring their own. */
    if (ch->n > 1 && ch->der[ch->n - 1].len == a->root_der.len &&
        memcmp(ch->der[ch->n - 1].data, a->root_der.data, a->root_der.len) == 0)
        ch->n--;
    CT_GUARD(ct_buf_alloc(&pem, AGENT_CREDS_MAX));
    CT_GUARD(agent_chain_pem(ch, &pem));
    CT_GUARD(agent_key_get(a, AGENT_PROFILE_MEDIA, false, &k));
    ms_signer_config cfg = {0, k, pem.data, pem.len, a->serial, a->model, AGENT_FIRMWARE, AGENT_MANUFACTURER, true};
    CT_GUARD(ms_sign_file(&cfg, in, out, st));
    ct_log(CT_LOG_INFO, "signed", "serial=%s in=%s out=%s gops=%llu", a->serial, in, out, (unsigned long long)st->gops);
cleanup:
    hsm_key_free(k);
    ct_buf_free(&pem);
    agent_creds_free(&c);
    agent_close(a);
    return rc;
}
