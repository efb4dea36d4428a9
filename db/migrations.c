/* db migrations: the schema as numbered steps, each run once in its own transaction (db.c migrate_one). */
#include "db_priv.h"

/* ---------------------------------------------------------------------------------------------------------
 * Schema: numbered migrations. PRAGMA user_version (PostgreSQL: the table camtrust_schema) holds how many are
 * applied; each runs in its own write transaction together with the version bump and an audit event, so a crash
 * leaves either all or nothing, and processes or nodes migrating at once take turns (the loser finds it done).
 * Append new migrations at the end; never edit an applied one.
 * ------------------------------------------------------------------------------------------------------- */
/* Migration 15's table (the dialects differ in the blob type and the triggers). */
#define MIGRATION_CERTIFIED_KEYS(blob_type)                                                                        \
    "CREATE TABLE certified_keys ("                                                                               \
    "  spki_sha256 " blob_type " PRIMARY KEY CHECK (length(spki_sha256) = 32),"                                   \
    "  device_serial TEXT NOT NULL,"                                                                              \
    "  profile TEXT NOT NULL,"                                                                                    \
    "  cert_serial_hex TEXT NOT NULL);"                                                                           \
    "INSERT INTO certified_keys (spki_sha256, device_serial, profile, cert_serial_hex)"                           \
    "  SELECT spki_sha256, device_serial, profile, cert_serial_hex FROM certificates c"                           \
    "  WHERE rowid = (SELECT min(rowid) FROM certificates d WHERE d.spki_sha256 = c.spki_sha256);"

static const char *const k_migrations[] = {
    /* 1: the audit chain first, so every later migration is itself audited. */
    "CREATE TABLE audit ("
    "  seq INTEGER PRIMARY KEY,"
    "  ts INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, outcome TEXT NOT NULL,"
    "  detail TEXT NOT NULL,"
    "  prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),"
    "  hash BLOB NOT NULL CHECK (length(hash) = 32));"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;",

    /* 2: stations, orders and certificates. */
    "CREATE TABLE stations ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    "  cert_sha256 BLOB NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),"
    "  cert_serial_hex TEXT NOT NULL,"
    "  cert_der BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE orders ("
    "  id INTEGER PRIMARY KEY,"
    "  station_id INTEGER NOT NULL REFERENCES stations(id),"
    "  model TEXT NOT NULL,"
    "  open INTEGER NOT NULL DEFAULT 1 CHECK (open IN (0, 1)),"
    "  created_at INTEGER NOT NULL,"
    "  closed_at INTEGER);"
    "CREATE INDEX orders_station_open ON orders(station_id, open);"
    "CREATE TABLE order_serials ("
    "  order_id INTEGER NOT NULL REFERENCES orders(id),"
    "  serial TEXT NOT NULL,"
    "  PRIMARY KEY (order_id, serial));"
    "CREATE INDEX order_serials_serial ON order_serials(serial);"
    /* Backstop for the rule db_order_create checks (and names the serial for): one open order per serial. */
    "CREATE TRIGGER order_serials_one_open BEFORE INSERT ON order_serials"
    "  WHEN EXISTS (SELECT 1 FROM order_serials s JOIN orders o ON o.id = s.order_id"
    "               WHERE s.serial = NEW.serial AND o.open = 1 AND s.order_id <> NEW.order_id)"
    "  BEGIN SELECT RAISE(ABORT, 'serial is already in another open order'); END;"
    "CREATE TABLE certificates ("
    "  cert_serial_hex TEXT PRIMARY KEY,"
    "  device_serial TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  station_id INTEGER REFERENCES stations(id),"
    "  order_id INTEGER REFERENCES orders(id),"
    "  spki_sha256 BLOB NOT NULL CHECK (length(spki_sha256) = 32),"
    "  der BLOB NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'superseded', 'revoked')),"
    "  issued_at INTEGER NOT NULL);"
    /* The database itself refuses a second current certificate for a serial and profile. */
    "CREATE UNIQUE INDEX certificates_one_valid ON certificates(device_serial, profile) WHERE status = 'valid';"
    "CREATE INDEX certificates_order ON certificates(order_id);",

    /* 3: revocation. A revoked certificate has both its time and its RFC 5280 reason code, and stays revoked;
     * revocation_state counts revocations (so servers notice them) and CRLs (cRLNumber). */
    "ALTER TABLE certificates ADD COLUMN revoked_at INTEGER;"
    "ALTER TABLE certificates ADD COLUMN revocation_reason INTEGER CHECK (revocation_reason BETWEEN 0 AND 10);"
    "CREATE INDEX certificates_station ON certificates(station_id);"
    "CREATE INDEX certificates_device ON certificates(device_serial);"
    "CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE status = 'revoked';"
    "CREATE TRIGGER certificates_revocation_complete BEFORE UPDATE OF status ON certificates"
    "  WHEN NEW.status = 'revoked' AND (NEW.revoked_at IS NULL OR NEW.revocation_reason IS NULL)"
    "  BEGIN SELECT RAISE(ABORT, 'a revocation needs its time and reason'); END;"
    "CREATE TRIGGER certificates_revocation_final BEFORE UPDATE ON certificates WHEN OLD.status = 'revoked'"
    "  BEGIN SELECT RAISE(ABORT, 'a revoked certificate stays revoked'); END;"
    "CREATE TABLE revocation_state ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  epoch INTEGER NOT NULL,"
    "  crl_number INTEGER NOT NULL);"
    "INSERT INTO revocation_state (id, epoch, crl_number) VALUES (1, 0, 0);",

    /* 4: officers (security officers and auditors, each with its client certificate), and indexes for what they
     * search: certificates by issuance time, audit entries by outcome and time (denials). */
    "CREATE TABLE officers ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL CHECK (role IN ('auditor', 'officer')),"
    "  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    "  cert_sha256 BLOB NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),"
    "  cert_serial_hex TEXT NOT NULL,"
    "  cert_der BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX certificates_issued ON certificates(issued_at);"
    "CREATE INDEX audit_outcome ON audit(outcome, ts);",

    /* 5: the issuance log (db_log.h): an RFC 9162 Merkle tree over the certificates' DER in issuance order, and its
     * signed tree heads, both append-only. Certificates recorded before it are logged now, in the order they were
     * recorded (ct_leaf_hash is db/log.c's SQL function). */
    "CREATE TABLE log_leaves ("
    "  leaf_index INTEGER PRIMARY KEY CHECK (leaf_index >= 0),"
    "  cert_serial_hex TEXT NOT NULL UNIQUE REFERENCES certificates(cert_serial_hex),"
    "  leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32));"
    "CREATE TABLE log_tree_heads ("
    "  id INTEGER PRIMARY KEY,"
    "  tree_size INTEGER NOT NULL CHECK (tree_size >= 0),"
    "  timestamp_ms INTEGER NOT NULL,"
    "  root_hash BLOB NOT NULL CHECK (length(root_hash) = 32),"
    "  signature BLOB NOT NULL);"
    "CREATE TRIGGER log_leaves_no_update BEFORE UPDATE ON log_leaves"
    "  BEGIN SELECT RAISE(ABORT, 'the issuance log is append-only'); END;"
    "CREATE TRIGGER log_leaves_no_delete BEFORE DELETE ON log_leaves"
    "  BEGIN SELECT RAISE(ABORT, 'the issuance log is append-only'); END;"
    "CREATE TRIGGER log_tree_heads_no_update BEFORE UPDATE ON log_tree_heads"
    "  BEGIN SELECT RAISE(ABORT, 'tree heads are append-only'); END;"
    "CREATE TRIGGER log_tree_heads_no_delete BEFORE DELETE ON log_tree_heads"
    "  BEGIN SELECT RAISE(ABORT, 'tree heads are append-only'); END;"
    "INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash)"
    "  SELECT row_number() OVER (ORDER BY rowid) - 1, cert_serial_hex, ct_leaf_hash(der) FROM certificates;",

    /* 6: the operations issuing CA's CRL (revoked viewers) counts its own cRLNumber: RFC 5280 numbers are per
     * issuer, and the device CRL's sequence stays as it was. */
    "ALTER TABLE revocation_state ADD COLUMN ops_crl_number INTEGER NOT NULL DEFAULT 0;",

    /* 7: a device serial is also a DNS name, so serials are one case-insensitively: indexes to find them that way
     * and backstops for the rules db_order_create and issuance check (and name the serial for). Rows already
     * recorded stay as they are. An order line may re-provision a serial whose certificates were revoked:
     * revoked_seen counts its revoked certificates when the line was opened, and the line allows issuance only
     * while no later revocation of that serial exists; such a line may sit beside the serial's line in another
     * open order (the newest line is the one enrollment uses). */
    "CREATE INDEX order_serials_serial_nocase ON order_serials(serial COLLATE NOCASE);"
    "CREATE INDEX certificates_device_nocase ON certificates(device_serial COLLATE NOCASE);"
    "ALTER TABLE order_serials ADD COLUMN revoked_seen INTEGER NOT NULL DEFAULT 0 CHECK (revoked_seen >= 0);"
    "DROP TRIGGER order_serials_one_open;"
    "CREATE TRIGGER order_serials_one_open BEFORE INSERT ON order_serials"
    "  WHEN NEW.revoked_seen = 0 AND EXISTS (SELECT 1 FROM order_serials s JOIN orders o ON o.id = s.order_id"
    "               WHERE s.serial = NEW.serial AND o.open = 1 AND s.order_id <> NEW.order_id)"
    "  BEGIN SELECT RAISE(ABORT, 'serial is already in another open order'); END;"
    "CREATE TRIGGER order_serials_one_case BEFORE INSERT ON order_serials"
    "  WHEN EXISTS (SELECT 1 FROM order_serials WHERE serial = NEW.serial COLLATE NOCASE AND serial <> NEW.serial)"
    "  BEGIN SELECT RAISE(ABORT, 'serial differs only by case from an ordered one'); END;"
    "CREATE TRIGGER certificates_one_case BEFORE INSERT ON certificates"
    "  WHEN NEW.order_id IS NOT NULL AND NEW.profile NOT IN ('viewer', 'station', 'officer') AND EXISTS ("
    "    SELECT 1 FROM certificates"
    "    WHERE device_serial = NEW.device_serial COLLATE NOCASE AND device_serial <> NEW.device_serial"
    "    AND profile NOT IN ('viewer', 'station', 'officer'))"
    "  BEGIN SELECT RAISE(ABORT, 'device serial differs only by case from an issued one'); END;",

    /* 8: the issuance log's checkpoints (C2SP signed notes, Ed25519 in the token), kept whole as signed, with
     * what they bind: tree size and the audit chain's length. Append-only like the tree heads. */
    "CREATE TABLE log_checkpoints ("
    "  id INTEGER PRIMARY KEY,"
    "  tree_size INTEGER NOT NULL CHECK (tree_size >= 0),"
    "  audit_entries INTEGER NOT NULL CHECK (audit_entries >= 0),"
    "  note TEXT NOT NULL);"
    "CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE ON log_checkpoints"
    "  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
    "CREATE TRIGGER log_checkpoints_no_delete BEFORE DELETE ON log_checkpoints"
    "  BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;",
    /* 9: state changes are audited with what rebuilds them (rebuild.c); migrate_one writes the state as it stands
     * (db_state_baseline_tx) after this script, for the rebuild to start from. */
    "CREATE INDEX audit_action ON audit(action, seq);",
    /* 10: witnesses' cosignatures of checkpoints (c2sp.org/tlog-cosignature), one per witness and checkpoint. */
    "CREATE TABLE log_cosignatures ("
    "  id INTEGER PRIMARY KEY,"
    "  checkpoint_id INTEGER NOT NULL REFERENCES log_checkpoints(id),"
    "  witness TEXT NOT NULL,"
    "  witness_time INTEGER NOT NULL CHECK (witness_time >= 0),"
    "  line TEXT NOT NULL,"
    "  received INTEGER NOT NULL,"
    "  UNIQUE (checkpoint_id, witness));"
    "CREATE TRIGGER log_cosignatures_no_update BEFORE UPDATE ON log_cosignatures"
    "  BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;"
    "CREATE TRIGGER log_cosignatures_no_delete BEFORE DELETE ON log_cosignatures"
    "  BEGIN SELECT RAISE(ABORT, 'cosignatures are append-only'); END;",
    /* 11: witnesses' reports of an inconsistent log (POST /log/witness-report), kept whole as received once the
     * CA checked them against its own key and database: two signed checkpoints that cannot both be true. */
    "CREATE TABLE log_witness_reports ("
    "  id INTEGER PRIMARY KEY,"
    "  received INTEGER NOT NULL,"
    "  witness TEXT NOT NULL," /* the configured witness whose cosignature the kept checkpoint carries; '' none */
    "  kind TEXT NOT NULL CHECK (kind IN ('fork', 'rollback')),"
    "  kept_size INTEGER NOT NULL CHECK (kept_size >= 0),"
    "  served_size INTEGER NOT NULL CHECK (served_size >= 0),"
    "  reason TEXT NOT NULL,"
    "  report TEXT NOT NULL UNIQUE);"
    "CREATE TRIGGER log_witness_reports_no_update BEFORE UPDATE ON log_witness_reports"
    "  BEGIN SELECT RAISE(ABORT, 'witness reports are append-only'); END;"
    "CREATE TRIGGER log_witness_reports_no_delete BEFORE DELETE ON log_witness_reports"
    "  BEGIN SELECT RAISE(ABORT, 'witness reports are append-only'); END;",
    /* 12: issuing CA generations (db/issuing.c): each certificate of the device or operations issuing CA that the
     * offline roots certified, in order, and which of them signed each certificate (NULL: recorded before this, by
     * the kind's first generation). Append-only: an old generation keeps answering for what it signed. */
    DB_MIGRATION_ISSUING_CAS,
    /* 13: the database names its CA (the CA folder's ca-id): a node whose folder is another CA's is refused at start
     * (db_open_config). Append-only: a database never changes CA. */
    "CREATE TABLE ca_identity ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  ca_id TEXT NOT NULL,"
    "  named_at INTEGER NOT NULL);"
    "CREATE TRIGGER ca_identity_no_update BEFORE UPDATE ON ca_identity"
    "  BEGIN SELECT RAISE(ABORT, 'the database names its CA once'); END;"
    "CREATE TRIGGER ca_identity_no_delete BEFORE DELETE ON ca_identity"
    "  BEGIN SELECT RAISE(ABORT, 'the database names its CA once'); END;",
    /* 14: leases and the signer's CRLs (db/lease.c). */
    DB_MIGRATION_LEASES,
    /* 15: one public key, one holder: the device serial and profile whose certificate first certified each key
     * (db/certs.c key_claim_tx). Its primary key makes two issuances of one key for different holders, on any
     * node, collide; renewals of the same holder share its row. Keys certified before this are claimed by their
     * first certificate (rowid order; a key already shared stays with that one). Append-only. */
    MIGRATION_CERTIFIED_KEYS("BLOB")
    "CREATE TRIGGER certified_keys_no_update BEFORE UPDATE ON certified_keys"
    "  BEGIN SELECT RAISE(ABORT, 'a certified key keeps its holder'); END;"
    "CREATE TRIGGER certified_keys_no_delete BEFORE DELETE ON certified_keys"
    "  BEGIN SELECT RAISE(ABORT, 'a certified key keeps its holder'); END;",
    /* 16: the keys revoked for keyCompromise (RFC 5280 reason 1), which no issuance may certify again, whatever
     * serial and profile (db/certs.c key_not_compromised). Partial: it holds only those certificates, so issuance
     * (a new row is valid) never writes it, and a key's look-up reads a handful of entries. The same text runs on
     * PostgreSQL. */
    ("CREATE INDEX certificates_key_compromised ON certificates(spki_sha256)"
     "  WHERE status = 'revoked' AND revocation_reason = 1;"), /* (one element: clang's -Wstring-concatenation) */
    /* 17: every certificate by its key: a revocation for keyCompromise revokes the other certificates of that key
     * (db/revoke.c revoke_same_key) in its write transaction, which would otherwise read the whole table while
     * issuance waits. The same text runs on PostgreSQL. */
    "CREATE INDEX certificates_by_key ON certificates(spki_sha256);",
    /* 18: an audit entry's text as its hash covers it, where the text columns cannot hold it: entries written before
     * outside text was kept as '?' (db_audit_append_tx) may hold bytes that are not UTF-8, which PostgreSQL's text
     * refuses. db_copy stores such an entry's text with '?' for them and its five text fields as written here
     * (db/audit.c row_text reads them); NULL for every other entry. */
    "ALTER TABLE audit ADD COLUMN raw BLOB;",
    /* 19: no change to the tables: the version alone. Checkpoints bind the audit tree's root from this build on
     * (camtrust-audit-root), and one signed without it after one with it is refused for good by witnesses and
     * stations, and audit verify reports it (checkpoints BROKEN). A node of an older build, still serving beside an
     * upgraded one, would sign such a checkpoint whenever it holds the signer lease: this version stops it writing
     * (db.c read_version, "schema newer" in every write transaction; README, Upgrading several nodes). */
    "",
};

/* ---------------------------------------------------------------------------------------------------------
 * PostgreSQL's text of the migrations whose SQLite text does not run there (NULL: the same text). The dialect
 * differences: BIGINT for INTEGER (times and ids outgrow 32 bits), BYTEA for BLOB, identity columns for
 * INTEGER PRIMARY KEY (BY DEFAULT: `db migrate-to` copies ids), a `rowid` identity column where the SQLite
 * code reads certificates' rowid, and triggers as functions: ct_refuse(message) raises what SQLite's
 * RAISE(ABORT, message) says, the conditional ones check their condition first. COLLATE NOCASE reads the same
 * on both: PostgreSQL's "nocase" is an ICU case-insensitive collation.
 * ------------------------------------------------------------------------------------------------------- */
#define PG_REFUSE(trigger, when, table, msg)                                                                      \
    "CREATE TRIGGER " trigger " BEFORE " when " ON " table " FOR EACH ROW EXECUTE FUNCTION ct_refuse('" msg "');"
#define PG_APPEND_ONLY(table, msg)                                                                                \
    PG_REFUSE(table "_no_update", "UPDATE", table, msg) PG_REFUSE(table "_no_delete", "DELETE", table, msg)

static const char *const k_migrations_pg[] = {
    [0] = /* 1 */
    "CREATE FUNCTION ct_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;"
    "CREATE COLLATION IF NOT EXISTS nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);"
    "CREATE TABLE audit ("
    "  seq BIGINT PRIMARY KEY,"
    "  ts BIGINT NOT NULL,"
    "  actor TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL, outcome TEXT NOT NULL,"
    "  detail TEXT NOT NULL,"
    "  prev_hash BYTEA NOT NULL CHECK (length(prev_hash) = 32),"
    "  hash BYTEA NOT NULL CHECK (length(hash) = 32));"
    PG_APPEND_ONLY("audit", "audit log is append-only"),

    [1] = /* 2 */
    "CREATE TABLE stations ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  enabled BIGINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    "  cert_sha256 BYTEA NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),"
    "  cert_serial_hex TEXT NOT NULL,"
    "  cert_der BYTEA NOT NULL,"
    "  created_at BIGINT NOT NULL);"
    "CREATE TABLE orders ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  station_id BIGINT NOT NULL REFERENCES stations(id),"
    "  model TEXT NOT NULL,"
    "  open BIGINT NOT NULL DEFAULT 1 CHECK (open IN (0, 1)),"
    "  created_at BIGINT NOT NULL,"
    "  closed_at BIGINT);"
    "CREATE INDEX orders_station_open ON orders(station_id, open);"
    "CREATE TABLE order_serials ("
    "  order_id BIGINT NOT NULL REFERENCES orders(id),"
    "  serial TEXT NOT NULL,"
    "  PRIMARY KEY (order_id, serial));"
    "CREATE INDEX order_serials_serial ON order_serials(serial);"
    "CREATE FUNCTION order_serials_one_open() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  IF EXISTS (SELECT 1 FROM order_serials s JOIN orders o ON o.id = s.order_id"
    "             WHERE s.serial = NEW.serial AND o.open = 1 AND s.order_id <> NEW.order_id) THEN"
    "    RAISE EXCEPTION 'serial is already in another open order'; END IF;"
    "  RETURN NEW; END $$;"
    "CREATE TRIGGER order_serials_one_open BEFORE INSERT ON order_serials"
    "  FOR EACH ROW EXECUTE FUNCTION order_serials_one_open();"
    "CREATE TABLE certificates ("
    "  cert_serial_hex TEXT PRIMARY KEY,"
    "  device_serial TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  not_before BIGINT NOT NULL,"
    "  not_after BIGINT NOT NULL,"
    "  station_id BIGINT REFERENCES stations(id),"
    "  order_id BIGINT REFERENCES orders(id),"
    "  spki_sha256 BYTEA NOT NULL CHECK (length(spki_sha256) = 32),"
    "  der BYTEA NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'superseded', 'revoked')),"
    "  issued_at BIGINT NOT NULL,"
    "  rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE);" /* SQLite's implicit rowid: the order recorded */
    "CREATE UNIQUE INDEX certificates_one_valid ON certificates(device_serial, profile) WHERE status = 'valid';"
    "CREATE INDEX certificates_order ON certificates(order_id);",

    [2] = /* 3 */
    "ALTER TABLE certificates ADD COLUMN revoked_at BIGINT;"
    "ALTER TABLE certificates ADD COLUMN revocation_reason BIGINT CHECK (revocation_reason BETWEEN 0 AND 10);"
    "CREATE INDEX certificates_station ON certificates(station_id);"
    "CREATE INDEX certificates_device ON certificates(device_serial);"
    "CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE status = 'revoked';"
    "CREATE TRIGGER certificates_revocation_complete BEFORE UPDATE OF status ON certificates FOR EACH ROW"
    "  WHEN (NEW.status = 'revoked' AND (NEW.revoked_at IS NULL OR NEW.revocation_reason IS NULL))"
    "  EXECUTE FUNCTION ct_refuse('a revocation needs its time and reason');"
    "CREATE TRIGGER certificates_revocation_final BEFORE UPDATE ON certificates FOR EACH ROW"
    "  WHEN (OLD.status = 'revoked') EXECUTE FUNCTION ct_refuse('a revoked certificate stays revoked');"
    "CREATE TABLE revocation_state ("
    "  id BIGINT PRIMARY KEY CHECK (id = 1),"
    "  epoch BIGINT NOT NULL,"
    "  crl_number BIGINT NOT NULL);"
    "INSERT INTO revocation_state (id, epoch, crl_number) VALUES (1, 0, 0);",

    [3] = /* 4 */
    "CREATE TABLE officers ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL CHECK (role IN ('auditor', 'officer')),"
    "  enabled BIGINT NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    "  cert_sha256 BYTEA NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),"
    "  cert_serial_hex TEXT NOT NULL,"
    "  cert_der BYTEA NOT NULL,"
    "  created_at BIGINT NOT NULL);"
    "CREATE INDEX certificates_issued ON certificates(issued_at);"
    "CREATE INDEX audit_outcome ON audit(outcome, ts);",

    [4] = /* 5: the leaf hash is SHA-256(0x00 || DER) (RFC 9162), SQLite's ct_leaf_hash */
    "CREATE TABLE log_leaves ("
    "  leaf_index BIGINT PRIMARY KEY CHECK (leaf_index >= 0),"
    "  cert_serial_hex TEXT NOT NULL UNIQUE REFERENCES certificates(cert_serial_hex),"
    "  leaf_hash BYTEA NOT NULL CHECK (length(leaf_hash) = 32));"
    "CREATE TABLE log_tree_heads ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  tree_size BIGINT NOT NULL CHECK (tree_size >= 0),"
    "  timestamp_ms BIGINT NOT NULL,"
    "  root_hash BYTEA NOT NULL CHECK (length(root_hash) = 32),"
    "  signature BYTEA NOT NULL);"
    PG_APPEND_ONLY("log_leaves", "the issuance log is append-only")
    PG_APPEND_ONLY("log_tree_heads", "tree heads are append-only")
    "INSERT INTO log_leaves (leaf_index, cert_serial_hex, leaf_hash)"
    "  SELECT row_number() OVER (ORDER BY rowid) - 1, cert_serial_hex, sha256('\\x00'::bytea || der)"
    "  FROM certificates;",

    [5] = /* 6 */
    "ALTER TABLE revocation_state ADD COLUMN ops_crl_number BIGINT NOT NULL DEFAULT 0;",

    [6] = /* 7 */
    "CREATE INDEX order_serials_serial_nocase ON order_serials(serial COLLATE NOCASE);"
    "CREATE INDEX certificates_device_nocase ON certificates(device_serial COLLATE NOCASE);"
    "ALTER TABLE order_serials ADD COLUMN revoked_seen BIGINT NOT NULL DEFAULT 0 CHECK (revoked_seen >= 0);"
    "CREATE OR REPLACE FUNCTION order_serials_one_open() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  IF NEW.revoked_seen = 0 AND EXISTS (SELECT 1 FROM order_serials s JOIN orders o ON o.id = s.order_id"
    "             WHERE s.serial = NEW.serial AND o.open = 1 AND s.order_id <> NEW.order_id) THEN"
    "    RAISE EXCEPTION 'serial is already in another open order'; END IF;"
    "  IF EXISTS (SELECT 1 FROM order_serials WHERE serial = NEW.serial COLLATE NOCASE AND serial <> NEW.serial) THEN"
    "    RAISE EXCEPTION 'serial differs only by case from an ordered one'; END IF;"
    "  RETURN NEW; END $$;"
    "CREATE FUNCTION certificates_one_case() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    "  IF NEW.order_id IS NOT NULL AND NEW.profile NOT IN ('viewer', 'station', 'officer') AND EXISTS ("
    "    SELECT 1 FROM certificates"
    "    WHERE device_serial = NEW.device_serial COLLATE NOCASE AND device_serial <> NEW.device_serial"
    "    AND profile NOT IN ('viewer', 'station', 'officer')) THEN"
    "    RAISE EXCEPTION 'device serial differs only by case from an issued one'; END IF;"
    "  RETURN NEW; END $$;"
    "CREATE TRIGGER certificates_one_case BEFORE INSERT ON certificates"
    "  FOR EACH ROW EXECUTE FUNCTION certificates_one_case();",

    [7] = /* 8 */
    "CREATE TABLE log_checkpoints ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  tree_size BIGINT NOT NULL CHECK (tree_size >= 0),"
    "  audit_entries BIGINT NOT NULL CHECK (audit_entries >= 0),"
    "  note TEXT NOT NULL);"
    PG_APPEND_ONLY("log_checkpoints", "checkpoints are append-only"),

    [9] = /* 10 */
    "CREATE TABLE log_cosignatures ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  checkpoint_id BIGINT NOT NULL REFERENCES log_checkpoints(id),"
    "  witness TEXT NOT NULL,"
    "  witness_time BIGINT NOT NULL CHECK (witness_time >= 0),"
    "  line TEXT NOT NULL,"
    "  received BIGINT NOT NULL,"
    "  UNIQUE (checkpoint_id, witness));"
    PG_APPEND_ONLY("log_cosignatures", "cosignatures are append-only"),

    [10] = /* 11 */
    "CREATE TABLE log_witness_reports ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  received BIGINT NOT NULL,"
    "  witness TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('fork', 'rollback')),"
    "  kept_size BIGINT NOT NULL CHECK (kept_size >= 0),"
    "  served_size BIGINT NOT NULL CHECK (served_size >= 0),"
    "  reason TEXT NOT NULL,"
    "  report TEXT NOT NULL UNIQUE);"
    PG_APPEND_ONLY("log_witness_reports", "witness reports are append-only"),

    [11] = /* 12 */
    "CREATE TABLE issuing_cas ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind IN ('device', 'ops')),"
    "  generation BIGINT NOT NULL CHECK (generation >= 1),"
    "  key_uri TEXT NOT NULL,"
    "  cert_der BYTEA NOT NULL,"
    "  cert_sha256 BYTEA NOT NULL UNIQUE CHECK (length(cert_sha256) = 32),"
    "  installed_at BIGINT NOT NULL,"
    "  UNIQUE (kind, generation));"
    PG_APPEND_ONLY("issuing_cas", "issuing CA generations are append-only")
    "ALTER TABLE certificates ADD COLUMN issuing_ca BIGINT;",

    [12] = /* 13 */
    "CREATE TABLE ca_identity ("
    "  id BIGINT PRIMARY KEY CHECK (id = 1),"
    "  ca_id TEXT NOT NULL,"
    "  named_at BIGINT NOT NULL);"
    PG_APPEND_ONLY("ca_identity", "the database names its CA once"),

    [13] = /* 14 */
    DB_MIGRATION_LEASES_PG,

    [14] = /* 15 */
    MIGRATION_CERTIFIED_KEYS("BYTEA")
    PG_APPEND_ONLY("certified_keys", "a certified key keeps its holder"),

    [17] = /* 18 */
    "ALTER TABLE audit ADD COLUMN raw BYTEA;",
};

#define N_MIGRATIONS ((int)(sizeof k_migrations / sizeof k_migrations[0]))
_Static_assert(sizeof k_migrations_pg / sizeof k_migrations_pg[0] <= sizeof k_migrations / sizeof k_migrations[0],
               "a PostgreSQL text for a migration that does not exist");
const int db_n_migrations = N_MIGRATIONS;

const char *db_migration_sql(ct_db *db, int n)
{
    if (n < 1 || n > N_MIGRATIONS) return "";
    const char *pg = n <= (int)(sizeof k_migrations_pg / sizeof k_migrations_pg[0]) ? k_migrations_pg[n - 1] : NULL;
    return db_sql(db, k_migrations[n - 1], pg);
}
