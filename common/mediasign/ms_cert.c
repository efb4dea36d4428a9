/* The chain an SEI carries: verified once up to the root, then judged at each GOP's recording time; the
 * leaf's key for the SEI signatures; revocation from a CRL of the issuing CA (pki_crl_check). */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "ms_priv.h"

static ct_err key_from_cert(const uint8_t *der, size_t len, ecc_key *key)
{
    const uint8_t *spki;
    size_t spki_len;
    word32 idx = 0;
    CT_GUARD_RET(pki_cert_spki(der, len, &spki, &spki_len));
    CT_ENSURE_RET(wc_ecc_init(key) == 0, CT_ERR_CRYPTO);
    if (wc_EccPublicKeyDecode(spki, &idx, key, (word32)spki_len) != 0) {
        wc_ecc_free(key);
        return ct_fail(CT_ERR_WEAK_KEY, "the signing certificate's key is not an EC key wolfSSL reads");
    }
    return CT_OK;
}

static bool verify_digest(ecc_key *key, const uint8_t *digest, size_t dlen, const uint8_t *sig, size_t sig_len)
{
    int ok = 0;
    return wc_ecc_verify_hash(sig, (word32)sig_len, digest, (word32)dlen, &ok, key) == 0 && ok == 1;
}


/* Looks for the leaf in the CRL (which must be signed by `issuer`). Findings in c->revocation. */
static ct_err crl_check(const ms_verify_config *cfg, const ct_buf *leaf, const uint8_t *issuer, size_t issuer_len,
                        ms_chain *c)
{
    pki_crl_status st;
    char when[CT_TIME_UTC_MAX];
    ct_err rc = pki_crl_check(cfg->crl_der, cfg->crl_len, issuer, issuer_len, leaf->data, leaf->len, &st);
    if (rc == CT_ERR_NOT_FOUND) {
        ct_err_clear();
        return ct_snprintf(c->revocation, sizeof c->revocation, "not checked: the CRL is not from the signing "
                                                               "certificate's issuer");
    }
    CT_GUARD_RET(rc);
    int reason = -1; /* read before the CRL counts as applied: one that cannot say why is unusable */
    if (st.revoked)
        CT_GUARD_RET(pki_crl_reason(cfg->crl_der, cfg->crl_len, issuer, issuer_len, leaf->data, leaf->len, &reason));
    c->crl_applied = true;
    c->revoked = st.revoked;
    c->revoked_at = st.revoked_at;
    ct_time_utc((int64_t)(st.revoked ? st.revoked_at : st.this_update), when);
    if (!st.revoked) return ct_snprintf(c->revocation, sizeof c->revocation, "not revoked (CRL of %s)", when);
    if (reason != PKI_REASON_KEY_COMPROMISE && reason != PKI_REASON_CA_COMPROMISE)
        return ct_snprintf(c->revocation, sizeof c->revocation, "revoked at %s", when);
    /* Whoever holds a compromised key signs with any timestamp: a recording dated before the revocation is no
     * more trustworthy than one after it. */
    c->revoked_at = 0;
    return ct_snprintf(c->revocation, sizeof c->revocation, "revoked for %s at %s", pki_reason_name(reason), when);
}

/* The issuing CA in the root's CRL: revoked by a ceremony, nothing it signed is trusted, whenever it was made (the
 * key may have been misused long before the revocation). */
static ct_err issuer_crl_check(const ms_verify_config *cfg, const ct_buf *issuing, ms_chain *c)
{
    pki_crl_status st;
    char when[CT_TIME_UTC_MAX];
    ct_err rc = pki_crl_check(cfg->crl_der, cfg->crl_len, cfg->root_der, cfg->root_len, issuing->data, issuing->len, &st);
    if (rc == CT_ERR_NOT_FOUND) {
        ct_err_clear();
        return CT_OK; /* neither the issuer's nor the root's CRL: "not checked" stands */
    }
    CT_GUARD_RET(rc);
    c->crl_applied = true;
    c->revoked = st.revoked;
    c->revoked_at = 0;
    ct_time_utc((int64_t)(st.revoked ? st.revoked_at : st.this_update), when);
    return st.revoked ? ct_snprintf(c->revocation, sizeof c->revocation, "revoked with its issuing CA (by the root at %s)",
                                    when)
                      : ct_snprintf(c->revocation, sizeof c->revocation, "issuing CA not revoked (root's CRL of %s)",
                                    when);
}

void ms_chain_clear(ms_chain *c)
{
    if (c->key_ok) wc_ecc_free(&c->key);
    memset(c, 0, sizeof *c);
}

static void chain_fail(ms_chain *c, const char *what, const char *detail)
{
    if (ct_snprintf(c->why, sizeof c->why, "%s: %s", what, detail) != CT_OK) c->why[0] = '\0';
    c->ok = false;
}

/* One hop, recording the intersection of validity periods. */
static ct_err hop(ms_chain *c, const ct_buf *cert, const uint8_t *issuer, size_t issuer_len, size_t i)
{
    pki_cert_info ci, ii;
    CT_GUARD_RET(pki_cert_parse_info(cert->data, cert->len, &ci));
    CT_GUARD_RET(pki_cert_parse_info(issuer, issuer_len, &ii));
    if (ci.not_before > c->not_before) c->not_before = ci.not_before;
    if (ci.not_after < c->not_after) c->not_after = ci.not_after;
    if (ii.not_before > c->not_before) c->not_before = ii.not_before;
    if (ii.not_after < c->not_after) c->not_after = ii.not_after;
    CT_ENSURE_RET(c->not_before <= c->not_after,
                  ct_fail(CT_ERR_INTEGRITY, "the validity periods of the chain do not overlap"));
    /* Signatures and names are checked once, inside the common validity period; each GOP's time later. */
    ct_err rc = pki_cert_verify_signed_by(cert->data, cert->len, issuer, issuer_len, c->not_before);
    if (rc == CT_OK) return CT_OK;
    char why[160]; /* the detail is rewritten by ct_fail: keep a copy */
    if (ct_strlcpy(why, sizeof why, ct_err_detail()) != CT_OK) why[0] = '\0';
    return ct_fail(rc, "certificate %zu of the chain: %s", i + 1, why);
}

static ct_err chain_certs(const uint8_t *pem, size_t len, ct_buf *der, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i <= MS_MAX_CHAIN; i++) {
        ct_buf tmp = CT_BUF_INIT;
        CT_GUARD_RET(ct_buf_alloc(&tmp, PKI_MAX_CERT_DER));
        ct_err rc = ct_pem_decode(pem, len, "CERTIFICATE", i, &tmp);
        if (rc == CT_ERR_NOT_FOUND) {
            ct_buf_free(&tmp);
            return *n > 0 ? CT_OK : ct_fail(CT_ERR_BAD_REQUEST, "the certificate TLV holds no certificate");
        }
        if (rc == CT_OK && i == MS_MAX_CHAIN) rc = ct_fail(CT_ERR_BAD_REQUEST, "more than %d certificates", MS_MAX_CHAIN);
        if (rc != CT_OK) {
            ct_buf_free(&tmp);
            return rc;
        }
        der[(*n)++] = tmp;
    }
    return CT_OK;
}

ct_err ms_chain_eval(const ms_verify_config *cfg, const uint8_t *pem, size_t len, ms_chain *c)
{
    ct_err rc = CT_OK;
    ct_buf der[MS_MAX_CHAIN + 1];
    size_t n = 0;
    memset(der, 0, sizeof der);
    ms_chain_clear(c);
    c->set = true;
    c->not_before = 0;
    c->not_after = (time_t)PKI_NOT_AFTER_FOREVER;
    CT_GUARD(ct_sha256(pem, len, c->id));
    CT_GUARD(ct_snprintf(c->revocation, sizeof c->revocation, "not checked (no CRL given)"));
    rc = chain_certs(pem, len, der, &n);
    if (rc == CT_ERR_NOMEM) goto cleanup;
    if (rc != CT_OK) {
        chain_fail(c, "unreadable certificate chain", ct_err_detail());
        rc = CT_OK;
        goto cleanup;
    }
    /* The leaf's key first: a signature can be checked even when its chain is not trusted. */
    rc = key_from_cert(der[0].data, der[0].len, &c->key);
    if (rc == CT_ERR_NOMEM) goto cleanup;
    c->key_ok = rc == CT_OK;
    rc = CT_OK;
    /* The chain must not hold the root (the format says so), but tolerate it. */
    if (n > 1 && der[n - 1].len == cfg->root_len && memcmp(der[n - 1].data, cfg->root_der, cfg->root_len) == 0) n--;
    for (size_t i = 0; i < n && rc == CT_OK; i++)
        rc = i + 1 < n ? hop(c, &der[i], der[i + 1].data, der[i + 1].len, i)
                       : hop(c, &der[i], cfg->root_der, cfg->root_len, i);
    if (rc == CT_OK) rc = pki_cert_parse_info(der[0].data, der[0].len, &c->leaf);
    if (rc == CT_OK && !c->key_ok) rc = ct_fail(CT_ERR_WEAK_KEY, "the signing certificate's key is unreadable");
    if (rc == CT_ERR_NOMEM) goto cleanup;
    if (rc != CT_OK) {
        chain_fail(c, "the chain does not verify to the root", ct_err_detail());
        rc = CT_OK;
        goto cleanup;
    }
    c->ok = true;
    if (cfg->crl_der) {
        rc = crl_check(cfg, &der[0], n > 1 ? der[1].data : cfg->root_der, n > 1 ? der[1].len : cfg->root_len, c);
        /* Not the leaf's issuer's CRL: it may be the root's (the roots' CRLs list revoked issuing CAs). */
        if (rc == CT_OK && n > 1 && !c->revoked && strncmp(c->revocation, "not checked", 11) == 0)
            rc = issuer_crl_check(cfg, &der[n - 1], c);
        if (rc == CT_ERR_NOMEM) goto cleanup;
        if (rc != CT_OK && ct_snprintf(c->revocation, sizeof c->revocation, "CRL unusable: %s", ct_err_detail()) != CT_OK)
            c->revocation[0] = '\0';
        rc = CT_OK;
    }
cleanup:
    for (size_t i = 0; i <= MS_MAX_CHAIN; i++) ct_buf_free(&der[i]);
    return rc;
}

ms_status ms_chain_at(const ms_chain *c, time_t t, char *why, size_t max)
{
    char a[CT_TIME_UTC_MAX], b[CT_TIME_UTC_MAX];
    ct_err rc = CT_OK;
    if (!c->ok) rc = ct_snprintf(why, max, "%s", c->why);
    else if (t < c->not_before || t > c->not_after) {
        ct_time_utc((int64_t)c->not_before, a);
        ct_time_utc((int64_t)c->not_after, b);
        rc = ct_snprintf(why, max, "the chain is valid from %s to %s, not at the recording time", a, b);
    } else if (c->revoked && c->revoked_at <= t) {
        /* revoked_at 0: a revocation that reaches back (its key or its CA compromised), whatever the SEI's date */
        rc = ct_snprintf(why, max, "the signing certificate was %s, %s", c->revocation,
                         c->revoked_at ? "before this recording"
                                       : "so nothing it signed is trusted, whatever its date");
    } else {
        return MS_AUTHENTIC;
    }
    if (rc != CT_OK && max) why[0] = '\0';
    return MS_UNTRUSTED;
}

bool ms_chain_verify(ms_chain *c, const uint8_t digest[MS_HASH_LEN], const uint8_t *sig, size_t sig_len)
{
    return c->key_ok && verify_digest(&c->key, digest, MS_HASH_LEN, sig, sig_len);
}

ct_err ms_chain_trusted(const ms_verify_config *cfg, const uint8_t *pem, size_t len, time_t at, bool *trusted,
                        char *why, size_t max)
{
    ms_chain c;
    ct_err rc = CT_OK;
    memset(&c, 0, sizeof c);
    *trusted = false;
    CT_GUARD(ms_chain_eval(cfg, pem, len, &c));
    if (c.ok && c.revoked && c.revoked_at <= at) { /* in this wording, not that of a recording's */
        CT_GUARD(ct_snprintf(why, max, "%s", c.revocation));
    } else if (ms_chain_at(&c, at, why, max) == MS_AUTHENTIC) {
        /* Asked to check revocation with a CRL that is neither the issuer's nor the root's: not trusted. */
        *trusted = !cfg->crl_der || c.crl_applied;
        if (!*trusted) CT_GUARD(ct_snprintf(why, max, "revocation %s", c.revocation));
    }
cleanup:
    ms_chain_clear(&c);
    return rc;
}
