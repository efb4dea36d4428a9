/* The CA's HTTPS server: libmicrohttpd over GnuTLS. The TLS key stays in the token: GnuTLS signs through
 * callbacks into hsm/, so only hsm/ speaks PKCS#11 and the module is loaded once. Handlers stay thin:
 * collect the request, ask ca_est_handle (or the CRL / OCSP handler), send its answer, log one line.
 * A second, plain-HTTP daemon serves /crl and /ocsp only: revocation clients rarely speak TLS, and what they
 * fetch is signed.
 * Limits: connections per client address (server.per_ip_connections; an IPv6 client's /64 is one address, counted
 * here, conn_counts) and new HTTPS connections per address and second (server.per_ip_connects_per_second: each
 * costs a handshake signed in the token, which stations' enrollments need too), an idle timeout that also ends
 * handshakes that never finish (server.idle_timeout), a time for each request to arrive whole (server.request_timeout,
 * kept by a watchdog thread: a client that sends a byte just within the idle timeout is cut off then), a total per
 * listener (server.max_connections, within the descriptors the process may open), each connection a thread with a
 * stack of CONNECTION_STACK, of which server.reserved_connections are kept for enabled stations' and officers'
 * certificates (the oldest idle connection of no station or officer is closed to keep them free), and a time for each
 * answer to be sent (server.request_timeout and a second per ANSWER_BYTES_PER_SECOND, the same watchdog's).
 * SIGTERM or SIGINT: stop accepting, let the requests under way finish (up to server.drain_seconds), then stop. */
#define _POSIX_C_SOURCE 200809L
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "ca_priv.h"

#define EST_PREFIX "/.well-known/est/"

typedef struct {
    ca *c;
    gnutls_pcert_st pcert[2];
    unsigned pcert_count;
    gnutls_privkey_t pkey;
    hsm_key_type key_type;
} server_tls;

/* GnuTLS's certificate callback takes no user pointer: one server per process. */
static server_tls *the_tls;

/* A chunked body past server.max_body read on (dropped) to its end to answer its 413, up to this much. */
#define BODY_DROP_MAX ((size_t)1 << 20)

typedef struct {
    ct_buf body;
    size_t announced; /* Content-Length (libmicrohttpd holds the body to it), 0 when not sent */
    size_t limit;     /* the largest body its method takes (ca_http_body_limit) */
    bool too_large;
    size_t dropped; /* of a body past its limit (too_large) */
    struct timespec start;
} request_ctx;

/* Requests whose headers have arrived and whose answer is not yet sent (both daemons), for the drain at stop;
 * and whether the drain has begun (answers then close their connection). */
static atomic_long in_flight;
static atomic_bool stopping;

/* Connections per client address (server.per_ip_connections), counted here rather than by libmicrohttpd, which
 * keys on the whole address: an IPv6 client has a /64 of them (ca_addr_key). A slot per address that holds
 * connections, so at most the listener's connection limit, in a table of twice that (linear probing; a keyed hash,
 * ca_addr_key_hash: under FNV-1a a client's chosen addresses made one probe run, walked at each accept). The accept
 * policy (the listening thread) reads a count; the connection's start (the same thread, before the next accept)
 * adds to it, its end (its own thread) takes from it. The HTTPS listener's slots also keep each address's rate of
 * new connections (server.per_ip_connects_per_second), past their last connection until its bucket is full again;
 * many addresses' rates fill the table no further than three quarters (counts_make_room). */
typedef struct {
    ca_addr_key key;
    unsigned n;         /* its open connections */
    int64_t full_at_us; /* its new connections' bucket (ca_rate_take); 0 with n 0: a free slot */
} conn_count;

typedef struct {
    pthread_mutex_t mu;
    bool mu_ok;
    conn_count *slots;
    size_t n_slots; /* a power of two */
    uint8_t hash_secret[CA_HASH_SECRET_SIZE]; /* where an address goes (ca_addr_key_hash): the table's own */
    size_t used;    /* slots not free */
    unsigned per_address;
    int64_t connect_every_us, connect_burst_us; /* server.per_ip_connects_*: 0, none (the plain-HTTP listener) */
    unsigned open;       /* the listener's connections */
    unsigned evict_from; /* open connections from which a new one closes an idle one (server.reserved_connections) */
} conn_counts;

typedef struct conn_ctx conn_ctx;

/* What a daemon serves: the whole CA over HTTPS, or only the revocation routes over plain HTTP. */
typedef struct {
    ca *c;
    bool plain;
    conn_counts counts;
    conn_ctx *conns; /* its open connections, under counts.mu: the request watchdog's */
} listener;

/* The HTTPS listener, for the TLS handshake hook (GnuTLS passes it the session alone): one server per process. */
static listener *the_tls_listener;
static int handshake_finished(gnutls_session_t session, unsigned htype, unsigned when, unsigned incoming,
                              const gnutls_datum_t *msg);

/* ---- the TLS key, signing inside the token ---- */

static int sign_digest(server_tls *t, const uint8_t *digest, size_t len, gnutls_datum_t *sig)
{
    uint8_t der[160];
    size_t der_len = sizeof der;
    if (hsm_key_sign_digest(t->c->signers[CA_KEY_TLS].key, digest, len, der, &der_len) != CT_OK)
        return GNUTLS_E_PK_SIGN_FAILED;
    sig->data = gnutls_malloc(der_len);
    if (!sig->data) return GNUTLS_E_MEMORY_ERROR;
    memcpy(sig->data, der, der_len);
    sig->size = (unsigned)der_len;
    return 0;
}

static int tls_sign_hash(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata, unsigned flags,
                         const gnutls_datum_t *hash, gnutls_datum_t *sig)
{
    (void)key, (void)algo, (void)flags;
    return sign_digest(userdata, hash->data, hash->size, sig);
}

static int tls_sign_data(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata, unsigned flags,
                         const gnutls_datum_t *data, gnutls_datum_t *sig)
{
    (void)key, (void)flags;
    uint8_t digest[WC_MAX_DIGEST_SIZE];
    gnutls_digest_algorithm_t dig = gnutls_sign_get_hash_algorithm(algo);
    enum wc_HashType type = dig == GNUTLS_DIG_SHA384 ? WC_HASH_TYPE_SHA384 : WC_HASH_TYPE_SHA256;
    if (dig != GNUTLS_DIG_SHA256 && dig != GNUTLS_DIG_SHA384) return GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM;
    int len = wc_HashGetDigestSize(type);
    if (len <= 0 || wc_Hash(type, data->data, data->size, digest, (word32)len) != 0) return GNUTLS_E_HASH_FAILED;
    return sign_digest(userdata, digest, (size_t)len, sig);
}

static int tls_key_info(gnutls_privkey_t key, unsigned flags, void *userdata)
{
    (void)key;
    server_tls *t = userdata;
    bool p384 = t->key_type == HSM_EC_P384;
    if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO) return GNUTLS_PK_ECDSA;
    if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS) return p384 ? 384 : 256;
    if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
        gnutls_sign_algorithm_t a = GNUTLS_FLAGS_TO_SIGN_ALGO(flags);
        return p384 ? (a == GNUTLS_SIGN_ECDSA_SECP384R1_SHA384 || a == GNUTLS_SIGN_ECDSA_SHA384)
                    : (a == GNUTLS_SIGN_ECDSA_SECP256R1_SHA256 || a == GNUTLS_SIGN_ECDSA_SHA256);
    }
    return -1;
}

static int tls_retrieve_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                             const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                             unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    /* Called once a handshake, in its connection's thread: the client certificate is judged as soon as the handshake
     * ends, so that a station's new connection is known as one before its request arrives (the reserve). */
    gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_FINISHED, GNUTLS_HOOK_POST, handshake_finished);
    *pcert = the_tls->pcert;
    *pcert_length = the_tls->pcert_count;
    *pkey = the_tls->pkey;
    return 0;
}

static ct_err tls_setup(server_tls *t, ca *c)
{
    t->c = c;
    t->key_type = hsm_key_get_type(c->signers[CA_KEY_TLS].key);
    const ct_buf *chain[] = {&c->signers[CA_KEY_TLS].cert_der, &c->signers[CA_KEY_OPS_ISSUING].cert_der};
    for (unsigned i = 0; i < 2; i++) {
        gnutls_datum_t d = {chain[i]->data, (unsigned)chain[i]->len};
        CT_ENSURE_RET(gnutls_pcert_import_x509_raw(&t->pcert[i], &d, GNUTLS_X509_FMT_DER, 0) == 0,
                      ct_fail(CT_ERR_CONFIG, "GnuTLS cannot read the server certificate chain"));
        t->pcert_count = i + 1;
    }
    CT_ENSURE_RET(gnutls_privkey_init(&t->pkey) == 0, CT_ERR_NOMEM);
    CT_ENSURE_RET(gnutls_privkey_import_ext4(t->pkey, t, tls_sign_data, tls_sign_hash, NULL, NULL, tls_key_info, 0) == 0,
                  ct_fail(CT_ERR_CONFIG, "GnuTLS refuses the token key callbacks"));
    the_tls = t;
    return CT_OK;
}

static void tls_teardown(server_tls *t)
{
    for (unsigned i = 0; i < t->pcert_count; i++) gnutls_pcert_deinit(&t->pcert[i]);
    if (t->pkey) gnutls_privkey_deinit(t->pkey);
    the_tls = NULL;
}

/* Client certificates are accepted only if they chain to one of the CA's own hierarchies. */
static ct_err trust_pem(ca *c, ct_buf *pem)
{
    CT_GUARD_RET(ct_buf_alloc(pem, (CA_KEY__COUNT + CA_GENERATIONS_MAX) * PKI_MAX_CERT_DER * 2));
    for (int role = 0; role < CA_KEY_TLS; role++)
        CT_GUARD_RET(ct_pem_encode("CERTIFICATE", c->signers[role].cert_der.data, c->signers[role].cert_der.len, pem));
    /* Every issuing CA generation: a station certified by an older one keeps working. */
    for (size_t i = 0; i < c->n_gens; i++)
        CT_GUARD_RET(ct_pem_encode("CERTIFICATE", c->gens[i].s.cert_der.data, c->gens[i].s.cert_der.len, pem));
    const char *unused;
    return ct_buf_cstr(pem, &unused);
}

/* ---- requests ---- */

/* wolfSSL (built with FP_ECC) keeps a fixed-point cache per thread that only that thread can free:
 * a thread-specific destructor frees it when a worker thread ends. */
static pthread_key_t crypto_cache_key;
static pthread_once_t crypto_cache_once = PTHREAD_ONCE_INIT;
static void free_thread_crypto_cache(void *unused)
{
    (void)unused;
    wc_ecc_fp_free();
}
static void make_crypto_cache_key(void) { (void)pthread_key_create(&crypto_cache_key, free_thread_crypto_cache); }
void ca_thread_crypto_cache_track(void)
{
    pthread_once(&crypto_cache_once, make_crypto_cache_key);
    if (!pthread_getspecific(crypto_cache_key)) (void)pthread_setspecific(crypto_cache_key, &crypto_cache_key);
}

/* What a TLS connection's client certificate was found to be. A TLS session keeps its peer certificate (this
 * server does no renegotiation), so the chain is verified once per connection (at the end of its handshake, else at
 * its first request), not per request, and again after CLIENT_RECHECK_MS so that expiry still counts on a long
 * keep-alive connection. Every field but `key` and `fd` is under its listener's counts.mu: the watchdog and the
 * accept policy read them. */
#define CLIENT_RECHECK_MS 60000
struct conn_ctx {
    int64_t checked_at_ms;
    bool checked, trusted;
    bool kept;    /* an enabled station's or officer's certificate (the reserve never closes it) */
    bool shaken;  /* its TLS handshake ended (plain HTTP: at once) */
    bool counted; /* in its listener's conn_counts, under `key` */
    ca_addr_key key;
    /* When the request awaited must have arrived whole (server.request_timeout), or the answer queued must have been
     * sent (answer_queued); 0 while an answer is made (however long that takes). */
    int64_t due_ms;
    int64_t waiting_since_ms; /* since it waits for a request (opened, or its last answer sent); 0 while answered */
    MHD_socket fd;
    bool cut; /* shut down (watchdog, reserve): a request that arrives now is not answered */
    conn_ctx *prev, *next; /* in its listener's conns */
};

static ct_err counts_init(conn_counts *t, unsigned connections, unsigned per_address, unsigned reserved,
                          long connects_per_second, long connects_burst)
{
    for (t->n_slots = 1; t->n_slots < 2 * (size_t)connections; t->n_slots *= 2) {}
    t->per_address = per_address;
    t->connect_every_us = connects_per_second ? 1000000 / connects_per_second : 0;
    t->connect_burst_us = t->connect_every_us * connects_burst;
    /* At most half: the other half for everyone; none: libmicrohttpd refuses at the limit, no connection is closed. */
    reserved = reserved < connections / 2 ? reserved : connections / 2;
    t->evict_from = reserved ? connections - reserved : UINT_MAX;
    t->slots = calloc(t->n_slots, sizeof *t->slots);
    t->mu_ok = pthread_mutex_init(&t->mu, NULL) == 0;
    CT_ENSURE_RET(t->slots && t->mu_ok, ct_fail(CT_ERR_NOMEM, "cannot make the per-address connection counts"));
    return ct_random(t->hash_secret, sizeof t->hash_secret);
}

static void counts_free(conn_counts *t)
{
    free(t->slots);
    t->slots = NULL;
    ct_wipe(t->hash_secret, sizeof t->hash_secret);
    if (t->mu_ok) (void)pthread_mutex_destroy(&t->mu);
    t->mu_ok = false;
}

static bool slot_free(const conn_count *s) { return !s->n && !s->full_at_us; }

/* The slot of `key`: its own, else (`add`) the free one where it goes, which the caller fills at once (a connection,
 * a rate); NULL when it has none. Under t->mu. */
static conn_count *counts_slot(conn_counts *t, const ca_addr_key *key, bool add)
{
    size_t mask = t->n_slots - 1;
    for (size_t k = 0, i = ca_addr_key_hash(t->hash_secret, key) & mask; k < t->n_slots; k++, i = (i + 1) & mask) {
        conn_count *s = &t->slots[i];
        if (slot_free(s)) {
            if (!add) return NULL;
            s->key = *key;
            t->used++;
            return s;
        }
        if (ca_addr_key_equal(&s->key, key)) return s;
    }
    return NULL;
}

/* Frees slot `hole`, filling it from further along its probe run (backward shift), so that no lookup stops early
 * at it: only slots after it in that run move. Under t->mu. */
static void counts_drop(conn_counts *t, size_t hole)
{
    size_t mask = t->n_slots - 1;
    t->slots[hole] = (conn_count){0};
    t->used--;
    for (size_t j = (hole + 1) & mask; !slot_free(&t->slots[j]); j = (j + 1) & mask) {
        size_t home = ca_addr_key_hash(t->hash_secret, &t->slots[j].key) & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) { /* the hole lies between its home and it */
            t->slots[hole] = t->slots[j];
            t->slots[j] = (conn_count){0};
            hole = j;
        }
    }
}

/* One connection of `key` fewer; its slot is freed once it holds none and its rate owes nothing. Under t->mu. */
static void counts_release(conn_counts *t, const ca_addr_key *key)
{
    conn_count *s = counts_slot(t, key, false);
    if (!s || --s->n || s->full_at_us > ct_now_ms() * 1000) return;
    counts_drop(t, (size_t)(s - t->slots));
}

/* A flood of new connections from many addresses: the slots kept for a rate alone (no connection open) are freed,
 * those whose bucket is full soonest first (by sixteenths of a full burst), until at most five eighths of the table
 * is used (slots with connections are at most half of it): the next time comes an eighth of the table's new
 * addresses later. An address so forgotten starts again with a full burst. Under t->mu. */
#define RATE_BANDS 16
static size_t rate_band(const conn_counts *t, const conn_count *s, int64_t now_us)
{
    int64_t owed = s->full_at_us - now_us, band_us = t->connect_burst_us / RATE_BANDS + 1;
    return owed <= 0 ? 0 : owed / band_us < RATE_BANDS - 1 ? (size_t)(owed / band_us) : RATE_BANDS - 1;
}

static void counts_make_room(conn_counts *t)
{
    size_t in_band[RATE_BANDS] = {0}, left = t->used, last = 0;
    const int64_t now_us = ct_now_ms() * 1000;
    for (size_t i = 0; i < t->n_slots; i++)
        if (!t->slots[i].n && t->slots[i].full_at_us) in_band[rate_band(t, &t->slots[i], now_us)]++;
    for (left -= in_band[0]; left > t->n_slots / 8 * 5 && last < RATE_BANDS - 1;) left -= in_band[++last];
    for (size_t i = 0; i < t->n_slots; i++) /* (a drop moves a later slot into i: looked at again) */
        while (!t->slots[i].n && t->slots[i].full_at_us && rate_band(t, &t->slots[i], now_us) <= last)
            counts_drop(t, i);
}

/* Whether `key` (its slot `s`, NULL if none) may open a new connection now (server.per_ip_connects_per_second); a
 * slot is made for its rate if it has none. Under t->mu. */
static bool counts_connect_allowed(conn_counts *t, const ca_addr_key *key, conn_count *s)
{
    if (!t->connect_every_us) return true;
    if (!s) {
        if (t->used >= t->n_slots / 4 * 3) counts_make_room(t);
        s = counts_slot(t, key, true);
        if (!s) return true; /* (none free: cannot happen once room is made) */
    }
    return ca_rate_take(&s->full_at_us, t->connect_every_us, t->connect_burst_us);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    listener *l = cls;
    conn_ctx *cc = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        cc = calloc(1, sizeof *cc);
        *socket_context = cc;
        if (!cc) return;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        ca_addr_key_of(ci ? ci->client_addr : NULL, &cc->key);
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        cc->fd = fd ? fd->connect_fd : MHD_INVALID_SOCKET;
        int64_t now = ct_now_ms();
        cc->due_ms = now + l->c->cfg.request_timeout * 1000;
        cc->waiting_since_ms = now;
        cc->shaken = l->plain;
        (void)pthread_mutex_lock(&l->counts.mu);
        l->counts.open++;
        conn_count *s = counts_slot(&l->counts, &cc->key, true);
        if (s) s->n++;
        cc->counted = s != NULL;
        cc->next = l->conns;
        if (l->conns) l->conns->prev = cc;
        l->conns = cc;
        (void)pthread_mutex_unlock(&l->counts.mu);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* (called before libmicrohttpd closes the socket: the watchdog never shuts down a descriptor reused) */
        if (cc) {
            (void)pthread_mutex_lock(&l->counts.mu);
            l->counts.open--;
            if (cc->counted) counts_release(&l->counts, &cc->key);
            if (cc->prev) cc->prev->next = cc->next;
            else l->conns = cc->next;
            if (cc->next) cc->next->prev = cc->prev;
            (void)pthread_mutex_unlock(&l->counts.mu);
        }
        free(cc);
        *socket_context = NULL;
    }
}

static conn_ctx *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *sc = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return sc ? sc->socket_context : NULL;
}

/* A chain verified: whether it leads to one of the CA's hierarchies (trust_pem). */
static bool peer_trusted(gnutls_session_t s)
{
    unsigned status = 0;
    /* libmicrohttpd only requests a certificate: a foreign or missing one still completes the handshake. */
    return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}

static void conn_checked(listener *l, conn_ctx *cc, int64_t now, bool trusted, bool kept)
{
    (void)pthread_mutex_lock(&l->counts.mu);
    cc->checked_at_ms = now;
    cc->checked = cc->shaken = true;
    cc->trusted = trusted;
    cc->kept = kept;
    (void)pthread_mutex_unlock(&l->counts.mu);
}

/* Whether a trusted client certificate is an enabled station's or officer's: only those the reserve keeps. A camera's,
 * a viewer's, a disabled station's chains to the CA too: any camera's owner held the whole listener with it. */
static bool kept_by_reserve(ca *c, const gnutls_datum_t *cert)
{
    uint8_t fp[32];
    if (ct_sha256(cert->data, cert->size, fp) != CT_OK) return false;
    db_station st;
    db_officer o;
    bool kept = (db_station_find_by_cert(c->db, fp, &st) == CT_OK && st.enabled) ||
                (db_officer_find_by_cert(c->db, fp, &o) == CT_OK && o.enabled);
    ct_err_clear(); /* (a lookup's "not found" is no detail of the connection's first request) */
    return kept;
}

/* GnuTLS's hook after the client's Finished (the client's last handshake message, TLS 1.2 and 1.3): the connection
 * is known as a station's or officer's, or as one of no station or officer, which the reserve closes first. */
static int handshake_finished(gnutls_session_t session, unsigned htype, unsigned when, unsigned incoming,
                              const gnutls_datum_t *msg)
{
    (void)htype, (void)when, (void)msg;
    listener *l = the_tls_listener;
    if (!incoming || !l) return 0;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &n);
    bool trusted = peers && n && peer_trusted(session);
    /* Only the reserve reads `kept`: with none (server.reserved_connections = 0) its two lookups would be wasted. */
    bool kept = trusted && l->counts.evict_from != UINT_MAX && kept_by_reserve(l->c, &peers[0]);
    int fd = gnutls_transport_get_int(session);
    int64_t now = ct_now_ms();
    conn_ctx *found = NULL;
    (void)pthread_mutex_lock(&l->counts.mu);
    for (conn_ctx *cc = l->conns; cc && !found; cc = cc->next)
        if (cc->fd == fd) found = cc;
    (void)pthread_mutex_unlock(&l->counts.mu);
    /* (only this connection's thread, the one running this hook, frees its context: found stays valid) */
    if (found) conn_checked(l, found, now, trusted, kept);
    return 0;
}

static void client_certificate(listener *l, struct MHD_Connection *conn, ca_http_request *rq)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) return;
    gnutls_session_t s = (gnutls_session_t)ci->tls_session;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(s, &n);
    conn_ctx *cc = conn_of(conn);
    int64_t now = ct_now_ms();
    if (!peers || n == 0) {
        /* (recorded so by the handshake hook already, as a rule: no lock taken again on each request) */
        if (cc && (!cc->checked || cc->trusted)) conn_checked(l, cc, now, false, false);
        return;
    }
    bool trusted;
    if (cc && cc->checked && now - cc->checked_at_ms <= CLIENT_RECHECK_MS) { /* (written by this thread alone) */
        trusted = cc->trusted;
    } else {
        trusted = peer_trusted(s);
        if (cc) conn_checked(l, cc, now, trusted, trusted && cc->kept); /* (an expired one no longer kept) */
    }
    if (!trusted) {
        rq->client_cert_untrusted = true;
        return;
    }
    rq->client_cert = peers[0].data;
    rq->client_cert_len = peers[0].size;
}

static double ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 + (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static bool is_route(const char *url, const char *route)
{
    size_t n = strlen(route);
    return strncmp(url, route, n) == 0 && (url[n] == '\0' || url[n] == '/');
}

/* Query-string arguments (officer routes), decoded by libmicrohttpd. */
static const char *query_arg(void *conn, const char *key)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);
}

/* Query values and the path, %XX-decoded; an escaped control character stays escaped (ct_url_unescape). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    return ct_url_unescape(s);
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

static enum MHD_Result flag_control(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    bool *found = cls;
    *found = has_control(key) || (value && has_control(value));
    return *found ? MHD_NO : MHD_YES;
}

/* The path or a query argument holds a control character sent raw (escaped ones stay escaped). */
static bool url_has_control(struct MHD_Connection *conn, const char *url)
{
    bool found = has_control(url);
    if (!found) (void)MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, flag_control, &found);
    return found;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

typedef struct {
    const char *name, *value;
    unsigned count;
} header_count;

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    header_count *h = cls;
    if (strcasecmp(key, h->name) == 0 && h->count++ == 0) h->value = value;
    return MHD_YES;
}

/* A header that decides where a request comes from: a repeated one is "(repeated)", which matches nothing
 * (a browser sends each once; a second could hide behind the first). */
static const char *single_header(struct MHD_Connection *conn, const char *name)
{
    header_count h = {name, NULL, 0};
    (void)MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &h);
    return h.count > 1 ? "(repeated)" : h.value;
}

/* The request is here (whole, or refused): its answer may take what it takes to be made (a held commit), the
 * watchdog's clock stops. False when the watchdog or the reserve has cut the connection already: the request is
 * not acted on (an enrollment whose answer could not be sent). Under the lock, so that a request whole just at its
 * deadline is either answered or cut, never cut while it is answered. */
static bool request_arrived(listener *l, struct MHD_Connection *conn)
{
    conn_ctx *cc = conn_of(conn);
    if (!cc) return true;
    (void)pthread_mutex_lock(&l->counts.mu);
    bool cut = cc->cut;
    cc->due_ms = cc->waiting_since_ms = 0;
    (void)pthread_mutex_unlock(&l->counts.mu);
    return !cut;
}

/* A slow reader (a large answer read a byte at a time, never silent for server.idle_timeout) held its connection's
 * thread for as long as it liked: an answer has server.request_timeout and a second per ANSWER_BYTES_PER_SECOND of
 * it to be sent, then the watchdog cuts it. */
#define ANSWER_BYTES_PER_SECOND 16384
static void answer_queued(listener *l, struct MHD_Connection *conn, size_t len)
{
    conn_ctx *cc = conn_of(conn);
    if (!cc) return;
    int64_t due = ct_now_ms() + l->c->cfg.request_timeout * 1000 + (int64_t)(len / ANSWER_BYTES_PER_SECOND) * 1000;
    (void)pthread_mutex_lock(&l->counts.mu);
    cc->due_ms = due;
    (void)pthread_mutex_unlock(&l->counts.mu);
}

/* Routes that refuse a body too large first thing themselves, because they count the refusal under an action of
 * their own (ca_refusals.c): the officer door names the officer (officer.body), OCSP and EST enrollments count
 * them per address (ocsp.request, est.enroll). Any other route is not asked: its body is refused before dispatch. */
static bool route_counts_body_refusal(const char *method, const char *url, bool est, bool officer)
{
    return officer || is_route(url, "/ocsp") || (est && !ca_http_reads(method));
}

static enum MHD_Result respond(struct MHD_Connection *conn, listener *l, const char *method, const char *url,
                               request_ctx *rctx)
{
    ca *c = l->c;
    ca_http_answer ans = {0};
    if (!request_arrived(l, conn)) return MHD_NO;
    ct_err_clear(); /* a bare error code (no ct_fail) must not be logged with an earlier request's detail */
    if (!rctx->too_large && is_route(url, "/crl")) ct_failpoint_hold("serve:crl"); /* tests: a slow answer, held */
    /* HEAD is answered as GET; libmicrohttpd sends the headers only. */
    ca_http_request rq = {.method = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0 ? MHD_HTTP_METHOD_GET : method,
                          .content_type = header(conn, MHD_HTTP_HEADER_CONTENT_TYPE),
                          .body = rctx->body.data,
                          .body_len = rctx->body.len,
                          .body_too_large = rctx->too_large,
                          .arg = query_arg,
                          .arg_ctx = conn,
                          .host = single_header(conn, MHD_HTTP_HEADER_HOST),
                          .origin = single_header(conn, "Origin"),
                          .fetch_site = single_header(conn, "Sec-Fetch-Site"),
                          .accept_encoding = header(conn, MHD_HTTP_HEADER_ACCEPT_ENCODING)};
    char source[INET6_ADDRSTRLEN] = "";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    ct_addr_host(ci ? ci->client_addr : NULL, source, sizeof source);
    rq.source = source;
    client_certificate(l, conn, &rq);
    bool est = !l->plain && strncmp(url, EST_PREFIX, strlen(EST_PREFIX)) == 0;
    bool officer = !l->plain && ca_officer_route(url);
    rq.path = url;
    if (url_has_control(conn, url)) { /* sent raw: neither path nor argument can be trusted to end where it seems */
        memset(&ans, 0, sizeof ans);
        (void)ca_http_error(&ans, ct_fail(CT_ERR_BAD_REQUEST, "control character in the URL"));
    } else if (rctx->too_large && !route_counts_body_refusal(method, url, est, officer)) {
        /* before any work: a GET of /crl with a body too large had the CRL re-signed, then refused */
        (void)ca_http_error(&ans, ca_http_body_too_large(c, method));
    } else if (est) {
        rq.path = url + strlen(EST_PREFIX);
        (void)ca_est_handle(c, &rq, &ans);
    } else if (is_route(url, "/crl")) {
        (void)ca_crl_handle(c, &rq, &ans);
    } else if (is_route(url, "/ocsp")) {
        (void)ca_ocsp_handle(c, &rq, &ans);
    } else if (strncmp(url, CA_TILES_PREFIX, strlen(CA_TILES_PREFIX)) == 0) { /* before /log: tiles, also plain */
        (void)ca_tiles_handle(c, &rq, &ans);
    } else if (is_route(url, "/log")) { /* the issuance log: public, signed, also over plain HTTP */
        (void)ca_log_handle(c, &rq, &ans);
    } else if (officer) {
        (void)ca_officer_handle(c, &rq, &ans);
    } else {
        memset(&ans, 0, sizeof ans);
        (void)ca_http_error(&ans, ct_fail(CT_ERR_NOT_FOUND, "no such resource"));
    }
    if (rctx->too_large && ans.status < 400) { /* (a route above that refused it not: still refused) */
        ca_http_answer_free(&ans);
        memset(&ans, 0, sizeof ans);
        (void)ca_http_error(&ans, ca_http_body_too_large(c, method));
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(ans.body.len, ans.body.data, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result r = MHD_NO;
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ans.content_type);
        if (est && ans.status == 200 && strcmp(ans.content_type, "text/plain") != 0)
            MHD_add_response_header(resp, "Content-Transfer-Encoding", "base64");
        if (ans.cache_control) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, ans.cache_control);
        if (ans.content_encoding) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, ans.content_encoding);
        if (ans.vary_encoding) MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, MHD_HTTP_HEADER_ACCEPT_ENCODING);
        char retry_after[24];
        if (ans.retry_after_s > 0 && ct_snprintf(retry_after, sizeof retry_after, "%ld", ans.retry_after_s) == CT_OK)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
        for (const char *const *h = ca_officer_headers; officer && *h; h += 2) MHD_add_response_header(resp, h[0], h[1]);
        /* Error answers carry a client's words (reasons); no browser may take any answer for another type. */
        if (!officer) MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        if (atomic_load(&stopping)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        r = MHD_queue_response(conn, (unsigned)ans.status, resp);
        MHD_destroy_response(resp);
        if (r == MHD_YES) answer_queued(l, conn, ans.body.len);
    }
    /* Method, path and reasons come from outside: quoted, so that none can write fields of its own. The address
     * names a client that no certificate does (counted refusals are audited per address, ca_refusals.c). A 500's
     * reason is told here only, under the incident its client was given: first, where no quoted value can write it.
     * The method is cut short (none is longer than 7): with it, the longest line still fits ct_log's 1024 bytes,
     * so that a client's long method and path cannot cut off the reason. */
    ct_log(*ans.incident ? CT_LOG_ERROR : ans.status < 400 ? CT_LOG_INFO : CT_LOG_WARN, "request",
           "%s%s%smethod=%s path=%s status=%d client=%s result=%s ms=%.2f addr=%s", *ans.incident ? "incident=" : "",
           ans.incident, *ans.incident ? " " : "", ct_log_quote((char[32]){0}, 32, method), CT_LOGQ(url), ans.status,
           CT_LOGQ(*ans.actor ? ans.actor : (rq.client_cert ? "certificate" : "none")), CT_LOGQ(ans.reason),
           ms_since(&rctx->start), CT_LOGQ(*source ? source : "local"));
    ca_http_answer_free(&ans);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)version;
    listener *l = cls;
    ca *c = l->c;
    request_ctx *rctx = *req_cls;
    ca_thread_crypto_cache_track();
    if (!rctx) {
        rctx = calloc(1, sizeof *rctx); /* the body buffer comes with the first body bytes: most requests have none */
        if (!rctx) return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rctx->start);
        *req_cls = rctx;
        atomic_fetch_add(&in_flight, 1);
        rctx->limit = (size_t)ca_http_body_limit(c, method);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (announced > (unsigned long long)rctx->limit) {
            rctx->too_large = true;
            /* A client that waits for 100-continue sent nothing yet: refused at once. One already sending had its
             * connection closed on unread bytes, which resets it (RST) and could lose the 413 before the client read
             * it ('broken pipe', 000): such a body is read and dropped, up to BODY_DROP_MAX, then refused. */
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            if ((expect && strcasecmp(expect, "100-continue") == 0) || announced > BODY_DROP_MAX)
                return respond(conn, l, method, url, rctx);
            return MHD_YES;
        }
        rctx->announced = (size_t)announced;
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* As large as announced (the buffer is zeroed and wiped whole), else as large as allowed. */
        size_t room = rctx->announced ? rctx->announced : rctx->limit;
        bool kept = !rctx->too_large && room;
        if (kept && !rctx->body.data && ct_buf_alloc(&rctx->body, room) != CT_OK) return MHD_NO;
        bool fits = kept && ct_buf_append(&rctx->body, upload_data, *upload_data_size) == CT_OK;
        rctx->dropped += fits ? 0 : *upload_data_size;
        *upload_data_size = 0;
        if (fits) return MHD_YES;
        /* Past its limit (a chunked body, which announces no length): refused with a 413 once the body has
         * ended, what came past the bound dropped unkept. libmicrohttpd takes an answer only before the body or after
         * all of it (a client that sent one a little too large was closed unanswered). Past BODY_DROP_MAX it is not
         * read on: the request is refused (counted and logged as a 413) and its connection closed unanswered, else
         * an endless body held its connection's thread, busy, for as long as its client kept sending. */
        rctx->too_large = true;
        ct_buf_free(&rctx->body);
        return rctx->dropped <= BODY_DROP_MAX ? MHD_YES : respond(conn, l, method, url, rctx);
    }
    return respond(conn, l, method, url, rctx);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    listener *l = cls;
    const ca_settings *cfg = &l->c->cfg;
    conn_ctx *cc = conn_of(conn);
    /* The next request's. A keep-alive connection may wait for it as long as server.idle_timeout lets it stay
     * silent, a longer one included (it costs what a silent one does): else it was cut while idle, at the
     * shorter request timeout, and a client sending its next request then lost it. */
    long wait_s = cfg->idle_timeout > cfg->request_timeout ? cfg->idle_timeout : cfg->request_timeout;
    if (cc) {
        int64_t now = ct_now_ms();
        (void)pthread_mutex_lock(&l->counts.mu);
        cc->due_ms = now + wait_s * 1000;
        cc->waiting_since_ms = now;
        (void)pthread_mutex_unlock(&l->counts.mu);
    }
    request_ctx *rctx = *req_cls;
    if (!rctx) return;
    ct_buf_free(&rctx->body);
    free(rctx);
    *req_cls = NULL;
    atomic_fetch_sub(&in_flight, 1);
}

/* libmicrohttpd's own messages (a connection refused at a limit, a failed handshake) and the listener's (a limit,
 * the reserve, the watchdog) as log lines, at most one a second of each kind with the count of its own left out
 * (and a last count of each at stop): a flood of connections must not flood the log as well, and one kind's flood
 * (the reserve's evictions) must not hide another's lines (a slow answer cut). */
typedef enum {
    LOG_LIBRARY,
    LOG_PER_ADDRESS,
    LOG_CONNECT_RATE,
    LOG_RESERVE,
    LOG_LATE_REQUEST,
    LOG_LATE_ANSWER,
    LOG_KINDS
} log_kind;
static const char *const log_kind_names[LOG_KINDS] = {"library",      "per_address", "connect_rate", "reserve",
                                                      "late_request", "late_answer"};
static pthread_mutex_t library_log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int64_t last_ms;
    long skipped;
} library_log_kinds[LOG_KINDS];

static void log_limited(log_kind kind, const char *msg)
{
    int64_t now = ct_now_ms();
    (void)pthread_mutex_lock(&library_log_mu);
    bool quiet = now - library_log_kinds[kind].last_ms < 1000;
    long left_out = library_log_kinds[kind].skipped;
    library_log_kinds[kind].skipped = quiet ? left_out + 1 : 0;
    if (!quiet) library_log_kinds[kind].last_ms = now;
    (void)pthread_mutex_unlock(&library_log_mu);
    if (!quiet)
        ct_log(CT_LOG_WARN, "http_library", "msg=%s kind=%s left_out=%ld", CT_LOGQ(msg), log_kind_names[kind],
               left_out);
}

static void library_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0) msg[0] = '\0';
#pragma GCC diagnostic pop
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    log_limited(LOG_LIBRARY, msg);
}

/* Shuts a connection down; its thread sees the end and closes it as usual (before its descriptor can be reused:
 * on_connection takes it off the list first). Closed with a reset: what an answer cut off left in the socket's
 * buffer is dropped, not sent on at the slow reader's pace. Under counts.mu. */
static void conn_cut(conn_ctx *cc)
{
    const struct linger reset = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(cc->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    (void)shutdown(cc->fd, SHUT_RDWR);
    cc->cut = true;
}

/* The connection the reserve closes: one waiting for a request (none being answered) of no station or officer,
 * whose handshake ended first (it is known to be none's), else one still in its handshake; the one
 * waiting longest of them. NULL when every connection is a station's or officer's, or busy. Under counts.mu. */
static conn_ctx *reserve_victim(const listener *l)
{
    conn_ctx *victim = NULL;
    for (conn_ctx *cc = l->conns; cc; cc = cc->next) {
        if (cc->cut || cc->kept || !cc->waiting_since_ms || cc->fd == MHD_INVALID_SOCKET) continue;
        if (!victim || (cc->shaken && !victim->shaken) ||
            (cc->shaken == victim->shaken && cc->waiting_since_ms < victim->waiting_since_ms))
            victim = cc;
    }
    return victim;
}

/* The accept policy: a client address (ca_addr_key) at server.per_ip_connections, or past its rate of new
 * connections (server.per_ip_connects_per_second, HTTPS only), has its new connection closed at once, before any
 * handshake (one that opened, handshook and closed connections in a loop, never many at once, kept the token
 * signing for it alone), logged as libmicrohttpd logs its own limits. Past server.max_connections less server.reserved_connections,
 * each connection accepted closes one idle connection of no station or officer (reserve_victim): many
 * addresses each at its limit filled the listener, stations and officers found no room. libmicrohttpd refuses at the
 * limit before it asks this policy, so the reserve is what keeps room for the next connection. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addr_len)
{
    (void)addr_len;
    listener *l = cls;
    ca_addr_key key;
    ca_addr_key_of(addr, &key);
    conn_ctx *victim = NULL;
    (void)pthread_mutex_lock(&l->counts.mu);
    conn_count *s = counts_slot(&l->counts, &key, false);
    bool room = !s || s->n < l->counts.per_address;
    bool paced = room && counts_connect_allowed(&l->counts, &key, s); /* (a connection refused costs no token) */
    if (paced && l->counts.open >= l->counts.evict_from && (victim = reserve_victim(l))) conn_cut(victim);
    (void)pthread_mutex_unlock(&l->counts.mu);
    if (!room)
        log_limited(LOG_PER_ADDRESS, "Server reached connection limit of one client address "
                                     "(server.per_ip_connections). Closing inbound connection.");
    else if (!paced)
        log_limited(LOG_CONNECT_RATE, "A client address opened new connections faster than "
                                      "server.per_ip_connects_per_second allows. Closing inbound connection.");
    if (victim)
        log_limited(LOG_RESERVE, "Listener past server.max_connections less server.reserved_connections: closing its "
                                 "oldest idle connection that is no station's or officer's.");
    return paced ? MHD_YES : MHD_NO;
}

static void library_log_flush(void)
{
    for (size_t kind = 0; kind < LOG_KINDS; kind++) {
        (void)pthread_mutex_lock(&library_log_mu);
        long left_out = library_log_kinds[kind].skipped;
        library_log_kinds[kind].skipped = 0;
        (void)pthread_mutex_unlock(&library_log_mu);
        if (left_out)
            ct_log(CT_LOG_WARN, "http_library", "msg=\"messages left out\" kind=%s left_out=%ld",
                   log_kind_names[kind], left_out);
    }
}

/* ---- the request watchdog ---- */

/* libmicrohttpd's timeout counts silence only (a TLS handshake aside, which it ends at the timeout): a client that
 * sent its headers or body a byte now and then held its connection and its thread for as long as it liked, and a
 * few addresses so held every connection of the listener. Every tick, a connection whose request is past its
 * server.request_timeout is shut down; its thread then sees the end and closes it as usual. */
#define WATCHDOG_TICK_MS 250

typedef struct {
    listener *listeners[2];
    pthread_t thread;
    bool started;
    atomic_bool stop;
} request_watchdog;

static void watchdog_sweep(listener *l, int64_t now)
{
    unsigned requests = 0, answers = 0;
    (void)pthread_mutex_lock(&l->counts.mu);
    for (conn_ctx *cc = l->conns; cc; cc = cc->next) {
        if (cc->cut || !cc->due_ms || now < cc->due_ms || cc->fd == MHD_INVALID_SOCKET) continue;
        ct_failpoint_hold("serve:cut"); /* tests: the request's last bytes arrive meanwhile (under the lock) */
        conn_cut(cc);
        if (cc->waiting_since_ms) requests++;
        else answers++;
    }
    (void)pthread_mutex_unlock(&l->counts.mu);
    for (unsigned i = 0; i < requests; i++)
        log_limited(LOG_LATE_REQUEST,
                    "A request did not arrive whole within server.request_timeout. Closing its connection.");
    for (unsigned i = 0; i < answers; i++)
        log_limited(LOG_LATE_ANSWER, "An answer was not read within its time (server.request_timeout and a second "
                                     "per 16 KiB). Closing its connection.");
}

static void *watchdog_run(void *arg)
{
    request_watchdog *w = arg;
    const struct timespec tick = {0, WATCHDOG_TICK_MS * 1000000L};
    while (!atomic_load(&w->stop)) {
        nanosleep(&tick, NULL);
        for (size_t i = 0; i < 2; i++)
            if (w->listeners[i]->counts.mu_ok) watchdog_sweep(w->listeners[i], ct_now_ms());
    }
    return NULL;
}

/* Connections each daemon may hold: server.max_connections, within the descriptors the process may open
 * (raised to the hard limit), half for each daemon, some kept for the database, the token and logs. */
static unsigned connection_limit(const ca *c)
{
    struct rlimit rl;
    rlim_t fds = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        fds = rl.rlim_cur;
    }
    rlim_t budget = fds > 256 ? (fds - 128) / 2 : 64;
    return (unsigned)((rlim_t)c->cfg.max_connections < budget ? (rlim_t)c->cfg.max_connections : budget);
}

/* Each connection's thread's stack. The deepest measured, over the integration tests (every thread's stack pages
 * counted as it ended, static TLS included): 108 KiB, 112 KiB under ASan+UBSan. 1 MiB leaves nine times that;
 * the default, RLIMIT_STACK (8 MiB), would reserve 8 MiB of address space a connection. */
#define CONNECTION_STACK ((size_t)1 << 20)

/* One daemon: the options both share, then `extra` (TLS). `*out` NULL when it cannot listen; an error when its
 * per-address table cannot be made (said as such, not as an address in use). */
static ct_err start_daemon(listener *l, unsigned flags, const struct sockaddr_storage *addr,
                           const struct MHD_OptionItem *extra, struct MHD_Daemon **out)
{
    const ca_settings *cfg = &l->c->cfg;
    unsigned connections = connection_limit(l->c);
    /* The rate bounds handshakes: the plain-HTTP listener (cameras behind one address fetching CRLs) has none. */
    long connects_per_second = l->plain ? 0 : cfg->per_ip_connects_per_second;
    CT_GUARD_RET(counts_init(&l->counts, connections, (unsigned)cfg->per_ip_connections,
                             (unsigned)cfg->reserved_connections, connects_per_second, cfg->per_ip_connects_burst));
    if (addr->ss_family == AF_INET6) { /* else libmicrohttpd makes an IPv4 socket for it */
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
        /* [::] and an IPv4-mapped address serve IPv4 clients too, seen as IPv4-mapped (ca_addr_key: IPv4 ones) */
        flags |= IN6_IS_ADDR_UNSPECIFIED(a6) || IN6_IS_ADDR_V4MAPPED(a6) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    }
    /* A thread per connection: a request waits for its own group commit and nothing else. In a pool, each
     * connection stays with the worker that accepted it, and one worker often took several of a burst (all eight
     * of the bench's, now and then): their requests then waited for each other's commits. ITC: MHD_quiesce_daemon
     * needs it in this thread mode. */
    *out = MHD_start_daemon(flags | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                                MHD_USE_ITC | MHD_USE_ERROR_LOG,
                            0, accept_policy, l, on_request, (void *)l, MHD_OPTION_EXTERNAL_LOGGER, library_log, NULL,
                            MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)cfg->idle_timeout, MHD_OPTION_CONNECTION_LIMIT, connections,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, (void *)l,
                            MHD_OPTION_THREAD_STACK_SIZE, CONNECTION_STACK,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)l,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
    return CT_OK;
}

/* The plain-HTTP daemon for /crl and /ocsp, or none (`where` empty). A failure is fatal when the address was
 * asked for on the command line, and only logged when it comes from the config: HTTPS serves the same routes. */
static ct_err start_plain(listener *l, const char *where, bool asked, struct MHD_Daemon **out)
{
    static const struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    struct sockaddr_storage addr;
    socklen_t addr_len;
    if (!*where) return CT_OK;
    CT_GUARD_RET(ct_addr_parse(where, &addr, &addr_len));
    CT_GUARD_RET(start_daemon(l, 0, &addr, none, out));
    if (*out) return CT_OK;
    CT_ENSURE_RET(!asked, ct_fail(CT_ERR_IO, "cannot listen for plain HTTP on %s (in use, or not a local address?)", where));
    ct_log(CT_LOG_ERROR, "http_listen_failed",
           "address=%s msg=\"server.http_listen: address in use or not local; /crl and /ocsp only over HTTPS\"", where);
    return CT_OK;
}

/* Stops accepting (the listening sockets are shut down: new clients are refused at once instead of waiting in
 * the backlog), then waits up to server.drain_seconds for the requests under way to be answered. The sockets
 * are closed after MHD_stop_daemon, as libmicrohttpd asks. */
static void drain(const ca *c, struct MHD_Daemon *const *daemons, MHD_socket *socks, size_t n)
{
    atomic_store(&stopping, true);
    for (size_t i = 0; i < n; i++) {
        socks[i] = daemons[i] ? MHD_quiesce_daemon(daemons[i]) : MHD_INVALID_SOCKET;
        if (socks[i] != MHD_INVALID_SOCKET) (void)shutdown(socks[i], SHUT_RDWR);
    }
    long waiting = atomic_load(&in_flight);
    ct_log(CT_LOG_INFO, "draining", "requests=%ld seconds=%ld", waiting, c->cfg.drain_seconds);
    int64_t until = ct_now_ms() + c->cfg.drain_seconds * 1000;
    const struct timespec tick = {0, 20 * 1000000L};
    while ((waiting = atomic_load(&in_flight)) > 0 && ct_now_ms() < until) nanosleep(&tick, NULL);
    if (waiting > 0) ct_log(CT_LOG_WARN, "drain_timeout", "requests=%ld msg=\"cut at server.drain_seconds\"", waiting);
}

ct_err ca_serve(ca *c, const char *listen, const char *http_listen)
{
    ct_err rc = CT_OK;
    server_tls tls = {0};
    ct_buf trust = CT_BUF_INIT;
    struct MHD_Daemon *daemons[2] = {NULL, NULL}; /* HTTPS, plain HTTP */
    MHD_socket socks[2] = {MHD_INVALID_SOCKET, MHD_INVALID_SOCKET};
    struct sockaddr_storage addr;
    socklen_t addr_len;
    sigset_t stop;
    const char *where = listen ? listen : c->cfg.listen;
    const char *plain_where = http_listen ? http_listen : c->cfg.http_listen;
    listener tls_listener = {.c = c, .plain = false}, plain_listener = {.c = c, .plain = true};
    request_watchdog watchdog = {.listeners = {&tls_listener, &plain_listener}};
    ca_folder_lock *lock = NULL;
    atomic_store(&stopping, false);
    CT_GUARD(ct_addr_parse(where, &addr, &addr_len));
    CT_GUARD(ca_serving_lock(c->cfg.dir, false, &lock)); /* no restore under a running server */
    CT_GUARD(ca_install_finished(c)); /* not the new generation beside the last one's files */
    /* Nothing is served, signed or answered (OCSP, CRLs) from a chain that entries not written by this CA's key
     * entered, nor from state tables edited around the CA. */
    db_audit_report audit;
    db_state_report state;
    int64_t t0 = ct_now_ms();
    /* One read connection per worker thread: a request's reads never queue behind another's commit. Opened first:
     * the audit chain is checked on one of them while the state tables are rebuilt on the writer. */
    CT_GUARD(db_readers_open(c->db, c->cfg.threads < DB_READERS_MAX ? (unsigned)c->cfg.threads : DB_READERS_MAX));
    ct_err state_rc = CT_OK;
    rc = ca_audit_state_verify(c, &audit, &state, &state_rc);
    if (rc == CT_OK) rc = state_rc;
    int64_t cert_files = 0;
    if (rc == CT_OK) rc = ca_certs_verify(c, &cert_files);
    /* An older copy put back: the checkpoint the CA kept outside the database says so. */
    if (rc == CT_OK) rc = ca_kept_checkpoint_start(c);
    if (rc == CT_ERR_INTEGRITY)
        ct_log(CT_LOG_ERROR, "refusing_to_serve", "reason=%s", CT_LOGQ(ct_err_detail()));
    CT_GUARD(rc);
    /* audit_ms and state_ms ran side by side (ca_audit_state_verify): the longer one is what a restart waits for */
    ct_log(CT_LOG_INFO, "audit_verified", "entries=%lld keyed_from=%lld state_rows=%lld ms=%lld audit_ms=%lld state_ms=%lld",
           (long long)audit.entries, (long long)audit.keyed_from, (long long)state.rows, (long long)(ct_now_ms() - t0),
           (long long)audit.ms, (long long)state.ms);
    if (state.warning[0]) ct_log(CT_LOG_WARN, "state_warning", "msg=%s", CT_LOGQ(state.warning));
    if (ca_roots_online(c))
        ct_log(CT_LOG_WARN, "roots_online", "dir=%s msg=\"%s\"", CT_LOGQ(c->cfg.dir), CA_ROOTS_ONLINE_MSG);
    CT_GUARD(ca_revoke_compromised_keys(c)); /* on a checked database, before the first CRL and OCSP answer */
    /* The next batch of issuances is written while the last one's commit reaches the disk. */
    CT_GUARD(db_pipeline_commits(c->db));
    CT_GUARD(tls_setup(&tls, c));
    CT_GUARD(trust_pem(c, &trust));
    CT_GUARD(ca_lease_start(c)); /* first: whether this node signs the CRLs and tree heads below */
    CT_GUARD(ca_revocation_start(c));
    CT_GUARD(ca_log_start(c));
    CT_GUARD(ca_refusals_start(c));
    CT_GUARD(ca_lease_run(c));
    /* Block the stop signals before the server threads start, so that they inherit the mask and only
     * sigwait below sees them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    CT_ENSURE_MSG(pthread_sigmask(SIG_BLOCK, &stop, NULL) == 0, CT_ERR_INTERNAL, "cannot block signals");
    const struct MHD_OptionItem tls_options[] = {
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)tls_retrieve_cert},
        {MHD_OPTION_HTTPS_MEM_TRUST, 0, trust.data},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
        {MHD_OPTION_END, 0, NULL},
    };
    the_tls_listener = &tls_listener;
    CT_GUARD(start_daemon(&tls_listener, MHD_USE_TLS, &addr, tls_options, &daemons[0]));
    CT_ENSURE_MSG(daemons[0], CT_ERR_IO, "cannot listen on %s (in use, or not a local address?)", where);
    CT_GUARD(start_plain(&plain_listener, plain_where, http_listen != NULL, &daemons[1]));
    CT_ENSURE_MSG(pthread_create(&watchdog.thread, NULL, watchdog_run, &watchdog) == 0, CT_ERR_INTERNAL,
                  "cannot start the request watchdog");
    watchdog.started = true;
    ct_log(CT_LOG_INFO, "listening", "url=https://%s/.well-known/est/ http=%s%s readers=%ld", where,
           daemons[1] ? "http://" : "none", daemons[1] ? plain_where : "", c->cfg.threads);
    int sig = 0;
    sigwait(&stop, &sig);
    ct_log(CT_LOG_INFO, "stopping", "signal=%d", sig);
    drain(c, daemons, socks, 2);
cleanup:
    for (size_t i = 0; i < 2; i++) {
        if (daemons[i]) MHD_stop_daemon(daemons[i]); /* joins the worker threads */
        if (socks[i] != MHD_INVALID_SOCKET) close(socks[i]);
    }
    if (watchdog.started) { /* after the daemons: it cuts requests that trickle in while they drain */
        atomic_store(&watchdog.stop, true);
        (void)pthread_join(watchdog.thread, NULL);
    }
    the_tls_listener = NULL;
    counts_free(&tls_listener.counts);
    counts_free(&plain_listener.counts);
    library_log_flush();
    ca_lease_stop(c); /* its thread wakes the log and revocation below: stopped first, the lease still held */
    ca_log_stop(c); /* after the daemons: their issuances get their tree head (if this node signs) */
    ca_refusals_stop(c); /* after the daemons: every refusal they counted is written */
    ca_lease_free(c); /* let go: another node signs at once */
    ca_revocation_stop(c);
    tls_teardown(&tls);
    ct_buf_free(&trust);
    ca_folder_unlock(lock);
    return rc;
}
