/*
 * The OpenAI Responses API as a client dialect (see responses.h).
 *
 * Requests: the input items (a string, messages with input_text /
 * output_text / input_image parts, function_call and function_call_output
 * items), instructions, function tools and tool_choice, max_output_tokens,
 * temperature, top_p, text.format and stream become an OpenAI chat request,
 * which every provider dialect reads.  What the chat shape cannot say (hosted
 * tools, item references, stored prompts, background mode) is refused with
 * gyre_responses_native_only, so that only a provider speaking the API
 * natively gets it.
 *
 * Answers: a chat.completion becomes a Response object; structured stream
 * events (dialect/event.h) become the documented event sequence:
 * response.created, response.in_progress, then per output item
 * response.output_item.added, (for a message) response.content_part.added,
 * response.output_text.delta..., response.output_text.done,
 * response.content_part.done, (for a function call)
 * response.function_call_arguments.delta..., .done, then
 * response.output_item.done; finally response.completed (response.incomplete
 * when the answer was cut at max_output_tokens), every event with its
 * sequence_number from 0.  The Response objects both paths write are one
 * writer's (write_response), so a stream's last snapshot and a whole answer
 * are the same object.
 *
 * Requests are read with cJSON (bounded by the body limit already); answers
 * and events are written by hand into buffers with a maximum, each event into
 * a scratch buffer first and appended whole, so a client sees only whole
 * events even when a bound is met.
 */
#include "dialect/responses.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

const char gyre_responses_native_only[] = "unsupported_value";

/* One event's bound: the text or arguments of one item, repeated, plus the request's echo; far above what a
 * provider sends in one answer (the answer's own bound applies first). */
#define EVENT_MAX (GYRE_RESPONSES_ANSWER_MAX * 2 + ((size_t)4 << 20))
/* The request fields a Response echoes: tools and instructions as the client sent them. */
#define ECHO_MAX ((size_t)64 << 20)

#define BAD(err, param, ...)                                                                                           \
    gyre_api_error_set((err), 400, "invalid_request_error", "invalid_value", (param), __VA_ARGS__)
#define NATIVE_ONLY(err, param, ...)                                                                                   \
    gyre_api_error_set((err), 400, "invalid_request_error", gyre_responses_native_only, (param), __VA_ARGS__)

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *get_str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int str_is(const char *s, const char *lit)
{
    return s != NULL && strcmp(s, lit) == 0;
}

/* ---- requests -------------------------------------------------------------------------------------------- */

/* A text part of a message's content, in the chat shape. */
static cJSON *text_part(const char *text)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "text");
    cJSON_AddStringToObject(p, "text", text);
    return p;
}

/*
 * A message item's content: a string stays a string; an array of parts
 * becomes chat parts (input_text and output_text are text, input_image an
 * image_url).  An assistant's content is its texts joined, since the chat
 * shape gives an assistant message only text.  Returns NULL with `err`.
 */
static cJSON *message_content(const cJSON *content, int assistant, const char *where, gyre_api_error_t *err)
{
    if (cJSON_IsString(content))
        return cJSON_CreateString(content->valuestring);
    if (!cJSON_IsArray(content)) {
        BAD(err, where, "'%s' must be a string or an array of content parts, got %s", where,
            gyre_json_type_name(content));
        return NULL;
    }
    cJSON *parts = cJSON_CreateArray();
    gyre_buf_t joined;
    gyre_buf_init(&joined, GYRE_RESPONSES_ANSWER_MAX);
    const cJSON *p;
    int i = 0;
    char param[128];
    cJSON_ArrayForEach(p, content)
    {
        snprintf(param, sizeof(param), "%s[%d].type", where, i);
        const char *type = get_str(p, "type");
        const char *text = get_str(p, "text");
        if (str_is(type, "input_text") || str_is(type, "output_text") || str_is(type, "refusal")) {
            if (str_is(type, "refusal"))
                text = get_str(p, "refusal");
            if (text == NULL) {
                snprintf(param, sizeof(param), "%s[%d].%s", where, i, str_is(type, "refusal") ? "refusal" : "text");
                BAD(err, param, "'%s' must be a string", param);
                goto fail;
            }
            if (assistant) {
                if (gyre_buf_append(&joined, text, strlen(text)) != 0)
                    goto too_long;
            } else {
                cJSON_AddItemToArray(parts, text_part(text));
            }
        } else if (str_is(type, "input_image") && !assistant) {
            const char *url = get_str(p, "image_url");
            if (url == NULL) {
                snprintf(param, sizeof(param), "%s[%d].image_url", where, i);
                NATIVE_ONLY(err, param, "'%s' must be a URL (an image by file_id needs an openai provider)", param);
                goto fail;
            }
            cJSON *img = cJSON_CreateObject();
            cJSON_AddStringToObject(img, "type", "image_url");
            cJSON *iu = cJSON_AddObjectToObject(img, "image_url");
            cJSON_AddStringToObject(iu, "url", url);
            const char *detail = get_str(p, "detail");
            if (detail != NULL)
                cJSON_AddStringToObject(iu, "detail", detail);
            cJSON_AddItemToArray(parts, img);
        } else if (type != NULL) {
            NATIVE_ONLY(err, param, "'%s' is '%.64s', which only an openai provider serves", param, type);
            goto fail;
        } else {
            BAD(err, param, "'%s' must be a string", param);
            goto fail;
        }
        i++;
    }
    if (assistant) {
        cJSON_Delete(parts);
        cJSON *s = cJSON_CreateString(joined.base != NULL ? joined.base : "");
        gyre_buf_dispose(&joined);
        return s;
    }
    gyre_buf_dispose(&joined);
    return parts;
too_long:
    BAD(err, where, "'%s' is too long", where);
fail:
    cJSON_Delete(parts);
    gyre_buf_dispose(&joined);
    return NULL;
}

/* A function_call_output's output: a string, or the texts of its parts joined. */
static cJSON *call_output(const cJSON *output, const char *where, gyre_api_error_t *err)
{
    if (cJSON_IsString(output))
        return cJSON_CreateString(output->valuestring);
    cJSON *parts = cJSON_IsArray(output) ? message_content(output, 1, where, err) : NULL;
    if (parts == NULL && !cJSON_IsArray(output))
        BAD(err, where, "'%s' must be a string or an array of content parts, got %s", where,
            gyre_json_type_name(output));
    return parts;
}

/* The last message of `messages` when it is the assistant's, so that a function call joins it. */
static cJSON *last_assistant(cJSON *messages)
{
    int n = cJSON_GetArraySize(messages);
    cJSON *m = n > 0 ? cJSON_GetArrayItem(messages, n - 1) : NULL;
    return m != NULL && str_is(get_str(m, "role"), "assistant") ? m : NULL;
}

/* One input item appended to `messages`.  Returns 0, or -1 with `err`. */
static int add_item(cJSON *messages, const cJSON *item, int i, gyre_api_error_t *err)
{
    char param[96];
    if (!cJSON_IsObject(item)) {
        snprintf(param, sizeof(param), "input[%d]", i);
        BAD(err, param, "'%s' must be an object, got %s", param, gyre_json_type_name(item));
        return -1;
    }
    const char *type = get_str(item, "type");
    if (get(item, "type") != NULL && type == NULL) {
        snprintf(param, sizeof(param), "input[%d].type", i);
        BAD(err, param, "'%s' must be a string", param);
        return -1;
    }
    if (type == NULL || str_is(type, "message")) {
        const char *role = get_str(item, "role");
        snprintf(param, sizeof(param), "input[%d].role", i);
        if (!str_is(role, "user") && !str_is(role, "assistant") && !str_is(role, "system") &&
            !str_is(role, "developer")) {
            BAD(err, param, "'%s' must be 'user', 'assistant', 'system' or 'developer'", param);
            return -1;
        }
        int assistant = str_is(role, "assistant");
        snprintf(param, sizeof(param), "input[%d].content", i);
        cJSON *content = message_content(get(item, "content"), assistant, param, err);
        if (content == NULL)
            return -1;
        cJSON *m = cJSON_CreateObject();
        /* The other providers know no developer role: it is the system prompt they all take. */
        cJSON_AddStringToObject(m, "role", str_is(role, "developer") ? "system" : role);
        cJSON_AddItemToObject(m, "content", content);
        cJSON_AddItemToArray(messages, m);
        return 0;
    }
    if (str_is(type, "function_call")) {
        const char *fields[] = {"call_id", "name", "arguments"};
        for (size_t f = 0; f < 3; f++)
            if (get_str(item, fields[f]) == NULL) {
                snprintf(param, sizeof(param), "input[%d].%s", i, fields[f]);
                BAD(err, param, "'%s' must be a string", param);
                return -1;
            }
        cJSON *m = last_assistant(messages);
        if (m == NULL) {
            m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "assistant");
            cJSON_AddNullToObject(m, "content");
            cJSON_AddItemToArray(messages, m);
        }
        cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (calls == NULL)
            calls = cJSON_AddArrayToObject(m, "tool_calls");
        cJSON *tc = cJSON_CreateObject();
        cJSON_AddStringToObject(tc, "id", get_str(item, "call_id"));
        cJSON_AddStringToObject(tc, "type", "function");
        cJSON *fn = cJSON_AddObjectToObject(tc, "function");
        cJSON_AddStringToObject(fn, "name", get_str(item, "name"));
        cJSON_AddStringToObject(fn, "arguments", get_str(item, "arguments"));
        cJSON_AddItemToArray(calls, tc);
        return 0;
    }
    if (str_is(type, "function_call_output")) {
        const char *call_id = get_str(item, "call_id");
        if (call_id == NULL) {
            snprintf(param, sizeof(param), "input[%d].call_id", i);
            BAD(err, param, "'%s' must be a string", param);
            return -1;
        }
        snprintf(param, sizeof(param), "input[%d].output", i);
        cJSON *content = call_output(get(item, "output"), param, err);
        if (content == NULL)
            return -1;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "tool");
        cJSON_AddStringToObject(m, "tool_call_id", call_id);
        cJSON_AddItemToObject(m, "content", content);
        cJSON_AddItemToArray(messages, m);
        return 0;
    }
    if (str_is(type, "reasoning"))
        return 0; /* a model's reasoning is its own: other providers cannot read it back, and need not */
    snprintf(param, sizeof(param), "input[%d].type", i);
    NATIVE_ONLY(err, param, "'%s' is '%.64s', which only an openai provider serves", param, type);
    return -1;
}

/* `input`, a string or an array of items, appended to `messages`. */
static int add_input(cJSON *messages, const cJSON *input, gyre_api_error_t *err)
{
    if (cJSON_IsString(input)) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", input->valuestring);
        cJSON_AddItemToArray(messages, m);
        return 0;
    }
    if (!cJSON_IsArray(input)) {
        BAD(err, "input", "'input' must be a string or an array of input items, got %s", gyre_json_type_name(input));
        return -1;
    }
    const cJSON *item;
    int i = 0;
    cJSON_ArrayForEach(item, input)
    {
        if (add_item(messages, item, i++, err) != 0)
            return -1;
    }
    return 0;
}

static int add_tools(cJSON *pivot, const cJSON *req, gyre_api_error_t *err)
{
    const cJSON *tools = get(req, "tools"), *t;
    char param[64];
    if (tools == NULL || cJSON_IsNull(tools))
        return 0;
    if (!cJSON_IsArray(tools)) {
        BAD(err, "tools", "'tools' must be an array, got %s", gyre_json_type_name(tools));
        return -1;
    }
    if (cJSON_GetArraySize(tools) == 0)
        return 0;
    cJSON *out = cJSON_AddArrayToObject(pivot, "tools");
    int i = 0;
    cJSON_ArrayForEach(t, tools)
    {
        const char *type = get_str(t, "type");
        if (!str_is(type, "function")) {
            snprintf(param, sizeof(param), "tools[%d].type", i);
            if (type == NULL) {
                BAD(err, param, "'%s' must be a string", param);
                return -1;
            }
            NATIVE_ONLY(err, param, "'%s' is '%.64s', a hosted tool only an openai provider serves", param, type);
            return -1;
        }
        const char *name = get_str(t, "name");
        if (name == NULL) {
            snprintf(param, sizeof(param), "tools[%d].name", i);
            BAD(err, param, "'%s' must be a string", param);
            return -1;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "function");
        cJSON *fn = cJSON_AddObjectToObject(o, "function");
        cJSON_AddStringToObject(fn, "name", name);
        const char *desc = get_str(t, "description");
        if (desc != NULL)
            cJSON_AddStringToObject(fn, "description", desc);
        const cJSON *params = get(t, "parameters");
        if (cJSON_IsObject(params))
            cJSON_AddItemToObject(fn, "parameters", cJSON_Duplicate(params, 1));
        const cJSON *strict = get(t, "strict");
        if (cJSON_IsBool(strict))
            cJSON_AddBoolToObject(fn, "strict", cJSON_IsTrue(strict));
        cJSON_AddItemToArray(out, o);
        i++;
    }
    return 0;
}

static int add_tool_choice(cJSON *pivot, const cJSON *req, gyre_api_error_t *err)
{
    const cJSON *tc = get(req, "tool_choice");
    if (tc == NULL || cJSON_IsNull(tc))
        return 0;
    if (cJSON_IsString(tc)) {
        if (!str_is(tc->valuestring, "auto") && !str_is(tc->valuestring, "none") &&
            !str_is(tc->valuestring, "required")) {
            BAD(err, "tool_choice", "'tool_choice' must be 'auto', 'none', 'required' or a function");
            return -1;
        }
        cJSON_AddStringToObject(pivot, "tool_choice", tc->valuestring);
        return 0;
    }
    const char *type = get_str(tc, "type");
    if (str_is(type, "function") && get_str(tc, "name") != NULL) {
        cJSON *o = cJSON_AddObjectToObject(pivot, "tool_choice");
        cJSON_AddStringToObject(o, "type", "function");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "function"), "name", get_str(tc, "name"));
        return 0;
    }
    if (type != NULL && !str_is(type, "function")) {
        NATIVE_ONLY(err, "tool_choice", "'tool_choice' of type '%.64s' only an openai provider serves", type);
        return -1;
    }
    BAD(err, "tool_choice", "'tool_choice' must be 'auto', 'none', 'required' or {\"type\":\"function\",\"name\":...}");
    return -1;
}

/* text.format: a JSON schema (or JSON mode) becomes the chat request's response_format. */
static int add_text_format(cJSON *pivot, const cJSON *req, gyre_api_error_t *err)
{
    const cJSON *text = get(req, "text");
    if (text == NULL || cJSON_IsNull(text))
        return 0;
    if (!cJSON_IsObject(text)) {
        BAD(err, "text", "'text' must be an object, got %s", gyre_json_type_name(text));
        return -1;
    }
    const cJSON *format = get(text, "format");
    if (format == NULL || cJSON_IsNull(format))
        return 0;
    const char *type = get_str(format, "type");
    if (str_is(type, "text"))
        return 0;
    if (str_is(type, "json_object")) {
        cJSON_AddStringToObject(cJSON_AddObjectToObject(pivot, "response_format"), "type", "json_object");
        return 0;
    }
    if (str_is(type, "json_schema")) {
        const char *name = get_str(format, "name");
        const cJSON *schema = get(format, "schema");
        if (name == NULL) {
            BAD(err, "text.format.name", "'text.format.name' must be a string");
            return -1;
        }
        if (!cJSON_IsObject(schema)) {
            BAD(err, "text.format.schema", "'text.format.schema' must be an object");
            return -1;
        }
        cJSON *rf = cJSON_AddObjectToObject(pivot, "response_format");
        cJSON_AddStringToObject(rf, "type", "json_schema");
        cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
        cJSON_AddStringToObject(js, "name", name);
        const char *desc = get_str(format, "description");
        if (desc != NULL)
            cJSON_AddStringToObject(js, "description", desc);
        cJSON_AddItemToObject(js, "schema", cJSON_Duplicate(schema, 1));
        const cJSON *strict = get(format, "strict");
        if (cJSON_IsBool(strict))
            cJSON_AddBoolToObject(js, "strict", cJSON_IsTrue(strict));
        return 0;
    }
    BAD(err, "text.format.type", "'text.format.type' must be 'text', 'json_object' or 'json_schema'");
    return -1;
}

/* A number member copied under another name; absent and null are nothing, anything else must be a number. */
static int copy_number(cJSON *pivot, const cJSON *req, const char *from, const char *to, int integer,
                       gyre_api_error_t *err)
{
    const cJSON *v = get(req, from);
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        (integer && (v->valuedouble < 1 || v->valuedouble > 1e9 || v->valuedouble != floor(v->valuedouble)))) {
        BAD(err, from, integer ? "'%s' must be an integer from 1" : "'%s' must be a number", from);
        return -1;
    }
    cJSON_AddNumberToObject(pivot, to, v->valuedouble);
    return 0;
}

int gyre_responses_parse(const char *body, size_t len, gyre_client_request_t *out, gyre_api_error_t *err)
{
    memset(out, 0, sizeof(*out));
    cJSON *req = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(req)) {
        gyre_api_error_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                           "the request body must be a JSON object");
        cJSON_Delete(req);
        return -1;
    }
    cJSON *pivot = cJSON_CreateObject();
    const cJSON *model = get(req, "model"), *v;
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0') {
        gyre_api_error_set(err, 400, "invalid_request_error",
                           model == NULL ? "missing_required_parameter" : "invalid_type", "model",
                           "'model' must be a non-empty string");
        goto fail;
    }
    cJSON_AddStringToObject(pivot, "model", model->valuestring);
    const cJSON *prev = get(req, "previous_response_id");
    if (prev != NULL && !cJSON_IsNull(prev) &&
        (!cJSON_IsString(prev) || strlen(prev->valuestring) == 0 ||
         strlen(prev->valuestring) > GYRE_RESPONSES_ID_MAX)) {
        BAD(err, "previous_response_id", "'previous_response_id' must be a response id (1 to %d bytes)",
            GYRE_RESPONSES_ID_MAX);
        goto fail;
    }
    /* Features that live in OpenAI's own store or servers. */
    static const char *const native_fields[] = {"conversation", "prompt"};
    for (size_t i = 0; i < sizeof(native_fields) / sizeof(native_fields[0]); i++)
        if ((v = get(req, native_fields[i])) != NULL && !cJSON_IsNull(v)) {
            NATIVE_ONLY(err, native_fields[i], "'%s' only an openai provider serves", native_fields[i]);
            goto fail;
        }
    if (cJSON_IsTrue(get(req, "background"))) {
        NATIVE_ONLY(err, "background", "'background' only an openai provider serves");
        goto fail;
    }
    cJSON *messages = cJSON_AddArrayToObject(pivot, "messages");
    const cJSON *instructions = get(req, "instructions");
    if (cJSON_IsString(instructions)) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", instructions->valuestring);
        cJSON_AddItemToArray(messages, m);
    } else if (instructions != NULL && !cJSON_IsNull(instructions)) {
        BAD(err, "instructions", "'instructions' must be a string, got %s", gyre_json_type_name(instructions));
        goto fail;
    }
    const cJSON *input = get(req, "input");
    if (input == NULL && !cJSON_IsString(prev)) {
        gyre_api_error_set(err, 400, "invalid_request_error", "missing_required_parameter", "input",
                           "'input' is required (a string or an array of input items)");
        goto fail;
    }
    if (input != NULL && add_input(messages, input, err) != 0)
        goto fail;
    if (cJSON_GetArraySize(messages) == 0 && !cJSON_IsString(prev)) {
        BAD(err, "input", "'input' must hold at least one message");
        goto fail;
    }
    if (add_tools(pivot, req, err) != 0 || add_tool_choice(pivot, req, err) != 0 ||
        add_text_format(pivot, req, err) != 0)
        goto fail;
    if ((v = get(req, "parallel_tool_calls")) != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v)) {
            BAD(err, "parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
            goto fail;
        }
        cJSON_AddBoolToObject(pivot, "parallel_tool_calls", cJSON_IsTrue(v));
    }
    if (copy_number(pivot, req, "max_output_tokens", "max_completion_tokens", 1, err) != 0 ||
        copy_number(pivot, req, "temperature", "temperature", 0, err) != 0 ||
        copy_number(pivot, req, "top_p", "top_p", 0, err) != 0)
        goto fail;
    const char *effort = get_str(get(req, "reasoning"), "effort");
    if (effort != NULL)
        cJSON_AddStringToObject(pivot, "reasoning_effort", effort);
    const char *user = get_str(req, "user");
    if (user != NULL)
        cJSON_AddStringToObject(pivot, "user", user);
    v = get(req, "stream");
    if (v != NULL && !cJSON_IsNull(v) && !cJSON_IsBool(v)) {
        BAD(err, "stream", "'stream' must be a boolean");
        goto fail;
    }
    if ((v = get(req, "store")) != NULL && !cJSON_IsNull(v) && !cJSON_IsBool(v)) {
        BAD(err, "store", "'store' must be a boolean");
        goto fail;
    }
    out->stream = cJSON_IsTrue(get(req, "stream"));
    if (out->stream) {
        /* A Response reports its usage at the end of every stream. */
        cJSON_AddTrueToObject(pivot, "stream");
        cJSON_AddTrueToObject(cJSON_AddObjectToObject(pivot, "stream_options"), "include_usage");
    }
    out->include_usage = out->stream;
    out->pivot = pivot;
    out->model = cJSON_GetObjectItemCaseSensitive(pivot, "model")->valuestring;
    if (gyre_json_find_member(body, len, "model", &out->model_start, &out->model_end) != 0)
        out->model_start = out->model_end = 0;
    cJSON_Delete(req);
    return 0;
fail:
    cJSON_Delete(pivot);
    cJSON_Delete(req);
    return -1;
}

/* ---- previous_response_id ---------------------------------------------------------------------------------- */

/* The assistant message of an earlier answer: a chat.completion's first choice, or a Response's output items. */
static cJSON *answer_message(const cJSON *answer)
{
    const cJSON *choices = get(answer, "choices");
    if (cJSON_IsArray(choices)) {
        const cJSON *msg = get(cJSON_GetArrayItem(choices, 0), "message");
        if (!cJSON_IsObject(msg))
            return NULL;
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "assistant");
        const char *content = get_str(msg, "content");
        if (content != NULL)
            cJSON_AddStringToObject(m, "content", content);
        else
            cJSON_AddNullToObject(m, "content");
        const cJSON *calls = get(msg, "tool_calls");
        if (cJSON_IsArray(calls) && cJSON_GetArraySize(calls) > 0)
            cJSON_AddItemToObject(m, "tool_calls", cJSON_Duplicate(calls, 1));
        return m;
    }
    const cJSON *output = get(answer, "output");
    if (!cJSON_IsArray(output))
        return NULL;
    /* A Response's output items are input items too: read them as the next request would carry them. */
    cJSON *msgs = cJSON_CreateArray();
    const cJSON *item;
    gyre_api_error_t ignored;
    int i = 0;
    cJSON_ArrayForEach(item, output)
    {
        if (add_item(msgs, item, i++, &ignored) != 0) {
            cJSON_Delete(msgs);
            return NULL;
        }
    }
    return msgs;
}

cJSON *gyre_responses_turn_messages(const char *request, size_t rlen, const char *answer, size_t alen,
                                    char prev[GYRE_RESPONSES_ID_MAX + 1], gyre_api_error_t *err)
{
    prev[0] = '\0';
    cJSON *req = cJSON_ParseWithLength(request, rlen);
    cJSON *ans = cJSON_ParseWithLength(answer, alen);
    cJSON *messages = NULL, *reply = NULL;
    if (!cJSON_IsObject(req) || !cJSON_IsObject(ans))
        goto unreadable;
    const char *p = get_str(req, "previous_response_id");
    if (p != NULL && strlen(p) <= GYRE_RESPONSES_ID_MAX)
        snprintf(prev, GYRE_RESPONSES_ID_MAX + 1, "%s", p);
    messages = cJSON_CreateArray();
    const cJSON *input = get(req, "input");
    if (input != NULL && add_input(messages, input, err) != 0)
        goto unreadable;
    if ((reply = answer_message(ans)) == NULL)
        goto unreadable;
    if (cJSON_IsArray(reply)) {
        while (cJSON_GetArraySize(reply) > 0)
            cJSON_AddItemToArray(messages, cJSON_DetachItemFromArray(reply, 0));
        cJSON_Delete(reply);
    } else {
        cJSON_AddItemToArray(messages, reply);
    }
    cJSON_Delete(req);
    cJSON_Delete(ans);
    return messages;
unreadable:
    gyre_api_error_set(err, 400, "invalid_request_error", "previous_response_not_found", "previous_response_id",
                       "the response named by 'previous_response_id' cannot be continued: its trace does not hold a "
                       "Responses request and answer gyre can read");
    cJSON_Delete(messages);
    cJSON_Delete(req);
    cJSON_Delete(ans);
    return NULL;
}

void gyre_responses_prepend_history(cJSON *pivot, cJSON *history)
{
    cJSON *messages = cJSON_GetObjectItemCaseSensitive(pivot, "messages");
    if (!cJSON_IsArray(messages)) {
        cJSON_Delete(history);
        return;
    }
    int at = 0;
    cJSON *m;
    cJSON_ArrayForEach(m, messages)
    {
        if (!str_is(get_str(m, "role"), "system"))
            break;
        at++;
    }
    /* The messages after the instructions move behind the history (cJSON_InsertItemInArray refuses items in
     * Debian's cJSON 1.7.15, so the list is rebuilt by appends). */
    cJSON *rest = cJSON_CreateArray();
    while (cJSON_GetArraySize(messages) > at)
        cJSON_AddItemToArray(rest, cJSON_DetachItemFromArray(messages, at));
    while (cJSON_GetArraySize(history) > 0)
        cJSON_AddItemToArray(messages, cJSON_DetachItemFromArray(history, 0));
    while (cJSON_GetArraySize(rest) > 0)
        cJSON_AddItemToArray(messages, cJSON_DetachItemFromArray(rest, 0));
    cJSON_Delete(rest);
    cJSON_Delete(history);
}

/* ---- answers --------------------------------------------------------------------------------------------- */

/* A JSON member's compact text appended, or `dflt` when it is absent or null. */
static int append_member(gyre_buf_t *b, const cJSON *req, const char *key, const char *dflt)
{
    const cJSON *v = get(req, key);
    if (v == NULL || cJSON_IsNull(v))
        return gyre_buf_appends(b, dflt);
    char *text = cJSON_PrintUnformatted(v);
    int r = text != NULL ? gyre_buf_appends(b, text) : -1;
    cJSON_free(text);
    return r;
}

/*
 * The request's echo, the members of a Response that repeat what was asked, in two runs around `model` and
 * `output` as OpenAI orders them: `head` (instructions, max_output_tokens) and `tail` (parallel_tool_calls
 * through metadata).
 */
static int write_echo(const cJSON *req, gyre_buf_t *head, gyre_buf_t *tail)
{
    int r = 0;
    r |= gyre_buf_appends(head, "\"instructions\":");
    r |= append_member(head, req, "instructions", "null");
    r |= gyre_buf_appends(head, ",\"max_output_tokens\":");
    r |= append_member(head, req, "max_output_tokens", "null");
    r |= gyre_buf_appends(tail, "\"parallel_tool_calls\":");
    r |= append_member(tail, req, "parallel_tool_calls", "true");
    r |= gyre_buf_appends(tail, ",\"previous_response_id\":");
    r |= append_member(tail, req, "previous_response_id", "null");
    r |= gyre_buf_appends(tail, ",\"reasoning\":{\"effort\":");
    r |= append_member(tail, get(req, "reasoning"), "effort", "null");
    r |= gyre_buf_appends(tail, ",\"summary\":null},\"store\":");
    r |= append_member(tail, req, "store", "true");
    r |= gyre_buf_appends(tail, ",\"temperature\":");
    r |= append_member(tail, req, "temperature", "1");
    r |= gyre_buf_appends(tail, ",\"text\":");
    r |= append_member(tail, req, "text", "{\"format\":{\"type\":\"text\"}}");
    r |= gyre_buf_appends(tail, ",\"tool_choice\":");
    r |= append_member(tail, req, "tool_choice", "\"auto\"");
    r |= gyre_buf_appends(tail, ",\"tools\":");
    r |= append_member(tail, req, "tools", "[]");
    r |= gyre_buf_appends(tail, ",\"top_p\":");
    r |= append_member(tail, req, "top_p", "1");
    r |= gyre_buf_appends(tail, ",\"truncation\":");
    r |= append_member(tail, req, "truncation", "\"disabled\"");
    r |= gyre_buf_appends(tail, ",\"user\":");
    r |= append_member(tail, req, "user", "null");
    r |= gyre_buf_appends(tail, ",\"metadata\":");
    r |= append_member(tail, req, "metadata", "{}");
    return r;
}

typedef struct answer_usage {
    int known;
    long long input, output, total, cached, reasoning;
} answer_usage_t;

/* What a Response says of how it ended. */
typedef enum { ENDED_NOT, ENDED_COMPLETED, ENDED_INCOMPLETE_LENGTH, ENDED_INCOMPLETE_FILTER, ENDED_FAILED } ended_t;

static const char *status_name(ended_t e)
{
    switch (e) {
    case ENDED_NOT: return "in_progress";
    case ENDED_COMPLETED: return "completed";
    case ENDED_FAILED: return "failed";
    default: return "incomplete";
    }
}

static ended_t ended_by(const char *finish_reason)
{
    if (str_is(finish_reason, "length"))
        return ENDED_INCOMPLETE_LENGTH;
    if (str_is(finish_reason, "content_filter"))
        return ENDED_INCOMPLETE_FILTER;
    return ENDED_COMPLETED;
}

/*
 * A Response object.  `items` is the output items' JSON, comma-separated; `error` the failure of a failed one
 * (else NULL).
 */
static int write_response(gyre_buf_t *b, const char *id, long long created, const char *model, size_t model_len,
                          ended_t ended, const gyre_api_error_t *error, const gyre_buf_t *head, const gyre_buf_t *tail,
                          const char *items, size_t items_len, const answer_usage_t *u)
{
    int r = 0;
    r |= gyre_buf_appends(b, "{\"id\":");
    r |= gyre_buf_append_json_string(b, id, strlen(id));
    r |= gyre_buf_appendf(b, ",\"object\":\"response\",\"created_at\":%lld,\"status\":\"%s\",\"background\":false,"
                             "\"error\":",
                          created, status_name(ended));
    if (error != NULL) {
        r |= gyre_buf_appends(b, error->status == 429 ? "{\"code\":\"rate_limit_exceeded\",\"message\":"
                                                      : "{\"code\":\"server_error\",\"message\":");
        r |= gyre_buf_append_json_string(b, error->message, strlen(error->message));
        r |= gyre_buf_appends(b, "}");
    } else {
        r |= gyre_buf_appends(b, "null");
    }
    r |= gyre_buf_appends(b, ",\"incomplete_details\":");
    r |= gyre_buf_appends(b, ended == ENDED_INCOMPLETE_LENGTH   ? "{\"reason\":\"max_output_tokens\"}"
                             : ended == ENDED_INCOMPLETE_FILTER ? "{\"reason\":\"content_filter\"}"
                                                                : "null");
    r |= gyre_buf_appends(b, ",");
    r |= gyre_buf_append(b, head->base, head->len);
    r |= gyre_buf_appends(b, ",\"model\":");
    r |= gyre_buf_append_json_string(b, model, model_len);
    r |= gyre_buf_appends(b, ",\"output\":[");
    r |= gyre_buf_append(b, items, items_len);
    r |= gyre_buf_appends(b, "],");
    r |= gyre_buf_append(b, tail->base, tail->len);
    r |= gyre_buf_appends(b, ",\"usage\":");
    if (u->known)
        r |= gyre_buf_appendf(b,
                              "{\"input_tokens\":%lld,\"input_tokens_details\":{\"cached_tokens\":%lld},"
                              "\"output_tokens\":%lld,\"output_tokens_details\":{\"reasoning_tokens\":%lld},"
                              "\"total_tokens\":%lld}",
                              u->input, u->cached, u->output, u->reasoning, u->total);
    else
        r |= gyre_buf_appends(b, "null");
    r |= gyre_buf_appends(b, "}");
    return r;
}

/* The suffix of an answer id after its "resp_", which the ids of its items share. */
static const char *id_suffix(const char *id)
{
    return strncmp(id, "resp_", 5) == 0 ? id + 5 : id;
}

/* A message item; `text` NULL writes an empty content list (the item as it is added). */
static int write_message_item(gyre_buf_t *b, const char *id, int out_index, const char *status, const char *text,
                              size_t text_len, int refusal)
{
    int r = gyre_buf_appendf(b, "{\"id\":\"msg_%s_%d\",\"type\":\"message\",\"status\":\"%s\",\"content\":[",
                             id_suffix(id), out_index, status);
    if (text != NULL) {
        r |= gyre_buf_appends(b, refusal ? "{\"type\":\"refusal\",\"refusal\":" : "{\"type\":\"output_text\","
                                                                                  "\"annotations\":[],\"logprobs\":[],"
                                                                                  "\"text\":");
        r |= gyre_buf_append_json_string(b, text, text_len);
        r |= gyre_buf_appends(b, "}");
    }
    r |= gyre_buf_appends(b, "],\"role\":\"assistant\"}");
    return r;
}

static int write_call_item(gyre_buf_t *b, const char *id, int out_index, const char *status, const char *call_id,
                           size_t call_id_len, const char *name, size_t name_len, const char *args, size_t args_len)
{
    int r = gyre_buf_appendf(b, "{\"id\":\"fc_%s_%d\",\"type\":\"function_call\",\"status\":\"%s\",\"arguments\":",
                             id_suffix(id), out_index, status);
    r |= gyre_buf_append_json_string(b, args, args_len);
    r |= gyre_buf_appends(b, ",\"call_id\":");
    r |= gyre_buf_append_json_string(b, call_id, call_id_len);
    r |= gyre_buf_appends(b, ",\"name\":");
    r |= gyre_buf_append_json_string(b, name, name_len);
    r |= gyre_buf_appends(b, "}");
    return r;
}

static long long number_at(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && fabs(v->valuedouble) < 9e15 ? (long long)v->valuedouble
                                                                                        : 0;
}

static int responses_response(const gyre_client_call_t *call, const char *completion, size_t len, gyre_buf_t *out,
                              gyre_api_error_t *err)
{
    cJSON *c = cJSON_ParseWithLength(completion, len);
    const cJSON *choice = cJSON_GetArrayItem(get(c, "choices"), 0);
    const cJSON *msg = get(choice, "message");
    if (!cJSON_IsObject(msg)) {
        gyre_api_error_set(err, 502, "upstream_error", "bad_response", NULL,
                           "the provider's answer has no message to return as a Response");
        cJSON_Delete(c);
        return -1;
    }
    gyre_buf_t head, tail, items;
    gyre_buf_init(&head, ECHO_MAX);
    gyre_buf_init(&tail, ECHO_MAX);
    gyre_buf_init(&items, GYRE_RESPONSES_ANSWER_MAX);
    int r = write_echo(call->request, &head, &tail);
    const char *id = call->id != NULL ? call->id : "resp_gyre";
    ended_t ended = ended_by(get_str(choice, "finish_reason"));
    const char *item_status = ended == ENDED_COMPLETED ? "completed" : "incomplete";
    int n = 0;
    const char *content = get_str(msg, "content"), *refusal = get_str(msg, "refusal");
    if ((content != NULL && content[0] != '\0') || refusal != NULL) {
        const char *t = refusal != NULL ? refusal : content;
        r |= write_message_item(&items, id, n++, item_status, t, strlen(t), refusal != NULL);
    }
    const cJSON *tc;
    cJSON_ArrayForEach(tc, (cJSON_IsArray(get(msg, "tool_calls")) ? get(msg, "tool_calls") : NULL))
    {
        const cJSON *fn = get(tc, "function");
        const char *cid = get_str(tc, "id"), *name = get_str(fn, "name"), *args = get_str(fn, "arguments");
        cid = cid != NULL ? cid : "";
        name = name != NULL ? name : "";
        args = args != NULL ? args : "";
        if (n > 0)
            r |= gyre_buf_appends(&items, ",");
        r |= write_call_item(&items, id, n++, item_status, cid, strlen(cid), name, strlen(name), args,
                             strlen(args));
    }
    const cJSON *u = get(c, "usage");
    answer_usage_t usage = {
        .known = cJSON_IsObject(u),
        .input = number_at(u, "prompt_tokens"),
        .output = number_at(u, "completion_tokens"),
        .total = number_at(u, "total_tokens"),
        .cached = number_at(get(u, "prompt_tokens_details"), "cached_tokens"),
        .reasoning = number_at(get(u, "completion_tokens_details"), "reasoning_tokens"),
    };
    const char *model = get_str(c, "model");
    if (model == NULL)
        model = call->model != NULL ? call->model : "";
    r |= write_response(out, id, call->created, model, strlen(model), ended,
                        NULL, &head, &tail, items.base, items.len, &usage);
    gyre_buf_dispose(&head);
    gyre_buf_dispose(&tail);
    gyre_buf_dispose(&items);
    cJSON_Delete(c);
    if (r != 0) {
        gyre_api_error_set(err, 502, "upstream_error", "response_too_large", NULL,
                           "the provider's answer is too large to return as a Response");
        return -1;
    }
    return 0;
}

/* ---- streams --------------------------------------------------------------------------------------------- */

enum { OPEN_NONE, OPEN_MESSAGE, OPEN_CALL };

typedef struct responses_encoder {
    char id[GYRE_RESPONSES_ID_MAX + 1];
    char model[257];
    long long created;
    long long seq; /* the next event's sequence_number */
    int started;
    int complete;
    int open;       /* the output item being written */
    int out_index;  /* its index in the output (the next one's when none is open) */
    int tool_index; /* the open call's index in the provider's answer */
    ended_t ended;
    answer_usage_t usage;
    gyre_buf_t head, tail; /* the request's echo (write_echo) */
    gyre_buf_t text;       /* the open message's text, or the open call's arguments */
    gyre_buf_t call_id, name;
    gyre_buf_t items; /* the output items done, comma-separated */
    gyre_buf_t ev;    /* the event being written */
} responses_encoder_t;

static void encoder_init(void *enc_, const gyre_client_call_t *call)
{
    responses_encoder_t *e = enc_;
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", call->id != NULL ? call->id : "resp_gyre");
    snprintf(e->model, sizeof(e->model), "%s", call->model != NULL ? call->model : "");
    e->created = call->created;
    gyre_buf_init(&e->head, ECHO_MAX);
    gyre_buf_init(&e->tail, ECHO_MAX);
    gyre_buf_init(&e->text, GYRE_RESPONSES_ANSWER_MAX);
    gyre_buf_init(&e->call_id, 1024);
    gyre_buf_init(&e->name, 1024);
    gyre_buf_init(&e->items, GYRE_RESPONSES_ANSWER_MAX);
    gyre_buf_init(&e->ev, EVENT_MAX);
    if (write_echo(call->request, &e->head, &e->tail) != 0) {
        /* An echo over its bound is left out whole rather than cut: the stream's objects stay JSON. */
        gyre_buf_reset(&e->head);
        gyre_buf_reset(&e->tail);
        write_echo(NULL, &e->head, &e->tail);
    }
}

void gyre_responses_encoder_dispose(void *enc_)
{
    responses_encoder_t *e = enc_;
    gyre_buf_dispose(&e->head);
    gyre_buf_dispose(&e->tail);
    gyre_buf_dispose(&e->text);
    gyre_buf_dispose(&e->call_id);
    gyre_buf_dispose(&e->name);
    gyre_buf_dispose(&e->items);
    gyre_buf_dispose(&e->ev);
}

/* Starts an event in e->ev: its SSE head and the first members of its data. */
static int ev_begin(responses_encoder_t *e, const char *type)
{
    int r = gyre_buf_appendf(&e->ev, "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%lld", type, type,
                             e->seq++);
    return r;
}

static int ev_end(responses_encoder_t *e)
{
    return gyre_buf_appends(&e->ev, "}\n\n");
}

/* The Response so far, as a member of the event being written. */
static int ev_response(responses_encoder_t *e, const gyre_api_error_t *error)
{
    int r = gyre_buf_appends(&e->ev, ",\"response\":");
    r |= write_response(&e->ev, e->id, e->created, e->model, strlen(e->model), e->ended, error, &e->head, &e->tail,
                        e->items.base, e->items.len, &e->usage);
    return r;
}

static int ensure_started(responses_encoder_t *e)
{
    if (e->started)
        return 0;
    e->started = 1;
    int r = ev_begin(e, "response.created") | ev_response(e, NULL) | ev_end(e);
    r |= ev_begin(e, "response.in_progress") | ev_response(e, NULL) | ev_end(e);
    return r;
}

/* ",\"item_id\":\"msg_X_N\",\"output_index\":N" for the open item. */
static int ev_item_ref(responses_encoder_t *e)
{
    return gyre_buf_appendf(&e->ev, ",\"item_id\":\"%s_%s_%d\",\"output_index\":%d",
                            e->open == OPEN_CALL ? "fc" : "msg", id_suffix(e->id), e->out_index, e->out_index);
}

static int open_message(responses_encoder_t *e)
{
    e->open = OPEN_MESSAGE;
    gyre_buf_reset(&e->text);
    int r = ev_begin(e, "response.output_item.added");
    r |= gyre_buf_appendf(&e->ev, ",\"output_index\":%d,\"item\":", e->out_index);
    r |= write_message_item(&e->ev, e->id, e->out_index, "in_progress", NULL, 0, 0);
    r |= ev_end(e);
    r |= ev_begin(e, "response.content_part.added") | ev_item_ref(e);
    r |= gyre_buf_appends(&e->ev, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],"
                                  "\"logprobs\":[],\"text\":\"\"}");
    r |= ev_end(e);
    return r;
}

static int open_call(responses_encoder_t *e, const gyre_event_t *ev)
{
    e->open = OPEN_CALL;
    e->tool_index = ev->index;
    gyre_buf_reset(&e->text);
    gyre_buf_reset(&e->call_id);
    gyre_buf_reset(&e->name);
    int r = gyre_buf_append(&e->call_id, ev->id.p, ev->id.len) | gyre_buf_append(&e->name, ev->name.p, ev->name.len);
    r |= ev_begin(e, "response.output_item.added");
    r |= gyre_buf_appendf(&e->ev, ",\"output_index\":%d,\"item\":", e->out_index);
    r |= write_call_item(&e->ev, e->id, e->out_index, "in_progress", e->call_id.base, e->call_id.len, e->name.base,
                         e->name.len, "", 0);
    r |= ev_end(e);
    return r;
}

/* Ends the open item: its done events, and the item kept for response.completed. */
static int close_item(responses_encoder_t *e)
{
    int r = 0;
    const char *status = e->ended == ENDED_COMPLETED || e->ended == ENDED_NOT ? "completed" : "incomplete";
    const char *text = e->text.base != NULL ? e->text.base : "";
    size_t item_start = e->items.len;
    if (e->items.len != 0)
        r |= gyre_buf_appends(&e->items, ",");
    if (e->open == OPEN_MESSAGE) {
        r |= ev_begin(e, "response.output_text.done") | ev_item_ref(e);
        r |= gyre_buf_appends(&e->ev, ",\"content_index\":0,\"logprobs\":[],\"text\":");
        r |= gyre_buf_append_json_string(&e->ev, text, e->text.len) | ev_end(e);
        r |= ev_begin(e, "response.content_part.done") | ev_item_ref(e);
        r |= gyre_buf_appends(&e->ev, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],"
                                      "\"logprobs\":[],\"text\":");
        r |= gyre_buf_append_json_string(&e->ev, text, e->text.len);
        r |= gyre_buf_appends(&e->ev, "}") | ev_end(e);
        r |= write_message_item(&e->items, e->id, e->out_index, status, text, e->text.len, 0);
    } else if (e->open == OPEN_CALL) {
        r |= ev_begin(e, "response.function_call_arguments.done") | ev_item_ref(e);
        r |= gyre_buf_appends(&e->ev, ",\"name\":");
        r |= gyre_buf_append_json_string(&e->ev, e->name.base, e->name.len);
        r |= gyre_buf_appends(&e->ev, ",\"arguments\":");
        r |= gyre_buf_append_json_string(&e->ev, text, e->text.len) | ev_end(e);
        r |= write_call_item(&e->items, e->id, e->out_index, status, e->call_id.base, e->call_id.len, e->name.base,
                             e->name.len, text, e->text.len);
    } else {
        return 0;
    }
    r |= ev_begin(e, "response.output_item.done");
    r |= gyre_buf_appendf(&e->ev, ",\"output_index\":%d,\"item\":", e->out_index);
    r |= gyre_buf_append(&e->ev, e->items.base + item_start + (item_start != 0),
                         e->items.len - item_start - (item_start != 0));
    r |= ev_end(e);
    e->open = OPEN_NONE;
    e->out_index++;
    return r;
}

static int encode_delta(responses_encoder_t *e, const char *type, const gyre_str_t *text, int content_index)
{
    int r = gyre_buf_append(&e->text, text->p, text->len);
    r |= ev_begin(e, type) | ev_item_ref(e);
    if (content_index)
        r |= gyre_buf_appends(&e->ev, ",\"content_index\":0,\"logprobs\":[]");
    r |= gyre_buf_appends(&e->ev, ",\"delta\":");
    r |= gyre_buf_append_json_string(&e->ev, text->p, text->len) | ev_end(e);
    return r;
}

static int encode_event(responses_encoder_t *e, const gyre_event_t *ev)
{
    int r = 0;
    if (ev->choice != 0)
        return 0; /* the Responses API has one answer: choice 0 */
    switch (ev->type) {
    case GYRE_EVENT_START:
        if (!e->started && ev->model.len != 0 && ev->model.len < sizeof(e->model)) {
            memcpy(e->model, ev->model.p, ev->model.len);
            e->model[ev->model.len] = '\0';
        }
        return ensure_started(e);
    case GYRE_EVENT_TEXT:
        if (ev->text.len == 0)
            return ensure_started(e);
        r |= ensure_started(e);
        if (e->open == OPEN_CALL)
            r |= close_item(e);
        if (e->open == OPEN_NONE)
            r |= open_message(e);
        return r | encode_delta(e, "response.output_text.delta", &ev->text, 1);
    case GYRE_EVENT_TOOL_START:
        r |= ensure_started(e);
        if (e->open != OPEN_NONE)
            r |= close_item(e);
        r |= open_call(e, ev);
        /* A provider that sends a call whole (Gemini) gives its arguments here: one delta, as OpenAI streams them. */
        if (ev->text.len != 0)
            r |= encode_delta(e, "response.function_call_arguments.delta", &ev->text, 0);
        return r;
    case GYRE_EVENT_TOOL_ARGS:
        /* Arguments belong to the call that is open; the APIs gyre reads send one call's pieces together. */
        if (e->open != OPEN_CALL || ev->index != e->tool_index || ev->text.len == 0)
            return 0;
        return encode_delta(e, "response.function_call_arguments.delta", &ev->text, 0);
    case GYRE_EVENT_FINISH:
        e->ended = ended_by(ev->finish_reason);
        return 0;
    case GYRE_EVENT_USAGE:
        e->usage = (answer_usage_t){1, ev->usage.input_tokens, ev->usage.output_tokens, ev->usage.total_tokens,
                                    ev->usage.cached_tokens, ev->usage.reasoning_tokens};
        if (e->usage.total == 0)
            e->usage.total = e->usage.input + e->usage.output;
        return 0;
    case GYRE_EVENT_ERROR: /* written by gyre_responses_encode_error */
        return 0;
    case GYRE_EVENT_DONE:
        r |= ensure_started(e);
        if (e->open != OPEN_NONE)
            r |= close_item(e);
        if (e->ended == ENDED_NOT)
            e->ended = ENDED_COMPLETED;
        r |= ev_begin(e, e->ended == ENDED_COMPLETED ? "response.completed" : "response.incomplete");
        r |= ev_response(e, NULL) | ev_end(e);
        e->complete = 1;
        return r;
    default: /* CHUNK: an OpenAI chunk as it came, for OpenAI's own encoder */
        return 0;
    }
}

/* The events of one call written whole into `out`, or nothing of them (-1: a bound was met). */
static int flush_events(responses_encoder_t *e, int r, gyre_buf_t *out)
{
    if (r == 0 && e->ev.len != 0)
        r = gyre_buf_append(out, e->ev.base, e->ev.len);
    gyre_buf_reset(&e->ev);
    return r == 0 ? 0 : -1;
}

static int responses_encode(void *enc, const gyre_event_t *ev, gyre_buf_t *out)
{
    responses_encoder_t *e = enc;
    if (e->complete)
        return 0; /* the stream has ended: nothing follows its last event */
    if (ev->type == GYRE_EVENT_ERROR)
        return gyre_responses_encode_error(enc, ev->error, out);
    return flush_events(e, encode_event(e, ev), out);
}

int gyre_responses_encode_error(void *enc, const gyre_api_error_t *err, gyre_buf_t *out)
{
    responses_encoder_t *e = enc;
    if (e->complete)
        return 0;
    int r = ensure_started(e);
    r |= ev_begin(e, "error");
    r |= gyre_buf_appends(&e->ev, ",\"code\":");
    r |= err->code != NULL ? gyre_buf_append_json_string(&e->ev, err->code, strlen(err->code))
                           : gyre_buf_appends(&e->ev, "null");
    r |= gyre_buf_appends(&e->ev, ",\"message\":");
    r |= gyre_buf_append_json_string(&e->ev, err->message, strlen(err->message));
    r |= gyre_buf_appends(&e->ev, ",\"param\":");
    r |= err->param[0] != '\0' ? gyre_buf_append_json_string(&e->ev, err->param, strlen(err->param))
                               : gyre_buf_appends(&e->ev, "null");
    r |= ev_end(e);
    e->ended = ENDED_FAILED;
    r |= ev_begin(e, "response.failed") | ev_response(e, err) | ev_end(e);
    e->complete = 1;
    return flush_events(e, r, out);
}

static int responses_encoder_complete(const void *enc)
{
    return ((const responses_encoder_t *)enc)->complete;
}

static int responses_error_body(const gyre_api_error_t *err, gyre_buf_t *out)
{
    return gyre_api_error_to_json(err, out);
}

/*
 * An error that ends a stream when no encoder is at hand (the stream had not begun): the documented error event.
 * Its sequence_number is 0, the first event of a stream that has none before it.
 */
static int responses_error_event(const gyre_api_error_t *err, gyre_buf_t *out)
{
    int r = gyre_buf_appends(out, "event: error\ndata: {\"type\":\"error\",\"sequence_number\":0,\"code\":");
    r |= err->code != NULL ? gyre_buf_append_json_string(out, err->code, strlen(err->code))
                           : gyre_buf_appends(out, "null");
    r |= gyre_buf_appends(out, ",\"message\":");
    r |= gyre_buf_append_json_string(out, err->message, strlen(err->message));
    r |= gyre_buf_appends(out, ",\"param\":");
    r |= err->param[0] != '\0' ? gyre_buf_append_json_string(out, err->param, strlen(err->param))
                               : gyre_buf_appends(out, "null");
    r |= gyre_buf_appends(out, "}\n\n");
    return r == 0 ? 0 : -1;
}

int gyre_responses_to_completion(const char *answer, size_t len, gyre_buf_t *out)
{
    cJSON *root = cJSON_ParseWithLength(answer, len);
    const cJSON *r = get(root, "response") != NULL ? get(root, "response") : root;
    if (!str_is(get_str(r, "object"), "response")) {
        cJSON_Delete(root);
        return -1;
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", get_str(r, "id") != NULL ? get_str(r, "id") : "");
    cJSON_AddStringToObject(c, "object", "chat.completion");
    cJSON_AddNumberToObject(c, "created", (double)number_at(r, "created_at"));
    cJSON_AddStringToObject(c, "model", get_str(r, "model") != NULL ? get_str(r, "model") : "");
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    gyre_buf_t text;
    gyre_buf_init(&text, GYRE_RESPONSES_ANSWER_MAX);
    cJSON *calls = cJSON_CreateArray();
    const cJSON *item, *part;
    cJSON_ArrayForEach(item, (cJSON_IsArray(get(r, "output")) ? get(r, "output") : NULL))
    {
        if (str_is(get_str(item, "type"), "message")) {
            cJSON_ArrayForEach(part, (cJSON_IsArray(get(item, "content")) ? get(item, "content") : NULL))
            {
                const char *t = get_str(part, "text");
                if (t != NULL)
                    gyre_buf_appends(&text, t);
            }
        } else if (str_is(get_str(item, "type"), "function_call")) {
            cJSON *tc = cJSON_CreateObject();
            cJSON_AddStringToObject(tc, "id", get_str(item, "call_id") != NULL ? get_str(item, "call_id") : "");
            cJSON_AddStringToObject(tc, "type", "function");
            cJSON *fn = cJSON_AddObjectToObject(tc, "function");
            cJSON_AddStringToObject(fn, "name", get_str(item, "name") != NULL ? get_str(item, "name") : "");
            cJSON_AddStringToObject(fn, "arguments", get_str(item, "arguments") != NULL ? get_str(item, "arguments") : "");
            cJSON_AddItemToArray(calls, tc);
        }
    }
    int ncalls = cJSON_GetArraySize(calls);
    if (text.len != 0 || ncalls == 0)
        cJSON_AddStringToObject(msg, "content", text.base != NULL ? text.base : "");
    else
        cJSON_AddNullToObject(msg, "content");
    if (ncalls != 0)
        cJSON_AddItemToObject(msg, "tool_calls", calls);
    else
        cJSON_Delete(calls);
    gyre_buf_dispose(&text);
    const char *reason = get_str(get(r, "incomplete_details"), "reason");
    cJSON_AddStringToObject(choice, "finish_reason", str_is(reason, "max_output_tokens") ? "length"
                                                     : str_is(reason, "content_filter")  ? "content_filter"
                                                     : ncalls != 0                       ? "tool_calls"
                                                                                         : "stop");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "choices"), choice);
    const cJSON *u = get(r, "usage");
    if (cJSON_IsObject(u)) {
        cJSON *cu = cJSON_AddObjectToObject(c, "usage");
        cJSON_AddNumberToObject(cu, "prompt_tokens", (double)number_at(u, "input_tokens"));
        cJSON_AddNumberToObject(cu, "completion_tokens", (double)number_at(u, "output_tokens"));
        cJSON_AddNumberToObject(cu, "total_tokens", (double)number_at(u, "total_tokens"));
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(cu, "prompt_tokens_details"), "cached_tokens",
                                (double)number_at(get(u, "input_tokens_details"), "cached_tokens"));
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(cu, "completion_tokens_details"), "reasoning_tokens",
                                (double)number_at(get(u, "output_tokens_details"), "reasoning_tokens"));
    }
    char *printed = cJSON_PrintUnformatted(c);
    int rc = printed != NULL && gyre_buf_appends(out, printed) == 0 ? 0 : -1;
    cJSON_free(printed);
    cJSON_Delete(c);
    cJSON_Delete(root);
    return rc;
}

/* A native stream ends with response.completed, .incomplete or .failed, or an error event. */
static int responses_stream_ends(const char *event, size_t event_len, const char *data, size_t data_len)
{
    static const char *const last[] = {"response.completed", "response.incomplete", "response.failed", "error"};
    char prefix[64];
    for (size_t i = 0; i < sizeof(last) / sizeof(last[0]); i++) {
        size_t n = strlen(last[i]);
        if (event_len == n && memcmp(event, last[i], n) == 0)
            return 1;
        /* Without an event line, the data's type says (OpenAI writes it first). */
        int pn = snprintf(prefix, sizeof(prefix), "{\"type\":\"%s\"", last[i]);
        if (event_len == 0 && data_len >= (size_t)pn && memcmp(data, prefix, (size_t)pn) == 0)
            return 1;
    }
    return 0;
}

/*
 * Native to `openai` providers only: Azure serves the Responses API under paths of its own, so an azure provider
 * gets the chat translation like every other kind.
 */
const gyre_client_dialect_t gyre_client_responses = {
    .name = "responses",
    .path = "/v1/responses",
    .native = GYRE_KIND_BIT(GYRE_PROVIDER_OPENAI),
    .served = GYRE_KINDS_ALL,
    .parse = gyre_responses_parse,
    .response = responses_response,
    .encoder_size = sizeof(responses_encoder_t),
    .encoder_init = encoder_init,
    .encode = responses_encode,
    .encoder_dispose = gyre_responses_encoder_dispose,
    .encoder_complete = responses_encoder_complete,
    .error_body = responses_error_body,
    .error_event = responses_error_event,
    .stream_ends = responses_stream_ends,
    .native_completion = gyre_responses_to_completion,
};
