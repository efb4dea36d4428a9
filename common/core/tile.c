/* C2SP tlog-tiles (see merkle.h): tile paths, strictly parsed (only the canonical form, so that one tile has
 * one path and one cache entry), and the hashes a tile holds, kept per level as the log grows. */
#include <stdlib.h>
#include <string.h>

#include "merkle.h"

#define GROUPS_MAX 7 /* 2^64 - 1 has 20 decimal digits */

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* A decimal number without leading zeros of at most `max_digits` digits at *p (< end): its value, *p after it. */
static ct_err decimal(const char **p, const char *end, size_t max_digits, const char *what, unsigned *out)
{
    const char *s = *p;
    size_t n = 0;
    while (s + n < end && is_digit(s[n])) n++;
    CT_ENSURE_RET(n > 0, ct_fail(CT_ERR_BAD_REQUEST, "tile path: %s must be a decimal number", what));
    CT_ENSURE_RET(n == 1 || s[0] != '0', ct_fail(CT_ERR_BAD_REQUEST, "tile path: %s has a leading zero", what));
    CT_ENSURE_RET(n <= max_digits, ct_fail(CT_ERR_BAD_REQUEST, "tile path: %s is out of range", what));
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) v = v * 10 + (unsigned)(s[i] - '0');
    *out = v;
    *p = s + n;
    return CT_OK;
}

/* The index: 3-digit groups, "x" and "/" after each but the last. */
static ct_err index_groups(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    for (int g = 0;; g++) {
        CT_ENSURE_RET(g < GROUPS_MAX, ct_fail(CT_ERR_BAD_REQUEST, "tile path: index is too large"));
        bool x = s < end && *s == 'x';
        s += x;
        CT_ENSURE_RET(end - s >= 3 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) &&
                          (end - s == 3 || !is_digit(s[3])),
                      ct_fail(CT_ERR_BAD_REQUEST, "tile path: index groups must be 3 digits"));
        unsigned group = (unsigned)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
        s += 3;
        bool more = s < end && *s == '/';
        CT_ENSURE_RET(x == more, ct_fail(CT_ERR_BAD_REQUEST, more ? "tile path: index group without its x prefix"
                                                                   : "tile path: x prefix on the last index group"));
        CT_ENSURE_RET(!(g == 0 && more && group == 0),
                      ct_fail(CT_ERR_BAD_REQUEST, "tile path: index has a leading x000 group"));
        CT_ENSURE_RET(v <= (UINT64_MAX - group) / 1000, ct_fail(CT_ERR_BAD_REQUEST, "tile path: index is too large"));
        v = v * 1000 + group;
        if (!more) break;
        s++;
    }
    *out = v;
    *p = s;
    return CT_OK;
}

ct_err ct_tile_parse(const char *path, size_t len, ct_tile *out)
{
    static const char entries[] = "entries/", partial[] = ".p/";
    CT_ENSURE_RET(path && out, ct_fail(CT_ERR_ARG, "ct_tile_parse: missing argument"));
    CT_ENSURE_RET(len <= CT_TILE_PATH_MAX, ct_fail(CT_ERR_BAD_REQUEST, "tile path: too long"));
    memset(out, 0, sizeof *out);
    const char *p = path, *end = path + len;
    unsigned v = 0;
    if (len >= sizeof entries - 1 && memcmp(p, entries, sizeof entries - 1) == 0) {
        out->entries = true;
        p += sizeof entries - 1;
    } else {
        CT_GUARD_RET(decimal(&p, end, 2, "level", &v));
        CT_ENSURE_RET(v <= CT_TILE_MAX_LEVEL,
                      ct_fail(CT_ERR_BAD_REQUEST, "tile path: level %u is out of range (0..%d)", v, CT_TILE_MAX_LEVEL));
        CT_ENSURE_RET(p < end && *p == '/', ct_fail(CT_ERR_BAD_REQUEST, "tile path: level must be followed by /"));
        out->level = (uint8_t)v;
        p++;
    }
    CT_GUARD_RET(index_groups(&p, end, &out->index));
    out->width = CT_TILE_WIDTH;
    if (p < end) {
        CT_ENSURE_RET((size_t)(end - p) >= sizeof partial - 1 && memcmp(p, partial, sizeof partial - 1) == 0,
                      ct_fail(CT_ERR_BAD_REQUEST, "tile path: unexpected text after the index"));
        p += sizeof partial - 1;
        CT_GUARD_RET(decimal(&p, end, 3, "width", &v));
        CT_ENSURE_RET(v >= 1 && v < CT_TILE_WIDTH,
                      ct_fail(CT_ERR_BAD_REQUEST, "tile path: width %u is out of range (1..%d)", v, CT_TILE_WIDTH - 1));
        CT_ENSURE_RET(p == end, ct_fail(CT_ERR_BAD_REQUEST, "tile path: unexpected text after the width"));
        out->width = (uint16_t)v;
    }
    return CT_OK;
}

ct_err ct_tile_format(const ct_tile *t, char *out, size_t out_max)
{
    CT_ENSURE_RET(t && out && t->width >= 1 && t->width <= CT_TILE_WIDTH && t->level <= CT_TILE_MAX_LEVEL &&
                      !(t->entries && t->level),
                  ct_fail(CT_ERR_ARG, "ct_tile_format: bad tile"));
    unsigned groups[GROUPS_MAX];
    int n = 0;
    uint64_t v = t->index;
    do {
        groups[n++] = (unsigned)(v % 1000);
        v /= 1000;
    } while (v);
    char buf[CT_TILE_PATH_MAX + 1];
    ct_buf b = {(uint8_t *)buf, 0, sizeof buf};
    if (t->entries) CT_GUARD_RET(ct_buf_append(&b, "entries/", 8));
    else CT_GUARD_RET(ct_buf_appendf(&b, "%u/", t->level));
    while (n > 1) CT_GUARD_RET(ct_buf_appendf(&b, "x%03u/", groups[--n]));
    CT_GUARD_RET(ct_buf_appendf(&b, "%03u", groups[0]));
    if (t->width < CT_TILE_WIDTH) CT_GUARD_RET(ct_buf_appendf(&b, ".p/%u", t->width));
    return ct_snprintf(out, out_max, "%.*s", (int)b.len, buf);
}

/* How many hashes of the tile's level the tree of `size` leaves has (entries: its leaves). */
static uint64_t level_size(const ct_tile *t, uint64_t size)
{
    unsigned shift = t->entries ? 0 : 8u * t->level;
    return shift < 64 ? size >> shift : 0;
}

ct_err ct_tile_in_tree(const ct_tile *t, uint64_t size)
{
    CT_ENSURE_RET(t && t->width >= 1 && t->width <= CT_TILE_WIDTH, ct_fail(CT_ERR_ARG, "ct_tile_in_tree: bad tile"));
    uint64_t have = level_size(t, size);
    if (t->index < have / CT_TILE_WIDTH || (t->index == have / CT_TILE_WIDTH && t->width <= have % CT_TILE_WIDTH))
        return CT_OK;
    char path[CT_TILE_PATH_MAX + 1];
    CT_GUARD_RET(ct_tile_format(t, path, sizeof path));
    return ct_fail(CT_ERR_NOT_FOUND, "tile %s is beyond the log (%llu leaves)", path, (unsigned long long)size);
}

ct_err ct_tile_cache_init(ct_tile_cache *c, ct_merkle_fetch_fn fetch, void *arg)
{
    memset(c, 0, sizeof *c);
    return ct_merkle_cache_init(&c->base, CT_TILE_WIDTH, fetch, arg);
}

void ct_tile_cache_free(ct_tile_cache *c)
{
    ct_merkle_cache_free(&c->base);
    for (int i = 0; i < 8; i++) free(c->level[i]);
    memset(c, 0, sizeof *c);
}

/* The first `want` hashes of `level` (1..7), which the log must hold: computed from the level below when not kept. */
static ct_err level_hashes(ct_tile_cache *c, unsigned level, uint64_t want, const ct_merkle_hash **out)
{
    CT_ENSURE_RET(want <= UINT64_MAX / CT_TILE_WIDTH, ct_fail(CT_ERR_ARG, "tile beyond any log"));
    if (level == 1) return ct_merkle_cache_chunk_roots(&c->base, want * CT_TILE_WIDTH, out);
    if (c->n[level] < want) {
        const ct_merkle_hash *below = NULL;
        CT_GUARD_RET(level_hashes(c, level - 1, want * CT_TILE_WIDTH, &below));
        if (want > c->cap[level]) {
            uint64_t cap = c->cap[level] ? c->cap[level] : 16;
            while (cap < want) cap *= 2;
            CT_ENSURE_RET(cap <= SIZE_MAX / sizeof(ct_merkle_hash), CT_ERR_NOMEM);
            ct_merkle_hash *grown = realloc(c->level[level], cap * sizeof *grown);
            CT_ENSURE_RET(grown, CT_ERR_NOMEM);
            c->level[level] = grown;
            c->cap[level] = cap;
        }
        for (; c->n[level] < want; c->n[level]++)
            CT_GUARD_RET(ct_merkle_root(below + c->n[level] * CT_TILE_WIDTH, CT_TILE_WIDTH, c->level[level][c->n[level]]));
    }
    *out = c->level[level];
    return CT_OK;
}

ct_err ct_tile_hashes(ct_tile_cache *c, const ct_tile *t, ct_merkle_hash out[CT_TILE_WIDTH])
{
    CT_ENSURE_RET(c && t && out && !t->entries && t->level < 8 && t->width >= 1 && t->width <= CT_TILE_WIDTH &&
                      t->index <= (UINT64_MAX - CT_TILE_WIDTH) / CT_TILE_WIDTH,
                  ct_fail(CT_ERR_ARG, "ct_tile_hashes: not a hash tile of a log"));
    uint64_t first = t->index * CT_TILE_WIDTH;
    if (t->level == 0) {
        uint64_t got = t->width;
        CT_GUARD_RET(c->base.fetch(c->base.arg, first, t->width, out, &got));
        CT_ENSURE_RET(got == t->width, ct_fail(CT_ERR_USAGE, "the log ends before leaf %llu",
                                               (unsigned long long)(first + t->width)));
        return CT_OK;
    }
    const ct_merkle_hash *hashes = NULL;
    CT_GUARD_RET(level_hashes(c, t->level, first + t->width, &hashes));
    memcpy(out, hashes + first, t->width * sizeof *out);
    return CT_OK;
}
