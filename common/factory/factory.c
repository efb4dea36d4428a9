/* factory: framing, field walking and deadline-bound socket I/O of the factory-line protocol. */
#define _POSIX_C_SOURCE 200809L
#include "factory.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FIELD_HEADER_LEN 3
#define FIELD_MAX_VALUE 0xFFFFu

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

ct_err factory_msg_init(factory_msg *m, factory_type type)
{
    m->type = (uint8_t)type;
    return ct_buf_alloc(&m->payload, FACTORY_MAX_PAYLOAD);
}

void factory_msg_free(factory_msg *m)
{
    ct_buf_free(&m->payload);
}

/* Parses the field at `off` of `p[0..len)`; `count` is how many fields precede it. */
static ct_err field_at(const uint8_t *p, size_t len, size_t off, size_t count, factory_field *f)
{
    if (off == len) return CT_ERR_NOT_FOUND;
    CT_ENSURE_RET(count < FACTORY_MAX_FIELDS,
                  ct_fail(CT_ERR_BAD_REQUEST, "more than %d fields in a factory message", FACTORY_MAX_FIELDS));
    CT_ENSURE_RET(off < len && len - off >= FIELD_HEADER_LEN,
                  ct_fail(CT_ERR_BAD_REQUEST, "truncated field header at offset %zu", off));
    size_t vlen = ((size_t)p[off + 1] << 8) | p[off + 2];
    CT_ENSURE_RET(vlen <= len - off - FIELD_HEADER_LEN,
                  ct_fail(CT_ERR_BAD_REQUEST, "field at offset %zu runs past the message", off));
    f->tag = p[off];
    f->value = p + off + FIELD_HEADER_LEN;
    f->len = vlen;
    return CT_OK;
}

/* Walks every field: each inside the payload, at most FACTORY_MAX_FIELDS. */
static ct_err fields_count(const uint8_t *p, size_t len, size_t *count)
{
    factory_field f = {0};
    size_t off = 0;
    for (*count = 0;; (*count)++) {
        ct_err rc = field_at(p, len, off, *count, &f);
        if (rc == CT_ERR_NOT_FOUND) return CT_OK;
        CT_GUARD_RET(rc);
        off = (size_t)(f.value - p) + f.len;
    }
}

static ct_err fields_check(const uint8_t *p, size_t len)
{
    size_t count;
    return fields_count(p, len, &count);
}

ct_err factory_msg_add(factory_msg *m, factory_tag tag, const void *value, size_t len)
{
    CT_ENSURE_RET(m->payload.data, CT_ERR_ARG);
    CT_ENSURE_RET(len <= FIELD_MAX_VALUE, ct_fail(CT_ERR_TOO_LARGE, "factory field of %zu bytes is too long", len));
    /* The receiver refuses a message with too many fields: refuse to build one. */
    size_t count = 0;
    CT_GUARD_RET(fields_count(m->payload.data, m->payload.len, &count));
    CT_ENSURE_RET(count < FACTORY_MAX_FIELDS, ct_fail(CT_ERR_BUF_FULL, "too many fields in a factory message"));
    CT_ENSURE_RET(m->payload.max - m->payload.len >= FIELD_HEADER_LEN + len,
                  ct_fail(CT_ERR_TOO_LARGE, "factory message would exceed %d bytes", FACTORY_MAX_PAYLOAD));
    const uint8_t hdr[FIELD_HEADER_LEN] = {(uint8_t)tag, (uint8_t)(len >> 8), (uint8_t)len};
    CT_GUARD_RET(ct_buf_append(&m->payload, hdr, sizeof hdr));
    return ct_buf_append(&m->payload, value, len);
}

ct_err factory_msg_add_str(factory_msg *m, factory_tag tag, const char *value)
{
    return factory_msg_add(m, tag, value, strlen(value));
}

ct_err factory_msg_next(const factory_msg *m, size_t *offset, factory_field *f)
{
    const uint8_t *p = m->payload.data;
    size_t len = m->payload.len;
    /* Count the fields before *offset so that the field limit holds however the message was made. */
    size_t off = 0, count = 0;
    factory_field prev = {0};
    while (off < *offset) {
        CT_GUARD_RET(field_at(p, len, off, count, &prev));
        off = (size_t)(prev.value - p) + prev.len;
        count++;
    }
    CT_ENSURE_RET(off == *offset, ct_fail(CT_ERR_ARG, "offset %zu is not a field boundary", *offset));
    CT_GUARD_RET(field_at(p, len, off, count, f));
    *offset = (size_t)(f->value - p) + f->len;
    return CT_OK;
}

ct_err factory_msg_get_str(const factory_msg *m, factory_tag tag, char *out, size_t max)
{
    size_t off = 0;
    factory_field f = {0};
    ct_err rc;
    while ((rc = factory_msg_next(m, &off, &f)) == CT_OK) {
        if (f.tag != tag) continue;
        CT_ENSURE_RET(!memchr(f.value, '\0', f.len),
                      ct_fail(CT_ERR_BAD_REQUEST, "field %u holds a NUL byte", (unsigned)tag));
        CT_ENSURE_RET(f.len < max,
                      ct_fail(CT_ERR_BAD_REQUEST, "field %u is too long (%zu bytes)", (unsigned)tag, f.len));
        if (f.len) memcpy(out, f.value, f.len);
        out[f.len] = '\0';
        return CT_OK;
    }
    return rc == CT_ERR_NOT_FOUND ? ct_fail(CT_ERR_NOT_FOUND, "no field %u in the message", (unsigned)tag) : rc;
}

/* Checks a frame header (as much of it as `len` holds); gives the type and payload length when whole. */
static ct_err header_check(const uint8_t *buf, size_t len, uint8_t *type, size_t *plen)
{
    size_t magic_have = len < 4 ? len : 4;
    CT_ENSURE_RET(memcmp(buf, FACTORY_MAGIC, magic_have) == 0,
                  ct_fail(CT_ERR_BAD_REQUEST, "not a factory frame (bad magic)"));
    if (len < FACTORY_HEADER_LEN) return CT_ERR_NOT_FOUND;
    CT_ENSURE_RET(buf[4] >= FACTORY_HELLO && buf[4] <= FACTORY_ERROR,
                  ct_fail(CT_ERR_BAD_REQUEST, "unknown factory message type %u", (unsigned)buf[4]));
    uint32_t n = get_be32(buf + 5);
    CT_ENSURE_RET(n <= FACTORY_MAX_PAYLOAD,
                  ct_fail(CT_ERR_BAD_REQUEST, "factory frame of %lu bytes exceeds %d", (unsigned long)n,
                          FACTORY_MAX_PAYLOAD));
    *type = buf[4];
    *plen = n;
    return CT_OK;
}

ct_err factory_frame_decode(const uint8_t *buf, size_t len, factory_msg *m, size_t *consumed)
{
    ct_err rc = CT_OK;
    uint8_t type = 0;
    size_t plen = 0;
    m->payload = (ct_buf)CT_BUF_INIT;
    CT_GUARD(header_check(buf, len, &type, &plen));
    CT_ENSURE(len - FACTORY_HEADER_LEN >= plen, CT_ERR_NOT_FOUND);
    CT_GUARD(fields_check(buf + FACTORY_HEADER_LEN, plen));
    CT_GUARD(ct_buf_alloc(&m->payload, plen));
    CT_GUARD(ct_buf_append(&m->payload, buf + FACTORY_HEADER_LEN, plen));
    m->type = type;
    *consumed = FACTORY_HEADER_LEN + plen;
cleanup:
    if (rc != CT_OK) ct_buf_free(&m->payload);
    return rc;
}

/* ---- sockets ---- */

/* Never blocks past the deadline: every call is non-blocking after poll, whatever the fd's mode. The iovecs are
 * consumed. One sendmsg for header and payload: as two writes, Nagle held the payload until the peer acknowledged
 * the header, which a peer delaying its ACKs did some 40 ms later, on every answer of every camera. */
static ct_err send_all(int fd, struct iovec *iov, size_t cnt, int64_t deadline)
{
    while (cnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            cnt--;
            continue;
        }
        CT_GUARD_RET(ct_wait_fd(fd, POLLOUT, deadline, "sending a factory message"));
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = cnt};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        CT_ENSURE_RET(w > 0, ct_fail(CT_ERR_IO, "cannot send a factory message: %s", strerror(errno)));
        size_t left = (size_t)w;
        for (; cnt > 0 && left >= iov->iov_len; iov++, cnt--) left -= iov->iov_len;
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return CT_OK;
}

static ct_err recv_all(int fd, uint8_t *p, size_t n, int64_t deadline, size_t *got)
{
    *got = 0;
    while (*got < n) {
        CT_GUARD_RET(ct_wait_fd(fd, POLLIN, deadline, "waiting for a factory message"));
        ssize_t r = recv(fd, p + *got, n - *got, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        CT_ENSURE_RET(r >= 0, ct_fail(CT_ERR_IO, "cannot receive a factory message: %s", strerror(errno)));
        CT_ENSURE_RET(r > 0, ct_fail(CT_ERR_IO, "connection closed after %zu of %zu bytes", *got, n));
        *got += (size_t)r;
    }
    return CT_OK;
}

ct_err factory_send(int fd, const factory_msg *m, int timeout_ms)
{
    CT_ENSURE_RET(m->payload.len <= FACTORY_MAX_PAYLOAD, CT_ERR_ARG);
    int64_t deadline = ct_now_ms() + timeout_ms;
    uint8_t hdr[FACTORY_HEADER_LEN];
    uint32_t n = (uint32_t)m->payload.len;
    memcpy(hdr, FACTORY_MAGIC, 4);
    hdr[4] = m->type;
    hdr[5] = (uint8_t)(n >> 24);
    hdr[6] = (uint8_t)(n >> 16);
    hdr[7] = (uint8_t)(n >> 8);
    hdr[8] = (uint8_t)n;
    struct iovec iov[2] = {{hdr, sizeof hdr}, {m->payload.data, m->payload.len}};
    return send_all(fd, iov, 2, deadline);
}

ct_err factory_recv(int fd, factory_msg *m, int timeout_ms)
{
    ct_err rc = CT_OK;
    int64_t deadline = ct_now_ms() + timeout_ms;
    uint8_t hdr[FACTORY_HEADER_LEN];
    size_t got = 0, plen = 0;
    uint8_t type = 0;
    m->payload = (ct_buf)CT_BUF_INIT;
    CT_GUARD(recv_all(fd, hdr, sizeof hdr, deadline, &got));
    CT_GUARD(header_check(hdr, sizeof hdr, &type, &plen));
    CT_GUARD(ct_buf_alloc(&m->payload, plen));
    CT_GUARD(recv_all(fd, m->payload.data, plen, deadline, &got));
    m->payload.len = plen;
    CT_GUARD(fields_check(m->payload.data, plen));
    m->type = type;
cleanup:
    if (rc != CT_OK) ct_buf_free(&m->payload);
    return rc;
}

ct_err factory_connect(const char *addr, int timeout_ms, int *fd)
{
    ct_err rc = CT_OK;
    struct sockaddr_storage sa;
    socklen_t sl;
    int s = -1;
    CT_GUARD(ct_addr_parse(addr, &sa, &sl));
    s = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    CT_ENSURE_MSG(s >= 0, CT_ERR_IO, "cannot create a socket: %s", strerror(errno));
    if (connect(s, (struct sockaddr *)&sa, sl) != 0) {
        CT_ENSURE_MSG(errno == EINPROGRESS, CT_ERR_IO, "cannot connect to %s: %s", addr, strerror(errno));
        CT_GUARD(ct_wait_fd(s, POLLOUT, ct_now_ms() + timeout_ms, "connecting"));
        int err = 0;
        socklen_t el = sizeof err;
        CT_ENSURE_MSG(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0, CT_ERR_IO,
                      "cannot connect to %s: %s", addr, strerror(err));
    }
    int one = 1;
    (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd = s;
    s = -1;
cleanup:
    if (s >= 0) close(s);
    return rc;
}

ct_err factory_listen(const char *addr, int *fd, int *bound_port)
{
    ct_err rc = CT_OK;
    struct sockaddr_storage sa;
    socklen_t sl;
    int s = -1, one = 1;
    CT_GUARD(ct_addr_parse(addr, &sa, &sl));
    s = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CT_ENSURE_MSG(s >= 0, CT_ERR_IO, "cannot create a socket: %s", strerror(errno));
    CT_ENSURE_MSG(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, CT_ERR_IO, "setsockopt: %s",
                  strerror(errno));
    CT_ENSURE_MSG(bind(s, (struct sockaddr *)&sa, sl) == 0, CT_ERR_IO, "cannot bind %s: %s", addr, strerror(errno));
    CT_ENSURE_MSG(listen(s, 8) == 0, CT_ERR_IO, "cannot listen on %s: %s", addr, strerror(errno));
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    CT_ENSURE_MSG(getsockname(s, (struct sockaddr *)&got, &gl) == 0, CT_ERR_IO, "getsockname: %s", strerror(errno));
    if (bound_port)
        *bound_port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                      : ((struct sockaddr_in *)&got)->sin_port);
    *fd = s;
    s = -1;
cleanup:
    if (s >= 0) close(s);
    return rc;
}
