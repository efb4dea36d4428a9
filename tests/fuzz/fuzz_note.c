/* Fuzzes the C2SP signed-note and checkpoint parsers (common/note): a note opened with a fixed verifier key, the
 * input as a checkpoint's text and as a verifier key string. Whatever parses must satisfy the format: an opened
 * note's text ends in a newline inside the input; a parsed checkpoint formats back to text that parses to the
 * same fields; a parsed verifier key formats back to the same string. Refusals carry a one-line reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char k_vkey[] =
    "camtrust.example.com/example-camera-maker/issuance+99798d0c+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";

static void one_line(ct_err rc)
{
    if (rc != CT_OK && strchr(ct_err_detail(), '\n')) abort();
}

static void checkpoint_round_trip(const uint8_t *data, size_t size)
{
    ct_checkpoint cp, again;
    ct_err rc = ct_checkpoint_parse(data, size, &cp);
    one_line(rc);
    if (rc != CT_OK) return;
    ct_buf text = CT_BUF_INIT;
    if (ct_buf_alloc(&text, CT_CHECKPOINT_TEXT_MAX) != CT_OK) abort();
    if (ct_checkpoint_format(&cp, &text) != CT_OK) abort();
    if (ct_checkpoint_parse(text.data, text.len, &again) != CT_OK) abort();
    if (memcmp(&cp, &again, sizeof cp) != 0) abort();
    ct_buf_free(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ct_note_verifier v;
    static int ready;
    if (!ready && ct_note_verifier_parse(k_vkey, strlen(k_vkey), &v) != CT_OK) abort();
    ready = 1;
    size_t text_len = 0;
    ct_err rc = ct_note_open(data, size, &v, &text_len);
    one_line(rc);
    if (rc == CT_OK && (text_len == 0 || text_len >= size || data[text_len - 1] != '\n')) abort();
    ct_checkpoint cp;
    one_line(ct_checkpoint_open(data, size, &v, &cp));
    checkpoint_round_trip(data, size);

    ct_note_verifier parsed;
    rc = ct_note_verifier_parse((const char *)data, size, &parsed);
    one_line(rc);
    if (rc == CT_OK) {
        char s[CT_NOTE_VKEY_MAX];
        if (ct_note_verifier_format(&parsed, s, sizeof s) != CT_OK) abort();
        size_t n = size && data[size - 1] == '\n' ? size - 1 : size;
        if (strlen(s) != n || memcmp(s, data, n) != 0) abort();
    }
    return 0;
}
