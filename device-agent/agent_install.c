/* Credentials: the chains a station hands back, checked against the pinned root and the token keys, and
 * installed as one file whose rename is the whole install (a kill leaves the old state or the new one). */
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "../common/core/merkle.h"
#include "../common/note/note.h"
#include "agent_priv.h"

#define PROFILE_MARK "# profile "
#define PROOF_MARK "# log proof "          /* "# log proof NAME BASE64\n" after the chains */
#define CHECKPOINT_MARK "# log checkpoint\n" /* then the signed note, to the end of the file */
#define PROOF_MAX (8 + CT_MERKLE_MAX_PATH * CT_MERKLE_HASH_LEN)

void agent_creds_free(agent_creds *c)
{
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++) {
        for (size_t i = 0; i < AGENT_CHAIN_MAX; i++) ct_buf_free(&c->chain[p].der[i]);
        c->chain[p].n = 0;
        ct_buf_free(&c->proof[p]);
    }
    ct_buf_free(&c->checkpoint);
}

static ct_err take_once(ct_buf *b, const uint8_t *v, size_t len, size_t max, const char *what)
{
    CT_ENSURE_RET(b->len == 0 && len > 0 && len <= max,
                  ct_fail(CT_ERR_BAD_REQUEST, "%s given twice, empty or larger than %zu bytes", what, max));
    CT_GUARD_RET(ct_buf_alloc(b, len + 1));
    return ct_buf_set(b, v, len);
}

static ct_err chain_add(agent_chain *ch, agent_profile p, const uint8_t *der, size_t len)
{
    CT_ENSURE_RET(ch->n < AGENT_CHAIN_MAX, ct_fail(CT_ERR_BAD_REQUEST, "chain of profile %s has more than %d certificates",
                                                   agent_profile_name[p], AGENT_CHAIN_MAX));
    CT_ENSURE_RET(len > 0 && len <= PKI_MAX_CERT_DER,
                  ct_fail(CT_ERR_BAD_REQUEST, "certificate of %zu bytes in profile %s", len, agent_profile_name[p]));
    ct_buf *b = &ch->der[ch->n];
    CT_GUARD_RET(ct_buf_alloc(b, len));
    CT_GUARD_RET(ct_buf_append(b, der, len));
    ch->n++;
    return CT_OK;
}

static ct_err creds_complete(const agent_creds *c)
{
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++)
        CT_ENSURE_RET(c->chain[p].n > 0,
                      ct_fail(CT_ERR_BAD_REQUEST, "no certificate chain for profile %s", agent_profile_name[p]));
    return CT_OK;
}

ct_err agent_creds_from_msg(const factory_msg *m, agent_creds *c)
{
    ct_err rc = CT_OK;
    size_t off = 0;
    factory_field f = {0};
    int cur = -1;
    memset(c, 0, sizeof *c);
    CT_ENSURE_MSG(m->type == FACTORY_INSTALL, CT_ERR_BAD_REQUEST, "not an INSTALL message");
    while ((rc = factory_msg_next(m, &off, &f)) == CT_OK) {
        if (f.tag == FACTORY_TAG_PROFILE) {
            agent_profile p;
            CT_GUARD(agent_profile_parse(f.value, f.len, &p));
            CT_ENSURE_MSG(c->chain[p].n == 0, CT_ERR_BAD_REQUEST, "profile %s given twice", agent_profile_name[p]);
            cur = (int)p;
        } else if (f.tag == FACTORY_TAG_CERT) {
            CT_ENSURE_MSG(cur >= 0, CT_ERR_BAD_REQUEST, "certificate before any profile");
            CT_GUARD(chain_add(&c->chain[cur], (agent_profile)cur, f.value, f.len));
        } else if (f.tag == FACTORY_TAG_LOG_PROOF) {
            CT_ENSURE_MSG(cur >= 0, CT_ERR_BAD_REQUEST, "log proof before any profile");
            CT_GUARD(take_once(&c->proof[cur], f.value, f.len, PROOF_MAX, "a log proof"));
        } else if (f.tag == FACTORY_TAG_CHECKPOINT) {
            CT_GUARD(take_once(&c->checkpoint, f.value, f.len, CT_NOTE_MAX, "the log checkpoint"));
        }
    }
    CT_ENSURE(rc == CT_ERR_NOT_FOUND, rc);
    rc = creds_complete(c);
cleanup:
    if (rc != CT_OK) agent_creds_free(c);
    return rc;
}

/* The part of `text` after "# profile NAME" up to the next profile mark. */
static ct_err pem_section(const ct_buf *text, agent_profile p, const uint8_t **start, size_t *len)
{
    char mark[64];
    CT_GUARD_RET(ct_snprintf(mark, sizeof mark, PROFILE_MARK "%s\n", agent_profile_name[p]));
    const uint8_t *s = ct_mem_find(text->data, text->len, mark);
    CT_ENSURE_RET(s, ct_fail(CT_ERR_INTEGRITY, "credentials have no profile %s", agent_profile_name[p]));
    s += strlen(mark);
    size_t rest = text->len - (size_t)(s - text->data);
    const uint8_t *e = ct_mem_find(s, rest, PROFILE_MARK);
    *start = s;
    *len = e ? (size_t)(e - s) : rest;
    return CT_OK;
}

/* The log proofs and checkpoint kept after the chains, when there are any. */
static ct_err log_load(const ct_buf *text, agent_creds *c)
{
    const uint8_t *cp = ct_mem_find(text->data, text->len, CHECKPOINT_MARK);
    if (!cp) return CT_OK;
    size_t note_off = (size_t)(cp - text->data) + strlen(CHECKPOINT_MARK);
    CT_GUARD_RET(take_once(&c->checkpoint, text->data + note_off, text->len - note_off, CT_NOTE_MAX, "the log checkpoint"));
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++) {
        char mark[64];
        CT_GUARD_RET(ct_snprintf(mark, sizeof mark, PROOF_MARK "%s ", agent_profile_name[p]));
        const uint8_t *s = ct_mem_find(text->data, (size_t)(cp - text->data), mark);
        if (!s) continue; /* agent_log_verify names what is missing */
        s += strlen(mark);
        const uint8_t *e = memchr(s, '\n', (size_t)(cp - s));
        CT_ENSURE_RET(e, ct_fail(CT_ERR_INTEGRITY, "credentials: log proof of %s is cut short", agent_profile_name[p]));
        CT_GUARD_RET(ct_buf_alloc(&c->proof[p], PROOF_MAX + 3));
        CT_ENSURE_RET(ct_base64_decode(s, (size_t)(e - s), &c->proof[p]) == CT_OK,
                      ct_fail(CT_ERR_INTEGRITY, "credentials: log proof of %s is not base64", agent_profile_name[p]));
    }
    return CT_OK;
}

ct_err agent_creds_load(const agent *a, agent_creds *c)
{
    ct_err rc = CT_OK;
    ct_buf text = CT_BUF_INIT, der = CT_BUF_INIT;
    char path[AGENT_PATH_MAX];
    memset(c, 0, sizeof *c);
    CT_GUARD(agent_path(a, AGENT_CREDS_FILE, path, sizeof path));
    CT_GUARD(ct_file_read(path, AGENT_CREDS_MAX, &text));
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CERT_DER));
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++) {
        const uint8_t *s = NULL;
        size_t n = 0;
        CT_GUARD(pem_section(&text, (agent_profile)p, &s, &n));
        for (size_t i = 0;; i++) {
            rc = ct_pem_decode(s, n, "CERTIFICATE", i, &der);
            if (rc == CT_ERR_NOT_FOUND) break;
            CT_GUARD(rc);
            CT_GUARD(chain_add(&c->chain[p], (agent_profile)p, der.data, der.len));
        }
    }
    CT_GUARD(log_load(&text, c));
    rc = creds_complete(c);
cleanup:
    if (rc != CT_OK) agent_creds_free(c);
    ct_buf_free(&text);
    ct_buf_free(&der);
    return rc;
}

ct_err agent_chain_pem(const agent_chain *ch, ct_buf *pem)
{
    for (size_t i = 0; i < ch->n; i++) CT_GUARD_RET(ct_pem_encode("CERTIFICATE", ch->der[i].data, ch->der[i].len, pem));
    return CT_OK;
}

static ct_err creds_pem(const agent_creds *c, ct_buf *out)
{
    CT_GUARD_RET(ct_buf_appendf(out, "# camtrust camera credentials: one chain per profile, leaf first\n"));
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++) {
        CT_GUARD_RET(ct_buf_appendf(out, PROFILE_MARK "%s\n", agent_profile_name[p]));
        CT_GUARD_RET(agent_chain_pem(&c->chain[p], out));
    }
    if (c->checkpoint.len == 0) return CT_OK;
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++) {
        CT_GUARD_RET(ct_buf_appendf(out, PROOF_MARK "%s ", agent_profile_name[p]));
        CT_GUARD_RET(ct_base64_encode(c->proof[p].data, c->proof[p].len, false, out));
        CT_GUARD_RET(ct_buf_append(out, "\n", 1));
    }
    CT_GUARD_RET(ct_buf_appendf(out, CHECKPOINT_MARK));
    return ct_buf_append(out, c->checkpoint.data, c->checkpoint.len);
}

/* Does the leaf's public key belong to the profile's token key? */
static ct_err key_matches(agent *a, agent_profile p, const pki_cert_info *leaf)
{
    ct_err rc = CT_OK;
    hsm_key *k = NULL;
    ct_buf spki = CT_BUF_INIT;
    uint8_t h[32];
    rc = agent_key_get(a, p, false, &k);
    CT_ENSURE_MSG(rc != CT_ERR_HSM_NO_KEY, CT_ERR_INTEGRITY, "no %s key in the token", agent_key_label[p]);
    CT_GUARD(rc);
    CT_GUARD(ct_buf_alloc(&spki, 1024));
    CT_GUARD(hsm_key_public_der(k, &spki));
    CT_GUARD(ct_sha256(spki.data, spki.len, h));
    CT_ENSURE_MSG(memcmp(h, leaf->spki_sha256, sizeof h) == 0, CT_ERR_INTEGRITY,
                  "profile %s: the certificate is for another key than the token's %s key", agent_profile_name[p],
                  agent_key_label[p]);
cleanup:
    hsm_key_free(k);
    ct_buf_free(&spki);
    return rc;
}

/* wolfSSL's fixed-point cache builds a 256-point table for a point on its second use (some 20 ms of generic math
 * here, and 0.8 MB of heap each): the handful of signatures checked at install and boot would pay it for G and the
 * root's key and never profit. Emptied first, no point reaches a second use. This thread's cache only. */
static ct_err verify_uncached(const uint8_t *cert, size_t cert_len, const uint8_t *issuer, size_t issuer_len,
                              time_t now)
{
    wc_ecc_fp_free();
    return pki_cert_verify_signed_by(cert, cert_len, issuer, issuer_len, now);
}

/* One hop: `cert` signed by `issuer` and valid at `now`, with the reason kept readable. */
static ct_err hop_verify(agent_profile p, size_t i, const ct_buf *cert, const uint8_t *issuer, size_t issuer_len,
                         const char *issuer_name, time_t now)
{
    ct_err rc = verify_uncached(cert->data, cert->len, issuer, issuer_len, now);
    if (rc == CT_OK) return CT_OK;
    char why[AGENT_REASON_MAX];
    if (ct_strlcpy(why, sizeof why, ct_err_detail()) != CT_OK) why[0] = '\0';
    return ct_fail(CT_ERR_INTEGRITY, "profile %s: certificate %zu is not valid under %s (%s)", agent_profile_name[p],
                   i + 1, issuer_name, why);
}

static ct_err chain_verify(agent *a, agent_profile p, const agent_chain *ch, time_t now, pki_cert_info *leaf)
{
    pki_cert_info info;
    size_t n = ch->n;
    CT_ENSURE_RET(n > 0, ct_fail(CT_ERR_BAD_REQUEST, "empty chain for profile %s", agent_profile_name[p]));
    /* A chain may end with the root itself; the anchor is always the pinned copy. */
    if (n > 1 && ch->der[n - 1].len == a->root_der.len &&
        memcmp(ch->der[n - 1].data, a->root_der.data, a->root_der.len) == 0)
        n--;
    for (size_t i = 0; i < n; i++) {
        ct_err rc = pki_cert_parse_info(ch->der[i].data, ch->der[i].len, i == 0 ? leaf : &info);
        if (rc != CT_OK) return ct_fail(rc, "profile %s: certificate %zu is malformed", agent_profile_name[p], i + 1);
        /* An issuer: a CA allowed to sign certificates, its pathLen leaving room for the i - 1 CAs under it (what
         * a TLS client checks too: a chain through a CA that the issuing CA may not make would be installed, and
         * every client would refuse it). */
        CT_ENSURE_RET(i == 0 || (info.is_ca && (info.key_usage & PKI_KU_KEY_CERT_SIGN) &&
                                 (info.path_len < 0 || (size_t)info.path_len >= i - 1)),
                      ct_fail(CT_ERR_INTEGRITY, "profile %s: certificate %zu is not a CA for this chain",
                              agent_profile_name[p], i + 1));
        if (i + 1 < n)
            CT_GUARD_RET(hop_verify(p, i, &ch->der[i], ch->der[i + 1].data, ch->der[i + 1].len, "the next one", now));
        else
            CT_GUARD_RET(hop_verify(p, i, &ch->der[i], a->root_der.data, a->root_der.len, "the pinned device root", now));
    }
    /* Both keys sign (TLS 1.3 handshakes, video): a leaf whose keyUsage says otherwise is refused by its verifiers. */
    CT_ENSURE_RET(!leaf->is_ca && (leaf->key_usage & PKI_KU_DIGITAL_SIGNATURE),
                  ct_fail(CT_ERR_INTEGRITY, "profile %s: the leaf is a CA or may not sign", agent_profile_name[p]));
    CT_ENSURE_RET(strcmp(leaf->subject_serial, a->serial) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "profile %s: certificate is for serial '%s', this camera is '%s'",
                          agent_profile_name[p], leaf->subject_serial, a->serial));
    return key_matches(a, p, leaf);
}

ct_err agent_creds_verify(agent *a, const agent_creds *c, time_t now, pki_cert_info *device_leaf)
{
    pki_cert_info leaf;
    /* The root can expire too: then nothing under it verifies. */
    ct_err rc = verify_uncached(a->root_der.data, a->root_der.len, a->root_der.data, a->root_der.len, now);
    CT_ENSURE_RET(rc == CT_OK, ct_fail(CT_ERR_INTEGRITY, "the pinned device root is not valid now"));
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++) {
        CT_GUARD_RET(chain_verify(a, (agent_profile)p, &c->chain[p], now, &leaf));
        if (p == AGENT_PROFILE_DEVICE) *device_leaf = leaf;
    }
    return agent_log_verify(a, c);
}

ct_err agent_install(agent *a, const factory_msg *install)
{
    ct_err rc = CT_OK;
    agent_creds c;
    ct_buf text = CT_BUF_INIT;
    pki_cert_info leaf;
    char path[AGENT_PATH_MAX];
    memset(&c, 0, sizeof c);
    CT_ENSURE_MSG(!agent_locked(a), CT_ERR_EXISTS, "locked: this camera is provisioned (factory reset first)");
    CT_GUARD(agent_creds_from_msg(install, &c));
    CT_GUARD(agent_creds_verify(a, &c, time(NULL), &leaf));
    CT_GUARD(ct_buf_alloc(&text, AGENT_CREDS_MAX));
    CT_GUARD(creds_pem(&c, &text));
    CT_GUARD(agent_path(a, AGENT_CREDS_FILE, path, sizeof path));
    ct_failpoint("install:verified");
    CT_GUARD(ct_file_write_atomic(path, text.data, text.len, 0644));
    ct_failpoint("install:written");
    ct_log(CT_LOG_INFO, "installed", "serial=%s identity=%s", a->serial, CT_LOGQ(leaf.subject_cn));
cleanup:
    agent_creds_free(&c);
    ct_buf_free(&text);
    return rc;
}
