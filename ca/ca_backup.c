/* Backup and restore of a CA's SQLite database (`camtrust-ca backup`, `restore`), and the newest checkpoint the CA
 * keeps in its folder, outside the database (checkpoint.note).
 *
 * The attacker this is for is an operator who puts an old copy back: the copy is a whole, valid chain, so only a
 * checkpoint kept outside it shows that it is older. The CA writes each checkpoint it signs to checkpoint.note
 * (atomically, after the database has it); `serve` refuses to start on a database that does not extend it, and
 * signing refuses too, so the file never goes back. `restore` compares the copy with every checkpoint kept outside
 * it that it can reach (checkpoint.note, the database it replaces, and witnesses' or stations' files given with
 * --checkpoint), keeps the newest one (or one the copy contradicts) in checkpoint.note, and so leaves a rolled-back
 * CA refusing to serve until an officer accepts it (`restore --accept-rollback`, audited with both sizes). The
 * witnesses and stations still see the rollback themselves: this is the CA's own first line, for mistakes, not a
 * defence against whoever can write its folder.
 *
 * Restore never mixes two databases, whatever moment power is cut: the copy is checked and synced in a stage
 * folder beside the database; the database being replaced has its write-ahead log folded into its file first (a
 * WAL left beside it would be replayed onto the new file); then one rename puts the copy in its place, and the
 * folder is synced. Before the rename the old database is whole, after it the new one. */
#define _GNU_SOURCE /* flock, O_PATH */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../db/db_backup.h"
#include "ca_priv.h"

#define STAGE_SEP ".restore-"
#define COPY_CHUNK 65536
static const char k_sqlite_magic[16] = "SQLite format 3";

/* ---- the checkpoint the CA keeps in its folder ---- */

static ct_err kept_path(const ca *c, char *path, size_t max)
{
    return ct_path_join(path, max, c->cfg.dir, CA_KEPT_CHECKPOINT_FILE);
}

/* Reads and verifies a checkpoint note with this CA's checkpoint key; a refusal names the file. */
static ct_err note_load(const ca *c, const char *path, ct_buf *note, ct_checkpoint *cp)
{
    CT_GUARD_RET(ct_file_read(path, CT_NOTE_MAX, note));
    ct_err rc = ct_checkpoint_open(note->data, note->len, &c->note_vkey, cp);
    if (rc != CT_OK) {
        char why[256];
        CT_GUARD_RET(ct_strlcpy(why, sizeof why, *ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
        return ct_fail(CT_ERR_INTEGRITY, "%s is not a checkpoint of this CA's log: %s", path, why);
    }
    return CT_OK;
}

/* Whether the database extends checkpoint `cp` (kept in `where`): CT_ERR_INTEGRITY naming it otherwise. */
static ct_err extends_named(ca *c, const char *where, const ct_checkpoint *cp)
{
    ct_err rc = ca_log_extends(c, cp);
    if (rc != CT_ERR_INTEGRITY) return rc;
    char why[256];
    CT_GUARD_RET(ct_strlcpy(why, sizeof why, ct_err_detail()));
    return ct_fail(CT_ERR_INTEGRITY, "the checkpoint kept in %s (size %llu, audit entries %llu): %s", where,
                   (unsigned long long)cp->size, (unsigned long long)cp->audit_entries, why);
}

ct_err ca_kept_checkpoint_check(ca *c, ca_checkpoint_info *kept, bool *present)
{
    ct_err rc = CT_OK;
    char path[CA_PATH_MAX], why[256];
    ct_buf note = CT_BUF_INIT;
    ct_checkpoint cp = {0};
    if (present) *present = false;
    CT_GUARD(kept_path(c, path, sizeof path));
    if (!ct_file_exists(path)) goto cleanup;
    if (present) *present = true;
    CT_GUARD(note_load(c, path, &note, &cp));
    if (kept) *kept = (ca_checkpoint_info){cp.size, cp.audit_entries, cp.time_ms};
    rc = ca_log_extends(c, &cp);
    if (rc == CT_ERR_INTEGRITY) { /* the folder's own file, by its name: the line stays short enough to say what to do */
        CT_GUARD(ct_strlcpy(why, sizeof why, ct_err_detail()));
        rc = ct_fail(CT_ERR_INTEGRITY, "the database is older than %s (size %llu, audit entries %llu): %s; after "
                                       "review: restore --accept-rollback", CA_KEPT_CHECKPOINT_FILE,
                     (unsigned long long)cp.size, (unsigned long long)cp.audit_entries, why);
    }
cleanup:
    ct_buf_free(&note);
    return rc;
}

ct_err ca_kept_checkpoint_write(ca *c, const char *note)
{
    char path[CA_PATH_MAX];
    CT_GUARD_RET(kept_path(c, path, sizeof path));
    return ct_file_write_atomic(path, note, strlen(note), 0644);
}

ct_err ca_kept_checkpoint_start(ca *c)
{
    bool present = false;
    ct_buf note = CT_BUF_INIT;
    CT_GUARD_RET(ca_kept_checkpoint_check(c, NULL, &present));
    if (present) return CT_OK;
    /* A folder made before the CA kept one: from now on, starting from the database's newest. */
    ct_err rc = db_log_checkpoint_latest(c->db, NULL, NULL, &note);
    if (rc == CT_ERR_NOT_FOUND) return CT_OK;
    const char *s = NULL;
    if (rc == CT_OK) rc = ct_buf_cstr(&note, &s);
    if (rc == CT_OK) rc = ca_kept_checkpoint_write(c, s);
    ct_buf_free(&note);
    return rc;
}

ct_err ca_rollback_accept(ca *c, ca_checkpoint_info *kept, ca_checkpoint_info *now, bool *accepted)
{
    ct_err rc = CT_OK;
    char path[CA_PATH_MAX], aside[CA_PATH_MAX + 64], hex[65], detail[512];
    uint8_t hash[32];
    uint64_t size = 0, entries = 0;
    ct_buf note = CT_BUF_INIT;
    *accepted = false;
    rc = ca_kept_checkpoint_check(c, kept, NULL);
    if (rc != CT_ERR_INTEGRITY) return rc; /* CT_OK: nothing to accept */
    ct_err_clear();
    rc = CT_OK;
    CT_GUARD(kept_path(c, path, sizeof path));
    CT_GUARD(ct_file_read(path, CT_NOTE_MAX, &note));
    CT_GUARD(ct_sha256(note.data, note.len, hash));
    CT_GUARD(ct_hex_encode(hash, sizeof hash, hex, sizeof hex));
    CT_GUARD(db_log_size(c->db, &size));
    CT_GUARD(db_log_audit_head(c->db, &entries, hash));
    CT_GUARD(ct_snprintf(detail, sizeof detail,
                         "v=2 kept_size=%llu kept_audit_entries=%llu kept_sha256=%s log_size=%llu audit_entries=%llu",
                         (unsigned long long)kept->tree_size, (unsigned long long)kept->audit_entries, hex,
                         (unsigned long long)size, (unsigned long long)entries));
    /* Recorded first: whatever happens next, the acceptance is in the chain the next checkpoint signs. */
    CT_GUARD(db_audit_append(c->db, "cli", "ca.rollback_accept", CA_KEPT_CHECKPOINT_FILE, "ok", detail));
    /* The superseded checkpoint stays beside, as evidence of what the log was. */
    CT_GUARD(ct_snprintf(aside, sizeof aside, "%s.rolled-back-%lld", path, (long long)ct_now_ms()));
    CT_ENSURE_MSG(rename(path, aside) == 0, CT_ERR_IO, "cannot rename %s: %s", path, strerror(errno));
    CT_GUARD(ct_file_sync_dir(path));
    CT_GUARD(ca_log_sth(c, "cli", NULL)); /* a checkpoint of the log as it is, kept in the folder from now on */
    CT_GUARD(db_log_size(c->db, &size));
    CT_GUARD(db_log_audit_head(c->db, &entries, hash));
    *now = (ca_checkpoint_info){size, entries, 0};
    *accepted = true;
cleanup:
    ct_buf_free(&note);
    return rc;
}

/* ---- serving and restoring exclude each other ---- */

/* A file root has just made (O_EXCL) in the folder `dir` (its stat) goes to the folder's owner, as SQLite gives its
 * journal and WAL files the database's: a command run as root (restore) left a root-owned 0600 serving.lock (and
 * database) that the folder's own server (deploy/: User=camtrust) could not open, and it refused to start. Only a
 * file this process made: one already there may be a hard link the folder's owner put there to a file of root's
 * elsewhere, whose link here it can remove between our open and our fstat (one link left: it looks like ours). */
static ct_err give_made_to_folder_owner(int fd, const char *path, const struct stat *dir)
{
    if (geteuid() != 0) return CT_OK; /* a file we make is ours, and only root may give it away */
    CT_ENSURE_RET(fchown(fd, dir->st_uid, dir->st_gid) == 0, ct_fail(CT_ERR_IO, "cannot give %s to the folder's owner "
                                                                     "(uid %ld): %s", path, (long)dir->st_uid,
                                                                     strerror(errno)));
    return CT_OK;
}

ct_err ca_file_make_owned_at(int dir_fd, const char *name, const char *path, int flags, unsigned mode, int *fd)
{
    ct_err rc = CT_OK;
    struct stat d;
    bool folder = (flags & O_DIRECTORY) != 0;
    *fd = -1;
    /* A folder made (mkdir is exclusive) is opened again by name, no link followed: what its owner may have put in
     * its place meanwhile is a folder it could move there, so its own already. */
    if (folder && mkdirat(dir_fd, name, (mode_t)mode) != 0)
        return ct_fail(errno == EEXIST ? CT_ERR_EXISTS : CT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    *fd = folder ? openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                 : openat(dir_fd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    CT_ENSURE_MSG(*fd >= 0, CT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    CT_ENSURE_MSG(fstat(dir_fd, &d) == 0, CT_ERR_IO, "cannot stat the folder of %s: %s", path, strerror(errno));
    CT_GUARD(give_made_to_folder_owner(*fd, path, &d));
cleanup:
    if (rc != CT_OK && *fd >= 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

/* The folder `path` is in, opened once (O_PATH); *name: its last name (in `base`). */
static ct_err folder_of(const char *path, char base[CA_PATH_MAX], const char **name, int *dir_fd)
{
    char parent[CA_PATH_MAX];
    CT_GUARD_RET(ct_strlcpy(parent, sizeof parent, path));
    CT_GUARD_RET(ct_strlcpy(base, CA_PATH_MAX, path));
    *name = basename(base);
    *dir_fd = open(dirname(parent), O_PATH | O_DIRECTORY | O_CLOEXEC);
    CT_ENSURE_RET(*dir_fd >= 0, ct_fail(CT_ERR_IO, "cannot open the folder of %s: %s", path, strerror(errno)));
    return CT_OK;
}

ct_err ca_file_make_owned(const char *path, int flags, unsigned mode, int *fd)
{
    char base[CA_PATH_MAX];
    const char *name = NULL;
    int dir_fd = -1;
    *fd = -1;
    CT_GUARD_RET(folder_of(path, base, &name, &dir_fd));
    ct_err rc = ca_file_make_owned_at(dir_fd, name, path, flags, mode, fd);
    close(dir_fd);
    return rc;
}

/* Writes all of data to fd (the file `path`). */
static ct_err write_all(int fd, const void *data, size_t len, const char *path)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const uint8_t *)data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        CT_ENSURE_RET(w > 0, ct_fail(CT_ERR_IO, "cannot write %s: %s", path, strerror(errno)));
        off += (size_t)w;
    }
    return CT_OK;
}

ct_err ca_file_write_owned_at(int dir_fd, const char *name, const char *path, const void *data, size_t len,
                              unsigned mode)
{
    ct_err rc = CT_OK;
    char tmp[CA_PATH_MAX + 32], tmp_path[CA_PATH_MAX + 32];
    int fd = -1, sync_fd = -1;
    /* NAME.tmp.PID, as ct_file_write_atomic's: what a killed command left is removed by the next (ct_stale_remove).
     * Made, renamed and synced in the folder opened once: a folder on the way that its owner swaps for a link
     * meanwhile does not move root's rename elsewhere. */
    CT_GUARD_RET(ct_snprintf(tmp, sizeof tmp, "%s.tmp.%ld", name, (long)getpid()));
    CT_GUARD_RET(ct_snprintf(tmp_path, sizeof tmp_path, "%s.tmp.%ld", path, (long)getpid()));
    (void)unlinkat(dir_fd, tmp, 0); /* ours from a crash under the same pid: neither its mode nor a link is followed */
    CT_GUARD(ca_file_make_owned_at(dir_fd, tmp, tmp_path, O_WRONLY, mode, &fd));
    CT_GUARD(write_all(fd, data, len, tmp_path));
    CT_ENSURE_MSG(fsync(fd) == 0, CT_ERR_IO, "cannot sync %s: %s", tmp_path, strerror(errno));
    CT_ENSURE_MSG(close(fd) == 0, CT_ERR_IO, "cannot close %s", tmp_path);
    fd = -1;
    CT_ENSURE_MSG(renameat(dir_fd, tmp, dir_fd, name) == 0, CT_ERR_IO, "cannot rename %s: %s", tmp_path,
                  strerror(errno));
    sync_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CT_ENSURE_MSG(sync_fd >= 0 && fsync(sync_fd) == 0, CT_ERR_IO, "cannot sync the folder of %s", path);
cleanup:
    if (fd >= 0) close(fd);
    if (sync_fd >= 0) close(sync_fd);
    if (rc != CT_OK) (void)unlinkat(dir_fd, tmp, 0);
    return rc;
}

ct_err ca_file_write_owned(const char *path, const void *data, size_t len, unsigned mode)
{
    char base[CA_PATH_MAX];
    const char *name = NULL;
    int dir_fd = -1;
    CT_GUARD_RET(folder_of(path, base, &name, &dir_fd));
    ct_err rc = ca_file_write_owned_at(dir_fd, name, path, data, len, mode);
    close(dir_fd);
    return rc;
}

/* Why `path` (in `dir`) cannot be opened, and the cure when it is not the folder owner's (an older build's root). */
static ct_err open_refused(const char *path, const char *dir, int err)
{
    struct stat d, f;
    if (err == EACCES && stat(dir, &d) == 0 && stat(path, &f) == 0 && f.st_uid != d.st_uid)
        return ct_fail(CT_ERR_CONFIG, "cannot open %s: %s (it belongs to uid %ld, the folder to uid %ld: give it to "
                       "the folder's owner, or remove it while no server runs)", path, strerror(err),
                       (long)f.st_uid, (long)d.st_uid);
    return ct_fail(CT_ERR_CONFIG, "cannot open %s: %s", path, strerror(err));
}

/* One flock of the serving lock on the file `name` of dir (made when `make`); *fd -1 when another holds it. */
static ct_err lock_one(const char *dir, const char *name, bool make, bool restore, int *fd)
{
    char path[CA_PATH_MAX];
    struct stat d;
    bool made = false;
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, name));
    /* Made in, and given to the owner of, the one folder opened here (its name may be swapped for a link meanwhile);
     * no link followed: root may be the one opening it. */
    int dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC); /* (no read permission needed, as before) */
    if (dir_fd < 0) return open_refused(path, dir, errno);
    if (make) {
        *fd = openat(dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        made = *fd >= 0;
        if (*fd < 0 && errno == EEXIST) *fd = openat(dir_fd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    } else {
        *fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    }
    ct_err rc = *fd < 0 ? open_refused(path, dir, errno) : CT_OK;
    if (make) ct_failpoint_hold("lock:opened"); /* tests: the folder's owner changes the name meanwhile */
    if (rc == CT_OK && made)
        rc = fstat(dir_fd, &d) == 0 ? give_made_to_folder_owner(*fd, path, &d)
                                    : ct_fail(CT_ERR_IO, "cannot stat %s: %s", dir, strerror(errno));
    close(dir_fd);
    if (rc != CT_OK) {
        if (*fd >= 0) close(*fd);
        *fd = -1;
        return rc;
    }
    if (flock(*fd, (restore ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) return CT_OK;
    close(*fd);
    *fd = -1;
    return CT_OK;
}

ct_err ca_serving_lock(const char *dir, bool restore, ca_folder_lock **out)
{
    ct_err rc = CT_OK;
    ca_folder_lock *l = calloc(1, sizeof *l);
    CT_ENSURE_RET(l, CT_ERR_NOMEM);
    l->lock_fd = l->conf_fd = -1;
    /* The config first: a folder without one (not a CA's yet) is refused before serving.lock is made in it, which
     * init would then refuse as not empty. */
    CT_GUARD(lock_one(dir, CA_CONFIG_FILE, false, restore, &l->conf_fd));
    if (l->conf_fd >= 0) CT_GUARD(lock_one(dir, CA_SERVING_LOCK_FILE, true, restore, &l->lock_fd));
    CT_ENSURE(l->lock_fd >= 0 && l->conf_fd >= 0,
              ct_fail(CT_ERR_UNAVAILABLE, restore ? "%s is being served: stop its server first"
                                                  : "%s is being restored or migrated: serve after that", dir));
    *out = l;
    l = NULL;
cleanup:
    ca_folder_unlock(l);
    return rc;
}

void ca_folder_unlock(ca_folder_lock *l)
{
    if (!l) return;
    if (l->lock_fd >= 0) close(l->lock_fd);
    if (l->conf_fd >= 0) close(l->conf_fd);
    free(l);
}

/* ---- backup ---- */

/* The folder's device root (the CA's identity, for the operator to compare) as SHA-256 hex. */
static ct_err root_sha256(const char *dir, const char *file, uint8_t hash[32])
{
    char path[CA_PATH_MAX];
    ct_buf der = CT_BUF_INIT;
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, file));
    ct_err rc = ca_read_cert_file(path, &der);
    if (rc == CT_OK) rc = ct_sha256(der.data, der.len, hash);
    ct_buf_free(&der);
    return rc;
}

/* Syncs a file's data (the copy before its rename). */
static ct_err file_sync(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CT_ENSURE_RET(fd >= 0, ct_fail(CT_ERR_IO, "cannot open %s: %s", path, strerror(errno)));
    int r = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return r ? ct_fail(CT_ERR_IO, "cannot sync %s: %s", path, strerror(r)) : CT_OK;
}

/* Whether `out` names the live database or one of SQLite's files beside it: the backup's rename would put a copy
 * in its place under a running server, whose writes would then go to a file no longer in the folder. By the folder
 * each resolves to (a relative or linked --out included) and by the file itself when it exists. */
static ct_err out_not_database(const char *db_path, const char *out)
{
    static const char *const k_suffix[] = {"", "-wal", "-shm", "-journal"};
    char out_dir[CA_PATH_MAX], db_dir[CA_PATH_MAX], out_base[CA_PATH_MAX], db_base[CA_PATH_MAX], name[CA_PATH_MAX];
    char out_real[PATH_MAX], db_real[PATH_MAX];
    struct stat so, sd;
    CT_ENSURE_RET(stat(out, &so) != 0 || stat(db_path, &sd) != 0 || so.st_dev != sd.st_dev || so.st_ino != sd.st_ino,
                  ct_fail(CT_ERR_USAGE, "--out %s is the CA's live database: write the backup elsewhere", out));
    CT_GUARD_RET(ct_strlcpy(out_dir, sizeof out_dir, out));
    CT_GUARD_RET(ct_strlcpy(db_dir, sizeof db_dir, db_path));
    CT_GUARD_RET(ct_strlcpy(out_base, sizeof out_base, out));
    CT_GUARD_RET(ct_strlcpy(db_base, sizeof db_base, db_path));
    if (!realpath(dirname(out_dir), out_real) || !realpath(dirname(db_dir), db_real) || strcmp(out_real, db_real) != 0)
        return CT_OK; /* another folder (or none yet: the rename fails on its own) */
    for (size_t i = 0; i < sizeof k_suffix / sizeof k_suffix[0]; i++) {
        CT_GUARD_RET(ct_snprintf(name, sizeof name, "%s%s", basename(db_base), k_suffix[i]));
        CT_ENSURE_RET(strcmp(basename(out_base), name) != 0,
                      ct_fail(CT_ERR_USAGE, "--out %s is the CA's live database%s: write the backup elsewhere", out,
                              i ? " (one of its files)" : ""));
    }
    return CT_OK;
}

ct_err ca_backup(const char *dir, const char *out, ca_backup_summary *s)
{
    ct_err rc = CT_OK;
    ca_settings *cfg = calloc(1, sizeof *cfg);
    char tmp[CA_PATH_MAX + 32], journal[CA_PATH_MAX + 48], vkey[CA_PATH_MAX], parent[CA_PATH_MAX], base[CA_PATH_MAX];
    char real_dir[PATH_MAX];
    ct_buf note = CT_BUF_INIT;
    bool made = false;
    memset(s, 0, sizeof *s);
    CT_ENSURE(cfg, CT_ERR_NOMEM);
    CT_ENSURE_MSG(out && *out, CT_ERR_USAGE, "--out FILE is required");
    CT_GUARD(ca_settings_load(dir, cfg));
    CT_ENSURE_MSG(!ca_db_is_pg(cfg), CT_ERR_USAGE, "%s keeps its records in PostgreSQL: back them up with pg_dump or "
                                                   "pg_basebackup (README: Backup and restore)", dir);
    CT_ENSURE_MSG(ct_file_exists(cfg->db_path), CT_ERR_CONFIG, "%s is not initialised: nothing to back up", dir);
    CT_GUARD(out_not_database(cfg->db_path, out));
    CT_GUARD(root_sha256(dir, ca_key_cert_file[CA_KEY_DEVICE_ROOT], s->root_sha256));
    CT_GUARD(ct_strlcpy(parent, sizeof parent, out));
    CT_GUARD(ct_strlcpy(base, sizeof base, out));
    const char *out_dir = dirname(parent), *out_name = basename(base);
    CT_GUARD(ct_stale_remove(out_dir, out_name, ".tmp.")); /* what killed backups left */
    /* Named by its folder's links resolved now (the operator's own, say a linked backup disk): SQLite opens it
     * following none (db_backup_write), which the folder's owner could have swapped in meanwhile */
    CT_ENSURE_MSG(realpath(out_dir, real_dir), CT_ERR_IO, "cannot find the folder of %s: %s", out, strerror(errno));
    CT_GUARD(ct_snprintf(tmp, sizeof tmp, "%s/%s.tmp.%ld", real_dir, out_name, (long)getpid()));
    (void)unlink(tmp); /* ours from a crash under the same pid: neither its mode nor a link is followed */
    /* ... and its SQLite journal: left hot beside it, it would be rolled back into this copy */
    CT_GUARD(ct_snprintf(journal, sizeof journal, "%s-journal", tmp));
    (void)unlink(journal);
    /* Owner only from the start; made as root, the folder's owner's (and so is SQLite's journal beside it) */
    int fd = -1;
    CT_GUARD(ca_file_make_owned(tmp, O_WRONLY, 0600, &fd));
    made = true;
    close(fd);
    ct_failpoint_hold("backup:temp-made"); /* tests: the folder's owner swaps the temporary for a link meanwhile */
    CT_GUARD(db_backup_write(cfg->db_path, tmp));
    CT_GUARD(db_backup_check(tmp, tmp, &s->db));
    CT_GUARD(file_sync(tmp));
    /* no link followed: the folder may be another user's, who could have put one in its place */
    CT_ENSURE_MSG(fchmodat(AT_FDCWD, tmp, 0600, AT_SYMLINK_NOFOLLOW) == 0, CT_ERR_IO, "cannot make %s private: %s", tmp,
                  strerror(errno));
    ct_failpoint("backup:synced");
    CT_ENSURE_MSG(rename(tmp, out) == 0, CT_ERR_IO, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
    made = false;
    CT_GUARD(ct_file_sync_dir(out));
    /* The newest checkpoint's time, from its signed note (verified with the folder's log.vkey when it has one). */
    if (s->db.checkpoints > 0 && db_backup_newest_checkpoint(out, &note) == CT_OK) {
        ct_note_verifier v;
        ct_checkpoint cp;
        if (ct_path_join(vkey, sizeof vkey, dir, CA_LOG_VKEY_FILE) == CT_OK && ct_note_verifier_load(vkey, &v) == CT_OK &&
            ct_checkpoint_open(note.data, note.len, &v, &cp) == CT_OK)
            s->checkpoint_time_ms = cp.time_ms;
        ct_err_clear();
    }
cleanup:
    if (made) (void)unlink(tmp);
    ct_buf_free(&note);
    free(cfg);
    return rc;
}

/* ---- restore ---- */

struct ca_restore {
    ca_settings cfg;
    ca_folder_lock *lock;
    char stage[CA_PATH_MAX + 32];  /* folder beside the database */
    char staged[CA_PATH_MAX + 64]; /* the copy in it */
    char from[CA_PATH_MAX];
    db_backup_info info;
    bool committed;
};

/* Copies `from` to the new file `name` (`to`) of the folder stage_fd (owner only: the owner of the stage it goes in,
 * the CA folder's) and syncs it. */
static ct_err copy_file(const char *from, int stage_fd, const char *name, const char *to)
{
    ct_err rc = CT_OK;
    uint8_t *buf = malloc(COPY_CHUNK);
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1;
    CT_ENSURE(buf, CT_ERR_NOMEM);
    CT_ENSURE_MSG(in >= 0, CT_ERR_IO, "cannot open %s: %s", from, strerror(errno));
    CT_GUARD(ca_file_make_owned_at(stage_fd, name, to, O_WRONLY, 0600, &out)); /* as root: the folder owner's */
    for (;;) {
        ssize_t n = read(in, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR) continue;
        CT_ENSURE_MSG(n >= 0, CT_ERR_IO, "cannot read %s: %s", from, strerror(errno));
        if (n == 0) break;
        CT_GUARD(write_all(out, buf, (size_t)n, to));
    }
    CT_ENSURE_MSG(fsync(out) == 0, CT_ERR_IO, "cannot sync %s: %s", to, strerror(errno));
cleanup:
    if (in >= 0) close(in);
    if (out >= 0 && close(out) != 0 && rc == CT_OK) rc = ct_fail(CT_ERR_IO, "cannot close %s", to);
    free(buf);
    return rc;
}

/* A SQLite file by its first 16 bytes, and alone: a copy whose WAL lies beside it is not whole. */
static ct_err backup_file_check(const char *from)
{
    char head[16], wal[CA_PATH_MAX + 8];
    struct stat st;
    int fd = open(from, O_RDONLY | O_CLOEXEC);
    CT_ENSURE_RET(fd >= 0, ct_fail(CT_ERR_USAGE, "cannot open %s: %s", from, strerror(errno)));
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    CT_ENSURE_RET(n == (ssize_t)sizeof head && memcmp(head, k_sqlite_magic, sizeof head) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "%s is not a SQLite database (a camtrust-ca backup file)", from));
    CT_GUARD_RET(ct_snprintf(wal, sizeof wal, "%s-wal", from));
    CT_ENSURE_RET(stat(wal, &st) != 0 || st.st_size == 0,
                  ct_fail(CT_ERR_USAGE, "%s has a write-ahead log beside it (%s): restore a copy made by camtrust-ca "
                                        "backup (or sqlite3 .backup), not the files of a live database", from, wal));
    return CT_OK;
}

/* Until the database names its CA itself: the roots its audit records must be this folder's, and its newest
 * checkpoint signed by this CA's checkpoint key (two CAs under one vault share their roots, never that key). */
static ct_err identity_check(ca_restore *r)
{
    static const ca_key_role roots[] = {CA_KEY_DEVICE_ROOT, CA_KEY_OPS_ROOT};
    char vkey[CA_PATH_MAX], mine[DB_CA_ID_MAX], theirs[DB_CA_ID_MAX];
    ct_note_verifier v;
    ct_checkpoint cp;
    ct_buf note = CT_BUF_INIT;
    /* The database names its CA (migration 13): that first, when both have it. */
    ct_err rc = db_backup_ca_id(r->staged, theirs, sizeof theirs);
    if (rc == CT_OK && ca_id_read(r->cfg.dir, false, mine) == CT_OK)
        CT_ENSURE_RET(strcmp(mine, theirs) == 0, ct_fail(CT_ERR_INTEGRITY, "%s is another CA's database: it names CA "
                                                         "%s, %s is CA %s", r->from, theirs, r->cfg.dir, mine));
    CT_ENSURE_RET(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    ct_err_clear();
    CT_GUARD_RET(ct_path_join(vkey, sizeof vkey, r->cfg.dir, CA_LOG_VKEY_FILE));
    rc = db_backup_newest_checkpoint(r->staged, &note);
    if (rc == CT_OK && ct_file_exists(vkey)) {
        rc = ct_note_verifier_load(vkey, &v);
        if (rc == CT_OK && ct_checkpoint_open(note.data, note.len, &v, &cp) != CT_OK)
            rc = ct_fail(CT_ERR_INTEGRITY, "%s is another CA's database: its checkpoints are not signed by the key of "
                                           "%s", r->from, vkey);
    }
    ct_buf_free(&note);
    if (rc == CT_ERR_NOT_FOUND) rc = CT_OK; /* a CA from before checkpoints: the roots and the audit's MACs decide */
    CT_GUARD_RET(rc);
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        const char *file = ca_key_cert_file[roots[i]];
        uint8_t want[32];
        bool recorded = false, matches = false;
        CT_GUARD_RET(root_sha256(r->cfg.dir, file, want));
        CT_GUARD_RET(db_backup_names_cert(r->staged, file, want, &recorded, &matches));
        /* A copy older than these records has none: the audit's MACs (this CA's token key) decide below. */
        CT_ENSURE_RET(!recorded || matches, ct_fail(CT_ERR_INTEGRITY, "%s is another CA's database: its %s is not %s/%s",
                                                    r->from, file, r->cfg.dir, file));
    }
    return CT_OK;
}

ct_err ca_restore_begin(const char *dir, const char *from, ca_restore **out)
{
    ct_err rc = CT_OK;
    char parent[CA_PATH_MAX], base[CA_PATH_MAX];
    ca_restore *r = calloc(1, sizeof *r);
    CT_ENSURE_RET(r, CT_ERR_NOMEM);
    *out = r;
    CT_ENSURE_MSG(from && *from, CT_ERR_USAGE, "--from FILE is required");
    CT_GUARD(ct_strlcpy(r->from, sizeof r->from, from));
    CT_GUARD(ca_settings_load(dir, &r->cfg));
    CT_ENSURE_MSG(!ca_db_is_pg(&r->cfg), CT_ERR_USAGE, "%s keeps its records in PostgreSQL: restore them with "
                  "pg_restore or PostgreSQL's recovery, then audit verify (README: Backup and restore)", dir);
    CT_GUARD(ca_serving_lock(dir, true, &r->lock));
    CT_GUARD(backup_file_check(from));
    CT_GUARD(ct_strlcpy(parent, sizeof parent, r->cfg.db_path));
    CT_GUARD(ct_strlcpy(base, sizeof base, r->cfg.db_path));
    CT_GUARD(ct_strlcpy(parent, sizeof parent, dirname(parent)));
    CT_GUARD(ct_stale_remove(parent, "", STAGE_SEP)); /* what killed restores left */
    CT_GUARD(ct_snprintf(r->stage, sizeof r->stage, "%s/" STAGE_SEP "%ld", parent, (long)getpid()));
    /* Made as root, the folder's owner's: a killed restore's stage is removed by the next, also one not run as root */
    int stage_fd = -1;
    CT_GUARD(ca_file_make_owned(r->stage, O_DIRECTORY, 0700, &stage_fd));
    ct_failpoint_hold("restore:stage-made"); /* tests: the folder's owner swaps the stage for a link meanwhile */
    /* The copy goes in the stage made, not wherever its name leads by now: the stage is its owner's to rename */
    rc = ct_snprintf(r->staged, sizeof r->staged, "%s/%s", r->stage, basename(base));
    if (rc == CT_OK) rc = copy_file(from, stage_fd, basename(base), r->staged);
    close(stage_fd);
    CT_GUARD(rc);
    rc = db_backup_check(r->staged, from, &r->info);
    if (rc == CT_ERR_DB) rc = ct_fail(CT_ERR_INTEGRITY, "%s", ct_err_detail()); /* its content, not our database */
    CT_GUARD(rc);
    CT_GUARD(identity_check(r));
cleanup:
    return rc;
}

const char *ca_restore_staged(const ca_restore *r) { return r->staged; }
const db_backup_info *ca_restore_info(const ca_restore *r) { return &r->info; }

/* One checkpoint kept outside the copy. */
typedef struct {
    char where[CA_PATH_MAX + 32];
    ct_buf note;
    ct_checkpoint cp;
    bool extended;
} outside;

static bool newer(const ct_checkpoint *a, const ct_checkpoint *b)
{
    return a->size > b->size || (a->size == b->size && a->audit_entries > b->audit_entries);
}

/* Compares the staged copy with one outside checkpoint and says so on `out`. */
static ct_err compare_one(ca *staged, outside *o, FILE *out, bool *rolled_back)
{
    ct_err rc = extends_named(staged, o->where, &o->cp);
    o->extended = rc == CT_OK;
    if (rc == CT_OK)
        fprintf(out, "checkpoint kept in %s extended: size %llu, audit entries %llu\n", o->where,
                (unsigned long long)o->cp.size, (unsigned long long)o->cp.audit_entries);
    else if (rc == CT_ERR_INTEGRITY) {
        fprintf(out, "ROLLED BACK: %s\n", ct_err_detail());
        *rolled_back = true;
        rc = CT_OK;
    }
    return rc;
}

/* The database replaced, by its audit chain: what it recorded after its newest checkpoint (a revocation, a station or
 * officer disabled since the signer's last tick, or by a command while no server ran) is in no checkpoint yet, and a
 * copy from before it would undo it unseen. The copy must hold the replaced chain's head; unless the officer accepts (recorded in the
 * copy's chain before it is put in place), nothing is restored. */
static ct_err replaced_head_check(const ca_restore *r, ca *staged, bool accept, FILE *out)
{
    int64_t theirs = 0;
    uint8_t head[32], ours[32];
    char hex[65], why[256], detail[256];
    if (!ct_file_exists(r->cfg.db_path)) return CT_OK;
    ct_err rc = db_backup_audit_head(r->cfg.db_path, &theirs, head);
    if (rc != CT_OK) { /* a damaged database is what one restores over: said, not fatal */
        fprintf(out, "the database replaced (%s): no audit chain read from it (%s)\n", r->cfg.db_path,
                *ct_err_detail() ? ct_err_detail() : ct_err_message(rc));
        ct_err_clear();
        return CT_OK;
    }
    int64_t copy = r->info.audit_entries;
    if (theirs == 0) return CT_OK;
    if (theirs <= copy) {
        CT_GUARD_RET(db_log_audit_hash(staged->db, (uint64_t)theirs, ours));
        if (memcmp(ours, head, sizeof head) == 0) return CT_OK;
        CT_GUARD_RET(ct_snprintf(why, sizeof why, "the database replaced has audit entry %lld unlike the copy's "
                                 "(another history)", (long long)theirs));
    } else {
        CT_GUARD_RET(ct_snprintf(why, sizeof why, "the database replaced has %lld audit entries, the copy %lld: "
                                 "restoring it undoes the last %lld (revocations, stations or officers disabled...)",
                                 (long long)theirs, (long long)copy, (long long)(theirs - copy)));
    }
    CT_ENSURE_RET(accept, ct_fail(CT_ERR_INTEGRITY, "%s; nothing restored (after review: --accept-rollback)", why));
    fprintf(out, "ROLLED BACK: %s\n", why);
    CT_GUARD_RET(ct_hex_encode(head, sizeof head, hex, sizeof hex));
    CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "v=2 replaced_audit_entries=%lld replaced_audit_sha256=%s "
                             "audit_entries=%lld", (long long)theirs, hex, (long long)copy));
    const char *base = strrchr(r->cfg.db_path, '/');
    CT_GUARD_RET(db_audit_append(staged->db, "cli", "ca.rollback_accept", base ? base + 1 : r->cfg.db_path, "ok", detail));
    fprintf(out, "rollback accepted (audited in the copy: ca.rollback_accept)\n");
    return CT_OK;
}

ct_err ca_restore_compare(ca_restore *r, ca *staged, const char *const *files, size_t n_files, bool accept_rollback,
                          FILE *out, bool *rolled_back)
{
    ct_err rc = CT_OK;
    size_t n = 0, cap = n_files + 2;
    outside *o = calloc(cap, sizeof *o);
    char kept[CA_PATH_MAX];
    *rolled_back = false;
    CT_ENSURE(o, CT_ERR_NOMEM);
    CT_GUARD(kept_path(staged, kept, sizeof kept));
    /* The CA's own, the database being replaced (its newest, which may postdate the CA's file in a folder made before
     * it kept one), and whatever witnesses, stations and officers kept. */
    if (ct_file_exists(kept)) {
        CT_GUARD(ct_strlcpy(o[n].where, sizeof o[n].where, kept));
        CT_GUARD(note_load(staged, kept, &o[n].note, &o[n].cp));
        n++;
    }
    if (ct_file_exists(r->cfg.db_path)) {
        rc = db_backup_newest_checkpoint(r->cfg.db_path, &o[n].note);
        if (rc == CT_OK) rc = ct_checkpoint_open(o[n].note.data, o[n].note.len, &staged->note_vkey, &o[n].cp);
        if (rc == CT_OK) {
            CT_GUARD(ct_snprintf(o[n].where, sizeof o[n].where, "%s (the database replaced)", r->cfg.db_path));
            n++;
        } else {
            if (rc != CT_ERR_NOT_FOUND) /* a damaged database is what one restores over: said, not fatal */
                fprintf(out, "the database replaced (%s): no checkpoint read from it (%s)\n", r->cfg.db_path,
                        *ct_err_detail() ? ct_err_detail() : ct_err_message(rc));
            ct_buf_free(&o[n].note);
        }
        ct_err_clear();
        rc = CT_OK;
    }
    for (size_t i = 0; i < n_files; i++, n++) {
        CT_GUARD(ct_strlcpy(o[n].where, sizeof o[n].where, files[i]));
        CT_GUARD(note_load(staged, files[i], &o[n].note, &o[n].cp));
    }
    if (n == 0) fprintf(out, "no checkpoint kept outside the copy: nothing to compare it with\n");
    for (size_t i = 0; i < n; i++) CT_GUARD(compare_one(staged, &o[i], out, rolled_back));
    /* A rollback a kept checkpoint shows is accepted later, as the CA then refuses to serve; one only the database
     * replaced shows, here (nothing else would keep the CA from serving it). */
    if (!*rolled_back) CT_GUARD(replaced_head_check(r, staged, accept_rollback, out));
    /* What checkpoint.note keeps from now on: a checkpoint the copy contradicts (so that serve refuses it until
     * accepted), else the newest of all (never going back). */
    outside *keep = NULL;
    for (size_t i = 0; i < n; i++)
        if (o[i].extended == !*rolled_back && (!keep || newer(&o[i].cp, &keep->cp))) keep = &o[i];
    bool is_kept_file = keep && n > 0 && keep == &o[0] && strcmp(o[0].where, kept) == 0;
    if (keep && !is_kept_file) {
        const char *s = NULL;
        CT_GUARD(ct_buf_cstr(&keep->note, &s));
        CT_GUARD(ca_kept_checkpoint_write(staged, s));
    }
cleanup:
    for (size_t i = 0; o && i < cap; i++) ct_buf_free(&o[i].note);
    free(o);
    return rc;
}

ct_err ca_restore_commit(ca_restore *r, char *replaced, size_t max)
{
    char wal[CA_PATH_MAX + 8];
    const char *live = r->cfg.db_path;
    *replaced = '\0';
    /* The staged copy closed: its own WAL folded in and gone, the file synced. */
    CT_GUARD_RET(db_backup_fold_wal(r->staged));
    CT_GUARD_RET(file_sync(r->staged));
    ct_failpoint("restore:staged");
    if (ct_file_exists(live)) {
        CT_GUARD_RET(db_backup_fold_wal(live)); /* the old database whole in its file, its WAL empty */
        static const char *const sides[] = {"-wal", "-shm"};
        for (size_t i = 0; i < 2; i++) {
            CT_GUARD_RET(ct_snprintf(wal, sizeof wal, "%s%s", live, sides[i]));
            CT_ENSURE_RET(unlink(wal) == 0 || errno == ENOENT,
                          ct_fail(CT_ERR_IO, "cannot remove %s: %s", wal, strerror(errno)));
        }
        /* The database replaced stays beside, under another name (the same file: no copy). */
        CT_GUARD_RET(ct_snprintf(replaced, max, "%s.replaced-%lld", live, (long long)ct_now_ms()));
        CT_ENSURE_RET(link(live, replaced) == 0, ct_fail(CT_ERR_IO, "cannot link %s: %s", replaced, strerror(errno)));
        ct_failpoint("restore:folded");
    }
    CT_ENSURE_RET(rename(r->staged, live) == 0,
                  ct_fail(CT_ERR_IO, "cannot rename %s to %s: %s", r->staged, live, strerror(errno)));
    r->committed = true;
    ct_failpoint("restore:renamed");
    return ct_file_sync_dir(live);
}

void ca_restore_end(ca_restore *r)
{
    if (!r) return;
    if (r->stage[0] && ct_dir_discard(r->stage) != CT_OK)
        ct_log(CT_LOG_WARN, "restore_stage_left", "path=%s", CT_LOGQ(r->stage));
    ca_folder_unlock(r->lock);
    free(r);
}
