/*
 * gyre-mock's Anthropic Messages API: POST /v1/messages, answered whole or
 * as Anthropic's event stream, with Anthropic's error shape.
 *
 * The request is read into the shared conversation (answer.c), so the
 * answer is the one every other dialect gives: a system prompt counts as a
 * message, and each tool_result block is a message of its own, as OpenAI
 * would carry them.  A trailing assistant message is a prefill: the answer
 * continues it (answer.c).
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

/* ---- errors ---- */

/* {"type":"error","error":{"type":...,"message":...}} */
static int respond_typed_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                               const char *type, const char *message)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "type", "error");
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddStringToObject(e, "message", message);
    int ret = mock_http_respond_json_with(c, r, status, extra_headers, root);
    cJSON_Delete(root);
    return ret;
}

/* Anthropic's error type for a status, as its API documents them. */
static const char *error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return "api_error";
    }
}

static int anthropic_error(mock_conn_t *c, const mock_request_t *r, int status, const char *extra_headers,
                           const char *message)
{
    return respond_typed_error(c, r, status, extra_headers, error_type(status), message);
}

const mock_dialect_t mock_dialect_anthropic = {"anthropic", anthropic_error};

static int invalid(mock_conn_t *c, const mock_request_t *r, const char *message)
{
    return respond_typed_error(c, r, 400, NULL, "invalid_request_error", message);
}

/* ---- the request ---- */

/* A tool_result's text: its content string, or the text of its blocks. */
static char *tool_result_text(const cJSON *block)
{
    return mock_join_texts(member(block, "content"), "text");
}

/*
 * One Messages message into the conversation.  A user message's tool_result
 * blocks each become a tool message; the blocks between them (text, image,
 * document) one user message, as OpenAI's messages would carry them.
 */
static void read_message(const cJSON *m, mock_convo_t *cv)
{
    const cJSON *content = member(m, "content"), *role = member(m, "role");
    int assistant = strcmp(role->valuestring, "assistant") == 0;
    if (assistant || !cJSON_IsArray(content)) {
        mock_convo_add(cv, assistant ? MOCK_ROLE_ASSISTANT : MOCK_ROLE_USER, mock_join_texts(content, "text"));
        return;
    }
    cJSON *pending = cJSON_CreateArray();
    size_t added = 0;
    const cJSON *b;
    cJSON_ArrayForEach(b, content)
    {
        const cJSON *type = member(b, "type");
        if (cJSON_IsString(type) && strcmp(type->valuestring, "tool_result") == 0) {
            if (cJSON_GetArraySize(pending) > 0) {
                mock_convo_add(cv, MOCK_ROLE_USER, mock_join_texts(pending, "text"));
                cJSON_Delete(pending);
                pending = cJSON_CreateArray();
                added++;
            }
            mock_convo_add(cv, MOCK_ROLE_TOOL, tool_result_text(b));
            added++;
        } else {
            cJSON_AddItemToArray(pending, cJSON_Duplicate(b, 1));
        }
    }
    if (cJSON_GetArraySize(pending) > 0 || added == 0)
        mock_convo_add(cv, MOCK_ROLE_USER, mock_join_texts(pending, "text"));
    cJSON_Delete(pending);
}

static void read_convo(const cJSON *req, mock_convo_t *cv)
{
    const cJSON *system = member(req, "system"), *m, *t;
    if (cJSON_IsString(system) || cJSON_IsArray(system))
        mock_convo_add(cv, MOCK_ROLE_SYSTEM, mock_join_texts(system, "text"));
    cJSON_ArrayForEach(m, member(req, "messages"))
    {
        read_message(m, cv);
    }
    cJSON_ArrayForEach(t, (cJSON_IsArray(member(req, "tools")) ? member(req, "tools") : NULL))
    {
        const cJSON *name = member(t, "name");
        mock_convo_add_tool(cv, cJSON_IsString(name) ? name->valuestring : "tool", member(t, "input_schema"));
    }
    const cJSON *choice = member(req, "tool_choice"), *type = member(choice, "type"), *name = member(choice, "name");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "none") == 0) {
        cv->tool_choice = MOCK_TOOLS_NONE;
    } else if (cJSON_IsString(type) && strcmp(type->valuestring, "tool") == 0 && cJSON_IsString(name)) {
        cv->tool_choice = MOCK_TOOLS_NAMED;
        cv->tool_name = gyre_strdup(name->valuestring);
    }
    cv->max_tokens = (long)member(req, "max_tokens")->valuedouble;
    mock_convo_add_stop(cv, member(req, "stop_sequences"));
}

/* Checks what Anthropic's API requires; returns NULL, or the message of the 400. */
static const char *check_request(const cJSON *req, char *why, size_t size)
{
    const cJSON *model = member(req, "model"), *max = member(req, "max_tokens"), *messages = member(req, "messages");
    if (!cJSON_IsString(model))
        return model == NULL ? "model: Field required" : "model: Input should be a valid string";
    if (max == NULL)
        return "max_tokens: Field required";
    if (!cJSON_IsNumber(max) || max->valuedouble < 1 || max->valuedouble > 1e9 ||
        max->valuedouble != (double)(long)max->valuedouble)
        return "max_tokens: Input should be a valid integer greater than or equal to 1";
    if (messages == NULL)
        return "messages: Field required";
    if (!cJSON_IsArray(messages))
        return "messages: Input should be a valid list";
    if (cJSON_GetArraySize(messages) == 0)
        return "messages: at least one message is required";
    int i = 0;
    const cJSON *m, *last = NULL;
    cJSON_ArrayForEach(m, messages)
    {
        const cJSON *role = member(m, "role"), *content = member(m, "content");
        if (!cJSON_IsString(role) ||
            (strcmp(role->valuestring, "user") != 0 && strcmp(role->valuestring, "assistant") != 0)) {
            snprintf(why, size, "messages.%d.role: Input should be 'user' or 'assistant'", i);
            return why;
        }
        if (!cJSON_IsString(content) && !cJSON_IsArray(content)) {
            snprintf(why, size, "messages.%d.content: Input should be a valid string or a list of content blocks", i);
            return why;
        }
        last = m;
        i++;
    }
    /* A prefill may not end in whitespace: Anthropic refuses it, so gyre must not send one. */
    if (strcmp(member(last, "role")->valuestring, "assistant") == 0) {
        char *text = mock_join_texts(member(last, "content"), "text");
        size_t n = strlen(text);
        int trailing = n > 0 && strchr(" \t\r\n\f\v", text[n - 1]) != NULL;
        free(text);
        if (trailing)
            return "messages: final assistant content cannot end with trailing whitespace";
    }
    return NULL;
}

/* ---- the answer ---- */

typedef struct reply {
    mock_answer_t a;
    char id[32];      /* msg_mock_xxxxxxxx */
    char tool_id[32]; /* toolu_mock_xxxxxxxx */
    const char *model;
} reply_t;

static const char *stop_reason(const mock_answer_t *a)
{
    switch (a->finish) {
    case MOCK_FINISH_LENGTH: return "max_tokens";
    case MOCK_FINISH_TOOL: return "tool_use";
    case MOCK_FINISH_STOP_SEQUENCE: return "stop_sequence";
    default: return "end_turn";
    }
}

static cJSON *usage_json(const mock_answer_t *a, long output_tokens)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "input_tokens", (double)a->prompt_tokens);
    cJSON_AddNumberToObject(u, "output_tokens", (double)output_tokens);
    cJSON_AddNumberToObject(u, "cache_creation_input_tokens", 0);
    cJSON_AddNumberToObject(u, "cache_read_input_tokens", 0);
    return u;
}

/* The content block: the text, or the tool_use with its input (`with_input`: parsed; else {} as a stream starts). */
static cJSON *content_block(const reply_t *rp, int with_input)
{
    cJSON *b = cJSON_CreateObject();
    if (rp->a.text != NULL) {
        cJSON_AddStringToObject(b, "type", "text");
        cJSON_AddStringToObject(b, "text", with_input ? rp->a.text : "");
        return b;
    }
    cJSON_AddStringToObject(b, "type", "tool_use");
    cJSON_AddStringToObject(b, "id", rp->tool_id);
    cJSON_AddStringToObject(b, "name", rp->a.tool_name);
    cJSON_AddItemToObject(b, "input", with_input ? cJSON_Parse(rp->a.tool_args) : cJSON_CreateObject());
    return b;
}

/* The message object; in message_start it has no content yet, no stop_reason, and one output token. */
static cJSON *message_json(const reply_t *rp, int whole)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", rp->id);
    cJSON_AddStringToObject(m, "type", "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "model", rp->model);
    cJSON *content = cJSON_AddArrayToObject(m, "content");
    if (whole)
        cJSON_AddItemToArray(content, content_block(rp, 1));
    cJSON_AddItemToObject(m, "stop_reason", whole ? cJSON_CreateString(stop_reason(&rp->a)) : cJSON_CreateNull());
    cJSON_AddItemToObject(m, "stop_sequence",
                          whole && rp->a.stop_seq != NULL ? cJSON_CreateString(rp->a.stop_seq) : cJSON_CreateNull());
    cJSON_AddItemToObject(m, "usage", usage_json(&rp->a, whole ? rp->a.completion_tokens : 1));
    return m;
}

/* One event, "event: NAME\ndata: {json}\n\n", as one chunk; takes `data`. */
static int send_event(mock_conn_t *c, const char *name, cJSON *data)
{
    char *text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    gyre_buf_t b;
    gyre_buf_init(&b, strlen(text) + 64);
    gyre_buf_appendf(&b, "event: %s\ndata: %s\n\n", name, text);
    int ret = mock_http_stream_chunk(c, b.base, b.len);
    gyre_buf_dispose(&b);
    free(text);
    return ret;
}

static cJSON *typed(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

static int send_delta(mock_conn_t *c, const char *type, const char *field, const char *value)
{
    cJSON *ev = typed("content_block_delta");
    cJSON_AddNumberToObject(ev, "index", 0);
    cJSON *d = cJSON_AddObjectToObject(ev, "delta");
    cJSON_AddStringToObject(d, "type", type);
    cJSON_AddStringToObject(d, field, value);
    return send_event(c, "content_block_delta", ev);
}

/*
 * Anthropic's event sequence: message_start, content_block_start, ping, a
 * content_block_delta per piece (text_delta per word, or input_json_delta
 * in up to three pieces), content_block_stop, message_delta with the stop
 * reason and the output tokens, message_stop.  With c->truncate it stops
 * after two text pieces (or the first piece of the input) and the connection
 * is closed.
 */
static int stream_reply(mock_conn_t *c, const mock_request_t *r, const reply_t *rp, long pace_ms)
{
    const mock_answer_t *a = &rp->a;
    if (mock_http_stream_start(c, r, "text/event-stream") != 0)
        return -1;
    cJSON *ev = typed("message_start");
    cJSON_AddItemToObject(ev, "message", message_json(rp, 0));
    if (send_event(c, "message_start", ev) != 0)
        return -1;
    ev = typed("content_block_start");
    cJSON_AddNumberToObject(ev, "index", 0);
    cJSON_AddItemToObject(ev, "content_block", content_block(rp, 0));
    if (send_event(c, "content_block_start", ev) != 0 || send_event(c, "ping", typed("ping")) != 0)
        return -1;
    if (a->text != NULL) {
        int sent = 0;
        for (const char *p = a->text; *p != '\0' && !(c->truncate && sent == 2); sent++) {
            if (mock_wait_ms(pace_ms) != 0)
                return -1;
            size_t n = mock_piece_len(p);
            char *piece = gyre_strndup(p, n);
            int ret = send_delta(c, "text_delta", "text", piece);
            free(piece);
            p += n;
            if (ret != 0)
                return -1;
        }
    } else {
        size_t len = strlen(a->tool_args), third = (len + 2) / 3;
        for (size_t off = 0; off < len && !(c->truncate && off > 0); off += third) {
            if (mock_wait_ms(pace_ms) != 0)
                return -1;
            char *piece = gyre_strndup(a->tool_args + off, off + third <= len ? third : len - off);
            int ret = send_delta(c, "input_json_delta", "partial_json", piece);
            free(piece);
            if (ret != 0)
                return -1;
        }
    }
    if (c->truncate)
        return -1; /* cut: no content_block_stop, message_delta or message_stop, no terminating chunk */
    ev = typed("content_block_stop");
    cJSON_AddNumberToObject(ev, "index", 0);
    if (send_event(c, "content_block_stop", ev) != 0)
        return -1;
    ev = typed("message_delta");
    cJSON *d = cJSON_AddObjectToObject(ev, "delta");
    cJSON_AddStringToObject(d, "stop_reason", stop_reason(a));
    cJSON_AddItemToObject(d, "stop_sequence",
                          a->stop_seq != NULL ? cJSON_CreateString(a->stop_seq) : cJSON_CreateNull());
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(ev, "usage"), "output_tokens", (double)a->completion_tokens);
    if (send_event(c, "message_delta", ev) != 0 || send_event(c, "message_stop", typed("message_stop")) != 0)
        return -1;
    return mock_http_stream_finish(c);
}

int mock_anthropic_messages(mock_conn_t *c, const mock_request_t *r, const cJSON *req, const mock_options_t *o)
{
    if (mock_request_header(r, "anthropic-version") == NULL)
        return invalid(c, r, "anthropic-version: header is required");
    if (!cJSON_IsObject(req))
        return invalid(c, r, "There was an error parsing the body of your request: it is not a JSON object.");
    char why[128];
    const char *err = check_request(req, why, sizeof(why));
    if (err != NULL)
        return invalid(c, r, err);
    mock_convo_t cv;
    mock_convo_init(&cv);
    read_convo(req, &cv);
    cv.model = member(req, "model")->valuestring;
    reply_t rp;
    mock_answer_make(&cv, r->body, r->body_len, &rp.a);
    mock_convo_dispose(&cv);
    snprintf(rp.id, sizeof(rp.id), "msg_mock_%08x", rp.a.hash);
    snprintf(rp.tool_id, sizeof(rp.tool_id), "toolu_mock_%08x", rp.a.call_hash);
    rp.model = member(req, "model")->valuestring;
    int ret;
    if (cJSON_IsTrue(member(req, "stream"))) {
        ret = stream_reply(c, r, &rp, mock_pace_ms(o));
    } else {
        cJSON *m = message_json(&rp, 1);
        ret = mock_http_respond_json(c, r, 200, m);
        cJSON_Delete(m);
    }
    mock_answer_dispose(&rp.a);
    return ret;
}
