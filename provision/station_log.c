/* The station as a witness of the CA's issuance log: it keeps the newest checkpoint it verified and refuses a CA
 * whose log no longer extends it. A checkpoint kept outside the CA host is what shows a truncated, rolled-back
 * or forked database, which the CA's own records cannot (README "Checkpoints"). */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "../common/core/merkle.h"
#include "../common/note/note.h"
#include "station_priv.h"

ct_err station_log_vkey(const char *dir, ct_note_verifier *v)
{
    char path[STATION_PATH_MAX];
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, STATION_LOG_VKEY));
    CT_ENSURE_RET(ct_file_exists(path), ct_fail(CT_ERR_NOT_FOUND, "this station pins no log key: it witnesses nothing "
                                                                  "(camtrust-station install --log-vkey adds one)"));
    ct_err rc = ct_note_verifier_load(path, v);
    return rc == CT_OK ? CT_OK : ct_fail_ctx(CT_ERR_CONFIG, "the pinned log key");
}

ct_err station_log_witness(const char *dir, ct_http_client *c, char *summary, size_t summary_max)
{
    ct_err rc = CT_OK;
    ct_note_verifier v;
    ct_buf note = CT_BUF_INIT, kept_note = CT_BUF_INIT;
    ct_checkpoint cur, kept;
    ct_http_proof proof;
    bool have = false;
    char kept_path[STATION_PATH_MAX], log_dir[STATION_PATH_MAX];
    CT_GUARD(station_log_vkey(dir, &v));
    CT_GUARD(ct_path_join(log_dir, sizeof log_dir, dir, "log"));
    CT_GUARD(ct_path_join(kept_path, sizeof kept_path, dir, STATION_LOG_KEPT));
    if (ct_file_exists(kept_path)) {
        CT_GUARD(ct_file_read(kept_path, CT_NOTE_MAX, &kept_note));
        if ((rc = ct_checkpoint_open(kept_note.data, kept_note.len, &v, &kept)) != CT_OK) {
            rc = ct_fail_ctx(CT_ERR_INTEGRITY, "the kept %s", kept_path);
            goto cleanup;
        }
        have = true;
    }
    CT_GUARD(ct_http_get(c, "/log/checkpoint", "the checkpoint", CT_NOTE_MAX, &note));
    if ((rc = ct_checkpoint_open(note.data, note.len, &v, &cur)) != CT_OK) {
        rc = ct_fail_ctx(CT_ERR_INTEGRITY, "the CA's checkpoint");
        goto cleanup;
    }
    if (have) CT_GUARD(ct_http_log_extends(c, kept_path, &kept, &cur, &proof));
    CT_GUARD(ct_mkdir(log_dir, 0755));
    CT_GUARD(ct_file_write_atomic(kept_path, note.data, note.len, 0644));
    if (have)
        CT_GUARD(ct_snprintf(summary, summary_max, "log checkpoint of size %llu consistent with the kept one (size %llu)",
                             (unsigned long long)cur.size, (unsigned long long)kept.size));
    else
        CT_GUARD(ct_snprintf(summary, summary_max, "log checkpoint of size %llu kept (the first)",
                             (unsigned long long)cur.size));
cleanup:
    ct_buf_free(&note);
    ct_buf_free(&kept_note);
    return rc;
}

ct_err station_log_check(const char *dir, const char *ca_url, int timeout_ms, char *summary, size_t summary_max)
{
    ct_err rc = CT_OK;
    station st;
    ct_http_client *c = NULL;
    char trust[STATION_PATH_MAX], chain[STATION_PATH_MAX];
    memset(&st, 0, sizeof st);
    CT_GUARD(station_installed(dir, trust, chain));
    CT_GUARD(station_open(dir, 1, &st));
    ct_http_config ec = station_est_config(&st, ca_url, trust, chain, timeout_ms);
    CT_GUARD(ct_http_client_new(&ec, &c));
    CT_GUARD(station_log_witness(dir, c, summary, summary_max));
cleanup:
    ct_http_client_free(c);
    station_close(&st);
    return rc;
}
