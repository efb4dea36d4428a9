/* common/mediasign: the signer with a key in a real SoftHSM token and certificates from pki, the validator on
 * what it signs (threaded and inline, Annex B, MP4 and fragmented MP4), on another root, with CRLs, and on the
 * clips signed by ONVIF's reference framework. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "mediasign.h"
#include "ms_priv.h"
#include "test_util.h"

#ifndef CAMTRUST_ONVIF_VECTORS
#error "CAMTRUST_ONVIF_VECTORS: the folder of the ONVIF reference clips (tests/vectors/onvif-media-signing)"
#endif

static const char *dir;
static hsm *tok;
static hsm_key *root_key, *media_key;
static ct_buf root_der, leaf_der, chain_pem;
static pki_issued_info leaf_info;

static void issue(const pki_cert_template *t, hsm_key *subject, const ct_buf *issuer, hsm_key *ik, ct_buf *out,
                  pki_issued_info *info)
{
    ct_buf spki = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&spki, 512), CT_OK);
    ck_assert_int_eq(hsm_key_public_der(subject, &spki), CT_OK);
    ck_assert_int_eq(ct_buf_alloc(out, PKI_MAX_CERT_DER), CT_OK);
    ct_err rc = pki_cert_issue(t, spki.data, spki.len, issuer ? issuer->data : NULL, issuer ? issuer->len : 0, ik, out,
                               info);
    ck_assert_msg(rc == CT_OK, "issue: %s %s", ct_err_name(rc), ct_err_detail());
    ct_buf_free(&spki);
}

static hsm_key *genkey(const char *label, uint8_t id)
{
    hsm_key *k = NULL;
    ck_assert_int_eq(hsm_key_generate(tok, HSM_EC_P256, label, &id, 1, &k), CT_OK);
    return k;
}

/* A token with a root key and a media-signing key; the root certifies the camera's key directly. */
static void setup(void)
{
    dir = tu_tmpdir("mediasign");
    tu_softhsm_token(dir, "ms-test");
    char pin[] = TU_PIN;
    hsm_config cfg = {.module_path = NULL, .token_label = "ms-test", .pin = pin, .session_pool = 2};
    ck_assert_int_eq(hsm_open(&cfg, &tok), CT_OK);
    root_key = genkey("root", 1);
    media_key = genkey("media", 2);
    pki_cert_template rt = {.profile = PKI_PROFILE_ROOT_CA, .cn = "Test Device Root", .not_after = time(NULL) + 86400 * 30};
    issue(&rt, root_key, NULL, root_key, &root_der, NULL);
    pki_cert_template lt = {.profile = PKI_PROFILE_MEDIA_SIGNING, .cn = "SN0042", .serial_number = "SN0042",
                            .not_after = time(NULL) + 86400 * 10};
    issue(&lt, media_key, &root_der, root_key, &leaf_der, &leaf_info);
    ck_assert_int_eq(ct_buf_alloc(&chain_pem, 4096), CT_OK);
    ck_assert_int_eq(ct_pem_encode("CERTIFICATE", leaf_der.data, leaf_der.len, &chain_pem), CT_OK);
}

static void teardown(void)
{
    hsm_key_free(root_key);
    hsm_key_free(media_key);
    hsm_close(tok);
    ct_buf_free(&root_der);
    ct_buf_free(&leaf_der);
    ct_buf_free(&chain_pem);
    wc_ecc_fp_free(); /* wolfSSL's per-thread fixed-point cache */
}

static const char *path(const char *name)
{
    static char p[4][600];
    static int k;
    char *out = p[k++ % 4];
    snprintf(out, sizeof p[0], "%s/%s", dir, name);
    return out;
}

static void sign(const char *in, const char *out, bool threaded, time_t start)
{
    ms_signer_config cfg = {0, media_key, chain_pem.data, chain_pem.len, "SN0042", "CX42", "fw 1", "camtrust", threaded};
    ms_sign_stats st = {.start = start, .fps = 30};
    ct_err rc = ms_sign_file(&cfg, in, out, &st);
    ck_assert_msg(rc == CT_OK, "sign %s: %s %s", in, ct_err_name(rc), ct_err_detail());
    ck_assert_uint_eq(st.gops, 2);
    ck_assert_uint_gt(st.bytes_out, st.bytes_in);
}

static ms_summary verify_with(const char *clip, const ct_buf *root, const ct_buf *crl)
{
    ms_verify_config cfg = {.root_der = root->data, .root_len = root->len, .crl_der = crl ? crl->data : NULL,
                            .crl_len = crl ? crl->len : 0};
    ms_summary s;
    ct_err rc = ms_verify_file(clip, &cfg, NULL, NULL, &s);
    ck_assert_msg(rc == CT_OK, "verify %s: %s %s", clip, ct_err_name(rc), ct_err_detail());
    return s;
}

static void clip(const char *name, const char *fmt)
{
    ck_assert_int_eq(tu_sh("ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 -t 2 -c:v libx264 -g 30 "
                           "-pix_fmt yuv420p %s '%s'", fmt, path(name)), 0);
}

START_TEST(sign_verify_annexb_and_mp4)
{
    clip("a.h264", "-f h264");
    clip("a.mp4", "");
    sign(path("a.h264"), path("s.h264"), true, time(NULL));
    sign(path("a.mp4"), path("s.mp4"), false, time(NULL));
    const char *signed_clips[] = {path("s.h264"), path("s.mp4")};
    for (int i = 0; i < 2; i++) {
        ms_summary s = verify_with(signed_clips[i], &root_der, NULL);
        ck_assert_msg(s.authentic, "%s: %s / %s", signed_clips[i], s.problem, s.chain);
        ck_assert_uint_eq(s.gops, 2);
        ck_assert_uint_eq(s.frames, 60);
        ck_assert_uint_eq(s.sei_count, 3); /* the certificate SEI and one per GOP */
        ck_assert_str_eq(s.serial, "SN0042");
        ck_assert_str_eq(s.model, "CX42");
        ck_assert_str_eq(s.time_source, "SEI timestamp");
    }
    /* the unsigned input is unsigned, not an error */
    ms_summary u = verify_with(path("a.mp4"), &root_der, NULL);
    ck_assert(!u.authentic);
    ck_assert_uint_eq(u.count[MS_UNSIGNED], 2);
}
END_TEST

/* A rewritten SPS (frame cropping) changes what a viewer sees, pictures untouched: in the stream (Annex B), in the
 * sample entry (MP4 avcC). Every GOP is altered; the old code said authentic. */
START_TEST(parameter_sets_signed)
{
    clip("a.h264", "-f h264");
    clip("a.mp4", "");
    sign(path("a.h264"), path("s.h264"), false, time(NULL));
    sign(path("a.mp4"), path("s.mp4"), false, time(NULL));
    const char *names[][2] = {{"s.h264", "c.h264"}, {"s.mp4", "c.mp4"}};
    for (int i = 0; i < 2; i++) {
        ck_assert(verify_with(path(names[i][0]), &root_der, NULL).authentic);
        ck_assert_int_eq(tu_sh("ffmpeg -v error -y -i '%s' -c copy -bsf:v h264_metadata=crop_right=32 '%s'",
                               path(names[i][0]), path(names[i][1])),
                         0);
        ms_summary s = verify_with(path(names[i][1]), &root_der, NULL);
        ck_assert_msg(!s.authentic, "%s", names[i][1]);
        ck_assert_uint_eq(s.count[MS_ALTERED], 2);
    }
    /* fragmented (the in-band parameter sets, as a camera's recording carries them) */
    ck_assert_int_eq(tu_sh("ffmpeg -v fatal -y -i '%s' -c copy -movflags frag_keyframe+empty_moov+default_base_moof '%s'",
                           path("c.h264"), path("cf.mp4")),
                     0);
    ms_summary f = verify_with(path("cf.mp4"), &root_der, NULL);
    ck_assert_str_eq(f.container, "fragmented MP4");
    ck_assert(!f.authentic);
    ck_assert_uint_eq(f.count[MS_ALTERED], 2);
    /* fragmented with the parameter sets in the sample entry only (the signed MP4's avcC, none in band): signed with
     * the GOPs, they verify; cropped, they do not (the old code: authentic both) */
    const char *frag[][2] = {{"s.mp4", "sf.mp4"}, {"c.mp4", "cf2.mp4"}};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(tu_sh("ffmpeg -v fatal -y -i '%s' -c copy "
                               "-movflags frag_keyframe+empty_moov+default_base_moof '%s'",
                               path(frag[i][0]), path(frag[i][1])),
                         0);
        f = verify_with(path(frag[i][1]), &root_der, NULL);
        ck_assert_str_eq(f.container, "fragmented MP4");
        ck_assert_msg(f.authentic == (i == 0), "%s: %s", frag[i][1], f.problem);
    }
}
END_TEST

/* chain(units...): H(..H(H(0 || H(U1)) || H(U2))..), the digest of a run of one group as camtrust signed it before
 * (which the verifier before this checks): a run's digest must stay that where the run is one group or copies of
 * one, and cover every group otherwise. */
static void chain_of(uint8_t out[MS_HASH_LEN], const char *const *units, size_t n)
{
    uint8_t pair[2][MS_HASH_LEN] = {{0}};
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(ct_sha256(units[i], strlen(units[i]), pair[1]), CT_OK);
        ck_assert_int_eq(ct_sha256(pair, sizeof pair, pair[0]), CT_OK);
    }
    memcpy(out, pair[0], MS_HASH_LEN);
}

START_TEST(parameter_set_digest)
{
    /* NAL units by their header byte: 0x67 SPS, 0x68 PPS (H.264) */
    static const char S[] = "\x67sps0", P[] = "\x68pps0", S1[] = "\x67sps1", P1[] = "\x68pps1";
    const struct {
        const char *run[6];
        const char *expect[4];
    } cases[] = {
        {{S, P}, {S, P}},                    /* one group: the digest signed before */
        {{S, P, S, P}, {S, P}},              /* the same group twice (an MP4 sample entry's, then in band) */
        {{S, P, S, P, S, P}, {S, P}},
        {{P, S}, {P, S}},                    /* a PPS before its SPS: both groups (before: the SPS only) */
        {{S, P, S1, P1}, {S, P, S1, P1}},    /* two pairs of other ids (before: the second only) */
        {{S, P, S, P, S1, P1}, {S, P, S1, P1}},
        {{S, P, S, P1}, {S, P, S, P1}},      /* two different groups */
    };
    ms_gop g;
    ck_assert_int_eq(ms_gop_init(&g), CT_OK);
    ck_assert_int_eq(g.ps.tlv[3], 2); /* the TLV's version: 1 is the last group's digest, signed before */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t want[MS_HASH_LEN];
        size_t n = 0, m = 0;
        while (n < 6 && cases[i].run[n]) n++;
        while (m < 4 && cases[i].expect[m]) m++;
        /* twice, a picture between: each run on its own (the one before it is no group of it) */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t k = 0; k < n; k++)
                ck_assert_int_eq(ms_psets_param(&g.ps, (const uint8_t *)cases[i].run[k], strlen(cases[i].run[k]),
                                                (uint8_t)cases[i].run[k][0] & 0x1f),
                                 CT_OK);
            ck_assert_int_eq(ms_psets_picture(&g.ps, true), CT_OK);
            chain_of(want, cases[i].expect, m);
            ck_assert_msg(memcmp(g.ps.gop[0], want, MS_HASH_LEN) == 0, "case %zu pass %d", i, pass);
        }
    }
    ms_gop_free(&g);
}
END_TEST

/* ---- recordings signed before digest version 2: the parameter-set TLV of version 1, the last group of a run ---- */

static void put_nal(ct_buf *out, const uint8_t *nal, size_t len)
{
    static const uint8_t start_code[4] = {0, 0, 0, 1};
    ck_assert_int_eq(ct_buf_append(out, start_code, sizeof start_code), CT_OK);
    ck_assert_int_eq(ct_buf_append(out, nal, len), CT_OK);
}

/* One SEI as the signer makes it (d NULL: the certificate SEI), signed by the media-signing key in the token. */
static void put_signed_sei(ct_buf *out, const ms_signer_config *cfg, const ms_gop_doc *d)
{
    ct_buf doc = CT_BUF_INIT, sei = CT_BUF_INIT;
    uint8_t digest[MS_HASH_LEN], sig[MS_SIG_MAX + 16];
    size_t sig_len = sizeof sig;
    ck_assert_int_eq(ct_buf_alloc(&doc, MS_MAX_SEI), CT_OK);
    ck_assert_int_eq(ct_buf_alloc(&sei, MS_MAX_SEI + MS_MAX_SEI / 2), CT_OK);
    ck_assert_int_eq(ms_sei_begin(cfg->codec, false, d, cfg, &doc), CT_OK);
    ck_assert_int_eq(ct_sha256(doc.data, doc.len, digest), CT_OK);
    ck_assert_int_eq(hsm_key_sign_digest(media_key, digest, sizeof digest, sig, &sig_len), CT_OK);
    ck_assert_int_eq(ms_sei_end(&doc, sig, sig_len, &sei), CT_OK);
    put_nal(out, sei.data, sei.len);
    ct_buf_free(&doc);
    ct_buf_free(&sei);
}

/* Signs an H.264 or H.265 Annex B stream as the camera's signer does (ms_signer_push; each GOP's SEI before the next I-frame,
 * the last one's after the end), with the parameter-set TLV of version `version`. Its digest is ms_psets's: for runs
 * of one group or of copies of one, which the camera sends, the last group's, the one version 1 signed. */
static void sign_with_version(const ct_buf *in, media_codec codec, uint8_t version, ct_buf *out)
{
    ms_signer_config cfg = {codec, media_key, chain_pem.data, chain_pem.len, "SN0042", "CX42", "fw 1", "camtrust",
                            false};
    ms_gop g;
    uint8_t prev[MS_HASH_LEN];
    uint32_t counter = 1;
    int64_t t = ms_time_from_unix(time(NULL), 0);
    size_t pos = 0, len, skipped;
    const uint8_t *nal;
    media_nal_info info;
    ck_assert_int_eq(ct_buf_alloc(out, 2 * in->len + 4 * MS_MAX_SEI), CT_OK);
    ck_assert_int_eq(ms_gop_init(&g), CT_OK);
    g.ps.tlv[3] = version;
    put_signed_sei(out, &cfg, NULL);
    for (bool more = true; more;) {
        more = media_annexb_next(in->data, in->len, &pos, &nal, &len, &skipped) == CT_OK;
        ms_role role = more ? ms_nal_role(codec, nal, len, &info) : MS_ROLE_GOP_START;
        if (role == MS_ROLE_GOP_START && g.started) {
            ms_gop_doc d = {&g, t, counter, counter > 1 ? prev : NULL, g.ps.tlv};
            put_signed_sei(out, &cfg, &d);
            memcpy(prev, g.anchor, MS_HASH_LEN);
            counter++;
        }
        if (!more) break;
        if (role == MS_ROLE_PARAM) ck_assert_int_eq(ms_psets_param(&g.ps, nal, len, info.type), CT_OK);
        if (role == MS_ROLE_GOP_START || (role == MS_ROLE_PICTURE && g.started))
            ck_assert_int_eq(ms_gop_add(&g, nal, len, role == MS_ROLE_GOP_START), CT_OK);
        put_nal(out, nal, len);
    }
    ck_assert_uint_eq(counter, 3); /* two GOPs */
    ms_gop_free(&g);
}

typedef enum { EDIT_NONE, EDIT_PICTURE, EDIT_GROUP } stream_edit;

/* What a falsifier does to a signed stream: EDIT_PICTURE changes one byte of the 10th P-frame; EDIT_GROUP puts a
 * group of `sps` and the PPS before GOP 2's own SPS and PPS (the run's last group stays the signed one). */
static void edit_stream(const ct_buf *in, stream_edit edit, const uint8_t *sps, size_t sps_len, const char *name)
{
    ct_buf out = CT_BUF_INIT;
    size_t pos = 0, len, skipped, sps_seen = 0, p_seen = 0, pps_len = 0;
    const uint8_t *nal, *pps = NULL;
    ck_assert_int_eq(ct_buf_alloc(&out, in->len + 4096), CT_OK);
    while (media_annexb_next(in->data, in->len, &pos, &nal, &len, &skipped) == CT_OK) {
        unsigned type = nal[0] & 0x1f;
        if (type == 7 && ++sps_seen == 2 && edit == EDIT_GROUP) {
            ck_assert_ptr_nonnull(pps);
            put_nal(&out, sps, sps_len);
            put_nal(&out, pps, pps_len);
        }
        if (type == 8) pps = nal, pps_len = len;
        if (type == 1 && ++p_seen == 10 && edit == EDIT_PICTURE) {
            size_t at = out.len + 4 + len / 2;
            put_nal(&out, nal, len);
            while (out.data[at] < 0x10 || out.data[at] >= 0x80) at++; /* flipped to 0x90-0xff: no start code */
            out.data[at] ^= 0x80;
            continue;
        }
        put_nal(&out, nal, len);
    }
    ck_assert_uint_eq(sps_seen, 2); /* an SPS before each I-frame, as the camera's encoder sends */
    ck_assert_int_eq(ct_file_write_atomic(path(name), out.data, out.len, 0644), CT_OK);
    ct_buf_free(&out);
}

typedef struct {
    size_t n;
    ms_status status[4];
    char detail[4][256];
} gop_reports;

static void keep_report(const ms_gop_report *g, void *arg)
{
    gop_reports *r = arg;
    if (r->n == 4) return;
    r->status[r->n] = g->status;
    snprintf(r->detail[r->n], sizeof r->detail[0], "%s", g->detail);
    r->n++;
}

static ms_summary verify_reports(const char *name, gop_reports *r)
{
    ms_verify_config cfg = {.root_der = root_der.data, .root_len = root_der.len};
    ms_summary s;
    memset(r, 0, sizeof *r);
    ct_err rc = ms_verify_file(path(name), &cfg, keep_report, r, &s);
    ck_assert_msg(rc == CT_OK, "verify %s: %s %s", name, ct_err_name(rc), ct_err_detail());
    return s;
}

/* A 2-GOP clip and the same with its SPS cropping 32 columns (ffmpeg's h264_metadata: the pictures untouched). */
static void clip_and_cropped(ct_buf *plain, ct_buf *cropped)
{
    clip("a.h264", "-f h264");
    ck_assert_int_eq(tu_sh("ffmpeg -v error -y -i '%s' -c copy -bsf:v h264_metadata=crop_right=32 -f h264 '%s'",
                           path("a.h264"), path("crop.h264")),
                     0);
    ck_assert_int_eq(ct_file_read(path("a.h264"), 16u << 20, plain), CT_OK);
    ck_assert_int_eq(ct_file_read(path("crop.h264"), 16u << 20, cropped), CT_OK);
}

/* The verifier keeps the rule of recordings signed before (digest version 1: the last group of parameter sets before
 * each picture): an honest one verifies, a changed picture does not, and a group of another SPS of the same id put
 * before a run's own is refused (version 1 does not cover it, and a decoder takes it: the old code said AUTHENTIC),
 * while a repeated group (an MP4 sample entry's, then the same in band) is no change. A recording since (version 2)
 * covers every group: the same group is altered by its digest. */
START_TEST(parameter_sets_version_1)
{
    ct_buf plain = CT_BUF_INIT, cropped = CT_BUF_INIT, v1 = CT_BUF_INIT, v2 = CT_BUF_INIT;
    gop_reports r;
    clip_and_cropped(&plain, &cropped);
    const uint8_t *nal, *sps = NULL, *crop_sps = NULL;
    size_t pos = 0, len, skipped, sps_len = 0, crop_len = 0;
    while (!sps && media_annexb_next(plain.data, plain.len, &pos, &nal, &len, &skipped) == CT_OK)
        if ((nal[0] & 0x1f) == 7) sps = nal, sps_len = len;
    pos = 0;
    while (!crop_sps && media_annexb_next(cropped.data, cropped.len, &pos, &nal, &len, &skipped) == CT_OK)
        if ((nal[0] & 0x1f) == 7) crop_sps = nal, crop_len = len;
    ck_assert(sps && crop_sps && (crop_len != sps_len || memcmp(crop_sps, sps, sps_len) != 0));
    ck_assert_uint_eq(crop_sps[3], sps[3]); /* the same profile and level: only the cropping differs (SPS id 0) */

    sign_with_version(&plain, MEDIA_H264, 1, &v1);
    edit_stream(&v1, EDIT_NONE, NULL, 0, "v1.h264");
    ms_summary s = verify_reports("v1.h264", &r);
    ck_assert_msg(s.authentic, "%s / %s / %s", s.problem, r.detail[0], r.detail[1]);
    ck_assert_uint_eq(s.gops, 2);
    ck_assert_uint_eq(s.sei_count, 3);

    edit_stream(&v1, EDIT_GROUP, sps, sps_len, "v1-repeat.h264");
    s = verify_reports("v1-repeat.h264", &r);
    ck_assert_msg(s.authentic, "%s / %s / %s", s.problem, r.detail[0], r.detail[1]);

    edit_stream(&v1, EDIT_PICTURE, NULL, 0, "v1-picture.h264");
    s = verify_reports("v1-picture.h264", &r);
    ck_assert(!s.authentic);
    ck_assert_uint_eq(s.count[MS_ALTERED], 1);
    ck_assert_uint_eq(r.status[0], MS_ALTERED);
    ck_assert_uint_eq(r.status[1], MS_AUTHENTIC);
    ck_assert_msg(strstr(r.detail[0], "picture NAL unit(s) differ from what was signed"), "%s", r.detail[0]);

    edit_stream(&v1, EDIT_GROUP, crop_sps, crop_len, "v1-group.h264");
    s = verify_reports("v1-group.h264", &r);
    ck_assert_msg(!s.authentic, "a cropping SPS of id 0 added before GOP 2's own passed");
    ck_assert_uint_eq(r.n, 2);
    ck_assert_uint_eq(r.status[0], MS_AUTHENTIC);
    ck_assert_uint_eq(r.status[1], MS_ALTERED);
    ck_assert_str_eq(r.detail[1], "SPS id 0 sent twice with different contents before frame 30: its version-1 "
                                  "signature (recorded before: the last group of parameter sets only) covers one, a "
                                  "player may decode with the other");

    sign_with_version(&plain, MEDIA_H264, 2, &v2);
    edit_stream(&v2, EDIT_NONE, NULL, 0, "v2.h264");
    ck_assert(verify_reports("v2.h264", &r).authentic);
    edit_stream(&v2, EDIT_GROUP, crop_sps, crop_len, "v2-group.h264");
    s = verify_reports("v2-group.h264", &r);
    ck_assert(!s.authentic);
    ck_assert_uint_eq(r.status[1], MS_ALTERED);
    ck_assert_msg(strstr(r.detail[1], "differ from those signed"), "%s", r.detail[1]);

    ct_buf_free(&plain);
    ct_buf_free(&cropped);
    ct_buf_free(&v1);
    ct_buf_free(&v2);
}
END_TEST

/* The attack version 2 was made for, on H.265 recorded before it (version 1): the camera sends its PPS id 0 once,
 * before GOP 1 (the later GOPs send their VPS, SPS and a PPS id 1), and a falsifier puts a group of that VPS, a
 * cropping SPS id 0 and the PPS id 1 before GOP 2's own. The run's last group is the signed one, yet ffmpeg drops the
 * PPS id 0 with the SPS it replaced: it shows 30 of the 60 pictures. The old code said AUTHENTIC. */
START_TEST(parameter_sets_version_1_h265)
{
    static const char tamper[] = CAMTRUST_ONVIF_VECTORS "/../../integration/media_tamper.py";
    ct_buf in = CT_BUF_INIT, v1 = CT_BUF_INIT;
    gop_reports r;
    ck_assert_int_eq(tu_sh("ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 -t 2 -pix_fmt yuv420p -c:v "
                           "libx265 -x265-params keyint=30:min-keyint=30:open-gop=0:bframes=0:repeat-headers=1:"
                           "log-level=error '%s' && python3 '%s' hevc-pps-once '%s' '%s'",
                           path("rh.h265"), tamper, path("rh.h265"), path("once.h265")),
                     0);
    ck_assert_int_eq(ct_file_read(path("once.h265"), 16u << 20, &in), CT_OK);
    sign_with_version(&in, MEDIA_H265, 1, &v1);
    ck_assert_int_eq(ct_file_write_atomic(path("v1.h265"), v1.data, v1.len, 0644), CT_OK);
    ms_summary s = verify_reports("v1.h265", &r);
    ck_assert_msg(s.authentic, "%s / %s / %s", s.problem, r.detail[0], r.detail[1]);

    /* Run in the test's folder: path() keeps four names at a time. */
    ck_assert_int_eq(tu_sh("cd '%s' && ffmpeg -v error -y -i v1.h265 -c copy -bsf:v hevc_metadata=crop_right=64 crop.h265 "
                           "&& python3 '%s' hevc-add-group v1.h265 group.h265 1 crop.h265 && test \"$(ffmpeg -v error "
                           "-i group.h265 -f framemd5 - 2>/dev/null | grep -vc '^#')\" = 30",
                           dir, tamper),
                     0);
    s = verify_reports("group.h265", &r);
    ck_assert_msg(!s.authentic, "a group of a cropping SPS id 0 added before GOP 2's own passed");
    ck_assert_uint_eq(r.n, 2);
    ck_assert_uint_eq(r.status[1], MS_ALTERED);
    ck_assert_msg(strstr(r.detail[1], "SPS id 0 sent twice with different contents before frame 30"), "%s",
                  r.detail[1]);
    ct_buf_free(&in);
    ct_buf_free(&v1);
}
END_TEST

/* The NAL units of a stream as camtrust-view live hands them to the verifier: each segment (here each GOP, from its
 * SPS) walked from its init segment, so the sample entry's `sps` and `pps` come first every time (cenc_walk). */
static ms_summary verify_segments(const ct_buf *in, const uint8_t *sps, size_t sps_len, const uint8_t *pps,
                                  size_t pps_len, gop_reports *r)
{
    ms_verify_config cfg = {.root_der = root_der.data, .root_len = root_der.len};
    ms_verifier *v = NULL;
    ms_summary s;
    size_t pos = 0, len, skipped;
    const uint8_t *nal;
    memset(r, 0, sizeof *r);
    ck_assert_int_eq(ms_verifier_open(&cfg, MEDIA_H264, time(NULL), "test", keep_report, r, &v), CT_OK);
    while (media_annexb_next(in->data, in->len, &pos, &nal, &len, &skipped) == CT_OK) {
        if ((nal[0] & 0x1f) == 7) {
            ck_assert_int_eq(ms_verifier_push_entry(v, sps, sps_len), CT_OK);
            ck_assert_int_eq(ms_verifier_push_entry(v, pps, pps_len), CT_OK);
        }
        ck_assert_int_eq(ms_verifier_push(v, nal, len, -1), CT_OK);
    }
    ck_assert_int_eq(ms_verifier_finish(v, &s), CT_OK);
    ms_verifier_close(v);
    return s;
}

/* A camera whose encoder changes its SPS at an I-frame (here GOP 2's crops 32 columns: a new resolution) sends the new
 * one in band, while its live stream's sample entry (avc3) keeps the first. A player of what camtrust-view live shows
 * reads the sample entry once and decodes GOP 2 with the signed SPS in band; the viewer hands the sample entry again
 * with every segment. Version 1 took that for an SPS id 0 sent twice (altered), version 2 for other sets than signed;
 * both are authentic: the camera signed the sample entry's sets once, at the start, as a player takes them. */
START_TEST(live_sample_entry_each_segment)
{
    ct_buf plain = CT_BUF_INIT, cropped = CT_BUF_INIT, mixed = CT_BUF_INIT, v1 = CT_BUF_INIT, v2 = CT_BUF_INIT;
    gop_reports r;
    clip_and_cropped(&plain, &cropped);
    /* GOP 1 of the clip, GOP 2 of its cropped copy (the same pictures): the stream of the camera that changed. */
    const uint8_t *nal, *sps = NULL, *pps = NULL;
    size_t pos = 0, len, skipped, sps_len = 0, pps_len = 0, n_sps = 0;
    ck_assert_int_eq(ct_buf_alloc(&mixed, plain.len + cropped.len), CT_OK);
    while (media_annexb_next(plain.data, plain.len, &pos, &nal, &len, &skipped) == CT_OK) {
        if ((nal[0] & 0x1f) == 7 && ++n_sps == 2) break;
        if ((nal[0] & 0x1f) == 7 && !sps) sps = nal, sps_len = len;
        if ((nal[0] & 0x1f) == 8 && !pps) pps = nal, pps_len = len;
        put_nal(&mixed, nal, len);
    }
    pos = 0, n_sps = 0;
    while (media_annexb_next(cropped.data, cropped.len, &pos, &nal, &len, &skipped) == CT_OK)
        if (n_sps += (nal[0] & 0x1f) == 7, n_sps >= 2) put_nal(&mixed, nal, len);
    ck_assert_uint_eq(n_sps, 2);

    sign_with_version(&mixed, MEDIA_H264, 1, &v1);
    ms_summary s = verify_segments(&v1, sps, sps_len, pps, pps_len, &r);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_msg(s.authentic, "%s / %s / %s", s.problem, r.detail[0], r.detail[1]);
    sign_with_version(&mixed, MEDIA_H264, 2, &v2);
    s = verify_segments(&v2, sps, sps_len, pps, pps_len, &r);
    ck_assert_msg(s.authentic, "%s / %s / %s", s.problem, r.detail[0], r.detail[1]);

    ct_buf_free(&plain);
    ct_buf_free(&cropped);
    ct_buf_free(&mixed);
    ct_buf_free(&v1);
    ct_buf_free(&v2);
}
END_TEST

START_TEST(other_root_and_expiry)
{
    clip("a.h264", "-f h264");
    sign(path("a.h264"), path("s.h264"), true, time(NULL));
    hsm_key *other = genkey("other", 3);
    ct_buf other_der = CT_BUF_INIT;
    pki_cert_template rt = {.profile = PKI_PROFILE_ROOT_CA, .cn = "Other Root", .not_after = time(NULL) + 86400};
    issue(&rt, other, NULL, other, &other_der, NULL);
    ms_summary s = verify_with(path("s.h264"), &other_der, NULL);
    ck_assert(!s.authentic);
    ck_assert_uint_eq(s.count[MS_UNTRUSTED], 2);
    ck_assert_ptr_nonnull(strstr(s.chain, "does not verify to the root"));
    /* recorded after the leaf expired: judged at the recording time, so untrusted */
    sign(path("a.h264"), path("late.h264"), false, time(NULL) + 86400 * 20);
    s = verify_with(path("late.h264"), &root_der, NULL);
    ck_assert_uint_eq(s.count[MS_UNTRUSTED], 2);
    ct_buf_free(&other_der);
    hsm_key_free(other);
}
END_TEST

/* A signed stream fragmented by ffmpeg (moof per GOP, as camtrust-agent record writes): verified from the NAL
 * units as stored, through cenc_walk. */
/* The clip `in` remuxed by ffmpeg to a fragmented MP4 `out`, as it is. */
static void fragment(const char *in, const char *out)
{
    ck_assert_int_eq(tu_sh("ffmpeg -v fatal -y -i '%s' -c copy -movflags frag_keyframe+empty_moov+default_base_moof "
                           "'%s'", path(in), path(out)),
                     0);
}

/* The first occurrence of `what` in `b`, asserted there. */
static size_t find_bytes(const ct_buf *b, const void *what, size_t len)
{
    const uint8_t *at = memmem(b->data, b->len, what, len);
    ck_assert_ptr_nonnull(at);
    return (size_t)(at - b->data);
}

/* `mp4` with the box `box` (`len` bytes) put before the avcC of its video sample entry: the boxes around it (moov,
 * trak ... avc1) grow. The samples' offsets stay: mdat (or each moof with its own base) comes before moov or is
 * not moved. */
static void insert_before_avcc(ct_buf *mp4, const uint8_t *box, size_t len)
{
    static const char path[][5] = {"moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1"};
    size_t at = find_bytes(mp4, "avcC", 4) - 4;
    uint64_t start = 0, end = mp4->len;
    ct_buf out = CT_BUF_INIT;
    for (size_t i = 0; i < sizeof path / sizeof path[0]; i++) {
        media_box b;
        uint64_t pos = start;
        bool found = false;
        while (!found && media_box_next(mp4->data, end, &pos, &b) == CT_OK)
            found = b.type == MEDIA_FOURCC(path[i][0], path[i][1], path[i][2], path[i][3]) && b.off < at &&
                    at < b.off + b.size;
        ck_assert_msg(found, "no %s around the avcC", path[i]);
        ck_assert_uint_eq(b.hdr, 8);
        uint8_t *sz = mp4->data + b.off;
        uint32_t grown = (uint32_t)(b.size + len);
        sz[0] = (uint8_t)(grown >> 24), sz[1] = (uint8_t)(grown >> 16), sz[2] = (uint8_t)(grown >> 8), sz[3] = (uint8_t)grown;
        start = b.off + b.hdr + (i == 5 ? 8 : i == 6 ? 78 : 0); /* stsd: version, flags, count; avc1: its fields */
        end = b.off + b.size;
    }
    ck_assert_int_eq(ct_buf_alloc(&out, mp4->len + len), CT_OK);
    ck_assert_int_eq(ct_buf_append(&out, mp4->data, at), CT_OK);
    ck_assert_int_eq(ct_buf_append(&out, box, len), CT_OK);
    ck_assert_int_eq(ct_buf_append(&out, mp4->data + at, mp4->len - at), CT_OK);
    ct_buf_free(mp4);
    *mp4 = out;
}

/* A falsifier's MP4 made of the signed `name`: the x264 SEI of its first sample becomes filler data (type 12, which
 * nothing verifies) holding a red picture of its own, start codes first; the edit list, if any, becomes a free box.
 * The avcC's version becomes 0 or (`glbl`) a box ffmpeg takes for the decoder configuration as well, the first it
 * meets, comes before the avcC: a copy of it of version 0. ffmpeg then reads the configuration and the samples as
 * Annex B: it shows the red picture only. */
static void hide_red_picture(const char *name, const char *out, bool glbl)
{
    static const uint8_t x264_uuid[] = {0xdc, 0x45, 0xe9, 0xbd};
    ct_buf mp4 = CT_BUF_INIT, red = CT_BUF_INIT, hidden = CT_BUF_INIT;
    ck_assert_int_eq(tu_sh("ffmpeg -v error -y -f lavfi -i color=red:size=320x240 -frames 1 -c:v libx264 -tune "
                           "zerolatency -f h264 '%s'", path("red.h264")),
                     0);
    ck_assert_int_eq(ct_file_read(path(name), 16u << 20, &mp4), CT_OK);
    ck_assert_int_eq(ct_file_read(path("red.h264"), 1u << 20, &red), CT_OK);
    ck_assert_int_eq(ct_buf_alloc(&hidden, red.len + 16), CT_OK);
    ck_assert_int_eq(ct_buf_append(&hidden, "\x0c", 1), CT_OK);
    const uint8_t *nal;
    size_t pos = 0, len, skipped;
    while (media_annexb_next(red.data, red.len, &pos, &nal, &len, &skipped) == CT_OK)
        if ((nal[0] & 0x1f) != 6) put_nal(&hidden, nal, len); /* its SPS, PPS and IDR slice */
    ck_assert_int_eq(ct_buf_append(&hidden, "\x00\x00\x01\x0c", 4), CT_OK); /* the slice ends there */
    /* The SEI: its 4-byte length, then 06 05 (user data unregistered) and its 3-byte size, then the UUID. */
    size_t sei = find_bytes(&mp4, x264_uuid, sizeof x264_uuid) - 9;
    size_t sei_len = (size_t)mp4.data[sei + 2] << 8 | mp4.data[sei + 3];
    ck_assert_uint_eq(mp4.data[sei + 4], 6);
    ck_assert_uint_le(hidden.len, sei_len);
    memset(mp4.data + sei + 4, 0xff, sei_len);
    memcpy(mp4.data + sei + 4, hidden.data, hidden.len);
    size_t avcc = find_bytes(&mp4, "avcC", 4) - 4;
    if (glbl) {
        uint8_t copy[512];
        size_t n = (size_t)mp4.data[avcc] << 24 | (size_t)mp4.data[avcc + 1] << 16 | (size_t)mp4.data[avcc + 2] << 8 |
                   mp4.data[avcc + 3];
        ck_assert_uint_le(n, sizeof copy);
        memcpy(copy, mp4.data + avcc, n);
        memcpy(copy + 4, "glbl", 4);
        copy[8] = 0;
        insert_before_avcc(&mp4, copy, n);
    } else {
        mp4.data[avcc + 8] = 0;
    }
    uint8_t *edts = memmem(mp4.data, mp4.len, "edts", 4);
    if (edts) memcpy(edts, "free", 4);
    ck_assert_int_eq(ct_file_write_atomic(path(out), mp4.data, mp4.len, 0644), CT_OK);
    ck_assert_int_eq(
        tu_sh("test \"$(ffmpeg -v error -i '%s' -f framemd5 - 2>/dev/null | grep -vc '^#')\" = 1", path(out)), 0);
    ct_buf_free(&mp4);
    ct_buf_free(&red);
    ct_buf_free(&hidden);
}

/* That MP4 (`glbl`: as hide_red_picture makes it), plain and fragmented: the verifier must say why it is not
 * authentic (`expect`). */
static void hidden_picture_refused(bool glbl, const char *expect)
{
    clip("a.mp4", "");
    sign(path("a.mp4"), path("s.mp4"), false, time(NULL));
    fragment("s.mp4", "f.mp4");
    const char *clips[][2] = {{"s.mp4", "hidden.mp4"}, {"f.mp4", "hidden-f.mp4"}};
    for (size_t i = 0; i < 2; i++) {
        hide_red_picture(clips[i][0], clips[i][1], glbl);
        ms_summary s = verify_with(path(clips[i][1]), &root_der, NULL);
        ck_assert_msg(!s.authentic, "%s (glbl %d): a picture hidden for a player reading the samples as Annex B passed",
                      clips[i][1], glbl);
        ck_assert_msg(strstr(s.problem, expect), "%s", s.problem);
    }
}

/* The verifier read the samples by their lengths and said AUTHENTIC. */
START_TEST(mp4_config_version)
{
    hidden_picture_refused(false, "decoder configuration (avcC/hvcC) is not of version 1");
}
END_TEST

/* The avcC left of version 1 and a 'glbl' box of version 0 before it: the one ffmpeg takes (the first of glbl, avcC,
 * hvcC...), which a check of the avcC alone passed as AUTHENTIC. */
START_TEST(mp4_config_glbl_first)
{
    hidden_picture_refused(true, "holds 2 decoder configurations");
}
END_TEST

/* An honest H.265 MP4 whose hvcC says version 0, as muxers wrote before ISO/IEC 14496-15 fixed it at 1: ffmpeg reads
 * it as an hvcC all the same (it starts 0 1, not 0 0 0 or 0 0 1), so it shows the signed pictures, and the verifier
 * must not refuse it. */
START_TEST(mp4_hvcc_version_0)
{
    ct_buf mp4 = CT_BUF_INIT;
    ck_assert_int_eq(tu_sh("ffmpeg -v error -y -f lavfi -i testsrc2=size=320x240:rate=30 -t 2 -pix_fmt yuv420p -c:v "
                           "libx265 -x265-params keyint=30:min-keyint=30:open-gop=0:bframes=0:log-level=error -tag:v "
                           "hvc1 '%s'", path("a265.mp4")),
                     0);
    ms_signer_config cfg = {MEDIA_H265, media_key, chain_pem.data, chain_pem.len, "SN0042", "CX42", "fw 1", "camtrust",
                            false};
    ms_sign_stats st = {.start = time(NULL), .fps = 30};
    ck_assert_int_eq(ms_sign_file(&cfg, path("a265.mp4"), path("s265.mp4"), &st), CT_OK);
    ck_assert_int_eq(ct_file_read(path("s265.mp4"), 16u << 20, &mp4), CT_OK);
    size_t hvcc = find_bytes(&mp4, "hvcC", 4) + 4;
    ck_assert_uint_eq(mp4.data[hvcc], 1);
    ck_assert_uint_ne(mp4.data[hvcc + 1], 0); /* profile space, tier and profile: Main */
    mp4.data[hvcc] = 0;
    ck_assert_int_eq(ct_file_write_atomic(path("v0.mp4"), mp4.data, mp4.len, 0644), CT_OK);
    ck_assert_int_eq(tu_sh("cd '%s' && ffmpeg -v error -i s265.mp4 -f framemd5 - >v1.md5 && ffmpeg -v error -i v0.mp4 "
                           "-f framemd5 - >v0.md5 && test $(grep -vc '^#' v0.md5) = 60 && cmp -s v1.md5 v0.md5",
                           dir),
                     0);
    ms_summary s = verify_with(path("v0.mp4"), &root_der, NULL);
    ck_assert_msg(s.authentic, "an honest hvcC of version 0 (ffmpeg shows the signed pictures) refused: %s", s.problem);
    ct_buf_free(&mp4);
}
END_TEST

static void add32(uint8_t *p, uint32_t n)
{
    uint32_t v = ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) + n;
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A signed clip fragmented by ffmpeg (a moof per GOP) whose second fragment's tfhd names sample description 2, which
 * the stsd lacks: ffmpeg skips that fragment without a word and shows GOP 1 alone (at most 30 pictures); the verifier
 * read both with the first description and said AUTHENTIC, 60 pictures. */
START_TEST(fragment_description_index)
{
    clip("a.h264", "-f h264");
    sign(path("a.h264"), path("s.h264"), false, time(NULL));
    fragment("s.h264", "f.mp4");
    ct_buf f = CT_BUF_INIT, out = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(path("f.mp4"), 16u << 20, &f), CT_OK);
    media_box b, moof = {0};
    unsigned moofs = 0;
    for (uint64_t pos = 0; moofs < 2 && media_box_next(f.data, f.len, &pos, &b) == CT_OK;)
        if (b.type == MEDIA_FOURCC('m', 'o', 'o', 'f') && ++moofs == 2) moof = b;
    ck_assert_uint_eq(moofs, 2);
    size_t tfhd = (size_t)(memmem(f.data + moof.off, moof.size, "tfhd", 4) - (void *)f.data) - 4;
    size_t traf = (size_t)(memmem(f.data + moof.off, moof.size, "traf", 4) - (void *)f.data) - 4;
    size_t trun = (size_t)(memmem(f.data + moof.off, moof.size, "trun", 4) - (void *)f.data) - 4;
    ck_assert_uint_eq(f.data[tfhd + 11] & 3, 0); /* no base offset nor description yet */
    ck_assert_uint_eq(f.data[trun + 11] & 1, 1); /* a data offset, from the moof */
    f.data[tfhd + 11] |= 2;
    add32(f.data + trun + 16, 4);
    add32(f.data + tfhd, 4);
    add32(f.data + traf, 4);
    add32(f.data + moof.off, 4);
    static const uint8_t description_2[4] = {0, 0, 0, 2};
    ck_assert_int_eq(ct_buf_alloc(&out, f.len + 4), CT_OK);
    ck_assert_int_eq(ct_buf_append(&out, f.data, tfhd + 16), CT_OK); /* after version, flags and track */
    ck_assert_int_eq(ct_buf_append(&out, description_2, 4), CT_OK);
    ck_assert_int_eq(ct_buf_append(&out, f.data + tfhd + 16, f.len - tfhd - 16), CT_OK);
    ck_assert_int_eq(ct_file_write_atomic(path("skip.mp4"), out.data, out.len, 0644), CT_OK);
    ck_assert_int_eq(
        tu_sh("test \"$(ffmpeg -v error -i '%s' -f framemd5 - 2>/dev/null | grep -vc '^#')\" -le 30", path("skip.mp4")), 0);
    ms_summary s = verify_with(path("skip.mp4"), &root_der, NULL);
    ck_assert_msg(!s.authentic, "a fragment ffmpeg skips (sample description 2) passed");
    ck_assert_msg(strstr(s.problem, "name a sample description other than the first"), "%s", s.problem);
    /* The same tfhd naming description 1, as some packagers write it: honest, shown as without it */
    out.data[tfhd + 19] = 1;
    ck_assert_int_eq(ct_file_write_atomic(path("one.mp4"), out.data, out.len, 0644), CT_OK);
    ck_assert_int_eq(tu_sh("cd '%s' && ffmpeg -v error -i f.mp4 -f framemd5 f.md5 && ffmpeg -v error -i one.mp4 -f "
                           "framemd5 one.md5 && cmp -s f.md5 one.md5", dir),
                     0);
    s = verify_with(path("one.mp4"), &root_der, NULL);
    ck_assert_msg(s.authentic && s.frames == 60, "a tfhd naming sample description 1 refused: %s", s.problem);
    ct_buf_free(&f);
    ct_buf_free(&out);
}
END_TEST

/* A signed clip fragmented by ffmpeg without empty_moov (`-movflags frag_keyframe`): the moov holds GOP 1's samples,
 * the fragments GOP 2. GOP 1 altered, ffmpeg shows it altered; the verifier read the fragments only and said
 * AUTHENTIC (30 pictures). */
START_TEST(fragmented_moov_samples)
{
    clip("a.h264", "-f h264");
    sign(path("a.h264"), path("s.h264"), false, time(NULL));
    ck_assert_int_eq(tu_sh("ffmpeg -v fatal -y -i '%s' -c copy -movflags frag_keyframe '%s'", path("s.h264"),
                           path("f.mp4")),
                     0);
    ct_buf f = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(path("f.mp4"), 16u << 20, &f), CT_OK);
    size_t moov = find_bytes(&f, "moov", 4), mdat = find_bytes(&f, "mdat", 4), moof = find_bytes(&f, "moof", 4);
    ck_assert(moov < mdat && mdat < moof); /* GOP 1 in the first mdat, before any fragment */
    for (size_t i = mdat + 3000; i < mdat + 3064; i++) f.data[i] ^= 0x55;
    ck_assert_int_eq(ct_file_write_atomic(path("altered.mp4"), f.data, f.len, 0644), CT_OK);
    ck_assert_int_eq(tu_sh("cd '%s' && ffmpeg -v quiet -i f.mp4 -f framemd5 f.md5; ffmpeg -v quiet -i altered.mp4 -f "
                           "framemd5 altered.md5; test $(grep -vc '^#' f.md5) -gt 30 && ! cmp -s f.md5 altered.md5",
                           dir),
                     0);
    ms_summary s = verify_with(path("altered.mp4"), &root_der, NULL);
    ck_assert_msg(!s.authentic, "pictures in the moov of a fragmented MP4 altered, and it passed (%llu frames)",
                  (unsigned long long)s.frames);
    ck_assert_msg(strstr(s.problem, "moov holds 30 samples outside any fragment"), "%s", s.problem);
    ct_buf_free(&f);
}
END_TEST

START_TEST(fragmented_mp4)
{
    clip("a.h264", "-f h264");
    sign(path("a.h264"), path("s.h264"), false, time(NULL));
    fragment("s.h264", "f.mp4");
    ms_summary s = verify_with(path("f.mp4"), &root_der, NULL);
    ck_assert_msg(s.authentic, "%s / %s", s.problem, s.chain);
    ck_assert_str_eq(s.container, "fragmented MP4");
    ck_assert_uint_eq(s.gops, 2);
    ck_assert_uint_eq(s.frames, 60);
    ck_assert_uint_eq(s.sei_count, 3);
    ck_assert_str_eq(s.serial, "SN0042");
    /* cut off inside the last fragment: the GOP before it is still authentic, the cut is a finding */
    ck_assert_int_eq(tu_sh("head -c $(( $(stat -c %%s '%s') - 3000 )) '%s' >'%s'", path("f.mp4"), path("f.mp4"),
                           path("cut.mp4")),
                     0);
    s = verify_with(path("cut.mp4"), &root_der, NULL);
    ck_assert(!s.authentic);
    ck_assert_uint_eq(s.count[MS_AUTHENTIC], 1);
    ck_assert_ptr_nonnull(strstr(s.problem, "cut off"));
}
END_TEST

static void crl_with(time_t revoked_at, int reason, ct_buf *crl)
{
    pki_revoked r = {leaf_info.serial_hex, revoked_at, reason};
    pki_crl_params p = {root_der.data, root_der.len, root_key, 1, time(NULL), time(NULL) + 3600};
    ct_err rc = pki_crl_make(&p, &r, 1, crl);
    ck_assert_msg(rc == CT_OK, "crl: %s %s", ct_err_name(rc), ct_err_detail());
}

START_TEST(revocation)
{
    clip("a.h264", "-f h264");
    time_t now = time(NULL);
    sign(path("a.h264"), path("s.h264"), true, now);
    ct_buf before = CT_BUF_INIT, after = CT_BUF_INIT;
    crl_with(now - 60, PKI_REASON_SUPERSEDED, &before);
    crl_with(now + 3600, PKI_REASON_SUPERSEDED, &after);
    ms_summary s = verify_with(path("s.h264"), &root_der, &before);
    ck_assert(!s.authentic);
    ck_assert_uint_eq(s.count[MS_UNTRUSTED], 2);
    ck_assert_ptr_nonnull(strstr(s.revocation, "revoked at"));
    s = verify_with(path("s.h264"), &root_der, &after);
    ck_assert_msg(s.authentic, "%s", s.revocation);
    ck_assert_ptr_nonnull(strstr(s.revocation, "revoked at"));
    /* revoked later, but for keyCompromise: whoever held the key could date the clip as they liked */
    ct_buf compromised = CT_BUF_INIT;
    crl_with(now + 3600, PKI_REASON_KEY_COMPROMISE, &compromised);
    s = verify_with(path("s.h264"), &root_der, &compromised);
    ck_assert(!s.authentic);
    ck_assert_uint_eq(s.count[MS_UNTRUSTED], 2);
    ck_assert_msg(strstr(s.revocation, "revoked for keyCompromise at"), "%s", s.revocation);
    ct_buf_free(&compromised);
    /* a CRL signed by another key is not believed: revocation asked for and not checked, nothing trusted */
    after.data[after.len - 5] ^= 1;
    s = verify_with(path("s.h264"), &root_der, &after);
    ck_assert(!s.authentic);
    ck_assert_uint_eq(s.count[MS_UNTRUSTED], 2);
    ck_assert_ptr_nonnull(strstr(s.revocation, "CRL unusable"));
    ct_buf_free(&before);
    ct_buf_free(&after);
}
END_TEST

/* A live viewer's checks: the camera serving the stream must be the one that signed it (cfg.serial, whatever the
 * case of the host name it comes from), and a presented chain is judged with the CRL as a signer's is. */
START_TEST(serving_camera_and_presented_chain)
{
    clip("a.h264", "-f h264");
    time_t now = time(NULL);
    sign(path("a.h264"), path("s.h264"), true, now);
    ms_summary s;
    ms_verify_config cfg = {.root_der = root_der.data, .root_len = root_der.len, .serial = "sn0042"};
    ck_assert_int_eq(ms_verify_file(path("s.h264"), &cfg, NULL, NULL, &s), CT_OK);
    ck_assert_msg(s.authentic, "%s", s.problem);
    cfg.serial = "SN0043";
    ck_assert_int_eq(ms_verify_file(path("s.h264"), &cfg, NULL, NULL, &s), CT_OK);
    ck_assert(!s.authentic);
    ck_assert_uint_eq(s.count[MS_INSERTED], 2);
    ck_assert_str_eq(s.serial, "SN0042"); /* the report still names the camera that signed */

    ct_buf before = CT_BUF_INIT, after = CT_BUF_INIT;
    crl_with(now - 60, PKI_REASON_SUPERSEDED, &before);
    crl_with(now + 3600, PKI_REASON_SUPERSEDED, &after);
    bool trusted = false;
    char why[256];
    ms_verify_config tls = {.root_der = root_der.data, .root_len = root_der.len};
    ck_assert_int_eq(ms_chain_trusted(&tls, chain_pem.data, chain_pem.len, now, &trusted, why, sizeof why), CT_OK);
    ck_assert(trusted);
    tls.crl_der = before.data;
    tls.crl_len = before.len;
    ck_assert_int_eq(ms_chain_trusted(&tls, chain_pem.data, chain_pem.len, now, &trusted, why, sizeof why), CT_OK);
    ck_assert(!trusted);
    ck_assert_msg(strncmp(why, "revoked at", 10) == 0, "%s", why);
    tls.crl_der = after.data;
    tls.crl_len = after.len;
    ck_assert_int_eq(ms_chain_trusted(&tls, chain_pem.data, chain_pem.len, now, &trusted, why, sizeof why), CT_OK);
    ck_assert_msg(trusted, "%s", why); /* revoked only later */
    after.data[after.len - 5] ^= 1;    /* a CRL that does not verify: revocation asked for, not checked */
    ck_assert_int_eq(ms_chain_trusted(&tls, chain_pem.data, chain_pem.len, now, &trusted, why, sizeof why), CT_OK);
    ck_assert(!trusted);
    ck_assert_msg(strstr(why, "CRL unusable"), "%s", why);
    ct_buf_free(&before);
    ct_buf_free(&after);
}
END_TEST

/* What the signer writes, read back with the format parser: the layout of mediasign.h. */
START_TEST(sei_layout)
{
    ms_signer_config cfg = {MEDIA_H264, media_key, chain_pem.data, chain_pem.len, "SN0042", "CX42", "fw", "camtrust",
                            false};
    ms_signer *sg = NULL;
    ct_buf out = CT_BUF_INIT;
    bool ready;
    static const uint8_t idr[] = {0x65, 0x88, 0x84, 0x21}, p[] = {0x41, 0x9a, 0x02};
    uint8_t rbsp[MS_MAX_SEI];
    size_t n;
    ms_sei sei;
    ck_assert_int_eq(ms_signer_open(&cfg, &sg), CT_OK);
    ck_assert_int_eq(ms_signer_take(sg, true, &out, &ready), CT_OK);
    ck_assert(ready);
    ck_assert_int_eq(media_epb_remove(out.data, out.len, rbsp, sizeof rbsp, &n), CT_OK);
    ck_assert_int_eq(ms_sei_parse(MEDIA_H264, rbsp, n, &sei), CT_OK);
    ck_assert_uint_eq(sei.reserved, 0x80); /* the certificate SEI */
    ck_assert(sei.has_chain && sei.has_crypto && sei.has_signature && !sei.has_general);
    int64_t t0 = ms_time_from_unix(1700000000, 0);
    ck_assert_int_eq(ms_signer_push(sg, idr, sizeof idr, t0), CT_OK);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(ms_signer_push(sg, p, sizeof p, t0), CT_OK);
    ck_assert_int_eq(ms_signer_take(sg, false, &out, &ready), CT_OK);
    ck_assert(!ready);
    ck_assert_int_eq(ms_signer_finish(sg), CT_OK);
    ck_assert_int_eq(ms_signer_take(sg, true, &out, &ready), CT_OK);
    ck_assert(ready);
    ck_assert_int_eq(media_epb_remove(out.data, out.len, rbsp, sizeof rbsp, &n), CT_OK);
    ck_assert_int_eq(ms_sei_parse(MEDIA_H264, rbsp, n, &sei), CT_OK);
    ck_assert_uint_eq(sei.reserved, 0);
    ck_assert(sei.has_general && sei.has_hashes);
    ck_assert_uint_eq(sei.counter, 1);
    ck_assert_uint_eq(sei.nals, 6);
    ck_assert_uint_eq(sei.n_hashes, 6);
    ck_assert_int_eq(sei.timestamp, t0);
    ck_assert_int_eq(ms_time_to_unix(sei.timestamp), 1700000000);
    ck_assert_str_eq(sei.serial, "SN0042");
    ck_assert_str_eq(sei.model, "CX42");
    ck_assert_uint_eq(sei.linked[0] | sei.linked[31], 0); /* the first GOP links to nothing */
    uint8_t anchor[32];
    ck_assert_int_eq(ct_sha256(idr, sizeof idr, anchor), CT_OK);
    ck_assert_mem_eq(sei.hashes, anchor, 32);
    ck_assert_uint_le(sei.sig_len, MS_SIG_MAX);
    /* the signature TLV is the last: document + 3 + 1 + 2 + 72 + the stop byte */
    ck_assert_uint_eq(sei.doc_len + 3 + 1 + 2 + MS_SIG_MAX + 1, n);
    ck_assert_int_eq(ms_signer_take(sg, true, &out, &ready), CT_OK);
    ck_assert(!ready);
    ms_signer_close(sg);
    ct_buf_free(&out);
}
END_TEST

START_TEST(onvif_reference_clips)
{
    ct_buf ca = CT_BUF_INIT, pem = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(CAMTRUST_ONVIF_VECTORS "/ca.pem", 65536, &pem), CT_OK);
    ck_assert_int_eq(ct_buf_alloc(&ca, PKI_MAX_CERT_DER), CT_OK);
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 0, &ca), CT_OK);
    ms_summary s = verify_with(CAMTRUST_ONVIF_VECTORS "/test_signed_h264.mp4", &ca, NULL);
    ck_assert_msg(s.authentic, "%s %s", s.problem, s.chain);
    ck_assert_uint_eq(s.gops, 5);
    ck_assert_str_eq(s.firmware, "v0.0.4");
    ck_assert_str_eq(s.time_source, "MP4 creation time");
    s = verify_with(CAMTRUST_ONVIF_VECTORS "/test_signed_h265.mp4", &ca, NULL);
    ck_assert(s.authentic);
    /* one payload byte flipped in a P-frame */
    ck_assert_int_eq(tu_sh("python3 -c \"import sys; d = bytearray(open(sys.argv[1], 'rb').read()); "
                           "i = d.find(bytes([0x41, 0x9a]), d.find(b'mdat') + 60000); d[i + 8] ^= 1; "
                           "open(sys.argv[2], 'wb').write(d)\" '%s' '%s'",
                           CAMTRUST_ONVIF_VECTORS "/test_signed_h264.mp4", path("flip.mp4")),
                     0);
    s = verify_with(path("flip.mp4"), &ca, NULL);
    ck_assert(!s.authentic);
    ck_assert_uint_eq(s.count[MS_ALTERED], 1);
    ck_assert_uint_eq(s.count[MS_AUTHENTIC], 4);
    ct_buf_free(&ca);
    ct_buf_free(&pem);
}
END_TEST

/* ---- live (issue 14): each GOP's signature right after its last picture; the live verifier reports it at once ---- */
typedef struct {
    size_t reports, authentic;
} live_count;

static void count_gop(const ms_gop_report *g, void *arg)
{
    live_count *c = arg;
    c->reports++;
    c->authentic += g->status == MS_AUTHENTIC;
}

/* Signs a.h264 as the live writer does (the signer's finish at each GOP end, its SEIs after the GOP's last
 * picture) and feeds a live verifier; with `extra`, a copy of GOP 1's last picture follows its signature. */
static void live_run(bool extra, live_count *c, size_t *after_gop1, ms_summary *sum)
{
    ct_buf clipbuf = CT_BUF_INIT, sei = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(path("a.h264"), 16u << 20, &clipbuf), CT_OK);
    ms_signer_config cfg = {MEDIA_H264, media_key, chain_pem.data, chain_pem.len, "SN0042", "CX42", "fw 1",
                            "camtrust", false};
    ms_verify_config vc = {.root_der = root_der.data, .root_len = root_der.len, .live = true};
    ms_signer *sg = NULL;
    ms_verifier *v = NULL;
    ck_assert_int_eq(ms_signer_open(&cfg, &sg), CT_OK);
    ck_assert_int_eq(ms_verifier_open(&vc, MEDIA_H264, time(NULL), "test", count_gop, c, &v), CT_OK);
    size_t pos = 0, len = 0, skipped, frame = 0, irap = 0;
    const uint8_t *nal = NULL, *last_pic = NULL;
    size_t last_len = 0;
    time_t start = time(NULL);
    for (;;) {
        bool more = media_annexb_next(clipbuf.data, clipbuf.len, &pos, &nal, &len, &skipped) == CT_OK;
        bool gop_end = !more || media_nal_classify(MEDIA_H264, nal, len).kind == MEDIA_NAL_IRAP;
        if (gop_end && irap > 0) {
            ck_assert_int_eq(ms_signer_finish(sg), CT_OK);
            for (bool ready = true; ready;) {
                ck_assert_int_eq(ms_signer_take(sg, true, &sei, &ready), CT_OK);
                if (ready) ck_assert_int_eq(ms_verifier_push(v, sei.data, sei.len, -1), CT_OK);
            }
            if (irap == 1) {
                *after_gop1 = c->reports;
                if (extra) ck_assert_int_eq(ms_verifier_push(v, last_pic, last_len, -1), CT_OK);
            }
        }
        if (!more) break;
        media_nal_info info = media_nal_classify(MEDIA_H264, nal, len);
        if (info.kind == MEDIA_NAL_IRAP) irap++;
        if (media_nal_is_vcl(info.kind)) last_pic = nal, last_len = len, frame++;
        ck_assert_int_eq(ms_signer_push(sg, nal, len, ms_time_from_unix(start + (time_t)(frame / 30), 0)), CT_OK);
        ck_assert_int_eq(ms_verifier_push(v, nal, len, -1), CT_OK);
    }
    ck_assert_int_eq(ms_verifier_finish(v, sum), CT_OK);
    ms_verifier_close(v);
    ms_signer_close(sg);
    ct_buf_free(&sei);
    ct_buf_free(&clipbuf);
}

START_TEST(live_gop_reported_with_its_signature)
{
    clip("a.h264", "-f h264 -bf 0");
    live_count c = {0};
    size_t after = 0;
    ms_summary sum;
    live_run(false, &c, &after, &sum);
    /* GOP 1 is reported as soon as its signature is in, before any picture of GOP 2. */
    ck_assert_uint_eq(after, 1);
    ck_assert_uint_eq(c.authentic, 2);
    ck_assert(sum.authentic);
    /* A picture slipped in after a GOP's signature is covered by none: the clip is not authentic. */
    live_count d = {0};
    live_run(true, &d, &after, &sum);
    ck_assert_uint_eq(after, 1);
    ck_assert(!sum.authentic);
    ck_assert_uint_eq(d.authentic, 2);
    ck_assert_uint_eq(d.reports, 3);
}
END_TEST

/* ---- MP4 NAL length size: the sample entry's (avcC/hvcC lengthSizeMinusOne) is not signed ---- */
typedef struct {
    const media_mp4 *m;
    uint32_t at;        /* the sample that gets `lead` before its own NAL units */
    const ct_buf *lead; /* NULL: none */
} reprefix_ctx;

/* A sample's NAL units with 2-byte lengths (`lead` first in sample `at`): the same NAL units, as signed. */
static ct_err reprefix_sample(void *arg, uint32_t index, const uint8_t *p, size_t len, media_out *o)
{
    const reprefix_ctx *c = arg;
    media_mp4_video vid;
    const uint8_t *nal;
    size_t pos = 0, n;
    ck_assert_int_eq(media_mp4_video_track(c->m, &vid), CT_OK);
    if (c->lead && index == c->at) ck_assert_int_eq(media_out_write(o, c->lead->data, c->lead->len), CT_OK);
    while (media_lp_next(p, len, vid.nal_length_size, &pos, &nal, &n) == CT_OK) {
        uint8_t pre[2] = {(uint8_t)(n >> 8), (uint8_t)n};
        ck_assert_uint_lt(n, 1u << 16);
        ck_assert_int_eq(media_out_write(o, pre, 2), CT_OK);
        ck_assert_int_eq(media_out_write(o, nal, n), CT_OK);
    }
    return CT_OK;
}

/* `in` (an MP4 of 4-byte NAL lengths) rewritten to `out` with 2-byte ones, its avcC or hvcC saying so. */
static void reprefix(const char *in, const char *out, const ct_buf *lead, uint32_t at)
{
    media_file f;
    media_mp4 *m = NULL;
    ct_buf mp4 = CT_BUF_INIT;
    ck_assert_int_eq(media_file_map(path(in), &f), CT_OK);
    ck_assert_int_eq(media_mp4_open(f.data, f.len, &m), CT_OK);
    FILE *o = fopen(path(out), "wb");
    ck_assert_ptr_nonnull(o);
    reprefix_ctx c = {m, at, lead};
    ck_assert_int_eq(media_mp4_rewrite(m, o, reprefix_sample, &c), CT_OK);
    ck_assert_int_eq(fclose(o), 0);
    media_mp4_free(m);
    media_file_unmap(&f);
    ck_assert_int_eq(ct_file_read(path(out), 16u << 20, &mp4), CT_OK);
    uint8_t *avc = memmem(mp4.data, mp4.len, "avcC", 4);
    uint8_t *size_byte = avc ? avc + 8 : (uint8_t *)memmem(mp4.data, mp4.len, "hvcC", 4) + 4 + 21;
    ck_assert_uint_eq(*size_byte & 3, 3);
    *size_byte &= 0xfd; /* lengthSizeMinusOne 1 */
    ck_assert_int_eq(ct_file_write_atomic(path(out), mp4.data, mp4.len, 0644), CT_OK);
    ct_buf_free(&mp4);
}

/* ffmpeg decodes `n` pictures `width` pixels wide from `name`. */
static void assert_ffmpeg_pictures(const char *name, int width, int n)
{
    ck_assert_msg(tu_sh("test \"$(ffprobe -v error -select_streams v -show_entries frame=width -of csv=p=0 '%s' | "
                        "grep -c '^%d')\" = %d", path(name), width, n) == 0,
                  "%s: not %d pictures %d wide", name, n, width);
}

/* The decoder configuration record (`fourcc`: avcC or hvcC) of the MP4 `name`, padded as a sample's first NAL unit:
 * with 2-byte lengths its first two bytes (version 1, the profile) are that NAL unit's length to the verifier. */
static void config_as_nal(const char *name, const char *fourcc, ct_buf *lead)
{
    ct_buf mp4 = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(path(name), 16u << 20, &mp4), CT_OK);
    size_t box = find_bytes(&mp4, fourcc, 4) - 4;
    size_t cfg_len = ((size_t)mp4.data[box] << 24 | (size_t)mp4.data[box + 1] << 16 |
                      (size_t)mp4.data[box + 2] << 8 | mp4.data[box + 3]) - 8;
    size_t total = 2 + ((size_t)1 << 8 | mp4.data[box + 9]);
    ck_assert_uint_le(cfg_len, total);
    ck_assert_int_eq(ct_buf_alloc(lead, total), CT_OK);
    ck_assert_int_eq(ct_buf_append(lead, mp4.data + box + 8, cfg_len), CT_OK);
    memset(lead->data + cfg_len, 0, total - cfg_len);
    lead->len = total;
    ct_buf_free(&mp4);
}

/* A falsifier re-prefixes a signed MP4's samples with 2-byte lengths (the signatures cover NAL units, not their
 * prefixes) and starts the last sample of GOP 1 with an avcC record holding an SPS that crops 32 columns: ffmpeg
 * takes it for new parameter sets and decodes GOP 2 cropped, while to the verifier the record is one NAL unit of
 * type 0, passed over: the old code said AUTHENTIC. The honest 2-byte copy still verifies. */
START_TEST(mp4_sample_as_avcc)
{
    clip("a.mp4", "-bf 0");
    sign(path("a.mp4"), path("s.mp4"), false, time(NULL));
    ck_assert_int_eq(tu_sh("ffmpeg -v error -y -i '%s' -c copy -bsf:v h264_metadata=crop_right=32 '%s'", path("a.mp4"),
                           path("crop.mp4")),
                     0);
    ct_buf lead = CT_BUF_INIT;
    config_as_nal("crop.mp4", "avcC", &lead);
    /* profile_compatibility 0 and 2-byte lengths, as ffmpeg wants them */
    lead.data[2] = 0;
    lead.data[4] = 0xfd;

    reprefix("s.mp4", "two.mp4", NULL, 0);
    reprefix("s.mp4", "atk.mp4", &lead, 29);
    assert_ffmpeg_pictures("two.mp4", 320, 60);
    ms_summary s = verify_with(path("two.mp4"), &root_der, NULL);
    ck_assert_msg(s.authentic, "%s", s.problem);
    assert_ffmpeg_pictures("atk.mp4", 288, 30);
    s = verify_with(path("atk.mp4"), &root_der, NULL);
    ck_assert_msg(!s.authentic, "a sample ffmpeg takes for new parameter sets passed");
    ck_assert_msg(strstr(s.problem, "NAL unit of type 0, which H.264 leaves unspecified"), "%s", s.problem);
    /* Fragmented, the verifier takes 4-byte lengths only (cenc_walk), as camtrust-agent record writes them. */
    fragment("atk.mp4", "atk-f.mp4");
    assert_ffmpeg_pictures("atk-f.mp4", 288, 30);
    ms_verify_config vc = {.root_der = root_der.data, .root_len = root_der.len};
    ct_err rc = ms_verify_file(path("atk-f.mp4"), &vc, NULL, NULL, &s);
    ck_assert(rc != CT_OK || !s.authentic);
    ct_buf_free(&lead);
}
END_TEST

/* The same with an hvcC record (ONVIF's signed H.265 clip): to the verifier a NAL unit of type 48 (profile
 * compatibility bytes 60 00), which ISO/IEC 14496-15 readers unpack as an aggregator; ffmpeg's H.265 decoder
 * takes no parameter sets from a sample (only from a sample entry named by stsc: a problem already) and ignores it.
 * (With the clip's own compatibility bytes, 40 00, the record is a VPS to the verifier: a parameter set it follows.) */
START_TEST(mp4_sample_as_hvcc)
{
    ct_buf ca = CT_BUF_INIT, pem = CT_BUF_INIT, lead = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(CAMTRUST_ONVIF_VECTORS "/ca.pem", 65536, &pem), CT_OK);
    ck_assert_int_eq(ct_buf_alloc(&ca, PKI_MAX_CERT_DER), CT_OK);
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 0, &ca), CT_OK);
    ck_assert_int_eq(tu_sh("cp '%s' '%s'", CAMTRUST_ONVIF_VECTORS "/test_signed_h265.mp4", path("h.mp4")), 0);
    config_as_nal("h.mp4", "hvcC", &lead);
    lead.data[2] = 0x60; /* profile compatibility Main and Main 10, as x265 writes it */
    reprefix("h.mp4", "two.mp4", NULL, 0);
    reprefix("h.mp4", "atk.mp4", &lead, 30);
    ck_assert_int_eq(tu_sh("cd '%s' && ffmpeg -v error -i two.mp4 -f framemd5 two.md5 && ffmpeg -v error -i atk.mp4 "
                           "-f framemd5 atk.md5 && cmp two.md5 atk.md5", path("")),
                     0);
    ms_summary s = verify_with(path("two.mp4"), &ca, NULL);
    ck_assert_msg(s.authentic, "%s", s.problem);
    s = verify_with(path("atk.mp4"), &ca, NULL);
    ck_assert_msg(!s.authentic, "an aggregator NAL unit in a sample passed");
    ck_assert_msg(strstr(s.problem, "NAL unit of type 48, which H.265 leaves unspecified"), "%s", s.problem);
    ct_buf_free(&ca);
    ct_buf_free(&pem);
    ct_buf_free(&lead);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mediasign");
    TCase *tc = tcase_create("mediasign");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sign_verify_annexb_and_mp4);
    tcase_add_test(tc, parameter_sets_signed);
    tcase_add_test(tc, parameter_set_digest);
    tcase_add_test(tc, parameter_sets_version_1);
    tcase_add_test(tc, parameter_sets_version_1_h265);
    tcase_add_test(tc, live_sample_entry_each_segment);
    tcase_add_test(tc, mp4_config_version);
    tcase_add_test(tc, mp4_config_glbl_first);
    tcase_add_test(tc, mp4_hvcc_version_0);
    tcase_add_test(tc, fragment_description_index);
    tcase_add_test(tc, fragmented_mp4);
    tcase_add_test(tc, fragmented_moov_samples);
    tcase_add_test(tc, other_root_and_expiry);
    tcase_add_test(tc, revocation);
    tcase_add_test(tc, sei_layout);
    tcase_add_test(tc, onvif_reference_clips);
    tcase_add_test(tc, live_gop_reported_with_its_signature);
    tcase_add_test(tc, serving_camera_and_presented_chain);
    tcase_add_test(tc, mp4_sample_as_avcc);
    tcase_add_test(tc, mp4_sample_as_hvcc);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
