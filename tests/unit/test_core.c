/* Unit tests of the core module: error table, bounded buffers, encodings, files, config, secrets. */
#define _GNU_SOURCE
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

/* ---------------------------------------------------------------- helpers */

static ct_buf mkbuf(size_t max)
{
    ct_buf b = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&b, max), CT_OK);
    return b;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void join(char *out, size_t max, const char *dir, const char *name)
{
    ck_assert_int_eq(ct_path_join(out, max, dir, name), CT_OK);
}

/* Number of entries in a folder, "." and ".." excluded. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

static ct_err b64dec(const char *s, size_t max, ct_buf *out)
{
    *out = mkbuf(max);
    return ct_base64_decode((const uint8_t *)s, strlen(s), out);
}

static void expect_b64_bad(const char *s)
{
    ct_buf out;
    ct_err_clear();
    ct_err rc = b64dec(s, 64, &out);
    ck_assert_msg(rc == CT_ERR_BAD_BASE64, "'%s' gave %s, want CT_ERR_BAD_BASE64", s, ct_err_name(rc));
    ck_assert_str_ne(ct_err_detail(), "");
    ct_buf_free(&out);
}

static void expect_b64_ok(const char *s, const char *want)
{
    ct_buf out;
    ct_err rc = b64dec(s, 64, &out);
    ck_assert_msg(rc == CT_OK, "'%s' gave %s (%s)", s, ct_err_name(rc), ct_err_detail());
    ck_assert_uint_eq(out.len, strlen(want));
    ck_assert_mem_eq(out.data, want, out.len);
    ct_buf_free(&out);
}

/* ---------------------------------------------------------------- errors */

START_TEST(test_err_table)
{
    ck_assert_int_gt(CT_ERR__COUNT, 10);
    for (int i = 0; i < CT_ERR__COUNT; i++) {
        ct_err e = (ct_err)i;
        const char *name = ct_err_name(e), *msg = ct_err_message(e);
        ck_assert_ptr_nonnull(name);
        ck_assert_ptr_nonnull(msg);
        ck_assert_msg(strncmp(name, "CT_", 3) == 0, "error %d has name '%s'", i, name);
        ck_assert_str_ne(name, "CT_ERR_UNKNOWN");
        ck_assert_msg(msg[0] != '\0' && strcmp(msg, "unknown error") != 0, "error %s has no message", name);
        int st = ct_err_http_status(e);
        ck_assert_msg(st >= 200 && st <= 599, "error %s has status %d", name, st);
        ck_assert_msg((i == CT_OK) == (st == 200), "error %s: status 200 is for CT_OK only", name);
        for (int j = 0; j < i; j++) ck_assert_str_ne(name, ct_err_name((ct_err)j));
    }
    ck_assert_str_eq(ct_err_name(CT_OK), "CT_OK");
    ck_assert_str_eq(ct_err_name(CT_ERR_TOO_LARGE), "CT_ERR_TOO_LARGE");
    ck_assert_int_eq(ct_err_http_status(CT_ERR_TOO_LARGE), 413);
    ck_assert_int_eq(ct_err_http_status(CT_ERR_NOT_FOUND), 404);
    ck_assert_int_eq(ct_err_http_status(CT_ERR_UNAUTHENTICATED), 401);
    ck_assert_int_eq(ct_err_http_status(CT_ERR_UNAVAILABLE), 503);
    ck_assert_str_eq(ct_err_message(CT_ERR_BAD_BASE64), "malformed base64");
    /* Out of range values do not index past the table. */
    ck_assert_str_eq(ct_err_name(CT_ERR__COUNT), "CT_ERR_UNKNOWN");
    ck_assert_str_eq(ct_err_name((ct_err)-1), "CT_ERR_UNKNOWN");
    ck_assert_int_eq(ct_err_http_status((ct_err)9999), 500);
    ck_assert_str_eq(ct_err_message((ct_err)9999), "unknown error");
}
END_TEST

static void *fail_in_thread(void *arg)
{
    (void)arg;
    ct_err_clear();
    (void)ct_fail(CT_ERR_IO, "from the other thread");
    return NULL;
}

START_TEST(test_fail_detail)
{
    ct_err_clear();
    ck_assert_str_eq(ct_err_detail(), "");
    ck_assert_int_eq(ct_fail(CT_ERR_NOT_IN_ORDER, "serial %s is not in order %d", "X1", 4), CT_ERR_NOT_IN_ORDER);
    ck_assert_str_eq(ct_err_detail(), "serial X1 is not in order 4");
    /* A later failure replaces the detail. */
    ck_assert_int_eq(ct_fail(CT_ERR_IO, "second"), CT_ERR_IO);
    ck_assert_str_eq(ct_err_detail(), "second");
    /* A new detail may quote the one it replaces (it was garbled: "F is not a CRL: F is not a CRL: ..."). */
    ck_assert_int_eq(ct_fail(CT_ERR_USAGE, "%s is not a CRL: %s", "crl.pem", ct_err_detail()), CT_ERR_USAGE);
    ck_assert_str_eq(ct_err_detail(), "crl.pem is not a CRL: second");
    /* ct_fail_ctx puts a context before the detail, or before the error's message when there is none. */
    ck_assert_int_eq(ct_fail_ctx(CT_ERR_USAGE, "install %s", "x"), CT_ERR_USAGE);
    ck_assert_str_eq(ct_err_detail(), "install x: crl.pem is not a CRL: second");
    ct_err_clear();
    ck_assert_int_eq(ct_fail_ctx(CT_ERR_USAGE, "install"), CT_ERR_USAGE);
    char want[CT_ERR_DETAIL_MAX];
    snprintf(want, sizeof want, "install: %s", ct_err_message(CT_ERR_USAGE));
    ck_assert_str_eq(ct_err_detail(), want);
    /* Details quote outside input: they stay one line. */
    ck_assert_int_eq(ct_fail(CT_ERR_BAD_CSR, "serial '%s'", "A\r\nB"), CT_ERR_BAD_CSR);
    ck_assert_str_eq(ct_err_detail(), "serial 'A??B'");
    /* Nor act on a terminal: C1 controls too (CSI as a raw byte and in UTF-8); other UTF-8 is kept. */
    ck_assert_int_eq(ct_fail(CT_ERR_BAD_CSR, "serial '%s' of %s", "A\x9b" "2J\xc2\x9b" "31m", "Zo\xc3\xab"), CT_ERR_BAD_CSR);
    ck_assert_str_eq(ct_err_detail(), "serial 'A?2J??31m' of Zo\xc3\xab");
    /* An over-long detail is cut, not overflowed. */
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(ct_fail(CT_ERR_ARG, "%s", big), CT_ERR_ARG);
    ck_assert_uint_gt(strlen(ct_err_detail()), 100);
    ck_assert_uint_lt(strlen(ct_err_detail()), sizeof big - 1);
    ct_err_clear();
    ck_assert_str_eq(ct_err_detail(), "");
    /* The detail belongs to the thread. */
    (void)ct_fail(CT_ERR_DB, "mine");
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_str_eq(ct_err_detail(), "mine");
}
END_TEST

/* What ct_text_safe makes of `in` (n bytes) with an output of `max` bytes. */
static const char *safe(const char *in, size_t n, size_t max)
{
    static char out[64];
    ck_assert_uint_le(max, sizeof out);
    memset(out, 'Z', sizeof out);
    const char *r = ct_text_safe(out, max, in, n);
    ck_assert_ptr_eq(r, out);
    ck_assert_uint_lt(strlen(out), max); /* always terminated within max */
    return out;
}
#define SAFE(lit) safe(lit, sizeof lit - 1, 64)

START_TEST(test_text_safe)
{
    /* C0 controls (NUL included: the input is bytes) and DEL. */
    ck_assert_str_eq(SAFE("a\x01\n\r\t\x1b[2J\x7f\x00z"), "a?????[2J??z");
    /* C1 as raw bytes (not UTF-8) and as UTF-8 (U+0080..U+009F): every byte a '?'. */
    ck_assert_str_eq(SAFE("a\x9b" "31m\x85\x80\x9f"), "a?31m???");
    ck_assert_str_eq(SAFE("a\xc2\x9b" "31m\xc2\x80\xc2\x9f\xc2\x85"), "a??31m??????");
    /* Other UTF-8 is kept: U+00A0 (just past C1), 2-, 3- and 4-byte characters. */
    ck_assert_str_eq(SAFE("\xc2\xa0Zo\xc3\xab \xe2\x82\xac \xf0\x9f\x93\xb7"), "\xc2\xa0Zo\xc3\xab \xe2\x82\xac \xf0\x9f\x93\xb7");
    /* What is not UTF-8, a '?' per byte: a lone continuation, 0xff, an overlong '/', a surrogate, past U+10FFFF, a
     * sequence broken by an ASCII byte (which is kept). */
    ck_assert_str_eq(SAFE("\xa9\xff\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82x"), "??" "??" "???" "????" "??" "x");
    /* A character cut off by the end of the input: its bytes as '?'; n is respected (no read past it). */
    ck_assert_str_eq(SAFE("ab\xe2\x82"), "ab??");
    ck_assert_str_eq(safe("ab\xc3\xa9", 3, 64), "ab?");
    ck_assert_str_eq(safe("abc", 0, 64), "");
    /* The output's end: a character that does not fit whole is left out, never cut (the output stays UTF-8). */
    ck_assert_str_eq(safe("ab\xe2\x82\xac", 5, 6), "ab\xe2\x82\xac");
    ck_assert_str_eq(safe("ab\xe2\x82\xac" "c", 6, 5), "ab");
    ck_assert_str_eq(safe("ab\xc2\x9b", 4, 4), "ab?"); /* replaced bytes fill to the end */
    ck_assert_str_eq(safe("abcdef", 6, 4), "abc");
    ck_assert_str_eq(safe("abc", 3, 1), "");
    /* max 0: nothing written. */
    char none[2] = {'Z', 'Z'};
    ck_assert_str_eq(ct_text_safe(none, 0, "abc", 3), "");
    ck_assert_int_eq(none[0], 'Z');
    /* In place: what ct_fail and ct_log do. */
    char line[] = "x\x1b\xc2\x9b\xc3\xa9\x9b";
    ck_assert_str_eq(ct_text_safe(line, sizeof line, line, sizeof line - 1), "x???\xc3\xa9?");
}
END_TEST

START_TEST(test_utf8_next)
{
    static const struct {
        const char *in;
        size_t n, len;
        uint32_t cp;
    } cases[] = {{"A", 1, 1, 'A'},          {"\xc3\xa9", 2, 2, 0xe9},      {"\xe2\x82\xac", 3, 3, 0x20ac},
                 {"\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff}, {"\xc2\x80", 2, 2, 0x80}, {"\xc3\xa9", 1, 0, 0},
                 {"\x80", 1, 0, 0},        {"\xc1\xbf", 2, 0, 0},        {"\xe0\x9f\xbf", 3, 0, 0},
                 {"\xf0\x8f\xbf\xbf", 4, 0, 0}, {"\xed\xbf\xbf", 3, 0, 0}, {"\xf8\x88\x80\x80\x80", 5, 0, 0},
                 {"", 0, 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_utf8_char c = ct_utf8_next((const uint8_t *)cases[i].in, cases[i].n);
        ck_assert_msg(c.len == cases[i].len && c.cp == cases[i].cp, "case %zu: %zu U+%04X", i, c.len, (unsigned)c.cp);
    }
}
END_TEST

/* A kept error gives back its own detail after later failures, or in another thread; without a detail, its
 * message; a kept success leaves the detail alone. */
static void *save_in_thread(void *arg)
{
    ct_err_save(arg, ct_fail(CT_ERR_NOT_IN_ORDER, "serial X1 is not in order 4"));
    return NULL;
}

START_TEST(test_err_saved)
{
    ct_err_saved s;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, save_in_thread, &s), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    (void)ct_fail(CT_ERR_IO, "a later failure");
    ck_assert_int_eq(ct_err_restore(&s), CT_ERR_NOT_IN_ORDER);
    ck_assert_str_eq(ct_err_detail(), "serial X1 is not in order 4");
    ct_err_clear();
    ct_err_save(&s, CT_ERR_DB);
    (void)ct_fail(CT_ERR_IO, "a later failure");
    ck_assert_int_eq(ct_err_restore(&s), CT_ERR_DB);
    ck_assert_str_eq(ct_err_detail(), ct_err_message(CT_ERR_DB));
    ct_err_save(&s, CT_OK);
    (void)ct_fail(CT_ERR_IO, "another failure's detail");
    ck_assert_int_eq(ct_err_restore(&s), CT_OK);
    ck_assert_str_eq(ct_err_detail(), "another failure's detail");
}
END_TEST

/* ---------------------------------------------------------------- buffers */

START_TEST(test_buf_append_bounds)
{
    ct_buf b = mkbuf(8);
    ck_assert_ptr_nonnull(b.data);
    ck_assert_uint_eq(b.max, 8);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(ct_buf_append(&b, "hello", 5), CT_OK);
    ck_assert_int_eq(ct_buf_append(&b, "wxyz", 4), CT_ERR_BUF_FULL);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_mem_eq(b.data, "hello", 5);
    ck_assert_int_eq(ct_buf_append(&b, "abc", 3), CT_OK);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_mem_eq(b.data, "helloabc", 8);
    ck_assert_int_eq(ct_buf_append(&b, "", 0), CT_OK);
    ck_assert_int_eq(ct_buf_append(&b, "z", 1), CT_ERR_BUF_FULL);
    ck_assert_uint_eq(b.len, 8);
    /* A huge length does not wrap around the bound check. */
    ck_assert_int_eq(ct_buf_append(&b, "z", SIZE_MAX), CT_ERR_BUF_FULL);
    ck_assert_uint_eq(b.len, 8);
    /* set replaces the contents, within the same bound */
    ck_assert_int_eq(ct_buf_set(&b, "ab", 2), CT_OK);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_mem_eq(b.data, "ab", 2);
    ck_assert_int_eq(ct_buf_set(&b, "123456789", 9), CT_ERR_BUF_FULL);
    ct_buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.max, 0);
    ct_buf_free(&b); /* twice is harmless */
    /* An empty (never allocated) buffer refuses everything but nothing. */
    ct_buf e = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_append(&e, "a", 1), CT_ERR_BUF_FULL);
    ck_assert_uint_eq(e.len, 0);
}
END_TEST

START_TEST(test_buf_appendf)
{
    ct_buf b = mkbuf(8);
    ck_assert_int_eq(ct_buf_appendf(&b, "%d-%s", 12, "ab"), CT_OK);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_mem_eq(b.data, "12-ab", 5);
    /* 5 + 3 = 8 would leave no room for vsnprintf's NUL: refused, not truncated. */
    ct_err_clear();
    ck_assert_int_eq(ct_buf_appendf(&b, "%s", "xyz"), CT_ERR_BUF_FULL);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_str_ne(ct_err_detail(), "");
    ck_assert_int_eq(ct_buf_appendf(&b, "%s", "xy"), CT_OK);
    ck_assert_uint_eq(b.len, 7);
    ck_assert_mem_eq(b.data, "12-abxy", 7);
    ck_assert_int_eq(ct_buf_appendf(&b, "%c", 'q'), CT_ERR_BUF_FULL);
    ck_assert_uint_eq(b.len, 7);
    ct_buf_free(&b);

    ct_buf c = mkbuf(4);
    ck_assert_int_eq(ct_buf_appendf(&c, "%s", "much too long"), CT_ERR_BUF_FULL);
    ck_assert_uint_eq(c.len, 0);
    ct_buf_free(&c);
}
END_TEST

START_TEST(test_buf_cstr)
{
    ct_buf b = mkbuf(4);
    const char *s = NULL;
    ck_assert_int_eq(ct_buf_cstr(&b, &s), CT_OK);
    ck_assert_str_eq(s, "");
    ck_assert_int_eq(ct_buf_append(&b, "abc", 3), CT_OK);
    ck_assert_int_eq(ct_buf_cstr(&b, &s), CT_OK);
    ck_assert_str_eq(s, "abc");
    ck_assert_uint_eq(b.len, 3); /* the NUL is not counted */
    ck_assert_int_eq(ct_buf_append(&b, "d", 1), CT_OK);
    s = NULL;
    ck_assert_int_eq(ct_buf_cstr(&b, &s), CT_ERR_BUF_FULL);
    ck_assert_ptr_null(s);
    ct_buf_free(&b);
    ct_buf z = mkbuf(0);
    ck_assert_int_eq(ct_buf_cstr(&z, &s), CT_ERR_BUF_FULL);
    ct_buf_free(&z);
}
END_TEST

START_TEST(test_strlcpy_snprintf)
{
    char d[4];
    memcpy(d, "old", 4);
    ck_assert_int_eq(ct_strlcpy(d, sizeof d, "abcd"), CT_ERR_BUF_FULL);
    ck_assert_str_eq(d, "old"); /* untouched, not truncated */
    ck_assert_int_eq(ct_strlcpy(d, sizeof d, "abc"), CT_OK);
    ck_assert_str_eq(d, "abc");
    ck_assert_int_eq(ct_strlcpy(d, sizeof d, ""), CT_OK);
    ck_assert_str_eq(d, "");
    ck_assert_int_eq(ct_strlcpy(d, 0, ""), CT_ERR_BUF_FULL);

    ck_assert_int_eq(ct_snprintf(d, sizeof d, "%d", 123), CT_OK);
    ck_assert_str_eq(d, "123");
    ck_assert_int_eq(ct_snprintf(d, sizeof d, "%d", 1234), CT_ERR_BUF_FULL);

    char p[16];
    ck_assert_int_eq(ct_path_join(p, sizeof p, "/a/b", "c.pem"), CT_OK);
    ck_assert_str_eq(p, "/a/b/c.pem");
    ck_assert_int_eq(ct_path_join(p, sizeof p, "/a/very/long", "name.pem"), CT_ERR_BUF_FULL);
}
END_TEST

START_TEST(test_equal_ct_wipe)
{
    uint8_t a[32], b[32];
    fill_pattern(a, sizeof a, 1);
    memcpy(b, a, sizeof b);
    ck_assert(ct_equal_ct(a, b, sizeof a));
    b[0] ^= 1;
    ck_assert(!ct_equal_ct(a, b, sizeof a));
    b[0] ^= 1;
    b[31] ^= 0x80;
    ck_assert(!ct_equal_ct(a, b, sizeof a));
    ck_assert(ct_equal_ct(a, b, 31));
    ck_assert(ct_equal_ct(a, b, 0));
    ck_assert(!ct_equal_ct("1234", "1235", 4));
    ck_assert(ct_equal_ct("1234", "1234", 4));

    ct_wipe(a, sizeof a);
    static const uint8_t zero[32];
    ck_assert_mem_eq(a, zero, sizeof a);
    ct_wipe(NULL, 10); /* harmless */
}
END_TEST

START_TEST(test_sha256_random)
{
    uint8_t h[32];
    ck_assert_int_eq(ct_sha256("abc", 3, h), CT_OK);
    char hex[65];
    ck_assert_int_eq(ct_hex_encode(h, sizeof h, hex, sizeof hex), CT_OK);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    uint8_t r1[16] = {0}, r2[16] = {0};
    ck_assert_int_eq(ct_random(r1, sizeof r1), CT_OK);
    ck_assert_int_eq(ct_random(r2, sizeof r2), CT_OK);
    ck_assert(memcmp(r1, r2, sizeof r1) != 0);
}
END_TEST

/* ---------------------------------------------------------------- base64 */

START_TEST(test_b64_valid)
{
    expect_b64_ok("aGVsbG8=", "hello");
    expect_b64_ok("aGVsbA==", "hell");
    expect_b64_ok("aGVs", "hel");
    expect_b64_ok("+/+/", "\xfb\xff\xbf");
    /* RFC 7030 bodies come with CRLF line breaks (and sometimes spaces). */
    expect_b64_ok("aGVs\r\nbG8=\r\n", "hello");
    expect_b64_ok("aG Vs\tbG\n8=", "hello");
    expect_b64_ok("\r\naGVsbA=\r\n=\r\n", "hell");
}
END_TEST

START_TEST(test_b64_invalid)
{
    expect_b64_bad("aGV*bG8=");     /* invalid character */
    expect_b64_bad("aGVsbG8-");     /* base64url is not base64 */
    expect_b64_bad("aGVs_G8=");
    expect_b64_bad("aGVs\x01" "bG8=");
    expect_b64_bad("aGVs\xc3\xa9G8=");
    expect_b64_bad("aGVs\vbG8=");    /* only space, tab, CR, LF are skipped */
    expect_b64_bad("aGVsbG===");    /* three padding characters */
    expect_b64_bad("a===");
    expect_b64_bad("====");
    expect_b64_bad("aGVsbA=");      /* padding short: length 7 */
    expect_b64_bad("aGVsbA==aGVs"); /* data after padding */
    expect_b64_bad("aGVsbA=A");
    expect_b64_bad("aGVsbA==\r\nQQ==");
    expect_b64_bad("=GVs");
    expect_b64_bad("aGVsbG8");      /* length not a multiple of 4 */
    expect_b64_bad("aGV");
    expect_b64_bad("a");
    expect_b64_bad("");             /* empty */
    expect_b64_bad("\r\n \t\r\n");

    /* NUL inside the body (explicit length) */
    ct_buf out = mkbuf(16);
    ck_assert_int_eq(ct_base64_decode((const uint8_t *)"aGVs\0bG8=", 9, &out), CT_ERR_BAD_BASE64);
    ck_assert_uint_eq(out.len, 0);
    ct_buf_free(&out);
}
END_TEST

START_TEST(test_b64_too_large)
{
    ct_buf out;
    ct_err_clear();
    ck_assert_int_eq(b64dec("aGVsbG8gd29ybGQ=", 4, &out), CT_ERR_TOO_LARGE); /* 11 bytes into 4 */
    ck_assert_uint_eq(out.len, 0);
    ck_assert_str_ne(ct_err_detail(), "");
    ct_buf_free(&out);
    ck_assert_int_eq(b64dec("aGVsbG8=", 4, &out), CT_ERR_TOO_LARGE); /* 5 into 4 */
    ct_buf_free(&out);
    ck_assert_int_eq(b64dec("aGVsbG8=", 0, &out), CT_ERR_TOO_LARGE);
    ct_buf_free(&out);
}
END_TEST

/* "Output larger than out->max" is CT_ERR_TOO_LARGE; output that fits exactly must decode. A CSR of exactly
 * PKI_MAX_CSR_DER bytes (or PKI_MAX_CSR_DER - 1) must not be refused because of its '=' padding. */
START_TEST(test_b64_exact_fit)
{
    ct_buf out;
    ck_assert_int_eq(b64dec("aGVs", 3, &out), CT_OK);
    ck_assert_uint_eq(out.len, 3);
    ct_buf_free(&out);
    ct_err rc = b64dec("aGVsbG8=", 5, &out); /* "hello": 5 bytes into 5 */
    ck_assert_msg(rc == CT_OK, "5 bytes into a 5-byte buffer: %s (%s)", ct_err_name(rc), ct_err_detail());
    ck_assert_mem_eq(out.data, "hello", 5);
    ct_buf_free(&out);
    rc = b64dec("QQ==", 1, &out);
    ck_assert_msg(rc == CT_OK, "1 byte into a 1-byte buffer: %s (%s)", ct_err_name(rc), ct_err_detail());
    ck_assert_uint_eq(out.len, 1);
    ck_assert_uint_eq(out.data[0], 'A');
    ct_buf_free(&out);

    /* 8191 and 8192 bytes into an 8192-byte buffer, as the CA decodes simpleenroll bodies. */
    for (size_t n = 8191; n <= 8192; n++) {
        uint8_t *raw = malloc(n);
        ck_assert_ptr_nonnull(raw);
        fill_pattern(raw, n, (unsigned)n);
        ct_buf enc = mkbuf(2 * n);
        ck_assert_int_eq(ct_base64_encode(raw, n, true, &enc), CT_OK);
        ct_buf dec = mkbuf(8192);
        rc = ct_base64_decode(enc.data, enc.len, &dec);
        ck_assert_msg(rc == CT_OK, "%zu bytes into 8192: %s (%s)", n, ct_err_name(rc), ct_err_detail());
        ck_assert_uint_eq(dec.len, n);
        ck_assert_mem_eq(dec.data, raw, n);
        ct_buf_free(&dec);
        ct_buf_free(&enc);
        free(raw);
    }
}
END_TEST

START_TEST(test_b64_round_trip)
{
    uint8_t raw[300];
    for (size_t n = 1; n <= sizeof raw; n += (n < 70 ? 1 : 37)) {
        fill_pattern(raw, n, (unsigned)n);
        for (int lb = 0; lb <= 1; lb++) {
            ct_buf enc = mkbuf(2 * n + 8);
            ck_assert_int_eq(ct_base64_encode(raw, n, lb, &enc), CT_OK);
            ck_assert_uint_gt(enc.len, 0);
            if (!lb) ck_assert_uint_eq(enc.len, (n + 2) / 3 * 4);
            if (!lb) ck_assert_ptr_null(memchr(enc.data, '\n', enc.len));
            if (lb) {
                /* lines of at most 64 characters, ending in LF */
                size_t col = 0;
                for (size_t i = 0; i < enc.len; i++) {
                    if (enc.data[i] == '\n') {
                        ck_assert_uint_le(col, 64);
                        col = 0;
                    } else {
                        col++;
                    }
                }
                ck_assert_uint_eq(enc.data[enc.len - 1], '\n');
            }
            ct_buf dec = mkbuf(n + 2);
            ck_assert_int_eq(ct_base64_decode(enc.data, enc.len, &dec), CT_OK);
            ck_assert_uint_eq(dec.len, n);
            ck_assert_mem_eq(dec.data, raw, n);
            ct_buf_free(&dec);

            /* the same with CRLF line breaks */
            if (lb) {
                ct_buf crlf = mkbuf(4 * n + 16);
                for (size_t i = 0; i < enc.len; i++) {
                    if (enc.data[i] == '\n') ck_assert_int_eq(ct_buf_append(&crlf, "\r", 1), CT_OK);
                    ck_assert_int_eq(ct_buf_append(&crlf, &enc.data[i], 1), CT_OK);
                }
                dec = mkbuf(n + 2);
                ck_assert_int_eq(ct_base64_decode(crlf.data, crlf.len, &dec), CT_OK);
                ck_assert_uint_eq(dec.len, n);
                ck_assert_mem_eq(dec.data, raw, n);
                ct_buf_free(&dec);
                ct_buf_free(&crlf);
            }
            ct_buf_free(&enc);
        }
    }
    /* known vector, appended after existing content */
    ct_buf enc = mkbuf(32);
    ck_assert_int_eq(ct_buf_append(&enc, "x:", 2), CT_OK);
    ck_assert_int_eq(ct_base64_encode((const uint8_t *)"hello", 5, false, &enc), CT_OK);
    ck_assert_uint_eq(enc.len, 10);
    ck_assert_mem_eq(enc.data, "x:aGVsbG8=", 10);
    ct_buf_free(&enc);
    /* output that does not fit is refused, buffer untouched */
    ct_buf small = mkbuf(7);
    ck_assert_int_eq(ct_base64_encode((const uint8_t *)"hello", 5, false, &small), CT_ERR_BUF_FULL);
    ck_assert_uint_eq(small.len, 0);
    ct_buf_free(&small);
}
END_TEST

/* ---------------------------------------------------------------- PEM */

START_TEST(test_pem_round_trip)
{
    uint8_t a[300], b[47];
    fill_pattern(a, sizeof a, 7);
    fill_pattern(b, sizeof b, 8);
    ct_buf pem = mkbuf(4096);
    ck_assert_int_eq(ct_pem_encode("CERTIFICATE", a, sizeof a, &pem), CT_OK);
    const char *s;
    ck_assert_int_eq(ct_buf_cstr(&pem, &s), CT_OK);
    ck_assert(strncmp(s, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    ck_assert_ptr_nonnull(strstr(s, "\n-----END CERTIFICATE-----\n"));
    ck_assert_uint_eq(pem.data[pem.len - 1], '\n');
    ck_assert_int_eq(ct_pem_encode("CERTIFICATE REQUEST", b, sizeof b, &pem), CT_OK);
    ck_assert_int_eq(ct_pem_encode("CERTIFICATE", b, sizeof b, &pem), CT_OK);

    ct_buf der = mkbuf(1024);
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 0, &der), CT_OK);
    ck_assert_uint_eq(der.len, sizeof a);
    ck_assert_mem_eq(der.data, a, sizeof a);
    /* second CERTIFICATE block by index: the CSR in between is not a CERTIFICATE */
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 1, &der), CT_OK);
    ck_assert_uint_eq(der.len, sizeof b);
    ck_assert_mem_eq(der.data, b, sizeof b);
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE REQUEST", 0, &der), CT_OK);
    ck_assert_uint_eq(der.len, sizeof b);
    ck_assert_mem_eq(der.data, b, sizeof b);
    /* missing blocks */
    ct_err_clear();
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 2, &der), CT_ERR_NOT_FOUND);
    ck_assert_str_ne(ct_err_detail(), "");
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE REQUEST", 1, &der), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "PRIVATE KEY", 0, &der), CT_ERR_NOT_FOUND);
    ck_assert_int_eq(ct_pem_decode((const uint8_t *)"", 0, "CERTIFICATE", 0, &der), CT_ERR_NOT_FOUND);
    /* a block larger than the buffer is malformed input, not a large request */
    ct_buf tiny = mkbuf(100);
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 0, &tiny), CT_ERR_BAD_DER);
    ct_buf_free(&tiny);
    ct_buf_free(&der);
    ct_buf_free(&pem);

    /* the output buffer is too small for the PEM text */
    ct_buf small = mkbuf(64);
    ck_assert_int_eq(ct_pem_encode("CERTIFICATE", a, sizeof a, &small), CT_ERR_BUF_FULL);
    ct_buf_free(&small);
}
END_TEST

START_TEST(test_pem_malformed)
{
    ct_buf der = mkbuf(256);
    const char *no_end = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n";
    ck_assert_int_ne(ct_pem_decode((const uint8_t *)no_end, strlen(no_end), "CERTIFICATE", 0, &der), CT_OK);
    const char *bad = "-----BEGIN CERTIFICATE-----\naGV*bG8=\n-----END CERTIFICATE-----\n";
    ck_assert_int_eq(ct_pem_decode((const uint8_t *)bad, strlen(bad), "CERTIFICATE", 0, &der), CT_ERR_BAD_BASE64);
    const char *empty = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    ck_assert_int_eq(ct_pem_decode((const uint8_t *)empty, strlen(empty), "CERTIFICATE", 0, &der), CT_ERR_BAD_BASE64);
    const char *crlf = "junk\r\n-----BEGIN CERTIFICATE-----\r\naGVs\r\nbG8=\r\n-----END CERTIFICATE-----\r\n";
    ck_assert_int_eq(ct_pem_decode((const uint8_t *)crlf, strlen(crlf), "CERTIFICATE", 0, &der), CT_OK);
    ck_assert_uint_eq(der.len, 5);
    ck_assert_mem_eq(der.data, "hello", 5);
    ct_buf_free(&der);
}
END_TEST

/* Our PEM is openssl's PEM: decode a certificate made by openssl, and let openssl read ours. */
START_TEST(test_pem_openssl)
{
    const char *dir = tu_tmpdir("core-pem");
    ck_assert_int_eq(tu_sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                           "-keyout k.pem -out c.pem -subj '/CN=camtrust test/serialNumber=CAM-0001' -days 30 "
                           ">/dev/null 2>&1 && openssl x509 -in c.pem -outform DER -out c.der",
                           dir),
                     0);
    char path[600];
    ct_buf pem = CT_BUF_INIT, want = CT_BUF_INIT;
    join(path, sizeof path, dir, "c.pem");
    ck_assert_int_eq(ct_file_read(path, 65536, &pem), CT_OK);
    join(path, sizeof path, dir, "c.der");
    ck_assert_int_eq(ct_file_read(path, 65536, &want), CT_OK);
    ck_assert_uint_gt(want.len, 100);

    ct_buf der = mkbuf(8192);
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 0, &der), CT_OK);
    ck_assert_uint_eq(der.len, want.len);
    ck_assert_mem_eq(der.data, want.data, want.len);
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 1, &der), CT_ERR_NOT_FOUND);

    /* Our encoding is byte-for-byte what openssl writes. */
    ct_buf ours = mkbuf(16384);
    ck_assert_int_eq(ct_pem_encode("CERTIFICATE", want.data, want.len, &ours), CT_OK);
    ck_assert_uint_eq(ours.len, pem.len);
    ck_assert_mem_eq(ours.data, pem.data, pem.len);
    join(path, sizeof path, dir, "ours.pem");
    ck_assert_int_eq(ct_file_write_atomic(path, ours.data, ours.len, 0644), CT_OK);
    ck_assert_int_eq(tu_sh("cd '%s' && openssl x509 -in ours.pem -outform DER -out ours.der && cmp -s ours.der c.der",
                           dir),
                     0);
    ct_buf_free(&ours);
    ct_buf_free(&der);
    ct_buf_free(&pem);
    ct_buf_free(&want);
}
END_TEST

/* ---------------------------------------------------------------- hex */

START_TEST(test_hex)
{
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff};
    char out[13];
    ck_assert_int_eq(ct_hex_encode(in, sizeof in, out, sizeof out), CT_OK);
    ck_assert_str_eq(out, "0001abcdefff");
    ck_assert_int_eq(ct_hex_encode(in, sizeof in, out, sizeof out - 1), CT_ERR_BUF_FULL);
    ck_assert_int_eq(ct_hex_encode(in, 0, out, 1), CT_OK);
    ck_assert_str_eq(out, "");

    uint8_t dec[6];
    size_t n = 99;
    ck_assert_int_eq(ct_hex_decode("0001ABcdEFff", dec, sizeof dec, &n), CT_OK);
    ck_assert_uint_eq(n, sizeof in);
    ck_assert_mem_eq(dec, in, sizeof in);
    ck_assert_int_eq(ct_hex_decode("", dec, sizeof dec, &n), CT_OK);
    ck_assert_uint_eq(n, 0);
    n = 99;
    ck_assert_int_eq(ct_hex_decode("abc", dec, sizeof dec, &n), CT_ERR_BAD_REQUEST);
    ck_assert_int_eq(ct_hex_decode("0g", dec, sizeof dec, &n), CT_ERR_BAD_REQUEST);
    ck_assert_int_eq(ct_hex_decode("g0", dec, sizeof dec, &n), CT_ERR_BAD_REQUEST);
    ck_assert_int_eq(ct_hex_decode(" 0", dec, sizeof dec, &n), CT_ERR_BAD_REQUEST);
    ck_assert_int_eq(ct_hex_decode("00112233445566", dec, sizeof dec, &n), CT_ERR_BAD_REQUEST);
    ck_assert_uint_eq(n, 99);
}
END_TEST

/* ---------------------------------------------------------------- files */

START_TEST(test_file_write_atomic)
{
    const char *dir = tu_tmpdir("core-file");
    char path[600];
    join(path, sizeof path, dir, "out.bin");
    ct_buf r = CT_BUF_INIT;

    ck_assert_int_eq(ct_file_write_atomic(path, "first version", 13, 0600), CT_OK);
    ck_assert_int_eq(ct_file_read(path, 100, &r), CT_OK);
    ck_assert_uint_eq(r.len, 13);
    ck_assert_mem_eq(r.data, "first version", 13);
    ct_buf_free(&r);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(count_entries(dir), 1); /* no temporary left behind */

    /* replacing: new content and new mode, still one file */
    ck_assert_int_eq(ct_file_write_atomic(path, "v2", 2, 0644), CT_OK);
    ck_assert_int_eq(ct_file_read(path, 100, &r), CT_OK);
    ck_assert_uint_eq(r.len, 2);
    ck_assert_mem_eq(r.data, "v2", 2);
    ct_buf_free(&r);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0644);
    ck_assert_int_eq(count_entries(dir), 1);

    /* empty content */
    ck_assert_int_eq(ct_file_write_atomic(path, "", 0, 0640), CT_OK);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0640);
    ck_assert_int_eq(count_entries(dir), 1);
}
END_TEST

START_TEST(test_file_write_atomic_missing_dir)
{
    const char *dir = tu_tmpdir("core-file");
    char path[600];
    join(path, sizeof path, dir, "no-such-folder/out.bin");
    ct_err_clear();
    ck_assert_int_eq(ct_file_write_atomic(path, "x", 1, 0600), CT_ERR_IO);
    ck_assert_str_ne(ct_err_detail(), "");
    ck_assert_int_eq(count_entries(dir), 0);
    /* a path that does not fit is refused before anything is written */
    char longp[5000];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    ck_assert_int_ne(ct_file_write_atomic(longp, "x", 1, 0600), CT_OK);
}
END_TEST

/* A temporary file left by an earlier process with the same pid (a crash; in a container the CA is often pid 1
 * on every start) must neither lend its mode to the new file nor redirect the write through a symlink. */
START_TEST(test_file_write_atomic_stale_temp)
{
    const char *dir = tu_tmpdir("core-file");
    char path[600], tmp[700], victim[600];
    join(path, sizeof path, dir, "secret.pin");
    ck_assert_int_eq(ct_snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()), CT_OK);
    write_file(tmp, "stale", 5);
    ck_assert_int_eq(chmod(tmp, 0666), 0);
    ck_assert_int_eq(ct_file_write_atomic(path, "1234", 4, 0600), CT_OK);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg((st.st_mode & 07777) == 0600, "mode %o, want 600", (unsigned)(st.st_mode & 07777));
    ck_assert_int_eq(st.st_size, 4);
    ck_assert_int_eq(count_entries(dir), 1);

    join(victim, sizeof victim, dir, "victim");
    write_file(victim, "untouched", 9);
    ck_assert_int_eq(symlink(victim, tmp), 0);
    ct_err ignored = ct_file_write_atomic(path, "5678", 4, 0600); /* may refuse; must not follow the link */
    (void)ignored;
    ct_buf r = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(victim, 100, &r), CT_OK);
    ck_assert_uint_eq(r.len, 9);
    ck_assert_mem_eq(r.data, "untouched", 9);
    ct_buf_free(&r);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert_msg(S_ISREG(st.st_mode), "the file written is not a regular file");
}
END_TEST

/* A dead process's stage the folder's owner planted thousands of folders deep (a root restore sweeps it): the
 * sweep stops at its depth bound with one line that says why (before: "Is a directory"), every folder it opened
 * closed, and nothing outside the stage touched. */
START_TEST(test_stale_stage_too_deep)
{
    const char *dir = tu_tmpdir("core-deep");
    char stage[600], keep[600];
    join(stage, sizeof stage, dir, "x.init-999999999"); /* past any pid_max: no such process */
    join(keep, sizeof keep, dir, "keep");
    write_file(keep, "kept", 4);
    ck_assert_int_eq(mkdir(stage, 0700), 0);
    int fd = open(stage, O_RDONLY | O_DIRECTORY);
    for (int i = 0; i < 3000; i++) { /* mkdirat: the path would pass PATH_MAX */
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(mkdirat(fd, "a", 0700), 0);
        int next = openat(fd, "a", O_RDONLY | O_DIRECTORY);
        close(fd);
        fd = next;
    }
    close(fd);
    int open_before = count_entries("/proc/self/fd");
    ck_assert_int_eq(ct_stale_remove(dir, "x", ".init-"), CT_ERR_IO);
    char want[700];
    ck_assert_int_eq(ct_snprintf(want, sizeof want, "cannot remove %s: File name too long", stage), CT_OK);
    ck_assert_str_eq(ct_err_detail(), want);
    ck_assert_int_eq(count_entries("/proc/self/fd"), open_before);
    ck_assert_int_eq(access(keep, F_OK), 0);
    ck_assert_int_eq(tu_sh("rm -rf '%s'", dir), 0);
}
END_TEST

/* A dead process's stage holding a file that may not be removed (immutable: chattr +i, as root): the sweep's line
 * gives that reason (before: "Not a directory", from opening the file as a folder after the removal failed). */
START_TEST(test_stale_stage_file_refused)
{
    const char *dir = tu_tmpdir("core-immutable");
    char stage[600], file[700];
    join(stage, sizeof stage, dir, "x.init-999999999");
    join(file, sizeof file, stage, "pinned");
    ck_assert_int_eq(mkdir(stage, 0700), 0);
    write_file(file, "x", 1);
    if (tu_sh("chattr +i '%s' 2>/dev/null", file) != 0) return; /* not root, or a file system without the flag */
    ct_err rc = ct_stale_remove(dir, "x", ".init-");
    const char *detail = ct_err_detail();
    ck_assert_int_eq(tu_sh("chattr -i '%s'", file), 0);
    ck_assert_int_eq(rc, CT_ERR_IO);
    char want[700];
    ck_assert_int_eq(ct_snprintf(want, sizeof want, "cannot remove %s: Operation not permitted", stage), CT_OK);
    ck_assert_str_eq(detail, want);
}
END_TEST

/* A stage a kill cut short, named with the pid the recovering process now has (a container's process is always
 * PID 1): it is not a live writer's, it is finished; and a whole stage is never discarded. */
START_TEST(test_dir_recover_own_pid)
{
    const char *dir = tu_tmpdir("core-recover");
    char final[600], stage[700], path[800];
    join(final, sizeof final, dir, "station");
    ck_assert_int_eq(mkdir(final, 0700), 0);
    join(path, sizeof path, final, "key.pem");
    write_file(path, "old", 3);
    ck_assert_int_eq(ct_snprintf(stage, sizeof stage, "%s/.init-%ld", final, (long)getpid()), CT_OK);
    ck_assert_int_eq(mkdir(stage, 0700), 0);
    join(path, sizeof path, stage, "key.pem");
    write_file(path, "new", 3);
    join(path, sizeof path, stage, "cert.pem");
    write_file(path, "new", 3);
    join(path, sizeof path, stage, ".whole");
    write_file(path, "cert.pem", 8);
    /* A commit that failed once the stage was whole: its caller's cleanup must not remove it. */
    ck_assert_int_ne(ct_dir_discard(stage), CT_OK);
    ck_assert_msg(ct_file_exists(stage), "a whole stage was discarded: the mixed pair would stay");
    ck_assert_int_eq(ct_dir_recover(final), CT_OK);
    ct_buf r = CT_BUF_INIT;
    join(path, sizeof path, final, "key.pem");
    ck_assert_int_eq(ct_file_read(path, 100, &r), CT_OK);
    ck_assert_msg(r.len == 3 && memcmp(r.data, "new", 3) == 0, "the old key stayed beside the new certificate");
    ct_buf_free(&r);
    join(path, sizeof path, final, "cert.pem");
    ck_assert_msg(ct_file_exists(path), "the staged certificate was not moved");
    ck_assert_msg(!ct_file_exists(stage), "the stage was left");
}
END_TEST

START_TEST(test_file_read)
{
    const char *dir = tu_tmpdir("core-file");
    char path[600];
    join(path, sizeof path, dir, "in.bin");
    uint8_t data[100];
    fill_pattern(data, sizeof data, 3);
    write_file(path, data, sizeof data);

    ct_buf r = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(path, 100, &r), CT_OK);
    ck_assert_uint_eq(r.len, 100);
    ck_assert_mem_eq(r.data, data, 100);
    const char *s;
    ck_assert_int_eq(ct_buf_cstr(&r, &s), CT_OK); /* room for a NUL */
    ct_buf_free(&r);

    ct_err_clear();
    ck_assert_int_eq(ct_file_read(path, 99, &r), CT_ERR_TOO_LARGE);
    ck_assert_ptr_null(r.data);
    ck_assert_uint_eq(r.len, 0);
    ck_assert_str_ne(ct_err_detail(), "");

    join(path, sizeof path, dir, "missing");
    ck_assert_int_eq(ct_file_read(path, 100, &r), CT_ERR_IO);
    ck_assert_ptr_null(r.data);

    join(path, sizeof path, dir, "empty");
    write_file(path, "", 0);
    ck_assert_int_eq(ct_file_read(path, 0, &r), CT_OK);
    ck_assert_uint_eq(r.len, 0);
    ct_buf_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- logging */

START_TEST(test_log_line)
{
    const char *dir = tu_tmpdir("core-log");
    char path[600];
    join(path, sizeof path, dir, "stderr.txt");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    close(fd);
    ct_log_set_level(CT_LOG_INFO);
    ct_log(CT_LOG_DEBUG, "hidden", "x=%d", 1);
    ct_log(CT_LOG_WARN, "cert_issued", "serial=%s", "ab12\nts=forged level=info event=fake");
    ct_log(CT_LOG_WARN, "refused", "reason=%s status=%d", CT_LOGQ("x\" status=200 result=\"ok"), 403);
    ct_log(CT_LOG_WARN, "c1", "serial=%s", "a\x9b" "2J\xc2\x9b" "31m\xc3\xa9"); /* a CSI, raw and in UTF-8 */
    char longv[3000];
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    ct_log(CT_LOG_INFO, "long", "value=%s", longv); /* cut, but still one whole line */
    fflush(stderr);
    ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
    close(saved);

    ct_buf r = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(path, 4096, &r), CT_OK);
    const char *s;
    ck_assert_int_eq(ct_buf_cstr(&r, &s), CT_OK);
    ck_assert_ptr_null(strstr(s, "hidden"));
    ck_assert(strncmp(s, "ts=", 3) == 0);
    /* Outside input cannot start a forged line. */
    ck_assert_ptr_nonnull(strstr(s, " level=warn event=cert_issued serial=ab12?ts=forged level=info event=fake\n"));
    /* Nor write fields of its own in a quoted value. */
    ck_assert_ptr_nonnull(strstr(s, " level=warn event=refused reason=\"x\\\" status=200 result=\\\"ok\" status=403\n"));
    /* Nor act on the terminal showing it: C1 controls as '?', other UTF-8 kept. */
    ck_assert_ptr_nonnull(strstr(s, " level=warn event=c1 serial=a?2J??31m\xc3\xa9\n"));
    size_t lines = 0;
    for (const char *p = s; *p; p++) lines += *p == '\n';
    ck_assert_uint_eq(lines, 4); /* one line per event */
    const char *last = strstr(s, " event=long value=vvv");
    ck_assert_ptr_nonnull(last);
    while (last > s && last[-1] != '\n') last--;
    ck_assert_uint_eq(strlen(last), 1024); /* 1,023 characters and the newline */
    ck_assert_int_eq(last[1023], '\n');
    ct_buf_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- config */

static ct_config *parse_ok(const char *text)
{
    ct_config *c = NULL;
    ct_err rc = ct_config_parse((const uint8_t *)text, strlen(text), &c);
    ck_assert_msg(rc == CT_OK, "parse: %s (%s)", ct_err_name(rc), ct_err_detail());
    ck_assert_ptr_nonnull(c);
    return c;
}

static void expect_config_err(const uint8_t *text, size_t len, const char *detail_part)
{
    ct_config *c = (ct_config *)&c; /* must be reset to NULL */
    ct_err_clear();
    ct_err rc = ct_config_parse(text, len, &c);
    ck_assert_msg(rc == CT_ERR_CONFIG, "got %s, want CT_ERR_CONFIG", ct_err_name(rc));
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(ct_err_detail(), detail_part) != NULL, "detail '%s' does not name '%s'", ct_err_detail(),
                  detail_part);
}

static void expect_config_err_s(const char *text, const char *detail_part)
{
    expect_config_err((const uint8_t *)text, strlen(text), detail_part);
}

/* One setting changed in place, or appended to an older file that lacks it; the rest byte for byte. */
START_TEST(test_settings_set)
{
    static const ct_setting rows[] = {{"a", "1", "first"}, {"b", "2", "second"}};
    const ct_settings_schema schema = {"test", rows, 2};
    char path[1024];
    ct_buf b = CT_BUF_INIT;
    ck_assert_int_eq(ct_path_join(path, sizeof path, tu_tmpdir("settings"), "x.conf"), CT_OK);
    const char *old = "# mine\na = 1  \n  # keep\n";
    ck_assert_int_eq(ct_file_write_atomic(path, old, strlen(old), 0600), CT_OK);
    ck_assert_int_eq(ct_settings_set(&schema, path, "a", "7"), CT_OK);
    ck_assert_int_eq(ct_settings_set(&schema, path, "b", "x y"), CT_OK); /* absent: appended with its comment */
    ck_assert_int_eq(ct_file_read(path, 4096, &b), CT_OK);
    ck_assert_uint_lt(b.len, b.max); /* ct_file_read leaves a spare byte */
    b.data[b.len] = '\0';
    ck_assert_str_eq((const char *)b.data, "# mine\na = 7\n  # keep\n\n# second\nb = x y\n");
    ct_config *cfg = NULL;
    ck_assert_int_eq(ct_settings_load(&schema, path, &cfg), CT_OK);
    ck_assert_str_eq(ct_settings_get(&schema, cfg, "b"), "x y");
    ct_config_free(cfg);
    ck_assert_int_eq(ct_settings_set(&schema, path, "a", "1 # no"), CT_ERR_USAGE);
    ck_assert_int_eq(ct_settings_set(&schema, path, "a", "1\nb = 3"), CT_ERR_USAGE);
    ck_assert_int_eq(ct_settings_set(&schema, path, "c", "1"), CT_ERR_ARG);
    ct_buf_free(&b);
}
END_TEST

START_TEST(test_config_parse)
{
    ct_config *c = parse_ok("# camtrust CA\n"
                            "\n"
                            "   # indented comment\n"
                            "listen = 0.0.0.0:8443\n"
                            "  db.path=/var/lib/camtrust/ca.db  \n"
                            "\tpin-file\t=\t/run/secrets/pin\t\r\n"
                            "empty =\n"
                            "with_hash = a # b\n"
                            "spaces = one two  three\n"
                            "port = 8443");
    ck_assert_str_eq(ct_config_get(c, "listen", NULL), "0.0.0.0:8443");
    ck_assert_str_eq(ct_config_get(c, "db.path", NULL), "/var/lib/camtrust/ca.db");
    ck_assert_str_eq(ct_config_get(c, "pin-file", NULL), "/run/secrets/pin");
    ck_assert_str_eq(ct_config_get(c, "empty", "fallback"), "");
    ck_assert_str_eq(ct_config_get(c, "with_hash", NULL), "a # b");
    ck_assert_str_eq(ct_config_get(c, "spaces", NULL), "one two  three");
    ck_assert_str_eq(ct_config_get(c, "port", NULL), "8443");
    ck_assert_str_eq(ct_config_get(c, "absent", "fb"), "fb");
    ck_assert_ptr_null(ct_config_get(c, "absent", NULL));
    ck_assert_ptr_null(ct_config_get(c, "LISTEN", NULL)); /* keys are case-sensitive */
    ck_assert_ptr_null(ct_config_get(c, "# camtrust CA", NULL));
    ct_config_free(c);
    ck_assert_str_eq(ct_config_get(NULL, "x", "fb"), "fb");
    ct_config_free(NULL);

    c = parse_ok("");
    ck_assert_ptr_null(ct_config_get(c, "listen", NULL));
    ct_config_free(c);
    c = parse_ok("\n\n# only comments\n   \n");
    ct_config_free(c);
}
END_TEST

START_TEST(test_config_errors)
{
    expect_config_err_s("a = 1\nb = 2\na = 3\n", "line 3");
    expect_config_err_s("a = 1\nb = 2\na = 3\n", "'a'");
    expect_config_err_s("a = 1\njust a line\n", "line 2");
    expect_config_err_s("a = 1\nkey\n", "line 2");
    expect_config_err_s("= value\n", "line 1");
    expect_config_err_s("a = 1\n\nkey: value\n", "line 3");
    expect_config_err_s("ke y = 1\n", "line 1");
    expect_config_err_s("a = 1\nb = x\x01y\n", "line 2");
    expect_config_err_s("a = x\x1b[31m\n", "line 1");
    expect_config_err_s("a = 1\nb\x01 = 2\n", "line 2");
    static const char nul1[] = "a = 1\nb = x\0y\n", nul2[] = "a = 1\n\0\n";
    expect_config_err((const uint8_t *)nul1, sizeof nul1 - 1, "line 2");
    expect_config_err((const uint8_t *)nul2, sizeof nul2 - 1, "line 2");
}
END_TEST

START_TEST(test_config_limits)
{
    /* line length: CT_CONFIG_MAX_LINE bytes are accepted, one more is not */
    char *text = malloc(CT_CONFIG_MAX_BYTES + 2);
    ck_assert_ptr_nonnull(text);
    size_t off = 0;
    memcpy(text, "a = 1\nk = ", 10);
    off = 10;
    size_t fill = CT_CONFIG_MAX_LINE - 4; /* "k = " + fill = MAX_LINE */
    memset(text + off, 'v', fill);
    off += fill;
    text[off] = '\n';
    ct_config *c = NULL;
    ck_assert_int_eq(ct_config_parse((const uint8_t *)text, off + 1, &c), CT_OK);
    ck_assert_uint_eq(strlen(ct_config_get(c, "k", "")), fill);
    ct_config_free(c);
    text[off] = 'v';
    text[off + 1] = '\n';
    expect_config_err((const uint8_t *)text, off + 2, "line 2");

    /* number of keys */
    ct_buf b = mkbuf(CT_CONFIG_MAX_BYTES);
    for (int i = 0; i < CT_CONFIG_MAX_ENTRIES; i++) ck_assert_int_eq(ct_buf_appendf(&b, "key%d = %d\n", i, i), CT_OK);
    ck_assert_int_eq(ct_config_parse(b.data, b.len, &c), CT_OK);
    ck_assert_str_eq(ct_config_get(c, "key127", NULL), "127");
    ct_config_free(c);
    ck_assert_int_eq(ct_buf_appendf(&b, "one_more = x\n"), CT_OK);
    expect_config_err(b.data, b.len, "128");
    ct_buf_free(&b);

    /* total size */
    memset(text, '\n', CT_CONFIG_MAX_BYTES + 1);
    ck_assert_int_eq(ct_config_parse((const uint8_t *)text, CT_CONFIG_MAX_BYTES, &c), CT_OK);
    ct_config_free(c);
    expect_config_err((const uint8_t *)text, CT_CONFIG_MAX_BYTES + 1, "bytes");
    free(text);
}
END_TEST

START_TEST(test_config_get_int)
{
    ct_config *c = parse_ok("workers = 8\n"
                            "zero = 0\n"
                            "neg = -3\n"
                            "plus = +7\n"
                            "words = eight\n"
                            "suffix = 8k\n"
                            "hex = 0x10\n"
                            "empty =\n"
                            "inner = 1 2\n"
                            "huge = 99999999999999999999999\n"
                            "minus_huge = -99999999999999999999999\n");
    long v = 0;
    ck_assert_int_eq(ct_config_get_int(c, "workers", 1, 1, 64, &v), CT_OK);
    ck_assert_int_eq(v, 8);
    ck_assert_int_eq(ct_config_get_int(c, "absent", 4, 1, 64, &v), CT_OK);
    ck_assert_int_eq(v, 4);
    ck_assert_int_eq(ct_config_get_int(c, "neg", 0, -5, 5, &v), CT_OK);
    ck_assert_int_eq(v, -3);
    ck_assert_int_eq(ct_config_get_int(c, "plus", 0, 0, 10, &v), CT_OK);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(ct_config_get_int(c, "workers", 1, 8, 8, &v), CT_OK); /* bounds are inclusive */

    const char *bad[] = {"words", "suffix", "hex", "empty", "inner"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 12345;
        ct_err_clear();
        ck_assert_int_eq(ct_config_get_int(c, bad[i], 1, LONG_MIN, LONG_MAX, &v), CT_ERR_CONFIG);
        ck_assert_int_eq(v, 12345);
        ck_assert_msg(strstr(ct_err_detail(), bad[i]) != NULL, "detail '%s' does not name key %s", ct_err_detail(),
                      bad[i]);
    }
    v = 12345;
    ck_assert_int_eq(ct_config_get_int(c, "workers", 1, 9, 64, &v), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "workers"));
    ck_assert_int_eq(ct_config_get_int(c, "workers", 1, 1, 7, &v), CT_ERR_CONFIG);
    ck_assert_int_eq(ct_config_get_int(c, "zero", 1, 1, 7, &v), CT_ERR_CONFIG);
    ck_assert_int_eq(ct_config_get_int(c, "neg", 1, 0, 7, &v), CT_ERR_CONFIG);
    ck_assert_int_eq(v, 12345);
    /* Out of the range of long: refused, not silently clamped to LONG_MAX/LONG_MIN. */
    ct_err rc = ct_config_get_int(c, "huge", 1, 0, LONG_MAX, &v);
    ck_assert_msg(rc == CT_ERR_CONFIG, "huge: %s, v=%ld", ct_err_name(rc), v);
    rc = ct_config_get_int(c, "minus_huge", 1, LONG_MIN, 0, &v);
    ck_assert_msg(rc == CT_ERR_CONFIG, "minus_huge: %s, v=%ld", ct_err_name(rc), v);
    ct_config_free(c);
}
END_TEST

START_TEST(test_config_load)
{
    const char *dir = tu_tmpdir("core-config");
    char path[600];
    join(path, sizeof path, dir, "ca.conf");
    write_file(path, "# x\nlisten = :8443\n", 19);
    ct_config *c = NULL;
    ck_assert_int_eq(ct_config_load(path, &c), CT_OK);
    ck_assert_str_eq(ct_config_get(c, "listen", NULL), ":8443");
    ct_config_free(c);

    char *big = malloc(CT_CONFIG_MAX_BYTES + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, '\n', CT_CONFIG_MAX_BYTES + 1);
    write_file(path, big, CT_CONFIG_MAX_BYTES + 1);
    free(big);
    ct_err_clear();
    ck_assert_int_eq(ct_config_load(path, &c), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), path));

    join(path, sizeof path, dir, "missing.conf");
    ck_assert_int_ne(ct_config_load(path, &c), CT_OK);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), path));
}
END_TEST

/* ---------------------------------------------------------------- secrets */

START_TEST(test_secret_file)
{
    const char *dir = tu_tmpdir("core-secret");
    char path[600], out[16];
    join(path, sizeof path, dir, "pin");

    write_file(path, "1234\n", 5);
    unsetenv("CT_TEST_PIN");
    ck_assert_int_eq(ct_secret_load(path, "CT_TEST_PIN", out, sizeof out), CT_OK);
    ck_assert_str_eq(out, "1234");
    write_file(path, "12 34\r\n", 7);
    ck_assert_int_eq(ct_secret_load(path, NULL, out, sizeof out), CT_OK);
    ck_assert_str_eq(out, "12 34");
    write_file(path, "9876", 4);
    ck_assert_int_eq(ct_secret_load(path, NULL, out, sizeof out), CT_OK);
    ck_assert_str_eq(out, "9876");
    /* the file wins over the environment */
    setenv("CT_TEST_PIN", "from-env", 1);
    ck_assert_int_eq(ct_secret_load(path, "CT_TEST_PIN", out, sizeof out), CT_OK);
    ck_assert_str_eq(out, "9876");

    /* exactly out_max - 1 characters fit, out_max do not */
    write_file(path, "123456789012345\n", 16);
    ck_assert_int_eq(ct_secret_load(path, NULL, out, sizeof out), CT_OK);
    ck_assert_str_eq(out, "123456789012345");
    write_file(path, "1234567890123456\n", 17);
    ck_assert_int_eq(ct_secret_load(path, NULL, out, sizeof out), CT_ERR_CONFIG);

    write_file(path, "\n", 1);
    ct_err_clear();
    ck_assert_int_eq(ct_secret_load(path, NULL, out, sizeof out), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), path));
    write_file(path, "", 0);
    ck_assert_int_eq(ct_secret_load(path, NULL, out, sizeof out), CT_ERR_CONFIG);
    /* one line only: a second line, or a NUL that would cut the secret short unseen, is refused */
    write_file(path, "12\n34\n", 6);
    ck_assert_int_eq(ct_secret_load(path, NULL, out, sizeof out), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "not one line"));
    write_file(path, "12\0" "34\n", 6);
    ck_assert_int_eq(ct_secret_load(path, NULL, out, sizeof out), CT_ERR_CONFIG);
}
END_TEST

START_TEST(test_secret_env)
{
    char out[16];
    setenv("CT_TEST_PIN", "4321", 1);
    ck_assert_int_eq(ct_secret_load(NULL, "CT_TEST_PIN", out, sizeof out), CT_OK);
    ck_assert_str_eq(out, "4321");
    ck_assert_int_eq(ct_secret_load("", "CT_TEST_PIN", out, sizeof out), CT_OK); /* empty path: no file */
    ck_assert_str_eq(out, "4321");

    unsetenv("CT_TEST_PIN");
    ct_err_clear();
    ck_assert_int_eq(ct_secret_load(NULL, "CT_TEST_PIN", out, sizeof out), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "CT_TEST_PIN"));
    setenv("CT_TEST_PIN", "", 1);
    ck_assert_int_eq(ct_secret_load(NULL, "CT_TEST_PIN", out, sizeof out), CT_ERR_CONFIG);
    ck_assert_int_eq(ct_secret_load(NULL, NULL, out, sizeof out), CT_ERR_CONFIG);
    setenv("CT_TEST_PIN", "12345678901234567890", 1);
    ck_assert_int_ne(ct_secret_load(NULL, "CT_TEST_PIN", out, sizeof out), CT_OK);
}
END_TEST

/* A PIN file that is configured but missing, unreadable or absurdly large is a configuration error. */
START_TEST(test_secret_file_missing)
{
    const char *dir = tu_tmpdir("core-secret");
    char path[600], out[16];
    join(path, sizeof path, dir, "no-such-pin");
    setenv("CT_TEST_PIN", "4321", 1); /* not used as a fallback for a configured file */
    ct_err_clear();
    ct_err rc = ct_secret_load(path, "CT_TEST_PIN", out, sizeof out);
    ck_assert_msg(rc == CT_ERR_CONFIG, "missing PIN file: %s, want CT_ERR_CONFIG", ct_err_name(rc));
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), path));

    join(path, sizeof path, dir, "big-pin");
    char big[2048];
    memset(big, '1', sizeof big);
    write_file(path, big, sizeof big);
    rc = ct_secret_load(path, "CT_TEST_PIN", out, sizeof out);
    ck_assert_msg(rc == CT_ERR_CONFIG, "2 KiB PIN file: %s, want CT_ERR_CONFIG", ct_err_name(rc));
}
END_TEST

/* A timed wait counts on the monotonic clock, deadline and condition alike: a wall-clock deadline, or a condition
 * on the wall clock, would let a step of the clock lengthen (or cut short) the wait. */
START_TEST(test_timed_wait_monotonic)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    ck_assert_int_eq(ct_cond_init(&cv), 0);
    struct timespec before, until, after;
    clock_gettime(CLOCK_MONOTONIC, &before);
    ct_timespec_in(50, &until);
    int64_t ahead_ms = (int64_t)(until.tv_sec - before.tv_sec) * 1000 + (until.tv_nsec - before.tv_nsec) / 1000000;
    ck_assert_msg(ahead_ms >= 49 && ahead_ms < 60 * 1000, "deadline %lld ms from the monotonic now, want 50",
                  (long long)ahead_ms);
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (rc == 0) rc = pthread_cond_timedwait(&cv, &mu, &until); /* nobody signals: only the deadline ends it */
    pthread_mutex_unlock(&mu);
    clock_gettime(CLOCK_MONOTONIC, &after);
    ck_assert_int_eq(rc, ETIMEDOUT);
    /* Woken by its deadline on the monotonic clock: a condition on the wall clock would return at once. */
    ck_assert_msg(after.tv_sec > until.tv_sec || (after.tv_sec == until.tv_sec && after.tv_nsec >= until.tv_nsec),
                  "the wait ended before its monotonic deadline");
    pthread_cond_destroy(&cv);
}
END_TEST

/* ---------------------------------------------------------------- suite */

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *t = tcase_create("errors");
    tcase_add_test(t, test_err_table);
    tcase_add_test(t, test_fail_detail);
    tcase_add_test(t, test_text_safe);
    tcase_add_test(t, test_utf8_next);
    tcase_add_test(t, test_err_saved);
    suite_add_tcase(s, t);

    t = tcase_create("buffers");
    tcase_add_test(t, test_buf_append_bounds);
    tcase_add_test(t, test_buf_appendf);
    tcase_add_test(t, test_buf_cstr);
    tcase_add_test(t, test_strlcpy_snprintf);
    tcase_add_test(t, test_equal_ct_wipe);
    tcase_add_test(t, test_sha256_random);
    suite_add_tcase(s, t);

    t = tcase_create("encodings");
    tcase_add_test(t, test_b64_valid);
    tcase_add_test(t, test_b64_invalid);
    tcase_add_test(t, test_b64_too_large);
    tcase_add_test(t, test_b64_exact_fit);
    tcase_add_test(t, test_b64_round_trip);
    tcase_add_test(t, test_pem_round_trip);
    tcase_add_test(t, test_pem_malformed);
    tcase_add_test(t, test_pem_openssl);
    tcase_add_test(t, test_hex);
    suite_add_tcase(s, t);

    t = tcase_create("files");
    tcase_add_test(t, test_file_write_atomic);
    tcase_add_test(t, test_file_write_atomic_missing_dir);
    tcase_add_test(t, test_file_write_atomic_stale_temp);
    tcase_add_test(t, test_file_read);
    tcase_add_test(t, test_dir_recover_own_pid);
    tcase_add_test(t, test_stale_stage_too_deep);
    tcase_add_test(t, test_stale_stage_file_refused);
    tcase_add_test(t, test_log_line);
    suite_add_tcase(s, t);

    t = tcase_create("config");
    tcase_add_test(t, test_config_parse);
    tcase_add_test(t, test_settings_set);
    tcase_add_test(t, test_config_errors);
    tcase_add_test(t, test_config_limits);
    tcase_add_test(t, test_config_get_int);
    tcase_add_test(t, test_config_load);
    suite_add_tcase(s, t);

    t = tcase_create("secrets");
    tcase_add_test(t, test_secret_file);
    tcase_add_test(t, test_secret_env);
    tcase_add_test(t, test_secret_file_missing);
    suite_add_tcase(s, t);

    t = tcase_create("time");
    tcase_add_test(t, test_timed_wait_monotonic);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tu_run_suite(core_suite()); }
