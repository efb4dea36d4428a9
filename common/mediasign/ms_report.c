/* camtrust-verify's output: one line per GOP and a summary, or the same as one JSON document. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include "ms_priv.h"

typedef struct {
    FILE *out;
    bool json;
    size_t n;
} printer;

/* "" for 0: no signing or recording time was given. */
static void utc(time_t t, char out[CT_TIME_UTC_MAX])
{
    if (t) ct_time_utc((int64_t)t, out);
    else out[0] = '\0';
}

/* A JSON string as core escapes it (paths and names from outside: controls, and bytes that are not UTF-8). */
static void json_str(FILE *f, const char *s)
{
    ct_buf b = CT_BUF_INIT;
    if (ct_buf_alloc(&b, 6 * strlen(s) + 3) == CT_OK && ct_json_string(&b, s) == CT_OK) fwrite(b.data, 1, b.len, f);
    else fputs("\"\"", f); /* out of memory: an empty string keeps the document valid */
    ct_buf_free(&b);
}

static void time_range(const ms_gop_report *g, char *out, size_t max)
{
    if (g->t_start < 0 || ct_snprintf(out, max, "%.3f-%.3fs", g->t_start, g->t_end) != CT_OK) out[0] = '\0';
}

void ms_print_gop(FILE *out, size_t n, const ms_gop_report *g)
{
    char when[CT_TIME_UTC_MAX], range[64];
    utc(g->signed_at, when);
    time_range(g, range, sizeof range);
    fprintf(out, "GOP %-4zu frames %6llu-%-6llu %-18s %-10s %s%s%s\n", n, (unsigned long long)g->first_frame,
            (unsigned long long)g->last_frame, range[0] ? range : when, ms_status_name(g->status), g->detail,
            range[0] && when[0] ? "  signed at " : "", range[0] ? when : "");
}

static void on_gop(const ms_gop_report *g, void *arg)
{
    printer *p = arg;
    char when[CT_TIME_UTC_MAX], range[64];
    utc(g->signed_at, when);
    time_range(g, range, sizeof range);
    p->n++;
    if (!p->json) {
        ms_print_gop(p->out, p->n, g);
        return;
    }
    fprintf(p->out, "%s\n  {\"gop\": %zu, \"status\": \"%s\", \"first_frame\": %llu, \"last_frame\": %llu", p->n > 1 ? "," : "",
            p->n, ms_status_name(g->status), (unsigned long long)g->first_frame, (unsigned long long)g->last_frame);
    if (g->t_start >= 0) fprintf(p->out, ", \"t_start\": %.3f, \"t_end\": %.3f", g->t_start, g->t_end);
    if (g->has_counter) fprintf(p->out, ", \"counter\": %u", g->counter);
    if (when[0]) fprintf(p->out, ", \"signed_at\": \"%s\"", when);
    fputs(", \"detail\": ", p->out);
    json_str(p->out, g->detail);
    fputc('}', p->out);
}

static void counts_line(FILE *f, const ms_summary *s)
{
    bool first = true;
    for (int i = 0; i < MS_STATUS__COUNT; i++) {
        if (!s->count[i]) continue;
        fprintf(f, "%s%zu %s", first ? "" : ", ", s->count[i], ms_status_name((ms_status)i));
        first = false;
    }
    if (first) fputs("no GOPs", f);
}

void ms_print_summary(FILE *f, const char *path, const ms_summary *s)
{
    char when[CT_TIME_UTC_MAX];
    utc(s->recorded_at, when);
    fprintf(f, "clip: %s (%s, %s, %llu pictures, %llu signature SEIs)\n", path, s->container, media_codec_name(s->codec),
            (unsigned long long)s->frames, (unsigned long long)s->sei_count);
    if (s->camera_known)
        fprintf(f, "camera: serial \"%s\", model \"%s\" (certificate CN \"%s\", issued by \"%s\"; vendor \"%s\", firmware "
                   "\"%s\")\n",
                s->serial, s->model, s->cn, s->issuer, s->manufacturer, s->firmware);
    else
        fputs("camera: not identified (no trusted signature)\n", f);
    fprintf(f, "chain: %s\nrecorded: %s (%s); certificates judged at that time\nrevocation: %s\n", s->chain, when,
            s->time_source, s->revocation);
    if (s->have_counters) {
        /* A clip cut from a recording verifies on its own: say which part it is, and what cannot be told. */
        fprintf(f, "signed GOPs: %u-%u of the camera's recording", s->first_counter, s->last_counter);
        if (s->first_counter > 1)
            fprintf(f, " (it counts from 1: the %u GOP(s) before are not in this clip)", s->first_counter - 1);
        else
            fputs(" (from its start)", f);
        fprintf(f, "; whether it went on after GOP %u cannot be told from the clip\n", s->last_counter);
    }
    if (s->problem[0]) fprintf(f, "problem: %s\n", s->problem);
    fprintf(f, "result: %s (", s->authentic ? "AUTHENTIC" : "NOT AUTHENTIC");
    counts_line(f, s);
    fputs(")\n", f);
}

static void print_json(FILE *f, const char *path, const ms_summary *s)
{
    char when[CT_TIME_UTC_MAX];
    utc(s->recorded_at, when);
    fputs("\n ],\n \"file\": ", f);
    json_str(f, path);
    fprintf(f, ", \"container\": \"%s\", \"codec\": \"%s\", \"pictures\": %llu, \"signature_seis\": %llu,\n \"camera\": ",
            s->container, media_codec_name(s->codec), (unsigned long long)s->frames, (unsigned long long)s->sei_count);
    if (s->camera_known) {
        const char *keys[] = {"serial", "model", "cn", "issuer", "manufacturer", "firmware"};
        const char *vals[] = {s->serial, s->model, s->cn, s->issuer, s->manufacturer, s->firmware};
        for (size_t i = 0; i < 6; i++) {
            fprintf(f, "%s\"%s\": ", i ? ", " : "{", keys[i]);
            json_str(f, vals[i]);
        }
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs(",\n \"chain\": ", f);
    json_str(f, s->chain);
    fprintf(f, ", \"recorded_at\": \"%s\", \"time_source\": ", when);
    json_str(f, s->time_source);
    fputs(", \"revocation\": ", f);
    json_str(f, s->revocation);
    fputs(", \"problem\": ", f);
    json_str(f, s->problem);
    if (s->have_counters)
        fprintf(f, ", \"signed_gops\": {\"first\": %u, \"last\": %u}", s->first_counter, s->last_counter);
    fputs(",\n \"counts\": {", f);
    for (int i = 0; i < MS_STATUS__COUNT; i++) fprintf(f, "%s\"%s\": %zu", i ? ", " : "", ms_status_name((ms_status)i), s->count[i]);
    fprintf(f, "}, \"authentic\": %s\n}\n", s->authentic ? "true" : "false");
}

ct_err ms_verify_print(const char *path, const media_file *clip, const ms_verify_config *cfg, bool json, FILE *out,
                       bool *authentic)
{
    printer p = {out, json, 0};
    ms_summary s;
    *authentic = false;
    if (json) fputs("{\"gops\": [", out);
    ct_err rc = clip ? ms_verify_data(clip, cfg, on_gop, &p, &s) : ms_verify_file(path, cfg, on_gop, &p, &s);
    if (rc != CT_OK) {
        if (json) fputs("]}\n", out);
        return rc;
    }
    if (json)
        print_json(out, path, &s);
    else
        ms_print_summary(out, path, &s);
    *authentic = s.authentic;
    return CT_OK;
}

/* PEM, or DER as it is. */
/* A root certificate or a CRL: a CRL of a large fleet runs to hundreds of KiB. */
#define MS_ROOT_FILE_MAX (1u << 20)

ct_err ms_verify_paths(const char *root_path, const char *crl_path, const char *serial, const char *clip,
                       const media_file *clip_data, bool json, FILE *out, bool *authentic)
{
    ct_err rc = CT_OK;
    ct_buf root = CT_BUF_INIT, crl = CT_BUF_INIT;
    pki_cert_info info;
    *authentic = false;
    CT_GUARD(ct_pem_or_der_read(root_path, "CERTIFICATE", MS_ROOT_FILE_MAX, &root));
    CT_ENSURE_MSG(pki_cert_parse_info(root.data, root.len, &info) == CT_OK, CT_ERR_CONFIG,
                  "%s is not a certificate: %s", root_path, ct_err_detail());
    if (crl_path) CT_GUARD(ct_pem_or_der_read(crl_path, "X509 CRL", MS_ROOT_FILE_MAX, &crl));
    ms_verify_config cfg = {.root_der = root.data, .root_len = root.len, .crl_der = crl_path ? crl.data : NULL,
                            .crl_len = crl.len, .serial = serial};
    rc = ms_verify_print(clip, clip_data, &cfg, json, out, authentic);
    /* wolfSSL's fixed-point ECC cache is per thread; this thread is done verifying. */
    wc_ecc_fp_free();
cleanup:
    ct_buf_free(&root);
    ct_buf_free(&crl);
    return rc;
}
