/* factory protocol: framing, field walking, bounds, and real loopback sockets with deadlines. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "factory.h"
#include "test_util.h"

/* The wire bytes of `m`, made here independently of factory_send. */
static size_t frame(const factory_msg *m, uint8_t *out, size_t max)
{
    size_t n = m->payload.len;
    ck_assert_uint_le(FACTORY_HEADER_LEN + n, max);
    memcpy(out, "CTF1", 4);
    out[4] = m->type;
    out[5] = (uint8_t)(n >> 24), out[6] = (uint8_t)(n >> 16), out[7] = (uint8_t)(n >> 8), out[8] = (uint8_t)n;
    memcpy(out + FACTORY_HEADER_LEN, m->payload.data, n);
    return FACTORY_HEADER_LEN + n;
}

/* A raw frame from a header and payload bytes. */
static size_t raw_frame(uint8_t type, uint32_t declared, const void *payload, size_t n, uint8_t *out)
{
    memcpy(out, "CTF1", 4);
    out[4] = type;
    out[5] = (uint8_t)(declared >> 24), out[6] = (uint8_t)(declared >> 16), out[7] = (uint8_t)(declared >> 8);
    out[8] = (uint8_t)declared;
    memcpy(out + FACTORY_HEADER_LEN, payload, n);
    return FACTORY_HEADER_LEN + n;
}

static uint8_t buf[FACTORY_HEADER_LEN + FACTORY_MAX_PAYLOAD + 16];

START_TEST(round_trip)
{
    factory_msg m, d;
    uint8_t der[300];
    for (size_t i = 0; i < sizeof der; i++) der[i] = (uint8_t)i;
    ck_assert_int_eq(factory_msg_init(&m, FACTORY_CSRS), CT_OK);
    ck_assert_int_eq(factory_msg_add_str(&m, FACTORY_TAG_PROFILE, "device"), CT_OK);
    ck_assert_int_eq(factory_msg_add(&m, FACTORY_TAG_CSR, der, sizeof der), CT_OK);
    ck_assert_int_eq(factory_msg_add(&m, FACTORY_TAG_REASON, "", 0), CT_OK);
    size_t n = frame(&m, buf, sizeof buf), used = 0;
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_OK);
    ck_assert_uint_eq(used, n);
    ck_assert_uint_eq(d.type, FACTORY_CSRS);
    size_t off = 0;
    factory_field f;
    ck_assert_int_eq(factory_msg_next(&d, &off, &f), CT_OK);
    ck_assert_uint_eq(f.tag, FACTORY_TAG_PROFILE);
    ck_assert_uint_eq(f.len, 6);
    ck_assert_int_eq(memcmp(f.value, "device", 6), 0);
    ck_assert_int_eq(factory_msg_next(&d, &off, &f), CT_OK);
    ck_assert_uint_eq(f.len, sizeof der);
    ck_assert_int_eq(memcmp(f.value, der, sizeof der), 0);
    ck_assert_int_eq(factory_msg_next(&d, &off, &f), CT_OK);
    ck_assert_uint_eq(f.len, 0);
    ck_assert_int_eq(factory_msg_next(&d, &off, &f), CT_ERR_NOT_FOUND);
    char s[16];
    ck_assert_int_eq(factory_msg_get_str(&d, FACTORY_TAG_PROFILE, s, sizeof s), CT_OK);
    ck_assert_str_eq(s, "device");
    ck_assert_int_eq(factory_msg_get_str(&d, FACTORY_TAG_SERIAL, s, sizeof s), CT_ERR_NOT_FOUND);
    /* Two frames back to back: the first is consumed alone. */
    memcpy(buf + n, buf, n);
    factory_msg_free(&d);
    ck_assert_int_eq(factory_frame_decode(buf, 2 * n, &d, &used), CT_OK);
    ck_assert_uint_eq(used, n);
    factory_msg_free(&d);
    factory_msg_free(&m);
}
END_TEST

START_TEST(truncated_frames)
{
    factory_msg m, d = {0};
    ck_assert_int_eq(factory_msg_init(&m, FACTORY_IDENTITY), CT_OK);
    ck_assert_int_eq(factory_msg_add_str(&m, FACTORY_TAG_SERIAL, "CAM0001"), CT_OK);
    ck_assert_int_eq(factory_msg_add_str(&m, FACTORY_TAG_STATE, "unprovisioned"), CT_OK);
    size_t n = frame(&m, buf, sizeof buf), used = 0;
    for (size_t k = 0; k < n; k++) {
        ck_assert_msg(factory_frame_decode(buf, k, &d, &used) == CT_ERR_NOT_FOUND, "prefix %zu", k);
        ck_assert_ptr_null(d.payload.data);
    }
    factory_msg_free(&m);
}
END_TEST

START_TEST(bad_headers)
{
    factory_msg d = {0};
    size_t used = 0, n;
    const uint8_t field[] = {FACTORY_TAG_SERIAL, 0, 1, 'x'};
    n = raw_frame(FACTORY_HELLO, sizeof field, field, sizeof field, buf);
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_OK);
    factory_msg_free(&d);
    buf[0] = 'X';
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_ERR_BAD_REQUEST);
    ck_assert_int_eq(factory_frame_decode(buf, 2, &d, &used), CT_ERR_BAD_REQUEST); /* wrong from the first byte */
    n = raw_frame(0, sizeof field, field, sizeof field, buf);
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_ERR_BAD_REQUEST);
    n = raw_frame(99, sizeof field, field, sizeof field, buf);
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_ERR_BAD_REQUEST);
    /* A declared length over the limit is refused from the header alone, whatever follows. */
    n = raw_frame(FACTORY_HELLO, FACTORY_MAX_PAYLOAD + 1, field, sizeof field, buf);
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_ERR_BAD_REQUEST);
    n = raw_frame(FACTORY_HELLO, 0xffffffffu, field, sizeof field, buf);
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_ERR_BAD_REQUEST);
    ck_assert_ptr_null(d.payload.data);
}
END_TEST

START_TEST(field_overruns)
{
    factory_msg d = {0};
    size_t used = 0, n;
    const uint8_t long_len[] = {FACTORY_TAG_SERIAL, 0, 5, 'a', 'b'};  /* says 5, has 2 */
    const uint8_t half_header[] = {FACTORY_TAG_SERIAL, 0, 1, 'a', 9}; /* a second field with a 1-byte header */
    n = raw_frame(FACTORY_IDENTITY, sizeof long_len, long_len, sizeof long_len, buf);
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_ERR_BAD_REQUEST);
    n = raw_frame(FACTORY_IDENTITY, sizeof half_header, half_header, sizeof half_header, buf);
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_ERR_BAD_REQUEST);
    ck_assert_ptr_null(d.payload.data);
}
END_TEST

START_TEST(too_many_fields)
{
    factory_msg m, d = {0};
    ck_assert_int_eq(factory_msg_init(&m, FACTORY_INSTALL), CT_OK);
    for (int i = 0; i < FACTORY_MAX_FIELDS; i++) ck_assert_int_eq(factory_msg_add(&m, FACTORY_TAG_CERT, "c", 1), CT_OK);
    ck_assert_int_ne(factory_msg_add(&m, FACTORY_TAG_CERT, "c", 1), CT_OK);
    size_t n = frame(&m, buf, sizeof buf), used = 0;
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_OK); /* exactly the limit */
    factory_msg_free(&d);
    /* One more, written by hand. */
    const uint8_t extra[] = {FACTORY_TAG_CERT, 0, 1, 'c'};
    memcpy(buf + n, extra, sizeof extra);
    n = raw_frame(FACTORY_INSTALL, (uint32_t)(m.payload.len + sizeof extra), buf + FACTORY_HEADER_LEN,
                  m.payload.len + sizeof extra, buf);
    ck_assert_int_eq(factory_frame_decode(buf, n, &d, &used), CT_ERR_BAD_REQUEST);
    /* A message built past the limit by hand is refused by the walker too. */
    ck_assert_int_eq(ct_buf_append(&m.payload, extra, sizeof extra), CT_OK);
    size_t off = 0;
    factory_field f;
    ct_err rc;
    int count = 0;
    while ((rc = factory_msg_next(&m, &off, &f)) == CT_OK) count++;
    ck_assert_int_eq(rc, CT_ERR_BAD_REQUEST);
    ck_assert_int_eq(count, FACTORY_MAX_FIELDS);
    factory_msg_free(&m);
}
END_TEST

START_TEST(strings)
{
    factory_msg m;
    char s[8];
    ck_assert_int_eq(factory_msg_init(&m, FACTORY_IDENTITY), CT_OK);
    ck_assert_int_eq(factory_msg_add(&m, 200, "unknown", 7), CT_OK); /* unknown tags are skipped */
    ck_assert_int_eq(factory_msg_add(&m, FACTORY_TAG_SERIAL, "AB\0CD", 5), CT_OK);
    ck_assert_int_eq(factory_msg_add_str(&m, FACTORY_TAG_MODEL, "1234567"), CT_OK);
    ck_assert_int_eq(factory_msg_add_str(&m, FACTORY_TAG_MAC, "12345678"), CT_OK);
    ck_assert_int_eq(factory_msg_get_str(&m, FACTORY_TAG_SERIAL, s, sizeof s), CT_ERR_BAD_REQUEST);
    ck_assert_int_eq(factory_msg_get_str(&m, FACTORY_TAG_MODEL, s, sizeof s), CT_OK); /* 7 + NUL fits 8 */
    ck_assert_str_eq(s, "1234567");
    ck_assert_int_eq(factory_msg_get_str(&m, FACTORY_TAG_MAC, s, sizeof s), CT_ERR_BAD_REQUEST);
    /* Bounds when building. */
    static uint8_t big[0x10000];
    ck_assert_int_eq(factory_msg_add(&m, FACTORY_TAG_CERT, big, sizeof big), CT_ERR_TOO_LARGE);
    ck_assert_int_eq(factory_msg_add(&m, FACTORY_TAG_CERT, big, 0xffff), CT_ERR_TOO_LARGE); /* payload limit */
    factory_msg_free(&m);
}
END_TEST

/* ---- real sockets on loopback ---- */

static int g_listen = -1, g_port;
static char g_addr[64];

static void sock_setup(void)
{
    ck_assert_int_eq(factory_listen("127.0.0.1:0", &g_listen, &g_port), CT_OK);
    ck_assert_int_gt(g_port, 0);
    snprintf(g_addr, sizeof g_addr, "127.0.0.1:%d", g_port);
}

static void sock_teardown(void)
{
    if (g_listen >= 0) close(g_listen);
}

static void connected_pair(int *client, int *server)
{
    ck_assert_int_eq(factory_connect(g_addr, 2000, client), CT_OK);
    *server = accept(g_listen, NULL, NULL);
    ck_assert_int_ge(*server, 0);
}

START_TEST(socket_round_trip)
{
    int c, s;
    connected_pair(&c, &s);
    factory_msg m, r;
    static uint8_t cert[60000];
    ck_assert_int_eq(factory_msg_init(&m, FACTORY_INSTALL), CT_OK);
    ck_assert_int_eq(factory_msg_add_str(&m, FACTORY_TAG_PROFILE, "device"), CT_OK);
    ck_assert_int_eq(factory_msg_add(&m, FACTORY_TAG_CERT, cert, 60000), CT_OK);
    ck_assert_int_eq(factory_send(c, &m, 5000), CT_OK);
    ck_assert_int_eq(factory_recv(s, &r, 5000), CT_OK);
    ck_assert_uint_eq(r.type, FACTORY_INSTALL);
    ck_assert_uint_eq(r.payload.len, m.payload.len);
    ck_assert_int_eq(memcmp(r.payload.data, m.payload.data, m.payload.len), 0);
    factory_msg_free(&r);
    factory_msg_free(&m);
    close(c);
    close(s);
}
END_TEST

START_TEST(socket_truncated_and_closed)
{
    int c, s;
    connected_pair(&c, &s);
    factory_msg r;
    const uint8_t field[] = {FACTORY_TAG_SERIAL, 0, 3, 'a', 'b', 'c'};
    size_t n = raw_frame(FACTORY_HELLO, sizeof field, field, sizeof field, buf);
    ck_assert_int_eq(write(c, buf, n - 2), (ssize_t)(n - 2));
    close(c);
    ck_assert_int_eq(factory_recv(s, &r, 5000), CT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "closed"));
    ck_assert_ptr_null(r.payload.data);
    close(s);
    /* A bad header is refused before any payload is waited for. */
    connected_pair(&c, &s);
    n = raw_frame(FACTORY_HELLO, FACTORY_MAX_PAYLOAD + 1, field, 0, buf);
    ck_assert_int_eq(write(c, buf, n), (ssize_t)n);
    ck_assert_int_eq(factory_recv(s, &r, 5000), CT_ERR_BAD_REQUEST);
    close(c);
    close(s);
}
END_TEST

START_TEST(socket_deadline)
{
    int c, s;
    connected_pair(&c, &s);
    factory_msg r;
    struct timespec t0, t1;
    ck_assert_int_eq(write(c, "CTF1", 4), 4); /* then silence */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(factory_recv(s, &r, 300), CT_ERR_IO);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(took >= 0.25 && took < 3.0, "took %.2f s", took);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "timed out"));
    close(c);
    close(s);
}
END_TEST

START_TEST(connect_refused)
{
    int fd = -1;
    int port = g_port;
    close(g_listen); /* nobody listens there now */
    g_listen = -1;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    ck_assert_int_eq(factory_connect(addr, 2000, &fd), CT_ERR_IO);
    ck_assert_int_eq(factory_connect("not-an-address:1", 2000, &fd), CT_ERR_CONFIG);
    ck_assert_int_eq(factory_listen("127.0.0.1", &fd, NULL), CT_ERR_CONFIG);
}
END_TEST

static Suite *factory_suite(void)
{
    Suite *s = suite_create("factory");
    TCase *t = tcase_create("frames");
    tcase_add_test(t, round_trip);
    tcase_add_test(t, truncated_frames);
    tcase_add_test(t, bad_headers);
    tcase_add_test(t, field_overruns);
    tcase_add_test(t, too_many_fields);
    tcase_add_test(t, strings);
    suite_add_tcase(s, t);
    t = tcase_create("sockets");
    tcase_add_checked_fixture(t, sock_setup, sock_teardown);
    tcase_add_test(t, socket_round_trip);
    tcase_add_test(t, socket_truncated_and_closed);
    tcase_add_test(t, socket_deadline);
    tcase_add_test(t, connect_refused);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run_suite(factory_suite());
}
