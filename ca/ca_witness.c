/* camtrust-ca witness: an independent witness of a CA's issuance log (c2sp.org/tlog-cosignature). It runs elsewhere,
 * under another officer, with its own folder and its own token holding its Ed25519 key. It polls the CA's
 * GET /log/checkpoint (HTTPS with the server checked against the root pinned at init, or plain HTTP: a checkpoint
 * proves itself), checks the CA's signature with the pinned log.vkey, checks that the checkpoint extends the last
 * one it cosigned (common/http: same size, same root; larger, the RFC 9162 consistency proof), keeps it
 * (W/state.note, written atomically before anything is sent), cosigns it and POSTs the cosignature to
 * /log/cosignature. A checkpoint that does not extend the kept one (a rolled-back or forked log) is never
 * cosigned: the two signed checkpoints and the proof are kept as a report in W/evidence/, one line
 * "witness_refused" names it, the report is POSTed to /log/witness-report (it proves itself: both notes carry the
 * CA's signature) and the process ends with status 1, so that whoever runs it must look. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../common/http/http.h"
#include "ca_priv.h"

#define WITNESS_CONFIG_FILE "witness.conf"
#define WITNESS_VKEY_FILE "witness.vkey"
#define WITNESS_STATE_FILE "state.note"
#define WITNESS_ROOT_FILE "ca-root.pem" /* the CA server's root, pinned at init (HTTPS) */
#define WITNESS_EVIDENCE_DIR "evidence"
#define WITNESS_PIN_ENV "CAMTRUST_WITNESS_PIN"
#define WITNESS_KEY_LABEL "witness"
#define HTTP_TIMEOUT_MS 5000
#define ROOT_PEM_MAX (64 * 1024)
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
    ct_http_client *http;  /* to the CA */
    bool refusal_said;     /* witness_report said why (one line) */
} witness;

static void witness_close(witness *w)
{
    ct_http_client_free(w->http);
    w->http = NULL;
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

/* The root the CA server's certificate must chain to: one self-signed PEM certificate (the operations root). */
static ct_err root_check(const char *path, ct_buf *pem)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    CT_GUARD(ct_file_read(path, ROOT_PEM_MAX, pem));
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CERT_DER));
    rc = ct_pem_decode(pem->data, pem->len, "CERTIFICATE", 0, &der);
    CT_ENSURE_MSG(rc == CT_OK, CT_ERR_CONFIG, "--ca-root %s holds no PEM certificate", path);
    rc = pki_cert_verify_signed_by(der.data, der.len, der.data, der.len, time(NULL));
    CT_ENSURE_MSG(rc == CT_OK, CT_ERR_CONFIG, "--ca-root %s is not a valid self-signed root", path);
cleanup:
    ct_buf_free(&der);
    return rc;
}

ct_err ca_witness_init(const char *dir, const char *name, const char *ca_root, char *vkey, size_t vkey_max)
{
    ct_err rc = CT_OK;
    witness w = {0};
    ct_buf root = CT_BUF_INIT;
    char path[CA_PATH_MAX], line[CT_NOTE_VKEY_MAX + 2], got[CT_NOTE_NAME_MAX];
    CT_ENSURE_MSG(name && ct_note_name_valid(name, strlen(name)), CT_ERR_USAGE,
                  "--name '%.80s' is not a note key name (no spaces, no '+')", name ? name : "");
    CT_GUARD(ct_path_join(path, sizeof path, dir, WITNESS_CONFIG_FILE));
    CT_ENSURE_MSG(!ct_file_exists(path), CT_ERR_EXISTS, "%s exists: %s is a witness already", path, dir);
    if (ca_root) CT_GUARD(root_check(ca_root, &root)); /* before anything is made */
    CT_GUARD(ct_mkdir(dir, 0700));
    if (ca_root) {
        CT_GUARD(ct_path_join(path, sizeof path, dir, WITNESS_ROOT_FILE));
        CT_GUARD(ct_file_write_atomic(path, root.data, root.len, 0644));
        CT_GUARD(ct_path_join(path, sizeof path, dir, WITNESS_CONFIG_FILE));
    }
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
    ct_buf_free(&root);
    return rc;
}

/* The evidence of an inconsistent log: the report (both signed checkpoints and the proof given: the tree's, or when
 * the audit chain is what forked, the audit tree's, the report saying so) kept in
 * W/evidence/report-<its hash>.txt (the same finding, the same file), then POSTed to the CA, which records it
 * after checking it against its own key and database. */
static ct_err witness_report(witness *w, const ct_buf *state, const ct_buf *served, const ct_http_proof *proof)
{
    ct_err rc = CT_OK;
    ct_buf body = CT_BUF_INIT, answer = CT_BUF_INIT;
    ct_witness_report r = {.kept = state->data, .kept_len = state->len, .served = served->data,
                           .served_len = served->len, .proof_n = proof->given ? proof->n : 0,
                           .audit = proof->audit};
    char why[256] = "", dir[CA_PATH_MAX], name[64], path[CA_PATH_MAX], hex[17];
    uint8_t hash[32];
    CT_GUARD(ct_strlcpy(why, sizeof why, ct_err_detail())); /* the inconsistency, before anything else fails */
    memcpy(r.proof, proof->path, r.proof_n * sizeof r.proof[0]);
    CT_GUARD(ct_witness_report_format(&r, &body));
    CT_GUARD(ct_sha256(body.data, body.len, hash));
    CT_GUARD(ct_hex_encode(hash, 8, hex, sizeof hex));
    CT_GUARD(ct_path_join(dir, sizeof dir, w->dir, WITNESS_EVIDENCE_DIR));
    CT_GUARD(ct_mkdir(dir, 0700));
    CT_GUARD(ct_snprintf(name, sizeof name, "report-%s.txt", hex));
    CT_GUARD(ct_path_join(path, sizeof path, dir, name));
    CT_GUARD(ct_file_write_atomic(path, body.data, body.len, 0600));
    ct_log(CT_LOG_ERROR, "witness_refused", "log=%s reason=%s evidence=%s", CT_LOGQ(w->log.name), CT_LOGQ(why),
           CT_LOGQ(path));
    rc = ct_http_post_text(w->http, "/log/witness-report", &body, "the witness report", 4096, &answer);
    if (rc == CT_OK) {
        answer.data[strcspn((const char *)answer.data, "\r\n")] = '\0'; /* its first line */
        ct_log(CT_LOG_INFO, "witness_reported", "answer=%s", CT_LOGQ((const char *)answer.data));
    } else { /* kept: the officer can POST the file itself */
        ct_log(CT_LOG_ERROR, "witness_report_failed", "error=%s evidence=%s", CT_LOGQ(ct_err_detail()), CT_LOGQ(path));
    }
    rc = CT_OK;
cleanup:
    if (rc != CT_OK) /* the report could not even be kept: the reason still goes out */
        ct_log(CT_LOG_ERROR, "witness_refused", "log=%s reason=%s evidence=none error=%s", CT_LOGQ(w->log.name),
               CT_LOGQ(why), CT_LOGQ(ct_err_detail()));
    ct_buf_free(&body);
    ct_buf_free(&answer);
    return ct_fail(CT_ERR_INTEGRITY, "%s", why);
}

/* What POST /log/cosignature takes: the checkpoint's text, a blank line and this witness's own line, which ends
 * the kept note (the note as the CA served it, signature included, with the witness's line appended). */
static ct_err submission(const witness *w, const ct_buf *kept, size_t text_len, ct_buf *out)
{
    size_t start = kept->len > 0 ? kept->len - 1 : 0, tl = 0;
    uint64_t t = 0;
    while (start > text_len && kept->data[start - 1] != '\n') start--;
    CT_GUARD_RET(ct_buf_alloc(out, text_len + 1 + kept->len - start));
    CT_GUARD_RET(ct_buf_append(out, kept->data, text_len));
    CT_GUARD_RET(ct_buf_append(out, "\n", 1));
    CT_GUARD_RET(ct_buf_append(out, kept->data + start, kept->len - start));
    CT_ENSURE_RET(ct_cosig_open(out->data, out->len, &w->self, &tl, &t) == CT_OK,
                  ct_fail(CT_ERR_INTEGRITY, "%s/%s does not end in this witness's cosignature", w->dir, WITNESS_STATE_FILE));
    return CT_OK;
}

/* One poll: fetch, check, keep, cosign, submit. CT_ERR_INTEGRITY: the log contradicts what this witness cosigned. */
static ct_err witness_poll(witness *w)
{
    ct_err rc = CT_OK;
    ct_buf fetched = CT_BUF_INIT, state = CT_BUF_INIT, mine = CT_BUF_INIT, answer = CT_BUF_INIT, post = CT_BUF_INIT;
    char path[CA_PATH_MAX];
    ct_checkpoint now = {0}, kept = {0};
    size_t text_len = 0, kept_len = 0;
    uint64_t t = 0;
    ct_http_proof proof;
    CT_GUARD(ct_http_get(w->http, "/log/checkpoint", "the checkpoint", CT_NOTE_MAX, &fetched));
    rc = ct_checkpoint_open(fetched.data, fetched.len, &w->log, &now);
    if (rc != CT_OK) { /* (ct_fail_ctx: a detail formatted into the buffer it is read from comes out garbled) */
        rc = ct_fail_ctx(CT_ERR_INTEGRITY, "the served checkpoint is not the log's");
        goto cleanup;
    }
    CT_GUARD(ct_note_open(fetched.data, fetched.len, &w->log, &text_len));
    CT_GUARD(ct_path_join(path, sizeof path, w->dir, WITNESS_STATE_FILE));
    if (ct_file_exists(path)) {
        CT_GUARD(ct_file_read(path, CT_NOTE_MAX, &state));
        CT_GUARD(ct_cosig_open(state.data, state.len, &w->self, &kept_len, &t)); /* its own, unaltered */
        CT_GUARD(ct_checkpoint_parse(state.data, kept_len, &kept));
        if (kept_len == text_len && memcmp(state.data, fetched.data, text_len) == 0) {
            /* cosigned already: submitted again only when the CA does not serve it (a failed POST) */
            if (ct_cosig_open(fetched.data, fetched.len, &w->self, &kept_len, &t) == CT_OK) goto cleanup;
            CT_GUARD(submission(w, &state, text_len, &post));
            CT_GUARD(ct_http_post_text(w->http, "/log/cosignature", &post, "the cosignature", 4096, &answer));
            goto cleanup;
        }
        rc = ct_http_log_extends(w->http, path, &kept, &now, &proof);
        if (rc == CT_ERR_INTEGRITY) {
            w->refusal_said = true;
            rc = witness_report(w, &state, &fetched, &proof);
        }
        CT_GUARD(rc);
    }
    /* Kept with the CA's signature: the evidence, should the log later contradict it. */
    CT_GUARD(ct_buf_alloc(&mine, fetched.len + CT_COSIG_LINE_MAX));
    CT_GUARD(ct_buf_append(&mine, fetched.data, fetched.len));
    CT_GUARD(ct_cosig_sign(fetched.data, text_len, &w->self, (uint64_t)time(NULL), ca_note_sign_cb, w->key, &mine));
    CT_GUARD(ct_file_write_atomic(path, mine.data, mine.len, 0600)); /* kept before it leaves: never signed twice */
    CT_GUARD(submission(w, &mine, text_len, &post));
    ct_log(CT_LOG_INFO, "witness_cosigned", "size=%llu audit_entries=%llu", (unsigned long long)now.size,
           (unsigned long long)now.audit_entries);
    CT_GUARD(ct_http_post_text(w->http, "/log/cosignature", &post, "the cosignature", 4096, &answer));
cleanup:
    ct_buf_free(&post);
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
    char name[CT_NOTE_NAME_MAX], root[CA_PATH_MAX];
    bool opened = false;
    CT_ENSURE_MSG(log_url, CT_ERR_USAGE, "--log (the CA's address: https://HOST:PORT, or http://HOST:PORT) is required");
    CT_ENSURE_MSG(vkey_path, CT_ERR_USAGE, "--vkey (the CA's log.vkey) is required");
    CT_ENSURE_MSG(interval_ms >= 50 && interval_ms <= 86400000L, CT_ERR_USAGE, "--interval: 0.05 to 86400 seconds");
    CT_GUARD(witness_open(dir, true, &w, name, sizeof name));
    opened = true;
    /* What a killed witness left in its evidence folder (the witness folder itself: camtrust-ca's main). */
    CT_GUARD(ct_path_join(root, sizeof root, dir, WITNESS_EVIDENCE_DIR));
    CT_GUARD(ct_stale_remove(root, "", ".tmp."));
    CT_GUARD(ct_path_join(root, sizeof root, dir, WITNESS_ROOT_FILE));
    bool pinned = ct_file_exists(root);
    CT_ENSURE_MSG(pinned || strncasecmp(log_url, "https://", 8) != 0, CT_ERR_CONFIG,
                  "%s pins no root for the CA server: --log https:// needs witness init --ca-root (or --log http://)",
                  dir);
    /* Plain HTTP is allowed: what the witness acts on is signed by the CA's log key, pinned. */
    ct_http_config hc = {.url = log_url, .allow_plain = true, .trust_pem_path = pinned ? root : NULL,
                         .timeout_ms = HTTP_TIMEOUT_MS, .user_agent = "camtrust-witness"};
    CT_GUARD(ct_http_client_new(&hc, &w.http));
    rc = ct_note_verifier_load(vkey_path, &w.log);
    CT_ENSURE(rc == CT_OK, CT_ERR_CONFIG); /* its detail names the file */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    ct_log(CT_LOG_INFO, "witness_start", "name=%s log=%s", CT_LOGQ(name), CT_LOGQ(w.log.name));
    while (!g_stop) {
        rc = witness_poll(&w);
        if (rc == CT_ERR_INTEGRITY) { /* never cosigned: whoever runs the witness must look */
            if (!w.refusal_said)
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
    return rc;
}
