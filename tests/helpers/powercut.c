/* powercut: an LD_PRELOAD shim that turns a kill -9 into a power cut, for the tests (est_enroll.sh).
 *
 * A process killed with SIGKILL loses nothing it wrote: the kernel's page cache keeps it. A power cut loses every
 * write not yet synced. For the files whose canonical path starts with POWERCUT_PATH (e.g. /ca/camtrust.db: the
 * database, its -wal and -journal; never a -shm file, SQLite's mmap'd index, rebuilt from the WAL after a crash),
 * this shim keeps every write in memory, per inode (st_dev, st_ino: the CA syncs the WAL through a descriptor of its
 * own), serves reads and fstat's size from that overlay over the file, and writes it to the file only when fsync or
 * fdatasync is called on any descriptor of that inode. Whatever was not synced when the process dies never reached
 * the file.
 *
 * POWERCUT_AT_SYNC=N plays the cut itself: the N-th sync of such a file hangs, as on a disk losing power while it
 * writes, every later sync too, and POWERCUT_DELAY_MS (default 200) later the shim writes one line to stderr and
 * kills its process with SIGKILL, none of it written. Anything answered during that time, before its sync returned,
 * is lost. POWERCUT_THREAD=NAME: only syncs made by threads of that name count. POWERCUT_WRITE_US=U: each write to
 * such a file takes U microseconds (a slow disk), 5 U once the cut began, so that commits last long enough for group
 * commits to form, also after the cut.
 *
 * Intercepted: open, open64, openat, openat64, close; write, pwrite, pwrite64, writev, pwritev, pwritev64; read,
 * pread, pread64; fsync, fdatasync; ftruncate, ftruncate64 (passed to the file at once, cutting the overlay there:
 * a truncation is durable at once here); fstat, fstat64 (the size). strace of the CA under load shows only open,
 * pread64, pwrite64, fdatasync, ftruncate and fstat on these files. Not intercepted (neither SQLite nor the CA uses
 * them there): mmap, readv, preadv, lseek (SEEK_END sees the file's size), sync_file_range, msync, sync, syncfs,
 * dup, fopen's stdio. One mutex for everything: SQLite and the CA's threads
 * call concurrently. Test infrastructure only: never linked into a product. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(off_t) == 8 && sizeof(struct stat) == sizeof(struct stat64), "a 64-bit Linux only");

#define FD_MAX 4096 /* tracked descriptors; a tracked file opened above it stops the process (never silently) */

struct ext { /* one write kept in memory; later ones are laid over earlier ones */
    off_t off;
    size_t len;
    struct ext *next;
    unsigned char data[];
};

struct inode {
    dev_t dev;
    ino_t ino;
    int fds;   /* tracked descriptors open on it */
    off_t end; /* end of the furthest write kept (0: none) */
    struct ext *head, **tail;
    struct inode *next;
};

static struct {
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*close)(int);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*pread)(int, void *, size_t, off_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
    off_t (*lseek)(int, off_t, int);
    int (*fsync)(int);
    int (*fdatasync)(int);
    int (*ftruncate)(int, off_t);
    int (*fstat)(int, struct stat *);
} real;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_prefix[PATH_MAX + 1]; /* canonical POWERCUT_PATH; empty: nothing is tracked */
static char g_thread[16];           /* POWERCUT_THREAD: only syncs from threads of that name count */
static long g_at_sync, g_delay_ms = 200, g_write_us, g_syncs;
static bool g_cut;
static struct inode *g_inodes;
static struct {
    int on; /* read without the lock first (every read and write of the process looks), changed under it */
    bool wr, append;
    struct inode *in;
} g_fd[FD_MAX];

/* stdio writes through libc's internal calls, never through this shim: safe inside init. */
static void die(const char *what)
{
    fprintf(stderr, "powercut: %s\n", what);
    abort();
}

static void *next_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) die(name);
    return p;
}

static void init(void)
{
    *(void **)&real.open = next_sym("open");
    *(void **)&real.openat = next_sym("openat");
    *(void **)&real.close = next_sym("close");
    *(void **)&real.read = next_sym("read");
    *(void **)&real.write = next_sym("write");
    *(void **)&real.pread = next_sym("pread");
    *(void **)&real.pwrite = next_sym("pwrite");
    *(void **)&real.writev = next_sym("writev");
    *(void **)&real.pwritev = next_sym("pwritev");
    *(void **)&real.lseek = next_sym("lseek");
    *(void **)&real.fsync = next_sym("fsync");
    *(void **)&real.fdatasync = next_sym("fdatasync");
    *(void **)&real.ftruncate = next_sym("ftruncate");
    *(void **)&real.fstat = next_sym("fstat");
    const char *path = getenv("POWERCUT_PATH"), *at = getenv("POWERCUT_AT_SYNC"), *ms = getenv("POWERCUT_DELAY_MS");
    const char *us = getenv("POWERCUT_WRITE_US");
    if (at) g_at_sync = strtol(at, NULL, 10);
    if (ms) g_delay_ms = strtol(ms, NULL, 10);
    if (us) g_write_us = strtol(us, NULL, 10);
    if (getenv("POWERCUT_THREAD")) (void)snprintf(g_thread, sizeof g_thread, "%s", getenv("POWERCUT_THREAD"));
    if (!path || !*path) return;
    /* canonical, as /proc/self/fd names opened files: the folder resolved, the name's start kept as given */
    char dir[PATH_MAX + 1], canon[PATH_MAX + 1];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) die("POWERCUT_PATH must be FOLDER/NAME-START");
    if ((size_t)(slash - path) >= sizeof dir) die("POWERCUT_PATH too long");
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (!realpath(dir, canon)) die("POWERCUT_PATH's folder does not exist");
    if (snprintf(g_prefix, sizeof g_prefix, "%s/%s", canon, slash + 1) >= (int)sizeof g_prefix)
        die("POWERCUT_PATH too long");
}

static void ensure(void) { (void)pthread_once(&g_once, init); }
static void lock(void) { (void)pthread_mutex_lock(&g_mu); }
static void unlock(void) { (void)pthread_mutex_unlock(&g_mu); }
static bool maybe_tracked(int fd) { return fd >= 0 && fd < FD_MAX && __atomic_load_n(&g_fd[fd].on, __ATOMIC_ACQUIRE); }
/* With the lock held: the inode behind a tracked fd, or NULL. */
static struct inode *tracked(int fd) { return maybe_tracked(fd) ? g_fd[fd].in : NULL; }

/* With the lock held: the writes kept cut at `len` (ftruncate, O_TRUNC). */
static void clip(struct inode *in, off_t len)
{
    struct ext **pp = &in->head;
    in->end = 0;
    while (*pp) {
        struct ext *e = *pp;
        if (e->off >= len) {
            *pp = e->next;
            free(e);
            continue;
        }
        if (e->off + (off_t)e->len > len) e->len = (size_t)(len - e->off);
        if (e->off + (off_t)e->len > in->end) in->end = e->off + (off_t)e->len;
        pp = &e->next;
    }
    in->tail = pp;
}

static int opened(int fd, int flags)
{
    if (fd < 0 || !g_prefix[0]) return fd;
    int saved = errno;
    struct stat st;
    char proc[64], path[PATH_MAX + 1];
    ssize_t n = 0;
    if (real.fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd) < (int)sizeof proc)
        n = readlink(proc, path, sizeof path - 1);
    if (n > 0) path[n] = '\0';
    /* -shm: SQLite's shared-memory index, mmap'd and rebuilt from the WAL after a crash: not durable by design */
    if (n <= 0 || strncmp(path, g_prefix, strlen(g_prefix)) != 0 || (n >= 4 && strcmp(path + n - 4, "-shm") == 0)) {
        errno = saved;
        return fd;
    }
    if (fd >= FD_MAX) die("a tracked file got a descriptor above FD_MAX");
    lock();
    struct inode *in = g_inodes;
    while (in && !(in->dev == st.st_dev && in->ino == st.st_ino)) in = in->next;
    if (!in) {
        if (!(in = calloc(1, sizeof *in))) die("out of memory");
        in->dev = st.st_dev;
        in->ino = st.st_ino;
        in->tail = &in->head;
        in->next = g_inodes;
        g_inodes = in;
    }
    if (flags & O_TRUNC) clip(in, 0);
    in->fds++;
    g_fd[fd].in = in;
    g_fd[fd].wr = (flags & O_ACCMODE) != O_RDONLY;
    g_fd[fd].append = (flags & O_APPEND) != 0;
    __atomic_store_n(&g_fd[fd].on, 1, __ATOMIC_RELEASE);
    unlock();
    errno = saved;
    return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, unsigned) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    ensure();
    return opened(real.open(path, flags, mode), flags);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    ensure();
    return opened(real.openat(dirfd, path, flags, mode), flags);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int close(int fd)
{
    ensure();
    if (maybe_tracked(fd)) {
        lock();
        struct inode *in = tracked(fd);
        struct stat st;
        if (in) {
            __atomic_store_n(&g_fd[fd].on, 0, __ATOMIC_RELEASE);
            g_fd[fd].in = NULL;
            /* the last descriptor of an unlinked file: the file is gone and its inode number free for another */
            if (--in->fds == 0 && real.fstat(fd, &st) == 0 && st.st_nlink == 0) {
                clip(in, 0);
                struct inode **pp = &g_inodes;
                while (*pp != in) pp = &(*pp)->next;
                *pp = in->next;
                free(in);
            }
        }
        unlock();
    }
    return real.close(fd);
}

/* With the lock held: the file's bytes with the writes kept laid over them; a hole before a kept write reads 0. */
static ssize_t ov_pread(int fd, struct inode *in, void *buf, size_t n, off_t off)
{
    ssize_t r = real.pread(fd, buf, n, off);
    if (r < 0) return r;
    size_t got = (size_t)r;
    if (got < n && in->end > off + (off_t)got) {
        size_t upto = in->end - off >= (off_t)n ? n : (size_t)(in->end - off);
        memset((unsigned char *)buf + got, 0, upto - got);
        got = upto;
    }
    for (const struct ext *e = in->head; e; e = e->next) {
        off_t from = e->off > off ? e->off : off;
        off_t to = e->off + (off_t)e->len < off + (off_t)got ? e->off + (off_t)e->len : off + (off_t)got;
        if (from < to) memcpy((unsigned char *)buf + (from - off), e->data + (from - e->off), (size_t)(to - from));
    }
    return (ssize_t)got;
}

/* With the lock held: the write kept in memory only. */
static ssize_t ov_pwrite(struct inode *in, const void *buf, size_t n, off_t off)
{
    if (off < 0 || n > (size_t)SSIZE_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (n == 0) return 0;
    struct ext *e = malloc(sizeof *e + n);
    if (!e) {
        errno = ENOMEM;
        return -1;
    }
    e->off = off;
    e->len = n;
    e->next = NULL;
    memcpy(e->data, buf, n);
    *in->tail = e;
    in->tail = &e->next;
    if (off + (off_t)n > in->end) in->end = off + (off_t)n;
    return (ssize_t)n;
}

/* With the lock held: the file's size as its readers see it. */
static off_t ov_size(int fd, const struct inode *in)
{
    struct stat st;
    if (real.fstat(fd, &st) != 0) return -1;
    return st.st_size > in->end ? st.st_size : in->end;
}

/* read/write at the descriptor's offset (or at the end, O_APPEND), moving it as the kernel would. */
static ssize_t at_offset(int fd, struct inode *in, void *rbuf, const void *wbuf, size_t n)
{
    off_t off = wbuf && g_fd[fd].append ? ov_size(fd, in) : real.lseek(fd, 0, SEEK_CUR);
    if (off < 0) return -1;
    ssize_t r = wbuf ? ov_pwrite(in, wbuf, n, off) : ov_pread(fd, in, rbuf, n, off);
    if (r > 0 && real.lseek(fd, off + r, SEEK_SET) < 0) return -1;
    return r;
}

/* POWERCUT_WRITE_US: each write to a tracked file takes that long (a slow disk), outside the lock. */
static void slow_write(void)
{
    long us = __atomic_load_n(&g_cut, __ATOMIC_RELAXED) ? 5 * g_write_us : g_write_us;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (us > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Every read and write: through the overlay for a tracked file, else libc's; at_pos: at `off`, else at the
 * descriptor's offset. */
static ssize_t io(int fd, void *rbuf, const void *wbuf, size_t n, off_t off, bool at_pos)
{
    ensure();
    bool locked = maybe_tracked(fd);
    if (locked) {
        if (wbuf) slow_write();
        lock();
    }
    struct inode *in = locked ? tracked(fd) : NULL;
    ssize_t r;
    if (in && !at_pos) r = at_offset(fd, in, rbuf, wbuf, n);
    else if (in) r = wbuf ? ov_pwrite(in, wbuf, n, off) : ov_pread(fd, in, rbuf, n, off);
    else if (!at_pos) r = wbuf ? real.write(fd, wbuf, n) : real.read(fd, rbuf, n);
    else r = wbuf ? real.pwrite(fd, wbuf, n, off) : real.pread(fd, rbuf, n, off);
    if (locked) unlock();
    return r;
}

ssize_t pread(int fd, void *buf, size_t n, off_t off) { return io(fd, buf, NULL, n, off, true); }
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return io(fd, NULL, buf, n, off, true); }
ssize_t read(int fd, void *buf, size_t n) { return io(fd, buf, NULL, n, 0, false); }
ssize_t write(int fd, const void *buf, size_t n) { return io(fd, NULL, buf, n, 0, false); }

ssize_t pread64(int fd, void *buf, size_t n, off_t off) __attribute__((alias("pread")));
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) __attribute__((alias("pwrite")));

/* A vectored write gathered into one buffer: pos < 0 writes at the descriptor's offset. */
static ssize_t gathered(int fd, const struct iovec *iov, int cnt, off_t pos)
{
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0, at = 0; i < (size_t)cnt; at += iov[i].iov_len, i++) memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
    ssize_t r = pos < 0 ? write(fd, buf, n) : pwrite(fd, buf, n, pos);
    free(buf);
    return r;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    ensure();
    return maybe_tracked(fd) && cnt >= 0 ? gathered(fd, iov, cnt, -1) : real.writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    ensure();
    return maybe_tracked(fd) && cnt >= 0 && off >= 0 ? gathered(fd, iov, cnt, off) : real.pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) __attribute__((alias("pwritev")));

/* With the lock held: the writes kept, in their order, to the file, through a writable descriptor of the inode (the
 * one synced may be read-only: the CA's own descriptor of the WAL). */
static int flush(int fd, struct inode *in)
{
    if (!in->head) return 0;
    int wfd = g_fd[fd].wr ? fd : -1;
    for (int i = 0; wfd < 0 && i < FD_MAX; i++)
        if (g_fd[i].on && g_fd[i].in == in && g_fd[i].wr) wfd = i;
    if (wfd < 0) die("a sync with writes kept and no writable descriptor of the file");
    while (in->head) {
        struct ext *e = in->head;
        for (size_t done = 0; done < e->len;) {
            ssize_t w = real.pwrite(wfd, e->data + done, e->len - done, e->off + (off_t)done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return -1;
            done += (size_t)w;
        }
        in->head = e->next;
        free(e);
    }
    in->tail = &in->head;
    in->end = 0;
    return 0;
}

/* The disk loses power during this sync: it never returns; the process dies g_delay_ms later. */
static void power_cut(bool first)
{
    if (first) {
        struct timespec ts = {g_delay_ms / 1000, (g_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        size_t lost = 0;
        lock();
        for (const struct inode *in = g_inodes; in; in = in->next)
            for (const struct ext *e = in->head; e; e = e->next) lost += e->len;
        unlock();
        fprintf(stderr, "powercut: power cut at sync %ld: %zu bytes written and not synced are lost\n", g_at_sync, lost);
        (void)kill(getpid(), SIGKILL);
    }
    for (;;) pause();
}

static int synced(int fd, int (*sync_fn)(int))
{
    if (!maybe_tracked(fd)) return sync_fn(fd);
    lock();
    struct inode *in = tracked(fd);
    char name[16] = "";
    if (g_thread[0]) (void)pthread_getname_np(pthread_self(), name, sizeof name);
    bool counts = !g_thread[0] || strcmp(name, g_thread) == 0;
    if (in && (g_cut || (g_at_sync > 0 && counts && ++g_syncs == g_at_sync))) {
        bool first = !g_cut;
        __atomic_store_n(&g_cut, true, __ATOMIC_RELAXED);
        unlock();
        power_cut(first);
    }
    int r = in ? flush(fd, in) : 0;
    unlock();
    return r == 0 ? sync_fn(fd) : -1;
}

int fsync(int fd)
{
    ensure();
    return synced(fd, real.fsync);
}

int fdatasync(int fd)
{
    ensure();
    return synced(fd, real.fdatasync);
}

int ftruncate(int fd, off_t len)
{
    ensure();
    if (!maybe_tracked(fd)) return real.ftruncate(fd, len);
    lock();
    int r = real.ftruncate(fd, len);
    struct inode *in = tracked(fd);
    if (r == 0 && in) clip(in, len);
    unlock();
    return r;
}

int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));

int fstat(int fd, struct stat *st)
{
    ensure();
    if (!maybe_tracked(fd)) return real.fstat(fd, st);
    lock();
    int r = real.fstat(fd, st);
    struct inode *in = tracked(fd);
    if (r == 0 && in && in->end > st->st_size) st->st_size = in->end;
    unlock();
    return r;
}

int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)st); }
