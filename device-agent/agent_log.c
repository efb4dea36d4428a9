/* The camera's own proof that its identity was logged (issue 11): the station hands it, with its chains, the
 * inclusion proof of each leaf and the checkpoint they lead to; a camera that pins the CA's checkpoint key checks
 * them offline at install and at every boot. An identity the CA never logged does not boot. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "../common/core/merkle.h"
#include "../common/note/note.h"
#include "agent_priv.h"

ct_err agent_pin_log_vkey(const char *dir, const char *vkey_path)
{
    ct_note_verifier v;
    char path[AGENT_PATH_MAX];
    CT_GUARD_RET(ct_note_verifier_load(vkey_path, &v));
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, AGENT_LOG_VKEY_FILE));
    return ct_note_verifier_write(&v, path);
}

ct_err agent_log_verify(const agent *a, const agent_creds *c)
{
    ct_note_verifier v;
    ct_checkpoint cp;
    ct_merkle_hash path[CT_MERKLE_MAX_PATH];
    uint8_t leaf_hash[CT_MERKLE_HASH_LEN];
    char vkey[AGENT_PATH_MAX], why[AGENT_REASON_MAX];
    CT_GUARD_RET(agent_path(a, AGENT_LOG_VKEY_FILE, vkey, sizeof vkey));
    if (!ct_file_exists(vkey)) return CT_OK; /* a camera made before: it boots as before */
    CT_GUARD_RET(ct_note_verifier_load(vkey, &v));
    CT_ENSURE_RET(c->checkpoint.len > 0,
                  ct_fail(CT_ERR_INTEGRITY, "no log checkpoint: this camera pins the CA's log key, its identity must "
                                            "be proven logged"));
    if (ct_checkpoint_open(c->checkpoint.data, c->checkpoint.len, &v, &cp) != CT_OK) {
        if (ct_strlcpy(why, sizeof why, ct_err_detail()) != CT_OK) why[0] = '\0';
        return ct_fail(CT_ERR_INTEGRITY, "the log checkpoint: %s", why);
    }
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++) {
        const ct_buf *pr = &c->proof[p];
        size_t n = pr->len >= 8 ? (pr->len - 8) / CT_MERKLE_HASH_LEN : 0;
        CT_ENSURE_RET(pr->len >= 8 && (pr->len - 8) % CT_MERKLE_HASH_LEN == 0 && n <= CT_MERKLE_MAX_PATH,
                      ct_fail(CT_ERR_INTEGRITY, "profile %s: no well-formed log inclusion proof", agent_profile_name[p]));
        uint64_t index = 0;
        for (int i = 0; i < 8; i++) index = index << 8 | pr->data[i];
        memcpy(path, pr->data + 8, n * CT_MERKLE_HASH_LEN);
        CT_GUARD_RET(ct_merkle_leaf_hash(c->chain[p].der[0].data, c->chain[p].der[0].len, leaf_hash));
        CT_ENSURE_RET(ct_merkle_verify_inclusion(leaf_hash, index, cp.size, path, n, cp.root),
                      ct_fail(CT_ERR_INTEGRITY, "profile %s: the certificate is not proven in the log (leaf %llu of "
                                                "the checkpoint of size %llu)",
                              agent_profile_name[p], (unsigned long long)index, (unsigned long long)cp.size));
    }
    return CT_OK;
}
