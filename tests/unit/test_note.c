/* note: C2SP signed notes and checkpoints (common/note) against vectors made independently by Python's
 * `cryptography` (tests/vectors/note/make.py): the verifier key and key ID agree byte for byte, good notes open,
 * and every attack is refused with a one-line reason: any byte changed, a wrong key ID, an unknown signer, a
 * checkpoint of another origin, a signature of other text, malformed notes and checkpoints. Then a note signed
 * by an Ed25519 key inside a real SoftHSM token (hsm_eddsa) verifies. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../hsm/hsm.h"
#include "note.h"
#include "test_util.h"

#ifndef NOTE_VECTORS
#error "NOTE_VECTORS: the folder tests/vectors/note"
#endif

static ct_buf vec(const char *name)
{
    char path[1024];
    ct_buf b = CT_BUF_INIT;
    ck_assert_int_eq(ct_path_join(path, sizeof path, NOTE_VECTORS, name), CT_OK);
    ck_assert_int_eq(ct_file_read(path, CT_NOTE_MAX * 2, &b), CT_OK);
    return b;
}

static ct_note_verifier log_vkey(void)
{
    ct_buf b = vec("log.vkey");
    ct_note_verifier v;
    ck_assert_int_eq(ct_note_verifier_parse((const char *)b.data, b.len, &v), CT_OK);
    ct_buf_free(&b);
    return v;
}

/* A refusal: the expected code and a one-line detail holding `want`. */
static void refused(ct_err rc, ct_err code, const char *want)
{
    ck_assert_msg(rc == code, "got %s (%s), want %s", ct_err_name(rc), ct_err_detail(), ct_err_name(code));
    ck_assert_msg(strstr(ct_err_detail(), want), "detail '%s' lacks '%s'", ct_err_detail(), want);
    ck_assert_msg(!strchr(ct_err_detail(), '\n'), "detail is not one line");
}

static ct_err open_text(const char *s, ct_checkpoint *cp)
{
    ct_note_verifier v = log_vkey();
    return ct_checkpoint_open((const uint8_t *)s, strlen(s), &v, cp);
}

START_TEST(verifier_key_matches_python)
{
    ct_buf b = vec("log.vkey");
    ct_note_verifier v = log_vkey();
    char again[CT_NOTE_VKEY_MAX];
    ck_assert_int_eq(ct_note_verifier_format(&v, again, sizeof again), CT_OK);
    ck_assert_uint_eq(strlen(again) + 1, b.len); /* the file has a trailing newline */
    ck_assert_mem_eq(again, b.data, strlen(again));
    ck_assert_str_eq(v.name, "camtrust.example.com/example-camera-maker/issuance");
    ct_note_verifier made;
    ck_assert_int_eq(ct_note_verifier_make(v.name, v.pub, &made), CT_OK);
    ck_assert_mem_eq(made.key_id, v.key_id, 4);
    ct_buf_free(&b);
}
END_TEST

START_TEST(good_checkpoints_open)
{
    ct_note_verifier v = log_vkey();
    ct_checkpoint cp;
    uint8_t root[32], z[32];
    ct_buf b = vec("checkpoint.note");
    ck_assert_int_eq(ct_checkpoint_open(b.data, b.len, &v, &cp), CT_OK);
    ck_assert_uint_eq(cp.size, 5);
    ck_assert_int_eq(ct_sha256("root of 5 leaves", 16, root), CT_OK);
    ck_assert_mem_eq(cp.root, root, 32);
    ck_assert(cp.has_audit && cp.has_time);
    ck_assert_uint_eq(cp.audit_entries, 7);
    ck_assert_int_eq(cp.audit_hash[0], 0x5a);
    ck_assert_int_eq(cp.audit_hash[31], 0x5a);
    ck_assert_uint_eq(cp.time_ms, 1764756000123ULL);
    /* our own formatting writes the same text Python signed */
    ct_buf text = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&text, CT_CHECKPOINT_TEXT_MAX), CT_OK);
    ck_assert_int_eq(ct_checkpoint_format(&cp, &text), CT_OK);
    size_t text_len = 0;
    ck_assert_int_eq(ct_note_open(b.data, b.len, &v, &text_len), CT_OK);
    ck_assert_uint_eq(text.len, text_len);
    ck_assert_mem_eq(text.data, b.data, text_len);
    ct_buf_free(&text);
    ct_buf_free(&b);
    b = vec("cosigned.note"); /* a witness's signature first: skipped */
    ck_assert_int_eq(ct_checkpoint_open(b.data, b.len, &v, &cp), CT_OK);
    ct_buf_free(&b);
    b = vec("empty-tree.note");
    ck_assert_int_eq(ct_checkpoint_open(b.data, b.len, &v, &cp), CT_OK);
    ck_assert_uint_eq(cp.size, 0);
    ck_assert_int_eq(ct_sha256("", 0, z), CT_OK);
    ck_assert_mem_eq(cp.root, z, 32);
    ct_buf_free(&b);
}
END_TEST

START_TEST(attacks_are_refused)
{
    ct_note_verifier v = log_vkey();
    ct_checkpoint cp;
    static const struct {
        const char *file, *want;
    } cases[] = {
        {"other-origin.note", "a checkpoint of log camtrust.example.com/other/issuance"},
        {"unknown-signer.note", "signed by witness.example.org/w1"},
        {"wrong-key-id.note", "not signed by camtrust.example.com/example-camera-maker/issuance (key ID 99798d0c)"},
        {"bad-signature.note", "does not verify"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_buf b = vec(cases[i].file);
        refused(ct_checkpoint_open(b.data, b.len, &v, &cp), CT_ERR_INTEGRITY, cases[i].want);
        ct_buf_free(&b);
    }
    /* Every bit flipped anywhere (text, dash, name, key ID, signature, newlines) is refused. */
    ct_buf b = vec("checkpoint.note");
    for (size_t i = 0; i < b.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (uint8_t)(1u << bit);
            ct_err rc = ct_checkpoint_open(b.data, b.len, &v, &cp);
            ck_assert_msg(rc != CT_OK, "byte %zu bit %d changed and the note still opens", i, bit);
            ck_assert_msg(!strchr(ct_err_detail(), '\n'), "detail is not one line");
            b.data[i] ^= (uint8_t)(1u << bit);
        }
    ck_assert_int_eq(ct_checkpoint_open(b.data, b.len, &v, &cp), CT_OK);
    /* cut short anywhere */
    for (size_t n = 0; n < b.len; n++) ck_assert_int_ne(ct_checkpoint_open(b.data, n, &v, &cp), CT_OK);
    ct_buf_free(&b);
}
END_TEST

START_TEST(malformed_notes_are_refused)
{
    ct_checkpoint cp;
    const char *sig = "\xE2\x80\x94 camtrust.example.com/example-camera-maker/issuance AAAA\n";
    char buf[512];
    ck_assert_int_eq(ct_snprintf(buf, sizeof buf, "a\nb\nc\n%s", sig), CT_OK);
    refused(open_text(buf, &cp), CT_ERR_BAD_REQUEST, "no blank line");
    refused(open_text("a\n\n", &cp), CT_ERR_BAD_REQUEST, "no signature");
    refused(open_text("a\n\n- x AAAAAAAA\n", &cp), CT_ERR_BAD_REQUEST, "em dash");
    refused(open_text("a\n\n\xE2\x80\x94 x\n", &cp), CT_ERR_BAD_REQUEST, "no space");
    refused(open_text("a\n\n\xE2\x80\x94 x AAAA\n", &cp), CT_ERR_BAD_REQUEST, "shorter than a key ID");
    refused(open_text("a\n\n\xE2\x80\x94 x AA AAAAAA\n", &cp), CT_ERR_BAD_REQUEST, "signature");
    refused(open_text("a\n\n\xE2\x80\x94 x+y AAAAAAAA\n", &cp), CT_ERR_BAD_REQUEST, "bad key name");
    refused(open_text("a\tb\n\n\xE2\x80\x94 x AAAAAAAA\n", &cp), CT_ERR_BAD_REQUEST, "control character");
    refused(open_text("a\xC0\xAF\n\n\xE2\x80\x94 x AAAAAAAA\n", &cp), CT_ERR_BAD_REQUEST, "not UTF-8");
    refused(open_text("a\n\n\xE2\x80\x94 x AAAAAAAA", &cp), CT_ERR_BAD_REQUEST, "newline");
    /* too many signatures, too large */
    ct_buf many = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&many, CT_NOTE_MAX + 64), CT_OK);
    ck_assert_int_eq(ct_buf_append(&many, "a\n\n", 3), CT_OK);
    for (int i = 0; i <= CT_NOTE_MAX_SIGS; i++) ck_assert_int_eq(ct_buf_appendf(&many, "\xE2\x80\x94 x%d AAAAAAAA\n", i), CT_OK);
    ct_note_verifier v = log_vkey();
    size_t tl = 0;
    refused(ct_note_open(many.data, many.len, &v, &tl), CT_ERR_BAD_REQUEST, "more than 64 signatures");
    while (many.len < CT_NOTE_MAX + 1) ck_assert_int_eq(ct_buf_append(&many, "x", 1), CT_OK);
    refused(ct_note_open(many.data, many.len, &v, &tl), CT_ERR_BAD_REQUEST, "bytes (at most");
    ct_buf_free(&many);
}
END_TEST

START_TEST(malformed_checkpoints_are_refused)
{
    ct_checkpoint cp;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"o\n5\n", "lines"},
        {"o\n05\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\n", "leading zero"},
        {"o\n-5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\n", "not a decimal"},
        {"o\n9223372036854775808\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\n", "too large"},
        {"o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhns=\n", "root hash"},
        {"o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsl=\n", "non-canonical"},
        {"o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\n\nx\n", "empty"},
        {"\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\n", "empty"},
        {"o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\ncamtrust-time 1\ncamtrust-time 2\n", "two time"},
        {"o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\ncamtrust-audit 7\n", "audit line"},
        {"o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\ncamtrust-audit x WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=\n",
         "audit entries"},
        /* the audit tree's root: only beside the audit line (its size), once, 32 bytes of canonical base64 */
        {"o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\ncamtrust-audit-root WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=\n",
         "audit root line but no audit line"},
        {"o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\ncamtrust-audit 7 WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=\n"
         "camtrust-audit-root WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=\ncamtrust-audit-root WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=\n",
         "two audit root lines"},
        {"o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\ncamtrust-audit 7 WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=\n"
         "camtrust-audit-root WlpaWlpa\n",
         "audit root"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        refused(ct_checkpoint_parse((const uint8_t *)cases[i].text, strlen(cases[i].text), &cp), CT_ERR_BAD_REQUEST,
                cases[i].want);
    const char *ok = "o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\nsomeone-else's extension\n";
    ck_assert_int_eq(ct_checkpoint_parse((const uint8_t *)ok, strlen(ok), &cp), CT_OK);
    ck_assert(!cp.has_audit && !cp.has_time);
    /* the audit root line round-trips; a reader that does not know it (older software) passes it as any extension */
    const char *rooted = "o\n5\nWhanJLckRn/zjQFIWKf/Me1PC7RW4UoNou6SCOZhnsk=\n"
                         "camtrust-audit 7 WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=\n"
                         "camtrust-audit-root ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=\ncamtrust-time 3\n";
    ck_assert_int_eq(ct_checkpoint_parse((const uint8_t *)rooted, strlen(rooted), &cp), CT_OK);
    ck_assert(cp.has_audit && cp.has_audit_root && cp.has_time && cp.audit_entries == 7);
    ck_assert_mem_eq(cp.audit_root, "ffffffffffffffffffffffffffffffff", 32);
    ct_buf again = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&again, CT_CHECKPOINT_TEXT_MAX), CT_OK);
    ck_assert_int_eq(ct_checkpoint_format(&cp, &again), CT_OK);
    ck_assert_uint_eq(again.len, strlen(rooted));
    ck_assert_mem_eq(again.data, rooted, again.len);
    ct_buf_free(&again);
    /* verifier keys */
    ct_note_verifier v;
    const char *good = "camtrust.example.com/example-camera-maker/issuance+99798d0c+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
    ck_assert_int_eq(ct_note_verifier_parse(good, strlen(good), &v), CT_OK);
    refused(ct_note_verifier_parse("x+99798d0c+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c", 55, &v), CT_ERR_BAD_REQUEST,
            "does not match");
    const char *alg = "camtrust.example.com/example-camera-maker/issuance+99798d0c+AoqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
    refused(ct_note_verifier_parse(alg, strlen(alg), &v), CT_ERR_BAD_REQUEST, "not Ed25519");
    refused(ct_note_verifier_parse("a b+99798d0c+AYqI", 17, &v), CT_ERR_BAD_REQUEST, "bad key name");
    refused(ct_note_verifier_parse("ab+9979+AYqI", 12, &v), CT_ERR_BAD_REQUEST, "8 hex digits");
    refused(ct_note_verifier_parse("nothing", 7, &v), CT_ERR_BAD_REQUEST, "name+hash+key");
    ck_assert(!ct_note_name_valid("a\xE2\x80\x83" "b", 5)); /* U+2003 EM SPACE */
    ck_assert(ct_note_name_valid("caf\xC3\xA9.example/log", 17));
}
END_TEST

static ct_err token_sign(void *arg, const uint8_t *msg, size_t len, uint8_t sig[CT_NOTE_SIG_LEN])
{
    return hsm_eddsa_sign(arg, msg, len, sig);
}

START_TEST(token_key_signs_notes)
{
    const char *dir = tu_tmpdir("note");
    tu_softhsm_token(dir, "note");
    hsm_config cfg = {NULL, "note", TU_PIN, 0};
    hsm *h = NULL;
    hsm_eddsa_key *k = NULL, *again = NULL, *dup = NULL;
    ck_assert_int_eq(hsm_open(&cfg, &h), CT_OK);
    static const uint8_t id[] = {0x42};
    ck_assert_int_eq(hsm_eddsa_generate(h, "log-note", id, sizeof id, &k), CT_OK);
    ck_assert_int_eq(hsm_eddsa_generate(h, "log-note", (const uint8_t *)"\x43", 1, &dup), CT_ERR_EXISTS);
    ck_assert_int_eq(hsm_eddsa_find(h, "pkcs11:object=log-note;type=private", &again), CT_OK);
    ck_assert_mem_eq(hsm_eddsa_public(again), hsm_eddsa_public(k), HSM_ED25519_PUB_LEN);
    ck_assert_int_eq(hsm_eddsa_find(h, "pkcs11:object=nothing", &dup), CT_ERR_HSM_NO_KEY);
    ct_note_verifier v;
    ck_assert_int_eq(ct_note_verifier_make("example.com/log", hsm_eddsa_public(k), &v), CT_OK);
    ct_checkpoint cp = {.origin = "example.com/log", .size = 3, .has_audit = true, .audit_entries = 9,
                        .has_time = true, .time_ms = 1};
    ct_buf text = CT_BUF_INIT, note = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&text, CT_CHECKPOINT_TEXT_MAX), CT_OK);
    ck_assert_int_eq(ct_checkpoint_format(&cp, &text), CT_OK);
    ck_assert_int_eq(ct_note_sign(text.data, text.len, &v, token_sign, again, &note), CT_OK);
    ct_checkpoint back;
    ck_assert_int_eq(ct_checkpoint_open(note.data, note.len, &v, &back), CT_OK);
    ck_assert_uint_eq(back.audit_entries, 9);
    /* the signature line as the spec spells it */
    ck_assert_mem_eq(note.data + text.len, "\n\xE2\x80\x94 example.com/log ", 21);
    /* the same key under another name is another key ID: refused */
    ct_note_verifier other;
    ck_assert_int_eq(ct_note_verifier_make("example.com/other", hsm_eddsa_public(k), &other), CT_OK);
    refused(ct_checkpoint_open(note.data, note.len, &other, &back), CT_ERR_INTEGRITY, "not signed by");
    ct_buf_free(&text);
    ct_buf_free(&note);
    hsm_eddsa_free(k);
    hsm_eddsa_free(again);
    hsm_close(h);
}
END_TEST

/* ---- cosignatures (tlog-cosignature/v1), against the Python vectors ---- */

static ct_note_verifier witness_vkey(void)
{
    ct_buf b = vec("witness.vkey");
    ct_note_verifier w;
    ck_assert_int_eq(ct_cosig_verifier_parse((const char *)b.data, b.len, &w), CT_OK);
    char again[CT_NOTE_VKEY_MAX];
    ck_assert_int_eq(ct_cosig_verifier_format(&w, again, sizeof again), CT_OK);
    ck_assert_uint_eq(strlen(again) + 1, b.len);
    ck_assert_mem_eq(again, b.data, strlen(again));
    ct_buf_free(&b);
    return w;
}

/* The checkpoint text every cosignature vector covers (checkpoint.note's signed part). */
static ct_buf cosigned_text(void)
{
    ct_buf n = vec("checkpoint.note");
    ct_note_verifier v = log_vkey();
    size_t text_len = 0;
    ck_assert_int_eq(ct_note_open(n.data, n.len, &v, &text_len), CT_OK);
    n.len = text_len;
    return n;
}

static ct_err line_check(const char *file, const ct_buf *text, const ct_note_verifier *w, uint64_t *t)
{
    ct_buf l = vec(file);
    ct_err rc = ct_cosig_line_verify(text->data, text->len, (const char *)l.data, l.len, w, t);
    ct_buf_free(&l);
    return rc;
}

START_TEST(cosignatures_match_python)
{
    ct_note_verifier w = witness_vkey(), v = log_vkey();
    ct_buf text = cosigned_text(), note = vec("cosigned-v1.note");
    uint64_t t = 0;
    ck_assert_int_eq(line_check("cosig.line", &text, &w, &t), CT_OK);
    ck_assert_uint_eq(t, 1764756000u);
    /* in a note beside the log's signature: both readers find their own line */
    size_t text_len = 0;
    t = 0;
    ck_assert_int_eq(ct_cosig_open(note.data, note.len, &w, &text_len, &t), CT_OK);
    ck_assert_uint_eq(t, 1764756000u);
    ck_assert_uint_eq(text_len, text.len);
    ck_assert_int_eq(ct_note_open(note.data, note.len, &v, &text_len), CT_OK);
    /* the log's own key is no witness key and a witness key is no log key */
    ct_buf lv = vec("log.vkey"), wv = vec("witness.vkey");
    ct_note_verifier x;
    refused(ct_cosig_verifier_parse((const char *)lv.data, lv.len, &x), CT_ERR_BAD_REQUEST, "algorithm 0x01");
    refused(ct_note_verifier_parse((const char *)wv.data, wv.len, &x), CT_ERR_BAD_REQUEST, "algorithm 0x04");
    /* a note the witness did not cosign */
    ct_buf plain = vec("checkpoint.note");
    refused(ct_cosig_open(plain.data, plain.len, &w, &text_len, &t), CT_ERR_NOT_FOUND, "not cosigned by");
    ct_buf_free(&lv);
    ct_buf_free(&wv);
    ct_buf_free(&plain);
    ct_buf_free(&text);
    ct_buf_free(&note);
}
END_TEST

START_TEST(cosignature_attacks_are_refused)
{
    ct_note_verifier w = witness_vkey();
    ct_buf text = cosigned_text();
    uint64_t t = 0;
    refused(line_check("cosig-wrong-key-id.line", &text, &w, &t), CT_ERR_NOT_FOUND, "key ID 00000000");
    refused(line_check("cosig-wrong-time.line", &text, &w, &t), CT_ERR_INTEGRITY, "does not verify");
    refused(line_check("cosig-other-text.line", &text, &w, &t), CT_ERR_INTEGRITY, "does not verify");
    refused(line_check("cosig-other-key.line", &text, &w, &t), CT_ERR_INTEGRITY, "does not verify");
    /* an unknown witness: another name */
    ct_note_verifier stranger;
    ck_assert_int_eq(ct_cosig_verifier_make("witness.example.org/w2", w.pub, &stranger), CT_OK);
    refused(line_check("cosig.line", &text, &stranger, &t), CT_ERR_NOT_FOUND, "not by witness witness.example.org/w2");
    /* every bit of the line's signature bytes and of the text flipped, one at a time */
    ct_buf l = vec("cosig.line");
    for (size_t i = 0; i + 1 < l.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            l.data[i] ^= (uint8_t)(1u << bit);
            ck_assert_msg(ct_cosig_line_verify(text.data, text.len, (const char *)l.data, l.len, &w, &t) != CT_OK,
                          "line byte %zu bit %d flipped still verifies", i, bit);
            l.data[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t i = 0; i < text.len; i++) {
        text.data[i] ^= 0x01;
        ck_assert_msg(ct_cosig_line_verify(text.data, text.len, (const char *)l.data, l.len, &w, &t) != CT_OK,
                      "text byte %zu flipped still verifies", i);
        text.data[i] ^= 0x01;
    }
    ck_assert_int_eq(ct_cosig_line_verify(text.data, text.len, (const char *)l.data, l.len, &w, &t), CT_OK);
    /* malformed: two lines, not a signature line, a short signature */
    const char *two = "\xE2\x80\x94 a AAAA\n\xE2\x80\x94 b AAAA";
    refused(ct_cosig_line_verify(text.data, text.len, two, strlen(two), &w, &t), CT_ERR_BAD_REQUEST, "more than one line");
    refused(ct_cosig_line_verify(text.data, text.len, "- w x", 5, &w, &t), CT_ERR_BAD_REQUEST, "em dash");
    const char *shorty = "\xE2\x80\x94 witness.example.org/w1 QuefFAAA";
    refused(ct_cosig_line_verify(text.data, text.len, shorty, strlen(shorty), &w, &t), CT_ERR_INTEGRITY, "not 76");
    ct_buf_free(&l);
    ct_buf_free(&text);
}
END_TEST

START_TEST(token_key_cosigns)
{
    const char *dir = tu_tmpdir("cosig");
    tu_softhsm_token(dir, "witness");
    hsm_config cfg = {NULL, "witness", TU_PIN, 0};
    hsm *h = NULL;
    hsm_eddsa_key *k = NULL;
    ck_assert_int_eq(hsm_open(&cfg, &h), CT_OK);
    ck_assert_int_eq(hsm_eddsa_generate(h, "witness", (const uint8_t *)"\x57", 1, &k), CT_OK);
    ct_note_verifier w;
    ck_assert_int_eq(ct_cosig_verifier_make("witness.example.org/w9", hsm_eddsa_public(k), &w), CT_OK);
    ct_buf text = cosigned_text(), line = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&line, CT_COSIG_LINE_MAX), CT_OK);
    ck_assert_int_eq(ct_cosig_sign(text.data, text.len, &w, 1800000000u, token_sign, k, &line), CT_OK);
    uint64_t t = 0;
    ck_assert_int_eq(ct_cosig_line_verify(text.data, text.len, (const char *)line.data, line.len, &w, &t), CT_OK);
    ck_assert_uint_eq(t, 1800000000u);
    ck_assert_uint_eq(line.data[line.len - 1], '\n');
    ct_buf_free(&text);
    ct_buf_free(&line);
    hsm_eddsa_free(k);
    hsm_close(h);
}
END_TEST

/* A witness list (log.witnesses of the CA and of stations) and the count of valid cosignatures on a note. */
START_TEST(witness_lists_and_counts)
{
    const char *dir = tu_tmpdir("witnesses");
    char list[1024], wpath[1024];
    ct_note_verifier w[CT_COSIG_WITNESSES_MAX];
    size_t n = 99, have = 99;
    ck_assert_int_eq(ct_path_join(list, sizeof list, dir, "witnesses.vkeys"), CT_OK);
    ck_assert_int_eq(ct_path_join(wpath, sizeof wpath, NOTE_VECTORS, "witness.vkey"), CT_OK);
    ck_assert_int_eq(ct_cosig_verifiers_load(list, w, CT_COSIG_WITNESSES_MAX, &n), CT_OK); /* none: no file */
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(tu_sh("(echo '# witnesses'; echo; cat '%s') >'%s'", wpath, list), 0);
    ck_assert_int_eq(ct_cosig_verifiers_load(list, w, CT_COSIG_WITNESSES_MAX, &n), CT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(w[0].name, "witness.example.org/w1");
    ck_assert_int_eq(tu_sh("cat '%s' >>'%s'", wpath, list), 0);
    refused(ct_cosig_verifiers_load(list, w, CT_COSIG_WITNESSES_MAX, &n), CT_ERR_CONFIG, "line 4: witness witness.example.org/w1 twice");
    ck_assert_int_eq(tu_sh("cp '%s/log.vkey' '%s'", NOTE_VECTORS, list), 0); /* a log key is no witness key */
    refused(ct_cosig_verifiers_load(list, w, CT_COSIG_WITNESSES_MAX, &n), CT_ERR_CONFIG, "witnesses.vkeys line 1: ");

    ck_assert_int_eq(ct_cosig_verifiers_load(wpath, w, CT_COSIG_WITNESSES_MAX, &n), CT_OK);
    ct_buf cosigned = vec("cosigned-v1.note"), plain = vec("checkpoint.note");
    ck_assert_int_eq(ct_cosig_witnessed(cosigned.data, cosigned.len, w, 1, 1, "x", &have), CT_OK);
    ck_assert_uint_eq(have, 1);
    refused(ct_cosig_witnessed(cosigned.data, cosigned.len, w, 1, 2, "the note", &have), CT_ERR_INTEGRITY,
            "the note has 1 of the 2 cosignatures required (1 witnesses configured; missing: none)");
    refused(ct_cosig_witnessed(plain.data, plain.len, w, 1, 1, "the note", &have), CT_ERR_INTEGRITY,
            "has 0 of the 1 cosignatures required (1 witnesses configured; missing: witness.example.org/w1)");
    ck_assert_int_eq(ct_cosig_witnessed(plain.data, plain.len, w, 1, 0, "x", &have), CT_OK); /* none required */
    /* w1's line on the note, its signature another key's: named, not counted as missing */
    ct_buf bad = vec("cosig-other-key.line"), both = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&both, plain.len + bad.len), CT_OK);
    ck_assert_int_eq(ct_buf_append(&both, plain.data, plain.len), CT_OK);
    ck_assert_int_eq(ct_buf_append(&both, bad.data, bad.len), CT_OK);
    refused(ct_cosig_witnessed(both.data, both.len, w, 1, 1, "the note", &have), CT_ERR_INTEGRITY,
            "the note: the cosignature by witness.example.org/w1 does not verify");
    ct_buf_free(&both);
    ct_buf_free(&bad);
    ct_buf_free(&plain);
    ct_buf_free(&cosigned);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("note");
    TCase *tc = tcase_create("c2sp");
    tcase_add_test(tc, verifier_key_matches_python);
    tcase_add_test(tc, good_checkpoints_open);
    tcase_add_test(tc, attacks_are_refused);
    tcase_add_test(tc, malformed_notes_are_refused);
    tcase_add_test(tc, malformed_checkpoints_are_refused);
    tcase_add_test(tc, token_key_signs_notes);
    tcase_add_test(tc, cosignatures_match_python);
    tcase_add_test(tc, cosignature_attacks_are_refused);
    tcase_add_test(tc, token_key_cosigns);
    tcase_add_test(tc, witness_lists_and_counts);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
