#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_priv.h"

#define DAY_SECONDS 86400
#define CA_DB_FILE "camtrust.db" /* the default `database` */
#define RENEW_WARN_DAYS 30

/* Finds the configured key; the default ones are generated on first use. */
static ct_err find_or_make_key(hsm *h, const ca_settings *s, ca_key_role role, hsm_key **out)
{
    ct_err rc = hsm_key_find(h, s->key_uri[role], out);
    if (rc != CT_ERR_HSM_NO_KEY) return rc;
    char default_uri[256];
    CT_GUARD_RET(ct_snprintf(default_uri, sizeof default_uri, "pkcs11:object=%s;type=private", ca_key_default_label[role]));
    if (strcmp(default_uri, s->key_uri[role]) != 0) return rc; /* a configured key must already exist */
    uint8_t id[2] = {0xca, (uint8_t)(role + 1)};
    hsm_key_type type = strcmp(s->curve, "P-384") == 0 ? HSM_EC_P384 : HSM_EC_P256;
    return hsm_key_generate(h, type, ca_key_default_label[role], id, sizeof id, out);
}

static ct_err audit_mac(void *ctx, const uint8_t *msg, size_t len, uint8_t mac[32])
{
    return hsm_mac_sign(((ca *)ctx)->audit_mac, msg, len, mac);
}

/* The whole chain's check: on as many token sessions as the CA keeps (hsm.sessions). */
static ct_err audit_mac_many(void *ctx, size_t n, const uint8_t *const *msgs, const size_t *lens, uint8_t (*macs)[32],
                             size_t *failed)
{
    ca *c = ctx;
    return hsm_mac_sign_many(c->audit_mac, n, msgs, lens, macs, (unsigned)c->cfg.hsm.sessions, failed);
}

/* The token's audit key, under the database's write lock (db_open_keyed). The default key is made on first use:
 * at init (the chain is keyed from entry 1) or at the first open of a CA folder made before keying (its chain is
 * sealed by an "audit.keyed" entry). A configured key must exist, and so must the key of a chain already keyed. */
static ct_err audit_key(void *ctx, bool may_make, bool *made)
{
    ca *c = ctx;
    ct_err rc = hsm_mac_key_find(c->hsm, c->cfg.audit_mac_uri, &c->audit_mac);
    bool holds_keys = false;
    for (int role = 0; role < CA_KEY__COUNT; role++) holds_keys |= c->signers[role].key != NULL;
    if (rc == CT_ERR_HSM_NO_KEY && !may_make && !holds_keys) {
        /* Another process made the key while this one's module held an older view of the token's files (SoftHSM
         * may never see another process's new object): the token opened anew reads them again, while no key of
         * c->hsm is held (open_folder finds them after the database is open). */
        ct_log(CT_LOG_INFO, "token_reopened", "reason=%s", CT_LOGQ("audit key made by another process"));
        hsm_close(c->hsm);
        c->hsm = NULL;
        CT_GUARD_RET(hsm_open_settings(&c->cfg.hsm, &c->hsm));
        rc = hsm_mac_key_find(c->hsm, c->cfg.audit_mac_uri, &c->audit_mac);
    }
    if (rc != CT_ERR_HSM_NO_KEY || strcmp(c->cfg.audit_mac_uri, CA_AUDIT_MAC_DEFAULT_URI) != 0) return rc;
    if (!may_make)
        return ct_fail(CT_ERR_HSM_NO_KEY, "the audit chain is MACed but its key '%s' is not in the token",
                       CA_AUDIT_MAC_LABEL);
    static const uint8_t id[2] = {0xca, 0xac};
    *made = true;
    return hsm_mac_key_generate(c->hsm, CA_AUDIT_MAC_LABEL, id, sizeof id, &c->audit_mac);
}

/* Opens the database with every audit entry MACed by the token's audit key. */
static ct_err db_open_audited(ca *c)
{
    const db_audit_mac mac = {audit_mac, audit_key, c, CA_AUDIT_MAC_LABEL, audit_mac_many};
    char id[DB_CA_ID_MAX];
    db_config cfg;
    CT_GUARD_RET(ca_id_read(c->cfg.dir, true, id));
    ca_db_config(&c->cfg, id, &cfg);
    return db_open_config(&cfg, &mac, &c->db);
}

/* Splits "a,b,c" into at most `max` NUL-terminated parts inside `storage`. */
static void split_list(char *storage, const char **parts, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(storage, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (*tok) parts[n++] = tok;
    }
}

static ct_err issue_ca_cert(ca *c, ca_key_role role, ca_key_role issuer, pki_profile profile, const char *cn_suffix,
                            long days)
{
    ct_err rc = CT_OK;
    ct_buf spki = CT_BUF_INIT;
    char cn[PKI_NAME_MAX];
    char names[sizeof c->cfg.server_names], ips[sizeof c->cfg.server_ips];
    time_t now = time(NULL);
    pki_cert_template t = {.profile = profile, .organization = c->cfg.organization, .not_before = now - 300,
                           .not_after = now + (time_t)days * DAY_SECONDS};
    if (profile == PKI_PROFILE_TLS_SERVER) {
        CT_GUARD(ct_strlcpy(names, sizeof names, c->cfg.server_names));
        CT_GUARD(ct_strlcpy(ips, sizeof ips, c->cfg.server_ips));
        split_list(names, t.dns_names, 3);
        split_list(ips, t.ip_addrs, 1);
        CT_ENSURE_MSG(t.dns_names[0], CT_ERR_CONFIG, "server.names is empty");
        CT_GUARD(ct_strlcpy(cn, sizeof cn, t.dns_names[0]));
    } else {
        CT_GUARD(ct_snprintf(cn, sizeof cn, "%.40s %s", c->cfg.organization, cn_suffix));
    }
    t.cn = cn;
    CT_GUARD(ct_buf_alloc(&spki, 1024));
    CT_GUARD(hsm_key_public_der(c->signers[role].key, &spki));
    CT_GUARD(ct_buf_alloc(&c->signers[role].cert_der, PKI_MAX_CERT_DER));
    const ct_buf *issuer_cert = role == issuer ? NULL : &c->signers[issuer].cert_der;
    CT_GUARD(pki_cert_issue(&t, spki.data, spki.len, issuer_cert ? issuer_cert->data : NULL,
                            issuer_cert ? issuer_cert->len : 0, c->signers[issuer].key, &c->signers[role].cert_der,
                            NULL));
cleanup:
    ct_buf_free(&spki);
    return rc;
}

/* A signer's certificate file (the server's with its issuing CA, for TLS clients). */
static ct_err write_cert_file(ca *c, ca_key_role role)
{
    char path[CA_PATH_MAX];
    const ct_buf *server_chain[] = {&c->signers[CA_KEY_TLS].cert_der, &c->signers[CA_KEY_OPS_ISSUING].cert_der};
    const ct_buf *one[] = {&c->signers[role].cert_der};
    CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, ca_key_cert_file[role]));
    return role == CA_KEY_TLS ? ca_write_pem_chain(path, server_chain, 2) : ca_write_pem_chain(path, one, 1);
}

/* The operational certificates, renewable in place: the same key in the token, a fresh validity. Roots and
 * issuing CAs are not: a new one is a key ceremony, and every camera pins them. */
static const struct {
    const char *name;
    ca_key_role role, issuer;
    pki_profile profile;
    const char *cn_suffix;
} renewable[] = {
    {"tls", CA_KEY_TLS, CA_KEY_OPS_ISSUING, PKI_PROFILE_TLS_SERVER, NULL},
    {"ocsp", CA_KEY_OCSP, CA_KEY_DEVICE_ISSUING, PKI_PROFILE_OCSP_SIGNER, "OCSP Responder"},
    {"log", CA_KEY_LOG, CA_KEY_OPS_ISSUING, PKI_PROFILE_LOG_SIGNER, "Issuance Log"},
};

static const char *renewable_name(ca_key_role role)
{
    for (size_t i = 0; i < sizeof renewable / sizeof renewable[0]; i++)
        if (renewable[i].role == role) return renewable[i].name;
    return NULL;
}

static long renew_days(const ca *c, ca_key_role role)
{
    return role == CA_KEY_TLS ? c->cfg.server_days : role == CA_KEY_OCSP ? c->cfg.ocsp_signer_days : c->cfg.issuing_days;
}

ct_err ca_renew(ca *c, const char *which, time_t *not_after)
{
    ct_err rc = CT_OK;
    size_t i = 0;
    pki_cert_info info;
    char fp[65], detail[256];
    while (i < sizeof renewable / sizeof renewable[0] && strcmp(renewable[i].name, which) != 0) i++;
    CT_ENSURE_MSG(i < sizeof renewable / sizeof renewable[0], CT_ERR_USAGE,
                  "'%.20s' is not renewable: tls, ocsp or log (roots and issuing CAs are not renewed in place)", which);
    ca_key_role role = renewable[i].role;
    CT_ENSURE_MSG(c->signers[role].key, CT_ERR_CONFIG, "this CA folder has no %s key to renew", which);
    ct_buf_free(&c->signers[role].cert_der);
    CT_GUARD(issue_ca_cert(c, role, renewable[i].issuer, renewable[i].profile, renewable[i].cn_suffix,
                           renew_days(c, role)));
    CT_GUARD(write_cert_file(c, role));
    CT_GUARD(pki_cert_parse_info(c->signers[role].cert_der.data, c->signers[role].cert_der.len, &info));
    CT_GUARD(ct_hex_encode(info.cert_sha256, 32, fp, sizeof fp));
    /* The audit's v=2 detail (db/rebuild.c; every value here is a name, digits or hex: nothing to escape). */
    CT_GUARD(ct_snprintf(detail, sizeof detail, "v=2 which=%s cert_serial=%s not_after=%lld sha256=%s", which,
                         info.serial_hex, (long long)info.not_after, fp));
    CT_GUARD(db_audit_append(c->db, "cli", "ca.renew", ca_key_cert_file[role], "ok", detail));
    CT_GUARD(ca_certs_open(c)); /* its row in the certificates table, as at every open: OCSP answers for it */
    if (not_after) *not_after = info.not_after;
cleanup:
    return rc;
}

/* What a folder may hold before init: nothing, or only the config an operator wrote first (another HSM). */
static ct_err folder_check(const char *dir, bool *has_config)
{
    char db[CA_PATH_MAX], id[CA_PATH_MAX];
    ct_err rc = ct_dir_check_fresh(dir, CA_CONFIG_FILE, has_config);
    CT_GUARD_RET(ct_path_join(db, sizeof db, dir, CA_DB_FILE));
    CT_ENSURE_RET(!ct_file_exists(db), ct_fail(CT_ERR_EXISTS, "%s already holds a CA (%s)", dir, db));
    CT_GUARD_RET(ct_path_join(id, sizeof id, dir, CA_ID_FILE));
    CT_ENSURE_RET(!ct_file_exists(id), ct_fail(CT_ERR_EXISTS, "%s already holds a CA (%s)", dir, id));
    return rc;
}

static bool is_root(int role) { return role == CA_KEY_DEVICE_ROOT || role == CA_KEY_OPS_ROOT; }

/* The issuing CAs and the operational certificates they sign: installed from the ceremony (ca_install.c). */
ct_err ca_operational_certs_issue(ca *c, unsigned kinds)
{
    for (size_t i = 0; i < sizeof renewable / sizeof renewable[0]; i++) {
        unsigned kind = renewable[i].issuer == CA_KEY_DEVICE_ISSUING ? 1u << CA_CRL_DEVICE : 1u << CA_CRL_OPS;
        if (!(kinds & kind) || !c->signers[renewable[i].role].key) continue;
        ct_buf_free(&c->signers[renewable[i].role].cert_der);
        CT_GUARD_RET(issue_ca_cert(c, renewable[i].role, renewable[i].issuer, renewable[i].profile,
                                   renewable[i].cn_suffix, renew_days(c, renewable[i].role)));
        CT_GUARD_RET(write_cert_file(c, renewable[i].role));
        const ca_signer *made = &c->signers[renewable[i].role];
        CT_GUARD_RET(ca_cert_file_record(c, ca_key_cert_file[renewable[i].role], &made->cert_der));
    }
    /* The checkpoint key's certificate follows the operations issuing CA (audit verify checks its issuer). */
    if ((kinds & (1u << CA_CRL_OPS)) && c->note_key) {
        char path[CA_PATH_MAX];
        CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, CA_NOTE_CERT_FILE));
        if (ct_file_exists(path)) CT_GUARD_RET(ca_note_cert_reissue(c)); /* else ca_certs_open makes it */
    }
    /* The server's chain names the operations issuing CA: rewritten when only that one changed too. */
    return CT_OK;
}

/* Everything a CA is, made in `stage`; `dir` is the name it will have. The roots are not made here: they live in
 * the offline vault, whose ceremony answers the two requests written here. */
static ct_err build(ca *c, const char *stage, const char *dir)
{
    CT_GUARD_RET(ca_settings_write_defaults(stage));
    CT_GUARD_RET(ca_settings_load(stage, &c->cfg));
    CT_ENSURE_RET(ca_db_is_pg(&c->cfg) || !ct_file_exists(c->cfg.db_path),
                  ct_fail(CT_ERR_EXISTS, "%s already holds a CA (%s)", dir, c->cfg.db_path));
    CT_GUARD_RET(hsm_local_token_prepare(&c->cfg.hsm, stage));
    ct_failpoint("init:token");
    CT_GUARD_RET(hsm_open_settings(&c->cfg.hsm, &c->hsm));
    for (int role = 0; role < CA_KEY__COUNT; role++)
        if (!is_root(role) && role != CA_KEY_DEVICE_ISSUING && role != CA_KEY_OPS_ISSUING)
            CT_GUARD_RET(find_or_make_key(c->hsm, &c->cfg, role, &c->signers[role].key));
    CT_GUARD_RET(ca_generation_request(c, CA_CRL_DEVICE, 1));
    CT_GUARD_RET(ca_generation_request(c, CA_CRL_OPS, 1));
    CT_GUARD_RET(ca_log_note_key_open(c)); /* the checkpoint key and log.vkey */
    ct_failpoint("init:keys");
    ct_failpoint("init:certificates");

    CT_GUARD_RET(db_open_audited(c));
    char detail[160];
    CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "roots offline; requests %s %s", ca_csr_file[CA_CRL_DEVICE],
                             ca_csr_file[CA_CRL_OPS]));
    CT_GUARD_RET(db_audit_append(c->db, "cli", "ca.init", dir, "ok", detail));
    ct_failpoint("init:database");
    return CT_OK; /* the log's first tree head comes with its certificate (install) */
}

/* Built in a sibling folder and renamed into place when whole: a kill or a full disk leaves DIR as it was
 * (absent, or holding only its config) and a staging folder that the next init removes. */
ct_err ca_init(const char *dir)
{
    ct_err rc = CT_OK;
    ca *c = NULL;
    hsm_settings hs;
    bool has_config = false, staged = false, pg = false;
    char stage[CA_PATH_MAX], from[CA_PATH_MAX], to[CA_PATH_MAX];
    ct_buf conf = CT_BUF_INIT;
    CT_GUARD(folder_check(dir, &has_config));
    CT_GUARD(ct_dir_stage(dir, stage, sizeof stage));
    staged = true;
    if (has_config) {
        CT_GUARD(ct_path_join(from, sizeof from, dir, CA_CONFIG_FILE));
        CT_GUARD(ct_path_join(to, sizeof to, stage, CA_CONFIG_FILE));
        CT_GUARD(ct_file_read(from, CT_CONFIG_MAX_BYTES, &conf));
        CT_GUARD(ct_file_write_atomic(to, conf.data, conf.len, 0600));
    }
    c = calloc(1, sizeof *c);
    CT_ENSURE(c, CT_ERR_NOMEM);
    c->current[0] = c->current[1] = -1;
    CT_GUARD(build(c, stage, dir));
    hs = c->cfg.hsm;
    pg = ca_db_is_pg(&c->cfg);
    ca_close(c); /* the token closed before its folder moves */
    c = NULL;
    CT_GUARD(hsm_local_relocate(&hs, stage, dir));
    ct_failpoint("init:relocated");
    /* Its database marks an initialised CA; one in PostgreSQL, its id file. */
    CT_GUARD(ct_dir_commit(stage, dir, pg ? CA_ID_FILE : CA_DB_FILE));
    staged = false;
cleanup:
    ca_close(c);
    ct_buf_free(&conf);
    if (staged && ct_dir_discard(stage) != CT_OK) ct_log(CT_LOG_WARN, "stage_left", "path=%s", CT_LOGQ(stage));
    return rc;
}

static ct_err load_signer(ca *c, ca_key_role role)
{
    ct_err rc = CT_OK;
    ct_buf spki = CT_BUF_INIT;
    char path[CA_PATH_MAX];
    pki_cert_info info;
    uint8_t spki_hash[32];
    CT_GUARD(hsm_key_find(c->hsm, c->cfg.key_uri[role], &c->signers[role].key));
    CT_GUARD(ct_path_join(path, sizeof path, c->cfg.dir, ca_key_cert_file[role]));
    CT_GUARD(ca_read_cert_file(path, &c->signers[role].cert_der));
    CT_GUARD(pki_cert_parse_info(c->signers[role].cert_der.data, c->signers[role].cert_der.len, &info));
    CT_GUARD(ct_buf_alloc(&spki, 1024));
    CT_GUARD(hsm_key_public_der(c->signers[role].key, &spki));
    CT_GUARD(ct_sha256(spki.data, spki.len, spki_hash));
    /* A certificate file that does not match its token key is a misconfiguration to stop on, not to serve. */
    CT_ENSURE_MSG(memcmp(spki_hash, info.spki_sha256, 32) == 0, CT_ERR_CONFIG, "%s does not certify the key %s", path,
                  c->cfg.key_uri[role]);
    /* Warned, not refused: `renew` itself opens the CA, and a root's expiry is a ceremony's business. */
    time_t left = info.not_after - time(NULL);
    const char *name = renewable_name(role);
    if (left < RENEW_WARN_DAYS * DAY_SECONDS)
        ct_log(left < 0 ? CT_LOG_ERROR : CT_LOG_WARN, "certificate_expiring",
               "file=%s not_after=%lld msg=\"%s within %d days: %s%s\"", ca_key_cert_file[role], (long long)info.not_after,
               left < 0 ? "expired" : "expires", RENEW_WARN_DAYS, name ? "camtrust-ca renew " : "a new CA needs a key ceremony",
               name ? name : "");
cleanup:
    ct_buf_free(&spki);
    return rc;
}

/* Keys that CA folders made before a feature lack, and what happens without them. */
static const char *const optional_signer[CA_KEY__COUNT] = {
    [CA_KEY_OCSP] = "made before revocation support: the device issuing CA signs OCSP responses itself",
    [CA_KEY_LOG] = "made before the issuance log: certificates are logged, but no tree head can be signed",
};

/* A root's certificate, and in a folder made before offline roots its key too (then warned: ca_roots_online). */
static ct_err load_root(ca *c, ca_key_role role)
{
    char path[CA_PATH_MAX];
    hsm_key *key = NULL;
    ct_err rc = hsm_key_find(c->hsm, c->cfg.key_uri[role], &key);
    hsm_key_free(key);
    if (rc == CT_OK) {
        c->roots_online = true;
        return load_signer(c, role);
    }
    CT_ENSURE_RET(rc == CT_ERR_HSM_NO_KEY, rc);
    ct_err_clear();
    CT_GUARD_RET(ct_path_join(path, sizeof path, c->cfg.dir, ca_key_cert_file[role]));
    return ca_read_cert_file(path, &c->signers[role].cert_der);
}

static ct_err open_folder(const char *dir, bool installing, const char *db_path, ca **out)
{
    ct_err rc = CT_OK;
    char root_path[CA_PATH_MAX];
    ca *c = calloc(1, sizeof *c);
    CT_ENSURE_RET(c, CT_ERR_NOMEM);
    c->current[0] = c->current[1] = -1;
    CT_GUARD(ca_settings_load(dir, &c->cfg));
    if (db_path) CT_GUARD(ct_strlcpy(c->cfg.db_path, sizeof c->cfg.db_path, db_path)); /* a copy being restored */
    CT_GUARD(ct_path_join(root_path, sizeof root_path, dir, CA_ID_FILE));
    CT_ENSURE_MSG(ct_file_exists(ca_db_is_pg(&c->cfg) ? root_path : c->cfg.db_path), CT_ERR_CONFIG,
                  "%s is not initialised: run camtrust-ca init --dir %s", dir, dir);
    CT_GUARD(ct_path_join(root_path, sizeof root_path, dir, ca_key_cert_file[CA_KEY_DEVICE_ROOT]));
    c->installed = ct_file_exists(root_path);
    CT_ENSURE_MSG(c->installed || installing, CT_ERR_CONFIG,
                  "%s awaits its key ceremony: the vault signs %s and %s there, then camtrust-ca install --dir %s "
                  "--cert ...", dir, ca_csr_file[CA_CRL_DEVICE], ca_csr_file[CA_CRL_OPS], dir);
    CT_GUARD(hsm_open_settings(&c->cfg.hsm, &c->hsm));
    CT_GUARD(db_open_audited(c));
    if (c->installed) {
        CT_GUARD(load_root(c, CA_KEY_DEVICE_ROOT));
        CT_GUARD(load_root(c, CA_KEY_OPS_ROOT));
    }
    CT_GUARD(ca_generations_load(c));
    for (int role = CA_KEY_TLS; role < CA_KEY__COUNT; role++) {
        char path[CA_PATH_MAX];
        CT_GUARD(ct_path_join(path, sizeof path, dir, ca_key_cert_file[role]));
        if (!c->installed) { /* the keys only: their certificates come with the issuing CAs' */
            CT_GUARD(hsm_key_find(c->hsm, c->cfg.key_uri[role], &c->signers[role].key));
            continue;
        }
        const char *missing = optional_signer[role];
        if (missing && !ct_file_exists(path)) {
            ct_log(CT_LOG_WARN, "no_optional_signer", "dir=%s file=%s msg=\"%s\"", CT_LOGQ(dir), ca_key_cert_file[role],
                   missing);
            continue;
        }
        CT_GUARD(load_signer(c, role));
    }
    CT_GUARD(ca_log_note_key_open(c)); /* generated (and audited) here for a CA folder made before checkpoints */
    CT_GUARD(ca_certs_open(c));
    CT_GUARD(ca_proofs_open(c));
    CT_GUARD(ca_tiles_open(c));
    *out = c;
    c = NULL;
cleanup:
    ca_close(c);
    return rc;
}

ct_err ca_open(const char *dir, ca **out) { return open_folder(dir, false, NULL, out); }
ct_err ca_open_installing(const char *dir, ca **out) { return open_folder(dir, true, NULL, out); }
ct_err ca_open_db(const char *dir, const char *db_path, ca **out) { return open_folder(dir, false, db_path, out); }
bool ca_roots_online(const ca *c) { return c && c->roots_online; }

void ca_close(ca *c)
{
    if (!c) return;
    ca_proofs_close(c);
    ca_tiles_close(c);
    ca_generations_free(c);
    for (int role = 0; role < CA_KEY__COUNT; role++) {
        hsm_key_free(c->signers[role].key);
        ct_buf_free(&c->signers[role].cert_der);
    }
    hsm_eddsa_free(c->note_key);
    db_close(c->db);
    hsm_mac_key_free(c->audit_mac);
    hsm_close(c->hsm);
    free(c);
}

ct_db *ca_db(ca *c) { return c->db; }
