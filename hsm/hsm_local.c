/* A component's own token: settings, first-run creation with PIN files, opening. */
#define _POSIX_C_SOURCE 200809L
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "hsm.h"

ct_err hsm_settings_read(const ct_settings_schema *schema, const ct_config *cfg, const char *dir, const char *pin_env,
                         hsm_settings *out)
{
    memset(out, 0, sizeof *out);
    CT_GUARD_RET(ct_settings_copy(schema, cfg, "hsm.module", out->module, sizeof out->module));
    CT_GUARD_RET(ct_settings_copy(schema, cfg, "hsm.token", out->token, sizeof out->token));
    CT_GUARD_RET(ct_settings_copy_path(schema, cfg, "hsm.pin_file", dir, out->pin_file, sizeof out->pin_file));
    CT_GUARD_RET(ct_settings_copy_path(schema, cfg, "hsm.softhsm_conf", dir, out->softhsm_conf, sizeof out->softhsm_conf));
    CT_GUARD_RET(ct_strlcpy(out->pin_env, sizeof out->pin_env, pin_env));
    CT_GUARD_RET(ct_config_get_int(cfg, "hsm.sessions", 4, 1, 64, &out->sessions));
    /* SoftHSM finds its token store through the environment only. */
    if (*out->softhsm_conf && setenv("SOFTHSM2_CONF", out->softhsm_conf, 1) != 0)
        return ct_fail(CT_ERR_CONFIG, "cannot set SOFTHSM2_CONF");
    return CT_OK;
}

static ct_err write_softhsm_conf(const hsm_settings *s, const char *dir)
{
    char tokens[HSM_PATH_MAX], text[HSM_PATH_MAX + 128];
    if (!*s->softhsm_conf || ct_file_exists(s->softhsm_conf)) return CT_OK;
    CT_GUARD_RET(ct_path_join(tokens, sizeof tokens, dir, "tokens"));
    CT_GUARD_RET(ct_mkdir(tokens, 0700));
    CT_GUARD_RET(ct_snprintf(text, sizeof text,
                             "# SoftHSMv2 token store of this component only\ndirectories.tokendir = %s\n"
                             "objectstore.backend = file\nlog.level = ERROR\n",
                             tokens));
    return ct_file_write_atomic(s->softhsm_conf, text, strlen(text), 0600);
}

/* A random PIN (32 hex digits). */
static ct_err new_pin(char *pin, size_t pin_max)
{
    uint8_t raw[16];
    ct_err rc = ct_random(raw, sizeof raw);
    if (rc == CT_OK) rc = ct_hex_encode(raw, sizeof raw, pin, pin_max);
    ct_wipe(raw, sizeof raw);
    return rc;
}

ct_err hsm_local_token_prepare(const hsm_settings *s, const char *dir)
{
    ct_err rc = CT_OK;
    char user_pin[64] = "", so_pin[64] = "", folder[HSM_PATH_MAX], so_path[HSM_PATH_MAX];
    CT_GUARD(write_softhsm_conf(s, dir));
    if (!*s->pin_file || ct_file_exists(s->pin_file)) return CT_OK;
    CT_GUARD(ct_strlcpy(folder, sizeof folder, s->pin_file));
    const char *parent = dirname(folder);
    CT_GUARD(ct_mkdir(parent, 0700));
    CT_GUARD(ct_path_join(so_path, sizeof so_path, parent, "so.pin"));
    /* The PIN files are written only once the token exists with those PINs, the user PIN file last (its existence
     * means "done"): a failed or refused creation writes nothing, and never overwrites an existing token's SO PIN. */
    CT_GUARD(new_pin(user_pin, sizeof user_pin));
    CT_GUARD(new_pin(so_pin, sizeof so_pin));
    rc = hsm_token_create(s->module, s->token, so_pin, user_pin);
    CT_ENSURE_MSG(rc != CT_ERR_EXISTS, CT_ERR_CONFIG, "token '%s' exists but %s did not: give its PIN file in the config",
                  s->token, s->pin_file);
    CT_GUARD(rc);
    CT_GUARD(ct_file_write_atomic(so_path, so_pin, strlen(so_pin), 0600));
    CT_GUARD(ct_file_write_atomic(s->pin_file, user_pin, strlen(user_pin), 0600));
cleanup:
    ct_wipe(user_pin, sizeof user_pin);
    ct_wipe(so_pin, sizeof so_pin);
    return rc;
}

ct_err hsm_open_settings(const hsm_settings *s, hsm **out)
{
    char pin[128];
    ct_err rc = ct_secret_load(*s->pin_file ? s->pin_file : NULL, s->pin_env, pin, sizeof pin);
    if (rc == CT_OK) {
        hsm_config hc = {.module_path = s->module, .token_label = s->token, .pin = pin,
                         .session_pool = (unsigned)s->sessions};
        rc = hsm_open(&hc, out);
    }
    ct_wipe(pin, sizeof pin);
    return rc;
}
