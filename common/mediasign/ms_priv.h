/* mediasign internals: GOP hashing and the SEI layout (ms_format.c) shared by the signer and the verifier,
 * and certificate chains, signatures and CRLs for the verifier (ms_cert.c). */
#ifndef CAMTRUST_MS_PRIV_H
#define CAMTRUST_MS_PRIV_H

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "mediasign.h"

extern const uint8_t ms_uuid[MEDIA_UUID_LEN];

enum { MS_TAG_GENERAL = 1, MS_TAG_HASHES = 2, MS_TAG_SIGNATURE = 3, MS_TAG_CRYPTO = 4, MS_TAG_VENDOR = 5,
       MS_TAG_CERTS = 6, MS_TAG_ARBITRARY = 7 };
#define MS_RESERVED_ONCE 0x80
#define MS_RESERVED_EPB 0x40
#define MS_MODEL_PREFIX "camtrust:model="

/* What a NAL unit is to the format. */
typedef enum {
    MS_ROLE_IGNORED,   /* AUD, other SEIs, end of stream, filler */
    MS_ROLE_PARAM,     /* SPS, PPS, VPS: not hashed by the format, bound by camtrust's ms_psets */
    MS_ROLE_GOP_START, /* first slice of an IRAP picture */
    MS_ROLE_PICTURE,   /* any other hashed slice */
    MS_ROLE_UNHASHED,  /* a slice the format does not hash (H.265 RASL/RADL/TSA/STSA, H.264 partitions and 19-21) */
    MS_ROLE_SEI,       /* an SEI NAL unit: may be ours */
    MS_ROLE_INVALID,
} ms_role;
ms_role ms_nal_role(media_codec c, const uint8_t *nal, size_t len, media_nal_info *info);

/* The parameter sets a GOP's pictures are decoded with (the format hashes pictures only, and a rewritten SPS
 * changes what a viewer sees). A run is the parameter sets between two pictures, R = H(..H(H(0 || H(P1)) ||
 * H(P2))..) in stream order; within it a VPS or SPS after a PPS starts another group. A decoder keeps each set by
 * kind and id until another of that id replaces it, so R covers every group of the run (a PPS sent before its SPS,
 * groups of other ids), but for a group the same as the one before it (the same sets repeated, or an MP4 sample
 * entry's followed by the same ones in band, count once: the decoder ends up with the same sets). A run of one group
 * or of copies of one has the digest camtrust signed before (its last group, which left a PPS sent before its SPS, or
 * a group of other ids, covered by no signature: such GOPs never verified). A run replaces the set in effect. A GOP's
 * digest is the set in effect at its I-frame, chained G = H(G || R) with each run between its pictures. Signer and
 * verifier run this same code (ms_gop_add closes runs). */
typedef struct {
    uint8_t tlv[4];              /* the SEI's TLV header (ms_gop_init), so that tlv..gop[0] is the whole TLV */
    uint8_t gop[2][MS_HASH_LEN]; /* the GOP's digest, then the set in effect: chained in place */
    uint8_t prev[MS_HASH_LEN];   /* the own digest of the group before the current one in the run (zeros: none) */
    uint8_t run[3][MS_HASH_LEN]; /* R so far, the unit being added, the current group's own digest (H(unit || it)) */
    uint8_t start[MS_HASH_LEN];  /* R before the current group */
    bool open, after_pps;        /* a run since the last picture; its last unit a PPS */
} ms_psets;
/* A parameter set NAL unit of type `type` (nal_unit_type): added to the run. */
CT_MUST_CHECK ct_err ms_psets_param(ms_psets *p, const uint8_t *nal, size_t len, unsigned type);
/* A picture NAL unit (`start`: the first slice of a GOP's I-frame): closes the run. */
CT_MUST_CHECK ct_err ms_psets_picture(ms_psets *p, bool start);

/* One GOP's hash list. */
typedef struct {
    uint8_t anchor[MS_HASH_LEN];
    bool started;
    size_t n;
    uint8_t (*hashes)[MS_HASH_LEN]; /* MS_MAX_GOP_NALS entries */
    ms_psets ps;                    /* across GOPs: ms_gop_reset keeps it */
} ms_gop;
CT_MUST_CHECK ct_err ms_gop_init(ms_gop *g);
void ms_gop_free(ms_gop *g);
void ms_gop_reset(ms_gop *g);
/* Hashes a picture NAL unit into the list: as the anchor when `start`, else linked to it (and closes the parameter
 * set run: g->ps.gop[0] is the GOP's digest until the next GOP's first ms_gop_add).
 * CT_ERR_TOO_LARGE past MS_MAX_GOP_NALS; CT_ERR_ARG if no GOP was started. */
CT_MUST_CHECK ct_err ms_gop_add(ms_gop *g, const uint8_t *nal, size_t len, bool start);
CT_MUST_CHECK ct_err ms_gop_hash(const uint8_t (*hashes)[MS_HASH_LEN], size_t n, uint8_t out[MS_HASH_LEN]);

/* The SEI of a GOP, or (gop NULL) the certificate SEI, up to the signature TLV: `nal` receives the NAL unit
 * without emulation prevention; *doc_len is what the signature covers. */
typedef struct {
    const ms_gop *gop;
    int64_t timestamp;
    uint32_t counter;
    const uint8_t *linked; /* NULL: zeros (first GOP) */
    const uint8_t *psets_tlv; /* the GOP's ms_psets digest as a TLV: its `tlv` */
} ms_gop_doc;
CT_MUST_CHECK ct_err ms_sei_begin(media_codec c, bool suffix, const ms_gop_doc *d, const ms_signer_config *cfg,
                                  ct_buf *nal);
/* Appends the signature TLV and the stop byte, then returns the NAL unit with emulation prevention in `out`. */
CT_MUST_CHECK ct_err ms_sei_end(ct_buf *nal, const uint8_t *sig, size_t sig_len, ct_buf *out);

/* ---- chains (ms_cert.c) ---- */
typedef struct {
    uint8_t id[MS_HASH_LEN]; /* SHA-256 of the chain PEM as carried */
    bool set;
    bool ok;                 /* signatures up to the root verify and the validity periods overlap */
    char why[200];
    time_t not_before, not_after; /* of the whole chain, root included */
    pki_cert_info leaf;
    ecc_key key;
    bool key_ok;
    bool revoked;
    time_t revoked_at;
    bool crl_applied;        /* the CRL given was the leaf's issuer's or the root's, and it verified */
    char revocation[256];
} ms_chain;
/* Evaluates a PEM chain against the root (and the CRL). Fails only for out of memory; findings in `c`. */
CT_MUST_CHECK ct_err ms_chain_eval(const ms_verify_config *cfg, const uint8_t *pem, size_t len, ms_chain *c);
void ms_chain_clear(ms_chain *c);
/* MS_AUTHENTIC if the chain is trusted at `t`, else MS_UNTRUSTED with the reason in `why`. */
ms_status ms_chain_at(const ms_chain *c, time_t t, char *why, size_t max);
bool ms_chain_verify(ms_chain *c, const uint8_t digest[MS_HASH_LEN], const uint8_t *sig, size_t sig_len);

#endif
