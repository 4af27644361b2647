/*
 * Every dialect's error_message: a provider's error message longer than
 * the buffer gyre quotes it into is cut to the buffer, not lost (it was
 * empty when the one append of it failed).
 */
#include <stdlib.h>
#include <string.h>

#include "dialect/dialect.h"
#include "test.h"

/* The message of `body` as `kind`'s dialect reads it, into a buffer of `max` bytes. */
static char *message_of(gyre_provider_kind_t kind, const char *body, size_t max)
{
    gyre_buf_t b;
    gyre_buf_init(&b, max);
    gyre_dialect_for(kind)->error_message(body, strlen(body), &b);
    CHECK_INT(gyre_buf_failed(&b), 0);
    char *s = strdup(b.base != NULL ? b.base : "");
    gyre_buf_dispose(&b);
    return s;
}

TEST(dialect_error_message_longer_than_the_buffer_keeps_its_beginning)
{
    static const struct {
        gyre_provider_kind_t kind;
        const char *body;
    } cases[] = {
        {GYRE_PROVIDER_OPENAI, "{\"error\":{\"message\":\"rate limited: try again in 20s\"}}"},
        {GYRE_PROVIDER_AZURE, "{\"error\":{\"message\":\"rate limited: try again in 20s\"}}"},
        {GYRE_PROVIDER_ANTHROPIC, "{\"type\":\"error\",\"error\":{\"type\":\"x\",\"message\":\"rate limited: try again in 20s\"}}"},
        {GYRE_PROVIDER_GEMINI, "{\"error\":{\"code\":429,\"message\":\"rate limited: try again in 20s\"}}"},
        {GYRE_PROVIDER_BEDROCK, "{\"message\":\"rate limited: try again in 20s\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *whole = message_of(cases[i].kind, cases[i].body, 1024);
        CHECK_STR(whole, "rate limited: try again in 20s");
        char *cut = message_of(cases[i].kind, cases[i].body, 12);
        CHECK_STR(cut, "rate limited");
        free(whole);
        free(cut);
    }
}

TEST(dialect_error_message_of_a_body_without_one_is_the_body_cut_to_the_buffer)
{
    char *cut = message_of(GYRE_PROVIDER_OPENAI, "<html>Bad Gateway</html>", 6);
    CHECK_STR(cut, "<html>");
    free(cut);
}
