#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "ca_priv.h"

const char *const ca_key_cert_file[CA_KEY__COUNT] = {"root.pem",        "device-issuing.pem", "ops-root.pem",
                                                      "ops-issuing.pem", "server.pem",         "ocsp-signer.pem",
                                                      "log.pem"};
const char *const ca_key_default_label[CA_KEY__COUNT] = {"device-root", "device-issuing", "ops-root",
                                                         "ops-issuing", "ca-tls",         "ocsp-signer",
                                                         "log-signer"};

static const ct_setting setting_rows[] = {
    HSM_SETTING_ROWS("camtrust-ca", CA_PIN_ENV),
    {"hsm.key_curve", "P-256", "curve of the keys init generates: P-256 or P-384"},
    {"key.device_root", "pkcs11:object=device-root;type=private", "device root CA key (RFC 7512 URI)"},
    {"key.device_issuing", "pkcs11:object=device-issuing;type=private", "device issuing CA key: signs cameras only"},
    {"key.ops_root", "pkcs11:object=ops-root;type=private", "operations root CA key"},
    {"key.ops_issuing", "pkcs11:object=ops-issuing;type=private", "operations issuing CA key: stations, server"},
    {"key.tls", "pkcs11:object=ca-tls;type=private", "the CA server's own TLS key"},
    {"key.ocsp", "pkcs11:object=ocsp-signer;type=private", "delegated OCSP responder key (device issuing CA certifies it)"},
    {"key.log", "pkcs11:object=log-signer;type=private",
     "issuance log key: signs tree heads (operations issuing CA certifies it)"},
    {"key.log_note", "pkcs11:object=log-note;type=private",
     "issuance log checkpoint key (Ed25519): signs C2SP checkpoints; its verifier key is log.vkey"},
    {"log.origin", "",
     "checkpoints' origin line and key name; empty: camtrust.example.com/<subject.organization, slugged>/issuance"},
    {"log.witnesses", "witnesses.vkeys",
     "witnesses' verifier keys (c2sp.org/tlog-cosignature), one a line (relative to the CA folder; absent: none): "
     "POST /log/cosignature accepts their cosignatures, audit verify --witnesses K counts them"},
    {"log.sth_delay_ms", "200", "while serving, a signed tree head this long after a burst of issuances"},
    {"log.fork_recheck_s", "60",
     "while the signer refuses a forked log (or one whose rows changed while it read them), it reads the whole log "
     "again this often: rows put right in place are then signed again (between, nothing read)"},
    {"log.witnesses_required", "0",
     "the officer console flags the newest checkpoint when fewer of log.witnesses than this cosigned it (0: none)"},
    {"log.witness_max_age_s", "3600",
     "the officer console flags a configured witness whose newest cosignature is older than this (or none)"},
    {"audit.anonymous_interval_s", "60",
     "while serving, anonymous refusals (and those a client can repeat at will) are audited as counts per client, "
     "action and reason, once per interval"},
    {"audit.anonymous_max_rows", "256", "most such counts per interval (8 per client); further ones share one row"},
    {"officer.requests_per_minute", "120",
     "officer API requests (each read is an audit entry) one officer may make per minute, as many at once; past it "
     "the answer is 503, counted as a refusal"},
    {"station.refusals_per_minute", "60",
     "refusals of one station's EST requests (serial outside its orders, ...) audited one by one per minute, as many "
     "at once; past it they are counted (est.budget), not written each. Issuance is never limited by it"},
    {"device.refusals_per_minute", "60",
     "refusals of one camera certificate's re-enrollments (simplereenroll) audited one by one per minute, as many at "
     "once; past it they are counted (est.budget), not written each. Re-enrollment is never limited by it"},
    {"key.audit_mac", CA_AUDIT_MAC_DEFAULT_URI,
     "audit chain key: HMAC-SHA256 of every audit entry, made in the token at init (or at the first open of an older CA)"},
    {"database", "camtrust.db", "SQLite database (relative to the CA folder), when db.backend is sqlite"},
    {"db.backend", "sqlite",
     "where the CA's records are: sqlite (the file `database`) or postgresql (db.url; nodes of this CA may share it)"},
    {"db.url", "", "PostgreSQL: a libpq connection string (host=... port=... dbname=... user=...), never a password"},
    {"db.password_file", "",
     "PostgreSQL: file holding the password, one line (relative to the CA folder; empty: none, e.g. peer or certificate "
     "authentication)"},
    {"subject.organization", "Example Camera Maker", "subject O of every certificate"},
    {"device.domain", "devices.example.com", "device certificates name <serial>.<domain> in subjectAltName"},
    {"device.validity_days", "0", "device certificate lifetime; 0: notAfter 99991231235959Z (IEEE 802.1AR)"},
    {"ca.root_validity_days", "10950", "root CA lifetime (30 years)"},
    {"ca.issuing_validity_days", "7300", "issuing CA lifetime (20 years)"},
    {"ca.server_validity_days", "825", "the CA server's TLS certificate lifetime"},
    {"ca.station_validity_days", "825", "station certificate lifetime"},
    {"ocsp.signer_validity_days", "365", "OCSP responder certificate lifetime (it is not itself checked: ocsp-nocheck)"},
    {"crl.url", "http://127.0.0.1:8080/crl", "CRL distribution point written into device certificates; empty: none"},
    {"crl.validity_hours", "24", "CRL nextUpdate after thisUpdate; the CRL is re-signed at half of it and on revocation"},
    {"ocsp.url", "http://127.0.0.1:8080/ocsp", "OCSP responder URL written into device certificates; empty: none"},
    {"ocsp.validity_hours", "12", "OCSP response nextUpdate after thisUpdate; re-signed at half of it and on revocation"},
    {"ocsp.cache_entries", "65536", "pre-signed OCSP responses kept in memory (about 1.5 KiB each)"},
    {"ocsp.signatures_per_minute", "120",
     "OCSP answers the token signs for one request alone (a nonce, several certificates, an unknown serial) per client "
     "address (IPv6: per /64) and minute, as many at once; past it a nonce is left out (the pre-signed answer) and "
     "the rest is answered tryLater, counted as refusals"},
    {"server.listen", "127.0.0.1:8443", "address:port of the HTTPS server"},
    {"server.names", "localhost", "DNS names of the CA server (comma-separated), in its TLS certificate"},
    {"server.ips", "127.0.0.1", "IPv4 addresses of the CA server (comma-separated), in its TLS certificate"},
    {"server.http_listen", "127.0.0.1:8080", "address:port of plain HTTP for /crl and /ocsp only; empty: none"},
    {"server.threads", "8", "read-only database connections (each client connection has a thread of its own)"},
    {"server.max_body", "16384", "largest request body accepted, in bytes"},
    {"server.per_ip_connections", "32", "connections one client address may hold at once; more are closed at once"},
    {"server.per_ip_connects_per_second", "50",
     "new HTTPS connections one client address may open a second (each costs a TLS handshake signed in the token), "
     "server.per_ip_connects_burst at once; more are closed at once, before any handshake; 0: no bound"},
    {"server.per_ip_connects_burst", "500", "new HTTPS connections one client address may open at once"},
    {"server.max_connections", "256",
     "connections each listener may hold, a thread each (bounded by the open-file limit); more are closed at once"},
    {"server.reserved_connections", "32",
     "of server.max_connections (at most half), kept for stations and officers: past the rest, each new connection "
     "closes the oldest idle one of no station or officer; 0: none kept"},
    {"server.idle_timeout", "10", "seconds a connection may stay silent (a TLS handshake too) before it is closed"},
    {"server.request_timeout", "30",
     "seconds a request may take to arrive whole (a TLS handshake, headers, body), from its connection's opening or "
     "the answer before (a longer server.idle_timeout instead, a keep-alive connection waiting for its next request); "
     "one sent a byte at a time is cut off then"},
    {"server.drain_seconds", "10", "at SIGTERM: stop accepting, and give requests under way this long to finish"},
    {"node.id", "",
     "this node's name among several serving one database, unique per node (letters, digits, '-', '_', '.'); "
     "not one of the CA's own audit actors (ca, ca-server, cli, unknown); empty: node:HOST:PID"},
    {"node.lease_ms", "10000",
     "the signer lease (one node signs checkpoints and CRLs): renewed every fifth of it; when its holder dies, "
     "another node takes over within it and a fifth. On PostgreSQL a write waits for the writers' lock up to 3/5 of "
     "it, 3 s at least (then 503), and a node's session idle inside a write transaction for 2/5, 2 s at least, is "
     "ended"},
};

/* The default origin: a schema-less URL, as C2SP recommends, naming the organization ("Example Camera Maker" ->
 * camtrust.example.com/example-camera-maker/issuance). */
static ct_err origin_setting(const ct_settings_schema *sc, const ct_config *cfg, ca_settings *s)
{
    char slug[80];
    size_t n = 0;
    CT_GUARD_RET(ct_settings_copy(sc, cfg, "log.origin", s->log_origin, sizeof s->log_origin));
    if (s->log_origin[0]) {
        CT_ENSURE_RET(ct_note_name_valid(s->log_origin, strlen(s->log_origin)),
                      ct_fail(CT_ERR_CONFIG, "config log.origin: no spaces, no '+', valid UTF-8"));
        return CT_OK;
    }
    for (const char *p = s->organization; *p && n < sizeof slug - 1; p++) {
        char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
        bool keep = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (keep) slug[n++] = ch;
        else if (n > 0 && slug[n - 1] != '-') slug[n++] = '-';
    }
    while (n > 0 && slug[n - 1] == '-') n--;
    slug[n] = '\0';
    return ct_snprintf(s->log_origin, sizeof s->log_origin, "camtrust.example.com/%s/issuance", n ? slug : "ca");
}

static const ct_settings_schema schema = {"camtrust CA configuration", setting_rows,
                                          sizeof setting_rows / sizeof setting_rows[0]};

ct_err ca_settings_write_defaults(const char *dir)
{
    char path[CA_PATH_MAX];
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, CA_CONFIG_FILE));
    return ct_settings_write_defaults(&schema, path);
}

ct_err ca_settings_load(const char *dir, ca_settings *s)
{
    ct_err rc = CT_OK;
    ct_config *cfg = NULL;
    memset(s, 0, sizeof *s);
    CT_GUARD(ct_strlcpy(s->dir, sizeof s->dir, dir));
    CT_GUARD(ct_settings_load_dir(&schema, dir, CA_CONFIG_FILE, "is it a camtrust CA folder?", &cfg));
    CT_GUARD(hsm_settings_read(&schema, cfg, dir, CA_PIN_ENV, &s->hsm));
    CT_GUARD(ct_settings_copy_path(&schema, cfg, "database", dir, s->db_path, sizeof s->db_path));
    CT_GUARD(ct_settings_copy(&schema, cfg, "db.backend", s->db_backend, sizeof s->db_backend));
    CT_ENSURE_MSG(strcmp(s->db_backend, "sqlite") == 0 || strcmp(s->db_backend, "postgresql") == 0, CT_ERR_CONFIG,
                  "config db.backend: '%s' is not sqlite or postgresql", s->db_backend);
    CT_GUARD(ct_settings_copy(&schema, cfg, "db.url", s->db_url, sizeof s->db_url));
    CT_ENSURE_MSG(strcmp(s->db_backend, "postgresql") != 0 || s->db_url[0], CT_ERR_CONFIG,
                  "config db.backend is postgresql: db.url names the database");
    CT_GUARD(ct_settings_copy_path(&schema, cfg, "db.password_file", dir, s->db_password_file,
                                   sizeof s->db_password_file));
    CT_GUARD(ct_settings_copy(&schema, cfg, "hsm.key_curve", s->curve, sizeof s->curve));
    CT_ENSURE_MSG(strcmp(s->curve, "P-256") == 0 || strcmp(s->curve, "P-384") == 0, CT_ERR_CONFIG,
                  "config hsm.key_curve: '%s' is not P-256 or P-384", s->curve);
    static const char *const key_settings[CA_KEY__COUNT] = {"key.device_root", "key.device_issuing", "key.ops_root",
                                                            "key.ops_issuing", "key.tls", "key.ocsp",
                                                            "key.log"};
    for (int i = 0; i < CA_KEY__COUNT; i++)
        CT_GUARD(ct_settings_copy(&schema, cfg, key_settings[i], s->key_uri[i], sizeof s->key_uri[i]));
    CT_GUARD(ct_settings_copy(&schema, cfg, "key.audit_mac", s->audit_mac_uri, sizeof s->audit_mac_uri));
    CT_GUARD(ct_settings_copy(&schema, cfg, "subject.organization", s->organization, sizeof s->organization));
    CT_GUARD(ct_settings_copy(&schema, cfg, "device.domain", s->device_domain, sizeof s->device_domain));
    CT_GUARD(ct_settings_copy(&schema, cfg, "server.listen", s->listen, sizeof s->listen));
    CT_GUARD(ct_settings_copy(&schema, cfg, "server.http_listen", s->http_listen, sizeof s->http_listen));
    CT_GUARD(ct_settings_copy(&schema, cfg, "crl.url", s->crl_url, sizeof s->crl_url));
    CT_GUARD(ct_settings_copy(&schema, cfg, "ocsp.url", s->ocsp_url, sizeof s->ocsp_url));
    CT_GUARD(ct_settings_copy(&schema, cfg, "server.names", s->server_names, sizeof s->server_names));
    CT_GUARD(ct_settings_copy(&schema, cfg, "server.ips", s->server_ips, sizeof s->server_ips));
    CT_GUARD(ct_config_get_int(cfg, "server.threads", 8, 1, 64, &s->threads));
    CT_GUARD(ct_config_get_int(cfg, "server.max_body", CA_MAX_BODY_DEFAULT, 1024, 1 << 20, &s->max_body));
    CT_GUARD(ct_config_get_int(cfg, "server.per_ip_connections", 32, 1, 100000, &s->per_ip_connections));
    CT_GUARD(ct_config_get_int(cfg, "server.per_ip_connects_per_second", 50, 0, 1000000,
                               &s->per_ip_connects_per_second));
    CT_GUARD(ct_config_get_int(cfg, "server.per_ip_connects_burst", 500, 1, 1000000, &s->per_ip_connects_burst));
    CT_GUARD(ct_config_get_int(cfg, "server.max_connections", 256, 16, 1000000, &s->max_connections));
    CT_GUARD(ct_config_get_int(cfg, "server.reserved_connections", 32, 0, 1000000, &s->reserved_connections));
    CT_GUARD(ct_config_get_int(cfg, "server.idle_timeout", 10, 1, 3600, &s->idle_timeout));
    CT_GUARD(ct_config_get_int(cfg, "server.request_timeout", 30, 1, 3600, &s->request_timeout));
    CT_GUARD(ct_config_get_int(cfg, "server.drain_seconds", 10, 0, 600, &s->drain_seconds));
    CT_GUARD(ct_config_get_int(cfg, "device.validity_days", 0, 0, 100000, &s->device_days));
    CT_GUARD(ct_config_get_int(cfg, "ca.root_validity_days", 10950, 1, 100000, &s->root_days));
    CT_GUARD(ct_config_get_int(cfg, "ca.issuing_validity_days", 7300, 1, 100000, &s->issuing_days));
    CT_GUARD(ct_config_get_int(cfg, "ca.server_validity_days", 825, 1, 100000, &s->server_days));
    CT_GUARD(ct_config_get_int(cfg, "ca.station_validity_days", 825, 1, 100000, &s->station_days));
    CT_GUARD(ct_config_get_int(cfg, "ocsp.signer_validity_days", 365, 1, 100000, &s->ocsp_signer_days));
    CT_GUARD(ct_config_get_int(cfg, "crl.validity_hours", 24, 1, 24 * 366, &s->crl_hours));
    CT_GUARD(ct_config_get_int(cfg, "ocsp.validity_hours", 12, 1, 24 * 366, &s->ocsp_hours));
    CT_GUARD(ct_config_get_int(cfg, "ocsp.cache_entries", 65536, 0, 1 << 24, &s->ocsp_cache));
    CT_GUARD(ct_config_get_int(cfg, "ocsp.signatures_per_minute", 120, 1, 1000000, &s->ocsp_signatures_per_minute));
    CT_GUARD(ct_settings_copy(&schema, cfg, "key.log_note", s->note_key_uri, sizeof s->note_key_uri));
    CT_GUARD(origin_setting(&schema, cfg, s));
    CT_GUARD(ct_settings_copy_path(&schema, cfg, "log.witnesses", dir, s->witnesses_path, sizeof s->witnesses_path));
    CT_GUARD(ct_config_get_int(cfg, "log.sth_delay_ms", 200, 0, 600000, &s->log_sth_delay_ms));
    CT_GUARD(ct_config_get_int(cfg, "log.fork_recheck_s", 60, 1, 3600, &s->log_fork_recheck_s));
    CT_GUARD(ct_config_get_int(cfg, "log.witness_max_age_s", 3600, 1, 31536000, &s->witness_max_age_s));
    CT_GUARD(ct_config_get_int(cfg, "log.witnesses_required", 0, 0, CT_COSIG_WITNESSES_MAX, &s->witnesses_required));
    CT_GUARD(ct_config_get_int(cfg, "audit.anonymous_interval_s", 60, 1, 86400, &s->anonymous_interval_s));
    CT_GUARD(ct_config_get_int(cfg, "audit.anonymous_max_rows", 256, 1, 65536, &s->anonymous_max_rows));
    CT_GUARD(ct_config_get_int(cfg, "officer.requests_per_minute", 120, 1, 1000000, &s->officer_requests_per_minute));
    CT_GUARD(ct_config_get_int(cfg, "station.refusals_per_minute", 60, 1, 1000000, &s->station_refusals_per_minute));
    CT_GUARD(ct_config_get_int(cfg, "device.refusals_per_minute", 60, 1, 1000000, &s->device_refusals_per_minute));
    CT_GUARD(ct_settings_copy(&schema, cfg, "node.id", s->node_id, sizeof s->node_id));
    CT_ENSURE_MSG(!s->node_id[0] || ca_name_valid(s->node_id), CT_ERR_CONFIG,
                  "config node.id: 1-63 letters, digits, '-', '_', '.'");
    if (s->node_id[0]) CT_GUARD(ca_own_actor_refuse("config node.id", s->node_id, CT_ERR_CONFIG));
    CT_GUARD(ct_config_get_int(cfg, "node.lease_ms", 10000, 500, 600000, &s->lease_ms));
cleanup:
    ct_config_free(cfg);
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

ct_err ca_read_cert_file(const char *path, ct_buf *der)
{
    return ct_pem_or_der_read(path, "CERTIFICATE", PKI_MAX_CERT_DER, der);
}

ct_err ca_read_csr_file(const char *path, ct_buf *der)
{
    return ct_pem_or_der_read(path, "CERTIFICATE REQUEST", PKI_MAX_CSR_DER, der);
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

bool ca_db_is_pg(const ca_settings *s) { return strcmp(s->db_backend, "postgresql") == 0; }

void ca_db_config(const ca_settings *s, const char *ca_id, db_config *out)
{
    *out = (db_config){.backend = ca_db_is_pg(s) ? DB_BACKEND_POSTGRESQL : DB_BACKEND_SQLITE,
                       .path = s->db_path,
                       .url = s->db_url,
                       .password_file = s->db_password_file[0] ? s->db_password_file : NULL,
                       .ca_id = ca_id,
                       /* A node stalled holding the writers' lock holds it at most 2/5 of the lease (PostgreSQL
                        * ends its session), and a write waits for it up to 3/5: the signer's renewal, every fifth,
                        * is served once the stall is ended, before its lease runs out. Never under 3 s and 2 s: a
                        * short lease (tests: 1-2 s) must not cut off a node that is only slow (a loaded machine); a
                        * lease under 5 s then gives no such promise. */
                       .lock_wait_ms = s->lease_ms * 3 / 5 > 3000 ? s->lease_ms * 3 / 5 : 3000,
                       .idle_tx_ms = s->lease_ms * 2 / 5 > 2000 ? s->lease_ms * 2 / 5 : 2000};
}

#define CA_ID_BYTES 16
ct_err ca_id_read(const char *dir, bool make, char out[DB_CA_ID_MAX])
{
    ct_err rc = CT_OK;
    char path[CA_PATH_MAX];
    ct_buf text = CT_BUF_INIT;
    CT_GUARD(ct_path_join(path, sizeof path, dir, CA_ID_FILE));
    if (make && !ct_file_exists(path)) {
        uint8_t id[CA_ID_BYTES];
        char line[2 * CA_ID_BYTES + 2];
        CT_GUARD(ct_random(id, sizeof id));
        CT_GUARD(ct_hex_encode(id, sizeof id, line, sizeof line));
        CT_GUARD(ct_strlcpy(line + 2 * CA_ID_BYTES, 2, "\n"));
        CT_GUARD(ca_file_write_owned(path, line, strlen(line), 0600)); /* made as root: the folder owner's */
    }
    rc = ct_file_read(path, 2 * CA_ID_BYTES + 2, &text);
    CT_ENSURE(rc == CT_OK, ct_fail(CT_ERR_CONFIG, "%s: cannot read the CA's id", path));
    while (text.len && (text.data[text.len - 1] == '\n' || text.data[text.len - 1] == '\r')) text.len--;
    CT_ENSURE_MSG(text.len == 2 * CA_ID_BYTES && text.len < DB_CA_ID_MAX, CT_ERR_CONFIG,
                  "%s: the CA's id is %d hex digits", path, 2 * CA_ID_BYTES);
    for (size_t i = 0; i < text.len; i++)
        CT_ENSURE_MSG(strchr("0123456789abcdef", text.data[i]) && text.data[i], CT_ERR_CONFIG,
                      "%s: the CA's id is %d hex digits", path, 2 * CA_ID_BYTES);
    memcpy(out, text.data, text.len);
    out[text.len] = '\0';
cleanup:
    ct_buf_free(&text);
    return rc;
}

ct_err ca_settings_set(const char *dir, const char *key, const char *value)
{
    char path[CA_PATH_MAX];
    ct_buf text = CT_BUF_INIT;
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, CA_CONFIG_FILE));
    /* Rewritten as root (db migrate-to), still the folder's owner's: its User=camtrust service reads it. */
    ct_err rc = ct_settings_render(&schema, path, key, value, &text);
    if (rc == CT_OK) rc = ca_file_write_owned(path, text.data, text.len, 0600);
    ct_buf_free(&text);
    return rc;
}
