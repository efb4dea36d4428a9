/* The camera side: hash picture NAL units as they pass, and at each GOP end have the token sign the GOP's
 * document, in a worker thread when asked (the token's ECDSA never holds up the video path). Memory: one
 * GOP's hashes plus a bounded queue of SEIs being signed. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ms_priv.h"

#define QUEUE MS_SIGNER_QUEUE

typedef struct {
    ct_buf nal; /* document, then (once signed) the SEI with emulation prevention in `sei` */
    ct_buf sei;
    bool done;
    ct_err rc;
} job;

struct ms_signer {
    ms_signer_config cfg;
    ct_buf chain;
    char text[4][MS_TEXT_MAX]; /* the signer's own copies of cfg's serial, model, firmware, manufacturer */
    ms_gop gop;
    int64_t gop_time;
    uint32_t counter;
    uint8_t prev_anchor[MS_HASH_LEN];
    bool have_prev;
    job q[QUEUE];
    size_t head, count; /* jobs queued, done or not, not yet taken */
    size_t next;        /* the next job the worker signs (index from head) */
    pthread_t thread;
    bool thread_on, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void sign_job(ms_signer *s, job *j)
{
    uint8_t digest[MS_HASH_LEN], sig[MS_SIG_MAX + 16];
    size_t sig_len = sizeof sig;
    j->rc = ct_sha256(j->nal.data, j->nal.len, digest);
    if (j->rc == CT_OK) j->rc = hsm_key_sign_digest(s->cfg.key, digest, sizeof digest, sig, &sig_len);
    if (j->rc == CT_OK) j->rc = ms_sei_end(&j->nal, sig, sig_len, &j->sei);
}

static void *worker(void *arg)
{
    ms_signer *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && s->next >= s->count) pthread_cond_wait(&s->cv, &s->mu);
        if (s->next >= s->count) break;
        job *j = &s->q[(s->head + s->next) % QUEUE];
        pthread_mutex_unlock(&s->mu);
        sign_job(s, j);
        pthread_mutex_lock(&s->mu);
        j->done = true;
        s->next++;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    /* wolfSSL keeps a fixed-point ECC cache per thread. */
    wc_ecc_fp_free();
    return NULL;
}

/* Queues the document in `doc` (swapped in, `doc` gets a fresh buffer's place). */
static ct_err submit(ms_signer *s, ct_buf *doc)
{
    pthread_mutex_lock(&s->mu);
    bool full = s->count == QUEUE;
    if (!full) {
        job *j = &s->q[(s->head + s->count) % QUEUE];
        ct_buf t = j->nal;
        j->nal = *doc;
        *doc = t;
        j->done = false;
        j->rc = CT_OK;
        s->count++;
        pthread_cond_broadcast(&s->cv);
    }
    bool threaded = s->thread_on;
    pthread_mutex_unlock(&s->mu);
    CT_ENSURE_RET(!full, ct_fail(CT_ERR_UNAVAILABLE, "%d signed SEIs are waiting to be taken", QUEUE));
    if (!threaded) {
        job *j = &s->q[(s->head + s->next) % QUEUE];
        sign_job(s, j);
        j->done = true;
        s->next++;
    }
    return CT_OK;
}

static ct_err make_doc(ms_signer *s, bool suffix, bool gop)
{
    ct_err rc = CT_OK;
    ct_buf doc = CT_BUF_INIT;
    ms_gop_doc d = {&s->gop, s->gop_time, s->counter, s->have_prev ? s->prev_anchor : NULL, s->gop.ps.tlv};
    CT_GUARD(ct_buf_alloc(&doc, MS_MAX_SEI));
    CT_GUARD(ms_sei_begin(s->cfg.codec, suffix, gop ? &d : NULL, &s->cfg, &doc));
    CT_GUARD(submit(s, &doc));
cleanup:
    ct_buf_free(&doc);
    return rc;
}

static ct_err copy_text(char *dst, const char *src)
{
    return ct_strlcpy(dst, MS_TEXT_MAX, src ? src : "");
}

ct_err ms_signer_open(const ms_signer_config *cfg, ms_signer **out)
{
    ct_err rc = CT_OK;
    ms_signer *s = calloc(1, sizeof *s);
    CT_ENSURE(s, CT_ERR_NOMEM);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->cfg = *cfg;
    CT_ENSURE_MSG(cfg->key && cfg->chain_pem && cfg->chain_len > 0, CT_ERR_ARG, "signer needs a key and its chain");
    CT_ENSURE_MSG(cfg->codec == MEDIA_H264 || cfg->codec == MEDIA_H265, CT_ERR_ARG, "codec must be H.264 or H.265");
    CT_GUARD(ct_buf_alloc(&s->chain, cfg->chain_len));
    CT_GUARD(ct_buf_append(&s->chain, cfg->chain_pem, cfg->chain_len));
    s->cfg.chain_pem = s->chain.data;
    const char **texts[4] = {&s->cfg.serial, &s->cfg.model, &s->cfg.firmware, &s->cfg.manufacturer};
    for (size_t i = 0; i < 4; i++) {
        CT_GUARD(copy_text(s->text[i], *texts[i]));
        *texts[i] = s->text[i];
    }
    CT_GUARD(ms_gop_init(&s->gop));
    s->counter = 1;
    for (size_t i = 0; i < QUEUE; i++) {
        CT_GUARD(ct_buf_alloc(&s->q[i].nal, MS_MAX_SEI));
        CT_GUARD(ct_buf_alloc(&s->q[i].sei, MS_MAX_SEI + MS_MAX_SEI / 2)); /* room for emulation prevention */
    }
    /* The certificate SEI first, signed before any picture passes. */
    CT_GUARD(make_doc(s, false, false));
    if (cfg->threaded) {
        CT_ENSURE_MSG(pthread_create(&s->thread, NULL, worker, s) == 0, CT_ERR_INTERNAL, "cannot start the signing thread");
        s->thread_on = true;
    }
    *out = s;
    s = NULL;
cleanup:
    ms_signer_close(s);
    return rc;
}

static ct_err end_gop(ms_signer *s, bool suffix)
{
    if (!s->gop.started) return CT_OK;
    CT_GUARD_RET(make_doc(s, suffix, true));
    memcpy(s->prev_anchor, s->gop.anchor, MS_HASH_LEN);
    s->have_prev = true;
    s->counter++;
    ms_gop_reset(&s->gop);
    return CT_OK;
}

ct_err ms_signer_push(ms_signer *s, const uint8_t *nal, size_t len, int64_t time)
{
    media_nal_info info;
    switch (ms_nal_role(s->cfg.codec, nal, len, &info)) {
    case MS_ROLE_GOP_START:
        CT_GUARD_RET(end_gop(s, false));
        s->gop_time = time;
        return ms_gop_add(&s->gop, nal, len, true);
    case MS_ROLE_PICTURE:
        /* Pictures before the first IRAP belong to no GOP the format can describe: they stay unsigned. */
        return s->gop.started ? ms_gop_add(&s->gop, nal, len, false) : CT_OK;
    case MS_ROLE_PARAM: return ms_psets_param(&s->gop.ps, nal, len, info.type);
    case MS_ROLE_UNHASHED:
        return ct_fail(CT_ERR_BAD_REQUEST, "%s NAL unit type %u (leading, layer or auxiliary pictures) cannot be "
                                           "signed: ONVIF Media Signing does not hash it; encode closed GOPs without them",
                       media_codec_name(s->cfg.codec), info.type);
    default:
        return CT_OK;
    }
}

ct_err ms_signer_certificate(ms_signer *s) { return make_doc(s, false, false); }

ct_err ms_signer_finish(ms_signer *s)
{
    /* H.265 has suffix SEIs for what follows the last picture; H.264 takes the SEI as it is. */
    return end_gop(s, s->cfg.codec == MEDIA_H265);
}

ct_err ms_signer_take(ms_signer *s, bool wait, ct_buf *out, bool *ready)
{
    ct_err rc = CT_OK;
    *ready = false;
    pthread_mutex_lock(&s->mu);
    while (wait && s->count > 0 && !s->q[s->head].done) pthread_cond_wait(&s->cv, &s->mu);
    job *j = s->count > 0 && s->q[s->head].done ? &s->q[s->head] : NULL;
    pthread_mutex_unlock(&s->mu);
    if (!j) return CT_OK;
    rc = j->rc;
    if (rc == CT_OK && !out->data) rc = ct_buf_alloc(out, MS_MAX_SEI + MS_MAX_SEI / 2);
    if (rc == CT_OK) rc = ct_buf_set(out, j->sei.data, j->sei.len);
    pthread_mutex_lock(&s->mu);
    s->head = (s->head + 1) % QUEUE;
    s->count--;
    s->next--;
    pthread_mutex_unlock(&s->mu);
    *ready = rc == CT_OK;
    return rc;
}

uint32_t ms_signer_gops(const ms_signer *s)
{
    return s->counter - 1;
}

size_t ms_signer_backlog(ms_signer *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void ms_signer_close(ms_signer *s)
{
    if (!s) return;
    if (s->thread_on) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (size_t i = 0; i < QUEUE; i++) {
        ct_buf_free(&s->q[i].nal);
        ct_buf_free(&s->q[i].sei);
    }
    ms_gop_free(&s->gop);
    ct_buf_free(&s->chain);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
