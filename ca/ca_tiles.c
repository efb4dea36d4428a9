/* The issuance log as C2SP tlog-tiles: GET /log/tile/<L>/<N>[.p/<W>] (hash tiles) and
 * /log/tile/entries/<N>[.p/<W>] (entry bundles: the certificates' DER), public like the rest of /log, so that
 * anyone can mirror and check the log with standard tooling. Tiles are served up to the log's current size,
 * which every signed tree head's size is at most: each needs only complete subtrees, so what is served never
 * changes. A tile costs at most 256 leaf reads plus the hashes not yet kept (ct_tile_cache): anyone may ask.
 * The kept hashes are checked against the rows at each use, as the proofs' are (ca_chunks_current): a node whose
 * rows were rolled back (or rewritten up to the kept edge) under it serves the tiles of the rows it has, which a
 * client holding an honest checkpoint finds disagree with it, not hashes kept from rows gone: those would agree with
 * a checkpoint the rows no longer support, and mixed with the level-0 tiles and entries read from the rows, match no
 * tree at all. Rows edited in place below the edge are not seen (see tiles_current). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ca_priv.h"

/* Full tiles never change. A partial tile does not either, but a log may drop it once the full one exists. */
#define CACHE_FULL "public, max-age=31536000, immutable"
#define CACHE_PARTIAL "public, max-age=60"

struct ca_tiles {
    pthread_mutex_t mu;
    bool mu_ok;
    ct_tile_cache cache;
    ct_merkle_hash edge; /* the leaf at the edge of cache.base's kept roots (ca_chunks_current) */
};

ct_err ca_tiles_open(ca *c)
{
    ct_err rc = CT_OK;
    c->tiles = calloc(1, sizeof *c->tiles);
    CT_ENSURE(c->tiles, CT_ERR_NOMEM);
    c->tiles->mu_ok = pthread_mutex_init(&c->tiles->mu, NULL) == 0;
    CT_ENSURE_MSG(c->tiles->mu_ok, CT_ERR_INTERNAL, "cannot create the tile cache lock");
    CT_GUARD(ct_tile_cache_init(&c->tiles->cache, db_log_fetch, c->db));
cleanup:
    if (rc != CT_OK) ca_tiles_close(c);
    return rc;
}

void ca_tiles_close(ca *c)
{
    if (!c || !c->tiles) return;
    ct_tile_cache_free(&c->tiles->cache);
    if (c->tiles->mu_ok) pthread_mutex_destroy(&c->tiles->mu);
    free(c->tiles);
    c->tiles = NULL;
}

/* The kept hashes under hash tile t (in the log: ct_tile_in_tree) made current as the rows now are, under the
 * lock: level 1 is cache.base's chunk roots, checked at their edge; every level above is computed from those and
 * dropped with them. Level 0 keeps nothing (it reads its leaves each time). Only the edge is read: a row edited in
 * place below it keeps the hashes above as they were computed (honest ones, or the edited rows' when the node read
 * them before the rows were put back), and the level-0 tile read from the rows disagrees with them. */
static ct_err tiles_current(ca_tiles *tiles, const ct_tile *t)
{
    if (t->level == 0 || t->level >= 8) return CT_OK; /* level 8 and up: beyond any log, ct_tile_hashes refuses */
    bool dropped = false;
    uint64_t leaves = (t->index * CT_TILE_WIDTH + t->width) << (8u * t->level); /* at most the log's size */
    ct_err rc = ca_chunks_current(&tiles->cache.base, tiles->edge, leaves, "tiles", &dropped);
    if (dropped) memset(tiles->cache.n, 0, sizeof tiles->cache.n); /* levels 2..7 kept: none now */
    return rc;
}

/* Level 0 reads its leaves with the cache's fetch alone (set once, at open) and keeps nothing: it does not wait behind
 * a request that computes the kept levels under the lock. */
static ct_err answer_hashes(ca *c, const ct_tile *t, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    ct_merkle_hash hashes[CT_TILE_WIDTH];
    if (t->level == 0) {
        CT_GUARD(ct_tile_hashes(&c->tiles->cache, t, hashes));
    } else {
        CT_ENSURE(pthread_mutex_lock(&c->tiles->mu) == 0, CT_ERR_INTERNAL);
        rc = tiles_current(c->tiles, t);
        if (rc == CT_OK) rc = ct_tile_hashes(&c->tiles->cache, t, hashes);
        pthread_mutex_unlock(&c->tiles->mu);
        CT_GUARD(rc);
    }
    CT_GUARD(ct_buf_alloc(&ans->body, t->width * sizeof *hashes));
    CT_GUARD(ct_buf_append(&ans->body, hashes, t->width * sizeof *hashes));
cleanup:
    return rc;
}

/* One entry of a bundle: big-endian uint16 length, then the certificate. */
static ct_err append_entry(void *arg, uint64_t index, const uint8_t *der, size_t len)
{
    ct_buf *b = arg;
    CT_ENSURE_RET(len <= PKI_MAX_CERT_DER, ct_fail(CT_ERR_INTEGRITY, "log leaf %llu: certificate of %zu bytes",
                                                   (unsigned long long)index, len));
    uint8_t prefix[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    CT_GUARD_RET(ct_buf_append(b, prefix, sizeof prefix));
    return ct_buf_append(b, der, len);
}

/* tlog-tiles: entry bundles SHOULD be compressed at the HTTP layer; gzip when the client accepts it. */
static ct_err answer_entries(ca *c, const ct_tile *t, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_buf gz = CT_BUF_INIT;
    CT_GUARD_RET(ct_buf_alloc(&ans->body, t->width * (2 + (size_t)PKI_MAX_CERT_DER)));
    CT_GUARD_RET(db_log_entries(c->db, t->index * CT_TILE_WIDTH, t->width, append_entry, &ans->body));
    ans->vary_encoding = true;
    if (!ca_http_accepts_gzip(rq->accept_encoding)) return CT_OK;
    CT_GUARD_RET(ct_gzip(ans->body.data, ans->body.len, &gz));
    ct_buf_free(&ans->body);
    ans->body = gz;
    ans->content_encoding = "gzip";
    return CT_OK;
}

/* The rows ended before the tile's leaves (CT_ERR_USAGE, "larger than the log") though the size read before said they
 * were there: the log shrank meanwhile (rolled back). The tile is beyond the log as it is now, a 404 as tlog-tiles
 * has it; or the log has grown back since, and the client asks again. */
static ct_err log_shrank(ca *c, const ct_tile *t)
{
    uint64_t size = 0;
    CT_GUARD_RET(db_log_size(c->db, &size));
    CT_GUARD_RET(ct_tile_in_tree(t, size));
    return ct_fail(CT_ERR_UNAVAILABLE, "the log changed while the tile was read: ask again");
}

ct_err ca_tiles_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    ct_tile t;
    uint64_t size = 0;
    char path[CT_TILE_PATH_MAX + 1];
    memset(ans, 0, sizeof *ans);
    ct_err_clear();
    size_t prefix = strlen(CA_TILES_PREFIX);
    CT_ENSURE_MSG(strncmp(rq->path, CA_TILES_PREFIX, prefix) == 0, CT_ERR_NOT_FOUND, "no such resource");
    CT_ENSURE_MSG(strcmp(rq->method, "GET") == 0, CT_ERR_METHOD, "tiles take GET");
    CT_GUARD(ct_tile_parse(rq->path + prefix, strnlen(rq->path + prefix, CT_TILE_PATH_MAX + 1), &t));
    CT_GUARD(db_log_size(c->db, &size));
    CT_GUARD(ct_tile_in_tree(&t, size));
    ct_failpoint_hold("tiles:size-read"); /* tests: the log is rolled back meanwhile */
    ca_failpoint_step("tiles:read"); /* tests: the same, then grown back before log_shrank (a second step) */
    rc = t.entries ? answer_entries(c, &t, rq, ans) : answer_hashes(c, &t, ans);
    if (rc == CT_ERR_USAGE) {
        ca_failpoint_step("tiles:read");
        rc = log_shrank(c, &t);
    }
    CT_GUARD(rc);
    CT_GUARD(ct_tile_format(&t, path, sizeof path));
    CT_GUARD(ct_snprintf(ans->reason, sizeof ans->reason, "tile %s", path));
    ans->status = 200;
    ans->content_type = "application/octet-stream";
    ans->cache_control = t.width == CT_TILE_WIDTH ? CACHE_FULL : CACHE_PARTIAL;
cleanup:
    if (rc != CT_OK) ca_http_error(ans, rc);
    return rc;
}
