/*
 * libFuzzer driver for the OTLP ingest parsers (src/otlp/ingest.c): the
 * input is an ExportTraceServiceRequest body, OTLP/JSON here and
 * OTLP/protobuf in fuzz_otlp_proto.c, which includes this file with
 * OTLP_FUZZ_FORMAT set.  The body is copied into an allocation of exactly
 * its size, so a read past it is caught.
 *
 * The promises checked:
 * - ingest returns 0 or -EINVAL; on -EINVAL it says why and has handed on
 *   no trace (the body is read whole first); on 0 every span is counted
 *   once, as stored, skipped or rejected;
 * - every trace it produces has valid ids (32 lowercase hex digits for
 *   trace_id and otel_trace_id, 16 for span_id, parent_span_id empty or 16)
 *   and bounded strings and counts, and ends no earlier than it starts;
 * - a produced trace, exported (encode.c) and ingested again, comes back
 *   under the same ids, times, status and token counts.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp/otlp.h"

#ifndef OTLP_FUZZ_FORMAT
#define OTLP_FUZZ_FORMAT GYRE_OTLP_JSON
#endif

static int hex_ok(const char *s, size_t n, int may_be_empty)
{
    if (may_be_empty && s[0] == '\0')
        return 1;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[n] == '\0';
}

static void check_str(const gyre_tstr_t *s, size_t max)
{
    if (s->len > max || (s->len != 0 && s->p == NULL))
        abort();
    /* Touch every byte: a string pointing outside live memory is caught here. */
    volatile char sink = 0;
    for (size_t i = 0; i < s->len; i++)
        sink ^= s->p[i];
    (void)sink;
}

static void check_trace(const gyre_trace_t *t)
{
    if (!hex_ok(t->trace_id, 32, 0) || !hex_ok(t->otel_trace_id, 32, 0) || !hex_ok(t->span_id, 16, 0) ||
        !hex_ok(t->parent_span_id, 16, 1))
        abort();
    if (t->ended_us < t->started_us || t->nattempts > GYRE_TRACE_MAX_ATTEMPTS || t->ntags > GYRE_TRACE_MAX_TAGS ||
        t->nmeta > GYRE_TRACE_MAX_META)
        abort();
    const gyre_tstr_t *fields[] = {&t->request_id, &t->endpoint, &t->route,  &t->provider, &t->model,
                                   &t->finish_reason, &t->session, &t->agent, &t->user};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        check_str(fields[i], GYRE_OTLP_FIELD_MAX);
    check_str(&t->request_body, GYRE_OTLP_BODY_MAX);
    check_str(&t->response_body, GYRE_OTLP_BODY_MAX);
    for (size_t i = 0; i < t->ntags; i++)
        check_str(&t->tags[i], 128);
    for (size_t i = 0; i < t->nmeta; i++) {
        check_str(&t->meta[i].key, GYRE_OTLP_FIELD_MAX);
        check_str(&t->meta[i].value, GYRE_OTLP_FIELD_MAX);
    }
    for (size_t i = 0; i < t->nattempts; i++) {
        check_str(&t->attempts[i].provider, GYRE_OTLP_FIELD_MAX);
        check_str(&t->attempts[i].model, GYRE_OTLP_FIELD_MAX);
        check_str(&t->attempts[i].key_id, GYRE_OTLP_FIELD_MAX);
        check_str(&t->attempts[i].error, GYRE_OTLP_FIELD_MAX);
    }
}

typedef struct again {
    const gyre_trace_t *want;
    int seen;
} again_t;

static void again_cb(const gyre_trace_t *t, void *ctx)
{
    again_t *a = ctx;
    const gyre_trace_t *w = a->want;
    a->seen++;
    check_trace(t);
    if (strcmp(t->trace_id, w->trace_id) != 0 || strcmp(t->otel_trace_id, w->otel_trace_id) != 0 ||
        strcmp(t->span_id, w->span_id) != 0 || strcmp(t->parent_span_id, w->parent_span_id) != 0 ||
        t->started_us != w->started_us || t->ended_us != w->ended_us || t->status != w->status ||
        t->prompt_tokens != w->prompt_tokens || t->completion_tokens != w->completion_tokens ||
        t->cached_tokens != w->cached_tokens || t->reasoning_tokens != w->reasoning_tokens ||
        t->nattempts != w->nattempts)
        abort();
}

static void produced_cb(const gyre_trace_t *t, void *ctx)
{
    size_t *n = ctx;
    (*n)++;
    check_trace(t);
    gyre_buf_t b;
    gyre_buf_init(&b, (size_t)64 << 20);
    const gyre_trace_t *one[1] = {t};
    size_t enc = 0;
    if (gyre_otlp_encode_request(&b, one, 1, "fuzz", NULL, &enc) != 0 || enc != 1)
        abort();
    again_t a = {t, 0};
    gyre_otlp_ingest_result_t res;
    if (gyre_otlp_ingest(b.base, b.len, GYRE_OTLP_JSON, again_cb, &a, &res) != 0 || a.seen != 1 || res.stored != 1)
        abort();
    gyre_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    size_t produced = 0;
    gyre_otlp_ingest_result_t res;
    int rc = gyre_otlp_ingest(body, size, OTLP_FUZZ_FORMAT, produced_cb, &produced, &res);
    if (rc == -EINVAL) {
        if (produced != 0 || res.message[0] == '\0')
            abort();
    } else if (rc != 0 || res.stored != produced || res.stored + res.skipped + res.rejected != res.spans) {
        abort();
    }
    free(body);
    return 0;
}
