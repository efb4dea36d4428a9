/* RFC 9162 Merkle trees (see merkle.h). Proofs are computed by the RFC's own recursions, over the leaf hashes in
 * memory or over a chunk cache; every recursion halves the range, so the depth is at most 64. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <stdlib.h>
#include <string.h>

#include "merkle.h"

static ct_err hash2(uint8_t prefix, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len, uint8_t out[32])
{
    wc_Sha256 sha;
    if (wc_InitSha256(&sha) != 0) return ct_fail(CT_ERR_CRYPTO, "SHA-256 does not start");
    int ret = wc_Sha256Update(&sha, &prefix, 1);
    if (ret == 0 && a_len) ret = wc_Sha256Update(&sha, a, (word32)a_len);
    if (ret == 0 && b_len) ret = wc_Sha256Update(&sha, b, (word32)b_len);
    if (ret == 0) ret = wc_Sha256Final(&sha, out);
    wc_Sha256Free(&sha);
    return ret == 0 ? CT_OK : ct_fail(CT_ERR_CRYPTO, "SHA-256 failed");
}

ct_err ct_merkle_leaf_hash(const void *leaf, size_t len, uint8_t out[CT_MERKLE_HASH_LEN])
{
    CT_ENSURE_RET(len <= UINT32_MAX && (leaf || !len), ct_fail(CT_ERR_ARG, "Merkle leaf of %zu bytes", len));
    return hash2(0x00, leaf, len, NULL, 0, out);
}

ct_err ct_merkle_node_hash(const uint8_t left[CT_MERKLE_HASH_LEN], const uint8_t right[CT_MERKLE_HASH_LEN],
                           uint8_t out[CT_MERKLE_HASH_LEN])
{
    return hash2(0x01, left, CT_MERKLE_HASH_LEN, right, CT_MERKLE_HASH_LEN, out);
}

/* The largest power of two smaller than n (n > 1). */
static uint64_t split(uint64_t n)
{
    uint64_t k = 1;
    while (k < n - k) k <<= 1;
    return k;
}

ct_err ct_merkle_root(const ct_merkle_hash *leaves, uint64_t n, uint8_t out[CT_MERKLE_HASH_LEN])
{
    if (n == 0) return ct_sha256("", 0, out);
    if (n == 1) {
        memcpy(out, leaves[0], CT_MERKLE_HASH_LEN);
        return CT_OK;
    }
    uint64_t k = split(n);
    uint8_t l[CT_MERKLE_HASH_LEN], r[CT_MERKLE_HASH_LEN];
    CT_GUARD_RET(ct_merkle_root(leaves, k, l));
    CT_GUARD_RET(ct_merkle_root(leaves + k, n - k, r));
    return ct_merkle_node_hash(l, r, out);
}

/* Where the recursions get MTH(D[start:start+n]) from: the leaf hashes in memory, or a log's chunk cache. */
typedef struct {
    ct_err (*subtree)(void *arg, uint64_t start, uint64_t n, uint8_t out[CT_MERKLE_HASH_LEN]);
    void *arg;
} source;

static ct_err array_subtree(void *arg, uint64_t start, uint64_t n, uint8_t out[CT_MERKLE_HASH_LEN])
{
    return ct_merkle_root((const ct_merkle_hash *)arg + start, n, out);
}

/* Appends one more hash to a proof under construction. */
static ct_err proof_add(const source *s, uint64_t start, uint64_t n, ct_merkle_hash *out, size_t *len)
{
    CT_ENSURE_RET(*len < CT_MERKLE_MAX_PATH, ct_fail(CT_ERR_INTERNAL, "Merkle proof longer than %d", CT_MERKLE_MAX_PATH));
    CT_GUARD_RET(s->subtree(s->arg, start, n, out[*len]));
    (*len)++;
    return CT_OK;
}

/* RFC 9162 2.1.3.1: PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) when m < k,
 *                                   PATH(m - k, D[k:n]) : MTH(D[0:k]) otherwise.
 * D is the range of n leaves from `start`. */
static ct_err path_rec(const source *s, uint64_t start, uint64_t n, uint64_t m, ct_merkle_hash *out, size_t *len)
{
    if (n <= 1) return CT_OK;
    uint64_t k = split(n);
    if (m < k) {
        CT_GUARD_RET(path_rec(s, start, k, m, out, len));
        return proof_add(s, start + k, n - k, out, len);
    }
    CT_GUARD_RET(path_rec(s, start + k, n - k, m - k, out, len));
    return proof_add(s, start, k, out, len);
}

static ct_err inclusion_path(const source *s, uint64_t n, uint64_t m, ct_merkle_hash path[CT_MERKLE_MAX_PATH],
                             size_t *path_len)
{
    CT_ENSURE_RET(m < n, ct_fail(CT_ERR_ARG, "leaf %llu is not in a tree of %llu leaves", (unsigned long long)m,
                                 (unsigned long long)n));
    *path_len = 0;
    return path_rec(s, 0, n, m, path, path_len);
}

ct_err ct_merkle_inclusion_path(const ct_merkle_hash *leaves, uint64_t n, uint64_t m,
                                ct_merkle_hash path[CT_MERKLE_MAX_PATH], size_t *path_len)
{
    source s = {array_subtree, (void *)leaves};
    return inclusion_path(&s, n, m, path, path_len);
}

/* RFC 9162 2.1.4.1: SUBPROOF(m, D[n], b), D the range of n leaves from `start`. */
static ct_err subproof(const source *s, uint64_t start, uint64_t m, uint64_t n, bool b, ct_merkle_hash *out,
                       size_t *len)
{
    if (m == n) return b ? CT_OK : proof_add(s, start, n, out, len);
    uint64_t k = split(n);
    if (m <= k) {
        CT_GUARD_RET(subproof(s, start, m, k, b, out, len));
        return proof_add(s, start + k, n - k, out, len);
    }
    CT_GUARD_RET(subproof(s, start + k, m - k, n - k, false, out, len));
    return proof_add(s, start, k, out, len);
}

static ct_err consistency_proof(const source *s, uint64_t m, uint64_t n, ct_merkle_hash proof[CT_MERKLE_MAX_PATH],
                                size_t *proof_len)
{
    CT_ENSURE_RET(m > 0 && m <= n, ct_fail(CT_ERR_ARG, "no consistency proof from %llu to %llu leaves",
                                           (unsigned long long)m, (unsigned long long)n));
    *proof_len = 0;
    return subproof(s, 0, m, n, true, proof, proof_len);
}

ct_err ct_merkle_consistency_proof(const ct_merkle_hash *leaves, uint64_t m, uint64_t n,
                                   ct_merkle_hash proof[CT_MERKLE_MAX_PATH], size_t *proof_len)
{
    source s = {array_subtree, (void *)leaves};
    return consistency_proof(&s, m, n, proof, proof_len);
}

/* ---- the chunk cache ---- */

ct_err ct_merkle_cache_init(ct_merkle_cache *c, uint64_t chunk, ct_merkle_fetch_fn fetch, void *arg)
{
    memset(c, 0, sizeof *c);
    CT_ENSURE_RET(chunk >= 2 && (chunk & (chunk - 1)) == 0 && chunk <= (1u << 20),
                  ct_fail(CT_ERR_ARG, "Merkle cache chunk of %llu leaves: a power of two up to 2^20", (unsigned long long)chunk));
    c->chunk = chunk;
    c->fetch = fetch;
    c->arg = arg;
    c->leaves = malloc(chunk * sizeof *c->leaves);
    return c->leaves ? CT_OK : CT_ERR_NOMEM;
}

void ct_merkle_cache_free(ct_merkle_cache *c)
{
    free(c->roots);
    free(c->leaves);
    memset(c, 0, sizeof *c);
}

/* Leaf hashes [start, start + n) within one chunk, into c->leaves. */
static ct_err cache_fetch(ct_merkle_cache *c, uint64_t start, uint64_t n)
{
    uint64_t got = n;
    CT_GUARD_RET(c->fetch(c->arg, start, n, c->leaves, &got));
    CT_ENSURE_RET(got == n, ct_fail(CT_ERR_USAGE, "the tree is larger than the log (it ends before leaf %llu)",
                                    (unsigned long long)(start + n)));
    return CT_OK;
}

/* The roots of every complete chunk of the first n leaves: computed once each, kept. */
static ct_err cache_grow(ct_merkle_cache *c, uint64_t n)
{
    uint64_t want = n / c->chunk;
    for (; c->n_roots < want; c->n_roots++) {
        /* Room grows with the roots actually computed: a size past the log fails at its first missing chunk
         * instead of reserving memory for it first. */
        if (c->n_roots == c->cap) {
            uint64_t cap = c->cap ? c->cap * 2 : 64;
            CT_ENSURE_RET(cap <= SIZE_MAX / sizeof *c->roots, CT_ERR_NOMEM);
            ct_merkle_hash *r = realloc(c->roots, cap * sizeof *r);
            CT_ENSURE_RET(r, CT_ERR_NOMEM);
            c->roots = r;
            c->cap = cap;
        }
        CT_GUARD_RET(cache_fetch(c, c->n_roots * c->chunk, c->chunk));
        CT_GUARD_RET(ct_merkle_root(c->leaves, c->chunk, c->roots[c->n_roots]));
    }
    return CT_OK;
}

/* MTH of an aligned range: complete chunks from their kept roots (the RFC's splits of a multiple of a power-of-two
 * chunk land on chunk boundaries), a range inside one chunk from its leaves, anything else split as the RFC does. */
static ct_err cache_subtree(void *arg, uint64_t start, uint64_t n, uint8_t out[CT_MERKLE_HASH_LEN])
{
    ct_merkle_cache *c = arg;
    if (n > 0 && start % c->chunk == 0 && n % c->chunk == 0)
        return ct_merkle_root(c->roots + start / c->chunk, n / c->chunk, out);
    if (n <= 1 || start / c->chunk == (start + n - 1) / c->chunk) {
        CT_GUARD_RET(cache_fetch(c, start, n));
        return ct_merkle_root(c->leaves, n, out);
    }
    uint64_t k = split(n);
    uint8_t l[CT_MERKLE_HASH_LEN], r[CT_MERKLE_HASH_LEN];
    CT_GUARD_RET(cache_subtree(c, start, k, l));
    CT_GUARD_RET(cache_subtree(c, start + k, n - k, r));
    return ct_merkle_node_hash(l, r, out);
}

ct_err ct_merkle_cache_chunk_roots(ct_merkle_cache *c, uint64_t n, const ct_merkle_hash **roots)
{
    CT_GUARD_RET(cache_grow(c, n));
    *roots = c->roots;
    return CT_OK;
}

ct_err ct_merkle_cache_root(ct_merkle_cache *c, uint64_t n, uint8_t out[CT_MERKLE_HASH_LEN])
{
    if (n == 0) return ct_sha256("", 0, out);
    CT_GUARD_RET(cache_grow(c, n));
    return cache_subtree(c, 0, n, out);
}

ct_err ct_merkle_cache_inclusion_path(ct_merkle_cache *c, uint64_t n, uint64_t m,
                                      ct_merkle_hash path[CT_MERKLE_MAX_PATH], size_t *path_len)
{
    source s = {cache_subtree, c};
    CT_GUARD_RET(cache_grow(c, n));
    return inclusion_path(&s, n, m, path, path_len);
}

ct_err ct_merkle_cache_consistency_proof(ct_merkle_cache *c, uint64_t m, uint64_t n,
                                         ct_merkle_hash proof[CT_MERKLE_MAX_PATH], size_t *proof_len)
{
    source s = {cache_subtree, c};
    CT_GUARD_RET(cache_grow(c, n));
    return consistency_proof(&s, m, n, proof, proof_len);
}

/* HASH(0x01 || a || b) into out (which may be a or b); false when hashing fails. */
static bool node(const uint8_t *a, const uint8_t *b, uint8_t *out)
{
    uint8_t h[CT_MERKLE_HASH_LEN];
    if (ct_merkle_node_hash(a, b, h) != CT_OK) return false;
    memcpy(out, h, sizeof h);
    return true;
}

bool ct_merkle_verify_inclusion(const uint8_t leaf_hash[CT_MERKLE_HASH_LEN], uint64_t index, uint64_t size,
                                const ct_merkle_hash *path, size_t path_len, const uint8_t root[CT_MERKLE_HASH_LEN])
{
    if (index >= size || path_len > CT_MERKLE_MAX_PATH) return false;
    uint64_t fn = index, sn = size - 1;
    uint8_t r[CT_MERKLE_HASH_LEN];
    memcpy(r, leaf_hash, sizeof r);
    for (size_t i = 0; i < path_len; i++) {
        if (sn == 0) return false;
        if ((fn & 1) || fn == sn) {
            if (!node(path[i], r, r)) return false;
            while (!(fn & 1) && fn != 0) fn >>= 1, sn >>= 1;
        } else if (!node(r, path[i], r)) {
            return false;
        }
        fn >>= 1, sn >>= 1;
    }
    return sn == 0 && memcmp(r, root, sizeof r) == 0;
}

bool ct_merkle_verify_consistency(uint64_t first, const uint8_t first_root[CT_MERKLE_HASH_LEN], uint64_t second,
                                  const uint8_t second_root[CT_MERKLE_HASH_LEN], const ct_merkle_hash *proof,
                                  size_t proof_len)
{
    if (first == 0 || first > second || proof_len > CT_MERKLE_MAX_PATH) return false;
    if (first == second) return proof_len == 0 && memcmp(first_root, second_root, CT_MERKLE_HASH_LEN) == 0;
    if (proof_len == 0) return false;
    /* 2: when first is a power of two, its root is the first node of the path. */
    const uint8_t *c0 = proof[0];
    size_t i = 1;
    if ((first & (first - 1)) == 0) c0 = first_root, i = 0;
    uint64_t fn = first - 1, sn = second - 1;
    while (fn & 1) fn >>= 1, sn >>= 1;
    uint8_t fr[CT_MERKLE_HASH_LEN], sr[CT_MERKLE_HASH_LEN];
    memcpy(fr, c0, sizeof fr);
    memcpy(sr, c0, sizeof sr);
    for (; i < proof_len; i++) {
        if (sn == 0) return false;
        if ((fn & 1) || fn == sn) {
            if (!node(proof[i], fr, fr) || !node(proof[i], sr, sr)) return false;
            while (!(fn & 1) && fn != 0) fn >>= 1, sn >>= 1;
        } else if (!node(sr, proof[i], sr)) {
            return false;
        }
        fn >>= 1, sn >>= 1;
    }
    return sn == 0 && memcmp(fr, first_root, sizeof fr) == 0 && memcmp(sr, second_root, sizeof sr) == 0;
}

void ct_merkle_frontier_init(ct_merkle_frontier *f) { memset(f, 0, sizeof *f); }

ct_err ct_merkle_frontier_push(ct_merkle_frontier *f, const uint8_t leaf_hash[CT_MERKLE_HASH_LEN])
{
    uint8_t h[CT_MERKLE_HASH_LEN];
    uint8_t height = 0;
    memcpy(h, leaf_hash, sizeof h);
    /* Two perfect subtrees of the same height merge into one of the next height. */
    while (f->n > 0 && f->height[f->n - 1] == height) {
        CT_GUARD_RET(ct_merkle_node_hash(f->hash[f->n - 1], h, h));
        f->n--;
        height++;
    }
    CT_ENSURE_RET(f->n < CT_MERKLE_MAX_PATH, ct_fail(CT_ERR_INTERNAL, "Merkle tree too large"));
    memcpy(f->hash[f->n], h, sizeof h);
    f->height[f->n++] = height;
    f->size++;
    return CT_OK;
}

ct_err ct_merkle_frontier_root(const ct_merkle_frontier *f, uint8_t out[CT_MERKLE_HASH_LEN])
{
    if (f->n == 0) return ct_sha256("", 0, out);
    uint8_t r[CT_MERKLE_HASH_LEN];
    memcpy(r, f->hash[f->n - 1], sizeof r);
    for (size_t i = f->n - 1; i > 0; i--) CT_GUARD_RET(ct_merkle_node_hash(f->hash[i - 1], r, r));
    memcpy(out, r, sizeof r);
    return CT_OK;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

void ct_tree_head_tbs(const ct_tree_head *h, uint8_t out[CT_TREE_HEAD_TBS_LEN])
{
    put_be64(out, h->timestamp_ms);
    put_be64(out + 8, h->tree_size);
    out[16] = CT_MERKLE_HASH_LEN;
    memcpy(out + 17, h->root, CT_MERKLE_HASH_LEN);
    out[49] = 0;
    out[50] = 0;
}
