/* http: the one HTTP/1.1 client of camtrust's programs that talk to the CA (the station's EST client, the log
 * witness). HTTPS is wolfSSL TLS 1.3/1.2 with the server verified against pinned roots only (ops-root.pem) and by
 * the host name of the URL, optionally with a client certificate whose key stays in a token (mutual TLS); plain
 * HTTP only where the caller allows it (what it fetches proves itself). One keep-alive connection per client,
 * re-opened once when the server closed it in between. Every length read from the network is bounded.
 * And the log client's part both witnesses share: does the CA's log extend a kept checkpoint? */
#ifndef CAMTRUST_HTTP_H
#define CAMTRUST_HTTP_H

#include "../core/core.h"
#include "../core/merkle.h"
#include "../note/note.h"

#define CT_HTTP_MAX_HEADER 8192
#define CT_HTTP_MAX_BODY (256 * 1024)

typedef struct ct_http_client ct_http_client;

typedef struct {
    const char *url;            /* "https://host[:port][/]", or "http://..." when allow_plain */
    bool allow_plain;
    const char *trust_pem_path; /* https: the only roots the server may chain to (ops-root.pem); required */
    const char *chain_pem_path; /* mutual TLS: the client's chain (leaf + issuing CA); NULL: none */
    int dev_id;                 /* ... its key in a token: hsm_wolf_dev_id and CKA_ID */
    const uint8_t *key_id;
    size_t key_id_len;
    int timeout_ms;             /* a whole request: connect, handshake, request and answer, and the one retry on a
                                 * fresh connection when a kept one was closed (<= 0: 10 s) */
    const char *user_agent;     /* NULL: "camtrust" */
} ct_http_config;

/* No connection yet: the first request opens one. CT_ERR_USAGE for a bad URL, CT_ERR_CONFIG for unusable files;
 * later CT_ERR_IO "CA unreachable at URL: ..." when no connection can be made. */
CT_MUST_CHECK ct_err ct_http_client_new(const ct_http_config *cfg, ct_http_client **out);
void ct_http_client_free(ct_http_client *c);

typedef struct {
    int status;
    const uint8_t *body; /* inside the client: valid until its next request */
    size_t body_len;
} ct_http_answer;

/* One request (path from the server's root, query included); `headers` NULL or whole "Name: value\r\n" lines;
 * with a body, Content-Length is added. Any status is an answer: see ct_http_refusal. */
CT_MUST_CHECK ct_err ct_http_request(ct_http_client *c, const char *method, const char *path, const char *headers,
                                     const ct_buf *body, ct_http_answer *ans);
/* The ct_err of a refused request (404: CT_ERR_NOT_FOUND, ...) with "the CA refused <what> (HTTP N): <its reason>". */
CT_MUST_CHECK ct_err ct_http_refusal(const ct_http_answer *ans, const char *what);
/* GET `path`: the body of a 200 answer (at most `max` bytes) into `body` (allocated, one spare byte, NUL there);
 * any other status is ct_http_refusal(what). */
CT_MUST_CHECK ct_err ct_http_get(ct_http_client *c, const char *path, const char *what, size_t max, ct_buf *body);
/* POST `body` (text/plain) to `path`: as ct_http_get. */
CT_MUST_CHECK ct_err ct_http_post_text(ct_http_client *c, const char *path, const ct_buf *body, const char *what,
                                       size_t max, ct_buf *answer);

/* ---- the issuance log, as a witness checks it (http_log.c) ---- */

/* The base64 hashes of the JSON array `name` (RFC 9162 paths as the CA answers them), at most
 * CT_MERKLE_MAX_PATH, each 32 bytes; `body` must have one spare byte (ct_http_get's do). */
CT_MUST_CHECK ct_err ct_http_json_hashes(ct_buf *body, const char *name, ct_merkle_hash out[CT_MERKLE_MAX_PATH],
                                         size_t *n);

typedef struct {
    ct_merkle_hash path[CT_MERKLE_MAX_PATH];
    size_t n;
    bool given; /* the CA answered a well-formed consistency proof */
    bool audit; /* ct_http_log_extends refused the audit chain (not the tree): path is the audit tree's proof */
} ct_http_proof;

/* Whether the CA proves the tree of `a` a prefix of the tree of `b` (a->size <= b->size): *holds (same size: same
 * root; else the RFC 9162 proof from /log/proof/consistency, kept in *proof when not NULL). A proof the CA refuses
 * (a size past its log) or sends malformed holds nothing; only an unreachable or busy CA (an answer 5xx: asked
 * again later, never taken for a fork) is an error. */
CT_MUST_CHECK ct_err ct_http_log_consistent(ct_http_client *c, const ct_checkpoint *a, const ct_checkpoint *b,
                                            bool *holds, ct_http_proof *proof);
/* Whether the CA proves the audit chain `a` binds a prefix of the one `b` binds (a->audit_entries <=
 * b->audit_entries): the RFC 9162 proof of the audit tree (camtrust-audit-root) from
 * /log/audit/proof/consistency. *holds is true when `a` binds no audit root (signed before the audit tree: nothing
 * to check against), false when `b` binds none, or fewer entries, or the CA gives no proof that verifies. */
CT_MUST_CHECK ct_err ct_http_log_audit_consistent(ct_http_client *c, const ct_checkpoint *a, const ct_checkpoint *b,
                                                  bool *holds);
/* Does the CA's log, whose current checkpoint is `cur`, extend the kept checkpoint `kept` (`kept_name` names it
 * in the reason)? ct_http_log_consistent, never smaller, nor fewer audit entries, one hash per audit length, and
 * the audit chain extending the kept one (ct_http_log_audit_consistent). CT_ERR_INTEGRITY with a one-line reason
 * when it does not ("the CA's log forked: ...", "the CA's audit chain forked: ..."); *proof (unless NULL): the
 * proof the CA gave, if any, of the side refused: the issuance log's, or (proof->audit) the audit tree's. */
CT_MUST_CHECK ct_err ct_http_log_extends(ct_http_client *c, const char *kept_name, const ct_checkpoint *kept,
                                         const ct_checkpoint *cur, ct_http_proof *proof);

#endif
