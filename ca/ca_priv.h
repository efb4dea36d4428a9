/* Internal to ca/: the CA's state and the pieces its files share. */
#ifndef CAMTRUST_CA_PRIV_H
#define CAMTRUST_CA_PRIV_H

#include <time.h>

#include "../common/note/note.h"
#include "../common/pki/pki.h"
#include "../hsm/hsm.h"
#include "ca.h"

#define CA_MAX_BODY_DEFAULT 16384
#define CA_SERVER_ACTOR "ca-server" /* the serving CA's own entries (a CRL it makes, a log head it signs) */
#define CA_PATH_MAX 1024

/* A CA key in the token with the certificate that certifies it. */
typedef struct {
    hsm_key *key;
    ct_buf cert_der;
    pki_issuer *issuer; /* the current issuing CAs only: key and certificate made ready once to issue with */
} ca_signer;

/* Settings read from the config file, with every default filled in. */
typedef struct {
    char dir[CA_PATH_MAX];
    hsm_settings hsm;
    char db_path[CA_PATH_MAX];
    char db_backend[16];                 /* "sqlite" or "postgresql" */
    char db_url[1024];                   /* PostgreSQL's libpq connection string */
    char db_password_file[CA_PATH_MAX];  /* "" for none */
    char organization[PKI_NAME_MAX];
    char device_domain[128];
    char listen[64];
    char http_listen[64];   /* plain HTTP for /crl and /ocsp only; "" for none */
    char crl_url[256];      /* written into device certificates; "" for none */
    char ocsp_url[256];
    char server_names[256]; /* comma-separated DNS names for the CA's TLS certificate */
    char server_ips[128];   /* comma-separated IPv4 addresses */
    char key_uri[7][256];   /* indexed by ca_key_role (CA_KEY__COUNT, checked below) */
    char curve[8];          /* "P-256" or "P-384", for init */
    long threads;
    long max_body;
    long per_ip_connections; /* connections one client address may hold */
    long per_ip_connects_per_second; /* new HTTPS connections one client address may open a second (0: no bound) */
    long per_ip_connects_burst;      /* ... as many at once */
    long max_connections;    /* per daemon, within the process's descriptor limit */
    long reserved_connections; /* of them, kept for stations and officers (at most half) */
    long idle_timeout;       /* seconds without traffic (a handshake included) before a connection is closed */
    long request_timeout;    /* seconds a request may take to arrive whole, from the connection or the last answer */
    long drain_seconds;      /* at SIGTERM, how long requests under way may take to finish */
    long device_days;       /* 0: notAfter 99991231235959Z */
    long root_days;
    long issuing_days;
    long server_days;
    long station_days;
    long ocsp_signer_days;
    long crl_hours;         /* CRL nextUpdate - thisUpdate */
    long ocsp_hours;        /* OCSP nextUpdate - thisUpdate */
    long ocsp_cache;        /* pre-signed OCSP responses kept in memory */
    long ocsp_signatures_per_minute; /* OCSP answers signed for one request alone, per client address (its key) */
    long log_sth_delay_ms;  /* a tree head this long after a burst of issuances */
    long log_fork_recheck_s; /* a forked tree (or rows changing under its build), refused, is built again from the
                              * rows in full this often */
    long witness_max_age_s; /* the console flags a witness whose newest cosignature is older */
    long witnesses_required; /* the console flags a newest checkpoint with fewer configured witnesses' cosignatures */
    long anonymous_interval_s; /* anonymous refusals are written as counts, one row per key per interval */
    long anonymous_max_rows;   /* keys kept per interval; further refusals go to one overflow row */
    long officer_requests_per_minute; /* officer API requests per officer (each read writes an audit row) */
    long station_refusals_per_minute; /* a station's refusals audited one by one; past it counted */
    long device_refusals_per_minute;  /* the same for a camera's re-enrollments, per certificate */
    char log_origin[CT_NOTE_NAME_MAX]; /* checkpoints' origin line and key name (computed when configured empty) */
    char note_key_uri[256];            /* the Ed25519 checkpoint key (key.log_note) */
    char witnesses_path[CA_PATH_MAX];  /* log.witnesses: the witnesses' verifier keys, one a line */
    char audit_mac_uri[256];   /* the audit chain's HMAC key (a secret key, not a signer) */
    char node_id[64];          /* node.id: this node's name among those serving one database ("": node:HOST:PID) */
    long lease_ms;             /* node.lease_ms: the signer lease's length (ca_lease.c) */
} ca_settings;

/* The audit chain's key: generated under this label when key.audit_mac is the default and the token has none. */
#define CA_AUDIT_MAC_LABEL "audit-mac"
#define CA_AUDIT_MAC_DEFAULT_URI "pkcs11:object=" CA_AUDIT_MAC_LABEL ";type=secret-key"

/* CA_KEY_OCSP, the delegated OCSP responder (certified by the device issuing CA), is the only optional one:
 * CA folders made before revocation support have none, and their device issuing CA answers OCSP itself. */
typedef enum {
    CA_KEY_DEVICE_ROOT,
    CA_KEY_DEVICE_ISSUING,
    CA_KEY_OPS_ROOT,
    CA_KEY_OPS_ISSUING,
    CA_KEY_TLS,
    CA_KEY_OCSP,
    CA_KEY_LOG, /* the issuance log's tree heads (certified by the operations issuing CA); optional like OCSP */
    CA_KEY__COUNT
} ca_key_role;
_Static_assert(sizeof ((ca_settings *)0)->key_uri / sizeof ((ca_settings *)0)->key_uri[0] == CA_KEY__COUNT,
               "one key URI per CA key");

/* A generation of an issuing CA (db_issuing_ca): its key in the token, its certificate from the ceremony, and
 * what names it in OCSP CertIDs. The newest of a kind signs; every one answers for what it signed. */
typedef struct {
    int64_t id;
    ca_crl_kind kind;
    int64_t generation;
    ca_signer s;
    pki_cert_ids ids;
} ca_generation;
#define CA_GENERATIONS_MAX 32

typedef struct ca_revocation ca_revocation;
typedef struct ca_log ca_log;
typedef struct ca_proofs ca_proofs;
typedef struct ca_refusals ca_refusals;
typedef struct ca_tiles ca_tiles;
typedef struct ca_lease ca_lease;

struct ca {
    ca_settings cfg;
    hsm *hsm;
    ct_db *db;
    ca_signer signers[CA_KEY__COUNT]; /* signers[CA_KEY_OCSP].key is NULL when the folder has none */
    ca_revocation *rev;               /* the in-memory CRL and OCSP responses, while serving (ca_ocsp.c) */
    ca_log *log;                      /* the tree head signer, while serving (ca_log.c) */
    ca_proofs *proofs;                /* the issuance log's kept chunk roots, for proofs (ca_log.c) */
    ca_refusals *refusals;            /* refusals counted, while serving (ca_refusals.c) */
    ca_tiles *tiles;                  /* the issuance log's kept tile hashes (ca_tiles.c) */
    ca_lease *lease;                  /* the signer lease, while serving (ca_lease.c) */
    hsm_eddsa_key *note_key;          /* signs checkpoints (ca_log.c); NULL only while a CA is being opened */
    ct_note_verifier note_vkey;       /* its verifier: log.origin and the key's public half */
    hsm_mac_key *audit_mac;           /* MACs every audit entry (db_open_keyed) */
    ca_generation gens[CA_GENERATIONS_MAX]; /* every issuing CA generation, by kind then generation */
    size_t n_gens;
    int current[2];                   /* by ca_crl_kind: the index in gens of the current generation, -1: none */
    bool roots_online;                /* a folder made before offline roots: its token holds them (warned) */
    bool installed;                   /* the ceremony's certificates are installed (else only `install` opens it) */
};

/* ---- offline roots and issuing CA generations (ca_install.c) ---- */
/* Where init and rotate write the issuing CAs' requests for the ceremony, inside the CA folder. */
extern const char *const ca_csr_file[2];
/* The key of an issuing CA generation: generation 1 is the configured key (key.device_issuing, key.ops_issuing),
 * generation N > 1 the label "<default label>-N" (device-issuing-2). */
CT_MUST_CHECK ct_err ca_generation_key_uri(const ca *c, ca_crl_kind kind, int64_t generation, char *uri, size_t max,
                                           char *label, size_t label_max);
/* Makes the key of that generation in the token and writes its request (ca_csr_file) for the ceremony. */
CT_MUST_CHECK ct_err ca_generation_request(ca *c, ca_crl_kind kind, int64_t generation);
/* Loads every generation from the database into c->gens, recording generation 1 from the folder's certificate
 * file first for a folder made before generations; sets c->current and the current issuing signers. */
CT_MUST_CHECK ct_err ca_generations_load(ca *c);
void ca_generations_free(ca *c);
/* CT_ERR_CONFIG naming the command to run when an install was cut off after the database took a generation: its
 * request is still in the folder (install removes it last), the files and certificates it signs may be the last
 * generation's. */
CT_MUST_CHECK ct_err ca_install_finished(ca *c);

/* The database id of the current generation of `kind` (0 when none: not installed). */
int64_t ca_issuing_id(const ca *c, ca_crl_kind kind);
/* The index in c->gens of `kind`'s generation `generation` (0: the current one); -1 when there is none. */
int ca_generation_find(const ca *c, ca_crl_kind kind, int64_t generation);
/* The CRL distribution point written into certificates of the current device generation (NULL when none): the
 * configured URL for generation 1, "<url>/device/N" for generation N. */
CT_MUST_CHECK ct_err ca_crl_url(const ca *c, char *out, size_t max, const char **url);
/* Issues the operational certificates (TLS, OCSP responder, log signer) whose issuer is a current generation of
 * `kinds` (bit 1 << ca_crl_kind), writing their files: at install. */
CT_MUST_CHECK ct_err ca_operational_certs_issue(ca *c, unsigned kinds);

/* The certificate file each signer's certificate is kept in, inside the CA folder. */
extern const char *const ca_key_cert_file[CA_KEY__COUNT];
extern const char *const ca_key_default_label[CA_KEY__COUNT];

/* Writes DIR/camtrust-ca.conf with every default unless it exists. */
CT_MUST_CHECK ct_err ca_settings_write_defaults(const char *dir);
/* Loads DIR/camtrust-ca.conf. Exports SOFTHSM2_CONF when configured, so that SoftHSM finds this CA's token. */
CT_MUST_CHECK ct_err ca_settings_load(const char *dir, ca_settings *s);
/* The CA folder's id: 32 hex digits in CA_ID_FILE, made at init (or at the first open of an older folder, `make`).
 * The database names its CA by it (migration 13): a node whose folder is another CA's is refused. */
#define CA_ID_FILE "ca-id"
CT_MUST_CHECK ct_err ca_id_read(const char *dir, bool make, char out[DB_CA_ID_MAX]);
/* The database settings of `s` as db_open_config takes them (pointers into `s`), naming the CA `ca_id`. */
void ca_db_config(const ca_settings *s, const char *ca_id, db_config *out);
/* Sets one setting of the folder's config file (ct_settings_set). */
CT_MUST_CHECK ct_err ca_settings_set(const char *dir, const char *key, const char *value);
/* Whether `s` keeps the records in PostgreSQL (else the SQLite file s->db_path). */
bool ca_db_is_pg(const ca_settings *s);

/* A device serial number is also a DNS label: letters, digits and '-', 1 to 63 of them. */
bool ca_serial_valid(const char *serial);
/* A decimal number from `min` to `max`: digits only (no sign, space or "0x"), refused past int64 rather than read as
 * its largest; CT_ERR_USAGE "WHAT 'TEXT' ..." otherwise. */
CT_MUST_CHECK ct_err ca_int_parse(const char *s, const char *what, int64_t min, int64_t max, int64_t *out);

/* A station, officer or model name: 1-63 letters, digits, '-', '_', '.'. */
bool ca_name_valid(const char *name);
/* `code` (one line naming `what`) when `name` is one of the CA's own audit actors (ca, ca-server, cli, unknown): a
 * station or node, whose audit actor is its bare name, may not be named so. */
CT_MUST_CHECK ct_err ca_own_actor_refuse(const char *what, const char *name, ct_err code);
/* A certificate serial as people paste it ("3A:0F..", "3a0f..", "serial=3A0F..") into the recorded form:
 * lower-case hex without the INTEGER's sign byte; CT_ERR_USAGE otherwise. */
CT_MUST_CHECK ct_err ca_serial_normalize(const char *in, char out[DB_CERT_SERIAL_HEX_MAX]);
/* A client certificate (stations, officers: EKU clientAuth, CN `name`) from a CSR file, signed by the
 * operations issuing CA after checking the CSR's own signature, and its record (`profile`: DB_PROFILE_STATION or
 * _OFFICER; rec->der points into `cert`); and its chain written as PEM. */
CT_MUST_CHECK ct_err ca_client_cert_issue(ca *c, const char *name, const char *profile, const char *csr_path,
                                          ct_buf *cert, db_cert_record *rec);
CT_MUST_CHECK ct_err ca_client_cert_write(ca *c, const char *out_path, const ct_buf *cert);

/* Reads the first certificate of a PEM file (or a DER file). */
CT_MUST_CHECK ct_err ca_read_cert_file(const char *path, ct_buf *der);
/* Reads a CSR given as PEM or DER. */
CT_MUST_CHECK ct_err ca_read_csr_file(const char *path, ct_buf *der);
/* Writes DER certificates as one PEM file, atomically. */
CT_MUST_CHECK ct_err ca_write_pem_chain(const char *path, const ct_buf *const *certs, size_t n);

/* Audits a refused request (outcome "denied", the reason from ct_err_detail) and returns `why` with that
 * reason as the detail; CT_ERR_UNAVAILABLE (503, "the CA cannot record its refusal (REASON)") when the entry cannot
 * be written and `why` is no 5xx. ca_audit_denial is an EST enrollment's ("est.enroll"). */
ct_err ca_audit_refusal(ca *c, const char *action, const char *actor, const char *subject, ct_err why);
ct_err ca_audit_denial(ca *c, const char *actor, const char *subject, ct_err why);
/* A refusal of a request that no authenticated party made (`source`: the client's address, NULL or "": local).
 * While serving it is counted per (actor "anonymous:SOURCE", action, reason) and written as one audit row per key
 * and interval (ca_refusals.c); otherwise audited at once, actor "unknown". Returns `why` with the reason as the
 * detail. */
ct_err ca_refuse_anonymous(ca *c, const char *source, const char *action, const char *subject, ct_err why);
/* The same for a refusal a client can repeat per request though its certificate names it (an officer's browser
 * sent by another site's page): counted per (actor, action, reason) while serving, else audited at once. */
ct_err ca_refuse_counted(ca *c, const char *actor, const char *action, const char *subject, ct_err why);
/* The same for a station's refusals past its budget: counted under its name even when audit.anonymous_max_rows are
 * taken (as many rows per station as per any actor). */
ct_err ca_refuse_counted_station(ca *c, const char *station, const char *action, const char *subject, ct_err why);
/* Takes one request from the budget of an authenticated party (per_minute, as many at once) while serving; false when
 * none is left. For requests that each write an audit row and that the party may repeat at will (an officer's
 * reads): without it one auditor's script wrote some 800 rows a second. ca_device_budget_take: a camera's (by its
 * certificate), whose slots are their own, so that many cameras' keys cannot push out an officer's or station's. */
bool ca_actor_budget_take(ca *c, const char *actor, long per_minute);
bool ca_device_budget_take(ca *c, const char *key, long per_minute);
CT_MUST_CHECK ct_err ca_refusals_start(ca *c);
/* Writes what was counted, then stops counting: later refusals are audited one by one. */
void ca_refusals_stop(ca *c);

/* ---- HTTP (ca_http.c): what every route shares; libmicrohttpd itself stays in ca_server.c ---- */
#define CA_INCIDENT_MAX 17 /* 16 hex digits */
typedef struct {
    int status;
    const char *content_type;
    ct_buf body;
    char actor[CA_ACTOR_MAX];
    char reason[256];               /* for the server's log: a 500's too, which its client is not told (below) */
    char incident[CA_INCIDENT_MAX]; /* a 500's (or OCSP internalError's): its log lines name it; "" for others */
    const char *cache_control; /* a Cache-Control header, or NULL for none */
    const char *content_encoding; /* a Content-Encoding header ("gzip"), or NULL for none */
    bool vary_encoding;           /* the body depends on Accept-Encoding: "Vary: Accept-Encoding" */
    long retry_after_s;           /* > 0: a "Retry-After: N" header (an answer over a budget) */
} ca_http_answer;

typedef struct {
    const char *method;             /* HEAD arrives as GET: the server drops the body */
    const char *path;               /* below /.well-known/est/ for EST, else the whole path */
    const char *content_type;
    const uint8_t *body;
    size_t body_len;
    bool body_too_large;            /* the body passed ca_http_body_limit and was not kept */
    const uint8_t *client_cert;     /* DER of a TLS client certificate that chains to a camtrust CA, or NULL */
    size_t client_cert_len;
    bool client_cert_untrusted;     /* one was presented but does not chain to a camtrust CA */
    /* A query-string argument, decoded, or NULL (officer routes). `arg` may be NULL: no arguments. */
    const char *(*arg)(void *arg_ctx, const char *key);
    void *arg_ctx;
    const char *host;               /* the Host header, Origin header and Sec-Fetch-Site header, or NULL */
    const char *origin;
    const char *fetch_site;
    const char *source;             /* the client's address ("127.0.0.1", "::1"), for counting anonymous refusals */
    const char *accept_encoding;    /* the Accept-Encoding header, or NULL */
} ca_http_request;

void ca_http_answer_free(ca_http_answer *ans);

/* A client address as the key of a per-address limit: an IPv4 address (an IPv4-mapped IPv6 one too) as it is, an
 * IPv6 one by its /64 (one client has all of it), an empty or unreadable one ("local": in-process) as one key of its
 * own. Kept as 16 bytes (IPv4 as ::ffff:a.b.c.d) for the fixed-size tables that count per address. */
typedef struct {
    uint8_t b[16];
} ca_addr_key;
#define CA_ADDR_KEY_TEXT_MAX 48 /* an IPv6 /64 ("2001:db8:1:2::/64"), an IPv4 address or "local" */
void ca_addr_key_of(const struct sockaddr *sa, ca_addr_key *key);
void ca_addr_key_of_text(const char *source, ca_addr_key *key);
bool ca_addr_key_equal(const ca_addr_key *a, const ca_addr_key *b);
/* Where a table keyed by outside input (client addresses, OCSP CertIDs) puts `p`: SipHash-2-4 under the table's own
 * random secret (made at its start, wiped at its end). Not FNV-1a: the client picks its address (an IPv6 /48 holds
 * 65,536 /64s) or CertID, and under a hash anyone can compute it picked ones that all made one probe run (walked on
 * every accept and every drop), or filled one answer's probe window to push it out of the OCSP cache. */
#define CA_HASH_SECRET_SIZE 16
uint64_t ca_keyed_hash(const uint8_t secret[CA_HASH_SECRET_SIZE], const uint8_t *p, size_t n);
uint64_t ca_addr_key_hash(const uint8_t secret[CA_HASH_SECRET_SIZE], const ca_addr_key *key);
/* "a.b.c.d", "2001:db8:1:2::/64" or "local": how refusals name the client they count. */
void ca_addr_key_text(const ca_addr_key *key, char out[CA_ADDR_KEY_TEXT_MAX]);
/* A budget of one every `every_us`, at most `burst_us` owed (burst_us / every_us at once), kept as the time its
 * bucket is full again (GCRA; 0: full): takes one and says true, or says false and leaves it as it was. */
bool ca_rate_take(int64_t *full_at_us, int64_t every_us, int64_t burst_us);
/* A budget of `per_minute` requests, as many at once, kept as the time its bucket is full again (GCRA; 0: full):
 * takes one and says true, or says false and leaves it as it was. */
bool ca_bucket_take(int64_t *full_at_us, long per_minute);
/* Fills `ans` with the error's status and a one-line text reason; returns `e`. The reason (ct_err_detail) is what a
 * client must fix for a 4xx, and advice for a 503 (retry when, ask which node); a 500's would tell anyone the CA's
 * insides (SQLite's or PostgreSQL's text, a PKCS#11 code, the CA folder's paths): its client gets the error table's
 * message and an incident, and ans->reason (the server's log line, ca_server.c) keeps the detail under it. */
ct_err ca_http_error(ca_http_answer *ans, ct_err e);
/* A new incident: random, 16 hex digits (the clock's milliseconds if getrandom fails). */
void ca_incident_name(char out[CA_INCIDENT_MAX]);
/* The one line a client is told of the error `e` that ca_http_error put in `ans` (the officer API sends it as JSON). */
CT_MUST_CHECK ct_err ca_http_error_said(const ca_http_answer *ans, ct_err e, char *out, size_t max);
/* wolfSSL (built with FP_ECC) keeps a fixed-point cache per thread: a thread that verifies a signature calls this
 * first, and the cache is freed when the thread ends (ca_server.c). */
void ca_thread_crypto_cache_track(void);
/* "application/pkcs10" with optional parameters ("; charset=..."), case-insensitive. */
bool ca_media_type_is(const char *content_type, const char *want);
/* Whether an Accept-Encoding header lets the answer be gzip (a q-value of 0 refuses it). */
bool ca_http_accepts_gzip(const char *accept_encoding);
/* GET or HEAD: the methods that change nothing. */
bool ca_http_reads(const char *method);
/* The largest request body `method` takes: a GET or HEAD none (RFC 9110 9.3.1: a GET's content has no meaning and a
 * server may refuse it; no client of this CA sends one), any other server.max_body. */
long ca_http_body_limit(const ca *c, const char *method);
/* The 413 of a request whose body passed ca_http_body_limit, the bound named. */
CT_MUST_CHECK ct_err ca_http_body_too_large(const ca *c, const char *method);
/* CT_ERR_FORBIDDEN (with the reason) for what a browser says another site's page sent: Sec-Fetch-Site other
 * than same-origin (or "none" for a read), an Origin other than https://<Host>; and, when the request changes
 * state, neither header. */
CT_MUST_CHECK ct_err ca_http_same_origin(const ca_http_request *rq, bool changes_state);

/* Handles one EST request (ca_est.c). Always fills `ans` (errors too); returns the error it answered with. */
ct_err ca_est_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans);

/* ---- revocation (ca_revoke.c: commands and CRLs; ca_ocsp.c: serving them) ---- */
/* serve's start, once the audit and state checks passed and before any CRL or OCSP answer: the other certificates of
 * keys an older version revoked for keyCompromise, revoked now as a revocation would (db_revoke_same_key_sweep). */
CT_MUST_CHECK ct_err ca_revoke_compromised_keys(ca *c);
/* A fresh CRL of the device issuing CA (CA_CRL_DEVICE) or of the operations issuing CA (CA_CRL_OPS: viewers,
 * stations, officers) from the database (its cRLNumber is recorded and audited, actor `actor`); *next_update is
 * its nextUpdate, *number (may be NULL) its cRLNumber. Allocates der. */
/* The CRL of one issuing CA generation (what it signed). */
CT_MUST_CHECK ct_err ca_crl_make_gen(ca *c, const ca_generation *g, const char *actor, ct_buf *der,
                                     time_t *next_update, int64_t *number);
/* What generation g's CRL must list, from the database (oldest revocation first): *list and *entries (pointing into
 * it) malloc'd (free both), *n of them. */
CT_MUST_CHECK ct_err ca_crl_revoked(ca *c, const ca_generation *g, db_revoked **list, pki_revoked **entries, size_t *n);
/* A stored CRL of generation g judged on its DER (ca_crl_check.c): signed by g's certificate (else
 * CT_ERR_UNAVAILABLE naming it) and compared with what the database shows revoked of g. */
typedef struct {
    pki_crl_info info;
    size_t revoked;                        /* certificates of g the database shows revoked */
    time_t newest;                         /* the newest of their revocations; 0: none */
    char lacking[DB_CERT_SERIAL_HEX_MAX];  /* the first of them it does not list; "": it lists them all */
    /* The first it does not list of those revoked not after its thisUpdate (give or take a lease, node.lease_ms)
     * or `after`: what it must list, whenever it was put there; "": none. */
    char due[DB_CERT_SERIAL_HEX_MAX];
    int64_t due_at;
} ca_crl_judged;
CT_MUST_CHECK ct_err ca_crl_judge(ca *c, const ca_generation *g, const ct_buf *der, time_t after, ca_crl_judged *out);
/* Each generation's stored CRL (crls_signed) judged as ca_crl_judge does, and against the audit's records
 * (db_crl_stored_latest): CT_ERR_INTEGRITY with report->reason when it lacks a revocation made before it was signed,
 * its cRLNumber is below the newest one stored (an older CRL put back) or above any issued; one past its nextUpdate
 * is stale, not tampered with: report->warning. One lacking revocations made after it was signed is lagging (the
 * signer re-signs it). Run after db_state_verify (ca_audit_state_verify). */
CT_MUST_CHECK ct_err ca_crls_stored_verify(ca *c, db_state_report *report);
/* Starts serving revocation: the CRL in memory, the OCSP responder and its pre-signed responses. */
CT_MUST_CHECK ct_err ca_revocation_start(ca *c);
void ca_revocation_stop(ca *c);
/* A revocation was recorded (by this process): refresh the CRL and the OCSP responses now. Other
 * processes' revocations are noticed through the database's revocation epoch within CA_REVOCATION_POLL_MS. */
void ca_revocation_changed(ca *c);
#define CA_REVOCATION_POLL_MS 50
/* GET /crl, and GET /ocsp/<base64> or POST /ocsp (rq->path is the whole path). */
ct_err ca_crl_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans);
ct_err ca_ocsp_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans);

/* ---- the issuance log (ca_log.c) ---- */
/* Serving: a thread signs a tree head log.sth_delay_ms after issuances (and at start and stop, if the log grew).
 * Without a log key (an older CA folder) it warns and signs nothing; certificates are logged all the same. */
CT_MUST_CHECK ct_err ca_log_start(ca *c);
void ca_log_stop(ca *c);
/* Proofs read the log through a cache of chunk roots (O(chunk + n/chunk) per proof, not O(n): anyone may ask for
 * proofs), opened with the CA and shared by the server's threads. */
CT_MUST_CHECK ct_err ca_proofs_open(ca *c);
void ca_proofs_close(ca *c);
/* Chunk cache `t` made to hold the roots of the complete chunks of the first n leaves as the rows now are (its
 * user's lock held): rows rolled back or rewritten under a running node must leave no kept root of the rows that
 * were in what it signs, proves or serves. One leaf read per use: `edge`, the leaf at the kept chunks' edge as read
 * when its chunk's root was computed, read again; on any difference (or the leaf gone) every kept root is dropped
 * (*dropped, when given, says so; a warning line names `tree`) and computed again from the rows. The edge of any
 * chunk added is noted from the very leaves its root was computed from, chunk by chunk: a growth stopped part way (a
 * row missing) keeps the chunks before it. Each chunk is read with the edge before it in one query and taken only if
 * that leaf is still the edge (else dropped and built again, at most twice: then CT_ERR_UNAVAILABLE); failpoint
 * "<tree>:chunks-read" holds between the edge's check and the growth. */
CT_MUST_CHECK ct_err ca_chunks_current(ct_merkle_cache *t, uint8_t edge[CT_MERKLE_HASH_LEN], uint64_t n,
                                       const char *tree, bool *dropped);
/* Tests: ct_failpoint_hold at `name`, the release file taken (removed) as the hold ends, so that one request is held
 * there again at its next pass until the file is made again: interleavings that hold a request twice (ct_failpoint_hold
 * lets every pass after the release go). The CA's own: the camera agent, which links common/core, has no room. */
void ca_failpoint_step(const char *name);
/* A certificate was issued (and logged): a tree head will follow. */
void ca_log_issued(ca *c);
/* The checkpoint key (key.log_note, Ed25519 in the token) and DIR/log.vkey, its verifier key. The default key is
 * generated when absent (at init, and at the first open of a CA folder made before checkpoints: audited as
 * "log.note_key" when c->db is open) and log.vkey written; a log.vkey that names another key, or a key gone while log.vkey remains, is CT_ERR_CONFIG. */
#define CA_LOG_VKEY_FILE "log.vkey"
CT_MUST_CHECK ct_err ca_log_note_key_open(ca *c);
/* Witnesses (log.witnesses): their verifier keys, one a line ('#' comments, blank lines); none when the file is
 * absent. CT_ERR_CONFIG names the line of a bad key. */
#define CA_WITNESSES_MAX CT_COSIG_WITNESSES_MAX
/* ct_note_sign_fn of an Ed25519 key in the token (arg: the hsm_eddsa_key). */
CT_MUST_CHECK ct_err ca_note_sign_cb(void *arg, const uint8_t *msg, size_t len, uint8_t sig[CT_NOTE_SIG_LEN]);
CT_MUST_CHECK ct_err ca_witnesses_load(ca *c, ct_note_verifier *w, size_t max, size_t *n);
/* The newest checkpoint with its kept cosignatures appended (allocated); CT_ERR_NOT_FOUND when none. */
CT_MUST_CHECK ct_err ca_log_checkpoint_cosigned(ca *c, int64_t *id, ct_buf *note);

/* Whether this database extends checkpoint `cp` (verified with the CA's own key): what it signed is there (its
 * audit entry, its tree as the log's prefix) and the newest kept checkpoint is consistent with it.
 * CT_ERR_INTEGRITY with the contradiction. */
CT_MUST_CHECK ct_err ca_log_extends(ca *c, const ct_checkpoint *cp);

/* GET /log/sth, /log/checkpoint, /log/proof/inclusion?serial=HEX[&tree_size=N],
 * /log/proof/consistency?first=M&second=N; POST /log/cosignature, /log/witness-report. */
ct_err ca_log_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans);

/* ---- the CA's certificate files against the audit (ca_certs.c) ---- */
/* At init and at every open (after the checkpoint key): certifies the checkpoint key when CA_NOTE_CERT_FILE is
 * missing, records ("ca.cert") every certificate file the audit has no record of yet, and each certificate the CA
 * issued itself (its server's, OCSP responder's, log signers') that the certificates table lacks. */
CT_MUST_CHECK ct_err ca_certs_open(ca *c);
/* Records ("ca.cert") a certificate file an authorised action (install, rotation) just wrote. */
CT_MUST_CHECK ct_err ca_cert_file_record(ca *c, const char *file, const ct_buf *der);
/* Certifies the checkpoint key again (the operations issuing CA changed) and records the file. */
CT_MUST_CHECK ct_err ca_note_cert_reissue(ca *c);

/* ---- the checkpoint kept in the folder, and serving vs restoring (ca_backup.c) ---- */
/* Writes a checkpoint just signed (and recorded) to DIR/checkpoint.note, atomically. */
CT_MUST_CHECK ct_err ca_kept_checkpoint_write(ca *c, const char *note);
/* At serve's start: ca_kept_checkpoint_check; with none kept yet, keeps the database's newest. */
CT_MUST_CHECK ct_err ca_kept_checkpoint_start(ca *c);
/* Makes the new file `path` (O_EXCL; `flags`: O_WRONLY or O_RDWR) or, with O_DIRECTORY, folder, in its folder opened
 * once and no link followed, and when root makes it gives it to that folder's owner (a command run as root in a CA
 * folder that a User=camtrust service serves must leave it files that service can use and remove); *fd open. */
CT_MUST_CHECK ct_err ca_file_make_owned(const char *path, int flags, unsigned mode, int *fd);
/* ca_file_make_owned of `name` in the folder dir_fd the caller opened (`path`: its name in messages). */
CT_MUST_CHECK ct_err ca_file_make_owned_at(int dir_fd, const char *name, const char *path, int flags, unsigned mode,
                                           int *fd);
/* ct_file_write_atomic, its new file made by ca_file_make_owned (the CA folder's config, its id, secrets). */
CT_MUST_CHECK ct_err ca_file_write_owned(const char *path, const void *data, size_t len, unsigned mode);
/* ca_file_write_owned of `name` in the folder dir_fd the caller opened (`path`: its name in messages). */
CT_MUST_CHECK ct_err ca_file_write_owned_at(int dir_fd, const char *name, const char *path, const void *data,
                                            size_t len, unsigned mode);
/* The serving lock (ca.h ca_serving_lock): flocks on a file of its own and, as builds before took it, the config. */
#define CA_SERVING_LOCK_FILE "serving.lock"
struct ca_folder_lock {
    int lock_fd, conf_fd;
};

/* ---- witnesses' reports of an inconsistent log (ca_witness_report.c) ---- */
/* POST /log/witness-report (ct_witness_report): recorded only when both checkpoints are signed by this CA's log
 * key and cannot both be true (same size, another root; or this database does not extend one of them). */
CT_MUST_CHECK ct_err ca_witness_report_answer(ca *c, const ca_http_request *rq, ca_http_answer *ans);
/* Appends to the officer's checkpoint JSON: per configured witness (in order) ,"newest_time","newest_age_s",
 * "stale","reported" (called inside its object), and the whole ,"reports":[...] list. */
CT_MUST_CHECK ct_err ca_witness_json(ca *c, const ct_note_verifier *w, ct_buf *out);
CT_MUST_CHECK ct_err ca_witness_reports_json(ca *c, ct_buf *out);
/* The most bytes these two add for `witnesses` configured witnesses. */
size_t ca_witness_json_max(size_t witnesses);

/* ---- the issuance log as C2SP tlog-tiles (ca_tiles.c) ---- */
#define CA_TILES_PREFIX "/log/tile/"
/* The kept hashes of complete tiles, opened with the CA and shared by the server's threads. */
CT_MUST_CHECK ct_err ca_tiles_open(ca *c);
void ca_tiles_close(ca *c);
/* GET /log/tile/<L>/<N>[.p/<W>] and /log/tile/entries/<N>[.p/<W>] (public, also over plain HTTP). */
ct_err ca_tiles_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans);

/* ---- officers (ca_officer.c: authentication and the /officer/api/ routes; ca_console.c: /console/) ---- */
#define CA_OFFICER_MAX_BODY 4096
/* The routes below /officer/ and /console that only officers reach. */
bool ca_officer_route(const char *path);
/* Handles an officer request: authenticates the client certificate as an enabled officer, checks its role,
 * answers (JSON for the API). Always fills `ans`; every refusal and every action is audited. */
ct_err ca_officer_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans);
/* Response headers for officer routes (CSP and friends): name, value pairs, NULL-terminated. */
extern const char *const ca_officer_headers[];

typedef struct {
    char name[DB_NAME_MAX];
    db_role role;
    char actor[CA_ACTOR_MAX]; /* "officer:NAME", or "station:NAME" / "unknown" when refused */
} ca_officer_id;
/* Who a chain-verified client certificate belongs to: CT_OK for an enabled officer; CT_ERR_UNAUTHENTICATED
 * (none), CT_ERR_UNKNOWN_CLIENT (does not chain), CT_ERR_FORBIDDEN (a station: "stations cannot read"; a
 * device or an unknown certificate) or CT_ERR_DISABLED, with who->actor set for the audit either way. */
CT_MUST_CHECK ct_err ca_officer_identify(ca *c, const ca_http_request *rq, ca_officer_id *who);

/* The fields of a revocation request body (application/json only: one flat object of strings and numbers; a
 * form, which any web page can post, is CT_ERR_CONTENT_TYPE). Unknown or repeated fields, bad syntax:
 * CT_ERR_BAD_REQUEST. */
#define CA_FIELD_MAX 128
typedef struct {
    char serial[CA_FIELD_MAX], order[CA_FIELD_MAX], station[CA_FIELD_MAX], reason[CA_FIELD_MAX];
} ca_revoke_fields;
CT_MUST_CHECK ct_err ca_revoke_fields_parse(const char *content_type, const uint8_t *body, size_t len,
                                            ca_revoke_fields *out);

/* GET /console/ and its assets (compiled in from ca/console/), for an authenticated officer. */
ct_err ca_console_handle(const ca_http_request *rq, ca_http_answer *ans);

/* ---- several nodes on one database: the signer lease (ca_lease.c) ---- */
/* Takes the lease ("signer") if it can, as node.id (or serve --node-id; empty: node:HOST:PID); ca_lease_run then starts
 * the thread that renews or takes it every ca_lease_tick_ms (after the log and revocation it wakes are started). */
CT_MUST_CHECK ct_err ca_lease_start(ca *c);
/* A command that signs the log (log sth): takes the signer lease for itself, fenced like a node's (ca_lease_free lets
 * it go); refused (CT_ERR_UNAVAILABLE, naming the holder) while a serving node holds it. */
CT_MUST_CHECK ct_err ca_lease_for_command(ca *c);
CT_MUST_CHECK ct_err ca_lease_run(ca *c);
/* Stops the thread (the lease is kept until ca_lease_free, so that the log's last tree head is still signed). */
void ca_lease_stop(ca *c);
/* Stops, lets the lease go when held, frees. */
void ca_lease_free(ca *c);
/* Whether this process may sign checkpoints, tree heads and CRLs now: it holds the lease (true when not serving). */
bool ca_lease_held(const ca *c);
/* The request that names this node's lease now (for db_crl_signed_put's fence); only while serving. */
void ca_lease_request(const ca *c, db_lease_request *req);
int64_t ca_lease_tick_ms(const ca *c);
/* How long after it saw a revocation (within a tick of it) a node may still serve a CRL without it: node.lease_ms +
 * two ticks (a takeover by another node and its first tick). Past it, a node that is not the signer answers 503. */
int64_t ca_crl_stale_ms(const ca *c);
/* The signer's tick: reads the revocation epoch and re-signs (and stores) every CRL that is due or stale. */
void ca_revocation_sign_due(ca *c);

#endif
