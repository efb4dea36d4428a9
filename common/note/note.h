/* note: C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures, and C2SP checkpoints
 * (c2sp.org/tlog-checkpoint) carried in them: the format the transparency-log ecosystem (Go's checksum database,
 * Sigsum, static CT logs, witnesses) exchanges tree heads in, so that any note verifier can check camtrust's.
 *
 *   note      = text (ends in "\n") || "\n" || signature lines
 *   signature = "\xE2\x80\x94 " (U+2014 EM DASH, space) || key name || " " || base64(key ID[4] || sig[64]) || "\n"
 *   key ID    = SHA-256(key name || 0x0A || 0x01 || Ed25519 public key[32])[:4]
 *   vkey      = key name || "+" || hex(key ID) || "+" || base64(0x01 || public key)
 *
 * Parsing is bounded (CT_NOTE_MAX bytes, CT_NOTE_MAX_SIGS signatures) and strict; every refusal is one line. */
#ifndef CAMTRUST_NOTE_H
#define CAMTRUST_NOTE_H

#include "../core/core.h"
#include "../core/merkle.h"

#define CT_NOTE_MAX (64 * 1024)   /* largest note accepted */
#define CT_NOTE_MAX_SIGS 64       /* signature lines accepted (the spec asks for at least 16) */
#define CT_NOTE_NAME_MAX 256      /* key name (= checkpoint origin) bytes, NUL included */
#define CT_NOTE_VKEY_MAX (CT_NOTE_NAME_MAX + 64)
#define CT_NOTE_ED25519 0x01      /* signature type byte of Ed25519 */
#define CT_NOTE_PUB_LEN 32
#define CT_NOTE_SIG_LEN 64

typedef struct {
    char name[CT_NOTE_NAME_MAX];
    uint8_t key_id[4];
    uint8_t pub[CT_NOTE_PUB_LEN];
} ct_note_verifier;

/* A key name: non-empty, valid UTF-8, no Unicode space, no '+', no control character. */
bool ct_note_name_valid(const char *name, size_t len);
/* The verifier of an Ed25519 public key under `name` (key ID computed). */
CT_MUST_CHECK ct_err ct_note_verifier_make(const char *name, const uint8_t pub[CT_NOTE_PUB_LEN], ct_note_verifier *out);
/* "name+hash+base64" (with a trailing NUL, no newline). */
CT_MUST_CHECK ct_err ct_note_verifier_format(const ct_note_verifier *v, char *out, size_t out_max);
/* Parses a verifier key string (one trailing newline tolerated: a log.vkey file); refuses a key ID that does not
 * match name and key, an algorithm other than Ed25519, anything malformed. */
CT_MUST_CHECK ct_err ct_note_verifier_parse(const char *s, size_t len, ct_note_verifier *out);

/* Signs `text` (must end in "\n", no blank-line separator of its own) by `sign` (an Ed25519 signature of exactly
 * the bytes given) as `v`'s key, and writes the whole note into `out` (allocated; ct_buf_free). */
typedef CT_MUST_CHECK ct_err (*ct_note_sign_fn)(void *arg, const uint8_t *msg, size_t len, uint8_t sig[CT_NOTE_SIG_LEN]);
CT_MUST_CHECK ct_err ct_note_sign(const uint8_t *text, size_t text_len, const ct_note_verifier *v, ct_note_sign_fn sign,
                                  void *arg, ct_buf *out);

/* Checks a note's format and its signature by `v` (signatures of other keys, same name or same ID but not both,
 * are ignored, as the spec says). CT_OK: *text_len is the length of the signed text at the note's start.
 * CT_ERR_BAD_REQUEST: malformed; CT_ERR_INTEGRITY: no signature by `v`, or one that does not verify. */
CT_MUST_CHECK ct_err ct_note_open(const uint8_t *note, size_t len, const ct_note_verifier *v, size_t *text_len);

/* ---- checkpoints ----
 * origin \n size \n base64(root) \n [extension lines]. camtrust adds extension lines that bind the CA's audit
 * chain and the time the checkpoint was signed:
 *   "camtrust-audit <entries> <base64 hash of entry number <entries>>"
 *   "camtrust-audit-root <base64 RFC 9162 root of the audit tree of <entries> leaves>"
 *   "camtrust-time <milliseconds since the epoch>"
 * The audit tree's leaf i (0-based) is audit entry number i + 1's stored hash (its MAC, which covers the entry and
 * the hash before it): leaf hash SHA-256(0x00 || hash). Its root lets anyone holding an older checkpoint check, with
 * a consistency proof, that a longer chain extends the one it kept. Checkpoints signed before it (no root line) stay
 * readable; a root line without an audit line is malformed. Other extension lines are kept out of the parsed form
 * and ignored (so older readers ignore the root line). */
typedef struct {
    char origin[CT_NOTE_NAME_MAX];
    uint64_t size;
    uint8_t root[32];
    bool has_audit, has_time;
    uint64_t audit_entries; /* the audit chain's length when signed (its entries are numbered 1..n) */
    uint8_t audit_hash[32]; /* the hash of its entry number audit_entries (zeros when it is 0) */
    uint64_t time_ms;
    bool has_audit_root;    /* a camtrust-audit-root line (never in the firmware agent's build: it checks the tree) */
    uint8_t audit_root[32]; /* MTH of the audit tree of audit_entries leaves */
} ct_checkpoint;

#define CT_CHECKPOINT_TEXT_MAX (CT_NOTE_NAME_MAX + 256)

/* Appends the checkpoint's text (ends in "\n") to `out`. */
CT_MUST_CHECK ct_err ct_checkpoint_format(const ct_checkpoint *c, ct_buf *out);
/* Parses a checkpoint's text (a note's signed part): CT_ERR_BAD_REQUEST with a one-line reason when malformed. */
CT_MUST_CHECK ct_err ct_checkpoint_parse(const uint8_t *text, size_t len, ct_checkpoint *out);
/* ct_note_open, then ct_checkpoint_parse of its text, then its origin must be `v`'s key name (CT_ERR_INTEGRITY:
 * "a checkpoint of log X, not Y"). */
CT_MUST_CHECK ct_err ct_checkpoint_open(const uint8_t *note, size_t len, const ct_note_verifier *v, ct_checkpoint *out);

/* ---- cosignatures (c2sp.org/tlog-cosignature, cosignature/v1): a witness's word that it saw a checkpoint and
 * that it is consistent with every earlier one the witness saw ----
 *   signed    = "cosignature/v1\ntime " || decimal T || "\n" || checkpoint text (the note's signed part)
 *   signature = "\xE2\x80\x94 " || witness name || " " || base64(key ID[4] || T[8, big-endian] || sig[64]) || "\n"
 *   key ID    = SHA-256(witness name || 0x0A || 0x04 || Ed25519 public key[32])[:4]
 *   vkey      = witness name || "+" || hex(key ID) || "+" || base64(0x04 || public key)
 * T is the witness's clock in seconds since the epoch. A witness's verifier is a ct_note_verifier made by these
 * functions (its key ID is of type 0x04); never pass one to ct_note_open. */
#define CT_COSIG_V1 0x04
#define CT_COSIG_LINE_MAX (CT_NOTE_NAME_MAX + 120) /* one cosignature line, newline included */

CT_MUST_CHECK ct_err ct_cosig_verifier_make(const char *name, const uint8_t pub[CT_NOTE_PUB_LEN], ct_note_verifier *out);
CT_MUST_CHECK ct_err ct_cosig_verifier_format(const ct_note_verifier *w, char *out, size_t out_max);
/* As ct_note_verifier_parse, for type 0x04 keys (refuses an Ed25519 note key: a log key is no witness key). */
CT_MUST_CHECK ct_err ct_cosig_verifier_parse(const char *s, size_t len, ct_note_verifier *w);
/* Signs checkpoint `text` (a note's text, ends in "\n") at time `t` by `sign` as witness `w`; appends the
 * cosignature line (newline included) to `line`. */
CT_MUST_CHECK ct_err ct_cosig_sign(const uint8_t *text, size_t text_len, const ct_note_verifier *w, uint64_t t,
                                   ct_note_sign_fn sign, void *arg, ct_buf *line);
/* Checks one signature line (its trailing newline optional) as w's cosignature of `text`. CT_OK: *t its time.
 * CT_ERR_NOT_FOUND: the line is another key's (name or key ID differ); CT_ERR_BAD_REQUEST: malformed;
 * CT_ERR_INTEGRITY: w's name and key ID but a signature that does not verify. Each with a one-line detail. */
CT_MUST_CHECK ct_err ct_cosig_line_verify(const uint8_t *text, size_t text_len, const char *line, size_t line_len,
                                          const ct_note_verifier *w, uint64_t *t);
/* Finds w's cosignature among a note's signature lines and checks it (other lines are skipped, as in
 * ct_note_open). CT_OK: *text_len and *t set. CT_ERR_NOT_FOUND: not cosigned by w. */
CT_MUST_CHECK ct_err ct_cosig_open(const uint8_t *note, size_t len, const ct_note_verifier *w, size_t *text_len,
                                   uint64_t *t);

/* A list of witnesses: one verifier key (ct_cosig_verifier_parse) a line, '#' comments and blank lines skipped, at
 * most `max`, no name twice; a missing file is no witness (*n = 0). CT_ERR_CONFIG naming the file and line. */
#define CT_COSIG_WITNESSES_MAX 32
CT_MUST_CHECK ct_err ct_cosig_verifiers_load(const char *path, ct_note_verifier *w, size_t max, size_t *n);
/* Whether `note` carries valid cosignatures of at least k of the nw witnesses w (*have: how many). CT_ERR_INTEGRITY
 * with one line starting with `what`: "<what> has 1 of the 2 cosignatures required (2 witnesses configured;
 * missing: NAME)", or "<what>: the cosignature by NAME does not verify" (an altered one). */
CT_MUST_CHECK ct_err ct_cosig_witnessed(const uint8_t *note, size_t len, const ct_note_verifier *w, size_t nw,
                                        size_t k, const char *what, size_t *have);

/* ---- a witness's report of an inconsistent log (POST /log/witness-report) ----
 *   "camtrust witness report v1\n"
 *   "kept " N "\n" and N bytes: the checkpoint the witness kept (as it kept it: with its cosignature)
 *   "served " N "\n" and N bytes: the checkpoint the log served after it, as served
 *   "proof" (" " base64 hash)* "\n": the consistency proof the log gave between them (none: sizes not kept < served)
 *   optionally "fork audit\n": the contradiction is in the audit chain the notes bind (camtrust-audit, -audit-root),
 *   not in the tree: the proof is then the audit tree's the log gave (none: the audit lengths alone show it)
 * Both notes must be signed by the log's key; the report then proves itself: nobody needs to trust the witness. */
#define CT_WITNESS_REPORT_MAX 16384
typedef struct {
    const uint8_t *kept, *served; /* into the parsed body */
    size_t kept_len, served_len;
    ct_merkle_hash proof[CT_MERKLE_MAX_PATH];
    size_t proof_n;
    bool audit; /* "fork audit": the audit chain's contradiction, its tree's proof */
} ct_witness_report;
/* The report's bytes (allocated); CT_ERR_TOO_LARGE over CT_WITNESS_REPORT_MAX. */
CT_MUST_CHECK ct_err ct_witness_report_format(const ct_witness_report *r, ct_buf *out);
/* Parses a report (outside input): CT_ERR_BAD_REQUEST with a one-line reason when malformed (the notes themselves
 * are not checked here), CT_ERR_TOO_LARGE over CT_WITNESS_REPORT_MAX. */
CT_MUST_CHECK ct_err ct_witness_report_parse(const uint8_t *body, size_t len, ct_witness_report *r);

/* ct_note_verifier_parse of a file (a log.vkey), bounded; a refusal names the file. */
CT_MUST_CHECK ct_err ct_note_verifier_load(const char *path, ct_note_verifier *out);
/* Writes the verifier key as a log.vkey file (its string and a newline; atomically, mode 0644). */
CT_MUST_CHECK ct_err ct_note_verifier_write(const ct_note_verifier *v, const char *path);

#endif
