/* The CA's issuance log as its witnesses (stations, camtrust-ca witness) check it: a checkpoint kept outside the
 * CA host is what shows a truncated, rolled-back or forked database, which the CA's own records cannot. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "http.h"

#define PROOF_JSON_MAX (CT_MERKLE_MAX_PATH * 64 + 256)

ct_err ct_http_json_hashes(ct_buf *body, const char *name, ct_merkle_hash out[CT_MERKLE_MAX_PATH], size_t *n)
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

/* Whether the CA proves tree (m, first) a prefix of tree (n, second), m <= n, with the RFC 9162 proof `route`
 * serves (the issuance log's or the audit tree's: the same PROOF, the same check). */
static ct_err consistent_at(ct_http_client *c, const char *route, uint64_t m, const uint8_t first[CT_MERKLE_HASH_LEN],
                            uint64_t n, const uint8_t second[CT_MERKLE_HASH_LEN], bool *holds, ct_http_proof *proof)
{
    ct_err rc = CT_OK;
    ct_buf body = CT_BUF_INIT;
    char q[128];
    memset(proof, 0, sizeof *proof);
    *holds = m == 0 || (m == n && memcmp(first, second, CT_MERKLE_HASH_LEN) == 0);
    if (*holds || m == n) return CT_OK; /* every tree extends the empty one; same size, same root */
    CT_GUARD(ct_snprintf(q, sizeof q, "%s?first=%llu&second=%llu", route, (unsigned long long)m, (unsigned long long)n));
    rc = ct_http_get(c, q, "the consistency proof", PROOF_JSON_MAX, &body);
    if (rc == CT_OK) rc = ct_http_json_hashes(&body, "consistency_path", proof->path, &proof->n);
    /* Unreachable or busy (a 503 under load, a node whose database is away): no answer about the trees, so no
     * verdict either (a witness would stop and report a fork). A refusal (4xx) or a malformed proof holds nothing. */
    if (rc == CT_ERR_IO || rc == CT_ERR_UNAVAILABLE) goto cleanup;
    proof->given = rc == CT_OK;
    *holds = rc == CT_OK && ct_merkle_verify_consistency(m, first, n, second, proof->path, proof->n);
    rc = CT_OK;
cleanup:
    ct_buf_free(&body);
    return rc;
}

ct_err ct_http_log_consistent(ct_http_client *c, const ct_checkpoint *a, const ct_checkpoint *b, bool *holds,
                              ct_http_proof *proof)
{
    ct_http_proof none;
    return consistent_at(c, "/log/proof/consistency", a->size, a->root, b->size, b->root, holds, proof ? proof : &none);
}

static ct_err audit_consistent(ct_http_client *c, const ct_checkpoint *a, const ct_checkpoint *b, bool *holds,
                               ct_http_proof *proof)
{
    memset(proof, 0, sizeof *proof);
    *holds = !a->has_audit_root; /* signed before the audit tree: nothing to check a longer chain against */
    if (*holds) return CT_OK;
    if (!b->has_audit_root || b->audit_entries < a->audit_entries) return CT_OK;
    return consistent_at(c, "/log/audit/proof/consistency", a->audit_entries, a->audit_root, b->audit_entries,
                         b->audit_root, holds, proof);
}

ct_err ct_http_log_audit_consistent(ct_http_client *c, const ct_checkpoint *a, const ct_checkpoint *b, bool *holds)
{
    ct_http_proof proof;
    return audit_consistent(c, a, b, holds, &proof);
}

/* An audit chain refused: the evidence is its side's (the proof, if one, set by the caller), not the tree's. */
static ct_err audit_refused(ct_http_proof *proof, ct_err why)
{
    if (proof) {
        memset(proof, 0, sizeof *proof);
        proof->audit = true;
    }
    return why;
}

ct_err ct_http_log_extends(ct_http_client *c, const char *kept_name, const ct_checkpoint *kept,
                           const ct_checkpoint *cur, ct_http_proof *proof)
{
    bool holds = false;
    unsigned long long k = kept->size, s = cur->size;
    if (proof) memset(proof, 0, sizeof *proof);
    CT_ENSURE_RET(cur->size >= kept->size,
                  ct_fail(CT_ERR_INTEGRITY, "the CA's log shrank: its checkpoint has size %llu, the kept %s has %llu "
                                            "(truncated or rolled back)", s, kept_name, k));
    /* The CA's own checkpoints always bind its audit chain: one without, signed by whoever holds its token, would
     * leave nothing to compare the next one's chain with. */
    CT_ENSURE_RET(!kept->has_audit || cur->has_audit,
                  audit_refused(proof, ct_fail(CT_ERR_INTEGRITY, "the CA's checkpoint of size %llu binds no audit "
                                                                 "chain, the kept %s does", s, kept_name)));
    CT_ENSURE_RET(!(kept->has_audit && cur->has_audit && cur->audit_entries < kept->audit_entries),
                  audit_refused(proof, ct_fail(CT_ERR_INTEGRITY, "the CA's audit chain shrank: %llu entries, the kept "
                                                                 "%s has %llu (truncated or rolled back)",
                                               (unsigned long long)cur->audit_entries, kept_name,
                                               (unsigned long long)kept->audit_entries)));
    /* Entry N of a hash chain has one hash: two signed for one length are a chain put back and grown again (a
     * revocation undone, another decision in its place). A longer one: below. */
    CT_ENSURE_RET(!(kept->has_audit && cur->has_audit && cur->audit_entries == kept->audit_entries &&
                    memcmp(cur->audit_hash, kept->audit_hash, sizeof cur->audit_hash) != 0),
                  audit_refused(proof, ct_fail(CT_ERR_INTEGRITY, "the CA's audit chain forked: its checkpoint binds "
                                                                 "entry %llu to another hash than the kept %s (rolled "
                                                                 "back and grown again)",
                                               (unsigned long long)cur->audit_entries, kept_name)));
    CT_GUARD_RET(ct_http_log_consistent(c, kept, cur, &holds, proof));
    CT_ENSURE_RET(holds || cur->size != kept->size,
                  ct_fail(CT_ERR_INTEGRITY, "the CA's log forked: its checkpoint of size %llu has another root than the "
                                            "kept %s", s, kept_name));
    CT_ENSURE_RET(holds, ct_fail(CT_ERR_INTEGRITY, "the CA's log forked: its checkpoint of size %llu is not consistent "
                                                   "with the kept %s (size %llu)", s, kept_name, k));
    /* The tree first (its proof is the evidence a witness keeps). Then a longer chain must extend the kept one: the
     * audit tree's consistency proof, from the kept root to the new (a decision removed by a copy put back, and the
     * chain grown past the kept length, breaks it). A checkpoint signed before the audit tree binds no root: the
     * first one that does is kept, and checked from then on. */
    CT_ENSURE_RET(!kept->has_audit_root || cur->has_audit_root,
                  audit_refused(proof, ct_fail(CT_ERR_INTEGRITY, "the CA's checkpoint of size %llu binds no audit "
                                                                 "root, the kept %s does", s, kept_name)));
    ct_http_proof audit_proof;
    CT_GUARD_RET(audit_consistent(c, kept, cur, &holds, &audit_proof));
    if (!holds && proof) { /* the audit tree's proof the CA gave (if one): what a report carries */
        *proof = audit_proof;
        proof->audit = true;
    }
    CT_ENSURE_RET(holds, ct_fail(CT_ERR_INTEGRITY, "the CA's audit chain forked: its %llu entries do not extend the %llu "
                                                   "of the kept %s (the CA proves no path between their roots: rolled "
                                                   "back and grown again)",
                                 (unsigned long long)cur->audit_entries, (unsigned long long)kept->audit_entries,
                                 kept_name));
    return CT_OK;
}
