/* camtrust core: the one error enum, bounded buffers, logging, base64/PEM and config parsing.
 * Every module of camtrust (CA, station, agent, tools) links this and nothing heavier. */
#ifndef CAMTRUST_CORE_H
#define CAMTRUST_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CT_MUST_CHECK __attribute__((warn_unused_result))

/* The one error table: name, HTTP status, message. Add errors here and nowhere else. */
#define CT_ERROR_TABLE(X)                                                                           \
    X(CT_OK, 200, "ok")                                                                             \
    X(CT_ERR_NOMEM, 500, "out of memory")                                                           \
    X(CT_ERR_INTERNAL, 500, "internal error")                                                       \
    X(CT_ERR_ARG, 500, "invalid argument")                                                          \
    X(CT_ERR_BUF_FULL, 500, "buffer full")                                                          \
    X(CT_ERR_IO, 500, "I/O error")                                                                  \
    X(CT_ERR_CONFIG, 500, "bad configuration")                                                      \
    X(CT_ERR_USAGE, 400, "bad usage")                                                               \
    X(CT_ERR_CRYPTO, 500, "cryptographic operation failed")                                         \
    X(CT_ERR_HSM, 500, "HSM error")                                                                 \
    X(CT_ERR_HSM_NO_TOKEN, 500, "token not found")                                                  \
    X(CT_ERR_HSM_LOGIN, 500, "token login failed")                                                  \
    X(CT_ERR_HSM_NO_KEY, 500, "key not found in token")                                             \
    X(CT_ERR_DB, 500, "database error")                                                             \
    X(CT_ERR_INTEGRITY, 500, "integrity check failed")                                              \
    X(CT_ERR_BAD_REQUEST, 400, "bad request")                                                       \
    X(CT_ERR_BAD_BASE64, 400, "malformed base64")                                                   \
    X(CT_ERR_BAD_DER, 400, "malformed DER")                                                         \
    X(CT_ERR_BAD_CSR, 400, "malformed certificate request")                                         \
    X(CT_ERR_CSR_SIGNATURE, 400, "certificate request signature does not verify")                   \
    X(CT_ERR_WEAK_KEY, 400, "key type or size not accepted")                                        \
    X(CT_ERR_NO_SERIAL, 400, "certificate request has no subject serialNumber")                     \
    X(CT_ERR_UNAUTHENTICATED, 401, "client certificate required")                                   \
    X(CT_ERR_UNKNOWN_CLIENT, 401, "client certificate not recognised")                              \
    X(CT_ERR_FORBIDDEN, 403, "forbidden")                                                           \
    X(CT_ERR_DISABLED, 403, "client is disabled")                                                   \
    X(CT_ERR_NOT_IN_ORDER, 403, "serial number is not in an open order of this station")            \
    X(CT_ERR_NOT_FOUND, 404, "not found")                                                           \
    X(CT_ERR_METHOD, 405, "method not allowed")                                                     \
    X(CT_ERR_EXISTS, 409, "already exists")                                                         \
    X(CT_ERR_ALREADY_ISSUED, 409, "serial number already issued for another key")                   \
    X(CT_ERR_ALREADY_REVOKED, 409, "certificate already revoked")                                   \
    X(CT_ERR_TOO_LARGE, 413, "request body too large")                                              \
    X(CT_ERR_CONTENT_TYPE, 415, "unsupported content type")                                         \
    X(CT_ERR_RATE_LIMITED, 429, "too many requests")                                                \
    X(CT_ERR_UNAVAILABLE, 503, "service unavailable")

typedef enum {
#define CT_X_ENUM(name, status, msg) name,
    CT_ERROR_TABLE(CT_X_ENUM)
#undef CT_X_ENUM
        CT_ERR__COUNT
} ct_err;

const char *ct_err_name(ct_err e);
const char *ct_err_message(ct_err e);
int ct_err_http_status(ct_err e);

/* A one-line detail for the last error of this thread ("serial X is not in order 4"), so that the
 * enum stays small while the reason a user reads stays precise. Empty when none was set. */
ct_err ct_fail(ct_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *ct_err_detail(void);
void ct_err_clear(void);
/* Sets the detail to "<context>: <the current detail>" (or e's message when there is none): one-line reasons that
 * name where a failure happened and why. */
ct_err ct_fail_ctx(ct_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error kept with its detail, to fail with later or in another thread (the detail is per thread, and the next
 * failure overwrites it). ct_err_save keeps rc and this thread's detail (rc's message when there is none);
 * ct_err_restore gives back CT_OK, or the kept error with its detail set again. */
#define CT_ERR_DETAIL_MAX 256
typedef struct {
    ct_err rc;
    char detail[CT_ERR_DETAIL_MAX];
} ct_err_saved;
void ct_err_save(ct_err_saved *s, ct_err rc);
ct_err ct_err_restore(const ct_err_saved *s);

/* Functions that allocate keep one `cleanup:` label and an `rc` variable. */
#define CT_GUARD(expr)                                                                             \
    do {                                                                                           \
        rc = (expr);                                                                               \
        if (rc != CT_OK) goto cleanup;                                                             \
    } while (0)
#define CT_ENSURE(cond, err)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            rc = (err);                                                                            \
            goto cleanup;                                                                          \
        }                                                                                          \
    } while (0)
/* Like CT_ENSURE, with a detail line for the user. */
#define CT_ENSURE_MSG(cond, err, ...)                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            rc = ct_fail((err), __VA_ARGS__);                                                      \
            goto cleanup;                                                                          \
        }                                                                                          \
    } while (0)
/* For functions with nothing to clean up. */
#define CT_GUARD_RET(expr)                                                                         \
    do {                                                                                           \
        ct_err ct_guard_rc_ = (expr);                                                              \
        if (ct_guard_rc_ != CT_OK) return ct_guard_rc_;                                            \
    } while (0)
#define CT_ENSURE_RET(cond, err)                                                                   \
    do {                                                                                           \
        if (!(cond)) return (err);                                                                 \
    } while (0)

/* ---- bounded buffers: length and a maximum fixed at creation ---- */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t max;
} ct_buf;

#define CT_BUF_INIT {NULL, 0, 0}

CT_MUST_CHECK ct_err ct_buf_alloc(ct_buf *b, size_t max);
CT_MUST_CHECK ct_err ct_buf_append(ct_buf *b, const void *p, size_t n);
CT_MUST_CHECK ct_err ct_buf_appendf(ct_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
CT_MUST_CHECK ct_err ct_buf_set(ct_buf *b, const void *p, size_t n);
/* NUL-terminates without counting the NUL in len; fails if there is no room. */
CT_MUST_CHECK ct_err ct_buf_cstr(ct_buf *b, const char **out);
/* Wipes the contents before freeing: buffers may hold secrets. */
void ct_buf_free(ct_buf *b);
void ct_wipe(void *p, size_t n);
/* Constant-time comparison of secrets; true when equal. */
bool ct_equal_ct(const void *a, const void *b, size_t n);

/* Bounded string copy into a fixed array; fails instead of truncating. */
CT_MUST_CHECK ct_err ct_strlcpy(char *dst, size_t dst_max, const char *src);
CT_MUST_CHECK ct_err ct_snprintf(char *dst, size_t dst_max, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- encodings ---- */
/* Base64 with optional whitespace/line breaks (RFC 7030 bodies); anything else is CT_ERR_BAD_BASE64. */
CT_MUST_CHECK ct_err ct_base64_decode(const uint8_t *in, size_t in_len, ct_buf *out);
CT_MUST_CHECK ct_err ct_base64_encode(const uint8_t *in, size_t in_len, bool line_breaks, ct_buf *out);
/* gzip (RFC 1952), for HTTP Content-Encoding: `out` is allocated (ct_buf_free). */
CT_MUST_CHECK ct_err ct_gzip(const uint8_t *in, size_t len, ct_buf *out);
/* The first occurrence of the string `needle` (without its NUL) in hay[0..hay_len), or NULL. */
const uint8_t *ct_mem_find(const uint8_t *hay, size_t hay_len, const char *needle);
/* PEM with the given label ("CERTIFICATE", "CERTIFICATE REQUEST"). */
CT_MUST_CHECK ct_err ct_pem_encode(const char *label, const uint8_t *der, size_t der_len, ct_buf *out);
/* Decodes the index-th PEM block with the label; CT_ERR_NOT_FOUND when there is none. */
CT_MUST_CHECK ct_err ct_pem_decode(const uint8_t *pem, size_t pem_len, const char *label, size_t index, ct_buf *der);
CT_MUST_CHECK ct_err ct_hex_encode(const uint8_t *in, size_t in_len, char *out, size_t out_max);
CT_MUST_CHECK ct_err ct_hex_decode(const char *in, uint8_t *out, size_t out_max, size_t *out_len);

/* Appends `s` as a JSON string (quotes included): '"', '\\', controls and '<' '>' '&' escaped, bytes that are
 * not UTF-8 replaced by U+FFFD. NULL is "". */
CT_MUST_CHECK ct_err ct_json_string(ct_buf *b, const char *s);
/* Appends `s` as one CSV field (RFC 4180): quoted, with '"' doubled, when it holds ',', '"', CR or LF; a field
 * starting with '=', '+', '-', '@', tab or CR is quoted with a leading apostrophe, so spreadsheets show it as
 * text instead of running it as a formula. */
CT_MUST_CHECK ct_err ct_csv_field(ct_buf *b, const char *s);
/* Replaces, in place, each byte of `s` that is not part of a valid UTF-8 sequence by '?' (the length stays); true
 * when it replaced any. For outside text kept where only UTF-8 is stored (PostgreSQL refuses anything else). */
bool ct_utf8_repair(char *s);
/* The UTF-8 sequence at p (n bytes left): its length (1..4) and code point, or {0, 0} when it is not one (overlong,
 * surrogate, beyond U+10FFFF, cut off at n). Returned by value: no pointer, so callers keep no stack guard. */
typedef struct {
    size_t len;
    uint32_t cp;
} ct_utf8_char;
ct_utf8_char ct_utf8_next(const uint8_t *p, size_t n);
/* Outside text (from cameras, CSRs, peers, files) for a terminal or a log line: copies text[0..n) into out (max
 * bytes, NUL included), each byte of a C0 control, DEL, a C1 control (raw byte 0x80-0x9f or UTF-8 U+0080-U+009F)
 * and of what is not UTF-8 as '?'; other UTF-8 kept. Cut before the first character that does not fit whole.
 * out may be text (in place). Returns out ("" when max is 0). */
const char *ct_text_safe(char *out, size_t max, const void *text, size_t n);
/* Decodes the %XX escapes of a URL or query value in place ('+' is left: that is form encoding) and returns the
 * new length. An escape of a control character (%00 included) stays as it is: decoded, it would cut or split
 * what it is part of ("simpleenroll%00x" read as "simpleenroll"). */
size_t ct_url_unescape(char *s);

/* ---- files ---- */
/* A regular file whole, at most `max` bytes; anything else (a FIFO, a device, a folder) refused in one line without
 * waiting on it. ct_file_read_stream reads a pipe or FIFO to its end too (`--serials <(...)`). */
CT_MUST_CHECK ct_err ct_file_read(const char *path, size_t max, ct_buf *out);
CT_MUST_CHECK ct_err ct_file_read_stream(const char *path, size_t max, ct_buf *out);
/* Syncs the folder holding `path`, so that a rename into it survives a power loss. */
CT_MUST_CHECK ct_err ct_file_sync_dir(const char *path);
/* Writes atomically: temporary file, fsync, rename, fsync of the folder. */
CT_MUST_CHECK ct_err ct_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* The same without its failpoints: for a safeguard's write on the way to the one a kill test aims at. */
CT_MUST_CHECK ct_err ct_file_write_atomic_unprobed(const char *path, const void *data, size_t len, unsigned mode);
/* The same for DER written as one PEM block with `label` (certificates, requests). */
CT_MUST_CHECK ct_err ct_pem_write_file(const char *path, const char *label, const uint8_t *der, size_t len,
                                       unsigned mode);
/* Reads one DER object of at most `max` bytes from a file holding it as DER, or as the first PEM block `label`
 * (CT_ERR_BAD_DER naming the file when there is none). Allocates der. */
CT_MUST_CHECK ct_err ct_pem_or_der_read(const char *path, const char *label, size_t max, ct_buf *der);
CT_MUST_CHECK ct_err ct_path_join(char *out, size_t out_max, const char *dir, const char *name);
/* Creates a folder (mode), fine if it exists already. */
CT_MUST_CHECK ct_err ct_mkdir(const char *path, unsigned mode);
bool ct_file_exists(const char *path);
/* Leftovers of killed processes: removes the entries of `folder` named PREFIX...SEP<pid> (PREFIX may be "") whose
 * process no longer runs: with SEP ".tmp." regular files only, e.g. ("dev", "", ".tmp.") for ct_file_write_atomic's
 * temporaries ("credentials.pem.tmp.4242"); with a stage's SEP (".init-") folders only, with all in them. */
CT_MUST_CHECK ct_err ct_stale_remove(const char *folder, const char *prefix, const char *sep);
/* A folder made whole or not at all. ct_dir_check_fresh: may `dir` become one? Absent, empty, or holding only
 * the file `allowed` (NULL: none; *has_allowed says whether it does); CT_ERR_EXISTS naming a file otherwise.
 * It first finishes or removes what killed runs left inside `dir` (see ct_dir_commit). ct_dir_stage makes the
 * empty folder to build in: the sibling `final`.init-<pid> (stale ones of dead processes removed) or, when the
 * parent is not writable but `final` exists (a service's /var/lib/NAME), `final`/.init-<pid>. ct_dir_commit
 * syncs it and renames a sibling to `final` in one step (exchanged when `final` holds the `allowed` file the
 * caller copied into the stage, the old one then removed); a stage inside `final` is marked whole and its
 * entries moved up one by one, `last` (the entry whose presence means "made") last, an interrupted move being
 * finished by the next ct_dir_check_fresh. ct_dir_discard removes a stage that will not be committed (not one
 * marked whole: that one is left for ct_dir_recover, and it says so).
 * ct_dir_stage_inside always stages inside `final`: files added to a folder in use, whole or not at all;
 * ct_dir_recover finishes (or removes, when not whole) what dead processes staged inside `final`. */
CT_MUST_CHECK ct_err ct_dir_check_fresh(const char *dir, const char *allowed, bool *has_allowed);
CT_MUST_CHECK ct_err ct_dir_stage(const char *final, char *stage, size_t stage_max);
CT_MUST_CHECK ct_err ct_dir_commit(const char *stage, const char *final, const char *last);
CT_MUST_CHECK ct_err ct_dir_discard(const char *stage);
CT_MUST_CHECK ct_err ct_dir_stage_inside(const char *final, char *stage, size_t stage_max);
CT_MUST_CHECK ct_err ct_dir_recover(const char *final);
/* Crash tests: the process _exit(137)s here when $CAMTRUST_FAILPOINT names this point ("write:renamed"). */
void ct_failpoint(const char *name);
/* Fault tests: whether $CAMTRUST_FAILPOINT names this point (the caller then fails as the fault would). */
bool ct_failpoint_hit(const char *name);
/* Hold tests: when $CAMTRUST_FAILPOINT names this point, logs event=failpoint_held and waits here until the file
 * $CAMTRUST_FAILPOINT_RELEASE exists (at most 30 s), then goes on as if nothing happened. */
void ct_failpoint_hold(const char *name);

/* ---- command lines ---- */
/* `--help` anywhere, or `-h` first: prints `usage` on stdout and says true (the caller exits 0). A usage error
 * stays the caller's: usage on stderr, exit 2. */
bool ct_cli_help(int argc, char **argv, const char *usage);
/* "COMMAND --name value ..." (argv[1] is the command): the value after `name`, or NULL when absent. */
const char *ct_cli_opt(int argc, char **argv, const char *name);
/* True when everything after the command is "--name value" pairs with every name among `names`. A word in a name's
 * place that is none of them: false, and *unknown (when not NULL) is that word (left alone for a missing value). */
bool ct_cli_known(int argc, char **argv, const char *const *names, size_t n, const char **unknown);
/* An unknown option's usage error, one line on stderr: "PROG: unknown option 'WORD' (PROG --help)". Returns 2, the
 * usage error's exit code. */
int ct_cli_unknown(const char *prog, const char *word);
/* Whether a command takes option `flag`: `options` lists the ones it takes ("--dir --out"). When it does not:
 * "PROG: COMMAND does not take FLAG" on stderr and false (the caller exits 2: an option silently ignored would let
 * an operator believe it applied). */
bool ct_cli_takes(const char *prog, const char *command, const char *options, const char *flag);

/* ---- network addresses, time, waiting ---- */
/* Parses "127.0.0.1:8443" or "[::1]:8443" (numeric only: no name lookups). Port 0: any free port. */
CT_MUST_CHECK ct_err ct_addr_parse(const char *hostport, struct sockaddr_storage *out, socklen_t *out_len);
/* The numeric host of an IPv4 or IPv6 address ("127.0.0.1", "::1"), without the port; "" for any other family. */
void ct_addr_host(const struct sockaddr *sa, char *out, size_t out_max);
/* A Unix time as "YYYY-MM-DDTHH:MM:SSZ" (UTC); "" when it cannot be shown. `out` holds CT_TIME_UTC_MAX bytes. */
#define CT_TIME_UTC_MAX 32
void ct_time_utc(int64_t t, char out[CT_TIME_UTC_MAX]);
/* Monotonic milliseconds, for deadlines and durations. */
int64_t ct_now_ms(void);
/* Wall-clock milliseconds since the epoch: what is written down, or compared between processes and machines. */
int64_t ct_wall_ms(void);
/* Timed waits count on the monotonic clock, so a step of the wall clock neither lengthens nor shortens them:
 * a condition variable for pthread_cond_timedwait is made by ct_cond_init (0 or an errno, as pthread_cond_init),
 * and its deadline, the monotonic time `ms` (or `us`) from now, by ct_timespec_in. */
struct timespec;
int ct_cond_init(pthread_cond_t *cv);
void ct_timespec_in(int64_t ms, struct timespec *out);
void ct_timespec_in_us(int64_t us, struct timespec *out);
/* Waits until fd is ready for `events` (POLLIN/POLLOUT) or the absolute deadline (ct_now_ms) passes:
 * CT_ERR_IO "timed out <what>". */
CT_MUST_CHECK ct_err ct_wait_fd(int fd, short events, int64_t deadline_ms, const char *what);

/* ---- logging: one structured line (logfmt) per event on stderr ---- */
typedef enum { CT_LOG_DEBUG, CT_LOG_INFO, CT_LOG_WARN, CT_LOG_ERROR } ct_log_level;
void ct_log_set_level(ct_log_level min);
void ct_log(ct_log_level level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* `s` (NULL: "") as one logfmt value, for a "%s" of ct_log: in double quotes, '"' and '\\' escaped, cut (ending
 * in "...") to fit `max`. Every value from outside goes through it, so that it cannot write fields of its own. */
const char *ct_log_quote(char *out, size_t max, const char *s);
/* ct_log_quote into a buffer of the enclosing block: ct_log(..., "reason=%s", CT_LOGQ(reason)). */
#define CT_LOG_VALUE_MAX 320
#define CT_LOGQ(s) ct_log_quote((char[CT_LOG_VALUE_MAX]){0}, CT_LOG_VALUE_MAX, (s))

/* ---- config: "key = value" lines, '#' comments; every key known in advance ---- */
#define CT_CONFIG_MAX_BYTES (64 * 1024)
#define CT_CONFIG_MAX_LINE 1024
#define CT_CONFIG_MAX_ENTRIES 128
typedef struct ct_config ct_config;
CT_MUST_CHECK ct_err ct_config_parse(const uint8_t *text, size_t len, ct_config **out);
CT_MUST_CHECK ct_err ct_config_load(const char *path, ct_config **out);
/* Returns the value or the fallback when absent. */
const char *ct_config_get(const ct_config *c, const char *key, const char *fallback);
/* A whole decimal number in [min, max], nothing after it (command-line values): false otherwise. */
bool ct_parse_long(const char *s, long min, long max, long *out);
CT_MUST_CHECK ct_err ct_config_get_int(const ct_config *c, const char *key, long fallback, long min, long max,
                                       long *out);
/* Iteration over the keys present, so that callers can refuse unknown (misspelt) keys. */
size_t ct_config_count(const ct_config *c);
const char *ct_config_key(const ct_config *c, size_t i);
void ct_config_free(ct_config *c);

/* ---- settings: a component's config file, every key known with its default ---- */
typedef struct {
    const char *key;
    const char *fallback;
    const char *comment; /* written above the key in a new config file */
} ct_setting;

typedef struct {
    const char *title;
    const ct_setting *rows;
    size_t count;
} ct_settings_schema;

/* Writes a config file with every setting and its default (0600, atomically) unless `path` exists. */
CT_MUST_CHECK ct_err ct_settings_write_defaults(const ct_settings_schema *schema, const char *path);
/* Loads `path`, refusing keys the schema does not know (a typo must not fall back to a default silently). */
CT_MUST_CHECK ct_err ct_settings_load(const ct_settings_schema *schema, const char *path, ct_config **out);
/* Loads the component folder's config DIR/FILE; when it is missing: CT_ERR_CONFIG "DIR has no FILE: HINT". */
CT_MUST_CHECK ct_err ct_settings_load_dir(const ct_settings_schema *schema, const char *dir, const char *file,
                                          const char *hint, ct_config **out);
/* The value, or the schema's default. `key` must be in the schema. */
const char *ct_settings_get(const ct_settings_schema *schema, const ct_config *cfg, const char *key);
/* Copies a setting into a fixed buffer; a path setting is made relative to `dir` unless absolute or empty. */
CT_MUST_CHECK ct_err ct_settings_copy(const ct_settings_schema *schema, const ct_config *cfg, const char *key,
                                      char *out, size_t out_max);
CT_MUST_CHECK ct_err ct_settings_copy_path(const ct_settings_schema *schema, const ct_config *cfg, const char *key,
                                           const char *dir, char *out, size_t out_max);

/* Sets one setting in the config file `path` (its line replaced, or appended with its comment), atomically, the
 * rest of the file as it was. `value`: one line without '#'. */
CT_MUST_CHECK ct_err ct_settings_set(const ct_settings_schema *schema, const char *path, const char *key,
                                     const char *value);
/* ct_settings_set's new text of the file `path`, for a caller that writes it itself (`out`: freed by the caller). */
CT_MUST_CHECK ct_err ct_settings_render(const ct_settings_schema *schema, const char *path, const char *key,
                                        const char *value, ct_buf *out);

/* ---- secrets from files or the environment, never the command line ---- */
/* Reads a PIN from `path` if non-NULL, else from environment variable `env`; trims one trailing newline. */
CT_MUST_CHECK ct_err ct_secret_load(const char *path, const char *env, char *out, size_t out_max);
/* Reads one line from the controlling terminal (/dev/tty) with echo off, after writing `prompt` to it: a
 * passphrase typed by a person. CT_ERR_USAGE when there is no terminal, or the line is empty or too long. */
CT_MUST_CHECK ct_err ct_secret_prompt(const char *prompt, char *out, size_t out_max);

/* ---- randomness for identifiers (wolfSSL's RNG) ---- */
CT_MUST_CHECK ct_err ct_random(uint8_t *out, size_t len);
/* SHA-256 via wolfSSL. */
CT_MUST_CHECK ct_err ct_sha256(const void *data, size_t len, uint8_t out[32]);

#endif
