/* RFC 9162 Merkle math (common/core/merkle.c) against the RFC 6962 / CT test vectors and against an independent
 * Python implementation (merkle_ref.py): every root, audit path and consistency proof of trees of 1..33 leaves,
 * each checked with the RFC's verification algorithms, and every tampered variant refused. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merkle.h"
#include "test_util.h"

#define TOP 33

static ct_merkle_hash leaves[TOP];

static void make_leaves(void)
{
    for (int i = 0; i < TOP; i++) {
        char leaf[64];
        size_t used = 0;
        for (int r = 0; r < i % 3 + 1; r++) used += (size_t)snprintf(leaf + used, sizeof leaf - used, "leaf-%d", i);
        ck_assert_int_eq(ct_merkle_leaf_hash(leaf, used, leaves[i]), CT_OK);
    }
}

static void hex32(const char *hex, uint8_t out[32])
{
    size_t n = 0;
    ck_assert_int_eq(ct_hex_decode(hex, out, 32, &n), CT_OK);
    ck_assert_int_eq(n, 32);
}

/* "h1,h2,..." or "-" into hashes. */
static size_t parse_list(char *s, ct_merkle_hash *out)
{
    size_t n = 0;
    if (strcmp(s, "-") == 0) return 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        ck_assert_uint_lt(n, CT_MERKLE_MAX_PATH);
        hex32(tok, out[n++]);
    }
    return n;
}

START_TEST(ct_test_vectors)
{
    /* The RFC 6962 reference data (certificate-transparency's merkle tests): roots of the first 1..8 leaves. */
    static const uint8_t *const data[] = {(const uint8_t *)"", (const uint8_t *)"\x00", (const uint8_t *)"\x10",
                                          (const uint8_t *)"\x20\x21", (const uint8_t *)"\x30\x31",
                                          (const uint8_t *)"\x40\x41\x42\x43",
                                          (const uint8_t *)"\x50\x51\x52\x53\x54\x55\x56\x57",
                                          (const uint8_t *)"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
    static const size_t lens[] = {0, 1, 1, 2, 2, 4, 8, 16};
    static const char *const roots[] = {
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
    ct_merkle_hash l[8];
    uint8_t want[32], got[32];
    ct_merkle_frontier f;
    ct_merkle_frontier_init(&f);
    ck_assert_int_eq(ct_merkle_frontier_root(&f, got), CT_OK);
    hex32("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want); /* MTH({}) = SHA-256() */
    ck_assert_mem_eq(got, want, 32);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(ct_merkle_leaf_hash(data[i], lens[i], l[i]), CT_OK);
        ck_assert_int_eq(ct_merkle_frontier_push(&f, l[i]), CT_OK);
        hex32(roots[i], want);
        ck_assert_int_eq(ct_merkle_root(l, (uint64_t)i + 1, got), CT_OK);
        ck_assert_mem_eq(got, want, 32);
        ck_assert_int_eq(ct_merkle_frontier_root(&f, got), CT_OK);
        ck_assert_mem_eq(got, want, 32);
    }
}
END_TEST

static void check_inclusion(uint64_t n, uint64_t m, ct_merkle_hash *want, size_t want_len, const uint8_t root[32])
{
    ct_merkle_hash path[CT_MERKLE_MAX_PATH];
    size_t len = 99;
    ck_assert_int_eq(ct_merkle_inclusion_path(leaves, n, m, path, &len), CT_OK);
    ck_assert_uint_eq(len, want_len);
    if (len) ck_assert_mem_eq(path, want, len * 32);
    ck_assert(ct_merkle_verify_inclusion(leaves[m], m, n, (const ct_merkle_hash *)path, len, root));
    /* Every tampered variant fails: another leaf, index or size, a flipped bit, a hash short or extra. */
    ck_assert(!ct_merkle_verify_inclusion(leaves[(m + 1) % TOP], m, n, (const ct_merkle_hash *)path, len, root) ||
              n == 1);
    ck_assert(!ct_merkle_verify_inclusion(leaves[m], m + 1, n, (const ct_merkle_hash *)path, len, root));
    for (size_t i = 0; i < len; i++) {
        path[i][i % 32] ^= 0x01;
        ck_assert(!ct_merkle_verify_inclusion(leaves[m], m, n, (const ct_merkle_hash *)path, len, root));
        path[i][i % 32] ^= 0x01;
    }
    if (len) ck_assert(!ct_merkle_verify_inclusion(leaves[m], m, n, (const ct_merkle_hash *)path, len - 1, root));
    memcpy(path[len], root, 32);
    ck_assert(!ct_merkle_verify_inclusion(leaves[m], m, n, (const ct_merkle_hash *)path, len + 1, root));
}

static void check_consistency(uint64_t m, uint64_t n, ct_merkle_hash *want, size_t want_len, const uint8_t (*roots)[32])
{
    ct_merkle_hash proof[CT_MERKLE_MAX_PATH];
    size_t len = 99;
    ck_assert_int_eq(ct_merkle_consistency_proof(leaves, m, n, proof, &len), CT_OK);
    ck_assert_uint_eq(len, want_len);
    if (len) ck_assert_mem_eq(proof, want, len * 32);
    const uint8_t *r1 = roots[m], *r2 = roots[n];
    ck_assert(ct_merkle_verify_consistency(m, r1, n, r2, (const ct_merkle_hash *)proof, len));
    if (m < n) {
        ck_assert(!ct_merkle_verify_consistency(m, r2, n, r2, (const ct_merkle_hash *)proof, len));
        ck_assert(!ct_merkle_verify_consistency(m, r1, n, r1, (const ct_merkle_hash *)proof, len));
        ck_assert(!ct_merkle_verify_consistency(m, r1, n, r2, (const ct_merkle_hash *)proof, len - 1));
        for (size_t i = 0; i < len; i++) {
            proof[i][7] ^= 0x80;
            ck_assert(!ct_merkle_verify_consistency(m, r1, n, r2, (const ct_merkle_hash *)proof, len));
            proof[i][7] ^= 0x80;
        }
    }
    ck_assert(!ct_merkle_verify_consistency(0, r1, n, r2, (const ct_merkle_hash *)proof, len));
}

START_TEST(matches_independent_reference_for_every_size_and_index)
{
    char cmd[1024], line[8192];
    snprintf(cmd, sizeof cmd, "python3 '%s' %d", MERKLE_REF, TOP);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    uint8_t roots[TOP + 1][32];
    long n_root = 0, n_path = 0, n_cons = 0;
    ct_merkle_hash list[CT_MERKLE_MAX_PATH];
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        char kind[8], hashes[8000];
        unsigned long long a = 0, b = 0;
        if (sscanf(line, "root %llu %7999s", &a, hashes) == 2) {
            uint8_t got[32];
            ck_assert_uint_le(a, TOP);
            hex32(hashes, roots[a]);
            ck_assert_int_eq(ct_merkle_root(leaves, a, got), CT_OK);
            ck_assert_mem_eq(got, roots[a], 32);
            ct_merkle_frontier f;
            ct_merkle_frontier_init(&f);
            for (unsigned long long i = 0; i < a; i++) ck_assert_int_eq(ct_merkle_frontier_push(&f, leaves[i]), CT_OK);
            ck_assert_int_eq(ct_merkle_frontier_root(&f, got), CT_OK);
            ck_assert_mem_eq(got, roots[a], 32);
            n_root++;
            continue;
        }
        ck_assert_int_eq(sscanf(line, "%7s %llu %llu %7999s", kind, &a, &b, hashes), 4);
        size_t len = parse_list(hashes, list);
        if (strcmp(kind, "path") == 0) {
            check_inclusion(a, b, list, len, roots[a]); /* roots[a] came first: the reference prints it before */
            n_path++;
        } else {
            ck_assert_str_eq(kind, "cons");
            check_consistency(a, b, list, len, (const uint8_t(*)[32])roots);
            n_cons++;
        }
    }
    ck_assert_int_eq(pclose(p), 0);
    /* The loops really ran: 33 roots, sum(1..33) paths and as many consistency proofs. */
    ck_assert_int_eq(n_root, TOP);
    ck_assert_int_eq(n_path, TOP * (TOP + 1) / 2);
    ck_assert_int_eq(n_cons, TOP * (TOP + 1) / 2);
}
END_TEST

/* The chunk cache gives the very answers of the in-memory functions, for every tree size, leaf and pair of sizes
 * up to TOP and chunks of 2, 4 and 8 leaves, while reading no more than two chunks of leaves per proof once its
 * chunk roots are kept. */
typedef struct {
    uint64_t fetched;
} fetch_count;

static ct_err fetch_leaves(void *arg, uint64_t from, uint64_t n, ct_merkle_hash *out, uint64_t *got)
{
    fetch_count *f = arg;
    *got = from >= TOP ? 0 : from + n > TOP ? TOP - from : n;
    memcpy(out, leaves + from, *got * sizeof *out);
    f->fetched += *got;
    return CT_OK;
}

START_TEST(chunk_cache_matches_the_whole_tree)
{
    for (uint64_t chunk = 2; chunk <= 8; chunk *= 2) {
        fetch_count f = {0};
        ct_merkle_cache c;
        ck_assert_int_eq(ct_merkle_cache_init(&c, chunk, fetch_leaves, &f), CT_OK);
        for (uint64_t n = 1; n <= TOP; n++) {
            uint8_t want[32], got[32];
            ck_assert_int_eq(ct_merkle_root(leaves, n, want), CT_OK);
            ck_assert_int_eq(ct_merkle_cache_root(&c, n, got), CT_OK);
            ck_assert_mem_eq(got, want, 32);
            for (uint64_t m = 0; m < n; m++) {
                ct_merkle_hash a[CT_MERKLE_MAX_PATH], b[CT_MERKLE_MAX_PATH];
                size_t la = 0, lb = 0;
                ck_assert_int_eq(ct_merkle_inclusion_path(leaves, n, m, a, &la), CT_OK);
                f.fetched = 0;
                ck_assert_int_eq(ct_merkle_cache_inclusion_path(&c, n, m, b, &lb), CT_OK);
                ck_assert_uint_le(f.fetched, 2 * chunk);
                ck_assert_uint_eq(la, lb);
                ck_assert_mem_eq(a, b, la * sizeof a[0]);
                ck_assert_int_eq(ct_merkle_consistency_proof(leaves, m + 1, n, a, &la), CT_OK);
                f.fetched = 0;
                ck_assert_int_eq(ct_merkle_cache_consistency_proof(&c, m + 1, n, b, &lb), CT_OK);
                ck_assert_uint_le(f.fetched, 2 * chunk);
                ck_assert_uint_eq(la, lb);
                ck_assert_mem_eq(a, b, la * sizeof a[0]);
            }
        }
        ct_merkle_hash p[CT_MERKLE_MAX_PATH];
        size_t len;
        ck_assert_int_eq(ct_merkle_cache_inclusion_path(&c, TOP + 1, 0, p, &len), CT_ERR_USAGE); /* past the log */
        ct_merkle_cache_free(&c);
    }
    ct_merkle_cache bad;
    ck_assert_int_eq(ct_merkle_cache_init(&bad, 6, fetch_leaves, NULL), CT_ERR_ARG);
}
END_TEST

START_TEST(bad_arguments_are_refused)
{
    ct_merkle_hash path[CT_MERKLE_MAX_PATH];
    size_t len = 0;
    uint8_t root[32];
    ck_assert_int_eq(ct_merkle_inclusion_path(leaves, 5, 5, path, &len), CT_ERR_ARG);
    ck_assert_int_eq(ct_merkle_consistency_proof(leaves, 0, 5, path, &len), CT_ERR_ARG);
    ck_assert_int_eq(ct_merkle_consistency_proof(leaves, 6, 5, path, &len), CT_ERR_ARG);
    ck_assert_int_eq(ct_merkle_root(leaves, 1, root), CT_OK);
    ck_assert(!ct_merkle_verify_inclusion(leaves[0], 0, 0, path, 0, root));
    ck_assert(ct_merkle_verify_inclusion(leaves[0], 0, 1, path, 0, root));
    ck_assert(!ct_merkle_verify_inclusion(leaves[0], 0, 1, path, CT_MERKLE_MAX_PATH + 1, root));
    /* A tree head's signed bytes: TreeHeadDataV2's layout. */
    ct_tree_head h = {.tree_size = 0x0102, .timestamp_ms = 0x0a0b0c0d0e0fULL};
    memset(h.root, 0xee, 32);
    uint8_t tbs[CT_TREE_HEAD_TBS_LEN];
    ct_tree_head_tbs(&h, tbs);
    static const uint8_t head[17] = {0, 0, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0, 0, 0, 0, 0, 0, 1, 2, 32};
    ck_assert_mem_eq(tbs, head, sizeof head);
    ck_assert_int_eq(tbs[17], 0xee);
    ck_assert_int_eq(tbs[49] | tbs[50], 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("merkle");
    TCase *tc = tcase_create("rfc9162");
    tcase_add_checked_fixture(tc, make_leaves, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ct_test_vectors);
    tcase_add_test(tc, matches_independent_reference_for_every_size_and_index);
    tcase_add_test(tc, bad_arguments_are_refused);
    tcase_add_test(tc, chunk_cache_matches_the_whole_tree);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
