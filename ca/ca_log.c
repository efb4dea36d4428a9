/* The issuance log seen from the CA: signed tree heads (signed inside the token by the "log-signer" key, which
 * the operations issuing CA certifies in log.pem) and, beside each, a C2SP checkpoint (signed note by the Ed25519
 * "log-note" key; verifier key in log.vkey) binding the tree and the audit chain's head, for others to keep; the
 * public routes that serve them with inclusion and consistency proofs, the proof file a device keeps, and the
 * log's part of `audit verify` (with kept checkpoints: does this database extend them?).
 *
 * While serving, a thread signs a tree head shortly (log.sth_delay_ms) after issuances, one per burst rather than
 * one per certificate, and a last one at shutdown; `camtrust-ca log sth` signs one on demand. A checkpoint also
 * follows any other audited change (checkpoint_due): the signer node looks each lease tick, and at start for what
 * commands changed while no server ran (they sign nothing: only a server's checkpoints reach witnesses and stations,
 * and it signs before it serves). The tree's right
 * edge (ct_merkle_frontier) is kept, so a tree head costs O(new leaves + log n). Proofs come from a cache of the
 * roots of complete 1024-leaf chunks (ct_merkle_cache): O(1024 + n / 1024) leaf reads and hashes per proof. The audit
 * tree (leaves: the audit entries' hashes; its root in each checkpoint, its proofs at /log/audit/proof/consistency)
 * has a cache of its own, so a checkpoint's audit root costs the same. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca_priv.h"

#define LEAF_CHUNK 4096
#define PROOF_JSON_MAX (512 + CT_MERKLE_MAX_PATH * 50)

#define PROOF_CHUNK 1024 /* leaves per kept root: 32 bytes of memory per 1024 certificates */

/* A chunk cache with the last leaf hash its chunk roots were computed from: rows rolled back or rewritten under a
 * running node (an older copy put back, rows deleted and appended again) must not leave kept roots of the rows that
 * were, mixed into what the node signs and proves from the rows that are. Only that edge is read again: rows edited
 * in place inside a kept chunk, its last one left alone, keep the honest root (what the node signs stays the
 * history it had; the edited rows' MACs fail `audit verify` and the next start). */
typedef struct {
    ct_merkle_cache tree;
    ct_merkle_hash edge; /* leaf n_roots * chunk - 1, as read when its chunk's root was computed */
    const char *name;    /* in the line that says the kept roots were dropped */
} checked_cache;

struct ca_proofs {
    pthread_mutex_t mu;
    checked_cache cache;
    checked_cache audit; /* the audit tree's (checkpoints' camtrust-audit-root; leaves: the entries' hashes) */
};

ct_err ca_proofs_open(ca *c)
{
    ca_proofs *p = calloc(1, sizeof *p);
    CT_ENSURE_RET(p, CT_ERR_NOMEM);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return ct_fail(CT_ERR_INTERNAL, "cannot create the proof cache lock");
    }
    p->cache.name = "log";
    p->audit.name = "audit";
    ct_err rc = ct_merkle_cache_init(&p->cache.tree, PROOF_CHUNK, db_log_fetch, c->db);
    if (rc == CT_OK) {
        rc = ct_merkle_cache_init(&p->audit.tree, PROOF_CHUNK, db_log_audit_fetch, c->db);
        if (rc != CT_OK) ct_merkle_cache_free(&p->cache.tree);
    }
    if (rc != CT_OK) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return rc;
    }
    c->proofs = p;
    return CT_OK;
}

void ca_proofs_close(ca *c)
{
    if (!c->proofs) return;
    ct_merkle_cache_free(&c->proofs->cache.tree);
    ct_merkle_cache_free(&c->proofs->audit.tree);
    pthread_mutex_destroy(&c->proofs->mu);
    free(c->proofs);
    c->proofs = NULL;
}

/* Whether `now` (leaf `at` as just read; absent unless `present`) still is `edge`, the last leaf kept hashes were
 * computed from; a warning line naming `tree` when not. */
static bool edge_same(bool present, const uint8_t *now, uint64_t at, const uint8_t edge[CT_MERKLE_HASH_LEN],
                      const char *tree)
{
    bool holds = present && memcmp(now, edge, CT_MERKLE_HASH_LEN) == 0;
    bool audit = strcmp(tree, "audit") == 0; /* named as everywhere else: audit entry N is leaf N - 1 */
    if (!holds)
        ct_log(CT_LOG_WARN, "tree_cache_dropped", "tree=%s %s=%llu reason=%s", tree, audit ? "entry" : "leaf",
               (unsigned long long)at + audit, present ? "changed" : "gone");
    return holds;
}

/* *holds: whether leaf `at` (read again, one leaf) still is `edge` (edge_same). */
static ct_err edge_holds(ct_merkle_fetch_fn fetch, void *arg, uint64_t at, const uint8_t edge[CT_MERKLE_HASH_LEN],
                         const char *tree, bool *holds)
{
    ct_merkle_hash now;
    uint64_t got = 1;
    CT_GUARD_RET(fetch(arg, at, 1, &now, &got));
    *holds = edge_same(got == 1, now, at, edge, tree);
    return CT_OK;
}

void ca_failpoint_step(const char *name)
{
    if (!ct_failpoint_hit(name)) return;
    ct_failpoint_hold(name);
    const char *release = getenv("CAMTRUST_FAILPOINT_RELEASE");
    if (release) (void)unlink(release);
}

/* Leaves [from - 1, from + n) into `buf` (room for n + 1) in one fetch, so one query, one snapshot: *got of them
 * past the first, at buf + 1, and *held whether that first one, leaf from - 1, is still `edge`, the last leaf kept
 * hashes were computed from (from 0 there is none: it holds). Read apart, rows rolled back or rewritten between the
 * two reads had the hashes of the rows that were taken with the new rows after them. */
static ct_err read_past_edge(ct_merkle_fetch_fn fetch, void *arg, uint64_t from, uint64_t n, const uint8_t *edge,
                             const char *tree, ct_merkle_hash *buf, uint64_t *got, bool *held)
{
    char point[32];
    if (ct_snprintf(point, sizeof point, "%s:read-past-edge", tree) == CT_OK)
        ca_failpoint_step(point); /* tests: the rows are rewritten between two reads of one request or signing */
    uint64_t before = from > 0, read = n + before;
    CT_GUARD_RET(fetch(arg, from - before, read, buf + 1 - before, &read));
    *held = !before || edge_same(read > 0, buf[0], from - 1, edge, tree);
    *got = read > before ? read - before : 0;
    return CT_OK;
}

/* A chunk cache's fetch as its growth reads: each chunk read with the kept edge (read_past_edge) and taken only while
 * that leaf is still the edge; else the cache kept the roots of the rows that were with a chunk of the new rows after
 * them, its edge moved onto the new rows (never seen changed again): proofs and tiles of a tree no database held. */
typedef struct {
    ct_merkle_fetch_fn fetch; /* the cache's own */
    void *arg;
    const uint8_t *edge; /* leaf from - 1, as the kept roots read it */
    const char *tree;
    ct_merkle_hash *read; /* the edge and one chunk */
    bool changed;         /* the edge was no longer the database's: nothing taken */
} anchored_read;

static ct_err anchored_fetch(void *arg, uint64_t from, uint64_t n, ct_merkle_hash *out, uint64_t *got)
{
    anchored_read *a = arg;
    bool held = true;
    CT_GUARD_RET(read_past_edge(a->fetch, a->arg, from, n, a->edge, a->tree, a->read, got, &held));
    a->changed = !held;
    CT_ENSURE_RET(held, ct_fail(CT_ERR_UNAVAILABLE, "the rows of the %s tree changed while they were read: ask again",
                                a->tree));
    memcpy(out, a->read + 1, *got * sizeof *out);
    return CT_OK;
}

/* `t` grown to the roots of the first n leaves' complete chunks through `a`, one chunk at a time, its edge noted from
 * the very leaves its root was just computed from: a growth that stops part way (a row missing) keeps the roots before
 * it, instead of every request reading them all again. Grown through a copy of `t` reading with `a`: t's own fetch
 * stays as it is for the tiles' level 0, which reads with it without the lock. */
static ct_err grow_anchored(ct_merkle_cache *t, uint8_t edge[CT_MERKLE_HASH_LEN], uint64_t n, anchored_read *a)
{
    ct_err rc = CT_OK;
    ct_merkle_cache through = *t;
    const ct_merkle_hash *roots = NULL;
    through.fetch = anchored_fetch;
    through.arg = a;
    while (rc == CT_OK && through.n_roots < n / t->chunk) {
        rc = ct_merkle_cache_chunk_roots(&through, (through.n_roots + 1) * t->chunk, &roots);
        if (rc == CT_OK) memcpy(edge, t->leaves[t->chunk - 1], CT_MERKLE_HASH_LEN);
    }
    t->roots = through.roots; /* moved when they grew */
    t->cap = through.cap;
    t->n_roots = through.n_roots;
    return rc;
}

ct_err ca_chunks_current(ct_merkle_cache *t, uint8_t edge[CT_MERKLE_HASH_LEN], uint64_t n, const char *tree,
                         bool *dropped)
{
    ct_err rc = CT_OK;
    bool holds = true;
    char point[32];
    anchored_read a = {.fetch = t->fetch, .arg = t->arg, .edge = edge, .tree = tree};
    if (dropped) *dropped = false;
    if (t->n_roots > 0) CT_GUARD_RET(edge_holds(t->fetch, t->arg, t->n_roots * t->chunk - 1, edge, tree, &holds));
    if (!holds) t->n_roots = 0;
    if (dropped) *dropped = !holds;
    if (t->n_roots >= n / t->chunk) return CT_OK;
    CT_GUARD(ct_snprintf(point, sizeof point, "%s:chunks-read", tree));
    ct_failpoint_hold(point); /* tests: the rows are rewritten meanwhile */
    a.read = malloc((t->chunk + 1) * sizeof *a.read);
    CT_ENSURE(a.read, CT_ERR_NOMEM);
    /* Built again from the rows at most twice a call: rows changing under every read are a 503, asked again. */
    for (int pass = 0; pass < 3; pass++) {
        a.changed = false;
        rc = grow_anchored(t, edge, n, &a);
        if (!a.changed) break;
        t->n_roots = 0;
        if (dropped) *dropped = true;
    }
cleanup:
    free(a.read);
    return rc;
}

static ct_err cache_current(checked_cache *cc, uint64_t n)
{
    return ca_chunks_current(&cc->tree, cc->edge, n, cc->name, NULL);
}

/* The root of the first n leaves of `cc` (c->proofs' log or audit tree), under the caches' lock. */
static ct_err cached_root(ca *c, checked_cache *cc, uint64_t n, uint8_t out[CT_MERKLE_HASH_LEN])
{
    CT_ENSURE_RET(pthread_mutex_lock(&c->proofs->mu) == 0, CT_ERR_INTERNAL);
    ct_err rc = cache_current(cc, n);
    if (rc == CT_OK) rc = ct_merkle_cache_root(&cc->tree, n, out);
    pthread_mutex_unlock(&c->proofs->mu);
    return rc;
}

/* PROOF(m, D[n]) of `cc`, under the caches' lock. */
static ct_err cached_consistency(ca *c, checked_cache *cc, uint64_t m, uint64_t n,
                                 ct_merkle_hash proof[CT_MERKLE_MAX_PATH], size_t *len)
{
    CT_ENSURE_RET(pthread_mutex_lock(&c->proofs->mu) == 0, CT_ERR_INTERNAL);
    ct_err rc = cache_current(cc, n);
    if (rc == CT_OK) rc = ct_merkle_cache_consistency_proof(&cc->tree, m, n, proof, len);
    pthread_mutex_unlock(&c->proofs->mu);
    return rc;
}

/* The tree the signing path signs: its right edge, and the last leaf pushed into it (as checked_cache's edge: rows
 * rolled back and grown again under a running node must not be signed as the kept leaves plus the new ones, a tree
 * no database ever held). */
typedef struct {
    ct_merkle_frontier f;
    ct_merkle_hash edge; /* leaf f.size - 1 */
    uint64_t signed_size; /* the last tree this node signed (tree head or checkpoint; 0: none yet): what it signs
                           * next must extend it */
    ct_merkle_hash signed_root;
    char forked[200]; /* why the tree is not the one signed (still_signed) or could not be built (rows changing under
                       * its reads), until it is built again (log.fork_recheck_s later); "" if neither */
    int64_t forked_ms; /* when that was found */
} signing_tree;

/* A refusal to sign that lasts (a forked tree, a rolled-back database: asked again each lease tick, five times a
 * second with node.lease_ms 1000) is logged when it first happens, when its reason changes, and then this often; its
 * end in one line (log_signing_resumed). */
#define REFUSAL_REPEAT_MS (60 * 1000)

struct ca_log {
    pthread_mutex_t mu; /* dirty, stop; and `tree`, `refused`, `refused_ms`, which only the signing path touches */
    pthread_cond_t cv;
    pthread_t thread;
    bool mu_ok, cv_ok, thread_ok;
    bool dirty, stop;
    signing_tree tree;
    char refused[CT_ERR_DETAIL_MAX]; /* the last refusal logged; "" once a signing passed */
    int64_t refused_ms;
};

static ct_err need_log_key(ca *c)
{
    CT_ENSURE_RET(c->signers[CA_KEY_LOG].key,
                  ct_fail(CT_ERR_CONFIG, "%s has no %s (made before the issuance log): certificates are logged, but no "
                                         "tree head can be signed", c->cfg.dir, ca_key_cert_file[CA_KEY_LOG]));
    return CT_OK;
}

static uint64_t now_ms(void) { return (uint64_t)ct_wall_ms(); }

/* A tree signed before, which what is signed next must extend; `what` names it in the refusal. */
typedef struct {
    uint64_t size;
    const uint8_t *root;
    const char *what;
} signed_tree;

/* Whether `tree`, when of the size of `s`, is that tree: the tree itself is compared, not the proof cache, whose roots
 * kept below its own edge stay those of rows since rewritten there while the tree was built again from them. A fork is
 * refused (503) and remembered (tree->forked) until log.fork_recheck_s has passed (catch_up): each lease tick meanwhile
 * reads nothing, whatever the rows do. */
static ct_err still_signed(signing_tree *tree, const signed_tree *s)
{
    uint8_t now[CT_MERKLE_HASH_LEN];
    if (s->size == 0 || tree->f.size != s->size) return CT_OK;
    CT_GUARD_RET(ct_merkle_frontier_root(&tree->f, now));
    if (memcmp(now, s->root, sizeof now) == 0) return CT_OK;
    CT_GUARD_RET(ct_snprintf(tree->forked, sizeof tree->forked, "the log's first %llu leaves are not those of %s "
                             "(rolled back or rewritten): nothing signed over them; run camtrust-ca audit verify",
                             (unsigned long long)s->size, s->what));
    tree->forked_ms = ct_now_ms();
    return ct_fail(CT_ERR_UNAVAILABLE, "%s", tree->forked);
}

/* The tree the token has just signed (a tree head or a checkpoint): what this node signs next must extend it. */
static void signed_note(signing_tree *tree, uint64_t size, const uint8_t root[CT_MERKLE_HASH_LEN])
{
    tree->signed_size = size;
    memcpy(tree->signed_root, root, sizeof tree->signed_root);
}

/* Pushes the leaves past `tree`'s last one into it, each read with that last leaf itself (read_past_edge): else a
 * tree of the leaves that were with new ones after them, which no database held, was signed. *changed when the last
 * leaf is no longer the database's (nothing pushed then). `chunk`: room for LEAF_CHUNK + 1. */
static ct_err grow(ca *c, signing_tree *tree, const signed_tree heads[2], ct_merkle_hash *chunk, bool *changed)
{
    bool held = true;
    *changed = false;
    for (uint64_t got = LEAF_CHUNK; got == LEAF_CHUNK;) {
        CT_GUARD_RET(read_past_edge(db_log_fetch, c->db, tree->f.size, LEAF_CHUNK, tree->edge, "signing", chunk, &got,
                                    &held));
        *changed = !held;
        if (*changed) return CT_OK;
        for (uint64_t i = 1; i <= got; i++) {
            CT_GUARD_RET(ct_merkle_frontier_push(&tree->f, chunk[i]));
            memcpy(tree->edge, chunk[i], sizeof tree->edge);
            for (size_t k = 0; k < 2; k++) CT_GUARD_RET(still_signed(tree, &heads[k]));
        }
    }
    return CT_OK;
}

/* Brings `tree` up to the log's current size: built again from the rows when its last leaf is no longer theirs. It
 * must pass through the tree it last signed and `last` (the newest tree head recorded, when given) unchanged: rows
 * rolled back past the checkpoint kept in the folder (none recorded since) or rewritten below the proof cache's edge
 * would otherwise have a tree signed that forks one signed before. */
static ct_err catch_up(ca *c, signing_tree *tree, const db_tree_head *last)
{
    ct_err rc = CT_OK;
    bool changed = false;
    const signed_tree heads[] = {
        {last ? last->head.tree_size : 0, last ? last->head.root : NULL, "the newest tree head recorded"},
        {tree->signed_size, tree->signed_root, "the last tree this node signed"},
    };
    ct_merkle_hash *chunk = NULL;
    if (tree->forked[0]) {
        /* Refused, nothing read, until log.fork_recheck_s has passed since it was built from the rows; then built again
         * in full: rows put right in place (an operator restoring them) are signed again. Not sooner when its last leaf
         * changes: someone who writes the database rewrote that one leaf at each lease tick, and each tick read and
         * hashed the whole log again. */
        CT_ENSURE_MSG(ct_now_ms() - tree->forked_ms >= c->cfg.log_fork_recheck_s * 1000, CT_ERR_UNAVAILABLE, "%s",
                      tree->forked);
        ct_merkle_frontier_init(&tree->f);
        tree->forked[0] = '\0';
    }
    for (size_t k = 0; k < 2; k++) CT_GUARD(still_signed(tree, &heads[k]));
    chunk = malloc((LEAF_CHUNK + 1) * sizeof *chunk); /* not for a tick that refuses above, reading nothing */
    CT_ENSURE(chunk, CT_ERR_NOMEM);
    ct_failpoint_hold("log:signing-read"); /* tests: the rows are rewritten meanwhile */
    /* Built again at most once a call. Rows changing under that build too are refused as a fork is, built again only
     * log.fork_recheck_s later: left to the next tick, someone who writes the database rewriting leaves under the
     * reads had the whole log read and hashed again at every tick. */
    for (int pass = 0; pass < 2; pass++) {
        CT_GUARD(grow(c, tree, heads, chunk, &changed));
        if (!changed) break;
        ct_merkle_frontier_init(&tree->f);
    }
    if (changed) {
        CT_GUARD(ct_strlcpy(tree->forked, sizeof tree->forked, "the log's rows changed while they were read: nothing "
                            "signed over them; read again in full log.fork_recheck_s later"));
        tree->forked_ms = ct_now_ms();
    }
    CT_ENSURE_MSG(!changed, CT_ERR_UNAVAILABLE, "%s", tree->forked);
    for (size_t k = 0; k < 2; k++)
        CT_ENSURE_MSG(tree->f.size >= heads[k].size, CT_ERR_UNAVAILABLE, "the log has %llu of the %llu leaves of %s "
                      "(rolled back): nothing signed over it; run camtrust-ca audit verify",
                      (unsigned long long)tree->f.size, (unsigned long long)heads[k].size, heads[k].what);
cleanup:
    free(chunk);
    return rc;
}

static ct_err not_rolled_back(ca *c);

/* Signs and records a tree head of the whole log. Unless `always`, only when the log grew past the newest one. Never
 * over a rolled-back database, as no checkpoint is: a tree head of the rows a copy put back holds, grown by other
 * certificates, is one the token signs beside an earlier one it does not extend. */
static ct_err sign_tree_head(ca *c, const char *actor, signing_tree *tree, bool always, db_tree_head *out)
{
    db_tree_head last = {0};
    CT_GUARD_RET(need_log_key(c));
    ct_err rc = db_log_tree_head_latest(c->db, &last);
    CT_ENSURE_RET(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    bool have_last = rc == CT_OK;
    CT_GUARD_RET(catch_up(c, tree, have_last ? &last : NULL));
    if (have_last && !always && last.head.tree_size >= tree->f.size) {
        if (out) *out = last;
        return CT_OK;
    }
    CT_GUARD_RET(not_rolled_back(c));
    ct_tree_head h = {.tree_size = tree->f.size, .timestamp_ms = now_ms()};
    if (have_last && h.timestamp_ms < last.head.timestamp_ms) h.timestamp_ms = last.head.timestamp_ms; /* clock stepped back */
    CT_GUARD_RET(ct_merkle_frontier_root(&tree->f, h.root));
    CT_GUARD_RET(pki_tree_head_sign(c->signers[CA_KEY_LOG].key, &h));
    int64_t id = 0;
    signed_note(tree, h.tree_size, h.root);
    CT_GUARD_RET(db_log_tree_head_add(c->db, &h, actor, &id));
    if (out) *out = (db_tree_head){.id = id, .head = h};
    return CT_OK;
}

/* ---- checkpoints: C2SP signed notes by the Ed25519 key in the token ---- */

#define NOTE_KEY_LABEL "log-note"
static const uint8_t k_note_key_id[] = {0xca, 0x20};

ct_err ca_note_sign_cb(void *arg, const uint8_t *msg, size_t len, uint8_t sig[CT_NOTE_SIG_LEN])
{
    return hsm_eddsa_sign(arg, msg, len, sig);
}

/* DIR/log.vkey must hold this key's verifier key; written when absent. */
static ct_err vkey_file_match(ca *c, const char *path, const char *vkey)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT;
    if (!ct_file_exists(path)) {
        char line[CT_NOTE_VKEY_MAX + 2];
        CT_GUARD(ct_snprintf(line, sizeof line, "%s\n", vkey));
        CT_GUARD(ct_file_write_atomic(path, line, strlen(line), 0644));
        ct_log(CT_LOG_INFO, "log_vkey_written", "path=%s vkey=%s", CT_LOGQ(path), CT_LOGQ(vkey));
        goto cleanup;
    }
    CT_GUARD(ct_file_read(path, CT_NOTE_VKEY_MAX + 2, &file));
    size_t n = file.len && file.data[file.len - 1] == '\n' ? file.len - 1 : file.len;
    CT_ENSURE_MSG(n == strlen(vkey) && memcmp(file.data, vkey, n) == 0, CT_ERR_CONFIG,
                  "%s is not the verifier key of %s under origin %s (was log.origin changed?)", path,
                  c->cfg.note_key_uri, c->cfg.log_origin);
cleanup:
    ct_buf_free(&file);
    return rc;
}

ct_err ca_log_note_key_open(ca *c)
{
    ct_err rc = CT_OK;
    char path[CA_PATH_MAX], vkey[CT_NOTE_VKEY_MAX];
    bool generated = false;
    CT_GUARD(ct_path_join(path, sizeof path, c->cfg.dir, CA_LOG_VKEY_FILE));
    rc = hsm_eddsa_find(c->hsm, c->cfg.note_key_uri, &c->note_key);
    if (rc == CT_ERR_HSM_NO_KEY && strcmp(c->cfg.note_key_uri, "pkcs11:object=" NOTE_KEY_LABEL ";type=private") == 0) {
        /* A new CA, or one made before checkpoints: its key now. Never a second one behind a kept log.vkey. */
        CT_ENSURE_MSG(!ct_file_exists(path), CT_ERR_CONFIG,
                      "the checkpoint key of %s is not in the token: restore the token (a new key would disown every "
                      "checkpoint kept)", path);
        rc = hsm_eddsa_generate(c->hsm, NOTE_KEY_LABEL, k_note_key_id, sizeof k_note_key_id, &c->note_key);
        generated = rc == CT_OK;
    }
    CT_GUARD(rc);
    CT_GUARD(ct_note_verifier_make(c->cfg.log_origin, hsm_eddsa_public(c->note_key), &c->note_vkey));
    CT_GUARD(ct_note_verifier_format(&c->note_vkey, vkey, sizeof vkey));
    CT_GUARD(vkey_file_match(c, path, vkey));
    if (generated && c->db) /* an older folder's new key (init audits itself as ca.init) */
        CT_GUARD(db_audit_append(c->db, "ca", "log.note_key", CA_LOG_VKEY_FILE, "ok", vkey));
cleanup:
    return rc;
}

/* Never a checkpoint over a rolled-back database: refused (503), not a finding of a check, said in one line. */
static ct_err not_rolled_back(ca *c)
{
    ct_err rc = ca_kept_checkpoint_check(c, NULL, NULL);
    if (rc != CT_ERR_INTEGRITY) return rc;
    char why[256];
    CT_GUARD_RET(ct_strlcpy(why, sizeof why, ct_err_detail()));
    return ct_fail(CT_ERR_UNAVAILABLE, "%s", why);
}

/* Whether the newest checkpoint leaves something out: the log grew past it, or the audit chain holds a change it
 * does not bind (a revocation, a station or officer disabled, an order closed, a signer taken over...): without a
 * checkpoint over it, whoever keeps checkpoints could not see that change undone by an older copy put back. */
static ct_err checkpoint_due(ca *c, const signing_tree *tree, uint64_t last_size, bool *due)
{
    *due = last_size < tree->f.size;
    return *due ? CT_OK : db_log_audit_uncovered(c->db, due);
}

/* Signs and records a checkpoint of the whole log, binding the audit chain's head and the time. Unless `always`,
 * only when the newest one leaves something out (checkpoint_due). */
static ct_err sign_checkpoint(ca *c, const char *actor, signing_tree *tree, bool always)
{
    ct_err rc = CT_OK;
    ct_buf text = CT_BUF_INIT, note = CT_BUF_INIT, last = CT_BUF_INIT;
    uint64_t last_size = 0;
    const char *s = NULL;
    CT_ENSURE_MSG(c->note_key, CT_ERR_CONFIG, "no checkpoint key");
    rc = db_log_checkpoint_latest(c->db, NULL, &last_size, &last);
    CT_ENSURE(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    bool have_last = rc == CT_OK;
    rc = CT_OK;
    CT_GUARD(catch_up(c, tree, NULL));
    if (have_last && !always) {
        bool due = false;
        CT_GUARD(checkpoint_due(c, tree, last_size, &due));
        if (!due) goto cleanup;
    }
    CT_GUARD(not_rolled_back(c));
    ct_checkpoint cp = {.size = tree->f.size, .has_audit = true, .has_audit_root = true, .has_time = true,
                        .time_ms = now_ms()};
    CT_GUARD(ct_strlcpy(cp.origin, sizeof cp.origin, c->note_vkey.name));
    CT_GUARD(ct_merkle_frontier_root(&tree->f, cp.root));
    CT_GUARD(db_log_audit_head(c->db, &cp.audit_entries, cp.audit_hash));
    /* Entries are never changed once written: a root of exactly that many, whatever was appended since. */
    CT_GUARD(cached_root(c, &c->proofs->audit, cp.audit_entries, cp.audit_root));
    CT_GUARD(ct_buf_alloc(&text, CT_CHECKPOINT_TEXT_MAX));
    CT_GUARD(ct_checkpoint_format(&cp, &text));
    CT_GUARD(ct_note_sign(text.data, text.len, &c->note_vkey, ca_note_sign_cb, c->note_key, &note));
    signed_note(tree, cp.size, cp.root);
    ct_checkpoint back; /* what the token signed is checked as any verifier will, before it is kept or served */
    CT_GUARD(ct_checkpoint_open(note.data, note.len, &c->note_vkey, &back));
    CT_GUARD(ct_buf_cstr(&note, &s));
    CT_GUARD(db_log_checkpoint_add(c->db, cp.size, cp.audit_entries, s, actor, NULL));
    CT_GUARD(ca_kept_checkpoint_write(c, s)); /* outside the database: what a copy put back is compared with */
cleanup:
    ct_buf_free(&text);
    ct_buf_free(&note);
    ct_buf_free(&last);
    return rc;
}

/* A tree head (when the folder has a log-signer) and then a checkpoint, which binds the tree head's audit event. */
static ct_err sign_heads(ca *c, const char *actor, signing_tree *tree, bool always, db_tree_head *out)
{
    if (c->signers[CA_KEY_LOG].key) CT_GUARD_RET(sign_tree_head(c, actor, tree, always, out));
    return c->note_key ? sign_checkpoint(c, actor, tree, always) : CT_OK;
}

ct_err ca_log_sth(ca *c, const char *actor, db_tree_head *out)
{
    signing_tree tree = {0};
    ct_merkle_frontier_init(&tree.f);
    CT_GUARD_RET(need_log_key(c));
    if (c->lease) return sign_heads(c, actor, &tree, true, out);
    /* A command: it signs only with the signer lease, never beside a serving node; and (before it writes the lease)
     * never over a rolled-back database. */
    CT_GUARD_RET(not_rolled_back(c));
    CT_GUARD_RET(ca_lease_for_command(c));
    ct_err rc = sign_heads(c, actor, &tree, true, out);
    ca_lease_free(c);
    return rc;
}

ct_err ca_log_checkpoint(ca *c, const char *actor, ct_buf *note)
{
    ct_err rc = db_log_checkpoint_latest(c->db, NULL, NULL, note);
    if (rc != CT_ERR_NOT_FOUND) return rc;
    signing_tree tree = {0};
    ct_merkle_frontier_init(&tree.f);
    CT_GUARD_RET(sign_checkpoint(c, actor, &tree, true));
    return db_log_checkpoint_latest(c->db, NULL, NULL, note);
}

/* ---- the server's signing thread ---- */

/* Only the holder of the signer lease signs (ca_lease.c); the other nodes serve what it stored. */
static void publish(ca *c)
{
    ca_log *l = c->log;
    if (!ca_lease_held(c)) return;
    ct_err_clear(); /* the reason compared below is this attempt's, never one an earlier call left */
    ct_err rc = sign_heads(c, CA_SERVER_ACTOR, &l->tree, false, NULL);
    if (rc == CT_OK) {
        /* Said: with the refusal repeated only once a minute, its lines stopping no longer shows that it ended. */
        if (l->refused[0]) ct_log(CT_LOG_INFO, "log_signing_resumed", "after=%s", CT_LOGQ(l->refused));
        l->refused[0] = '\0';
        return;
    }
    const char *why = *ct_err_detail() ? ct_err_detail() : ct_err_message(rc);
    int64_t now = ct_now_ms();
    if (strcmp(why, l->refused) == 0 && now - l->refused_ms < REFUSAL_REPEAT_MS) return;
    ct_log(CT_LOG_ERROR, "log_sth", "error=%s", CT_LOGQ(why));
    if (ct_strlcpy(l->refused, sizeof l->refused, why) != CT_OK) l->refused[0] = '\0';
    l->refused_ms = now;
}

static void *signer_thread(void *arg)
{
    ca *c = arg;
    ca_log *l = c->log;
    (void)pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->dirty && !l->stop) (void)pthread_cond_wait(&l->cv, &l->mu);
        if (l->dirty && !l->stop) { /* let the burst finish: one tree head for all of it */
            struct timespec until;
            ct_timespec_in(c->cfg.log_sth_delay_ms, &until);
            while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &until) == 0) {}
        }
        if (l->dirty) {
            l->dirty = false;
            (void)pthread_mutex_unlock(&l->mu);
            publish(c);
            (void)pthread_mutex_lock(&l->mu);
            continue;
        }
        if (l->stop) break;
    }
    (void)pthread_mutex_unlock(&l->mu);
    return NULL;
}

ct_err ca_log_start(ca *c)
{
    ct_err rc = CT_OK;
    if (need_log_key(c) != CT_OK) { /* checkpoints are still signed */
        ct_log(CT_LOG_WARN, "no_log_signer", "msg=%s", CT_LOGQ(ct_err_detail()));
        if (!c->note_key) return CT_OK;
    }
    ca_log *l = calloc(1, sizeof *l);
    CT_ENSURE_RET(l, CT_ERR_NOMEM);
    c->log = l;
    ct_merkle_frontier_init(&l->tree.f);
    l->mu_ok = pthread_mutex_init(&l->mu, NULL) == 0;
    l->cv_ok = ct_cond_init(&l->cv) == 0;
    CT_ENSURE_MSG(l->mu_ok && l->cv_ok, CT_ERR_INTERNAL, "cannot create the log locks");
    publish(c); /* heads over what was issued or changed while no server ran (or the first ones) */
    l->thread_ok = pthread_create(&l->thread, NULL, signer_thread, c) == 0;
    CT_ENSURE_MSG(l->thread_ok, CT_ERR_INTERNAL, "cannot start the tree head thread");
cleanup:
    if (rc != CT_OK) ca_log_stop(c);
    return rc;
}

void ca_log_stop(ca *c)
{
    ca_log *l = c ? c->log : NULL;
    if (!l) return;
    if (l->thread_ok) {
        (void)pthread_mutex_lock(&l->mu);
        l->stop = true;
        (void)pthread_cond_signal(&l->cv);
        (void)pthread_mutex_unlock(&l->mu);
        (void)pthread_join(l->thread, NULL); /* it signs a last tree head for issuances not yet covered */
    }
    if (l->cv_ok) (void)pthread_cond_destroy(&l->cv);
    if (l->mu_ok) (void)pthread_mutex_destroy(&l->mu);
    free(l);
    c->log = NULL;
}

void ca_log_issued(ca *c)
{
    ca_log *l = c ? c->log : NULL;
    if (!l || pthread_mutex_lock(&l->mu) != 0) return;
    /* Already dirty: the signer was woken for it and waits out the burst (woken again by each issuance, it
     * would only wait again). */
    if (!l->dirty) {
        l->dirty = true;
        (void)pthread_cond_signal(&l->cv);
    }
    (void)pthread_mutex_unlock(&l->mu);
}

/* ---- proofs ---- */

/* A certificate's leaf, its audit path in the tree of `tree_size` leaves and that tree's root. */
typedef struct {
    uint64_t index;
    ct_buf der;
    uint8_t leaf_hash[CT_MERKLE_HASH_LEN];
    ct_merkle_hash path[CT_MERKLE_MAX_PATH];
    size_t path_len;
    uint8_t root[CT_MERKLE_HASH_LEN];
} inclusion;

static ct_err inclusion_make(ca *c, const char *serial_in, uint64_t tree_size, inclusion *out)
{
    ct_err rc = CT_OK;
    char serial[DB_CERT_SERIAL_HEX_MAX];
    ct_merkle_hash leaf;
    uint64_t got = 1;
    bool locked = false;
    CT_GUARD(ca_serial_normalize(serial_in, serial));
    CT_GUARD(db_log_find(c->db, serial, &out->index, &out->der));
    CT_ENSURE_MSG(out->index < tree_size, CT_ERR_USAGE, "certificate %s is leaf %llu: not in a tree of %llu leaves",
                  serial, (unsigned long long)out->index, (unsigned long long)tree_size);
    CT_GUARD(db_log_leaves_from(c->db, out->index, &leaf, &got));
    CT_ENSURE_MSG(got == 1, CT_ERR_INTERNAL, "leaf %llu missing", (unsigned long long)out->index);
    memcpy(out->leaf_hash, leaf, CT_MERKLE_HASH_LEN);
    CT_ENSURE(pthread_mutex_lock(&c->proofs->mu) == 0, CT_ERR_INTERNAL);
    locked = true;
    CT_GUARD(cache_current(&c->proofs->cache, tree_size));
    CT_GUARD(ct_merkle_cache_inclusion_path(&c->proofs->cache.tree, tree_size, out->index, out->path, &out->path_len));
    CT_GUARD(ct_merkle_cache_root(&c->proofs->cache.tree, tree_size, out->root));
cleanup:
    if (locked) pthread_mutex_unlock(&c->proofs->mu);
    if (rc != CT_OK) ct_buf_free(&out->der);
    return rc;
}

ct_err ca_log_proof_write(ca *c, const char *serial, const char *path)
{
    ct_err rc = CT_OK;
    inclusion inc = {0};
    db_tree_head sth;
    ct_buf der = CT_BUF_INIT, pem = CT_BUF_INIT;
    CT_ENSURE_MSG(serial && *serial && strnlen(serial, 128) < 128, CT_ERR_USAGE, "a certificate serial is required");
    rc = db_log_tree_head_latest(c->db, &sth);
    CT_ENSURE(rc == CT_OK || rc == CT_ERR_NOT_FOUND, rc);
    bool have_sth = rc == CT_OK;
    uint64_t index = 0;
    char norm[DB_CERT_SERIAL_HEX_MAX];
    CT_GUARD(ca_serial_normalize(serial, norm));
    CT_GUARD(db_log_find(c->db, norm, &index, &der));
    ct_buf_free(&der);
    if (!have_sth || sth.head.tree_size <= index) /* no tree head covers it yet: sign one now */
        CT_GUARD(ca_log_sth(c, "cli", &sth));
    CT_GUARD(inclusion_make(c, norm, sth.head.tree_size, &inc));
    CT_ENSURE_MSG(memcmp(inc.root, sth.head.root, CT_MERKLE_HASH_LEN) == 0, CT_ERR_INTEGRITY,
                  "tree head %lld does not match the log: run camtrust-ca audit verify", (long long)sth.id);
    pki_log_proof p = {.cert = inc.der.data, .cert_len = inc.der.len, .leaf_index = inc.index, .head = sth.head,
                       .path_len = inc.path_len};
    memcpy(p.path, inc.path, sizeof p.path);
    CT_GUARD(pki_log_proof_encode(&p, &der));
    CT_GUARD(ct_buf_alloc(&pem, der.len * 2 + 128));
    CT_GUARD(ct_pem_encode(PKI_LOG_PROOF_PEM, der.data, der.len, &pem));
    CT_GUARD(ct_file_write_atomic(path, pem.data, pem.len, 0644));
cleanup:
    ct_buf_free(&inc.der);
    ct_buf_free(&der);
    ct_buf_free(&pem);
    return rc;
}

ct_err ca_log_proof_check(const char *proof_path, const char *log_cert_path, ca_log_proof_info *info)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT, der = CT_BUF_INIT, log_cert = CT_BUF_INIT;
    pki_log_proof p;
    pki_cert_info cert;
    memset(info, 0, sizeof *info);
    CT_GUARD(ct_file_read(proof_path, PKI_LOG_PROOF_MAX * 2, &file));
    CT_GUARD(ct_buf_alloc(&der, PKI_LOG_PROOF_MAX));
    rc = ct_pem_decode(file.data, file.len, PKI_LOG_PROOF_PEM, 0, &der);
    CT_ENSURE_MSG(rc != CT_ERR_NOT_FOUND, CT_ERR_BAD_DER, "%s holds no PEM %s", proof_path, PKI_LOG_PROOF_PEM);
    CT_GUARD(rc);
    CT_GUARD(ca_read_cert_file(log_cert_path, &log_cert));
    CT_GUARD(pki_log_proof_verify(der.data, der.len, log_cert.data, log_cert.len, &p));
    CT_GUARD(pki_cert_parse_info(p.cert, p.cert_len, &cert));
    info->leaf_index = p.leaf_index;
    info->tree_size = p.head.tree_size;
    info->timestamp_ms = p.head.timestamp_ms;
    CT_GUARD(ct_strlcpy(info->cert_serial, sizeof info->cert_serial, cert.serial_hex));
    CT_GUARD(ct_strlcpy(info->subject_serial, sizeof info->subject_serial, cert.subject_serial));
cleanup:
    ct_buf_free(&file);
    ct_buf_free(&der);
    ct_buf_free(&log_cert);
    return rc;
}

/* ---- audit verify ---- */

static ct_err check_signature(const ct_tree_head *h, void *arg)
{
    const ct_buf *cert = arg;
    return pki_tree_head_verify(cert->data, cert->len, h);
}

ct_err ca_log_verify(ca *c, db_log_report *report)
{
    const ca_signer *s = &c->signers[CA_KEY_LOG];
    return db_log_verify(c->db, s->cert_der.len ? check_signature : NULL, (void *)&s->cert_der, report);
}

/* ---- audit verify --checkpoint ---- */

/* The database's newest checkpoint, verified with the same key: the other end of the consistency proof. */
static ct_err newest_checkpoint(ca *c, const ct_note_verifier *v, ct_checkpoint *out)
{
    ct_buf note = CT_BUF_INIT;
    ct_err rc = db_log_checkpoint_latest(c->db, NULL, NULL, &note);
    if (rc == CT_ERR_NOT_FOUND) return ct_fail(CT_ERR_INTEGRITY, "the database holds no checkpoint");
    if (rc == CT_OK) {
        rc = ct_checkpoint_open(note.data, note.len, v, out);
        if (rc != CT_OK) rc = ct_fail_ctx(CT_ERR_INTEGRITY, "the database's newest checkpoint");
    }
    ct_buf_free(&note);
    return rc;
}

/* Whether the database holds what checkpoint `cp` signed: its audit entry and its tree as the log's prefix.
 * CT_ERR_INTEGRITY with the contradiction (not naming the checkpoint). */
static ct_err prefix_holds(ca *c, const ct_checkpoint *cp)
{
    uint8_t hash[32], root[CT_MERKLE_HASH_LEN];
    uint64_t size = 0;
    CT_ENSURE_RET(cp->has_audit, ct_fail(CT_ERR_BAD_REQUEST, "it has no camtrust-audit line: not a camtrust checkpoint"));
    if (cp->audit_entries > 0) {
        ct_err rc = db_log_audit_hash(c->db, cp->audit_entries, hash);
        CT_ENSURE_RET(rc != CT_ERR_NOT_FOUND,
                      ct_fail(CT_ERR_INTEGRITY, "the audit chain has no entry %llu (truncated or rolled back)",
                              (unsigned long long)cp->audit_entries));
        CT_GUARD_RET(rc);
        CT_ENSURE_RET(memcmp(hash, cp->audit_hash, sizeof hash) == 0,
                      ct_fail(CT_ERR_INTEGRITY, "audit entry %llu is not the one it signed (edited or forked)",
                              (unsigned long long)cp->audit_entries));
    }
    if (cp->has_audit_root) { /* every entry before it too: a decision removed and the chain regrown shows here */
        CT_GUARD_RET(cached_root(c, &c->proofs->audit, cp->audit_entries, root));
        CT_ENSURE_RET(memcmp(root, cp->audit_root, sizeof root) == 0,
                      ct_fail(CT_ERR_INTEGRITY, "the audit chain's first %llu entries have another root (an entry "
                                                "removed, replaced or edited: rolled back and grown again)",
                              (unsigned long long)cp->audit_entries));
    }
    CT_GUARD_RET(db_log_size(c->db, &size));
    CT_ENSURE_RET(size >= cp->size, ct_fail(CT_ERR_INTEGRITY, "the log has %llu of its %llu leaves (truncated or rolled back)",
                                            (unsigned long long)size, (unsigned long long)cp->size));
    CT_GUARD_RET(cached_root(c, &c->proofs->cache, cp->size, root));
    CT_ENSURE_RET(memcmp(root, cp->root, sizeof root) == 0,
                  ct_fail(CT_ERR_INTEGRITY, "the log's first %llu leaves have another root (edited or forked)",
                          (unsigned long long)cp->size));
    return CT_OK;
}

/* Whether the database extends checkpoint `cp`: what it signed is there, and the newest kept checkpoint is
 * consistent with it. */
static ct_err extends(ca *c, const ct_note_verifier *v, const ct_checkpoint *cp)
{
    uint64_t size = 0;
    ct_checkpoint newest;
    ct_merkle_hash proof[CT_MERKLE_MAX_PATH];
    size_t n = 0;
    CT_GUARD_RET(prefix_holds(c, cp));
    CT_GUARD_RET(db_log_size(c->db, &size));
    CT_GUARD_RET(newest_checkpoint(c, v, &newest));
    CT_ENSURE_RET(newest.size >= cp->size && newest.audit_entries >= cp->audit_entries,
                  ct_fail(CT_ERR_INTEGRITY, "the database's newest checkpoint (size %llu, audit entries %llu) is older "
                                            "(rolled back)", (unsigned long long)newest.size,
                          (unsigned long long)newest.audit_entries));
    CT_ENSURE_RET(newest.size <= size, ct_fail(CT_ERR_INTEGRITY, "the database's newest checkpoint (size %llu) is larger "
                                                                 "than the log (truncated)", (unsigned long long)newest.size));
    if (cp->size == 0) return CT_OK; /* the empty tree is a prefix of every tree */
    CT_GUARD_RET(cached_consistency(c, &c->proofs->cache, cp->size, newest.size, proof, &n));
    CT_ENSURE_RET(ct_merkle_verify_consistency(cp->size, cp->root, newest.size, newest.root, proof, n),
                  ct_fail(CT_ERR_INTEGRITY, "not consistent with the database's newest checkpoint (size %llu): forked",
                          (unsigned long long)newest.size));
    return CT_OK;
}

ct_err ca_log_extends(ca *c, const ct_checkpoint *cp)
{
    return extends(c, &c->note_vkey, cp);
}

ct_err ca_log_checkpoints_verify(ca *c, int64_t *count)
{
    ct_err rc = CT_OK;
    ct_buf note = CT_BUF_INIT;
    int64_t id = 0;
    uint64_t prev_size = 0, prev_audit = 0;
    bool prev_root = false;
    char why[256];
    *count = 0;
    CT_ENSURE_MSG(c->note_key, CT_ERR_CONFIG, "no checkpoint key");
    for (;;) {
        ct_checkpoint cp = {0};
        uint64_t row_size = 0; /* as recorded beside the note: named even when the note does not open */
        ct_buf_free(&note);
        rc = db_log_checkpoint_next(c->db, id, &id, &row_size, &note);
        if (rc == CT_ERR_NOT_FOUND) break;
        CT_GUARD(rc);
        rc = ct_checkpoint_open(note.data, note.len, &c->note_vkey, &cp);
        if (rc == CT_OK) rc = prefix_holds(c, &cp);
        if (rc == CT_OK && (cp.size < prev_size || cp.audit_entries < prev_audit))
            rc = ct_fail(CT_ERR_INTEGRITY, "it goes back (the one before: size %llu, audit entries %llu)",
                         (unsigned long long)prev_size, (unsigned long long)prev_audit);
        if (rc == CT_OK && prev_root && !cp.has_audit_root) /* this CA's software writes it since it first did */
            rc = ct_fail(CT_ERR_INTEGRITY, "it binds no audit root, the one before did");
        if (rc != CT_OK) { /* a kept checkpoint that is malformed or forged is the database's fault too */
            ct_err failed = rc == CT_ERR_BAD_REQUEST ? CT_ERR_INTEGRITY : rc;
            CT_GUARD(ct_strlcpy(why, sizeof why, *ct_err_detail() ? ct_err_detail() : ct_err_message(rc)));
            rc = ct_fail(failed, "checkpoint %lld (size %llu): %s", (long long)id, (unsigned long long)row_size, why);
            goto cleanup;
        }
        prev_size = cp.size;
        prev_audit = cp.audit_entries;
        prev_root = cp.has_audit_root;
        (*count)++;
    }
    rc = CT_OK;
cleanup:
    ct_buf_free(&note);
    return rc;
}

ct_err ca_log_checkpoint_check(ca *c, const char *path, const char *vkey_path, ca_checkpoint_info *info)
{
    ct_err rc = CT_OK;
    ct_buf file = CT_BUF_INIT, vfile = CT_BUF_INIT;
    char vpath[CA_PATH_MAX], why[256] = "";
    ct_note_verifier v;
    ct_checkpoint cp = {0};
    memset(info, 0, sizeof *info);
    if (!vkey_path) {
        CT_GUARD(ct_path_join(vpath, sizeof vpath, c->cfg.dir, CA_LOG_VKEY_FILE));
        vkey_path = vpath;
    }
    CT_GUARD(ct_file_read(vkey_path, CT_NOTE_VKEY_MAX + 2, &vfile));
    rc = ct_note_verifier_parse((const char *)vfile.data, vfile.len, &v);
    if (rc != CT_OK) { /* (ct_fail_ctx: a detail formatted into the buffer it is read from comes out garbled) */
        rc = ct_fail_ctx(CT_ERR_CONFIG, "%s", vkey_path);
        goto cleanup;
    }
    CT_GUARD(ct_file_read(path, CT_NOTE_MAX, &file));
    rc = ct_checkpoint_open(file.data, file.len, &v, &cp);
    if (rc == CT_OK) rc = extends(c, &v, &cp);
    if (rc != CT_OK) { /* named, so that the reason says which kept checkpoint the database contradicts */
        ct_err failed = rc;
        CT_GUARD(ct_strlcpy(why, sizeof why, *ct_err_detail() ? ct_err_detail() : ct_err_message(failed)));
        rc = ct_fail(failed, "checkpoint %s (size %llu, audit entries %llu): %s", path, (unsigned long long)cp.size,
                     (unsigned long long)cp.audit_entries, why);
        goto cleanup;
    }
    *info = (ca_checkpoint_info){cp.size, cp.audit_entries, cp.time_ms};
cleanup:
    ct_buf_free(&file);
    ct_buf_free(&vfile);
    return rc;
}

/* ---- witnesses: cosignatures (c2sp.org/tlog-cosignature) of the CA's checkpoints ----
 * POST /log/cosignature takes a signed note: the text of a checkpoint this CA signed, a blank line, and one
 * witness's cosignature line. It is kept when the witness is configured (log.witnesses) and the cosignature
 * verifies; GET /log/checkpoint serves the newest checkpoint with every kept cosignature appended. */

ct_err ca_witnesses_load(ca *c, ct_note_verifier *w, size_t max, size_t *n)
{
    return ct_cosig_verifiers_load(c->cfg.witnesses_path, w, max, n);
}

ct_err ca_log_checkpoint_cosigned(ca *c, int64_t *id_out, ct_buf *note)
{
    ct_err rc = CT_OK;
    ct_buf stored = CT_BUF_INIT;
    int64_t id = 0;
    CT_GUARD(db_log_checkpoint_latest(c->db, &id, NULL, &stored));
    CT_GUARD(ct_buf_alloc(note, stored.len + CA_WITNESSES_MAX * CT_COSIG_LINE_MAX + 1));
    CT_GUARD(ct_buf_append(note, stored.data, stored.len));
    CT_GUARD(db_log_cosignatures(c->db, id, note));
    if (id_out) *id_out = id;
cleanup:
    if (rc != CT_OK) ct_buf_free(note);
    ct_buf_free(&stored);
    return rc;
}

/* The kept checkpoint whose signed text is exactly `text`: the newest first (what a witness cosigns), then all. */
static ct_err checkpoint_by_text(ca *c, const uint8_t *text, size_t len, int64_t *id)
{
    ct_err rc = CT_OK;
    ct_buf note = CT_BUF_INIT;
    int64_t at = 0;
    bool newest = true;
    for (;;) {
        ct_buf_free(&note);
        rc = newest ? db_log_checkpoint_latest(c->db, &at, NULL, &note) : db_log_checkpoint_next(c->db, at, &at, NULL, &note);
        if (rc == CT_ERR_NOT_FOUND) break;
        CT_GUARD(rc);
        if (note.len > len && memcmp(note.data, text, len) == 0 && note.data[len] == '\n') {
            *id = at;
            goto cleanup;
        }
        if (newest) at = 0;
        newest = false;
    }
    rc = ct_fail(CT_ERR_NOT_FOUND, "this CA signed no such checkpoint");
cleanup:
    ct_buf_free(&note);
    return rc;
}

static ct_err answer_cosignature(ca *c, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    ct_note_verifier *w = NULL;
    size_t nw = 0, text_len = 0, found = SIZE_MAX;
    uint64_t t = 0;
    char line[CT_COSIG_LINE_MAX + 1], vkey[CT_NOTE_VKEY_MAX];
    int64_t id = 0;
    bool added = false;
    CT_ENSURE_MSG(!rq->body_too_large && rq->body && rq->body_len > 0 && rq->body_len <= CT_CHECKPOINT_TEXT_MAX + CT_COSIG_LINE_MAX,
                  CT_ERR_BAD_REQUEST, "a cosignature is a checkpoint's text, a blank line and one cosignature line");
    w = calloc(CA_WITNESSES_MAX, sizeof *w);
    CT_ENSURE(w, CT_ERR_NOMEM);
    CT_GUARD(ca_witnesses_load(c, w, CA_WITNESSES_MAX, &nw));
    for (size_t i = 0; i < nw && found == SIZE_MAX; i++) {
        rc = ct_cosig_open(rq->body, rq->body_len, &w[i], &text_len, &t);
        if (rc == CT_OK) found = i;
        else if (rc == CT_ERR_INTEGRITY) { /* a configured witness's name and key ID, a signature that does not verify */
            char why[256]; /* ct_fail overwrites the detail it would be formatting from */
            CT_GUARD(ct_strlcpy(why, sizeof why, ct_err_detail()));
            rc = ct_fail(CT_ERR_FORBIDDEN, "%s", why);
            goto cleanup;
        } else if (rc != CT_ERR_NOT_FOUND)
            goto cleanup; /* malformed */
    }
    rc = CT_OK;
    CT_ENSURE_MSG(found != SIZE_MAX, CT_ERR_FORBIDDEN, "not a cosignature by a configured witness (%zu in %s)", nw,
                  c->cfg.witnesses_path);
    size_t line_len = rq->body_len - text_len - 1;
    CT_ENSURE_MSG(line_len < sizeof line && !memchr(rq->body + text_len + 1, '\n', line_len - 1), CT_ERR_BAD_REQUEST,
                  "one cosignature line per request");
    memcpy(line, rq->body + text_len + 1, line_len);
    line[line_len] = '\0';
    CT_GUARD(checkpoint_by_text(c, rq->body, text_len, &id));
    CT_GUARD(ct_cosig_verifier_format(&w[found], vkey, sizeof vkey));
    CT_GUARD(db_log_cosignature_add(c->db, id, vkey, t, line, "witness", &added));
    ct_log(CT_LOG_INFO, "log_cosignature", "witness=%s checkpoint=%lld time=%llu new=%d", CT_LOGQ(w[found].name),
           (long long)id, (unsigned long long)t, added);
    CT_GUARD(ct_buf_alloc(&ans->body, 128));
    CT_GUARD(ct_buf_appendf(&ans->body, "%s checkpoint %lld\n", added ? "kept" : "already kept", (long long)id));
    ans->content_type = "text/plain; charset=utf-8";
    CT_GUARD(ct_snprintf(ans->reason, sizeof ans->reason, "cosignature checkpoint=%lld", (long long)id));
cleanup:
    free(w);
    return rc;
}

ct_err ca_log_witnessed(ca *c, const char *path, size_t k, size_t *have, size_t *configured)
{
    ct_err rc = CT_OK;
    ct_note_verifier *w = calloc(CA_WITNESSES_MAX, sizeof *w);
    ct_buf note = CT_BUF_INIT;
    int64_t id = 0;
    char what[CA_PATH_MAX + 32];
    CT_ENSURE(w, CT_ERR_NOMEM);
    *have = 0;
    CT_GUARD(ca_witnesses_load(c, w, CA_WITNESSES_MAX, configured));
    if (path) { /* a checkpoint someone kept, with the cosignatures it was served with */
        CT_GUARD(ct_snprintf(what, sizeof what, "checkpoint %s", path));
        CT_GUARD(ct_file_read(path, CT_NOTE_MAX, &note));
    } else {
        rc = ca_log_checkpoint_cosigned(c, &id, &note);
        CT_ENSURE_MSG(rc != CT_ERR_NOT_FOUND, CT_ERR_INTEGRITY, "no checkpoint to be witnessed");
        CT_GUARD(rc);
        CT_GUARD(ct_snprintf(what, sizeof what, "the newest checkpoint (%lld)", (long long)id));
    }
    CT_GUARD(ct_cosig_witnessed(note.data, note.len, w, *configured, k, what, have));
cleanup:
    free(w);
    ct_buf_free(&note);
    return rc;
}

ct_err ca_log_checkpoint_json(ca *c, ct_buf *out)
{
    ct_err rc = CT_OK;
    ct_note_verifier *w = calloc(CA_WITNESSES_MAX, sizeof *w);
    ct_buf note = CT_BUF_INIT;
    int64_t id = 0;
    size_t nw = 0, text_len = 0, witnessed = 0;
    ct_checkpoint cp = {0};
    uint64_t now_s = now_ms() / 1000u;
    CT_ENSURE(w, CT_ERR_NOMEM);
    CT_GUARD(ca_witnesses_load(c, w, CA_WITNESSES_MAX, &nw));
    rc = ca_log_checkpoint_cosigned(c, &id, &note);
    if (rc == CT_ERR_NOT_FOUND) rc = ct_fail(CT_ERR_NOT_FOUND, "no checkpoint has been signed yet");
    CT_GUARD(rc);
    CT_GUARD(ct_checkpoint_open(note.data, note.len, &c->note_vkey, &cp));
    CT_GUARD(ct_buf_alloc(out, note.len * 2 + 512 + nw * (CT_NOTE_NAME_MAX * 2 + 160) + ca_witness_json_max(nw)));
    CT_GUARD(ct_buf_appendf(out, "{\"checkpoint\":%lld,\"tree_size\":%llu,\"audit_entries\":%llu,\"time_ms\":%llu,"
                                 "\"age_s\":%lld,\"note\":",
                            (long long)id, (unsigned long long)cp.size, (unsigned long long)cp.audit_entries,
                            (unsigned long long)cp.time_ms, (long long)now_s - (long long)(cp.time_ms / 1000u)));
    const char *str = NULL;
    CT_GUARD(ct_buf_cstr(&note, &str));
    CT_GUARD(ct_json_string(out, str));
    CT_GUARD(ct_buf_append(out, ",\"witnesses\":[", 14));
    for (size_t i = 0; i < nw; i++) {
        uint64_t t = 0;
        ct_err got = ct_cosig_open(note.data, note.len, &w[i], &text_len, &t);
        CT_GUARD(ct_buf_appendf(out, "%s{\"name\":", i ? "," : ""));
        CT_GUARD(ct_json_string(out, w[i].name));
        if (got == CT_OK) witnessed++;
        if (got == CT_OK)
            CT_GUARD(ct_buf_appendf(out, ",\"cosigned\":true,\"time\":%llu,\"age_s\":%lld", (unsigned long long)t,
                                    (long long)now_s - (long long)t));
        else /* not yet, or a kept line that does not verify: shown as missing either way */
            CT_GUARD(ct_buf_append(out, ",\"cosigned\":false", 17));
        CT_GUARD(ca_witness_json(c, &w[i], out)); /* its newest cosignature of any checkpoint, its reports */
        CT_GUARD(ct_buf_append(out, "}", 1));
    }
    CT_GUARD(ct_buf_appendf(out, "],\"witnessed\":%zu,\"witnesses_required\":%ld", witnessed,
                            c->cfg.witnesses_required));
    CT_GUARD(ca_witness_reports_json(c, out));
    CT_GUARD(ct_buf_append(out, "}\n", 2));
cleanup:
    if (rc != CT_OK) ct_buf_free(out);
    free(w);
    ct_buf_free(&note);
    return rc;
}

/* ---- HTTP: GET /log/sth, /log/proof/inclusion, /log/proof/consistency (public: the answers are signed or
 * checkable against what is) ---- */

static ct_err json_hash(ct_buf *b, const uint8_t *p, size_t n)
{
    char tmp[CT_TREE_HEAD_SIG_MAX * 2];
    ct_buf enc = {(uint8_t *)tmp, 0, sizeof tmp};
    CT_GUARD_RET(ct_base64_encode(p, n, false, &enc));
    return ct_buf_appendf(b, "\"%.*s\"", (int)enc.len, tmp);
}

static ct_err json_path(ct_buf *b, const char *name, const ct_merkle_hash *path, size_t n)
{
    CT_GUARD_RET(ct_buf_appendf(b, ",\"%s\":[", name));
    for (size_t i = 0; i < n; i++) {
        if (i) CT_GUARD_RET(ct_buf_append(b, ",", 1));
        CT_GUARD_RET(json_hash(b, path[i], CT_MERKLE_HASH_LEN));
    }
    return ct_buf_append(b, "]}\n", 3);
}

/* A query argument that must be present and a decimal number. */
static ct_err arg_u64(const ca_http_request *rq, const char *name, bool required, uint64_t *out)
{
    const char *s = rq->arg ? rq->arg(rq->arg_ctx, name) : NULL;
    if (!s && !required) return CT_ERR_NOT_FOUND;
    CT_ENSURE_RET(s && *s, ct_fail(CT_ERR_USAGE, "parameter %s is required", name));
    size_t n = strnlen(s, 21);
    CT_ENSURE_RET(n <= 19, ct_fail(CT_ERR_USAGE, "parameter %s is too long", name));
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        CT_ENSURE_RET(s[i] >= '0' && s[i] <= '9', ct_fail(CT_ERR_USAGE, "parameter %s must be a decimal number", name));
        *out = *out * 10 + (uint64_t)(s[i] - '0');
    }
    return CT_OK;
}

/* A tree size a proof is asked for: within the log (or the audit chain), checked before any work or memory is
 * spent on it. */
static ct_err within_tree(ca *c, bool audit, const char *name, uint64_t n)
{
    uint64_t size = 0;
    uint8_t head[32];
    CT_GUARD_RET(audit ? db_log_audit_head(c->db, &size, head) : db_log_size(c->db, &size));
    CT_ENSURE_RET(n <= size, ct_fail(CT_ERR_USAGE, "%s=%llu is larger than the %s (%llu %s)", name,
                                     (unsigned long long)n, audit ? "audit chain" : "log", (unsigned long long)size,
                                     audit ? "entries" : "certificates"));
    return CT_OK;
}

static ct_err within_log(ca *c, const char *name, uint64_t n) { return within_tree(c, false, name, n); }

static ct_err latest_or_unavailable(ca *c, db_tree_head *sth)
{
    ct_err rc = db_log_tree_head_latest(c->db, sth);
    return rc == CT_ERR_NOT_FOUND ? ct_fail(CT_ERR_UNAVAILABLE, "no tree head has been signed yet") : rc;
}

static ct_err answer_sth(ca *c, ca_http_answer *ans)
{
    db_tree_head sth;
    CT_GUARD_RET(latest_or_unavailable(c, &sth));
    CT_GUARD_RET(ct_buf_alloc(&ans->body, PROOF_JSON_MAX));
    CT_GUARD_RET(ct_buf_appendf(&ans->body, "{\"tree_head\":%lld,\"tree_size\":%llu,\"timestamp\":%llu,\"root_hash\":",
                                (long long)sth.id, (unsigned long long)sth.head.tree_size,
                                (unsigned long long)sth.head.timestamp_ms));
    CT_GUARD_RET(json_hash(&ans->body, sth.head.root, CT_MERKLE_HASH_LEN));
    CT_GUARD_RET(ct_buf_append(&ans->body, ",\"signature\":", 13));
    CT_GUARD_RET(json_hash(&ans->body, sth.head.sig, sth.head.sig_len));
    CT_GUARD_RET(ct_buf_append(&ans->body, "}\n", 2));
    return ct_snprintf(ans->reason, sizeof ans->reason, "sth size=%llu", (unsigned long long)sth.head.tree_size);
}

static ct_err answer_checkpoint(ca *c, ca_http_answer *ans)
{
    ct_err rc = ca_log_checkpoint_cosigned(c, NULL, &ans->body);
    if (rc == CT_ERR_NOT_FOUND) return ct_fail(CT_ERR_UNAVAILABLE, "no checkpoint has been signed yet");
    CT_GUARD_RET(rc);
    ans->content_type = "text/plain; charset=utf-8";
    return ct_snprintf(ans->reason, sizeof ans->reason, "checkpoint");
}

static ct_err answer_inclusion(ca *c, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    inclusion inc = {0};
    uint64_t size = 0;
    const char *serial = rq->arg ? rq->arg(rq->arg_ctx, "serial") : NULL;
    CT_ENSURE_MSG(serial && *serial, CT_ERR_USAGE, "parameter serial is required");
    CT_ENSURE_MSG(strnlen(serial, 128) < 128, CT_ERR_USAGE, "parameter serial is too long");
    rc = arg_u64(rq, "tree_size", false, &size);
    if (rc == CT_ERR_NOT_FOUND) { /* default: the newest tree head, which the client can check */
        db_tree_head sth;
        CT_GUARD(latest_or_unavailable(c, &sth));
        size = sth.head.tree_size;
    } else {
        CT_GUARD(rc);
        CT_GUARD(within_log(c, "tree_size", size));
    }
    CT_GUARD(inclusion_make(c, serial, size, &inc));
    CT_GUARD(ct_buf_alloc(&ans->body, PROOF_JSON_MAX));
    CT_GUARD(ct_buf_appendf(&ans->body, "{\"leaf_index\":%llu,\"tree_size\":%llu,\"leaf_hash\":",
                            (unsigned long long)inc.index, (unsigned long long)size));
    CT_GUARD(json_hash(&ans->body, inc.leaf_hash, CT_MERKLE_HASH_LEN));
    CT_GUARD(json_path(&ans->body, "audit_path", inc.path, inc.path_len));
    CT_GUARD(ct_snprintf(ans->reason, sizeof ans->reason, "inclusion leaf=%llu size=%llu", (unsigned long long)inc.index,
                         (unsigned long long)size));
cleanup:
    ct_buf_free(&inc.der);
    return rc;
}

/* GET /log/proof/consistency, or with `audit` /log/audit/proof/consistency: the same RFC 9162 PROOF of the audit
 * tree (checkpoints' camtrust-audit-root), which shows a witness that a longer audit chain extends the one it kept. */
static ct_err answer_consistency(ca *c, const ca_http_request *rq, bool audit, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    ct_merkle_hash proof[CT_MERKLE_MAX_PATH];
    size_t n = 0;
    uint64_t first = 0, second = 0;
    CT_GUARD(arg_u64(rq, "first", true, &first));
    CT_GUARD(arg_u64(rq, "second", true, &second));
    CT_ENSURE_MSG(first >= 1 && first <= second, CT_ERR_USAGE, "need 1 <= first <= second (first=%llu second=%llu)",
                  (unsigned long long)first, (unsigned long long)second);
    CT_GUARD(within_tree(c, audit, "second", second));
    CT_GUARD(cached_consistency(c, audit ? &c->proofs->audit : &c->proofs->cache, first, second, proof, &n));
    CT_GUARD(ct_buf_alloc(&ans->body, PROOF_JSON_MAX));
    CT_GUARD(ct_buf_appendf(&ans->body, "{\"first\":%llu,\"second\":%llu", (unsigned long long)first,
                            (unsigned long long)second));
    CT_GUARD(json_path(&ans->body, "consistency_path", proof, n));
    CT_GUARD(ct_snprintf(ans->reason, sizeof ans->reason, "%sconsistency %llu..%llu", audit ? "audit " : "",
                         (unsigned long long)first, (unsigned long long)second));
cleanup:
    return rc;
}

ct_err ca_log_handle(ca *c, const ca_http_request *rq, ca_http_answer *ans)
{
    ct_err rc = CT_OK;
    memset(ans, 0, sizeof *ans);
    ct_err_clear();
    bool sth = strcmp(rq->path, "/log/sth") == 0, inc = strcmp(rq->path, "/log/proof/inclusion") == 0,
         cons = strcmp(rq->path, "/log/proof/consistency") == 0, ckpt = strcmp(rq->path, "/log/checkpoint") == 0,
         cosig = strcmp(rq->path, "/log/cosignature") == 0, report = strcmp(rq->path, "/log/witness-report") == 0,
         audit_cons = strcmp(rq->path, "/log/audit/proof/consistency") == 0;
    CT_ENSURE_MSG(sth || inc || cons || ckpt || cosig || report || audit_cons, CT_ERR_NOT_FOUND, "no such resource");
    if (cosig || report) {
        CT_ENSURE_MSG(strcmp(rq->method, "POST") == 0, CT_ERR_METHOD, "%s takes POST", rq->path);
        CT_GUARD(cosig ? answer_cosignature(c, rq, ans) : ca_witness_report_answer(c, rq, ans));
        ans->status = 200;
        goto cleanup;
    }
    CT_ENSURE_MSG(strcmp(rq->method, "GET") == 0, CT_ERR_METHOD, "%s takes GET", rq->path);
    ans->content_type = "application/json";
    CT_GUARD(ckpt ? answer_checkpoint(c, ans)
             : sth ? answer_sth(c, ans)
             : inc ? answer_inclusion(c, rq, ans)
                   : answer_consistency(c, rq, audit_cons, ans));
    ans->status = 200;
cleanup:
    if (rc != CT_OK) ca_http_error(ans, rc);
    return rc;
}
