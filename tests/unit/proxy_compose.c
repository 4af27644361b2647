/*
 * The upstream request composer (src/proxy/compose.c), case by case as
 * curl's tests are written: what the proxy knows about one attempt → the
 * exact bytes of the request line and headers, or the exact error.  The
 * hostile cases are issue 10's: a model that would split the request in
 * two, climb out of the deployment's path, or smuggle a header.
 */
#include "proxy/compose.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/wire.h"
#include "dialect/sigv4.h"
#include "test.h"

#define HOST "up.example:8080"
#define NOW 1440938160LL /* 2015-08-30T12:36:00Z, SigV4's test suite date */

static h2o_iovec_t n_custom = {H2O_STRLIT("x-custom")}, n_xff = {H2O_STRLIT("x-forwarded-for")},
                   n_fwd = {H2O_STRLIT("forwarded")}, n_realip = {H2O_STRLIT("x-real-ip")},
                   n_xfh = {H2O_STRLIT("x-forwarded-host")}, n_xfp = {H2O_STRLIT("x-forwarded-proto")},
                   n_auth = {H2O_STRLIT("authorization")}, n_ctype = {H2O_STRLIT("content-type")},
                   n_accept = {H2O_STRLIT("accept")}, n_gyre = {H2O_STRLIT("x-gyre-session")},
                   n_evil = {H2O_STRLIT("x-evil")};

/* What a client typically sends besides its body, including what must never reach a provider. */
static const h2o_header_t client_headers[] = {
    {&n_auth, NULL, {H2O_STRLIT("Bearer client-key")}},
    {&n_ctype, NULL, {H2O_STRLIT("application/json")}},
    {&n_accept, NULL, {H2O_STRLIT("*/*")}},
    {&n_xff, NULL, {H2O_STRLIT("10.0.0.1, 10.0.0.2")}},
    {&n_fwd, NULL, {H2O_STRLIT("for=10.0.0.1")}},
    {&n_realip, NULL, {H2O_STRLIT("10.0.0.1")}},
    {&n_xfh, NULL, {H2O_STRLIT("internal.example")}},
    {&n_xfp, NULL, {H2O_STRLIT("https")}},
    {&n_gyre, NULL, {H2O_STRLIT("s1")}},
    {&n_custom, "X-Custom", {H2O_STRLIT("yes")}},
};
#define NCLIENT (sizeof(client_headers) / sizeof(client_headers[0]))

typedef struct compose_case {
    gyre_provider_conf_t prov;
    gyre_compose_t in;
    gyre_chat_call_t chat;
    gyre_buf_t body, head;
    gyre_api_error_t err;
    cJSON *req;
} compose_case_t;

/* A case for provider kind `kind` at base path `base`, with the model given and no body yet. */
static void case_init(compose_case_t *c, gyre_provider_kind_t kind, const char *base, const char *model,
                      gyre_compose_endpoint_t ep)
{
    memset(c, 0, sizeof(*c));
    c->prov.name = "p";
    c->prov.kind = kind;
    c->prov.base_path = (char *)base;
    c->prov.host = "up.example";
    c->chat = (gyre_chat_call_t){.model = model, .provider = &c->prov};
    c->in = (gyre_compose_t){
        .provider = &c->prov,
        .host = h2o_iovec_init(H2O_STRLIT(HOST)),
        .endpoint = ep,
        .method = h2o_iovec_init(H2O_STRLIT("POST")),
        .model = h2o_iovec_init(model, strlen(model)),
        .chat = &c->chat,
        .key = "sk-provider",
        .now = NOW,
        .request_id = h2o_iovec_init(H2O_STRLIT("rid-1")),
        .client_headers = client_headers,
        .nclient_headers = NCLIENT,
        .has_body = 1,
    };
    gyre_buf_init(&c->body, 1 << 20);
    gyre_buf_init(&c->head, 1 << 20);
}

/* The client's body as sent (a pass-through call). */
static void case_body(compose_case_t *c, const char *body)
{
    gyre_buf_appends(&c->body, body);
}

/* A translated call: the dialect writes path and body from this OpenAI request. */
static void case_translated(compose_case_t *c, int stream)
{
    c->req = cJSON_Parse("{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    c->chat.req = c->req;
    c->chat.stream = stream;
    c->in.translated = 1;
}

static int run(compose_case_t *c)
{
    return gyre_compose_request(&c->in, &c->body, &c->head, &c->err);
}

static void case_dispose(compose_case_t *c)
{
    cJSON_Delete(c->req);
    gyre_buf_dispose(&c->body);
    gyre_buf_dispose(&c->head);
}

/* The head expected for a body of `len` bytes: `line` then `before` (the dialect's lines), x-request-id,
 * content-length, then `after` (the client's headers that go on). */
static void expect_head(compose_case_t *c, const char *line, const char *before, const char *after)
{
    char want[4096];
    snprintf(want, sizeof(want), "%s\r\nhost: " HOST "\r\n%sx-request-id: rid-1\r\ncontent-length: %zu\r\n%s\r\n", line,
             before, c->body.len, after);
    CHECK_STR(c->head.base, want);
}

/* ---- each provider kind, as today's integration tests see it ---- */

TEST(compose_openai_chat_sends_the_client_body_with_its_own_headers_and_none_of_the_client_s_credentials_or_address)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_OPENAI, "/v1", "gpt-4o-mini", GYRE_COMPOSE_CHAT);
    case_body(&c, "{\"model\":\"gpt-4o-mini\"}");
    CHECK_INT(run(&c), 0);
    expect_head(&c, "POST /v1/chat/completions HTTP/1.1", "authorization: Bearer sk-provider\r\n",
                "content-type: application/json\r\naccept: */*\r\nX-Custom: yes\r\n");
    case_dispose(&c);
}

TEST(compose_azure_chat_puts_the_deployment_in_the_path_with_the_api_version)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_AZURE, "", "dep-1.v2_x~", GYRE_COMPOSE_CHAT);
    c.prov.api_version = "2024-10-21";
    case_body(&c, "{}");
    CHECK_INT(run(&c), 0);
    expect_head(&c, "POST /openai/deployments/dep-1.v2_x~/chat/completions?api-version=2024-10-21 HTTP/1.1",
                "api-key: sk-provider\r\n", "content-type: application/json\r\naccept: */*\r\nX-Custom: yes\r\n");
    case_dispose(&c);
}

TEST(compose_azure_encodes_the_api_version_as_a_query_value)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_AZURE, "/base", "dep", GYRE_COMPOSE_CHAT);
    c.prov.api_version = "2024-10-21&x=1 HTTP/1.1\r\n";
    case_body(&c, "{}");
    CHECK_INT(run(&c), 0);
    CHECK(strncmp(c.head.base,
                  "POST /base/openai/deployments/dep/chat/completions?api-version=2024-10-21%26x%3D1%20HTTP%2F1.1%0D%0A "
                  "HTTP/1.1\r\n",
                  strlen("POST /base/openai/deployments/dep/chat/completions?api-version=2024-10-21%26x%3D1%20HTTP%2F1."
                         "1%0D%0A HTTP/1.1\r\n")) == 0);
    case_dispose(&c);
}

TEST(compose_azure_passthrough_keeps_the_client_path_under_the_deployment_and_its_query_after_the_api_version)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_AZURE, "", "dep", GYRE_COMPOSE_OTHER);
    c.prov.api_version = "2024-10-21";
    c.in.client_path = h2o_iovec_init(H2O_STRLIT("/v1/embeddings?user=u1"));
    case_body(&c, "{\"model\":\"dep\",\"input\":\"x\"}");
    CHECK_INT(run(&c), 0);
    expect_head(&c, "POST /openai/deployments/dep/embeddings?api-version=2024-10-21&user=u1 HTTP/1.1",
                "api-key: sk-provider\r\n", "content-type: application/json\r\naccept: */*\r\nX-Custom: yes\r\n");
    case_dispose(&c);
}

TEST(compose_openai_passthrough_get_keeps_the_client_method_and_path_after_v1_and_sends_no_length)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_OPENAI, "/v1", "", GYRE_COMPOSE_OTHER);
    c.in.method = h2o_iovec_init(H2O_STRLIT("GET"));
    c.in.client_path = h2o_iovec_init(H2O_STRLIT("/v1/models/ft:gpt-4o-mini:org::abc?limit=2"));
    c.in.has_body = 0;
    c.in.nclient_headers = 0;
    CHECK_INT(run(&c), 0);
    CHECK_STR(c.head.base, "GET /v1/models/ft:gpt-4o-mini:org::abc?limit=2 HTTP/1.1\r\nhost: " HOST "\r\n"
                           "authorization: Bearer sk-provider\r\nx-request-id: rid-1\r\n\r\n");
    case_dispose(&c);
}

TEST(compose_anthropic_messages_passthrough_sends_the_dialect_s_version_and_key)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_ANTHROPIC, "/v1", "claude-3-5-haiku-latest", GYRE_COMPOSE_MESSAGES);
    case_body(&c, "{\"model\":\"claude-3-5-haiku-latest\",\"max_tokens\":5,\"messages\":[]}");
    CHECK_INT(run(&c), 0);
    /* The dialect's content-type wins over the client's. */
    expect_head(&c, "POST /v1/messages HTTP/1.1",
                "x-api-key: sk-provider\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n",
                "accept: */*\r\nX-Custom: yes\r\n");
    case_dispose(&c);
}

TEST(compose_translated_gemini_encodes_the_model_and_drops_the_client_s_content_headers)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_GEMINI, "/v1beta", "models/gemini-1.5-flash", GYRE_COMPOSE_CHAT);
    case_translated(&c, 1);
    CHECK_INT(run(&c), 0);
    CHECK(c.body.len > 0 && c.body.base[0] == '{');
    expect_head(&c, "POST /v1beta/models/gemini-1.5-flash:streamGenerateContent?alt=sse HTTP/1.1",
                "x-goog-api-key: sk-provider\r\ncontent-type: application/json\r\n", "X-Custom: yes\r\n");
    case_dispose(&c);
}

TEST(compose_translated_anthropic_posts_messages)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_ANTHROPIC, "/v1", "claude-x", GYRE_COMPOSE_CHAT);
    case_translated(&c, 0);
    CHECK_INT(run(&c), 0);
    expect_head(&c, "POST /v1/messages HTTP/1.1",
                "x-api-key: sk-provider\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n",
                "X-Custom: yes\r\n");
    case_dispose(&c);
}

TEST(compose_translated_azure_encodes_the_deployment_like_the_passthrough_does)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_AZURE, "", "dep?x", GYRE_COMPOSE_CHAT);
    c.prov.api_version = "2024-10-21";
    case_translated(&c, 0);
    CHECK_INT(run(&c), 0);
    expect_head(&c, "POST /openai/deployments/dep%3Fx/chat/completions?api-version=2024-10-21 HTTP/1.1",
                "api-key: sk-provider\r\ncontent-type: application/json\r\n", "X-Custom: yes\r\n");
    case_dispose(&c);
}

TEST(compose_bedrock_arn_model_is_encoded_once_in_the_path_and_signed_as_sent)
{
    static const char arn[] =
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0";
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_BEDROCK, "", arn, GYRE_COMPOSE_CHAT);
    c.prov.host = "bedrock-runtime.us-east-1.amazonaws.com";
    c.in.host = h2o_iovec_init(H2O_STRLIT("bedrock-runtime.us-east-1.amazonaws.com"));
    c.in.key = "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    case_translated(&c, 0);
    CHECK_INT(run(&c), 0);
    static const char path[] = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
                               "us.anthropic.claude-3-haiku-20240307-v1%3A0/converse";
    CHECK(strncmp(c.head.base, "POST ", 5) == 0 && strncmp(c.head.base + 5, path, strlen(path)) == 0 &&
          strncmp(c.head.base + 5 + strlen(path), " HTTP/1.1\r\n", 11) == 0);
    /* The signature in the head is the one for exactly that path. */
    char scratch[128];
    gyre_sigv4_creds_t creds;
    CHECK_INT(gyre_sigv4_parse_key(c.in.key, scratch, &creds), 0);
    gyre_buf_t sig;
    gyre_buf_init(&sig, 4096);
    CHECK_INT(gyre_sigv4_sign(&creds, "us-east-1", "bedrock", "POST", "bedrock-runtime.us-east-1.amazonaws.com", path,
                              "application/json", c.body.base, c.body.len, NOW, &sig),
              0);
    CHECK(strstr(c.head.base, sig.base) != NULL);
    gyre_buf_dispose(&sig);
    case_dispose(&c);
}

/* ---- hostile models, paths and headers ---- */

TEST(compose_azure_deployment_with_crlf_and_a_second_request_line_stays_one_encoded_segment)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_AZURE, "", "dep/chat/completions?api-version=x HTTP/1.1\r\nHost: x\r\n\r\nPOST /x",
              GYRE_COMPOSE_CHAT);
    c.prov.api_version = "2024-10-21";
    c.in.nclient_headers = 0;
    case_body(&c, "{}");
    CHECK_INT(run(&c), 0);
    expect_head(&c,
                "POST /openai/deployments/dep%2Fchat%2Fcompletions%3Fapi-version%3Dx%20HTTP%2F1.1%0D%0AHost%3A%20x%0D%0A"
                "%0D%0APOST%20%2Fx/chat/completions?api-version=2024-10-21 HTTP/1.1",
                "api-key: sk-provider\r\n", "");
    case_dispose(&c);
}

static void expect_model_refused(gyre_provider_kind_t kind, const char *model, int translated)
{
    compose_case_t c;
    case_init(&c, kind, "/b", model, GYRE_COMPOSE_CHAT);
    if (translated)
        case_translated(&c, 0);
    else
        case_body(&c, "{}");
    CHECK_INT(run(&c), -1);
    CHECK_INT(c.err.status, 400);
    CHECK_STR(c.err.param, "model");
    CHECK_STR(c.err.message, "'model' cannot be sent to provider 'p' as a path segment: it is empty or has a "
                             "dot-segment ('.' or '..')");
    CHECK_INT(c.head.len, 0);
    case_dispose(&c);
}

TEST(compose_refuses_a_deployment_or_model_id_with_dot_segments_for_every_kind_that_puts_it_in_the_path)
{
    static const char *const models[] = {"..", ".", "", "dep/../../../admin/x", "dep/..", "../x", "%2e%2e",
                                         "dep/%2E%2e/x", "x\\..\\admin", "..;/x", "dep/.;x/y"};
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        expect_model_refused(GYRE_PROVIDER_AZURE, models[i], 0);
        expect_model_refused(GYRE_PROVIDER_AZURE, models[i], 1);
        expect_model_refused(GYRE_PROVIDER_BEDROCK, models[i], 1);
        if (models[i][0] != '\0') /* Gemini's "models/" prefix is dropped first: "models/.." is ".." */
            expect_model_refused(GYRE_PROVIDER_GEMINI, models[i], 1);
    }
    expect_model_refused(GYRE_PROVIDER_GEMINI, "models/..", 1);
}

TEST(compose_refuses_a_passthrough_path_with_dot_segments_or_encoded_separators)
{
    static const char *const paths[] = {"/v1/%2e%2e/%2e%2e/x", "/v1/./x", "/v1/files/..;/x", "/v1/files/x%2fy",
                                        "/v1/files/x%5Cy", "/v1/files/x\\y", "/v1/files//x", "/v1/files/%252e%252e",
                                        "/v1/a b", "/v1/x\r\nHost: y", "/v1/x%0d%0a", "/v2/x", "/v1/x?a=b c",
                                        "/v1/x#frag", "/v1/x%zz"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        compose_case_t c;
        case_init(&c, GYRE_PROVIDER_OPENAI, "/v1", "", GYRE_COMPOSE_OTHER);
        c.in.client_path = h2o_iovec_init(paths[i], strlen(paths[i]));
        CHECK_INT(run(&c), -1);
        CHECK_INT(c.err.status, 400);
        CHECK_STR(c.err.code, "invalid_path");
        CHECK(strncmp(c.err.message, "the path ", 9) == 0);
        case_dispose(&c);
    }
}

TEST(compose_refuses_a_client_header_value_with_a_control_byte_or_over_the_bound)
{
    static char big[GYRE_WIRE_HEADER_VALUE_MAX + 1];
    memset(big, 'a', sizeof(big));
    const h2o_iovec_t values[] = {h2o_iovec_init(H2O_STRLIT("a\r\nSet-Cookie: x")), h2o_iovec_init(H2O_STRLIT("a\0b")),
                                  h2o_iovec_init(big, sizeof(big))};
    for (size_t i = 0; i < 3; i++) {
        h2o_header_t h = {&n_evil, NULL, values[i]};
        compose_case_t c;
        case_init(&c, GYRE_PROVIDER_OPENAI, "/v1", "m", GYRE_COMPOSE_CHAT);
        c.in.client_headers = &h;
        c.in.nclient_headers = 1;
        case_body(&c, "{}");
        CHECK_INT(run(&c), -1);
        CHECK_INT(c.err.status, 400);
        CHECK_STR(c.err.code, "invalid_header");
        CHECK(strncmp(c.err.message, "header 'x-evil' cannot be sent to provider 'p': its value ", 58) == 0);
        case_dispose(&c);
    }
}

TEST(compose_refuses_a_head_over_its_bound)
{
    static char value[8000];
    memset(value, 'v', sizeof(value));
    h2o_header_t hs[9];
    for (size_t i = 0; i < 9; i++)
        hs[i] = (h2o_header_t){&n_custom, NULL, h2o_iovec_init(value, sizeof(value))};
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_OPENAI, "/v1", "m", GYRE_COMPOSE_CHAT);
    c.in.client_headers = hs;
    c.in.nclient_headers = 9;
    case_body(&c, "{}");
    CHECK_INT(run(&c), -1);
    CHECK_STR(c.err.code, "request_headers_too_large");
    CHECK_STR(c.err.message, "the request's headers for provider 'p' come to more than 65536 bytes");
    case_dispose(&c);
}

TEST(compose_refuses_a_key_that_would_end_its_header_line_without_naming_it)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_OPENAI, "/v1", "m", GYRE_COMPOSE_CHAT);
    c.in.key = "sk-secret\r\nx-evil: 1";
    case_body(&c, "{}");
    CHECK_INT(run(&c), -1);
    CHECK_INT(c.err.status, 500);
    CHECK_STR(c.err.code, "invalid_key");
    CHECK(strstr(c.err.message, "sk-secret") == NULL);
    CHECK_INT(c.head.len, 0);
    case_dispose(&c);
}

TEST(compose_refuses_a_base_path_that_a_request_line_cannot_carry)
{
    compose_case_t c;
    case_init(&c, GYRE_PROVIDER_OPENAI, "/a b", "m", GYRE_COMPOSE_CHAT);
    case_body(&c, "{}");
    CHECK_INT(run(&c), -1);
    CHECK_INT(c.err.status, 500);
    CHECK_STR(c.err.code, "invalid_config");
    case_dispose(&c);
}

/* ---- the value rules themselves (common/wire.c) ---- */

TEST(wire_name_is_1_to_256_bytes_of_0x21_to_0x7e)
{
    char why[96], long_name[300];
    memset(long_name, 'm', sizeof(long_name));
    CHECK(gyre_wire_name_problem("openai/gpt-4o:2024~x", 20, why, sizeof(why)) == NULL);
    CHECK(gyre_wire_name_problem(long_name, 256, why, sizeof(why)) == NULL);
    CHECK_STR(gyre_wire_name_problem(long_name, 257, why, sizeof(why)), "it is 257 bytes long");
    CHECK_STR(gyre_wire_name_problem("", 0, why, sizeof(why)), "it is empty");
    CHECK_STR(gyre_wire_name_problem("a b", 3, why, sizeof(why)), "it has a space at offset 1");
    CHECK_STR(gyre_wire_name_problem("a\r\n", 3, why, sizeof(why)), "it has a control byte (0x0D) at offset 1");
    CHECK_STR(gyre_wire_name_problem("a\x7f", 2, why, sizeof(why)), "it has a control byte (0x7F) at offset 1");
    CHECK_STR(gyre_wire_name_problem("\xc3\xa9", 2, why, sizeof(why)), "it has a byte over 0x7E (0xC3) at offset 0");
}

TEST(wire_segment_encodes_all_but_unreserved_and_refuses_dot_segments)
{
    gyre_buf_t b;
    gyre_buf_init(&b, 64);
    CHECK_INT(gyre_wire_append_segment(&b, H2O_STRLIT("a-Z_0.~/:? %\r")), 0);
    CHECK_STR(b.base, "a-Z_0.~%2F%3A%3F%20%25%0D");
    gyre_buf_reset(&b);
    CHECK_INT(gyre_wire_append_segment(&b, H2O_STRLIT("...")), 0); /* three dots are a name, not a dot-segment */
    CHECK_STR(b.base, "...");
    gyre_buf_reset(&b);
    CHECK_INT(gyre_wire_append_segment(&b, H2O_STRLIT("..")), -EINVAL);
    CHECK_INT(gyre_wire_append_segment(&b, H2O_STRLIT("a/./b")), -EINVAL);
    CHECK_INT(gyre_wire_append_segment(&b, H2O_STRLIT("a%2F%2e%2E")), -EINVAL);
    CHECK_INT(gyre_wire_append_segment(&b, "", 0), -EINVAL);
    CHECK_INT(b.len, 0);
    CHECK_INT(gyre_wire_append_segment(&b, H2O_STRLIT("0123456789012345678901234567890123456789")), -E2BIG);
    gyre_buf_dispose(&b);
}

TEST(wire_header_value_refuses_control_bytes_and_length_over_the_bound_but_allows_tab_and_obs_text)
{
    CHECK(gyre_wire_header_value_problem("a\tb \xff", 5, 16) == NULL);
    CHECK(gyre_wire_header_value_problem("a\rb", 3, 16) != NULL);
    CHECK(gyre_wire_header_value_problem("a\nb", 3, 16) != NULL);
    CHECK(gyre_wire_header_value_problem("a\0b", 3, 16) != NULL);
    CHECK(gyre_wire_header_value_problem("a\x7f", 2, 16) != NULL);
    CHECK(gyre_wire_header_value_problem("0123456789abcdefX", 17, 16) != NULL);
}

TEST(wire_answer_header_is_not_written_when_its_value_could_inject_or_grow_the_head)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    h2o_headers_t hs = {NULL, 0, 0};
    static char big[GYRE_WIRE_ANSWER_HEADER_MAX + 1];
    memset(big, 'm', sizeof(big));
    CHECK_INT(gyre_wire_add_answer_header(&pool, &hs, H2O_STRLIT("x-gyre-model"), H2O_STRLIT("x\r\nSet-Cookie: a")),
              -EINVAL);
    CHECK_INT(gyre_wire_add_answer_header(&pool, &hs, H2O_STRLIT("x-gyre-model"), big, sizeof(big)), -EINVAL);
    CHECK_INT(gyre_wire_add_answer_header(&pool, &hs, H2O_STRLIT("x gyre"), H2O_STRLIT("v")), -EINVAL);
    CHECK_INT(hs.size, 0);
    CHECK_INT(gyre_wire_add_answer_header(&pool, &hs, H2O_STRLIT("x-gyre-model"), big, sizeof(big) - 1), 0);
    CHECK_INT(hs.size, 1);
    h2o_mem_clear_pool(&pool);
}

TEST(wire_target_from_a_client_refuses_what_a_provider_might_decode_into_another_path)
{
    CHECK(gyre_wire_target_problem(H2O_STRLIT("/v1/files/file-abc/content?x=1&y=%2F"), 1) == NULL);
    CHECK(gyre_wire_target_problem(H2O_STRLIT("/v1/models/ft:gpt-4o:org::id"), 1) == NULL);
    CHECK_STR(gyre_wire_target_problem(H2O_STRLIT("/v1/%2e%2e/x"), 1), "has a dot-segment ('.' or '..')");
    CHECK_STR(gyre_wire_target_problem(H2O_STRLIT("/v1/..;/x"), 1), "has a dot-segment ('.' or '..')");
    CHECK_STR(gyre_wire_target_problem(H2O_STRLIT("/v1/a%2Fb"), 1), "has an encoded '/', '\\', '%' or control byte");
    CHECK_STR(gyre_wire_target_problem(H2O_STRLIT("/v1//x"), 1), "has an empty segment");
    CHECK_STR(gyre_wire_target_problem(H2O_STRLIT("/v1/%2"), 1), "has a malformed percent-escape");
    CHECK_STR(gyre_wire_target_problem(H2O_STRLIT("v1/x"), 1), "does not start with '/'");
    /* gyre's own targets may carry an encoded '/' (a Bedrock ARN), never a dot-segment. */
    CHECK(gyre_wire_target_problem(H2O_STRLIT("/model/arn%3Aa%2Fb/converse"), 0) == NULL);
    CHECK_STR(gyre_wire_target_problem(H2O_STRLIT("/model/a%2F..%2Fb/converse"), 0), "has a dot-segment ('.' or '..')");
}
