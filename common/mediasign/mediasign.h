/* mediasign: ONVIF Media Signing (signed video) for H.264/H.265: the camera signs each GOP with its
 * media-signing key inside its token; anyone holding the device root verifies a clip GOP by GOP.
 *
 * Format (ONVIF Media Signing 23.06, laid out as ONVIF's reference framework writes it, which is what other
 * vendors' validators read): after each GOP, one SEI NAL unit of type user_data_unregistered with
 *   UUID 005bc93f-2d71-5e95-ada4-796f90877a6f, a reserved byte, then TLVs: tag (1 byte), length (2 bytes,
 *   big-endian), value; every value starts with its version byte (1). Multi-byte integers are big-endian (the
 *   reference's choice; the 23.06 text says little-endian for two of them, no validator reads it that way).
 *   reserved byte  0x80: "sent once" (certificate SEI), 0x40: the document was hashed with emulation prevention
 *                  bytes in it; camtrust writes 0x00 (hashed without them) and the certificate SEI 0x80.
 *   4 crypto info  ver, hash OID length (1), DER OID of SHA-256 (06 09 60 86 48 01 65 03 04 02 01),
 *                  signing OID length (1) = 0 (EC keys carry their curve), RSA size (2) = 0
 *   5 vendor info  ver, then three (length byte, string): firmware version, serial number, manufacturer
 *   6 certificates ver, user-provisioned flag (0), the chain in PEM, leaf first, without the root
 *   1 general      ver, implementation version (3 bytes), partial-GOP flag (1), timestamp of the GOP's I-frame
 *                  (8, signed, 100 ns units since 1601-01-01 UTC), GOP counter (4), NAL units hashed (2),
 *                  GOP hash (32), linked hash (32): the previous GOP's anchor, zeros for the first GOP
 *   2 hash list    ver, 32 bytes per picture NAL unit of the GOP in stream order
 *   7 arbitrary    ver, "camtrust:model=M" (the camera model, signed with the rest)
 *   7 arbitrary    (GOP SEIs) ver, 32 bytes: the digest of the parameter sets the GOP's pictures are decoded with
 *                  (camtrust's own binding, ms_psets in ms_priv.h; read only in an SEI that names a camtrust model)
 *   3 signature    ver, DER signature length (2), ECDSA P-256 DER signature padded with 0x01 to 72 bytes
 * then the rbsp stop byte 0x80. The signature is ECDSA(SHA-256(document)), the document being the SEI NAL unit
 * from its header to the signature TLV (exclusive), without emulation prevention bytes.
 * Hashing: picture NAL units only (H.264 types 1 and 5, H.265 0-1 and 16-21; not SPS/PPS/VPS, AUD or SEI),
 * header to stop bit, trailing zero bytes excluded. Parameter sets: the format leaves them out ("excluded until
 * there is a solution", ONVIF Media Signing 5.2), yet a rewritten SPS (cropping, VUI) changes what a viewer sees;
 * camtrust signs their digest per GOP in the arbitrary-data TLV above, the format's place for vendor data (ONVIF's
 * reference validator fails on a tag it does not know, and reads past arbitrary data): every group of parameter
 * sets before each picture (ms_psets; TLV version 2, 1 the last group only), in band or, for an MP4, in the sample
 * entry (avcC/hvcC) first; the verifier follows the sets by kind and id too, as decoders keep them across GOPs
 * (ms_verify.c). Clips without that TLV (other vendors', older ones) are checked as before. A GOP starts at the
 * first slice of an IRAP picture: its hash is the anchor A = H(I); the list holds A, then H(A || H(N)) for every
 * other picture NAL unit N; the GOP hash is H(list). The certificate SEI carries tags 4, 5, 6, 7 and 3. */
#ifndef CAMTRUST_MEDIASIGN_H
#define CAMTRUST_MEDIASIGN_H

#include <stdio.h>
#include <time.h>

#include "../../hsm/hsm.h"
#include "../core/core.h"
#include "../media/media.h"
#include "../pki/pki.h"

#define MS_HASH_LEN 32
#define MS_MAX_GOP_NALS 2047 /* hash list TLV: (65535 - 1) / 32 */
#define MS_SIG_MAX 72        /* DER ECDSA P-256 */
#define MS_MAX_SEI (96 * 1024)
#define MS_MAX_CHAIN 4
#define MS_TEXT_MAX 64

/* Time as the format writes it: 100 ns units since 1601-01-01 UTC. */
int64_t ms_time_from_unix(time_t t, uint32_t nsec);
time_t ms_time_to_unix(int64_t t);

/* ---- signing (the camera) ---- */
typedef struct ms_signer ms_signer;
typedef struct {
    media_codec codec;
    hsm_key *key;               /* the media-signing key, in the token; not owned */
    const uint8_t *chain_pem;   /* leaf first, without the root */
    size_t chain_len;
    const char *serial, *model, *firmware, *manufacturer;
    bool threaded;              /* sign in a worker thread, off the path that passes NAL units on */
} ms_signer_config;

CT_MUST_CHECK ct_err ms_signer_open(const ms_signer_config *cfg, ms_signer **out);
/* One NAL unit as it will be written (no start code). `time` is its picture's capture time (ms_time_from_unix).
 * When it starts a GOP, the finished GOP's document is handed to signing. Memory: one GOP's hashes. */
CT_MUST_CHECK ct_err ms_signer_push(ms_signer *s, const uint8_t *nal, size_t len, int64_t time);
/* The next signed SEI NAL unit (emulation prevention applied, no start code) into `out` (allocated here, at
 * most MS_MAX_SEI), or *ready false when none is finished (with `wait`: none is pending any more). The first
 * one is the certificate SEI. Write them before the first slice of the next picture. */
CT_MUST_CHECK ct_err ms_signer_take(ms_signer *s, bool wait, ct_buf *out, bool *ready);
/* SEIs queued and not yet taken: a caller that takes them only at picture boundaries waits (take with `wait`)
 * when this grows past half of the queue, so that a slow token slows the stream instead of failing it. */
size_t ms_signer_backlog(ms_signer *s);
#define MS_SIGNER_QUEUE 4
/* GOPs handed to signing so far. */
uint32_t ms_signer_gops(const ms_signer *s);
/* Queues the certificate SEI again (taken like the others): a live stream repeats it at each segment, so that a
 * viewer joining there identifies the camera. */
CT_MUST_CHECK ct_err ms_signer_certificate(ms_signer *s);
/* End of stream: the last GOP is handed to signing (its SEI follows the last picture). */
CT_MUST_CHECK ct_err ms_signer_finish(ms_signer *s);
void ms_signer_close(ms_signer *s);

/* Signs a recording: Annex B in, Annex B out; MP4 in, MP4 out (the SEIs go into the video samples).
 * `start` is the capture time of the first picture (Unix); later pictures add their container time (MP4) or
 * frame index / `fps` (Annex B). `bytes_in/out` report the sizes (NULL: not wanted). */
typedef struct {
    time_t start;
    unsigned fps;
    uint64_t bytes_in, bytes_out, gops;
} ms_sign_stats;
CT_MUST_CHECK ct_err ms_sign_file(const ms_signer_config *cfg, const char *in, const char *out, ms_sign_stats *st);

/* ---- verification ---- */
typedef enum {
    MS_AUTHENTIC,  /* signed by the clip's camera, chain valid at recording time, every hash matches */
    MS_ALTERED,    /* pictures changed, or the signature SEI itself */
    MS_MISSING,    /* pictures or whole GOPs cut out */
    MS_REORDERED,  /* GOPs or pictures out of their signed order */
    MS_INSERTED,   /* pictures no signature covers, or a GOP signed by another camera */
    MS_UNSIGNED,   /* no signature (an unsigned clip, or the GOP whose signature follows the end of the clip) */
    MS_UNTRUSTED,  /* validly signed, but the chain does not verify to the root at recording time, or revoked */
    MS_STATUS__COUNT
} ms_status;
const char *ms_status_name(ms_status s);

typedef struct {
    ms_status status;
    uint64_t first_frame, last_frame; /* pictures, from 0 */
    double t_start, t_end;            /* seconds of container time; negative when the container has none */
    time_t signed_at;                 /* from the SEI timestamp; 0 when none or not a wall-clock time */
    bool has_counter;
    uint32_t counter;
    char detail[256];
} ms_gop_report;

typedef struct {
    const uint8_t *root_der; /* the trust anchor */
    size_t root_len;
    const uint8_t *crl_der;  /* optional: a CRL of the issuing CA */
    size_t crl_len;
    bool live;               /* a live viewer: a GOP closes when a signature covering exactly its pictures follows
                              * them, and signed GOPs are reported at once (not after 4 more GOPs) */
    const char *serial;      /* optional: the camera that must have signed (a live viewer: the one serving the
                              * stream, by its TLS certificate); a GOP signed by another is inserted */
} ms_verify_config;

typedef struct {
    char container[16];
    media_codec codec;
    uint64_t frames, gops, sei_count;
    size_t count[MS_STATUS__COUNT];
    bool camera_known;
    char serial[PKI_NAME_MAX], cn[PKI_NAME_MAX], issuer[PKI_NAME_MAX];
    char model[MS_TEXT_MAX], manufacturer[MS_TEXT_MAX], firmware[MS_TEXT_MAX];
    time_t recorded_at;
    char time_source[64];
    char chain[256];
    char revocation[256];
    char problem[256]; /* stream-level: truncated, malformed container, foreign NAL units */
    bool have_counters; /* the lowest and highest GOP counter among signatures that verified: what of the */
    uint32_t first_counter, last_counter; /* camera's recording the clip covers (a cut at either end) */
    bool authentic;    /* every GOP authentic and no problem */
} ms_summary;

typedef void (*ms_gop_cb)(const ms_gop_report *g, void *arg);

/* A streaming verifier: NAL units in, one report per GOP out through `cb` (a GOP is reported once its
 * signature has been seen or can no longer come). Memory: a few GOPs' hashes. */
typedef struct ms_verifier ms_verifier;
CT_MUST_CHECK ct_err ms_verifier_open(const ms_verify_config *cfg, media_codec codec, time_t fallback_time,
                                      const char *time_source, ms_gop_cb cb, void *arg, ms_verifier **out);
/* `t` is the picture's container time in seconds (negative: unknown). */
CT_MUST_CHECK ct_err ms_verifier_push(ms_verifier *v, const uint8_t *nal, size_t len, double t);
/* The same for a NAL unit of an MP4 sample (a recording's or a live segment's): a type the codec leaves unspecified
 * is a problem there, as players may act on it (aggregators, extractors, or ffmpeg's avcC in a sample). */
CT_MUST_CHECK ct_err ms_verifier_push_sample(ms_verifier *v, const uint8_t *nal, size_t len, double t);
/* A parameter set of an MP4 sample entry (avcC/hvcC), before any sample: pushed as the others, and the ones in the
 * samples it is replaced with must be the same (some players decode with the sample entry's alone). After a picture
 * (the live viewer walks the init segment with every segment) it is ignored: a player took it once, before. */
CT_MUST_CHECK ct_err ms_verifier_push_entry(ms_verifier *v, const uint8_t *nal, size_t len);
/* A stream-level problem (malformed container, truncation): kept for the summary, the clip is not authentic. */
void ms_verifier_problem(ms_verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* How many problems were noted so far, and the latest (`last`, may be NULL): a live viewer refuses the segment that
 * brought one (the summary names only the first). */
size_t ms_verifier_problems(const ms_verifier *v, const char **last);
CT_MUST_CHECK ct_err ms_verifier_finish(ms_verifier *v, ms_summary *sum);
void ms_verifier_close(ms_verifier *v);

/* Verifies a clip (Annex B or MP4). Fails only when the clip cannot be read at all; findings go to the
 * reports and the summary. */
CT_MUST_CHECK ct_err ms_verify_file(const char *path, const ms_verify_config *cfg, ms_gop_cb cb, void *arg,
                                    ms_summary *sum);
/* The same over bytes already read (media_file_snapshot: a caller that uses them after verifying them). */
CT_MUST_CHECK ct_err ms_verify_data(const media_file *f, const ms_verify_config *cfg, ms_gop_cb cb, void *arg,
                                    ms_summary *sum);
/* camtrust-verify: verifies and prints (human-readable, or JSON lines with `json`); *authentic as the summary.
 * `clip`: the bytes of `path` already read, or NULL to read `path`. */
CT_MUST_CHECK ct_err ms_verify_print(const char *path, const media_file *clip, const ms_verify_config *cfg, bool json,
                                     FILE *out, bool *authentic);

/* The lines of ms_verify_print's human-readable report: the n-th GOP (from 1), and the summary of `path`. */
void ms_print_gop(FILE *out, size_t n, const ms_gop_report *g);
void ms_print_summary(FILE *out, const char *path, const ms_summary *s);

/* The same from files: the root (PEM or DER) and optionally a CRL (PEM or DER); `clip_data` as ms_verify_print's
 * `clip`. */
CT_MUST_CHECK ct_err ms_verify_paths(const char *root_path, const char *crl_path, const char *serial, const char *clip,
                                     const media_file *clip_data, bool json, FILE *out, bool *authentic);

/* A certificate chain (PEM, leaf first; the root may be left out) judged at `at` as the SEIs' chains are: up to
 * cfg's root, and against cfg's CRL when there is one (the leaf's issuer's CRL listing the leaf, or the root's
 * listing the issuing CA: a ceremony's revocation). *trusted, else the reason in `why`. A CRL that is neither (or
 * does not verify) leaves it untrusted: revocation was asked for and could not be checked. Fails only for out of
 * memory. Used for the certificate a live camera presents in TLS. */
CT_MUST_CHECK ct_err ms_chain_trusted(const ms_verify_config *cfg, const uint8_t *pem, size_t len, time_t at,
                                      bool *trusted, char *why, size_t max);

/* ---- the format itself (exposed for tests and fuzzing) ---- */
typedef struct {
    uint8_t reserved;
    bool has_general, has_hashes, has_signature, has_chain, has_crypto, has_model, has_psets;
    uint8_t psets[MS_HASH_LEN]; /* camtrust's parameter-set digest of the GOP (has_psets) */
    uint8_t psets_version;      /* its TLV's version: 1, the last group of each run only (camtrust before) */
    uint32_t counter;
    uint16_t nals;
    int64_t timestamp;
    uint8_t gop_hash[MS_HASH_LEN], linked[MS_HASH_LEN];
    const uint8_t *hashes; /* n_hashes * MS_HASH_LEN bytes */
    size_t n_hashes;
    const uint8_t *sig;    /* DER */
    size_t sig_len;
    size_t doc_len;        /* bytes of the NAL unit (without EPB) that the signature covers */
    const uint8_t *chain_pem;
    size_t chain_len;
    char firmware[MS_TEXT_MAX], serial[MS_TEXT_MAX], manufacturer[MS_TEXT_MAX], model[MS_TEXT_MAX];
} ms_sei;
/* Parses an ONVIF Media Signing SEI NAL unit given without emulation prevention (header included). Pointers
 * point into `rbsp`. CT_ERR_NOT_FOUND if it is another SEI; CT_ERR_BAD_REQUEST (with a detail) if malformed. */
CT_MUST_CHECK ct_err ms_sei_parse(media_codec c, const uint8_t *rbsp, size_t len, ms_sei *out);

#endif
