/* ca db: `camtrust-ca db migrate-to`: the CA's records copied from its SQLite file into an empty PostgreSQL database
 * (db_copy), then the folder's config switched to it. The caller proves the copy (audit verify before and after,
 * the same newest checkpoint). */
#define _GNU_SOURCE /* O_PATH */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca_priv.h"

#define SECRETS_FOLDER "secrets"
#define KEPT_PASSWORD_NAME "db.password"
#define KEPT_PASSWORD_FILE SECRETS_FOLDER "/" KEPT_PASSWORD_NAME /* beside the token's PIN (hsm.pin_file's default) */
#define PASSWORD_MAX 1024                                           /* as ct_secret_load reads */

/* The CA folder's secrets folder, no link followed, made (the folder's owner's) when there is none: a `secrets` its
 * owner made a link would have root write and remove the password file in the folder it names. *fd: open. */
static ct_err secrets_open(const ca *c, const char *secrets, int *fd)
{
    int dir_fd = open(c->cfg.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    CT_ENSURE_RET(dir_fd >= 0, ct_fail(CT_ERR_IO, "cannot open %s: %s", c->cfg.dir, strerror(errno)));
    ct_err rc = CT_OK;
    *fd = openat(dir_fd, SECRETS_FOLDER, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0 && errno == ENOENT) rc = ca_file_make_owned_at(dir_fd, SECRETS_FOLDER, secrets, O_DIRECTORY, 0700, fd);
    else if (*fd < 0)
        rc = ct_fail(CT_ERR_CONFIG, "%s is not a folder (a link is not followed): %s", secrets,
                     errno == ENOTDIR ? "a link or a file" : strerror(errno));
    close(dir_fd);
    return rc;
}

/* --password-file as the config will name it (`kept`; `open`: the same, as this process opens it). A file: its
 * absolute path, whatever the working folder was. A pipe (`<(vault read ...)`), FIFO or terminal can be read only
 * once, and its name (/dev/fd/63) means nothing to the server that reads db.password_file at every start: its
 * password is kept in the CA folder's KEPT_PASSWORD_FILE (owner only), and the config names that; *secrets_fd: its
 * folder, open (else -1). */
static ct_err password_file_keep(const ca *c, const char *given, char kept[PATH_MAX], char open[PATH_MAX],
                                 int *secrets_fd)
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
    CT_GUARD(ct_path_join(secrets, sizeof secrets, c->cfg.dir, SECRETS_FOLDER));
    CT_GUARD(secrets_open(c, secrets, secrets_fd)); /* made as root, the folder's owner's, as the password file */
    CT_GUARD(ct_path_join(open, PATH_MAX, c->cfg.dir, KEPT_PASSWORD_FILE));
    CT_GUARD(ca_file_write_owned_at(*secrets_fd, KEPT_PASSWORD_NAME, open, password, strlen(password), 0600));
    CT_GUARD(ct_strlcpy(kept, PATH_MAX, KEPT_PASSWORD_FILE)); /* relative: the folder may move */
cleanup:
    ct_wipe(password, sizeof password);
    return rc;
}

/* The kept password file opened in its folder (opened once), no link followed, and named as this process's open
 * file (`open`): read by path, a link its folder's owner put in its place meanwhile would have root read another
 * folder's password and send it to the URL root gave. *fd: open. */
static ct_err kept_password_open(int secrets_fd, char open_name[PATH_MAX], int *fd)
{
    struct stat st;
    *fd = openat(secrets_fd, KEPT_PASSWORD_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    CT_ENSURE_RET(*fd >= 0 && fstat(*fd, &st) == 0 && S_ISREG(st.st_mode),
                  ct_fail(CT_ERR_CONFIG, "cannot read %s as written (a link is not followed): %s", KEPT_PASSWORD_FILE,
                          *fd < 0 ? strerror(errno) : "not a file"));
    return ct_snprintf(open_name, PATH_MAX, "/proc/self/fd/%d", *fd);
}

ct_err ca_db_migrate_to(ca *c, const char *url, const char *password_file, int64_t *rows)
{
    ct_err rc = CT_OK;
    ct_db *dst = NULL;
    char pw[PATH_MAX] = "", pw_open[PATH_MAX] = "";
    int secrets_fd = -1, kept_fd = -1;
    CT_ENSURE(!ca_db_is_pg(&c->cfg), ct_fail(CT_ERR_USAGE, "%s keeps its records in PostgreSQL already", c->cfg.dir));
    if (password_file) CT_GUARD(password_file_keep(c, password_file, pw, pw_open, &secrets_fd));
    if (secrets_fd >= 0) {
        ct_failpoint_hold("migrate:password-kept"); /* tests: the folder's owner swaps it for a link meanwhile */
        CT_GUARD(kept_password_open(secrets_fd, pw_open, &kept_fd));
    }
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
    /* the folder stays on SQLite: the kept password goes, from the folder it was written in */
    if (rc != CT_OK && secrets_fd >= 0 && strcmp(pw, KEPT_PASSWORD_FILE) == 0)
        (void)unlinkat(secrets_fd, KEPT_PASSWORD_NAME, 0);
    if (kept_fd >= 0) close(kept_fd);
    if (secrets_fd >= 0) close(secrets_fd);
    return rc;
}

ct_err ca_db_migrated(ca *c, const char *from, int64_t rows)
{
    char detail[PATH_MAX + 64];
    CT_GUARD_RET(ct_snprintf(detail, sizeof detail, "rows=%lld from=%s", (long long)rows, from));
    return db_audit_append(c->db, "cli", "db.migrate_to", db_backend_name(c->db), "ok", detail);
}

ct_err ca_db_use_sqlite(const char *dir) { return ca_settings_set(dir, "db.backend", "sqlite"); }
