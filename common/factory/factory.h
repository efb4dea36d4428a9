/* factory: the factory-line protocol between a station (provision/) and a camera in factory mode
 * (device-agent/). TCP on the factory LAN; the camera trusts nothing the station says until the chain it
 * hands back verifies up to the camera's pinned device root, so the channel itself needs no secrecy.
 *
 * Frame:   "CTF1" | type (1 byte) | payload length (4 bytes, big-endian, <= FACTORY_MAX_PAYLOAD) | payload
 * Payload: fields, each tag (1 byte) | length (2 bytes, big-endian) | value. Unknown tags are skipped.
 *
 * Exchange (station asks, camera answers; one connection per camera):
 *   HELLO                                   -> IDENTITY {SERIAL, MODEL, MAC, STATE[, REASON][, PROFILE, CERT...]}
 *                                              a provisioned camera names each installed leaf certificate
 *   GET_CSRS {PROFILE...[, NONCE]}          -> CSRS {PROFILE, CSR}...   keys made once, reused on a retry;
 *                                              a provisioned camera answers for its installed keys; each CSR
 *                                              carries the NONCE as its PKCS#9 challengePassword
 *   INSTALL {PROFILE, CERT, CERT...[, LOG_PROOF]}...[, CHECKPOINT]
 *                                           -> RESULT {STATUS[, REASON]}  leaf first, then its issuers; a
 *                                              station pinning the CA's log key adds each leaf's inclusion proof
 *                                              and the checkpoint they lead to
 * Either side may answer ERROR {REASON} instead and close. */
#ifndef CAMTRUST_FACTORY_H
#define CAMTRUST_FACTORY_H

#include "../core/core.h"

#define FACTORY_MAGIC "CTF1"
#define FACTORY_HEADER_LEN 9
#define FACTORY_MAX_PAYLOAD (64 * 1024)
#define FACTORY_MAX_FIELDS 64
#define FACTORY_DEFAULT_TIMEOUT_MS 10000

typedef enum {
    FACTORY_HELLO = 1,
    FACTORY_IDENTITY = 2,
    FACTORY_GET_CSRS = 3,
    FACTORY_CSRS = 4,
    FACTORY_INSTALL = 5,
    FACTORY_RESULT = 6,
    FACTORY_ERROR = 7,
} factory_type;

typedef enum {
    FACTORY_TAG_SERIAL = 1,
    FACTORY_TAG_MODEL = 2,
    FACTORY_TAG_MAC = 3,
    FACTORY_TAG_STATE = 4,   /* "unprovisioned", "provisioned", "broken" */
    FACTORY_TAG_REASON = 5,
    FACTORY_TAG_PROFILE = 6, /* "device" (TLS identity), "media-signing" */
    FACTORY_TAG_CSR = 7,     /* DER PKCS#10 */
    FACTORY_TAG_CERT = 8,    /* DER certificate */
    FACTORY_TAG_STATUS = 9,  /* "ok" or the ct_err name */
    /* INSTALL, issue 11: the checkpoint (C2SP signed note) the certificates' inclusion proofs lead to, and after
     * each profile's certificates its leaf's proof: uint64 big-endian leaf index || audit path (32 bytes each).
     * A camera that pins no log key ignores both. */
    FACTORY_TAG_CHECKPOINT = 10,
    FACTORY_TAG_LOG_PROOF = 11,
    /* GET_CSRS: the station's fresh random challenge for this exchange (FACTORY_NONCE_HEX lowercase hex digits).
     * Inside CSRs signed by the camera's token keys it proves that the camera holds them now: CSRs captured on
     * the LAN and replayed carry another challenge or none. A station refuses CSRs without it (an agent from before
     * it); an agent asked without one (an older station) makes CSRs without a challenge. */
    FACTORY_TAG_NONCE = 12,
} factory_tag;

#define FACTORY_NONCE_BYTES 16
#define FACTORY_NONCE_HEX (2 * FACTORY_NONCE_BYTES)

typedef struct {
    uint8_t type;
    ct_buf payload; /* fields, max FACTORY_MAX_PAYLOAD */
} factory_msg;

typedef struct {
    uint8_t tag;
    const uint8_t *value;
    size_t len;
} factory_field;

/* Building a message. */
CT_MUST_CHECK ct_err factory_msg_init(factory_msg *m, factory_type type);
CT_MUST_CHECK ct_err factory_msg_add(factory_msg *m, factory_tag tag, const void *value, size_t len);
CT_MUST_CHECK ct_err factory_msg_add_str(factory_msg *m, factory_tag tag, const char *value);
void factory_msg_free(factory_msg *m);

/* Walking the fields of a received message: start with *offset = 0; CT_ERR_NOT_FOUND at the end,
 * CT_ERR_BAD_REQUEST if a field runs past the payload or there are more than FACTORY_MAX_FIELDS. */
CT_MUST_CHECK ct_err factory_msg_next(const factory_msg *m, size_t *offset, factory_field *f);
/* The first field with this tag as a NUL-terminated string (no NUL bytes inside, fits `max`). */
CT_MUST_CHECK ct_err factory_msg_get_str(const factory_msg *m, factory_tag tag, char *out, size_t max);

/* Decodes one frame from a buffer (outside input: bounded). CT_ERR_BAD_REQUEST for a bad magic or length,
 * CT_ERR_NOT_FOUND if the buffer holds less than a whole frame. On success `*consumed` is the frame size and
 * `m` holds a copy of the payload; every field is checked to lie within it. */
CT_MUST_CHECK ct_err factory_frame_decode(const uint8_t *buf, size_t len, factory_msg *m, size_t *consumed);

/* Socket I/O with a deadline; a closed or truncated stream is CT_ERR_IO with a reason. */
CT_MUST_CHECK ct_err factory_send(int fd, const factory_msg *m, int timeout_ms);
CT_MUST_CHECK ct_err factory_recv(int fd, factory_msg *m, int timeout_ms);

/* TCP helpers for "host:port" (IPv4, or [IPv6]). */
CT_MUST_CHECK ct_err factory_connect(const char *addr, int timeout_ms, int *fd);
CT_MUST_CHECK ct_err factory_listen(const char *addr, int *fd, int *bound_port);

#endif
