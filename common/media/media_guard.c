/* Mapped inputs that another process may cut short while they are read. Reading a page of a mapping past the
 * file's new end raises SIGBUS, which kills the process: a custodian's check of a recording on a share would
 * crash instead of saying what happened. Here a SIGBUS in a guarded mapping puts zeros in place of the pages from
 * the vanished one on (as systemd-journald does for its mapped journals) and marks the file shrunk; the caller reads
 * on harmlessly (every parser is bounded by the mapped length) and then fails, naming the file. A SIGBUS anywhere
 * else goes to the handler that was there before, or kills as it always did. Kept apart from media_nal.c so
 * that the camera agent, which maps only its own files, does not link it. */
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "media.h"

#define GUARD_SLOTS 8 /* files mapped at once by one process: a tool maps one */

typedef struct {
    _Atomic uintptr_t start; /* 0: a free slot */
    _Atomic size_t len;      /* the mapping's length in whole pages */
    atomic_bool shrank;
} guard_slot;

static guard_slot slots[GUARD_SLOTS];
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static struct sigaction previous;
static bool handler_ok;
static uintptr_t page_size;

/* Runs in a signal handler: only async-signal-safe calls, and mmap, which POSIX does not list as such but is a
 * plain system call on Linux (no lock, no allocation). */
static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (size_t i = 0; si->si_code == BUS_ADRERR && i < GUARD_SLOTS; i++) {
        uintptr_t s = atomic_load(&slots[i].start), len = atomic_load(&slots[i].len);
        if (!s || a < s || a - s >= len) continue;
        /* Zeros from that page to the mapping's end: the file was cut there, so the pages after it are gone too
         * (one call, not one fault and one call per page of what is left to read). */
        uintptr_t page = a & ~(page_size - 1);
        if (mmap((void *)page, s + len - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
            break;
        atomic_store(&slots[i].shrank, true);
        return; /* the read is retried, on zeros */
    }
    /* Not ours: to the handler there was before, called here so that this one stays installed. */
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        if (previous.sa_flags & SA_SIGINFO)
            previous.sa_sigaction(sig, si, ctx);
        else
            previous.sa_handler(sig);
        return;
    }
    if (si->si_code <= 0 && previous.sa_handler == SIG_IGN) return; /* a kill, ignored as before */
    /* The default action (a fault under SIG_IGN too: the kernel delivers it anyway): a fault recurs on return, a
     * kill (si_code <= 0) is not repeated, so raised again; either kills, as without the guard. */
    sigaction(sig, &previous, NULL);
    if (si->si_code <= 0) raise(sig);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    long ps = sysconf(_SC_PAGESIZE);
    page_size = ps > 0 ? (uintptr_t)ps : 4096;
    handler_ok = sigaction(SIGBUS, &sa, &previous) == 0;
}

ct_err media_file_map_guarded(const char *path, media_file *out)
{
    ct_err rc = CT_OK;
    size_t i = 0;
    memset(out, 0, sizeof *out); /* the error path unmaps it */
    pthread_once(&installed, install);
    CT_ENSURE_MSG(handler_ok, CT_ERR_INTERNAL, "cannot install the SIGBUS handler that guards a mapped %s", path);
    CT_GUARD(media_file_map(path, out));
    pthread_mutex_lock(&slots_mu);
    while (i < GUARD_SLOTS && atomic_load(&slots[i].start)) i++;
    if (i < GUARD_SLOTS) {
        atomic_store(&slots[i].shrank, false);
        atomic_store(&slots[i].len, (out->len + page_size - 1) & ~(page_size - 1));
        atomic_store(&slots[i].start, (uintptr_t)out->map); /* last: the handler reads the slot from here on */
    }
    pthread_mutex_unlock(&slots_mu);
    CT_ENSURE_MSG(i < GUARD_SLOTS, CT_ERR_INTERNAL, "more than %d files mapped at once", GUARD_SLOTS);
cleanup:
    if (rc != CT_OK) media_file_unmap(out);
    return rc;
}

static guard_slot *slot_of(const media_file *f)
{
    for (size_t i = 0; f->map && i < GUARD_SLOTS; i++)
        if (atomic_load(&slots[i].start) == (uintptr_t)f->map) return &slots[i];
    return NULL;
}

bool media_file_shrank(const media_file *f)
{
    const guard_slot *s = slot_of(f);
    return s && atomic_load(&s->shrank);
}

ct_err media_file_unmap_guarded(media_file *f, const char *path, ct_err rc)
{
    pthread_mutex_lock(&slots_mu);
    guard_slot *s = slot_of(f);
    bool shrank = s && atomic_load(&s->shrank);
    if (s) atomic_store(&s->start, 0); /* before the unmap: its addresses may be mapped again, for another use */
    media_file_unmap(f);
    pthread_mutex_unlock(&slots_mu);
    /* BUS_ADRERR: a page past the file's end, or one the kernel could not read (an I/O error on NFS or USB). */
    return shrank ? ct_fail(CT_ERR_IO, "%s shrank while it was read, or could not be read (truncated meanwhile, or "
                                       "an I/O error): nothing read from it counts", path)
                  : rc;
}
