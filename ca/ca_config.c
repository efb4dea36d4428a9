#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ca_priv.h"

const char *const ca_key_cert_file[CA_KEY__COUNT] = {"root.pem", "device-issuing.pem", "ops-root.pem",
                                                      "ops-issuing.pem", "server.pem"};
const char *const ca_key_default_label[CA_KEY__COUNT] = {"device-root", "device-issuing", "ops-root", "ops-issuing",
                                                         "ca-tls"};

/* One row per setting: the key, its default, and the comment written above it in a new config. */
typedef struct {
    const char *key;
    const char *fallback;
    const char *comment;
} setting_row;

static const setting_row setting_rows[] = {
    {"hsm.module", HSM_DEFAULT_MODULE, "PKCS#11 module of the HSM holding every CA key"},
    {"hsm.token", "camtrust-ca", "token label"},
    {"hsm.pin_file", "secrets/user.pin", "user PIN file (relative to the CA folder); empty: $" CA_PIN_ENV},
    {"hsm.softhsm_conf", "softhsm2.conf", "SoftHSMv2 only: its config (exported as SOFTHSM2_CONF); empty for other HSMs"},
    {"hsm.sessions", "4", "PKCS#11 sessions kept open for signing"},
    {"hsm.key_curve", "P-256", "curve of the keys init generates: P-256 or P-384"},
    {"key.device_root", "pkcs11:object=device-root;type=private", "device root CA key (RFC 7512 URI)"},
    {"key.device_issuing", "pkcs11:object=device-issuing;type=private", "device issuing CA key: signs cameras only"},
    {"key.ops_root", "pkcs11:object=ops-root;type=private", "operations root CA key"},
    {"key.ops_issuing", "pkcs11:object=ops-issuing;type=private", "operations issuing CA key: stations, server"},
    {"key.tls", "pkcs11:object=ca-tls;type=private", "the CA server's own TLS key"},
    {"database", "camtrust.db", "SQLite database (relative to the CA folder)"},
    {"subject.organization", "Example Camera Maker", "subject O of every certificate"},
    {"device.domain", "devices.example.com", "device certificates name <serial>.<domain> in subjectAltName"},
    {"device.validity_days", "0", "device certificate lifetime; 0: notAfter 99991231235959Z (IEEE 802.1AR)"},
    {"ca.root_validity_days", "10950", "root CA lifetime (30 years)"},
    {"ca.issuing_validity_days", "7300", "issuing CA lifetime (20 years)"},
    {"ca.server_validity_days", "825", "the CA server's TLS certificate lifetime"},
    {"ca.station_validity_days", "825", "station certificate lifetime"},
    {"server.listen", "127.0.0.1:8443", "address:port of the HTTPS server"},
    {"server.names", "localhost", "DNS names of the CA server (comma-separated), in its TLS certificate"},
    {"server.ips", "127.0.0.1", "IPv4 addresses of the CA server (comma-separated), in its TLS certificate"},
    {"server.threads", "2", "worker threads"},
    {"server.max_body", "16384", "largest request body accepted, in bytes"},
};

static const char *setting(const ct_config *cfg, const char *key)
{
    for (size_t i = 0; i < sizeof setting_rows / sizeof setting_rows[0]; i++)
        if (strcmp(setting_rows[i].key, key) == 0) return ct_config_get(cfg, key, setting_rows[i].fallback);
    abort(); /* a key missing from the table is a programming error */
}

static ct_err in_dir(const char *dir, const char *value, char *out, size_t max)
{
    if (!*value) return ct_strlcpy(out, max, "");
    if (value[0] == '/') return ct_strlcpy(out, max, value);
    return ct_path_join(out, max, dir, value);
}

ct_err ca_settings_default_text(ct_buf *out)
{
    CT_GUARD_RET(ct_buf_appendf(out, "# camtrust CA configuration: every setting, with its default.\n"));
    for (size_t i = 0; i < sizeof setting_rows / sizeof setting_rows[0]; i++)
        CT_GUARD_RET(ct_buf_appendf(out, "\n# %s\n%s = %s\n", setting_rows[i].comment, setting_rows[i].key,
                                    setting_rows[i].fallback));
    return CT_OK;
}

/* Refuses typos: a misspelt key would otherwise silently fall back to its default. */
static ct_err check_known_keys(const ct_config *cfg)
{
    for (size_t k = 0; k < ct_config_count(cfg); k++) {
        const char *key = ct_config_key(cfg, k);
        bool known = false;
        for (size_t i = 0; i < sizeof setting_rows / sizeof setting_rows[0] && !known; i++)
            known = strcmp(setting_rows[i].key, key) == 0;
        CT_ENSURE_RET(known, ct_fail(CT_ERR_CONFIG, "config: unknown setting '%s'", key));
    }
    return CT_OK;
}

ct_err ca_settings_load(const char *dir, bool allow_missing, ca_settings *s)
{
    ct_err rc = CT_OK;
    ct_config *cfg = NULL;
    ct_buf text = CT_BUF_INIT;
    char path[CA_PATH_MAX];
    memset(s, 0, sizeof *s);
    CT_GUARD(ct_strlcpy(s->dir, sizeof s->dir, dir));
    CT_GUARD(ct_path_join(path, sizeof path, dir, CA_CONFIG_FILE));
    struct stat st;
    if (stat(path, &st) == 0 || !allow_missing) {
        rc = ct_file_read(path, CT_CONFIG_MAX_BYTES, &text);
        CT_ENSURE_MSG(rc == CT_OK, rc == CT_ERR_IO ? CT_ERR_CONFIG : rc, "cannot read %s: is %s a camtrust CA folder?",
                      path, dir);
        CT_GUARD(ct_config_parse(text.data, text.len, &cfg));
        CT_GUARD(check_known_keys(cfg));
    }
    CT_GUARD(ct_strlcpy(s->module, sizeof s->module, setting(cfg, "hsm.module")));
    CT_GUARD(ct_strlcpy(s->token, sizeof s->token, setting(cfg, "hsm.token")));
    CT_GUARD(in_dir(dir, setting(cfg, "hsm.pin_file"), s->pin_file, sizeof s->pin_file));
    CT_GUARD(in_dir(dir, setting(cfg, "hsm.softhsm_conf"), s->softhsm_conf, sizeof s->softhsm_conf));
    CT_GUARD(in_dir(dir, setting(cfg, "database"), s->db_path, sizeof s->db_path));
    CT_GUARD(ct_strlcpy(s->curve, sizeof s->curve, setting(cfg, "hsm.key_curve")));
    CT_ENSURE_MSG(strcmp(s->curve, "P-256") == 0 || strcmp(s->curve, "P-384") == 0, CT_ERR_CONFIG,
                  "config hsm.key_curve: '%s' is not P-256 or P-384", s->curve);
    static const char *const key_settings[CA_KEY__COUNT] = {"key.device_root", "key.device_issuing", "key.ops_root",
                                                            "key.ops_issuing", "key.tls"};
    for (int i = 0; i < CA_KEY__COUNT; i++)
        CT_GUARD(ct_strlcpy(s->key_uri[i], sizeof s->key_uri[i], setting(cfg, key_settings[i])));
    CT_GUARD(ct_strlcpy(s->organization, sizeof s->organization, setting(cfg, "subject.organization")));
    CT_GUARD(ct_strlcpy(s->device_domain, sizeof s->device_domain, setting(cfg, "device.domain")));
    CT_GUARD(ct_strlcpy(s->listen, sizeof s->listen, setting(cfg, "server.listen")));
    CT_GUARD(ct_strlcpy(s->server_names, sizeof s->server_names, setting(cfg, "server.names")));
    CT_GUARD(ct_strlcpy(s->server_ips, sizeof s->server_ips, setting(cfg, "server.ips")));
    CT_GUARD(ct_config_get_int(cfg, "hsm.sessions", 4, 1, 64, &s->sessions));
    CT_GUARD(ct_config_get_int(cfg, "server.threads", 2, 1, 64, &s->threads));
    CT_GUARD(ct_config_get_int(cfg, "server.max_body", CA_MAX_BODY_DEFAULT, 1024, 1 << 20, &s->max_body));
    CT_GUARD(ct_config_get_int(cfg, "device.validity_days", 0, 0, 100000, &s->device_days));
    CT_GUARD(ct_config_get_int(cfg, "ca.root_validity_days", 10950, 1, 100000, &s->root_days));
    CT_GUARD(ct_config_get_int(cfg, "ca.issuing_validity_days", 7300, 1, 100000, &s->issuing_days));
    CT_GUARD(ct_config_get_int(cfg, "ca.server_validity_days", 825, 1, 100000, &s->server_days));
    CT_GUARD(ct_config_get_int(cfg, "ca.station_validity_days", 825, 1, 100000, &s->station_days));
    if (*s->softhsm_conf) CT_ENSURE_MSG(setenv("SOFTHSM2_CONF", s->softhsm_conf, 1) == 0, CT_ERR_CONFIG, "setenv failed");
cleanup:
    ct_config_free(cfg);
    ct_buf_free(&text);
    return rc;
}

ct_err ca_hsm_open(const ca_settings *s, hsm **out)
{
    char pin[128];
    ct_err rc = ct_secret_load(*s->pin_file ? s->pin_file : NULL, CA_PIN_ENV, pin, sizeof pin);
    if (rc == CT_OK) {
        hsm_config hc = {.module_path = s->module, .token_label = s->token, .pin = pin,
                         .session_pool = (unsigned)s->sessions};
        rc = hsm_open(&hc, out);
    }
    ct_wipe(pin, sizeof pin);
    return rc;
}

bool ca_serial_valid(const char *serial)
{
    size_t n = strlen(serial);
    if (n == 0 || n > 63 || serial[0] == '-' || serial[n - 1] == '-') return false;
    for (size_t i = 0; i < n; i++) {
        char ch = serial[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return false;
    }
    return true;
}

static ct_err read_pem_or_der(const char *path, const char *label, size_t max, ct_buf *der)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT;
    CT_GUARD(ct_file_read(path, 64 * 1024, &file));
    CT_GUARD(ct_buf_alloc(der, max));
    if (file.len > 0 && file.data[0] == 0x30) {
        CT_GUARD(ct_buf_set(der, file.data, file.len));
    } else {
        rc = ct_pem_decode(file.data, file.len, label, 0, der);
        if (rc == CT_ERR_NOT_FOUND) rc = ct_fail(CT_ERR_BAD_DER, "%s holds no PEM %s", path, label);
    }
cleanup:
    ct_buf_free(&file);
    if (rc != CT_OK) ct_buf_free(der);
    return rc;
}

ct_err ca_read_cert_file(const char *path, ct_buf *der)
{
    return read_pem_or_der(path, "CERTIFICATE", PKI_MAX_CERT_DER, der);
}

ct_err ca_read_csr_file(const char *path, ct_buf *der)
{
    return read_pem_or_der(path, "CERTIFICATE REQUEST", PKI_MAX_CSR_DER, der);
}

ct_err ca_write_pem_chain(const char *path, const ct_buf *const *certs, size_t n)
{
    ct_err rc = CT_OK;
    ct_buf pem = CT_BUF_INIT;
    CT_GUARD(ct_buf_alloc(&pem, n * (PKI_MAX_CERT_DER * 2)));
    for (size_t i = 0; i < n; i++) CT_GUARD(ct_pem_encode("CERTIFICATE", certs[i]->data, certs[i]->len, &pem));
    CT_GUARD(ct_file_write_atomic(path, pem.data, pem.len, 0644));
cleanup:
    ct_buf_free(&pem);
    return rc;
}
