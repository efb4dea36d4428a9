/* The factory station: init and install on a real SoftHSM token, and its EST client against a real
 * `camtrust-ca serve` on a loopback port (the binaries come from the build: CAMTRUST_CA_BIN,
 * CAMTRUST_STATION_BIN). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/factory/factory.h"
#include "../../common/note/note.h"
#include "../../provision/station_priv.h"
#include "test_util.h"

static const char *const quiet = ">/dev/null 2>&1";

#define TPATH 1024
/* A path built with printf; too long a path fails the test rather than truncating. */
static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, TPATH, fmt, ap);
    va_end(ap);
    ck_assert(n > 0 && n < TPATH);
}

/* ---------------- init and install ---------------- */

static char sdir[600];

static void init_setup(void)
{
    pathf(sdir, "%s/stn", tu_tmpdir("station"));
    ck_assert_int_eq(station_init(sdir, "line1"), CT_OK);
}

START_TEST(test_init_key_and_csr)
{
    /* openssl checks the CSR's signature (made in the token) and reads the subject. */
    ck_assert_int_eq(tu_sh("openssl req -in '%s/station.csr' -verify -noout %s", sdir, quiet), 0);
    ck_assert_int_eq(tu_sh("openssl req -in '%s/station.csr' -noout -subject | grep -q 'CN *= *line1'", sdir), 0);
    /* Every setting is written out; the PIN file is private. */
    const char *keys[] = {"hsm.module", "hsm.token", "hsm.pin_file", "hsm.softhsm_conf", "name"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        ck_assert_int_eq(tu_sh("grep -q '^%s = ' '%s/station.conf'", keys[i], sdir), 0);
    struct stat st;
    char pin[TPATH];
    pathf(pin, "%s/secrets/user.pin", sdir);
    ck_assert_int_eq(stat(pin, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* A tool that is not ours sees the key sensitive and never extractable, and cannot read it out. */
    char cmd[TPATH];
    pathf(cmd,
          "SOFTHSM2_CONF='%s/softhsm2.conf' pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so "
          "--token-label camtrust-station --login --pin \"$(cat '%s')\"",
          sdir, pin);
    ck_assert_int_eq(tu_sh("%s --list-objects --type privkey 2>/dev/null | grep -A8 'label: *station' | "
                           "grep -q 'never extractable'", cmd),
                     0);
    (void)tu_sh("%s --read-object --type privkey --label station -o '%s/stolen' %s", cmd, sdir, quiet);
    ck_assert_int_ne(tu_sh("test -s '%s/stolen'", sdir), 0);
    /* A second init is refused: the key stays the one the CA certified. */
    ck_assert_int_eq(station_init(sdir, "line1"), CT_ERR_EXISTS);
    ck_assert_int_eq(station_init(sdir, "line2"), CT_ERR_EXISTS);
}
END_TEST

START_TEST(test_init_bad_name)
{
    char other[TPATH];
    pathf(other, "%s/x", sdir);
    ck_assert_int_eq(station_init(other, "line 1;rm"), CT_ERR_USAGE);
    ck_assert_int_eq(station_init(other, ""), CT_ERR_USAGE);
}
END_TEST

/* A CA made by the real binary; the station certificate from `camtrust-ca station add` with the given CSR. */
static void make_ca(const char *ca, const char *csr, const char *out)
{
    ck_assert_int_eq(tu_ca_create(ca), 0);
    ck_assert_int_eq(tu_sh("'%s' station add --dir '%s' --name line1 --csr '%s' --out '%s' %s", CAMTRUST_CA_BIN, ca,
                           csr, out, quiet),
                     0);
}

START_TEST(test_install)
{
    char ca[TPATH], csr[TPATH], pem[TPATH], root[TPATH], dev_root[TPATH], other[TPATH];
    pathf(ca, "%s/../ca", sdir);
    pathf(csr, "%s/station.csr", sdir);
    pathf(pem, "%s/../line1.pem", sdir);
    pathf(root, "%s/ops-root.pem", ca);
    pathf(dev_root, "%s/root.pem", ca);
    make_ca(ca, csr, pem);

    /* A certificate for another key (an openssl key with the same name) is refused. */
    pathf(other, "%s/../other.pem", sdir);
    ck_assert_int_eq(tu_sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '%s.key' "
                           "-subj /CN=line1 -out '%s.csr' 2>/dev/null && '%s' station add --dir '%s' --name line1b "
                           "--csr '%s.csr' --out '%s' %s",
                           other, other, CAMTRUST_CA_BIN, ca, other, other, quiet),
                     0);
    ck_assert_int_eq(station_install(sdir, other, root, NULL, NULL), CT_ERR_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "another key"));
    /* The right certificate with another root (the device root) is refused. */
    ck_assert_int_eq(station_install(sdir, pem, dev_root, NULL, NULL), CT_ERR_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "does not chain"));
    ck_assert_int_ne(tu_sh("test -e '%s/station.pem'", sdir), 0);
    ck_assert_int_ne(tu_sh("test -e '%s/ops-root.pem'", sdir), 0);

    ck_assert_int_eq(station_install(sdir, pem, root, NULL, NULL), CT_OK);
    ck_assert_int_eq(tu_sh("openssl verify -CAfile '%s/ops-root.pem' -untrusted '%s/station.pem' '%s/station.pem' %s",
                           sdir, sdir, sdir, quiet),
                     0);
}
END_TEST

/* The CA's checkpoint key is pinned once: written in its canonical form; another key, or a malformed one, is
 * refused and leaves the pinned one. */
START_TEST(test_install_log_vkey)
{
    char ca[TPATH], csr[TPATH], pem[TPATH], root[TPATH], vkey[TPATH], other[TPATH], pinned[TPATH], text[400];
    pathf(ca, "%s/../ca", sdir);
    pathf(csr, "%s/station.csr", sdir);
    pathf(pem, "%s/../line1.pem", sdir);
    pathf(root, "%s/ops-root.pem", ca);
    pathf(vkey, "%s/log.vkey", ca);
    pathf(pinned, "%s/" STATION_LOG_VKEY, sdir);
    make_ca(ca, csr, pem);
    pathf(other, "%s/../other.vkey", sdir);
    FILE *f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    fputs("camtrust.example.com/x+00000000+AQ==\n", f);
    fclose(f);
    ck_assert_int_ne(station_install(sdir, pem, root, other, NULL), CT_OK);
    ck_assert_int_ne(tu_sh("test -e '%s'", pinned), 0);

    ck_assert_int_eq(station_install(sdir, pem, root, vkey, NULL), CT_OK);
    ck_assert_int_eq(tu_sh("cmp -s '%s' '%s'", vkey, pinned), 0);
    ck_assert_int_eq(station_install(sdir, pem, root, NULL, NULL), CT_OK); /* installing again keeps the pin */
    ck_assert_int_eq(tu_sh("cmp -s '%s' '%s'", vkey, pinned), 0);

    /* The same origin, another key: refused, the pinned one kept. */
    uint8_t pub[CT_NOTE_PUB_LEN] = {1, 2, 3};
    ct_note_verifier v;
    ck_assert_int_eq(ct_note_verifier_make("camtrust.example.com/example-camera-maker/issuance", pub, &v), CT_OK);
    ck_assert_int_eq(ct_note_verifier_format(&v, text, sizeof text), CT_OK);
    f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", text);
    fclose(f);
    ck_assert_int_eq(station_install(sdir, pem, root, other, NULL), CT_ERR_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "pins another log key"));
    ck_assert_int_eq(tu_sh("cmp -s '%s' '%s'", vkey, pinned), 0);
}
END_TEST

/* The witnesses a station counts: checked whole before anything is written; K lands in station.conf. */
START_TEST(test_install_witnesses)
{
    char wkey[TPATH], logkey[TPATH], conf[TPATH], bad[TPATH];
    const char *one[] = {wkey}, *twice[] = {wkey, wkey}, *broken[] = {bad};
    station st;
    pathf(wkey, "%s/witness.vkey", NOTE_VECTORS);
    pathf(logkey, "%s/log.vkey", NOTE_VECTORS);
    pathf(conf, "%s/station.conf", sdir);
    pathf(bad, "%s/../bad.vkey", sdir);
    ck_assert_int_eq(tu_sh("cp '%s' '%s/conf.before' && echo 'w+00000000+BA==' >'%s'", conf, sdir, bad), 0);
    ck_assert_int_eq(station_install_witnesses(sdir, &(station_witnesses){NULL, 0, 1, NULL}), CT_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "only 0 witness keys configured"));
    ck_assert_int_eq(station_install_witnesses(sdir, &(station_witnesses){one, 1, 2, NULL}), CT_ERR_USAGE);
    /* no log key pinned */
    ck_assert_int_eq(station_install_witnesses(sdir, &(station_witnesses){one, 1, 1, NULL}), CT_ERR_USAGE);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "pins no log key"));
    ck_assert_int_eq(station_install_witnesses(sdir, &(station_witnesses){twice, 2, 1, NULL}), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "given twice"));
    ck_assert_int_eq(station_install_witnesses(sdir, &(station_witnesses){broken, 1, 0, NULL}), CT_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "line 1"));
    /* nothing written by any refusal */
    ck_assert_int_ne(tu_sh("test -e '%s/" STATION_WITNESSES_FILE "'", sdir), 0);
    ck_assert_int_eq(tu_sh("cmp -s '%s' '%s/conf.before'", conf, sdir), 0);

    ck_assert_int_eq(tu_sh("cp '%s' '%s/" STATION_LOG_VKEY "'", logkey, sdir), 0);
    station_quorum q = {0};
    ck_assert_int_eq(station_install_witnesses(sdir, &(station_witnesses){one, 1, 1, &q}), CT_OK);
    ck_assert_uint_eq(q.required, 1); /* 1 of 1: above half */
    ck_assert_uint_eq(q.configured, 1);
    ck_assert(!station_quorum_splittable(&q));
    ck_assert(station_quorum_splittable(&(station_quorum){1, 2}));
    ck_assert(!station_quorum_splittable(&(station_quorum){2, 2}));
    ck_assert(!station_quorum_splittable(&(station_quorum){0, 2})); /* none required: nothing to split */
    ck_assert_int_eq(tu_sh("cmp -s '%s' '%s/" STATION_WITNESSES_FILE "'", wkey, sdir), 0);
    ck_assert_int_eq(tu_sh("grep -c '^log.witnesses_required = 1$' '%s' | grep -qx 1", conf), 0);
    ck_assert_int_eq(station_settings_load(sdir, &st), CT_OK);
    ck_assert_uint_eq(st.witnesses_required, 1);
    /* the other settings as they were: only that line changed */
    ck_assert_int_eq(tu_sh("diff '%s' '%s/conf.before' | grep -c '^[<>]' | grep -qx 2", conf, sdir), 0);
    /* K alone; the list kept */
    ck_assert_int_eq(station_install_witnesses(sdir, &(station_witnesses){NULL, 0, 0, NULL}), CT_OK);
    ck_assert_int_eq(tu_sh("cmp -s '%s' '%s/" STATION_WITNESSES_FILE "'", wkey, sdir), 0);
    ck_assert_int_eq(station_settings_load(sdir, &st), CT_OK);
    ck_assert_uint_eq(st.witnesses_required, 0);
    /* a station.conf edited by hand: K out of range is refused at load */
    ck_assert_int_eq(tu_sh("sed -i 's/^log.witnesses_required = .*/log.witnesses_required = 99/' '%s'", conf), 0);
    ck_assert_int_eq(station_settings_load(sdir, &st), CT_ERR_CONFIG);
}
END_TEST

/* A checkpoint signed with the vectors' log key (make.py's seed): SIZE, a root from `root_seed`, AUDIT entries
 * whose hash is from `audit_seed`; written to DIR/NAME. */
static void signed_note(const char *name, int size, int root_seed, int audit, int audit_seed)
{
    ck_assert_int_eq(tu_sh("python3 -c \"import sys; sys.path.insert(0, '%s'); import make; k = make.key(1, make.ORIGIN); "
                           "t = make.checkpoint(make.ORIGIN, %d, bytes([%d]) * 32, (%d, bytes([%d]) * 32)); "
                           "open('%s/../%s', 'wb').write(t + b'\\n' + make.sig_line(k, t).encode())\"",
                           NOTE_VECTORS, size, root_seed, audit, audit_seed, sdir, name),
                     0);
}

static ct_err compare(const char *name)
{
    char path[TPATH], line[2048];
    pathf(path, "%s/../%s", sdir, name);
    return station_log_compare(sdir, path, NULL, 1000, line, sizeof line);
}

/* log compare without the CA: same size, same root (and audit chains that agree), or a fork named offline. */
START_TEST(test_log_compare_offline)
{
    ck_assert_int_eq(tu_sh("cp '%s/log.vkey' '%s/" STATION_LOG_VKEY "' && mkdir -p '%s/log'", NOTE_VECTORS, sdir, sdir), 0);
    ck_assert_int_eq(compare("none.note"), CT_ERR_NOT_FOUND); /* nothing kept yet */
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "no checkpoint kept yet"));
    signed_note("kept.note", 5, 1, 7, 1);
    ck_assert_int_eq(tu_sh("cp '%s/../kept.note' '%s/" STATION_LOG_KEPT "'", sdir, sdir), 0);
    ck_assert_int_eq(compare("kept.note"), CT_OK);
    signed_note("root.note", 5, 2, 7, 1);
    ck_assert_int_eq(compare("root.note"), CT_ERR_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "the CA's log forked: "));
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "root.note (size 5) have other roots"));
    signed_note("audit.note", 5, 1, 7, 2);
    ck_assert_int_eq(compare("audit.note"), CT_ERR_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "the CA's audit chain forked: ")); /* named as such, not the tree */
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "bind other audit chains of 7 entries"));
    signed_note("fewer.note", 6, 1, 6, 1); /* a larger tree over a shorter audit chain */
    ck_assert_int_eq(compare("fewer.note"), CT_ERR_INTEGRITY);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "binds more audit entries than"));
    signed_note("later.note", 5, 1, 9, 3); /* the same tree, more audit entries since: one history */
    ck_assert_int_eq(compare("later.note"), CT_OK);
    signed_note("larger.note", 8, 3, 9, 3);
    ck_assert_int_eq(compare("larger.note"), CT_ERR_USAGE); /* only the CA's proof can tell */
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "give --ca URL"));
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "(size 5, 7 audit entries) and "));
    /* another log's note, another origin, a note by no one the station knows */
    ck_assert_int_eq(tu_sh("cp '%s/other-origin.note' '%s/wrong-key-id.note' '%s/..'", NOTE_VECTORS, NOTE_VECTORS, sdir), 0);
    ck_assert_int_eq(compare("other-origin.note"), CT_ERR_INTEGRITY);
    ck_assert_int_eq(compare("wrong-key-id.note"), CT_ERR_INTEGRITY);
    ck_assert_msg(strstr(ct_err_detail(), "nor cosigned by any of the 0 witnesses"), "%s", ct_err_detail());
    /* a witness's state.note (the checkpoint and its own cosignature only): counted once the witness is */
    ck_assert_int_eq(tu_sh("sed '/^$/q' '%s/checkpoint.note' >'%s/../state.note' && cat '%s/cosig.line' >>'%s/../state.note' "
                           "&& cp '%s/checkpoint.note' '%s/" STATION_LOG_KEPT "'",
                           NOTE_VECTORS, sdir, NOTE_VECTORS, sdir, NOTE_VECTORS, sdir),
                     0);
    ck_assert_int_eq(compare("state.note"), CT_ERR_INTEGRITY);
    ck_assert_int_eq(tu_sh("cp '%s/witness.vkey' '%s/" STATION_WITNESSES_FILE "'", NOTE_VECTORS, sdir), 0);
    ck_assert_int_eq(compare("state.note"), CT_OK);
}
END_TEST

/* The CA's RFC 9162 paths as JSON: bounded and strict, a one-line refusal for anything else. */
static ct_err json_hashes(const char *json, size_t *n)
{
    ct_merkle_hash out[CT_MERKLE_MAX_PATH];
    ct_buf b = CT_BUF_INIT;
    ck_assert_int_eq(ct_buf_alloc(&b, strlen(json) + 1), CT_OK);
    ck_assert_int_eq(ct_buf_set(&b, json, strlen(json)), CT_OK);
    ct_err rc = ct_http_json_hashes(&b, "consistency_path", out, n);
    if (rc == CT_OK && *n) ck_assert_int_eq(out[*n - 1][0], 0xff);
    ct_buf_free(&b);
    return rc;
}

START_TEST(test_json_hashes)
{
    static const char h[] = "\"//////////////////////////////////////////8=\""; /* 32 bytes of 0xff */
    char json[8192];
    size_t n = 99;
    ck_assert_int_eq(json_hashes("{\"consistency_path\":[]}", &n), CT_OK);
    ck_assert_uint_eq(n, 0);
    snprintf(json, sizeof json, "{\"first\":1,\"consistency_path\":[%s,%s]}", h, h);
    ck_assert_int_eq(json_hashes(json, &n), CT_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(json_hashes("{\"audit_path\":[]}", &n), CT_ERR_BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "has no consistency_path"));
    ck_assert_int_eq(json_hashes("{\"consistency_path\":[\"AAAA\"]}", &n), CT_ERR_BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "not 32 bytes"));
    snprintf(json, sizeof json, "{\"consistency_path\":[%s", h);
    ck_assert_int_eq(json_hashes(json, &n), CT_ERR_BAD_REQUEST);
    ck_assert_int_eq(json_hashes("{\"consistency_path\":[\"AAAA", &n), CT_ERR_BAD_REQUEST);
    ck_assert_int_eq(json_hashes("{\"consistency_path\":[1]}", &n), CT_ERR_BAD_REQUEST);
    /* More hashes than any tree of 2^63 leaves needs. */
    size_t off = (size_t)snprintf(json, sizeof json, "{\"consistency_path\":[");
    for (int i = 0; i <= CT_MERKLE_MAX_PATH; i++) off += (size_t)snprintf(json + off, sizeof json - off, "%s%s", i ? "," : "", h);
    snprintf(json + off, sizeof json - off, "]}");
    ck_assert_int_eq(json_hashes(json, &n), CT_ERR_BAD_REQUEST);
}
END_TEST

/* ---------------- the EST client against camtrust-ca serve ---------------- */

/* Made once per test case (in the parent, with binaries only: no PKCS#11 there), served for all its tests. */
static char est_dir[600];
static pid_t ca_pid[2];
static int ca_port[2];

/* `camtrust-ca serve` on a free loopback port; waits for its "listening" line. */
static void serve(const char *ca, int i)
{
    char log[TPATH];
    pathf(log, "%s/serve%d.log", est_dir, i);
    for (int attempt = 0; attempt < 5; attempt++) {
        ca_port[i] = 20000 + (int)((unsigned)rand() % 40000);
        char listen[64];
        pathf(listen, "127.0.0.1:%d", ca_port[i]);
        ca_pid[i] = fork();
        ck_assert_int_ge(ca_pid[i], 0);
        if (ca_pid[i] == 0) {
            if (!freopen(log, "w", stderr)) _exit(127);
            execl(CAMTRUST_CA_BIN, CAMTRUST_CA_BIN, "serve", "--dir", ca, "--listen", listen, (char *)NULL);
            _exit(127);
        }
        for (int w = 0; w < 200; w++) {
            if (tu_sh("grep -q event=listening '%s'", log) == 0) return;
            if (waitpid(ca_pid[i], NULL, WNOHANG) == ca_pid[i]) break;
            usleep(50000);
        }
        kill(ca_pid[i], SIGKILL);
        waitpid(ca_pid[i], NULL, 0);
    }
    ck_abort_msg("camtrust-ca serve did not start");
}

static void est_world_setup(void)
{
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    pathf(est_dir, "%s", tu_tmpdir("station-est"));
    char ca[TPATH], stn[TPATH], csr[TPATH], pem[TPATH], ca2[TPATH];
    pathf(ca, "%s/ca", est_dir);
    pathf(ca2, "%s/ca2", est_dir);
    pathf(stn, "%s/stn", est_dir);
    pathf(csr, "%s/station.csr", stn);
    pathf(pem, "%s/line1.pem", est_dir);
    ck_assert_int_eq(tu_sh("'%s' init --dir '%s' --name line1 %s", CAMTRUST_STATION_BIN, stn, quiet), 0);
    make_ca(ca, csr, pem);
    ck_assert_int_eq(tu_sh("'%s' install --dir '%s' --cert '%s' --ca-root '%s/ops-root.pem' %s", CAMTRUST_STATION_BIN,
                           stn, pem, ca, quiet),
                     0);
    ck_assert_int_eq(tu_sh("printf 'SN1\\nSN2\\n' >'%s/serials' && '%s' order create --dir '%s' --station line1 "
                           "--model CX1 --serials '%s/serials' %s",
                           est_dir, CAMTRUST_CA_BIN, ca, est_dir, quiet),
                     0);
    /* A second CA whose server certificate names another host. */
    ck_assert_int_eq(tu_sh("mkdir -p '%s' && printf 'server.names = ca.invalid\\n' >'%s/camtrust-ca.conf'", ca2, ca2),
                     0);
    ck_assert_int_eq(tu_ca_create(ca2), 0);
    serve(ca, 0);
    serve(ca2, 1);
}

static void est_world_teardown(void)
{
    for (int i = 0; i < 2; i++) {
        if (ca_pid[i] <= 0) continue;
        kill(ca_pid[i], SIGTERM);
        waitpid(ca_pid[i], NULL, 0);
        ca_pid[i] = 0;
    }
}

static station st;
static ct_http_client *est;
static const uint8_t key_id[] = STATION_KEY_ID;

static ct_err client_for(const char *url, const char *trust, ct_http_client **out)
{
    char chain[TPATH];
    pathf(chain, "%s/stn/station.pem", est_dir);
    ct_http_config cfg = {.url = url, .trust_pem_path = trust, .chain_pem_path = chain, .dev_id = hsm_wolf_dev_id(st.hsm),
                      .key_id = key_id, .key_id_len = sizeof key_id, .timeout_ms = 5000};
    return ct_http_client_new(&cfg, out);
}

static void est_setup(void)
{
    char stn[TPATH], url[64], trust[TPATH];
    pathf(stn, "%s/stn", est_dir);
    pathf(trust, "%s/ops-root.pem", stn);
    pathf(url, "https://localhost:%d", ca_port[0]);
    ck_assert_int_eq(station_open(stn, 0, &st), CT_OK);
    ck_assert_int_eq(client_for(url, trust, &est), CT_OK);
}

static void est_teardown(void)
{
    ct_http_client_free(est);
    est = NULL;
    station_close(&st);
}

/* A camera's CSR, made by openssl. */
static void camera_csr(const char *name, const char *serial, ct_buf *der)
{
    char path[TPATH];
    pathf(path, "%s/%s-%ld.der", est_dir, name, (long)getpid());
    ck_assert_int_eq(tu_sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null "
                           "-subj '/serialNumber=%s/CN=x' -outform DER -out '%s' 2>/dev/null",
                           serial, path),
                     0);
    ck_assert_int_eq(ct_file_read(path, PKI_MAX_CSR_DER, der), CT_OK);
}

static void read_pem_cert(const char *path, ct_buf *der)
{
    ct_buf pem = CT_BUF_INIT;
    ck_assert_int_eq(ct_file_read(path, 65536, &pem), CT_OK);
    ck_assert_int_eq(ct_buf_alloc(der, PKI_MAX_CERT_DER), CT_OK);
    ck_assert_int_eq(ct_pem_decode(pem.data, pem.len, "CERTIFICATE", 0, der), CT_OK);
    ct_buf_free(&pem);
}

START_TEST(test_est_cacerts)
{
    est_certs certs = {.n = 0};
    ct_buf root = CT_BUF_INIT;
    char path[TPATH];
    ck_assert_int_eq(est_cacerts(est, &certs), CT_OK);
    ck_assert_uint_eq(certs.n, 2);
    pathf(path, "%s/ca/root.pem", est_dir);
    read_pem_cert(path, &root);
    /* The device issuing CA first, signed by the device root; then the root itself. */
    ck_assert_int_eq(pki_cert_verify_signed_by(certs.der[0].data, certs.der[0].len, root.data, root.len, time(NULL)),
                     CT_OK);
    ck_assert_mem_eq(certs.der[1].data, root.data, root.len);
    est_certs_free(&certs);
    ct_buf_free(&root);
}
END_TEST

START_TEST(test_est_enroll)
{
    ct_buf csr = CT_BUF_INIT, leaf = CT_BUF_INIT, again = CT_BUF_INIT, media = CT_BUF_INIT, mcsr = CT_BUF_INIT;
    pki_cert_info a, b, m;
    camera_csr("sn1", "SN1", &csr);
    ck_assert_int_eq(est_simpleenroll(est, NULL, csr.data, csr.len, &leaf), CT_OK);
    ck_assert_int_eq(pki_cert_parse_info(leaf.data, leaf.len, &a), CT_OK);
    ck_assert_str_eq(a.subject_serial, "SN1");
    /* The same request again, on the same kept connection: the same certificate (a safe retry). */
    ck_assert_int_eq(est_simpleenroll(est, "", csr.data, csr.len, &again), CT_OK);
    ck_assert_int_eq(pki_cert_parse_info(again.data, again.len, &b), CT_OK);
    ck_assert_mem_eq(a.cert_sha256, b.cert_sha256, 32);
    /* The media-signing profile, under its EST label. */
    camera_csr("sn1m", "SN1", &mcsr);
    ck_assert_int_eq(est_simpleenroll(est, "media-signing", mcsr.data, mcsr.len, &media), CT_OK);
    ck_assert_int_eq(pki_cert_parse_info(media.data, media.len, &m), CT_OK);
    ck_assert_str_eq(m.subject_serial, "SN1");
    ck_assert_mem_ne(m.spki_sha256, a.spki_sha256, 32);
    ct_buf_free(&csr);
    ct_buf_free(&leaf);
    ct_buf_free(&again);
    ct_buf_free(&media);
    ct_buf_free(&mcsr);
}
END_TEST

START_TEST(test_est_refused)
{
    ct_buf csr = CT_BUF_INIT, leaf = CT_BUF_INIT, other = CT_BUF_INIT;
    camera_csr("sn999", "SN999", &csr);
    ck_assert_int_eq(est_simpleenroll(est, NULL, csr.data, csr.len, &leaf), CT_ERR_FORBIDDEN);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "HTTP 403"));
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "SN999")); /* the CA's own reason */
    ck_assert_ptr_null(leaf.data);
    /* An unknown label: 404, still on the same client. */
    camera_csr("sn2", "SN2", &other);
    ck_assert_int_eq(est_simpleenroll(est, "no-such-label", other.data, other.len, &leaf), CT_ERR_NOT_FOUND);
    /* A second key for an issued serial: 409. */
    ck_assert_int_eq(est_simpleenroll(est, NULL, other.data, other.len, &leaf), CT_OK);
    ct_buf_free(&leaf);
    ct_buf_free(&csr);
    camera_csr("sn2b", "SN2", &csr);
    ck_assert_int_eq(est_simpleenroll(est, NULL, csr.data, csr.len, &leaf), CT_ERR_ALREADY_ISSUED);
    ct_buf_free(&csr);
    ct_buf_free(&other);
}
END_TEST

START_TEST(test_est_ca_down)
{
    ct_http_client *down = NULL;
    est_certs certs = {.n = 0};
    char url[64], trust[TPATH];
    pathf(trust, "%s/stn/ops-root.pem", est_dir);
    /* The port of a server that was started and stopped: nothing listens there now. */
    int fd = -1, port = 0;
    ck_assert_int_eq(factory_listen("127.0.0.1:0", &fd, &port), CT_OK);
    close(fd);
    pathf(url, "https://127.0.0.1:%d", port);
    ck_assert_int_eq(client_for(url, trust, &down), CT_OK);
    ck_assert_int_eq(est_cacerts(down, &certs), CT_ERR_IO);
    char want[96];
    pathf(want, "CA unreachable at %s", url);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), want));
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "refused"));
    ct_http_client_free(down);
}
END_TEST

START_TEST(test_est_server_checked)
{
    ct_http_client *c = NULL;
    est_certs certs = {.n = 0};
    char url[64], trust[TPATH], trust2[TPATH];
    pathf(trust, "%s/stn/ops-root.pem", est_dir);
    pathf(trust2, "%s/ca2/ops-root.pem", est_dir);
    /* The right CA by its IP address (in its certificate too). */
    pathf(url, "https://127.0.0.1:%d/", ca_port[0]);
    ck_assert_int_eq(client_for(url, trust, &c), CT_OK);
    ck_assert_int_eq(est_cacerts(c, &certs), CT_OK);
    est_certs_free(&certs);
    ct_http_client_free(c);
    /* Another CA, not under our operations root: the handshake fails. */
    pathf(url, "https://localhost:%d", ca_port[1]);
    ck_assert_int_eq(client_for(url, trust, &c), CT_OK);
    ck_assert_int_eq(est_cacerts(c, &certs), CT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "TLS with the CA"));
    ct_http_client_free(c);
    /* Trusting that CA, but its certificate names ca.invalid, not localhost: refused by name. */
    ck_assert_int_eq(client_for(url, trust2, &c), CT_OK);
    ck_assert_int_eq(est_cacerts(c, &certs), CT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ct_err_detail(), "TLS with the CA"));
    ct_http_client_free(c);
}
END_TEST

START_TEST(test_est_bad_urls)
{
    ct_http_client *c = NULL;
    char trust[TPATH];
    pathf(trust, "%s/stn/ops-root.pem", est_dir);
    const char *bad[] = {"http://localhost:1", "https://", "https://localhost:0", "https://localhost:99999",
                         "https://localhost:80/est", "https://[::1", "localhost:8443"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(client_for(bad[i], trust, &c), CT_ERR_USAGE);
    ck_assert_ptr_null(c);
}
END_TEST

static Suite *station_suite(void)
{
    Suite *s = suite_create("station");
    TCase *local = tcase_create("init-install");
    tcase_set_timeout(local, 120);
    tcase_add_checked_fixture(local, init_setup, NULL);
    tcase_add_test(local, test_init_key_and_csr);
    tcase_add_test(local, test_init_bad_name);
    tcase_add_test(local, test_install);
    tcase_add_test(local, test_install_log_vkey);
    tcase_add_test(local, test_json_hashes);
    tcase_add_test(local, test_install_witnesses);
    tcase_add_test(local, test_log_compare_offline);
    suite_add_tcase(s, local);

    TCase *e = tcase_create("est-client");
    tcase_set_timeout(e, 60);
    tcase_add_unchecked_fixture(e, est_world_setup, est_world_teardown);
    tcase_add_checked_fixture(e, est_setup, est_teardown);
    tcase_add_test(e, test_est_cacerts);
    tcase_add_test(e, test_est_enroll);
    tcase_add_test(e, test_est_refused);
    tcase_add_test(e, test_est_ca_down);
    tcase_add_test(e, test_est_server_checked);
    tcase_add_test(e, test_est_bad_urls);
    suite_add_tcase(s, e);
    return s;
}

int main(void) { return tu_run_suite(station_suite()); }
