/* db: the CA's records in SQLite (WAL; the default) or PostgreSQL (several nodes on one database). Only this
 * module runs SQL. Each operation is one transaction and is
 * named in the CA's own words. The handle is safe to share between threads (calls are serialised). */
#ifndef CAMTRUST_DB_H
#define CAMTRUST_DB_H

#include <time.h>

#include "../common/core/core.h"

#define DB_NAME_MAX 64
#define DB_SERIAL_MAX 64   /* device serial numbers */
#define DB_CERT_SERIAL_HEX_MAX 41
#define DB_PROFILE_MAX 32
#define DB_AUDIT_TEXT_MAX 256 /* audit fields as reports show them (longer text is cut) */
/* The operations issuing CA's certificates are recorded like cameras', under these profiles (the client's name in
 * the device-serial column); every other profile is the device issuing CA's. */
#define DB_PROFILE_STATION "station"
#define DB_PROFILE_OFFICER "officer"
#define DB_PROFILE_VIEWER "viewer"
/* The CA's own certificates (the file's name in the device-serial column): its server's, its log signers' (the
 * operations issuing CA's) and its OCSP responder's (the device issuing CA's). */
#define DB_PROFILE_CA_TLS "ca-tls"
#define DB_PROFILE_CA_LOG "ca-log"
#define DB_PROFILE_CA_CHECKPOINT "ca-checkpoint"
#define DB_PROFILE_CA_OCSP "ca-ocsp"

typedef struct ct_db ct_db;

/* Opens (creating if needed) the SQLite file and runs pending numbered migrations. WAL, synchronous=FULL,
 * foreign keys. */
CT_MUST_CHECK ct_err db_open(const char *path, ct_db **out);

/* Where the records are: a SQLite file, or a PostgreSQL database that several nodes of one CA share. */
typedef enum { DB_BACKEND_SQLITE, DB_BACKEND_POSTGRESQL } db_backend_kind;
typedef struct {
    db_backend_kind backend;
    const char *path;          /* SQLite: the file */
    const char *url;           /* PostgreSQL: a libpq connection string; a password in it is refused */
    const char *password_file; /* PostgreSQL: NULL, or the file holding the password (read, used, wiped) */
    /* The CA this database belongs to (its folder's ca-id; NULL: not checked). A database that names none yet is
     * named so (audited "db.ca_id"); one that names another CA is refused with CT_ERR_CONFIG. */
    const char *ca_id;
    /* A database for db_copy: refused (CT_ERR_EXISTS) unless empty; left empty here, its schema is made by db_copy in
     * the copy's one transaction, without audit entries (the copy brings the CA's own). */
    bool copy_target;
    /* PostgreSQL, each write transaction (0: unbounded, as a copy's target is): how long it waits for the writers'
     * lock or a row's (then CT_ERR_UNAVAILABLE, rolled back), and how long it may stand idle between statements
     * before the server ends its session, so that a node stalled holding the lock (stopped, cut off) frees it. */
    int64_t lock_wait_ms, idle_tx_ms;
} db_config;
#define DB_CA_ID_MAX 65
typedef struct db_audit_mac db_audit_mac;
/* db_open_keyed (mac may be NULL) on either backend. PostgreSQL unreachable: CT_ERR_UNAVAILABLE naming it; later
 * calls while it is down fail with CT_ERR_UNAVAILABLE (HTTP 503), their transaction rolled back, and the
 * connection is re-made by the first call after it is back. */
CT_MUST_CHECK ct_err db_open_config(const db_config *cfg, const db_audit_mac *mac, ct_db **out);
/* "sqlite" or "postgresql". */
const char *db_backend_name(const ct_db *db);
/* `camtrust-ca db migrate-to`: copies every row of `src` (one snapshot) into `dst` (opened with copy_target), ids
 * kept, in one transaction of dst; `rows` (may be NULL) gets how many. */
CT_MUST_CHECK ct_err db_copy(ct_db *src, ct_db *dst, int64_t *rows);
/* Opens n (1..DB_READERS_MAX) more connections to the same database, which refuse every write, for the calls that
 * only read: a server's threads then read while the writer commits (SQLite WAL, PostgreSQL). */
#define DB_READERS_MAX 32
CT_MUST_CHECK ct_err db_readers_open(ct_db *db, unsigned n);
/* A server's write path (SQLite; nothing changes on PostgreSQL, whose server syncs its own commits): a commit syncs
 * the WAL after releasing the write lock, so the next writer writes while it reaches the disk. Every write still
 * returns only once it is durable. */
CT_MUST_CHECK ct_err db_pipeline_commits(ct_db *db);
void db_close(ct_db *db);
int db_schema_version(ct_db *db);
/* Whether a write transaction found the schema migrated by a newer build: every write is refused since (503). */
bool db_schema_outdated(const ct_db *db);

/* ---- stations ---- */
typedef struct {
    int64_t id;
    char name[DB_NAME_MAX];
    bool enabled;
    uint8_t cert_sha256[32];
    char cert_serial_hex[DB_CERT_SERIAL_HEX_MAX];
    bool revoked; /* its certificate is revoked */
} db_station;

typedef struct db_cert_record db_cert_record;
/* Records a station and its issued client certificate (`cert`, profile DB_PROFILE_STATION: in the certificates
 * table, not in the issuance log), with their audit events, in one transaction. CT_ERR_EXISTS if the name is
 * taken. */
CT_MUST_CHECK ct_err db_station_add(ct_db *db, const char *name, const db_cert_record *cert, const char *actor);
/* CT_ERR_DISABLED (with `out` filled) when the station's certificate is revoked: refused at once. */
CT_MUST_CHECK ct_err db_station_find_by_cert(ct_db *db, const uint8_t cert_sha256[32], db_station *out);
CT_MUST_CHECK ct_err db_station_find(ct_db *db, const char *name, db_station *out);
CT_MUST_CHECK ct_err db_station_set_enabled(ct_db *db, const char *name, bool enabled, const char *actor);

/* ---- production orders ---- */
typedef struct {
    int64_t id;
    char station[DB_NAME_MAX];
    char model[DB_NAME_MAX];
    bool open;
    int64_t serial_count;
    int64_t issued_count;
    int64_t created_at;
} db_order;

/* Creates an order with its serials (unique within the order; a serial already in another open order, or that
 * differs only by case from a serial of any order, is refused with CT_ERR_EXISTS), audited, in one transaction. */
CT_MUST_CHECK ct_err db_order_create(ct_db *db, const char *station, const char *model, const char *const *serials,
                                     size_t n_serials, const char *actor, int64_t *order_id);
typedef void (*db_order_cb)(const db_order *o, void *arg);
CT_MUST_CHECK ct_err db_order_list(ct_db *db, db_order_cb cb, void *arg);
CT_MUST_CHECK ct_err db_order_close(ct_db *db, int64_t order_id, const char *actor);
/* Re-provisioning a camera whose certificates were revoked: a new order of one line that allows `serial` (as
 * recorded) to be issued once more, until its next revocation; audited ("order.reprovision"). CT_ERR_NOT_FOUND
 * when the serial has no revoked certificate (order it as usual), CT_ERR_ALREADY_ISSUED when it has a current
 * one, CT_ERR_EXISTS when it is in an open order. */
CT_MUST_CHECK ct_err db_order_reprovision(ct_db *db, const char *station, const char *model, const char *serial,
                                          const char *actor, int64_t *order_id);
/* The open order of this station that expects this device serial; CT_ERR_NOT_IN_ORDER if none. Its
 * serial_count and issued_count are left 0 (db_order_list has them): this is the enrollment hot path. */
CT_MUST_CHECK ct_err db_order_find_for_serial(ct_db *db, int64_t station_id, const char *serial, db_order *out);

/* ---- certificates ---- */
struct db_cert_record {
    char cert_serial_hex[DB_CERT_SERIAL_HEX_MAX];
    char device_serial[DB_SERIAL_MAX];
    char profile[DB_PROFILE_MAX];
    char subject[256];
    int64_t not_before;
    int64_t not_after;
    int64_t station_id; /* 0 when not issued through a station (re-enrollment) */
    int64_t order_id;   /* 0 when not issued against an order */
    uint8_t spki_sha256[32];
    const uint8_t *der;
    size_t der_len;
    int64_t issuing_ca; /* the issuing CA generation that signed it (db_issuing_ca.id); 0: not recorded */
    const char *authenticated_by; /* a renewal: the device certificate that authenticated it, still current when
                                   * recorded (else CT_ERR_UNKNOWN_CLIENT); NULL otherwise */
};

typedef struct {
    char cert_serial_hex[DB_CERT_SERIAL_HEX_MAX];
    char status[16]; /* "valid", "superseded", "revoked" */
    uint8_t spki_sha256[32];
    ct_buf der;      /* owned; free with ct_buf_free */
} db_cert;

/* The current (not superseded, not revoked) certificate of a device serial for a profile; CT_ERR_NOT_FOUND. */
CT_MUST_CHECK ct_err db_cert_find_current(ct_db *db, const char *device_serial, const char *profile, db_cert *out);

/* The device serial a public key (its SubjectPublicKeyInfo's SHA-256) is certified for; CT_ERR_NOT_FOUND. */
CT_MUST_CHECK ct_err db_key_holder(ct_db *db, const uint8_t spki_sha256[32], char *serial, size_t max);

/* Records an issued certificate and its audit event in one transaction, before the answer is sent.
 * If `supersedes_hex` is non-NULL, that certificate is marked superseded in the same transaction (CT_ERR_ALREADY_REVOKED
 * if it was revoked since, CT_ERR_ALREADY_ISSUED if superseded since, CT_ERR_NOT_FOUND if it is not the serial's of that
 * profile). A renewal (rec->authenticated_by) must supersede one: a profile's first certificate is an order's
 * (CT_ERR_FORBIDDEN).
 * CT_ERR_ALREADY_ISSUED if a current certificate for this serial and profile exists; for an order's issuance
 * (order_id), CT_ERR_EXISTS if the device serial differs only by case from one issued here, and
 * CT_ERR_ALREADY_REVOKED when the serial has a revoked certificate of any profile (revocation is final,
 * unless the order line re-provisions it: db_order_reprovision); CT_ERR_EXISTS naming the holder if a certificate of
 * another device serial or profile (of any status) certifies the same key (its SPKI's SHA-256): one key, one holder;
 * the same serial and profile may certify it again (a renewal). Checked after the rules above. Read in the same
 * transaction: an order's issuance is refused when its order was closed (CT_ERR_NOT_IN_ORDER) or its station disabled
 * or its certificate revoked (CT_ERR_DISABLED) since; a renewal when rec->authenticated_by is no longer current. */
CT_MUST_CHECK ct_err db_cert_record_issuance(ct_db *db, const db_cert_record *rec, const char *supersedes_hex,
                                             const char *actor);
/* An issuance on its way to db_cert_record_issuance (+1 when its request begins, -1 once answered or refused):
 * the group commit waits a bounded while (2 ms) for those not queued yet, so that more certificates share one
 * commit and one sync; it stops waiting once the last of them has queued, or has ended (-1) without queuing (refused,
 * a repeat). Only a hint: nothing waits when none is announced. Call both on one thread. */
void db_issuances_coming(ct_db *db, int delta);

/* Stations and officers certified before their certificates were recorded (older CA folders) are recorded now,
 * from the DER their tables keep: `fill` (no database calls) sets each record's validity, subject and SPKI hash;
 * each row is audited ("cert.record"), not logged (DB_PROFILE_STATION/_OFFICER are not in the issuance log).
 * `count` (may be NULL) gets how many were recorded. */
typedef ct_err (*db_cert_fill_fn)(const uint8_t *der, size_t len, db_cert_record *rec);
CT_MUST_CHECK ct_err db_operator_certs_backfill(ct_db *db, db_cert_fill_fn fill, const char *actor, int64_t *count);
/* Records one of the CA's own certificates (a DB_PROFILE_CA_* profile, the file's name as device serial; no station
 * or order), superseding the file's current one, audited ("cert.record"), not logged; in one transaction.
 * `recorded` (may be NULL): false when its serial was recorded already (nothing done). */
CT_MUST_CHECK ct_err db_ca_cert_record(ct_db *db, const db_cert_record *rec, const char *actor, bool *recorded);

/* ---- revocation ---- */
typedef enum { DB_REVOKE_CERT, DB_REVOKE_ORDER, DB_REVOKE_STATION } db_revoke_scope;

typedef struct {
    db_revoke_scope scope;
    const char *cert_serial_hex; /* DB_REVOKE_CERT: lower-case hex, as recorded */
    int64_t order_id;            /* DB_REVOKE_ORDER */
    const char *station;         /* DB_REVOKE_STATION: its name */
    int reason;                  /* RFC 5280 CRLReason code */
    const char *reason_name;     /* for the audit event */
    const char *actor;
    int64_t at;                  /* revocation time; 0: now */
    bool not_ca_own;             /* refuse the CA's own certificates (DB_PROFILE_CA_*: CT_ERR_FORBIDDEN): an officer's */
} db_revocation;

typedef struct {
    int64_t revoked;  /* the scope's certificates */
    int64_t same_key; /* keyCompromise: other certificates of their keys, revoked with them */
} db_revoke_count;

/* Revokes one certificate, or every certificate not yet revoked of an order or of a station (with the
 * renewals of the devices they enrolled), in one transaction with one audit event that counts and lists them,
 * and counts one more revocation epoch. For keyCompromise it also revokes, at the same time and for the same
 * reason, every other certificate not yet revoked of the keys it revoked (any serial, any profile), each with a
 * "revoke.same_key" audit event. Revoking an order also closes it, revoking a station also disables it
 * (each with its own audit event, in the same transaction). `count` (may be NULL) gets how many were revoked.
 * CT_ERR_NOT_FOUND: no such certificate (never issued here), order or station, or it has no certificates.
 * CT_ERR_ALREADY_REVOKED: nothing left to revoke (or close, or disable). CT_ERR_FORBIDDEN: r->not_ca_own and the
 * serial is one of the CA's own certificates. An order's or a station's renewals are cameras' only, never a
 * viewer's, a station's, an officer's or the CA's own certificate of the same name. Refusals change nothing (the caller
 * audits them). */
CT_MUST_CHECK ct_err db_revoke(ct_db *db, const db_revocation *r, db_revoke_count *count);
/* keyCompromise revocations made before they revoked the other certificates of their keys (databases of older
 * versions): revokes, now, every certificate not yet revoked whose key has a certificate revoked for keyCompromise,
 * each with the "revoke.same_key" audit event db_revoke writes ("with" the first certificate of that key revoked
 * for keyCompromise), in one transaction that counts one more revocation epoch when it revoked any. `revoked`
 * gets how many (0: nothing written). */
CT_MUST_CHECK ct_err db_revoke_same_key_sweep(ct_db *db, const char *actor, int64_t *revoked);

typedef struct {
    bool revoked;
    int64_t revoked_at;
    int reason;
    int64_t issuing_ca; /* the generation that signed it; 0: recorded before generations (the first one) */
} db_cert_state;
typedef struct {
    char cert_serial_hex[DB_CERT_SERIAL_HEX_MAX];
    int64_t revoked_at;
    int reason;
} db_revoked;
/* Whose CRL: the device issuing CA's (camera certificates), or the operations issuing CA's (viewers, stations and
 * officers: the DB_PROFILE_* above). */
typedef enum { DB_CRL_DEVICE, DB_CRL_OPS } db_crl_issuer;
/* A certificate's revocation state for OCSP, of that issuer's certificates; CT_ERR_NOT_FOUND (without a detail: it
 * is the fast path of "unknown") for serials it never issued (viewers, stations and officers are the operations
 * issuing CA's, every other profile the device's). Superseded certificates are not revoked. */
CT_MUST_CHECK ct_err db_cert_state_get(ct_db *db, db_crl_issuer issuer, const char *cert_serial_hex, db_cert_state *out);
/* Every revoked certificate of that issuer's generation `issuing_ca` (db_issuing_ca.id; with first_generation,
 * also those recorded before generations were), for its CRL, oldest revocation first: *out is malloc'd (free),
 * *n entries. */
CT_MUST_CHECK ct_err db_cert_list_revoked(ct_db *db, db_crl_issuer issuer, int64_t issuing_ca, bool first_generation,
                                          db_revoked **out, size_t *n);

/* ---- issuing CA generations (issuing.c): the device and operations issuing CAs the offline roots certified ---- */
typedef struct {
    int64_t id;
    db_crl_issuer kind;
    int64_t generation; /* 1, 2, ... per kind */
    char key_uri[256];  /* its key in the CA's token */
    ct_buf cert_der;    /* owned */
    int64_t installed_at;
} db_issuing_ca;
/* Records the next generation of `kind` (the newest is the current one), audited ("ca.issuing", detail `detail`)
 * in one transaction; *id gets its id. CT_ERR_EXISTS when that generation or certificate is recorded already. */
CT_MUST_CHECK ct_err db_issuing_ca_add(ct_db *db, db_crl_issuer kind, int64_t generation, const char *key_uri,
                                       const uint8_t *der, size_t len, const char *actor, const char *detail,
                                       int64_t *id);
/* Every generation, by kind then generation: *out malloc'd (db_issuing_ca_list_free), *n of them. */
CT_MUST_CHECK ct_err db_issuing_ca_list(ct_db *db, db_issuing_ca **out, size_t *n);
void db_issuing_ca_list_free(db_issuing_ca *list, size_t n);

/* Grows with every revocation: a server compares it to notice revocations made by another process. */
CT_MUST_CHECK ct_err db_revocation_epoch(ct_db *db, int64_t *epoch);
/* The issuer's next cRLNumber (1, 2, ...: one sequence per issuer), recorded with a "crl.issue" audit event
 * (subject "crl N", or "ops crl N") naming how many entries it lists. */
CT_MUST_CHECK ct_err db_crl_number_next(ct_db *db, db_crl_issuer issuer, const char *actor, size_t revoked,
                                        int64_t *number);

/* ---- audit log: append-only, chained (each entry's hash covers the previous entry's) ----
 * Keyed: each entry's hash is HMAC-SHA256 under a key that only the CA's token holds (db_open_keyed), so that
 * someone who can write this file but not use the token cannot write an entry. A chain begun before keying
 * (SHA-256 only) is sealed by its "audit.keyed" entry: that entry and every later one are MACed. */
typedef ct_err (*db_audit_mac_fn)(void *ctx, const uint8_t *msg, size_t len, uint8_t mac[32]);
struct db_audit_mac {
    db_audit_mac_fn fn;
    /* Called once at open, under the database's write lock (processes opening the same file take turns), before
     * anything is written: finds the key, or (may_make: the chain is empty or unkeyed) makes it and sets *made; a
     * chain that existed unkeyed is then sealed with an "audit.keyed" entry (subject key_name). The database, not
     * the token's view, says whether to make one: a process whose view of the token lags another's must not make a
     * second key. */
    ct_err (*key)(void *ctx, bool may_make, bool *made);
    void *ctx;
    const char *key_name;
    /* Optional, for the check of the whole chain: the MACs of n messages at once (macs[i] of msgs[i]), e.g. on
     * several token sessions; NULL: fn for each. On failure *failed is the first message whose MAC failed (the
     * error then names that audit entry). */
    ct_err (*fn_many)(void *ctx, size_t n, const uint8_t *const *msgs, const size_t *lens, uint8_t (*macs)[32],
                      size_t *failed);
};
/* db_open whose every audit entry is MACed with `mac` (copied; ctx must outlive the handle), migrations' own
 * entries included: the key is ready, and an unkeyed chain sealed, before any migration runs. */
CT_MUST_CHECK ct_err db_open_keyed(const char *path, const db_audit_mac *mac, ct_db **out);
CT_MUST_CHECK ct_err db_audit_append(ct_db *db, const char *actor, const char *action, const char *subject,
                                     const char *outcome, const char *detail);
typedef struct {
    const char *actor, *action, *subject, *outcome, *detail;
} db_audit_entry;
/* Appends `n` entries in one transaction (one commit to disk): all of them or none. */
CT_MUST_CHECK ct_err db_audit_append_all(ct_db *db, const db_audit_entry *entries, size_t n);

typedef struct {
    int64_t entries;
    int64_t keyed_from;      /* the first MACed entry (1, or the "audit.keyed" entry); 0: none (unkeyed handle) */
    int64_t first_bad_seq;   /* 0 when intact */
    int64_t ms;              /* how long the check took (a server's start waits for it) */
    char reason[256];        /* which entry and how: "entry 7: MAC does not match (not written by this CA's key)" */
} db_audit_report;

/* Walks the chain from the first entry; CT_ERR_INTEGRITY with the report filled when it is broken. On a keyed
 * handle: entries before the first MACed one must be SHA-256 chained, the first MACed one must be entry 1 or an
 * "audit.keyed" entry, every later one MACed, and a non-empty chain must have one. Unkeyed: SHA-256 only. */
CT_MUST_CHECK ct_err db_audit_verify(ct_db *db, db_audit_report *report);

/* ---- state rebuilt from the audit (rebuild.c) ---- */
typedef struct {
    int64_t entries;  /* state entries replayed */
    int64_t rows;     /* rows compared */
    int64_t ms;       /* how long the check took (the CA's adds its stored CRLs') */
    char reason[256]; /* the first difference: "station line1: disabled in the audit, enabled in the table" */
    char warning[256]; /* "" or what is stale but not tampered with (the CA's checks of stored CRLs fill it) */
} db_state_report;

/* Replays the audit entries from the state entry of migration 9 on (certificates, stations, officers, orders, CRL
 * numbers) and compares the result with the tables: CT_ERR_INTEGRITY naming the first row that differs (an edit
 * made around the CA, e.g. with sqlite3), with report->reason filled. Run it after db_audit_verify. */
CT_MUST_CHECK ct_err db_state_verify(ct_db *db, db_state_report *report);
/* A difference found by a check beside db_state_verify's (the CA's of stored CRLs): report->reason set from fmt,
 * CT_ERR_INTEGRITY with the same detail. */
CT_MUST_CHECK ct_err db_state_differs(db_state_report *report, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The CA's own certificate files (root.pem, server.pem, log-checkpoint.pem, ...) as the audit records them, the
 * subject naming the file: "ca.renew" (a renewal) or "ca.cert" (issued, or first seen by an older CA folder), each
 * with v=2 cert_serial, not_after, sha256 (of the DER). */
typedef struct {
    int64_t seq;
    char action[16];
    char cert_serial[DB_CERT_SERIAL_HEX_MAX];
    uint8_t sha256[32];
} db_cert_file_record;
/* Appends "ca.cert" for `file`, actor `actor`. */
CT_MUST_CHECK ct_err db_cert_file_record_add(ct_db *db, const char *actor, const char *file, const char *cert_serial,
                                             int64_t not_after, const uint8_t sha256[32]);
/* The newest record of `file`; CT_ERR_NOT_FOUND when there is none, CT_ERR_INTEGRITY for a malformed one. */
CT_MUST_CHECK ct_err db_cert_file_latest(ct_db *db, const char *file, db_cert_file_record *out);

/* ---- officers: security officers (may revoke) and auditors (read only), each with a client certificate ---- */
typedef enum { DB_ROLE_AUDITOR, DB_ROLE_OFFICER } db_role;
/* "auditor" / "officer"; CT_ERR_USAGE naming the choices for anything else. */
const char *db_role_name(db_role role);
CT_MUST_CHECK ct_err db_role_parse(const char *name, db_role *out);

typedef struct {
    int64_t id;
    char name[DB_NAME_MAX];
    db_role role;
    bool enabled;
    char cert_serial_hex[DB_CERT_SERIAL_HEX_MAX];
} db_officer;

/* Records an officer and its issued client certificate (`cert`, profile DB_PROFILE_OFFICER: in the certificates
 * table, not in the issuance log), audited, in one transaction. CT_ERR_EXISTS if the name or the certificate is
 * taken. */
CT_MUST_CHECK ct_err db_officer_add(ct_db *db, const char *name, db_role role, const db_cert_record *cert,
                                    const char *actor);
/* CT_ERR_NOT_FOUND (without a detail) when no officer holds this certificate; CT_ERR_DISABLED (with `out`
 * filled) when the officer's certificate is revoked: refused at once. */
CT_MUST_CHECK ct_err db_officer_find_by_cert(ct_db *db, const uint8_t cert_sha256[32], db_officer *out);
CT_MUST_CHECK ct_err db_officer_set_enabled(ct_db *db, const char *name, bool enabled, const char *actor);
/* Changes an officer's role in one transaction with its audit entry ("officer.role", v=2 role=...):
 * CT_ERR_NOT_FOUND for no such officer, CT_ERR_EXISTS when it has that role already (nothing recorded). */
CT_MUST_CHECK ct_err db_officer_set_role(ct_db *db, const char *name, db_role role, const char *actor);

/* ---- what officers read: certificate search, one certificate, report ---- */
#define DB_SEARCH_MAX_LIMIT 500
#define DB_STATUS_MAX 16
typedef struct {
    const char *device_serial;   /* each filter: NULL or "" for any; the device serial in any case */
    const char *cert_serial_hex; /* lower-case hex, as recorded */
    const char *station;
    const char *model;
    const char *status;          /* "valid", "superseded", "revoked" */
    int64_t order_id;            /* 0: any */
    int64_t from, to;            /* issued_at in [from, to) (Unix seconds); 0: unbounded */
    int64_t limit;               /* 1..DB_SEARCH_MAX_LIMIT */
    int64_t offset;              /* >= 0 */
} db_search;

typedef struct {
    char cert_serial_hex[DB_CERT_SERIAL_HEX_MAX];
    char device_serial[DB_SERIAL_MAX];
    char profile[DB_PROFILE_MAX];
    char subject[256];
    char station[DB_NAME_MAX]; /* "" for a renewal (issued to the device itself) */
    int64_t order_id;          /* 0 for a renewal */
    char model[DB_NAME_MAX];   /* the order's model, "" for a renewal */
    char status[DB_STATUS_MAX];
    int64_t issued_at, not_before, not_after;
    int64_t revoked_at;        /* 0 unless revoked */
    int reason;                /* RFC 5280 code, -1 unless revoked */
} db_cert_row;

/* The certificates matching every given filter, newest first: up to q->limit rows into `rows` (room for
 * q->limit), *n of them; *total (may be NULL) how many match in all. */
CT_MUST_CHECK ct_err db_cert_search(ct_db *db, const db_search *q, db_cert_row *rows, size_t *n, int64_t *total);
/* One certificate by serial with its DER (allocated: ct_buf_free) and the audit entry that recorded its
 * issuance (0 if none found). CT_ERR_NOT_FOUND with a detail. */
CT_MUST_CHECK ct_err db_cert_get(ct_db *db, const char *cert_serial_hex, db_cert_row *row, ct_buf *der,
                                 int64_t *audit_seq);

typedef enum {
    DB_REPORT_TOTALS,     /* n: issued, revoked, denied requests, revocation actions, denial entries */
    DB_REPORT_STATION,    /* name station; n: issued, revoked, denied requests, those counted past its budget of
                           * audited refusals (est.budget), denial entries */
    DB_REPORT_ORDER,      /* id order; name station; text model; n: serials, devices issued, revoked, open */
    DB_REPORT_DAY,        /* name "YYYY-MM-DD" (UTC); text station ("" for renewals); n: issued */
    DB_REPORT_REASON,     /* id RFC 5280 reason code; n: revoked certificates */
    DB_REPORT_DENIAL,     /* id audit seq, ts; name actor; text action; subject; detail; n: requests (newest first) */
    DB_REPORT_REVOCATION, /* id audit seq, ts; name actor; text action; subject; detail (newest first) */
    DB_REPORT__COUNT
} db_report_section;
/* How many rows a report section shows at most (the newest or largest first): db_report gives one more when there
 * are more, which tells a section cut from one with exactly that many. */
#define DB_REPORT_MAX_STATIONS 200
#define DB_REPORT_MAX_ORDERS 500
#define DB_REPORT_MAX_DAYS 1000
#define DB_REPORT_MAX_EVENTS 100
/* How many numbers (n) a report row has. Denied requests: one per refusal audited on its own, N per entry of counted
 * refusals ("N refused from ...", ca/ca_refusals.c); denial entries: audit entries. */
#define DB_REPORT_NUMBERS 5

typedef struct {
    db_report_section section;
    int64_t id, ts;
    char name[DB_AUDIT_TEXT_MAX];
    char text[DB_AUDIT_TEXT_MAX];
    char subject[DB_AUDIT_TEXT_MAX];
    char detail[DB_AUDIT_TEXT_MAX * 2];
    int64_t n[DB_REPORT_NUMBERS];
} db_report_row;

/* Issuance, revocation and denials with time (issued_at, audit ts) in [from, to) (0: unbounded); calls `cb`
 * per row, section by section in enum order, without the database lock held. */
typedef ct_err (*db_report_cb)(const db_report_row *row, void *arg);
CT_MUST_CHECK ct_err db_report(ct_db *db, int64_t from, int64_t to, db_report_cb cb, void *arg);

/* ---- leases (lease.c): one signer among several nodes on one database ---- */
#define DB_LEASE_HOLDER_MAX 128
#define DB_LEASE_SIGNER "signer" /* checkpoints, tree heads and CRLs */
typedef struct {
    const char *name;   /* DB_LEASE_SIGNER */
    const char *holder; /* this node's id */
    int64_t now_ms;     /* 0: the database's clock (ms since the epoch), the nodes' own never compared; else this */
    int64_t ttl_ms;     /* the lease lasts this long after each renewal */
    /* May be NULL: whether the holder named is known dead (its process gone on this host), so that its lease is
     * taken at once instead of at its expiry. */
    bool (*holder_dead)(void *arg, const char *holder);
    void *dead_arg;
    /* This process's take (db_lease_state.stamp of the take it holds; 0: none yet). Renewals, the fence and the
     * release match it, not the holder's name alone: two processes given one node id are two holders. */
    int64_t stamp;
} db_lease_request;
typedef struct {
    bool held;                           /* req->holder holds it now, until expires_ms */
    bool taken;                          /* ... and took it in this call (audited "lease.take") */
    char holder[DB_LEASE_HOLDER_MAX];    /* who holds it */
    char previous[DB_LEASE_HOLDER_MAX];  /* when taken: who held it before ("" for nobody) */
    int64_t expires_ms;
    int64_t stamp;                       /* when held: the take's stamp (each take's is above every earlier one's) */
    int64_t now_ms;                      /* the time the try was judged at (req->now_ms, or the database's) */
} db_lease_state;
/* Takes or renews the lease in one transaction: renewed when req->holder holds it by req->stamp's take (even
 * lapsed), taken when free, expired or its holder dead (audited "lease.take", actor the new holder, subject the
 * lease). Held under req->holder's name by another take (another process given the same node id, or this node
 * before a restart): not held until it expires, as another node's. */
CT_MUST_CHECK ct_err db_lease_take(ct_db *db, const db_lease_request *req, db_lease_state *out);
/* Lets the lease go at once (a clean stop): another node takes it at its next try. Only the take `stamp`'s. */
CT_MUST_CHECK ct_err db_lease_release(ct_db *db, const char *name, const char *holder, int64_t stamp);
/* From now on this handle writes a tree head or a checkpoint only while `holder` holds the lease `name` by the take
 * db_lease_take last made or renewed through this handle (checked in the write's own transaction, at the database's
 * clock): a node paused past its lease, whose in-memory deadline has not caught up yet, signs nothing once another
 * took over (CT_ERR_UNAVAILABLE). Set by serving nodes (before their first take); one-shot commands have none. */
CT_MUST_CHECK ct_err db_lease_fence(ct_db *db, const char *name, const char *holder);

/* The newest CRL the signer made of one issuing CA generation, kept for every node to serve. */
typedef struct {
    int64_t issuing_ca; /* db_issuing_ca.id */
    int64_t epoch;      /* the revocation epoch it covers (db_revocation_epoch, read before its list) */
    int64_t next_update;
    int64_t number, this_update; /* its cRLNumber and thisUpdate: db_crl_signed_put records them (not read back) */
    ct_buf der;         /* owned */
    bool wanted;        /* no CRL yet: a node asked the signer for one (db_crl_signed_want); der empty */
} db_signed_crl;
/* Keeps crl (replacing the generation's older one) only while `lease` names its holder, unexpired at
 * lease->now_ms; CT_ERR_UNAVAILABLE when it does not, or when the audit records a higher cRLNumber stored for that
 * generation (a CRL made before it, stored late). Audited in the same transaction ("crl.store", subject "issuing CA
 * ID": its number, thisUpdate and SHA-256), so that the newest stored CRL is known to whoever cannot use the token's
 * key: db_crl_stored_latest. */
CT_MUST_CHECK ct_err db_crl_signed_put(ct_db *db, const db_lease_request *lease, const db_signed_crl *crl);
/* CT_ERR_NOT_FOUND (without a detail) when none is kept or asked for; out->der allocated (ct_buf_free). */
CT_MUST_CHECK ct_err db_crl_signed_get(ct_db *db, int64_t issuing_ca, db_signed_crl *out);
/* Asks the signer for that generation's CRL (a node was asked for one it never made): kept CRLs are left as they
 * are. Any node may ask; only the lease holder signs. */
CT_MUST_CHECK ct_err db_crl_signed_want(ct_db *db, int64_t issuing_ca);
/* What the MACed audit records of generation `issuing_ca`'s stored CRLs, against which a stored one is judged
 * (ca_crls_stored_verify): the newest stored (its "crl.store" entry; number 0 when none is recorded: stored before
 * these entries were, or never) and the highest cRLNumber issued of its kind (revocation_state, which the state check
 * ties to the "crl.issue" entries). */
typedef struct {
    int64_t seq, number, this_update; /* the newest "crl.store" entry; all 0 when there is none */
    int64_t issued_max;
} db_crl_stored;
CT_MUST_CHECK ct_err db_crl_stored_latest(ct_db *db, int64_t issuing_ca, db_crl_issuer kind, db_crl_stored *out);

#endif
