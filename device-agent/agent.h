/* camtrust-agent: the camera side. A device is a state folder (identity, agent.conf, its own token, the pinned
 * device root, the installed credentials); each command below is one function so that tests call them. */
#ifndef CAMTRUST_AGENT_H
#define CAMTRUST_AGENT_H

#include <time.h>

#include "../common/core/core.h"
#include "../common/factory/factory.h"
#include "../common/cenc/cenc.h"
#include "../common/mediasign/mediasign.h"

#define AGENT_NAME_MAX 64
#define AGENT_REASON_MAX 256

typedef struct agent agent; /* an opened device folder: identity, settings, token */

typedef enum { AGENT_UNPROVISIONED, AGENT_PROVISIONED, AGENT_BROKEN } agent_state;

typedef struct {
    agent_state state;
    char serial[AGENT_NAME_MAX];
    char model[AGENT_NAME_MAX];
    char mac[AGENT_NAME_MAX];
    char identity_cn[AGENT_NAME_MAX]; /* subject CN of the installed TLS identity (provisioned) */
    time_t not_after;                 /* of that certificate */
    char reason[AGENT_REASON_MAX];    /* why it is broken */
    bool log_checked;                 /* provisioned and proven in the CA's log (a log key is pinned) */
} agent_status;

const char *agent_state_name(agent_state s);

/* Makes a simulated camera folder: identity (mac NULL: derived from the serial), agent.conf, its own SoftHSM
 * token with a random PIN, the pinned root copied from `root_pem_path`. CT_ERR_EXISTS if `dir` is a device. */
CT_MUST_CHECK ct_err agent_simulate(const char *dir, const char *serial, const char *model, const char *mac,
                                    const char *root_pem_path);

CT_MUST_CHECK ct_err agent_open(const char *dir, agent **out);
void agent_close(agent *a);

/* The device state: unprovisioned (nothing installed), provisioned (the credentials verify now: chains to the
 * pinned root, token keys match, serial matches, not expired) or broken with a reason. Fails only when the
 * state cannot be determined (out of memory). */
CT_MUST_CHECK ct_err agent_status_get(agent *a, agent_status *st);
/* One line: "provisioned serial=.. model=.. identity=\"..\" notAfter=..", "unprovisioned", "broken: why". */
CT_MUST_CHECK ct_err agent_status_line(const agent_status *st, char *out, size_t max);

/* What firmware runs at boot: CT_OK only if provisioned and verified; `st` is filled in any case. */
CT_MUST_CHECK ct_err agent_boot(const char *dir, agent_status *st);

/* Factory mode: answers one station message (HELLO, GET_CSRS, INSTALL) with `resp` (initialised here); a
 * provisioned camera adds its installed leaf certificates to IDENTITY and answers GET_CSRS for its installed keys
 * (it makes none) so that a station can confirm them with the CA; INSTALL is refused once locked.
 * `*close_after` when the connection should end (after ERROR). Fails only if no answer could be built. */
CT_MUST_CHECK ct_err agent_factory_handle(agent *a, const factory_msg *req, factory_msg *resp, bool *close_after);

/* Verifies the chains of an INSTALL message and installs them atomically, which locks the device.
 * Any refusal leaves nothing written and the keys in place. */
CT_MUST_CHECK ct_err agent_install(agent *a, const factory_msg *install);

/* Factory mode's accept loop on `listen` ("127.0.0.1:0" for any port); prints "listening on HOST:PORT"
 * on stdout first. Starts on a locked device too (see agent_factory_handle). Returns on SIGTERM/SIGINT. */
CT_MUST_CHECK ct_err agent_factory_serve(const char *dir, const char *listen);

/* The camera's HTTPS server (TLS 1.3, identity key in the token); refuses unless provisioned. */
CT_MUST_CHECK ct_err agent_serve(const char *dir, const char *listen);

/* Signs a recording (H.264/H.265, Annex B or MP4; OUT in the same container) in the ONVIF Media Signing format
 * with the media-signing key inside the token; refuses unless provisioned. st->start (Unix, 0: now) is the
 * capture time of the first picture, st->fps (0: 30) paces Annex B input; sizes and GOPs come back in `st`. */
CT_MUST_CHECK ct_err agent_sign(const char *dir, const char *in, const char *out, ms_sign_stats *st);

/* Encrypted recording (issue 6): pins the operations root that viewer certificates must chain to (simulate
 * --ops-root), then records IN (H.264/H.265, Annex B or MP4) into a Common Encryption fragmented MP4 whose
 * content keys (one per segment) are wrapped for every viewer certificate (*.pem) in `viewers`. */
typedef struct {
    cenc_scheme scheme;  /* CENC_CBCS or CENC_CTR */
    uint32_t segment_ms; /* segment length and key rotation period; 0: one segment, one key */
    bool cmaf;           /* `out` is a folder of live CMAF segments and their playlist (cenc_record_segments) */
    unsigned fps;        /* Annex B pacing; 0: 30 */
    bool sign;           /* also sign (ONVIF Media Signing) the stored, encrypted bytes; needs a provisioned camera */
    time_t start;        /* signing: capture time of the first picture (Unix); 0: now */
} agent_record_opts;
CT_MUST_CHECK ct_err agent_pin_ops_root(const char *dir, const char *ops_root_pem);
/* Pins the CA's checkpoint verifier key (simulate --log-vkey, the CA's log.vkey): from then on the camera installs
 * and boots only identities proven in the CA's log (an inclusion proof per certificate and the signed checkpoint
 * it leads to, checked offline). A camera without one boots as before. */
CT_MUST_CHECK ct_err agent_pin_log_vkey(const char *dir, const char *vkey_path);
CT_MUST_CHECK ct_err agent_record(const char *dir, const char *viewers, const char *in, const char *out,
                                  const agent_record_opts *o, cenc_stats *st);

/* Live protected video (issue 14): reads the encoder's H.264/H.265 Annex B output from `in` (NULL: standard
 * input; a FIFO works) and keeps writing signed, encrypted CMAF segments and a live playlist into `live_dir`
 * (cenc_live), while serving them over HTTPS with the identity key (GET /live/index.m3u8, /live/init.mp4,
 * /live/seg-N.m4s, and the page of `serve`). The viewers folder is re-read when it changes: from the next GOP on,
 * only its viewers get the key. Refuses unless provisioned. When the input ends the playlist is closed and
 * `on_end` (may be NULL) is called; it serves on until SIGTERM/SIGINT (which also ends a running input). */
typedef struct {
    const char *viewers, *listen, *live_dir, *in;
    cenc_scheme scheme;
    uint32_t segment_ms;
    unsigned window, fps;
    bool sign;
    const char *record_dir; /* NULL: no recording */
    uint64_t record_max_bytes;
    uint32_t record_max_age_s;
    void (*on_end)(void *arg, const cenc_stats *st);
    void *on_end_arg;
} agent_stream_opts;
CT_MUST_CHECK ct_err agent_stream(const char *dir, const agent_stream_opts *o, cenc_stats *st);

/* Factory reset: destroys both keys in the token, then removes the credentials (unlocks). */
CT_MUST_CHECK ct_err agent_reset(const char *dir);

#endif
