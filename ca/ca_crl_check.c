/* Judging a stored CRL (crls_signed: whoever can write the database can put back an older CRL the signer really
 * signed) on its DER against the database, for the two that rely on it: a serving node before it serves or adopts
 * the stored CRL (ca_ocsp.c crl_consistent), and audit verify and the server's start (ca_crls_stored_verify), which
 * also hold it to what the MACed audit records of the CRLs stored (db_crl_stored_latest). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

static const char *kind_name(const ca_generation *g) { return g->kind == CA_CRL_OPS ? "operations" : "device"; }

ct_err ca_crl_judge(ca *c, const ca_generation *g, const ct_buf *der, time_t after, ca_crl_judged *out)
{
    ct_err rc = CT_OK;
    db_revoked *list = NULL;
    pki_revoked *entries = NULL, *due = NULL;
    size_t n = 0, n_due = 0, missing = 0;
    memset(out, 0, sizeof *out);
    if (pki_crl_read(der->data, der->len, g->s.cert_der.data, g->s.cert_der.len, &out->info) != CT_OK)
        return ct_fail_ctx(CT_ERR_UNAVAILABLE, "the stored CRL is not one the %s issuing CA generation %lld signed",
                           kind_name(g), (long long)g->generation);
    CT_GUARD(ca_crl_revoked(c, g, &list, &entries, &n));
    due = calloc(n ? n : 1, sizeof *due);
    CT_ENSURE(due, CT_ERR_NOMEM);
    /* Due: revoked not after its thisUpdate, give or take the nodes' clock agreement (a lease), or `after`. */
    time_t by = out->info.this_update - (time_t)(c->cfg.lease_ms / 1000);
    if (after > by) by = after;
    for (size_t i = 0; i < n; i++) {
        if (entries[i].revoked_at > out->newest) out->newest = entries[i].revoked_at;
        if (entries[i].revoked_at <= by) due[n_due++] = entries[i];
    }
    out->revoked = n;
    CT_GUARD(pki_crl_missing(&out->info, entries, n, &missing));
    if (missing == n) goto cleanup;
    CT_GUARD(ct_strlcpy(out->lacking, sizeof out->lacking, entries[missing].serial_hex));
    CT_GUARD(pki_crl_missing(&out->info, due, n_due, &missing));
    if (missing == n_due) goto cleanup;
    CT_GUARD(ct_strlcpy(out->due, sizeof out->due, due[missing].serial_hex));
    out->due_at = due[missing].revoked_at;
cleanup:
    free(due);
    free(list);
    free(entries);
    return rc;
}

/* Generation g's stored CRL, judged: CT_ERR_INTEGRITY with report->reason; report->warning (the first) for one
 * past its nextUpdate. */
static ct_err stored_judge(ca *c, const ca_generation *g, const ct_buf *der, db_state_report *report)
{
    db_crl_stored rec;
    ca_crl_judged j;
    char label[96], when[CT_TIME_UTC_MAX];
    CT_GUARD_RET(db_crl_stored_latest(c->db, g->id, g->kind == CA_CRL_OPS ? DB_CRL_OPS : DB_CRL_DEVICE, &rec));
    CT_GUARD_RET(ct_snprintf(label, sizeof label, "the stored %s CRL of generation %lld", kind_name(g),
                             (long long)g->generation));
    ct_err rc = ca_crl_judge(c, g, der, 0, &j);
    if (rc == CT_ERR_UNAVAILABLE) return db_state_differs(report, "%s", ct_err_detail());
    CT_GUARD_RET(rc);
    int64_t number = (int64_t)j.info.number;
    /* The signer stores a generation's CRLs in cRLNumber order (db_crl_signed_put): a lower one was put back. */
    if (number < rec.number) {
        CT_GUARD_RET(ca_crl_judge(c, g, der, (time_t)rec.this_update, &j));
        ct_time_utc(j.due_at, when);
        if (j.due[0])
            return db_state_differs(report, "%s (number %lld) does not list certificate %s, revoked at %s: the signer "
                                    "stored number %lld since (an older CRL put back)", label, (long long)number, j.due,
                                    when, (long long)rec.number);
        return db_state_differs(report, "%s is number %lld, older than number %lld the signer stored (audit entry "
                                "%lld; an older CRL put back)", label, (long long)number, (long long)rec.number,
                                (long long)rec.seq);
    }
    if (number > rec.issued_max)
        return db_state_differs(report, "%s is number %lld, above the highest the audit records issued (%lld)", label,
                                (long long)number, (long long)rec.issued_max);
    if (j.due[0]) {
        ct_time_utc(j.due_at, when);
        return db_state_differs(report, "%s (number %lld) does not list certificate %s, revoked at %s, before it was "
                                "signed", label, (long long)number, j.due, when);
    }
    /* Revocations after it was signed (a `revoke` while no server ran): lagging, the signer re-signs it. */
    if (j.info.next_update <= time(NULL) && !report->warning[0]) {
        ct_time_utc(j.info.next_update, when);
        CT_GUARD_RET(ct_snprintf(report->warning, sizeof report->warning, "%s (number %lld) is past its nextUpdate "
                                 "(%s): stale, not tampered with; a signer node re-signs it when it runs", label,
                                 (long long)number, when));
    }
    return CT_OK;
}

ct_err ca_crls_stored_verify(ca *c, db_state_report *report)
{
    for (size_t i = 0; i < c->n_gens; i++) {
        db_signed_crl kept;
        ct_err rc = db_crl_signed_get(c->db, c->gens[i].id, &kept);
        if (rc == CT_ERR_NOT_FOUND) continue; /* no node served it yet */
        CT_GUARD_RET(rc);
        if (!kept.wanted) rc = stored_judge(c, &c->gens[i], &kept.der, report);
        ct_buf_free(&kept.der);
        CT_GUARD_RET(rc);
        report->rows++;
    }
    return CT_OK;
}
