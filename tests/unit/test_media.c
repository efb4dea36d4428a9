/* common/media: Annex B splitting, emulation prevention, NAL classification, SEI messages, MP4 boxes and
 * sample tables (on ffmpeg-made files and ONVIF's reference clip), the MP4 rewriter. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "media.h"
#include "test_util.h"

#ifndef CAMTRUST_ONVIF_VECTORS
#error "CAMTRUST_ONVIF_VECTORS: the folder of the ONVIF reference clips (tests/vectors/onvif-media-signing)"
#endif

START_TEST(annexb_split)
{
    /* 4-byte and 3-byte start codes, trailing zeros before the next start code, garbage before the first. */
    static const uint8_t s[] = {0xaa, 0xbb, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 0x88, 0};
    size_t pos = 0, n, skipped;
    const uint8_t *nal;
    ck_assert_int_eq(media_annexb_next(s, sizeof s, &pos, &nal, &n, &skipped), CT_OK);
    ck_assert_uint_eq(skipped, 2);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(nal[0], 0x67);
    ck_assert_int_eq(media_annexb_next(s, sizeof s, &pos, &nal, &n, &skipped), CT_OK);
    ck_assert_uint_eq(skipped, 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(nal[0], 0x68);
    ck_assert_int_eq(media_annexb_next(s, sizeof s, &pos, &nal, &n, &skipped), CT_OK);
    ck_assert_uint_eq(n, 2); /* the last NAL unit loses its trailing zero too */
    ck_assert_int_eq(media_annexb_next(s, sizeof s, &pos, &nal, &n, &skipped), CT_ERR_NOT_FOUND);
    media_codec c;
    ck_assert_int_eq(media_annexb_guess(s, sizeof s, &c), CT_OK);
    ck_assert_int_eq(c, MEDIA_H264);
    static const uint8_t h265[] = {0, 0, 0, 1, 0x40, 0x01, 0x0c};
    ck_assert_int_eq(media_annexb_guess(h265, sizeof h265, &c), CT_OK);
    ck_assert_int_eq(c, MEDIA_H265);
    static const uint8_t junk[] = {1, 2, 3, 4, 5};
    ck_assert_int_eq(media_annexb_guess(junk, sizeof junk, &c), CT_ERR_BAD_REQUEST);
    /* A start code ending the input (fuzz_verify): its empty NAL unit is not read (a byte past a mapped file, which
     * can be past the mapping). Exactly as long as the input, so that a read past it is caught. */
    static const uint8_t cut[] = {0xaa, 0xbb, 0, 0, 1};
    uint8_t *heap = malloc(sizeof cut);
    ck_assert_ptr_nonnull(heap);
    memcpy(heap, cut, sizeof cut);
    ck_assert_int_eq(media_annexb_guess(heap, sizeof cut, &c), CT_ERR_BAD_REQUEST);
    free(heap);
}
END_TEST

START_TEST(epb_round_trip)
{
    static const uint8_t raw[] = {0x06, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0};
    static const uint8_t esc[] = {0x06, 0, 0, 3, 0, 0, 3, 0, 1, 0, 0, 3, 2, 0, 0, 3, 3, 0, 0, 4, 0, 0};
    ct_buf b = CT_BUF_INIT;
    uint8_t back[64];
    size_t n;
    ck_assert_int_eq(ct_buf_alloc(&b, 64), CT_OK);
    ck_assert_int_eq(media_epb_add(raw, sizeof raw, &b), CT_OK);
    ck_assert_uint_eq(b.len, sizeof esc);
    ck_assert_mem_eq(b.data, esc, sizeof esc);
    ck_assert_int_eq(media_epb_remove(b.data, b.len, back, sizeof back, &n), CT_OK);
    ck_assert_uint_eq(n, sizeof raw);
    ck_assert_mem_eq(back, raw, sizeof raw);
    ck_assert_int_eq(media_epb_remove(b.data, b.len, back, 4, &n), CT_ERR_BUF_FULL);
    ct_buf_free(&b);
}
END_TEST

START_TEST(classify)
{
    static const uint8_t idr[] = {0x65, 0x88}, p2[] = {0x41, 0x20}, sps[] = {0x67}, bad[] = {0xe5, 0x88};
    media_nal_info i = media_nal_classify(MEDIA_H264, idr, sizeof idr);
    ck_assert_int_eq(i.kind, MEDIA_NAL_IRAP);
    ck_assert(i.first_slice);
    i = media_nal_classify(MEDIA_H264, p2, sizeof p2);
    ck_assert_int_eq(i.kind, MEDIA_NAL_TRAIL);
    ck_assert(!i.first_slice);
    ck_assert_int_eq(media_nal_classify(MEDIA_H264, sps, 1).kind, MEDIA_NAL_PARAM);
    ck_assert_int_eq(media_nal_classify(MEDIA_H264, bad, sizeof bad).kind, MEDIA_NAL_INVALID);
    ck_assert_int_eq(media_nal_classify(MEDIA_H264, NULL, 0).kind, MEDIA_NAL_INVALID);
    static const uint8_t cra[] = {21 << 1, 1, 0x80}, rasl[] = {8 << 1, 1, 0x80}, suffix[] = {40 << 1, 1};
    ck_assert_int_eq(media_nal_classify(MEDIA_H265, cra, sizeof cra).kind, MEDIA_NAL_IRAP);
    ck_assert_int_eq(media_nal_classify(MEDIA_H265, rasl, sizeof rasl).kind, MEDIA_NAL_VCL_OTHER);
    ck_assert_int_eq(media_nal_classify(MEDIA_H265, suffix, sizeof suffix).kind, MEDIA_NAL_SUFFIX_SEI);
    ck_assert_int_eq(media_nal_classify(MEDIA_H265, cra, 1).kind, MEDIA_NAL_INVALID);
}
END_TEST

START_TEST(sei_messages)
{
    static const uint8_t uuid[MEDIA_UUID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint8_t payload[600];
    ct_buf b = CT_BUF_INIT;
    size_t off, size;
    memset(payload, 0x42, sizeof payload);
    memcpy(payload, uuid, sizeof uuid);
    for (int codec = MEDIA_H264; codec <= MEDIA_H265; codec++) {
        ck_assert_int_eq(ct_buf_alloc(&b, 1024), CT_OK);
        ck_assert_int_eq(media_sei_header((media_codec)codec, false, sizeof payload, &b), CT_OK);
        ck_assert_int_eq(ct_buf_append(&b, payload, sizeof payload), CT_OK);
        ck_assert_int_eq(ct_buf_append(&b, "\x80", 1), CT_OK);
        ck_assert_int_eq(media_sei_find((media_codec)codec, b.data, b.len, uuid, &off, &size), CT_OK);
        ck_assert_uint_eq(size, sizeof payload);
        ck_assert_mem_eq(b.data + off, payload, sizeof payload);
        /* another UUID is not found; a size running past the NAL unit is malformed */
        static const uint8_t other[MEDIA_UUID_LEN] = {0};
        ck_assert_int_eq(media_sei_find((media_codec)codec, b.data, b.len, other, &off, &size), CT_ERR_NOT_FOUND);
        ck_assert_int_eq(media_sei_find((media_codec)codec, b.data, b.len - 100, uuid, &off, &size), CT_ERR_BAD_REQUEST);
        ct_buf_free(&b);
    }
}
END_TEST

/* Edit lists as the verifier reads them: one edit is what writers make; two reorder what a player shows; another rate,
 * an elst cut short (its box ending the file: nothing may be read past it) or counting past its box is said. */
START_TEST(mp4_edit_lists)
{
    /* moov > trak > edts > elst, the elst's payload given (version/flags, count, entries) */
    uint8_t f[128];
    media_edits e;
#define NEST(payload_len) do {                                                                  \
        size_t el = 8 + (payload_len), ed = 8 + el, tr = 8 + ed, mo = 8 + tr;                  \
        f[0] = 0, f[1] = 0, f[2] = 0, f[3] = (uint8_t)mo, memcpy(f + 4, "moov", 4);            \
        f[8] = 0, f[9] = 0, f[10] = 0, f[11] = (uint8_t)tr, memcpy(f + 12, "trak", 4);        \
        f[16] = 0, f[17] = 0, f[18] = 0, f[19] = (uint8_t)ed, memcpy(f + 20, "edts", 4);      \
        f[24] = 0, f[25] = 0, f[26] = 0, f[27] = (uint8_t)el, memcpy(f + 28, "elst", 4);      \
    } while (0)
    static const uint8_t one[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 1, 0, 0};
    static const uint8_t two[] = {0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 5, 0, 1, 0, 0,
                                  0, 0, 0, 9, 0, 0, 0, 0, 0, 1, 0, 0};
    static const uint8_t slow[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0x80, 0};
    static const uint8_t past[] = {0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9, 0, 0, 0, 0, 0, 1, 0, 0};
    const struct {
        const uint8_t *payload;
        size_t len;
        uint64_t edits;
        bool other_rate, malformed;
    } cases[] = {{one, sizeof one, 1, false, false}, {two, sizeof two, 2, false, false},
                 {slow, sizeof slow, 1, true, false}, {past, sizeof past, 1, false, true}, {one, 0, 0, false, true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        NEST(cases[i].len);
        memcpy(f + 32, cases[i].payload, cases[i].len);
        size_t n = 32 + cases[i].len;
        uint8_t *exact = malloc(n); /* the file ends where the elst does: ASan sees any read past it */
        ck_assert_ptr_nonnull(exact);
        memcpy(exact, f, n);
        media_mp4_edits(exact, n, &e);
        free(exact);
        ck_assert_msg(e.most_edits == cases[i].edits && e.other_rate == cases[i].other_rate &&
                          e.malformed == cases[i].malformed,
                      "case %zu: %llu edits, other rate %d, malformed %d", i, (unsigned long long)e.most_edits,
                      e.other_rate, e.malformed);
    }
#undef NEST
}
END_TEST

/* Box writing for mp4_clear_lead: opens a box at *n (its size set by box_close), returns where it starts. */
static size_t box_open(uint8_t *f, size_t *n, const char *type)
{
    size_t at = *n;
    memcpy(f + at + 4, type, 4);
    *n += 8;
    return at;
}

static void box_close(uint8_t *f, size_t n, size_t at)
{
    size_t len = n - at;
    for (int i = 0; i < 4; i++) f[at + i] = (uint8_t)(len >> (24 - 8 * i));
}

/* A video sample entry of `type` (the 78 bytes of VisualSampleEntry fields zero, an avcC of 4 bytes), with a sinf
 * naming `frma` (NULL: no sinf; "": a frma too short to name any). */
static void sample_entry(uint8_t *f, size_t *n, const char *type, const char *frma)
{
    size_t e = box_open(f, n, type);
    memset(f + *n, 0, 78);
    *n += 78;
    size_t c = box_open(f, n, "avcC");
    memcpy(f + *n, "\x01\x42\x00\x1e", 4);
    *n += 4;
    box_close(f, *n, c);
    if (frma) {
        size_t si = box_open(f, n, "sinf"), fr = box_open(f, n, "frma");
        memcpy(f + *n, frma, strlen(frma));
        *n += strlen(frma);
        box_close(f, *n, fr);
        box_close(f, *n, si);
    }
    box_close(f, *n, e);
}

/* A packager's clear lead: an avc1 entry and the same as encv, its sinf's frma naming the first one's format, count
 * as one sample entry; an encv whose frma names another format (avc3: in-band parameter sets), or none, does not. */
START_TEST(mp4_clear_lead)
{
    const struct {
        const char *first, *second, *frma;
        uint64_t entries;
    } cases[] = {{"avc1", "encv", "avc1", 1}, {"encv", "avc1", "avc1", 1}, {"avc1", "encv", "avc3", 2},
                 {"avc3", "encv", "avc1", 2}, {"avc1", "encv", "", 2},      {"avc1", "encv", NULL, 2},
                 {"avc1", "avc3", NULL, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t f[512];
        size_t n = 0, path[5];
        const char *names[] = {"moov", "trak", "mdia", "minf", "stbl"};
        memset(f, 0, sizeof f);
        for (size_t k = 0; k < 5; k++) {
            path[k] = box_open(f, &n, names[k]);
            if (k == 2) { /* mdia's hdlr: version/flags, pre_defined, handler type */
                size_t h = box_open(f, &n, "hdlr");
                memcpy(f + n + 8, "vide", 4);
                n += 12;
                box_close(f, n, h);
            }
        }
        size_t stsd = box_open(f, &n, "stsd");
        f[n + 7] = 2; /* version/flags, entry count 2 */
        n += 8;
        bool first_enc = strcmp(cases[i].first, "encv") == 0;
        sample_entry(f, &n, cases[i].first, first_enc ? cases[i].frma : NULL);
        sample_entry(f, &n, cases[i].second, first_enc ? NULL : cases[i].frma);
        box_close(f, n, stsd);
        for (size_t k = 5; k-- > 0;) box_close(f, n, path[k]);
        uint8_t *exact = malloc(n); /* ASan sees any read past the file */
        ck_assert_ptr_nonnull(exact);
        memcpy(exact, f, n);
        media_edits e;
        media_mp4_edits(exact, n, &e);
        free(exact);
        ck_assert_msg(e.most_entries == cases[i].entries, "case %zu: %llu entries", i,
                      (unsigned long long)e.most_entries);
    }
}
END_TEST

START_TEST(boxes_bounded)
{
    /* a box claiming more than is there; a largesize box; size 0 running to the end */
    static const uint8_t over[] = {0, 0, 0, 100, 'f', 't', 'y', 'p', 0, 0, 0, 0};
    static const uint8_t large[] = {0, 0, 0, 1, 'f', 'r', 'e', 'e', 0, 0, 0, 0, 0, 0, 0, 16};
    static const uint8_t zero[] = {0, 0, 0, 0, 'm', 'd', 'a', 't', 1, 2, 3};
    uint64_t pos = 0;
    media_box b;
    ck_assert_int_eq(media_box_next(over, sizeof over, &pos, &b), CT_ERR_BAD_REQUEST);
    pos = 0;
    ck_assert_int_eq(media_box_next(large, sizeof large, &pos, &b), CT_OK);
    ck_assert_uint_eq(b.hdr, 16);
    ck_assert_uint_eq(b.size, 16);
    pos = 0;
    ck_assert_int_eq(media_box_next(zero, sizeof zero, &pos, &b), CT_OK);
    ck_assert_uint_eq(b.size, sizeof zero);
    ck_assert(media_is_mp4(over, sizeof over));
    media_mp4 *m = NULL;
    ck_assert_int_eq(media_mp4_open(zero, sizeof zero, &m), CT_ERR_BAD_REQUEST); /* no moov */
}
END_TEST

/* A snapshot keeps the bytes one read gave, when a mapping shows what another writer put in the file since; a
 * file over the maximum, an empty one or a folder is refused. */
START_TEST(file_snapshot)
{
    const char *dir = tu_tmpdir("media");
    char path[600];
    media_file snap, map;
    snprintf(path, sizeof path, "%s/rec.bin", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs("verified bytes", f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(media_file_snapshot(path, 1024, &snap), CT_OK);
    ck_assert_int_eq(media_file_map(path, &map), CT_OK);
    f = fopen(path, "r+b"); /* rewritten in place: the same file, other bytes */
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs("ALTERED!", f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_mem_eq(snap.data, "verified bytes", 14);
    ck_assert_mem_eq(map.data, "ALTERED! bytes", 14);
    media_file_unmap(&snap);
    media_file_unmap(&map);
    ck_assert_int_eq(media_file_snapshot(path, 13, &snap), CT_ERR_TOO_LARGE);
    ck_assert_ptr_null(snap.data);
    ck_assert_int_eq(media_file_snapshot(dir, 1024, &snap), CT_ERR_IO);
    ck_assert_int_eq(tu_sh(": >'%s'", path), 0);
    ck_assert_int_eq(media_file_snapshot(path, 1024, &snap), CT_ERR_BAD_REQUEST);
}
END_TEST

static volatile sig_atomic_t previous_calls;

/* The application's SIGBUS handler under the guard: counts what it is given; a fault here means the guard is gone. */
static void previous_sigbus(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    if (si->si_code > 0) _exit(5);
    previous_calls++;
}

/* A guarded mapping of a file cut short while mapped reads zeros past the cut instead of raising SIGBUS, and the
 * file is said to have shrunk (the caller's result replaced by CT_ERR_IO naming it); a file left whole passes the
 * caller's result through. A SIGBUS in any other mapping still kills: the guard takes only its own; one sent by
 * kill is not swallowed; one not its own goes to the application's handler, and the guard stays installed. */
START_TEST(file_guarded)
{
    const char *dir = tu_tmpdir("media");
    char path[600];
    media_file g;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 4 * page;
    snprintf(path, sizeof path, "%s/rec.bin", dir);
    ck_assert_int_eq(tu_sh("head -c %zu /dev/zero | tr '\\0' x >'%s'", len, path), 0);
    pid_t pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) { /* the guard installed over the default action, then a plain mapping read past its file's end */
        signal(SIGBUS, SIG_DFL);
        if (media_file_map_guarded(path, &g) != CT_OK) _exit(2);
        int fd = open(path, O_RDONLY);
        const volatile uint8_t *p = fd < 0 ? MAP_FAILED : mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED || truncate(path, (off_t)page) != 0) _exit(3);
        _exit(p[len - 1] == 0 ? 42 : 4);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "status %#x", status);
    ck_assert_int_eq(tu_sh("head -c %zu /dev/zero | tr '\\0' x >'%s'", len, path), 0);
    pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) { /* a SIGBUS sent by kill under the default action still kills (it was swallowed) */
        signal(SIGBUS, SIG_DFL);
        if (media_file_map_guarded(path, &g) != CT_OK) _exit(2);
        kill(getpid(), SIGBUS);
        _exit(42);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS, "status %#x", status);
    pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) { /* one not ours goes to the handler there was before, and the guard stays: it takes the next */
        struct sigaction sa = {.sa_sigaction = previous_sigbus, .sa_flags = SA_SIGINFO};
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, NULL) != 0 || media_file_map_guarded(path, &g) != CT_OK) _exit(2);
        kill(getpid(), SIGBUS);
        if (previous_calls != 1 || truncate(path, (off_t)page) != 0) _exit(3);
        _exit(g.data[len - 1] == 0 && media_file_shrank(&g) ? 42 : 4);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42, "status %#x", status);
    ck_assert_int_eq(tu_sh("head -c %zu /dev/zero | tr '\\0' x >'%s'", len, path), 0);
    ck_assert_int_eq(media_file_map_guarded(path, &g), CT_OK);
    ck_assert(!media_file_shrank(&g));
    ck_assert_int_eq(truncate(path, (off_t)page + 1), 0);
    unsigned xs = 0;
    for (size_t i = 0; i < g.len; i++) xs += g.data[i] == 'x';
    ck_assert_uint_eq(xs, page + 1); /* the page holding the new end reads on; the pages after it are zeros */
    ck_assert(media_file_shrank(&g));
    ck_assert_int_eq(media_file_unmap_guarded(&g, path, CT_OK), CT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "rec.bin shrank while it was read"));
    ck_assert_ptr_null(g.data);
    ck_assert_int_eq(media_file_map_guarded(path, &g), CT_OK);
    ck_assert_int_eq(media_file_unmap_guarded(&g, path, CT_ERR_BAD_REQUEST), CT_ERR_BAD_REQUEST);
}
END_TEST

static void mp4_facts(const char *path, media_codec codec, uint32_t samples)
{
    media_file f;
    media_mp4 *m = NULL;
    media_mp4_video v;
    media_sample s;
    const uint8_t *nal;
    size_t n, pos = 0;
    ck_assert_int_eq(media_file_map(path, &f), CT_OK);
    ck_assert(media_is_mp4(f.data, f.len));
    ck_assert_int_eq(media_mp4_open(f.data, f.len, &m), CT_OK);
    ck_assert_int_eq(media_mp4_video_track(m, &v), CT_OK);
    ck_assert_int_eq(v.codec, codec);
    ck_assert_uint_eq(v.nal_length_size, 4);
    ck_assert_uint_eq(v.samples, samples);
    ck_assert_int_eq(media_mp4_param_set(m, 0, &nal, &n), CT_OK);
    ck_assert_int_eq(media_nal_classify(codec, nal, n).kind, MEDIA_NAL_PARAM);
    ck_assert_int_eq(media_mp4_sample(m, 0, &s), CT_OK);
    ck_assert(s.sync);
    ck_assert_int_eq(media_lp_next(f.data + s.off, s.size, 4, &pos, &nal, &n), CT_OK);
    ck_assert_int_eq(media_mp4_sample(m, samples, &s), CT_ERR_NOT_FOUND);
    media_mp4_free(m);
    media_file_unmap(&f);
}

START_TEST(mp4_tables)
{
    const char *dir = tu_tmpdir("media");
    mp4_facts(CAMTRUST_ONVIF_VECTORS "/test_signed_h264.mp4", MEDIA_H264, 257);
    mp4_facts(CAMTRUST_ONVIF_VECTORS "/test_signed_h265.mp4", MEDIA_H265, 303);
    ck_assert_int_eq(tu_sh("ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine -t 2 "
                           "-c:v libx264 -g 30 -c:a aac -shortest '%s/av.mp4'", dir), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/av.mp4", dir);
    mp4_facts(path, MEDIA_H264, 60);
}
END_TEST

/* The rewriter with every sample doubled in front by a filler NAL unit: ffmpeg must still decode the same
 * frames, and the audio track must survive its chunks moving. */
static ct_err add_filler(void *arg, uint32_t index, const uint8_t *sample, size_t len, media_out *o)
{
    (void)arg;
    (void)index;
    static const uint8_t filler[] = {0, 0, 0, 3, 0x0c, 0xff, 0x80};
    CT_GUARD_RET(media_out_write(o, filler, sizeof filler));
    return media_out_write(o, sample, len);
}

START_TEST(mp4_rewrite)
{
    const char *dir = tu_tmpdir("media");
    char in[600], out[600];
    media_file f;
    media_mp4 *m = NULL;
    snprintf(in, sizeof in, "%s/av.mp4", dir);
    snprintf(out, sizeof out, "%s/rewritten.mp4", dir);
    ck_assert_int_eq(tu_sh("ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine -t 2 "
                           "-c:v libx264 -g 30 -c:a aac -shortest '%s'", in), 0);
    ck_assert_int_eq(media_file_map(in, &f), CT_OK);
    ck_assert_int_eq(media_mp4_open(f.data, f.len, &m), CT_OK);
    FILE *o = fopen(out, "wb");
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(media_mp4_rewrite(m, o, add_filler, NULL), CT_OK);
    ck_assert_int_eq(fclose(o), 0);
    media_mp4_free(m);
    media_file_unmap(&f);
    ck_assert_int_eq(tu_sh("ffmpeg -v error -i '%s' -f framemd5 - | grep -v '^#' >'%s/a.md5' && "
                           "ffmpeg -v error -i '%s' -f framemd5 - | grep -v '^#' >'%s/b.md5' && "
                           "test \"$(grep -c , '%s/a.md5')\" -gt 60 && cmp -s '%s/a.md5' '%s/b.md5'",
                           in, dir, out, dir, dir, dir, dir),
                     0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("media");
    TCase *tc = tcase_create("media");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, annexb_split);
    tcase_add_test(tc, epb_round_trip);
    tcase_add_test(tc, classify);
    tcase_add_test(tc, sei_messages);
    tcase_add_test(tc, boxes_bounded);
    tcase_add_test(tc, mp4_edit_lists);
    tcase_add_test(tc, mp4_clear_lead);
    tcase_add_test(tc, file_snapshot);
    tcase_add_test(tc, file_guarded);
    tcase_add_test(tc, mp4_tables);
    tcase_add_test(tc, mp4_rewrite);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
