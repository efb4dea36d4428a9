/* The viewer: its folder and token (init, install) and the key unwrapping behind decrypt and keys. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "../common/mediasign/mediasign.h"
#include "../common/pki/pki.h"
#include "../hsm/hsm.h"
#include "view_priv.h"

static const uint8_t view_key_id[] = {0x76, 0x01};

static const ct_setting view_rows[] = {VIEW_SETTING_ROWS("")};
static const ct_settings_schema view_schema = {"camtrust viewer configuration", view_rows,
                                               sizeof view_rows / sizeof view_rows[0]};

void viewer_close(viewer *v)
{
    hsm_key_free(v->key); /* keys before the token they live in */
    hsm_close(v->h);
    v->key = NULL;
    v->h = NULL;
}

/* The settings; with `token` also the token and the key; the installed certificate's hash if there is one. */
ct_err viewer_open(const char *dir, bool token, viewer *v)
{
    ct_err rc = CT_OK;
    ct_config *cfg = NULL;
    ct_buf pem = CT_BUF_INIT, der = CT_BUF_INIT;
    char path[VIEW_PATH_MAX];
    memset(v, 0, sizeof *v);
    CT_GUARD(ct_strlcpy(v->dir, sizeof v->dir, dir));
    CT_GUARD(ct_settings_load_dir(&view_schema, dir, VIEW_CONFIG_FILE,
                                  "not a viewer folder (camtrust-view init makes one)", &cfg));
    CT_GUARD(hsm_settings_read(&view_schema, cfg, dir, VIEW_PIN_ENV, &v->hs));
    CT_GUARD(ct_settings_copy(&view_schema, cfg, "name", v->name, sizeof v->name));
    CT_GUARD(ct_path_join(path, sizeof path, dir, VIEW_CERT_FILE));
    if (ct_file_exists(path)) {
        CT_GUARD(ct_file_read(path, CERT_FILE_MAX, &pem));
        CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CERT_DER));
        CT_GUARD(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 0, &der));
        CT_GUARD(ct_sha256(der.data, der.len, v->cert_sha256));
        v->installed = true;
    }
    if (token) {
        CT_GUARD(hsm_open_settings(&v->hs, &v->h));
        rc = hsm_key_find(v->h, VIEW_KEY_LABEL, &v->key);
        CT_ENSURE_MSG(rc == CT_OK, rc, "the viewer token holds no key '%s': run camtrust-view init", VIEW_KEY_LABEL);
    }
cleanup:
    if (rc != CT_OK) viewer_close(v);
    ct_config_free(cfg);
    ct_buf_free(&pem);
    ct_buf_free(&der);
    return rc;
}

typedef struct {
    const char *name;
    ct_buf *der;
} csr_arg;

static ct_err csr_pop(hsm_key *k, void *arg)
{
    const csr_arg *a = arg;
    return pki_csr_make(k, a->name, NULL, a->der);
}

ct_err view_init(const char *dir, const char *name)
{
    ct_err rc = CT_OK;
    viewer v;
    ct_buf der = CT_BUF_INIT;
    char path[VIEW_PATH_MAX];
    memset(&v, 0, sizeof v);
    size_t n = strlen(name);
    CT_ENSURE_MSG(n > 0 && n < 64 &&
                      strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n,
                  CT_ERR_USAGE, "viewer name '%.64s': use 1-63 letters, digits, '-', '_', '.'", name);
    CT_GUARD(ct_mkdir(dir, 0700));
    CT_GUARD(ct_path_join(path, sizeof path, dir, VIEW_CONFIG_FILE));
    const ct_setting rows[] = {VIEW_SETTING_ROWS(name)};
    const ct_settings_schema with_name = {view_schema.title, rows, sizeof rows / sizeof rows[0]};
    CT_GUARD(ct_settings_write_defaults(&with_name, path));
    CT_GUARD(viewer_open(dir, false, &v));
    CT_ENSURE_MSG(strcmp(v.name, name) == 0, CT_ERR_CONFIG, "%s names viewer '%s', not '%s'", path, v.name, name);
    CT_GUARD(hsm_local_token_prepare(&v.hs, dir));
    CT_GUARD(hsm_open_settings(&v.hs, &v.h));
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CSR_DER));
    /* An ECDH key: it signs its CSR once, while it is made, and never again. */
    csr_arg arg = {name, &der};
    rc = hsm_key_generate_ecdh(v.h, HSM_EC_P256, VIEW_KEY_LABEL, view_key_id, sizeof view_key_id, csr_pop, &arg,
                               &v.key);
    CT_ENSURE_MSG(rc != CT_ERR_EXISTS, rc, "%s already holds a viewer key (its request is %s)", dir, VIEW_CSR_FILE);
    CT_GUARD(rc);
    CT_GUARD(ct_path_join(path, sizeof path, dir, VIEW_CSR_FILE));
    CT_GUARD(ct_pem_write_file(path, "CERTIFICATE REQUEST", der.data, der.len, 0644));
cleanup:
    viewer_close(&v);
    ct_buf_free(&der);
    return rc;
}

ct_err view_install(const char *dir, const char *cert_path)
{
    ct_err rc = CT_OK;
    viewer v;
    ct_buf file = CT_BUF_INIT, der = CT_BUF_INIT, spki = CT_BUF_INIT;
    pki_cert_info info;
    uint8_t key_hash[32];
    char path[VIEW_PATH_MAX];
    CT_GUARD(viewer_open(dir, true, &v));
    CT_GUARD(ct_file_read(cert_path, CERT_FILE_MAX, &file));
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CERT_DER));
    CT_GUARD(ct_pem_decode(file.data, file.len, "CERTIFICATE", 0, &der));
    CT_GUARD(pki_cert_parse_info(der.data, der.len, &info));
    CT_GUARD(ct_buf_alloc(&spki, 1024));
    CT_GUARD(hsm_key_public_der(v.key, &spki));
    CT_GUARD(ct_sha256(spki.data, spki.len, key_hash));
    CT_ENSURE_MSG(memcmp(key_hash, info.spki_sha256, sizeof key_hash) == 0, CT_ERR_INTEGRITY,
                  "%s certifies another key (CN=%s), not this viewer's token key", cert_path, info.subject_cn);
    CT_ENSURE_MSG(strcmp(info.subject_cn, v.name) == 0, CT_ERR_INTEGRITY, "%s is for '%s', this viewer is '%s'",
                  cert_path, info.subject_cn, v.name);
    CT_ENSURE_MSG(!info.is_ca && (info.key_usage & PKI_KU_KEY_AGREEMENT), CT_ERR_INTEGRITY,
                  "%s is not a viewer certificate (no keyAgreement)", cert_path);
    CT_GUARD(ct_path_join(path, sizeof path, dir, VIEW_CERT_FILE));
    CT_GUARD(ct_file_write_atomic(path, file.data, file.len, 0644));
cleanup:
    viewer_close(&v);
    ct_buf_free(&file);
    ct_buf_free(&der);
    ct_buf_free(&spki);
    return rc;
}

/* ---- content keys ---- */

static void hex(const uint8_t *p, size_t n, char *out, size_t max)
{
    if (ct_hex_encode(p, n, out, max) != CT_OK) out[0] = '\0';
}

/* This viewer's content key of `kid`, unwrapped inside the token; a clear refusal when it is not a recipient. */
ct_err viewer_key(void *arg, const uint8_t kid[CENC_KID_LEN], const cenc_pssh *p, uint8_t key[CENC_KEY_LEN])
{
    viewer *v = arg;
    char k[2 * CENC_KID_LEN + 1];
    hex(kid, CENC_KID_LEN, k, sizeof k);
    CT_ENSURE_RET(p, ct_fail(CT_ERR_BAD_REQUEST, "key ID %s: the file carries no camtrust pssh for it", k));
    for (size_t i = 0; i < p->n; i++)
        if (memcmp(p->r[i].cert_sha256, v->cert_sha256, 32) == 0) return cenc_unwrap_hsm(v->key, kid, &p->r[i], key);
    return ct_fail(CT_ERR_FORBIDDEN, "viewer '%s' is not among the %zu recipients of key ID %s", v->name, p->n, k);
}

/* The custodian's check is camtrust-verify's (common/mediasign): one implementation, one report format. */
ct_err view_verify(const char *root, const char *crl, const char *serial, const char *in, FILE *out, bool *authentic)
{
    return ms_verify_paths(root, crl, serial, in, NULL, false, out, authentic);
}

ct_err view_decrypt(const char *dir, const char *in, const char *out, const char *root, const char *crl,
                    FILE *report, cenc_stats *st)
{
    ct_err rc = CT_OK;
    viewer v = {0};
    media_file f = {0};
    bool authentic = false;
    /* The file is read once: what is verified is what is decrypted, whatever happens to IN's path meanwhile (a
     * rename, a switched symlink, a rewrite). Unverified, a mapping will do, guarded: IN cut short meanwhile fails
     * the decrypt in one line instead of killing it with SIGBUS. */
    CT_GUARD(root ? media_file_snapshot(in, VIEW_VERIFIED_MAX, &f) : media_file_map_guarded(in, &f));
    if (root) {
        CT_GUARD(ms_verify_paths(root, crl, NULL, in, &f, false, report, &authentic));
        CT_ENSURE_MSG(authentic, CT_ERR_INTEGRITY, "%s is not authentic: not decrypted", in);
    }
    ct_failpoint_hold("decrypt:verified");
    CT_GUARD(viewer_open(dir, true, &v));
    CT_ENSURE_MSG(v.installed, CT_ERR_CONFIG, "no certificate installed: run camtrust-view install");
    CT_GUARD(cenc_decrypt_file(&f, out, viewer_key, &v, st));
cleanup:
    viewer_close(&v);
    return media_file_unmap_guarded(&f, in, rc);
}

typedef struct {
    viewer *v;
    bool keys;
    FILE *out;
} keys_ctx;

static ct_err print_pssh(void *arg, const cenc_pssh *p)
{
    keys_ctx *c = arg;
    char h[65];
    hex(p->kid, CENC_KID_LEN, h, sizeof h);
    fprintf(c->out, "kid %s recipients %zu\n", h, p->n);
    for (size_t i = 0; i < p->n; i++) {
        hex(p->r[i].cert_sha256, 32, h, sizeof h);
        bool me = c->v->installed && memcmp(p->r[i].cert_sha256, c->v->cert_sha256, 32) == 0;
        fprintf(c->out, "  recipient %s%s\n", h, me ? " (this viewer)" : "");
    }
    if (!c->keys) return CT_OK;
    uint8_t key[CENC_KEY_LEN];
    CT_GUARD_RET(viewer_key(c->v, p->kid, p, key));
    hex(key, sizeof key, h, sizeof h);
    ct_wipe(key, sizeof key);
    fprintf(c->out, "key %s\n", h);
    ct_wipe(h, sizeof h);
    return CT_OK;
}

ct_err view_keys(const char *dir, const char *in, bool print_keys, FILE *out)
{
    ct_err rc = CT_OK;
    viewer v;
    media_file f = {0};
    cenc_scheme s;
    keys_ctx c = {.v = &v, .keys = print_keys, .out = out};
    CT_GUARD_RET(viewer_open(dir, print_keys, &v));
    CT_ENSURE_MSG(!print_keys || v.installed, CT_ERR_CONFIG, "no certificate installed: run camtrust-view install");
    CT_GUARD(media_file_map_guarded(in, &f));
    ct_failpoint_hold("keys:mapped");
    CT_GUARD(cenc_list(f.data, f.len, &s, print_pssh, &c));
    CT_ENSURE(!media_file_shrank(&f), CT_ERR_IO); /* before the last line: the listing then ends without it */
    fprintf(out, "scheme %s\n", cenc_scheme_name(s));
cleanup:
    viewer_close(&v);
    return media_file_unmap_guarded(&f, in, rc);
}
