/* The root vault's commands: init, sign, crl, verify, transcript. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vault_priv.h"

#define DAY_SECONDS 86400
#define KEY_DEVICE "device-root"
#define KEY_OPS "ops-root"

static const ct_setting setting_rows[] = {
    {"hsm.module", HSM_DEFAULT_MODULE, "PKCS#11 module of the vault's own token"},
    {"hsm.token", "camtrust-vault", "token label"},
    {"hsm.pin_file", "", "must stay empty: the token's PINs exist only as the custodians' shares"},
    {"hsm.softhsm_conf", "softhsm2.conf", "SoftHSMv2 only: its config, exported as SOFTHSM2_CONF; empty for any other token"},
    {"hsm.sessions", "1", "PKCS#11 sessions kept open"},
    {"subject.organization", "Example Camera Maker", "subject O of the roots and of the issuing CAs they certify"},
    {"ca.root_validity_days", "10950", "root CA lifetime (30 years)"},
    {"ca.issuing_validity_days", "7300", "issuing CA lifetime (20 years), cut to the root's"},
    {"crl.validity_days", "365", "the roots' CRLs: nextUpdate after thisUpdate"},
    {"kdf.iterations", "600000", "PBKDF2-HMAC-SHA256 iterations of the custodians' passphrases at init (100000 to 10000000)"},
};
static const ct_settings_schema schema = {"camtrust root vault configuration", setting_rows,
                                          sizeof setting_rows / sizeof setting_rows[0]};

/* A vault folder opened: settings, state, roots, the verified record; the token once a quorum is given. */
typedef struct {
    const char *dir;
    hsm_settings hs;
    char org[PKI_NAME_MAX];
    long root_days, issuing_days, crl_days, kdf_iterations;
    uint8_t id[VAULT_ID_LEN];
    unsigned custodians, quorum;
    uint8_t check[VAULT_CHECK_LEN];
    ct_buf device_der, ops_der;
    vault_record rec;
    hsm *h;
    hsm_key *device, *ops;
    char shares_used[64]; /* "1,3,4" */
} vault;

static void vault_close(vault *v)
{
    hsm_key_free(v->device);
    hsm_key_free(v->ops);
    hsm_close(v->h); /* logs out */
    ct_buf_free(&v->device_der);
    ct_buf_free(&v->ops_der);
    vault_record_free(&v->rec);
    ct_wipe(v->check, sizeof v->check);
    memset(v, 0, sizeof *v);
}

static ct_err settings_load(const char *dir, vault *v)
{
    ct_err rc = CT_OK;
    ct_config *cfg = NULL;
    CT_GUARD(ct_settings_load_dir(&schema, dir, VAULT_CONFIG_FILE, "is it a camtrust root vault?", &cfg));
    CT_GUARD(hsm_settings_read(&schema, cfg, dir, "", &v->hs));
    CT_ENSURE_MSG(!*v->hs.pin_file, CT_ERR_CONFIG,
                  "%s: hsm.pin_file must stay empty: a vault's PIN exists only as the custodians' shares", VAULT_CONFIG_FILE);
    CT_GUARD(ct_settings_copy(&schema, cfg, "subject.organization", v->org, sizeof v->org));
    CT_GUARD(ct_config_get_int(cfg, "ca.root_validity_days", 10950, 1, 100000, &v->root_days));
    CT_GUARD(ct_config_get_int(cfg, "ca.issuing_validity_days", 7300, 1, 100000, &v->issuing_days));
    CT_GUARD(ct_config_get_int(cfg, "crl.validity_days", 365, 1, 100000, &v->crl_days));
    CT_GUARD(ct_config_get_int(cfg, "kdf.iterations", VAULT_KDF_ITERATIONS, VAULT_KDF_MIN, VAULT_KDF_MAX,
                               &v->kdf_iterations));
cleanup:
    ct_config_free(cfg);
    return rc;
}

static ct_err hex_field(const ct_config *cfg, const char *key, uint8_t *out, size_t len)
{
    size_t n = 0;
    const char *hex = ct_config_get(cfg, key, "");
    CT_ENSURE_RET(ct_hex_decode(hex, out, len, &n) == CT_OK && n == len,
                  ct_fail(CT_ERR_CONFIG, "%s: %s is missing or malformed", VAULT_STATE_FILE, key));
    return CT_OK;
}

static ct_err state_load(vault *v)
{
    ct_err rc = CT_OK;
    ct_config *cfg = NULL;
    char path[VAULT_PATH_MAX];
    long n = 0, k = 0;
    CT_GUARD(ct_path_join(path, sizeof path, v->dir, VAULT_STATE_FILE));
    CT_ENSURE_MSG(ct_file_exists(path), CT_ERR_CONFIG, "%s is not a root vault: run camtrust-ca root init --dir %s",
                  v->dir, v->dir);
    CT_GUARD(ct_config_load(path, &cfg));
    CT_GUARD(hex_field(cfg, "id", v->id, sizeof v->id));
    CT_GUARD(hex_field(cfg, "pin_check", v->check, sizeof v->check));
    CT_GUARD(ct_config_get_int(cfg, "custodians", 0, 1, VAULT_MAX_CUSTODIANS, &n));
    CT_GUARD(ct_config_get_int(cfg, "quorum", 0, 1, n, &k));
    v->custodians = (unsigned)n;
    v->quorum = (unsigned)k;
cleanup:
    ct_config_free(cfg);
    return rc;
}

static ct_err root_load(const char *dir, const char *file, ct_buf *der)
{
    char path[VAULT_PATH_MAX];
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, file));
    return ct_pem_or_der_read(path, "CERTIFICATE", PKI_MAX_CERT_DER, der);
}

/* Everything but the token: the record verified against the roots, the roots against the vault's ID. */
static ct_err vault_load(const char *dir, vault *v)
{
    uint8_t fp[32];
    memset(v, 0, sizeof *v);
    v->dir = dir;
    CT_GUARD_RET(settings_load(dir, v));
    CT_GUARD_RET(state_load(v));
    CT_GUARD_RET(root_load(dir, "root.pem", &v->device_der));
    CT_GUARD_RET(root_load(dir, "ops-root.pem", &v->ops_der));
    CT_GUARD_RET(ct_sha256(v->device_der.data, v->device_der.len, fp));
    CT_ENSURE_RET(memcmp(fp, v->id, sizeof fp) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "%s/root.pem is not this vault's device root (vault.state id)", dir));
    return vault_record_read(dir, (vault_cert_ref){v->device_der.data, v->device_der.len},
                             (vault_cert_ref){v->ops_der.data, v->ops_der.len}, &v->rec);
}

/* The error's detail with `what` in front ("share 2 (F): wrong passphrase ..."): one line naming the file. */
static ct_err fail_in(ct_err rc, const char *what)
{
    char detail[256];
    if (ct_strlcpy(detail, sizeof detail, *ct_err_detail() ? ct_err_detail() : ct_err_message(rc)) != CT_OK)
        detail[0] = '\0';
    return ct_fail(rc, "%s: %s", what, detail);
}

static ct_err passphrase_get(const vault_custodian *c, unsigned number, bool confirm, char *out, size_t max)
{
    char prompt[96], again[VAULT_PASSPHRASE_MAX + 2];
    if (c->passphrase_file) return ct_secret_load(c->passphrase_file, NULL, out, max);
    CT_GUARD_RET(ct_snprintf(prompt, sizeof prompt, "custodian %u, passphrase of share %u: ", number, number));
    CT_GUARD_RET(ct_secret_prompt(prompt, out, max));
    if (!confirm) return CT_OK;
    CT_GUARD_RET(ct_snprintf(prompt, sizeof prompt, "custodian %u, the same passphrase again: ", number));
    ct_err rc = ct_secret_prompt(prompt, again, sizeof again);
    if (rc == CT_OK && (strlen(again) != strlen(out) || !ct_equal_ct(again, out, strlen(out))))
        rc = ct_fail(CT_ERR_USAGE, "custodian %u: the two passphrases differ", number);
    ct_wipe(again, sizeof again);
    if (rc != CT_OK) ct_wipe(out, max);
    return rc;
}

/* The token's PINs from a secret: user PIN the hex of its first half, SO PIN of its second. */
static ct_err pins_from_secret(const uint8_t secret[VAULT_SECRET_LEN], char user[65], char so[65])
{
    CT_GUARD_RET(ct_hex_encode(secret, VAULT_SECRET_LEN / 2, user, 65));
    return ct_hex_encode(secret + VAULT_SECRET_LEN / 2, VAULT_SECRET_LEN / 2, so, 65);
}

/* Reads the quorum's shares and rebuilds the secret; every refusal comes before the token is touched. */
static ct_err shares_combine(vault *v, const vault_quorum *q, uint8_t secret[VAULT_SECRET_LEN])
{
    ct_err rc = CT_OK;
    ct_buf pem = CT_BUF_INIT;
    vault_share_file f;
    uint8_t numbers[VAULT_MAX_CUSTODIANS], shares[VAULT_MAX_CUSTODIANS][VAULT_SECRET_LEN];
    char pass[VAULT_PASSPHRASE_MAX + 2];
    size_t count = 0, used = 0;
    CT_ENSURE_MSG(q->nshares >= v->quorum, CT_ERR_FORBIDDEN, "%zu share%s given: this vault needs %u of its %u custodians",
                  q->nshares, q->nshares == 1 ? "" : "s", v->quorum, v->custodians);
    CT_ENSURE_MSG(q->nshares <= v->custodians, CT_ERR_USAGE, "%zu shares given: this vault has %u custodians",
                  q->nshares, v->custodians);
    /* Every header first: a wrong file is named before anyone types a passphrase. */
    for (size_t i = 0; i < q->nshares; i++) {
        ct_buf_free(&pem);
        rc = ct_file_read(q->shares[i].share, 4096, &pem);
        if (rc == CT_OK) rc = vault_share_parse(pem.data, pem.len, &f);
        CT_ENSURE(rc == CT_OK, fail_in(rc, q->shares[i].share));
        CT_ENSURE_MSG(memcmp(f.vault_id, v->id, VAULT_ID_LEN) == 0, CT_ERR_FORBIDDEN,
                      "%s is a share of another vault", q->shares[i].share);
        CT_ENSURE_MSG(f.custodians == v->custodians && f.quorum == v->quorum, CT_ERR_FORBIDDEN,
                      "%s says %u of %u: this vault is %u of %u", q->shares[i].share, f.quorum, f.custodians,
                      v->quorum, v->custodians);
        for (size_t j = 0; j < i; j++)
            CT_ENSURE_MSG(numbers[j] != f.number, CT_ERR_FORBIDDEN, "share %u is given twice (%s)", f.number,
                          q->shares[i].share);
        numbers[i] = f.number;
    }
    for (size_t i = 0; i < q->nshares; i++) {
        ct_buf_free(&pem);
        CT_GUARD(ct_file_read(q->shares[i].share, 4096, &pem));
        CT_GUARD(vault_share_parse(pem.data, pem.len, &f));
        CT_ENSURE_MSG(f.number == numbers[i], CT_ERR_FORBIDDEN, "%s changed while being read", q->shares[i].share);
        rc = passphrase_get(&q->shares[i], f.number, false, pass, sizeof pass);
        if (rc == CT_OK) rc = vault_share_open(&f, pass, shares[count]);
        ct_wipe(pass, sizeof pass);
        CT_ENSURE(rc == CT_OK, fail_in(rc, q->shares[i].share));
        count++;
        CT_GUARD(ct_snprintf(v->shares_used + used, sizeof v->shares_used - used, "%s%u", i ? "," : "", f.number));
        used = strlen(v->shares_used);
    }
    CT_GUARD(vault_shamir_combine(numbers, (const uint8_t(*)[VAULT_SECRET_LEN])shares, count, secret));
    CT_ENSURE_MSG(vault_pin_check_ok(secret, v->check), CT_ERR_FORBIDDEN,
                  "the shares do not rebuild this vault's PIN: nothing was tried on the token");
cleanup:
    ct_wipe(shares, sizeof shares);
    ct_wipe(pass, sizeof pass);
    if (rc != CT_OK) ct_wipe(secret, VAULT_SECRET_LEN);
    ct_buf_free(&pem);
    return rc;
}

/* The root key in the token must be the one its certificate names. */
static ct_err root_key(vault *v, const char *label, const ct_buf *cert, hsm_key **out)
{
    ct_err rc = CT_OK;
    ct_buf spki = CT_BUF_INIT;
    pki_cert_info info;
    uint8_t h[32];
    CT_GUARD(hsm_key_find(v->h, label, out));
    CT_GUARD(ct_buf_alloc(&spki, 1024));
    CT_GUARD(hsm_key_public_der(*out, &spki));
    CT_GUARD(ct_sha256(spki.data, spki.len, h));
    CT_GUARD(pki_cert_parse_info(cert->data, cert->len, &info));
    CT_ENSURE_MSG(memcmp(h, info.spki_sha256, 32) == 0, CT_ERR_INTEGRITY, "the token's %s is not the key of its certificate",
                  label);
cleanup:
    ct_buf_free(&spki);
    return rc;
}

typedef struct {
    char module[VAULT_TOKEN_FIELD_MAX], token[VAULT_TOKEN_FIELD_MAX];
    bool recorded;
} init_token;

static ct_err init_token_get(const char *line, void *arg)
{
    init_token *t = arg;
    char seq[16];
    if (vault_entry_get(line, "seq", seq, sizeof seq) && strcmp(seq, "1") == 0)
        t->recorded = vault_entry_get(line, "module", t->module, sizeof t->module) &&
                      vault_entry_get(line, "token", t->token, sizeof t->token);
    return CT_OK;
}

/* The PIN goes only to the module and token the record's init entry names (signed by the device root): whoever can
 * write vault.conf could otherwise name a module of theirs, which would be handed the rebuilt PIN at the next
 * ceremony and could pass it on to the real token unseen. A vault made before its init entry named them: as is. */
static ct_err token_as_recorded(const vault *v)
{
    init_token t = {0};
    char module[VAULT_TOKEN_FIELD_MAX], token[VAULT_TOKEN_FIELD_MAX];
    CT_GUARD_RET(vault_record_each(&v->rec, init_token_get, &t));
    if (!t.recorded) return CT_OK;
    CT_GUARD_RET(vault_field_escape(v->hs.module, module, sizeof module));
    CT_GUARD_RET(vault_field_escape(v->hs.token, token, sizeof token));
    CT_ENSURE_RET(strcmp(module, t.module) == 0 && strcmp(token, t.token) == 0,
                  ct_fail(CT_ERR_FORBIDDEN, "%s names PKCS#11 module %.200s, token %.40s; the ceremony record's init "
                          "names %.200s, %.40s: no PIN is given to another token (vault.conf was changed?)",
                          VAULT_CONFIG_FILE, module, token, t.module, t.token));
    return CT_OK;
}

/* A quorum's shares, then the token logged in with the PIN they rebuild (wiped at once). */
static ct_err vault_unlock(vault *v, const vault_quorum *q)
{
    ct_err rc = CT_OK;
    uint8_t secret[VAULT_SECRET_LEN];
    char user[65], so[65];
    CT_GUARD(token_as_recorded(v));
    CT_GUARD(shares_combine(v, q, secret));
    CT_GUARD(pins_from_secret(secret, user, so));
    CT_GUARD(hsm_open_settings_pin(&v->hs, user, &v->h));
    CT_GUARD(root_key(v, KEY_DEVICE, &v->device_der, &v->device));
    CT_GUARD(root_key(v, KEY_OPS, &v->ops_der, &v->ops));
cleanup:
    ct_wipe(secret, sizeof secret);
    ct_wipe(user, sizeof user);
    ct_wipe(so, sizeof so);
    return rc;
}

/* ---- init ---- */

static ct_err make_root(vault *v, hsm_key_type type, const char *label, uint8_t id, const char *cn_suffix,
                        const char *file, hsm_key **key, ct_buf *der, pki_issued_info *info)
{
    ct_err rc = CT_OK;
    ct_buf spki = CT_BUF_INIT;
    char cn[PKI_NAME_MAX], path[VAULT_PATH_MAX];
    const uint8_t key_id[2] = {0x7a, id};
    time_t now = time(NULL);
    pki_cert_template t = {.profile = PKI_PROFILE_ROOT_CA, .organization = v->org, .not_before = now - 300,
                           .not_after = now + (time_t)v->root_days * DAY_SECONDS};
    CT_GUARD(ct_snprintf(cn, sizeof cn, "%.40s %s", v->org, cn_suffix));
    t.cn = cn;
    CT_GUARD(hsm_key_generate(v->h, type, label, key_id, sizeof key_id, key));
    CT_GUARD(ct_buf_alloc(&spki, 1024));
    CT_GUARD(hsm_key_public_der(*key, &spki));
    CT_GUARD(ct_buf_alloc(der, PKI_MAX_CERT_DER));
    CT_GUARD(pki_cert_issue(&t, spki.data, spki.len, NULL, 0, *key, der, info));
    CT_GUARD(ct_path_join(path, sizeof path, v->dir, file));
    CT_GUARD(ct_pem_write_file(path, "CERTIFICATE", der->data, der->len, 0644));
cleanup:
    ct_buf_free(&spki);
    return rc;
}

static ct_err write_state(const vault *v, const char *curve)
{
    char path[VAULT_PATH_MAX], id[65], check[2 * VAULT_CHECK_LEN + 1], text[512];
    CT_GUARD_RET(ct_hex_encode(v->id, sizeof v->id, id, sizeof id));
    CT_GUARD_RET(ct_hex_encode(v->check, sizeof v->check, check, sizeof check));
    CT_GUARD_RET(ct_snprintf(text, sizeof text,
                             "# camtrust root vault, written once by root init: not to be edited\n"
                             "id = %s\ncustodians = %u\nquorum = %u\ncurve = %s\npin_check = %s\n",
                             id, v->custodians, v->quorum, curve, check));
    CT_GUARD_RET(ct_path_join(path, sizeof path, v->dir, VAULT_STATE_FILE));
    return ct_file_write_atomic(path, text, strlen(text), 0644);
}

/* The custodians' share files, custodian-I.share for I = 1..N, each under its own passphrase. */
static ct_err write_shares(vault *v, const vault_init_args *a, const uint8_t secret[VAULT_SECRET_LEN])
{
    ct_err rc = CT_OK;
    uint8_t shares[VAULT_MAX_CUSTODIANS][VAULT_SECRET_LEN];
    char pass[VAULT_PASSPHRASE_MAX + 2], name[32], path[VAULT_PATH_MAX];
    ct_buf pem = CT_BUF_INIT;
    CT_GUARD(vault_shamir_split(secret, a->custodians, a->quorum, shares));
    for (unsigned i = 1; i <= a->custodians; i++) {
        CT_GUARD(passphrase_get(&a->who[i - 1], i, true, pass, sizeof pass));
        ct_buf_free(&pem);
        CT_GUARD(ct_buf_alloc(&pem, 1024));
        CT_GUARD(vault_share_seal(v->id, i, a->quorum, a->custodians, (uint32_t)v->kdf_iterations, pass, shares[i - 1], &pem));
        ct_wipe(pass, sizeof pass);
        CT_GUARD(ct_snprintf(name, sizeof name, "custodian-%u.share", i));
        CT_GUARD(ct_path_join(path, sizeof path, v->dir, name));
        CT_GUARD(ct_file_write_atomic(path, pem.data, pem.len, 0600));
    }
cleanup:
    ct_wipe(shares, sizeof shares);
    ct_wipe(pass, sizeof pass);
    ct_buf_free(&pem);
    return rc;
}

/* Everything a vault is, made in `stage`. */
static ct_err build(vault *v, const vault_init_args *a, const char *stage)
{
    ct_err rc = CT_OK;
    uint8_t secret[VAULT_SECRET_LEN];
    char user[65], so[65], fields[VAULT_ENTRY_MAX], id_hex[65], fp_dev[65], fp_ops[65], path[VAULT_PATH_MAX];
    char module[VAULT_TOKEN_FIELD_MAX], token[VAULT_TOKEN_FIELD_MAX];
    pki_issued_info dev_info, ops_info;
    uint8_t fp[32];
    hsm_key_type type = a->curve && strcmp(a->curve, "P-384") == 0 ? HSM_EC_P384 : HSM_EC_P256;
    v->dir = stage;
    v->custodians = a->custodians;
    v->quorum = a->quorum;
    CT_GUARD(ct_path_join(path, sizeof path, stage, VAULT_CONFIG_FILE));
    CT_GUARD(ct_settings_write_defaults(&schema, path)); /* unless the operator's is there */
    CT_GUARD(settings_load(stage, v));
    /* The record names the one module the PIN is ever given to (token_as_recorded): a relative path would name
     * whatever file the working directory of each later ceremony holds. */
    CT_ENSURE_MSG(v->hs.module[0] == '/', CT_ERR_CONFIG, "%s: hsm.module must be an absolute path, not %.200s: the "
                  "record names the one module the PIN is given to", VAULT_CONFIG_FILE, v->hs.module);
    CT_GUARD(hsm_local_token_prepare(&v->hs, stage)); /* the SoftHSM config and token store: no PIN file */
    CT_GUARD(ct_random(secret, sizeof secret));
    CT_GUARD(pins_from_secret(secret, user, so));
    CT_GUARD(hsm_token_create(v->hs.module, v->hs.token, so, user));
    CT_GUARD(hsm_open_settings_pin(&v->hs, user, &v->h));
    ct_wipe(user, sizeof user);
    ct_wipe(so, sizeof so);
    CT_GUARD(make_root(v, type, KEY_DEVICE, 1, "Device Root CA", "root.pem", &v->device, &v->device_der, &dev_info));
    CT_GUARD(make_root(v, type, KEY_OPS, 2, "Operations Root CA", "ops-root.pem", &v->ops, &v->ops_der, &ops_info));
    CT_GUARD(ct_sha256(v->device_der.data, v->device_der.len, v->id));
    CT_GUARD(vault_pin_check_make(secret, v->check));
    CT_GUARD(write_shares(v, a, secret));
    ct_failpoint("root-init:shares");
    CT_GUARD(write_state(v, type == HSM_EC_P384 ? "P-384" : "P-256"));
    CT_GUARD(ct_hex_encode(v->id, sizeof v->id, id_hex, sizeof id_hex));
    memcpy(fp_dev, id_hex, sizeof fp_dev);
    CT_GUARD(ct_sha256(v->ops_der.data, v->ops_der.len, fp));
    CT_GUARD(ct_hex_encode(fp, sizeof fp, fp_ops, sizeof fp_ops));
    /* One entry per root, each signed by its own key: both are in the token from the first lines of the record. */
    CT_GUARD(vault_field_escape(v->hs.module, module, sizeof module));
    CT_GUARD(vault_field_escape(v->hs.token, token, sizeof token));
    CT_GUARD(ct_snprintf(fields, sizeof fields,
                         "vault=%s curve=%s custodians=%u quorum=%u root_serial=%s root_sha256=%s shares_made=1-%u "
                         "module=%s token=%s",
                         id_hex, type == HSM_EC_P384 ? "P-384" : "P-256", a->custodians, a->quorum,
                         dev_info.serial_hex, fp_dev, a->custodians, module, token));
    CT_GUARD(vault_record_append(stage, &v->rec, v->device, "device", "init", fields));
    CT_GUARD(ct_snprintf(fields, sizeof fields, "vault=%s ops_root_serial=%s ops_root_sha256=%s", id_hex,
                         ops_info.serial_hex, fp_ops));
    CT_GUARD(vault_record_append(stage, &v->rec, v->ops, "ops", "init", fields));
cleanup:
    ct_wipe(secret, sizeof secret);
    ct_wipe(user, sizeof user);
    ct_wipe(so, sizeof so);
    return rc;
}

ct_err vault_init(const vault_init_args *a)
{
    ct_err rc = CT_OK;
    vault v;
    bool has_config = false, staged = false;
    char stage[VAULT_PATH_MAX], from[VAULT_PATH_MAX], to[VAULT_PATH_MAX];
    ct_buf conf = CT_BUF_INIT;
    hsm_settings hs;
    memset(&v, 0, sizeof v);
    CT_ENSURE_MSG(a->custodians >= 2 && a->custodians <= VAULT_MAX_CUSTODIANS, CT_ERR_USAGE,
                  "--custodians is 2 to %d", VAULT_MAX_CUSTODIANS);
    CT_ENSURE_MSG(a->quorum >= 2 && a->quorum <= a->custodians, CT_ERR_USAGE, "--quorum is 2 to --custodians (%u)",
                  a->custodians);
    CT_ENSURE_MSG(!a->curve || strcmp(a->curve, "P-256") == 0 || strcmp(a->curve, "P-384") == 0, CT_ERR_USAGE,
                  "--curve '%s' is not P-256 or P-384", a->curve);
    CT_GUARD(ct_dir_check_fresh(a->dir, VAULT_CONFIG_FILE, &has_config));
    CT_GUARD(ct_dir_stage(a->dir, stage, sizeof stage));
    staged = true;
    if (has_config) { /* an operator's config (another HSM) made before init */
        CT_GUARD(ct_path_join(from, sizeof from, a->dir, VAULT_CONFIG_FILE));
        CT_GUARD(ct_path_join(to, sizeof to, stage, VAULT_CONFIG_FILE));
        CT_GUARD(ct_file_read(from, CT_CONFIG_MAX_BYTES, &conf));
        CT_GUARD(ct_file_write_atomic(to, conf.data, conf.len, 0600));
    }
    CT_GUARD(build(&v, a, stage));
    hs = v.hs;
    vault_close(&v); /* logged out, the token closed before its folder moves */
    CT_GUARD(hsm_local_relocate(&hs, stage, a->dir));
    CT_GUARD(ct_dir_commit(stage, a->dir, VAULT_STATE_FILE)); /* its state marks a made vault */
    staged = false;
cleanup:
    vault_close(&v);
    ct_buf_free(&conf);
    if (staged && ct_dir_discard(stage) != CT_OK) ct_log(CT_LOG_WARN, "stage_left", "path=%s", CT_LOGQ(stage));
    return rc;
}

/* ---- sign ---- */

static const struct {
    const char *name, *cn_suffix, *root;
} profiles[] = {
    [VAULT_PROFILE_DEVICE_ISSUING] = {"device-issuing", " Device Issuing CA", "device"},
    [VAULT_PROFILE_OPS_ISSUING] = {"ops-issuing", " Operations Issuing CA", "ops"},
};

ct_err vault_profile_parse(const char *name, vault_profile *out)
{
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
        if (name && strcmp(name, profiles[i].name) == 0) {
            *out = (vault_profile)i;
            return CT_OK;
        }
    return ct_fail(CT_ERR_USAGE, "--profile is device-issuing or ops-issuing");
}

typedef struct {
    const char *spki_hex, *other_profile;
    bool clash;
} key_use;

static ct_err find_key_use(const char *line, void *arg)
{
    key_use *u = arg;
    char spki[80], profile[32];
    if (vault_entry_get(line, "spki_sha256", spki, sizeof spki) && strcmp(spki, u->spki_hex) == 0 &&
        vault_entry_get(line, "profile", profile, sizeof profile) && strcmp(profile, u->other_profile) == 0)
        u->clash = true;
    return CT_OK;
}

/* What an issuing CA's request may be: the profile's name, a key that is none of the roots nor certified under the
 * other profile, and nothing asked beyond what the profile grants (CA, pathLen 0, keyCertSign, cRLSign). */
static ct_err csr_check(const vault *v, const pki_csr *csr, const ct_buf *der, vault_profile p)
{
    pki_csr_asks asks;
    const char *cn = pki_csr_subject_cn(csr);
    size_t n = strlen(cn), sn = strlen(profiles[p].cn_suffix), spki_len = 0;
    uint8_t h[32];
    char hex[65];
    pki_cert_info root;
    CT_ENSURE_RET(n > sn && strcmp(cn + n - sn, profiles[p].cn_suffix) == 0,
                  ct_fail(CT_ERR_FORBIDDEN, "the request's CN '%.64s' does not end in '%s' (profile %s)", cn,
                          profiles[p].cn_suffix + 1, profiles[p].name));
    CT_ENSURE_RET(!*pki_csr_subject_serial(csr),
                  ct_fail(CT_ERR_FORBIDDEN, "an issuing CA's request names no serialNumber (a device's does)"));
    CT_GUARD_RET(pki_csr_asks_get(der->data, der->len, &asks));
    CT_ENSURE_RET(asks.other_extensions == 0 && asks.other_attributes == 0,
                  ct_fail(CT_ERR_FORBIDDEN, "the request asks for extensions or attributes the %s profile does not give",
                          profiles[p].name));
    CT_ENSURE_RET(!asks.basic_constraints || (asks.ca && asks.path_len == 0),
                  ct_fail(CT_ERR_FORBIDDEN, "the request asks for basicConstraints other than CA with pathLen 0 (%s%s%d)",
                          asks.ca ? "CA" : "not CA", ", pathLen ", asks.path_len));
    CT_ENSURE_RET(!asks.key_usage || (asks.key_usage_bits & ~(PKI_KU_KEY_CERT_SIGN | PKI_KU_CRL_SIGN)) == 0,
                  ct_fail(CT_ERR_FORBIDDEN, "the request asks for key usages beyond keyCertSign and cRLSign (0x%x)",
                          asks.key_usage_bits));
    pki_csr_spki_sha256(csr, h);
    (void)pki_csr_spki(csr, &spki_len);
    for (int i = 0; i < 2; i++) {
        const ct_buf *r = i ? &v->ops_der : &v->device_der;
        CT_GUARD_RET(pki_cert_parse_info(r->data, r->len, &root));
        CT_ENSURE_RET(memcmp(root.spki_sha256, h, 32) != 0,
                      ct_fail(CT_ERR_FORBIDDEN, "the request is for a root's own key"));
    }
    CT_GUARD_RET(ct_hex_encode(h, sizeof h, hex, sizeof hex));
    key_use u = {hex, profiles[1 - p].name, false};
    CT_GUARD_RET(vault_record_each(&v->rec, find_key_use, &u));
    CT_ENSURE_RET(!u.clash, ct_fail(CT_ERR_FORBIDDEN, "this key is already certified as %s: one key, one role",
                                    profiles[1 - p].name));
    return CT_OK;
}

ct_err vault_sign(const vault_quorum *q, const char *csr_path, vault_profile p, const char *out, vault_signed *info)
{
    ct_err rc = CT_OK;
    vault v;
    ct_buf der = CT_BUF_INIT, cert = CT_BUF_INIT;
    pki_csr *csr = NULL;
    pki_issued_info issued;
    pki_cert_info root;
    char fields[1024], cn[3 * PKI_NAME_MAX], csr_hex[65], spki_hex[65], cert_hex[65];
    uint8_t h[32];
    bool device = p == VAULT_PROFILE_DEVICE_ISSUING;
    memset(info, 0, sizeof *info);
    CT_GUARD(vault_load(q->dir, &v));
    rc = ct_pem_or_der_read(csr_path, "CERTIFICATE REQUEST", PKI_MAX_CSR_DER, &der);
    if (rc == CT_OK) rc = pki_csr_parse(der.data, der.len, &csr);
    CT_ENSURE(rc == CT_OK, fail_in(rc, csr_path));
    CT_GUARD(csr_check(&v, csr, &der, p));
    CT_GUARD(vault_unlock(&v, q));

    const ct_buf *issuer = device ? &v.device_der : &v.ops_der;
    CT_GUARD(pki_cert_parse_info(issuer->data, issuer->len, &root));
    time_t now = time(NULL), until = now + (time_t)v.issuing_days * DAY_SECONDS;
    pki_cert_template t = {.profile = PKI_PROFILE_ISSUING_CA, .cn = pki_csr_subject_cn(csr), .organization = v.org,
                           .not_before = now - 300, .not_after = until < root.not_after ? until : root.not_after};
    size_t spki_len = 0;
    const uint8_t *spki = pki_csr_spki(csr, &spki_len);
    CT_GUARD(ct_buf_alloc(&cert, PKI_MAX_CERT_DER));
    CT_GUARD(pki_cert_issue(&t, spki, spki_len, issuer->data, issuer->len, device ? v.device : v.ops, &cert, &issued));

    CT_GUARD(ct_sha256(der.data, der.len, h));
    CT_GUARD(ct_hex_encode(h, sizeof h, csr_hex, sizeof csr_hex));
    pki_csr_spki_sha256(csr, h);
    CT_GUARD(ct_hex_encode(h, sizeof h, spki_hex, sizeof spki_hex));
    CT_GUARD(ct_sha256(cert.data, cert.len, h));
    CT_GUARD(ct_hex_encode(h, sizeof h, cert_hex, sizeof cert_hex));
    CT_GUARD(vault_field_escape(pki_csr_subject_cn(csr), cn, sizeof cn));
    char until_text[CT_TIME_UTC_MAX];
    ct_time_utc((int64_t)t.not_after, until_text);
    CT_GUARD(ct_snprintf(fields, sizeof fields,
                         "profile=%s serial=%s cn=%s not_after=%s csr_sha256=%s spki_sha256=%s cert_sha256=%s shares=%s",
                         profiles[p].name, issued.serial_hex, cn, until_text, csr_hex, spki_hex, cert_hex,
                         v.shares_used));
    /* The record first: a certificate that exists is one the record knows (a lost output file is only re-signed). */
    CT_GUARD(vault_record_append(q->dir, &v.rec, device ? v.device : v.ops, profiles[p].root, "sign", fields));
    CT_GUARD(ct_pem_write_file(out, "CERTIFICATE", cert.data, cert.len, 0644));
    CT_GUARD(ct_strlcpy(info->serial_hex, sizeof info->serial_hex, issued.serial_hex));
    CT_GUARD(ct_strlcpy(info->subject_cn, sizeof info->subject_cn, pki_csr_subject_cn(csr)));
    CT_GUARD(ct_strlcpy(info->root, sizeof info->root, profiles[p].root));
cleanup:
    pki_csr_free(csr);
    ct_buf_free(&der);
    ct_buf_free(&cert);
    vault_close(&v);
    return rc;
}

/* ---- crl ---- */

#define CRL_MAX_REVOKED 1024
typedef struct {
    char serial[PKI_MAX_SERIAL_BYTES * 2 + 1];
    time_t at;
    int reason;
} revoked_entry;

typedef struct {
    const char *root;        /* the CRL's root */
    const char *find_serial; /* the serial to revoke, or NULL */
    char signed_by[8];       /* the root that signed find_serial ("" if none) */
    bool already;
    uint64_t crls;           /* CRLs this root signed */
    revoked_entry *list;
    size_t n;
} crl_scan;

static ct_err scan_entry(const char *line, void *arg)
{
    crl_scan *s = arg;
    char action[16], root[8], serial[PKI_MAX_SERIAL_BYTES * 2 + 1], num[24];
    if (!vault_entry_get(line, "action", action, sizeof action) || !vault_entry_get(line, "root", root, sizeof root))
        return CT_OK;
    bool has_serial = vault_entry_get(line, strcmp(action, "crl") == 0 ? "revoke" : "serial", serial, sizeof serial);
    if (strcmp(action, "sign") == 0 && has_serial && s->find_serial && strcmp(serial, s->find_serial) == 0)
        CT_GUARD_RET(ct_strlcpy(s->signed_by, sizeof s->signed_by, root));
    if (strcmp(action, "crl") != 0 || (s->root && strcmp(root, s->root) != 0)) return CT_OK;
    s->crls++;
    if (!has_serial || !s->list) return CT_OK;
    if (s->find_serial && strcmp(serial, s->find_serial) == 0) s->already = true;
    CT_ENSURE_RET(s->n < CRL_MAX_REVOKED, ct_fail(CT_ERR_FORBIDDEN, "more than %d revocations", CRL_MAX_REVOKED));
    revoked_entry *e = &s->list[s->n++];
    CT_GUARD_RET(ct_strlcpy(e->serial, sizeof e->serial, serial));
    e->at = vault_entry_get(line, "revoked_at", num, sizeof num) ? (time_t)strtoll(num, NULL, 10) : 0;
    e->reason = vault_entry_get(line, "reason_code", num, sizeof num) ? atoi(num) : 0;
    return CT_OK;
}

ct_err vault_crl(const vault_quorum *q, const vault_crl_args *a, const char *out, uint64_t *number, char root_out[8])
{
    ct_err rc = CT_OK;
    vault v;
    ct_buf crl = CT_BUF_INIT;
    revoked_entry *list = NULL;
    pki_revoked *entries = NULL;
    char serial[PKI_MAX_SERIAL_BYTES * 2 + 1] = "", fields[512], crl_hex[65], extra[192] = "";
    uint8_t h[32];
    int reason = 0;
    time_t now = time(NULL);
    memset(&v, 0, sizeof v);
    CT_ENSURE_MSG(!a->root || strcmp(a->root, "device") == 0 || strcmp(a->root, "ops") == 0, CT_ERR_USAGE,
                  "--root is device or ops");
    CT_ENSURE_MSG(!a->revoke == !a->reason, CT_ERR_USAGE, "--revoke SERIAL and --reason R go together");
    if (a->revoke) {
        size_t n = strlen(a->revoke);
        CT_ENSURE_MSG(n > 0 && n < sizeof serial, CT_ERR_USAGE, "serial '%.50s' is not hex", a->revoke);
        for (size_t i = 0; i < n; i++) {
            char ch = a->revoke[i];
            ch = ch >= 'A' && ch <= 'F' ? (char)(ch - 'A' + 'a') : ch;
            CT_ENSURE_MSG((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'), CT_ERR_USAGE, "serial '%.50s' is not hex",
                          a->revoke);
            serial[i] = ch;
        }
        serial[n] = '\0';
        CT_GUARD(pki_reason_parse(a->reason, &reason));
    }
    CT_GUARD(vault_load(q->dir, &v));
    list = calloc(CRL_MAX_REVOKED, sizeof *list);
    CT_ENSURE(list, CT_ERR_NOMEM);
    crl_scan s = {.find_serial = a->revoke ? serial : NULL};
    if (a->revoke) { /* which root signed it, if this vault did */
        CT_GUARD(vault_record_each(&v.rec, scan_entry, &s));
        CT_ENSURE_MSG(*s.signed_by, CT_ERR_NOT_FOUND, "this vault never signed a certificate with serial %s", serial);
        CT_ENSURE_MSG(!a->root || strcmp(a->root, s.signed_by) == 0, CT_ERR_USAGE,
                      "serial %s was signed by the %s root, not the %s root", serial, s.signed_by, a->root);
    }
    const char *root = a->root ? a->root : a->revoke ? (s.signed_by[0] == 'o' ? "ops" : "device") : "device";
    s = (crl_scan){.root = root, .find_serial = a->revoke ? serial : NULL, .list = list};
    CT_GUARD(vault_record_each(&v.rec, scan_entry, &s));
    CT_ENSURE_MSG(!s.already, CT_ERR_ALREADY_REVOKED, "serial %s is already revoked", serial);
    if (a->revoke) {
        CT_ENSURE_MSG(s.n < CRL_MAX_REVOKED, CT_ERR_FORBIDDEN, "more than %d revocations", CRL_MAX_REVOKED);
        revoked_entry *e = &list[s.n++];
        CT_GUARD(ct_strlcpy(e->serial, sizeof e->serial, serial));
        e->at = now;
        e->reason = reason;
        CT_GUARD(ct_snprintf(extra, sizeof extra, "revoke=%s reason=%s reason_code=%d revoked_at=%lld ", serial,
                             a->reason, reason, (long long)now));
    }
    CT_GUARD(vault_unlock(&v, q));

    bool device = strcmp(root, "device") == 0;
    entries = calloc(s.n ? s.n : 1, sizeof *entries);
    CT_ENSURE(entries, CT_ERR_NOMEM);
    for (size_t i = 0; i < s.n; i++) entries[i] = (pki_revoked){list[i].serial, list[i].at, list[i].reason};
    const ct_buf *issuer = device ? &v.device_der : &v.ops_der;
    pki_crl_params p = {issuer->data, issuer->len, device ? v.device : v.ops, s.crls + 1, now,
                        now + (time_t)v.crl_days * DAY_SECONDS};
    CT_GUARD(pki_crl_make(&p, entries, s.n, &crl));
    CT_GUARD(ct_sha256(crl.data, crl.len, h));
    CT_GUARD(ct_hex_encode(h, sizeof h, crl_hex, sizeof crl_hex));
    char next_text[CT_TIME_UTC_MAX];
    ct_time_utc((int64_t)p.next_update, next_text);
    CT_GUARD(ct_snprintf(fields, sizeof fields, "number=%llu %srevoked=%zu next_update=%s crl_sha256=%s shares=%s",
                         (unsigned long long)p.number, extra, s.n, next_text, crl_hex, v.shares_used));
    CT_GUARD(vault_record_append(q->dir, &v.rec, p.issuer_key, root, "crl", fields));
    CT_GUARD(ct_file_write_atomic(out, crl.data, crl.len, 0644));
    if (number) *number = p.number;
    if (root_out) CT_GUARD(ct_strlcpy(root_out, 8, root));
cleanup:
    free(list);
    free(entries);
    ct_buf_free(&crl);
    vault_close(&v);
    return rc;
}

/* ---- verify, transcript ---- */

ct_err vault_verify(const char *dir, vault_record_report *out)
{
    vault v;
    memset(out, 0, sizeof *out);
    ct_err rc = vault_load(dir, &v);
    if (rc == CT_OK) {
        out->entries = v.rec.entries;
        rc = ct_hex_encode(v.rec.head, sizeof v.rec.head, out->head, sizeof out->head);
    }
    vault_close(&v);
    return rc;
}

static ct_err print_entry(const char *line, void *arg)
{
    FILE *f = arg;
    char seq[16], when[32], action[16], root[8], h[65];
    uint8_t digest[32];
    (void)vault_entry_get(line, "seq", seq, sizeof seq);
    (void)vault_entry_get(line, "time", when, sizeof when);
    (void)vault_entry_get(line, "action", action, sizeof action);
    (void)vault_entry_get(line, "root", root, sizeof root);
    CT_GUARD_RET(ct_sha256(line, strlen(line), digest));
    CT_GUARD_RET(ct_hex_encode(digest, sizeof digest, h, sizeof h));
    fprintf(f, "\nentry %s  %s  %s, signed by the %s root\n", seq, when, action, root);
    for (const char *p = line; p && *p; p = strchr(p, ' '), p = p ? p + 1 : NULL) {
        const char *eq = strchr(p, '='), *end = strchr(p, ' ');
        size_t klen = eq ? (size_t)(eq - p) : 0, vlen = end ? (size_t)(end - eq - 1) : strlen(eq ? eq + 1 : p);
        static const char *const skip[] = {"seq", "time", "action", "root", "prev", "sig"};
        bool shown = eq && (!end || eq < end);
        for (size_t i = 0; shown && i < sizeof skip / sizeof skip[0]; i++)
            if (klen == strlen(skip[i]) && strncmp(p, skip[i], klen) == 0) shown = false;
        if (!shown) continue;
        char value[VAULT_ENTRY_MAX];
        if (vlen >= sizeof value) vlen = sizeof value - 1;
        memcpy(value, eq + 1, vlen);
        value[vlen] = '\0';
        (void)ct_url_unescape(value);
        fprintf(f, "  %-16.*s %s\n", (int)klen, p, value);
    }
    fprintf(f, "  %-16s %s\n", "entry sha256", h);
    return CT_OK;
}

ct_err vault_transcript(const char *dir, FILE *out)
{
    vault v;
    char id[65], head[65];
    ct_err rc = vault_load(dir, &v);
    if (rc == CT_OK) rc = ct_hex_encode(v.id, sizeof v.id, id, sizeof id);
    if (rc == CT_OK) rc = ct_hex_encode(v.rec.head, sizeof v.rec.head, head, sizeof head);
    if (rc == CT_OK) {
        fprintf(out, "camtrust root vault: ceremony record\nvault            %s (SHA-256 of root.pem)\n"
                     "custodians       %u, quorum %u\nverified         %zu entries: chain and every root signature intact\n"
                     "head             %s\n",
                id, v.custodians, v.quorum, v.rec.entries, head);
        rc = vault_record_each(&v.rec, print_entry, out);
    }
    if (rc == CT_OK)
        fprintf(out, "\nWe, the custodians present, attest that the entries above are the whole record up to head\n"
                     "%s.\n\n  name                      signature                 date\n"
                     "  ________________________  ________________________  __________\n"
                     "  ________________________  ________________________  __________\n"
                     "  ________________________  ________________________  __________\n",
                head);
    vault_close(&v);
    return rc;
}
