/* Administration commands: stations, production orders, audit. Each is audited with actor "cli". */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define ADMIN_ACTOR "cli"
#define ORDER_MAX_SERIALS 1000000
#define SERIALS_FILE_MAX (64 * 1024 * 1024)
#define DAY_SECONDS 86400

bool ca_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= DB_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

ct_err ca_own_actor_refuse(const char *what, const char *name, ct_err code)
{
    /* The CA's own audit actors: a station's or a node's bare name equal to one would read as the CA's entries. */
    static const char *const own_actors[] = {"ca", CA_SERVER_ACTOR, ADMIN_ACTOR, "unknown"};
    for (size_t i = 0; i < sizeof own_actors / sizeof own_actors[0]; i++)
        CT_ENSURE_RET(strcmp(name, own_actors[i]) != 0,
                      ct_fail(code, "%s '%s' is one of the CA's own audit actors (ca, " CA_SERVER_ACTOR ", " ADMIN_ACTOR
                                    ", unknown)",
                              what, name));
    return CT_OK;
}

ct_err ca_client_cert_issue(ca *c, const char *name, const char *profile, const char *csr_path, ct_buf *cert,
                            db_cert_record *rec)
{
    ct_err rc = CT_OK;
    ct_buf csr_der = CT_BUF_INIT;
    pki_csr *csr = NULL;
    pki_issued_info issued;
    CT_GUARD(ca_read_csr_file(csr_path, &csr_der));
    /* Proof of possession: the client signed its own CSR with the key in its own token. */
    CT_GUARD(pki_csr_parse(csr_der.data, csr_der.len, &csr));
    size_t spki_len;
    const uint8_t *spki = pki_csr_spki(csr, &spki_len);
    time_t now = time(NULL);
    pki_cert_template t = {.profile = PKI_PROFILE_CLIENT, .cn = name, .organization = c->cfg.organization,
                           .not_before = now - 300, .not_after = now + (time_t)c->cfg.station_days * DAY_SECONDS};
    const ca_signer *s = &c->signers[CA_KEY_OPS_ISSUING];
    CT_GUARD(ct_buf_alloc(cert, PKI_MAX_CERT_DER));
    CT_GUARD(pki_cert_issue(&t, spki, spki_len, s->cert_der.data, s->cert_der.len, s->key, cert, &issued));
    /* Recorded like every certificate the CA issues, so that it can be revoked (operations CRL). */
    *rec = (db_cert_record){.not_before = t.not_before, .not_after = t.not_after, .der = cert->data,
                            .der_len = cert->len, .issuing_ca = ca_issuing_id(c, CA_CRL_OPS)};
    CT_GUARD(ct_strlcpy(rec->cert_serial_hex, sizeof rec->cert_serial_hex, issued.serial_hex));
    CT_GUARD(ct_strlcpy(rec->device_serial, sizeof rec->device_serial, name));
    CT_GUARD(ct_strlcpy(rec->profile, sizeof rec->profile, profile));
    CT_GUARD(ct_snprintf(rec->subject, sizeof rec->subject, "CN=%s", name));
    pki_csr_spki_sha256(csr, rec->spki_sha256);
cleanup:
    pki_csr_free(csr);
    ct_buf_free(&csr_der);
    if (rc != CT_OK) ct_buf_free(cert);
    return rc;
}

ct_err ca_client_cert_write(ca *c, const char *out_path, const ct_buf *cert)
{
    /* The client presents its certificate with the issuing CA, so the server can build the chain. */
    const ct_buf *chain[] = {cert, &c->signers[CA_KEY_OPS_ISSUING].cert_der};
    return ca_write_pem_chain(out_path, chain, 2);
}

ct_err ca_station_add(ca *c, const char *name, const char *csr_path, const char *out_path)
{
    ct_err rc = CT_OK;
    ct_buf cert = CT_BUF_INIT;
    db_cert_record rec;
    db_station existing;
    CT_ENSURE_MSG(ca_name_valid(name), CT_ERR_USAGE, "station name '%.64s': use 1-63 letters, digits, '-', '_', '.'", name);
    CT_GUARD(ca_own_actor_refuse("station name", name, CT_ERR_USAGE)); /* its audit actor is its bare name */
    rc = db_station_find(c->db, name, &existing);
    CT_ENSURE_MSG(rc == CT_ERR_NOT_FOUND, rc == CT_OK ? CT_ERR_EXISTS : rc, "station %s exists already", name);
    rc = CT_OK;
    CT_GUARD(ca_client_cert_issue(c, name, DB_PROFILE_STATION, csr_path, &cert, &rec));
    CT_GUARD(db_station_add(c->db, name, &rec, ADMIN_ACTOR));
    CT_GUARD(ca_client_cert_write(c, out_path, &cert));
cleanup:
    ct_buf_free(&cert);
    return rc;
}

ct_err ca_station_set_enabled(ca *c, const char *name, bool enabled)
{
    return db_station_set_enabled(c->db, name, enabled, ADMIN_ACTOR);
}

/* Reads one serial per line; blank lines and '#' comments are skipped; each serial is checked. */
static ct_err read_serials(const char *path, ct_buf *file, char ***out, size_t *count)
{
    ct_err rc = CT_OK;
    char **list = NULL;
    size_t n = 0, cap = 0;
    rc = ct_file_read_stream(path, SERIALS_FILE_MAX, file); /* a pipe too: --serials <(seq ...) */
    CT_ENSURE_MSG(rc != CT_ERR_TOO_LARGE, rc, "%s is larger than %d bytes", path, SERIALS_FILE_MAX);
    CT_GUARD(rc);
    char *p = (char *)file->data, *end = p + file->len;
    for (size_t line = 1; p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        *stop = '\0';
        while (stop > p && (stop[-1] == '\r' || stop[-1] == ' ' || stop[-1] == '\t')) *--stop = '\0';
        while (*p == ' ' || *p == '\t') p++;
        if (*p && *p != '#') {
            CT_ENSURE_MSG(ca_serial_valid(p), CT_ERR_USAGE, "%s line %zu: '%.64s' is not a device serial (letters, digits, '-')",
                          path, line, p);
            CT_ENSURE_MSG(n < ORDER_MAX_SERIALS, CT_ERR_USAGE, "%s: more than %d serials", path, ORDER_MAX_SERIALS);
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                char **grown = realloc(list, cap * sizeof *list);
                CT_ENSURE(grown, CT_ERR_NOMEM);
                list = grown;
            }
            list[n++] = p;
        }
        p = nl ? nl + 1 : end;
    }
    CT_ENSURE_MSG(n > 0, CT_ERR_USAGE, "%s holds no serial numbers", path);
    *out = list;
    *count = n;
    list = NULL;
cleanup:
    free(list);
    return rc;
}

/* A camera's subject CN is "<model> <serial>" (device_cn), at most PKI_NAME_MAX - 1 bytes (within X.520's
 * ub-common-name, 64): an order whose model and serial do not fit could never be issued (each request a 500). */
static ct_err cn_fits(const char *model, const char *serial)
{
    size_t len = strlen(model) + 1 + strlen(serial);
    CT_ENSURE_RET(len < PKI_NAME_MAX, ct_fail(CT_ERR_USAGE, "model '%s' and serial '%s' make a subject CN of %zu "
                                              "characters: at most %d", model, serial, len, PKI_NAME_MAX - 1));
    return CT_OK;
}

ct_err ca_order_create(ca *c, const char *station, const char *model, const char *serials_path, int64_t *order_id)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT;
    char **serials = NULL;
    size_t n = 0;
    db_station st;
    CT_ENSURE_MSG(ca_name_valid(model), CT_ERR_USAGE, "model '%.64s': use 1-63 letters, digits, '-', '_', '.'", model);
    rc = db_station_find(c->db, station, &st);
    CT_ENSURE_MSG(rc != CT_ERR_NOT_FOUND, rc, "no station named %s", station);
    CT_GUARD(rc);
    CT_GUARD(read_serials(serials_path, &file, &serials, &n));
    for (size_t i = 0; i < n; i++) CT_GUARD(cn_fits(model, serials[i]));
    CT_GUARD(db_order_create(c->db, station, model, (const char *const *)serials, n, ADMIN_ACTOR, order_id));
cleanup:
    free(serials);
    ct_buf_free(&file);
    return rc;
}

static void print_order(const db_order *o, void *arg)
{
    fprintf(arg, "%-6lld %-8s %-20s %-24s %lld/%lld\n", (long long)o->id, o->open ? "open" : "closed", o->station,
            o->model, (long long)o->issued_count, (long long)o->serial_count);
}

ct_err ca_order_list(ca *c, FILE *out)
{
    fprintf(out, "%-6s %-8s %-20s %-24s %s\n", "order", "status", "station", "model", "issued/serials");
    return db_order_list(c->db, print_order, out);
}

ct_err ca_order_close(ca *c, int64_t order_id) { return db_order_close(c->db, order_id, ADMIN_ACTOR); }

ct_err ca_order_reprovision(ca *c, const char *station, const char *model, const char *serial, int64_t *order_id)
{
    CT_ENSURE_RET(ca_name_valid(model), ct_fail(CT_ERR_USAGE, "model '%.64s': use 1-63 letters, digits, '-', '_', '.'",
                                                model));
    CT_ENSURE_RET(ca_serial_valid(serial),
                  ct_fail(CT_ERR_USAGE, "'%.64s' is not a device serial (letters, digits, '-')", serial));
    CT_GUARD_RET(cn_fits(model, serial));
    return db_order_reprovision(c->db, station, model, serial, ADMIN_ACTOR, order_id);
}

ct_err ca_audit_verify(ca *c, db_audit_report *report) { return db_audit_verify(c->db, report); }

ct_err ca_state_verify(ca *c, db_state_report *report)
{
    int64_t t0 = ct_now_ms();
    CT_GUARD_RET(db_state_verify(c->db, report));
    ct_err rc = ca_crls_stored_verify(c, report); /* the state the signer stores for the other nodes, judged as they do */
    report->ms = ct_now_ms() - t0;
    return rc;
}

typedef struct {
    ca *c;
    db_audit_report *report;
    ct_err_saved err; /* the error detail is per thread */
} audit_job;

static void *audit_job_run(void *arg)
{
    audit_job *j = arg;
    ct_err_save(&j->err, db_audit_verify(j->c->db, j->report));
    return NULL;
}

ct_err ca_audit_state_verify(ca *c, db_audit_report *audit, db_state_report *state, ct_err *state_rc)
{
    audit_job j = {.c = c, .report = audit};
    pthread_t t;
    bool threaded = pthread_create(&t, NULL, audit_job_run, &j) == 0;
    if (!threaded) audit_job_run(&j);
    *state_rc = ca_state_verify(c, state);
    if (threaded) (void)pthread_join(t, NULL);
    return ct_err_restore(&j.err); /* when CT_OK, this thread's detail is still the state check's */
}
