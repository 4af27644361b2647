#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* GCC says it builds with ASan by __SANITIZE_ADDRESS__; clang (before 16) only through __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

/* Parses {"model":"gpt-4o"} inside a scope and returns the string value's bytes after the scope ended, as code
 * that kept the pointer would read them.  In a child: under ASan the read is reported and the child dies. */
static int read_after_scope(void)
{
    gyre_json_init();
    gyre_json_arena_begin();
    cJSON *j = cJSON_Parse("{\"model\":\"gpt-4o\"}");
    const char *kept = cJSON_GetObjectItemCaseSensitive(j, "model")->valuestring;
    cJSON_Delete(j);
    gyre_json_arena_end();
    return (unsigned char)kept[0]; /* the use after the scope */
}

TEST(json_arena_use_after_the_scope_is_caught)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* ASan's report of the read is the expected outcome: it goes nowhere, the exit status says it. */
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 2);
        int c = read_after_scope();
        _exit(c == 'g' ? 0 : c == 0xDB ? 3 : 4);
    }
    int status = 0;
    CHECK_INT((int)waitpid(pid, &status, 0), (int)pid);
    /* Never the stale "g" of the parsed value: ASan reports the read (the child dies), else it reads 0xDB. */
#ifdef TEST_ASAN
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 3));
#else
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
#endif
}

TEST(json_arena_scopes_nest_and_only_the_outermost_end_resets_it)
{
    gyre_json_init();
    uint64_t g = gyre_json_arena_generation();
    CHECK_INT(gyre_json_arena_active(), 0);
    gyre_json_arena_begin();
    cJSON *outer = cJSON_Parse("{\"route\":\"chat\"}");
    CHECK_INT(gyre_json_arena_enter(), 0); /* a scope is open: enter uses it */
    gyre_json_arena_begin();                /* as does a nested begin */
    cJSON *inner = cJSON_Parse("[1,2,3]");
    cJSON_Delete(inner);
    gyre_json_arena_end();
    CHECK_INT(gyre_json_arena_active(), 1);
    CHECK((uint64_t)gyre_json_arena_generation() == g);
    /* The outer scope's value is intact after the inner scope ended. */
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(outer, "route")->valuestring, "chat");
    cJSON_Delete(outer);
    gyre_json_arena_end();
    CHECK_INT(gyre_json_arena_active(), 0);
    CHECK((uint64_t)gyre_json_arena_generation() == g + 1);
    gyre_json_arena_end(); /* an end without a scope changes nothing */
    CHECK((uint64_t)gyre_json_arena_generation() == g + 1);
}
