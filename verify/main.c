/* camtrust-verify: argument parsing only; the work is ms_verify_paths (common/mediasign). */
#include <stdio.h>
#include <string.h>

#include "mediasign.h"

static const char usage[] =
    "usage: camtrust-verify --root root.pem [--crl crl.pem] [--serial SERIAL] [--json] CLIP\n"
    "  CLIP is raw H.264/H.265 (Annex B), MP4, or fragmented MP4 such as camtrust-agent record writes, also\n"
    "  encrypted (CENC cbcs/cenc: checked as stored, no key needed), signed in the ONVIF Media Signing format.\n"
    "  Reports every GOP (authentic, altered, missing, reordered, inserted, unsigned, untrusted) and the camera.\n"
    "  --serial: the camera the clip is said to come from; a GOP another camera signed is reported inserted.\n"
    "exit: 0 the whole clip is authentic; 1 it is not; 2 usage; 3 the clip or the root cannot be read\n";

int main(int argc, char **argv)
{
    const char *root = NULL, *crl = NULL, *serial = NULL, *clip = NULL;
    bool json = false;
    if (ct_cli_help(argc, argv, usage)) return 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) root = argv[++i];
        else if (strcmp(argv[i], "--crl") == 0 && i + 1 < argc) crl = argv[++i];
        else if (strcmp(argv[i], "--serial") == 0 && i + 1 < argc) serial = argv[++i];
        else if (argv[i][0] != '-' && !clip) clip = argv[i];
        else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!root || !clip) {
        fputs(usage, stderr);
        return 2;
    }
    bool authentic = false;
    ct_err rc = ms_verify_paths(root, crl, serial, clip, NULL, json, stdout, &authentic);
    if (rc != CT_OK) {
        const char *d = ct_err_detail();
        fprintf(stderr, "camtrust-verify: %s%s%s\n", ct_err_message(rc), *d ? ": " : "", d);
        return 3;
    }
    return authentic ? 0 : 1;
}
