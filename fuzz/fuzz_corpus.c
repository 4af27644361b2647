/*
 * libFuzzer driver for the corpus (src/loop/corpus.c): hostile stored
 * bodies through gyre_corpus_example_from_row.
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
 *   - an error status never has an answer.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
