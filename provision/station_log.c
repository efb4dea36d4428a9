/* The station as a witness of the CA's issuance log: it keeps the newest checkpoint it verified and refuses a CA
 * whose log no longer extends it. A checkpoint kept outside the CA host is what shows a truncated, rolled-back
 * or forked database, which the CA's own records cannot (README "Checkpoints"). */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "../common/core/merkle.h"
#include "../common/note/note.h"
#include "station_priv.h"

#define PROOF_JSON_MAX (CT_MERKLE_MAX_PATH * 64 + 256)

ct_err station_log_vkey(const char *dir, ct_note_verifier *v)
{
    char path[STATION_PATH_MAX];
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, STATION_LOG_VKEY));
    CT_ENSURE_RET(ct_file_exists(path), ct_fail(CT_ERR_NOT_FOUND, "this station pins no log key: it witnesses nothing "
                                                                  "(camtrust-station install --log-vkey adds one)"));
    ct_err rc = ct_note_verifier_load(path, v);
    return rc == CT_OK ? CT_OK : station_fail_ctx(CT_ERR_CONFIG, "the pinned log key");
}

ct_err station_json_hashes(ct_buf *body, const char *name, ct_merkle_hash out[CT_MERKLE_MAX_PATH], size_t *n)
{
    char key[64];
    CT_GUARD_RET(ct_snprintf(key, sizeof key, "\"%s\":[", name));
    body->data[body->len] = '\0';
    const char *p = strstr((const char *)body->data, key);
    CT_ENSURE_RET(p, ct_fail(CT_ERR_BAD_REQUEST, "the CA's answer has no %s", name));
    p += strlen(key);
    *n = 0;
    if (*p == ']') return CT_OK;
    for (;;) {
        CT_ENSURE_RET(*p == '"' && *n < CT_MERKLE_MAX_PATH,
                      ct_fail(CT_ERR_BAD_REQUEST, "the CA's %s is malformed at hash %zu", name, *n + 1));
        const char *end = strchr(p + 1, '"');
        CT_ENSURE_RET(end, ct_fail(CT_ERR_BAD_REQUEST, "the CA's %s is cut short", name));
        uint8_t tmp[48];
        ct_buf h = {tmp, 0, sizeof tmp};
        CT_ENSURE_RET(ct_base64_decode((const uint8_t *)p + 1, (size_t)(end - p - 1), &h) == CT_OK &&
                          h.len == CT_MERKLE_HASH_LEN,
                      ct_fail(CT_ERR_BAD_REQUEST, "the CA's %s: hash %zu is not 32 bytes of base64", name, *n + 1));
        memcpy(out[(*n)++], tmp, CT_MERKLE_HASH_LEN);
        p = end + 1;
        if (*p == ']') return CT_OK;
        CT_ENSURE_RET(*p == ',', ct_fail(CT_ERR_BAD_REQUEST, "the CA's %s is malformed after hash %zu", name, *n));
        p++;
    }
}

/* The CA's log must extend the kept checkpoint: CT_ERR_INTEGRITY naming it when it does not. */
static ct_err check_extends(est_client *c, const char *kept_path, const ct_checkpoint *kept, const ct_checkpoint *cur)
{
    ct_err rc = CT_OK;
    ct_buf body = CT_BUF_INIT;
    ct_merkle_hash proof[CT_MERKLE_MAX_PATH];
    size_t n = 0;
    char q[96];
    unsigned long long k = kept->size, s = cur->size;
    CT_ENSURE_MSG(cur->size >= kept->size, CT_ERR_INTEGRITY,
                  "the CA's log shrank: its checkpoint has size %llu, the kept %s has %llu (truncated or rolled back)", s,
                  kept_path, k);
    CT_ENSURE_MSG(!(kept->has_audit && cur->has_audit && cur->audit_entries < kept->audit_entries), CT_ERR_INTEGRITY,
                  "the CA's audit chain shrank: %llu entries, the kept %s has %llu (truncated or rolled back)",
                  (unsigned long long)cur->audit_entries, kept_path, (unsigned long long)kept->audit_entries);
    if (cur->size == kept->size) {
        CT_ENSURE_MSG(memcmp(cur->root, kept->root, sizeof cur->root) == 0, CT_ERR_INTEGRITY,
                      "the CA's log forked: its checkpoint of size %llu has another root than the kept %s", s, kept_path);
        goto cleanup;
    }
    if (kept->size == 0) goto cleanup; /* every tree extends the empty one */
    CT_GUARD(ct_snprintf(q, sizeof q, "/log/proof/consistency?first=%llu&second=%llu", k, s));
    CT_GUARD(est_get(c, q, "the consistency proof", PROOF_JSON_MAX, &body));
    if ((rc = station_json_hashes(&body, "consistency_path", proof, &n)) != CT_OK) {
        rc = station_fail_ctx(CT_ERR_INTEGRITY, "the CA's log is not shown to extend the kept %s", kept_path);
        goto cleanup;
    }
    CT_ENSURE_MSG(ct_merkle_verify_consistency(kept->size, kept->root, cur->size, cur->root, proof, n), CT_ERR_INTEGRITY,
                  "the CA's log forked: its checkpoint of size %llu is not consistent with the kept %s (size %llu)", s,
                  kept_path, k);
cleanup:
    ct_buf_free(&body);
    return rc;
}

ct_err station_log_witness(const char *dir, est_client *c, char *summary, size_t summary_max)
{
    ct_err rc = CT_OK;
    ct_note_verifier v;
    ct_buf note = CT_BUF_INIT, kept_note = CT_BUF_INIT;
    ct_checkpoint cur, kept;
    bool have = false;
    char kept_path[STATION_PATH_MAX], log_dir[STATION_PATH_MAX];
    CT_GUARD(station_log_vkey(dir, &v));
    CT_GUARD(ct_path_join(log_dir, sizeof log_dir, dir, "log"));
    CT_GUARD(ct_path_join(kept_path, sizeof kept_path, dir, STATION_LOG_KEPT));
    if (ct_file_exists(kept_path)) {
        CT_GUARD(ct_file_read(kept_path, CT_NOTE_MAX, &kept_note));
        if ((rc = ct_checkpoint_open(kept_note.data, kept_note.len, &v, &kept)) != CT_OK) {
            rc = station_fail_ctx(CT_ERR_INTEGRITY, "the kept %s", kept_path);
            goto cleanup;
        }
        have = true;
    }
    CT_GUARD(est_get(c, "/log/checkpoint", "the checkpoint", CT_NOTE_MAX, &note));
    if ((rc = ct_checkpoint_open(note.data, note.len, &v, &cur)) != CT_OK) {
        rc = station_fail_ctx(CT_ERR_INTEGRITY, "the CA's checkpoint");
        goto cleanup;
    }
    if (have) CT_GUARD(check_extends(c, kept_path, &kept, &cur));
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
    est_client *c = NULL;
    char trust[STATION_PATH_MAX], chain[STATION_PATH_MAX];
    memset(&st, 0, sizeof st);
    CT_GUARD(station_installed(dir, trust, chain));
    CT_GUARD(station_open(dir, 1, &st));
    est_config ec = station_est_config(&st, ca_url, trust, chain, timeout_ms);
    CT_GUARD(est_client_new(&ec, &c));
    CT_GUARD(station_log_witness(dir, c, summary, summary_max));
cleanup:
    est_client_free(c);
    station_close(&st);
    return rc;
}
