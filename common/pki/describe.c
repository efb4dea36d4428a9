/* Certificates decoded for people (the officer console and CLI): wolfSSL's parse, names and usages spelt out. */
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "pki_priv.h"

/* Appends `name` to a ", "-separated list in a fixed array; fails rather than truncate. */
static ct_err list_add(char *list, size_t max, const char *name)
{
    size_t used = strlen(list);
    return ct_snprintf(list + used, max - used, "%s%s", used ? ", " : "", name);
}

struct usage_name {
    unsigned bit;
    const char *name;
};

static const struct usage_name k_key_usage[] = {
    {KEYUSE_DIGITAL_SIG, "digitalSignature"}, {KEYUSE_CONTENT_COMMIT, "nonRepudiation"},
    {KEYUSE_KEY_ENCIPHER, "keyEncipherment"}, {KEYUSE_DATA_ENCIPHER, "dataEncipherment"},
    {KEYUSE_KEY_AGREE, "keyAgreement"},       {KEYUSE_KEY_CERT_SIGN, "keyCertSign"},
    {KEYUSE_CRL_SIGN, "cRLSign"},             {KEYUSE_ENCIPHER_ONLY, "encipherOnly"},
    {KEYUSE_DECIPHER_ONLY, "decipherOnly"},
};
static const struct usage_name k_ext_key_usage[] = {
    {EXTKEYUSE_SERVER_AUTH, "serverAuth"}, {EXTKEYUSE_CLIENT_AUTH, "clientAuth"},
    {EXTKEYUSE_CODESIGN, "codeSigning"},   {EXTKEYUSE_EMAILPROT, "emailProtection"},
    {EXTKEYUSE_TIMESTAMP, "timeStamping"}, {EXTKEYUSE_OCSP_SIGN, "OCSPSigning"},
    {EXTKEYUSE_ANY, "anyExtendedKeyUsage"},
};

static ct_err usage_names(unsigned bits, const struct usage_name *names, size_t n, char *out, size_t max)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (bits & names[i].bit) CT_GUARD_RET(list_add(out, max, names[i].name));
    return CT_OK;
}

static ct_err san_names(const DNS_entry *e, char *out, size_t max)
{
    out[0] = '\0';
    for (int count = 0; e && count < 16; e = e->next, count++) {
        char item[300];
        if (e->type == ASN_DNS_TYPE && e->name)
            CT_GUARD_RET(ct_snprintf(item, sizeof item, "DNS:%.*s", e->len > 255 ? 255 : e->len, e->name));
        else if (e->type == ASN_IP_TYPE && e->ipString)
            CT_GUARD_RET(ct_snprintf(item, sizeof item, "IP:%.64s", e->ipString));
        else
            CT_GUARD_RET(ct_snprintf(item, sizeof item, "other:%d", e->type));
        CT_GUARD_RET(list_add(out, max, item));
    }
    return CT_OK;
}

ct_err pki_cert_describe(const uint8_t *der, size_t len, pki_cert_detail *out)
{
    ct_err rc = CT_OK;
    DecodedCert dc;
    bool init = false;
    CT_ENSURE(out, CT_ERR_ARG);
    memset(out, 0, sizeof *out);
    /* The checked walk first: it bounds the input and fills the facts the CA relies on. */
    CT_GUARD(pki_cert_parse_info(der, len, &out->info));
    InitDecodedCert(&dc, der, (word32)len, NULL);
    init = true;
    int ret = ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL);
    CT_ENSURE_MSG(ret == 0, CT_ERR_BAD_DER, "wolfSSL rejects the certificate: %s (%d)", wc_GetErrorString(ret), ret);
    CT_GUARD(ct_snprintf(out->subject, sizeof out->subject, "%.*s", (int)sizeof dc.subject, dc.subject));
    CT_GUARD(ct_snprintf(out->issuer, sizeof out->issuer, "%.*s", (int)sizeof dc.issuer, dc.issuer));
    if (dc.extKeyUsageSet)
        CT_GUARD(usage_names(dc.extKeyUsage, k_key_usage, sizeof k_key_usage / sizeof k_key_usage[0], out->key_usage,
                             sizeof out->key_usage));
    if (dc.extExtKeyUsageSet)
        CT_GUARD(usage_names(dc.extExtKeyUsage, k_ext_key_usage, sizeof k_ext_key_usage / sizeof k_ext_key_usage[0],
                             out->ext_key_usage, sizeof out->ext_key_usage));
    CT_GUARD(san_names(dc.altNames, out->san, sizeof out->san));
    CT_GUARD(ct_strlcpy(out->key_type, sizeof out->key_type,
                        dc.keyOID == ED25519k                    ? "Ed25519"
                        : dc.keyOID != ECDSAk                    ? "other"
                        : dc.pkCurveOID == ECC_SECP256R1_OID ? "EC P-256"
                        : dc.pkCurveOID == ECC_SECP384R1_OID ? "EC P-384"
                                                             : "EC"));
cleanup:
    if (init) FreeDecodedCert(&dc);
    return rc;
}
