/*
 * libFuzzer driver for the curation's parsers of untrusted text: the
 * filter language (src/loop/predicate.c) and the curation spec
 * (src/loop/spec.c).  The first byte picks which one reads the rest.
 * Besides the sanitizers, it checks what they promise:
 *   - a predicate parses, or fails with "position N: ..." where N is within
 *     the text (+1 for the end);
 *   - a parsed predicate's canonical text parses again to the same text
 *     (the canonical form is a fixed point, so a spec's id is stable);
 *   - evaluating a parsed predicate on an example with and without scores
 *     answers 0 or 1;
 *   - a spec parses to a canonical text that is valid JSON, or fails with
 *     an error that starts with the source's name.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "loop/predicate.h"
#include "loop/spec.h"

static void fuzz_predicate(const char *text, size_t len)
{
    char err[256] = "";
    gyre_predicate_t *p = gyre_predicate_parse(text, err, sizeof(err));
    if (p == NULL) {
        if (strncmp(err, "position ", 9) != 0)
            abort();
        unsigned long pos = strtoul(err + 9, NULL, 10);
        if (pos < 1 || pos > len + 1)
            abort();
        return;
    }
    gyre_buf_t a, b;
    gyre_buf_init(&a, 1 << 20);
    gyre_buf_init(&b, 1 << 20);
    gyre_predicate_canonical(p, &a);
    if (gyre_buf_failed(&a) == 0) {
        gyre_predicate_t *q = gyre_predicate_parse(a.base, err, sizeof(err));
        /* A canonical text longer than the parser's bound is the one case it may refuse. */
        if (q == NULL && a.len <= GYRE_PREDICATE_MAX_LEN)
            abort();
        if (q != NULL) {
            gyre_predicate_canonical(q, &b);
            if (strcmp(a.base, b.base) != 0)
                abort();
            gyre_predicate_free(q);
        }
    }
    static const gyre_example_score_t scores[] = {
        {"correctness", 3, "1", 0.9, NULL}, {"refusal", 2, "1", 1, NULL}, {"topic", 1, "", NAN, "billing"}};
    gyre_example_t ex;
    memset(&ex, 0, sizeof(ex));
    ex.route = "support";
    ex.status = 200;
    ex.cost_usd = NAN;
    ex.latency_us = -1;
    ex.prompt_tokens = ex.completion_tokens = -1;
    ex.cluster = -1;
    int r = gyre_predicate_eval(p, &ex);
    ex.scores = scores;
    ex.nscores = 3;
    ex.correction = "x";
    int s = gyre_predicate_eval(p, &ex);
    if ((r != 0 && r != 1) || (s != 0 && s != 1))
        abort();
    gyre_buf_dispose(&a);
    gyre_buf_dispose(&b);
    gyre_predicate_free(p);
}

static void fuzz_spec(const char *text, size_t len)
{
    char err[512] = "";
    gyre_curate_spec_t *s = gyre_curate_spec_parse(text, len, "fuzz.yaml", 1765000000000000LL, err, sizeof(err));
    if (s == NULL) {
        if (strncmp(err, "fuzz.yaml", 9) != 0)
            abort();
        return;
    }
    cJSON *j = cJSON_Parse(s->canonical);
    if (j == NULL || strlen(s->canonical) != s->canonical_len)
        abort();
    cJSON_Delete(j);
    gyre_curate_spec_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] & 1)
        fuzz_spec(text, strlen(text));
    else
        fuzz_predicate(text, strlen(text));
    free(text);
    return 0;
}
