#define _GNU_SOURCE
#include "test_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tu_tmpdir(const char *tag)
{
    static char paths[16][512];
    static int next;
    const char *base = getenv("CAMTRUST_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0700);
    char *p = paths[next++ % 16];
    snprintf(p, sizeof paths[0], "%s/%s-%ld-XXXXXX", base, tag, (long)getpid());
    ck_assert_ptr_nonnull(mkdtemp(p));
    return p;
}

int tu_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    ck_assert_int_lt(n, (int)sizeof cmd);
    int st = system(cmd);
    return st == -1 ? -1 : (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

void tu_softhsm_token(const char *dir, const char *label)
{
    char conf[600];
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
    fclose(f);
    ck_assert_int_eq(tu_sh("mkdir -p '%s/tokens'", dir), 0);
    setenv("SOFTHSM2_CONF", conf, 1);
    ck_assert_int_eq(tu_sh("softhsm2-util --init-token --free --label '%s' --so-pin %s --pin %s >/dev/null", label,
                           TU_SO_PIN, TU_PIN),
                     0);
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#ifdef CAMTRUST_CA_BIN
int tu_ca_create(const char *dir)
{
    static char vault[512];
    if (!vault[0]) { /* one per test binary run: its forked tests share their parent */
        const char *tmp = getenv("CAMTRUST_TEST_TMP");
        snprintf(vault, sizeof vault, "%s/vault-%ld", tmp && *tmp ? tmp : "/tmp", (long)getppid());
    }
    return tu_sh("'%s' '%s' '%s' '%s' '%s.ca' >/dev/null 2>&1", CAMTRUST_CA_CREATE, CAMTRUST_CA_BIN, dir, vault, vault);
}
#endif

bool tu_on_pg(void)
{
    const char *db = getenv("CAMTRUST_TEST_DB");
    return db && strcmp(db, "postgresql") == 0;
}

long tu_count_rows(const char *db_path, const char *db_url, const char *table_where)
{
    char cmd[2600];
    if (tu_on_pg())
        snprintf(cmd, sizeof cmd, "psql '%s' -Atqc \"select count(*) from %s\"", db_url, table_where);
    else
        snprintf(cmd, sizeof cmd, "sqlite3 -readonly '%s' \"select count(*) from %s\"", db_path, table_where);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    long n = -1;
    ck_assert_int_eq(fscanf(p, "%ld", &n), 1);
    pclose(p);
    return n;
}
