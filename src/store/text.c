/*
 * Free text: what of a body is worth searching, the same for every
 * backend (SQLite feeds it to FTS5, PostgreSQL will feed it to a tsvector),
 * and for the trace log's indexer, which extracts it off the hot path.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "store/store.h"

/* Members whose strings are what a person wrote or a model answered (OpenAI, Anthropic and Gemini shapes). */
static int is_text_key(const char *k)
{
    static const char *const keys[] = {"content", "text", "prompt", "input", "system", "instructions",
                                       "arguments", "reasoning_content", "thinking", "output_text"};
    if (k == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

static void collect_text(const cJSON *v, int wanted, gyre_buf_t *out)
{
    if (cJSON_IsString(v)) {
        if (wanted && v->valuestring[0] != '\0') {
            gyre_buf_append(out, v->valuestring, strlen(v->valuestring));
            gyre_buf_append(out, "\n", 1);
        }
        return;
    }
    for (const cJSON *c = v->child; c != NULL; c = c->next)
        collect_text(c, cJSON_IsObject(v) ? is_text_key(c->string) : wanted, out);
}

void gyre_store_text_extract(const char *body, size_t len, gyre_buf_t *out)
{
    if (len == 0)
        return;
    cJSON *v = cJSON_ParseWithLength(body, len);
    if (v == NULL) {
        size_t room = out->max - out->len;
        gyre_buf_append(out, body, len < room ? len : room);
    } else {
        collect_text(v, 0, out);
        cJSON_Delete(v);
    }
    gyre_buf_append(out, "\n", 1);
}
