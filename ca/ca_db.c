/* ca db: `camtrust-ca db migrate-to`: the CA's records copied from its SQLite file into an empty PostgreSQL database
 * (db_copy), then the folder's config switched to it. The caller proves the copy (audit verify before and after,
 * the same newest checkpoint). */
#define _DEFAULT_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca_priv.h"

#define KEPT_PASSWORD_FILE "secrets/db.password" /* beside the token's PIN (hsm.pin_file's default) */
#define PASSWORD_MAX 1024                        /* as ct_secret_load reads */

/* --password-file as the config will name it (`kept`; `open`: the same, as this process opens it). A file: its
 * absolute path, whatever the working folder was. A pipe (`<(vault read ...)`), FIFO or terminal can be read only
 * once, and its name (/dev/fd/63) means nothing to the server that reads db.password_file at every start: its
 * password is kept in the CA folder's KEPT_PASSWORD_FILE (owner only), and the config names that. */
static ct_err password_file_keep(const ca *c, const char *given, char kept[PATH_MAX], char open[PATH_MAX])
{
    ct_err rc = CT_OK;
    char password[PASSWORD_MAX], secrets[PATH_MAX];
    struct stat st;
    CT_ENSURE_RET(stat(given, &st) == 0, ct_fail(CT_ERR_CONFIG, "cannot find the password file %s", given));
    if (S_ISREG(st.st_mode)) {
        CT_ENSURE_RET(realpath(given, kept), ct_fail(CT_ERR_CONFIG, "cannot find the password file %s", given));
        return ct_strlcpy(open, PATH_MAX, kept);
    }
    CT_GUARD(ct_secret_load(given, NULL, password, sizeof password));
    CT_GUARD(ct_path_join(secrets, sizeof secrets, c->cfg.dir, "secrets"));
    if (!ct_file_exists(secrets)) { /* made as root, the folder's owner's, as the password file */
        int fd = -1;
        CT_GUARD(ca_file_make_owned(secrets, O_DIRECTORY, 0700, &fd));
        close(fd);
    }
    CT_GUARD(ct_path_join(open, PATH_MAX, c->cfg.dir, KEPT_PASSWORD_FILE));
    CT_GUARD(ca_file_write_owned(open, password, strlen(password), 0600));
    CT_GUARD(ct_strlcpy(kept, PATH_MAX, KEPT_PASSWORD_FILE)); /* relative: the folder may move */
cleanup:
    ct_wipe(password, sizeof password);
    return rc;
}

ct_err ca_db_migrate_to(ca *c, const char *url, const char *password_file, int64_t *rows)
{
    ct_err rc = CT_OK;
    ct_db *dst = NULL;
    char pw[PATH_MAX] = "", pw_open[PATH_MAX] = "";
    CT_ENSURE(!ca_db_is_pg(&c->cfg), ct_fail(CT_ERR_USAGE, "%s keeps its records in PostgreSQL already", c->cfg.dir));
    if (password_file) CT_GUARD(password_file_keep(c, password_file, pw, pw_open));
    db_config cfg = {.backend = DB_BACKEND_POSTGRESQL, .url = url, .password_file = pw_open[0] ? pw_open : NULL,
                     .copy_target = true};
    CT_GUARD(db_open_config(&cfg, NULL, &dst));
    CT_GUARD(db_copy(c->db, dst, rows));
    /* The backend last: until it is switched the folder still serves its SQLite file. */
    CT_GUARD(ca_settings_set(c->cfg.dir, "db.url", url));
    CT_GUARD(ca_settings_set(c->cfg.dir, "db.password_file", pw));
    CT_GUARD(ca_settings_set(c->cfg.dir, "db.backend", "postgresql"));
cleanup:
    db_close(dst);
    if (rc != CT_OK && strcmp(pw, KEPT_PASSWORD_FILE) == 0) (void)unlink(pw_open); /* the folder stays on SQLite */
    return rc;
}

ct_err ca_db_migrated(ca *c, const char *from, int64_t rows)
{
    char detail[PATH_MAX + 64];
    CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "rows=%lld from=%s", (long long)rows, from));
    return db_audit_append(c->db, "cli", "db.migrate_to", db_backend_name(c->db), "ok", detail);
}

ct_err ca_db_use_sqlite(const char *dir) { return ca_settings_set(dir, "db.backend", "sqlite"); }
