/* camtrust-view: an authorised viewer of encrypted video. A viewer is a folder: view.conf, its own token with
 * one P-256 key that never leaves it (ECDH happens inside), its CSR and, once the CA certified it, viewer.pem.
 * Each command is one function so that tests call them. */
#ifndef CAMTRUST_VIEW_H
#define CAMTRUST_VIEW_H

#include <stdio.h>

#include "../common/cenc/cenc.h"
#include "../common/core/core.h"

#define VIEW_PIN_ENV "CAMTRUST_VIEWER_PIN"

/* Makes the folder and its token, the key inside it, and DIR/viewer.csr (CN = name) for camtrust-ca viewer add. */
CT_MUST_CHECK ct_err view_init(const char *dir, const char *name);
/* Installs the certificate file the CA wrote (viewer certificate, issuing CA) after checking it certifies this
 * token's key with the viewer profile and this viewer's name. */
CT_MUST_CHECK ct_err view_install(const char *dir, const char *cert_path);
/* Decrypts IN into a clear fragmented MP4 at OUT (complete or absent; created 0600). CT_ERR_FORBIDDEN if this
 * viewer is not among the recipients of a key of the file. With `root` (a device root, PEM or DER) the recording's
 * signatures are checked first (view_verify, with `crl` if not NULL; report to `report`): CT_ERR_INTEGRITY and no
 * output unless authentic; IN is then read once into memory (at most 4 GiB) and both steps use those bytes. */
CT_MUST_CHECK ct_err view_decrypt(const char *dir, const char *in, const char *out, const char *root, const char *crl,
                                  FILE *report, cenc_stats *st);
/* The custodian's check, needing no key and no viewer folder: the ONVIF Media Signing signatures of a signed and
 * encrypted recording, over its bytes as stored, against the device root: camtrust-verify's check and report
 * (ms_verify_paths: one line per GOP, camera, chain, result) to `out`; *authentic when the whole clip is. */
/* `crl` (may be NULL): the device issuing CA's CRL, so that a camera revoked before the recording is not trusted;
 * `serial` (may be NULL): the camera the recording must come from (GOPs another camera signed are inserted). */
CT_MUST_CHECK ct_err view_verify(const char *root, const char *crl, const char *serial, const char *in, FILE *out,
                                 bool *authentic);
/* Lists the scheme, every key ID and its recipients (certificate SHA-256, this viewer marked) to `out`; with
 * `print_keys` also this viewer's content key of each key ID in hex, for players that take a raw key. */
CT_MUST_CHECK ct_err view_keys(const char *dir, const char *in, bool print_keys, FILE *out);

/* Live (issue 14): watches https://SERIAL.DOMAIN:PORT/PATH/ (the camera's /live/). TLS 1.3 only to a certificate
 * chaining to the device root `root` that names that host (and that serial, when its subject has a
 * serialNumber): a look-alike is refused (CT_ERR_INTEGRITY) before anything is read, and so is a camera the CRL
 * of o->crl revokes (or cannot speak for). The playlist is polled from
 * its oldest segment on (each carries the camera's certificate SEI); each segment is verified with the
 * streaming ONVIF verifier (camtrust-verify's GOP lines to `report`), decrypted in the viewer's token only once
 * all its GOPs verified, and written to `out` as one fragmented MP4 with a continuous timeline; a segment that
 * does not verify, is signed by another camera than the one serving it, or whose key is not for this viewer is
 * reported ("segment N: NOT SHOWN: why") and skipped.
 * Returns when the playlist ends (EXT-X-ENDLIST) or on SIGINT/SIGTERM, with the summary; *all_shown when every
 * segment was shown and the video is signed by the camera that served it. */
typedef struct {
    const char *connect; /* "ADDR:PORT" to connect to instead of resolving the host (tests, --connect) */
    long poll_ms;        /* between playlist polls */
    const char *crl;     /* NULL, or a CRL file (PEM or DER): the device root's (a revoked issuing CA) or an issuing
                          * CA's; the camera's TLS certificate is refused by it before any request, and each
                          * segment's signer judged by it as camtrust-verify --crl does */
    long max_age_s;      /* live means signed at most this long before (or after) the viewer's clock verifies it:
                          * a GOP older, dated further ahead, or signed without a clock, is not shown (0: no bound) */
} view_live_opts;
CT_MUST_CHECK ct_err view_live(const char *dir, const char *root, const char *url, const view_live_opts *o, FILE *out,
                               FILE *report, bool *all_shown);

/* The parsers of what the network hands the viewer (exposed for tests and fuzzing). */
#define VIEW_NAME_MAX 32
#define VIEW_PLAYLIST_MAX 1000
typedef struct {
    char host[254], serial[64], path[256];
    unsigned port;
} view_url;
CT_MUST_CHECK ct_err view_url_parse(const char *url, view_url *u);
/* An HLS media playlist as the camera writes it: EXT-X-MEDIA-SEQUENCE, EXT-X-MAP, plain segment file names
 * (no folders), EXT-X-KEY (the line's digest only), EXT-X-ENDLIST; other tags ignored. At most VIEW_PLAYLIST_MAX
 * segments and 1 MiB. */
typedef struct {
    uint64_t first_seq;
    size_t n;
    char names[VIEW_PLAYLIST_MAX][VIEW_NAME_MAX];
    uint8_t keys[VIEW_PLAYLIST_MAX][32]; /* the EXT-X-KEY line in effect for each segment: its SHA-256 (zeros: none) */
    char map[VIEW_NAME_MAX];
    bool ended;
} view_playlist;
CT_MUST_CHECK ct_err view_playlist_parse(const char *text, size_t len, view_playlist *p);
/* An HTTP/1.x answer read to the connection's end: status, and for a 200 a body of exactly Content-Length bytes
 * (at most `max_body`) starting at *body_off. The header is at most 8 KiB. */
CT_MUST_CHECK ct_err view_http_parse(const uint8_t *resp, size_t len, size_t max_body, int *status, size_t *body_off);

#endif
