/* camtrust-station: parses arguments and calls one function of station.h per command. */
#define _GNU_SOURCE /* getopt_long */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/note/note.h"
#include "station.h"

static const char usage[] =
    "usage: camtrust-station COMMAND --dir DIR [options]\n"
    "  init --name NAME                          make the station's token and key, write DIR/station.csr\n"
    "  install --cert station.pem --ca-root ops-root.pem [--log-vkey log.vkey]\n"
    "          [--witness-vkey witness.vkey ...] [--witnesses K]\n"
    "                                            install the certificate `camtrust-ca station add` wrote;\n"
    "                                            --log-vkey pins the CA's checkpoint key (the station witnesses);\n"
    "                                            --witness-vkey sets the witnesses it counts, --witnesses K how\n"
    "                                            many must cosign a checkpoint before it is kept or provisioned on\n"
    "                                            (above half of them, else two forks could each be cosigned)\n"
    "  provision --ca https://HOST:PORT --device ADDR [--device ADDR ...] [--devices FILE]\n"
    "            [--report FILE] [--jobs N] [--timeout-ms MS]\n"
    "                                            provision cameras in factory mode (ADDR is host:port),\n"
    "                                            --jobs at once (default 4, at most 32: one CA connection each);\n"
    "                                            the report (default DIR/report.jsonl) gets one JSON line each;\n"
    "                                            before and after, the station witnesses the CA's log\n"
    "  log check --ca https://HOST:PORT [--timeout-ms MS]\n"
    "                                            check the CA's checkpoint extends the one kept (and carries K\n"
    "                                            cosignatures), keep it\n"
    "  log show [--out FILE]                     the kept checkpoint, for another station to compare with\n"
    "  log compare --checkpoint FILE [--ca https://HOST:PORT] [--timeout-ms MS]\n"
    "                                            is FILE (another station's or a witness's checkpoint) the same\n"
    "                                            history as the one kept? (the CA's proof when sizes or audit\n"
    "                                            lengths differ)\n"
    "The token PIN comes from the file named in DIR/station.conf or $" STATION_PIN_ENV ".\n"
    "Exit status of provision: 0 when every camera ended provisioned, 1 otherwise (and when the CA's log shrank\n"
    "or forked, or is not witnessed: provisioning stops). Exit status of log check and log compare: 0 consistent,\n"
    "1 not (or not checked).\n";

#define MAX_DEVICE_ARGS 1024

typedef struct {
    const char *command, *dir, *name, *cert, *ca_root, *ca, *devices_file, *report, *jobs, *timeout, *log_vkey;
    const char *witnesses, *checkpoint, *out;
    const char *devices[MAX_DEVICE_ARGS];
    size_t n_devices;
    const char *witness_vkeys[CT_COSIG_WITNESSES_MAX];
    size_t n_witness_vkeys;
} cli_args;

/* The options each command takes; one it does not take is refused, not ignored. */
static const struct {
    const char *command, *options;
} k_commands[] = {
    {"init", "--dir --name"},
    {"install", "--dir --cert --ca-root --log-vkey --witness-vkey --witnesses"},
    {"provision", "--dir --ca --device --devices --report --jobs --timeout-ms"},
    {"log check", "--dir --ca --timeout-ms"},
    {"log show", "--dir --out"},
    {"log compare", "--dir --checkpoint --ca --timeout-ms"},
};

static int parse_args(int argc, char **argv, cli_args *a)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},     {"name", required_argument, NULL, 'n'},
        {"cert", required_argument, NULL, 'c'},    {"ca-root", required_argument, NULL, 'r'},
        {"ca", required_argument, NULL, 'a'},      {"device", required_argument, NULL, 'D'},
        {"devices", required_argument, NULL, 'f'}, {"report", required_argument, NULL, 'o'},
        {"jobs", required_argument, NULL, 'j'},    {"timeout-ms", required_argument, NULL, 't'},
        {"log-vkey", required_argument, NULL, 'k'}, {"witness-vkey", required_argument, NULL, 'W'},
        {"witnesses", required_argument, NULL, 'K'}, {"checkpoint", required_argument, NULL, 'C'},
        {"out", required_argument, NULL, 'O'},     {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    if (argc < 2 || argv[1][0] == '-') return -1;
    /* The command first, then only options: getopt sees the command where it expects the program name. */
    a->command = argv[1];
    static const char *const log_commands[] = {"log check", "log show", "log compare"};
    for (size_t i = 0; strcmp(argv[1], "log") == 0 && argc > 2 && i < 3; i++) {
        if (strcmp(argv[2], log_commands[i] + 4) != 0) continue; /* a two-word command */
        a->command = log_commands[i];
        argc--;
        argv++;
        break;
    }
    const char *takes = NULL; /* an unknown command: the usage */
    for (size_t k = 0; k < sizeof k_commands / sizeof k_commands[0]; k++)
        if (strcmp(a->command, k_commands[k].command) == 0) takes = k_commands[k].options;
    opterr = 0;
    int c, which = -1;
    /* ":": an option missing its value is told from one that is none of the station's */
    while ((c = getopt_long(argc - 1, argv + 1, ":", opts, &which)) != -1) {
        char flag[32], letter[3] = {'-', (char)optopt, '\0'};
        if (c == '?') { /* named alone: argv + 1's optind - 1 is the word just read */
            (void)ct_cli_unknown("camtrust-station", optopt ? letter : argv[optind]);
            return -2;
        }
        if (c != ':' && takes && ct_snprintf(flag, sizeof flag, "--%s", opts[which].name) == CT_OK &&
            !ct_cli_takes("camtrust-station", a->command, takes, flag))
            return -2;
        const char **slot = c == 'd' ? &a->dir : c == 'n' ? &a->name : c == 'c' ? &a->cert : c == 'r' ? &a->ca_root
                          : c == 'a' ? &a->ca : c == 'f' ? &a->devices_file : c == 'o' ? &a->report
                          : c == 'j' ? &a->jobs : c == 't' ? &a->timeout : c == 'k' ? &a->log_vkey
                          : c == 'K' ? &a->witnesses : c == 'C' ? &a->checkpoint : c == 'O' ? &a->out : NULL;
        if (c == 'D' && a->n_devices < MAX_DEVICE_ARGS) slot = &a->devices[a->n_devices++];
        if (c == 'W' && a->n_witness_vkeys < CT_COSIG_WITNESSES_MAX) slot = &a->witness_vkeys[a->n_witness_vkeys++];
        if (!slot) {
            fprintf(stderr, "camtrust-station: %s\n",
                    c == 'D'   ? "too many --device: use --devices FILE"
                    : c == 'W' ? "too many --witness-vkey"
                               : "an option without its value");
            return -1;
        }
        *slot = optarg;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "camtrust-station: unexpected '%s'\n", argv[optind + 1]);
        return -1;
    }
    return 0;
}

static int fail(ct_err e)
{
    const char *detail = ct_err_detail();
    fprintf(stderr, "camtrust-station: %s\n", *detail ? detail : ct_err_message(e));
    return 1;
}

/* A whole number in [min, max], or -1. */
static long number(const char *s, long min, long max)
{
    char *end = NULL;
    long v = s ? strtol(s, &end, 10) : -1;
    return s && *s && *end == '\0' && v >= min && v <= max ? v : -1;
}

static int provision(const cli_args *a)
{
    long jobs = a->jobs ? number(a->jobs, 1, STATION_MAX_JOBS) : 0;
    long timeout = a->timeout ? number(a->timeout, 100, 600000) : 0;
    if (jobs < 0) {
        fprintf(stderr, "camtrust-station: --jobs is 1..%d (one CA connection each; a CA lets one address hold "
                        "server.per_ip_connections, 32 by default)\n", STATION_MAX_JOBS);
        return 2;
    }
    if (timeout < 0 || !a->ca) {
        fprintf(stderr, "camtrust-station: provision needs --ca URL; --timeout-ms 100..600000\n");
        return 2;
    }
    station_provision_opts o = {.dir = a->dir, .ca_url = a->ca, .devices = a->devices, .n_devices = a->n_devices,
                                .devices_file = a->devices_file, .report_path = a->report, .jobs = (unsigned)jobs,
                                .timeout_ms = (int)timeout};
    station_summary s;
    char line[160];
    ct_err rc = station_provision(&o, &s);
    if (rc != CT_OK) return fail(rc);
    if (station_summary_text(&s, line, sizeof line) == CT_OK) printf("%s\n", line);
    return s.failed == 0 ? 0 : 1;
}

static int log_check(const cli_args *a)
{
    long timeout = a->timeout ? number(a->timeout, 100, 600000) : 0;
    char line[256];
    if (timeout < 0 || !a->ca) {
        fprintf(stderr, "camtrust-station: log check needs --ca URL; --timeout-ms 100..600000\n");
        return 2;
    }
    ct_err rc = station_log_check(a->dir, a->ca, (int)timeout, line, sizeof line);
    if (rc != CT_OK) return fail(rc);
    printf("%s\n", line);
    return 0;
}

static int log_show(const cli_args *a)
{
    ct_buf note = CT_BUF_INIT;
    ct_err rc = station_log_show(a->dir, &note);
    if (rc == CT_OK && a->out) rc = ct_file_write_atomic(a->out, note.data, note.len, 0644);
    else if (rc == CT_OK && fwrite(note.data, 1, note.len, stdout) != note.len) rc = ct_fail(CT_ERR_IO, "cannot write");
    ct_buf_free(&note);
    return rc == CT_OK ? 0 : fail(rc);
}

static int log_compare(const cli_args *a)
{
    long timeout = a->timeout ? number(a->timeout, 100, 600000) : 0;
    char line[3 * 1024];
    if (timeout < 0 || !a->checkpoint) {
        fprintf(stderr, "camtrust-station: log compare needs --checkpoint FILE; --timeout-ms 100..600000\n");
        return 2;
    }
    ct_err rc = station_log_compare(a->dir, a->checkpoint, a->ca, (int)timeout, line, sizeof line);
    if (rc != CT_OK) return fail(rc);
    printf("%s\n", line);
    return 0;
}

static int install(const cli_args *a)
{
    long k = a->witnesses ? number(a->witnesses, 0, CT_COSIG_WITNESSES_MAX) : -1;
    if (a->witnesses && k < 0) {
        fprintf(stderr, "camtrust-station: --witnesses 0..%d\n", CT_COSIG_WITNESSES_MAX);
        return 2;
    }
    station_quorum q = {0};
    station_witnesses w = {.vkey_paths = a->witness_vkeys, .n = a->n_witness_vkeys, .k = k, .installed = &q};
    ct_err rc = station_install(a->dir, a->cert, a->ca_root, a->log_vkey,
                                a->n_witness_vkeys || a->witnesses ? &w : NULL);
    if (rc != CT_OK) return fail(rc);
    /* Said, not refused: fewer witnesses required than there are keeps a station going while some are down. */
    if (station_quorum_splittable(&q))
        fprintf(stderr,
                "camtrust-station: warning: %zu of %zu witnesses is not above half: two forks of the log could each "
                "gather %zu cosignature%s from witnesses apart, seen only when stations compare (log compare); "
                "--witnesses %zu is above half\n",
                q.required, q.configured, q.required, q.required == 1 ? "" : "s", q.configured / 2 + 1);
    printf("station certificate installed in %s%s", a->dir, a->log_vkey ? "; the CA's log key is pinned" : "");
    if (a->n_witness_vkeys || a->witnesses)
        printf("; %zu witness key%s given%s%s", a->n_witness_vkeys, a->n_witness_vkeys == 1 ? "" : "s",
               a->witnesses ? ", cosignatures required: " : "", a->witnesses ? a->witnesses : "");
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    cli_args a;
    if (ct_cli_help(argc, argv, usage)) return 0;
    int parsed = parse_args(argc, argv, &a);
    if (parsed == -2) return 2; /* said in one line */
    if (parsed != 0 || !a.command) {
        fputs(usage, stderr);
        return 2;
    }
    if (!a.dir) {
        fprintf(stderr, "camtrust-station: --dir DIR is required\n");
        return 2;
    }
    ct_err rc;
    if (strcmp(a.command, "init") == 0 && a.name) {
        if ((rc = station_init(a.dir, a.name)) != CT_OK) return fail(rc);
        printf("station %s created in %s: register %s/station.csr with camtrust-ca station add\n", a.name, a.dir,
               a.dir);
        return 0;
    }
    if (strcmp(a.command, "install") == 0 && a.cert && a.ca_root) return install(&a);
    if (strcmp(a.command, "log check") == 0) return log_check(&a);
    if (strcmp(a.command, "log show") == 0) return log_show(&a);
    if (strcmp(a.command, "log compare") == 0) return log_compare(&a);
    if (strcmp(a.command, "provision") == 0) return provision(&a);
    fputs(usage, stderr);
    return 2;
}
