/* camtrust-ca witness: an independent witness of a CA's issuance log (c2sp.org/tlog-cosignature). It runs elsewhere,
 * under another officer, with its own folder and its own token holding its Ed25519 key. It polls the CA's
 * GET /log/checkpoint (plain HTTP: a checkpoint proves itself), checks the CA's signature with the pinned log.vkey,
 * checks that the checkpoint extends the last one it cosigned (RFC 9162 consistency proof from
 * /log/proof/consistency, same size: same root), keeps it (W/state.note, written atomically before anything is
 * sent), cosigns it and POSTs the cosignature to /log/cosignature. A checkpoint that does not extend the kept one
 * (a rolled-back or forked log) is never cosigned: one line "witness_refused" and the process ends with status 1,
 * so that whoever runs it must look. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/factory/factory.h"
#include "ca_priv.h"

#define WITNESS_CONFIG_FILE "witness.conf"
#define WITNESS_VKEY_FILE "witness.vkey"
#define WITNESS_STATE_FILE "state.note"
#define WITNESS_PIN_ENV "CAMTRUST_WITNESS_PIN"
#define WITNESS_KEY_LABEL "witness"
#define HTTP_TIMEOUT_MS 5000
#define HTTP_ANSWER_MAX (CT_NOTE_MAX + 4096)
static const uint8_t k_witness_key_id[] = {0x77, 0x01};

#define WITNESS_ROWS(name)                                                                                  \
    HSM_SETTING_ROWS("camtrust-witness", WITNESS_PIN_ENV),                                                   \
        {"name", name, "the witness's key name in cosignatures (e.g. witness.example.org/floor-2)"}

static const ct_setting witness_rows[] = {WITNESS_ROWS("")};
static const ct_settings_schema witness_schema = {"camtrust witness configuration", witness_rows,
                                                  sizeof witness_rows / sizeof witness_rows[0]};

typedef struct {
    char dir[CA_PATH_MAX];
    hsm_settings hs;
    hsm *h;
    hsm_eddsa_key *key;
    ct_note_verifier self; /* cosignature/v1 verifier of its own key */
    ct_note_verifier log;  /* the CA's checkpoint key (pinned log.vkey) */
    char host[256];        /* host:port of the CA's plain HTTP listener */
} witness;

static void witness_close(witness *w)
{
    hsm_eddsa_free(w->key);
    hsm_close(w->h);
    w->key = NULL;
    w->h = NULL;
}

/* Reads W/witness.conf and opens its token; with `key`, finds its key and makes its verifier. */
static ct_err witness_open(const char *dir, bool key, witness *w, char *name, size_t name_max)
{
    ct_err rc = CT_OK;
    ct_config *cfg = NULL;
    memset(w, 0, sizeof *w);
    CT_GUARD(ct_strlcpy(w->dir, sizeof w->dir, dir));
    CT_GUARD(ct_settings_load_dir(&witness_schema, dir, WITNESS_CONFIG_FILE,
                                  "not a witness folder (camtrust-ca witness init makes one)", &cfg));
    CT_GUARD(hsm_settings_read(&witness_schema, cfg, dir, WITNESS_PIN_ENV, &w->hs));
    CT_GUARD(ct_settings_copy(&witness_schema, cfg, "name", name, name_max));
    CT_ENSURE_MSG(ct_note_name_valid(name, strlen(name)), CT_ERR_CONFIG,
                  "%s: name '%.80s' is not a note key name (no spaces, no '+')", WITNESS_CONFIG_FILE, name);
    if (!key) goto cleanup;
    CT_GUARD(hsm_open_settings(&w->hs, &w->h));
    CT_GUARD(hsm_eddsa_find(w->h, WITNESS_KEY_LABEL, &w->key));
    CT_GUARD(ct_cosig_verifier_make(name, hsm_eddsa_public(w->key), &w->self));
cleanup:
    ct_config_free(cfg);
    if (rc != CT_OK) witness_close(w);
    return rc;
}

ct_err ca_witness_init(const char *dir, const char *name, char *vkey, size_t vkey_max)
{
    ct_err rc = CT_OK;
    witness w = {0};
    char path[CA_PATH_MAX], line[CT_NOTE_VKEY_MAX + 2], got[CT_NOTE_NAME_MAX];
    CT_ENSURE_MSG(name && ct_note_name_valid(name, strlen(name)), CT_ERR_USAGE,
                  "--name '%.80s' is not a note key name (no spaces, no '+')", name ? name : "");
    CT_GUARD(ct_path_join(path, sizeof path, dir, WITNESS_CONFIG_FILE));
    CT_ENSURE_MSG(!ct_file_exists(path), CT_ERR_EXISTS, "%s exists: %s is a witness already", path, dir);
    CT_GUARD(ct_mkdir(dir, 0700));
    const ct_setting rows[] = {WITNESS_ROWS(name)};
    const ct_settings_schema with_name = {witness_schema.title, rows, sizeof rows / sizeof rows[0]};
    CT_GUARD(ct_settings_write_defaults(&with_name, path));
    CT_GUARD(witness_open(dir, false, &w, got, sizeof got));
    CT_GUARD(hsm_local_token_prepare(&w.hs, dir));
    CT_GUARD(hsm_open_settings(&w.hs, &w.h));
    CT_GUARD(hsm_eddsa_generate(w.h, WITNESS_KEY_LABEL, k_witness_key_id, sizeof k_witness_key_id, &w.key));
    CT_GUARD(ct_cosig_verifier_make(name, hsm_eddsa_public(w.key), &w.self));
    CT_GUARD(ct_cosig_verifier_format(&w.self, vkey, vkey_max));
    CT_GUARD(ct_snprintf(line, sizeof line, "%s\n", vkey));
    CT_GUARD(ct_path_join(path, sizeof path, dir, WITNESS_VKEY_FILE));
    CT_GUARD(ct_file_write_atomic(path, line, strlen(line), 0644));
cleanup:
    witness_close(&w);
    return rc;
}

/* ---- a minimal HTTP/1.1 client (plain HTTP, one request per connection) ---- */

static ct_err http_send(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        CT_GUARD_RET(ct_wait_fd(fd, POLLOUT, deadline, "sending to the CA"));
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        CT_ENSURE_RET(r > 0, ct_fail(CT_ERR_IO, "cannot send to the CA: %s", strerror(errno)));
        p += r;
        n -= (size_t)r;
    }
    return CT_OK;
}

/* METHOD path; the answer's body (allocated) when the status is 200, else CT_ERR_IO naming status and reason. */
static ct_err http_call(const witness *w, const char *method, const char *path, const ct_buf *body, ct_buf *answer)
{
    ct_err rc = CT_OK;
    int fd = -1;
    ct_buf req = CT_BUF_INIT, in = CT_BUF_INIT;
    int64_t deadline = ct_now_ms() + HTTP_TIMEOUT_MS;
    CT_GUARD(ct_buf_alloc(&req, 1024 + (body ? body->len : 0)));
    CT_GUARD(ct_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, w->host));
    if (body)
        CT_GUARD(ct_buf_appendf(&req, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n", body->len));
    CT_GUARD(ct_buf_append(&req, "\r\n", 2));
    if (body) CT_GUARD(ct_buf_append(&req, body->data, body->len));
    CT_GUARD(factory_connect(w->host, HTTP_TIMEOUT_MS, &fd));
    CT_GUARD(http_send(fd, req.data, req.len, deadline));
    CT_GUARD(ct_buf_alloc(&in, HTTP_ANSWER_MAX + 1));
    for (;;) { /* Connection: close: the answer ends where the stream does */
        CT_GUARD(ct_wait_fd(fd, POLLIN, deadline, "waiting for the CA"));
        CT_ENSURE_MSG(in.len < HTTP_ANSWER_MAX, CT_ERR_IO, "the CA's answer to %s is over %d bytes", path, HTTP_ANSWER_MAX);
        ssize_t r = recv(fd, in.data + in.len, HTTP_ANSWER_MAX - in.len, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        CT_ENSURE_MSG(r >= 0, CT_ERR_IO, "cannot read from the CA: %s", strerror(errno));
        if (r == 0) break;
        in.len += (size_t)r;
    }
    in.data[in.len] = '\0';
    const char *head_end = strstr((const char *)in.data, "\r\n\r\n");
    int status = 0;
    CT_ENSURE_MSG(head_end && sscanf((const char *)in.data, "HTTP/1.%*d %d", &status) == 1, CT_ERR_IO,
                  "the CA's answer to %s is not HTTP", path);
    const uint8_t *b = (const uint8_t *)head_end + 4;
    size_t blen = in.len - (size_t)(b - in.data);
    if (status != 200) {
        size_t shown = blen;
        while (shown > 0 && (b[shown - 1] == '\n' || b[shown - 1] == '\r')) shown--;
        CT_ENSURE_MSG(false, CT_ERR_IO, "%s %s: status %d: %.*s", method, path, status,
                      (int)(shown > 200 ? 200 : shown), (const char *)b);
    }
    CT_GUARD(ct_buf_alloc(answer, blen + 1));
    CT_GUARD(ct_buf_append(answer, b, blen));
    answer->data[blen] = '\0';
cleanup:
    if (fd >= 0) close(fd);
    ct_buf_free(&req);
    ct_buf_free(&in);
    return rc;
}

/* {"first":M,"second":N,"consistency_path":["base64",...]}: the path's hashes. */
static ct_err parse_consistency(const ct_buf *json, ct_merkle_hash *path, size_t *n)
{
    static const char key[] = "\"consistency_path\":[";
    const char *p = strstr((const char *)json->data, key);
    *n = 0;
    CT_ENSURE_RET(p, ct_fail(CT_ERR_BAD_REQUEST, "the consistency proof has no consistency_path"));
    p += strlen(key);
    while (*p != ']') {
        CT_ENSURE_RET(*n < CT_MERKLE_MAX_PATH, ct_fail(CT_ERR_BAD_REQUEST, "the consistency proof is too long"));
        if (*n > 0) {
            CT_ENSURE_RET(*p == ',', ct_fail(CT_ERR_BAD_REQUEST, "the consistency proof is malformed"));
            p++;
        }
        const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;
        CT_ENSURE_RET(end, ct_fail(CT_ERR_BAD_REQUEST, "the consistency proof is malformed"));
        uint8_t raw[64];
        ct_buf dec = {raw, 0, sizeof raw};
        CT_ENSURE_RET(ct_base64_decode((const uint8_t *)p + 1, (size_t)(end - p - 1), &dec) == CT_OK &&
                          dec.len == CT_MERKLE_HASH_LEN,
                      ct_fail(CT_ERR_BAD_REQUEST, "the consistency proof holds a hash that is not 32 bytes of base64"));
        memcpy(path[(*n)++], raw, CT_MERKLE_HASH_LEN);
        p = end + 1;
    }
    return CT_OK;
}

/* Does `now` extend `kept` (the last checkpoint this witness cosigned)? CT_ERR_INTEGRITY with the reason if not. */
static ct_err extends_kept(const witness *w, const ct_checkpoint *kept, const ct_checkpoint *now)
{
    ct_err rc = CT_OK;
    ct_buf json = CT_BUF_INIT;
    ct_merkle_hash path[CT_MERKLE_MAX_PATH];
    size_t n = 0;
    char url[128];
    CT_ENSURE_MSG(now->size >= kept->size, CT_ERR_INTEGRITY, "the log shrank from %llu to %llu leaves (rolled back)",
                  (unsigned long long)kept->size, (unsigned long long)now->size);
    CT_ENSURE_MSG(!kept->has_audit || (now->has_audit && now->audit_entries >= kept->audit_entries), CT_ERR_INTEGRITY,
                  "the audit chain shrank from %llu entries (rolled back)", (unsigned long long)kept->audit_entries);
    if (now->size == kept->size) {
        CT_ENSURE_MSG(memcmp(now->root, kept->root, sizeof now->root) == 0, CT_ERR_INTEGRITY,
                      "two different trees of %llu leaves (forked)", (unsigned long long)now->size);
        goto cleanup;
    }
    if (kept->size == 0) goto cleanup; /* the empty tree is a prefix of every tree */
    CT_GUARD(ct_snprintf(url, sizeof url, "/log/proof/consistency?first=%llu&second=%llu",
                         (unsigned long long)kept->size, (unsigned long long)now->size));
    CT_GUARD(http_call(w, "GET", url, NULL, &json));
    CT_GUARD(parse_consistency(&json, path, &n));
    CT_ENSURE_MSG(ct_merkle_verify_consistency(kept->size, kept->root, now->size, now->root, path, n), CT_ERR_INTEGRITY,
                  "the tree of %llu leaves does not extend the cosigned tree of %llu (forked)",
                  (unsigned long long)now->size, (unsigned long long)kept->size);
cleanup:
    ct_buf_free(&json);
    return rc;
}

/* One poll: fetch, check, keep, cosign, submit. CT_ERR_INTEGRITY: the log contradicts what this witness cosigned. */
static ct_err witness_poll(witness *w)
{
    ct_err rc = CT_OK;
    ct_buf fetched = CT_BUF_INIT, state = CT_BUF_INIT, mine = CT_BUF_INIT, answer = CT_BUF_INIT;
    char path[CA_PATH_MAX];
    ct_checkpoint now = {0}, kept = {0};
    size_t text_len = 0, kept_len = 0;
    uint64_t t = 0;
    CT_GUARD(http_call(w, "GET", "/log/checkpoint", NULL, &fetched));
    rc = ct_checkpoint_open(fetched.data, fetched.len, &w->log, &now);
    CT_ENSURE_MSG(rc == CT_OK, CT_ERR_INTEGRITY, "the served checkpoint is not the log's: %s", ct_err_detail());
    CT_GUARD(ct_note_open(fetched.data, fetched.len, &w->log, &text_len));
    CT_GUARD(ct_path_join(path, sizeof path, w->dir, WITNESS_STATE_FILE));
    if (ct_file_exists(path)) {
        CT_GUARD(ct_file_read(path, CT_NOTE_MAX, &state));
        CT_GUARD(ct_cosig_open(state.data, state.len, &w->self, &kept_len, &t)); /* its own, unaltered */
        CT_GUARD(ct_checkpoint_parse(state.data, kept_len, &kept));
        if (kept_len == text_len && memcmp(state.data, fetched.data, text_len) == 0) {
            /* cosigned already: submitted again only when the CA does not serve it (a failed POST) */
            if (ct_cosig_open(fetched.data, fetched.len, &w->self, &kept_len, &t) == CT_OK) goto cleanup;
            CT_GUARD(http_call(w, "POST", "/log/cosignature", &state, &answer));
            goto cleanup;
        }
        CT_GUARD(extends_kept(w, &kept, &now));
    }
    CT_GUARD(ct_buf_alloc(&mine, text_len + 1 + CT_COSIG_LINE_MAX));
    CT_GUARD(ct_buf_append(&mine, fetched.data, text_len));
    CT_GUARD(ct_buf_append(&mine, "\n", 1));
    CT_GUARD(ct_cosig_sign(fetched.data, text_len, &w->self, (uint64_t)time(NULL), ca_note_sign_cb, w->key, &mine));
    CT_GUARD(ct_file_write_atomic(path, mine.data, mine.len, 0600)); /* kept before it leaves: never signed twice */
    ct_log(CT_LOG_INFO, "witness_cosigned", "size=%llu audit_entries=%llu", (unsigned long long)now.size,
           (unsigned long long)now.audit_entries);
    CT_GUARD(http_call(w, "POST", "/log/cosignature", &mine, &answer));
cleanup:
    ct_buf_free(&fetched);
    ct_buf_free(&state);
    ct_buf_free(&mine);
    ct_buf_free(&answer);
    return rc;
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

ct_err ca_witness_run(const char *dir, const char *log_url, const char *vkey_path, long interval_ms)
{
    ct_err rc = CT_OK;
    witness w;
    char name[CT_NOTE_NAME_MAX];
    ct_buf vfile = CT_BUF_INIT;
    bool opened = false;
    static const char prefix[] = "http://";
    CT_ENSURE_MSG(log_url && strncmp(log_url, prefix, strlen(prefix)) == 0, CT_ERR_USAGE,
                  "--log takes the CA's plain HTTP address, http://HOST:PORT (a checkpoint proves itself)");
    CT_ENSURE_MSG(vkey_path, CT_ERR_USAGE, "--vkey (the CA's log.vkey) is required");
    CT_ENSURE_MSG(interval_ms >= 50 && interval_ms <= 86400000L, CT_ERR_USAGE, "--interval: 0.05 to 86400 seconds");
    CT_GUARD(witness_open(dir, true, &w, name, sizeof name));
    opened = true;
    const char *host = log_url + strlen(prefix);
    size_t hl = strcspn(host, "/");
    bool path_free = host[hl] == '\0' || (host[hl] == '/' && host[hl + 1] == '\0');
    CT_ENSURE_MSG(hl > 0 && hl < sizeof w.host && path_free, CT_ERR_USAGE, "--log: http://HOST:PORT, without a path");
    memcpy(w.host, host, hl);
    w.host[hl] = '\0';
    CT_GUARD(ct_file_read(vkey_path, CT_NOTE_VKEY_MAX + 2, &vfile));
    rc = ct_note_verifier_parse((const char *)vfile.data, vfile.len, &w.log);
    CT_ENSURE_MSG(rc == CT_OK, CT_ERR_CONFIG, "%s: %s", vkey_path, ct_err_detail());
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    ct_log(CT_LOG_INFO, "witness_start", "name=%s log=%s", CT_LOGQ(name), CT_LOGQ(w.log.name));
    while (!g_stop) {
        rc = witness_poll(&w);
        if (rc == CT_ERR_INTEGRITY) { /* never cosigned: whoever runs the witness must look */
            ct_log(CT_LOG_ERROR, "witness_refused", "log=%s reason=%s", CT_LOGQ(w.log.name), CT_LOGQ(ct_err_detail()));
            goto cleanup;
        }
        if (rc != CT_OK) /* the CA unreachable or busy: tried again at the next poll */
            ct_log(CT_LOG_WARN, "witness_poll", "error=%s", CT_LOGQ(*ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
        rc = CT_OK;
        struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
        while (!g_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
cleanup:
    if (opened) witness_close(&w);
    ct_buf_free(&vfile);
    return rc;
}
