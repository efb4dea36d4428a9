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
