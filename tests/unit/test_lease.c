/* db leases (db/lease.c): one signer among several nodes on one database file, each node its own connection, as
 * two processes would have. The attacker here is a second node that wants to sign while the first still holds
 * the lease, or a node that lost it and still writes. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_log.h"
#include "test_util.h"

/* Both nodes' database: a SQLite file, or with CAMTRUST_TEST_DB=postgresql (under tests/helpers/pg.sh) a new
 * PostgreSQL database. */
static char g_path[600], g_url[512];

static void new_database(const char *tag)
{
    snprintf(g_path, sizeof g_path, "%s/ca.db", tu_tmpdir(tag));
    const char *backend = getenv("CAMTRUST_TEST_DB");
    g_url[0] = '\0';
    if (!backend || strcmp(backend, "postgresql") != 0) return;
    FILE *f = popen("\"$CAMTRUST_TEST_PG_CTL\" createdb", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(g_url, sizeof g_url, f));
    ck_assert_int_eq(pclose(f), 0);
    g_url[strcspn(g_url, "\n")] = '\0';
}

/* One node's connection. */
static ct_db *node_open(void)
{
    db_config cfg = {.backend = g_url[0] ? DB_BACKEND_POSTGRESQL : DB_BACKEND_SQLITE, .path = g_path, .url = g_url};
    ct_db *db = NULL;
    ck_assert_int_eq(db_open_config(&cfg, NULL, &db), CT_OK);
    return db;
}

/* Audit entries, the chain verified. */
static int64_t audit_entries(ct_db *db)
{
    db_audit_report rep;
    ck_assert_int_eq(db_audit_verify(db, &rep), CT_OK);
    return rep.entries;
}

static db_lease_request req(const char *holder, int64_t now_ms)
{
    return (db_lease_request){.name = DB_LEASE_SIGNER, .holder = holder, .now_ms = now_ms, .ttl_ms = 10000};
}

static bool named_dead(void *arg, const char *holder) { return strcmp(holder, (const char *)arg) == 0; }

START_TEST(test_one_holder_at_a_time)
{
    new_database("lease-one");
    ct_db *a = node_open(), *b = node_open();
    ck_assert_int_eq(db_schema_version(a), 19);
    int64_t entries = audit_entries(a);
    db_lease_state st;
    db_lease_request ra = req("node-a", 1000000);
    ck_assert_int_eq(db_lease_take(a, &ra, &st), CT_OK);
    ck_assert(st.held && st.taken);
    ck_assert_str_eq(st.previous, "");
    ra.stamp = st.stamp;
    /* b asks while a's lease runs: refused, told who holds it */
    db_lease_request rb = req("node-b", 1005000);
    ck_assert_int_eq(db_lease_take(b, &rb, &st), CT_OK);
    ck_assert(!st.held && !st.taken);
    ck_assert_str_eq(st.holder, "node-a");
    /* a renews (not audited again): b is still refused past a's first expiry */
    ra.now_ms = 1008000;
    ck_assert_int_eq(db_lease_take(a, &ra, &st), CT_OK);
    ck_assert(st.held && !st.taken);
    rb.now_ms = 1012000;
    ck_assert_int_eq(db_lease_take(b, &rb, &st), CT_OK);
    ck_assert(!st.held);
    ck_assert_int_eq(audit_entries(b), entries + 1); /* the first take only */
    /* a stops renewing: once expired, b takes it, audited with who held it before */
    rb.now_ms = 1018001;
    ck_assert_int_eq(db_lease_take(b, &rb, &st), CT_OK);
    ck_assert(st.held && st.taken);
    ck_assert_str_eq(st.previous, "node-a");
    ck_assert_int_eq(audit_entries(a), entries + 2);
    rb.stamp = st.stamp;
    /* a comes back (a paused process): it does not hold it any more */
    ra.now_ms = 1019000;
    ck_assert_int_eq(db_lease_take(a, &ra, &st), CT_OK);
    ck_assert(!st.held);
    ck_assert_str_eq(st.holder, "node-b");
    /* a known-dead holder's lease is taken before it expires */
    ra.holder_dead = named_dead;
    ra.dead_arg = (void *)"node-b";
    ck_assert_int_eq(db_lease_take(a, &ra, &st), CT_OK);
    ck_assert(st.held && st.taken);
    ck_assert_str_eq(st.previous, "node-b");
    ck_assert_int_eq(audit_entries(a), entries + 3);
    /* a clean release lets b take it at once */
    ck_assert_int_eq(db_lease_release(a, DB_LEASE_SIGNER, "node-a", st.stamp), CT_OK);
    rb.now_ms = 1019500;
    ck_assert_int_eq(db_lease_take(b, &rb, &st), CT_OK);
    ck_assert(st.held && st.taken);
    ck_assert_int_eq(audit_entries(a), entries + 4);
    db_close(a);
    db_close(b);
}
END_TEST

START_TEST(test_crl_kept_only_by_the_holder)
{
    new_database("lease-crl");
    ct_db *a = node_open(), *b = node_open();
    db_lease_state st;
    db_lease_request ra = req("node-a", 2000000), rb = req("node-b", 2000100);
    ck_assert_int_eq(db_lease_take(a, &ra, &st), CT_OK);
    ra.stamp = st.stamp;
    uint8_t der1[] = {0x30, 0x03, 0x02, 0x01, 0x01}, der2[] = {0x30, 0x03, 0x02, 0x01, 0x02};
    db_signed_crl crl = {.issuing_ca = 1, .epoch = 3, .next_update = 99, .number = 1, .this_update = 9,
                         .der = {der1, sizeof der1, sizeof der1}};
    ck_assert_int_eq(db_crl_signed_put(a, &ra, &crl), CT_OK);
    /* b does not hold the lease: its CRL is not kept, a's stays */
    crl.epoch = 4;
    crl.number = 2;
    crl.this_update = 10;
    crl.der = (ct_buf){der2, sizeof der2, sizeof der2};
    ck_assert_int_eq(db_crl_signed_put(b, &rb, &crl), CT_ERR_UNAVAILABLE);
    /* nor is a's once its lease expired (a paused past its lease) */
    ra.now_ms = 2010001;
    ck_assert_int_eq(db_crl_signed_put(a, &ra, &crl), CT_ERR_UNAVAILABLE);
    db_signed_crl got;
    ck_assert_int_eq(db_crl_signed_get(b, 1, &got), CT_OK);
    ck_assert_int_eq(got.epoch, 3);
    ck_assert_int_eq(got.next_update, 99);
    ck_assert_mem_eq(got.der.data, der1, sizeof der1);
    ct_buf_free(&got.der);
    ck_assert_int_eq(db_crl_signed_get(b, 2, &got), CT_ERR_NOT_FOUND);
    /* any node may ask the signer for a CRL it never made; asking never touches a kept one */
    ck_assert_int_eq(db_crl_signed_want(b, 2), CT_OK);
    ck_assert_int_eq(db_crl_signed_get(a, 2, &got), CT_OK);
    ck_assert(got.wanted && got.der.len == 0);
    ck_assert_int_eq(db_crl_signed_want(b, 1), CT_OK);
    ck_assert_int_eq(db_crl_signed_get(b, 1, &got), CT_OK);
    ck_assert(!got.wanted);
    ck_assert_mem_eq(got.der.data, der1, sizeof der1);
    ct_buf_free(&got.der);
    /* the new holder replaces it */
    rb.now_ms = 2010002;
    ck_assert_int_eq(db_lease_take(b, &rb, &st), CT_OK);
    ck_assert(st.taken);
    rb.stamp = st.stamp;
    ck_assert_int_eq(db_crl_signed_put(b, &rb, &crl), CT_OK);
    ck_assert_int_eq(db_crl_signed_get(a, 1, &got), CT_OK);
    ck_assert_int_eq(got.epoch, 4);
    ck_assert_mem_eq(got.der.data, der2, sizeof der2);
    ct_buf_free(&got.der);
    /* each stored CRL is audited; a lower cRLNumber than the one stored (made earlier, stored late) is not kept */
    db_crl_stored rec;
    ck_assert_int_eq(db_crl_stored_latest(a, 1, DB_CRL_DEVICE, &rec), CT_OK);
    ck_assert_int_eq(rec.number, 2);
    ck_assert_int_eq(rec.this_update, 10);
    ck_assert_int_gt(rec.seq, 0);
    crl.number = 1;
    crl.der = (ct_buf){der1, sizeof der1, sizeof der1};
    ck_assert_int_eq(db_crl_signed_put(b, &rb, &crl), CT_ERR_UNAVAILABLE);
    ck_assert_int_eq(db_crl_signed_get(a, 1, &got), CT_OK);
    ck_assert_mem_eq(got.der.data, der2, sizeof der2);
    ct_buf_free(&got.der);
    ck_assert_int_eq(db_crl_stored_latest(a, 2, DB_CRL_DEVICE, &rec), CT_OK);
    ck_assert_int_eq(rec.number, 0);
    db_close(a);
    db_close(b);
}
END_TEST

/* Two nodes on a new database, each with its lease fence: node-a holds the signer lease (its take's stamp
 * returned), node-b does not. */
static int64_t signer_and_other(const char *tag, ct_db **a, ct_db **b)
{
    new_database(tag);
    *a = node_open();
    *b = node_open();
    db_lease_state st;
    db_lease_request ra = req("node-a", ct_wall_ms());
    ck_assert_int_eq(db_lease_fence(*a, DB_LEASE_SIGNER, "node-a"), CT_OK);
    ck_assert_int_eq(db_lease_fence(*b, DB_LEASE_SIGNER, "node-b"), CT_OK);
    ck_assert_int_eq(db_lease_take(*a, &ra, &st), CT_OK);
    ck_assert(st.held);
    return st.stamp;
}

/* A node paused past its lease, whose own deadline has not caught up, signs no tree head or checkpoint: the write
 * checks the lease in its transaction. */
START_TEST(test_log_writes_fenced_by_the_lease)
{
    ct_db *a = NULL, *b = NULL;
    int64_t stamp = signer_and_other("lease-fence", &a, &b);
    ct_tree_head h = {.tree_size = 0, .timestamp_ms = (uint64_t)ct_wall_ms(), .sig_len = 1};
    int64_t id = 0, ckpt = 0;
    uint64_t size = 0;
    ct_buf note = {0};
    /* b does not hold it: nothing written */
    ck_assert_int_eq(db_log_tree_head_add(b, &h, "node-b", &id), CT_ERR_UNAVAILABLE);
    ck_assert_int_eq(db_log_checkpoint_add(b, 0, 1, "note b", "node-b", &id), CT_ERR_UNAVAILABLE);
    ck_assert_int_eq(db_log_checkpoint_latest(a, &ckpt, &size, &note), CT_ERR_NOT_FOUND);
    /* a does */
    ck_assert_int_eq(db_log_tree_head_add(a, &h, "node-a", &id), CT_OK);
    ck_assert_int_eq(db_log_checkpoint_add(a, 0, 1, "note a", "node-a", &id), CT_OK);
    /* a lets it go (as a lapse would): a writes nothing more */
    ck_assert_int_eq(db_lease_release(a, DB_LEASE_SIGNER, "node-a", stamp), CT_OK);
    ck_assert_int_eq(db_log_checkpoint_add(a, 0, 2, "note a2", "node-a", &ckpt), CT_ERR_UNAVAILABLE);
    ck_assert_int_eq(db_log_checkpoint_latest(b, &ckpt, &size, &note), CT_OK);
    ck_assert_int_eq(ckpt, id);
    ct_buf_free(&note);
    db_close(a);
    db_close(b);
}
END_TEST

/* The unlucky operator gives two processes one node id (a config copied to the second node): each is its own holder.
 * The second does not renew the first's take as its own, so it signs nothing (tree head, checkpoint, CRL) while the
 * first's lease runs; once it expired the second takes it (audited), and the first, paused meanwhile, renews,
 * writes and lets go nothing. */
START_TEST(test_one_id_two_processes)
{
    ct_db *a = NULL, *b = NULL;
    int64_t first = signer_and_other("lease-same-id", &a, &b);
    int64_t now = ct_wall_ms(); /* not before the first's take */
    ck_assert_int_eq(db_lease_fence(b, DB_LEASE_SIGNER, "node-a"), CT_OK);
    int64_t entries = audit_entries(a);
    db_lease_state st;
    db_lease_request twin = req("node-a", now + 1000);
    ck_assert_int_eq(db_lease_take(b, &twin, &st), CT_OK);
    ck_assert(!st.held && !st.taken);
    ck_assert_str_eq(st.holder, "node-a");
    ct_tree_head h = {.tree_size = 0, .timestamp_ms = (uint64_t)now, .sig_len = 1};
    int64_t id = 0;
    ck_assert_int_eq(db_log_tree_head_add(b, &h, "node-a", &id), CT_ERR_UNAVAILABLE);
    ck_assert_int_eq(db_log_checkpoint_add(b, 0, 1, "note twin", "node-a", &id), CT_ERR_UNAVAILABLE);
    uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    db_signed_crl crl = {.issuing_ca = 1, .epoch = 1, .next_update = 99, .number = 1, .this_update = 9,
                         .der = {der, sizeof der, sizeof der}};
    ck_assert_int_eq(db_crl_signed_put(b, &twin, &crl), CT_ERR_UNAVAILABLE);
    ck_assert_int_eq(audit_entries(a), entries); /* nothing written */
    /* the first one's lease expires (it was paused): the second takes it */
    twin.now_ms = now + 10001;
    ck_assert_int_eq(db_lease_take(b, &twin, &st), CT_OK);
    ck_assert(st.held && st.taken);
    ck_assert_int_gt(st.stamp, first);
    twin.stamp = st.stamp;
    ck_assert_int_eq(db_crl_signed_put(b, &twin, &crl), CT_OK);
    ck_assert_int_eq(audit_entries(a), entries + 2); /* lease.take, crl.store */
    /* the first resumes: its renewal, its fence, its CRL and its release find another take */
    db_lease_request resumed = req("node-a", now + 10002);
    resumed.stamp = first;
    ck_assert_int_eq(db_crl_signed_put(a, &resumed, &crl), CT_ERR_UNAVAILABLE);
    ck_assert_int_eq(db_log_checkpoint_add(a, 0, 1, "note paused", "node-a", &id), CT_ERR_UNAVAILABLE);
    ck_assert_int_eq(db_lease_take(a, &resumed, &st), CT_OK);
    ck_assert(!st.held);
    ck_assert_int_eq(db_lease_release(a, DB_LEASE_SIGNER, "node-a", first), CT_OK);
    ck_assert_int_eq(db_log_checkpoint_add(b, 0, 1, "note twin", "node-a", &id), CT_OK);
    db_close(a);
    db_close(b);
}
END_TEST

static bool uncovered(ct_db *db)
{
    bool u = false;
    ck_assert_int_eq(db_log_audit_uncovered(db, &u), CT_OK);
    return u;
}

/* What calls for the signer's next checkpoint (db_log_audit_uncovered): any change past the newest checkpoint's audit
 * length, another node's too, even one that landed between that length and the checkpoint's own entry; never the
 * checkpoints' and the witnesses' own entries (each checkpoint would call for the next: a storm), nor refusals, nor a
 * CRL stored (each CRL refresh would call for one), nor an officer's reads. */
START_TEST(test_checkpoint_due_after_any_change)
{
    ct_db *a = NULL, *b = NULL;
    signer_and_other("lease-due", &a, &b);
    ck_assert(uncovered(a)); /* no checkpoint yet */
    int64_t id = 0;
    ck_assert_int_eq(db_log_checkpoint_add(a, 0, (uint64_t)audit_entries(a), "note 1", "node-a", &id), CT_OK);
    ck_assert(!uncovered(a));
    bool added = false;
    ck_assert_int_eq(db_log_cosignature_add(a, id, "w1", 1, "cosignature", "node-a", &added), CT_OK);
    ck_assert(added);
    ck_assert_int_eq(db_audit_append(b, "anonymous:192.0.2.1", "est.enroll", "x", "denied", "refused"), CT_OK);
    ck_assert(!uncovered(b));
    /* a CRL stored follows from the revocations (each due itself) and the clock: not after every CRL refresh */
    ck_assert_int_eq(db_audit_append(b, "node-a", "crl.store", "issuing CA 1", "ok", "number=2"), CT_OK);
    ck_assert(!uncovered(b));
    /* an officer's reads change nothing (the console polls the checkpoint page); a tree head follows the log's growth */
    static const char *const k_reads[] = {"officer.read", "officer.search", "officer.report", "log.sth"};
    for (size_t i = 0; i < sizeof k_reads / sizeof k_reads[0]; i++) {
        ck_assert_int_eq(db_audit_append(b, "officer:alice", k_reads[i], "checkpoint", "ok", ""), CT_OK);
        ck_assert(!uncovered(b));
    }
    ck_assert_int_eq(db_audit_append(b, "cli", "station.disable", "line1", "ok", ""), CT_OK);
    ck_assert(uncovered(a));
    /* a reads the audit head; b revokes; a records its checkpoint of what it read: the revocation is still due */
    int64_t read = audit_entries(a);
    ck_assert_int_eq(db_audit_append(b, "cli", "cert.revoke", "01", "ok", ""), CT_OK);
    ck_assert_int_eq(db_log_checkpoint_add(a, 0, (uint64_t)read, "note 2", "node-a", &id), CT_OK);
    ck_assert(uncovered(a));
    ck_assert_int_eq(db_log_checkpoint_add(a, 0, (uint64_t)audit_entries(a), "note 3", "node-a", &id), CT_OK);
    ck_assert(!uncovered(b));
    db_close(a);
    db_close(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lease");
    TCase *tc = tcase_create("lease");
    tcase_add_test(tc, test_one_holder_at_a_time);
    tcase_add_test(tc, test_crl_kept_only_by_the_holder);
    tcase_add_test(tc, test_log_writes_fenced_by_the_lease);
    tcase_add_test(tc, test_checkpoint_due_after_any_change);
    tcase_add_test(tc, test_one_id_two_processes);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
