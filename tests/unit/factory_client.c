/* A minimal station for tests: speaks common/factory to a camera in factory mode over a real socket.
 *   factory_client ADDR hello                          prints the camera's IDENTITY as key=value
 *   factory_client ADDR csrs OUTDIR                     writes OUTDIR/<profile>.csr.der for both profiles
 *   factory_client ADDR install PROFILE=chain.pem...    sends INSTALL, prints "status=.. reason=.."; exit 0 iff ok
 *   factory_client ADDR truncate N PROFILE=chain.pem... sends only the first N bytes of that INSTALL, then closes
 *   factory_client ADDR raw FILE                        sends FILE's bytes as they are, prints the answer */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "factory.h"

#define TIMEOUT_MS 20000

static int die(const char *what, ct_err rc)
{
    fprintf(stderr, "factory_client: %s: %s: %s\n", what, ct_err_name(rc), ct_err_detail());
    return 1;
}

static void print_fields(const factory_msg *m)
{
    static const char *const names[] = {"", "serial", "model", "mac", "state", "reason", "profile", "csr", "cert",
                                        "status"};
    size_t off = 0;
    factory_field f = {0};
    printf("type=%u", (unsigned)m->type);
    while (factory_msg_next(m, &off, &f) == CT_OK) {
        if (f.tag == FACTORY_TAG_CSR || f.tag == FACTORY_TAG_CERT || f.tag >= sizeof names / sizeof names[0])
            printf(" tag%u=<%zu bytes>", (unsigned)f.tag, f.len);
        else
            printf(" %s=\"%.*s\"", names[f.tag], (int)f.len, (const char *)f.value);
    }
    printf("\n");
}

/* INSTALL from PROFILE=file.pem arguments (each file: the chain, leaf first). */
static ct_err build_install(int n, char **args, factory_msg *m)
{
    ct_err rc = CT_OK;
    ct_buf pem = CT_BUF_INIT, der = CT_BUF_INIT;
    CT_GUARD(factory_msg_init(m, FACTORY_INSTALL));
    CT_GUARD(ct_buf_alloc(&der, 16384));
    for (int i = 0; i < n; i++) {
        char *eq = strchr(args[i], '=');
        CT_ENSURE_MSG(eq, CT_ERR_USAGE, "expected PROFILE=file, got %s", args[i]);
        CT_GUARD(factory_msg_add(m, FACTORY_TAG_PROFILE, args[i], (size_t)(eq - args[i])));
        if (!eq[1]) continue; /* "PROFILE=": an empty chain */
        CT_GUARD(ct_file_read(eq + 1, 1 << 20, &pem));
        for (size_t k = 0; (rc = ct_pem_decode(pem.data, pem.len, "CERTIFICATE", k, &der)) == CT_OK; k++)
            CT_GUARD(factory_msg_add(m, FACTORY_TAG_CERT, der.data, der.len));
        CT_ENSURE(rc == CT_ERR_NOT_FOUND, rc);
        rc = CT_OK;
        ct_buf_free(&pem);
    }
cleanup:
    ct_buf_free(&pem);
    ct_buf_free(&der);
    return rc;
}

static ct_err write_csrs(const factory_msg *m, const char *outdir)
{
    size_t off = 0;
    factory_field f = {0};
    char profile[64] = "", path[1024];
    ct_err rc;
    while ((rc = factory_msg_next(m, &off, &f)) == CT_OK) {
        if (f.tag == FACTORY_TAG_PROFILE) {
            CT_ENSURE_RET(f.len < sizeof profile, CT_ERR_BAD_REQUEST);
            memcpy(profile, f.value, f.len);
            profile[f.len] = '\0';
        } else if (f.tag == FACTORY_TAG_CSR) {
            CT_GUARD_RET(ct_snprintf(path, sizeof path, "%s/%s.csr.der", outdir, profile));
            CT_GUARD_RET(ct_file_write_atomic(path, f.value, f.len, 0644));
        }
    }
    return rc == CT_ERR_NOT_FOUND ? CT_OK : rc;
}

/* The frame as it goes on the wire (header as in factory.h). */
static ct_err frame_bytes(const factory_msg *m, ct_buf *out)
{
    uint32_t n = (uint32_t)m->payload.len;
    uint8_t hdr[FACTORY_HEADER_LEN] = {'C', 'T', 'F', '1', m->type, (uint8_t)(n >> 24), (uint8_t)(n >> 16),
                                       (uint8_t)(n >> 8), (uint8_t)n};
    CT_GUARD_RET(ct_buf_alloc(out, sizeof hdr + n));
    CT_GUARD_RET(ct_buf_append(out, hdr, sizeof hdr));
    return ct_buf_append(out, m->payload.data, n);
}

static int send_raw(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: factory_client ADDR hello|csrs OUTDIR|install P=F...|truncate N P=F...|raw FILE\n");
        return 2;
    }
    const char *cmd = argv[2];
    factory_msg req = {0}, resp = {0};
    ct_buf raw = CT_BUF_INIT;
    int fd = -1, ret = 1;
    ct_err rc = factory_connect(argv[1], TIMEOUT_MS, &fd);
    if (rc != CT_OK) return die("connect", rc);
    if (strcmp(cmd, "hello") == 0) {
        rc = factory_msg_init(&req, FACTORY_HELLO);
    } else if (strcmp(cmd, "csrs") == 0 && argc == 4) {
        rc = factory_msg_init(&req, FACTORY_GET_CSRS);
        if (rc == CT_OK) rc = factory_msg_add_str(&req, FACTORY_TAG_PROFILE, "device");
        if (rc == CT_OK) rc = factory_msg_add_str(&req, FACTORY_TAG_PROFILE, "media-signing");
    } else if (strcmp(cmd, "install") == 0) {
        rc = build_install(argc - 3, argv + 3, &req);
    } else if (strcmp(cmd, "truncate") == 0 && argc >= 4) {
        rc = build_install(argc - 4, argv + 4, &req);
        if (rc == CT_OK) rc = frame_bytes(&req, &raw);
        size_t cut = (size_t)strtoul(argv[3], NULL, 10);
        if (rc == CT_OK) ret = send_raw(fd, raw.data, cut < raw.len ? cut : raw.len) == 0 ? 0 : 1;
        goto done;
    } else if (strcmp(cmd, "raw") == 0 && argc == 4) {
        rc = ct_file_read(argv[3], 1 << 20, &raw);
        if (rc == CT_OK && send_raw(fd, raw.data, raw.len) != 0) rc = ct_fail(CT_ERR_IO, "send failed");
        if (rc == CT_OK) rc = factory_recv(fd, &resp, TIMEOUT_MS);
        if (rc == CT_OK) print_fields(&resp);
        ret = rc == CT_OK ? 0 : die("raw", rc);
        goto done;
    } else {
        rc = ct_fail(CT_ERR_USAGE, "unknown command %s", cmd);
    }
    if (rc == CT_OK) rc = factory_send(fd, &req, TIMEOUT_MS);
    if (rc == CT_OK) rc = factory_recv(fd, &resp, TIMEOUT_MS);
    if (rc != CT_OK) {
        ret = die(cmd, rc);
        goto done;
    }
    print_fields(&resp);
    if (resp.type == FACTORY_CSRS) {
        rc = write_csrs(&resp, argv[3]);
        ret = rc == CT_OK ? 0 : die("csrs", rc);
    } else if (resp.type == FACTORY_RESULT) {
        char status[64];
        ret = factory_msg_get_str(&resp, FACTORY_TAG_STATUS, status, sizeof status) == CT_OK &&
                      strcmp(status, "ok") == 0
                  ? 0
                  : 1;
    } else {
        ret = resp.type == FACTORY_IDENTITY ? 0 : 1;
    }
done:
    factory_msg_free(&req);
    factory_msg_free(&resp);
    ct_buf_free(&raw);
    close(fd);
    return ret;
}
