/* The station as a witness of the CA's issuance log: it keeps the newest checkpoint it verified and refuses a CA
 * whose log no longer extends it. A checkpoint kept outside the CA host is what shows a truncated, rolled-back
 * or forked database, which the CA's own records cannot (README "Checkpoints"). */
#define _DEFAULT_SOURCE /* flock */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "../common/core/merkle.h"
#include "../common/factory/factory.h"
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

/* The checkpoint kept in the station folder, verified with the pinned key: *have false when none is kept yet. */
static ct_err kept_load(const char *dir, const ct_note_verifier *v, char path[STATION_PATH_MAX], ct_buf *note,
                        ct_checkpoint *kept, bool *have)
{
    *have = false;
    CT_GUARD_RET(ct_path_join(path, STATION_PATH_MAX, dir, STATION_LOG_KEPT));
    if (!ct_file_exists(path)) return CT_OK;
    CT_GUARD_RET(ct_file_read(path, CT_NOTE_MAX, note));
    if (ct_checkpoint_open(note->data, note->len, v, kept) != CT_OK)
        return ct_fail_ctx(CT_ERR_INTEGRITY, "the kept %s", path);
    *have = true;
    return CT_OK;
}

ct_err station_log_kept(const char *dir, const ct_note_verifier *v, char path[STATION_PATH_MAX], ct_checkpoint *kept,
                        bool *have)
{
    ct_buf note = CT_BUF_INIT;
    ct_err rc = kept_load(dir, v, path, &note, kept, have);
    ct_buf_free(&note);
    return rc;
}

ct_err station_state_lock(const char *dir, int *fd)
{
    char log_dir[STATION_PATH_MAX];
    *fd = -1;
    CT_GUARD_RET(ct_path_join(log_dir, sizeof log_dir, dir, "log"));
    CT_GUARD_RET(ct_mkdir(log_dir, 0755));
    *fd = open(log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CT_ENSURE_RET(*fd >= 0 && flock(*fd, LOCK_EX) == 0, ct_fail(CT_ERR_IO, "cannot lock %s", log_dir));
    return ct_stale_remove(log_dir, "", ".tmp."); /* what a killed run left (a live one's stays) */
}

ct_err station_log_witness(const station *st, ct_http_client *c, int wait_ms, char *summary, size_t summary_max)
{
    ct_err rc = CT_OK;
    ct_note_verifier v, *w = NULL;
    ct_buf note = CT_BUF_INIT, kept_note = CT_BUF_INIT;
    ct_checkpoint cur, kept;
    ct_http_proof proof;
    bool have = false;
    size_t nw = 0, k = st->witnesses_required, cosigned = 0;
    char kept_path[STATION_PATH_MAX], what[96];
    int64_t deadline = ct_now_ms() + (wait_ms > 0 ? wait_ms : 0);
    int lock = -1;
    CT_GUARD(station_log_vkey(st->dir, &v));
    /* Runs of one station at once (two provision batches, a log check) take turns from reading the kept checkpoint
     * to replacing it: else one that fetched an older checkpoint could put it back over a newer one another kept,
     * and a CA rolled back to between the two would pass. */
    CT_GUARD(station_state_lock(st->dir, &lock));
    CT_GUARD(kept_load(st->dir, &v, kept_path, &kept_note, &kept, &have));
    if (k > 0) {
        w = calloc(CT_COSIG_WITNESSES_MAX, sizeof *w);
        CT_ENSURE(w, CT_ERR_NOMEM);
        CT_GUARD(ct_cosig_verifiers_load(st->witnesses_path, w, CT_COSIG_WITNESSES_MAX, &nw));
        CT_ENSURE_MSG(nw >= k, CT_ERR_CONFIG, "log.witnesses_required is %zu, but %s holds %zu witness key%s", k,
                      st->witnesses_path, nw, nw == 1 ? "" : "s");
    }
    /* Witnesses cosign a new checkpoint within their polling interval: until then (at most wait_ms) ask again. */
    for (;;) {
        ct_buf_free(&note);
        CT_GUARD(ct_http_get(c, "/log/checkpoint", "the checkpoint", CT_NOTE_MAX, &note));
        if ((rc = ct_checkpoint_open(note.data, note.len, &v, &cur)) != CT_OK) {
            rc = ct_fail_ctx(CT_ERR_INTEGRITY, "the CA's checkpoint");
            goto cleanup;
        }
        if (have) CT_GUARD(ct_http_log_extends(c, kept_path, &kept, &cur, &proof));
        if (k == 0) break;
        CT_GUARD(ct_snprintf(what, sizeof what, "the CA's checkpoint of size %llu", (unsigned long long)cur.size));
        if ((rc = ct_cosig_witnessed(note.data, note.len, w, nw, k, what, &cosigned)) == CT_OK) break;
        if (ct_now_ms() >= deadline) {
            rc = ct_fail_ctx(CT_ERR_FORBIDDEN, "not witnessed");
            goto cleanup;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    rc = CT_OK;
    ct_failpoint_hold("station:log-verified"); /* tests: another run comes in between */
    CT_GUARD(ct_file_write_atomic(kept_path, note.data, note.len, 0644));
    if (have)
        CT_GUARD(ct_snprintf(summary, summary_max, "log checkpoint of size %llu consistent with the kept one (size %llu)",
                             (unsigned long long)cur.size, (unsigned long long)kept.size));
    else
        CT_GUARD(ct_snprintf(summary, summary_max, "log checkpoint of size %llu kept (the first)",
                             (unsigned long long)cur.size));
    if (k > 0) {
        size_t len = strlen(summary);
        CT_GUARD(ct_snprintf(summary + len, summary_max - len, ", cosigned by %zu of %zu witnesses (%zu required)",
                             cosigned, nw, k));
    }
cleanup:
    if (lock >= 0) close(lock); /* and the lock with it */
    free(w);
    ct_buf_free(&note);
    ct_buf_free(&kept_note);
    return rc;
}

ct_err station_log_keep(const char *dir, const ct_note_verifier *v, ct_http_client *c, const ct_buf *note,
                        const ct_checkpoint *cp)
{
    ct_err rc = CT_OK;
    ct_buf kept_note = CT_BUF_INIT;
    ct_checkpoint kept;
    bool have = false;
    char kept_path[STATION_PATH_MAX];
    int lock = -1;
    CT_GUARD(station_state_lock(dir, &lock)); /* as station_log_witness: no older one put back over a newer */
    CT_GUARD(kept_load(dir, v, kept_path, &kept_note, &kept, &have));
    bool newer = !have || cp->size > kept.size ||
                 (cp->size == kept.size && cp->has_audit && (!kept.has_audit || cp->audit_entries > kept.audit_entries));
    if (newer) {
        if (have) CT_GUARD(ct_http_log_extends(c, kept_path, &kept, cp, NULL));
        CT_GUARD(ct_file_write_atomic(kept_path, note->data, note->len, 0644));
    } else { /* another camera's, newer, kept meanwhile: the two must be one log too */
        CT_GUARD(ct_http_log_extends(c, "checkpoint of a camera's proofs", cp, &kept, NULL));
    }
cleanup:
    if (lock >= 0) close(lock); /* and the lock with it */
    ct_buf_free(&kept_note);
    return rc;
}

/* An opened, installed station and its EST client to the CA at ca_url. */
static ct_err station_connect(const char *dir, const char *ca_url, int timeout_ms, station *st, ct_http_client **c)
{
    char trust[STATION_PATH_MAX], chain[STATION_PATH_MAX];
    CT_GUARD_RET(station_installed(dir, trust, chain));
    CT_GUARD_RET(station_open(dir, 1, st));
    ct_http_config ec = station_est_config(st, ca_url, trust, chain, timeout_ms);
    return ct_http_client_new(&ec, c);
}

ct_err station_log_check(const char *dir, const char *ca_url, int timeout_ms, char *summary, size_t summary_max)
{
    ct_err rc = CT_OK;
    station st;
    ct_http_client *c = NULL;
    memset(&st, 0, sizeof st);
    CT_GUARD(station_connect(dir, ca_url, timeout_ms, &st, &c));
    CT_GUARD(station_log_witness(&st, c, timeout_ms > 0 ? timeout_ms : FACTORY_DEFAULT_TIMEOUT_MS, summary,
                                 summary_max));
cleanup:
    ct_http_client_free(c);
    station_close(&st);
    return rc;
}

ct_err station_log_show(const char *dir, ct_buf *note)
{
    ct_note_verifier v;
    ct_checkpoint kept;
    bool have = false;
    char path[STATION_PATH_MAX];
    CT_GUARD_RET(station_log_vkey(dir, &v));
    CT_GUARD_RET(kept_load(dir, &v, path, note, &kept, &have));
    CT_ENSURE_RET(have, ct_fail(CT_ERR_NOT_FOUND, "%s: no checkpoint kept yet (log check keeps one)", path));
    return CT_OK;
}

/* Another's checkpoint: signed by the CA's key, or (a witness's state.note keeps only its own cosignature)
 * cosigned by a witness this station counts (log.witnesses): that witness verified the CA's signature. */
static ct_err other_open(const char *dir, const char *path, const ct_note_verifier *v, ct_buf *note, ct_checkpoint *cp)
{
    ct_err rc = CT_OK;
    station st;
    ct_note_verifier *w = NULL;
    size_t nw = 0, text_len = 0;
    uint64_t t = 0;
    char why[256];
    CT_GUARD(ct_file_read(path, CT_NOTE_MAX, note));
    rc = ct_checkpoint_open(note->data, note->len, v, cp);
    if (rc != CT_ERR_INTEGRITY) goto cleanup; /* the CA's signature, or malformed */
    CT_GUARD(ct_strlcpy(why, sizeof why, ct_err_detail()));
    CT_GUARD(station_settings_load(dir, &st));
    w = calloc(CT_COSIG_WITNESSES_MAX, sizeof *w);
    CT_ENSURE(w, CT_ERR_NOMEM);
    CT_GUARD(ct_cosig_verifiers_load(st.witnesses_path, w, CT_COSIG_WITNESSES_MAX, &nw));
    for (size_t i = 0; i < nw; i++) {
        if (ct_cosig_open(note->data, note->len, &w[i], &text_len, &t) != CT_OK) continue;
        CT_GUARD(ct_checkpoint_parse(note->data, text_len, cp));
        CT_ENSURE_MSG(strcmp(cp->origin, v->name) == 0, CT_ERR_INTEGRITY, "a checkpoint of log %.80s, not of %.80s",
                      cp->origin, v->name);
        goto cleanup;
    }
    rc = ct_fail(CT_ERR_INTEGRITY, "not signed by the pinned log key (%.80s), nor cosigned by any of the %zu witnesses "
                                   "in log.witnesses", why, nw);
cleanup:
    free(w);
    return rc;
}

ct_err station_log_compare(const char *dir, const char *other_path, const char *ca_url, int timeout_ms, char *summary,
                           size_t summary_max)
{
    ct_err rc = CT_OK;
    ct_note_verifier v;
    ct_buf kept_note = CT_BUF_INIT, other_note = CT_BUF_INIT;
    ct_checkpoint kept, other;
    station st;
    ct_http_client *c = NULL;
    bool have = false, holds = false;
    char kept_path[STATION_PATH_MAX];
    memset(&st, 0, sizeof st);
    CT_GUARD(station_log_vkey(dir, &v));
    CT_GUARD(kept_load(dir, &v, kept_path, &kept_note, &kept, &have));
    CT_ENSURE_MSG(have, CT_ERR_NOT_FOUND, "%s: no checkpoint kept yet (log check keeps one)", kept_path);
    if ((rc = other_open(dir, other_path, &v, &other_note, &other)) != CT_OK) {
        rc = ct_fail_ctx(rc, "%s", other_path);
        goto cleanup;
    }
    bool kept_first = kept.size < other.size || (kept.size == other.size && kept.audit_entries <= other.audit_entries);
    const ct_checkpoint *a = kept_first ? &kept : &other, *b = a == &kept ? &other : &kept;
    const char *a_path = a == &kept ? kept_path : other_path, *b_path = a == &kept ? other_path : kept_path;
    unsigned long long as = a->size, bs = b->size;
    /* The audit chain each binds: one history has one hash per length, and never fewer entries in a larger tree. */
    if (a->has_audit && b->has_audit) {
        CT_ENSURE_MSG(!(a->audit_entries == b->audit_entries &&
                        memcmp(a->audit_hash, b->audit_hash, sizeof a->audit_hash) != 0),
                      CT_ERR_INTEGRITY, "the CA's audit chain forked: %s (size %llu) and %s (size %llu) bind other "
                      "audit chains of %llu entries", a_path, as, b_path, bs, (unsigned long long)a->audit_entries);
        CT_ENSURE_MSG(a->audit_entries <= b->audit_entries, CT_ERR_INTEGRITY,
                      "the CA's log forked: %s (size %llu) binds more audit entries than %s (size %llu)", a_path, as,
                      b_path, bs);
    }
    /* Two audit roots of different lengths: only the CA's proof of the audit tree shows one chain extends the other. */
    bool audit_proof = a->has_audit_root && b->has_audit_root && a->audit_entries > 0 &&
                       a->audit_entries != b->audit_entries;
    if ((as != bs && as > 0) || audit_proof) {
        /* The advice first: a detail past its bound is cut at the end, and the paths can be long. */
        CT_ENSURE_MSG(ca_url, CT_ERR_USAGE, "give --ca URL: only the CA's consistency proofs can compare %s (size %llu, "
                      "%llu audit entries) and %s (size %llu, %llu)", a_path, as,
                      (unsigned long long)a->audit_entries, b_path, bs, (unsigned long long)b->audit_entries);
        CT_GUARD(station_connect(dir, ca_url, timeout_ms, &st, &c));
    }
    CT_GUARD(ct_http_log_audit_consistent(c, a, b, &holds));
    CT_ENSURE_MSG(holds, CT_ERR_INTEGRITY, "the CA's audit chain forked: %s (%llu audit entries) and %s (%llu) bind "
                  "audit chains the CA proves no path between", a_path, (unsigned long long)a->audit_entries, b_path,
                  (unsigned long long)b->audit_entries);
    CT_GUARD(ct_http_log_consistent(c, a, b, &holds, NULL));
    CT_ENSURE_MSG(holds, CT_ERR_INTEGRITY, "the CA's log forked: %s (size %llu) and %s (size %llu) %s", a_path, as,
                  b_path, bs, as == bs ? "have other roots" : "are not consistent (the CA proves no path between them)");
    CT_GUARD(ct_snprintf(summary, summary_max, "one history: %s (size %llu) and %s (size %llu) are consistent", a_path,
                         as, b_path, bs));
cleanup:
    ct_http_client_free(c);
    station_close(&st);
    ct_buf_free(&kept_note);
    ct_buf_free(&other_note);
    return rc;
}
