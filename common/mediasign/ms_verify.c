/* The validator: hashes the pictures as the camera did, matches each GOP with the SEI that signed it (by its
 * anchor: the SEI may come anywhere after the GOP), checks signature and chain at recording time, then judges
 * the GOP's place among its neighbours (counter and linked hash). GOPs are reported in order once EMIT_AFTER
 * GOPs followed them; memory stays at RING GOPs and POOL SEIs whatever the length of the clip. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../cenc/cenc.h"
#include "ms_priv.h"

#define RING 8
#define EMIT_AFTER 4
#define POOL 16
#define PLAUSIBLE_TIME 946684800 /* 2000-01-01: SEI timestamps before it are stream-relative */

/* What a signature SEI says about its GOP. */
typedef struct {
    ms_status st;   /* MS_AUTHENTIC: signature and chain fine, the clip's camera */
    char detail[200];
    bool has_list;
    size_t n;
    uint8_t (*hashes)[MS_HASH_LEN];
    uint8_t gop_hash[MS_HASH_LEN], linked[MS_HASH_LEN];
    uint32_t counter;
    time_t signed_at;
    bool has_psets; /* camtrust's: the parameter sets are signed too */
    bool psets_last_groups; /* by camtrust before (TLV version 1): the last group of each run only */
    uint8_t psets[MS_HASH_LEN];
} sei_info;

typedef struct {
    bool used;
    sei_info s;
} sei_rec;

/* A parameter set a decoder holds, by its kind and id (cenc_param_slot): it takes it for every later picture that
 * names that id, whether or not later runs send it again, so each GOP's digest alone does not cover all it is
 * decoded with. Each set is covered by the GOPs whose digest holds its run (ms_psets: every set of the run still in
 * effect), and trusted once one of them verified. */
typedef struct {
    uint64_t run;    /* the run it came in, from 1; 0: no set of that slot */
    uint64_t group;  /* the group it came in, from 1 */
    uint64_t binder; /* the last GOP (from 1) whose digest covers that run; 0: none yet */
    bool verified;   /* a GOP whose digest covers it verified */
    uint64_t replaced; /* in its run: the group (from 1) of its first set that another one replaced; 0: none */
    uint64_t frame;  /* sent before this picture */
    uint8_t hash[MS_HASH_LEN];
    bool in_entry;   /* the MP4 sample entry's (avcC/hvcC) had one in this slot: entry_hash */
    uint8_t entry_hash[MS_HASH_LEN];
} ps_entry;

/* Of one GOP: sets in effect for its pictures that its own digest does not cover. */
typedef struct {
    struct {
        uint64_t gop; /* a GOP not judged yet when this one was read, whose digest covers the set */
        int slot;
        uint64_t frame;
    } pending[RING];
    size_t n_pending;
    int uncovered; /* the slot of a set no GOP's digest covers, or one whose GOPs did not verify; -1: none */
    uint64_t frame;
    /* camtrust's digest before this (recordings made before it): the last group of each run only, G = H(G || R) as
     * ms_psets; and whether the last groups held every set of their runs in effect (else it covers too little) */
    uint8_t last_groups[2][MS_HASH_LEN];
    bool last_groups_ok;
    /* a slot (-1: none) given two different sets in one of those runs, the first outside its last group, which that
     * digest leaves out: a decoder takes both in turn (ffmpeg drops the PPSs of a replaced SPS); sent before
     * twice_frame. An encoder never sends that (one set per id before a picture), a falsifier's added group does. */
    int twice;
    uint64_t twice_frame;
} ps_cover;

typedef struct {
    uint8_t anchor[MS_HASH_LEN], gop_hash[MS_HASH_LEN], prev_anchor[MS_HASH_LEN], psets[MS_HASH_LEN];
    size_t n, unhashed, extension;
    uint8_t (*hashes)[MS_HASH_LEN];
    uint32_t *frames;
    uint64_t first_frame, last_frame;
    double t0, t1;
    bool matched;
    sei_info s;
    uint64_t seq; /* from 1 */
    ps_cover cover;
} gop_rec;

struct ms_verifier {
    ms_verify_config cfg;
    media_codec codec;
    time_t fallback;
    ms_gop_cb cb;
    void *arg;
    ms_gop cur;
    uint32_t *cur_frames;
    uint64_t cur_first, cur_last, lead_first, lead_n;
    double cur_t0, cur_t1, lead_t0, lead_t1;
    size_t cur_unhashed, cur_extension;
    uint64_t frames;
    gop_rec ring[RING];
    size_t ring_head, ring_n;
    sei_rec pool[POOL];
    sei_info scratch;
    ms_chain chain;
    bool camera_set, any_sei, have_max, time_set;
    uint8_t camera_id[MS_HASH_LEN], last_anchor[MS_HASH_LEN];
    uint32_t max_counter;
    uint8_t max_anchor[MS_HASH_LEN];
    uint8_t *rbsp;
    ms_summary sum;
    size_t problems;          /* noted so far (the summary keeps the first) */
    char last_problem[sizeof ((ms_summary *)0)->problem];
    ps_entry ps[CENC_PARAM_SLOTS];
    uint64_t ps_run, ps_closed;   /* the run being read, the last one a picture closed */
    uint64_t ps_group;            /* the group being read */
    uint8_t group_run[2][MS_HASH_LEN]; /* the last group's R, the unit being added (ps_cover's last_groups) */
    bool closed_ok;               /* the last run closed had every set of it in effect in its last group */
    int closed_twice;             /* ... and a slot it gave two sets, the first outside its last group (ps_cover's) */
    uint64_t gop_seq, judged_seq; /* GOPs read and judged */
    bool ps_ok[2 * RING];         /* by GOP: its digest verified (the last RING judged) */
    ps_cover cover;               /* the current GOP's */
    bool in_entry, entry_checked, any_psets;
    int entry_differs;            /* a slot whose set the sample entry has otherwise than the samples, or -1 */
};

const char *ms_status_name(ms_status s)
{
    static const char *const names[MS_STATUS__COUNT] = {"authentic", "altered",  "missing", "reordered",
                                                        "inserted",  "unsigned", "untrusted"};
    return s < MS_STATUS__COUNT ? names[s] : "?";
}

void ms_verifier_problem(ms_verifier *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->last_problem, sizeof v->last_problem, fmt, ap);
    va_end(ap);
    v->problems++;
    /* the first one explains the rest */
    if (!v->sum.problem[0]) memcpy(v->sum.problem, v->last_problem, sizeof v->sum.problem);
}

size_t ms_verifier_problems(const ms_verifier *v, const char **last)
{
    if (last) *last = v->last_problem;
    return v->problems;
}

static ct_err info_alloc(sei_info *s)
{
    s->hashes = calloc(MS_MAX_GOP_NALS, sizeof *s->hashes);
    return s->hashes ? CT_OK : CT_ERR_NOMEM;
}

/* Moves the content of one sei_info into another, keeping each one's hash storage. */
static void info_copy(sei_info *dst, const sei_info *src)
{
    uint8_t (*keep)[MS_HASH_LEN] = dst->hashes;
    *dst = *src;
    dst->hashes = keep;
    memcpy(dst->hashes, src->hashes, src->n * MS_HASH_LEN);
}

ct_err ms_verifier_open(const ms_verify_config *cfg, media_codec codec, time_t fallback_time, const char *time_source,
                        ms_gop_cb cb, void *arg, ms_verifier **out)
{
    ct_err rc = CT_OK;
    ms_verifier *v = calloc(1, sizeof *v);
    CT_ENSURE(v, CT_ERR_NOMEM);
    v->cfg = *cfg;
    v->codec = codec;
    v->fallback = fallback_time;
    v->cb = cb;
    v->arg = arg;
    CT_GUARD(ms_gop_init(&v->cur));
    v->cur_frames = calloc(MS_MAX_GOP_NALS, sizeof *v->cur_frames);
    v->rbsp = malloc(MS_MAX_SEI);
    CT_ENSURE(v->cur_frames && v->rbsp, CT_ERR_NOMEM);
    for (size_t i = 0; i < RING; i++) {
        v->ring[i].hashes = calloc(MS_MAX_GOP_NALS, sizeof *v->ring[i].hashes);
        v->ring[i].frames = calloc(MS_MAX_GOP_NALS, sizeof *v->ring[i].frames);
        CT_ENSURE(v->ring[i].hashes && v->ring[i].frames, CT_ERR_NOMEM);
        CT_GUARD(info_alloc(&v->ring[i].s));
    }
    for (size_t i = 0; i < POOL; i++) CT_GUARD(info_alloc(&v->pool[i].s));
    CT_GUARD(info_alloc(&v->scratch));
    v->sum.codec = codec;
    v->sum.recorded_at = fallback_time;
    v->entry_differs = v->cover.uncovered = v->cover.twice = v->closed_twice = -1;
    CT_GUARD(ct_strlcpy(v->sum.time_source, sizeof v->sum.time_source, time_source));
    CT_GUARD(ct_strlcpy(v->sum.chain, sizeof v->sum.chain, "no certificate chain in the clip"));
    CT_GUARD(ct_strlcpy(v->sum.revocation, sizeof v->sum.revocation, "not checked (no CRL given)"));
    *out = v;
    v = NULL;
cleanup:
    ms_verifier_close(v);
    return rc;
}

void ms_verifier_close(ms_verifier *v)
{
    if (!v) return;
    ms_gop_free(&v->cur);
    free(v->cur_frames);
    free(v->rbsp);
    for (size_t i = 0; i < RING; i++) {
        free(v->ring[i].hashes);
        free(v->ring[i].frames);
        free(v->ring[i].s.hashes);
    }
    for (size_t i = 0; i < POOL; i++) free(v->pool[i].s.hashes);
    free(v->scratch.hashes);
    ms_chain_clear(&v->chain);
    free(v);
}

static void set_detail(char *d, size_t max, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_detail(char *d, size_t max, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, max, fmt, ap);
    va_end(ap);
}

static void report(ms_verifier *v, ms_gop_report *r)
{
    v->sum.count[r->status]++;
    v->sum.gops++;
    if (v->cb) v->cb(r, v->arg);
}

/* ---- comparing a GOP with its signed hash list ---- */

static bool has_hash(const uint8_t (*list)[MS_HASH_LEN], size_t n, const uint8_t *h)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(list[i], h, MS_HASH_LEN) == 0) return true;
    return false;
}

static ms_status compare(const gop_rec *g, char *d, size_t max)
{
    const sei_info *s = &g->s;
    if (!s->has_list) {
        if (memcmp(g->gop_hash, s->gop_hash, MS_HASH_LEN) == 0) return MS_AUTHENTIC;
        set_detail(d, max, "the GOP hash does not match (the SEI has no hash list to locate the change)");
        return MS_ALTERED;
    }
    if (g->n == s->n && memcmp(g->hashes, s->hashes, g->n * MS_HASH_LEN) == 0) return MS_AUTHENTIC;
    if (s->has_list && s->n > 0 && g->n > 0 && memcmp(s->hashes[0], g->hashes[0], MS_HASH_LEN) != 0) {
        set_detail(d, max, "the I-frame (frame %llu) differs from what was signed, and with it the %zu picture NAL "
                           "unit(s) hashed against it", (unsigned long long)g->first_frame, g->n);
        return MS_ALTERED;
    }
    size_t extra = 0, lost = 0;
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i < g->n; i++)
        if (!has_hash((const uint8_t (*)[MS_HASH_LEN])s->hashes, s->n, g->hashes[i])) {
            if (extra++ == 0) a = g->frames[i];
            b = g->frames[i];
        }
    for (size_t i = 0; i < s->n; i++) lost += !has_hash((const uint8_t (*)[MS_HASH_LEN])g->hashes, g->n, s->hashes[i]);
    if (extra && lost) {
        set_detail(d, max, "%zu picture NAL unit(s) differ from what was signed (frames %llu-%llu)", extra,
                   (unsigned long long)a, (unsigned long long)b);
        return MS_ALTERED;
    }
    if (extra) {
        set_detail(d, max, "%zu picture NAL unit(s) that were not signed (frames %llu-%llu)", extra,
                   (unsigned long long)a, (unsigned long long)b);
        return MS_INSERTED;
    }
    if (lost) {
        set_detail(d, max, "%zu of the %zu signed picture NAL units are missing", lost, s->n);
        return MS_MISSING;
    }
    if (g->n > s->n) { /* every signed picture is there, and some twice */
        size_t i = 1;
        while (i < g->n && !has_hash((const uint8_t (*)[MS_HASH_LEN])g->hashes, i, g->hashes[i])) i++;
        set_detail(d, max, "%zu picture NAL unit(s) repeated (frame %llu is one)", g->n - s->n,
                   (unsigned long long)g->frames[i < g->n ? i : 0]);
        return MS_INSERTED;
    }
    set_detail(d, max, "the pictures are not in their signed order");
    return MS_REORDERED;
}

/* ---- the parameter sets in effect, by id ---- */

static void ps_describe(const ms_verifier *v, int slot, char *d, size_t max);

static ct_err ps_note(ms_verifier *v, const uint8_t *nal, size_t len, unsigned type)
{
    ms_psets *p = &v->cur.ps;
    bool pps = type == 8 || type == 34; /* as ms_psets_param */
    bool new_run = !p->open, new_group = new_run || (p->after_pps && !pps);
    CT_GUARD_RET(ms_psets_param(p, nal, len, type)); /* p->run[1]: the unit's hash, trailing zeros left out */
    if (new_run) v->ps_run++;
    if (new_group) {
        v->ps_group++;
        memset(v->group_run[0], 0, MS_HASH_LEN);
    }
    int slot = cenc_param_slot(v->codec, nal, len);
    memcpy(v->group_run[1], p->run[1], MS_HASH_LEN);
    CT_GUARD_RET(ct_sha256(v->group_run, sizeof v->group_run, v->group_run[0]));
    if (slot < 0) return CT_OK; /* no id to be named by: the run's digest still covers it */
    ps_entry *e = &v->ps[slot];
    if (e->run != v->ps_run) e->replaced = 0;
    else if (!e->replaced && memcmp(e->hash, v->group_run[1], MS_HASH_LEN) != 0) e->replaced = e->group;
    memcpy(e->hash, v->group_run[1], MS_HASH_LEN);
    e->run = v->ps_run;
    e->group = v->ps_group;
    e->binder = 0;
    e->verified = false;
    e->frame = v->frames;
    if (v->in_entry) {
        /* Decoders differ in which of two sets of one id a sample entry holds they take (ffmpeg: the last). */
        if (e->in_entry && memcmp(e->entry_hash, e->hash, MS_HASH_LEN) != 0) {
            char set[32];
            ps_describe(v, slot, set, sizeof set);
            ms_verifier_problem(v, "the MP4 sample entry (avcC/hvcC) holds two different parameter sets %s: players "
                                   "differ in which one they decode with", set);
        }
        e->in_entry = true;
        memcpy(e->entry_hash, e->hash, MS_HASH_LEN);
    }
    return CT_OK;
}

/* A picture of the current GOP (`start`: its I-frame), before ms_gop_add; `closes`: it closes a run, which the
 * GOP's digest then covers (at the I-frame the last closed run is the set in effect, covered again). */
static ct_err ps_picture(ms_verifier *v, bool start, bool closes)
{
    ps_cover *c = &v->cover;
    if (!start && !closes) return CT_OK;
    if (closes) {
        v->ps_closed = v->ps_run;
        v->closed_ok = true;
        v->closed_twice = -1;
    }
    /* The sets of the run in effect: bound to this GOP; one of an earlier group of a closing run spoils closed_ok; one
     * that replaced another set of its slot, sent in an earlier group, is closed_twice. */
    for (size_t i = 0; i < CENC_PARAM_SLOTS; i++)
        if (v->ps[i].run && v->ps[i].run == v->ps_closed) {
            v->ps[i].binder = v->gop_seq;
            if (closes && v->ps[i].group != v->ps_group) v->closed_ok = false;
            if (closes && v->ps[i].replaced && v->ps[i].replaced != v->ps_group && v->closed_twice < 0)
                v->closed_twice = (int)i;
        }
    if (closes) {
        memcpy(c->last_groups[1], v->group_run[0], MS_HASH_LEN);
        if (!start) {
            c->last_groups_ok = c->last_groups_ok && v->closed_ok;
            CT_GUARD_RET(ct_sha256(c->last_groups, sizeof c->last_groups, c->last_groups[0]));
        }
    }
    if (start) {
        uint8_t effect[MS_HASH_LEN];
        memcpy(effect, c->last_groups[1], MS_HASH_LEN);
        memset(c, 0, sizeof *c);
        c->uncovered = -1;
        memcpy(c->last_groups[0], effect, MS_HASH_LEN);
        memcpy(c->last_groups[1], effect, MS_HASH_LEN);
        c->last_groups_ok = v->closed_ok;
        c->twice = -1;
    }
    if (c->twice < 0 && v->closed_twice >= 0) { /* the run closing, or at the I-frame the one in effect */
        c->twice = v->closed_twice;
        c->twice_frame = v->ps[c->twice].frame;
    }
    for (size_t i = 0; i < CENC_PARAM_SLOTS; i++) {
        ps_entry *e = &v->ps[i];
        if (!e->run || e->binder == v->gop_seq || e->verified) continue;
        size_t k = 0;
        while (k < c->n_pending && c->pending[k].gop != e->binder) k++;
        if (k < c->n_pending) continue;
        if (e->binder > v->judged_seq && k < RING) { /* in the window: judged before this GOP is */
            c->pending[k].gop = e->binder;
            c->pending[k].slot = (int)i;
            c->pending[k].frame = e->frame;
            c->n_pending++;
        } else if (c->uncovered < 0) { /* covered by no GOP's digest, or by ones that did not verify */
            c->uncovered = (int)i;
            c->frame = e->frame;
        }
    }
    /* What a player that decodes with the MP4 sample entry's sets gets at the first picture: the same sets. */
    if (!v->entry_checked) {
        v->entry_checked = true;
        for (size_t i = 0; i < CENC_PARAM_SLOTS && v->entry_differs < 0; i++)
            if (v->ps[i].in_entry && memcmp(v->ps[i].hash, v->ps[i].entry_hash, MS_HASH_LEN) != 0)
                v->entry_differs = (int)i;
    }
    return CT_OK;
}

/* A slot as decoders name it: "PPS id 1". */
static void ps_describe(const ms_verifier *v, int slot, char *d, size_t max)
{
    static const char *const kinds[2][4] = {{"SPS", "subset SPS", "SPS extension", "PPS"}, {"VPS", "SPS", "?", "PPS"}};
    set_detail(d, max, "%s id %d", kinds[v->codec == MEDIA_H265][slot < 96 ? slot / 32 : 3],
               slot < 96 ? slot % 32 : slot - 96);
}

/* Whether every set in effect for a GOP's pictures is covered by a digest that verified: its own, or (by id)
 * an earlier GOP's. Else the first that is not: its slot and the picture it was sent before. */
static bool ps_covered(const ms_verifier *v, const gop_rec *g, int *slot, uint64_t *frame)
{
    const ps_cover *c = &g->cover;
    *slot = c->uncovered;
    *frame = c->frame;
    for (size_t i = 0; i < c->n_pending && *slot < 0; i++)
        if (!v->ps_ok[c->pending[i].gop % (2 * RING)]) {
            *slot = c->pending[i].slot;
            *frame = c->pending[i].frame;
        }
    return *slot < 0;
}

/* For a recording made before the digest (TLV version 1): whether the one camtrust signed then matches and covers
 * every set in effect. Never for a later recording: groups before the last one of a run, which its digest covers,
 * could be added. */
static bool ps_last_groups(const gop_rec *g)
{
    return g->s.psets_last_groups && g->cover.last_groups_ok &&
           memcmp(g->cover.last_groups[0], g->s.psets, MS_HASH_LEN) == 0;
}

/* Whether the parameter sets the GOP's pictures are decoded with are the signed ones: by the digest, or by the one
 * signed before where no group left out of it gave a slot another set than its last group does (ps_cover's twice). */
static bool ps_signed(const gop_rec *g)
{
    return memcmp(g->psets, g->s.psets, MS_HASH_LEN) == 0 || (ps_last_groups(g) && g->cover.twice < 0);
}

/* A GOP judged: the sets its digest covers are trusted when it verified. */
static void ps_judged(ms_verifier *v, const gop_rec *g, bool ok)
{
    v->ps_ok[g->seq % (2 * RING)] = ok;
    v->judged_seq = g->seq;
    for (size_t i = 0; i < CENC_PARAM_SLOTS; i++)
        if (v->ps[i].run && v->ps[i].binder == g->seq) v->ps[i].verified |= ok;
}

/* ---- judging a GOP in its place ---- */

static bool linked_unset(const uint8_t *h)
{
    bool zero = true, ff = true;
    for (size_t i = 0; i < MS_HASH_LEN; i++) zero = zero && h[i] == 0, ff = ff && h[i] == 0xff;
    return zero || ff;
}

static gop_rec *ring_at(ms_verifier *v, size_t i)
{
    return &v->ring[(v->ring_head + i) % RING];
}

/* Whether a later GOP in the window carries a counter in (lo, hi). */
static bool later_counter_between(ms_verifier *v, uint32_t lo, uint32_t hi)
{
    for (size_t i = 1; i < v->ring_n; i++) {
        gop_rec *g = ring_at(v, i);
        if (g->matched && g->s.st == MS_AUTHENTIC && g->s.counter > lo && g->s.counter < hi) return true;
    }
    return false;
}

static void judge_order(ms_verifier *v, gop_rec *g, ms_gop_report *r)
{
    uint32_t c = g->s.counter;
    if (v->have_max && c == v->max_counter && memcmp(g->anchor, v->max_anchor, MS_HASH_LEN) == 0) {
        r->status = MS_INSERTED;
        set_detail(r->detail, sizeof r->detail, "a repeat of signed GOP %u, the GOP before it", c);
        return;
    }
    if (v->have_max && c <= v->max_counter) {
        r->status = MS_REORDERED;
        set_detail(r->detail, sizeof r->detail, "signed as GOP %u, found after GOP %u", c, v->max_counter);
        return;
    }
    if (v->have_max && c == v->max_counter + 1 && !linked_unset(g->s.linked) &&
        memcmp(g->s.linked, v->max_anchor, MS_HASH_LEN) != 0) {
        r->status = MS_ALTERED;
        set_detail(r->detail, sizeof r->detail, "does not link to the GOP before it (a GOP was replaced)");
    } else if (v->have_max && c > v->max_counter + 1) {
        if (later_counter_between(v, v->max_counter, c)) {
            r->status = MS_REORDERED;
            set_detail(r->detail, sizeof r->detail, "signed as GOP %u, found before an earlier GOP", c);
        } else {
            ms_gop_report m = {MS_MISSING, g->first_frame, g->first_frame, g->t0, g->t0, 0, false, 0, ""};
            /* Reported in place of the GOPs that are gone, before this one. */
            set_detail(m.detail, sizeof m.detail, "%u GOP(s) cut out before frame %llu (signed GOPs %u-%u)",
                       c - v->max_counter - 1, (unsigned long long)g->first_frame, v->max_counter + 1, c - 1);
            report(v, &m);
        }
    }
    {
        /* The highest counter so far, whatever this GOP's verdict: what comes later is judged against it. */
        v->have_max = true;
        v->max_counter = c;
        /* The signed anchor: links run between signatures; a changed I-frame is the content check's finding. */
        memcpy(v->max_anchor, g->s.has_list && g->s.n ? g->s.hashes[0] : g->anchor, MS_HASH_LEN);
    }
}

/* A GOP whose I-frame was changed matches no SEI by its anchor: the SEI that links to the GOP before it, or
 * whose anchor the next GOP links to, is still its signature. */
static void match_by_link(ms_verifier *v, gop_rec *g)
{
    gop_rec *next = v->ring_n > 1 ? ring_at(v, 1) : NULL;
    for (size_t i = 0; i < POOL; i++) {
        sei_info *s = &v->pool[i].s;
        if (!v->pool[i].used || !s->has_list || s->n == 0) continue;
        bool after_prev = !linked_unset(s->linked) && memcmp(s->linked, g->prev_anchor, MS_HASH_LEN) == 0;
        bool before_next = next && next->matched && memcmp(next->s.linked, s->hashes[0], MS_HASH_LEN) == 0;
        if (after_prev || before_next) {
            info_copy(&g->s, s);
            g->matched = true;
            v->pool[i].used = false;
            return;
        }
    }
}

static void emit_head(ms_verifier *v, bool at_end)
{
    gop_rec *g = ring_at(v, 0);
    if (!g->matched) match_by_link(v, g);
    ms_gop_report r = {MS_AUTHENTIC, g->first_frame, g->last_frame, g->t0, g->t1, 0, false, 0, ""};
    if (!g->matched) {
        gop_rec *next = v->ring_n > 1 ? ring_at(v, 1) : NULL;
        if (!v->any_sei) {
            r.status = MS_UNSIGNED;
            set_detail(r.detail, sizeof r.detail, "no media signing SEI in the clip");
        } else if (at_end && v->ring_n == 1) {
            r.status = MS_UNSIGNED;
            set_detail(r.detail, sizeof r.detail, "its signature would follow the end of the clip");
        } else if (memcmp(g->anchor, g->prev_anchor, MS_HASH_LEN) == 0) {
            r.status = MS_INSERTED; /* not "unsigned": the next GOP links to the original, as the same I-frame */
            set_detail(r.detail, sizeof r.detail, "a repeat of the GOP before it (the same I-frame)");
        } else if (next && next->matched && memcmp(next->s.linked, g->anchor, MS_HASH_LEN) == 0) {
            r.status = MS_UNSIGNED;
            set_detail(r.detail, sizeof r.detail, "its signature SEI is missing (the next GOP links to it)");
        } else {
            r.status = MS_INSERTED;
            set_detail(r.detail, sizeof r.detail, "no signature in the clip covers these pictures");
        }
    } else {
        r.has_counter = true;
        r.counter = g->s.counter;
        if (g->s.st == MS_AUTHENTIC) {
            if (!v->sum.have_counters || r.counter < v->sum.first_counter) v->sum.first_counter = r.counter;
            if (!v->sum.have_counters || r.counter > v->sum.last_counter) v->sum.last_counter = r.counter;
            v->sum.have_counters = true;
        }
        r.signed_at = g->s.signed_at;
        r.status = g->s.st;
        if (r.status != MS_AUTHENTIC) {
            set_detail(r.detail, sizeof r.detail, "%s", g->s.detail);
        } else {
            /* The place in the sequence is judged for every GOP the camera signed, whatever its content. */
            ms_gop_report order = r;
            judge_order(v, g, &order);
            r.status = compare(g, r.detail, sizeof r.detail);
            if (r.status == MS_AUTHENTIC && g->unhashed) {
                r.status = MS_INSERTED;
                set_detail(r.detail, sizeof r.detail, "%zu picture NAL unit(s) of a type the format does not sign%s",
                           g->unhashed,
                           g->extension ? " (H.264 auxiliary pictures, SVC/MVC layers or 3D-AVC views, types 19-21: "
                                          "a player that decodes them shows them)"
                                        : "");
            } else if (r.status == MS_AUTHENTIC && g->s.has_psets && !ps_signed(g) && ps_last_groups(g)) {
                char set[32];
                ps_describe(v, g->cover.twice, set, sizeof set);
                r.status = MS_ALTERED;
                set_detail(r.detail, sizeof r.detail, "%s sent twice with different contents before frame %llu: its "
                           "version-1 signature (recorded before: the last group of parameter sets only) covers one, a "
                           "player may decode with the other", set, (unsigned long long)g->cover.twice_frame);
            } else if (r.status == MS_AUTHENTIC && g->s.has_psets && !ps_signed(g)) {
                static const uint8_t none[MS_HASH_LEN];
                r.status = MS_ALTERED;
                set_detail(r.detail, sizeof r.detail, "%s",
                           memcmp(g->psets, none, MS_HASH_LEN) == 0
                               ? "no parameter sets (SPS/PPS/VPS) in the clip before its pictures: a player takes them "
                                 "from elsewhere (an RTP session's SDP), which no signature covers"
                           : memcmp(g->s.psets, none, MS_HASH_LEN) == 0
                               ? "its parameter sets (SPS/PPS/VPS) were not signed: the camera had none in band (a "
                                 "recording made from an MP4 whose samples do not carry them)"
                               : "the parameter sets (SPS/PPS/VPS) its pictures are decoded with differ from those "
                                 "signed: altered, added, removed or replaced");
            } else if (r.status == MS_AUTHENTIC && g->s.has_psets) {
                char set[32];
                int slot;
                uint64_t sent;
                r = order;
                if (!ps_covered(v, g, &slot, &sent)) {
                    ps_describe(v, slot, set, sizeof set);
                    r.status = MS_ALTERED;
                    set_detail(r.detail, sizeof r.detail, "its pictures are decoded with a parameter set (%s, sent "
                               "before frame %llu) that no verified signature covers: altered, or added where a "
                               "decoder still takes it", set, (unsigned long long)sent);
                }
            } else if (r.status == MS_AUTHENTIC) {
                r = order;
            }
        }
    }
    ps_judged(v, g, g->matched && g->s.st == MS_AUTHENTIC && g->s.has_psets &&
                        ps_signed(g));
    report(v, &r);
    g->matched = false;
    v->ring_head = (v->ring_head + 1) % RING;
    v->ring_n--;
}

static void emit_ready(ms_verifier *v, bool at_end)
{
    while (v->ring_n > (at_end ? 0 : EMIT_AFTER)) emit_head(v, at_end);
}

/* ---- matching SEIs and GOPs ---- */

static bool sei_is_for(const sei_info *s, const gop_rec *g)
{
    if (s->has_list && s->n > 0) return memcmp(s->hashes[0], g->anchor, MS_HASH_LEN) == 0;
    return memcmp(s->gop_hash, g->gop_hash, MS_HASH_LEN) == 0;
}

static void match_from_pool(ms_verifier *v, gop_rec *g)
{
    for (size_t i = 0; i < POOL; i++)
        if (v->pool[i].used && sei_is_for(&v->pool[i].s, g)) {
            info_copy(&g->s, &v->pool[i].s);
            g->matched = true;
            v->pool[i].used = false;
            return;
        }
}

static void add_sei(ms_verifier *v, const sei_info *s)
{
    for (size_t i = 0; i < v->ring_n; i++) {
        gop_rec *g = ring_at(v, i);
        if (!g->matched && sei_is_for(s, g)) {
            info_copy(&g->s, s);
            g->matched = true;
            return;
        }
    }
    size_t slot = 0;
    for (size_t i = 0; i < POOL; i++)
        if (!v->pool[i].used) {
            slot = i;
            break;
        }
    /* A full pool drops its first entry: SEIs that match nothing sign GOPs outside the clip. */
    info_copy(&v->pool[slot].s, s);
    v->pool[slot].used = true;
}

static ct_err finish_gop(ms_verifier *v)
{
    if (!v->cur.started) return CT_OK;
    if (v->ring_n == RING) emit_head(v, false);
    gop_rec *g = ring_at(v, v->ring_n++);
    memcpy(g->anchor, v->cur.anchor, MS_HASH_LEN);
    memcpy(g->prev_anchor, v->last_anchor, MS_HASH_LEN);
    memcpy(v->last_anchor, v->cur.anchor, MS_HASH_LEN);
    g->n = v->cur.n;
    memcpy(g->hashes, v->cur.hashes, g->n * MS_HASH_LEN);
    memcpy(g->frames, v->cur_frames, g->n * sizeof *g->frames);
    g->first_frame = v->cur_first;
    g->last_frame = v->cur_last;
    g->t0 = v->cur_t0;
    g->t1 = v->cur_t1;
    g->unhashed = v->cur_unhashed;
    g->extension = v->cur_extension;
    memcpy(g->psets, v->cur.ps.gop[0], MS_HASH_LEN);
    g->seq = v->gop_seq;
    g->cover = v->cover;
    g->matched = false;
    CT_GUARD_RET(ms_gop_hash((const uint8_t (*)[MS_HASH_LEN])g->hashes, g->n, g->gop_hash));
    match_from_pool(v, g);
    ms_gop_reset(&v->cur);
    emit_ready(v, false);
    return CT_OK;
}

/* ---- signature SEIs ---- */

static void note_camera(ms_verifier *v, const ms_sei *p)
{
    const pki_cert_info *leaf = &v->chain.leaf;
    v->camera_set = true;
    memcpy(v->camera_id, leaf->cert_sha256, MS_HASH_LEN);
    v->sum.camera_known = true;
    if (ct_strlcpy(v->sum.serial, sizeof v->sum.serial, leaf->subject_serial) != CT_OK ||
        ct_strlcpy(v->sum.cn, sizeof v->sum.cn, leaf->subject_cn) != CT_OK ||
        ct_strlcpy(v->sum.issuer, sizeof v->sum.issuer, leaf->issuer_cn) != CT_OK ||
        ct_strlcpy(v->sum.model, sizeof v->sum.model, p->model) != CT_OK ||
        ct_strlcpy(v->sum.manufacturer, sizeof v->sum.manufacturer, p->manufacturer) != CT_OK ||
        ct_strlcpy(v->sum.firmware, sizeof v->sum.firmware, p->firmware) != CT_OK)
        v->sum.serial[0] = '\0';
    if (!v->sum.serial[0] && ct_strlcpy(v->sum.serial, sizeof v->sum.serial, p->serial) != CT_OK) v->sum.serial[0] = '\0';
}

/* Signature, chain and camera of one SEI: s->st and s->detail. */
static ct_err judge_sei(ms_verifier *v, const ms_sei *p, const uint8_t *doc, size_t doc_len, sei_info *s)
{
    uint8_t digest[MS_HASH_LEN];
    char why[200];
    if (p->has_chain && (!v->chain.set || ct_sha256(p->chain_pem, p->chain_len, digest) != CT_OK ||
                         memcmp(digest, v->chain.id, MS_HASH_LEN) != 0))
        CT_GUARD_RET(ms_chain_eval(&v->cfg, p->chain_pem, p->chain_len, &v->chain));
    time_t t = ms_time_to_unix(p->timestamp);
    s->signed_at = t >= PLAUSIBLE_TIME ? t : 0;
    time_t at = s->signed_at ? s->signed_at : v->fallback;
    if (!v->time_set && p->has_general) {
        v->time_set = true;
        v->sum.recorded_at = at;
        if (s->signed_at &&
            ct_strlcpy(v->sum.time_source, sizeof v->sum.time_source, "SEI timestamp") != CT_OK)
            v->sum.time_source[0] = '\0';
    }
    CT_GUARD_RET(ct_sha256(doc, doc_len, digest));
    s->st = MS_AUTHENTIC;
    if (!v->chain.set) {
        s->st = MS_UNTRUSTED;
        set_detail(s->detail, sizeof s->detail, "no certificate chain precedes this signature");
    } else if (!v->chain.key_ok) {
        s->st = MS_UNTRUSTED;
        set_detail(s->detail, sizeof s->detail, "%s", v->chain.why);
    } else if (!ms_chain_verify(&v->chain, digest, p->sig, p->sig_len)) {
        s->st = MS_ALTERED;
        set_detail(s->detail, sizeof s->detail, "the signature SEI does not verify (changed or forged)");
    } else if ((s->st = ms_chain_at(&v->chain, at, why, sizeof why)) != MS_AUTHENTIC) {
        set_detail(s->detail, sizeof s->detail, "%s", why);
    } else if (v->cfg.crl_der && !v->chain.crl_applied) {
        /* Revocation was asked for and cannot be checked with that CRL: not authentic, as live viewing holds. */
        s->st = MS_UNTRUSTED;
        set_detail(s->detail, sizeof s->detail, "revocation %s (nor the root's)", v->chain.revocation);
    } else {
        if (!v->camera_set) note_camera(v, p);
        if (memcmp(v->camera_id, v->chain.leaf.cert_sha256, MS_HASH_LEN) != 0) {
            s->st = MS_INSERTED;
            set_detail(s->detail, sizeof s->detail, "signed by another camera (serial \"%s\", CN \"%s\")",
                       v->chain.leaf.subject_serial, v->chain.leaf.subject_cn);
        } else if (v->cfg.serial && strcasecmp(v->chain.leaf.subject_serial, v->cfg.serial) != 0) {
            /* The certificate's serial, not the one the signed SEI claims: any camera may claim any serial. */
            s->st = MS_INSERTED;
            set_detail(s->detail, sizeof s->detail, "signed by camera \"%s\", not by \"%s\"%s",
                       v->chain.leaf.subject_serial, v->cfg.serial, v->cfg.live ? " that serves it" : " (--serial)");
        }
    }
    if (v->chain.set) {
        if (ct_snprintf(v->sum.chain, sizeof v->sum.chain, "%s", v->chain.ok ? "verifies to the root" : v->chain.why) !=
                CT_OK ||
            ct_strlcpy(v->sum.revocation, sizeof v->sum.revocation, v->chain.revocation) != CT_OK)
            v->sum.chain[0] = '\0';
    }
    return CT_OK;
}

/* The SEI without emulation prevention: as it is when it is exactly as long as its payload says (SEIs in MP4
 * written without it, as ONVIF's reference does), else with the 0x03 bytes taken out. NULL when too large. */
static const uint8_t *unescaped(ms_verifier *v, const uint8_t *nal, size_t len, size_t *rlen)
{
    size_t off, size;
    *rlen = len;
    if (len <= MS_MAX_SEI + MS_MAX_SEI / 2) {
        ct_err rc = media_sei_find(v->codec, nal, len, ms_uuid, &off, &size);
        if (rc == CT_OK && off + size + 1 == len && len <= MS_MAX_SEI) return nal;
    }
    if (len > MS_MAX_SEI + MS_MAX_SEI / 2 || media_epb_remove(nal, len, v->rbsp, MS_MAX_SEI, rlen) != CT_OK) {
        ms_verifier_problem(v, "oversized SEI NAL unit of %zu bytes at frame %llu ignored", len,
                            (unsigned long long)v->frames);
        return NULL;
    }
    return v->rbsp;
}

static ct_err on_sei(ms_verifier *v, const uint8_t *nal, size_t len)
{
    ms_sei p;
    size_t rlen;
    const uint8_t *rbsp = unescaped(v, nal, len, &rlen);
    if (!rbsp) return CT_OK;
    ct_err rc = ms_sei_parse(v->codec, rbsp, rlen, &p);
    if (rc == CT_ERR_NOT_FOUND) return CT_OK;
    v->any_sei = true;
    v->sum.sei_count++;
    if (rc != CT_OK || !p.has_signature) {
        ms_verifier_problem(v, "malformed media signing SEI at frame %llu: %s", (unsigned long long)v->frames,
                            rc != CT_OK ? ct_err_detail() : "no signature");
        return rc == CT_ERR_NOMEM ? rc : CT_OK;
    }
    const uint8_t *doc = rbsp;
    size_t doc_len = p.doc_len;
    if ((p.reserved & MS_RESERVED_EPB) && rbsp != nal) {
        doc = nal;
        doc_len = media_epb_offset(nal, len, p.doc_len);
    }
    if (p.n_hashes > MS_MAX_GOP_NALS) {
        ms_verifier_problem(v, "a media signing SEI lists %zu hashes", p.n_hashes);
        return CT_OK;
    }
    sei_info *s = &v->scratch;
    s->has_list = p.has_hashes;
    s->n = p.n_hashes;
    if (p.n_hashes) memcpy(s->hashes, p.hashes, p.n_hashes * MS_HASH_LEN);
    memcpy(s->gop_hash, p.gop_hash, MS_HASH_LEN);
    memcpy(s->linked, p.linked, MS_HASH_LEN);
    s->counter = p.counter;
    s->has_psets = p.has_psets;
    s->psets_last_groups = p.psets_version == 1;
    v->any_psets = v->any_psets || p.has_psets;
    memcpy(s->psets, p.psets, MS_HASH_LEN);
    s->detail[0] = '\0';
    CT_GUARD_RET(judge_sei(v, &p, doc, doc_len, s));
    if (p.has_general) add_sei(v, s); /* the certificate SEI only brings the chain */
    /* Live: the camera writes a GOP's signature right after its last picture. One covering exactly the open GOP
     * closes it, and signed GOPs are reported at once rather than after EMIT_AFTER more (a viewer shows a
     * segment only once its GOPs are reported). Pictures after it, before the next I-frame, belong to no GOP. */
    if (v->cfg.live && p.has_general && v->cur.started && s->has_list && s->n > 0 && s->n == v->cur.n &&
        memcmp(s->hashes[0], v->cur.anchor, MS_HASH_LEN) == 0) {
        CT_GUARD_RET(finish_gop(v));
        while (v->ring_n > 0 && ring_at(v, 0)->matched) emit_head(v, false);
    }
    return CT_OK;
}

/* Types that H.264 and H.265 leave unspecified (H.264 0 and 24-31, H.265 48-63) no encoder writes into an MP4
 * sample, and the verifier passes over them, yet players act on some: ffmpeg takes a sample that starts like an avcC
 * record for new parameter sets and NAL length size (with 2-byte lengths, which the sample entry may claim as it
 * likes, such a sample is one NAL unit of type 0 here; with 1 or 4 bytes it holds one the verifier finds invalid), and
 * ISO/IEC 14496-15 readers unpack aggregators and resolve extractors (H.264 30/31, H.265 48/49) into NAL units that
 * no signature covers. */
ct_err ms_verifier_push_sample(ms_verifier *v, const uint8_t *nal, size_t len, double t)
{
    media_nal_info i = media_nal_classify(v->codec, nal, len);
    if (i.kind == MEDIA_NAL_OTHER && (v->codec == MEDIA_H265 ? i.type >= 48 : i.type == 0 || i.type >= 24))
        ms_verifier_problem(v, "an MP4 video sample holds a NAL unit of type %u, which %s leaves unspecified: a player "
                               "may take it for parameter sets (ffmpeg) or NAL units (an aggregator or extractor) that "
                               "no signature covers", i.type, media_codec_name(v->codec));
    return ms_verifier_push(v, nal, len, t);
}

ct_err ms_verifier_push(ms_verifier *v, const uint8_t *nal, size_t len, double t)
{
    media_nal_info info;
    ms_role role = ms_nal_role(v->codec, nal, len, &info);
    if (media_nal_is_vcl(info.kind) && info.first_slice) v->frames++;
    uint64_t frame = v->frames ? v->frames - 1 : 0;
    switch (role) {
    case MS_ROLE_SEI: return on_sei(v, nal, len);
    case MS_ROLE_INVALID:
        ms_verifier_problem(v, "invalid NAL unit header at frame %llu", (unsigned long long)frame);
        return CT_OK;
    case MS_ROLE_GOP_START:
        CT_GUARD_RET(finish_gop(v));
        if (v->lead_n) {
            ms_gop_report r = {MS_MISSING, v->lead_first, frame - 1, v->lead_t0, v->lead_t1, 0, false, 0, ""};
            set_detail(r.detail, sizeof r.detail, "the clip starts inside a GOP whose I-frame is not in the clip: "
                                                  "%llu picture(s) cannot be verified", (unsigned long long)v->lead_n);
            report(v, &r);
            v->lead_n = 0;
        }
        v->cur_first = frame;
        v->cur_t0 = t;
        v->cur_unhashed = v->cur_extension = 0;
        v->gop_seq++;
        break;
    case MS_ROLE_PARAM:
        return ps_note(v, nal, len, info.type); /* and the run's digest (ms_psets_param) */
    case MS_ROLE_PICTURE:
    case MS_ROLE_UNHASHED:
        if (!v->cur.started) {
            if (v->lead_n++ == 0) v->lead_first = frame, v->lead_t0 = t;
            v->lead_t1 = t;
            return CT_OK;
        }
        if (role == MS_ROLE_UNHASHED) {
            v->cur_unhashed++;
            v->cur_extension += !media_nal_is_vcl(info.kind); /* H.264 19-21 */
            return CT_OK;
        }
        break;
    default: return CT_OK;
    }
    if (v->cur.n < MS_MAX_GOP_NALS) v->cur_frames[v->cur.n] = (uint32_t)frame;
    CT_GUARD_RET(ps_picture(v, role == MS_ROLE_GOP_START, v->cur.ps.open));
    ct_err rc = ms_gop_add(&v->cur, nal, len, role == MS_ROLE_GOP_START);
    if (rc == CT_ERR_TOO_LARGE) {
        ms_verifier_problem(v, "a GOP longer than %d picture NAL units at frame %llu", MS_MAX_GOP_NALS,
                            (unsigned long long)frame);
        return CT_OK;
    }
    v->cur_last = frame;
    v->cur_t1 = t;
    return rc;
}

ct_err ms_verifier_push_entry(ms_verifier *v, const uint8_t *nal, size_t len)
{
    /* A player reads the sample entry once, before the first picture, and the camera signed it once, there; the live
     * viewer hands it again with every segment (cenc_walk), before sets in band that may have replaced it since. */
    if (v->frames) return CT_OK;
    v->in_entry = true;
    ct_err rc = ms_verifier_push(v, nal, len, -1);
    v->in_entry = false;
    return rc;
}

ct_err ms_verifier_finish(ms_verifier *v, ms_summary *sum)
{
    CT_GUARD_RET(finish_gop(v));
    if (v->entry_differs >= 0 && v->any_psets) {
        char set[32];
        ps_describe(v, v->entry_differs, set, sizeof set);
        ms_verifier_problem(v, "the MP4 sample entry's parameter set (avcC/hvcC: %s) differs from the one in the "
                               "samples that the signatures cover: a player that decodes with the sample entry's shows "
                               "other pictures", set);
    }
    if (v->lead_n) {
        ms_gop_report r = {MS_MISSING, v->lead_first, v->frames - 1, v->lead_t0, v->lead_t1, 0, false, 0, ""};
        set_detail(r.detail, sizeof r.detail, "no I-frame in the clip: %llu picture(s) cannot be verified",
                   (unsigned long long)v->lead_n);
        report(v, &r);
        v->lead_n = 0;
    }
    emit_ready(v, true);
    v->sum.frames = v->frames;
    if (v->frames == 0) ms_verifier_problem(v, "no pictures in the clip");
    v->sum.authentic = v->sum.gops > 0 && v->sum.count[MS_AUTHENTIC] == v->sum.gops && !v->sum.problem[0];
    *sum = v->sum;
    return CT_OK;
}
