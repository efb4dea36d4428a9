/* Encrypted video benchmark: what the camera's encryption costs for a 4K 30 fps 25 Mbit/s H.264 stream. The
 * stream is synthetic in its sizes (an IDR five times a P picture, several slices per picture, parameter sets and
 * an SEI per GOP) but, with --headers FILE (a real x264 4K stream, Annex B), carries that stream's parameter sets
 * and slice headers, so the writer measures and keeps clear each real slice header as it does for a camera;
 * without it the slices fall back to the fixed 32-byte clear lead (and the writer warns). The same samples go
 * through the fragmented MP4 writer in clear, 'cbcs' and 'cenc' mode (output discarded: no disk in the
 * figure); the difference to clear is the encryption's own cost: subsample maps, AES, senc/saiz/saio/seig, and a
 * key per segment wrapped for each viewer (ECDH P-256 with a fresh ephemeral key each).
 * usage: camtrust-bench-media-encrypt [--seconds S] [--mbps M] [--fps F] [--slices N] [--segment-s K] [--viewers V]
 *                                     [--headers FILE] */
#define _POSIX_C_SOURCE 200809L
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../common/cenc/cenc.h"

typedef struct {
    double seconds, mbps;
    unsigned fps, slices, segment_s, viewers;
} params;


static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static ct_err discard(void *arg, const uint8_t *p, size_t n)
{
    (void)arg, (void)p, (void)n;
    return CT_OK;
}

static void die(const char *what, ct_err rc)
{
    fprintf(stderr, "bench: %s: %s %s\n", what, ct_err_message(rc), ct_err_detail());
    exit(1);
}

/* The real stream's SPS, PPS and the starts of its first IDR and non-IDR slices (header and then some). */
#define PREFIX_MAX 256
typedef struct {
    uint8_t nal[4][PREFIX_MAX]; /* SPS, PPS, IDR slice, P slice */
    size_t len[4];
} real_headers;

static real_headers hdr = {
    .nal = {{0x67, 0x64, 0x00, 0x33, 0xac, 0x2c, 0xa4, 0x01, 0xe0, 0x08, 0x9f, 0x97}, {0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0},
            {0x65}, {0x41}},
    .len = {12, 6, 1, 1}};

static void load_headers(const char *path)
{
    media_file f;
    size_t pos = 0, n, skipped;
    const uint8_t *nal;
    bool have[4] = {false};
    if (media_file_map(path, &f) != CT_OK) die("--headers", CT_ERR_IO);
    while (media_annexb_next(f.data, f.len, &pos, &nal, &n, &skipped) == CT_OK) {
        unsigned type = nal[0] & 0x1f;
        int k = type == 7 ? 0 : type == 8 ? 1 : type == 5 ? 2 : type == 1 ? 3 : -1;
        if (k < 0 || have[k] || (k < 2 && n > PREFIX_MAX)) continue;
        hdr.len[k] = n < PREFIX_MAX ? n : PREFIX_MAX;
        memcpy(hdr.nal[k], nal, hdr.len[k]);
        have[k] = true;
    }
    media_file_unmap(&f);
    if (!have[0] || !have[1] || !have[2] || !have[3]) die("--headers: no SPS, PPS, IDR and P slice", CT_ERR_BAD_REQUEST);
}

/* One picture: `slices` slice NAL units sharing `bytes` (each starting as the real slice does), after SPS, PPS
 * and an SEI for an IDR. */
static size_t picture(uint8_t *buf, size_t bytes, bool idr, unsigned slices)
{
    size_t at = 0;
    for (int i = 0; idr && i < 2; i++) {
        buf[at] = 0, buf[at + 1] = 0, buf[at + 2] = 0, buf[at + 3] = (uint8_t)hdr.len[i];
        memcpy(buf + at + 4, hdr.nal[i], hdr.len[i]);
        at += 4 + hdr.len[i];
    }
    if (idr) { /* a 64-byte SEI (user data unregistered) */
        buf[at] = buf[at + 1] = buf[at + 2] = 0, buf[at + 3] = 64, buf[at + 4] = 0x06;
        memset(buf + at + 5, 0x55, 63);
        at += 68;
    }
    size_t per = bytes / slices;
    for (unsigned s = 0; s < slices; s++) {
        size_t n = per + (s == 0 ? bytes % slices : 0);
        buf[at] = (uint8_t)(n >> 24), buf[at + 1] = (uint8_t)(n >> 16), buf[at + 2] = (uint8_t)(n >> 8);
        buf[at + 3] = (uint8_t)n;
        size_t head = hdr.len[idr ? 2 : 3] < n ? hdr.len[idr ? 2 : 3] : n;
        memcpy(buf + at + 4, hdr.nal[idr ? 2 : 3], head);
        for (size_t i = head; i < n; i++) buf[at + 4 + i] = (uint8_t)(i * 131 + s);
        at += 4 + n;
    }
    return at;
}

/* Runs the stream through the writer in `scheme`; CPU seconds and stats back. */
static double run(const params *p, cenc_scheme scheme, const cenc_recipient *r, cenc_stats *st)
{
    const uint8_t *ps[] = {hdr.nal[0], hdr.nal[1]};
    const size_t pl[] = {hdr.len[0], hdr.len[1]};
    ct_buf config = CT_BUF_INIT;
    ct_err rc = cenc_config_record(MEDIA_H264, ps, pl, 2, &config);
    if (rc != CT_OK) die("config", rc);
    cenc_track t = {.codec = MEDIA_H264, .timescale = 90000, .width = 3840, .height = 2160, .config = config.data,
                    .config_len = config.len};
    cenc_options o = {.scheme = scheme, .segment_ms = p->segment_s * 1000, .recipients = r,
                      .n_recipients = scheme == CENC_CLEAR ? 0 : p->viewers};
    /* GOP of fps pictures, IDR = 5 P: bytes per GOP = (fps + 4) P */
    double gop_bytes = p->mbps * 1e6 / 8;
    size_t p_bytes = (size_t)(gop_bytes / (p->fps + 4)), i_bytes = 5 * p_bytes;
    uint8_t *idr = malloc(i_bytes + 4096), *pic = malloc(p_bytes + 4096);
    if (!idr || !pic) die("memory", CT_ERR_NOMEM);
    size_t idr_len = picture(idr, i_bytes, true, p->slices), pic_len = picture(pic, p_bytes, false, p->slices);
    unsigned frames = (unsigned)(p->seconds * p->fps);
    cenc_writer *w = NULL;
    double t0 = cpu_now();
    if ((rc = cenc_writer_new(&t, &o, discard, NULL, &w)) != CT_OK) die("writer", rc);
    for (unsigned f = 0; f < frames; f++) {
        bool sync = f % p->fps == 0;
        /* the writer encrypts in its own buffer: the input stays the same each time */
        cenc_sample smp = {.data = sync ? idr : pic, .len = sync ? idr_len : pic_len, .duration = 90000 / p->fps,
                           .sync = sync};
        rc = cenc_writer_sample(w, &smp);
        if (rc != CT_OK) die("sample", rc);
    }
    if ((rc = cenc_writer_finish(w, st)) != CT_OK) die("finish", rc);
    double cpu = cpu_now() - t0;
    cenc_writer_free(w);
    free(idr);
    free(pic);
    ct_buf_free(&config);
    return cpu;
}

/* wolfSSL's raw AES-128 throughput on 16 KiB buffers, MB/s. */
static double aes_rate(bool ctr)
{
    static uint8_t buf[16384];
    uint8_t key[16] = {1}, iv[16] = {2};
    Aes aes;
    wc_AesInit(&aes, NULL, INVALID_DEVID);
    wc_AesSetKey(&aes, key, 16, iv, AES_ENCRYPTION);
    double t0 = cpu_now(), t;
    size_t n = 0;
    do {
        for (int i = 0; i < 64; i++, n += sizeof buf)
            if ((ctr ? wc_AesCtrEncrypt(&aes, buf, buf, sizeof buf) : wc_AesCbcEncrypt(&aes, buf, buf, sizeof buf)) != 0)
                die("AES", CT_ERR_CRYPTO);
        t = cpu_now() - t0;
    } while (t < 1.0);
    wc_AesFree(&aes);
    return (double)n / t / 1e6;
}

int main(int argc, char **argv)
{
    params p = {.seconds = 60, .mbps = 25, .fps = 30, .slices = 8, .segment_s = 10, .viewers = 2};
    for (int i = 1; i + 1 < argc; i += 2) {
        double v = atof(argv[i + 1]);
        if (strcmp(argv[i], "--seconds") == 0) p.seconds = v;
        else if (strcmp(argv[i], "--mbps") == 0) p.mbps = v;
        else if (strcmp(argv[i], "--fps") == 0) p.fps = (unsigned)v;
        else if (strcmp(argv[i], "--slices") == 0) p.slices = (unsigned)v;
        else if (strcmp(argv[i], "--segment-s") == 0) p.segment_s = (unsigned)v;
        else if (strcmp(argv[i], "--viewers") == 0) p.viewers = (unsigned)v;
        else if (strcmp(argv[i], "--headers") == 0) load_headers(argv[i + 1]);
        else {
            fprintf(stderr, "bench: unknown option %s\n", argv[i]);
            return 64;
        }
    }
    if (p.seconds < 1 || p.seconds > 3600 || p.mbps <= 0 || p.mbps > 400 || p.fps < 1 || p.fps > 240 ||
        p.slices < 1 || p.slices > 40 || p.viewers < 1 || p.viewers > CENC_MAX_RECIPIENTS) {
        fprintf(stderr, "bench: option out of range\n");
        return 64;
    }
    wolfCrypt_Init();
    WC_RNG rng;
    ecc_key keys[CENC_MAX_RECIPIENTS];
    cenc_recipient r[CENC_MAX_RECIPIENTS];
    wc_InitRng(&rng);
    for (unsigned i = 0; i < p.viewers; i++) {
        word32 len = CENC_POINT_LEN;
        wc_ecc_init(&keys[i]);
        if (wc_ecc_make_key_ex(&rng, 32, &keys[i], ECC_SECP256R1) != 0 ||
            wc_ecc_export_x963(&keys[i], r[i].pub, &len) != 0)
            die("viewer key", CT_ERR_CRYPTO);
        memset(r[i].cert_sha256, (int)i, 32);
        snprintf(r[i].name, sizeof r[i].name, "viewer%u", i);
    }
    printf("stream: 3840x2160 %u fps %.1f Mbit/s, %.0f s, %u slices/picture, GOP 1 s, a key every %u s for %u viewers\n",
           p.fps, p.mbps, p.seconds, p.slices, p.segment_s, p.viewers);
    cenc_stats sc, s1, s2;
    double clear = run(&p, CENC_CLEAR, r, &sc);
    printf("%-6s cpu %7.3f s  %6.3f%% of a core  %10llu bytes out  +%.3f%% over the elementary stream\n", "clear",
           clear, 100 * clear / p.seconds, (unsigned long long)sc.out_bytes,
           100.0 * ((double)sc.out_bytes - (double)sc.media_bytes) / (double)sc.media_bytes);
    const cenc_scheme schemes[] = {CENC_CBCS, CENC_CTR};
    for (int i = 0; i < 2; i++) {
        cenc_stats *s = i == 0 ? &s1 : &s2;
        double cpu = run(&p, schemes[i], r, s);
        double enc_bytes = (double)s->protected_bytes / (schemes[i] == CENC_CBCS ? 10.0 : 1.0);
        printf("%-6s cpu %7.3f s  %6.3f%% of a core  %10llu bytes out  +%.3f%% over the elementary stream\n",
               cenc_scheme_name(schemes[i]), cpu, 100 * cpu / p.seconds, (unsigned long long)s->out_bytes,
               100.0 * ((double)s->out_bytes - (double)s->media_bytes) / (double)s->media_bytes);
        printf("  encryption (%s minus clear): %.3f%% of a core, %.4f%% bytes added; AES over %.2f MB/s of the stream"
               " (%.1f%% of the slice data)\n",
               cenc_scheme_name(schemes[i]), 100 * (cpu - clear) / p.seconds,
               100.0 * ((double)s->out_bytes - (double)sc.out_bytes) / (double)s->media_bytes,
               enc_bytes / p.seconds / 1e6, 100.0 * enc_bytes / (double)s->media_bytes);
        printf("result_%s_core_pct=%.4f result_%s_bytes_pct=%.4f result_%s_aes_mbs=%.4f\n", cenc_scheme_name(schemes[i]),
               100 * (cpu - clear) / p.seconds, cenc_scheme_name(schemes[i]),
               100.0 * ((double)s->out_bytes - (double)sc.out_bytes) / (double)s->media_bytes,
               cenc_scheme_name(schemes[i]), enc_bytes / p.seconds / 1e6);
    }
    printf("wolfSSL AES-128 (this build, software AES): CBC %.1f MB/s, CTR %.1f MB/s\n", aes_rate(false), aes_rate(true));
    for (unsigned i = 0; i < p.viewers; i++) wc_ecc_free(&keys[i]);
    wc_FreeRng(&rng);
    wc_ecc_fp_free();
    wolfCrypt_Cleanup();
    return 0;
}
