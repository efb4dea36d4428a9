/* The online CA under offline roots: the issuing CAs' requests (init, rotate), taking what the key ceremony made
 * (install), and the generations of each issuing CA. The token of a CA folder never holds a root key: an issuing
 * CA is certified only by the root vault's ceremony (camtrust-ca root sign). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca_priv.h"

#define INSTALL_MAX_FILES 8

const char *const ca_csr_file[2] = {[CA_CRL_DEVICE] = "device-issuing.csr", [CA_CRL_OPS] = "ops-issuing.csr"};
static const ca_key_role issuing_role[2] = {[CA_CRL_DEVICE] = CA_KEY_DEVICE_ISSUING, [CA_CRL_OPS] = CA_KEY_OPS_ISSUING};
static const ca_key_role root_role[2] = {[CA_CRL_DEVICE] = CA_KEY_DEVICE_ROOT, [CA_CRL_OPS] = CA_KEY_OPS_ROOT};
static const char *const kind_name[2] = {[CA_CRL_DEVICE] = "device-issuing", [CA_CRL_OPS] = "ops-issuing"};
static const char *const kind_cn[2] = {[CA_CRL_DEVICE] = "Device Issuing CA", [CA_CRL_OPS] = "Operations Issuing CA"};
static const char *const root_crl_file[2] = {[CA_CRL_DEVICE] = "root.crl", [CA_CRL_OPS] = "ops-root.crl"};

ct_err ca_generation_key_uri(const ca *c, ca_crl_kind kind, int64_t generation, char *uri, size_t max, char *label,
                             size_t label_max)
{
    const char *base = ca_key_default_label[issuing_role[kind]];
    if (generation <= 1) {
        CT_GUARD_RET(ct_strlcpy(label, label_max, base));
        return ct_strlcpy(uri, max, c->cfg.key_uri[issuing_role[kind]]);
    }
    CT_GUARD_RET(ct_snprintf(label, label_max, "%s-%lld", base, (long long)generation));
    return ct_snprintf(uri, max, "pkcs11:object=%s;type=private", label);
}

static ct_err csr_path(const ca *c, ca_crl_kind kind, char *path, size_t max)
{
    return ct_path_join(path, max, c->cfg.dir, ca_csr_file[kind]);
}

ct_err ca_generation_request(ca *c, ca_crl_kind kind, int64_t generation)
{
    ct_err rc = CT_OK;
    hsm_key *key = NULL;
    ct_buf der = CT_BUF_INIT;
    char uri[256], label[HSM_LABEL_MAX + 1], cn[PKI_NAME_MAX], path[CA_PATH_MAX];
    CT_GUARD(ca_generation_key_uri(c, kind, generation, uri, sizeof uri, label, sizeof label));
    rc = hsm_key_find(c->hsm, uri, &key);
    if (rc == CT_ERR_HSM_NO_KEY) { /* a configured key of generation 1 (another HSM) exists already */
        uint8_t id[3] = {0xca, (uint8_t)(issuing_role[kind] + 1), (uint8_t)generation};
        hsm_key_type type = strcmp(c->cfg.curve, "P-384") == 0 ? HSM_EC_P384 : HSM_EC_P256;
        rc = hsm_key_generate(c->hsm, type, label, id, generation <= 1 ? 2 : 3, &key);
    }
    CT_GUARD(rc);
    /* A distinct name per generation (verifiers that pick an issuer by name alone still find the right one), ending
     * as the vault's profile asks. */
    if (generation <= 1) CT_GUARD(ct_snprintf(cn, sizeof cn, "%.40s %s", c->cfg.organization, kind_cn[kind]));
    else CT_GUARD(ct_snprintf(cn, sizeof cn, "%.32s G%lld %s", c->cfg.organization, (long long)generation, kind_cn[kind]));
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CSR_DER));
    CT_GUARD(pki_csr_make(key, cn, NULL, &der));
    CT_GUARD(csr_path(c, kind, path, sizeof path));
    CT_GUARD(ct_pem_write_file(path, "CERTIFICATE REQUEST", der.data, der.len, 0644));
cleanup:
    hsm_key_free(key);
    ct_buf_free(&der);
    return rc;
}

int64_t ca_issuing_id(const ca *c, ca_crl_kind kind) { return c->current[kind] >= 0 ? c->gens[c->current[kind]].id : 0; }

int ca_generation_find(const ca *c, ca_crl_kind kind, int64_t generation)
{
    if (generation == 0) return c->current[kind];
    for (size_t i = 0; i < c->n_gens; i++)
        if (c->gens[i].kind == kind && c->gens[i].generation == generation) return (int)i;
    return -1;
}

ct_err ca_crl_url(const ca *c, char *out, size_t max, const char **url)
{
    int64_t generation = c->current[CA_CRL_DEVICE] >= 0 ? c->gens[c->current[CA_CRL_DEVICE]].generation : 1;
    *url = c->cfg.crl_url;
    if (!*c->cfg.crl_url || generation <= 1) return CT_OK;
    CT_GUARD_RET(ct_snprintf(out, max, "%s/device/%lld", c->cfg.crl_url, (long long)generation));
    *url = out;
    return CT_OK;
}

/* A token key and the certificate that must certify it. */
static ct_err key_matches(const hsm_key *key, const uint8_t *cert, size_t len, bool *match)
{
    ct_err rc = CT_OK;
    ct_buf spki = CT_BUF_INIT;
    uint8_t hash[32];
    pki_cert_info info;
    CT_GUARD(pki_cert_parse_info(cert, len, &info));
    CT_GUARD(ct_buf_alloc(&spki, 1024));
    CT_GUARD(hsm_key_public_der(key, &spki));
    CT_GUARD(ct_sha256(spki.data, spki.len, hash));
    *match = memcmp(hash, info.spki_sha256, 32) == 0;
cleanup:
    ct_buf_free(&spki);
    return rc;
}

static ct_err signer_load(ca *c, const char *uri, const ct_buf *cert, ca_signer *s)
{
    bool match = false;
    CT_GUARD_RET(hsm_key_find(c->hsm, uri, &s->key));
    CT_GUARD_RET(key_matches(s->key, cert->data, cert->len, &match));
    CT_ENSURE_RET(match, ct_fail(CT_ERR_CONFIG, "the recorded issuing CA certificate does not certify the key %s", uri));
    CT_GUARD_RET(ct_buf_alloc(&s->cert_der, cert->len));
    return ct_buf_set(&s->cert_der, cert->data, cert->len);
}

void ca_generations_free(ca *c)
{
    for (size_t i = 0; i < c->n_gens; i++) {
        hsm_key_free(c->gens[i].s.key);
        ct_buf_free(&c->gens[i].s.cert_der);
    }
    c->n_gens = 0;
    c->current[0] = c->current[1] = -1;
    for (int k = 0; k < 2; k++) {
        pki_issuer_free(c->signers[issuing_role[k]].issuer);
        hsm_key_free(c->signers[issuing_role[k]].key);
        ct_buf_free(&c->signers[issuing_role[k]].cert_der);
        c->signers[issuing_role[k]] = (ca_signer){0};
    }
}

/* A folder made before generations: its issuing CA certificate file is generation 1 (recorded once). */
static ct_err record_first_generations(ca *c, const db_issuing_ca *list, size_t n)
{
    for (int kind = 0; kind < 2; kind++) {
        bool have = false;
        for (size_t i = 0; i < n; i++) have = have || (int)list[i].kind == kind;
        char path[CA_PATH_MAX];
        CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, ca_key_cert_file[issuing_role[kind]]));
        if (have || !ct_file_exists(path)) continue;
        ct_buf der = CT_BUF_INIT;
        int64_t id = 0;
        ct_err rc = ca_read_cert_file(path, &der);
        if (rc == CT_OK)
            rc = db_issuing_ca_add(c->db, (db_crl_issuer)kind, 1, c->cfg.key_uri[issuing_role[kind]], der.data, der.len,
                                   "cli", "v=2 recorded=from-folder", &id);
        ct_buf_free(&der);
        CT_GUARD_RET(rc);
    }
    return CT_OK;
}

ct_err ca_generations_load(ca *c)
{
    ct_err rc = CT_OK;
    db_issuing_ca *list = NULL;
    size_t n = 0;
    ca_generations_free(c);
    CT_GUARD(db_issuing_ca_list(c->db, &list, &n));
    if (c->installed) {
        CT_GUARD(record_first_generations(c, list, n));
        db_issuing_ca_list_free(list, n);
        list = NULL;
        CT_GUARD(db_issuing_ca_list(c->db, &list, &n));
    }
    CT_ENSURE_MSG(n <= CA_GENERATIONS_MAX, CT_ERR_CONFIG, "%zu issuing CA generations: at most %d", n,
                  CA_GENERATIONS_MAX);
    for (size_t i = 0; i < n; i++) {
        ca_generation *g = &c->gens[c->n_gens];
        *g = (ca_generation){.id = list[i].id, .kind = (ca_crl_kind)list[i].kind, .generation = list[i].generation};
        c->n_gens++;
        CT_GUARD(signer_load(c, list[i].key_uri, &list[i].cert_der, &g->s));
        /* A row written around the CA (the database is not the token) must still be the roots' certificate. */
        const ct_buf *root = &c->signers[root_role[g->kind]].cert_der;
        CT_ENSURE_MSG(pki_cert_verify_signed_by(g->s.cert_der.data, g->s.cert_der.len, root->data, root->len,
                                                list[i].installed_at) == CT_OK,
                      CT_ERR_INTEGRITY, "the %s CA's generation %lld in the database is not signed by %s", kind_name[g->kind],
                      (long long)g->generation, ca_key_cert_file[root_role[g->kind]]);
        CT_GUARD(pki_cert_ids_get(g->s.cert_der.data, g->s.cert_der.len, &g->ids));
        c->current[g->kind] = (int)(c->n_gens - 1); /* listed by generation: the last one is current */
    }
    for (int kind = 0; kind < 2; kind++) {
        if (c->current[kind] < 0) continue;
        const db_issuing_ca *cur = NULL;
        for (size_t i = 0; i < n; i++)
            if (list[i].id == c->gens[c->current[kind]].id) cur = &list[i];
        ca_signer *s = &c->signers[issuing_role[kind]];
        CT_GUARD(signer_load(c, cur->key_uri, &cur->cert_der, s));
        CT_GUARD(pki_issuer_open(s->cert_der.data, s->cert_der.len, s->key, &s->issuer));
    }
cleanup:
    db_issuing_ca_list_free(list, n);
    return rc;
}

/* ---- rotate ---- */

static ct_err kind_parse(const char *which, ca_crl_kind *kind)
{
    for (int k = 0; k < 2; k++)
        if (strcmp(which, kind_name[k]) == 0) {
            *kind = (ca_crl_kind)k;
            return CT_OK;
        }
    return ct_fail(CT_ERR_USAGE, "'%.40s' cannot be rotated: device-issuing or ops-issuing", which);
}

/* The generation a ceremony's certificate would install for `kind`, and its key if made (NULL: none pending). */
static ct_err pending_key(ca *c, ca_crl_kind kind, int64_t *generation, hsm_key **key)
{
    char uri[256], label[HSM_LABEL_MAX + 1];
    *generation = c->current[kind] >= 0 ? c->gens[c->current[kind]].generation + 1 : 1;
    *key = NULL;
    CT_GUARD_RET(ca_generation_key_uri(c, kind, *generation, uri, sizeof uri, label, sizeof label));
    ct_err rc = hsm_key_find(c->hsm, uri, key);
    if (rc == CT_ERR_HSM_NO_KEY) {
        ct_err_clear();
        return CT_OK;
    }
    CT_GUARD_RET(rc);
    /* A later generation's key is always made here (rotate): one the token did not make was put there under its
     * label by someone holding the PIN, who may keep its value; rotate would ask the ceremony to certify it. */
    bool inside = false;
    if (*generation > 1 && (rc = hsm_key_made_inside(*key, &inside)) == CT_OK && !inside)
        rc = ct_fail(CT_ERR_FORBIDDEN, "the token's key '%s' was not made in it (imported: its value may be known "
                     "outside): it is never certified; delete it (pkcs11-tool --delete-object) and rotate again", label);
    if (rc != CT_OK) {
        hsm_key_free(*key);
        *key = NULL;
    }
    return rc;
}

ct_err ca_rotate(ca *c, const char *which, char *out_path, size_t out_max)
{
    ct_err rc = CT_OK;
    ca_crl_kind kind = CA_CRL_DEVICE;
    int64_t generation = 0;
    hsm_key *key = NULL;
    char path[CA_PATH_MAX], detail[160];
    CT_GUARD(kind_parse(which, &kind));
    CT_GUARD(csr_path(c, kind, path, sizeof path));
    CT_GUARD(pending_key(c, kind, &generation, &key));
    CT_ENSURE_MSG(!key || !ct_file_exists(path), CT_ERR_EXISTS, "the %s CA's generation %lld is pending already: its "
                  "request is %s; install the ceremony's certificate first", which, (long long)generation, path);
    /* A pending key without its request: a rotate cut off between the two. Its request is written again (the key
     * is found, not made twice), or the generation could never be certified nor another one made. */
    CT_GUARD(ca_generation_request(c, kind, generation));
    CT_GUARD(ct_snprintf(detail, sizeof detail, "v=2 which=%s generation=%lld request=%s%s", which,
                         (long long)generation, ca_csr_file[kind], key ? " key=existing" : ""));
    CT_GUARD(db_audit_append(c->db, "cli", "ca.rotate", which, "ok", detail));
    if (out_path) CT_GUARD(ct_strlcpy(out_path, out_max, path));
cleanup:
    hsm_key_free(key);
    return rc;
}

/* ---- install ---- */

typedef struct {
    const char *path;
    ct_buf der;
    pki_cert_info info;
} given_cert;

typedef struct {
    given_cert certs[INSTALL_MAX_FILES];
    size_t n_certs;
    ct_buf crls[INSTALL_MAX_FILES];
    const char *crl_paths[INSTALL_MAX_FILES];
    size_t n_crls;
    const given_cert *root[2];    /* the roots the issuing CAs chain to (the folder's, or given at first install) */
    ct_buf folder_root[2];        /* root.pem, ops-root.pem when installed already */
    const given_cert *issuing[2]; /* the new generation of each kind, or NULL */
    int64_t generation[2];
    bool resume[2];               /* the current generation's install, cut off after its row: completed */
    int crl_of[INSTALL_MAX_FILES]; /* whose CRL: a ca_crl_kind */
} install_plan;

static void plan_free(install_plan *p)
{
    for (size_t i = 0; i < p->n_certs; i++) ct_buf_free(&p->certs[i].der);
    for (size_t i = 0; i < p->n_crls; i++) ct_buf_free(&p->crls[i]);
    ct_buf_free(&p->folder_root[0]);
    ct_buf_free(&p->folder_root[1]);
}

static bool self_signed(const given_cert *g)
{
    return pki_cert_verify_signed_by(g->der.data, g->der.len, g->der.data, g->der.len, time(NULL)) == CT_OK;
}

static bool same_der(const ct_buf *a, const ct_buf *b) { return a->len == b->len && memcmp(a->data, b->data, a->len) == 0; }

/* Whether the request of `kind` is still in the folder and for the key `g` certifies: install removes it last, so
 * beside its installed generation it marks an install cut off (the database has the generation, the folder's files
 * and the certificates it signs may not). */
static ct_err request_answered_by(const ca *c, ca_crl_kind kind, const uint8_t cert_spki[32], bool *cut)
{
    ct_err rc = CT_OK;
    char path[CA_PATH_MAX];
    ct_buf der = CT_BUF_INIT;
    pki_csr *csr = NULL;
    uint8_t spki[32];
    *cut = false;
    CT_GUARD(csr_path(c, kind, path, sizeof path));
    if (!ct_file_exists(path)) goto cleanup;
    CT_GUARD(ct_pem_or_der_read(path, "CERTIFICATE REQUEST", PKI_MAX_CSR_DER, &der));
    CT_GUARD(pki_csr_parse(der.data, der.len, &csr));
    pki_csr_spki_sha256(csr, spki);
    *cut = memcmp(spki, cert_spki, sizeof spki) == 0;
cleanup:
    pki_csr_free(csr);
    ct_buf_free(&der);
    return rc;
}

ct_err ca_install_finished(ca *c)
{
    for (int k = 0; k < 2; k++) {
        if (c->current[k] < 0) continue;
        const ca_generation *g = &c->gens[c->current[k]];
        pki_cert_info info;
        bool cut = false;
        CT_GUARD_RET(pki_cert_parse_info(g->s.cert_der.data, g->s.cert_der.len, &info));
        CT_GUARD_RET(request_answered_by(c, (ca_crl_kind)k, info.spki_sha256, &cut));
        CT_ENSURE_RET(!cut, ct_fail(CT_ERR_CONFIG, "the install of the %s CA's generation %lld was cut off (its request "
                                    "%s is still there): run the same install again", kind_name[k],
                                    (long long)g->generation, ca_csr_file[k]));
    }
    return CT_OK;
}

/* Which kind's pending key `g` certifies; CT_ERR_USAGE naming the file when neither. */
static ct_err match_request(ca *c, install_plan *p, const given_cert *g, ca_crl_kind *kind)
{
    for (int k = 0; k < 2; k++) {
        hsm_key *key = NULL;
        int64_t generation = 0;
        bool match = false;
        CT_GUARD_RET(pending_key(c, (ca_crl_kind)k, &generation, &key));
        ct_err rc = key ? key_matches(key, g->der.data, g->der.len, &match) : CT_OK;
        hsm_key_free(key);
        CT_GUARD_RET(rc);
        if (match) {
            *kind = (ca_crl_kind)k;
            p->generation[k] = generation;
            return CT_OK;
        }
        if (c->current[k] >= 0 && same_der(&c->gens[c->current[k]].s.cert_der, &g->der)) {
            bool cut = false;
            CT_GUARD_RET(request_answered_by(c, (ca_crl_kind)k, g->info.spki_sha256, &cut));
            CT_ENSURE_RET(cut, ct_fail(CT_ERR_EXISTS, "%s is installed already (the %s CA's generation %lld)", g->path,
                                       kind_name[k], (long long)c->gens[c->current[k]].generation));
            *kind = (ca_crl_kind)k;
            p->generation[k] = c->gens[c->current[k]].generation;
            p->resume[k] = true;
            return CT_OK;
        }
    }
    return ct_fail(CT_ERR_USAGE, "%s certifies a key this CA did not ask for (its requests: %s, %s)", g->path,
                   ca_csr_file[CA_CRL_DEVICE], ca_csr_file[CA_CRL_OPS]);
}

/* The issuing profile, as the vault signs it: a CA that certifies end entities only, and signs their CRLs. */
static ct_err issuing_profile_check(const given_cert *g)
{
    unsigned need = PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN;
    CT_ENSURE_RET(g->info.is_ca && g->info.path_len == 0 && (g->info.key_usage & need) == need,
                  ct_fail(CT_ERR_USAGE, "%s is not an issuing CA certificate (CA, pathLen 0, keyCertSign and cRLSign)",
                          g->path));
    time_t now = time(NULL);
    CT_ENSURE_RET(g->info.not_before <= now + 300 && g->info.not_after > now,
                  ct_fail(CT_ERR_USAGE, "%s is not valid now", g->path));
    return CT_OK;
}

static ct_err read_given(install_plan *p, const char *const *certs, size_t n_certs, const char *const *crls,
                         size_t n_crls)
{
    CT_ENSURE_RET(n_certs + n_crls > 0 && n_certs <= INSTALL_MAX_FILES && n_crls <= INSTALL_MAX_FILES,
                  ct_fail(CT_ERR_USAGE, "install takes up to %d --cert files and up to %d --crl files, at least one",
                          INSTALL_MAX_FILES, INSTALL_MAX_FILES));
    for (size_t i = 0; i < n_certs; i++) {
        given_cert *g = &p->certs[p->n_certs++];
        g->path = certs[i];
        CT_GUARD_RET(ca_read_cert_file(certs[i], &g->der));
        CT_GUARD_RET(pki_cert_parse_info(g->der.data, g->der.len, &g->info));
    }
    for (size_t i = 0; i < n_crls; i++) {
        p->crl_paths[p->n_crls] = crls[i];
        CT_GUARD_RET(ct_file_read(crls[i], PKI_MAX_CERT_DER * 64, &p->crls[p->n_crls++]));
    }
    return CT_OK;
}

/* The roots' CRL of root `k` installed in the folder; left empty when there is none. */
static ct_err installed_crl_read(const ca *c, int k, ct_buf *der)
{
    char path[CA_PATH_MAX];
    CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, root_crl_file[k]));
    return ct_file_exists(path) ? ct_file_read(path, PKI_MAX_CERT_DER * 64, der) : CT_OK;
}

/* A roots' CRL replacing the one installed (p->crls[i], of root `k`) must be newer and keep its revocations: an older
 * CRL, or one made from a ceremony record cut short (its last CRL entry gone, the next CRL reuses its number without
 * its revocation), would bring a revoked issuing CA back (pki_crl_supersedes, as the station's ca.root_crl). */
static ct_err crl_not_older(const ca *c, const install_plan *p, size_t i, int k)
{
    ct_err rc = CT_OK;
    ct_buf old = CT_BUF_INIT;
    const ct_buf *root = &p->folder_root[k];
    /* None yet, or unreadable: nothing it revokes can be trusted to keep. */
    if (!c->installed || installed_crl_read(c, k, &old) != CT_OK || !old.len) {
        ct_err_clear();
        goto cleanup;
    }
    rc = pki_crl_supersedes(p->crls[i].data, p->crls[i].len, old.data, old.len, root->data, root->len);
    if (rc != CT_OK)
        rc = ct_fail_ctx(CT_ERR_USAGE, "%s is not newer than the installed %s (an older CRL, or one made from a "
                         "ceremony record cut short)", p->crl_paths[i], root_crl_file[k]);
cleanup:
    ct_buf_free(&old);
    return rc;
}

/* Every check, before anything is written. */
static ct_err install_check(ca *c, install_plan *p)
{
    char path[CA_PATH_MAX];
    time_t now = time(NULL);
    const given_cert *given_roots[INSTALL_MAX_FILES];
    size_t n_roots = 0;
    if (c->installed)
        for (int k = 0; k < 2; k++) {
            CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, ca_key_cert_file[root_role[k]]));
            CT_GUARD_RET(ca_read_cert_file(path, &p->folder_root[k]));
        }
    for (size_t i = 0; i < p->n_certs; i++) {
        const given_cert *g = &p->certs[i];
        if (self_signed(g)) {
            CT_ENSURE_RET(g->info.is_ca && (g->info.key_usage & PKI_KU_KEY_CERT_SIGN),
                          ct_fail(CT_ERR_USAGE, "%s is self-signed but not a root CA certificate", g->path));
            CT_ENSURE_RET(!c->installed || same_der(&g->der, &p->folder_root[0]) || same_der(&g->der, &p->folder_root[1]),
                          ct_fail(CT_ERR_USAGE, "%s is not one of this CA's roots (%s, %s)", g->path,
                                  ca_key_cert_file[CA_KEY_DEVICE_ROOT], ca_key_cert_file[CA_KEY_OPS_ROOT]));
            given_roots[n_roots++] = g;
            continue;
        }
        ca_crl_kind kind = CA_CRL_DEVICE;
        CT_GUARD_RET(match_request(c, p, g, &kind));
        CT_ENSURE_RET(!p->issuing[kind], ct_fail(CT_ERR_USAGE, "two certificates for the %s CA: %s and %s",
                                                 kind_name[kind], p->issuing[kind]->path, g->path));
        CT_GUARD_RET(issuing_profile_check(g));
        p->issuing[kind] = g;
    }
    /* A roots' CRL alone is taken by an installed CA (a ceremony revoked an older issuing CA). */
    CT_ENSURE_RET(p->issuing[0] || p->issuing[1] || (c->installed && p->n_crls > 0),
                  ct_fail(CT_ERR_USAGE, "no issuing CA certificate given (the ceremony's answer to %s or %s)",
                          ca_csr_file[CA_CRL_DEVICE], ca_csr_file[CA_CRL_OPS]));
    CT_ENSURE_RET(c->installed || (p->issuing[0] && p->issuing[1]),
                  ct_fail(CT_ERR_USAGE, "the first install takes both issuing CAs' certificates (%s and %s answered)",
                          ca_csr_file[CA_CRL_DEVICE], ca_csr_file[CA_CRL_OPS]));
    /* Each issuing CA chains to its root: the folder's, or at first install one of those given. */
    for (int k = 0; k < 2; k++) {
        const given_cert *g = p->issuing[k];
        if (!g) continue;
        if (c->installed) {
            CT_ENSURE_RET(pki_cert_verify_signed_by(g->der.data, g->der.len, p->folder_root[k].data,
                                                    p->folder_root[k].len, now) == CT_OK,
                          ct_fail(CT_ERR_USAGE, "%s is not signed by this CA's %s (another root?)", g->path,
                                  ca_key_cert_file[root_role[k]]));
            continue;
        }
        for (size_t r = 0; r < n_roots && !p->root[k]; r++)
            if (pki_cert_verify_signed_by(g->der.data, g->der.len, given_roots[r]->der.data, given_roots[r]->der.len,
                                          now) == CT_OK)
                p->root[k] = given_roots[r];
        CT_ENSURE_RET(p->root[k], ct_fail(CT_ERR_USAGE, "%s is not signed by any root given (--cert root.pem "
                                          "ops-root.pem from the vault)", g->path));
    }
    for (size_t r = 0; r < n_roots; r++)
        CT_ENSURE_RET(c->installed || given_roots[r] == p->root[0] || given_roots[r] == p->root[1],
                      ct_fail(CT_ERR_USAGE, "%s is a root that neither issuing CA chains to", given_roots[r]->path));
    /* The roots' CRLs: each signed by one of the roots, and revoking nothing being installed. */
    for (size_t i = 0; i < p->n_crls; i++) {
        bool found = false;
        for (int k = 0; k < 2 && !found; k++) {
            const ct_buf *root = c->installed ? &p->folder_root[k] : &p->root[k]->der;
            const ct_buf *cert = p->issuing[k] ? &p->issuing[k]->der : &c->gens[c->current[k]].s.cert_der;
            pki_crl_status st;
            ct_err rc = pki_crl_check(p->crls[i].data, p->crls[i].len, root->data, root->len, cert->data, cert->len, &st);
            if (rc == CT_ERR_NOT_FOUND || rc == CT_ERR_INTEGRITY) continue;
            if (rc != CT_OK) return ct_fail(CT_ERR_USAGE, "%s is not a CRL: %s", p->crl_paths[i], ct_err_detail());
            CT_ENSURE_RET(!st.revoked, ct_fail(CT_ERR_USAGE, "%s revokes %s", p->crl_paths[i],
                                               p->issuing[k] ? p->issuing[k]->path : "the current issuing CA"));
            p->crl_of[i] = k;
            found = true;
        }
        CT_ENSURE_RET(found, ct_fail(CT_ERR_USAGE, "%s is not a CRL of this CA's roots (%s, %s)", p->crl_paths[i],
                                     ca_key_cert_file[CA_KEY_DEVICE_ROOT], ca_key_cert_file[CA_KEY_OPS_ROOT]));
        for (size_t j = 0; j < i; j++) /* the last given would be kept, whichever is newer */
            CT_ENSURE_RET(p->crl_of[j] != p->crl_of[i], ct_fail(CT_ERR_USAGE, "two CRLs of one root: %s and %s",
                                                                p->crl_paths[j], p->crl_paths[i]));
        CT_GUARD_RET(crl_not_older(c, p, i, p->crl_of[i]));
    }
    /* Nor one the installed roots' CRL revokes (a ceremony revoked a rotated generation before its install): it would
     * become a current generation revoked, which a CRL given with it is refused for. */
    for (int k = 0; k < 2 && c->installed; k++) {
        if (!p->issuing[k]) continue;
        ct_buf crl = CT_BUF_INIT;
        pki_crl_status st = {0};
        ct_err rc = installed_crl_read(c, k, &crl);
        if (rc == CT_OK && crl.len)
            rc = pki_crl_check(crl.data, crl.len, p->folder_root[k].data, p->folder_root[k].len,
                               p->issuing[k]->der.data, p->issuing[k]->der.len, &st);
        ct_buf_free(&crl);
        CT_GUARD_RET(rc);
        CT_ENSURE_RET(!st.revoked, ct_fail(CT_ERR_USAGE, "%s is revoked by the installed %s", p->issuing[k]->path,
                                           root_crl_file[k]));
    }
    return CT_OK;
}

static ct_err install_apply(ca *c, install_plan *p)
{
    char path[CA_PATH_MAX], uri[256], label[HSM_LABEL_MAX + 1];
    unsigned kinds = 0;
    if (!c->installed)
        for (int k = 0; k < 2; k++) {
            const ct_buf *one[] = {&p->root[k]->der};
            CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, ca_key_cert_file[root_role[k]]));
            CT_GUARD_RET(ca_write_pem_chain(path, one, 1));
            CT_GUARD_RET(ct_buf_alloc(&c->signers[root_role[k]].cert_der, p->root[k]->der.len));
            CT_GUARD_RET(ct_buf_set(&c->signers[root_role[k]].cert_der, p->root[k]->der.data, p->root[k]->der.len));
        }
    for (size_t i = 0; i < p->n_crls; i++) {
        CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, root_crl_file[p->crl_of[i]]));
        CT_GUARD_RET(ct_file_write_atomic(path, p->crls[i].data, p->crls[i].len, 0644));
    }
    for (int k = 0; k < 2; k++) {
        const given_cert *g = p->issuing[k];
        if (!g) continue;
        char fp[65], detail[256];
        int64_t id = 0;
        const ct_buf *one[] = {&g->der};
        CT_GUARD_RET(ca_generation_key_uri(c, (ca_crl_kind)k, p->generation[k], uri, sizeof uri, label, sizeof label));
        CT_GUARD_RET(ct_hex_encode(g->info.cert_sha256, 32, fp, sizeof fp));
        CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "v=2 which=%s generation=%lld cert_serial=%s sha256=%s",
                                 kind_name[k], (long long)p->generation[k], g->info.serial_hex, fp));
        if (!p->resume[k])
            CT_GUARD_RET(db_issuing_ca_add(c->db, (db_crl_issuer)k, p->generation[k], uri, g->der.data, g->der.len,
                                           "cli", detail, &id));
        CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, ca_key_cert_file[issuing_role[k]]));
        CT_GUARD_RET(ca_write_pem_chain(path, one, 1));
        CT_GUARD_RET(ca_cert_file_record(c, ca_key_cert_file[issuing_role[k]], &g->der));
        kinds |= 1u << k;
    }
    ct_failpoint("install:generations");
    bool first = !c->installed;
    c->installed = true;
    CT_GUARD_RET(ca_generations_load(c));
    const ct_buf *dev_chain[] = {&c->signers[CA_KEY_DEVICE_ISSUING].cert_der, &c->signers[CA_KEY_DEVICE_ROOT].cert_der};
    CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, "chain.pem"));
    CT_GUARD_RET(ca_write_pem_chain(path, dev_chain, 2));
    CT_GUARD_RET(ca_operational_certs_issue(c, kinds));
    CT_GUARD_RET(ca_certs_open(c)); /* the checkpoint key's certificate, and each certificate file not recorded yet */
    /* The empty log's tree head, now that its key is certified: /log/sth answers from the start. */
    if (first) CT_GUARD_RET(ca_log_sth(c, "cli", NULL));
    for (int k = 0; k < 2; k++) /* answered, last: until then the same install run again completes it */
        if (kinds & (1u << k)) {
            CT_GUARD_RET(csr_path(c, (ca_crl_kind)k, path, sizeof path));
            CT_ENSURE_RET(unlink(path) == 0 || errno == ENOENT,
                          ct_fail(CT_ERR_IO, "cannot remove %s: %s", path, strerror(errno)));
        }
    return CT_OK;
}

ct_err ca_install(const char *dir, const char *const *certs, size_t n_certs, const char *const *crls, size_t n_crls)
{
    ct_err rc = CT_OK;
    ca *c = NULL;
    install_plan *p = calloc(1, sizeof *p);
    CT_ENSURE(p, CT_ERR_NOMEM);
    CT_GUARD(read_given(p, certs, n_certs, crls, n_crls));
    CT_GUARD(ca_open_installing(dir, &c));
    CT_GUARD(install_check(c, p));
    CT_GUARD(install_apply(c, p));
cleanup:
    if (p) plan_free(p);
    free(p);
    ca_close(c);
    return rc;
}
