/* db log: the issuance log. Every certificate the CA records is appended, in the same transaction as its row and
 * its audit event, as the next leaf of an RFC 9162 Merkle tree (leaf = the certificate's DER; leaf index =
 * append order from 0). Signed tree heads and checkpoints (signed by the CA in its token) are stored beside it,
 * audited. Tables log_leaves, log_tree_heads and log_checkpoints refuse UPDATE and DELETE through SQL;
 * db_log_verify (and the CA's checkpoint checks) catch the rest. */
#ifndef CAMTRUST_DB_LOG_H
#define CAMTRUST_DB_LOG_H

#include "../common/core/merkle.h"
#include "db.h"

typedef struct {
    int64_t id; /* 1, 2, ... in the order they were recorded */
    ct_tree_head head;
} db_tree_head;

/* How many leaves the log holds. */
CT_MUST_CHECK ct_err db_log_size(ct_db *db, uint64_t *size);
/* The leaf hashes [0, n) of the tree of the first n leaves, with n <= the log's size (CT_ERR_USAGE otherwise).
 * *out is malloc'd (free). Reads all of them (32 bytes per leaf): for checks of the whole log; proofs use
 * db_log_leaves_from through a chunk cache. */
CT_MUST_CHECK ct_err db_log_leaves(ct_db *db, uint64_t n, ct_merkle_hash **out);
/* Leaf hashes [from, from + *count) of the log as it is now: *count in = most wanted, out = how many there were. */
CT_MUST_CHECK ct_err db_log_leaves_from(ct_db *db, uint64_t from, ct_merkle_hash *out, uint64_t *count);
/* db_log_leaves_from as a ct_merkle_fetch_fn (arg: the ct_db), for chunk and tile caches over the log. */
CT_MUST_CHECK ct_err db_log_fetch(void *db, uint64_t from, uint64_t n, ct_merkle_hash *out, uint64_t *got);
/* The leaves [from, from + count) (each its certificate's DER), in order, to `fn`; the DER is valid during the
 * call only. CT_ERR_USAGE when the log ends before from + count; CT_ERR_INTEGRITY when a leaf or its certificate
 * is missing. For entry bundles (C2SP tlog-tiles): `count` is at most DB_LOG_ENTRIES_MAX. */
#define DB_LOG_ENTRIES_MAX 256
typedef CT_MUST_CHECK ct_err (*db_log_entry_fn)(void *arg, uint64_t index, const uint8_t *der, size_t len);
CT_MUST_CHECK ct_err db_log_entries(ct_db *db, uint64_t from, uint64_t count, db_log_entry_fn fn, void *arg);
/* A certificate's leaf index and its DER (the leaf; allocated into der). CT_ERR_NOT_FOUND if never issued here. */
CT_MUST_CHECK ct_err db_log_find(ct_db *db, const char *cert_serial_hex, uint64_t *index, ct_buf *der);

/* Records a signed tree head with its audit event ("log.sth"), in one transaction. Refuses (CT_ERR_USAGE) a
 * size beyond the log's, or smaller than the previous tree head's, or a timestamp before it. *id may be NULL. */
CT_MUST_CHECK ct_err db_log_tree_head_add(ct_db *db, const ct_tree_head *h, const char *actor, int64_t *id);
/* The newest tree head; CT_ERR_NOT_FOUND (no detail) when none was signed yet. */
CT_MUST_CHECK ct_err db_log_tree_head_latest(ct_db *db, db_tree_head *out);

/* ---- verification ---- */
/* Checks a tree head's signature: CT_OK, CT_ERR_INTEGRITY when it does not verify, anything else on failure. */
typedef ct_err (*db_tree_head_check)(const ct_tree_head *h, void *arg);

typedef struct {
    int64_t leaves;
    int64_t tree_heads;
    char reason[256]; /* the first divergence: "log leaf 17: hash does not match certificate 3a9f... (edited)" */
} db_log_report;

/* In one read snapshot: recomputes every leaf hash from its certificate row and checks that every certificate is
 * in the log exactly once and in issuance order; then recomputes the root of every tree head and checks its
 * signature with `check` (NULL: a tree head is a divergence, as nothing can check it). CT_ERR_INTEGRITY with the
 * first divergence (leaves before tree heads) in the report and as the error detail.
 * O(leaves + tree heads x log leaves). */
CT_MUST_CHECK ct_err db_log_verify(ct_db *db, db_tree_head_check check, void *arg, db_log_report *report);

/* ---- checkpoints (C2SP signed notes over the tree and the audit chain; ca/ca_log.c signs them) ---- */
#define DB_CHECKPOINT_MAX 8192 /* bytes of a stored note */
/* The audit chain's newest entry: its number (= how many there are) and hash; 0 and zeros when empty. */
CT_MUST_CHECK ct_err db_log_audit_head(ct_db *db, uint64_t *entries, uint8_t hash[32]);
/* The audit tree (a checkpoint's camtrust-audit-root, common/note/note.h): leaf i is audit entry number i + 1's
 * stored hash, leaf hash SHA-256(0x00 || hash). Its leaf hashes [from, from + *got) with *got <= n (fewer when the
 * chain is shorter), as a ct_merkle_fetch_fn (arg: the ct_db) for chunk caches over it. */
CT_MUST_CHECK ct_err db_log_audit_fetch(void *db, uint64_t from, uint64_t n, ct_merkle_hash *out, uint64_t *got);
/* The hash of audit entry number `seq`; CT_ERR_NOT_FOUND (no detail) when there is none. */
CT_MUST_CHECK ct_err db_log_audit_hash(ct_db *db, uint64_t seq, uint8_t hash[32]);
/* Whether the audit chain holds a change the newest checkpoint does not bind (true with no checkpoint and a
 * non-empty chain): an entry past its audit length, not a refusal, nor a checkpoint's or a cosignature's own. */
CT_MUST_CHECK ct_err db_log_audit_uncovered(ct_db *db, bool *uncovered);
/* Records a signed checkpoint with its audit event ("log.checkpoint"), in one transaction. Refuses
 * (CT_ERR_USAGE) a tree size beyond the log's or smaller than the previous checkpoint's. *id may be NULL. */
CT_MUST_CHECK ct_err db_log_checkpoint_add(ct_db *db, uint64_t tree_size, uint64_t audit_entries, const char *note,
                                           const char *actor, int64_t *id);
/* The newest checkpoint's note (allocated into `note`, NUL-terminated, len without it) and its tree size;
 * CT_ERR_NOT_FOUND (no detail) when none was signed yet. id and tree_size may be NULL. */
CT_MUST_CHECK ct_err db_log_checkpoint_latest(ct_db *db, int64_t *id, uint64_t *tree_size, ct_buf *note);
/* The first checkpoint recorded after checkpoint `after` (0: the first of all), as db_log_checkpoint_latest; for
 * walking them all without holding the database. CT_ERR_NOT_FOUND (no detail) past the last. */
CT_MUST_CHECK ct_err db_log_checkpoint_next(ct_db *db, int64_t after, int64_t *id, uint64_t *tree_size, ct_buf *note);

/* ---- witnesses' cosignatures of checkpoints ---- */
#define DB_COSIG_MAX 1024 /* bytes of a stored cosignature line */
/* Records witness `witness` (its verifier key)'s cosignature line of checkpoint `checkpoint_id` with its audit
 * event ("log.cosignature"), in one transaction. A witness's second cosignature of the same checkpoint changes
 * nothing (*added false). */
CT_MUST_CHECK ct_err db_log_cosignature_add(ct_db *db, int64_t checkpoint_id, const char *witness, uint64_t witness_time,
                                            const char *line, const char *actor, bool *added);
/* Appends the cosignature lines of checkpoint `checkpoint_id` (each ends in a newline), in the order received. */
CT_MUST_CHECK ct_err db_log_cosignatures(ct_db *db, int64_t checkpoint_id, ct_buf *lines);
/* The time (witness clock, seconds) of the newest cosignature by `witness` (its verifier key) of any checkpoint;
 * CT_ERR_NOT_FOUND (no detail) when it never cosigned. */
CT_MUST_CHECK ct_err db_log_cosignature_newest(ct_db *db, const char *witness, uint64_t *witness_time);

/* ---- witnesses' reports of an inconsistent log (witness_reports.c) ---- */
#define DB_WITNESS_REPORT_MAX 16384 /* bytes of a stored report */
typedef struct db_witness_report_s {
    int64_t id;
    int64_t received;      /* Unix time */
    char witness[256];     /* its name, "" when no configured witness cosigned the kept checkpoint */
    char kind[16];         /* "fork" or "rollback" */
    uint64_t kept_size, served_size;
    char reason[512];
} db_witness_report;
/* Records a report (the body as received, text) with its audit event ("log.witness_report"), in one
 * transaction; r->id is set. The same report again changes nothing (*added false, r->id the kept one's). */
CT_MUST_CHECK ct_err db_log_witness_report_add(ct_db *db, db_witness_report *r, const char *report, const char *actor,
                                               bool *added);
/* The newest `max` reports, newest first, to fn. */
typedef CT_MUST_CHECK ct_err (*db_witness_report_fn)(void *arg, const db_witness_report *r);
CT_MUST_CHECK ct_err db_log_witness_reports(ct_db *db, int max, db_witness_report_fn fn, void *arg);

#endif
