/* The ceremony record: a hash-chained text log, each entry signed inside the token by the root that acted. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vault_priv.h"

void vault_record_free(vault_record *r)
{
    ct_buf_free(&r->text);
    memset(r, 0, sizeof *r);
}

bool vault_entry_get(const char *line, const char *key, char *out, size_t max)
{
    size_t klen = strlen(key);
    out[0] = '\0';
    for (const char *p = line; p && *p; p = strchr(p, ' '), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) != 0 || p[klen] != '=') continue;
        const char *v = p + klen + 1, *end = strchr(v, ' ');
        size_t n = end ? (size_t)(end - v) : strlen(v);
        if (n >= max) return false;
        memcpy(out, v, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

ct_err vault_field_escape(const char *in, char *out, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = *p > 0x20 && *p < 0x7f && *p != '%';
        CT_ENSURE_RET(n + (plain ? 1 : 3) < max, ct_fail(CT_ERR_BUF_FULL, "record value too long"));
        if (plain) {
            out[n++] = (char)*p;
        } else {
            static const char hex[] = "0123456789ABCDEF";
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return CT_OK;
}

ct_err vault_record_each(const vault_record *r, vault_entry_fn fn, void *arg)
{
    char line[VAULT_ENTRY_MAX];
    size_t at = 0;
    while (at < r->text.len) {
        const uint8_t *nl = memchr(r->text.data + at, '\n', r->text.len - at);
        size_t n = nl ? (size_t)(nl - (r->text.data + at)) : r->text.len - at;
        CT_ENSURE_RET(n < sizeof line, ct_fail(CT_ERR_INTEGRITY, "ceremony record: an entry is too long"));
        memcpy(line, r->text.data + at, n);
        line[n] = '\0';
        CT_GUARD_RET(fn(line, arg));
        at += n + 1;
    }
    return CT_OK;
}

typedef struct {
    vault_cert_ref device_root, ops_root;
    size_t seq;
    uint8_t prev[32];
} verify_state;

/* One entry: its number, its link to the previous one, its signature by the root it names. */
static ct_err verify_entry(const char *line, void *arg)
{
    verify_state *v = arg;
    char want[32], prev_hex[65], value[80], root[16];
    uint8_t digest[32], sig[160];
    size_t sig_len = 0, n = ++v->seq;
    const char *sig_at = strstr(line, " sig=");
    CT_GUARD_RET(ct_snprintf(want, sizeof want, "seq=%zu ", n));
    CT_ENSURE_RET(strncmp(line, want, strlen(want)) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "ceremony record entry %zu: out of sequence (an entry deleted, added or moved)", n));
    CT_GUARD_RET(ct_hex_encode(v->prev, 32, prev_hex, sizeof prev_hex));
    CT_ENSURE_RET(vault_entry_get(line, "prev", value, sizeof value) && strcmp(value, prev_hex) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "ceremony record entry %zu: does not follow entry %zu (an entry changed, deleted or moved)",
                          n, n - 1));
    CT_ENSURE_RET(n > 1 || (vault_entry_get(line, "action", value, sizeof value) && strcmp(value, "init") == 0),
                  ct_fail(CT_ERR_INTEGRITY, "ceremony record entry 1 is not the vault's init"));
    CT_ENSURE_RET(sig_at && strchr(sig_at + 1, ' ') == NULL &&
                      ct_hex_decode(sig_at + 5, sig, sizeof sig, &sig_len) == CT_OK,
                  ct_fail(CT_ERR_INTEGRITY, "ceremony record entry %zu: no signature", n));
    bool device = vault_entry_get(line, "root", root, sizeof root) && strcmp(root, "device") == 0;
    CT_ENSURE_RET(device || strcmp(root, "ops") == 0,
                  ct_fail(CT_ERR_INTEGRITY, "ceremony record entry %zu: names no root", n));
    const vault_cert_ref *cert = device ? &v->device_root : &v->ops_root;
    CT_GUARD_RET(ct_sha256(line, (size_t)(sig_at - line), digest));
    ct_err rc = pki_cert_verify_digest(cert->der, cert->len, digest, sizeof digest, sig, sig_len);
    CT_ENSURE_RET(rc != CT_ERR_INTEGRITY, ct_fail(CT_ERR_INTEGRITY,
                                                  "ceremony record entry %zu: the %s root's signature does not verify "
                                                  "(the entry was changed)", n, root));
    CT_GUARD_RET(rc);
    return ct_sha256(line, strlen(line), v->prev);
}

ct_err vault_record_read(const char *dir, vault_cert_ref device_root, vault_cert_ref ops_root, vault_record *r)
{
    ct_err rc = CT_OK;
    char path[VAULT_PATH_MAX];
    verify_state v = {.device_root = device_root, .ops_root = ops_root};
    memset(r, 0, sizeof *r);
    CT_GUARD(ct_path_join(path, sizeof path, dir, VAULT_RECORD_FILE));
    rc = ct_file_read(path, VAULT_RECORD_MAX, &r->text);
    CT_ENSURE_MSG(rc == CT_OK, rc == CT_ERR_TOO_LARGE ? CT_ERR_INTEGRITY : CT_ERR_CONFIG,
                  "cannot read the ceremony record %s", path);
    CT_ENSURE_MSG(r->text.len > 0 && r->text.data[r->text.len - 1] == '\n', CT_ERR_INTEGRITY,
                  "ceremony record %s is empty or cut short", path);
    CT_ENSURE_MSG(memchr(r->text.data, '\0', r->text.len) == NULL, CT_ERR_INTEGRITY,
                  "ceremony record %s holds a NUL byte", path);
    CT_GUARD(vault_record_each(r, verify_entry, &v));
    r->entries = v.seq;
    memcpy(r->head, v.prev, 32);
cleanup:
    if (rc != CT_OK) vault_record_free(r);
    return rc;
}

ct_err vault_record_append(const char *dir, vault_record *r, hsm_key *signer, const char *root, const char *action,
                           const char *fields)
{
    ct_err rc = CT_OK;
    ct_buf next = CT_BUF_INIT;
    char path[VAULT_PATH_MAX], when[CT_TIME_UTC_MAX], prev_hex[65], sig_hex[2 * 160 + 1];
    uint8_t digest[32], sig[160];
    size_t sig_len = sizeof sig, entry_at;
    ct_time_utc((int64_t)time(NULL), when);
    CT_GUARD(ct_hex_encode(r->head, 32, prev_hex, sizeof prev_hex));
    CT_GUARD(ct_buf_alloc(&next, r->text.len + VAULT_ENTRY_MAX));
    CT_GUARD(ct_buf_append(&next, r->text.data, r->text.len));
    entry_at = next.len;
    CT_GUARD(ct_buf_appendf(&next, "seq=%zu time=%s action=%s root=%s %s%sprev=%s", r->entries + 1, when, action, root,
                            fields, *fields ? " " : "", prev_hex));
    CT_ENSURE_MSG(next.len - entry_at < VAULT_ENTRY_MAX - 2 * sizeof sig - 8, CT_ERR_BUF_FULL, "record entry too long");
    CT_GUARD(ct_sha256(next.data + entry_at, next.len - entry_at, digest));
    CT_GUARD(hsm_key_sign_digest(signer, digest, sizeof digest, sig, &sig_len));
    CT_GUARD(ct_hex_encode(sig, sig_len, sig_hex, sizeof sig_hex));
    CT_GUARD(ct_buf_appendf(&next, " sig=%s", sig_hex));
    CT_GUARD(ct_sha256(next.data + entry_at, next.len - entry_at, digest));
    CT_GUARD(ct_buf_append(&next, "\n", 1));
    CT_GUARD(ct_path_join(path, sizeof path, dir, VAULT_RECORD_FILE));
    CT_GUARD(ct_file_write_atomic(path, next.data, next.len, 0644));
    ct_buf_free(&r->text);
    r->text = next;
    next = (ct_buf)CT_BUF_INIT;
    r->entries++;
    memcpy(r->head, digest, 32);
cleanup:
    ct_buf_free(&next);
    return rc;
}
