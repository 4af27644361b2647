/*
 * gyre-mock's OpenAI Responses API (POST /v1/responses), written from
 * OpenAI's API reference: the request's input items and instructions become
 * the shared conversation (answer.c), and its answer is a Response object or
 * the documented stream of events, each with its sequence_number:
 * response.created, response.in_progress, response.output_item.added,
 * response.content_part.added, response.output_text.delta per word piece,
 * response.output_text.done, response.content_part.done,
 * response.output_item.done, response.completed (response.incomplete when cut
 * at max_output_tokens); a tool call streams
 * response.function_call_arguments.delta in up to three pieces and
 * response.function_call_arguments.done instead of the text events.
 *
 * The mock keeps no responses: a previous_response_id is answered as OpenAI
 * answers one it does not hold (400 previous_response_not_found).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "mock.h"

static const cJSON *member(const cJSON *obj, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(obj, name);
}

static mock_role_t role_of(const char *role)
{
    if (role != NULL && (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0))
        return MOCK_ROLE_SYSTEM;
    if (role != NULL && strcmp(role, "assistant") == 0)
        return MOCK_ROLE_ASSISTANT;
    return MOCK_ROLE_USER;
}

/*
 * The request as the shared conversation, as OpenAI's chat messages would carry it: instructions are the system
 * message; a run of function_call items is one assistant message (tool calls add no text); each
 * function_call_output a tool message.
 */
static void read_convo(const cJSON *req, mock_convo_t *cv)
{
    const cJSON *instructions = member(req, "instructions"), *input = member(req, "input"), *item;
    if (cJSON_IsString(instructions))
        mock_convo_add(cv, MOCK_ROLE_SYSTEM, gyre_strdup(instructions->valuestring));
    if (cJSON_IsString(input))
        mock_convo_add(cv, MOCK_ROLE_USER, gyre_strdup(input->valuestring));
    cJSON_ArrayForEach(item, (cJSON_IsArray(input) ? input : NULL))
    {
        const cJSON *type = member(item, "type"), *role = member(item, "role");
        const char *t = cJSON_IsString(type) ? type->valuestring : "message";
        if (strcmp(t, "message") == 0) {
            mock_convo_add(cv, role_of(cJSON_IsString(role) ? role->valuestring : NULL),
                           mock_join_texts(member(item, "content"), "text"));
        } else if (strcmp(t, "function_call") == 0) {
            if (cv->n == 0 || cv->msgs[cv->n - 1].role != MOCK_ROLE_ASSISTANT)
                mock_convo_add(cv, MOCK_ROLE_ASSISTANT, NULL);
        } else if (strcmp(t, "function_call_output") == 0) {
            mock_convo_add(cv, MOCK_ROLE_TOOL, mock_join_texts(member(item, "output"), "text"));
        }
    }
    const cJSON *tool;
    cJSON_ArrayForEach(tool, (cJSON_IsArray(member(req, "tools")) ? member(req, "tools") : NULL))
    {
        const cJSON *name = member(tool, "name");
        if (cJSON_IsString(member(tool, "type")) && strcmp(member(tool, "type")->valuestring, "function") == 0)
            mock_convo_add_tool(cv, cJSON_IsString(name) ? name->valuestring : "tool", member(tool, "parameters"));
    }
    const cJSON *choice = member(req, "tool_choice"), *named = member(choice, "name");
    if (cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0) {
        cv->tool_choice = MOCK_TOOLS_NONE;
    } else if (cJSON_IsObject(choice) && cJSON_IsString(named)) {
        cv->tool_choice = MOCK_TOOLS_NAMED;
        cv->tool_name = gyre_strdup(named->valuestring);
    }
    const cJSON *max = member(req, "max_output_tokens");
    if (cJSON_IsNumber(max) && max->valuedouble >= 1 && max->valuedouble < 1e9)
        cv->max_tokens = (long)max->valuedouble;
}

typedef struct resp {
    mock_answer_t a;
    char id[40];      /* resp_mock_xxxxxxxx */
    char msg_id[40];  /* msg_mock_xxxxxxxx */
    char fc_id[40];   /* fc_mock_xxxxxxxx */
    char call_id[40]; /* call_mock_xxxxxxxx */
    const char *model;
    const cJSON *req;
    long seq; /* the next event's sequence_number */
} resp_t;

static int incomplete(const resp_t *rs)
{
    return rs->a.finish == MOCK_FINISH_LENGTH;
}

/* The output item: the message with its text, or the function call; `done` for its final form. */
static cJSON *item_json(const resp_t *rs, const char *text, int done)
{
    cJSON *it = cJSON_CreateObject();
    const char *status = !done ? "in_progress" : incomplete(rs) ? "incomplete" : "completed";
    if (rs->a.text != NULL) {
        cJSON_AddStringToObject(it, "id", rs->msg_id);
        cJSON_AddStringToObject(it, "type", "message");
        cJSON_AddStringToObject(it, "status", status);
        cJSON *content = cJSON_AddArrayToObject(it, "content");
        if (text != NULL) {
            cJSON *part = cJSON_CreateObject();
            cJSON_AddStringToObject(part, "type", "output_text");
            cJSON_AddArrayToObject(part, "annotations");
            cJSON_AddArrayToObject(part, "logprobs");
            cJSON_AddStringToObject(part, "text", text);
            cJSON_AddItemToArray(content, part);
        }
        cJSON_AddStringToObject(it, "role", "assistant");
    } else {
        cJSON_AddStringToObject(it, "id", rs->fc_id);
        cJSON_AddStringToObject(it, "type", "function_call");
        cJSON_AddStringToObject(it, "status", status);
        cJSON_AddStringToObject(it, "arguments", text != NULL ? text : "");
        cJSON_AddStringToObject(it, "call_id", rs->call_id);
        cJSON_AddStringToObject(it, "name", rs->a.tool_name);
    }
    return it;
}

/* A copy of the request's member, or `dflt` (parsed) when it has none. */
static void echo(cJSON *o, const cJSON *req, const char *key, const char *dflt)
{
    const cJSON *v = member(req, key);
    cJSON_AddItemToObject(o, key, v != NULL ? cJSON_Duplicate(v, 1) : cJSON_Parse(dflt));
}

/* The Response: in progress (no output, no usage) or final. */
static cJSON *response_json(const resp_t *rs, int final)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", rs->id);
    cJSON_AddStringToObject(o, "object", "response");
    cJSON_AddNumberToObject(o, "created_at", MOCK_CREATED);
    cJSON_AddStringToObject(o, "status", !final ? "in_progress" : incomplete(rs) ? "incomplete" : "completed");
    cJSON_AddFalseToObject(o, "background");
    cJSON_AddNullToObject(o, "error");
    if (final && incomplete(rs))
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "incomplete_details"), "reason", "max_output_tokens");
    else
        cJSON_AddNullToObject(o, "incomplete_details");
    echo(o, rs->req, "instructions", "null");
    echo(o, rs->req, "max_output_tokens", "null");
    cJSON_AddStringToObject(o, "model", rs->model);
    cJSON *output = cJSON_AddArrayToObject(o, "output");
    if (final)
        cJSON_AddItemToArray(output, item_json(rs, rs->a.text != NULL ? rs->a.text : rs->a.tool_args, 1));
    echo(o, rs->req, "parallel_tool_calls", "true");
    echo(o, rs->req, "previous_response_id", "null");
    cJSON *reasoning = cJSON_AddObjectToObject(o, "reasoning");
    cJSON_AddNullToObject(reasoning, "effort");
    cJSON_AddNullToObject(reasoning, "summary");
    echo(o, rs->req, "store", "true");
    echo(o, rs->req, "temperature", "1");
    echo(o, rs->req, "text", "{\"format\":{\"type\":\"text\"}}");
    echo(o, rs->req, "tool_choice", "\"auto\"");
    echo(o, rs->req, "tools", "[]");
    echo(o, rs->req, "top_p", "1");
    echo(o, rs->req, "truncation", "\"disabled\"");
    if (final) {
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "input_tokens", (double)rs->a.prompt_tokens);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "input_tokens_details"), "cached_tokens", 0);
        cJSON_AddNumberToObject(u, "output_tokens", (double)rs->a.completion_tokens);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "output_tokens_details"), "reasoning_tokens", 0);
        cJSON_AddNumberToObject(u, "total_tokens", (double)(rs->a.prompt_tokens + rs->a.completion_tokens));
    } else {
        cJSON_AddNullToObject(o, "usage");
    }
    echo(o, rs->req, "user", "null");
    echo(o, rs->req, "metadata", "{}");
    return o;
}

/* Sends one event: `fields` (taken) after its type and sequence_number, as `event: TYPE\ndata: {...}\n\n`. */
static int send_event(mock_conn_t *c, resp_t *rs, const char *type, cJSON *fields)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddNumberToObject(o, "sequence_number", (double)rs->seq++);
    while (fields->child != NULL) {
        cJSON *f = cJSON_DetachItemViaPointer(fields, fields->child);
        cJSON_AddItemToObject(o, f->string, f);
    }
    cJSON_Delete(fields);
    char *data = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    gyre_buf_t b;
    gyre_buf_init(&b, MOCK_MAX_BODY * 2);
    gyre_buf_appendf(&b, "event: %s\ndata: %s\n\n", type, data);
    free(data);
    int ret = mock_http_stream_chunk(c, b.base, b.len);
    gyre_buf_dispose(&b);
    return ret;
}

/* {"item_id":..,"output_index":0[,"content_index":0]} for an item event. */
static cJSON *item_ref(const resp_t *rs, int content)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "item_id", rs->a.text != NULL ? rs->msg_id : rs->fc_id);
    cJSON_AddNumberToObject(f, "output_index", 0);
    if (content)
        cJSON_AddNumberToObject(f, "content_index", 0);
    return f;
}

static cJSON *text_part(const char *text)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "output_text");
    cJSON_AddArrayToObject(p, "annotations");
    cJSON_AddArrayToObject(p, "logprobs");
    cJSON_AddStringToObject(p, "text", text);
    return p;
}

/* With c->truncate the stream stops after two text pieces (or the first arguments piece), without its end. */
static int stream_answer(mock_conn_t *c, const mock_request_t *r, resp_t *rs, long pace_ms)
{
    const mock_answer_t *a = &rs->a;
    if (mock_http_stream_start(c, r, "text/event-stream") != 0)
        return -1;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddItemToObject(f, "response", response_json(rs, 0));
    if (send_event(c, rs, "response.created", f) != 0)
        return -1;
    f = cJSON_CreateObject();
    cJSON_AddItemToObject(f, "response", response_json(rs, 0));
    if (send_event(c, rs, "response.in_progress", f) != 0)
        return -1;
    f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "output_index", 0);
    cJSON_AddItemToObject(f, "item", item_json(rs, NULL, 0));
    if (send_event(c, rs, "response.output_item.added", f) != 0)
        return -1;
    const char *full = a->text != NULL ? a->text : a->tool_args;
    if (a->text != NULL) {
        f = item_ref(rs, 1);
        cJSON_AddItemToObject(f, "part", text_part(""));
        if (send_event(c, rs, "response.content_part.added", f) != 0)
            return -1;
        int sent = 0;
        for (const char *p = a->text; *p != '\0' && !(c->truncate && sent == 2); sent++) {
            if (mock_conn_wait_ms(c, pace_ms) != 0)
                return -1;
            size_t n = mock_piece_len(p);
            char *piece = gyre_strndup(p, n);
            f = item_ref(rs, 1);
            cJSON_AddArrayToObject(f, "logprobs");
            cJSON_AddStringToObject(f, "delta", piece);
            free(piece);
            p += n;
            if (send_event(c, rs, "response.output_text.delta", f) != 0)
                return -1;
        }
    } else {
        size_t len = strlen(a->tool_args), third = (len + 2) / 3;
        for (size_t off = 0; off < len && !(c->truncate && off > 0); off += third) {
            if (mock_conn_wait_ms(c, pace_ms) != 0)
                return -1;
            char *piece = gyre_strndup(a->tool_args + off, off + third <= len ? third : len - off);
            f = item_ref(rs, 0);
            cJSON_AddStringToObject(f, "delta", piece);
            free(piece);
            if (send_event(c, rs, "response.function_call_arguments.delta", f) != 0)
                return -1;
        }
    }
    if (c->truncate)
        return -1; /* cut: no done events, no response.completed, no terminating chunk */
    if (a->text != NULL) {
        f = item_ref(rs, 1);
        cJSON_AddArrayToObject(f, "logprobs");
        cJSON_AddStringToObject(f, "text", full);
        if (send_event(c, rs, "response.output_text.done", f) != 0)
            return -1;
        f = item_ref(rs, 1);
        cJSON_AddItemToObject(f, "part", text_part(full));
        if (send_event(c, rs, "response.content_part.done", f) != 0)
            return -1;
    } else {
        f = item_ref(rs, 0);
        cJSON_AddStringToObject(f, "name", a->tool_name);
        cJSON_AddStringToObject(f, "arguments", full);
        if (send_event(c, rs, "response.function_call_arguments.done", f) != 0)
            return -1;
    }
    f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "output_index", 0);
    cJSON_AddItemToObject(f, "item", item_json(rs, full, 1));
    if (send_event(c, rs, "response.output_item.done", f) != 0)
        return -1;
    f = cJSON_CreateObject();
    cJSON_AddItemToObject(f, "response", response_json(rs, 1));
    if (send_event(c, rs, incomplete(rs) ? "response.incomplete" : "response.completed", f) != 0)
        return -1;
    return mock_http_stream_finish(c);
}

int mock_openai_responses(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const mock_options_t *o)
{
    const cJSON *model = member(req, "model"), *input = member(req, "input"), *prev = member(req, "previous_response_id");
    if (!cJSON_IsString(model))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "missing_required_parameter", "model",
                                       "Missing required parameter: 'model'.");
    if (cJSON_IsString(prev))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "previous_response_not_found",
                                       "previous_response_id", "Previous response with id '%.100s' not found.",
                                       prev->valuestring);
    if (!cJSON_IsString(input) && !(cJSON_IsArray(input) && cJSON_GetArraySize(input) > 0))
        return mock_http_respond_error(c, r, 400, NULL, "invalid_request_error", "invalid_type", "input",
                                       "Invalid 'input': expected a string or a non-empty array of input items.");
    mock_convo_t cv;
    mock_convo_init(&cv);
    read_convo(req, &cv);
    cv.model = model->valuestring;
    resp_t rs = {.model = model->valuestring, .req = req};
    mock_answer_make(&cv, r->body, r->body_len, &rs.a);
    mock_convo_dispose(&cv);
    snprintf(rs.id, sizeof(rs.id), "resp_mock_%08x", rs.a.hash);
    snprintf(rs.msg_id, sizeof(rs.msg_id), "msg_mock_%08x", rs.a.hash);
    snprintf(rs.fc_id, sizeof(rs.fc_id), "fc_mock_%08x", rs.a.call_hash);
    snprintf(rs.call_id, sizeof(rs.call_id), "call_mock_%08x", rs.a.call_hash);
    int ret;
    if (cJSON_IsTrue(member(req, "stream"))) {
        ret = stream_answer(c, r, &rs, mock_pace_ms(o));
    } else {
        cJSON *root = response_json(&rs, 1);
        ret = mock_http_respond_json(c, r, 200, root);
        cJSON_Delete(root);
    }
    mock_answer_dispose(&rs.a);
    return ret;
}
