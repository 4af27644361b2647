/*
 * libFuzzer driver for the client request reader (src/dialect/openai.c):
 * every endpoint kind, and the model rewrite on what parses.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "dialect/openai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const gyre_openai_endpoint_t kinds[] = {GYRE_OPENAI_CHAT, GYRE_OPENAI_EMBEDDINGS, GYRE_OPENAI_OTHER};
    const char *body = (const char *)data;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        gyre_openai_request_t r;
        gyre_api_error_t err;
        if (gyre_openai_parse_request(kinds[i], body, size, &r, &err) != 0) {
            gyre_buf_t b;
            gyre_buf_init(&b, 1 << 16);
            gyre_api_error_to_json(&err, &b);
            gyre_buf_dispose(&b);
            continue;
        }
        if (r.model != NULL) {
            gyre_buf_t out;
            gyre_buf_init(&out, size + 64);
            gyre_openai_rewrite_model(&r, body, size, "gpt-4o-mini", 11, &out);
            gyre_buf_dispose(&out);
        }
        gyre_openai_request_dispose(&r);
    }
    return 0;
}
