/* The camera's two key pairs, made inside its token and never extractable, and their CSRs. */
#include <string.h>

#include "agent_priv.h"

void agent_key_id(agent_profile p, uint8_t id[AGENT_KEY_ID_LEN])
{
    id[0] = 0xde;
    id[1] = (uint8_t)(p + 1);
}

ct_err agent_key_get(agent *a, agent_profile p, bool create, hsm_key **out)
{
    ct_err rc = hsm_key_find(a->h, agent_key_label[p], out);
    if (rc != CT_ERR_HSM_NO_KEY || !create) return rc;
    /* Made once and reused while unlocked: a station that lost the CA's answer retries with the same key,
     * and the CA answers the same certificate (it refuses a second key for an issued serial). */
    uint8_t id[AGENT_KEY_ID_LEN];
    agent_key_id(p, id);
    return hsm_key_generate(a->h, HSM_EC_P256, agent_key_label[p], id, sizeof id, out);
}

ct_err agent_csr(agent *a, agent_profile p, bool create, const char *challenge, ct_buf *der)
{
    ct_err rc = CT_OK;
    hsm_key *k = NULL;
    rc = agent_key_get(a, p, create, &k);
    CT_ENSURE_MSG(rc != CT_ERR_HSM_NO_KEY, CT_ERR_INTEGRITY, "no %s key in the token", agent_key_label[p]);
    CT_GUARD(rc);
    CT_GUARD(pki_csr_make_challenged(k, a->serial, a->serial, challenge, der));
cleanup:
    hsm_key_free(k);
    return rc;
}
