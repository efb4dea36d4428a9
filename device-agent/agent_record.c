/* Encrypted recording: the camera encrypts what it records for the viewers the owner authorised. Viewer
 * certificates are accepted only if they chain to the operations root pinned in the device folder. With
 * signing, the media-signing key in the token signs the recording as stored (encrypted), so a custodian
 * verifies it without any content key. */
#include <string.h>

#include "agent_priv.h"

ct_err agent_pin_ops_root(const char *dir, const char *ops_root_pem)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    char path[AGENT_PATH_MAX];
    CT_GUARD(agent_root_load(ops_root_pem, &der));
    CT_GUARD(ct_path_join(path, sizeof path, dir, AGENT_OPS_ROOT_FILE));
    CT_GUARD(ct_pem_write_file(path, "CERTIFICATE", der.data, der.len, 0644));
cleanup:
    ct_buf_free(&der);
    return rc;
}

/* The writer's signing hooks on an ONVIF signer, opened at the first NAL unit (when the codec is known). */
static ct_err hook_nal(void *arg, media_codec c, const uint8_t *nal, size_t len, double t)
{
    agent_rec_signer *r = arg;
    r->cfg.codec = c;
    if (!r->s) CT_GUARD_RET(ms_signer_open(&r->cfg, &r->s));
    /* Live (start 0), a GOP is stamped with the clock when its first picture reaches the signer: a stamp counted
     * in frames from the start would drift from the clock (an encoder's own crystal, frames dropped at night) and
     * make honest video look stale to a viewer's --max-age. Whole seconds: same-second GOPs order by counter. */
    time_t base = r->start;
    if (!base) base = time(NULL), t = 0;
    time_t sec = (time_t)t;
    return ms_signer_push(r->s, nal, len, ms_time_from_unix(base + sec, (uint32_t)((t - (double)sec) * 1e9)));
}
static ct_err hook_take(void *arg, bool wait, ct_buf *out, bool *ready)
{
    return ms_signer_take(((agent_rec_signer *)arg)->s, wait, out, ready);
}
static ct_err hook_finish(void *arg) { return ms_signer_finish(((agent_rec_signer *)arg)->s); }
static ct_err hook_segment(void *arg)
{
    agent_rec_signer *r = arg;
    return r->s ? ms_signer_certificate(r->s) : CT_OK;
}

ct_err agent_rec_signer_open(agent *a, time_t start, bool live, agent_rec_signer *rs)
{
    memset(rs, 0, sizeof *rs);
    rs->start = live ? 0 : start ? start : time(NULL);
    rs->hooks = (cenc_sign_hooks){hook_nal, hook_take, hook_finish, rs, live ? hook_segment : NULL};
    return agent_media_signer_config(a, &rs->c, &rs->pem, &rs->k, &rs->cfg);
}

void agent_rec_signer_close(agent_rec_signer *rs)
{
    ms_signer_close(rs->s);
    hsm_key_free(rs->k);
    agent_creds_free(&rs->c);
    ct_buf_free(&rs->pem);
    memset(rs, 0, sizeof *rs);
}

ct_err agent_viewers_load(const char *dir, const char *viewers, cenc_recipient *r, size_t max, size_t *n)
{
    ct_err rc = CT_OK;
    ct_buf root = CT_BUF_INIT;
    char path[AGENT_PATH_MAX];
    CT_GUARD(ct_path_join(path, sizeof path, dir, AGENT_OPS_ROOT_FILE));
    CT_ENSURE_MSG(ct_file_exists(path), CT_ERR_CONFIG,
                  "%s has no pinned operations root (%s): make it with simulate --ops-root", dir, AGENT_OPS_ROOT_FILE);
    CT_GUARD(agent_root_load(path, &root));
    CT_GUARD(ct_path_join(path, sizeof path, dir, AGENT_CRL_SEEN_FILE));
    CT_GUARD(cenc_recipients_load(viewers, root.data, root.len, time(NULL), path, r, max, n));
cleanup:
    ct_buf_free(&root);
    return rc;
}

ct_err agent_record(const char *dir, const char *viewers, const char *in, const char *out,
                    const agent_record_opts *o, cenc_stats *st)
{
    ct_err rc = CT_OK;
    cenc_recipient r[CENC_MAX_RECIPIENTS];
    size_t n = 0;
    agent *a = NULL;
    agent_rec_signer rs;
    memset(&rs, 0, sizeof rs);
    CT_GUARD(agent_viewers_load(dir, viewers, r, CENC_MAX_RECIPIENTS, &n));
    if (o->sign) {
        CT_GUARD(agent_open(dir, &a));
        CT_GUARD(agent_rec_signer_open(a, o->start, false, &rs));
    }
    cenc_options co = {.scheme = o->scheme, .segment_ms = o->segment_ms, .recipients = r, .n_recipients = n,
                       .sign = o->sign ? &rs.hooks : NULL};
    if (o->cmaf) CT_GUARD(cenc_record_segments(in, out, &co, o->fps, st));
    else CT_GUARD(cenc_record_file(in, out, &co, o->fps, st));
cleanup:
    agent_rec_signer_close(&rs);
    agent_close(a);
    return rc;
}
