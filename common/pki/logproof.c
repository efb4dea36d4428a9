/* The issuance log seen from outside the CA: signed tree heads (signed inside the token, checked with the log
 * certificate) and the inclusion proof a camera keeps for its own certificate (DER, see pki.h), checked offline. */
#define _POSIX_C_SOURCE 200809L
#include "pki_priv.h"

#include <string.h>

#define LOG_PROOF_VERSION 1

ct_err pki_cert_verify_digest(const uint8_t *cert, size_t cert_len, const uint8_t *digest, size_t digest_len,
                              const uint8_t *sig, size_t sig_len)
{
    const uint8_t *spki = NULL;
    size_t spki_len = 0;
    word32 idx = 0;
    ecc_key key;
    int ok = 0;
    CT_GUARD_RET(pki_cert_spki(cert, cert_len, &spki, &spki_len));
    CT_ENSURE_RET(wc_ecc_init(&key) == 0, ct_fail(CT_ERR_CRYPTO, "wolfSSL ECC does not start"));
    int ret = wc_EccPublicKeyDecode(spki, &idx, &key, (word32)spki_len);
    if (ret == 0) ret = wc_ecc_verify_hash(sig, (word32)sig_len, digest, (word32)digest_len, &ok, &key);
    wc_ecc_free(&key);
    CT_ENSURE_RET(ret == 0 && ok == 1, ct_fail(CT_ERR_INTEGRITY, "signature does not verify with the certificate's key"));
    return CT_OK;
}

static ct_err tree_head_digest(const ct_tree_head *h, uint8_t digest[32])
{
    uint8_t tbs[CT_TREE_HEAD_TBS_LEN];
    ct_tree_head_tbs(h, tbs);
    return ct_sha256(tbs, sizeof tbs, digest);
}

ct_err pki_tree_head_sign(hsm_key *log_key, ct_tree_head *h)
{
    uint8_t digest[32];
    CT_ENSURE_RET(hsm_key_get_type(log_key) == HSM_EC_P256, ct_fail(CT_ERR_CONFIG, "the log key must be EC P-256"));
    CT_GUARD_RET(tree_head_digest(h, digest));
    h->sig_len = sizeof h->sig;
    return hsm_key_sign_digest(log_key, digest, sizeof digest, h->sig, &h->sig_len);
}

ct_err pki_tree_head_verify(const uint8_t *log_cert, size_t log_cert_len, const ct_tree_head *h)
{
    uint8_t digest[32];
    CT_GUARD_RET(tree_head_digest(h, digest));
    CT_ENSURE_RET(h->sig_len > 0 && h->sig_len <= sizeof h->sig, ct_fail(CT_ERR_INTEGRITY, "tree head without a signature"));
    ct_err rc = pki_cert_verify_digest(log_cert, log_cert_len, digest, sizeof digest, h->sig, h->sig_len);
    return rc == CT_ERR_INTEGRITY ? ct_fail(rc, "tree head signature does not verify with the log key") : rc;
}

/* ---- the proof file ---- */

static ct_err put_u64(ct_buf *b, uint64_t v)
{
    uint8_t mag[8];
    for (int i = 7; i >= 0; i--, v >>= 8) mag[i] = (uint8_t)v;
    return pki_der_put_uint(b, mag, sizeof mag);
}

static ct_err get_u64(pki_der *in, const char *what, uint64_t *out)
{
    pki_tlv t;
    CT_GUARD_RET(pki_der_expect(in, PKI_TAG_INTEGER, what, &t));
    const uint8_t *p = t.val;
    size_t n = t.val_len;
    CT_ENSURE_RET(n > 0 && !(p[0] & 0x80), ct_fail(CT_ERR_BAD_DER, "%s is not a non-negative INTEGER", what));
    if (n > 1 && p[0] == 0) p++, n--;
    CT_ENSURE_RET(n <= 8, ct_fail(CT_ERR_BAD_DER, "%s does not fit 64 bits", what));
    *out = 0;
    for (size_t i = 0; i < n; i++) *out = *out << 8 | p[i];
    return CT_OK;
}

static ct_err get_octets(pki_der *in, const char *what, size_t min, size_t max, pki_tlv *t)
{
    CT_GUARD_RET(pki_der_expect(in, PKI_TAG_OCTET_STRING, what, t));
    CT_ENSURE_RET(t->val_len >= min && t->val_len <= max,
                  ct_fail(CT_ERR_BAD_DER, "%s of %zu bytes (%zu..%zu expected)", what, t->val_len, min, max));
    return CT_OK;
}

ct_err pki_log_proof_encode(const pki_log_proof *p, ct_buf *der)
{
    ct_err rc = CT_OK;
    CT_ENSURE_MSG(p->cert && p->cert_len && p->path_len <= CT_MERKLE_MAX_PATH, CT_ERR_ARG, "incomplete log proof");
    CT_GUARD(ct_buf_alloc(der, p->cert_len + (CT_MERKLE_MAX_PATH + 4) * 40 + CT_TREE_HEAD_SIG_MAX + 64));
    static const uint8_t version = LOG_PROOF_VERSION;
    CT_GUARD(pki_der_put_uint(der, &version, 1));
    CT_GUARD(pki_der_put(der, PKI_TAG_OCTET_STRING, p->cert, p->cert_len));
    CT_GUARD(put_u64(der, p->leaf_index));
    size_t head = der->len;
    CT_GUARD(put_u64(der, p->head.tree_size));
    CT_GUARD(put_u64(der, p->head.timestamp_ms));
    CT_GUARD(pki_der_put(der, PKI_TAG_OCTET_STRING, p->head.root, CT_MERKLE_HASH_LEN));
    CT_GUARD(pki_der_put(der, PKI_TAG_OCTET_STRING, p->head.sig, p->head.sig_len));
    CT_GUARD(pki_der_wrap(der, head, PKI_TAG_SEQUENCE));
    size_t path = der->len;
    for (size_t i = 0; i < p->path_len; i++) CT_GUARD(pki_der_put(der, PKI_TAG_OCTET_STRING, p->path[i], CT_MERKLE_HASH_LEN));
    CT_GUARD(pki_der_wrap(der, path, PKI_TAG_SEQUENCE));
    CT_GUARD(pki_der_wrap(der, 0, PKI_TAG_SEQUENCE));
cleanup:
    if (rc != CT_OK) ct_buf_free(der);
    return rc;
}

ct_err pki_log_proof_parse(const uint8_t *der, size_t len, pki_log_proof *p)
{
    pki_der in = pki_der_span(der, len), body, head, path;
    pki_tlv t;
    uint64_t version = 0;
    memset(p, 0, sizeof *p);
    CT_ENSURE_RET(len <= PKI_LOG_PROOF_MAX, ct_fail(CT_ERR_TOO_LARGE, "log proof of %zu bytes", len));
    CT_GUARD_RET(pki_der_expect(&in, PKI_TAG_SEQUENCE, "log proof", &t));
    CT_GUARD_RET(pki_der_end(&in, "log proof"));
    body = pki_der_inside(&t);
    CT_GUARD_RET(get_u64(&body, "log proof version", &version));
    CT_ENSURE_RET(version == LOG_PROOF_VERSION, ct_fail(CT_ERR_BAD_DER, "log proof version %llu", (unsigned long long)version));
    CT_GUARD_RET(get_octets(&body, "certificate", 1, PKI_MAX_CERT_DER, &t));
    p->cert = t.val, p->cert_len = t.val_len;
    CT_GUARD_RET(get_u64(&body, "leaf index", &p->leaf_index));
    CT_GUARD_RET(pki_der_expect(&body, PKI_TAG_SEQUENCE, "tree head", &t));
    head = pki_der_inside(&t);
    CT_GUARD_RET(get_u64(&head, "tree size", &p->head.tree_size));
    CT_GUARD_RET(get_u64(&head, "timestamp", &p->head.timestamp_ms));
    CT_GUARD_RET(get_octets(&head, "root hash", CT_MERKLE_HASH_LEN, CT_MERKLE_HASH_LEN, &t));
    memcpy(p->head.root, t.val, CT_MERKLE_HASH_LEN);
    CT_GUARD_RET(get_octets(&head, "tree head signature", 1, CT_TREE_HEAD_SIG_MAX, &t));
    memcpy(p->head.sig, t.val, t.val_len);
    p->head.sig_len = t.val_len;
    CT_GUARD_RET(pki_der_end(&head, "tree head"));
    CT_GUARD_RET(pki_der_expect(&body, PKI_TAG_SEQUENCE, "audit path", &t));
    path = pki_der_inside(&t);
    while (path.len > 0) {
        CT_ENSURE_RET(p->path_len < CT_MERKLE_MAX_PATH, ct_fail(CT_ERR_BAD_DER, "audit path longer than %d", CT_MERKLE_MAX_PATH));
        CT_GUARD_RET(get_octets(&path, "audit path hash", CT_MERKLE_HASH_LEN, CT_MERKLE_HASH_LEN, &t));
        memcpy(p->path[p->path_len++], t.val, CT_MERKLE_HASH_LEN);
    }
    return pki_der_end(&body, "log proof");
}

ct_err pki_log_proof_verify(const uint8_t *der, size_t len, const uint8_t *log_cert, size_t log_cert_len,
                            pki_log_proof *p)
{
    uint8_t leaf[CT_MERKLE_HASH_LEN];
    CT_GUARD_RET(pki_log_proof_parse(der, len, p));
    CT_GUARD_RET(ct_merkle_leaf_hash(p->cert, p->cert_len, leaf));
    CT_ENSURE_RET(ct_merkle_verify_inclusion(leaf, p->leaf_index, p->head.tree_size, (const ct_merkle_hash *)p->path,
                                             p->path_len, p->head.root),
                  ct_fail(CT_ERR_INTEGRITY, "the audit path does not lead from leaf %llu to the root of the tree head "
                                            "(size %llu)", (unsigned long long)p->leaf_index,
                          (unsigned long long)p->head.tree_size));
    return pki_tree_head_verify(log_cert, log_cert_len, &p->head);
}
