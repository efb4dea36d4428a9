#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

ct_err ct_file_read(const char *path, size_t max, ct_buf *out)
{
    ct_err rc = CT_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CT_ENSURE_RET(fd >= 0, ct_fail(CT_ERR_IO, "cannot open %s: %s", path, strerror(errno)));
    struct stat st;
    CT_ENSURE_MSG(fstat(fd, &st) == 0, CT_ERR_IO, "cannot stat %s: %s", path, strerror(errno));
    bool regular = S_ISREG(st.st_mode);
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

ct_err ct_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode)
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
    ct_failpoint("write:temp-written");
    CT_ENSURE_MSG(fsync(fd) == 0, CT_ERR_IO, "cannot sync %s: %s", tmp, strerror(errno));
    CT_ENSURE_MSG(close(fd) == 0, CT_ERR_IO, "cannot close %s", tmp);
    fd = -1;
    ct_failpoint("write:temp-synced");
    CT_ENSURE_MSG(rename(tmp, path) == 0, CT_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
    ct_failpoint("write:renamed");
    CT_GUARD(ct_file_sync_dir(path));
cleanup:
    if (fd >= 0) close(fd);
    if (rc != CT_OK) unlink(tmp);
    return rc;
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

void ct_failpoint(const char *name)
{
    const char *want = getenv("CAMTRUST_FAILPOINT");
    if (want && strcmp(want, name) == 0) _exit(137);
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
