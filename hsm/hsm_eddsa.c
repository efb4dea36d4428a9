/* hsm: Ed25519 keys in the token (see hsm.h). wolfSSL's bundled pkcs11.h predates EdDSA: the constants are
 * PKCS#11 v3.0's. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "hsm_priv.h"

#ifndef CKK_EC_EDWARDS
#define CKK_EC_EDWARDS 0x00000040UL
#endif
#ifndef CKM_EC_EDWARDS_KEY_PAIR_GEN
#define CKM_EC_EDWARDS_KEY_PAIR_GEN 0x00001055UL
#endif
#ifndef CKM_EDDSA
#define CKM_EDDSA 0x00001057UL
#endif

/* CKA_EC_PARAMS: the OID id-Ed25519 (1.3.101.112), DER. */
static const uint8_t OID_ED25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};

struct hsm_eddsa_key {
    hsm *h;
    CK_OBJECT_HANDLE priv;
    uint8_t pub[HSM_ED25519_PUB_LEN];
};

#define CK(call, what)                                                                             \
    do {                                                                                           \
        CK_RV ck_rv_ = (call);                                                                     \
        CT_ENSURE_MSG(ck_rv_ == CKR_OK, CT_ERR_HSM, "%s failed: CKR 0x%lx", (what), ck_rv_);        \
    } while (0)

/* The key's public half: the public object with the private key's CKA_ID; CKA_EC_POINT is the 32 bytes, bare or
 * in a DER OCTET STRING (modules differ). */
static ct_err load(hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv, hsm_eddsa_key **out)
{
    ct_err rc = CT_OK;
    uint8_t id[HSM_ID_MAX], point[64];
    CK_ATTRIBUTE a = {CKA_ID, id, sizeof id};
    hsm_eddsa_key *k = calloc(1, sizeof *k);
    CT_ENSURE(k, CT_ERR_NOMEM);
    CK(h->f->C_GetAttributeValue(s, priv, &a, 1), "C_GetAttributeValue(CKA_ID)");
    CT_ENSURE_MSG(a.ulValueLen > 0 && a.ulValueLen <= sizeof id, CT_ERR_HSM, "Ed25519 key without a usable CKA_ID");
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_EC_EDWARDS;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt}, {CKA_ID, id, a.ulValueLen}};
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    CT_GUARD(hsm_objects_find(h, s, t, 3, found, 2, &count));
    CT_ENSURE_MSG(count == 1, CT_ERR_HSM_NO_KEY, "Ed25519 key has %lu public key objects, not one", count);
    CK_ATTRIBUTE p = {CKA_EC_POINT, point, sizeof point};
    CK(h->f->C_GetAttributeValue(s, found[0], &p, 1), "C_GetAttributeValue(CKA_EC_POINT)");
    size_t hdr = p.ulValueLen == 34 && point[0] == 0x04 && point[1] == 32 ? 2 : 0;
    CT_ENSURE_MSG(p.ulValueLen == hdr + HSM_ED25519_PUB_LEN, CT_ERR_HSM, "Ed25519 public key of %lu bytes",
                  p.ulValueLen);
    memcpy(k->pub, point + hdr, HSM_ED25519_PUB_LEN);
    k->h = h;
    k->priv = priv;
    *out = k;
    k = NULL;
cleanup:
    free(k);
    return rc;
}

ct_err hsm_eddsa_generate(hsm *h, const char *label, const uint8_t *id, size_t id_len, hsm_eddsa_key **out)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CT_ENSURE(h && label && id && out, CT_ERR_ARG);
    *out = NULL;
    size_t label_len = strlen(label);
    s = hsm_session_get(h);
    CT_GUARD(hsm_new_object_check(h, s, label, id, id_len));
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pub_t[] = {
        {CKA_TOKEN, &yes, sizeof yes},   {CKA_VERIFY, &yes, sizeof yes}, {CKA_DERIVE, &no, sizeof no},
        {CKA_ENCRYPT, &no, sizeof no},   {CKA_WRAP, &no, sizeof no},
        {CKA_EC_PARAMS, (void *)OID_ED25519, sizeof OID_ED25519},
        {CKA_LABEL, (void *)label, (CK_ULONG)label_len}, {CKA_ID, (void *)id, (CK_ULONG)id_len},
    };
    CK_ATTRIBUTE priv_t[] = {
        {CKA_TOKEN, &yes, sizeof yes},      {CKA_PRIVATE, &yes, sizeof yes},   {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},  {CKA_SIGN, &yes, sizeof yes},      {CKA_DERIVE, &no, sizeof no},
        {CKA_DECRYPT, &no, sizeof no},      {CKA_UNWRAP, &no, sizeof no},      {CKA_SIGN_RECOVER, &no, sizeof no},
        {CKA_MODIFIABLE, &no, sizeof no},   {CKA_LABEL, (void *)label, (CK_ULONG)label_len},
        {CKA_ID, (void *)id, (CK_ULONG)id_len},
    };
    CK_MECHANISM mech = {CKM_EC_EDWARDS_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK(h->f->C_GenerateKeyPair(s, &mech, pub_t, sizeof pub_t / sizeof pub_t[0], priv_t, sizeof priv_t / sizeof priv_t[0],
                               &pub, &priv),
       "C_GenerateKeyPair(Ed25519)");
    CT_GUARD(hsm_generated_check(h, s, CKO_PRIVATE_KEY, CKK_EC_EDWARDS, priv, label, id, id_len));
    CT_GUARD(load(h, s, priv, out));
cleanup:
    if (s != CK_INVALID_HANDLE) hsm_session_put(h, s);
    return rc;
}

ct_err hsm_eddsa_find(hsm *h, const char *uri_or_label, hsm_eddsa_key **out)
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    CT_ENSURE(h && uri_or_label && out, CT_ERR_ARG);
    *out = NULL;
    s = hsm_session_get(h);
    CT_GUARD(hsm_private_find_named(h, s, CKK_EC_EDWARDS, uri_or_label, &priv));
    CT_GUARD(load(h, s, priv, out));
cleanup:
    if (s != CK_INVALID_HANDLE) hsm_session_put(h, s);
    return rc;
}

const uint8_t *hsm_eddsa_public(const hsm_eddsa_key *k) { return k->pub; }

ct_err hsm_eddsa_sign(hsm_eddsa_key *k, const uint8_t *msg, size_t len, uint8_t sig[HSM_ED25519_SIG_LEN])
{
    ct_err rc = CT_OK;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CT_ENSURE(k && msg && sig && len <= UINT32_MAX, CT_ERR_ARG);
    s = hsm_session_get(k->h);
    CK_MECHANISM mech = {CKM_EDDSA, NULL, 0}; /* no parameters: pure Ed25519 */
    CK_ULONG n = HSM_ED25519_SIG_LEN;
    CK(k->h->f->C_SignInit(s, &mech, k->priv), "C_SignInit(EdDSA)");
    CK(k->h->f->C_Sign(s, (CK_BYTE_PTR)msg, (CK_ULONG)len, sig, &n), "C_Sign(EdDSA)");
    CT_ENSURE_MSG(n == HSM_ED25519_SIG_LEN, CT_ERR_HSM, "token returned a %lu-byte Ed25519 signature", n);
cleanup:
    if (s != CK_INVALID_HANDLE) hsm_session_put(k->h, s);
    return rc;
}

void hsm_eddsa_free(hsm_eddsa_key *k)
{
    if (!k) return;
    ct_wipe(k, sizeof *k);
    free(k);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HSM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(HSM_ASAN)
/* SoftHSMv2 2.6.1 leaks 37 bytes of OpenSSL memory (an ASN.1 string it decodes and never frees) on every EdDSA
 * key generation and signature. camtrust itself never calls OpenSSL (it is wolfSSL and GnuTLS): only the token
 * module's allocations are set aside, so that the sanitizer builds keep failing on leaks of our own. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libcrypto.so\n"; }
#endif
