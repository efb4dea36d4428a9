/* A component's own token: settings, first-run creation with PIN files, opening. */
#define _GNU_SOURCE /* realpath, F_OFD_SETLKW */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* The absolute form of `path`, which need not exist yet (its folder must): a config written with a relative
 * token path works only from the working directory it was made in. */
static ct_err abs_path(const char *path, char *out, size_t max)
{
    char real[PATH_MAX], parent[HSM_PATH_MAX], base[HSM_PATH_MAX];
    if (realpath(path, real)) return ct_strlcpy(out, max, real);
    CT_ENSURE_RET(errno == ENOENT, ct_fail(CT_ERR_IO, "cannot resolve %s: %s", path, strerror(errno)));
    CT_GUARD_RET(ct_strlcpy(parent, sizeof parent, path));
    CT_GUARD_RET(ct_strlcpy(base, sizeof base, path));
    CT_ENSURE_RET(realpath(dirname(parent), real),
                  ct_fail(CT_ERR_IO, "cannot resolve the folder of %s: %s", path, strerror(errno)));
    return ct_path_join(out, max, real, basename(base));
}

#define SOFTHSM_TOKENDIR "directories.tokendir" /* the token store's key in a SoftHSM config */

/* The SoftHSM config of a component whose folder is (or will be) `dir`: its own token store, DIR/tokens. */
static ct_err softhsm_conf_text(const char *dir, char *text, size_t max)
{
    char abs[HSM_PATH_MAX], tokens[HSM_PATH_MAX];
    CT_GUARD_RET(abs_path(dir, abs, sizeof abs));
    CT_GUARD_RET(ct_path_join(tokens, sizeof tokens, abs, "tokens"));
    return ct_snprintf(text, max,
                       "# SoftHSMv2 token store of this component only\n%s = %s\n"
                       "objectstore.backend = file\nlog.level = ERROR\n",
                       SOFTHSM_TOKENDIR, tokens);
}

static ct_err write_softhsm_conf(const hsm_settings *s, const char *dir)
{
    char tokens[HSM_PATH_MAX], text[HSM_PATH_MAX + 128];
    if (!*s->softhsm_conf || ct_file_exists(s->softhsm_conf)) return CT_OK;
    CT_GUARD_RET(ct_path_join(tokens, sizeof tokens, dir, "tokens"));
    CT_GUARD_RET(ct_mkdir(tokens, 0700));
    CT_GUARD_RET(softhsm_conf_text(dir, text, sizeof text));
    return ct_file_write_atomic(s->softhsm_conf, text, strlen(text), 0600);
}

ct_err hsm_local_relocate(const hsm_settings *s, const char *dir, const char *final_dir)
{
    ct_err rc = CT_OK;
    ct_buf now = CT_BUF_INIT;
    char was[HSM_PATH_MAX + 128], text[HSM_PATH_MAX + 128];
    if (!*s->softhsm_conf) return CT_OK;
    CT_GUARD(softhsm_conf_text(dir, was, sizeof was));
    CT_GUARD(ct_file_read(s->softhsm_conf, sizeof was, &now));
    /* Only the config written here for `dir`: any other one is the operator's own. */
    if (now.len != strlen(was) || memcmp(now.data, was, now.len) != 0) goto cleanup;
    CT_GUARD(softhsm_conf_text(final_dir, text, sizeof text));
    CT_GUARD(ct_file_write_atomic(s->softhsm_conf, text, strlen(text), 0600));
cleanup:
    ct_buf_free(&now);
    return rc;
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

/* Whether some open file has fd's file open for writing: a read lease is refused then. Taken, it is given back at once
 * (a break's signal set to one ignored by default). Unknown (no leases there, another owner): false. */
static bool open_for_writing(int fd)
{
    if (fcntl(fd, F_SETSIG, SIGURG) != 0 || fcntl(fd, F_SETLEASE, F_RDLCK) != 0) return errno == EAGAIN;
    (void)fcntl(fd, F_SETLEASE, F_UNLCK);
    return false;
}

/* token.object read-locked (fd) and empty: whether no login is writing it (then the copy goes back). SoftHSM 2.6.1
 * unlocks before its write lands (stdio flushes it at fclose): a file some process has open for writing is looked at
 * again every 10 ms, unlocked meanwhile (that process may be waiting for the lock to truncate it), at most 10 s
 * (then left as it is: a stalled writer's file is not taken for abandoned). */
static bool empty_abandoned(int fd)
{
    struct flock lock = {.l_whence = SEEK_SET};
    struct stat st;
    const struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; open_for_writing(fd); i++) {
        if (i == 1000) return false;
        lock.l_type = F_UNLCK;
        (void)fcntl(fd, F_OFD_SETLK, &lock);
        nanosleep(&tick, NULL);
        lock.l_type = F_RDLCK;
        (void)fcntl(fd, F_OFD_SETLKW, &lock);
    }
    return fstat(fd, &st) == 0 && st.st_size == 0;
}

/* SoftHSM rewrites a token's token.object (its flags, label, wrapped PINs and token key) in place at every login
 * (Token::loginUser stores the flags: ftruncate to 0, then one write, no fsync): a kill or a power cut in between
 * leaves it empty, and every key of the token unusable. So a copy is kept beside it (token.object~, same folder,
 * 0600, wrapped under the same PINs), written atomically once logged in (SoftHSM has just written the file whole,
 * with a new generation number: the copy changes at every open too); before the token opens (`logged_in` false) an
 * empty token.object gets it back. Only an empty file is replaced: a whole one is never overwritten by an older
 * copy (e.g. after a PIN change made elsewhere). SoftHSM truncates token.object under an fcntl write lock and reads
 * it under a read lock: the size is judged (and the copy made or put back) under a read lock too, so that another
 * process logging in to the same token is waited for instead of its file being taken for one a kill left empty (its
 * write would then land in the file the rename unlinks). An open-file-description lock: it also waits for a thread
 * of this process inside SoftHSM, where a process-owned lock would merely take over that thread's own; and an
 * empty file a process still writes (empty_abandoned) is waited for.
 * The copy's write takes no failpoint: kill tests aim at others.
 * `store`: the token store (token_store), read once for both calls. */
static void token_object_keep(const char *store, bool logged_in)
{
    ct_err rc = CT_OK;
    DIR *d = NULL;
    ct_buf data = CT_BUF_INIT;
    char token[HSM_PATH_MAX], object[HSM_PATH_MAX], copy[HSM_PATH_MAX];
    struct dirent *e;
    struct stat st;
    int fd = -1;
    if (!*store || !(d = opendir(store))) return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        CT_GUARD(ct_path_join(token, sizeof token, store, e->d_name));
        CT_GUARD(ct_path_join(object, sizeof object, token, "token.object"));
        CT_GUARD(ct_snprintf(copy, sizeof copy, "%s~", object));
        /* The copy's temporaries a kill cut short (token.object~.tmp.PID of a dead PID); SoftHSM names none so. */
        if (logged_in) CT_GUARD(ct_stale_remove(token, "", ".tmp."));
        const char *from = logged_in ? object : copy, *to = logged_in ? copy : object;
        if (fd >= 0) close(fd);
        struct flock lock = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
        /* (a file system without locks: judged unlocked, as SoftHSM then writes it) */
        if ((fd = open(object, O_RDONLY | O_CLOEXEC)) < 0 || (fcntl(fd, F_OFD_SETLKW, &lock), fstat(fd, &st) != 0) ||
            (!logged_in && (st.st_size != 0 || !empty_abandoned(fd))) || !ct_file_exists(from))
            continue;
        CT_GUARD(ct_file_read(from, 65536, &data));
        if (data.len) CT_GUARD(ct_file_write_atomic_unprobed(to, data.data, data.len, 0600));
        ct_buf_free(&data);
    }
cleanup:
    if (fd >= 0) close(fd);
    /* A safeguard, not a condition: a full disk (a camera's recordings) must not stop the token opening. */
    if (rc != CT_OK) ct_log(CT_LOG_WARN, "token_object_copy", "%s", ct_err_detail());
    ct_buf_free(&data);
    closedir(d);
}

/* The token store a component's SoftHSM config names, or "" (no config, one SoftHSM reads but ours does not — its
 * syntax is laxer —, or a path too long): then SoftHSM alone has the say, and no copy is kept. */
static void token_store(const hsm_settings *s, char store[HSM_PATH_MAX])
{
    ct_config *conf = NULL;
    const char *dir = NULL;
    if (*s->softhsm_conf && ct_config_load(s->softhsm_conf, &conf) == CT_OK)
        dir = ct_config_get(conf, SOFTHSM_TOKENDIR, NULL);
    if (!dir || ct_strlcpy(store, HSM_PATH_MAX, dir) != CT_OK) *store = '\0';
    ct_config_free(conf);
}

ct_err hsm_open_settings_pin(const hsm_settings *s, const char *pin, hsm **out)
{
    hsm_config hc = {.module_path = s->module, .token_label = s->token, .pin = pin,
                     .session_pool = (unsigned)s->sessions};
    char store[HSM_PATH_MAX];
    token_store(s, store);
    token_object_keep(store, false);
    CT_GUARD_RET(hsm_open(&hc, out));
    token_object_keep(store, true);
    return CT_OK;
}

ct_err hsm_open_settings(const hsm_settings *s, hsm **out)
{
    char pin[128];
    ct_err rc = ct_secret_load(*s->pin_file ? s->pin_file : NULL, s->pin_env, pin, sizeof pin);
    if (rc == CT_OK) rc = hsm_open_settings_pin(s, pin, out);
    ct_wipe(pin, sizeof pin);
    return rc;
}
