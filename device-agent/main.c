/* camtrust-agent: argument parsing only; each command is a function of agent.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

static const char usage[] =
    "usage: camtrust-agent COMMAND --dir DEVDIR [options]\n"
    "  factory --listen ADDR   factory mode: provisioning endpoint for the station (once locked it only\n"
    "                          shows what it installed, for the station to confirm with the CA)\n"
    "  boot                    check the installed identity (exit 0: provisioned, valid)\n"
    "  serve --listen ADDR     HTTPS server (TLS 1.3) with the identity key in the token\n"
    "  reset                   factory reset: destroy the keys and the credentials\n"
    "  sign [--start UNIX] [--fps N] IN OUT   sign a recording (H.264/H.265, Annex B or MP4) with the\n"
    "                          media-signing key (ONVIF Media Signing); OUT keeps IN's container\n"
    "  record --viewers DIR [--scheme cbcs|cenc] [--segment-ms N] [--fps N] [--sign yes --start UNIX]\n"
    "         [--cmaf yes] IN OUT\n"
    "                          encrypt a recording (CENC fragmented MP4) for the viewer certificates in DIR,\n"
    "                          a new key per segment; --sign yes also signs the stored (encrypted) bytes with\n"
    "                          the media-signing key; --cmaf yes: OUT is a folder of live CMAF segments\n"
    "                          (init.mp4, seg-NNNNNN.m4s, index.m3u8), each written as soon as complete\n"
    "  stream --viewers DIR --listen ADDR [--sign yes] [--scheme cbcs|cenc] [--segment-ms N] [--window N]\n"
    "         [--fps N] [--in FIFO] [--live DIR] [--record DIR [--record-max-kb N] [--record-max-age S]]\n"
    "                          live video: reads the encoder's Annex B H.264/H.265 from standard input (or\n"
    "                          FIFO), writes signed, encrypted CMAF segments (one key each, for the viewers in\n"
    "                          DIR, re-read on change, each minute) and a live playlist (the last N segments)\n"
    "                          into --live (default DEVDIR/live), served over HTTPS at /live/; --record keeps\n"
    "                          every segment (rotated by size or age); serves on after the input ends until stopped\n"
    "ADDR is host:port (numeric; port 0 picks one and prints it).\n"
    "DEVDIR is the camera's folder (a simulated one: camtrust-agent-sim simulate).\n"
    "exit: 0 ok; 1 error or broken; 2 usage; 3 boot: camera unprovisioned\n";

/* The options a command takes, a window of one list (no bytes to spare for a table): record takes the first 8,
 * stream the 13 from "--viewers", boot and reset "--dir", factory and serve "--dir" and "--listen". Any other is a
 * usage error, not ignored. */
typedef enum { TAKES_RECORD, TAKES_STREAM, TAKES_DIR, TAKES_LISTEN } takes;
static const char *g_unknown; /* the option that none of the command's is: the usage error names it alone */

static int usage_error(void)
{
    if (g_unknown) return ct_cli_unknown("camtrust-agent", g_unknown);
    fputs(usage, stderr);
    return 2;
}

static int known_options(int argc, char **argv, takes t)
{
    static const char *const names[] = {"--start",  "--cmaf",   "--viewers", "--scheme", "--segment-ms",
                                        "--fps",    "--sign",   "--dir",     "--listen", "--window",
                                        "--in",     "--live",   "--record",  "--record-max-kb", "--record-max-age"};
    static const unsigned char window[][2] = {[TAKES_RECORD] = {0, 8}, [TAKES_STREAM] = {2, 13},
                                              [TAKES_DIR] = {7, 1}, [TAKES_LISTEN] = {7, 2}};
    return ct_cli_known(argc, argv, names + window[t][0], window[t][1], &g_unknown);
}

static int fail(ct_err rc)
{
    const char *detail = ct_err_detail();
    fprintf(stderr, "camtrust-agent: %s%s%s\n", ct_err_message(rc), *detail ? ": " : "", detail);
    return 1;
}

static int boot(const char *dir)
{
    agent_status st;
    char line[512];
    ct_err rc = agent_boot(dir, &st);
    if (agent_status_line(&st, line, sizeof line) != CT_OK) return fail(CT_ERR_INTERNAL);
    printf("%s\n", line);
    if (rc == CT_OK && !st.log_checked)
        fprintf(stderr, "camtrust-agent: no log key pinned: that the identity was logged is not checked\n");
    if (rc == CT_OK) return 0;
    return st.state == AGENT_UNPROVISIONED ? 3 : 1;
}

/* How much larger `out` is than `in`, in percent (0 for nothing in): one copy of the floating-point code, on signed
 * values (sizes are far below 2^63), whose conversion is one instruction. */
static __attribute__((noinline)) double growth(unsigned long long out, unsigned long long in)
{
    return in ? 100.0 * (double)(long long)(out - in) / (double)(long long)in : 0.0;
}

/* A whole decimal number in [min, max], or false. */
static bool number(const char *s, unsigned long long min, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    if (!s) return true;
    if (*s < '0' || *s > '9') return false;
    *out = strtoull(s, &end, 10);
    return *end == '\0' && *out >= min && *out <= max;
}

/* sign --dir D [--start UNIX] [--fps N] IN OUT: options in pairs, then the two files. */
static int sign(int argc, char **argv)
{
    const char *dir = NULL, *files[2] = {NULL, NULL};
    ms_sign_stats st = {0};
    unsigned long long start = 0, fps = 0;
    int nfiles = 0;
    for (int i = 2; i < argc; i++) {
        bool ok = true;
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--start") == 0 && i + 1 < argc) ok = number(argv[++i], 0, INT64_MAX, &start);
        else if (strcmp(argv[i], "--fps") == 0 && i + 1 < argc) ok = number(argv[++i], 0, 1000, &fps);
        else if (argv[i][0] != '-' && nfiles < 2) files[nfiles++] = argv[i];
        else {
            nfiles = 3;
            if (argv[i][0] == '-' && i + 1 < argc) g_unknown = argv[i]; /* not sign's, nor one missing its value */
        }
        if (!ok) nfiles = 3;
    }
    st.start = (time_t)start;
    st.fps = (unsigned)fps;
    if (!dir || nfiles != 2) return usage_error();
    ct_err rc = agent_sign(dir, files[0], files[1], &st);
    if (rc != CT_OK) return fail(rc);
    printf("signed %s -> %s: %llu GOPs, %llu -> %llu bytes (+%.3f%%)\n", files[0], files[1],
           (unsigned long long)st.gops, (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
           growth(st.bytes_out, st.bytes_in));
    return 0;
}

/* record --dir D --viewers V [options] IN OUT: option pairs, then the two files. */
static int record(int argc, char **argv)
{
    const char *dir = ct_cli_opt(argc - 2, argv, "--dir"), *viewers = ct_cli_opt(argc - 2, argv, "--viewers"),
               *scheme = ct_cli_opt(argc - 2, argv, "--scheme"), *seg = ct_cli_opt(argc - 2, argv, "--segment-ms"),
               *fps = ct_cli_opt(argc - 2, argv, "--fps"), *sign = ct_cli_opt(argc - 2, argv, "--sign"),
               *start = ct_cli_opt(argc - 2, argv, "--start"), *cmaf = ct_cli_opt(argc - 2, argv, "--cmaf");
    agent_record_opts o = {.scheme = CENC_CBCS};
    unsigned long long start_n = 0, seg_n = 10000, fps_n = 30;
    o.sign = sign && strcmp(sign, "yes") == 0;
    o.cmaf = cmaf && strcmp(cmaf, "yes") == 0;
    if (argc < 6 || !known_options(argc - 2, argv, TAKES_RECORD) || !dir || !viewers || !number(start, 0, INT64_MAX, &start_n) ||
        !number(seg, 0, UINT32_MAX, &seg_n) || !number(fps, 1, 1000, &fps_n) ||
        (sign && !o.sign && strcmp(sign, "no") != 0) || (cmaf && !o.cmaf && strcmp(cmaf, "no") != 0) ||
        argv[argc - 2][0] == '-') {
        return usage_error();
    }
    o.start = (time_t)start_n;
    o.segment_ms = (uint32_t)seg_n;
    o.fps = (unsigned)fps_n;
    cenc_stats st;
    ct_err rc = scheme ? cenc_scheme_parse(scheme, &o.scheme) : CT_OK;
    if (rc == CT_OK) rc = agent_record(dir, viewers, argv[argc - 2], argv[argc - 1], &o, &st);
    if (rc != CT_OK) return fail(rc);
    printf("recorded %s -> %s: %s, %llu frames, %llu fragments, %llu %s, %llu -> %llu bytes (+%.3f%%)\n",
           argv[argc - 2], argv[argc - 1], cenc_scheme_name(o.scheme), (unsigned long long)st.samples,
           (unsigned long long)st.fragments, (unsigned long long)st.segments, o.cmaf ? "segments (one key each)" : "keys",
           (unsigned long long)st.media_bytes,
           (unsigned long long)st.out_bytes,
           growth(st.out_bytes, st.media_bytes));
    return 0;
}

static void stream_ended(void *arg, const cenc_stats *st)
{
    (void)arg;
    printf("stream ended: %llu frames, %llu segments, %llu -> %llu bytes (+%.3f%%)\n", (unsigned long long)st->samples,
           (unsigned long long)st->segments, (unsigned long long)st->media_bytes, (unsigned long long)st->out_bytes,
           growth(st->out_bytes, st->media_bytes));
    fflush(stdout);
}

static int stream(int argc, char **argv)
{
    const char *dir = ct_cli_opt(argc, argv, "--dir"), *scheme = ct_cli_opt(argc, argv, "--scheme"),
               *sign = ct_cli_opt(argc, argv, "--sign");
    char live[1024];
    unsigned long long seg = 2000, window = 6, fps = 30, max_kb = 0, max_age = 0;
    agent_stream_opts o = {.viewers = ct_cli_opt(argc, argv, "--viewers"),
                           .listen = ct_cli_opt(argc, argv, "--listen"),
                           .in = ct_cli_opt(argc, argv, "--in"), .record_dir = ct_cli_opt(argc, argv, "--record"),
                           .scheme = CENC_CBCS, .sign = sign && strcmp(sign, "yes") == 0, .on_end = stream_ended};
    if (!known_options(argc, argv, TAKES_STREAM) || !dir || !o.viewers || !o.listen || (sign && !o.sign && strcmp(sign, "no") != 0) ||
        !number(ct_cli_opt(argc, argv, "--segment-ms"), 100, 600000, &seg) ||
        !number(ct_cli_opt(argc, argv, "--window"), 1, 1000, &window) ||
        !number(ct_cli_opt(argc, argv, "--fps"), 1, 1000, &fps) ||
        !number(ct_cli_opt(argc, argv, "--record-max-kb"), 1, 1ull << 40, &max_kb) ||
        !number(ct_cli_opt(argc, argv, "--record-max-age"), 1, UINT32_MAX, &max_age) ||
        ((max_kb || max_age) && !o.record_dir)) {
        return usage_error();
    }
    o.segment_ms = (uint32_t)seg;
    o.window = (unsigned)window;
    o.fps = (unsigned)fps;
    o.record_max_bytes = max_kb << 10;
    o.record_max_age_s = (uint32_t)max_age;
    o.live_dir = ct_cli_opt(argc, argv, "--live");
    if (!o.live_dir) {
        if (ct_path_join(live, sizeof live, dir, "live") != CT_OK) return fail(CT_ERR_CONFIG);
        o.live_dir = live;
    }
    cenc_stats st;
    ct_err rc = scheme ? cenc_scheme_parse(scheme, &o.scheme) : CT_OK;
    if (rc == CT_OK) rc = agent_stream(dir, &o, &st);
    return rc == CT_OK ? 0 : fail(rc);
}

int main(int argc, char **argv)
{
    if (ct_cli_help(argc, argv, usage)) return 0;
    const char *cmd = argc >= 2 ? argv[1] : "";
    if (strcmp(cmd, "record") == 0) return record(argc, argv);
    if (strcmp(cmd, "sign") == 0) return sign(argc, argv);
    if (strcmp(cmd, "stream") == 0) return stream(argc, argv);
    bool listens = strcmp(cmd, "factory") == 0 || strcmp(cmd, "serve") == 0;
    const char *dir = ct_cli_opt(argc, argv, "--dir"), *listen = ct_cli_opt(argc, argv, "--listen");
    if (!known_options(argc, argv, listens ? TAKES_LISTEN : TAKES_DIR) || !dir) return usage_error();
    ct_err rc;
    if (strcmp(cmd, "boot") == 0) return boot(dir);
    if (strcmp(cmd, "reset") == 0) rc = agent_reset(dir);
    else if (listens && listen) rc = cmd[0] == 'f' ? agent_factory_serve(dir, listen) : agent_serve(dir, listen);
    else return usage_error();
    return rc == CT_OK ? 0 : fail(rc);
}
