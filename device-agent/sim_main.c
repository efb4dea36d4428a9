/* camtrust-agent-sim: makes simulated camera folders for tests, demos and benches. A real camera's folder comes
 * from its factory image and secure element, so this is a tool of its own: camtrust-agent, the firmware's binary,
 * does not carry the token set-up it needs. */
#include <stdio.h>
#include <string.h>

#include "agent.h"

static const char usage[] =
    "usage: camtrust-agent-sim simulate --dir DEVDIR --serial S --model M --root root.pem [--mac MAC]\n"
    "                                   [--ops-root ops-root.pem] [--log-vkey log.vkey]\n"
    "  makes a simulated camera folder for camtrust-agent: identity, agent.conf, its own SoftHSM token, the\n"
    "  pinned device root (--ops-root: pin the root viewers chain to; --log-vkey: pin the CA's checkpoint key,\n"
    "  identities must be proven logged)\n"
    "exit: 0 ok; 1 error; 2 usage\n";

int main(int argc, char **argv)
{
    static const char *const names[] = {"--dir", "--serial", "--model", "--root", "--mac", "--ops-root", "--log-vkey"};
    if (ct_cli_help(argc, argv, usage)) return 0;
    const char *dir = ct_cli_opt(argc, argv, "--dir"), *serial = ct_cli_opt(argc, argv, "--serial"),
               *model = ct_cli_opt(argc, argv, "--model"), *root = ct_cli_opt(argc, argv, "--root"),
               *ops_root = ct_cli_opt(argc, argv, "--ops-root"), *log_vkey = ct_cli_opt(argc, argv, "--log-vkey");
    const char *unknown = NULL;
    if (argc < 2 || strcmp(argv[1], "simulate") != 0 ||
        !ct_cli_known(argc, argv, names, sizeof names / sizeof names[0], &unknown) || !dir || !serial || !model ||
        !root) {
        if (unknown) return ct_cli_unknown("camtrust-agent-sim", unknown);
        fputs(usage, stderr);
        return 2;
    }
    ct_err rc = agent_simulate(dir, serial, model, ct_cli_opt(argc, argv, "--mac"), root);
    if (rc == CT_OK && ops_root) rc = agent_pin_ops_root(dir, ops_root);
    if (rc == CT_OK && log_vkey) rc = agent_pin_log_vkey(dir, log_vkey);
    if (rc == CT_OK) return 0;
    const char *detail = ct_err_detail();
    fprintf(stderr, "camtrust-agent-sim: %s%s%s\n", ct_err_message(rc), *detail ? ": " : "", detail);
    return 1;
}
