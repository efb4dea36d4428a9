/* Signed video benchmark: for one clip (Annex B), the CPU time of signing it (hashing every picture NAL unit,
 * one token signature per GOP, writing the signed copy) against raw wolfSSL SHA-256 over the same bytes, the
 * bytes the signatures add, and verification throughput against raw SHA-256 throughput.
 *   camtrust-bench-media-sign CLIP SECONDS_OF_VIDEO WORKDIR
 * The token is a fresh SoftHSM token in WORKDIR (SOFTHSM2_CONF set by the run script). Prints figures only. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "mediasign.h"

#define RUNS 3

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double wall_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int die(const char *what, ct_err rc)
{
    fprintf(stderr, "bench: %s: %s %s\n", what, ct_err_name(rc), ct_err_detail());
    return 1;
}

/* A token key certified by a root made with another token key: what a provisioned camera holds. */
static ct_err make_camera(hsm **h, hsm_key **key, ct_buf *root, ct_buf *chain)
{
    ct_err rc = CT_OK;
    hsm_key *rk = NULL;
    ct_buf spki = CT_BUF_INIT, leaf = CT_BUF_INIT;
    char pin[] = "1234", so[] = "5678";
    uint8_t id1 = 1, id2 = 2;
    CT_GUARD(hsm_token_create(NULL, "bench", so, pin));
    hsm_config cfg = {NULL, "bench", pin, 2};
    CT_GUARD(hsm_open(&cfg, h));
    CT_GUARD(hsm_key_generate(*h, HSM_EC_P256, "root", &id1, 1, &rk));
    CT_GUARD(hsm_key_generate(*h, HSM_EC_P256, "media", &id2, 1, key));
    CT_GUARD(ct_buf_alloc(&spki, 512));
    CT_GUARD(hsm_key_public_der(rk, &spki));
    CT_GUARD(ct_buf_alloc(root, PKI_MAX_CERT_DER));
    pki_cert_template rt = {.profile = PKI_PROFILE_ROOT_CA, .cn = "Bench Root", .not_after = time(NULL) + 86400};
    CT_GUARD(pki_cert_issue(&rt, spki.data, spki.len, NULL, 0, rk, root, NULL));
    CT_GUARD(hsm_key_public_der(*key, &spki));
    CT_GUARD(ct_buf_alloc(&leaf, PKI_MAX_CERT_DER));
    pki_cert_template lt = {.profile = PKI_PROFILE_MEDIA_SIGNING, .cn = "BENCH1", .serial_number = "BENCH1",
                            .not_after = time(NULL) + 86400};
    CT_GUARD(pki_cert_issue(&lt, spki.data, spki.len, root->data, root->len, rk, &leaf, NULL));
    CT_GUARD(ct_buf_alloc(chain, 4096));
    CT_GUARD(ct_pem_encode("CERTIFICATE", leaf.data, leaf.len, chain));
cleanup:
    hsm_key_free(rk);
    ct_buf_free(&spki);
    ct_buf_free(&leaf);
    return rc;
}

typedef struct {
    const uint8_t *p;
    size_t n;
} nal_ref;

/* Splits an Annex B clip into NAL units (an encoder hands them over already split). */
static ct_err split_nals(const media_file *f, nal_ref **out, size_t *count)
{
    size_t pos = 0, n, skipped, cap = 1024;
    const uint8_t *nal;
    *count = 0;
    *out = malloc(cap * sizeof **out);
    CT_ENSURE_RET(*out, CT_ERR_NOMEM);
    while (media_annexb_next(f->data, f->len, &pos, &nal, &n, &skipped) == CT_OK) {
        if (*count == cap) {
            nal_ref *grown = realloc(*out, (cap *= 2) * sizeof **out);
            if (!grown) {
                free(*out);
                *out = NULL;
                return CT_ERR_NOMEM;
            }
            *out = grown;
        }
        (*out)[(*count)++] = (nal_ref){nal, n};
    }
    return CT_OK;
}

/* The camera's path: NAL units through the signer, the SEIs taken as they are ready (what a pipeline would
 * pass on), nothing written. */
static ct_err live_sign(const nal_ref *nals, size_t count, ms_signer_config *cfg, uint64_t *sei_bytes,
                        double *setup_cpu)
{
    ct_err rc = CT_OK;
    ms_signer *s = NULL;
    ct_buf sei = CT_BUF_INIT;
    bool ready;
    uint64_t frames = 0;
    *sei_bytes = 0;
    /* Opening and closing a signer happens once per stream (hours on a camera): counted apart. */
    double t0 = cpu_now();
    CT_GUARD(ms_signer_open(cfg, &s));
    *setup_cpu = cpu_now() - t0;
    for (size_t i = 0; i < count; i++) {
        media_nal_info info = media_nal_classify(cfg->codec, nals[i].p, nals[i].n);
        CT_GUARD(ms_signer_push(s, nals[i].p, nals[i].n, ms_time_from_unix(1700000000, 0) + (int64_t)frames * 333333));
        if (!media_nal_is_vcl(info.kind) || !info.first_slice) continue;
        frames++;
        do {
            CT_GUARD(ms_signer_take(s, ms_signer_backlog(s) > MS_SIGNER_QUEUE / 2, &sei, &ready));
            if (ready) *sei_bytes += 4 + sei.len;
        } while (ready);
    }
    CT_GUARD(ms_signer_finish(s));
    do {
        CT_GUARD(ms_signer_take(s, true, &sei, &ready));
        if (ready) *sei_bytes += 4 + sei.len;
    } while (ready);
cleanup:
    t0 = cpu_now();
    ms_signer_close(s);
    *setup_cpu += cpu_now() - t0;
    ct_buf_free(&sei);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fputs("usage: camtrust-bench-media-sign CLIP SECONDS_OF_VIDEO WORKDIR\n", stderr);
        return 2;
    }
    const char *clip = argv[1];
    double seconds = atof(argv[2]);
    char out[1024];
    snprintf(out, sizeof out, "%s/signed.h264", argv[3]);
    media_file f;
    hsm *h = NULL;
    hsm_key *key = NULL;
    ct_buf root = CT_BUF_INIT, chain = CT_BUF_INIT;
    ct_err rc;
    if ((rc = media_file_map(clip, &f)) != CT_OK) return die("map", rc);
    if ((rc = make_camera(&h, &key, &root, &chain)) != CT_OK) return die("camera", rc);

    /* raw SHA-256 over the clip's bytes: the floor, since every byte must be hashed */
    double setup_cpu = 1e9, signer_cpu = 1e9, sha_cpu = 1e9, file_sha_cpu = 1e9, sign_cpu = 1e9, live_cpu = 1e9, verify_wall = 1e9, verify_cpu = 1e9;
    uint64_t sei_bytes = 0;
    uint8_t digest[32];
    for (int r = 0; r < RUNS; r++) {
        double t0 = cpu_now();
        if (wc_Sha256Hash(f.data, (word32)f.len, digest) != 0) return die("sha256", CT_ERR_CRYPTO);
        double t = cpu_now() - t0;
        if (t < sha_cpu) sha_cpu = t;
    }
    /* the same from the file, mapped as the verifier maps it: what reading costs on top of hashing */
    for (int r = 0; r < RUNS; r++) {
        media_file g;
        double t0 = cpu_now();
        if ((rc = media_file_map(clip, &g)) != CT_OK) return die("map", rc);
        if (wc_Sha256Hash(g.data, (word32)g.len, digest) != 0) return die("sha256", CT_ERR_CRYPTO);
        media_file_unmap(&g);
        double t = cpu_now() - t0;
        if (t < file_sha_cpu) file_sha_cpu = t;
    }
    ms_signer_config cfg = {0, key, chain.data, chain.len, "BENCH1", "BX4K", "bench", "camtrust", true};
    if ((rc = media_annexb_guess(f.data, f.len, &cfg.codec)) != CT_OK) return die("codec", rc);
    ms_sign_stats st = {0};
    for (int r = 0; r < RUNS; r++) {
        st = (ms_sign_stats){.fps = 30};
        double t0 = cpu_now();
        if ((rc = ms_sign_file(&cfg, clip, out, &st)) != CT_OK) return die("sign", rc);
        double t = cpu_now() - t0;
        if (t < sign_cpu) sign_cpu = t;
    }
    for (int r = 0; r < RUNS; r++) {
        double t0 = cpu_now();
        nal_ref *nals = NULL;
        size_t count = 0;
        if ((rc = split_nals(&f, &nals, &count)) != CT_OK) return die("split", rc);
        double t1 = cpu_now();
        double setup = 0;
        if ((rc = live_sign(nals, count, &cfg, &sei_bytes, &setup)) != CT_OK) return die("live sign", rc);
        double t = cpu_now() - t0 - setup;
        free(nals);
        if (t < live_cpu) live_cpu = t;
        if (t - (t1 - t0) < signer_cpu) signer_cpu = t - (t1 - t0);
        if (setup < setup_cpu) setup_cpu = setup;
    }
    ms_verify_config vc = {.root_der = root.data, .root_len = root.len};
    ms_summary sum;
    for (int r = 0; r < RUNS; r++) {
        double w0 = wall_now(), c0 = cpu_now();
        if ((rc = ms_verify_file(out, &vc, NULL, NULL, &sum)) != CT_OK) return die("verify", rc);
        double w = wall_now() - w0, c = cpu_now() - c0;
        if (w < verify_wall) verify_wall = w;
        if (c < verify_cpu) verify_cpu = c;
    }
    if (!sum.authentic) {
        fprintf(stderr, "bench: the signed clip does not verify: %s\n", sum.problem);
        return 1;
    }
    double mb = (double)f.len / 1e6, mbit_s = (double)f.len * 8 / seconds / 1e6;
    printf("clip: %s, %.2f MB, %.1f s of video at %.1f Mbit/s, %llu GOPs, %llu pictures\n", clip, mb, seconds, mbit_s,
           (unsigned long long)st.gops, (unsigned long long)sum.frames);
    printf("raw SHA-256 (wolfSSL, one core):   %8.1f MB/s   %6.2f%% of a core per second of video\n", mb / sha_cpu,
           100 * sha_cpu / seconds);
    printf("signer setup and teardown, once per stream: %.2f ms CPU (not in the figures below)\n", setup_cpu * 1e3);
    printf("signing, signer only (NAL units in):%8.1f MB/s   %6.2f%% of a core per second of video   "
           "%.2fx raw SHA-256 (goal <= 1.10x)\n",
           mb / signer_cpu, 100 * signer_cpu / seconds, signer_cpu / sha_cpu);
    printf("  + Annex B splitting (in memory):  %8.1f MB/s   %6.2f%% of a core per second of video   %.2fx raw SHA-256\n",
           mb / live_cpu, 100 * live_cpu / seconds, live_cpu / sha_cpu);
    printf("signing a file (+ read and write): %8.1f MB/s   %6.2f%% of a core per second of video   %.2fx raw SHA-256\n",
           mb / sign_cpu, 100 * sign_cpu / seconds, sign_cpu / sha_cpu);
    printf("bytes added:                        %llu of %llu = %.3f%% (goal < 0.5%%); SEIs alone %llu bytes\n",
           (unsigned long long)(st.bytes_out - st.bytes_in), (unsigned long long)st.bytes_in,
           100.0 * (double)(st.bytes_out - st.bytes_in) / (double)st.bytes_in, (unsigned long long)sei_bytes);
    double vmb = (double)st.bytes_out / 1e6;
    printf("raw SHA-256 of the file (map+hash): %8.1f MB/s\n", mb / file_sha_cpu);
    printf("verification of the signed file:    %8.1f MB/s CPU (%.1f MB/s wall)   %.0f%% of raw SHA-256 in memory "
           "(goal >= 80%%), %.0f%% of map+hash\n",
           vmb / verify_cpu, vmb / verify_wall, 100 * (vmb / verify_cpu) / (mb / sha_cpu),
           100 * (vmb / verify_cpu) / (mb / file_sha_cpu));
    hsm_key_free(key);
    hsm_close(h);
    ct_buf_free(&root);
    ct_buf_free(&chain);
    media_file_unmap(&f);
    wc_ecc_fp_free();
    return 0;
}
