#include "core.h"

#include <stdio.h>
#include <string.h>

bool ct_cli_help(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || (i == 1 && strcmp(argv[i], "-h") == 0)) {
            fputs(usage, stdout);
            return true;
        }
    return false;
}

const char *ct_cli_opt(int argc, char **argv, const char *name)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return NULL;
}

bool ct_cli_known(int argc, char **argv, const char *const *names, size_t n, const char **unknown)
{
    for (int i = 2; i < argc; i += 2) {
        bool ok = false;
        for (size_t k = 0; k < n; k++) ok = ok || strcmp(argv[i], names[k]) == 0;
        if (!ok && unknown) *unknown = argv[i];
        if (!ok || i + 1 >= argc) return false;
    }
    return true;
}

int ct_cli_unknown(const char *prog, const char *word)
{
    fprintf(stderr, "%s: unknown option '%s' (%s --help)\n", prog, word, prog);
    return 2;
}

bool ct_cli_takes(const char *prog, const char *command, const char *options, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = options; n && (p = strstr(p, flag)) != NULL; p += n)
        if ((p == options || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return true;
    fprintf(stderr, "%s: %s does not take %s\n", prog, command, flag);
    return false;
}
