/* Viewers and content keys: which viewer certificates a camera accepts, wrapping a content key for each
 * (ephemeral ECDH P-256, HKDF-SHA256, AES key wrap), unwrapping with the viewer's key (in its token), and
 * camtrust's pssh box that carries the wrapped keys. */
#define _POSIX_C_SOURCE 200809L
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "../pki/pki.h"
#include "cenc.h"

#define KDF_LABEL "camtrust-cenc-v1"
#define KEK_LEN 32
#define CERT_FILE_MAX (64 * 1024)
#define CRL_FILE_MAX (8 * 1024 * 1024)
#define MAX_CRL_FILES 8
#define MAX_CRL_ISSUERS 64
#define SEEN_MSG "%s: CRL missing or older than one taken before"
#define NAME_MAX_LEN 255
#define PSSH_VERSION 1
#define TLV_KID 0x01
#define TLV_RECIPIENT 0x02
#define RECIPIENT_LEN (32 + CENC_POINT_LEN + CENC_WRAPPED_LEN)

/* ---- the viewer certificates a camera accepts ---- */

/* Copied first: ct_fail writes the buffer that ct_err_detail points to. */
static ct_err fail_ctx(ct_err e, const char *what)
{
    char detail[256];
    if (ct_strlcpy(detail, sizeof detail, *ct_err_detail() ? ct_err_detail() : ct_err_message(e)) != CT_OK)
        detail[0] = '\0';
    return ct_fail(e, "%s: %s", what, detail);
}

/* A viewer certificate file's two certificates (DER), kept for the CRL check, the issuing CA's key (its SPKI's
 * SHA-256: what signs its CRLs), and its file name. */
typedef struct {
    ct_buf leaf, issuing;
    uint8_t issuing_key[32];
    const char *file;
    char serial_hex[PKI_MAX_SERIAL_BYTES * 2 + 1];
} viewer_chain;

/* The camera's memory of the CRLs it took (its own file, the raw records): per issuer (its key's SPKI SHA-256; not
 * its certificate's bytes: an ECDSA signature (r, n - s) is as valid, so a viewer's file could name a known issuing
 * CA anew and have an older CRL taken), the newest thisUpdate.
 * A CRL older than that, or none of the root where one was taken, would bring back what the newer one revoked. The
 * date alone (not pki_crl_supersedes, nor the cRLNumber: the agent has no room for reading them). */
typedef struct {
    struct {
        uint8_t issuer[32];
        uint64_t newest;
    } r[MAX_CRL_ISSUERS];
    uint8_t root_key[32];
    size_t n, n_old; /* records; of them, those read from the file */
    bool changed, root_crl; /* root_crl: the folder has a CRL of the root */
} crl_memory;

static size_t seen_find(const crl_memory *m, size_t n, const uint8_t *issuer)
{
    size_t k = 0;
    while (k < n && memcmp(m->r[k].issuer, issuer, 32) != 0) k++;
    return k;
}

static void chain_free(viewer_chain *v)
{
    ct_buf_free(&v->leaf);
    ct_buf_free(&v->issuing);
}

/* A viewer certificate file (PEM: the viewer certificate, then its issuing CA) that the camera accepts: it chains
 * to the pinned operations root `root` at `now`, is an end-entity certificate with keyUsage keyAgreement (the
 * viewer profile) and a P-256 key; CT_ERR_INTEGRITY with a reason otherwise. The certificates stay in `v` for the
 * CRL check (the caller frees them). */
static ct_err recipient_parse(const uint8_t *pem, size_t len, const uint8_t *root, size_t root_len, time_t now,
                              cenc_recipient *out, viewer_chain *v)
{
    ct_err rc = CT_OK;
    pki_cert_info li, ii;
    ecc_key pub;
    bool pub_ok = false;
    const uint8_t *spki;
    size_t spki_len;
    word32 idx = 0, point_len = CENC_POINT_LEN;
    memset(out, 0, sizeof *out);
    CT_GUARD(ct_buf_alloc(&v->leaf, PKI_MAX_CERT_DER));
    CT_GUARD(ct_buf_alloc(&v->issuing, PKI_MAX_CERT_DER));
    rc = ct_pem_decode(pem, len, "CERTIFICATE", 0, &v->leaf);
    if (rc == CT_OK) rc = ct_pem_decode(pem, len, "CERTIFICATE", 1, &v->issuing);
    CT_ENSURE_MSG(rc == CT_OK, CT_ERR_INTEGRITY, "not a viewer certificate followed by its issuing CA");
    CT_GUARD(pki_cert_parse_info(v->leaf.data, v->leaf.len, &li));
    CT_GUARD(pki_cert_parse_info(v->issuing.data, v->issuing.len, &ii));
    /* The pinned operations root certifies the issuing CA, which certifies the viewer. */
    rc = pki_cert_verify_signed_by(v->issuing.data, v->issuing.len, root, root_len, now);
    if (rc == CT_OK) rc = pki_cert_verify_signed_by(v->leaf.data, v->leaf.len, v->issuing.data, v->issuing.len, now);
    /* With the reason (an expired certificate says so); the caller names the file. Only a CA verifies. */
    CT_ENSURE(rc == CT_OK, fail_ctx(CT_ERR_INTEGRITY, "the viewer does not chain to the operations root"));
    CT_ENSURE_MSG(!li.is_ca && (li.key_usage & PKI_KU_KEY_AGREEMENT), CT_ERR_INTEGRITY,
                  "'%s' is not a viewer certificate (no keyAgreement)", li.subject_cn);
    CT_GUARD(pki_cert_spki(v->leaf.data, v->leaf.len, &spki, &spki_len));
    CT_ENSURE(wc_ecc_init(&pub) == 0, CT_ERR_CRYPTO);
    pub_ok = true;
    CT_ENSURE_MSG(wc_EccPublicKeyDecode(spki, &idx, &pub, (word32)spki_len) == 0 && pub.dp &&
                      pub.dp->id == ECC_SECP256R1 && wc_ecc_export_x963(&pub, out->pub, &point_len) == 0 &&
                      point_len == CENC_POINT_LEN,
                  CT_ERR_INTEGRITY, "viewer '%s' has no P-256 key", li.subject_cn);
    memcpy(out->cert_sha256, li.cert_sha256, 32);
    memcpy(v->issuing_key, ii.spki_sha256, 32);
    CT_GUARD(ct_strlcpy(out->name, sizeof out->name, li.subject_cn));
    CT_GUARD(ct_strlcpy(v->serial_hex, sizeof v->serial_hex, li.serial_hex));
cleanup:
    if (pub_ok) wc_ecc_free(&pub);
    return rc;
}

/* Marks in revoked_by[] (with `name`) the viewers that the CRL file `path` revokes, in judged[] those it judges;
 * then checks it against the memory `m` (older than one taken: CT_ERR_INTEGRITY) and raises it. The CRL must be
 * the issuing CA's of at least one viewer (whose chain is already checked up to the pinned root `root`), or the
 * root's (revoking an issuing CA revokes its viewers: a ceremony's answer to a compromised one), and carry its
 * signature; any other CRL, or one whose signature does not verify, is an error. A CRL past its nextUpdate still
 * applies: its revocations stay true, and a camera without a fresh one must not start giving keys to a revoked
 * viewer. */
static ct_err crl_apply(const char *path, const char *name, const ct_buf *file, const viewer_chain *v, size_t n,
                        const uint8_t *root, size_t root_len, time_t now, const char **revoked_by, bool *judged,
                        crl_memory *m)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    pki_crl_status st;
    time_t made = 0, next_update = 0; /* where it matched: a miss clears st */
    bool any = false;
    const uint8_t *issuer = NULL;
    CT_GUARD(ct_buf_alloc(&der, file->len));
    rc = ct_pem_decode(file->data, file->len, "X509 CRL", 0, &der);
    if (rc == CT_ERR_NOT_FOUND) rc = ct_buf_set(&der, file->data, file->len); /* DER as it is */
    CT_ENSURE_MSG(rc == CT_OK, rc, "%s: not a CRL (PEM or DER)", path);
    /* Each viewer against its issuing CA, then each issuing CA against the root. */
    for (size_t j = 0; j < 2 * n; j++) {
        size_t i = j % n;
        bool by_root = j >= n;
        const ct_buf *cert = by_root ? &v[i].issuing : &v[i].leaf;
        const uint8_t *ca = by_root ? root : v[i].issuing.data;
        size_t ca_len = by_root ? root_len : v[i].issuing.len;
        rc = pki_crl_check(der.data, der.len, ca, ca_len, cert->data, cert->len, &st);
        if (rc == CT_ERR_NOT_FOUND) { /* a viewer of another issuing CA: not this CRL's to judge */
            ct_err_clear();
            rc = CT_OK;
            continue;
        }
        CT_ENSURE_MSG(rc != CT_ERR_INTEGRITY, rc, "%s: the CRL's signature does not verify (altered?)", path);
        CT_ENSURE_MSG(rc == CT_OK, rc, "%s: not a CRL (PEM or DER): %s", path, ct_err_detail());
        any = true;
        issuer = by_root ? m->root_key : v[i].issuing_key;
        made = st.this_update, next_update = st.next_update;
        judged[i] = judged[i] || !by_root; /* the root's CRL says nothing of the viewer itself */
        if (st.revoked && !revoked_by[i]) revoked_by[i] = name;
    }
    CT_ENSURE_MSG(any, CT_ERR_INTEGRITY, "%s: not a CRL of the viewers' operations issuing CA", path);
    size_t k = seen_find(m, m->n, issuer);
    CT_ENSURE_MSG(k >= m->n_old || (uint64_t)made >= m->r[k].newest, CT_ERR_INTEGRITY, SEEN_MSG, path);
    /* Never more than it reads back: a memory it could write but not read would refuse every later load. */
    CT_ENSURE_MSG(k < m->n || m->n < MAX_CRL_ISSUERS, CT_ERR_TOO_LARGE, "%s: too many CRL issuers", path);
    if (k == m->n) memcpy(m->r[m->n++].issuer, issuer, 32); /* its date still 0, from the memset */
    if ((uint64_t)made > m->r[k].newest) m->r[k].newest = (uint64_t)made, m->changed = true;
    m->root_crl |= issuer == m->root_key;
    if (next_update && next_update < now)
        ct_log(CT_LOG_WARN, "viewer_crl_expired", "crl=%s next_update=%lld msg=\"applied all the same\"", CT_LOGQ(path),
               (long long)next_update);
cleanup:
    ct_buf_free(&der);
    return rc;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool has_suffix(const char *name, size_t len, const char *suffix)
{
    size_t s = strlen(suffix);
    return len > s && strcmp(name + len - s, suffix) == 0;
}

/* Drops the revoked viewers from out[] (one warning each, then their count); CT_ERR_NOT_FOUND if none is left. */
static ct_err drop_revoked(const char *dir, const viewer_chain *v, const char *const *revoked_by, cenc_recipient *out,
                           size_t *n)
{
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (!revoked_by[i]) {
            out[kept++] = out[i];
            continue;
        }
        ct_log(CT_LOG_WARN, "viewer_revoked", "viewer=%s file=%s serial=%s crl=%s msg=\"revoked: excluded from the "
               "recipients\"", CT_LOGQ(out[i].name), CT_LOGQ(v[i].file), v[i].serial_hex, CT_LOGQ(revoked_by[i]));
    }
    size_t excluded = *n - kept;
    *n = kept;
    CT_ENSURE_RET(kept > 0, ct_fail(CT_ERR_NOT_FOUND, "every viewer in %s is revoked by its CRL: no one could watch",
                                    dir));
    if (excluded)
        ct_log(CT_LOG_WARN, "viewers_excluded", "count=%zu recipients=%zu dir=%s", excluded, kept, CT_LOGQ(dir));
    return CT_OK;
}

ct_err cenc_recipients_load(const char *dir, const uint8_t *root, size_t root_len, time_t now, const char *seen_path,
                            cenc_recipient *out, size_t max, size_t *n)
{
    ct_err rc = CT_OK;
    DIR *d = opendir(dir);
    char *names[CENC_MAX_RECIPIENTS + 1], *crls[MAX_CRL_FILES];
    const char *revoked_by[CENC_MAX_RECIPIENTS] = {NULL};
    bool judged[CENC_MAX_RECIPIENTS] = {false};
    crl_memory m;
    pki_cert_info root_info;
    viewer_chain *chains = NULL;
    size_t count = 0, n_crls = 0;
    ct_buf file = CT_BUF_INIT;
    char path[1024];
    *n = 0;
    /* The camera records while it streams: the CRL memory is read, judged against and written by one process at a
     * time (the folder locked until closed), else one could take an older CRL while another writes the newer one. */
    CT_ENSURE_MSG(d && (!seen_path || flock(dirfd(d), LOCK_EX) == 0), CT_ERR_CONFIG, "cannot open viewers folder %s",
                  dir);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t l = strnlen(e->d_name, NAME_MAX_LEN + 1);
        if (l > NAME_MAX_LEN) continue;
        if (has_suffix(e->d_name, l, ".crl")) {
            CT_ENSURE_MSG(n_crls < MAX_CRL_FILES, CT_ERR_TOO_LARGE, "more than %d CRLs in %s", MAX_CRL_FILES, dir);
            crls[n_crls] = strdup(e->d_name);
            CT_ENSURE(crls[n_crls], CT_ERR_NOMEM);
            n_crls++;
            continue;
        }
        if (!has_suffix(e->d_name, l, ".pem")) continue;
        CT_ENSURE_MSG(count < max && count < CENC_MAX_RECIPIENTS, CT_ERR_TOO_LARGE, "more than %zu viewers in %s",
                      max < CENC_MAX_RECIPIENTS ? max : (size_t)CENC_MAX_RECIPIENTS, dir);
        names[count] = strdup(e->d_name);
        CT_ENSURE(names[count], CT_ERR_NOMEM);
        count++;
    }
    CT_ENSURE_MSG(count > 0, CT_ERR_NOT_FOUND, "no viewer certificates (*.pem) in %s", dir);
    memset(&m, 0, sizeof m);
    CT_GUARD(pki_cert_parse_info(root, root_len, &root_info));
    memcpy(m.root_key, root_info.spki_sha256, 32);
    if (seen_path && ct_file_exists(seen_path)) {
        CT_GUARD(ct_file_read(seen_path, sizeof m.r, &file));
        m.n = m.n_old = file.len / sizeof m.r[0];
        memcpy(m.r, file.data, m.n * sizeof m.r[0]);
    }
    qsort(names, count, sizeof names[0], name_cmp);
    if (n_crls) qsort(crls, n_crls, sizeof crls[0], name_cmp);
    chains = calloc(count, sizeof *chains);
    CT_ENSURE(chains, CT_ERR_NOMEM);
    for (size_t i = 0; i < count; i++) {
        CT_GUARD(ct_path_join(path, sizeof path, dir, names[i]));
        ct_buf_free(&file);
        CT_GUARD(ct_file_read(path, CERT_FILE_MAX, &file));
        rc = recipient_parse(file.data, file.len, root, root_len, now, &out[*n], &chains[*n]);
        if (rc != CT_OK) {
            rc = fail_ctx(rc, path);
            goto cleanup;
        }
        chains[*n].file = names[i];
        bool dup = false;
        for (size_t k = 0; k < *n; k++) dup = dup || memcmp(out[k].cert_sha256, out[*n].cert_sha256, 32) == 0;
        if (dup) chain_free(&chains[*n]);
        else (*n)++;
    }
    for (size_t i = 0; i < n_crls; i++) {
        CT_GUARD(ct_path_join(path, sizeof path, dir, crls[i]));
        ct_buf_free(&file);
        CT_GUARD(ct_file_read(path, CRL_FILE_MAX, &file));
        CT_GUARD(crl_apply(path, crls[i], &file, chains, *n, root, root_len, now, revoked_by, judged, &m));
    }
    /* The root's CRL, once taken, stays needed: deleting it must not bring back an issuing CA it revoked. */
    size_t k = seen_find(&m, m.n_old, m.root_key);
    CT_ENSURE_MSG(k == m.n_old || m.root_crl, CT_ERR_INTEGRITY, SEEN_MSG, dir);
    /* Each issuing CA generation has its own CRL: one of another generation says nothing of this viewer, who
     * would get the keys however revoked (camtrust-ca crl ops writes the current generation's). Once the camera took
     * a CRL, each kept viewer needs its issuing CA's: deleting it must not bring a revoked one back. A viewer the
     * root's CRL revokes needs none. */
    for (size_t i = 0; (n_crls || m.n_old) && i < *n; i++)
        CT_ENSURE_MSG(judged[i] || revoked_by[i], CT_ERR_INTEGRITY, "%s: no CRL of its issuing CA here",
                      chains[i].file);
    if (seen_path && m.changed) CT_GUARD(ct_file_write_atomic(seen_path, m.r, m.n * sizeof m.r[0], 0600));
    CT_GUARD(drop_revoked(dir, chains, revoked_by, out, n));
cleanup:
    if (rc != CT_OK) *n = 0;
    for (size_t i = 0; chains && i < count; i++) chain_free(&chains[i]);
    free(chains);
    for (size_t i = 0; i < count; i++) free(names[i]);
    for (size_t i = 0; i < n_crls; i++) free(crls[i]);
    if (d) closedir(d);
    ct_buf_free(&file);
    return rc;
}

/* ---- wrapping ---- */

static ct_err derive_kek(const uint8_t *z, size_t z_len, const uint8_t kid[CENC_KID_LEN], const cenc_wrapped_key *w,
                         uint8_t kek[KEK_LEN])
{
    uint8_t info[sizeof KDF_LABEL - 1 + CENC_KID_LEN + 32 + CENC_POINT_LEN];
    size_t o = 0;
    memcpy(info + o, KDF_LABEL, sizeof KDF_LABEL - 1), o += sizeof KDF_LABEL - 1;
    memcpy(info + o, kid, CENC_KID_LEN), o += CENC_KID_LEN;
    memcpy(info + o, w->cert_sha256, 32), o += 32;
    memcpy(info + o, w->eph_pub, CENC_POINT_LEN), o += CENC_POINT_LEN;
    int ret = wc_HKDF(WC_SHA256, z, (word32)z_len, NULL, 0, info, (word32)o, kek, KEK_LEN);
    return ret == 0 ? CT_OK : ct_fail(CT_ERR_CRYPTO, "HKDF failed (%d)", ret);
}

ct_err cenc_wrap(const cenc_recipient *r, const uint8_t kid[CENC_KID_LEN], const uint8_t key[CENC_KEY_LEN],
                 cenc_wrapped_key *out)
{
    ct_err rc = CT_OK;
    WC_RNG rng;
    ecc_key eph, peer;
    bool rng_ok = false, eph_ok = false, peer_ok = false;
    uint8_t z[32], kek[KEK_LEN];
    word32 z_len = sizeof z, pub_len = CENC_POINT_LEN;
    memcpy(out->cert_sha256, r->cert_sha256, 32);
    CT_ENSURE(wc_InitRng(&rng) == 0, CT_ERR_CRYPTO);
    rng_ok = true;
    CT_ENSURE(wc_ecc_init(&eph) == 0, CT_ERR_CRYPTO);
    eph_ok = true;
    CT_ENSURE(wc_ecc_init(&peer) == 0, CT_ERR_CRYPTO);
    peer_ok = true;
    CT_ENSURE_MSG(wc_ecc_import_x963_ex(r->pub, CENC_POINT_LEN, &peer, ECC_SECP256R1) == 0, CT_ERR_CRYPTO,
                  "viewer key '%s' does not import", r->name);
    CT_ENSURE_MSG(wc_ecc_make_key_ex(&rng, 32, &eph, ECC_SECP256R1) == 0 && wc_ecc_set_rng(&eph, &rng) == 0 &&
                      wc_ecc_shared_secret(&eph, &peer, z, &z_len) == 0 &&
                      wc_ecc_export_x963(&eph, out->eph_pub, &pub_len) == 0 && pub_len == CENC_POINT_LEN,
                  CT_ERR_CRYPTO, "ECDH with viewer '%s' failed", r->name);
    CT_GUARD(derive_kek(z, z_len, kid, out, kek));
    CT_ENSURE_MSG(wc_AesKeyWrap(kek, KEK_LEN, key, CENC_KEY_LEN, out->wrapped, CENC_WRAPPED_LEN, NULL) ==
                      CENC_WRAPPED_LEN,
                  CT_ERR_CRYPTO, "AES key wrap failed");
cleanup:
    ct_wipe(z, sizeof z);
    ct_wipe(kek, sizeof kek);
    if (eph_ok) wc_ecc_free(&eph); /* wc_ecc_free clears the private scalar */
    if (peer_ok) wc_ecc_free(&peer);
    if (rng_ok) wc_FreeRng(&rng);
    return rc;
}

ct_err cenc_unwrap(void *ecc_priv, const uint8_t kid[CENC_KID_LEN], const cenc_wrapped_key *w,
                   uint8_t key[CENC_KEY_LEN])
{
    ct_err rc = CT_OK;
    ecc_key *priv = ecc_priv, peer;
    WC_RNG rng;
    bool rng_ok = false, peer_ok = false;
    uint8_t z[32], kek[KEK_LEN];
    word32 z_len = sizeof z;
    CT_ENSURE(wc_InitRng(&rng) == 0, CT_ERR_CRYPTO);
    rng_ok = true;
    CT_ENSURE(wc_ecc_init(&peer) == 0, CT_ERR_CRYPTO);
    peer_ok = true;
    /* The ephemeral point comes from the file: it must be a valid P-256 point. */
    CT_ENSURE_MSG(wc_ecc_import_x963_ex(w->eph_pub, CENC_POINT_LEN, &peer, ECC_SECP256R1) == 0 &&
                      wc_ecc_check_key(&peer) == 0,
                  CT_ERR_INTEGRITY, "pssh: the ephemeral key is not a P-256 point (tampered?)");
    CT_ENSURE_MSG(wc_ecc_set_rng(priv, &rng) == 0 && wc_ecc_shared_secret(priv, &peer, z, &z_len) == 0,
                  CT_ERR_CRYPTO, "ECDH with the viewer key failed");
    CT_GUARD(derive_kek(z, z_len, kid, w, kek));
    CT_ENSURE_MSG(wc_AesKeyUnWrap(kek, KEK_LEN, w->wrapped, CENC_WRAPPED_LEN, key, CENC_KEY_LEN, NULL) == CENC_KEY_LEN,
                  CT_ERR_INTEGRITY, "pssh: the content key does not unwrap (tampered, or another viewer's key)");
cleanup:
    ct_wipe(z, sizeof z);
    ct_wipe(kek, sizeof kek);
    if (rc != CT_OK) ct_wipe(key, CENC_KEY_LEN);
    if (peer_ok) wc_ecc_free(&peer);
    if (rng_ok) {
        (void)wc_ecc_set_rng(priv, NULL); /* the RNG ends here; the key may live on */
        wc_FreeRng(&rng);
    }
    return rc;
}

ct_err cenc_unwrap_hsm(const hsm_key *k, const uint8_t kid[CENC_KID_LEN], const cenc_wrapped_key *w,
                       uint8_t key[CENC_KEY_LEN])
{
    ecc_key tok;
    CT_GUARD_RET(hsm_key_wolf_ecc(k, &tok));
    ct_err rc = cenc_unwrap(&tok, kid, w, key);
    wc_ecc_free(&tok);
    return rc;
}

/* ---- the pssh box ---- */

static void be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static ct_err put_tlv(ct_buf *b, uint8_t type, const void *v1, size_t l1, const void *v2, size_t l2, const void *v3,
                      size_t l3)
{
    uint8_t h[3] = {type, (uint8_t)((l1 + l2 + l3) >> 8), (uint8_t)(l1 + l2 + l3)};
    CT_GUARD_RET(ct_buf_append(b, h, sizeof h));
    CT_GUARD_RET(ct_buf_append(b, v1, l1));
    CT_GUARD_RET(ct_buf_append(b, v2, l2));
    return ct_buf_append(b, v3, l3);
}

ct_err cenc_pssh_encode(const cenc_pssh *p, ct_buf *out)
{
    CT_ENSURE_RET(p->n > 0 && p->n <= CENC_MAX_RECIPIENTS, ct_fail(CT_ERR_ARG, "pssh with %zu recipients", p->n));
    size_t data_len = 1 + 3 + CENC_KID_LEN + p->n * (3 + RECIPIENT_LEN);
    size_t start = out->len, box_len = 8 + 4 + 16 + 4 + CENC_KID_LEN + 4 + data_len;
    uint8_t h[8 + 4 + 16 + 4];
    be32_put(h, (uint32_t)box_len);
    memcpy(h + 4, "pssh", 4);
    be32_put(h + 8, (uint32_t)PSSH_VERSION << 24);
    memcpy(h + 12, cenc_system_id, 16);
    be32_put(h + 28, 1);
    uint8_t ds[4], version = PSSH_VERSION;
    be32_put(ds, (uint32_t)data_len);
    CT_GUARD_RET(ct_buf_append(out, h, sizeof h));
    CT_GUARD_RET(ct_buf_append(out, p->kid, CENC_KID_LEN));
    CT_GUARD_RET(ct_buf_append(out, ds, sizeof ds));
    CT_GUARD_RET(ct_buf_append(out, &version, 1));
    CT_GUARD_RET(put_tlv(out, TLV_KID, p->kid, CENC_KID_LEN, NULL, 0, NULL, 0));
    for (size_t i = 0; i < p->n; i++)
        CT_GUARD_RET(put_tlv(out, TLV_RECIPIENT, p->r[i].cert_sha256, 32, p->r[i].eph_pub, CENC_POINT_LEN,
                             p->r[i].wrapped, CENC_WRAPPED_LEN));
    return out->len - start == box_len ? CT_OK : ct_fail(CT_ERR_INTERNAL, "pssh length");
}

#define PSSH_BAD(...) ct_fail(CT_ERR_BAD_REQUEST, "pssh: " __VA_ARGS__)

ct_err cenc_pssh_parse(const uint8_t *box, size_t len, cenc_pssh *out)
{
    memset(out, 0, sizeof *out);
    CT_ENSURE_RET(len >= 28 && be32_get(box) == len && memcmp(box + 4, "pssh", 4) == 0, PSSH_BAD("malformed box"));
    if (memcmp(box + 12, cenc_system_id, 16) != 0) return CT_ERR_NOT_FOUND;
    CT_ENSURE_RET(box[8] == PSSH_VERSION, PSSH_BAD("version %u", box[8]));
    CT_ENSURE_RET(len >= 8 + 4 + 16 + 4 + CENC_KID_LEN + 4 && be32_get(box + 28) == 1, PSSH_BAD("one key ID expected"));
    const uint8_t *kid = box + 32, *p = box + 52;
    size_t left = be32_get(box + 48);
    CT_ENSURE_RET(left == len - 52 && left >= 1 && p[0] == PSSH_VERSION, PSSH_BAD("data size or version"));
    p++, left--;
    bool have_kid = false;
    while (left > 0) {
        CT_ENSURE_RET(left >= 3, PSSH_BAD("TLV header cut off"));
        uint8_t type = p[0];
        size_t l = (size_t)p[1] << 8 | p[2];
        CT_ENSURE_RET(l <= left - 3, PSSH_BAD("TLV of %zu bytes, %zu left", l, left - 3));
        const uint8_t *v = p + 3;
        if (type == TLV_KID) {
            CT_ENSURE_RET(!have_kid && out->n == 0 && l == CENC_KID_LEN && memcmp(v, kid, CENC_KID_LEN) == 0,
                          PSSH_BAD("key ID entry misplaced or not the box's key ID"));
            memcpy(out->kid, v, CENC_KID_LEN);
            have_kid = true;
        } else if (type == TLV_RECIPIENT) {
            CT_ENSURE_RET(have_kid && l == RECIPIENT_LEN && out->n < CENC_MAX_RECIPIENTS,
                          PSSH_BAD("recipient entry malformed or more than %d", CENC_MAX_RECIPIENTS));
            cenc_wrapped_key *r = &out->r[out->n++];
            memcpy(r->cert_sha256, v, 32);
            memcpy(r->eph_pub, v + 32, CENC_POINT_LEN);
            memcpy(r->wrapped, v + 32 + CENC_POINT_LEN, CENC_WRAPPED_LEN);
        } else {
            return PSSH_BAD("unknown entry type %u", type);
        }
        p += 3 + l, left -= 3 + l;
    }
    CT_ENSURE_RET(have_kid && out->n > 0, PSSH_BAD("no key ID or no recipient"));
    return CT_OK;
}
