/* camtrust-agent: argument parsing only; each command is a function of agent.h. */
#include <stdio.h>
#include <string.h>

#include "agent.h"

static const char usage[] =
    "usage: camtrust-agent COMMAND --dir DEVDIR [options]\n"
    "  simulate --serial S --model M --root root.pem [--mac MAC]   make a simulated camera folder\n"
    "  factory --listen ADDR     factory mode: provisioning endpoint for the station (refused once locked)\n"
    "  boot                      check the installed identity; exit 0 only if provisioned and valid\n"
    "  serve --listen ADDR       HTTPS server (TLS 1.3) with the identity key in the token\n"
    "  reset                     factory reset: destroy the keys and the credentials\n"
    "ADDR is host:port (numeric; port 0 picks one and prints it).\n"
    "exit: 0 ok; 1 error or broken; 2 usage; 3 boot found the camera unprovisioned\n";

/* "--name value" pairs after the command; NULL when absent. */
static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return NULL;
}

static int known_options(int argc, char **argv)
{
    static const char *const names[] = {"--dir", "--serial", "--model", "--root", "--mac", "--listen"};
    for (int i = 2; i < argc; i += 2) {
        bool ok = false;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) ok = ok || strcmp(argv[i], names[k]) == 0;
        if (!ok || i + 1 >= argc) return 0;
    }
    return 1;
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
    if (rc == CT_OK) return 0;
    return st.state == AGENT_UNPROVISIONED ? 3 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !known_options(argc, argv)) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1], *dir = opt(argc, argv, "--dir"), *listen = opt(argc, argv, "--listen");
    if (!dir) {
        fputs(usage, stderr);
        return 2;
    }
    ct_err rc;
    if (strcmp(cmd, "boot") == 0) return boot(dir);
    if (strcmp(cmd, "simulate") == 0) {
        const char *serial = opt(argc, argv, "--serial"), *model = opt(argc, argv, "--model"),
                   *root = opt(argc, argv, "--root");
        if (!serial || !model || !root) {
            fputs(usage, stderr);
            return 2;
        }
        rc = agent_simulate(dir, serial, model, opt(argc, argv, "--mac"), root);
    } else if (strcmp(cmd, "reset") == 0) {
        rc = agent_reset(dir);
    } else if ((strcmp(cmd, "factory") == 0 || strcmp(cmd, "serve") == 0) && listen) {
        rc = cmd[0] == 'f' ? agent_factory_serve(dir, listen) : agent_serve(dir, listen);
    } else {
        fputs(usage, stderr);
        return 2;
    }
    return rc == CT_OK ? 0 : fail(rc);
}
