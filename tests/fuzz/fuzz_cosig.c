/* Fuzzes the C2SP tlog-cosignature parsers (common/note/cosignature.c): the input as a cosigned note opened for a
 * fixed witness key, as one cosignature line of a fixed checkpoint text, and as a witness verifier key. Whatever
 * parses must satisfy the format: an opened note's text ends in a newline inside the input, a verified line's
 * time is at most 2^63 - 1, a parsed verifier key formats back to the same string. Refusals carry one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/vectors/note/witness.vkey */
static const char k_wkey[] = "witness.example.org/w1+42e79f14+BO1JKMYo0cLG6ukDOJBZlWEpWSc6XGP5NjbBRhSshzfR";
static const char k_text[] = "camtrust.example.com/example-camera-maker/issuance\n5\n"
                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

static void one_line(ct_err rc)
{
    if (rc != CT_OK && strchr(ct_err_detail(), '\n')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ct_note_verifier w;
    static int ready;
    if (!ready && ct_cosig_verifier_parse(k_wkey, strlen(k_wkey), &w) != CT_OK) abort();
    ready = 1;
    size_t text_len = 0;
    uint64_t t = 0;
    ct_err rc = ct_cosig_open(data, size, &w, &text_len, &t);
    one_line(rc);
    if (rc == CT_OK && (text_len == 0 || text_len >= size || data[text_len - 1] != '\n' || t > INT64_MAX)) abort();
    rc = ct_cosig_line_verify((const uint8_t *)k_text, strlen(k_text), (const char *)data, size, &w, &t);
    one_line(rc);
    if (rc == CT_OK && t > INT64_MAX) abort();

    ct_note_verifier parsed;
    rc = ct_cosig_verifier_parse((const char *)data, size, &parsed);
    one_line(rc);
    if (rc == CT_OK) {
        char s[CT_NOTE_VKEY_MAX];
        if (ct_cosig_verifier_format(&parsed, s, sizeof s) != CT_OK) abort();
        size_t n = size && data[size - 1] == '\n' ? size - 1 : size;
        if (strlen(s) != n || memcmp(s, data, n) != 0) abort();
    }
    return 0;
}
