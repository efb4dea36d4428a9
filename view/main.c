/* camtrust-view: argument parsing only; each command is a function of view.h. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "view.h"

/* live --max-age: the camera's default playlist (6 segments of 2 s) read from its oldest segment, whose first GOP
 * was signed up to 14 s before it is fetched, plus fetch latency and clock skew (README, Live video). */
#define VIEW_MAX_AGE_DEFAULT "30"
#define MAX_AGE_LIMIT 86400

static const char usage[] =
    "usage: camtrust-view COMMAND --dir VIEWDIR [options]\n"
    "  init --name NAME            make the viewer key in the viewer's own token; writes VIEWDIR/viewer.csr\n"
    "  install --cert viewer.pem   install the certificate camtrust-ca viewer add wrote\n"
    "  decrypt [--root R [--crl C]] IN.mp4 OUT.mp4   decrypt a camtrust recording into a clear MP4 (the key\n"
    "                              stays in the token); with --root (device root) only if its signatures verify\n"
    "  verify --root R [--crl C] [--serial S] IN.mp4   (no --dir) check a signed, encrypted recording's signatures\n"
    "                              without any key; --crl: the device issuing CA's CRL (a camera revoked before it\n"
    "                              recorded); --serial: the camera it must come from (another's GOPs: inserted)\n"
    "  keys [--key] IN.mp4         list key IDs and recipients; --key also prints this viewer's content keys\n"
    "  live --root R [--crl C] [--out -|FILE] [--connect ADDR:PORT] [--max-age S] https://SERIAL.DOMAIN:PORT/live/\n"
    "                              watch a camera live: TLS only to the camera named SERIAL.DOMAIN chaining to the\n"
    "                              device root R; each segment verified (GOP report), decrypted in the token and\n"
    "                              written to --out (default -, standard output: the report then goes to standard\n"
    "                              error); a segment that fails is reported and not shown. --connect: reach this\n"
    "                              address instead of resolving the name (the name is still what is verified).\n"
    "                              --crl: the device root's CRL (revoked issuing CAs) or the issuing CA's: a camera\n"
    "                              it revokes is refused before any request, a revoked signer's video not shown\n"
    "                              --max-age: live means signed at most S seconds (default " VIEW_MAX_AGE_DEFAULT ")\n"
    "                              before (or after) the viewer's clock: older video, video dated further ahead,\n"
    "                              or signed without a clock, is not shown (stale: an old recording); 0: no bound\n"
    "The token PIN comes from the file named in VIEWDIR/view.conf or $" VIEW_PIN_ENV ".\n"
    "exit: 0 ok (verify: authentic); 1 error, refusal or not authentic; 2 usage\n";

static int fail(ct_err rc)
{
    const char *detail = ct_err_detail();
    fprintf(stderr, "camtrust-view: %s%s%s\n", ct_err_message(rc), *detail ? ": " : "", detail);
    return 1;
}

/* live: the video to --out (standard output by default), the report to standard output, or to standard error
 * when the video goes to standard output. Exit 0 only if every segment was shown. */
static int live(const char *dir, const char *root, const char *crl, const char *url, const char *out,
                const char *connect, const char *max_age)
{
    bool to_stdout = !out || strcmp(out, "-") == 0, all = false;
    const char *age_text = max_age ? max_age : VIEW_MAX_AGE_DEFAULT;
    char *end = NULL;
    long age = strtol(age_text, &end, 10);
    if (age_text[0] < '0' || age_text[0] > '9' || *end || age > MAX_AGE_LIMIT) {
        fprintf(stderr, "camtrust-view: --max-age takes whole seconds, 0 (no bound) to %d\n", MAX_AGE_LIMIT);
        return 2;
    }
    /* Clear video: its owner's only from creation (a file grown segment by segment, so that it can be played
     * while it grows: no temporary file). */
    int fd = to_stdout ? -1 : open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *f = to_stdout ? stdout : fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        if (fd >= 0) {
            close(fd);
            unlink(out);
        }
        fprintf(stderr, "camtrust-view: cannot create %s (it must not exist)\n", out);
        return 1;
    }
    view_live_opts o = {.connect = connect, .poll_ms = 200, .crl = crl, .max_age_s = age};
    ct_err rc = view_live(dir, root, url, &o, f, to_stdout ? stderr : stdout, &all);
    if (!to_stdout && fclose(f) != 0 && rc == CT_OK) rc = CT_ERR_IO;
    if (rc != CT_OK) return fail(rc);
    return all ? 0 : 1;
}

/* The options each command takes; one it does not take is refused, not ignored. */
static const char *options_of(const char *command)
{
    static const char *const table[][2] = {
        {"init", "--dir --name"},   {"install", "--dir --cert"}, {"decrypt", "--dir --root --crl"},
        {"verify", "--root --crl --serial"}, {"keys", "--dir --key"},     {"live", "--dir --root --crl --out --connect --max-age"},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++)
        if (strcmp(command, table[k][0]) == 0) return table[k][1];
    return NULL; /* an unknown command: the usage */
}

int main(int argc, char **argv)
{
    if (ct_cli_help(argc, argv, usage)) return 0;
    const char *takes = argc >= 2 ? options_of(argv[1]) : NULL;
    const char *dir = NULL, *name = NULL, *cert = NULL, *root = NULL, *crl = NULL, *files[2] = {NULL, NULL};
    const char *out = NULL, *connect = NULL, *serial = NULL, *max_age = NULL;
    bool key = false;
    int nfiles = 0;
    for (int i = 2; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--dir") == 0 ? &dir : strcmp(argv[i], "--name") == 0 ? &name
                            : strcmp(argv[i], "--cert") == 0 ? &cert : strcmp(argv[i], "--root") == 0 ? &root
                            : strcmp(argv[i], "--crl") == 0  ? &crl
                            : strcmp(argv[i], "--out") == 0  ? &out
                            : strcmp(argv[i], "--connect") == 0 ? &connect
                            : strcmp(argv[i], "--serial") == 0 ? &serial
                            : strcmp(argv[i], "--max-age") == 0 ? &max_age
                                                             : NULL;
        if ((slot || strcmp(argv[i], "--key") == 0) && takes && !ct_cli_takes("camtrust-view", argv[1], takes, argv[i]))
            return 2;
        if (slot && i + 1 < argc) *slot = argv[++i];
        else if (strcmp(argv[i], "--key") == 0) key = true;
        else if (argv[i][0] != '-' && nfiles < 2) files[nfiles++] = argv[i];
        else nfiles = 3;
    }
    const char *cmd = argc >= 2 ? argv[1] : "";
    ct_err rc;
    cenc_stats st;
    bool authentic = false;
    if (strcmp(cmd, "verify") == 0 && root && nfiles == 1 && !dir) {
        rc = view_verify(root, crl, serial, files[0], stdout, &authentic);
        if (rc == CT_OK) return authentic ? 0 : 1;
    } else if (!dir || nfiles > 2) {
        rc = CT_ERR_USAGE;
    } else if (strcmp(cmd, "init") == 0 && name && nfiles == 0) {
        if ((rc = view_init(dir, name)) == CT_OK)
            printf("viewer %s created in %s: certify %s/viewer.csr with camtrust-ca viewer add\n", name, dir, dir);
    } else if (strcmp(cmd, "install") == 0 && cert && nfiles == 0) {
        if ((rc = view_install(dir, cert)) == CT_OK) printf("viewer certificate installed in %s\n", dir);
    } else if (strcmp(cmd, "decrypt") == 0 && nfiles == 2 && (root || !crl)) {
        if ((rc = view_decrypt(dir, files[0], files[1], root, crl, stdout, &st)) == CT_OK)
            printf("decrypted %s -> %s: %llu frames\n", files[0], files[1], (unsigned long long)st.samples);
    } else if (strcmp(cmd, "live") == 0 && nfiles == 1 && root) {
        return live(dir, root, crl, files[0], out, connect, max_age);
    } else if (strcmp(cmd, "keys") == 0 && nfiles == 1) {
        rc = view_keys(dir, files[0], key, stdout);
    } else {
        rc = CT_ERR_USAGE;
    }
    if (rc == CT_ERR_USAGE && !*ct_err_detail()) {
        fputs(usage, stderr);
        return 2;
    }
    return rc == CT_OK ? 0 : fail(rc);
}
