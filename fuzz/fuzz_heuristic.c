/*
 * libFuzzer driver for the heuristic checks (src/loop/heuristic.c), the JSON Schema validator under them
 * (src/loop/jsonschema.c) and the reader of an answer's text (gyre_guard_answer_text, src/loop/guard.c): every
 * kind over hostile bytes, the bytes also as a schema (checked and used, as a request's tool schema is) and as a
 * chat.completion.
 *
 * The input is split at its first NUL: before it, the text (the answer, the arguments); after it, a schema / the
 * tools.  Checks: nothing crashes or leaks, a failing result always says why, a passing one never does, and the
 * text read out of a completion lies within what was read (or in the pool) and is no longer than twice the input.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "loop/guard.h"
#include "loop/heuristic.h"
#include "loop/jsonschema.h"

static gyre_heuristic_t *kinds[9];

static void setup(void)
{
    static char *must[] = {"[0-9]{3}-[0-9]{2}-[0-9]{4}", "^(a|b)*c$"};
    static char *must_not[] = {"(x+x+)+y", "pass(word)?"};
    static char *terms[] = {"nope", "go away"};
    gyre_scorer_conf_t confs[9] = {
        {.name = "jv", .kind = GYRE_SCORER_JSON_VALID},
        {.name = "js",
         .kind = GYRE_SCORER_JSON_SCHEMA,
         .schema_json = "{\"type\":\"object\",\"required\":[\"a\"],\"properties\":{\"a\":{\"anyOf\":[{\"type\":\"string\","
                        "\"maxLength\":5},{\"type\":\"array\",\"items\":{\"oneOf\":[{\"type\":\"integer\"},{\"enum\":[1,"
                        "\"x\",null]}]}}]}},\"additionalProperties\":{\"const\":{\"k\":[true]}}}"},
        {.name = "re", .kind = GYRE_SCORER_REGEX, .must = must, .nmust = 2, .must_not = must_not, .nmust_not = 2},
        {.name = "ref", .kind = GYRE_SCORER_REFUSAL, .terms = terms, .nterms = 2},
        {.name = "ta", .kind = GYRE_SCORER_TOOL_ARGS},
        {.name = "len", .kind = GYRE_SCORER_LENGTH, .min_chars = 2, .max_chars = 100},
        {.name = "lat", .kind = GYRE_SCORER_LATENCY, .max_latency_ms = 5},
        {.name = "cost", .kind = GYRE_SCORER_COST, .max_cost_usd = 0.5},
        {.name = "tox", .kind = GYRE_SCORER_TOXICITY, .terms = terms, .nterms = 2},
    };
    char err[256];
    for (size_t i = 0; i < 9; i++)
        if ((kinds[i] = gyre_heuristic_compile(&confs[i], err, sizeof(err))) == NULL)
            abort();
}

static void check_result(const gyre_check_result_t *r)
{
    if (r->pass != 0 && r->pass != 1)
        abort();
    if (r->pass ? r->reason[0] != '\0' : r->reason[0] == '\0')
        abort();
    if (memchr(r->reason, '\0', sizeof(r->reason)) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        gyre_json_init();
        setup();
        ready = 1;
    }
    const char *s = (const char *)data;
    const char *nul = memchr(s, '\0', size);
    size_t tlen = nul != NULL ? (size_t)(nul - s) : size;
    /* NUL-terminated copies: the tool kinds read C strings. */
    char *text = malloc(tlen + 1);
    memcpy(text, s, tlen);
    text[tlen] = '\0';
    size_t rest = nul != NULL ? size - tlen - 1 : 0;
    char *second = malloc(rest + 1);
    if (rest)
        memcpy(second, nul + 1, rest);
    second[rest] = '\0';

    gyre_check_input_t in = {.text = text,
                             .len = tlen,
                             .tool_calls_json = text,
                             .tools_json = nul != NULL ? second : NULL,
                             .latency_us = size > 0 ? (int64_t)data[0] * 100 : -1,
                             .cost_usd = size > 1 ? data[1] / 100.0 : NAN};
    for (size_t i = 0; i < 9; i++) {
        gyre_check_result_t r;
        gyre_heuristic_run(kinds[i], &in, &r);
        check_result(&r);
    }

    /* The second part as an untrusted schema, the first as the document. */
    cJSON *schema = cJSON_ParseWithLength(second, rest);
    cJSON *doc = cJSON_ParseWithLength(text, tlen);
    if (schema != NULL) {
        char err[200];
        gyre_jsonschema_check(schema, err, sizeof(err));
        if (doc != NULL) {
            char why[200];
            int ok = gyre_jsonschema_validate(schema, doc, why, sizeof(why));
            if (!ok && why[0] == '\0')
                abort();
        }
    }
    cJSON_Delete(schema);
    cJSON_Delete(doc);

    /* The whole input as a chat.completion. */
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    const char *out = NULL;
    size_t olen = 0;
    if (gyre_guard_answer_text(s, size, &pool, &out, &olen) == 0) {
        if (olen > 2 * size)
            abort();
        volatile char sink = 0;
        for (size_t i = 0; i < olen; i++)
            sink ^= out[i]; /* every byte readable (ASan checks) */
        (void)sink;
    }
    h2o_mem_clear_pool(&pool);
    free(text);
    free(second);
    return 0;
}
