/* camtrust-view internals shared by its source files. */
#ifndef CAMTRUST_VIEW_PRIV_H
#define CAMTRUST_VIEW_PRIV_H

#include "../hsm/hsm.h"
#include "view.h"

#define VIEW_CONFIG_FILE "view.conf"
#define VIEW_CSR_FILE "viewer.csr"
#define VIEW_CERT_FILE "viewer.pem"
#define VIEW_KEY_LABEL "viewer"
#define VIEW_PATH_MAX 1024
#define CERT_FILE_MAX (64 * 1024)
/* decrypt --root holds the recording in memory (verified and decrypted from one read): at most this much. */
#define VIEW_VERIFIED_MAX ((size_t)4 << 30)

#define VIEW_SETTING_ROWS(name)                                                                                    \
    HSM_SETTING_ROWS("camtrust-viewer", VIEW_PIN_ENV),                                                             \
    {"name", name, "viewer name: the CN of its certificate, as registered with camtrust-ca viewer add"}

typedef struct {
    char dir[VIEW_PATH_MAX];
    char name[64];
    hsm_settings hs;
    hsm *h;
    hsm_key *key;
    uint8_t cert_sha256[32]; /* of the installed certificate; zero before install */
    bool installed;
} viewer;

/* The settings; with `token` also the token and the key; the installed certificate's hash if there is one. */
CT_MUST_CHECK ct_err viewer_open(const char *dir, bool token, viewer *v);
void viewer_close(viewer *v);
/* A cenc_key_fn: this viewer's content key of `kid`, unwrapped inside the token; CT_ERR_FORBIDDEN when it is not
 * a recipient. */
CT_MUST_CHECK ct_err viewer_key(void *arg, const uint8_t kid[CENC_KID_LEN], const cenc_pssh *p, uint8_t key[CENC_KEY_LEN]);

#endif
