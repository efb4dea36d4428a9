/* station: the factory station (`camtrust-station`). It holds its own key in its own token, talks to the CA
 * only over mutual-TLS EST with that key, and drives cameras in factory mode through the factory-line
 * exchange (common/factory/factory.h). Each command is one function here; main.c only parses arguments. */
#ifndef CAMTRUST_STATION_H
#define CAMTRUST_STATION_H

#include <stdio.h>

#include "../common/core/core.h"

#define STATION_CONFIG_FILE "station.conf"
#define STATION_PIN_ENV "CAMTRUST_STATION_PIN"
#define STATION_KEY_LABEL "station"
#define STATION_DEFAULT_JOBS 4
/* Each job holds one connection to the CA: at most what a CA lets one address hold by default
 * (server.per_ip_connections, 32), so that no job is turned away by a CA left as it was made. */
#define STATION_MAX_JOBS 32
#define STATION_MAX_DEVICES 100000
#define STATION_WITNESSES_FILE "witnesses.vkeys"

/* Makes DIR (station.conf with every setting, a SoftHSM token of its own with random PINs in 0600 files, the
 * P-256 key "station" that never leaves the token) and DIR/station.csr (PEM, CN=name) for
 * `camtrust-ca station add`. Refuses a DIR that already holds a station key. */
CT_MUST_CHECK ct_err station_init(const char *dir, const char *name);

/* What an install leaves configured: K cosignatures required of `configured` witness keys. */
typedef struct {
    size_t required, configured;
} station_quorum;

/* The witnesses whose cosignatures the station counts: the keys in the files `vkey_paths` (each a witness.vkey, or a
 * list of them one a line; n = 0 keeps those configured) written to log.witnesses (a file of the station folder),
 * and `k` (-1: unchanged) to log.witnesses_required in DIR/station.conf. `installed` (or NULL): set to what is
 * configured then, for the caller to say whether K is above half (station_quorum_splittable). */
typedef struct {
    const char *const *vkey_paths;
    size_t n;
    long k;
    station_quorum *installed;
} station_witnesses;

/* True when two forks of the log could each gather K cosignatures from disjoint witnesses (K > 0 and 2K <= N): an
 * honest witness cosigns one of them at most, so only K above half keeps a split view from being witnessed. */
bool station_quorum_splittable(const station_quorum *q);

/* Completes DIR with the chain `camtrust-ca station add` wrote (leaf + operations issuing CA) and the
 * operations root: refuses a certificate for another key than the token's, or one that does not chain to the
 * given root. Writes DIR/station.pem and DIR/ops-root.pem; with `log_vkey_path` (the CA's log.vkey, or NULL) it
 * pins the CA's checkpoint verifier key in DIR/log.vkey (refusing another key than one pinned before); with
 * `witnesses` (or NULL) it configures them as station_install_witnesses does. All of it at once or none (a kill
 * included). */
CT_MUST_CHECK ct_err station_install(const char *dir, const char *cert_path, const char *ca_root_path,
                                     const char *log_vkey_path, const station_witnesses *witnesses);

/* Configures the witnesses alone, list and K at once or not at all. Refuses k above the witnesses configured, k > 0
 * without a pinned log key, a malformed key or a name twice, before writing anything. */
CT_MUST_CHECK ct_err station_install_witnesses(const char *dir, const station_witnesses *witnesses);

/* `camtrust-station log check`: fetches the CA's checkpoint over mutual TLS, verifies it with the pinned key and
 * checks that the CA's log extends the checkpoint kept in DIR/log/checkpoint.note, then keeps the new one.
 * CT_ERR_INTEGRITY (kept one untouched) when the log shrank, forked, or the checkpoint does not verify;
 * CT_ERR_NOT_FOUND when the station pins no log key. `summary`: one line on success. */
CT_MUST_CHECK ct_err station_log_check(const char *dir, const char *ca_url, int timeout_ms, char *summary,
                                       size_t summary_max);

/* `camtrust-station log show`: the checkpoint kept in DIR/log/checkpoint.note (verified with the pinned key), as
 * kept (with the cosignatures it was served with), for another station or an officer to compare with. */
CT_MUST_CHECK ct_err station_log_show(const char *dir, ct_buf *note);
/* `camtrust-station log compare`: whether the checkpoint kept in DIR and the one in `other_path` (another station's
 * `log show`, a witness's state.note, an officer's copy: verified with the pinned key) are one history: same size,
 * same root; else the CA's RFC 9162 consistency proof from the smaller to the larger (asked of ca_url, needed only
 * then); and the audit chains they bind never disagree. CT_ERR_INTEGRITY "the CA's log forked: A (size N) and B
 * (size M) ..." naming both when they are not. `summary`: one line when they are. */
CT_MUST_CHECK ct_err station_log_compare(const char *dir, const char *other_path, const char *ca_url, int timeout_ms,
                                         char *summary, size_t summary_max);

typedef struct {
    const char *dir;
    const char *ca_url;                /* https://host:port of camtrust-ca serve */
    const char *const *devices;        /* "host:port" of cameras in factory mode */
    size_t n_devices;
    const char *devices_file;          /* or NULL: one address per line, '#' comments */
    const char *report_path;           /* NULL: DIR/report.jsonl (appended) */
    unsigned jobs;                     /* cameras driven at once; 0: STATION_DEFAULT_JOBS */
    int timeout_ms;                    /* per camera message / CA request; 0: FACTORY_DEFAULT_TIMEOUT_MS */
    FILE *progress;                    /* NULL: stderr (a bar when it is a terminal, else one line per camera) */
} station_provision_opts;

typedef struct {
    size_t total, provisioned, already, failed;
    double seconds;
} station_summary;

/* Provisions every camera once; a camera already provisioned is reported and left alone, so that running it
 * again finishes only the unfinished ones. Returns CT_OK when every camera was driven (each one's outcome is
 * in the summary and the report); an error only when nothing could be tried (bad options, station not
 * installed, report not writable). */
CT_MUST_CHECK ct_err station_provision(const station_provision_opts *o, station_summary *sum);

/* "20 cameras: 18 provisioned, 2 already provisioned, 0 failed in 4.2 s" */
CT_MUST_CHECK ct_err station_summary_text(const station_summary *s, char *out, size_t out_max);

#endif
