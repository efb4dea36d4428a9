/* db backup: copies of the CA's SQLite database for `camtrust-ca backup` and `restore` (ca/ca_backup.c). SQLite's
 * online backup API takes a consistent snapshot while the CA serves (a WAL reader blocks no writer); the copy is
 * one self-contained file (rollback-journal mode, no -wal beside it). These work on database files by path, with
 * connections of their own, never on the CA's ct_db: the files they read may not (yet) be a CA's database. */
#ifndef CAMTRUST_DB_BACKUP_H
#define CAMTRUST_DB_BACKUP_H

#include "db.h"

/* What a database file holds, read without the CA's token (nothing here is verified: `restore` verifies). */
typedef struct {
    int64_t schema_version;      /* PRAGMA user_version: the migrations it has */
    int64_t audit_entries;       /* the audit chain's length (its newest seq) */
    int64_t log_size;            /* leaves of the issuance log */
    int64_t checkpoints;         /* checkpoints kept */
    int64_t checkpoint_size;     /* the newest one's tree size and audit entries (0 when none) */
    int64_t checkpoint_audit_entries;
} db_backup_info;

/* Copies the database at `src` (live, perhaps being written by a server) into the new file `dst` (which the caller
 * made empty, owner-only) in one step of the online backup API (one snapshot: issuance goes on meanwhile, and the
 * copy never restarts), then turns the copy into a single file (journal_mode=DELETE). */
CT_MUST_CHECK ct_err db_backup_write(const char *src, const char *dst);
/* PRAGMA integrity_check of the file at `path` (CT_ERR_INTEGRITY with SQLite's first finding; a file that is not a
 * database at all is CT_ERR_INTEGRITY too), then what it holds; refusals call the file `name`. The file is opened
 * read-write: give it a copy. */
CT_MUST_CHECK ct_err db_backup_check(const char *path, const char *name, db_backup_info *info);
/* Whether the audit of database `path` records the CA certificate file `file` (root.pem, ...): *recorded, and
 * whether its newest record ("ca.cert"/"ca.renew") has SHA-256 `sha256`: *matches. The CA's identity, until the
 * database names its CA itself. */
CT_MUST_CHECK ct_err db_backup_names_cert(const char *path, const char *file, const uint8_t sha256[32], bool *recorded,
                                          bool *matches);
/* The CA database `path` names (migration 13: its folder's ca-id) into `out` (DB_CA_ID_MAX); CT_ERR_NOT_FOUND when it
 * names none (a copy from before). */
CT_MUST_CHECK ct_err db_backup_ca_id(const char *path, char *out, size_t max);
/* The newest checkpoint kept in database `path` (its signed note, NUL-terminated: ct_buf_free); CT_ERR_NOT_FOUND
 * when it holds none. */
CT_MUST_CHECK ct_err db_backup_newest_checkpoint(const char *path, ct_buf *note);
/* The audit chain's head of database `path`: its length and its newest entry's hash (zeros for an empty chain). */
CT_MUST_CHECK ct_err db_backup_audit_head(const char *path, int64_t *entries, uint8_t hash[32]);
/* Folds the write-ahead log of database `path` into the file (wal_checkpoint(TRUNCATE)) and closes it, so that the
 * file alone holds everything: before it is replaced by a rename (a WAL left beside it would be replayed onto the
 * new file). CT_ERR_DB when another connection keeps the WAL from being folded. */
CT_MUST_CHECK ct_err db_backup_fold_wal(const char *path);

#endif
