/* ca: the camtrust CA service. Each command of `camtrust-ca` is one function here, so tests call them
 * directly; main.c only parses arguments. */
#ifndef CAMTRUST_CA_H
#define CAMTRUST_CA_H

#include <stdio.h>

#include "../common/core/core.h"
#include "../db/db.h"
#include "../db/db_backup.h"
#include "../db/db_log.h"

typedef struct ca ca;

#define CA_CONFIG_FILE "camtrust-ca.conf"
#define CA_PIN_ENV "CAMTRUST_CA_PIN"
#define CA_PROFILE_DEVICE "device"              /* default EST label: TLS identity (IDevID) */
#define CA_PROFILE_MEDIA_SIGNING "media-signing" /* EST label media-signing: signs recordings */
/* An audit actor: a party's name or serial with its kind ("officer:NAME", "device:SERIAL"); names and serials have
 * no ':', so no two kinds of party share an actor. */
#define CA_ACTOR_MAX (DB_NAME_MAX + 16)
#define CA_DEVICE_ACTOR "device:" /* a camera's actor: "device:" and its serial (older entries: the serial alone) */
/* A node's actor (lease.take, crl.store) when node.id is not set: "node:HOST:PID" (older entries: "HOST:PID", which a
 * host named "device" made read as a camera's). */
#define CA_NODE_ACTOR "node:"

/* Creates a CA in `dir`: config (every default written out, unless one is there already), token (SoftHSM
 * here, or the configured one) with the online keys only (the issuing CAs', TLS, OCSP, log; never a root's), the
 * database, and the issuing CAs' requests (ca_csr_file) for the key ceremony that the offline roots' vault runs;
 * ca_install then takes its certificates. */
CT_MUST_CHECK ct_err ca_init(const char *dir);

/* Opens an installed CA folder (CT_ERR_CONFIG, one line, for a folder that awaits its ceremony's certificates). A
 * folder made before offline roots (its roots in its token) opens too, warned once (ca_roots_online). */
CT_MUST_CHECK ct_err ca_open(const char *dir, ca **out);
/* The serving lock on DIR until ca_folder_unlock: shared while serving, exclusive while restoring or migrating to
 * PostgreSQL; CT_ERR_UNAVAILABLE, one line, when the other holds it. A flock on the folder's serving.lock, which is
 * never renamed (the config file is: each change of a setting replaces it, and a lock on the file replaced would keep
 * nobody out; the folder itself is certs' lock), and on its config file, which builds before locked (their servers
 * still keep a restore out). */
typedef struct ca_folder_lock ca_folder_lock;
CT_MUST_CHECK ct_err ca_serving_lock(const char *dir, bool restore, ca_folder_lock **out);
void ca_folder_unlock(ca_folder_lock *l);
/* `db migrate-to`: copies the CA's records (SQLite) into the empty PostgreSQL database `url` (its password from
 * `password_file`, may be NULL), then switches the folder's config to it; *rows gets how many rows. CT_ERR_EXISTS
 * for a target that is not empty. The caller holds the serving lock (exclusive) until the copy proved itself or the
 * folder is back on SQLite: a server writing after the copy would leave its writes behind, and one started after the
 * switch would serve a copy that may yet be given up. */
CT_MUST_CHECK ct_err ca_db_migrate_to(ca *c, const char *url, const char *password_file, int64_t *rows);
/* Audits ("db.migrate_to", in the new database) a migration that proved itself: the rows copied and whence. */
CT_MUST_CHECK ct_err ca_db_migrated(ca *c, const char *from, int64_t rows);
/* Points the folder's config back at its SQLite file (a copy that did not prove itself). */
CT_MUST_CHECK ct_err ca_db_use_sqlite(const char *dir);
/* Whether the CA's token holds its roots (a folder made before offline roots): the operator should move them. */
bool ca_roots_online(const ca *c);
/* ca_open that also opens a folder awaiting its ceremony's certificates (for install, and audit verify). */
CT_MUST_CHECK ct_err ca_open_installing(const char *dir, ca **out);
#define CA_ROOTS_ONLINE_MSG                                                                                      \
    "this CA folder was made before offline roots: its token holds the device and operations root keys, which "  \
    "whoever takes this server can use; make a root vault (camtrust-ca root init) and move to new roots"

/* ---- the online CA and the offline roots (ca_install.c) ---- */
/* Takes the certificates a key ceremony made (`certs`: the roots root.pem and ops-root.pem, each issuing CA's
 * certificate for the request init or rotate wrote) and the roots' CRLs (`crls`, may be none), after checking each
 * (a root self-signed and a CA; an issuing certificate for the key the CA asked for, chained to its root, the
 * issuing profile (CA, pathLen 0, keyCertSign and cRLSign); a CRL signed by one of the roots, not revoking what is
 * installed); then records the new generations and issues what they sign at once (TLS, OCSP responder, log
 * signer). Any refusal is one line and changes nothing. */
CT_MUST_CHECK ct_err ca_install(const char *dir, const char *const *certs, size_t n_certs, const char *const *crls,
                                size_t n_crls);
/* Makes the next generation's key of an issuing CA ("device-issuing" or "ops-issuing") and writes its request
 * for the ceremony; `csr_path` (may be NULL) gets where. CT_ERR_EXISTS when a request is pending already. */
CT_MUST_CHECK ct_err ca_rotate(ca *c, const char *which, char *csr_path, size_t csr_path_max);
void ca_close(ca *c);

/* Serves HTTPS until SIGTERM or SIGINT, then finishes the requests under way and returns. `listen` (NULL:
 * the config's) is "127.0.0.1:8443" or "[::1]:8443". `http_listen` (NULL: the config's server.http_listen;
 * "": none) is where plain HTTP serves /crl and /ocsp only, as revocation clients expect; HTTPS serves them too. */
CT_MUST_CHECK ct_err ca_serve(ca *c, const char *listen, const char *http_listen);
/* This node's name among several serving one database, for ca_serve (in place of node.id; serve --node-id). */
CT_MUST_CHECK ct_err ca_node_id_set(ca *c, const char *node_id);

/* Administration (audited, actor "cli"). */
CT_MUST_CHECK ct_err ca_station_add(ca *c, const char *name, const char *csr_path, const char *out_path);
CT_MUST_CHECK ct_err ca_station_set_enabled(ca *c, const char *name, bool enabled);
CT_MUST_CHECK ct_err ca_order_create(ca *c, const char *station, const char *model, const char *serials_path,
                                     int64_t *order_id);
CT_MUST_CHECK ct_err ca_order_list(ca *c, FILE *out);
CT_MUST_CHECK ct_err ca_order_close(ca *c, int64_t order_id);
/* Re-provisioning a camera whose certificates were revoked: a new order of one line for `serial` (as recorded),
 * which it may be issued against once more; audited. */
CT_MUST_CHECK ct_err ca_order_reprovision(ca *c, const char *station, const char *model, const char *serial,
                                          int64_t *order_id);
CT_MUST_CHECK ct_err ca_audit_verify(ca *c, db_audit_report *report);
/* The state tables rebuilt from the audit and compared (db_state_verify), then each stored CRL judged (a CRL put back
 * that lacks a revocation: ca_crls_stored_verify): CT_ERR_INTEGRITY naming the first row that differs; a stale CRL is
 * report->warning. The server runs it at start and refuses to serve on a difference. */
CT_MUST_CHECK ct_err ca_state_verify(ca *c, db_state_report *report);
/* Both at once, each on its own connection when the database has readers (db_readers_open): the chain's MACs (the
 * token's work) on a thread of their own while this one replays the audit into the state tables. Returns the
 * chain's result, with its detail; *state_rc the state check's (with its detail when the chain is intact), which
 * means nothing on a broken chain. */
CT_MUST_CHECK ct_err ca_audit_state_verify(ca *c, db_audit_report *audit, db_state_report *state, ct_err *state_rc);
/* The checkpoint key's certificate (by the operations issuing CA), made at init or at the next open without it. */
#define CA_NOTE_CERT_FILE "log-checkpoint.pem"
/* Each certificate file the CA uses (root.pem ... log.pem, CA_NOTE_CERT_FILE) is the one its newest audit record
 * ("ca.cert", "ca.renew") names, and CA_NOTE_CERT_FILE certifies log.vkey's key under the operations issuing CA:
 * CT_ERR_INTEGRITY naming the file otherwise. *files: how many were compared. The server runs it at start. */
CT_MUST_CHECK ct_err ca_certs_verify(ca *c, int64_t *files);

/* ---- revocation: plain C, no HTTP (the CLI calls it; a future officer route calls it with its actor) ---- */
typedef struct {
    db_revoke_scope scope;  /* one certificate, or every certificate of an order or of a station */
    const char *target;     /* certificate serial (hex, any case, ':' allowed), order id, or station name */
    const char *reason;     /* RFC 5280 reason name: PKI_REASON_NAMES */
    const char *actor;      /* who revokes: "cli", an officer's name */
    bool not_ca_own;        /* an officer's: the CA's own certificates refused (403), the operator's command revokes them */
} ca_revoke_request;

/* Revokes in one audited transaction and refreshes the CRL and OCSP answers (of this process at once, of a
 * running server within CA_REVOCATION_POLL_MS). keyCompromise revokes every other certificate of the same keys
 * too (db_revoke). `count` (may be NULL): how many certificates, and how many more of the same keys. Refusals
 * (CT_ERR_USAGE bad reason or target, CT_ERR_NOT_FOUND, CT_ERR_ALREADY_REVOKED) are audited and change nothing. */
CT_MUST_CHECK ct_err ca_revoke(ca *c, const ca_revoke_request *req, db_revoke_count *count);
/* Whose CRL: the device issuing CA's (camera certificates), or the operations issuing CA's (viewer certificates,
 * which cameras check before wrapping keys for them). */
typedef enum { CA_CRL_DEVICE, CA_CRL_OPS } ca_crl_kind;
/* Re-certifies an operational key in the token (the same key, a fresh validity from the config): "tls" (the
 * server's certificate), "ocsp" (the OCSP responder's), "log" (the issuance log signer's). Writes the certificate
 * file atomically and audits "ca.renew"; a running server takes it at its next start. CT_ERR_USAGE for any other
 * name: roots and issuing CAs are not renewed in place. `not_after` (may be NULL) gets the new notAfter. */
CT_MUST_CHECK ct_err ca_renew(ca *c, const char *which, time_t *not_after);
/* Writes a freshly signed CRL (DER) of that issuing CA to `path`. */
CT_MUST_CHECK ct_err ca_crl_write(ca *c, ca_crl_kind kind, int64_t generation, const char *path);

/* ---- enrollment policy: plain C, no HTTP. The EST handlers call these. ---- */
typedef enum { CA_ENROLL_NEW, CA_ENROLL_RENEW } ca_enroll_kind;

typedef struct {
    ca_enroll_kind kind;
    const uint8_t *client_cert; /* DER of the TLS client certificate (already chain-verified), or NULL */
    size_t client_cert_len;
    const char *label;          /* EST label: NULL or "" for the default profile */
    const uint8_t *csr;         /* DER PKCS#10 */
    size_t csr_len;
    const char *source;         /* the client's address, or NULL: where an anonymous refusal is counted from */
} ca_enroll_request;

typedef struct {
    ct_buf cert_der;          /* owned by the caller: ct_buf_free */
    char actor[CA_ACTOR_MAX]; /* who asked: station name or "device:SERIAL", for the audit and request log */
    char device_serial[DB_SERIAL_MAX];
    bool repeated;            /* the same certificate as before (a station that lost the answer) */
} ca_enroll_result;

/* Decides and, if allowed, issues: signs inside the token and records the certificate and its audit event
 * in one transaction before returning. Every refusal is audited and names its reason (ct_err_detail). */
CT_MUST_CHECK ct_err ca_enroll(ca *c, const ca_enroll_request *req, ca_enroll_result *res);

/* Certs-only PKCS#7 (DER) of the device issuing CA and device root: EST cacerts. */
CT_MUST_CHECK ct_err ca_cacerts(ca *c, ct_buf *pkcs7_der);

/* ---- officers and the audit console (ca_officer.c, ca_search.c, ca_console.c) ---- */
/* Certifies an officer from its own CSR, like a station: role "auditor" (reads) or "officer" (also revokes).
 * Audited, actor "cli". */
CT_MUST_CHECK ct_err ca_officer_add(ca *c, const char *name, const char *role, const char *csr_path,
                                    const char *out_path);
CT_MUST_CHECK ct_err ca_officer_set_enabled(ca *c, const char *name, bool enabled);
/* Makes an officer an "auditor" or an "officer" from its next request; audited ("officer.role"), actor "cli". */
CT_MUST_CHECK ct_err ca_officer_set_role(ca *c, const char *name, const char *role);

typedef enum { CA_FORMAT_TABLE, CA_FORMAT_CSV, CA_FORMAT_JSON } ca_format;
/* "table", "csv" or "json"; CT_ERR_USAGE otherwise. */
CT_MUST_CHECK ct_err ca_format_parse(const char *name, ca_format *out);

/* Search filters as text, as the CLI and the officer API receive them; each is checked (CT_ERR_USAGE naming
 * it). NULL or "": any. Times: Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC); `to` is exclusive. */
typedef struct {
    const char *device_serial, *cert_serial, *station, *order, *model, *from, *to, *status, *limit, *offset;
} ca_search_args;
#define CA_SEARCH_DEFAULT_LIMIT 50
/* The certificates matching every filter, newest first, in format `f`: appended to `out` (allocated here;
 * ct_buf_free). */
CT_MUST_CHECK ct_err ca_audit_search(ca *c, const ca_search_args *a, ca_format f, ct_buf *out);
/* Issuance per station, per order and per day, revocations by reason, totals, the latest denials and
 * revocation actions, with time in [from, to) (NULL: unbounded). */
CT_MUST_CHECK ct_err ca_audit_report(ca *c, const char *from, const char *to, ca_format f, ct_buf *out);
/* One certificate as JSON: decoded fields, chain (PEM), status and revocation, its audit entry. */
CT_MUST_CHECK ct_err ca_cert_detail_json(ca *c, const char *serial, ct_buf *out);

/* ---- the issuance log (ca_log.c): RFC 9162 Merkle tree of every issued certificate, tree heads signed in the
 * token by the log key (log.pem, certified by the operations issuing CA) ---- */
/* Signs a tree head of the whole log now, audited with `actor`. `out` (may be NULL) gets it. */
CT_MUST_CHECK ct_err ca_log_sth(ca *c, const char *actor, db_tree_head *out);
/* Writes the inclusion proof of certificate `serial` (hex, any case, ':' allowed) against the newest tree head
 * (signing one first if none covers it yet) as PEM "CAMTRUST LOG PROOF" (pki.h), for the device to keep. */
CT_MUST_CHECK ct_err ca_log_proof_write(ca *c, const char *serial, const char *path);
typedef struct {
    uint64_t leaf_index, tree_size, timestamp_ms;
    char cert_serial[DB_CERT_SERIAL_HEX_MAX];
    char subject_serial[DB_SERIAL_MAX];
} ca_log_proof_info;
/* Checks a proof file offline with the log certificate alone (no CA folder): CT_ERR_INTEGRITY with the reason. */
CT_MUST_CHECK ct_err ca_log_proof_check(const char *proof_path, const char *log_cert_path, ca_log_proof_info *info);
/* The log's part of `audit verify`: leaves against certificate rows, every tree head's root and signature. */
CT_MUST_CHECK ct_err ca_log_verify(ca *c, db_log_report *report);
/* The newest checkpoint (C2SP signed note, NUL-terminated in `note`; ct_buf_free), signing one first if none
 * was signed yet (audited with `actor`). */
CT_MUST_CHECK ct_err ca_log_checkpoint(ca *c, const char *actor, ct_buf *note);
/* `audit verify`: every kept checkpoint is signed by the checkpoint key (log.vkey), holds in the database (its
 * audit entry, its root over the log's first leaves) and none goes back. CT_ERR_INTEGRITY naming the first that
 * does not; *count: how many were verified. */
CT_MUST_CHECK ct_err ca_log_checkpoints_verify(ca *c, int64_t *count);
typedef struct {
    uint64_t tree_size, audit_entries, time_ms;
} ca_checkpoint_info;
/* `audit verify --checkpoint FILE`: FILE's signature with the verifier key (vkey_path, NULL: DIR/log.vkey), then
 * that this database extends it: its audit entry number <entries> has its hash, the log has its tree as a prefix
 * (same root), and the database's newest checkpoint is consistent with it (RFC 9162 consistency proof).
 * CT_ERR_INTEGRITY with a one-line detail naming FILE when the database contradicts it; CT_ERR_BAD_REQUEST when
 * FILE is not a well-formed checkpoint. */
CT_MUST_CHECK ct_err ca_log_checkpoint_check(ca *c, const char *path, const char *vkey_path, ca_checkpoint_info *info);
/* Whether the newest checkpoint (path NULL) or the kept checkpoint file `path` carries valid cosignatures of at
 * least k of the witnesses in log.witnesses (*have of *configured); CT_ERR_INTEGRITY with one line naming the
 * missing ones (or a cosignature that does not verify) otherwise. */
CT_MUST_CHECK ct_err ca_log_witnessed(ca *c, const char *path, size_t k, size_t *have, size_t *configured);
/* The newest checkpoint for the officer console: {"checkpoint", "tree_size", "audit_entries", "time_ms", "age_s",
 * "note", "witnesses": [{"name", "cosigned", "time", "age_s", "newest_time", "newest_age_s", "stale", "reported"}],
 * "witnessed", "witnesses_required", "witness_max_age_s", "reports": [{"id", "received", "age_s", "witness", "kind", "kept_size", "served_size",
 * "reason"}]} (every configured witness; time and age when cosigned; newest_*: its newest cosignature of any
 * checkpoint; stale: none, or older than log.witness_max_age_s; reported: its inconsistency reports; witnessed: how
 * many configured witnesses cosigned the newest checkpoint, flagged by the console below log.witnesses_required). */
CT_MUST_CHECK ct_err ca_log_checkpoint_json(ca *c, ct_buf *out);

/* ---- an independent witness of the log (ca_witness.c): its own folder and token, no CA needed ---- */
/* Makes witness folder `dir`: witness.conf, its own SoftHSM token, an Ed25519 key in it, and dir/witness.vkey
 * (its cosignature/v1 verifier key, also returned in vkey) for the CA's log.witnesses; with `ca_root` (a
 * self-signed PEM root, NULL: none) pins the root the CA server's HTTPS certificate must chain to. */
CT_MUST_CHECK ct_err ca_witness_init(const char *dir, const char *name, const char *ca_root, char *vkey,
                                     size_t vkey_max);
/* Polls URL/log/checkpoint (https:// with the pinned root, or http://) every interval_ms until SIGTERM/SIGINT,
 * cosigning each new checkpoint that extends the last one it cosigned. CT_ERR_INTEGRITY (after one
 * "witness_refused" log line) when the log does not: nothing is cosigned then, the evidence is kept in
 * dir/evidence/ and reported to POST /log/witness-report. */
CT_MUST_CHECK ct_err ca_witness_run(const char *dir, const char *log_url, const char *vkey_path, long interval_ms);

/* Certifies a viewer of encrypted video from its own CSR (P-256): viewer profile (keyAgreement), issued by the
 * operations issuing CA, recorded and audited (profile "viewer"); writes the certificate and the issuing CA. */
CT_MUST_CHECK ct_err ca_viewer_add(ca *c, const char *name, const char *csr_path, const char *out_path);

/* ---- backup and restore of a SQLite CA (ca_backup.c) ---- */
/* The newest checkpoint the CA signed, kept in its folder outside the database: written after each one is signed;
 * `serve` refuses a database that does not extend it, and no checkpoint is signed over one. */
#define CA_KEPT_CHECKPOINT_FILE "checkpoint.note"
typedef struct {
    db_backup_info db;
    uint8_t root_sha256[32];     /* the folder's device root: whose CA the copy is */
    uint64_t checkpoint_time_ms; /* the newest checkpoint's time (0: none, or not verified) */
} ca_backup_summary;
/* Copies DIR's database to `out` with SQLite's online backup API (consistent while the CA serves and issues), as one
 * owner-only file, checked (integrity_check), synced and renamed into place; `s` says what it holds. No token
 * needed. */
CT_MUST_CHECK ct_err ca_backup(const char *dir, const char *out, ca_backup_summary *s);
/* Whether the database extends DIR/checkpoint.note: CT_OK (also when there is none: *present false), or
 * CT_ERR_INTEGRITY with one line naming it ("the database is older than the checkpoint kept in ..."). `kept` (may be
 * NULL) gets what it says. */
CT_MUST_CHECK ct_err ca_kept_checkpoint_check(ca *c, ca_checkpoint_info *kept, bool *present);
/* An officer's acceptance of a rolled-back database: when it does not extend checkpoint.note, audits
 * "ca.rollback_accept" (both tree sizes and audit lengths, the kept note's SHA-256), moves the kept note aside
 * (checkpoint.note.rolled-back-<ms>) and signs a checkpoint of the log as it is. *accepted false: nothing to accept. */
CT_MUST_CHECK ct_err ca_rollback_accept(ca *c, ca_checkpoint_info *kept, ca_checkpoint_info *now, bool *accepted);

/* Restore, in steps (main.c prints between them). ca_restore_begin: refuses while DIR is served, copies `from` into a
 * stage folder beside the database and checks it there before any token use: a SQLite file alone (no WAL beside
 * it), integrity_check, a camtrust schema, the roots its audit records are DIR's (else "another CA's database").
 * Always ca_restore_end, which removes the stage and unlocks. */
typedef struct ca_restore ca_restore;
CT_MUST_CHECK ct_err ca_restore_begin(const char *dir, const char *from, ca_restore **out);
const char *ca_restore_staged(const ca_restore *r);
const db_backup_info *ca_restore_info(const ca_restore *r);
/* Opens DIR as a CA on another database file (the staged copy): then `audit verify`'s checks run on it. A schema
 * newer than this build is refused by the database layer. */
CT_MUST_CHECK ct_err ca_open_db(const char *dir, const char *db_path, ca **out);
/* Compares the staged copy (opened with ca_open_db) with every checkpoint kept outside it: DIR/checkpoint.note, the
 * database it replaces, `files` (a witness's state.note, a station's log/checkpoint.note, an officer's), one line
 * each on `out`; *rolled_back when it does not extend one. Keeps in checkpoint.note the newest, or the newest one the
 * copy contradicts, so that the CA refuses to serve it until accepted. When no checkpoint shows it but the database
 * replaced holds audit entries the copy has not (a revocation after the newest checkpoint): CT_ERR_INTEGRITY, nothing
 * to restore, unless `accept_rollback` (then the acceptance is audited in the copy). */
CT_MUST_CHECK ct_err ca_restore_compare(ca_restore *r, ca *staged, const char *const *files, size_t n_files,
                                        bool accept_rollback, FILE *out, bool *rolled_back);
/* Puts the staged copy (closed) in place: its WAL folded and the file synced, the database it replaces folded into
 * its own file (no WAL left to replay onto the new one) and kept as `replaced` (DB.replaced-<ms>; "" when there was
 * none), one rename, the folder synced. */
CT_MUST_CHECK ct_err ca_restore_commit(ca_restore *r, char *replaced, size_t max);
void ca_restore_end(ca_restore *r);

/* For tests and tools that inspect the CA's records. */
ct_db *ca_db(ca *c);

#endif
