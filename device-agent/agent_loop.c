/* What both servers of the camera share: the stop signals, binding with an announcement, a polling accept. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_priv.h"

static volatile sig_atomic_t g_stop;

static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

void agent_signals_install(void)
{
    /* No SA_RESTART: a blocked poll or accept returns, and the loop sees the flag. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    g_stop = 0;
}

void agent_stop_request(void) { g_stop = 1; }

bool agent_stopping(void)
{
    return g_stop != 0;
}

ct_err agent_listen(const char *where, int *fd)
{
    int port = 0;
    CT_GUARD_RET(factory_listen(where, fd, &port));
    /* Scripts wait for this line; with port 0 it is the only way to learn the port. */
    const char *colon = strrchr(where, ':');
    printf("listening on %.*s:%d\n", (int)(colon - where), where, port);
    fflush(stdout);
    return CT_OK;
}

static void addr_key(const struct sockaddr_storage *sa, uint8_t key[AGENT_ADDR_KEY_LEN])
{
    static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
    /* Whole addresses, IPv6 too: on a camera's LAN every SLAAC client shares one /64 (and every link-local one
     * fe80::/64), so keying by /64 as the CA does (it faces the internet) would make the whole IPv6 LAN one client.
     * An IPv4 client is keyed as the IPv4-mapped address a dual-stack socket gives it. */
    if (sa->ss_family == AF_INET) {
        memcpy(key, v4_mapped, sizeof v4_mapped);
        memcpy(key + sizeof v4_mapped, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else {
        memcpy(key, ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr, AGENT_ADDR_KEY_LEN);
    }
}

ct_err agent_accept(int lfd, int *conn, uint8_t key[AGENT_ADDR_KEY_LEN])
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    *conn = -1;
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    int r = poll(&p, 1, 500);
    if (r < 0 && errno == EINTR) return CT_OK;
    CT_ENSURE_RET(r >= 0, ct_fail(CT_ERR_IO, "poll: %s", strerror(errno)));
    if (r == 0) return CT_OK;
    *conn = accept4(lfd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC);
    if (*conn < 0 && (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)) return CT_OK;
    CT_ENSURE_RET(*conn >= 0, ct_fail(CT_ERR_IO, "accept: %s", strerror(errno)));
    if (key) addr_key(&sa, key);
    return CT_OK;
}
