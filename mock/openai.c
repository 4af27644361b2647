/*
 * gyre-mock's answers in OpenAI's shapes: chat completions (streamed or not,
 * tool calls included), embeddings and the model list; and Azure OpenAI's,
 * which are the same answers under /openai/deployments/{deployment}/ with
 * the deployment as the model.
 *
 * The chat answer itself comes from answer.c, shared with every dialect;
 * this file reads OpenAI's messages into it and writes it out in OpenAI's
 * shapes.  docs/mock.md states the rules and tests/integration/mock.test.mjs
 * checks them.
 */
#include <math.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "mock.h"

#define DEFAULT_DIMENSIONS 8
#define MAX_DIMENSIONS 4096
#define MAX_INPUTS 2048 /* OpenAI's own limit on embedding inputs per request */

static const char *const model_ids[] = {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "mock-1"};

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* ---- errors ---- */

/* OpenAI's error for a status the mock stages (a fault, or a path it does not serve). */
static int openai_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                        const char *message)
{
    if (status == 429)
        return mock_http_respond_error(c, r, status, extra_headers, "requests", "rate_limit_exceeded", NULL, "%s",
                                       message);
    if (status == 404)
        return mock_http_respond_error(c, r, status, extra_headers, "invalid_request_error", "unknown_url", NULL, "%s",
                                       message);
    if (status < 500)
        return mock_http_respond_error(c, r, status, extra_headers, "invalid_request_error", NULL, NULL, "%s", message);
    return mock_http_respond_error(c, r, status, extra_headers, "server_error", NULL, NULL, "%s", message);
}

const mock_dialect_t mock_dialect_openai = {"openai", openai_error};

/*
 * Azure's errors outside the model's own: {"error":{"code":"429","message"}},
 * the code a string of the status, as Azure's front door answers a
 * throttled request or a path (or a missing api-version) it does not know.
 */
static int azure_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                       const char *message)
{
    char code[16];
    snprintf(code, sizeof(code), "%d", status);
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    int ret = mock_http_respond_json_with(c, r, status, extra_headers, root);
    cJSON_Delete(root);
    return ret;
}

const mock_dialect_t mock_dialect_azure = {"azure", azure_error};

/* ---- chat completions ---- */

static mock_role_t role_of(const cJSON *m)
{
    const cJSON *role = member(m, "role");
    const char *s = cJSON_IsString(role) ? role->valuestring : "user";
    if (strcmp(s, "system") == 0 || strcmp(s, "developer") == 0)
        return MOCK_ROLE_SYSTEM;
    if (strcmp(s, "assistant") == 0)
        return MOCK_ROLE_ASSISTANT;
    if (strcmp(s, "tool") == 0 || strcmp(s, "function") == 0)
        return MOCK_ROLE_TOOL;
    return MOCK_ROLE_USER;
}

/* OpenAI's chat request as the shared conversation: messages, tools, tool_choice, the token limit, stop. */
static void read_convo(const cJSON *req, mock_convo_t *cv)
{
    const cJSON *m, *t;
    cJSON_ArrayForEach(m, member(req, "messages"))
    {
        mock_convo_add(cv, role_of(m), mock_join_texts(member(m, "content"), "text"));
    }
    cJSON_ArrayForEach(t, (cJSON_IsArray(member(req, "tools")) ? member(req, "tools") : NULL))
    {
        const cJSON *fn = member(t, "function"), *name = member(fn, "name");
        mock_convo_add_tool(cv, cJSON_IsString(name) ? name->valuestring : "tool", member(fn, "parameters"));
    }
    const cJSON *choice = member(req, "tool_choice"), *named = member(member(choice, "function"), "name");
    if (cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0) {
        cv->tool_choice = MOCK_TOOLS_NONE;
    } else if (cJSON_IsString(named)) {
        cv->tool_choice = MOCK_TOOLS_NAMED;
        cv->tool_name = gyre_strdup(named->valuestring);
    }
    const cJSON *max = member(req, "max_completion_tokens");
    if (!cJSON_IsNumber(max))
        max = member(req, "max_tokens");
    if (cJSON_IsNumber(max) && max->valuedouble >= 1 && max->valuedouble < 1e9)
        cv->max_tokens = (long)max->valuedouble;
    mock_convo_add_stop(cv, member(req, "stop"));
}

typedef struct chat {
    mock_answer_t a;
    char id[32];      /* chatcmpl-mock-xxxxxxxx */
    char call_id[32]; /* call_mock_xxxxxxxx */
    const char *model;
} chat_t;

static const char *finish_reason(const mock_answer_t *a)
{
    switch (a->finish) {
    case MOCK_FINISH_LENGTH: return "length";
    case MOCK_FINISH_TOOL: return "tool_calls";
    default: return "stop";
    }
}

static cJSON *usage_json(const mock_answer_t *a)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)a->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)a->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(a->prompt_tokens + a->completion_tokens));
    return u;
}

/* A tool call: in a stream, `index` always and id/type/name only in the first delta. */
static cJSON *tool_call_json(const chat_t *ch, const char *args, int with_index, int with_head)
{
    cJSON *tc = cJSON_CreateObject();
    if (with_index)
        cJSON_AddNumberToObject(tc, "index", 0);
    if (with_head) {
        cJSON_AddStringToObject(tc, "id", ch->call_id);
        cJSON_AddStringToObject(tc, "type", "function");
    }
    cJSON *fn = cJSON_AddObjectToObject(tc, "function");
    if (with_head)
        cJSON_AddStringToObject(fn, "name", ch->a.tool_name);
    cJSON_AddStringToObject(fn, "arguments", args);
    return tc;
}

static int respond_completion(mock_conn_t *c, const mock_request_t *r, const chat_t *ch)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", ch->id);
    cJSON_AddStringToObject(root, "object", "chat.completion");
    cJSON_AddNumberToObject(root, "created", MOCK_CREATED);
    cJSON_AddStringToObject(root, "model", ch->model);
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    if (ch->a.text != NULL) {
        cJSON_AddStringToObject(msg, "content", ch->a.text);
    } else {
        cJSON_AddNullToObject(msg, "content");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(msg, "tool_calls"), tool_call_json(ch, ch->a.tool_args, 0, 1));
    }
    cJSON_AddNullToObject(msg, "refusal");
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason", finish_reason(&ch->a));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
    cJSON_AddItemToObject(root, "usage", usage_json(&ch->a));
    int ret = mock_http_respond_json(c, r, 200, root);
    cJSON_Delete(root);
    return ret;
}

/* Sends one chat.completion.chunk; takes `delta` (NULL: the usage chunk, with no choice). */
static int send_chunk(mock_conn_t *c, const chat_t *ch, cJSON *delta, const char *finish, int with_usage)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", ch->id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", MOCK_CREATED);
    cJSON_AddStringToObject(o, "model", ch->model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (delta != NULL) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "index", 0);
        cJSON_AddItemToObject(x, "delta", delta);
        cJSON_AddNullToObject(x, "logprobs");
        cJSON_AddItemToObject(x, "finish_reason", finish ? cJSON_CreateString(finish) : cJSON_CreateNull());
        cJSON_AddItemToArray(choices, x);
    }
    if (with_usage)
        cJSON_AddItemToObject(o, "usage", usage_json(&ch->a));
    int ret = mock_http_stream_event(c, o);
    cJSON_Delete(o);
    return ret;
}

static cJSON *tool_delta(const chat_t *ch, const char *args, int with_head)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "tool_calls"), tool_call_json(ch, args, 1, with_head));
    return d;
}

/*
 * A stream: the role, then the text a word at a time (or the tool call's
 * head and its arguments in up to three pieces), the finish, the usage when
 * asked, [DONE].  With c->truncate it stops after two pieces of content (or
 * the first piece of arguments) and the connection is closed.
 */
static int stream_answer(mock_conn_t *c, const mock_request_t *r, const chat_t *ch, int include_usage, long pace_ms)
{
    const mock_answer_t *a = &ch->a;
    if (mock_http_stream_start(c, r, "text/event-stream") != 0)
        return -1;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "role", "assistant");
    cJSON_AddItemToObject(d, "content", a->text != NULL ? cJSON_CreateString("") : cJSON_CreateNull());
    if (send_chunk(c, ch, d, NULL, 0) != 0)
        return -1;
    if (a->text != NULL) {
        int sent = 0;
        for (const char *p = a->text; *p != '\0' && !(c->truncate && sent == 2); sent++) {
            if (mock_conn_wait_ms(c, pace_ms) != 0)
                return -1;
            size_t n = mock_piece_len(p);
            char *piece = gyre_strndup(p, n);
            d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "content", piece);
            free(piece);
            p += n;
            if (send_chunk(c, ch, d, NULL, 0) != 0)
                return -1;
        }
    } else {
        if (send_chunk(c, ch, tool_delta(ch, "", 1), NULL, 0) != 0)
            return -1;
        size_t len = strlen(a->tool_args), third = (len + 2) / 3;
        for (size_t off = 0; off < len && !(c->truncate && off > 0); off += third) {
            if (mock_conn_wait_ms(c, pace_ms) != 0)
                return -1;
            char *piece = gyre_strndup(a->tool_args + off, off + third <= len ? third : len - off);
            d = tool_delta(ch, piece, 0);
            free(piece);
            if (send_chunk(c, ch, d, NULL, 0) != 0)
                return -1;
        }
    }
    if (c->truncate)
        return -1; /* cut: no finish chunk, no [DONE], no terminating chunk */
    if (send_chunk(c, ch, cJSON_CreateObject(), finish_reason(a), 0) != 0)
        return -1;
    if (include_usage && send_chunk(c, ch, NULL, NULL, 1) != 0)
        return -1;
    return mock_http_stream_end(c);
}

int mock_openai_chat(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const char *model,
                     const mock_options_t *o)
{
    const cJSON *m = member(req, "model"), *messages = member(req, "messages");
    if (model == NULL && m == NULL)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter", "model",
                                       "Missing required parameter: 'model'.");
    if (model == NULL && !cJSON_IsString(m))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_type", "model",
                                       "Invalid type for 'model': expected a string.");
    if (messages == NULL)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter",
                                       "messages", "Missing required parameter: 'messages'.");
    if (!cJSON_IsArray(messages))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_type", "messages",
                                       "Invalid type for 'messages': expected an array.");
    if (cJSON_GetArraySize(messages) == 0)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "empty_array", "messages",
                                       "Invalid 'messages': empty array. Expected at least one message.");
    mock_convo_t cv;
    mock_convo_init(&cv);
    read_convo(req, &cv);
    cv.model = model != NULL ? model : m->valuestring;
    chat_t ch;
    mock_answer_make(&cv, r->body, r->body_len, &ch.a);
    /* gyre's LLM judge asks for a structured verdict: answered from the prompt's sections (docs/mock.md). */
    const cJSON *js = member(member(req, "response_format"), "json_schema");
    if (cJSON_IsString(member(js, "name")) && strcmp(member(js, "name")->valuestring, "gyre_verdict") == 0)
        mock_answer_verdict(&cv, &ch.a);
    mock_convo_dispose(&cv);
    snprintf(ch.id, sizeof(ch.id), "chatcmpl-mock-%08x", ch.a.hash);
    snprintf(ch.call_id, sizeof(ch.call_id), "call_mock_%08x", ch.a.call_hash);
    ch.model = model != NULL ? model : m->valuestring;
    int ret;
    if (cJSON_IsTrue(member(req, "stream"))) {
        int include_usage = cJSON_IsTrue(member(member(req, "stream_options"), "include_usage"));
        ret = stream_answer(c, r, &ch, include_usage, mock_pace_ms(o));
    } else {
        ret = respond_completion(c, r, &ch);
    }
    mock_answer_dispose(&ch.a);
    return ret;
}

/* ---- embeddings ---- */

/*
 * The inputs as texts to hash and their token counts: a string is itself and
 * counts its words; a token array (of integers) is its JSON text and counts
 * its length.  Returns the number of inputs, or -1 when `input` is neither a
 * string, a token array, nor a non-empty array of those.
 */
static int embedding_inputs(const cJSON *input, cJSON *texts, long *tokens)
{
    const cJSON *item;
    int ints = 0, n = cJSON_IsArray(input) ? cJSON_GetArraySize(input) : 0;
    cJSON_ArrayForEach(item, (cJSON_IsArray(input) ? input : NULL))
    {
        ints += cJSON_IsNumber(item);
    }
    if (cJSON_IsString(input) || (n > 0 && ints == n)) {
        char *t = cJSON_IsString(input) ? gyre_strdup(input->valuestring) : cJSON_PrintUnformatted(input);
        cJSON_AddItemToArray(texts, cJSON_CreateString(t));
        *tokens += cJSON_IsString(input) ? (long)mock_count_words(t) : n;
        free(t);
        return 1;
    }
    if (n == 0 || n > MAX_INPUTS)
        return -1;
    cJSON_ArrayForEach(item, input)
    {
        if (cJSON_IsString(item)) {
            cJSON_AddItemToArray(texts, cJSON_CreateString(item->valuestring));
            *tokens += (long)mock_count_words(item->valuestring);
            continue;
        }
        const cJSON *tok;
        int len = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : -1, ok = 0;
        cJSON_ArrayForEach(tok, (len > 0 ? item : NULL))
        {
            ok += cJSON_IsNumber(tok);
        }
        if (len <= 0 || ok != len)
            return -1;
        char *t = cJSON_PrintUnformatted(item);
        cJSON_AddItemToArray(texts, cJSON_CreateString(t));
        free(t);
        *tokens += len;
    }
    return n;
}

/*
 * Component k of a text's vector is (h mod 20001 − 10000) / 10000 where h
 * is FNV-1a of the text seeded with 2166136261 XOR (k × 2654435761 mod 2^32);
 * the vector is scaled to unit length and rounded to 6 decimals.
 */
static void embed(const char *text, double *v, int dims)
{
    double norm = 0;
    for (int k = 0; k < dims; k++) {
        uint32_t h = mock_fnv1a(text, strlen(text), MOCK_FNV_OFFSET ^ (uint32_t)k * 2654435761u);
        v[k] = ((double)(h % 20001) - 10000.0) / 10000.0;
        norm += v[k] * v[k];
    }
    norm = norm > 0 ? sqrt(norm) : 1;
    for (int k = 0; k < dims; k++)
        v[k] = round(v[k] / norm * 1e6) / 1e6;
}

/* OpenAI's base64 form: the float32s, little-endian, as the SDKs ask by default. */
static char *base64_floats(const double *v, int dims)
{
    unsigned char *raw = gyre_malloc((size_t)dims * 4);
    for (int k = 0; k < dims; k++) {
        float f = (float)v[k];
        uint32_t bits;
        memcpy(&bits, &f, 4);
        for (int i = 0; i < 4; i++)
            raw[4 * k + i] = (unsigned char)(bits >> (8 * i));
    }
    char *out = gyre_malloc(4 * (((size_t)dims * 4 + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, raw, dims * 4);
    free(raw);
    return out;
}

int mock_openai_embeddings(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const char *deployment)
{
    const cJSON *model = member(req, "model"), *input = member(req, "input"), *dims = member(req, "dimensions");
    const cJSON *format = member(req, "encoding_format");
    if (deployment == NULL && !cJSON_IsString(model))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter", "model",
                                       "'model' must be a string.");
    if (input == NULL)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter", "input",
                                       "Missing required parameter: 'input'.");
    if (dims != NULL && (!cJSON_IsNumber(dims) || dims->valuedouble != floor(dims->valuedouble) ||
                         dims->valuedouble < 1 || dims->valuedouble > MAX_DIMENSIONS))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_value", "dimensions",
                                       "'dimensions' must be an integer from 1 to %d.", MAX_DIMENSIONS);
    if (format != NULL && !(cJSON_IsString(format) &&
                            (strcmp(format->valuestring, "float") == 0 || strcmp(format->valuestring, "base64") == 0)))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_value", "encoding_format",
                                       "'encoding_format' must be 'float' or 'base64'.");
    cJSON *texts = cJSON_CreateArray();
    long tokens = 0;
    if (embedding_inputs(input, texts, &tokens) < 0) {
        cJSON_Delete(texts);
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_type", "input",
                                       "'input' must be a string, a token array, or an array of 1 to %d of those.",
                                       MAX_INPUTS);
    }
    int n = dims != NULL ? (int)dims->valuedouble : DEFAULT_DIMENSIONS;
    int base64 = cJSON_IsString(format) && strcmp(format->valuestring, "base64") == 0;
    double *v = gyre_malloc((size_t)n * sizeof(*v));
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    const cJSON *text;
    int index = 0;
    cJSON_ArrayForEach(text, texts)
    {
        embed(text->valuestring, v, n);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", index++);
        if (base64) {
            char *b64 = base64_floats(v, n);
            cJSON_AddStringToObject(e, "embedding", b64);
            free(b64);
        } else {
            cJSON_AddItemToObject(e, "embedding", cJSON_CreateDoubleArray(v, n));
        }
        cJSON_AddItemToArray(data, e);
    }
    cJSON_AddStringToObject(root, "model", deployment != NULL ? deployment : model->valuestring);
    cJSON *u = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)tokens);
    int ret = mock_http_respond_json(c, r, 200, root);
    cJSON_Delete(root);
    cJSON_Delete(texts);
    free(v);
    return ret;
}

/* ---- models ---- */

int mock_openai_models(mock_conn_t *c, const mock_request_t *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    for (size_t i = 0; i < sizeof(model_ids) / sizeof(model_ids[0]); i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", model_ids[i]);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", MOCK_CREATED);
        cJSON_AddStringToObject(m, "owned_by", "gyre-mock");
        cJSON_AddItemToArray(data, m);
    }
    mock_finetune_models_json(data);
    int ret = mock_http_respond_json(c, r, 200, root);
    cJSON_Delete(root);
    return ret;
}
