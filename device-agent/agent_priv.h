/* camtrust-agent internals shared by its source files. */
#ifndef CAMTRUST_AGENT_PRIV_H
#define CAMTRUST_AGENT_PRIV_H

#include <signal.h>

#include "../common/pki/pki.h"
#include "../hsm/hsm.h"
#include "agent.h"

#define AGENT_PATH_MAX 1024
#define AGENT_PIN_ENV "CAMTRUST_DEVICE_PIN"
#define AGENT_IDENTITY_FILE "identity"
#define AGENT_CONFIG_FILE "agent.conf"
#define AGENT_ROOT_FILE "root.pem"
#define AGENT_OPS_ROOT_FILE "ops-root.pem" /* pinned operations root: viewer certificates chain to it */
#define AGENT_CRL_SEEN_FILE "crl.seen"     /* the newest thisUpdate taken per viewers' CRL issuer (key) */
#define AGENT_CREDS_FILE "credentials.pem" /* its existence is the factory lock */
#define AGENT_CHAIN_MAX 4                  /* leaf, issuing CA, at most two more */
#define AGENT_CREDS_MAX (128 * 1024)
#define AGENT_LOG_VKEY_FILE "log.vkey" /* pinned checkpoint key of the CA's log: identities must be logged */

/* A camera holds one key per profile; the profile names are those of the factory protocol. */
typedef enum { AGENT_PROFILE_DEVICE, AGENT_PROFILE_MEDIA, AGENT_PROFILE__COUNT } agent_profile;
extern const char *const agent_profile_name[AGENT_PROFILE__COUNT];
extern const char *const agent_key_label[AGENT_PROFILE__COUNT];

struct agent {
    char dir[AGENT_PATH_MAX];
    char serial[AGENT_NAME_MAX];
    char model[AGENT_NAME_MAX];
    char mac[AGENT_NAME_MAX];
    hsm_settings hs;
    long factory_timeout_ms;
    long serve_timeout_ms;
    ct_buf root_der; /* the pinned device root */
    hsm *h;
};

/* One certificate chain per profile, leaf first. */
typedef struct {
    size_t n;
    ct_buf der[AGENT_CHAIN_MAX];
} agent_chain;
typedef struct {
    agent_chain chain[AGENT_PROFILE__COUNT];
    ct_buf checkpoint;                    /* the signed note the proofs lead to (empty: none) */
    ct_buf proof[AGENT_PROFILE__COUNT];   /* each leaf's: uint64 BE index || audit path */
} agent_creds;

/* agent_state.c */
CT_MUST_CHECK ct_err agent_path(const agent *a, const char *name, char *out, size_t max);
CT_MUST_CHECK ct_err agent_profile_parse(const uint8_t *name, size_t len, agent_profile *out);
bool agent_locked(const agent *a);
/* A root certificate to pin (PEM): self-signed CA valid now. */
CT_MUST_CHECK ct_err agent_root_load(const char *path, ct_buf *der);

/* agent_keys.c: the CKA_ID of a profile's key (wolfSSL's TLS finds the identity key by it); the profile's key; created in the token (never extractable) when `create` and absent. */
#define AGENT_KEY_ID_LEN 2
void agent_key_id(agent_profile p, uint8_t id[AGENT_KEY_ID_LEN]);
CT_MUST_CHECK ct_err agent_key_get(agent *a, agent_profile p, bool create, hsm_key **out);
/* A CSR for the profile's key, with `challenge` as its challengePassword (NULL: none); the key is made first when
 * absent only with `create`. */
CT_MUST_CHECK ct_err agent_csr(agent *a, agent_profile p, bool create, const char *challenge, ct_buf *der);

/* agent_install.c */
void agent_creds_free(agent_creds *c);
CT_MUST_CHECK ct_err agent_creds_from_msg(const factory_msg *m, agent_creds *c);
CT_MUST_CHECK ct_err agent_creds_load(const agent *a, agent_creds *c);
/* Every chain to the pinned root at `now`, leaf keys in the token, leaf serial the device's. On success
 * `device_leaf` describes the TLS identity. */
CT_MUST_CHECK ct_err agent_creds_verify(agent *a, const agent_creds *c, time_t now, pki_cert_info *device_leaf);
/* agent_log.c: with a pinned log key, every leaf must be proven in the log by the checkpoint (CT_ERR_INTEGRITY
 * with the reason otherwise); without one, nothing is checked. */
CT_MUST_CHECK ct_err agent_log_verify(const agent *a, const agent_creds *c);
/* The TLS identity chain as PEM, for wolfSSL. */
CT_MUST_CHECK ct_err agent_chain_pem(const agent_chain *ch, ct_buf *pem);

/* agent_record.c: the ONVIF signer's configuration for the media-signing key (provisioned cameras only); `c`,
 * `pem` and `k` hold what `cfg` points to (free them after the signer). */
CT_MUST_CHECK ct_err agent_media_signer_config(agent *a, agent_creds *c, ct_buf *pem, hsm_key **k,
                                               ms_signer_config *cfg);

/* The recorder's signing hooks (cenc_sign_hooks) on the media-signing key; `start` (0: now) is the capture
 * time of the first picture; `live`: the certificate SEI again at each segment, and each GOP stamped with the
 * clock when it reaches the signer (`start` unused). Close it after the writer. */
typedef struct {
    agent_creds c;
    ct_buf pem;
    hsm_key *k;
    ms_signer_config cfg;
    ms_signer *s;
    time_t start;
    cenc_sign_hooks hooks;
} agent_rec_signer;
CT_MUST_CHECK ct_err agent_rec_signer_open(agent *a, time_t start, bool live, agent_rec_signer *rs);
void agent_rec_signer_close(agent_rec_signer *rs);
/* The viewer certificates of `viewers` that chain to the operations root pinned in `dir` (cenc_recipients_load,
 * with the memory of its CRLs in `dir`). */
CT_MUST_CHECK ct_err agent_viewers_load(const char *dir, const char *viewers, cenc_recipient *r, size_t max,
                                        size_t *n);

/* agent_loop.c: SIGTERM/SIGINT end the accept loops; "listening on" announced once bound. */
CT_MUST_CHECK ct_err agent_listen(const char *where, int *fd);
void agent_signals_install(void);
bool agent_stopping(void);
void agent_stop_request(void); /* as a stop signal would */
/* Waits for a connection for at most ~0.5 s; *conn is -1 when none came (check agent_stopping). With `key`, the
 * client's address as a limit key, keyed as the CA keys its limits: IPv4 (also v4-mapped) as ::ffff:a.b.c.d, IPv6
 * by its /64 (what one client is given), the rest zero. */
#define AGENT_ADDR_KEY_LEN 16
CT_MUST_CHECK ct_err agent_accept(int lfd, int *conn, uint8_t key[AGENT_ADDR_KEY_LEN]);

/* agent_serve.c: the HTTPS server (workers on the listening socket until agent_stopping); with `live_dir` it
 * also serves /live/index.m3u8, /live/init.mp4 and /live/seg-N.m4s from that folder. */
#define AGENT_SERVE_WORKERS 8 /* connections served at once; more wait in the listen backlog */
/* Of them, what one client address (IPv6: its /64) may hold: one client cannot take every worker. More from it are
 * closed at once. */
#define AGENT_SERVE_PER_ADDRESS 4
typedef struct agent_server agent_server;
CT_MUST_CHECK ct_err agent_server_start(agent *a, const char *listen, const char *live_dir, agent_server **out);
void agent_server_stop(agent_server *s); /* waits for the workers: call after the stop signal */
/* CT_ERR_FORBIDDEN unless provisioned (the identity verifies now). */
CT_MUST_CHECK ct_err agent_serving_check(agent *a, agent_status *st);

#endif
