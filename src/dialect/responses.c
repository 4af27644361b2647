/*
 * The OpenAI Responses API as a client dialect (see responses.h): answers.
 * Requests are read in responses_request.c.
 *
 * A chat.completion becomes a Response object; structured stream events
 * (dialect/event.h) become the documented event sequence:
 * response.created, response.in_progress, then per output item
 * response.output_item.added, (for a message) response.content_part.added,
 * response.output_text.delta..., response.output_text.done,
 * response.content_part.done, (for a function call)
 * response.function_call_arguments.delta..., .done, then
 * response.output_item.done; finally response.completed (response.incomplete
 * when the answer was cut at max_output_tokens), every event with its
 * sequence_number from 0.  The Response objects both paths write are one
 * writer's (write_response), so a stream's last snapshot and a whole answer
 * are the same object.  A native Response is also read back into the
 * chat.completion it amounts to, for the trace (gyre_responses_to_completion).
 *
 * Answers and events are written by hand into buffers with a maximum, each
 * event into a scratch buffer first and appended whole, so a client sees only
 * whole events even when a bound is met.
 */
#include "dialect/responses.h"

#include "dialect/responses_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

/* One event's bound: the text or arguments of one item, repeated, plus the request's echo; far above what a
 * provider sends in one answer (the answer's own bound applies first). */
#define EVENT_MAX (GYRE_RESPONSES_ANSWER_MAX * 2 + ((size_t)4 << 20))
/* The request fields a Response echoes: tools and instructions as the client sent them. */
#define ECHO_MAX ((size_t)64 << 20)

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
