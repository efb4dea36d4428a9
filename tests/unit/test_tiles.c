/* C2SP tlog-tiles (common/core/tile.c): the strict path parser on good and bad paths, and the tiles of logs of
 * 0 to 196,613 leaves against an independent Python reference written from the spec's definition (merkle_ref.py
 * tiles), with one cache kept while the log grows, as the server keeps it; and a tile reads at most its own 256
 * leaf hashes once the levels below it are kept. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merkle.h"
#include "test_util.h"

#define MAX_LEAVES 196613

static ct_merkle_hash *leaves;
static uint64_t log_size; /* the log as the cache's fetch sees it */
static uint64_t leaves_read;

static void make_leaves(void)
{
    leaves = malloc(MAX_LEAVES * sizeof *leaves);
    ck_assert_ptr_nonnull(leaves);
    for (int i = 0; i < MAX_LEAVES; i++) {
        char leaf[64];
        size_t used = 0;
        for (int r = 0; r < i % 3 + 1; r++) used += (size_t)snprintf(leaf + used, sizeof leaf - used, "leaf-%d", i);
        ck_assert_int_eq(ct_merkle_leaf_hash(leaf, used, leaves[i]), CT_OK);
    }
}

static void free_leaves(void) { free(leaves); }

static ct_err fetch(void *arg, uint64_t from, uint64_t n, ct_merkle_hash *out, uint64_t *got)
{
    (void)arg;
    *got = from >= log_size ? 0 : (n < log_size - from ? n : log_size - from);
    if (*got) memcpy(out, leaves + from, *got * sizeof *out);
    leaves_read += *got;
    return CT_OK;
}

static void parses(const char *path, bool entries, unsigned level, uint64_t index, unsigned width)
{
    ct_tile t;
    char again[CT_TILE_PATH_MAX + 1];
    ct_err rc = ct_tile_parse(path, strlen(path), &t);
    ck_assert_msg(rc == CT_OK, "%s: %s", path, ct_err_detail());
    ck_assert_int_eq(t.entries, entries);
    ck_assert_uint_eq(t.level, level);
    ck_assert_uint_eq(t.index, index);
    ck_assert_uint_eq(t.width, width);
    ck_assert_int_eq(ct_tile_format(&t, again, sizeof again), CT_OK);
    ck_assert_str_eq(again, path);
}

static void refused(const char *path, size_t len, const char *why)
{
    ct_tile t;
    ct_err_clear();
    ct_err rc = ct_tile_parse(path, len, &t);
    ck_assert_msg(rc == CT_ERR_BAD_REQUEST, "%.*s parsed (%d)", (int)len, path, rc);
    ck_assert_msg(strstr(ct_err_detail(), why), "%.*s: '%s' lacks '%s'", (int)len, path, ct_err_detail(), why);
    ck_assert_ptr_null(strchr(ct_err_detail(), '\n'));
}

START_TEST(good_paths_parse_and_format_back)
{
    parses("0/000", false, 0, 0, 256);
    parses("0/999", false, 0, 999, 256);
    parses("0/x001/000", false, 0, 1000, 256);
    parses("0/x001/x234/067", false, 0, 1234067, 256); /* the spec's example */
    parses("1/000.p/1", false, 1, 0, 1);
    parses("7/x010/042.p/255", false, 7, 10042, 255);
    parses("63/000", false, 63, 0, 256);
    parses("entries/000.p/17", true, 0, 0, 17);
    parses("entries/x999/999", true, 0, 999999, 256);
    parses("2/x018/x446/x744/x073/x709/x551/615", false, 2, UINT64_MAX, 256);
    ct_tile t = {.level = 0, .index = 5, .width = 256};
    char out[CT_TILE_PATH_MAX + 1];
    ck_assert_int_eq(ct_tile_format(&t, out, sizeof out), CT_OK);
    ck_assert_str_eq(out, "0/005");
    t.width = 0;
    ck_assert_int_eq(ct_tile_format(&t, out, sizeof out), CT_ERR_ARG);
}
END_TEST

#define REFUSED(path, why) refused(path, sizeof path - 1, why)

START_TEST(bad_paths_are_refused_with_a_reason)
{
    REFUSED("", "level must be a decimal number");
    REFUSED("0", "level must be followed by /");
    REFUSED("0/", "index groups must be 3 digits");
    REFUSED("a/000", "level must be a decimal number");
    REFUSED("-1/000", "level must be a decimal number");
    REFUSED("00/000", "level has a leading zero");
    REFUSED("01/000", "level has a leading zero");
    REFUSED("64/000", "level 64 is out of range (0..63)");
    REFUSED("99/000", "level 99 is out of range");
    REFUSED("100/000", "level is out of range");
    REFUSED("0//000", "index groups must be 3 digits");
    REFUSED("0/0", "index groups must be 3 digits");
    REFUSED("0/00", "index groups must be 3 digits");
    REFUSED("0/0000", "index groups must be 3 digits");
    REFUSED("0/5", "index groups must be 3 digits");
    REFUSED("0/+12", "index groups must be 3 digits");
    REFUSED("0/x01a/000", "index groups must be 3 digits");
    REFUSED("0/001/002", "index group without its x prefix");
    REFUSED("0/x001", "x prefix on the last index group");
    REFUSED("0/x001/x002", "x prefix on the last index group");
    REFUSED("0/x000/001", "leading x000 group");
    REFUSED("0/x000/x001/002", "leading x000 group");
    REFUSED("0/x018/x446/x744/x073/x709/x551/616", "index is too large");
    REFUSED("0/x001/x000/x000/x000/x000/x000/x000/000", "index is too large");
    REFUSED("0/000/", "index group without its x prefix");
    REFUSED("0/000.p/0", "width 0 is out of range (1..255)");
    REFUSED("0/000.p/256", "width 256 is out of range");
    REFUSED("0/000.p/1000", "width is out of range");
    REFUSED("0/000.p/01", "width has a leading zero");
    REFUSED("0/000.p/", "width must be a decimal number");
    REFUSED("0/000.p/1/", "unexpected text after the width");
    REFUSED("0/000.p/1x", "unexpected text after the width");
    REFUSED("0/000.q/1", "unexpected text after the index");
    REFUSED("0/000.p", "unexpected text after the index");
    REFUSED("0/000 ", "unexpected text after the index");
    REFUSED(" 0/000", "level must be a decimal number");
    REFUSED("0/000\0", "unexpected text after the index"); /* a NUL inside the bounded input */
    REFUSED("entries", "level must be a decimal number");
    REFUSED("entries/", "index groups must be 3 digits");
    REFUSED("Entries/000", "level must be a decimal number");
    REFUSED("entries/0/000", "index groups must be 3 digits");
    REFUSED("0/000000000000000000000000000000000000000000000000000000000000000", "too long");
    ct_tile t;
    ck_assert_int_eq(ct_tile_parse(NULL, 0, &t), CT_ERR_ARG);
}
END_TEST

START_TEST(tiles_beyond_the_log_are_not_found)
{
    /* The spec's example: a tree of 70,000 leaves is 273 full level-0 tiles and one of width 112, one full level-1
     * tile and one of width 17, and a level-2 tile of width 1. */
    static const struct {
        const char *path;
        bool in;
    } cases[] = {{"0/272", true},      {"0/273.p/112", true},  {"0/273.p/1", true},       {"0/273.p/113", false},
                 {"0/273", false},     {"0/274.p/1", false},   {"1/000", true},           {"1/001.p/17", true},
                 {"1/001.p/18", false}, {"1/001", false},      {"2/000.p/1", true},       {"2/000.p/2", false},
                 {"3/000.p/1", false}, {"8/000.p/1", false},   {"63/000.p/1", false},     {"entries/273.p/112", true},
                 {"entries/273", false}, {"entries/x018/x446/x744/x073/x709/x551/615", false},
                 {"7/x018/x446/x744/x073/x709/x551/615", false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_tile t;
        ck_assert_int_eq(ct_tile_parse(cases[i].path, strlen(cases[i].path), &t), CT_OK);
        ct_err_clear();
        ct_err rc = ct_tile_in_tree(&t, 70000);
        ck_assert_msg(rc == (cases[i].in ? CT_OK : CT_ERR_NOT_FOUND), "%s: %d", cases[i].path, rc);
        if (!cases[i].in) ck_assert_ptr_nonnull(strstr(ct_err_detail(), "is beyond the log (70000 leaves)"));
    }
    /* The largest log: 2^63 - 1 leaves has 127 level-7 hashes and nothing at level 8. */
    ct_tile t = {.level = 7, .index = 0, .width = 127};
    ck_assert_int_eq(ct_tile_in_tree(&t, INT64_MAX), CT_OK);
    t.width = 128;
    ck_assert_int_eq(ct_tile_in_tree(&t, INT64_MAX), CT_ERR_NOT_FOUND);
    t = (ct_tile){.level = 0, .index = 0, .width = 1};
    ck_assert_int_eq(ct_tile_in_tree(&t, 0), CT_ERR_NOT_FOUND);
}
END_TEST

START_TEST(tiles_match_independent_reference_as_the_log_grows)
{
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "python3 '%s' tiles 0 1 255 256 257 513 65535 65536 70000 %d", MERKLE_REF, MAX_LEAVES);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ct_tile_cache cache;
    ck_assert_int_eq(ct_tile_cache_init(&cache, fetch, NULL), CT_OK);
    long n_tiles = 0, n_absent = 0, n_level2 = 0;
    ct_merkle_hash hashes[CT_TILE_WIDTH];
    while (fgets(line, sizeof line, p)) {
        char kind[8], path[CT_TILE_PATH_MAX + 1], hex[65];
        unsigned long long size = 0;
        int f = sscanf(line, "%7s %llu %64s %64s", kind, &size, path, hex);
        ck_assert_int_ge(f, 3);
        ck_assert_uint_ge(size, log_size); /* sizes only grow: the kept hashes stay valid */
        log_size = size;
        ct_tile t;
        ck_assert_int_eq(ct_tile_parse(path, strlen(path), &t), CT_OK);
        if (strcmp(kind, "absent") == 0) {
            ck_assert_msg(ct_tile_in_tree(&t, size) == CT_ERR_NOT_FOUND, "%s in a tree of %llu", path, size);
            n_absent++;
            continue;
        }
        ck_assert_str_eq(kind, "tile");
        ck_assert_int_eq(f, 4);
        ck_assert_msg(ct_tile_in_tree(&t, size) == CT_OK, "%s not in a tree of %llu", path, size);
        ck_assert_int_eq(ct_tile_hashes(&cache, &t, hashes), CT_OK);
        uint8_t digest[32], want[32];
        size_t n = 0;
        ck_assert_int_eq(ct_sha256(hashes, t.width * sizeof hashes[0], digest), CT_OK);
        ck_assert_int_eq(ct_hex_decode(hex, want, sizeof want, &n), CT_OK);
        ck_assert_msg(memcmp(digest, want, 32) == 0, "tile %s of the tree of %llu differs", path, size);
        n_tiles++;
        n_level2 += t.level == 2;
    }
    ck_assert_int_eq(pclose(p), 0);
    /* The loops really ran: every tile of every size (768 level-0 tiles alone for the largest). */
    ck_assert_int_gt(n_tiles, 1500);
    ck_assert_int_gt(n_absent, 20);
    ck_assert_int_eq(n_level2, 3); /* 65536, 70000 (width 1) and 196613 (width 3) */

    /* A log shorter than the tile (the database lost leaves): an error, never a tile of stale or missing hashes. */
    ct_tile_cache fresh;
    ck_assert_int_eq(ct_tile_cache_init(&fresh, fetch, NULL), CT_OK);
    log_size = 300;
    ct_tile t = {.level = 1, .index = 0, .width = 2};
    ck_assert_int_ne(ct_tile_hashes(&fresh, &t, hashes), CT_OK);
    t = (ct_tile){.level = 0, .index = 1, .width = 45};
    ck_assert_int_ne(ct_tile_hashes(&fresh, &t, hashes), CT_OK);
    t.width = 44;
    ck_assert_int_eq(ct_tile_hashes(&fresh, &t, hashes), CT_OK);
    ck_assert_mem_eq(hashes, leaves[256], 44 * 32);
    t.entries = true;
    ck_assert_int_eq(ct_tile_hashes(&fresh, &t, hashes), CT_ERR_ARG);
    ct_tile_cache_free(&fresh);
    ct_tile_cache_free(&cache);
}
END_TEST

START_TEST(a_tile_does_not_read_the_whole_log)
{
    /* Anyone may ask for tiles: once the levels below are kept, a tile reads at most its own 256 leaf hashes. */
    ct_tile_cache cache;
    ct_merkle_hash hashes[CT_TILE_WIDTH];
    ck_assert_int_eq(ct_tile_cache_init(&cache, fetch, NULL), CT_OK);
    log_size = 131072; /* 2 * 65536 */
    ct_tile t = {.level = 2, .index = 0, .width = 2};
    leaves_read = 0;
    ck_assert_int_eq(ct_tile_hashes(&cache, &t, hashes), CT_OK);
    ck_assert_uint_eq(leaves_read, 131072); /* the first time: every leaf under it, once */
    leaves_read = 0;
    ck_assert_int_eq(ct_tile_hashes(&cache, &t, hashes), CT_OK);
    t = (ct_tile){.level = 1, .index = 1, .width = 256};
    ck_assert_int_eq(ct_tile_hashes(&cache, &t, hashes), CT_OK);
    ck_assert_uint_eq(leaves_read, 0); /* kept */
    t = (ct_tile){.level = 0, .index = 500, .width = 256};
    ck_assert_int_eq(ct_tile_hashes(&cache, &t, hashes), CT_OK);
    ck_assert_uint_eq(leaves_read, 256);
    /* The log grows by one tile: a level-1 tile then reads only the new leaves. */
    log_size += 256;
    leaves_read = 0;
    t = (ct_tile){.level = 1, .index = 2, .width = 1};
    ck_assert_int_eq(ct_tile_hashes(&cache, &t, hashes), CT_OK);
    ck_assert_uint_eq(leaves_read, 256);
    ck_assert_int_eq(ct_merkle_root(leaves + 131072, 256, hashes[1]), CT_OK);
    ck_assert_mem_eq(hashes[0], hashes[1], 32);
    ct_tile_cache_free(&cache);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tiles");
    TCase *tc = tcase_create("tlog-tiles");
    tcase_add_checked_fixture(tc, make_leaves, free_leaves);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, good_paths_parse_and_format_back);
    tcase_add_test(tc, bad_paths_are_refused_with_a_reason);
    tcase_add_test(tc, tiles_beyond_the_log_are_not_found);
    tcase_add_test(tc, tiles_match_independent_reference_as_the_log_grows);
    tcase_add_test(tc, a_tile_does_not_read_the_whole_log);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
