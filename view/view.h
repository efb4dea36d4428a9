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
/* Decrypts IN into a clear fragmented MP4 at OUT (complete or absent). CT_ERR_FORBIDDEN if this viewer is not
 * among the recipients of a key of the file. With `root` (a device root, PEM or DER) the recording's signatures
 * are checked first (view_verify, with `crl` if not NULL; report to `report`): CT_ERR_INTEGRITY and no output
 * unless authentic. */
CT_MUST_CHECK ct_err view_decrypt(const char *dir, const char *in, const char *out, const char *root, const char *crl,
                                  FILE *report, cenc_stats *st);
/* The custodian's check, needing no key and no viewer folder: the ONVIF Media Signing signatures of a signed and
 * encrypted recording, over its bytes as stored, against the device root: camtrust-verify's check and report
 * (ms_verify_paths: one line per GOP, camera, chain, result) to `out`; *authentic when the whole clip is. */
/* `crl` (may be NULL): the device issuing CA's CRL, so that a camera revoked before the recording is not trusted. */
CT_MUST_CHECK ct_err view_verify(const char *root, const char *crl, const char *in, FILE *out, bool *authentic);
/* Lists the scheme, every key ID and its recipients (certificate SHA-256, this viewer marked) to `out`; with
 * `print_keys` also this viewer's content key of each key ID in hex, for players that take a raw key. */
CT_MUST_CHECK ct_err view_keys(const char *dir, const char *in, bool print_keys, FILE *out);

#endif
