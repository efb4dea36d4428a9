/* Factory mode: the station's endpoint on the factory LAN, one connection at a time. */
#define _POSIX_C_SOURCE 200809L
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_priv.h"

/* ERROR {REASON}; the connection ends after it. */
static ct_err answer_error(factory_msg *resp, const char *reason, bool *close_after)
{
    *close_after = true;
    factory_msg_free(resp);
    CT_GUARD_RET(factory_msg_init(resp, FACTORY_ERROR));
    return factory_msg_add_str(resp, FACTORY_TAG_REASON, reason);
}

/* A provisioned camera shows its installed leaf certificates: a station that lost the install's answer (a power
 * cut right after the rename) confirms them with the CA instead of calling the camera failed. */
static ct_err add_installed(agent *a, factory_msg *resp)
{
    agent_creds c;
    CT_GUARD_RET(agent_creds_load(a, &c));
    ct_err rc = CT_OK;
    for (int p = 0; p < AGENT_PROFILE__COUNT && rc == CT_OK; p++) {
        rc = factory_msg_add_str(resp, FACTORY_TAG_PROFILE, agent_profile_name[p]);
        if (rc == CT_OK) rc = factory_msg_add(resp, FACTORY_TAG_CERT, c.chain[p].der[0].data, c.chain[p].der[0].len);
    }
    agent_creds_free(&c);
    return rc;
}

static ct_err answer_identity(agent *a, factory_msg *resp)
{
    agent_status st;
    CT_GUARD_RET(agent_status_get(a, &st));
    CT_GUARD_RET(factory_msg_init(resp, FACTORY_IDENTITY));
    CT_GUARD_RET(factory_msg_add_str(resp, FACTORY_TAG_SERIAL, st.serial));
    CT_GUARD_RET(factory_msg_add_str(resp, FACTORY_TAG_MODEL, st.model));
    CT_GUARD_RET(factory_msg_add_str(resp, FACTORY_TAG_MAC, st.mac));
    CT_GUARD_RET(factory_msg_add_str(resp, FACTORY_TAG_STATE, agent_state_name(st.state)));
    if (st.state == AGENT_BROKEN) CT_GUARD_RET(factory_msg_add_str(resp, FACTORY_TAG_REASON, st.reason));
    if (st.state == AGENT_PROVISIONED) CT_GUARD_RET(add_installed(a, resp));
    return CT_OK;
}

/* GET_CSRS: the profiles asked for (none named: all), each at most once, and the station's nonce (none: `nonce`
 * ""), which each CSR then carries signed: a fresh proof of the keys. An older station sends none. */
static ct_err csrs_asked(const factory_msg *req, bool want[AGENT_PROFILE__COUNT], char nonce[FACTORY_NONCE_HEX + 1])
{
    size_t off = 0, named = 0;
    factory_field f = {0};
    ct_err rc;
    memset(want, 0, AGENT_PROFILE__COUNT * sizeof want[0]);
    nonce[0] = '\0';
    while ((rc = factory_msg_next(req, &off, &f)) == CT_OK) {
        if (f.tag == FACTORY_TAG_NONCE) {
            memcpy(nonce, f.value, f.len < FACTORY_NONCE_HEX ? f.len : FACTORY_NONCE_HEX);
            nonce[FACTORY_NONCE_HEX] = '\0';
            CT_ENSURE_RET(f.len == FACTORY_NONCE_HEX && strspn(nonce, "0123456789abcdef") == FACTORY_NONCE_HEX,
                          ct_fail(CT_ERR_BAD_REQUEST, "the station's nonce is not %d hex digits", FACTORY_NONCE_HEX));
        }
        if (f.tag != FACTORY_TAG_PROFILE) continue;
        agent_profile p;
        CT_GUARD_RET(agent_profile_parse(f.value, f.len, &p));
        want[p] = true;
        named++;
    }
    CT_ENSURE_RET(rc == CT_ERR_NOT_FOUND, rc);
    if (!named)
        for (int p = 0; p < AGENT_PROFILE__COUNT; p++) want[p] = true;
    return CT_OK;
}

static ct_err answer_csrs(agent *a, const factory_msg *req, factory_msg *resp)
{
    ct_err rc = CT_OK;
    ct_buf der = CT_BUF_INIT;
    bool want[AGENT_PROFILE__COUNT];
    char nonce[FACTORY_NONCE_HEX + 1];
    /* Locked, it makes no key: its CSRs are for the installed keys, a fresh proof that it holds them. */
    bool locked = agent_locked(a);
    CT_GUARD(csrs_asked(req, want, nonce));
    CT_GUARD(ct_buf_alloc(&der, PKI_MAX_CSR_DER));
    CT_GUARD(factory_msg_init(resp, FACTORY_CSRS));
    for (int p = 0; p < AGENT_PROFILE__COUNT; p++) {
        if (!want[p]) continue;
        der.len = 0;
        CT_GUARD(agent_csr(a, (agent_profile)p, !locked, *nonce ? nonce : NULL, &der));
        CT_GUARD(factory_msg_add_str(resp, FACTORY_TAG_PROFILE, agent_profile_name[p]));
        CT_GUARD(factory_msg_add(resp, FACTORY_TAG_CSR, der.data, der.len));
    }
cleanup:
    ct_buf_free(&der);
    return rc;
}

static ct_err answer_install(agent *a, const factory_msg *req, factory_msg *resp)
{
    ct_err rc = agent_install(a, req);
    char reason[AGENT_REASON_MAX];
    if (ct_strlcpy(reason, sizeof reason, rc == CT_OK ? "" : ct_err_detail()) != CT_OK) reason[0] = '\0';
    ct_log(rc == CT_OK ? CT_LOG_INFO : CT_LOG_WARN, "install", "status=%s reason=%s",
           rc == CT_OK ? "ok" : ct_err_name(rc), CT_LOGQ(reason));
    CT_GUARD_RET(factory_msg_init(resp, FACTORY_RESULT));
    CT_GUARD_RET(factory_msg_add_str(resp, FACTORY_TAG_STATUS, rc == CT_OK ? "ok" : ct_err_name(rc)));
    if (rc != CT_OK) CT_GUARD_RET(factory_msg_add_str(resp, FACTORY_TAG_REASON, *reason ? reason : ct_err_message(rc)));
    return CT_OK;
}

ct_err agent_factory_handle(agent *a, const factory_msg *req, factory_msg *resp, bool *close_after)
{
    ct_err rc = CT_OK;
    *close_after = false;
    resp->payload = (ct_buf)CT_BUF_INIT;
    switch (req->type) {
    case FACTORY_HELLO: rc = answer_identity(a, resp); break;
    case FACTORY_GET_CSRS: rc = answer_csrs(a, req, resp); break;
    case FACTORY_INSTALL: rc = answer_install(a, req, resp); break;
    default: rc = ct_fail(CT_ERR_BAD_REQUEST, "unexpected message type %u", (unsigned)req->type); break;
    }
    if (rc == CT_ERR_NOMEM) return rc;
    if (rc != CT_OK) {
        char reason[AGENT_REASON_MAX];
        if (ct_strlcpy(reason, sizeof reason, *ct_err_detail() ? ct_err_detail() : ct_err_message(rc)) != CT_OK)
            reason[0] = '\0';
        ct_log(CT_LOG_WARN, "refused", "type=%u reason=%s", (unsigned)req->type, CT_LOGQ(reason));
        return answer_error(resp, reason, close_after);
    }
    return CT_OK;
}

/* One station connection: messages until it closes, errs, or is told ERROR. */
static void serve_station(agent *a, int fd)
{
    bool close_after = false;
    while (!close_after && !agent_stopping()) {
        factory_msg req = {0}, resp = {0};
        ct_err rc = factory_recv(fd, &req, (int)a->factory_timeout_ms);
        if (rc != CT_OK) {
            /* A malformed frame gets an ERROR; a closed or timed-out stream just ends. */
            if (rc == CT_ERR_BAD_REQUEST) {
                char reason[AGENT_REASON_MAX];
                if (ct_strlcpy(reason, sizeof reason, ct_err_detail()) != CT_OK) reason[0] = '\0';
                if (answer_error(&resp, reason, &close_after) != CT_OK ||
                    factory_send(fd, &resp, (int)a->factory_timeout_ms) != CT_OK)
                    ct_log(CT_LOG_DEBUG, "error_not_sent", "reason=%s", CT_LOGQ(reason));
            }
            ct_log(CT_LOG_INFO, "station_gone", "reason=%s", CT_LOGQ(ct_err_detail()));
            factory_msg_free(&resp);
            return;
        }
        rc = agent_factory_handle(a, &req, &resp, &close_after);
        if (rc == CT_OK) rc = factory_send(fd, &resp, (int)a->factory_timeout_ms);
        if (rc != CT_OK) close_after = true;
        factory_msg_free(&req);
        factory_msg_free(&resp);
    }
}

ct_err agent_factory_serve(const char *dir, const char *listen)
{
    ct_err rc = CT_OK;
    agent *a = NULL;
    int lfd = -1;
    CT_GUARD(agent_open(dir, &a));
    /* A locked camera serves too (it refuses INSTALL): the station must be able to see what it installed. */
    agent_signals_install();
    CT_GUARD(agent_listen(listen, &lfd));
    ct_log(CT_LOG_INFO, "factory_mode", "serial=%s listen=%s", a->serial, listen);
    while (!agent_stopping()) {
        int fd = -1;
        CT_GUARD(agent_accept(lfd, &fd, NULL));
        if (fd < 0) continue;
        /* Each message goes out whole (factory_send), and now: the station waits for every answer. */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        serve_station(a, fd);
        close(fd);
    }
    ct_log(CT_LOG_INFO, "stopping", "serial=%s", a->serial);
cleanup:
    if (lfd >= 0) close(lfd);
    agent_close(a);
    return rc;
}
