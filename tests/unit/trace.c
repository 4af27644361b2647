#include "trace/trace.h"

#include <math.h>
#include <stdlib.h>

#include "test.h"

#define TS(s) ((gyre_tstr_t){(char *)(s), sizeof(s) - 1})

TEST(trace_copy_owns_every_string_nul_terminated)
{
    /* Sources that are not NUL-terminated, as in the request's pool. */
    char pool[] = "openai/gpt-4oXXXX";
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    strcpy(t.trace_id, "0123456789abcdef0123456789abcdef");
    strcpy(t.span_id, "0123456789abcdef");
    t.provider = (gyre_tstr_t){pool, 6};
    t.model = (gyre_tstr_t){pool + 7, 6};
    t.started_us = 10;
    t.ended_us = 20;
    t.cost_usd = NAN;
    t.prompt_tokens = -1;
    t.nattempts = 1;
    t.attempts[0].key_id = TS("openai#0");
    t.attempts[0].status = 429;
    t.ntags = 2;
    t.tags[0] = TS("a");
    t.tags[1] = TS("bb");
    t.nmeta = 1;
    t.meta[0].key = TS("k");
    t.meta[0].value = TS("v");
    t.request_body = TS("{}");

    gyre_trace_t *c = gyre_trace_copy(&t);
    memset(pool, 'Z', sizeof(pool) - 1);
    CHECK_STR(c->trace_id, "0123456789abcdef0123456789abcdef");
    CHECK_STR(c->span_id, "0123456789abcdef");
    CHECK_STR(c->parent_span_id, "");
    CHECK_STR(c->provider.p, "openai");
    CHECK_INT(c->provider.len, 6);
    CHECK_STR(c->model.p, "gpt-4o");
    CHECK_STR(c->attempts[0].key_id.p, "openai#0");
    CHECK_INT(c->attempts[0].status, 429);
    CHECK_STR(c->attempts[0].provider.p, "");
    CHECK_STR(c->tags[1].p, "bb");
    CHECK_STR(c->meta[0].value.p, "v");
    CHECK_STR(c->request_body.p, "{}");
    CHECK_STR(c->response_body.p, "");
    CHECK_INT(c->response_body.len, 0);
    CHECK_INT(c->started_us, 10);
    CHECK_INT(c->ended_us, 20);
    CHECK_INT(c->prompt_tokens, -1);
    CHECK(isnan(c->cost_usd));
    /* Every string lies inside the one allocation. */
    CHECK(c->provider.p > (char *)c && c->provider.p < (char *)c + sizeof(*c) + 64);
    CHECK(c->tags[2].p == NULL);
    free(c);
}

TEST(trace_copy_clamps_counts_past_the_arrays)
{
    gyre_trace_t t;
    memset(&t, 0, sizeof(t));
    t.ntags = GYRE_TRACE_MAX_TAGS + 5;
    for (size_t i = 0; i < GYRE_TRACE_MAX_TAGS; i++)
        t.tags[i] = TS("t");
    gyre_trace_t *c = gyre_trace_copy(&t);
    CHECK_INT(c->ntags, GYRE_TRACE_MAX_TAGS);
    CHECK_STR(c->tags[GYRE_TRACE_MAX_TAGS - 1].p, "t");
    free(c);
}
