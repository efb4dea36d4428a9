/* The enrollment policy: decided by the CA from its own records, never by what the CSR asks for. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define DAY_SECONDS 86400

typedef struct {
    db_station station;     /* for NEW */
    char budget_key[96];    /* its refusal budget: "station#ID", or "device#" and its certificate's SHA-256 */
    db_order order;         /* for NEW */
    db_cert current;        /* the device's current certificate, when it has one */
    char device[DB_SERIAL_MAX]; /* for RENEW: the serial of the device certificate that authenticated it */
    char identity[DB_CERT_SERIAL_HEX_MAX]; /* for RENEW: that certificate's serial (hex) */
    bool has_current;
    pki_csr *csr;
    const char *serial;
    const char *profile;
    pki_profile pki_profile;
    bool dns_name;
    char model[PKI_NAME_MAX];
} enroll_ctx;

ct_err ca_audit_denial(ca *c, const char *actor, const char *serial, ct_err why)
{
    return ca_audit_refusal(c, "est.enroll", actor, serial, why);
}

ct_err ca_audit_refusal(ca *c, const char *action, const char *actor, const char *subject, ct_err why)
{
    /* Copy: the audit call may itself set a detail. */
    char reason[256];
    if (ct_strlcpy(reason, sizeof reason, *ct_err_detail() ? ct_err_detail() : ct_err_message(why)) != CT_OK)
        reason[0] = '\0';
    ct_err arc = db_audit_append(c->db, actor, action, subject, "denied", reason);
    if (arc != CT_OK) ct_log(CT_LOG_ERROR, "audit", "msg=\"a denial not audited\" error=%s",
                            CT_LOGQ(*ct_err_detail() ? ct_err_detail() : ct_err_message(arc)));
    /* Every decision is recorded: one that cannot be (the audit key gone, the token or disk failing) is the CA
     * unable to serve, not a refusal the client could take for a recorded one. A 5xx stays what it was. */
    const char *said = reason[0] ? reason : ct_err_message(why);
    if (arc != CT_OK && ct_err_http_status(why) < 500)
        return ct_fail(CT_ERR_UNAVAILABLE, "the CA cannot record its refusal (%s)", said);
    return ct_fail(why, "%s", said);
}

/* An authenticated party's refusals are audit entries of their own (it can be stopped: a station disabled, a camera's
 * certificate revoked), within its budget: station.refusals_per_minute per enabled station, device.refusals_per_minute
 * per camera certificate re-enrolling. A compromised station sending serials outside its orders (or anyone with a
 * camera's key looping bad re-enrollments) wrote an entry (fsync, MAC in the token) per request, and every start
 * verifies them all. Past it they are counted (est.budget, per kind: the error's fixed message, no text the client
 * chose, or each serial would be a kind of its own); the client is still told the precise reason. Issuances never
 * take from the budget, nor a station's refusals that name a clone or a duplicate (a serial issued for another key,
 * a key certified for another serial, a serial differing only by case): a compromised station that spent its budget
 * on junk must not get those counted without their serial. A camera's take from its own (it renews only its own serial:
 * its identity key sent for media-signing was an entry per request), but for a key certified for another serial. */
/* A camera's refusal (409) of a key certified for another serial: a clone, or two cameras that made one key (a weak
 * generator), whose serial must not be lost in a count. Its own key of another profile (a loop) is not one. */
static bool key_of_another_device(ca *c, const enroll_ctx *x, ct_err why)
{
    char holder[DB_SERIAL_MAX];
    uint8_t spki_sha256[32];
    ct_err_saved refusal;
    if (why != CT_ERR_EXISTS || !x->csr) return false;
    ct_err_save(&refusal, why); /* its detail, which the entry or count is written with */
    pki_csr_spki_sha256(x->csr, spki_sha256);
    bool another = db_key_holder(c->db, spki_sha256, holder, sizeof holder) == CT_OK && strcmp(holder, x->device) != 0;
    (void)ct_err_restore(&refusal);
    return another;
}

static ct_err refuse_authenticated(ca *c, ca_enroll_kind kind, const enroll_ctx *x, const char *actor,
                                   const char *subject, ct_err why)
{
    char reason[CT_ERR_DETAIL_MAX];
    bool station = kind == CA_ENROLL_NEW;
    long per_minute = station ? c->cfg.station_refusals_per_minute : c->cfg.device_refusals_per_minute;
    bool audited = (station && (why == CT_ERR_ALREADY_ISSUED || why == CT_ERR_EXISTS)) ||
                   (!station && key_of_another_device(c, x, why)) ||
                   (station ? ca_actor_budget_take(c, x->budget_key, per_minute)
                            : ca_device_budget_take(c, x->budget_key, per_minute));
    if (audited) return ca_audit_denial(c, actor, subject, why);
    if (ct_strlcpy(reason, sizeof reason, *ct_err_detail() ? ct_err_detail() : ct_err_message(why)) != CT_OK)
        reason[0] = '\0';
    ct_err counted = ct_fail(why, "%s (past %s.refusals_per_minute, %ld)", ct_err_message(why),
                             station ? "station" : "device", per_minute);
    /* A station's count keeps its name; cameras (many) share audit.anonymous_max_rows with the others. */
    (void)(station ? ca_refuse_counted_station(c, actor, "est.budget", subject, counted)
                   : ca_refuse_counted(c, actor, "est.budget", subject, counted));
    return ct_fail(why, "%s", reason[0] ? reason : ct_err_message(why));
}

/* Who is asking: a known, enabled station (NEW) or a device with its current certificate (RENEW). */
static ct_err authenticate(ca *c, const ca_enroll_request *req, enroll_ctx *x, ca_enroll_result *res)
{
    uint8_t fp[32];
    CT_ENSURE_RET(req->client_cert && req->client_cert_len,
                  ct_fail(CT_ERR_UNAUTHENTICATED, "no TLS client certificate was presented"));
    CT_GUARD_RET(ct_sha256(req->client_cert, req->client_cert_len, fp));
    if (req->kind == CA_ENROLL_NEW) {
        ct_err rc = db_station_find_by_cert(c->db, fp, &x->station);
        if (rc == CT_ERR_NOT_FOUND) return ct_fail(CT_ERR_UNKNOWN_CLIENT, "the client certificate is not a registered station");
        /* DISABLED: the station's certificate is revoked; the refusal is still the station's. */
        if (rc == CT_OK || rc == CT_ERR_DISABLED) CT_GUARD_RET(ct_strlcpy(res->actor, sizeof res->actor, x->station.name));
        CT_GUARD_RET(rc);
        CT_ENSURE_RET(x->station.enabled, ct_fail(CT_ERR_DISABLED, "station %s is disabled", x->station.name));
        return ct_snprintf(x->budget_key, sizeof x->budget_key, "station#%lld", (long long)x->station.id);
    }
    pki_cert_info info;
    CT_ENSURE_RET(pki_cert_parse_info(req->client_cert, req->client_cert_len, &info) == CT_OK && *info.subject_serial,
                  ct_fail(CT_ERR_UNKNOWN_CLIENT, "the client certificate is not a device certificate"));
    CT_GUARD_RET(ct_strlcpy(x->device, sizeof x->device, info.subject_serial));
    /* Of a kind of its own: a serial may be a station's name too. */
    CT_GUARD_RET(ct_snprintf(res->actor, sizeof res->actor, CA_DEVICE_ACTOR "%s", info.subject_serial));
    /* The model is what the device's CN holds before its serial ("<model> <serial>"). */
    size_t cn_len = strlen(info.subject_cn), sn_len = strlen(info.subject_serial);
    if (cn_len > sn_len + 1 && strcmp(info.subject_cn + cn_len - sn_len, info.subject_serial) == 0)
        CT_GUARD_RET(ct_snprintf(x->model, sizeof x->model, "%.*s", (int)(cn_len - sn_len - 1), info.subject_cn));
    /* Only the device's current TLS identity certificate (not a superseded or revoked one) authenticates it,
     * whichever profile it renews. */
    db_cert identity = {0};
    ct_err rc = db_cert_find_current(c->db, info.subject_serial, CA_PROFILE_DEVICE, &identity);
    bool current = rc == CT_OK && identity.der.len == req->client_cert_len &&
                   memcmp(identity.der.data, req->client_cert, req->client_cert_len) == 0;
    ct_buf_free(&identity.der);
    if (current) CT_GUARD_RET(ct_strlcpy(x->identity, sizeof x->identity, identity.cert_serial_hex));
    CT_ENSURE_RET(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    CT_ENSURE_RET(current, ct_fail(CT_ERR_UNKNOWN_CLIENT, "the client certificate is not the current certificate of a device"));
    char fp_hex[2 * sizeof fp + 1];
    CT_GUARD_RET(ct_hex_encode(fp, sizeof fp, fp_hex, sizeof fp_hex));
    return ct_snprintf(x->budget_key, sizeof x->budget_key, "device#%s", fp_hex);
}

static ct_err check_csr(ca *c, const ca_enroll_request *req, enroll_ctx *x, ca_enroll_result *res)
{
    /* The proof of possession is verified in the CA's token: its ECDSA verify is ~5x the Debian wolfSSL's. */
    CT_GUARD_RET(pki_csr_parse_in(req->csr, req->csr_len, c->hsm, &x->csr));
    x->serial = pki_csr_subject_serial(x->csr);
    CT_ENSURE_RET(*x->serial, ct_fail(CT_ERR_NO_SERIAL, "the CSR subject has no serialNumber"));
    CT_ENSURE_RET(ca_serial_valid(x->serial),
                  ct_fail(CT_ERR_BAD_CSR, "serialNumber '%.64s' is not a device serial (letters, digits, '-')", x->serial));
    return ct_strlcpy(res->device_serial, sizeof res->device_serial, x->serial);
}

/* A camera certificate's subject CN: "<model> <serial>". */
static ct_err device_cn(const enroll_ctx *x, char *out, size_t max)
{
    return ct_snprintf(out, max, "%s %s", x->model, x->serial);
}

/* A camera certificate: the IEEE 802.1AR IDevID profile, or the media-signing profile. */
static ct_err issue(ca *c, const enroll_ctx *x, ct_buf *out, pki_issued_info *info)
{
    char cn[PKI_NAME_MAX], dns[DB_SERIAL_MAX + 130], crl_buf[300];
    size_t spki_len;
    const uint8_t *spki = pki_csr_spki(x->csr, &spki_len);
    time_t now = time(NULL);
    CT_GUARD_RET(device_cn(x, cn, sizeof cn));
    CT_GUARD_RET(ct_snprintf(dns, sizeof dns, "%s.%s", x->serial, c->cfg.device_domain));
    for (char *p = dns; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    pki_cert_template t = {
        .profile = x->pki_profile,
        .cn = cn,
        .serial_number = x->serial,
        .organization = c->cfg.organization,
        .dns_names = {x->dns_name ? dns : NULL, NULL},
        .not_before = now - 300,
        .not_after = c->cfg.device_days ? now + (time_t)c->cfg.device_days * DAY_SECONDS : PKI_NOT_AFTER_FOREVER,
        .crl_url = NULL, /* ca_crl_url: its generation's CRL */
        .ocsp_url = c->cfg.ocsp_url,
    };
    const ca_signer *s = &c->signers[CA_KEY_DEVICE_ISSUING];
    CT_GUARD_RET(ca_crl_url(c, crl_buf, sizeof crl_buf, &t.crl_url));
    CT_GUARD_RET(ct_buf_alloc(out, PKI_MAX_CERT_DER));
    return pki_cert_issue_by(s->issuer, &t, spki, spki_len, out, info);
}

static ct_err record(ca *c, const enroll_ctx *x, const ca_enroll_request *req, const ct_buf *der,
                     const pki_issued_info *issued, const char *actor)
{
    /* What was just written into the certificate (issue), not read back out of it. */
    db_cert_record rec = {.not_before = issued->not_before, .not_after = issued->not_after,
                          .station_id = req->kind == CA_ENROLL_NEW ? x->station.id : 0,
                          .order_id = req->kind == CA_ENROLL_NEW ? x->order.id : 0,
                          .der = der->data, .der_len = der->len, .issuing_ca = ca_issuing_id(c, CA_CRL_DEVICE),
                          .authenticated_by = req->kind == CA_ENROLL_RENEW ? x->identity : NULL};
    CT_GUARD_RET(ct_strlcpy(rec.cert_serial_hex, sizeof rec.cert_serial_hex, issued->serial_hex));
    CT_GUARD_RET(ct_strlcpy(rec.device_serial, sizeof rec.device_serial, x->serial));
    CT_GUARD_RET(ct_strlcpy(rec.profile, sizeof rec.profile, x->profile));
    CT_GUARD_RET(device_cn(x, rec.subject, sizeof rec.subject));
    pki_csr_spki_sha256(x->csr, rec.spki_sha256);
    const char *supersedes = req->kind == CA_ENROLL_RENEW && x->has_current ? x->current.cert_serial_hex : NULL;
    return db_cert_record_issuance(c->db, &rec, supersedes, actor);
}

/* A station that lost the answer asks again with the same key: it gets the same certificate (a decision recorded
 * too). */
static ct_err repeat_or_refuse(ca *c, const enroll_ctx *x, ca_enroll_result *res)
{
    uint8_t spki_hash[32];
    pki_csr_spki_sha256(x->csr, spki_hash);
    CT_ENSURE_RET(memcmp(spki_hash, x->current.spki_sha256, 32) == 0,
                  ct_fail(CT_ERR_ALREADY_ISSUED, "serial %s already has a %s certificate (%s) for another key", x->serial,
                          x->profile, x->current.cert_serial_hex));
    CT_GUARD_RET(ct_buf_alloc(&res->cert_der, x->current.der.len));
    CT_GUARD_RET(ct_buf_set(&res->cert_der, x->current.der.data, x->current.der.len));
    res->repeated = true;
    return db_audit_append(c->db, res->actor, "est.enroll", x->serial, "repeated", x->current.cert_serial_hex);
}

/* Each EST label names a certificate profile; a serial gets at most one current certificate per profile. */
static const struct {
    const char *label;
    pki_profile profile;
    bool dns_name;
} est_profiles[] = {
    {CA_PROFILE_DEVICE, PKI_PROFILE_DEVICE_ID, true},
    {CA_PROFILE_MEDIA_SIGNING, PKI_PROFILE_MEDIA_SIGNING, false},
};

static ct_err resolve_profile(const char *label, enroll_ctx *x)
{
    if (!label || !*label) label = CA_PROFILE_DEVICE;
    for (size_t i = 0; i < sizeof est_profiles / sizeof est_profiles[0]; i++) {
        if (strcmp(label, est_profiles[i].label) != 0) continue;
        x->profile = est_profiles[i].label;
        x->pki_profile = est_profiles[i].profile;
        x->dns_name = est_profiles[i].dns_name;
        return CT_OK;
    }
    return ct_fail(CT_ERR_NOT_FOUND, "unknown EST label '%.40s'", label);
}

ct_err ca_enroll(ca *c, const ca_enroll_request *req, ca_enroll_result *res)
{
    ct_err rc = CT_OK;
    enroll_ctx x = {0};
    ct_buf der = CT_BUF_INIT;
    pki_issued_info issued;
    memset(res, 0, sizeof *res);
    bool announced = false, authenticated = false;
    ct_err_clear();
    CT_GUARD(resolve_profile(req->label, &x));
    CT_GUARD(authenticate(c, req, &x, res));
    authenticated = true;
    /* Announced to the group commit, which waits a bounded while for issuances on their way (one sync for more);
     * only once authenticated, so that no anonymous client makes every batch wait. */
    db_issuances_coming(c->db, 1);
    announced = true;
    CT_GUARD(check_csr(c, req, &x, res));
    if (req->kind == CA_ENROLL_NEW) {
        rc = db_order_find_for_serial(c->db, x.station.id, x.serial, &x.order);
        CT_ENSURE_MSG(rc != CT_ERR_NOT_IN_ORDER, rc, "serial %s is not in an open order of station %s", x.serial,
                      x.station.name);
        CT_GUARD(rc);
        CT_GUARD(ct_strlcpy(x.model, sizeof x.model, x.order.model));
        /* An order made before order create refused it (ca_admin.c) may name a CN that cannot be built: its line is
         * refused as such, before anything is signed, not a 500 per request. */
        char cn[PKI_NAME_MAX];
        rc = device_cn(&x, cn, sizeof cn);
        CT_ENSURE_MSG(rc != CT_ERR_BUF_FULL, CT_ERR_FORBIDDEN, "order %lld: model '%s' and serial '%s' make a subject CN "
                      "over %d characters (close the order; open one with a shorter model)", (long long)x.order.id,
                      x.model, x.serial, PKI_NAME_MAX - 1);
        CT_GUARD(rc);
        rc = db_cert_find_current(c->db, x.serial, x.profile, &x.current);
        CT_ENSURE(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
        x.has_current = rc == CT_OK;
        rc = CT_OK;
        if (x.has_current) {
            CT_GUARD(repeat_or_refuse(c, &x, res));
            goto cleanup;
        }
    } else {
        CT_ENSURE_MSG(strcmp(x.serial, x.device) == 0, CT_ERR_FORBIDDEN,
                      "device %s may renew only its own serial, not %s", x.device, x.serial);
        rc = db_cert_find_current(c->db, x.serial, x.profile, &x.current);
        CT_ENSURE(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
        x.has_current = rc == CT_OK;
        rc = CT_OK;
    }
    ct_failpoint_hold("est:checked"); /* tests: the station is revoked or its order closed meanwhile */
    CT_GUARD(issue(c, &x, &der, &issued));
    rc = record(c, &x, req, &der, &issued, res->actor);
    if (rc == CT_ERR_ALREADY_ISSUED && req->kind == CA_ENROLL_NEW) {
        /* Another request for the same serial won the race: answer (and record) as a repeat would. */
        ct_buf_free(&x.current.der);
        CT_GUARD(db_cert_find_current(c->db, x.serial, x.profile, &x.current));
        CT_GUARD(repeat_or_refuse(c, &x, res));
        goto cleanup;
    }
    CT_GUARD(rc);
    ca_log_issued(c);
    res->cert_der = der;
    der = (ct_buf)CT_BUF_INIT;
cleanup:
    if (announced) db_issuances_coming(c->db, -1);
    if (rc != CT_OK) {
        const char *subject = x.serial ? x.serial : "";
        /* The CA's own failures (5xx: disk full, token) too, best effort: a failing audit is logged. What an
         * authenticated party asked for is an entry each (it can be stopped: disabled, revoked); a certificate
         * that names a party but does not authenticate it (a disabled station, a revoked or superseded device
         * certificate: a stolen key keeps working at TLS) is counted, like an anonymous client. */
        rc = !*res->actor   ? ca_refuse_anonymous(c, req->source, "est.enroll", subject, rc)
             : authenticated ? refuse_authenticated(c, req->kind, &x, res->actor, subject, rc)
                             : ca_refuse_counted(c, res->actor, "est.enroll", subject, rc);
        ct_buf_free(&res->cert_der);
    }
    ct_buf_free(&der);
    ct_buf_free(&x.current.der);
    pki_csr_free(x.csr);
    return rc;
}

ct_err ca_cacerts(ca *c, ct_buf *pkcs7_der)
{
    const ct_buf *a = &c->signers[CA_KEY_DEVICE_ISSUING].cert_der, *b = &c->signers[CA_KEY_DEVICE_ROOT].cert_der;
    const uint8_t *certs[] = {a->data, b->data};
    const size_t lens[] = {a->len, b->len};
    CT_GUARD_RET(ct_buf_alloc(pkcs7_der, a->len + b->len + 256));
    return pki_pkcs7_certs_only(certs, lens, 2, pkcs7_der);
}
