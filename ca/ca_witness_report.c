/* POST /log/witness-report: a witness (or anyone) reports two checkpoints of this CA's log that cannot both be
 * true. The report proves itself, so nobody needs to trust who sent it and nobody can forge one: both notes must
 * carry this CA's own log signature, and either they are two trees of one size with different roots, or this
 * database does not extend one of them (its audit entry or its tree is not there, or the newest checkpoint is not
 * consistent with it: a fork or a rollback, checked as `audit verify --checkpoint` does). Only then is it kept
 * (table log_witness_reports, audit event "log.witness_report") and flagged in the officer console; anything else
 * is a one-line 4xx refusal and nothing is recorded. A fork of the audit chain the notes bind (not of the tree) is
 * named as such: by the notes alone (one audit length, two hashes), or by the report ("fork audit") once this
 * database confirmed a contradiction. And the witnesses' part of GET /officer/api/checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define REPORTS_SHOWN 20

/* Opens one of the report's notes with this CA's log key: 400 malformed, 403 not signed by it. */
static ct_err open_note(ca *c, const char *which, const uint8_t *note, size_t len, ct_checkpoint *cp)
{
    ct_err rc = ct_checkpoint_open(note, len, &c->note_vkey, cp);
    if (rc == CT_OK) return CT_OK;
    return ct_fail_ctx(rc == CT_ERR_BAD_REQUEST ? CT_ERR_BAD_REQUEST : CT_ERR_FORBIDDEN,
                       "the %s checkpoint is not one this CA's log key signed", which);
}

/* CT_OK when this database extends `cp`; CT_ERR_INTEGRITY (the reason in `why`) when it does not. */
static ct_err db_extends(ca *c, const char *which, const ct_checkpoint *cp, char *why, size_t why_max)
{
    ct_err rc = ca_log_extends(c, cp);
    if (rc != CT_ERR_INTEGRITY) return rc;
    (void)ct_fail_ctx(rc, "this database does not extend the %s checkpoint (size %llu)", which,
                      (unsigned long long)cp->size);
    CT_GUARD_RET(ct_strlcpy(why, why_max, ct_err_detail()));
    return CT_ERR_INTEGRITY;
}

/* The configured witness whose cosignature the kept checkpoint carries (who kept it), "" when none. */
static ct_err reporter(ca *c, const ct_witness_report *r, char *name, size_t name_max)
{
    ct_err rc = CT_OK;
    size_t nw = 0, text_len = 0;
    uint64_t t = 0;
    ct_note_verifier *w = calloc(CA_WITNESSES_MAX, sizeof *w);
    CT_ENSURE(w, CT_ERR_NOMEM);
    name[0] = '\0';
    CT_GUARD(ca_witnesses_load(c, w, CA_WITNESSES_MAX, &nw));
    for (size_t i = 0; i < nw; i++) {
        if (ct_cosig_open(r->kept, r->kept_len, &w[i], &text_len, &t) != CT_OK) continue;
        CT_GUARD(ct_strlcpy(name, name_max, w[i].name));
        break;
    }
cleanup:
    free(w);
    return rc;
}

ct_err ca_witness_report_answer(ca *c, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    ct_witness_report r;
    ct_checkpoint kept, served;
    db_witness_report row = {0};
    char *text = NULL;
    bool added = false;
    CT_ENSURE_MSG(!rq->body_too_large && rq->body_len <= CT_WITNESS_REPORT_MAX, CT_ERR_TOO_LARGE,
                  "a witness report is at most %d bytes", CT_WITNESS_REPORT_MAX);
    CT_ENSURE_MSG(rq->body && rq->body_len > 0 && !memchr(rq->body, 0, rq->body_len), CT_ERR_BAD_REQUEST,
                  "a witness report is text: \"camtrust witness report v1\", the kept and the served checkpoint, the proof");
    CT_GUARD(ct_witness_report_parse(rq->body, rq->body_len, &r));
    CT_GUARD(open_note(c, "kept", r.kept, r.kept_len, &kept));
    CT_GUARD(open_note(c, "served", r.served, r.served_len, &served));
    row.kept_size = kept.size;
    row.served_size = served.size;
    bool back = served.size < kept.size || (kept.has_audit && served.has_audit && served.audit_entries < kept.audit_entries);
    CT_GUARD(ct_strlcpy(row.kind, sizeof row.kind, back ? "rollback" : "fork"));
    if (kept.size == served.size && memcmp(kept.root, served.root, sizeof kept.root) != 0) {
        CT_GUARD(ct_strlcpy(row.kind, sizeof row.kind, "fork")); /* the two notes alone prove it */
        CT_GUARD(ct_snprintf(row.reason, sizeof row.reason, "two signed trees of %llu leaves with different roots",
                             (unsigned long long)kept.size));
    } else if (kept.has_audit && served.has_audit && kept.audit_entries == served.audit_entries &&
               memcmp(kept.audit_hash, served.audit_hash, sizeof kept.audit_hash) != 0) {
        /* The notes alone prove it too: one hash chain has one hash per length (a decision undone, another in its
         * place). Named as the audit chain's fork, which the trees (maybe equal) do not show. */
        CT_GUARD(ct_strlcpy(row.kind, sizeof row.kind, "fork"));
        CT_GUARD(ct_snprintf(row.reason, sizeof row.reason, "the CA's audit chain forked: two signed checkpoints bind "
                             "audit entry %llu to different hashes", (unsigned long long)kept.audit_entries));
    } else {
        /* Against this database, as audit verify --checkpoint: a tree or audit entry it signed is not here. */
        rc = db_extends(c, "kept", &kept, row.reason, sizeof row.reason);
        if (rc == CT_OK) rc = db_extends(c, "served", &served, row.reason, sizeof row.reason);
        CT_ENSURE_MSG(rc != CT_OK, CT_ERR_BAD_REQUEST,
                      "not an inconsistency: this CA's log extends both checkpoints (sizes %llu and %llu)",
                      (unsigned long long)kept.size, (unsigned long long)served.size);
        if (rc == CT_ERR_BAD_REQUEST) rc = ct_fail_ctx(rc, "the report's checkpoints"); /* not camtrust checkpoints */
        CT_ENSURE(rc == CT_ERR_INTEGRITY, rc);
        rc = CT_OK;
        if (r.audit) { /* the witness's finding (its proof the audit tree's), the contradiction this CA's own */
            char found[sizeof row.reason];
            memcpy(found, row.reason, sizeof found);
            CT_GUARD(ct_snprintf(row.reason, sizeof row.reason, "the witness found the CA's audit chain forked: %.200s",
                                 found));
        }
    }
    CT_GUARD(reporter(c, &r, row.witness, sizeof row.witness));
    text = malloc(rq->body_len + 1);
    CT_ENSURE(text, CT_ERR_NOMEM);
    memcpy(text, rq->body, rq->body_len);
    text[rq->body_len] = '\0';
    CT_GUARD(db_log_witness_report_add(c->db, &row, text, "witness", &added));
    ct_log(CT_LOG_ERROR, "log_witness_report", "id=%lld new=%d witness=%s kind=%s kept=%llu served=%llu reason=%s",
           (long long)row.id, added, CT_LOGQ(row.witness[0] ? row.witness : "(none)"), row.kind,
           (unsigned long long)row.kept_size, (unsigned long long)row.served_size, CT_LOGQ(row.reason));
    CT_GUARD(ct_buf_alloc(&ans->body, sizeof row.reason + 128));
    CT_GUARD(ct_buf_appendf(&ans->body, "%s witness report %lld: %s: %s\n", added ? "recorded" : "already recorded",
                            (long long)row.id, row.kind, row.reason));
    ans->content_type = "text/plain; charset=utf-8";
    CT_GUARD(ct_snprintf(ans->reason, sizeof ans->reason, "witness report %lld %s", (long long)row.id, row.kind));
cleanup:
    free(text);
    return rc;
}

/* ---- GET /officer/api/checkpoint: the witnesses' part ---- */

typedef struct {
    const char *name; /* NULL: all */
    ct_buf *out;      /* NULL: count only */
    size_t count;
    int64_t now;
} report_walk;

static ct_err report_row(void *arg, const db_witness_report *r)
{
    report_walk *w = arg;
    if (w->name && strcmp(w->name, r->witness) != 0) return CT_OK;
    if (w->out) {
        CT_GUARD_RET(ct_buf_appendf(w->out, "%s{\"id\":%lld,\"received\":%lld,\"age_s\":%lld,\"witness\":",
                                    w->count ? "," : "", (long long)r->id, (long long)r->received,
                                    (long long)(w->now - r->received)));
        CT_GUARD_RET(ct_json_string(w->out, r->witness));
        CT_GUARD_RET(ct_buf_appendf(w->out, ",\"kind\":\"%s\",\"kept_size\":%llu,\"served_size\":%llu,\"reason\":",
                                    r->kind, (unsigned long long)r->kept_size, (unsigned long long)r->served_size));
        CT_GUARD_RET(ct_json_string(w->out, r->reason));
        CT_GUARD_RET(ct_buf_append(w->out, "}", 1));
    }
    w->count++;
    return CT_OK;
}

ct_err ca_witness_json(ca *c, const ct_note_verifier *w, ct_buf *out)
{
    char vkey[CT_NOTE_VKEY_MAX];
    uint64_t t = 0;
    int64_t now = (int64_t)time(NULL);
    CT_GUARD_RET(ct_cosig_verifier_format(w, vkey, sizeof vkey));
    ct_err rc = db_log_cosignature_newest(c->db, vkey, &t);
    CT_ENSURE_RET(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    bool ever = rc == CT_OK;
    report_walk walk = {.name = w->name, .now = now};
    CT_GUARD_RET(db_log_witness_reports(c->db, 1000, report_row, &walk));
    if (ever)
        CT_GUARD_RET(ct_buf_appendf(out, ",\"newest_time\":%llu,\"newest_age_s\":%lld", (unsigned long long)t,
                                    (long long)(now - (int64_t)t)));
    return ct_buf_appendf(out, ",\"stale\":%s,\"reported\":%zu",
                          !ever || now - (int64_t)t > c->cfg.witness_max_age_s ? "true" : "false", walk.count);
}

size_t ca_witness_json_max(size_t witnesses)
{
    return witnesses * 160 + REPORTS_SHOWN * (sizeof(((db_witness_report *)0)->reason) * 6 + 1024) + 256;
}

ct_err ca_witness_reports_json(ca *c, ct_buf *out)
{
    report_walk walk = {.out = out, .now = (int64_t)time(NULL)};
    CT_GUARD_RET(ct_buf_appendf(out, ",\"witness_max_age_s\":%ld,\"reports\":[", c->cfg.witness_max_age_s));
    CT_GUARD_RET(db_log_witness_reports(c->db, REPORTS_SHOWN, report_row, &walk));
    return ct_buf_append(out, "]", 1);
}
