/*
 * The OpenAI Responses API as a client dialect (see responses.h): requests.
 *
 * The input items (a string, messages with input_text / output_text /
 * input_image parts, function_call and function_call_output items),
 * instructions, function tools and tool_choice, max_output_tokens,
 * temperature, top_p, text.format and stream become an OpenAI chat request,
 * which every provider dialect reads.  What the chat shape cannot say (hosted
 * tools, item references, stored prompts, background mode) is refused with
 * gyre_responses_native_only, so that only a provider speaking the API
 * natively gets it.  previous_response_id's earlier turns are read here too
 * (gyre_responses_turn_messages), from bodies the server layer found.
 *
 * Requests are read with cJSON: they are bounded by the body limit already.
 */
#include "dialect/responses.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "dialect/responses_int.h"

const char gyre_responses_native_only[] = "unsupported_value";

#define BAD(err, param, ...)                                                                                           \
    gyre_api_error_set((err), 400, "invalid_request_error", "invalid_value", (param), __VA_ARGS__)
#define NATIVE_ONLY(err, param, ...)                                                                                   \
    gyre_api_error_set((err), 400, "invalid_request_error", gyre_responses_native_only, (param), __VA_ARGS__)

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
