/*
 * libFuzzer driver for the loop's readers of untrusted bytes: hostile
 * stored bodies through gyre_corpus_example_from_row (src/loop/corpus.c),
 * and, when bit 4 of the first byte is set, the rest as a POST /v1/feedback
 * body through gyre_feedback_parse (src/loop/feedback.c) against a config
 * declaring one metric of each type.
 *
 * The input's first byte picks the endpoint (0: /v1/chat/completions,
 * 1: /v1/messages, 2: /v1/responses, 3: another) and the status (bit 2:
 * 500 rather than 200); the rest is the request body, then a NUL, then the
 * answer body.  Promises checked:
 *   - a call is refused with -EINVAL or -E2BIG and a message, never a crash;
 *   - an accepted one's messages_json, tools_json and answer_json are valid
 *     JSON (an array, an array, an object) whatever bytes the bodies held
 *     (ill-formed UTF-8 included), and every string is NUL-terminated inside
 *     the scratch buffer;
 *   - an error status never has an answer;
 *   - feedback is accepted with a declared metric's name and a value of its
 *     type in range, or refused with -EINVAL naming a field (or the body).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "loop/corpus.h"
#include "loop/feedback.h"

#define check(ok)                                                                                                      \
    do {                                                                                                               \
        if (!(ok)) {                                                                                                   \
            fprintf(stderr, "fuzz_corpus.c:%d: check(%s) failed\n", __LINE__, #ok);                                    \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static void check_json(const char *s, int array)
{
    check(gyre_json_valid(s, strlen(s)));
    cJSON *v = cJSON_Parse(s);
    check(v != NULL);
    check(array ? cJSON_IsArray(v) : cJSON_IsObject(v));
    cJSON_Delete(v);
}

static void check_inside(const gyre_buf_t *b, const char *s)
{
    if (s == NULL)
        return;
    check(s >= b->base && s < b->base + b->len);
    check(memchr(s, '\0', (size_t)(b->base + b->len - s)) != NULL);
}

static const gyre_config_t *feedback_config(void)
{
    static gyre_config_t *c;
    if (c == NULL) {
        static const char yaml[] = "feedback:\n  metrics:\n    - {name: ok, type: boolean}\n"
                                   "    - {name: r, type: number, min: 1, max: 5}\n"
                                   "    - {name: t, type: category, categories: [a, b]}\n";
        gyre_config_errors_t e = {0};
        c = gyre_config_parse("fuzz.yaml", yaml, sizeof(yaml) - 1, &e);
        check(c != NULL);
        gyre_config_errors_dispose(&e);
    }
    return c;
}

static void fuzz_feedback(const char *body, size_t n)
{
    gyre_feedback_t f;
    const char *param = NULL;
    char err[256] = "";
    int r = gyre_feedback_parse(feedback_config(), body, n, &f, &param, err, sizeof(err));
    if (r != 0) {
        check(r == -EINVAL && err[0] != '\0');
        return;
    }
    check(f.name != NULL && (strcmp(f.name, "ok") == 0 || strcmp(f.name, "r") == 0 || strcmp(f.name, "t") == 0));
    check((f.trace_id[0] != '\0') != (f.session != NULL));
    if (strcmp(f.name, "ok") == 0)
        check(f.value == 0 || f.value == 1);
    if (strcmp(f.name, "r") == 0)
        check(f.value >= 1 && f.value <= 5);
    if (strcmp(f.name, "t") == 0)
        check(isnan(f.value) && f.label != NULL && (strcmp(f.label, "a") == 0 || strcmp(f.label, "b") == 0));
    gyre_buf_t out;
    gyre_buf_init(&out, 1u << 22);
    check(gyre_feedback_render(&f, &out) == 0);
    check(gyre_json_valid(out.base, out.len));
    gyre_buf_dispose(&out);
    gyre_feedback_dispose(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 1 && (data[0] & 16)) {
        fuzz_feedback((const char *)data + 1, size - 1);
        return 0;
    }
    static const char *const endpoints[] = {"/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/embeddings"};
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    const char *nul = memchr(body, '\0', n);
    size_t req_len = nul != NULL ? (size_t)(nul - body) : n;
    const char *resp = nul != NULL ? nul + 1 : NULL;
    size_t resp_len = nul != NULL ? n - req_len - 1 : 0;

    gyre_store_row_t row;
    memset(&row, 0, sizeof(row));
    const char *ep = endpoints[data[0] & 3];
    row.endpoint = (gyre_tstr_t){(char *)ep, strlen(ep)};
    row.trace_id = (gyre_tstr_t){(char *)"0123456789abcdef0123456789abcdef", 32};
    row.status = data[0] & 4 ? 500 : 200;
    row.cost_usd = NAN;
    row.cluster = -1;

    /* A small bound now and then, so the -E2BIG paths run too. */
    gyre_buf_t scratch;
    gyre_buf_init(&scratch, data[0] & 8 ? 256 : 1u << 20);
    gyre_example_t ex;
    char err[256] = "";
    int r = gyre_corpus_example_from_row(&row, body, req_len, resp, resp_len, &scratch, &ex, err, sizeof(err));
    if (r != 0) {
        check(r == -EINVAL || r == -E2BIG);
        check(err[0] != '\0');
    } else {
        check_inside(&scratch, ex.messages_json);
        check_inside(&scratch, ex.tools_json);
        check_inside(&scratch, ex.answer_json);
        check_inside(&scratch, ex.task_text);
        check_inside(&scratch, ex.answer_text);
        check_inside(&scratch, ex.last_user_text);
        check_json(ex.messages_json, 1);
        if (ex.tools_json != NULL)
            check_json(ex.tools_json, 1);
        if (ex.answer_json != NULL)
            check_json(ex.answer_json, 0);
        if (row.status != 200)
            check(ex.answer_json == NULL);
    }
    gyre_buf_dispose(&scratch);
    return 0;
}
