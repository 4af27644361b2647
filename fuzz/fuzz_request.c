/*
 * libFuzzer driver for the client request reader (src/dialect/openai.c):
 * every endpoint kind, the error body on failure, and the model rewrite on
 * success.  Besides the sanitizers, it checks what gyre promises:
 *   - a failure is a 400 with a message, and leaves nothing allocated;
 *   - a located model span holds the model's JSON string;
 *   - a rewritten body parses again, as an object whose one and only
 *     "model" is the new model;
 *   - a splice changes no byte outside the span.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "dialect/openai.h"

#define NEW_MODEL "gpt-4o-mini"

static void check_rewrite(const gyre_openai_request_t *r, const char *body, size_t size)
{
    /* Room for the worst a re-serialisation can do: cJSON writes each raw
     * control byte inside a string (which it accepts) as \u00XX, six bytes.
     * (A bound of size + 64 fits a splice only.) */
    gyre_buf_t out;
    gyre_buf_init(&out, 6 * size + 64);
    if (gyre_openai_rewrite_model(r, body, size, NEW_MODEL, sizeof(NEW_MODEL) - 1, &out) != 0)
        abort();
    if (r->model_end != 0) {
        const char *quoted = "\"" NEW_MODEL "\"";
        size_t qlen = strlen(quoted), tail = size - r->model_end;
        if (out.len != r->model_start + qlen + tail || memcmp(out.base, body, r->model_start) != 0 ||
            memcmp(out.base + r->model_start, quoted, qlen) != 0 ||
            memcmp(out.base + r->model_start + qlen, body + r->model_end, tail) != 0)
            abort();
    }
    cJSON *again = cJSON_ParseWithLength(out.base, out.len);
    if (!cJSON_IsObject(again))
        abort();
    int models = 0;
    for (const cJSON *v = again->child; v != NULL; v = v->next)
        if (strcmp(v->string, "model") == 0) {
            if (!cJSON_IsString(v) || strcmp(v->valuestring, NEW_MODEL) != 0)
                abort();
            models++;
        }
    if (models != 1)
        abort();
    cJSON_Delete(again);
    gyre_buf_dispose(&out);
}

/* cJSON allocates through gyre's hooks, as in the server (whose arena is
 * off under ASan, so each value is still an allocation of its own). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gyre_json_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const gyre_openai_endpoint_t kinds[] = {GYRE_OPENAI_CHAT, GYRE_OPENAI_EMBEDDINGS, GYRE_OPENAI_OTHER};
    /* A copy of exactly `size` bytes, so reading past the body is caught. */
    char *body = malloc(size ? size : 1);
    memcpy(body, data, size);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        gyre_openai_request_t r;
        gyre_api_error_t err;
        gyre_json_arena_begin(); /* the request's scope, as handlers.c opens it */
        if (gyre_openai_parse_request(kinds[i], body, size, &r, &err) != 0) {
            gyre_json_arena_end();
            if (err.status != 400 || err.message[0] == '\0' || r.json != NULL)
                abort();
            gyre_buf_t b;
            gyre_buf_init(&b, 1 << 16);
            if (gyre_api_error_to_json(&err, &b) != 0)
                abort();
            gyre_buf_dispose(&b);
            continue;
        }
        if (r.model != NULL) {
            if (r.model_end != 0 && (r.model_start >= r.model_end || r.model_end > size || body[r.model_start] != '"' ||
                                     body[r.model_end - 1] != '"'))
                abort();
            check_rewrite(&r, body, size);
        }
        gyre_openai_request_dispose(&r);
        gyre_json_arena_end();
    }
    free(body);
    return 0;
}
