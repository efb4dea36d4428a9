/* What the camera is: unprovisioned, provisioned (verified now), or broken with the reason. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include "agent_priv.h"

static void set_broken(agent_status *st, const char *why)
{
    st->state = AGENT_BROKEN;
    /* A reason too long is kept cut short (vsnprintf's truncation), not dropped. */
    if (ct_snprintf(st->reason, sizeof st->reason, "%s", why) != CT_OK) return;
}

ct_err agent_status_get(agent *a, agent_status *st)
{
    agent_creds c;
    pki_cert_info leaf;
    memset(st, 0, sizeof *st);
    CT_GUARD_RET(ct_strlcpy(st->serial, sizeof st->serial, a->serial));
    CT_GUARD_RET(ct_strlcpy(st->model, sizeof st->model, a->model));
    CT_GUARD_RET(ct_strlcpy(st->mac, sizeof st->mac, a->mac));
    if (!agent_locked(a)) {
        st->state = AGENT_UNPROVISIONED;
        return CT_OK;
    }
    ct_err rc = agent_creds_load(a, &c);
    if (rc == CT_OK) {
        rc = agent_creds_verify(a, &c, time(NULL), &leaf);
        agent_creds_free(&c);
    }
    if (rc == CT_ERR_NOMEM) return rc;
    if (rc != CT_OK) {
        set_broken(st, ct_err_detail());
        return CT_OK;
    }
    st->state = AGENT_PROVISIONED;
    char vkey[AGENT_PATH_MAX];
    CT_GUARD_RET(agent_path(a, AGENT_LOG_VKEY_FILE, vkey, sizeof vkey));
    st->log_checked = ct_file_exists(vkey);
    CT_GUARD_RET(ct_strlcpy(st->identity_cn, sizeof st->identity_cn, leaf.subject_cn));
    st->not_after = leaf.not_after;
    return CT_OK;
}

ct_err agent_status_line(const agent_status *st, char *out, size_t max)
{
    if (st->state == AGENT_UNPROVISIONED) return ct_snprintf(out, max, "unprovisioned serial=%s model=%s", st->serial, st->model);
    if (st->state == AGENT_BROKEN) return ct_snprintf(out, max, "broken: %s", st->reason);
    struct tm tm;
    char when[32];
    CT_ENSURE_RET(gmtime_r(&st->not_after, &tm) && strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0,
                  CT_ERR_INTERNAL);
    return ct_snprintf(out, max, "provisioned serial=%s model=%s identity=\"%s\" notAfter=%s", st->serial, st->model,
                       st->identity_cn, when);
}

ct_err agent_boot(const char *dir, agent_status *st)
{
    agent *a = NULL;
    memset(st, 0, sizeof *st);
    ct_err rc = agent_open(dir, &a);
    if (rc != CT_OK) {
        set_broken(st, ct_err_detail());
        return rc;
    }
    rc = agent_status_get(a, st);
    agent_close(a);
    CT_GUARD_RET(rc);
    if (st->state == AGENT_PROVISIONED) return CT_OK;
    return st->state == AGENT_UNPROVISIONED ? ct_fail(CT_ERR_NOT_FOUND, "unprovisioned")
                                            : ct_fail(CT_ERR_INTEGRITY, "%s", st->reason);
}
