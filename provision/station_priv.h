/* Internal to provision/: the station's opened state and its EST client. */
#ifndef CAMTRUST_STATION_PRIV_H
#define CAMTRUST_STATION_PRIV_H

#include "../common/core/merkle.h"
#include "../common/http/http.h"
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
    char witnesses_path[STATION_PATH_MAX]; /* log.witnesses */
    size_t witnesses_required;             /* log.witnesses_required */
    hsm_settings hsm_cfg;
    hsm *hsm;
    hsm_key *key;
    char root_crl[STATION_PATH_MAX]; /* ca.root_crl, absolute; "" for none */
    bool root_crl_none;              /* ca.root_crl = none: the operator chose to check no root CRL */
} station;
#define STATION_ROOT_CRL_NONE "none"

/* Loads DIR/station.conf into `st` (settings only: no token opened). */
CT_MUST_CHECK ct_err station_settings_load(const char *dir, station *st);
/* Loads DIR/station.conf and opens the token and its key; `sessions` (0: the config's) sizes the pool. */
CT_MUST_CHECK ct_err station_open(const char *dir, unsigned sessions, station *st);
void station_close(station *st);


/* ---- EST (RFC 7030) over common/http's client: mutual TLS with the station's token key ---- */

/* DER certificates read out of a certs-only PKCS#7, in the order sent. */
typedef struct {
    ct_buf der[PKI_MAX_PKCS7_CERTS];
    size_t n;
} est_certs;
void est_certs_free(est_certs *certs);

/* GET /.well-known/est/cacerts */
CT_MUST_CHECK ct_err est_cacerts(ct_http_client *c, est_certs *out);
/* POST /.well-known/est/[label/]simpleenroll ("" or NULL label: the default profile); `leaf` gets the first
 * certificate of the answer. A refusal is the ct_err of its HTTP status, with the CA's one-line reason. */
CT_MUST_CHECK ct_err est_simpleenroll(ct_http_client *c, const char *label, const uint8_t *csr, size_t csr_len,
                                      ct_buf *leaf);
/* DIR's operations root and chain (as install wrote them), CT_ERR_CONFIG when DIR is not installed. */
CT_MUST_CHECK ct_err station_installed(const char *dir, char trust[STATION_PATH_MAX], char chain[STATION_PATH_MAX]);
/* The HTTPS client settings of an opened station: its token key, the given trust and chain files. */
ct_http_config station_est_config(const station *st, const char *url, const char *trust, const char *chain, int timeout_ms);

/* ---- witnessing the CA's issuance log (station_log.c) ---- */
#define STATION_LOG_VKEY "log.vkey"                /* the CA's pinned checkpoint verifier key */
#define STATION_LOG_KEPT "log/checkpoint.note"     /* the newest checkpoint this station verified */
#define STATION_ROOT_CRL_KEPT "log/root-"         /* + SPKI SHA-256 hex + ".crl": the newest CRL (ca.root_crl) of
                                                      * that key this station took */
#define STATION_ROOT_CRL_LEGACY "log/root.crl"     /* one for every key, kept by stations before */

/* DIR/log locked (flock) against the station's other runs, from reading what it keeps there to replacing it, and
 * the temporaries killed runs left there removed; *fd (-1 when not opened) to close, which unlocks. */
CT_MUST_CHECK ct_err station_state_lock(const char *dir, int *fd);

/* The pinned key (CT_ERR_NOT_FOUND: none). */
CT_MUST_CHECK ct_err station_log_vkey(const char *dir, ct_note_verifier *v);
/* The checkpoint kept in DIR/log, verified with `v` (its path in `path`); *have false when none is kept yet. */
CT_MUST_CHECK ct_err station_log_kept(const char *dir, const ct_note_verifier *v, char path[STATION_PATH_MAX],
                                      ct_checkpoint *kept, bool *have);
/* Fetches the CA's checkpoint, verifies it with DIR/log.vkey and checks it is consistent with the one kept (same
 * size: same root; larger: a consistency proof from the CA between the two roots; smaller: the log shrank); when
 * the station requires k witnesses (log.witnesses_required), that it carries k valid cosignatures of those in
 * log.witnesses, asking again for up to wait_ms while they are missing. Then keeps it (atomically).
 * CT_ERR_INTEGRITY: the CA's log shrank, forked or its checkpoint does not verify; CT_ERR_FORBIDDEN: not
 * witnessed by k ("not witnessed: the CA's checkpoint of size N has 1 of the 2 cosignatures required (...;
 * missing: NAME)"); the kept one is left as it was either way. CT_ERR_NOT_FOUND: the station pins no log key
 * (witnesses nothing). `summary` gets a one-line account of what was kept. */
CT_MUST_CHECK ct_err station_log_witness(const station *st, ct_http_client *c, int wait_ms, char *summary,
                                         size_t summary_max);
/* The checkpoint a camera is handed with its proofs (`note`, opened as `cp` with the pinned key `v`) joins the
 * station's history: under the lock, newer than the kept one it must extend it and is kept; older, the kept one
 * must extend it. Else a CA could show that camera's leaves in a tree grown aside and go back to the log everyone
 * watches unseen. CT_ERR_INTEGRITY: the two are not one log (nothing kept). */
CT_MUST_CHECK ct_err station_log_keep(const char *dir, const ct_note_verifier *v, ct_http_client *c, const ct_buf *note,
                                      const ct_checkpoint *cp);

#endif
