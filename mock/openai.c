/*
 * gyre-mock's answers in OpenAI's shapes: chat completions (streamed or not,
 * tool calls included), embeddings and the model list.
 *
 * Every answer is a function of the request alone (no clock, no randomness),
 * so tests can assert exact values; docs/mock.md states the rules and
 * tests/integration/mock.test.mjs checks them.
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

#define REPLY_CHARS 64     /* characters of the last message a reply repeats */
#define SCHEMA_DEPTH 8     /* nesting followed when making tool arguments */
#define SCHEMA_VALUES 4096 /* values made for one call: nested minItems would multiply without it */
#define MAX_ARRAY_ITEMS 16 /* minItems honoured up to this many */
#define MAX_STRING_LEN 256 /* minLength honoured up to this length */
#define DEFAULT_DIMENSIONS 8
#define MAX_DIMENSIONS 4096
#define MAX_INPUTS 2048 /* OpenAI's own limit on embedding inputs per request */
#define FNV_OFFSET 2166136261u

static const char *const model_ids[] = {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "mock-1"};

static uint32_t fnv1a(const char *s, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* ---- words: the unit of every token count, cut and stream piece ---- */

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static size_t count_words(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p;) {
        while (is_space(*p))
            p++;
        if (*p == '\0')
            break;
        n++;
        while (*p != '\0' && !is_space(*p))
            p++;
    }
    return n;
}

/* The length of the stream piece at `s`: a word and the whitespace after it. */
static size_t piece_len(const char *s)
{
    const char *p = s;
    while (is_space(*p))
        p++;
    while (*p != '\0' && !is_space(*p))
        p++;
    while (is_space(*p))
        p++;
    return (size_t)(p - s);
}

/* Ends `s` after its nth word when more follows; returns whether it did. */
static int cut_words(char *s, size_t n)
{
    char *p = s;
    for (size_t seen = 0; seen < n; seen++) {
        while (is_space(*p))
            p++;
        if (*p == '\0')
            return 0;
        while (*p != '\0' && !is_space(*p))
            p++;
    }
    const char *rest = p;
    while (is_space(*rest))
        rest++;
    if (*rest == '\0')
        return 0;
    *p = '\0';
    return 1;
}

/* Ends UTF-8 `s` after n characters (never inside one). */
static void cut_chars(char *s, size_t n)
{
    size_t chars = 0;
    for (char *p = s; *p; p++)
        if (((unsigned char)*p & 0xC0) != 0x80 && chars++ == n) {
            *p = '\0';
            return;
        }
}

/* A message's text: its content string, or its parts' `text` joined by spaces. Freed by the caller. */
static char *content_text(const cJSON *content)
{
    if (cJSON_IsString(content))
        return gyre_strdup(content->valuestring);
    gyre_buf_t b;
    gyre_buf_init(&b, MOCK_MAX_BODY);
    const cJSON *part;
    cJSON_ArrayForEach(part, (cJSON_IsArray(content) ? content : NULL))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(t)) {
            if (b.len != 0)
                gyre_buf_appends(&b, " ");
            gyre_buf_appends(&b, t->valuestring);
        }
    }
    return b.base != NULL ? b.base : gyre_strdup("");
}

/* ---- tool arguments from a JSON schema ---- */

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

/* Moves `v` inside the schema's minimum/maximum (exclusive ones as draft 6+ writes them). */
static double within_bounds(const cJSON *schema, double v, double step)
{
    const cJSON *b;
    if (cJSON_IsNumber(b = member(schema, "minimum")) && v < b->valuedouble)
        v = step == 1 ? ceil(b->valuedouble) : b->valuedouble;
    if (cJSON_IsNumber(b = member(schema, "exclusiveMinimum")) && v <= b->valuedouble)
        v = step == 1 ? floor(b->valuedouble) + 1 : b->valuedouble + step;
    if (cJSON_IsNumber(b = member(schema, "maximum")) && v > b->valuedouble)
        v = step == 1 ? floor(b->valuedouble) : b->valuedouble;
    if (cJSON_IsNumber(b = member(schema, "exclusiveMaximum")) && v >= b->valuedouble)
        v = step == 1 ? ceil(b->valuedouble) - 1 : b->valuedouble - step;
    return v;
}

static const char *schema_type(const cJSON *schema)
{
    const cJSON *type = member(schema, "type");
    if (cJSON_IsString(type))
        return type->valuestring;
    if (cJSON_IsArray(type)) {
        /* ["string", "null"]: the first type that is not null, so the value says something. */
        const cJSON *t;
        cJSON_ArrayForEach(t, type)
        {
            if (cJSON_IsString(t) && strcmp(t->valuestring, "null") != 0)
                return t->valuestring;
        }
        return "null";
    }
    if (member(schema, "items") != NULL)
        return "array";
    return "object";
}

/*
 * A value that satisfies `schema`: const, else the first enum value, else
 * the first alternative of anyOf/oneOf/allOf, else by type: "mock" for
 * strings, 1 for integers, 1.5 for numbers (both moved into their bounds),
 * true, null, arrays of one item (or minItems), and objects with every
 * required property (all of them when none is required).  Past SCHEMA_DEPTH
 * or SCHEMA_VALUES, arrays and objects are left short rather than grow.
 */
static cJSON *value_for_schema(const cJSON *schema, int depth, int *budget)
{
    --*budget;
    const cJSON *x;
    if ((x = member(schema, "const")) != NULL)
        return cJSON_Duplicate(x, 1);
    if (cJSON_IsArray(x = member(schema, "enum")) && cJSON_GetArraySize(x) > 0)
        return cJSON_Duplicate(cJSON_GetArrayItem(x, 0), 1);
    static const char *const alternatives[] = {"anyOf", "oneOf", "allOf"};
    for (size_t i = 0; i < sizeof(alternatives) / sizeof(alternatives[0]); i++)
        if (cJSON_IsArray(x = member(schema, alternatives[i])) && cJSON_GetArraySize(x) > 0 && depth < SCHEMA_DEPTH)
            return value_for_schema(cJSON_GetArrayItem(x, 0), depth + 1, budget);
    const char *type = schema_type(schema);
    if (strcmp(type, "string") == 0) {
        const cJSON *minl = member(schema, "minLength"), *maxl = member(schema, "maxLength");
        double len = 4;
        if (cJSON_IsNumber(minl) && minl->valuedouble > len)
            len = minl->valuedouble < MAX_STRING_LEN ? minl->valuedouble : MAX_STRING_LEN;
        if (cJSON_IsNumber(maxl) && maxl->valuedouble < len)
            len = maxl->valuedouble > 0 ? maxl->valuedouble : 0;
        char s[MAX_STRING_LEN + 1];
        for (size_t i = 0; i < (size_t)len; i++)
            s[i] = "mock"[i % 4];
        s[(size_t)len] = '\0';
        return cJSON_CreateString(s);
    }
    if (strcmp(type, "integer") == 0)
        return cJSON_CreateNumber(within_bounds(schema, 1, 1));
    if (strcmp(type, "number") == 0)
        return cJSON_CreateNumber(within_bounds(schema, 1.5, 0.5));
    if (strcmp(type, "boolean") == 0)
        return cJSON_CreateTrue();
    if (strcmp(type, "null") == 0)
        return cJSON_CreateNull();
    if (strcmp(type, "array") == 0) {
        cJSON *a = cJSON_CreateArray();
        const cJSON *mini = member(schema, "minItems"), *maxi = member(schema, "maxItems");
        double n = cJSON_IsNumber(mini) && mini->valuedouble > 1 ? mini->valuedouble : 1;
        if (n > MAX_ARRAY_ITEMS)
            n = MAX_ARRAY_ITEMS;
        if ((cJSON_IsNumber(maxi) && maxi->valuedouble < 1) || depth >= SCHEMA_DEPTH)
            n = 0;
        for (size_t i = 0; i<(size_t)n && * budget> 0; i++)
            cJSON_AddItemToArray(a, value_for_schema(member(schema, "items"), depth + 1, budget));
        return a;
    }
    cJSON *o = cJSON_CreateObject();
    if (depth >= SCHEMA_DEPTH || *budget <= 0)
        return o;
    const cJSON *props = member(schema, "properties"), *required = member(schema, "required");
    int all = !cJSON_IsArray(required) || cJSON_GetArraySize(required) == 0;
    const cJSON *p, *r;
    cJSON_ArrayForEach(p, (cJSON_IsObject(props) ? props : NULL))
    {
        int want = all;
        cJSON_ArrayForEach(r, (all ? NULL : required))
        {
            if (cJSON_IsString(r) && strcmp(r->valuestring, p->string) == 0)
                want = 1;
        }
        if (want)
            cJSON_AddItemToObject(o, p->string, value_for_schema(p, depth + 1, budget));
    }
    /* A required name with no schema of its own still has to be there. */
    cJSON_ArrayForEach(r, (all ? NULL : required))
    {
        if (cJSON_IsString(r) && member(o, r->valuestring) == NULL)
            cJSON_AddItemToObject(o, r->valuestring, cJSON_CreateString("mock"));
    }
    return o;
}

/* ---- chat completions ---- */

typedef struct answer {
    char *text;         /* the reply; NULL for a tool call (owned) */
    char *tool_name;    /* the function called (owned) */
    char *tool_args;    /* its arguments, a JSON text (owned) */
    char id[32];        /* chatcmpl-mock-xxxxxxxx */
    char call_id[32];   /* call_mock_xxxxxxxx */
    const char *finish; /* stop | length | tool_calls */
    long prompt_tokens, completion_tokens;
} answer_t;

static void answer_dispose(answer_t *a)
{
    free(a->text);
    free(a->tool_name);
    free(a->tool_args);
}

/* The tool to call, or NULL for a text answer. */
static const cJSON *chosen_tool(const cJSON *req, int after_tool)
{
    const cJSON *tools = member(req, "tools"), *choice = member(req, "tool_choice");
    if (after_tool || !cJSON_IsArray(tools) || cJSON_GetArraySize(tools) == 0)
        return NULL;
    if (cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0)
        return NULL;
    const cJSON *named = member(member(choice, "function"), "name"), *t;
    cJSON_ArrayForEach(t, (cJSON_IsString(named) ? tools : NULL))
    {
        const cJSON *n = member(member(t, "function"), "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, named->valuestring) == 0)
            return t;
    }
    return cJSON_GetArrayItem(tools, 0);
}

static void make_answer(const cJSON *req, const mock_request_t *r, answer_t *a)
{
    memset(a, 0, sizeof(*a));
    uint32_t h = fnv1a(r->body, r->body_len, FNV_OFFSET);
    snprintf(a->id, sizeof(a->id), "chatcmpl-mock-%08x", h);
    snprintf(a->call_id, sizeof(a->call_id), "call_mock_%08x", fnv1a("call", 4, h));
    const cJSON *messages = member(req, "messages"), *m;
    cJSON_ArrayForEach(m, messages)
    {
        char *t = content_text(member(m, "content"));
        a->prompt_tokens += (long)count_words(t) + 4;
        free(t);
    }
    const cJSON *last = cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1);
    const cJSON *role = member(last, "role");
    int after_tool = cJSON_IsString(role) && strcmp(role->valuestring, "tool") == 0;

    const cJSON *tool = chosen_tool(req, after_tool);
    if (tool != NULL) {
        const cJSON *fn = member(tool, "function"), *name = member(fn, "name");
        int budget = SCHEMA_VALUES;
        cJSON *args = value_for_schema(member(fn, "parameters"), 0, &budget);
        a->tool_name = gyre_strdup(cJSON_IsString(name) ? name->valuestring : "tool");
        a->tool_args = cJSON_PrintUnformatted(args);
        cJSON_Delete(args);
        a->finish = "tool_calls";
        a->completion_tokens = (long)count_words(a->tool_args) + 4;
        return;
    }

    char *said = content_text(member(last, "content"));
    cut_chars(said, REPLY_CHARS);
    gyre_buf_t b;
    gyre_buf_init(&b, MOCK_MAX_BODY);
    gyre_buf_appendf(&b, "%s%s", after_tool ? "Mock reply to tool result: " : "Mock reply to: ", said);
    free(said);
    a->text = b.base;
    a->finish = "stop";
    const cJSON *max = member(req, "max_completion_tokens");
    if (!cJSON_IsNumber(max))
        max = member(req, "max_tokens");
    if (cJSON_IsNumber(max) && max->valuedouble >= 1 && max->valuedouble < 1e9 &&
        cut_words(a->text, (size_t)max->valuedouble))
        a->finish = "length";
    a->completion_tokens = (long)count_words(a->text);
}

static cJSON *usage_json(const answer_t *a)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)a->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)a->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(a->prompt_tokens + a->completion_tokens));
    return u;
}

/* A tool call: in a stream, `index` always and id/type/name only in the first delta. */
static cJSON *tool_call_json(const answer_t *a, const char *args, int with_index, int with_head)
{
    cJSON *tc = cJSON_CreateObject();
    if (with_index)
        cJSON_AddNumberToObject(tc, "index", 0);
    if (with_head) {
        cJSON_AddStringToObject(tc, "id", a->call_id);
        cJSON_AddStringToObject(tc, "type", "function");
    }
    cJSON *fn = cJSON_AddObjectToObject(tc, "function");
    if (with_head)
        cJSON_AddStringToObject(fn, "name", a->tool_name);
    cJSON_AddStringToObject(fn, "arguments", args);
    return tc;
}

static int respond_completion(mock_conn_t *c, const mock_request_t *r, const answer_t *a, const char *model)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", a->id);
    cJSON_AddStringToObject(root, "object", "chat.completion");
    cJSON_AddNumberToObject(root, "created", MOCK_CREATED);
    cJSON_AddStringToObject(root, "model", model);
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    if (a->text != NULL) {
        cJSON_AddStringToObject(msg, "content", a->text);
    } else {
        cJSON_AddNullToObject(msg, "content");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(msg, "tool_calls"), tool_call_json(a, a->tool_args, 0, 1));
    }
    cJSON_AddNullToObject(msg, "refusal");
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason", a->finish);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "choices"), choice);
    cJSON_AddItemToObject(root, "usage", usage_json(a));
    int ret = mock_http_respond_json(c, r, 200, root);
    cJSON_Delete(root);
    return ret;
}

/* Sends one chat.completion.chunk; takes `delta` (NULL: the usage chunk, with no choice). */
static int send_chunk(mock_conn_t *c, const answer_t *a, const char *model, cJSON *delta, const char *finish,
                      int with_usage)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", a->id);
    cJSON_AddStringToObject(o, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(o, "created", MOCK_CREATED);
    cJSON_AddStringToObject(o, "model", model);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    if (delta != NULL) {
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddNumberToObject(ch, "index", 0);
        cJSON_AddItemToObject(ch, "delta", delta);
        cJSON_AddNullToObject(ch, "logprobs");
        cJSON_AddItemToObject(ch, "finish_reason", finish ? cJSON_CreateString(finish) : cJSON_CreateNull());
        cJSON_AddItemToArray(choices, ch);
    }
    if (with_usage)
        cJSON_AddItemToObject(o, "usage", usage_json(a));
    int ret = mock_http_stream_event(c, o);
    cJSON_Delete(o);
    return ret;
}

static cJSON *tool_delta(const answer_t *a, const char *args, int with_head)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "tool_calls"), tool_call_json(a, args, 1, with_head));
    return d;
}

/*
 * A stream: the role, then the text a word at a time (or the tool call's
 * head and its arguments in up to three pieces), the finish, the usage when
 * asked, [DONE].  With c->truncate it stops after two pieces of content (or
 * the first piece of arguments) and the connection is closed.
 */
static int stream_answer(mock_conn_t *c, const mock_request_t *r, const answer_t *a, const char *model,
                         int include_usage, double tokens_per_sec)
{
    long pace_ms = tokens_per_sec > 0 ? lround(1000.0 / tokens_per_sec) : 0;
    if (mock_http_stream_start(c, r) != 0)
        return -1;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "role", "assistant");
    cJSON_AddItemToObject(d, "content", a->text != NULL ? cJSON_CreateString("") : cJSON_CreateNull());
    if (send_chunk(c, a, model, d, NULL, 0) != 0)
        return -1;
    if (a->text != NULL) {
        int sent = 0;
        for (const char *p = a->text; *p != '\0' && !(c->truncate && sent == 2); sent++) {
            if (mock_wait_ms(pace_ms) != 0)
                return -1;
            size_t n = piece_len(p);
            char *piece = gyre_strndup(p, n);
            d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "content", piece);
            free(piece);
            p += n;
            if (send_chunk(c, a, model, d, NULL, 0) != 0)
                return -1;
        }
    } else {
        if (send_chunk(c, a, model, tool_delta(a, "", 1), NULL, 0) != 0)
            return -1;
        size_t len = strlen(a->tool_args), third = (len + 2) / 3;
        for (size_t off = 0; off < len && !(c->truncate && off > 0); off += third) {
            if (mock_wait_ms(pace_ms) != 0)
                return -1;
            char *piece = gyre_strndup(a->tool_args + off, off + third <= len ? third : len - off);
            d = tool_delta(a, piece, 0);
            free(piece);
            if (send_chunk(c, a, model, d, NULL, 0) != 0)
                return -1;
        }
    }
    if (c->truncate)
        return -1; /* cut: no finish chunk, no [DONE], no terminating chunk */
    if (send_chunk(c, a, model, cJSON_CreateObject(), a->finish, 0) != 0)
        return -1;
    if (include_usage && send_chunk(c, a, model, NULL, NULL, 1) != 0)
        return -1;
    return mock_http_stream_end(c);
}

int mock_openai_chat(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const mock_options_t *o)
{
    const cJSON *model = member(req, "model"), *messages = member(req, "messages");
    if (model == NULL)
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter", "model",
                                       "Missing required parameter: 'model'.");
    if (!cJSON_IsString(model))
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
    answer_t a;
    make_answer(req, r, &a);
    int ret;
    if (cJSON_IsTrue(member(req, "stream"))) {
        int include_usage = cJSON_IsTrue(member(member(req, "stream_options"), "include_usage"));
        ret = stream_answer(c, r, &a, model->valuestring, include_usage, o->tokens_per_sec);
    } else {
        ret = respond_completion(c, r, &a, model->valuestring);
    }
    answer_dispose(&a);
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
        *tokens += cJSON_IsString(input) ? (long)count_words(t) : n;
        free(t);
        return 1;
    }
    if (n == 0 || n > MAX_INPUTS)
        return -1;
    cJSON_ArrayForEach(item, input)
    {
        if (cJSON_IsString(item)) {
            cJSON_AddItemToArray(texts, cJSON_CreateString(item->valuestring));
            *tokens += (long)count_words(item->valuestring);
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
        uint32_t h = fnv1a(text, strlen(text), FNV_OFFSET ^ (uint32_t)k * 2654435761u);
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

int mock_openai_embeddings(mock_conn_t *c, const mock_request_t *r, const cJSON *req)
{
    const cJSON *model = member(req, "model"), *input = member(req, "input"), *dims = member(req, "dimensions");
    const cJSON *format = member(req, "encoding_format");
    if (!cJSON_IsString(model))
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
    cJSON_AddStringToObject(root, "model", model->valuestring);
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
    int ret = mock_http_respond_json(c, r, 200, root);
    cJSON_Delete(root);
    return ret;
}
