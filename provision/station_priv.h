/* Internal to provision/: the station's opened state and its EST client. */
#ifndef CAMTRUST_STATION_PRIV_H
#define CAMTRUST_STATION_PRIV_H

#include "../common/core/merkle.h"
#include "../common/note/note.h"
#include "../common/pki/pki.h"
#include "../hsm/hsm.h"
#include "station.h"

#define STATION_PATH_MAX 1024
#define STATION_NAME_MAX 64
/* CKA_ID of the station key: wolfSSL addresses token keys by id. */
#define STATION_KEY_ID {0x53, 0x54, 0x01}

/* An opened station folder: settings, the token logged in, the station key. */
typedef struct {
    char dir[STATION_PATH_MAX];
    char name[STATION_NAME_MAX];
    hsm_settings hsm_cfg;
    hsm *hsm;
    hsm_key *key;
    char root_crl[STATION_PATH_MAX]; /* ca.root_crl, absolute; "" for none */
} station;

/* Loads DIR/station.conf and opens the token and its key; `sessions` (0: the config's) sizes the pool. */
CT_MUST_CHECK ct_err station_open(const char *dir, unsigned sessions, station *st);
void station_close(station *st);

/* Sets the error detail to "<context>: <the current detail>" (or the error's message when there is none):
 * the one-line reasons the report carries name where a failure happened and why. */
ct_err station_fail_ctx(ct_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- EST client (RFC 7030) over mutual TLS with the station's token key ---- */
#define EST_MAX_HEADER 8192
#define EST_MAX_BODY (256 * 1024)

typedef struct est_client est_client;

typedef struct {
    const char *url;            /* "https://host[:port][/]" */
    const char *trust_pem_path; /* the only roots the CA server may chain to (ops-root.pem) */
    const char *chain_pem_path; /* the station's chain: leaf + issuing CA (station.pem) */
    int dev_id;                 /* hsm_wolf_dev_id of the station's token */
    const uint8_t *key_id;      /* CKA_ID of the station key */
    size_t key_id_len;
    int timeout_ms;             /* connect, and each read or write */
} est_config;

/* No connection yet: the first request opens one, later ones reuse it (keep-alive) and re-open it once when
 * it turns out closed. Errors: CT_ERR_IO "CA unreachable at URL: ..." when no connection can be made. */
CT_MUST_CHECK ct_err est_client_new(const est_config *cfg, est_client **out);
void est_client_free(est_client *c);

/* DER certificates read out of a certs-only PKCS#7, in the order sent. */
typedef struct {
    ct_buf der[PKI_MAX_PKCS7_CERTS];
    size_t n;
} est_certs;
void est_certs_free(est_certs *certs);

/* GET /.well-known/est/cacerts */
CT_MUST_CHECK ct_err est_cacerts(est_client *c, est_certs *out);
/* POST /.well-known/est/[label/]simpleenroll ("" or NULL label: the default profile); `leaf` gets the first
 * certificate of the answer. A refusal is the ct_err of its HTTP status, with the CA's one-line reason. */
CT_MUST_CHECK ct_err est_simpleenroll(est_client *c, const char *label, const uint8_t *csr, size_t csr_len,
                                      ct_buf *leaf);
/* DIR's operations root and chain (as install wrote them), CT_ERR_CONFIG when DIR is not installed. */
CT_MUST_CHECK ct_err station_installed(const char *dir, char trust[STATION_PATH_MAX], char chain[STATION_PATH_MAX]);
/* The EST client settings of an opened station: its token key, the given trust and chain files. */
est_config station_est_config(const station *st, const char *url, const char *trust, const char *chain, int timeout_ms);

/* GET `path` (from the server's root, query included): the body of a 200 answer (at most `max` bytes) into
 * `body` (allocated, one spare byte); any other status is refused with the CA's reason, `what` naming it. */
CT_MUST_CHECK ct_err est_get(est_client *c, const char *path, const char *what, size_t max, ct_buf *body);

/* ---- witnessing the CA's issuance log (station_log.c) ---- */
#define STATION_LOG_VKEY "log.vkey"                /* the CA's pinned checkpoint verifier key */
#define STATION_LOG_KEPT "log/checkpoint.note"     /* the newest checkpoint this station verified */

/* Fetches the CA's checkpoint, verifies it with DIR/log.vkey and checks it is consistent with the one kept (same
 * size: same root; larger: a consistency proof from the CA between the two roots; smaller: the log shrank),
 * then keeps it (atomically). CT_ERR_INTEGRITY: the CA's log shrank, forked or its checkpoint does not verify,
 * the kept one is left as it was; CT_ERR_NOT_FOUND: the station pins no log key (witnesses nothing). `summary`
 * gets a one-line account of what was kept. */
/* The pinned key (CT_ERR_NOT_FOUND: none). */
CT_MUST_CHECK ct_err station_log_vkey(const char *dir, ct_note_verifier *v);
/* The base64 hashes of the JSON array `name` (RFC 9162 paths as the CA answers them), at most
 * CT_MERKLE_MAX_PATH, each 32 bytes; `body` must have one spare byte (est_get's do). */
CT_MUST_CHECK ct_err station_json_hashes(ct_buf *body, const char *name, ct_merkle_hash out[CT_MERKLE_MAX_PATH],
                                         size_t *n);
CT_MUST_CHECK ct_err station_log_witness(const char *dir, est_client *c, char *summary, size_t summary_max);

#endif
