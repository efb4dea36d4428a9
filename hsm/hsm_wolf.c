/* hsm_wolf: a wolfSSL crypto-callback device per hsm, so that wolfSSL's ECDSA (certificates, CSRs, TLS) and
 * ECDH run inside the token. Keys are matched by ecc_key.id against a registry of cached object handles:
 * no object search per operation. Anything else is left to wolfSSL's software code. */
#define _POSIX_C_SOURCE 200809L
#include "hsm_priv.h"

#include <stdatomic.h>
#include <string.h>

#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/cryptocb.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/wc_port.h>

/* Device ids only need to be unique in the process; start far from small ids others may pick. */
static atomic_int g_next_dev_id = 0x43540001;

int hsm_wolf_curve_id(hsm_key_type t) { return t == HSM_EC_P384 ? ECC_SECP384R1 : ECC_SECP256R1; }

/* ---------------- registry ---------------- */

static bool reg_lookup(hsm *h, const ecc_key *key, hsm_wolf_entry *out)
{
    bool found = false;
    if (!key || key->idLen <= 0) return false;
    pthread_mutex_lock(&h->reg_lock);
    for (size_t i = 0; i < h->reg_n && !found; i++) {
        if (h->reg[i].id_len == (size_t)key->idLen && memcmp(h->reg[i].id, key->id, h->reg[i].id_len) == 0) {
            *out = h->reg[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&h->reg_lock);
    return found;
}

static size_t reg_index(const hsm *h, const hsm_key *k)
{
    size_t i = 0;
    while (i < h->reg_n && !(h->reg[i].id_len == k->id_len && memcmp(h->reg[i].id, k->id, k->id_len) == 0)) i++;
    return i;
}

ct_err hsm_wolf_remember(hsm *h, const hsm_key *k)
{
    ct_err rc = CT_OK;
    if (k->id_len == 0) return CT_OK; /* wolfSSL addresses keys by id: one without cannot be served anyway */
    pthread_mutex_lock(&h->reg_lock);
    size_t i = reg_index(h, k);
    CT_ENSURE_MSG(i < HSM_WOLF_MAX_KEYS, CT_ERR_BUF_FULL, "more than %d keys in use with wolfSSL",
                  HSM_WOLF_MAX_KEYS);
    hsm_wolf_entry *e = &h->reg[i];
    memcpy(e->id, k->id, k->id_len);
    e->id_len = k->id_len;
    e->priv = k->priv;
    e->type = k->type;
    memcpy(e->point, k->point, k->point_len);
    e->point_len = k->point_len;
    if (i == h->reg_n) h->reg_n++;
cleanup:
    pthread_mutex_unlock(&h->reg_lock);
    return rc;
}

void hsm_wolf_forget(hsm *h, const hsm_key *k)
{
    pthread_mutex_lock(&h->reg_lock);
    size_t i = reg_index(h, k);
    if (i < h->reg_n) h->reg[i] = h->reg[--h->reg_n];
    pthread_mutex_unlock(&h->reg_lock);
}

/* ---------------- the callback ---------------- */

static int cb_sign(hsm *h, wc_CryptoInfo *info)
{
    hsm_wolf_entry e;
    if (!reg_lookup(h, info->pk.eccsign.key, &e)) return CRYPTOCB_UNAVAILABLE;
    size_t len = *info->pk.eccsign.outlen;
    if (hsm_sign_der(h, e.priv, e.type, info->pk.eccsign.in, info->pk.eccsign.inlen, info->pk.eccsign.out, &len) !=
        CT_OK)
        return WC_HW_E;
    *info->pk.eccsign.outlen = (word32)len;
    return 0;
}

static int cb_ecdh(hsm *h, wc_CryptoInfo *info)
{
    hsm_wolf_entry e;
    uint8_t peer[HSM_EC_POINT_MAX];
    word32 peer_len = sizeof peer;
    if (!reg_lookup(h, info->pk.ecdh.private_key, &e)) return CRYPTOCB_UNAVAILABLE;
    if (wc_ecc_export_x963(info->pk.ecdh.public_key, peer, &peer_len) != 0) return ECC_BAD_ARG_E;
    size_t len = *info->pk.ecdh.outlen;
    if (hsm_ecdh_raw(h, e.priv, e.type, peer, peer_len, info->pk.ecdh.out, &len) != CT_OK) return WC_HW_E;
    *info->pk.ecdh.outlen = (word32)len;
    return 0;
}

/* wolfSSL asks whether a token key matches a certificate's public key (SubjectPublicKeyInfo, or a bare point
 * from some callers): compare with the point read from the token. */
static int cb_check(hsm *h, wc_CryptoInfo *info)
{
    hsm_wolf_entry e;
    if (!reg_lookup(h, info->pk.ecc_check.key, &e)) return CRYPTOCB_UNAVAILABLE;
    if (!info->pk.ecc_check.pubKey || info->pk.ecc_check.pubKeySz == 0) return 0;
    ecc_key pub;
    uint8_t pt[HSM_EC_POINT_MAX];
    word32 pt_len = sizeof pt, idx = 0;
    if (wc_ecc_init_ex(&pub, NULL, INVALID_DEVID) != 0) return MEMORY_E;
    int ret = wc_EccPublicKeyDecode(info->pk.ecc_check.pubKey, &idx, &pub, info->pk.ecc_check.pubKeySz);
    if (ret != 0)
        ret = wc_ecc_import_x963_ex(info->pk.ecc_check.pubKey, info->pk.ecc_check.pubKeySz, &pub,
                                    hsm_wolf_curve_id(e.type));
    if (ret == 0) ret = wc_ecc_export_x963(&pub, pt, &pt_len);
    if (ret == 0 && (pt_len != e.point_len || memcmp(pt, e.point, pt_len) != 0)) ret = ECC_PRIV_KEY_E;
    wc_ecc_free(&pub);
    return ret;
}

static int hsm_wolf_cb(int dev_id, wc_CryptoInfo *info, void *ctx)
{
    hsm *h = ctx;
    if (!h || dev_id != h->dev_id || info->algo_type != WC_ALGO_TYPE_PK) return CRYPTOCB_UNAVAILABLE;
    switch (info->pk.type) {
    case WC_PK_TYPE_ECDSA_SIGN:
        return cb_sign(h, info);
    case WC_PK_TYPE_ECDH:
        return cb_ecdh(h, info);
    case WC_PK_TYPE_EC_CHECK_PRIV_KEY:
        return cb_check(h, info);
    default:
        return CRYPTOCB_UNAVAILABLE;
    }
}

ct_err hsm_wolf_attach(hsm *h)
{
    int ret = wolfCrypt_Init();
    if (ret != 0) return ct_fail(CT_ERR_CRYPTO, "wolfCrypt_Init failed: %d", ret);
    int dev = atomic_fetch_add(&g_next_dev_id, 1);
    h->dev_id = dev; /* before registering: the callback compares it */
    ret = wc_CryptoCb_RegisterDevice(dev, hsm_wolf_cb, h);
    if (ret != 0) {
        h->dev_id = 0;
        wolfCrypt_Cleanup();
        return ct_fail(CT_ERR_CRYPTO, "registering the wolfSSL crypto device failed: %d", ret);
    }
    return CT_OK;
}

void hsm_wolf_detach(hsm *h)
{
    if (!h->dev_id) return;
    wc_CryptoCb_UnRegisterDevice(h->dev_id);
    h->dev_id = 0;
    wolfCrypt_Cleanup();
}

int hsm_wolf_dev_id(const hsm *h) { return h && h->dev_id ? h->dev_id : INVALID_DEVID; }

/* ---------------- keys as wolfSSL sees them ---------------- */

static ct_err point_import(const hsm_key *k, ecc_key *key)
{
    int ret = wc_ecc_import_x963_ex(k->point, (word32)k->point_len, key, hsm_wolf_curve_id(k->type));
    return ret == 0 ? CT_OK : ct_fail(CT_ERR_CRYPTO, "importing the public point failed: %d", ret);
}

ct_err hsm_key_wolf_ecc(const hsm_key *k, void *ecc_key_out)
{
    ecc_key *key = ecc_key_out;
    if (!k || !key) return CT_ERR_ARG;
    if (k->id_len == 0) return ct_fail(CT_ERR_HSM_NO_KEY, "key '%s' has no id for wolfSSL", k->label);
    uint8_t id[HSM_ID_MAX];
    memcpy(id, k->id, k->id_len); /* wc_ecc_init_id takes a non-const id */
    int ret = wc_ecc_init_id(key, id, (int)k->id_len, NULL, hsm_wolf_dev_id(k->h));
    if (ret != 0) return ct_fail(CT_ERR_CRYPTO, "wc_ecc_init_id failed: %d", ret);
    ct_err rc = point_import(k, key);
    if (rc != CT_OK) wc_ecc_free(key);
    return rc;
}

ct_err hsm_key_public_der(const hsm_key *k, ct_buf *spki)
{
    ct_err rc = CT_OK;
    ecc_key key;
    bool inited = false;
    uint8_t der[256];
    CT_ENSURE(k && spki, CT_ERR_ARG);
    CT_ENSURE(wc_ecc_init_ex(&key, NULL, INVALID_DEVID) == 0, CT_ERR_CRYPTO);
    inited = true;
    CT_GUARD(point_import(k, &key));
    int n = wc_EccPublicKeyToDer(&key, der, sizeof der, 1);
    CT_ENSURE_MSG(n > 0, CT_ERR_CRYPTO, "encoding the public key failed: %d", n);
    if (!spki->data) CT_GUARD(ct_buf_alloc(spki, (size_t)n)); /* callers may pass an empty buffer */
    CT_GUARD(ct_buf_set(spki, der, (size_t)n));
cleanup:
    if (inited) wc_ecc_free(&key);
    return rc;
}
