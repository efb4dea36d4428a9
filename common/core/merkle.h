/* Merkle trees as RFC 9162 (Certificate Transparency 2.0) section 2.1 defines them, with SHA-256:
 *   MTH({})       = SHA-256()
 *   leaf hash     = SHA-256(0x00 || leaf)
 *   MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two smaller than n
 * Inclusion proofs (PATH, 2.1.3) and consistency proofs (PROOF, 2.1.4) are made from the leaf hashes and checked
 * with the RFC's verification algorithms (2.1.3.2, 2.1.4.2). Shared by the CA (making proofs), the database
 * (leaf hashes, roots) and whoever checks a proof offline (a camera). */
#ifndef CAMTRUST_MERKLE_H
#define CAMTRUST_MERKLE_H

#include "core.h"

#define CT_MERKLE_HASH_LEN 32
/* A tree of at most 2^63 leaves has proofs of at most 64 hashes. */
#define CT_MERKLE_MAX_PATH 64

typedef uint8_t ct_merkle_hash[CT_MERKLE_HASH_LEN];

CT_MUST_CHECK ct_err ct_merkle_leaf_hash(const void *leaf, size_t len, uint8_t out[CT_MERKLE_HASH_LEN]);
CT_MUST_CHECK ct_err ct_merkle_node_hash(const uint8_t left[CT_MERKLE_HASH_LEN], const uint8_t right[CT_MERKLE_HASH_LEN],
                                         uint8_t out[CT_MERKLE_HASH_LEN]);

/* MTH of the first n leaf hashes: O(n) hashing. */
CT_MUST_CHECK ct_err ct_merkle_root(const ct_merkle_hash *leaves, uint64_t n, uint8_t out[CT_MERKLE_HASH_LEN]);
/* PATH(m, D[n]): the audit path of leaf m in the tree of the first n leaves (deepest first). O(n); a log
 * uses ct_merkle_cache below. */
CT_MUST_CHECK ct_err ct_merkle_inclusion_path(const ct_merkle_hash *leaves, uint64_t n, uint64_t m,
                                              ct_merkle_hash path[CT_MERKLE_MAX_PATH], size_t *path_len);
/* PROOF(m, D[n]) for 0 < m <= n (empty when m == n). O(n). */
CT_MUST_CHECK ct_err ct_merkle_consistency_proof(const ct_merkle_hash *leaves, uint64_t m, uint64_t n,
                                                 ct_merkle_hash proof[CT_MERKLE_MAX_PATH], size_t *proof_len);

/* Proofs of a large log without reading it whole: the roots of its complete chunks of `chunk` leaves (a power
 * of two) are computed once and kept, and a proof reads only the leaves of the chunks it ends in (the one holding
 * the leaf, the partial last one): O(chunk + n / chunk) instead of O(n) per proof, n / chunk hashes of memory.
 * The log only grows: leaf hashes, once fetched, never change. Not thread-safe: one user at a time. */
typedef CT_MUST_CHECK ct_err (*ct_merkle_fetch_fn)(void *arg, uint64_t from, uint64_t n, ct_merkle_hash *out,
                                                    uint64_t *got); /* leaf hashes [from, from + n); *got: how many */
typedef struct {
    uint64_t chunk;
    ct_merkle_hash *roots; /* of the complete chunks, in order */
    uint64_t n_roots, cap;
    ct_merkle_hash *leaves; /* scratch: one chunk's leaf hashes */
    ct_merkle_fetch_fn fetch;
    void *arg;
} ct_merkle_cache;
CT_MUST_CHECK ct_err ct_merkle_cache_init(ct_merkle_cache *c, uint64_t chunk, ct_merkle_fetch_fn fetch, void *arg);
void ct_merkle_cache_free(ct_merkle_cache *c);
/* The same answers as ct_merkle_root, ct_merkle_inclusion_path and ct_merkle_consistency_proof for the first n
 * leaves of the log. */
CT_MUST_CHECK ct_err ct_merkle_cache_root(ct_merkle_cache *c, uint64_t n, uint8_t out[CT_MERKLE_HASH_LEN]);
CT_MUST_CHECK ct_err ct_merkle_cache_inclusion_path(ct_merkle_cache *c, uint64_t n, uint64_t m,
                                                    ct_merkle_hash path[CT_MERKLE_MAX_PATH], size_t *path_len);
CT_MUST_CHECK ct_err ct_merkle_cache_consistency_proof(ct_merkle_cache *c, uint64_t m, uint64_t n,
                                                       ct_merkle_hash proof[CT_MERKLE_MAX_PATH], size_t *proof_len);

/* RFC 9162 2.1.3.2: true when `path` proves leaf `index` (its leaf hash) in the tree of `size` leaves with `root`. */
bool ct_merkle_verify_inclusion(const uint8_t leaf_hash[CT_MERKLE_HASH_LEN], uint64_t index, uint64_t size,
                                const ct_merkle_hash *path, size_t path_len, const uint8_t root[CT_MERKLE_HASH_LEN]);
/* RFC 9162 2.1.4.2: true when `proof` shows the tree (first, first_root) is a prefix of (second, second_root).
 * first == second holds with an empty proof and equal roots; first == 0 is refused (nothing to prove). */
bool ct_merkle_verify_consistency(uint64_t first, const uint8_t first_root[CT_MERKLE_HASH_LEN], uint64_t second,
                                  const uint8_t second_root[CT_MERKLE_HASH_LEN], const ct_merkle_hash *proof,
                                  size_t proof_len);

/* The right edge of a growing tree (its perfect subtrees, largest first): appending is O(1) amortised and the
 * root O(log n), so a tree head for every batch costs nothing like recomputing the tree. */
typedef struct {
    uint64_t size;
    size_t n;                              /* perfect subtrees held */
    ct_merkle_hash hash[CT_MERKLE_MAX_PATH];
    uint8_t height[CT_MERKLE_MAX_PATH];
} ct_merkle_frontier;

void ct_merkle_frontier_init(ct_merkle_frontier *f);
CT_MUST_CHECK ct_err ct_merkle_frontier_push(ct_merkle_frontier *f, const uint8_t leaf_hash[CT_MERKLE_HASH_LEN]);
CT_MUST_CHECK ct_err ct_merkle_frontier_root(const ct_merkle_frontier *f, uint8_t out[CT_MERKLE_HASH_LEN]);

/* The roots of the log's complete chunks among its first n leaves (n / chunk of them, computed once each and
 * kept): *roots stays valid until the next call on the cache. The hashes of a C2SP tile above level 0 are these
 * roots with a chunk of 256. */
CT_MUST_CHECK ct_err ct_merkle_cache_chunk_roots(ct_merkle_cache *c, uint64_t n, const ct_merkle_hash **roots);

/* ---- C2SP tlog-tiles (tile.c) ----
 * The tree as tiles of 256 consecutive hashes: the tile at level L, index N holds, for i < 256,
 *   MTH(D[(N * 256 + i) * 256^L : (N * 256 + i + 1) * 256^L])
 * (leaf hashes at level 0); a partial tile holds its first W (1..255) of them. The entry bundle N holds leaves
 * [N * 256, N * 256 + W), each as a big-endian uint16 length and the leaf. Paths, below "tile/":
 *   <L>/<N>[.p/<W>]  and  entries/<N>[.p/<W>]
 * L decimal 0..63, W decimal 1..255, both without leading zeros; N in 3-digit groups, "x" before all but the
 * last, no leading "x000" group (1234067 is x001/x234/067). Only the canonical form parses. */
#define CT_TILE_WIDTH 256
#define CT_TILE_MAX_LEVEL 63
#define CT_TILE_PATH_MAX 64 /* the longest canonical path, with room */

typedef struct {
    bool entries;   /* an entry bundle; level is then 0 */
    uint8_t level;  /* 0..63 */
    uint64_t index;
    uint16_t width; /* 1..256; 256 is a full tile */
} ct_tile;

/* Parses `len` bytes (no NUL needed); CT_ERR_BAD_REQUEST with a one-line reason for anything not canonical. */
CT_MUST_CHECK ct_err ct_tile_parse(const char *path, size_t len, ct_tile *out);
/* The canonical path of t (as ct_tile_parse reads it) into out. */
CT_MUST_CHECK ct_err ct_tile_format(const ct_tile *t, char *out, size_t out_max);
/* CT_OK when the tree of `size` leaves holds every hash (or entry) of t; CT_ERR_NOT_FOUND with a reason when not. */
CT_MUST_CHECK ct_err ct_tile_in_tree(const ct_tile *t, uint64_t size);

/* Hash tiles of a growing log: level 1 from a chunk cache of 256 leaves, each level above from the one below,
 * each hash computed once and kept (32 bytes per 256 leaves, all levels together a little more); level 0 reads
 * the tile's leaf hashes. A tile costs at most 256 leaf reads plus the hashes not yet kept. Not thread-safe. */
typedef struct {
    ct_merkle_cache base; /* chunk 256: its roots are level 1 */
    ct_merkle_hash *level[8]; /* levels 2..7 (a tree of at most 2^63 leaves has no hash at level 8) */
    uint64_t n[8], cap[8];
} ct_tile_cache;
CT_MUST_CHECK ct_err ct_tile_cache_init(ct_tile_cache *c, ct_merkle_fetch_fn fetch, void *arg);
void ct_tile_cache_free(ct_tile_cache *c);
/* The t->width hashes of hash tile t of the log, which must hold them (ct_tile_in_tree), into out. */
CT_MUST_CHECK ct_err ct_tile_hashes(ct_tile_cache *c, const ct_tile *t, ct_merkle_hash out[CT_TILE_WIDTH]);

/* ---- tree heads ----
 * What a signed tree head signs (RFC 9162 TreeHeadDataV2's layout, 51 bytes, big-endian):
 *   uint64 timestamp (milliseconds since the epoch) || uint64 tree_size || uint8 32 || root_hash[32]
 *   || uint16 0 (no extensions)
 * signed with ECDSA (SHA-256 for a P-256 key) by the log key; the signature is a DER ECDSA-Sig-Value. */
#define CT_TREE_HEAD_TBS_LEN 51
#define CT_TREE_HEAD_SIG_MAX 160

typedef struct {
    uint64_t tree_size;
    uint64_t timestamp_ms;
    uint8_t root[CT_MERKLE_HASH_LEN];
    uint8_t sig[CT_TREE_HEAD_SIG_MAX];
    size_t sig_len;
} ct_tree_head;

void ct_tree_head_tbs(const ct_tree_head *h, uint8_t out[CT_TREE_HEAD_TBS_LEN]);

#endif
