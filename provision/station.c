/* The factory station: its folder and token (init, install), and the provisioning loop that drives cameras
 * through the factory-line exchange and forwards their CSRs to the CA over EST. */
#define _DEFAULT_SOURCE /* flock */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "../common/factory/factory.h"
#include "../common/note/note.h"
#include "station_priv.h"

#define CERT_FILE_MAX (64 * 1024)
#define DEVICES_FILE_MAX (16 * 1024 * 1024)
#define DEVICE_ADDR_MAX 128
#define SERIAL_MAX 64
#define STATE_MAX 32
#define REASON_MAX 256
#define REPORT_LINE_MAX 2048
#define CHAIN_MAX 4

static const uint8_t station_key_id[] = STATION_KEY_ID;

/* The station's settings; init writes the name row with the name it was given. */
#define STATION_SETTING_ROWS(name)                                                                                 \
    HSM_SETTING_ROWS("camtrust-station", STATION_PIN_ENV),                                                         \
    {"name", name, "station name: the CN of its certificate, as registered with camtrust-ca station add"},          \
    {"log.witnesses", STATION_WITNESSES_FILE, "witnesses whose cosignatures of the CA's checkpoints this station "  \
                                              "counts: one witness.vkey a line (install --witness-vkey writes it)"}, \
    {"log.witnesses_required", "0", "cosignatures of those witnesses the CA's checkpoint must carry before this "  \
                                    "station keeps it or provisions (0: none; install --witnesses K sets it)"}, \
    {"ca.root_crl", "", "the device root's CRL from the key ceremony (DER or PEM; relative to this folder): "          \
                        "certificates of an issuing CA it revokes are refused; provision refuses to run without it "  \
                        "unless it is " STATION_ROOT_CRL_NONE " (no root CRL checked)"}

static const ct_setting station_rows[] = {STATION_SETTING_ROWS("")};
static const ct_settings_schema station_schema = {"camtrust station configuration", station_rows,
                                                  sizeof station_rows / sizeof station_rows[0]};

/* ---- the station folder ---- */

ct_err station_settings_load(const char *dir, station *st)
{
    ct_err rc = CT_OK;
    ct_config *cfg = NULL;
    memset(st, 0, sizeof *st);
    CT_GUARD(ct_strlcpy(st->dir, sizeof st->dir, dir));
    CT_GUARD(ct_settings_load_dir(&station_schema, dir, STATION_CONFIG_FILE,
                                  "not a station folder (camtrust-station init makes one)", &cfg));
    CT_GUARD(hsm_settings_read(&station_schema, cfg, dir, STATION_PIN_ENV, &st->hsm_cfg));
    CT_GUARD(ct_settings_copy(&station_schema, cfg, "name", st->name, sizeof st->name));
    CT_GUARD(ct_settings_copy_path(&station_schema, cfg, "log.witnesses", dir, st->witnesses_path,
                                   sizeof st->witnesses_path));
    long k = 0;
    CT_GUARD(ct_config_get_int(cfg, "log.witnesses_required", 0, 0, CT_COSIG_WITNESSES_MAX, &k));
    st->witnesses_required = (size_t)k;
    st->root_crl_none = strcmp(ct_settings_get(&station_schema, cfg, "ca.root_crl"), STATION_ROOT_CRL_NONE) == 0;
    if (!st->root_crl_none)
        CT_GUARD(ct_settings_copy_path(&station_schema, cfg, "ca.root_crl", dir, st->root_crl, sizeof st->root_crl));
cleanup:
    ct_config_free(cfg);
    return rc;
}

ct_err station_open(const char *dir, unsigned sessions, station *st)
{
    ct_err rc = CT_OK;
    CT_GUARD(station_settings_load(dir, st));
    if (sessions) st->hsm_cfg.sessions = sessions;
    CT_GUARD(hsm_open_settings(&st->hsm_cfg, &st->hsm));
    rc = hsm_key_find(st->hsm, STATION_KEY_LABEL, &st->key);
    CT_ENSURE_MSG(rc == CT_OK, rc, "the station token holds no key '%s': run camtrust-station init", STATION_KEY_LABEL);
cleanup:
    if (rc != CT_OK) station_close(st);
    return rc;
}

void station_close(station *st)
{
    hsm_key_free(st->key); /* keys before the token they live in */
    hsm_close(st->hsm);
    st->key = NULL;
    st->hsm = NULL;
}

/* A station name is what the CA accepts: 1-63 letters, digits, '-', '_', '.'. */
static bool name_valid(const char *name)
{
    size_t n = strlen(name);
    return n > 0 && n < 64 &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

/* The station folder, made in `stage`. */
static ct_err init_build(station *st, const char *stage, const char *name)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT, pem = CT_BUF_INIT;
    char path[STATION_PATH_MAX];
    CT_GUARD(ct_path_join(path, sizeof path, stage, STATION_CONFIG_FILE));
    const ct_setting rows[] = {STATION_SETTING_ROWS(name)};
    const ct_settings_schema with_name = {station_schema.title, rows, sizeof rows / sizeof rows[0]};
    CT_GUARD(ct_settings_write_defaults(&with_name, path));
    CT_GUARD(station_settings_load(stage, st));
    CT_GUARD(hsm_local_token_prepare(&st->hsm_cfg, stage));
    CT_GUARD(hsm_open_settings(&st->hsm_cfg, &st->hsm));
    CT_GUARD(hsm_key_generate(st->hsm, HSM_EC_P256, STATION_KEY_LABEL, station_key_id, sizeof station_key_id,
                              &st->key));
    ct_failpoint("init:keys");
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CSR_DER));
    CT_GUARD(pki_csr_make(st->key, name, NULL, &der));
    CT_GUARD(ct_buf_alloc(&pem, PKI_MAX_CSR_DER * 2));
    CT_GUARD(ct_pem_encode("CERTIFICATE REQUEST", der.data, der.len, &pem));
    CT_GUARD(ct_path_join(path, sizeof path, stage, "station.csr"));
    CT_GUARD(ct_file_write_atomic(path, pem.data, pem.len, 0644));
cleanup:
    ct_buf_free(&der);
    ct_buf_free(&pem);
    return rc;
}

/* Built in a sibling folder and renamed into place when whole: a kill leaves no half station behind. */
ct_err station_init(const char *dir, const char *name)
{
    ct_err rc = CT_OK;
    station st;
    char path[STATION_PATH_MAX], stage[STATION_PATH_MAX];
    bool staged = false;
    memset(&st, 0, sizeof st);
    CT_ENSURE_MSG(name && name_valid(name), CT_ERR_USAGE,
                  "station name '%.64s': use 1-63 letters, digits, '-', '_', '.'", name ? name : "");
    CT_GUARD(ct_path_join(path, sizeof path, dir, STATION_CONFIG_FILE));
    CT_ENSURE_MSG(!ct_file_exists(path), CT_ERR_EXISTS, "%s already holds a station (its request is station.csr)",
                  dir);
    CT_GUARD(ct_dir_check_fresh(dir, NULL, NULL));
    CT_GUARD(ct_dir_stage(dir, stage, sizeof stage));
    staged = true;
    CT_GUARD(init_build(&st, stage, name));
    hsm_settings hs = st.hsm_cfg;
    station_close(&st); /* the token closed before its folder moves */
    CT_GUARD(hsm_local_relocate(&hs, stage, dir));
    CT_GUARD(ct_dir_commit(stage, dir, STATION_CONFIG_FILE));
    staged = false;
cleanup:
    station_close(&st);
    if (staged && ct_dir_discard(stage) != CT_OK) ct_log(CT_LOG_WARN, "stage_left", "path=%s", CT_LOGQ(stage));
    return rc;
}

/* Every PEM certificate of a file, in order (at most `max`). */
static ct_err read_pem_certs(const char *path, size_t max, est_certs *out)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT, der = CT_BUF_INIT;
    out->n = 0;
    CT_GUARD(ct_file_read(path, CERT_FILE_MAX, &file));
    for (;;) {
        CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CERT_DER));
        rc = ct_pem_decode(file.data, file.len, "CERTIFICATE", out->n, &der);
        if (rc == CT_ERR_NOT_FOUND) break;
        CT_GUARD(rc);
        CT_ENSURE_MSG(out->n < max, CT_ERR_BAD_DER, "%s holds more than %zu certificate%s", path, max,
                      max == 1 ? "" : "s");
        out->der[out->n++] = der;
        der = (ct_buf)CT_BUF_INIT;
    }
    rc = CT_OK;
    CT_ENSURE_MSG(out->n > 0, CT_ERR_BAD_DER, "%s holds no PEM certificate", path);
cleanup:
    ct_buf_free(&file);
    ct_buf_free(&der);
    if (rc != CT_OK) est_certs_free(out);
    return rc;
}

static ct_err write_pem_certs(const char *dir, const char *name, const est_certs *certs)
{
    ct_err rc = CT_OK;
    ct_buf pem = CT_BUF_INIT;
    char path[STATION_PATH_MAX];
    CT_GUARD(ct_path_join(path, sizeof path, dir, name));
    CT_GUARD(ct_buf_alloc(&pem, certs->n * PKI_MAX_CERT_DER * 2));
    for (size_t i = 0; i < certs->n; i++)
        CT_GUARD(ct_pem_encode("CERTIFICATE", certs->der[i].data, certs->der[i].len, &pem));
    CT_GUARD(ct_file_write_atomic(path, pem.data, pem.len, 0644));
cleanup:
    ct_buf_free(&pem);
    return rc;
}

/* Pins the CA's checkpoint verifier key: written in its canonical form (into `stage`); a station that pins one keeps
 * it. */
static ct_err install_log_vkey(const char *dir, const char *stage, const char *vkey_path)
{
    ct_note_verifier v, old;
    char path[STATION_PATH_MAX];
    CT_GUARD_RET(ct_note_verifier_load(vkey_path, &v));
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, STATION_LOG_VKEY));
    if (ct_file_exists(path)) {
        CT_GUARD_RET(ct_note_verifier_load(path, &old));
        CT_ENSURE_RET(strcmp(old.name, v.name) == 0 && memcmp(old.pub, v.pub, sizeof v.pub) == 0,
                      ct_fail(CT_ERR_INTEGRITY, "%s pins another log key than %s: a station witnesses one log", path,
                              vkey_path));
    }
    CT_GUARD_RET(ct_path_join(path, sizeof path, stage, STATION_LOG_VKEY));
    return ct_note_verifier_write(&v, path);
}

/* Stages the witnesses a station counts into `stage` (inside `dir`), checked whole before anything is written: the
 * list (log.witnesses, which must be a file of the folder to move with the rest) and a copy of station.conf with
 * log.witnesses_required. `log_key_staged`: the stage pins a log key too. */
static ct_err stage_witnesses(const char *dir, const char *stage, const station_witnesses *sw, bool log_key_staged)
{
    ct_err rc = CT_OK;
    station st;
    ct_note_verifier *w = calloc(CT_COSIG_WITNESSES_MAX, sizeof *w);
    ct_buf list = CT_BUF_INIT, conf = CT_BUF_INIT;
    size_t nw = 0, got = 0, n = sw->n;
    long k = sw->k;
    char path[STATION_PATH_MAX], line[CT_NOTE_VKEY_MAX], num[24];
    CT_ENSURE(w, CT_ERR_NOMEM);
    CT_GUARD(station_settings_load(dir, &st));
    /* Each file read as a list (a witness.vkey is a list of one), all checked before anything is written. */
    for (size_t i = 0; i < n; i++) {
        CT_GUARD(ct_cosig_verifiers_load(sw->vkey_paths[i], w + nw, CT_COSIG_WITNESSES_MAX - nw, &got));
        CT_ENSURE_MSG(got > 0, CT_ERR_CONFIG, "%s holds no witness key", sw->vkey_paths[i]);
        for (size_t j = nw; j < nw + got; j++)
            for (size_t m = 0; m < j; m++)
                CT_ENSURE_MSG(strcmp(w[m].name, w[j].name) != 0, CT_ERR_CONFIG, "witness %s given twice", w[j].name);
        nw += got;
    }
    if (n == 0) CT_GUARD(ct_cosig_verifiers_load(st.witnesses_path, w, CT_COSIG_WITNESSES_MAX, &nw));
    if (k < 0) k = (long)st.witnesses_required;
    CT_ENSURE_MSG((size_t)k <= nw, CT_ERR_USAGE, "--witnesses %ld: only %zu witness key%s configured", k, nw,
                  nw == 1 ? "" : "s");
    CT_GUARD(ct_path_join(path, sizeof path, dir, STATION_LOG_VKEY));
    CT_ENSURE_MSG(k == 0 || log_key_staged || ct_file_exists(path), CT_ERR_USAGE,
                  "--witnesses %ld: the station pins no log key (--log-vkey) whose checkpoints they would cosign", k);
    if (n > 0) {
        const char *slash = strrchr(st.witnesses_path, '/'), *name = slash ? slash + 1 : st.witnesses_path;
        CT_GUARD(ct_path_join(path, sizeof path, dir, name));
        CT_ENSURE_MSG(strcmp(path, st.witnesses_path) == 0, CT_ERR_CONFIG,
                      "log.witnesses (%s) must be a file of %s: it changes with the rest of an install",
                      st.witnesses_path, dir);
        CT_GUARD(ct_buf_alloc(&list, nw * (CT_NOTE_VKEY_MAX + 1) + 1));
        for (size_t i = 0; i < nw; i++) {
            CT_GUARD(ct_cosig_verifier_format(&w[i], line, sizeof line));
            CT_GUARD(ct_buf_appendf(&list, "%s\n", line));
        }
        CT_GUARD(ct_path_join(path, sizeof path, stage, name));
        CT_GUARD(ct_file_write_atomic(path, list.data, list.len, 0644));
    }
    CT_GUARD(ct_snprintf(num, sizeof num, "%ld", k));
    CT_GUARD(ct_path_join(path, sizeof path, dir, STATION_CONFIG_FILE));
    CT_GUARD(ct_file_read(path, CT_CONFIG_MAX_BYTES, &conf));
    CT_GUARD(ct_path_join(path, sizeof path, stage, STATION_CONFIG_FILE));
    CT_GUARD(ct_file_write_atomic(path, conf.data, conf.len, 0600));
    CT_GUARD(ct_settings_set(&station_schema, path, "log.witnesses_required", num));
    if (sw->installed) *sw->installed = (station_quorum){.required = (size_t)k, .configured = nw};
cleanup:
    free(w);
    ct_buf_free(&list);
    ct_buf_free(&conf);
    return rc;
}

bool station_quorum_splittable(const station_quorum *q)
{
    return q->required > 0 && 2 * q->required <= q->configured;
}

ct_err station_install_witnesses(const char *dir, const station_witnesses *sw)
{
    ct_err rc = CT_OK;
    char stage[STATION_PATH_MAX];
    bool staged = false;
    CT_GUARD(ct_dir_recover(dir));
    CT_GUARD(ct_dir_stage_inside(dir, stage, sizeof stage));
    staged = true;
    CT_GUARD(stage_witnesses(dir, stage, sw, false));
    CT_GUARD(ct_dir_commit(stage, dir, STATION_CONFIG_FILE));
    staged = false;
cleanup:
    if (staged && ct_dir_discard(stage) != CT_OK) ct_log(CT_LOG_WARN, "stage_left", "path=%s", CT_LOGQ(stage));
    return rc;
}

ct_err station_install(const char *dir, const char *cert_path, const char *ca_root_path, const char *log_vkey_path,
                       const station_witnesses *witnesses)
{
    ct_err rc = CT_OK;
    station st;
    est_certs chain = {.n = 0}, root = {.n = 0};
    ct_buf spki = CT_BUF_INIT;
    pki_cert_info leaf;
    uint8_t key_hash[32];
    time_t now = time(NULL);
    char stage[STATION_PATH_MAX];
    bool staged = false;
    CT_GUARD(ct_dir_recover(dir)); /* an install a kill cut short: finished first, its log key then checked */
    CT_GUARD(station_open(dir, 1, &st));
    CT_GUARD(read_pem_certs(cert_path, CHAIN_MAX, &chain));
    CT_GUARD(read_pem_certs(ca_root_path, 1, &root));
    CT_GUARD(pki_cert_parse_info(chain.der[0].data, chain.der[0].len, &leaf));
    CT_GUARD(ct_buf_alloc(&spki, 1024));
    CT_GUARD(hsm_key_public_der(st.key, &spki));
    CT_GUARD(ct_sha256(spki.data, spki.len, key_hash));
    CT_ENSURE_MSG(memcmp(key_hash, leaf.spki_sha256, sizeof key_hash) == 0, CT_ERR_INTEGRITY,
                  "%s certifies another key (CN=%s), not this station's token key", cert_path, leaf.subject_cn);
    CT_ENSURE_MSG(strcmp(leaf.subject_cn, st.name) == 0, CT_ERR_INTEGRITY, "%s is for station '%s', this is '%s'",
                  cert_path, leaf.subject_cn, st.name);
    /* Each certificate signed by the next, the last by the given root, and the root by itself. */
    for (size_t i = 0; i < chain.n; i++) {
        const ct_buf *issuer = i + 1 < chain.n ? &chain.der[i + 1] : &root.der[0];
        if ((rc = pki_cert_verify_signed_by(chain.der[i].data, chain.der[i].len, issuer->data, issuer->len, now)) !=
            CT_OK) {
            rc = ct_fail_ctx(CT_ERR_INTEGRITY, "%s does not chain to %s (certificate %zu)", cert_path,
                                  ca_root_path, i + 1);
            goto cleanup;
        }
    }
    if (pki_cert_verify_signed_by(root.der[0].data, root.der[0].len, root.der[0].data, root.der[0].len, now) != CT_OK) {
        rc = ct_fail_ctx(CT_ERR_INTEGRITY, "%s is not a self-signed root", ca_root_path);
        goto cleanup;
    }
    /* The trust root and the certificate that chains to it (and the log key, the witnesses) change together or not
     * at all: written one by one, a kill between them left a station that trusts one CA with another's certificate
     * (or the old witnesses with a new root). Staged in the folder, marked whole, moved up station.pem last; a move
     * a kill cut short is finished by the next command. */
    CT_GUARD(ct_dir_stage_inside(dir, stage, sizeof stage));
    staged = true;
    if (log_vkey_path) CT_GUARD(install_log_vkey(dir, stage, log_vkey_path));
    if (witnesses) CT_GUARD(stage_witnesses(dir, stage, witnesses, log_vkey_path != NULL));
    CT_GUARD(write_pem_certs(stage, "ops-root.pem", &root));
    CT_GUARD(write_pem_certs(stage, "station.pem", &chain));
    CT_GUARD(ct_dir_commit(stage, dir, "station.pem"));
    staged = false;
cleanup:
    if (staged && ct_dir_discard(stage) != CT_OK) ct_log(CT_LOG_WARN, "stage_left", "path=%s", CT_LOGQ(stage));
    station_close(&st);
    est_certs_free(&chain);
    est_certs_free(&root);
    ct_buf_free(&spki);
    return rc;
}

ct_err station_installed(const char *dir, char trust[STATION_PATH_MAX], char chain[STATION_PATH_MAX])
{
    CT_GUARD_RET(ct_dir_recover(dir)); /* an install a kill cut short: finished, or gone when it was not whole */
    CT_GUARD_RET(ct_path_join(trust, STATION_PATH_MAX, dir, "ops-root.pem"));
    CT_GUARD_RET(ct_path_join(chain, STATION_PATH_MAX, dir, "station.pem"));
    CT_ENSURE_RET(ct_file_exists(trust) && ct_file_exists(chain),
                  ct_fail(CT_ERR_CONFIG, "%s is not installed: run camtrust-station install --dir %s", dir, dir));
    return CT_OK;
}

ct_http_config station_est_config(const station *st, const char *url, const char *trust, const char *chain, int timeout_ms)
{
    return (ct_http_config){.url = url, .trust_pem_path = trust, .chain_pem_path = chain,
                            .dev_id = hsm_wolf_dev_id(st->hsm), .key_id = station_key_id,
                            .key_id_len = sizeof station_key_id, .timeout_ms = timeout_ms,
                            .user_agent = "camtrust-station"};
}

ct_err station_summary_text(const station_summary *s, char *out, size_t out_max)
{
    return ct_snprintf(out, out_max, "%zu camera%s: %zu provisioned, %zu already provisioned, %zu failed in %.1f s",
                       s->total, s->total == 1 ? "" : "s", s->provisioned, s->already, s->failed, s->seconds);
}

/* ---- provisioning ---- */

typedef enum { CAM_PROVISIONED, CAM_ALREADY, CAM_FAILED } cam_status;
static const char *const cam_status_name[] = {"provisioned", "already-provisioned", "failed"};

/* The profiles every camera gets, and the EST label each is requested under. */
static const struct {
    const char *profile;
    const char *est_label;
} profiles[] = {{"device", ""}, {"media-signing", "media-signing"}};
#define N_PROFILES (sizeof profiles / sizeof profiles[0])

typedef struct {
    const char *device;
    size_t index; /* in the run's devices */
    char serial[SERIAL_MAX];
    cam_status status;
    char reason[REASON_MAX];
    double ms_keygen, ms_ca, ms_install, ms_total;
} cam_result;

/* A serial a camera named in the first pass, and which camera. */
typedef struct {
    const char *serial;
    size_t device;
} named_camera;

typedef struct {
    const station_provision_opts *o;
    station st;
    char trust_path[STATION_PATH_MAX], chain_path[STATION_PATH_MAX];
    const char **devices;
    size_t n_devices;
    ct_buf devices_text;
    est_certs cacerts;
    char cacerts_error[REASON_MAX]; /* "" when cacerts were read */
    ct_buf root_crl;                /* DER of ca.root_crl, empty when none is configured */
    int timeout_ms;
    int report_fd;
    FILE *progress;
    bool tty;
    bool said_no_log_key;
    bool log_pinned;          /* DIR/log.vkey: cameras get their inclusion proofs */
    ct_note_verifier log_key;
    bool have_kept;           /* the checkpoint kept after the witness before the batch ... */
    ct_checkpoint kept;       /* ... which every checkpoint handed to a camera must extend */
    char kept_path[STATION_PATH_MAX];
    ct_note_verifier *witnesses; /* log.witnesses, loaded when log.witnesses_required > 0: ... */
    size_t n_witnesses;          /* ... a camera's checkpoint carries as many cosignatures as the station's own */
    bool first_pass;              /* the workers only ask each camera its serial (name_camera) */
    char (*named)[SERIAL_MAX];    /* by device: the serial it named in the first pass, "" when it did not answer */
    named_camera *by_serial;      /* those named, in serial order (case-insensitive: one serial at the CA) */
    size_t n_named;
    pthread_mutex_t lock; /* guards next, summary, report and progress */
    size_t next;
    station_summary sum;
} run;

typedef struct {
    run *r;
    ct_http_client *est;
    pthread_t thread;
    bool started;
} worker;

static const char *msg_name(unsigned type)
{
    static const char *const names[] = {"?", "HELLO", "IDENTITY", "GET_CSRS", "CSRS", "INSTALL", "RESULT", "ERROR"};
    return type < sizeof names / sizeof names[0] ? names[type] : "?";
}

/* Sends a question and reads the answer of the expected type; an ERROR answer becomes its reason. */
static ct_err ask(run *r, int fd, const char *addr, const factory_msg *q, factory_type want, factory_msg *a)
{
    char reason[REASON_MAX];
    if (factory_send(fd, q, r->timeout_ms) != CT_OK)
        return ct_fail_ctx(CT_ERR_IO, "camera at %s: cannot send %s", addr, msg_name(q->type));
    if (factory_recv(fd, a, r->timeout_ms) != CT_OK)
        return ct_fail_ctx(CT_ERR_IO, "camera at %s: no complete answer to %s", addr, msg_name(q->type));
    if (a->type == FACTORY_ERROR) {
        if (factory_msg_get_str(a, FACTORY_TAG_REASON, reason, sizeof reason) != CT_OK)
            CT_GUARD_RET(ct_strlcpy(reason, sizeof reason, "no reason given"));
        return ct_fail(CT_ERR_BAD_REQUEST, "camera at %s answered ERROR to %s: %s", addr, msg_name(q->type), reason);
    }
    CT_ENSURE_RET(a->type == want, ct_fail(CT_ERR_BAD_REQUEST, "camera at %s answered %s to %s, expected %s", addr,
                                           msg_name(a->type), msg_name(q->type), msg_name(want)));
    return CT_OK;
}

/* A string field the camera must send; printable ASCII only, since it ends up in reports and logs. */
static ct_err camera_str(const factory_msg *m, factory_tag tag, const char *what, const char *addr, char *out,
                         size_t max)
{
    if (factory_msg_get_str(m, tag, out, max) != CT_OK)
        return ct_fail_ctx(CT_ERR_BAD_REQUEST, "camera at %s: %s", addr, what);
    for (const char *p = out; *p; p++)
        CT_ENSURE_RET(*p >= 0x20 && *p < 0x7f,
                      ct_fail(CT_ERR_BAD_REQUEST, "camera at %s: %s is not printable", addr, what));
    return CT_OK;
}

/* {PROFILE, value}... fields (value: `tag`, at most `max` bytes), one per profile, into out[]: every profile
 * once and none unknown. `what` names the value in reasons. */
static ct_err take_per_profile(const factory_msg *m, const char *serial, factory_tag tag, const char *what, size_t max,
                               ct_buf out[N_PROFILES])
{
    ct_err rc;
    factory_field f;
    size_t off = 0, cur = N_PROFILES;
    while ((rc = factory_msg_next(m, &off, &f)) == CT_OK) {
        if (f.tag == FACTORY_TAG_PROFILE) {
            for (cur = 0; cur < N_PROFILES; cur++)
                if (strlen(profiles[cur].profile) == f.len && memcmp(profiles[cur].profile, f.value, f.len) == 0) break;
            CT_ENSURE_RET(cur < N_PROFILES,
                          ct_fail(CT_ERR_BAD_REQUEST, "camera %s answered a %s for an unknown profile", serial, what));
        } else if (f.tag == tag) {
            CT_ENSURE_RET(cur < N_PROFILES && out[cur].len == 0,
                          ct_fail(CT_ERR_BAD_REQUEST, "camera %s answered a %s without its profile", serial, what));
            CT_ENSURE_RET(f.len > 0 && f.len <= max,
                          ct_fail(CT_ERR_BAD_REQUEST, "camera %s answered a %s of %zu bytes", serial, what, f.len));
            CT_GUARD_RET(ct_buf_alloc(&out[cur], f.len));
            CT_GUARD_RET(ct_buf_set(&out[cur], f.value, f.len));
        }
    }
    CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
    for (size_t i = 0; i < N_PROFILES; i++)
        CT_ENSURE_RET(out[i].len > 0, ct_fail(CT_ERR_BAD_REQUEST, "camera %s answered no %s for profile %s", serial,
                                              what, profiles[i].profile));
    return CT_OK;
}

/* The CSR's challengePassword, under its own signature (checked before), must be this exchange's nonce: CSRs
 * captured on the LAN from an earlier run, replayed by a device that does not hold the keys, carry another or none.
 * An agent from before the nonce sends none: refused too (fail closed), its camera needs the newer firmware. */
static ct_err challenge_check(const ct_buf *csr, const char *serial, const char *profile, const char *nonce)
{
    pki_csr_asks asks;
    ct_err rc = pki_csr_asks_get(csr->data, csr->len, &asks);
    if (rc != CT_OK) return ct_fail_ctx(rc, "camera %s answered a bad %s CSR", serial, profile);
    CT_ENSURE_RET(asks.challenge[0], ct_fail(CT_ERR_INTEGRITY, "camera %s answered a %s CSR without the station's "
                                             "challenge (replayed, or an agent too old to prove its keys afresh)",
                                             serial, profile));
    CT_ENSURE_RET(strlen(asks.challenge) == FACTORY_NONCE_HEX && ct_equal_ct(asks.challenge, nonce, FACTORY_NONCE_HEX),
                  ct_fail(CT_ERR_INTEGRITY, "camera %s answered a %s CSR for another challenge than this run's "
                          "(replayed: it does not prove it holds the key now)", serial, profile));
    return CT_OK;
}

/* CSRS {PROFILE, CSR}...: one CSR per profile asked for, each a valid request for this camera's serial, signed over
 * this exchange's nonce. */
static ct_err take_csrs(const factory_msg *m, const char *serial, const char *nonce, ct_buf csr[N_PROFILES],
                        uint8_t spki_hash[][32])
{
    ct_err rc = CT_OK;
    pki_csr *parsed = NULL;
    CT_GUARD(take_per_profile(m, serial, FACTORY_TAG_CSR, "CSR", PKI_MAX_CSR_DER, csr));
    for (size_t i = 0; i < N_PROFILES; i++) {
        if ((rc = pki_csr_parse(csr[i].data, csr[i].len, &parsed)) != CT_OK) {
            rc = ct_fail_ctx(rc, "camera %s answered a bad %s CSR", serial, profiles[i].profile);
            goto cleanup;
        }
        CT_ENSURE_MSG(strcmp(pki_csr_subject_serial(parsed), serial) == 0, CT_ERR_BAD_CSR,
                      "camera %s answered a CSR for serial %.64s", serial, pki_csr_subject_serial(parsed));
        CT_GUARD(challenge_check(&csr[i], serial, profiles[i].profile, nonce));
        pki_csr_spki_sha256(parsed, spki_hash[i]);
        pki_csr_free(parsed);
        parsed = NULL;
    }
cleanup:
    pki_csr_free(parsed);
    return rc;
}

/* With ca.root_crl: the issuing CA that signed a camera's certificate is not revoked by its root (a key ceremony
 * revoked it; an online CA that still uses it is not to be believed). */
static ct_err issuer_not_revoked(run *r, const char *serial, const char *profile, const ct_buf *ca)
{
    if (!r->root_crl.len) return CT_OK;
    for (size_t j = 0; j < r->cacerts.n; j++) {
        const ct_buf *root = &r->cacerts.der[j];
        pki_crl_status st;
        if (root == ca || pki_cert_verify_signed_by(ca->data, ca->len, root->data, root->len, time(NULL)) != CT_OK)
            continue;
        ct_err rc = pki_crl_check(r->root_crl.data, r->root_crl.len, root->data, root->len, ca->data, ca->len, &st);
        if (rc == CT_ERR_NOT_FOUND) continue;
        if (rc != CT_OK) return ct_fail_ctx(rc, "ca.root_crl %s is unusable", r->st.root_crl);
        CT_ENSURE_RET(!st.revoked, ct_fail(CT_ERR_INTEGRITY, "the CA's %s certificate for %s comes from an issuing CA "
                                           "that the root's CRL (ca.root_crl) revokes", profile, serial));
        return CT_OK;
    }
    return ct_fail(CT_ERR_INTEGRITY, "ca.root_crl %s is not the CRL of the root of the CA's issuing CA",
                   r->st.root_crl);
}

/* ca.root_crl never goes back: the station keeps the newest CRL it took of each key that signed one
 * (STATION_ROOT_CRL_KEPT<SPKI SHA-256 hex>.crl, under the state lock) and refuses an older one, or one that no longer
 * revokes what that one revokes (pki_crl_supersedes, as camtrust-ca install does): whoever can put an older CRL in its
 * place would bring a revoked issuing CA back. One file for every signer let a CRL of another key the CA serves (its
 * issuing CA's, another root's) replace the kept one, after which the older root CRL passed: two steps. A station
 * from before this kept log/root.crl: the first run per key compares with it (a CRL of another key does not count). */
static ct_err root_crl_not_older(run *r)
{
    ct_err rc = CT_OK;
    ct_buf kept = CT_BUF_INIT;
    char path[STATION_PATH_MAX], name[STATION_PATH_MAX], hex[65];
    const ct_buf *root = NULL;
    pki_crl_info info;
    pki_cert_info signer;
    int lock = -1;
    for (size_t j = 0; j < r->cacerts.n && !root; j++)
        if (pki_crl_read(r->root_crl.data, r->root_crl.len, r->cacerts.der[j].data, r->cacerts.der[j].len, &info) ==
            CT_OK)
            root = &r->cacerts.der[j];
    ct_err_clear();
    if (!root) return CT_OK; /* not the CA's root's: issuer_not_revoked refuses each camera so */
    CT_GUARD(pki_cert_parse_info(root->data, root->len, &signer));
    CT_GUARD(ct_hex_encode(signer.spki_sha256, sizeof signer.spki_sha256, hex, sizeof hex));
    CT_GUARD(ct_snprintf(name, sizeof name, STATION_ROOT_CRL_KEPT "%s.crl", hex));
    CT_GUARD(station_state_lock(r->st.dir, &lock));
    CT_GUARD(ct_path_join(path, sizeof path, r->st.dir, STATION_ROOT_CRL_LEGACY));
    if (ct_file_exists(path)) CT_GUARD(ct_file_read(path, PKI_MAX_CERT_DER * 64, &kept));
    CT_GUARD(ct_path_join(path, sizeof path, r->st.dir, name));
    bool of_key = ct_file_exists(path);
    if (of_key) {
        ct_buf_free(&kept);
        CT_GUARD(ct_file_read(path, PKI_MAX_CERT_DER * 64, &kept));
    }
    rc = pki_crl_supersedes(r->root_crl.data, r->root_crl.len, kept.data, kept.len, root->data, root->len);
    if (rc != CT_OK) {
        rc = ct_fail_ctx(CT_ERR_INTEGRITY, "ca.root_crl %s is older than the one this station took (%s)",
                         r->st.root_crl, name);
        goto cleanup;
    }
    if (!of_key || kept.len != r->root_crl.len || memcmp(kept.data, r->root_crl.data, kept.len) != 0)
        CT_GUARD(ct_file_write_atomic(path, r->root_crl.data, r->root_crl.len, 0644));
cleanup:
    if (lock >= 0) close(lock); /* and the lock with it */
    ct_buf_free(&kept);
    return rc;
}

/* The certificate must be for the key of the CSR and signed by a CA of cacerts; gives that issuer. */
static ct_err check_issued(run *r, const char *serial, const char *profile, const ct_buf *leaf,
                           const uint8_t spki_hash[32], const ct_buf **issuer)
{
    pki_cert_info info;
    if (pki_cert_parse_info(leaf->data, leaf->len, &info) != CT_OK)
        return ct_fail_ctx(CT_ERR_BAD_DER, "the CA's %s certificate for %s is unreadable", profile, serial);
    CT_ENSURE_RET(memcmp(info.spki_sha256, spki_hash, 32) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "the CA answered a %s certificate for another key than camera %s's",
                          profile, serial));
    for (size_t i = 0; i < r->cacerts.n; i++) {
        const ct_buf *ca = &r->cacerts.der[i];
        if (pki_cert_verify_signed_by(leaf->data, leaf->len, ca->data, ca->len, time(NULL)) == CT_OK) {
            *issuer = ca;
            return issuer_not_revoked(r, serial, profile, ca);
        }
    }
    return ct_fail(CT_ERR_INTEGRITY, "the CA's %s certificate for %s is not signed by a CA of its cacerts", profile,
                   serial);
}

/* The inclusion proof of `leaf` in the tree of checkpoint `cp`, checked here too: uint64 BE index || path. */
static ct_err inclusion(worker *w, const ct_buf *leaf, const ct_checkpoint *cp, ct_buf *out)
{
    ct_err rc = CT_OK;
    ct_buf body = CT_BUF_INIT;
    pki_cert_info info;
    ct_merkle_hash path[CT_MERKLE_MAX_PATH];
    uint8_t leaf_hash[CT_MERKLE_HASH_LEN], be[8];
    size_t n = 0;
    char q[160];
    CT_GUARD(pki_cert_parse_info(leaf->data, leaf->len, &info));
    CT_GUARD(ct_snprintf(q, sizeof q, "/log/proof/inclusion?serial=%s&tree_size=%llu", info.serial_hex,
                         (unsigned long long)cp->size));
    CT_GUARD(ct_http_get(w->est, q, "the inclusion proof", 8192, &body));
    body.data[body.len] = '\0';
    const char *li = strstr((const char *)body.data, "\"leaf_index\":");
    CT_ENSURE_MSG(li, CT_ERR_INTEGRITY, "the CA's inclusion proof for %s has no leaf_index", info.serial_hex);
    unsigned long long index = strtoull(li + strlen("\"leaf_index\":"), NULL, 10);
    CT_GUARD(ct_http_json_hashes(&body, "audit_path", path, &n));
    CT_GUARD(ct_merkle_leaf_hash(leaf->data, leaf->len, leaf_hash));
    CT_ENSURE_MSG(ct_merkle_verify_inclusion(leaf_hash, index, cp->size, path, n, cp->root), CT_ERR_INTEGRITY,
                  "the CA's inclusion proof for %s does not lead to its checkpoint of size %llu", info.serial_hex,
                  (unsigned long long)cp->size);
    for (int i = 0; i < 8; i++) be[i] = (uint8_t)(index >> (56 - 8 * i));
    CT_GUARD(ct_buf_alloc(out, sizeof be + n * CT_MERKLE_HASH_LEN));
    CT_GUARD(ct_buf_set(out, be, sizeof be));
    CT_GUARD(ct_buf_append(out, path, n * CT_MERKLE_HASH_LEN));
cleanup:
    ct_buf_free(&body);
    return rc;
}

/* The leaves' inclusion proofs and the checkpoint they lead to, for the camera to keep and check offline. The CA
 * signs a checkpoint log.sth_delay_ms after a burst: until one covers the leaves, ask again (bounded). */
static ct_err log_proofs(worker *w, const ct_buf leaf[N_PROFILES], ct_buf *note, ct_buf proof[N_PROFILES])
{
    run *r = w->r;
    ct_checkpoint cp;
    ct_err rc = CT_OK;
    for (int attempt = 0;; attempt++) {
        ct_buf_free(note);
        for (size_t i = 0; i < N_PROFILES; i++) ct_buf_free(&proof[i]);
        CT_GUARD_RET(ct_http_get(w->est, "/log/checkpoint", "the checkpoint", CT_NOTE_MAX, note));
        if (ct_checkpoint_open(note->data, note->len, &r->log_key, &cp) != CT_OK)
            return ct_fail_ctx(CT_ERR_INTEGRITY, "the CA's checkpoint");
        /* A camera keeps this checkpoint as the proof of its identity: never one the station's own history of the
         * log contradicts, even when the witness before the batch could not be made (a connection cut, a 503). */
        if (r->have_kept && (rc = ct_http_log_extends(w->est, r->kept_path, &r->kept, &cp, NULL)) != CT_OK)
            return rc;
        for (size_t i = 0; i < N_PROFILES && rc == CT_OK; i++) rc = inclusion(w, &leaf[i], &cp, &proof[i]);
        if (rc == CT_ERR_INTEGRITY || (rc != CT_OK && attempt * 50 >= r->timeout_ms))
            return ct_fail_ctx(rc, "no checkpoint of the CA's log covers the certificates");
        /* Witnessed as the station's own checkpoint must be: else a CA could prove the camera's leaves in a tree
         * shown to this station alone (a copy grown aside), which no witness ever sees nor can contradict. */
        if (rc == CT_OK && r->st.witnesses_required > 0) {
            size_t have = 0;
            char what[96];
            CT_GUARD_RET(ct_snprintf(what, sizeof what, "the CA's checkpoint of size %llu for the camera's proofs",
                                     (unsigned long long)cp.size));
            rc = ct_cosig_witnessed(note->data, note->len, r->witnesses, r->n_witnesses, r->st.witnesses_required,
                                    what, &have);
            if (rc != CT_OK && attempt * 50 >= r->timeout_ms) return ct_fail_ctx(CT_ERR_FORBIDDEN, "not witnessed");
        }
        if (rc == CT_OK) return station_log_keep(r->st.dir, &r->log_key, w->est, note, &cp);
        rc = CT_OK;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Connects and asks the camera who it is: its IDENTITY answer in `a`, the serial and state it names (printable). */
static ct_err hello(run *r, const char *addr, int *fd, factory_msg *a, char serial[SERIAL_MAX], char state[STATE_MAX])
{
    ct_err rc = CT_OK;
    factory_msg q = {0};
    if ((rc = factory_connect(addr, r->timeout_ms, fd)) != CT_OK) return ct_fail_ctx(rc, "camera unreachable at %s", addr);
    CT_GUARD(factory_msg_init(&q, FACTORY_HELLO));
    CT_GUARD(ask(r, *fd, addr, &q, FACTORY_IDENTITY, a));
    CT_GUARD(camera_str(a, FACTORY_TAG_SERIAL, "no serial number", addr, serial, SERIAL_MAX));
    CT_GUARD(camera_str(a, FACTORY_TAG_STATE, "no state", addr, state, STATE_MAX));
cleanup:
    factory_msg_free(&q);
    return rc;
}

static int named_cmp(const void *x, const void *y)
{
    return strcasecmp(((const named_camera *)x)->serial, ((const named_camera *)y)->serial);
}

/* The first pass, before any camera is enrolled: the serial each one names. One that does not answer stays unnamed;
 * the second pass asks it again and says why. */
static void name_camera(run *r, size_t i)
{
    factory_msg a = {0};
    char state[STATE_MAX];
    int fd = -1;
    if (hello(r, r->devices[i], &fd, &a, r->named[i], state) != CT_OK) r->named[i][0] = '\0';
    if (fd >= 0) close(fd);
    factory_msg_free(&a);
}

/* A serial is one camera's: when two cameras of the run name one serial, one is not what it says (a clone, a
 * rogue device, unprogrammed fuses), and whichever the CA heard first would get the identity. Neither gets it; nor
 * a camera that names another serial than in the first pass. */
static ct_err claim_check(const run *r, const cam_result *res)
{
    const char *first = r->named[res->index];
    CT_ENSURE_RET(!*first || strcmp(first, res->serial) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "camera at %s named serial %s, then %s", res->device, first, res->serial));
    named_camera key = {res->serial, res->index};
    const named_camera *hit = r->n_named ? bsearch(&key, r->by_serial, r->n_named, sizeof key, named_cmp) : NULL;
    while (hit && hit > r->by_serial && named_cmp(hit - 1, &key) == 0) hit--;
    for (; hit && hit < r->by_serial + r->n_named && named_cmp(hit, &key) == 0; hit++)
        CT_ENSURE_RET(hit->device == res->index || strcmp(r->devices[hit->device], res->device) == 0, /* listed twice */
                      ct_fail(CT_ERR_INTEGRITY, "serial %s is named by the cameras at %s and %s: neither is provisioned "
                              "(one of them is not what it says)", res->serial, res->device, r->devices[hit->device]));
    return CT_OK;
}

/* One camera, start to finish; the reason of a failure is left in ct_err_detail. */
static ct_err provision_camera(worker *w, cam_result *res, int *fd)
{
    ct_err rc = CT_OK;
    run *r = w->r;
    factory_msg q = {0}, a = {0};
    ct_buf csr[N_PROFILES] = {CT_BUF_INIT, CT_BUF_INIT}, leaf[N_PROFILES] = {CT_BUF_INIT, CT_BUF_INIT};
    ct_buf installed[N_PROFILES] = {CT_BUF_INIT, CT_BUF_INIT}, proof[N_PROFILES] = {CT_BUF_INIT, CT_BUF_INIT};
    ct_buf note = CT_BUF_INIT;
    const ct_buf *issuer[N_PROFILES] = {NULL, NULL};
    uint8_t spki_hash[N_PROFILES][32], nonce_raw[FACTORY_NONCE_BYTES];
    char state[STATE_MAX], reason[REASON_MAX] = "", status[64], nonce[FACTORY_NONCE_HEX + 1];
    const char *addr = res->device;
    bool locked = false;
    double t;

    CT_GUARD(hello(r, addr, fd, &a, res->serial, state));
    CT_GUARD(claim_check(r, res));
    if (strcmp(state, "provisioned") == 0) {
        /* Installed before, perhaps with the result lost (a power cut right after the camera's rename): it counts
         * only once the CA confirms it. The camera shows its leaves and proves with fresh CSRs that it holds
         * their keys; the CA, asked again with those keys, answers the certificate it holds current for them
         * (never a new one); only the very bytes installed are a success. */
        CT_GUARD(take_per_profile(&a, res->serial, FACTORY_TAG_CERT, "installed certificate", PKI_MAX_CERT_DER,
                                  installed));
        locked = true;
    } else if (strcmp(state, "unprovisioned") != 0) {
        if (factory_msg_get_str(&a, FACTORY_TAG_REASON, reason, sizeof reason) != CT_OK) reason[0] = '\0';
        rc = ct_fail(CT_ERR_BAD_REQUEST, "camera %s is in state '%s'%s%s", res->serial, state, *reason ? ": " : "",
                     reason);
        goto cleanup;
    }
    /* Without the CA's certificates nothing can be installed: stop before the camera makes keys. */
    CT_ENSURE_MSG(!*r->cacerts_error, CT_ERR_IO, "%s", r->cacerts_error);

    factory_msg_free(&q);
    factory_msg_free(&a);
    /* A fresh nonce per exchange: the camera signs it inside its CSRs, so nothing is forwarded to the CA, nor a
     * camera counted already provisioned, on CSRs captured before. */
    CT_GUARD(ct_random(nonce_raw, sizeof nonce_raw));
    CT_GUARD(ct_hex_encode(nonce_raw, sizeof nonce_raw, nonce, sizeof nonce));
    CT_GUARD(factory_msg_init(&q, FACTORY_GET_CSRS));
    for (size_t i = 0; i < N_PROFILES; i++) CT_GUARD(factory_msg_add_str(&q, FACTORY_TAG_PROFILE, profiles[i].profile));
    CT_GUARD(factory_msg_add_str(&q, FACTORY_TAG_NONCE, nonce));
    t = (double)ct_now_ms();
    CT_GUARD(ask(r, *fd, addr, &q, FACTORY_CSRS, &a));
    res->ms_keygen = (double)ct_now_ms() - t;
    CT_GUARD(take_csrs(&a, res->serial, nonce, csr, spki_hash));

    t = (double)ct_now_ms();
    for (size_t i = 0; i < N_PROFILES; i++) {
        CT_GUARD(est_simpleenroll(w->est, profiles[i].est_label, csr[i].data, csr[i].len, &leaf[i]));
        CT_GUARD(check_issued(r, res->serial, profiles[i].profile, &leaf[i], spki_hash[i], &issuer[i]));
        CT_ENSURE_MSG(!locked || (leaf[i].len == installed[i].len &&
                                  memcmp(leaf[i].data, installed[i].data, leaf[i].len) == 0),
                      CT_ERR_INTEGRITY, "camera %s is provisioned, but its %s certificate is not the one the CA holds "
                      "current for its key", res->serial, profiles[i].profile);
    }
    res->ms_ca = (double)ct_now_ms() - t;
    if (locked) {
        res->status = CAM_ALREADY;
        CT_GUARD(ct_strlcpy(res->reason, sizeof res->reason, "installed before; the CA confirms its certificates"));
        goto cleanup;
    }

    if (r->log_pinned) CT_GUARD(log_proofs(w, leaf, &note, proof));
    /* One INSTALL with every profile: the camera installs all of it or nothing. */
    factory_msg_free(&q);
    factory_msg_free(&a);
    CT_GUARD(factory_msg_init(&q, FACTORY_INSTALL));
    for (size_t i = 0; i < N_PROFILES; i++) {
        CT_GUARD(factory_msg_add_str(&q, FACTORY_TAG_PROFILE, profiles[i].profile));
        CT_GUARD(factory_msg_add(&q, FACTORY_TAG_CERT, leaf[i].data, leaf[i].len));
        CT_GUARD(factory_msg_add(&q, FACTORY_TAG_CERT, issuer[i]->data, issuer[i]->len));
        if (r->log_pinned) CT_GUARD(factory_msg_add(&q, FACTORY_TAG_LOG_PROOF, proof[i].data, proof[i].len));
    }
    if (r->log_pinned) CT_GUARD(factory_msg_add(&q, FACTORY_TAG_CHECKPOINT, note.data, note.len));
    t = (double)ct_now_ms();
    CT_GUARD(ask(r, *fd, addr, &q, FACTORY_RESULT, &a));
    res->ms_install = (double)ct_now_ms() - t;
    CT_GUARD(camera_str(&a, FACTORY_TAG_STATUS, "no status in its result", addr, status, sizeof status));
    if (strcmp(status, "ok") != 0) {
        if (factory_msg_get_str(&a, FACTORY_TAG_REASON, reason, sizeof reason) != CT_OK) reason[0] = '\0';
        rc = ct_fail(CT_ERR_INTEGRITY, "camera %s refused the install (%s)%s%s", res->serial, status,
                     *reason ? ": " : "", reason);
        goto cleanup;
    }
    res->status = CAM_PROVISIONED;
cleanup:
    factory_msg_free(&q);
    factory_msg_free(&a);
    for (size_t i = 0; i < N_PROFILES; i++) {
        ct_buf_free(&csr[i]);
        ct_buf_free(&leaf[i]);
        ct_buf_free(&installed[i]);
        ct_buf_free(&proof[i]);
    }
    ct_buf_free(&note);
    return rc;
}

static ct_err report_line(const cam_result *res, ct_buf *line)
{
    CT_GUARD_RET(ct_buf_appendf(line, "{\"device\":"));
    CT_GUARD_RET(ct_json_string(line, res->device));
    CT_GUARD_RET(ct_buf_appendf(line, ",\"serial\":"));
    CT_GUARD_RET(ct_json_string(line, res->serial));
    CT_GUARD_RET(ct_buf_appendf(line, ",\"status\":\"%s\",\"reason\":", cam_status_name[res->status]));
    CT_GUARD_RET(ct_json_string(line, res->reason));
    return ct_buf_appendf(line, ",\"ms\":{\"keygen\":%.1f,\"ca\":%.1f,\"install\":%.1f,\"total\":%.1f}}\n",
                          res->ms_keygen, res->ms_ca, res->ms_install, res->ms_total);
}

static void show_progress(run *r, const cam_result *res)
{
    const station_summary *s = &r->sum;
    size_t done = s->provisioned + s->already + s->failed;
    if (!r->tty) {
        fprintf(r->progress, "camtrust-station: %s %s %s%s%s (%.0f ms)\n", res->device,
                *res->serial ? res->serial : "-", cam_status_name[res->status], *res->reason ? ": " : "", res->reason,
                res->ms_total);
        fflush(r->progress);
        return;
    }
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    size_t fill = s->total ? done * WIDTH / s->total : WIDTH;
    for (size_t i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    if (res->status == CAM_FAILED)
        fprintf(r->progress, "\r\033[K%s %s failed: %s\n", res->device, *res->serial ? res->serial : "-", res->reason);
    fprintf(r->progress, "\r\033[K[%s] %zu/%zu  provisioned %zu  already %zu  failed %zu", bar, done, s->total,
            s->provisioned, s->already, s->failed);
    if (done == s->total) fputc('\n', r->progress);
    fflush(r->progress);
}

/* One line appended whole or not at all: a short write (a full disk) is cut back, under the lock every run writing
 * this report takes, so that no later line continues a torn one. */
static bool report_write(int fd, const ct_buf *line)
{
    bool locked = flock(fd, LOCK_EX) == 0;
    off_t end = locked ? lseek(fd, 0, SEEK_END) : -1;
    ssize_t n = end >= 0 ? write(fd, line->data, line->len) : -1;
    if (n >= 0 && n != (ssize_t)line->len && ftruncate(fd, end) != 0)
        ct_log(CT_LOG_ERROR, "report", "msg=\"a torn line not cut back\"");
    if (locked) (void)flock(fd, LOCK_UN);
    return n == (ssize_t)line->len;
}

static void record(run *r, const cam_result *res)
{
    ct_buf line = CT_BUF_INIT;
    bool ok = ct_buf_alloc(&line, REPORT_LINE_MAX) == CT_OK && report_line(res, &line) == CT_OK;
    pthread_mutex_lock(&r->lock);
    if (res->status == CAM_PROVISIONED) r->sum.provisioned++;
    else if (res->status == CAM_ALREADY) r->sum.already++;
    else r->sum.failed++;
    /* One write per line on an O_APPEND file: lines of concurrent runs never interleave. */
    if (!ok || !report_write(r->report_fd, &line))
        ct_log(CT_LOG_ERROR, "report", "device=%s msg=\"report not written\"", CT_LOGQ(res->device));
    show_progress(r, res);
    pthread_mutex_unlock(&r->lock);
    ct_buf_free(&line);
}

/* The reason of a failure for the report: never empty. */
static void copy_reason(ct_err rc, char *out, size_t max)
{
    const char *d = ct_err_detail();
    if (ct_snprintf(out, max, "%s", *d ? d : ct_err_message(rc)) != CT_OK) out[0] = '?', out[1] = '\0';
}

static void *work(void *arg)
{
    worker *w = arg;
    run *r = w->r;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        size_t i = r->next < r->n_devices ? r->next++ : r->n_devices;
        pthread_mutex_unlock(&r->lock);
        if (i == r->n_devices) break;
        if (r->first_pass) {
            name_camera(r, i);
            continue;
        }
        cam_result res = {.device = r->devices[i], .index = i, .status = CAM_FAILED};
        int fd = -1;
        double start = (double)ct_now_ms();
        ct_err_clear();
        ct_err rc = provision_camera(w, &res, &fd);
        if (fd >= 0) close(fd);
        res.ms_total = (double)ct_now_ms() - start;
        if (rc != CT_OK) {
            res.status = CAM_FAILED;
            copy_reason(rc, res.reason, sizeof res.reason);
        }
        record(r, &res);
    }
    wc_ecc_fp_free(); /* wolfSSL's fixed-point cache is per thread */
    return NULL;
}

/* The device list: the addresses given, then those of the file (one a line, '#' comments). */
static ct_err devices_collect(run *r)
{
    const station_provision_opts *o = r->o;
    size_t lines = 0;
    if (o->devices_file) {
        /* A list, not a certificate: a pipe too (--devices <(a scan of the line)), as order create --serials. */
        CT_GUARD_RET(ct_file_read_stream(o->devices_file, DEVICES_FILE_MAX, &r->devices_text));
        r->devices_text.data[r->devices_text.len] = '\0';
        for (size_t i = 0; i < r->devices_text.len; i++) lines += r->devices_text.data[i] == '\n';
        lines++;
    }
    CT_ENSURE_RET(o->n_devices <= STATION_MAX_DEVICES,
                  ct_fail(CT_ERR_USAGE, "more than %d cameras", STATION_MAX_DEVICES));
    r->devices = calloc(o->n_devices + lines + 1, sizeof *r->devices);
    r->named = calloc(o->n_devices + lines + 1, sizeof *r->named);
    CT_ENSURE_RET(r->devices && r->named, CT_ERR_NOMEM);
    for (size_t i = 0; i < o->n_devices; i++) {
        CT_ENSURE_RET(strlen(o->devices[i]) < DEVICE_ADDR_MAX,
                      ct_fail(CT_ERR_USAGE, "device address '%.40s...' is too long", o->devices[i]));
        r->devices[r->n_devices++] = o->devices[i];
    }
    char *save = NULL;
    for (char *l = o->devices_file ? strtok_r((char *)r->devices_text.data, "\n", &save) : NULL; l;
         l = strtok_r(NULL, "\n", &save)) {
        l += strspn(l, " \t");
        size_t n = strcspn(l, "#");
        while (n > 0 && strchr(" \t\r", l[n - 1])) n--;
        l[n] = '\0';
        if (n == 0) continue;
        CT_ENSURE_RET(n < DEVICE_ADDR_MAX,
                      ct_fail(CT_ERR_USAGE, "%s: address '%.40s...' is too long", o->devices_file, l));
        r->devices[r->n_devices++] = l;
    }
    CT_ENSURE_RET(r->n_devices > 0 && r->n_devices <= STATION_MAX_DEVICES,
                  ct_fail(CT_ERR_USAGE, "give 1 to %d cameras (--device or --devices)", STATION_MAX_DEVICES));
    return CT_OK;
}

/* The station as a witness of the CA's log (station_log.c), before and after each batch: a log that shrank or
 * forked, or (log.witnesses_required) a checkpoint not cosigned by enough witnesses or a witness list that cannot
 * be read, stops provisioning, with a report line; a CA that shows no checkpoint yet, or a station that pins no
 * log key (said once), does not. */
static ct_err witness(run *r, ct_http_client *c, const char *when)
{
    char line[2 * REASON_MAX];
    ct_buf rep = CT_BUF_INIT;
    ct_err_clear();
    ct_err rc = station_log_witness(&r->st, c, r->timeout_ms, line, sizeof line);
    if (rc == CT_OK) {
        fprintf(r->progress, "camtrust-station: %s\n", line);
        return CT_OK;
    }
    copy_reason(rc, line, sizeof line);
    if (rc != CT_ERR_INTEGRITY && rc != CT_ERR_FORBIDDEN && rc != CT_ERR_CONFIG) {
        if (!(rc == CT_ERR_NOT_FOUND && r->said_no_log_key))
            fprintf(r->progress, "camtrust-station: the CA's log not witnessed %s: %s\n", when, line);
        r->said_no_log_key |= rc == CT_ERR_NOT_FOUND;
        return CT_OK;
    }
    if (ct_buf_alloc(&rep, REPORT_LINE_MAX) == CT_OK && ct_buf_appendf(&rep, "{\"status\":\"%s\",\"when\":",
                                                            rc == CT_ERR_INTEGRITY ? "log-inconsistent" : "log-unwitnessed") == CT_OK &&
        ct_json_string(&rep, when) == CT_OK && ct_buf_appendf(&rep, ",\"reason\":") == CT_OK &&
        ct_json_string(&rep, line) == CT_OK && ct_buf_appendf(&rep, "}\n") == CT_OK) {
        if (!report_write(r->report_fd, &rep)) ct_log(CT_LOG_ERROR, "report", "msg=\"report not written\"");
    }
    ct_buf_free(&rep);
    return ct_fail(rc, "provisioning stopped %s: %s", when, line);
}

/* A report that a power cut or a full disk left with an unfinished last line has it cut off (it was never a record:
 * the camera is asked again), so that every line stays one JSON object and the next one starts on a line of its own.
 * A file whose unfinished tail is not a report line is refused, not cut. */
static ct_err report_repair(run *r, const char *path)
{
    ct_err rc = CT_OK;
    char tail[REPORT_LINE_MAX];
    CT_ENSURE_MSG(flock(r->report_fd, LOCK_EX) == 0, CT_ERR_IO, "cannot lock the report %s: %s", path, strerror(errno));
    off_t end = lseek(r->report_fd, 0, SEEK_END);
    size_t n = end > 0 && end < (off_t)sizeof tail ? (size_t)end : end > 0 ? sizeof tail : 0;
    CT_ENSURE_MSG(end >= 0 && pread(r->report_fd, tail, n, end - (off_t)n) == (ssize_t)n, CT_ERR_IO,
                  "cannot read the report %s: %s", path, strerror(errno));
    if (n == 0 || tail[n - 1] == '\n') goto cleanup;
    size_t start = n; /* of the unfinished line, in tail */
    while (start > 0 && tail[start - 1] != '\n') start--;
    CT_ENSURE_MSG((start > 0 || (off_t)n == end) && tail[start] == '{', CT_ERR_CONFIG,
                  "the report %s does not end with a whole line, nor with part of a station's: give another --report",
                  path);
    CT_ENSURE_MSG(ftruncate(r->report_fd, end - (off_t)(n - start)) == 0, CT_ERR_IO, "cannot cut the report %s: %s",
                  path, strerror(errno));
    fprintf(r->progress, "camtrust-station: %s ended with an unfinished line (%zu bytes: a power cut or a full disk), "
            "cut off\n", path, n - start);
cleanup:
    if (r->report_fd >= 0) (void)flock(r->report_fd, LOCK_UN);
    return rc;
}

static ct_err run_prepare(run *r, const station_provision_opts *o)
{
    char report[STATION_PATH_MAX];
    r->o = o;
    r->report_fd = -1;
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : FACTORY_DEFAULT_TIMEOUT_MS;
    r->progress = o->progress ? o->progress : stderr;
    r->tty = isatty(fileno(r->progress)) == 1;
    CT_ENSURE_RET(o->dir && o->ca_url, ct_fail(CT_ERR_USAGE, "--dir and --ca are required"));
    CT_GUARD_RET(devices_collect(r));
    CT_GUARD_RET(station_installed(o->dir, r->trust_path, r->chain_path));
    ct_err rc = station_log_vkey(o->dir, &r->log_key);
    CT_ENSURE_RET(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    r->log_pinned = rc == CT_OK;
    if (o->report_path) CT_GUARD_RET(ct_strlcpy(report, sizeof report, o->report_path));
    else CT_GUARD_RET(ct_path_join(report, sizeof report, o->dir, "report.jsonl"));
    r->report_fd = open(report, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    CT_ENSURE_RET(r->report_fd >= 0, ct_fail(CT_ERR_IO, "cannot open the report %s: %s", report, strerror(errno)));
    return report_repair(r, report);
}

/* The workers through every camera once: the first pass (each one's serial) or the second (provisioning). */
static ct_err run_pass(run *r, worker *workers, size_t jobs, bool first)
{
    ct_err rc = CT_OK;
    r->first_pass = first;
    r->next = 0;
    for (size_t i = 0; i < jobs && rc == CT_OK; i++) {
        workers[i].started = pthread_create(&workers[i].thread, NULL, work, &workers[i]) == 0;
        if (!workers[i].started) rc = ct_fail(CT_ERR_INTERNAL, "cannot start worker threads");
    }
    for (size_t i = 0; i < jobs; i++)
        if (workers[i].started) {
            pthread_join(workers[i].thread, NULL);
            workers[i].started = false; /* joined: a next pass that fails to start it must not join it again */
        }
    return rc;
}

/* The serials the first pass found, in order for claim_check's look-ups. */
static ct_err claims_sort(run *r)
{
    r->by_serial = calloc(r->n_devices, sizeof *r->by_serial);
    CT_ENSURE_RET(r->by_serial, CT_ERR_NOMEM);
    for (size_t i = 0; i < r->n_devices; i++)
        if (*r->named[i]) r->by_serial[r->n_named++] = (named_camera){r->named[i], i};
    qsort(r->by_serial, r->n_named, sizeof *r->by_serial, named_cmp);
    return CT_OK;
}

ct_err station_provision(const station_provision_opts *o, station_summary *sum)
{
    ct_err rc = CT_OK;
    run r;
    worker *workers = NULL;
    size_t jobs = 0;
    double start = (double)ct_now_ms();
    memset(&r, 0, sizeof r);
    memset(sum, 0, sizeof *sum);
    CT_ENSURE_RET(pthread_mutex_init(&r.lock, NULL) == 0, CT_ERR_INTERNAL);
    CT_GUARD(run_prepare(&r, o));
    jobs = o->jobs ? o->jobs : STATION_DEFAULT_JOBS;
    CT_ENSURE_MSG(jobs <= STATION_MAX_JOBS, CT_ERR_USAGE, "--jobs must be 1..%d", STATION_MAX_JOBS);
    if (jobs > r.n_devices) jobs = r.n_devices;
    CT_GUARD(station_open(o->dir, (unsigned)jobs + 1, &r.st));
    /* Without the root's CRL a revoked issuing CA that the online CA still uses goes unnoticed: an operator says so
     * (none), it does not follow from a setting left empty. */
    CT_ENSURE_MSG(*r.st.root_crl || r.st.root_crl_none, CT_ERR_CONFIG,
                  "%s/" STATION_CONFIG_FILE " sets no ca.root_crl (the device root's CRL from the key ceremony): "
                  "set it, or ca.root_crl = " STATION_ROOT_CRL_NONE " to take certificates without that check",
                  o->dir);
    if (*r.st.root_crl) CT_GUARD(ct_pem_or_der_read(r.st.root_crl, "X509 CRL", PKI_MAX_CERT_DER * 64, &r.root_crl));
    workers = calloc(jobs, sizeof *workers);
    CT_ENSURE(workers, CT_ERR_NOMEM);
    ct_http_config ec = station_est_config(&r.st, o->ca_url, r.trust_path, r.chain_path, r.timeout_ms);
    for (size_t i = 0; i < jobs; i++) {
        workers[i].r = &r;
        CT_GUARD(ct_http_client_new(&ec, &workers[i].est));
    }
    CT_GUARD(witness(&r, workers[0].est, "before the batch"));
    if (r.log_pinned) CT_GUARD(station_log_kept(o->dir, &r.log_key, r.kept_path, &r.kept, &r.have_kept));
    if (r.log_pinned && r.st.witnesses_required > 0) {
        r.witnesses = calloc(CT_COSIG_WITNESSES_MAX, sizeof *r.witnesses);
        CT_ENSURE(r.witnesses, CT_ERR_NOMEM);
        CT_GUARD(ct_cosig_verifiers_load(r.st.witnesses_path, r.witnesses, CT_COSIG_WITNESSES_MAX, &r.n_witnesses));
    }
    /* Once per run: the issuing CA every camera gets with its certificates. A CA that is down fails each
     * camera with this reason before it makes keys, and installs nothing. */
    ct_err_clear();
    ct_err ca_rc = est_cacerts(workers[0].est, &r.cacerts);
    if (ca_rc != CT_OK) {
        copy_reason(ca_rc, r.cacerts_error, sizeof r.cacerts_error);
        fprintf(r.progress, "camtrust-station: %s\n", r.cacerts_error);
    } else if (r.root_crl.len) {
        CT_GUARD(root_crl_not_older(&r));
    }
    r.sum.total = r.n_devices;
    if (r.n_devices > 1) { /* which serial each camera names, before any is enrolled (claim_check) */
        CT_GUARD(run_pass(&r, workers, jobs, true));
        CT_GUARD(claims_sort(&r));
    }
    CT_GUARD(run_pass(&r, workers, jobs, false));
    ct_failpoint_hold("station:batch-done"); /* tests: the CA changes between the cameras and the witness after */
    CT_GUARD(witness(&r, workers[0].est, "after the batch"));
cleanup:
    if (rc == CT_OK && r.report_fd >= 0 && fsync(r.report_fd) != 0)
        rc = ct_fail(CT_ERR_IO, "cannot sync the report: %s", strerror(errno));
    for (size_t i = 0; workers && i < jobs; i++) ct_http_client_free(workers[i].est);
    free(workers);
    est_certs_free(&r.cacerts);
    ct_buf_free(&r.root_crl);
    station_close(&r.st);
    if (r.report_fd >= 0) close(r.report_fd);
    free(r.devices);
    free(r.named);
    free(r.by_serial);
    free(r.witnesses);
    ct_buf_free(&r.devices_text);
    pthread_mutex_destroy(&r.lock);
    wc_ecc_fp_free();
    *sum = r.sum;
    sum->seconds = ((double)ct_now_ms() - start) / 1e3;
    return rc;
}
