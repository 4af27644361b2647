#include <string.h>

#include "common/json.h"
#include "dialect/openai.h"
#include "test.h"

TEST(json_arena_serves_parse_rewrite_and_dispose_inside_a_scope_and_reuses_its_block)
{
    gyre_json_init();
    const char body[] = "{\"mod\\u0065l\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    for (int round = 0; round < 3; round++) {
        gyre_json_arena_begin();
        gyre_openai_request_t r;
        gyre_api_error_t e;
        CHECK_INT(gyre_openai_parse_request(GYRE_OPENAI_CHAT, body, sizeof(body) - 1, &r, &e), 0);
        gyre_buf_t out;
        gyre_buf_init(&out, 4096);
        /* The escaped key takes the re-serialising path, whose string cJSON allocates. */
        CHECK_INT(gyre_openai_rewrite_model(&r, body, sizeof(body) - 1, "gpt-4o", 6, &out), 0);
        CHECK_STR(out.base, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        gyre_buf_dispose(&out);
        gyre_openai_request_dispose(&r);
        gyre_json_arena_end();
    }
}

TEST(json_arena_falls_back_to_malloc_past_its_block)
{
    gyre_json_init();
    /* A body with more values than 64 KiB of nodes holds. */
    gyre_buf_t b;
    gyre_buf_init(&b, 1 << 22);
    gyre_buf_appends(&b, "{\"model\":\"m\",\"messages\":[");
    for (int i = 0; i < 4000; i++)
        gyre_buf_appendf(&b, "%s{\"role\":\"user\",\"content\":\"message %d\"}", i ? "," : "", i);
    gyre_buf_appends(&b, "]}");
    gyre_json_arena_begin();
    gyre_openai_request_t r;
    gyre_api_error_t e;
    CHECK_INT(gyre_openai_parse_request(GYRE_OPENAI_CHAT, b.base, b.len, &r, &e), 0);
    CHECK_STR(r.model, "m");
    gyre_openai_request_dispose(&r);
    gyre_json_arena_end();
    gyre_buf_dispose(&b);
}
