/* The device folder: identity, settings, pinned root, opening the token; simulate and factory reset. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_priv.h"

const char *const agent_profile_name[AGENT_PROFILE__COUNT] = {"device", "media-signing"};
const char *const agent_key_label[AGENT_PROFILE__COUNT] = {"identity", "media-signing"};

static const ct_setting setting_rows[] = {
    HSM_SETTING_ROWS("camtrust-device", AGENT_PIN_ENV),
    {"factory.timeout_ms", "10000", "factory mode: longest wait for a station message, in milliseconds"},
    {"serve.timeout_ms", "5000", "HTTPS server: longest wait for a client's handshake or request, in milliseconds"},
};
static const ct_settings_schema schema = {"camtrust camera agent configuration", setting_rows,
                                          sizeof setting_rows / sizeof setting_rows[0]};

static const ct_setting identity_rows[] = {
    {"serial", "", "serial number (fuses on a real camera)"},
    {"model", "", "model"},
    {"mac", "", "MAC address"},
};
static const ct_settings_schema identity_schema = {"camera identity", identity_rows,
                                                   sizeof identity_rows / sizeof identity_rows[0]};

const char *agent_state_name(agent_state s)
{
    return s == AGENT_PROVISIONED ? "provisioned" : s == AGENT_UNPROVISIONED ? "unprovisioned" : "broken";
}

ct_err agent_path(const agent *a, const char *name, char *out, size_t max)
{
    return ct_path_join(out, max, a->dir, name);
}

ct_err agent_profile_parse(const uint8_t *name, size_t len, agent_profile *out)
{
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++)
        if (strlen(agent_profile_name[p]) == len && memcmp(agent_profile_name[p], name, len) == 0) {
            *out = (agent_profile)p;
            return CT_OK;
        }
    return ct_fail(CT_ERR_BAD_REQUEST, "unknown profile '%.*s'", len > 40 ? 40 : (int)len, (const char *)name);
}

bool agent_locked(const agent *a)
{
    char path[AGENT_PATH_MAX];
    /* A path that does not fit cannot be checked: count it as locked, the safe side. */
    return agent_path(a, AGENT_CREDS_FILE, path, sizeof path) != CT_OK || ct_file_exists(path);
}

/* Serials end up in certificate subjects and DNS names: letters, digits and '-' only. */
static ct_err check_serial(const char *serial)
{
    size_t n = strlen(serial);
    CT_ENSURE_RET(n > 0 && n <= 32, ct_fail(CT_ERR_USAGE, "serial must be 1 to 32 characters"));
    for (size_t i = 0; i < n; i++) {
        char c = serial[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        CT_ENSURE_RET(ok, ct_fail(CT_ERR_USAGE, "serial '%s': only letters, digits and '-'", serial));
    }
    return CT_OK;
}

/* The pinned root, from PEM: it must be a self-signed CA certificate valid now. */
ct_err agent_root_load(const char *path, ct_buf *der)
{
    ct_err rc = CT_OK;
    ct_buf pem = CT_BUF_INIT;
    pki_cert_info info;
    CT_GUARD(ct_file_read(path, AGENT_CREDS_MAX, &pem));
    CT_GUARD(ct_buf_alloc(der, PKI_MAX_CERT_DER));
    CT_GUARD(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 0, der));
    CT_GUARD(pki_cert_parse_info(der->data, der->len, &info));
    CT_ENSURE_MSG(info.is_ca, CT_ERR_CONFIG, "%s is not a CA certificate", path);
    rc = pki_cert_verify_signed_by(der->data, der->len, der->data, der->len, time(NULL));
    CT_ENSURE_MSG(rc == CT_OK, CT_ERR_CONFIG, "%s is not a self-signed root valid now", path);
cleanup:
    if (rc != CT_OK) ct_buf_free(der);
    ct_buf_free(&pem);
    return rc;
}

static ct_err load_settings(agent *a)
{
    ct_err rc = CT_OK;
    ct_config *cfg = NULL, *id = NULL;
    CT_GUARD(ct_settings_load_dir(&identity_schema, a->dir, AGENT_IDENTITY_FILE, "is it a device folder?", &id));
    CT_GUARD(ct_settings_copy(&identity_schema, id, "serial", a->serial, sizeof a->serial));
    CT_GUARD(ct_settings_copy(&identity_schema, id, "model", a->model, sizeof a->model));
    CT_GUARD(ct_settings_copy(&identity_schema, id, "mac", a->mac, sizeof a->mac));
    CT_GUARD(check_serial(a->serial));
    CT_GUARD(ct_settings_load_dir(&schema, a->dir, AGENT_CONFIG_FILE, "is it a device folder?", &cfg));
    CT_GUARD(hsm_settings_read(&schema, cfg, a->dir, AGENT_PIN_ENV, &a->hs));
    CT_GUARD(ct_config_get_int(cfg, "factory.timeout_ms", 10000, 100, 600000, &a->factory_timeout_ms));
    CT_GUARD(ct_config_get_int(cfg, "serve.timeout_ms", 5000, 100, 600000, &a->serve_timeout_ms));
cleanup:
    ct_config_free(cfg);
    ct_config_free(id);
    return rc;
}

ct_err agent_open(const char *dir, agent **out)
{
    ct_err rc = CT_OK;
    char path[AGENT_PATH_MAX];
    agent *a = calloc(1, sizeof *a);
    CT_ENSURE(a, CT_ERR_NOMEM);
    CT_GUARD(ct_strlcpy(a->dir, sizeof a->dir, dir));
    /* Temporaries of writes that a kill or power cut interrupted (credentials.pem.tmp.PID): never used again. */
    CT_GUARD(ct_stale_remove(dir, "", ".tmp."));
    CT_GUARD(load_settings(a));
    CT_GUARD(agent_path(a, AGENT_ROOT_FILE, path, sizeof path));
    CT_GUARD(agent_root_load(path, &a->root_der));
    CT_GUARD(hsm_open_settings(&a->hs, &a->h));
    *out = a;
    a = NULL;
cleanup:
    agent_close(a);
    return rc;
}

void agent_close(agent *a)
{
    if (!a) return;
    if (a->h) hsm_close(a->h);
    ct_buf_free(&a->root_der);
    free(a);
}

/* A locally administered unicast MAC derived from the serial, for simulated cameras. */
static ct_err derived_mac(const char *serial, char *out, size_t max)
{
    uint8_t h[32];
    CT_GUARD_RET(ct_sha256(serial, strlen(serial), h));
    return ct_snprintf(out, max, "02:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4]);
}

/* The device folder, made in `stage`. */
static ct_err simulate_build(agent *a, const char *stage, const char *serial, const char *model, const char *mac,
                             const ct_buf *root)
{
    ct_err rc = CT_OK;
    ct_buf pem = CT_BUF_INIT, text = CT_BUF_INIT;
    ct_config *cfg = NULL;
    char path[AGENT_PATH_MAX];
    CT_GUARD(ct_strlcpy(a->dir, sizeof a->dir, stage));
    CT_GUARD(agent_path(a, AGENT_CONFIG_FILE, path, sizeof path));
    CT_GUARD(ct_settings_write_defaults(&schema, path));
    CT_GUARD(ct_settings_load(&schema, path, &cfg));
    CT_GUARD(hsm_settings_read(&schema, cfg, stage, AGENT_PIN_ENV, &a->hs));
    CT_GUARD(hsm_local_token_prepare(&a->hs, stage));
    ct_failpoint("init:token");

    CT_GUARD(ct_buf_alloc(&pem, PKI_MAX_CERT_DER * 2));
    CT_GUARD(ct_pem_encode("CERTIFICATE", root->data, root->len, &pem));
    CT_GUARD(agent_path(a, AGENT_ROOT_FILE, path, sizeof path));
    CT_GUARD(ct_file_write_atomic(path, pem.data, pem.len, 0644));

    CT_GUARD(ct_buf_alloc(&text, 1024));
    CT_GUARD(ct_buf_appendf(&text, "# what the fuses of a real camera hold\nserial = %s\nmodel = %s\nmac = %s\n",
                            serial, model, mac));
    CT_GUARD(agent_path(a, AGENT_IDENTITY_FILE, path, sizeof path));
    CT_GUARD(ct_file_write_atomic(path, text.data, text.len, 0644));
cleanup:
    ct_config_free(cfg);
    ct_buf_free(&pem);
    ct_buf_free(&text);
    return rc;
}

/* Built in a sibling folder and renamed into place when whole: a kill leaves no half camera behind. */
ct_err agent_simulate(const char *dir, const char *serial, const char *model, const char *mac, const char *root_pem_path)
{
    ct_err rc = CT_OK;
    agent *a = calloc(1, sizeof *a);
    ct_buf root = CT_BUF_INIT;
    char path[AGENT_PATH_MAX], stage[AGENT_PATH_MAX], mac_buf[AGENT_NAME_MAX];
    bool staged = false;
    CT_ENSURE(a, CT_ERR_NOMEM);
    CT_GUARD(check_serial(serial));
    CT_ENSURE_MSG(*model && strlen(model) < AGENT_NAME_MAX && !strpbrk(model, "\n\r#"), CT_ERR_USAGE,
                  "model must be one line of 1 to %d characters", AGENT_NAME_MAX - 1);
    if (!mac) CT_GUARD(derived_mac(serial, mac_buf, sizeof mac_buf));
    CT_ENSURE_MSG(!mac || (strlen(mac) < AGENT_NAME_MAX && !strpbrk(mac, "\n\r#")), CT_ERR_USAGE, "bad MAC");
    CT_GUARD(agent_root_load(root_pem_path, &root));
    CT_GUARD(ct_path_join(path, sizeof path, dir, AGENT_IDENTITY_FILE));
    CT_ENSURE_MSG(!ct_file_exists(path), CT_ERR_EXISTS, "%s is a device folder already", dir);
    CT_GUARD(ct_dir_check_fresh(dir, NULL, NULL));
    CT_GUARD(ct_dir_stage(dir, stage, sizeof stage));
    staged = true;
    CT_GUARD(simulate_build(a, stage, serial, model, mac ? mac : mac_buf, &root));
    CT_GUARD(hsm_local_relocate(&a->hs, stage, dir));
    CT_GUARD(ct_dir_commit(stage, dir, AGENT_IDENTITY_FILE));
    staged = false;
cleanup:
    if (staged && ct_dir_discard(stage) != CT_OK) ct_log(CT_LOG_WARN, "stage_left", "path=%s", CT_LOGQ(stage));
    ct_buf_free(&root);
    free(a);
    return rc;
}

ct_err agent_reset(const char *dir)
{
    ct_err rc = CT_OK;
    agent *a = NULL;
    hsm_key *k = NULL;
    char path[AGENT_PATH_MAX];
    CT_GUARD(agent_open(dir, &a));
    /* Keys first, then the lock: a reset killed half-way leaves a visibly broken device, and re-running
     * it finishes the job; the other order could leave a "fresh" device holding keys already certified. */
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++) {
        rc = agent_key_get(a, (agent_profile)p, false, &k);
        if (rc == CT_ERR_HSM_NO_KEY) continue;
        CT_GUARD(rc);
        rc = hsm_key_destroy(a->h, k); /* frees k either way */
        k = NULL;
        CT_GUARD(rc);
    }
    rc = CT_OK;
    CT_GUARD(agent_path(a, AGENT_CREDS_FILE, path, sizeof path));
    CT_ENSURE_MSG(unlink(path) == 0 || errno == ENOENT, CT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
cleanup:
    hsm_key_free(k);
    agent_close(a);
    return rc;
}
