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
typedef struct {
    ms_signer_config cfg;
    ms_signer *s;
    time_t start;
} rec_signer;

static ct_err hook_nal(void *arg, media_codec c, const uint8_t *nal, size_t len, double t)
{
    rec_signer *r = arg;
    r->cfg.codec = c;
    if (!r->s) CT_GUARD_RET(ms_signer_open(&r->cfg, &r->s));
    time_t sec = (time_t)t;
    return ms_signer_push(r->s, nal, len, ms_time_from_unix(r->start + sec, (uint32_t)((t - (double)sec) * 1e9)));
}
static ct_err hook_take(void *arg, bool wait, ct_buf *out, bool *ready)
{
    return ms_signer_take(((rec_signer *)arg)->s, wait, out, ready);
}
static ct_err hook_finish(void *arg) { return ms_signer_finish(((rec_signer *)arg)->s); }

ct_err agent_record(const char *dir, const char *viewers, const char *in, const char *out,
                    const agent_record_opts *o, cenc_stats *st)
{
    ct_err rc = CT_OK;
    ct_buf root = CT_BUF_INIT, pem = CT_BUF_INIT;
    cenc_recipient r[CENC_MAX_RECIPIENTS];
    size_t n = 0;
    char path[AGENT_PATH_MAX];
    agent *a = NULL;
    agent_creds c;
    hsm_key *k = NULL;
    rec_signer rs = {.start = o->start ? o->start : time(NULL)};
    cenc_sign_hooks hooks = {hook_nal, hook_take, hook_finish, &rs};
    memset(&c, 0, sizeof c);
    CT_GUARD(ct_path_join(path, sizeof path, dir, AGENT_OPS_ROOT_FILE));
    CT_ENSURE_MSG(ct_file_exists(path), CT_ERR_CONFIG,
                  "%s has no pinned operations root (%s): make it with simulate --ops-root", dir, AGENT_OPS_ROOT_FILE);
    CT_GUARD(agent_root_load(path, &root));
    CT_GUARD(cenc_recipients_load(viewers, root.data, root.len, time(NULL), r, CENC_MAX_RECIPIENTS, &n));
    if (o->sign) {
        CT_GUARD(agent_open(dir, &a));
        CT_GUARD(agent_media_signer_config(a, &c, &pem, &k, &rs.cfg));
    }
    cenc_options co = {.scheme = o->scheme, .segment_ms = o->segment_ms, .recipients = r, .n_recipients = n,
                       .sign = o->sign ? &hooks : NULL};
    if (o->cmaf) CT_GUARD(cenc_record_segments(in, out, &co, o->fps, st));
    else CT_GUARD(cenc_record_file(in, out, &co, o->fps, st));
cleanup:
    ms_signer_close(rs.s);
    hsm_key_free(k);
    agent_creds_free(&c);
    agent_close(a);
    ct_buf_free(&pem);
    ct_buf_free(&root);
    return rc;
}
