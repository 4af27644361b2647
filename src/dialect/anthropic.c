/*
 * The Anthropic Messages API, both ways (see anthropic.h).
 *
 * The first half is the provider kind: an OpenAI chat request becomes a
 * Messages request, and Anthropic's message objects, error bodies and event
 * streams become OpenAI's.  The second half is gyre's own /v1/messages: a
 * Messages request becomes an OpenAI chat request, and the OpenAI answer or
 * chunk stream a provider of another kind sends becomes Anthropic's.
 *
 * Requests and whole answers are read and built with cJSON: they are bounded
 * by the body limit already, and building a tree keeps every translation
 * well-formed JSON.  Stream events are written by hand, one event at a time
 * into a scratch buffer that is appended whole, so that the bytes a client
 * sees are always a sequence of complete events, even when a bound is hit.
 */
#include "dialect/anthropic.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "config/config.h"
#include "dialect/client.h"
#include "dialect/dialect.h"
#include "common/sse.h"

/* One SSE event of either stream; Anthropic's own events are far smaller. */
#define ANTHROPIC_EVENT_BOUND ((size_t)4 * 1024 * 1024)
/* Text joined from the pieces of one request or answer; what it is built
 * from is bounded already (the body limit), this only keeps the buffer's
 * promise of having a maximum. */
#define ANTHROPIC_JOIN_BOUND ((size_t)1 << 30)
/* A join past ANTHROPIC_JOIN_BOUND cannot happen (bodies are bounded far below it by max_body_bytes), so the joins
 * below check their buffer once, where the text is used, and answer this if one ever did. */
#define JOIN_TOO_LARGE(err)                                                                                            \
    gyre_api_error_set((err), 400, "invalid_request_error", "request_too_large", NULL,                                \
                       "the request's text is larger than gyre can translate")
/* One translated event: the event it came from, escaped, plus its frame. */
#define ANTHROPIC_OUT_EVENT_BOUND (2 * ANTHROPIC_EVENT_BOUND + 4096)

#define BAD(err, param, ...)                                                                                           \
    gyre_api_error_set((err), 400, "invalid_request_error", "invalid_value", (param), __VA_ARGS__)

/* --- small JSON helpers --------------------------------------------------- */

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

/* The member's string, or NULL when it is absent or not a string. */
static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int str_is(const char *s, const char *lit)
{
    return s != NULL && strcmp(s, lit) == 0;
}

static int is_positive_integer(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 1 && v->valuedouble <= 9.0e15 &&
           v->valuedouble == floor(v->valuedouble);
}


/* Adds a copy of `v` under `key`; cJSON_Duplicate only fails out of memory,
 * which its hooks turn into an abort. */
static void add_copy(cJSON *o, const char *key, const cJSON *v)
{
    cJSON_AddItemToObject(o, key, cJSON_Duplicate(v, 1));
}

/* Prints `v` compactly at the end of `out`.  Returns 0 or -E2BIG. */
static int append_json(gyre_buf_t *out, const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    if (s == NULL)
        return -ENOMEM;
    int r = gyre_buf_appends(out, s);
    cJSON_free(s);
    return r;
}

/* Whether `s` is only JSON whitespace (an empty tool-call argument string). */
static int is_blank(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

/* Parses a JSON document that must be the whole of `s`. */
static cJSON *parse_whole(const char *s, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (v == NULL)
        return NULL;
    size_t off = (size_t)(end - s);
    while (off < len && (s[off] == ' ' || s[off] == '\t' || s[off] == '\n' || s[off] == '\r'))
        off++;
    if (off < len) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* --- stop reasons and error types ----------------------------------------- */

/* Anthropic's stop_reason → OpenAI's finish_reason.  Kept here rather than
 * in the shared table so this file reads on its own. */
static const char *finish_reason_of(const char *stop_reason)
{
    static const struct {
        const char *anthropic, *openai;
    } map[] = {
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"max_tokens", "length"},
        {"tool_use", "tool_calls"},
        {"refusal", "content_filter"},
        {"pause_turn", "stop"},
        {"model_context_window_exceeded", "length"},
    };
    if (stop_reason == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].anthropic, stop_reason) == 0)
            return map[i].openai;
    return "stop";
}

/* OpenAI's finish_reason → Anthropic's stop_reason. */
static const char *stop_reason_of(const char *finish_reason)
{
    if (str_is(finish_reason, "length"))
        return "max_tokens";
    if (str_is(finish_reason, "tool_calls") || str_is(finish_reason, "function_call"))
        return "tool_use";
    if (str_is(finish_reason, "content_filter"))
        return "refusal";
    return "end_turn";
}

/* The error types Anthropic documents, so that a type read from a provider's
 * event can be kept as a static string in gyre_api_error_t.code. */
static const char *const anthropic_error_types[] = {
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "request_too_large",     "rate_limit_error",     "api_error",        "overloaded_error",
    "billing_error",         "timeout_error",
};

static const char *known_error_type(const char *type)
{
    for (size_t i = 0; type != NULL && i < sizeof(anthropic_error_types) / sizeof(anthropic_error_types[0]); i++)
        if (strcmp(anthropic_error_types[i], type) == 0)
            return anthropic_error_types[i];
    return NULL;
}

static const char *error_type_for_status(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    }
    if (status >= 400 && status < 500)
        return "invalid_request_error";
    return "api_error";
}

/* ========================================================================== */
/* Provider kind: OpenAI chat request → Messages request                      */
/* ========================================================================== */

/* "data:image/png;base64,AAAA" → {"type":"base64","media_type","data"};
 * http(s) URLs → {"type":"url","url"}. */
static cJSON *image_source(const char *url, const char *param, gyre_api_error_t *err)
{
    cJSON *src = cJSON_CreateObject();
    if (strncmp(url, "data:", 5) == 0) {
        const char *mt = url + 5, *comma = strchr(mt, ',');
        const char *b64 = comma != NULL ? strstr(mt, ";base64") : NULL;
        if (comma == NULL || b64 == NULL || b64 + 7 != comma || b64 == mt) {
            BAD(err, param, "'%s' must be a base64 data: URL (data:<media type>;base64,<data>) or an http(s) URL",
                param);
            cJSON_Delete(src);
            return NULL;
        }
        char *media_type = gyre_strndup(mt, (size_t)(b64 - mt));
        cJSON_AddStringToObject(src, "type", "base64");
        cJSON_AddStringToObject(src, "media_type", media_type);
        cJSON_AddStringToObject(src, "data", comma + 1);
        free(media_type);
        return src;
    }
    if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) {
        cJSON_AddStringToObject(src, "type", "url");
        cJSON_AddStringToObject(src, "url", url);
        return src;
    }
    BAD(err, param, "'%s' must be a base64 data: URL or an http(s) URL", param);
    cJSON_Delete(src);
    return NULL;
}

/* A text block; cache_control (an extension some OpenAI clients send for
 * Anthropic's prompt caching) travels with it. */
static cJSON *text_block(const char *text, const cJSON *part)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "text");
    cJSON_AddStringToObject(b, "text", text);
    const cJSON *cc = get(part, "cache_control");
    if (cc != NULL)
        add_copy(b, "cache_control", cc);
    return b;
}

/* OpenAI content parts (text, image_url) → Anthropic blocks, appended to `blocks`. */
static int parts_to_blocks(const cJSON *parts, const char *where, cJSON *blocks, gyre_api_error_t *err)
{
    char param[128];
    size_t j = 0;
    for (const cJSON *p = parts->child; p != NULL; p = p->next, j++) {
        const char *type = get_str(p, "type");
        snprintf(param, sizeof(param), "%s[%zu].type", where, j);
        if (type == NULL) {
            BAD(err, param, "'%s' must be a string", param);
            return -1;
        }
        if (strcmp(type, "text") == 0) {
            const char *text = get_str(p, "text");
            if (text == NULL) {
                snprintf(param, sizeof(param), "%s[%zu].text", where, j);
                BAD(err, param, "'%s' must be a string", param);
                return -1;
            }
            cJSON_AddItemToArray(blocks, text_block(text, p));
        } else if (strcmp(type, "image_url") == 0) {
            const cJSON *iu = get(p, "image_url");
            const char *url = cJSON_IsString(iu) ? iu->valuestring : get_str(iu, "url");
            snprintf(param, sizeof(param), "%s[%zu].image_url.url", where, j);
            if (url == NULL) {
                BAD(err, param, "'%s' must be a string", param);
                return -1;
            }
            cJSON *src = image_source(url, param, err);
            if (src == NULL)
                return -1;
            cJSON *b = cJSON_CreateObject();
            cJSON_AddStringToObject(b, "type", "image");
            cJSON_AddItemToObject(b, "source", src);
            cJSON_AddItemToArray(blocks, b);
        } else {
            BAD(err, param, "'%s': content parts of type \"%s\" cannot be sent to an Anthropic provider", param, type);
            return -1;
        }
    }
    return 0;
}

/* A message's content (a string, an array of parts, or null) → a string or blocks. */
static cJSON *content_of(const cJSON *content, size_t i, gyre_api_error_t *err)
{
    char where[64];
    snprintf(where, sizeof(where), "messages[%zu].content", i);
    if (cJSON_IsString(content))
        return cJSON_CreateString(content->valuestring);
    if (content == NULL || cJSON_IsNull(content))
        return cJSON_CreateArray();
    if (!cJSON_IsArray(content)) {
        BAD(err, where, "'%s' must be a string, an array of content parts or null, got %s", where,
            gyre_json_type_name(content));
        return NULL;
    }
    cJSON *blocks = cJSON_CreateArray();
    if (parts_to_blocks(content, where, blocks, err) != 0) {
        cJSON_Delete(blocks);
        return NULL;
    }
    return blocks;
}

/* Collects a system or developer message's text into `blocks`; clears
 * *plain when a part carries cache_control (then `system` stays blocks). */
static int add_system(const cJSON *content, size_t i, cJSON *blocks, int *plain, gyre_api_error_t *err)
{
    char where[64];
    snprintf(where, sizeof(where), "messages[%zu].content", i);
    if (cJSON_IsString(content)) {
        cJSON_AddItemToArray(blocks, text_block(content->valuestring, NULL));
        return 0;
    }
    if (!cJSON_IsArray(content)) {
        BAD(err, where, "'%s' must be a string or an array of text parts, got %s", where, gyre_json_type_name(content));
        return -1;
    }
    size_t j = 0;
    for (const cJSON *p = content->child; p != NULL; p = p->next, j++) {
        const char *text = get_str(p, "text");
        if (!str_is(get_str(p, "type"), "text") || text == NULL) {
            char param[96];
            snprintf(param, sizeof(param), "%s[%zu]", where, j);
            BAD(err, param, "'%s': a system message may only hold text parts", param);
            return -1;
        }
        if (get(p, "cache_control") != NULL)
            *plain = 0;
        cJSON_AddItemToArray(blocks, text_block(text, p));
    }
    return 0;
}

/* System text blocks → one string joined with newlines, the common case. */
static cJSON *join_system(const cJSON *blocks)
{
    gyre_buf_t b;
    gyre_buf_init(&b, ANTHROPIC_JOIN_BOUND);
    for (const cJSON *t = blocks->child; t != NULL; t = t->next) {
        if (t != blocks->child)
            gyre_buf_append(&b, "\n", 1);
        gyre_buf_appends(&b, get_str(t, "text"));
    }
    cJSON *s = gyre_buf_failed(&b) == 0 ? cJSON_CreateString(b.base != NULL ? b.base : "") : NULL;
    gyre_buf_dispose(&b);
    return s; /* NULL: the join did not fit */
}

/* An assistant message's tool_calls → tool_use blocks appended to `blocks`. */
static int tool_calls_to_blocks(const cJSON *calls, size_t i, cJSON *blocks, gyre_api_error_t *err)
{
    char param[128];
    if (!cJSON_IsArray(calls)) {
        snprintf(param, sizeof(param), "messages[%zu].tool_calls", i);
        BAD(err, param, "'%s' must be an array, got %s", param, gyre_json_type_name(calls));
        return -1;
    }
    size_t j = 0;
    for (const cJSON *c = calls->child; c != NULL; c = c->next, j++) {
        const cJSON *fn = get(c, "function");
        const char *id = get_str(c, "id"), *name = get_str(fn, "name"), *args = get_str(fn, "arguments");
        if (id == NULL) {
            snprintf(param, sizeof(param), "messages[%zu].tool_calls[%zu].id", i, j);
            BAD(err, param, "'%s' must be a string", param);
            return -1;
        }
        if (name == NULL) {
            snprintf(param, sizeof(param), "messages[%zu].tool_calls[%zu].function.name", i, j);
            BAD(err, param, "'%s' must be a string", param);
            return -1;
        }
        cJSON *input;
        if (args == NULL || is_blank(args)) {
            input = cJSON_CreateObject();
        } else {
            input = parse_whole(args, strlen(args));
            if (!cJSON_IsObject(input)) {
                cJSON_Delete(input);
                snprintf(param, sizeof(param), "messages[%zu].tool_calls[%zu].function.arguments", i, j);
                BAD(err, param, "'%s' must be a JSON object encoded as a string", param);
                return -1;
            }
        }
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "tool_use");
        cJSON_AddStringToObject(b, "id", id);
        cJSON_AddStringToObject(b, "name", name);
        cJSON_AddItemToObject(b, "input", input);
        cJSON_AddItemToArray(blocks, b);
    }
    return 0;
}

/* An assistant message: its text and its tool calls, in that order. */
static cJSON *assistant_content(const cJSON *m, size_t i, gyre_api_error_t *err)
{
    const cJSON *content = get(m, "content"), *calls = get(m, "tool_calls");
    int has_calls = calls != NULL && !cJSON_IsNull(calls) && !(cJSON_IsArray(calls) && calls->child == NULL);
    if (!has_calls)
        return content_of(content, i, err);
    cJSON *blocks = cJSON_CreateArray();
    /* Anthropic refuses empty text blocks; "" beside tool calls means none. */
    if (cJSON_IsString(content) && content->valuestring[0] != '\0') {
        cJSON_AddItemToArray(blocks, text_block(content->valuestring, NULL));
    } else if (cJSON_IsArray(content)) {
        char where[64];
        snprintf(where, sizeof(where), "messages[%zu].content", i);
        if (parts_to_blocks(content, where, blocks, err) != 0)
            goto fail;
    } else if (content != NULL && !cJSON_IsNull(content) && !cJSON_IsString(content)) {
        char where[64];
        snprintf(where, sizeof(where), "messages[%zu].content", i);
        BAD(err, where, "'%s' must be a string, an array of content parts or null, got %s", where,
            gyre_json_type_name(content));
        goto fail;
    }
    if (tool_calls_to_blocks(calls, i, blocks, err) != 0)
        goto fail;
    return blocks;
fail:
    cJSON_Delete(blocks);
    return NULL;
}

/* A `tool` message → a tool_result block. */
static cJSON *tool_result_block(const cJSON *m, size_t i, gyre_api_error_t *err)
{
    char param[64];
    const char *id = get_str(m, "tool_call_id");
    if (id == NULL) {
        snprintf(param, sizeof(param), "messages[%zu].tool_call_id", i);
        BAD(err, param, "'%s' must be a string", param);
        return NULL;
    }
    cJSON *content = content_of(get(m, "content"), i, err);
    if (content == NULL)
        return NULL;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "tool_result");
    cJSON_AddStringToObject(b, "tool_use_id", id);
    cJSON_AddItemToObject(b, "content", content);
    return b;
}

static int convert_messages(const cJSON *messages, cJSON *out, gyre_api_error_t *err)
{
    if (!cJSON_IsArray(messages)) {
        BAD(err, "messages", "'messages' must be an array, got %s", gyre_json_type_name(messages));
        return -1;
    }
    cJSON *system = cJSON_CreateArray(), *msgs = cJSON_CreateArray();
    int plain_system = 1;
    /* The user message that the latest run of tool messages went into:
     * Anthropic wants all the results of one turn in one user message. */
    cJSON *tool_results = NULL;
    size_t i = 0;
    for (const cJSON *m = messages->child; m != NULL; m = m->next, i++) {
        char param[64];
        const char *role = get_str(m, "role");
        if (role == NULL) {
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            BAD(err, param, "'%s' must be a string", param);
            goto fail;
        }
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (add_system(get(m, "content"), i, system, &plain_system, err) != 0)
                goto fail;
            continue;
        }
        if (strcmp(role, "tool") == 0) {
            cJSON *b = tool_result_block(m, i, err);
            if (b == NULL)
                goto fail;
            if (tool_results == NULL) {
                cJSON *um = cJSON_CreateObject();
                cJSON_AddStringToObject(um, "role", "user");
                tool_results = cJSON_AddArrayToObject(um, "content");
                cJSON_AddItemToArray(msgs, um);
            }
            cJSON_AddItemToArray(tool_results, b);
            continue;
        }
        cJSON *content;
        if (strcmp(role, "user") == 0) {
            content = content_of(get(m, "content"), i, err);
        } else if (strcmp(role, "assistant") == 0) {
            content = assistant_content(m, i, err);
        } else {
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            BAD(err, param, "'%s': the role \"%s\" cannot be sent to an Anthropic provider", param, role);
            goto fail;
        }
        if (content == NULL)
            goto fail;
        if (tool_results != NULL && strcmp(role, "user") == 0) {
            /* What the user says after the results belongs to the same
             * turn, after them (tool_result blocks must come first). */
            if (cJSON_IsString(content)) {
                cJSON_AddItemToArray(tool_results, text_block(content->valuestring, NULL));
                cJSON_Delete(content);
            } else {
                while (content->child != NULL)
                    cJSON_AddItemToArray(tool_results, cJSON_DetachItemViaPointer(content, content->child));
                cJSON_Delete(content);
            }
            tool_results = NULL;
            continue;
        }
        tool_results = NULL;
        cJSON *am = cJSON_CreateObject();
        cJSON_AddStringToObject(am, "role", role);
        cJSON_AddItemToObject(am, "content", content);
        cJSON_AddItemToArray(msgs, am);
    }
    if (system->child != NULL) {
        if (plain_system) {
            cJSON *joined = join_system(system);
            cJSON_Delete(system);
            if (joined == NULL) {
                JOIN_TOO_LARGE(err);
                cJSON_Delete(msgs);
                return -1;
            }
            cJSON_AddItemToObject(out, "system", joined);
        } else {
            cJSON_AddItemToObject(out, "system", system);
        }
    } else {
        cJSON_Delete(system);
    }
    cJSON_AddItemToObject(out, "messages", msgs);
    return 0;
fail:
    cJSON_Delete(system);
    cJSON_Delete(msgs);
    return -1;
}

static int convert_tools(const cJSON *req, cJSON *out, gyre_api_error_t *err)
{
    const cJSON *tools = get(req, "tools");
    char param[64];
    if (tools != NULL && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) {
            BAD(err, "tools", "'tools' must be an array, got %s", gyre_json_type_name(tools));
            return -1;
        }
        cJSON *list = cJSON_CreateArray();
        size_t i = 0;
        for (const cJSON *t = tools->child; t != NULL; t = t->next, i++) {
            const cJSON *fn = get(t, "function");
            const char *name = get_str(fn, "name");
            if (!str_is(get_str(t, "type"), "function")) {
                snprintf(param, sizeof(param), "tools[%zu].type", i);
                BAD(err, param, "'%s' must be \"function\"", param);
                cJSON_Delete(list);
                return -1;
            }
            if (name == NULL) {
                snprintf(param, sizeof(param), "tools[%zu].function.name", i);
                BAD(err, param, "'%s' must be a string", param);
                cJSON_Delete(list);
                return -1;
            }
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "name", name);
            const char *desc = get_str(fn, "description");
            if (desc != NULL)
                cJSON_AddStringToObject(a, "description", desc);
            const cJSON *params = get(fn, "parameters");
            if (cJSON_IsObject(params)) {
                add_copy(a, "input_schema", params);
            } else {
                /* OpenAI lets a function take no parameters; Anthropic
                 * wants a schema, and this is the schema of nothing. */
                cJSON *schema = cJSON_AddObjectToObject(a, "input_schema");
                cJSON_AddStringToObject(schema, "type", "object");
                cJSON_AddObjectToObject(schema, "properties");
            }
            cJSON_AddItemToArray(list, a);
        }
        cJSON_AddItemToObject(out, "tools", list);
    }

    const cJSON *tc = get(req, "tool_choice");
    cJSON *choice = NULL;
    if (cJSON_IsString(tc)) {
        const char *type = strcmp(tc->valuestring, "auto") == 0       ? "auto"
                           : strcmp(tc->valuestring, "required") == 0 ? "any"
                           : strcmp(tc->valuestring, "none") == 0     ? "none"
                                                                      : NULL;
        if (type == NULL) {
            BAD(err, "tool_choice", "'tool_choice' must be \"auto\", \"required\", \"none\" or a function");
            return -1;
        }
        choice = cJSON_CreateObject();
        cJSON_AddStringToObject(choice, "type", type);
    } else if (cJSON_IsObject(tc)) {
        const char *name = get_str(get(tc, "function"), "name");
        if (!str_is(get_str(tc, "type"), "function") || name == NULL) {
            BAD(err, "tool_choice", "'tool_choice' must be {\"type\":\"function\",\"function\":{\"name\":...}}");
            return -1;
        }
        choice = cJSON_CreateObject();
        cJSON_AddStringToObject(choice, "type", "tool");
        cJSON_AddStringToObject(choice, "name", name);
    } else if (tc != NULL && !cJSON_IsNull(tc)) {
        BAD(err, "tool_choice", "'tool_choice' must be a string or an object, got %s", gyre_json_type_name(tc));
        return -1;
    }
    /* Anthropic says it inside tool_choice, and only where tools may be used. */
    if (cJSON_IsFalse(get(req, "parallel_tool_calls")) && get(out, "tools") != NULL &&
        !(choice != NULL && str_is(get_str(choice, "type"), "none"))) {
        if (choice == NULL) {
            choice = cJSON_CreateObject();
            cJSON_AddStringToObject(choice, "type", "auto");
        }
        cJSON_AddTrueToObject(choice, "disable_parallel_tool_use");
    }
    if (choice != NULL)
        cJSON_AddItemToObject(out, "tool_choice", choice);
    return 0;
}

static int convert_stop(const cJSON *stop, cJSON *out, gyre_api_error_t *err)
{
    if (stop == NULL || cJSON_IsNull(stop))
        return 0;
    if (cJSON_IsString(stop)) {
        cJSON *list = cJSON_AddArrayToObject(out, "stop_sequences");
        cJSON_AddItemToArray(list, cJSON_CreateString(stop->valuestring));
        return 0;
    }
    if (!cJSON_IsArray(stop)) {
        BAD(err, "stop", "'stop' must be a string or an array of strings, got %s", gyre_json_type_name(stop));
        return -1;
    }
    size_t j = 0;
    for (const cJSON *s = stop->child; s != NULL; s = s->next, j++) {
        if (!cJSON_IsString(s)) {
            char param[32];
            snprintf(param, sizeof(param), "stop[%zu]", j);
            BAD(err, param, "'%s' must be a string, got %s", param, gyre_json_type_name(s));
            return -1;
        }
    }
    if (stop->child != NULL)
        add_copy(out, "stop_sequences", stop);
    return 0;
}

static int anthropic_chat_request(const gyre_chat_call_t *call, gyre_buf_t *path, gyre_buf_t *body,
                                  gyre_api_error_t *err)
{
    const cJSON *req = call->req;
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model", call->model != NULL ? call->model : "");

    const cJSON *mt = get(req, "max_completion_tokens");
    if (!cJSON_IsNumber(mt))
        mt = get(req, "max_tokens");
    if (cJSON_IsNumber(mt)) {
        cJSON_AddNumberToObject(out, "max_tokens", mt->valuedouble);
    } else {
        /* Anthropic requires max_tokens where OpenAI does not. */
        unsigned dflt = call->provider != NULL && call->provider->max_tokens != 0 ? call->provider->max_tokens
                                                                                  : GYRE_DEFAULT_MAX_TOKENS;
        cJSON_AddNumberToObject(out, "max_tokens", dflt);
    }
    if (convert_messages(get(req, "messages"), out, err) != 0)
        goto fail;
    if (convert_tools(req, out, err) != 0)
        goto fail;
    if (convert_stop(get(req, "stop"), out, err) != 0)
        goto fail;
    static const char *const numbers[] = {"temperature", "top_p", "top_k"};
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        const cJSON *v = get(req, numbers[i]);
        if (cJSON_IsNumber(v))
            cJSON_AddNumberToObject(out, numbers[i], v->valuedouble);
    }
    const char *user = get_str(req, "user");
    if (user != NULL) {
        cJSON *md = cJSON_AddObjectToObject(out, "metadata");
        cJSON_AddStringToObject(md, "user_id", user);
    }
    if (call->stream)
        cJSON_AddTrueToObject(out, "stream");

    if (gyre_buf_appends(path, "/messages") != 0 || append_json(body, out) != 0) {
        gyre_api_error_set(err, 413, "invalid_request_error", "request_too_large", NULL,
                           "the request translated for the Anthropic provider is larger than gyre's limit");
        goto fail;
    }
    cJSON_Delete(out);
    return 0;
fail:
    cJSON_Delete(out);
    return -1;
}

static int anthropic_auth_headers(const gyre_chat_call_t *call, const char *key, const char *host, const char *path,
                                  const char *body, size_t body_len, long long now, gyre_buf_t *headers)
{
    (void)host, (void)path, (void)body, (void)body_len, (void)now;
    const char *version = call->provider != NULL && call->provider->api_version != NULL ? call->provider->api_version
                                                                                        : GYRE_ANTHROPIC_VERSION;
    int r = 0;
    if (key != NULL)
        r |= gyre_buf_appendf(headers, "x-api-key: %s\r\n", key);
    r |= gyre_buf_appendf(headers, "anthropic-version: %s\r\n", version);
    r |= gyre_buf_appends(headers, "content-type: application/json\r\n");
    return r != 0 ? -1 : 0;
}

/* ========================================================================== */
/* Provider kind: Anthropic answers → OpenAI                                  */
/* ========================================================================== */

typedef struct anthropic_usage {
    long long input, output, cache_read, cache_creation;
} anthropic_usage_t;

/* Updates the counts that `usage` carries (message_delta may repeat some). */
static void usage_read(anthropic_usage_t *u, const cJSON *usage)
{
    const cJSON *v;
    if ((v = get(usage, "input_tokens")) != NULL)
        u->input = gyre_json_count(v);
    if ((v = get(usage, "output_tokens")) != NULL)
        u->output = gyre_json_count(v);
    if ((v = get(usage, "cache_read_input_tokens")) != NULL)
        u->cache_read = gyre_json_count(v);
    if ((v = get(usage, "cache_creation_input_tokens")) != NULL)
        u->cache_creation = gyre_json_count(v);
}

/* OpenAI's usage object.  Anthropic counts cached input apart from
 * input_tokens; OpenAI's prompt_tokens include it. */
static void usage_write(gyre_buf_t *b, const anthropic_usage_t *u)
{
    long long prompt = u->input + u->cache_read + u->cache_creation;
    gyre_buf_appendf(b,
                     "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                     "\"prompt_tokens_details\":{\"cached_tokens\":%lld},"
                     "\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld}",
                     prompt, u->output, prompt + u->output, u->cache_read, u->cache_creation, u->cache_read);
}

static int anthropic_chat_response(const gyre_chat_call_t *call, const char *body, size_t len, gyre_buf_t *out,
                                   gyre_api_error_t *err)
{
    cJSON *msg = parse_whole(body, len);
    const cJSON *content = get(msg, "content");
    if (!cJSON_IsObject(msg) || !cJSON_IsArray(content)) {
        gyre_api_error_set(err, 502, "upstream_error", "bad_upstream_response", NULL,
                           "the Anthropic provider's answer is not a message object");
        cJSON_Delete(msg);
        return -1;
    }
    gyre_buf_t text, calls, b;
    gyre_buf_init(&text, ANTHROPIC_JOIN_BOUND);
    gyre_buf_init(&calls, ANTHROPIC_JOIN_BOUND);
    gyre_buf_init(&b, ANTHROPIC_JOIN_BOUND);
    int has_text = 0;
    for (const cJSON *blk = content->child; blk != NULL; blk = blk->next) {
        const char *type = get_str(blk, "type");
        if (str_is(type, "text") && get_str(blk, "text") != NULL) {
            gyre_buf_appends(&text, get_str(blk, "text"));
            has_text = 1;
        } else if (str_is(type, "tool_use")) {
            const char *id = get_str(blk, "id"), *name = get_str(blk, "name");
            const cJSON *input = get(blk, "input");
            gyre_buf_appends(&calls, calls.len != 0 ? "," : "");
            gyre_buf_appends(&calls, "{\"id\":");
            gyre_buf_append_json_string(&calls, id != NULL ? id : "", id != NULL ? strlen(id) : 0);
            gyre_buf_appends(&calls, ",\"type\":\"function\",\"function\":{\"name\":");
            gyre_buf_append_json_string(&calls, name != NULL ? name : "", name != NULL ? strlen(name) : 0);
            gyre_buf_appends(&calls, ",\"arguments\":");
            char *args = input != NULL ? cJSON_PrintUnformatted(input) : NULL;
            gyre_buf_append_json_string(&calls, args != NULL ? args : "{}", args != NULL ? strlen(args) : 2);
            cJSON_free(args);
            gyre_buf_appends(&calls, "}}");
        }
        /* thinking, redacted_thinking and server tool blocks have no place in a chat.completion. */
    }
    anthropic_usage_t u = {0, 0, 0, 0};
    usage_read(&u, get(msg, "usage"));
    const char *model = get_str(msg, "model");
    const char *finish = finish_reason_of(get_str(msg, "stop_reason"));

    gyre_buf_appends(&b, "{\"id\":");
    gyre_buf_append_json_string(&b, call->id != NULL ? call->id : "", call->id != NULL ? strlen(call->id) : 0);
    gyre_buf_appendf(&b, ",\"object\":\"chat.completion\",\"created\":%lld,\"model\":", call->created);
    gyre_buf_append_json_string(&b, model != NULL ? model : "", model != NULL ? strlen(model) : 0);
    gyre_buf_appends(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (has_text)
        gyre_buf_append_json_string(&b, text.base, text.len);
    else
        gyre_buf_appends(&b, "null");
    if (calls.len != 0) {
        gyre_buf_appends(&b, ",\"tool_calls\":[");
        gyre_buf_append(&b, calls.base, calls.len);
        gyre_buf_appends(&b, "]");
    }
    gyre_buf_appends(&b, "},\"finish_reason\":");
    if (finish != NULL)
        gyre_buf_append_json_string(&b, finish, strlen(finish));
    else
        gyre_buf_appends(&b, "null");
    gyre_buf_appends(&b, "}],\"usage\":");
    usage_write(&b, &u);
    gyre_buf_appends(&b, "}");

    /* One check for every append above: an answer with a piece missing is never relayed as a whole one. */
    int r = gyre_buf_failed(&text) != 0 || gyre_buf_failed(&calls) != 0 || gyre_buf_failed(&b) != 0
                ? -E2BIG
                : gyre_buf_append(out, b.base, b.len);
    if (r != 0)
        gyre_api_error_set(err, 502, "upstream_error", "bad_upstream_response", NULL,
                           "the Anthropic provider's answer is larger than gyre's limit");
    gyre_buf_dispose(&text);
    gyre_buf_dispose(&calls);
    gyre_buf_dispose(&b);
    cJSON_Delete(msg);
    return r != 0 ? -1 : 0;
}

static void anthropic_error_message(const char *body, size_t len, gyre_buf_t *out)
{
    cJSON *e = parse_whole(body, len);
    const char *message = get_str(get(e, "error"), "message");
    if (message != NULL)
        gyre_buf_append_upto(out, message, strlen(message)); /* cut to what out holds */
    else
        gyre_buf_append_upto(out, body, len);
    cJSON_Delete(e);
}

/* --- provider stream: Anthropic events → OpenAI chunks -------------------- */

typedef enum { BLOCK_NONE = 0, BLOCK_TEXT, BLOCK_TOOL, BLOCK_OTHER } block_kind_t;

typedef struct anthropic_stream {
    gyre_dialect_stream_t super;
    gyre_sse_parser_t sse;
    char *id; /* the call's, copied: the stream may outlive the call's strings */
    long long created;
    gyre_buf_t model;
    const gyre_event_sink_t *sink; /* during a feed */
    int started;                   /* START is out */
    block_kind_t block;
    long long block_index; /* Anthropic's index of the open block */
    long long tool_index;  /* OpenAI's index of the open tool block */
    long long ntools;
    anthropic_usage_t usage;
    int failed;
    gyre_api_error_t error; /* what failed, for every later feed */
} anthropic_stream_t;

static void stream_fail(anthropic_stream_t *s, int status, const char *code, const char *fmt, const char *arg)
{
    if (s->failed)
        return;
    s->failed = 1;
    gyre_api_error_set(&s->error, status, "upstream_error", code, NULL, fmt, arg);
}

/* Sends one event, or fails the stream when its consumer cannot take it. */
static void stream_emit(anthropic_stream_t *s, const gyre_event_t *ev)
{
    if (s->failed)
        return;
    if (s->sink->emit(s->sink->ctx, ev) != 0)
        stream_fail(s, 502, "bad_upstream_response", "%s", "the Anthropic stream outgrew gyre's buffer");
}

static gyre_str_t str_of(const char *s)
{
    return s != NULL ? (gyre_str_t){s, strlen(s)} : (gyre_str_t){"", 0};
}

static void stream_start(anthropic_stream_t *s)
{
    if (s->started)
        return;
    s->started = 1;
    gyre_event_t ev = {.type = GYRE_EVENT_START,
                       .id = str_of(s->id),
                       .model = {s->model.base != NULL ? s->model.base : "", s->model.len},
                       .created = s->created};
    stream_emit(s, &ev);
}

static void stream_text(anthropic_stream_t *s, const char *text)
{
    if (text == NULL || text[0] == '\0')
        return;
    stream_start(s);
    gyre_event_t ev = {.type = GYRE_EVENT_TEXT, .text = str_of(text)};
    stream_emit(s, &ev);
}

static void stream_tool_head(anthropic_stream_t *s, const cJSON *block)
{
    stream_start(s);
    gyre_event_t ev = {.type = GYRE_EVENT_TOOL_START,
                       .index = (int)s->tool_index,
                       .id = str_of(get_str(block, "id")),
                       .name = str_of(get_str(block, "name")),
                       .text = {"", 0}};
    stream_emit(s, &ev);
}

static void stream_tool_args(anthropic_stream_t *s, const char *partial)
{
    if (partial == NULL || partial[0] == '\0')
        return;
    gyre_event_t ev = {.type = GYRE_EVENT_TOOL_ARGS, .index = (int)s->tool_index, .text = str_of(partial)};
    stream_emit(s, &ev);
}

static void stream_error_event(anthropic_stream_t *s, const cJSON *ev)
{
    const cJSON *e = get(ev, "error");
    const char *type = known_error_type(get_str(e, "type"));
    const char *message = get_str(e, "message");
    int status = str_is(type, "overloaded_error")   ? 529
                 : str_is(type, "rate_limit_error") ? 429
                 : str_is(type, "api_error")        ? 500
                                                    : 502;
    s->failed = 1;
    gyre_api_error_set(&s->error, status, "upstream_error", type, NULL, "%s",
                       message != NULL && message[0] != '\0' ? message
                                                             : "the Anthropic provider's stream ended with an error");
}

static void stream_event(anthropic_stream_t *s, const cJSON *ev)
{
    const char *type = get_str(ev, "type");
    if (type == NULL) {
        stream_fail(s, 502, "bad_upstream_response", "%s", "the Anthropic stream sent an event without a type");
        return;
    }
    if (strcmp(type, "message_start") == 0) {
        const cJSON *m = get(ev, "message");
        const char *model = get_str(m, "model");
        if (!s->started && model != NULL)
            gyre_buf_appends(&s->model, model);
        usage_read(&s->usage, get(m, "usage"));
        stream_start(s);
    } else if (strcmp(type, "content_block_start") == 0) {
        const cJSON *block = get(ev, "content_block");
        const char *btype = get_str(block, "type");
        s->block_index = gyre_json_count(get(ev, "index"));
        if (str_is(btype, "text")) {
            s->block = BLOCK_TEXT;
            stream_text(s, get_str(block, "text"));
        } else if (str_is(btype, "tool_use")) {
            s->block = BLOCK_TOOL;
            s->tool_index = s->ntools++;
            stream_tool_head(s, block);
        } else {
            s->block = BLOCK_OTHER; /* thinking, server tools: nothing for an OpenAI client */
        }
    } else if (strcmp(type, "content_block_delta") == 0) {
        const cJSON *delta = get(ev, "delta");
        const char *dtype = get_str(delta, "type");
        if (s->block == BLOCK_NONE || gyre_json_count(get(ev, "index")) != s->block_index) {
            stream_fail(s, 502, "bad_upstream_response", "%s",
                        "the Anthropic stream sent a content_block_delta for a block that is not open");
            return;
        }
        if (str_is(dtype, "text_delta"))
            stream_text(s, get_str(delta, "text"));
        else if (str_is(dtype, "input_json_delta") && s->block == BLOCK_TOOL)
            stream_tool_args(s, get_str(delta, "partial_json"));
        /* thinking_delta, signature_delta, citations_delta: not shown to an OpenAI client. */
    } else if (strcmp(type, "content_block_stop") == 0) {
        s->block = BLOCK_NONE;
    } else if (strcmp(type, "message_delta") == 0) {
        usage_read(&s->usage, get(ev, "usage"));
        const char *finish = finish_reason_of(get_str(get(ev, "delta"), "stop_reason"));
        if (finish != NULL) {
            stream_start(s);
            gyre_event_t fe = {.type = GYRE_EVENT_FINISH, .finish_reason = finish};
            stream_emit(s, &fe);
        }
    } else if (strcmp(type, "message_stop") == 0) {
        stream_start(s);
        /* OpenAI's prompt_tokens count the cached input too; Anthropic counts it apart. */
        const anthropic_usage_t *u = &s->usage;
        long long prompt = u->input + u->cache_read + u->cache_creation;
        gyre_event_t ue = {.type = GYRE_EVENT_USAGE,
                           .usage = {.input_tokens = prompt,
                                     .output_tokens = u->output,
                                     .total_tokens = prompt + u->output,
                                     .cached_tokens = u->cache_read,
                                     .cache_write_tokens = u->cache_creation,
                                     .details = GYRE_USAGE_CACHED | GYRE_USAGE_CACHE_WRITE}};
        stream_emit(s, &ue);
        gyre_event_t de = {.type = GYRE_EVENT_DONE};
        stream_emit(s, &de);
        if (!s->failed)
            s->super.complete = 1;
    } else if (strcmp(type, "error") == 0) {
        stream_error_event(s, ev);
    }
    /* ping, and event types added after this was written, carry nothing to translate. */
}

static void stream_event_cb(void *ctx, const char *event, size_t event_len, const char *data, size_t data_len)
{
    anthropic_stream_t *s = ctx;
    (void)event, (void)event_len;
    if (s->failed || s->super.complete)
        return;
    /* The event's values live in the per-thread JSON arena until its last emit returns. */
    int scope = gyre_json_arena_enter();
    cJSON *ev = parse_whole(data, data_len);
    if (!cJSON_IsObject(ev))
        stream_fail(s, 502, "bad_upstream_response", "%s", "the Anthropic stream sent an event that is not JSON");
    else
        stream_event(s, ev);
    cJSON_Delete(ev);
    if (scope)
        gyre_json_arena_end();
}

static gyre_dialect_stream_t *anthropic_stream_create(const gyre_chat_call_t *call)
{
    anthropic_stream_t *s = gyre_calloc(1, sizeof(*s));
    gyre_sse_init(&s->sse, ANTHROPIC_EVENT_BOUND, stream_event_cb, s);
    s->id = gyre_strdup(call->id != NULL ? call->id : "");
    s->created = call->created;
    gyre_buf_init(&s->model, 1024);
    return &s->super;
}

static int anthropic_stream_feed(gyre_dialect_stream_t *super, const char *bytes, size_t len,
                                 const gyre_event_sink_t *sink, gyre_api_error_t *err)
{
    anthropic_stream_t *s = (anthropic_stream_t *)super;
    if (!s->failed && !s->super.complete) {
        s->sink = sink;
        /* Bytes after message_stop do not matter, even ones past the bound. */
        if (gyre_sse_feed(&s->sse, bytes, len) != 0 && !s->super.complete)
            stream_fail(s, 502, "bad_upstream_response", "%s",
                        "the Anthropic stream sent an event larger than gyre's bound (4 MiB, or 256 bytes for an "
                        "event name)");
        s->sink = NULL;
    }
    if (s->failed) {
        *err = s->error;
        return -1;
    }
    return 0;
}

static void anthropic_stream_destroy(gyre_dialect_stream_t *super)
{
    anthropic_stream_t *s = (anthropic_stream_t *)super;
    if (s == NULL)
        return;
    gyre_sse_dispose(&s->sse);
    gyre_buf_dispose(&s->model);
    free(s->id);
    free(s);
}

const gyre_dialect_t gyre_dialect_anthropic = {
    .kind = "anthropic",
    .chat_request = anthropic_chat_request,
    .auth_headers = anthropic_auth_headers,
    .chat_response = anthropic_chat_response,
    .error_message = anthropic_error_message,
    .stream_create = anthropic_stream_create,
    .stream_feed = anthropic_stream_feed,
    .stream_destroy = anthropic_stream_destroy,
};

/* ========================================================================== */
/* Client dialect: /v1/messages requests                                      */
/* ========================================================================== */

#define MISSING(err, param)                                                                                            \
    gyre_api_error_set((err), 400, "invalid_request_error", "missing_required_parameter", (param),                     \
                       "%s: field required", (param))

/* The checks every content block gets before a translation reads it. */
static int check_block(const cJSON *b, const char *where, gyre_api_error_t *err)
{
    char param[128];
    if (!cJSON_IsObject(b)) {
        BAD(err, where, "%s: must be an object, got %s", where, gyre_json_type_name(b));
        return -1;
    }
    const char *type = get_str(b, "type");
    if (type == NULL) {
        snprintf(param, sizeof(param), "%s.type", where);
        MISSING(err, param);
        return -1;
    }
    const char *need = NULL; /* a string member the block must have */
    if (strcmp(type, "text") == 0)
        need = "text";
    else if (strcmp(type, "tool_use") == 0)
        need = get_str(b, "id") == NULL ? "id" : "name";
    else if (strcmp(type, "tool_result") == 0)
        need = "tool_use_id";
    if (need != NULL && get_str(b, need) == NULL) {
        snprintf(param, sizeof(param), "%s.%s", where, need);
        BAD(err, param, "%s: must be a string", param);
        return -1;
    }
    if (strcmp(type, "tool_use") == 0 && !cJSON_IsObject(get(b, "input"))) {
        snprintf(param, sizeof(param), "%s.input", where);
        BAD(err, param, "%s: must be an object", param);
        return -1;
    }
    return 0;
}

cJSON *gyre_anthropic_parse_request(const char *body, size_t len, gyre_api_error_t *err)
{
    const char *end = NULL;
    cJSON *req = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (req == NULL) {
        size_t off = end != NULL && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        unsigned line, col;
        gyre_json_position(body, len, off, &line, &col);
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                           "the request body is not valid JSON: parsing stopped at line %u, column %u (byte %zu)", line,
                           col, off);
        return NULL;
    }
    char param[128];
    size_t off = (size_t)(end - body);
    while (off < len && (body[off] == ' ' || body[off] == '\n' || body[off] == '\r' || body[off] == '\t'))
        off++;
    if (off < len) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                           "the request body is not valid JSON: unexpected data after the value (byte %zu)", off);
        goto fail;
    }
    if (!cJSON_IsObject(req)) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                           "the request body must be a JSON object, got %s", gyre_json_type_name(req));
        goto fail;
    }
    const cJSON *model = get(req, "model");
    if (model == NULL || cJSON_IsNull(model)) {
        MISSING(err, "model");
        goto fail;
    }
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0') {
        BAD(err, "model", "model: must be a non-empty string");
        goto fail;
    }
    const cJSON *max_tokens = get(req, "max_tokens");
    if (max_tokens == NULL || cJSON_IsNull(max_tokens)) {
        MISSING(err, "max_tokens");
        goto fail;
    }
    if (!is_positive_integer(max_tokens)) {
        BAD(err, "max_tokens", "max_tokens: must be a positive integer");
        goto fail;
    }
    const cJSON *messages = get(req, "messages");
    if (messages == NULL || cJSON_IsNull(messages)) {
        MISSING(err, "messages");
        goto fail;
    }
    if (!cJSON_IsArray(messages) || messages->child == NULL) {
        BAD(err, "messages", "messages: must be a non-empty array");
        goto fail;
    }
    size_t i = 0;
    for (const cJSON *m = messages->child; m != NULL; m = m->next, i++) {
        snprintf(param, sizeof(param), "messages[%zu]", i);
        if (!cJSON_IsObject(m)) {
            BAD(err, param, "%s: must be an object, got %s", param, gyre_json_type_name(m));
            goto fail;
        }
        const char *role = get_str(m, "role");
        snprintf(param, sizeof(param), "messages[%zu].role", i);
        if (get(m, "role") == NULL) {
            MISSING(err, param);
            goto fail;
        }
        if (!str_is(role, "user") && !str_is(role, "assistant")) {
            BAD(err, param, "%s: must be \"user\" or \"assistant\"", param);
            goto fail;
        }
        const cJSON *content = get(m, "content");
        snprintf(param, sizeof(param), "messages[%zu].content", i);
        if (content == NULL) {
            MISSING(err, param);
            goto fail;
        }
        if (cJSON_IsString(content))
            continue;
        if (!cJSON_IsArray(content)) {
            BAD(err, param, "%s: must be a string or an array of content blocks, got %s", param,
                gyre_json_type_name(content));
            goto fail;
        }
        if (content->child == NULL) {
            BAD(err, param, "%s: must not be an empty array", param);
            goto fail;
        }
        size_t j = 0;
        for (const cJSON *b = content->child; b != NULL; b = b->next, j++) {
            snprintf(param, sizeof(param), "messages[%zu].content[%zu]", i, j);
            if (check_block(b, param, err) != 0)
                goto fail;
        }
    }
    const cJSON *system = get(req, "system");
    if (system != NULL && !cJSON_IsNull(system)) {
        if (!cJSON_IsString(system) && !cJSON_IsArray(system)) {
            BAD(err, "system", "system: must be a string or an array of text blocks, got %s", gyre_json_type_name(system));
            goto fail;
        }
        size_t j = 0;
        for (const cJSON *b = cJSON_IsArray(system) ? system->child : NULL; b != NULL; b = b->next, j++) {
            snprintf(param, sizeof(param), "system[%zu]", j);
            if (check_block(b, param, err) != 0)
                goto fail;
            if (!str_is(get_str(b, "type"), "text")) {
                snprintf(param, sizeof(param), "system[%zu].type", j);
                BAD(err, param, "%s: must be \"text\"", param);
                goto fail;
            }
        }
    }
    const cJSON *v;
    if ((v = get(req, "stream")) != NULL && !cJSON_IsBool(v) && !cJSON_IsNull(v)) {
        BAD(err, "stream", "stream: must be a boolean, got %s", gyre_json_type_name(v));
        goto fail;
    }
    static const char *const numbers[] = {"temperature", "top_p", "top_k"};
    for (size_t k = 0; k < sizeof(numbers) / sizeof(numbers[0]); k++) {
        if ((v = get(req, numbers[k])) != NULL && !cJSON_IsNumber(v) && !cJSON_IsNull(v)) {
            BAD(err, numbers[k], "%s: must be a number, got %s", numbers[k], gyre_json_type_name(v));
            goto fail;
        }
    }
    if ((v = get(req, "stop_sequences")) != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsArray(v)) {
            BAD(err, "stop_sequences", "stop_sequences: must be an array of strings, got %s", gyre_json_type_name(v));
            goto fail;
        }
        size_t j = 0;
        for (const cJSON *s = v->child; s != NULL; s = s->next, j++) {
            if (!cJSON_IsString(s)) {
                snprintf(param, sizeof(param), "stop_sequences[%zu]", j);
                BAD(err, param, "%s: must be a string, got %s", param, gyre_json_type_name(s));
                goto fail;
            }
        }
    }
    if ((v = get(req, "tools")) != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsArray(v)) {
            BAD(err, "tools", "tools: must be an array, got %s", gyre_json_type_name(v));
            goto fail;
        }
        size_t j = 0;
        for (const cJSON *t = v->child; t != NULL; t = t->next, j++) {
            snprintf(param, sizeof(param), "tools[%zu].name", j);
            if (get_str(t, "name") == NULL) {
                MISSING(err, param);
                goto fail;
            }
        }
    }
    if ((v = get(req, "tool_choice")) != NULL && !cJSON_IsNull(v) && get_str(v, "type") == NULL) {
        BAD(err, "tool_choice.type", "tool_choice.type: field required");
        goto fail;
    }
    return req;
fail:
    cJSON_Delete(req);
    return NULL;
}

/* Text blocks (or a string) → one string, joined with `sep`. */
static char *joined_text(const cJSON *content, const char *sep)
{
    if (cJSON_IsString(content))
        return gyre_strdup(content->valuestring);
    gyre_buf_t b;
    gyre_buf_init(&b, ANTHROPIC_JOIN_BOUND);
    int first = 1;
    for (const cJSON *t = cJSON_IsArray(content) ? content->child : NULL; t != NULL; t = t->next) {
        const char *text = get_str(t, "text");
        if (!str_is(get_str(t, "type"), "text") || text == NULL)
            continue;
        if (!first)
            gyre_buf_appends(&b, sep);
        gyre_buf_appends(&b, text);
        first = 0;
    }
    char *s = gyre_buf_failed(&b) == 0 ? gyre_strdup(b.base != NULL ? b.base : "") : NULL;
    gyre_buf_dispose(&b);
    return s; /* NULL: the join did not fit */
}

/* An image block → an image_url part. */
static cJSON *image_part(const cJSON *block, const char *where, gyre_api_error_t *err)
{
    const cJSON *src = get(block, "source");
    const char *type = get_str(src, "type");
    gyre_buf_t url;
    gyre_buf_init(&url, ANTHROPIC_JOIN_BOUND);
    if (str_is(type, "base64") && get_str(src, "media_type") != NULL && get_str(src, "data") != NULL) {
        gyre_buf_appendf(&url, "data:%s;base64,%s", get_str(src, "media_type"), get_str(src, "data"));
    } else if (str_is(type, "url") && get_str(src, "url") != NULL) {
        gyre_buf_appends(&url, get_str(src, "url"));
    } else {
        char param[128];
        snprintf(param, sizeof(param), "%s.source", where);
        BAD(err, param, "%s: must be a base64 or url image source", param);
        gyre_buf_dispose(&url);
        return NULL;
    }
    if (gyre_buf_failed(&url) != 0) {
        JOIN_TOO_LARGE(err);
        gyre_buf_dispose(&url);
        return NULL;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "image_url");
    cJSON *iu = cJSON_AddObjectToObject(p, "image_url");
    cJSON_AddStringToObject(iu, "url", url.base);
    gyre_buf_dispose(&url);
    return p;
}

/* A user message: tool results first (as `tool` messages, which OpenAI wants
 * straight after the assistant's tool calls), then what the user wrote. */
static int user_to_openai(const cJSON *content, size_t i, cJSON *msgs, gyre_api_error_t *err)
{
    char where[96];
    if (cJSON_IsString(content)) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", content->valuestring);
        cJSON_AddItemToArray(msgs, m);
        return 0;
    }
    cJSON *parts = cJSON_CreateArray();
    size_t j = 0, ntext = 0, nother = 0;
    for (const cJSON *b = content->child; b != NULL; b = b->next, j++) {
        const char *type = get_str(b, "type");
        snprintf(where, sizeof(where), "messages[%zu].content[%zu]", i, j);
        if (str_is(type, "tool_result")) {
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "tool");
            cJSON_AddStringToObject(m, "tool_call_id", get_str(b, "tool_use_id"));
            char *text = joined_text(get(b, "content"), "\n");
            if (text == NULL) {
                JOIN_TOO_LARGE(err);
                cJSON_Delete(m);
                cJSON_Delete(parts);
                return -1;
            }
            cJSON_AddStringToObject(m, "content", text);
            free(text);
            cJSON_AddItemToArray(msgs, m);
        } else if (str_is(type, "text")) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddStringToObject(p, "type", "text");
            cJSON_AddStringToObject(p, "text", get_str(b, "text"));
            cJSON_AddItemToArray(parts, p);
            ntext++;
        } else if (str_is(type, "image")) {
            cJSON *p = image_part(b, where, err);
            if (p == NULL)
                goto fail;
            cJSON_AddItemToArray(parts, p);
            nother++;
        } else {
            char param[128];
            snprintf(param, sizeof(param), "%s.type", where);
            BAD(err, param, "%s: \"%s\" blocks cannot be sent to this provider", param, type != NULL ? type : "");
            goto fail;
        }
    }
    if (parts->child == NULL) {
        cJSON_Delete(parts);
        return 0;
    }
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    if (ntext == 1 && nother == 0) {
        cJSON_AddStringToObject(m, "content", get_str(parts->child, "text"));
        cJSON_Delete(parts);
    } else {
        cJSON_AddItemToObject(m, "content", parts);
    }
    cJSON_AddItemToArray(msgs, m);
    return 0;
fail:
    cJSON_Delete(parts);
    return -1;
}

/* An assistant message: text blocks joined, tool_use blocks → tool_calls. */
static int assistant_to_openai(const cJSON *content, size_t i, cJSON *msgs, gyre_api_error_t *err)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "assistant");
    if (cJSON_IsString(content)) {
        cJSON_AddStringToObject(m, "content", content->valuestring);
        cJSON_AddItemToArray(msgs, m);
        return 0;
    }
    gyre_buf_t text;
    gyre_buf_init(&text, ANTHROPIC_JOIN_BOUND);
    int has_text = 0;
    cJSON *calls = cJSON_CreateArray();
    size_t j = 0;
    for (const cJSON *b = content->child; b != NULL; b = b->next, j++) {
        const char *type = get_str(b, "type");
        if (str_is(type, "text")) {
            gyre_buf_appends(&text, get_str(b, "text"));
            has_text = 1;
        } else if (str_is(type, "tool_use")) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "id", get_str(b, "id"));
            cJSON_AddStringToObject(c, "type", "function");
            cJSON *fn = cJSON_AddObjectToObject(c, "function");
            cJSON_AddStringToObject(fn, "name", get_str(b, "name"));
            char *args = cJSON_PrintUnformatted(get(b, "input"));
            cJSON_AddStringToObject(fn, "arguments", args != NULL ? args : "{}");
            cJSON_free(args);
            cJSON_AddItemToArray(calls, c);
        } else if (str_is(type, "thinking") || str_is(type, "redacted_thinking")) {
            continue; /* the model's own scratch work: OpenAI's shape has no place for it */
        } else {
            char param[128];
            snprintf(param, sizeof(param), "messages[%zu].content[%zu].type", i, j);
            BAD(err, param, "%s: \"%s\" blocks cannot be sent to this provider", param, type != NULL ? type : "");
            gyre_buf_dispose(&text);
            cJSON_Delete(calls);
            cJSON_Delete(m);
            return -1;
        }
    }
    if (gyre_buf_failed(&text) != 0) {
        JOIN_TOO_LARGE(err);
        gyre_buf_dispose(&text);
        cJSON_Delete(calls);
        cJSON_Delete(m);
        return -1;
    }
    if (has_text)
        cJSON_AddStringToObject(m, "content", text.base != NULL ? text.base : "");
    else
        cJSON_AddNullToObject(m, "content");
    if (calls->child != NULL)
        cJSON_AddItemToObject(m, "tool_calls", calls);
    else
        cJSON_Delete(calls);
    gyre_buf_dispose(&text);
    cJSON_AddItemToArray(msgs, m);
    return 0;
}

static int tools_to_openai(const cJSON *req, cJSON *out, gyre_api_error_t *err)
{
    const cJSON *tools = get(req, "tools");
    if (cJSON_IsArray(tools)) {
        cJSON *list = cJSON_AddArrayToObject(out, "tools");
        size_t j = 0;
        for (const cJSON *t = tools->child; t != NULL; t = t->next, j++) {
            const char *type = get_str(t, "type");
            if (type != NULL && strcmp(type, "custom") != 0) {
                /* web_search_20250305 and the like run inside Anthropic's API. */
                char param[64];
                snprintf(param, sizeof(param), "tools[%zu].type", j);
                BAD(err, param, "%s: the tool type \"%s\" is Anthropic's own and cannot be sent to this provider",
                    param, type);
                return -1;
            }
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "type", "function");
            cJSON *fn = cJSON_AddObjectToObject(f, "function");
            cJSON_AddStringToObject(fn, "name", get_str(t, "name") != NULL ? get_str(t, "name") : "");
            if (get_str(t, "description") != NULL)
                cJSON_AddStringToObject(fn, "description", get_str(t, "description"));
            if (cJSON_IsObject(get(t, "input_schema")))
                add_copy(fn, "parameters", get(t, "input_schema"));
            cJSON_AddItemToArray(list, f);
        }
    }
    const cJSON *tc = get(req, "tool_choice");
    const char *type = get_str(tc, "type");
    if (type != NULL) {
        if (strcmp(type, "auto") == 0) {
            cJSON_AddStringToObject(out, "tool_choice", "auto");
        } else if (strcmp(type, "any") == 0) {
            cJSON_AddStringToObject(out, "tool_choice", "required");
        } else if (strcmp(type, "none") == 0) {
            cJSON_AddStringToObject(out, "tool_choice", "none");
        } else if (strcmp(type, "tool") == 0 && get_str(tc, "name") != NULL) {
            cJSON *c = cJSON_AddObjectToObject(out, "tool_choice");
            cJSON_AddStringToObject(c, "type", "function");
            cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "function"), "name", get_str(tc, "name"));
        } else {
            BAD(err, "tool_choice.type",
                "tool_choice.type: must be \"auto\", \"any\", \"tool\" (with a name) or "
                "\"none\"");
            return -1;
        }
        if (cJSON_IsTrue(get(tc, "disable_parallel_tool_use")))
            cJSON_AddFalseToObject(out, "parallel_tool_calls");
    }
    return 0;
}

cJSON *gyre_anthropic_request_to_openai(const cJSON *req, gyre_api_error_t *err)
{
    const char *model = get_str(req, "model");
    const cJSON *messages = get(req, "messages");
    if (model == NULL || !cJSON_IsArray(messages)) {
        BAD(err, model == NULL ? "model" : "messages", "%s: field required", model == NULL ? "model" : "messages");
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model", model);
    cJSON *msgs = cJSON_AddArrayToObject(out, "messages");
    const cJSON *system = get(req, "system");
    if (cJSON_IsString(system) || cJSON_IsArray(system)) {
        char *text = joined_text(system, "\n");
        if (text == NULL) {
            JOIN_TOO_LARGE(err);
            goto fail;
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", text);
        cJSON_AddItemToArray(msgs, m);
        free(text);
    }
    size_t i = 0;
    for (const cJSON *m = messages->child; m != NULL; m = m->next, i++) {
        const char *role = get_str(m, "role");
        const cJSON *content = get(m, "content");
        char param[64];
        if (!cJSON_IsString(content) && !cJSON_IsArray(content)) {
            snprintf(param, sizeof(param), "messages[%zu].content", i);
            BAD(err, param, "%s: must be a string or an array of content blocks", param);
            goto fail;
        }
        int r;
        if (str_is(role, "user")) {
            r = user_to_openai(content, i, msgs, err);
        } else if (str_is(role, "assistant")) {
            r = assistant_to_openai(content, i, msgs, err);
        } else {
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            BAD(err, param, "%s: must be \"user\" or \"assistant\"", param);
            goto fail;
        }
        if (r != 0)
            goto fail;
    }
    if (tools_to_openai(req, out, err) != 0)
        goto fail;
    const cJSON *v;
    if (cJSON_IsArray(v = get(req, "stop_sequences")) && v->child != NULL)
        add_copy(out, "stop", v);
    if (cJSON_IsNumber(v = get(req, "max_tokens")))
        cJSON_AddNumberToObject(out, "max_tokens", v->valuedouble);
    if (cJSON_IsNumber(v = get(req, "temperature")))
        cJSON_AddNumberToObject(out, "temperature", v->valuedouble);
    if (cJSON_IsNumber(v = get(req, "top_p")))
        cJSON_AddNumberToObject(out, "top_p", v->valuedouble);
    /* top_k has no OpenAI equivalent, and OpenAI refuses parameters it does not know. */
    const char *user = get_str(get(req, "metadata"), "user_id");
    if (user != NULL)
        cJSON_AddStringToObject(out, "user", user);
    if (cJSON_IsTrue(get(req, "stream"))) {
        cJSON_AddTrueToObject(out, "stream");
        /* The usage chunk is where message_delta's output_tokens come from. */
        cJSON_AddTrueToObject(cJSON_AddObjectToObject(out, "stream_options"), "include_usage");
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/* "chatcmpl-abc" → "msg_abc". */
static void message_id(gyre_buf_t *b, const char *completion_id)
{
    const char *id = completion_id != NULL ? completion_id : "";
    if (strncmp(id, "chatcmpl-", 9) == 0)
        id += 9;
    gyre_buf_appends(b, "msg_");
    gyre_buf_appends(b, id);
}

int gyre_anthropic_response_from_openai(const char *openai, size_t len, gyre_buf_t *out, gyre_api_error_t *err)
{
    cJSON *c = parse_whole(openai, len);
    const cJSON *choices = get(c, "choices");
    const cJSON *choice = cJSON_IsArray(choices) ? choices->child : NULL;
    const cJSON *msg = get(choice, "message");
    if (!cJSON_IsObject(msg)) {
        gyre_api_error_set(err, 502, "upstream_error", "bad_upstream_response", NULL,
                           "the provider's answer is not a chat.completion");
        cJSON_Delete(c);
        return -1;
    }
    cJSON *m = cJSON_CreateObject();
    gyre_buf_t id;
    gyre_buf_init(&id, ANTHROPIC_JOIN_BOUND);
    message_id(&id, get_str(c, "id"));
    cJSON_AddStringToObject(m, "id", gyre_buf_failed(&id) == 0 ? id.base : "msg_"); /* an id cannot pass 1 GiB */
    gyre_buf_dispose(&id);
    cJSON_AddStringToObject(m, "type", "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "model", get_str(c, "model") != NULL ? get_str(c, "model") : "");
    cJSON *content = cJSON_AddArrayToObject(m, "content");
    const char *text = get_str(msg, "content");
    if (text != NULL && text[0] != '\0')
        cJSON_AddItemToArray(content, text_block(text, NULL));
    const cJSON *calls = get(msg, "tool_calls");
    int r = 0;
    for (const cJSON *tc = cJSON_IsArray(calls) ? calls->child : NULL; tc != NULL; tc = tc->next) {
        const cJSON *fn = get(tc, "function");
        const char *args = get_str(fn, "arguments");
        cJSON *input = args == NULL || is_blank(args) ? cJSON_CreateObject() : parse_whole(args, strlen(args));
        if (!cJSON_IsObject(input)) {
            cJSON_Delete(input);
            gyre_api_error_set(err, 502, "upstream_error", "bad_upstream_response", NULL,
                               "the provider's tool call arguments are not a JSON object");
            r = -1;
            goto out;
        }
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "tool_use");
        cJSON_AddStringToObject(b, "id", get_str(tc, "id") != NULL ? get_str(tc, "id") : "");
        cJSON_AddStringToObject(b, "name", get_str(fn, "name") != NULL ? get_str(fn, "name") : "");
        cJSON_AddItemToObject(b, "input", input);
        cJSON_AddItemToArray(content, b);
    }
    cJSON_AddStringToObject(m, "stop_reason", stop_reason_of(get_str(choice, "finish_reason")));
    cJSON_AddNullToObject(m, "stop_sequence");
    const cJSON *usage = get(c, "usage");
    long long prompt = gyre_json_count(get(usage, "prompt_tokens"));
    long long cached = gyre_json_count(get(get(usage, "prompt_tokens_details"), "cached_tokens"));
    /* Present when the answer came from gyre's own Anthropic translation. */
    long long creation = gyre_json_count(get(usage, "cache_creation_input_tokens"));
    long long input = prompt - cached - creation;
    cJSON *u = cJSON_AddObjectToObject(m, "usage");
    cJSON_AddNumberToObject(u, "input_tokens", (double)(input > 0 ? input : 0));
    cJSON_AddNumberToObject(u, "output_tokens", (double)gyre_json_count(get(usage, "completion_tokens")));
    cJSON_AddNumberToObject(u, "cache_read_input_tokens", (double)cached);
    cJSON_AddNumberToObject(u, "cache_creation_input_tokens", (double)creation);
    if (append_json(out, m) != 0) {
        gyre_api_error_set(err, 502, "upstream_error", "bad_upstream_response", NULL,
                           "the translated answer is larger than gyre's limit");
        r = -1;
    }
out:
    cJSON_Delete(m);
    cJSON_Delete(c);
    return r;
}

/* --- errors in Anthropic's shape ------------------------------------------ */

int gyre_anthropic_error_to_json(const gyre_api_error_t *err, gyre_buf_t *out)
{
    const char *type = error_type_for_status(err->status);
    int r = 0;
    r |= gyre_buf_appends(out, "{\"type\":\"error\",\"error\":{\"type\":");
    r |= gyre_buf_append_json_string(out, type, strlen(type));
    r |= gyre_buf_appends(out, ",\"message\":");
    r |= gyre_buf_append_json_string(out, err->message, strnlen(err->message, sizeof(err->message)));
    r |= gyre_buf_appends(out, "}}");
    return r != 0 ? -1 : 0;
}

int gyre_anthropic_error_event(const gyre_api_error_t *err, gyre_buf_t *out)
{
    int r = 0;
    r |= gyre_buf_appends(out, "event: error\ndata: ");
    r |= gyre_anthropic_error_to_json(err, out);
    r |= gyre_buf_appends(out, "\n\n");
    return r != 0 ? -1 : 0;
}

/* ========================================================================== */
/* Client dialect: events → Anthropic events                                  */
/* ========================================================================== */

/*
 * The encoder of gyre_client_anthropic: it lives in the bytes its caller
 * gives it (encoder_size) and writes each Anthropic event straight into the
 * output, "event: NAME\ndata: JSON\n\n"; one encode call appends whole
 * events or, when the output is full, nothing.
 */
typedef struct anthropic_encoder {
    const char *model; /* the model to name when the answer named none (the call's; it outlives the encoder) */
    const char *id;    /* the id to use when the answer has none */
    int started;       /* message_start is out */
    block_kind_t block;
    long long nblocks;       /* content blocks started */
    long long tool_index;    /* OpenAI's index of the open tool block */
    const char *stop_reason; /* once the finish_reason came */
    int has_usage;
    long long input, output, cached;
    int delta_sent; /* message_delta is out */
    int complete;   /* message_stop is out */
    int failed;     /* an error event is out, or the output was full */
} anthropic_encoder_t;

/* A decimal integer, without printf: the encoder writes one or two per event. */
static int append_ll(gyre_buf_t *out, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        tmp[sizeof(tmp) - ++n] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        tmp[sizeof(tmp) - ++n] = '-';
    return gyre_buf_append(out, tmp + sizeof(tmp) - n, n);
}

static int frame_open(gyre_buf_t *out, const char *name)
{
    int r = gyre_buf_appends(out, "event: ");
    r |= gyre_buf_appends(out, name);
    r |= gyre_buf_appends(out, "\ndata: ");
    return r;
}

/* "chatcmpl-abc" → "msg_abc", as a JSON string. */
static int append_message_id(gyre_buf_t *out, const char *id, size_t len)
{
    if (len >= 9 && memcmp(id, "chatcmpl-", 9) == 0)
        id += 9, len -= 9;
    size_t at = out->len;
    int r = gyre_buf_append_json_string(out, id, len);
    r |= gyre_buf_append(out, "msg_", 4); /* room for the prefix... */
    if (r != 0)
        return -1;
    /* ...moved in behind the opening quote. */
    memmove(out->base + at + 5, out->base + at + 1, out->len - at - 5);
    memcpy(out->base + at + 1, "msg_", 4);
    return 0;
}

static int encoder_start(anthropic_encoder_t *e, gyre_str_t id, gyre_str_t model, gyre_buf_t *out)
{
    if (e->started)
        return 0;
    e->started = 1;
    if (model.len == 0 && e->model != NULL)
        model = str_of(e->model);
    if (id.len == 0 && e->id != NULL)
        id = str_of(e->id);
    int r = frame_open(out, "message_start");
    r |= gyre_buf_appends(out, "{\"type\":\"message_start\",\"message\":{\"id\":");
    r |= append_message_id(out, id.p, id.len);
    r |= gyre_buf_appends(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    r |= gyre_buf_append_json_string(out, model.p, model.len);
    r |= gyre_buf_appendf(out,
                          ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                          "\"usage\":{\"input_tokens\":%lld,\"output_tokens\":0}}}\n\n",
                          e->has_usage ? e->input - e->cached : 0);
    return r;
}

static int encoder_close_block(anthropic_encoder_t *e, gyre_buf_t *out)
{
    if (e->block == BLOCK_NONE)
        return 0;
    e->block = BLOCK_NONE;
    int r = frame_open(out, "content_block_stop");
    r |= gyre_buf_appendf(out, "{\"type\":\"content_block_stop\",\"index\":%lld}\n\n", e->nblocks - 1);
    return r;
}

static int encoder_text(anthropic_encoder_t *e, gyre_str_t text, gyre_buf_t *out)
{
    int r = 0;
    if (e->block != BLOCK_TEXT) {
        r |= encoder_close_block(e, out);
        r |= frame_open(out, "content_block_start");
        r |= gyre_buf_appendf(out,
                              "{\"type\":\"content_block_start\",\"index\":%lld,"
                              "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                              e->nblocks++);
        e->block = BLOCK_TEXT;
    }
    /* The event a stream is mostly made of, in as few appends as it takes. */
    static const char head[] = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":";
    static const char mid[] = ",\"delta\":{\"type\":\"text_delta\",\"text\":";
    r |= gyre_buf_reserve(out, sizeof(head) + sizeof(mid) + 24 + text.len + 8);
    r |= gyre_buf_append(out, head, sizeof(head) - 1);
    r |= append_ll(out, e->nblocks - 1);
    r |= gyre_buf_append(out, mid, sizeof(mid) - 1);
    r |= gyre_buf_append_json_string(out, text.p, text.len);
    r |= gyre_buf_append(out, "}}\n\n", 4);
    return r;
}

static int encoder_error(anthropic_encoder_t *e, const gyre_api_error_t *err, gyre_buf_t *out)
{
    e->failed = 1;
    return gyre_anthropic_error_event(err, out);
}

static int encoder_tool(anthropic_encoder_t *e, const gyre_event_t *ev, gyre_buf_t *out)
{
    int r = 0;
    if (e->block != BLOCK_TOOL || ev->index != e->tool_index) {
        if (ev->type == GYRE_EVENT_TOOL_ARGS) {
            /* Arguments for a call whose block is closed: Anthropic's blocks
             * cannot interleave, so this cannot be said faithfully. */
            gyre_api_error_t err;
            gyre_api_error_set(&err, 502, "upstream_error", NULL, NULL, "%s",
                               "the provider interleaved the arguments of parallel tool calls");
            return encoder_error(e, &err, out);
        }
        r |= encoder_close_block(e, out);
        r |= frame_open(out, "content_block_start");
        r |= gyre_buf_appendf(out,
                              "{\"type\":\"content_block_start\",\"index\":%lld,\"content_block\":"
                              "{\"type\":\"tool_use\",\"id\":",
                              e->nblocks++);
        r |= gyre_buf_append_json_string(out, ev->id.p, ev->id.len);
        r |= gyre_buf_appends(out, ",\"name\":");
        r |= gyre_buf_append_json_string(out, ev->name.p, ev->name.len);
        r |= gyre_buf_appends(out, ",\"input\":{}}}\n\n");
        e->block = BLOCK_TOOL;
        e->tool_index = ev->index;
    }
    if (ev->text.len != 0) {
        r |= frame_open(out, "content_block_delta");
        r |= gyre_buf_appends(out, "{\"type\":\"content_block_delta\",\"index\":");
        r |= append_ll(out, e->nblocks - 1);
        r |= gyre_buf_appends(out, ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":");
        r |= gyre_buf_append_json_string(out, ev->text.p, ev->text.len);
        r |= gyre_buf_appends(out, "}}\n\n");
    }
    return r;
}

/* message_delta carries the stop reason and the usage: it goes out once both are known, or at the end. */
static int encoder_message_delta(anthropic_encoder_t *e, gyre_buf_t *out)
{
    if (e->delta_sent)
        return 0;
    e->delta_sent = 1;
    const char *reason = e->stop_reason != NULL ? e->stop_reason : "end_turn";
    int r = frame_open(out, "message_delta");
    r |= gyre_buf_appends(out, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
    r |= gyre_buf_append_json_string(out, reason, strlen(reason));
    r |= gyre_buf_appends(out, ",\"stop_sequence\":null},\"usage\":{");
    if (e->has_usage)
        r |= gyre_buf_appendf(out,
                              "\"input_tokens\":%lld,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":%lld,",
                              e->input - e->cached > 0 ? e->input - e->cached : 0, e->cached);
    r |= gyre_buf_appendf(out, "\"output_tokens\":%lld}}\n\n", e->output);
    return r;
}

static int encoder_done(anthropic_encoder_t *e, gyre_buf_t *out)
{
    static const gyre_str_t none = {"", 0};
    int r = encoder_start(e, none, none, out);
    r |= encoder_close_block(e, out);
    r |= encoder_message_delta(e, out);
    r |= frame_open(out, "message_stop");
    r |= gyre_buf_appends(out, "{\"type\":\"message_stop\"}\n\n");
    if (r == 0)
        e->complete = 1;
    return r;
}

static void anthropic_encoder_init(void *enc, const gyre_client_call_t *call)
{
    anthropic_encoder_t *e = enc;
    memset(e, 0, sizeof(*e));
    e->model = call->model;
    e->id = call->id;
    e->tool_index = -1;
}

static int anthropic_encode(void *enc, const gyre_event_t *ev, gyre_buf_t *out)
{
    anthropic_encoder_t *e = enc;
    static const gyre_str_t none = {"", 0};
    if (e->failed || e->complete || ev->choice != 0)
        return 0; /* the Messages API has one answer per request */
    size_t start = out->len;
    int r = 0;
    switch (ev->type) {
    case GYRE_EVENT_START: r = encoder_start(e, ev->id, ev->model, out); break;
    case GYRE_EVENT_TEXT:
        r |= encoder_start(e, none, none, out);
        r |= encoder_text(e, ev->text, out);
        break;
    case GYRE_EVENT_TOOL_START:
    case GYRE_EVENT_TOOL_ARGS:
        r |= encoder_start(e, none, none, out);
        r |= encoder_tool(e, ev, out);
        break;
    case GYRE_EVENT_FINISH:
        r |= encoder_start(e, none, none, out);
        if (e->stop_reason == NULL) {
            e->stop_reason = stop_reason_of(ev->finish_reason);
            r |= encoder_close_block(e, out);
        }
        if (e->has_usage)
            r |= encoder_message_delta(e, out);
        break;
    case GYRE_EVENT_USAGE:
        e->has_usage = 1;
        e->input = ev->usage.input_tokens;
        e->output = ev->usage.output_tokens;
        e->cached = ev->usage.cached_tokens < e->input ? ev->usage.cached_tokens : e->input;
        r |= encoder_start(e, none, none, out);
        if (e->stop_reason != NULL)
            r |= encoder_message_delta(e, out);
        break;
    case GYRE_EVENT_ERROR: r = encoder_error(e, ev->error, out); break;
    case GYRE_EVENT_DONE: r = encoder_done(e, out); break;
    case GYRE_EVENT_CHUNK: break;
    }
    if (r != 0) {
        /* The client's buffer is full: nothing more can be said. */
        out->len = start;
        if (out->base != NULL)
            out->base[start] = '\0';
        e->failed = 1;
        return -1;
    }
    return 0;
}

static int anthropic_encoder_complete(const void *enc)
{
    return ((const anthropic_encoder_t *)enc)->complete;
}

/* --- the table entry -------------------------------------------------------- */

static int anthropic_client_parse(const char *body, size_t len, gyre_client_request_t *out, gyre_api_error_t *err)
{
    memset(out, 0, sizeof(*out));
    cJSON *json = gyre_anthropic_parse_request(body, len, err);
    if (json == NULL)
        return -1;
    cJSON *pivot = gyre_anthropic_request_to_openai(json, err);
    if (pivot == NULL) {
        cJSON_Delete(json);
        return -1;
    }
    out->pivot = pivot;
    out->model = get_str(pivot, "model");
    out->stream = cJSON_IsTrue(get(json, "stream"));
    out->include_usage = 1; /* Anthropic's events always carry it */
    if (gyre_json_find_member(body, len, "model", &out->model_start, &out->model_end) != 0)
        out->model_start = out->model_end = 0;
    cJSON_Delete(json);
    return 0;
}

static int anthropic_client_response(const gyre_client_call_t *call, const char *completion, size_t len,
                                     gyre_buf_t *out, gyre_api_error_t *err)
{
    (void)call;
    return gyre_anthropic_response_from_openai(completion, len, out, err);
}

static int anthropic_stream_ends(const char *event, size_t event_len, const char *data, size_t data_len)
{
    (void)data, (void)data_len;
    return (event_len == 12 && memcmp(event, "message_stop", 12) == 0) ||
           (event_len == 5 && memcmp(event, "error", 5) == 0);
}

const gyre_client_dialect_t gyre_client_anthropic = {
    .name = "anthropic",
    .path = "/v1/messages",
    .native = GYRE_KIND_BIT(GYRE_PROVIDER_ANTHROPIC),
    .served = GYRE_KINDS_ALL,
    .parse = anthropic_client_parse,
    .response = anthropic_client_response,
    .encoder_size = sizeof(anthropic_encoder_t),
    .encoder_init = anthropic_encoder_init,
    .encode = anthropic_encode,
    .encoder_dispose = NULL,
    .encoder_complete = anthropic_encoder_complete,
    .error_body = gyre_anthropic_error_to_json,
    .error_event = gyre_anthropic_error_event,
    .stream_ends = anthropic_stream_ends,
    .request_id_header = "request-id", /* Anthropic's answers carry their id so, which its SDK reports */
};
