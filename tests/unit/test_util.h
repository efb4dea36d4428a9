/* Helpers shared by the Check unit tests: temporary folders and real SoftHSM tokens. */
#ifndef CAMTRUST_TEST_UTIL_H
#define CAMTRUST_TEST_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

#define TU_PIN "1234"
#define TU_SO_PIN "5678"

/* A fresh empty folder for this test process (under $CAMTRUST_TEST_TMP or /tmp). Valid until exit. */
const char *tu_tmpdir(const char *tag);

/* Writes DIR/softhsm2.conf with DIR/tokens, exports SOFTHSM2_CONF, and initialises a token LABEL with
 * TU_PIN / TU_SO_PIN using softhsm2-util (the real tool, independent of our hsm module). */
void tu_softhsm_token(const char *dir, const char *label);

/* Runs a shell command; returns its exit status (or -1). */
int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Makes the CA folder `dir` as an operator does (tests/helpers/ca_create.sh: init, the key ceremony in the root
 * vault, install), once per test binary run: later calls for a `dir` that does not exist get a copy of that CA
 * (same keys), so the ceremony's slow part runs once. Only in test binaries built with CAMTRUST_CA_BIN. Returns
 * the exit status. */
int tu_ca_create(const char *dir);

/* Whether the CA under test keeps its records in PostgreSQL (CAMTRUST_TEST_DB=postgresql, under tests/helpers/pg.sh):
 * the checks that edit the SQLite file itself run on SQLite only. */
bool tu_on_pg(void);

/* `select count(*) from TABLE_WHERE` in a CA's records: its SQLite file `db_path` read with the sqlite3 CLI or, on
 * PostgreSQL, its database `db_url` with psql (real clients, not our db module). */
long tu_count_rows(const char *db_path, const char *db_url, const char *table_where);

/* Runs a test suite and returns the process exit code. */
int tu_run_suite(Suite *s);

#endif
