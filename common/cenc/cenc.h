/* cenc: encrypted video for authorised viewers. ISO/IEC 23001-7 Common Encryption of H.264/H.265 in fragmented
 * MP4 (one fragment per GOP, a fresh content key per segment), the content keys wrapped for each viewer
 * certificate and carried in the file in camtrust's own 'pssh' box, and the reader that decrypts such files.
 *
 * Layout written (what players and `ffmpeg -decryption_key` read):
 *   ftyp  moov{mvhd trak{tkhd mdia{mdhd hdlr minf{vmhd dinf stbl{stsd{encv{avcC|hvcC sinf{frma schm schi{tenc}}}}
 *         stts stsc stsz stco}}}} mvex{trex}}
 *   per GOP: moof{mfhd [pssh: first fragment of a segment] traf{tfhd tfdt trun sbgp sgpd(seig) senc saiz saio}} mdat
 * Recording files (cenc_record_file) also get a 'sidx' after moov indexing every fragment; live CMAF segments
 * (cenc_record_segments) start with 'styp' and a 'sidx' of their own fragments.
 * Sample entries are avc3/hev1 when samples carry parameter sets (camera streams), avc1/hvc1 otherwise. With
 * B-frames, trun carries composition offsets and an edit list starts the presentation at the first picture.
 * tenc carries the first segment's key ID; each traf's 'seig' sample group names the key ID of its segment
 * (key rotation, ISO 23001-7 section 6), so the file plays on from any segment that a recorder stored.
 *
 * Subsamples (ISO 23001-7 section 9.5, NAL-structured video): per VCL NAL unit the 4-byte length, the NAL
 * header and the whole slice header stay clear, at least the first CENC_CLEAR_LEAD bytes of the NAL unit (Apple's
 * SAMPLE-AES choice, where 'cbcs' comes from), then a protected range that is a whole number of 16-byte blocks
 * starting in slice data (the remainder joins the clear part: block-aligned for every scheme and hardware path).
 * The writer reads each slice header's length (H.264 7.3.3, H.265 7.3.6.1; 4K H.265 with wavefronts has headers
 * of 60-70 bytes) from the parameter sets of the avcC/hvcC record and of the samples; a slice whose header it
 * cannot measure (parameter sets missing or of an unsupported kind) keeps CENC_CLEAR_LEAD bytes clear, with a
 * warning once per writer. Non-VCL NAL units (parameter sets, SEI: signing SEIs too) are clear.
 *   'cbcs': AES-128-CBC, pattern 1:9 (one block encrypted, nine skipped), the IV restarting for each subsample,
 *           a constant 16-byte IV per file (tenc/seig), no per-sample IVs.
 *   'cenc': AES-128-CTR over every protected byte, the counter running on across the subsamples of a sample,
 *           an 8-byte per-sample IV (a random base per segment plus the sample's index).
 *
 * camtrust's pssh (SystemID CENC_SYSTEM_ID, box version 1 with the segment's key ID in its KID list), Data:
 *   version 0x01, then TLVs (type 1 byte, length 2 bytes big-endian), in this order:
 *     0x01 key ID (16 bytes)
 *     0x02 recipient (121 bytes), once per viewer: SHA-256 of the viewer's certificate (DER, 32), the ephemeral
 *          P-256 public key (uncompressed X9.62 point, 65), the content key wrapped with RFC 3394 AES key wrap
 *          (24) under KEK = HKDF-SHA256(salt empty, IKM = ECDH(ephemeral, viewer key) x-coordinate,
 *          info = "camtrust-cenc-v1" || key ID || certificate SHA-256 || ephemeral public key, 32 bytes).
 *   Unknown types, repeated key IDs, more than CENC_MAX_RECIPIENTS recipients, trailing bytes: refused.
 * A tampered pssh fails the key unwrap (the wrap is authenticated and bound to key ID and recipient).
 * Common Encryption has no integrity of its own: an altered IV or slice decrypts to garbage. Integrity is the
 * signature's job (issue 5). */
#ifndef CAMTRUST_CENC_H
#define CAMTRUST_CENC_H

#include <time.h>

#include "../../hsm/hsm.h"
#include "../core/core.h"
#include "../media/media.h"

#define CENC_KEY_LEN 16
#define CENC_KID_LEN 16
#define CENC_IV_LEN 16
#define CENC_CLEAR_LEAD 32          /* bytes of each VCL NAL unit (header included) left clear at least, and
                                     * all when its slice header's length is unknown */
#define CENC_MAX_RECIPIENTS 32
#define CENC_MAX_SUBSAMPLES 1024    /* per sample */
#define CENC_MAX_FRAGMENT_SAMPLES 4096
#define CENC_MAX_SAMPLE (64u << 20) /* bytes */
#define CENC_MAX_FRAGMENT (256u << 20)
#define CENC_POINT_LEN 65           /* uncompressed P-256 point */
#define CENC_WRAPPED_LEN 24         /* RFC 3394 of a 16-byte key */
/* ffc3dd56-e680-466e-8df4-9c49c57641d2, generated once for camtrust. */
#define CENC_SYSTEM_ID_BYTES                                                                                      \
    {0xff, 0xc3, 0xdd, 0x56, 0xe6, 0x80, 0x46, 0x6e, 0x8d, 0xf4, 0x9c, 0x49, 0xc5, 0x76, 0x41, 0xd2}
extern const uint8_t cenc_system_id[16];

typedef enum { CENC_CLEAR = 0, CENC_CBCS = 1, CENC_CTR = 2 } cenc_scheme; /* CENC_CTR is scheme 'cenc' */
const char *cenc_scheme_name(cenc_scheme s);
CT_MUST_CHECK ct_err cenc_scheme_parse(const char *name, cenc_scheme *out);

/* ---- subsamples and the sample cipher ---- */
typedef struct {
    uint32_t clear; /* at most 65535 (16 bits in senc) */
    uint32_t enc;
} cenc_subsample;

/* The subsample map of a sample of 4-byte length-prefixed NAL units, without parameter sets: each slice keeps
 * CENC_CLEAR_LEAD bytes clear (the writer measures slice headers: cenc_subsamples_with in cenc_priv.h).
 * CT_ERR_BAD_REQUEST if the lengths do not add up, CT_ERR_TOO_LARGE past `max` entries. */
CT_MUST_CHECK ct_err cenc_subsamples(media_codec c, const uint8_t *sample, size_t len, cenc_subsample *out,
                                     size_t max, size_t *n);

typedef struct cenc_cipher cenc_cipher; /* a content key scheduled for one scheme and direction */
CT_MUST_CHECK ct_err cenc_cipher_new(cenc_scheme s, const uint8_t key[CENC_KEY_LEN], bool decrypt, cenc_cipher **out);
void cenc_cipher_free(cenc_cipher *c); /* wipes */
/* En- or decrypts a sample in place. `iv` is 16 bytes ('cenc': the 8-byte IV then zeros). CT_ERR_BAD_REQUEST
 * unless the subsamples cover `len` exactly. */
CT_MUST_CHECK ct_err cenc_cipher_sample(cenc_cipher *c, const uint8_t iv[CENC_IV_LEN], uint8_t *sample, size_t len,
                                        const cenc_subsample *ss, size_t n);

/* ---- viewers and key wrapping ---- */
typedef struct {
    uint8_t cert_sha256[32];
    uint8_t pub[CENC_POINT_LEN];
    char name[64]; /* subject CN */
} cenc_recipient;

/* Every *.pem of `dir` (PEM: a viewer certificate, then its issuing CA), each one accepted or the whole call
 * refused (naming the file): it must chain to the pinned operations root `root` at `now` and be an end-entity
 * certificate with keyUsage keyAgreement (the viewer profile) and a P-256 key. A planted or expired
 * certificate is an error to fix, not a viewer silently dropped. CT_ERR_NOT_FOUND if there is none.
 * Any *.crl of `dir` (PEM or DER; `camtrust-ca crl ops`) must be a CRL of the operations issuing CA that the
 * viewer chains carry, its signature verified (pki_crl_check), else CT_ERR_INTEGRITY naming the file. A viewer it
 * revokes is left out with a one-line warning (file, serial), and a last warning counts them: revocation is how an
 * owner removes a viewer, and the camera keeps recording for the others; CT_ERR_NOT_FOUND if none is left. A CRL
 * past its nextUpdate still applies (its revocations stay true), with a warning. The operations root's CRL
 * (`root` signs it) revokes the viewers of the issuing CAs it lists. `seen_path` (NULL: none) is the camera's
 * memory of the newest CRL (thisUpdate) it took per issuer, kept up to date: a CRL older than that, none of the root
 * once one was taken, or none of a kept viewer's issuing CA once any was, is CT_ERR_INTEGRITY (putting an old CRL
 * back, or deleting it, must not bring a revoked viewer back). */
CT_MUST_CHECK ct_err cenc_recipients_load(const char *dir, const uint8_t *root, size_t root_len, time_t now,
                                          const char *seen_path, cenc_recipient *out, size_t max, size_t *n);

typedef struct {
    uint8_t cert_sha256[32];
    uint8_t eph_pub[CENC_POINT_LEN];
    uint8_t wrapped[CENC_WRAPPED_LEN];
} cenc_wrapped_key;

typedef struct {
    uint8_t kid[CENC_KID_LEN];
    size_t n;
    cenc_wrapped_key r[CENC_MAX_RECIPIENTS];
} cenc_pssh;

/* Wraps `key` for one recipient with a fresh ephemeral key. */
CT_MUST_CHECK ct_err cenc_wrap(const cenc_recipient *r, const uint8_t kid[CENC_KID_LEN],
                               const uint8_t key[CENC_KEY_LEN], cenc_wrapped_key *out);
/* Unwraps with the viewer's private key: `ecc_key` is a wolfSSL `ecc_key *` (software, or a token key from
 * hsm_key_wolf_ecc: the ECDH then happens inside the token). CT_ERR_INTEGRITY if it does not unwrap. */
CT_MUST_CHECK ct_err cenc_unwrap(void *ecc_key, const uint8_t kid[CENC_KID_LEN], const cenc_wrapped_key *w,
                                 uint8_t key[CENC_KEY_LEN]);
/* The same with a token key. */
CT_MUST_CHECK ct_err cenc_unwrap_hsm(const hsm_key *k, const uint8_t kid[CENC_KID_LEN], const cenc_wrapped_key *w,
                                     uint8_t key[CENC_KEY_LEN]);

/* Appends the whole pssh box. */
CT_MUST_CHECK ct_err cenc_pssh_encode(const cenc_pssh *p, ct_buf *out);
/* Parses a whole pssh box (outside input). CT_ERR_NOT_FOUND if it is another DRM system's. */
CT_MUST_CHECK ct_err cenc_pssh_parse(const uint8_t *box, size_t len, cenc_pssh *out);

/* ---- the fragmented MP4 writer (library for the live pipeline: output goes to a callback) ---- */
typedef ct_err (*cenc_out_fn)(void *arg, const uint8_t *p, size_t n);

typedef struct {
    media_codec codec;
    uint32_t timescale;
    uint16_t width, height;  /* 0 if unknown: decoders take them from the SPS */
    const uint8_t *config;   /* the avcC / hvcC record (box content) */
    size_t config_len;
    bool inband_params;      /* samples carry parameter sets too (camera streams): sample entry avc3 / hev1 */
    uint32_t presentation_delay; /* the first sample's composition offset (B-frames): an edit list starts the
                                  * presentation there, so that it begins at time 0 as in the source */
} cenc_track;

/* Signing composed with encryption (issue 5): the writer hands each NAL unit of a sample as it will be stored
 * (slices encrypted) to `nal` (t: seconds from the first sample), then inserts every NAL unit `take` has ready
 * (signature SEIs, clear) before the sample's first slice; at the end `finish`, then `take` with wait for the
 * last ones, which go after the last picture (live, cenc_writer_gop_end does the same at every GOP end: `finish`
 * then ends the GOP, and the next IRAP starts the next). Signatures thus cover the stored bytes: anyone holding the device
 * root verifies an encrypted recording without any content key, and a viewer verifies before decrypting. */
typedef ct_err (*cenc_nal_fn)(void *arg, media_codec c, const uint8_t *nal, size_t len, double t);
typedef struct {
    cenc_nal_fn nal;
    ct_err (*take)(void *arg, bool wait, ct_buf *out, bool *ready);
    ct_err (*finish)(void *arg);
    void *arg;
    ct_err (*segment)(void *arg); /* may be NULL; each segment after the first starts (live: the certificate SEI
                                   * again, taken into the segment's first sample) */
} cenc_sign_hooks;

/* A completed segment (CMAF segment; with encryption, one content key): what the output callback received since
 * the previous one. Times in track timescale units. */
typedef struct {
    uint64_t index, first_fragment, fragments;
    uint64_t start, duration; /* decoding time */
} cenc_segment;

typedef struct {
    cenc_scheme scheme;                /* CENC_CLEAR writes a plain fragmented MP4 */
    uint32_t segment_ms;               /* a new segment (and key) at the first sync sample after this; 0: one */
    ct_err (*segment_done)(void *arg, const cenc_segment *s); /* may be NULL: live segmenting (cenc_segment_dir) */
    void *segment_arg;
    const cenc_recipient *recipients;  /* at least one unless CENC_CLEAR */
    size_t n_recipients;
    const cenc_sign_hooks *sign;       /* NULL: not signed */
} cenc_options;

typedef struct {
    uint64_t samples, fragments, segments;
    uint64_t media_bytes;     /* sample data in */
    uint64_t protected_bytes; /* of it inside protected ranges ('cbcs' encrypts a tenth of these) */
    uint64_t out_bytes;       /* everything written */
    uint64_t init_bytes;      /* of it the init segment (ftyp, moov) */
} cenc_stats;

typedef struct cenc_writer cenc_writer;
/* Writes the init segment (ftyp, moov) at once. */
CT_MUST_CHECK ct_err cenc_writer_new(const cenc_track *t, const cenc_options *o, cenc_out_fn out, void *arg,
                                     cenc_writer **w);
/* One sample, in decoding order. A sync sample starts a fragment. */
typedef struct {
    const uint8_t *data; /* an access unit of 4-byte length-prefixed NAL units */
    size_t len;
    uint32_t duration;   /* to the next sample's decoding time */
    int32_t cts;         /* composition offset: presentation minus decoding time (B-frames), 0 without */
    bool sync;
} cenc_sample;
CT_MUST_CHECK ct_err cenc_writer_sample(cenc_writer *w, const cenc_sample *s);
/* Live input: the GOP just given is complete. Writes its fragment now rather than at the next sync sample, and
 * when the segment has reached segment_ms, reports it complete (segment_done) at once: a live segment goes out
 * as soon as its last picture is in, not one GOP later. With signing, the GOP's signatures go right after its last
 * picture (the hooks' `finish` ends the GOP, as at the end of a stream), so each segment carries its own and a
 * viewer verifies it on arrival. The next sample must be a sync sample. */
CT_MUST_CHECK ct_err cenc_writer_gop_end(cenc_writer *w);
/* The viewers from the next sync sample on: a new segment (and key) starts there, whatever segment_ms (an owner
 * adds or removes a viewer while the camera runs; the segment under way has its key wrapped for the old list). */
CT_MUST_CHECK ct_err cenc_writer_set_recipients(cenc_writer *w, const cenc_recipient *r, size_t n);
/* The totals so far. */
void cenc_writer_stats(const cenc_writer *w, cenc_stats *st);
/* Writes the last fragment; `st` (may be NULL) gets the totals. */
CT_MUST_CHECK ct_err cenc_writer_finish(cenc_writer *w, cenc_stats *st);
void cenc_writer_free(cenc_writer *w); /* wipes the content key */
/* A 'sidx' indexing every fragment written (after finish), to go between the init segment and the fragments
 * of a recording file: players seek with it, and ffmpeg 5.1 needs it to decrypt a multi-fragment file (without
 * one it parses every moof first and then applies the last fragment's senc to all samples; fixed in 6.1). */
CT_MUST_CHECK ct_err cenc_writer_index(const cenc_writer *w, ct_buf *out);
/* The same for the fragments from `first` on (a CMAF segment's own sidx: cenc_segment.first_fragment). */
CT_MUST_CHECK ct_err cenc_writer_index_from(const cenc_writer *w, uint64_t first, ct_buf *out);

/* The avcC / hvcC record for parameter set NAL units (no start codes; SPS, PPS and for H.265 VPS), and the
 * picture size from the SPS. */
CT_MUST_CHECK ct_err cenc_config_record(media_codec c, const uint8_t *const *nals, const size_t *lens, size_t n,
                                        ct_buf *out);

/* ---- reading what the writer wrote (outside input: every length bounded, counts must add up) ---- */
/* Answers the content key of `kid`; `pssh` is camtrust's pssh for that key ID, or NULL if the file has none. */
typedef ct_err (*cenc_key_fn)(void *arg, const uint8_t kid[CENC_KID_LEN], const cenc_pssh *pssh,
                              uint8_t key[CENC_KEY_LEN]);
/* Decrypts a whole file into a clear fragmented MP4 written to `out`. */
CT_MUST_CHECK ct_err cenc_decrypt(const uint8_t *in, size_t len, cenc_key_fn key, void *key_arg, cenc_out_fn out,
                                  void *out_arg, cenc_stats *st);
/* Live viewing (segments decrypted one by one into one clear stream with a continuous timeline): a clear writer
 * for the track of `init` (an init segment), writing to `out`; then per segment, `in` being the init segment
 * followed by the segment, its samples decrypted into `w` and written out at once. Nothing of a segment whose
 * key does not come is written (the key is asked for before its first sample). */
CT_MUST_CHECK ct_err cenc_decrypt_begin(const uint8_t *init, size_t len, cenc_out_fn out, void *out_arg, cenc_writer **w);
CT_MUST_CHECK ct_err cenc_decrypt_append(const uint8_t *in, size_t len, cenc_key_fn key, void *key_arg, cenc_writer *w);
/* Calls `cb` for every camtrust pssh of the file, in order; `scheme` (may be NULL) gets the file's scheme. */
typedef ct_err (*cenc_pssh_fn)(void *arg, const cenc_pssh *p);
CT_MUST_CHECK ct_err cenc_list(const uint8_t *in, size_t len, cenc_scheme *scheme, cenc_pssh_fn cb, void *arg);

/* Every NAL unit of the video samples as stored (slices still encrypted), with its sample's decoding time in
 * seconds: what a custodian's signature check reads, needing no key. First the sample entry's parameter sets
 * (avcC/hvcC), time -1. */
CT_MUST_CHECK ct_err cenc_walk(const uint8_t *in, size_t len, cenc_nal_fn cb, void *arg);

/* Which parameter set a NAL unit is, as decoders index them: its kind and id as one slot below CENC_PARAM_SLOTS
 * (H.264: SPS 0-31, subset SPS 32-63, SPS extension 64-95, PPS 96-351; H.265: VPS from 0, SPS from 32, PPS from 96),
 * or -1 for another NAL unit or one whose id cannot be read. */
#define CENC_PARAM_SLOTS 352
int cenc_param_slot(media_codec c, const uint8_t *nal, size_t len);

/* ---- files ---- */
/* An output file that appears whole or not at all: written to PATH.tmp.PID beside it, created with `mode` (less
 * the umask), synced and renamed over PATH by cenc_out_close once complete (then the folder synced). Opening one
 * first removes the temporaries of PATH that killed writers left (ct_stale_remove), and this process's own from
 * before a crash (pids repeat after a reboot); one writer per PATH at a time in a process. Also the signer's
 * (ms_sign_file). */
typedef struct {
    FILE *f;
    int fd;
    char tmp[1100];
    bool unnamed; /* no name until cenc_out_name (cenc_out_open_unnamed) */
} cenc_out_file;
CT_MUST_CHECK ct_err cenc_out_open(const char *path, unsigned mode, cenc_out_file *o);
/* The same, the file under no name until cenc_out_name (where /proc and the file system allow): a writer killed
 * midway leaves nothing behind. The clear copy of an encrypted recording (cenc_decrypt_file). */
CT_MUST_CHECK ct_err cenc_out_open_unnamed(const char *path, unsigned mode, cenc_out_file *o);
/* With rc CT_OK, an unnamed file whole: links it to its temporary name, for cenc_out_close. Returns rc or its error. */
CT_MUST_CHECK ct_err cenc_out_name(cenc_out_file *o, ct_err rc);
CT_MUST_CHECK ct_err cenc_out_write(void *arg, const uint8_t *p, size_t n); /* a cenc_out_fn */
/* With rc CT_OK: sync, close, rename to `path`. Otherwise, or when `path` is NULL (a scratch file): close and
 * remove. Returns rc or the first error of its own. */
CT_MUST_CHECK ct_err cenc_out_close(cenc_out_file *o, const char *path, ct_err rc);

/* Records IN (H.264/H.265, Annex B paced at `fps`, or MP4: its video track) into an encrypted fragmented MP4
 * at OUT. OUT appears complete or not at all (temporary file, fsync, rename; removed on any error). */
CT_MUST_CHECK ct_err cenc_record_file(const char *in, const char *out, const cenc_options *o, unsigned fps,
                                      cenc_stats *st);
/* Records IN the same way as live CMAF segments into the folder DIR, each file written whole (temporary file,
 * rename) as soon as it is complete, so a recorder or HTTP server may hand out whatever it finds there:
 * init.mp4 (ftyp, moov), seg-NNNNNN.m4s per segment (styp, its sidx, its fragments; with encryption its first
 * moof carries the pssh of the segment's key), and index.m3u8, an HLS playlist (RFC 8216) naming them, with a
 * key line per encrypted segment and EXT-X-ENDLIST once the input ends. init.mp4 followed by any segment is a
 * playable file; init.mp4 followed by all of them is the whole recording. An error stops the recording: the
 * segments already written stay (each whole, as a recorder would already have them), the playlist without
 * EXT-X-ENDLIST. */
CT_MUST_CHECK ct_err cenc_record_segments(const char *in, const char *dir, const cenc_options *o, unsigned fps,
                                          cenc_stats *st);
/* Live (issue 14): an encoder's Annex B output as it comes (a pipe: no look-ahead over the whole stream), written
 * as the files of cenc_record_segments in `dir`, each segment as soon as its last GOP is complete (with signing,
 * each GOP's signature right after it: cenc_writer_gop_end). The playlist
 * is a sliding window of the last `window` segments (EXT-X-MEDIA-SEQUENCE, no PLAYLIST-TYPE); a segment's file is
 * removed one window after it left the playlist. Pictures before the first IRAP are dropped; composition offsets
 * (B-frames) come from each GOP's picture order counts. With `record_dir`, each run keeps every segment in its own
 * folder record_dir/YYYYMMDDTHHMMSSZ-PID (init.mp4, seg-NNNNNN.m4s; each file synced and renamed whole, so a
 * power loss leaves only whole segments), the oldest segments removed while the recording is over
 * record_max_bytes or they are older than record_max_age_s (0: no limit; never the newest segment). */
typedef struct {
    const char *dir;
    unsigned window;             /* 1 .. 1000 */
    unsigned fps;                /* Annex B carries no timing: 0 is 30 */
    const char *record_dir;      /* NULL: no recording */
    uint64_t record_max_bytes;
    uint32_t record_max_age_s;
} cenc_live_config;
typedef struct cenc_live cenc_live;
/* `o->segment_ms` must be set; o->segment_done is the live writer's own. */
CT_MUST_CHECK ct_err cenc_live_new(const cenc_live_config *c, const cenc_options *o, cenc_live **out);
/* Input bytes as they arrive, any split. At most one access unit (CENC_MAX_SAMPLE) is held incomplete. */
CT_MUST_CHECK ct_err cenc_live_push(cenc_live *l, const uint8_t *p, size_t n);
/* The viewers from the GOP not yet written on, in a new segment (`r` is copied). */
CT_MUST_CHECK ct_err cenc_live_set_recipients(cenc_live *l, const cenc_recipient *r, size_t n);
/* End of input: the last GOP and its signatures, the playlist closed with EXT-X-ENDLIST. */
CT_MUST_CHECK ct_err cenc_live_finish(cenc_live *l, cenc_stats *st);
void cenc_live_stats(const cenc_live *l, cenc_stats *st);
void cenc_live_free(cenc_live *l);

/* Decrypts IN (the file's bytes, as read once by the caller: a snapshot, or a guarded mapping, which fails if it
 * shrank) into a clear fragmented MP4 at OUT, 0600 from creation, complete or absent: an unnamed file in OUT's
 * folder named and renamed into place once complete (a killed decrypt leaves nothing), or where the file system
 * has no unnamed files or /proc is not mounted a temporary file beside OUT renamed over it; removed on failure
 * (cenc_out_open_unnamed). */
CT_MUST_CHECK ct_err cenc_decrypt_file(const media_file *in, const char *out, cenc_key_fn key, void *key_arg,
                                       cenc_stats *st);

#endif
