#include <stdlib.h>
#include <string.h>

#include "core.h"

static const ct_setting *find_row(const ct_settings_schema *schema, const char *key)
{
    for (size_t i = 0; i < schema->count; i++)
        if (strcmp(schema->rows[i].key, key) == 0) return &schema->rows[i];
    return NULL;
}

ct_err ct_settings_write_defaults(const ct_settings_schema *schema, const char *path)
{
    ct_err rc = CT_OK;
    ct_buf text = CT_BUF_INIT;
    if (ct_file_exists(path)) return CT_OK;
    CT_GUARD(ct_buf_alloc(&text, CT_CONFIG_MAX_BYTES));
    CT_GUARD(ct_buf_appendf(&text, "# %s: every setting, with its default.\n", schema->title));
    for (size_t i = 0; i < schema->count; i++)
        CT_GUARD(ct_buf_appendf(&text, "\n# %s\n%s = %s\n", schema->rows[i].comment, schema->rows[i].key,
                                schema->rows[i].fallback));
    CT_GUARD(ct_file_write_atomic(path, text.data, text.len, 0600));
cleanup:
    ct_buf_free(&text);
    return rc;
}

ct_err ct_settings_load(const ct_settings_schema *schema, const char *path, ct_config **out)
{
    ct_err rc = ct_config_load(path, out);
    if (rc == CT_ERR_IO) return ct_fail(CT_ERR_CONFIG, "cannot read %s", path);
    CT_GUARD_RET(rc);
    for (size_t k = 0; k < ct_config_count(*out); k++) {
        const char *key = ct_config_key(*out, k);
        if (!find_row(schema, key)) {
            rc = ct_fail(CT_ERR_CONFIG, "%s: unknown setting '%s'", path, key);
            ct_config_free(*out);
            *out = NULL;
            return rc;
        }
    }
    return CT_OK;
}

ct_err ct_settings_load_dir(const ct_settings_schema *schema, const char *dir, const char *file, const char *hint,
                            ct_config **out)
{
    char path[4096];
    CT_GUARD_RET(ct_path_join(path, sizeof path, dir, file));
    CT_ENSURE_RET(ct_file_exists(path), ct_fail(CT_ERR_CONFIG, "%s has no %s: %s", dir, file, hint));
    return ct_settings_load(schema, path, out);
}

const char *ct_settings_get(const ct_settings_schema *schema, const ct_config *cfg, const char *key)
{
    const ct_setting *row = find_row(schema, key);
    if (!row) abort(); /* a key missing from the schema is a programming error */
    return ct_config_get(cfg, key, row->fallback);
}

ct_err ct_settings_copy(const ct_settings_schema *schema, const ct_config *cfg, const char *key, char *out,
                        size_t out_max)
{
    ct_err rc = ct_strlcpy(out, out_max, ct_settings_get(schema, cfg, key));
    return rc == CT_OK ? rc : ct_fail(CT_ERR_CONFIG, "setting %s is longer than %zu bytes", key, out_max - 1);
}

ct_err ct_settings_copy_path(const ct_settings_schema *schema, const ct_config *cfg, const char *key,
                             const char *dir, char *out, size_t out_max)
{
    const char *value = ct_settings_get(schema, cfg, key);
    if (!*value || value[0] == '/') return ct_settings_copy(schema, cfg, key, out, out_max);
    ct_err rc = ct_path_join(out, out_max, dir, value);
    return rc == CT_OK ? rc : ct_fail(CT_ERR_CONFIG, "setting %s: path too long", key);
}

ct_err ct_settings_set(const ct_settings_schema *schema, const char *path, const char *key, const char *value)
{
    ct_buf text = CT_BUF_INIT;
    ct_err rc = ct_settings_render(schema, path, key, value, &text);
    if (rc == CT_OK) rc = ct_file_write_atomic(path, text.data, text.len, 0600);
    ct_buf_free(&text);
    return rc;
}

ct_err ct_settings_render(const ct_settings_schema *schema, const char *path, const char *key, const char *value,
                          ct_buf *text_out)
{
    ct_err rc = CT_OK;
    ct_buf old = CT_BUF_INIT, text = CT_BUF_INIT;
    const ct_setting *row = find_row(schema, key);
    size_t klen = strlen(key);
    bool set = false;
    CT_ENSURE_MSG(row, CT_ERR_ARG, "unknown setting '%s'", key);
    CT_ENSURE_MSG(!strpbrk(value, "#\r\n"), CT_ERR_USAGE, "setting %s: one line without '#'", key);
    CT_GUARD(ct_file_read(path, CT_CONFIG_MAX_BYTES, &old));
    CT_GUARD(ct_buf_alloc(&text, old.len + klen + strlen(value) + strlen(row->comment) + 16));
    for (size_t start = 0; start < old.len;) {
        const uint8_t *nl = memchr(old.data + start, '\n', old.len - start);
        size_t len = nl ? (size_t)(nl - (old.data + start)) + 1 : old.len - start;
        const char *line = (const char *)old.data + start, *p = line + strspn(line, " \t");
        start += len;
        if ((size_t)(p - line) + klen < len && strncmp(p, key, klen) == 0 && p[klen + strspn(p + klen, " \t")] == '=') {
            if (!set) CT_GUARD(ct_buf_appendf(&text, "%s = %s\n", key, value)); /* a second line for it: dropped */
            set = true;
            continue;
        }
        CT_GUARD(ct_buf_append(&text, line, len));
    }
    if (!set) {
        if (text.len && text.data[text.len - 1] != '\n') CT_GUARD(ct_buf_appendf(&text, "\n"));
        CT_GUARD(ct_buf_appendf(&text, "\n# %s\n%s = %s\n", row->comment, key, value));
    }
    *text_out = text;
    text = (ct_buf)CT_BUF_INIT;
cleanup:
    ct_buf_free(&old);
    ct_buf_free(&text);
    return rc;
}
