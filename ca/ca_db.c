/* ca db: `camtrust-ca db migrate-to`: the CA's records copied from its SQLite file into an empty PostgreSQL database
 * (db_copy), then the folder's config switched to it. The caller proves the copy (audit verify before and after,
 * the same newest checkpoint). */
#define _DEFAULT_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ca_priv.h"

ct_err ca_db_migrate_to(ca *c, const char *url, const char *password_file, int64_t *rows)
{
    ct_err rc = CT_OK;
    ct_db *dst = NULL;
    char pw[PATH_MAX] = "";
    CT_ENSURE(!ca_db_is_pg(&c->cfg), ct_fail(CT_ERR_USAGE, "%s keeps its records in PostgreSQL already", c->cfg.dir));
    /* The config names it from the CA folder: an absolute path, whatever the working folder was. */
    CT_ENSURE_MSG(!password_file || realpath(password_file, pw), CT_ERR_CONFIG, "cannot find the password file %s",
                  password_file);
    db_config cfg = {.backend = DB_BACKEND_POSTGRESQL, .url = url, .password_file = pw[0] ? pw : NULL,
                     .copy_target = true};
    CT_GUARD(db_open_config(&cfg, NULL, &dst));
    CT_GUARD(db_copy(c->db, dst, rows));
    /* The backend last: until it is switched the folder still serves its SQLite file. */
    CT_GUARD(ca_settings_set(c->cfg.dir, "db.url", url));
    CT_GUARD(ca_settings_set(c->cfg.dir, "db.password_file", pw));
    CT_GUARD(ca_settings_set(c->cfg.dir, "db.backend", "postgresql"));
cleanup:
    db_close(dst);
    return rc;
}

ct_err ca_db_migrated(ca *c, const char *from, int64_t rows)
{
    char detail[PATH_MAX + 64];
    CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "rows=%lld from=%s", (long long)rows, from));
    return db_audit_append(c->db, "cli", "db.migrate_to", db_backend_name(c->db), "ok", detail);
}

ct_err ca_db_use_sqlite(const char *dir) { return ca_settings_set(dir, "db.backend", "sqlite"); }
