#define _GNU_SOURCE /* renameat2 */
#include "core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Makes room for more of a file in `b` (one spare byte for a NUL kept), up to max + 1 bytes so that one byte too
 * many is noticed. The old copy is wiped: files read here may hold secrets. */
static ct_err file_buf_grow(ct_buf *b, size_t max, const char *path)
{
    CT_ENSURE_RET(b->max <= max, ct_fail(CT_ERR_TOO_LARGE, "%s is larger than %zu bytes", path, max));
    ct_buf grown = CT_BUF_INIT;
    CT_GUARD_RET(ct_buf_alloc(&grown, b->max > (max + 1) / 2 ? max + 1 : b->max * 2));
    ct_err rc = ct_buf_append(&grown, b->data, b->len);
    ct_buf_free(b);
    *b = grown;
    return rc;
}

/* `stream`: a pipe or FIFO is read too, to its end (waiting for its writer). Otherwise only a regular file: opened
 * without waiting (a FIFO named where a certificate was expected would hold the command forever), then refused. */
static ct_err file_read(const char *path, size_t max, ct_buf *out, bool stream)
{
    ct_err rc = CT_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC | (stream ? 0 : O_NONBLOCK));
    CT_ENSURE_RET(fd >= 0, ct_fail(CT_ERR_IO, "cannot open %s: %s", path, strerror(errno)));
    struct stat st;
    CT_ENSURE_MSG(fstat(fd, &st) == 0, CT_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    bool regular = S_ISREG(st.st_mode);
    CT_ENSURE_MSG(regular || stream, CT_ERR_IO, "cannot read %s: %s", path, "not a regular file");
    CT_ENSURE_MSG(!regular || (uint64_t)st.st_size <= max, CT_ERR_TOO_LARGE, "%s is larger than %zu bytes", path, max);
    /* The size is only a first guess (a pipe or FIFO has none, a file may grow): read to EOF, bounded by max.
     * One spare byte so that callers can NUL-terminate text. */
    CT_GUARD(ct_buf_alloc(out, (regular ? (size_t)st.st_size : (max < 4096 ? max : 4096)) + 1));
    for (;;) {
        if (out->len == out->max) CT_GUARD(file_buf_grow(out, max, path));
        ssize_t n = read(fd, out->data + out->len, out->max - out->len);
        if (n < 0 && errno == EINTR) continue;
        CT_ENSURE_MSG(n >= 0, CT_ERR_IO, "cannot read %s: %s", path, strerror(errno));
        if (n == 0) break;
        out->len += (size_t)n;
    }
cleanup:
    if (rc != CT_OK) ct_buf_free(out);
    close(fd);
    return rc;
}

ct_err ct_file_read(const char *path, size_t max, ct_buf *out)
{
    return file_read(path, max, out, false);
}

ct_err ct_file_read_stream(const char *path, size_t max, ct_buf *out)
{
    return file_read(path, max, out, true);
}

ct_err ct_file_sync_dir(const char *path)
{
    char copy[4096];
    CT_GUARD_RET(ct_strlcpy(copy, sizeof copy, path));
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CT_ENSURE_RET(dfd >= 0, ct_fail(CT_ERR_IO, "cannot open folder of %s: %s", path, strerror(errno)));
    int r = fsync(dfd);
    close(dfd);
    return r == 0 ? CT_OK : ct_fail(CT_ERR_IO, "cannot sync folder of %s", path);
}

/* `probed`: with the write:* failpoints (kill tests aim them at the write a command exists for; a safeguard's own
 * write on the way, such as the token's copy at every open, must not take them). */
static ct_err write_atomic(const char *path, const void *data, size_t len, unsigned mode, bool probed)
{
    ct_err rc = CT_OK;
    char tmp[4096];
    int fd = -1;
    CT_GUARD(ct_snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()));
    /* A stale temporary (same pid after a crash) must neither lend its mode nor be a symlink to follow. */
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    CT_ENSURE_MSG(fd >= 0, CT_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, (const uint8_t *)data + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        CT_ENSURE_MSG(n > 0, CT_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        off += (size_t)n;
    }
    if (probed) ct_failpoint("write:temp-written");
    CT_ENSURE_MSG(fsync(fd) == 0, CT_ERR_IO, "cannot sync %s: %s", tmp, strerror(errno));
    CT_ENSURE_MSG(close(fd) == 0, CT_ERR_IO, "cannot close %s", tmp);
    fd = -1;
    if (probed) ct_failpoint("write:temp-synced");
    CT_ENSURE_MSG(rename(tmp, path) == 0, CT_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
    if (probed) ct_failpoint("write:renamed");
    CT_GUARD(ct_file_sync_dir(path));
cleanup:
    if (fd >= 0) close(fd);
    if (rc != CT_OK) unlink(tmp);
    return rc;
}

ct_err ct_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
    return write_atomic(path, data, len, mode, true);
}

ct_err ct_file_write_atomic_unprobed(const char *path, const void *data, size_t len, unsigned mode)
{
    return write_atomic(path, data, len, mode, false);
}

ct_err ct_mkdir(const char *path, unsigned mode)
{
    if (mkdir(path, (mode_t)mode) == 0 || errno == EEXIST) return CT_OK;
    return ct_fail(CT_ERR_IO, "cannot create %s: %s", path, strerror(errno));
}

bool ct_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Removes `name` in the folder open as `at`: a file or a link as itself; a folder with all in it, each folder opened
 * relative to the one holding it and never through a link (O_NOFOLLOW): whoever owns the folder, racing a root
 * command's removal, cannot swap a subfolder for a link to a folder elsewhere and have root empty that one (a
 * folder swapped meanwhile is refused, not walked). -1 with errno on failure. */
static int remove_at(int at, const char *name, unsigned depth)
{
    if (unlinkat(at, name, 0) == 0 || errno == ENOENT) return 0;
    int refused = errno; /* EPERM: a folder (POSIX), or a file that may not go (immutable, another's in a sticky one) */
    if (refused != EISDIR && refused != EPERM) return -1;
    if (depth > 64) { /* a tree planted deeper than any of ours: refused, saying why (not EISDIR's "Is a directory") */
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOTDIR) errno = refused; /* not a folder: the failed removal's reason is the one */
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        const char *n = e->d_name; /* "." and "..", told without literals: the agent's read-only data has no room */
        if (!(n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))) rc = remove_at(fd, n, depth + 1);
    }
    closedir(d);
    return rc == 0 && unlinkat(at, name, AT_REMOVEDIR) != 0 && errno != ENOENT ? -1 : rc;
}

/* remove_at, a failure naming `path` (the same entry). */
static ct_err remove_in(int at, const char *name, const char *path)
{
    return remove_at(at, name, 0) == 0 ? CT_OK : ct_fail(CT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
}

static ct_err remove_file(const char *path)
{
    if (unlink(path) == 0 || errno == ENOENT) return CT_OK;
    return ct_fail(CT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
}

static ct_err split_path(const char *path, char *parent, char *base, size_t max);

/* A folder with everything in it (remove_at), from its parent folder opened by its name. */
static ct_err remove_tree(const char *path)
{
    char parent[4096], base[4096];
    CT_GUARD_RET(split_path(path, parent, base, sizeof parent));
    int at = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (at < 0) return errno == ENOENT ? CT_OK : ct_fail(CT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    ct_err rc = remove_in(at, base, path);
    close(at);
    return rc;
}

/* PREFIX...SEP<digits>: the pid, or 0 when the name is not of that form. */
static long stale_pid(const char *name, const char *prefix, const char *sep)
{
    size_t pl = strlen(prefix), sl = strlen(sep);
    const char *s = name + pl, *d;
    if (strncmp(name, prefix, pl) != 0) return 0;
    if (pl) {
        if (strncmp(s, sep, sl) != 0) return 0; /* exactly PREFIX SEP: "cam.init-1" is not "ca"'s */
    } else {
        if (!(s = strstr(name, sep))) return 0;
        while ((d = strstr(s + 1, sep))) s = d; /* the last one: names may hold SEP themselves */
    }
    d = s + sl;
    if (!*d || strspn(d, "0123456789") != strlen(d) || strlen(d) > 9) return 0;
    return strtol(d, NULL, 10);
}

ct_err ct_stale_remove(const char *folder, const char *prefix, const char *sep)
{
    ct_err rc = CT_OK;
    char path[4096];
    bool files = strcmp(sep, ".tmp.") == 0;
    DIR *d = opendir(folder);
    /* None there, or not a folder (a file where a caller walks folders): nothing of ours to remove. */
    if (!d) return errno == ENOENT || errno == ENOTDIR ? CT_OK : ct_fail(CT_ERR_IO, "cannot read %s: %s", folder,
                                                                           strerror(errno));
    for (struct dirent *e; rc == CT_OK && (e = readdir(d));) {
        long pid = stale_pid(e->d_name, prefix, sep);
        /* What killed writers leave: a temporary (".tmp.") is a regular file, a stage a folder; anything else so
         * named is someone else's (an operator's folder "x.tmp.7" with all in it). A live process (or one we may not
         * signal) still owns it. */
        if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        rc = ct_path_join(path, sizeof path, folder, e->d_name);
        /* Some file systems do not say (DT_UNKNOWN: ext2 without filetype, XFS with ftype=0): the entry itself. */
        struct stat st;
        unsigned type = e->d_type != DT_UNKNOWN ? e->d_type : lstat(path, &st) == 0 ? IFTODT(st.st_mode) : DT_UNKNOWN;
        if (rc == CT_OK && type == (files ? DT_REG : DT_DIR))
            rc = files ? remove_file(path) : remove_in(dirfd(d), e->d_name, path);
    }
    closedir(d);
    return rc;
}

/* The folder holding `path` and its last name, in the buffers given. */
static ct_err split_path(const char *path, char *parent, char *base, size_t max)
{
    char a[4096], b[4096];
    CT_GUARD_RET(ct_strlcpy(a, sizeof a, path));
    CT_GUARD_RET(ct_strlcpy(b, sizeof b, path));
    CT_GUARD_RET(ct_strlcpy(parent, max, dirname(a)));
    return ct_strlcpy(base, max, basename(b));
}

#define STAGE_SEP ".init-"
#define STAGE_WHOLE ".whole" /* in a stage inside its folder: complete; holds the name to move last */

/* Moves every entry of `stage` into `final`, `last` last (the one whose presence says the folder is whole). */
static ct_err move_entries(const char *stage, const char *final, const char *last)
{
    ct_err rc = CT_OK;
    char from[4096], to[4096];
    DIR *d = opendir(stage);
    CT_ENSURE_RET(d, ct_fail(CT_ERR_IO, "cannot read %s: %s", stage, strerror(errno)));
    for (struct dirent *e; rc == CT_OK && (e = readdir(d));) {
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, STAGE_WHOLE) == 0 || strcmp(n, last) == 0)
            continue;
        rc = ct_path_join(from, sizeof from, stage, n);
        if (rc == CT_OK) rc = ct_path_join(to, sizeof to, final, n);
        if (rc == CT_OK && rename(from, to) != 0) rc = ct_fail(CT_ERR_IO, "cannot move %s: %s", from, strerror(errno));
        ct_failpoint("stage:moving");
    }
    closedir(d);
    CT_GUARD_RET(rc);
    CT_GUARD_RET(ct_path_join(from, sizeof from, stage, last));
    CT_GUARD_RET(ct_path_join(to, sizeof to, final, last));
    CT_ENSURE_RET(rename(from, to) == 0 || errno == ENOENT,
                  ct_fail(CT_ERR_IO, "cannot move %s: %s", from, strerror(errno)));
    CT_GUARD_RET(ct_path_join(to, sizeof to, final, "."));
    CT_GUARD_RET(ct_file_sync_dir(to));
    return remove_tree(stage);
}

ct_err ct_dir_recover(const char *final)
{
    ct_err rc = CT_OK;
    char stage[4096], whole[4096];
    ct_buf last = CT_BUF_INIT;
    DIR *d = opendir(final);
    if (!d) return errno == ENOENT || errno == ENOTDIR ? CT_OK : ct_fail(CT_ERR_IO, "cannot read %s: %s", final,
                                                                       strerror(errno));
    for (struct dirent *e; rc == CT_OK && (e = readdir(d));) {
        long pid = stale_pid(e->d_name, "", STAGE_SEP);
        /* Ours is dead too: the caller does not stage while it recovers, and a container's process is always PID 1,
         * as was the one a kill cut short. */
        if (pid <= 0 || e->d_name[0] != '.' || (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)))
            continue;
        rc = ct_path_join(stage, sizeof stage, final, e->d_name);
        if (rc == CT_OK) rc = ct_path_join(whole, sizeof whole, stage, STAGE_WHOLE);
        if (rc != CT_OK) break;
        if (!ct_file_exists(whole)) {
            rc = remove_tree(stage);
            continue;
        }
        rc = ct_file_read(whole, 255, &last);
        if (rc == CT_OK) {
            last.data[last.len] = '\0';
            rc = move_entries(stage, final, (const char *)last.data);
        }
        ct_buf_free(&last);
    }
    closedir(d);
    return rc;
}

ct_err ct_dir_stage(const char *final, char *stage, size_t stage_max)
{
    char parent[4096], base[4096];
    CT_GUARD_RET(split_path(final, parent, base, sizeof parent));
    CT_ENSURE_RET(strcmp(base, "/") != 0 && strcmp(base, ".") != 0 && strcmp(base, "..") != 0,
                  ct_fail(CT_ERR_USAGE, "'%s' cannot be made in a staging folder: name a folder", final));
    CT_GUARD_RET(ct_stale_remove(parent, base, STAGE_SEP));
    CT_GUARD_RET(ct_snprintf(stage, stage_max, "%s" STAGE_SEP "%ld", final, (long)getpid()));
    CT_GUARD_RET(remove_tree(stage)); /* ours from an earlier call in this process */
    if (mkdir(stage, 0700) == 0) return CT_OK;
    /* A folder the system made for us in a folder we may not write (a service's /var/lib/NAME): inside it. */
    bool inside = (errno == EACCES || errno == EPERM || errno == EROFS) && ct_file_exists(final);
    CT_ENSURE_RET(inside, ct_fail(CT_ERR_IO, "cannot create %s: %s", stage, strerror(errno)));
    return ct_dir_stage_inside(final, stage, stage_max);
}

ct_err ct_dir_stage_inside(const char *final, char *stage, size_t stage_max)
{
    CT_GUARD_RET(ct_snprintf(stage, stage_max, "%s/" STAGE_SEP "%ld", final, (long)getpid()));
    CT_GUARD_RET(remove_tree(stage));
    CT_ENSURE_RET(mkdir(stage, 0700) == 0, ct_fail(CT_ERR_IO, "cannot create %s: %s", stage, strerror(errno)));
    return CT_OK;
}

/* Whether `stage` lies inside `final` (the second kind of ct_dir_stage). */
static bool stage_inside(const char *stage, const char *final)
{
    size_t n = strlen(final);
    return strncmp(stage, final, n) == 0 && stage[n] == '/';
}

ct_err ct_dir_commit(const char *stage, const char *final, const char *last)
{
    char whole[4096];
    int fd = open(stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CT_ENSURE_RET(fd >= 0, ct_fail(CT_ERR_IO, "cannot open %s: %s", stage, strerror(errno)));
    int r = fsync(fd);
    close(fd);
    CT_ENSURE_RET(r == 0, ct_fail(CT_ERR_IO, "cannot sync %s: %s", stage, strerror(errno)));
    ct_failpoint("stage:synced");
    if (stage_inside(stage, final)) {
        /* No single rename can do it: marked whole first, so that an interrupted move is finished later. */
        CT_GUARD_RET(ct_path_join(whole, sizeof whole, stage, STAGE_WHOLE));
        CT_GUARD_RET(ct_file_write_atomic(whole, last, strlen(last), 0600));
        return move_entries(stage, final, last);
    }
    if (rename(stage, final) != 0) {
        CT_ENSURE_RET(errno == ENOTEMPTY || errno == EEXIST,
                      ct_fail(CT_ERR_IO, "cannot rename %s to %s: %s", stage, final, strerror(errno)));
        /* `final` holds what the caller copied into the stage: swap them in one step, then drop the old one. */
        CT_ENSURE_RET(renameat2(AT_FDCWD, stage, AT_FDCWD, final, RENAME_EXCHANGE) == 0,
                      ct_fail(CT_ERR_IO, "cannot exchange %s and %s: %s", stage, final, strerror(errno)));
        CT_GUARD_RET(remove_tree(stage));
    }
    ct_failpoint("stage:renamed");
    return ct_file_sync_dir(final);
}

ct_err ct_dir_check_fresh(const char *dir, const char *allowed, bool *has_allowed)
{
    char other[256] = "";
    bool seen = false;
    if (has_allowed) *has_allowed = false;
    CT_GUARD_RET(ct_dir_recover(dir));
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? CT_OK : ct_fail(CT_ERR_IO, "cannot read %s: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (allowed && strcmp(e->d_name, allowed) == 0) seen = true;
        else if (ct_strlcpy(other, sizeof other, e->d_name) != CT_OK) other[0] = '?';
    }
    closedir(d);
    if (has_allowed) *has_allowed = seen;
    return *other ? ct_fail(CT_ERR_EXISTS, "%s is not empty (it holds '%s'): give a new or empty folder", dir, other)
                  : CT_OK;
}

ct_err ct_dir_discard(const char *stage)
{
    /* A stage marked whole may be half moved up: removed, the folder would keep a mixed set. Left for
     * ct_dir_recover; no detail set, the caller's error (why it did not commit) is what it reports. */
    char whole[4096];
    CT_GUARD_RET(ct_path_join(whole, sizeof whole, stage, STAGE_WHOLE));
    return ct_file_exists(whole) ? CT_ERR_IO : remove_tree(stage);
}

bool ct_failpoint_hit(const char *name)
{
    const char *want = getenv("CAMTRUST_FAILPOINT");
    return want && strcmp(want, name) == 0;
}

void ct_failpoint(const char *name)
{
    if (ct_failpoint_hit(name)) _exit(137);
}

void ct_failpoint_hold(const char *name)
{
    if (!ct_failpoint_hit(name)) return;
    const char *release = getenv("CAMTRUST_FAILPOINT_RELEASE");
    ct_log(CT_LOG_INFO, "failpoint_held", "point=%s", CT_LOGQ(name));
    const struct timespec tick = {0, 10 * 1000000L};
    for (int64_t until = ct_now_ms() + 30000; release && access(release, F_OK) != 0 && ct_now_ms() < until;)
        nanosleep(&tick, NULL);
}

ct_err ct_pem_write_file(const char *path, const char *label, const uint8_t *der, size_t len, unsigned mode)
{
    ct_err rc = CT_OK;
    ct_buf pem = CT_BUF_INIT;
    CT_ENSURE(len <= (SIZE_MAX - 256) / 2, CT_ERR_TOO_LARGE);
    CT_GUARD(ct_buf_alloc(&pem, 2 * len + 256)); /* base64 (4/3), a newline per 64 characters, the two lines */
    CT_GUARD(ct_pem_encode(label, der, len, &pem));
    CT_GUARD(ct_file_write_atomic(path, pem.data, pem.len, mode));
cleanup:
    ct_buf_free(&pem);
    return rc;
}

ct_err ct_pem_or_der_read(const char *path, const char *label, size_t max, ct_buf *der)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT;
    /* PEM takes 4/3 of the DER and its lines; 64 KiB at least, for a chain or a commented file. */
    CT_GUARD(ct_file_read(path, max * 2 + 64 * 1024, &file));
    CT_GUARD(ct_buf_alloc(der, max));
    if (file.len > 0 && file.data[0] == 0x30) {
        CT_GUARD(ct_buf_set(der, file.data, file.len));
    } else {
        rc = ct_pem_decode(file.data, file.len, label, 0, der);
        if (rc == CT_ERR_NOT_FOUND) rc = ct_fail(CT_ERR_BAD_DER, "%s holds no PEM %s", path, label);
    }
cleanup:
    ct_buf_free(&file);
    if (rc != CT_OK) ct_buf_free(der);
    return rc;
}
