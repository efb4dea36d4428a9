#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

ct_err ct_secret_load(const char *path, const char *env, char *out, size_t out_max)
{
    if (path && *path) {
        ct_buf b = CT_BUF_INIT;
        /* A pipe too (`--passphrase-file <(...)`): a secret that need never be written to a disk. */
        ct_err rc = ct_file_read_stream(path, 1024, &b);
        if (rc != CT_OK)
            return ct_fail(CT_ERR_CONFIG, "cannot read secret file %s: %s", path,
                           rc == CT_ERR_TOO_LARGE ? "larger than 1024 bytes" : "missing or unreadable");
        size_t n = b.len;
        while (n && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r')) n--;
        /* One line, the secret: a NUL would cut it short unseen, a second line is not part of it. (A loop and one
         * message: the camera agent links this, and its size goal leaves no room for more.) */
        bool one_line = true;
        for (size_t i = 0; i < n; i++) one_line &= b.data[i] != '\0' && b.data[i] != '\n';
        if (n == 0 || n >= out_max || !one_line) {
            ct_buf_free(&b);
            return ct_fail(CT_ERR_CONFIG, "secret file %s is empty, too long or not one line", path);
        }
        memcpy(out, b.data, n);
        out[n] = '\0';
        ct_buf_free(&b);
        return CT_OK;
    }
    const char *v = env ? getenv(env) : NULL;
    CT_ENSURE_RET(v && *v, ct_fail(CT_ERR_CONFIG, "no secret: set a PIN file in the config or %s", env ? env : "a PIN file"));
    return ct_strlcpy(out, out_max, v);
}

ct_err ct_secret_prompt(const char *prompt, char *out, size_t out_max)
{
    ct_err rc = CT_OK;
    struct termios was, quiet;
    bool restore = false;
    size_t n = 0;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    CT_ENSURE_RET(fd >= 0, ct_fail(CT_ERR_USAGE, "no terminal to ask for a passphrase: give a passphrase file"));
    CT_ENSURE_MSG(tcgetattr(fd, &was) == 0, CT_ERR_USAGE, "cannot read the terminal's settings");
    quiet = was;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    CT_ENSURE_MSG(tcsetattr(fd, TCSAFLUSH, &quiet) == 0, CT_ERR_USAGE, "cannot turn the terminal's echo off");
    restore = true;
    CT_ENSURE_MSG(write(fd, prompt, strlen(prompt)) >= 0, CT_ERR_IO, "cannot write to the terminal");
    for (;;) { /* byte by byte: nothing of the line is left in a stdio buffer */
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r <= 0 || ch == '\n') break;
        if (ch == '\r') continue;
        CT_ENSURE_MSG(n + 1 < out_max, CT_ERR_USAGE, "passphrase longer than %zu characters", out_max - 1);
        out[n++] = ch;
    }
    out[n] = '\0';
    CT_ENSURE_MSG(n > 0, CT_ERR_USAGE, "empty passphrase");
cleanup:
    if (restore) {
        (void)tcsetattr(fd, TCSAFLUSH, &was);
        if (write(fd, "\n", 1) < 0) rc = rc == CT_OK ? CT_ERR_IO : rc;
    }
    if (rc != CT_OK) ct_wipe(out, out_max);
    close(fd);
    return rc;
}

/* The kernel's CSPRNG in one system call: a wolfSSL DRBG made per call (open, read and close /dev/urandom, then
 * instantiate) cost 2-3% of the CA's CPU per issuance for 16 bytes of serial. */
ct_err ct_random(uint8_t *out, size_t len)
{
    size_t done = 0;
    for (int tries = 0; done < len && tries < 1000; tries++) {
        ssize_t n = getrandom(out + done, len - done, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return ct_fail(CT_ERR_CRYPTO, "getrandom failed: %s", strerror(errno));
        done += (size_t)n;
    }
    return done == len ? CT_OK : ct_fail(CT_ERR_CRYPTO, "getrandom returned too little");
}

ct_err ct_sha256(const void *data, size_t len, uint8_t out[32])
{
    return wc_Sha256Hash(data, (word32)len, out) == 0 ? CT_OK : CT_ERR_CRYPTO;
}
